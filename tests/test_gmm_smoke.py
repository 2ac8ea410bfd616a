"""Quick smoke tests of GaussianMixture written with the implementation (the full suite
is tests/test_gaussian_mixture*.py)."""
import warnings

import numpy as np
import pytest
from sklearn.mixture import GaussianMixture as SklearnGaussianMixture

from gmm_fast import ConvergenceWarning, GaussianMixture
from gmm_fast._estep import CHUNK_SIZE
from gmm_fast._em import estep_statistics, mstep

COVARIANCE_TYPES = ["full", "tied", "diag", "spherical"]


def _blobs(rng, n_samples=600, n_features=3, n_components=3):
    centres = 6 * rng.standard_normal((n_components, n_features))
    parts = [rng.standard_normal((n_samples // n_components, n_features))
             @ rng.standard_normal((n_features, n_features)) + c for c in centres]
    return np.concatenate(parts)


def _sklearn_start(X, n_components, covariance_type):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        start = SklearnGaussianMixture(n_components, covariance_type=covariance_type,
                                       max_iter=1, random_state=0).fit(X)
    return dict(weights_init=start.weights_, means_init=start.means_,
                precisions_init=start.precisions_, covariance_type=covariance_type)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_parity_with_sklearn(covariance_type):
    X = _blobs(np.random.default_rng(0))
    init = _sklearn_start(X, 3, covariance_type)
    ours = GaussianMixture(3, tol=1e-6, **init).fit(X)
    theirs = SklearnGaussianMixture(3, tol=1e-6, **init).fit(X)
    assert ours.n_iter_ == theirs.n_iter_
    for name in ("weights_", "means_", "covariances_", "precisions_cholesky_"):
        np.testing.assert_allclose(getattr(ours, name), getattr(theirs, name), rtol=1e-7,
                                   atol=1e-10)
    np.testing.assert_allclose(ours.lower_bound_, theirs.lower_bound_, rtol=1e-10)
    np.testing.assert_allclose(ours.score_samples(X), theirs.score_samples(X), rtol=1e-9)
    np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), atol=1e-9)
    np.testing.assert_allclose(ours.bic(X), theirs.bic(X), rtol=1e-10)
    np.testing.assert_allclose(ours.aic(X), theirs.aic(X), rtol=1e-10)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("n_samples", [CHUNK_SIZE - 1, CHUNK_SIZE, CHUNK_SIZE + 1, 5000])
def test_statistics_bitwise_over_threads_and_additive(covariance_type, n_samples):
    rng = np.random.default_rng(1)
    X = _blobs(rng, n_samples=n_samples * 3)[:n_samples].copy()
    w = rng.uniform(0.5, 2, n_samples)
    init = _sklearn_start(X, 3, covariance_type)
    from gmm_fast._covariances import COVARIANCE_TYPES as helpers
    prec_chol = helpers[covariance_type].precisions_cholesky_from_precisions(
        init["precisions_init"])
    args = (init["weights_init"], init["means_init"], prec_chol, covariance_type)
    one = estep_statistics(X, w, *args, n_threads=1)
    two = estep_statistics(X, w, *args, n_threads=2)
    for field in ("nk", "sums", "second"):
        assert np.array_equal(getattr(one, field), getattr(two, field))
    assert one.log_likelihood == two.log_likelihood
    half = n_samples // 2
    parts = estep_statistics(X[:half], w[:half], *args) + estep_statistics(X[half:], w[half:],
                                                                            *args)
    np.testing.assert_allclose(parts.second, one.second, rtol=1e-10, atol=1e-9)
    np.testing.assert_allclose(parts.log_likelihood, one.log_likelihood, rtol=1e-12)
    weights, means, covariances = mstep(one, covariance_type, 0.0)
    np.testing.assert_allclose(weights.sum(), 1.0)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_float32_stays_float32_and_close(covariance_type):
    X = _blobs(np.random.default_rng(2))
    init = _sklearn_start(X, 3, covariance_type)
    a = GaussianMixture(3, **init).fit(X)
    b = GaussianMixture(3, **init).fit(X.astype(np.float32))
    assert b.means_.dtype == np.float32 and b.covariances_.dtype == np.float32
    assert b.score_samples(X.astype(np.float32)).dtype == np.float32
    np.testing.assert_allclose(b.means_, a.means_, atol=1e-3)
    np.testing.assert_allclose(b.covariances_, a.covariances_, atol=1e-3)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_integer_weights_equal_repeated_rows(covariance_type):
    rng = np.random.default_rng(3)
    X = _blobs(rng, n_samples=300)
    counts = rng.integers(0, 4, len(X))
    init = _sklearn_start(X, 3, covariance_type)
    a = GaussianMixture(3, tol=1e-8, max_iter=20, **init)
    b = GaussianMixture(3, tol=1e-8, max_iter=20, **init)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        a.fit(X, sample_weight=counts)
        b.fit(np.repeat(X, counts, axis=0))
    np.testing.assert_allclose(a.covariances_, b.covariances_, rtol=1e-9)
    # Different row counts mean different chunks and summation orders: ~1e-12 apart.
    np.testing.assert_allclose(a.lower_bound_, b.lower_bound_, rtol=1e-10)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("init_params", ["kmeans", "k-means++", "random", "random_from_data"])
def test_degenerate_duplicates_fit(covariance_type, init_params):
    rng = np.random.default_rng(4)
    X = np.repeat(rng.standard_normal((5, 2)), 40, axis=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        gm = GaussianMixture(8, covariance_type=covariance_type, init_params=init_params,
                             random_state=0).fit(X)
    assert np.all(np.isfinite(gm.covariances_)) and np.all(np.isfinite(gm.means_))
    assert np.array_equal(gm.predict(X), gm.fit_predict(X))


def test_bad_inputs():
    X = np.random.default_rng(5).standard_normal((20, 2))
    with pytest.raises(ValueError, match="n_samples=20 should be >= n_components=30"):
        GaussianMixture(30).fit(X)
    with pytest.raises(ValueError, match="weights_init should sum to 1"):
        GaussianMixture(2, weights_init=[0.2, 0.2]).fit(X)
    with pytest.raises(ValueError, match="positive definite"):
        GaussianMixture(1, precisions_init=[[[1, 0], [0, -1]]]).fit(X)
    with pytest.raises(ValueError, match="not both"):
        GaussianMixture(1, precisions_init=np.eye(2)[None], covariances_init=np.eye(2)[None]).fit(X)
    with pytest.raises(ValueError, match="component 0"):
        GaussianMixture(1, reg_covar=0, covariance_type="diag").fit(np.zeros((10, 2)))


def test_iris_reference_values():
    from sklearn.datasets import load_iris
    X = load_iris().data
    gm = GaussianMixture(2, random_state=0, tol=1e-10, max_iter=1000).fit(X)
    np.testing.assert_allclose(gm.score(X) * len(X), -214.354704, rtol=1e-8)
    np.testing.assert_allclose(gm.bic(X), 574.0178, rtol=1e-7)
