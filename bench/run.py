"""Side-by-side benchmark of gmm_fast against its peers; prints the tables.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/run.py            # full suite
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/run.py --quick    # CI gate

Every figure is the median seconds per iteration (see ``harness.py``) from the
same initial parameters; "x" is the speed-up of gmm_fast, peer time divided by
gmm_fast time (above 1: gmm_fast is faster), measured in the same run.

``--quick`` runs the small workloads of ``cases.QUICK_*`` against scikit-learn
only and exits with status 1 when a speed-up falls below its threshold in
``bench/thresholds.json``, in the table of the CPU level gmm_fast runs at
(``gate.py``); ``--refresh-thresholds`` records the run's figures as this CPU's in
that level's table (threshold = margin x the lowest CPU's figure). ``--slowdown 2`` runs gmm_fast's kernels twice
per call: the gate must then fail (CI's self-test of the gate).
"""
import argparse
import json
import os
import sys
import time

import numpy as np

import cases
import gate
import harness
import limits
import memory
import seeding

HERE = os.path.dirname(os.path.abspath(__file__))
THRESHOLDS = os.path.join(HERE, "thresholds.json")


def measure_impls(make_fit, impls, timing):
    """``{impl: harness result or {"skip": reason}}`` for one workload, timed in turns."""
    fits, skipped = {}, {}
    for impl in impls:
        try:
            fits[impl] = make_fit(impl)
        except harness.Unavailable as exc:
            skipped[impl] = {"skip": str(exc)}
    timed = harness.side_by_side(fits, **timing) if fits else {}
    return {impl: timed.get(impl, skipped.get(impl)) for impl in impls}


def measure_row(model, n, d, k, dtype, peers, timing, covariance_type=None, X64=None):
    """One workload: its key, shape and ``{impl: result}`` for gmm_fast and ``peers``."""
    if X64 is None:
        X64 = cases.make_data(n, d, k, "float64")
    X = X64 if dtype == "float64" else X64.astype(np.float32)
    if model == "kmeans":
        centers = cases.initial_centers(X, k)
        make_fit = lambda impl: cases.make_kmeans_fit(impl, X, centers)  # noqa: E731
    else:
        params = cases.initial_gmm_parameters(X, k, covariance_type)
        make_fit = lambda impl: cases.make_gmm_fit(impl, X, covariance_type, *params)  # noqa: E731
    return {"key": cases.case_key(model, n, d, k, dtype, covariance_type), "model": model, "n": n,
            "d": d, "k": k, "dtype": dtype, "covariance_type": covariance_type,
            "results": measure_impls(make_fit, ("gmm_fast",) + tuple(peers), timing)}


def kmeans_rows(workloads, dtypes, peers, timing, emit):
    rows = []
    for n, d, k in workloads:
        X64 = cases.make_data(n, d, k, "float64")
        for dtype in dtypes:
            rows.append(measure_row("kmeans", n, d, k, dtype, peers, timing, X64=X64))
            emit(rows[-1])
        del X64
    return rows


def sparse_kmeans_rows(workloads, dtypes, peers, timing, emit):
    """Sparse KMeans rows: model "kmeans-sparse", X from ``cases.make_sparse_data``."""
    rows = []
    for n, d, k in workloads:
        X64 = cases.make_sparse_data(n, d, cases.SPARSE_DENSITY, "float64")
        for dtype in dtypes:
            X = X64 if dtype == "float64" else X64.astype(np.float32)
            centers = cases.initial_centers(X, k)
            rows.append({
                "key": cases.case_key("kmeans-sparse", n, d, k, dtype), "model": "kmeans-sparse",
                "n": n, "d": d, "k": k, "dtype": dtype, "covariance_type": None,
                "density": cases.SPARSE_DENSITY,
                "results": measure_impls(lambda impl: cases.make_kmeans_fit(impl, X, centers),
                                         ("gmm_fast",) + tuple(peers), timing)})
            emit(rows[-1])
        del X64
    return rows


