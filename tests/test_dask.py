"""Fits on dask arrays equal the in-memory fits from the same start, on every scheduler.

The synchronous and threaded schedulers run most cases; a small ``distributed``
LocalCluster (2 spawned worker processes, one thread each) runs two, so that the
statistics really travel between processes.
"""
import subprocess
import sys

import numpy as np
import pytest

da = pytest.importorskip("dask.array")
dask = pytest.importorskip("dask")

from gmm_fast import GaussianMixture, KMeans  # noqa: E402
from gmm_fast import _dask, _em  # noqa: E402

COVARIANCE_TYPES = ["full", "tied", "diag", "spherical"]
# Uneven blocks, some smaller than the E-step kernel's chunk of 192 rows.
CHUNKS = (50, 150, 300, 100, 7, 593, 300)
RTOL = 1e-10


def _blobs(dtype=np.float64, n_features=3):
    rng = np.random.default_rng(1)
    centres = np.array([[0.0, 0, 0], [6, 6, 6], [0, 8, -3]])[:, :n_features]
    X = np.concatenate([rng.normal(centres[0], 1.0, (700, n_features)),
                        rng.normal(centres[1], 1.0, (500, n_features)),
                        rng.normal(centres[2], 0.5, (300, n_features))])
    weights = rng.uniform(0.5, 2.0, len(X))
    return X.astype(dtype), weights


def _dask_pair(X, weights):
    Xd = da.from_array(X, chunks=(CHUNKS, (2, 1)))  # (several column chunks: rechunked)
    wd = None if weights is None else da.from_array(weights, chunks=(CHUNKS,))
    return Xd, wd


def _precisions(covariance_type, k=3, d=3):
    return {"full": np.tile(np.eye(d), (k, 1, 1)), "tied": np.eye(d),
            "diag": np.ones((k, d)), "spherical": np.ones(k)}[covariance_type]


def _gmm_start(X, covariance_type):
    return dict(n_components=3, covariance_type=covariance_type, tol=1e-8,
                means_init=X[[0, 800, 1300]].astype(np.float64), weights_init=[0.3, 0.3, 0.4],
                precisions_init=_precisions(covariance_type), random_state=0)


def _assert_same_gmm(a, b, X, Xd):
    assert a.n_iter_ == b.n_iter_
    for name in ("weights_", "means_", "covariances_", "precisions_cholesky_"):
        np.testing.assert_allclose(getattr(b, name), getattr(a, name), rtol=RTOL, atol=0,
                                   err_msg=name)
        assert getattr(b, name).dtype == getattr(a, name).dtype
    np.testing.assert_allclose(b.lower_bound_, a.lower_bound_, rtol=RTOL)
    np.testing.assert_allclose(b.lower_bounds_, a.lower_bounds_, rtol=RTOL)
    np.testing.assert_array_equal(b.predict(Xd).compute(), a.predict(X))


@pytest.mark.parametrize("scheduler", ["sync", "threads"])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_gaussian_mixture_equals_in_memory(covariance_type, weighted, scheduler, dtype):
    X, weights = _blobs(dtype)
    weights = weights if weighted else None
    start = _gmm_start(X, covariance_type)
    expected = GaussianMixture(**start).fit(X, sample_weight=weights)
    Xd, wd = _dask_pair(X, weights)
    with dask.config.set(scheduler=scheduler):
        fitted = GaussianMixture(**start).fit(Xd, sample_weight=wd)
        _assert_same_gmm(expected, fitted, X, Xd)


