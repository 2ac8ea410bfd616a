"""One E-step pass over rows with NaN cells: marginal log-densities and M-step statistics.

A row with missing cells m (q of them) and observed cells o counts by its marginal
density over o. From the precisions P_k = S_k^-1 nothing but the q x q block
``P_mm`` is factored, per row and component (L L^T = P_mm, on the stack):

    z      = x - mu_k with 0 in the missing cells,  y = P_k z,  g = y_m
    delta  = -P_mm^-1 g  = E[x_m | x_o, k] - mu_k,m
    maha   = z^T y + g^T delta                      (= z_o^T S_oo^-1 z_o)
    log det S_oo = log det S_k + log det P_mm        (Schur complement)
    Q      = P_mm^-1 = Cov[x_m | x_o, k]

and the row's statistics about the caller's centres c_k use the completed row
``e = z + delta (in m) + mu_k - c_k``: nk += wr, sums += wr e, second += wr (e e^T + Q
in the missing block). For diag and spherical P is diagonal: g = 0, delta = 0 and
Q = 1 / p_m, so the row costs O(k d) (``_diagonal_row``).

Determinism: rows are cut into ``n_blocks`` blocks (the first axis of ``blocks``; their
count depends on n_samples only). One thread sums one whole block in row order, the
caller adds the blocks in order: any ``n_threads`` gives bitwise identical statistics.
The full case's second moments are summed in the upper triangle only (the caller
mirrors them), and per row only through loops along d that the compiler vectorises.
"""
from cython cimport floating
from cython.parallel cimport parallel, prange
from libc.math cimport exp, log, sqrt, INFINITY, isnan
from libc.stdlib cimport free, malloc


cdef double LOG_2PI = 1.8378770664093453


cdef inline Py_ssize_t _missing_cells(const floating *x, Py_ssize_t d, double *xd,
                                      Py_ssize_t *cells) noexcept nogil:
    """The row in float64 (0 in missing cells) and its missing cells; returns q."""
    cdef Py_ssize_t j, q = 0
    for j in range(d):
        if isnan(x[j]):
            cells[q] = j
            q += 1
            xd[j] = 0.0
        else:
            xd[j] = x[j]
    return q


cdef inline double _cholesky(const double *P, Py_ssize_t d, const Py_ssize_t *cells,
                             Py_ssize_t q, double *L) noexcept nogil:
    """Lower Cholesky factor L (q x q, row-major) of P[cells, cells]; returns log det."""
    cdef Py_ssize_t a, b, c
    cdef double s, log_det = 0.0
    for a in range(q):
        for b in range(a + 1):
            s = P[cells[a] * d + cells[b]]
            for c in range(b):
                s -= L[a * q + c] * L[b * q + c]
            if a == b:
                s = sqrt(s)
                L[a * q + a] = s
                log_det += log(s)
            else:
                L[a * q + b] = s / L[b * q + b]
    return 2.0 * log_det


cdef inline void _solve(const double *L, Py_ssize_t q, double *t) noexcept nogil:
    """t <- (L L^T)^-1 t (forward then back substitution)."""
    cdef Py_ssize_t a, c
    cdef double s
    for a in range(q):
        s = t[a]
        for c in range(a):
            s -= L[a * q + c] * t[c]
        t[a] = s / L[a * q + a]
    for a in range(q - 1, -1, -1):
        s = t[a]
        for c in range(a + 1, q):
            s -= L[c * q + a] * t[c]
        t[a] = s / L[a * q + a]


cdef inline void _inverse(const double *L, Py_ssize_t q, double *Linv,
                          double *Q) noexcept nogil:
    """Q = (L L^T)^-1 = L^-T L^-1, upper triangle (Linv: q x q scratch)."""
    cdef Py_ssize_t a, b, c
    cdef double s
    for a in range(q):  # L^-1, lower, row by row
        for b in range(a):
            s = 0.0
            for c in range(b, a):
                s -= L[a * q + c] * Linv[c * q + b]
            Linv[a * q + b] = s / L[a * q + a]
        Linv[a * q + a] = 1.0 / L[a * q + a]
    for a in range(q):
        for b in range(a, q):
            s = 0.0
            for c in range(b, q):
                s += Linv[c * q + a] * Linv[c * q + b]
            Q[a * q + b] = s


