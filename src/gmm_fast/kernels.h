/* The row kernels of _estep and _lloyd, chosen by CPU level at run time.

   kernels.c is compiled once per level that meson.build lists for the target (x86-64
   with GCC or Clang: baseline SSE2, AVX2+FMA as x86-64-v3, AVX-512 as x86-64-v4;
   elsewhere one build at the compiler's baseline, NEON on aarch64), each into a table
   of function pointers. dispatch.c picks the table: the best the CPU runs, capped by
   the caller (the GMM_FAST_CPU_LEVEL environment variable, read by gmm_fast._cpu).
   The functions below, with the names the .pyx files use, call through the table:
   one indirect call per chunk of rows, which the loops inside amortise.
*/
#ifndef GMM_KERNELS_H
#define GMM_KERNELS_H

#include <stddef.h>
#include <stdint.h>

enum { GMM_LEVEL_BASELINE = 0, GMM_LEVEL_AVX2 = 1, GMM_LEVEL_AVX512 = 2 };

/* Fetch a cache line ahead of its use (a hint: nothing where the compiler has none). */
#if defined(__GNUC__)
#define GMM_PREFETCH(address) __builtin_prefetch(address)
#else
#define GMM_PREFETCH(address) ((void)0)
#endif

#define GMM_NORMALIZE_CHUNK_PARAMS                                                   \
    const double *scores, double *lp, ptrdiff_t n_rows, ptrdiff_t n, double *log_norm, \
    double *total, const double *weights
#define GMM_NORMALIZE_ROWS_PARAMS                                                    \
    double *scores, ptrdiff_t n_rows, ptrdiff_t n, double *log_norm, double *total,  \
    const double *weights, const char *ahead, ptrdiff_t ahead_rows, ptrdiff_t row_bytes
/* The arguments of both Lloyd direct kernels (narrow rows, wide rows). */
#define GMM_LLOYD_DIRECT_ARGS(T)                                                     \
    const T *X, const T *sample_weight, const T *shift, ptrdiff_t n_rows,            \
    ptrdiff_t n_features, const T *centers, const T *centers_m2, const T *sq_norms,  \
    ptrdiff_t k_pad, int *labels, double *sums, double *counts, T *xs,               \
    ptrdiff_t *changed, int with_inertia

