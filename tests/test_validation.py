"""Bad input: every error names the parameter, what was expected and what came."""
import numpy as np
import pytest

from gmm_fast import KMeans, NotFittedError, kmeans_plusplus
from gmm_fast._validation import (check_array, check_nonnegative_float, check_positive_int,
                                  check_random_state, check_sample_weight)


@pytest.fixture
def X(rng):
    return rng.normal(size=(30, 3))


@pytest.fixture
def fitted(X):
    return KMeans(3, random_state=0).fit(X)


def with_value(X, row, col, value):
    X = X.copy()
    X[row, col] = value
    return X


@pytest.mark.parametrize("value,match", [
    (np.nan, r"Input X contains NaN \(first at row 4, 1 row\(s\)"),
    (np.inf, r"Input X contains infinity \(first at row 4"),
    (-np.inf, r"Input X contains infinity"),
])
def test_non_finite_X(X, fitted, value, match):
    bad = with_value(X, 4, 1, value)
    with pytest.raises(ValueError, match=match):
        KMeans(3).fit(bad)
    for method in (fitted.predict, fitted.transform, fitted.score):
        with pytest.raises(ValueError, match=match):
            method(bad)
    with pytest.raises(ValueError, match=match):
        KMeans(3).fit(bad.astype(np.float32))


def test_overflowing_X():
    with pytest.raises(ValueError, match="too large for float64: their sum overflows"):
        KMeans(1).fit(np.full((3, 2), 1e308))


def test_X_whose_squares_overflow(X):
    """Sums finite, squares not: the tolerance's scale (the column variances) would be
    infinite, and Lloyd would stop at once. fit's first pass over X, its column means
    and variances, is also its check of X's values."""
    with pytest.raises(ValueError, match="too large for float64: their squares overflow"):
        KMeans(2).fit(X * 1e160)
    KMeans(2).fit(X * 1e150)  # (squares within range: fitted)


@pytest.mark.parametrize("bad,ndim", [(np.arange(6.0), 1), (np.zeros((4, 3, 2)), 3),
                                      (np.float64(2.0), 0)])
def test_X_not_2d(bad, ndim, fitted):
    match = rf"Expected a 2D array for X, got {ndim}D array instead.*reshape"
    with pytest.raises(ValueError, match=match):
        KMeans(1).fit(bad)
    with pytest.raises(ValueError, match=match):
        fitted.predict(bad)


@pytest.mark.parametrize("shape,match", [
    ((0, 3), r"Found array with 0 sample\(s\) \(shape=\(0, 3\)\) while a minimum of 1"),
    ((5, 0), r"Found array with 0 feature\(s\) \(shape=\(5, 0\)\) while a minimum of 1"),
])
def test_empty_X(shape, match):
    with pytest.raises(ValueError, match=match):
        KMeans(1).fit(np.zeros(shape))


def test_complex_X(X):
    with pytest.raises(ValueError, match="Complex data not supported"):
        KMeans(2).fit(X + 1j)


def test_non_numeric_X():
    with pytest.raises(ValueError, match="X must be numeric: could not convert it to float.*'a'"):
        KMeans(1).fit(np.array([["a", "b"], ["c", "d"]]))
    objects = np.ones((3, 2), dtype=object)
    objects[1, 1] = {"key": 1}
    with pytest.raises(TypeError, match="X must be numeric: could not convert.*dict"):
        KMeans(1).fit(objects)
    with pytest.raises(TypeError, match=r"X must be numeric, got dtype datetime64\[s\]"):
        KMeans(1).fit(np.zeros((3, 2), dtype="datetime64[s]"))


def test_numeric_strings_and_bools_are_numbers():
    strings = KMeans(1).fit(np.array([["1", "2"], ["3", "4"]]))
    np.testing.assert_array_equal(strings.cluster_centers_, [[2.0, 3.0]])
    assert KMeans(1).fit(np.eye(3, dtype=bool)).cluster_centers_.dtype == np.float64


