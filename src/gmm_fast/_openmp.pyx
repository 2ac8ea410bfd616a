"""What the OpenMP runtime offers, read at call time (``OMP_NUM_THREADS``, threadpoolctl)."""
from cython.parallel cimport prange

cdef extern from *:
    """
    #ifdef _OPENMP
    #include <omp.h>
    #define GMM_FAST_HAS_OPENMP 1
    #else
    #define GMM_FAST_HAS_OPENMP 0
    static int omp_get_max_threads(void) { return 1; }
    static int omp_get_num_threads(void) { return 1; }
    #endif
    """
    bint GMM_FAST_HAS_OPENMP
    int omp_get_max_threads() noexcept nogil
    int omp_get_num_threads() noexcept nogil


def openmp_enabled():
    """Whether the kernels were compiled with OpenMP."""
    return GMM_FAST_HAS_OPENMP


def max_threads():
    """``omp_get_max_threads()`` now: 1 in a build without OpenMP."""
    return omp_get_max_threads()


def threads_in_parallel_region(int n_threads):
    """Number of threads a kernel's parallel region really gets for ``n_threads``."""
    cdef int team = 1, i
    for i in prange(n_threads, nogil=True, num_threads=n_threads, schedule='static'):
        team = omp_get_num_threads()

    return team
