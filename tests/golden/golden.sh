#!/usr/bin/env bash
# Golden logits: qcc --bits 32 of a GPT-2 / OPT fixture (tests/golden/NAME,
# made by make_gpt_opt.py) must give PyTorch's fp32 logits at every position
# within 1e-4 of each row's largest logit — from --ids and from -p TEXT (which
# also checks tokenization and BOS), for a sentence and for ids filling the
# whole position table. Then: the reference executor agrees with the
# executable (greedy text), an f16 build stays close, and 8- and 4-bit builds
# compile and run.
#   golden.sh NAME   (env: QCC, CMP = the cmp_f32 helper, SCRATCH)
set -euo pipefail
: "${QCC:?}" "${CMP:?}" "${SCRATCH:?}"
NAME=$1
FIX="$(cd "$(dirname "$0")" && pwd)/$NAME"
T="$SCRATCH/golden-$NAME" && rm -rf "$T" && mkdir -p "$T"
fail() { echo "FAIL: $*" >&2; exit 1; }
VOCAB=$(sed -n 's/.*"vocab_size": *\([0-9]*\).*/\1/p' "$FIX/config.json")
"$QCC" "$FIX" --bits 32 --quiet -o "$T/m32.bin" || fail "qcc --bits 32"
for k in text full; do
  "$T/m32.bin" --dump-logits "$T/$k.f32" --ids "$(cat "$FIX/$k.ids")" || fail "--dump-logits --ids ($k)"
  "$CMP" "$FIX/$k.f32" "$T/$k.f32" "$VOCAB" 1e-4 || fail "$k: logits differ from PyTorch"
done
"$T/m32.bin" --dump-logits "$T/p.f32" -p "$(cat "$FIX/text.txt")" || fail "--dump-logits -p"
"$CMP" "$FIX/text.f32" "$T/p.f32" "$VOCAB" 1e-4 || fail "-p TEXT: logits (or tokenization) differ"
# The reference executor (the specification) and the executable agree.
"$QCC" "$FIX" --bits 32 --run "" -n 40 > "$T/ref.txt" || fail "qcc --run"
"$T/m32.bin" -n 40 --temp 0 > "$T/out.txt" || fail "greedy run"
cmp -s "$T/ref.txt" "$T/out.txt" || fail "reference executor and executable disagree: $(cat "$T/ref.txt") / $(cat "$T/out.txt")"
# Learned positions end at the table: a longer context is refused.
set +e; "$T/m32.bin" -c 65 -p hi -n 1 > /dev/null 2> "$T/c.txt"; rc=$?; set -e
[ $rc -eq 1 ] && grep -q "learned position" "$T/c.txt" || fail "-c beyond the position table: rc $rc $(cat "$T/c.txt")"
# f16 storage stays close; quantized builds compile and run.
"$QCC" "$FIX" --bits 16 --quiet -o "$T/m16.bin" || fail "qcc --bits 16"
"$T/m16.bin" --dump-logits "$T/f16.f32" --ids "$(cat "$FIX/full.ids")"
"$CMP" "$FIX/full.f32" "$T/f16.f32" "$VOCAB" 1e-2 || fail "f16 build too far from the reference"
"$QCC" "$FIX" --bits 8 --method rtn --group-size 32 --quiet -o "$T/m8.bin" || fail "qcc --bits 8"
"$T/m8.bin" --dump-logits "$T/q8.f32" --ids "$(cat "$FIX/full.ids")"
"$CMP" "$FIX/full.f32" "$T/q8.f32" "$VOCAB" 5e-2 || fail "8-bit build too far from the reference"
"$QCC" "$FIX" --bits 4 --group-size 32 --calib-samples 4 --calib-seqlen 32 --quiet -o "$T/m4.bin" || fail "qcc --bits 4 (gptq)"
"$T/m4.bin" -p "$(cat "$FIX/text.txt")" -n 8 --temp 0 > /dev/null || fail "4-bit run"
echo ok
