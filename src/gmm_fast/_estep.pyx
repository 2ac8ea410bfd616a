"""One EM pass of a Gaussian mixture: log-densities, responsibilities and their statistics.

For a chunk of rows, component k's log-density in Cholesky-of-precision form is

    log N(x | m_k, (P_k P_k^T)^-1) = -0.5 |(x - m_k) P_k|^2 + log det P_k - d/2 log(2 pi)

with P_k = ``precisions_cholesky[k]``. Rows are used about one shift s (the
weighted mean of the means: ``xs = x - s``, ``a_k = m_k - s``), so nothing depends
on where the data sits. The caller folds the constants into ``log_const[k]``.

- full: ``xs @ [P_1 .. P_g]`` is one GEMM per group of components, then
  ``|y_k - a_k P_k|^2`` row by row.
- tied, diag, spherical: the squared distance expands into a GEMM of a few
  per-row features with a small (features x k) matrix, in float64:
  diag ``[xs^2, xs] @ [-p^2/2 ; a p^2]``, spherical ``[xs, |xs|^2] @ [a p^2 ; -p^2/2]``,
  tied the spherical form on ``y = xs @ P`` with ``b_k = a_k P``, p = 1.

The row log-sum-exp is the row log-likelihood and ``w exp(. - it)`` the weighted
responsibilities ``wr``; the same pass adds to the caller's block buffers

    nk[k]     += sum_i wr_ik
    sums[k]   += sum_i wr_ik xs_i                          (about s)
    second    full: the upper triangle of sum_i wr_ik (x_i - m_k)(x_i - m_k)^T, from
                    z = sqrt(wr) (xs - a_k) by SYRK (about the means: no cancellation);
              tied: sum_i w_i xs_i xs_i^T; diag: sum_i wr_ik xs_i^2;
              spherical: sum_i wr_ik |xs_i|^2            (about s, float64)

from which ``_gaussian_mixture.estep_statistics`` forms the moments about the means.
No n x k array is kept: per thread only a chunk of rows and its k responsibilities.

Determinism: rows are cut into ``n_blocks`` blocks (the first axis of the caller's
block buffers; their count never depends on threads). One thread sums one whole
block in row order, chunk after chunk, and the caller adds the blocks in order, so
any ``n_threads`` gives bitwise identical statistics.
"""
from cython cimport floating
from cython.parallel cimport parallel, prange
from libc.math cimport INFINITY, exp, log, sqrt
from libc.stdlib cimport free, malloc
from libc.string cimport memset
from scipy.linalg.cython_blas cimport dgemm, dsyrk, sgemm, ssyrk

# Rows per chunk: a chunk of X, its k responsibilities and the GEMM outputs stay in
# L2 (2 MB per core here); 256 rows measured as fast as 512 and faster than 128,
# where the BLAS calls get too small.
cdef Py_ssize_t CHUNK = 256
CHUNK_SIZE = CHUNK
# Elements of the full type's GEMM output per group of components (512 KB in float64).
cdef Py_ssize_t GROUP_ELEMENTS = 65536

cdef enum:
    FULL = 0
    TIED = 1
    DIAG = 2
    SPHERICAL = 3

COVARIANCE_CODES = {"full": FULL, "tied": TIED, "diag": DIAG, "spherical": SPHERICAL}

