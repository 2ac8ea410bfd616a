"""Saving and loading fitted models without pickle: a ``.npz`` of arrays plus JSON metadata.

Format (version 1)
------------------
A zip archive written by ``numpy.savez_compressed`` and read back with
``allow_pickle=False``. It holds:

- ``__gmm_fast__``: the UTF-8 bytes (uint8 array) of a JSON object
  ``{"format": "gmm_fast.model", "format_version": 1, "gmm_fast_version": ...,
  "estimator": "GaussianMixture" | "KMeans", "params": {...}, "attributes": {...}}``;
- one array per numeric array value, named ``params.<name>`` or
  ``attributes.<name>`` (``.state`` for a RandomState's key).

In ``params`` and ``attributes`` a value is stored as JSON when it is None, a bool,
an int, a str or a finite float; otherwise as a tagged object: ``{"array": key}``
(numeric ndarray, its dtype and shape kept), ``{"float": "inf" | "-inf" | "nan"}``,
``{"list": [...]}``/``{"tuple": [...]}`` of such values, ``{"strings": [...]}``
(an object array of str, e.g. ``feature_names_in_``) or ``{"random_state": key,
"pos": ..., "has_gauss": ..., "cached_gaussian": ...}`` (a numpy RandomState).
Readers refuse a newer ``format_version``.
"""
import io
import json
import math
import numbers
import zipfile
import zlib

import numpy as np

FORMAT = "gmm_fast.model"
FORMAT_VERSION = 1
_METADATA = "__gmm_fast__"


def _estimators():
    from ._gaussian_mixture import GaussianMixture
    from ._kmeans import KMeans
    return {"GaussianMixture": GaussianMixture, "KMeans": KMeans}


class _Encoder:
    """Turns parameter and attribute values into JSON, collecting arrays on the side."""

    def __init__(self):
        self.arrays = {}

    def encode(self, value, key):
        if value is None or isinstance(value, (bool, str)):
            return value
        if isinstance(value, np.bool_):
            return bool(value)
        if isinstance(value, numbers.Integral):
            return int(value)
        if isinstance(value, numbers.Real) and not isinstance(value, np.floating):
            value = float(value)
            return value if math.isfinite(value) else {"float": repr(value)}
        if isinstance(value, np.floating):
            # A NumPy float scalar keeps its dtype (float32 vs float64) as a 0-d array.
            return self.encode(np.asarray(value), key) | {"scalar": True}
        if isinstance(value, (list, tuple)):
            tag = "list" if isinstance(value, list) else "tuple"
            return {tag: [self.encode(item, f"{key}.{i}") for i, item in enumerate(value)]}
        if isinstance(value, np.random.RandomState):
            _, state, pos, has_gauss, cached = value.get_state()
            self.arrays[f"{key}.state"] = np.asarray(state)
            return {"random_state": f"{key}.state", "pos": int(pos),
                    "has_gauss": int(has_gauss), "cached_gaussian": float(cached)}
        if isinstance(value, np.ndarray):
            if value.dtype == object and all(isinstance(v, str) for v in value.ravel()):
                return {"strings": [str(v) for v in value.ravel()], "shape": list(value.shape)}
            if value.dtype.kind not in "biuf":
                raise TypeError(f"Cannot save {key}: arrays of dtype {value.dtype} are not "
                                "supported (only numbers and strings).")
            self.arrays[key] = value
            return {"array": key}
        raise TypeError(f"Cannot save {key}={value!r}: a {type(value).__name__} has no "
                        "pickle-free representation (use numbers, strings, arrays, None or "
                        "an integer random_state).")


def _decode(value, arrays):
    if not isinstance(value, dict):
        if isinstance(value, list):  # JSON lists only come from tagged objects
            raise ValueError("Malformed gmm_fast model file: untagged list.")
        return value
    if "array" in value:
        array = arrays[value["array"]]
        return array[()] if value.get("scalar") else array
    if "float" in value:
        return float(value["float"])
    if "list" in value:
        return [_decode(item, arrays) for item in value["list"]]
    if "tuple" in value:
        return tuple(_decode(item, arrays) for item in value["tuple"])
    if "strings" in value:
        out = np.empty(len(value["strings"]), dtype=object)
        out[:] = value["strings"]
        return out.reshape(value["shape"])
    if "random_state" in value:
        state = np.random.RandomState()
        state.set_state(("MT19937", arrays[value["random_state"]], value["pos"],
                         value["has_gauss"], value["cached_gaussian"]))
        return state
    raise ValueError(f"Malformed gmm_fast model file: unknown value tag {sorted(value)}.")


