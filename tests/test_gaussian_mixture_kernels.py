"""The per-chunk primitive ``estep_statistics`` and ``mstep`` against the plain-numpy oracle.

Tolerances (relative to the size of the terms being summed, see ``_assert_stats_close``):

- float64: 1e-10. Kernel and oracle evaluate the same float64 expressions in different
  orders (BLAS blocking, chunked partial sums); the differences are a few hundred ulps of
  the largest term at worst. Any wrong formula or a dropped/duplicated chunk gives O(1e-3)
  or larger differences.
- float32: 1e-4. The kernel may evaluate the per-row Mahalanobis distances in float32
  (eps = 6e-8): with d = 3 and distances up to ~50 on this data the log-densities carry
  ~1e-5 relative error, which flows into the responsibilities; sums are float64 so nothing
  accumulates with n. 1e-4 leaves a 10x margin and still catches wrong math.
"""
import numpy as np
import pytest

import gmm_reference as ref
from gmm_fast import GaussianMixture
from gmm_fast._estep import COVARIANCE_CODES, CHUNK_SIZE, feature_layout, uses_direct_rows
from gmm_fast import _em
from gmm_fast._em import SufficientStatistics, _KernelParameters, estep_statistics, mstep
from gmm_fast._threads import MAX_BLOCKS, MIN_ROWS_PER_BLOCK

# Each test at every CPU level of the kernels this machine supports (conftest).
pytestmark = pytest.mark.usefixtures("cpu_level")

RTOL = {np.float32: 1e-4, np.float64: 1e-10}
FIELDS = ("log_likelihood", "sum_weights", "nk", "sums", "second")


@pytest.fixture(params=[np.float32, np.float64], ids=["float32", "float64"])
def dtype(request):
    return request.param


@pytest.fixture(params=ref.COVARIANCE_TYPES)
def covariance_type(request):
    return request.param


def _problem(n_samples, covariance_type, dtype, n_features=3, n_components=3, seed=0,
             offset=0.0):
    """X, sample_weight and starting parameters, all in ``dtype`` (as the estimator passes them)."""
    rng = np.random.default_rng(seed)
    X, weights, means, covariances = ref.make_mixture(
        rng, max(n_samples, n_components), n_features, n_components, covariance_type)
    X = X[:n_samples] + offset
    w0, m0, c0 = ref.perturbed_parameters(rng, weights, means, covariances, covariance_type)
    sample_weight = rng.uniform(0.0, 3.0, size=n_samples)
    sample_weight[rng.random(n_samples) < 0.1] = 0.0  # zero weights must contribute nothing
    prec_chol = ref.precisions_cholesky_from_covariances(c0, covariance_type)
    return (np.ascontiguousarray(X, dtype=dtype), sample_weight.astype(dtype),
            w0.astype(dtype), (m0 + offset).astype(dtype), prec_chol.astype(dtype))


def _reference(X, sample_weight, weights, means, prec_chol, covariance_type):
    # The oracle sees exactly the (possibly float32) values the kernel sees, upcast exactly.
    return ref.estep_statistics(X, sample_weight, weights, means, prec_chol, covariance_type)


