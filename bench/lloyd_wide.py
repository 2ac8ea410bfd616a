"""Where one Lloyd iteration's time goes at a wide workload, e.g. (1e5, 784, 10).

Times, side by side in one run (best of ``--repeats``, ms): gmm_fast's ``lloyd_step``
on the path it picks (the row-wise one at AVX2 for this shape), without the centre sums
(distances and argmin only), and on the GEMM path; the same-shape GEMM alone
(``X @ C.T``, OpenBLAS); one read of X (a BLAS matrix-vector product, memory-bound);
and scikit-learn's Lloyd loop per iteration (``_kmeans_single_lloyd``, 11 minus 1
iterations). Run it with the benchmark environment::

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/lloyd_wide.py
"""
import argparse
import os
import time

import numpy as np
from threadpoolctl import threadpool_limits

import cases
from gmm_fast import _lloyd
from gmm_fast._threads import n_blocks


def _best_ms(run, repeats):
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return 1e3 * best


def _step(X, centers, threads, update=True, module=_lloyd):
    """A closure running one lloyd_step (of ``module``) as gmm_fast's loop calls it."""
    n, d = X.shape
    k = centers.shape[0]
    blocks = n_blocks(n, k * (d + 1))
    shift = X[:1000].mean(axis=0).astype(X.dtype)
    c = np.ascontiguousarray(centers - shift)
    labels = np.full(n, -1, dtype=np.int32)
    sums = np.empty((blocks, k, d))
    counts = np.empty((blocks, k))
    inertia = np.empty(blocks)
    return lambda: module.lloyd_step(X, None, shift, c, labels, sums, counts, inertia,
                                     update, threads, with_inertia=False)


def _sklearn_iter_ms(X, centers, threads, repeats):
    from sklearn.cluster._kmeans import _kmeans_single_lloyd
    w = np.ones(len(X), dtype=X.dtype)

    def fit(m):
        return lambda: _kmeans_single_lloyd(X, w, centers.copy(), max_iter=m, tol=0,
                                            n_threads=threads)
    with threadpool_limits(1, user_api="blas"):
        return (_best_ms(fit(11), repeats) - _best_ms(fit(1), repeats)) / 10


def breakdown(n, d, k, dtype, threads, repeats):
    """``{name: ms}`` for one workload."""
    X = cases.make_data(n, d, k, dtype)
    centers = np.ascontiguousarray(X[:k])
    out = {}
    with threadpool_limits(1, user_api="blas"):
        out["gmm_fast step"] = _best_ms(_step(X, centers, threads), repeats)
        out["gmm_fast step, no sums"] = _best_ms(_step(X, centers, threads, False), repeats)
        previous = _lloyd.use_direct_path(False)
        out["gmm_fast GEMM path"] = _best_ms(_step(X, centers, threads), repeats)
        _lloyd.use_direct_path(previous)
    with threadpool_limits(threads, user_api="blas"):
        dist = np.empty((n, k), dtype=dtype)
        out["GEMM X @ C.T alone"] = _best_ms(lambda: np.matmul(X, centers.T, out=dist),
                                             repeats)
        ones = np.ones(d, dtype=dtype)
        out["one read of X (gemv)"] = _best_ms(lambda: X @ ones, repeats)
    out["sklearn loop / iter"] = _sklearn_iter_ms(X, centers, threads, max(2, repeats // 2))
    return out


def _load_lloyd(site):
    """The ``_lloyd`` extension of another gmm_fast build (``site``: the folder holding
    its ``gmm_fast``), beside this one."""
    import glob
    import importlib.util
    path, = glob.glob(os.path.join(site, "gmm_fast", "_lloyd.*.so"))
    spec = importlib.util.spec_from_file_location("gmm_fast_other._lloyd", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def interleaved(n, d, k, dtype, threads, other, rounds):
    """Per round, one step of this build, one of ``other``'s and one scikit-learn
    iteration, timed back to back: the medians of the per-round ratios (sklearn /
    this, sklearn / other) hold up better on a shared machine than separate runs."""
    from sklearn.cluster._kmeans import _kmeans_single_lloyd
    X = cases.make_data(n, d, k, dtype)
    centers = np.ascontiguousarray(X[:k])
    w = np.ones(n, dtype=X.dtype)
    this, that = _step(X, centers, threads), _step(X, centers, threads, module=other)
    ratios = []
    with threadpool_limits(1, user_api="blas"):
        for _ in range(rounds):
            sk = (_best_ms(lambda: _kmeans_single_lloyd(X, w, centers.copy(), max_iter=3,
                                                        tol=0, n_threads=threads), 1)
                  - _best_ms(lambda: _kmeans_single_lloyd(X, w, centers.copy(), max_iter=1,
                                                          tol=0, n_threads=threads), 1)) / 2
            # alternate which build runs right after scikit-learn (its threads may spin)
            if len(ratios) % 2:
                mine, theirs = _best_ms(this, 1), _best_ms(that, 1)
            else:
                theirs, mine = _best_ms(that, 1), _best_ms(this, 1)
            ratios.append((sk / mine, sk / theirs, sk))
    return np.median(np.array(ratios), axis=0), np.percentile(np.array(ratios), [25, 75], axis=0)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workload", default="100000,784,10")
    parser.add_argument("--dtype", default="float32,float64")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--other", help="another build's site folder: interleaved ratios")
    args = parser.parse_args()
    n, d, k = (int(v) for v in args.workload.split(","))
    print(f"(n, d, k) = ({n}, {d}, {k}), {args.threads} threads, load "
          f"{os.getloadavg()[0]:.2f}, kernel level {_lloyd.set_kernel_level(9)}")
    if args.other:
        other = _load_lloyd(args.other)
        for dtype in args.dtype.split(","):
            (mine, theirs, sk), (low, high) = interleaved(n, d, k, dtype, args.threads,
                                                          other, args.repeats)
            print(f"{dtype:8s} sklearn/this {mine:.2f} ({low[0]:.2f}-{high[0]:.2f}), "
                  f"sklearn/other {theirs:.2f} ({low[1]:.2f}-{high[1]:.2f}), "
                  f"sklearn {sk:.1f} ms/iter (median of {args.repeats} rounds)")
        print(f"load after: {os.getloadavg()[0]:.2f}")
        return
    for dtype in args.dtype.split(","):
        figures = breakdown(n, d, k, dtype, args.threads, args.repeats)
        sk = figures["sklearn loop / iter"]
        for name, ms in figures.items():
            print(f"{dtype:8s} {name:24s} {ms:8.2f} ms   sklearn/this {sk / ms:5.2f}")
    print(f"load after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
