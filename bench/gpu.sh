#!/usr/bin/env bash
# GPU GEMV benchmark (docs/performance.md). Builds gemv_bench without LLVM
# (only the runtime and codegen/cuda are needed) and runs it on GPU 0:
# microseconds per batch-1 GEMV at K x N = 14336 x 4096 and 4096 x 11008
# for 4/3/2/8-bit g128 and f16 (qcc's kernel and cuBLAS), achieved GB/s and
# the fraction of the device-to-device copy bandwidth measured in the run.
#   bench/gpu.sh [gemv_bench options: --variants --warps W --loads L --fast 0|1 --quick]
# BUILD (default build-gpu) is the build directory; QC_CMAKE_ARGS extra cmake flags.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
B=${BUILD:-$root/build-gpu}
# shellcheck disable=SC2086
cmake -S "$root" -B "$B" -DQC_ENABLE_LLVM=OFF -DCMAKE_BUILD_TYPE=Release ${QC_CMAKE_ARGS:-} > "$B.cmake.log" 2>&1 ||
  { cat "$B.cmake.log"; exit 1; }
cmake --build "$B" --target gemv_bench -j "$(nproc)" > "$B.build.log" 2>&1 || { tail -30 "$B.build.log"; exit 1; }
"$B/bench/gemv_bench" "$@"
