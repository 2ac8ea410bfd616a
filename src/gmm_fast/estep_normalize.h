/* The E-step's row loops that need no type parameter: normalisation of a chunk's
   log-densities into responsibilities (exp, log-sum-exp, log), and the spherical
   direct terms. Compiled once per CPU level by kernels.c; `single` is a constant in
   each of the per-precision functions kernels.c makes of the bodies. */
#ifndef GMM_ESTEP_NORMALIZE_H
#define GMM_ESTEP_NORMALIZE_H

#include <math.h>
#include <stddef.h>
#include <string.h>

#include "kernels.h"
#include "simd_math.h"

/* Inlined into one function per precision (kernels.c), so that `single` is a
   constant there: a run-time flag inside the loops cost 2-5% instead of saving 8-12%. */
#if defined(__GNUC__)
#define GMM_BODY static inline __attribute__((always_inline))
#else
#define GMM_BODY static __forceinline
#endif

/* log_norm[i] += log(total[i]): the vectorised log, or glibc's for the whole chunk
   when some total is not a positive normal double (0, inf or NaN). */
GMM_BODY void gmm_add_log(double *log_norm, const double *total, ptrdiff_t n_rows,
                        int single) {
    ptrdiff_t i;
    int unusual = 0;
    for (i = 0; i < n_rows; i++) {
        double t = total[i];
        unusual |= !(t >= 2.2250738585072014e-308 && t <= 1.7976931348623157e308);
    }
    if (!unusual) {
        #pragma omp simd
        for (i = 0; i < n_rows; i++) log_norm[i] += gmm_log_normal(total[i], single);
    }
    else
        for (i = 0; i < n_rows; i++) log_norm[i] += log(total[i]);
}

/* Rows of weighted log-densities (scores[i * n + k], as the GEMM gives them) ->
   responsibilities, component-major: lp[k * n_rows + i] is row i's term k, so that
   every loop after the first runs along the rows and vectorises for any k (the
   exp and log of k = 2..8 terms per row do not fill a vector). log_norm[i] = the
   row's log-sum-exp; total: n_rows of scratch. scores NULL: lp holds them already,
   component-major. weights not NULL: lp gets w_i times the responsibilities. */
GMM_BODY void gmm_normalize_chunk_body(int single, const double *scores, double *lp,
                                       ptrdiff_t n_rows, ptrdiff_t n, double *log_norm,
                                       double *total, const double *weights) {
    ptrdiff_t i, k;
    if (scores) {
        for (i = 0; i < n_rows; i++) {
            const double *row = scores + i * n;
            double top = -INFINITY;
            for (k = 0; k < n; k++) {
                top = row[k] > top ? row[k] : top;
                lp[k * n_rows + i] = row[k];
            }
            log_norm[i] = top;
        }
    }
    else {  /* lp already holds the scores, component-major: the same maxima */
        for (i = 0; i < n_rows; i++) log_norm[i] = -INFINITY;
        for (k = 0; k < n; k++) {
            const double *column = lp + k * n_rows;
            #pragma omp simd
            for (i = 0; i < n_rows; i++)
                log_norm[i] = column[i] > log_norm[i] ? column[i] : log_norm[i];
        }
    }
    /* The terms, added in component order (as a row-major loop would) as they come. */
    #pragma omp simd
    for (i = 0; i < n_rows; i++)
        total[i] = lp[i] = gmm_exp_nonpositive(lp[i] - log_norm[i], single);
    for (k = 1; k < n; k++) {
        double *column = lp + k * n_rows;
        #pragma omp simd
        for (i = 0; i < n_rows; i++) {
            double e = gmm_exp_nonpositive(column[i] - log_norm[i], single);
            column[i] = e;
            total[i] += e;
        }
    }
    gmm_add_log(log_norm, total, n_rows, single);
    if (weights)  /* w / total: weighted responsibilities in the same pass */
        for (i = 0; i < n_rows; i++) total[i] = weights[i] / total[i];
    else
        for (i = 0; i < n_rows; i++) total[i] = 1.0 / total[i];
    for (k = 0; k < n; k++) {
        double *column = lp + k * n_rows;
        #pragma omp simd
        for (i = 0; i < n_rows; i++) column[i] *= total[i];
    }
}

