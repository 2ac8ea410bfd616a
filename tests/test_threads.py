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
        from gmm_fast import KMeans
        from gmm_fast._threads import sequential_blas

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
