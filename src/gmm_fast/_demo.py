"""The README's main job: cluster built-in data and report how well it went."""
import time

import numpy as np

from ._datasets import make_tilted_blobs
from ._kmeans import KMeans


def adjusted_rand_index(labels_true, labels_pred):
    """Adjusted Rand index of two labellings (1: identical partitions, ~0: chance)."""
    labels_true, labels_pred = np.ravel(labels_true), np.ravel(labels_pred)
    if len(labels_true) != len(labels_pred):
        raise ValueError(f"labels_true and labels_pred have {len(labels_true)} and "
                         f"{len(labels_pred)} labels; they should label the same samples.")
    if len(labels_true) < 2:  # no pairs: the partitions cannot differ
        return 1.0
    _, true_ids = np.unique(labels_true, return_inverse=True)
    _, pred_ids = np.unique(labels_pred, return_inverse=True)
    table = np.zeros((true_ids.max() + 1, pred_ids.max() + 1))
    np.add.at(table, (true_ids, pred_ids), 1)
    pairs = lambda counts: float(np.sum(counts * (counts - 1) / 2))  # noqa: E731
    index = pairs(table)
    rows, cols, total = pairs(table.sum(1)), pairs(table.sum(0)), pairs(np.array([len(true_ids)]))
    expected = rows * cols / total
    maximum = (rows + cols) / 2
    return 1.0 if maximum == expected else (index - expected) / (maximum - expected)


def run_demo(random_state=0, plot=None):
    """Fit KMeans and GaussianMixture on the built-in data; print quality and times.

    Parameters
    ----------
    random_state : int, default=0
        Seed of the data and of the fits.
    plot : str or None, default=None
        PNG path for both fits drawn side by side (needs matplotlib).

    Returns
    -------
    results : dict
        ``{"kmeans": (model, ari, seconds), "gmm": (model, ari, seconds)}``.
    """
    from ._gaussian_mixture import GaussianMixture

    X, truth = make_tilted_blobs(random_state=random_state)
    n_groups = np.unique(truth).size
    print(f"Built-in data: {X.shape[0]} samples, {X.shape[1]} features, "
          f"{n_groups} elongated, tilted groups.")
    start = time.perf_counter()
    kmeans = KMeans(n_clusters=n_groups, n_init=10, random_state=random_state,
                    sort_components="weights").fit(X)
    kmeans_seconds = time.perf_counter() - start
    kmeans_ari = adjusted_rand_index(truth, kmeans.labels_)
    print(f"KMeans:          adjusted Rand index {kmeans_ari:.3f}, "
          f"inertia {kmeans.inertia_:.1f}, {kmeans.n_iter_} iterations, "
          f"{kmeans_seconds * 1e3:.1f} ms")
    start = time.perf_counter()
    gmm = GaussianMixture(n_components=n_groups, covariance_type="full", n_init=3,
                          random_state=random_state, sort_components="weights").fit(X)
    gmm_seconds = time.perf_counter() - start
    gmm_labels = gmm.predict(X)
    gmm_ari = adjusted_rand_index(truth, gmm_labels)
    print(f"GaussianMixture: adjusted Rand index {gmm_ari:.3f}, "
          f"log-likelihood {gmm.score(X) * len(X):.1f} ({gmm.score(X):.4f} per sample), "
          f"{gmm.n_iter_} iterations, {gmm_seconds * 1e3:.1f} ms")
    if plot:
        from ._plotting import PlottingUnavailable, plot_side_by_side
        try:
            plot_side_by_side(
                [kmeans, gmm], X, plot,
                titles=[f"KMeans: adjusted Rand index {kmeans_ari:.3f}",
                        f"GaussianMixture (full): adjusted Rand index {gmm_ari:.3f}"])
            print(f"Picture written to {plot}.")
        except PlottingUnavailable as exc:
            print(f"No picture written to {plot}: {exc}")
    return {"kmeans": (kmeans, kmeans_ari, kmeans_seconds), "gmm": (gmm, gmm_ari, gmm_seconds)}
