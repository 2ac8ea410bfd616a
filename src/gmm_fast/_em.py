"""The EM primitive every fitting mode shares, and the M-step.

``estep_statistics``: a chunk of X, its weights and the current parameters in,
weighted sufficient statistics out, which add up across chunks (``a + b``).
``mstep`` turns summed statistics into new parameters. ``em_step`` is one
iteration over them for data in memory (``GaussianMixture.fit`` drives it); a
streamed or distributed fit is another driver over the same two functions (and
``moved_far``, whose redo costs it a second pass over the data).
"""
import functools
import math
from dataclasses import dataclass

import numpy as np

from ._covariances import COVARIANCE_TYPES, LOG_2PI, upper_indices
from ._estep import (CHUNK_SIZE, COVARIANCE_CODES, NO_FAR, NO_FAR_ROWS, NO_SINGLE, estep,
                     kernel_form)
from ._mstep import statistics_and_mstep
from ._threads import n_blocks, pass_threads

_KERNEL_NAMES = {code: name for name, code in COVARIANCE_CODES.items()}

# Added to nk before dividing, as scikit-learn does, so an empty component gets
# finite means (its shift) and covariances (reg_covar) instead of 0/0.
_NK_FLOOR = 10 * np.finfo(np.float64).eps

# Up to this width a tied model runs the full kernel (the same precision for every
# component) and sums its k second moments. One thread, n=1e5, ms per iteration, tied
# kernel (xs @ P and a SYRK per chunk) -> full kernel (column-built features):
# (d=2, k=4) 2.45 -> 1.26, (4, 4) 2.89 -> 1.82, (6, 8) 4.37 -> 3.85; at (8, 8) the
# d(d+1)/2 features lose (4.84 -> 5.58).
_TIED_AS_FULL_MAX_FEATURES = 6

# Components whose mean is at a larger squared Mahalanobis distance from the shift
# (``a_k^T L_k a_k``; or NaN, from an overflow) are computed about their own means
# ("far": ``_estep``'s docstring). About the shift, their log-densities and moments
# lose a few 1e-16 times that distance (measured, relative: 7e-13 at 1.5e4, 7e-11 at
# 1.5e6, up to 3.6e-10 just under 1e6 for diag at d=7); about their means nothing
# cancels, at a cost per far component of a few shared ones.
_FAR_DISTANCE = 1e6

# Float32 data whose terms that cancel, for rows near the components, stay below this
# (``_rounding`` + d) get their log-densities from a float32 GEMM (narrow rows: float32
# loops, ``_estep._single_columns``), which perturbs them
# by about eps32 = 6e-8 times that size: the statistics moved by 0.05-0.5 eps32 of it
# (measured), at most ~3e-5 of themselves here. With 16 components or more each chunk's
# statistics are then float32 too (``_estep.SINGLE_STATISTICS_MIN_K``), summed about
# the shift: they lose eps32 times the same terms, added across chunks in float64.
_SINGLE_DISTANCE = 1e3

# From this width a full model with one near component left computes it apart too:
# the shared pass (d + d(d+1)/2 features, two GEMMs) for one component costs more than
# its own. E-step, n=1e5, every other component far, 2 threads, ms: (d=8, k=8)
# 7.3-8.4 -> 5.9, (16, 16) 26.5 -> 16.7; at (2, 4) it lost (2.2 -> 2.6), at (4, 8)
# even; tied at (16, 16) even (its shared features are d + 2 wide).
_FULL_ALONE_MIN_FEATURES = 8

# A component whose mean moved by more than sqrt(this) times its new spread (trace of
# the new covariance) in one M-step has its moments redone about the new mean: the
# one-pass form loses eps times this ratio (1e5: ~2e-11 of its covariance).
_MOVED_FAR = 1e5


def _covariance_helpers(covariance_type):
    try:
        return COVARIANCE_TYPES[covariance_type]
    except (KeyError, TypeError):
        raise ValueError(
            f"covariance_type={covariance_type!r} should be one of 'full', 'tied', 'diag', "
            "'spherical'.") from None


