"""A plain-numpy reference of one weighted Lloyd step, to check ``gmm_fast._lloyd`` against.

Written for clarity, not speed: every distance in float64, from the definition
``|x - c|^2``, with the whole ``n_samples x n_clusters`` matrix in memory (fine
for test sizes). It shares no code with the package.
"""
import numpy as np


def sq_distances(X, centers):
    """``|x_i - c_j|^2`` for all i, j, in float64, computed from the differences."""
    X = np.asarray(X, dtype=np.float64)
    centers = np.asarray(centers, dtype=np.float64)
    diff = X[:, None, :] - centers[None, :, :]
    return np.einsum("ijk,ijk->ij", diff, diff)


def lloyd_step_reference(X, sample_weight, centers, labels=None):
    """One weighted Lloyd step.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    sample_weight : ndarray of shape (n_samples,)
    centers : ndarray of shape (n_clusters, n_features)
    labels : ndarray of shape (n_samples,), default=None
        Take these labels instead of the nearest centres (to compare the
        statistics of a kernel that broke a near-tie the other way).

    Returns
    -------
    labels : ndarray of int of shape (n_samples,)
        Nearest centre of each sample (first one on ties).
    sums : ndarray of shape (n_clusters, n_features)
        ``sum_{i in j} w_i x_i``.
    counts : ndarray of shape (n_clusters,)
        ``sum_{i in j} w_i``.
    inertia : float
        ``sum_i w_i |x_i - c_{label_i}|^2``.
    new_centers : ndarray of shape (n_clusters, n_features)
        ``sums / counts``; the old centre where a cluster is empty.
    """
    X = np.asarray(X, dtype=np.float64)
    w = np.asarray(sample_weight, dtype=np.float64)
    centers = np.asarray(centers, dtype=np.float64)
    n_clusters = centers.shape[0]
    distances = sq_distances(X, centers)
    if labels is None:
        labels = np.argmin(distances, axis=1)
    labels = np.asarray(labels)
    sums = np.zeros_like(centers)
    counts = np.zeros(n_clusters)
    for j in range(n_clusters):
        members = labels == j
        sums[j] = w[members] @ X[members]
        counts[j] = w[members].sum()
    inertia = float(w @ distances[np.arange(len(X)), labels])
    new_centers = centers.copy()
    filled = counts > 0
    new_centers[filled] = sums[filled] / counts[filled, None]
    return labels, sums, counts, inertia, new_centers


def assert_same_fit(ours, theirs, rtol=1e-9):
    """Two fitted KMeans agree: labels and n_iter_ equal, centres and inertia to rtol."""
    np.testing.assert_array_equal(ours.labels_, theirs.labels_)
    np.testing.assert_allclose(ours.cluster_centers_, theirs.cluster_centers_, rtol=rtol,
                               atol=rtol * np.abs(theirs.cluster_centers_).max())
    np.testing.assert_allclose(ours.inertia_, theirs.inertia_, rtol=rtol)
    assert ours.n_iter_ == theirs.n_iter_
