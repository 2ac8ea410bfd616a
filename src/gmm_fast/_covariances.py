"""What differs between the four covariance types, as small helpers picked by name.

The EM loop (``_gaussian_mixture``) is written once; everything that depends on
``covariance_type`` lives here in a ``CovarianceType`` per type, held in
``COVARIANCE_TYPES``. Shapes follow scikit-learn: "full" (k, d, d), "tied" (d, d),
"diag" (k, d), "spherical" (k,). All helpers work in float64.
"""
import functools
import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
from scipy.linalg import cholesky, lapack

from ._mstep import full_precisions_cholesky, reciprocal_roots


def _precision_error(covariance_type, component, reg_covar, dtype):
    """One actionable message for a covariance that cannot be factorised."""
    which = ("the tied covariance" if component is None
             else f"the {covariance_type} covariance of component {component}")
    # scikit-learn's sentences first (code matches on them), then which one and why.
    message = (
        "Fitting the mixture model failed because some components have ill-defined "
        "empirical covariance (for instance caused by singleton or collapsed samples). "
        "Try to decrease the number of components, increase reg_covar, or scale the "
        "input data."
    )
    if dtype == np.float32:
        message += (" The numerical accuracy can also be improved by passing float64 data "
                    "instead of float32.")
    message += (
        f" Here {which} is not positive definite (a component collapsed onto one or a few "
        f"samples, or duplicated/constant features): reg_covar is {reg_covar:g}; "
        "StandardScaler scales the data."
    )
    return ValueError(message)


def _cholesky_of_precision(covariance):
    """Upper-triangular U with U U^T = inv(covariance), or None when not positive definite.

    LAPACK's potrf and trtrs called as ``scipy.linalg.cholesky(lower=True)`` and
    ``solve_triangular(lower=True)`` call them (the factor column-major, as potrf
    returns it), without their wrappers' checks: 4 us instead of 150 at d=4, once per
    tied EM iteration.
    """
    if not np.all(np.isfinite(covariance)):
        return None
    lower, info = lapack.dpotrf(covariance, lower=1, clean=1)
    if info != 0 or not np.all(np.diag(lower) > 0):
        return None
    inverse, info = lapack.dtrtrs(lower, np.eye(covariance.shape[0]), lower=1)
    return inverse.T if info == 0 else None


def _flip(matrix):
    return matrix[::-1, ::-1]


def _cholesky_from_precision(precision):
    """Upper-triangular U with U U^T = precision (Cholesky of the reversed matrix, reversed)."""
    return np.ascontiguousarray(_flip(cholesky(_flip(precision), lower=True)))


# --- full ---------------------------------------------------------------------------

def _full_covariances(stats, nk, delta, reg_covar):
    second = stats.second / nk[:, None, None]
    covariances = second - delta[:, :, None] * delta[:, None, :]
    covariances += reg_covar * np.eye(delta.shape[1])
    return covariances


# Full precision factors by loops (_mstep) up to this width, by LAPACK's blocked routines
# beyond. ms, loops / numpy's batched cholesky and inv (AVX2): (k=3, d=4) 0.001 / 0.022,
# (32, 64) 1.8 / 4.6, (10, 128) 4.5 / 14.5, (4, 256) 16.9 / 14.6, (2, 784) 323 / 79.
_FACTOR_LOOPS_MAX_FEATURES = 128


def _full_precisions_cholesky(covariances, reg_covar, dtype):
    covariances = np.ascontiguousarray(covariances, dtype=np.float64)
    if covariances.shape[-1] <= _FACTOR_LOOPS_MAX_FEATURES:
        # All components in one C call: numpy's batched cholesky and inv cost ~40 us
        # an iteration on iris, scipy's per-matrix wrappers ~23 us a component.
        factors, failed = full_precisions_cholesky(covariances)
        if failed >= 0:
            raise _precision_error("full", failed, reg_covar, dtype)
        return factors
    factors = np.empty_like(covariances)
    for k, covariance in enumerate(covariances):
        factor = _cholesky_of_precision(covariance)
        if factor is None:
            raise _precision_error("full", k, reg_covar, dtype)
        factors[k] = factor
    return factors


@functools.lru_cache(maxsize=None)
def upper_indices(n_features):
    """Rows and columns of the upper triangle, diagonal included (read-only, cached:
    ``np.triu_indices`` costs ~10 us, a share of a small model's EM iteration)."""
    rows, cols = np.triu_indices(n_features)
    rows.setflags(write=False)
    cols.setflags(write=False)
    return rows, cols


def _full_log_det(precisions_cholesky, n_features):
    return np.log(np.diagonal(precisions_cholesky, axis1=1, axis2=2)).sum(axis=1)


# --- tied ---------------------------------------------------------------------------

def _tied_covariances(stats, nk, delta, reg_covar):
    covariance = (stats.second - (nk[:, None] * delta).T @ delta) / nk.sum()
    covariance += reg_covar * np.eye(delta.shape[1])
    return covariance


def _tied_precisions_cholesky(covariance, reg_covar, dtype):
    factor = _cholesky_of_precision(covariance)
    if factor is None:
        raise _precision_error("tied", None, reg_covar, dtype)
    return factor


def _tied_log_det(precisions_cholesky, n_features):
    return np.log(np.diagonal(precisions_cholesky)).sum()


# --- diag ---------------------------------------------------------------------------

def _diag_covariances(stats, nk, delta, reg_covar):
    return stats.second / nk[:, None] - delta * delta + reg_covar


