"""gmm_fast.GaussianMixture: parity with scikit-learn and the oracle, and EM's invariants."""
import contextlib
import io
import pickle
import re
import warnings

import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.exceptions import ConvergenceWarning as SklearnConvergenceWarning
from sklearn.mixture import GaussianMixture as SklearnGaussianMixture

import gmm_reference as ref
from gmm_fast import ConvergenceWarning, GaussianMixture
from gmm_fast._estep import CHUNK_SIZE

ATTRIBUTES = ("weights_", "means_", "covariances_", "precisions_", "precisions_cholesky_")


@pytest.fixture(params=ref.COVARIANCE_TYPES)
def covariance_type(request):
    return request.param


@pytest.fixture(params=[np.float32, np.float64], ids=["float32", "float64"])
def dtype(request):
    return request.param


def _data(covariance_type, n_samples=600, n_features=3, n_components=3, seed=0,
          separation=3.0):
    """Data from a random mixture and a perturbed start (weights, means, covariances)."""
    rng = np.random.default_rng(seed)
    X, weights, means, covariances = ref.make_mixture(rng, n_samples, n_features, n_components,
                                                      covariance_type, separation)
    start = ref.perturbed_parameters(rng, weights, means, covariances, covariance_type)
    return X, start


def _from_start(start, covariance_type, **params):
    """A GaussianMixture started from explicit (weights, means, covariances)."""
    w0, m0, c0 = start
    return GaussianMixture(
        n_components=len(w0), covariance_type=covariance_type, weights_init=w0, means_init=m0,
        precisions_init=ref.covariances_from_precisions(c0, covariance_type), **params)


def _sklearn_from_start(start, covariance_type, **params):
    w0, m0, c0 = start
    return SklearnGaussianMixture(
        n_components=len(w0), covariance_type=covariance_type, weights_init=w0, means_init=m0,
        precisions_init=ref.covariances_from_precisions(c0, covariance_type), **params)


def _is_positive_definite(covariances, covariance_type):
    if covariance_type == "full":
        return all(np.linalg.eigvalsh(c).min() > 0 for c in covariances)
    if covariance_type == "tied":
        return np.linalg.eigvalsh(covariances).min() > 0
    return np.all(covariances > 0)


# --- parity with scikit-learn -------------------------------------------------------------

def test_parity_with_sklearn(covariance_type):
    """Same start, same data: same path, same answers, to rtol 1e-7.

    Both are float64 EM; they differ only in summation order (and sklearn's cancellation in
    the tied/diag/spherical M-step, ~1e-15 relative on this O(1)-scaled data), so 1e-7 (the
    issue's bar) is loose enough for the few iterations' amplification and tight enough to
    catch any formula difference (regularisation, weights normalisation, lower bound).
    """
    X, start = _data(covariance_type)
    tol = 1e-4
    ours = _from_start(start, covariance_type, tol=tol).fit(X)
    theirs = _sklearn_from_start(start, covariance_type, tol=tol).fit(X)
    # The comparison of n_iter_ is only meaningful if no change sits on the tol boundary.
    changes = np.abs(np.diff(theirs.lower_bounds_))
    assert np.all(np.abs(changes - tol) > 1e-8 * tol + 1e-12)
    assert theirs.converged_ and theirs.n_iter_ >= 3

    assert ours.converged_ == theirs.converged_
    assert ours.n_iter_ == theirs.n_iter_
    for name in ATTRIBUTES:
        expected = getattr(theirs, name)
        np.testing.assert_allclose(getattr(ours, name), expected, rtol=1e-7,
                                   atol=1e-12 * np.abs(expected).max(), err_msg=name)
    assert ours.lower_bound_ == pytest.approx(theirs.lower_bound_, rel=1e-7)
    np.testing.assert_allclose(ours.lower_bounds_, theirs.lower_bounds_, rtol=1e-7)

    rng = np.random.default_rng(1)
    X_new = np.vstack([X[:200], rng.normal(scale=5, size=(50, X.shape[1]))])
    np.testing.assert_allclose(ours.score_samples(X_new), theirs.score_samples(X_new), rtol=1e-7)
    np.testing.assert_allclose(ours.predict_proba(X_new), theirs.predict_proba(X_new), rtol=1e-7,
                               atol=1e-10)
    np.testing.assert_array_equal(ours.predict(X_new), theirs.predict(X_new))
    assert ours.score(X_new) == pytest.approx(theirs.score(X_new), rel=1e-7)
    assert ours.bic(X_new) == pytest.approx(theirs.bic(X_new), rel=1e-7)
    assert ours.aic(X_new) == pytest.approx(theirs.aic(X_new), rel=1e-7)


def test_covariances_init_equals_precisions_init(covariance_type):
    X, (w0, m0, c0) = _data(covariance_type, seed=3)
    by_precisions = _from_start((w0, m0, c0), covariance_type).fit(X)
    by_covariances = GaussianMixture(
        n_components=len(w0), covariance_type=covariance_type, weights_init=w0, means_init=m0,
        covariances_init=c0).fit(X)
    assert by_covariances.n_iter_ == by_precisions.n_iter_
    for name in ATTRIBUTES:
        np.testing.assert_allclose(getattr(by_covariances, name), getattr(by_precisions, name),
                                   rtol=1e-9, atol=1e-12, err_msg=name)


