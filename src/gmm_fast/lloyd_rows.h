/* Lloyd's k-means row loops, for one element type T of X.

   kernels.c includes this file once per type, with T (float or double), IDX (an
   integer as wide as T, for lane masks) and TYPED(name) defined. Why the direct
   paths exist and when they are taken: _lloyd's docstring and lloyd_step.
*/
#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "kernels.h"  /* the layout constants: GMM_LLOYD_* */

#ifndef GMM_LLOYD_ROWS_ONCE
#define GMM_LLOYD_ROWS_ONCE
/* The wide path's register block at this level: GMM_WIDE_ROWS rows x 4 centres of
   accumulators GMM_WIDE_BYTES wide: AVX-512, 4 x 4 of its 32 registers; AVX2, 3 x 4
   of its 16 (d=784 k=10 one thread, ms per 2e4 rows, rows 1/2/3/4: float64 46.6,
   35.6, 30.4, 29.6 (4 spills); float32 16.4-17.4 for all); SSE2 and NEON, whose
   direct paths are not used (_lloyd), 2 x 4 of 16 bytes. */
#if defined(__AVX512F__)
#define GMM_WIDE_BYTES 64
#define GMM_WIDE_ROWS 4
#elif defined(__AVX__)
#define GMM_WIDE_BYTES 32
#define GMM_WIDE_ROWS 3
#else
#define GMM_WIDE_BYTES 16
#define GMM_WIDE_ROWS 2
#endif
/* The narrow path's group of rows, in bytes (at most GMM_LLOYD_ROW_BYTES, the
   buffer's): 4 centres x 2 vectors of AVX-512 (8 accumulators of its 32 registers);
   AVX2 takes 4 x 3 vectors, 12 accumulators, 3 row vectors and a broadcast in its 16
   (4 x 4 spilled two accumulators through the stack at every feature: d=16 k=64,
   AMD EPYC at AVX2, ms per iteration, 1 / 2 threads: float64 150 / 56-69 -> 91 /
   40-44, float32 77 / 32 -> 45 / 22-24). Clang keeps 128: Clang 14 leaves the
   12-row masked update below scalar, and its float64 step went 108-122 -> 171-186 ms
   (float32 65-67 -> 43-46; one thread, the same machine). */
#if defined(__AVX512F__) || defined(__clang__)
#define GMM_NARROW_BYTES 128
#else
#define GMM_NARROW_BYTES 96
#endif

/* Sum the first 2H lanes of every accumulator into its first H (vector adds). */
#define GMM_LLOYD_FOLD(H, Q)                                                         \
    for (int r = 0; r < GMM_WIDE_ROWS; r++)                                          \
        for (int q = 0; q < (Q); q++) {                                              \
            _Pragma("omp simd")                                                      \
            for (int l = 0; l < (H); l++) acc[r][q][l] += acc[r][q][l + (H)];        \
        }
/* Centres j .. j+Q-1 against the group's rows: dot products in a register block
   of rows x Q vectors, lanes folded in halves (a serial sum of the lanes cost more
   than the dot products at d=128), then the running first minimum per row. SHIFT
   (a constant): the group's first block also shifts its rows' features [0, body)
   into xs as it goes, instead of a pass of its own before the blocks. */
