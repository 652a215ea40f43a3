#!/usr/bin/env bash
# The HTML report in a real browser: two small real sweeps (the tiny schedule sweep, 4 epochs;
# the tiny latent sweep: an autoencoder and a latent diffusion run) are reported as HTML and
# opened in headless Chromium, offline. Passes when the pages logged no error, every chart drew
# (its Vega view has line or point marks), the tables have one row per run, the latent report
# names each run's autoencoder and its distribution view's UMAP drew every point; saves the pages
# and screenshots into the build folder. A build without the chart bundles (no npm, offline)
# must instead show the "charts unavailable" banner, table and pictures (and without umap-js,
# "UMAP unavailable").
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
# The tiny latent sweep: an autoencoder run, and a latent diffusion run whose decoded image
# samples have distribution views (its own feature-network cache, as the test suite's).
DIFFLAB_CACHE_DIR="$work/cache" "$runner" sweep "$source/tests/fixtures/tiny_latent_sweep.yaml" \
  --db "$work/latent.sqlite" --out "$work/latent" --threads 1 -q || fail "the latent sweep failed"
"$runner" report --db "$work/latent.sqlite" --format html --output "$work/latent.html" \
  || fail "runner report --format html failed on the latent sweep"
cp "$work/latent.html" "$build/browser-report-latent.html"

# Root needs --no-sandbox; a fresh profile, no network services, bounded in time. The virtual
# time budget lets the page's scripts finish before the DOM is dumped or the screenshot taken.
flags=(--headless --no-sandbox --disable-gpu --disable-dev-shm-usage --no-first-run
       --no-default-browser-check --disable-extensions --disable-background-networking
       --disable-sync --mute-audio --hide-scrollbars --user-data-dir="$work/profile"
       --virtual-time-budget=20000)
# open_page NAME SCREENSHOT: opens $work/NAME.html, dumps its DOM into $work/NAME.dom.html and
# takes the screenshot. Console errors: the page records every error and console.error in
# data-errors; Chromium's log shows every console message (any level, as INFO:CONSOLE) and
# uncaught exceptions: a clean page logs nothing.
open_page() {
  local url="file://$work/$1.html" dom="$work/$1.dom.html" log="$work/$1.chromium.log"
  timeout 180 "$chromium" "${flags[@]}" --enable-logging=stderr --v=0 --dump-dom "$url" \
    > "$dom" 2> "$log" || { cat "$log" >&2; fail "chromium --dump-dom failed on $1.html"; }
  timeout 180 "$chromium" "${flags[@]}" --window-size=1400,2600 --screenshot="$2" \
    "$url" >> "$log" 2>&1 || { cat "$log" >&2; fail "chromium --screenshot failed on $1.html"; }
  [ -s "$2" ] || fail "no screenshot written of $1.html"
  local body
  body=$(grep -o '<body[^>]*>' "$dom" || true)
  [[ $body == *'data-ready="yes"'* ]] || fail "$1.html: the page's script did not finish: $body"
  if [[ $body != *'data-errors="0"'* ]]; then
    sed -n '/<pre id="errors"/,/<\/pre>/p' "$dom" >&2
    fail "$1.html: the page recorded errors: $body"
  fi
  if grep -E ':CONSOLE|Uncaught' "$log" >&2; then
    fail "$1.html: console messages in Chromium's log"
  fi
}
# check_charts DOM: with the chart bundles every chart (the UMAP aside: see below) drew line or
# point marks; without them each says so. Sets $charts to their number.
bundles=$build/chart-bundles
check_charts() {
  local found chart marks
  found=$(grep -oE '<div class="chart[ "][^>]*>' "$1" | grep -v 'id="umap-view"' || true)
  charts=0
  while IFS= read -r chart; do
    [ -n "$chart" ] || continue
    charts=$((charts + 1))
    if [ -f "$bundles/vega-embed.min.js" ]; then
      [[ $chart == *'data-state="ok"'* ]] || fail "a chart did not draw: $chart"
      marks=$(sed -n 's/.*data-marks="\([0-9]*\)".*/\1/p' <<< "$chart")
      [ "${marks:-0}" -gt 0 ] || fail "a chart drew no marks: $chart"
    else
      [[ $chart == *'data-state="unavailable"'* ]] || fail "without bundles, a chart is not marked unavailable: $chart"
    fi
  done <<< "$found"
}

