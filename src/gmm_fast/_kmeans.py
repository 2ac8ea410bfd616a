"""Lloyd's k-means: the estimator, its seeding and the iteration loop over the ``_lloyd`` kernel."""
import contextlib
import warnings

import numpy as np

from . import _draws as draws
from ._base import ConvergenceWarning, EstimatorBase, sklearn_compatible
from . import _sparse
from ._dask import is_dask_collection
from ._lloyd import (CONVERGED, EMPTY_CLUSTER, calls_blas, lloyd_iterations, lloyd_step,
                     seed_form, seed_rounds)
from ._lloyd import column_mean_and_variance as _column_mean_and_variance
from ._online import minibatch_centers
from ._sparse import SparseRows, candidate_potentials, check_data, min_sq_distances
from ._ordering import check_finish_options, finish_fit
from ._threads import effective_n_threads, n_blocks, pass_threads, sequential_blas
from ._validation import (check_array, check_finite, check_nonnegative_float,
                          check_positive_int, check_random_state, check_sample_weight,
                          fit_random_state, mean_weight)

# Rows per numpy step in the helpers that are not kernels (bounded temporaries, 1 MB
# in float64: at 4 MB such steps were the largest allocation of a fit).
_STEP_ELEMENTS = 2**17
# Squared distances below this fraction of |x - s|^2 + |c - s|^2 come from differences
# in ``KMeans.transform`` (see ``_distances``).
_CANCELLATION = 1e-4
# Rows per parallel step of ``_lloyd.min_sq_distances``.
_MIN_SQ_DISTANCES_STEP = 1024
# k-means++ keeps its candidates' distances (n_local_trials float64 per row) where they
# take at most half of X's bytes (KEEP_RATIO): the chosen one's then need no second read
# of X (AVX2, one thread, per centre: (2e5, 128) float64, X read again 12.6 ms beside
# the candidates' 38; (1e6, 16) 8 of 26). On narrower rows reading X again costs about
# what writing them would. The choice depends on the row's shape, not on n_samples, so
# weighted rows and their repeats take the same distances.
_KEEP_RATIO = 2
# Weights summing outside this range are scaled to mean 1 for the fit: the weighted
# sums (of w, w x and w |x - c|^2) stay far from float64's overflow and underflow.
_WEIGHT_TOTALS = (1e-100, 1e100)


