"""Input checks shared by the estimators: validate once at the public entry points."""
import contextlib
import numbers
import threading

import numpy as np


def check_dtype(X):
    """The float dtype a kernel runs in for ``X``: float32 stays, float16 widens, the rest is float64."""
    if np.issubdtype(X.dtype, np.complexfloating):
        raise ValueError("Complex data not supported; pass the real part (X.real) or the modulus.")
    if X.dtype in (np.float32, np.float16):
        return np.float32
    return np.float64


def check_array(X, name="X", dtype=None, min_samples=1, allow_nan=False, nan_advice=None,
                finite=True):
    """A finite, 2-D, C-contiguous float32/float64 array from ``X`` (copied only when needed).

    ``dtype`` forces a dtype (for data that must match a fitted model); by
    default it follows ``check_dtype``. ``allow_nan``: NaN cells pass (infinity
    does not); otherwise ``nan_advice`` ends the NaN error's message. ``finite=False``
    leaves the values unchecked, for a caller whose own first pass over X tells
    (``KMeans.fit``: its column means, then ``check_finite`` for the error).
    """
    if hasattr(X, "toarray") or type(X).__module__.startswith("scipy.sparse"):
        raise TypeError(f"{name} is a sparse matrix; GaussianMixture needs dense data (use "
                        f"{name}.toarray()). KMeans and kmeans_plusplus take sparse input.")
    if hasattr(X, "__dataframe__") or hasattr(X, "iloc"):
        X = np.asarray(X)
    X = np.asarray(X)
    if X.dtype.kind in "OUSV":
        try:
            X = X.astype(np.float64)
        except (TypeError, ValueError) as exc:
            # A string that is not a number is a bad value; a dict or list is a bad type.
            raise type(exc)(
                f"{name} must be numeric: could not convert it to float ({exc})."
            ) from None
    elif X.dtype.kind not in "biufc":
        raise TypeError(f"{name} must be numeric, got dtype {X.dtype}.")
    target = check_dtype(X)  # (a clear error for complex data, whatever ``dtype``)
    if dtype is not None:
        target = dtype
    if X.ndim != 2:
        raise ValueError(
            f"Expected a 2D array for {name}, got {X.ndim}D array instead (shape={X.shape}). "
            "Reshape your data either using array.reshape(-1, 1) if your data has a single "
            "feature or array.reshape(1, -1) if it contains a single sample."
        )
    n_samples, n_features = X.shape
    if n_samples < min_samples:
        raise ValueError(
            f"Found array with {n_samples} sample(s) (shape={X.shape}) while a minimum of "
            f"{min_samples} is required."
        )
    if n_features == 0:
        raise ValueError(
            f"Found array with 0 feature(s) (shape={X.shape}) while a minimum of 1 is required."
        )
    X = np.ascontiguousarray(X, dtype=target)
    if finite:
        check_finite(X, name, allow_nan, nan_advice)
    return X


def check_finite(X, name="X", allow_nan=False, nan_advice=None):
    """Raise a ValueError naming ``name`` if ``X`` holds NaN (unless ``allow_nan``) or
    infinity; ``nan_advice`` replaces the NaN message's advice."""
    # Summing is one cheap pass; only a non-finite sum needs the closer look.
    with np.errstate(over="ignore"):  # an overflow is reported below, as a ValueError
        total = np.sum(X, dtype=np.float64)
    if np.isfinite(total):
        return
    if not allow_nan and np.isnan(X).any():
        rows = np.flatnonzero(np.isnan(X).reshape(len(X), -1).any(axis=1))
        raise ValueError(
            f"Input {name} contains NaN (first at row {rows[0]}, {rows.size} row(s) in all); "
            + (nan_advice or "drop or impute those rows first.")
        )
    if np.isinf(X).any():
        rows = np.flatnonzero(np.isinf(X).reshape(len(X), -1).any(axis=1))
        raise ValueError(
            f"Input {name} contains infinity (first at row {rows[0]}, {rows.size} row(s) in "
            "all); drop those rows first."
        )
    if allow_nan:  # NaN cells only, unless the other values overflow too
        with np.errstate(over="ignore"):
            if np.isfinite(np.nansum(X, dtype=np.float64)):
                return
    raise ValueError(
        f"Input {name} contains values too large for {X.dtype}: their sum overflows; "
        "rescale the data."
    )


