"""EM on the observed cells of rows with missing values (NaN cells, missing at random).

A row with missing cells ``m`` and observed cells ``o`` counts by its marginal density
``N(x_o | mu_o, S_oo)`` under each component; the M-step takes the conditional
moments of the missing cells given the observed ones,

    E[x_m | x_o, k]   = mu_m + B_k^T (x_o - mu_o),   B_k = S_oo^-1 S_om
    Cov[x_m | x_o, k] = S_mm - S_mo B_k                (the same for every row),

so that ``sum_i r_ik E[(x_i - c_k)(x_i - c_k)^T]`` is ``(x^_i - c_k)(x^_i - c_k)^T`` plus
that conditional covariance in the missing block. The lower bound is then the
observed-data log-likelihood, and EM increases it (Ghahramani & Jordan 1994).

Rows are grouped by their pattern of missing cells: the rows of a pattern share every
component's ``S_oo`` factor and ``B_k``. The complete rows are not here: they go through
the kernels unchanged (``_em.estep_statistics``), and the statistics of both add up,
about the same centres. Everything here is float64 numpy, batched over components
and cut into row chunks, so a temporary is at most ``chunk x k x d``.
"""
import numpy as np

from ._covariances import LOG_2PI
from ._em import SufficientStatistics


# Rows of one pattern handled at once: the temporaries are chunk x k x d doubles.
_CHUNK_ELEMENTS = 1 << 18

MISSING_VALUES = ("error", "marginalize")


def check_missing_rows(X, columns=True):
    """A ValueError for what EM on observed cells cannot use: a row with no observed
    cell, a feature observed in no row (``columns``: for fitting)."""
    mask = np.isnan(X)
    empty = np.flatnonzero(mask.all(axis=1))
    if empty.size:
        raise ValueError(
            f"X has {empty.size} row(s) with every feature missing (first: row {empty[0]}): "
            "such a row carries no information; drop it.")
    unobserved = np.flatnonzero(mask.all(axis=0)) if columns else ()
    if len(unobserved):
        raise ValueError(
            f"Feature(s) {unobserved.tolist()} are missing in every row: the mixture cannot "
            "be estimated along them; drop those columns.")


def full_covariances(covariances, covariance_type, n_components, n_features):
    """Every component's covariance as a (k, d, d) float64 array."""
    covariances = np.asarray(covariances, dtype=np.float64)
    if covariance_type == "full":
        return covariances
    if covariance_type == "tied":
        return np.broadcast_to(covariances, (n_components, n_features, n_features))
    variances = (covariances if covariance_type == "diag"
                 else np.repeat(covariances[:, None], n_features, axis=1))
    full = np.zeros((n_components, n_features, n_features))
    full[:, np.arange(n_features), np.arange(n_features)] = variances
    return full


class _Pattern:
    """One missingness pattern's shared terms for every component: ``factor_inv`` (k, o, o)
    the inverse Cholesky factors of ``S_oo``, ``log_det`` (k,), ``regression`` (k, o, m)
    ``B_k``, ``conditional`` (k, m, m) the missing cells' conditional covariances."""

    def __init__(self, observed, means, covariances):
        self.observed = observed
        self.missing = ~observed
        o, m = np.flatnonzero(observed), np.flatnonzero(self.missing)
        s_oo = covariances[:, o[:, None], o]
        s_om = covariances[:, o[:, None], m]
        factor = np.linalg.cholesky(s_oo)
        self.factor_inv = np.linalg.inv(factor)
        self.log_det = np.log(np.diagonal(factor, axis1=1, axis2=2)).sum(axis=1)
        precision = np.swapaxes(self.factor_inv, 1, 2) @ self.factor_inv  # S_oo^-1
        self.regression = precision @ s_om
        self.conditional = (covariances[:, m[:, None], m]
                            - np.swapaxes(s_om, 1, 2) @ self.regression)
        self.means_o, self.means_m = means[:, o], means[:, m]

    def log_prob(self, rows, log_weights):
        """(n, k) weighted marginal log-densities of ``rows`` (n, d; NaN where missing);
        also returns the rows' observed cells' differences from each mean (k, n, o)."""
        diff = rows[:, self.observed][None] - self.means_o[:, None, :]
        z = diff @ np.swapaxes(self.factor_inv, 1, 2)
        maha = np.einsum("kno,kno->kn", z, z)
        n_observed = diff.shape[-1]
        log_prob = (log_weights[:, None] - self.log_det[:, None]
                    - 0.5 * (n_observed * LOG_2PI + maha))
        return log_prob.T, diff

    def completed(self, rows, diff):
        """(k, n, d): the rows with each missing cell at its conditional mean under
        component k."""
        full = np.broadcast_to(rows, (len(self.means_o),) + rows.shape).copy()
        full[:, :, self.missing] = self.means_m[:, None, :] + diff @ self.regression
        return full


def logsumexp_rows(log_prob):
    top = log_prob.max(axis=1)
    top = np.where(np.isfinite(top), top, 0.0)
    with np.errstate(under="ignore"):
        total = np.exp(log_prob - top[:, None]).sum(axis=1)
    return top + np.log(total)


