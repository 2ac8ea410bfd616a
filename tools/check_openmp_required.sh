#!/usr/bin/env bash
# Show that release builds cannot ship without OpenMP: with a C compiler that has no OpenMP,
#   * `-Csetup-args=-Dopenmp=enabled` (what tools/build_wheels.sh and cibuildwheel pass) must
#     fail the build at `meson setup`, and
#   * the default (`openmp=auto`) must still build, warning that the kernels run on one thread,
#     so the failure above comes from the option and nothing else.
# The compiler without OpenMP is this machine's gcc behind a wrapper that rejects -fopenmp,
# which is how meson probes for OpenMP support (it compiles a check of _OPENMP with that flag).
#
# Usage: tools/check_openmp_required.sh   (needs python3, gcc and access to PyPI)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
python=${PYTHON:-python3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

mkdir -p "$work/bin"
cat > "$work/bin/cc-without-openmp" <<'SH'
#!/bin/sh
for arg in "$@"; do
  case "$arg" in
    -fopenmp|-fopenmp=*|-qopenmp|/openmp*) echo "cc-without-openmp: $arg is not supported" >&2; exit 1 ;;
  esac
done
exec gcc "$@"
SH
chmod +x "$work/bin/cc-without-openmp"

# The build requirements once, then builds without isolation (both builds use the same ones).
"$python" -m venv "$work/venv"
"$work/venv/bin/python" -m pip install --quiet --upgrade pip
"$work/venv/bin/python" -m pip install --quiet "meson-python>=0.16" "Cython>=3.1" "numpy>=2.0" \
    "scipy>=1.10" ninja
export PATH="$work/venv/bin:$PATH" CC="$work/bin/cc-without-openmp"

build() {  # build a wheel of the repository with extra pip arguments; log in $work/$1.log
  local name=$1; shift
  "$work/venv/bin/python" -m pip wheel --no-deps --no-build-isolation --wheel-dir "$work/$name" \
      "$@" "$root" > "$work/$name.log" 2>&1
}

echo "== CC=cc-without-openmp, -Csetup-args=-Dopenmp=enabled: must fail"
if build enabled -Csetup-args=-Dopenmp=enabled; then
  echo "FAIL: the build succeeded without OpenMP" >&2; exit 1
fi
grep -E 'Dependency "?openmp"? not found|ERROR' "$work/enabled.log" | head -3

echo "== CC=cc-without-openmp, default (openmp=auto): must build, single-threaded"
if ! build auto; then
  tail -30 "$work/auto.log" >&2; echo "FAIL: the default build failed" >&2; exit 1
fi
grep -E 'Run-time dependency openmp found|OpenMP not found' "$work/auto.log" | head -3
echo "OK: -Dopenmp=enabled turns a missing OpenMP into a build error"
