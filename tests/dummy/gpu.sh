#!/usr/bin/env bash
# --dummy-weights on a GPU, and running out of GPU memory (label gpu):
#  - the fill kernels generate on the device exactly the bytes the host
#    generator does (QRT_DUMMY_DUMP of both, and dummy_ref.py's reference),
#    for f16, 4-bit and 3-bit weights; GPU logits agree with the CPU's (3 bits:
#    after the runtime repacks the weights into the device layout; packed
#    weights both through the fused GEMM and, --fused-gemm-max 0, the GEMV);
#    --bench runs;
#  - out of GPU memory, the executable says in one line what it needed and
#    what was free, and falls back to the CPU (gpu_hog takes the device's
#    memory but 1.5 GB; TinyLlama-1.1B f16 needs 2.2 GB) or, when the host
#    cannot hold the weights either (Llama-2-70B f32, 276 GB), exits 1 with
#    one more error line (docs/errors.md).
# Executables: compiled here when qcc is built (QCC), else from BINS (see
# tests/gpu/lib.sh; tests/gpu/pack.sh builds and packs them where qcc is).
. "$(dirname "$0")/../gpu/lib.sh"
HERE=$(cd "$(dirname "$0")" && pwd)
CFG=$HERE/tiny.json REF=$HERE/dummy_ref.py CONFIGS=$HERE/../../bench/configs
: "${HOG:?gpu_hog (built with the tests)}"
IDS=1,5,300,7,511,2,64,3
bin dq4 --dummy-weights "$CFG" --bits 4 --group-size 32
bin dq3 --dummy-weights "$CFG" --bits 3 --group-size 32
bin dq16 --dummy-weights "$CFG" --bits 16
bin tinyllama-1.1b-16 --dummy-weights "$CONFIGS/tinyllama-1.1b.json" --bits 16
bin llama-2-70b-32 --dummy-weights "$CONFIGS/llama-2-70b.json" --bits 32
need_gpu "$T/dq4.bin"

logits_close() { # GPU logits, CPU logits, tolerance (max difference over the largest)
  python3 - "$@" <<'PY'
import sys, numpy as np
g, c = (np.fromfile(p, np.float32) for p in sys.argv[1:3])
assert np.isfinite(g).all() and g.shape == c.shape
d = float(np.abs(g - c).max() / np.abs(c).max())
print("%s vs CPU logits: max difference %.2e of the largest (tolerance %s)" % (sys.argv[1], d, sys.argv[3]))
assert d < float(sys.argv[3]), d
PY
}
for m in "dq4 --bits 4 --group 32" "dq3 --bits 3 --group 32" "dq16 --bits 16"; do
  set -- $m
  name=$1; shift
  for dev in cuda cpu; do
    QRT_DUMMY_DUMP="$T/$name.$dev.blob" "$T/$name.bin" --device "$dev" --dump-logits "$T/$name.$dev.f32" --ids "$IDS" \
      -c 64 2> "$T/$name.$dev.err" || fail "$name --device $dev: $(cat "$T/$name.$dev.err")"
  done
  grep -q "generated on the GPU" "$T/$name.cuda.err" || fail "$name: not filled on the GPU: $(cat "$T/$name.cuda.err")"
  cmp "$T/$name.cuda.blob" "$T/$name.cpu.blob" || fail "$name: the GPU fill differs from the host fill"
  python3 "$REF" check "$CFG" "$T/$name.cuda.blob" "$@" || fail "$name: the GPU fill differs from dummy_ref.py"
  # packed weights: the 8 ids go through the fused GEMM, whose activations are f16 (5e-3, as test_cuda_kernels
  # holds it); with --fused-gemm-max 0 through the f32 GEMV (1e-4)
  tol=1e-4
  if [ "$name" != dq16 ]; then
    tol=5e-3
    "$T/$name.bin" --device cuda --fused-gemm-max 0 --dump-logits "$T/$name.gemv.f32" --ids "$IDS" -c 64 \
      2> "$T/$name.gemv.err" || fail "$name --fused-gemm-max 0: $(cat "$T/$name.gemv.err")"
    logits_close "$T/$name.gemv.f32" "$T/$name.cpu.f32" 1e-4 || fail "$name: GPU (GEMV) and CPU logits differ"
  fi
  logits_close "$T/$name.cuda.f32" "$T/$name.cpu.f32" "$tol" || fail "$name: GPU and CPU logits differ"
done
"$T/dq4.bin" --bench --prompt-len 32 --gen 32 > "$T/bench.txt" 2> "$T/bench.err" || fail "--bench: $(cat "$T/bench.err")"
grep -q 'decode 32' "$T/bench.txt" && ! grep -q '| cpu |' "$T/bench.txt" || fail "--bench on the GPU: $(cat "$T/bench.txt")"

# Out of GPU memory, the CPU holds the weights: one notice line, then the CPU.
rc=0
"$HOG" 1536 "$T/tinyllama-1.1b-16.bin" -p hello -n 4 --temp 0 > "$T/oom.out" 2> "$T/oom.err" || rc=$?
cat "$T/oom.err"
[ $rc -eq 0 ] || fail "TinyLlama f16 under gpu_hog exited $rc"
grep -q '^notice: out of GPU memory: the weights need 2\.[0-9][0-9] GB, .* has [0-9.]* GB free (of [0-9.]* GB); running on the CPU$' \
  "$T/oom.err" || fail "no out-of-memory notice"
grep -q '^notice: dummy weights .* generated on the CPU' "$T/oom.err" || fail "weights not generated on the CPU"
[ "$(grep -c '^notice: out of GPU memory' "$T/oom.err")" -eq 1 ] && [ "$(grep -vc '^gpu_hog: \|^notice: ' "$T/oom.err")" -eq 0 ] ||
  fail "stderr: $(cat "$T/oom.err")"
grep -q '^hello' "$T/oom.out" || fail "no text on the CPU: $(cat "$T/oom.out")"

# Neither the GPU nor the host holds Llama-2-70B in f32 (276 GB): exit 1.
need=$("$T/llama-2-70b-32.bin" --info | python3 -c 'import json,sys; print(json.load(sys.stdin)["weight_bytes"])')
avail=$(awk '/^MemAvailable:|^SwapFree:/ { s += $2 * 1024 } END { printf "%.0f", s }' /proc/meminfo)
if [ "$avail" -ge "$need" ]; then
  echo "skipped the exit case: this host has $avail bytes for $need bytes of weights"
else
  rc=0
  "$T/llama-2-70b-32.bin" -p hello -n 4 > "$T/oom70.out" 2> "$T/oom70.err" || rc=$?
  cat "$T/oom70.err"
  [ $rc -eq 1 ] && [ "$(wc -l < "$T/oom70.err")" -eq 2 ] || fail "Llama-2-70B f32: rc $rc"
  sed -n 1p "$T/oom70.err" | grep -q '^notice: out of GPU memory: the weights need 27[0-9]\.[0-9][0-9] GB, .* has [0-9.]* GB free (of [0-9.]* GB); running on the CPU$' ||
    fail "first line"
  sed -n 2p "$T/oom70.err" | grep -q '^error: dummy weights: the CPU needs 27[0-9]\.[0-9][0-9] GB of host memory for them, [0-9.]* GB is available; this machine cannot run this model$' ||
    fail "second line"
fi
echo ok
