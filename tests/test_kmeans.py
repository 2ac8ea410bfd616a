"""gmm_fast.KMeans: parity with scikit-learn, the estimator contract, dtypes, inits, edges."""
import pickle
import re
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from conftest import make_blobs
from kmeans_reference import assert_same_fit, lloyd_step_reference, sq_distances

import gmm_fast
from gmm_fast import ConvergenceWarning, KMeans, kmeans_plusplus
from gmm_fast._kmeans import _kmeans_plusplus

sklearn_cluster = pytest.importorskip("sklearn.cluster")


@pytest.fixture
def blobs(rng):
    """1500 samples in 4 features around 5 centres, away from the origin."""
    return make_blobs(rng, 1500, 4, 5, spread=1.0, offset=10.0)




# rtol 1e-9 (float64): both libraries run the same arithmetic on the same centres
# and differ only in summation order and in the distance formula, ~1e-14 relative.
@pytest.mark.parametrize("weighted", [False, True])
# Paths (float64, AVX-512): narrow (2, 8) and (3, 40), wide direct (20, 5) and (100, 7),
# GEMM (40, 30).
@pytest.mark.parametrize("n_features,n_clusters", [(2, 8), (20, 5), (100, 7), (3, 40), (40, 30)])
def test_parity_with_sklearn_same_init(rng, weighted, n_features, n_clusters):
    X = make_blobs(rng, 2000, n_features, 6, spread=1.5, offset=5.0)
    sample_weight = rng.uniform(0.1, 3.0, len(X)) if weighted else None
    init = X[rng.choice(len(X), n_clusters, replace=False)]
    ours = KMeans(n_clusters, init=init, n_init=1).fit(X, sample_weight=sample_weight)
    theirs = sklearn_cluster.KMeans(n_clusters, init=init, n_init=1, algorithm="lloyd").fit(
        X, sample_weight=sample_weight)
    assert ours.n_iter_ > 2  # several Lloyd steps were compared, not just the first
    assert_same_fit(ours, theirs)


def test_kmeans_plusplus_draws_follow_the_weights():
    """k-means++'s law: the first centre drawn in proportion to w, the next (one trial)
    to w D^2. (gmm_fast draws in a canonical row order so that weights act as repeated
    rows in any order: not scikit-learn's draws for the same random_state, its law.)"""
    X = np.array([[0.0], [1.0], [3.0], [10.0]])
    w = np.array([1.0, 2.0, 3.0, 4.0])
    n = 4000
    first = np.bincount([kmeans_plusplus(X, 1, sample_weight=w, random_state=seed)[1][0]
                         for seed in range(n)], minlength=4) / n
    np.testing.assert_allclose(first, w / w.sum(), atol=4 * np.sqrt(0.25 / n))
    second = np.zeros((4, 4))
    for seed in range(n):
        indices = kmeans_plusplus(X, 2, sample_weight=w, random_state=seed,
                                  n_local_trials=1)[1]
        second[indices[0], indices[1]] += 1
    for i in range(4):  # given the first centre, the second in proportion to w D^2
        p = w * (X[:, 0] - X[i, 0]) ** 2
        np.testing.assert_allclose(second[i] / second[i].sum(), p / p.sum(),
                                   atol=4 * np.sqrt(0.25 / second[i].sum()))


def test_iris_optimum():
    from sklearn.datasets import load_iris
    X = load_iris().data
    km = KMeans(3, n_init=10, random_state=0).fit(X)
    np.testing.assert_allclose(km.inertia_, 78.851441426146, rtol=1e-9)


def test_one_iteration_is_one_reference_step(blobs, rng):
    """max_iter=1 from a given init: centres are one reference step, labels the next assignment."""
    init = blobs[rng.choice(len(blobs), 5, replace=False)]
    km = KMeans(5, init=init, max_iter=1).fit(blobs)
    centers = lloyd_step_reference(blobs, np.ones(len(blobs)), init)[4]
    np.testing.assert_allclose(km.cluster_centers_, centers, rtol=1e-12)
    labels, _, _, inertia, _ = lloyd_step_reference(blobs, np.ones(len(blobs)), centers)
    np.testing.assert_array_equal(km.labels_, labels)
    np.testing.assert_allclose(km.inertia_, inertia, rtol=1e-12)


