#!/usr/bin/env bash
# Fuzzes sweep-file parsing and validation (fuzz/sweep_fuzz.cpp, libFuzzer + ASan + UBSan) for
# SECONDS (default 600) on both cores, starting from a copy of fuzz/corpus (the committed corpus
# stays as it is). Exits non-zero when libFuzzer reports a crash, hang (> 10 s), out-of-memory,
# leak or sanitizer finding; the inputs that caused it are in the run's artifacts/ folder.
# Usage: scripts/fuzz.sh [SECONDS]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
seconds=${1:-600}
build=${DIFFLAB_SAN_BUILD_DIR:-$root/build-san}
workers=${DIFFLAB_JOBS:-$(nproc)}
"$root/scripts/sanitized-build.sh" sweep_fuzz

work=$build/fuzz-runs/$(date +%Y%m%d-%H%M%S)
mkdir -p "$work/corpus" "$work/artifacts"
cp "$root"/fuzz/corpus/* "$work/corpus/"
supp=$root/scripts/sanitizers
export ASAN_OPTIONS="detect_leaks=1:check_initialization_order=1:detect_stack_use_after_return=1"
export LSAN_OPTIONS="suppressions=$supp/lsan.supp:print_suppressions=0"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:report_error_type=1:suppressions=$supp/ubsan.supp"
if command -v llvm-symbolizer > /dev/null; then export ASAN_SYMBOLIZER_PATH=$(command -v llvm-symbolizer); fi
export DIFFLAB_PLUGIN_PATH=  # the build's plugins only
export OMP_NUM_THREADS=1     # one core per worker

echo "fuzzing for $seconds s with $workers workers in $work (corpus: $(ls "$work/corpus" | wc -l) seeds)"
cd "$work"  # -jobs writes fuzz-<n>.log here
status=0
"$build/fuzz/sweep_fuzz" "$work/corpus" -dict="$root/fuzz/sweep.dict" \
  -max_total_time="$seconds" -timeout=10 -rss_limit_mb=3072 -max_len=8192 \
  -jobs="$workers" -workers="$workers" -print_final_stats=1 \
  -artifact_prefix="$work/artifacts/" > "$work/fuzz.log" 2>&1 || status=$?

for log in "$work"/fuzz-*.log; do
  echo "== $log"
  grep -E "^#[0-9]+[[:space:]]+(DONE|pulse|NEW|REDUCE)" "$log" | tail -n 1 || true
  grep -E "^stat::(number_of_executed_units|average_exec_per_sec|new_units_added|peak_rss_mb)" "$log" || true
done
echo "corpus: $(ls "$work/corpus" | wc -l) files ($(du -sh "$work/corpus" | cut -f1)) in $work/corpus"
findings=$(ls "$work/artifacts")
if [ -n "$findings" ] || grep -qE "ERROR: (libFuzzer|AddressSanitizer|LeakSanitizer)|runtime error:|SUMMARY: " "$work"/fuzz-*.log; then
  status=1
fi
if [ "$status" -ne 0 ]; then
  grep -hE -A30 "ERROR: |runtime error:|not an InputError" "$work"/fuzz-*.log | head -n 120 || true
  echo "FINDINGS (exit $status): inputs in $work/artifacts/: ${findings:-none written}"
  echo "replay one with: $build/fuzz/sweep_fuzz $work/artifacts/<file>"
  exit 1
fi
echo "no findings in $seconds s; crash, timeout and oom inputs would be in $work/artifacts/"
