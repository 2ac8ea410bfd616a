"""Lloyd's k-means in one pass over X per iteration, and the k-means++ distances.

``lloyd_step`` assigns every sample to its nearest centre and accumulates, for the
new centres, the weighted sums of the samples, the weight and the inertia of each
cluster. Only ``|c|^2 - 2 x.c`` decides the nearest centre. For wide data the
distances of a chunk of rows to all centres come from one GEMM. Two direct C
loops (lloyd_rows.h, built per CPU level: kernels.h) take the shapes where the
GEMM's fixed costs dominate and fuse the argmin and the sums: narrow data (up to
16 features; float64 up to 32 at AVX2 in GCC builds), vectorised across a group of
rows; and wide rows with few centres,
a register block of rows x centres vectorised along the features, sized for the
level's registers. Both from the AVX2 level on; at the baseline level the GEMM
serves all (OpenBLAS picks the CPU's widest vector unit itself).

X is used about ``shift`` (its mean), as if it had been centred, so the dot
products do not cancel for data far from the origin; X itself is never copied.

Determinism: the rows are cut into ``n_blocks`` blocks (the first axis of the
caller's block buffers, which never depends on the thread count). One thread sums
one whole block in row order, and the caller adds the blocks in block order, so
any ``n_threads`` gives bitwise the same centres, labels and inertia.
"""
import numpy as np

from cython cimport floating
from cython.parallel cimport parallel, prange
from libc.float cimport DBL_EPSILON
from libc.math cimport INFINITY, frexp, ldexp
from libc.stdint cimport int64_t
from libc.stdlib cimport calloc, free, malloc
from libc.string cimport memcpy, memset
from scipy.linalg.cython_blas cimport dgemm, sgemm

from gmm_fast cimport _draws_core as core
from gmm_fast._threads import n_blocks

# Rows per distance computation: as many as keep a chunk of shifted rows within
# 256 KiB (they stay in L2 between the GEMM and the sums) and its distances to
# every centre within 512 KiB. The distances are written once by the GEMM and read
# once by the argmin, and with many centres a short chunk made the GEMM repack the
# centres too often: d=128 k=256 (2 threads, time / sklearn's) went 0.95 -> 0.91
# float64 and 0.89 -> 0.84 float32 against a 256 KiB budget for both together,
# with d=784 k=10 unchanged (its rows are the limit either way); 1 MiB for the
# rows made d=784 k=10 float32 ~20% slower.
cdef Py_ssize_t CHUNK_BYTES = 262144, DIST_BYTES = 524288
cdef Py_ssize_t MIN_CHUNK = 16, MAX_CHUNK = 4096

