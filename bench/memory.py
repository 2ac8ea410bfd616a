"""Peak memory of one fit, measured in a fresh process.

Run as ``python bench/memory.py IMPL MODEL N D K [--dtype float64] [--max-iter 2]``
(IMPL: gmm_fast or sklearn; MODEL: gmm or kmeans); prints one JSON line.

Method (Linux): generate X, warm the implementation up on a small fit (so lazy
imports and thread pools are not counted), then reset the kernel's peak-RSS
counter (write "5" to /proc/self/clear_refs) and read VmRSS as the baseline;
after ``fit_predict(X)`` the peak is VmHWM. ``extra`` = peak - baseline is what
the fit added on top of X; the budget is the labels it returns plus
``BUFFER_MB`` of buffers. ``run.py`` calls this through ``measure()``.
"""
import json
import os
import subprocess
import sys
import warnings

import numpy as np

#: "a few MB of buffers" on top of X and the labels (issue 3).
BUFFER_MB = 16


def _status_kib(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def _estimator(impl, model, k, X, max_iter):
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from cases import initial_centers, initial_gmm_parameters
    if model == "kmeans":
        centers = initial_centers(X, k)
        if impl == "gmm_fast":
            from gmm_fast import KMeans
            return KMeans(k, init=centers, n_init=1, tol=0, max_iter=max_iter, n_threads=2)
        from sklearn.cluster import KMeans
        return KMeans(k, init=centers, n_init=1, tol=0, max_iter=max_iter)
    weights, means, precisions = initial_gmm_parameters(X, k, "full")
    params = dict(n_components=k, covariance_type="full", tol=0.0, max_iter=max_iter,
                  init_params="random_from_data", weights_init=weights, means_init=means,
                  precisions_init=precisions, random_state=0)
    if impl == "gmm_fast":
        from gmm_fast import GaussianMixture
        return GaussianMixture(n_threads=2, **params)
    from sklearn.mixture import GaussianMixture
    return GaussianMixture(**params)


def _child(impl, model, n_samples, n_features, k, dtype, max_iter):
    from cases import make_data
    warnings.simplefilter("ignore")
    X = make_data(n_samples, n_features, k, dtype)
    _estimator(impl, model, k, X[:2000], 1).fit_predict(X[:2000])   # warm-up
    estimator = _estimator(impl, model, k, X, max_iter)
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")                                              # reset VmHWM to VmRSS
    baseline = _status_kib("VmRSS")
    labels = estimator.fit_predict(X)
    peak = _status_kib("VmHWM")
    mib = 1024.0
    return {"impl": impl, "model": model, "n_samples": n_samples, "n_features": n_features,
            "n_components": k, "dtype": dtype, "max_iter": max_iter,
            "x_mib": X.nbytes / 2 ** 20, "labels_mib": labels.nbytes / 2 ** 20,
            "extra_mib": (peak - baseline) / mib,
            "budget_mib": labels.nbytes / 2 ** 20 + BUFFER_MB}


def measure(impl, model, n_samples, n_features, k, dtype="float64", max_iter=2):
    """Run the measurement in a fresh interpreter; returns its dict (or ``error``)."""
    cmd = [sys.executable, os.path.abspath(__file__), impl, model, str(n_samples),
           str(n_features), str(k), "--dtype", dtype, "--max-iter", str(max_iter)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        return {"impl": impl, "model": model, "error": done.stderr.strip().splitlines()[-1:]}
    return json.loads(done.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    import argparse
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("impl", choices=["gmm_fast", "sklearn"])
    parser.add_argument("model", choices=["gmm", "kmeans"])
    parser.add_argument("n_samples", type=int)
    parser.add_argument("n_features", type=int)
    parser.add_argument("n_components", type=int)
    parser.add_argument("--dtype", default="float64", choices=["float64", "float32"])
    parser.add_argument("--max-iter", type=int, default=2)
    a = parser.parse_args()
    print(json.dumps(_child(a.impl, a.model, a.n_samples, a.n_features, a.n_components,
                           a.dtype, a.max_iter)))
