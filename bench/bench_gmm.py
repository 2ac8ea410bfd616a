"""pytest-benchmark: GaussianMixture fits of a fixed number of EM iterations, gmm_fast vs peers.

One benchmark per (n_samples, n_features, n_components, covariance_type,
dtype, impl), grouped by workload; peers are scikit-learn (every covariance
type) and daal4py's ``em_gmm`` (full and diag). Each timing is a whole fit of
``ITERATIONS`` iterations from identical weights, means and precisions
(``tol=0``). The whole module is skipped, with the reason, while
``gmm_fast.GaussianMixture`` does not exist.
"""
import pytest

import cases
from harness import Unavailable, settle, timed

MISSING = cases.gmm_fast_missing()
pytestmark = pytest.mark.skipif(MISSING is not None, reason=str(MISSING))

ITERATIONS = 3
IMPLS = ("gmm_fast",) + cases.GMM_PEERS
COVARIANCE_TYPES = cases.GMM_PEER_COVARIANCES + cases.GMM_SKLEARN_ONLY_COVARIANCES
WORKLOADS = (cases.QUICK_GMM_WORKLOADS if getattr(cases, "PYTEST_QUICK", False)
             else cases.GMM_WORKLOADS)
PARAMS = [pytest.param(n, d, k, cov, dtype, impl, id=f"n={n}-d={d}-k={k}-{cov}-{dtype}-{impl}")
          for n, d, k in WORKLOADS for cov in COVARIANCE_TYPES for dtype in cases.DTYPES
          for impl in IMPLS]


@pytest.mark.parametrize(
    "n_samples, n_features, n_components, covariance_type, dtype, impl", PARAMS)
def bench_gmm_fit(benchmark, data, n_samples, n_features, n_components, covariance_type,
                  dtype, impl):
    X = data(n_samples, n_features, n_components, dtype)
    params = cases.initial_gmm_parameters(X, n_components, covariance_type)
    try:
        fit = cases.make_gmm_fit(impl, X, covariance_type, *params)
    except Unavailable as exc:
        pytest.skip(f"{impl}: {exc}")
    benchmark.group = (f"gmm n={n_samples} d={n_features} k={n_components} "
                       f"{covariance_type} {dtype}")
    benchmark.extra_info["iterations"] = ITERATIONS
    timed(fit, 1)   # warm-up
    # sklearn needs seconds per iteration on the largest workloads: few rounds.
    _, n_iter = benchmark.pedantic(timed, args=(fit, ITERATIONS), setup=settle, rounds=2,
                                   iterations=1)
    assert n_iter == ITERATIONS, f"{impl} stopped after {n_iter} of {ITERATIONS} iterations"