def test_fit_predict_equals_fit_then_predict(blobs):
    km = KMeans(5, random_state=0)
    np.testing.assert_array_equal(km.fit(blobs).predict(blobs), KMeans(5, random_state=0)
                                  .fit_predict(blobs))
    np.testing.assert_array_equal(km.predict(blobs), km.labels_)


def test_transform_and_score_match_numpy(blobs, rng):
    km = KMeans(5, random_state=0).fit(blobs)
    X_new = make_blobs(rng, 300, 4, 5, offset=10.0)
    distances = np.sqrt(sq_distances(X_new, km.cluster_centers_))
    # transform uses the |x|^2 - 2 x.c + |c|^2 form about the centres' mean: its
    # rounding is ~eps * (|x - mean|^2 + |c - mean|^2), relative to distances ~1-10.
    np.testing.assert_allclose(km.transform(X_new), distances, rtol=1e-10, atol=1e-6)
    np.testing.assert_allclose(km.fit_transform(blobs), km.transform(blobs), rtol=1e-12)
    sample_weight = rng.uniform(0, 2, len(X_new))
    expected = -sample_weight @ (distances.min(axis=1) ** 2)
    np.testing.assert_allclose(km.score(X_new, sample_weight=sample_weight), expected,
                               rtol=1e-12)
    np.testing.assert_allclose(km.score(blobs), -km.inertia_, rtol=1e-12)
    assert km.get_feature_names_out().tolist() == [f"kmeans{i}" for i in range(5)]


def test_pickle_roundtrip(blobs):
    km = KMeans(5, random_state=0).fit(blobs)
    restored = pickle.loads(pickle.dumps(km))
    np.testing.assert_array_equal(restored.cluster_centers_, km.cluster_centers_)
    np.testing.assert_array_equal(restored.predict(blobs), km.labels_)
    assert restored.get_params() == km.get_params()


def test_memory_layouts_agree(blobs):
    """C, Fortran and strided views give bitwise the same fit (the data is the same)."""
    wide = np.zeros((len(blobs), 2 * blobs.shape[1]))
    wide[:, ::2] = blobs
    fits = [KMeans(5, random_state=1).fit(X) for X in
            (blobs, np.asfortranarray(blobs), wide[:, ::2])]
    for km in fits[1:]:
        np.testing.assert_array_equal(km.cluster_centers_, fits[0].cluster_centers_)
        np.testing.assert_array_equal(km.labels_, fits[0].labels_)
        assert km.inertia_ == fits[0].inertia_
    np.testing.assert_array_equal(fits[0].predict(np.asfortranarray(blobs)), fits[0].labels_)


@pytest.mark.parametrize("in_dtype,out_dtype", [
    (np.float32, np.float32), (np.float16, np.float32), (np.float64, np.float64),
    (np.int64, np.float64), (np.int32, np.float64), (np.uint8, np.float64)])
def test_output_dtype(rng, in_dtype, out_dtype):
    X = rng.integers(0, 50, size=(300, 3)).astype(in_dtype)
    km = KMeans(4, random_state=0).fit(X)
    assert km.cluster_centers_.dtype == out_dtype
    assert km.transform(X).dtype == out_dtype
    assert km.fit_transform(X).dtype == out_dtype
    assert km.labels_.shape == (300,) and np.issubdtype(km.labels_.dtype, np.integer)
    assert isinstance(km.inertia_, float)


def test_float32_close_to_float64(blobs):
    ours32 = KMeans(5, random_state=0).fit(blobs.astype(np.float32))
    ours64 = KMeans(5, random_state=0).fit(blobs)
    # Same seeds and well separated blobs: same partition, centres to float32 rounding.
    np.testing.assert_array_equal(ours32.labels_, ours64.labels_)
    np.testing.assert_allclose(ours32.cluster_centers_, ours64.cluster_centers_, rtol=1e-5)
    np.testing.assert_allclose(ours32.inertia_, ours64.inertia_, rtol=1e-5)



