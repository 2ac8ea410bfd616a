"""Lloyd's k-means in one pass over X per iteration, and the k-means++ distances.

``lloyd_step`` assigns every sample to its nearest centre and accumulates, for the
new centres, the weighted sums of the samples, the weight and the inertia of each
cluster. Only ``|c|^2 - 2 x.c`` decides the nearest centre, so the distances of a
chunk of rows to all centres come from one GEMM (measured faster than direct
loops even at d=2: OpenBLAS picks the CPU's widest vector unit at run time,
while this file is compiled for the baseline x86-64).

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
from libc.stdlib cimport free, malloc
from scipy.linalg.cython_blas cimport dgemm, sgemm

# Rows per distance computation: as many as keep a chunk of shifted rows and its
# distances to every centre (the GEMM's operands) within 256 KiB, so they stay in
# L2 between the GEMM and the sums. Measured against a fixed 256 rows: d=784 k=10
# 79 -> 67 ms (the 1.6 MB chunk had spilled), d=2 k=8 float32 8.7 -> 8.3 ms (fewer
# GEMM calls); 64 KiB and 1 MiB budgets were each worse somewhere.
cdef Py_ssize_t CHUNK_BYTES = 262144
cdef Py_ssize_t MIN_CHUNK = 16, MAX_CHUNK = 4096

cpdef Py_ssize_t chunk_rows(Py_ssize_t n_features, Py_ssize_t n_clusters, Py_ssize_t itemsize):
    """Rows per chunk for this problem size (a chunk's rows and distances fit in L2)."""
    cdef Py_ssize_t rows = CHUNK_BYTES // ((n_features + n_clusters) * itemsize)
    return max(MIN_CHUNK, min(MAX_CHUNK, rows))

cdef extern from *:
    """
    /* Index of the first minimum, written with selects so that gcc emits
       minsd + cmov: a branch on "new minimum?" mispredicts on random data and
       measured 2.5x slower for the whole step at d=2, k=8. */
    #define GMM_FAST_ARGMIN(T, NAME)                                    \
    static inline Py_ssize_t NAME(const T *v, Py_ssize_t n) {           \
        T m = v[0];                                                     \
        Py_ssize_t best = 0;                                            \
        for (Py_ssize_t j = 1; j < n; j++) {                            \
            T x = v[j];                                                 \
            best = x < m ? j : best;                                    \
            m = x < m ? x : m;                                          \
        }                                                               \
        return best;                                                    \
    }
    GMM_FAST_ARGMIN(float, argmin_float)
    GMM_FAST_ARGMIN(double, argmin_double)

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
    """
    Py_ssize_t argmin_float(const float *v, Py_ssize_t n) noexcept nogil
    Py_ssize_t argmin_double(const double *v, Py_ssize_t n) noexcept nogil
    double sq_dist_float(const float *x, const float *c, Py_ssize_t n) noexcept nogil
    double sq_dist_double(const double *x, const double *c, Py_ssize_t n) noexcept nogil


cdef inline Py_ssize_t _argmin(const floating *v, Py_ssize_t n) noexcept nogil:
    if floating is float:
        return argmin_float(v, n)
    else:
        return argmin_double(v, n)


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


cdef void _nearest_in_chunk(
    const floating[:, ::1] X, const floating[::1] shift,
    const floating[:, ::1] centers, const floating[::1] centers_sq_norms,
    Py_ssize_t start, Py_ssize_t end, int[::1] labels,
    floating *xs, floating *dist,
) noexcept nogil:
    """Label rows ``start:end``, leaving the shifted rows in ``xs``."""
    cdef:
        Py_ssize_t n_rows = end - start
        Py_ssize_t n_clusters = centers.shape[0], n_features = centers.shape[1]
        Py_ssize_t i, j, f

    for i in range(n_rows):
        for f in range(n_features):
            xs[i * n_features + f] = X[start + i, f] - shift[f]
    # dist = |c|^2 - 2 xs @ centers.T; |x|^2 is the same for every centre.
    for i in range(n_rows):
        for j in range(n_clusters):
            dist[i * n_clusters + j] = centers_sq_norms[j]
    _gemm_abt(n_rows, n_clusters, n_features, -2.0, xs, &centers[0, 0], 1.0, dist)
    for i in range(n_rows):
        labels[start + i] = <int>_argmin(&dist[i * n_clusters], n_clusters)


cdef void _lloyd_block(
    const floating[:, ::1] X, const floating[::1] sample_weight,
    const floating[::1] shift, const floating[:, ::1] centers,
    const floating[::1] centers_sq_norms,
    Py_ssize_t start, Py_ssize_t end, Py_ssize_t chunk, int[::1] labels,
    double *sums, double *counts, double *inertia,
    bint update_centers, floating *xs, floating *dist,
) noexcept nogil:
    """Label rows ``start:end``; add their statistics to one block's ``sums``, ``counts``."""
    cdef:
        Py_ssize_t n_features = centers.shape[1]
        Py_ssize_t chunk_start, chunk_end, i, f
        int label
        double w, block_inertia = 0.0
        const floating *x
        const floating *c
        double *s

    chunk_start = start
    while chunk_start < end:
        chunk_end = min(chunk_start + chunk, end)
        _nearest_in_chunk(X, shift, centers, centers_sq_norms,
                          chunk_start, chunk_end, labels, xs, dist)
        for i in range(chunk_end - chunk_start):
            label = labels[chunk_start + i]
            w = sample_weight[chunk_start + i]
            x = &xs[i * n_features]
            c = &centers[label, 0]
            # The exact squared distance, not the GEMM form, which cancels.
            block_inertia += w * _sq_dist(x, c, n_features)
            if update_centers:
                counts[label] += w
                s = &sums[label * n_features]
                for f in range(n_features):
                    s[f] += w * x[f]
        chunk_start = chunk_end
    inertia[0] = block_inertia


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
):
    """Assign samples to their nearest centre; sum each block's statistics.

    Writes ``labels`` and, per block ``b``, ``block_inertia[b]`` and, when
    ``update_centers``, ``block_counts[b, j]`` (weight of cluster j) and
    ``block_sums[b, j]`` (weighted sum of ``x - shift`` over cluster j). The
    caller adds the blocks in order. ``centers`` are about ``shift`` too.
    """
    cdef:
        Py_ssize_t n_samples = X.shape[0], n_features = X.shape[1]
        Py_ssize_t n_clusters = centers.shape[0], n_blocks = block_inertia.shape[0]
        Py_ssize_t rows_per_block, b, j, f, start, end
        Py_ssize_t chunk = chunk_rows(n_features, n_clusters, sizeof(floating))
        floating[::1] centers_sq_norms
        floating *xs
        floating *dist

    block_sums[...] = 0.0
    block_counts[...] = 0.0
    block_inertia[...] = 0.0
    if n_samples == 0 or n_blocks == 0:
        return
    rows_per_block = (n_samples + n_blocks - 1) // n_blocks
    centers_sq_norms = np.empty(n_clusters, dtype=np.float32 if floating is float else np.float64)
    for j in range(n_clusters):
        centers_sq_norms[j] = 0
        for f in range(n_features):
            centers_sq_norms[j] += centers[j, f] * centers[j, f]

    with nogil, parallel(num_threads=n_threads):
        xs = <floating*> malloc(chunk * n_features * sizeof(floating))
        dist = <floating*> malloc(chunk * n_clusters * sizeof(floating))
        for b in prange(n_blocks, schedule='dynamic'):
            start = b * rows_per_block
            end = min(start + rows_per_block, n_samples)
            if start < end:
                _lloyd_block(X, sample_weight, shift, centers, centers_sq_norms,
                             start, end, chunk, labels,
                             &block_sums[b, 0, 0] if update_centers else NULL,
                             &block_counts[b, 0] if update_centers else NULL,
                             &block_inertia[b], update_centers, xs, dist)
        free(xs)
        free(dist)


