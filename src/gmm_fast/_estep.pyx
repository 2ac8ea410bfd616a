"""One EM pass of a Gaussian mixture: log-densities, responsibilities and their statistics.

For a chunk of rows, component k's log-density in Cholesky-of-precision form is

    log N(x | m_k, P_k P_k^T) = -0.5 |(x - m_k) @ P_k|^2 + sum_f log P_k[f, f] - d/2 log(2 pi)

with P_k = ``precisions_cholesky[k]`` (upper triangular). The caller folds every
constant into ``log_prior[k] = log pi_k + log det P_k - d/2 log(2 pi)``. The row
log-sum-exp of ``log_prior + log-density`` is the row log-likelihood, and
``exp(. - row log-likelihood)`` the responsibilities ``r``. ``estep`` then adds, in
the same pass and without ever holding more than one chunk of ``r``:

    nk[k]     += sum_i w_i r_ik
    sums[k]   += sum_i w_i r_ik (x_i - m_k)
    second[k] += sum_i w_i r_ik (x_i - m_k)(x_i - m_k)^T     (full; diag: the diagonal;
                                                              spherical: its trace)

and for "tied" the resp-free ``sum_i w_i (x_i - s)(x_i - s)^T`` about one shift s,
from which the caller recovers the sum over k of the full second moments
(``_gaussian_mixture.estep_statistics``). Moments are taken about the current means,
so data far from the origin loses nothing to cancellation; x - m_k is formed in the
dtype of X and every sum is float64.

Determinism: rows are cut into ``n_blocks`` blocks (the first axis of the caller's
block buffers; the count never depends on threads). One thread sums one whole block
in row order, chunk after chunk, and the caller adds the blocks in order, so any
``n_threads`` gives bitwise identical statistics.
"""
import numpy as np

from cython cimport floating
from cython.parallel cimport parallel, prange
from libc.math cimport INFINITY, exp, log, sqrt
from libc.stdlib cimport free, malloc
from scipy.linalg.cython_blas cimport dgemm, dsyrk, sgemm, ssyrk

# Rows per chunk: a chunk of X, its k responsibilities and the d x d products of
# the full type stay in L2 (2 MB here); 256 rows measured as fast as 512-1024 and
# faster than 64-128, where the BLAS calls get too small.
cdef Py_ssize_t CHUNK = 256
CHUNK_SIZE = CHUNK

# Covariance types, as the caller passes them.
cdef enum:
    FULL = 0
    TIED = 1
    DIAG = 2
    SPHERICAL = 3

COVARIANCE_CODES = {"full": FULL, "tied": TIED, "diag": DIAG, "spherical": SPHERICAL}


cdef inline void _gemm(Py_ssize_t m, Py_ssize_t n, Py_ssize_t k,
                       const floating *a, const floating *b, floating *c) noexcept nogil:
    """Row-major ``c[m, n] = a[m, k] @ b[k, n]``."""
    # Column-major BLAS sees c.T = b.T @ a.T with the same storage.
    cdef int m_ = <int>n, n_ = <int>m, k_ = <int>k
    cdef char *no = 'N'
    cdef floating one = 1.0, zero = 0.0
    if floating is float:
        sgemm(no, no, &m_, &n_, &k_, &one, <float*>b, &m_, <float*>a, &k_, &zero, c, &m_)
    else:
        dgemm(no, no, &m_, &n_, &k_, &one, <double*>b, &m_, <double*>a, &k_, &zero, c, &m_)


cdef inline void _syrk_upper(Py_ssize_t n_rows, Py_ssize_t n_features, const floating *z,
                             floating beta, floating *c) noexcept nogil:
    """Upper triangle (row-major) of ``c = z.T @ z + beta * c`` for ``z[n_rows, n_features]``."""
    # z row-major is z.T column-major (d x n): 'N' gives z.T z, the column-major lower
    # triangle being the row-major upper one.
    cdef int n_ = <int>n_features, k_ = <int>n_rows
    cdef char *lower = 'L'
    cdef char *no = 'N'
    cdef floating one = 1.0
    if floating is float:
        ssyrk(lower, no, &n_, &k_, &one, <float*>z, &n_, &beta, c, &n_)
    else:
        dsyrk(lower, no, &n_, &k_, &one, <double*>z, &n_, &beta, c, &n_)