cdef inline double _finish_row(double *lp, Py_ssize_t K, double w, double *out) noexcept nogil:
    """lp <- w exp(lp - logsumexp(lp)) (the weighted responsibilities); adds the row's
    w * log-likelihood and w to out[0], out[1]."""
    cdef Py_ssize_t k
    cdef double top = -INFINITY, total = 0.0, log_norm
    for k in range(K):
        if lp[k] > top:
            top = lp[k]
    if top == -INFINITY:
        top = 0.0
    for k in range(K):
        total += exp(lp[k] - top)
    log_norm = top + log(total)
    if w != 0.0:  # a zero weight must not turn -inf into NaN
        out[0] += w * log_norm
    out[1] += w
    for k in range(K):
        lp[k] = w * exp(lp[k] - log_norm)
    return log_norm


cdef void _full_row(const double *xd, const Py_ssize_t *cells, Py_ssize_t q, double w,
                    Py_ssize_t K, Py_ssize_t d, const double *P, const double *means,
                    const double *log_const, const double *offset, double *out,
                    double *lp, double *z, double *y, double *L, double *Linv,
                    double *Q) noexcept nogil:
    """One row, full precisions: log-densities into lp, statistics into out
    (z: K x d, the completed rows x^ - mu_k; L: K x q x q, the factors)."""
    cdef Py_ssize_t k, i, j, a, b
    cdef double zi, maha, log_det_mm, r
    cdef double *zk
    cdef double *sums = out + 2 + K
    cdef double *second = out + 2 + K + K * d
    cdef double *row
    for k in range(K):
        zk = z + k * d
        for j in range(d):
            zk[j] = xd[j] - means[k * d + j]
        for a in range(q):
            zk[cells[a]] = 0.0
        for j in range(d):
            y[j] = 0.0
        for i in range(d):  # y = P_k z along rows of P (symmetric): vectorises over j
            zi = zk[i]
            if zi != 0.0:
                row = <double*>P + k * d * d + i * d
                for j in range(d):
                    y[j] += zi * row[j]
        maha = 0.0
        for j in range(d):
            maha += zk[j] * y[j]
        log_det_mm = _cholesky(P + k * d * d, d, cells, q, L + k * q * q)
        for a in range(q):
            Q[a] = y[cells[a]]  # g
        for a in range(q):
            Linv[a] = Q[a]
        _solve(L + k * q * q, q, Linv)  # P_mm^-1 g = -delta
        for a in range(q):
            maha -= Q[a] * Linv[a]
            zk[cells[a]] = -Linv[a]
        lp[k] = log_const[k] - 0.5 * (log_det_mm + (d - q) * LOG_2PI + maha)
    _finish_row(lp, K, w, out)
    for k in range(K):
        r = lp[k]
        if r == 0.0:
            continue
        out[2 + k] += r
        zk = z + k * d
        for j in range(d):
            zk[j] += offset[k * d + j]  # about the centres
        for j in range(d):
            sums[k * d + j] += r * zk[j]
        for i in range(d):  # upper triangle: second[i, i:] += r z_i z[i:]
            zi = r * zk[i]
            row = second + k * d * d + i * d
            for j in range(i, d):
                row[j] += zi * zk[j]
        if q:
            _inverse(L + k * q * q, q, Linv, Q)
            for a in range(q):
                row = second + k * d * d + cells[a] * d
                for b in range(a, q):
                    row[cells[b]] += r * Q[a * q + b]