cdef extern from *:
    """
    /* Floating-point sums do not vectorise without reassociation: ask for it here,
       deterministically (the order depends on the binary, not on the threads). */
    static double gmm_sqdist_d(const double *y, const double *b, Py_ssize_t n) {
        double acc = 0.0;
        #pragma omp simd reduction(+:acc)
        for (Py_ssize_t f = 0; f < n; f++) { double t = y[f] - b[f]; acc += t * t; }
        return acc;
    }
    static double gmm_sqdist_f(const float *y, const float *b, Py_ssize_t n) {
        double acc = 0.0;
        #pragma omp simd reduction(+:acc)
        for (Py_ssize_t f = 0; f < n; f++) { double t = (double)y[f] - b[f]; acc += t * t; }
        return acc;
    }
    static double gmm_sqnorm_d(const double *y, Py_ssize_t n) {
        double acc = 0.0;
        #pragma omp simd reduction(+:acc)
        for (Py_ssize_t f = 0; f < n; f++) acc += y[f] * y[f];
        return acc;
    }
    """
    double gmm_sqdist_d(const double *y, const double *b, Py_ssize_t n) noexcept nogil
    double gmm_sqdist_f(const float *y, const float *b, Py_ssize_t n) noexcept nogil
    double gmm_sqnorm_d(const double *y, Py_ssize_t n) noexcept nogil


cdef inline void _gemm(char *trans_a, char *trans_b, Py_ssize_t m, Py_ssize_t n, Py_ssize_t k,
                       const floating *a, Py_ssize_t lda, const floating *b, Py_ssize_t ldb,
                       floating beta, floating *c, Py_ssize_t ldc) noexcept nogil:
    """Row-major ``c[m, n] = op(a) @ op(b) + beta * c`` (op: 'N' or 'T')."""
    # Column-major BLAS sees c.T = op(b).T @ op(a).T on the same storage.
    cdef int m_ = <int>n, n_ = <int>m, k_ = <int>k
    cdef int lda_ = <int>lda, ldb_ = <int>ldb, ldc_ = <int>ldc
    cdef floating one = 1.0
    if floating is float:
        sgemm(trans_b, trans_a, &m_, &n_, &k_, &one, <float*>b, &ldb_, <float*>a, &lda_,
              &beta, c, &ldc_)
    else:
        dgemm(trans_b, trans_a, &m_, &n_, &k_, &one, <double*>b, &ldb_, <double*>a, &lda_,
              &beta, c, &ldc_)


cdef inline void _syrk_upper(Py_ssize_t n_rows, Py_ssize_t n_features, const floating *z,
                             floating beta, floating *c) noexcept nogil:
    """Upper triangle (row-major) of ``c = z.T @ z + beta * c`` for ``z[n_rows, n_features]``."""
    # z row-major is z.T column-major (d x n): 'N' gives z.T z, whose column-major
    # lower triangle is the row-major upper one.
    cdef int n_ = <int>n_features, k_ = <int>n_rows
    cdef char *lower = 'L'
    cdef char *no = 'N'
    cdef floating one = 1.0
    if floating is float:
        ssyrk(lower, no, &n_, &k_, &one, <float*>z, &n_, &beta, c, &n_)
    else:
        dsyrk(lower, no, &n_, &k_, &one, <double*>z, &n_, &beta, c, &n_)


cdef struct Model:
    # Parameters shared by every chunk (pointers into the caller's arrays).
    int covariance_type
    Py_ssize_t n_features, n_components, n_columns, group
    const double *log_const   # (k,) log pi_k + log det P_k - d/2 log 2pi [- expansion terms]
    const double *shift_d     # (d,) s in float64
    const double *expansion   # (n_columns, k) float64, tied/diag/spherical
    const double *prec_d      # (d, d) float64, tied


