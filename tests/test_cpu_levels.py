"""Choosing the kernels' CPU level: the environment cap, the API, the report, and the
same answers at every level (the kernel oracle tests run at each: conftest's cpu_level)."""
import os
import subprocess
import sys

import numpy as np
import pytest

import gmm_fast
from gmm_fast import GaussianMixture, KMeans
from gmm_fast._cpu import LEVELS

from conftest import SUPPORTED_LEVELS, make_blobs


def run_python(code, level=None):
    """Run ``code`` in a fresh interpreter with GMM_FAST_CPU_LEVEL=level (or unset)."""
    env = dict(os.environ)
    env.pop("GMM_FAST_CPU_LEVEL", None)
    if level is not None:
        env["GMM_FAST_CPU_LEVEL"] = level
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done


def test_supported_level_is_known():
    assert gmm_fast.supported_cpu_level() in LEVELS
    assert gmm_fast.cpu_level() in SUPPORTED_LEVELS


@pytest.mark.parametrize("level", SUPPORTED_LEVELS)
def test_environment_caps_the_level(level):
    done = run_python("import gmm_fast; print(gmm_fast.cpu_level())", level)
    assert done.stdout.strip() == level


def test_environment_above_the_cpu_gives_the_cpu_level():
    done = run_python("import gmm_fast; print(gmm_fast.cpu_level())", "avx512")
    assert done.stdout.strip() == gmm_fast.supported_cpu_level()


def test_unknown_environment_value_warns_and_is_ignored():
    done = run_python("import gmm_fast; print(gmm_fast.cpu_level())", "sse9")
    assert done.stdout.strip() == gmm_fast.supported_cpu_level()
    assert "GMM_FAST_CPU_LEVEL='sse9' is ignored" in done.stderr


def test_set_cpu_level_returns_the_previous_level():
    previous = gmm_fast.set_cpu_level("baseline")
    try:
        assert gmm_fast.cpu_level() == "baseline"
        assert gmm_fast.set_cpu_level("avx512") == "baseline"
        assert gmm_fast.cpu_level() == gmm_fast.supported_cpu_level()
    finally:
        gmm_fast.set_cpu_level(previous)


def test_set_cpu_level_rejects_unknown_levels():
    with pytest.raises(ValueError, match="level='avx3' should be one of 'baseline', 'avx2'"):
        gmm_fast.set_cpu_level("avx3")


def test_show_config_reports_level_openmp_and_blas(capsys):
    gmm_fast.show_config()
    out = capsys.readouterr().out
    assert f"cpu level: {gmm_fast.cpu_level()}" in out
    assert "openmp:" in out and "max threads" in out
    assert "blas:" in out


def test_cli_version_prints_the_report():
    done = run_python("import sys; from gmm_fast._cli import main; sys.exit(main(['--version']))")
    assert done.stdout.startswith("gmm_fast ") and "cpu level:" in done.stdout


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fits_agree_across_levels(covariance_type, dtype, rng):
    """The levels differ only in rounding (vector widths, FMA contraction): the same fit
    from the same start. float64 1e-9 (a fit amplifies last-bit differences over its
    iterations); float32 data whose sums are float64: 1e-5."""
    X = make_blobs(rng, 3000, 5, 4).astype(dtype)
    results = []
    for level in SUPPORTED_LEVELS:
        previous = gmm_fast.set_cpu_level(level)
        try:
            gm = GaussianMixture(4, covariance_type=covariance_type, random_state=0,
                                 tol=1e-6).fit(X)
            km = KMeans(4, random_state=0, n_init=1).fit(X)
        finally:
            gmm_fast.set_cpu_level(previous)
        results.append((gm, km))
    rtol = 1e-9 if dtype == np.float64 else 1e-5
    first_gm, first_km = results[0]
    for gm, km in results[1:]:
        assert (gm.n_iter_, km.n_iter_) == (first_gm.n_iter_, first_km.n_iter_)
        np.testing.assert_allclose(gm.means_, first_gm.means_, rtol=rtol, atol=rtol)
        np.testing.assert_allclose(gm.covariances_, first_gm.covariances_, rtol=rtol,
                                   atol=rtol)
        np.testing.assert_allclose(gm.lower_bound_, first_gm.lower_bound_, rtol=rtol)
        np.testing.assert_array_equal(km.labels_, first_km.labels_)
        np.testing.assert_allclose(km.cluster_centers_, first_km.cluster_centers_,
                                   rtol=rtol, atol=rtol)
