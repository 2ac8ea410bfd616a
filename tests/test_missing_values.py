"""GaussianMixture(missing_values="marginalize"): EM on the observed cells, against a plain
numpy reference that inverts each row's observed sub-matrices explicitly."""
import warnings

import numpy as np
import pytest

from gmm_fast import GaussianMixture
from gmm_fast._base import ConvergenceWarning

COVARIANCE_TYPES = ["full", "tied", "diag", "spherical"]


def _mixture(n_samples=3000, missing=0.2, seed=0, n_features=6):
    """Three full-covariance components in d=6 and a copy with ``missing`` of the cells
    removed completely at random (rows left with no cell dropped from both)."""
    rng = np.random.default_rng(seed)
    means = np.zeros((3, n_features))
    means[1, :2] = 5.0
    means[2, 1:4] = 5.0
    factors = rng.standard_normal((3, n_features, n_features)) * 0.5
    covariances = factors @ factors.transpose(0, 2, 1) + 0.3 * np.eye(n_features)
    weights = np.array([0.5, 0.3, 0.2])
    labels = rng.choice(3, size=n_samples, p=weights)
    X = np.empty((n_samples, n_features))
    for k in range(3):
        rows = labels == k
        X[rows] = rng.multivariate_normal(means[k], covariances[k], rows.sum())
    holes = X.copy()
    holes[rng.random(X.shape) < missing] = np.nan
    keep = ~np.isnan(holes).all(axis=1)
    return X[keep], holes[keep], (weights, means, covariances)


def _full(covariances, covariance_type, k, d):
    if covariance_type == "full":
        return covariances
    if covariance_type == "tied":
        return np.repeat(covariances[None], k, axis=0)
    if covariance_type == "diag":
        return np.array([np.diag(c) for c in covariances])
    return np.array([c * np.eye(d) for c in covariances])


def _reference_step(X, sample_weight, weights, means, covariances, covariance_type, reg):
    """One EM step, row by row: marginal densities from inverted observed blocks, the
    conditional moments by formula. Returns (weights, means, covariances, mean log-lik)."""
    n, d = X.shape
    k = len(weights)
    S = _full(covariances, covariance_type, k, d)
    log_prob = np.empty((n, k))
    completed = np.empty((n, k, d))
    conditional = np.zeros((n, k, d, d))
    for i in range(n):
        o = ~np.isnan(X[i])
        m = ~o
        for c in range(k):
            soo = S[c][np.ix_(o, o)]
            inv = np.linalg.inv(soo)
            diff = X[i, o] - means[c, o]
            log_prob[i, c] = (np.log(weights[c]) - 0.5 * o.sum() * np.log(2 * np.pi)
                              - 0.5 * np.linalg.slogdet(soo)[1] - 0.5 * diff @ inv @ diff)
            completed[i, c] = X[i]
            if m.any():
                smo = S[c][np.ix_(m, o)]
                completed[i, c, m] = means[c, m] + smo @ inv @ diff
                conditional[i, c][np.ix_(m, m)] = S[c][np.ix_(m, m)] - smo @ inv @ smo.T
    top = log_prob.max(axis=1)
    log_norm = top + np.log(np.exp(log_prob - top[:, None]).sum(axis=1))
    resp = np.exp(log_prob - log_norm[:, None]) * sample_weight[:, None]
    nk = resp.sum(axis=0) + 10 * np.finfo(float).eps
    new_means = np.einsum("nk,nkd->kd", resp, completed) / nk[:, None]
    centred = completed - new_means[None]
    second = (np.einsum("nk,nkd,nke->kde", resp, centred, centred)
              + np.einsum("nk,nkde->kde", resp, conditional))
    full = second / nk[:, None, None]
    if covariance_type == "full":
        new_cov = full + reg * np.eye(d)
    elif covariance_type == "tied":
        new_cov = second.sum(axis=0) / nk.sum() + reg * np.eye(d)
    elif covariance_type == "diag":
        new_cov = np.diagonal(full, axis1=1, axis2=2) + reg
    else:
        new_cov = np.trace(full, axis1=1, axis2=2) / d + reg
    ll = float(sample_weight @ log_norm / sample_weight.sum())
    return nk / nk.sum(), new_means, new_cov, ll


