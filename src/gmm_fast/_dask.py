"""Fitting and predicting on dask arrays: another driver over the same per-chunk primitives.

An EM (Lloyd) iteration maps ``_em.estep_statistics`` (``_lloyd.lloyd_step``) over the
row blocks of X, each block giving one packed float64 vector of statistics; the
vectors are added as a tree in block order (``sum(split_every=...)``: the result does
not depend on which worker ran what), and the M-step runs here, on the client. The
parameters travel to the tasks as small arguments. With a ``distributed`` client, X is
checked and persisted on the workers once per fit; with dask's local schedulers it is
not persisted, so a dask array read lazily from files (``da.from_zarr``, a
``numpy.memmap`` through ``da.from_array``) is read block by block at each iteration
and never held whole (out-of-core).

Threads: a kernel inside a task uses ``n_threads`` when the estimator sets it, else
one OpenMP thread (a worker usually runs a task per core already).

Starts: user-given starts (``means_init``, ``weights_init``, ``precisions_init`` or
``covariances_init``; an ``init`` array for KMeans) are used as given, so the fit
equals the in-memory fit from them. Otherwise the in-memory initialisation runs on
a sample of at most ``SAMPLE_ROWS`` rows drawn without gathering X: each row gets
the key ``log(u) / w`` (u uniform, from a generator seeded by ``random_state`` and
the block's index; Efraimidis & Spirakis' weighted sampling without replacement)
and the rows of largest keys are kept, by a tree of per-block top-m selections.
When X has at most ``SAMPLE_ROWS`` rows of positive weight they are all taken, with
their weights. A dask fit's start therefore differs from the in-memory fit's.

This module imports dask only inside its functions: ``import gmm_fast`` does not.
``_dask_kmeans`` is the same driver for KMeans.
"""
import math
import warnings

import numpy as np

from ._validation import check_dtype

# Rows of the sample the in-memory initialisation runs on (k-means++, kmeans,
# random_from_data...), at least this many and 50 per component or cluster.
SAMPLE_ROWS = 10_000
# Partial results added per task of the tree reductions.
SPLIT_EVERY = 8

_INSTALL_HINT = 'pip install "gmm_fast[dask]"'


def is_dask_array(X):
    """Whether ``X`` looks like a ``dask.array.Array`` (decided without importing dask)."""
    return type(X).__module__.startswith("dask") and hasattr(X, "chunks") and hasattr(
        X, "__dask_graph__")


def is_dask_dataframe(X):
    """Whether ``X`` looks like a ``dask.dataframe.DataFrame`` (without importing dask)."""
    return type(X).__module__.startswith("dask") and hasattr(X, "columns") and hasattr(
        X, "__dask_graph__")


def is_dask_collection(X):
    """Whether ``X`` is a dask array or a dask DataFrame: the inputs this module takes."""
    return is_dask_array(X) or is_dask_dataframe(X)


def dataframe_names(X):
    """The column names of a dask DataFrame whose columns are all strings, else None."""
    if not is_dask_dataframe(X):
        return None
    names = np.asarray(list(X.columns), dtype=object)
    if len(names) and all(isinstance(name, str) for name in names):
        return names
    return None


def dataframe_as_array(X, name="X", feature_names=None):
    """A dask DataFrame of numeric columns as a dask array with known row chunks.

    The partitions' lengths are computed (``to_dask_array(lengths=True)``: a pass
    over the data, one small integer per partition comes back); ``feature_names``
    (a fitted model's) must match the columns when both are names."""
    dtypes = X.dtypes
    bad = [f"{column!r} ({dtype})" for column, dtype in dtypes.items()
           if not (isinstance(dtype, np.dtype) and dtype.kind in "biuf")]
    if bad:
        raise ValueError(f"{name} is a dask DataFrame with non-numeric column(s) "
                         f"{', '.join(bad[:5])}{', ...' if len(bad) > 5 else ''}: select the "
                         "numeric columns or encode the others first.")
    names = dataframe_names(X)
    if feature_names is not None and names is not None and not np.array_equal(
            names, feature_names):
        raise ValueError("The feature names should match those that were passed during fit.\n"
                         f"Fitted with: {list(feature_names)}\nGot: {list(names)}")
    return X.to_dask_array(lengths=True)


def _import_dask():
    try:
        import dask
        import dask.array as da
    except ImportError as exc:
        raise ImportError(f"X is a dask array, but dask.array cannot be imported ({exc}); "
                          f"install the extra: {_INSTALL_HINT}") from None
    return dask, da