def test_threads_in_tasks_warm_start_and_fit_predict(parallel_passes):
    """n_threads=2 inside each task, a warm start continuing the fit, fit_predict."""
    X, weights = _blobs(n_features=3)
    start = dict(_gmm_start(X, "full"), n_threads=2, max_iter=2, tol=0.0)
    Xd, wd = _dask_pair(X, weights)
    expected = GaussianMixture(warm_start=True, **start)
    fitted = GaussianMixture(warm_start=True, **start)
    with dask.config.set(scheduler="threads"), pytest.warns(Warning, match="did not converge"):
        for _ in range(2):  # the second fit continues from the first
            expected.fit(X, sample_weight=weights)
            fitted.fit(Xd, sample_weight=wd)
            _assert_same_gmm(expected, fitted, X, Xd)
        labels = GaussianMixture(**start).fit_predict(Xd)
        expected_labels = GaussianMixture(**start).fit_predict(X, sample_weight=None)
    assert isinstance(labels, da.Array)
    np.testing.assert_array_equal(labels.compute(), expected_labels)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_moved_far_redo(monkeypatch, covariance_type):
    """Every component counted as moved far: each iteration takes the second pass about
    the new means, in memory and over the blocks alike."""
    monkeypatch.setattr(_em, "_MOVED_FAR", 0.0)
    calls = []
    original = _dask.gmm_statistics

    def counted(*args, **kwargs):
        calls.append(kwargs.get("apart") is not None)
        return original(*args, **kwargs)

    monkeypatch.setattr(_dask, "gmm_statistics", counted)
    X, weights = _blobs()
    start = _gmm_start(X, covariance_type)
    expected = GaussianMixture(**start).fit(X, sample_weight=weights)
    Xd, wd = _dask_pair(X, weights)
    with dask.config.set(scheduler="sync"):
        fitted = GaussianMixture(**start).fit(Xd, sample_weight=wd)
        _assert_same_gmm(expected, fitted, X, Xd)
    assert sum(calls) == fitted.n_iter_  # one redo per iteration


def _assert_same_kmeans(a, b, X):
    assert a.n_iter_ == b.n_iter_
    assert b.cluster_centers_.dtype == a.cluster_centers_.dtype
    np.testing.assert_allclose(b.cluster_centers_, a.cluster_centers_, rtol=RTOL, atol=0)
    np.testing.assert_allclose(b.inertia_, a.inertia_, rtol=RTOL)
    np.testing.assert_array_equal(b.labels_.compute(), a.labels_)


@pytest.mark.parametrize("scheduler", ["sync", "threads"])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_kmeans_equals_in_memory(weighted, scheduler, dtype):
    X, weights = _blobs(dtype)
    weights = weights if weighted else None
    init = X[[0, 1, 2, 800, 1300]]  # five centres: Lloyd moves them for a while
    expected = KMeans(5, init=init, n_init=1, tol=0.0).fit(X, sample_weight=weights)
    assert expected.n_iter_ > 2
    Xd, wd = _dask_pair(X, weights)
    with dask.config.set(scheduler=scheduler):
        fitted = KMeans(5, init=init, n_init=1, tol=0.0).fit(Xd, sample_weight=wd)
    _assert_same_kmeans(expected, fitted, X)


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_kmeans_empty_cluster_relocation(weighted):
    """A centre far from every row is empty after the first step: it takes the row
    farthest from its centre, found across the blocks."""
    X, weights = _blobs()
    weights = weights if weighted else None
    init = np.vstack([X[[0, 800, 1300]], [[100.0, 100.0, 100.0]]])
    expected = KMeans(4, init=init, n_init=1).fit(X, sample_weight=weights)
    Xd, wd = _dask_pair(X, weights)
    with dask.config.set(scheduler="sync"):
        fitted = KMeans(4, init=init, n_init=1).fit(Xd, sample_weight=wd)
    _assert_same_kmeans(expected, fitted, X)
    assert np.bincount(fitted.labels_.compute(), minlength=4).all()


def test_predictions_are_lazy_and_equal(dtype):
    X, weights = _blobs(dtype)
    gmm = GaussianMixture(3, random_state=0).fit(X)
    km = KMeans(3, random_state=0).fit(X)
    Xd, wd = _dask_pair(X, weights)
    with dask.config.set(scheduler="sync"):
        for model, name in [(gmm, "predict"), (gmm, "predict_proba"), (gmm, "score_samples"),
                            (km, "predict"), (km, "transform")]:
            lazy = getattr(model, name)(Xd)
            assert isinstance(lazy, da.Array), name
            assert lazy.chunks[0] == Xd.chunks[0]
            np.testing.assert_allclose(lazy.compute(), getattr(model, name)(X), rtol=1e-12,
                                       err_msg=name)
        np.testing.assert_array_equal(gmm.fit_predict(Xd).compute(), gmm.predict(X))
        for name in ("bic", "aic"):
            assert isinstance(getattr(gmm, name)(Xd), float)
            np.testing.assert_allclose(getattr(gmm, name)(Xd), getattr(gmm, name)(X),
                                       rtol=1e-12)
        np.testing.assert_allclose(gmm.score(Xd, sample_weight=wd),
                                   gmm.score(X, sample_weight=weights), rtol=1e-12)
        np.testing.assert_allclose(km.score(Xd, sample_weight=wd),
                                   km.score(X, sample_weight=weights), rtol=1e-12)


