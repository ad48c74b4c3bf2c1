#!/usr/bin/env bash
# Builds here (qcc needs LLVM) every executable the GPU tests use and packs
# them for a machine without LLVM: DIR/bins.tar.xz, which a build configured
# with -DQC_GPU_BINS=DIR/bins finds once unpacked there
# (`mkdir -p DIR/bins && tar -xJf DIR/bins.tar.xz -C DIR/bins`).
#   tests/gpu/pack.sh [DIR]     (default carry; QCC default build/qcc, DATA default ../shared/data)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
dir=$(mkdir -p "${1:-$root/carry}" && cd "${1:-$root/carry}" && pwd)
export QCC=${QCC:-$root/build/qcc} DATA=${DATA:-$(cd "$root/../shared/data" && pwd)}
SCRATCH=$(mktemp -d)
export SCRATCH PACK=$dir/bins HOG=unused
rm -rf "$PACK" && mkdir -p "$PACK"
for t in gpu/greedy gpu/ppl dummy/gpu; do bash "$root/tests/$t.sh" > /dev/null; done
(cd "$PACK" && tar -cf - ./*.bin | xz -T1 -6e --lzma2=dict=64MiB > "$dir/bins.tar.xz.tmp") && mv "$dir/bins.tar.xz.tmp" "$dir/bins.tar.xz"
rm -rf "$SCRATCH"
ls "$PACK" && ls -l "$dir/bins.tar.xz"
