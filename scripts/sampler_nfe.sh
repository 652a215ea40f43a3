#!/usr/bin/env bash
# The sampler study of the README: runs experiments/sampler_nfe.yaml (every sampler at NFE 5 to
# 50 and DDPM at 1000 on one trained 2D GMM model, common noise), prints its Wasserstein
# distance by sampler and NFE as a markdown table, and draws the HTML report's
# metric-against-NFE chart into docs/sampler_nfe.png with headless Chromium.
#   scripts/sampler_nfe.sh [BUILD_DIR]        (default: build; needs chromium for the picture)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$root/build}" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/difflab-nfe.XXXXXX")
trap 'rm -rf "$work"' EXIT

start=$(date +%s)
"$build/runner" sweep "$root/experiments/sampler_nfe.yaml" --db "$work/runs.sqlite" --out "$work/runs" -q
echo "sweep: $(( $(date +%s) - start )) s on $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)" \
     "(family $(grep -m1 'cpu family' /proc/cpuinfo | cut -d: -f2 | xargs), model $(grep -m1 '^model\s' /proc/cpuinfo | cut -d: -f2 | xargs)), $(nproc) cores"
"$build/runner" report --db "$work/runs.sqlite" --sweep sampler_nfe --by-nfe wasserstein --format markdown

"$build/runner" report --db "$work/runs.sqlite" --sweep sampler_nfe --by-nfe wasserstein --format html \
  --output "$work/report.html"
# The first NFE chart alone: the page's other parts hidden.
sed 's|</head>|<style>h1, h2, h3, p, .table-wrap, table, label, input, img, figure, details, header, nav, footer, .chart:not(#nfe-chart-0) {display: none !important}</style></head>|' \
  "$work/report.html" > "$work/chart.html"
chromium=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$chromium" ]; then echo "no chromium: the chart is not drawn" >&2; exit 0; fi
timeout 180 "$chromium" --headless --no-sandbox --disable-gpu --disable-dev-shm-usage --no-first-run \
  --hide-scrollbars --user-data-dir="$work/profile" --virtual-time-budget=20000 --window-size=900,530 \
  --screenshot="$root/docs/sampler_nfe.png" "file://$work/chart.html" 2> /dev/null
echo "chart: docs/sampler_nfe.png"
