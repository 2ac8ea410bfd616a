"""Lloyd's k-means and the k-means++ distances on CSR rows (scipy.sparse), X never densified.

``sparse_lloyd_step`` labels every row with its nearest centre. Only
``|c|^2 - 2 x.c`` decides it; the sparse dot products of a row with all k centres
come from one pass over its non-zeros, each adding ``-2 x_f`` times row f of the
centres stored transposed (``centers_t``, n_features x n_clusters): k contiguous
values, vectorised, where the row-major centres would need k scattered reads per
non-zero. Scaling x_f by -2 is exact, so the sums are -2 times those of
scikit-learn's ``x.c`` loop, term by term. The exact squared distance (inertia,
empty clusters, k-means++) is ``|c|^2 + sum_f in nnz ((x_f - c_f)^2 - c_f^2)``,
in float64, one read of the centre per non-zero.

``sparse_center_sums`` adds the weighted rows of each cluster from the transposed
(CSC) data: one thread owns a whole column f and adds its non-zeros in row order
into ``sums_t[f]``, so the sums are the same for any thread count without
per-block copies of the n_features x n_clusters sums (41 MB at 2e4 x 256: blocks
of that size would leave one block, and one thread).

Determinism: the rows are cut into ``n_blocks`` blocks (the first axis of the
caller's block buffers), one thread sums one block in row order, the caller adds
the blocks in block order; columns of the sums are each summed by one thread.
Any ``n_threads`` gives bitwise the same labels, centres and inertia.
"""
import numpy as np

from cython cimport floating
from cython.parallel cimport parallel, prange
from libc.stdint cimport int32_t, int64_t
from libc.stdlib cimport malloc, free
from libc.string cimport memcpy, memset

ctypedef fused index_t:
    int32_t
    int64_t

from gmm_fast._kernels cimport gmm_set_kernel_level, gmm_supported_level


cdef extern from "kernels.h":
    Py_ssize_t argmin_float(const float *v, const float *off, Py_ssize_t n) noexcept nogil
    Py_ssize_t argmin_double(const double *v, const double *off, Py_ssize_t n) noexcept nogil



def set_kernel_level(int level):
    """Run this module's argmin at ``level`` (0 baseline, 1 AVX2, 2 AVX-512), or the
    best the CPU supports below it; returns the level in use (``gmm_fast._cpu``)."""
    return gmm_set_kernel_level(level)


set_kernel_level(gmm_supported_level())

# Columns of the sums per scheduling unit of sparse_center_sums (a thread takes the
# next 64 columns when done: balances columns of very different lengths, TF-IDF's).
cdef Py_ssize_t COLUMN_STEP = 64
# Rows per scheduling unit of the k-means++ distances (independent rows, any order).
cdef Py_ssize_t ROW_STEP = 1024


cdef inline double _sq_dist(const floating *data, const index_t *indices, Py_ssize_t start,
                            Py_ssize_t end, const floating *center, Py_ssize_t stride,
                            double center_sq) noexcept nogil:
    """``|x - c|^2`` for the CSR row ``data/indices[start:end]`` and the centre whose
    feature f is ``center[f * stride]``, its ``|c|^2`` given (>= 0 by clipping)."""
    cdef:
        Py_ssize_t p
        double c, diff, sq = center_sq

    for p in range(start, end):
        c = center[indices[p] * stride]
        diff = data[p] - c
        sq += diff * diff - c * c
    return sq if sq > 0.0 else 0.0


cdef double _assign_block(
    const floating *data, const index_t *indices, const index_t *indptr,
    const floating *sample_weight, const floating *centers_t, const floating *sq_norms,
    const double *sq_norms_exact, Py_ssize_t n_clusters, Py_ssize_t start, Py_ssize_t end,
    int *labels, double *counts, floating *dot, Py_ssize_t *changed, bint with_inertia,
) noexcept nogil:
    """Label rows ``start:end``; add their weights to ``counts`` (if not NULL); their inertia."""
    cdef:
        Py_ssize_t i, p, j
        int label
        floating v
        const floating *row
        double w, inertia = 0.0
        Py_ssize_t n_changed = 0

    for i in range(start, end):
        memset(dot, 0, n_clusters * sizeof(floating))
        for p in range(indptr[i], indptr[i + 1]):
            v = -2 * data[p]
            row = centers_t + indices[p] * n_clusters
            for j in range(n_clusters):  # (gcc vectorises this axpy)
                dot[j] += v * row[j]
        if floating is float:
            label = <int>argmin_float(dot, sq_norms, n_clusters)
        else:
            label = <int>argmin_double(dot, sq_norms, n_clusters)
        n_changed += labels[i] != label
        labels[i] = label
        w = sample_weight[i] if sample_weight != NULL else 1.0
        if counts != NULL:
            counts[label] += w
        if with_inertia:
            inertia += w * _sq_dist(data, indices, indptr[i], indptr[i + 1], centers_t + label,
                                    n_clusters, sq_norms_exact[label])
    changed[0] = n_changed
    return inertia


