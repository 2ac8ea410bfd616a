"""gmm_fast's KMeans on Dask against dask-ml's KMeans: same data, start and iterations.

Both fit the same dask array (8 blocks) from the same initial centres (dask-ml's
``KMeans(init=array)``, gmm_fast's ``KMeans(init=array, n_init=1)``) for a fixed number
of Lloyd iterations (``tol=0``), in one process: on dask's threaded scheduler and on a
``distributed.LocalCluster`` of 2 workers x 1 thread (X persisted on the workers first).
Per iteration = (fit of 1 + n iterations - fit of 1) / n, each the best of ``--repeat``
with the two taking turns, so that the fixed costs (dask-ml's final labelling pass,
gmm_fast's input check and final pass) cancel and load from other jobs hits both. The centres the two reach are compared (they run the same
arithmetic up to rounding). Target (issue 15): gmm_fast at least 5x faster per iteration.

dask-ml 2025.1.0 does not import with scikit-learn 1.9, so this runs in a venv of its
own (bench/README.md, "dask-ml"):

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE /work/venv-daskml/bin/python \
        bench/daskml_peer.py [--n 1000000 --d 16 --k 64 --dtype float32]

On the threaded scheduler dask-ml's BLAS calls run with BLAS limited to one thread
(threadpoolctl), as a LocalCluster's workers start: two tasks at once, each with a
multi-threaded BLAS, would oversubscribe the cores. gmm_fast's kernels use one OpenMP
thread per task either way.
"""
import argparse
import time
import warnings

import numpy as np


def _seconds(call):
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def _per_iteration(makers, X, n_iter, repeat):
    """ms per iteration of each ``makers[name](max_iter)``: the best of ``repeat`` fits
    of 1 + n_iter and of 1 iterations, the difference over n_iter; the implementations
    take turns within each repeat (a burst of load from other jobs hits both), after
    a fit each not timed (numba compiles dask-ml's centre sums in each process on
    first use). Returns ``{name: (ms, model of the longer fit)}``."""
    for make in makers.values():
        make(1).fit(X)
    best = {(name, m): None for name in makers for m in (1, 1 + n_iter)}
    models = {}
    for _ in range(repeat):
        for max_iter in (1, 1 + n_iter):
            for name, make in makers.items():
                model = make(max_iter)
                seconds = _seconds(lambda: model.fit(X))
                assert model.n_iter_ == max_iter, (name, model.n_iter_)
                key = (name, max_iter)
                best[key] = seconds if best[key] is None else min(best[key], seconds)
                models[name] = model
    return {name: (1e3 * (best[name, 1 + n_iter] - best[name, 1]) / n_iter, models[name])
            for name in makers}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--d", type=int, default=16)
    parser.add_argument("--k", type=int, default=64)
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--blocks", type=int, default=8)
    parser.add_argument("--iterations", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    warnings.simplefilter("ignore")  # (ConvergenceWarning: max_iter on purpose)

    import dask
    import dask.array as da
    import dask_ml
    import distributed
    import sklearn
    from dask_ml.cluster import KMeans as DaskMLKMeans
    from threadpoolctl import threadpool_limits

    from gmm_fast import KMeans, cpu_level

    n, d, k = args.n, args.d, args.k
    rng = np.random.default_rng(0)
    X = (3.0 * rng.standard_normal((k, d)))[rng.integers(k, size=n)] + rng.standard_normal((n, d))
    X = X.astype(args.dtype)
    init = X[rng.choice(n, k, replace=False)].astype(np.float64)
    Xd = da.from_array(X, chunks=(-(-n // args.blocks), d))
    print(f"cpu level {cpu_level()}; dask-ml {dask_ml.__version__}, scikit-learn "
          f"{sklearn.__version__}, dask {dask.__version__}; KMeans ({n:.0e}, {d}, {k}) "
          f"{args.dtype}, {args.blocks} blocks, {args.iterations} iterations; ms per iteration")

    def theirs(max_iter):
        return DaskMLKMeans(n_clusters=k, init=init.astype(X.dtype), max_iter=max_iter, tol=0.0)

    def ours(max_iter):
        return KMeans(k, init=init, n_init=1, max_iter=max_iter, tol=0.0)

    def compare(label, X_dask, limit_blas):
        with threadpool_limits(1 if limit_blas else None, user_api="blas"):
            result = _per_iteration({"dask-ml": theirs, "gmm_fast": ours}, X_dask,
                                    args.iterations, args.repeat)
        (their_ms, their_model), (our_ms, our_model) = result["dask-ml"], result["gmm_fast"]
        gap = np.abs(np.asarray(their_model.cluster_centers_, dtype=np.float64)
                     - our_model.cluster_centers_).max()
        print(f"{label}: dask-ml {their_ms:.1f}, gmm_fast {our_ms:.1f} "
              f"({their_ms / our_ms:.1f}x faster); centres after {1 + args.iterations} "
              f"iterations differ by at most {gap:.2e}")

    with dask.config.set(scheduler="threads"):
        compare("threaded scheduler", Xd, limit_blas=True)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        persisted = client.persist(Xd)
        distributed.wait(persisted)
        compare("LocalCluster 2x1", persisted, limit_blas=False)


if __name__ == "__main__":
    main()
