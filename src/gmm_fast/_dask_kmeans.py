"""KMeans on dask arrays: Lloyd's steps (``_lloyd.lloyd_step``) summed over the blocks.

The driver of ``gmm_fast._dask`` (its module docstring says how blocks are reduced,
when X is persisted, the threads rule and the sampled start) for ``KMeans``: each
iteration's per-block ``[counts, sums]`` are added as a tree in block order and the
centres updated here; an empty cluster takes the row farthest from its centre, found
by a per-block top-e selection. Imports dask only inside its functions.
"""
import numpy as np

from ._dask import (_block_reduce, _check_weights_total, _compute, _gmm_rows, _import_dask,
                    _META, _packed, _prepare_fit, _task_threads, check_dask_array,
                    check_dask_weights, sample_rows, sample_size, unnamed)

def _column_sums(X, weight, *, mean=None):
    """Float64 column sums of a block (of squares about ``mean``, when given), in row
    steps with ~1 MB temporaries (as ``_kmeans.column_mean_and_variance``)."""
    from ._kmeans import _row_steps
    total = np.zeros(X.shape[1])
    for start, stop in _row_steps(X):
        if mean is None:
            total += X[start:stop].sum(axis=0, dtype=np.float64)
        else:
            centred = X[start:stop] - mean
            total += (centred * centred).sum(axis=0)
    return total


def _lloyd_block(X, weight, *, shift, centers, n_threads):
    """One Lloyd step's ``[counts, sums]`` over a block (``_lloyd.lloyd_step``)."""
    from ._kmeans import _lloyd_seconds
    from ._lloyd import lloyd_step
    from ._threads import n_blocks, pass_threads

    n_clusters, n_features = centers.shape
    if weight is not None:
        weight = np.ascontiguousarray(weight, dtype=X.dtype)
    blocks = n_blocks(len(X), n_clusters * (n_features + 1))
    threads = 1 if n_threads is None else pass_threads(
        n_threads, _lloyd_seconds(len(X), n_features, n_clusters), blocks)
    block_sums = np.empty((blocks, n_clusters, n_features))
    block_counts = np.empty((blocks, n_clusters))
    lloyd_step(X, weight, shift, centers, np.full(len(X), -1, dtype=np.int32), block_sums,
               block_counts, np.empty(blocks), True, threads, with_inertia=False)
    return np.concatenate([block_counts.sum(axis=0), block_sums.sum(axis=0).ravel()])


def _farthest_block(X, weight, *, shift, centers, n_empty):
    """Lloyd's labels of a block, then its ``n_empty`` rows farthest from their centre
    as ``[label, weight, x...]`` rows (label -1: padding), for the empty clusters."""
    from ._lloyd import lloyd_step
    from ._threads import n_blocks

    n_clusters, n_features = centers.shape
    if weight is not None:
        weight = np.ascontiguousarray(weight, dtype=X.dtype)
    blocks = n_blocks(len(X), 1)
    labels = np.full(len(X), -1, dtype=np.int32)
    lloyd_step(X, weight, shift, centers, labels, np.empty((blocks, 0, 0)),
               np.empty((blocks, 0)), np.empty(blocks), False, 1, with_inertia=False)
    diff = (X - shift) - centers[labels]  # as _kmeans._relocate_empty_clusters
    distances = np.einsum("ij,ij->i", diff, diff)
    rows = np.sort(np.argsort(-distances, kind="stable")[:n_empty])
    out = np.full((n_empty, 2 + n_features), -1.0)
    out[:len(rows), 0] = labels[rows]
    out[:len(rows), 1] = 1.0 if weight is None else weight[rows]
    out[:len(rows), 2:] = X[rows]
    return out.ravel()


def _nearest_block(X, weight, *, centers):
    """A block's ``[inertia, cluster weights...]`` on ``centers`` (``_kmeans.nearest_centers``)."""
    from ._kmeans import nearest_centers
    if weight is not None:
        weight = np.ascontiguousarray(weight, dtype=X.dtype)
    labels, inertia = nearest_centers(X, weight, centers, 1)
    sizes = np.bincount(labels, weights=weight, minlength=len(centers))
    return np.concatenate([[inertia], sizes])


def _labels_block(X, centers):
    from ._kmeans import nearest_centers
    return nearest_centers(X, None, centers, 1)[0]


def _relocate(da, X, sample_weight, shift, centers, sums, counts):
    """Empty clusters get the rows farthest from their centres across all blocks (each
    block's farthest, then ``_kmeans._relocate_empty_clusters`` over those)."""
    from ._kmeans import _relocate_empty_clusters
    n_empty = int(np.count_nonzero(counts == 0))
    n_features = X.shape[1]
    width = n_empty * (2 + n_features)
    if sample_weight is None:
        parts = da.blockwise(_packed, "ij", X, "ij", function=_farthest_block, weight=None,
                             adjust_chunks={"i": 1, "j": width}, meta=_META,
                             shift=shift, centers=centers, n_empty=n_empty)
    else:
        parts = da.blockwise(_packed, "ij", X, "ij", sample_weight, "i",
                             function=_farthest_block, adjust_chunks={"i": 1, "j": width},
                             meta=_META, shift=shift, centers=centers, n_empty=n_empty)
    table, = _compute(parts)
    table = table.reshape(-1, 2 + n_features)
    table = table[table[:, 0] >= 0]
    rows = np.ascontiguousarray(table[:, 2:], dtype=X.dtype)
    weight = None if sample_weight is None else table[:, 1].astype(X.dtype)
    _relocate_empty_clusters(rows, weight, shift, centers, table[:, 0].astype(np.intp),
                             sums, counts)