def test_weighted_em_steps_match_reference(covariance_type, dtype):
    """Three weighted EM steps == three oracle steps (lower bounds included).

    lower_bounds_[i] is sum_i w_i log p(x_i) / sum_i w_i under the parameters before the
    i-th M-step. float32: the kernels may work in float32 (see the kernel tests), 1e-4.
    """
    X, start = _data(covariance_type, seed=4)
    X = X.astype(dtype)
    sample_weight = np.random.default_rng(5).uniform(0.0, 4.0, size=len(X)).astype(dtype)
    n_iter, reg_covar = 3, 1e-5
    with pytest.warns(ConvergenceWarning):
        gm = _from_start(start, covariance_type, max_iter=n_iter, tol=0.0,
                         reg_covar=reg_covar).fit(X, sample_weight=sample_weight)
    params = tuple(np.asarray(p, dtype=dtype) for p in start)  # the estimator sees X's dtype
    lower_bounds = []
    for _ in range(n_iter):
        lower_bound, *params = ref.em_step(X, sample_weight, *params, covariance_type, reg_covar)
        lower_bounds.append(lower_bound)
    rtol = 1e-10 if dtype == np.float64 else 1e-4
    np.testing.assert_allclose(gm.lower_bounds_, lower_bounds, rtol=rtol)
    assert gm.lower_bound_ == pytest.approx(lower_bounds[-1], rel=rtol)
    assert gm.n_iter_ == n_iter and not gm.converged_
    for got, want in zip((gm.weights_, gm.means_, gm.covariances_), params):
        np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * np.abs(want).max())


def test_iris_full_two_components():
    """mclust's reference: total log-likelihood -214.354704, BIC 574.0178 (its sign: -574.0178)."""
    X = load_iris().data
    gm = GaussianMixture(n_components=2, covariance_type="full", n_init=10, tol=1e-10,
                         max_iter=1000, random_state=0).fit(X)
    assert gm.converged_
    assert gm.score(X) * len(X) == pytest.approx(-214.354704, abs=1e-4)
    assert gm.bic(X) == pytest.approx(574.0178, abs=1e-4)
    # BIC's definition with the number of free parameters (2 * (4 + 10) + 1 = 29).
    assert gm.bic(X) == pytest.approx(
        -2 * gm.score(X) * len(X) + ref.n_parameters(2, 4, "full") * np.log(len(X)), rel=1e-12)
    assert gm.aic(X) == pytest.approx(-2 * gm.score(X) * len(X) + 2 * 29, rel=1e-12)


# --- invariants -----------------------------------------------------------------------------

@pytest.mark.parametrize("weighted", [False, True])
def test_lower_bound_never_decreases(covariance_type, weighted):
    """EM's monotonicity (reg_covar=0, well-posed data), from a poor start.

    The start puts all means near the data mean, so EM runs for a hundred-odd iterations.
    Allowed slack 1e-12 absolute on a mean log-likelihood of O(1): rounding noise once
    the bound has flattened; a real decrease from a wrong M-step is orders larger.
    """
    X, _ = _data(covariance_type, n_samples=300, n_features=2, n_components=3, seed=6,
                 separation=1.5)
    rng = np.random.default_rng(7)
    sample_weight = rng.uniform(0.5, 2.0, size=len(X)) if weighted else None
    start = (np.full(3, 1 / 3), X.mean(axis=0) + 0.3 * rng.normal(size=(3, 2)),
             ref.random_covariances(rng, 3, 2, covariance_type))
    gm = _from_start(start, covariance_type, reg_covar=0.0, tol=1e-7, max_iter=150)
    with warnings.catch_warnings():
        # Tied EM crawls here; convergence is not what this test is about.
        warnings.simplefilter("ignore", ConvergenceWarning)
        gm.fit(X, sample_weight=sample_weight)
    bounds = np.asarray(gm.lower_bounds_)
    assert len(bounds) == gm.n_iter_ >= 10
    assert np.all(np.diff(bounds) >= -1e-12), np.diff(bounds).min()
    assert gm.lower_bound_ == bounds[-1]


def test_integer_sample_weight_equals_repeated_rows(covariance_type):
    X, start = _data(covariance_type, seed=8)
    counts = np.random.default_rng(9).integers(0, 4, size=len(X))
    weighted = _from_start(start, covariance_type, tol=1e-6).fit(X, sample_weight=counts)
    repeated = _from_start(start, covariance_type, tol=1e-6).fit(np.repeat(X, counts, axis=0))
    assert weighted.n_iter_ == repeated.n_iter_
    # Same float64 sums in another order: 1e-10.
    for name in ATTRIBUTES:
        np.testing.assert_allclose(getattr(weighted, name), getattr(repeated, name), rtol=1e-10,
                                   atol=1e-13, err_msg=name)
    assert weighted.lower_bound_ == pytest.approx(repeated.lower_bound_, rel=1e-10)
    assert weighted.score(X, sample_weight=counts) == pytest.approx(
        repeated.score(np.repeat(X, counts, axis=0)), rel=1e-10)


def test_integer_sample_weight_equals_repeated_rows_kmeans_init(covariance_type):
    """Weights reach the initialisation too (weighted k-means), on well-separated blobs."""
    X, _ = _data(covariance_type, n_features=2, seed=10, separation=20.0)
    counts = np.random.default_rng(11).integers(1, 4, size=len(X))
    weighted = GaussianMixture(3, covariance_type=covariance_type, random_state=0)
    weighted.fit(X, sample_weight=counts)
    repeated = GaussianMixture(3, covariance_type=covariance_type, random_state=0)
    repeated.fit(np.repeat(X, counts, axis=0))
    order_w = np.argsort(weighted.means_[:, 0])
    order_r = np.argsort(repeated.means_[:, 0])
    np.testing.assert_allclose(weighted.means_[order_w], repeated.means_[order_r], rtol=1e-6)
    np.testing.assert_allclose(weighted.weights_[order_w], repeated.weights_[order_r], rtol=1e-6)


def test_score_is_weighted_mean_of_score_samples(covariance_type):
    X, start = _data(covariance_type, seed=12)
    gm = _from_start(start, covariance_type).fit(X)
    sample_weight = np.random.default_rng(13).uniform(0, 2, size=len(X))
    assert gm.score(X, sample_weight=sample_weight) == pytest.approx(
        np.average(gm.score_samples(X), weights=sample_weight), rel=1e-12)
    assert gm.score(X) == pytest.approx(gm.score_samples(X).mean(), rel=1e-12)


