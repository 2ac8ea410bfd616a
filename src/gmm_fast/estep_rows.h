/* The E-step's loops over the rows of X, for one element type T of X.

   kernels.c includes this file once per type, with T (float or double) and
   TYPED(name) (name_float, name_double) defined; every sum is in double. In C with
   restrict: Cython's loops, which gcc could not prove free of aliasing, stayed
   scalar (the far spherical E-step at d=64 ran 5x slower).

   gmm_features_by_row: F row-major for wide rows (full, diag, spherical; rows of m:
   xs = x - s, the quadratic columns, a 1).
   gmm_features_by_column: the same F stored transposed (features[c * n_rows + i])
   for narrow rows, so that each feature is a loop along the rows whatever d.
   Far components (see _estep's docstring), each about its own mean m:
   gmm_distances: dist[i] = |(x_i - m) * scale|^2 (scale: d factors, or NULL: 1).
   gmm_cholesky_distances: dist[i] = |(x_i - m) @ P|^2 (P row-major d x d), as loops
   along the rows through d columns of scratch `diff` and one `y` (a chunk-sized GEMM
   on narrow rows is mostly call overhead: 2x faster at d <= 16).
   gmm_moments: sums += sum_i w_i (x_i - m), second += sum_i w_i (x_i - m)^2 per
   feature; with `upper`, second is d x d and gets the upper triangle (row-major) of
   sum_i w_i (x_i - m)(x_i - m)^T. Rows of zero weight (most rows, for a component far
   from the others) are skipped. t: d doubles of scratch.
   gmm_scaled_rows: sums += sum_i w_i (x_i - m), scaled[i] = sqrt(w_i) (x_i - m), for
   a SYRK when most rows weigh (an ill-conditioned component among others).
*/
#include <math.h>
#include <stddef.h>

#ifndef GMM_ESTEP_ROWS_ONCE
#define GMM_ESTEP_ROWS_ONCE
enum { GMM_FEATURES_FULL = 0, GMM_FEATURES_DIAG = 2 };  /* _estep's FULL, DIAG codes */
/* gmm_features_by_row, for X of type T, features of type OUT: double, or float for
   the float32 GEMMs' operands when the statistics are float32 too (_estep's
   _single_log_prob). */
#define GMM_FEATURES_BY_ROW(name, T, OUT)                                           \
    static void name(const T *restrict X, ptrdiff_t n_rows, ptrdiff_t d,             \
                     const double *restrict shift, int quadratic, ptrdiff_t m,      \
                     OUT *restrict features) {                                      \
        for (ptrdiff_t i = 0; i < n_rows; i++) {                                    \
            OUT *restrict x = features + i * m;                                     \
            const T *restrict row = X + i * d;                                      \
            _Pragma("omp simd")                                                     \
            for (ptrdiff_t f = 0; f < d; f++) x[f] = (OUT)((double)row[f] - shift[f]); \
            OUT *restrict q = x + d;                                                \
            if (quadratic == GMM_FEATURES_FULL) {                                   \
                for (ptrdiff_t f = 0; f < d; f++) {                                 \
                    OUT v = x[f];                                                   \
                    _Pragma("omp simd")                                             \
                    for (ptrdiff_t g = f; g < d; g++) q[g - f] = v * x[g];          \
                    q += d - f;                                                     \
                }                                                                   \
            } else if (quadratic == GMM_FEATURES_DIAG) {                            \
                _Pragma("omp simd")                                                 \
                for (ptrdiff_t f = 0; f < d; f++) q[f] = x[f] * x[f];               \
            } else {                                                                \
                double acc = 0.0;                                                   \
                _Pragma("omp simd reduction(+:acc)")                                \
                for (ptrdiff_t f = 0; f < d; f++) acc += (double)x[f] * x[f];       \
                q[0] = (OUT)acc;                                                    \
            }                                                                       \
            x[m - 1] = 1;                                                           \
        }                                                                           \
    }
#endif

GMM_FEATURES_BY_ROW(TYPED(gmm_features_by_row), T, double)

