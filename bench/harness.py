"""Timing machinery shared by ``run.py`` and the pytest-benchmark files.

Seconds per iteration are measured by difference: a fit capped at
``max_iter=N`` and one capped at ``max_iter=N+M`` from the same initial
parameters (``tol=0`` so neither stops early) cost the same fixed work
(validation, initialisation, the final E-step/assignment); so
``(t(N+M) - t(N)) / M`` is the cost of one iteration alone. Each repeat times
the pair back to back for every implementation in turn, and medians over
repeats are kept, which is robust to the other jobs sharing this machine. ``M`` is chosen per implementation from a
pilot run so that the ``M`` iterations take about ``target_seconds``: a fast
implementation gets more iterations, so its difference is not lost in noise.
"""
import os
import statistics
import subprocess
import time
import warnings

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

#: Threads given to every implementation (the documented workloads are "2 threads").
N_THREADS = 2


class Unavailable(Exception):
    """An implementation that cannot run here (not installed, unsupported dtype...)."""


# Idle time before every timed fit. OpenBLAS's worker threads spin for ~0.1 s after each
# multi-threaded BLAS call before they sleep; on 2 cores they take CPU from whatever
# runs next. A gmm_fast spherical EM iteration (5e4, 64, 32) measured 8.7-12 ms right
# after a numpy GEMM, 6.5-7.3 after 0.3 s idle, 6.4-7.0 after 0.1-0.2 s: so each
# implementation is timed alone, not in the wake of the previous one's thread pool.
SETTLE_SECONDS = 0.15


def settle():
    """Let the previous implementation's thread pools go idle (see SETTLE_SECONDS)."""
    time.sleep(SETTLE_SECONDS)


def timed(fit, max_iter):
    """Wall time of ``fit(max_iter)`` and the number of iterations it reports."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning is the point of tol=0
        start = time.perf_counter()
        n_iter = fit(max_iter)
        elapsed = time.perf_counter() - start
    return elapsed, n_iter


def side_by_side(fits, n_base=1, target_seconds=0.3, max_extra=40, time_budget=4.0,
                 max_repeats=5, min_repeats=3):
    """Median seconds of one iteration of each fit, timed in turns, by the N / N+M difference.

    Parameters
    ----------
    fits : dict of str to callable
        ``fit(max_iter) -> n_iter`` runs one fit from fixed initial parameters
        and returns the number of iterations it ran. The first entry is the
        one the ratios are taken against (gmm_fast).
    n_base : int, default=1
        ``N``: iterations of the short run.
    target_seconds : float, default=0.3
        Wanted duration of the ``M`` extra iterations of each implementation,
        and at least twice its fixed cost: a large fixed cost (scikit-learn
        copies and centres X at d=784) otherwise buries the difference in noise.
    max_extra : int, default=40
        Upper bound on ``M``.
    time_budget : float, default=4.0
        Seconds of timed runs to aim for per implementation; sets the number
        of repeats (``min_repeats`` to ``max_repeats``, the slowest
        implementation decides).

    Returns
    -------
    results : dict of str to dict
        Per implementation: ``per_iter`` (median seconds per iteration),
        ``fixed`` (median cost of everything but the iterations), ``extra``
        (M), ``repeats``, ``early_stop`` (True when a run reported fewer
        iterations than asked, which would make the figure wrong), ``noisy``
        (the median difference was not positive) and, except
        for the first, ``ratio``: the median over repeats of its per-iteration
        time divided by the first one's in the same repeat. Timing the
        implementations in turns within each repeat lets a burst of load from
        other jobs hit all of them alike, so ratios are steadier than times.
    """
    plan, failed = {}, {}
    for name, fit in list(fits.items()):
        # Pilot: warms caches and thread pools, and sizes M. A peer that fails on a
        # workload (oneDAL's em_gmm gives up on some covariances) is reported, not fatal.
        try:
            settle()
            t_short, _ = timed(fit, n_base)
            settle()
            t_long, _ = timed(fit, n_base + 2)
        except Exception as exc:  # noqa: BLE001 - any peer error becomes a table entry
            if name == next(iter(fits)):
                raise
            failed[name] = {"skip": f"failed: {type(exc).__name__}: {str(exc).splitlines()[0]}"}
            del fits[name]
            continue
        pilot = max((t_long - t_short) / 2, 1e-4)
        fixed_cost = max(t_short - n_base * pilot, 0.0)
        wanted = max(target_seconds, 2 * fixed_cost)
        extra = int(min(max_extra, max(2, np.ceil(wanted / pilot))))
        plan[name] = (extra, 2 * t_short + extra * pilot)
    repeats = int(min(max_repeats,
                      max(min_repeats, time_budget // max(c for _, c in plan.values()))))

    per_iter = {name: [] for name in fits}
    fixed = {name: [] for name in fits}
    early_stop = dict.fromkeys(fits, False)
    for _ in range(repeats):
        for name, fit in fits.items():
            extra = plan[name][0]
            settle()
            t_short, it_short = timed(fit, n_base)
            settle()
            t_long, it_long = timed(fit, n_base + extra)
            early_stop[name] |= it_short != n_base or it_long != n_base + extra
            per_iter[name].append((t_long - t_short) / extra)
            fixed[name].append(t_short - n_base * per_iter[name][-1])
    first = next(iter(fits))
    results = {}
    for name in fits:
        results[name] = {"per_iter": statistics.median(per_iter[name]),
                         "fixed": statistics.median(fixed[name]), "extra": plan[name][0],
                         "repeats": repeats, "early_stop": bool(early_stop[name])}
        # A difference <= 0 means load from other jobs swamped the M iterations.
        results[name]["noisy"] = results[name]["per_iter"] <= 0
        pairs = [p / q for p, q in zip(per_iter[name], per_iter[first]) if p > 0 and q > 0]
        if name != first and pairs:
            results[name]["ratio"] = statistics.median(pairs)
            results[name]["ratios"] = pairs  # (per repeat: the range behind the median)
    results.update(failed)
    return results


def limited(fit):
    """``fit`` run under a threadpoolctl limit of N_THREADS (OpenMP and BLAS)."""
    def run(max_iter):
        with threadpool_limits(limits=N_THREADS):
            return fit(max_iter)
    return run


def gemm_peak(dtype, size=2048, repeats=5):
    """Measured matmul flop rate of numpy's BLAS on N_THREADS threads (best of ``repeats``)."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((size, size)).astype(dtype)
    b = rng.standard_normal((size, size)).astype(dtype)
    out = np.empty_like(a)
    best = np.inf
    with threadpool_limits(limits=N_THREADS, user_api="blas"):
        np.matmul(a, b, out=out)
        for _ in range(repeats):
            start = time.perf_counter()
            np.matmul(a, b, out=out)
            best = min(best, time.perf_counter() - start)
    return 2.0 * size ** 3 / best