def min_sq_distances(
    const floating[:, ::1] X,
    const floating[::1] center,
    double[::1] closest_sq_dist,
    int n_threads,
):
    """``closest_sq_dist[i] = min(closest_sq_dist[i], |X[i] - center|^2)`` (k-means++)."""
    cdef:
        Py_ssize_t n_samples = X.shape[0], n_features = X.shape[1]
        Py_ssize_t i, f
        double sq, diff

    for i in prange(n_samples, nogil=True, num_threads=n_threads, schedule='static'):
        sq = 0.0
        for f in range(n_features):
            diff = <double>X[i, f] - center[f]
            sq = sq + diff * diff
        if sq < closest_sq_dist[i]:
            closest_sq_dist[i] = sq


cdef void _potentials_block(
    const floating[:, ::1] X, const floating[::1] sample_weight,
    const floating[:, ::1] candidates, const double[::1] closest_sq_dist,
    Py_ssize_t b, Py_ssize_t start, Py_ssize_t end, double[:, ::1] block_potentials,
) noexcept nogil:
    """Add ``w * min(closest, |x - candidate|^2)`` over rows ``start:end`` to block ``b``."""
    cdef:
        Py_ssize_t n_candidates = candidates.shape[0], n_features = X.shape[1]
        Py_ssize_t i, t, f
        double sq, diff

    for i in range(start, end):
        for t in range(n_candidates):
            sq = 0.0
            for f in range(n_features):
                diff = <double>X[i, f] - candidates[t, f]
                sq = sq + diff * diff
            block_potentials[b, t] += sample_weight[i] * min(sq, closest_sq_dist[i])


def candidate_potentials(
    const floating[:, ::1] X,
    const floating[::1] sample_weight,
    const floating[:, ::1] candidates,
    const double[::1] closest_sq_dist,
    double[:, ::1] block_potentials,
    int n_threads,
):
    """Per block, the k-means++ potential each candidate centre would leave.

    ``block_potentials[b, t]`` sums ``w * min(closest, |x - candidates[t]|^2)``
    over the rows of block ``b``; the caller adds the blocks in order.
    """
    cdef:
        Py_ssize_t n_samples = X.shape[0], n_blocks = block_potentials.shape[0]
        Py_ssize_t rows_per_block = (n_samples + n_blocks - 1) // n_blocks
        Py_ssize_t b, start, end

    block_potentials[...] = 0.0
    if n_samples == 0 or n_blocks == 0:
        return
    for b in prange(n_blocks, nogil=True, num_threads=n_threads, schedule='dynamic'):
        start = b * rows_per_block
        end = min(start + rows_per_block, n_samples)
        if start < end:
            _potentials_block(X, sample_weight, candidates, closest_sq_dist,
                              b, start, end, block_potentials)
