/* k-means++ candidates: the potential each would leave, for one element type T of X.

   kernels.c includes this file once per type, with T (float or double) and
   TYPED(name) defined. One call covers rows [0, n_rows) of a block:

       pot[t] += sum_i w_i min(closest_i, |x_i - c_t|^2)

   (w NULL: unit weights) and, if dist is not NULL, dist[t * dist_stride + i] =
   |x_i - c_t|^2. Summed feature by feature, a row's squared distance is one chain
   of dependent FMAs; GMM_SEED_ROWS rows share each chain in the lanes of a GCC/Clang
   vector, the rows transposed GMM_SEED_FEATURES features at a time, for up to
   GMM_SEED_CANDIDATES candidates (whose features come as doubles: float X converts
   its rows once per group, the candidates once per call, in _lloyd).

   A row's distance is the same whatever its position in the block (its own lane,
   features in order): weighted rows and their repeats get the same distances, and
   the per-lane sums of the potentials depend on the block bounds, never on threads.
*/
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#ifndef GMM_SEED_ROWS_ONCE
#define GMM_SEED_ROWS_ONCE
#if defined(__GNUC__)  /* GCC/Clang vector extensions */
#define GMM_SEED_FAST 1
/* One vector of doubles, as wide as the level's registers, holds GMM_SEED_ROWS rows:
   GMM_SEED_CANDIDATES accumulators, the rows, a candidate's feature and a difference
   then fit in 16 registers (the AVX-512 width built for AVX2 spilled, two registers
   per vector, and made AVX2's candidates 2-5x slower than this). */
#if defined(__AVX512F__)
#define GMM_SEED_BYTES 64
#elif defined(__AVX__)
#define GMM_SEED_BYTES 32
#else
#define GMM_SEED_BYTES 16
#endif
#define GMM_SEED_ROWS (GMM_SEED_BYTES / 8)
#define GMM_SEED_CANDIDATES 8
#define GMM_SEED_FEATURES 32
typedef double gmm_seed_vec __attribute__((vector_size(GMM_SEED_BYTES)));
#else
#define GMM_SEED_FAST 0
#endif

/* The exact draws' passes over the n-vector of squared distances for unit weights
   (_draws_core's, vectorised at each level: compiled into the Cython module they ran
   as SSE2 scalar loops, ~60% of the rounds' own time at (5e4, 8) besides the
   candidates). */

/* closest[i] = min(closest[i], candidate[i]) (candidate NULL: unchanged); returns the
   largest of them, or 0 (_draws_core.largest without weights). The maximum runs in 8
   lanes of selects, folded at the end: Clang leaves a `?:` maximum reduction scalar. */
static double gmm_seed_lower(double *restrict closest, const double *restrict candidate,
                             ptrdiff_t n) {
    enum { L = 8 };
    double top[L] = {0};
    ptrdiff_t body = n - n % L, i;
    for (i = 0; i < body; i += L) {
        double *restrict c = closest + i;
        #pragma omp simd
        for (int l = 0; l < L; l++) {
            double v = candidate && candidate[i + l] < c[l] ? candidate[i + l] : c[l];
            c[l] = v;
            top[l] = v > top[l] ? v : top[l];
        }
    }
    for (; i < n; i++) {
        double v = candidate && candidate[i] < closest[i] ? candidate[i] : closest[i];
        closest[i] = v;
        top[0] = v > top[0] ? v : top[0];
    }
    for (int l = 1; l < L; l++) top[0] = top[l] > top[0] ? top[l] : top[0];
    return top[0];
}

/* sum_i rint(values[i] * inverse) in int64, for 0 <= values[i] * inverse < 2^52 (inverse
   a power of two, _draws_core.reciprocal; _draws.quantum keeps the largest below 2^52):
   each rint by the 2^52 shifter, whose low mantissa bits are then the integer
   (_draws_core.quantised_total without weights, the same total). */
static int64_t gmm_seed_mass_total(const double *restrict values, ptrdiff_t n,
                                   double inverse) {
    const double shifter = 4503599627370496.0;  /* 2^52 */
    int64_t total = 0;
    #pragma omp simd reduction(+:total)
    for (ptrdiff_t i = 0; i < n; i++) {
        double shifted = values[i] * inverse + shifter;
        int64_t bits;
        memcpy(&bits, &shifted, sizeof bits);
        total += bits - 0x4330000000000000LL;
    }
    return total;
}
#endif

#if GMM_SEED_FAST
/* Rows [i0, i0 + rows) of X, features [f0, f0 + nf), into xt (feature-major, rows
   padded with zeros to GMM_SEED_ROWS). */
static inline void TYPED(gmm_seed_transpose)(const T *X, ptrdiff_t d, ptrdiff_t i0, int rows,
                                             ptrdiff_t f0, int nf, double *xt) {
    enum { R = GMM_SEED_ROWS };
    for (int r = 0; r < R; r++) {
        const T *x = X + (i0 + (r < rows ? r : 0)) * d + f0;
        for (int f = 0; f < nf; f++) xt[f * R + r] = r < rows ? (double)x[f] : 0.0;
    }
}

/* Q candidates (a constant once inlined, so the accumulators stay in registers)
   starting at c (doubles, row stride d) against every row: their distances and
   potentials. The lanes' potentials are summed across groups, then in lane order. */
