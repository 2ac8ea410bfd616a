"""The exact draws' passes over the rows (``_draws``), for integer weights, in C.

k-means++ draws each centre's candidates in proportion to ``w * D(x)^2``, quantised:
a row's mass is ``w * rint(D(x)^2 / q)`` in int64, and the cumulative masses are
searched in the canonical row order. These three passes give the numpy reference's
answers (``_draws.quantum``, ``quantised_total``, ``search``) bit for bit, from the
distances in row order: they take the canonical order as indices instead of
gathering an ordered copy, and make one pass each without temporaries (numpy's
took ~15 passes of n-vectors per centre, more time than the candidates' distances at
d=2). Integer sums are exact in any order, so only ``search`` needs the order.
Single-threaded: each is a few ms per 1e6 rows. Also the rows' hashes behind the
canonical order (``dense_row_hashes``), once per fit.
"""
import numpy as np

from cython cimport floating
from libc.math cimport rint
from libc.stdint cimport int64_t, uint32_t, uint64_t
from libc.string cimport memcpy

cdef extern from *:
    void __builtin_prefetch(const void *address) noexcept nogil

# How far ahead ``search`` asks for the value of a row (in canonical positions): its
# reads land anywhere in the n-vector, and waiting for each one made the pass ~2x slower.
cdef Py_ssize_t PREFETCH_AHEAD = 16


cdef inline int64_t _mass(double value, const double *weight, Py_ssize_t i,
                          double q) noexcept nogil:
    """``w_i * rint(value / q)`` in int64 (0 for q 0), as ``_draws._masses``."""
    cdef int64_t mass = <int64_t> rint(value / q) if q > 0 else 0
    if weight != NULL:
        mass *= <int64_t> weight[i]
    return mass


def largest_value(const double[::1] values, const double[::1] weight=None):
    """The largest value of a row of positive weight (weight None: of any row), or 0."""
    cdef:
        Py_ssize_t i, n = values.shape[0]
        const double *w = NULL if weight is None else &weight[0]
        double top = 0.0
    with nogil:
        for i in range(n):
            if (w == NULL or w[i] > 0) and values[i] > top:
                top = values[i]
    return top


def quantised_total(const double[::1] values, const double[::1] weight, double q):
    """The total mass, an exact int (integer weights, ``q`` from ``_draws.quantum``)."""
    cdef:
        Py_ssize_t i, n = values.shape[0]
        const double *w = NULL if weight is None else &weight[0]
        int64_t total = 0
    with nogil:
        for i in range(n):
            total += _mass(values[i], w, i, q)
    return int(total)


def search(const double[::1] values, const Py_ssize_t[::1] order, const double[::1] weight,
           double q, targets):
    """``_draws.search`` on ``values[order]`` and ``weight[order]``: positions in the
    canonical order. One pass, targets taken in increasing order; a running sum is
    compared as a float64, as numpy's searchsorted compares it with float targets."""
    cdef:
        Py_ssize_t n = order.shape[0], i, row, j = 0
        const double *w = NULL if weight is None else &weight[0]
        double[::1] sorted_targets
        Py_ssize_t[::1] rank = np.argsort(np.asarray(targets, dtype=np.float64),
                                          kind="stable")
        Py_ssize_t n_targets = rank.shape[0]
        Py_ssize_t last_positive = -1, last_weighted = -1
        int64_t running = 0, mass
        Py_ssize_t[::1] found = np.full(n_targets, -1, dtype=np.intp)

    sorted_targets = np.asarray(targets, dtype=np.float64)[np.asarray(rank)]
    with nogil:
        for i in range(n):
            if i + PREFETCH_AHEAD < n:
                __builtin_prefetch(&values[order[i + PREFETCH_AHEAD]])
            row = order[i]
            mass = _mass(values[row], w, row, q)
            if mass > 0:
                last_positive = i
            if w == NULL or w[row] > 0:
                last_weighted = i
            running += mass
            while j < n_targets and <double> running > sorted_targets[j]:
                found[rank[j]] = i
                j += 1
            if j == n_targets:
                break  # (the rest only matters for targets past the total)
    if j < n_targets:  # at or past the total: the last row of positive mass
        fallback = last_positive if last_positive >= 0 else last_weighted
        for i in range(j, n_targets):
            found[rank[i]] = fallback
    return np.asarray(found)


cdef inline uint64_t _mix(uint64_t h) noexcept nogil:
    """splitmix64's finaliser (``_draws._mix``)."""
    h = (h ^ (h >> 30)) * <uint64_t> 0xBF58476D1CE4E5B9
    h = (h ^ (h >> 27)) * <uint64_t> 0x94D049BB133111EB
    return h ^ (h >> 31)


def dense_row_hashes(const floating[:, :] X, Py_ssize_t start, Py_ssize_t stop,
                     const uint64_t[::1] keys):
    """``_draws.row_hashes`` of dense rows ``start:stop``, in one pass over them (numpy's
    took ~10 passes of n-vectors per feature): the same bits."""
    cdef:
        Py_ssize_t i, f, n_features = X.shape[1]
        uint64_t h
        uint32_t bits
        float value
        uint64_t[::1] hashes = np.empty(stop - start, dtype=np.uint64)
    with nogil:
        for i in range(start, stop):
            h = 0
            for f in range(n_features):
                value = (<float> X[i, f]) + 0.0  # (-0.0 as 0.0)
                memcpy(&bits, &value, sizeof(bits))
                if bits != 0:
                    h += _mix(<uint64_t> bits ^ keys[f])
            hashes[i - start] = _mix(h)
    return np.asarray(hashes)
