"""The in-memory EM iteration's one-call statistics and M-step (``_mstep``) against the
numpy path it stands for (``estep_statistics``, ``mstep``, ``moved_far``) and the oracle.

Tolerance against the numpy path: both add the same float64 blocks and apply the same
formulas term by term; only the order of some sums differs (numpy's pairwise sums over
k or d, contraction to FMA in C), a few ulps of the terms: 1e-12 of each array's
largest value. Against the plain-numpy oracle: the kernel tests' float64 bound (1e-10).
"""
import numpy as np
import pytest

import gmm_reference as ref
from gmm_fast import _em
from gmm_fast._em import (SufficientStatistics, _KernelParameters, _first_pass,
                          em_step, estep_statistics, moved_far, mstep)
from gmm_fast._estep import COVARIANCE_CODES, feature_layout
from gmm_fast._mstep import statistics_and_mstep

FIELDS = ("log_likelihood", "sum_weights", "nk", "sums", "second", "shift")
TYPES = ("full", "diag", "spherical")
# (n_samples, n_features, n_components): narrow, wide with few components, and wide
# with many (the kernels' three layouts), one row, and more rows than one block.
SIZES = [(300, 3, 3), (500, 16, 3), (400, 16, 20), (1, 4, 2), (40_000, 5, 4)]


def _problem(covariance_type, dtype, n_samples, n_features, n_components, seed=0,
             offset=0.0):
    rng = np.random.default_rng(seed)
    X, weights, means, covariances = ref.make_mixture(
        rng, max(n_samples, n_components), n_features, n_components, covariance_type)
    X = np.ascontiguousarray(X[:n_samples] + offset, dtype=dtype)
    w0, m0, c0 = ref.perturbed_parameters(rng, weights, means, covariances, covariance_type)
    sample_weight = rng.uniform(0.0, 3.0, size=n_samples).astype(dtype)
    prec_chol = ref.precisions_cholesky_from_covariances(c0, covariance_type)
    return X, sample_weight, (w0, m0 + offset, c0, prec_chol)


def _assert_close(got, want, rtol, name, scale=None):
    """Equal to ``rtol`` of the largest value (or of ``scale``, the terms that cancel)."""
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    assert got.shape == want.shape, name
    scale = np.abs(want).max() if scale is None else scale
    np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * scale, err_msg=name)


def _covariance_scale(stats):
    """The size of ``second / nk``, from which the covariances cancel ``delta^2``
    (a component on one row: to ~0)."""
    nk = stats.nk.reshape((-1,) + (1,) * (stats.second.ndim - 1)) + _em._NK_FLOOR
    return float(np.abs(stats.second / nk).max())


def _numpy_path(X, sample_weight, params, covariance_type, reg_covar):
    weights, means, covariances, prec_chol = params
    stats = estep_statistics(X, sample_weight, weights, means, prec_chol, covariance_type,
                             covariances=covariances)
    new = mstep(stats, covariance_type, reg_covar)
    return stats, new, moved_far(stats, new[2], covariance_type)


@pytest.fixture
def one_calls(monkeypatch):
    """How many times the first pass took the one C call."""
    calls = []

    def counted(*args):
        calls.append(args[0])
        return statistics_and_mstep(*args)

    monkeypatch.setattr(_em, "statistics_and_mstep", counted)
    return calls


