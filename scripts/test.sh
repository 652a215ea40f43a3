#!/usr/bin/env bash
# Every test: set up, build, then the Catch2 suite and the out-of-tree plugin build via CTest.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/install-deps.sh"
"$root/scripts/build.sh"
build=${DIFFLAB_BUILD_DIR:-$root/build}
ctest --test-dir "$build" --output-on-failure --timeout 900