cpdef Py_ssize_t chunk_rows(Py_ssize_t n_features, Py_ssize_t n_clusters, Py_ssize_t itemsize):
    """Rows per chunk for this problem size (a chunk's rows and distances fit in L2)."""
    cdef Py_ssize_t rows = min(CHUNK_BYTES // (n_features * itemsize),
                               DIST_BYTES // (n_clusters * itemsize))
    return max(MIN_CHUNK, min(MAX_CHUNK, rows))

# Narrow data (n_features <= DIRECT_MAX_FEATURES): the GEMM's fixed cost per call and
# the scalar argmin over a row of distances dominated (d=16 k=64 float32: 44 ms of
# which the argmin alone ~20). This path computes the distances of a few rows at a
# time in registers, vectorised across centres, takes the argmin with vector
# reductions and adds the row's statistics while it is in cache.

from gmm_fast._kernels cimport gmm_set_kernel_level, gmm_supported_level


cdef extern from "kernels.h":
    # The row loops in C (kernels.h: one build per CPU level, picked at run time).
    enum:
        GMM_LEVEL_AVX2
        GMM_LEVEL_AVX512
    const Py_ssize_t GMM_LLOYD_ROW_BYTES, GMM_LLOYD_CENTERS, GMM_LLOYD_WIDE_ROWS
    const Py_ssize_t GMM_LLOYD_AVX2_DOUBLE_NARROW_MAX
    Py_ssize_t GMM_LLOYD_PAD_FEATURES(Py_ssize_t n_features) noexcept nogil
    Py_ssize_t argmin_float(const float *v, const float *off, Py_ssize_t n) noexcept nogil
    Py_ssize_t argmin_double(const double *v, const double *off, Py_ssize_t n) noexcept nogil
    double sq_dist_float(const float *x, const float *c, Py_ssize_t n) noexcept nogil
    double sq_dist_double(const double *x, const double *c, Py_ssize_t n) noexcept nogil
    void shift_rows_float(const float *X, Py_ssize_t n_rows, Py_ssize_t d, const float *shift,
                          float *xs) noexcept nogil
    void shift_rows_double(const double *X, Py_ssize_t n_rows, Py_ssize_t d,
                           const double *shift, double *xs) noexcept nogil
    void add_row_float(double *s, const float *x, double w, Py_ssize_t d) noexcept nogil
    void add_row_double(double *s, const double *x, double w, Py_ssize_t d) noexcept nogil
    void merge_spread(Py_ssize_t d, double seen, double *mean, double *m2, double count,
                      const double *their_mean, const double *their_m2) noexcept nogil
    void column_spread_float(const float *X, Py_ssize_t n_rows, Py_ssize_t d, double seen,
                             double *mean, double *m2, double *tile) noexcept nogil
    void column_spread_double(const double *X, Py_ssize_t n_rows, Py_ssize_t d, double seen,
                              double *mean, double *m2, double *tile) noexcept nogil
    void min_sq_dist_rows_float(const float *X, Py_ssize_t n_rows, Py_ssize_t d,
                                const float *center, double *closest) noexcept nogil
    void min_sq_dist_rows_double(const double *X, Py_ssize_t n_rows, Py_ssize_t d,
                                 const double *center, double *closest) noexcept nogil
    bint gmm_seed_fast() noexcept nogil
    double gmm_seed_lower(double *closest, const double *candidate,
                          Py_ssize_t n) noexcept nogil
    int64_t gmm_seed_mass_total(const double *values, Py_ssize_t n,
                                double inverse) noexcept nogil
    void seed_potentials_float(const float *X, const float *w, Py_ssize_t n_rows, Py_ssize_t d,
                               const double *candidates, Py_ssize_t n_candidates,
                               const double *closest, double *pot, double *dist,
                               Py_ssize_t dist_stride) noexcept nogil
    void seed_potentials_double(const double *X, const double *w, Py_ssize_t n_rows,
                                Py_ssize_t d, const double *candidates,
                                Py_ssize_t n_candidates, const double *closest,
                                double *pot, double *dist, Py_ssize_t dist_stride) noexcept nogil
    double lloyd_direct_float(bint rowwise, const float *X, const float *sample_weight,
                              const float *shift, Py_ssize_t n_rows, Py_ssize_t n_features,
                              const float *centers, const float *centers_m2,
                              const float *sq_norms, Py_ssize_t k_pad, int *labels,
                              double *sums, double *counts, float *xs, Py_ssize_t *changed,
                              int with_inertia) noexcept nogil
    double lloyd_direct_double(bint rowwise, const double *X, const double *sample_weight,
                               const double *shift, Py_ssize_t n_rows, Py_ssize_t n_features,
                               const double *centers, const double *centers_m2,
                               const double *sq_norms, Py_ssize_t k_pad, int *labels,
                               double *sums, double *counts, double *xs, Py_ssize_t *changed,
                               int with_inertia) noexcept nogil


# Up to 16 features the direct path beat the GEMM (2 threads, time / sklearn's:
# d=2 k=8 ~1.0 -> 0.5-0.6, d=16 k=64 ~1.0 -> 0.7); wider data takes the GEMM
# unless it has few centres (the row-wise path, see lloyd_step). At AVX2, float64
# rows up to 32 features too: the narrow path beat the DGEMM at every shape tried
# (one thread, ms per iteration, AMD EPYC: (1797, 20, 10) 0.097 -> 0.076, (1e5, 20,
# 10) 7.9 -> 4.2, (1e5, 24, 8) 7.7 -> 4.9, (1e5, 32, 16) 11.4 -> 7.4-8.3, (1e5, 20,
# 64) 17 -> 12.4-14, (1e5, 32, 256) 68 -> 58, and the row-wise path's (1e5, 32, 3)
# 6.5 -> 4.4); at d=40 it was even. Float32 lost there to the SGEMM ((1e5, 20, 10)
# 3.4 -> 3.8, (1e5, 32, 16) 5.6 -> 6.7-10); AVX-512 was not measured. (GCC builds;
# Clang's, even there, stop at 16: kernels.h's GMM_LLOYD_AVX2_DOUBLE_NARROW_MAX.)
cdef Py_ssize_t DIRECT_MAX_FEATURES = 16
# Whether the direct paths run (at the kernel level in use): both from AVX2. Built
# for baseline SSE2 the narrow one lost to the GEMM at every size tried (one thread,
# float64: d=2 k=8 15 vs 10 ms, d=8 k=16 43 vs 24, d=16 k=64 220 vs 104). The wide
# one's register block is sized per level (lloyd_rows.h: 4 rows x 4 centres of 64
# bytes for AVX-512's 32 registers, 3 x 4 of 32 bytes for AVX2's 16; the AVX-512
# block built for AVX2 spilled and lost 2.1-2.4x to the GEMM).
cdef bint DIRECT_ALLOWED = True
cdef bint DIRECT_FAST, WIDE_FAST
cdef int KERNEL_LEVEL


cdef void _choose_paths() noexcept:
    global DIRECT_FAST, WIDE_FAST
    DIRECT_FAST = DIRECT_ALLOWED and KERNEL_LEVEL >= GMM_LEVEL_AVX2
    WIDE_FAST = DIRECT_ALLOWED and KERNEL_LEVEL >= GMM_LEVEL_AVX2


def set_kernel_level(int level):
    """Run this module's row kernels at ``level`` (0 baseline, 1 AVX2, 2 AVX-512), or
    the best the CPU supports below it; returns the level in use (``gmm_fast._cpu``)."""
    global KERNEL_LEVEL
    KERNEL_LEVEL = gmm_set_kernel_level(level)
    _choose_paths()
    return KERNEL_LEVEL


set_kernel_level(gmm_supported_level())


def seed_form():
    """Whether dense k-means++ distances take the vector form (seed_rows.h): then
    ``min_sq_distances`` and ``candidate_potentials`` give bitwise the same ones."""
    return bool(WIDE_FAST and gmm_seed_fast())


def use_direct_path(bint enabled):
    """Allow (the default, from AVX2 on) or forbid the direct paths.

    Returns the previous setting. For tests: from the AVX2 level on it is the only
    way to run the GEMM path on narrow data or on wide data with few centres, and
    k-means++'s row loop, which the baseline level takes.
    """
    global DIRECT_ALLOWED
    previous = DIRECT_ALLOWED
    DIRECT_ALLOWED = enabled
    _choose_paths()
    return previous


cdef inline Py_ssize_t _argmin(const floating *v, const floating *off,
                               Py_ssize_t n) noexcept nogil:
    if floating is float:
        return argmin_float(v, off, n)
    else:
        return argmin_double(v, off, n)


cdef inline double _sq_dist(const floating *x, const floating *c, Py_ssize_t n) noexcept nogil:
    if floating is float:
        return sq_dist_float(x, c, n)
    else:
        return sq_dist_double(x, c, n)


cdef inline void _gemm_abt(Py_ssize_t m, Py_ssize_t n, Py_ssize_t k, floating alpha,
                           const floating *a, const floating *b, floating beta,
                           floating *c) noexcept nogil:
    """Row-major ``c[m, n] = alpha * a[m, k] @ b[n, k].T + beta * c``."""
    # Column-major BLAS sees c.T = b @ a.T: 'T' on b (stored k x n), 'N' on a.
    cdef int m_ = <int>n, n_ = <int>m, k_ = <int>k
    cdef char *trans_b = 'T'
    cdef char *trans_a = 'N'
    if floating is float:
        sgemm(trans_b, trans_a, &m_, &n_, &k_, &alpha, <float*>b, &k_,
              <float*>a, &k_, &beta, c, &m_)
    else:
        dgemm(trans_b, trans_a, &m_, &n_, &k_, &alpha, <double*>b, &k_,
              <double*>a, &k_, &beta, c, &m_)


cdef Py_ssize_t _nearest_in_chunk(
    const floating[:, ::1] X, const floating[::1] shift,
    const floating[:, ::1] centers, const floating[::1] centers_sq_norms,
    Py_ssize_t start, Py_ssize_t end, int[::1] labels,
    floating *xs, floating *dist,
) noexcept nogil:
    """Label rows ``start:end``, leaving the shifted rows in ``xs``; how many labels changed."""
    cdef:
        Py_ssize_t n_rows = end - start
        Py_ssize_t n_clusters = centers.shape[0], n_features = centers.shape[1]
        Py_ssize_t i, changed = 0
        int label

    if floating is float:
        shift_rows_float(&X[start, 0], n_rows, n_features, &shift[0], xs)
    else:
        shift_rows_double(&X[start, 0], n_rows, n_features, &shift[0], xs)
    # The nearest centre minimises |c|^2 - 2 xs.c (|x|^2 is the same for all): the GEMM
    # writes -2 xs @ centers.T and the argmin adds |c|^2 as it reads (filling dist with
    # |c|^2 for a beta=1 GEMM was an extra pass: 2 threads, d=128 k=256 159 -> 152 ms
    # float64, 84 -> 82 float32; d=64 k=256 88 -> 82.5, 47.6 -> 45.3).
    _gemm_abt(n_rows, n_clusters, n_features, -2.0, xs, &centers[0, 0], 0.0, dist)
    for i in range(n_rows):
        label = <int>_argmin(&dist[i * n_clusters], &centers_sq_norms[0], n_clusters)
        changed += labels[start + i] != label
        labels[start + i] = label
    return changed


cdef inline double _lloyd_direct(
    const floating[:, ::1] X, const floating *sample_weight,
    const floating[::1] shift, const floating[:, ::1] centers,
    const floating[:, ::1] centers_m2, const floating[::1] sq_norms,
    Py_ssize_t start, Py_ssize_t end, int[::1] labels,
    double *sums, double *counts, floating *xs, Py_ssize_t *changed, bint rowwise,
    bint with_inertia,
) noexcept nogil:
    """The direct path over rows ``start:end``; returns their inertia (or 0)."""
    cdef Py_ssize_t n = end - start, d = X.shape[1], k_pad = centers_m2.shape[0]
    cdef const floating *weights = sample_weight + start if sample_weight != NULL else NULL
    if rowwise:  # it takes the centres 4 then 2 at a time (the arrays hold a multiple of 4)
        k_pad = (centers.shape[0] + 1) // 2 * 2
    if floating is float:
        return lloyd_direct_float(
            rowwise, &X[start, 0], weights, &shift[0], n, d, &centers[0, 0],
            &centers_m2[0, 0], &sq_norms[0], k_pad, &labels[start], sums, counts, xs,
            changed, with_inertia)
    else:
        return lloyd_direct_double(
            rowwise, &X[start, 0], weights, &shift[0], n, d, &centers[0, 0],
            &centers_m2[0, 0], &sq_norms[0], k_pad, &labels[start], sums, counts, xs,
            changed, with_inertia)


cdef void _lloyd_block(
    const floating[:, ::1] X, const floating *sample_weight,
    const floating[::1] shift, const floating[:, ::1] centers,
    const floating[::1] centers_sq_norms,
    Py_ssize_t start, Py_ssize_t end, Py_ssize_t chunk, int[::1] labels,
    double *sums, double *counts, double *inertia, Py_ssize_t *changed,
    bint update_centers, bint with_inertia, floating *xs, floating *dist,
) noexcept nogil:
    """Label rows ``start:end``; add their statistics to one block's ``sums``, ``counts``."""
    cdef:
        Py_ssize_t n_features = centers.shape[1]
        Py_ssize_t chunk_start, chunk_end, i
        int label
        double w, block_inertia = 0.0
        Py_ssize_t block_changed = 0
        const floating *x
        const floating *c

    chunk_start = start
    while chunk_start < end:
        chunk_end = min(chunk_start + chunk, end)
        block_changed += _nearest_in_chunk(X, shift, centers, centers_sq_norms,
                                           chunk_start, chunk_end, labels, xs, dist)
        for i in range(chunk_end - chunk_start):
            label = labels[chunk_start + i]
            w = sample_weight[chunk_start + i] if sample_weight != NULL else 1.0
            x = &xs[i * n_features]
            c = &centers[label, 0]
            if with_inertia:  # the exact squared distance, not the GEMM form, which cancels
                block_inertia += w * _sq_dist(x, c, n_features)
            if update_centers:
                counts[label] += w
                if floating is float:
                    add_row_float(&sums[label * n_features], x, w, n_features)
                else:
                    add_row_double(&sums[label * n_features], x, w, n_features)
        chunk_start = chunk_end
    inertia[0] = block_inertia
    changed[0] = block_changed


cdef struct _Paths:
    # How a pass labels rows (lloyd_step's choice), and its buffers' shapes.
    bint narrow, rowwise, direct
    Py_ssize_t chunk, n_xs, k_pad


cdef _Paths _choose(Py_ssize_t n_features, Py_ssize_t n_clusters, Py_ssize_t itemsize):
    cdef _Paths p
    p.narrow = (n_features <= DIRECT_MAX_FEATURES
                or KERNEL_LEVEL == GMM_LEVEL_AVX2 and itemsize == 8
                and n_features <= GMM_LLOYD_AVX2_DOUBLE_NARROW_MAX)
    # Wide rows and few centres: the row-wise register blocks beat the GEMM while
    # k <= d/2 (float64) or d/8 (float32) at AVX-512. Kernel time / GEMM path's, 2
    # threads: float64 d=64 k=32 0.95, d=128 k=48 0.93, d=784 k=10 0.7, k=128 0.78,
    # but d=32 k=32 1.11; float32 d=64 k=8 0.81, k=16 1.13, d=128 k=16 0.95, k=32
    # 1.05, d=784 k=10 0.8 (the GEMM runs twice as fast in float32, these not).
    # AVX2's smaller block wins only for k <= 16 and k <= d/10 (float64), d/20
    # (float32); one thread: float64 d=20 k=2 0.78, k=10 1.66, d=64 k=4 0.95, k=10
    # 1.08, d=128 k=10 0.85, k=32 1.25, d=784 k=10 0.93, k=32 1.17; float32 d=128
    # k=4 0.82, k=10 1.18, d=256 k=10 0.92, k=32 1.19, d=784 k=10 0.86.
    p.rowwise = (not p.narrow and (
        n_clusters * (8 if itemsize == 4 else 2) <= n_features
        if KERNEL_LEVEL >= GMM_LEVEL_AVX512 else
        n_clusters <= 16 and n_clusters * (20 if itemsize == 4 else 10) <= n_features))
    p.direct = (DIRECT_FAST and p.narrow) or (WIDE_FAST and p.rowwise)
    p.chunk = chunk_rows(n_features, n_clusters, itemsize)
    p.n_xs = p.chunk * n_features
    p.k_pad = n_clusters
    if p.direct:
        # The direct paths take centres GMM_LLOYD_CENTERS at a time, the wide one then a
        # last pair (k=10: 10 dot products per row, not 12; d=784, 2 threads, c71f027:
        # float32 ~28 -> 26.5 ms, float64 ~48 -> 45.5); xs holds one group of rows
        # (transposed if narrow, else padded rows).
        p.k_pad = ((n_clusters + GMM_LLOYD_CENTERS - 1) // GMM_LLOYD_CENTERS
                   * GMM_LLOYD_CENTERS if p.narrow else (n_clusters + 1) // 2 * 2)
        p.chunk = GMM_LLOYD_ROW_BYTES // itemsize if p.narrow else GMM_LLOYD_WIDE_ROWS
        p.n_xs = (p.chunk * n_features if p.narrow
                  else GMM_LLOYD_WIDE_ROWS * GMM_LLOYD_PAD_FEATURES(n_features))
    return p


def padded_centers(Py_ssize_t n_features, Py_ssize_t n_clusters, Py_ssize_t itemsize):
    """Centres a dense pass on this shape computes distances to (the real ones, then
    padding that is never nearest): the direct paths' blocks (for tests)."""
    return _choose(n_features, n_clusters, itemsize).k_pad


def calls_blas(Py_ssize_t n_features, Py_ssize_t n_clusters, Py_ssize_t itemsize):
    """Whether a dense pass on this shape takes the GEMM path: BLAS, called from the
    pass's threads (the caller then keeps BLAS on one thread); the direct paths do not."""
    return not _choose(n_features, n_clusters, itemsize).direct


def _pass_buffers(_Paths p, Py_ssize_t n_features, Py_ssize_t n_blocks, dtype):
    """A pass's buffers: |c|^2 (the padded centres' +inf: never nearest), zeros for the
    direct paths' -2 c padded to their centre (and, wide, feature) blocks (a dummy for
    the GEMM path), and the labels changed per block."""
    m2_shape = (1, 1)
    if p.direct:
        m2_shape = (p.k_pad, n_features if p.narrow else GMM_LLOYD_PAD_FEATURES(n_features))
    return (np.full(p.k_pad, np.inf, dtype=dtype), np.zeros(m2_shape, dtype=dtype),
            np.empty(n_blocks, dtype=np.intp))


cdef void _centers_forms(const floating[:, ::1] centers, floating[::1] sq_norms,
                         floating[:, ::1] centers_m2, bint direct) noexcept nogil:
    """|c|^2 of each centre (the padded ones stay +inf: never nearest) and, for the
    direct paths, -2 c (|c|^2 - 2 x.c is then one FMA per feature; scaling by -2 is
    exact; the padding stays 0)."""
    cdef Py_ssize_t j, f
    for j in range(centers.shape[0]):
        sq_norms[j] = 0
        for f in range(centers.shape[1]):
            sq_norms[j] += centers[j, f] * centers[j, f]
            if direct:
                centers_m2[j, f] = -2 * centers[j, f]


# Passes over X made by _pass since import (for the tests' count of passes per fit; a
# plain counter: concurrent fits may lose counts).
cdef Py_ssize_t PASSES = 0
# Times each pass does its work (same answer): 2 in the CI gate's self-test only.
cdef int PASS_REPEATS = 1


def repeat_passes(int times):
    """Make every Lloyd pass do its work ``times`` times, with the same answer: the CI
    gate's self-test of a 2x slower kernel (``bench/gate.py``; Lloyd's loop runs in C,
    where no Python wrapper can repeat it). Returns the previous count."""
    global PASS_REPEATS
    if times < 1:
        raise ValueError(f"times={times} should be >= 1")
    previous, PASS_REPEATS = PASS_REPEATS, times
    return previous


def passes_over_x():
    """How many Lloyd passes over X (``lloyd_step``, or one of ``lloyd_iterations``)
    this process has made."""
    return PASSES


cdef Py_ssize_t _pass(
    const floating[:, ::1] X, const floating *weights, const floating[::1] shift,
    const floating[:, ::1] centers, const floating[::1] sq_norms,
    const floating[:, ::1] centers_m2, int[::1] labels, double[:, :, ::1] block_sums,
    double[:, ::1] block_counts, double[::1] block_inertia, Py_ssize_t[::1] block_changed,
    _Paths p, bint update_centers, int n_threads, bint with_inertia,
) noexcept nogil:
    """One pass over X with the centres' forms ready: ``lloyd_step``'s work (done
    ``PASS_REPEATS`` times: the labels changed are counted on the first)."""
    global PASSES
    cdef:
        Py_ssize_t n_samples = X.shape[0], n_features = X.shape[1]
        Py_ssize_t n_clusters = centers.shape[0], n_blocks = block_inertia.shape[0]
        Py_ssize_t rows_per_block = (n_samples + n_blocks - 1) // n_blocks
        Py_ssize_t b, start, end, changed = 0
        int repeat
        floating *xs
        floating *dist
        double *sums
        double *counts
    PASSES += 1
    for repeat in range(PASS_REPEATS):
        with parallel(num_threads=n_threads):
            xs = <floating*> calloc(p.n_xs, sizeof(floating))  # rowwise: zero padding
            dist = <floating*> malloc(p.chunk * n_clusters * sizeof(floating))
            # Each thread sums a block in its own buffers, then copies them to the block's
            # slots: neighbouring slots share cache lines, and two threads adding rows into
            # them (one store per row) made d=2 k=8 up to 1.7x slower, depending on where
            # numpy put the arrays (2.85 ms 64-byte aligned, 4.81 at offset 48).
            sums = <double*> malloc(n_clusters * n_features * sizeof(double))
            counts = <double*> malloc(n_clusters * sizeof(double))
            for b in prange(n_blocks, schedule='dynamic'):
                start = b * rows_per_block
                end = min(start + rows_per_block, n_samples)
                block_inertia[b] = 0.0
                block_changed[b] = 0
                if update_centers:
                    memset(sums, 0, n_clusters * n_features * sizeof(double))
                    memset(counts, 0, n_clusters * sizeof(double))
                if start < end and p.direct:
                    block_inertia[b] = _lloyd_direct(
                        X, weights, shift, centers, centers_m2, sq_norms,
                        start, end, labels, sums if update_centers else NULL,
                        counts if update_centers else NULL, xs, &block_changed[b], p.rowwise,
                        with_inertia)
                elif start < end:
                    _lloyd_block(X, weights, shift, centers, sq_norms,
                                 start, end, p.chunk, labels, sums if update_centers else NULL,
                                 counts if update_centers else NULL, &block_inertia[b],
                                 &block_changed[b], update_centers, with_inertia, xs, dist)
                if update_centers:
                    memcpy(&block_sums[b, 0, 0], sums,
                           n_clusters * n_features * sizeof(double))
                    memcpy(&block_counts[b, 0], counts, n_clusters * sizeof(double))
            free(xs)
            free(dist)
            free(sums)
            free(counts)
        if repeat == 0:  # (a repeat finds the labels it set: none changed)
            for b in range(n_blocks):
                changed += block_changed[b]
    return changed


def lloyd_step(
    const floating[:, ::1] X,
    const floating[::1] sample_weight,
    const floating[::1] shift,
    const floating[:, ::1] centers,
    int[::1] labels,
    double[:, :, ::1] block_sums,
    double[:, ::1] block_counts,
    double[::1] block_inertia,
    bint update_centers,
    int n_threads,
    bint with_inertia=True,
):
    """Assign samples to their nearest centre; sum each block's statistics.

    Writes ``labels`` and, per block ``b``, ``block_inertia[b]`` (when
    ``with_inertia``, else 0: Lloyd's iterations need no inertia, and its exact
    distances cost a pass over each row) and, when ``update_centers``,
    ``block_counts[b, j]`` (weight of cluster j) and ``block_sums[b, j]``
    (weighted sum of ``x - shift`` over cluster j). The caller adds the blocks
    in order. ``centers`` are about ``shift`` too. ``sample_weight`` None means
    unit weights (no n-vector of ones).
    Returns how many labels changed, counted as they are overwritten, so the
    caller's strict-convergence test needs no copy of the labels nor a pass.
    """
    cdef:
        Py_ssize_t n_features = X.shape[1], n_clusters = centers.shape[0]
        _Paths p = _choose(n_features, n_clusters, sizeof(floating))
        const floating *weights = NULL if sample_weight is None else &sample_weight[0]

    block_sums[...] = 0.0
    block_counts[...] = 0.0
    block_inertia[...] = 0.0
    if X.shape[0] == 0 or block_inertia.shape[0] == 0:
        return 0
    dtype = np.float32 if floating is float else np.float64
    cdef floating[::1] sq_norms
    cdef floating[:, ::1] centers_m2
    cdef Py_ssize_t[::1] block_changed
    sq_norms, centers_m2, block_changed = _pass_buffers(p, n_features,
                                                        block_inertia.shape[0], dtype)
    _centers_forms(centers, sq_norms, centers_m2, p.direct)
    with nogil:
        changed = _pass(X, weights, shift, centers, sq_norms, centers_m2, labels,
                        block_sums, block_counts, block_inertia, block_changed, p,
                        update_centers, n_threads, with_inertia)
    return changed


# How lloyd_iterations stops: out of iterations, converged, or after a step that left a
# cluster empty (its statistics in the block buffers, for the caller to relocate).
cdef enum:
    _MAX_ITER, _CONVERGED, _EMPTY_CLUSTER
MAX_ITER, CONVERGED, EMPTY_CLUSTER = _MAX_ITER, _CONVERGED, _EMPTY_CLUSTER


def lloyd_iterations(
    const floating[:, ::1] X,
    const floating[::1] sample_weight,
    const floating[::1] shift,
    floating[:, ::1] centers,
    int[::1] labels,
    double[:, :, ::1] block_sums,
    double[:, ::1] block_counts,
    double[::1] block_inertia,
    int n_threads,
    Py_ssize_t n_iter,
    Py_ssize_t max_iter,
    double tol,
):
    """Lloyd's iterations ``n_iter + 1 ..`` in C: each a ``lloyd_step``, the blocks added
    in order, the centres (about ``shift``, updated in place) moved to their clusters'
    means. Stops when no label changed or the squared centre shift is at most ``tol``,
    at ``max_iter``, or after a step that left a cluster empty, before its update (the
    caller relocates, from the block buffers). Returns ``(n_iter, how, n_changed)``,
    ``how`` one of ``MAX_ITER``, ``CONVERGED``, ``EMPTY_CLUSTER``.

    The same arithmetic as the step-by-step loop in Python (``_kmeans.lloyd``), without
    its ~40 us of numpy calls per iteration, which on small data (iris: ~3 us of
    kernel) were most of a fit.
    """
    cdef:
        Py_ssize_t n_features = X.shape[1], n_clusters = centers.shape[0]
        Py_ssize_t n_blocks = block_inertia.shape[0], b, j, f
        _Paths p = _choose(n_features, n_clusters, sizeof(floating))
        const floating *weights = NULL if sample_weight is None else &sample_weight[0]
        Py_ssize_t changed = 0
        int how = _MAX_ITER
        bint empty
        double moved, center_shift
        floating new

    if X.shape[0] == 0 or n_blocks == 0:
        raise ValueError("lloyd_iterations needs samples and at least one block")
    dtype = np.float32 if floating is float else np.float64
    cdef floating[::1] sq_norms
    cdef floating[:, ::1] centers_m2
    cdef Py_ssize_t[::1] block_changed
    sq_norms, centers_m2, block_changed = _pass_buffers(p, n_features, n_blocks, dtype)
    cdef double[:, ::1] sums = np.empty((n_clusters, n_features))
    cdef double[::1] counts = np.empty(n_clusters)

    with nogil:
        while n_iter < max_iter:
            n_iter += 1
            _centers_forms(centers, sq_norms, centers_m2, p.direct)
            changed = _pass(X, weights, shift, centers, sq_norms, centers_m2, labels,
                            block_sums, block_counts, block_inertia, block_changed, p,
                            True, n_threads, False)
            # The blocks in block order (as numpy's sum over the first axis adds them).
            for j in range(n_clusters):
                counts[j] = block_counts[0, j]
                for f in range(n_features):
                    sums[j, f] = block_sums[0, j, f]
            for b in range(1, n_blocks):
                for j in range(n_clusters):
                    counts[j] += block_counts[b, j]
                    for f in range(n_features):
                        sums[j, f] += block_sums[b, j, f]
            empty = False
            for j in range(n_clusters):
                empty = empty or not counts[j] > 0
            if empty:
                how = _EMPTY_CLUSTER
                break
            center_shift = 0.0
            for j in range(n_clusters):
                for f in range(n_features):
                    new = <floating> (sums[j, f] / counts[j])
                    moved = <double> new - <double> centers[j, f]
                    center_shift += moved * moved
                    centers[j, f] = new
            if changed == 0 or center_shift <= tol:
                how = _CONVERGED
                break
    return n_iter, how, changed


# Rows per tile of column_mean_and_variance: a tile is read twice (its mean, then its
# spread about it), the second time from L2.
cdef Py_ssize_t SPREAD_TILE_BYTES = 131072


def column_mean_and_variance(X, int n_threads=1):
    """Per-feature mean and variance of X in float64, in one read of X on up to
    ``n_threads`` threads: each tile of rows' mean and spread about it (two passes while
    it is in cache), merged in row order within a block and the blocks in block order
    (``_threads.n_blocks``), so the answer does not depend on the threads. The old two
    passes over X (a mean, then squares about it) took ~90 ms at (1e5, 784) float64,
    more than a Lloyd iteration."""
    X = np.ascontiguousarray(X, dtype=np.float32 if X.dtype == np.float32 else np.float64)
    return _mean_and_variance(X, n_threads)


def _mean_and_variance(const floating[:, ::1] X, int n_threads):
    cdef:
        Py_ssize_t n = X.shape[0], d = X.shape[1], b, f, start, stop, t
        Py_ssize_t blocks = n_blocks(n, 2 * d)
        Py_ssize_t block_rows = (n + blocks - 1) // blocks
        Py_ssize_t tile = max(1, SPREAD_TILE_BYTES // max(1, d * sizeof(floating)))
        double[:, ::1] means = np.zeros((blocks, d)), m2s = np.zeros((blocks, d))
        double[::1] mean = np.zeros(d), variance = np.zeros(d)
        double *scratch
        double seen, rows
    with nogil, parallel(num_threads=n_threads):
        scratch = <double*> malloc(2 * d * sizeof(double))
        for b in prange(blocks, schedule='static'):
            stop = min(n, (b + 1) * block_rows)
            start = b * block_rows
            seen = 0
            while start < stop:
                t = min(tile, stop - start)
                if floating is float:
                    column_spread_float(&X[start, 0], t, d, seen, &means[b, 0], &m2s[b, 0],
                                        scratch)
                else:
                    column_spread_double(&X[start, 0], t, d, seen, &means[b, 0],
                                         &m2s[b, 0], scratch)
                seen = seen + t
                start = start + t
        free(scratch)
    # The blocks in order, by the tiles' update (a block's rows: all but a last one's).
    seen = 0
    for b in range(blocks):
        rows = min(n, (b + 1) * block_rows) - min(n, b * block_rows)
        if rows > 0:
            merge_spread(d, seen, &mean[0], &variance[0], rows, &means[b, 0], &m2s[b, 0])
            seen += rows
    for f in range(d):
        variance[f] /= n
    return np.asarray(mean), np.asarray(variance)


cdef void _min_sq_distances(
    const floating[:, ::1] X, const floating *center, const double *center64,
    double[::1] closest_sq_dist, int n_threads, bint seed_form,
) noexcept nogil:
    """``min_sq_distances``' pass (``seed_form``: by the vector form)."""
    cdef:
        Py_ssize_t n_samples = X.shape[0], n_features = X.shape[1]
        Py_ssize_t step = 1024, n_steps = (n_samples + step - 1) // step, s, start, i, rows
        double *dist
        double pot

    with parallel(num_threads=n_threads):
        dist = <double*> malloc(step * sizeof(double))
        for s in prange(n_steps, schedule='static'):
            start = s * step
            rows = min(step, n_samples - start)
            if seed_form:
                pot = 0.0
                if floating is float:
                    seed_potentials_float(&X[start, 0], NULL, rows, n_features, center64,
                                          1, &closest_sq_dist[start], &pot, dist, step)
                else:
                    seed_potentials_double(&X[start, 0], NULL, rows, n_features, center64,
                                           1, &closest_sq_dist[start], &pot, dist, step)
                for i in range(rows):
                    if dist[i] < closest_sq_dist[start + i]:
                        closest_sq_dist[start + i] = dist[i]
            elif floating is float:
                min_sq_dist_rows_float(&X[start, 0], rows, n_features, center,
                                       &closest_sq_dist[start])
            else:
                min_sq_dist_rows_double(&X[start, 0], rows, n_features, center,
                                        &closest_sq_dist[start])
        free(dist)


def min_sq_distances(
    const floating[:, ::1] X,
    const floating[::1] center,
    double[::1] closest_sq_dist,
    int n_threads,
    bint like_candidates=False,
):
    """``closest_sq_dist[i] = min(closest_sq_dist[i], |X[i] - center|^2)`` (k-means++).

    ``like_candidates`` (where ``seed_form()``): by ``candidate_potentials``' vector
    form (seed_rows.h), bitwise the distances it keeps for the same centre, instead of
    the faster sums along each row (AVX2, one thread: 2.6 vs 7.1 ms at (1e6, 2), 12.6
    vs 33 at (2e5, 128) float64)."""
    cdef const double[::1] center64 = np.asarray(center, dtype=np.float64)
    if X.shape[0] == 0:
        return
    with nogil:
        _min_sq_distances(X, &center[0], &center64[0], closest_sq_dist, n_threads,
                          like_candidates and WIDE_FAST and gmm_seed_fast())


cdef void _potentials_block(
    const floating[:, ::1] X, const floating *sample_weight,
    const floating[:, ::1] candidates, const double *candidates64,
    const double[::1] closest_sq_dist,
    Py_ssize_t start, Py_ssize_t end, double *pot, double *dist, Py_ssize_t dist_stride,
) noexcept nogil:
    """Add ``w * min(closest, |x - candidate|^2)`` over rows ``start:end`` to ``pot``;
    with ``dist`` (not NULL), also ``dist[t * dist_stride + i] = |x_i - candidate_t|^2``.
    ``candidates64``: the candidates in float64, for the vector form (seed_rows.h)."""
    cdef:
        Py_ssize_t n_candidates = candidates.shape[0], n_features = X.shape[1]
        Py_ssize_t i, t, f
        double sq, diff
        const floating *w = sample_weight + start if sample_weight != NULL else NULL

    if WIDE_FAST and gmm_seed_fast():
        if floating is float:
            seed_potentials_float(&X[start, 0], w, end - start, n_features, candidates64,
                                  n_candidates, &closest_sq_dist[start], pot,
                                  dist + start if dist != NULL else NULL, dist_stride)
        else:
            seed_potentials_double(&X[start, 0], w, end - start, n_features, candidates64,
                                   n_candidates, &closest_sq_dist[start],
                                   pot, dist + start if dist != NULL else NULL, dist_stride)
        return
    for i in range(start, end):
        for t in range(n_candidates):
            sq = 0.0
            for f in range(n_features):
                diff = <double>X[i, f] - candidates[t, f]
                sq = sq + diff * diff
            if dist != NULL:
                dist[t * dist_stride + i] = sq
            pot[t] += (
                (sample_weight[i] if sample_weight != NULL else 1.0)
                * min(sq, closest_sq_dist[i]))


cdef void _potentials(
    const floating[:, ::1] X, const floating *weights, const floating[:, ::1] candidates,
    const double *candidates64, const double[::1] closest_sq_dist,
    double[:, ::1] block_potentials, int n_threads, double *dist,
) noexcept nogil:
    """``candidate_potentials``' pass (``dist`` NULL: no distances kept)."""
    cdef:
        Py_ssize_t n_samples = X.shape[0], n_blocks = block_potentials.shape[0]
        Py_ssize_t rows_per_block = (n_samples + n_blocks - 1) // n_blocks
        Py_ssize_t b, start, end, n_candidates = candidates.shape[0]
        double *pot

    with parallel(num_threads=n_threads):
        # Summed in the thread's own buffer, as lloyd_step's sums (no shared cache lines).
        pot = <double*> malloc(n_candidates * sizeof(double))
        for b in prange(n_blocks, schedule='dynamic'):
            start = b * rows_per_block
            end = min(start + rows_per_block, n_samples)
            memset(pot, 0, n_candidates * sizeof(double))
            if start < end:
                _potentials_block(X, weights, candidates, candidates64,
                                  closest_sq_dist, start, end, pot, dist, n_samples)
            memcpy(&block_potentials[b, 0], pot, n_candidates * sizeof(double))
        free(pot)


def candidate_potentials(
    const floating[:, ::1] X,
    const floating[::1] sample_weight,
    const floating[:, ::1] candidates,
    const double[::1] closest_sq_dist,
    double[:, ::1] block_potentials,
    int n_threads,
    double[:, ::1] candidate_sq_dist=None,
):
    """Per block, the k-means++ potential each candidate centre would leave.

    ``block_potentials[b, t]`` sums ``w * min(closest, |x - candidates[t]|^2)``
    over the rows of block ``b``; the caller adds the blocks in order.
    ``sample_weight`` None means unit weights. ``candidate_sq_dist`` (shape
    ``(n_candidates, n_samples)``), when given, receives every ``|x - candidates[t]|^2``,
    so that the chosen candidate's distances need no second pass over X.
    """
    cdef:
        Py_ssize_t n_candidates = candidates.shape[0]
        const floating *weights = NULL if sample_weight is None else &sample_weight[0]
        double *dist = NULL
        # (float32 candidates widened once here, not per row in the kernel; exact)
        const double[:, ::1] candidates64 = np.asarray(candidates, dtype=np.float64)

    block_potentials[...] = 0.0
    if X.shape[0] == 0 or block_potentials.shape[0] == 0:
        return
    if candidate_sq_dist is not None:
        if (candidate_sq_dist.shape[0] != n_candidates
                or candidate_sq_dist.shape[1] != X.shape[0]):
            raise ValueError("candidate_sq_dist should have shape (n_candidates, n_samples).")
        dist = &candidate_sq_dist[0, 0]
    with nogil:
        _potentials(X, weights, candidates, &candidates64[0, 0], closest_sq_dist,
                    block_potentials, n_threads, dist)


def seed_rounds(
    const floating[:, ::1] X,
    const floating[::1] sample_weight,
    const double[::1] weight,
    const Py_ssize_t[::1] order,
    int bits,
    floating[:, ::1] centers,
    Py_ssize_t[::1] indices,
    double[::1] closest_sq_dist,
    double[:, ::1] kept,
    const double[::1] uniforms,
    Py_ssize_t first,
    double[:, ::1] block_potentials,
    Py_ssize_t[::1] candidate_ids,
    int candidate_threads,
    int distance_threads,
):
    """k-means++ rounds ``first, first + 1, ..`` in C, for dense X and integer weights
    (``_kmeans._kmeans_plusplus``'s loop, the same arithmetic, without its ~60 us of
    numpy calls per round, which were most of the seeding on small data).

    Round ``c`` draws its candidates from ``uniforms[(c - 1) t:c t]`` by the exact
    draws (``_draws_core``; ``weight``: the weights in float64 or None, ``bits`` from
    ``_draws.ValueDraws``), keeps the one of least potential as ``centers[c]``
    (``indices[c]``) and lowers ``closest_sq_dist`` to it (from ``kept``'s distances if
    given). Returns the round it stopped at: ``len(centers)`` when done, or a round whose
    best candidates are too close to rank surely in floats (``_draws.exact_order``),
    their rows in ``candidate_ids``, for the caller to rank by exact sums.
    """
    cdef:
        Py_ssize_t n_samples = X.shape[0], n_features = X.shape[1]
        Py_ssize_t n_clusters = centers.shape[0], t = candidate_ids.shape[0]
        Py_ssize_t n_blocks = block_potentials.shape[0], c = first, i, j, b, best
        const floating *weights = NULL if sample_weight is None else &sample_weight[0]
        const double *w = NULL if weight is None else &weight[0]
        double *dist = NULL if kept is None else &kept[0, 0]
        double top, q, total, low, second, bound
        int exponent
        bint seed_form = WIDE_FAST and gmm_seed_fast()
        floating[:, ::1] candidates = np.empty((t, n_features),
                                               dtype=np.float32 if floating is float
                                               else np.float64)
        double[:, ::1] candidates64 = np.empty((t, n_features))
        double[::1] center64 = np.empty(n_features)
        double[::1] targets = np.empty(t), potentials = np.empty(t)
        Py_ssize_t[::1] rank = np.empty(t, dtype=np.intp), found = np.empty(t, dtype=np.intp)

    if (t == 0 or n_samples == 0 or uniforms.shape[0] < (n_clusters - 1) * t
            or candidates.shape[0] != block_potentials.shape[1]):
        raise ValueError("seed_rounds: inconsistent buffers")
    with nogil:
        # (the largest distance: for unit weights from the pass that lowers them)
        top = (gmm_seed_lower(&closest_sq_dist[0], NULL, n_samples) if w == NULL
               else core.largest(&closest_sq_dist[0], w, n_samples))
        while c < n_clusters:
            # The draws (_draws.ValueDraws): t rows in proportion to w rint(D^2 / q).
            q = 0.0
            if top > 0:
                frexp(top, &exponent)
                q = ldexp(1.0, exponent - bits)
            if w == NULL and core.reciprocal(q) > 0:  # (vectorised, the same total)
                total = <double> gmm_seed_mass_total(&closest_sq_dist[0], n_samples,
                                                     core.reciprocal(q))
            else:
                total = <double> core.quantised_total(&closest_sq_dist[0], w, n_samples, q)
            for i in range(t):  # targets, and their ranks by a stable insertion sort
                targets[i] = uniforms[(c - 1) * t + i] * total
                j = i
                while j > 0 and targets[rank[j - 1]] > targets[i]:
                    rank[j] = rank[j - 1]
                    j -= 1
                rank[j] = i
            for i in range(t):
                potentials[i] = targets[rank[i]]  # (sorted, borrowed for the search)
            core.search_sorted(&closest_sq_dist[0], &order[0], w, n_samples, q,
                               &potentials[0], &rank[0], t, &found[0])
            for i in range(t):
                candidate_ids[i] = order[found[i]]
                for j in range(n_features):
                    candidates[i, j] = X[candidate_ids[i], j]
                    candidates64[i, j] = X[candidate_ids[i], j]
            # Their potentials, the blocks added in order; the least, if surely least.
            _potentials(X, weights, candidates, &candidates64[0, 0], closest_sq_dist,
                        block_potentials, candidate_threads, dist)
            for i in range(t):
                potentials[i] = block_potentials[0, i]
                for b in range(1, n_blocks):
                    potentials[i] += block_potentials[b, i]
            best = 0
            for i in range(1, t):
                if potentials[i] < potentials[best]:
                    best = i
            if t > 1:  # (_draws.exact_order)
                low, second = potentials[best], INFINITY
                for i in range(t):
                    if i != best and potentials[i] < second:
                        second = potentials[i]
                bound = 2.0 * (n_samples + 2) * DBL_EPSILON * second
                if not second - low > 2.0 * bound:
                    break
            indices[c] = candidate_ids[best]
            for j in range(n_features):
                centers[c, j] = X[indices[c], j]
                center64[j] = X[indices[c], j]
            if kept is None:
                _min_sq_distances(X, &centers[c, 0], &center64[0], closest_sq_dist,
                                  distance_threads, False)
                top = gmm_seed_lower(&closest_sq_dist[0], NULL, n_samples)
            else:  # (selects, not branches: taken at random, a branch mispredicted)
                top = gmm_seed_lower(&closest_sq_dist[0], &kept[best, 0], n_samples)
            if w != NULL:
                top = core.largest(&closest_sq_dist[0], w, n_samples)
            c += 1
    return c
