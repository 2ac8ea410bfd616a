"""select_model against mclust itself: each grid cell's log-likelihood, and the grid's time.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/mclust_peer.py \
        [--data faithful,iris,mixture] [--write-test-data tests/data/mclust_grid.csv]

The grid is 1-9 components x mclust's VVV, EEE, VVI, VII (= full, tied, diag, spherical).
mclust runs in R through ``Rscript`` (a bench-only peer, not in CI: ``apt-get install
r-base-core r-cran-mclust``); the bench writes the data to a CSV file and the R script to
a temporary file, so both sides fit the same numbers. Per data set:

- mclust's ``Mclust`` with its defaults (hc start, EM to a relative change of 1e-5), timed
  inside R by ``system.time`` around the ``Mclust`` call (R's start and the CSV read
  excluded), and the same grid with EM run to a relative change of ``--mclust-tol``
  (1e-12: "converged"), from the same hc tree;
- ``select_model`` with its defaults (random_state=0), timed around the call in Python,
  and the same grid with every cell refined (``final_margin=1e300``: every start of
  every cell converged to ``final_tol=1e-8``, the best kept).

The converged grids run on data of at most ``--tight-max-rows`` rows (10 000; not on the
1e5 rows, where ours would be 72 EM runs of up to 1000 iterations).

mclust reports BIC as ``2 L - p log n`` (higher is better); the log-likelihood of a cell is
taken back from it with mclust's own parameter count (``nMclustParams``), which equals
``n_free_parameters`` for these four models. The table shows BIC in scikit-learn's sign
(``-2 L + p log n``, lower is better) for both. mclust leaves a cell NA when EM meets a
singular covariance (it does not regularise): such cells are listed as NA and not compared.

On the (1e5, 8) mixture mclust's hc (quadratic in rows) runs on a random subset of 2000
rows, ``initialization = list(subset = ...)`` drawn after ``set.seed(0)`` (mclust 6 does the
same by default above ``mclust.options("subset")`` = 2000 rows); select_model's hc likewise
samples 2000 rows.

Times are the least of ``--repeats`` runs (3; 1 on the 1e5 rows). In the table, after
the start that won: ``!`` its starts disagree, ``R`` refined by the defaults, ``ridge`` the
converged fit is held up by ``reg_covar`` (a component's covariance, in some direction,
is under 100 reg_covar: singular without it, a fit mclust would refuse).

Exits non-zero only on errors (R missing, a fit raising), not on differences.
"""
import argparse
import csv
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from gmm_fast import select_model
from gmm_fast._cpu import cpu_level

TYPES = {"full": "VVV", "tied": "EEE", "diag": "VVI", "spherical": "VII"}
KS = range(1, 10)

R_SCRIPT = r"""
suppressPackageStartupMessages(library(mclust))
args <- commandArgs(trailingOnly = TRUE)
X <- as.matrix(read.csv(args[1]))
subset_size <- as.integer(args[3])
tight <- as.numeric(args[4])
models <- strsplit(args[5], ",")[[1]]
G <- as.integer(strsplit(args[6], ",")[[1]])
repeats <- as.integer(args[7])
init <- list()
if (subset_size > 0 && subset_size < nrow(X)) {
  set.seed(0)
  init$subset <- sample.int(nrow(X), subset_size)
}
grid <- function(tol, repeats = 1) {
  control <- emControl(tol = c(tol, sqrt(.Machine$double.eps)))
  fit <- NULL  # (set by <<- from replicate's closure)
  seconds <- replicate(repeats, system.time(
    fit <<- Mclust(X, G = G, modelNames = models, initialization = init,
                   control = control, verbose = FALSE))[["elapsed"]])
  list(fit = fit, seconds = min(seconds))
}
loglik <- function(bic) {
  out <- bic
  for (m in colnames(bic)) for (g in rownames(bic)) {
    p <- nMclustParams(m, ncol(X), as.integer(g))
    out[g, m] <- (bic[g, m] + p * log(nrow(X))) / 2
  }
  out
}
default <- grid(1e-5, repeats)
rows <- data.frame()
bic <- default$fit$BIC
ll <- loglik(bic)
if (tight > 0) {
  conv <- grid(tight)
  ll_tight <- loglik(conv$fit$BIC)
  cat("seconds_tight", conv$seconds, "\n")
}
for (m in colnames(bic)) for (g in rownames(bic)) {
  rows <- rbind(rows, data.frame(
    n_components = as.integer(g), model = m, bic = bic[g, m], log_likelihood = ll[g, m],
    log_likelihood_tight = if (tight > 0) ll_tight[g, m] else NA))
}
write.csv(rows, args[2], row.names = FALSE)
cat("seconds", default$seconds, "\n")
cat("best", default$fit$modelName, default$fit$G, "\n")
cat("loglik", sprintf("%.6f", default$fit$loglik), "\n")
cat("version", R.version.string, "mclust", as.character(packageVersion("mclust")), "\n")
"""


