"""``GaussianMixture``: the in-memory EM driver over the primitive of ``_em``.

The estimator owns initialisation, the iteration loop, convergence, restarts,
warnings and the fitted attributes; ``_em.em_step`` (``estep_statistics`` and
``mstep``) does the arithmetic.
"""
import math
import warnings
from time import perf_counter

import numpy as np

from ._base import ConvergenceWarning, EstimatorBase, sklearn_compatible
from ._covariances import COVARIANCE_TYPES
from ._dask import is_dask_collection
from ._em import (_NK_FLOOR, _covariance_helpers, _KernelParameters, data_statistics,
                  em_step, estep_threads, mstep, score_threads)
from ._estep import score_chunks
from ._hc import hc_partitions
from ._kmeans import KMeans, kmeans_plusplus
from . import _draws as draws
from ._missing import (MISSING_VALUES, MissingRows, check_missing_rows, logsumexp_rows,
                       mean_imputed)
from ._online import model_statistics, stepwise_update
from ._mixture_init import (check_covariance_like, check_means_init, check_weights_init,
                            statistics_from_labels, statistics_from_responsibilities,
                            statistics_from_samples)
from ._ordering import check_finish_options, finish_fit
from ._outliers import OutlierMixin
from ._threads import effective_n_threads, sequential_blas
from ._validation import (check_nonnegative_float, check_positive_int, check_random_state,
                          check_sample_weight, fit_random_state, mean_weight)

INIT_PARAMS = ("kmeans", "k-means++", "random", "random_from_data", "hc")


def _kmeans_weight(draw_weight, sample_weight, dtype):
    """The weights for the k-means start: as given (integer weights stay integers, so
    its seeding treats them as copies) unless their sum is too large or small for it."""
    if draw_weight is None:
        return None
    with np.errstate(over="ignore"):
        total = float(np.sum(draw_weight))
    if not 1e-100 < total < 1e100 or (dtype == np.float32 and draw_weight.max() > 2**24):
        return sample_weight
    return draw_weight.astype(dtype)


def _degenerate_variances(covariances, means, nk, covariance_type):
    """Where a diag/spherical variance is not positive, scikit-learn's value instead.

    A component on one sample (the k-means++ and random_from_data starts) or on
    identical rows has variance 0 when ``reg_covar=0``. scikit-learn computes
    ``E[x^2] - E[x]^2`` with ``nk + 10 eps`` and so gets ``(nk / nk') 10 eps m^2 / nk'``
    there (m the mean, nk' = nk + 10 eps), a spike at the samples from which EM goes on.
    The same here, only where the exact variance is not positive (elsewhere it would
    tie the fit to the origin); at the origin it stays 0, and the fit fails as
    scikit-learn's does. Full and tied covariances of rank < d fail as there too.
    """
    if covariance_type not in ("diag", "spherical") or covariances.min() > 0:
        return covariances  # (the usual case, in one call)
    degenerate = covariances <= 0
    if not degenerate.any():  # (NaN: precisions_cholesky's error)
        return covariances
    square = means * means
    scale = _NK_FLOOR * nk / (nk + _NK_FLOOR) ** 2
    if covariance_type == "diag":
        floor = square * scale[:, None]
    else:
        floor = square.mean(axis=1) * scale
    return np.where(degenerate, floor, covariances)