def _distributed_client():
    """The active ``distributed`` client, if any (without importing distributed)."""
    distributed = __import__("sys").modules.get("distributed")
    if distributed is None:
        return None
    try:
        return distributed.get_client()
    except ValueError:
        return None


# -- input checks -------------------------------------------------------------------

def _checked_block(block, dtype, starts, shape, name, allow_nan=False, block_id=None):
    """A block of X as a C-contiguous ``dtype`` array; NaN (unless ``allow_nan``) or inf
    is a ValueError naming the block and the row (in X) where it is, and so is a block
    whose shape is not the one its chunks declare, and with ``allow_nan`` a row with
    every cell NaN."""
    out = np.ascontiguousarray(block, dtype=dtype)
    index = block_id[0]
    stop = starts[index + 1] if index + 1 < len(starts) else shape[0]
    expected = (int(stop - starts[index]), shape[1])
    if out.shape != expected:
        raise ValueError(f"Block {index} of {name} has shape {out.shape}, but its chunks "
                         f"declare {expected}: the blocks are inconsistent with "
                         f"{name}.chunks.")
    with np.errstate(over="ignore"):
        total = np.sum(out, dtype=np.float64)
    if not np.isfinite(total):
        first = int(starts[index])
        nan = np.isnan(out) if allow_nan else False
        if allow_nan:
            empty = nan.all(axis=1)
            if empty.any():
                row = int(np.flatnonzero(empty)[0])
                raise ValueError(
                    f"{name} has a row with every feature missing in block {index}, at row "
                    f"{first + row} of {name} (row {row} of the block): such a row carries "
                    "no information; drop it.")
            with np.errstate(over="ignore"):
                total = np.sum(np.where(nan, 0, out), dtype=np.float64)
            if np.isfinite(total):
                return out
        bad = ~(np.isfinite(out) | nan).all(axis=1)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            what = "infinity" if allow_nan else "NaN or infinity"
            advice = ("drop or clip those rows first" if allow_nan else
                      "drop or impute those rows first, or fit with "
                      "missing_values='marginalize' (EM on the observed cells)")
            raise ValueError(
                f"Input {name} contains {what} in block {index}, first at row "
                f"{first + row} of {name} (row {row} of the block); {advice}.")
        raise ValueError(f"Input {name} contains values too large for {out.dtype} in block "
                         f"{index}: their sum overflows; rescale the data.")
    return out


def _checked_weights(block, starts, block_id=None):
    """A block of sample_weight as float64: finite and >= 0 (the error names the row)."""
    out = np.asarray(block, dtype=np.float64)
    bad = ~(np.isfinite(out) & (out >= 0))
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"sample_weight must be finite and >= 0, got {out[row]} at index "
            f"{int(starts[block_id[0]]) + row}.")
    return out


def _converted_block(block, dtype):
    """A block of X as a C-contiguous ``dtype`` array (already checked)."""
    return np.ascontiguousarray(block, dtype=dtype)


def check_dask_array(X, name="X", dtype=None, min_samples=1, n_features=None, finite=True,
                     feature_names=None, allow_nan=False):
    """X as a lazily checked dask array: 2-D, known chunk sizes, one column chunk,
    float32/float64 (``check_dtype``, or ``dtype``), finite (checked per block, when
    the blocks are computed; ``finite=False`` only converts; ``allow_nan``: NaN cells
    pass, but not inf or a row of NaN). A dask DataFrame is taken as its numeric
    columns (``dataframe_as_array``). Returns ``(X, row_starts)``."""
    _, da = _import_dask()
    if is_dask_dataframe(X):
        X = dataframe_as_array(X, name, feature_names)
    if X.ndim != 2:
        raise ValueError(f"Expected a 2D dask array for {name}, got {X.ndim}D array instead "
                         f"(shape={X.shape}).")
    if any(math.isnan(size) for sizes in X.chunks for size in sizes):
        raise ValueError(f"{name} has unknown chunk sizes (NaN), e.g. from a dask dataframe's "
                         f"to_dask_array() or boolean indexing: call {name}.compute_chunk_sizes()"
                         " (or to_dask_array(lengths=True)) first.")
    if X.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be a numeric dask array, got dtype {X.dtype}.")
    n_samples, width = X.shape
    if n_samples < min_samples:
        raise ValueError(f"Found array with {n_samples} sample(s) (shape={X.shape}) while a "
                         f"minimum of {min_samples} is required.")
    if width == 0:
        raise ValueError(f"Found array with 0 feature(s) (shape={X.shape}) while a minimum of "
                         "1 is required.")
    if n_features is not None and width != n_features:
        raise ValueError(f"X has {width} features, but the model is expecting {n_features} "
                         "features as input.")
    target = np.dtype(dtype if dtype is not None else check_dtype(X))
    if len(X.chunks[1]) > 1:
        X = X.rechunk({1: -1})  # the kernels take whole rows
    starts = np.concatenate([[0], np.cumsum(X.chunks[0])[:-1]]).astype(np.int64)
    if finite:
        X = X.map_blocks(_checked_block, target, starts, X.shape, name, allow_nan,
                         meta=np.empty((0, 0), target))
    else:
        X = X.map_blocks(_converted_block, target, meta=np.empty((0, 0), target))
    return X, starts


