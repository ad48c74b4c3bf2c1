#!/usr/bin/env bash
# Quantized builds, end to end, on a 60k-token slice of wikitext-2 (perplexity
# single-threaded: ctest runs tests side by side, and this model is too small
# for BLAS threads to pay):
#  - 8-bit RTN stays within 1% of f32; GPTQ 3-bit is well below RTN 3-bit
#    (the reason GPTQ exists) and GPTQ 4-bit is not worse than RTN 4-bit;
#  - AWQ 4-bit and 3-bit are below RTN at the same group size (per-channel);
#  - SmoothQuant W8A8 stays within 1% of f32, and the reference executor
#    (qcc --run, which simulates the per-token int8 activations) decodes the
#    same greedy text as the executable;
#  - GPTQ and AWQ output is byte-identical for -j1 and -j2;
#  - --quantize-head packs the (tied) LM head into a copy of its own: the
#    blob grows by its packed size, at 8 bits the perplexity stays within 1%,
#    at 2 bits it rises;
#  - --calib-tokens calibrates on given token ids;
#  - bad quantization options fail with one line and no output.
# The calibrated builds carry no GPU kernels (--target cpu): they run on the
# CPU here, and NVRTC would compile a module for 5 targets for each of them
# (minutes of CI); the RTN builds keep the default targets, so q3 / q4 / q8
# modules of a real model are still compiled for every default target.
. "$(dirname "$0")/lib.sh"
M="$DATA/stories260K"
head -c 300000 "$DATA/text/wikitext2_test_gptq_joined.txt" > "$T/wiki.txt"
CAL="--calib $DATA/text/sotu --calib-samples 32 --calib-seqlen 256 --seed 1 --target cpu"
ppl() { "$T/$1.bin" --perplexity "$T/wiki.txt" -c 512 -t 1 | awk '/^perplexity:/ {print $2}'; }
compile f32 "$M" --bits 32
compile r8 "$M" --bits 8 --method rtn
compile r3 "$M" --bits 3 --method rtn --group-size -1
compile r4 "$M" --bits 4 --method rtn --group-size -1
compile g3 "$M" --bits 3 --group-size -1 $CAL -j 1
compile g4 "$M" --bits 4 --group-size -1 $CAL
"$QCC" "$M" --bits 3 --group-size -1 $CAL -j 2 --quiet -o "$T/g3j2.bin" || fail "-j 2 compile"
cmp "$T/g3.bin" "$T/g3j2.bin" || fail "GPTQ output depends on -j"
compile a3 "$M" --bits 3 --method awq --group-size -1 $CAL -j 1
compile a4 "$M" --bits 4 --method awq --group-size -1 $CAL
"$QCC" "$M" --bits 3 --method awq --group-size -1 $CAL -j 2 --quiet -o "$T/a3j2.bin" || fail "-j 2 compile"
cmp "$T/a3.bin" "$T/a3j2.bin" || fail "AWQ output depends on -j"
compile sq "$M" --method smoothquant $CAL
"$T/sq.bin" --info | grep -q '"method": "smoothquant".*--alpha 0.5' || fail "W8A8 --info: $("$T/sq.bin" --info)"
compile h8 "$M" --bits 8 --method rtn --quantize-head 8 --target cpu
compile h2 "$M" --bits 8 --method rtn --quantize-head 2 --target cpu
wbytes() { "$T/$1.bin" --info | python3 -c 'import json,sys; print(json.load(sys.stdin)["sections"]["weights"]["bytes"])'; }
# The tied head gets a packed copy of its own (the embedding stays f16): the
# blob grows by exactly that copy, docs/formats.md "Sizes" with N = 512, K = 64
# (one group per row): codes N*K*b/8, f16 scales 2N, zero points N.
for hb in "h8 34304" "h2 9728"; do set -- $hb
  [ $(( $(wbytes $1) - $(wbytes r8) )) -eq $2 ] || fail "--quantize-head: $1 blob $(wbytes $1) - $(wbytes r8) != $2"
