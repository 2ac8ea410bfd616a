"""EM on the observed cells of rows with missing values (NaN cells, missing at random).

A row with missing cells ``m`` and observed cells ``o`` counts by its marginal density
``N(x_o | mu_o, S_oo)`` under each component; the M-step takes the conditional
moments of the missing cells given the observed ones,

    E[x_m | x_o, k]   = mu_m + B_k^T (x_o - mu_o),   B_k = S_oo^-1 S_om
    Cov[x_m | x_o, k] = S_mm - S_mo B_k                (the same for every row),

so that ``sum_i r_ik E[(x_i - c_k)(x_i - c_k)^T]`` is ``(x^_i - c_k)(x^_i - c_k)^T`` plus
that conditional covariance in the missing block. The lower bound is then the
observed-data log-likelihood, and EM increases it (Ghahramani & Jordan 1994).

Everything is computed from the precisions ``P_k = S_k^-1``: per row and component
only the q x q block ``P_mm`` is factored, so many distinct patterns (random holes in
wide data) cost no more than a few. The fit's statistics (``MissingRows.statistics``)
come from one kernel pass, ``_missing_kernel.missing_statistics`` (Cython + OpenMP,
fixed row blocks reduced in order: bitwise the same for any thread count; rows sorted
by pattern once per fit, the q x q factor of ``P_mm`` computed once per run of rows
sharing a pattern and per component, q = 1 and 2 in closed form; diag and spherical
a diagonal special case with g = 0; no n x k x d temporary). Scores,
imputations and draws, and ``MissingRows.statistics_numpy`` (the tests' reference for
the kernel), are float64 numpy: rows batched by their number of missing cells q
(``_Chunk``: ``P_mm`` factored once per distinct pattern in a chunk, all of a chunk's
at once), in row chunks, so a temporary is at most ``chunk x k x d``. The complete
rows are not here: they go through the kernels unchanged (``_em.estep_statistics``),
and the statistics of both add up, about the same centres.
"""
import numpy as np

from ._covariances import LOG_2PI
from ._em import SufficientStatistics
from ._missing_kernel import missing_statistics
from ._threads import n_blocks


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


class _Model:
    """The mixture in the form the rows need: precisions ``P_k = S_k^-1`` (k, d, d),
    ``log det S_k`` and ``log pi_k`` (float64)."""

    def __init__(self, weights, means, covariances, covariance_type):
        n_components, n_features = means.shape
        full = full_covariances(covariances, covariance_type, n_components, n_features)
        self.means = np.asarray(means, dtype=np.float64)
        self.precisions = np.linalg.inv(full)
        self.log_det = np.linalg.slogdet(full)[1]
        with np.errstate(divide="ignore"):  # a zero weight: a -inf log prior
            self.log_weights = np.log(np.asarray(weights, dtype=np.float64))