cdef void _log_prob_chunk(
    int covariance_type, const floating *X, Py_ssize_t n_rows, Py_ssize_t n_features,
    Py_ssize_t n_components, const double *log_prior, const floating *means,
    const floating *prec, const floating *shift, const floating *prec_means,
    double *lp, floating *xs, floating *y,
) noexcept nogil:
    """``lp[i, k] = log_prior[k] - 0.5 * Mahalanobis^2`` for the rows of one chunk.

    tied: ``means`` are about ``shift``, ``prec_means = means @ P`` and ``xs`` is left
    holding ``X - shift`` (the M-phase reuses it).
    """
    cdef:
        Py_ssize_t i, k, f, d = n_features, K = n_components
        double q, diff, p
        const floating *m
        const floating *row

    if covariance_type == FULL:
        for k in range(K):
            m = means + k * d
            for i in range(n_rows):
                for f in range(d):
                    xs[i * d + f] = X[i * d + f] - m[f]
            _gemm(n_rows, d, d, xs, prec + k * d * d, y)
            for i in range(n_rows):
                q = 0.0
                for f in range(d):
                    q = q + <double>y[i * d + f] * y[i * d + f]
                lp[i * K + k] = log_prior[k] - 0.5 * q
    elif covariance_type == TIED:
        for i in range(n_rows):
            for f in range(d):
                xs[i * d + f] = X[i * d + f] - shift[f]
        _gemm(n_rows, d, d, xs, prec, y)
        for i in range(n_rows):
            for k in range(K):
                q = 0.0
                for f in range(d):
                    diff = <double>y[i * d + f] - prec_means[k * d + f]
                    q = q + diff * diff
                lp[i * K + k] = log_prior[k] - 0.5 * q
    elif covariance_type == DIAG:
        for i in range(n_rows):
            row = X + i * d
            for k in range(K):
                q = 0.0
                for f in range(d):
                    diff = (<double>row[f] - means[k * d + f]) * prec[k * d + f]
                    q = q + diff * diff
                lp[i * K + k] = log_prior[k] - 0.5 * q
    else:
        for i in range(n_rows):
            row = X + i * d
            for k in range(K):
                q = 0.0
                for f in range(d):
                    diff = <double>row[f] - means[k * d + f]
                    q = q + diff * diff
                p = prec[k]
                lp[i * K + k] = log_prior[k] - 0.5 * p * p * q


cdef inline double _normalize_row(double *lp, Py_ssize_t n_components) noexcept nogil:
    """Turn one row of weighted log-densities into responsibilities; return its log-sum-exp."""
    cdef:
        Py_ssize_t k
        double top = -INFINITY, total = 0.0, log_norm
    for k in range(n_components):
        if lp[k] > top:
            top = lp[k]
    for k in range(n_components):
        total = total + exp(lp[k] - top)
    log_norm = top + log(total)
    for k in range(n_components):
        lp[k] = exp(lp[k] - log_norm)
    return log_norm


cdef void _accumulate_chunk(
    int covariance_type, const floating *X, const floating *sample_weight,
    Py_ssize_t n_rows, Py_ssize_t n_features, Py_ssize_t n_components,
    const floating *means, const double *resp,
    double *nk, double *sums, double *second,
    floating *xs, floating *z, double *zd, floating *tmp,
) noexcept nogil:
    """Add one chunk's weighted statistics (``resp`` = its responsibilities) to a block."""
    cdef:
        Py_ssize_t i, k, f, g, d = n_features, K = n_components
        double wr, total, diff, sq, sw
        const floating *m

    for k in range(K):
        m = means + k * d
        total = 0.0
        for i in range(n_rows):
            wr = sample_weight[i] * resp[i * K + k]
            total = total + wr
            if covariance_type == FULL:
                # z = sqrt(w r) (x - m): its Gram matrix is the weighted scatter.
                sw = sqrt(wr)
                for f in range(d):
                    diff = <double>X[i * d + f] - m[f]
                    sums[k * d + f] += wr * diff
                    z[i * d + f] = <floating>(sw * diff)
            elif covariance_type == TIED:
                for f in range(d):
                    # xs holds X - shift and m the means about the same shift.
                    sums[k * d + f] += wr * (<double>xs[i * d + f] - m[f])
            elif covariance_type == DIAG:
                for f in range(d):
                    diff = <double>X[i * d + f] - m[f]
                    sums[k * d + f] += wr * diff
                    second[k * d + f] += wr * diff * diff
            else:
                sq = 0.0
                for f in range(d):
                    diff = <double>X[i * d + f] - m[f]
                    sums[k * d + f] += wr * diff
                    sq = sq + diff * diff
                second[k] += wr * sq
        nk[k] += total
        if covariance_type == FULL:
            if floating is double:
                _syrk_upper(n_rows, d, z, 1.0, second + k * d * d)
            else:
                _syrk_upper(n_rows, d, z, 0.0, tmp)
                for f in range(d):
                    for g in range(f, d):
                        second[k * d * d + f * d + g] += tmp[f * d + g]

    if covariance_type == TIED:
        # sum_i w_i xs_i xs_i^T, in float64 even for float32 X (the caller subtracts
        # the large between-component part from it).
        for i in range(n_rows):
            sw = sqrt(<double>sample_weight[i])
            for f in range(d):
                zd[i * d + f] = sw * xs[i * d + f]
        _syrk_upper(n_rows, d, zd, 1.0, second)


