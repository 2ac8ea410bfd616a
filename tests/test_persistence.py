"""save/load: pickle-free .npz + JSON, exact round trip, clear errors."""
import io
import json
import zipfile

import numpy as np
import pandas as pd
import pytest

from gmm_fast import GaussianMixture, KMeans, load, save
from gmm_fast._persistence import FORMAT_VERSION


def _assert_same_state(model, loaded):
    assert type(loaded) is type(model)
    assert sorted(vars(loaded)) == sorted(vars(model))
    for name, value in vars(model).items():
        other = getattr(loaded, name)
        if isinstance(value, np.ndarray):
            assert other.dtype == value.dtype and other.shape == value.shape, name
            assert np.array_equal(other, value, equal_nan=value.dtype != object), name
        elif isinstance(value, np.random.RandomState):
            a, b = value.get_state(), other.get_state()
            assert a[0] == b[0] and np.array_equal(a[1], b[1]) and a[2:] == b[2:]
        else:
            assert type(other) is type(value), name
            assert other == value or (value != value and other != other), name


def _data(dtype=np.float64):
    rng = np.random.default_rng(0)
    return np.concatenate([rng.normal(0, 1, (150, 3)), rng.normal(5, 2, (100, 3))]).astype(dtype)


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gmm_round_trip(tmp_path, covariance_type, dtype):
    X = _data(dtype)
    model = GaussianMixture(2, covariance_type=covariance_type, random_state=0,
                            contamination=0.05, sort_components="weights",
                            means_init=[[0, 0, 0], [5, 5, 5]]).fit(X)
    path = tmp_path / "model.gmm"
    save(model, path)
    assert path.exists() and not (tmp_path / "model.gmm.npz").exists()
    loaded = load(path)
    _assert_same_state(model, loaded)
    assert loaded.get_params().keys() == model.get_params().keys()
    np.testing.assert_array_equal(loaded.get_params()["means_init"], model.means_init)
    for method in ("score_samples", "predict_proba", "predict", "predict_outliers"):
        np.testing.assert_array_equal(getattr(loaded, method)(X), getattr(model, method)(X))
    # Sampling continues the same random stream (random_state is an int: same draws).
    np.testing.assert_array_equal(loaded.sample(5)[0], model.sample(5)[0])


def test_kmeans_round_trip_with_feature_names_and_random_state(tmp_path):
    frame = pd.DataFrame(_data(), columns=["a", "b", "c"])
    model = KMeans(3, n_init=2, random_state=np.random.RandomState(7)).fit(frame)
    save(model, tmp_path / "km.npz")
    loaded = load(tmp_path / "km.npz")
    _assert_same_state(model, loaded)
    assert loaded.feature_names_in_.tolist() == ["a", "b", "c"]
    np.testing.assert_array_equal(loaded.predict(frame), model.predict(frame))
    np.testing.assert_array_equal(loaded.transform(frame), model.transform(frame))
    assert loaded.random_state.randint(1 << 30) == model.random_state.randint(1 << 30)


def test_non_finite_lower_bound_round_trip(tmp_path):
    model = GaussianMixture(2, max_iter=0, random_state=0).fit(_data())
    assert model.lower_bound_ == -np.inf
    save(model, tmp_path / "m.npz")
    _assert_same_state(model, load(tmp_path / "m.npz"))
    # The metadata is strict JSON (no NaN/Infinity tokens).
    with zipfile.ZipFile(tmp_path / "m.npz") as archive:
        raw = np.load(io.BytesIO(archive.read("__gmm_fast__.npy")))
    metadata = json.loads(raw.tobytes(), parse_constant=pytest.fail)
    assert metadata["attributes"]["lower_bound_"] == {"float": "-inf"}
    assert metadata["format"] == "gmm_fast.model" and metadata["format_version"] == 1


def _rewrite_metadata(path, change):
    archive = dict(np.load(path))
    metadata = json.loads(archive["__gmm_fast__"].tobytes())
    change(metadata)
    archive["__gmm_fast__"] = np.frombuffer(json.dumps(metadata).encode(), dtype=np.uint8)
    np.savez(path, **archive)


