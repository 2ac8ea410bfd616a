"""KMeans on scipy.sparse input: the checks, the Lloyd loop and the distances for CSR rows.

Sparse X is converted to CSR once (CSC, COO and the other formats by ``tocsr()``)
and never densified, nor centred: the centres are dense and taken as they are
(the dense path works about X's mean; subtracting it would fill X). The estimator
reads checked sparse data through ``SparseRows``, which gives what the seeding and
the initialisations need from X (its shape, dtype, size, dense rows by index), so
k-means++ and "random" run the same code on both; the passes over the rows go to
``_lloyd_sparse``.
"""
import numpy as np

from ._lloyd import candidate_potentials as _dense_candidate_potentials
from ._lloyd import min_sq_distances as _dense_min_sq_distances
from ._lloyd_sparse import (sparse_candidate_potentials, sparse_center_sums,
                            sparse_label_distances, sparse_lloyd_step,
                            sparse_min_sq_distances)
from ._threads import n_blocks, pass_threads
from ._validation import check_array, check_dtype, total_weight

# Row steps of ``sparse_distances``: dense temporaries of about this many float64.
_STEP_ELEMENTS = 2**17
# As in ``KMeans._distances``: squared distances below this fraction of
# |x|^2 + |c|^2 are recomputed from the differences.
_CANCELLATION = 1e-4


def issparse(X):
    """Whether ``X`` is a scipy.sparse matrix or array (without importing scipy.sparse)."""
    return type(X).__module__.startswith("scipy.sparse") and hasattr(X, "tocsr")


class SparseRows:
    """Checked CSR data as the k-means code reads it.

    ``matrix`` is the CSR matrix (float32 or float64, canonical: sorted indices,
    no duplicates); ``data``, ``indices``, ``indptr`` its arrays. Indexing gives
    dense rows: ``X[i]`` a 1-D array, ``X[[i, j]]`` a 2-D one; a slice, the rows' own
    ``SparseRows``.
    """

    ndim = 2

    def __init__(self, matrix):
        self.matrix = matrix
        self.data, self.indices, self.indptr = matrix.data, matrix.indices, matrix.indptr
        self.shape = matrix.shape
        self.dtype = matrix.dtype
        self._transposed = None

    def __len__(self):
        return self.shape[0]

    @property
    def nnz(self):
        return len(self.data)

    @property
    def nbytes(self):
        return self.data.nbytes + self.indices.nbytes + self.indptr.nbytes

    def __getitem__(self, rows):
        if isinstance(rows, slice):  # a block of rows, still sparse
            return SparseRows(self.matrix[rows])
        if np.ndim(rows) == 0:
            start, stop = self.indptr[rows], self.indptr[rows + 1]
            row = np.zeros(self.shape[1], dtype=self.dtype)
            row[self.indices[start:stop]] = self.data[start:stop]
            return row
        return self.matrix[np.asarray(rows)].toarray()

    def transposed(self):
        """X's CSC arrays ``(data, row indices, column pointers)``, made once and kept."""
        if self._transposed is None:
            csc = self.matrix.tocsc()
            csc.sort_indices()  # (already sorted from CSR; rows in order are what counts)
            self._transposed = (csc.data, csc.indices.astype(self.indptr.dtype, copy=False),
                                csc.indptr.astype(self.indptr.dtype, copy=False))
        return self._transposed


def _not_finite(matrix, name):
    """The ValueError of ``check_finite`` for sparse data (rows from the non-zeros)."""
    for test, what, advice in ((np.isnan, "NaN", "drop or impute those rows first"),
                               (np.isinf, "infinity", "drop those rows first")):
        where = np.flatnonzero(test(matrix.data))
        if where.size:
            rows = np.unique(np.searchsorted(matrix.indptr, where, side="right") - 1)
            return ValueError(
                f"Input {name} contains {what} (first at row {rows[0]}, {rows.size} row(s) "
                f"in all); {advice}.")
    return ValueError(f"Input {name} contains values too large for {matrix.dtype}: their "
                      "sum overflows; rescale the data.")