def gmm_rows(workloads, covariance_types, dtypes, peers, timing, emit):
    rows = []
    for n, d, k in workloads:
        X64 = cases.make_data(n, d, k, "float64")
        for covariance_type in covariance_types:
            for dtype in dtypes:
                rows.append(measure_row("gmm", n, d, k, dtype, peers, timing,
                                        covariance_type=covariance_type, X64=X64))
                emit(rows[-1])
        del X64
    return rows


def speedup(row, peer):
    """Peer time / gmm_fast time (median of the per-repeat ratios), or None."""
    mine, theirs = row["results"].get("gmm_fast", {}), row["results"].get(peer, {})
    if "per_iter" not in mine or "ratio" not in theirs:
        return None
    return theirs["ratio"]


def _cell(result, ratio=None):
    if "per_iter" not in result:
        return "-"
    text = f"{1e3 * result['per_iter']:.3g} ms"
    if result["early_stop"]:
        text += " (STOPPED EARLY)"
    if result["noisy"]:
        text += " (NOISY)"
    if ratio is not None:
        text += f" {ratio:.2f}x"
    return text


def table_header(peers, extra=()):
    cells = ["workload", "gmm_fast"] + [f"{p} (x)" for p in peers] + list(extra)
    return " | ".join(cells)


def format_row(row, peers, extra=()):
    cells = [row["key"], _cell(row["results"].get("gmm_fast", {}))]
    cells += [_cell(row["results"].get(p, {}), speedup(row, p)) for p in peers]
    return " | ".join(cells + list(extra))


WHOLE_FIT_ITERATIONS = 20


def whole_fit_cell(row, peers):
    """Speed-up on a whole fit of WHOLE_FIT_ITERATIONS iterations from the same start, as a
    user times it: each implementation's fixed cost (validation, initialisation, final
    E-step or assignment) plus that many iterations, against each peer measured."""
    def seconds(result):
        return result["fixed"] + WHOLE_FIT_ITERATIONS * result["per_iter"]
    mine = row["results"].get("gmm_fast", {})
    if "per_iter" not in mine:
        return "-"
    cells = [f"{p} {seconds(row['results'][p]) / seconds(mine):.2f}x" for p in peers
             if "per_iter" in row["results"].get(p, {})]
    return ", ".join(cells) or "-"


def skip_reasons(rows):
    reasons = {}
    for row in rows:
        for impl, result in row["results"].items():
            if "skip" in result:
                reasons.setdefault(f"{impl}: {result['skip']}", None)
    return list(reasons)


def kmeans_target(row, peers):
    """Issue 13's target: <= 0.8x the time of the fastest of scikit-learn, sklearnex and
    faiss (speed-up >= 1.25 against each installed). scikit-learn's time is its Lloyd
    loop's where measured (steadier: without the estimator's copy of X)."""
    if "per_iter" not in row["results"].get("gmm_fast", {}):
        return "-"
    sklearn = speedup(row, "sklearn-loop")
    sklearn = speedup(row, "sklearn") if sklearn is None else sklearn
    checks = [sklearn is not None and sklearn >= 1.25]
    checks += [speedup(row, p) >= 1.25 for p in peers if speedup(row, p) is not None]
    return "met" if all(checks) else "MISSED"