cdef void _estep_block(
    int covariance_type, const floating[:, ::1] X, const floating[::1] sample_weight,
    Py_ssize_t start, Py_ssize_t end, Py_ssize_t n_components, const double *log_prior,
    const floating *means, const floating *prec, const floating *shift,
    const floating *prec_means, double *ll, double *sum_weights, double *nk, double *sums,
    double *second, double *lp, floating *xs, floating *y, floating *z, double *zd,
    floating *tmp,
) noexcept nogil:
    """Statistics of rows ``start:end`` added to one block's slots, chunk by chunk."""
    cdef:
        Py_ssize_t n_features = X.shape[1]
        Py_ssize_t chunk_start, n_rows, i
        double w, log_norm

    chunk_start = start
    while chunk_start < end:
        n_rows = min(CHUNK, end - chunk_start)
        _log_prob_chunk(covariance_type, &X[chunk_start, 0], n_rows, n_features,
                        n_components, log_prior, means, prec, shift, prec_means, lp, xs, y)
        for i in range(n_rows):
            log_norm = _normalize_row(lp + i * n_components, n_components)
            w = sample_weight[chunk_start + i]
            sum_weights[0] += w
            if w != 0:  # a zero weight must not turn a -inf log-likelihood into NaN
                ll[0] += w * log_norm
        _accumulate_chunk(covariance_type, &X[chunk_start, 0], &sample_weight[chunk_start],
                          n_rows, n_features, n_components, means, lp, nk, sums, second,
                          xs, z, zd, tmp)
        chunk_start += n_rows


def estep(
    int covariance_type,
    const floating[:, ::1] X,
    const floating[::1] sample_weight,
    const double[::1] log_prior,
    const floating[:, ::1] means,
    const floating[::1] precisions_cholesky,
    const floating[::1] shift,
    const floating[:, ::1] prec_means,
    double[::1] block_ll,
    double[::1] block_sum_weights,
    double[:, ::1] block_nk,
    double[:, :, ::1] block_sums,
    double[:, ::1] block_second,
    int n_threads,
):
    """One E-step pass over X with the M-step statistics of every block.

    ``precisions_cholesky`` is flattened; for "tied", ``means`` are about ``shift``
    and ``prec_means = means @ P``. ``block_second[b]`` holds, flattened, the
    upper triangle of each d x d second moment (full, tied) or the diagonals (diag)
    or traces (spherical). All block buffers are zeroed here; the caller adds the
    blocks in order.
    """
    cdef:
        Py_ssize_t n_samples = X.shape[0], n_features = X.shape[1]
        Py_ssize_t n_components = means.shape[0], n_blocks = block_ll.shape[0]
        Py_ssize_t rows_per_block, b, start, end
        double *lp
        floating *xs
        floating *y
        floating *z
        double *zd
        floating *tmp

    block_ll[:] = 0.0
    block_sum_weights[:] = 0.0
    block_nk[...] = 0.0
    block_sums[...] = 0.0
    block_second[...] = 0.0
    if n_samples == 0:
        return
    rows_per_block = (n_samples + n_blocks - 1) // n_blocks

    with nogil, parallel(num_threads=n_threads):
        lp = <double*> malloc(CHUNK * n_components * sizeof(double))
        xs = <floating*> malloc(CHUNK * n_features * sizeof(floating))
        y = <floating*> malloc(CHUNK * n_features * sizeof(floating))
        z = <floating*> malloc(CHUNK * n_features * sizeof(floating))
        zd = <double*> malloc(CHUNK * n_features * sizeof(double))
        tmp = <floating*> malloc(n_features * n_features * sizeof(floating))
        for b in prange(n_blocks, schedule='dynamic'):
            start = b * rows_per_block
            end = min(start + rows_per_block, n_samples)
            if start < end:
                _estep_block(covariance_type, X, sample_weight, start, end, n_components,
                             &log_prior[0], &means[0, 0], &precisions_cholesky[0],
                             &shift[0], &prec_means[0, 0], &block_ll[b],
                             &block_sum_weights[b], &block_nk[b, 0], &block_sums[b, 0, 0],
                             &block_second[b, 0], lp, xs, y, z, zd, tmp)
        free(lp)
        free(xs)
        free(y)
        free(z)
        free(zd)
        free(tmp)


def score_chunks(
    int covariance_type,
    const floating[:, ::1] X,
    const double[::1] log_prior,
    const floating[:, ::1] means,
    const floating[::1] precisions_cholesky,
    const floating[::1] shift,
    const floating[:, ::1] prec_means,
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
        Py_ssize_t n_components = means.shape[0]
        Py_ssize_t n_chunks = (n_samples + CHUNK - 1) // CHUNK
        bint want_resp = resp.shape[0] > 0, want_labels = labels.shape[0] > 0
        Py_ssize_t c, start, n_rows, i, k, best
        double *lp
        double *row
        floating *xs
        floating *y

    if n_samples == 0:
        return
    with nogil, parallel(num_threads=n_threads):
        lp = <double*> malloc(CHUNK * n_components * sizeof(double))
        xs = <floating*> malloc(CHUNK * n_features * sizeof(floating))
        y = <floating*> malloc(CHUNK * n_features * sizeof(floating))
        for c in prange(n_chunks, schedule='static'):
            start = c * CHUNK
            n_rows = min(CHUNK, n_samples - start)
            _log_prob_chunk(covariance_type, &X[start, 0], n_rows, n_features,
                            n_components, &log_prior[0], &means[0, 0],
                            &precisions_cholesky[0], &shift[0], &prec_means[0, 0],
                            lp, xs, y)
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
