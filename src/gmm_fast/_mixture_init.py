"""Starting parameters of a Gaussian mixture: from responsibilities, and user-given checks.

scikit-learn initialises EM from responsibilities (hard k-means labels, random
rows, or chosen samples); here random ones come chunk by chunk so that no n x k array
and no copy of X is held, hard labels go through one C pass (``statistics_from_labels``),
and every sum is weighted by ``sample_weight`` (frequency weights). Moments are taken in
two passes (means, then scatter about the means).
"""
import numpy as np

from ._covariances import COVARIANCE_TYPES
from ._estep import COVARIANCE_CODES
from ._mstep import label_statistics
from ._validation import total_weight

# Rows per numpy step: keeps each temporary near 4 MB.
_STEP_BYTES = 4 * 2**20


def _rows_per_step(n_features, n_components):
    return max(256, _STEP_BYTES // (8 * (n_features + n_components)))


def statistics_from_responsibilities(X, sample_weight, n_components, covariance_type,
                                     responsibilities, replay=None):
    """Weighted statistics about the weighted means of the given responsibilities.

    ``responsibilities(start, stop)`` returns a (stop - start, n_components) float
    array; it is called twice per chunk (once per pass), after ``replay()`` when given
    (to redraw random ones). Returns a ``SufficientStatistics`` with ``log_likelihood``
    0. (Hard labels: ``statistics_from_labels``.)
    """
    from ._em import SufficientStatistics

    n_samples, n_features = X.shape
    step = _rows_per_step(n_features, n_components)
    helpers = COVARIANCE_TYPES[covariance_type]

    def weighted_resp(start, stop):
        resp = responsibilities(start, stop)
        if sample_weight is None:
            return resp
        return resp * sample_weight[start:stop].astype(np.float64)[:, None]

    nk = np.zeros(n_components)
    first = np.zeros((n_components, n_features))
    for start in range(0, n_samples, step):
        stop = min(start + step, n_samples)
        wr = weighted_resp(start, stop)
        nk += wr.sum(axis=0)
        first += wr.T @ X[start:stop].astype(np.float64)
    means = first / (nk + 10 * np.finfo(np.float64).eps)[:, None]

    if replay is not None:
        replay()
    sums = np.zeros((n_components, n_features))
    second = np.zeros(helpers.shape(n_components, n_features))
    for start in range(0, n_samples, step):
        stop = min(start + step, n_samples)
        wr = weighted_resp(start, stop)
        rows = X[start:stop].astype(np.float64)
        for k in range(n_components):
            diff = rows - means[k]
            sums[k] += wr[:, k] @ diff
            if covariance_type in ("full", "tied"):
                scatter = (diff * wr[:, k, None]).T @ diff
                if covariance_type == "full":
                    second[k] += scatter
                else:
                    second += scatter
            elif covariance_type == "diag":
                second[k] += wr[:, k] @ (diff * diff)
            else:
                second[k] += wr[:, k] @ np.einsum("ij,ij->i", diff, diff)
    return SufficientStatistics(0.0, total_weight(sample_weight, n_samples), nk, sums,
                                second, means)


# Hard labels' full (tied) moments by the C loops' rank-one updates up to this width, by
# a BLAS product per component (one-hot responsibilities) beyond. ms, one thread, loops /
# products (AVX2): (1e5, 128, k=8) 381 / 983, (5e4, 256, 4) 733 / 804, (2e4, 512, 2)
# 1156 / 585.
_LABEL_LOOPS_MAX_FEATURES = 256


def statistics_from_labels(X, sample_weight, labels, n_components, covariance_type):
    """``statistics_from_responsibilities`` of hard labels (row i in component
    ``labels[i]``), dense X: in one C call (``_mstep.label_statistics``), without the
    one-hot rows and the product per component (but for wide full and tied moments)."""
    from ._em import _NK_FLOOR, SufficientStatistics

    labels = np.ascontiguousarray(labels, dtype=np.intp)
    if (covariance_type in ("full", "tied")
            and X.shape[1] > _LABEL_LOOPS_MAX_FEATURES):
        one_hot = np.eye(n_components)
        return statistics_from_responsibilities(X, sample_weight, n_components,
                                                covariance_type,
                                                lambda start, stop: one_hot[labels[start:stop]])
    code = COVARIANCE_CODES[covariance_type]
    nk, sums, second, means = label_statistics(code, X, sample_weight, labels, n_components,
                                               _NK_FLOOR)
    return SufficientStatistics(0.0, total_weight(sample_weight, len(X)), nk, sums, second,
                                means)


def statistics_from_samples(X, sample_weight, indices, covariance_type, draw_weight=None):
    """Statistics of responsibilities that put component k on sample ``indices[k]`` only:
    on one unit of its weight (``draw_weight``, the weights as given: a row of weight
    w drawn stands for one of its w copies, as a drawn repeat would)."""
    from ._em import SufficientStatistics

    n_components, n_features = len(indices), X.shape[1]
    nk = (np.ones(n_components) if sample_weight is None
          else sample_weight[indices].astype(np.float64))
    if draw_weight is not None:
        given = draw_weight[indices].astype(np.float64)
        nk = nk * np.minimum(given, 1.0) / given
    means = X[indices].astype(np.float64)
    second = np.zeros(COVARIANCE_TYPES[covariance_type].shape(n_components, n_features))
    return SufficientStatistics(0.0, total_weight(sample_weight, len(X)), nk,
                                np.zeros_like(means), second, means)


def _as_float_array(value, name):
    try:
        array = np.asarray(value)
    except Exception as exc:  # ragged lists and the like
        raise ValueError(f"{name} could not be converted to an array ({exc}).") from None
    if array.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be numeric, got dtype {array.dtype}.")
    array = np.array(array, dtype=np.float64)
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contains NaN or infinity.")
    return array


def _check_shape(array, expected, name, sklearn_name):
    # scikit-learn's sentence (code matches on it, naming its parameter as it does), then ours.
    if array.shape != tuple(expected):
        raise ValueError(
            f"The parameter '{sklearn_name}' should have the shape of {tuple(expected)}, but "
            f"got {array.shape}: {name} should have shape {tuple(expected)}.")


def check_weights_init(weights, n_components):
    """Validated initial weights (float64): shape (k,), in [0, 1], summing to 1."""
    weights = _as_float_array(weights, "weights_init")
    _check_shape(weights, (n_components,), "weights_init", "weights")
    if np.any(weights < 0) or np.any(weights > 1):
        # (scikit-learn's sentence as it prints it: the minimum labelled "max value")
        raise ValueError(
            "The parameter 'weights' should be in the range [0, 1], but got max value "
            f"{weights.min():.5f}, min value {weights.max():.5f}: weights_init should be in "
            f"[0, 1], got values from {weights.min():g} to {weights.max():g}.")
    if not abs(1.0 - weights.sum()) <= 1e-6:
        raise ValueError(
            "The parameter 'weights' should be normalized, but got sum(weights) = "
            f"{weights.sum():.5f}: weights_init should sum to 1, got sum(weights_init)="
            f"{weights.sum():.8g}.")
    return weights


def check_means_init(means, n_components, n_features):
    """Validated initial means (float64) of shape (k, d)."""
    means = _as_float_array(means, "means_init")
    _check_shape(means, (n_components, n_features), "means_init", "means")
    return means


def check_covariance_like(values, name, covariance_type, n_components, n_features):
    """Validated precisions_init / covariances_init (float64): shape, symmetric, positive."""
    helpers = COVARIANCE_TYPES[covariance_type]
    values = _as_float_array(values, name)
    # scikit-learn names them '<type> precision' (it has no covariances_init)
    sklearn_name = f"{covariance_type} {name[:-len('s_init')]}"
    _check_shape(values, helpers.shape(n_components, n_features),
                 f"{name} (covariance_type={covariance_type!r})", sklearn_name)
    try:
        helpers.check(values, name)
    except ValueError as exc:
        expected = ("symmetric, positive-definite" if covariance_type in ("full", "tied")
                    else "positive")
        raise ValueError(f"'{sklearn_name}' should be {expected}: {exc}") from None
    return values