/* Narrow models' two products without a GEMM: features stored transposed
   (features[c * n_rows + i], the last of `columns` the ones), k <= a few.
   A GEMM call on a chunk this thin is mostly call, packing and the lock on
   its buffer (at (1e5, 2, 4) full, ~40% of an E-step went to dgemm; AVX2 Zen 3). */
enum { GMM_DOT_LANES = 8 };

/* lp[k * n_rows + i] = sum_c coef[c * n + k] features[c * n_rows + i]: coef's last
   row (the constant) taken first, then the features in order, one chain per score.
   Register tiles of GMM_SCORE_ROWS rows x q (<= GMM_SCORE_COMPONENTS, a constant
   where inlined) components: each feature vector loaded once for q components, the
   scores stored once (a loop per component loaded and stored them at every 4
   columns). For T double, and float (_estep's _single_columns). */
enum { GMM_SCORE_ROWS = 8, GMM_SCORE_COMPONENTS = 4 };

#define GMM_SCORE_TILE(name, T)                                                      \
    GMM_BODY void name(int q, const T *restrict coef, const T *restrict features,    \
                       ptrdiff_t n_rows, ptrdiff_t columns, ptrdiff_t n, ptrdiff_t k0, \
                       T *restrict lp) {                                             \
        enum { R = GMM_SCORE_ROWS };                                                 \
        ptrdiff_t body = n_rows - n_rows % R, i0;                                    \
        for (i0 = 0; i0 < body; i0 += R) {                                           \
            T acc[GMM_SCORE_COMPONENTS][R];                                          \
            for (int j = 0; j < q; j++) {                                            \
                T constant = coef[(columns - 1) * n + k0 + j];                       \
                for (int r = 0; r < R; r++) acc[j][r] = constant;                    \
            }                                                                        \
            for (ptrdiff_t c = 0; c + 1 < columns; c++) {                            \
                const T *restrict f = features + c * n_rows + i0;                    \
                for (int j = 0; j < q; j++) {                                        \
                    T a = coef[c * n + k0 + j];                                      \
                    _Pragma("omp simd")                                              \
                    for (int r = 0; r < R; r++) acc[j][r] += a * f[r];               \
                }                                                                    \
            }                                                                        \
            for (int j = 0; j < q; j++)                                              \
                memcpy(lp + (k0 + j) * n_rows + i0, acc[j], sizeof acc[j]);          \
        }                                                                            \
        for (ptrdiff_t i = body; i < n_rows; i++)                                    \
            for (int j = 0; j < q; j++) {                                            \
                T out = coef[(columns - 1) * n + k0 + j];                            \
                for (ptrdiff_t c = 0; c + 1 < columns; c++)                          \
                    out += coef[c * n + k0 + j] * features[c * n_rows + i];          \
                lp[(k0 + j) * n_rows + i] = out;                                     \
            }                                                                        \
    }

/* (constant widths q: each its own unrolled loop) */
#define GMM_COLUMN_SCORES(name, tile, T)                                             \
    GMM_SCORE_TILE(tile, T)                                                          \
    static void name(const T *restrict coef, const T *restrict features,             \
                     ptrdiff_t n_rows, ptrdiff_t columns, ptrdiff_t n, T *restrict lp) { \
        ptrdiff_t k0 = 0;                                                            \
        for (; k0 + GMM_SCORE_COMPONENTS <= n; k0 += GMM_SCORE_COMPONENTS)           \
            tile(GMM_SCORE_COMPONENTS, coef, features, n_rows, columns, n, k0, lp);  \
        switch (n - k0) {                                                            \
        case 3: tile(3, coef, features, n_rows, columns, n, k0, lp); break;          \
        case 2: tile(2, coef, features, n_rows, columns, n, k0, lp); break;          \
        case 1: tile(1, coef, features, n_rows, columns, n, k0, lp); break;          \
        }                                                                            \
    }
GMM_COLUMN_SCORES(gmm_column_scores, gmm_score_tile, double)
GMM_COLUMN_SCORES(gmm_column_scores_f32, gmm_score_tile_f32, float)

