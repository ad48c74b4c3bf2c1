#!/usr/bin/env bash
# wikitext-2 perplexity over 512-token windows equals the PyTorch reference
# (122.334, ../shared/data/README.md): f32 within 0.05%, f16 within 0.3%.
# Usage: perplexity.sh BITS TOLERANCE_PERCENT
. "$(dirname "$0")/lib.sh"
bits=$1 tol=$2
compile m "$DATA/stories260K" --bits "$bits"
"$T/m.bin" --perplexity "$DATA/text/wikitext2_test_gptq_joined.txt" -c 512 > "$T/ppl.txt" || fail "run exited $?"
cat "$T/ppl.txt"
grep -qx "tokens: 815070" "$T/ppl.txt" || fail "token count"
grep -qx "windows: 1591" "$T/ppl.txt" || fail "window count"
ppl=$(awk '/^perplexity:/ {print $2}' "$T/ppl.txt")
within "$ppl" 122.334 "$tol" || fail "perplexity $ppl not within $tol% of 122.334"
echo ok