class _Chunk:
    """Rows that each miss ``q`` cells, against every component.

    With the precision P (not the covariance) nothing is factored per pattern but the
    q x q block ``P_mm``: ``Q = P_mm^-1`` is the missing cells' conditional covariance,
    ``E[x_m | x_o] - mu_m = delta = -Q g`` with ``g = P_mo (x_o - mu_o)``, the observed
    cells' squared Mahalanobis distance is ``d0^T P d0 + g^T delta`` (d0: x - mu with 0
    in the missing cells) and ``log det S_oo = log det S + log det P_mm``. Rows sharing
    a pattern share Q (inverted once per pattern in the chunk, batched).
    """

    def __init__(self, rows, model):
        n_rows, n_features = rows.shape
        missing = np.isnan(rows)
        self.cells = np.nonzero(missing)[1].reshape(n_rows, -1)  # (n, q), sorted
        q = self.cells.shape[1]
        patterns, self.pattern = np.unique(self.cells, axis=0, return_inverse=True)
        self.pattern = self.pattern.ravel()
        self.patterns = patterns
        p_mm = model.precisions[:, patterns[:, :, None], patterns[:, None, :]]
        p_mm = p_mm.transpose(1, 0, 2, 3)  # (patterns, k, q, q)
        self.conditional, log_det_mm, self.factor_inv = _spd_inverse(p_mm)
        observed = np.where(missing, 0.0, rows)
        # d0 (k, n, d): x - mu_k, 0 in the missing cells
        self.centred = (observed[None] - model.means[:, None, :]) * ~missing
        projected = self.centred @ model.precisions  # P symmetric
        g = np.take_along_axis(projected, self.cells[None], axis=2)  # (k, n, q)
        q_rows = self.conditional[self.pattern].transpose(1, 0, 2, 3)  # (k, n, q, q)
        delta = -(q_rows @ g[..., None])[..., 0]
        maha = (np.einsum("knd,knd->kn", self.centred, projected)
                + np.einsum("knq,knq->kn", g, delta))
        log_det_oo = model.log_det[None] + log_det_mm[self.pattern]  # (n, k)
        self.log_prob = (model.log_weights[None] - 0.5 * log_det_oo
                         - 0.5 * ((n_features - q) * LOG_2PI + maha.T))
        np.put_along_axis(self.centred, self.cells[None], delta, axis=2)  # now x^ - mu_k

    def conditional_second(self, wr, n_components, n_features):
        """``sum_i wr_ik Q_i,k`` placed in each pattern's missing block: (k, d, d)."""
        per_pattern = np.zeros((len(self.patterns), n_components))
        np.add.at(per_pattern, self.pattern, wr)
        cells = self.patterns
        flat = (np.arange(n_components)[None, :, None, None] * n_features * n_features
                + cells[:, None, :, None] * n_features + cells[:, None, None, :])
        values = per_pattern[:, :, None, None] * self.conditional
        flat, values = np.broadcast_arrays(flat, values)
        return np.bincount(flat.ravel(), values.ravel(),
                           minlength=n_components * n_features * n_features
                           ).reshape(n_components, n_features, n_features)


def _spd_inverse(A):
    """Inverses, log-determinants and inverse Cholesky factors ``L^-1`` (A = L L^T) of a
    stack of small SPD matrices (..., q, q), by a
    Cholesky factorisation written over the whole stack: one numpy operation per entry
    of the factor, not one LAPACK call per matrix (with 30% of cells missing nearly
    every row has its own pattern: 16 components x 1024 rows of 5 x 5 per chunk, 20 ms
    in np.linalg.inv and slogdet, ~1 ms so)."""
    q = A.shape[-1]
    L = np.zeros_like(A)
    for j in range(q):
        pivot = np.sqrt(A[..., j, j] - np.einsum("...i,...i->...", L[..., j, :j], L[..., j, :j]))
        L[..., j, j] = pivot
        if j + 1 < q:
            L[..., j + 1:, j] = (A[..., j + 1:, j] - np.einsum(
                "...ri,...i->...r", L[..., j + 1:, :j], L[..., j, :j])) / pivot[..., None]
    # L^-1 by forward substitution, row by row
    inverse = np.zeros_like(A)
    for j in range(q):
        inverse[..., j, j] = 1.0 / L[..., j, j]
        if j:
            inverse[..., j, :j] = -np.einsum("...i,...ic->...c", L[..., j, :j],
                                             inverse[..., :j, :j]) / L[..., j, j, None]
    log_det = 2.0 * np.log(np.diagonal(L, axis1=-2, axis2=-1)).sum(axis=-1)
    return np.swapaxes(inverse, -1, -2) @ inverse, log_det, inverse


def logsumexp_rows(log_prob):
    top = log_prob.max(axis=1)
    top = np.where(np.isfinite(top), top, 0.0)
    with np.errstate(under="ignore"):
        total = np.exp(log_prob - top[:, None]).sum(axis=1)
    return top + np.log(total)