cdef void _log_prob_full(const Model *model, const floating *X, Py_ssize_t n_rows,
                         const floating *shift, const floating *prec_cat,
                         const floating *prec_means, double *lp, floating *xs,
                         floating *y) noexcept nogil:
    """Full type: ``lp = log_const - 0.5 |xs P_k - a_k P_k|^2``, leaving ``xs = X - s``."""
    cdef:
        Py_ssize_t i, k, f, k0, g, d = model.n_features, K = model.n_components
        Py_ssize_t width = K * d
        double q
    for i in range(n_rows):
        for f in range(d):
            xs[i * d + f] = X[i * d + f] - shift[f]
    k0 = 0
    while k0 < K:
        g = min(model.group, K - k0)
        # y[:, kk*d:(kk+1)*d] = xs @ P_{k0+kk} for the group, in one GEMM.
        _gemm('N', 'N', n_rows, g * d, d, xs, d, prec_cat + k0 * d, width, 0.0, y, g * d)
        for i in range(n_rows):
            for k in range(g):
                if floating is float:
                    q = gmm_sqdist_f(y + i * g * d + k * d, prec_means + (k0 + k) * d, d)
                else:
                    q = gmm_sqdist_d(y + i * g * d + k * d, prec_means + (k0 + k) * d, d)
                lp[i * K + k0 + k] = model.log_const[k0 + k] - 0.5 * q
        k0 += g


cdef void _log_prob_expanded(const Model *model, const floating *X, Py_ssize_t n_rows,
                             double *lp, double *features, double *xd) noexcept nogil:
    """tied/diag/spherical: ``lp = log_const + features @ expansion`` (see module doc)."""
    cdef:
        Py_ssize_t i, f, d = model.n_features, K = model.n_components
        Py_ssize_t m = model.n_columns
        int covariance_type = model.covariance_type
        double v
    for i in range(n_rows):
        for f in range(d):
            xd[i * d + f] = <double>X[i * d + f] - model.shift_d[f]
    if covariance_type == TIED:
        # features[:, :d] = xd @ P
        _gemm('N', 'N', n_rows, d, d, xd, d, model.prec_d, d, 0.0, features, m)
    for i in range(n_rows):
        if covariance_type == DIAG:
            for f in range(d):
                v = xd[i * d + f]
                features[i * m + f] = v * v
                features[i * m + d + f] = v
        elif covariance_type == SPHERICAL:
            for f in range(d):
                features[i * m + f] = xd[i * d + f]
            features[i * m + d] = gmm_sqnorm_d(xd + i * d, d)
        else:
            features[i * m + d] = gmm_sqnorm_d(features + i * m, d)
    _gemm('N', 'N', n_rows, K, m, features, m, model.expansion, K, 0.0, lp, K)
    for i in range(n_rows):
        for f in range(K):
            lp[i * K + f] += model.log_const[f]


cdef inline double _normalize_row(double *lp, Py_ssize_t n_components) noexcept nogil:
    """Turn one row of weighted log-densities into responsibilities; return its log-sum-exp."""
    cdef:
        Py_ssize_t k
        double top = -INFINITY, total = 0.0, scale
    for k in range(n_components):
        if lp[k] > top:
            top = lp[k]
    for k in range(n_components):
        lp[k] = exp(lp[k] - top)
        total = total + lp[k]
    scale = 1.0 / total
    for k in range(n_components):
        lp[k] = lp[k] * scale
    return top + log(total)


cdef void _log_prob_chunk(const Model *model, const floating *X, Py_ssize_t n_rows,
                          const floating *shift, const floating *prec_cat,
                          const floating *prec_means, double *lp, floating *xs, floating *y,
                          double *features, double *xd) noexcept nogil:
    """Weighted log-densities of one chunk into ``lp`` (CHUNK x k)."""
    if model.covariance_type == FULL:
        _log_prob_full(model, X, n_rows, shift, prec_cat, prec_means, lp, xs, y)
    else:
        _log_prob_expanded(model, X, n_rows, lp, features, xd)


