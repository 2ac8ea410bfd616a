"""The M-step by loops, for in-memory fits: an EM iteration's statistics and new
parameters (one call), the moments of hard labels (the k-means and hc starts), and
full covariances' precision factors.

On small data most of an EM iteration went to numpy calls on k x d arrays: adding the
kernel's blocks, moving the moments to the means (``_em.moments_about``), the M-step
(``_em.mstep``) and the test for components that moved far (``_em.moved_far``): ~20
calls, ~45 us a diag iteration on breast_cancer (569 x 30, k=2), beside ~30 us for the
kernel's pass over the rows (AVX2 Zen 3). ``statistics_and_mstep`` does the same
arithmetic in loops, for the kernels' full, diag and spherical statistics (tied sums
over the components by BLAS products, and keeps the numpy path). The formulas are
those of ``_em``, term for term; numpy adds some sums pairwise, so the two paths agree
to rounding (tested), not always bitwise.

``label_statistics``: the moments of hard labels, as
``_mixture_init.statistics_from_responsibilities`` takes them from responsibilities
(a one-hot n x k block and a product per component, k times the work: digits' start,
1797 x 20, k=10, 0.78 -> 0.05 ms; AVX2 Zen 3).
"""
from cython cimport floating
from libc.math cimport INFINITY, sqrt

import numpy as np

cdef enum:  # _estep's codes
    FULL = 0
    TIED = 1
    DIAG = 2
    SPHERICAL = 3


