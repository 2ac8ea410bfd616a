"""Frequency weights from the first random draw: fit(X, sample_weight=w) with integer w is
fit(np.repeat(X, w, axis=0)), in any row order, for every init of both estimators."""
from fractions import Fraction

import numpy as np
import pytest

from gmm_fast import GaussianMixture, KMeans, _draws

COVARIANCE_TYPES = ["full", "tied", "diag", "spherical"]
GM_INITS = ["kmeans", "k-means++", "random", "random_from_data"]


def _weighted_and_repeated(seed, n_samples=60, n_features=3, dtype=np.float64):
    """Three separated groups, integer weights 0-4, and the repeated rows shuffled."""
    rng = np.random.default_rng(seed)
    centers = np.array([[0.0, 0.0, 0.0], [6.0, 0.0, 3.0], [0.0, 7.0, -4.0]])[:, :n_features]
    X = centers[rng.integers(3, size=n_samples)] + rng.normal(size=(n_samples, n_features))
    w = rng.integers(0, 5, size=n_samples)
    repeated = np.repeat(X, w, axis=0)
    repeated = repeated[rng.permutation(len(repeated))]
    return X.astype(dtype), w, repeated.astype(dtype)


# Tolerances: both fits start from the same rows (exactly: the draws compare exact sums),
# then sum w x and the repeats x in different orders, which differ by a few float64
# roundings per step (~1e-15 relative), grown by EM/Lloyd steps to ~1e-12 on this
# separated data. Labels and predictions are compared exactly.
KM_RTOL = 1e-10
GM_RTOL = 1e-7


@pytest.mark.parametrize("init", ["k-means++", "random"])
@pytest.mark.parametrize("n_init", [1, 3])
@pytest.mark.parametrize("seed", range(4))
def test_kmeans_weighted_equals_repeated(init, n_init, seed):
    X, w, repeated = _weighted_and_repeated(seed)
    weighted = KMeans(4, init=init, n_init=n_init, random_state=seed).fit(X, sample_weight=w)
    plain = KMeans(4, init=init, n_init=n_init, random_state=seed).fit(repeated)
    np.testing.assert_allclose(weighted.cluster_centers_, plain.cluster_centers_,
                               rtol=KM_RTOL, atol=1e-12)
    np.testing.assert_array_equal(weighted.predict(X), plain.predict(X))
    assert weighted.inertia_ == pytest.approx(plain.inertia_, rel=KM_RTOL)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("seed", range(3))
def test_kmeans_plusplus_wide_rows_weighted_equals_repeated(dtype, seed):
    """Rows wide enough that the seeding keeps its candidates' distances (at n=60 and at
    the repeats' n alike): the same centres, exactly."""
    from gmm_fast import _kmeans, kmeans_plusplus

    rng = np.random.default_rng(seed)
    X = (rng.normal(size=(60, 24)) + 5.0 * rng.integers(3, size=(60, 1))).astype(dtype)
    w = rng.integers(0, 5, size=len(X))
    repeated = np.repeat(X, w, axis=0)[rng.permutation(int(w.sum()))]
    assert 3 * 8 * _kmeans._KEEP_RATIO <= 24 * X.itemsize  # k=5: 3 candidates, kept
    ours = kmeans_plusplus(X, 5, sample_weight=w, random_state=seed)[0]
    theirs = kmeans_plusplus(repeated, 5, random_state=seed)[0]
    np.testing.assert_array_equal(ours, theirs)


@pytest.mark.parametrize("init", ["k-means++", "random"])
def test_kmeans_weighted_equals_repeated_float32(init):
    X, w, repeated = _weighted_and_repeated(7, dtype=np.float32)
    weighted = KMeans(3, init=init, random_state=0).fit(X, sample_weight=w)
    plain = KMeans(3, init=init, random_state=0).fit(repeated)
    np.testing.assert_allclose(weighted.cluster_centers_, plain.cluster_centers_, rtol=1e-5)
    np.testing.assert_array_equal(weighted.predict(X), plain.predict(X))


