"""pytest-benchmark configuration: ``--bench-quick`` and the ratios added to saved runs."""
import functools

import numpy as np
import pytest

import cases


def pytest_addoption(parser):
    parser.addoption("--bench-quick", action="store_true",
                     help="the quick (CI-sized) workloads of bench/cases.py")


def pytest_configure(config):
    # Read at import time by bench_kmeans.py / bench_gmm.py to build their parameters.
    cases.PYTEST_QUICK = config.getoption("--bench-quick")


@functools.lru_cache(maxsize=2)
def dataset(n_samples, n_features, n_components, dtype):
    """The workload's data (cached: consecutive benchmarks share a workload)."""
    X = cases.make_data(n_samples, n_features, n_components, "float64")
    return X if dtype == "float64" else X.astype(np.float32)


@pytest.fixture
def data():
    return dataset


def pytest_benchmark_update_json(config, benchmarks, output_json):
    """Add ``speedup`` (peer median / gmm_fast median in the same group) to each peer."""
    mine = {b["group"]: b["stats"]["median"] for b in output_json["benchmarks"]
            if b["params"].get("impl") == "gmm_fast"}
    for bench in output_json["benchmarks"]:
        reference = mine.get(bench["group"])
        if reference and bench["params"].get("impl") != "gmm_fast":
            bench["extra_info"]["speedup_of_gmm_fast"] = bench["stats"]["median"] / reference