def _scales(X, sample_weight, weights, means, prec_chol, covariance_type, want):
    """Size of the terms behind each statistic, for absolute tolerances.

    Per component and feature, ``root_kf = sqrt(second_kff)`` bounds
    ``sqrt(sum_i w_i r_ik (x_if - m_kf)^2)``; for float32 data, whose moments may be
    summed in float32 about the shift s = weights @ means before they move to each
    component's mean m_k (cancelling terms of that size), ``root_kf = sqrt(second_kff)
    + sqrt(nk_k) |m_kf - s_f|`` bounds the same about s (Minkowski). (float64 moments
    must not lose that cancellation: components far from s are summed about their own
    means.) Tied sums over the components, spherical over the features, before the
    root. log_likelihood: sum_i w_i |log p(x_i)|; nk: sum_weights; sums: sqrt(nk_k)
    root_kf (Cauchy-Schwarz); second: root_kf root_kg (full, tied), root_kf^2 (diag,
    spherical).
    """
    log_prob_norm, _ = ref.estep(X, weights, means, prec_chol, covariance_type)
    sw = np.asarray(sample_weight, dtype=np.float64)
    ll_scale = float(sw @ np.abs(log_prob_norm))
    # (m_k - s)^2 times nk_k: the terms that cancel, for float32 data only
    means = np.asarray(means, dtype=np.float64)
    shift = np.asarray(weights, dtype=np.float64) @ means
    away = (want.nk[:, None] * (means - shift) ** 2 if X.dtype == np.float32
            else np.zeros_like(means))
    if covariance_type == "full":
        root = np.sqrt(np.einsum("kii->ki", want.second)) + np.sqrt(away)
        second_scale = root[:, :, None] * root[:, None, :]
    elif covariance_type == "tied":
        root = np.sqrt(np.diag(want.second)) + np.sqrt(away.sum(axis=0))
        second_scale = np.outer(root, root)
        # Tied keeps only the sum over k: bound each component's by the total.
        root = np.broadcast_to(root, want.sums.shape)
    elif covariance_type == "diag":
        root = np.sqrt(want.second) + np.sqrt(away)
        second_scale = root ** 2
    else:  # (each feature's bounded by the trace)
        root = np.sqrt(want.second) + np.sqrt(away.sum(axis=1))
        second_scale = root ** 2
        root = np.broadcast_to(root[:, None], want.sums.shape)
    # float32 data may take the statistics' products in float32 within a chunk
    # (_estep's SINGLE_STATISTICS_MIN_K): a responsibility below float32's smallest
    # normal (1.2e-38) rounds to a subnormal or 0, an absolute error of at most that
    # times the row's features (|xs|^2 <= (2 max|x|)^2), however small the statistic.
    underflow = 0.0
    if X.dtype == np.float32:
        underflow = (len(X) * np.finfo(np.float32).tiny
                     * (1.0 + 2.0 * float(np.abs(X).max())) ** 2)
    return {
        "underflow": underflow,
        "log_likelihood": ll_scale,
        "sum_weights": want.sum_weights,
        "nk": want.sum_weights,
        "sums": np.sqrt(want.nk)[:, None] * root,
        "second": second_scale,
    }


def _assert_stats_close(got, want, rtol, scales, dtype):
    assert isinstance(got, SufficientStatistics)
    for name in FIELDS:
        g = np.asarray(getattr(got, name))
        w = np.asarray(getattr(want, name))
        assert g.shape == w.shape, f"{name}: shape {g.shape}, expected {w.shape}"
        assert g.dtype == np.float64, f"{name} should be accumulated in float64, got {g.dtype}"
        _assert_close_scaled(g, w, rtol, scales[name], name, scales.get("underflow", 0.0))
    # The shift is the current means, up to the rounding of however the kernel recentres
    # (tied works about one common point and adds back m_k - s): a few ulps of the means.
    shift_ulps = 4 * np.finfo(dtype).eps * np.abs(want.shift).max()
    np.testing.assert_allclose(np.asarray(got.shift, dtype=np.float64), want.shift, rtol=0,
                               atol=shift_ulps, err_msg="shift")


def _assert_close_scaled(got, want, rtol, scale, name, atol=0.0):
    """|got - want| <= rtol * (|want| + scale) + atol elementwise, ``scale`` broadcast to
    the shape."""
    got = np.asarray(got, dtype=np.float64)
    want = np.asarray(want, dtype=np.float64)
    bound = rtol * (np.abs(want) + np.broadcast_to(scale, want.shape)) + atol
    err = np.abs(got - want)
    bad = ~(err <= bound)
    if bad.any():
        worst = np.unravel_index(np.argmax(np.where(bad, err / np.maximum(bound, 1e-300), 0)),
                                 want.shape) if want.ndim else ()
        raise AssertionError(
            f"{name}: {int(bad.sum())}/{bad.size} elements off (rtol={rtol:g} of value + scale); "
            f"worst at {worst}: got {got[worst]!r}, expected {want[worst]!r}, "
            f"allowed {bound[worst]:.3g}")


def _check_against_reference(n_samples, covariance_type, dtype, n_threads=1, **kwargs):
    X, sw, w0, m0, pc = _problem(n_samples, covariance_type, dtype, **kwargs)
    got = estep_statistics(X, sw, w0, m0, pc, covariance_type, n_threads=n_threads)
    want = _reference(X, sw, w0, m0, pc, covariance_type)
    _assert_stats_close(got, want, RTOL[dtype],
                        _scales(X, sw, w0, m0, pc, covariance_type, want), dtype)
    return got


def test_estep_statistics_matches_reference(covariance_type, dtype):
    _check_against_reference(1000, covariance_type, dtype)


@pytest.mark.parametrize("n_features, n_components", [(1, 1), (1, 4), (7, 2), (16, 5)])
def test_estep_statistics_shapes_and_sizes(covariance_type, dtype, n_features, n_components):
    """Odd sizes: one feature, one component, d > k, wider d (BLAS paths)."""
    _check_against_reference(300, covariance_type, dtype, n_features=n_features,
                             n_components=n_components, seed=1)


