"""Bad input to GaussianMixture: one clear error naming the parameter, the expectation, the value."""
import numpy as np
import pytest

import gmm_reference as ref
from gmm_fast import GaussianMixture, NotFittedError


@pytest.fixture
def X():
    rng = np.random.default_rng(0)
    return ref.make_mixture(rng, 60, 2, 2, "full")[0]


def _fit_error(X, exc, match, sample_weight=None, **params):
    with pytest.raises(exc, match=match):
        GaussianMixture(**params).fit(X, sample_weight=sample_weight)


# --- X ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("value, match", [(np.nan, "NaN"), (np.inf, "(?i)inf"),
                                          (-np.inf, "(?i)inf")])
def test_non_finite_X(X, value, match):
    X = X.copy()
    X[7, 1] = value
    _fit_error(X, ValueError, match, n_components=2)
    gm = GaussianMixture(2, random_state=0).fit(np.delete(X, 7, axis=0))
    for method in (gm.predict, gm.predict_proba, gm.score_samples, gm.score, gm.bic, gm.aic):
        with pytest.raises(ValueError, match=match):
            method(X)


@pytest.mark.parametrize("shape", [(10,), (2, 5, 3), ()])
def test_X_not_2d(shape):
    _fit_error(np.ones(shape), ValueError, "2D", n_components=1)


def test_X_empty():
    _fit_error(np.empty((0, 3)), ValueError, "0 sample", n_components=1)
    _fit_error(np.empty((5, 0)), ValueError, "0 feature", n_components=1)


def test_X_complex(X):
    _fit_error(X + 1j, ValueError, "(?i)complex", n_components=2)
    gm = GaussianMixture(2, random_state=0).fit(X)
    for method in (gm.predict, gm.predict_proba, gm.score_samples, gm.score, gm.bic, gm.aic):
        with pytest.raises(ValueError, match="(?i)complex"):  # not a silent X.real
            method(X + 1j)


def test_X_non_numeric():
    _fit_error(np.array([["a", "b"], ["c", "d"], ["e", "f"]]), ValueError, "numeric",
               n_components=1)


def test_X_sparse(X):
    import scipy.sparse
    _fit_error(scipy.sparse.csr_matrix(X), TypeError, "(?i)sparse", n_components=2)


def test_fewer_samples_than_components(X):
    _fit_error(X[:3], ValueError, r"(?s)(?=.*n_samples)(?=.*\b3\b)(?=.*n_components)(?=.*\b5\b)",
               n_components=5)


def test_wrong_number_of_features_at_predict(X):
    gm = GaussianMixture(2, random_state=0).fit(X)
    for method in (gm.predict, gm.predict_proba, gm.score_samples, gm.score, gm.bic, gm.aic):
        with pytest.raises(ValueError, match=r"(?s)3 features.*expecting 2"):
            method(np.ones((4, 3)))


def test_not_fitted(X):
    gm = GaussianMixture(2)
    for method in (gm.predict, gm.predict_proba, gm.score_samples, gm.score, gm.bic, gm.aic):
        with pytest.raises(NotFittedError, match="not fitted"):
            method(X)
    with pytest.raises(NotFittedError, match="not fitted"):
        gm.sample(3)


# --- sample_weight ---------------------------------------------------------------------------

@pytest.mark.parametrize("make_weight, exc, match", [
    (lambda n: np.ones(n - 1), ValueError, r"sample_weight.*shape"),
    (lambda n: np.ones((n, 1)), ValueError, r"sample_weight.*shape"),
    (lambda n: -np.ones(n), ValueError, r"sample_weight.*>= 0"),
    (lambda n: np.r_[np.ones(n - 1), np.nan], ValueError, r"sample_weight.*(NaN|finite)"),
    (lambda n: np.r_[np.ones(n - 1), np.inf], ValueError, r"sample_weight.*(inf|finite)"),
    (lambda n: np.zeros(n), ValueError, r"sample_weight.*(zero|0)"),
    (lambda n: np.array(["a"] * n), TypeError, r"sample_weight.*numeric"),
], ids=["short", "2d", "negative", "nan", "inf", "all-zero", "strings"])
def test_bad_sample_weight(X, make_weight, exc, match):
    _fit_error(X, exc, match, sample_weight=make_weight(len(X)), n_components=2)