static void TYPED(gmm_features_by_column)(const T *restrict X, ptrdiff_t n_rows,
                                          ptrdiff_t d, const double *restrict shift,
                                          int quadratic, double *restrict features) {
    for (ptrdiff_t f = 0; f < d; f++) {
        double *restrict column = features + f * n_rows;
        double s = shift[f];
        #pragma omp simd
        for (ptrdiff_t i = 0; i < n_rows; i++) column[i] = (double)X[i * d + f] - s;
    }
    double *restrict column = features + d * n_rows;
    if (quadratic == GMM_FEATURES_FULL) {
        for (ptrdiff_t f = 0; f < d; f++)
            for (ptrdiff_t g = f; g < d; g++) {
                const double *restrict a = features + f * n_rows;
                const double *restrict b = features + g * n_rows;
                #pragma omp simd
                for (ptrdiff_t i = 0; i < n_rows; i++) column[i] = a[i] * b[i];
                column += n_rows;
            }
    } else if (quadratic == GMM_FEATURES_DIAG) {
        for (ptrdiff_t f = 0; f < d; f++) {
            const double *restrict a = features + f * n_rows;
            #pragma omp simd
            for (ptrdiff_t i = 0; i < n_rows; i++) column[i] = a[i] * a[i];
            column += n_rows;
        }
    } else {  /* |xs|^2 summed feature by feature: an order fixed by d alone */
        for (ptrdiff_t i = 0; i < n_rows; i++) column[i] = 0.0;
        for (ptrdiff_t f = 0; f < d; f++) {
            const double *restrict a = features + f * n_rows;
            #pragma omp simd
            for (ptrdiff_t i = 0; i < n_rows; i++) column[i] += a[i] * a[i];
        }
        column += n_rows;
    }
    for (ptrdiff_t i = 0; i < n_rows; i++) column[i] = 1.0;
}

static void TYPED(gmm_distances)(const T *restrict X, ptrdiff_t n_rows, ptrdiff_t d,
                                 const double *restrict mean, const double *restrict scale,
                                 double *restrict dist) {
    for (ptrdiff_t i = 0; i < n_rows; i++) {
        const T *restrict x = X + i * d;
        double acc = 0.0;
        if (scale) {
            #pragma omp simd reduction(+:acc)
            for (ptrdiff_t f = 0; f < d; f++) {
                double t = ((double)x[f] - mean[f]) * scale[f];
                acc += t * t;
            }
        } else {
            #pragma omp simd reduction(+:acc)
            for (ptrdiff_t f = 0; f < d; f++) {
                double t = (double)x[f] - mean[f];
                acc += t * t;
            }
        }
        dist[i] = acc;
    }
}

static void TYPED(gmm_cholesky_distances)(const T *restrict X, ptrdiff_t n_rows,
                                          ptrdiff_t d, const double *restrict mean,
                                          const double *restrict factor,
                                          double *restrict diff, double *restrict y,
                                          double *restrict dist) {
    for (ptrdiff_t f = 0; f < d; f++) {
        #pragma omp simd
        for (ptrdiff_t i = 0; i < n_rows; i++)
            diff[f * n_rows + i] = (double)X[i * d + f] - mean[f];
    }
    for (ptrdiff_t i = 0; i < n_rows; i++) dist[i] = 0.0;
    for (ptrdiff_t g = 0; g < d; g++) {
        for (ptrdiff_t i = 0; i < n_rows; i++) y[i] = 0.0;
        for (ptrdiff_t f = 0; f < d; f++) {
            double p = factor[f * d + g];
            const double *restrict column = diff + f * n_rows;
            if (p == 0.0) continue;  /* (half of a triangular factor) */
            #pragma omp simd
            for (ptrdiff_t i = 0; i < n_rows; i++) y[i] += p * column[i];
        }
        #pragma omp simd
        for (ptrdiff_t i = 0; i < n_rows; i++) dist[i] += y[i] * y[i];
    }
}

static void TYPED(gmm_moments)(const T *restrict X, ptrdiff_t n_rows, ptrdiff_t d,
                               const double *restrict mean, const double *restrict w,
                               int upper, double *restrict sums, double *restrict second,
                               double *restrict t) {
    for (ptrdiff_t i = 0; i < n_rows; i++) {
        const T *restrict x = X + i * d;
        double wi = w[i];
        if (wi == 0.0) continue;
        #pragma omp simd
        for (ptrdiff_t f = 0; f < d; f++) {
            t[f] = (double)x[f] - mean[f];
            sums[f] += wi * t[f];
        }
        if (!upper) {
            #pragma omp simd
            for (ptrdiff_t f = 0; f < d; f++) second[f] += wi * t[f] * t[f];
            continue;
        }
        for (ptrdiff_t f = 0; f < d; f++) {
            double wt = wi * t[f];
            double *restrict row = second + f * d;
            #pragma omp simd
            for (ptrdiff_t g = f; g < d; g++) row[g] += wt * t[g];
        }
    }
}

static void TYPED(gmm_scaled_rows)(const T *restrict X, ptrdiff_t n_rows, ptrdiff_t d,
                                   const double *restrict mean, const double *restrict w,
                                   double *restrict sums, double *restrict scaled) {
    for (ptrdiff_t i = 0; i < n_rows; i++) {
        const T *restrict x = X + i * d;
        double wi = w[i], sw = sqrt(wi);
        #pragma omp simd
        for (ptrdiff_t f = 0; f < d; f++) {
            double t = (double)x[f] - mean[f];
            sums[f] += wi * t;
            scaled[i * d + f] = sw * t;
        }
    }
}