/* The GMM_DOT_LANES (8) partial sums of a dot product, added in a fixed tree (float
   or double lanes). */
#define GMM_FOLD_LANES(p) \
    ((((p)[0] + (p)[1]) + ((p)[2] + (p)[3])) + (((p)[4] + (p)[5]) + ((p)[6] + (p)[7])))

/* The sums of qk (<= 2) components x qc (<= 2) columns (constants where inlined):
   out[kk * columns + j] += sum_i w[kk * n_rows + i] f0[j * n_rows + i]. */
GMM_BODY void gmm_column_dots(int qk, int qc, const double *restrict w,
                              const double *restrict f0, ptrdiff_t n_rows,
                              ptrdiff_t columns, double *restrict out) {
    enum { L = GMM_DOT_LANES };
    ptrdiff_t body = n_rows - n_rows % L, i;
    double a[2][2][L] = {{{0}}};
    for (i = 0; i < body; i += L)
        for (int kk = 0; kk < qk; kk++)
            for (int j = 0; j < qc; j++) {
                const double *restrict wk = w + kk * n_rows + i;
                const double *restrict f = f0 + j * n_rows + i;
                #pragma omp simd
                for (int l = 0; l < L; l++) a[kk][j][l] += wk[l] * f[l];
            }
    for (i = body; i < n_rows; i++)
        for (int kk = 0; kk < qk; kk++)
            for (int j = 0; j < qc; j++)
                a[kk][j][i - body] += w[kk * n_rows + i] * f0[j * n_rows + i];
    for (int kk = 0; kk < qk; kk++)
        for (int j = 0; j < qc; j++) out[kk * columns + j] += GMM_FOLD_LANES(a[kk][j]);
}

/* moments[k * columns + c] += sum_i wr[k * n_rows + i] features[c * n_rows + i].
   Each sum in GMM_DOT_LANES lanes (row i in lane i mod GMM_DOT_LANES), folded in
   a fixed tree: the order depends on n_rows alone, not on the vector width, so
   every CPU level adds alike. Tiles of 2 components x 2 columns per pass over the
   rows (eight independent chains of vectors at AVX2, each vector loaded once for
   two products: a tile of 1 x 4 loaded five vectors for four products, and its
   passes were bound by the loads). */
GMM_BODY void gmm_moments_of(int qk, const double *restrict w,
                             const double *restrict features, ptrdiff_t n_rows,
                             ptrdiff_t columns, double *restrict out) {
    ptrdiff_t c = 0;
    for (; c + 2 <= columns; c += 2)
        gmm_column_dots(qk, 2, w, features + c * n_rows, n_rows, columns, out + c);
    if (c < columns)
        gmm_column_dots(qk, 1, w, features + c * n_rows, n_rows, columns, out + c);
}

static void gmm_column_moments(const double *restrict wr,
                               const double *restrict features, ptrdiff_t n_rows,
                               ptrdiff_t columns, ptrdiff_t n,
                               double *restrict moments) {
    ptrdiff_t k = 0;
    for (; k + 2 <= n; k += 2)
        gmm_moments_of(2, wr + k * n_rows, features, n_rows, columns, moments + k * columns);
    if (k < n)
        gmm_moments_of(1, wr + k * n_rows, features, n_rows, columns, moments + k * columns);
}

/* Float32 data near the shift, narrow rows by loops (_estep's _single_columns): the
   chunk's component-major float32 scores lp -> wr, w times the responsibilities in
   float64 (component-major, for gmm_column_moments), the exps in float lanes
   (gmm_expf_nonpositive: a term below e^-87 of its row's largest is 0, where float64
   exps would keep its tiny share; against the M-step's floor on nk, _em._NK_FLOOR =
   2.2e-15, either gives the same parameters). log_norm[i]: the row's log-sum-exp, the
   float32 log of its sum (in [1, n]: ~1e-7 absolute, below the scores' own rounding)
   added in float64; scratch: 2 n_rows floats. As
   gmm_normalize_chunk_body otherwise (NaN scores skipped by the maximum, the terms
   added in component order). */
