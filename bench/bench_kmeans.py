"""pytest-benchmark: KMeans fits of a fixed number of Lloyd iterations, gmm_fast vs peers.

One benchmark per (n_samples, n_features, n_clusters, dtype, impl), grouped by
workload so pytest-benchmark prints the implementations side by side with
their ratios. Each timing is a whole ``fit`` of ``ITERATIONS`` iterations from
the same centres (``tol=0``), fixed cost included; ``run.py`` reports the
per-iteration figures with that cost subtracted.
"""
import pytest

import cases
from harness import Unavailable, settle, timed

ITERATIONS = 10
IMPLS = ("gmm_fast",) + cases.KMEANS_PEERS
WORKLOADS = (cases.QUICK_KMEANS_WORKLOADS if getattr(cases, "PYTEST_QUICK", False)
             else cases.KMEANS_WORKLOADS)
PARAMS = [pytest.param(n, d, k, dtype, impl, id=f"n={n}-d={d}-k={k}-{dtype}-{impl}")
          for n, d, k in WORKLOADS for dtype in cases.DTYPES for impl in IMPLS]


@pytest.mark.parametrize("n_samples, n_features, n_clusters, dtype, impl", PARAMS)
def bench_kmeans_fit(benchmark, data, n_samples, n_features, n_clusters, dtype, impl):
    X = data(n_samples, n_features, n_clusters, dtype)
    centers = cases.initial_centers(X, n_clusters)
    try:
        fit = cases.make_kmeans_fit(impl, X, centers)
    except Unavailable as exc:
        pytest.skip(f"{impl}: {exc}")
    benchmark.group = f"kmeans n={n_samples} d={n_features} k={n_clusters} {dtype}"
    benchmark.extra_info["iterations"] = ITERATIONS
    timed(fit, 1)   # warm-up: thread pools, first-call costs
    _, n_iter = benchmark.pedantic(timed, args=(fit, ITERATIONS), setup=settle, rounds=3,
                                   iterations=1)
    assert n_iter == ITERATIONS, f"{impl} stopped after {n_iter} of {ITERATIONS} iterations"