class _NoGather(dask.callbacks.Callback):
    """Fails a local computation whose any task returns an array of X's length or more."""

    def __init__(self, n_samples):
        super().__init__()
        self.n_samples = n_samples
        self.largest = 0

    def _posttask(self, key, result, dsk, state, worker_id):
        if isinstance(result, np.ndarray) and result.ndim:
            self.largest = max(self.largest, result.shape[0])


@pytest.mark.parametrize("estimator", ["gmm", "kmeans"])
def test_fit_never_gathers_x(monkeypatch, estimator):
    """The default start draws a sample; no task, nor the client, holds X whole."""
    monkeypatch.setattr(_dask, "SAMPLE_ROWS", 200)

    def refuse(*args, **kwargs):
        raise AssertionError("the dask array was converted to numpy")

    monkeypatch.setattr(da.Array, "__array__", refuse)
    X, weights = _blobs()
    Xd, wd = _dask_pair(X, weights)
    model = (GaussianMixture(3, covariance_type="diag", random_state=0) if estimator == "gmm"
             else KMeans(3, random_state=0))
    watch = _NoGather(len(X))
    with dask.config.set(scheduler="sync"), watch:
        model.fit(Xd, sample_weight=wd)
    assert 0 < watch.largest <= max(CHUNKS)  # blocks, never the whole
    means = model.means_ if estimator == "gmm" else model.cluster_centers_
    # The sampled start still finds the three groups.
    found = np.sort(np.round(means[:, 0]))
    np.testing.assert_allclose(found, [0, 0, 6], atol=0.3)


def test_sampled_start_is_reproducible_and_scheduler_free(monkeypatch):
    monkeypatch.setattr(_dask, "SAMPLE_ROWS", 300)
    X, weights = _blobs()
    Xd, wd = _dask_pair(X, weights)
    fits = []
    for scheduler in ("sync", "threads", "threads"):
        with dask.config.set(scheduler=scheduler):
            fits.append(GaussianMixture(3, random_state=7, n_init=2).fit(Xd, sample_weight=wd))
    for other in fits[1:]:
        np.testing.assert_array_equal(other.means_, fits[0].means_)
        assert other.n_iter_ == fits[0].n_iter_


def test_sample_rows_are_weighted():
    """Rows are drawn by weight: rows of weight 0 never, heavy rows more often."""
    X = np.arange(20_000, dtype=np.float64).reshape(-1, 1)
    weights = np.zeros(len(X))
    weights[:10_000] = 1.0
    weights[:1000] = 9.0
    Xd, wd = da.from_array(X, chunks=3000), da.from_array(weights, chunks=3000)
    rows, rows_weight = _dask.sample_rows(Xd, wd, 1000, np.random.RandomState(0))
    assert rows_weight is None and len(rows) == 1000
    assert rows.max() < 10_000  # weight 0: never drawn
    heavy = np.mean(rows[:, 0] < 1000)  # half the total weight
    assert 0.4 < heavy < 0.6
    assert len(np.unique(rows)) == len(rows)  # without replacement
    # At most as many positive-weight rows as asked for: all of them, with their weights.
    rows, rows_weight = _dask.sample_rows(Xd, wd, 10_000, np.random.RandomState(0))
    np.testing.assert_array_equal(rows, X[:10_000])
    np.testing.assert_array_equal(rows_weight, weights[:10_000])


@pytest.mark.parametrize("sort_components", ["weights", "means"])
def test_kmeans_sort_components(sort_components):
    X, weights = _blobs()
    init = X[[0, 800, 1300]]
    kwargs = dict(init=init, n_init=1, sort_components=sort_components)
    expected = KMeans(3, **kwargs).fit(X, sample_weight=weights)
    Xd, wd = _dask_pair(X, weights)
    with dask.config.set(scheduler="sync"):
        fitted = KMeans(3, **kwargs).fit(Xd, sample_weight=wd)
    _assert_same_kmeans(expected, fitted, X)