def gmm_target(row, gemm, peers):
    """Issue 13's targets: <= 0.6x oneDAL's time (full, diag; speed-up >= 1.67); >= 10x
    scikit-learn (tied, spherical; spherical (5e4, 64, 32) float64, whose two float64
    GEMMs take ~4 ms of scikit-learn's ~47, >= 8). Also returns the % of GEMM peak the
    iteration's products run at (every type: ``cases.gemm_flops``)."""
    if "per_iter" not in row["results"].get("gmm_fast", {}):
        return "-", "-"
    cov = row["covariance_type"]
    if cov in cases.GMM_PEER_COVARIANCES:
        s = speedup(row, "daal4py")
        ok = s is None or s >= 1.67
    else:
        s = speedup(row, "sklearn")
        gemm_bound = (cov == "spherical" and (row["n"], row["d"], row["k"]) == (50000, 64, 32)
                      and row["dtype"] == "float64")
        ok = s is not None and s >= (8 if gemm_bound else 10)
    flops = cases.gemm_flops(cov, row["n"], row["d"], row["k"])
    share = flops / row["results"]["gmm_fast"]["per_iter"] / gemm[row["dtype"]]
    return ("met" if ok else "MISSED"), f"{100 * share:.0f}%"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="small workloads vs scikit-learn, gated by thresholds.json")
    parser.add_argument("--only", choices=["kmeans", "sparse", "gmm", "memory", "seeding"],
                        action="append",
                        help="run only these parts (repeatable)")
    parser.add_argument("--dtype", choices=cases.DTYPES, action="append",
                        help="only these dtypes (repeatable)")
    parser.add_argument("--workload", metavar="N,D,K", action="append",
                        help="only these workloads, e.g. 100000,784,10 (repeatable)")
    parser.add_argument("--covariance", choices=["full", "diag", "tied", "spherical"],
                        action="append", help="only these GMM covariance types (repeatable)")
    parser.add_argument("--label", default="",
                        help="what was measured, e.g. the commit gmm_fast was built from "
                             "(printed, and stored by --refresh-thresholds)")
    parser.add_argument("--json", metavar="PATH", help="also write every figure to PATH")
    parser.add_argument("--refresh-thresholds", action="store_true",
                        help="with --quick: record this run's figures as this CPU's in "
                             "its level's table of thresholds.json")
    parser.add_argument("--refresh-runs", type=int, default=2, metavar="N",
                        help="with --refresh-thresholds: measure each row N times and keep "
                             "its lowest speed-up (default 2)")
    parser.add_argument("--retries", type=int, default=2,
                        help="with --quick: re-measure a row below its threshold this many "
                             "times, keeping its best speed-up (default 2)")
    parser.add_argument("--margin", type=float, default=gate.MARGIN,
                        help=f"threshold = margin x measured (default {gate.MARGIN})")
    parser.add_argument("--slowdown", type=int, default=1, metavar="FACTOR",
                        help="run gmm_fast's E-step and Lloyd kernels FACTOR times per call "
                             "(same answer): the gate's self-test (default 1)")
    args = parser.parse_args(argv)
    if args.slowdown < 1:
        parser.error(f"--slowdown should be >= 1, got {args.slowdown}")
    if args.refresh_runs < 1:
        parser.error(f"--refresh-runs should be >= 1, got {args.refresh_runs}")
    if args.refresh_thresholds and args.slowdown != 1:
        parser.error("--refresh-thresholds measures the real kernels: drop --slowdown")
    if args.refresh_thresholds and gate.level_cap_ignored():
        parser.error(f"{gate.LEVEL_VARIABLE} is set but this gmm_fast has no cpu_level() to "
                     "honour it: the table would not be that level's")
    # (the sparse KMeans rows take ~8 minutes, most of it scikit-learn's: full runs only)
    # (seeding: ~5 minutes, most of it scikit-learn's at (2e5, 128, 256): full runs only)
    parts = set(args.only or (["kmeans", "gmm", "memory"] if args.quick
                              else ["kmeans", "sparse", "gmm", "memory", "seeding"]))
    dtypes = args.dtype or list(cases.DTYPES)
    started = time.perf_counter()

    def log(line=""):
        print(line, flush=True)

    if args.label:
        log(f"label: {args.label}")
    for line in harness.environment_report():
        log(line)
    level, level_source = gate.cpu_level()
    log(f"gmm_fast CPU level: {level} (from {level_source})")
    for name in gate.slow_down(args.slowdown):
        log(f"SLOWED DOWN: {name} runs {args.slowdown} times per call (gate self-test)")
    rates = limits.measure()
    gemm = rates["gemm"]
    log(f"GEMM peak (numpy matmul 2048^2, {harness.N_THREADS} threads): "
        + ", ".join(f"{dtype} {gemm[dtype] / 1e9:.1f} GFLOP/s" for dtype in cases.DTYPES))
    log(limits.describe(rates))
    log("Cells: median ms per iteration; 'x' = peer time / gmm_fast time (> 1: gmm_fast faster).")
    out = {"label": args.label, "environment": harness.environment_report(),
           "cpu_level": level, "slowdown": args.slowdown, "gemm_peak_flops": gemm,
           "rates": rates, "rows": []}

    if args.quick:
        timing = dict(target_seconds=0.2, time_budget=1.5, max_repeats=5)
        kmeans_peers, gmm_peers = ("sklearn",), ("sklearn",)
        kmeans_workloads, gmm_workloads = cases.QUICK_KMEANS_WORKLOADS, cases.QUICK_GMM_WORKLOADS
    else:
        timing = dict(target_seconds=0.4, time_budget=6.0, max_repeats=7)
        kmeans_peers, gmm_peers = cases.KMEANS_PEERS, cases.GMM_PEERS
        kmeans_workloads, gmm_workloads = cases.KMEANS_WORKLOADS, cases.GMM_WORKLOADS

    if args.workload:
        wanted = {tuple(int(float(v)) for v in w.split(",")) for w in args.workload}
        kmeans_workloads = [w for w in kmeans_workloads if tuple(w) in wanted]
        gmm_workloads = [w for w in gmm_workloads if tuple(w) in wanted]

    if "kmeans" in parts:
        log("\n== KMeans (Lloyd), fixed iterations from the same centres ==")
        extra = () if args.quick else ("issue-13 target", "floor, gmm_fast / floor",
                                       f"whole {WHOLE_FIT_ITERATIONS}-iteration fit")
        log(table_header(kmeans_peers, extra))
        rows = kmeans_rows(kmeans_workloads, dtypes, kmeans_peers, timing, emit=lambda row: log(
            format_row(row, kmeans_peers, () if args.quick else (
                kmeans_target(row, kmeans_peers[1:]), limits.floor_cell(row, rates),
                whole_fit_cell(row, kmeans_peers)))))
        for reason in skip_reasons(rows):
            log(f"  skipped {reason}")
        out["rows"] += rows

    if "sparse" in parts and not args.quick:
        workloads = cases.SPARSE_KMEANS_WORKLOADS
        if args.workload:
            workloads = [w for w in workloads if tuple(w) in wanted]
        peers = cases.SPARSE_KMEANS_PEERS
        log(f"\n== KMeans (Lloyd) on sparse CSR X (TF-IDF-like: {cases.SPARSE_DENSITY:.1%} "
            "non-zeros, rows L2-normalised), fixed iterations from the same centres ==")
        extra = ("issue-14 target", f"whole {WHOLE_FIT_ITERATIONS}-iteration fit")
        log(table_header(peers, extra))
        rows = sparse_kmeans_rows(workloads, dtypes, peers, timing, emit=lambda row: log(
            format_row(row, peers, (kmeans_target(row, ()), whole_fit_cell(row, peers)))))
        for reason in skip_reasons(rows):
            log(f"  skipped {reason}")
        out["rows"] += rows

    if "gmm" in parts:
        log("\n== GaussianMixture (EM), fixed iterations from the same parameters ==")
        reason = cases.gmm_fast_missing()
        if reason:
            log(f"SKIPPED: {reason}. The GMM benchmarks run once it lands.")
        else:
            covariances = args.covariance or ("full", "diag", "tied", "spherical")
            extra = () if args.quick else ("issue-13 target", "% GEMM peak",
                                           "floor, gmm_fast / floor",
                                           f"whole {WHOLE_FIT_ITERATIONS}-iteration fit")
            log(table_header(gmm_peers, extra))
            rows = gmm_rows(gmm_workloads, covariances, dtypes, gmm_peers, timing,
                            emit=lambda row: log(format_row(row, gmm_peers, () if args.quick else (
                                *gmm_target(row, gemm, gmm_peers),
                                limits.floor_cell(row, rates), whole_fit_cell(row, gmm_peers)))))
            for reason in skip_reasons(rows):
                log(f"  skipped {reason}")
            out["rows"] += rows

    if "seeding" in parts and not args.quick:
        workloads = seeding.WORKLOADS
        if args.workload:
            workloads = [w for w in workloads if tuple(w) in wanted]
        log(f"\n== k-means++ seeding, and whole KMeans fits from it ({seeding.FIT_ITERATIONS} "
            "iterations), seconds ==")
        log(seeding.HEADER)
        out["seeding"] = seeding.seeding_rows(workloads, dtypes, 3, log, rates["bandwidth"])

    if "memory" in parts:
        n, d, k = (500_000, 8, 16) if args.quick else (2_000_000, 8, 16)
        log(f"\n== Peak memory of fit_predict in a fresh process (n={n}, d={d}, k={k}, "
            f"float64; extra = peak RSS - RSS with X loaded) ==")
        jobs = [("gmm_fast", "kmeans"), ("sklearn", "kmeans")]
        if cases.gmm_fast_missing():
            log(f"  gmm_fast gmm skipped: {cases.gmm_fast_missing()}")
        else:
            jobs.insert(0, ("gmm_fast", "gmm"))
        if not args.quick:
            jobs.append(("sklearn", "gmm"))
        out["memory"] = []
        for impl, model in jobs:
            m = memory.measure(impl, model, n, d, k)
            out["memory"].append(m)
            if "error" in m:
                log(f"  {impl} {model}: failed: {m['error']}")
                continue
            verdict = "within" if m["extra_mib"] <= m["budget_mib"] else "OVER"
            log(f"  {impl:8s} {model:6s}: X {m['x_mib']:.0f} MiB, extra {m['extra_mib']:.1f} MiB "
                f"({verdict} budget labels {m['labels_mib']:.1f} + {memory.BUFFER_MB} MiB)")

    status = 0
    if args.quick:
        rows = out["rows"]

        def remeasure(row):
            return measure_row(row["model"], row["n"], row["d"], row["k"], row["dtype"],
                               ("sklearn",), timing, row["covariance_type"])
        if args.refresh_thresholds:
            log(f"\n== Refreshing the {level!r} thresholds: the lowest of "
                f"{args.refresh_runs} runs ==")
            measured = gate.lowest(rows, remeasure, args.refresh_runs, log)
            unmeasured = [key for key, value in measured.items() if value is None]
            if unmeasured:
                log(f"NOT WRITTEN: no clean measurement of {', '.join(unmeasured)}; "
                    "refresh on a quieter machine")
                return 1
            gate.refresh(THRESHOLDS, level, measured, args.refresh_runs, args.margin, args.label)
            log(f"Wrote the {level!r} table of {THRESHOLDS}")
        log("\n== Quick-mode gate (speed-up over scikit-learn >= threshold) ==")
        log(f"gmm_fast CPU level: {level} (from {level_source})")
        table_level, table = gate.select_table(gate.load(THRESHOLDS), level)
        for line in gate.describe_table(level, table_level, table):
            log(line)
        if table is None:
            failures = [("every row", "no thresholds for this CPU level", None)]
        else:
            failures = gate.check(rows, table, remeasure, args.retries, log)
        for key, measured, threshold in failures:
            if isinstance(measured, float):
                measured = f"speed-up {measured:.2f} below threshold {threshold:.2f}"
            log(f"  FAIL {key}: {measured}")
        status = 1 if failures else 0
        log("PASS" if not failures else f"{len(failures)} regression(s)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1, default=float)
    log(f"\nTotal {time.perf_counter() - started:.0f} s")
    return status


if __name__ == "__main__":
    sys.exit(main())
