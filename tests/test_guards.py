"""Performance guards that do not depend on timing: passes over X per iteration, and memory of a fit."""
import tracemalloc

import numpy as np
import pytest

import gmm_fast


def test_kmeans_one_pass_per_iteration():
    from gmm_fast._lloyd import passes_over_x

    rng = np.random.default_rng(0)
    X = rng.standard_normal((2000, 3))
    init = X[:5].copy()
    before = passes_over_x()
    km = gmm_fast.KMeans(5, init=init, n_init=1, max_iter=300).fit(X)
    # One Lloyd step per iteration, plus the final assignment to the returned centres.
    assert passes_over_x() - before == km.n_iter_ + 1
    assert km.n_iter_ > 3 and km.converged_


@pytest.mark.filterwarnings("ignore::gmm_fast.ConvergenceWarning")
def test_kmeans_fit_memory_does_not_grow_with_n_times_k():
    """Peak allocation of a fit stays far below an n x k matrix (buffers are chunk x k per thread)."""
    rng = np.random.default_rng(0)
    n_samples, n_features, n_clusters = 200_000, 4, 64
    X = rng.standard_normal((n_samples, n_features))
    init = X[:n_clusters].copy()
    n_by_k = n_samples * n_clusters * 8  # 102 MB: what a distance matrix would cost
    tracemalloc.start()
    try:
        gmm_fast.KMeans(n_clusters, init=init, n_init=1, max_iter=3, tol=0).fit(X)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # Allowed: the labels (n int32) and block buffers.
    allowed = n_samples * 4 + 2 * 2**20
    assert peak < allowed, (peak, allowed)
    assert peak < n_by_k / 10


def test_kmeans_plusplus_seeding_holds_few_n_vectors():
    """Unweighted k-means++ holds few 8-byte n-vectors besides X: the canonical row order
    of the draws (_draws.canonical_order: the order, the sorted hashes, and argsort's
    and numpy's fancy-indexing temporaries while it is made), then the order and the
    nearest-centre distances. No weights, w * D^2 product or whole cumulative sum."""
    from gmm_fast._kmeans import _kmeans_plusplus

    rng = np.random.default_rng(0)
    n_samples = 1_000_000
    X = rng.standard_normal((n_samples, 2))
    tracemalloc.start()
    try:
        _kmeans_plusplus(X, 8, None, np.random.RandomState(0), n_threads=2)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4.3 * n_samples * 8, peak


@pytest.mark.filterwarnings("ignore::gmm_fast.ConvergenceWarning")
def test_kmeans_unweighted_fit_allocates_no_weight_vector():
    """sample_weight=None reaches the kernels as None: no n-vector of ones (8 MB here)."""
    rng = np.random.default_rng(0)
    n_samples = 1_000_000
    X = rng.standard_normal((n_samples, 2))
    init = X[:8].copy()
    tracemalloc.start()
    try:
        gmm_fast.KMeans(8, init=init, n_init=1, max_iter=2, tol=0).fit(X)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    labels = n_samples * 4
    assert peak < labels + n_samples * 8 // 2, (peak, labels)  # ones would add n * 8


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical"])
def test_gaussian_mixture_one_pass_per_iteration(monkeypatch, covariance_type):
    """Each EM iteration is one kernel pass over X (E-step and statistics fused)."""
    from gmm_fast import _em, _gaussian_mixture

    passes = []
    for module, name in ((_em, "estep"), (_gaussian_mixture, "score_chunks")):
        kernel = getattr(module, name)

        def counting(*args, _kernel=kernel, _name=name, **kwargs):
            passes.append(_name)
            return _kernel(*args, **kwargs)

        monkeypatch.setattr(module, name, counting)
    rng = np.random.default_rng(1)
    X = np.concatenate([rng.normal(-3, 1, (500, 2)), rng.normal(3, 1, (500, 2))])
    init = dict(weights_init=[0.5, 0.5], means_init=[[-1.0, 0.0], [1.0, 0.0]])
    gm = gmm_fast.GaussianMixture(2, covariance_type=covariance_type, **init).fit(X)
    assert gm.converged_
    assert passes == ["estep"] * gm.n_iter_
    passes.clear()
    labels = gm.predict(X)
    assert passes == ["score_chunks"] and labels.shape == (1000,)