def fit_kmeans(estimator, X, sample_weight):
    """``KMeans.fit`` on a dask array: the in-memory ``lloyd`` loop with the steps'
    statistics summed over blocks; stops when the squared centre shift is at most tol
    (no label changed: the centres did not move, so that is the in-memory stop too)."""
    from ._kmeans import _WEIGHT_TOTALS
    from ._ordering import check_finish_options, check_sort_components, component_order
    from ._threads import sequential_blas
    from ._validation import fit_random_state

    _, da = _import_dask()
    check_finish_options(estimator)
    X, sample_weight, _ = _prepare_fit(estimator, X, sample_weight, min_samples=1)
    n_clusters, init, n_init = estimator._check_params(X)
    weight_scale = 1.0
    if sample_weight is not None:
        _, _, mean = _check_weights_total(sample_weight, 1, "n_clusters")
        total = mean * X.shape[0]
        if not _WEIGHT_TOTALS[0] < total < _WEIGHT_TOTALS[1]:
            weight_scale = mean
            sample_weight = sample_weight / weight_scale
        sample_weight = sample_weight.astype(X.dtype)
    n_threads = _task_threads(estimator)
    n_samples, n_features = X.shape
    # The column means and variances (unweighted, as in memory): the shift and tol.
    mean = _block_reduce(da, _column_sums, X, None, n_features) / n_samples
    variance = _block_reduce(da, _column_sums, X, None, n_features, mean=mean) / n_samples
    tol = float(np.mean(variance)) * estimator.tol
    shift = mean.astype(X.dtype)
    best = None
    with sequential_blas(), fit_random_state(estimator.random_state,
                                             reuse=not callable(init)) as random_state:
        for _ in range(n_init):
            if isinstance(init, np.ndarray):
                centers = init
            else:
                rows, rows_weight = sample_rows(X, sample_weight, sample_size(n_clusters),
                                                random_state)
                if len(rows) < n_clusters:
                    raise ValueError(f"X has {len(rows)} row(s) of positive weight, fewer "
                                     f"than n_clusters={n_clusters}.")
                centers = estimator._init_centers(
                    rows, init, n_clusters, rows_weight, random_state,
                    1 if n_threads is None else n_threads)
            run = _lloyd(da, estimator, X, sample_weight, centers - shift, shift, tol,
                         n_threads)
            if best is None or run[1] < best[1]:
                best = run
    centers, inertia, n_iter, converged, sizes = best
    how = check_sort_components(estimator.sort_components)
    if how is not None:  # (labels_ follow: they are computed from the sorted centres)
        centers = np.ascontiguousarray(centers[component_order(sizes, centers, how)])
    estimator.cluster_centers_ = centers
    estimator.labels_ = X.map_blocks(_labels_block, centers, drop_axis=1,
                                     meta=np.empty(0, np.int32))
    with np.errstate(over="ignore"):
        estimator.inertia_ = inertia * weight_scale
    estimator.n_iter_ = n_iter
    estimator.converged_ = converged
    estimator._n_features_out = n_clusters
    estimator.__dict__.pop("offset_", None)
    return estimator


def _lloyd(da, estimator, X, sample_weight, centers_init, shift, tol, n_threads):
    """Lloyd's iterations over dask X: ``(centers, inertia, n_iter, converged)``."""
    from ._kmeans import lloyd_converged, updated_centers
    n_clusters, n_features = centers_init.shape
    centers = np.array(centers_init, dtype=X.dtype, order="C")
    converged = False
    n_iter = 0
    for n_iter in range(1, estimator.max_iter + 1):
        total = _block_reduce(da, _lloyd_block, X, sample_weight,
                              n_clusters * (n_features + 1), shift=shift, centers=centers,
                              n_threads=n_threads)
        counts = total[:n_clusters].copy()
        sums = total[n_clusters:].reshape(n_clusters, n_features).copy()
        if not counts.all():
            _relocate(da, X, sample_weight, shift, centers, sums, counts)
        centers, center_shift = updated_centers(centers, sums, counts)
        if lloyd_converged(n_iter, None, center_shift, tol, estimator.verbose):
            converged = True
            break
    centers = (centers + shift).astype(X.dtype)
    final = _block_reduce(da, _nearest_block, X, sample_weight, 1 + n_clusters, centers=centers)
    return centers, float(final[0]), n_iter, converged, final[1:]


def kmeans_per_sample(estimator, X, what):
    """``predict`` / ``transform`` of dask X, lazily, block by block."""
    estimator._check_fitted("cluster_centers_")
    centers = estimator.cluster_centers_
    X, _ = check_dask_array(X, dtype=centers.dtype, n_features=estimator.n_features_in_,
                            feature_names=getattr(estimator, "feature_names_in_", None))
    if what == "predict":
        return X.map_blocks(_labels_block, centers, drop_axis=1, meta=np.empty(0, np.int32))
    return X.map_blocks(_gmm_rows, unnamed(estimator), "transform",
                        chunks=(X.chunks[0], (len(centers),)),
                        meta=np.empty((0, 0), centers.dtype))


def kmeans_score(estimator, X, sample_weight=None):
    """``KMeans.score`` of dask X: minus the weighted inertia, by a tree sum."""
    _, da = _import_dask()
    estimator._check_fitted("cluster_centers_")
    centers = estimator.cluster_centers_
    X, starts = check_dask_array(X, dtype=centers.dtype, n_features=estimator.n_features_in_,
                                 feature_names=getattr(estimator, "feature_names_in_", None))
    if sample_weight is not None:
        sample_weight = check_dask_weights(sample_weight, X, starts).astype(X.dtype)
    return -float(_block_reduce(da, _nearest_block, X, sample_weight, 1 + len(centers),
                                centers=centers)[0])
