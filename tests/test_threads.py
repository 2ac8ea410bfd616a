"""The installed package really runs in parallel, and OMP_NUM_THREADS and threadpoolctl steer it.

Each check runs in a fresh interpreter, because the OpenMP runtime reads ``OMP_NUM_THREADS``
once, when it starts, and keeps its worker threads for the life of the process. The child
prints one JSON line; the parent asserts on it.
"""
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import gmm_fast

requires_openmp = pytest.mark.skipif(
    not gmm_fast.openmp_enabled(),
    reason="gmm_fast was built without OpenMP: there is no OpenMP runtime to list or limit",
)
requires_proc = pytest.mark.skipif(
    not os.path.isdir("/proc/self/task"),
    reason="counting the process's OS threads needs Linux's /proc/self/task",
)

# Imported before the first snapshot, so that whatever they load is not taken for the
# package's OpenMP library.
PRELUDE = """
import json, os, sys
import numpy as np
import scipy.linalg
from threadpoolctl import threadpool_info, threadpool_limits

def openmp_libraries():
    return {info["filepath"]: info for info in threadpool_info() if info["user_api"] == "openmp"}

def os_threads():
    return len(os.listdir("/proc/self/task"))
"""


def run_child(code, tmp_path, omp_num_threads="2"):
    """Run ``code`` in a new interpreter with ``OMP_NUM_THREADS`` set; return its JSON line."""
    env = dict(os.environ, OMP_NUM_THREADS=omp_num_threads)
    for name in ("OMP_THREAD_LIMIT", "OMP_DYNAMIC"):  # would cap the team below what we ask
        env.pop(name, None)
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(PRELUDE) + textwrap.dedent(code)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_omp_num_threads_sets_kernel_threads(tmp_path):
    # Without OpenMP every answer is 1, whatever OMP_NUM_THREADS says.
    expected = 2 if gmm_fast.openmp_enabled() else 1
    got = run_child("""
        from gmm_fast._openmp import max_threads, threads_in_parallel_region
        from gmm_fast._threads import effective_n_threads
        print(json.dumps({
            "max_threads": max_threads(),
            "team": threads_in_parallel_region(2),
            "team_default": threads_in_parallel_region(effective_n_threads(None)),
        }))
    """, tmp_path)
    assert got == {"max_threads": expected, "team": expected, "team_default": expected}


def test_omp_num_threads_one_gives_one_thread(tmp_path):
    got = run_child("""
        from gmm_fast._openmp import max_threads, threads_in_parallel_region
        from gmm_fast._threads import effective_n_threads
        print(json.dumps([max_threads(), threads_in_parallel_region(effective_n_threads(None))]))
    """, tmp_path, omp_num_threads="1")
    assert got == [1, 1]


@requires_openmp
def test_threadpoolctl_lists_and_limits_the_package_openmp(tmp_path):
    got = run_child("""
        before = openmp_libraries()
        import gmm_fast
        from gmm_fast._openmp import max_threads, threads_in_parallel_region
        from gmm_fast._threads import effective_n_threads
        new = {path: info for path, info in openmp_libraries().items() if path not in before}
        with threadpool_limits(1, user_api="openmp"):
            limited = [max_threads(), effective_n_threads(None),
                       threads_in_parallel_region(effective_n_threads(None))]
        restored = max_threads()
        print(json.dumps({"before": sorted(before), "new": list(new.values()),
                          "limited": limited, "restored": restored}))
    """, tmp_path)
    # Importing gmm_fast loaded exactly one OpenMP runtime (the one its extensions link, or
    # the copy auditwheel/delocate/delvewheel vendored), and threadpoolctl sees 2 threads in it.
    assert len(got["new"]) == 1, got
    library = got["new"][0]
    assert library["internal_api"] == "openmp", library
    assert library["prefix"] in {"libgomp", "libomp", "libiomp", "vcomp"}, library
    assert library["num_threads"] == 2, library
    assert got["limited"] == [1, 1, 1]
    assert got["restored"] == 2