def test_far_from_origin_same_covariances(covariance_type):
    """X + 1e6 gives X's covariances to rtol 1e-6 (sklearn's tied/diag/spherical cannot)."""
    X, (w0, m0, c0) = _data(covariance_type, seed=14)
    n_iter = 20
    with pytest.warns(ConvergenceWarning):
        near = _from_start((w0, m0, c0), covariance_type, max_iter=n_iter, tol=0.0).fit(X)
    with pytest.warns(ConvergenceWarning):
        far = _from_start((w0, m0 + 1e6, c0), covariance_type, max_iter=n_iter,
                          tol=0.0).fit(X + 1e6)
    np.testing.assert_allclose(far.covariances_, near.covariances_, rtol=1e-6,
                               atol=1e-6 * np.abs(near.covariances_).max())
    np.testing.assert_allclose(far.weights_, near.weights_, rtol=1e-6)
    np.testing.assert_allclose(far.means_ - 1e6, near.means_, atol=1e-6)
    np.testing.assert_allclose(far.predict_proba(X + 1e6), near.predict_proba(X), atol=1e-6)


@pytest.mark.parametrize("separation", [1e4, 1e8])
def test_components_far_apart_fit_each_group(covariance_type, separation):
    """Groups far apart relative to their spread (a unit group and a tight one, 1e4 or 1e8
    apart): the fit is each group's own maximum-likelihood Gaussian, as exact as the
    data allows (moments about each component's mean: nothing cancels however far)."""
    rng = np.random.default_rng(16)
    groups = [rng.normal(size=(300, 2)) @ [[1.0, 0.3], [0.0, 0.8]],
              separation + 1e-3 * rng.normal(size=(60, 2))]
    X = np.vstack(groups)
    gm = GaussianMixture(2, covariance_type=covariance_type, random_state=0).fit(X)
    order = np.argsort(gm.means_[:, 0])
    reg = gm.reg_covar
    # Each group's moments from its rows minus its first row (exact differences), as
    # np.cov on the rows themselves loses ~1e-8 of the tight group's covariance at 1e8.
    full = [np.cov((g - g[0]).T, bias=True) + reg * np.eye(2) for g in groups]
    means = [g[0] + (g - g[0]).mean(axis=0) for g in groups]
    want = {"full": np.stack(full),
            "tied": sum(len(g) * (c - reg * np.eye(2)) for g, c in zip(groups, full)) / len(X)
            + reg * np.eye(2),
            "diag": np.stack([np.diag(c) for c in full]),
            "spherical": np.array([np.trace(c) / 2 for c in full])}[covariance_type]
    got = gm.covariances_ if covariance_type == "tied" else gm.covariances_[order]
    np.testing.assert_allclose(got, want, rtol=1e-9)
    np.testing.assert_allclose(gm.means_[order], means, rtol=1e-15, atol=1e-12)
    np.testing.assert_allclose(gm.weights_[order], [300 / 360, 60 / 360], rtol=1e-12)
    np.testing.assert_array_equal(gm.predict(X), order.argsort()[np.repeat([0, 1], [300, 60])])


def test_float32_close_to_float64(covariance_type):
    """float32 data: within 1e-3 of the float64 fit, positive-definite covariances."""
    X, start = _data(covariance_type, seed=15)
    n_iter = 15
    with pytest.warns(ConvergenceWarning):
        fit64 = _from_start(start, covariance_type, max_iter=n_iter, tol=0.0).fit(X)
    with pytest.warns(ConvergenceWarning):
        fit32 = _from_start(start, covariance_type, max_iter=n_iter,
                            tol=0.0).fit(X.astype(np.float32))
    for name in ("weights_", "means_", "covariances_"):
        np.testing.assert_allclose(getattr(fit32, name), getattr(fit64, name), rtol=1e-3,
                                   atol=1e-3, err_msg=name)
    assert fit32.lower_bound_ == pytest.approx(fit64.lower_bound_, rel=1e-3)
    assert _is_positive_definite(fit32.covariances_, covariance_type)
    np.testing.assert_allclose(fit32.score_samples(X), fit64.score_samples(X), rtol=1e-3,
                               atol=1e-3)


def test_float32_degenerate_data_positive_definite(covariance_type):
    """Nearly collinear float32 data, far from the origin: still positive-definite.

    The smallest covariance eigenvalue (~2e-5 against ~5) is far above float32's
    resolution, but a float32 x x^T - m m^T about the origin (offset 100) loses it:
    sklearn's tied fit fails here.
    """
    rng = np.random.default_rng(16)
    t = rng.normal(size=(2000, 1))
    X = np.hstack([t, 2 * t + 1e-2 * rng.normal(size=(2000, 1)), rng.normal(size=(2000, 1))])
    gm = GaussianMixture(2, covariance_type=covariance_type, random_state=0)
    gm.fit((X + 100).astype(np.float32))
    assert _is_positive_definite(gm.covariances_, covariance_type)
    assert all(np.all(np.isfinite(getattr(gm, name))) for name in ATTRIBUTES)


def test_dtype_follows_input(covariance_type, dtype):
    X, _ = _data(covariance_type, n_samples=200, seed=17)
    X = X.astype(dtype)
    gm = GaussianMixture(3, covariance_type=covariance_type, random_state=0).fit(X)
    for name in ATTRIBUTES:
        assert getattr(gm, name).dtype == dtype, name
    assert gm.score_samples(X).dtype == dtype
    assert gm.predict_proba(X).dtype == dtype
    assert np.issubdtype(gm.predict(X).dtype, np.integer)
    # Predicting float64 data on a float32 model (and the reverse) works.
    other = np.float64 if dtype == np.float32 else np.float32
    np.testing.assert_array_equal(gm.predict(X.astype(other)), gm.predict(X))


def test_integer_and_float16_input():
    X, _ = _data("full", n_samples=200, seed=18)
    gm = GaussianMixture(2, random_state=0).fit(np.round(X * 10).astype(np.int64))
    assert gm.means_.dtype == np.float64
    gm = GaussianMixture(2, random_state=0).fit(X.astype(np.float16))
    assert gm.means_.dtype == np.float32


