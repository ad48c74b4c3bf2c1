#!/usr/bin/env bash
# Perplexity on the GPU (prefill through cuBLAS, or qk_gemm without it) on a
# 60k-token slice of wikitext-2: 4-bit and 3-bit GPTQ builds and a W8A8
# SmoothQuant build within 0.5% of the CPU's (4 bits: f32 and f16 KV cache;
# 3 bits: the weights repacked into the device layout; W8A8: cuBLAS's int8
# GEMM for prefill; 4 and 3 bits also with every 512-token window through
# the fused dequantize + GEMM kernel, --fused-gemm-max 512; and windows of
# 64 and 8 tokens (4 bits) and 16 (3 bits), whose prefill goes through the
# register-dequantizing kernels qk_qgemm_<dt>_t64 / _t8 / _t16, against
# the CPU at the same window), the f32 build within 0.05%.
. "$(dirname "$0")/lib.sh"
bin g4 "$DATA/stories260K" --bits 4 --group-size 32 --calib "$DATA/text/sotu" --calib-samples 16 --calib-seqlen 128 --seed 1
bin g3 "$DATA/stories260K" --bits 3 --group-size 32 --calib "$DATA/text/sotu" --calib-samples 16 --calib-seqlen 128 --seed 1
bin sq8 "$DATA/stories260K" --method smoothquant --calib "$DATA/text/sotu" --calib-samples 16 --calib-seqlen 128 --seed 1
bin s32 "$DATA/stories260K" --bits 32
need_gpu "$T/g4.bin"
head -c 300000 "$DATA/text/wikitext2_test_gptq_joined.txt" > "$T/wiki.txt"
ppl() { "$T/$1.bin" "${@:2}" --perplexity "$T/wiki.txt" -c "${CTX:-512}" | awk '/^perplexity:/ {print $2}'; }
c4=$(ppl g4 --device cpu) g4=$(ppl g4 --device cuda) h4=$(ppl g4 --device cuda --cache-type f16)
c3=$(ppl g3 --device cpu) g3=$(ppl g3 --device cuda)
f4=$(ppl g4 --device cuda --fused-gemm-max 512) f3=$(ppl g3 --device cuda --fused-gemm-max 512)
cq=$(ppl sq8 --device cpu) gq=$(ppl sq8 --device cuda)
c4w64=$(CTX=64 ppl g4 --device cpu) g4w64=$(CTX=64 ppl g4 --device cuda)
c4w8=$(CTX=8 ppl g4 --device cpu) g4w8=$(CTX=8 ppl g4 --device cuda)
c3w16=$(CTX=16 ppl g3 --device cpu) g3w16=$(CTX=16 ppl g3 --device cuda)
c32=$(ppl s32 --device cpu) g32=$(ppl s32 --device cuda)
echo "gptq4: cpu $c4 gpu $g4 gpu-f16kv $h4 gpu-fused $f4;  gptq3: cpu $c3 gpu $g3 gpu-fused $f3;  w8a8: cpu $cq gpu $gq;  f32: cpu $c32 gpu $g32"
echo "windows of 64 / 8 tokens, gptq4: cpu $c4w64 / $c4w8 gpu $g4w64 / $g4w8;  of 16, gptq3: cpu $c3w16 gpu $g3w16"
within "$g4" "$c4" 0.5 || fail "4-bit GPU perplexity $g4 not within 0.5% of the CPU's $c4"
within "$h4" "$c4" 0.5 || fail "4-bit GPU (f16 KV) perplexity $h4 not within 0.5% of the CPU's $c4"
within "$g3" "$c3" 0.5 || fail "3-bit GPU perplexity $g3 not within 0.5% of the CPU's $c3"
within "$f4" "$c4" 0.5 || fail "4-bit GPU (fused GEMM) perplexity $f4 not within 0.5% of the CPU's $c4"
within "$f3" "$c3" 0.5 || fail "3-bit GPU (fused GEMM) perplexity $f3 not within 0.5% of the CPU's $c3"
within "$g4w64" "$c4w64" 0.5 || fail "4-bit GPU perplexity, 64-token windows: $g4w64 not within 0.5% of the CPU's $c4w64"
within "$g4w8" "$c4w8" 0.5 || fail "4-bit GPU perplexity, 8-token windows: $g4w8 not within 0.5% of the CPU's $c4w8"
within "$g3w16" "$c3w16" 0.5 || fail "3-bit GPU perplexity, 16-token windows: $g3w16 not within 0.5% of the CPU's $c3w16"
within "$gq" "$cq" 0.5 || fail "W8A8 GPU perplexity $gq not within 0.5% of the CPU's $cq"
within "$g32" "$c32" 0.05 || fail "f32 GPU perplexity $g32 not within 0.05% of the CPU's $c32"
echo ok
