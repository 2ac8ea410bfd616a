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
from ._dask import is_dask_array
from ._em import (_NK_FLOOR, _covariance_helpers, _KernelParameters, em_step, estep_threads,
                  mstep, score_threads)
from ._estep import score_chunks
from ._kmeans import KMeans, kmeans_plusplus
from ._mixture_init import (check_covariance_like, check_means_init, check_weights_init,
                            statistics_from_responsibilities, statistics_from_samples)
from ._ordering import check_finish_options, finish_fit
from ._outliers import OutlierMixin
from ._threads import effective_n_threads, sequential_blas
from ._validation import (check_nonnegative_float, check_positive_int, check_random_state,
                          check_sample_weight, fit_random_state, mean_weight)

INIT_PARAMS = ("kmeans", "k-means++", "random", "random_from_data")

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
    init_params : {"kmeans", "k-means++", "random", "random_from_data"}, \
            default="kmeans"
        "kmeans": responsibilities from the labels of a weighted
        ``gmm_fast.KMeans(n_init=1)``; "k-means++": one sample per component from
        weighted k-means++ seeding; "random": uniform random responsibilities
        (normalised per row); "random_from_data": one sample per component drawn
        with probability proportional to ``sample_weight``.
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
                 sort_components=None, contamination=None):
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
                            random_state, n_threads):
        """(weights, means, covariances, precisions_cholesky) in float64 to start EM from."""
        weights = means = covariances = None
        if not ("weights" in init and "means" in init and "covariances" in init):
            covariance_type = self.covariance_type
            unit = sample_weight is None or bool(np.all(sample_weight == 1))
            if self.init_params == "kmeans":
                # X and the weights (mean 1, X's dtype) are checked: KMeans.fit's checks
                # are skipped (a pass over X), and so is its warning about fewer
                # distinct clusters (duplicated rows): EM copes.
                labels = KMeans(n_clusters=n_components, n_init=1, random_state=random_state,
                                n_threads=n_threads)._fit(X, sample_weight, warn=False).labels_
                stats = statistics_from_responsibilities(
                    X, sample_weight, n_components, covariance_type,
                    lambda start, stop: labels[start:stop])
            elif self.init_params == "random":
                state = random_state.get_state()

                def resp(start, stop):
                    values = random_state.uniform(size=(stop - start, n_components))
                    return values / values.sum(axis=1)[:, None]

                stats = statistics_from_responsibilities(
                    X, sample_weight, n_components, covariance_type, resp,
                    replay=lambda: random_state.set_state(state))
            else:
                if self.init_params == "k-means++":
                    # Keywords only: main's public kmeans_plusplus takes them so.
                    indices = kmeans_plusplus(X, n_components, sample_weight=sample_weight,
                                              random_state=random_state,
                                              n_threads=n_threads)[1]
                else:
                    indices = self._samples_from_data(len(X), sample_weight, n_components,
                                                      unit, random_state)
                stats = statistics_from_samples(X, sample_weight, indices, covariance_type)
            weights, means, covariances = mstep(stats, covariance_type, self.reg_covar)
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

    @staticmethod
    def _samples_from_data(n_samples, sample_weight, n_components, unit, random_state):
        if unit:  # the same draws as scikit-learn
            return random_state.choice(n_samples, size=n_components, replace=False)
        positive = int(np.count_nonzero(sample_weight))
        if positive < n_components:
            raise ValueError(
                f"init_params='random_from_data' needs n_components={n_components} samples "
                f"of positive weight; sample_weight has {positive}.")
        p = sample_weight.astype(np.float64)
        return random_state.choice(n_samples, size=n_components, replace=False, p=p / p.sum())

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
        X = self._check_fit_data(X, min_samples=2)
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
        n_threads = effective_n_threads(self.n_threads)
        # The same size every iteration: the E-step's threads are chosen once.
        pass_threads = estep_threads(n_threads, n_samples, n_features, n_components,
                                     self.covariance_type)
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
                    params = self._initial_parameters(X, sample_weight, n_components, helpers,
                                                      init, random_state, n_threads)
                    lower_bound = -np.inf
                else:
                    params = self._warm_parameters(n_components, n_features, helpers)
                    lower_bound = self.lower_bound_
                lower_bounds = []
                converged = False
                n_iter = 0
                for n_iter in range(1, self.max_iter + 1):
                    previous = lower_bound
                    stats, (weights, means, covariances) = em_step(
                        X, sample_weight, params, covariance_type, reg_covar, pass_threads)
                    precisions_cholesky = helpers.precisions_cholesky(covariances, reg_covar,
                                                                      X.dtype)
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
        self._set_parameters(params, X.dtype)
        self.converged_ = converged
        self.n_iter_ = n_iter
        self.lower_bound_ = float(lower_bound)
        self.lower_bounds_ = [float(value) for value in lower_bounds]
        if not converged and self.max_iter > 0:
            warnings.warn(
                "Best performing initialization did not converge. Try different init "
                "parameters, or increase max_iter, tol, or check for degenerate data.",
                sklearn_compatible(ConvergenceWarning), stacklevel=3)
        finish_fit(self, X, checked_weight)  # (float64: the outlier threshold counts them)
        return X

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
        if is_dask_array(X):  # the same EM over the blocks (gmm_fast._dask)
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
        if is_dask_array(X):
            return self.fit(X, sample_weight=sample_weight).predict(X)
        X = self._fit(X, sample_weight)
        return self._score(X, labels=True, log_norm=False)[2]

    # -- per-sample outputs -----------------------------------------------------------

    def _score(self, X, resp=False, labels=False, log_norm=True):
        """``(log_norm, resp, labels)`` (None when not asked) for validated X, in one pass."""
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

    def _validated(self, X):
        self._check_fitted("means_")
        return self._check_predict_data(X, self.means_.dtype)

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
        if is_dask_array(X):  # a dask array, computed lazily block by block
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
        if is_dask_array(X):
            from ._dask import gmm_total_log_likelihood
            total, weight, _ = gmm_total_log_likelihood(self, X, sample_weight)
            return total / weight
        X = self._validated(X)
        log_norm = self._score(X)[0].astype(np.float64)
        if sample_weight is None:
            return float(log_norm.mean())
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
        if is_dask_array(X):  # a dask array, computed lazily block by block
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
        if is_dask_array(X):  # a dask array, computed lazily block by block
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
        if is_dask_array(X):
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
        if is_dask_array(X):
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
        n_samples = check_positive_int(n_samples, "n_samples")
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

