"""Wall time of select_model's default grid (1-9 x 4 covariance types), against the same
grid run with scikit-learn.

    python bench/selection.py [n_threads]

faithful (272 x 2, tests/data), iris (150 x 4) and a (1e5, 8) mixture of 5 full
components; prints seconds, the chosen model and its log-likelihood. Then the same grid
of scikit-learn GaussianMixture fits (defaults, BIC in the same sign), with n_init 1, 5
and 20 (1 only on the 1e5 rows): its time, its choice and log-likelihood, so the ratio
is taken at the n_init that reaches gmm_fast's answer, if any does.
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


def main():
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