cdef void _accumulate_full(const Model *model, Py_ssize_t n_rows, const floating *centered,
                           const double *wr, const floating *xs, double *nk, double *sums,
                           double *second, floating *z, floating *tmp) noexcept nogil:
    """Full type: nk, sums about s, and the scatter about m_k by one SYRK per component."""
    cdef:
        Py_ssize_t i, k, f, g, d = model.n_features, K = model.n_components
        double w, sw, total
        const floating *a
        const floating *row
    for k in range(K):
        a = centered + k * d
        total = 0.0
        for i in range(n_rows):
            w = wr[i * K + k]
            total = total + w
            sw = sqrt(w)
            row = xs + i * d
            for f in range(d):
                sums[k * d + f] += w * row[f]
                z[i * d + f] = <floating>(sw * (row[f] - a[f]))
        nk[k] += total
        if floating is double:
            _syrk_upper(n_rows, d, z, 1.0, second + k * d * d)
        else:
            # float32 products for one chunk, summed in float64 across chunks.
            _syrk_upper(n_rows, d, z, 0.0, tmp)
            for f in range(d):
                for g in range(f, d):
                    second[k * d * d + f * d + g] += tmp[f * d + g]


cdef void _accumulate_expanded(const Model *model, Py_ssize_t n_rows,
                               const floating *sample_weight, const double *wr,
                               double *nk, double *second, double *features, double *xd,
                               double *moments) noexcept nogil:
    """tied/diag/spherical: nk now, GEMM moments into the block's running sums."""
    cdef:
        Py_ssize_t i, k, f, d = model.n_features, K = model.n_components
        Py_ssize_t m = model.n_columns
        double sw
        double *source
    for i in range(n_rows):
        for k in range(K):
            nk[k] += wr[i * K + k]
    if model.covariance_type == TIED:
        # moments (k x d) += wr.T @ xd; second += sum_i w_i xd_i xd_i^T (about s).
        _gemm('T', 'N', K, d, n_rows, wr, K, xd, d, 1.0, moments, m)
        for i in range(n_rows):
            sw = sqrt(<double>sample_weight[i])
            for f in range(d):
                features[i * d + f] = sw * xd[i * d + f]
        _syrk_upper(n_rows, d, features, 1.0, second)
    else:
        # diag: moments = wr.T @ [xd^2, xd]; spherical: wr.T @ [xd, |xd|^2].
        _gemm('T', 'N', K, m, n_rows, wr, K, features, m, 1.0, moments, m)


cdef void _flush_expanded(const Model *model, double *sums, double *second,
                          const double *moments) noexcept nogil:
    """Move one block's running GEMM sums into its sums / second slots."""
    cdef:
        Py_ssize_t k, f, d = model.n_features, K = model.n_components
        Py_ssize_t m = model.n_columns
        const double *row
    for k in range(K):
        row = moments + k * m
        if model.covariance_type == DIAG:
            for f in range(d):
                second[k * d + f] += row[f]
                sums[k * d + f] += row[d + f]
        else:
            for f in range(d):
                sums[k * d + f] += row[f]
            if model.covariance_type == SPHERICAL:
                second[k] += row[d]


cdef void _estep_block(
    const Model *model, const floating[:, ::1] X, const floating[::1] sample_weight,
    Py_ssize_t start, Py_ssize_t end, const floating *shift, const floating *centered,
    const floating *prec_cat, const floating *prec_means,
    double *ll, double *sum_weights, double *nk, double *sums, double *second,
    double *lp, floating *xs, floating *y, floating *z, floating *tmp,
    double *features, double *xd, double *moments, double *local,
) noexcept nogil:
    """Statistics of rows ``start:end`` added to one block's slots, chunk by chunk."""
    cdef:
        Py_ssize_t K = model.n_components, d = model.n_features
        Py_ssize_t chunk_start, n_rows, i, k
        double w, log_norm, block_ll = 0.0, block_weight = 0.0
        bint full = model.covariance_type == FULL
        # Running sums live in this thread's buffer, not in the shared block arrays:
        # neighbouring blocks' slots share cache lines (false sharing).
        double *local_nk = local
        double *local_sums = local + K

    memset(local, 0, K * (d + 1) * sizeof(double))
    if not full:
        memset(moments, 0, K * model.n_columns * sizeof(double))
    chunk_start = start
    while chunk_start < end:
        n_rows = min(CHUNK, end - chunk_start)
        _log_prob_chunk(model, &X[chunk_start, 0], n_rows, shift, prec_cat, prec_means,
                        lp, xs, y, features, xd)
        for i in range(n_rows):
            log_norm = _normalize_row(lp + i * K, K)
            w = sample_weight[chunk_start + i]
            block_weight += w
            if w != 0:  # a zero weight must not turn a -inf log-likelihood into NaN
                block_ll += w * log_norm
            for k in range(K):
                lp[i * K + k] *= w
        if full:
            _accumulate_full(model, n_rows, centered, lp, xs, local_nk, local_sums, second,
                             z, tmp)
        else:
            _accumulate_expanded(model, n_rows, &sample_weight[chunk_start], lp, local_nk,
                                 second, features, xd, moments)
        chunk_start += n_rows
    if not full:
        _flush_expanded(model, local_sums, second, moments)
    ll[0] = block_ll
    sum_weights[0] = block_weight
    for k in range(K):
        nk[k] = local_nk[k]
    for k in range(K * d):
        sums[k] = local_sums[k]


