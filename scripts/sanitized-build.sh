#!/usr/bin/env bash
# Configures and builds the clang build that scripts/sanitize.sh and scripts/fuzz.sh share:
# build-san/ (or $DIFFLAB_SAN_BUILD_DIR), every difflab target under AddressSanitizer and
# UndefinedBehaviorSanitizer, with libFuzzer coverage and the fuzz target (DIFFLAB_FUZZ=ON).
# Usage: scripts/sanitized-build.sh [TARGET...]   (default: everything)
# DIFFLAB_BUILD_LOCK=FILE builds under `flock FILE`, where several checkouts share the cores.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${DIFFLAB_SAN_BUILD_DIR:-$root/build-san}
jobs=${DIFFLAB_JOBS:-$(nproc)}
"$root/scripts/install-deps.sh" --sanitizers
export CCACHE_BASEDIR=${CCACHE_BASEDIR:-$root}
mkdir -p "$build"
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_COMPILER=clang++ -DDIFFLAB_SANITIZE="address;undefined" -DDIFFLAB_FUZZ=ON \
  > "$build/configure.log" 2>&1 || { cat "$build/configure.log"; exit 1; }
targets=()
for t in "$@"; do targets+=(--target "$t"); done
lock=()
if [ -n "${DIFFLAB_BUILD_LOCK:-}" ]; then lock=(flock "$DIFFLAB_BUILD_LOCK"); fi
"${lock[@]}" cmake --build "$build" -j "$jobs" "${targets[@]}"
