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
from libc.stdint cimport int64_t, uint32_t, uint64_t
from libc.string cimport memcpy

from gmm_fast cimport _draws_core as core


def largest_value(const double[::1] values, const double[::1] weight=None):
    """The largest value of a row of positive weight (weight None: of any row), or 0."""
    cdef const double *w = NULL if weight is None else &weight[0]
    cdef double top = 0.0
    if values.shape[0]:
        with nogil:
            top = core.largest(&values[0], w, values.shape[0])
    return top


def quantised_total(const double[::1] values, const double[::1] weight, double q):
    """The total mass, an exact int (integer weights, ``q`` from ``_draws.quantum``)."""
    cdef const double *w = NULL if weight is None else &weight[0]
    cdef int64_t total = 0
    if values.shape[0]:
        with nogil:
            total = core.quantised_total(&values[0], w, values.shape[0], q)
    return int(total)


def search(const double[::1] values, const Py_ssize_t[::1] order, const double[::1] weight,
           double q, targets):
    """``_draws.search`` on ``values[order]`` and ``weight[order]``: positions in the
    canonical order (``_draws_core.search_sorted``)."""
    cdef:
        Py_ssize_t[::1] rank = np.argsort(np.asarray(targets, dtype=np.float64),
                                          kind="stable")
        double[::1] sorted_targets = np.asarray(targets, dtype=np.float64)[np.asarray(rank)]
        Py_ssize_t[::1] found = np.full(rank.shape[0], -1, dtype=np.intp)
        const double *w = NULL if weight is None else &weight[0]
    if rank.shape[0] and order.shape[0]:
        with nogil:
            core.search_sorted(&values[0], &order[0], w, order.shape[0], q,
                               &sorted_targets[0], &rank[0], rank.shape[0], &found[0])
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


cdef inline bint _same_values(const floating[:, :] X, Py_ssize_t a, Py_ssize_t b) noexcept nogil:
    cdef Py_ssize_t f
    for f in range(X.shape[1]):
        if X[a, f] != X[b, f]:
            return False
    return True


cdef inline int _compare_rows(const floating[:, :] X, Py_ssize_t a, Py_ssize_t b) noexcept nogil:
    """Rows ``a`` and ``b`` by their values in order (numerically: -0.0 equals 0.0), then
    by index: -1, 0 or 1."""
    cdef Py_ssize_t f
    for f in range(X.shape[1]):
        if X[a, f] < X[b, f]:
            return -1
        if X[a, f] > X[b, f]:
            return 1
    return (a > b) - (a < b)


def sort_hash_runs(const floating[:, :] X, const uint64_t[::1] ordered,
                   Py_ssize_t[::1] order, Py_ssize_t longest=64):
    """Within each run of equal hashes (``ordered``: the hashes in ``order``), order the
    rows by their values, then by index (``_draws.canonical_order``), in place. Runs
    longer than ``longest`` of rows not all identical (rows equal in float32 but not in
    float64; an insertion sort would be quadratic) are left as they are and returned as
    ``(start, stop)`` pairs, for numpy's sorts; identical rows are in index order
    already."""
    cdef:
        Py_ssize_t n = order.shape[0], head = 0, i, j, k, row
    long_runs = []
    for i in range(1, n + 1):
        if i < n and ordered[i] == ordered[head]:
            continue
        if i - head > longest:
            for j in range(head + 1, i):  # (identical rows: in index order already)
                if not _same_values(X, order[head], order[j]):
                    long_runs.append((head, i))
                    break
        else:
            for j in range(head + 1, i):  # (runs are short: pairs of repeated rows)
                row = order[j]
                k = j
                while k > head and _compare_rows(X, order[k - 1], row) > 0:
                    order[k] = order[k - 1]
                    k -= 1
                order[k] = row
        head = i
    return long_runs
