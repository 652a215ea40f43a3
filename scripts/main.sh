#!/usr/bin/env bash
# The main job: set up, build, run the four-schedule 2D GMM study, then print its report and
# write it as report.html.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/install-deps.sh"
"$root/scripts/build.sh"
build=${DIFFLAB_BUILD_DIR:-$root/build}
cd "$root"
status=0
"$build/runner" sweep experiments/schedule_sweep.yaml --db runs.sqlite --out runs "$@" || status=$?
"$build/runner" report --db runs.sqlite --sweep schedule_sweep
# The same comparison as one offline page: charts, sample scatters and reverse-process GIFs.
"$build/runner" report --db runs.sqlite --sweep schedule_sweep --format html --output report.html
echo "report.html: open it in a browser (no server needed)"
exit $status
