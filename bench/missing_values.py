"""Per-iteration cost of EM with missing cells (GaussianMixture(missing_values="marginalize")).

One EM iteration (``_em.em_step``: complete rows through the kernels, rows with NaN
cells through ``_missing``) with 0%, 5% and 30% of cells missing completely at random,
against the complete-data iteration on the same rows, in one run (ratios: the machine
is shared). Prints the number of distinct missingness patterns and the extra
cost per row with NaN cells (``_missing_kernel`` factors each row's q x q block, not
one per pattern: its cost grows with the rows and q, not with the patterns). Run: ``env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/missing_values.py``.
"""
import argparse
import time
import warnings

import numpy as np

from gmm_fast import GaussianMixture
from gmm_fast._cpu import cpu_level
from gmm_fast._em import em_step
from gmm_fast._missing import MissingRows
from gmm_fast._threads import sequential_blas


def _iteration_seconds(step, repeats):
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        best = min(best, time.perf_counter() - start)
    return best


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=200_000)
    parser.add_argument("--d", type=int, default=16)
    parser.add_argument("--k", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    centres = 3.0 * rng.standard_normal((args.k, args.d))
    X = centres[rng.integers(args.k, size=args.n)] + rng.standard_normal((args.n, args.d))
    print(f"CPU level {cpu_level()}; (n, d, k) = ({args.n}, {args.d}, {args.k}); 2 threads; "
          "best of", args.repeats)
    for covariance_type in ("full", "diag"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            gm = GaussianMixture(args.k, covariance_type=covariance_type, max_iter=3,
                                 random_state=0).fit(X[:20_000])
        params = (gm.weights_, gm.means_, gm.covariances_, gm.precisions_cholesky_)
        with sequential_blas():
            base = _iteration_seconds(
                lambda: em_step(X, None, params, covariance_type, 1e-6, 2), args.repeats)
            print(f"{covariance_type}: complete data {base * 1e3:.1f} ms per iteration")
            for fraction in (0.05, 0.30):
                holes = X.copy()
                holes[rng.random(X.shape) < fraction] = np.nan
                holes = holes[~np.isnan(holes).all(axis=1)]
                missing = MissingRows(holes)
                incomplete = np.isnan(holes).any(axis=1)
                patterns = len(np.unique(np.isnan(holes[incomplete]), axis=0))
                rows = holes[missing.complete]
                seconds = _iteration_seconds(
                    lambda: em_step(rows, None, params, covariance_type, 1e-6, 2, missing),
                    args.repeats)
                print(f"  {fraction:.0%} cells missing: {missing.n_rows} rows with NaN, "
                      f"{patterns} distinct patterns: {seconds * 1e3:.1f} ms "
                      f"({seconds / base:.1f}x complete; "
                      f"{(seconds - base) / missing.n_rows * 1e6:.1f} us more per row with NaN)")


if __name__ == "__main__":
    main()