def test_sparse_X(X):
    """KMeans takes sparse X (tests/test_kmeans_sparse.py), checked as dense X is."""
    sparse = pytest.importorskip("scipy.sparse")
    with pytest.raises(ValueError, match=r"Found array with 0 sample\(s\)"):
        KMeans(2).fit(sparse.csr_matrix((0, 3)))
    with pytest.raises(ValueError, match=r"Found array with 0 feature\(s\)"):
        KMeans(2).fit(sparse.csr_matrix((3, 0)))
    with pytest.raises(ValueError, match="Complex data not supported"):
        KMeans(2).fit(sparse.csr_matrix(X.astype(complex)))
    with pytest.raises(ValueError, match="n_samples=30 should be >= n_clusters=31"):
        KMeans(31).fit(sparse.csr_matrix(X))


def test_n_samples_below_n_clusters(X):
    with pytest.raises(ValueError, match="n_samples=30 should be >= n_clusters=31"):
        KMeans(31).fit(X)
    with pytest.raises(ValueError, match="n_samples=30 should be >= n_clusters=31"):
        kmeans_plusplus(X, 31)


@pytest.mark.parametrize("weights,error,match", [
    (lambda n: np.r_[np.ones(n - 1), -0.5], ValueError,
     r"sample_weight must be >= 0, got -0.5 at index 29"),
    (lambda n: np.r_[np.nan, np.ones(n - 1)], ValueError, "sample_weight contains NaN or inf"),
    (lambda n: np.r_[np.inf, np.ones(n - 1)], ValueError, "sample_weight contains NaN or inf"),
    (lambda n: np.zeros(n), ValueError, "sample_weight sums to zero"),
    (lambda n: np.ones(n - 1), ValueError,
     r"sample_weight.shape=\(29,\) should be \(n_samples,\)=\(30,\)"),
    (lambda n: np.ones((n, 1)), ValueError,
     r"sample_weight.shape=\(30, 1\) should be \(n_samples,\)=\(30,\)"),
    (lambda n: np.array(["a"] * n), TypeError, "sample_weight must be numeric, got dtype <U1"),
])
def test_bad_sample_weight(X, fitted, weights, error, match):
    sample_weight = weights(len(X))
    with pytest.raises(error, match=match):
        KMeans(3).fit(X, sample_weight=sample_weight)
    with pytest.raises(error, match=match):
        fitted.score(X, sample_weight=sample_weight)
    with pytest.raises(error, match=match):
        kmeans_plusplus(X, 3, sample_weight=sample_weight)


@pytest.mark.parametrize("scale", [1e300, 1e-300])
def test_sample_weight_out_of_float32_range(X, scale):
    """Finite weights that float32 cannot hold: KMeans fits with them scaled to mean 1
    (it said "NaN or infinity" or "sums to zero"); kmeans_plusplus, which takes them as
    given, says they do not fit."""
    X32 = X.astype(np.float32)
    weighted = KMeans(3, random_state=0).fit(X32, sample_weight=np.full(len(X), scale))
    plain = KMeans(3, random_state=0).fit(X32)
    np.testing.assert_array_equal(weighted.cluster_centers_, plain.cluster_centers_)
    assert weighted.inertia_ == pytest.approx(scale * plain.inertia_, rel=1e-12)
    match = r"(?s)sample_weight \(largest .*\) does not fit in float32.*rescale"
    with pytest.raises(ValueError, match=match):
        kmeans_plusplus(X32, 3, sample_weight=np.full(len(X), scale))


