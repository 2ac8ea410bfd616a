"""GaussianMixture inside scikit-learn: check_estimator, clone, Pipeline, GridSearchCV."""
import warnings

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import check_estimator

import gmm_reference as ref
from gmm_fast import GaussianMixture

# Checks that cannot pass for a principled reason, with the reason (none so far).
EXPECTED_FAILED_CHECKS = {}

# Skipped by sklearn itself unless SCIPY_ARRAY_API=1 is set; gmm_fast takes numpy input only.
ALLOWED_SKIPS = {"check_array_api_input"}


# The checks exercise the API, not the numerics (covered elsewhere for all four types):
# the default "full" and "tied" (the one whose parameters are shared) keep the suite quick;
# 1 to 5 components with "full" (the sample-weight equivalence check draws a random start).
@pytest.mark.parametrize("covariance_type, n_components",
                         [("full", 1), ("full", 2), ("full", 3), ("full", 4), ("full", 5),
                          ("tied", 1), ("tied", 3)])
def test_check_estimator(covariance_type, n_components):
    """All of sklearn's estimator checks, reporting every failure at once (not just the
    first), none expected to fail."""
    results = []

    def record(*, estimator, check_name, exception, status, expected_to_fail,
               expected_to_fail_reason):
        results.append((check_name, status, exception))

    with warnings.catch_warnings():
        # sklearn warns that the estimator does not inherit BaseEstimator: by design,
        # sklearn is not a dependency; _base.py implements its protocol instead.
        warnings.filterwarnings("ignore", "Estimator GaussianMixture does not inherit",
                                UserWarning)
        check_estimator(GaussianMixture(n_components, covariance_type=covariance_type),
                        expected_failed_checks=EXPECTED_FAILED_CHECKS, on_fail=None,
                        on_skip=None, callback=record)
    failed = {name: repr(exc) for name, status, exc in results if status == "failed"}
    skipped = {name for name, status, _ in results if status == "skipped"}
    assert not failed, "\n".join(f"{name}: {exc}" for name, exc in failed.items())
    assert skipped <= ALLOWED_SKIPS, skipped
    assert len(results) > 30  # the checks did run
    assert "check_sample_weight_equivalence_on_dense_data" in {name for name, _, _ in results}


def _blobs(seed=0):
    rng = np.random.default_rng(seed)
    return ref.make_mixture(rng, 600, 2, 3, "full", separation=6.0)[0]


def test_get_set_params_and_clone():
    gm = GaussianMixture(n_components=3, covariance_type="diag", tol=1e-4, reg_covar=1e-5,
                         n_threads=1, random_state=3)
    params = gm.get_params()
    assert params["n_components"] == 3 and params["covariance_type"] == "diag"
    expected = {"n_components", "covariance_type", "tol", "reg_covar", "max_iter", "n_init",
                "init_params", "weights_init", "means_init", "precisions_init",
                "random_state", "warm_start", "verbose", "verbose_interval",
                "covariances_init", "n_threads", "sort_components", "contamination",
                "missing_values", "learning_offset", "learning_decay"}
    assert set(params) == expected
    copy = clone(gm)
    assert copy.get_params() == params and copy is not gm
    assert copy.set_params(n_components=2) is copy and copy.n_components == 2
    with pytest.raises(ValueError, match="banana"):
        gm.set_params(banana=1)
    X = _blobs()
    fitted = clone(gm).fit(X)
    assert not hasattr(clone(fitted), "means_")


def test_pipeline():
    X = _blobs(1) * [100.0, 0.01]
    pipe = make_pipeline(StandardScaler(), GaussianMixture(3, random_state=0)).fit(X)
    labels = pipe.predict(X)
    assert labels.shape == (len(X),) and set(labels) == {0, 1, 2}
    scaled = StandardScaler().fit_transform(X)
    direct = GaussianMixture(3, random_state=0).fit(scaled)
    assert pipe.score(X) == pytest.approx(direct.score(scaled), rel=1e-10)
    np.testing.assert_allclose(pipe.predict_proba(X), direct.predict_proba(scaled), rtol=1e-10,
                               atol=1e-12)


def test_grid_search_cv():
    """GridSearchCV scores by held-out log-likelihood: 3 true groups beat 1."""
    X = _blobs(2)
    search = GridSearchCV(GaussianMixture(random_state=0),
                          {"n_components": [1, 3], "covariance_type": ["full", "spherical"]},
                          cv=3).fit(X)
    scores = search.cv_results_["mean_test_score"]
    params = search.cv_results_["params"]
    by = {(p["n_components"], p["covariance_type"]): s for p, s in zip(params, scores)}
    assert by[(3, "full")] > by[(1, "full")] + 0.5
    assert search.best_params_["n_components"] == 3
    assert isinstance(search.best_estimator_, GaussianMixture)
    assert search.best_estimator_.n_components == 3
