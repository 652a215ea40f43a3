#!/usr/bin/env bash
# difflab against PyTorch on the same workloads, device and threads, in one invocation:
#   1. training steps/s of the 2D GMM study's model (MLP 3x256, time embedding 128, batch 1280, Adam)
#   2. DDPM sampling of 10k points over 1000 steps with the sweep file's model
#   3. experiments/schedule_sweep.yaml, whole wall time: `runner sweep` (and `runner sweep
#      --batch-grid`) against bench/python/schedule_sweep.py (the same four schedules,
#      checkpoints, samplers and metrics)
#   4. the runner's overhead: the engine's run of a training-only grid point against the bare loop
#   (1 and 2 also with difflab's defaults turned off one at a time: torch's BLAS for the linear
#   layers, DIFFLAB_CPU_GEMM=torch; glibc's untuned malloc, DIFFLAB_MALLOC=system)
# Prints each figure and the ratio difflab/python, and writes bench/results/<device>-<date>.{json,md}.
# Usage: bench/run.sh [--threads N] [--batch-grid] [--quick] [--device cpu|cuda]
#   (build first: scripts/build.sh)
#   --batch-grid also times `runner sweep --batch-grid` (about a minute more)
#   --device cpu (the default) is what the bench measures; --device cuda is refused (exit 2) before
#     any work: on a machine where PyTorch sees no CUDA device, and, until the PyTorch side runs on
#     CUDA, on one where it does
# Environment: BENCH_TRAIN_STEPS (60), BENCH_REPEATS (3), BENCH_SAMPLE_REPEATS (1),
#   BENCH_OVERHEAD_EPOCHS (100: two of the sweep file's checkpoints),
#   BENCH_SWEEP_SET (the --set overrides that shorten the sweep, applied to both sides),
#   DIFFLAB_BUILD_DIR (build), PYTHON (/usr/bin/python3: Debian's python3-torch).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${DIFFLAB_BUILD_DIR:-$root/build}
python=${PYTHON:-/usr/bin/python3}
threads=2
quick=0
batch_grid=0
device=cpu
usage="usage: bench/run.sh [--threads N] [--batch-grid] [--quick] [--device cpu|cuda]"
while [ $# -gt 0 ]; do
  case "$1" in
    --threads) threads=$2; shift 2 ;;
    --quick) quick=1; shift ;;
    --batch-grid) batch_grid=1; shift ;;
    --device)
      case "${2:-}" in
        cpu|cuda) device=$2; shift 2 ;;
        *) echo "bench/run.sh: --device: expected cpu or cuda, got '${2:-}'" >&2; exit 2 ;;
      esac ;;
    *) echo "$usage" >&2; exit 2 ;;
  esac
done
if [ "$device" = cuda ]; then  # refused before any work, in one line
  cuda=$("$python" -c 'import torch; print(torch.cuda.is_available())' 2>/dev/null) || {
    echo "bench/run.sh: $python cannot import torch; run scripts/install-deps.sh --bench" >&2; exit 2; }
  if [ "$cuda" != True ]; then
    echo "bench/run.sh: --device cuda: this machine has no CUDA device (torch.cuda.is_available() is false)" >&2
    exit 2
  fi
  echo "bench/run.sh: --device cuda: not supported yet (bench/python runs PyTorch on the CPU only); run without --device" >&2
  exit 2
fi
train_steps=${BENCH_TRAIN_STEPS:-40}
repeats=${BENCH_REPEATS:-3}
# Sampling uses the sweep file's model (3x128 here): 10k x 1000 steps of the 3x256 MLP take
# 3 min per side on 2 cores, more than the bench's 10 minutes allow (BENCH_SAMPLE_HIDDEN=256
# for it). One timed run after a 20-step warm-up (BENCH_SAMPLE_REPEATS=3 for a median).
sample_repeats=${BENCH_SAMPLE_REPEATS:-1}
sample_hidden=${BENCH_SAMPLE_HIDDEN:-}
samples=10000
# The full sweep takes ~8 min per side here; 10 epochs (100 steps) per schedule and one
# checkpoint keep the bench under 10 minutes. The same overrides go to both sides.
sweep_set=${BENCH_SWEEP_SET:-"train.epochs=10 train.checkpoint_every=10"}
overhead_epochs=${BENCH_OVERHEAD_EPOCHS:-100}
if [ "$quick" = 1 ]; then
  train_steps=20; repeats=1; sample_repeats=1; samples=1000; overhead_epochs=50
  sweep_set="train.epochs=2 train.checkpoint_every=2 evaluation.num_samples=200"
fi
for f in "$build/runner" "$build/bench/difflab_bench"; do
  [ -x "$f" ] || { echo "bench/run.sh: $f is missing; build first (scripts/build.sh)" >&2; exit 2; }
done
"$python" -c "import torch" 2>/dev/null || {
  echo "bench/run.sh: $python cannot import torch; run scripts/install-deps.sh --bench" >&2; exit 2; }