# -- dask DataFrames (a Parquet table) ---------------------------------------------------

def _parquet_frame(tmp_path, X, columns=None):
    """X written by pandas to a Parquet file of three row groups, read back lazily by
    dask.dataframe (partitions of unknown length until counted)."""
    dd = pytest.importorskip("dask.dataframe")
    pd = pytest.importorskip("pandas")
    columns = columns or [f"x{j}" for j in range(X.shape[1])]
    path = tmp_path / "X.parquet"
    pd.DataFrame(X, columns=columns).to_parquet(path, row_group_size=600)
    frame = dd.read_parquet(path, split_row_groups=True)
    assert frame.npartitions == 3
    return frame


@pytest.mark.parametrize("covariance_type", ["full", "spherical"])
def test_parquet_dataframe_equals_in_memory(tmp_path, covariance_type, dtype):
    X, _ = _blobs(dtype)
    frame = _parquet_frame(tmp_path, X)
    start = _gmm_start(X, covariance_type)
    expected = GaussianMixture(**start).fit(X)
    with dask.config.set(scheduler="sync"):
        fitted = GaussianMixture(**start).fit(frame)
        _assert_same_gmm(expected, fitted, X, frame)
        assert list(fitted.feature_names_in_) == ["x0", "x1", "x2"]
        # In memory, score is numpy's float32 mean in float32 (as scikit-learn's); the
        # blocks' sum is float64: they agree to float32's rounding of the mean.
        np.testing.assert_allclose(fitted.score(frame), expected.score(X),
                                   rtol=1e-12 if dtype == np.float64 else 1e-6)
        np.testing.assert_allclose(fitted.predict_proba(frame).compute(),
                                   expected.predict_proba(X), rtol=1e-10, atol=1e-300)
        init = X[[0, 1, 2, 800, 1300]]
        km = KMeans(5, init=init, n_init=1).fit(frame)
        _assert_same_kmeans(KMeans(5, init=init, n_init=1).fit(X), km, X)
        np.testing.assert_array_equal(km.predict(frame).compute(), km.labels_.compute())


def test_dataframe_bad_columns(tmp_path):
    pd = pytest.importorskip("pandas")
    dd = pytest.importorskip("dask.dataframe")
    X, _ = _blobs()
    frame = dd.from_pandas(pd.DataFrame(X, columns=["a", "b", "c"]).assign(
        name="x", when=pd.Timestamp("2026-01-01")), npartitions=3)
    with pytest.raises(ValueError, match=r"dask DataFrame with non-numeric column\(s\) "
                                         r"'name' \(.*\), 'when' \(datetime64"):
        GaussianMixture(2).fit(frame)
    with pytest.raises(ValueError, match=r"non-numeric column\(s\) 'name'"):
        KMeans(2).fit(frame)
    numeric = frame[["a", "b", "c"]]
    with dask.config.set(scheduler="sync"):
        model = KMeans(2, random_state=0).fit(numeric)
        with pytest.raises(ValueError, match=r"feature names should match.*\n.*\['a', 'b', "
                                             r"'c'\]\nGot: \['a', 'c', 'b'\]"):
            model.predict(numeric[["a", "c", "b"]])


# -- bad input --------------------------------------------------------------------------

def test_unknown_chunk_sizes():
    X, _ = _blobs()
    Xd = da.from_array(X, chunks=500)
    unknown = Xd[Xd[:, 0] > -100]
    with pytest.raises(ValueError, match=r"unknown chunk sizes.*compute_chunk_sizes"):
        GaussianMixture(2).fit(unknown)
    with pytest.raises(ValueError, match="unknown chunk sizes"):
        KMeans(2).fit(unknown)


@pytest.mark.parametrize("shape", [(100,), (10, 10, 2)])
def test_wrong_dimensions(shape):
    Xd = da.zeros(shape, chunks=5)
    with pytest.raises(ValueError, match=f"Expected a 2D dask array for X, got {len(shape)}D"):
        GaussianMixture(2).fit(Xd)
    with pytest.raises(ValueError, match="Expected a 2D dask array"):
        KMeans(2).fit(Xd)


