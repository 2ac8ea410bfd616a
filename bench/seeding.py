"""k-means++ seeding and whole KMeans fits from it: gmm_fast against scikit-learn.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/run.py --only seeding
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/seeding.py [--repeats 3]

``run.py``'s KMeans tables time iterations from given centres, so they do not see the
seeding. Here each cell times, in turns within each repeat (after an idle settle, as
``harness.side_by_side``):

- **seeding**: ``gmm_fast.kmeans_plusplus`` against ``sklearn.cluster.kmeans_plusplus``
  (both greedy, ``2 + log(k)`` candidates per centre; their draws differ: gmm_fast's
  treat integer weights as repeated rows exactly, ``gmm_fast._draws``);
- **fit**: ``KMeans(init="k-means++", n_init=1, max_iter=20, tol=0)`` of each library, the
  seeding plus 20 Lloyd iterations as a user times it (``STOPPED EARLY`` if a fit ran
  fewer).

Cells show median seconds; ``x`` is scikit-learn's time / gmm_fast's, the median of the
per-repeat ratios (above 1: gmm_fast faster). The floor is one read of X per centre at the
read bandwidth (``limits.py``): each centre's candidates need every row once.
"""
import argparse
import statistics
import time
import warnings

import numpy as np
from threadpoolctl import threadpool_limits

import cases
import harness

WORKLOADS = [(1_000_000, 2, 8), (1_000_000, 16, 64), (200_000, 128, 256)]
FIT_ITERATIONS = 20


def make_calls(impl, X, n_clusters):
    """``{"seeding": f, "fit": f}``: zero-argument callables, each returning the number of
    Lloyd iterations run (0 for the seeding)."""
    if impl == "gmm_fast":
        from gmm_fast import KMeans, kmeans_plusplus

        def seed():
            kmeans_plusplus(X, n_clusters, random_state=0, n_threads=harness.N_THREADS)
            return 0

        def fit():
            return KMeans(n_clusters, n_init=1, max_iter=FIT_ITERATIONS, tol=0, random_state=0,
                          n_threads=harness.N_THREADS).fit(X).n_iter_
        return {"seeding": seed, "fit": fit}
    if impl == "sklearn":
        from sklearn.cluster import KMeans, kmeans_plusplus

        def seed():
            with threadpool_limits(limits=harness.N_THREADS):
                kmeans_plusplus(X, n_clusters, random_state=0)
            return 0

        def fit():
            with threadpool_limits(limits=harness.N_THREADS):
                return KMeans(n_clusters, n_init=1, max_iter=FIT_ITERATIONS, tol=0,
                              random_state=0, algorithm="lloyd").fit(X).n_iter_
        return {"seeding": seed, "fit": fit}
    raise ValueError(f"unknown seeding implementation {impl!r}")


def in_turns(calls, repeats):
    """Per implementation: median seconds, per-repeat ratios to the first, early stops.

    ``calls`` maps an implementation to ``(call, expected_iterations)``; ``repeats``
    rounds timing each in turn after ``harness.settle()`` (the caller warms up)."""
    seconds = {name: [] for name in calls}
    early = dict.fromkeys(calls, False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning is the point of tol=0
        for _ in range(repeats):
            for name, (call, expected) in calls.items():
                harness.settle()
                start = time.perf_counter()
                n_iter = call()
                seconds[name].append(time.perf_counter() - start)
                early[name] |= n_iter != expected
    first = next(iter(calls))
    results = {}
    for name in calls:
        results[name] = {"seconds": statistics.median(seconds[name]), "early_stop": early[name],
                         "all": seconds[name]}
        if name != first:
            ratios = [p / q for p, q in zip(seconds[name], seconds[first])]
            results[name].update(ratio=statistics.median(ratios), ratios=ratios)
    return results


def measure_cell(n, d, k, dtype, repeats, X64=None):
    """One workload: ``{"seeding": results, "fit": results}`` (``in_turns``)."""
    if X64 is None:
        X64 = cases.make_data(n, d, k, "float64")
    X = X64 if dtype == "float64" else X64.astype(np.float32)
    calls = {impl: make_calls(impl, X, k) for impl in ("gmm_fast", "sklearn")}
    # Warm-up on a slice (imports, thread pools): a whole extra run would double the
    # time of the (2e5, 128, 256) cells, whose seconds dwarf these costs.
    for impl in calls:
        for call in make_calls(impl, np.ascontiguousarray(X[:20 * k]), k).values():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                call()
    return {"key": cases.case_key("kmeans++", n, d, k, dtype), "n": n, "d": d, "k": k,
            "dtype": dtype,
            "seeding": in_turns({i: (c["seeding"], 0) for i, c in calls.items()}, repeats),
            "fit": in_turns({i: (c["fit"], FIT_ITERATIONS) for i, c in calls.items()}, repeats)}


def floor_seconds(row, bandwidth):
    """One read of X per centre at ``bandwidth`` bytes/s."""
    return row["k"] * row["n"] * row["d"] * np.dtype(row["dtype"]).itemsize / bandwidth


def _cell(result, ratio=True):
    text = f"{result['seconds']:.3g} s"
    if result["early_stop"]:
        text += " (STOPPED EARLY)"
    if ratio and "ratio" in result:
        text += f" {result['ratio']:.2f}x ({min(result['ratios']):.2f}-{max(result['ratios']):.2f})"
    return text


HEADER = ("workload | gmm_fast seeding | sklearn seeding (x, range) | floor, gmm_fast / floor | "
          f"gmm_fast fit ({FIT_ITERATIONS} it.) | sklearn fit (x, range)")


def format_row(row, bandwidth=None):
    cells = [row["key"], _cell(row["seeding"]["gmm_fast"]), _cell(row["seeding"]["sklearn"])]
    if bandwidth:
        floor = floor_seconds(row, bandwidth)
        cells.append(f"{floor:.3g} s, {row['seeding']['gmm_fast']['seconds'] / floor:.1f}x")
    else:
        cells.append("-")
    cells += [_cell(row["fit"]["gmm_fast"]), _cell(row["fit"]["sklearn"])]
    return " | ".join(cells)


def seeding_rows(workloads, dtypes, repeats, emit, bandwidth=None):
    """Every workload x dtype, each row passed to ``emit(text)`` once measured."""
    rows = []
    for n, d, k in workloads:
        X64 = cases.make_data(n, d, k, "float64")
        for dtype in dtypes:
            rows.append(measure_cell(n, d, k, dtype, repeats, X64))
            emit(format_row(rows[-1], bandwidth))
        del X64
    return rows


def main(argv=None):
    import limits
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--dtype", choices=cases.DTYPES, action="append")
    parser.add_argument("--workload", metavar="N,D,K", action="append")
    args = parser.parse_args(argv)
    workloads = WORKLOADS
    if args.workload:
        wanted = {tuple(int(float(v)) for v in w.split(",")) for w in args.workload}
        workloads = [w for w in workloads if w in wanted] or sorted(wanted)
    for line in harness.environment_report():
        print(line)
    bandwidth = limits.memory_bandwidth()
    print(f"read bandwidth {bandwidth / 1e9:.1f} GB/s ({harness.N_THREADS} threads)")
    print(HEADER, flush=True)
    seeding_rows(workloads, args.dtype or list(cases.DTYPES), args.repeats,
                 lambda line: print(line, flush=True), bandwidth)


if __name__ == "__main__":
    main()
