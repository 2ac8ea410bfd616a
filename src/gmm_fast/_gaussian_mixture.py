"""Gaussian mixtures by EM: the reusable E-step primitive, the M-step and the estimator.

``estep_statistics`` is the one primitive every fitting mode shares: a chunk of X,
its weights and the current parameters in, weighted sufficient statistics out,
which add up across chunks (``a + b``). ``mstep`` turns summed statistics into new
parameters. ``GaussianMixture.fit`` is one driver over the two for data in memory.
"""
import math
import warnings
from dataclasses import dataclass
from time import perf_counter

import numpy as np

from ._base import ConvergenceWarning, EstimatorBase, sklearn_compatible
from ._covariances import COVARIANCE_TYPES, LOG_2PI
from ._estep import COVARIANCE_CODES, estep, score_chunks
from ._kmeans import KMeans, kmeans_plusplus
from ._mixture_init import (check_covariance_like, check_means_init, check_weights_init,
                            statistics_from_responsibilities, statistics_from_samples)
from ._ordering import check_finish_options, finish_fit
from ._outliers import OutlierMixin
from ._threads import effective_n_threads, n_blocks, sequential_blas
from ._validation import (check_nonnegative_float, check_positive_int, check_random_state,
                          check_sample_weight)

INIT_PARAMS = ("kmeans", "k-means++", "random", "random_from_data")

# Added to nk before dividing, as scikit-learn does, so an empty component gets
# finite means (its shift) and covariances (reg_covar) instead of 0/0.
_NK_FLOOR = 10 * np.finfo(np.float64).eps


def _covariance_helpers(covariance_type):
    try:
        return COVARIANCE_TYPES[covariance_type]
    except (KeyError, TypeError):
        raise ValueError(
            f"covariance_type={covariance_type!r} should be one of 'full', 'tied', 'diag', "
            "'spherical'.") from None


@dataclass
class SufficientStatistics:
    """Weighted sufficient statistics of a Gaussian mixture over some rows (float64).

    Attributes
    ----------
    log_likelihood : float
        ``sum_i w_i log sum_k pi_k N(x_i | k)``.
    sum_weights : float
        ``sum_i w_i``.
    nk : ndarray of shape (n_components,)
        ``sum_i w_i r_ik``.
    sums : ndarray of shape (n_components, n_features)
        ``sum_i w_i r_ik (x_i - shift_k)``.
    second : ndarray
        Second moments about ``shift``: full (k, d, d) ``sum_i w_i r_ik (x_i -
        shift_k)(x_i - shift_k)^T``; tied (d, d) the sum over k of those; diag (k, d)
        their diagonals; spherical (k,) their traces.
    shift : ndarray of shape (n_components, n_features)
        The means the moments are taken about (the parameters' means).

    Notes
    -----
    Statistics computed with the same parameters (hence the same ``shift``) add up:
    ``estep_statistics(X[:m], ...) + estep_statistics(X[m:], ...)`` equals the
    statistics of all of X up to rounding.
    """

    log_likelihood: float
    sum_weights: float
    nk: np.ndarray
    sums: np.ndarray
    second: np.ndarray
    shift: np.ndarray

    def __add__(self, other):
        if not isinstance(other, SufficientStatistics):
            return NotImplemented
        if self.shift.shape != other.shift.shape or not np.array_equal(self.shift, other.shift):
            raise ValueError("Only statistics computed with the same parameters (the same "
                             "shift) can be added.")
        return SufficientStatistics(
            self.log_likelihood + other.log_likelihood, self.sum_weights + other.sum_weights,
            self.nk + other.nk, self.sums + other.sums, self.second + other.second,
            self.shift)


