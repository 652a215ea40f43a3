#!/usr/bin/env bash
# The main job: set up, build, run the four-schedule 2D GMM study, then print its report.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/install-deps.sh"
"$root/scripts/build.sh"
build=${DIFFLAB_BUILD_DIR:-$root/build}
cd "$root"
status=0
"$build/runner" sweep experiments/schedule_sweep.yaml --db runs.sqlite --out runs "$@" || status=$?
"$build/runner" report --db runs.sqlite --sweep schedule_sweep
exit $status
