"""Canonical component order (sort_components) for GaussianMixture and KMeans."""
import numpy as np
import pytest

from gmm_fast import GaussianMixture, KMeans
from gmm_fast._ordering import component_order

COVARIANCE_TYPES = ["full", "tied", "diag", "spherical"]


def _three_groups(rng, dtype=np.float64):
    X = np.concatenate([rng.normal([0, 0], 1, (300, 2)), rng.normal([6, -1], 0.7, (100, 2)),
                        rng.normal([-6, 2], 1.2, (200, 2))])
    return X[rng.permutation(len(X))].astype(dtype)


def test_component_order_by_weights_then_means():
    weights = np.array([0.2, 0.5, 0.2, 0.1])
    means = np.array([[3.0, 0.0], [1.0, 1.0], [2.0, 5.0], [0.0, 0.0]])
    # Equal weights 0.2: the smaller first mean (2.0, index 2) comes first.
    assert component_order(weights, means, "weights").tolist() == [1, 2, 0, 3]
    # Lexicographic means: first feature, then the second.
    means_tie = np.array([[1.0, 2.0], [0.0, 9.0], [1.0, -1.0], [0.5, 0.0]])
    assert component_order(weights, means_tie, "means").tolist() == [1, 3, 2, 0]


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("how", ["weights", "means"])
def test_gmm_sorted_is_the_same_model(covariance_type, how):
    X = _three_groups(np.random.default_rng(0))
    plain = GaussianMixture(3, covariance_type=covariance_type, random_state=2).fit(X)
    ordered = GaussianMixture(3, covariance_type=covariance_type, random_state=2,
                              sort_components=how).fit(X)
    order = component_order(plain.weights_, plain.means_, how)
    if how == "weights":
        assert np.all(np.diff(ordered.weights_) <= 0)
    else:
        assert np.all(np.diff(ordered.means_[:, 0]) > 0)
    for name in ("weights_", "means_", "covariances_", "precisions_", "precisions_cholesky_"):
        expected = getattr(plain, name)
        if not (covariance_type == "tied" and name not in ("weights_", "means_")):
            expected = expected[order]
        np.testing.assert_array_equal(getattr(ordered, name), expected)
    # Same densities, labels renamed consistently, fit_predict == predict. Densities and
    # probabilities agree to rounding only: the log-sum-exp adds the components in order.
    np.testing.assert_allclose(ordered.score_samples(X), plain.score_samples(X), rtol=1e-13)
    np.testing.assert_array_equal(order[ordered.predict(X)], plain.predict(X))
    np.testing.assert_allclose(ordered.predict_proba(X), plain.predict_proba(X)[:, order],
                               rtol=1e-12, atol=1e-15)
    refit = GaussianMixture(3, covariance_type=covariance_type, random_state=2,
                            sort_components=how)
    np.testing.assert_array_equal(refit.fit_predict(X), ordered.predict(X))


@pytest.mark.parametrize("how", ["weights", "means"])
def test_gmm_labels_stable_across_seeds_and_threads(how, parallel_passes):
    X = _three_groups(np.random.default_rng(1))
    results = [GaussianMixture(3, sort_components=how, random_state=seed, n_threads=threads,
                               tol=1e-8).fit(X)
               for seed in (0, 1, 5) for threads in (1, 2)]
    for other in results[1:]:
        # Different starts converge to the same optimum, now in the same order.
        np.testing.assert_array_equal(other.predict(X), results[0].predict(X))
        np.testing.assert_allclose(other.means_, results[0].means_, rtol=1e-5, atol=1e-6)
    # Same seed, different thread counts: bitwise identical.
    for first, second in zip(results[::2], results[1::2]):
        np.testing.assert_array_equal(first.means_, second.means_)
        np.testing.assert_array_equal(first.covariances_, second.covariances_)


@pytest.mark.parametrize("how", ["weights", "means"])
def test_kmeans_sorted(how):
    rng = np.random.default_rng(3)
    X = _three_groups(rng)
    sample_weight = rng.uniform(0.5, 2.0, len(X))
    plain = KMeans(3, random_state=0).fit(X, sample_weight=sample_weight)
    ordered = KMeans(3, random_state=0, sort_components=how).fit(X, sample_weight=sample_weight)
    sizes = np.bincount(ordered.labels_, weights=sample_weight)
    if how == "weights":
        assert np.all(np.diff(sizes) <= 0)
    else:
        assert np.all(np.diff(ordered.cluster_centers_[:, 0]) > 0)
    order = component_order(np.bincount(plain.labels_, weights=sample_weight),
                            plain.cluster_centers_, how)
    np.testing.assert_array_equal(ordered.cluster_centers_, plain.cluster_centers_[order])
    np.testing.assert_array_equal(order[ordered.labels_], plain.labels_)
    np.testing.assert_array_equal(ordered.predict(X), ordered.labels_)
    assert ordered.inertia_ == plain.inertia_
    for seed in (1, 2):
        again = KMeans(3, random_state=seed, sort_components=how).fit(
            X, sample_weight=sample_weight)
        np.testing.assert_array_equal(again.labels_, ordered.labels_)


def test_sort_keeps_dtype_float32():
    X = _three_groups(np.random.default_rng(4), np.float32)
    gm = GaussianMixture(3, sort_components="weights", random_state=0).fit(X)
    assert gm.means_.dtype == np.float32 and gm.means_.flags.c_contiguous
    km = KMeans(3, sort_components="means", random_state=0).fit(X)
    assert km.cluster_centers_.dtype == np.float32 and km.labels_.dtype == np.int32


@pytest.mark.parametrize("estimator", [GaussianMixture(2, sort_components="size"),
                                       KMeans(2, sort_components="size")])
def test_bad_sort_components(estimator):
    X = np.random.default_rng(0).normal(size=(20, 2))
    with pytest.raises(ValueError, match=r"sort_components='size' should be None, 'weights' "
                                         r"or 'means'\."):
        estimator.fit(X)