def test_c_and_fortran_order_agree(covariance_type):
    X, start = _data(covariance_type, seed=19)
    c_fit = _from_start(start, covariance_type).fit(np.ascontiguousarray(X))
    f_fit = _from_start(start, covariance_type).fit(np.asfortranarray(X))
    for name in ATTRIBUTES:
        np.testing.assert_allclose(getattr(f_fit, name), getattr(c_fit, name), rtol=1e-12,
                                   err_msg=name)
    np.testing.assert_allclose(c_fit.score_samples(np.asfortranarray(X)),
                               c_fit.score_samples(X), rtol=1e-12)
    # A strided view (every other row) is data too.
    np.testing.assert_allclose(c_fit.score_samples(X[::2]),
                               c_fit.score_samples(np.ascontiguousarray(X[::2])), rtol=1e-12)


def test_responsibilities_sum_to_one(covariance_type, dtype):
    X, _ = _data(covariance_type, seed=20)
    X = X.astype(dtype)
    gm = GaussianMixture(3, covariance_type=covariance_type, random_state=0).fit(X)
    far = np.vstack([X, np.full((3, X.shape[1]), 1e3, dtype=dtype)])
    resp = gm.predict_proba(far)
    assert np.all(resp >= 0) and np.all(np.isfinite(resp))
    np.testing.assert_allclose(resp.sum(axis=1), 1.0, rtol=1e-5 if dtype == np.float32 else 1e-12)
    assert np.all(np.isfinite(gm.score_samples(far)))


@pytest.mark.parametrize("max_iter", [1, 100])
def test_fit_predict_equals_fit_then_predict(covariance_type, max_iter):
    X, _ = _data(covariance_type, seed=21, separation=1.0)
    params = dict(n_components=3, covariance_type=covariance_type, random_state=0,
                  max_iter=max_iter)
    with pytest.warns(ConvergenceWarning) if max_iter == 1 else _no_warning():
        labels = GaussianMixture(**params).fit_predict(X)
    with pytest.warns(ConvergenceWarning) if max_iter == 1 else _no_warning():
        gm = GaussianMixture(**params).fit(X)
    np.testing.assert_array_equal(labels, gm.predict(X))