cdef void _diagonal_row(const double *xd, const Py_ssize_t *cells, Py_ssize_t q, double w,
                        Py_ssize_t K, Py_ssize_t d, const double *P, const double *means,
                        const double *log_const, const double *offset, double *out,
                        double *lp, double *z) noexcept nogil:
    """One row, diagonal precisions P (K x d): g = 0, the missing cells at the means."""
    cdef Py_ssize_t k, j, a
    cdef double maha, log_det_mm, r, t
    cdef double *zk
    cdef double *sums = out + 2 + K
    cdef double *second = out + 2 + K + K * d
    for k in range(K):
        zk = z + k * d
        for j in range(d):
            zk[j] = xd[j] - means[k * d + j]
        log_det_mm = 0.0
        for a in range(q):
            zk[cells[a]] = 0.0
            log_det_mm += log(P[k * d + cells[a]])
        maha = 0.0
        for j in range(d):
            maha += P[k * d + j] * zk[j] * zk[j]
        lp[k] = log_const[k] - 0.5 * (log_det_mm + (d - q) * LOG_2PI + maha)
    _finish_row(lp, K, w, out)
    for k in range(K):
        r = lp[k]
        if r == 0.0:
            continue
        out[2 + k] += r
        zk = z + k * d
        for j in range(d):
            t = zk[j] + offset[k * d + j]
            sums[k * d + j] += r * t
            second[k * d + j] += r * t * t
        for a in range(q):  # Q = 1 / p in the missing cells
            second[k * d + cells[a]] += r / P[k * d + cells[a]]


cdef void _block(const floating *X, const double *sample_weight, Py_ssize_t start,
                 Py_ssize_t end, bint diagonal, Py_ssize_t K, Py_ssize_t d,
                 const double *P, const double *means, const double *log_const,
                 const double *offset, double *out, double *buffer,
                 Py_ssize_t *cells) noexcept nogil:
    """Rows [start, end) in order into one block's statistics ``out``."""
    cdef Py_ssize_t i, q
    cdef double w = 1.0
    cdef double *xd = buffer
    cdef double *lp = xd + d
    cdef double *y = lp + K
    cdef double *Linv = y + d
    cdef double *Q = Linv + d * d
    cdef double *z = Q + d * d
    cdef double *L = z + K * d
    for i in range(start, end):
        q = _missing_cells(X + i * d, d, xd, cells)
        if sample_weight != NULL:
            w = sample_weight[i]
        if diagonal:
            _diagonal_row(xd, cells, q, w, K, d, P, means, log_const, offset, out, lp, z)
        else:
            _full_row(xd, cells, q, w, K, d, P, means, log_const, offset, out, lp, z, y,
                      L, Linv, Q)


def missing_statistics(
    const floating[:, ::1] X,
    const double[::1] sample_weight,
    bint diagonal,
    const double[::1] precisions,
    const double[:, ::1] means,
    const double[::1] log_const,
    const double[:, ::1] offset,
    double[:, ::1] blocks,
    int n_threads,
):
    """Statistics of rows with NaN cells, one row of ``blocks`` per block of rows.

    ``precisions``: flattened (k, d, d) full precisions, or (k, d) diagonals if
    ``diagonal``; ``log_const[k] = log pi_k - log det S_k / 2``; ``offset = means -
    centres``. Row b of ``blocks`` gets ``[w log-likelihood, sum of weights, nk (k),
    sums (k x d), second (full: k x d x d, upper triangle; diagonal: k x d)]`` about
    the centres. ``sample_weight`` None means unit weights. Every row must have an
    observed cell.
    """
    cdef:
        Py_ssize_t n_samples = X.shape[0], d = X.shape[1], K = means.shape[0]
        Py_ssize_t n_blocks = blocks.shape[0], rows_per_block, b, start, end
        const double *weights = NULL
        double *buffer
        Py_ssize_t *cells

    blocks[...] = 0.0
    if n_samples == 0:
        return
    if sample_weight is not None:
        weights = &sample_weight[0]
    rows_per_block = (n_samples + n_blocks - 1) // n_blocks  # n_samples only
    with nogil, parallel(num_threads=n_threads):
        buffer = <double*> malloc((2 * d + K + 2 * d * d + K * d + K * d * d)
                                  * sizeof(double))
        cells = <Py_ssize_t*> malloc(d * sizeof(Py_ssize_t))
        for b in prange(n_blocks, schedule='dynamic'):
            start = b * rows_per_block
            end = min(start + rows_per_block, n_samples)
            if start < end:
                _block(&X[0, 0], weights, start, end, diagonal, K, d, &precisions[0],
                       &means[0, 0], &log_const[0], &offset[0, 0], &blocks[b, 0], buffer,
                       cells)
        free(buffer)
        free(cells)
