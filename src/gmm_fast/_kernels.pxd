# Declarations of kernels.h shared by the extensions that link the row kernels
# (each links its own copy of the tables: _cpu sets every module's level).
cdef extern from "kernels.h":
    int gmm_supported_level() noexcept nogil
    int gmm_set_kernel_level(int level) noexcept nogil
    void gmm_normalize_chunk(bint single, const double *scores, double *lp,
                             Py_ssize_t n_rows, Py_ssize_t n, double *log_norm,
                             double *total, const double *weights) noexcept nogil