@pytest.mark.parametrize("scale", [1e307, 1e-300])
def test_weights_near_the_float64_limits_fit_as_unit_weights(X, scale):
    """Equal weights of any size give the unit-weight fit (1e307: the mean of the weights
    overflowed, GaussianMixture said "sums to zero" and k-means++ raised numpy's
    "probabilities do not sum to 1")."""
    from gmm_fast import GaussianMixture, select_model
    weights = np.full(len(X), scale)
    weighted = KMeans(3, random_state=0).fit(X, sample_weight=weights)
    plain = KMeans(3, random_state=0).fit(X)
    np.testing.assert_array_equal(weighted.cluster_centers_, plain.cluster_centers_)
    gm = GaussianMixture(2, random_state=0)
    np.testing.assert_allclose(gm.fit(X, sample_weight=weights).means_,
                               gm.fit(X).means_, rtol=1e-12)
    # select_model's criteria sum the weights (frequencies): 1e307 overflows them.
    weights = np.full(len(X), scale ** 0.8)
    best = select_model(X, [2], ["diag"], sample_weight=weights, random_state=0).best_model
    reference = select_model(X, [2], ["diag"], random_state=0).best_model
    np.testing.assert_allclose(best.means_, reference.means_, rtol=1e-9)
    with pytest.raises(ValueError, match="non-finite log-likelihood"):
        select_model(X, [2], ["diag"], sample_weight=np.full(len(X), 1e307))


@pytest.mark.parametrize("init,match", [
    (np.zeros((2, 3)), r"^The shape of the initial centers \(2, 3\) does not match the number "
                       r"of clusters 3: the initial centres have shape \(2, 3\); expected "
                       r"\(n_clusters, n_features\)=\(3, 3\)"),
    (np.zeros((3, 2)), r"^The shape of the initial centers \(3, 2\) does not match the number "
                       r"of features of the data 3: .*expected .*=\(3, 3\)"),
    (np.zeros(3), r"Expected a 2D array for init, got 1D array"),
    (np.full((3, 3), np.nan), "Input init contains NaN"),
    (lambda X, n_clusters, random_state: X[:4],
     r"initial centres have shape \(4, 3\); expected .*=\(3, 3\)"),
])
def test_bad_init_array(X, init, match):
    with pytest.raises(ValueError, match=match):
        KMeans(3, init=init).fit(X)


@pytest.mark.parametrize("method", ["predict", "transform", "score"])
def test_wrong_n_features_after_fit(X, fitted, method):
    with pytest.raises(ValueError, match="X has 2 features, but KMeans is expecting 3 features"):
        getattr(fitted, method)(X[:, :2])


@pytest.mark.parametrize("method", ["predict", "transform", "score", "get_feature_names_out"])
def test_not_fitted(X, method):
    from sklearn.exceptions import NotFittedError as SklearnNotFittedError
    args = () if method == "get_feature_names_out" else (X,)
    with pytest.raises(NotFittedError, match="This KMeans instance is not fitted yet") as info:
        getattr(KMeans(3), method)(*args)
    # A drop-in: code catching sklearn's exception (sklearn is imported here) catches ours.
    assert isinstance(info.value, ValueError) and isinstance(info.value, AttributeError)
    assert isinstance(info.value, SklearnNotFittedError)


@pytest.mark.parametrize("params,match", [
    (dict(n_clusters=0), "n_clusters=0 should be an integer >= 1"),
    (dict(n_clusters=-2), "n_clusters=-2 should be an integer >= 1"),
    (dict(n_clusters=2.5), "n_clusters=2.5 should be an integer >= 1"),
    (dict(n_clusters="3"), "n_clusters='3' should be an integer >= 1"),
    (dict(n_clusters=True), "n_clusters=True should be an integer >= 1"),
    (dict(max_iter=0), "max_iter=0 should be an integer >= 1"),
    (dict(max_iter=10.0), r"max_iter=10.0 should be an integer >= 1"),
    (dict(tol=-1e-3), "tol=-0.001 should be a finite number >= 0"),
    (dict(tol=np.nan), "tol=nan should be a finite number >= 0"),
    (dict(tol=np.inf), "tol=inf should be a finite number >= 0"),
    (dict(tol="small"), "tol='small' should be a finite number >= 0"),
    (dict(n_init=0), "n_init=0 should be an integer >= 1"),
    (dict(n_init="many"), "n_init='many' should be an integer >= 1"),
    (dict(n_init=2.0), r"n_init=2.0 should be an integer >= 1"),
    (dict(algorithm="elkan"), "algorithm='elkan' is not supported; use 'lloyd'"),
    (dict(algorithm="auto"), "algorithm='auto' is not supported; use 'lloyd'"),
    (dict(n_threads=0), "n_threads=0 should be a positive integer or None"),
    (dict(n_threads=-1), "n_threads=-1 should be a positive integer or None"),
    (dict(n_threads=1.5), "n_threads=1.5 should be a positive integer or None"),
    (dict(n_threads="2"), "n_threads='2' should be a positive integer or None"),
    (dict(n_threads=10**10), r"n_threads=10000000000 should be .* \(at most 4096"),
    (dict(init="kmeans"), "init='kmeans' should be 'k-means\\+\\+', 'random', an array"),
    (dict(random_state="seed"), "random_state='seed' should be None, an int or a numpy"),
])
def test_bad_parameters(X, params, match):
    with pytest.raises(ValueError, match=match):
        KMeans(**{"n_clusters": 3, **params}).fit(X)