def statistics_and_mstep(int covariance_type, const double[:, ::1] blocks,
                         const double[::1] shift, const double[:, ::1] centered,
                         double reg_covar, double nk_floor, double moved_far):
    """One E-step pass's statistics about the means, the M-step and the far moves.

    Parameters
    ----------
    covariance_type : int
        ``_estep.COVARIANCE_CODES`` of "full", "diag" or "spherical".
    blocks : ndarray of shape (n_blocks, size)
        ``_estep.estep``'s per-block statistics about ``shift``, every component
        near (none about its own mean); added in order.
    shift : ndarray of shape (n_features,)
    centered : ndarray of shape (n_components, n_features)
        The means minus ``shift``.
    reg_covar, nk_floor, moved_far : float
        ``mstep``'s reg_covar, ``_em._NK_FLOOR`` and ``_em._MOVED_FAR``.

    Returns
    -------
    statistics : tuple
        ``(log_likelihood, sum_weights, nk, sums, second, means)``: the fields of
        ``_em.estep_statistics``' result, about the means.
    parameters : tuple
        ``(weights, means, covariances)``, as ``_em.mstep`` gives them.
    moved : ndarray of int64
        The components ``_em.moved_far`` names.
    """
    cdef:
        Py_ssize_t K = centered.shape[0], d = centered.shape[1]
        Py_ssize_t size = blocks.shape[1], first = 2 + K, rest = 2 + K + K * d
        Py_ssize_t per = (d * d if covariance_type == FULL
                          else d if covariance_type == DIAG else 1)
        Py_ssize_t b, j, k, f, g, at
        double a, t, n, dot, trace, nk_total = 0.0
        double[::1] total = np.zeros(size), nk = np.empty(K), weights = np.empty(K)
        double[::1] delta = np.empty(d)
        double[::1] second = np.empty(K * per), covariances = np.empty(K * per)
        double[:, ::1] sums = np.empty((K, d)), about = np.empty((K, d))
        double[:, ::1] means = np.empty((K, d))
        object shape = (K, per)  # (diag; full and spherical below)
    for b in range(blocks.shape[0]):  # in order: the same sum for any threads
        for j in range(size):
            total[j] += blocks[b, j]

    for k in range(K):
        nk[k] = total[2 + k]
        for f in range(d):
            about[k, f] = shift[f] + centered[k, f]
            sums[k, f] = total[first + k * d + f] - nk[k] * centered[k, f]

    # Second moments moved from the shift to the means (``_em.moments_about``).
    for k in range(K):
        n = nk[k]
        if covariance_type == FULL:
            for f in range(d):
                for g in range(d):
                    at = (k * d + f) * d + g
                    second[at] = ((total[rest + at]
                                   - total[first + k * d + f] * centered[k, g])
                                  - total[first + k * d + g] * centered[k, f]
                                  + n * centered[k, f] * centered[k, g])
        elif covariance_type == DIAG:
            for f in range(d):
                a = centered[k, f]
                t = total[first + k * d + f]
                second[k * d + f] = total[rest + k * d + f] - 2.0 * a * t + n * a * a
        else:
            dot = 0.0
            for f in range(d):
                a = centered[k, f]
                dot = dot + (2.0 * total[first + k * d + f] - n * a) * a
            second[k] = total[rest + k] - dot

    # The M-step (``_em.mstep``) and the far moves (``_em.moved_far``).
    moved = []
    for k in range(K):
        nk_total += nk[k] + nk_floor
    for k in range(K):
        n = nk[k] + nk_floor
        weights[k] = n / nk_total
        dot = 0.0
        for f in range(d):
            delta[f] = sums[k, f] / n
            means[k, f] = about[k, f] + delta[f]
            dot = dot + delta[f] * delta[f]
        trace = 0.0
        if covariance_type == FULL:
            for f in range(d):
                for g in range(d):
                    at = (k * d + f) * d + g
                    covariances[at] = second[at] / n - delta[f] * delta[g]
                covariances[(k * d + f) * d + f] += reg_covar
                trace = trace + covariances[(k * d + f) * d + f]
        elif covariance_type == DIAG:
            for f in range(d):
                at = k * d + f
                covariances[at] = second[at] / n - delta[f] * delta[f] + reg_covar
                trace = trace + covariances[at]
        else:
            covariances[k] = (second[k] / n - dot) / d + reg_covar
            trace = d * covariances[k]
        if not dot <= moved_far * trace:  # (NaN: moved, as there)
            moved.append(k)
    if covariance_type == FULL:
        shape = (K, d, d)
    elif covariance_type == SPHERICAL:
        shape = (K,)
    # (a view's base: the array it was made from; np.asarray(view) cost ~0.4 us each)
    statistics = (total[0], total[1], nk.base, sums.base, second.base.reshape(shape),
                  about.base)
    return (statistics, (weights.base, means.base, covariances.base.reshape(shape)),
            np.array(moved, dtype=np.int64))