done
h8=$(ppl h8) h2=$(ppl h2)
f32=$(ppl f32) r8=$(ppl r8) r3=$(ppl r3) r4=$(ppl r4) g3=$(ppl g3) g4=$(ppl g4) a3=$(ppl a3) a4=$(ppl a4) sq=$(ppl sq)
echo "f32 $f32  rtn8 $r8  w8a8 $sq  rtn4 $r4  gptq4 $g4  awq4 $a4  rtn3 $r3  gptq3 $g3  awq3 $a3"
within "$sq" "$f32" 1 || fail "SmoothQuant W8A8 $sq not within 1% of f32 $f32"
awk -v a="$a4" -v r="$r4" 'BEGIN { exit !(a < r) }' || fail "AWQ 4-bit $a4 not below RTN $r4"
awk -v a="$a3" -v r="$r3" 'BEGIN { exit !(a < r) }' || fail "AWQ 3-bit $a3 not below RTN $r3"
"$T/sq.bin" -n 64 --temp 0 > "$T/sq_out.txt" || fail "W8A8 run exited $?"
"$QCC" "$M" --method smoothquant $CAL --quiet --run "" -n 64 > "$T/sq_ref.txt" || fail "qcc --run (W8A8)"
cmp "$T/sq_ref.txt" "$T/sq_out.txt" || fail "W8A8: reference executor and executable disagree"
echo "head: rtn8 $r8  +head8 $h8  +head2 $h2"
within "$h8" "$r8" 1 || fail "--quantize-head 8: $h8 not within 1% of $r8"
awk -v h="$h2" -v r="$r8" 'BEGIN { exit !(h > 1.02 * r) }' || fail "--quantize-head 2: $h2 not above $r8: head not quantized?"
within "$r8" "$f32" 1 || fail "8-bit RTN $r8 not within 1% of f32 $f32"
awk -v g="$g3" -v r="$r3" 'BEGIN { exit !(g < 0.9 * r) }' || fail "GPTQ 3-bit $g3 not well below RTN $r3"
awk -v g="$g4" -v r="$r4" 'BEGIN { exit !(g <= r) }' || fail "GPTQ 4-bit $g4 worse than RTN $r4"
awk -v g="$g3" -v f="$f32" 'BEGIN { exit !(g > f) }' || fail "3-bit better than f32? ($g3 vs $f32)"
# --calib-tokens: int32 ids cut into windows of --calib-seqlen (4 x 256 here).
python3 -c 'import random, struct, sys
r = random.Random(3)
ids = [r.randrange(512) for _ in range(1024)]
open(sys.argv[1], "wb").write(struct.pack("<1024i", *ids))
open(sys.argv[2], "wb").write(struct.pack("<1023i", *ids[:1023]))
open(sys.argv[3], "wb").write(struct.pack("<1024i", *ids[:1023], 512))' "$T/ids.i32" "$T/ids_short.i32" "$T/ids_bad.i32"
compile ct "$M" --bits 4 --calib-tokens "$T/ids.i32" --calib-seqlen 256 --target cpu
"$T/ct.bin" --info | grep -q '"calibration": "ids.i32"' || fail "--calib-tokens: --info $("$T/ct.bin" --info | head -c 300)"
# Bad options and calibration input: one line, exit 1, no output.
echo "" > "$T/empty.txt"
echo "tiny text" > "$T/short.txt"
for bad in "--bits 5" "--bits 4 --group-size 0" "--bits 4 --group-size 48" "--bits 4 --calib $T/missing.txt" \
           "--bits 4 --calib $T/empty.txt" "--bits 4 --calib $T/short.txt" "--bits 4 --method awqq" \
           "--method smoothquant --bits 4" "--method smoothquant --alpha 1.5" "--bits 16 --quantize-head 4" \
           "--bits 4 --quantize-head 5" "--bits 4 --calib-tokens $T/empty.txt" \
           "--bits 4 --calib-tokens $T/ids_short.i32 --calib-seqlen 256" \
           "--bits 4 --calib-tokens $T/ids_bad.i32 --calib-seqlen 256" \
           "--bits 4 --calib-tokens $T/ids.i32 --calib $T/wiki.txt"; do
  rc=0; "$QCC" "$M" $bad --quiet -o "$T/bad.bin" 2> "$T/err" || rc=$?
  [ $rc -eq 1 ] && [ ! -e "$T/bad.bin" ] && [ "$(wc -l < "$T/err")" -eq 1 ] || fail "'$bad': rc $rc, $(cat "$T/err")"
  echo "ok: $bad -> $(cat "$T/err")"
done
echo ok
