"""EM with missing cells: gmm_fast against pomegranate's mixture on masked tensors.

Issue 16's peer: pomegranate 1.x ``GeneralMixtureModel`` of ``Normal`` components reads
a ``torch.masked.MaskedTensor`` (missing cells masked out). Both start from the same
weights, means and covariances on the same data (0%, 5% and 30% of cells missing
completely at random, rows left with no observed cell dropped) and run the same number
of iterations on 2 threads (``n_threads=2``, ``torch.set_num_threads(2)``). Seconds per
iteration come from ``harness.side_by_side`` (the N / N+M difference, in turns); the
log-likelihood each reaches is scored by one function (gmm_fast's observed-data
``score``) on the final parameters of both.

What pomegranate does with a masked cell (checked by ``check_algorithms`` at every run):

- ``covariance_type="full"`` does not run: its log-density multiplies the masked tensor
  by a matrix, which torch's MaskedTensor does not implement (``aten.mm``).
- ``"diag"``: the E-step sums the per-feature log-densities over the observed cells,
  which is the exact marginal density; the M-step takes each feature's weighted mean
  and variance over the rows where it is observed ("available cases"). That maximises
  the expected log-likelihood of the observed cells given the responsibilities, so it
  is also a monotone EM for the observed-data likelihood, with the same fixed points
  as gmm_fast's (which fills a missing cell with its conditional mean and variance,
  mu_k and sigma_k^2 for diag), but not the same iterates: after a few iterations the
  two log-likelihoods differ slightly and meet at convergence.

pomegranate adds nothing to the variances, so gmm_fast runs here with ``reg_covar=0``:
with no missing cell the two are then the same algorithm and must agree to rounding.
Not part of the test suite nor of CI: pomegranate needs PyTorch (bench/README.md says
how to set up the venv). Run:
``env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/pomegranate_peer.py``.
"""
import argparse
import os
import sys
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402  (bench/harness.py: timing by difference, in turns)

from gmm_fast import GaussianMixture  # noqa: E402
from gmm_fast._covariances import COVARIANCE_TYPES  # noqa: E402
from gmm_fast._cpu import cpu_level  # noqa: E402


def _torch():
    """torch and pomegranate, or a message saying how to get them."""
    try:
        import torch
        from pomegranate.distributions import Normal
        from pomegranate.gmm import GeneralMixtureModel
    except ImportError as exc:
        raise SystemExit(f"{exc}: this bench needs torch and pomegranate, see bench/README.md "
                         "(a venv of its own, torch==2.13.0 CPU build)") from None
    return torch, Normal, GeneralMixtureModel


def make_data(n, d, k, seed=0):
    """Overlapping blobs (as bench/missing_values.py)."""
    rng = np.random.default_rng(seed)
    centres = 3.0 * rng.standard_normal((k, d))
    return centres[rng.integers(k, size=n)] + rng.standard_normal((n, d))


def with_holes(X, fraction, seed=1):
    """X with ``fraction`` of its cells NaN at random; rows left empty are dropped."""
    holes = X.copy()
    holes[np.random.default_rng(seed).random(X.shape) < fraction] = np.nan
    return holes[~np.isnan(holes).all(axis=1)]


