"""Per-iteration cost of EM with missing cells (GaussianMixture(missing_values="marginalize")).

One EM iteration (``_em.em_step``: complete rows through the kernels, rows with NaN
cells through ``_missing``) with 0%, 5% and 30% of cells missing completely at random,
against the complete-data iteration on the same rows, in one run: each round times the
three in turn, so a burst of load from other jobs hits neighbours alike, and the ratio
to the complete-data iteration is taken per round (median and range over the rounds;
the machine is shared). Also prints the number of distinct missingness patterns.

``--patterns`` measures the cost of distinct missingness patterns instead: every row
misses exactly q of its d cells (a quarter), the rows share ``P`` distinct patterns
(each used by n / P rows; P from 1 to every row its own), so the rows' own work is the
same along the curve and only the pattern count changes. ``_missing_kernel`` factors
the q x q block of each component's precision once per run of rows sharing a pattern
(rows are sorted by pattern; a chunk of at most 64 rows starts a new run), so time
grows with P; the fitted slope is the cost of one distinct pattern.

Run: ``env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/missing_values.py``
(``--patterns`` for the curve).
"""
import argparse
import functools
import math
import os
import time
import warnings

import numpy as np

from gmm_fast import GaussianMixture
from gmm_fast._cpu import cpu_level
from gmm_fast._em import em_step
from gmm_fast._missing import MissingRows
from gmm_fast._threads import sequential_blas


def _interleaved_seconds(steps, rounds, clock=time.perf_counter):
    """Seconds of each step per round, the steps timed in turn within each round (after
    one untimed call each: the first copies and sorts the rows with NaN)."""
    for step in steps.values():
        step()
    times = {name: [] for name in steps}
    for _ in range(rounds):
        for name, step in steps.items():
            start = clock()
            step()
            times[name].append(clock() - start)
    return {name: np.array(seconds) for name, seconds in times.items()}


def _iteration_seconds(step, repeats, clock=time.perf_counter):
    """Best of ``repeats`` timings of ``step``."""
    best = np.inf
    for _ in range(repeats):
        start = clock()
        step()
        best = min(best, clock() - start)
    return best


def _blobs(n, d, k, rng):
    """Overlapping blobs around k random centres."""
    centres = 3.0 * rng.standard_normal((k, d))
    return centres[rng.integers(k, size=n)] + rng.standard_normal((n, d))


