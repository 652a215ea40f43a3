#!/usr/bin/env bash
# Installs difflab into a temporary prefix, builds examples/sampler against it with
# find_package(difflab), and runs a tiny sweep that evaluates with the example's sampler.
set -euo pipefail
build=$1
source=$2
work=$(mktemp -d /tmp/difflab-oot.XXXXXX)
trap 'rm -rf "$work"' EXIT

cmake --install "$build" --prefix "$work/prefix" > "$work/install.log"
# The plugin must come from difflab's compiler: the loader refuses another compiler family.
compiler=$(sed -n 's/^CMAKE_CXX_COMPILER:[A-Z]*=//p' "$build/CMakeCache.txt")
cmake -S "$source/examples/sampler" -B "$work/build" -G Ninja \
  ${compiler:+-DCMAKE_CXX_COMPILER="$compiler"} \
  -DCMAKE_PREFIX_PATH="$work/prefix" -DCMAKE_BUILD_TYPE=Release > "$work/configure.log"
cmake --build "$work/build" > "$work/build.log" || { cat "$work/build.log"; exit 1; }

runner="$work/prefix/bin/runner"
"$runner" plugins --plugin-dir "$work/build" --kind sampler > "$work/plugins.txt"
grep -q "^sampler  midpoint  0.1.0  libdifflab_midpoint.so" "$work/plugins.txt" || {
  echo "midpoint is not listed:"; cat "$work/plugins.txt"; exit 1; }
grep -q "^sampler  ddim " "$work/plugins.txt"  # the installed plugins load too

"$runner" sweep "$source/tests/fixtures/tiny_schedule_sweep.yaml" --plugin-dir "$work/build" \
  --set 'sweep.schedule.plugin=[linear]' --set train.epochs=2 --set train.checkpoint_every=2 \
  --set 'evaluation.samplers=[{plugin: midpoint, steps: 10}]' \
  --db "$work/runs.sqlite" --out "$work/runs" --threads 2 -q
"$runner" report --db "$work/runs.sqlite" --format csv > "$work/report.csv"
grep -q "wasserstein\[midpoint(steps=10)\]" "$work/report.csv" || { cat "$work/report.csv"; exit 1; }
echo "out-of-tree plugin built, listed and used in a sweep"