@dataclass
class SufficientStatistics:
    """Weighted sufficient statistics of a Gaussian mixture over some rows (float64).

    Attributes
    ----------
    log_likelihood : float
        ``sum_i w_i log sum_k pi_k N(x_i | k)``.
    sum_weights : float
        ``sum_i w_i``.
    nk : ndarray of shape (n_components,)
        ``sum_i w_i r_ik``.
    sums : ndarray of shape (n_components, n_features)
        ``sum_i w_i r_ik (x_i - shift_k)``.
    second : ndarray
        Second moments about ``shift``: full (k, d, d) ``sum_i w_i r_ik (x_i -
        shift_k)(x_i - shift_k)^T``; tied (d, d) the sum over k of those; diag (k, d)
        their diagonals; spherical (k,) their traces.
    shift : ndarray of shape (n_components, n_features)
        The means the moments are taken about (the parameters' means).

    Notes
    -----
    Statistics computed with the same parameters (hence the same ``shift``) add up:
    ``estep_statistics(X[:m], ...) + estep_statistics(X[m:], ...)`` equals the
    statistics of all of X up to rounding.
    """

    log_likelihood: float
    sum_weights: float
    nk: np.ndarray
    sums: np.ndarray
    second: np.ndarray
    shift: np.ndarray

    def __add__(self, other):
        if not isinstance(other, SufficientStatistics):
            return NotImplemented
        if self.shift.shape != other.shift.shape or not np.array_equal(self.shift, other.shift):
            raise ValueError("Only statistics computed with the same parameters (the same "
                             "shift) can be added.")
        return SufficientStatistics(
            self.log_likelihood + other.log_likelihood, self.sum_weights + other.sum_weights,
            self.nk + other.nk, self.sums + other.sums, self.second + other.second,
            self.shift)


