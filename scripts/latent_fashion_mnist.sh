#!/usr/bin/env bash
# The image study of the README that runs on a CPU: runs experiments/latent_fashion_mnist.yaml (a
# VAE, then a DDPM on its 2x4x4 latents, decoded samples measured per checkpoint) from nothing (a
# fresh feature-network cache, so the time includes training it), prints the time and the CPU,
# the report at every checkpoint as a markdown table, and copies the last checkpoint's DDPM
# sample grid to docs/latent_fashion_mnist.png.
#   scripts/latent_fashion_mnist.sh [BUILD_DIR]        (default: build)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$root/build}" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/difflab-latent.XXXXXX")
trap 'rm -rf "$work"' EXIT

start=$(date +%s)
DIFFLAB_CACHE_DIR="$work/cache" "$build/runner" sweep "$root/experiments/latent_fashion_mnist.yaml" \
  --db "$work/runs.sqlite" --out "$work/runs" -q
seconds=$(( $(date +%s) - start ))
echo "sweep: $(( seconds / 60 )) min $(( seconds % 60 )) s on $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)" \
     "(family $(grep -m1 'cpu family' /proc/cpuinfo | cut -d: -f2 | xargs), model $(grep -m1 '^model\s' /proc/cpuinfo | cut -d: -f2 | xargs)), $(nproc) cores"
"$build/runner" report --db "$work/runs.sqlite" --sweep latent_fashion_mnist --checkpoint all --format markdown
grid=$(find "$work/runs/latent_fashion_mnist/evaluations" -path '*epoch-000100/samples-ddpm.png' | head -1)
cp "$grid" "$root/docs/latent_fashion_mnist.png"
echo "sample grid: docs/latent_fashion_mnist.png (DDPM, epoch 100, decoded)"
