/* One CPU level's row kernels, as a table (kernels.h).

   meson.build compiles this file once per level, with that level's -march and
   -DGMM_KERNEL_TABLE=gmm_kernels_<level>. Nothing here depends on the level: the
   same C, vectorised by the compiler for each (tests/test_vectorization.py checks
   that the loops marked `omp simd` do vectorise, at every level).
*/
#define GMM_KERNELS_BUILD
#include "kernels.h"
#include "simd_math.h"
#include "estep_normalize.h"
#include "missing_rows.h"

#define T float
#define IDX int32_t
#define TYPED(name) name##_float
#include "estep_rows.h"
#include "lloyd_rows.h"
#include "seed_rows.h"
#undef T
#undef IDX
#undef TYPED
GMM_FEATURES_BY_ROW(gmm_features_by_row_f32, float, float)

#define T double
#define IDX int64_t
#define TYPED(name) name##_double
#include "estep_rows.h"
#include "lloyd_rows.h"
#include "seed_rows.h"
#undef T
#undef IDX
#undef TYPED

/* The normalisations once per precision, `single` a constant in each. */
static void normalize_chunk_single(GMM_NORMALIZE_CHUNK_PARAMS) {
    gmm_normalize_chunk_body(1, scores, lp, n_rows, n, log_norm, total, weights);
}
static void normalize_chunk_double(GMM_NORMALIZE_CHUNK_PARAMS) {
    gmm_normalize_chunk_body(0, scores, lp, n_rows, n, log_norm, total, weights);
}
static void normalize_rows_single(GMM_NORMALIZE_ROWS_PARAMS) {
    gmm_normalize_rows_body(1, scores, n_rows, n, log_norm, total, weights, ahead,
                            ahead_rows, row_bytes);
}
static void normalize_rows_double(GMM_NORMALIZE_ROWS_PARAMS) {
    gmm_normalize_rows_body(0, scores, n_rows, n, log_norm, total, weights, ahead,
                            ahead_rows, row_bytes);
}

#define GMM_STR_(x) #x
#define GMM_STR(x) GMM_STR_(x)

const struct gmm_kernel_table GMM_KERNEL_TABLE = {
    .name = GMM_STR(GMM_KERNEL_TABLE),
    .normalize_chunk = {normalize_chunk_single, normalize_chunk_double},
    .normalize_rows = {normalize_rows_single, normalize_rows_double},
    .tied_norms = gmm_tied_norms,
    .column_scores = gmm_column_scores,
    .column_moments = gmm_column_moments,
    .column_scores_f32 = gmm_column_scores_f32,
    .normalize_columns_f32 = gmm_normalize_columns_f32,
    .row_sums = gmm_row_sums,
    .normalize_rows_f32 = gmm_normalize_rows_f32,
    .round_to_float = gmm_round_to_float,
    .tied_norms_f32 = gmm_tied_norms_f32,
    .weighted_moments_f32 = gmm_weighted_moments_f32,
    .direct_terms = gmm_direct_terms,
    .features_by_row_float = gmm_features_by_row_float,
    .features_by_row_double = gmm_features_by_row_double,
    .features_by_row_f32 = gmm_features_by_row_f32,
    .features_by_column_float = gmm_features_by_column_float,
    .features_by_column_double = gmm_features_by_column_double,
    .distances_float = gmm_distances_float,
    .distances_double = gmm_distances_double,
    .cholesky_distances_float = gmm_cholesky_distances_float,
    .cholesky_distances_double = gmm_cholesky_distances_double,
    .moments_float = gmm_moments_float,
    .moments_double = gmm_moments_double,
    .scaled_rows_float = gmm_scaled_rows_float,
    .scaled_rows_double = gmm_scaled_rows_double,
    .argmin_float = gmm_argmin_float,
    .argmin_double = gmm_argmin_double,
    .sq_dist_float = gmm_sq_dist_float,
    .sq_dist_double = gmm_sq_dist_double,
    .shift_rows_float = gmm_shift_rows_float,
    .shift_rows_double = gmm_shift_rows_double,
    .add_row_float = gmm_add_row_float,
    .add_row_double = gmm_add_row_double,
    .merge_spread = gmm_merge_spread,
    .column_spread_float = gmm_column_spread_float,
    .column_spread_double = gmm_column_spread_double,
    .min_sq_dist_rows_float = gmm_min_sq_dist_rows_float,
    .min_sq_dist_rows_double = gmm_min_sq_dist_rows_double,
    .seed_lower = gmm_seed_lower,
    .seed_mass_total = gmm_seed_mass_total,
#if GMM_SEED_FAST
    .seed_potentials_float = gmm_seed_potentials_float,
    .seed_potentials_double = gmm_seed_potentials_double,
#endif
    .lloyd_narrow_float = gmm_lloyd_narrow_float,
    .lloyd_narrow_double = gmm_lloyd_narrow_double,
    .lloyd_rowwise_float = gmm_lloyd_rowwise_float,
    .lloyd_rowwise_double = gmm_lloyd_rowwise_double,
    .missing_diag_distances = gmm_missing_diag_distances,
    .missing_diag_moments = gmm_missing_diag_moments,
    .missing_centred = gmm_missing_centred,
    .row_dots = gmm_row_dots,
    .missing_full_moments = gmm_missing_full_moments,
};