def check_sparse(X, name="X", dtype=None):
    """``SparseRows`` of a finite, 2-D float32/float64 CSR copy of ``X`` (a copy only when needed)."""
    if X.ndim != 2:
        raise ValueError(f"Expected a 2D array for {name}, got {X.ndim}D array instead "
                         f"(shape={X.shape}).")
    n_samples, n_features = X.shape
    if n_samples < 1:
        raise ValueError(f"Found array with {n_samples} sample(s) (shape={X.shape}) while a "
                         "minimum of 1 is required.")
    if n_features == 0:
        raise ValueError(f"Found array with 0 feature(s) (shape={X.shape}) while a minimum "
                         "of 1 is required.")
    if X.dtype.kind not in "biufc":
        raise TypeError(f"{name} must be numeric, got dtype {X.dtype}.")
    target = check_dtype(X) if dtype is None else dtype
    copied = X.format != "csr"
    X = X.tocsr()  # CSC, COO, LIL, DOK, BSR, DIA: converted once
    if X.dtype != target:
        X, copied = X.astype(target), True
    if not X.has_canonical_format:  # duplicates would break |x - c|^2 from the non-zeros
        X = X if copied else X.copy()
        X.sum_duplicates()
        copied = True
    index_dtype = np.promote_types(X.indices.dtype, X.indptr.dtype)
    index_dtype = np.int32 if index_dtype.itemsize <= 4 else np.int64
    if X.indices.dtype != index_dtype or X.indptr.dtype != index_dtype:
        X = type(X)((X.data, X.indices.astype(index_dtype), X.indptr.astype(index_dtype)),
                    shape=X.shape)
    with np.errstate(over="ignore"):
        total = np.sum(X.data, dtype=np.float64)
    if not np.isfinite(total):
        raise _not_finite(X, name)
    return SparseRows(X)


def check_data(X, name="X", dtype=None):
    """``check_array`` for dense ``X``, ``check_sparse`` for scipy.sparse input."""
    if issparse(X):
        return check_sparse(X, name, dtype)
    return check_array(X, name=name, dtype=dtype)


def _nnz_steps(X):
    """``(start, stop)`` row ranges holding about ``_STEP_ELEMENTS`` non-zeros each."""
    bounds = np.searchsorted(X.indptr, np.arange(0, X.nnz, _STEP_ELEMENTS), side="right") - 1
    bounds = np.unique(np.concatenate([bounds, [X.shape[0]]]))
    return list(zip(bounds[:-1], bounds[1:]))


def mean_and_variance(X, sample_weight=None):
    """Per-feature (weighted) mean and variance of sparse ``X`` in float64, in steps of
    rows (temporaries of ~``_STEP_ELEMENTS`` values)."""
    n_samples, n_features = X.shape
    total = total_weight(sample_weight, n_samples)
    weight = None if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    steps = _nnz_steps(X)

    def step_values(start, stop):
        lo, hi = X.indptr[start], X.indptr[stop]
        row_weight = (None if weight is None else
                      np.repeat(weight[start:stop], np.diff(X.indptr[start:stop + 1])))
        return X.indices[lo:hi], X.data[lo:hi].astype(np.float64), row_weight

    sums, column_weight = np.zeros(n_features), np.zeros(n_features)
    for start, stop in steps:
        columns, values, row_weight = step_values(start, stop)
        if row_weight is not None:
            values *= row_weight
        sums += np.bincount(columns, weights=values, minlength=n_features)
        column_weight += np.bincount(columns, weights=row_weight, minlength=n_features)
    mean = sums / total
    squares = np.zeros(n_features)
    for start, stop in steps:
        columns, values, row_weight = step_values(start, stop)
        values -= mean[columns]
        values *= values
        if row_weight is not None:
            values *= row_weight
        squares += np.bincount(columns, weights=values, minlength=n_features)
    # The implicit zeros of each column are (total - column_weight) of weight at -mean.
    return mean, (squares + (total - column_weight) * mean * mean) / total