class _no_warning:
    """Context doing nothing (warnings already fail the tests: filterwarnings=error)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_score_samples_and_predict_proba_at_chunk_edges(covariance_type, dtype):
    """The chunked predict kernels == the oracle for row counts around CHUNK_SIZE."""
    X, _ = _data(covariance_type, n_samples=3 * CHUNK_SIZE + 2, seed=22)
    X = X.astype(dtype)
    gm = GaussianMixture(3, covariance_type=covariance_type, random_state=0).fit(X)
    params = (gm.weights_, gm.means_, gm.precisions_cholesky_, covariance_type)
    rtol = 1e-10 if dtype == np.float64 else 1e-4
    for n in (1, CHUNK_SIZE - 1, CHUNK_SIZE, CHUNK_SIZE + 1, 3 * CHUNK_SIZE + 2):
        log_prob_norm, resp = ref.estep(X[:n], *params)
        np.testing.assert_allclose(gm.score_samples(X[:n]), log_prob_norm, rtol=rtol,
                                   atol=rtol * np.abs(log_prob_norm).max())
        np.testing.assert_allclose(gm.predict_proba(X[:n]), resp, rtol=rtol, atol=rtol)


def test_n_threads_bitwise_identical(covariance_type, dtype, parallel_passes):
    """Any n_threads gives bitwise the same model: fixed-order reduction of row blocks."""
    X, _ = _data(covariance_type, n_samples=20000, n_features=4, n_components=4, seed=23)
    X = X.astype(dtype)
    sample_weight = np.random.default_rng(24).uniform(0.5, 2, size=len(X))
    fits = []
    for n_threads in (1, 2):
        gm = GaussianMixture(4, covariance_type=covariance_type, random_state=0,
                             n_threads=n_threads, max_iter=20, tol=1e-6)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # identity is the point here
            fits.append(gm.fit(X, sample_weight=sample_weight))
    for name in ATTRIBUTES + ("lower_bound_", "lower_bounds_", "n_iter_", "converged_"):
        assert np.array_equal(getattr(fits[0], name), getattr(fits[1], name)), name
    for method in ("score_samples", "predict_proba", "predict"):
        assert np.array_equal(getattr(fits[0], method)(X), getattr(fits[1], method)(X)), method


# --- numerical corner cases -------------------------------------------------------------

@pytest.mark.parametrize("n_distinct", [3, 5])
def test_duplicate_rows_fit_with_default_reg_covar(covariance_type, n_distinct):
    """Components collapsing onto repeated points: reg_covar=1e-6 keeps them factorisable."""
    rng = np.random.default_rng(25)
    X = np.repeat(rng.normal(scale=3, size=(n_distinct, 2)), 40, axis=0)
    gm = GaussianMixture(3, covariance_type=covariance_type, random_state=0).fit(X)
    for name in ATTRIBUTES:
        assert np.all(np.isfinite(getattr(gm, name))), name
    assert np.isfinite(gm.lower_bound_)
    assert _is_positive_definite(gm.covariances_, covariance_type)
    assert np.all(np.isfinite(gm.score_samples(X)))


def test_duplicates_mixed_with_spread_data(covariance_type):
    rng = np.random.default_rng(26)
    X = np.vstack([np.tile([[1.0, -2.0]], (300, 1)), rng.normal(size=(300, 2))])
    gm = GaussianMixture(2, covariance_type=covariance_type, random_state=0).fit(X)
    assert all(np.all(np.isfinite(getattr(gm, name))) for name in ATTRIBUTES)
    assert np.isfinite(gm.lower_bound_)


def test_empty_component_stays_finite(covariance_type):
    """A component started 1e3 away from all data gets no responsibility: no NaN, and the
    other components match sklearn's. (Its mean: the contract's ``shift + sums / nk`` keeps
    the old mean; sklearn's ``0 / (10 eps)`` sends it to the origin. Not compared.)
    """
    rng = np.random.default_rng(43)
    X = rng.normal(size=(500, 2))
    start = (np.full(3, 1 / 3), np.array([[0.0, 0.0], [1e3, 1e3], [0.5, 0.5]]),
             ref.random_covariances(rng, 3, 2, covariance_type))
    ours = _from_start(start, covariance_type).fit(X)
    theirs = _sklearn_from_start(start, covariance_type).fit(X)
    for name in ATTRIBUTES:
        assert np.all(np.isfinite(getattr(ours, name))), name
    assert ours.weights_[1] < 1e-12
    np.testing.assert_allclose(ours.weights_, theirs.weights_, rtol=1e-7, atol=1e-15)
    np.testing.assert_allclose(ours.means_[[0, 2]], theirs.means_[[0, 2]], rtol=1e-7)
    assert ours.lower_bound_ == pytest.approx(theirs.lower_bound_, rel=1e-7)
    np.testing.assert_allclose(ours.score_samples(X), theirs.score_samples(X), rtol=1e-7)


def test_singular_covariance_raises_actionable_error(covariance_type):
    """Identical rows with reg_covar=0: a zero covariance cannot be factorised (for diag
    and spherical at the origin only: elsewhere they take scikit-learn's variance)."""
    X = np.tile([[0.0, 0.0, 0.0]], (20, 1))
    gm = GaussianMixture(1, covariance_type=covariance_type, reg_covar=0.0, random_state=0)
    with pytest.raises(ValueError, match="reg_covar") as info:
        gm.fit(X)
    which = ("the tied covariance is" if covariance_type == "tied"
             else f"the {covariance_type} covariance of component 0 is")
    assert which in str(info.value)
    assert str(info.value).startswith(
        "Fitting the mixture model failed because some components have ill-defined empirical "
        "covariance (for instance caused by singleton or collapsed samples). Try to decrease "
        "the number of components, increase reg_covar, or scale the input data.")
    if covariance_type in ("full", "tied"):
        with pytest.raises(ValueError, match=which):
            gm.fit(X + [1.0, 2.0, 3.0])


@pytest.mark.parametrize("covariance_type", ["diag", "spherical"])
def test_identical_rows_take_sklearn_variance(covariance_type):
    """scikit-learn's E[x^2] - E[x]^2 with nk + 10 eps leaves ~10 eps m^2 / nk where the
    variance is 0; gmm_fast takes that value there (only there), so such fits go on."""
    X = np.ones((10, 2))
    ours = GaussianMixture(1, covariance_type=covariance_type, reg_covar=0.0).fit(X)
    theirs = SklearnGaussianMixture(1, covariance_type=covariance_type, reg_covar=0.0).fit(X)
    # (10 eps m^2 / nk up to nk / nk' ~ 1; scikit-learn's own rounding moves it by 1 ulp)
    np.testing.assert_allclose(ours.covariances_, theirs.covariances_, rtol=1e-12)
    np.testing.assert_allclose(ours.covariances_, 10 * np.finfo(float).eps / 10, rtol=1e-12)


@pytest.mark.parametrize("init_params", ["k-means++", "random_from_data"])
@pytest.mark.parametrize("covariance_type, total", [("spherical", -384.314095),
                                                    ("diag", -306.860461)])
def test_reg_covar_zero_one_sample_starts_fit_iris(init_params, covariance_type, total):
    """One sample per component at the start, reg_covar=0: the start is a spike at each
    sample, as in scikit-learn, and EM reaches mclust's VII / VVI optimum on iris."""
    X = load_iris().data
    gm = GaussianMixture(3, covariance_type=covariance_type, reg_covar=0.0,
                         init_params=init_params, random_state=0, tol=1e-10,
                         max_iter=2000).fit(X)
    assert gm.converged_
    # (the optimum to the 6 decimals quoted; tol=1e-10 puts the fit far closer)
    assert gm.score(X) * len(X) == pytest.approx(total, abs=1e-6)


@pytest.mark.parametrize("init_params", ["k-means++", "random_from_data"])
def test_reg_covar_zero_tied_one_sample_start(init_params):
    """A shared covariance cannot come from single samples: with reg_covar=0 the tied
    start takes the data's covariance (scikit-learn's start is broad there too)."""
    X = load_iris().data
    gm = GaussianMixture(3, covariance_type="tied", reg_covar=0.0, init_params=init_params,
                         random_state=0, max_iter=0).fit(X)
    np.testing.assert_allclose(gm.covariances_, np.cov(X.T, bias=True), rtol=1e-12)
    assert GaussianMixture(3, covariance_type="tied", reg_covar=0.0, init_params=init_params,
                           random_state=0).fit(X).converged_


def test_divergent_start_fits_and_reports_not_converged():
    """scikit-learn's issue 18216 start: two components collapse onto one sample each
    in the first M-step (reg_covar=0). The fit ends, with converged_ False."""
    X = np.random.RandomState(0).uniform(size=(30, 3))
    means_init = np.array([
        [0.670637869618158, 0.21038256107384043, 0.12892629765485303],
        [0.09394051075844147, 0.5759464955561779, 0.929296197576212],
        [0.5033230372781258, 0.9569852381759425, 0.08654043447295741],
        [0.18578301420435747, 0.5531158970919143, 0.19388943970532435],
        [0.4548589928173794, 0.35182513658825276, 0.568146063202464],
        [0.609279894978321, 0.7929063819678847, 0.9620097270828052]])
    precisions_init = np.array([999999.999604483, 999999.9990869573, 553.7603944542167,
                                204.78596008931834, 15.867423501783637, 85.4595728389735])
    weights_init = np.array([1, 1, 2, 2, 21, 3]) / 30
    kwargs = dict(n_components=6, covariance_type="spherical", reg_covar=0.0,
                  means_init=means_init, weights_init=weights_init,
                  precisions_init=precisions_init, random_state=0, max_iter=1)
    with pytest.warns(ConvergenceWarning, match="did not converge"):
        gm = GaussianMixture(**kwargs).fit(X)
    assert not gm.converged_ and gm.n_iter_ == 1 and len(gm.lower_bounds_) == 1
    assert np.all(gm.covariances_ > 0) and np.isfinite(gm.lower_bound_)
    with pytest.warns(SklearnConvergenceWarning):
        theirs = SklearnGaussianMixture(**kwargs).fit(X)
    np.testing.assert_allclose(gm.weights_, theirs.weights_, rtol=1e-9)
    np.testing.assert_allclose(gm.means_, theirs.means_, rtol=1e-9)


def test_score_is_mean_of_score_samples_in_float32():
    """score(X) is numpy's mean of score_samples(X), in the model's dtype, as in
    scikit-learn (a float64 sum differed from it in float32's last bit)."""
    X = load_iris().data.astype(np.float32)
    gm = GaussianMixture(3, random_state=0).fit(X)
    assert gm.score(X) == float(gm.score_samples(X).mean())


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("scale", [1e-50, 1e-12, 1e40])
def test_only_the_ratios_of_sample_weight_matter(covariance_type, dtype, scale):
    """Weights times any positive constant give the same fit (float32 X included, whose
    dtype cannot hold 1e-50 or 1e40 as they are)."""
    X, start = _data(covariance_type, seed=31)
    X = X.astype(dtype)
    sample_weight = np.random.default_rng(32).uniform(0.5, 2.0, size=len(X))
    base = _from_start(start, covariance_type).fit(X, sample_weight=sample_weight)
    scaled = _from_start(start, covariance_type).fit(X, sample_weight=scale * sample_weight)
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    for name in ATTRIBUTES:
        np.testing.assert_allclose(getattr(scaled, name), getattr(base, name), rtol=rtol,
                                   atol=rtol * np.abs(getattr(base, name)).max(), err_msg=name)


# --- estimator behaviour -------------------------------------------------------------------

def test_warm_start_continues_where_it_left_off(covariance_type):
    X, start = _data(covariance_type, seed=27, separation=1.5)
    with pytest.warns(ConvergenceWarning):
        straight = _from_start(start, covariance_type, max_iter=6, tol=0.0).fit(X)
    warm = _from_start(start, covariance_type, max_iter=2, tol=0.0, warm_start=True)
    for _ in range(3):
        with pytest.warns(ConvergenceWarning):
            warm.fit(X)
    for name in ATTRIBUTES:
        np.testing.assert_allclose(getattr(warm, name), getattr(straight, name), rtol=1e-10,
                                   atol=1e-13, err_msg=name)


@pytest.mark.parametrize("change", [dict(n_components=3), dict(covariance_type="full"),
                                    dict(covariance_type="spherical"), "features"])
def test_warm_start_with_another_configuration_is_an_error(change):
    """A warm start from a model of another shape is an error that says so."""
    X, _ = _data("diag", seed=34)
    gm = GaussianMixture(2, covariance_type="diag", warm_start=True, random_state=0).fit(X)
    if change == "features":
        X = np.hstack([X, X[:, :1]])
    else:
        gm.set_params(**change)
    with pytest.raises(ValueError, match=r"(?s)warm_start=True.*means \(2, 3\).*\(2, 3\)"):
        gm.fit(X)
    gm.set_params(warm_start=False).fit(X)  # starting anew works
    assert gm.means_.shape == (gm.n_components, X.shape[1])


def test_warm_start_after_convergence_stops_at_once(covariance_type):
    """A converged warm model refit: one EM step from where it was, then converged."""
    X, _ = _data(covariance_type, seed=28)
    gm = GaussianMixture(3, covariance_type=covariance_type, random_state=0, warm_start=True,
                         tol=1e-4, max_iter=500).fit(X)
    first = (gm.weights_.copy(), gm.means_.copy(), gm.covariances_.copy())
    gm.fit(X)
    assert gm.n_iter_ == 1 and gm.converged_
    _, *step = ref.em_step(X, np.ones(len(X)), *first, covariance_type, gm.reg_covar)
    for got, want in zip((gm.weights_, gm.means_, gm.covariances_), step):
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)
    # Without warm_start the second fit starts over.
    cold = GaussianMixture(3, covariance_type=covariance_type, random_state=0, tol=1e-4,
                           max_iter=500).fit(X)
    assert cold.fit(X).n_iter_ > 1


