#!/usr/bin/env bash
# The README's comparison that holds up: experiments/schedule_sweep.yaml with three seeds per
# schedule (shortened to 100 epochs), then `runner report --over seed` (mean, s, n and 95%
# interval of each metric over the seeds) and `--compare schedule.plugin=linear,quadratic` (the
# paired differences, seed by seed). Prints the time and the CPU first.
#   scripts/seed_study.sh [BUILD_DIR]        (default: build)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$root/build}" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/difflab-seeds.XXXXXX")
trap 'rm -rf "$work"' EXIT

start=$(date +%s)
"$build/runner" sweep "$root/experiments/schedule_sweep.yaml" --db "$work/runs.sqlite" --out "$work/runs" \
  --set 'sweep.seed=[0,1,2]' --set train.epochs=100 -q
seconds=$(( $(date +%s) - start ))
echo "sweep: $(( seconds / 60 )) min $(( seconds % 60 )) s on $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)" \
     "(family $(grep -m1 'cpu family' /proc/cpuinfo | cut -d: -f2 | xargs), model $(grep -m1 '^model\s' /proc/cpuinfo | cut -d: -f2 | xargs)), $(nproc) cores"
echo
echo "\$ runner report --over seed"
"$build/runner" report --db "$work/runs.sqlite" --over seed
echo
echo "\$ runner report --compare schedule.plugin=linear,quadratic"
"$build/runner" report --db "$work/runs.sqlite" --compare schedule.plugin=linear,quadratic