def _fitted_attributes(model):
    """The names of the fitted state: public ``name_`` attributes and ``_n_features_out``."""
    return sorted(name for name in vars(model)
                  if (name.endswith("_") and not name.startswith("_"))
                  or name == "_n_features_out")


def save(model, path):
    """Save a fitted GaussianMixture or KMeans to ``path`` (a pickle-free ``.npz``).

    Parameters
    ----------
    model : GaussianMixture or KMeans
        A fitted estimator.
    path : str or path-like
        File to write (the name is used as given; ``.npz`` is not appended).

    Notes
    -----
    The format is described in the module docstring of ``gmm_fast._persistence``:
    numeric arrays in a compressed ``.npz``, everything else as JSON. ``load``
    gives back an estimator whose parameters and fitted attributes are equal,
    bit for bit and dtype for dtype.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from gmm_fast import GaussianMixture, load, save
    >>> X = np.array([[1, 2], [1, 4], [1, 0], [10, 2], [10, 4], [10, 0]])
    >>> gm = GaussianMixture(2, random_state=0).fit(X)
    >>> path = os.path.join(tempfile.mkdtemp(), "model.npz")
    >>> save(gm, path)
    >>> np.array_equal(load(path).means_, gm.means_)
    True
    """
    kind = type(model).__name__
    if _estimators().get(kind) is not type(model):
        raise TypeError(f"save() takes a gmm_fast GaussianMixture or KMeans, got {kind}.")
    fitted = _fitted_attributes(model)
    if "n_features_in_" not in fitted:
        raise ValueError(f"This {kind} is not fitted: call fit before save.")
    encoder = _Encoder()
    params = {name: encoder.encode(value, f"params.{name}")
              for name, value in model.get_params().items()}
    attributes = {name: encoder.encode(getattr(model, name), f"attributes.{name}")
                  for name in fitted}
    from . import __version__
    metadata = {"format": FORMAT, "format_version": FORMAT_VERSION,
                "gmm_fast_version": __version__, "estimator": kind,
                "params": params, "attributes": attributes}
    text = json.dumps(metadata, allow_nan=False, sort_keys=True)
    arrays = dict(encoder.arrays)
    arrays[_METADATA] = np.frombuffer(text.encode("utf-8"), dtype=np.uint8)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    with open(path, "wb") as file:
        file.write(buffer.getvalue())


def read_metadata(path):
    """The JSON metadata and the arrays of a gmm_fast model file (checked format and version)."""
    not_a_model = f"{path} is not a gmm_fast model file (expected a .npz written by gmm_fast.save)"
    try:
        file = open(path, "rb")
    except FileNotFoundError:
        raise FileNotFoundError(f"No such model file: {path}") from None
    except IsADirectoryError:
        raise IsADirectoryError(f"{path} is a directory, not a model file.") from None
    # The file is ours to close whatever np.load makes of it; a damaged archive can
    # fail in zipfile, zlib or numpy, on any entry.
    with file:
        try:
            archive = np.load(file, allow_pickle=False)
        except (ValueError, OSError, zipfile.BadZipFile, EOFError, NotImplementedError):
            raise ValueError(f"{not_a_model}.") from None
        if not isinstance(archive, np.lib.npyio.NpzFile):
            raise ValueError(f"{not_a_model}; it holds a single array (.npy).")
        with archive:
            if _METADATA not in archive.files:
                raise ValueError(f"{not_a_model}; it is an .npz without gmm_fast metadata.")
            try:
                arrays = {name: archive[name] for name in archive.files}
            except (ValueError, OSError, zipfile.BadZipFile, zlib.error, EOFError,
                    NotImplementedError) as exc:  # (a damaged compression method)
                raise ValueError(f"{path} is a damaged gmm_fast model file "
                                 f"({' '.join(str(exc).split())}).") from None
        try:
            metadata = json.loads(arrays.pop(_METADATA).tobytes().decode("utf-8"))
        except (ValueError, UnicodeDecodeError, AttributeError, RecursionError):
            raise ValueError(f"{not_a_model}; its metadata is not valid JSON.") from None
    if not all(isinstance(array, np.ndarray) for array in arrays.values()):
        raise ValueError(f"{not_a_model}; it holds entries that are not arrays.")
    if not isinstance(metadata, dict) or metadata.get("format") != FORMAT:
        raise ValueError(f"{not_a_model}; its metadata names format "
                         f"{metadata.get('format') if isinstance(metadata, dict) else None!r}.")
    version = metadata.get("format_version")
    if type(version) is not int or version < 1:
        raise ValueError(f"{path}: invalid format_version {version!r}.")
    if version > FORMAT_VERSION:
        raise ValueError(
            f"{path} was written in gmm_fast model format version {version} (by gmm_fast "
            f"{metadata.get('gmm_fast_version', '?')}); this gmm_fast reads versions up to "
            f"{FORMAT_VERSION}: upgrade gmm_fast to load it.")
    return metadata, arrays


