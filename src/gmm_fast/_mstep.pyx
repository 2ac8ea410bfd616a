"""The statistics and the M-step of an in-memory EM iteration, in one call.

On small data most of an EM iteration went to numpy calls on k x d arrays: adding the
kernel's blocks, moving the moments to the means (``_em.moments_about``), the M-step
(``_em.mstep``) and the test for components that moved far (``_em.moved_far``): ~20
calls, ~45 us a diag iteration on breast_cancer (569 x 30, k=2), beside ~30 us for the
kernel's pass over the rows (AVX2 Zen 3). ``statistics_and_mstep`` does the same
arithmetic in loops, for the kernels' full, diag and spherical statistics (tied sums
over the components by BLAS products, and keeps the numpy path). The formulas are
those of ``_em``, term for term; numpy adds some sums pairwise, so the two paths agree
to rounding (tested), not always bitwise.
"""
import numpy as np

cdef enum:  # _estep's codes
    FULL = 0
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
        Py_ssize_t b, j, k, f, g, at
        double a, t, n, dot, trace, nk_total = 0.0
        double[::1] total = np.zeros(size)
        double[::1] nk_view, second, covariances_flat, weights_view, delta
        double[:, ::1] sums, about, means_view
    for b in range(blocks.shape[0]):  # in order: the same sum for any threads
        for j in range(size):
            total[j] += blocks[b, j]

    nk = np.empty(K)
    nk_view = nk
    sums_array = np.empty((K, d))
    sums = sums_array
    about_array = np.empty((K, d))
    about = about_array
    for k in range(K):
        nk_view[k] = total[2 + k]
        for f in range(d):
            about[k, f] = shift[f] + centered[k, f]
            sums[k, f] = total[first + k * d + f] - nk_view[k] * centered[k, f]

    # Second moments moved from the shift to the means (``_em.moments_about``).
    if covariance_type == FULL:
        second_array = np.empty((K, d, d))
    elif covariance_type == DIAG:
        second_array = np.empty((K, d))
    else:
        second_array = np.empty(K)
    second = second_array.reshape(-1)
    for k in range(K):
        n = nk_view[k]
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
    weights = np.empty(K)
    weights_view = weights
    means = np.empty((K, d))
    means_view = means
    covariances = np.empty_like(second_array)
    covariances_flat = covariances.reshape(-1)
    delta = np.empty(d)
    moved = []
    for k in range(K):
        nk_total += nk_view[k] + nk_floor
    for k in range(K):
        n = nk_view[k] + nk_floor
        weights_view[k] = n / nk_total
        dot = 0.0
        for f in range(d):
            delta[f] = sums[k, f] / n
            means_view[k, f] = about[k, f] + delta[f]
            dot = dot + delta[f] * delta[f]
        trace = 0.0
        if covariance_type == FULL:
            for f in range(d):
                for g in range(d):
                    at = (k * d + f) * d + g
                    covariances_flat[at] = second[at] / n - delta[f] * delta[g]
                covariances_flat[(k * d + f) * d + f] += reg_covar
                trace = trace + covariances_flat[(k * d + f) * d + f]
        elif covariance_type == DIAG:
            for f in range(d):
                at = k * d + f
                covariances_flat[at] = second[at] / n - delta[f] * delta[f] + reg_covar
                trace = trace + covariances_flat[at]
        else:
            covariances_flat[k] = (second[k] / n - dot) / d + reg_covar
            trace = d * covariances_flat[k]
        if not dot <= moved_far * trace:  # (NaN: moved, as there)
            moved.append(k)
    statistics = (total[0], total[1], nk, sums_array, second_array, about_array)
    return statistics, (weights, means, covariances), np.array(moved, dtype=np.int64)
