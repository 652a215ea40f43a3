#!/usr/bin/env bash
# Every test: set up, build, then the Catch2 suite and the out-of-tree plugin build via CTest.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/install-deps.sh"
"$root/scripts/build.sh"
build=${DIFFLAB_BUILD_DIR:-$root/build}
# A local single-node Slurm for the slurm_sweep test, stopped however CTest ends. Without it
# (not root, no sudo) that test skips, except under CI=true, where it fails.
sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo -n"; fi
if [ "${DIFFLAB_NO_SLURM:-0}" != 1 ] && $sudo "$root/scripts/slurm/start.sh"; then
  trap '$sudo "$root/scripts/slurm/stop.sh"' EXIT
else
  echo "test.sh: no local Slurm cluster; the slurm_sweep test will skip (or fail with CI=true)"
fi
ctest --test-dir "$build" --output-on-failure --timeout 900
