"""Plain-numpy oracle for one weighted EM step of a Gaussian mixture (all four covariance types).

Written to be obviously correct rather than fast: everything in float64, one component at a
time, the log-densities from the Cholesky factor of the precision computed with
``numpy.linalg``, a textbook log-sum-exp, and the weighted M-step written straight from its
definition. It materialises the (n_samples, n_components) responsibilities, so use it on
test-sized data only. ``test_gaussian_mixture_reference.py`` checks it against scikit-learn's
private helpers for unit weights and against ``np.cov(..., aweights=...)``.

Conventions are scikit-learn's: ``precisions_cholesky`` is the upper-triangular ``U`` with
``precision = U @ U.T``, so that ``|(x - m) @ U|^2`` is the Mahalanobis distance and
``log det U = -log det(covariance) / 2``. Shapes: full (k, d, d), tied (d, d), diag (k, d),
spherical (k,).
"""
from dataclasses import dataclass

import numpy as np

COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")
LOG_2PI = np.log(2.0 * np.pi)


def _f64(a):
    return np.asarray(a, dtype=np.float64)


def precisions_cholesky_from_covariances(covariances, covariance_type):
    """Upper-triangular ``U`` with ``U @ U.T = inv(covariance)``, per component."""
    covariances = _f64(covariances)
    if covariance_type == "full":
        return np.stack([_precision_cholesky_of(c) for c in covariances])
    if covariance_type == "tied":
        return _precision_cholesky_of(covariances)
    return 1.0 / np.sqrt(covariances)


def _precision_cholesky_of(covariance):
    # covariance = L L^T  =>  precision = L^-T L^-1 = U U^T with U = (L^-1)^T upper-triangular.
    lower = np.linalg.cholesky(covariance)
    return np.linalg.inv(lower).T


def precisions_from_cholesky(precisions_cholesky, covariance_type):
    """``U @ U.T`` per component (or ``U**2`` for diag/spherical)."""
    prec_chol = _f64(precisions_cholesky)
    if covariance_type == "full":
        return np.einsum("kij,klj->kil", prec_chol, prec_chol)
    if covariance_type == "tied":
        return prec_chol @ prec_chol.T
    return prec_chol ** 2


def covariances_from_precisions(precisions, covariance_type):
    """Inverse of ``precisions`` per component."""
    precisions = _f64(precisions)
    if covariance_type == "full":
        return np.stack([np.linalg.inv(p) for p in precisions])
    if covariance_type == "tied":
        return np.linalg.inv(precisions)
    return 1.0 / precisions


def _full_precision_cholesky(precisions_cholesky, covariance_type, n_components, n_features):
    """Every type expanded to a (k, d, d) upper-triangular factor."""
    prec_chol = _f64(precisions_cholesky)
    if covariance_type == "full":
        return prec_chol
    if covariance_type == "tied":
        return np.broadcast_to(prec_chol, (n_components, n_features, n_features))
    if covariance_type == "diag":
        return np.stack([np.diag(p) for p in prec_chol])
    return np.stack([p * np.eye(n_features) for p in prec_chol])


def log_gaussian_prob(X, means, precisions_cholesky, covariance_type):
    """log N(x_i | means_k, covariance_k) as an (n_samples, n_components) float64 array.

    Computed as ``-d/2 log(2 pi) + log det U_k - |(x_i - m_k) @ U_k|^2 / 2``, one component
    at a time (the centred difference, not the expanded square, so no cancellation).
    """
    X = _f64(X)
    means = _f64(means)
    n_samples, n_features = X.shape
    n_components = means.shape[0]
    factors = _full_precision_cholesky(precisions_cholesky, covariance_type, n_components,
                                       n_features)
    log_prob = np.empty((n_samples, n_components))
    for k in range(n_components):
        y = (X - means[k]) @ factors[k]
        log_det = np.sum(np.log(np.diag(factors[k])))
        log_prob[:, k] = -0.5 * (n_features * LOG_2PI + np.sum(y * y, axis=1)) + log_det
    return log_prob


def logsumexp_rows(a):
    """log(sum_k exp(a[:, k])) without overflow or underflow."""
    top = np.max(a, axis=1, keepdims=True)
    return top[:, 0] + np.log(np.sum(np.exp(a - top), axis=1))


