"""The plain-numpy oracle (gmm_reference.py) checked against scikit-learn and numpy.

Every kernel test trusts the oracle, so the oracle is checked first, with unit weights
against scikit-learn's own private helpers and estimator, and with general weights
against ``np.cov(..., aweights=...)`` and against repeating rows.
"""
import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning as SklearnConvergenceWarning
from sklearn.mixture import GaussianMixture as SklearnGaussianMixture
from sklearn.mixture._gaussian_mixture import (
    _compute_precision_cholesky,
    _estimate_gaussian_parameters,
    _estimate_log_gaussian_prob,
)

import gmm_reference as ref

# Tolerances: everything here is float64 on O(1)-scaled data. The oracle and sklearn
# compute the same quantities by different but stable orderings (sklearn expands the
# square for diag/spherical and adds 10*eps to nk), so they agree to a few hundred ulps
# of the largest term: 1e-10 relative leaves a wide margin and would still catch any
# wrong formula (those give O(1) relative differences).
RTOL = 1e-10


@pytest.fixture
def rng():
    return np.random.default_rng(20240611)


@pytest.fixture(params=ref.COVARIANCE_TYPES)
def covariance_type(request):
    return request.param


def _problem(rng, covariance_type, n_samples=400, n_features=3, n_components=3):
    X, weights, means, covariances = ref.make_mixture(rng, n_samples, n_features, n_components,
                                                      covariance_type)
    w0, m0, c0 = ref.perturbed_parameters(rng, weights, means, covariances, covariance_type)
    return X, w0, m0, c0


def test_precisions_cholesky_matches_sklearn(rng, covariance_type):
    _, _, _, covariances = _problem(rng, covariance_type)
    ours = ref.precisions_cholesky_from_covariances(covariances, covariance_type)
    theirs = _compute_precision_cholesky(covariances, covariance_type)
    np.testing.assert_allclose(ours, theirs, rtol=RTOL, atol=1e-14)
    # And it is a factor of the precision: U U^T = inv(covariance).
    np.testing.assert_allclose(
        ref.precisions_from_cholesky(ours, covariance_type),
        ref.covariances_from_precisions(covariances, covariance_type), rtol=1e-9, atol=1e-12)


def test_log_gaussian_prob_matches_sklearn(rng, covariance_type):
    X, _, means, covariances = _problem(rng, covariance_type)
    prec_chol = ref.precisions_cholesky_from_covariances(covariances, covariance_type)
    ours = ref.log_gaussian_prob(X, means, prec_chol, covariance_type)
    theirs = _estimate_log_gaussian_prob(X, means, prec_chol, covariance_type)
    # Absolute tolerance relative to the size of the terms (the Mahalanobis distances).
    np.testing.assert_allclose(ours, theirs, rtol=RTOL, atol=RTOL * np.abs(theirs).max())


def test_log_gaussian_prob_matches_scipy_density(rng, covariance_type):
    """An independent density: scipy's multivariate_normal with the full covariance."""
    from scipy.stats import multivariate_normal
    X, _, means, covariances = _problem(rng, covariance_type, n_samples=50)
    n_components, n_features = means.shape
    full = ref._full_covariances(covariances, covariance_type, n_components, n_features)
    prec_chol = ref.precisions_cholesky_from_covariances(covariances, covariance_type)
    ours = ref.log_gaussian_prob(X, means, prec_chol, covariance_type)
    for k in range(n_components):
        np.testing.assert_allclose(ours[:, k], multivariate_normal(means[k], full[k]).logpdf(X),
                                   rtol=1e-9)


def test_mstep_matches_sklearn_unit_weights(rng, covariance_type):
    X, w0, m0, c0 = _problem(rng, covariance_type)
    reg_covar = 1e-3
    prec_chol = ref.precisions_cholesky_from_covariances(c0, covariance_type)
    _, resp = ref.estep(X, w0, m0, prec_chol, covariance_type)
    stats = ref.estep_statistics(X, np.ones(len(X)), w0, m0, prec_chol, covariance_type)
    weights, means, covariances = ref.mstep(stats, covariance_type, reg_covar)
    nk, sk_means, sk_cov = _estimate_gaussian_parameters(X, resp, reg_covar, covariance_type)
    np.testing.assert_allclose(weights, nk / nk.sum(), rtol=RTOL)
    np.testing.assert_allclose(means, sk_means, rtol=RTOL, atol=RTOL * np.abs(X).max())
    np.testing.assert_allclose(covariances, sk_cov, rtol=RTOL, atol=RTOL * np.abs(sk_cov).max())


