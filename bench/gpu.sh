#!/usr/bin/env bash
# GPU GEMV benchmark (docs/performance.md). Builds gemv_bench without LLVM
# (only the runtime and codegen/cuda are needed) and runs it on GPU 0: for
# K x N in 4096x4096, 4096x11008, 11008x4096, 14336x4096, 4096x32000,
# 8192x28672 (inputs x outputs) and q4/q3/q2 g128, q2 g64, q8 g128, f16, the
# microseconds per GEMV at 1, 2, 4 and 8 rows (launched as runtime/cuda.c
# does), GB/s, % of the device-to-device copy bandwidth measured in the run,
# and the speedup over cuBLAS f16 (cublasGemmEx, same rows) measured in the
# run; every result is checked against the CPU.
#   bench/gpu.sh [gemv_bench options: --variants | --vlist i,j  --shapes i,j  --batches 1,2,4,8
#                 --warps W --loads L --fast 0|1|2 --xs F --quick --dump DIR]
# BUILD (default build-gpu) is the build directory; QC_CMAKE_ARGS extra cmake flags.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
B=${BUILD:-$root/build-gpu}
# shellcheck disable=SC2086
cmake -S "$root" -B "$B" -DQC_ENABLE_LLVM=OFF -DCMAKE_BUILD_TYPE=Release ${QC_CMAKE_ARGS:-} > "$B.cmake.log" 2>&1 ||
  { cat "$B.cmake.log"; exit 1; }
cmake --build "$B" --target gemv_bench -j "$(nproc)" > "$B.build.log" 2>&1 || { tail -30 "$B.build.log"; exit 1; }
"$B/bench/gemv_bench" "$@"