def _start(X, k, covariance_type):
    """Parameters after 3 EM iterations on 20,000 rows (the point every timing starts from)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gm = GaussianMixture(k, covariance_type=covariance_type, max_iter=3,
                             random_state=0).fit(X[:20_000])
    return gm.weights_, gm.means_, gm.covariances_, gm.precisions_cholesky_


def with_patterns(X, n_missing, n_patterns, rng):
    """X with ``n_missing`` NaN cells in every row, in ``n_patterns`` distinct patterns
    (each used by the same number of rows, give or take one)."""
    n_samples, n_features = X.shape
    n_patterns = min(n_patterns, n_samples, math.comb(n_features, n_missing))
    patterns = np.empty((0, n_missing), dtype=np.intp)
    while len(patterns) < n_patterns:  # random q-subsets of the features, distinct
        draws = np.sort(rng.random((2 * n_patterns, n_features)).argsort(axis=1)[:, :n_missing],
                        axis=1)
        patterns = np.unique(np.concatenate([patterns, draws]), axis=0)
    patterns = patterns[rng.permutation(len(patterns))[:n_patterns]]
    which = rng.permutation(np.arange(n_samples) % n_patterns)
    holes = X.copy()
    holes[np.arange(n_samples)[:, None], patterns[which]] = np.nan
    return holes


def pattern_curve(n_samples, n_features, k, repeats, rng, threads=2, clock=time.perf_counter,
                  counts=(1, 10, 100, 1_000, 10_000, None)):
    """Seconds per iteration against the number of distinct patterns (None: every row
    its own, or every q-subset if there are fewer), and the fitted cost per pattern."""
    X = _blobs(n_samples, n_features, k, rng)
    n_missing = n_features // 4
    print(f"(n, d, k) = ({n_samples}, {n_features}, {k}), every row missing {n_missing} "
          f"cells; best of {repeats}; load {os.getloadavg()[0]:.2f}")
    for covariance_type in ("full", "diag"):
        params = _start(X, k, covariance_type)
        with sequential_blas():
            base = _iteration_seconds(
                lambda: em_step(X, None, params, covariance_type, 1e-6, threads), repeats,
                clock)
            points = []
            most = min(n_samples, math.comb(n_features, n_missing))
            for count in sorted({min(count or most, most) for count in counts}):
                holes = with_patterns(X, n_missing, count, rng)
                missing = MissingRows(holes)
                patterns = len(np.unique(np.isnan(holes), axis=0))
                seconds = _iteration_seconds(
                    lambda: em_step(holes[:0], None, params, covariance_type, 1e-6, threads,
                                    missing), repeats, clock)
                points.append((patterns, seconds))
        sizes, times = np.array(points).T
        slope = np.polyfit(sizes, times, 1)[0]
        print(f"  {covariance_type}: complete data {base * 1e3:.1f} ms per iteration; with "
              "holes, patterns: ms (x complete) = " + ", ".join(
                  f"{int(p)}: {t * 1e3:.1f} ({t / base:.1f}x)" for p, t in points))
        print(f"  {covariance_type}: {slope * 1e6:.2f} us per distinct pattern "
              f"({slope * 1e9 / k:.0f} ns per pattern and component; least squares over the "
              f"curve); load {os.getloadavg()[0]:.2f}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=200_000)
    parser.add_argument("--d", type=int, default=16)
    parser.add_argument("--k", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3,
                        help="best of (--patterns), or rounds of interleaved timings")
    parser.add_argument("--cpu-time", action="store_true",
                        help="one thread, timed by process CPU time (steadier under load)")
    parser.add_argument("--patterns", action="store_true",
                        help="the cost per distinct pattern: (2e5, 16) and (5e4, 64)")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    threads, clock = (1, time.process_time) if args.cpu_time else (2, time.perf_counter)
    print(f"CPU level {cpu_level()}; {threads} thread(s), "
          f"{'CPU' if args.cpu_time else 'wall'} time")
    if args.patterns:
        pattern_curve(args.n, args.d, args.k, args.repeats, rng, threads, clock)
        pattern_curve(args.n // 4, 4 * args.d, args.k, args.repeats, rng, threads, clock)
        return
    X = _blobs(args.n, args.d, args.k, rng)
    print(f"(n, d, k) = ({args.n}, {args.d}, {args.k}); load {os.getloadavg()[0]:.2f}")
    for covariance_type in ("full", "diag"):
        params = _start(X, args.k, covariance_type)
        steps = {"complete": lambda: em_step(X, None, params, covariance_type, 1e-6, threads)}
        for fraction in (0.05, 0.30):
            holes = X.copy()
            holes[rng.random(X.shape) < fraction] = np.nan
            holes = holes[~np.isnan(holes).all(axis=1)]
            missing = MissingRows(holes)
            incomplete = np.isnan(holes).any(axis=1)
            patterns = len(np.unique(np.isnan(holes[incomplete]), axis=0))
            print(f"  {fraction:.0%} cells missing: {missing.n_rows} rows with NaN, "
                  f"{patterns} distinct patterns")
            steps[f"{fraction:.0%}"] = functools.partial(
                em_step, holes[missing.complete], None, params, covariance_type, 1e-6,
                threads, missing)
        with sequential_blas():
            times = _interleaved_seconds(steps, args.repeats, clock)
        base = times["complete"]
        line = f"{covariance_type}: complete data {np.median(base) * 1e3:.1f} ms per iteration"
        for name, seconds in list(times.items())[1:]:
            ratios = seconds / base  # per round: a burst of load hits neighbours alike
            line += (f"; {name} missing {np.median(seconds) * 1e3:.1f} ms, "
                     f"{np.median(ratios):.2f}x complete (rounds {ratios.min():.2f}-"
                     f"{ratios.max():.2f}x)")
        print(line + f"; medians over {args.repeats} rounds, load {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