#define GMM_LLOYD_WIDE_BLOCK(T, Q, SHIFT)                                            \
    {                                                                                \
        enum { LANES_ = GMM_WIDE_BYTES / sizeof(T) };                                \
        const T *c = centers_m2 + j * d_pad;                                         \
        T acc[GMM_WIDE_ROWS][Q][LANES_];                                             \
        for (int r = 0; r < GMM_WIDE_ROWS; r++)                                      \
            for (int q = 0; q < (Q); q++) {                                          \
                _Pragma("omp simd")                                                  \
                for (int l = 0; l < LANES_; l++) acc[r][q][l] = 0;                   \
            }                                                                        \
        for (ptrdiff_t f = 0; f < d_pad; f += LANES_) {                             \
            if (ahead) {                                                             \
                GMM_PREFETCH(ahead + f * GMM_WIDE_ROWS * sizeof(T));                 \
                GMM_PREFETCH(ahead + f * GMM_WIDE_ROWS * sizeof(T) + 64);            \
            }                                                                        \
            if ((SHIFT) && f < body)                                                 \
                for (int r = 0; r < GMM_WIDE_ROWS; r++) {                            \
                    const T *x_ = X + (i0 + r) * n_features + f;                     \
                    _Pragma("omp simd")                                              \
                    for (int l = 0; l < LANES_; l++)                                 \
                        xs[r * d_pad + f + l] = x_[l] - shift[f + l];                \
                }                                                                    \
            for (int r = 0; r < GMM_WIDE_ROWS; r++)                                  \
                for (int q = 0; q < (Q); q++) {                                      \
                    _Pragma("omp simd")                                              \
                    for (int l = 0; l < LANES_; l++)                                 \
                        acc[r][q][l] += xs[r * d_pad + f + l] * c[q * d_pad + f + l]; \
                }                                                                    \
        }                                                                            \
        if (LANES_ > 8) { GMM_LLOYD_FOLD(8, Q) }                                     \
        if (LANES_ > 4) { GMM_LLOYD_FOLD(4, Q) }                                     \
        if (LANES_ > 2) { GMM_LLOYD_FOLD(2, Q) }                                     \
        GMM_LLOYD_FOLD(1, Q)                                                         \
        for (int r = 0; r < GMM_WIDE_ROWS; r++)                                      \
            for (int q = 0; q < (Q); q++) {                                          \
                T dist = sq_norms[j + q] + acc[r][q][0];                             \
                /* strictly nearer: the first minimum, as np.argmin */               \
                int nearer = dist < best_dist[r];                                    \
                best[r] = nearer ? (int)(j + q) : best[r];                           \
                best_dist[r] = nearer ? dist : best_dist[r];                         \
            }                                                                        \
    }

/* Chan, Golub and LeVeque's pairwise update: the column means and spreads (sums of
   squares about the mean) of `seen` rows, in place, merged with those of `count` more
   (their_mean, their_m2). column_mean_and_variance's tiles and blocks alike. */
static void gmm_merge_spread(ptrdiff_t d, double seen, double *restrict mean,
                             double *restrict m2, double count,
                             const double *restrict their_mean,
                             const double *restrict their_m2) {
    double share = count / (seen + count), cross = seen * share;
    #pragma omp simd
    for (ptrdiff_t f = 0; f < d; f++) {
        double delta = their_mean[f] - mean[f];
        mean[f] += delta * share;
        m2[f] += their_m2[f] + delta * delta * cross;
    }
}
#endif

/* Index of the first minimum of off + v, written with selects so that gcc emits
   minsd + cmov: a branch on "new minimum?" mispredicts on random data and
   measured 2.5x slower for the whole step at d=2, k=8. */
static inline ptrdiff_t TYPED(gmm_argmin_scalar)(const T *v, const T *off, ptrdiff_t n) {
    T m = off[0] + v[0];
    ptrdiff_t best = 0;
    for (ptrdiff_t j = 1; j < n; j++) {
        T x = off[j] + v[j];
        best = x < m ? j : best;
        m = x < m ? x : m;
    }
    return best;
}

/* The same first minimum, vectorised: LANES running minima, each lane over
   the entries j = l mod LANES, taking an entry only if strictly smaller (so
   each lane keeps its first minimum); then the smallest index among the
   lanes that hold the overall minimum. The scalar loop is one dependent
   minsd chain: at k=256 about a fifth of the GEMM path's time. */
static ptrdiff_t TYPED(gmm_argmin)(const T *v, const T *off, ptrdiff_t n) {
    enum { LANES = 64 / sizeof(T) };
    if (n < 2 * LANES) return TYPED(gmm_argmin_scalar)(v, off, n);
    T m[LANES];
    IDX best[LANES];
    for (int l = 0; l < LANES; l++) { m[l] = off[l] + v[l]; best[l] = l; }
    ptrdiff_t j = LANES;
    for (; j + LANES <= n; j += LANES) {
        #pragma omp simd
        for (int l = 0; l < LANES; l++) {
            T x = off[j + l] + v[j + l];
            IDX nearer = -(IDX)(x < m[l]);
            best[l] = (best[l] & ~nearer) | ((IDX)(j + l) & nearer);
            m[l] = x < m[l] ? x : m[l];
        }
    }
    T mv = m[0];
    ptrdiff_t b = best[0];
    for (int l = 1; l < LANES; l++) {
        if (m[l] < mv || (m[l] == mv && best[l] < b)) { mv = m[l]; b = best[l]; }
    }
    for (; j < n; j++) {
        T x = off[j] + v[j];
        if (x < mv) { mv = x; b = j; }
    }
    return b;
}

