"""partial_fit's cost per call against fit's per iteration, on the same batch.

Stepwise EM (GaussianMixture.partial_fit) and mini-batch k-means (KMeans.partial_fit)
are one kernel pass per batch plus the M-step; fit's iteration is one pass plus its
M-step too. Both timed in one run (the machine is shared: the ratio is the result).
Target (issue 15): partial_fit's rows per second >= 0.8 of fit's per-iteration rate at
batch size 1e4. Run: ``env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/online.py``.
"""
import time
import warnings

import numpy as np

from gmm_fast import GaussianMixture, KMeans
from gmm_fast._cpu import cpu_level


def _best(call, repeats=20):
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        best = min(best, time.perf_counter() - start)
    return best


def main():
    rng = np.random.default_rng(0)
    n, d, k = 10_000, 8, 8
    X = (3.0 * rng.standard_normal((k, d)))[rng.integers(k, size=n)] + rng.standard_normal((n, d))
    print(f"CPU level {cpu_level()}; batch ({n}, {d}), k={k}; best of 20; 2 threads")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for covariance_type in ("full", "diag"):
            model = GaussianMixture(k, covariance_type=covariance_type, random_state=0).fit(X)
            start = dict(weights_init=model.weights_, means_init=model.means_,
                         precisions_init=model.precisions_)
            # fit's iteration: (fit with max_iter=6 - fit with max_iter=1) / 5, tol=0
            six = _best(lambda: GaussianMixture(k, covariance_type=covariance_type, tol=0,
                                                max_iter=6, **start).fit(X))
            one = _best(lambda: GaussianMixture(k, covariance_type=covariance_type, tol=0,
                                                max_iter=1, **start).fit(X))
            iteration = (six - one) / 5
            online = GaussianMixture(k, covariance_type=covariance_type, random_state=0).fit(X)
            call = _best(lambda: online.partial_fit(X))
            print(f"GMM {covariance_type}: fit iteration {iteration * 1e3:.2f} ms, partial_fit "
                  f"{call * 1e3:.2f} ms: rate ratio {iteration / call:.2f}")
        centers = X[:k].copy()  # (a poor start: Lloyd's six iterations all move)
        six = _best(lambda: KMeans(k, init=centers, tol=0, max_iter=6).fit(X))
        one = _best(lambda: KMeans(k, init=centers, tol=0, max_iter=1).fit(X))
        iteration = (six - one) / 5
        online = KMeans(k, init=centers).fit(X)
        call = _best(lambda: online.partial_fit(X))
        print(f"KMeans: fit iteration {iteration * 1e3:.3f} ms, partial_fit {call * 1e3:.3f} ms: "
              f"rate ratio {iteration / call:.2f}")


if __name__ == "__main__":
    main()