@pytest.mark.parametrize("covariance_type", TYPES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("size", SIZES, ids=[str(size) for size in SIZES])
@pytest.mark.parametrize("offset", [0.0, 1e4])
def test_one_call_matches_the_numpy_path(covariance_type, dtype, size, offset, one_calls):
    X, sw, params = _problem(covariance_type, dtype, *size, offset=offset)
    got = _first_pass(X, sw, params, covariance_type, 1e-6, 2)
    assert len(one_calls) == 1
    want = _numpy_path(X, sw, params, covariance_type, 1e-6)
    for name in FIELDS:
        _assert_close(getattr(got[0], name), getattr(want[0], name), 1e-12, name)
    scales = (None, None, _covariance_scale(want[0]))
    for name, g, w, scale in zip(("weights", "means", "covariances"), got[1], want[1], scales):
        _assert_close(g, w, 1e-12, name, scale)
    np.testing.assert_array_equal(got[2], want[2])


@pytest.mark.parametrize("covariance_type", TYPES)
def test_one_call_matches_the_oracle(covariance_type):
    X, sw, params = _problem(covariance_type, np.float64, 700, 6, 4, seed=3)
    weights, means, covariances, prec_chol = params
    stats, new, moved = _first_pass(X, sw, params, covariance_type, 1e-3, 1)
    want = ref.estep_statistics(X, sw, weights, means, prec_chol, covariance_type)
    for name in ("log_likelihood", "sum_weights", "nk", "sums", "second"):
        _assert_close(getattr(stats, name), getattr(want, name), 1e-10, name)
    for name, g, w in zip(("weights", "means", "covariances"), new,
                          ref.mstep(want, covariance_type, 1e-3)):
        _assert_close(g, w, 1e-10, name)
    assert moved.size == 0


@pytest.mark.parametrize("covariance_type", TYPES)
@pytest.mark.parametrize("threshold", [1e-3, 1e-1, 1.0])
def test_one_call_names_the_components_moved_far(covariance_type, threshold, monkeypatch):
    """At thresholds where some components count as moved and others not, both paths
    name the same ones (the usual 1e5 names none here)."""
    X, sw, params = _problem(covariance_type, np.float64, 800, 4, 6, seed=5)
    params = (params[0], params[1] + 0.3, *params[2:])  # means moved off their groups
    monkeypatch.setattr(_em, "_MOVED_FAR", threshold)
    got = _first_pass(X, sw, params, covariance_type, 1e-6, 1)[2]
    want = _numpy_path(X, sw, params, covariance_type, 1e-6)[2]
    np.testing.assert_array_equal(got, want)
    if threshold == 1e-1:
        assert 0 < got.size < 6


def test_em_step_redoes_the_moved_components(monkeypatch):
    """em_step through the one call still redoes the moments of a moved component about
    its new mean: the same iteration as the numpy path's."""
    X, sw, params = _problem("diag", np.float64, 800, 4, 6, seed=5)
    params = (params[0], params[1] + 0.3, *params[2:])
    monkeypatch.setattr(_em, "_MOVED_FAR", 1e-1)
    stats, new = em_step(X, sw, params, "diag", 1e-6)
    want_stats, want_new = _em.em_iteration(  # (no first pass: the numpy path)
        lambda **about: _em.data_statistics(X, sw, params, "diag", **about), "diag", 1e-6)
    for name in FIELDS:
        _assert_close(getattr(stats, name), getattr(want_stats, name), 1e-12, name)
    for g, w in zip(new, want_new):
        _assert_close(g, w, 1e-12, "parameters")


def test_first_pass_leaves_tied_and_far_components_to_the_numpy_path(one_calls):
    """Tied models and far components: the first pass finishes with the numpy path
    (``_statistics``, ``mstep``, ``moved_far``) on the same kernel pass: its answers
    bitwise, without the one call."""
    X, sw, params = _problem("tied", np.float64, 300, 8, 3)
    cases = [("tied", X, sw, params)]
    X, sw, (w0, m0, c0, pc) = _problem("diag", np.float64, 300, 3, 3)
    m0 = m0.copy()
    m0[2] += 1e5  # far from the shift: computed about its own mean
    assert len(_KernelParameters(w0, m0, pc, "diag", X.dtype, c0).far) == 1
    cases.append(("diag", X, sw, (w0, m0, c0, pc)))
    for covariance_type, X, sw, params in cases:
        got = _first_pass(X, sw, params, covariance_type, 1e-6, 1)
        want = _numpy_path(X, sw, params, covariance_type, 1e-6)
        for name in FIELDS:
            np.testing.assert_array_equal(getattr(got[0], name), getattr(want[0], name))
        for g, w in zip(got[1], want[1]):
            np.testing.assert_array_equal(g, w)
        np.testing.assert_array_equal(got[2], want[2])
    assert not one_calls


def test_sizes_cover_the_layouts():
    for covariance_type in TYPES:
        layouts = {feature_layout(COVARIANCE_CODES[covariance_type], d, k)
                   for _, d, k in SIZES}
        assert {"column loops", "rows"} <= layouts, covariance_type


@pytest.mark.parametrize("covariance_type", ("full", "tied", "diag", "spherical"))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("offset", [0.0, 1e4])
def test_label_statistics_match_the_responsibilities_path(covariance_type, dtype, weighted,
                                                         offset):
    """Hard labels' moments in one C call: those of the one-hot responsibilities (the
    numpy path, its products in other orders: 1e-12 of the terms), an empty component
    included (its nk 0, its means and moments 0). The means of the first pass differ
    by rounding (sums of |x| ~ 1e4 here), which ``sums`` (about them: ~0) carry: the
    M-step's means ``shift + sums / nk`` are compared instead."""
    from gmm_fast._mixture_init import (statistics_from_labels,
                                        statistics_from_responsibilities)
    rng = np.random.default_rng(8)
    X = np.ascontiguousarray(rng.normal(size=(2000, 5)) * [1, 2, 3, 4, 5] + offset,
                             dtype=dtype)
    labels = rng.integers(0, 4, size=len(X)).astype(np.int32)  # (KMeans' labels_ dtype)
    sample_weight = rng.uniform(0, 3, size=len(X)).astype(dtype) if weighted else None
    got = statistics_from_labels(X, sample_weight, labels, 5, covariance_type)
    one_hot = np.eye(5)[labels]  # (the labels as responsibilities: the numpy path)
    want = statistics_from_responsibilities(X, sample_weight, 5, covariance_type,
                                            lambda start, stop: one_hot[start:stop])
    assert got.nk[4] == 0 and not got.shift[4].any() and not got.sums[4].any()
    for name in ("sum_weights", "nk", "second"):
        _assert_close(getattr(got, name), getattr(want, name), 1e-12, name)
    for name, g, w in zip(("weights", "means", "covariances"),
                          mstep(got, covariance_type, 0.0), mstep(want, covariance_type, 0.0)):
        _assert_close(g, w, 1e-12, name)


def test_label_statistics_reject_a_label_out_of_range():
    from gmm_fast._mixture_init import statistics_from_labels
    X = np.zeros((3, 2))
    with pytest.raises(ValueError, match="label 3 of row 1"):
        statistics_from_labels(X, None, np.array([0, 3, 1]), 3, "diag")


def _spd(rng, n_components, n_features, condition):
    """Random SPD matrices with eigenvalues spread over ``condition``."""
    out = []
    for _ in range(n_components):
        basis, _ = np.linalg.qr(rng.normal(size=(n_features, n_features)))
        eigenvalues = np.geomspace(1.0, 1.0 / condition, n_features)
        out.append((basis * eigenvalues) @ basis.T)
    return np.array(out)


@pytest.mark.parametrize("n_features", [1, 2, 5, 20])
def test_full_precisions_cholesky_match_lapack(n_features):
    """Upper-triangular factors of the precisions: scipy's (LAPACK potrf, trtrs) to
    1e-12 of their largest entry on well-conditioned matrices; on ill-conditioned ones
    (1e10) U^T C U = I to the condition number times eps."""
    from scipy.linalg import cholesky, solve_triangular
    from gmm_fast._mstep import full_precisions_cholesky
    rng = np.random.default_rng(n_features)
    for condition, tol in ((10.0, 1e-12), (1e10, None)):
        covariances = _spd(rng, 4, n_features, condition) * rng.uniform(0.1, 10)
        factors, failed = full_precisions_cholesky(covariances)
        assert failed == -1
        assert not np.tril(factors, -1).any()
        for factor, covariance in zip(factors, covariances):
            if tol is not None:
                lower = cholesky(covariance, lower=True)
                want = solve_triangular(lower, np.eye(n_features), lower=True).T
                _assert_close(factor, want, tol, "factor")
            identity = factor.T @ covariance @ factor
            np.testing.assert_allclose(identity, np.eye(n_features),
                                       atol=100 * condition * np.finfo(float).eps)


def test_full_precisions_cholesky_name_the_first_failure():
    from gmm_fast._mstep import full_precisions_cholesky
    good = np.array([[2.0, 0.5, 0.0], [0.5, 1.0, 0.2], [0.0, 0.2, 1.5]])
    bad_cases = {
        "negative eigenvalue": np.array([[1.0, 2.0, 0.0], [2.0, 1.0, 0.0], [0.0, 0.0, 1.0]]),
        "zero": np.zeros((3, 3)),
        "NaN off the diagonal": np.where(np.eye(3) == 1, good, np.nan),
        "inf on the diagonal": good + np.diag([0.0, np.inf, 0.0]),
    }
    for name, bad in bad_cases.items():
        factors, failed = full_precisions_cholesky(np.array([good, good, bad, bad]))
        assert factors is None and failed == 2, name


@pytest.mark.parametrize("n_features", [3, 130])
def test_full_precision_factors_on_both_sides_of_the_loops_width(n_features):
    """The full model's precision factors by loops (narrow) and by LAPACK (wider than
    ``_FACTOR_LOOPS_MAX_FEATURES``): U^T C U = I, and the first indefinite component
    named in the error."""
    from gmm_fast._covariances import COVARIANCE_TYPES, _FACTOR_LOOPS_MAX_FEATURES
    assert (n_features <= _FACTOR_LOOPS_MAX_FEATURES) == (n_features == 3)
    helpers = COVARIANCE_TYPES["full"]
    covariances = _spd(np.random.default_rng(1), 3, n_features, 100.0)
    factors = helpers.precisions_cholesky(covariances, 1e-6, np.float64)
    for factor, covariance in zip(factors, covariances):
        np.testing.assert_allclose(factor.T @ covariance @ factor, np.eye(n_features),
                                   atol=1e-10)
    covariances[1, 0, 0] = -1.0
    with pytest.raises(ValueError, match="full covariance of component 1"):
        helpers.precisions_cholesky(covariances, 1e-6, np.float64)


@pytest.mark.parametrize("covariance_type", ["full", "tied"])
def test_wide_label_moments_by_products_match_the_loops(covariance_type, monkeypatch):
    """Wider than ``_LABEL_LOOPS_MAX_FEATURES``, hard labels' full and tied moments come
    from BLAS products: the loops' statistics (forced by a larger limit) to 1e-12."""
    from gmm_fast import _mixture_init
    rng = np.random.default_rng(3)
    n_features = _mixture_init._LABEL_LOOPS_MAX_FEATURES + 3
    X = rng.normal(size=(300, n_features)) + 2.0
    labels = rng.integers(0, 3, size=300)
    sample_weight = rng.uniform(0, 2, size=300)
    products = _mixture_init.statistics_from_labels(X, sample_weight, labels, 3,
                                                    covariance_type)
    monkeypatch.setattr(_mixture_init, "_LABEL_LOOPS_MAX_FEATURES", n_features)
    loops = _mixture_init.statistics_from_labels(X, sample_weight, labels, 3, covariance_type)
    for name in ("sum_weights", "nk", "second"):
        _assert_close(getattr(loops, name), getattr(products, name), 1e-12, name)
    for g, w in zip(mstep(loops, covariance_type, 0.0), mstep(products, covariance_type, 0.0)):
        _assert_close(g, w, 1e-12, "parameters")


def test_reciprocal_roots_are_numpys_or_none(rng):
    """Diag and spherical precision factors in one call: bitwise numpy's 1 / sqrt(v)
    (both correctly rounded), and None (the numpy path's error then) for a variance
    that is not positive and finite; the estimator's path gives the same factors and
    still names the bad component."""
    from gmm_fast._covariances import COVARIANCE_TYPES
    from gmm_fast._mstep import reciprocal_roots

    variances = np.exp(rng.uniform(-300, 300, size=500)) * rng.uniform(0.5, 2, size=500)
    np.testing.assert_array_equal(reciprocal_roots(variances), 1.0 / np.sqrt(variances))
    for bad in (0.0, -1e-300, np.inf, np.nan):
        assert reciprocal_roots(np.array([1.0, bad, 2.0])) is None
    diag = COVARIANCE_TYPES["diag"].precisions_cholesky
    covariances = rng.uniform(0.1, 3, size=(3, 4))
    np.testing.assert_array_equal(diag(covariances, 1e-6, np.float64),
                                  1.0 / np.sqrt(covariances))
    covariances[2, 1] = 0.0
    with pytest.raises(ValueError, match="component 2|covariance"):
        diag(covariances, 1e-6, np.float64)