CHUNK_EDGES = sorted({1, 2, CHUNK_SIZE - 1, CHUNK_SIZE, CHUNK_SIZE + 1, 2 * CHUNK_SIZE,
                      3 * CHUNK_SIZE + 1, MIN_ROWS_PER_BLOCK - 1, MIN_ROWS_PER_BLOCK,
                      MIN_ROWS_PER_BLOCK + 1, 5 * MIN_ROWS_PER_BLOCK,
                      5 * MIN_ROWS_PER_BLOCK + 1,
                      MAX_BLOCKS * MIN_ROWS_PER_BLOCK - 1, MAX_BLOCKS * MIN_ROWS_PER_BLOCK,
                      MAX_BLOCKS * MIN_ROWS_PER_BLOCK + 1} - {0})


# Model sizes with each of the kernels' feature layouts (``feature_layout``): stored
# column by column with the products by loops (narrow rows, and wider ones with few
# components; k=7: a register tile of 4 components, then one of 3), or by GEMMs
# (narrow rows, many components), or row by row (wider rows, many components; the
# responsibilities normalised in place, along each row, or across the rows when a row
# is shorter than 16 components). Tied: always row by row.
LAYOUT_SIZES = {"column_loops": (3, 3), "tiled_column_loops": (8, 7),
                "wide_column_loops": (16, 3), "columns": (12, 20), "rows": (16, 20),
                "short_rows": (32, 8)}
WIDTHS = pytest.mark.parametrize("n_features, n_components", list(LAYOUT_SIZES.values()),
                                 ids=list(LAYOUT_SIZES))


@pytest.mark.parametrize("name", LAYOUT_SIZES)
def test_layout_sizes_take_their_layout(covariance_type, name):
    """Each of LAYOUT_SIZES runs the layout it is named after (tied: rows), so the
    tests parametrised by WIDTHS cover every path."""
    n_features, n_components = LAYOUT_SIZES[name]
    want = ("rows" if covariance_type == "tied"
            else name.removeprefix("wide_").removeprefix("short_").removeprefix("tiled_")
            .replace("_", " "))
    assert feature_layout(COVARIANCE_CODES[covariance_type], n_features, n_components) == want


@WIDTHS
@pytest.mark.parametrize("n_samples", CHUNK_EDGES)
def test_estep_statistics_chunk_edges(covariance_type, dtype, n_samples, n_features,
                                      n_components):
    """Row counts around the kernel chunk and the reduction blocks, 2 threads."""
    _check_against_reference(n_samples, covariance_type, dtype, n_threads=2, seed=2,
                             n_features=n_features, n_components=n_components)


@WIDTHS
def test_estep_statistics_threads_bitwise(covariance_type, dtype, n_features, n_components):
    """The fixed-order block reduction makes the statistics independent of n_threads."""
    X, sw, w0, m0, pc = _problem(3 * MAX_BLOCKS * MIN_ROWS_PER_BLOCK // 2 + 17,
                                 covariance_type, dtype, n_features=n_features,
                                 n_components=n_components, seed=3)
    one = estep_statistics(X, sw, w0, m0, pc, covariance_type, n_threads=1)
    two = estep_statistics(X, sw, w0, m0, pc, covariance_type, n_threads=2)
    for name in FIELDS + ("shift",):
        assert np.array_equal(getattr(one, name), getattr(two, name)), name


@WIDTHS
def test_estep_statistics_none_weights_are_unit_weights(covariance_type, dtype, n_features,
                                                        n_components):
    """sample_weight=None (no n-vector of ones) gives bitwise the statistics of ones."""
    X, _, w0, m0, pc = _problem(2 * CHUNK_SIZE + 50, covariance_type, dtype,
                                n_features=n_features, n_components=n_components, seed=5)
    ones = estep_statistics(X, np.ones(len(X), dtype=dtype), w0, m0, pc, covariance_type,
                            n_threads=2)
    none = estep_statistics(X, None, w0, m0, pc, covariance_type, n_threads=2)
    for name in FIELDS + ("shift",):
        assert np.array_equal(getattr(none, name), getattr(ones, name)), name
    assert none.sum_weights == len(X)