@requires_openmp
def test_threadpool_limits_reach_kmeans(tmp_path):
    got = run_child("""
        import gmm_fast._kmeans as kmeans_module
        from gmm_fast import KMeans

        asked = []  # n_threads is the last positional argument of every kernel KMeans calls

        def spy(kernel):
            def wrapper(*args, **kwargs):
                asked.append(args[-1])
                return kernel(*args, **kwargs)
            return wrapper

        for name in ("lloyd_step", "min_sq_distances", "candidate_potentials"):
            setattr(kmeans_module, name, spy(getattr(kmeans_module, name)))

        import gmm_fast._threads
        gmm_fast._threads.MIN_SECONDS_PER_THREAD = 1e-12  # every pass takes what it may

        X = np.random.default_rng(0).standard_normal((4000, 4))
        with threadpool_limits(1, user_api="openmp"):
            KMeans(n_clusters=5, n_init=1, random_state=0).fit(X)
        limited = sorted(set(asked))
        asked.clear()
        KMeans(n_clusters=5, n_init=1, random_state=0).fit(X)
        print(json.dumps({"limited": limited, "default": sorted(set(asked))}))
    """, tmp_path)
    assert got == {"limited": [1], "default": [2]}


@requires_openmp
@requires_proc
def test_kmeans_starts_openmp_workers_only_when_allowed(tmp_path):
    # The runtime starts n_threads - 1 workers at the first parallel region and keeps them,
    # so the OS thread count before and after a fit shows how many threads the fit used.
    got = run_child("""
        import gmm_fast._threads
        from gmm_fast import KMeans
        from gmm_fast._threads import sequential_blas

        gmm_fast._threads.MIN_SECONDS_PER_THREAD = 1e-12  # every pass takes what it may
        X = np.random.default_rng(0).standard_normal((4000, 4))
        with sequential_blas():  # let BLAS start (or resize) its own pool before counting
            X @ X.T[:, :10]
        start = os_threads()
        with threadpool_limits(1, user_api="openmp"):
            KMeans(n_clusters=5, n_init=1, random_state=0).fit(X)
        limited = os_threads()
        KMeans(n_clusters=5, n_init=1, random_state=0).fit(X)
        print(json.dumps({"limited": limited - start, "default": os_threads() - start}))
    """, tmp_path)
    assert got == {"limited": 0, "default": 1}


# -- the automatic choice of threads per pass (in this process: the spies need no child) --

def test_pass_threads_grow_with_the_work(monkeypatch):
    import gmm_fast._threads as threads

    monkeypatch.setattr(threads, "MIN_SECONDS_PER_THREAD", 1e-3)
    assert threads.pass_threads(4, 0.9e-3, 64) == 1  # too little work for a second thread
    assert threads.pass_threads(4, 2.5e-3, 64) == 2
    assert threads.pass_threads(4, 1.0, 64) == 4  # at most what the user allows
    assert threads.pass_threads(4, 1.0, 3) == 3  # at most one per block
    assert threads.pass_threads(1, 1.0, 64) == 1
    assert threads.pass_threads(4, 0.0, 64) == 1


def _spy_kernels(monkeypatch):
    """Record (kernel, threads, blocks) of every kernel call of a fit, predict, score."""
    import gmm_fast._em as em_module
    import gmm_fast._gaussian_mixture as gmm_module
    import gmm_fast._kmeans as kmeans_module

    calls = []

    def spy(module, name, blocks_of, threads_at=-1):
        kernel = getattr(module, name)

        def wrapper(*args, **kwargs):
            calls.append((name, args[threads_at], blocks_of(args)))
            return kernel(*args, **kwargs)
        monkeypatch.setattr(module, name, wrapper)

    # (n_threads is each kernel's last positional argument but lloyd_step's tenth)
    spy(em_module, "estep", lambda args: args[-2].shape)
    spy(gmm_module, "score_chunks", lambda args: None)
    spy(kmeans_module, "min_sq_distances", lambda args: None)
    spy(kmeans_module, "candidate_potentials", lambda args: args[4].shape)
    spy(kmeans_module, "lloyd_step", lambda args: args[7].shape, threads_at=9)
    return calls