def test_weights_chunked_unlike_x():
    X, weights = _blobs()
    Xd = da.from_array(X, chunks=500)
    wd = da.from_array(weights, chunks=400)
    with pytest.raises(ValueError, match=r"chunked like X's rows.*rechunk"):
        GaussianMixture(2).fit(Xd, sample_weight=wd)
    with pytest.raises(ValueError, match=r"chunked like X's rows"):
        KMeans(2).fit(Xd, sample_weight=wd)


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_non_finite_value_in_a_late_block(value):
    X, _ = _blobs()
    X[1234, 1] = value
    Xd = da.from_array(X, chunks=500)  # row 1234 is row 234 of block 2
    start = _gmm_start(X.astype(np.float64), "diag")
    with dask.config.set(scheduler="sync"):
        with pytest.raises(ValueError, match=r"NaN or infinity in block 2, first at row 1234"):
            GaussianMixture(**start).fit(Xd)
        with pytest.raises(ValueError, match=r"block 2, first at row 1234"):
            KMeans(3).fit(Xd)


def _holed(X, fraction=0.1, seed=3):
    """X with ``fraction`` of its cells NaN, completely at random (no row left empty)."""
    holes = np.random.default_rng(seed).random(X.shape) < fraction
    holes[holes.all(axis=1), 0] = False
    return np.where(holes, np.nan, X).astype(X.dtype)


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_missing_values_equal_in_memory(covariance_type, weighted, dtype):
    """missing_values="marginalize": each block's rows with NaN cells go through the
    same statistics as in memory (``_em.data_statistics``), summed over the blocks."""
    X, weights = _blobs(dtype)
    X = _holed(X)
    weights = weights if weighted else None
    start = dict(_gmm_start(np.nan_to_num(X), covariance_type), missing_values="marginalize")
    expected = GaussianMixture(**start).fit(X, sample_weight=weights)
    Xd, wd = _dask_pair(X, weights)
    with dask.config.set(scheduler="sync"):
        fitted = GaussianMixture(**start).fit(Xd, sample_weight=wd)
        _assert_same_gmm(expected, fitted, X, Xd)
        np.testing.assert_allclose(fitted.score_samples(Xd).compute(),
                                   expected.score_samples(X), rtol=1e-10)
        # (in memory, a float32 model's score is rounded to float32)
        assert fitted.score(Xd) == pytest.approx(expected.score(X),
                                                 rel=1e-10 if dtype == np.float64 else 1e-7)


def test_missing_values_sampled_start():
    """Without a given start the k-means start runs on the sample's complete rows; the
    fit reaches the in-memory fit's optimum on well-separated groups."""
    X = _holed(_blobs()[0], fraction=0.2)
    Xd = da.from_array(X, chunks=(CHUNKS, 3))
    with dask.config.set(scheduler="threads"):
        fitted = GaussianMixture(3, missing_values="marginalize", random_state=0).fit(Xd)
    expected = GaussianMixture(3, missing_values="marginalize", random_state=0).fit(X)
    assert fitted.converged_
    assert fitted.score(X) == pytest.approx(expected.score(X), rel=1e-6)


def test_missing_values_bad_input():
    X = _holed(_blobs()[0])
    start = dict(_gmm_start(np.nan_to_num(X), "diag"), missing_values="marginalize")
    with dask.config.set(scheduler="sync"):
        for value, message in [(np.inf, r"infinity in block 2, first at row 1234"),
                               (np.nan, r"every feature missing in block 2, at row 1234")]:
            bad = X.copy()
            bad[1234] = value
            with pytest.raises(ValueError, match=message):
                GaussianMixture(**start).fit(da.from_array(bad, chunks=500))
        bad = _blobs()[0]
        bad[:, 1] = np.nan
        with pytest.raises(ValueError, match=r"Feature\(s\) \[1\] are missing in every row"):
            GaussianMixture(**start).fit(da.from_array(bad, chunks=500))
        with pytest.raises(ValueError, match="missing_values='marginalize'"):
            GaussianMixture(3).fit(da.from_array(X, chunks=500))