# Identical threading on both sides: torch's threads are set explicitly by each program, and the
# OpenMP/BLAS environment is the same for both.
export OMP_NUM_THREADS=$threads OPENBLAS_NUM_THREADS=$threads MKL_NUM_THREADS=$threads
export PYTHONPATH=$root/bench/python${PYTHONPATH:+:$PYTHONPATH}
work=$(mktemp -d /tmp/difflab-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
sweep_file=$root/experiments/schedule_sweep.yaml
model_set=(--set model.hidden=256)  # the study's model: 3x256, time embedding 128
lr=$(grep -o 'lr: *[0-9.e+-]*' "$sweep_file" | head -n 1 | sed 's/lr: *//')
set_args=()
for s in $sweep_set; do set_args+=(--set "$s"); done

now() { date +%s.%N; }
bench_start=$(now)
log() { echo "[$(date +%H:%M:%S)] $*" >&2; }

log "training steps/s (MLP 3x256, batch 1280, $train_steps steps x $repeats)"
"$build/bench/difflab_bench" train "$sweep_file" --threads "$threads" "${model_set[@]}" \
  --steps "$train_steps" --repeats "$repeats" > "$work/train-difflab.json"
"$python" "$root/bench/python/train_sample.py" train --threads "$threads" --hidden 256 --lr "$lr" \
  --steps "$train_steps" --repeats "$repeats" > "$work/train-python.json"
# The same difflab step with torch's own BLAS for the linear layers: what oneDNN contributes.
DIFFLAB_CPU_GEMM=torch "$build/bench/difflab_bench" train "$sweep_file" --threads "$threads" \
  "${model_set[@]}" --steps "$train_steps" --repeats "$repeats" > "$work/train-difflab-torchgemm.json"

sweep_hidden=$(grep -o 'hidden: *[0-9]*' "$sweep_file" | head -n 1 | sed 's/hidden: *//')
sample_hidden=${sample_hidden:-$sweep_hidden}
log "sampling $samples points x 1000 DDPM steps, MLP 3x$sample_hidden (x $sample_repeats)"
"$build/bench/difflab_bench" sample "$sweep_file" --threads "$threads" --set "model.hidden=$sample_hidden" \
  --set 'evaluation.samplers=[{plugin: ddpm}]' --samples "$samples" --repeats "$sample_repeats" \
  > "$work/sample-difflab.json"
"$python" "$root/bench/python/train_sample.py" sample --threads "$threads" --hidden "$sample_hidden" \
  --samples "$samples" --repeats "$sample_repeats" > "$work/sample-python.json"
# The same difflab sampling with glibc's default malloc: what the allocator's tuning contributes.
DIFFLAB_MALLOC=system "$build/bench/difflab_bench" sample "$sweep_file" --threads "$threads" \
  --set "model.hidden=$sample_hidden" --set 'evaluation.samplers=[{plugin: ddpm}]' --samples "$samples" \
  --repeats "$sample_repeats" > "$work/sample-difflab-system-malloc.json"

log "schedule_sweep.yaml with --set $sweep_set"
start=$(now)
"$build/runner" sweep "$sweep_file" --threads "$threads" --db "$work/runs.sqlite" --out "$work/runs" \
  "${set_args[@]}" -q
echo "$start $(now)" > "$work/sweep-difflab.time"
"$build/runner" report --db "$work/runs.sqlite" > "$work/sweep-difflab-report.txt"
if [ "$batch_grid" = 1 ]; then
  log "the same with --batch-grid (the four schedules trained as one batched model)"
  start=$(now)
  "$build/runner" sweep "$sweep_file" --threads "$threads" --db "$work/batched.sqlite" \
    --out "$work/batched-runs" "${set_args[@]}" --batch-grid -q
  echo "$start $(now)" > "$work/sweep-batched.time"
fi
start=$(now)
"$python" "$root/bench/python/schedule_sweep.py" "$sweep_file" --threads "$threads" \
  --out "$work/python-runs" "${set_args[@]}" > "$work/sweep-python-out.json"
echo "$start $(now)" > "$work/sweep-python.time"

# The runner's own overhead (set-up, checkpoint files, store writes, logging) on a training-only
# run of the sweep's model at its own checkpoint interval: difflab_bench overhead runs it through
# the engine as `runner sweep` does and the bare loop alternately in one process, 3 times.
overhead_set=(--set "train.epochs=$overhead_epochs" --set 'sweep.schedule.plugin=[linear]'
  --set 'evaluation.samplers=[]' --set 'evaluation.metrics=[]')
log "runner overhead: $((overhead_epochs * 10)) training steps, no evaluation, 3 rounds"
"$build/bench/difflab_bench" overhead "$sweep_file" --threads "$threads" "${overhead_set[@]}" \
  --repeats 3 > "$work/overhead.json"

mkdir -p "$root/bench/results"
echo "$bench_start $(now)" > "$work/bench.time"
"$python" "$root/bench/summarize.py" "$work" "$root/bench/results" --threads "$threads" \
  --sweep-set "$sweep_set" --quick "$quick" --build "$build"