/* One level's kernels; [0] float32 data (or `single` precision), [1] float64. */
struct gmm_kernel_table {
    const char *name;
    /* E-step (estep_normalize.h, estep_rows.h) */
    void (*normalize_chunk[2])(GMM_NORMALIZE_CHUNK_PARAMS);
    void (*normalize_rows[2])(GMM_NORMALIZE_ROWS_PARAMS);
    void (*tied_norms)(double *features, ptrdiff_t n_rows, ptrdiff_t d, ptrdiff_t m);
    void (*column_scores)(const double *coef, const double *features, ptrdiff_t n_rows,
                          ptrdiff_t columns, ptrdiff_t n, double *lp);
    void (*column_moments)(const double *wr, const double *features, ptrdiff_t n_rows,
                           ptrdiff_t columns, ptrdiff_t n, double *moments);
    void (*column_scores_f32)(const float *coef, const float *features, ptrdiff_t n_rows,
                              ptrdiff_t columns, ptrdiff_t n, float *lp);
    void (*normalize_columns_f32)(float *lp, double *wr, ptrdiff_t n_rows, ptrdiff_t n,
                                  double *log_norm, const double *weights, float *scratch);
    void (*row_sums)(const double *rows, ptrdiff_t n_rows, ptrdiff_t n, double *out,
                     ptrdiff_t stride);
    /* float32 GEMM of float32 data (estep_normalize.h) */
    void (*normalize_rows_f32)(const float *scores, double *out, ptrdiff_t n_rows,
                               ptrdiff_t n, double *log_norm, double *total,
                               const double *weights);
    void (*round_to_float)(const double *src, float *dst, ptrdiff_t n);
    void (*tied_norms_f32)(float *features, ptrdiff_t n_rows, ptrdiff_t d, ptrdiff_t m);
    void (*weighted_moments_f32)(const float *wr, const float *F, ptrdiff_t n_rows,
                                 ptrdiff_t K, ptrdiff_t m, float *out, double *moments);
    void (*direct_terms)(const double *X, ptrdiff_t n_rows, ptrdiff_t d,
                         const double *shift, ptrdiff_t k, const double *quadratic,
                         const double *constant, double *q1, double *scores);
    void (*features_by_row_float)(const float *X, ptrdiff_t n_rows, ptrdiff_t d,
                                  const double *shift, int quadratic, ptrdiff_t m,
                                  double *features);
    void (*features_by_row_double)(const double *X, ptrdiff_t n_rows, ptrdiff_t d,
                                   const double *shift, int quadratic, ptrdiff_t m,
                                   double *features);
    void (*features_by_row_f32)(const float *X, ptrdiff_t n_rows, ptrdiff_t d,
                                const double *shift, int quadratic, ptrdiff_t m,
                                float *features);
    void (*features_by_column_float)(const float *X, ptrdiff_t n_rows, ptrdiff_t d,
                                     const double *shift, int quadratic, double *features);
    void (*features_by_column_double)(const double *X, ptrdiff_t n_rows, ptrdiff_t d,
                                      const double *shift, int quadratic,
                                      double *features);
    void (*distances_float)(const float *X, ptrdiff_t n_rows, ptrdiff_t d,
                            const double *mean, const double *scale, double *dist);
    void (*distances_double)(const double *X, ptrdiff_t n_rows, ptrdiff_t d,
                             const double *mean, const double *scale, double *dist);
    void (*cholesky_distances_float)(const float *X, ptrdiff_t n_rows, ptrdiff_t d,
                                     const double *mean, const double *factor,
                                     double *diff, double *y, double *dist);
    void (*cholesky_distances_double)(const double *X, ptrdiff_t n_rows, ptrdiff_t d,
                                      const double *mean, const double *factor,
                                      double *diff, double *y, double *dist);
    void (*moments_float)(const float *X, ptrdiff_t n_rows, ptrdiff_t d,
                          const double *mean, const double *w, int upper, double *sums,
                          double *second, double *t);
    void (*moments_double)(const double *X, ptrdiff_t n_rows, ptrdiff_t d,
                           const double *mean, const double *w, int upper, double *sums,
                           double *second, double *t);
    void (*scaled_rows_float)(const float *X, ptrdiff_t n_rows, ptrdiff_t d,
                              const double *mean, const double *w, double *sums,
                              double *scaled);
    void (*scaled_rows_double)(const double *X, ptrdiff_t n_rows, ptrdiff_t d,
                               const double *mean, const double *w, double *sums,
                               double *scaled);
    /* Lloyd (lloyd_rows.h) */
    ptrdiff_t (*argmin_float)(const float *v, const float *off, ptrdiff_t n);
    ptrdiff_t (*argmin_double)(const double *v, const double *off, ptrdiff_t n);
    double (*sq_dist_float)(const float *x, const float *c, ptrdiff_t n);
    double (*sq_dist_double)(const double *x, const double *c, ptrdiff_t n);
    void (*shift_rows_float)(const float *X, ptrdiff_t n_rows, ptrdiff_t d,
                             const float *shift, float *xs);
    void (*shift_rows_double)(const double *X, ptrdiff_t n_rows, ptrdiff_t d,
                              const double *shift, double *xs);
    void (*add_row_float)(double *s, const float *x, double w, ptrdiff_t d);
    void (*add_row_double)(double *s, const double *x, double w, ptrdiff_t d);
    void (*merge_spread)(ptrdiff_t d, double seen, double *mean, double *m2, double count,
                         const double *their_mean, const double *their_m2);
    void (*column_spread_float)(const float *X, ptrdiff_t n_rows, ptrdiff_t d,
                                double seen, double *mean, double *m2, double *tile);
    void (*column_spread_double)(const double *X, ptrdiff_t n_rows, ptrdiff_t d,
                                 double seen, double *mean, double *m2, double *tile);
    void (*min_sq_dist_rows_float)(const float *X, ptrdiff_t n_rows, ptrdiff_t d,
                                   const float *center, double *closest);
    void (*min_sq_dist_rows_double)(const double *X, ptrdiff_t n_rows, ptrdiff_t d,
                                    const double *center, double *closest);
    double (*seed_lower)(double *closest, const double *candidate, ptrdiff_t n);
    int64_t (*seed_mass_total)(const double *values, ptrdiff_t n, double inverse);
    /* NULL where the compiler has no vector extensions (GMM_SEED_FAST) */
    void (*seed_potentials_float)(const float *X, const float *w, ptrdiff_t n_rows,
                                  ptrdiff_t d, const double *candidates,
                                  ptrdiff_t n_candidates, const double *closest,
                                  double *pot, double *dist, ptrdiff_t dist_stride);
    void (*seed_potentials_double)(const double *X, const double *w, ptrdiff_t n_rows,
                                   ptrdiff_t d, const double *candidates,
                                   ptrdiff_t n_candidates, const double *closest,
                                   double *pot, double *dist, ptrdiff_t dist_stride);
    double (*lloyd_narrow_float)(GMM_LLOYD_DIRECT_ARGS(float));
    double (*lloyd_narrow_double)(GMM_LLOYD_DIRECT_ARGS(double));
    double (*lloyd_rowwise_float)(GMM_LLOYD_DIRECT_ARGS(float));
    double (*lloyd_rowwise_double)(GMM_LLOYD_DIRECT_ARGS(double));
    /* missing_rows.h (float64 rows, a mask of observed cells) */
    void (*missing_diag_distances)(const double *xd, const double *o, ptrdiff_t n_rows,
                                   ptrdiff_t d, const double *mean, const double *p,
                                   const double *log_p, double *dist);
    void (*missing_diag_moments)(const double *xd, const double *o, ptrdiff_t n_rows,
                                 ptrdiff_t d, const double *mean, const double *offset,
                                 const double *inv_p, const double *r, double *sums,
                                 double *second);
    void (*missing_centred)(const double *xd, const double *o, ptrdiff_t n_rows,
                            ptrdiff_t d, const double *mean, double *z);
    void (*row_dots)(const double *a, const double *b, ptrdiff_t n_rows, ptrdiff_t d,
                     double *dot);
    void (*missing_full_moments)(double *z, ptrdiff_t n_rows, ptrdiff_t d,
                                 const double *offset, const double *r, double *sums,
                                 double *rz);
};