def _row_steps(X, width=None):
    """``(start, stop)`` of row slices whose temporaries hold ~1 MB (float64) whatever the
    width (X's, unless ``width`` says how many values per row the step holds)."""
    step = max(1, _STEP_ELEMENTS // max(width or X.shape[1], 1))
    return [(start, start + step) for start in range(0, len(X), step)]


def _blas_on_one_thread(X, n_clusters):
    """``sequential_blas()`` where Lloyd's passes call BLAS (the dense GEMM path), a
    context that does nothing elsewhere: right after a multi-threaded numpy call,
    lowering OpenBLAS's threads waits ~40 us for its spinning workers (AVX2 Zen 3), and
    small fits took 60-75 us longer with it (iris 985 -> 1062 us)."""
    if isinstance(X, SparseRows) or not calls_blas(X.shape[1], n_clusters, X.itemsize):
        return contextlib.nullcontext()
    return sequential_blas()


def _warn_fewer_clusters(labels, n_clusters):
    """scikit-learn's warning when fewer than ``n_clusters`` clusters hold samples."""
    # Counted in steps: np.bincount casts int32 labels to an n-vector of intp.
    counts = sum(np.bincount(labels[start:stop], minlength=n_clusters)
                 for start, stop in _row_steps(labels[:, None]))
    distinct = np.count_nonzero(counts)
    if distinct < n_clusters:
        warnings.warn(
            f"Number of distinct clusters ({distinct}) found smaller than n_clusters "
            f"({n_clusters}). Possibly due to duplicate points in X.",
            sklearn_compatible(ConvergenceWarning), stacklevel=3)


def column_mean_and_variance(X, n_threads=1):
    """Per-feature mean and variance of X in float64 (Lloyd's shift, and its tolerance's
    scale: scikit-learn's, unweighted), on at most ``n_threads`` threads."""
    if isinstance(X, SparseRows):
        return _sparse.mean_and_variance(X)
    # (single-thread seconds: one read of X, ~10 GB/s)
    threads = pass_threads(n_threads, X.nbytes * 1e-10, n_blocks(len(X), 2 * X.shape[1]))
    return _column_mean_and_variance(X, threads)


def kmeans_plusplus(X, n_clusters, *, sample_weight=None, x_squared_norms=None,
                    random_state=None, n_local_trials=None, n_threads=None):
    """Initial centres by greedy k-means++, as ``sklearn.cluster.kmeans_plusplus``.

    Parameters
    ----------
    X : {array-like, sparse matrix} of shape (n_samples, n_features)
        The data to pick seeds from.
    n_clusters : int
        The number of centres to pick.
    sample_weight : array-like of shape (n_samples,), default=None
        Frequency weights: a row is drawn with probability proportional to
        ``w * D(x)^2``, so a row of weight zero is never picked.
    x_squared_norms : array-like of shape (n_samples,), default=None
        Accepted for compatibility with scikit-learn: its length is checked, its
        values are not used.
    random_state : int, RandomState instance or None, default=None
        Seed of the draws.
    n_local_trials : int, default=None
        Candidates tried per centre; None is ``2 + int(log(n_clusters))``.
    n_threads : int or None, default=None
        The most OpenMP threads a pass may use; None follows
        ``omp_get_max_threads()``. Small passes use one.

    Returns
    -------
    centers : ndarray of shape (n_clusters, n_features)
        The chosen rows of X, in float32 for float32 X and float64 otherwise.
    indices : ndarray of shape (n_clusters,)
        Their row indices in X.

    Examples
    --------
    >>> import numpy as np
    >>> from gmm_fast import kmeans_plusplus
    >>> X = np.array([[1, 2], [1, 4], [1, 0], [10, 2], [10, 4], [10, 0]])
    >>> centers, indices = kmeans_plusplus(X, n_clusters=2, random_state=0)
    >>> sorted(X[indices, 0].tolist())
    [1, 10]
    """
    X = check_data(X)
    n_clusters = check_positive_int(n_clusters, "n_clusters")
    if X.shape[0] < n_clusters:
        raise ValueError(f"n_samples={X.shape[0]} should be >= n_clusters={n_clusters}.")
    if n_local_trials is not None:
        n_local_trials = check_positive_int(n_local_trials, "n_local_trials")
    if x_squared_norms is not None and len(x_squared_norms) != X.shape[0]:
        raise ValueError(  # (scikit-learn's check and words; the values are not used)
            f"The length of x_squared_norms {len(x_squared_norms)} should be equal to the "
            f"length of n_samples {X.shape[0]}.")
    if sample_weight is not None:  # (None stays None: unit weights, no n-vector of ones)
        sample_weight = check_sample_weight(sample_weight, X.shape[0], X.dtype)
    return _kmeans_plusplus(X, n_clusters, sample_weight, check_random_state(random_state),
                            n_local_trials, effective_n_threads(n_threads))


def _kmeans_plusplus(X, n_clusters, sample_weight, random_state, n_local_trials=None,
                     n_threads=1, order=None, compiled=True):
    """Greedy k-means++ seeding: returns ``(centers, indices)`` of the chosen rows.

    Each new centre is the best of ``n_local_trials`` (default ``2 + log(k)``)
    candidates drawn with probability proportional to ``w * D(x)^2``, "best"
    meaning the one that leaves the smallest total weighted squared distance.
    Integer weights act as repeated rows exactly, in any row order (``_draws``): the
    draws search exact cumulative sums in ``order`` (``_draws.canonical_order(X)``), and
    candidates whose float potentials are too close to rank surely are ranked by their
    correctly rounded exact sums. ``compiled=False`` (for tests) keeps every round in
    Python, as for sparse X and non-integer weights.
    """
    n_samples, n_features = X.shape
    if n_local_trials is None:
        n_local_trials = 2 + int(np.log(n_clusters))
    centers = np.empty((n_clusters, n_features), dtype=X.dtype)
    indices = np.full(n_clusters, -1, dtype=np.intp)
    # Weights None are unit weights, kept implicit: besides X the seeding then holds
    # one n-vector, the distances to the nearest centre.
    weight = None if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    block_potentials = np.empty((n_blocks(n_samples, n_local_trials), n_local_trials))
    # (each pass's threads, at most n_threads, from its work: _threads.pass_threads)
    # (single-thread ns per row, AVX2 Zen 3: candidates 0.6 t d, measured 8.4 at d=2 t=4,
    # 45 at d=20 t=4; distances 2 + 0.4 d, measured 2.6 at d=2, 30 at d=64)
    candidate_threads = pass_threads(
        n_threads, n_samples * (2 + 0.6 * n_local_trials * n_features) * 1e-9,
        len(block_potentials))
    distance_threads = pass_threads(n_threads, n_samples * (2 + 0.4 * n_features) * 1e-9,
                                    -(-n_samples // _MIN_SQ_DISTANCES_STEP))

    if order is None:
        order = draws.canonical_order(X)
    first = int(draws.draw_rows(weight, n_samples, 1, random_state, order)[0])
    centers[0], indices[0] = X[first], first
    keep = (not isinstance(X, SparseRows) and seed_form()
            and n_local_trials * 8 * _KEEP_RATIO <= n_features * X.itemsize)
    kept = np.empty((n_local_trials, n_samples)) if keep else None
    closest_sq_dist = np.full(n_samples, np.inf)
    # (then by the kept distances' arithmetic: every centre's alike)
    min_sq_distances(X, centers[0], closest_sq_dist, distance_threads, like_candidates=keep)
    draw = draws.ValueDraws(weight, order)
    # Dense X and integer weights: the rounds in C (seed_rounds), from the uniforms the
    # rounds would draw one by one; back here for a near tie of potentials.
    in_c = compiled and draw.exact and not isinstance(X, SparseRows)
    if in_c:
        uniforms = random_state.uniform(size=(n_clusters - 1) * n_local_trials)
        candidate_ids = np.empty(n_local_trials, dtype=np.intp)

    c = 1
    while c < n_clusters:
        if in_c:
            c = seed_rounds(X, sample_weight, weight, order, draw.bits, centers, indices,
                            closest_sq_dist, kept, uniforms, c, block_potentials,
                            candidate_ids, candidate_threads, distance_threads)
            if c == n_clusters:
                break
            candidates = np.ascontiguousarray(X[candidate_ids])
            potentials = _exact_potentials(X, sample_weight, candidates, closest_sq_dist,
                                           candidate_threads)
        else:
            candidate_ids = draw(closest_sq_dist, n_local_trials, random_state)
            candidates = np.ascontiguousarray(X[candidate_ids])
            candidate_potentials(X, sample_weight, candidates, closest_sq_dist,
                                 block_potentials, candidate_threads, candidate_sq_dist=kept)
            potentials = block_potentials.sum(axis=0)
            if not draws.exact_order(potentials, n_samples):
                potentials = _exact_potentials(X, sample_weight, candidates,
                                               closest_sq_dist, candidate_threads)
        best = int(np.argmin(potentials))
        indices[c] = candidate_ids[best]
        centers[c] = X[indices[c]]
        if kept is None:
            min_sq_distances(X, centers[c], closest_sq_dist, distance_threads)
        else:
            np.minimum(closest_sq_dist, kept[best], out=closest_sq_dist)
        c += 1
    return centers, indices


def _exact_potentials(X, sample_weight, candidates, closest_sq_dist, n_threads):
    """The candidates' potentials, each correctly rounded from its exact value (for
    near ties, rare: the distances again, by the same kernel, and exact sums)."""
    n_samples, n_candidates = len(X), len(candidates)
    terms = np.empty((n_candidates, n_samples))
    step = max(1, _STEP_ELEMENTS // n_candidates)
    for start in range(0, n_samples, step):
        stop = min(start + step, n_samples)
        distances = np.empty((n_candidates, stop - start))
        candidate_potentials(X[start:stop], None if sample_weight is None
                             else sample_weight[start:stop], candidates,
                             closest_sq_dist[start:stop],
                             np.empty((n_blocks(stop - start, n_candidates), n_candidates)),
                             n_threads, candidate_sq_dist=distances)
        np.minimum(distances, closest_sq_dist[start:stop], out=terms[:, start:stop])
    return draws.exact_sums(terms, sample_weight)


def _relocate_empty_clusters(X, sample_weight, shift, centers_old, labels, sums, counts):
    """Give each empty cluster the sample farthest from its centre (as scikit-learn does),
    one unit of its weight at a time: a row of weight w may fill up to w empty clusters,
    as its w copies would (farthest first, ties in row order, so that weighted rows and
    their repeats relocate alike)."""
    empty = np.flatnonzero(counts == 0)
    if empty.size == 0:
        return
    distances = np.empty(len(X))
    for start, stop in _row_steps(X):
        diff = (X[start:stop] - shift) - centers_old[labels[start:stop]]
        distances[start:stop] = np.einsum("ij,ij->i", diff, diff)
    if sample_weight is not None:
        distances[sample_weight == 0] = 0.0  # (absent rows)
    # A sample already on its centre moves nothing: the cluster would just empty its
    # own (duplicated points, more clusters than distinct rows); scikit-learn skips it too.
    top = min(empty.size, len(X))
    threshold = max(np.partition(distances, len(X) - top)[len(X) - top], np.nextafter(0, 1))
    farthest = np.flatnonzero(distances >= threshold)
    farthest = farthest[np.argsort(-distances[farthest], kind="stable")]
    left = {}
    picks = []
    for far in farthest:
        w = 1.0 if sample_weight is None else float(sample_weight[far])
        while w - left.get(far, 0.0) > 0 and len(picks) < empty.size:
            unit = min(1.0, w - left.get(far, 0.0))
            left[far] = left.get(far, 0.0) + unit
            picks.append((far, unit))
        if len(picks) == empty.size:
            break
    for new_id, (far, unit) in zip(empty, picks):
        old_id = labels[far]
        point = (X[far] - shift).astype(np.float64)
        sums[old_id] -= unit * point
        sums[new_id] = unit * point
        counts[new_id] = unit
        counts[old_id] -= unit


def _lloyd_seconds(n_samples, n_features, n_clusters):
    """Single-thread time of one Lloyd pass, to choose its threads: ns per row
    measured -> model (AVX2 Zen 3, 65536 rows): (d=2, k=8) 7.8 -> 8.2, (4, 3) 9.0 ->
    7.4, (8, 8) 17 -> 18, (20, 10) 51 -> 45; (64, 32) 207 -> 415 (GEMM path)."""
    return n_samples * (5 + 0.2 * n_features * n_clusters) * 1e-9


def lloyd(X, sample_weight, centers_init, shift, max_iter, tol, n_threads, verbose=False):
    """Lloyd iterations from ``centers_init`` (about ``shift``), one kernel pass each.

    Stops when the labels no longer change, or when the squared centre shift is
    at most ``tol``. Returns ``labels, inertia, centers, n_iter, converged``: the
    centres as X's rows (no longer about ``shift``), in X's dtype, with labels and
    inertia from ``nearest_centers``, as predict computes them. Each pass takes at
    most ``n_threads`` threads (``_threads.pass_threads``).
    """
    if isinstance(X, SparseRows):  # (shift is 0: sparse X is not centred)
        return _sparse.lloyd(X, sample_weight, centers_init, max_iter, tol, n_threads, verbose)
    n_samples = X.shape[0]
    n_clusters, n_features = centers_init.shape
    centers = np.array(centers_init, dtype=X.dtype, order="C")
    labels = np.full(n_samples, -1, dtype=np.int32)
    blocks = n_blocks(n_samples, n_clusters * (n_features + 1))
    step_threads = pass_threads(n_threads, _lloyd_seconds(n_samples, n_features, n_clusters),
                                blocks)
    block_sums = np.empty((blocks, n_clusters, n_features))
    block_counts = np.empty((blocks, n_clusters))
    block_inertia = np.empty(blocks)
    converged = False

    n_iter = 0
    while n_iter < max_iter:
        if verbose:  # (step by step, printing each)
            n_iter += 1
            n_changed = lloyd_step(X, sample_weight, shift, centers, labels, block_sums,
                                   block_counts, block_inertia, True, step_threads)
        else:  # in C, back here only for a cluster left empty
            n_iter, how, n_changed = lloyd_iterations(
                X, sample_weight, shift, centers, labels, block_sums, block_counts,
                block_inertia, step_threads, n_iter, max_iter, tol)
            if how != EMPTY_CLUSTER:
                converged = how == CONVERGED
                break
        sums, counts = block_sums.sum(axis=0), block_counts.sum(axis=0)
        if not counts.all():
            _relocate_empty_clusters(X, sample_weight, shift, centers, labels, sums, counts)
        centers, center_shift = updated_centers(centers, sums, counts)
        if lloyd_converged(n_iter, n_changed, center_shift, tol, verbose,
                           block_inertia.sum()):
            converged = True
            break

    # Labels and inertia for the centres returned, as predict computes them, so that
    # predict(X) == labels_ even where a sample is equally far from two centres.
    centers = (centers + shift).astype(X.dtype)
    return (*nearest_centers(X, sample_weight, centers, n_threads, labels), centers, n_iter,
            converged)


def updated_centers(centers, sums, counts):
    """Lloyd's update, for the dense, sparse and dask loops alike: each centre the mean
    of its cluster (``sums`` over ``counts``, float64), in ``centers``' dtype and memory
    order; a cluster still empty after relocation (every sample already on its centre)
    goes where scikit-learn puts it, the largest cluster's centre. Returns the centres
    and the squared centre shift."""
    filled = counts > 0
    if filled.all():  # (the usual case, in fewer numpy calls)
        new = (sums / counts[:, None]).astype(centers.dtype, copy=False)
    else:
        new = centers.copy(order="K")
        new[filled] = sums[filled] / counts[filled, None]
        new[~filled] = new[np.argmax(counts)]
    moves = new.astype(np.float64) - centers
    return new, float((moves * moves).sum())


def lloyd_converged(n_iter, n_changed, center_shift, tol, verbose, inertia=None):
    """Whether Lloyd's loop stops (no label changed, or the centres moved by at most
    ``tol``; ``n_changed`` None: unknown, the centres then decide), with scikit-learn's
    verbose lines."""
    strict = n_changed == 0 if n_changed is not None else center_shift == 0
    if verbose:
        print(f"Iteration {n_iter}, " + ("" if inertia is None else f"inertia {inertia}, ")
              + f"centre shift {center_shift}.")
    if not (strict or center_shift <= tol):
        return False
    if verbose:
        print(f"Converged at iteration {n_iter}: strict convergence." if strict
              else f"Converged at iteration {n_iter}: center shift {center_shift} "
              f"within tolerance {tol}.")
    return True


def nearest_centers(X, sample_weight, centers, n_threads, labels=None):
    """Labels of the nearest of ``centers`` (X's rows), into ``labels`` (int32) if
    given, and the weighted inertia, in one kernel pass about the centres' mean: fit's
    final assignment and predict's (on at most ``n_threads`` threads)."""
    if isinstance(X, SparseRows):
        return _sparse.nearest_centers(X, sample_weight, centers, n_threads, labels)
    shift = centers.mean(axis=0).astype(centers.dtype)
    blocks = n_blocks(len(X), 1)
    n_threads = pass_threads(n_threads, _lloyd_seconds(len(X), *centers.shape[::-1]), blocks)
    if labels is None:
        labels = np.empty(len(X), dtype=np.int32)
    block_inertia = np.empty(blocks)
    lloyd_step(X, sample_weight, shift, centers - shift, labels, np.empty((blocks, 0, 0)),
               np.empty((blocks, 0)), block_inertia, False, n_threads)
    return labels, float(block_inertia.sum())


def _same_clustering(labels_a, labels_b, n_clusters):
    """Whether two labellings are the same partition up to a renaming of the clusters."""
    mapping = np.full(n_clusters, -1)
    mapping[labels_a] = labels_b
    return np.array_equal(mapping[labels_a], labels_b)


class KMeans(EstimatorBase):
    """K-means clustering by Lloyd's algorithm, on parallel Cython kernels.

    A drop-in for ``sklearn.cluster.KMeans(algorithm="lloyd")``: the same
    parameters, attributes and results, with results that do not depend on
    the number of threads, and float32 data kept in float32.

    Parameters
    ----------
    n_clusters : int, default=8
        The number of clusters (centres) to find.
    init : {"k-means++", "random"}, callable or array-like of shape \
            (n_clusters, n_features), default="k-means++"
        "k-means++": greedy k-means++ seeding with ``2 + log(n_clusters)``
        candidates per centre. "random": ``n_clusters`` distinct rows drawn with
        probability proportional to ``sample_weight``. A callable is called as
        ``init(X, n_clusters, random_state=random_state)``. An array gives the
        initial centres.
    n_init : "auto" or int, default="auto"
        Number of runs from different seeds; the one of lowest inertia is kept.
        "auto" is 1 for "k-means++" and an array, 10 otherwise.
    max_iter : int, default=300
        Maximum number of Lloyd iterations in one run.
    tol : float, default=1e-4
        Convergence tolerance on the squared shift of the centres, relative to
        the mean variance of the features.
    verbose : int, default=0
        Print the inertia at each iteration.
    random_state : int, RandomState instance or None, default=None
        Seed of the initialisation.
    copy_x : bool, default=True
        Accepted for compatibility. gmm_fast never modifies nor centres X in
        place, so there is nothing to copy.
    algorithm : {"lloyd"}, default="lloyd"
        Only Lloyd's algorithm is implemented.
    n_threads : int or None, default=None
        The most OpenMP threads a pass over the data may use (None:
        ``omp_get_max_threads()`` at fit time, so ``OMP_NUM_THREADS`` and
        threadpoolctl limits apply). A pass with less than ~4 ms of work runs on
        one (``gmm_fast._threads.MIN_SECONDS_PER_THREAD`` per thread): waking a
        thread would cost more than it saves. Results do not depend on it.
    sort_components : {None, "weights", "means"}, default=None
        Canonical order of the clusters, so that labels do not depend on the
        initialisation: "weights" puts the largest (weighted) cluster first,
        "means" sorts the centres lexicographically; None keeps Lloyd's order.

    Attributes
    ----------
    cluster_centers_ : ndarray of shape (n_clusters, n_features)
        The centres, in the dtype of X (float32 or float64).
    labels_ : ndarray of shape (n_samples,)
        Index of the nearest centre of each training sample.
    inertia_ : float
        Sum of weighted squared distances of the samples to their centre.
    n_iter_ : int
        Number of iterations of the best run.
    converged_ : bool
        Whether the best run converged before ``max_iter`` (stopping there is not
        warned about, as in scikit-learn; this says it).
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Column names of X, when X is a DataFrame with string column names.

    Notes
    -----
    One iteration is a single pass over X: each sample goes to the centre
    minimising ``|c|^2 - 2 x.c`` (X taken about its mean), and the new centre
    of cluster j is ``sum_i w_i x_i / sum_i w_i`` over its samples. A run stops
    when the labels no longer change or when ``sum_j |c_j^new - c_j|^2 <= tol *
    mean(var(X))``. The kernels fork no processes; libgomp is not fork-safe, so
    use the "spawn" start method with multiprocessing. Sparse X (scipy.sparse)
    is taken as CSR and not centred; the dense centres are stored transposed for
    its kernel (``_sparse.py``).

    Examples
    --------
    >>> import numpy as np
    >>> from gmm_fast import KMeans
    >>> X = np.array([[1, 2], [1, 4], [1, 0], [10, 2], [10, 4], [10, 0]])
    >>> km = KMeans(n_clusters=2, random_state=0).fit(X)
    >>> km.cluster_centers_[np.argsort(km.cluster_centers_[:, 0])]
    array([[ 1.,  2.],
           [10.,  2.]])
    >>> km.predict([[0, 0], [12, 3]]).tolist() == km.predict([[1, 1], [9, 1]]).tolist()
    True
    """

    _estimator_type = "clusterer"

    def __init__(self, n_clusters=8, *, init="k-means++", n_init="auto", max_iter=300,
                 tol=1e-4, verbose=0, random_state=None, copy_x=True, algorithm="lloyd",
                 n_threads=None, sort_components=None):
        self.n_clusters = n_clusters
        self.init = init
        self.n_init = n_init
        self.max_iter = max_iter
        self.tol = tol
        self.verbose = verbose
        self.random_state = random_state
        self.copy_x = copy_x
        self.algorithm = algorithm
        self.n_threads = n_threads
        self.sort_components = sort_components

    def __sklearn_tags__(self):
        from sklearn.utils import TransformerTags
        tags = super().__sklearn_tags__()
        # transform() gives distances in the dtype of the centres, float32 or float64.
        tags.transformer_tags = TransformerTags(preserves_dtype=["float64", "float32"])
        tags.input_tags.sparse = True  # (scipy.sparse X: _sparse.py)
        return tags

    def _check_params(self, X):
        n_clusters = check_positive_int(self.n_clusters, "n_clusters")
        check_positive_int(self.max_iter, "max_iter")
        check_nonnegative_float(self.tol, "tol")
        if self.algorithm != "lloyd":
            raise ValueError(f"algorithm={self.algorithm!r} is not supported; use 'lloyd'.")
        if X.shape[0] < n_clusters:
            raise ValueError(f"n_samples={X.shape[0]} should be >= n_clusters={n_clusters}.")
        init = self.init
        is_array = not isinstance(init, str) and not callable(init)
        if isinstance(init, str) and init not in ("k-means++", "random"):
            raise ValueError(
                f"init={init!r} should be 'k-means++', 'random', an array or a callable.")
        if self.n_init == "auto":
            n_init = 10 if (isinstance(init, str) and init == "random") or callable(init) else 1
        else:
            n_init = check_positive_int(self.n_init, "n_init")
        if is_array:
            init = check_array(init, name="init", dtype=X.dtype)
            self._check_centers_shape(init, n_clusters, X.shape[1])
            if n_init != 1:
                warnings.warn(  # (scikit-learn's words)
                    "Explicit initial center position passed: performing only one init in "
                    f"{type(self).__name__} instead of n_init={n_init}.",
                    RuntimeWarning, stacklevel=3)
                n_init = 1
        return n_clusters, init, n_init

    def _check_fit_data(self, X, min_samples=1, **finite):
        if not _sparse.issparse(X):
            return super()._check_fit_data(X, min_samples, **finite)
        X = _sparse.check_sparse(X)
        self.n_features_in_ = X.shape[1]
        self.__dict__.pop("feature_names_in_", None)
        return X

    def _check_predict_data(self, X, dtype):
        if not _sparse.issparse(X):
            return super()._check_predict_data(X, dtype)
        if hasattr(self, "feature_names_in_"):
            warnings.warn(f"X does not have valid feature names, but {type(self).__name__} "
                          "was fitted with feature names", UserWarning, stacklevel=3)
        X = _sparse.check_sparse(X, dtype=dtype)
        if X.shape[1] != self.n_features_in_:
            raise ValueError(f"X has {X.shape[1]} features, but {type(self).__name__} is "
                             f"expecting {self.n_features_in_} features as input.")
        return X

    @staticmethod
    def _check_centers_shape(centers, n_clusters, n_features):
        if centers.shape != (n_clusters, n_features):
            # scikit-learn's sentence first (code matches on it), then the expected shape.
            mismatch = (f"the number of clusters {n_clusters}" if len(centers) != n_clusters
                        else f"the number of features of the data {n_features}")
            raise ValueError(
                f"The shape of the initial centers {centers.shape} does not match {mismatch}: "
                f"the initial centres have shape {centers.shape}; expected (n_clusters, "
                f"n_features)=({n_clusters}, {n_features}).")

    def _init_centers(self, X, init, n_clusters, sample_weight, random_state, n_threads,
                      order=None):
        if isinstance(init, np.ndarray):
            return init
        if isinstance(init, str) and order is None:
            order = draws.canonical_order(X)  # (an integer weight: that many copies, _draws)
        if init == "k-means++":
            return _kmeans_plusplus(X, n_clusters, sample_weight, random_state,
                                    n_threads=n_threads, order=order)[0]
        if init == "random":
            return X[draws.draw_rows(sample_weight, len(X), n_clusters, random_state, order,
                                     replace=False)]
        centers = check_array(init(getattr(X, "matrix", X), n_clusters,
                                   random_state=random_state),
                              name="init(X)", dtype=X.dtype)
        self._check_centers_shape(centers, n_clusters, X.shape[1])
        return centers

    def fit(self, X, y=None, sample_weight=None):
        """Compute k-means clustering.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data. float32 is kept in float32, other numbers become float64.
            scipy.sparse input is used as CSR (other formats converted once) and never
            densified.
        y : Ignored
            Not used, present for API consistency.
        sample_weight : array-like of shape (n_samples,), default=None
            Frequency weights (>= 0, not all zero), used in the seeding and in
            every Lloyd step. None weighs every sample 1.

        Returns
        -------
        self : KMeans
            The fitted estimator.
        """
        if is_dask_collection(X):  # the same Lloyd steps over the blocks (gmm_fast._dask)
            from ._dask_kmeans import fit_kmeans
            return fit_kmeans(self, X, sample_weight)
        # (dense X's values: checked by _fit's first pass, its column means)
        X = self._check_fit_data(X, finite=False)
        # None stays None: the kernels take it as unit weights, without an n-vector of ones.
        weight_scale = 1.0
        if sample_weight is not None:
            sample_weight = check_sample_weight(sample_weight, X.shape[0], np.float64)
            with np.errstate(over="ignore"):
                total = sample_weight.sum()
            if not _WEIGHT_TOTALS[0] < total < _WEIGHT_TOTALS[1]:
                # Weighted sums would overflow (or lose digits to underflow): the same
                # fit with weights of mean 1, its inertia scaled back.
                weight_scale = mean_weight(sample_weight)
                sample_weight = sample_weight / weight_scale
            sample_weight = check_sample_weight(sample_weight, X.shape[0], X.dtype)
        return self._fit(X, sample_weight, weight_scale)

    def _fit(self, X, sample_weight, weight_scale=1.0, warn=True):
        """``fit`` on checked data: X from ``check_array`` (its values checked here, by
        their column means and variances, if not before), weights None or checked in X's
        dtype and summing to within ``_WEIGHT_TOTALS`` (GaussianMixture's start passes
        its own, and ``warn=False``: fewer distinct clusters than asked is fine there)."""
        n_clusters, init, n_init = self._check_params(X)
        check_finish_options(self)
        n_threads = effective_n_threads(self.n_threads)

        mean, variance = column_mean_and_variance(X, n_threads)
        if not (np.isfinite(mean).all() and np.isfinite(variance).all()):
            if not isinstance(X, SparseRows):  # (sparse X's values are checked)
                check_finite(X)  # NaN or infinity: its error
            raise ValueError(f"Input X contains values too large for {X.dtype}: their "
                             "squares overflow; rescale the data.")
        tol = float(np.mean(variance)) * self.tol
        # (sparse X is not centred: its shift is 0)
        shift = (np.zeros_like(mean) if isinstance(X, SparseRows) else mean).astype(X.dtype)
        best = None
        order = draws.canonical_order(X) if isinstance(init, str) else None
        # (a callable init gets the generator: a new one, which it may keep)
        with _blas_on_one_thread(X, n_clusters), fit_random_state(
                self.random_state, reuse=not callable(init)) as random_state:
            for _ in range(n_init):
                centers = self._init_centers(X, init, n_clusters, sample_weight,
                                             random_state, n_threads, order)
                if self.verbose:
                    print("Initialization complete")
                run = lloyd(X, sample_weight, centers - shift, shift, self.max_iter, tol,
                            n_threads, self.verbose)
                labels, inertia = run[0], run[1]
                if best is None or (inertia < best[1]
                                    and not _same_clustering(labels, best[0], n_clusters)):
                    best = run

        labels, inertia, centers, n_iter, converged = best
        for name in ("_counts", "n_steps_"):  # (partial_fit continues from this fit)
            self.__dict__.pop(name, None)
        self.cluster_centers_ = centers
        self.labels_ = labels
        with np.errstate(over="ignore"):  # (inf is then the true value's float)
            self.inertia_ = inertia * weight_scale
        self.n_iter_ = n_iter
        self.converged_ = converged
        self._n_features_out = n_clusters
        finish_fit(self, X, sample_weight)
        if warn:  # (GaussianMixture's start does not warn: no pass to count)
            _warn_fewer_clusters(labels, n_clusters)
        return self

    def partial_fit(self, X, y=None, sample_weight=None):
        """Update the centres with a batch: mini-batch k-means, one kernel pass.

        Each centre becomes the weighted mean of every sample assigned to it so far
        (as scikit-learn's ``MiniBatchKMeans``, without its random reassignment of
        rarely chosen centres): the batch is assigned to the nearest centres, and
        ``centre_j <- (centre_j c_j + batch sum_j) / (c_j + batch weight_j)`` with
        ``c_j`` the weight assigned to centre j before. The first call seeds the
        centres from its batch (``init``); on a model fitted by ``fit`` the counts
        start as its clusters' sizes.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            A batch (the first needs at least ``n_clusters`` rows).
        y : Ignored
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        self : KMeans
        """
        first = not hasattr(self, "cluster_centers_")
        X = (self._check_fit_data(X) if first
             else self._check_predict_data(X, self.cluster_centers_.dtype))
        weight = (None if sample_weight is None
                  else check_sample_weight(sample_weight, X.shape[0], X.dtype))
        n_threads = effective_n_threads(self.n_threads)
        counts = getattr(self, "_counts", None)
        if first:
            n_clusters, init, _ = self._check_params(X)
        with _blas_on_one_thread(X, n_clusters if first else len(self.cluster_centers_)):
            if first:
                with fit_random_state(self.random_state,
                                      reuse=not callable(init)) as random_state:
                    centers = self._init_centers(X, init, n_clusters, weight, random_state,
                                                 n_threads)
                counts = np.zeros(n_clusters)
            else:
                centers = self.cluster_centers_
                if counts is None:  # fitted by fit, or loaded: its clusters' sizes
                    counts = np.bincount(getattr(self, "labels_", np.zeros(0, np.int64)),
                                         minlength=len(centers)).astype(np.float64)
            shift = np.asarray(centers, dtype=np.float64).mean(axis=0)
            n_clusters, n_features = centers.shape
            blocks = n_blocks(len(X), n_clusters * (n_features + 1))
            block_sums = np.empty((blocks, n_clusters, n_features))
            block_counts = np.empty((blocks, n_clusters))
            lloyd_step(X, weight, shift.astype(X.dtype),
                       (np.asarray(centers, dtype=np.float64) - shift).astype(X.dtype),
                       np.full(len(X), -1, dtype=np.int32), block_sums, block_counts,
                       np.empty(blocks), True,
                       pass_threads(n_threads, _lloyd_seconds(len(X), n_features, n_clusters),
                                    blocks), with_inertia=False)
        moved, counts = minibatch_centers(np.asarray(centers, dtype=np.float64) - shift,
                                          counts, block_sums.sum(axis=0),
                                          block_counts.sum(axis=0))
        self.cluster_centers_ = (moved + shift).astype(X.dtype)
        self._counts = counts
        self._n_features_out = n_clusters
        self.n_steps_ = getattr(self, "n_steps_", 0) + 1
        return self

    def _labels_inertia(self, X, sample_weight):
        """Nearest-centre labels of X and their weighted inertia, in one kernel pass."""
        with _blas_on_one_thread(X, len(self.cluster_centers_)):
            return nearest_centers(X, sample_weight, self.cluster_centers_,
                                   effective_n_threads(self.n_threads))

    def predict(self, X):
        """Index of the nearest centre of each sample.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            New data.

        Returns
        -------
        labels : ndarray of shape (n_samples,)
            Index of the cluster each sample belongs to.
        """
        if is_dask_collection(X):  # a dask array, computed lazily block by block
            from ._dask_kmeans import kmeans_per_sample
            return kmeans_per_sample(self, X, "predict")
        self._check_fitted("cluster_centers_")
        X = self._check_predict_data(X, self.cluster_centers_.dtype)
        return self._labels_inertia(X, None)[0]

    def fit_predict(self, X, y=None, sample_weight=None):
        """Fit, then return the labels of the training samples (``fit(X).labels_``).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data.
        y : Ignored
            Not used, present for API consistency.
        sample_weight : array-like of shape (n_samples,), default=None
            Frequency weights.

        Returns
        -------
        labels : ndarray of shape (n_samples,)
            Index of the cluster each sample belongs to.
        """
        return self.fit(X, sample_weight=sample_weight).labels_

    def transform(self, X):
        """Euclidean distance of every sample to every centre.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            New data.

        Returns
        -------
        distances : ndarray of shape (n_samples, n_clusters)
            In the dtype of the centres.
        """
        if is_dask_collection(X):
            from ._dask_kmeans import kmeans_per_sample
            return kmeans_per_sample(self, X, "transform")
        self._check_fitted("cluster_centers_")
        X = self._check_predict_data(X, self.cluster_centers_.dtype)
        return self._distances(X)

    def _distances(self, X):
        """Distances to the centres, in float64 about the centres' mean: the expansion
        |x|^2 - 2 x.c + |c|^2 by one GEMM per row step, except where it cancels (a row
        much closer to a centre than both are to the mean: a tight cluster far from the
        others), recomputed from the differences there. Relative error <= ~1e-11."""
        if isinstance(X, SparseRows):
            return _sparse.distances(X, self.cluster_centers_, self.cluster_centers_.dtype)
        centers = self.cluster_centers_.astype(np.float64)
        shift = centers.mean(axis=0)
        centered = centers - shift
        centers_sq = np.einsum("ij,ij->i", centered, centered)
        largest_center_sq = centers_sq.max()
        # [x, |x|^2, 1] @ [-2 c ; 1 ; |c|^2]: the whole expansion from one GEMM
        expansion = np.vstack([-2.0 * centered.T, np.ones(len(centers)), centers_sq])
        n_features = X.shape[1]
        out = np.empty((len(X), len(centers)), dtype=self.cluster_centers_.dtype)
        for start, stop in _row_steps(X, max(n_features + 2, len(centers))):
            features = np.empty((min(stop, len(X)) - start, n_features + 2))
            rows = features[:, :n_features]
            np.subtract(X[start:stop], shift, out=rows)
            rows_sq = features[:, n_features]
            np.einsum("ij,ij->i", rows, rows, out=rows_sq)
            features[:, n_features + 1] = 1.0
            sq = features @ expansion
            # The expansion's rounding is ~eps (|x|^2 + |c|^2): recompute where that
            # could exceed ~1e-11 of the result (bounding |c|^2 by the largest).
            bound = _CANCELLATION * (rows_sq + largest_center_sq)
            suspect = np.flatnonzero(sq.min(axis=1) <= bound)  # rows, then their entries
            if len(suspect):
                i, k = np.nonzero(sq[suspect] <= bound[suspect, None])
                i = suspect[i]
                diff = rows[i] - centered[k]
                sq[i, k] = np.einsum("ij,ij->i", diff, diff)
            np.sqrt(sq, out=out[start:stop], casting="unsafe")
        return out

    def fit_transform(self, X, y=None, sample_weight=None):
        """Fit, then return the distances of the training samples to the centres.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data.
        y : Ignored
            Not used, present for API consistency.
        sample_weight : array-like of shape (n_samples,), default=None
            Frequency weights.

        Returns
        -------
        distances : ndarray of shape (n_samples, n_clusters)
            Distance of each sample to each centre.
        """
        self.fit(X, sample_weight=sample_weight)
        if is_dask_collection(X):
            return self.transform(X)
        return self._distances(check_data(X, dtype=self.cluster_centers_.dtype))

    def score(self, X, y=None, sample_weight=None):
        """Opposite of the (weighted) inertia of X on the fitted centres.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            New data.
        y : Ignored
            Not used, present for API consistency.
        sample_weight : array-like of shape (n_samples,), default=None
            Frequency weights.

        Returns
        -------
        score : float
            ``-sum_i w_i min_j |x_i - c_j|^2``: larger is better.
        """
        if is_dask_collection(X):
            from ._dask_kmeans import kmeans_score
            return kmeans_score(self, X, sample_weight)
        self._check_fitted("cluster_centers_")
        X = self._check_predict_data(X, self.cluster_centers_.dtype)
        if sample_weight is not None:
            sample_weight = check_sample_weight(sample_weight, len(X), X.dtype)
        return -self._labels_inertia(X, sample_weight)[1]

    def get_feature_names_out(self, input_features=None):
        """Output names of ``transform``: ``kmeans0``, ``kmeans1``, ...

        Parameters
        ----------
        input_features : array-like of str or None, default=None
            Ignored; present for API consistency.

        Returns
        -------
        names : ndarray of str objects
        """
        self._check_fitted("cluster_centers_")
        return np.asarray([f"kmeans{i}" for i in range(self._n_features_out)], dtype=object)