def test_float32_centres_of_large_far_clusters_are_exact_means(rng):
    """float32 in, float64 sums: each centre is its cluster's exact mean to float32 rounding.

    Two clusters of 200 000 points around 1000 and 1100. A float32 running sum reaches
    2e8, where float32 values are 16 apart, so float32 accumulation misses the mean by
    more than the one float32 spacing at 1100 (1.2e-4) allowed here: on this data
    oneDAL's float32 KMeans is 1.6 off, scikit-learn's 3.5e-4 (measured).
    """
    half = 200_000
    X = np.empty((2 * half, 2), dtype=np.float32)
    X[:half] = 1000 + rng.standard_normal((half, 2))
    X[half:] = 1100 + rng.standard_normal((half, 2))
    init = np.array([[1000, 1000], [1100, 1100]], dtype=np.float32)
    km = KMeans(2, init=init, n_init=1).fit(X)
    exact = np.array([X[:half].mean(axis=0, dtype=np.float64),
                      X[half:].mean(axis=0, dtype=np.float64)])
    np.testing.assert_array_equal(km.labels_, np.repeat([0, 1], half))
    assert km.cluster_centers_.dtype == np.float32
    np.testing.assert_allclose(km.cluster_centers_, exact, rtol=0,
                               atol=np.spacing(np.float32(1100)))

def test_dataframe_feature_names(blobs):
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(blobs, columns=["a", "b", "c", "d"])
    km = KMeans(5, random_state=0).fit(frame)
    assert km.feature_names_in_.tolist() == ["a", "b", "c", "d"]
    assert km.n_features_in_ == 4
    np.testing.assert_array_equal(km.predict(frame), km.labels_)
    with pytest.warns(UserWarning, match="does not have valid feature names"):
        km.predict(blobs)
    with pytest.raises(ValueError, match="feature names should match"):
        km.predict(frame[["b", "a", "c", "d"]])
    assert not hasattr(KMeans(5, random_state=0).fit(frame).fit(blobs), "feature_names_in_")


def test_init_array_and_callable_agree(blobs, rng):
    init = blobs[rng.choice(len(blobs), 5, replace=False)]
    calls = []

    def init_callable(X, n_clusters, random_state):
        calls.append((X.shape, n_clusters, type(random_state)))
        return init

    from_array = KMeans(5, init=init).fit(blobs)
    from_callable = KMeans(5, init=init_callable, n_init=1).fit(blobs)
    assert calls == [(blobs.shape, 5, np.random.RandomState)]
    np.testing.assert_array_equal(from_array.cluster_centers_, from_callable.cluster_centers_)
    with pytest.warns(RuntimeWarning, match="Explicit initial center position passed: "
                      "performing only one init in KMeans instead of n_init=3."):
        KMeans(5, init=init, n_init=3).fit(blobs)


def test_n_init_auto(blobs):
    calls = []

    def init_callable(X, n_clusters, random_state):
        calls.append(1)
        return X[random_state.choice(len(X), n_clusters, replace=False)]

    KMeans(5, init=init_callable, random_state=0).fit(blobs)
    assert len(calls) == 10  # "auto" is 10 for a callable
    calls.clear()
    KMeans(5, init=init_callable, n_init=3, random_state=0).fit(blobs)
    assert len(calls) == 3
    for init, runs in (("k-means++", 1), ("random", 10)):
        auto = KMeans(5, init=init, random_state=3).fit(blobs)
        explicit = KMeans(5, init=init, n_init=runs, random_state=3).fit(blobs)
        np.testing.assert_array_equal(auto.cluster_centers_, explicit.cluster_centers_)


def test_n_init_keeps_lowest_inertia(blobs):
    runs = [KMeans(5, init="random", n_init=1, random_state=rs).fit(blobs).inertia_
            for rs in np.random.RandomState(11).randint(np.iinfo(np.int32).max, size=8)]
    best = KMeans(5, init="random", n_init=8, random_state=np.random.RandomState(11))
    # Not the same draws as above (one RandomState is shared by the runs): just optimality.
    assert best.fit(blobs).inertia_ <= np.median(runs) * (1 + 1e-12)