/* dispatch.c. The level the CPU supports among those built; the level in use; set
   it (clamped to the supported one; returns the level now in use). */
int gmm_supported_level(void);
int gmm_kernel_level(void);
int gmm_set_kernel_level(int level);
extern const struct gmm_kernel_table *gmm_active_kernels;

/* The Lloyd direct paths' layout (lloyd_rows.h), which _lloyd's buffers follow.
   Narrow rows: groups of up to 128 bytes of rows (16 doubles, 32 floats; the
   group at each level: lloyd_rows.h's GMM_NARROW_BYTES), 4 centres per pass
   (independent FMA chains, each row vector loaded once for 4 centres: d=16 k=64
   float64, AVX-512, one thread, 89 ms with 1 centre, 77 with 4). Wide
   rows: GMM_LLOYD_WIDE_ROWS rows at a time, features padded to GMM_LLOYD_PAD. */
#define GMM_LLOYD_ROW_BYTES 128
#define GMM_LLOYD_CENTERS 4
#define GMM_LLOYD_PAD 16
#define GMM_LLOYD_PAD_FEATURES(d) (((d) + GMM_LLOYD_PAD - 1) / GMM_LLOYD_PAD * GMM_LLOYD_PAD)
#define GMM_LLOYD_WIDE_ROWS 4
/* Float64 rows up to this width take the narrow path at AVX2 (_lloyd._choose): GCC's
   12-row groups beat the DGEMM to d=32; Clang's 16-row groups (lloyd_rows.h) were
   even with it at d=20-32 (one thread, ms per iteration, AMD EPYC: (1e5, 20, 10) 7.2
   -> 6.1, but (1e5, 20, 2) 3.5 -> 4.1, (1e5, 20, 64) 18.7 -> 19.7), so they stop at 16. */
#if defined(__clang__)
#define GMM_LLOYD_AVX2_DOUBLE_NARROW_MAX 16
#else
#define GMM_LLOYD_AVX2_DOUBLE_NARROW_MAX 32
#endif