class MissingRows:
    """The rows of X that have missing cells, grouped by pattern (built once per fit).

    ``complete`` are the indices of the rows without any, for the kernels.
    """

    def __init__(self, X, sample_weight=None):
        mask = np.isnan(X)
        incomplete = mask.any(axis=1)
        self.complete = np.flatnonzero(~incomplete)
        rows = np.flatnonzero(incomplete)
        patterns, inverse = np.unique(mask[rows], axis=0, return_inverse=True)
        inverse = inverse.ravel()
        order = np.argsort(inverse, kind="stable")
        bounds = np.searchsorted(inverse[order], np.arange(len(patterns) + 1))
        self.groups = [(~patterns[p], rows[order[bounds[p]:bounds[p + 1]]])
                       for p in range(len(patterns))]
        self.X = X
        self.sample_weight = sample_weight
        self.n_rows = rows.size

    def _chunks(self, indices, n_components):
        step = max(1, _CHUNK_ELEMENTS // (n_components * self.X.shape[1]))
        for start in range(0, len(indices), step):
            chunk = indices[start:start + step]
            weights = (np.ones(len(chunk)) if self.sample_weight is None
                       else self.sample_weight[chunk].astype(np.float64))
            yield chunk, self.X[chunk].astype(np.float64), weights

    def _patterns(self, means, covariances):
        for observed, indices in self.groups:
            yield _Pattern(observed, means, covariances), indices

    def statistics(self, weights, means, covariances, covariance_type, centres):
        """Their E-step statistics about ``centres`` (k, d), in ``_em``'s layout (added to
        the kernels' statistics of the complete rows)."""
        n_components, n_features = means.shape
        full = full_covariances(covariances, covariance_type, n_components, n_features)
        with np.errstate(divide="ignore"):  # a zero weight: a -inf log prior
            log_weights = np.log(weights)
        log_likelihood = sum_weights = 0.0
        nk = np.zeros(n_components)
        sums = np.zeros((n_components, n_features))
        second = np.zeros((n_components, n_features, n_features))
        for pattern, indices in self._patterns(means, full):
            missing = pattern.missing
            for chunk, rows, w in self._chunks(indices, n_components):
                log_prob, diff = pattern.log_prob(rows, log_weights)
                log_norm = logsumexp_rows(log_prob)
                weighted = w != 0  # a zero weight must not turn -inf into NaN
                log_likelihood += float(w[weighted] @ log_norm[weighted])
                sum_weights += float(w.sum())
                wr = np.exp(log_prob - log_norm[:, None]) * w[:, None]  # (n, k)
                centred = pattern.completed(rows, diff) - centres[:, None, :]
                chunk_nk = wr.sum(axis=0)
                nk += chunk_nk
                sums += np.einsum("nk,knd->kd", wr, centred)
                second += np.einsum("nk,knd,kne->kde", wr, centred, centred)
                second[:, missing[:, None] & missing] += (
                    chunk_nk[:, None, None] * pattern.conditional).reshape(n_components, -1)
        second = _reduce_second(second, covariance_type)
        return SufficientStatistics(log_likelihood, sum_weights, nk, sums, second,
                                    np.array(centres, dtype=np.float64))

    def score(self, weights, means, covariances, covariance_type):
        """Per incomplete row (in ``self.groups``' order of rows): the weighted marginal
        log-densities (n_rows, k), and the row indices."""
        n_components, n_features = means.shape
        full = full_covariances(covariances, covariance_type, n_components, n_features)
        with np.errstate(divide="ignore"):
            log_weights = np.log(weights)
        for pattern, indices in self._patterns(means, full):
            for chunk, rows, _ in self._chunks(indices, n_components):
                yield chunk, pattern.log_prob(rows, log_weights)[0]

    def conditional_means(self, weights, means, covariances, covariance_type):
        """(row indices, completed rows): each missing cell at its conditional
        expectation under the mixture, ``sum_k r_k(x_o) E[x_m | x_o, k]``."""
        n_components, n_features = means.shape
        full = full_covariances(covariances, covariance_type, n_components, n_features)
        with np.errstate(divide="ignore"):
            log_weights = np.log(weights)
        for pattern, indices in self._patterns(means, full):
            for chunk, rows, _ in self._chunks(indices, n_components):
                log_prob, diff = pattern.log_prob(rows, log_weights)
                resp = np.exp(log_prob - logsumexp_rows(log_prob)[:, None])
                yield chunk, np.einsum("nk,knd->nd", resp, pattern.completed(rows, diff))


def _reduce_second(second, covariance_type):
    """(k, d, d) second moments to ``_em``'s layout for ``covariance_type``."""
    if covariance_type == "full":
        return second
    if covariance_type == "tied":
        return second.sum(axis=0)
    diagonal = np.diagonal(second, axis1=1, axis2=2)
    if covariance_type == "diag":
        return diagonal.copy()
    return diagonal.sum(axis=1)


def mean_imputed(X):
    """X with each NaN cell at its column's mean over the observed cells (float64 copy
    of the columns' dtype)."""
    filled = np.array(X, copy=True)
    column_means = np.nanmean(X, axis=0, dtype=np.float64)
    rows, cols = np.nonzero(np.isnan(filled))
    filled[rows, cols] = column_means[cols]
    return filled

