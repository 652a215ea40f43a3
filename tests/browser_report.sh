#!/usr/bin/env bash
# The HTML report in a real browser: a small real sweep (the tiny schedule sweep, 4 epochs) is
# reported as HTML and opened in headless Chromium, offline. Passes when the page logged no
# error, every chart drew (its Vega view has line or point marks) and the table has one row per
# run; saves the page and a screenshot into the build folder. A build without the chart
# bundles (no npm, offline) must instead show the "charts unavailable" banner, table and pictures.
# Usage: tests/browser_report.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$(cd "$1" && pwd)
source=$(cd "$2" && pwd)
runner=$build/runner
fail() { echo "browser_report: $*" >&2; exit 1; }

chromium=$(command -v chromium || command -v chromium-browser || true)
[ -n "$chromium" ] || fail "chromium not found (scripts/install-deps.sh installs Debian's chromium)"
work=$(mktemp -d "${TMPDIR:-/tmp}/difflab-browser.XXXXXX")
trap 'rm -rf "$work"' EXIT

"$runner" sweep "$source/tests/fixtures/tiny_schedule_sweep.yaml" --db "$work/runs.sqlite" \
  --out "$work/runs" --set train.epochs=4 --threads 1 -q || fail "the sweep failed"
"$runner" report --db "$work/runs.sqlite" --format html --output "$work/report.html" \
  || fail "runner report --format html failed"
cp "$work/report.html" "$build/browser-report.html"

# Root needs --no-sandbox; a fresh profile, no network services, bounded in time. The virtual
# time budget lets the page's scripts finish before the DOM is dumped or the screenshot taken.
flags=(--headless --no-sandbox --disable-gpu --disable-dev-shm-usage --no-first-run
       --no-default-browser-check --disable-extensions --disable-background-networking
       --disable-sync --mute-audio --hide-scrollbars --user-data-dir="$work/profile"
       --virtual-time-budget=20000)
url="file://$work/report.html"
timeout 180 "$chromium" "${flags[@]}" --enable-logging=stderr --v=0 --dump-dom "$url" \
  > "$work/dom.html" 2> "$work/chromium.log" || { cat "$work/chromium.log" >&2; fail "chromium --dump-dom failed"; }
timeout 180 "$chromium" "${flags[@]}" --window-size=1400,2600 --screenshot="$build/browser-report.png" \
  "$url" >> "$work/chromium.log" 2>&1 || { cat "$work/chromium.log" >&2; fail "chromium --screenshot failed"; }
[ -s "$build/browser-report.png" ] || fail "no screenshot written"

# Console errors: the page records every error and console.error in data-errors; Chromium's log
# shows every console message (any level, as INFO:CONSOLE) and uncaught exceptions: a clean page
# logs nothing.
body=$(grep -o '<body[^>]*>' "$work/dom.html" || true)
[[ $body == *'data-ready="yes"'* ]] || fail "the page's script did not finish: $body"
if [[ $body != *'data-errors="0"'* ]]; then
  sed -n '/<pre id="errors"/,/<\/pre>/p' "$work/dom.html" >&2
  fail "the page recorded errors: $body"
fi
if grep -E ':CONSOLE|Uncaught' "$work/chromium.log" >&2; then
  fail "console messages in Chromium's log"
fi

runs=$(grep -c '<tr class="run ' "$work/dom.html" || true)
[ "$runs" -eq 4 ] || fail "the table has $runs rows, expected one per run (4)"
pictures=$(grep -o 'src="data:image/png;base64,' "$work/dom.html" | wc -l)
animations=$(grep -o 'src="data:image/gif;base64,' "$work/dom.html" | wc -l)
[ "$pictures" -eq 8 ] || fail "$pictures scatter pictures, expected 8 (4 runs x 2 samplers)"
[ "$animations" -eq 4 ] || fail "$animations animations, expected 4 (one per run)"

charts=$(grep -oE '<div class="chart[ "][^>]*>' "$work/dom.html" || true)
count=$(printf '%s\n' "$charts" | grep -c 'id="chart-' || true)
[ "$count" -eq 4 ] || fail "$count charts, expected 4 (loss, test_loss, mmd, wasserstein)"
if [ -f "$build/chart-bundles/vega-embed.min.js" ]; then
  while IFS= read -r chart; do
    [[ $chart == *'data-state="ok"'* ]] || fail "a chart did not draw: $chart"
    marks=$(sed -n 's/.*data-marks="\([0-9]*\)".*/\1/p' <<< "$chart")
    [ "${marks:-0}" -gt 0 ] || fail "a chart drew no marks: $chart"
  done <<< "$charts"
  echo "browser_report: 4 rows, 4 charts drawn, 8 scatters, 4 animations, no console errors"
else
  grep -q 'id="charts-unavailable"' "$work/dom.html" || fail "no chart bundles, and no banner saying so"
  while IFS= read -r chart; do
    [[ $chart == *'data-state="unavailable"'* ]] || fail "without bundles, a chart is not marked unavailable: $chart"
  done <<< "$charts"
  echo "browser_report: no chart bundles in this build: charts unavailable, table and pictures shown"
fi
echo "browser_report: screenshot $build/browser-report.png"
