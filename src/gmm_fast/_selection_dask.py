"""``select_model`` on a ``dask.distributed`` cluster: the grid's fits as tasks.

The grid is embarrassingly parallel: each fit runs in a worker, in memory, exactly as
``select_model`` runs it here, and returns only its scores and its small fitted model.
X goes to the workers once: an in-memory X is scattered (a copy per worker), and a
dask array (or DataFrame) is joined from its blocks by a task on a worker; the client
never receives it. Hence X must fit in one worker's memory; a larger X is fitted cell
by cell with ``GaussianMixture.fit`` on the dask array, each fit spread over the blocks.

The tasks of a grid:

- one hc task (the hierarchy of the whole grid, on at most ``_hc.HC_MAX_SAMPLES``
  rows, cut at each k) and one k-means task per ``n_components``, their labels left on
  the workers;
- one task per start of each cell, (n_components, covariance_type, start), once its
  labels exist: EM to ``tol`` and the criteria, on the worker. A task per start rather
  than per cell lets the k-means starts' fits run while the hierarchy is built (it
  takes ~1.5 s, 8 features, AVX2); the client keeps the best start of each cell;
- one task per start of each contender, run on to ``final_tol`` once every cell is
  done; the client keeps the best converged start.

The k-means starts are seeded before the grid runs (``_selection.kmeans_seeds``) and
the kernels give the same bits on any number of threads, so the table and the chosen
model equal those of ``select_model`` without a cluster. A kernel in a task uses
``n_threads`` if given, else one OpenMP thread (a worker runs one task per thread).
``callback`` is called as cells finish, in the order they finish.
"""
from ._dask import (check_dask_array, check_dask_weights, dataframe_as_array,
                    is_dask_array, is_dask_dataframe)
from ._selection import (_failed_row, best_start, contenders, fit_start, hc_starts,
                         kmeans_starts, prepared_data, refine_start, refined_row)
from ._threads import sequential_blas


def _distributed():
    try:
        import distributed
    except ImportError as exc:
        raise ImportError(f"select_model on a cluster needs dask.distributed ({exc}); "
                          'install the extra: pip install "gmm_fast[dask]"') from None
    return distributed


def _resolved_client(client, X):
    """The client given, else (for dask X) the active one; without one, a ValueError."""
    distributed = _distributed()
    if client is not None:
        if not isinstance(client, distributed.Client):
            raise TypeError(f"client should be a dask.distributed.Client, got "
                            f"{type(client).__name__}.")
        return client
    try:
        return distributed.get_client()
    except ValueError:
        kind = "dask DataFrame" if is_dask_dataframe(X) else "dask array"
        raise ValueError(f"X is a {kind}: select_model runs its grid on a dask.distributed "
                         "cluster; start a Client (or pass client=), or select on "
                         "X.compute() in memory.") from None


def _hc_task(data, ks, random_state):
    with sequential_blas():
        return hc_starts(data, ks, random_state)


def _kmeans_task(data, k, seeds, n_threads):
    with sequential_blas():
        return kmeans_starts(data, k, seeds, n_threads)


def _start_task(data, starts, which, k, covariance_type, settings):
    """``fit_start`` of one start of a cell: ``starts[which]`` of an hc task's dict (None
    when the hierarchy has no cut at k) or of a k-means task's list."""
    if isinstance(starts, dict):
        if which not in starts:
            return None
        name, labels = "hc", starts[which]
    else:
        name, labels = starts[which]
    with sequential_blas():
        return fit_start(data, k, covariance_type, name, labels, settings)


def _weight_total(data):
    return data.n_weight


def _refine_task(data, fit, settings):
    with sequential_blas():
        return refine_start(data, fit, settings)