def test_newer_version_and_other_files_are_clear_errors(tmp_path):
    model = KMeans(2, random_state=0).fit(_data())
    path = tmp_path / "m.npz"
    save(model, path)
    _rewrite_metadata(path, lambda m: m.update(format_version=FORMAT_VERSION + 1))
    with pytest.raises(ValueError, match=r"format version 2 .*reads versions up to 1: "
                                         r"upgrade gmm_fast"):
        load(path)
    _rewrite_metadata(path, lambda m: m.update(format_version=1, estimator="Birch"))
    with pytest.raises(ValueError, match=r"unknown estimator 'Birch'"):
        load(path)
    np.savez(tmp_path / "plain.npz", a=np.arange(3))
    with pytest.raises(ValueError, match=r"not a gmm_fast model file.*without gmm_fast metadata"):
        load(tmp_path / "plain.npz")
    np.save(tmp_path / "array.npy", np.arange(3))
    with pytest.raises(ValueError, match=r"not a gmm_fast model file.*single array"):
        load(tmp_path / "array.npy")
    (tmp_path / "text.csv").write_text("1,2\n3,4\n")
    with pytest.raises(ValueError, match=r"not a gmm_fast model file"):
        load(tmp_path / "text.csv")
    with pytest.raises(FileNotFoundError, match=r"No such model file"):
        load(tmp_path / "missing.npz")


def test_save_errors(tmp_path):
    with pytest.raises(ValueError, match="not fitted"):
        save(GaussianMixture(2), tmp_path / "m.npz")
    with pytest.raises(TypeError, match="GaussianMixture or KMeans, got dict"):
        save({}, tmp_path / "m.npz")
    model = KMeans(2, init=lambda X, k, random_state: X[:k], n_init=1).fit(_data())
    with pytest.raises(TypeError, match=r"params.init=.* has no pickle-free representation"):
        save(model, tmp_path / "m.npz")


def _flip_byte(path, offset):
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


def test_damaged_files_are_value_errors(tmp_path):
    """A damaged archive is a ValueError naming the file, whichever entry is hit (they
    were zipfile.BadZipFile or zlib.error from the entries' reading)."""
    model = GaussianMixture(2, random_state=0).fit(_data())
    path = tmp_path / "m.npz"
    save(model, path)
    size = path.stat().st_size
    failures = 0
    for offset in range(0, size, max(1, size // 60)):
        damaged = tmp_path / f"d{offset}.npz"
        damaged.write_bytes(path.read_bytes())
        _flip_byte(damaged, offset)
        try:
            loaded = load(damaged)
        except ValueError as exc:
            assert str(damaged) in str(exc)
            failures += 1
        else:  # a flip the format cannot see (e.g. in a zip comment): still a model
            np.testing.assert_array_equal(loaded.means_, model.means_)
    assert failures > 40
    truncated = tmp_path / "t.npz"
    truncated.write_bytes(path.read_bytes()[:size // 2])
    with pytest.raises(ValueError, match="not a gmm_fast model file"):
        load(truncated)


@pytest.mark.parametrize("change, message", [
    (lambda m: m["params"].update(covariance_type="bogus"), "unknown covariance_type 'bogus'"),
    (lambda m: m["attributes"].pop("n_features_in_"), "no n_features_in_"),
    (lambda m: m["attributes"].update(n_features_in_=7), "means should be a float array"),
    (lambda m: m["attributes"].update(weights_=[1, 2]), "missing or invalid entries"),
    (lambda m: m["params"].update(n_components={"nope": 1}), "missing or invalid entries"),
    (lambda m: m.update(format_version=True), "invalid format_version True"),
])
def test_tampered_metadata_is_a_value_error(tmp_path, change, message):
    """Hand-edited metadata that would break the model later (KeyError at predict,
    AttributeError, ...) is refused by load."""
    path = tmp_path / "m.npz"
    save(GaussianMixture(2, random_state=0).fit(_data()), path)
    _rewrite_metadata(path, change)
    with pytest.raises(ValueError, match=message):
        load(path)


def test_swapped_covariances_are_refused(tmp_path):
    path = tmp_path / "m.npz"
    save(GaussianMixture(2, covariance_type="diag", random_state=0).fit(_data()), path)
    _rewrite_metadata(path, lambda m: m["params"].update(covariance_type="full"))
    with pytest.raises(ValueError, match=r"covariances_ should have shape \(2, 3, 3\)"):
        load(path)