def estep(X, weights, means, precisions_cholesky, covariance_type):
    """(log p(x_i), responsibilities r_ik) of every row under the mixture."""
    weighted = (log_gaussian_prob(X, means, precisions_cholesky, covariance_type)
                + np.log(_f64(weights)))
    log_prob_norm = logsumexp_rows(weighted)
    resp = np.exp(weighted - log_prob_norm[:, None])
    return log_prob_norm, resp


@dataclass
class ReferenceStatistics:
    """The contract's SufficientStatistics, float64, with moments about ``shift``."""

    log_likelihood: float
    sum_weights: float
    nk: np.ndarray
    sums: np.ndarray
    second: np.ndarray
    shift: np.ndarray

    def __add__(self, other):
        assert np.array_equal(self.shift, other.shift)
        return ReferenceStatistics(
            self.log_likelihood + other.log_likelihood, self.sum_weights + other.sum_weights,
            self.nk + other.nk, self.sums + other.sums, self.second + other.second, self.shift)


def estep_statistics(X, sample_weight, weights, means, precisions_cholesky, covariance_type):
    """Weighted sufficient statistics of one E-step, moments about the current ``means``.

    log_likelihood = sum_i w_i log p(x_i); sum_weights = sum_i w_i; nk_k = sum_i w_i r_ik;
    sums_k = sum_i w_i r_ik (x_i - m_k); second as the contract says per covariance type.
    """
    X = _f64(X)
    sample_weight = _f64(sample_weight)
    means = _f64(means)
    n_features = X.shape[1]
    log_prob_norm, resp = estep(X, weights, means, precisions_cholesky, covariance_type)
    wr = resp * sample_weight[:, None]
    n_components = means.shape[0]
    nk = wr.sum(axis=0)
    sums = np.empty((n_components, n_features))
    full_second = np.empty((n_components, n_features, n_features))
    for k in range(n_components):
        diff = X - means[k]
        sums[k] = wr[:, k] @ diff
        full_second[k] = (diff * wr[:, k, None]).T @ diff
    if covariance_type == "full":
        second = full_second
    elif covariance_type == "tied":
        second = full_second.sum(axis=0)
    elif covariance_type == "diag":
        second = np.stack([np.diag(s) for s in full_second])
    else:
        second = np.array([np.trace(s) for s in full_second])
    return ReferenceStatistics(
        log_likelihood=float(sample_weight @ log_prob_norm),
        sum_weights=float(sample_weight.sum()),
        nk=nk, sums=sums, second=second, shift=means.copy())


def mstep(stats, covariance_type, reg_covar):
    """(weights, means, covariances) from statistics, as the contract's ``mstep``.

    With delta_k = sums_k / nk_k (the step from the shift to the new mean), the weighted
    covariance about the new mean is second_k / nk_k - delta_k delta_k^T: exact algebra,
    and since the moments were taken about the old means (close to the data), there is no
    cancellation for data far from the origin.
    """
    nk = stats.nk
    delta = stats.sums / nk[:, None]
    weights = nk / nk.sum()
    means = stats.shift + delta
    n_features = means.shape[1]
    if covariance_type == "full":
        covariances = (stats.second / nk[:, None, None]
                       - np.einsum("ki,kj->kij", delta, delta))
        covariances += reg_covar * np.eye(n_features)
    elif covariance_type == "tied":
        covariances = (stats.second - np.einsum("k,ki,kj->ij", nk, delta, delta)) / nk.sum()
        covariances += reg_covar * np.eye(n_features)
    elif covariance_type == "diag":
        covariances = stats.second / nk[:, None] - delta ** 2 + reg_covar
    else:
        covariances = (stats.second / nk - np.sum(delta ** 2, axis=1)) / n_features + reg_covar
    return weights, means, covariances


