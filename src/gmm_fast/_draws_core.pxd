# The exact draws' passes (``_draws``) as inline C, shared by ``_draws_kernel`` (one pass
# per call, for Python) and ``_lloyd``'s k-means++ rounds (every round in C).
#
# A row's mass is ``w * rint(value / q)`` in int64; integer sums are exact in any order,
# so only the search, which walks the rows in the canonical order, needs the order.
from libc.math cimport INFINITY, frexp, rint
from libc.stdint cimport int64_t

cdef extern from *:
    void __builtin_prefetch(const void *address) noexcept nogil

# How far ahead ``search_sorted`` asks for the value of a row (in canonical positions):
# its reads land anywhere in the n-vector, and waiting for each one made the pass ~2x
# slower.
cdef enum:
    PREFETCH_AHEAD = 16


cdef inline double reciprocal(double q) noexcept nogil:
    """``1 / q`` where ``value * (1 / q)`` is exactly ``value / q`` (``q`` a power of two,
    as ``_draws.quantum`` makes it, whose reciprocal is finite), else 0: divide. (A
    division per row was most of ``quantised_total``'s time.)"""
    cdef int exponent
    if not q > 0 or frexp(q, &exponent) != 0.5:
        return 0.0
    cdef double inverse = 1.0 / q
    return inverse if inverse < INFINITY and inverse * q == 1.0 else 0.0


cdef inline int64_t mass(double value, const double *weight, Py_ssize_t i, double q,
                         double inverse) noexcept nogil:
    """``w_i * rint(value / q)`` in int64 (0 for q 0), as ``_draws._masses``
    (``inverse``: ``reciprocal(q)``)."""
    cdef int64_t m = 0
    if inverse > 0:
        m = <int64_t> rint(value * inverse)
    elif q > 0:
        m = <int64_t> rint(value / q)
    if weight != NULL:
        m *= <int64_t> weight[i]
    return m


cdef inline double largest(const double *values, const double *weight,
                           Py_ssize_t n) noexcept nogil:
    """The largest value of a row of positive weight (weight NULL: of any row), or 0."""
    cdef Py_ssize_t i
    cdef double top = 0.0, value
    if weight == NULL:  # (selects, not branches: a loop gcc can keep in registers)
        for i in range(n):
            top = values[i] if values[i] > top else top
        return top
    for i in range(n):
        value = values[i] if weight[i] > 0 else 0.0
        top = value if value > top else top
    return top


cdef inline int64_t quantised_total(const double *values, const double *weight,
                                    Py_ssize_t n, double q) noexcept nogil:
    """The total mass: exact (integer weights, ``q`` from ``_draws.quantum``)."""
    cdef Py_ssize_t i
    cdef int64_t total = 0
    cdef double inverse = reciprocal(q)
    for i in range(n):
        total += mass(values[i], weight, i, q, inverse)
    return total


cdef inline void search_sorted(const double *values, const Py_ssize_t *order,
                               const double *weight, Py_ssize_t n, double q,
                               const double *sorted_targets, const Py_ssize_t *rank,
                               Py_ssize_t n_targets, Py_ssize_t *found) noexcept nogil:
    """``_draws.search`` on ``values[order]``, ``weight[order]``: for the targets in
    increasing order (``sorted_targets[j]`` is target ``rank[j]``), ``found[rank[j]]``
    the canonical position where the running mass first exceeds it; the last position
    of positive mass (of positive weight if none) for targets at or past the total. The
    running sum is compared as a float64, as numpy's searchsorted compares it with float
    targets."""
    cdef Py_ssize_t i, row, j = 0, last_positive = -1, last_weighted = -1
    cdef int64_t running = 0, m
    cdef double inverse = reciprocal(q)
    for i in range(n):
        if i + PREFETCH_AHEAD < n:
            __builtin_prefetch(&values[order[i + PREFETCH_AHEAD]])
        row = order[i]
        m = mass(values[row], weight, row, q, inverse)
        if m > 0:
            last_positive = i
        if weight == NULL or weight[row] > 0:
            last_weighted = i
        running += m
        while j < n_targets and <double> running > sorted_targets[j]:
            found[rank[j]] = i
            j += 1
        if j == n_targets:
            return  # (the rest only matters for targets past the total)
    for i in range(j, n_targets):
        found[rank[i]] = last_positive if last_positive >= 0 else last_weighted