/* |x - c|^2 summed in double; the pragma lets gcc vectorise the sum
   (it may not reorder a floating-point reduction otherwise). */
static inline double TYPED(gmm_sq_dist)(const T *x, const T *c, ptrdiff_t n) {
    double acc = 0.0;
    #pragma omp simd reduction(+:acc)
    for (ptrdiff_t f = 0; f < n; f++) {
        double diff = (double)x[f] - (double)c[f];
        acc += diff * diff;
    }
    return acc;
}

/* The GEMM path's per-row loops, in C with restrict: in Cython they compiled to
   scalar code that gcc could not prove free of aliasing. shift_rows: xs = X - shift for n_rows rows of d; add_row:
   s += w x in double. */
static void TYPED(gmm_shift_rows)(const T *restrict X, ptrdiff_t n_rows, ptrdiff_t d,
                                  const T *restrict shift, T *restrict xs) {
    for (ptrdiff_t i = 0; i < n_rows; i++) {
        #pragma omp simd
        for (ptrdiff_t f = 0; f < d; f++)
            xs[i * d + f] = X[i * d + f] - shift[f];
    }
}
static void TYPED(gmm_add_row)(double *restrict s, const T *restrict x, double w,
                               ptrdiff_t d) {
    #pragma omp simd
    for (ptrdiff_t f = 0; f < d; f++) s[f] += w * (double)x[f];
}

/* Column means and spreads (sums of squares about the mean) of a tile of rows,
   merged into the running ones of the `seen` rows before it (Chan, Golub and
   LeVeque's pairwise update). The tile's own come from two passes over it while it
   is in cache: X is read from memory once, and nothing cancels as sum(x^2) - n m^2
   would. tile: 2 n_features doubles of scratch. */
static void TYPED(gmm_column_spread)(const T *restrict X, ptrdiff_t n_rows, ptrdiff_t d,
                                     double seen, double *restrict mean,
                                     double *restrict m2, double *restrict tile) {
    double *restrict tile_mean = tile, *restrict tile_m2 = tile + d;
    /* Four rows per update of the sums: a load and a store of each sum per row made
       the passes compute-bound (float32, one thread: 46 ms at (1e5, 784) against a
       23 ms read). */
    ptrdiff_t i = 0, whole = n_rows - n_rows % 4;
    for (ptrdiff_t f = 0; f < d; f++) { tile_mean[f] = 0.0; tile_m2[f] = 0.0; }
    for (i = 0; i < whole; i += 4) {
        const T *x = X + i * d;
        #pragma omp simd
        for (ptrdiff_t f = 0; f < d; f++)
            tile_mean[f] += ((double)x[f] + (double)x[d + f])
                            + ((double)x[2 * d + f] + (double)x[3 * d + f]);
    }
    for (; i < n_rows; i++) {
        #pragma omp simd
        for (ptrdiff_t f = 0; f < d; f++) tile_mean[f] += (double)X[i * d + f];
    }
    #pragma omp simd
    for (ptrdiff_t f = 0; f < d; f++) tile_mean[f] /= (double)n_rows;
    for (i = 0; i < whole; i += 4) {
        const T *x = X + i * d;
        #pragma omp simd
        for (ptrdiff_t f = 0; f < d; f++) {
            double a = (double)x[f] - tile_mean[f], b = (double)x[d + f] - tile_mean[f];
            double c = (double)x[2 * d + f] - tile_mean[f];
            double e = (double)x[3 * d + f] - tile_mean[f];
            tile_m2[f] += (a * a + b * b) + (c * c + e * e);
        }
    }
    for (; i < n_rows; i++) {
        #pragma omp simd
        for (ptrdiff_t f = 0; f < d; f++) {
            double diff = (double)X[i * d + f] - tile_mean[f];
            tile_m2[f] += diff * diff;
        }
    }
    gmm_merge_spread(d, seen, mean, m2, (double)n_rows, tile_mean, tile_m2);
}

/* k-means++: closest[i] = min(closest[i], |x_i - c|^2) for n_rows rows, each
   distance vectorised along the features (the Cython loop's strict sum was one
   scalar chain: (1e5, 784) float32 took 32 ms, three times a read of X). */