def _precisions(covariances, covariance_type):
    if covariance_type in ("full", "tied"):
        return np.linalg.inv(covariances)
    return 1.0 / covariances


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("weighted", [False, True], ids=["unit", "weighted"])
def test_one_step_matches_reference(covariance_type, weighted):
    """From the same start, one EM step equals the row-by-row reference to 1e-10: the
    reference inverts every row's observed blocks; the estimator groups patterns,
    factors once per pattern and batches components (different rounding only)."""
    rng = np.random.default_rng(1)
    _, X, (weights, means, covariances) = _mixture(400, missing=0.3, seed=1)
    sw = rng.uniform(0.2, 3.0, len(X)) if weighted else np.ones(len(X))
    start_cov = {"full": covariances, "tied": covariances.mean(axis=0),
                 "diag": np.array([np.diag(c) for c in covariances]),
                 "spherical": np.array([np.trace(c) / 6 for c in covariances])}[covariance_type]
    start_means = means + 0.3 * rng.standard_normal(means.shape)
    reg = 1e-6
    want = _reference_step(X, sw, weights, start_means, start_cov, covariance_type, reg)
    gm = GaussianMixture(3, covariance_type=covariance_type, max_iter=1, reg_covar=reg,
                         weights_init=weights, means_init=start_means,
                         precisions_init=_precisions(start_cov, covariance_type),
                         missing_values="marginalize")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        gm.fit(X, sample_weight=sw if weighted else None)
    np.testing.assert_allclose(gm.weights_, want[0], rtol=1e-10)
    np.testing.assert_allclose(gm.means_, want[1], rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(gm.covariances_, want[2], rtol=1e-10, atol=1e-12)
    assert gm.lower_bound_ == pytest.approx(want[3], rel=1e-12)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_score_samples_are_marginal_densities(covariance_type):
    """score_samples of rows with NaN cells is the log of their marginal density;
    predict_proba rows sum to 1 and predict is their argmax."""
    X_full, X, _ = _mixture(600, missing=0.25, seed=2)
    gm = GaussianMixture(3, covariance_type=covariance_type, random_state=0,
                         missing_values="marginalize").fit(X)
    cov = _full(gm.covariances_, covariance_type, 3, 6)
    # The reference step's log-likelihood at the fitted parameters is the mean score.
    want = _reference_step(X, np.ones(len(X)), gm.weights_, gm.means_, gm.covariances_,
                           covariance_type, 0.0)[3]
    assert gm.score(X) == pytest.approx(want, rel=1e-10)
    row = 5
    o = ~np.isnan(X[row])
    densities = [gm.weights_[k] * _gaussian(X[row, o], gm.means_[k, o], cov[k][np.ix_(o, o)])
                 for k in range(3)]
    assert gm.score_samples(X[row:row + 1])[0] == pytest.approx(np.log(sum(densities)),
                                                                rel=1e-10)
    proba = gm.predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-12)
    np.testing.assert_array_equal(gm.predict(X), np.argmax(proba, axis=1))
    np.testing.assert_allclose(proba[row], np.array(densities) / sum(densities), rtol=1e-9)


