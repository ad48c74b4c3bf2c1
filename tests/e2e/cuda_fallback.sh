#!/usr/bin/env bash
# A CUDA-enabled build (default --target cuda,cpu) runs where there is no
# GPU: the device code is embedded (--info lists its targets and kernels),
# the executable finds no driver or device and prints the exact reference
# greedy text from the CPU; --device cuda adds one notice line and nothing
# else. --target cpu leaves the device code out; --emit cuda-src / ptx
# write the device code; qcc --no-fuse-norm leaves out the qk_gemvmn_* kernels
# (the LM head's with the final norm too).
# Skipped when qcc has no CUDA (no NVRTC).
. "$(dirname "$0")/lib.sh"
"$QCC" "$DATA/stories260K" --bits 32 --emit cuda-src --quiet -o "$T/s.cu" || fail "--emit cuda-src"
grep -q '^QK_GEMV_SPEC(qk_gemv_f32_k64_n64_g0_a_b1, QK_F32, 1, 64, 64, 0, 0, 0)$' "$T/s.cu" || fail "no specialized GEMV in the source"
grep -q 'extern "C" __global__' "$T/s.cu" || fail "no kernels in the source"
compile s32 "$DATA/stories260K" --bits 32
"$T/s32.bin" --info > "$T/info.json"
if ! python3 -c 'import json,sys; sys.exit(0 if "cuda" in json.load(open(sys.argv[1]))["targets"] else 1)' "$T/info.json"; then
  echo "skipped: this qcc builds CPU-only executables (no CUDA toolkit / NVRTC)"; exit 77
fi
python3 - "$T/info.json" <<'PY' || fail "--info: $(cat "$T/info.json")"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["targets"] == ["cuda", "cpu"], d["targets"]
assert d["cuda_archs"] == ["sm_80", "sm_86", "sm_89", "sm_90", "compute_90"], d["cuda_archs"]
k = d["cuda_kernels"]
assert "qk_attn_f32" in k and "qk_gemv_f32_k172_n64_g0_a_b1" in k and len(k) == len(set(k)), k
PY
# W8A8 (SmoothQuant) builds carry GPU kernels too: int8 GEMVs, quantization and scaling around cuBLAS
compile sq8 "$DATA/stories260K" --method smoothquant --calib "$DATA/text/sotu" --calib-samples 4
"$T/sq8.bin" --info > "$T/sq8.json"
python3 - "$T/sq8.json" <<'PY' || fail "W8A8 --info: $(cat "$T/sq8.json")"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["targets"] == ["cuda", "cpu"] and d["dtype"] == "w8a8", (d["targets"], d["dtype"])
k = d["cuda_kernels"]
assert all(n in k for n in ("qk_gemv_i8_b1", "qk_gemv_i8_b4", "qk_i8_quant", "qk_i8_scale")), k
PY
# the merged GEMVs also come with the RMSNorm before them (docs/cuda.md), unless --no-fuse-norm
tiny=$(dirname "$0")/../dummy/tiny.json
"$QCC" --dummy-weights "$tiny" --bits 4 --emit cuda-src --quiet -o "$T/d4f.cu" || fail "d4 cuda-src"
"$QCC" --dummy-weights "$tiny" --bits 4 --no-fuse-norm --emit cuda-src --quiet -o "$T/d4.cu" || fail "d4 --no-fuse-norm"
grep -q '^QK_GEMV_MULTI(qk_gemvm_q4_k64_n64_n32_n32_g64_a_w8, ' "$T/d4.cu" || fail "no merged q/k/v GEMV"
if grep -q '^QK_GEMV_MULTIN(' "$T/d4.cu"; then fail "qk_gemvmn_* with --no-fuse-norm"; fi
grep -q '^QK_GEMV_MULTIN(qk_gemvmn_q4_k64_n64_n32_n32_g64_a_f32_w8, ' "$T/d4f.cu" ||
  fail "fused norms: $(grep '^QK_GEMV_MULTI' "$T/d4f.cu")"