def test_bad_n_threads_at_predict(X, fitted):
    fitted.set_params(n_threads=0)
    with pytest.raises(ValueError, match="n_threads=0 should be a positive integer or None"):
        fitted.predict(X)


def test_kmeans_plusplus_bad_parameters(X):
    with pytest.raises(ValueError, match="n_clusters=0 should be an integer >= 1"):
        kmeans_plusplus(X, 0)
    with pytest.raises(ValueError, match="n_local_trials=0 should be an integer >= 1"):
        kmeans_plusplus(X, 2, n_local_trials=0)
    with pytest.raises(ValueError, match="Input X contains NaN"):
        kmeans_plusplus(with_value(X, 0, 0, np.nan), 2)


def test_helpers_directly(rng):
    # check_array: copies only when needed, C-contiguous, dtype rule.
    X = np.ones((4, 2))
    assert check_array(X) is X
    assert check_array(np.asfortranarray(X)).flags.c_contiguous
    assert check_array(X.astype(np.float16)).dtype == np.float32
    assert check_array(X.astype(np.int8)).dtype == np.float64
    assert check_array(X, dtype=np.float32).dtype == np.float32
    with pytest.raises(ValueError, match=r"Found array with 2 sample\(s\).*minimum of 3"):
        check_array(X[:2], min_samples=3)
    # check_sample_weight: None and scalars broadcast, dtype follows the data.
    np.testing.assert_array_equal(check_sample_weight(None, 3, np.float32), np.ones(3))
    assert check_sample_weight(2, 3, np.float32).dtype == np.float32
    np.testing.assert_array_equal(check_sample_weight(2, 3, np.float64), [2.0, 2.0, 2.0])
    # check_random_state: like sklearn's.
    state = np.random.RandomState(1)
    assert check_random_state(state) is state
    assert check_random_state(None) is np.random.mtrand._rand
    assert check_random_state(5).randint(1000) == np.random.RandomState(5).randint(1000)
    with pytest.raises(ValueError, match="random_state=True should be None, an int"):
        check_random_state(True)
    assert check_positive_int(np.int64(3), "n") == 3 and type(check_positive_int(3, "n")) is int
    with pytest.raises(ValueError, match="depth=1 should be an integer >= 2"):
        check_positive_int(1, "depth", minimum=2)
    assert check_nonnegative_float(0, "tol") == 0.0


def test_fit_random_state_is_a_fresh_stream_per_fit():
    from gmm_fast._validation import fit_random_state

    expected = np.random.RandomState(7).uniform(size=5)
    for _ in range(2):  # the second fit reseeds the generator the first one used
        with fit_random_state(7) as outer:
            np.testing.assert_array_equal(outer.uniform(size=3), expected[:3])
            with fit_random_state(7) as inner:  # a nested fit: its own generator
                assert inner is not outer
                np.testing.assert_array_equal(inner.uniform(size=5), expected)
            np.testing.assert_array_equal(outer.uniform(size=2), expected[3:])
    with fit_random_state(7, reuse=False) as kept:  # handed to user code: never reseeded
        pass
    with fit_random_state(7) as other:
        assert other is not kept
    given = np.random.RandomState(1)
    with fit_random_state(given) as same:
        assert same is given
    with pytest.raises(ValueError, match="random_state="):
        with fit_random_state("seed"):
            pass