def _data_on_cluster(client, X, sample_weight, missing_values, ks):
    """A future of the ``GridData`` on the workers, and n_samples."""
    if not (is_dask_array(X) or is_dask_dataframe(X)):
        data = prepared_data(X, sample_weight, missing_values, ks)  # (checked here)
        # A copy per worker to begin with: every task of the grid reads it (dask's
        # memory manager may drop a replica it finds idle; a worker then fetches it).
        return client.scatter(data, broadcast=True), data.X.shape[0]
    if is_dask_dataframe(X):
        X = dataframe_as_array(X)
    checked, starts = check_dask_array(X, min_samples=2,
                                       finite=missing_values != "marginalize")
    if sample_weight is not None:
        sample_weight = client.compute(check_dask_weights(sample_weight, checked, starts))
    # client.compute: the blocks are joined on a worker, and the result stays there;
    # prepared_data then checks it there.
    data = client.submit(prepared_data, client.compute(checked), sample_weight,
                         missing_values, ks, pure=False)
    return data, checked.shape[0]


def select_on_cluster(client, X, sample_weight, missing_values, ks, covariance_types, starts,
                      seeds, random_state, settings, criterion, final_margin, callback):
    """The grid's rows and models (``select_model``'s), its starts' fits run as tasks."""
    distributed = _distributed()
    client = _resolved_client(client, X)
    data, n_samples = _data_on_cluster(client, X, sample_weight, missing_values, ks)
    n_weight = client.submit(_weight_total, data, pure=False)
    n_threads = settings["common"]["n_threads"]
    if n_threads is None:  # one OpenMP thread per task: no oversubscription
        settings = dict(settings, common=dict(settings["common"], n_threads=1))
        n_threads = 1
    hc_labels = (client.submit(_hc_task, data, ks, random_state, pure=False)
                 if "hc" in starts else None)
    # A task per start of each cell (hc's, then the k-means ones, as here), so that the
    # k-means starts' fits run while the hierarchy is built.
    rows, models, cell_fits, pending, futures, owner = {}, {}, {}, {}, [], {}
    for k in ks:
        if k > n_samples:
            reason = f"n_samples={n_samples} should be >= n_components={k}."
            for covariance_type in covariance_types:
                rows[k, covariance_type] = dict(_failed_row(k, covariance_type, reason),
                                                seconds=0.0)
            continue
        sources = [(hc_labels, k)] if hc_labels is not None else []
        if seeds is not None:
            kmeans = client.submit(_kmeans_task, data, k, seeds[k], n_threads, pure=False)
            sources += [(kmeans, i) for i in range(len(seeds[k]))]
        for covariance_type in covariance_types:
            cell = (k, covariance_type)
            pending[cell] = [None] * len(sources)
            for position, (source, which) in enumerate(sources):
                futures.append(client.submit(_start_task, data, source, which, k,
                                             covariance_type, settings, pure=False))
                owner[futures[-1].key] = cell, position
    total = len(ks) * len(covariance_types)
    done = 0
    for row in rows.values():  # (cells failed before any fit: k > n_samples)
        done += 1
        if callback is not None:
            callback(done, total, row)
    n_weight, = client.gather([n_weight])
    left = {cell: len(results) for cell, results in pending.items()}
    # Small results only: a start's model and scores, gathered in batches as they finish.
    for batch in distributed.as_completed(futures).batches():
        for future, result in zip(batch, client.gather(batch)):
            cell, position = owner[future.key]
            pending[cell][position] = result
            left[cell] -= 1
            if left[cell]:
                continue
            fitted = [result for result in pending.pop(cell) if result is not None]
            cell_fits[cell] = fitted
            rows[cell], models[cell] = best_start(*cell, fitted, "", settings["tol"], n_weight)
            done += 1
            if callback is not None:
                callback(done, total, rows[cell])
    order = [(k, covariance_type) for k in ks for covariance_type in covariance_types]
    rows = [rows[cell] for cell in order]
    models = [models.get(cell) for cell in order]
    if settings["final_tol"] is not None:
        indices = contenders(rows, criterion, final_margin)
        futures = {i: [client.submit(_refine_task, data, fit, settings, pure=False)
                       for fit in cell_fits[order[i]]] for i in indices}
        for i in indices:
            refined = client.gather(futures[i])
            rows[i], models[i] = refined_row(rows[i], refined, settings["tol"], n_weight)
    return rows, models