# (a slow tied fit may stop at max_iter: the two fits must still agree)
@pytest.mark.filterwarnings("ignore::gmm_fast.ConvergenceWarning")
@pytest.mark.parametrize("init_params", GM_INITS)
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("seed", range(2))
def test_gaussian_mixture_weighted_equals_repeated(init_params, covariance_type, seed):
    X, w, repeated = _weighted_and_repeated(10 + seed)
    params = dict(covariance_type=covariance_type, init_params=init_params,
                  random_state=seed, tol=1e-6, max_iter=300)
    weighted = GaussianMixture(3, **params).fit(X, sample_weight=w)
    plain = GaussianMixture(3, **params).fit(repeated)
    for name in ("weights_", "means_", "covariances_"):
        np.testing.assert_allclose(getattr(weighted, name), getattr(plain, name),
                                   rtol=GM_RTOL, atol=1e-9, err_msg=name)
    np.testing.assert_allclose(weighted.predict_proba(X), plain.predict_proba(X),
                               rtol=GM_RTOL, atol=1e-9)
    assert weighted.lower_bound_ == pytest.approx(plain.lower_bound_, rel=GM_RTOL)


@pytest.mark.parametrize("init_params", GM_INITS)
def test_gaussian_mixture_start_is_the_repeated_start(init_params):
    """max_iter=0: the initial parameters themselves, before any EM step."""
    X, w, repeated = _weighted_and_repeated(3)
    weighted = GaussianMixture(3, init_params=init_params, max_iter=0,
                               random_state=5).fit(X, sample_weight=w)
    plain = GaussianMixture(3, init_params=init_params, max_iter=0,
                            random_state=5).fit(repeated)
    for name in ("weights_", "means_", "covariances_"):
        np.testing.assert_allclose(getattr(weighted, name), getattr(plain, name),
                                   rtol=1e-10, atol=1e-12, err_msg=name)


@pytest.mark.parametrize("estimator", [
    KMeans(3, init="k-means++", random_state=1), KMeans(3, init="random", random_state=1),
    *[GaussianMixture(3, init_params=init, random_state=1) for init in GM_INITS]],
    ids=lambda e: f"{type(e).__name__}-{e.get_params().get('init', e.get_params().get('init_params'))}")
def test_zero_weights_are_removed_rows_and_order_does_not_matter(estimator):
    X, w, _ = _weighted_and_repeated(21)
    w = np.maximum(w, 1)
    w[::4] = 0
    zero = estimator.__class__(**estimator.get_params()).fit(X, sample_weight=w)
    removed = estimator.__class__(**estimator.get_params()).fit(X[w > 0], sample_weight=w[w > 0])
    permutation = np.random.default_rng(0).permutation(len(X))
    shuffled = estimator.__class__(**estimator.get_params()).fit(
        X[permutation], sample_weight=w[permutation])
    name = "cluster_centers_" if isinstance(estimator, KMeans) else "means_"
    for other in (removed, shuffled):
        np.testing.assert_allclose(getattr(zero, name), getattr(other, name),
                                   rtol=1e-9, atol=1e-12)
        np.testing.assert_array_equal(zero.predict(X), other.predict(X))


# --- the draws themselves -------------------------------------------------------------

@pytest.mark.parametrize("replace", [True, False])
@pytest.mark.parametrize("seed", range(40))
def test_draw_rows_weighted_equals_repeated(seed, replace):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 40))
    X = rng.integers(0, 5, size=(n, 2)).astype(float)  # duplicated rows too
    w = rng.integers(0, 4, n).astype(float)
    w[0] = 3
    repeated = np.repeat(X, w.astype(int), axis=0)
    repeated = repeated[rng.permutation(len(repeated))]
    size = int(min(5, w.sum()))
    ours = _draws.draw_rows(w, n, size, np.random.RandomState(seed),
                            _draws.canonical_order(X), replace)
    theirs = _draws.draw_rows(None, len(repeated), size, np.random.RandomState(seed),
                              _draws.canonical_order(repeated), replace)
    np.testing.assert_array_equal(X[ours], repeated[theirs])
    assert np.all(w[ours] > 0)
    if not replace:  # no row more often than its weight
        assert np.all(np.bincount(ours, minlength=n) <= w)