def sparse_lloyd_step(
    const floating[::1] data,
    const index_t[::1] indices,
    const index_t[::1] indptr,
    const floating[::1] sample_weight,
    const floating[:, ::1] centers_t,
    int[::1] labels,
    double[:, ::1] block_counts,
    double[::1] block_inertia,
    bint update_counts,
    int n_threads,
    bint with_inertia=True,
):
    """Assign CSR rows to their nearest centre; per block, the cluster weights and inertia.

    ``centers_t`` holds the centres as columns (n_features x n_clusters). Writes
    ``labels``, and per block ``b``: ``block_inertia[b]`` (0 unless
    ``with_inertia``) and, when ``update_counts``, ``block_counts[b, j]`` (weight
    of cluster j). The caller adds the blocks in order. ``sample_weight`` None
    means unit weights. Returns how many labels changed.
    """
    cdef:
        Py_ssize_t n_samples = indptr.shape[0] - 1
        Py_ssize_t n_clusters = centers_t.shape[1], n_blocks = block_inertia.shape[0]
        Py_ssize_t rows_per_block, b, start, end
        const floating *weights = NULL if sample_weight is None else &sample_weight[0]
        floating[::1] sq_norms
        double[::1] sq_norms_exact
        Py_ssize_t[::1] block_changed
        floating *dot
        double *counts
        const floating *data_ptr
        const index_t *indices_ptr

    block_counts[...] = 0.0
    block_inertia[...] = 0.0
    if n_samples == 0 or n_blocks == 0:
        return 0
    rows_per_block = (n_samples + n_blocks - 1) // n_blocks
    block_changed = np.zeros(n_blocks, dtype=np.intp)
    # |c|^2 in the data's dtype decides the labels (as scikit-learn's row_norms),
    # in float64 it enters the exact distances.
    centers = np.asarray(centers_t)
    sq_norms = np.einsum("ij,ij->j", centers, centers)
    centers64 = centers.astype(np.float64)
    sq_norms_exact = np.einsum("ij,ij->j", centers64, centers64)
    del centers64
    # (an empty matrix has no data: a 1-element stand-in, never read)
    data_ptr = &data[0] if data.shape[0] else &sq_norms[0]
    indices_ptr = &indices[0] if indices.shape[0] else &indptr[0]

    with nogil, parallel(num_threads=n_threads):
        dot = <floating*> malloc(n_clusters * sizeof(floating))
        # (the thread's own counts, copied to the block's slot: no shared cache lines)
        counts = <double*> malloc(n_clusters * sizeof(double))
        for b in prange(n_blocks, schedule='dynamic'):
            start = b * rows_per_block
            end = min(start + rows_per_block, n_samples)
            if start < end:
                memset(counts, 0, n_clusters * sizeof(double))
                block_inertia[b] = _assign_block(
                    data_ptr, indices_ptr, &indptr[0], weights, &centers_t[0, 0],
                    &sq_norms[0], &sq_norms_exact[0], n_clusters, start, end, &labels[0],
                    counts if update_counts else NULL, dot, &block_changed[b], with_inertia)
                if update_counts:
                    memcpy(&block_counts[b, 0], counts, n_clusters * sizeof(double))
        free(dot)
        free(counts)
    return int(np.sum(block_changed))


def sparse_center_sums(
    const floating[::1] data_t,
    const index_t[::1] rows,
    const index_t[::1] colptr,
    const floating[::1] sample_weight,
    const int[::1] labels,
    double[:, ::1] sums_t,
    int n_threads,
):
    """``sums_t[f, j] = sum_i w_i x_if`` over the rows i labelled j, from X's CSC form
    (``data_t``, ``rows``, ``colptr``); each column summed in row order by one thread."""
    cdef:
        Py_ssize_t n_features = colptr.shape[0] - 1, n_clusters = sums_t.shape[1]
        Py_ssize_t n_steps = (n_features + COLUMN_STEP - 1) // COLUMN_STEP
        Py_ssize_t s, f, p, i, f_end
        const floating *weights = NULL if sample_weight is None else &sample_weight[0]
        double *sums

    if n_features == 0 or n_clusters == 0:
        return
    for s in prange(n_steps, nogil=True, num_threads=n_threads, schedule='dynamic'):
        f_end = min((s + 1) * COLUMN_STEP, n_features)
        for f in range(s * COLUMN_STEP, f_end):
            sums = &sums_t[f, 0]
            memset(sums, 0, n_clusters * sizeof(double))
            for p in range(colptr[f], colptr[f + 1]):
                i = rows[p]
                sums[labels[i]] += (weights[i] if weights != NULL else 1.0) * data_t[p]