def blas_report():
    """One line per thread pool loaded (BLAS and OpenMP): library, version, kernel, threads."""
    import scipy.linalg  # noqa: F401  (so scipy's BLAS shows up too)
    lines = []
    for pool in threadpool_info():
        lines.append(f"{pool['user_api']}/{pool['internal_api']} {pool.get('version')} "
                     f"kernel={pool.get('architecture', '-')} threads={pool['num_threads']} "
                     f"({os.path.basename(pool['filepath'])})")
    return lines


def cpuinfo(path="/proc/cpuinfo"):
    """The first processor's fields of ``path`` (``{"model name": ..., "flags": ...}``),
    or {} where it cannot be read."""
    fields = {}
    try:
        with open(path) as f:
            for line in f:
                if not line.strip():
                    break
                name, _, value = line.partition(":")
                fields[name.strip()] = value.strip()
    except OSError:
        pass
    return fields


def cpu_model():
    """The CPU's model name from /proc/cpuinfo, or "unknown"."""
    return cpuinfo().get("model name", "unknown")


def environment_report():
    """Lines describing the run: commit, CPU, threads, BLAS and the OPENBLAS_* variables."""
    import gmm_fast
    here = os.path.dirname(os.path.abspath(__file__))
    try:
        commit = subprocess.run(["git", "-C", here, "describe", "--always", "--dirty"],
                                capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    cpu = cpu_model()
    lines = [f"bench checkout: {commit}; gmm_fast {gmm_fast.__version__} imported from "
             f"{os.path.dirname(gmm_fast.__file__)}",
             f"cpu: {cpu}, {os.cpu_count()} logical cores; {N_THREADS} threads per implementation"]
    leaked = [v for v in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE") if v in os.environ]
    if leaked:
        lines.append(f"WARNING: {', '.join(leaked)} set: BLAS figures are slowed; run under "
                     "`env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE`.")
    lines += ["threadpool: " + line for line in blas_report()]
    return lines
