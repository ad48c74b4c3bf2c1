#!/usr/bin/env bash
# stories260K on the GPU: greedy text identical to the CPU's and to the
# reference (256 tokens after BOS), with the decode step replayed as a CUDA
# graph and without; a prompt (prefill through the GEMM path) continues the
# same on both devices; f16 weights agree too, and so does a 64-token
# context (one decode attention split); sampled text (temperature, top-k,
# top-p: the GPU picks the candidates, qk_topk) is the CPU's too;
# --no-fuse-norm, --no-fuse-rope, --no-cluster and --no-lookahead change
# none of it.
. "$(dirname "$0")/lib.sh"
bin s32 "$DATA/stories260K" --bits 32
bin s16 "$DATA/stories260K" --bits 16
need_gpu "$T/s32.bin"
greedy() { "$T/$1.bin" "${@:2}" -n 256 --temp 0 > "$T/out.txt" 2> "$T/err.txt" || fail "$* exited $?"; printf '%s' "$(cat "$T/out.txt")"; }
greedy s32 --device cuda > "$T/gpu.txt"
[ ! -s "$T/err.txt" ] || fail "stderr on the GPU: $(cat "$T/err.txt")"
greedy s32 --device cpu > "$T/cpu.txt"
cmp "$T/gpu.txt" "$DATA/stories260K/greedy_256.txt" || {
  diff <(fold -w 80 "$T/gpu.txt") <(fold -w 80 "$DATA/stories260K/greedy_256.txt") | head; fail "GPU greedy text differs from the reference"; }
cmp "$T/gpu.txt" "$T/cpu.txt" || fail "GPU and CPU greedy text differ"
greedy s32 --device cuda --no-cuda-graph > "$T/nograph.txt"
cmp "$T/gpu.txt" "$T/nograph.txt" || fail "graph replay and plain launches differ"
greedy s32 --device cuda --no-pdl > "$T/nopdl.txt"
cmp "$T/gpu.txt" "$T/nopdl.txt" || fail "launches with and without programmatic dependent launch differ"
greedy s32 --device cuda --no-pdl --no-cuda-graph > "$T/nopdl.txt"
cmp "$T/gpu.txt" "$T/nopdl.txt" || fail "plain launches without programmatic dependent launch differ"
greedy s32 --device cuda -p "Once upon a time, in a big forest" > "$T/pg.txt"
greedy s32 --device cpu -p "Once upon a time, in a big forest" > "$T/pc.txt"
cmp "$T/pg.txt" "$T/pc.txt" || fail "prompted text differs: $(head -c 300 "$T/pg.txt") / $(head -c 300 "$T/pc.txt")"
greedy s16 --device cuda > "$T/g16.txt"
greedy s16 --device cpu > "$T/c16.txt"
cmp "$T/g16.txt" "$T/c16.txt" || fail "f16 build: GPU and CPU greedy text differ"
# --no-fuse-norm (RMSNorms and residual adds as kernels of their own; by default the float GEMV takes the
# adds, and the tensor-core GEMVs of f16 weights both): the same text
greedy s32 --device cuda --no-fuse-norm > "$T/f32.txt"
cmp "$T/gpu.txt" "$T/f32.txt" || fail "--no-fuse-norm: f32 greedy text differs"
greedy s16 --device cuda --no-fuse-norm > "$T/f16.txt"
cmp "$T/g16.txt" "$T/f16.txt" || fail "--no-fuse-norm: f16 greedy text differs"
# --no-fuse-rope (RoPE and KV append as a kernel of their own; by default in the decode attention): the same
# text, with the f32 and the f16 KV cache
greedy s32 --device cuda --no-fuse-rope > "$T/r32.txt"
cmp "$T/gpu.txt" "$T/r32.txt" || fail "--no-fuse-rope: greedy text differs"
greedy s32 --device cuda --cache-type f16 > "$T/k16.txt"
greedy s32 --device cuda --cache-type f16 --no-fuse-rope > "$T/r16.txt"
cmp "$T/k16.txt" "$T/r16.txt" || fail "--no-fuse-rope: greedy text with the f16 KV cache differs"
# --no-cluster (the decode attention's splits merged through global memory, not as thread block clusters)
greedy s32 --device cuda --no-cluster > "$T/c32.txt"
cmp "$T/gpu.txt" "$T/c32.txt" || fail "--no-cluster: greedy text differs"
# --no-lookahead (the host's turn between greedy steps; by default the next step is queued behind the sampling)
greedy s32 --device cuda --no-lookahead > "$T/la.txt"
cmp "$T/gpu.txt" "$T/la.txt" || fail "--no-lookahead: greedy text differs"
# a context of 64 tokens: one decode attention split per head; generation runs into the end of the context
# (no step queued ahead past it)
"$T/s32.bin" --device cuda -c 64 -n 100 --temp 0 > "$T/g64.txt" || fail "-c 64 on the GPU exited $?"
"$T/s32.bin" --device cpu -c 64 -n 100 --temp 0 > "$T/c64.txt" || fail "-c 64 on the CPU exited $?"
cmp "$T/g64.txt" "$T/c64.txt" || fail "-c 64: GPU and CPU greedy text differ: $(head -c 200 "$T/g64.txt") / $(head -c 200 "$T/c64.txt")"
for opt in "--temp 0.8 --seed 5" "--temp 1 --top-k 0 --seed 6" "--temp 0.7 --top-k 5 --top-p 0.5 --seed 7" \
           "--temp 1.2 --top-k 512 --seed 8"; do
  # shellcheck disable=SC2086
  "$T/s32.bin" --device cuda $opt -n 200 > "$T/sg.txt" 2> "$T/err.txt" || fail "$opt on the GPU exited $?"
  # shellcheck disable=SC2086
  "$T/s32.bin" --device cpu $opt -n 200 > "$T/sc.txt" || fail "$opt on the CPU exited $?"
  cmp "$T/sg.txt" "$T/sc.txt" || fail "sampled ($opt): GPU and CPU differ: $(head -c 200 "$T/sg.txt") / $(head -c 200 "$T/sc.txt")"
done
"$T/s32.bin" --device cuda --bench --prompt-len 128 --gen 128 | tee "$T/bench.txt"
grep -q 'decode 128' "$T/bench.txt" || fail "--bench on the GPU"
echo ok