/* The names the .pyx files call (not in kernels.c, whose functions they name). */
#ifndef GMM_KERNELS_BUILD
#define GMM_K (gmm_active_kernels)
#define gmm_normalize_chunk(single, ...) GMM_K->normalize_chunk[!(single)](__VA_ARGS__)
#define gmm_normalize_rows(single, ...) GMM_K->normalize_rows[!(single)](__VA_ARGS__)
#define gmm_tied_norms(...) GMM_K->tied_norms(__VA_ARGS__)
#define gmm_column_scores(...) GMM_K->column_scores(__VA_ARGS__)
#define gmm_column_moments(...) GMM_K->column_moments(__VA_ARGS__)
#define gmm_column_scores_f32(...) GMM_K->column_scores_f32(__VA_ARGS__)
#define gmm_normalize_columns_f32(...) GMM_K->normalize_columns_f32(__VA_ARGS__)
#define gmm_row_sums(...) GMM_K->row_sums(__VA_ARGS__)
#define gmm_normalize_rows_f32(...) GMM_K->normalize_rows_f32(__VA_ARGS__)
#define gmm_round_to_float(...) GMM_K->round_to_float(__VA_ARGS__)
#define gmm_tied_norms_f32(...) GMM_K->tied_norms_f32(__VA_ARGS__)
#define gmm_weighted_moments_f32(...) GMM_K->weighted_moments_f32(__VA_ARGS__)
#define gmm_direct_terms(...) GMM_K->direct_terms(__VA_ARGS__)
#define gmm_features_by_row_float(...) GMM_K->features_by_row_float(__VA_ARGS__)
#define gmm_features_by_row_double(...) GMM_K->features_by_row_double(__VA_ARGS__)
#define gmm_features_by_row_f32(...) GMM_K->features_by_row_f32(__VA_ARGS__)
#define gmm_features_by_column_float(...) GMM_K->features_by_column_float(__VA_ARGS__)
#define gmm_features_by_column_double(...) GMM_K->features_by_column_double(__VA_ARGS__)
#define gmm_distances_float(...) GMM_K->distances_float(__VA_ARGS__)
#define gmm_distances_double(...) GMM_K->distances_double(__VA_ARGS__)
#define gmm_cholesky_distances_float(...) GMM_K->cholesky_distances_float(__VA_ARGS__)
#define gmm_cholesky_distances_double(...) GMM_K->cholesky_distances_double(__VA_ARGS__)
#define gmm_moments_float(...) GMM_K->moments_float(__VA_ARGS__)
#define gmm_moments_double(...) GMM_K->moments_double(__VA_ARGS__)
#define gmm_scaled_rows_float(...) GMM_K->scaled_rows_float(__VA_ARGS__)
#define gmm_scaled_rows_double(...) GMM_K->scaled_rows_double(__VA_ARGS__)
#define argmin_float(...) GMM_K->argmin_float(__VA_ARGS__)
#define argmin_double(...) GMM_K->argmin_double(__VA_ARGS__)
#define sq_dist_float(...) GMM_K->sq_dist_float(__VA_ARGS__)
#define sq_dist_double(...) GMM_K->sq_dist_double(__VA_ARGS__)
#define shift_rows_float(...) GMM_K->shift_rows_float(__VA_ARGS__)
#define shift_rows_double(...) GMM_K->shift_rows_double(__VA_ARGS__)
#define add_row_float(...) GMM_K->add_row_float(__VA_ARGS__)
#define add_row_double(...) GMM_K->add_row_double(__VA_ARGS__)
#define merge_spread(...) GMM_K->merge_spread(__VA_ARGS__)
#define column_spread_float(...) GMM_K->column_spread_float(__VA_ARGS__)
#define column_spread_double(...) GMM_K->column_spread_double(__VA_ARGS__)
#define min_sq_dist_rows_float(...) GMM_K->min_sq_dist_rows_float(__VA_ARGS__)
#define min_sq_dist_rows_double(...) GMM_K->min_sq_dist_rows_double(__VA_ARGS__)
#define gmm_missing_diag_distances(...) GMM_K->missing_diag_distances(__VA_ARGS__)
#define gmm_missing_diag_moments(...) GMM_K->missing_diag_moments(__VA_ARGS__)
#define gmm_missing_centred(...) GMM_K->missing_centred(__VA_ARGS__)
#define gmm_row_dots(...) GMM_K->row_dots(__VA_ARGS__)
#define gmm_missing_full_moments(...) GMM_K->missing_full_moments(__VA_ARGS__)
#define gmm_seed_fast() (GMM_K->seed_potentials_double != NULL)
#define gmm_seed_lower(...) GMM_K->seed_lower(__VA_ARGS__)
#define gmm_seed_mass_total(...) GMM_K->seed_mass_total(__VA_ARGS__)
#define seed_potentials_float(...) GMM_K->seed_potentials_float(__VA_ARGS__)
#define seed_potentials_double(...) GMM_K->seed_potentials_double(__VA_ARGS__)
#define lloyd_direct_float(rowwise, ...)                                             \
    ((rowwise) ? GMM_K->lloyd_rowwise_float : GMM_K->lloyd_narrow_float)(__VA_ARGS__)
#define lloyd_direct_double(rowwise, ...)                                            \
    ((rowwise) ? GMM_K->lloyd_rowwise_double : GMM_K->lloyd_narrow_double)(__VA_ARGS__)
#endif

#endif
