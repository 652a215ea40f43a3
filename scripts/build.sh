#!/usr/bin/env bash
# Configures and builds difflab into build/ (or $DIFFLAB_BUILD_DIR) with the torch PCH and ccache.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${DIFFLAB_BUILD_DIR:-$root/build}
jobs=${DIFFLAB_JOBS:-$(nproc)}
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo > "$build.configure.log" 2>&1 \
  || { cat "$build.configure.log"; exit 1; }
cmake --build "$build" -j "$jobs"
