"""Random draws of rows that treat an integer weight as that many copies of the row.

Every initialisation draws rows by inverse-CDF sampling: one uniform ``u`` per draw,
and the first row, in a canonical order, whose cumulative weight exceeds ``u * total``.
The canonical order sorts the rows by a hash of their values (ties by the values), so
it does not depend on the order of the rows, and puts identical rows side by side. A
row of weight w then covers the same span of the cumulative sum as its w copies, so
``fit(X, sample_weight=w)`` and ``fit(np.repeat(X, w, axis=0))``, shuffled or not, draw
rows of the same values from the same ``u``, provided the cumulative sums are exact:
integer weights are summed as int64, and values weighted by them (k-means++'s squared
distances) are first rounded to integer multiples of a power of two ``q`` chosen from
the largest value and the total weight. Rows of weight 0 add nothing and are never
drawn, as if removed. (Non-integer weights take float64 sums: the same law, without
the exactness.)
"""
import functools

import numpy as np

# Rows per numpy step (bounded temporaries: ~1 MB).
_STEP = 2**17
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _steps(n):
    return [(start, min(start + _STEP, n)) for start in range(0, n, _STEP)]


def _mix(h):
    """splitmix64's finaliser, elementwise on uint64 (wrapping arithmetic)."""
    h = (h ^ (h >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    h = (h ^ (h >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return h ^ (h >> np.uint64(31))


@functools.lru_cache(maxsize=64)
def _column_keys(n_features, seed):
    """Each column's key (read-only, cached: ~10 numpy calls, a share of a small fit)."""
    keys = _mix(np.arange(n_features, dtype=np.uint64) * _GOLDEN ^ np.uint64(seed))
    keys.setflags(write=False)
    return keys


def row_hashes(X, start, stop, seed=0):
    """A 64-bit hash of each row of ``X[start:stop]``: the wrapping sum, over the row's
    non-zero values rounded to float32 (-0.0 as 0.0), of a mix of the value's bits with
    its column's key, mixed once more. A sum over the non-zeros, so a sparse row
    (``_sparse.SparseRows``) hashes from its stored values alone, in any order, to the
    same hash as the dense row; the same data in float32 and float64 hash alike (float64
    rows equal in float32 collide: ``canonical_order`` then orders them by value)."""
    keys = _column_keys(X.shape[1], seed)
    with np.errstate(over="ignore"):  # (beyond float32: inf, ordered by value)
        if hasattr(X, "indptr"):  # sparse rows: their stored values
            block = X.matrix[start:stop]
            values = block.data.astype(np.float32) + np.float32(0.0)
            bits = values.view(np.uint32).astype(np.uint64)
            terms = np.where(bits != 0, _mix(bits ^ keys[block.indices]), np.uint64(0))
            running = np.concatenate([np.zeros(1, np.uint64), np.cumsum(terms, dtype=np.uint64)])
            return _mix(running[block.indptr[1:]] - running[block.indptr[:-1]])
        if _dense(X):
            from ._draws_kernel import dense_row_hashes
            return dense_row_hashes(X, start, stop, keys)
        rows = np.asarray(X[start:stop], dtype=np.float32) + np.float32(0.0)
    bits = np.ascontiguousarray(rows).view(np.uint32).astype(np.uint64)
    h = np.zeros(stop - start, dtype=np.uint64)
    for column, key in zip(bits.T, keys):
        h += np.where(column != 0, _mix(column ^ key), np.uint64(0))
    return _mix(h)


def canonical_order(X):
    """Row indices sorted by hash (its top 32 bits), then by the values, then by index:
    the same for the rows in any order, identical rows side by side."""
    n = len(X)
    hashes = np.empty(n, dtype=np.uint64)
    for start, stop in _steps(n):
        hashes[start:stop] = row_hashes(X, start, stop)
    if n < 2**32:
        # Sorted by the hash's top 32 bits, then by index, as one uint64 key: numpy's
        # sort of the keys is ~3x faster than its argsort of the hashes (AVX2, 5e4
        # rows: 0.48 vs 1.34 ms; 1e6: 14 vs 42) and leaves no gather to make.
        hashes >>= np.uint64(32)
        hashes <<= np.uint64(32)
        hashes |= np.arange(n, dtype=np.uint64)
        hashes.sort()
        order = np.empty(n, dtype=np.intp)
        np.bitwise_and(hashes, np.uint64(0xFFFFFFFF), out=order.view(np.uint64))
        hashes >>= np.uint64(32)
    else:
        order = np.argsort(hashes)
        hashes = hashes[order]
    # Equal (top bits of) hashes: identical rows, or a collision of different rows (or
    # rows equal in float32), ordered by their values, then by index.
    if _dense(X):
        from ._draws_kernel import sort_hash_runs
        runs = sort_hash_runs(X, hashes, order)
    else:  # (runs of identical rows are in index order already: only mixed runs)
        runs = set()
        equal = np.flatnonzero(hashes[1:] == hashes[:-1]) + 1
        for begin in range(0, len(equal), _STEP):
            at = equal[begin:begin + _STEP]
            rows = np.asarray(X[order[at]], dtype=np.float64)
            previous = np.asarray(X[order[at - 1]], dtype=np.float64)
            for position in at[(rows != previous).any(axis=1)]:
                runs.add((int(np.searchsorted(hashes, hashes[position], side="left")),
                          int(np.searchsorted(hashes, hashes[position], side="right"))))
    for head, last in sorted(runs):
        run = np.sort(order[head:last])
        values = np.asarray(X[run], dtype=np.float64)
        order[head:last] = run[np.lexsort(values.T[::-1])]  # (stable: ties by index)
    return order


def _dense(X):
    return isinstance(X, np.ndarray) and X.ndim == 2 and X.dtype in (np.float32, np.float64)


def integer_weights(weight):
    """Whether the weights are whole numbers whose sum int64 holds with room (exact path)."""
    if weight is None:
        return True
    with np.errstate(over="ignore"):  # (an overflowing sum is not exact either)
        return bool(np.all(weight == np.floor(weight)) and np.sum(weight) < 2**40)


def _total(weight, n, exact):
    if weight is None:
        return n
    if exact:
        return int(np.sum(weight.astype(np.int64)))
    with np.errstate(over="ignore"):
        return float(np.sum(weight, dtype=np.float64))


def quantum(values, weight):
    """A power of two ``q``: ``w * rint(values / q)`` sums to below 2**62 (int64, exact),
    with up to 52 bits per value. From the largest value of a row of positive weight
    (rows of weight 0 are absent from repeated data); 0 when there is none."""
    largest = 0.0
    for start, stop in _steps(len(values)):
        part = values[start:stop]
        if weight is not None:
            part = part[weight[start:stop] > 0]
        if part.size:
            largest = max(largest, float(part.max()))
    if not largest > 0:
        return 0.0
    bits = 52  # (non-integer weights: float64 sums, no exactness to keep)
    if integer_weights(weight):
        total = max(float(_total(weight, len(values), True)), 1.0)
        bits = min(52, 61 - int(np.ceil(np.log2(total + 1))))
    return float(np.ldexp(1.0, int(np.frexp(largest)[1]) - bits))


def _masses(values, weight, q, start, stop, exact):
    """``w * rint(values / q)`` of rows ``start:stop`` (``w`` alone for ``values`` None):
    int64 for integer weights (products beyond 2**53 too), float64 otherwise."""
    dtype = np.int64 if exact else np.float64
    if values is None:
        mass = (np.ones(stop - start, dtype=dtype) if weight is None
                else np.asarray(weight[start:stop]).astype(dtype))
    else:
        mass = (np.zeros(stop - start, dtype=dtype) if q == 0 else
                np.rint(np.asarray(values[start:stop], dtype=np.float64) / q).astype(dtype))
        if weight is not None:
            mass *= np.asarray(weight[start:stop]).astype(dtype)
    return mass


def quantised_total(values, weight, q):
    """The total mass (an int for integer weights: exact)."""
    exact = integer_weights(weight)
    total = 0
    for start, stop in _steps(len(values)):
        total += _masses(values, weight, q, start, stop, exact).sum().item()
    return total


def search(values, weight, q, targets):
    """For each target, the row at which the cumulative mass first exceeds it; the last
    row of positive mass for targets at or past the total (``u * total`` rounded up to
    it), of positive weight if none has mass. ``values`` and ``weight`` come in the
    canonical order (``values`` None: the weights alone). Cumulative sums are int64
    (exact) and compared with the float targets by numpy's conversion, which keeps their
    order: weighted rows and their repeats give the same."""
    n = len(values) if values is not None else len(weight)
    exact = integer_weights(weight)
    targets = np.asarray(targets, dtype=np.float64)
    found = np.full(len(targets), -1, dtype=np.intp)
    pending = np.arange(len(targets))
    running_total = 0
    last_positive = last_weighted = -1
    for start, stop in _steps(n):
        mass = _masses(values, weight, q, start, stop, exact)
        positive = np.flatnonzero(mass > 0)
        if positive.size:
            last_positive = start + int(positive[-1])
        weighted = (np.arange(stop - start) if weight is None
                    else np.flatnonzero(weight[start:stop] > 0))
        if weighted.size:
            last_weighted = start + int(weighted[-1])
        running = np.cumsum(mass)
        running += running_total
        if pending.size:
            index = np.searchsorted(running, targets[pending], side="right")
            inside = index < len(running)
            found[pending[inside]] = start + index[inside]
            pending = pending[~inside]
        running_total = running[-1].item()
    found[found < 0] = last_positive if last_positive >= 0 else last_weighted
    return found


def draw_rows(weight, n, size, random_state, order, replace=True):
    """``size`` row indices drawn with probability proportional to ``weight`` (None:
    uniform) in the canonical ``order``, one uniform each, in order. Without replacement
    a drawn row loses one unit of weight (all of it below one), as the repeated data
    loses that copy."""
    if weight is None and replace:  # (unit masses: the search's answer in closed form)
        return order[[min(int(random_state.uniform() * n), n - 1) for _ in range(size)]]
    weight = (np.ones(n) if weight is None else np.asarray(weight, dtype=np.float64))[order]
    exact = integer_weights(weight)
    total = _total(weight, n, exact)
    positions = np.empty(size, dtype=np.intp)
    for draw in range(size):
        position = int(search(None, weight, 0.0, [random_state.uniform() * total])[0])
        positions[draw] = position
        if not replace:
            taken = min(1.0, weight[position])
            weight[position] -= taken
            total -= int(taken) if exact else taken
    return order[positions]


class ValueDraws:
    """Draws of rows in proportion to ``w * values`` for one fit's weights and canonical
    order, the values changing between draws (k-means++'s squared distances).

    ``quantum``, ``quantised_total`` and ``search`` on the values in canonical order;
    for integer weights (exact sums) in one pass each (``_draws_kernel``), from the
    values in row order. The weight's share of ``quantum`` is computed once: ``bits``.
    """

    def __init__(self, weight, order):
        from . import _draws_kernel
        self._kernel = _draws_kernel
        self.weight = None if weight is None else np.asarray(weight, dtype=np.float64)
        self.order = np.asarray(order, dtype=np.intp)
        self.exact = integer_weights(self.weight)
        if self.exact:
            total = max(float(_total(self.weight, len(self.order), True)), 1.0)
            self.bits = min(52, 61 - int(np.ceil(np.log2(total + 1))))
        else:
            self._ordered_weight = self.weight[self.order]

    def __call__(self, values, size, random_state):
        """``size`` row indices drawn from ``size`` uniforms of ``random_state``."""
        if not self.exact:  # (float sums in canonical order: the numpy passes)
            ordered = values[self.order]
            q = quantum(ordered, self._ordered_weight)
            potential = quantised_total(ordered, self._ordered_weight, q)
            targets = random_state.uniform(size=size) * potential
            return self.order[search(ordered, self._ordered_weight, q, targets)]
        largest = self._kernel.largest_value(values, self.weight)
        q = (float(np.ldexp(1.0, int(np.frexp(largest)[1]) - self.bits))
             if largest > 0 else 0.0)
        potential = self._kernel.quantised_total(values, self.weight, q)
        targets = random_state.uniform(size=size) * potential
        return self.order[self._kernel.search(values, self.order, self.weight, q, targets)]


def exact_order(potentials, n_terms):
    """Whether the smallest of float sums ``potentials`` (each of ``n_terms`` terms >= 0,
    in any order) is surely the smallest of the exact sums: its lead over the next
    exceeds twice a bound on the rounding of both (``n_terms eps`` of each, doubled)."""
    if len(potentials) < 2:
        return True
    ordered = np.sort(potentials)
    bound = 2.0 * (n_terms + 2) * np.finfo(np.float64).eps * ordered[1]
    return bool(ordered[1] - ordered[0] > 2.0 * bound)


def _split(a):
    """Veltkamp's split of float64 ``a`` into halves of 26 bits (hi + lo == a)."""
    c = 134217729.0 * a  # 2**27 + 1
    hi = c - (c - a)
    return hi, a - hi


def exact_sums(terms, weight=None):
    """Per row of ``terms`` (float64 >= 0), ``sum_i w_i terms[:, i]`` correctly rounded
    from its exact value (each product split exactly by Dekker's two-product, then
    ``math.fsum``): the same float for weighted rows and their repeats, in any order."""
    import math

    if weight is None:
        return np.array([math.fsum(row) for row in terms])
    w = np.asarray(weight, dtype=np.float64)
    w_hi, w_lo = _split(w)
    sums = []
    for row in terms:
        product = w * row
        r_hi, r_lo = _split(row)
        error = ((w_hi * r_hi - product) + w_hi * r_lo + w_lo * r_hi) + w_lo * r_lo
        sums.append(math.fsum(np.concatenate([product, error])))
    return np.array(sums)


def random_responsibilities(X, start, stop, n_components, seed):
    """The "random" start's responsibilities of rows ``start:stop``: uniform numbers from
    a hash of each row's values and ``seed``, normalised per row. A row's numbers do not
    depend on its position or weight, so weighted rows and their repeats (identical
    rows, in any order) weigh the same responsibilities."""
    h = row_hashes(X, start, stop, seed)
    values = np.empty((stop - start, n_components))
    for j in range(n_components):
        bits = _mix(h + np.uint64((j + 1) * 0x9E3779B97F4A7C15 % 2**64))
        values[:, j] = ((bits >> np.uint64(11)).astype(np.float64) + 0.5) * 2.0**-53
    return values / values.sum(axis=1)[:, None]
