"""Resolving ``n_threads`` and keeping BLAS sequential inside the OpenMP kernels."""
import contextlib
import numbers
import threading

from threadpoolctl import ThreadpoolController

from ._openmp import max_threads

_controller = None
_blas_lock = threading.Lock()
_blas_users = 0
_blas_limit = None


# More threads than this is a mistake, not a request (OpenMP takes a C int, and would
# try to start them all).
MAX_THREADS = 4096


def effective_n_threads(n_threads):
    """Threads a kernel will use: ``None`` follows ``omp_get_max_threads()`` now."""
    if n_threads is None:
        return max_threads()
    if (isinstance(n_threads, numbers.Integral) and not isinstance(n_threads, bool)
            and 1 <= n_threads <= MAX_THREADS):
        return int(n_threads)
    raise ValueError(f"n_threads={n_threads!r} should be a positive integer or None (at "
                     f"most {MAX_THREADS}; usually the number of cores).")


@contextlib.contextmanager
def sequential_blas():
    """Context in which BLAS runs on one thread, since the kernels call it from OpenMP threads.

    Shared by all Python threads: the first to enter limits BLAS, the last to leave
    restores it (nested threadpoolctl contexts that exit out of order would not).
    """
    global _controller, _blas_users, _blas_limit
    with _blas_lock:
        if _blas_users == 0:
            if _controller is None:  # scanning the loaded libraries costs ~ms: do it once
                _controller = ThreadpoolController()
            _blas_limit = _controller.limit(limits=1, user_api="blas")
        _blas_users += 1
    try:
        yield
    finally:
        with _blas_lock:
            _blas_users -= 1
            if _blas_users == 0:
                _blas_limit.restore_original_limits()
                _blas_limit = None


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