def test_fewer_weighted_rows_than_components(X):
    """Frequency weights: rows of weight 0 are absent, as if n_samples were smaller."""
    sample_weight = np.zeros(len(X))
    sample_weight[[3, 9]] = [1.0, 2.0]
    _fit_error(X, ValueError, r"(?s)2 positive weight.*n_components=3", n_components=3,
               sample_weight=sample_weight)
    GaussianMixture(2, random_state=0).fit(X, sample_weight=sample_weight)  # 2 are enough


def test_bad_sample_weight_in_score(X):
    gm = GaussianMixture(2, random_state=0).fit(X)
    with pytest.raises(ValueError, match=r"sample_weight.*shape"):
        gm.score(X, sample_weight=np.ones(3))


# --- initial parameters ----------------------------------------------------------------------

def test_weights_init_bad(X):
    _fit_error(X, ValueError, r"(?s)weights_init.*\(2,\)", n_components=2,
               weights_init=[0.2, 0.3, 0.5])
    _fit_error(X, ValueError, r"(?s)weights_init.*1\.5", n_components=2,
               weights_init=[0.5, 1.0])
    _fit_error(X, ValueError, r"weights_init", n_components=2, weights_init=[1.2, -0.2])
    _fit_error(X, ValueError, r"weights_init", n_components=2, weights_init=[np.nan, 1.0])


def test_means_init_bad(X):
    _fit_error(X, ValueError, r"(?s)means_init.*\(2, 2\)", n_components=2,
               means_init=np.zeros((2, 3)))
    _fit_error(X, ValueError, r"(?s)means_init.*\(2, 2\)", n_components=2,
               means_init=np.zeros((3, 2)))
    _fit_error(X, ValueError, r"means_init", n_components=2,
               means_init=[[0.0, np.inf], [1.0, 1.0]])


_SHAPES = {"full": (2, 2, 2), "tied": (2, 2), "diag": (2, 2), "spherical": (2,)}


def _valid(covariance_type):
    return {"full": np.stack([np.eye(2), 2 * np.eye(2)]), "tied": np.eye(2),
            "diag": np.ones((2, 2)), "spherical": np.ones(2)}[covariance_type]


def _not_spd(covariance_type):
    """An invalid matrix/vector for each type: non-symmetric or not positive."""
    return {"full": np.stack([np.eye(2), [[1.0, 2.0], [0.0, 1.0]]]),
            "tied": np.array([[1.0, 2.0], [2.0, 1.0]]),  # symmetric, eigenvalue -1
            "diag": np.array([[1.0, 1.0], [1.0, -1.0]]),
            "spherical": np.array([1.0, 0.0])}[covariance_type]


@pytest.mark.parametrize("covariance_type", ref.COVARIANCE_TYPES)
@pytest.mark.parametrize("name", ["precisions_init", "covariances_init"])
def test_precisions_or_covariances_init_bad(X, covariance_type, name):
    wrong_shape = np.ones(tuple(s + 1 for s in _SHAPES[covariance_type]))
    _fit_error(X, ValueError, name, n_components=2, covariance_type=covariance_type,
               **{name: wrong_shape})
    _fit_error(X, ValueError, rf"(?s){name}.*(symmetric|positive)", n_components=2,
               covariance_type=covariance_type, **{name: _not_spd(covariance_type)})


def test_full_precisions_init_not_symmetric_but_positive(X):
    """Non-symmetric with positive eigenvalues is still rejected (it is not a precision)."""
    bad = np.stack([np.eye(2), [[2.0, 0.5], [0.0, 2.0]]])
    _fit_error(X, ValueError, r"(?s)precisions_init.*symmetric", n_components=2,
               precisions_init=bad)


@pytest.mark.parametrize("covariance_type", ["full", "tied"])
def test_precisions_init_positive_eigenvalues_but_no_cholesky(X, covariance_type):
    """At the edge of singularity the eigenvalues pass but the factorisation fails:
    still one ValueError naming precisions_init (not scipy's LinAlgError)."""
    edge = np.array([[1.0, 1.0], [1.0, np.nextafter(1.0, 2.0)]])
    precisions = np.stack([np.eye(2), edge]) if covariance_type == "full" else edge
    _fit_error(X, ValueError, r"(?s)precisions_init.*singular", n_components=2,
               covariance_type=covariance_type, precisions_init=precisions)