@pytest.mark.parametrize("covariance_type, random_state",
                         [("full", 1), ("diag", 1), ("spherical", 0)])
def test_best_of_n_init(covariance_type, random_state):
    """n_init=5 keeps the start with the highest final lower bound, here not the first
    (tied reaches one optimum from every start on this data; the selection is shared)."""
    X, _ = _data(covariance_type, seed=29, separation=1.5)
    one = GaussianMixture(4, covariance_type=covariance_type, init_params="random",
                          random_state=random_state, max_iter=500).fit(X)
    many = GaussianMixture(4, covariance_type=covariance_type, init_params="random",
                           random_state=random_state, n_init=5, max_iter=500, verbose=2)
    with contextlib.redirect_stdout(io.StringIO()) as printed:
        many.fit(X)
    # Each start's final lower bound, as verbose prints it (5 decimals).
    bounds = [float(b) for b in re.findall(r"Initialization .*lower bound (\S+)\.\n",
                                            printed.getvalue())]
    assert len(bounds) == 5 and np.argmax(bounds) != 0
    assert bounds[0] == pytest.approx(one.lower_bound_, abs=1e-5)  # the same first start
    assert many.lower_bound_ == pytest.approx(max(bounds), abs=1e-5)
    assert many.lower_bound_ > one.lower_bound_ + 2e-5


@pytest.mark.parametrize("init_params", ["kmeans", "k-means++", "random", "random_from_data"])
def test_init_params_reproducible(covariance_type, init_params):
    X, _ = _data(covariance_type, seed=30)
    fits = [GaussianMixture(3, covariance_type=covariance_type, init_params=init_params,
                            random_state=7, max_iter=500).fit(X) for _ in range(2)]
    for name in ATTRIBUTES:
        assert np.array_equal(getattr(fits[0], name), getattr(fits[1], name)), name
        assert np.all(np.isfinite(getattr(fits[0], name)))