def load(name):
    """One array per data set, written to CSV for R: both sides fit the same numbers."""
    if name == "faithful":
        path = Path(__file__).parents[1] / "tests" / "data" / "faithful.csv"
        return np.loadtxt(path, delimiter=",", skiprows=1)
    if name == "iris":
        from sklearn.datasets import load_iris
        return load_iris().data  # equal to R's iris[, 1:4] cell for cell (checked)
    if name == "mixture":
        sys.path.insert(0, str(Path(__file__).parent))
        from selection import mixture  # the (1e5, 8) mixture of bench/selection.py
        return mixture()
    raise ValueError(f"unknown data set {name!r}")


def run_mclust(X, *, tight, subset, repeats=1, ks=KS, types=TYPES):
    """mclust's grid in R: (cells {(k, type): dict}, info dict)."""
    with tempfile.TemporaryDirectory() as tmp:
        data, out, script = (Path(tmp) / name for name in ("X.csv", "cells.csv", "grid.R"))
        # repr precision: R reads back the same doubles
        np.savetxt(data, X, delimiter=",", fmt="%.17g",
                   header=",".join(f"x{j}" for j in range(X.shape[1])), comments="")
        script.write_text(R_SCRIPT)
        argv = ["Rscript", "--vanilla", str(script), str(data), str(out), str(subset),
                repr(tight), ",".join(types[t] for t in types), ",".join(map(str, ks)),
                str(repeats)]
        start = time.perf_counter()
        result = subprocess.run(argv, capture_output=True, text=True, check=False)
        process_seconds = time.perf_counter() - start
        if result.returncode != 0:
            raise RuntimeError(f"Rscript failed ({result.returncode}):\n{result.stderr}")
        info = {"process_seconds": [repr(process_seconds)]}
        for line in result.stdout.splitlines():
            key, *values = line.split()
            info[key] = values
        model_type = {v: k for k, v in types.items()}
        cells = {}
        with open(out, newline="") as f:
            for row in csv.DictReader(f):
                value = {key: (math.nan if row[key] == "NA" else float(row[key]))
                         for key in ("bic", "log_likelihood", "log_likelihood_tight")}
                cells[int(row["n_components"]), model_type[row["model"]]] = value
    return cells, info


def run_ours(X, repeats=1, **kwargs):
    """select_model's result and its least time over ``repeats`` runs."""
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        selection = select_model(X, random_state=0, **kwargs)
        seconds.append(time.perf_counter() - start)
    return selection, min(seconds)


def held_by_ridge(model, reg_covar=1e-6):
    """Whether a component's covariance is >= 1% reg_covar in some direction: a fit
    that is singular without the ridge (a component on <= n_features points), which
    mclust, unregularised, refuses (NA)."""
    covariances = model.covariances_
    if model.covariance_type in ("full", "tied"):
        least = np.linalg.eigvalsh(covariances).min()
    else:
        least = covariances.min()
    return least < 100 * reg_covar


def _fmt(value, spec):
    """``format(value, spec)``, or "NA" as wide for NaN (a cell mclust refused)."""
    if math.isnan(value):
        return "NA".rjust(int(spec.split(".")[0] or 0))
    return format(value, spec)


