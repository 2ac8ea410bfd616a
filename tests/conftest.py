"""Shared fixtures: seeded data, the two float dtypes and the thread counts to compare."""
import numpy as np
import pytest

import gmm_fast
from gmm_fast import _cpu

# Every CPU level of the kernels this machine can run (kernels.h): the kernel tests
# run at each, so that the baseline and AVX2 paths are tested on AVX-512 machines too.
SUPPORTED_LEVELS = _cpu.LEVELS[:_cpu.LEVELS.index(gmm_fast.supported_cpu_level()) + 1]


@pytest.fixture
def rng():
    """A fresh seeded generator per test, so tests do not depend on their order."""
    return np.random.default_rng(20240611)


@pytest.fixture(params=[np.float32, np.float64], ids=["float32", "float64"])
def dtype(request):
    """The two dtypes the kernels compute in."""
    return request.param


@pytest.fixture(params=SUPPORTED_LEVELS)
def cpu_level(request):
    """The kernels at each CPU level the machine supports (restored afterwards)."""
    previous = gmm_fast.set_cpu_level(request.param)
    yield request.param
    gmm_fast.set_cpu_level(previous)


@pytest.fixture
def parallel_passes(monkeypatch):
    """Every pass takes all the threads it is allowed, however small (the automatic
    choice gives small passes one thread, which would leave 2-thread tests untested)."""
    import gmm_fast._threads
    monkeypatch.setattr(gmm_fast._threads, "MIN_SECONDS_PER_THREAD", 1e-12)


@pytest.fixture(params=[1, 2], ids=["1thread", "2threads"])
def n_threads(request, parallel_passes):
    """One thread and more than one: results must not depend on it."""
    return request.param


def make_blobs(rng, n_samples, n_features, n_centers, spread=0.5, offset=0.0):
    """Gaussian blobs around ``n_centers`` random centres, as float64.

    ``offset`` moves the whole cloud away from the origin (the kernels work
    about the data mean, so this must not change the answers).
    """
    centers = rng.uniform(-5, 5, size=(n_centers, n_features))
    labels = rng.integers(n_centers, size=n_samples)
    return centers[labels] + spread * rng.standard_normal((n_samples, n_features)) + offset