static void gmm_normalize_columns_f32(float *restrict lp, double *restrict wr,
                                      ptrdiff_t n_rows, ptrdiff_t n,
                                      double *restrict log_norm,
                                      const double *restrict weights,
                                      float *restrict scratch) {
    float *restrict top = scratch, *restrict sum = scratch + n_rows;
    ptrdiff_t i, k;
    for (i = 0; i < n_rows; i++) top[i] = -INFINITY;
    for (k = 0; k < n; k++) {
        const float *restrict column = lp + k * n_rows;
        #pragma omp simd
        for (i = 0; i < n_rows; i++) top[i] = column[i] > top[i] ? column[i] : top[i];
    }
    #pragma omp simd
    for (i = 0; i < n_rows; i++) sum[i] = lp[i] = gmm_expf_nonpositive(lp[i] - top[i]);
    for (k = 1; k < n; k++) {
        float *restrict column = lp + k * n_rows;
        #pragma omp simd
        for (i = 0; i < n_rows; i++) {
            float e = gmm_expf_nonpositive(column[i] - top[i]);
            column[i] = e;
            sum[i] += e;
        }
    }
    int unusual = 0;  /* (a sum of 0, inf or NaN: logf for the whole chunk) */
    for (i = 0; i < n_rows; i++)
        unusual |= !(sum[i] >= 1.17549435e-38f && sum[i] <= 3.40282347e38f);
    if (!unusual) {
        #pragma omp simd
        for (i = 0; i < n_rows; i++) log_norm[i] = (double)top[i] + gmm_logf_normal(sum[i]);
    }
    else
        for (i = 0; i < n_rows; i++) log_norm[i] = (double)top[i] + logf(sum[i]);
    #pragma omp simd
    for (i = 0; i < n_rows; i++) top[i] = (float)weights[i] / sum[i];
    for (k = 0; k < n; k++) {
        const float *restrict column = lp + k * n_rows;
        double *restrict out = wr + k * n_rows;
        #pragma omp simd
        for (i = 0; i < n_rows; i++) out[i] = (double)column[i] * top[i];
    }
}

/* out[k * stride] += sum_i rows[k * n_rows + i], for k < n (the tied E-step's nk from
   its component-major responsibilities): each sum in GMM_DOT_LANES lanes, folded in a
   fixed tree, as gmm_column_dots. (Cython's loop was one chain of dependent adds:
   14% of a tied (1e5, 8, 8) E-step, AVX-512 Ice Lake.) */
static void gmm_row_sums(const double *restrict rows, ptrdiff_t n_rows, ptrdiff_t n,
                         double *restrict out, ptrdiff_t stride) {
    enum { L = GMM_DOT_LANES };
    ptrdiff_t body = n_rows - n_rows % L;
    for (ptrdiff_t k = 0; k < n; k++) {
        const double *restrict row = rows + k * n_rows;
        double a[L] = {0};
        for (ptrdiff_t i = 0; i < body; i += L) {
            #pragma omp simd
            for (int l = 0; l < L; l++) a[l] += row[i + l];
        }
        for (ptrdiff_t i = body; i < n_rows; i++) a[i - body] += row[i];
        out[k * stride] += GMM_FOLD_LANES(a);
    }
}

/* Rows of at least this many scores are normalised along the row, in vectors (max,
   then exp and sum in one pass). Shorter rows do not fill a vector at AVX-512 (16
   floats, 8 doubles): GCC 12 leaves them to its scalar epilogue, whose `omp simd`
   reductions go through memory at each step (a tied float32 (1e5, 8, 8) E-step took
   twice float64's). Those rows get their max and sums component by component across
   the rows, and their exps in one loop over the chunk (GMM_SHORT_ROWS). From k = 16
   on, along the row is faster: the normalisation of spherical (5e4, 64, 32) took
   1.4x as long across the rows (AVX-512 Ice Lake). */
enum { GMM_ROW_VECTOR_MIN = 16 };

/* Short rows (n < GMM_ROW_VECTOR_MIN) of scores (type T) -> their exps, shifted by
   each row's largest, as doubles in terms (may be scores itself when T is double);
   top[i] the largest (NaN skipped, as in gmm_normalize_chunk), total[i] the row's
   sum in component order. */
