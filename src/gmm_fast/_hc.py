"""Model-based agglomerative hierarchical clustering (Fraley 1998), the start ``init_params="hc"``.

Start from singletons and repeatedly merge the two groups whose merge least decreases
the classification likelihood of a Gaussian model with one unconstrained covariance
per group. Up to constants, ``-2`` times that likelihood is ``sum_g cost(g)`` with

    cost(g) = n_g log det((W_g + lam S) / n_g),

``n_g`` the group's (weighted) size, ``W_g`` its scatter about its mean and ``S`` the
covariance of all rows. Without ``lam S`` the criterion is undefined for groups of at
most ``n_features`` rows (``det W_g = 0``); the ridge ``lam S`` (``lam = RIDGE``, a
multiple of the data's covariance so that the whole criterion is affine invariant)
makes small groups merge as by Ward's criterion (nearest means first, in the metric of
``S``) and fades as groups grow, where the unregularised criterion takes over. (mclust's
``hcVVV`` regularises differently: a trace term for groups of at most ``n_features``
rows.) The work is done on whitened rows ``L^-1 x`` (``S = L L^T``), where ``lam S``
becomes ``lam I``.

A merge of ``a`` and ``b`` changes the criterion by
``delta(a, b) = cost(a + b) - cost(a) - cost(b)``, and the merged scatter follows from
the groups' sufficient statistics alone:
``W_ab = W_a + W_b + n_a n_b / (n_a + n_b) (m_a - m_b)(m_a - m_b)^T``. The n x n
matrix of deltas is kept; after a merge only the row of the merged group is computed
anew (one batched log-determinant per remaining group), and each row's minimum is
kept so that the next merge is found in O(n). Ties go to the lowest pair of indices:
the tree does not depend on threads or runs.

Above ``HC_MAX_SAMPLES`` rows the hierarchy is built on that many rows drawn without
replacement with ``random_state``; the other rows join the group of nearest mean (in
the metric of ``S``) at each cut.
"""
import numpy as np

from ._hc_kernel import merge_costs
from ._validation import check_random_state

# Rows the hierarchy is built on: memory is 8 n^2 bytes (32 MB at 2000) and the time
# about n^2 small log-determinants (~1.5 s at 2000 rows, 8 features, Zen 3).
HC_MAX_SAMPLES = 2000
# The ridge, as a multiple of the data's covariance (see the module docstring).
RIDGE = 0.1


def _whiten(X, sample_weight):
    """Rows whitened by the weighted covariance of all rows (a ridge keeps it invertible)."""
    X = np.asarray(X, dtype=np.float64)
    w = sample_weight / sample_weight.sum()
    centered = X - w @ X
    covariance = (w[:, None] * centered).T @ centered
    n_features = X.shape[1]
    covariance += 1e-10 * max(np.trace(covariance) / n_features, 1e-300) * np.eye(n_features)
    cholesky = np.linalg.cholesky(covariance)
    return np.linalg.solve(cholesky, centered.T).T


def hc_merges(X, sample_weight=None, *, ridge=RIDGE):
    """The merge sequence of model-based hierarchical clustering of all rows of X.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    sample_weight : ndarray of shape (n_samples,), default=None
        Frequency weights (a group's size is the sum of its weights).
    ridge : float, default=RIDGE

    Returns
    -------
    merges : ndarray of shape (n_samples - 1, 2), dtype intp
        Merge ``t`` joins group ``merges[t, 1]`` into group ``merges[t, 0]`` (the
        smaller index; a group is named by its lowest row).
    deltas : ndarray of shape (n_samples - 1,)
        The criterion's increase at each merge.
    """
    n_samples = X.shape[0]
    w = (np.ones(n_samples) if sample_weight is None
         else np.asarray(sample_weight, dtype=np.float64))
    Z = _whiten(X, w)
    n_features = Z.shape[1]
    nk = w.copy()
    means = Z.copy()
    scatter = np.zeros((n_samples, n_features, n_features))
    # cost(g) = n_g (log det(W_g + lam I) - p log n_g); singletons: W_g = 0.
    cost = nk * n_features * (np.log(ridge) - np.log(nk))
    # Two singletons: det(lam I + c d d^T) = lam^p (1 + c |d|^2 / lam).
    sq = np.einsum("ij,ij->i", Z, Z)
    sqdist = np.maximum(sq[:, None] + sq[None, :] - 2 * Z @ Z.T, 0.0)
    n_pair = nk[:, None] + nk[None, :]
    c = nk[:, None] * nk[None, :] / n_pair
    delta = (n_pair * (n_features * np.log(ridge) + np.log1p(c * sqdist / ridge)
                       - n_features * np.log(n_pair)) - cost[:, None] - cost[None, :])
    np.fill_diagonal(delta, np.inf)
    best_j = np.argmin(delta, axis=1)
    best = delta[np.arange(n_samples), best_j]
    merges = np.empty((max(n_samples - 1, 0), 2), dtype=np.intp)
    deltas = np.empty(max(n_samples - 1, 0))
    active = np.ones(n_samples, dtype=bool)
    for t in range(n_samples - 1):
        i = int(np.argmin(best))  # lowest row holding the least delta
        j = int(best_j[i])
        a, b = min(i, j), max(i, j)
        merges[t] = a, b
        deltas[t] = delta[a, b]
        # a absorbs b: its sufficient statistics and cost
        n_ab = nk[a] + nk[b]
        d = means[a] - means[b]
        scatter[a] += scatter[b] + (nk[a] * nk[b] / n_ab) * np.outer(d, d)
        means[a] = (nk[a] * means[a] + nk[b] * means[b]) / n_ab
        nk[a] = n_ab
        cost[a] += cost[b] + deltas[t]
        active[b] = False
        delta[b, :] = delta[:, b] = best[b] = np.inf
        others = np.flatnonzero(active)
        others = others[others != a]
        if others.size == 0:
            break
        # delta(a, g) for every other group g (the kernel writes row and column a)
        merge_costs(scatter, means, nk, cost, others, a, ridge, delta)
        k = int(np.argmin(delta[a]))
        best[a], best_j[a] = delta[a, k], k
        # Rows whose best partner was a or b: searched again; others may now prefer a.
        stale = others[(best_j[others] == a) | (best_j[others] == b)]
        for g in stale:
            k = int(np.argmin(delta[g]))
            best[g], best_j[g] = delta[g, k], k
        fresh = others[(best_j[others] != a) & (best_j[others] != b)]
        row_f = delta[a, fresh]
        better = (row_f < best[fresh]) | ((row_f == best[fresh]) & (a < best_j[fresh]))
        best[fresh[better]] = row_f[better]
        best_j[fresh[better]] = a
    return merges, deltas