static void TYPED(gmm_min_sq_dist_rows)(const T *restrict X, ptrdiff_t n_rows,
                                        ptrdiff_t d, const T *restrict center,
                                        double *restrict closest) {
    for (ptrdiff_t i = 0; i < n_rows; i++) {
        double sq = TYPED(gmm_sq_dist)(X + i * d, center, d);
        closest[i] = sq < closest[i] ? sq : closest[i];
    }
}

/* Narrow rows. Rows [0, n_rows) of X: labels, and the block's inertia (returned if
   with_inertia, else 0), counts and sums (if sums != NULL). The group's shifted
   rows are transposed into xs (n_features x ROWS) so that one vector holds a
   feature of ROWS rows: the
   distances are vectorised across rows and the running argmin across centres
   needs no horizontal step. centers_m2 is -2 * centers padded with zero rows to
   k_pad (a multiple of CENTERS), sq_norms is |c|^2 padded with +inf, so acc is
   |c|^2 - 2 x.c and a padded centre never wins. The update takes a centre only
   if strictly nearer: the first minimum, as np.argmin. It is written with a
   mask, not "?:", which gcc turned into a masked store behind a mispredicted
   branch (d=16 k=64: 145 -> 90 ms). */
static double TYPED(gmm_lloyd_narrow)(GMM_LLOYD_DIRECT_ARGS(T)) {
    enum { ROWS = GMM_NARROW_BYTES / sizeof(T), CENTERS = GMM_LLOYD_CENTERS };
    double inertia = 0.0;
    ptrdiff_t n_changed = 0;
    for (ptrdiff_t i0 = 0; i0 < n_rows; i0 += ROWS) {
        ptrdiff_t rows = n_rows - i0 < ROWS ? n_rows - i0 : ROWS;
        /* Missing rows of the last group are zeros; their labels are dropped. */
        for (ptrdiff_t f = 0; f < n_features; f++)
            for (ptrdiff_t r = 0; r < ROWS; r++)
                xs[f * ROWS + r] =
                    r < rows ? X[(i0 + r) * n_features + f] - shift[f] : (T)0;
        T best_dist[ROWS];
        IDX best[ROWS];
        for (int r = 0; r < ROWS; r++) { best_dist[r] = (T)INFINITY; best[r] = 0; }
        for (ptrdiff_t j = 0; j < k_pad; j += CENTERS) {
            T acc[CENTERS][ROWS];
            for (int q = 0; q < CENTERS; q++) {
                #pragma omp simd
                for (int r = 0; r < ROWS; r++) acc[q][r] = sq_norms[j + q];
            }
            for (ptrdiff_t f = 0; f < n_features; f++)
                for (int q = 0; q < CENTERS; q++) {
                    T c = centers_m2[(j + q) * n_features + f];
                    #pragma omp simd
                    for (int r = 0; r < ROWS; r++) acc[q][r] += xs[f * ROWS + r] * c;
                }
            for (int q = 0; q < CENTERS; q++) {
                #pragma omp simd
                for (int r = 0; r < ROWS; r++) {
                    IDX nearer = -(IDX)(acc[q][r] < best_dist[r]);
                    best[r] = (best[r] & ~nearer) | ((IDX)(j + q) & nearer);
                    best_dist[r] = acc[q][r] < best_dist[r] ? acc[q][r] : best_dist[r];
                }
            }
        }
        for (ptrdiff_t r = 0; r < rows; r++) {
            int label = (int)best[r];
            const T *c = centers + label * n_features;
            double w = sample_weight ? sample_weight[i0 + r] : 1.0, sq = 0.0;
            n_changed += labels[i0 + r] != label;
            labels[i0 + r] = label;
            /* The exact squared distance in double (the expansion cancels); a
               scalar sum: xs is strided here, and d <= 32. */
            if (with_inertia) {
                for (ptrdiff_t f = 0; f < n_features; f++) {
                    double diff = (double)xs[f * ROWS + r] - (double)c[f];
                    sq += diff * diff;
                }
                inertia += w * sq;
            }
            if (sums) {
                counts[label] += w;
                for (ptrdiff_t f = 0; f < n_features; f++)
                    sums[label * n_features + f] += w * (double)xs[f * ROWS + r];
            }
        }
    }
    *changed = n_changed;
    return inertia;
}