def test_estep_statistics_additive_across_row_splits(covariance_type, dtype):
    X, sw, w0, m0, pc = _problem(2 * CHUNK_SIZE + 50, covariance_type, dtype, seed=4)
    whole = estep_statistics(X, sw, w0, m0, pc, covariance_type)
    want = _reference(X, sw, w0, m0, pc, covariance_type)
    scales = _scales(X, sw, w0, m0, pc, covariance_type, want)
    for cuts in ([CHUNK_SIZE - 7], [1, 100, CHUNK_SIZE + 3]):
        bounds = [0] + cuts + [len(X)]
        parts = [estep_statistics(X[a:b], sw[a:b], w0, m0, pc, covariance_type)
                 for a, b in zip(bounds[:-1], bounds[1:])]
        total = parts[0]
        for part in parts[1:]:
            total = total + part
        _assert_stats_close(total, whole, RTOL[dtype], scales, dtype)
    # Summation in float64 over identical row values: the weights add exactly.
    assert total.sum_weights == pytest.approx(float(sw.astype(np.float64).sum()), rel=1e-15)


def test_mstep_matches_reference(covariance_type):
    """mstep on the oracle's statistics == the oracle's mstep (same float64 algebra)."""
    X, sw, w0, m0, pc = _problem(500, covariance_type, np.float64, seed=5)
    want = _reference(X, sw, w0, m0, pc, covariance_type)
    stats = SufficientStatistics(**{name: getattr(want, name) for name in FIELDS + ("shift",)})
    for reg_covar in (0.0, 1e-3):
        got = mstep(stats, covariance_type, reg_covar)
        expected = ref.mstep(want, covariance_type, reg_covar)
        assert len(got) == 3
        for g, e in zip(got, expected):
            np.testing.assert_allclose(g, e, rtol=1e-12, atol=1e-14)


def test_estep_then_mstep_is_one_em_step(covariance_type, dtype):
    """The kernel's statistics through mstep give the oracle's EM step (and sklearn's math)."""
    X, sw, w0, m0, pc = _problem(800, covariance_type, dtype, seed=6)
    got = mstep(estep_statistics(X, sw, w0, m0, pc, covariance_type), covariance_type, 1e-6)
    want = ref.mstep(_reference(X, sw, w0, m0, pc, covariance_type), covariance_type, 1e-6)
    rtol = RTOL[dtype]
    for g, e in zip(got, want):
        np.testing.assert_allclose(g, e, rtol=rtol, atol=rtol * np.abs(e).max())


@pytest.mark.parametrize("offset, direct", [(0.0, True), (1.0, True), (10.0, False)])
def test_spherical_wide_float64_rows_with_and_without_the_shifted_copy(offset, direct):
    """Spherical float64 rows laid out row by row (wider than 12, many components) whose
    shift lies within 4 standard deviations of the origin go into the GEMMs as they are
    (no shifted copy); farther out they are shifted first. Both paths: the oracle's
    statistics (float64 bound), the same for 1 and 2 threads, for the E-step and the
    per-sample outputs."""
    n_features, n_components = LAYOUT_SIZES["rows"]
    X, sw, w0, m0, pc = _problem(2 * CHUNK_SIZE + 77, "spherical", np.float64,
                                 n_features=n_features, n_components=n_components, seed=12,
                                 offset=offset)
    params = _KernelParameters(w0, m0, pc, "spherical", X.dtype)
    assert uses_direct_rows(params.code, params.shift, params.expansion) == direct
    got = _check_against_reference(len(X), "spherical", np.float64, n_threads=2,
                                   n_features=n_features, n_components=n_components,
                                   seed=12, offset=offset)
    one = estep_statistics(X, sw, w0, m0, pc, "spherical", n_threads=1)
    for name in FIELDS:
        assert np.array_equal(getattr(one, name), getattr(got, name)), name
    model = GaussianMixture(len(w0), covariance_type="spherical", max_iter=0,
                            weights_init=w0, means_init=m0, precisions_init=pc ** 2)
    model.fit(X)  # max_iter=0: the given parameters, as they are
    log_prob_norm, resp = ref.estep(X, w0, m0, pc, "spherical")
    np.testing.assert_allclose(model.score_samples(X), log_prob_norm, rtol=1e-12)
    np.testing.assert_allclose(model.predict_proba(X), resp, rtol=1e-10, atol=1e-14)


@WIDTHS
def test_estep_statistics_far_from_origin(covariance_type, n_features, n_components):
    """Moments about the current means: X + 1e6 gives the same covariances as X.

    Float64 holds X + 1e6 to ~1e-10 absolute, so after the M-step the covariances (O(1))
    must agree to ~1e-9; 1e-6 is the issue's bar. The naive sum x x^T - nk m m^T would lose
    all digits here (1e12 * eps ~ 1e-4 per term, summed over rows).
    """
    near = _problem(1000, covariance_type, np.float64, seed=7, n_features=n_features,
                    n_components=n_components)
    far = _problem(1000, covariance_type, np.float64, seed=7, offset=1e6,
                   n_features=n_features, n_components=n_components)
    cov_near = mstep(estep_statistics(*near, covariance_type), covariance_type, 0.0)[2]
    cov_far = mstep(estep_statistics(*far, covariance_type), covariance_type, 0.0)[2]
    np.testing.assert_allclose(cov_far, cov_near, rtol=1e-6, atol=1e-6 * np.abs(cov_near).max())


