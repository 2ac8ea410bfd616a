"""Lloyd's k-means in one pass over X per iteration, and the k-means++ distances.

``lloyd_step`` assigns every sample to its nearest centre and accumulates, for the
new centres, the weighted sums of the samples, the weight and the inertia of each
cluster. Only ``|c|^2 - 2 x.c`` decides the nearest centre. For wide data the
distances of a chunk of rows to all centres come from one GEMM. Two direct C
loops, cloned for AVX2 and AVX-512 and picked at load time, take the shapes where
the GEMM's fixed costs dominate and fuse the argmin and the sums: narrow data (up
to 16 features), vectorised across a group of rows, and wide rows with few
centres, a register block of rows x centres vectorised along the features (AVX-512
only: it needs 32 vector registers). Built
for baseline SSE2 only they lost to the GEMM (OpenBLAS picks the CPU's widest
vector unit at run time), so there the GEMM serves all.

X is used about ``shift`` (its mean), as if it had been centred, so the dot
products do not cancel for data far from the origin; X itself is never copied.

Determinism: the rows are cut into ``n_blocks`` blocks (the first axis of the
caller's block buffers, which never depends on the thread count). One thread sums
one whole block in row order, and the caller adds the blocks in block order, so
any ``n_threads`` gives bitwise the same centres, labels and inertia.
"""
import numpy as np

from cython cimport floating
from cython.parallel cimport parallel, prange
from libc.math cimport INFINITY
from libc.stdlib cimport calloc, free, malloc
from libc.string cimport memcpy, memset
from scipy.linalg.cython_blas cimport dgemm, sgemm

# Rows per distance computation: as many as keep a chunk of shifted rows within
# 256 KiB (they stay in L2 between the GEMM and the sums) and its distances to
# every centre within 512 KiB. The distances are written once by the GEMM and read
# once by the argmin, and with many centres a short chunk made the GEMM repack the
# centres too often: d=128 k=256 (2 threads, time / sklearn's) went 0.95 -> 0.91
# float64 and 0.89 -> 0.84 float32 against a 256 KiB budget for both together,
# with d=784 k=10 unchanged (its rows are the limit either way); 1 MiB for the
# rows made d=784 k=10 float32 ~20% slower.
cdef Py_ssize_t CHUNK_BYTES = 262144, DIST_BYTES = 524288
cdef Py_ssize_t MIN_CHUNK = 16, MAX_CHUNK = 4096