def check_dask_weights(sample_weight, X, starts):
    """sample_weight as a float64 dask array chunked like X's rows (a numpy array is
    split so); checked for NaN, inf and negative values per block."""
    _, da = _import_dask()
    if not is_dask_array(sample_weight):
        sample_weight = np.asarray(sample_weight)
        if sample_weight.ndim == 0:
            sample_weight = np.full(X.shape[0], float(sample_weight))
        if sample_weight.shape != (X.shape[0],):
            raise ValueError(f"sample_weight.shape={sample_weight.shape} should be "
                             f"(n_samples,)=({X.shape[0]},).")
        sample_weight = da.from_array(sample_weight, chunks=(X.chunks[0],))
    if sample_weight.shape != (X.shape[0],):
        raise ValueError(f"sample_weight.shape={sample_weight.shape} should be "
                         f"(n_samples,)=({X.shape[0]},).")
    if sample_weight.dtype.kind not in "biuf":
        raise TypeError(f"sample_weight must be numeric, got dtype {sample_weight.dtype}.")
    if sample_weight.chunks[0] != X.chunks[0]:
        raise ValueError(
            "sample_weight should be chunked like X's rows: its chunks are "
            f"{_brief(sample_weight.chunks[0])}, X's {_brief(X.chunks[0])}; use "
            "sample_weight.rechunk((X.chunks[0],)).")
    return sample_weight.map_blocks(_checked_weights, starts, meta=np.empty(0))


def _brief(chunks):
    return str(chunks) if len(chunks) <= 6 else f"({', '.join(map(str, chunks[:6]))}, ...)"


def _compute(*values):
    dask, _ = _import_dask()
    return dask.compute(*values)


# -- weighted sample for the initialisation -----------------------------------------

def _block_candidates(X, w, seed, n_rows, block_id=None):
    """The rows of largest key ``log(u)/w`` in a block, as ``[key, w, x...]`` (float64)."""
    rng = np.random.default_rng([seed, block_id[0]])
    u = rng.random(len(X))
    if w is None:
        keys, w = np.log(u), np.ones(len(X))
    else:
        with np.errstate(divide="ignore"):
            keys = np.where(w > 0, np.log(u) / np.where(w > 0, w, 1.0), -np.inf)
    order = np.argsort(-keys, kind="stable")[:n_rows]
    order.sort()  # (row order within the block)
    return np.column_stack([keys[order], w[order], X[order].astype(np.float64)])


def _merge_candidates(parts, n_rows):
    """The ``n_rows`` largest keys of concatenated candidate tables, in their order."""
    table = np.concatenate(parts)
    if len(table) > n_rows:
        keep = np.sort(np.argsort(-table[:, 0], kind="stable")[:n_rows])
        table = table[keep]
    return table


def sample_rows(X, sample_weight, n_rows, random_state):
    """A weighted sample of at most ``n_rows`` rows of dask X: ``(rows, weights)``,
    weights None when the sample is drawn by weight (every positive-weight row taken
    when they are at most ``n_rows``: then with their weights)."""
    dask, _ = _import_dask()
    seed = int(random_state.randint(np.iinfo(np.int32).max))
    blocks = X.to_delayed().ravel()
    weights = ([None] * len(blocks) if sample_weight is None
               else sample_weight.to_delayed().ravel())
    # One row more than asked: fewer than that found means every positive-weight row.
    candidates = dask.delayed(_block_candidates)
    parts = [candidates(x, w, seed, n_rows + 1, block_id=(i, 0))
             for i, (x, w) in enumerate(zip(blocks, weights))]
    merge = dask.delayed(_merge_candidates)
    while len(parts) > 1:  # a tree of merges, in block order
        parts = [merge(parts[i:i + SPLIT_EVERY], n_rows + 1)
                 for i in range(0, len(parts), SPLIT_EVERY)]
    table, = dask.compute(parts[0])
    table = table[np.isfinite(table[:, 0])]  # (rows of weight 0)
    everything = len(table) <= n_rows
    if not everything:
        table = _merge_candidates([table], n_rows)
    rows = np.ascontiguousarray(table[:, 2:], dtype=X.dtype)
    if sample_weight is None or not everything:
        return rows, None
    return rows, table[:, 1]  # every positive-weight row, with its weight