def test_random_from_data_init_uses_only_weighted_rows():
    """Random inits draw proportionally to weight: zero-weight rows are never picked."""
    rng = np.random.default_rng(31)
    X = rng.normal(size=(300, 2))
    sample_weight = np.zeros(len(X))
    chosen = rng.choice(len(X), size=5, replace=False)
    sample_weight[chosen] = 1.0
    for seed in range(5):
        gm = GaussianMixture(3, init_params="random_from_data", max_iter=0,
                             random_state=seed).fit(X, sample_weight=sample_weight)
        for mean in gm.means_:
            assert np.any(np.all(X[chosen] == mean, axis=1)), mean


def test_convergence_warning(covariance_type):
    X, _ = _data(covariance_type, seed=32, separation=1.0)
    gm = GaussianMixture(3, covariance_type=covariance_type, max_iter=2, tol=0.0, random_state=0)
    from sklearn.exceptions import ConvergenceWarning as SklearnConvergenceWarning
    with pytest.warns(ConvergenceWarning, match="converge") as record:
        gm.fit(X)
    assert not gm.converged_ and gm.n_iter_ == 2 and len(gm.lower_bounds_) == 2
    # Code written for sklearn filters sklearn's class; ours is a subclass of it here.
    assert issubclass(record[0].category, SklearnConvergenceWarning)


def test_max_iter_zero_keeps_initial_parameters():
    """max_iter=0 (allowed by sklearn) returns the initialisation, without a warning."""
    X, (w0, m0, _) = _data("full", seed=33)
    gm = GaussianMixture(3, weights_init=w0, means_init=m0, max_iter=0, random_state=0).fit(X)
    np.testing.assert_allclose(gm.means_, m0)
    np.testing.assert_allclose(gm.weights_, w0)
    assert gm.n_iter_ == 0


def test_sample(covariance_type):
    X, start = _data(covariance_type, n_features=2, seed=34, separation=6.0)
    gm = _from_start(start, covariance_type, random_state=0).fit(X)
    n = 20000
    samples, labels = gm.sample(n)
    assert samples.shape == (n, 2) and labels.shape == (n,)
    assert set(np.unique(labels)) <= set(range(3))
    # Component proportions: binomial standard error <= 0.0035 at n = 2e4.
    np.testing.assert_allclose(np.bincount(labels, minlength=3) / n, gm.weights_, atol=0.02)
    full = ref._full_covariances(gm.covariances_, covariance_type, 3, 2)
    for k in range(3):
        rows = samples[labels == k]
        np.testing.assert_allclose(rows.mean(axis=0), gm.means_[k], atol=0.1)
        np.testing.assert_allclose(np.cov(rows.T), full[k], rtol=0.1, atol=0.1)
    # Reproducible with an integer random_state.
    np.testing.assert_array_equal(gm.sample(5)[0], gm.sample(5)[0])
    with pytest.raises(ValueError, match="n_samples"):
        gm.sample(0)


def test_pickle_roundtrip(covariance_type):
    X, _ = _data(covariance_type, seed=35)
    gm = GaussianMixture(3, covariance_type=covariance_type, random_state=0).fit(X)
    clone = pickle.loads(pickle.dumps(gm))
    for name in ATTRIBUTES + ("lower_bound_", "n_iter_", "converged_", "n_features_in_"):
        assert np.array_equal(getattr(clone, name), getattr(gm, name)), name
    np.testing.assert_array_equal(clone.score_samples(X), gm.score_samples(X))
    assert clone.get_params() == gm.get_params()


def test_dataframe_feature_names():
    import pandas as pd  # a declared test dependency

    X, _ = _data("full", n_samples=200, seed=36)
    frame = pd.DataFrame(X, columns=["a", "b", "c"])
    gm = GaussianMixture(2, random_state=0).fit(frame)
    np.testing.assert_array_equal(gm.feature_names_in_, ["a", "b", "c"])
    assert gm.n_features_in_ == 3
    labels = gm.predict(frame)
    with pytest.warns(UserWarning, match="feature names"):
        np.testing.assert_array_equal(gm.predict(X), labels)


def test_verbose_prints_progress(capsys):
    X, _ = _data("diag", n_samples=200, seed=37)
    GaussianMixture(2, covariance_type="diag", verbose=2, verbose_interval=1,
                    random_state=0).fit(X)
    out = capsys.readouterr().out
    assert "Initialization" in out and "Iteration" in out


# --- memory ----------------------------------------------------------------------------------

def _peak_bytes(func):
    import tracemalloc  # numpy reports its allocations to tracemalloc
    tracemalloc.start()
    try:
        func()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("init_params", ["explicit", "random", "random_from_data"])
def test_fit_memory_grows_by_rows_not_rows_times_components(init_params):
    """No n x k (or n x k x d) temporary: peak memory per extra row << 8 k bytes.

    Measured as the slope of the traced peak between n and 2n rows, so constant-size chunk
    buffers cancel. Allowed: a few length-n vectors (random_from_data's permutation of the
    rows, as scikit-learn draws them): 32 bytes/row, against 8 * k = 128 bytes/row for one
    n x k float64 array.
    (KMeans init is KMeans's business and is left out.)
    """
    n_components, n_features = 16, 2
    rng = np.random.default_rng(40)
    X_big = rng.normal(size=(500_000, n_features))
    start = dict(weights_init=np.full(n_components, 1 / n_components),
                 means_init=X_big[:n_components],
                 precisions_init=np.stack([np.eye(n_features)] * n_components))
    params = start if init_params == "explicit" else dict(init_params=init_params)

    def fit(n):
        def run():
            gm = GaussianMixture(n_components, max_iter=2, tol=0.0, random_state=0, **params)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)  # 2 iterations on purpose
                gm.fit(X_big[:n])
        return run

    n = len(X_big) // 2
    slope = (_peak_bytes(fit(2 * n)) - _peak_bytes(fit(n))) / n
    assert slope < 32, f"{slope:.1f} bytes per row"