open_page report "$build/browser-report.png"
dom=$work/report.dom.html
runs=$(grep -c '<tr class="run ' "$dom" || true)
[ "$runs" -eq 4 ] || fail "the table has $runs rows, expected one per run (4)"
pictures=$(grep -o 'src="data:image/png;base64,' "$dom" | wc -l)
animations=$(grep -o 'src="data:image/gif;base64,' "$dom" | wc -l)
[ "$pictures" -eq 8 ] || fail "$pictures scatter pictures, expected 8 (4 runs x 2 samplers)"
[ "$animations" -eq 4 ] || fail "$animations animations, expected 4 (one per run)"
count=$(grep -oE '<div class="chart[ "][^>]*>' "$dom" | grep -c 'id="chart-' || true)
[ "$count" -eq 4 ] || fail "$count charts, expected 4 (loss, test_loss, mmd, wasserstein)"
check_charts "$dom"
if [ -f "$bundles/vega-embed.min.js" ]; then
  echo "browser_report: 4 rows, 4 charts drawn, 8 scatters, 4 animations, no console errors"
else
  grep -q 'id="charts-unavailable"' "$dom" || fail "no chart bundles, and no banner saying so"
  echo "browser_report: no chart bundles in this build: charts unavailable, table and pictures shown"
fi

# The latent report: the table names each run's autoencoder, the autoencoder's pictures and the
# PCA pictures are there, and the distribution view's UMAP drew every point it embedded (the page
# marks the element data-state="ok", data-points="N", data-drawn="N": the scatter's symbols).
open_page latent "$build/browser-report-latent.png"
dom=$work/latent.dom.html
runs=$(grep -c '<tr class="run ' "$dom" || true)
[ "$runs" -eq 2 ] || fail "the latent report has $runs rows, expected 2 (the autoencoder, the latent run)"
grep -q '<td data-v="(autoencoder)">(autoencoder)</td>' "$dom" || fail "the autoencoder run is not marked so"
grep -q '<td data-v="run 0">run 0</td>' "$dom" || fail "the latent run does not name its autoencoder (run 0)"
for caption in 'rows of test images, each followed by their reconstructions' \
               'latent means of test images, coloured by class' \
               'samples (blue) over the test images (grey)'; do
  grep -q "<figcaption>[^<]*$caption" "$dom" || fail "the latent report has no picture of '$caption'"
done
check_charts "$dom"
umap=$(grep -oE '<div class="chart[ "][^>]*id="umap-view"[^>]*>' "$dom" || true)
[ -n "$umap" ] || fail "the latent report has no distribution view"
if [ -f "$bundles/vega-embed.min.js" ] && [ -f "$bundles/umap-js.min.js" ]; then
  [[ $umap == *'data-state="ok"'* ]] || fail "the UMAP was not drawn: $umap"
  points=$(sed -n 's/.*data-points="\([0-9]*\)".*/\1/p' <<< "$umap")
  drawn=$(sed -n 's/.*data-drawn="\([0-9]*\)".*/\1/p' <<< "$umap")
  if [ "${points:-0}" -eq 0 ] || [ "${drawn:-0}" -ne "$points" ]; then
    fail "the UMAP drew ${drawn:-no} of ${points:-no} points: $umap"
  fi
  echo "browser_report: latent sweep: 2 rows, $charts charts drawn, UMAP of $points points drawn, no console errors"
else
  grep -q 'id="umap-unavailable"' "$dom" || fail "no umap-js bundle, and no banner saying so"
  [[ $umap == *'data-state="unavailable"'* ]] || fail "without umap-js, the UMAP is not marked unavailable: $umap"
  echo "browser_report: latent sweep: no umap-js bundle in this build: UMAP unavailable"
fi
echo "browser_report: screenshots $build/browser-report.png, $build/browser-report-latent.png"