def cut_tree(merges, n_samples, n_clusters):
    """Labels in ``range(k)`` of the partitions into each k of ``n_clusters`` groups.

    Returns a dict ``k -> labels`` (ndarray of shape (n_samples,)); groups are numbered
    in order of their lowest row.
    """
    wanted = sorted({int(k) for k in n_clusters if 1 <= k <= n_samples}, reverse=True)
    parent = np.arange(n_samples)
    partitions = {}
    n_groups = n_samples
    t = 0
    for k in wanted:
        while n_groups > k:
            a, b = merges[t]
            parent[b] = a  # b's group joins a's group (a < b, both group heads)
            t += 1
            n_groups -= 1
        root = parent.copy()
        while True:  # heads are the lowest rows: follow parents to the fixed point
            nxt = root[root]
            if np.array_equal(nxt, root):
                break
            root = nxt
        partitions[k] = np.unique(root, return_inverse=True)[1].astype(np.intp)
    return partitions


def hc_partitions(X, n_clusters, sample_weight=None, random_state=None, *,
                  max_samples=HC_MAX_SAMPLES, ridge=RIDGE):
    """Labels of every row of X for each k of ``n_clusters``, from one hierarchy.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    n_clusters : iterable of int
    sample_weight : ndarray of shape (n_samples,), default=None
    random_state : int, RandomState instance or None, default=None
        Draws the rows the hierarchy is built on when there are more than
        ``max_samples`` (rows of positive weight).
    max_samples : int, default=HC_MAX_SAMPLES
    ridge : float, default=RIDGE

    Returns
    -------
    partitions : dict
        ``k -> labels`` (ndarray of shape (n_samples,), values in ``range(k)``).
    """
    X = np.asarray(X)
    n_samples = X.shape[0]
    w = (np.ones(n_samples) if sample_weight is None
         else np.asarray(sample_weight, dtype=np.float64))
    candidates = np.flatnonzero(w > 0)
    if candidates.size:  # weights scaled to mean 1 (and from overflow near 1e308)
        w = w / w.max()
        w = w / w[candidates].mean()
    if candidates.size > max_samples:
        rng = check_random_state(random_state)
        sample = np.sort(rng.choice(candidates, max_samples, replace=False))
    else:
        sample = candidates
    merges, _ = hc_merges(X[sample], w[sample], ridge=ridge)
    ks = [k for k in n_clusters if k <= sample.size]
    cuts = cut_tree(merges, sample.size, ks)
    if sample.size == n_samples:
        return cuts
    # The other rows join the group of nearest mean in the metric of the data's covariance.
    Z = _whiten(X, w)
    partitions = {}
    for k, sample_labels in cuts.items():
        ws = w[sample]
        nk = np.bincount(sample_labels, weights=ws, minlength=k)
        means = np.zeros((k, Z.shape[1]))
        np.add.at(means, sample_labels, ws[:, None] * Z[sample])
        means /= nk[:, None]
        sqdist = (np.einsum("ij,ij->i", Z, Z)[:, None] - 2 * Z @ means.T
                  + np.einsum("ij,ij->i", means, means)[None, :])
        labels = np.argmin(sqdist, axis=1).astype(np.intp)
        labels[sample] = sample_labels
        partitions[k] = labels
    return partitions