@WIDTHS
def test_estep_statistics_no_underflow_for_far_points(covariance_type, dtype, n_features,
                                                      n_components):
    """Rows thousands of standard deviations away: finite log-likelihood, all weight assigned."""
    X, sw, w0, m0, pc = _problem(200, covariance_type, dtype, seed=8, n_features=n_features,
                                 n_components=n_components)
    X = X.copy()
    X[:5] = 1e3
    sw = np.ones(len(X), dtype=dtype)
    got = estep_statistics(X, sw, w0, m0, pc, covariance_type)
    assert np.isfinite(got.log_likelihood)
    assert np.all(np.isfinite(got.nk)) and np.all(np.isfinite(got.second))
    # Every row's responsibilities sum to one, far rows included.
    assert got.nk.sum() == pytest.approx(len(X), rel=1e-6 if dtype == np.float32 else 1e-12)
    want = _reference(X, sw, w0, m0, pc, covariance_type)
    assert got.log_likelihood == pytest.approx(want.log_likelihood, rel=RTOL[dtype])


@pytest.mark.parametrize("n_features", [3, 16])
def test_float32_shorter_polynomials_keep_float64_accuracy(covariance_type, n_features,
                                                            monkeypatch):
    """float32 data gets a degree-7 exp and a shorter log: on the same values held as
    float64, every statistic agrees to 1e-8 of its scale.

    The exp's truncation is < 5e-9 relative (the data's own rounding is 6e-8) and the
    log's < 2e-11 absolute; measured: at most 7e-10 of the scale here. The precisions
    are shrunk so that the components overlap (responsibilities of exactly 0 or 1 would
    hide the exp). One term fewer (degree 6) fails this test.
    """
    X, sw, w0, m0, pc = _problem(3000, covariance_type, np.float32, seed=11,
                                 n_features=n_features, n_components=5)
    pc = (pc * 0.1).astype(np.float32)
    monkeypatch.setattr(_em, "_SINGLE_DISTANCE", -np.inf)  # float64 GEMMs (tested below)
    single = estep_statistics(X, sw, w0, m0, pc, covariance_type)
    double = estep_statistics(X.astype(np.float64), sw.astype(np.float64), w0, m0, pc,
                              covariance_type)
    _assert_stats_close(single, double, 1e-8,
                        _scales(X, sw, w0, m0, pc, covariance_type, double), np.float32)


@pytest.mark.parametrize("n_features, n_components", [(16, 20), (40, 20), (40, 8)])
def test_float32_gemm_error_within_its_bound(covariance_type, n_features, n_components,
                                              monkeypatch):
    """float32 data near the shift gets its log-densities from a float32 GEMM (row-major
    models: d > 12, or tied from d = 7): against float64 GEMMs on the same values,
    every statistic moves by at most 2 eps32 (R + d) of its scale, R + d the size of
    the terms that cancel for rows near the components (``largest_rounding``: R, the
    means' part; the rows' spread adds d): the GEMM's rounding perturbs a log-density
    by about eps32 (R + d), a responsibility by as much relative. Measured: 0.05-0.5
    eps32 (R + d). The statistics must move at all (the float32 path ran). k = 8: rows
    shorter than 16 components, normalised across the rows."""
    _float32_path_within_its_bound(covariance_type, n_features, n_components, "rows",
                                   monkeypatch)


def _float32_path_within_its_bound(covariance_type, n_features, n_components, layout,
                                   monkeypatch):
    """The float32 path of ``layout`` against float64 on the same values: the statistics
    moved, each by at most 2 eps32 (R + d) of its scale. Returns both statistics, the
    bound and the weights."""
    X, sw, w0, m0, pc = _problem(3000, covariance_type, np.float32, seed=11,
                                 n_features=n_features, n_components=n_components)
    code = COVARIANCE_CODES[_em._kernel_type(covariance_type, n_features)]
    assert feature_layout(code, n_features, n_components) == layout
    pc = (pc * 0.1).astype(np.float32)
    params = _KernelParameters(w0, m0, pc, covariance_type, np.float32)
    assert params.single.size > 0
    single = estep_statistics(X, sw, w0, m0, pc, covariance_type)
    monkeypatch.setattr(_em, "_SINGLE_DISTANCE", -np.inf)
    double = estep_statistics(X, sw, w0, m0, pc, covariance_type)
    assert any(not np.array_equal(getattr(single, name), getattr(double, name))
               for name in FIELDS)
    bound = 2 * np.finfo(np.float32).eps / 2 * (params.largest_rounding + n_features)
    _assert_stats_close(single, double, bound,
                        _scales(X, sw, w0, m0, pc, covariance_type, double), np.float32)
    return single, double, bound, sw