static inline __attribute__((always_inline)) void TYPED(gmm_seed_candidates)(
    const int Q, const T *X, const T *w, ptrdiff_t n_rows, ptrdiff_t d, const double *c,
    const double *closest, double *pot, double *dist, ptrdiff_t dist_stride) {
    enum { R = GMM_SEED_ROWS, F = GMM_SEED_FEATURES };
    typedef __typeof__((gmm_seed_vec){0} < (gmm_seed_vec){0}) mask;
    /* Rows of at most F features are transposed a group ahead, into the other half of
       xt: loaded right after their scalar stores, a group's vectors waited for them (no
       store forwarding; AVX2, d=2: 1.5x the time). */
    double xt[2][F * R];
    const int ahead = d <= F;
    if (ahead && n_rows > 0)
        TYPED(gmm_seed_transpose)(X, d, 0, n_rows < R ? (int)n_rows : R, 0, (int)d, xt[0]);
    gmm_seed_vec lanes[GMM_SEED_CANDIDATES];
    for (int q = 0; q < Q; q++) lanes[q] = (gmm_seed_vec){0};
    for (ptrdiff_t i0 = 0; i0 < n_rows; i0 += R) {
        int rows = n_rows - i0 < R ? (int)(n_rows - i0) : R;
        double *group = xt[(i0 / R) & 1];
        if (ahead && i0 + R < n_rows) {
            ptrdiff_t left = n_rows - i0 - R;
            TYPED(gmm_seed_transpose)(X, d, i0 + R, left < R ? (int)left : R, 0, (int)d,
                                      xt[(i0 / R + 1) & 1]);
        }
        gmm_seed_vec acc[GMM_SEED_CANDIDATES];
        for (int q = 0; q < Q; q++) acc[q] = (gmm_seed_vec){0};
        for (ptrdiff_t f0 = 0; f0 < d; f0 += F) {
            int nf = d - f0 < F ? (int)(d - f0) : F;
            if (!ahead) TYPED(gmm_seed_transpose)(X, d, i0, rows, f0, nf, group);
            for (int f = 0; f < nf; f++) {
                gmm_seed_vec x;
                __builtin_memcpy(&x, group + f * R, sizeof x);
                for (int q = 0; q < Q; q++) {
                    gmm_seed_vec diff = x - c[q * d + f0 + f];
                    acc[q] += diff * diff;
                }
            }
        }
        gmm_seed_vec cl, wr;
        if (rows == R) {  /* straight from the arrays: a vector load of scalars just
                             stored waits for them (no store forwarding): d=2 took
                             1.7x the time (AVX2, Zen 3) */
            __builtin_memcpy(&cl, closest + i0, sizeof cl);
            if (!w) {
                wr = (gmm_seed_vec){0} + 1.0;
            } else {
                T w_r[R];
                __builtin_memcpy(w_r, w + i0, sizeof w_r);
                for (int r = 0; r < R; r++) wr[r] = (double)w_r[r];
            }
        } else {
            double cl_r[R], wr_r[R];
            for (int r = 0; r < R; r++) {
                cl_r[r] = r < rows ? closest[i0 + r] : 0.0;
                wr_r[r] = r < rows ? (w ? (double)w[i0 + r] : 1.0) : 0.0;
            }
            __builtin_memcpy(&cl, cl_r, sizeof cl);
            __builtin_memcpy(&wr, wr_r, sizeof wr);
        }
        for (int q = 0; q < Q; q++) {
            if (dist && rows == R) {  /* the caller keeps the chosen candidate's */
                __builtin_memcpy(dist + q * dist_stride + i0, &acc[q], sizeof acc[q]);
            } else if (dist) {
                double a[R];
                __builtin_memcpy(a, &acc[q], sizeof a);
                for (int r = 0; r < rows; r++) dist[q * dist_stride + i0 + r] = a[r];
            }
            /* min(acc, cl) as a vector select (C has no ?: on vectors); the lanes stay
               in registers (as arrays they went through memory: d=2 was ~2x slower) */
            mask nearer = acc[q] < cl;
            mask least = ((mask)acc[q] & nearer) | ((mask)cl & ~nearer);
            lanes[q] += wr * (gmm_seed_vec)least;
        }
    }
    for (int q = 0; q < Q; q++) {
        double l[R], sum = 0.0;
        __builtin_memcpy(l, &lanes[q], sizeof l);
        for (int r = 0; r < R; r++) sum += l[r];
        pot[q] += sum;
    }
}

static void TYPED(gmm_seed_potentials)(const T *X, const T *w, ptrdiff_t n_rows,
                                       ptrdiff_t d, const double *candidates,
                                       ptrdiff_t n_candidates, const double *closest,
                                       double *pot, double *dist, ptrdiff_t dist_stride) {
    for (ptrdiff_t t0 = 0; t0 < n_candidates; t0 += GMM_SEED_CANDIDATES) {
        ptrdiff_t nq = n_candidates - t0;
        const double *c = candidates + t0 * d;
        double *dist_t = dist ? dist + t0 * dist_stride : NULL;
        /* One copy per candidate count: 2 + log(k) of them is 4-8 for k = 8-1000. */
#define GMM_SEED_CASE(Q) \
        case Q: TYPED(gmm_seed_candidates)(Q, X, w, n_rows, d, c, closest, pot + t0, \
                                           dist_t, dist_stride); break;
        switch (nq < GMM_SEED_CANDIDATES ? nq : GMM_SEED_CANDIDATES) {
            GMM_SEED_CASE(1) GMM_SEED_CASE(2) GMM_SEED_CASE(3) GMM_SEED_CASE(4)
            GMM_SEED_CASE(5) GMM_SEED_CASE(6) GMM_SEED_CASE(7) GMM_SEED_CASE(8)
        }
#undef GMM_SEED_CASE
    }
}
#endif