# gate / up and the SILU_MUL of their outputs: one pair kernel (with the norm unless --no-fuse-norm), in
# place of the merged gate / up and the SiLU-prologue down GEMVs
grep -q '^QK_GEMV_PAIRN(qk_gemvpn_q4_k64_n192_g64_a_f32_w8, ' "$T/d4f.cu" || fail "no gate / up pair with the norm"
grep -q '^QK_GEMV_PAIR(qk_gemvp_q4_k64_n192_g64_a_w8, ' "$T/d4.cu" || fail "no gate / up pair"
if grep -q '^QK_GEMV_PAIRN(' "$T/d4.cu"; then fail "qk_gemvpn_* with --no-fuse-norm"; fi
if grep -q '_n192_n192_\|^QK_GEMV_SILU(' "$T/d4f.cu" "$T/d4.cu"; then fail "merged gate / up or SiLU GEMV next to the pair"; fi
# ... and the final one in the LM head's
grep -q '^QK_GEMV_MULTIN(qk_gemvmn_f16_k64_n512_n0_n0_g0_a_f32, ' "$T/d4f.cu" || fail "no final norm in the LM head"
"$QCC" "$DATA/stories260K" --bits 32 --emit ptx --quiet -o "$T/s.ptx" || fail "--emit ptx"
grep -q '^.target sm_90' "$T/s.ptx" && grep -q '.entry qk_gemv_f32_k64_n512_g0_a_b1(' "$T/s.ptx" || fail "PTX"
if "$T/s32.bin" -v -n 1 --temp 0 2>&1 >/dev/null | grep -q '^cuda: '; then
  echo "skipped: this machine has a usable GPU (tests/gpu covers it)"; exit 77
fi
for dev in "" "--device cpu" "--device cuda"; do
  "$T/s32.bin" $dev -n 256 --temp 0 > "$T/out.txt" 2> "$T/err.txt" || fail "run $dev exited $?"
  printf '%s' "$(cat "$T/out.txt")" | cmp - "$DATA/stories260K/greedy_256.txt" || fail "greedy text differs ($dev)"
  lines=$(wc -l < "$T/err.txt")
  if [ "$dev" = "--device cuda" ]; then
    [ "$lines" -eq 1 ] && grep -q '^notice: .*; running on the CPU$' "$T/err.txt" || fail "--device cuda: $(cat "$T/err.txt")"
    echo "$dev: $(cat "$T/err.txt")"
  else
    [ "$lines" -eq 0 ] || fail "stderr with '$dev': $(cat "$T/err.txt")"
  fi
done
compile c32 "$DATA/stories260K" --bits 32 --target cpu
"$T/c32.bin" --info > "$T/c32.json"
grep -q '"targets": \["cpu"\]' "$T/c32.json" || fail "--target cpu: targets"
readelf -s "$T/c32.bin" > "$T/c32.syms" && readelf -s "$T/s32.bin" > "$T/s32.syms"
if grep -q "OBJECT .* qm_cuda_start" "$T/c32.syms"; then fail "--target cpu embeds device code"; fi
grep -q "OBJECT .* qm_cuda_start" "$T/s32.syms" || fail "no device code (qm_cuda_start) in the CUDA build"
"$T/c32.bin" --device cuda -n 4 --temp 0 > /dev/null 2> "$T/err.txt"
grep -q '^notice: this executable has no CUDA kernels' "$T/err.txt" || fail "--target cpu, --device cuda: $(cat "$T/err.txt")"
rc=0; "$QCC" "$DATA/stories260K" --bits 32 --cuda-arch sm_9x --quiet -o "$T/bad.bin" 2> "$T/err" || rc=$?
[ $rc -eq 1 ] && [ ! -e "$T/bad.bin" ] && [ "$(wc -l < "$T/err")" -eq 1 ] || fail "bad --cuda-arch: rc $rc $(cat "$T/err")"
echo ok