cpdef Py_ssize_t chunk_rows(Py_ssize_t n_features, Py_ssize_t n_clusters, Py_ssize_t itemsize):
    """Rows per chunk for this problem size (a chunk's rows and distances fit in L2)."""
    cdef Py_ssize_t rows = min(CHUNK_BYTES // (n_features * itemsize),
                               DIST_BYTES // (n_clusters * itemsize))
    return max(MIN_CHUNK, min(MAX_CHUNK, rows))

cdef extern from *:
    """
    #include <stdint.h>
    /* Index of the first minimum of off + v, written with selects so that gcc emits
       minsd + cmov: a branch on "new minimum?" mispredicts on random data and
       measured 2.5x slower for the whole step at d=2, k=8. */
    #define GMM_FAST_ARGMIN(T, NAME)                                    \
    static inline Py_ssize_t NAME(const T *v, const T *off, Py_ssize_t n) { \
        T m = off[0] + v[0];                                            \
        Py_ssize_t best = 0;                                            \
        for (Py_ssize_t j = 1; j < n; j++) {                            \
            T x = off[j] + v[j];                                        \
            best = x < m ? j : best;                                    \
            m = x < m ? x : m;                                          \
        }                                                               \
        return best;                                                    \
    }
    GMM_FAST_ARGMIN(float, argmin_scalar_float)
    GMM_FAST_ARGMIN(double, argmin_scalar_double)

    #if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
    #define GMM_ARGMIN_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
    #else
    #define GMM_ARGMIN_CLONES
    #endif

    /* The same first minimum, vectorised: LANES running minima, each lane over
       the entries j = l mod LANES, taking an entry only if strictly smaller (so
       each lane keeps its first minimum); then the smallest index among the
       lanes that hold the overall minimum. The scalar loop is one dependent
       minsd chain: at k=256 about a fifth of the GEMM path's time. */
    #define GMM_FAST_ARGMIN_LANES(T, IDX, NAME, SCALAR)                     \
    GMM_ARGMIN_CLONES                                                       \
    static Py_ssize_t NAME(const T *v, const T *off, Py_ssize_t n) {        \
        enum { LANES = 64 / sizeof(T) };                                    \
        if (n < 2 * LANES) return SCALAR(v, off, n);                        \
        T m[LANES];                                                         \
        IDX best[LANES];                                                    \
        for (int l = 0; l < LANES; l++) { m[l] = off[l] + v[l]; best[l] = l; } \
        Py_ssize_t j = LANES;                                               \
        for (; j + LANES <= n; j += LANES) {                                \
            _Pragma("omp simd")                                             \
            for (int l = 0; l < LANES; l++) {                               \
                T x = off[j + l] + v[j + l];                                \
                IDX nearer = -(IDX)(x < m[l]);                              \
                best[l] = (best[l] & ~nearer) | ((IDX)(j + l) & nearer);    \
                m[l] = x < m[l] ? x : m[l];                                 \
            }                                                               \
        }                                                                   \
        T mv = m[0];                                                        \
        Py_ssize_t b = best[0];                                             \
        for (int l = 1; l < LANES; l++) {                                   \
            if (m[l] < mv || (m[l] == mv && best[l] < b)) { mv = m[l]; b = best[l]; } \
        }                                                                   \
        for (; j < n; j++) {                                                \
            T x = off[j] + v[j];                                            \
            if (x < mv) { mv = x; b = j; }                                  \
        }                                                                   \
        return b;                                                           \
    }
    GMM_FAST_ARGMIN_LANES(float, int32_t, argmin_float, argmin_scalar_float)
    GMM_FAST_ARGMIN_LANES(double, int64_t, argmin_double, argmin_scalar_double)

    /* |x - c|^2 summed in double; the pragma lets gcc vectorise the sum
       (it may not reorder a floating-point reduction otherwise). */
    #define GMM_FAST_SQ_DIST(T, NAME)                                   \
    static inline double NAME(const T *x, const T *c, Py_ssize_t n) {   \
        double acc = 0.0;                                               \
        _Pragma("omp simd reduction(+:acc)")                            \
        for (Py_ssize_t f = 0; f < n; f++) {                            \
            double diff = (double)x[f] - (double)c[f];                  \
            acc += diff * diff;                                         \
        }                                                               \
        return acc;                                                     \
    }
    GMM_FAST_SQ_DIST(float, sq_dist_float)
    GMM_FAST_SQ_DIST(double, sq_dist_double)

    /* The GEMM path's per-row loops, with restrict and vector clones: in Cython
       they compiled to baseline SSE2 code that gcc could not prove free of
       aliasing. shift_rows: xs = X - shift for n_rows rows of d; add_row:
       s += w x in double. */
    #define GMM_FAST_ROW_HELPERS(T, SHIFT, ADD)                                 \
    GMM_ARGMIN_CLONES                                                       \
    static void SHIFT(const T *restrict X, Py_ssize_t n_rows, Py_ssize_t d, \
                      const T *restrict shift, T *restrict xs) {            \
        for (Py_ssize_t i = 0; i < n_rows; i++) {                           \
            _Pragma("omp simd")                                             \
            for (Py_ssize_t f = 0; f < d; f++)                              \
                xs[i * d + f] = X[i * d + f] - shift[f];                    \
        }                                                                   \
    }                                                                       \
    GMM_ARGMIN_CLONES                                                       \
    static void ADD(double *restrict s, const T *restrict x, double w,      \
                    Py_ssize_t d) {                                         \
        _Pragma("omp simd")                                                 \
        for (Py_ssize_t f = 0; f < d; f++) s[f] += w * (double)x[f];        \
    }
    GMM_FAST_ROW_HELPERS(float, shift_rows_float, add_row_float)
    GMM_FAST_ROW_HELPERS(double, shift_rows_double, add_row_double)
    /* k-means++: closest[i] = min(closest[i], |x_i - c|^2) for n_rows rows, each
       distance vectorised along the features (the Cython loop's strict sum was one
       scalar chain: (1e5, 784) float32 took 32 ms, three times a read of X). */
    #define GMM_FAST_MIN_SQ_DIST(T, NAME, SQ_DIST)                              \
    GMM_ARGMIN_CLONES                                                       \
    static void NAME(const T *restrict X, Py_ssize_t n_rows, Py_ssize_t d,  \
                     const T *restrict center, double *restrict closest) {  \
        for (Py_ssize_t i = 0; i < n_rows; i++) {                           \
            double sq = SQ_DIST(X + i * d, center, d);                      \
            closest[i] = sq < closest[i] ? sq : closest[i];                 \
        }                                                                   \
    }
    GMM_FAST_MIN_SQ_DIST(float, min_sq_dist_rows_float, sq_dist_float)
    GMM_FAST_MIN_SQ_DIST(double, min_sq_dist_rows_double, sq_dist_double)
    /* k-means++ potentials: pot[t] += w_i min(closest_i, |x_i - c_t|^2) over rows
       [0, n_rows), w NULL meaning unit weights. Summed feature by feature, a row's
       squared distance is one chain of dependent FMAs; here GMM_SEED_ROWS rows share
       each chain in the lanes of a GCC/Clang vector, for up to GMM_SEED_CANDIDATES
       candidates at a time, the rows transposed GMM_SEED_FEATURES features at a time.
       (Plain C arrays stayed in memory: a store-forwarding chain per feature.) Against
       the scalar row loop, 2 threads: potentials of n=1e6, d=16, 6 candidates 27 -> 15
       ms; seeding (2e5, 128, 256) 20.3 -> 7.1 s, (1e5, 784, 10) 1.6 -> 0.64 s (scikit-learn,
       whose candidate distances are a GEMM: 6.8 and 0.47 s). */
    #if defined(__GNUC__)
    #define GMM_SEED_FAST 1
    #define GMM_SEED_ROWS 8
    #define GMM_SEED_CANDIDATES 8
    #define GMM_SEED_FEATURES 32
    #define GMM_FAST_POTENTIALS(T, NAME)                                        \
    GMM_ARGMIN_CLONES                                                           \
    static void NAME(const T *X, const T *w, Py_ssize_t n_rows, Py_ssize_t d,   \
                     const T *candidates, Py_ssize_t n_candidates,              \
                     const double *closest, double *pot, double *dist,          \
                     Py_ssize_t dist_stride) {                                  \
        enum { R = GMM_SEED_ROWS, Q = GMM_SEED_CANDIDATES, F = GMM_SEED_FEATURES }; \
        typedef double v8d __attribute__((vector_size(8 * sizeof(double))));    \
        double xt[F * R], cl[R], wr[R];                                         \
        for (Py_ssize_t i0 = 0; i0 < n_rows; i0 += R) {                         \
            int rows = n_rows - i0 < R ? (int)(n_rows - i0) : R;                \
            for (int r = 0; r < R; r++) {                                       \
                cl[r] = r < rows ? closest[i0 + r] : 0.0;                       \
                wr[r] = r < rows ? (w ? (double)w[i0 + r] : 1.0) : 0.0;         \
            }                                                                   \
            for (Py_ssize_t t0 = 0; t0 < n_candidates; t0 += Q) {               \
                int nq = n_candidates - t0 < Q ? (int)(n_candidates - t0) : Q;  \
                const T *c[Q];                                                  \
                for (int q = 0; q < Q; q++)                                     \
                    c[q] = candidates + (t0 + (q < nq ? q : 0)) * d;            \
                v8d acc[Q];                                                     \
                for (int q = 0; q < Q; q++) acc[q] = (v8d){0};                  \
                for (Py_ssize_t f0 = 0; f0 < d; f0 += F) {                      \
                    int nf = d - f0 < F ? (int)(d - f0) : F;                    \
                    for (int f = 0; f < nf; f++)                                \
                        for (int r = 0; r < R; r++)                             \
                            xt[f * R + r] = r < rows                            \
                                ? (double)X[(i0 + r) * d + f0 + f] : 0.0;       \
                    for (int f = 0; f < nf; f++) {                              \
                        v8d x;                                                  \
                        __builtin_memcpy(&x, xt + f * R, sizeof x);             \
                        for (int q = 0; q < Q; q++) {                           \
                            v8d diff = x - (double)c[q][f0 + f];                \
                            acc[q] += diff * diff;                              \
                        }                                                       \
                    }                                                           \
                }                                                               \
                if (dist)  /* the distances too: the caller keeps the best's */  \
                    for (int q = 0; q < nq; q++)                                \
                        for (int r = 0; r < rows; r++)                          \
                            dist[(t0 + q) * dist_stride + i0 + r] = acc[q][r];  \
                for (int q = 0; q < nq; q++) {                                  \
                    double part[R], sum = 0.0;                                  \
                    _Pragma("omp simd")                                         \
                    for (int r = 0; r < R; r++)                                 \
                        part[r] = wr[r] * (acc[q][r] < cl[r] ? acc[q][r] : cl[r]); \
                    for (int r = 0; r < R; r++) sum += part[r];                 \
                    pot[t0 + q] += sum;                                         \
                }                                                               \
            }                                                                   \
        }                                                                       \
    }

    GMM_FAST_POTENTIALS(float, seed_potentials_float)
    GMM_FAST_POTENTIALS(double, seed_potentials_double)
    #else
    #define GMM_SEED_FAST 0
    static void seed_potentials_float(const float *X, const float *w, Py_ssize_t n_rows,
        Py_ssize_t d, const float *candidates, Py_ssize_t n_candidates,
        const double *closest, double *pot, double *dist, Py_ssize_t dist_stride) {}
    static void seed_potentials_double(const double *X, const double *w, Py_ssize_t n_rows,
        Py_ssize_t d, const double *candidates, Py_ssize_t n_candidates,
        const double *closest, double *pot, double *dist, Py_ssize_t dist_stride) {}
    #endif
    """
    Py_ssize_t argmin_float(const float *v, const float *off, Py_ssize_t n) noexcept nogil
    Py_ssize_t argmin_double(const double *v, const double *off, Py_ssize_t n) noexcept nogil
    double sq_dist_float(const float *x, const float *c, Py_ssize_t n) noexcept nogil
    double sq_dist_double(const double *x, const double *c, Py_ssize_t n) noexcept nogil
    void shift_rows_float(const float *X, Py_ssize_t n_rows, Py_ssize_t d, const float *shift,
                          float *xs) noexcept nogil
    void shift_rows_double(const double *X, Py_ssize_t n_rows, Py_ssize_t d,
                           const double *shift, double *xs) noexcept nogil
    void add_row_float(double *s, const float *x, double w, Py_ssize_t d) noexcept nogil
    void add_row_double(double *s, const double *x, double w, Py_ssize_t d) noexcept nogil
    void min_sq_dist_rows_float(const float *X, Py_ssize_t n_rows, Py_ssize_t d,
                                const float *center, double *closest) noexcept nogil
    void min_sq_dist_rows_double(const double *X, Py_ssize_t n_rows, Py_ssize_t d,
                                 const double *center, double *closest) noexcept nogil
    const bint GMM_SEED_FAST
    void seed_potentials_float(const float *X, const float *w, Py_ssize_t n_rows, Py_ssize_t d,
                               const float *candidates, Py_ssize_t n_candidates,
                               const double *closest, double *pot, double *dist,
                               Py_ssize_t dist_stride) noexcept nogil
    void seed_potentials_double(const double *X, const double *w, Py_ssize_t n_rows,
                                Py_ssize_t d, const double *candidates,
                                Py_ssize_t n_candidates, const double *closest,
                                double *pot, double *dist, Py_ssize_t dist_stride) noexcept nogil


# Narrow data (n_features <= DIRECT_MAX_FEATURES): the GEMM's fixed cost per call and
# the scalar argmin over a row of distances dominated (d=16 k=64 float32: 44 ms of
# which the argmin alone ~20). This path computes the distances of a few rows at a
# time in registers, vectorised across centres, takes the argmin with vector
# reductions and adds the row's statistics while it is in cache.

cdef extern from *:
    """
    #include <math.h>
    #include <stdint.h>

    /* Wider vectors where the CPU has them, chosen at load time (never
       -march=native: the default clone runs on any x86-64). */
    #if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
    #define GMM_LLOYD_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
    #define GMM_LLOYD_HAVE_CLONES 1
    #else
    #define GMM_LLOYD_CLONES
    #define GMM_LLOYD_HAVE_CLONES 0
    #endif

    /* Whether the direct path gets wide vectors (an AVX2 or AVX-512 clone). Built
       for baseline SSE2 it lost to the GEMM at every size tried (one thread, float64:
       d=2 k=8 15 vs 10 ms, d=8 k=16 43 vs 24, d=16 k=64 220 vs 104). */
    static int gmm_lloyd_direct_fast(void) {
    #if GMM_LLOYD_HAVE_CLONES
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    #else
        return 0;
    #endif
    }

    /* The wide-row path keeps 16 accumulators of 64 bytes in registers: AVX-512 has
       the 32 registers that takes; the AVX2 clone spilled them and ran 2.1-2.4x
       slower (d=784 k=10, d=128 k=32, one thread), so there the GEMM serves. */
    static int gmm_lloyd_wide_fast(void) {
    #if GMM_LLOYD_HAVE_CLONES
        return gmm_lloyd_direct_fast() && __builtin_cpu_supports("avx512f")
               && __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bw")
               && __builtin_cpu_supports("avx512dq");
    #else
        return 0;
    #endif
    }

    /* Rows per group: two 64-byte vectors of them (16 doubles, 32 floats). Centres
       per pass: 4 give 8 independent FMA chains and load each row vector once for 4
       centres (d=16 k=64 float64, one thread: 89 ms with 1 centre, 77 with 4). */
    #define GMM_LLOYD_ROW_BYTES 128
    #define GMM_LLOYD_CENTERS 4

    /* Rows [0, n_rows) of X: labels, and the block's inertia (returned if
       with_inertia, else 0), counts and sums (if sums != NULL). The group's shifted rows are transposed into xs
       (n_features x ROWS) so that one vector holds a feature of ROWS rows: the
       distances are vectorised across rows and the running argmin across centres
       needs no horizontal step. centers_m2 is -2 * centers padded with zero rows to
       k_pad (a multiple of CENTERS), sq_norms is |c|^2 padded with +inf, so acc is
       |c|^2 - 2 x.c and a padded centre never wins. The update takes a centre only
       if strictly nearer: the first minimum, as np.argmin. It is written with a
       mask, not "?:", which gcc turned into a masked store behind a mispredicted
       branch (d=16 k=64: 145 -> 90 ms). */
    /* The arguments of both direct kernels (narrow rows, wide rows) and of their
       dispatcher: one list, so that the three cannot drift apart. */
    #define GMM_LLOYD_DIRECT_PARAMS(T)                                                   \
        const T *X, const T *sample_weight, const T *shift, Py_ssize_t n_rows,           \
        Py_ssize_t n_features, const T *centers, const T *centers_m2, const T *sq_norms, \
        Py_ssize_t k_pad, int *labels, double *sums, double *counts, T *xs,              \
        Py_ssize_t *changed, int with_inertia
    #define GMM_FAST_LLOYD_DIRECT(T, IDX, NAME)                                          \
    GMM_LLOYD_CLONES                                                                     \
    static double NAME(GMM_LLOYD_DIRECT_PARAMS(T)) {                                    \
        enum { ROWS = GMM_LLOYD_ROW_BYTES / sizeof(T), CENTERS = GMM_LLOYD_CENTERS };  \
        double inertia = 0.0;                                                            \
        Py_ssize_t n_changed = 0;                                                        \
        for (Py_ssize_t i0 = 0; i0 < n_rows; i0 += ROWS) {                              \
            Py_ssize_t rows = n_rows - i0 < ROWS ? n_rows - i0 : ROWS;                   \
            /* Missing rows of the last group are zeros; their labels are dropped. */   \
            for (Py_ssize_t f = 0; f < n_features; f++)                                  \
                for (Py_ssize_t r = 0; r < ROWS; r++)                                    \
                    xs[f * ROWS + r] =                                                   \
                        r < rows ? X[(i0 + r) * n_features + f] - shift[f] : (T)0;       \
            T best_dist[ROWS];                                                           \
            IDX best[ROWS];                                                              \
            for (int r = 0; r < ROWS; r++) { best_dist[r] = (T)INFINITY; best[r] = 0; }  \
            for (Py_ssize_t j = 0; j < k_pad; j += CENTERS) {                            \
                T acc[CENTERS][ROWS];                                                    \
                for (int q = 0; q < CENTERS; q++) {                                      \
                    _Pragma("omp simd")                                                  \
                    for (int r = 0; r < ROWS; r++) acc[q][r] = sq_norms[j + q];          \
                }                                                                        \
                for (Py_ssize_t f = 0; f < n_features; f++)                              \
                    for (int q = 0; q < CENTERS; q++) {                                  \
                        T c = centers_m2[(j + q) * n_features + f];                      \
                        _Pragma("omp simd")                                              \
                        for (int r = 0; r < ROWS; r++) acc[q][r] += xs[f * ROWS + r] * c; \
                    }                                                                    \
                for (int q = 0; q < CENTERS; q++) {                                      \
                    _Pragma("omp simd")                                                  \
                    for (int r = 0; r < ROWS; r++) {                                     \
                        IDX nearer = -(IDX)(acc[q][r] < best_dist[r]);                   \
                        best[r] = (best[r] & ~nearer) | ((IDX)(j + q) & nearer);         \
                        best_dist[r] = acc[q][r] < best_dist[r] ? acc[q][r] : best_dist[r]; \
                    }                                                                    \
                }                                                                        \
            }                                                                            \
            for (Py_ssize_t r = 0; r < rows; r++) {                                      \
                int label = (int)best[r];                                                \
                const T *c = centers + label * n_features;                               \
                double w = sample_weight ? sample_weight[i0 + r] : 1.0, sq = 0.0;        \
                n_changed += labels[i0 + r] != label;                                    \
                labels[i0 + r] = label;                                                  \
                /* The exact squared distance in double (the expansion cancels). */     \
                if (with_inertia) {                                                      \
                    _Pragma("omp simd reduction(+:sq)")                                  \
                    for (Py_ssize_t f = 0; f < n_features; f++) {                        \
                        double diff = (double)xs[f * ROWS + r] - (double)c[f];           \
                        sq += diff * diff;                                               \
                    }                                                                    \
                    inertia += w * sq;                                                   \
                }                                                                        \
                if (sums) {                                                              \
                    counts[label] += w;                                                  \
                    for (Py_ssize_t f = 0; f < n_features; f++)                          \
                        sums[label * n_features + f] += w * (double)xs[f * ROWS + r];    \
                }                                                                        \
            }                                                                            \
        }                                                                                \
        *changed = n_changed;                                                            \
        return inertia;                                                                  \
    }
    GMM_FAST_LLOYD_DIRECT(float, int32_t, lloyd_narrow_float)
    GMM_FAST_LLOYD_DIRECT(double, int64_t, lloyd_narrow_double)

    /* Wide rows, few centres: the same arguments and results, GMM_LLOYD_WIDE_ROWS rows
       at a time. The rows are read from memory once; their dot products with every
       centre come from a register block of rows x CENTERS vector accumulators along
       the features (each centre vector loaded serves all the rows, each row vector
       all the centres), then the exact distance and the sums while the rows are in
       L1. The GEMM packed every chunk again for only a few centres. Here centers_m2
       has rows of GMM_LLOYD_PAD_FEATURES(n_features) entries, zero-padded, and xs
       holds GMM_LLOYD_WIDE_ROWS rows as long, whose padding the caller zeroed. */
    #define GMM_LLOYD_PAD 16
    #define GMM_LLOYD_PAD_FEATURES(d) (((d) + GMM_LLOYD_PAD - 1) / GMM_LLOYD_PAD * GMM_LLOYD_PAD)
    #define GMM_LLOYD_WIDE_ROWS 4
    /* Sum the first 2H lanes of every accumulator into its first H (vector adds). */
    #define GMM_LLOYD_FOLD(H, Q)                                                         \
        for (int r = 0; r < GMM_LLOYD_WIDE_ROWS; r++)                                    \
            for (int q = 0; q < (Q); q++) {                                              \
                _Pragma("omp simd")                                                      \
                for (int l = 0; l < (H); l++) acc[r][q][l] += acc[r][q][l + (H)];        \
            }
    /* Centres j .. j+Q-1 against the group's rows: dot products in a register block
       of rows x Q vectors, lanes folded in halves (a serial sum of the lanes cost more
       than the dot products at d=128), then the running first minimum per row. */
    #define GMM_LLOYD_WIDE_BLOCK(T, Q)                                                   \
        {                                                                                \
            enum { LANES_ = 64 / sizeof(T) };                                            \
            const T *c = centers_m2 + j * d_pad;                                         \
            T acc[GMM_LLOYD_WIDE_ROWS][Q][LANES_];                                       \
            for (int r = 0; r < GMM_LLOYD_WIDE_ROWS; r++)                                \
                for (int q = 0; q < (Q); q++) {                                          \
                    _Pragma("omp simd")                                                  \
                    for (int l = 0; l < LANES_; l++) acc[r][q][l] = 0;                   \
                }                                                                        \
            for (Py_ssize_t f = 0; f < d_pad; f += LANES_)                               \
                for (int r = 0; r < GMM_LLOYD_WIDE_ROWS; r++)                            \
                    for (int q = 0; q < (Q); q++) {                                      \
                        _Pragma("omp simd")                                              \
                        for (int l = 0; l < LANES_; l++)                                 \
                            acc[r][q][l] += xs[r * d_pad + f + l] * c[q * d_pad + f + l]; \
                    }                                                                    \
            if (LANES_ > 8) { GMM_LLOYD_FOLD(8, Q) }                                     \
            GMM_LLOYD_FOLD(4, Q) GMM_LLOYD_FOLD(2, Q) GMM_LLOYD_FOLD(1, Q)               \
            for (int r = 0; r < GMM_LLOYD_WIDE_ROWS; r++)                                \
                for (int q = 0; q < (Q); q++) {                                          \
                    T dist = sq_norms[j + q] + acc[r][q][0];                             \
                    /* strictly nearer: the first minimum, as np.argmin */               \
                    int nearer = dist < best_dist[r];                                    \
                    best[r] = nearer ? (int)(j + q) : best[r];                           \
                    best_dist[r] = nearer ? dist : best_dist[r];                         \
                }                                                                        \
        }
    #define GMM_FAST_LLOYD_ROWWISE(T, NAME)                                              \
    GMM_LLOYD_CLONES                                                                     \
    static double NAME(GMM_LLOYD_DIRECT_PARAMS(T)) {                                    \
        enum { ROWS = GMM_LLOYD_WIDE_ROWS, CENTERS = GMM_LLOYD_CENTERS };               \
        const Py_ssize_t d_pad = GMM_LLOYD_PAD_FEATURES(n_features);                     \
        double inertia = 0.0;                                                            \
        Py_ssize_t n_changed = 0;                                                        \
        for (Py_ssize_t i0 = 0; i0 < n_rows; i0 += ROWS) {                              \
            int rows = n_rows - i0 < ROWS ? (int)(n_rows - i0) : ROWS;                   \
            for (int r = 0; r < ROWS; r++) {                                             \
                const T *x = X + (i0 + r) * n_features;                                  \
                T *y = xs + r * d_pad;                                                   \
                if (r < rows) {                                                          \
                    _Pragma("omp simd")                                                  \
                    for (Py_ssize_t f = 0; f < n_features; f++) y[f] = x[f] - shift[f];  \
                } else {                                                                 \
                    for (Py_ssize_t f = 0; f < n_features; f++) y[f] = (T)0;             \
                }                                                                        \
            }                                                                            \
            /* The next rows start on their way from memory while these compute. */    \
            if (i0 + 2 * ROWS <= n_rows)                                                 \
                for (Py_ssize_t e = 0; e < ROWS * n_features; e += 64 / sizeof(T))      \
                    __builtin_prefetch(X + (i0 + ROWS) * n_features + e);               \
            T best_dist[ROWS];                                                           \
            int best[ROWS];                                                              \
            for (int r = 0; r < ROWS; r++) { best_dist[r] = (T)INFINITY; best[r] = 0; }  \
            /* k_pad: the centres rounded up to 2; a last pair takes a narrower block */ \
            Py_ssize_t j = 0;                                                            \
            for (; j + CENTERS <= k_pad; j += CENTERS) GMM_LLOYD_WIDE_BLOCK(T, CENTERS)  \
            if (j < k_pad) GMM_LLOYD_WIDE_BLOCK(T, 2)                                    \
            for (int r = 0; r < rows; r++) {                                             \
                int label = best[r];                                                     \
                const T *c = centers + label * n_features, *y = xs + r * d_pad;          \
                double w = sample_weight ? sample_weight[i0 + r] : 1.0, sq = 0.0;        \
                n_changed += labels[i0 + r] != label;                                    \
                labels[i0 + r] = label;                                                  \
                double *s = sums ? sums + label * n_features : NULL;                      \
                if (s) counts[label] += w;                                               \
                if (s && with_inertia) {  /* one pass: the exact distance and the sums */ \
                    _Pragma("omp simd reduction(+:sq)")                                  \
                    for (Py_ssize_t f = 0; f < n_features; f++) {                        \
                        double diff = (double)y[f] - (double)c[f];                       \
                        sq += diff * diff;                                               \
                        s[f] += w * (double)y[f];                                        \
                    }                                                                    \
                } else if (s) {                                                          \
                    _Pragma("omp simd")                                                  \
                    for (Py_ssize_t f = 0; f < n_features; f++) s[f] += w * (double)y[f]; \
                } else if (with_inertia) {                                               \
                    _Pragma("omp simd reduction(+:sq)")                                  \
                    for (Py_ssize_t f = 0; f < n_features; f++) {                        \
                        double diff = (double)y[f] - (double)c[f];                       \
                        sq += diff * diff;                                               \
                    }                                                                    \
                }                                                                        \
                inertia += w * sq;                                                       \
            }                                                                            \
        }                                                                                \
        *changed = n_changed;                                                            \
        return inertia;                                                                  \
    }
    GMM_FAST_LLOYD_ROWWISE(float, lloyd_rowwise_float)
    GMM_FAST_LLOYD_ROWWISE(double, lloyd_rowwise_double)

    /* One entry per dtype for the two direct paths (they share their arguments). */
    #define GMM_FAST_LLOYD_PICK(T, NAME, NARROW, WIDE)                                   \
    static double NAME(GMM_LLOYD_DIRECT_PARAMS(T), int rowwise) {                       \
        return (rowwise ? WIDE : NARROW)(X, sample_weight, shift, n_rows, n_features,   \
                                         centers, centers_m2, sq_norms, k_pad, labels,  \
                                         sums, counts, xs, changed, with_inertia);      \
    }
    GMM_FAST_LLOYD_PICK(float, lloyd_direct_float, lloyd_narrow_float, lloyd_rowwise_float)
    GMM_FAST_LLOYD_PICK(double, lloyd_direct_double, lloyd_narrow_double, lloyd_rowwise_double)
    """
    const Py_ssize_t GMM_LLOYD_ROW_BYTES, GMM_LLOYD_CENTERS, GMM_LLOYD_WIDE_ROWS
    Py_ssize_t GMM_LLOYD_PAD_FEATURES(Py_ssize_t n_features) noexcept nogil
    int gmm_lloyd_direct_fast() noexcept nogil
    int gmm_lloyd_wide_fast() noexcept nogil
    double lloyd_direct_float(const float *X, const float *sample_weight, const float *shift,
                              Py_ssize_t n_rows, Py_ssize_t n_features, const float *centers,
                              const float *centers_m2, const float *sq_norms, Py_ssize_t k_pad,
                              int *labels, double *sums, double *counts, float *xs,
                              Py_ssize_t *changed, int with_inertia, int rowwise) noexcept nogil
    double lloyd_direct_double(const double *X, const double *sample_weight, const double *shift,
                               Py_ssize_t n_rows, Py_ssize_t n_features, const double *centers,
                               const double *centers_m2, const double *sq_norms,
                               Py_ssize_t k_pad, int *labels, double *sums, double *counts,
                               double *xs, Py_ssize_t *changed, int with_inertia,
                               int rowwise) noexcept nogil


# Up to 16 features the direct path beat the GEMM (2 threads, time / sklearn's:
# d=2 k=8 ~1.0 -> 0.5-0.6, d=16 k=64 ~1.0 -> 0.7); wider data takes the GEMM
# unless it has few centres (the row-wise path, see lloyd_step).
cdef Py_ssize_t DIRECT_MAX_FEATURES = 16
cdef bint DIRECT_FAST = gmm_lloyd_direct_fast()
cdef bint WIDE_FAST = gmm_lloyd_wide_fast()


def use_direct_path(bint enabled):
    """Allow (the default, where the CPU has AVX2 / AVX-512) or forbid the direct paths.

    Returns the previous setting. For tests: on a CPU with AVX2 it is the only
    way to run the GEMM path on narrow data, which CPUs without AVX2 take, or
    (with AVX-512) on wide data with few centres, and k-means++'s row loop.
    """
    global DIRECT_FAST, WIDE_FAST
    previous = DIRECT_FAST
    DIRECT_FAST = enabled and gmm_lloyd_direct_fast()
    WIDE_FAST = enabled and gmm_lloyd_wide_fast()
    return previous


cdef inline Py_ssize_t _argmin(const floating *v, const floating *off,
                               Py_ssize_t n) noexcept nogil:
    if floating is float:
        return argmin_float(v, off, n)
    else:
        return argmin_double(v, off, n)


cdef inline double _sq_dist(const floating *x, const floating *c, Py_ssize_t n) noexcept nogil:
    if floating is float:
        return sq_dist_float(x, c, n)
    else:
        return sq_dist_double(x, c, n)


cdef inline void _gemm_abt(Py_ssize_t m, Py_ssize_t n, Py_ssize_t k, floating alpha,
                           const floating *a, const floating *b, floating beta,
                           floating *c) noexcept nogil:
    """Row-major ``c[m, n] = alpha * a[m, k] @ b[n, k].T + beta * c``."""
    # Column-major BLAS sees c.T = b @ a.T: 'T' on b (stored k x n), 'N' on a.
    cdef int m_ = <int>n, n_ = <int>m, k_ = <int>k
    cdef char *trans_b = 'T'
    cdef char *trans_a = 'N'
    if floating is float:
        sgemm(trans_b, trans_a, &m_, &n_, &k_, &alpha, <float*>b, &k_,
              <float*>a, &k_, &beta, c, &m_)
    else:
        dgemm(trans_b, trans_a, &m_, &n_, &k_, &alpha, <double*>b, &k_,
              <double*>a, &k_, &beta, c, &m_)


cdef Py_ssize_t _nearest_in_chunk(
    const floating[:, ::1] X, const floating[::1] shift,
    const floating[:, ::1] centers, const floating[::1] centers_sq_norms,
    Py_ssize_t start, Py_ssize_t end, int[::1] labels,
    floating *xs, floating *dist,
) noexcept nogil:
    """Label rows ``start:end``, leaving the shifted rows in ``xs``; how many labels changed."""
    cdef:
        Py_ssize_t n_rows = end - start
        Py_ssize_t n_clusters = centers.shape[0], n_features = centers.shape[1]
        Py_ssize_t i, changed = 0
        int label

    if floating is float:
        shift_rows_float(&X[start, 0], n_rows, n_features, &shift[0], xs)
    else:
        shift_rows_double(&X[start, 0], n_rows, n_features, &shift[0], xs)
    # The nearest centre minimises |c|^2 - 2 xs.c (|x|^2 is the same for all): the GEMM
    # writes -2 xs @ centers.T and the argmin adds |c|^2 as it reads (filling dist with
    # |c|^2 for a beta=1 GEMM was an extra pass: 2 threads, d=128 k=256 159 -> 152 ms
    # float64, 84 -> 82 float32; d=64 k=256 88 -> 82.5, 47.6 -> 45.3).
    _gemm_abt(n_rows, n_clusters, n_features, -2.0, xs, &centers[0, 0], 0.0, dist)
    for i in range(n_rows):
        label = <int>_argmin(&dist[i * n_clusters], &centers_sq_norms[0], n_clusters)
        changed += labels[start + i] != label
        labels[start + i] = label
    return changed


cdef inline double _lloyd_direct(
    const floating[:, ::1] X, const floating *sample_weight,
    const floating[::1] shift, const floating[:, ::1] centers,
    const floating[:, ::1] centers_m2, const floating[::1] sq_norms,
    Py_ssize_t start, Py_ssize_t end, int[::1] labels,
    double *sums, double *counts, floating *xs, Py_ssize_t *changed, bint rowwise,
    bint with_inertia,
) noexcept nogil:
    """The direct path over rows ``start:end``; returns their inertia (or 0)."""
    cdef Py_ssize_t n = end - start, d = X.shape[1], k_pad = centers_m2.shape[0]
    cdef const floating *weights = sample_weight + start if sample_weight != NULL else NULL
    if rowwise:  # it takes the centres 4 then 2 at a time (the arrays hold a multiple of 4)
        k_pad = (centers.shape[0] + 1) // 2 * 2
    if floating is float:
        return lloyd_direct_float(
            &X[start, 0], weights, &shift[0], n, d, &centers[0, 0], &centers_m2[0, 0],
            &sq_norms[0], k_pad, &labels[start], sums, counts, xs, changed, with_inertia,
            rowwise)
    else:
        return lloyd_direct_double(
            &X[start, 0], weights, &shift[0], n, d, &centers[0, 0], &centers_m2[0, 0],
            &sq_norms[0], k_pad, &labels[start], sums, counts, xs, changed, with_inertia,
            rowwise)


cdef void _lloyd_block(
    const floating[:, ::1] X, const floating *sample_weight,
    const floating[::1] shift, const floating[:, ::1] centers,
    const floating[::1] centers_sq_norms,
    Py_ssize_t start, Py_ssize_t end, Py_ssize_t chunk, int[::1] labels,
    double *sums, double *counts, double *inertia, Py_ssize_t *changed,
    bint update_centers, bint with_inertia, floating *xs, floating *dist,
) noexcept nogil:
    """Label rows ``start:end``; add their statistics to one block's ``sums``, ``counts``."""
    cdef:
        Py_ssize_t n_features = centers.shape[1]
        Py_ssize_t chunk_start, chunk_end, i
        int label
        double w, block_inertia = 0.0
        Py_ssize_t block_changed = 0
        const floating *x
        const floating *c

    chunk_start = start
    while chunk_start < end:
        chunk_end = min(chunk_start + chunk, end)
        block_changed += _nearest_in_chunk(X, shift, centers, centers_sq_norms,
                                           chunk_start, chunk_end, labels, xs, dist)
        for i in range(chunk_end - chunk_start):
            label = labels[chunk_start + i]
            w = sample_weight[chunk_start + i] if sample_weight != NULL else 1.0
            x = &xs[i * n_features]
            c = &centers[label, 0]
            if with_inertia:  # the exact squared distance, not the GEMM form, which cancels
                block_inertia += w * _sq_dist(x, c, n_features)
            if update_centers:
                counts[label] += w
                if floating is float:
                    add_row_float(&sums[label * n_features], x, w, n_features)
                else:
                    add_row_double(&sums[label * n_features], x, w, n_features)
        chunk_start = chunk_end
    inertia[0] = block_inertia
    changed[0] = block_changed


def lloyd_step(
    const floating[:, ::1] X,
    const floating[::1] sample_weight,
    const floating[::1] shift,
    const floating[:, ::1] centers,
    int[::1] labels,
    double[:, :, ::1] block_sums,
    double[:, ::1] block_counts,
    double[::1] block_inertia,
    bint update_centers,
    int n_threads,
    bint with_inertia=True,
):
    """Assign samples to their nearest centre; sum each block's statistics.

    Writes ``labels`` and, per block ``b``, ``block_inertia[b]`` (when
    ``with_inertia``, else 0: Lloyd's iterations need no inertia, and its exact
    distances cost a pass over each row) and, when ``update_centers``,
    ``block_counts[b, j]`` (weight of cluster j) and ``block_sums[b, j]``
    (weighted sum of ``x - shift`` over cluster j). The caller adds the blocks
    in order. ``centers`` are about ``shift`` too. ``sample_weight`` None means
    unit weights (no n-vector of ones).
    Returns how many labels changed, counted as they are overwritten, so the
    caller's strict-convergence test needs no copy of the labels nor a pass.
    """
    cdef:
        Py_ssize_t n_samples = X.shape[0], n_features = X.shape[1]
        Py_ssize_t n_clusters = centers.shape[0], n_blocks = block_inertia.shape[0]
        Py_ssize_t rows_per_block, b, j, f, start, end
        Py_ssize_t chunk = chunk_rows(n_features, n_clusters, sizeof(floating))
        floating[::1] centers_sq_norms
        floating[:, ::1] centers_m2
        floating *xs
        floating *dist
        double *sums
        double *counts
        Py_ssize_t[::1] block_changed
        const floating *weights = NULL if sample_weight is None else &sample_weight[0]
        bint narrow = n_features <= DIRECT_MAX_FEATURES
        # Wide rows and few centres: the row-wise register blocks beat the GEMM while
        # k <= d/2 (float64) or d/8 (float32). Kernel time / GEMM path's, 2 threads:
        # float64 d=64 k=32 0.95, d=128 k=48 0.93, d=784 k=10 0.7, k=128 0.78, but
        # d=32 k=32 1.11; float32 d=64 k=8 0.81, k=16 1.13, d=128 k=16 0.95, k=32
        # 1.05, d=784 k=10 0.8 (the GEMM runs twice as fast in float32, these not).
        bint rowwise = (not narrow
                        and n_clusters * (8 if sizeof(floating) == 4 else 2) <= n_features)
        bint direct = (DIRECT_FAST and narrow) or (WIDE_FAST and rowwise)
        Py_ssize_t d_pad = GMM_LLOYD_PAD_FEATURES(n_features), n_xs = chunk * n_features
        # The direct path takes centres GMM_LLOYD_CENTERS at a time.
        Py_ssize_t k_pad = ((n_clusters + GMM_LLOYD_CENTERS - 1) // GMM_LLOYD_CENTERS
                            * GMM_LLOYD_CENTERS if direct else n_clusters)

    block_sums[...] = 0.0
    block_counts[...] = 0.0
    block_inertia[...] = 0.0
    if n_samples == 0 or n_blocks == 0:
        return 0
    rows_per_block = (n_samples + n_blocks - 1) // n_blocks
    block_changed = np.zeros(n_blocks, dtype=np.intp)

    dtype = np.float32 if floating is float else np.float64
    # |c|^2, and +inf for the padded centres so that they are never nearest.
    centers_sq_norms = np.full(k_pad, np.inf, dtype=dtype)
    for j in range(n_clusters):
        centers_sq_norms[j] = 0
        for f in range(n_features):
            centers_sq_norms[j] += centers[j, f] * centers[j, f]
    if direct:
        # -2 c: |c|^2 - 2 x.c is then one FMA per feature (scaling by -2 is exact).
        padded = np.zeros((k_pad, n_features if narrow else d_pad), dtype=dtype)
        padded[:n_clusters, :n_features] = -2 * np.asarray(centers)
        centers_m2 = padded
        # xs holds one group of rows (transposed if narrow, else padded rows)
        chunk = GMM_LLOYD_ROW_BYTES // sizeof(floating) if narrow else GMM_LLOYD_WIDE_ROWS
        n_xs = chunk * n_features if narrow else GMM_LLOYD_WIDE_ROWS * d_pad
    else:
        centers_m2 = np.zeros((1, 1), dtype=dtype)

    with nogil, parallel(num_threads=n_threads):
        xs = <floating*> calloc(n_xs, sizeof(floating))  # rowwise: zero padding
        dist = <floating*> malloc(chunk * n_clusters * sizeof(floating))
        # Each thread sums a block in its own buffers, then copies them to the block's
        # slots: neighbouring slots share cache lines, and two threads adding rows into
        # them (one store per row) made d=2 k=8 up to 1.7x slower, depending on where
        # numpy put the arrays (2.85 ms 64-byte aligned, 4.81 at offset 48).
        sums = <double*> malloc(n_clusters * n_features * sizeof(double))
        counts = <double*> malloc(n_clusters * sizeof(double))
        for b in prange(n_blocks, schedule='dynamic'):
            start = b * rows_per_block
            end = min(start + rows_per_block, n_samples)
            if start < end and update_centers:
                memset(sums, 0, n_clusters * n_features * sizeof(double))
                memset(counts, 0, n_clusters * sizeof(double))
            if start < end and direct:
                block_inertia[b] = _lloyd_direct(
                    X, weights, shift, centers, centers_m2, centers_sq_norms,
                    start, end, labels, sums if update_centers else NULL,
                    counts if update_centers else NULL, xs, &block_changed[b], rowwise,
                    with_inertia)
            elif start < end:
                _lloyd_block(X, weights, shift, centers, centers_sq_norms,
                             start, end, chunk, labels, sums if update_centers else NULL,
                             counts if update_centers else NULL, &block_inertia[b],
                             &block_changed[b], update_centers, with_inertia, xs, dist)
            if start < end and update_centers:
                memcpy(&block_sums[b, 0, 0], sums, n_clusters * n_features * sizeof(double))
                memcpy(&block_counts[b, 0], counts, n_clusters * sizeof(double))
        free(xs)
        free(dist)
        free(sums)
        free(counts)
    return int(np.sum(block_changed))


def min_sq_distances(
    const floating[:, ::1] X,
    const floating[::1] center,
    double[::1] closest_sq_dist,
    int n_threads,
):
    """``closest_sq_dist[i] = min(closest_sq_dist[i], |X[i] - center|^2)`` (k-means++)."""
    cdef:
        Py_ssize_t n_samples = X.shape[0], n_features = X.shape[1]
        Py_ssize_t step = 1024, n_steps = (n_samples + step - 1) // step, s, start

    for s in prange(n_steps, nogil=True, num_threads=n_threads, schedule='static'):
        start = s * step
        if floating is float:
            min_sq_dist_rows_float(&X[start, 0], min(step, n_samples - start), n_features,
                                   &center[0], &closest_sq_dist[start])
        else:
            min_sq_dist_rows_double(&X[start, 0], min(step, n_samples - start), n_features,
                                    &center[0], &closest_sq_dist[start])


cdef void _potentials_block(
    const floating[:, ::1] X, const floating *sample_weight,
    const floating[:, ::1] candidates, const double[::1] closest_sq_dist,
    Py_ssize_t start, Py_ssize_t end, double *pot, double *dist, Py_ssize_t dist_stride,
) noexcept nogil:
    """Add ``w * min(closest, |x - candidate|^2)`` over rows ``start:end`` to ``pot``;
    with ``dist`` (not NULL), also ``dist[t * dist_stride + i] = |x_i - candidate_t|^2``."""
    cdef:
        Py_ssize_t n_candidates = candidates.shape[0], n_features = X.shape[1]
        Py_ssize_t i, t, f
        double sq, diff
        const floating *w = sample_weight + start if sample_weight != NULL else NULL

    # With AVX-512 only: the AVX2 and SSE2 clones of the vector form spill its 8 + 8
    # accumulators and lost to this row loop (d=16: 80 and 61 ms vs 40, one thread).
    if GMM_SEED_FAST and WIDE_FAST:
        if floating is float:
            seed_potentials_float(&X[start, 0], w, end - start, n_features, &candidates[0, 0],
                                  n_candidates, &closest_sq_dist[start], pot,
                                  dist + start if dist != NULL else NULL, dist_stride)
        else:
            seed_potentials_double(&X[start, 0], w, end - start, n_features,
                                   &candidates[0, 0], n_candidates, &closest_sq_dist[start],
                                   pot, dist + start if dist != NULL else NULL, dist_stride)
        return
    for i in range(start, end):
        for t in range(n_candidates):
            sq = 0.0
            for f in range(n_features):
                diff = <double>X[i, f] - candidates[t, f]
                sq = sq + diff * diff
            if dist != NULL:
                dist[t * dist_stride + i] = sq
            pot[t] += (
                (sample_weight[i] if sample_weight != NULL else 1.0)
                * min(sq, closest_sq_dist[i]))


def candidate_potentials(
    const floating[:, ::1] X,
    const floating[::1] sample_weight,
    const floating[:, ::1] candidates,
    const double[::1] closest_sq_dist,
    double[:, ::1] block_potentials,
    int n_threads,
    double[:, ::1] candidate_sq_dist=None,
):
    """Per block, the k-means++ potential each candidate centre would leave.

    ``block_potentials[b, t]`` sums ``w * min(closest, |x - candidates[t]|^2)``
    over the rows of block ``b``; the caller adds the blocks in order.
    ``sample_weight`` None means unit weights. ``candidate_sq_dist`` (shape
    ``(n_candidates, n_samples)``), when given, receives every ``|x - candidates[t]|^2``,
    so that the chosen candidate's distances need no second pass over X.
    """
    cdef:
        Py_ssize_t n_samples = X.shape[0], n_blocks = block_potentials.shape[0]
        Py_ssize_t rows_per_block = (n_samples + n_blocks - 1) // n_blocks
        Py_ssize_t b, start, end, n_candidates = candidates.shape[0]
        const floating *weights = NULL if sample_weight is None else &sample_weight[0]
        double *pot
        double *dist = NULL

    block_potentials[...] = 0.0
    if n_samples == 0 or n_blocks == 0:
        return
    if candidate_sq_dist is not None:
        if (candidate_sq_dist.shape[0] != n_candidates
                or candidate_sq_dist.shape[1] != n_samples):
            raise ValueError("candidate_sq_dist should have shape (n_candidates, n_samples).")
        dist = &candidate_sq_dist[0, 0]
    with nogil, parallel(num_threads=n_threads):
        # Summed in the thread's own buffer, as lloyd_step's sums (no shared cache lines).
        pot = <double*> malloc(n_candidates * sizeof(double))
        for b in prange(n_blocks, schedule='dynamic'):
            start = b * rows_per_block
            end = min(start + rows_per_block, n_samples)
            if start < end:
                memset(pot, 0, n_candidates * sizeof(double))
                _potentials_block(X, weights, candidates, closest_sq_dist, start, end, pot,
                                  dist, n_samples)
                memcpy(&block_potentials[b, 0], pot, n_candidates * sizeof(double))
        free(pot)