def start(X, k, covariance_type):
    """Initial (weights, means, covariances): 3 EM iterations on 20,000 complete rows."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gm = GaussianMixture(k, covariance_type=covariance_type, max_iter=3,
                             random_state=0).fit(X[:20_000])
    return gm.weights_, gm.means_, gm.covariances_


def gmm_fast_fit(X, covariance_type, init, max_iter):
    """gmm_fast from ``init``, no early stop, no variance floor (as pomegranate)."""
    weights, means, covariances = init
    gm = GaussianMixture(len(weights), covariance_type=covariance_type, tol=0.0,
                         reg_covar=0.0, max_iter=max_iter, weights_init=weights,
                         means_init=means, covariances_init=covariances, n_threads=2,
                         missing_values="marginalize")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return gm.fit(X)


def pomegranate_model(covariance_type, init, max_iter):
    """An initialised pomegranate GeneralMixtureModel (tol=-inf: no early stop)."""
    torch, Normal, GeneralMixtureModel = _torch()
    weights, means, covariances = init
    components = [Normal(torch.tensor(means[j]), torch.tensor(covariances[j]),
                         covariance_type=covariance_type) for j in range(len(weights))]
    model = GeneralMixtureModel(components, priors=torch.tensor(weights), max_iter=max_iter,
                                tol=-np.inf)
    # Its modules take their dtype from a float32 placeholder parameter, so responsibilities
    # and sufficient statistics would be float32 even for float64 data: cast everything.
    return model.double()


def masked(X):
    """X as pomegranate takes it: a MaskedTensor when it has NaN cells, else a tensor."""
    torch = _torch()[0]
    observed = ~np.isnan(X)
    if observed.all():
        return torch.tensor(X)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "MaskedTensors is in prototype stage"
        return torch.masked.MaskedTensor(torch.tensor(np.where(observed, X, 0.0)),
                                         torch.tensor(observed))


def pomegranate_fit(X_torch, covariance_type, init, max_iter):
    """pomegranate from ``init`` for exactly ``max_iter`` EM iterations."""
    model = pomegranate_model(covariance_type, init, max_iter)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return model.fit(X_torch)


def pomegranate_parameters(model, covariance_type):
    """(weights, means, covariances) of a fitted pomegranate model, as numpy."""
    weights = model.priors.detach().numpy().copy()
    means = np.stack([c.means.detach().numpy() for c in model.distributions])
    covariances = np.stack([c.covs.detach().numpy() for c in model.distributions])
    return weights, means, covariances


def log_likelihood(X, covariance_type, params):
    """Mean observed-data log-likelihood of ``params`` (gmm_fast's marginal densities)."""
    gm = gmm_fast_fit(X, covariance_type, params, 1)  # fitted; parameters set below
    weights, means, covariances = params
    precisions_cholesky = COVARIANCE_TYPES[covariance_type].precisions_cholesky(
        covariances, 0.0, np.float64)
    gm._set_parameters((weights, means, covariances, precisions_cholesky), np.float64)
    return gm.score(X)


def em_reference_diag(X, params):
    """One EM step, diag, missing cells by their conditional moments (gmm_fast's algorithm)
    and by available cases (pomegranate's), in numpy: (em_means, available_means)."""
    weights, means, variances = params
    observed = ~np.isnan(X)
    x = np.where(observed, X, 0.0)
    log_dens = -0.5 * (observed[:, None, :] * (np.log(2 * np.pi * variances)
                                               + (x[:, None, :] - means) ** 2 / variances)
                       ).sum(axis=2) + np.log(weights)
    resp = np.exp(log_dens - log_dens.max(axis=1, keepdims=True))
    resp /= resp.sum(axis=1, keepdims=True)
    filled = np.where(observed[:, None, :], x[:, None, :], means)  # E[x_m | x_o, k] = mu_k,m
    em_means = (resp[:, :, None] * filled).sum(axis=0) / resp.sum(axis=0)[:, None]
    available = resp.T @ x / (resp.T @ observed)
    return em_means, available


def check_algorithms(fraction, seed=2):
    """On small data: the marginal log-likelihoods agree; what pomegranate's M-step is."""
    X = with_holes(make_data(3000, 5, 3, seed), fraction, seed)
    lines = []
    for covariance_type in ("full", "diag"):
        init = start(np.nan_to_num(X[~np.isnan(X).any(axis=1)]), 3, covariance_type)
        model = pomegranate_model(covariance_type, init, 1)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ours = model.log_probability(masked(X)).sum().item() / len(X)
        except Exception as exc:  # noqa: BLE001 - reported, not fatal
            lines.append(f"  {covariance_type}: pomegranate fails on a masked tensor "
                         f"({type(exc).__name__}: {str(exc).splitlines()[0]})")
            continue
        gap = abs(ours - log_likelihood(X, covariance_type, init))
        em_means, available = em_reference_diag(X, init)
        pom = pomegranate_parameters(pomegranate_fit(masked(X), covariance_type, init, 1),
                                     covariance_type)[1]
        fast = gmm_fast_fit(X, covariance_type, init, 1).means_
        lines.append(f"  {covariance_type}: initial log-likelihood per row, pomegranate vs "
                     f"gmm_fast: {gap:.1e} apart; one step's means: pomegranate - available "
                     f"cases {np.abs(pom - available).max():.1e}, gmm_fast - EM "
                     f"{np.abs(fast - em_means).max():.1e}, EM - available cases "
                     f"{np.abs(em_means - available).max():.1e}")
    return lines


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=200_000)
    parser.add_argument("--d", type=int, default=16)
    parser.add_argument("--k", type=int, default=16)
    parser.add_argument("--iterations", type=int, default=10,
                        help="iterations of the fits whose log-likelihoods are compared")
    parser.add_argument("--fractions", type=float, nargs="+", default=[0.0, 0.05, 0.30])
    parser.add_argument("--covariance", nargs="+", default=["full", "diag"])
    parser.add_argument("--torch-threads", type=int, default=harness.N_THREADS)
    args = parser.parse_args(argv)
    torch = _torch()[0]
    torch.set_num_threads(args.torch_threads)
    import pomegranate
    print("\n".join(harness.environment_report()))
    print(f"CPU level {cpu_level()}; torch {torch.__version__} ({torch.get_num_threads()} "
          f"threads), pomegranate {pomegranate.__version__}; (n, d, k) = "
          f"({args.n}, {args.d}, {args.k}), float64; load {os.getloadavg()[0]:.2f}")
    print("what the two do with a missing cell (3000 x 5, 3 components):")
    print("\n".join(check_algorithms(0.2)))
    X = make_data(args.n, args.d, args.k)
    for covariance_type in args.covariance:
        init = start(X, args.k, covariance_type)
        for fraction in args.fractions:
            holes = with_holes(X, fraction)
            X_torch = masked(holes)
            fits = {
                "gmm_fast": lambda m: gmm_fast_fit(holes, covariance_type, init, m).n_iter_,
                "pomegranate": lambda m: (pomegranate_fit(X_torch, covariance_type, init, m),
                                          m)[1],
            }
            # pomegranate takes seconds per iteration at (2e5, 16, 16): few, long repeats
            res = harness.side_by_side(fits, target_seconds=1.0, max_extra=10,
                                       time_budget=60.0, max_repeats=3, min_repeats=2)
            label = f"{covariance_type} {fraction:.0%} missing ({len(holes)} rows):"
            if "skip" in res["pomegranate"]:
                print(f"{label} gmm_fast {res['gmm_fast']['per_iter'] * 1e3:.1f} ms/iter; "
                      f"pomegranate {res['pomegranate']['skip']}")
                continue
            fast = gmm_fast_fit(holes, covariance_type, init, args.iterations)
            pom = pomegranate_fit(X_torch, covariance_type, init, args.iterations)
            ll_fast = log_likelihood(holes, covariance_type, (fast.weights_, fast.means_,
                                                               fast.covariances_))
            ll_pom = log_likelihood(holes, covariance_type,
                                    pomegranate_parameters(pom, covariance_type))
            ratios = res["pomegranate"].get("ratios", [])
            print(f"{label} gmm_fast {res['gmm_fast']['per_iter'] * 1e3:.1f} ms/iter, "
                  f"pomegranate {res['pomegranate']['per_iter'] * 1e3:.1f} ms/iter: "
                  f"{res['pomegranate'].get('ratio', np.nan):.1f}x "
                  f"(repeats {min(ratios, default=np.nan):.1f}-{max(ratios, default=np.nan):.1f}"
                  f"x, M = {res['gmm_fast']['extra']}/{res['pomegranate']['extra']}"
                  f"{', EARLY STOP' if res['gmm_fast']['early_stop'] else ''}); "
                  f"log-likelihood per row after {args.iterations} iterations: gmm_fast "
                  f"{ll_fast:.6f}, pomegranate {ll_pom:.6f} ({ll_fast - ll_pom:+.1e}); "
                  f"load {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