@pytest.mark.parametrize("covariance_type", ref.COVARIANCE_TYPES)
def test_both_precisions_and_covariances_init(X, covariance_type):
    valid = _valid(covariance_type)
    _fit_error(X, ValueError, r"(?s)(?=.*precisions_init)(?=.*covariances_init)",
               n_components=2, covariance_type=covariance_type, precisions_init=valid,
               covariances_init=valid)


# --- hyper-parameters ------------------------------------------------------------------------

@pytest.mark.parametrize("params, match", [
    (dict(n_components=0), "n_components"),
    (dict(n_components=1.5), "n_components"),
    (dict(covariance_type="banana"), r"(?s)covariance_type.*banana"),
    (dict(tol=-1.0), "tol"),
    (dict(reg_covar=-1e-6), "reg_covar"),
    (dict(reg_covar=np.nan), "reg_covar"),
    (dict(max_iter=-1), "max_iter"),
    (dict(n_init=0), "n_init"),
    (dict(init_params="banana"), r"(?s)init_params.*banana"),
    (dict(verbose_interval=0), "verbose_interval"),
    (dict(n_threads=0), "n_threads"),
    (dict(random_state="banana"), "random_state"),
])
def test_bad_hyperparameters(X, params, match):
    _fit_error(X, ValueError, match, **{"n_components": 2, **params})


def test_sample_bad_n_samples(X):
    gm = GaussianMixture(2, random_state=0).fit(X)
    with pytest.raises(ValueError, match="n_samples"):
        gm.sample(-1)
    with pytest.raises(ValueError, match=r"^Invalid value for 'n_samples': 0\. .*"
                       r"n_samples=0 should be an integer >= 1\."):
        gm.sample(0)


# scikit-learn's sentences, which code written for it matches on, start our messages.
@pytest.mark.parametrize("params, match", [
    (dict(weights_init=np.full((2, 1), 0.5)),
     r"^The parameter 'weights' should have the shape of \(2,\), but got \(2, 1\): "
     r"weights_init should have shape \(2,\)\."),
    (dict(weights_init=[1.5, 1.25]),
     r"^The parameter 'weights' should be in the range \[0, 1\], but got max value 1\.25000, "
     r"min value 1\.50000: weights_init"),
    (dict(weights_init=[0.2, 0.2]),
     r"^The parameter 'weights' should be normalized, but got sum\(weights\) = 0\.40000: "
     r"weights_init should sum to 1"),
    (dict(means_init=np.zeros((3, 2))),
     r"^The parameter 'means' should have the shape of \(2, 2\), but got \(3, 2\): means_init"),
    (dict(precisions_init=np.ones((3, 2, 2))),
     r"^The parameter 'full precision' should have the shape of \(2, 2, 2\), but got "
     r"\(3, 2, 2\): precisions_init \(covariance_type='full'\)"),
    (dict(precisions_init=np.stack([np.eye(2), -np.eye(2)])),
     r"^'full precision' should be symmetric, positive-definite: precisions_init\[1\]"),
    (dict(covariance_type="diag", precisions_init=[[1.0, 1.0], [1.0, -1.0]]),
     r"^'diag precision' should be positive: precisions_init"),
    (dict(covariance_type="spherical", covariances_init=[1.0, 0.0]),
     r"^'spherical covariance' should be positive: covariances_init"),
])
def test_init_messages_start_with_sklearn_sentence(X, params, match):
    _fit_error(X, ValueError, match, **{"n_components": 2, **params})


def test_errors_leave_no_half_fitted_model(X):
    """A failed first fit must not leave attributes that make predict look fitted."""
    gm = GaussianMixture(2, means_init=np.zeros((3, 2)))
    with pytest.raises(ValueError):
        gm.fit(X)
    with pytest.raises(NotFittedError):
        gm.predict(X)


def test_float32_fit_out_of_float32_range(X):
    """Data whose covariances overflow float32 (X * 1e20): a clear error and no fitted
    attributes, instead of infinite covariances and zero precisions."""
    gm = GaussianMixture(2, random_state=0)
    with pytest.raises(ValueError, match=r"(?s)covariances_.*float32.*float64"):
        gm.fit((X * 1e20).astype(np.float32))
    assert not hasattr(gm, "covariances_")
    gm.fit((X * 1e15).astype(np.float32))  # large, but within float32
    assert np.isfinite(gm.covariances_).all() and (gm.precisions_ > 0).any()