class MissingRows:
    """The rows of X that have missing cells, grouped by how many (built once per fit).

    ``complete`` are the indices of the rows without any, for the kernels.
    """

    def __init__(self, X, sample_weight=None):
        counts = np.isnan(X).sum(axis=1)
        self.complete = np.flatnonzero(counts == 0)
        self.groups = [np.flatnonzero(counts == q) for q in np.unique(counts[counts > 0])]
        self.X = X
        self.sample_weight = sample_weight
        self.n_rows = len(X) - len(self.complete)
        self.max_missing = int(counts.max(initial=0))
        self._rows = self._row_weights = None  # the kernel's copy, made on first use

    def _kernel_rows(self):
        """The rows with NaN cells, C-contiguous in X's dtype, and their float64 weights,
        sorted by missingness pattern (the kernel factors a run of rows sharing one once)."""
        if self._rows is None:
            missing = np.isnan(self.X)
            incomplete = np.flatnonzero(missing.any(axis=1))
            keys = np.packbits(missing[incomplete], axis=1)
            keys = np.ascontiguousarray(keys).view(np.dtype((np.void, keys.shape[1]))).ravel()
            incomplete = incomplete[np.argsort(keys, kind="stable")]
            self._rows = np.ascontiguousarray(self.X[incomplete])
            if self.sample_weight is not None:
                self._row_weights = np.ascontiguousarray(
                    self.sample_weight[incomplete], dtype=np.float64)
        return self._rows, self._row_weights

    def _chunks(self, model):
        n_components, n_features = model.means.shape
        step = max(1, _CHUNK_ELEMENTS // (n_components * n_features))
        for indices in self.groups:
            for start in range(0, len(indices), step):
                chunk = indices[start:start + step]
                weights = (np.ones(len(chunk)) if self.sample_weight is None
                           else self.sample_weight[chunk].astype(np.float64))
                yield chunk, _Chunk(self.X[chunk].astype(np.float64), model), weights

    def statistics(self, weights, means, covariances, covariance_type, centres,
                   n_threads=1):
        """Their E-step statistics about ``centres`` (k, d), in ``_em``'s layout (added to
        the kernels' statistics of the complete rows): one pass of
        ``_missing_kernel.missing_statistics``, bitwise the same for any ``n_threads``."""
        model = _Model(weights, means, covariances, covariance_type)
        n_components, n_features = model.means.shape
        rows, row_weights = self._kernel_rows()
        diagonal = covariance_type in ("diag", "spherical")
        diagonals = np.diagonal(model.precisions, axis1=1, axis2=2)
        precisions = diagonals.copy() if diagonal else model.precisions
        second_shape = ((n_components, n_features) if diagonal
                        else (n_components, n_features, n_features))
        centres = np.array(centres, dtype=np.float64)
        size = 2 + n_components * (n_features + 1) + int(np.prod(second_shape))
        blocks = np.empty((n_blocks(len(rows), size), size))
        missing_statistics(rows, row_weights, diagonal, precisions.ravel(),
                           np.log(diagonals).ravel(), (1.0 / diagonals).ravel(), model.means,
                           model.log_weights - 0.5 * model.log_det, model.means - centres,
                           blocks, self.max_missing, n_threads)
        total = blocks.sum(axis=0)  # the blocks in order: the same for any n_threads
        nk = total[2:2 + n_components]
        sums = total[2 + n_components:2 + n_components * (n_features + 1)]
        second = total[2 + n_components * (n_features + 1):].reshape(second_shape)
        if not diagonal:  # the kernel summed the upper triangles
            upper = np.triu(second)
            second = upper + np.triu(second, 1).transpose(0, 2, 1)
            second = second.sum(axis=0) if covariance_type == "tied" else second
        elif covariance_type == "spherical":
            second = second.sum(axis=1)
        return SufficientStatistics(float(total[0]), float(total[1]), nk.copy(),
                                    sums.reshape(n_components, n_features), second, centres)

    def statistics_numpy(self, weights, means, covariances, covariance_type, centres):
        """``statistics`` in float64 numpy, chunk by chunk (the tests' reference for the
        kernel)."""
        model = _Model(weights, means, covariances, covariance_type)
        n_components, n_features = model.means.shape
        offset = model.means - centres  # (x^ - c_k) = (x^ - mu_k) + (mu_k - c_k)
        log_likelihood = sum_weights = 0.0
        nk = np.zeros(n_components)
        sums = np.zeros((n_components, n_features))
        second = np.zeros((n_components, n_features, n_features))
        for _, chunk, w in self._chunks(model):
            log_norm = logsumexp_rows(chunk.log_prob)
            weighted = w != 0  # a zero weight must not turn -inf into NaN
            log_likelihood += float(w[weighted] @ log_norm[weighted])
            sum_weights += float(w.sum())
            wr = np.exp(chunk.log_prob - log_norm[:, None]) * w[:, None]  # (n, k)
            centred = chunk.centred + offset[:, None, :]
            nk += wr.sum(axis=0)
            sums += np.einsum("nk,knd->kd", wr, centred)
            second += (centred.transpose(0, 2, 1) * wr.T[:, None, :]) @ centred
            second += chunk.conditional_second(wr, n_components, n_features)
        second = _reduce_second(second, covariance_type)
        return SufficientStatistics(log_likelihood, sum_weights, nk, sums, second,
                                    np.array(centres, dtype=np.float64))

    def score(self, weights, means, covariances, covariance_type):
        """(row indices, weighted marginal log-densities (n, k)) chunk by chunk."""
        model = _Model(weights, means, covariances, covariance_type)
        for rows, chunk, _ in self._chunks(model):
            yield rows, chunk.log_prob

    def conditional_means(self, weights, means, covariances, covariance_type):
        """(row indices, completed rows): each missing cell at its conditional
        expectation under the mixture, ``sum_k r_k(x_o) E[x_m | x_o, k]``."""
        model = _Model(weights, means, covariances, covariance_type)
        for rows, chunk, _ in self._chunks(model):
            resp = np.exp(chunk.log_prob - logsumexp_rows(chunk.log_prob)[:, None])
            yield rows, np.einsum("nk,knd->nd", resp, chunk.centred + model.means[:, None])

    def conditional_draws(self, weights, means, covariances, covariance_type, n_draws,
                          random_state):
        """(row indices, draws (n_draws, n, d)): each row completed ``n_draws`` times
        from the conditional mixture: a component k drawn with probability
        ``r_k(x_o)``, then ``x_m ~ N(E[x_m | x_o, k], Q_k)`` (``Q_k = L^-T L^-1``)."""
        model = _Model(weights, means, covariances, covariance_type)
        for rows, chunk, _ in self._chunks(model):
            resp = np.exp(chunk.log_prob - logsumexp_rows(chunk.log_prob)[:, None])
            cumulative = np.cumsum(resp, axis=1)
            n_rows, n_features = len(rows), chunk.centred.shape[2]
            draws = np.empty((n_draws, n_rows, n_features))
            every_row = np.arange(n_rows)
            for draw in range(n_draws):
                u = random_state.uniform(size=n_rows) * cumulative[:, -1]
                component = np.minimum((cumulative < u[:, None]).sum(axis=1),
                                       len(weights) - 1)
                completed = chunk.centred[component, every_row] + model.means[component]
                factor_inv = chunk.factor_inv[chunk.pattern, component]  # (n, q, q)
                z = random_state.standard_normal(chunk.cells.shape)
                noise = (np.swapaxes(factor_inv, 1, 2) @ z[..., None])[..., 0]
                completed[every_row[:, None], chunk.cells] += noise
                draws[draw] = completed
            yield rows, draws


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

