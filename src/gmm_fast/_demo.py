"""The README's main job: cluster built-in data and report how well it went."""
import time

import numpy as np

from ._datasets import make_tilted_blobs
from ._gaussian_mixture import GaussianMixture
from ._kmeans import KMeans


def adjusted_rand_index(labels_true, labels_pred):
    """Adjusted Rand index of two labellings (1: identical partitions, ~0: chance)."""
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


def run_demo(random_state=0):
    """Fit KMeans and a full GaussianMixture on the built-in data; print quality and time."""
    X, truth = make_tilted_blobs(random_state=random_state)
    print(f"Built-in data: {X.shape[0]} samples, {X.shape[1]} features, "
          f"{np.unique(truth).size} elongated, tilted groups.")
    start = time.perf_counter()
    kmeans = KMeans(n_clusters=np.unique(truth).size, n_init=10,
                    random_state=random_state).fit(X)
    seconds = time.perf_counter() - start
    print(f"KMeans:  adjusted Rand index {adjusted_rand_index(truth, kmeans.labels_):.3f}, "
          f"inertia {kmeans.inertia_:.1f}, {kmeans.n_iter_} iterations, {seconds * 1e3:.1f} ms")

    start = time.perf_counter()
    mixture = GaussianMixture(n_components=np.unique(truth).size, covariance_type="full",
                              random_state=random_state).fit(X)
    seconds = time.perf_counter() - start
    labels = mixture.predict(X)
    print(f"GaussianMixture (full): adjusted Rand index "
          f"{adjusted_rand_index(truth, labels):.3f}, log-likelihood "
          f"{mixture.score(X) * len(X):.1f}, {mixture.n_iter_} iterations, "
          f"{seconds * 1e3:.1f} ms")