@pytest.mark.parametrize("weighted", [False, True])
def test_kmeans_plusplus_exact_ranking_changes_nothing_off_ties(rng, monkeypatch, weighted):
    """Candidates ranked by their correctly rounded exact potentials (the path taken for
    near ties) pick what the kernel's float sums pick when they are far apart."""
    from gmm_fast import _draws

    X = make_blobs(rng, 3000, 64, 12, spread=2.0, offset=5.0)
    w = rng.integers(1, 4, len(X)).astype(float) if weighted else None
    usual = kmeans_plusplus(X, 12, sample_weight=w, random_state=0)[1]
    monkeypatch.setattr(_draws, "exact_order", lambda potentials, n_terms: False)
    # (the rounds in Python: the C rounds test for near ties themselves)
    exact = _kmeans_plusplus(X, 12, w, np.random.RandomState(0), compiled=False)[1]
    np.testing.assert_array_equal(usual, exact)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n_features", [2, 64])
@pytest.mark.parametrize("weights", [None, "integer"])
@pytest.mark.parametrize("duplicated", [False, True])
def test_kmeans_plusplus_rounds_in_c_match_python(rng, cpu_level, parallel_passes, dtype,
                                                  n_features, weights, duplicated):
    """The seeding rounds in C (``_lloyd.seed_rounds``) choose bitwise the centres the
    rounds in Python choose, and use the same uniforms, at every CPU level, on two
    threads; with kept distances (d=64) and without, and on data of few distinct rows,
    where identical candidates tie and the C rounds hand the round back for exact sums."""
    X = make_blobs(rng, 2000, n_features, 6, offset=5.0).astype(dtype)
    if duplicated:
        X = X[rng.integers(0, 12, len(X))]
    w = None if weights is None else rng.integers(0, 4, len(X)).astype(dtype)  # (zeros too)
    generators = [np.random.RandomState(5), np.random.RandomState(5)]
    in_c, in_python = (_kmeans_plusplus(X, 10, w, generator, n_threads=2, compiled=compiled)
                       for generator, compiled in zip(generators, (True, False)))
    np.testing.assert_array_equal(in_c[1], in_python[1])
    np.testing.assert_array_equal(in_c[0], in_python[0])
    assert generators[0].uniform() == generators[1].uniform()
    if w is not None:
        assert np.all(w[in_c[1]] > 0)