def _positive_precisions_cholesky(name):
    def precisions_cholesky(covariances, reg_covar, dtype):
        if isinstance(covariances, np.ndarray) and covariances.dtype == np.float64:
            roots = reciprocal_roots(covariances.ravel())
            if roots is not None:  # (the usual case, in one call)
                return roots.reshape(covariances.shape)
        bad = ~(covariances > 0) | ~np.isfinite(covariances)
        if bad.any():
            component = int(np.flatnonzero(bad.reshape(len(covariances), -1).any(axis=1))[0])
            raise _precision_error(name, component, reg_covar, dtype)
        return 1.0 / np.sqrt(covariances)
    return precisions_cholesky


def _diag_log_det(precisions_cholesky, n_features):
    return np.log(precisions_cholesky).sum(axis=1)


# --- spherical ----------------------------------------------------------------------

def _spherical_covariances(stats, nk, delta, reg_covar):
    n_features = delta.shape[1]
    return (stats.second / nk - np.einsum("ij,ij->i", delta, delta)) / n_features + reg_covar


def _spherical_log_det(precisions_cholesky, n_features):
    return n_features * np.log(precisions_cholesky)


# --- checks of user-given precisions / covariances ----------------------------------

def _check_matrix(matrix, name, which):
    if not np.allclose(matrix, matrix.T, rtol=1e-5, atol=1e-8 * np.abs(matrix).max()):
        raise ValueError(f"{name}{which} should be symmetric; it is not.")
    smallest = np.linalg.eigvalsh(matrix)[0]
    if not smallest > 0:
        raise ValueError(
            f"{name}{which} should be positive definite; its smallest eigenvalue is "
            f"{smallest:g}.")


def _check_full(values, name):
    # All k at once when every matrix is symmetric (the usual case: one eigvalsh call
    # on the stack, the same values as k calls); else matrix by matrix, for the message.
    scale = np.abs(values).max(axis=(1, 2))[:, None, None]
    if np.isclose(values, values.transpose(0, 2, 1), rtol=1e-5, atol=1e-8 * scale).all():
        try:
            if (np.linalg.eigvalsh(values)[:, 0] > 0).all():
                return
        except np.linalg.LinAlgError:  # (one matrix failed: the loop says which, in order)
            pass
    for k, matrix in enumerate(values):
        _check_matrix(matrix, name, f"[{k}]")


def _check_tied(values, name):
    _check_matrix(values, name, "")


def _check_positive(values, name):
    if not np.all(values > 0):
        index = np.unravel_index(np.argmin(values), values.shape)
        raise ValueError(
            f"{name} should be positive; got {values[index]:g} at index "
            f"{index[0] if len(index) == 1 else index}.")


@dataclass(frozen=True)
class CovarianceType:
    """The per-type pieces of EM (all float64)."""

    name: str
    shape: Callable          # (n_components, n_features) -> parameter shape
    covariances: Callable    # (stats, nk, delta, reg_covar) -> covariances (M-step)
    precisions_cholesky: Callable  # (covariances, reg_covar, dtype) -> Cholesky of precisions
    log_det: Callable        # (precisions_cholesky, n_features) -> (k,) or scalar log det P
    check: Callable          # (values, name) -> None or ValueError (SPD / positive)
    n_covariance_parameters: Callable  # (n_components, n_features) -> free parameters

    def precisions(self, precisions_cholesky):
        """Precision matrices (or vectors) from their Cholesky factors."""
        if self.name == "full":
            return np.einsum("kij,klj->kil", precisions_cholesky, precisions_cholesky)
        if self.name == "tied":
            return precisions_cholesky @ precisions_cholesky.T
        return precisions_cholesky ** 2

    def precisions_cholesky_from_precisions(self, precisions):
        """Cholesky factors of user-given precisions (checked positive definite before,
        by their eigenvalues: a matrix at the edge can still fail to factorise)."""
        try:
            if self.name == "full":
                return np.stack([_cholesky_from_precision(p) for p in precisions])
            if self.name == "tied":
                return _cholesky_from_precision(precisions)
        except np.linalg.LinAlgError as exc:
            raise ValueError(
                f"precisions_init could not be factorised ({exc}): it is numerically "
                "singular. Pass better-conditioned precisions, or covariances_init instead."
            ) from None
        return np.sqrt(precisions)

    def covariances_from_precisions(self, precisions):
        """Inverse of user-given precisions."""
        if self.name in ("full", "tied"):
            return np.linalg.inv(precisions)
        return 1.0 / precisions


COVARIANCE_TYPES = {
    "full": CovarianceType(
        "full", lambda k, d: (k, d, d), _full_covariances,
        _full_precisions_cholesky, _full_log_det, _check_full,
        lambda k, d: k * d * (d + 1) / 2.0),
    "tied": CovarianceType(
        "tied", lambda k, d: (d, d), _tied_covariances,
        _tied_precisions_cholesky, _tied_log_det, _check_tied,
        lambda k, d: d * (d + 1) / 2.0),
    "diag": CovarianceType(
        "diag", lambda k, d: (k, d), _diag_covariances,
        _positive_precisions_cholesky("diag"), _diag_log_det, _check_positive,
        lambda k, d: k * d),
    "spherical": CovarianceType(
        "spherical", lambda k, d: (k,), _spherical_covariances,
        _positive_precisions_cholesky("spherical"), _spherical_log_det, _check_positive,
        lambda k, d: k),
}

LOG_2PI = math.log(2 * math.pi)