def mstep_from_resp(X, sample_weight, resp, covariance_type, reg_covar):
    """The weighted M-step written from its definition (a second, independent route).

    means_k = sum_i w_i r_ik x_i / nk_k; covariance_k = sum_i w_i r_ik (x_i - means_k)
    (x_i - means_k)^T / nk_k + reg_covar I, then reduced per covariance type (tied: the
    nk-weighted average of the full ones; diag: their diagonals; spherical: the mean of the
    diagonal).
    """
    X = _f64(X)
    wr = _f64(resp) * _f64(sample_weight)[:, None]
    nk = wr.sum(axis=0)
    means = (wr.T @ X) / nk[:, None]
    n_features = X.shape[1]
    full = np.stack([
        ((X - means[k]) * wr[:, k, None]).T @ (X - means[k]) / nk[k]
        for k in range(len(nk))
    ])
    if covariance_type == "full":
        covariances = full + reg_covar * np.eye(n_features)
    elif covariance_type == "tied":
        covariances = np.einsum("k,kij->ij", nk, full) / nk.sum() + reg_covar * np.eye(n_features)
    elif covariance_type == "diag":
        covariances = np.stack([np.diag(c) for c in full]) + reg_covar
    else:
        covariances = np.array([np.trace(c) for c in full]) / n_features + reg_covar
    return nk / nk.sum(), means, covariances


def em_step(X, sample_weight, weights, means, covariances, covariance_type, reg_covar):
    """One EM step: returns (mean log-likelihood before the step, weights, means, covariances).

    The mean log-likelihood is sum_i w_i log p(x_i) / sum_i w_i under the parameters passed
    in, which is what scikit-learn records as the lower bound of that iteration.
    """
    prec_chol = precisions_cholesky_from_covariances(covariances, covariance_type)
    stats = estep_statistics(X, sample_weight, weights, means, prec_chol, covariance_type)
    new = mstep(stats, covariance_type, reg_covar)
    return (stats.log_likelihood / stats.sum_weights,) + new


def n_parameters(n_components, n_features, covariance_type):
    """Free parameters of the mixture (for BIC/AIC)."""
    cov = {"full": n_components * n_features * (n_features + 1) // 2,
           "tied": n_features * (n_features + 1) // 2,
           "diag": n_components * n_features,
           "spherical": n_components}[covariance_type]
    return cov + n_components * n_features + n_components - 1


def random_covariances(rng, n_components, n_features, covariance_type, scale=1.0):
    """Well-conditioned random covariances in the shape of ``covariance_type``."""
    def spd():
        a = rng.normal(size=(n_features, n_features))
        return scale * (a @ a.T / n_features + 0.5 * np.eye(n_features))
    if covariance_type == "full":
        return np.stack([spd() for _ in range(n_components)])
    if covariance_type == "tied":
        return spd()
    if covariance_type == "diag":
        return scale * rng.uniform(0.5, 2.0, size=(n_components, n_features))
    return scale * rng.uniform(0.5, 2.0, size=n_components)


def make_mixture(rng, n_samples, n_features, n_components, covariance_type, separation=3.0):
    """Data drawn from a random mixture, and that mixture's parameters.

    Returns ``X, weights, means, covariances`` (float64). Centres are ``separation`` apart
    on average, so responsibilities are neither all 0/1 nor uniform.
    """
    weights = rng.uniform(0.5, 1.5, size=n_components)
    weights /= weights.sum()
    means = rng.normal(scale=separation, size=(n_components, n_features))
    covariances = random_covariances(rng, n_components, n_features, covariance_type)
    full = _full_covariances(covariances, covariance_type, n_components, n_features)
    labels = rng.choice(n_components, size=n_samples, p=weights)
    # Guarantee every component owns a few rows, so no component starts empty.
    labels[:n_components] = np.arange(n_components)
    X = np.empty((n_samples, n_features))
    for k in range(n_components):
        rows = labels == k
        X[rows] = rng.multivariate_normal(means[k], full[k], size=int(rows.sum()))
    return X, weights, means, covariances


def _full_covariances(covariances, covariance_type, n_components, n_features):
    if covariance_type == "full":
        return covariances
    if covariance_type == "tied":
        return np.broadcast_to(covariances, (n_components, n_features, n_features))
    if covariance_type == "diag":
        return np.stack([np.diag(c) for c in covariances])
    return np.stack([c * np.eye(n_features) for c in covariances])


def perturbed_parameters(rng, weights, means, covariances, covariance_type):
    """Starting parameters near but not at the truth (so EM has work to do)."""
    n_components, n_features = means.shape
    w = weights * rng.uniform(0.7, 1.3, size=n_components)
    m = means + rng.normal(scale=0.5, size=means.shape)
    c = random_covariances(rng, n_components, n_features, covariance_type)
    return w / w.sum(), m, c