@pytest.mark.parametrize("n", [1, 2, 3, 150, 2**20 + 7])
def test_unit_weight_draws_are_the_searched_ones(n):
    """Unit weights draw in closed form (``floor(u n)``): the rows the cumulative
    search finds for weights of ones, also for ``u`` whose ``u n`` rounds up to ``n``."""
    order = np.random.default_rng(n).permutation(n)

    class Uniforms:  # the edges of [0, 1), then ordinary draws
        def __init__(self):
            self.values = iter([0.0, np.nextafter(1.0, 0.0), 0.5, 1.0 - 2**-40]
                               + list(np.random.default_rng(0).uniform(size=40)))

        def uniform(self):
            return next(self.values)

    closed = _draws.draw_rows(None, n, 44, Uniforms(), order)
    searched = _draws.draw_rows(np.ones(n), n, 44, Uniforms(), order)
    np.testing.assert_array_equal(closed, searched)


@pytest.mark.parametrize("seed", range(20))
def test_search_weighted_equals_repeated(seed):
    """The squared-distance draws of k-means++, quantised: the same rows' values."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 50))
    X = rng.normal(size=(n, 2))
    values = rng.exponential(size=n) * 10.0 ** rng.integers(-3, 4)
    values[rng.random(n) < 0.2] = 0.0
    w = rng.integers(0, 4, n).astype(float)
    w[0] = 1
    copies = np.repeat(np.arange(n), w.astype(int))
    copies = copies[rng.permutation(len(copies))]
    order = _draws.canonical_order(X)
    repeated = copies[_draws.canonical_order(X[copies])]  # the repeats' rows, in order
    q = _draws.quantum(values[order], w[order])
    assert q == _draws.quantum(values[repeated], None)
    total = _draws.quantised_total(values[order], w[order], q)
    assert total == _draws.quantised_total(values[repeated], None, q)
    targets = rng.uniform(size=8) * total
    np.testing.assert_array_equal(
        order[_draws.search(values[order], w[order], q, targets)],
        repeated[_draws.search(values[repeated], None, q, targets)])


def test_canonical_order_ignores_row_order_and_orders_collisions(monkeypatch):
    rng = np.random.default_rng(3)
    X = rng.integers(0, 3, size=(50, 2)).astype(float)
    permutation = rng.permutation(len(X))
    np.testing.assert_array_equal(X[_draws.canonical_order(X)],
                                  X[permutation][_draws.canonical_order(X[permutation])])
    # Every hash equal: a total order by the values still.
    monkeypatch.setattr(_draws, "row_hashes",
                        lambda X, start, stop, seed=0: np.zeros(stop - start, np.uint64))
    ordered = X[_draws.canonical_order(X)]
    np.testing.assert_array_equal(ordered, X[np.lexsort(X.T[::-1])])
    np.testing.assert_array_equal(ordered,
                                  X[permutation][_draws.canonical_order(X[permutation])])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [40, 400])
@pytest.mark.parametrize("dense", [True, False])
def test_canonical_order_is_hash_then_values_then_index(monkeypatch, dtype, n, dense):
    """Runs of equal hashes, short (sorted in C) or long (by numpy's sorts; of identical
    rows: left in index order), and rows that are not an ndarray: by hash, then the
    values (-0.0 as 0.0), then the index."""
    rng = np.random.default_rng(n)
    X = rng.integers(-1, 2, size=(n, 3)).astype(dtype) * rng.choice([1.0, 2.5], (n, 3))
    X[rng.integers(0, n, n // 4)] = -0.0
    hashes = (np.arange(n) % 3).astype(np.uint64) * np.uint64(2**40)  # runs of n/3
    monkeypatch.setattr(_draws, "row_hashes", lambda X, start, stop, seed=0: hashes[start:stop])
    class Rows(_ArrayLike):  # (as SparseRows: rows by index, and a length)
        def __len__(self):
            return len(self.X)

    order = _draws.canonical_order(X if dense else Rows(X))
    values = X.astype(np.float64) + 0.0
    expected = np.lexsort([np.arange(n)] + [values[:, f] for f in (2, 1, 0)] + [hashes])
    np.testing.assert_array_equal(order, expected)
    # Long runs of identical rows (each value's rows hash alike): in index order.
    X = X[rng.integers(0, 3, n)]
    hashes[:] = X[:, 0].astype(np.int64).astype(np.uint64) * np.uint64(2**40)
    order = _draws.canonical_order(X if dense else Rows(X))
    values = X.astype(np.float64) + 0.0
    expected = np.lexsort([np.arange(n)] + [values[:, f] for f in (2, 1, 0)] + [hashes])
    np.testing.assert_array_equal(order, expected)


class _ArrayLike:
    """Rows that are not an ndarray: ``row_hashes`` takes its numpy path for them."""

    def __init__(self, X):
        self.X, self.shape = X, X.shape

    def __getitem__(self, key):
        return self.X[key]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dense_row_hashes_equal_the_numpy_hashes(dtype):
    """The one-pass C hash of dense rows is numpy's, bit for bit: zeros and -0.0 skipped,
    float64 rounded to float32 (beyond its range: inf), any seed, any row slice."""
    rng = np.random.default_rng(3)
    X = rng.normal(size=(3001, 7)) * 10.0 ** rng.integers(-3, 4, size=(3001, 1))
    X[rng.random(X.shape) < 0.2] = 0.0
    X[5, 2], X[6, 0] = -0.0, 1e300
    with np.errstate(over="ignore"):
        X = X.astype(dtype)
    for seed, start, stop in [(0, 0, len(X)), (7, 13, 2020)]:
        got = _draws.row_hashes(X, start, stop, seed)
        with np.errstate(over="ignore"):
            expected = _draws.row_hashes(_ArrayLike(X), start, stop, seed)
        assert got.dtype == np.uint64
        np.testing.assert_array_equal(got, expected)


def test_exact_sums_are_correctly_rounded():
    rng = np.random.default_rng(4)
    terms = rng.exponential(size=(3, 200)) * 10.0 ** rng.integers(-8, 8, size=(3, 200))
    w = rng.integers(0, 7, 200).astype(float)
    for row, got in zip(terms, _draws.exact_sums(terms, w)):
        exact = sum(Fraction(int(a)) * Fraction(b) for a, b in zip(w, row))
        assert got == float(exact)
    copies = np.repeat(np.arange(200), w.astype(int))
    np.testing.assert_array_equal(_draws.exact_sums(terms, w),
                                  _draws.exact_sums(terms[:, copies[::-1]]))


def test_random_responsibilities_follow_the_row_values():
    X = np.array([[1.0, 2.0], [3.0, 4.0], [1.0, 2.0], [-0.0, 0.0], [0.0, 0.0]])
    resp = _draws.random_responsibilities(X, 0, len(X), 3, seed=11)
    np.testing.assert_allclose(resp.sum(axis=1), 1.0)
    np.testing.assert_array_equal(resp[0], resp[2])
    np.testing.assert_array_equal(resp[3], resp[4])
    assert not np.array_equal(resp[0], resp[1])
    assert not np.array_equal(resp, _draws.random_responsibilities(X, 0, len(X), 3, seed=12))
    np.testing.assert_array_equal(_draws.random_responsibilities(X, 1, 3, 3, seed=11), resp[1:3])
