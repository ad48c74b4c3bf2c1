#!/usr/bin/env bash
# End-to-end batch-1 prefill and decode tokens/s of dummy-weight executables
# (qcc --dummy-weights, docs/dummy-weights.md) of Llama-2-7B and
# TinyLlama-1.1B shapes at 16/8/4/3 bits, each beside its bandwidth bound
# (weight bytes one decode step reads / device-to-device copy bandwidth
# measured in the same run), and PyTorch eager f16 on the same shapes
# (bench/torch_eager.py). Prints one markdown table (docs/performance.md,
# "End to end").
#
#   bench/e2e.sh build [DIR]   compile the executables here (needs qcc: LLVM + NVRTC) into DIR
#                              (default carry/e2e), packed into DIR/bins.tar.xz to travel
#   bench/e2e.sh run [DIR]     on the GPU machine: unpack DIR/bins.tar.xz if needed, measure, print;
#                              with $OUT set, also writes $OUT/e2e.md
#   bench/e2e.sh               both
# Env: QCC (default build/qcc), ARCH (--cuda-arch, default sm_90: H100/H200),
# PROMPT (128), GEN (128), CTX (-c, 1024), MODELS, BITS (to run a subset), TORCH=0 (no PyTorch rows),
# ARGS (more options for every qcc executable, e.g. "--cache-type f16"), QCC_ARGS (more qcc options for
# build, e.g. "--no-fuse-norm"), ALT (the options of the last column's second decode run; default
# --no-lookahead).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
mode=${1:-all}
dir=${2:-$root/carry/e2e}
MODELS=${MODELS:-"llama-2-7b tinyllama-1.1b"}
BITS=${BITS:-"16 8 4 3"}
PROMPT=${PROMPT:-128} GEN=${GEN:-128} CTX=${CTX:-1024} ALT=${ALT:---no-lookahead}

build() {
  local qcc=${QCC:-$root/build/qcc}
  [ -x "$qcc" ] || { echo "e2e.sh build: no qcc at $qcc (set QCC)" >&2; exit 1; }
  mkdir -p "$dir"
  local names=()
  for m in $MODELS; do
    for b in $BITS; do
      # asymmetric, group 128: qcc's default quantized format
      # shellcheck disable=SC2086
      "$qcc" --dummy-weights "$root/bench/configs/$m.json" --bits "$b" --cuda-arch "${ARCH:-sm_90}" --quiet \
        ${QCC_ARGS:-} -o "$dir/$m-$b.bin"
      names+=("$m-$b.bin")
    done
  done
  # one solid xz stream: the executables share ~26 MB of runtime and OpenBLAS (EXTRA_BINS: a list of names)
  # shellcheck disable=SC2086
  (cd "$dir" && tar -cf - "${names[@]}" ${EXTRA_BINS:-} | xz -T1 -6e --lzma2=dict=64MiB > bins.tar.xz.tmp &&
    mv bins.tar.xz.tmp bins.tar.xz && rm -f "${names[@]}")
  ls -l "$dir/bins.tar.xz"
}

