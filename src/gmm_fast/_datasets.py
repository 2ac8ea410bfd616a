"""Built-in data sets, generated: nothing is downloaded."""
import numpy as np


def make_tilted_blobs(n_samples=3000, random_state=0):
    """Three elongated, tilted, partly overlapping 2-D Gaussian groups.

    The classic case where k-means draws round clusters and cuts the groups
    across, while a full-covariance Gaussian mixture recovers them.

    Parameters
    ----------
    n_samples : int, default=3000
        Total number of samples, split 50/30/20 between the groups.
    random_state : int, default=0
        Seed.

    Returns
    -------
    X : ndarray of shape (n_samples, 2)
    labels : ndarray of shape (n_samples,)
        The group of each sample.
    """
    rng = np.random.default_rng(random_state)
    means = np.array([[0.0, 0.0], [4.0, 3.0], [-1.0, 5.0]])
    scales = np.array([[4.0, 0.5], [3.0, 0.4], [2.5, 0.6]])
    angles = np.deg2rad([30.0, -40.0, 80.0])
    sizes = np.round(np.array([0.5, 0.3, 0.2]) * n_samples).astype(int)
    sizes[-1] = n_samples - sizes[:-1].sum()
    parts, labels = [], []
    for group, (mean, scale, angle, size) in enumerate(zip(means, scales, angles, sizes)):
        rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        parts.append(mean + (rng.standard_normal((size, 2)) * scale) @ rotation.T)
        labels.append(np.full(size, group))
    X, labels = np.concatenate(parts), np.concatenate(labels)
    order = rng.permutation(n_samples)
    return X[order], labels[order]