def test_kmeans_plusplus_never_picks_zero_weight(blobs, rng):
    sample_weight = rng.uniform(0.5, 1.5, len(blobs))
    zero = rng.choice(len(blobs), len(blobs) // 2, replace=False)
    sample_weight[zero] = 0
    sample_weight[-1] = 0  # the last row is where an overshooting draw would land
    for seed in range(20):
        _, indices = kmeans_plusplus(blobs, 8, sample_weight=sample_weight, random_state=seed)
        assert np.all(sample_weight[indices] > 0)
        assert len(set(indices.tolist())) == 8


def test_random_init_never_picks_zero_weight(blobs, rng):
    sample_weight = np.zeros(len(blobs))
    keep = np.sort(rng.choice(len(blobs), 50, replace=False))
    sample_weight[keep] = 1.0
    for seed in range(10):
        km = KMeans(5, init="random", n_init=1, max_iter=1, random_state=seed)
        centers = km._init_centers(blobs, "random", 5, sample_weight,
                                   np.random.RandomState(seed), 1)
        assert all((blobs[keep] == center).all(axis=1).any() for center in centers)


def test_empty_cluster_relocated_like_sklearn():
    """A centre far from all data gets no sample in the first step and must be relocated."""
    rng = np.random.default_rng(3)
    X = np.vstack([rng.normal(0, 1, (200, 2)), rng.normal(8, 1, (200, 2))])
    init = np.array([[0.0, 0.0], [8.0, 8.0], [100.0, -100.0]])
    ours = KMeans(3, init=init).fit(X)
    theirs = sklearn_cluster.KMeans(3, init=init, n_init=1).fit(X)
    assert np.bincount(ours.labels_, minlength=3).min() > 0
    assert np.all(np.abs(ours.cluster_centers_) < 20)
    assert_same_fit(ours, theirs)


def test_fewer_distinct_points_than_clusters():
    X = np.repeat([[0.0, 0.0], [1.0, 1.0], [5.0, 5.0]], 10, axis=0)
    with pytest.warns(ConvergenceWarning, match=r"distinct clusters \(3\).*n_clusters \(4\)"):
        km = KMeans(4, random_state=0).fit(X)
    assert km.inertia_ == 0.0
    assert np.isfinite(km.cluster_centers_).all()
    # A centre left empty moves onto a sample, as scikit-learn's does, even when every
    # sample sits on its centre (it kept its stale place far from the data).
    init = np.array([[0.0, 0.0], [1.0, 1.0], [5.0, 5.0], [100.0, 100.0]])
    with pytest.warns(ConvergenceWarning, match="distinct clusters"):
        km = KMeans(4, init=init).fit(X)
    assert km.inertia_ == 0.0
    assert all((X == center).all(axis=1).any() for center in km.cluster_centers_)


def test_max_iter_is_reported_by_converged_not_warned(blobs):
    """As scikit-learn's KMeans: stopping at max_iter is no warning (code run with -W
    error must not break); ``converged_`` says it."""
    from sklearn.cluster import KMeans as SklearnKMeans
    from sklearn.exceptions import ConvergenceWarning as SklearnConvergenceWarning
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        km = KMeans(5, init="random", n_init=1, max_iter=2, tol=0, random_state=0).fit(blobs)
        SklearnKMeans(5, init="random", n_init=1, max_iter=2, tol=0, random_state=0).fit(blobs)
    assert km.n_iter_ == 2 and not km.converged_
    # Code written for sklearn filters sklearn's class; ours is a subclass of it here.
    X = np.repeat(blobs[:3], 10, axis=0)
    with pytest.warns(ConvergenceWarning, match="distinct clusters") as record:
        KMeans(4, n_init=1, random_state=0).fit(X)
    assert issubclass(record[0].category, SklearnConvergenceWarning)
    converged = KMeans(5, random_state=0).fit(blobs)
    assert converged.converged_ and converged.n_iter_ < 300


def test_integer_weights_equal_repeated_rows(blobs, rng):
    sample_weight = rng.integers(0, 4, len(blobs))
    init = blobs[rng.choice(np.flatnonzero(sample_weight), 5, replace=False)]
    weighted = KMeans(5, init=init).fit(blobs, sample_weight=sample_weight)
    repeated_rows = np.repeat(blobs, sample_weight, axis=0)
    repeated = KMeans(5, init=init).fit(repeated_rows)
    # Same sums in another order: centres and inertia to summation rounding.
    np.testing.assert_allclose(weighted.cluster_centers_, repeated.cluster_centers_, rtol=1e-12)
    np.testing.assert_allclose(weighted.inertia_, repeated.inertia_, rtol=1e-12)
    np.testing.assert_array_equal(np.repeat(weighted.labels_, sample_weight), repeated.labels_)
    assert weighted.n_iter_ == repeated.n_iter_


def test_inputs_not_modified(blobs, rng):
    X = blobs.copy()
    sample_weight = rng.uniform(0.5, 2, len(X))
    weights = sample_weight.copy()
    KMeans(5, random_state=0, copy_x=False).fit(X, sample_weight=sample_weight)
    np.testing.assert_array_equal(X, blobs)
    np.testing.assert_array_equal(sample_weight, weights)


def test_scalar_and_unit_weights(blobs):
    plain = KMeans(5, random_state=0).fit(blobs)
    unit = KMeans(5, random_state=0).fit(blobs, sample_weight=np.ones(len(blobs)))
    scaled = KMeans(5, random_state=0).fit(blobs, sample_weight=2.0)
    np.testing.assert_array_equal(plain.cluster_centers_, unit.cluster_centers_)
    np.testing.assert_allclose(scaled.inertia_, 2 * plain.inertia_, rtol=1e-12)


def test_verbose_prints(blobs, capsys):
    KMeans(3, n_init=1, verbose=1, random_state=0).fit(blobs)
    out = capsys.readouterr().out
    assert "Initialization complete" in out and "Iteration 1, inertia" in out


@pytest.mark.parametrize("tol,last", [
    (0.0, r"Converged at iteration \d+: strict convergence\."),
    (10.0, r"Converged at iteration \d+: center shift \S+ within tolerance \S+\."),
])
def test_verbose_says_how_it_converged(blobs, capsys, tol, last):
    """scikit-learn's last line: strict convergence (labels unchanged) or the shift."""
    km = KMeans(3, n_init=1, verbose=1, random_state=0, tol=tol).fit(blobs)
    lines = capsys.readouterr().out.strip().splitlines()
    assert re.fullmatch(last, lines[-1]), lines[-1]
    assert lines[-1].startswith(f"Converged at iteration {km.n_iter_}:")


def test_duplicates_more_clusters_than_distinct_rows():
    """A cluster left empty is not given a row already on its centre (that would only
    empty another): the run stops after one iteration, with scikit-learn's warning."""
    X = np.array([[0, 0], [1, 1], [1, 1], [1, 0], [0, 1]], dtype=float)
    with pytest.warns(ConvergenceWarning, match=r"Number of distinct clusters \(4\) found "
                      r"smaller than n_clusters \(5\)"):
        km = KMeans(5, init=X).fit(X)
    assert km.n_iter_ == 1 and km.converged_
    np.testing.assert_array_equal(km.cluster_centers_, X)


def test_kmeans_plusplus_checks_x_squared_norms_length(blobs):
    kmeans_plusplus(blobs, 3, x_squared_norms=np.ones(len(blobs)), random_state=0)
    with pytest.raises(ValueError, match=r"The length of x_squared_norms 3 should be equal "
                       rf"to the length of n_samples {len(blobs)}\."):
        kmeans_plusplus(blobs, 3, x_squared_norms=np.ones(3))


def test_n_threads_none_follows_threadpoolctl(blobs):
    from threadpoolctl import threadpool_limits
    from gmm_fast._threads import effective_n_threads
    with threadpool_limits(limits=1, user_api="openmp"):
        assert effective_n_threads(None) == 1
        limited = KMeans(5, random_state=0).fit(blobs)
    free = KMeans(5, random_state=0, n_threads=2).fit(blobs)
    np.testing.assert_array_equal(limited.cluster_centers_, free.cluster_centers_)


def test_repr_and_params():
    km = KMeans(4, init="random", n_threads=2)
    assert repr(km) == "KMeans(init='random', n_clusters=4, n_threads=2)"
    assert km.set_params(n_clusters=6).get_params()["n_clusters"] == 6
    with pytest.raises(ValueError, match="Invalid parameter 'n_cluster'"):
        km.set_params(n_cluster=3)


def test_concurrent_fit_and_predict(blobs):
    """Python threads sharing X and a fitted model get the sequential answers."""
    model = KMeans(5, random_state=0, n_threads=2).fit(blobs)
    expected_labels = model.predict(blobs)
    expected_centers = KMeans(5, random_state=0, n_threads=2).fit(blobs).cluster_centers_
    barrier = threading.Barrier(4)

    def work(i):
        barrier.wait()
        if i % 2:
            return "predict", model.predict(blobs)
        return "fit", KMeans(5, random_state=0, n_threads=2).fit(blobs).cluster_centers_

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(work, range(12)))
    for kind, value in results:
        np.testing.assert_array_equal(value, expected_labels if kind == "predict"
                                      else expected_centers)


