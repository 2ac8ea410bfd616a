"""Model-based hierarchical clustering (init_params="hc"): merge order, determinism, use."""
import numpy as np
import pytest

from gmm_fast import GaussianMixture
from gmm_fast._hc import RIDGE, _whiten, cut_tree, hc_merges, hc_partitions


def brute_force_merges(X, ridge=RIDGE):
    """Every pair tried at every step: the merge of least criterion increase (numpy)."""
    Z = _whiten(X, np.ones(len(X)))
    n_features = Z.shape[1]

    def cost(group):
        rows = Z[group]
        centered = rows - rows.mean(axis=0)
        scatter = centered.T @ centered + ridge * np.eye(n_features)
        return len(group) * (np.linalg.slogdet(scatter)[1] - n_features * np.log(len(group)))

    groups, merges = [[i] for i in range(len(X))], []
    while len(groups) > 1:
        best = None
        for i in range(len(groups)):
            for j in range(i + 1, len(groups)):
                delta = cost(groups[i] + groups[j]) - cost(groups[i]) - cost(groups[j])
                if best is None or delta < best[0] - 1e-12:
                    best = (delta, i, j)
        _, i, j = best
        merges.append((min(groups[i]), min(groups[j])))
        groups[i] += groups.pop(j)
    return np.array(merges)


def test_merge_order_of_eight_points_matches_brute_force():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(8, 2)) * [1.0, 3.0]
    merges, deltas = hc_merges(X)
    assert merges.tolist() == brute_force_merges(X).tolist()
    assert merges.tolist() == [[0, 1], [2, 5], [4, 7], [4, 6], [0, 3], [0, 2], [0, 4]]
    assert np.all(np.isfinite(deltas))


@pytest.mark.parametrize("shape", [(30, 1), (40, 3), (25, 5)])
def test_merge_order_matches_brute_force(shape):
    X = np.random.default_rng(1).normal(size=shape)
    assert np.array_equal(hc_merges(X)[0], brute_force_merges(X))


def test_cut_tree_gives_nested_partitions():
    X = np.random.default_rng(2).normal(size=(60, 2))
    merges, _ = hc_merges(X)
    cuts = cut_tree(merges, 60, range(1, 7))
    for k in range(1, 7):
        assert sorted(np.unique(cuts[k])) == list(range(k))
    for k in range(2, 7):  # each group of k-1 is a union of groups of k
        for group in range(k):
            assert len(np.unique(cuts[k - 1][cuts[k] == group])) == 1


def test_separated_groups_are_found():
    rng = np.random.default_rng(3)
    X = np.concatenate([rng.normal(0, 1, (50, 2)), rng.normal(10, 1, (50, 2))])
    labels = hc_partitions(X, [2])[2]
    assert len(np.unique(labels[:50])) == 1 and len(np.unique(labels[50:])) == 1
    assert labels[0] != labels[50]


def test_deterministic_across_runs_and_threads():
    X = np.random.default_rng(4).normal(size=(300, 3))
    first = hc_partitions(X, range(1, 6))
    for _ in range(2):
        again = hc_partitions(X, range(1, 6))
        assert all(np.array_equal(first[k], again[k]) for k in first)
    fits = [GaussianMixture(3, init_params="hc", n_threads=n_threads).fit(X)
            for n_threads in (1, 2)]
    np.testing.assert_array_equal(fits[0].means_, fits[1].means_)


def test_large_data_uses_a_seeded_sample():
    X = np.random.default_rng(5).normal(size=(500, 2))
    a = hc_partitions(X, [3], random_state=0, max_samples=100)[3]
    b = hc_partitions(X, [3], random_state=0, max_samples=100)[3]
    np.testing.assert_array_equal(a, b)
    assert a.shape == (500,) and sorted(np.unique(a)) == [0, 1, 2]


def test_integer_weight_is_repeated_rows_for_singletons():
    X = np.array([[0.0, 0.0], [0.1, 0.0], [5.0, 5.0], [5.2, 5.1], [9.0, 0.0]])
    merges, _ = hc_merges(X, np.array([1.0, 1.0, 2.0, 1.0, 1.0]))
    assert merges.shape == (4, 2)


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical"])
def test_gaussian_mixture_init_params_hc(covariance_type):
    rng = np.random.default_rng(6)
    X = np.concatenate([rng.normal(0, 1, (100, 2)), rng.normal(6, 1, (100, 2))])
    model = GaussianMixture(2, covariance_type=covariance_type, init_params="hc").fit(X)
    assert model.converged_
    np.testing.assert_allclose(np.sort(model.means_[:, 0]), [0, 6], atol=0.4)