def test_blocks_inconsistent_with_their_chunks():
    X, _ = _blobs()
    Xd = da.from_array(X, chunks=500)
    # A map_blocks that declares its blocks keep their width but drops a column in one.
    lying = Xd.map_blocks(lambda block, block_id=None: block[:, :2] if block_id[0] == 1
                          else block, dtype=X.dtype)
    with dask.config.set(scheduler="sync"):
        with pytest.raises(ValueError, match=r"Block 1 of X has shape \(500, 2\), but its "
                           r"chunks declare \(500, 3\)"):
            KMeans(3).fit(lying)


def test_empty_array():
    Xd = da.zeros((0, 3), chunks=5)
    with pytest.raises(ValueError, match=r"Found array with 0 sample\(s\)"):
        GaussianMixture(2).fit(Xd)
    with pytest.raises(ValueError, match=r"Found array with 0 sample\(s\)"):
        KMeans(2).fit(Xd)


def test_contamination_is_refused():
    Xd = da.from_array(_blobs()[0], chunks=500)
    with pytest.raises(ValueError, match="contamination is not supported on dask arrays"):
        GaussianMixture(3, contamination=0.1).fit(Xd)


def test_negative_weight_names_the_row():
    X, weights = _blobs()
    weights[1100] = -1
    Xd, wd = da.from_array(X, chunks=500), da.from_array(weights, chunks=500)
    with dask.config.set(scheduler="sync"):
        with pytest.raises(ValueError, match=r"finite and >= 0, got -1.0 at index 1100"):
            KMeans(3).fit(Xd, sample_weight=wd)


def test_import_does_not_import_dask():
    code = "import sys, gmm_fast; print('dask' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"