def sparse_label_distances(
    const floating[::1] data,
    const index_t[::1] indices,
    const index_t[::1] indptr,
    const floating[:, ::1] centers,
    const int[::1] labels,
    double[::1] out,
    int n_threads,
):
    """``out[i] = |x_i - centers[labels[i]]|^2`` (rows of ``centers``: n_clusters x n_features)."""
    cdef:
        Py_ssize_t n_samples = indptr.shape[0] - 1, n_features = centers.shape[1]
        Py_ssize_t n_steps = (n_samples + ROW_STEP - 1) // ROW_STEP, s, i
        double[::1] sq_norms
        const floating *data_ptr
        const index_t *indices_ptr

    if n_samples == 0:
        return
    centers64 = np.asarray(centers, dtype=np.float64)
    sq_norms = np.einsum("ij,ij->i", centers64, centers64)
    data_ptr = &data[0] if data.shape[0] else &centers[0, 0]
    indices_ptr = &indices[0] if indices.shape[0] else &indptr[0]
    for s in prange(n_steps, nogil=True, num_threads=n_threads, schedule='static'):
        for i in range(s * ROW_STEP, min((s + 1) * ROW_STEP, n_samples)):
            out[i] = _sq_dist(data_ptr, indices_ptr, indptr[i], indptr[i + 1],
                              &centers[labels[i], 0], 1, sq_norms[labels[i]])


def sparse_min_sq_distances(
    const floating[::1] data,
    const index_t[::1] indices,
    const index_t[::1] indptr,
    const floating[::1] center,
    double[::1] closest_sq_dist,
    int n_threads,
):
    """``closest_sq_dist[i] = min(closest_sq_dist[i], |x_i - center|^2)`` (k-means++)."""
    cdef:
        Py_ssize_t n_samples = indptr.shape[0] - 1
        Py_ssize_t n_steps = (n_samples + ROW_STEP - 1) // ROW_STEP, s, i
        double center_sq, sq
        const floating *data_ptr
        const index_t *indices_ptr

    if n_samples == 0:
        return
    center64 = np.asarray(center, dtype=np.float64)
    center_sq = center64 @ center64
    data_ptr = &data[0] if data.shape[0] else &center[0]
    indices_ptr = &indices[0] if indices.shape[0] else &indptr[0]
    for s in prange(n_steps, nogil=True, num_threads=n_threads, schedule='static'):
        for i in range(s * ROW_STEP, min((s + 1) * ROW_STEP, n_samples)):
            sq = _sq_dist(data_ptr, indices_ptr, indptr[i], indptr[i + 1], &center[0], 1,
                          center_sq)
            if sq < closest_sq_dist[i]:
                closest_sq_dist[i] = sq


def sparse_candidate_potentials(
    const floating[::1] data,
    const index_t[::1] indices,
    const index_t[::1] indptr,
    const floating[::1] sample_weight,
    const floating[:, ::1] candidates,
    const double[::1] closest_sq_dist,
    double[:, ::1] block_potentials,
    int n_threads,
    double[:, ::1] candidate_sq_dist=None,
):
    """Per block, the k-means++ potential each candidate centre would leave (CSR rows).

    As ``_lloyd.candidate_potentials``: ``block_potentials[b, t]`` sums
    ``w * min(closest, |x - candidates[t]|^2)`` over the rows of block ``b`` in row
    order; ``candidate_sq_dist`` (n_candidates x n_samples), when given, receives
    every ``|x - candidates[t]|^2``.
    """
    cdef:
        Py_ssize_t n_samples = indptr.shape[0] - 1, n_blocks = block_potentials.shape[0]
        Py_ssize_t n_candidates = candidates.shape[0]
        Py_ssize_t rows_per_block, b, start, end, i, t
        const floating *weights = NULL if sample_weight is None else &sample_weight[0]
        double[::1] sq_norms
        double *pot
        double *dist = NULL
        double sq
        const floating *data_ptr
        const index_t *indices_ptr

    block_potentials[...] = 0.0
    if n_samples == 0 or n_blocks == 0:
        return
    if candidate_sq_dist is not None:
        if (candidate_sq_dist.shape[0] != n_candidates
                or candidate_sq_dist.shape[1] != n_samples):
            raise ValueError("candidate_sq_dist should have shape (n_candidates, n_samples).")
        dist = &candidate_sq_dist[0, 0]
    rows_per_block = (n_samples + n_blocks - 1) // n_blocks
    candidates64 = np.asarray(candidates, dtype=np.float64)
    sq_norms = np.einsum("ij,ij->i", candidates64, candidates64)
    data_ptr = &data[0] if data.shape[0] else &candidates[0, 0]
    indices_ptr = &indices[0] if indices.shape[0] else &indptr[0]
    with nogil, parallel(num_threads=n_threads):
        pot = <double*> malloc(n_candidates * sizeof(double))
        for b in prange(n_blocks, schedule='dynamic'):
            start = b * rows_per_block
            end = min(start + rows_per_block, n_samples)
            if start < end:
                memset(pot, 0, n_candidates * sizeof(double))
                for i in range(start, end):
                    for t in range(n_candidates):
                        sq = _sq_dist(data_ptr, indices_ptr, indptr[i], indptr[i + 1],
                                      &candidates[t, 0], 1, sq_norms[t])
                        if dist != NULL:
                            dist[t * n_samples + i] = sq
                        pot[t] += ((weights[i] if weights != NULL else 1.0)
                                   * min(sq, closest_sq_dist[i]))
                memcpy(&block_potentials[b, 0], pot, n_candidates * sizeof(double))
        free(pot)
