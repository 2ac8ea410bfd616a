"""One row of hierarchical clustering's merge costs: group a against every other group.

For each other group g (``others[t]``) the merged scatter of a and g follows from their
sufficient statistics,

    W_ag = W_a + W_g + n_a n_g / (n_a + n_g) (m_a - m_g)(m_a - m_g)^T,

and the change of the criterion ``n log det((W + ridge I) / n)`` (summed over groups)
that merging them makes is

    delta(a, g) = n_ag (log det(W_ag + ridge I) - p log n_ag) - cost[a] - cost[g].

The log-determinant comes from an in-place Cholesky factorisation of the p x p matrix
(2 sum log L_ii). Each g is independent: serial, so that the result never depends on
threads (a merge's row costs ~0.1 ms at 1000 groups of 8 features; threads would not
pay for their wake-up).
"""
from libc.math cimport log, sqrt, INFINITY


cdef double _merged_logdet(const double[:, :, ::1] scatter, const double[:, ::1] means,
                           Py_ssize_t a, Py_ssize_t g, double coef, double ridge,
                           double[:, ::1] work) noexcept nogil:
    """log det(W_a + W_g + coef d d^T + ridge I), d = m_a - m_g; -inf if not positive."""
    cdef:
        Py_ssize_t p = means.shape[1]
        Py_ssize_t i, j, l
        double s, logdet = 0.0
    for i in range(p):
        for j in range(i + 1):
            work[i, j] = (scatter[a, i, j] + scatter[g, i, j]
                          + coef * (means[a, i] - means[g, i]) * (means[a, j] - means[g, j]))
        work[i, i] += ridge
    # Cholesky, lower triangle, row by row
    for i in range(p):
        for j in range(i + 1):
            s = work[i, j]
            for l in range(j):
                s -= work[i, l] * work[j, l]
            if i == j:
                if s <= 0.0:
                    return -INFINITY
                work[i, i] = sqrt(s)
                logdet += log(s)
            else:
                work[i, j] = s / work[j, j]
    return logdet


def merge_costs(const double[:, :, ::1] scatter, const double[:, ::1] means,
                const double[::1] nk, const double[::1] cost, const Py_ssize_t[::1] others,
                Py_ssize_t a, double ridge, double[:, ::1] delta):
    """delta[a, g] = delta[g, a] = the criterion's change of merging a and g, g in others."""
    cdef:
        Py_ssize_t p = means.shape[1]
        Py_ssize_t t, g
        double n_ag, logdet
        double[:, ::1] work = None
    if others.shape[0] == 0:
        return
    work = scatter[a].copy()
    with nogil:
        for t in range(others.shape[0]):
            g = others[t]
            n_ag = nk[a] + nk[g]
            logdet = _merged_logdet(scatter, means, a, g, nk[a] * nk[g] / n_ag, ridge, work)
            delta[a, g] = n_ag * (logdet - p * log(n_ag)) - cost[a] - cost[g]
            delta[g, a] = delta[a, g]