def _fit_everything(X, n_threads, covariance_type):
    """A GaussianMixture (its k-means start included), its predictions, and a KMeans."""
    from gmm_fast import GaussianMixture, KMeans

    gm = GaussianMixture(4, covariance_type=covariance_type, random_state=0,
                         n_threads=n_threads, max_iter=5).fit(X)
    km = KMeans(4, random_state=0, n_threads=n_threads).fit(X)
    out = [getattr(gm, name) for name in ("weights_", "means_", "covariances_",
                                          "lower_bounds_", "n_iter_")]
    out += [gm.predict_proba(X), gm.score_samples(X), km.cluster_centers_, km.labels_,
            km.inertia_, km.predict(X)]
    return out


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical"])
@pytest.mark.parametrize("n_samples", [150, 3000, 40000])
def test_automatic_threads_give_the_same_results_and_blocks(monkeypatch, covariance_type,
                                                           n_samples):
    """Whatever threads the passes take (chosen from their work, all allowed, or one),
    the blocks are the same and so is every result, bitwise."""
    import warnings

    import gmm_fast._threads as threads
    from gmm_fast import ConvergenceWarning

    rng = np.random.default_rng(3)
    X = rng.standard_normal((n_samples, 5)) + 4 * rng.integers(0, 4, (n_samples, 1))
    calls = _spy_kernels(monkeypatch)
    runs = {}
    for label, n_threads, min_seconds in (("automatic", 2, threads.MIN_SECONDS_PER_THREAD),
                                          ("every pass parallel", 2, 1e-12),
                                          ("one thread", 1, 1e-12)):
        monkeypatch.setattr(threads, "MIN_SECONDS_PER_THREAD", min_seconds)
        calls.clear()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # max_iter=5: identity here
            results = _fit_everything(X, n_threads, covariance_type)
        runs[label] = (results, list(calls))
    expected, expected_calls = runs["one thread"]
    for label, (results, kernel_calls) in runs.items():
        for got, want in zip(results, expected):
            assert np.array_equal(got, want), label
        # The same kernel calls with the same blocks; only the threads may differ.
        assert [(name, blocks) for name, _, blocks in kernel_calls] == \
            [(name, blocks) for name, _, blocks in expected_calls], label
    parallel = {threads for _, threads, _ in runs["every pass parallel"][1]}
    if gmm_fast.openmp_enabled() and n_samples > threads.MIN_ROWS_PER_BLOCK:
        assert 2 in parallel  # the comparison is not between two serial runs
    assert {threads for _, threads, _ in runs["one thread"][1]} == {1}


@pytest.mark.skipif(not gmm_fast.openmp_enabled(), reason="a build without OpenMP has 1")
@pytest.mark.filterwarnings("ignore::gmm_fast.ConvergenceWarning")  # max_iter=2
def test_small_passes_take_one_thread_large_ones_more(monkeypatch):
    from gmm_fast import GaussianMixture, KMeans

    calls = _spy_kernels(monkeypatch)
    rng = np.random.default_rng(0)
    GaussianMixture(3, random_state=0, n_threads=2).fit(rng.standard_normal((150, 4)))
    KMeans(3, random_state=0, n_threads=2).fit(rng.standard_normal((150, 4)))
    assert {threads for _, threads, _ in calls} == {1}  # iris-sized: no second thread
    calls.clear()
    X = rng.standard_normal((100_000, 16))  # E-step (full, k=8) ~40 ms, Lloyd (k=16) ~6 ms
    GaussianMixture(8, random_state=0, n_threads=2, max_iter=2, tol=0).fit(X)
    assert {name: threads for name, threads, _ in calls}["estep"] == 2
    calls.clear()
    KMeans(16, random_state=0, n_threads=2, max_iter=3).fit(X)
    assert {name: threads for name, threads, _ in calls}["lloyd_step"] == 2
    calls.clear()
    # An explicit n_threads stays an upper bound.
    GaussianMixture(8, random_state=0, n_threads=1, max_iter=2, tol=0).fit(X)
    assert {threads for _, threads, _ in calls} == {1}