def test_without_dask_the_error_names_the_extra():
    code = """
import sys
sys.modules["dask"] = None
sys.modules["dask.array"] = None
from gmm_fast import GaussianMixture

class Array:
    chunks = ((2,), (2,))
    def __dask_graph__(self):
        return {}
Array.__module__ = "dask.array.core"
try:
    GaussianMixture(1).fit(Array())
except ImportError as exc:
    print(exc)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert 'pip install "gmm_fast[dask]"' in out.stdout


def test_failed_refit_leaves_the_model_unchanged(tmp_path):
    """A block that fails in the middle of a fit (its third read; the local scheduler
    reads blocks anew each iteration): the error reaches the caller, and the model
    fitted before keeps every attribute. (Before the cluster tests: with a distributed
    client X would be persisted and read once.)"""
    X, _ = _blobs()
    start = _gmm_start(X, "full")
    Xd = da.from_array(X, chunks=(CHUNKS, X.shape[1]))
    model = GaussianMixture(**dict(start, tol=1e-3)).fit(Xd)
    before = {name: np.copy(getattr(model, name))
              for name in ("weights_", "means_", "covariances_", "lower_bound_", "n_iter_")}
    reads = tmp_path / "reads"
    reads.write_text("")

    def fail_on_third_read(block, block_info=None):
        if block_info[0]["chunk-location"][0] == 2:
            with open(reads, "a") as log:
                log.write("x")
            if len(reads.read_text()) == 3:
                raise OSError("disk gone")
        return block

    broken = Xd.map_blocks(fail_on_third_read, dtype=Xd.dtype)
    with dask.config.set(scheduler="sync"), pytest.raises(OSError, match="disk gone"):
        model.set_params(tol=0.0, max_iter=20).fit(broken)
    assert len(reads.read_text()) == 3
    for name, value in before.items():
        np.testing.assert_array_equal(getattr(model, name), value)


# -- a real cluster: two spawned worker processes --------------------------------------

@pytest.fixture(scope="module")
def client():
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
        with distributed.Client(cluster) as client:
            yield client


def test_local_cluster_gaussian_mixture(client):
    X, weights = _blobs(np.float32)
    start = _gmm_start(X, "full")
    expected = GaussianMixture(**start).fit(X, sample_weight=weights)
    Xd, wd = _dask_pair(X, weights)
    fitted = GaussianMixture(**start).fit(Xd, sample_weight=wd)
    _assert_same_gmm(expected, fitted, X, Xd)
    # NaN cells: checked and marginalised on the workers
    holed = _holed(X)
    start = dict(start, missing_values="marginalize")
    expected = GaussianMixture(**start).fit(holed, sample_weight=weights)
    Xd, wd = _dask_pair(holed, weights)
    _assert_same_gmm(expected, GaussianMixture(**start).fit(Xd, sample_weight=wd), holed, Xd)
    bad = X.copy()
    bad[:, 2] = np.nan
    with pytest.raises(ValueError, match=r"Feature\(s\) \[2\] are missing in every row"):
        GaussianMixture(**start).fit(_dask_pair(bad, None)[0])


def test_local_cluster_kmeans(client):
    X, weights = _blobs()
    init = X[[0, 1, 2, 800, 1300]]
    expected = KMeans(5, init=init, n_init=1, tol=0.0).fit(X, sample_weight=weights)
    Xd, wd = _dask_pair(X, weights)
    fitted = KMeans(5, init=init, n_init=1, tol=0.0).fit(Xd, sample_weight=wd)
    _assert_same_kmeans(expected, fitted, X)


def test_local_cluster_client_never_holds_x(client, monkeypatch):
    """On the cluster, what the client gathers is statistics and samples, never X: the
    largest array it receives is far shorter than X (here, the sampled start's rows
    and the per-block vectors)."""
    import distributed

    monkeypatch.setattr(_dask, "SAMPLE_ROWS", 200)
    monkeypatch.setattr(da.Array, "__array__", lambda *a, **k: pytest.fail("X to numpy"))
    largest = []
    gather = distributed.Client.gather

    def watched(self, futures, *args, **kwargs):
        result = gather(self, futures, *args, **kwargs)
        for value in (result if isinstance(result, (list, tuple)) else [result]):
            if isinstance(value, np.ndarray) and value.ndim:
                largest.append(value.shape[0])
        return result

    monkeypatch.setattr(distributed.Client, "gather", watched)
    X, weights = _blobs()
    Xd, wd = _dask_pair(X, weights)
    GaussianMixture(3, covariance_type="diag", random_state=0).fit(Xd, sample_weight=wd)
    KMeans(3, random_state=0).fit(Xd, sample_weight=wd)
    assert largest and max(largest) < len(X) / 4  # (the sample: ~200 rows; X: 1500)


def _kill_worker_once(block, flag):
    """The block unchanged, but the first worker process to compute it dies (os._exit)."""
    import os

    import distributed

    try:
        distributed.get_worker()
    except ValueError:  # (not in a worker)
        return block
    try:
        os.close(os.open(flag, os.O_CREAT | os.O_EXCL))
    except FileExistsError:
        return block
    os._exit(1)


def test_local_cluster_worker_killed_mid_fit_same_answer(client, tmp_path):
    """A worker process dies while computing a block: Dask recomputes it on a live
    worker, and the fit gives the same answer as in memory."""
    X, weights = _blobs()
    start = _gmm_start(X, "diag")
    expected = GaussianMixture(**start).fit(X, sample_weight=weights)
    Xd, wd = _dask_pair(X, weights)
    flag = str(tmp_path / "killed")
    fragile = Xd.map_blocks(_kill_worker_once, flag, dtype=Xd.dtype)
    fitted = GaussianMixture(**start).fit(fragile, sample_weight=wd)
    assert (tmp_path / "killed").exists()  # a worker did die
    _assert_same_gmm(expected, fitted, X, fragile)



# -- select_model on the cluster ---------------------------------------------------------

def _same_selection(a, b):
    """Equal tables (every column but the timings) and the same chosen model."""
    assert len(a.rows) == len(b.rows)
    for row_a, row_b in zip(a.rows, b.rows):
        assert set(row_a) == set(row_b)
        for name in row_a:
            if name != "seconds":
                assert row_a[name] == row_b[name] or (
                    isinstance(row_a[name], float) and np.isnan(row_a[name])
                    and np.isnan(row_b[name])), (row_a, name)
    assert a.best_index == b.best_index
    for name in ("weights_", "means_", "covariances_", "precisions_cholesky_"):
        np.testing.assert_array_equal(getattr(b.best_model, name), getattr(a.best_model, name))


def _select_arguments():
    """The defaults' starts (hc + k-means) on a grid with a failing cell, two k-means
    starts per k and a refinement of the contenders; hc on a 300-row sample of 1500."""
    return dict(n_components=[1, 2, 3, 4, 1600], covariance_types=["full", "diag", "tied"],
                n_init=2, random_state=0)


def test_local_cluster_select_model_equals_serial(client, monkeypatch):
    from gmm_fast import _hc, select_model

    monkeypatch.setattr(_hc, "HC_MAX_SAMPLES", 300)  # (the hc start draws a sample)
    X, weights = _blobs()
    arguments = _select_arguments()
    serial = select_model(X, sample_weight=weights, **arguments)
    assert any(row["refined"] for row in serial.rows)
    assert {row["start"] for row in serial.rows} >= {"hc", "k-means 1/2"}
    assert [row["failed"] for row in serial.rows].count(True) == 3  # (k=1600)
    progress = []
    parallel = select_model(X, sample_weight=weights, client=client,
                            callback=lambda done, total, row: progress.append(done), **arguments)
    _same_selection(serial, parallel)
    assert progress == list(range(1, 16))
    # A dask array runs on the active client; weights as a dask array too.
    Xd, wd = _dask_pair(X, weights)
    _same_selection(serial, select_model(Xd, sample_weight=wd, **arguments))
    # A kernel thread count set by the user changes nothing.
    _same_selection(serial, select_model(X, sample_weight=weights, client=client,
                                         n_threads=2, **arguments))


def _largest_array(value, seen=None):
    """The longest first axis of any ndarray inside a gathered result."""
    if isinstance(value, np.ndarray):
        return value.shape[0] if value.ndim else 0
    if isinstance(value, (list, tuple)):
        return max([_largest_array(item) for item in value], default=0)
    if isinstance(value, dict):
        return _largest_array(list(value.values()))
    if hasattr(value, "__dict__"):
        return _largest_array(vars(value))
    return 0


def test_local_cluster_select_model_never_gathers_x(client, monkeypatch):
    """What comes back to the client is scores and fitted models: no array of X's
    length (nor the labels of the starts, which stay on the workers)."""
    import distributed

    from gmm_fast import select_model

    monkeypatch.setattr(da.Array, "__array__", lambda *a, **k: pytest.fail("X to numpy"))
    largest = []
    gather = distributed.Client.gather

    def watched(self, futures, *args, **kwargs):
        result = gather(self, futures, *args, **kwargs)
        largest.append(_largest_array(result))
        return result

    monkeypatch.setattr(distributed.Client, "gather", watched)
    X, weights = _blobs()
    Xd, wd = _dask_pair(X, weights)
    selection = select_model(Xd, [1, 2, 3], ["diag", "full"], sample_weight=wd,
                             random_state=0)
    assert selection.best_params["n_components"] == 3
    assert largest and max(largest) < 100  # (models and scores; X has 1500 rows)


def test_select_model_cluster_errors(monkeypatch):
    import distributed

    from gmm_fast import select_model

    X, _ = _blobs()

    def no_client():
        raise ValueError("No clients found")

    monkeypatch.setattr(distributed, "get_client", no_client)
    with pytest.raises(ValueError, match=r"X is a dask array: select_model runs its grid on "
                                         r"a dask.distributed cluster; start a Client"):
        select_model(da.from_array(X, chunks=500), [1, 2])
    with pytest.raises(TypeError, match="client should be a dask.distributed.Client, got str"):
        select_model(X, [1, 2], client="tcp://127.0.0.1:8786")


def test_local_cluster_select_model_dataframe_and_missing_values(client, tmp_path):
    """A Parquet table through dask.dataframe (its names reach the models), and rows
    with NaN cells fitted by their observed cells: as in memory."""
    from gmm_fast import select_model

    pd = pytest.importorskip("pandas")
    X, _ = _blobs()
    frame = _parquet_frame(tmp_path, X, columns=["a", "b", "c"])
    arguments = dict(n_components=[1, 2, 3], covariance_types=["full", "spherical"],
                     random_state=1)
    serial = select_model(pd.DataFrame(X, columns=["a", "b", "c"]), **arguments)
    parallel = select_model(frame, **arguments)
    _same_selection(serial, parallel)
    assert list(parallel.best_model.feature_names_in_) == ["a", "b", "c"]
    holes = X.copy()
    holes[np.random.default_rng(0).random(X.shape) < 0.05] = np.nan
    serial = select_model(holes, missing_values="marginalize", **arguments)
    _same_selection(serial, select_model(da.from_array(holes, chunks=500),
                                         missing_values="marginalize", **arguments))
