"""Resolving ``n_threads`` and keeping BLAS sequential inside the OpenMP kernels."""
import contextlib
import numbers
import threading

from threadpoolctl import ThreadpoolController

from ._openmp import max_threads

_controller = None
_blas_lock = threading.Lock()
_blas_users = 0
_blas_restore = None

# More threads than this is a mistake, not a request (OpenMP takes a C int, and would
# try to start them all).
MAX_THREADS = 4096


def effective_n_threads(n_threads):
    """Threads a fit may use: ``None`` follows ``omp_get_max_threads()`` now (each pass
    then takes at most this many, ``pass_threads``)."""
    if n_threads is None:
        return max_threads()
    if (isinstance(n_threads, numbers.Integral) and not isinstance(n_threads, bool)
            and 1 <= n_threads <= MAX_THREADS):
        return int(n_threads)
    raise ValueError(f"n_threads={n_threads!r} should be a positive integer or None (at "
                     f"most {MAX_THREADS}; usually the number of cores).")


def _blas_libraries():
    """The BLAS libraries loaded when first asked (scanning them costs ~ms: done once)."""
    global _controller
    if _controller is None:
        _controller = ThreadpoolController()
    return [library for library in _controller.lib_controllers if library.user_api == "blas"]


@contextlib.contextmanager
def sequential_blas():
    """Context in which BLAS runs on one thread, since the kernels call it from OpenMP threads.

    Shared by all Python threads: the first to enter limits BLAS, the last to leave
    restores it (nested threadpoolctl contexts that exit out of order would not). Each
    library is set directly, and only if it is not on one thread already: 8 us a fit
    instead of threadpoolctl's ``limit`` (19 us, which asks every library for its
    version and config first; AVX2 Zen 3). Known gap: OpenBLAS (0.3.30, 0.3.31) ignores a raise of
    its thread count asked from a thread other than the one that lowered it, so when
    that other thread leaves last the count stays at 1 (threadpoolctl's restore has
    the same gap).
    """
    global _blas_users, _blas_restore
    with _blas_lock:
        if _blas_users == 0:
            _blas_restore = []
            for library in _blas_libraries():
                threads = library.get_num_threads()
                if threads is not None and threads != 1:
                    library.set_num_threads(1)
                    _blas_restore.append((library, threads))
        _blas_users += 1
    try:
        yield
    finally:
        with _blas_lock:
            _blas_users -= 1
            if _blas_users == 0:
                for library, threads in _blas_restore:
                    library.set_num_threads(threads)
                _blas_restore = None


# Blocks are the unit of deterministic reduction: one thread sums one block, the
# blocks are added in order. Their number depends on the data, never on threads.
MAX_BLOCKS = 64
MIN_ROWS_PER_BLOCK = 256
BLOCK_BUFFERS_BYTES = 16 * 2**20


def n_blocks(n_samples, stats_per_block):
    """How many row blocks to reduce over, for ``stats_per_block`` float64 statistics each."""
    by_rows = -(-n_samples // MIN_ROWS_PER_BLOCK)
    by_memory = BLOCK_BUFFERS_BYTES // (8 * max(stats_per_block, 1))
    return int(max(1, min(MAX_BLOCKS, by_rows, by_memory)))


# A pass takes a second (third...) thread only for at least this much work per thread,
# in estimated single-thread seconds (the callers' ``_*_seconds`` cost models). Below,
# waking a thread costs more than it saves: an OpenMP region's start and end barrier
# take ~10 us when the cores are free, a scheduler time slice or more (ms) when they
# are busy, as right after a multi-threaded numpy call whose OpenBLAS workers still
# spin, or beside other jobs. Measured on AVX2 Zen 3, 2 cores, with other jobs running
# (load ~4), 1 vs 2 threads, medians: kernel passes right after a 1000 x 1000 matmul,
# 2 threads took 1.2-130x as long up to 10 ms passes, 1.3-1.9x at 10-70 ms; after
# 0.25 s idle they won from ~20 ms (E-step diag (65536, 20, 10) 20.4 -> 13.1 ms) and
# lost below 2 ms. Whole GaussianMixture(8) fits on (n, 8) blobs: idle, n=32000 (5 ms
# E-steps) 138 -> 108 ms, n=2000 21.6 -> 35.8; after the matmul 2 threads lost at every
# n up to 128000. A user timed PCA(20) + GaussianMixture(10) on digits (1.3 ms
# E-steps) at 78 ms on 2 threads, 55 on 1. So passes from 4 ms (2 x this) take 2:
# scikit-learn's toy data sets fit on one, bench/run.py's smallest workloads ((1e5, 2,
# 4) E-step ~4.5 ms, (1e6, 2, 8) Lloyd ~8 ms) keep two (measure again on a quiet machine).
MIN_SECONDS_PER_THREAD = 2e-3


def pass_threads(n_threads, seconds, n_blocks):
    """Threads for one kernel pass of about ``seconds`` of single-thread work over
    ``n_blocks`` units of work.

    At most ``n_threads`` (what the user allows), one per block, and one per
    ``MIN_SECONDS_PER_THREAD`` of work. The answer does not depend on it: blocks, and
    the order they are added in, depend on the data only.
    """
    by_work = int(seconds // MIN_SECONDS_PER_THREAD)
    return max(1, min(n_threads, n_blocks, by_work))