class GaussianMixture(OutlierMixin, EstimatorBase):
    """Gaussian mixture fitted by EM on parallel Cython kernels.

    A drop-in for ``sklearn.mixture.GaussianMixture`` with the same parameters,
    attributes and answers, plus frequency ``sample_weight``, ``covariances_init``
    and ``n_threads``. float32 data is fitted in float32 (sums in float64), second
    moments are summed about a shift near the data and moved exactly to the means
    (no cancellation far from the origin, nor for groups far apart), and results do
    not depend on the number of threads.

    Parameters
    ----------
    n_components : int, default=1
        Number of mixture components.
    covariance_type : {"full", "tied", "diag", "spherical"}, default="full"
        "full": one general covariance matrix per component; "tied": one shared
        general matrix; "diag": one diagonal matrix per component; "spherical":
        one variance per component.
    tol : float, default=1e-3
        EM stops when the mean per-sample log-likelihood changes by less than
        ``tol`` between iterations.
    reg_covar : float, default=1e-6
        Added to the diagonal of every covariance, keeping it positive definite.
    max_iter : int, default=100
        Maximum number of EM iterations per initialisation (0: only initialise).
    n_init : int, default=1
        Number of initialisations; the one of highest lower bound is kept.
    init_params : {"kmeans", "k-means++", "random", "random_from_data", "hc"}, \
            default="kmeans"
        "kmeans": responsibilities from the labels of a weighted
        ``gmm_fast.KMeans(n_init=1)``; "k-means++": one sample per component from
        weighted k-means++ seeding; "random": uniform random responsibilities
        (normalised per row), drawn from a hash of each row's values and
        ``random_state`` (identical rows get the same); "random_from_data": one sample
        per component drawn with probability proportional to ``sample_weight``. Every
        start treats an integer weight as that many copies of the row, in any row
        order (not scikit-learn's draws for the same ``random_state``). "hc": the
        partition into ``n_components`` groups of model-based agglomerative
        hierarchical clustering (Fraley 1998, mclust's start; ``gmm_fast._hc``),
        deterministic: on at most ``_hc.HC_MAX_SAMPLES`` (2000) rows of positive
        weight it needs no ``random_state`` and ``n_init > 1`` repeats the same
        start; above that the hierarchy is built on 2000 rows drawn with
        ``random_state`` and the other rows join the group of nearest mean.
    weights_init : array-like of shape (n_components,), default=None
        Initial weights (in [0, 1], summing to 1).
    means_init : array-like of shape (n_components, n_features), default=None
        Initial means.
    precisions_init : array-like, default=None
        Initial precisions (inverse covariances), shaped as ``covariances_``.
    random_state : int, RandomState instance or None, default=None
        Seed of the initialisation and of ``sample``.
    warm_start : bool, default=False
        Start each ``fit`` from the previous solution (``n_init`` is then 1).
    verbose : int, default=0
        1 prints the iterations, 2 also the lower bound change and timings.
    verbose_interval : int, default=10
        Iterations between two prints.
    covariances_init : array-like, default=None
        Initial covariances (instead of ``precisions_init``, not with it).
    n_threads : int or None, default=None
        The most OpenMP threads a pass over the data may use (None:
        ``omp_get_max_threads()`` at fit time, so ``OMP_NUM_THREADS`` and
        threadpoolctl limits apply). A pass with less than ~4 ms of work runs on
        one (``gmm_fast._threads.MIN_SECONDS_PER_THREAD`` per thread): waking a
        thread would cost more than it saves. Results do not depend on it.
    sort_components : {None, "weights", "means"}, default=None
        Canonical order of the fitted components, so that labels do not depend on
        the initialisation: "weights" puts the largest weight first, "means" sorts
        the means lexicographically; None keeps EM's order.
    contamination : float or None, default=None
        Fraction in (0, 0.5] of the (weighted) training data to flag as outliers:
        ``fit`` then sets ``offset_`` for ``predict_outliers``/``decision_function``.
    missing_values : {"error", "marginalize"}, default="error"
        NaN cells: "error" rejects them; "marginalize" fits and scores rows by
        their observed cells (missing at random): a row's density is its marginal
        over its observed features, and EM takes the missing cells' conditional
        moments (``gmm_fast._missing``), so ``lower_bound_`` is the observed-data
        log-likelihood. A row with no observed cell, a feature never observed, or
        infinity are errors. The start (``init_params``) is computed from the
        complete rows, or from mean-imputed rows when fewer than
        ``10 * n_components`` rows are complete. ``impute`` fills NaN cells.
    learning_offset, learning_decay : float, default=1.0, 0.6
        ``partial_fit``'s step ``(t + learning_offset)^-learning_decay`` after t
        batches (stepwise EM; decay in (0.5, 1] for it to converge).

    Attributes
    ----------
    weights_ : ndarray of shape (n_components,)
    means_ : ndarray of shape (n_components, n_features)
    covariances_ : ndarray
        (k, d, d) full, (d, d) tied, (k, d) diag, (k,) spherical.
    precisions_ : ndarray
        Inverses of ``covariances_``, same shape.
    precisions_cholesky_ : ndarray
        Upper-triangular U with U U^T = precision, same shape.
    converged_ : bool
    n_iter_ : int
    lower_bound_ : float
        Weighted mean per-sample log-likelihood of the best run,
        ``sum_i w_i log p(x_i) / sum_i w_i``.
    lower_bounds_ : list of float
        ``lower_bound_`` at each iteration of the best run.
    n_samples_seen_ : float
        Weight of the data fitted on (``fit``'s, plus every ``partial_fit`` batch).
    n_steps_ : int
        ``partial_fit`` calls since the last ``fit``.
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (n_features_in_,)
        When X is a DataFrame with string column names.
    offset_ : float
        Log-density threshold of the outliers, when ``contamination`` is set.

    Notes
    -----
    An iteration is one pass over X: for every chunk of rows the kernel computes
    ``log pi_k - 0.5 |(x - m_k) P_k|^2 + log det P_k - d/2 log 2 pi``, the row
    log-sum-exp (the log-likelihood), the responsibilities ``r``, and adds
    ``sum w r`` and the first and second moments of ``w r x`` to float64 block
    buffers, about one shared shift s (a component far from s relative to its own
    spread: about its own mean); ``gmm_fast._em.estep_statistics`` moves them
    exactly to the means. The M-step (``gmm_fast._em.mstep``) then gives
    scikit-learn's update. Convergence, ``n_init``, ``warm_start`` and the final
    E-step (``fit_predict(X) == fit(X).predict(X)``) follow scikit-learn. libgomp
    is not fork-safe: use the "spawn" start method with multiprocessing.

    Examples
    --------
    >>> import numpy as np
    >>> from gmm_fast import GaussianMixture
    >>> X = np.array([[1, 2], [1, 4], [1, 0], [10, 2], [10, 4], [10, 0]])
    >>> gm = GaussianMixture(n_components=2, random_state=0).fit(X)
    >>> gm.means_[np.argsort(gm.means_[:, 0])]
    array([[ 1.,  2.],
           [10.,  2.]])
    >>> bool(gm.predict([[0, 0]])[0] != gm.predict([[12, 3]])[0])
    True
    """

    _estimator_type = "DensityEstimator"

    def __init__(self, n_components=1, *, covariance_type="full", tol=1e-3, reg_covar=1e-6,
                 max_iter=100, n_init=1, init_params="kmeans", weights_init=None,
                 means_init=None, precisions_init=None, random_state=None, warm_start=False,
                 verbose=0, verbose_interval=10, covariances_init=None, n_threads=None,
                 sort_components=None, contamination=None, missing_values="error",
                 learning_offset=1.0, learning_decay=0.6):
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.tol = tol
        self.reg_covar = reg_covar
        self.max_iter = max_iter
        self.n_init = n_init
        self.init_params = init_params
        self.weights_init = weights_init
        self.means_init = means_init
        self.precisions_init = precisions_init
        self.random_state = random_state
        self.warm_start = warm_start
        self.verbose = verbose
        self.verbose_interval = verbose_interval
        self.covariances_init = covariances_init
        self.n_threads = n_threads
        self.sort_components = sort_components
        self.contamination = contamination
        self.missing_values = missing_values
        self.learning_offset = learning_offset
        self.learning_decay = learning_decay

    # -- parameters --------------------------------------------------------------

    def _check_params(self, n_samples, n_features):
        n_components = check_positive_int(self.n_components, "n_components")
        helpers = _covariance_helpers(self.covariance_type)
        check_nonnegative_float(self.tol, "tol")
        check_nonnegative_float(self.reg_covar, "reg_covar")
        check_positive_int(self.max_iter, "max_iter", minimum=0)
        check_positive_int(self.n_init, "n_init")
        check_positive_int(self.verbose_interval, "verbose_interval")
        if self.init_params not in INIT_PARAMS:
            raise ValueError(f"init_params={self.init_params!r} should be one of "
                             f"{', '.join(map(repr, INIT_PARAMS))}.")
        if n_samples < n_components:
            raise ValueError(f"n_samples={n_samples} should be >= n_components={n_components}.")
        if self.precisions_init is not None and self.covariances_init is not None:
            raise ValueError("Give either precisions_init or covariances_init, not both.")
        init = {}
        if self.weights_init is not None:
            init["weights"] = check_weights_init(self.weights_init, n_components)
        if self.means_init is not None:
            init["means"] = check_means_init(self.means_init, n_components, n_features)
        if self.precisions_init is not None:
            precisions = check_covariance_like(self.precisions_init, "precisions_init",
                                               self.covariance_type, n_components, n_features)
            init["precisions_cholesky"] = helpers.precisions_cholesky_from_precisions(precisions)
            init["covariances"] = helpers.covariances_from_precisions(precisions)
        if self.covariances_init is not None:
            init["covariances"] = check_covariance_like(
                self.covariances_init, "covariances_init", self.covariance_type,
                n_components, n_features)
        return n_components, helpers, init

    def _initial_parameters(self, X, sample_weight, n_components, helpers, init,
                            random_state, n_threads, draw_weight=None):
        """(weights, means, covariances, precisions_cholesky) in float64 to start EM from.

        ``draw_weight``: the weights as given (float64), from which the random starts
        draw, so that an integer weight is that many copies of the row there too
        (``sample_weight``, scaled to mean 1, is not integer).
        """
        weights = means = covariances = None
        if not ("weights" in init and "means" in init and "covariances" in init):
            covariance_type = self.covariance_type
            if self.init_params == "kmeans":
                # X and the weights (X's dtype) are checked: KMeans.fit's checks are
                # skipped (a pass over X), and so is its warning about fewer distinct
                # clusters (duplicated rows): EM copes.
                labels = KMeans(n_clusters=n_components, n_init=1, random_state=random_state,
                                n_threads=n_threads)._fit(
                    X, _kmeans_weight(draw_weight, sample_weight, X.dtype), warn=False).labels_
                stats = statistics_from_labels(X, sample_weight, labels, n_components,
                                               covariance_type)
            elif self.init_params == "hc":
                # Model-based hierarchical clustering cut at n_components (_hc); on
                # more than HC_MAX_SAMPLES rows built on a sample drawn with random_state.
                labels = hc_partitions(X, [n_components], sample_weight,
                                       random_state)[n_components]
                stats = statistics_from_labels(X, sample_weight, labels, n_components,
                                               covariance_type)
            elif self.init_params == "random":
                # Per row from a hash of its values and one draw: identical rows (a
                # weighted row's repeats) get the same responsibilities, in any order.
                seed = int(random_state.randint(0, 2**62))
                stats = statistics_from_responsibilities(
                    X, sample_weight, n_components, covariance_type,
                    lambda start, stop: draws.random_responsibilities(
                        X, start, stop, n_components, seed))
            else:
                if self.init_params == "k-means++":
                    # Keywords only: main's public kmeans_plusplus takes them so.
                    indices = kmeans_plusplus(X, n_components, sample_weight=draw_weight,
                                              random_state=random_state,
                                              n_threads=n_threads)[1]
                else:  # random_from_data, as KMeans' init="random" (_draws)
                    indices = draws.draw_rows(draw_weight, len(X), n_components,
                                              random_state, draws.canonical_order(X),
                                              replace=False)
                stats = statistics_from_samples(X, sample_weight, indices, covariance_type,
                                                draw_weight)
            weights, means, covariances = mstep(stats, covariance_type, self.reg_covar)
            if (covariance_type == "tied" and self.reg_covar == 0
                    and self.init_params in ("k-means++", "random_from_data")):
                # Single samples give a shared covariance of 0 (scikit-learn's formula
                # gives a broad one there: its tied scatter takes all rows): the data's.
                whole = statistics_from_labels(X, sample_weight, np.zeros(len(X), np.intp),
                                               1, "tied")
                covariances = mstep(whole, "tied", 0.0)[2]
            covariances = _degenerate_variances(covariances, means, stats.nk, covariance_type)
            # As scikit-learn: weights are nk / sum of sample weights, so that samples
            # chosen as single-member components start with a small weight.
            weights = (stats.nk + _NK_FLOOR) / stats.sum_weights
        weights = init.get("weights", weights)
        means = init.get("means", means)
        covariances = init.get("covariances", covariances)
        if "precisions_cholesky" in init:
            precisions_cholesky = init["precisions_cholesky"]
        else:
            precisions_cholesky = helpers.precisions_cholesky(covariances, self.reg_covar,
                                                              X.dtype)
        return weights, means, covariances, precisions_cholesky

    def _fitted_parameters(self):
        """The fitted parameters in float64, to warm-start from."""
        return tuple(np.asarray(a, dtype=np.float64) for a in (
            self.weights_, self.means_, self.covariances_, self.precisions_cholesky_))

    def _warm_parameters(self, n_components, n_features, helpers):
        """The fitted parameters to continue from, when their shapes fit this configuration
        (tied and diag covariances cannot be told apart when k == d)."""
        expected = ((n_components, n_features), helpers.shape(n_components, n_features))
        if (self.means_.shape, self.covariances_.shape) != expected:
            raise ValueError(
                f"warm_start=True continues from the fitted model (means {self.means_.shape}, "
                f"covariances {self.covariances_.shape}), which does not match "
                f"n_components={n_components}, covariance_type={self.covariance_type!r} and "
                f"X's {n_features} features. Fit with warm_start=False to start anew.")
        return self._fitted_parameters()

    def _set_parameters(self, params, dtype):
        weights, means, covariances, precisions_cholesky = params
        helpers = COVARIANCE_TYPES[self.covariance_type]
        precisions = helpers.precisions(np.asarray(precisions_cholesky, dtype=np.float64))
        with np.errstate(over="ignore", under="ignore"):  # reported below
            fitted = {"weights_": weights, "means_": means, "covariances_": covariances,
                      "precisions_cholesky_": precisions_cholesky, "precisions_": precisions}
            fitted = {name: np.asarray(value, dtype=dtype) for name, value in fitted.items()}
        out_of_range = [name for name in ("covariances_", "precisions_")
                        if not (np.isfinite(fitted[name]).all() and fitted[name].any())]
        if out_of_range:
            raise ValueError(
                f"The fitted {' and '.join(out_of_range)} do not fit in {np.dtype(dtype).name} "
                "(the dtype of X): the data's scale is too large or too small for it. "
                "Rescale X (e.g. StandardScaler) or pass float64 data.")
        for name, value in fitted.items():
            setattr(self, name, value)

    # -- fit -----------------------------------------------------------------------

    def _fit(self, X, sample_weight):
        """EM from ``n_init`` starts; returns the validated X for a final E-step."""
        X = self._check_fit_data(X, min_samples=2, **self._nan_options())
        check_finish_options(self)
        n_samples, n_features = X.shape
        n_components, helpers, init = self._check_params(n_samples, n_features)
        checked_weight = None
        if sample_weight is not None:  # None: unit weights, and no n-vector of ones
            checked_weight = check_sample_weight(sample_weight, n_samples, np.float64)
            n_weighted = np.count_nonzero(checked_weight)
            if n_weighted < n_components:  # frequency weights: zero-weight rows are absent
                raise ValueError(
                    f"sample_weight has {n_weighted} positive weight(s), fewer than "
                    f"n_components={n_components}: rows of weight 0 do not count as samples.")
            # Only their ratios matter: scaled to mean 1 (in float64, then X's dtype) so
            # that the 10 eps floor on nk stays negligible and float32 holds them.
            sample_weight = (checked_weight / mean_weight(checked_weight)).astype(X.dtype)
        # The random starts draw from the weights as given (integers stay integers:
        # copies of rows, _draws), unless their sum is out of float64's easy range.
        draw_weight = checked_weight
        if checked_weight is not None:
            with np.errstate(over="ignore"):
                if not 1e-100 < float(np.sum(checked_weight)) < 1e100:
                    draw_weight = sample_weight.astype(np.float64)
        rows, row_weight, missing = X, sample_weight, None
        start_rows, start_weight, start_draw_weight = X, sample_weight, draw_weight
        if self.missing_values == "marginalize" and np.isnan(X).any():
            check_missing_rows(X)
            missing = MissingRows(X, sample_weight)
            rows = X[missing.complete]  # (the kernels' rows: a copy)
            row_weight = None if sample_weight is None else sample_weight[missing.complete]
            n_complete = len(rows) if row_weight is None else np.count_nonzero(row_weight)
            if n_complete >= 10 * n_components:
                start_rows, start_weight = rows, row_weight
                start_draw_weight = (None if draw_weight is None
                                     else draw_weight[missing.complete])
            else:
                start_rows = mean_imputed(X)
        n_threads = effective_n_threads(self.n_threads)
        # The same size every iteration: the E-step's threads are chosen once.
        pass_threads = estep_threads(n_threads, len(rows), n_features, n_components,
                                     self.covariance_type)
        covariance_type, reg_covar = self.covariance_type, float(self.reg_covar)

        def start(random_state):
            return self._initial_parameters(start_rows, start_weight, n_components, helpers,
                                            init, random_state, n_threads,
                                            draw_weight=start_draw_weight)

        def step(params):
            return em_step(rows, row_weight, params, covariance_type, reg_covar,
                           pass_threads, missing)

        self._run_em(start, step, n_components, n_features, X.dtype, stacklevel=4)
        with np.errstate(over="ignore"):  # (weights near the float64 limit: inf)
            self.n_samples_seen_ = (float(n_samples) if checked_weight is None
                                    else float(checked_weight.sum()))
        finish_fit(self, X, checked_weight)  # (float64: the outlier threshold counts them)
        return X

    def _run_em(self, start, step, n_components, n_features, dtype, stacklevel):
        """EM from ``n_init`` starts (or the warm start), keeping the best; sets the
        fitted attributes. The driver of every fit: ``start(random_state)`` gives a
        start's parameters, ``step(params)`` one iteration's ``(stats, (weights, means,
        covariances))`` over the data, wherever it is (in memory, or a dask array)."""
        helpers = COVARIANCE_TYPES[self.covariance_type]
        covariance_type, reg_covar, tol = self.covariance_type, float(self.reg_covar), self.tol
        do_init = not (self.warm_start and hasattr(self, "converged_"))
        n_init = self.n_init if do_init else 1
        best = None
        with sequential_blas(), fit_random_state(self.random_state) as random_state:
            for trial in range(n_init):
                if self.verbose:
                    print(f"Initialization {trial}")
                    start_time = iteration_time = perf_counter()
                if do_init:
                    params = start(random_state)
                    lower_bound = -np.inf
                else:
                    params = self._warm_parameters(n_components, n_features, helpers)
                    lower_bound = self.lower_bound_
                lower_bounds = []
                converged = False
                n_iter = 0
                for n_iter in range(1, self.max_iter + 1):
                    previous = lower_bound
                    stats, (weights, means, covariances) = step(params)
                    covariances = _degenerate_variances(covariances, means, stats.nk,
                                                        covariance_type)
                    precisions_cholesky = helpers.precisions_cholesky(covariances, reg_covar,
                                                                      dtype)
                    params = (weights, means, covariances, precisions_cholesky)
                    lower_bound = stats.log_likelihood / stats.sum_weights
                    lower_bounds.append(lower_bound)
                    change = lower_bound - previous
                    if self.verbose and n_iter % self.verbose_interval == 0:
                        if self.verbose >= 2:
                            now = perf_counter()
                            print(f"  Iteration {n_iter}\t time lapse {now - iteration_time:.5f}s"
                                  f"\t ll change {change:.5f}\t lower bound {lower_bound:.10g}")
                            iteration_time = now
                        else:
                            print(f"  Iteration {n_iter}")
                    if abs(change) < tol:
                        converged = True
                        break
                if self.verbose:
                    status = "converged" if converged else "did not converge"
                    if self.verbose >= 2:
                        lapse = perf_counter() - start_time
                        print(f"Initialization {status}. time lapse {lapse:.5f}s"
                              f"\t lower bound {lower_bound:.5f}.")
                    else:
                        print(f"Initialization {status}.")
                if best is None or self.max_iter == 0 or lower_bound > best[1]:
                    best = (params, lower_bound, n_iter, lower_bounds, converged)

        params, lower_bound, n_iter, lower_bounds, converged = best
        if self.max_iter == 0:
            lower_bound = -np.inf
        self._set_parameters(params, dtype)
        for name in ("_stepwise", "n_steps_"):  # (partial_fit continues from this fit)
            self.__dict__.pop(name, None)
        self.converged_ = converged
        self.n_iter_ = n_iter
        self.lower_bound_ = float(lower_bound)
        self.lower_bounds_ = [float(value) for value in lower_bounds]
        if not converged and self.max_iter > 0:
            warnings.warn(
                "Best performing initialization did not converge. Try different init "
                "parameters, or increase max_iter, tol, or check for degenerate data.",
                sklearn_compatible(ConvergenceWarning), stacklevel=stacklevel)

    def fit(self, X, y=None, sample_weight=None):
        """Estimate the mixture parameters with EM.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data; float32 stays float32, other numbers become float64.
        y : Ignored
            Not used, present for API consistency.
        sample_weight : array-like of shape (n_samples,), default=None
            Frequency weights (>= 0, not all zero): an integer weight acts as that
            many copies of the row, in EM and in the initialisation.

        Returns
        -------
        self : GaussianMixture
            The fitted estimator.
        """
        if is_dask_collection(X):  # the same EM over the blocks (gmm_fast._dask)
            from ._dask import fit_gaussian_mixture
            return fit_gaussian_mixture(self, X, sample_weight)
        self._fit(X, sample_weight)
        return self

    def fit_predict(self, X, y=None, sample_weight=None):
        """Fit, then return the most probable component of each training sample.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data.
        y : Ignored
            Not used, present for API consistency.
        sample_weight : array-like of shape (n_samples,), default=None
            Frequency weights.

        Returns
        -------
        labels : ndarray of shape (n_samples,)
            Equal to ``fit(X).predict(X)``.
        """
        if is_dask_collection(X):
            return self.fit(X, sample_weight=sample_weight).predict(X)
        X = self._fit(X, sample_weight)
        return self._score(X, labels=True, log_norm=False)[2]

    def partial_fit(self, X, y=None, sample_weight=None):
        """Fit the first batch as ``fit`` does, then one step of stepwise (online) EM
        per batch: one kernel pass.

        The running sufficient statistics per unit weight move towards the batch's
        by ``(t + learning_offset)^-learning_decay`` (t: batches seen, in batches of
        this one's weight), and the parameters are their M-step (``gmm_fast._online``;
        Cappé & Moulines 2009). The first call (on an unfitted model) is ``fit`` on
        its batch, with its ``init_params``, ``n_init`` and ``max_iter``: stepwise
        EM cannot leave a poor start, so it starts from a converged one. On a model
        fitted by ``fit`` the running statistics start as the fitted model's own,
        worth the weight it was fitted on. The fitted attributes are current after
        each call; ``lower_bound_`` is the batch's mean log-likelihood before the
        step. Components keep their order (``sort_components`` applies to the first
        call only). With ``missing_values="marginalize"`` every batch may have NaN
        cells (their rows' statistics as in ``fit``).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            A batch (the first needs at least ``n_components`` rows).
        y : Ignored
        sample_weight : array-like of shape (n_samples,), default=None
            Frequency weights.

        Returns
        -------
        self : GaussianMixture
        """
        decay = check_nonnegative_float(self.learning_decay, "learning_decay")
        if not 0 < decay <= 1:
            raise ValueError(f"learning_decay={self.learning_decay!r} should be in (0, 1] "
                             "(stepwise EM converges for (0.5, 1]).")
        offset = check_nonnegative_float(self.learning_offset, "learning_offset")
        if not hasattr(self, "means_"):
            self._fit(X, sample_weight)
            self.n_steps_ = 1
            return self
        X = self._validated(X)
        n_samples, n_features = X.shape
        weight = (None if sample_weight is None
                  else check_sample_weight(sample_weight, n_samples, X.dtype))
        helpers = _covariance_helpers(self.covariance_type)
        n_threads = effective_n_threads(self.n_threads)
        params = self._fitted_parameters()
        state = getattr(self, "_stepwise", None)
        if state is None:  # fitted by fit (or by the first partial_fit), or loaded
            state = model_statistics(*params[:3], self.covariance_type, self.reg_covar,
                                     getattr(self, "n_samples_seen_", n_samples))
        rows, row_weight, missing = X, weight, None
        if self.missing_values == "marginalize" and np.isnan(X).any():
            missing = MissingRows(X, weight)
            rows = X[missing.complete]
            row_weight = None if weight is None else weight[missing.complete]
        with sequential_blas():
            batch = data_statistics(
                rows, row_weight, params, self.covariance_type,
                estep_threads(n_threads, len(rows), n_features, len(params[0]),
                              self.covariance_type), missing)
            state = stepwise_update(state, batch, self.covariance_type, offset, decay)
            weights, means, covariances = mstep(state.statistics, self.covariance_type,
                                                self.reg_covar)
            precisions_cholesky = helpers.precisions_cholesky(covariances, self.reg_covar,
                                                              X.dtype)
        self._set_parameters((weights, means, covariances, precisions_cholesky), X.dtype)
        self._stepwise = state
        self.n_samples_seen_ = state.seen
        self.n_steps_ = getattr(self, "n_steps_", 0) + 1
        self.lower_bound_ = batch.log_likelihood / batch.sum_weights
        return self

    def _nan_options(self):
        """``check_array``'s NaN options for ``missing_values``."""
        if self.missing_values not in MISSING_VALUES:
            raise ValueError(f"missing_values={self.missing_values!r} should be one of "
                             f"{', '.join(map(repr, MISSING_VALUES))}.")
        if self.missing_values == "marginalize":
            return {"allow_nan": True}
        return {"nan_advice": "drop or impute those rows first, or fit with "
                              "missing_values='marginalize' (EM on the observed cells)."}

    def _score(self, X, resp=False, labels=False, log_norm=True):
        """``(log_norm, resp, labels)`` (None when not asked) for validated X, in one pass."""
        if self.missing_values == "marginalize" and np.isnan(X).any():
            return self._score_missing(X, resp, labels, log_norm)
        dtype = self.means_.dtype
        n_samples = X.shape[0]
        n_components = self.means_.shape[0]
        params = _KernelParameters(self.weights_, self.means_, self.precisions_cholesky_,
                                   self.covariance_type, dtype, self.covariances_)
        out_log_norm = np.empty(n_samples if log_norm else 0, dtype=dtype)
        out_resp = np.empty((n_samples if resp else 0, n_components), dtype=dtype)
        out_labels = np.empty(n_samples if labels else 0, dtype=np.int64)
        n_threads = score_threads(effective_n_threads(self.n_threads), n_samples,
                                  X.shape[1], n_components, self.covariance_type)
        with sequential_blas():
            score_chunks(params.code, X, *params.arguments(),
                         out_log_norm, out_resp, out_labels, n_threads)
        return ((out_log_norm if log_norm else None), (out_resp if resp else None),
                (out_labels if labels else None))

    def _score_missing(self, X, resp, labels, log_norm):
        """``_score`` for rows with NaN cells: complete rows by the kernels, the others by
        their marginal densities (``_missing``)."""
        missing = MissingRows(X)
        n_samples, n_components = len(X), self.means_.shape[0]
        dtype = self.means_.dtype
        out_log_norm = np.empty(n_samples, dtype=dtype) if log_norm else None
        out_resp = np.empty((n_samples, n_components), dtype=dtype) if resp else None
        out_labels = np.empty(n_samples, dtype=np.int64) if labels else None
        outputs = (out_log_norm, out_resp, out_labels)
        if len(missing.complete):
            for out, part in zip(outputs, self._score(X[missing.complete], resp, labels,
                                                      log_norm)):
                if out is not None:
                    out[missing.complete] = part
        for rows, log_prob in missing.score(self.weights_, self.means_, self.covariances_,
                                            self.covariance_type):
            row_norm = logsumexp_rows(log_prob)
            if log_norm:
                out_log_norm[rows] = row_norm
            if resp:
                out_resp[rows] = np.exp(log_prob - row_norm[:, None])
            if labels:
                out_labels[rows] = np.argmax(log_prob, axis=1)
        return outputs

    def _validated(self, X):
        self._check_fitted("means_")
        X = self._check_predict_data(X, self.means_.dtype, **self._nan_options())
        if self.missing_values == "marginalize" and np.isnan(X).any():
            check_missing_rows(X, columns=False)
        return X

    def impute(self, X, n_draws=None, random_state=None):
        """X with each missing (NaN) cell replaced by its conditional expectation, or
        ``n_draws`` multiple imputations drawn from the conditional mixture.

        ``E[x_m | x_o] = sum_k r_k(x_o) (mu_k,m + S_k,mo S_k,oo^-1 (x_o - mu_k,o))``,
        with ``r_k(x_o)`` the responsibilities of the observed cells' marginal
        densities. A draw picks component k with probability ``r_k(x_o)``, then
        ``x_m`` from ``N(E[x_m | x_o, k], S_k,mm - S_k,mo S_k,oo^-1 S_k,om)``. Needs
        ``missing_values="marginalize"``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data with NaN cells; every row needs an observed cell.
        n_draws : int or None, default=None
            None: the conditional expectation. An int: that many draws.
        random_state : int, RandomState instance or None, default=None
            Seed of the draws.

        Returns
        -------
        X_imputed : ndarray of shape (n_samples, n_features), or (n_draws, n_samples,
            n_features) with ``n_draws``
            Copies of X, in the model's dtype, without NaN.
        """
        if self.missing_values != "marginalize":
            raise ValueError("impute needs a model fitted with missing_values='marginalize'.")
        X = np.array(self._validated(X), copy=True)
        missing = MissingRows(X)
        model = (self.weights_, self.means_, self.covariances_, self.covariance_type)
        if n_draws is not None:
            n_draws = check_positive_int(n_draws, "n_draws")
            draws = np.repeat(X[None], n_draws, axis=0)
            for rows, completed in missing.conditional_draws(
                    *model, n_draws, check_random_state(random_state)):
                draws[:, rows] = np.where(np.isnan(X[rows]), completed, X[rows])
            return draws
        for rows, completed in missing.conditional_means(*model):
            X[rows] = np.where(np.isnan(X[rows]), completed, X[rows])
        return X

    def score_samples(self, X):
        """Log-likelihood of each sample under the mixture.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        log_prob : ndarray of shape (n_samples,)
            ``log sum_k pi_k N(x_i | k)``, in the model's dtype.
        """
        if is_dask_collection(X):  # a dask array, computed lazily block by block
            from ._dask import gmm_per_sample
            return gmm_per_sample(self, X, "score_samples")
        return self._score(self._validated(X))[0]

    def score(self, X, y=None, sample_weight=None):
        """Weighted mean per-sample log-likelihood of X.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : Ignored
            Not used, present for API consistency.
        sample_weight : array-like of shape (n_samples,), default=None
            Frequency weights.

        Returns
        -------
        log_likelihood : float
            ``sum_i w_i log p(x_i) / sum_i w_i``.
        """
        if is_dask_collection(X):
            from ._dask import gmm_total_log_likelihood
            total, weight, _ = gmm_total_log_likelihood(self, X, sample_weight)
            return total / weight
        X = self._validated(X)
        log_norm = self._score(X)[0]
        if sample_weight is None:
            # numpy's mean in the model's dtype, as scikit-learn's: score(X) is then
            # score_samples(X).mean() to the last bit in float32 too.
            return float(log_norm.mean())
        log_norm = log_norm.astype(np.float64)
        sample_weight = check_sample_weight(sample_weight, len(X), np.float64)
        return float(log_norm @ sample_weight / sample_weight.sum())

    def predict(self, X):
        """Most probable component of each sample.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        labels : ndarray of shape (n_samples,)
        """
        if is_dask_collection(X):  # a dask array, computed lazily block by block
            from ._dask import gmm_per_sample
            return gmm_per_sample(self, X, "predict")
        return self._score(self._validated(X), labels=True, log_norm=False)[2]

    def predict_proba(self, X):
        """Posterior probability of each component for each sample.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        resp : ndarray of shape (n_samples, n_components)
            Rows sum to 1.
        """
        if is_dask_collection(X):  # a dask array, computed lazily block by block
            from ._dask import gmm_per_sample
            return gmm_per_sample(self, X, "predict_proba")
        return self._score(self._validated(X), resp=True, log_norm=False)[1]

    def _n_parameters(self):
        n_components, n_features = self.means_.shape
        helpers = COVARIANCE_TYPES[self.covariance_type]
        return int(helpers.n_covariance_parameters(n_components, n_features)
                   + n_features * n_components + n_components - 1)

    def bic(self, X):
        """Bayesian information criterion of the model on X (lower is better).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        bic : float
            ``-2 * sum_i log p(x_i) + n_parameters * log(n_samples)``.
        """
        if is_dask_collection(X):
            from ._dask import gmm_total_log_likelihood
            total, _, n_samples = gmm_total_log_likelihood(self, X)
            return -2 * total + self._n_parameters() * math.log(n_samples)
        X = self._validated(X)
        total = float(np.sum(self._score(X)[0], dtype=np.float64))
        return -2 * total + self._n_parameters() * math.log(X.shape[0])

    def aic(self, X):
        """Akaike information criterion of the model on X (lower is better).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        aic : float
            ``-2 * sum_i log p(x_i) + 2 * n_parameters``.
        """
        if is_dask_collection(X):
            from ._dask import gmm_total_log_likelihood
            return -2 * gmm_total_log_likelihood(self, X)[0] + 2 * self._n_parameters()
        X = self._validated(X)
        total = float(np.sum(self._score(X)[0], dtype=np.float64))
        return -2 * total + 2 * self._n_parameters()

    def sample(self, n_samples=1):
        """Draw samples from the fitted mixture.

        Parameters
        ----------
        n_samples : int, default=1

        Returns
        -------
        X : ndarray of shape (n_samples, n_features)
            In the model's dtype, grouped by component.
        y : ndarray of shape (n_samples,)
            The component of each sample.
        """
        self._check_fitted("means_")
        try:
            n_samples = check_positive_int(n_samples, "n_samples")
        except ValueError as exc:  # scikit-learn's words first
            raise ValueError(f"Invalid value for 'n_samples': {n_samples!r}. The sampling "
                             f"requires at least one sample: {exc}") from None
        rng = check_random_state(self.random_state)
        means = self.means_.astype(np.float64)
        covariances = self.covariances_.astype(np.float64)
        weights = self.weights_.astype(np.float64)
        counts = rng.multinomial(n_samples, weights / weights.sum())
        n_features = means.shape[1]
        parts = []
        for k, (mean, count) in enumerate(zip(means, counts)):
            if self.covariance_type == "full":
                parts.append(rng.multivariate_normal(mean, covariances[k], int(count)))
            elif self.covariance_type == "tied":
                parts.append(rng.multivariate_normal(mean, covariances, int(count)))
            else:
                parts.append(mean + rng.standard_normal(size=(count, n_features))
                             * np.sqrt(covariances[k]))
        labels = np.concatenate([np.full(count, k, dtype=np.int64)
                                 for k, count in enumerate(counts)])
        return np.vstack(parts).astype(self.means_.dtype), labels