@pytest.mark.parametrize("n_features, n_components", [(2, 4), (5, 3), (6, 8)])
def test_float32_column_loops_error_within_its_bound(covariance_type, n_features,
                                                      n_components, monkeypatch):
    """Narrow float32 data near the shift, by loops (``_estep._single_columns``): the
    features rounded to float32, float32 score tiles and float32 exps (8 lanes where
    float64 takes 4), the responsibilities then widened for float64 statistics.
    Against the float64 loops on the same values, every statistic moves by at most
    2 eps32 (R + d) of its scale, as the float32 GEMM's (above); the exp's own error
    (degree 7, < 6e-9 relative, plus a few float32 roundings) is far below that.
    The statistics must move at all (the float32 path ran), and so must the
    log-likelihood, by no more than the same bound per row. (d <= 6: tied runs as
    full, by the same loops.)"""
    single, double, bound, sw = _float32_path_within_its_bound(
        covariance_type, n_features, n_components, "column loops", monkeypatch)
    assert single.log_likelihood != double.log_likelihood
    assert abs(single.log_likelihood - double.log_likelihood) <= bound * sw.sum()


def test_float32_gemm_only_near_the_shift():
    """Components whose terms exceed ``_SINGLE_DISTANCE`` keep float64 GEMMs, and so do
    far components and float64 data: the float32 path is an exact no-op there."""
    X, sw, w0, m0, pc = _problem(500, "diag", np.float32, seed=3, n_features=16)
    assert _KernelParameters(w0, m0, pc, "diag", np.float32).single.size > 0
    assert _KernelParameters(w0, m0, pc, "diag", np.float64).single.size == 0
    tight = (pc * 1e3).astype(np.float32)  # spreads 1e-3 as wide: distances x 1e6
    assert _KernelParameters(w0, m0, tight, "diag", np.float32).single.size == 0


def _far_components_problem(covariance_type, dtype, n_features, n_far, seed=21,
                            n_components=3):
    """Components whose last ``n_far`` are tight (covariances x 1e-4) and 1e4 or
    6e4 away from the others: squared Mahalanobis distances from the shift of ~1e12
    (tied, whose one covariance is x 1e-2: ~1e10), where working about one shift loses
    ~1e-4 (1e-6) of their moments."""
    rng = np.random.default_rng(seed)
    n_samples = 2 * CHUNK_SIZE + 77
    means = rng.normal(scale=3.0, size=(n_components, n_features))
    scales = np.ones(n_components)
    for j, k in enumerate(range(n_components - n_far, n_components)):
        means[k] += (1e4, 3e4)[j % 2] * (1 + j)
        scales[k] = 1e-4
    covariances = ref.random_covariances(rng, n_components, n_features, covariance_type)
    full = np.einsum("kij,k->kij", ref._full_covariances(
        covariances, covariance_type, n_components, n_features), scales)
    labels = rng.choice(n_components, size=n_samples)
    labels[:n_components] = np.arange(n_components)
    X = np.stack([rng.multivariate_normal(means[k], full[k]) for k in labels])
    weights = np.bincount(labels, minlength=n_components) / n_samples
    start_means = means + 1e-3 * rng.normal(size=means.shape)
    if covariance_type == "tied":  # one covariance for all, between the two spreads
        start_cov = 1e-2 * covariances
    else:
        start_cov = ref.random_covariances(rng, n_components, n_features, covariance_type)
        start_cov = start_cov * scales.reshape((-1,) + (1,) * (start_cov.ndim - 1))
    prec_chol = ref.precisions_cholesky_from_covariances(start_cov, covariance_type)
    sample_weight = rng.uniform(0.5, 2.0, size=n_samples)
    return (np.ascontiguousarray(X, dtype=dtype), sample_weight.astype(dtype),
            weights.astype(dtype), start_means.astype(dtype), prec_chol.astype(dtype))


def _assert_matches_oracle(X, sw, w0, m0, pc, covariance_type, rtol, n_threads=1):
    got = estep_statistics(X, sw, w0, m0, pc, covariance_type, n_threads=n_threads)
    want = _reference(X, sw, w0, m0, pc, covariance_type)
    _assert_stats_close(got, want, rtol, _scales(X, sw, w0, m0, pc, covariance_type, want),
                        X.dtype)
    return got


