"""Resolving ``n_threads`` and keeping BLAS sequential inside the OpenMP kernels."""
import numbers

from threadpoolctl import ThreadpoolController

from ._openmp import max_threads

_controller = None


def effective_n_threads(n_threads):
    """Threads a kernel will use: ``None`` follows ``omp_get_max_threads()`` now."""
    if n_threads is None:
        return max_threads()
    if (isinstance(n_threads, numbers.Integral) and not isinstance(n_threads, bool)
            and n_threads >= 1):
        return int(n_threads)
    raise ValueError(f"n_threads={n_threads!r} should be a positive integer or None.")


def sequential_blas():
    """Context in which BLAS runs on one thread, since the kernels call it from OpenMP threads."""
    global _controller
    if _controller is None:  # scanning the loaded libraries costs ~ms: do it once
        _controller = ThreadpoolController()
    return _controller.limit(limits=1, user_api="blas")


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
