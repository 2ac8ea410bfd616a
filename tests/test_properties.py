"""Properties that must hold for any data, checked on data hypothesis generates.

Derandomised: every run (and CI) checks the same examples, so a failure is reproducible.
"""
import warnings

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import gmm_fast

finite = st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False, width=64)
datasets = st.integers(4, 60).flatmap(
    lambda n: st.integers(1, 4).flatmap(lambda d: arrays(np.float64, (n, d), elements=finite)))


def quietly(fit, *args, **kwargs):
    """Fit while ignoring the warnings degenerate generated data may give (duplicates)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", gmm_fast.ConvergenceWarning)
        return fit(*args, **kwargs)


@settings(max_examples=25, deadline=None, derandomize=True, database=None)
@given(X=datasets, n_clusters=st.integers(1, 4), seed=st.integers(0, 2**16))
def test_kmeans_labels_are_nearest_centres(X, n_clusters, seed):
    km = quietly(gmm_fast.KMeans(n_clusters, n_init=1, random_state=seed).fit, X)
    sq = ((X[:, None, :] - km.cluster_centers_[None]) ** 2).sum(-1)  # tiny data: n x k x d is fine
    nearest = sq[np.arange(len(X)), km.labels_]
    # Each label is a nearest centre (ties and rounding: within 1e-9 of the data's scale).
    scale = 1.0 + (X ** 2).sum(1).max()
    assert np.all(nearest <= sq.min(1) + 1e-9 * scale)
    np.testing.assert_allclose(km.inertia_, nearest.sum(), rtol=1e-9, atol=1e-9 * scale)
    # predict may break an exact tie differently (it works about another shift): any
    # nearest centre is right.
    predicted = km.predict(X)
    assert np.all(sq[np.arange(len(X)), predicted] <= sq.min(1) + 1e-9 * scale)


@settings(max_examples=20, deadline=None, derandomize=True, database=None)
@given(X=datasets, factor=st.floats(0.01, 100.0), seed=st.integers(0, 2**16))
def test_kmeans_weight_scale_does_not_matter(X, factor, seed):
    """Multiplying every weight by a constant changes neither centres nor labels (from one init)."""
    init = X[np.random.default_rng(seed).choice(len(X), 2, replace=False)]
    weights = np.random.default_rng(seed).uniform(0.5, 2.0, len(X))
    a = quietly(gmm_fast.KMeans(2, init=init, n_init=1).fit, X, sample_weight=weights)
    b = quietly(gmm_fast.KMeans(2, init=init, n_init=1).fit, X, sample_weight=factor * weights)
    np.testing.assert_allclose(a.cluster_centers_, b.cluster_centers_, rtol=1e-9,
                               atol=1e-9 * (1 + np.abs(X).max()))
    np.testing.assert_allclose(a.inertia_ * factor, b.inertia_, rtol=1e-9, atol=1e-6)


@settings(max_examples=20, deadline=None, derandomize=True, database=None)
@given(X=datasets, n_components=st.integers(1, 3),
       covariance_type=st.sampled_from(["full", "tied", "diag", "spherical"]),
       seed=st.integers(0, 2**16))
def test_gaussian_mixture_outputs_are_probabilities(X, n_components, covariance_type, seed):
    gm = quietly(gmm_fast.GaussianMixture(n_components, covariance_type=covariance_type,
                                          reg_covar=1e-3, random_state=seed, max_iter=20).fit, X)
    proba = gm.predict_proba(X)
    np.testing.assert_allclose(proba.sum(1), 1.0, rtol=1e-12)
    assert np.all(proba >= 0)
    assert np.all(np.isfinite(gm.score_samples(X)))
    np.testing.assert_array_equal(gm.predict(X), proba.argmax(1))
    np.testing.assert_allclose(gm.weights_.sum(), 1.0, rtol=1e-12)
