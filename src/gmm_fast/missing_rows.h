/* Rows with missing cells, diagonal precisions (_missing_kernel's diagonal case): one
   component against a chunk of rows. `o` is the rows' observed mask (1.0 observed, 0.0
   missing; the row xd holds 0 there), so z = o (x - mean) puts the missing cells at
   the mean (g = 0 for a diagonal precision) without a scatter, and the loops along
   the features vectorise at every level (Cython's build of the same loops is SSE2
   only: the diagonal pass took 3-5x the complete rows' E-step per row).

   gmm_missing_diag_distances: dist[i] = sum_f p[f] z_f^2 + (1 - o_f)(log p[f] - log 2pi)
   (with d log 2pi, the observed cells' d_o log 2pi + log det S_oo - log det S).
   gmm_missing_diag_moments: with e = z + offset (the completed row about the centre)
   and the weighted responsibility r[i], sums += r e, second += r (e^2 + (1 - o) / p)
   (inv_p = 1 / p: the missing cells' conditional variance). */
static void gmm_missing_diag_distances(const double *restrict xd, const double *restrict o,
                                       ptrdiff_t n_rows, ptrdiff_t d,
                                       const double *restrict mean,
                                       const double *restrict p,
                                       const double *restrict log_p,
                                       double *restrict dist) {
    const double log_2pi = 1.8378770664093453;
    for (ptrdiff_t i = 0; i < n_rows; i++) {
        const double *restrict x = xd + i * d;
        const double *restrict oi = o + i * d;
        double acc = 0.0;
        #pragma omp simd reduction(+:acc)
        for (ptrdiff_t f = 0; f < d; f++) {
            double z = oi[f] * (x[f] - mean[f]);
            acc += p[f] * z * z + (1.0 - oi[f]) * (log_p[f] - log_2pi);
        }
        dist[i] = acc;
    }
}

static void gmm_missing_diag_moments(const double *restrict xd, const double *restrict o,
                                     ptrdiff_t n_rows, ptrdiff_t d,
                                     const double *restrict mean,
                                     const double *restrict offset,
                                     const double *restrict inv_p, const double *restrict r,
                                     double *restrict sums, double *restrict second) {
    for (ptrdiff_t i = 0; i < n_rows; i++) {
        const double *restrict x = xd + i * d;
        const double *restrict oi = o + i * d;
        double ri = r[i];
        if (ri == 0.0) continue;
        #pragma omp simd
        for (ptrdiff_t f = 0; f < d; f++) {
            double e = oi[f] * (x[f] - mean[f]) + offset[f];
            sums[f] += ri * e;
            second[f] += ri * (e * e + (1.0 - oi[f]) * inv_p[f]);
        }
    }
}

/* The full case's row loops (the factorisations of the q x q blocks stay in
   _missing_kernel): z = o (x - mean) per row; dot[i] = a_i . b_i; and, with the
   completed rows z (x^ - mean), e = z + offset written back, sums += r e and
   rz = r e (the GEMM's right factor for the second moments). */
static void gmm_missing_centred(const double *restrict xd, const double *restrict o,
                                ptrdiff_t n_rows, ptrdiff_t d, const double *restrict mean,
                                double *restrict z) {
    for (ptrdiff_t i = 0; i < n_rows; i++) {
        #pragma omp simd
        for (ptrdiff_t f = 0; f < d; f++)
            z[i * d + f] = o[i * d + f] * (xd[i * d + f] - mean[f]);
    }
}

static void gmm_row_dots(const double *restrict a, const double *restrict b,
                         ptrdiff_t n_rows, ptrdiff_t d, double *restrict dot) {
    for (ptrdiff_t i = 0; i < n_rows; i++) {
        double acc = 0.0;
        #pragma omp simd reduction(+:acc)
        for (ptrdiff_t f = 0; f < d; f++) acc += a[i * d + f] * b[i * d + f];
        dot[i] = acc;
    }
}

static void gmm_missing_full_moments(double *restrict z, ptrdiff_t n_rows, ptrdiff_t d,
                                     const double *restrict offset,
                                     const double *restrict r, double *restrict sums,
                                     double *restrict rz) {
    for (ptrdiff_t i = 0; i < n_rows; i++) {
        double ri = r[i];
        #pragma omp simd
        for (ptrdiff_t f = 0; f < d; f++) {
            double e = z[i * d + f] + offset[f];
            z[i * d + f] = e;
            sums[f] += ri * e;
            rz[i * d + f] = ri * e;
        }
    }
}
