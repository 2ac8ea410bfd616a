"""Which CPU level the kernels run at, and a report of what the package uses.

The row kernels are built once per level (``kernels.h``): ``"baseline"`` (SSE2 on
x86-64; NEON on aarch64; the compiler's default elsewhere), ``"avx2"`` (x86-64-v3:
AVX2 and FMA) and ``"avx512"`` (x86-64-v4), the last two on x86-64 builds with GCC or
Clang. At import the best level the CPU supports is used, capped by the environment
variable ``GMM_FAST_CPU_LEVEL`` (in the spirit of numpy's
``NPY_DISABLE_CPU_FEATURES``), so that the lower paths can be tested and timed on a
CPU that has the higher ones. Results agree across levels to rounding (FMA
contraction and vector widths change the order of a few operations); within a level
they do not depend on the number of threads.
"""
import os
import platform
import warnings

from . import _estep, _lloyd, _lloyd_sparse, _missing_kernel
from ._openmp import max_threads, openmp_enabled

LEVELS = ("baseline", "avx2", "avx512")
ENVIRONMENT_VARIABLE = "GMM_FAST_CPU_LEVEL"
_MODULES = (_estep, _lloyd, _lloyd_sparse, _missing_kernel)
# Asked for the highest level, each module takes the best the CPU supports.
_SUPPORTED = min(module.set_kernel_level(len(LEVELS) - 1) for module in _MODULES)
_current = _SUPPORTED


def supported_cpu_level():
    """The best level this CPU supports among those this build has.

    Returns
    -------
    level : {"baseline", "avx2", "avx512"}
    """
    return LEVELS[_SUPPORTED]


def cpu_level():
    """The level the kernels run at now.

    Returns
    -------
    level : {"baseline", "avx2", "avx512"}
        The best level the CPU supports, or lower if ``GMM_FAST_CPU_LEVEL`` or
        :func:`set_cpu_level` asked for it.

    Examples
    --------
    >>> import gmm_fast
    >>> gmm_fast.cpu_level() in ("baseline", "avx2", "avx512")
    True
    """
    return LEVELS[_current]


def set_cpu_level(level):
    """Run the kernels at ``level``, or the best the CPU supports below it.

    For tests and benchmarks of the lower paths; not thread-safe (call it before
    fitting, not while another thread fits).

    Parameters
    ----------
    level : {"baseline", "avx2", "avx512"}

    Returns
    -------
    previous : str
        The level in use before the call, to restore it.
    """
    global _current
    if level not in LEVELS:
        raise ValueError(f"level={level!r} should be one of {', '.join(map(repr, LEVELS))}.")
    index = LEVELS.index(level)
    previous = cpu_level()
    _current = min(module.set_kernel_level(index) for module in _MODULES)
    return previous


def _apply_environment():
    requested = os.environ.get(ENVIRONMENT_VARIABLE, "").strip().lower()
    if not requested:
        return
    if requested not in LEVELS:
        warnings.warn(f"{ENVIRONMENT_VARIABLE}={requested!r} is ignored: it should be one of "
                      f"{', '.join(LEVELS)}.", RuntimeWarning, stacklevel=3)
        return
    set_cpu_level(requested)


def show_config():
    """Print the CPU level, OpenMP runtime, BLAS and threads the package uses.

    Examples
    --------
    >>> import gmm_fast
    >>> gmm_fast.show_config()  # doctest: +ELLIPSIS
    gmm_fast ...
    """
    print(config_report())


def config_report():
    """:func:`show_config`'s text."""
    from threadpoolctl import threadpool_info

    from . import __version__

    machine = platform.machine() or "unknown machine"
    cap = os.environ.get(ENVIRONMENT_VARIABLE)
    lines = [
        f"gmm_fast {__version__} on {machine}, Python {platform.python_version()}",
        f"  cpu level: {cpu_level()} (supported: {supported_cpu_level()}; "
        f"{ENVIRONMENT_VARIABLE}={cap if cap else 'unset'})",
        f"  openmp: {'enabled' if openmp_enabled() else 'disabled (one thread)'}, "
        f"max threads {max_threads()}",
    ]
    for pool in threadpool_info():
        if pool.get("user_api") in ("openmp", "blas"):
            lines.append(f"  {pool['user_api']}: {pool.get('internal_api')} "
                         f"{pool.get('version') or ''} kernel={pool.get('architecture') or '-'} "
                         f"threads={pool.get('num_threads')} "
                         f"({os.path.basename(pool.get('filepath', ''))})")
    return "\n".join(lines)


_apply_environment()