@WIDTHS
@pytest.mark.parametrize("n_far", [1, 2])
def test_far_components_are_computed_about_their_own_means(covariance_type, dtype,
                                                           n_features, n_components, n_far,
                                                           monkeypatch):
    """Components far from the shift relative to their spread (here ~1e12 in squared
    Mahalanobis distance) are computed about their own means: the oracle's statistics
    (float64: 1e-10 of their scale), the same for 1 and 2 threads; about the shift
    alone the same comparison fails (float64), so the test sees the difference."""
    problem = _far_components_problem(covariance_type, dtype, n_features, n_far,
                                      n_components=n_components)
    params = _KernelParameters(*problem[2:], covariance_type, dtype)
    # (one near component left, full at d >= 8: it is computed apart too)
    alone = n_far == n_components - 1 and covariance_type == "full" and n_features >= 8
    assert len(params.far) == (n_components if alone else n_far)
    got = _assert_matches_oracle(*problem, covariance_type, RTOL[dtype], n_threads=2)
    one = estep_statistics(*problem, covariance_type, n_threads=1)
    for name in FIELDS:
        assert np.array_equal(getattr(one, name), getattr(got, name)), name
    if dtype == np.float64:
        monkeypatch.setattr("gmm_fast._em._FAR_DISTANCE", np.inf)
        with pytest.raises(AssertionError):
            _assert_matches_oracle(*problem, covariance_type, RTOL[dtype])


@WIDTHS
def test_far_components_per_sample_outputs(covariance_type, n_features, n_components):
    """score_samples and predict_proba with far components: the oracle's values."""
    X, _, w0, m0, pc = _far_components_problem(covariance_type, np.float64, n_features, 1,
                                               n_components=n_components)
    precisions = ref.precisions_from_cholesky(pc, covariance_type)
    model = GaussianMixture(n_components, covariance_type=covariance_type, max_iter=0, weights_init=w0,
                            means_init=m0, precisions_init=precisions).fit(X)
    log_prob_norm, resp = ref.estep(X, w0, m0, model.precisions_cholesky_, covariance_type)
    np.testing.assert_allclose(model.score_samples(X), log_prob_norm, rtol=1e-11)
    np.testing.assert_allclose(model.predict_proba(X), resp, rtol=1e-10, atol=1e-14)
    np.testing.assert_array_equal(model.predict(X), resp.argmax(axis=1))


def test_far_components_when_the_nearest_group_has_no_weight():
    """The shift re-centred on a group of components whose mixture weights are all 0 is
    their plain mean (a weighted one would be 0/0 and every statistic NaN)."""
    means = np.array([[0.0, 0.0], [1e5, 0.0], [2e5, 0.0], [2e5 + 1.0, 0.0]])
    weights = np.array([0.9, 0.1, 0.0, 0.0])
    prec_chol = np.ones(4)
    params = _KernelParameters(weights, means, prec_chol, "spherical", np.float64)
    assert np.isfinite(params.shift).all() and len(params.far) == 2
    rng = np.random.default_rng(44)
    X = np.vstack([rng.normal(size=(50, 2)), rng.normal(size=(50, 2)) + [1e5, 0.0]])
    with np.errstate(divide="ignore"):  # the oracle's log of the zero weights
        _assert_matches_oracle(X, np.ones(len(X)), weights, means, prec_chol, "spherical",
                               RTOL[np.float64])


def test_far_component_whose_distance_overflows():
    """A tight, correlated component 1e10 from the other: ``L_k a_k`` overflows and its
    distance is NaN, which must count as far (it did not, and every statistic was off)."""
    means = np.array([[0.0, 0.0], [1e10, 0.0]])
    weights = np.array([0.5, 0.5])
    covariances = np.array([[[1e-300, 0.5e-300], [0.5e-300, 1e-300]], np.eye(2)])
    prec_chol = ref.precisions_cholesky_from_covariances(covariances, "full")
    rng = np.random.default_rng(45)
    X = np.vstack([1e-150 * rng.normal(size=(5, 2)), means[1] + rng.normal(size=(5, 2))])
    with np.errstate(over="ignore", invalid="ignore"):  # numpy says so; here on purpose
        params = _KernelParameters(weights, means, prec_chol, "full", np.float64)
        assert len(params.far) >= 1
        _assert_matches_oracle(X, np.ones(len(X)), weights, means, prec_chol, "full",
                               RTOL[np.float64])


