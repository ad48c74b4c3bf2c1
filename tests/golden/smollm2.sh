#!/usr/bin/env bash
# SmolLM2-135M-Instruct, the demo model, against PyTorch (tests/golden/
# smollm2_ref.py: the GGUF read with the `gguf` package into transformers'
# LlamaForCausalLM). Runs only when tools/fetch_sample.sh has put the GGUF in
# its cache (tests never download): otherwise exits 77, which ctest reports
# as skipped. Checks the f32 build's
#   - chat: the ids --chat feeds equal transformers' apply_chat_template, and
#     the greedy reply equals PyTorch's
#   - logits of every position of that prompt within 1e-4 of each row's
#     largest (every 64th column stored) and the same argmax everywhere
#   - wikitext-2 perplexity over 64 windows of 512 tokens within 0.05%, with
#     the same token count as transformers' tokenizer
set -euo pipefail
: "${QCC:?}" "${CMP:?}" "${SCRATCH:?}" "${DATA:?}"
CACHE=${QCC_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/qcc}
GGUF=$CACHE/SmolLM2-135M-Instruct.Q4_1.gguf
REF="$(cd "$(dirname "$0")" && pwd)/smollm2"
if [ ! -f "$GGUF" ]; then
  echo "skip: $GGUF not present (make demo or tools/fetch_sample.sh fetches it)"
  exit 77
fi
fail() { echo "FAIL: $*" >&2; exit 1; }
j() { python3 -c "import json,sys; r=json.load(open('$REF/ref.json')); print($1)"; }
[ "$(sha256sum "$GGUF" | cut -d' ' -f1)" = "$(j "r['gguf_sha256']")" ] || fail "$GGUF: not the pinned file"
T="$SCRATCH/golden-smollm2" && rm -rf "$T" && mkdir -p "$T"
"$QCC" "$GGUF" --bits 32 --quiet -o "$T/m.bin" || fail "qcc --bits 32"

# chat template ids and the greedy reply
"$T/m.bin" --chat --system "$(j "r['system']")" -p "$(j "r['question']")" -n 32 --temp 0 --dump-ids \
  > "$T/reply.txt" 2> "$T/ids.txt" || fail "--chat exited $?"
got=$(sed -n 's/^\[feed pos=0 [^]]*\] //p' "$T/ids.txt")
[ "$got" = "$(j "' '.join(map(str, r['chat_ids']))")" ] || fail "chat ids differ from apply_chat_template: $got"
reply=$(sed -n 's/^\[reply [^]]*\] *//p' "$T/ids.txt")
[ "$reply" = "$(j "' '.join(map(str, r['greedy_reply_ids']))")" ] || fail "greedy reply ids differ: $reply"
echo "reply: $(cat "$T/reply.txt")"

# logits
"$T/m.bin" --dump-logits "$T/logits.f32" --ids "$(j "','.join(map(str, r['chat_ids']))")" || fail "--dump-logits"
"$CMP" "$REF/logits.f32" "$T/logits.f32" "$(j "r['vocab']")" 1e-4 "$(j "r['cols']")" || fail "logits differ"
python3 - "$T/logits.f32" "$REF/ref.json" <<'PY' || fail "argmax differs"
import json, sys, array
r = json.load(open(sys.argv[2])); v = r['vocab']; a = array.array('f'); a.frombytes(open(sys.argv[1], 'rb').read())
got = [max(range(v), key=lambda i: a[row * v + i]) for row in range(len(a) // v)]
sys.exit(got != r['argmax'])
PY

# perplexity
head -c "$(j "r['ppl']['bytes']")" "$DATA/text/wikitext2_test_gptq_joined.txt" > "$T/wiki.txt"
"$T/m.bin" --perplexity "$T/wiki.txt" -c "$(j "r['ppl']['ctx']")" > "$T/ppl.txt" || fail "--perplexity"
cat "$T/ppl.txt"
[ "$(sed -n 's/^tokens: //p' "$T/ppl.txt")" = "$(j "r['ppl']['tokens']")" ] || fail "token count differs from transformers'"
awk -v a="$(sed -n 's/^perplexity: //p' "$T/ppl.txt")" -v b="$(j "r['ppl']['perplexity']")" \
  'BEGIN { d = a - b; if (d < 0) d = -d; printf "ppl %s vs PyTorch %s (%.4f%%)\n", a, b, 100 * d / b; exit !(d <= b * 0.0005) }' \
  || fail "perplexity off by more than 0.05%"
echo ok
