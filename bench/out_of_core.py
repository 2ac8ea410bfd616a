"""Out-of-core: a GaussianMixture fit of a float32 file larger than it should hold, through dask.

Writes a (n, 8) float32 array (default 1e8 rows: 3.2 GB) of 8 groups as a dask npy stack
(one ``.npy`` file per block of 2^20 rows, written block by block), then, each in a fresh
process: the fit of ``da.from_npy_stack(..., mmap_mode="r")`` (local threaded scheduler),
and the in-memory fit of its first tenth, both from the same start with ``tol=0`` for a fixed number of
iterations. Reports each process's peak anonymous RSS (its own memory; a memmap's pages
are the page cache's) above its baseline (interpreter, imports, and for the in-memory
fit its copy of the rows) and rows per second per iteration; targets (issue 15): peak extra RSS < 500 MB,
rate >= 0.7 of the in-memory fit's with the file in the page cache (a first, reading run
warms it). Run: ``env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/out_of_core.py``.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

CHILD = r"""
import json, sys, threading, time, warnings
import numpy as np
import dask, dask.array as da
from gmm_fast import GaussianMixture

def anonymous_mb():
    # RssAnon: the process's own memory; a memmap's pages are the page cache's (RssFile)
    for line in open("/proc/self/status"):
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) / 1024

peak = [0.0]
def watch():
    while True:
        peak[0] = max(peak[0], anonymous_mb())
        time.sleep(0.005)

path, mode, rows, iterations, start_file = sys.argv[1:6]
rows, iterations = int(rows), int(iterations)
start = {k: np.asarray(v) for k, v in json.load(open(start_file)).items()}
X = da.from_npy_stack(path, mmap_mode="r")[:rows]
if mode == "memory":
    with dask.config.set(scheduler="threads"):
        X = X.compute()
baseline = anonymous_mb()
threading.Thread(target=watch, daemon=True).start()
warnings.simplefilter("ignore")
with dask.config.set(scheduler="threads"):
    t0 = time.perf_counter()
    GaussianMixture(8, covariance_type="full", tol=0.0, max_iter=1, **start).fit(X)
    one = time.perf_counter() - t0
    t0 = time.perf_counter()
    GaussianMixture(8, covariance_type="full", tol=0.0, max_iter=1 + iterations, **start).fit(X)
    more = time.perf_counter() - t0
time.sleep(0.02)
print(json.dumps({"baseline_mb": baseline, "peak_mb": peak[0],
                  "seconds_per_iteration": (more - one) / iterations}))
"""

def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=100_000_000)
    parser.add_argument("--iterations", type=int, default=2)
    parser.add_argument("--folder", default=tempfile.gettempdir())
    args = parser.parse_args(argv)
    import dask
    import dask.array as da

    path = os.path.join(args.folder, f"gmm_fast_out_of_core_{args.rows}")
    centres = 4.0 * np.random.default_rng(0).standard_normal((8, 8)).astype(np.float32)
    if not os.path.exists(path):
        step = 2**20

        def block(block_id=None):
            rng = np.random.default_rng(block_id[0])
            n = min(step, args.rows - block_id[0] * step)
            return (centres[rng.integers(8, size=n)]
                    + rng.standard_normal((n, 8), dtype=np.float32))

        chunks = tuple(min(step, args.rows - start) for start in range(0, args.rows, step))
        with dask.config.set(scheduler="threads"):
            da.to_npy_stack(path, da.map_blocks(block, chunks=(chunks, (8,)),
                                                dtype=np.float32))
    start_file = path + ".start.json"
    with open(start_file, "w") as out:
        json.dump({"weights_init": [1 / 8] * 8, "means_init": centres.astype(float).tolist(),
                   "precisions_init": np.tile(np.eye(8), (8, 1, 1)).tolist()}, out)
    for name in sorted(os.listdir(path)):  # the page cache
        subprocess.run(["cat", os.path.join(path, name)], stdout=subprocess.DEVNULL, check=True)
    results = {}
    for mode, rows in (("dask", args.rows), ("memory", args.rows // 10)):
        done = subprocess.run([sys.executable, "-c", CHILD, path, mode, str(rows),
                               str(args.iterations), start_file],
                              capture_output=True, text=True, check=True)
        results[mode] = json.loads(done.stdout.strip().splitlines()[-1])
        results[mode]["rows"] = rows
    from gmm_fast._cpu import cpu_level
    print(f"CPU level {cpu_level()}; file {args.rows} x 8 float32 "
          f"({args.rows * 32 / 1e9:.1f} GB), GaussianMixture full k=8, {args.iterations} "
          "iterations timed")
    for mode, r in results.items():
        rate = r["rows"] / r["seconds_per_iteration"]
        extra = r["peak_mb"] - r["baseline_mb"]
        print(f"  {mode:6s}: {r['rows']:.0e} rows, {r['seconds_per_iteration']:.2f} s an iteration "
              f"({rate / 1e6:.1f} M rows/s), peak anonymous RSS {r['peak_mb']:.0f} MB, "
              f"{extra:.0f} MB above the baseline after loading")
    ratio = ((results["dask"]["rows"] / results["dask"]["seconds_per_iteration"])
             / (results["memory"]["rows"] / results["memory"]["seconds_per_iteration"]))
    print(f"  dask out-of-core rate / in-memory rate: {ratio:.2f}")


if __name__ == "__main__":
    main()