#define GMM_SHORT_ROWS(name, T)                                                      \
    GMM_BODY void name(int single, const T *scores, double *terms, ptrdiff_t n_rows,  \
                       ptrdiff_t n, double *top, double *total) {                    \
        ptrdiff_t i, k;                                                              \
        for (i = 0; i < n_rows; i++) top[i] = -INFINITY;                             \
        for (k = 0; k < n; k++)                                                      \
            for (i = 0; i < n_rows; i++) {                                           \
                double s = scores[i * n + k];                                        \
                top[i] = s > top[i] ? s : top[i];                                    \
            }                                                                        \
        for (i = 0; i < n_rows; i++)                                                 \
            for (k = 0; k < n; k++) terms[i * n + k] = (double)scores[i * n + k] - top[i]; \
        _Pragma("omp simd")                                                          \
        for (i = 0; i < n_rows * n; i++)                                             \
            terms[i] = gmm_exp_nonpositive(terms[i], single);                        \
        for (i = 0; i < n_rows; i++) total[i] = 0.0;                                 \
        for (k = 0; k < n; k++)                                                      \
            for (i = 0; i < n_rows; i++) total[i] += terms[i * n + k];               \
    }
GMM_SHORT_ROWS(gmm_short_rows, double)
GMM_SHORT_ROWS(gmm_short_rows_f32, float)

/* row[k] *= weights[i] / total[i], row by row (rows of n). */
GMM_BODY void gmm_scale_rows(double *rows, ptrdiff_t n_rows, ptrdiff_t n,
                             const double *total, const double *weights) {
    for (ptrdiff_t i = 0; i < n_rows; i++) {
        double *row = rows + i * n;
        double scale = weights[i] / total[i];
        #pragma omp simd
        for (ptrdiff_t k = 0; k < n; k++) row[k] *= scale;
    }
}

/* gmm_normalize_chunk's results, in place on row-major scores (rows of n): for the
   E-step of row-major models, whose second GEMM then reads the responsibilities
   transposed ('T') instead of this copying them component-major (a scalar scatter:
   with the exp, 13% of a spherical E-step at d=64 k=32, one thread). While the exps
   run, the next chunk's rows (ahead_rows of row_bytes from ahead) are fetched:
   reading X otherwise stalls the next chunk's first pass (spherical (5e4, 64, 32)
   E-step 5.5-6.5% faster). */
GMM_BODY void gmm_normalize_rows_body(int single, double *scores, ptrdiff_t n_rows,
                                      ptrdiff_t n, double *log_norm, double *total,
                                      const double *weights, const char *ahead,
                                      ptrdiff_t ahead_rows, ptrdiff_t row_bytes) {
    ptrdiff_t i, k;
    if (n < GMM_ROW_VECTOR_MIN) {
        for (i = 0; ahead && i < ahead_rows; i++)
            for (ptrdiff_t offset = 0; offset < row_bytes; offset += 64)
                GMM_PREFETCH(ahead + i * row_bytes + offset);
        gmm_short_rows(single, scores, scores, n_rows, n, log_norm, total);
    }
    else
        for (i = 0; i < n_rows; i++) {
            if (ahead && i < ahead_rows)
                for (ptrdiff_t offset = 0; offset < row_bytes; offset += 64)
                    GMM_PREFETCH(ahead + i * row_bytes + offset);
            double *row = scores + i * n;
            double top = -INFINITY, sum = 0.0;
            #pragma omp simd reduction(max:top)
            for (k = 0; k < n; k++) top = row[k] > top ? row[k] : top;
            #pragma omp simd reduction(+:sum)
            for (k = 0; k < n; k++) {
                double e = gmm_exp_nonpositive(row[k] - top, single);
                row[k] = e;
                sum += e;
            }
            log_norm[i] = top;
            total[i] = sum;
        }
    gmm_add_log(log_norm, total, n_rows, single);
    gmm_scale_rows(scores, n_rows, n, total, weights);
}