class _KernelParameters:
    """Mixture parameters in the form the kernels take (see ``_estep``'s docstring).

    Rows are used about ``shift = s = weights @ means`` (``centered = means - s``);
    the component log-densities are ``features @ expansion + log_const``. All
    float64: the kernels compute in float64 whatever X's dtype.
    """

    def __init__(self, weights, means, precisions_cholesky, covariance_type, dtype):
        helpers = COVARIANCE_TYPES[covariance_type]
        weights = np.asarray(weights, dtype=np.float64)
        means = np.asarray(means, dtype=np.float64)
        n_components, n_features = means.shape
        # The factors as the model holds them (float32 models use float32 factors).
        prec = np.asarray(precisions_cholesky, dtype=dtype).astype(np.float64)
        with np.errstate(divide="ignore"):  # a zero weight is a -inf log prior: fine
            log_const = (np.log(weights) + helpers.log_det(prec, n_features)
                         - 0.5 * n_features * LOG_2PI)
        log_const = np.broadcast_to(log_const, (n_components,)).astype(np.float64)
        self.shift = (weights / weights.sum()) @ means
        a = self.centered = means - self.shift
        self.prec = np.zeros((1, 1))
        if covariance_type == "full":
            precisions = np.einsum("kij,klj->kil", prec, prec)
            linear = np.einsum("kij,kj->ki", precisions, a)
            upper = np.triu_indices(n_features)
            quadratic = -precisions[:, upper[0], upper[1]]
            quadratic[:, upper[0] == upper[1]] *= 0.5
            expansion = np.hstack([linear, quadratic]).T
            log_const -= 0.5 * np.einsum("ki,ki->k", linear, a)
        elif covariance_type == "tied":
            b = a @ prec
            self.prec = np.ascontiguousarray(prec)
            expansion = np.vstack([b.T, np.full((1, n_components), -0.5)])
            log_const -= 0.5 * np.einsum("kd,kd->k", b, b)
        elif covariance_type == "diag":
            p2 = prec * prec
            expansion = np.vstack([(a * p2).T, -0.5 * p2.T])
            log_const -= 0.5 * np.einsum("kd,kd->k", a * a, p2)
        else:
            p2 = prec * prec
            expansion = np.vstack([(a * p2[:, None]).T, -0.5 * p2[None, :]])
            log_const -= 0.5 * p2 * np.einsum("kd,kd->k", a, a)
        # The constants ride along as the last row (the kernel's features end in a 1).
        self.expansion = np.ascontiguousarray(np.vstack([expansion, log_const]))

    def arguments(self):
        """The parameter arguments of ``estep`` / ``score_chunks``."""
        return self.shift, self.expansion, self.prec


