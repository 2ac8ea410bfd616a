"""gmm_fast.KMeans inside scikit-learn: its estimator checks, clone, Pipeline, GridSearchCV."""
import warnings

import numpy as np
import pytest

from gmm_fast import KMeans

pytest.importorskip("sklearn")
from sklearn.base import clone  # noqa: E402
from sklearn.model_selection import GridSearchCV  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.utils.estimator_checks import estimator_checks_generator  # noqa: E402

# Checks that cannot pass, for a stated reason: none. (scikit-learn's own KMeans lists
# check_sample_weight_equivalence_on_dense_data; gmm_fast's draws treat integer weights
# as repeated rows exactly, gmm_fast._draws, on dense and sparse data alike.)
EXPECTED_FAILED_CHECKS = {}
# Not run: it needs SCIPY_ARRAY_API=1 before scipy is imported, and gmm_fast declares
# array_api_support=False (the kernels take numpy buffers), so it would only be skipped.
NOT_RUN = {"check_array_api_input"}


def _sklearn_checks():
    with warnings.catch_warnings():
        # sklearn warns that KMeans does not inherit BaseEstimator: by design,
        # sklearn is not a dependency; the protocol is implemented in _base.py.
        warnings.filterwarnings("ignore", "Estimator KMeans does not inherit", UserWarning)
        checks = list(estimator_checks_generator(
            KMeans(), legacy=True, expected_failed_checks=EXPECTED_FAILED_CHECKS,
            mark="xfail", xfail_strict=True))
    params = []
    for item in checks:
        marks = getattr(item, "marks", ())
        estimator, check = item.values if hasattr(item, "values") else item
        name = check.func.__name__ if hasattr(check, "func") else check.__name__
        if name not in NOT_RUN:
            params.append(pytest.param(estimator, check, marks=marks, id=name))
    return params


# sklearn's checks fit 8 clusters to data with 4 distinct points and expect no error.
@pytest.mark.filterwarnings("ignore:Number of distinct clusters:gmm_fast.ConvergenceWarning")
@pytest.mark.parametrize("estimator,check", _sklearn_checks())
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


@pytest.mark.filterwarnings("ignore:Number of distinct clusters:gmm_fast.ConvergenceWarning")
@pytest.mark.parametrize("n_clusters", [1, 2, 3, 4, 5])
def test_check_estimator_every_small_n_clusters(n_clusters):
    """All of sklearn's checks, none expected to fail, for 1 to 5 clusters (the sample
    weight equivalence check among them: weighted and repeated fits seed alike)."""
    from sklearn.utils.estimator_checks import check_estimator

    results = []

    def record(*, estimator, check_name, exception, status, expected_to_fail,
               expected_to_fail_reason):
        results.append((check_name, status, exception))

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Estimator KMeans does not inherit", UserWarning)
        check_estimator(KMeans(n_clusters), on_fail=None, on_skip=None, callback=record)
    failed = {name: repr(exc) for name, status, exc in results if status == "failed"}
    skipped = {name for name, status, _ in results if status == "skipped"}
    assert not failed, "\n".join(f"{name}: {exc}" for name, exc in failed.items())
    assert skipped <= NOT_RUN, skipped
    assert "check_sample_weight_equivalence_on_dense_data" in {name for name, _, _ in results}


def test_all_expected_failures_are_known_checks():
    names = {param.id for param in _sklearn_checks()}
    assert set(EXPECTED_FAILED_CHECKS) <= names
    assert "check_sample_weight_equivalence_on_dense_data" in names
    assert len(names) > 40


def test_clone_keeps_params_not_fit(rng):
    X = rng.normal(size=(100, 3))
    km = KMeans(4, init="random", n_init=2, random_state=1, n_threads=1).fit(X)
    copy = clone(km)
    assert copy.get_params() == km.get_params()
    assert not hasattr(copy, "cluster_centers_")
    np.testing.assert_array_equal(copy.fit(X).cluster_centers_, km.cluster_centers_)


def test_pipeline(rng):
    X = rng.normal(size=(200, 4)) * [1, 10, 100, 1000]
    pipe = make_pipeline(StandardScaler(), KMeans(3, random_state=0)).fit(X)
    scaled = StandardScaler().fit_transform(X)
    alone = KMeans(3, random_state=0).fit(scaled)
    np.testing.assert_array_equal(pipe.predict(X), alone.labels_)
    np.testing.assert_allclose(pipe.transform(X), alone.transform(scaled), rtol=1e-12)
    np.testing.assert_allclose(pipe.score(X), alone.score(scaled), rtol=1e-12)


def test_grid_search(rng):
    centers = np.array([[0, 0], [6, 0], [0, 6]])
    X = centers[rng.integers(3, size=300)] + rng.normal(size=(300, 2))
    search = GridSearchCV(KMeans(random_state=0), {"n_clusters": [1, 2, 3]}, cv=3).fit(X)
    # score is -inertia on the held-out fold: more clusters always score higher.
    assert search.best_params_ == {"n_clusters": 3}
    scores = search.cv_results_["mean_test_score"]
    assert scores[0] < scores[1] < scores[2] < 0
    assert isinstance(search.best_estimator_, KMeans)