def compare(name, X, args):
    subset = 2000 if X.shape[0] > 2000 else 0
    tight = args.mclust_tol if X.shape[0] <= args.tight_max_rows else 0.0
    repeats = args.repeats if X.shape[0] <= args.tight_max_rows else 1
    theirs, info = run_mclust(X, tight=tight, subset=subset, repeats=repeats)
    ours, seconds = run_ours(X, repeats)
    # every cell refined: only where mclust's converged grid runs too (on 1e5 rows it
    # would be 72 EM runs of up to 1000 iterations)
    refined = run_ours(X, final_margin=1e300)[0] if tight else ours
    table = {(r["n_components"], r["covariance_type"]): r for r in ours.rows}
    table_refined = {(r["n_components"], r["covariance_type"]): (r, m)
                     for r, m in zip(refined.rows, refined.models)}
    print(f"\n== {name} {X.shape}: mclust {info['version'][-1]}, {' '.join(info['version'][:-2])}"
          + (f"; mclust hc on a subset of {subset} rows (set.seed(0))" if subset else ""))
    print("   L = log-likelihood. mclust: defaults (tol 1e-5 relative)"
          + (f", and converged (tol {tight:g})" if tight else "")
          + ". ours: select_model defaults (contenders refined)"
          + (", and every cell refined (final_margin=1e300)" if tight else "")
          + ". BIC = -2 L + p log n (lower is better) for both. After the start: ! starts "
          "disagree, R refined, ridge held up by reg_covar.")
    header = (f"{'k':>2} {'type':9} {'mclust L':>14} {'ours L':>14} {'diff':>10} "
              f"{'mclust L conv':>14} {'ours L conv':>14} {'diff conv':>10} "
              f"{'mclust BIC':>12} {'ours BIC':>12}  start")
    print(header)
    better, worse, same, na, degenerate = [], [], [], 0, 0
    for (k, covariance_type), cell in theirs.items():
        row, (row_refined, model_refined) = (table[k, covariance_type],
                                             table_refined[k, covariance_type])
        ridge = model_refined is not None and held_by_ridge(model_refined)
        bic_theirs = -cell["bic"]
        diff = row["log_likelihood"] - cell["log_likelihood"]
        conv = cell["log_likelihood_tight"]
        diff_conv = row_refined["log_likelihood"] - conv
        if math.isnan(cell["log_likelihood"]):
            na += 1
        elif not math.isnan(conv):
            if abs(diff_conv) <= 1e-4:
                same.append(abs(diff_conv))
            elif diff_conv > 0:
                better.append(diff_conv)
                degenerate += ridge
            else:
                worse.append(-diff_conv)
        print(f"{k:>2} {covariance_type:9} {_fmt(cell['log_likelihood'], '14.6f')} "
              f"{row['log_likelihood']:14.6f} {_fmt(diff, '10.4g')} {_fmt(conv, '14.6f')} "
              f"{row_refined['log_likelihood']:14.6f} {_fmt(diff_conv, '10.4g')} "
              f"{_fmt(bic_theirs, '12.4f')} {row['bic']:12.4f}  {row['start']}"
              + (" !" if row["starts_disagree"] else "") + (" R" if row["refined"] else "")
              + (" ridge" if ridge else ""))
    best = ours.rows[ours.best_index]
    model, g = info["best"]
    print(f"   picks: mclust {model},{g} (L {info['loglik'][0]}); ours "
          f"{best['covariance_type']}/{best['n_components']} ({TYPES[best['covariance_type']]}) "
          f"L {best['log_likelihood']:.6f}")
    if tight:
        print(f"   converged cells: same optimum (|diff| <= 1e-4) {len(same)} (max |diff| "
              f"{max(same, default=0):.2g}), ours better {len(better)} (by up to "
              f"{max(better, default=0):.3g}; {degenerate} of them held by the ridge), "
              f"ours worse {len(worse)} (by up to "
              f"{max(worse, default=0):.3g}); mclust NA {na}")
    mclust_seconds = float(info["seconds"][0])
    print(f"   grid time: mclust {mclust_seconds:.2f} s (system.time inside R), select_model "
          f"{seconds:.2f} s: mclust/ours {mclust_seconds / seconds:.1f}x "
          f"[{cpu_level()}, load {os.getloadavg()[0]:.2f}]; the whole Rscript process "
          f"{float(info['process_seconds'][0]):.1f} s (R's start, CSV, "
          + ("both grids)" if tight else "one grid)"))
    return theirs, info


def write_test_data(path, results, command):
    """mclust's per-cell values as the CSV tests/test_selection.py reads."""
    first_info = next(iter(results.values()))[1]
    lines = [f"# mclust {first_info['version'][-1]} on {' '.join(first_info['version'][:-2])}: "
             "Mclust(X, G = 1:9, modelNames = c('VVV','EEE','VVI','VII')) per cell",
             f"# written by: {command}",
             f"# on {time.strftime('%Y-%m-%d', time.gmtime())} (UTC). faithful = "
             "tests/data/faithful.csv, iris = sklearn.datasets.load_iris().data "
             "(equal to R's iris[, 1:4]).",
             "# bic_mclust: mclust's sign (2 L - p log n, higher is better); "
             "log_likelihood: mclust's defaults (EM to relative tol 1e-5);",
             "# log_likelihood_converged: the same start, EM to relative tol 1e-12. NA: mclust "
             "refused the cell (singular covariance).",
             "data,n_components,covariance_type,mclust_model,bic_mclust,log_likelihood,"
             "log_likelihood_converged"]
    for name, (cells, _) in results.items():
        for (k, covariance_type), cell in sorted(cells.items(), key=lambda item: (
                list(TYPES).index(item[0][1]), item[0][0])):
            values = [_fmt(cell[key], ".10f")
                      for key in ("bic", "log_likelihood", "log_likelihood_tight")]
            lines.append(f"{name},{k},{covariance_type},{TYPES[covariance_type]},"
                         + ",".join(values))
    Path(path).write_text("\n".join(lines) + "\n")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default="faithful,iris,mixture")
    parser.add_argument("--mclust-tol", type=float, default=1e-12)
    parser.add_argument("--tight-max-rows", type=int, default=10_000,
                        help="run mclust's converged grid only on data this small")
    parser.add_argument("--repeats", type=int, default=3,
                        help="timed runs of each grid (the least is shown; 1 on large data)")
    parser.add_argument("--write-test-data", metavar="CSV",
                        help="write mclust's faithful and iris cells to this file")
    args = parser.parse_args(argv)
    print(f"CPU level {cpu_level()}, load {os.getloadavg()}")
    results = {}
    for name in args.data.split(","):
        results[name] = compare(name, load(name), args)
    if args.write_test_data:
        small = {name: results[name] for name in ("faithful", "iris") if name in results}
        write_test_data(args.write_test_data, small,
                        "python bench/mclust_peer.py --data faithful,iris --write-test-data "
                        + args.write_test_data)
    return 0


if __name__ == "__main__":
    sys.exit(main())