run() {
  if [ -e "$dir/bins.tar.xz" ]; then # python's lzma where there is no xz
    (cd "$dir" && if command -v xz > /dev/null; then xz -dc bins.tar.xz | tar -xf -; else
      python3 -c 'import tarfile; tarfile.open("bins.tar.xz").extractall(".")'; fi)
  fi
  local py=python3
  local bw
  bw=$($py - <<'PY'
import torch
n = 1 << 30
a = torch.empty(n, dtype=torch.uint8, device="cuda"); b = torch.empty_like(a)
for _ in range(3): b.copy_(a)
s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
s.record()
for _ in range(20): b.copy_(a)
e.record(); e.synchronize()
print("%.1f" % (2 * n * 20 / (s.elapsed_time(e) / 1e3) / 1e9))
PY
)
  local devname
  devname=$($py -c 'import torch; print(torch.cuda.get_device_name(0))')
  local tab
  tab=$(mktemp)
  {
    echo "$devname, $(date -u +%Y-%m-%d), copy bandwidth $bw GB/s (device-to-device, read + write);"
    echo "batch 1, --bench --prompt-len $PROMPT --gen $GEN -c $CTX ${ARGS:-} (median of 5); bound = copy bandwidth / bytes per token."
    echo
    echo "| model | weights | GB / token | prefill $PROMPT tok/s | decode tok/s | bound tok/s | decode / bound | decode --no-pdl | decode $ALT |"
    echo "|---|---|---|---|---|---|---|---|---|"
  } > "$tab"
  for m in $MODELS; do
    for b in $BITS; do
      local exe="$dir/$m-$b.bin"
      [ -x "$exe" ] || { echo "e2e.sh: no $exe (run 'bench/e2e.sh build' where qcc is)" >&2; exit 1; }
      local bpt
      bpt=$("$exe" --info | $py -c 'import json,sys; print(json.load(sys.stdin)["weight_bytes_per_token"])')
      # shellcheck disable=SC2086
      "$exe" --bench --prompt-len "$PROMPT" --gen "$GEN" -c "$CTX" ${ARGS:-} > "$dir/$m-$b.out" 2> "$dir/$m-$b.err" ||
        { cat "$dir/$m-$b.err" >&2; exit 1; }
      grep -q '| cpu |' "$dir/$m-$b.out" && { echo "e2e.sh: $m-$b ran on the CPU: $(cat "$dir/$m-$b.err")" >&2; exit 1; }
      local pp tg tn tf
      pp=$(awk -F'|' '/prefill/ { gsub(/ /, "", $4); print $4 }' "$dir/$m-$b.out")
      tg=$(awk -F'|' '/decode/ { gsub(/ /, "", $4); print $4 }' "$dir/$m-$b.out")
      # the same without programmatic dependent launch (each kernel waits for the previous one to end)
      # shellcheck disable=SC2086
      "$exe" --bench --prompt-len "$PROMPT" --gen "$GEN" -c "$CTX" ${ARGS:-} --no-pdl > "$dir/$m-$b.nopdl" 2>&1 ||
        { cat "$dir/$m-$b.nopdl" >&2; exit 1; }
      tn=$(awk -F'|' '/decode/ { gsub(/ /, "", $4); print $4 }' "$dir/$m-$b.nopdl")
      # the same with the options ALT (default --no-lookahead: the host's turn between greedy decode steps
      # instead of the next step queued behind the sampling, docs/cuda.md; "-": an executable older than
      # the option)
      tf=-
      # shellcheck disable=SC2086
      if "$exe" --bench --prompt-len "$PROMPT" --gen "$GEN" -c "$CTX" ${ARGS:-} $ALT > "$dir/$m-$b.fuse" 2>&1; then
        tf=$(awk -F'|' '/decode/ { gsub(/ /, "", $4); printf "%.1f", $4 }' "$dir/$m-$b.fuse")
      fi
      local w=$b-bit
      [ "$b" = 16 ] && w=f16
      [ "$b" != 16 ] && w="$b-bit g128"
      awk -v m="$m" -v w="qcc $w" -v bpt="$bpt" -v pp="$pp" -v tg="$tg" -v tn="$tn" -v tf="$tf" -v bw="$bw" 'BEGIN {
        bound = bw * 1e9 / bpt
        printf "| %s | %s | %.2f | %.0f | %.1f | %.1f | %.0f%% | %.1f | %s |\n", m, w, bpt / 1e9, pp, tg, bound, 100 * tg / bound, tn, tf }' >> "$tab"
      echo "$m-$b: $(grep -o 'generated on the [A-Z]* in [0-9.]* s' "$dir/$m-$b.err")" >&2
    done
    [ "${TORCH:-1}" = 0 ] && continue
    local j
    j=$($py "$root/bench/torch_eager.py" "$root/bench/configs/$m.json" --prompt-len "$PROMPT" --gen "$GEN")
    echo "$j" | $py -c '
import json, sys
d = json.loads(sys.stdin.read()); bw = float(sys.argv[2])
bound = bw * 1e9 / d["weight_bytes_per_token"]
print("| %s | PyTorch %s eager f16 | %.2f | %.0f | %.1f | %.1f | %.0f%% | | |" % (sys.argv[1], d["torch"], d["weight_bytes_per_token"] / 1e9,
      d["prefill_tok_s"], d["decode_tok_s"], bound, 100 * d["decode_tok_s"] / bound))' "$m" "$bw" >> "$tab"
  done
  cat "$tab"
  if [ -n "${OUT:-}" ]; then cp "$tab" "$OUT/e2e.md"; fi
  rm -f "$tab"
}

case "$mode" in
  build) build ;;
  run) run ;;
  all) build && run ;;
  *) echo "usage: bench/e2e.sh [build|run|all] [DIR]" >&2; exit 2 ;;
esac
