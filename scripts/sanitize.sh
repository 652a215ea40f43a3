#!/usr/bin/env bash
# The whole test suite (CTest) under AddressSanitizer (with LeakSanitizer) and
# UndefinedBehaviorSanitizer, in the clang build build-san/. Exits non-zero when a test fails or
# when any process, including a `runner` a test started and expected to fail, printed a report.
# Usage: scripts/sanitize.sh [CTEST ARGS...]   e.g. scripts/sanitize.sh -R sweep
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${DIFFLAB_SAN_BUILD_DIR:-$root/build-san}
"$root/scripts/sanitized-build.sh"

# Every report also goes to a file, so one in a child process whose exit code a test expected to
# be non-zero is not lost; each file is <prefix>.<pid>.
logs=$build/sanitizer-logs
rm -rf "$logs" && mkdir -p "$logs"
supp=$root/scripts/sanitizers
export ASAN_OPTIONS="halt_on_error=1:detect_leaks=1:check_initialization_order=1:strict_init_order=1:detect_stack_use_after_return=1:log_path=$logs/asan"
export LSAN_OPTIONS="suppressions=$supp/lsan.supp:print_suppressions=0"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:report_error_type=1:suppressions=$supp/ubsan.supp:log_path=$logs/ubsan"
if command -v llvm-symbolizer > /dev/null; then export ASAN_SYMBOLIZER_PATH=$(command -v llvm-symbolizer); fi

status=0
start=$(date +%s)
ctest --test-dir "$build" --output-on-failure --timeout 1800 "$@" || status=$?
echo "ctest under ASan+UBSan: $(( $(date +%s) - start )) s, exit $status"
if compgen -G "$logs/*" > /dev/null; then
  echo "sanitizer reports (in $logs):"
  for f in "$logs"/*; do echo "== $f"; cat "$f"; done
  status=1
else
  echo "no sanitizer reports"
fi
exit $status