def estep_statistics(X, sample_weight, weights, means, precisions_cholesky, covariance_type,
                     n_threads=1):
    """E-step over the rows of X and the weighted statistics the M-step needs.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        C-contiguous float32 or float64 rows (a chunk of the data).
    sample_weight : ndarray of shape (n_samples,)
        Frequency weights, same dtype as X.
    weights : ndarray of shape (n_components,)
        Mixture weights.
    means : ndarray of shape (n_components, n_features)
        Component means.
    precisions_cholesky : ndarray
        Cholesky factors of the precisions in scikit-learn's shapes: full
        (k, d, d), tied (d, d), diag (k, d), spherical (k,).
    covariance_type : {"full", "tied", "diag", "spherical"}
    n_threads : int, default=1
        OpenMP threads; the result does not depend on it (bitwise).

    Returns
    -------
    stats : SufficientStatistics
        Float64 statistics about ``shift`` (the means).

    Notes
    -----
    One kernel pass: per chunk of rows, the log-densities
    ``-0.5 |(x - m_k) P_k|^2 + log det P_k - d/2 log 2 pi``, the row log-sum-exp and
    the responsibilities, accumulated at once into per-block float64 buffers; no
    n x k array is kept. The kernel sums about one shift s; the moments about the
    means follow exactly: with a_k = m_k - s and T_k = sum_i w r_ik (x_i - s),
    ``sum_i w r_ik (x_i - m_k) = T_k - nk_k a_k`` and likewise for second moments.
    """
    helpers = _covariance_helpers(covariance_type)
    n_samples, n_features = X.shape
    n_components = len(weights)
    params = _KernelParameters(weights, means, precisions_cholesky, covariance_type, X.dtype)
    second_size = helpers.second_size(n_components, n_features)
    blocks = n_blocks(n_samples, 2 + n_components * (n_features + 1) + second_size)
    block_ll = np.empty(blocks)
    block_sum_weights = np.empty(blocks)
    block_nk = np.empty((blocks, n_components))
    block_sums = np.empty((blocks, n_components, n_features))
    block_second = np.empty((blocks, second_size))
    estep(COVARIANCE_CODES[covariance_type], X, sample_weight, *params.arguments(),
          block_ll, block_sum_weights, block_nk, block_sums, block_second, n_threads)
    nk = block_nk.sum(axis=0)
    first = block_sums.sum(axis=0)  # sum_i w r_ik (x_i - s)
    second = helpers.second_from_kernel(block_second.sum(axis=0), n_components, n_features)
    # The kernel summed about s; about the means m_k = s + a_k (exact identities):
    # sum w r (x - m) = T - nk a, sum w r (x - m)(x - m)^T = S - T a^T - a T^T + nk a a^T.
    a = params.centered
    sums = first - nk[:, None] * a
    if covariance_type == "full":
        cross = first[:, :, None] * a[:, None, :]
        second = (second - cross - cross.transpose(0, 2, 1)
                  + nk[:, None, None] * a[:, :, None] * a[:, None, :])
    elif covariance_type == "tied":  # the kernel summed w (x - s)(x - s)^T, sum_k r = 1
        cross = first.T @ a
        second = second - cross - cross.T + (nk[:, None] * a).T @ a
    elif covariance_type == "diag":
        second = second - 2 * a * first + nk[:, None] * a * a
    else:
        second = (second - 2 * np.einsum("kd,kd->k", a, first)
                  + nk * np.einsum("kd,kd->k", a, a))
    return SufficientStatistics(float(block_ll.sum()), float(block_sum_weights.sum()),
                                nk, sums, second, params.shift + a)


def mstep(stats, covariance_type, reg_covar):
    """New mixture parameters from summed statistics (scikit-learn's M-step, about a shift).

    Parameters
    ----------
    stats : SufficientStatistics
    covariance_type : {"full", "tied", "diag", "spherical"}
    reg_covar : float
        Added to the diagonal of the covariances.

    Returns
    -------
    weights : ndarray of shape (n_components,)
    means : ndarray of shape (n_components, n_features)
    covariances : ndarray
        float64, in scikit-learn's shape for ``covariance_type``.

    Notes
    -----
    With ``delta = sums / nk``: ``weights = nk / sum(nk)``, ``means = shift + delta``
    and covariances ``second / nk - delta delta^T + reg_covar I`` (tied: ``(sum_k
    second_k - nk_k delta_k delta_k^T) / sum(nk)``; diag its diagonal; spherical the
    mean of the diagonal). Moments about the old means make ``delta`` small, so
    nothing cancels even far from the origin.
    """
    helpers = _covariance_helpers(covariance_type)
    nk = stats.nk + _NK_FLOOR
    delta = stats.sums / nk[:, None]
    weights = nk / nk.sum()
    means = stats.shift + delta
    covariances = helpers.covariances(stats, nk, delta, reg_covar)
    return weights, means, covariances