def label_statistics(int covariance_type, const floating[:, ::1] X,
                     const floating[::1] sample_weight, const Py_ssize_t[::1] labels,
                     Py_ssize_t n_components, double nk_floor):
    """Weighted moments of hard labels (row i wholly in component ``labels[i]``) about
    the components' weighted means: ``(nk, sums, second, means)`` as
    ``_mixture_init.statistics_from_responsibilities`` gives them (``second`` in the
    covariance type's shape; tied: summed over the components). Two passes over the
    rows in order: the means (``first / (nk + nk_floor)``), then the moments about
    them. ``sample_weight`` None: unit weights.
    """
    cdef:
        Py_ssize_t n = X.shape[0], d = X.shape[1], K = n_components, i, f, g, label, row
        Py_ssize_t width = (d * d if covariance_type == FULL or covariance_type == TIED
                            else d if covariance_type == DIAG else 1)
        double w = 1.0, q
        double[::1] nk = np.zeros(K), diff = np.empty(d)
        double[:, ::1] means = np.zeros((K, d)), sums = np.zeros((K, d))
        # (rows of `width`: full d x d, diag d, spherical 1; tied: one row)
        double[:, ::1] second = np.zeros((K if covariance_type != TIED else 1, width))
    for i in range(n):
        label = labels[i]
        if not 0 <= label < K:
            raise ValueError(f"label {label} of row {i} is not in [0, {K}).")
        if sample_weight is not None:
            w = sample_weight[i]
        nk[label] += w
        for f in range(d):
            means[label, f] += w * X[i, f]
    for label in range(K):
        for f in range(d):
            means[label, f] /= nk[label] + nk_floor
    for i in range(n):
        label = labels[i]
        if sample_weight is not None:
            w = sample_weight[i]
        for f in range(d):
            diff[f] = X[i, f] - means[label, f]
            sums[label, f] += w * diff[f]
        if covariance_type == FULL or covariance_type == TIED:
            row = label if covariance_type == FULL else 0
            for f in range(d):  # the upper triangle, mirrored below
                q = w * diff[f]
                for g in range(f, d):
                    second[row, f * d + g] += q * diff[g]
        elif covariance_type == DIAG:
            for f in range(d):
                second[label, f] += w * diff[f] * diff[f]
        else:
            q = 0.0
            for f in range(d):
                q = q + diff[f] * diff[f]
            second[label, 0] += w * q
    moments = second.base
    if covariance_type == FULL or covariance_type == TIED:
        for label in range(second.shape[0]):
            for f in range(d):
                for g in range(f + 1, d):
                    second[label, g * d + f] = second[label, f * d + g]
        moments = moments.reshape(-1, d, d)
        if covariance_type == TIED:
            moments = moments[0]
    elif covariance_type == SPHERICAL:
        moments = moments[:, 0].copy()
    return nk.base, sums.base, moments, means.base


def full_precisions_cholesky(const double[:, :, ::1] covariances):
    """Upper-triangular U_k with ``U_k U_k^T = inv(covariances[k])``, by loops: the
    Cholesky factor L_k, then ``U_k = (L_k^-1)^T`` (numpy's batched cholesky and inv,
    with their checks, cost ~40 us an EM iteration on iris; these loops ~1 us).

    Returns ``(factors, -1)``, or ``(None, k)`` for the first component whose
    covariance is not positive definite (a pivot not > 0, or not finite: NaN and inf
    entries reach some pivot).
    """
    cdef:
        Py_ssize_t K = covariances.shape[0], d = covariances.shape[1], k, i, j, p
        double s, pivot
        double[:, ::1] lower = np.empty((d, d))
        double[:, :, ::1] upper
    factors = np.zeros((K, d, d))
    upper = factors
    for k in range(K):
        for j in range(d):  # L column by column
            s = covariances[k, j, j]
            for p in range(j):
                s = s - lower[j, p] * lower[j, p]
            if not (s > 0 and s < INFINITY):
                return None, k
            pivot = sqrt(s)
            lower[j, j] = pivot
            for i in range(j + 1, d):
                s = covariances[k, i, j]
                for p in range(j):
                    s = s - lower[i, p] * lower[j, p]
                lower[i, j] = s / pivot
        for j in range(d):  # M = L^-1 by forward substitution, column j; U = M^T
            upper[k, j, j] = 1.0 / lower[j, j]
            for i in range(j + 1, d):
                s = 0.0
                for p in range(j, i):
                    s = s + lower[i, p] * upper[k, j, p]
                upper[k, j, i] = -s / lower[i, i]
    return factors, -1


def reciprocal_roots(const double[::1] variances):
    """``1 / sqrt(v)`` of every variance (diag and spherical precision factors, flat),
    or None if one is not positive and finite (the caller's numpy path then names it).
    Bitwise numpy's ``1.0 / np.sqrt(v)`` (both correctly rounded), in one call instead
    of ~7 numpy calls (~8 us an EM iteration on small data)."""
    cdef:
        Py_ssize_t n = variances.shape[0], i
        double[::1] roots = np.empty(n)
    for i in range(n):
        if not (variances[i] > 0 and variances[i] < INFINITY):
            return None
        roots[i] = 1.0 / sqrt(variances[i])
    return roots.base