def test_mstep_two_routes_agree_weighted(rng, covariance_type):
    """Statistics about the old means + the contract's mstep == the textbook weighted M-step."""
    X, w0, m0, c0 = _problem(rng, covariance_type)
    sample_weight = rng.uniform(0.0, 3.0, size=len(X))
    prec_chol = ref.precisions_cholesky_from_covariances(c0, covariance_type)
    _, resp = ref.estep(X, w0, m0, prec_chol, covariance_type)
    stats = ref.estep_statistics(X, sample_weight, w0, m0, prec_chol, covariance_type)
    via_stats = ref.mstep(stats, covariance_type, 1e-4)
    direct = ref.mstep_from_resp(X, sample_weight, resp, covariance_type, 1e-4)
    for a, b in zip(via_stats, direct):
        np.testing.assert_allclose(a, b, rtol=RTOL, atol=RTOL)


def test_full_covariances_match_np_cov_aweights(rng):
    X, w0, m0, c0 = _problem(rng, "full")
    sample_weight = rng.uniform(0.0, 3.0, size=len(X))
    prec_chol = ref.precisions_cholesky_from_covariances(c0, "full")
    _, resp = ref.estep(X, w0, m0, prec_chol, "full")
    stats = ref.estep_statistics(X, sample_weight, w0, m0, prec_chol, "full")
    _, means, covariances = ref.mstep(stats, "full", 0.0)
    for k in range(len(w0)):
        aweights = sample_weight * resp[:, k]
        np.testing.assert_allclose(covariances[k], np.cov(X.T, aweights=aweights, bias=True),
                                   rtol=RTOL, atol=RTOL)
        np.testing.assert_allclose(means[k], np.average(X, axis=0, weights=aweights), rtol=RTOL)


def test_integer_weights_equal_repeated_rows(rng, covariance_type):
    X, w0, m0, c0 = _problem(rng, covariance_type, n_samples=120)
    counts = rng.integers(0, 4, size=len(X))
    a = ref.em_step(X, counts, w0, m0, c0, covariance_type, 1e-6)
    b = ref.em_step(np.repeat(X, counts, axis=0), np.ones(counts.sum()), w0, m0, c0,
                    covariance_type, 1e-6)
    for x, y in zip(a, b):
        np.testing.assert_allclose(x, y, rtol=RTOL)


def test_statistics_add_across_row_splits(rng, covariance_type):
    X, w0, m0, c0 = _problem(rng, covariance_type)
    sample_weight = rng.uniform(0.5, 2.0, size=len(X))
    prec_chol = ref.precisions_cholesky_from_covariances(c0, covariance_type)
    whole = ref.estep_statistics(X, sample_weight, w0, m0, prec_chol, covariance_type)
    parts = (ref.estep_statistics(X[:150], sample_weight[:150], w0, m0, prec_chol,
                                  covariance_type)
             + ref.estep_statistics(X[150:], sample_weight[150:], w0, m0, prec_chol,
                                    covariance_type))
    for name in ("log_likelihood", "sum_weights", "nk", "sums", "second"):
        np.testing.assert_allclose(getattr(parts, name), getattr(whole, name), rtol=RTOL,
                                   atol=RTOL * len(X))


def test_em_iterations_match_sklearn_estimator(rng, covariance_type):
    """Ten oracle EM steps == sklearn's GaussianMixture with max_iter=10 from the same start.

    Also pins down what sklearn's lower_bounds_[i] is: the mean log-likelihood under the
    parameters *before* the i-th M-step.
    """
    X, w0, m0, c0 = _problem(rng, covariance_type)
    reg_covar = 1e-6
    n_iter = 10
    params = (w0, m0, c0)
    lower_bounds = []
    for _ in range(n_iter):
        lower_bound, *params = ref.em_step(X, np.ones(len(X)), *params, covariance_type,
                                           reg_covar)
        lower_bounds.append(lower_bound)
    gm = SklearnGaussianMixture(
        n_components=len(w0), covariance_type=covariance_type, reg_covar=reg_covar,
        max_iter=n_iter, tol=0.0, weights_init=w0, means_init=m0,
        precisions_init=ref.covariances_from_precisions(c0, covariance_type))
    with pytest.warns(SklearnConvergenceWarning):
        gm.fit(X)
    # Ten iterations amplify the rounding differences a little: 1e-9.
    np.testing.assert_allclose(lower_bounds, gm.lower_bounds_, rtol=1e-9)
    np.testing.assert_allclose(params[0], gm.weights_, rtol=1e-9)
    np.testing.assert_allclose(params[1], gm.means_, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(params[2], gm.covariances_, rtol=1e-9, atol=1e-9)


def test_oracle_no_underflow_far_from_components(covariance_type, rng):
    """A point 1e3 standard deviations away still gets a finite log-density and resp."""
    _, w0, m0, c0 = _problem(rng, covariance_type)
    prec_chol = ref.precisions_cholesky_from_covariances(c0, covariance_type)
    X = np.full((2, m0.shape[1]), 1e3)
    log_prob_norm, resp = ref.estep(X, w0, m0, prec_chol, covariance_type)
    assert np.all(np.isfinite(log_prob_norm)) and np.all(log_prob_norm < -1e4)
    np.testing.assert_allclose(resp.sum(axis=1), 1.0, rtol=1e-12)