class GaussianMixture(OutlierMixin, EstimatorBase):
    """Gaussian mixture fitted by EM on parallel Cython kernels.

    A drop-in for ``sklearn.mixture.GaussianMixture`` with the same parameters,
    attributes and answers, plus frequency ``sample_weight``, ``covariances_init``
    and ``n_threads``. float32 data is fitted in float32 (sums in float64), second
    moments are taken about the current means (no cancellation far from the
    origin), and results do not depend on the number of threads.

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
        OpenMP threads. None follows ``omp_get_max_threads()`` at fit time.
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
    ``sum w r``, ``sum w r (x - m_k)`` and the second moments about ``m_k`` to
    float64 block buffers (``estep_statistics``). The M-step (``mstep``) then gives
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
            unit = bool(np.all(sample_weight == 1))
            if self.init_params == "kmeans":
                with warnings.catch_warnings():
                    # Duplicated rows may leave fewer distinct clusters: EM copes.
                    warnings.simplefilter("ignore", ConvergenceWarning)
                    labels = KMeans(n_clusters=n_components, n_init=1,
                                    random_state=random_state, n_threads=n_threads).fit(
                        X, sample_weight=sample_weight).labels_
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
                    indices = self._samples_from_data(sample_weight, n_components, unit,
                                                      random_state)
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
    def _samples_from_data(sample_weight, n_components, unit, random_state):
        n_samples = len(sample_weight)
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

    def _set_parameters(self, params, dtype):
        weights, means, covariances, precisions_cholesky = params
        helpers = COVARIANCE_TYPES[self.covariance_type]
        self.weights_ = np.asarray(weights, dtype=dtype)
        self.means_ = np.asarray(means, dtype=dtype)
        self.covariances_ = np.asarray(covariances, dtype=dtype)
        self.precisions_cholesky_ = np.asarray(precisions_cholesky, dtype=dtype)
        self.precisions_ = np.asarray(helpers.precisions(
            np.asarray(precisions_cholesky, dtype=np.float64)), dtype=dtype)

    # -- fit -----------------------------------------------------------------------

    def _fit(self, X, sample_weight):
        """EM from ``n_init`` starts; returns the validated X for a final E-step."""
        X = self._check_fit_data(X, min_samples=2)
        check_finish_options(self)
        n_samples, n_features = X.shape
        n_components, helpers, init = self._check_params(n_samples, n_features)
        sample_weight = check_sample_weight(sample_weight, n_samples, X.dtype)
        n_threads = effective_n_threads(self.n_threads)
        random_state = check_random_state(self.random_state)
        covariance_type, reg_covar, tol = self.covariance_type, float(self.reg_covar), self.tol

        do_init = not (self.warm_start and hasattr(self, "converged_"))
        n_init = self.n_init if do_init else 1
        best = None
        with sequential_blas():
            for trial in range(n_init):
                if self.verbose:
                    print(f"Initialization {trial}")
                    start_time = iteration_time = perf_counter()
                if do_init:
                    params = self._initial_parameters(X, sample_weight, n_components, helpers,
                                                      init, random_state, n_threads)
                    lower_bound = -np.inf
                else:
                    params = self._fitted_parameters()
                    lower_bound = self.lower_bound_
                lower_bounds = []
                converged = False
                n_iter = 0
                for n_iter in range(1, self.max_iter + 1):
                    previous = lower_bound
                    weights, means, _, precisions_cholesky = params
                    stats = estep_statistics(X, sample_weight, weights, means,
                                             precisions_cholesky, covariance_type, n_threads)
                    weights, means, covariances = mstep(stats, covariance_type, reg_covar)
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
        finish_fit(self, X, sample_weight)
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
        X = self._fit(X, sample_weight)
        return self._score(X, labels=True, log_norm=False)[2]

    # -- per-sample outputs -----------------------------------------------------------

    def _score(self, X, resp=False, labels=False, log_norm=True):
        """``(log_norm, resp, labels)`` (None when not asked) for validated X, in one pass."""
        dtype = self.means_.dtype
        n_samples = X.shape[0]
        n_components = self.means_.shape[0]
        params = _KernelParameters(self.weights_, self.means_, self.precisions_cholesky_,
                                   self.covariance_type, dtype)
        out_log_norm = np.empty(n_samples if log_norm else 0, dtype=dtype)
        out_resp = np.empty((n_samples if resp else 0, n_components), dtype=dtype)
        out_labels = np.empty(n_samples if labels else 0, dtype=np.int64)
        with sequential_blas():
            score_chunks(COVARIANCE_CODES[self.covariance_type], X, *params.arguments(),
                         out_log_norm, out_resp, out_labels,
                         effective_n_threads(self.n_threads))
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
        X = self._validated(X)
        sample_weight = check_sample_weight(sample_weight, len(X), np.float64)
        log_norm = self._score(X)[0].astype(np.float64)
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

