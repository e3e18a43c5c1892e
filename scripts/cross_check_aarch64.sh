#!/usr/bin/env bash
# Cross-check the own CPU kernels' portable path on aarch64 without an aarch64 machine:
# build scripts/aarch64/kernel_selftest.cpp and the kernel sources with Debian's cross
# compiler, run the binary under qemu-user. Needs (as root, once):
#   apt-get install -y g++-aarch64-linux-gnu qemu-user
# Usage: scripts/cross_check_aarch64.sh [build-dir]   (exit status: the self-test's)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out="${1:-${TMPDIR:-/tmp}/aibench-aarch64}"
cxx=aarch64-linux-gnu-g++
for tool in "$cxx" qemu-aarch64; do
  command -v "$tool" >/dev/null || { echo "$tool not found: apt-get install -y g++-aarch64-linux-gnu qemu-user" >&2; exit 2; }
done
mkdir -p "$out"
# The sources CMakeLists.txt builds off x86 (AIBENCH_X86=0), without the Python bindings.
sources=(common/cpu_features.cpp common/scratch.cpp gemm/gemm_dispatch.cpp gemm/gemm_driver.cpp
         gemm/gemm_scalar.cpp gemm/gemm_neon.cpp gemm/gemm_lowp.cpp attention/attention_driver.cpp attention/attention_scalar.cpp)
"$cxx" -std=c++17 -O3 -fno-math-errno -fopenmp -DAIBENCH_X86=0 -I"$root/csrc" \
  "${sources[@]/#/$root/csrc/}" "$root/scripts/aarch64/kernel_selftest.cpp" -o "$out/kernel_selftest"
file "$out/kernel_selftest" | sed 's/, BuildID.*//'
OMP_NUM_THREADS="${OMP_NUM_THREADS:-4}" qemu-aarch64 -L /usr/aarch64-linux-gnu "$out/kernel_selftest"
