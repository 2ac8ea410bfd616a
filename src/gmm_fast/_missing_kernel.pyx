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

Rows go by chunks of at most CHUNK: per component, ``y = z P_k`` for the chunk by one
GEMM, the per-row q x q work in this file, the row log-sum-exp by kernels.h's
``gmm_normalize_chunk``, the second moments ``e^T (r e)`` by a second GEMM (the caller
keeps their upper triangle and mirrors it); the loops along the features are
missing_rows.h's, built per CPU level like the E-step's. Each row's Q is kept from the
log-density pass for the statistics (a chunk ends early if they would overflow its
buffer, sized from the data's largest q: the data decide, not the threads). The caller sorts rows by pattern: a row
with its predecessor's pattern reuses its factor, log det and Q (q >= 3; q = 1 and 2
are closed forms).

Determinism: rows are cut into ``n_blocks`` blocks (the first axis of ``blocks``; their
count depends on n_samples only). One thread sums one whole block in row order, the
caller adds the blocks in order: any ``n_threads`` gives bitwise identical statistics
(BLAS sequential inside the region, as for ``_estep``).
"""
from cython cimport floating
from cython.parallel cimport parallel, prange
from libc.math cimport log, sqrt, isnan
from libc.stdlib cimport free, malloc
from scipy.linalg.cython_blas cimport dgemm


cdef double LOG_2PI = 1.8378770664093453
# Rows per chunk: the full case's GEMMs (z P_k, e^T r e) run over a chunk's rows. One
# thread, (2e5, 16, 16) 5% missing, the 112k rows with NaN (AVX2 Zen 3): 64, 128 and
# 256 within noise (full 188-192 ms, diag 36-41 ms); 64 keeps the buffers smallest.
cdef Py_ssize_t CHUNK = 64
# Full case: doubles per component for the chunk's conditional covariances Q (q x q
# per distinct pattern, kept from the log-density pass for the statistics): up to 256
# per row (q = 16), fewer when no row misses that many (the budget is CHUNK q_max^2).
# A chunk that would overflow it ends early; at 16 per row, (2e4, 64, 16) full with
# every row its own 16-cell pattern ran in 4-row chunks, 1.20-1.28x the time of 256
# per row (one thread, CPU time, AVX2 Zen 3, load 8-9).
cdef Py_ssize_t Q_PER_ROW = 256


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
    """Lower Cholesky factor L (q x q, row-major) of P[cells, cells], its diagonal
    holding the pivots' reciprocals (one division per column, not per entry: sqrt and
    division latencies chain through the factor); returns log det."""
    cdef Py_ssize_t a, b, c
    cdef double s, pivot, product = 1.0, log_det = 0.0
    for a in range(q):
        for b in range(a + 1):
            s = P[cells[a] * d + cells[b]]
            for c in range(b):
                s -= L[a * q + c] * L[b * q + c]
            if a == b:
                pivot = sqrt(s)
                L[a * q + a] = 1.0 / pivot
                product *= pivot
                if a % 4 == 3:  # one log per 4 pivots (|log| < 4 x 354: no overflow)
                    log_det += log(product)
                    product = 1.0
            else:
                L[a * q + b] = s * L[b * q + b]
    return 2.0 * (log_det + log(product))


cdef inline void _solve(const double *L, Py_ssize_t q, double *t) noexcept nogil:
    """t <- (L L^T)^-1 t (forward then back substitution; L from ``_cholesky``)."""
    cdef Py_ssize_t a, c
    cdef double s
    for a in range(q):
        s = t[a]
        for c in range(a):
            s -= L[a * q + c] * t[c]
        t[a] = s * L[a * q + a]
    for a in range(q - 1, -1, -1):
        s = t[a]
        for c in range(a + 1, q):
            s -= L[c * q + a] * t[c]
        t[a] = s * L[a * q + a]


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
            Linv[a * q + b] = s * L[a * q + a]
        Linv[a * q + a] = L[a * q + a]
    for a in range(q):
        for b in range(a, q):
            s = 0.0
            for c in range(b, q):
                s += Linv[c * q + a] * Linv[c * q + b]
            Q[a * q + b] = s


from gmm_fast._kernels cimport gmm_normalize_chunk, gmm_set_kernel_level, gmm_supported_level


cdef extern from "kernels.h":
    # The missing-cells row loops (missing_rows.h, one build per CPU level).
    void gmm_missing_diag_distances(const double *xd, const double *o, Py_ssize_t n_rows,
                                    Py_ssize_t d, const double *mean, const double *p,
                                    const double *log_p, double *dist) noexcept nogil
    void gmm_missing_diag_moments(const double *xd, const double *o, Py_ssize_t n_rows,
                                  Py_ssize_t d, const double *mean, const double *offset,
                                  const double *inv_p, const double *r, double *sums,
                                  double *second) noexcept nogil
    void gmm_missing_centred(const double *xd, const double *o, Py_ssize_t n_rows,
                             Py_ssize_t d, const double *mean, double *z) noexcept nogil
    void gmm_row_dots(const double *a, const double *b, Py_ssize_t n_rows, Py_ssize_t d,
                      double *dot) noexcept nogil
    void gmm_missing_full_moments(double *z, Py_ssize_t n_rows, Py_ssize_t d,
                                  const double *offset, const double *r, double *sums,
                                  double *rz) noexcept nogil


def set_kernel_level(int level):
    """Use the kernels built for CPU level ``level`` (or the best supported below it);
    returns the level in use (``_cpu`` sets every module's)."""
    return gmm_set_kernel_level(level)


set_kernel_level(gmm_supported_level())


cdef struct Chunk:
    # One thread's buffers for CHUNK rows (component-major where per component).
    double *xd          # rows in float64, 0 in missing cells (c x d)
    double *o           # their observed mask: 1.0, 0.0 in missing cells (c x d)
    Py_ssize_t *cells   # each row's missing cells (c x d)
    Py_ssize_t *n_cells # q per row (c)
    double *z           # completed rows minus the means, per component (K x c x d)
    double *y           # z @ P_k, then the scaled rows r e (c x d)
    double *lp          # log-densities, then weighted responsibilities (K x c)
    double *log_norm    # (c)
    double *total       # (c)
    double *weights     # (c)
    double *L           # scratch q x q (each d x d)
    double *Linv
    double *Q
    double *t           # (d)
    double *Qs          # full case: each row's Q per component (K x q_total)
    Py_ssize_t *q_offset  # row i's Q at q_offset[i] (sum of the rows' q^2 before it)
    Py_ssize_t *same    # 1: row i has row i-1's pattern (shares its Q)
    Py_ssize_t q_total
    Py_ssize_t q_budget  # doubles per component in Qs


cdef void _full_log_prob(Chunk *ch, Py_ssize_t n_rows, Py_ssize_t K, Py_ssize_t d,
                         const double *P, const double *log_p, const double *inv_p,
                         const double *means,
                         const double *log_const) noexcept nogil:
    """lp[k, i] and the completed rows z[k, i] (x^ - mu_k) of a chunk, full P."""
    cdef Py_ssize_t k, i, j, a, q
    cdef double maha, log_det_mm, p00, p01, p11, det, last_log_det = 0.0
    cdef double *zk
    cdef double *zi
    cdef double *yi
    cdef double *Q
    cdef const Py_ssize_t *cells
    for k in range(K):
        zk = ch.z + k * n_rows * d
        gmm_missing_centred(ch.xd, ch.o, n_rows, d, means + k * d, zk)
        _gemm(n_rows, d, d, zk, P + k * d * d, 0.0, ch.y)  # y = z P_k (P symmetric)
        gmm_row_dots(zk, ch.y, n_rows, d, ch.total)  # z^T P z (ch.total: scratch)
        for i in range(n_rows):
            zi = zk + i * d
            yi = ch.y + i * d
            q = ch.n_cells[i]
            cells = ch.cells + i * d
            maha = ch.total[i]
            if q == 1:  # most rows at a few % missing: P_mm is a number, its log given
                log_det_mm = log_p[k * d + cells[0]]
                ch.t[0] = yi[cells[0]] * inv_p[k * d + cells[0]]
                ch.Qs[k * ch.q_total + ch.q_offset[i]] = inv_p[k * d + cells[0]]
            elif q == 2:  # by the adjugate: one division and one log, no square roots
                Q = ch.Qs + k * ch.q_total + ch.q_offset[i]
                p00 = P[(k * d + cells[0]) * d + cells[0]]
                p01 = P[(k * d + cells[0]) * d + cells[1]]
                p11 = P[(k * d + cells[1]) * d + cells[1]]
                det = p00 * p11 - p01 * p01
                log_det_mm = log(det)
                det = 1.0 / det
                Q[0] = p11 * det
                Q[1] = -p01 * det
                Q[3] = p00 * det
                ch.t[0] = Q[0] * yi[cells[0]] + Q[1] * yi[cells[1]]
                ch.t[1] = Q[1] * yi[cells[0]] + Q[3] * yi[cells[1]]
            else:
                if not ch.same[i]:  # else ch.L and Q are the previous row's (same k)
                    last_log_det = _cholesky(P + k * d * d, d, cells, q, ch.L)
                    _inverse(ch.L, q, ch.Linv, ch.Qs + k * ch.q_total + ch.q_offset[i])
                log_det_mm = last_log_det
                for a in range(q):
                    ch.t[a] = yi[cells[a]]  # g
                _solve(ch.L, q, ch.t)  # P_mm^-1 g = -delta
            for a in range(q):
                maha -= yi[cells[a]] * ch.t[a]
                zi[cells[a]] = -ch.t[a]
            ch.lp[k * n_rows + i] = log_const[k] - 0.5 * (log_det_mm + (d - q) * LOG_2PI
                                                          + maha)


cdef void _full_statistics(Chunk *ch, Py_ssize_t n_rows, Py_ssize_t K, Py_ssize_t d,
                           const double *P, const double *offset, double *out) noexcept nogil:
    """A chunk's nk, sums and upper-triangle second moments (+ Q in the missing block)."""
    cdef Py_ssize_t k, i, j, a, b, q
    cdef double r
    cdef double *zi
    cdef double *ri
    cdef double *row
    cdef const double *Q
    cdef const Py_ssize_t *cells
    cdef double *sums = out + 2 + K
    cdef double *second = out + 2 + K + K * d
    for k in range(K):
        # about the centres: e = z + offset, sums += r e, y = r e
        gmm_missing_full_moments(ch.z + k * n_rows * d, n_rows, d, offset + k * d,
                                 ch.lp + k * n_rows, sums + k * d, ch.y)
        for i in range(n_rows):
            r = ch.lp[k * n_rows + i]
            out[2 + k] += r
            q = ch.n_cells[i]
            if q and r != 0.0:
                cells = ch.cells + i * d
                Q = ch.Qs + k * ch.q_total + ch.q_offset[i]
                for a in range(q):
                    row = second + k * d * d + cells[a] * d
                    for b in range(a, q):
                        row[cells[b]] += r * Q[a * q + b]
        # second_k += e^T (r e): the chunk's outer products in one GEMM
        _gemm_tn(d, d, n_rows, ch.z + k * n_rows * d, ch.y, second + k * d * d)


cdef void _diagonal_chunk(Chunk *ch, Py_ssize_t n_rows, Py_ssize_t K, Py_ssize_t d,
                          const double *P, const double *log_p, const double *inv_p,
                          const double *means, const double *log_const,
                          const double *offset, double *out) noexcept nogil:
    """A chunk with diagonal precisions P (K x d): g = 0, the missing cells at the means,
    so with the observed mask o: z = o (x - mu_k), e = z + (mu_k - c_k),
    Q = (1 - o) / p. The loops along d are missing_rows.h's (built per CPU level)."""
    cdef Py_ssize_t k, i
    cdef double *dist = ch.total  # scratch until _normalize
    for k in range(K):
        # dist: maha + log det P_mm - q log 2pi
        gmm_missing_diag_distances(ch.xd, ch.o, n_rows, d, means + k * d, P + k * d,
                                   log_p + k * d, dist)
        for i in range(n_rows):
            ch.lp[k * n_rows + i] = log_const[k] - 0.5 * (d * LOG_2PI + dist[i])
    _normalize(ch, n_rows, K, out)
    for k in range(K):
        for i in range(n_rows):
            out[2 + k] += ch.lp[k * n_rows + i]
        gmm_missing_diag_moments(ch.xd, ch.o, n_rows, d, means + k * d, offset + k * d,
                                 inv_p + k * d, ch.lp + k * n_rows, out + 2 + K + k * d,
                                 out + 2 + K + K * d + k * d)


cdef inline void _normalize(Chunk *ch, Py_ssize_t n_rows, Py_ssize_t K,
                            double *out) noexcept nogil:
    """lp <- weighted responsibilities; the log-likelihood and weights into out[0:2]."""
    cdef Py_ssize_t i
    gmm_normalize_chunk(0, NULL, ch.lp, n_rows, K, ch.log_norm, ch.total, ch.weights)
    for i in range(n_rows):
        if ch.weights[i] != 0.0:  # a zero weight must not turn -inf into NaN
            out[0] += ch.weights[i] * ch.log_norm[i]
        out[1] += ch.weights[i]


cdef inline void _gemm(Py_ssize_t m, Py_ssize_t n, Py_ssize_t k, const double *a,
                       const double *b, double beta, double *c) noexcept nogil:
    """Row-major ``c[m, n] = a[m, k] @ b[k, n] + beta c`` (contiguous)."""
    # Column-major BLAS sees c.T = b.T @ a.T on the same storage.
    cdef int m_ = <int>n, n_ = <int>m, k_ = <int>k
    cdef double one = 1.0
    cdef char *no = 'N'
    dgemm(no, no, &m_, &n_, &k_, &one, <double*>b, &m_, <double*>a, &k_, &beta, c, &m_)


cdef inline void _gemm_tn(Py_ssize_t m, Py_ssize_t n, Py_ssize_t k, const double *a,
                          const double *b, double *c) noexcept nogil:
    """Row-major ``c[m, n] += a[k, m]^T @ b[k, n]`` (contiguous)."""
    cdef int m_ = <int>n, n_ = <int>m, k_ = <int>k
    cdef double one = 1.0
    cdef char *no = 'N'
    cdef char *yes = 'T'
    dgemm(no, yes, &m_, &n_, &k_, &one, <double*>b, &m_, <double*>a, &n_, &one, c, &m_)


cdef void _block(const floating *X, const double *sample_weight, Py_ssize_t start,
                 Py_ssize_t end, bint diagonal, Py_ssize_t K, Py_ssize_t d,
                 const double *P, const double *log_p, const double *inv_p,
                 const double *means, const double *log_const, const double *offset,
                 double *out, Chunk *ch) noexcept nogil:
    """Rows [start, end) in order, chunk by chunk, into one block's statistics ``out``."""
    cdef Py_ssize_t c = start, i, j, n_rows, q
    while c < end:
        # Up to CHUNK rows, fewer if their Q blocks would overflow Q_BUDGET (the data
        # decide, not the threads); one row always fits.
        n_rows = 0
        ch.q_total = 0
        while n_rows < CHUNK and c + n_rows < end:
            i = n_rows
            q = _missing_cells(X + (c + i) * d, d, ch.xd + i * d, ch.cells + i * d)
            # the previous row's pattern (the caller sorts rows by pattern): its
            # factors and Q serve this row too
            ch.same[i] = i > 0 and q == ch.n_cells[i - 1]
            j = 0
            while ch.same[i] and j < q:
                ch.same[i] = ch.cells[i * d + j] == ch.cells[(i - 1) * d + j]
                j += 1
            if not diagonal and i and not ch.same[i] and ch.q_total + q * q > ch.q_budget:
                break
            ch.n_cells[i] = q
            for j in range(d):
                ch.o[i * d + j] = 1.0
            for j in range(q):
                ch.o[i * d + ch.cells[i * d + j]] = 0.0
            if ch.same[i]:
                ch.q_offset[i] = ch.q_offset[i - 1]
            else:
                ch.q_offset[i] = ch.q_total
                ch.q_total += q * q
            ch.weights[i] = sample_weight[c + i] if sample_weight != NULL else 1.0
            n_rows += 1
        if diagonal:
            _diagonal_chunk(ch, n_rows, K, d, P, log_p, inv_p, means, log_const, offset,
                            out)
        else:
            _full_log_prob(ch, n_rows, K, d, P, log_p, inv_p, means, log_const)
            _normalize(ch, n_rows, K, out)
            _full_statistics(ch, n_rows, K, d, P, offset, out)
        c += n_rows


def missing_statistics(
    const floating[:, ::1] X,
    const double[::1] sample_weight,
    bint diagonal,
    const double[::1] precisions,
    const double[::1] log_precisions,
    const double[::1] inverse_precisions,
    const double[:, ::1] means,
    const double[::1] log_const,
    const double[:, ::1] offset,
    double[:, ::1] blocks,
    Py_ssize_t max_missing,
    int n_threads,
):
    """Statistics of rows with NaN cells, one row of ``blocks`` per block of rows.

    ``precisions``: flattened (k, d, d) full precisions, or (k, d) diagonals if
    ``diagonal``; ``log_precisions`` and ``inverse_precisions`` (k, d) the logs and
    reciprocals of their diagonals;
    ``log_const[k] = log pi_k - log det S_k / 2``; ``offset = means - centres``. Row b
    of ``blocks`` gets ``[w log-likelihood, sum of weights, nk (k), sums (k x d), second
    (full: k x d x d, upper triangle; diagonal: k x d)]`` about the centres.
    ``sample_weight`` None means unit weights. Every row must have an observed cell;
    ``max_missing`` is the most missing cells of a row (sizes the Q buffers).
    """
    cdef:
        Py_ssize_t n_samples = X.shape[0], d = X.shape[1], K = means.shape[0]
        Py_ssize_t n_blocks = blocks.shape[0], rows_per_block, b, start, end
        const double *weights = NULL
        Chunk *ch  # assigned in the parallel block: private to each thread
        Py_ssize_t z_rows = 0 if diagonal else K
        Py_ssize_t q_budget = CHUNK * min(max_missing * max_missing, Q_PER_ROW)

    blocks[...] = 0.0
    if n_samples == 0:
        return
    if sample_weight is not None:
        weights = &sample_weight[0]
    rows_per_block = (n_samples + n_blocks - 1) // n_blocks  # n_samples only
    with nogil, parallel(num_threads=n_threads):
        ch = <Chunk*> malloc(sizeof(Chunk))
        # the diagonal case needs neither z nor Qs (fresh pages cost: 7% of its pass)
        ch.xd = <double*> malloc(CHUNK * (3 * d + z_rows * d + 2 * K + 3) * sizeof(double)
                                 + (3 * d * d + d) * sizeof(double))
        ch.o = ch.xd + CHUNK * d
        ch.y = ch.o + CHUNK * d
        ch.z = ch.y + CHUNK * d
        ch.lp = ch.z + CHUNK * z_rows * d
        ch.log_norm = ch.lp + CHUNK * K
        ch.total = ch.log_norm + CHUNK
        ch.weights = ch.total + CHUNK
        ch.L = ch.weights + CHUNK
        ch.Linv = ch.L + d * d
        ch.Q = ch.Linv + d * d
        ch.t = ch.Q + d * d
        ch.cells = <Py_ssize_t*> malloc(CHUNK * (d + 3) * sizeof(Py_ssize_t))
        ch.n_cells = ch.cells + CHUNK * d
        ch.q_offset = ch.n_cells + CHUNK
        ch.same = ch.q_offset + CHUNK
        ch.q_budget = max(q_budget, d * d)  # one row always fits
        ch.Qs = (<double*> malloc(K * ch.q_budget * sizeof(double))
                 if not diagonal else NULL)
        for b in prange(n_blocks, schedule='dynamic'):
            start = b * rows_per_block
            end = min(start + rows_per_block, n_samples)
            if start < end:
                _block(&X[0, 0], weights, start, end, diagonal, K, d, &precisions[0],
                       &log_precisions[0], &inverse_precisions[0], &means[0, 0], &log_const[0], &offset[0, 0],
                       &blocks[b, 0], ch)
        free(ch.xd)
        free(ch.cells)
        free(ch.Qs)
        free(ch)