@pytest.mark.parametrize("covariance_type", ["full", "tied"])
@pytest.mark.parametrize("condition", [1e8, 1e12])
@pytest.mark.parametrize("offset", [0.0, 200.0])
def test_ill_conditioned_components_are_computed_in_cholesky_form(covariance_type, condition,
                                                                  offset):
    """A full covariance far from round loses about eps times its condition number in
    the expanded quadratic form, even at the shift (collinear features): such a
    component is computed about its own mean (the distance test alone kept it: 1e-3 of
    the log-likelihood off at cond 1e8 along the long axis, 5.6e-8 at the shift at cond
    1e12). Tied at d <= 6 runs the full kernel."""
    rng = np.random.default_rng(46)
    c, s = np.cos(0.3), np.sin(0.3)
    rotation = np.array([[c, -s], [s, c]])
    thin = rotation @ np.diag([1.0, 1.0 / condition]) @ rotation.T
    means = np.array([[0.0, 0.0], offset * rotation[:, 0]])
    X = np.vstack([rng.multivariate_normal(means[0], thin, size=300),
                   rng.multivariate_normal(means[1], thin, size=300)])
    weights = np.array([0.5, 0.5])
    covariances = thin if covariance_type == "tied" else np.stack([thin, thin])
    prec_chol = ref.precisions_cholesky_from_covariances(covariances, covariance_type)
    sample_weight = rng.uniform(0.5, 2.0, size=len(X))
    params = _KernelParameters(weights, means, prec_chol, covariance_type, np.float64)
    assert len(params.far) == 2
    # (offset 0: every row weighs for both, their moments by SYRK; 200: row by row)
    got = _assert_matches_oracle(X, sample_weight, weights, means, prec_chol, covariance_type,
                                 RTOL[np.float64], n_threads=2)
    want = _reference(X, sample_weight, weights, means, prec_chol, covariance_type)
    assert got.log_likelihood == pytest.approx(want.log_likelihood, rel=1e-12)
    one = estep_statistics(X, sample_weight, weights, means, prec_chol, covariance_type)
    for name in FIELDS:
        assert np.array_equal(getattr(one, name), getattr(got, name)), name
    # The covariances, when given, only spare computing their traces: the same result.
    given = estep_statistics(X, sample_weight, weights, means, prec_chol, covariance_type,
                             covariances=covariances)
    for name in FIELDS:
        assert np.array_equal(getattr(given, name), getattr(got, name)), name


@pytest.mark.filterwarnings("ignore::gmm_fast.ConvergenceWarning")
@pytest.mark.parametrize("n_features", [3, 8])
def test_kernel_form_in_one_call_matches_the_general_path(rng, dtype, covariance_type,
                                                           n_features):
    """The usual case's parameters in one C call (``_estep.kernel_form``: no component
    far, none set apart) against the general numpy path (taken when some are set
    apart, here none): the same kernel arguments to ~1e-15 (sums in another order),
    for every covariance type, tied both narrow (the full kernel) and wide; and the
    general path where a component is far."""
    X = rng.standard_normal((600, n_features)) * rng.uniform(0.5, 3, n_features) + 4.0
    model = GaussianMixture(4, covariance_type=covariance_type, max_iter=3,
                            random_state=0).fit(X.astype(dtype))
    args = (model.weights_, model.means_, model.precisions_cholesky_, covariance_type,
            np.dtype(dtype), model.covariances_)
    usual = _KernelParameters(*args)
    general = _KernelParameters(*args, apart=np.array([], dtype=np.int64))
    assert usual.code == general.code and not len(usual.far) and not len(general.far)
    for name in ("shift", "centered", "expansion", "prec"):
        got, want = getattr(usual, name), getattr(general, name)
        scale = np.abs(want).max(axis=-1, keepdims=True) if want.ndim > 1 else np.abs(want).max()
        assert got.shape == want.shape, name
        off = np.abs(got - want) / np.maximum(scale, 1e-300)
        assert off.max() <= 1e-13, (name, off.max(), np.unravel_index(off.argmax(), off.shape))
    assert usual.largest_rounding == pytest.approx(general.largest_rounding, rel=1e-12)
    assert len(usual.single) == len(general.single)
    np.testing.assert_allclose(usual.single, general.single, rtol=1e-6)
    # A component far from the others: the general path, in the usual call too.
    means = model.means_.copy()
    means[0] += 1e5 * np.sqrt(np.diag(np.atleast_2d(
        model.covariances_[0] if covariance_type in ("full", "diag", "spherical")
        else model.covariances_)).max())
    far = _KernelParameters(model.weights_, means, *args[2:])
    assert len(far.far) >= 1
