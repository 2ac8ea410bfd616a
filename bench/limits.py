"""Physical floors of one iteration: what the machine's GEMM peak, memory bandwidth and
exp throughput allow, measured in the same run as the timings.

An iteration cannot beat the slowest of three floors:

- products: its nominal GEMM flops (``cases.gemm_flops``; Lloyd ``2 n k d``, the
  distances' GEMM) at the GEMM peak (``harness.gemm_peak``);
- memory: reading X once (``n d`` elements of its dtype) at the machine's read
  bandwidth with the benchmark's threads;
- exp: ``n k`` exponentials (EM's responsibilities; none for Lloyd) at a vectorised
  exp's rate (numpy's float32 exp) times the threads.

The table prints the largest floor, which one it is, and gmm_fast's time over it
(1.0 would be the machine's limit). The floors are lower bounds, not targets: the
passes they leave out (logs, features, argmin, sums) come on top.
"""
import time

import numpy as np
from threadpoolctl import threadpool_limits

import cases
import harness


def _best_seconds(run, repeats=5):
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return best


def memory_bandwidth(n_bytes=2**28):
    """Bytes per second read from memory by a BLAS matrix-vector product (memory-bound)
    of a float64 array of ``n_bytes`` (well past the caches), on the benchmark's threads."""
    a = np.ones((n_bytes // 8 // 1024, 1024))
    x = np.ones(1024)
    with threadpool_limits(harness.N_THREADS, user_api="blas"):
        a @ x
        seconds = _best_seconds(lambda: a @ x)
    return a.nbytes / seconds


def exp_rate(n=2**22):
    """Exponentials per second of a vectorised exp: numpy's float32 exp (SIMD from AVX2
    on; its float64 exp is scalar below AVX-512, 0.2 G/s a thread on Zen 3, slower than
    gmm_fast's) on one thread, times the threads (an n x k block of responsibilities
    is split between them)."""
    x = -np.random.default_rng(0).random(n).astype(np.float32) * 20
    out = np.empty_like(x)
    np.exp(x, out=out)
    return n / _best_seconds(lambda: np.exp(x, out=out)) * harness.N_THREADS


def measure():
    """The machine's rates: ``{"gemm": {dtype: flop/s}, "bandwidth": B/s, "exp": 1/s}``."""
    return {"gemm": {dtype: harness.gemm_peak(dtype) for dtype in cases.DTYPES},
            "bandwidth": memory_bandwidth(), "exp": exp_rate()}


def floors(row, rates):
    """``{name: seconds}``: each floor of one benchmark row's iteration."""
    n, d, k, dtype = row["n"], row["d"], row["k"], row["dtype"]
    if row["model"] == "kmeans":
        flops, exps = 2.0 * n * k * d, 0
    else:
        flops, exps = cases.gemm_flops(row["covariance_type"], n, d, k), n * k
    return {"products": flops / rates["gemm"][dtype],
            "memory": n * d * np.dtype(dtype).itemsize / rates["bandwidth"],
            "exp": exps / rates["exp"]}


def floor_cell(row, rates):
    """Table text: the largest floor, its kind, and gmm_fast's time over it."""
    result = row["results"].get("gmm_fast", {})
    if "per_iter" not in result:
        return "-"
    name, seconds = max(floors(row, rates).items(), key=lambda item: item[1])
    return f"{1e3 * seconds:.3g} ms {name}, {result['per_iter'] / seconds:.1f}x"


def describe(rates):
    """One line for the report."""
    return (f"floors from: GEMM peak {rates['gemm']['float64'] / 1e9:.1f} (float64) / "
            f"{rates['gemm']['float32'] / 1e9:.1f} (float32) GFLOP/s, read bandwidth "
            f"{rates['bandwidth'] / 1e9:.1f} GB/s, exp {rates['exp'] / 1e9:.2f} G/s "
            f"({harness.N_THREADS} threads)")
