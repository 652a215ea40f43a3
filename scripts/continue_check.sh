#!/usr/bin/env bash
# Training continued, not restarted: experiments/schedule_sweep.yaml (linear schedule only, one
# thread) trained for 100 epochs, then the same file with 200, which continues the recorded run
# from epoch 100; against a straight 200-epoch run in another store. Prints the second command's
# log, the continued run's checkpoints, and both final reports, which must be equal to the digit
# (the script fails otherwise).
#   scripts/continue_check.sh [BUILD_DIR]        (default: build)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$root/build}" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/difflab-continue.XXXXXX")
trap 'rm -rf "$work"' EXIT
sweep() {  # STORE EPOCHS [runner options]
  local store=$1 epochs=$2
  shift 2
  "$build/runner" sweep "$root/experiments/schedule_sweep.yaml" --db "$work/$store.sqlite" --out "$work/$store" \
    --set 'sweep.schedule.plugin=[linear]' --set "train.epochs=$epochs" --threads 1 "$@"
}
sweep continued 100 -q
echo "\$ runner sweep ... --set train.epochs=200   (the store holds the 100-epoch run)"
sweep continued 200 2>&1 | grep -E "continuing|resuming|epoch 150/|epoch 200/|runs done"
echo
echo "checkpoints of the continued run:"
"$build/runner" report --db "$work/continued.sqlite" --checkpoint all
sweep straight 200 -q
"$build/runner" report --db "$work/continued.sqlite" --format csv > "$work/continued.csv"
"$build/runner" report --db "$work/straight.sqlite" --format csv > "$work/straight.csv"
echo
echo "final values, continued 100 -> 200 and straight 200:"
cat "$work/continued.csv" "$work/straight.csv"
if diff -q "$work/continued.csv" "$work/straight.csv" > /dev/null; then
  echo "equal: the continued run ends where the straight one does"
else
  echo "DIFFERENT: the continued run does not end where the straight one does" >&2
  exit 1
fi