def load(path):
    """Load a model saved by ``save``.

    Parameters
    ----------
    path : str or path-like
        A file written by ``gmm_fast.save``.

    Returns
    -------
    model : GaussianMixture or KMeans
        Fitted, with the saved parameters and attributes.

    Raises
    ------
    FileNotFoundError
        When the file does not exist.
    ValueError
        When the file is not a gmm_fast model file, or was written in a newer
        format version than this gmm_fast reads.
    """
    metadata, arrays = read_metadata(path)
    kind = metadata.get("estimator")
    estimators = _estimators()
    if kind not in estimators:
        raise ValueError(f"{path} holds an unknown estimator {kind!r}; this gmm_fast loads "
                         f"{', '.join(sorted(estimators))}.")
    try:
        params = {name: _decode(value, arrays) for name, value in metadata["params"].items()}
        attributes = {name: _decode(value, arrays)
                      for name, value in metadata["attributes"].items()}
        model = estimators[kind]()
        model.set_params(**params)
    except (KeyError, TypeError, AttributeError, IndexError, ValueError, RecursionError):
        raise ValueError(f"{path}: malformed gmm_fast model file (missing or invalid "
                         "entries).") from None
    for name, value in attributes.items():
        setattr(model, name, value)
    problem = _inconsistency(model)
    if problem:
        raise ValueError(f"{path}: malformed gmm_fast model file ({problem}).")
    return model


def _inconsistency(model):
    """What makes a loaded model unusable (a hand-edited file), or "" when nothing does."""
    from ._covariances import COVARIANCE_TYPES
    gmm = hasattr(model, "covariance_type")
    need = (("n_features_in_", "weights_", "means_", "covariances_", "precisions_",
             "precisions_cholesky_") if gmm else ("n_features_in_", "cluster_centers_"))
    missing = [name for name in need if not hasattr(model, name)]
    if missing:
        return "no " + ", ".join(missing)
    n_features = model.n_features_in_
    means = model.means_ if gmm else model.cluster_centers_
    if (type(n_features) is not int or not isinstance(means, np.ndarray) or means.ndim != 2
            or means.shape[1] != n_features or means.dtype.kind != "f"):
        return "means should be a float array of n_features_in_ columns"
    if not gmm:
        return ""
    if not isinstance(model.covariance_type, str) or model.covariance_type not in COVARIANCE_TYPES:
        return f"unknown covariance_type {model.covariance_type!r}"
    shape = COVARIANCE_TYPES[model.covariance_type].shape(len(means), n_features)
    for name in ("covariances_", "precisions_", "precisions_cholesky_"):
        value = getattr(model, name)
        if not isinstance(value, np.ndarray) or value.shape != shape:
            return f"{name} should have shape {shape}"
    if not isinstance(model.weights_, np.ndarray) or model.weights_.shape != (len(means),):
        return f"weights_ should have shape ({len(means)},)"
    return ""
