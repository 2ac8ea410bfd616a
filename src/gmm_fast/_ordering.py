"""Canonical order of fitted components, so that labels do not shuffle between runs.

EM and Lloyd find the same components from different starts, but in an order that
depends on the initialisation. ``sort_components`` picks one order from the fitted
model alone: largest weight first ("weights") or lexicographic means ("means").
Both estimators call ``finish_fit`` at the end of ``fit``; it permutes every
per-component attribute with one permutation, so the model is the same model.
"""
import numpy as np

SORT_COMPONENTS = (None, "weights", "means")

# Per-component attributes, permuted along their first axis. The tied covariance
# (one matrix shared by all components) has no component axis and is left alone.
_GMM_ATTRIBUTES = ("weights_", "means_", "covariances_", "precisions_", "precisions_cholesky_")


def check_sort_components(sort_components):
    """Validate the ``sort_components`` parameter."""
    if sort_components is None or (isinstance(sort_components, str)
                                   and sort_components in SORT_COMPONENTS):
        return sort_components
    raise ValueError(f"sort_components={sort_components!r} should be None, 'weights' or "
                     "'means'.")


def component_order(weights, means, sort_components):
    """The permutation putting components in canonical order.

    Parameters
    ----------
    weights : ndarray of shape (n_components,)
        Mixture weights (or cluster sizes).
    means : ndarray of shape (n_components, n_features)
        Component means (or cluster centres).
    sort_components : {"weights", "means"}
        "weights": decreasing weight, ties broken by the means; "means":
        lexicographic means (first feature first), ties broken by decreasing weight.

    Returns
    -------
    order : ndarray of shape (n_components,)
        ``new_component[j] = old_component[order[j]]``.
    """
    weights = np.asarray(weights, dtype=np.float64)
    means = np.asarray(means, dtype=np.float64)
    # np.lexsort sorts by the last key first.
    mean_keys = [means[:, j] for j in range(means.shape[1] - 1, -1, -1)]
    if sort_components == "weights":
        keys = mean_keys + [-weights]
    else:
        keys = [-weights] + mean_keys
    return np.lexsort(keys)


def _relabel(labels, order):
    """Labels of the reordered components: old id ``order[j]`` becomes ``j``."""
    inverse = np.empty_like(order)
    inverse[order] = np.arange(len(order))
    return inverse[labels].astype(labels.dtype, copy=False)


def sort_fitted_components(estimator, sample_weight=None):
    """Reorder a fitted GaussianMixture or KMeans in place by ``estimator.sort_components``.

    Parameters
    ----------
    estimator : GaussianMixture or KMeans
        Fitted.
    sample_weight : ndarray of shape (n_samples,), default=None
        The training weights (KMeans: the cluster weights are the weighted sizes of
        ``labels_``).

    Returns
    -------
    order : ndarray or None
        The permutation applied, None when ``sort_components`` is None.
    """
    how = check_sort_components(getattr(estimator, "sort_components", None))
    if how is None:
        return None
    if hasattr(estimator, "cluster_centers_"):
        n_clusters = len(estimator.cluster_centers_)
        sizes = np.bincount(estimator.labels_, weights=sample_weight, minlength=n_clusters)
        order = component_order(sizes, estimator.cluster_centers_, how)
        estimator.cluster_centers_ = np.ascontiguousarray(estimator.cluster_centers_[order])
        estimator.labels_ = _relabel(estimator.labels_, order)
        return order
    order = component_order(estimator.weights_, estimator.means_, how)
    for name in _GMM_ATTRIBUTES:
        if name != "weights_" and name != "means_" and estimator.covariance_type == "tied":
            continue
        setattr(estimator, name, np.ascontiguousarray(getattr(estimator, name)[order]))
    return order


def check_finish_options(estimator):
    """Validate ``sort_components`` (and ``contamination``) before the fit's work starts."""
    check_sort_components(getattr(estimator, "sort_components", None))
    if getattr(estimator, "contamination", None) is not None:
        from ._outliers import check_contamination
        check_contamination(estimator.contamination)


def finish_fit(estimator, X, sample_weight):
    """What every ``fit`` does last: canonical order, then the outlier threshold (if asked)."""
    sort_fitted_components(estimator, sample_weight)
    if getattr(estimator, "contamination", None) is not None:
        estimator._fit_outlier_threshold(X, sample_weight)
    else:  # a threshold from an earlier fit (or set_outlier_threshold) belongs to that model
        estimator.__dict__.pop("offset_", None)