def sample_size(n_parts):
    """Rows drawn for an initialisation of ``n_parts`` components or clusters."""
    return max(SAMPLE_ROWS, 50 * n_parts)


# -- statistics over blocks --------------------------------------------------------

_META = np.empty((0, 0))  # (dask then does not call the functions on empty arrays)


def _block_reduce(da, function, X, sample_weight, size, **arguments):
    """``function(block, weights, **arguments)`` (one float64 vector of ``size`` per
    block) summed over the blocks as a tree in block order: a float64 ndarray."""
    if sample_weight is None:
        parts = da.blockwise(_packed, "ij", X, "ij", function=function, weight=None,
                             adjust_chunks={"i": 1, "j": size}, meta=_META,
                             **arguments)
    else:
        parts = da.blockwise(_packed, "ij", X, "ij", sample_weight, "i", function=function,
                             adjust_chunks={"i": 1, "j": size}, meta=_META,
                             **arguments)
    total, = _compute(parts.sum(axis=0, split_every=SPLIT_EVERY))
    return total


def _packed(X, weight=None, *, function, **arguments):
    """One row: a block's statistics vector (blockwise's per-block function)."""
    return function(X, weight, **arguments)[None, :]


def _pack_statistics(stats):
    return np.concatenate([[stats.log_likelihood, stats.sum_weights], stats.nk,
                           stats.sums.ravel(), np.ravel(stats.second)])


def _gmm_block(X, weight, *, n_threads, parameters, covariance_type, marginalize=False,
               centres=None, apart=None):
    """Packed statistics of one block, by the in-memory fit's primitive
    (``_em.data_statistics``; rows with NaN cells through ``_missing`` when
    ``marginalize``)."""
    from ._em import data_statistics, estep_threads
    from ._missing import MissingRows

    if weight is not None:
        weight = np.ascontiguousarray(weight, dtype=X.dtype)
    missing = None
    if marginalize and np.isnan(X).any():
        missing = MissingRows(X, weight)
        X = X[missing.complete]
        weight = None if weight is None else weight[missing.complete]
    threads = 1 if n_threads is None else estep_threads(
        n_threads, len(X), X.shape[1], len(parameters[0]), covariance_type)
    stats = data_statistics(X, weight, parameters, covariance_type, threads, missing,
                            centres=centres, apart=apart)
    return _pack_statistics(stats)


def gmm_statistics(X, sample_weight, parameters, covariance_type, n_threads, marginalize=False,
                   centres=None, apart=None):
    """The summed ``SufficientStatistics`` of dask X under ``parameters``."""
    from ._em import SufficientStatistics, estep_statistics
    _, da = _import_dask()
    weights, means, covariances, precisions_cholesky = parameters
    # The shift the blocks' moments are about (a function of the parameters only):
    # from the same primitive on no rows.
    empty = estep_statistics(np.zeros((0, X.shape[1]), dtype=X.dtype), None, weights, means,
                             precisions_cholesky, covariance_type, 1, covariances, centres,
                             apart)
    packed = _pack_statistics(empty)
    total = _block_reduce(da, _gmm_block, X, sample_weight, len(packed), n_threads=n_threads,
                          parameters=parameters, covariance_type=covariance_type,
                          marginalize=marginalize, centres=centres, apart=apart)
    n_components = len(weights)
    nk_end = 2 + n_components
    sums_end = nk_end + empty.sums.size
    return SufficientStatistics(
        float(total[0]), float(total[1]), total[2:nk_end],
        total[nk_end:sums_end].reshape(empty.sums.shape),
        total[sums_end:].reshape(np.shape(empty.second)), empty.shift)