def test_public_names():
    assert set(gmm_fast.__all__) >= {"KMeans", "kmeans_plusplus", "ConvergenceWarning",
                                     "NotFittedError"}


@pytest.mark.parametrize("init", ["k-means++", "random", "array"])
def test_no_weights_equals_unit_weights(rng, init):
    """None (unit weights inside the kernels) and explicit ones give the same fit, bitwise."""
    X = make_blobs(rng, 3000, 5, 4)
    if init == "array":
        init = X[:4].copy()
    fits = [KMeans(4, init=init, n_init=2 if isinstance(init, str) else 1, random_state=1)
            .fit(X, sample_weight=w) for w in (None, np.ones(len(X)))]
    np.testing.assert_array_equal(fits[0].cluster_centers_, fits[1].cluster_centers_)
    np.testing.assert_array_equal(fits[0].labels_, fits[1].labels_)
    assert fits[0].inertia_ == fits[1].inertia_ and fits[0].n_iter_ == fits[1].n_iter_
    assert fits[0].score(X) == fits[1].score(X, sample_weight=np.ones(len(X)))


@pytest.mark.parametrize("weighted", [False, True])
def test_kmeans_plusplus_draws_match_whole_cumsum(rng, weighted):
    """The stepped search finds the rows a whole cumulative sum of the quantised
    ``w * rint(D / q)`` in the given order gives (side right), across step boundaries
    (2**17 rows each) and for draws at and past the total (the last row of positive mass)."""
    from gmm_fast import _draws

    values = rng.exponential(size=300_001)
    values[rng.random(len(values)) < 0.3] = 0.0  # zero distances: flat runs of the sum
    values[-5:] = 0.0
    weight = rng.integers(0, 3, len(values)).astype(float) if weighted else None
    order = rng.permutation(len(values))
    q = _draws.quantum(values, weight)
    units = (np.rint(values / q) * (1.0 if weight is None else weight))[order]
    whole = np.cumsum(units.astype(np.int64))
    ordered_weight = None if weight is None else weight[order]
    assert whole[-1] == _draws.quantised_total(values[order], ordered_weight, q) < 2**62
    draws = np.concatenate([rng.uniform(size=50) * whole[-1], whole[[0, 131071, 131072]],
                            [whole[-1], whole[-1] * 2]])
    expected = np.minimum(np.searchsorted(whole, draws, side="right"),
                          np.flatnonzero(units > 0)[-1])
    np.testing.assert_array_equal(_draws.search(values[order], ordered_weight, q, draws),
                                  expected)

