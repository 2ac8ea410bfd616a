"""Pictures: the files are written and are valid PNGs (needs matplotlib, the plot extra)."""
import struct
import zlib

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from gmm_fast import GaussianMixture, KMeans, select_model  # noqa: E402
from gmm_fast._cli import main  # noqa: E402
from gmm_fast._datasets import make_tilted_blobs  # noqa: E402
from gmm_fast._plotting import Projection, plot_fit, plot_selection, plot_side_by_side  # noqa


def assert_png(path, min_width=200):
    """Signature, IHDR first, every chunk's CRC right, IEND last, a plausible size."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    offset, chunks = 8, []
    while offset < len(data):
        length, kind = struct.unpack(">I4s", data[offset:offset + 8])
        body = data[offset + 8:offset + 8 + length]
        (crc,) = struct.unpack(">I", data[offset + 8 + length:offset + 12 + length])
        assert crc == zlib.crc32(kind + body) & 0xFFFFFFFF, kind
        chunks.append((kind, body))
        offset += 12 + length
    assert chunks[0][0] == b"IHDR" and chunks[-1][0] == b"IEND"
    width, height = struct.unpack(">II", chunks[0][1][:8])
    assert width >= min_width and height >= 200
    return width, height


@pytest.fixture(scope="module")
def blobs():
    return make_tilted_blobs(n_samples=600, random_state=0)[0]


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical"])
def test_plot_gmm(tmp_path, blobs, covariance_type):
    model = GaussianMixture(3, covariance_type=covariance_type, random_state=0).fit(blobs)
    plot_fit(model, blobs, tmp_path / "gmm.png")
    assert_png(tmp_path / "gmm.png")


def test_plot_kmeans_and_side_by_side(tmp_path, blobs):
    kmeans = KMeans(3, random_state=0).fit(blobs)
    gmm = GaussianMixture(3, random_state=0).fit(blobs)
    plot_fit(kmeans, blobs, tmp_path / "km.png")
    assert_png(tmp_path / "km.png")
    plot_side_by_side([kmeans, gmm], blobs, tmp_path / "both.png")
    single, _ = assert_png(tmp_path / "km.png")
    double, _ = assert_png(tmp_path / "both.png")
    assert double > 1.5 * single


def test_projection_is_principal_plane():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(500, 4)) * [5.0, 0.1, 2.0, 0.1]
    projection = Projection(X)
    # The first two principal axes of this data are features 0 and 2.
    np.testing.assert_allclose(np.abs(projection.axes[[0, 2]]), np.eye(2), atol=0.05)
    covariance = np.cov(X.T)
    np.testing.assert_allclose(projection.covariance(covariance),
                               np.cov(projection.points(X).T), rtol=1e-10, atol=1e-12)


def test_plot_selection(tmp_path, blobs):
    selection = select_model(blobs, [1, 2, 3], ["full", "diag"], random_state=0)
    plot_selection(selection, tmp_path / "bic.png")
    assert_png(tmp_path / "bic.png")


def test_cli_plots(tmp_path, blobs, capsys):
    np.save(tmp_path / "X.npy", np.c_[blobs, blobs[:, :1] * 0.5])  # 3-D: principal plane
    assert main(["fit", str(tmp_path / "X.npy"), "-k", "3", "--plot",
                 str(tmp_path / "fit.png")]) == 0
    assert main(["select", str(tmp_path / "X.npy"), "-k", "1-3", "--quiet", "--plot",
                 str(tmp_path / "select.png")]) == 0
    assert main(["demo", "--plot", str(tmp_path / "demo.png")]) == 0
    for name in ("fit.png", "select.png", "demo.png"):
        assert_png(tmp_path / name)
    assert "Picture written to" in capsys.readouterr().err