def gmm_em_step(X, sample_weight, parameters, covariance_type, reg_covar, n_threads,
                marginalize=False):
    """``_em.em_step`` over dask X: the statistics, the M-step, and the redo of
    components that moved far (a second pass)."""
    from ._em import em_iteration
    return em_iteration(
        lambda **about: gmm_statistics(X, sample_weight, parameters, covariance_type,
                                       n_threads, marginalize, **about),
        covariance_type, reg_covar)


# -- shared by the two fits ----------------------------------------------------------

def _prepare_fit(estimator, X, sample_weight, min_samples, allow_nan=False):
    """Checked X (persisted on a distributed cluster), its checked weights (float64,
    or None) and the row starts; X's data checks run here, in one pass (with
    ``allow_nan``, NaN cells pass, and a feature missing in every row is an error)."""
    dask, da = _import_dask()
    names = dataframe_names(X)
    if is_dask_dataframe(X):  # (converted once: the row counts cost a pass)
        X = dataframe_as_array(X)
    checked, starts = check_dask_array(X, min_samples=min_samples, allow_nan=allow_nan)
    estimator.n_features_in_ = checked.shape[1]
    estimator.__dict__.pop("feature_names_in_", None)
    if names is not None:
        estimator.feature_names_in_ = names
    if sample_weight is not None:
        sample_weight = check_dask_weights(sample_weight, checked, starts)
    if _distributed_client() is not None:
        # On a cluster the checked blocks stay on the workers for the whole fit.
        checked, sample_weight = dask.persist(checked, sample_weight)
        if allow_nan:
            _check_observed_features(da, checked)
        return checked, sample_weight, starts
    # Local schedulers read the blocks again at every iteration (out-of-core): check
    # them once, in a pass of their own, then only convert them (a check per
    # iteration cost a pass: KMeans (1e7, 16, 64) float32 1.7x the in-memory time).
    if allow_nan:
        _check_observed_features(da, checked)
    else:
        _block_reduce(da, _no_statistics, checked, None, 1)
    return check_dask_array(X, finite=False)[0], sample_weight, starts


def _no_statistics(X, weight):
    return np.zeros(1)


def _observed_cells(X, weight):
    return (~np.isnan(X)).sum(axis=0).astype(np.float64)


def _check_observed_features(da, X):
    """A pass over X: a feature missing in every row is a ValueError (as in memory)."""
    unobserved = np.flatnonzero(_block_reduce(da, _observed_cells, X, None, X.shape[1]) == 0)
    if unobserved.size:
        raise ValueError(
            f"Feature(s) {unobserved.tolist()} are missing in every row: the mixture cannot "
            "be estimated along them; drop those columns.")


def _check_weights_total(sample_weight, n_components, what):
    """``(positive_count, largest, mean)`` of dask weights, with the in-memory fit's errors."""
    _, da = _import_dask()
    positive, largest = _compute((sample_weight > 0).sum(), sample_weight.max())
    if positive == 0:
        raise ValueError("sample_weight sums to zero; at least one weight must be positive.")
    if positive < n_components:
        raise ValueError(
            f"sample_weight has {positive} positive weight(s), fewer than "
            f"{what}={n_components}: rows of weight 0 do not count as samples.")
    mean, = _compute((sample_weight / float(largest)).mean())
    return int(positive), float(largest), float(largest) * float(mean)


def _task_threads(estimator):
    """Threads of a kernel inside a task: ``n_threads`` if set, else None (one)."""
    from ._threads import effective_n_threads
    if estimator.n_threads is None:
        return None
    return effective_n_threads(estimator.n_threads)


# -- GaussianMixture ---------------------------------------------------------------