def test_kmeans_keeps_blas_on_one_thread_where_its_passes_call_it(monkeypatch, cpu_level):
    """KMeans (fit, predict, partial_fit) limits BLAS to one thread only where a pass
    calls it from its threads (the GEMM path); narrow rows (the direct path from AVX2 on) leave BLAS alone, and the
    fit is the same either way."""
    from gmm_fast import KMeans, _kmeans
    from gmm_fast._lloyd import calls_blas

    entered = []
    real = _kmeans.sequential_blas

    def counting():
        entered.append(1)
        return real()

    monkeypatch.setattr(_kmeans, "sequential_blas", counting)
    rng = np.random.default_rng(0)
    for n_features, n_clusters in ((4, 3), (40, 64)):
        entered.clear()
        X = rng.standard_normal((500, n_features))
        KMeans(n_clusters, random_state=0).fit(X).predict(X)
        online = KMeans(n_clusters, random_state=0).partial_fit(X)  # (seeds, then steps)
        online.partial_fit(X)
        assert len(entered) == (4 if calls_blas(n_features, n_clusters, X.itemsize) else 0)
    # From AVX2 on, narrow rows take a direct path (no BLAS); wide rows with many
    # centres take the GEMM at every level (fewer, at AVX-512, the wide direct path;
    # float64 rows up to 32 features at AVX2, in GCC builds, the narrow one).
    assert calls_blas(4, 3, 8) == (cpu_level == "baseline")
    assert calls_blas(40, 64, 8)
    assert calls_blas(32, 64, 4)
    assert calls_blas(64, 32, 8) == (cpu_level != "avx512")
    X = rng.standard_normal((500, 4))
    free = KMeans(3, random_state=0).fit(X)
    with real():
        limited = KMeans(3, random_state=0).fit(X)
    np.testing.assert_array_equal(limited.cluster_centers_, free.cluster_centers_)
    np.testing.assert_array_equal(limited.labels_, free.labels_)


def test_sequential_blas_limits_every_blas_and_restores_it(tmp_path):
    # Every BLAS the process loaded runs on one thread inside, nested or while another
    # Python thread is inside too; leaving restores each library's own count. (The
    # thread that limited leaves last here: OpenBLAS ignores a raise asked from
    # another thread, see _threads.sequential_blas.)
    got = run_child("""
        import threading
        from gmm_fast._threads import sequential_blas

        def blas_threads():
            return sorted(info["num_threads"] for info in threadpool_info()
                          if info["user_api"] == "blas")

        threadpool_limits(3, user_api="blas")
        before = blas_threads()
        seen = {}
        with sequential_blas():
            seen["inside"] = blas_threads()
            entered, leave = threading.Event(), threading.Event()

            def other():
                with sequential_blas():
                    entered.set()
                    leave.wait(10)

            thread = threading.Thread(target=other)
            thread.start()
            entered.wait(10)
            with sequential_blas():
                seen["nested"] = blas_threads()
            leave.set()
            thread.join()
            seen["other left"] = blas_threads()
        print(json.dumps({"before": before, **seen, "after": blas_threads()}))
    """, tmp_path)
    n_blas = len(got["before"])
    assert n_blas >= 1 and got["before"] == [3] * n_blas
    assert got["inside"] == got["nested"] == got["other left"] == [1] * n_blas
    assert got["after"] == [3] * n_blas