def total_weight(sample_weight, n_samples):
    """Sum of the frequency weights in float64 (None: unit weights)."""
    if sample_weight is None:
        return float(n_samples)
    return float(np.sum(sample_weight, dtype=np.float64))


def check_sample_weight(sample_weight, n_samples, dtype):
    """Frequency weights as a 1-D ``dtype`` array: finite, >= 0, not all zero."""
    if sample_weight is None:
        return np.ones(n_samples, dtype=dtype)
    if isinstance(sample_weight, numbers.Number):
        sample_weight = np.full(n_samples, sample_weight)
    sample_weight = np.asarray(sample_weight)
    if sample_weight.dtype.kind not in "biuf":
        raise TypeError(f"sample_weight must be numeric, got dtype {sample_weight.dtype}.")
    if sample_weight.shape != (n_samples,):
        raise ValueError(
            f"sample_weight.shape={sample_weight.shape} should be (n_samples,)=({n_samples},)."
        )
    checked = np.asarray(sample_weight, dtype=np.float64)  # checked as given, then cast
    if not np.isfinite(checked).all():
        raise ValueError("sample_weight contains NaN or infinity; weights must be finite.")
    if (checked < 0).any():
        first = int(np.flatnonzero(checked < 0)[0])
        raise ValueError(
            f"sample_weight must be >= 0, got {checked[first]} at index {first}."
        )
    if not checked.any():
        raise ValueError("sample_weight sums to zero; at least one weight must be positive.")
    with np.errstate(over="ignore"):  # reported below
        sample_weight = np.ascontiguousarray(checked, dtype=dtype)
    if not (np.isfinite(sample_weight).all() and sample_weight.any()):
        raise ValueError(
            f"sample_weight (largest {checked.max():g}) does not fit in {np.dtype(dtype).name}, "
            "the dtype of X: rescale the weights, or pass float64 data.")
    return sample_weight


def mean_weight(sample_weight):
    """The mean of checked weights, without overflow for weights near 1e308.

    Dividing by it gives weights of mean 1, whose ratios, all that moves a fit,
    are the same.
    """
    largest = float(np.max(sample_weight))
    return largest * float(np.mean(np.asarray(sample_weight, dtype=np.float64) / largest))


def check_random_state(seed):
    """A ``np.random.RandomState`` from None, an int or an existing generator."""
    if seed is None or seed is np.random:
        return np.random.mtrand._rand
    if isinstance(seed, numbers.Integral) and not isinstance(seed, bool):
        return np.random.RandomState(seed)
    if isinstance(seed, np.random.RandomState):
        return seed
    raise ValueError(
        f"random_state={seed!r} should be None, an int or a numpy RandomState."
    )


class _SpareGenerators(threading.local):
    """RandomStates this thread's fits have finished with, to be reseeded."""

    def __init__(self):
        self.free = []


_spare_generators = _SpareGenerators()


@contextlib.contextmanager
def fit_random_state(seed, reuse=True):
    """``check_random_state(seed)`` for the length of one fit.

    An int seed reseeds a RandomState this thread has used before instead of
    making one: making one costs ~120 us (numpy fills MT19937's state from a
    SeedSequence, then ``RandomState(seed)`` seeds it again), a tenth of an iris
    fit; ``RandomState.seed(seed)`` sets the same state in ~2 us. A fit holds its
    generator until it ends, so nested fits get their own. ``reuse=False`` (the
    generator is handed to user code, which could keep it) makes a new one.
    """
    if not reuse or not isinstance(seed, numbers.Integral) or isinstance(seed, bool):
        yield check_random_state(seed)
        return
    free = _spare_generators.free
    generator = free.pop() if free else np.random.RandomState()
    try:
        generator.seed(seed)  # (the ValueError of RandomState(seed) for a bad seed)
        yield generator
    finally:
        free.append(generator)


def check_positive_int(value, name, minimum=1):
    """``value`` as an int >= ``minimum``, or a ValueError naming ``name``."""
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{name}={value!r} should be an integer >= {minimum}.")
    return int(value)


def check_nonnegative_float(value, name):
    """``value`` as a finite float >= 0, or a ValueError naming ``name``."""
    if (not isinstance(value, numbers.Real) or isinstance(value, bool)
            or not np.isfinite(value) or value < 0):
        raise ValueError(f"{name}={value!r} should be a finite number >= 0.")
    return float(value)