class _KernelParameters:
    """Mixture parameters in the form the kernels take (see ``_estep``'s docstring).

    Rows are used about ``shift = s = weights @ means`` (``centered = means - s``);
    the component log-densities are ``features @ expansion + log_const``, except for
    components too far from s (``_FAR_DISTANCE``), computed about their own means
    (``far``; their ``centered`` row is 0). All float64, but for float32 data with
    every component near s (``_SINGLE_DISTANCE``), ``single``: the expansion (and
    tied P) in float32, for the kernels' float32 GEMM of the log-densities. Built at
    every EM iteration: the usual case (no component far, none set apart) in one C call
    (``_usual``), the rest with few numpy calls.
    """

    def __init__(self, weights, means, precisions_cholesky, covariance_type, dtype,
                 covariances=None, centres=None, apart=None):
        helpers = COVARIANCE_TYPES[covariance_type]
        weights = np.asarray(weights, dtype=np.float64)
        means = np.asarray(means, dtype=np.float64)
        n_components, n_features = means.shape
        # The factors as the model holds them (float32 models use float32 factors).
        prec = np.asarray(precisions_cholesky, dtype=dtype).astype(np.float64)
        if self._usual(covariance_type, weights, means, prec, covariances, centres, apart,
                       dtype):
            return
        if weights.all():
            log_weights = np.log(weights)
        else:
            with np.errstate(divide="ignore"):  # a zero weight is a -inf log prior: fine
                log_weights = np.log(weights)
        log_const = log_weights + (helpers.log_det(prec, n_features)
                                   - 0.5 * n_features * LOG_2PI)
        self.shift = (weights / weights.sum()) @ means
        self.prec = _NO_MATRIX
        kernel_type = _kernel_type(covariance_type, n_features)
        self.code = COVARIANCE_CODES[kernel_type]
        self.far, self.far_means, self.far_factors = NO_FAR, NO_FAR_ROWS, NO_FAR_ROWS
        if kernel_type != covariance_type:  # narrow tied
            # The full kernel with one precision for every component: its features
            # [xs, xs_i xs_j] cost one GEMM each way, fewer calls than xs @ P + SYRK.
            precisions = np.broadcast_to(prec @ prec.T, (n_components, n_features, n_features))
        elif covariance_type == "full":
            precisions = prec @ prec.transpose(0, 2, 1)
        elif covariance_type == "tied":
            self.prec = precisions = np.ascontiguousarray(prec)
        else:  # diag (k, d) or spherical (k,) factors: the precisions' diagonals
            precisions = prec * prec if covariance_type == "diag" else (prec * prec)[:, None]
        a = self.centered = means - self.shift
        linear, distance = self._linear(a, precisions)
        self._conditioning(prec, precisions, covariances)
        far = NO_FAR
        rounding = self._rounding(a, distance)
        near = rounding <= _FAR_DISTANCE
        if not near.all():
            # Far components pull the shift away from the others: re-centre on the
            # near ones, or, when most are far, on the largest group of components near
            # one mean (every pass over a far component costs about the same; ties go
            # to the heavier group), then set apart those still far from it.
            if 2 * near.sum() < n_components:
                sizes = []
                for centres in np.array_split(means, -(-n_components // 64)):
                    groups = self._linear(means - centres[:, None],
                                          precisions)[1] <= _FAR_DISTANCE
                    sizes.append(groups.sum(axis=1) + groups @ weights)
                near = self._linear(means - means[np.argmax(np.concatenate(sizes))],
                                    precisions)[1] <= _FAR_DISTANCE
            near_weight = weights[near].sum()  # (0 when the group's weights are all 0)
            self.shift = ((weights[near] / near_weight) @ means[near] if near_weight > 0
                          else means[near].mean(axis=0))
            a = self.centered = means - self.shift
            linear, distance = self._linear(a, precisions)
            rounding = self._rounding(a, distance)
            far = np.flatnonzero(~(rounding <= _FAR_DISTANCE))
            if (len(far) == n_components - 1 and self.code == COVARIANCE_CODES["full"]
                    and n_features >= _FULL_ALONE_MIN_FEATURES):
                far = np.arange(n_components)  # (see _FULL_ALONE_MIN_FEATURES)
        if apart is not None:
            far = np.union1d(far, apart)
        if len(far):
            self._far_components(far, means, prec, log_const,
                                 means if centres is None else centres)
            rounding = self._rounding(a, distance)  # (a's far rows are now 0)
        log_const -= 0.5 * distance
        quadratic = self._quadratic(precisions, n_components)
        n_linear = linear.shape[1]
        # [linear^T ; quadratic^T ; log_const], C order for the kernels (filled in place:
        # np.vstack's checks cost more than the copies at small sizes)
        self.expansion = np.empty((n_linear + quadratic.shape[1] + 1, n_components))
        self.expansion[:n_linear] = linear.T
        self.expansion[n_linear:-1] = quadratic.T
        self.expansion[-1] = log_const
        self.largest_rounding = float(np.max(rounding))
        self._set_single(dtype, n_features)

    def _set_single(self, dtype, n_features):
        """float32 data near the shift, no component far (a NaN rounding, from an
        overflow, is not near): the float32 GEMM's operands (``_SINGLE_DISTANCE``)."""
        self.single = NO_SINGLE
        if (dtype == np.float32 and not len(self.far)
                and self.largest_rounding + n_features <= _SINGLE_DISTANCE):
            self.single = np.concatenate([self.expansion.ravel(),
                                          self.prec.ravel() if self.prec is not _NO_MATRIX
                                          else []]).astype(np.float32)

    def _usual(self, covariance_type, weights, means, prec, covariances, centres, apart,
               dtype):
        """The usual case in one call (``_estep.kernel_form``): no component far from
        the shift nor set apart. False (nothing set) otherwise, and for a full kernel
        without covariances (its traces then come from the factors, here)."""
        kernel_type = _kernel_type(covariance_type, means.shape[1])
        code = COVARIANCE_CODES[kernel_type]
        if centres is not None or apart is not None or (
                code == COVARIANCE_CODES["full"] and covariances is None):
            return False
        form = kernel_form(code, kernel_type != covariance_type, weights,
                           np.ascontiguousarray(means), prec.ravel(), covariances,
                           _FAR_DISTANCE)
        if form is None:
            return False
        self.shift, self.centered, self.expansion, self.largest_rounding = form
        self.code = code
        self.prec = np.ascontiguousarray(prec) if kernel_type == "tied" else _NO_MATRIX
        self.far, self.far_means, self.far_factors = NO_FAR, NO_FAR_ROWS, NO_FAR_ROWS
        self._set_single(dtype, means.shape[1])
        return True

    def _conditioning(self, prec, precisions, covariances):
        """Full models: ``|L_k|_F`` and ``trace(Sigma_k)``, for ``_rounding`` (the trace
        from the covariances when given, else as ``|P_k^-1|_F^2``: 2.9 ms at d=64, k=32)."""
        self._norm = self._spread = None
        if self.code != COVARIANCE_CODES["full"]:
            return
        self._norm = np.sqrt(np.einsum("kij,kij->k", precisions, precisions))
        if covariances is not None:
            self._spread = _traces(np.asarray(covariances, dtype=np.float64), "full",
                                   prec.shape[-1])
            return
        with np.errstate(all="ignore"):  # inf: far, computed in Cholesky form
            inverse = np.linalg.inv(prec)
            self._spread = np.einsum("...ij,...ij->...", inverse, inverse)

    def _rounding(self, a, distance):
        """What the expanded form's rounding error near m_k is eps times (``_FAR_DISTANCE``).

        Near m_k, ``xs^T L_k xs``, ``a_k^T L_k xs`` and ``a_k^T L_k a_k`` cancel: each is
        up to ``|L_k| |xs|^2`` with ``|xs|^2 ~ |a_k|^2 + trace(Sigma_k)`` there. For
        diag, spherical and tied (in y = xs P coordinates) that is about the squared
        Mahalanobis distance ``a_k^T L_k a_k`` (plus d); a full covariance far from
        round makes it up to its condition number larger, even at the shift
        (collinear features: 1e-8 of every log-density at cond 1e12).
        """
        if self._norm is None:
            return distance
        # (an overflow, NaN or inf, counts as far, as in distance)
        return np.maximum(distance, self._norm * ((a * a).sum(axis=-1) + self._spread))

    def _quadratic(self, precisions, n_components):
        """The expansion's quadratic rows (k, columns). ``precisions``: full (k, d, d)
        L_k; tied the factor P; diag and spherical (k, d) and (k, 1) the p_k^2."""
        if self.code == COVARIANCE_CODES["full"]:
            rows, cols = upper_indices(precisions.shape[-1])
            return precisions[:, rows, cols] * _quadratic_factors(precisions.shape[-1])
        if self.code == COVARIANCE_CODES["tied"]:
            return np.full((n_components, 1), -0.5)
        return -0.5 * precisions

    def _linear(self, a, precisions):
        """The expansion's linear rows for ``centered = a`` (..., k, d), and ``a_k^T L_k
        a_k``: each mean's squared Mahalanobis distance from the shift."""
        if self.code == COVARIANCE_CODES["full"]:
            linear = (precisions @ a[..., None])[..., 0]
        elif self.code == COVARIANCE_CODES["tied"]:
            linear = a @ precisions  # in y = x P coordinates: the distance is |a P|^2
            return linear, (linear * linear).sum(axis=-1)
        else:
            linear = a * precisions
        return linear, (linear * a).sum(axis=-1)

    def _far_components(self, far, means, prec, log_const, centres):
        """The kernels' arguments for the components ``far`` (rows ``[m_k, log_const_k,
        c_k]`` and Cholesky factors as rows of d); their moments come about c_k."""
        n_features = means.shape[1]
        self.far = far.astype(np.int64, copy=False)  # (the kernels take long long)
        self.far_means = np.hstack([means[far], log_const[far, None],
                                    np.asarray(centres, dtype=np.float64)[far]])
        if prec.ndim == 1:  # spherical
            factors = prec[far, None]
        elif prec.ndim == 3 or self.code == COVARIANCE_CODES["diag"]:
            factors = prec[far].reshape(-1, n_features)
        elif self.code == COVARIANCE_CODES["full"]:  # tied through the full kernel
            factors = np.tile(prec, (len(far), 1))
        else:
            factors = prec
        self.far_factors = np.ascontiguousarray(factors)
        self.centered[far] = 0.0

    def arguments(self):
        """The parameter arguments of ``estep`` / ``score_chunks``."""
        return (self.shift, self.expansion, self.prec, self.far, self.far_means,
                self.far_factors, self.single)


_NO_MATRIX = np.zeros((1, 1))
_NO_MATRIX.setflags(write=False)


@functools.lru_cache(maxsize=None)
def _quadratic_factors(n_features):
    """Coefficients of L[i, j] in the quadratic form's expansion over the features
    xs_i xs_j (i <= j): -1/2 on the diagonal, -1 off it (both triangles)."""
    rows, cols = upper_indices(n_features)
    factors = np.where(rows == cols, -0.5, -1.0)
    factors.setflags(write=False)
    return factors


def _kernel_type(covariance_type, n_features):
    """The kernel a covariance type runs through (tied, when narrow, as full)."""
    if covariance_type == "tied" and n_features <= _TIED_AS_FULL_MAX_FEATURES:
        return "full"
    return covariance_type


def _block_size(kernel_type, n_components, n_features):
    """Float64 statistics per block of the kernel's output (see ``estep``)."""
    second = math.prod(COVARIANCE_TYPES[kernel_type].shape(n_components, n_features))
    return 2 + n_components * (n_features + 1) + second


def _estep_seconds(n_samples, n_features, n_components, kernel_type):
    """Single-thread time of one E-step pass, from a per-row model: the features (one
    per column), each component's exp and sums, and the two GEMMs. Fitted on passes
    over 65536 rows (AVX2 Zen 3, ns/row measured -> model): full (2, 4) 39 -> 47,
    (8, 8) 132 -> 173, (20, 10) 648 -> 757, (30, 2) 814 -> 857; diag (2, 3) 32 -> 39,
    (20, 10) 191 -> 211; spherical (8, 8) 79 -> 85; tied (8, 8) 109 -> 96. Narrow
    models whose products run as loops (``_estep.COLUMN_PRODUCTS_MAX``) have been ~3x
    faster since (full (2, 4) ~15 ns/row): the model then overestimates, which keeps
    two threads at (1e5, 2, 4), where they still win (whole 20-iteration fit after
    0.15 s idle, AVX2, quiet: 24.7 ms on two, 37.5 on one)."""
    columns = {"full": n_features + n_features * (n_features + 1) // 2,
               "tied": n_features + 1, "diag": 2 * n_features,
               "spherical": n_features + 1}[kernel_type]
    ns_per_row = (15 + 5 * n_components + 1.2 * columns
                  + 0.18 * n_components * (columns + 1))
    if kernel_type == "tied":  # x P
        ns_per_row += 0.25 * n_features * n_features
    return n_samples * ns_per_row * 1e-9


def estep_threads(n_threads, n_samples, n_features, n_components, covariance_type):
    """Threads for one ``estep_statistics`` pass, at most ``n_threads``
    (``_threads.pass_threads``)."""
    kernel_type = _kernel_type(covariance_type, n_features)
    size = _block_size(kernel_type, n_components, n_features)
    return pass_threads(n_threads, _estep_seconds(n_samples, n_features, n_components,
                                                  kernel_type),
                        n_blocks(n_samples, size))


def score_threads(n_threads, n_samples, n_features, n_components, covariance_type):
    """Threads for one ``score_chunks`` pass over chunks of rows (one GEMM: ~0.6 of an
    E-step's time, measured 0.5-0.8)."""
    kernel_type = _kernel_type(covariance_type, n_features)
    seconds = 0.6 * _estep_seconds(n_samples, n_features, n_components, kernel_type)
    return pass_threads(n_threads, seconds, -(-n_samples // CHUNK_SIZE))


def estep_statistics(X, sample_weight, weights, means, precisions_cholesky, covariance_type,
                     n_threads=1, covariances=None, centres=None, apart=None):
    """E-step over the rows of X and the weighted statistics the M-step needs.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        C-contiguous float32 or float64 rows (a chunk of the data).
    sample_weight : ndarray of shape (n_samples,) or None
        Frequency weights, same dtype as X; None means unit weights (no n-vector
        of ones is made).
    weights : ndarray of shape (n_components,)
        Mixture weights.
    means : ndarray of shape (n_components, n_features)
        Component means.
    precisions_cholesky : ndarray
        Cholesky factors of the precisions in scikit-learn's shapes: full
        (k, d, d), tied (d, d), diag (k, d), spherical (k,).
    covariance_type : {"full", "tied", "diag", "spherical"}
    n_threads : int, default=1
        OpenMP threads of the pass, exactly (``estep_threads`` chooses them for a
        fit); the result does not depend on it (bitwise).
    covariances : ndarray, default=None
        The covariances matching ``precisions_cholesky`` (scikit-learn's shapes), if
        at hand: they only tell how ill-conditioned full ones are (see
        ``_KernelParameters._rounding``); None computes that from the factors.
    centres, apart : ndarray, default=None
        Components ``apart`` (indices) are computed about their own means, their
        moments summed about ``centres[k]`` (n_components, n_features) instead of
        ``means[k]``: a second pass with the new means as centres, for a component
        that moved far relative to its new spread (``moved_far``).

    Returns
    -------
    stats : SufficientStatistics
        Float64 statistics about ``shift`` (the means).

    Notes
    -----
    One kernel pass: per chunk of rows, the log-densities
    ``-0.5 |(x - m_k) P_k|^2 + log det P_k - d/2 log 2 pi``, the row log-sum-exp and
    the responsibilities, accumulated at once into per-block float64 buffers; no
    n x k array is kept. The kernel sums about one shift s; the moments about the
    means follow exactly: with a_k = m_k - s and T_k = sum_i w r_ik (x_i - s),
    ``sum_i w r_ik (x_i - m_k) = T_k - nk_k a_k`` and likewise for second moments.
    """
    _covariance_helpers(covariance_type)  # a clear error for an unknown type
    params = _KernelParameters(weights, means, precisions_cholesky, covariance_type, X.dtype,
                               covariances, centres, apart)
    return _statistics(params, _kernel_blocks(X, sample_weight, params, n_threads),
                       covariance_type)


def _statistics(params, blocks, covariance_type):
    """The kernel's blocks (``_kernel_blocks``, with ``params``) as statistics about the
    means: added in order (the same sum for any n_threads), moved from the shift."""
    n_components, n_features = params.centered.shape
    kernel_type = _KERNEL_NAMES[params.code]
    second_shape = COVARIANCE_TYPES[kernel_type].shape(n_components, n_features)
    sums_end = 2 + n_components * (n_features + 1)
    total = blocks.sum(axis=0)
    nk = total[2:2 + n_components]
    first = total[2 + n_components:sums_end].reshape(n_components, n_features)  # T_k
    second = total[sums_end:].reshape(second_shape)
    if kernel_type != covariance_type:  # tied through the full kernel: sum over components
        second = second.sum(axis=0)
    # The kernel summed about s; moved to the means m_k = s + a_k. (Far components
    # were summed about their means: their a_k is 0.)
    a = params.centered
    sums, second = moments_about(nk, first, second, a, covariance_type)
    shift = params.shift + a
    if len(params.far):
        shift[params.far] = params.far_means[:, n_features + 1:]
    return SufficientStatistics(float(total[0]), float(total[1]), nk, sums, second, shift)


def _kernel_blocks(X, sample_weight, params, n_threads):
    """The kernel's pass over X: its per-block statistics (``_estep.estep``), which
    added in order give the same sum for any ``n_threads``."""
    n_components, n_features = params.centered.shape
    size = _block_size(_KERNEL_NAMES[params.code], n_components, n_features)
    blocks = np.empty((n_blocks(len(X), size), size))
    estep(params.code, X, sample_weight, *params.arguments(), blocks, n_threads)
    return blocks


def moments_about(nk, sums, second, delta, covariance_type):
    """``(sums, second)`` moved to centres ``delta`` (k, d) further (exact identities):
    ``sum w r (x - c - delta) = T - nk delta`` and ``sum w r (x - c - delta)(...)^T =
    S - T delta^T - delta T^T + nk delta delta^T`` (tied: summed over k; diag: the
    diagonals; spherical: the traces)."""
    moved = sums - nk[:, None] * delta
    if covariance_type == "full":
        cross = sums[:, :, None] * delta[:, None, :]
        second = (second - cross - cross.transpose(0, 2, 1)
                  + nk[:, None, None] * delta[:, :, None] * delta[:, None, :])
    elif covariance_type == "tied":
        cross = sums.T @ delta
        second = second - cross - cross.T + (nk[:, None] * delta).T @ delta
    elif covariance_type == "diag":
        second = second - 2 * delta * sums + nk[:, None] * delta * delta
    else:
        second = second - ((2 * sums - nk[:, None] * delta) * delta).sum(axis=1)
    return moved, second


def em_step(X, sample_weight, params, covariance_type, reg_covar, n_threads=1,
            missing=None):
    """One EM iteration over rows in memory: ``(stats, (weights, means, covariances))``.

    ``params``: ``(weights, means, covariances, precisions_cholesky)``. The E-step's
    statistics, then the M-step; components that moved far relative to their new
    spread (``moved_far``) get their moments again, about their new means, in a
    second pass (rare: a component collapsing onto a tight group far away).
    ``missing``: the rows with NaN cells (``_missing.MissingRows``; X then holds the
    complete rows), whose statistics are added about the same centres.
    """
    first_pass = None if missing is not None else (
        lambda: _first_pass(X, sample_weight, params, covariance_type, reg_covar, n_threads))
    return em_iteration(
        lambda **about: data_statistics(X, sample_weight, params, covariance_type, n_threads,
                                        missing, **about),
        covariance_type, reg_covar, first_pass)


def _first_pass(X, sample_weight, params, covariance_type, reg_covar, n_threads):
    """``em_iteration``'s first pass over rows in memory: ``(stats, new parameters,
    moved)``. With no component far from the shift (nor tied), the statistics, M-step
    and far moves are one C call (``_mstep``: they took ~45 us of numpy calls per
    iteration on small data); else ``_statistics``, ``mstep`` and ``moved_far``."""
    weights, means, covariances, precisions_cholesky = params
    kernel = _KernelParameters(weights, means, precisions_cholesky, covariance_type, X.dtype,
                               covariances)
    blocks = _kernel_blocks(X, sample_weight, kernel, n_threads)
    if covariance_type == "tied" or len(kernel.far):
        return _mstep_and_moves(_statistics(kernel, blocks, covariance_type),
                                covariance_type, reg_covar)
    statistics, new, moved = statistics_and_mstep(kernel.code, blocks, kernel.shift,
                                                  kernel.centered, reg_covar, _NK_FLOOR,
                                                  _MOVED_FAR)
    return SufficientStatistics(*statistics), new, moved


def _mstep_and_moves(stats, covariance_type, reg_covar):
    """``(stats, mstep(stats), moved_far(...))``."""
    new = mstep(stats, covariance_type, reg_covar)
    return stats, new, moved_far(stats, new[2], covariance_type)


def em_iteration(statistics, covariance_type, reg_covar, first_pass=None):
    """One EM iteration from ``statistics(**about)``, the E-step's statistics wherever
    the rows are (``about``: ``estep_statistics``' ``centres`` and ``apart``):
    ``(stats, (weights, means, covariances))``, with the second pass for components
    that moved far. ``first_pass()``, when given, gives the first pass's ``(stats, new
    parameters, moved)`` itself (``_first_pass``)."""
    stats, new, moved = (first_pass() if first_pass is not None
                         else _mstep_and_moves(statistics(), covariance_type, reg_covar))
    if moved.size:
        stats = statistics(centres=new[1], apart=moved)
        new = mstep(stats, covariance_type, reg_covar)
    return stats, new


def data_statistics(X, sample_weight, params, covariance_type, n_threads=1, missing=None,
                    **about):
    """The E-step statistics of the complete rows X (the kernels) plus, when given, of
    the rows with NaN cells (``missing``), about the same centres; ``about``: as
    ``estep_statistics``' ``centres`` and ``apart``."""
    weights, means, covariances, precisions_cholesky = params
    stats = estep_statistics(X, sample_weight, weights, means, precisions_cholesky,
                             covariance_type, n_threads, covariances, **about)
    if missing is not None:
        stats = stats + missing.statistics(weights, means, covariances, covariance_type,
                                           stats.shift, n_threads)
    return stats


def moved_far(stats, covariances, covariance_type):
    """Components whose new mean lies far from the moments' centre relative to their
    new spread: their covariance lost about eps |delta|^2 / trace(Sigma) of itself to
    the cancellation in ``second / nk - delta delta^T`` (a broad component collapsing
    onto a tight group far away: up to a false "not positive definite"). The caller
    redoes their moments about the new means (``estep_statistics``' ``centres``)."""
    delta = stats.sums / (stats.nk + _NK_FLOOR)[:, None]
    n_features = delta.shape[1]
    spread = _traces(covariances, covariance_type, n_features)  # (tied: one, broadcast)
    return np.flatnonzero(~((delta * delta).sum(axis=1) <= _MOVED_FAR * spread))


def _traces(covariances, covariance_type, n_features):
    """trace(Sigma_k) in scikit-learn's shapes (tied: one, shared)."""
    if covariance_type in ("full", "tied"):
        return np.einsum("...ii->...", covariances)
    if covariance_type == "diag":
        return covariances.sum(axis=1)
    return n_features * covariances


def mstep(stats, covariance_type, reg_covar):
    """New mixture parameters from summed statistics (scikit-learn's M-step, about a shift).

    Parameters
    ----------
    stats : SufficientStatistics
    covariance_type : {"full", "tied", "diag", "spherical"}
    reg_covar : float
        Added to the diagonal of the covariances.

    Returns
    -------
    weights : ndarray of shape (n_components,)
    means : ndarray of shape (n_components, n_features)
    covariances : ndarray
        float64, in scikit-learn's shape for ``covariance_type``.

    Notes
    -----
    With ``delta = sums / nk``: ``weights = nk / sum(nk)``, ``means = shift + delta``
    and covariances ``second / nk - delta delta^T + reg_covar I`` (tied: ``(sum_k
    second_k - nk_k delta_k delta_k^T) / sum(nk)``; diag its diagonal; spherical the
    mean of the diagonal). Moments about the old means make ``delta`` small, so
    nothing cancels even far from the origin.
    """
    helpers = _covariance_helpers(covariance_type)
    nk = stats.nk + _NK_FLOOR
    delta = stats.sums / nk[:, None]
    weights = nk / nk.sum()
    means = stats.shift + delta
    covariances = helpers.covariances(stats, nk, delta, reg_covar)
    return weights, means, covariances