def min_sq_distances(X, center, closest_sq_dist, n_threads, like_candidates=False):
    """``_lloyd.min_sq_distances`` for dense or sparse X (k-means++; ``like_candidates``
    for dense X only)."""
    if isinstance(X, SparseRows):
        sparse_min_sq_distances(X.data, X.indices, X.indptr, center, closest_sq_dist,
                                n_threads)
    else:
        _dense_min_sq_distances(X, center, closest_sq_dist, n_threads,
                                like_candidates=like_candidates)


def candidate_potentials(X, sample_weight, candidates, closest_sq_dist, block_potentials,
                         n_threads, candidate_sq_dist=None):
    """``_lloyd.candidate_potentials`` for dense or sparse X (k-means++)."""
    if isinstance(X, SparseRows):
        sparse_candidate_potentials(X.data, X.indices, X.indptr, sample_weight, candidates,
                                    closest_sq_dist, block_potentials, n_threads,
                                    candidate_sq_dist=candidate_sq_dist)
    else:
        _dense_candidate_potentials(X, sample_weight, candidates, closest_sq_dist,
                                    block_potentials, n_threads,
                                    candidate_sq_dist=candidate_sq_dist)


def _lloyd_seconds(X, n_clusters):
    """Single-thread time of one sparse Lloyd pass, to choose its threads (AVX2 Zen 3:
    ~0.3 ns per non-zero and centre, 0.2 ns per row and centre for the argmin)."""
    return (X.nnz * 0.3 + X.shape[0] * 0.2) * n_clusters * 1e-9


def _relocate_empty_clusters(X, sample_weight, centers_t, labels, sums_t, counts, n_threads):
    """Give each empty cluster the sample farthest from its centre (as the dense path)."""
    empty = np.flatnonzero(counts == 0)
    if empty.size == 0:
        return
    distances = np.empty(len(X))
    sparse_label_distances(X.data, X.indices, X.indptr, np.ascontiguousarray(centers_t.T),
                           labels, distances, n_threads)
    if distances.max() == 0:
        # Every row sits on its centre (fewer distinct rows than clusters): moving one
        # would only empty another; scikit-learn skips it too (its issue 28055).
        return
    farthest = np.argpartition(distances, -empty.size)[:-empty.size - 1:-1]
    for new_id, far in zip(empty, farthest):
        w = 1.0 if sample_weight is None else float(sample_weight[far])
        old_id = labels[far]
        start, stop = X.indptr[far], X.indptr[far + 1]
        columns = X.indices[start:stop]
        point = X.data[start:stop].astype(np.float64)
        sums_t[columns, old_id] -= w * point
        sums_t[:, new_id] = 0.0
        sums_t[columns, new_id] = w * point
        counts[new_id] = w
        counts[old_id] -= w