@pytest.mark.parametrize("weighted", [False, True])
def test_value_draws_one_pass_equals_numpy_passes(rng, weighted):
    """The C passes of integer-weight draws (``_draws_kernel``: values in row order, the
    canonical order as indices) give the numpy passes' q, total and rows bit for bit,
    across numpy's steps, for targets at and past the total, and with every value 0; for
    tiny values too, whose q's reciprocal overflows (the kernel then divides)."""
    from gmm_fast import _draws, _draws_kernel

    n = 300_001
    values = rng.exponential(size=n) * 1e3
    values[rng.random(n) < 0.3] = 0.0
    weight = rng.integers(0, 3, n).astype(float) if weighted else None
    order = rng.permutation(n)
    ordered_weight = None if weight is None else weight[order]
    draw = _draws.ValueDraws(weight, order)
    assert draw.exact
    for case in (values, np.zeros(n), values * 1e-300, values * 1e300):
        q = _draws.quantum(case[order], ordered_weight)
        total = _draws.quantised_total(case[order], ordered_weight, q)
        assert _draws_kernel.quantised_total(case, weight, q) == total
        targets = np.concatenate([np.random.RandomState(5).uniform(size=20) * total,
                                  [0.0, total, 2.0 * total + 1]])
        np.testing.assert_array_equal(
            _draws_kernel.search(case, order, weight, q, targets),
            _draws.search(case[order], ordered_weight, q, targets))
        expected = order[_draws.search(case[order], ordered_weight, q, targets[:20])]
        np.testing.assert_array_equal(draw(case, 20, np.random.RandomState(5)), expected)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_transform_exact_for_tight_groups_far_apart(dtype):
    """Distances to the centres for tight groups 1e3 apart: the expansion |x|^2 - 2x.c +
    |c|^2 cancels there (float32 gave 0 for a distance of 0.005); the distances must match
    the differences themselves, computed in float64 from the same values."""
    rng = np.random.default_rng(50)
    X = np.vstack([0.01 * rng.random((50, 2)), 1e3 + 0.01 * rng.random((50, 2)),
                   [-1e3, 5e2] + 0.01 * rng.random((50, 2))]).astype(dtype)
    km = KMeans(3, init=X[[0, 50, 100]], n_init=1).fit(X)
    centers = km.cluster_centers_.astype(np.float64)
    exact = np.sqrt(((X.astype(np.float64)[:, None, :] - centers[None]) ** 2).sum(axis=2))
    rtol = 1e-6 if dtype == np.float32 else 1e-10
    for got in (km.transform(X), KMeans(3, init=X[[0, 50, 100]], n_init=1).fit_transform(X)):
        assert got.dtype == dtype
        np.testing.assert_allclose(got, exact, rtol=rtol)


def test_predict_equals_labels_on_ties():
    """A sample equally far from two centres gets the same label from predict as in
    labels_ (fit's final assignment is computed as predict's; they used to differ in
    rounding, here 2 between centres 1 and 3)."""
    X = np.array([[0.0], [4.0], [0.0], [0.0], [0.0], [1.0], [2.0]])
    km = KMeans(3, init=[[0.0], [2.0], [1.0]], n_init=1).fit(X)
    np.testing.assert_array_equal(km.predict(X), km.labels_)