/* gmm_normalize_rows for float32 scores (the float32 GEMM's, see _estep's
   _single_log_prob), the weighted responsibilities written as float64 into `out`
   (rows of n) for the statistics. The exps stay float64: in float32 a term below
   e^-87 of the row's largest would be 0, and a component far from every row would
   get nk = 0 instead of its (tiny) share in the float64 statistics. (The float32
   ones, gmm_weighted_moments_f32, round shares below 1e-38 to 0: against the
   M-step's floor on nk, _em._NK_FLOOR = 2.2e-15, either gives the same parameters.) */
static void gmm_normalize_rows_f32(const float *restrict scores, double *restrict out,
                                   ptrdiff_t n_rows, ptrdiff_t n, double *log_norm,
                                   double *total, const double *weights) {
    ptrdiff_t i, k;
    if (n < GMM_ROW_VECTOR_MIN)
        gmm_short_rows_f32(1, scores, out, n_rows, n, log_norm, total);
    else
        for (i = 0; i < n_rows; i++) {
            const float *row = scores + i * n;
            double *restrict wrow = out + i * n;
            float top = -INFINITY;
            double sum = 0.0;
            #pragma omp simd reduction(max:top)
            for (k = 0; k < n; k++) top = row[k] > top ? row[k] : top;
            #pragma omp simd reduction(+:sum)
            for (k = 0; k < n; k++) {
                double e = gmm_exp_nonpositive((double)row[k] - top, 1);
                wrow[k] = e;
                sum += e;
            }
            log_norm[i] = top;
            total[i] = sum;
        }
    gmm_add_log(log_norm, total, n_rows, 1);
    gmm_scale_rows(out, n_rows, n, total, weights);
}

/* dst = src rounded to float32 (the float32 GEMMs' operands). */
static void gmm_round_to_float(const double *restrict src, float *restrict dst,
                               ptrdiff_t n) {
    #pragma omp simd
    for (ptrdiff_t i = 0; i < n; i++) dst[i] = (float)src[i];
}

/* gmm_weighted_moments_f32's register tile: GMM_MOMENT_COMPONENTS components (64 bytes:
   one AVX-512 vector, two of AVX2, four of SSE2 or NEON) x GMM_MOMENT_COLUMNS features,
   12 accumulators at every level, beside the row's wr vectors and a broadcast. */
enum { GMM_MOMENT_COMPONENTS = 16 };
#if defined(__AVX512F__)
#define GMM_MOMENT_COLUMNS 12
#elif defined(__AVX__)
#define GMM_MOMENT_COLUMNS 6
#else
#define GMM_MOMENT_COLUMNS 3
#endif

/* out[c * K + k] = sum_i wr[i * K + k] F[i * m + c] for features [c0, c1) and
   components [k0, K): what the tiles leave, each sum the same chain along the rows. */
static void gmm_moments_rest_f32(const float *restrict wr, const float *restrict F,
                                 ptrdiff_t n_rows, ptrdiff_t K, ptrdiff_t m, ptrdiff_t c0,
                                 ptrdiff_t c1, ptrdiff_t k0, float *restrict out) {
    for (ptrdiff_t c = c0; c < c1; c++)
        for (ptrdiff_t k = k0; k < K; k++) out[c * K + k] = 0;
    for (ptrdiff_t i = 0; i < n_rows; i++)
        for (ptrdiff_t c = c0; c < c1; c++) {
            float v = F[i * m + c];
            #pragma omp simd
            for (ptrdiff_t k = k0; k < K; k++) out[c * K + k] += v * wr[i * K + k];
        }
}

/* The float32 statistics of a chunk of row-major rows: moments[k * m + c] +=
   sum_i wr[i * K + k] F[i * m + c] (wr: rows x K weighted responsibilities, F: rows x m
   features, both float32). An SGEMM on these shapes spent as long packing F as
   multiplying. Here each tile of sums stays in registers while the rows stream past:
   every sum is one float32 chain along the chunk's rows, in row order (the same
   whatever the tiles, the level or the threads), then added into the double moments.
   For K >= GMM_MOMENT_COMPONENTS (fewer leave the tiles empty). out: m x K scratch. */