/* Wide rows, few centres: the same arguments and results, GMM_WIDE_ROWS rows at a
   time. The rows are read from memory once; their dot products with every
   centre come from a register block of rows x CENTERS vector accumulators along
   the features (each centre vector loaded serves all the rows, each row vector
   all the centres), then the exact distance and the sums while the rows are in
   L1. The GEMM packed every chunk again for only a few centres. Here centers_m2
   has rows of GMM_LLOYD_PAD_FEATURES(n_features) entries, zero-padded, and xs
   holds GMM_LLOYD_WIDE_ROWS (>= GMM_WIDE_ROWS) rows as long, whose padding the
   caller zeroed. */
static double TYPED(gmm_lloyd_rowwise)(GMM_LLOYD_DIRECT_ARGS(T)) {
    enum { ROWS = GMM_WIDE_ROWS, CENTERS = GMM_LLOYD_CENTERS,
           LANES = GMM_WIDE_BYTES / sizeof(T) };
    const ptrdiff_t d_pad = GMM_LLOYD_PAD_FEATURES(n_features);
    /* Whole vectors of a row's features, which the first block shifts (the rest, and
       every feature of a last group short of rows, are shifted here first). */
    const ptrdiff_t whole = n_features - n_features % LANES;
    double inertia = 0.0;
    ptrdiff_t n_changed = 0;
    for (ptrdiff_t i0 = 0; i0 < n_rows; i0 += ROWS) {
        int rows = n_rows - i0 < ROWS ? (int)(n_rows - i0) : ROWS;
        int fused = rows == ROWS && k_pad >= CENTERS;
        ptrdiff_t body = fused ? whole : 0;
        for (int r = 0; r < ROWS; r++) {
            const T *x = X + (i0 + r) * n_features;
            T *y = xs + r * d_pad;
            if (r < rows) {
                #pragma omp simd
                for (ptrdiff_t f = body; f < n_features; f++) y[f] = x[f] - shift[f];
            } else {
                for (ptrdiff_t f = 0; f < n_features; f++) y[f] = (T)0;
            }
        }
        /* float32: the next group's rows are fetched while these compute, two
           cache lines per step of the dot products (a burst of prefetches before
           the group instead cost time). float64: none, the hardware prefetcher does
           better alone. d=784 k=10 AVX2, one thread, CPU ms per 1e5 rows, burst /
           spread / none: float32 56.4 / 50.3 / 52.5, float64 98.7 / 101.4 / 91.2. */
        const char *ahead = sizeof(T) == 4 && i0 + 2 * ROWS <= n_rows
                            ? (const char *)(X + (i0 + ROWS) * n_features) : NULL;
        T best_dist[ROWS];
        int best[ROWS];
        for (int r = 0; r < ROWS; r++) { best_dist[r] = (T)INFINITY; best[r] = 0; }
        /* k_pad: the centres rounded up to 2; a last pair takes a narrower block */
        ptrdiff_t j = 0;
        if (fused) {
            GMM_LLOYD_WIDE_BLOCK(T, CENTERS, 1)
            j = CENTERS;
        }
        for (; j + CENTERS <= k_pad; j += CENTERS) GMM_LLOYD_WIDE_BLOCK(T, CENTERS, 0)
        if (j < k_pad) GMM_LLOYD_WIDE_BLOCK(T, 2, 0)
        for (int r = 0; r < rows; r++) {
            int label = best[r];
            const T *c = centers + label * n_features, *y = xs + r * d_pad;
            double w = sample_weight ? sample_weight[i0 + r] : 1.0, sq = 0.0;
            n_changed += labels[i0 + r] != label;
            labels[i0 + r] = label;
            double *s = sums ? sums + label * n_features : NULL;
            if (s) counts[label] += w;
            if (s && with_inertia) {  /* one pass: the exact distance and the sums */
                #pragma omp simd reduction(+:sq)
                for (ptrdiff_t f = 0; f < n_features; f++) {
                    double diff = (double)y[f] - (double)c[f];
                    sq += diff * diff;
                    s[f] += w * (double)y[f];
                }
            } else if (s) {
                #pragma omp simd
                for (ptrdiff_t f = 0; f < n_features; f++) s[f] += w * (double)y[f];
            } else if (with_inertia) {
                #pragma omp simd reduction(+:sq)
                for (ptrdiff_t f = 0; f < n_features; f++) {
                    double diff = (double)y[f] - (double)c[f];
                    sq += diff * diff;
                }
            }
            inertia += w * sq;
        }
    }
    *changed = n_changed;
    return inertia;
}
