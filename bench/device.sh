#!/usr/bin/env bash
# Everything the GPU machine has to run, in one call (it has no LLVM and no
# network, and a call costs minutes of start-up): prepare here, carry, run
# there.
#
#   bench/device.sh prepare       here (qcc built in build/): copies ../shared/data's stories260K and
#                                 text and the xxHash header into carry/, packs the GPU tests'
#                                 executables (tests/gpu/pack.sh), the end-to-end ones
#                                 (bench/e2e.sh build carry/e2e) and two built with --cuda-trace
#                                 (Llama-2-7B and TinyLlama-1.1B shapes, 4-bit: carry/trace.tar.xz)
#   bench/device.sh run [STEPS]   there: builds without LLVM (build-dev), then runs STEPS
#                                 (default "tests e2e gemv"): ctest -L gpu, bench/e2e.sh run,
#                                 bench/gpu.sh; "profile": bench/step.sh on the Llama-2-7B 4-bit
#                                 executable, by default and with --no-fuse-rope; "trace": the time line
#                                 of a decode step (qcc --cuda-trace, docs/cuda.md) of the traced
#                                 executables at positions ~190 and ~830, and with --no-cluster;
#                                 "floor": bench/launch_floor.cu (what a kernel boundary costs);
#                                 output in $OUT when set
#
# The device tool's carry list: ["carry/bins.tar.xz", "carry/data", "carry/deps", "carry/e2e", "carry/trace.tar.xz"].
# Env for prepare: MODELS, BITS, QCC_ARGS (bench/e2e.sh); for run: TORCH=0 (no PyTorch rows), GEMV_ARGS
# (bench/gpu.sh options, e.g. "--quick").
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
case "${1:-}" in
  prepare)
    [ -x build/qcc ] || { echo "device.sh prepare: build qcc first (make build)" >&2; exit 1; }
    data=$(cd ../shared/data && pwd)
    mkdir -p carry/data carry/deps
    cp -r "$data/stories260K" "$data/text" carry/data/
    hdr=$(find /usr/include -maxdepth 1 -name xxhash.h | head -1)
    [ -n "$hdr" ] || { echo "device.sh prepare: no /usr/include/xxhash.h (apt-get install libxxhash-dev)" >&2; exit 1; }
    cp "$hdr" carry/deps/
    tests/gpu/pack.sh carry
    rm -rf carry/bins
    QCC=$root/build/qcc bench/e2e.sh build carry/e2e
    tr=$(mktemp -d)
    for m in llama-2-7b tinyllama-1.1b; do
      build/qcc --dummy-weights "bench/configs/$m.json" --bits 4 --cuda-arch sm_90 --cuda-trace --quiet -o "$tr/$m-4.bin"
    done
    (cd "$tr" && tar -cf - ./*.bin | xz -T1 -6 > "$root/carry/trace.tar.xz.tmp") && mv carry/trace.tar.xz.tmp carry/trace.tar.xz
    rm -rf "$tr"
    du -sh carry/bins.tar.xz carry/data carry/deps carry/e2e carry/trace.tar.xz
    ;;
  run)
    out=${OUT:-$root/out}
    mkdir -p "$out" carry/bins
    tar -xJf carry/bins.tar.xz -C carry/bins
    B=$root/build-dev
    cmake -S . -B "$B" -DQC_ENABLE_LLVM=OFF -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90 \
      -DXXHASH_INCLUDE="$root/carry/deps" -DQC_GPU_BINS="$root/carry/bins" -DQC_DATA="$root/carry/data" \
      > "$out/cmake.log" 2>&1 || { tail -20 "$out/cmake.log"; exit 1; }
    cmake --build "$B" -j "$(nproc)" > "$out/build.log" 2>&1 || { tail -30 "$out/build.log"; exit 1; }
    nvidia-smi --query-gpu=name,clocks.max.sm,clocks.max.mem --format=csv,noheader || true
    for s in ${2:-tests e2e gemv}; do
      case "$s" in
        tests)
          if (cd "$B" && ctest -L gpu --output-on-failure > "$out/ctest.log" 2>&1); then echo "ctest -L gpu: passed"
          else echo "ctest -L gpu: FAILED"; grep -E "FAIL|Failed|\*\*\*" "$out/ctest.log" | head -40; fi ;;
        e2e) OUT=$out bench/e2e.sh run carry/e2e ;;
        gemv)
          # shellcheck disable=SC2086
          BUILD=$B bench/gpu.sh ${GEMV_ARGS:-} | tee "$out/gemv.txt" ;;
        profile)
          for a in "" --no-fuse-rope; do
            echo "bench/step.sh llama-2-7b-4.bin 2 4 ${a:-(default)}"
            ARGS=$a bench/step.sh carry/e2e/llama-2-7b-4.bin 2 4 | tee -a "$out/step.txt"
          done ;;
        trace)
          mkdir -p carry/trace && tar -xJf carry/trace.tar.xz -C carry/trace
          for m in llama-2-7b tinyllama-1.1b; do
            for a in "--prompt-len 128" "--prompt-len 128 --no-cluster" "--prompt-len 768"; do
              echo "== $m 4-bit, --bench $a --gen 128 -c 1024"
              # shellcheck disable=SC2086
              "carry/trace/$m-4.bin" --bench $a --gen 128 -c 1024 2> /dev/null | tee -a "$out/trace.txt"
            done
          done ;;
        floor)
          nvcc -O3 -arch=sm_90 -o "$B/launch_floor" bench/launch_floor.cu && "$B/launch_floor" | tee "$out/floor.txt" ;;
        *) echo "device.sh: unknown step $s" >&2; exit 2 ;;
      esac
    done
    ;;
  *) echo "usage: bench/device.sh prepare | run [STEPS]" >&2; exit 2 ;;
esac