def fit_gaussian_mixture(estimator, X, sample_weight):
    """``GaussianMixture.fit`` on a dask array: the estimator's EM driver (``_run_em``)
    with starts from a weighted sample and iterations from ``gmm_em_step``."""
    from ._ordering import check_finish_options, finish_fit

    check_finish_options(estimator)
    if estimator.contamination is not None:
        raise ValueError("contamination is not supported on dask arrays yet (its threshold "
                         "is a weighted quantile of the training scores); fit without it.")
    marginalize = estimator._nan_options().get("allow_nan", False)
    X, sample_weight, _ = _prepare_fit(estimator, X, sample_weight, min_samples=2,
                                       allow_nan=marginalize)
    n_samples, n_features = X.shape
    n_components, helpers, init = estimator._check_params(n_samples, n_features)
    if sample_weight is not None:
        _, _, mean = _check_weights_total(sample_weight, n_components, "n_components")
        # As in memory: weights of mean 1 in X's dtype (then float64 for the tasks'
        # arithmetic, which casts them back to X's dtype).
        sample_weight = (sample_weight / mean).astype(X.dtype)
    n_threads = _task_threads(estimator)
    covariance_type, reg_covar = estimator.covariance_type, float(estimator.reg_covar)
    needs_sample = not ("weights" in init and "means" in init and "covariances" in init)

    def start(random_state):
        rows, rows_weight = np.zeros((0, n_features), dtype=X.dtype), None
        if needs_sample:
            rows, rows_weight = sample_rows(X, sample_weight, sample_size(n_components),
                                            random_state)
            if rows_weight is not None:
                rows_weight = (rows_weight / rows_weight.mean()).astype(X.dtype)
            if marginalize:
                rows, rows_weight = _start_rows(rows, rows_weight, n_components)
        return estimator._initial_parameters(rows, rows_weight, n_components, helpers, init,
                                             random_state, 1 if n_threads is None else n_threads)

    def step(params):
        return gmm_em_step(X, sample_weight, params, covariance_type, reg_covar, n_threads,
                           marginalize)

    estimator._run_em(start, step, n_components, n_features, X.dtype, stacklevel=5)
    estimator.n_samples_seen_ = float(n_samples) if sample_weight is None else (
        float(mean) * n_samples)
    finish_fit(estimator, None, None)  # (no contamination: only the components' order)
    return estimator


def _start_rows(rows, weight, n_components):
    """The sampled rows a start sees with NaN cells, by the in-memory fit's rule: the
    complete ones when there are 10 per component, else all of them mean-imputed (the
    sample's column means)."""
    from ._missing import mean_imputed
    complete = ~np.isnan(rows).any(axis=1)
    if complete.all():
        return rows, weight
    n_complete = (complete.sum() if weight is None
                  else np.count_nonzero(weight[complete]))
    if n_complete >= 10 * n_components:
        return rows[complete], None if weight is None else weight[complete]
    return mean_imputed(rows), weight


def _gmm_rows(X, estimator, what):
    """Per-block in-memory output of a fitted GaussianMixture."""
    return getattr(estimator, what)(X)


def unnamed(estimator):
    """A shallow copy of a fitted estimator without ``feature_names_in_``, for the
    blocks (plain arrays, whose names were checked on the whole DataFrame)."""
    if not hasattr(estimator, "feature_names_in_"):
        return estimator
    copy = __import__("copy").copy(estimator)
    del copy.feature_names_in_
    return copy


def gmm_per_sample(estimator, X, what):
    """``score_samples`` / ``predict`` / ``predict_proba`` of dask X, lazily, block by block."""
    estimator._check_fitted("means_")
    # (with missing_values="marginalize" each block's cells are checked by the model's
    # own methods, which take NaN cells)
    X, _ = check_dask_array(X, dtype=estimator.means_.dtype,
                            n_features=estimator.n_features_in_,
                            feature_names=getattr(estimator, "feature_names_in_", None),
                            finite=estimator.missing_values != "marginalize")
    estimator = unnamed(estimator)
    if what == "predict_proba":
        n_components = estimator.means_.shape[0]
        return X.map_blocks(_gmm_rows, estimator, what, chunks=(X.chunks[0], (n_components,)),
                            meta=np.empty((0, 0), estimator.means_.dtype))
    dtype = np.int64 if what == "predict" else estimator.means_.dtype
    return X.map_blocks(_gmm_rows, estimator, what, drop_axis=1, meta=np.empty(0, dtype))


def gmm_total_log_likelihood(estimator, X, sample_weight=None):
    """``(sum_i w_i log p(x_i), sum_i w_i, n_samples)`` of dask X, by a tree sum."""
    _, da = _import_dask()
    if is_dask_dataframe(X):  # (converted once: the row counts cost a pass)
        X = dataframe_as_array(X, feature_names=getattr(estimator, "feature_names_in_", None))
    log_norm = gmm_per_sample(estimator, X, "score_samples").astype(np.float64)
    if sample_weight is None:
        total, = _compute(log_norm.sum(split_every=SPLIT_EVERY))
        return float(total), float(X.shape[0]), X.shape[0]
    X_checked, starts = check_dask_array(X, dtype=estimator.means_.dtype)
    weight = check_dask_weights(sample_weight, X_checked, starts)
    total, weight_sum = _compute((log_norm * weight).sum(split_every=SPLIT_EVERY),
                                 weight.sum(split_every=SPLIT_EVERY))
    return float(total), float(weight_sum), X.shape[0]