cdef Model _model(int covariance_type, Py_ssize_t n_features, Py_ssize_t n_components,
                  const double[::1] log_const, const double[::1] shift_d,
                  const double[:, ::1] expansion, const double[:, ::1] prec_d):
    cdef Model model
    model.covariance_type = covariance_type
    model.n_features = n_features
    model.n_components = n_components
    model.n_columns = expansion.shape[0]
    model.group = max(1, min(n_components, GROUP_ELEMENTS // (CHUNK * n_features)))
    model.log_const = &log_const[0]
    model.shift_d = &shift_d[0]
    model.expansion = &expansion[0, 0]
    model.prec_d = &prec_d[0, 0]
    return model


def estep(
    int covariance_type,
    const floating[:, ::1] X,
    const floating[::1] sample_weight,
    const double[::1] log_const,
    const floating[::1] shift,
    const floating[:, ::1] centered,
    const floating[:, ::1] prec_cat,
    const floating[:, ::1] prec_means,
    const double[::1] shift_d,
    const double[:, ::1] expansion,
    const double[:, ::1] prec_d,
    double[::1] block_ll,
    double[::1] block_sum_weights,
    double[:, ::1] block_nk,
    double[:, :, ::1] block_sums,
    double[:, ::1] block_second,
    int n_threads,
):
    """One E-step pass over X with the M-step statistics of every block.

    full uses ``shift`` (s), ``centered`` (a = means - s), ``prec_cat`` (d, k*d) =
    ``[P_1 | .. | P_k]`` and ``prec_means`` (a_k @ P_k); the other types use
    ``shift_d``, ``expansion`` and ``prec_d`` (see the module docstring). Block
    buffers are zeroed here; the caller adds the blocks in order.
    """
    cdef:
        Py_ssize_t n_samples = X.shape[0], n_features = X.shape[1]
        Py_ssize_t n_components = log_const.shape[0], n_blocks = block_ll.shape[0]
        Py_ssize_t rows_per_block, b, start, end, group
        Model model = _model(covariance_type, n_features, n_components, log_const, shift_d,
                             expansion, prec_d)
        double *lp
        double *features
        double *xd
        double *moments
        double *local
        floating *xs
        floating *y
        floating *z
        floating *tmp

    block_ll[:] = 0.0
    block_sum_weights[:] = 0.0
    block_nk[...] = 0.0
    block_sums[...] = 0.0
    block_second[...] = 0.0
    if n_samples == 0:
        return
    rows_per_block = (n_samples + n_blocks - 1) // n_blocks
    group = model.group

    with nogil, parallel(num_threads=n_threads):
        lp = <double*> malloc(CHUNK * n_components * sizeof(double))
        xs = <floating*> malloc(CHUNK * n_features * sizeof(floating))
        y = <floating*> malloc(CHUNK * group * n_features * sizeof(floating))
        z = <floating*> malloc(CHUNK * n_features * sizeof(floating))
        tmp = <floating*> malloc(n_features * n_features * sizeof(floating))
        features = <double*> malloc(CHUNK * (model.n_columns + n_features) * sizeof(double))
        xd = <double*> malloc(CHUNK * n_features * sizeof(double))
        moments = <double*> malloc(n_components * model.n_columns * sizeof(double))
        local = <double*> malloc(n_components * (n_features + 1) * sizeof(double))
        for b in prange(n_blocks, schedule='dynamic'):
            start = b * rows_per_block
            end = min(start + rows_per_block, n_samples)
            if start < end:
                _estep_block(&model, X, sample_weight, start, end, &shift[0],
                             &centered[0, 0], &prec_cat[0, 0], &prec_means[0, 0],
                             &block_ll[b], &block_sum_weights[b], &block_nk[b, 0],
                             &block_sums[b, 0, 0], &block_second[b, 0], lp, xs, y, z, tmp,
                             features, xd, moments, local)
        free(lp)
        free(xs)
        free(y)
        free(z)
        free(tmp)
        free(features)
        free(xd)
        free(moments)
        free(local)


def score_chunks(
    int covariance_type,
    const floating[:, ::1] X,
    const double[::1] log_const,
    const floating[::1] shift,
    const floating[:, ::1] centered,
    const floating[:, ::1] prec_cat,
    const floating[:, ::1] prec_means,
    const double[::1] shift_d,
    const double[:, ::1] expansion,
    const double[:, ::1] prec_d,
    floating[::1] log_norm,
    floating[:, ::1] resp,
    long long[::1] labels,
    int n_threads,
):
    """Per-sample outputs of the fitted mixture, chunk by chunk.

    Writes ``log_norm[i]`` (the log-likelihood of row i) and, when they are not
    empty, ``resp[i]`` (responsibilities) and ``labels[i]`` (most probable
    component: the first maximum of the weighted log-density). Parameters as for
    ``estep``.
    """
    cdef:
        Py_ssize_t n_samples = X.shape[0], n_features = X.shape[1]
        Py_ssize_t n_components = log_const.shape[0]
        Py_ssize_t n_chunks = (n_samples + CHUNK - 1) // CHUNK
        bint want_resp = resp.shape[0] > 0, want_labels = labels.shape[0] > 0
        Py_ssize_t c, start, n_rows, i, k, best, group
        Model model = _model(covariance_type, n_features, n_components, log_const, shift_d,
                             expansion, prec_d)
        double *lp
        double *row
        double *features
        double *xd
        floating *xs
        floating *y

    if n_samples == 0:
        return
    group = model.group
    with nogil, parallel(num_threads=n_threads):
        lp = <double*> malloc(CHUNK * n_components * sizeof(double))
        xs = <floating*> malloc(CHUNK * n_features * sizeof(floating))
        y = <floating*> malloc(CHUNK * group * n_features * sizeof(floating))
        features = <double*> malloc(CHUNK * model.n_columns * sizeof(double))
        xd = <double*> malloc(CHUNK * n_features * sizeof(double))
        for c in prange(n_chunks, schedule='static'):
            start = c * CHUNK
            n_rows = min(CHUNK, n_samples - start)
            _log_prob_chunk(&model, &X[start, 0], n_rows, &shift[0], &prec_cat[0, 0],
                            &prec_means[0, 0], lp, xs, y, features, xd)
            for i in range(n_rows):
                row = lp + i * n_components
                if want_labels:
                    best = 0
                    for k in range(1, n_components):
                        if row[k] > row[best]:
                            best = k
                    labels[start + i] = best
                log_norm[start + i] = <floating>_normalize_row(row, n_components)
                if want_resp:
                    for k in range(n_components):
                        resp[start + i, k] = <floating>row[k]
        free(lp)
        free(xs)
        free(y)
        free(features)
        free(xd)