def _gaussian(x, mean, cov):
    diff = x - mean
    return np.exp(-0.5 * diff @ np.linalg.solve(cov, diff)) / np.sqrt(
        np.linalg.det(2 * np.pi * cov))


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_without_nan_bitwise_as_default(covariance_type):
    """No NaN cell: the option changes nothing, bit for bit."""
    X, _, _ = _mixture(800, seed=3)
    a = GaussianMixture(3, covariance_type=covariance_type, random_state=0).fit(X)
    b = GaussianMixture(3, covariance_type=covariance_type, random_state=0,
                        missing_values="marginalize").fit(X)
    for name in ("weights_", "means_", "covariances_", "lower_bound_", "n_iter_"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    np.testing.assert_array_equal(a.score_samples(X), b.score_samples(X))


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_lower_bound_increases_and_threads_do_not_matter(covariance_type):
    _, X, _ = _mixture(2000, missing=0.2, seed=4)
    fits = [GaussianMixture(3, covariance_type=covariance_type, random_state=0, tol=1e-10,
                            max_iter=60, n_threads=t, missing_values="marginalize")
            for t in (1, 2)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for gm in fits:
            gm.fit(X)
    bounds = np.array(fits[0].lower_bounds_)
    assert np.all(np.diff(bounds) >= -1e-12 * np.abs(bounds[1:]))
    np.testing.assert_array_equal(fits[0].means_, fits[1].means_)
    np.testing.assert_array_equal(fits[0].covariances_, fits[1].covariances_)


def test_float32_data():
    X_full, X, _ = _mixture(1500, missing=0.2, seed=5)
    a = GaussianMixture(3, random_state=0, missing_values="marginalize").fit(X)
    b = GaussianMixture(3, random_state=0, missing_values="marginalize").fit(
        X.astype(np.float32))
    assert b.means_.dtype == np.float32
    assert b.score_samples(X.astype(np.float32)).dtype == np.float32
    np.testing.assert_allclose(b.means_, a.means_, rtol=1e-3, atol=1e-3)


def test_recovery_beats_complete_rows_and_mean_imputation():
    """20% of cells missing completely at random: the parameters come closer to the
    truth than a fit on the complete rows only or on mean-imputed rows, and the imputed
    cells' RMSE is below mean imputation's and within 5% of the oracle conditional
    mean's (the truth's own E[x_m | x_o])."""
    X_full, X, (weights, means, covariances) = _mixture(6000, missing=0.2, seed=6)
    order = np.argsort(means[:, 0] + 2 * means[:, 1])

    def error(gm):
        got = gm.means_[np.argsort(gm.means_[:, 0] + 2 * gm.means_[:, 1])]
        return np.abs(got - means[order]).max()

    gm = GaussianMixture(3, random_state=0, missing_values="marginalize").fit(X)
    complete = GaussianMixture(3, random_state=0).fit(X[~np.isnan(X).any(axis=1)])
    column_means = np.nanmean(X, axis=0)
    mean_filled = np.where(np.isnan(X), column_means, X)
    imputed_fit = GaussianMixture(3, random_state=0).fit(mean_filled)
    assert error(gm) < error(complete) and error(gm) < error(imputed_fit)
    mask = np.isnan(X)
    rmse = np.sqrt(((gm.impute(X) - X_full)[mask] ** 2).mean())
    oracle = GaussianMixture(3, missing_values="marginalize")
    oracle.weights_, oracle.means_, oracle.covariances_ = weights, means, covariances
    oracle.precisions_cholesky_ = np.linalg.cholesky(np.linalg.inv(covariances))
    oracle.n_features_in_ = 6
    oracle_rmse = np.sqrt(((oracle.impute(X) - X_full)[mask] ** 2).mean())
    mean_rmse = np.sqrt(((mean_filled - X_full)[mask] ** 2).mean())
    assert rmse < mean_rmse
    assert rmse <= 1.05 * oracle_rmse


def test_impute_fills_only_missing_cells():
    _, X, _ = _mixture(500, seed=7)
    gm = GaussianMixture(3, random_state=0, missing_values="marginalize").fit(X)
    filled = gm.impute(X)
    observed = ~np.isnan(X)
    np.testing.assert_array_equal(filled[observed], X[observed])
    assert np.isfinite(filled).all()
    with pytest.raises(ValueError, match="missing_values='marginalize'"):
        GaussianMixture(3).fit(filled).impute(X)


def test_bad_input_is_a_clear_error():
    _, X, _ = _mixture(300, seed=8)
    with pytest.raises(ValueError, match="missing_values='marginalize'"):
        GaussianMixture(2).fit(X)
    marginal = GaussianMixture(2, missing_values="marginalize")
    empty_row = X.copy()
    empty_row[3] = np.nan
    with pytest.raises(ValueError, match="every feature missing.*row 3"):
        marginal.fit(empty_row)
    empty_column = X.copy()
    empty_column[:, 2] = np.nan
    with pytest.raises(ValueError, match=r"Feature\(s\) \[2\] are missing in every row"):
        marginal.fit(empty_column)
    infinite = X.copy()
    infinite[0, 0] = np.inf
    with pytest.raises(ValueError, match="infinity"):
        marginal.fit(infinite)
    weights = np.ones(len(X))
    weights[1] = np.nan
    with pytest.raises(ValueError, match="sample_weight"):
        marginal.fit(X, sample_weight=weights)
    with pytest.raises(ValueError, match="missing_values='drop' should be one of"):
        GaussianMixture(2, missing_values="drop").fit(X)
    fitted = marginal.fit(X)
    with pytest.raises(ValueError, match="every feature missing"):
        fitted.score_samples(empty_row)


def test_draws_follow_the_conditional_distribution():
    """One Gaussian (d=2, correlation 0.8): x2 | x1 ~ N(0.8 x1, 0.36). 4000 draws of a
    row's missing cell: mean within 4 standard errors of 0.8 x1, variance within 10%
    of 0.36; observed cells untouched; seeded draws repeat."""
    rng = np.random.default_rng(9)
    X = rng.multivariate_normal([0, 0], [[1, 0.8], [0.8, 1]], 20000)
    holes = X.copy()
    holes[::10, 1] = np.nan
    gm = GaussianMixture(1, missing_values="marginalize").fit(holes)
    query = np.array([[1.5, np.nan], [-0.5, 0.25]])
    draws = gm.impute(query, n_draws=4000, random_state=0)
    assert draws.shape == (4000, 2, 2)
    np.testing.assert_array_equal(draws[:, 0, 0], 1.5)
    np.testing.assert_array_equal(draws[:, 1], np.broadcast_to(query[1], (4000, 2)))
    mean = gm.means_[0, 1] + gm.covariances_[0, 1, 0] / gm.covariances_[0, 0, 0] * (
        1.5 - gm.means_[0, 0])
    variance = gm.covariances_[0, 1, 1] - gm.covariances_[0, 1, 0] ** 2 / gm.covariances_[0, 0, 0]
    assert abs(draws[:, 0, 1].mean() - mean) < 4 * np.sqrt(variance / 4000)
    assert draws[:, 0, 1].var() == pytest.approx(variance, rel=0.1)
    assert gm.impute(query)[0, 1] == pytest.approx(mean, rel=1e-12)
    np.testing.assert_array_equal(draws, gm.impute(query, n_draws=4000, random_state=0))


def test_imputer_in_a_pipeline():
    from sklearn.base import clone
    from sklearn.linear_model import LinearRegression
    from sklearn.pipeline import make_pipeline

    from gmm_fast import GaussianMixtureImputer

    X_full, X, _ = _mixture(1500, missing=0.1, seed=10)
    y = X_full @ np.arange(1, 7)
    pipeline = make_pipeline(GaussianMixtureImputer(GaussianMixture(3, random_state=0)),
                             LinearRegression()).fit(X, y)
    assert pipeline.score(X, y) > 0.9
    imputer = pipeline[0]
    assert imputer.mixture.missing_values == "error"  # the given mixture is not changed
    reference = GaussianMixture(3, random_state=0, missing_values="marginalize").fit(X)
    np.testing.assert_array_equal(imputer.transform(X), reference.impute(X))
    assert clone(imputer).get_params()["mixture"].n_components == 3
    with pytest.raises(TypeError, match="GaussianMixture"):
        GaussianMixtureImputer(mixture="kmeans").fit(X)


def test_select_model_marginalizes():
    """select_model's grid on data with holes: every cell fits on the observed cells,
    and the two separated groups are found; the chosen model scores the holes."""
    from gmm_fast import select_model

    rng = np.random.default_rng(11)
    X = np.concatenate([rng.normal(0, 1, (300, 3)), rng.normal(6, 1, (300, 3))])
    X[rng.random(X.shape) < 0.15] = np.nan
    X = X[~np.isnan(X).all(axis=1)]
    with pytest.raises(ValueError, match="NaN"):
        select_model(X, [1, 2], ["full"])
    selection = select_model(X, [1, 2, 3], ["full", "diag"], random_state=0,
                             missing_values="marginalize")
    assert not any(row["failed"] for row in selection.rows)
    assert selection.best_params["n_components"] == 2
    assert selection.best_model.missing_values == "marginalize"
    assert np.isfinite(selection.best_model.score_samples(X)).all()


def test_cli_missing_option(tmp_path, capsys):
    from gmm_fast._cli import main

    rng = np.random.default_rng(12)
    X = np.concatenate([rng.normal(0, 1, (100, 2)), rng.normal(6, 1, (100, 2))])
    holes = rng.random(X.shape) < 0.1
    holes[holes.all(axis=1), 0] = False  # (a row of empty cells is a blank record)
    lines = ["a,b"] + [",".join("" if hole else repr(float(v)) for v, hole in zip(row, gaps))
                       for row, gaps in zip(X, holes)]
    path = tmp_path / "holes.csv"
    path.write_text("\n".join(lines) + "\n")
    assert main(["fit", str(path), "-k", "2"]) != 0
    assert "--missing marginalize" in capsys.readouterr().err
    labels = tmp_path / "labels.csv"
    assert main(["fit", str(path), "-k", "2", "--missing", "marginalize", "-o",
                 str(labels)]) == 0
    assert len(labels.read_text().splitlines()) == 201  # header + every row, holes too
    assert main(["select", str(path), "-k", "1-3", "--missing", "marginalize",
                 "--quiet"]) == 0
    assert "best by BIC" in capsys.readouterr().out
    assert main(["fit", str(path), "-k", "2", "--model", "kmeans", "--missing",
                 "marginalize"]) != 0


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_kernel_statistics_match_numpy_and_do_not_depend_on_threads(covariance_type, dtype):
    """The fit's statistics of rows with NaN cells (``_missing_kernel``) equal the numpy
    implementation kept beside it (``statistics_numpy``) to 1e-10, over several blocks
    and chunks (rows missing 1 to d-1 cells, so both the q = 1 shortcut and the
    factorisations), and are bitwise the same for any thread count."""
    from gmm_fast._missing import MissingRows
    rng = np.random.default_rng(7)
    _, X, (weights, means, covariances) = _mixture(1500, missing=0.3, seed=7)
    X[:40, 1:] = np.nan  # q = d - 1
    X = X.astype(dtype)
    sw = rng.uniform(0.2, 3.0, len(X))
    sw[5] = 0.0
    start_cov = {"full": covariances, "tied": covariances.mean(axis=0),
                 "diag": np.array([np.diag(c) for c in covariances]),
                 "spherical": np.array([np.trace(c) / 6 for c in covariances])}[covariance_type]
    centres = means + 0.1 * rng.standard_normal(means.shape)
    missing = MissingRows(X, sw)
    want = missing.statistics_numpy(weights, means, start_cov, covariance_type, centres)
    runs = [missing.statistics(weights, means, start_cov, covariance_type, centres, n_threads)
            for n_threads in (1, 2, 3)]
    got = runs[0]
    assert got.log_likelihood == pytest.approx(want.log_likelihood, rel=1e-12)
    assert got.sum_weights == pytest.approx(want.sum_weights, rel=1e-14)
    np.testing.assert_allclose(got.nk, want.nk, rtol=1e-10)
    np.testing.assert_allclose(got.sums, want.sums, rtol=1e-10, atol=1e-9)
    np.testing.assert_allclose(got.second, want.second, rtol=1e-10, atol=1e-9)
    for other in runs[1:]:
        for name in ("log_likelihood", "sum_weights", "nk", "sums", "second"):
            np.testing.assert_array_equal(getattr(other, name), getattr(got, name))


def test_kernel_statistics_of_wide_rows_with_many_patterns():
    """Rows missing 17 to 21 of 24 cells, each its own pattern: the full case's
    chunks end early when their conditional covariances outgrow the buffer (256 doubles
    per row and component); the statistics still equal numpy's and do not depend on the
    thread count."""
    from gmm_fast._missing import MissingRows
    rng = np.random.default_rng(11)
    X, _, (weights, means, covariances) = _mixture(600, missing=0.0, seed=11, n_features=24)
    for row in range(len(X)):
        X[row, rng.permutation(24)[:rng.integers(17, 22)]] = np.nan
    assert len(np.unique(np.isnan(X), axis=0)) > 590
    centres = means + 0.1 * rng.standard_normal(means.shape)
    missing = MissingRows(X)
    want = missing.statistics_numpy(weights, means, covariances, "full", centres)
    runs = [missing.statistics(weights, means, covariances, "full", centres, n_threads)
            for n_threads in (1, 2)]
    got = runs[0]
    assert got.log_likelihood == pytest.approx(want.log_likelihood, rel=1e-12)
    np.testing.assert_allclose(got.nk, want.nk, rtol=1e-10)
    np.testing.assert_allclose(got.sums, want.sums, rtol=1e-10, atol=1e-9)
    np.testing.assert_allclose(got.second, want.second, rtol=1e-10, atol=1e-9)
    for name in ("log_likelihood", "nk", "sums", "second"):
        np.testing.assert_array_equal(getattr(runs[1], name), getattr(got, name))


@pytest.mark.parametrize("covariance_type", ["full", "diag"])
def test_fit_memory_grows_by_rows_not_rows_times_components(covariance_type):
    """With NaN cells the fit still holds no n x k (or n x k x d) temporary: the traced
    peak grows by the complete rows' copy for the kernels (8 d bytes per row), the
    NaN mask and a few index vectors, measured ~46 bytes per row (d = 4, 5% of cells
    missing), against 8 k = 256 bytes per row for one n x k float64 array. The slope
    between n and 2n rows cancels the fixed chunk buffers."""
    import tracemalloc
    n_components, n_features = 32, 4
    rng = np.random.default_rng(44)
    X = rng.normal(size=(400_000, n_features))
    X[rng.random(X.shape) < 0.05] = np.nan
    X[np.isnan(X).all(axis=1), 0] = 0.0
    precisions = (np.stack([np.eye(n_features)] * n_components) if covariance_type == "full"
                  else np.ones((n_components, n_features)))
    start = dict(weights_init=np.full(n_components, 1 / n_components),
                 means_init=np.nan_to_num(X[:n_components]), precisions_init=precisions)

    def peak(n):
        tracemalloc.start()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)  # 2 iterations on purpose
                GaussianMixture(n_components, covariance_type=covariance_type, max_iter=2,
                                tol=0.0, missing_values="marginalize", **start).fit(X[:n])
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    n = len(X) // 2
    slope = (peak(2 * n) - peak(n)) / n
    assert slope < 2 * 8 * n_features, f"{slope:.1f} bytes per row"