def test_float32_X_is_not_copied():
    """float32 X reaches the kernels as it is: fit and score_samples grow by the
    float32 log-likelihoods only (4 bytes/row), against 64 bytes/row for a float64
    copy of these 8 features (32 for a float32 copy)."""
    n_components, n_features = 4, 8
    X = np.random.default_rng(43).normal(size=(400_000, n_features)).astype(np.float32)
    start = dict(weights_init=np.full(n_components, 1 / n_components),
                 means_init=X[:n_components],
                 precisions_init=np.stack([np.eye(n_features)] * n_components))

    def fit(n):
        def run():
            gm = GaussianMixture(n_components, max_iter=2, tol=0.0, **start)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)  # 2 iterations on purpose
                gm.fit(X[:n])
            assert gm.score_samples(X[:n]).dtype == np.float32
        return run

    n = len(X) // 2
    slope = (_peak_bytes(fit(2 * n)) - _peak_bytes(fit(n))) / n
    assert slope < 16, f"{slope:.1f} bytes per row"


@pytest.mark.parametrize("init_params", ["explicit", "random"])
def test_unweighted_fit_allocates_no_weight_vector(init_params):
    """sample_weight=None reaches the kernels as None: no n-vector of ones.

    Slope of the traced peak between n and 2n rows, as above: measured ~0.2 bytes/row
    unweighted, 8-9 with ``sample_weight=np.ones(n)`` (the vector itself)."""
    n_components, n_features = 8, 2
    rng = np.random.default_rng(42)
    X = rng.normal(size=(400_000, n_features))
    params = (dict(init_params=init_params) if init_params == "random" else
              dict(weights_init=np.full(n_components, 1 / n_components),
                   means_init=X[:n_components],
                   precisions_init=np.stack([np.eye(n_features)] * n_components)))

    def fit(n):
        def run():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)  # 2 iterations on purpose
                GaussianMixture(n_components, max_iter=2, tol=0.0, random_state=0,
                                **params).fit(X[:n])
        return run

    n = len(X) // 2
    slope = (_peak_bytes(fit(2 * n)) - _peak_bytes(fit(n))) / n
    assert slope < 2, f"{slope:.1f} bytes per row"


@pytest.mark.parametrize("init_params", ["kmeans", "k-means++", "random", "random_from_data"])
def test_none_sample_weight_fits_as_unit_weights(covariance_type, init_params):
    """Bitwise the same model with sample_weight=None and with ones (same draws too)."""
    X, _ = _data(covariance_type, n_samples=500, seed=6)
    params = dict(covariance_type=covariance_type, init_params=init_params, n_init=2,
                  random_state=3, n_threads=2)
    none = GaussianMixture(3, **params).fit(X)
    ones = GaussianMixture(3, **params).fit(X, sample_weight=np.ones(len(X)))
    for name in ATTRIBUTES:
        assert np.array_equal(getattr(none, name), getattr(ones, name)), name
    assert none.lower_bound_ == ones.lower_bound_ and none.n_iter_ == ones.n_iter_
    assert none.score(X) == pytest.approx(ones.score(X), rel=1e-14)


def test_score_samples_and_predict_memory():
    """score_samples/predict hold only their outputs (8 bytes/row), not n x k."""
    n_components = 16
    rng = np.random.default_rng(41)
    X = rng.normal(size=(400_000, 2))
    gm = GaussianMixture(n_components, covariance_type="diag", max_iter=2, tol=0.0,
                         init_params="random_from_data", random_state=0)
    with pytest.warns(ConvergenceWarning):
        gm.fit(X[:2000])
    n = len(X) // 2
    for method in (gm.score_samples, gm.predict):
        slope = (_peak_bytes(lambda: method(X)) - _peak_bytes(lambda: method(X[:n]))) / n
        assert slope < 8 * n_components / 4, (method.__name__, slope)


def test_concurrent_predictions_from_python_threads(covariance_type):
    """A fitted model used from several Python threads at once gives the sequential answers."""
    from concurrent.futures import ThreadPoolExecutor
    X, _ = _data(covariance_type, n_samples=5000, seed=42)
    gm = GaussianMixture(3, covariance_type=covariance_type, random_state=0).fit(X)
    expected = gm.score_samples(X)
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: gm.score_samples(X), range(8)))
    for result in results:
        np.testing.assert_array_equal(result, expected)


@pytest.mark.parametrize("far", [1e4, 1e5, 1e6])
def test_component_collapsing_onto_a_far_group_matches_sklearn(far):
    """A broad component that collapses in one step onto a tight group of duplicates far
    from its old mean: its moments, summed about the old mean, lost eps |move|^2 to
    cancellation (covariance 1e-7 off at 1e4, a false "not positive definite" at 1e5,
    the lower bound 3e-3 off at 1e6). They are redone about the new mean (``moved_far``):
    scikit-learn's answers (its two-pass moments are exact here)."""
    rng = np.random.default_rng(0)
    X = np.vstack([np.round(rng.normal(0, 100, (500, 3))),
                   np.tile([far, 2 * far, -far], (20, 1))])
    means = np.array([[0.0, 0.0, 0.0], [1.3 * far, 1.8 * far, -0.9 * far]])
    covariances = np.array([np.eye(3) * 1e4, np.eye(3) * (0.5 * far) ** 2])
    kwargs = dict(n_components=2, covariance_type="full", tol=0, max_iter=2,
                  weights_init=[0.96, 0.04], means_init=means,
                  precisions_init=np.linalg.inv(covariances))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # (both: not converged after 2 iterations)
        ours = GaussianMixture(**kwargs).fit(X)
        theirs = SklearnGaussianMixture(**kwargs).fit(X)
    assert ours.lower_bound_ == pytest.approx(theirs.lower_bound_, rel=1e-12)
    np.testing.assert_allclose(ours.covariances_, theirs.covariances_, rtol=1e-7, atol=1e-12)
    np.testing.assert_allclose(ours.score_samples(X), theirs.score_samples(X), rtol=1e-9)