static void gmm_weighted_moments_f32(const float *restrict wr, const float *restrict F,
                                     ptrdiff_t n_rows, ptrdiff_t K, ptrdiff_t m,
                                     float *restrict out, double *restrict moments) {
    enum { KB = GMM_MOMENT_COMPONENTS, CB = GMM_MOMENT_COLUMNS };
    ptrdiff_t c0 = 0, k0 = 0;
    for (; c0 + CB <= m; c0 += CB) {
        for (k0 = 0; k0 + KB <= K; k0 += KB) {
            float acc[CB][KB] = {{0}};
            for (ptrdiff_t i = 0; i < n_rows; i++) {
                const float *w = wr + i * K + k0, *f = F + i * m + c0;
                for (int j = 0; j < CB; j++) {
                    float v = f[j];
                    #pragma omp simd
                    for (int l = 0; l < KB; l++) acc[j][l] += v * w[l];
                }
            }
            for (int j = 0; j < CB; j++)
                for (int l = 0; l < KB; l++) out[(c0 + j) * K + k0 + l] = acc[j][l];
        }
        if (k0 < K) gmm_moments_rest_f32(wr, F, n_rows, K, m, c0, c0 + CB, k0, out);
    }
    if (c0 < m) gmm_moments_rest_f32(wr, F, n_rows, K, m, c0, m, 0, out);
    for (ptrdiff_t k = 0; k < K; k++)
        for (ptrdiff_t c = 0; c < m; c++) moments[k * m + c] += (double)out[c * K + k];
}

/* Tied features' last two columns: |y|^2 of each row's first d, and a 1 (rows of m);
   in float64, and in float32 for the float32 GEMM's features (_single_log_prob).
   Each row's squares in GMM_DOT_LANES lanes (feature f in lane f mod 8), folded in a
   fixed tree, as gmm_column_dots: the same order at every CPU level, and a vector of
   8 for d >= 8 (an `omp simd` reduction along a row of d < 16 floats ran as
   AVX-512's scalar epilogue, each step through memory). */
#define GMM_TIED_NORMS(name, T)                                                     \
    static void name(T *features, ptrdiff_t n_rows, ptrdiff_t d, ptrdiff_t m) {     \
        enum { L = GMM_DOT_LANES };                                                 \
        for (ptrdiff_t i = 0; i < n_rows; i++) {                                    \
            T *row = features + i * m, a[L] = {0};                                  \
            ptrdiff_t f = 0;                                                        \
            for (; f + L <= d; f += L)                                              \
                _Pragma("omp simd")                                                 \
                for (int l = 0; l < L; l++) a[l] += row[f + l] * row[f + l];        \
            for (ptrdiff_t l = 0; f + l < d; l++) a[l] += row[f + l] * row[f + l];  \
            row[d] = GMM_FOLD_LANES(a);                                             \
            row[d + 1] = 1;                                                         \
        }                                                                           \
    }
GMM_TIED_NORMS(gmm_tied_norms, double)
GMM_TIED_NORMS(gmm_tied_norms_f32, float)

/* Spherical float64 rows used as they are (see _direct_rows): q1 gets the rows
   [|x_i - s|^2, 1] and scores[i, k] the terms quadratic[k] q_i + constant[k] that
   the GEMM on X then adds to. In C for the vector clones (Cython's loop compiled
   to 2-wide SSE). */
static void gmm_direct_terms(const double *restrict X, ptrdiff_t n_rows, ptrdiff_t d,
                             const double *restrict shift, ptrdiff_t k,
                             const double *restrict quadratic,
                             const double *restrict constant, double *restrict q1,
                             double *restrict scores) {
    for (ptrdiff_t i = 0; i < n_rows; i++) {
        const double *restrict x = X + i * d;
        double q = 0.0;
        #pragma omp simd reduction(+:q)
        for (ptrdiff_t f = 0; f < d; f++) q += (x[f] - shift[f]) * (x[f] - shift[f]);
        q1[2 * i] = q;
        q1[2 * i + 1] = 1.0;
        double *restrict row = scores + i * k;
        #pragma omp simd
        for (ptrdiff_t c = 0; c < k; c++) row[c] = quadratic[c] * q + constant[c];
    }
}
#endif
