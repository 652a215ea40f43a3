#!/usr/bin/env bash
# Installs what difflab builds and runs with, from Debian 12's packages; idempotent.
# Usage: scripts/install-deps.sh [--sanitizers | --bench]
set -euo pipefail
packages=(
  build-essential cmake ninja-build ccache pkg-config
  libtorch-dev libyaml-cpp-dev libboost-program-options-dev libboost-dev libboost-filesystem-dev
  libsqlite3-dev sqlite3 libspdlog-dev nlohmann-json3-dev catch2 libpng-dev libgif-dev zlib1g-dev
  libopenblas0-openmp libdnnl-dev dataset-fashion-mnist
  munge slurmctld slurmd slurm-client  # the local Slurm cluster of the slurm_sweep test
  chromium fonts-dejavu-core  # the HTML report's browser test (headless), with a font for its text
)
# npm fetches the HTML report's chart bundles when building; a nodesource nodejs brings its own
# npm and conflicts with Debian's package, so that is only installed when npm is missing.
if ! command -v npm > /dev/null 2>&1; then packages+=(npm); fi
# --sanitizers (scripts/sanitize.sh, scripts/fuzz.sh): clang, its ASan/UBSan/libFuzzer runtimes,
# and llvm-symbolizer for readable reports.
if [ "${1:-}" = "--sanitizers" ]; then packages+=(clang libclang-rt-14-dev llvm-14); fi
# --bench (bench/run.sh): the PyTorch baseline, Debian's Python torch over the same LibTorch;
# scipy gives its exact W1 (linear_sum_assignment), as a PyTorch user would compute it.
if [ "${1:-}" = "--bench" ]; then packages+=(python3-torch python3-numpy python3-yaml python3-scipy); fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
# torch calls whatever libblas.so.3 the system selects: make it OpenBLAS's OpenMP build. The
# reference BLAS is ~17x slower, and OpenBLAS's pthreads build fights torch's OpenMP threads.
alt=libblas.so.3-$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || echo x86_64-linux-gnu)
openmp=$(update-alternatives --list "$alt" 2>/dev/null | grep openblas-openmp | head -n 1 || true)
if [ -n "$openmp" ] && [ "$(readlink -f /etc/alternatives/$alt)" != "$(readlink -f "$openmp")" ]; then
  $sudo update-alternatives --set "$alt" "$openmp"
fi
