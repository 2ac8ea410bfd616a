"""Anomaly detection with a fitted density: flag the samples of lowest log-density.

A Gaussian mixture gives every sample a log-density ``log p(x)``. With a
``contamination`` fraction c, the threshold ``offset_`` is chosen on the training
data so that (weighted) at most a fraction c of it lies strictly below; new samples
below the threshold are outliers. The methods follow scikit-learn's outlier
detectors (``decision_function`` < 0 and -1 mean outlier), under names that do not
clash with the clustering ``predict``.
"""
import functools
import numbers
import types

import numpy as np

from ._validation import check_sample_weight


def check_contamination(contamination):
    """Validate a contamination fraction in (0, 0.5]."""
    if (isinstance(contamination, bool) or not isinstance(contamination, numbers.Real)
            or not 0 < contamination <= 0.5):
        raise ValueError(
            f"contamination={contamination!r} should be a float in (0, 0.5].")
    return float(contamination)


def outlier_threshold(log_density, contamination, sample_weight=None):
    """The log-density below which a weighted ``contamination`` fraction of samples lies.

    Parameters
    ----------
    log_density : ndarray of shape (n_samples,)
        Scores, higher meaning more normal.
    contamination : float
        Fraction in (0, 0.5].
    sample_weight : ndarray of shape (n_samples,), default=None
        Frequency weights; None weighs every sample 1.

    Returns
    -------
    threshold : float
        The score of the first sample (in increasing order of score) at which the
        cumulative weight exceeds ``contamination * sum(w)``: the samples strictly
        below it weigh at most ``contamination * sum(w)``.

    Notes
    -----
    An integer weight acts exactly as that many copies of the sample. Without
    weights and without ties, ``floor(c * n)`` samples fall below the threshold
    (scikit-learn's ``np.percentile`` interpolates instead, which flags the same
    samples up to ties).
    """
    log_density = np.asarray(log_density)
    if log_density.ndim != 1 or log_density.size == 0 or log_density.dtype.kind not in "biuf":
        raise ValueError(
            f"log_density should be a non-empty 1-D array of numbers, got shape "
            f"{log_density.shape} and dtype {log_density.dtype}.")
    log_density = log_density.astype(np.float64)
    if np.isnan(log_density).any() or np.isposinf(log_density).any():
        raise ValueError("log_density contains NaN or +infinity; scores must be finite "
                         "(-inf, a zero density, is allowed).")
    contamination = check_contamination(contamination)
    sample_weight = check_sample_weight(sample_weight, len(log_density), np.float64)
    keep = sample_weight > 0
    scores, weights = log_density[keep], sample_weight[keep]
    order = np.argsort(scores, kind="stable")
    cumulative = np.cumsum(weights[order])
    # Compare with a relative slack so that c * n computed in floating point does not
    # move the threshold by one sample (e.g. 0.07 * 100 = 7.000000000000001).
    target = contamination * cumulative[-1] * (1 + 1e-12)
    first = min(int(np.searchsorted(cumulative, target, side="right")), len(order) - 1)
    return float(scores[order[first]])


class _needs_threshold:
    """A method that exists only once ``offset_`` is set (like sklearn's ``available_if``).

    scikit-learn probes ``decision_function`` with ``hasattr``: a plain
    GaussianMixture (no contamination) must not seem to have one.
    """

    def __init__(self, method):
        self.method = method
        functools.update_wrapper(self, method)

    def __get__(self, instance, owner=None):
        if instance is None:
            return self.method
        if not hasattr(instance, "offset_"):
            raise AttributeError(
                f"This {type(instance).__name__} has no outlier threshold, so no "
                f"{self.method.__name__}: fit it with contamination=... or call "
                "set_outlier_threshold(X, contamination).")
        return types.MethodType(self.method, instance)


class OutlierMixin:
    """Outlier detection for an estimator with ``score_samples`` and a ``contamination``."""

    def _fit_outlier_threshold(self, X, sample_weight):
        """Set ``offset_`` from the validated training data (called at the end of fit)."""
        contamination = check_contamination(self.contamination)
        # X is already validated: score it directly (score_samples would check the
        # feature names of a plain array against those of a DataFrame fit).
        self.offset_ = outlier_threshold(self._score(X)[0], contamination, sample_weight)

    def set_outlier_threshold(self, X, contamination=None, sample_weight=None):
        """Set ``offset_`` from a contamination fraction of the log-densities of X.

        ``fit`` does this on the training data when ``contamination`` is set; call
        this to set (or change) the threshold of a fitted model afterwards.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Reference data (usually the training data).
        contamination : float, default=None
            Fraction in (0, 0.5] of X to flag; None uses ``self.contamination``.
        sample_weight : array-like of shape (n_samples,), default=None
            Frequency weights of X.

        Returns
        -------
        self : object
        """
        if contamination is None:
            contamination = self.contamination
        if contamination is None:
            raise ValueError("contamination=None: give a fraction in (0, 0.5] here or as "
                             "the estimator's contamination parameter.")
        contamination = check_contamination(contamination)
        log_density = self.score_samples(X)
        weights = check_sample_weight(sample_weight, len(log_density), np.float64)
        self.offset_ = outlier_threshold(log_density, contamination, weights)
        return self

    @_needs_threshold
    def decision_function(self, X):
        """Log-density minus the threshold: negative for outliers.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        scores : ndarray of shape (n_samples,)
            ``score_samples(X) - offset_``.
        """
        return self.score_samples(X) - self.offset_

    @_needs_threshold
    def predict_outliers(self, X):
        """+1 for inliers, -1 for outliers (log-density below ``offset_``).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        is_inlier : ndarray of shape (n_samples,)
            +1 or -1, as scikit-learn's outlier detectors' ``predict``.

        Examples
        --------
        >>> import numpy as np
        >>> from gmm_fast import GaussianMixture
        >>> rng = np.random.default_rng(0)
        >>> X = rng.standard_normal((1000, 2))
        >>> gm = GaussianMixture(1, contamination=0.05, random_state=0).fit(X)
        >>> int((gm.predict_outliers(X) == -1).sum())
        50
        >>> gm.predict_outliers([[0.0, 0.0], [6.0, 6.0]]).tolist()
        [1, -1]
        """
        return np.where(self.decision_function(X) < 0, -1, 1)
