"""Wall time of select_model's default grid (1-9 x 4 covariance types), against the same
grid run with scikit-learn.

    python bench/selection.py [n_threads]
    python bench/selection.py --cluster [--repeat 2]

faithful (272 x 2, tests/data), iris (150 x 4) and a (1e5, 8) mixture of 5 full
components; prints seconds, the chosen model and its log-likelihood. Then the same grid
of scikit-learn GaussianMixture fits (defaults, BIC in the same sign), with n_init 1, 5
and 20 (1 only on the 1e5 rows): its time, its choice and log-likelihood, so the ratio
is taken at the n_init that reaches gmm_fast's answer, if any does.

``--cluster``: the same grid on the (1e5, 8) mixture run here (n_threads=None: all
cores) and on a ``distributed.LocalCluster`` of 2 workers x 1 thread, with the
in-memory X and ``client=`` and with X as a dask array of 8 blocks; wall times (the
cluster's start not included), their ratios, and a check that the tables and the
chosen models are equal.
"""
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from sklearn.datasets import load_iris

from gmm_fast import select_model

TYPES = ("full", "tied", "diag", "spherical")


def sklearn_grid(X, n_init):
    """The 1-9 x 4 grid with scikit-learn: (seconds, (k, type), log-likelihood)."""
    from sklearn.mixture import GaussianMixture
    best = None
    start = time.perf_counter()
    for k in range(1, 10):
        for covariance_type in TYPES:
            model = GaussianMixture(k, covariance_type=covariance_type, n_init=n_init,
                                    random_state=0).fit(X)
            bic = model.bic(X)
            if best is None or bic < best[0]:
                best = (bic, (k, covariance_type), model.score(X) * len(X))
    return time.perf_counter() - start, best[1], best[2]


def mixture(n_samples=100_000, n_features=8, n_components=5, seed=0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(n_components, size=n_samples)
    means = rng.normal(0, 4, (n_components, n_features))
    factors = rng.normal(0, 1, (n_components, n_features, n_features)) / np.sqrt(n_features)
    return means[labels] + np.einsum("nij,nj->ni", factors[labels],
                                     rng.normal(size=(n_samples, n_features)))


def _same(a, b):
    """Whether two selections have equal tables (but the timings) and best models."""
    rows = all({**x, "seconds": 0} == {**y, "seconds": 0} for x, y in zip(a.rows, b.rows))
    return rows and a.best_index == b.best_index and np.array_equal(
        a.best_model.means_, b.best_model.means_)


def cluster(repeat):
    """Serial against a 2-worker LocalCluster on the (1e5, 8) mixture's 1-9 x 4 grid."""
    import dask.array as da
    import distributed

    from gmm_fast import cpu_level

    X = mixture()
    print(f"cpu level {cpu_level()}; (1e5, 8) mixture, 1-9 x 4 grid, best of {repeat}")
    times = {}

    def timed(name, run):
        best = None
        for _ in range(repeat):
            start = time.perf_counter()
            selection = run()
            seconds = time.perf_counter() - start
            best = seconds if best is None else min(best, seconds)
        times[name] = best
        return selection

    serial = timed("serial", lambda: select_model(X, random_state=0))
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as local, \
            distributed.Client(local) as client:
        scattered = timed("cluster", lambda: select_model(X, random_state=0, client=client))
        Xd = da.from_array(X, chunks=(-(-len(X) // 8), X.shape[1]))
        blocks = timed("dask", lambda: select_model(Xd, random_state=0))
    print(f"serial (n_threads=None) {times['serial']:.2f} s, best {serial.best_params}")
    for name, selection in (("cluster", scattered), ("dask", blocks)):
        label = "LocalCluster 2x1, client=" if name == "cluster" else (
            "LocalCluster 2x1, dask X (8 blocks)")
        print(f"{label}: {times[name]:.2f} s, {times['serial'] / times[name]:.2f}x faster "
              f"than serial; same table and model: {_same(serial, selection)}")


def main():
    if "--cluster" in sys.argv:
        repeat = int(sys.argv[sys.argv.index("--repeat") + 1]) if "--repeat" in sys.argv else 2
        cluster(repeat)
        return
    n_threads = int(sys.argv[1]) if len(sys.argv) > 1 else None
    faithful = np.loadtxt(Path(__file__).parents[1] / "tests" / "data" / "faithful.csv",
                          delimiter=",", skiprows=1)
    for name, X in [("faithful", faithful), ("iris", load_iris().data),
                    ("mixture 1e5x8", mixture())]:
        start = time.perf_counter()
        selection = select_model(X, random_state=0, n_threads=n_threads)
        seconds = time.perf_counter() - start
        best = selection.rows[selection.best_index]
        print(f"{name}: {seconds:.2f} s, best {selection.best_params}, log-likelihood "
              f"{best['log_likelihood']:.6f}, BIC {best['bic']:.4f}, start {best['start']}")
        for n_init in ((1,) if len(X) > 10_000 else (1, 5, 20)):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                theirs, choice, log_likelihood = sklearn_grid(X, n_init)
            print(f"  scikit-learn n_init={n_init}: {theirs:.2f} s ({theirs / seconds:.1f}x "
                  f"gmm_fast's time), best {choice}, log-likelihood {log_likelihood:.6f}")


if __name__ == "__main__":
    main()