def lloyd(X, sample_weight, centers_init, max_iter, tol, n_threads, verbose=False):
    """``_kmeans.lloyd`` for ``SparseRows`` X: the same loop and return value.

    The centres live transposed (n_features x n_clusters) between the passes:
    the assignment reads them so, and the column sums come out so.
    """
    from ._kmeans import lloyd_converged, updated_centers  # (_kmeans imports this module)

    n_samples, n_features = X.shape
    n_clusters = len(centers_init)
    centers_t = np.array(np.asarray(centers_init).T, dtype=X.dtype, order="C")
    labels = np.full(n_samples, -1, dtype=np.int32)
    blocks = n_blocks(n_samples, n_clusters + 1)
    step_threads = pass_threads(n_threads, _lloyd_seconds(X, n_clusters), blocks)
    data_t, rows, colptr = X.transposed()
    sum_threads = pass_threads(n_threads, X.nnz * 2e-9, -(-n_features // 64))
    sums_t = np.empty((n_features, n_clusters))
    block_counts = np.empty((blocks, n_clusters))
    block_inertia = np.empty(blocks)
    converged = False

    for n_iter in range(1, max_iter + 1):
        n_changed = sparse_lloyd_step(X.data, X.indices, X.indptr, sample_weight, centers_t,
                                      labels, block_counts, block_inertia, True,
                                      step_threads, with_inertia=bool(verbose))
        counts = block_counts.sum(axis=0)
        sparse_center_sums(data_t, rows, colptr, sample_weight, labels, sums_t, sum_threads)
        if not counts.all():
            _relocate_empty_clusters(X, sample_weight, centers_t, labels, sums_t, counts,
                                     step_threads)
        # (transposed views: the update keeps their memory order, C for centers_t)
        centers, center_shift = updated_centers(centers_t.T, sums_t.T, counts)
        centers_t = centers.T
        if lloyd_converged(n_iter, n_changed, center_shift, tol, verbose,
                           block_inertia.sum()):
            converged = True
            break

    centers = np.ascontiguousarray(centers_t.T)
    return (*nearest_centers(X, sample_weight, centers, n_threads, labels), centers, n_iter,
            converged)


def nearest_centers(X, sample_weight, centers, n_threads, labels=None):
    """``_kmeans.nearest_centers`` for ``SparseRows`` X: labels and weighted inertia."""
    blocks = n_blocks(len(X), 1)
    n_threads = pass_threads(n_threads, _lloyd_seconds(X, len(centers)), blocks)
    if labels is None:
        labels = np.empty(len(X), dtype=np.int32)
    block_inertia = np.empty(blocks)
    sparse_lloyd_step(X.data, X.indices, X.indptr, sample_weight,
                      np.ascontiguousarray(centers.T), labels, np.empty((blocks, 0)),
                      block_inertia, False, n_threads)
    return labels, float(block_inertia.sum())


def distances(X, centers, dtype):
    """Euclidean distances of the rows of sparse X to ``centers``, in ``dtype``.

    ``|x|^2 - 2 x.c + |c|^2`` in float64 per row step (a sparse-dense product),
    recomputed from the differences with the densified row where it cancels (a row
    much closer to a centre than both are to the origin). Relative error <= ~1e-11.
    """
    centers = np.asarray(centers, dtype=np.float64)
    centers_sq = np.einsum("ij,ij->i", centers, centers)
    n_samples, n_features = X.shape
    out = np.empty((n_samples, len(centers)), dtype=dtype)
    step = max(1, _STEP_ELEMENTS // max(len(centers), 1))
    rows_per_recompute = max(1, _STEP_ELEMENTS // n_features)
    for start in range(0, n_samples, step):
        stop = min(start + step, n_samples)
        lo, hi = X.indptr[start], X.indptr[stop]
        values = X.data[lo:hi].astype(np.float64)
        row_ids = np.repeat(np.arange(stop - start), np.diff(X.indptr[start:stop + 1]))
        rows_sq = np.bincount(row_ids, weights=values * values, minlength=stop - start)
        sq = np.asarray(X.matrix[start:stop] @ centers.T, dtype=np.float64)
        sq *= -2.0
        sq += rows_sq[:, None]
        sq += centers_sq
        i, k = np.nonzero(sq <= _CANCELLATION * (rows_sq[:, None] + centers_sq))
        for part in range(0, len(i), rows_per_recompute):
            rows, cols = i[part:part + rows_per_recompute], k[part:part + rows_per_recompute]
            diff = X[start + rows] - centers[cols]
            sq[rows, cols] = np.einsum("ij,ij->i", diff, diff)
        np.maximum(sq, 0.0, out=sq)
        np.sqrt(sq, out=out[start:stop], casting="unsafe")
    return out
