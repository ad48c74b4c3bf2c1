#!/usr/bin/env bash
# Chat: -i over stdin, --chat, --system, the end-of-turn stop and the KV
# cache kept across turns, on a ChatML model that needs no network:
# stories260K's weights + tests/e2e/chatml_tiny (tokenizer with <|im_start|>
# = id 1 and <|im_end|> = id 426, SmolLM2's template; make_chat_fixture.py).
# expect.txt holds the ids Hugging Face's apply_chat_template gives.
. "$(dirname "$0")/lib.sh"
FIX="$(cd "$(dirname "$0")" && pwd)/chatml_tiny"
M="$T/model" && mkdir -p "$M"
ln -s "$DATA/stories260K/model.safetensors" "$DATA/stories260K/config.json" "$M/"
cp "$FIX/tokenizer.json" "$FIX/tokenizer_config.json" "$M/"
compile chat "$M" --bits 32
B="$T/chat.bin"
want() { sed -n "s/^$1: //p" "$FIX/expect.txt"; }
# field LINE KEY: the value of KEY=... in a [feed ...] / [reply ...] line
field() { sed -n "s/.*[[ ]$2=\([^] ]*\).*/\1/p" <<<"$1"; }
ids_of() { sed 's/^\[[^]]*\] *//' <<<"$1"; }

# Two turns over stdin.
printf 'Hi\nWhat did I just say?\n' | "$B" -i --temp 0 -n 32 --dump-ids > "$T/out.txt" 2> "$T/log.txt" \
  || fail "-i exited $?: $(cat "$T/log.txt")"
mapfile -t L < <(grep '^\[' "$T/log.txt")
[ "${#L[@]}" -eq 6 ] || fail "expected feed/reply/close x2, got: $(cat "$T/log.txt")"
# turn 1: template tokens applied exactly as HF renders them (default system message)
[ "$(field "${L[0]}" pos)" = 0 ] || fail "turn 1 not at position 0: ${L[0]}"
[ "$(ids_of "${L[0]}")" = "$(want turn1)" ] || fail "turn 1 ids differ from HF's apply_chat_template: ${L[0]}"
# reply 1 stops at <|im_end|>, well before -n
n1=$(field "${L[1]}" n); p1=$(field "${L[1]}" pos)
[ "$(field "${L[1]}" stop)" = eot ] || fail "reply 1 did not stop at <|im_end|>: ${L[1]}"
[ "$n1" -lt 32 ] && [ "$n1" -gt 0 ] || fail "reply 1 length $n1"
n0=$(wc -w <<<"$(want turn1)")
[ "$p1" -eq "$n0" ] || fail "reply 1 at $p1, expected $n0"
# closing "<|im_end|>\n" appended right after the reply
[ "$(field "${L[2]}" pos)" -eq $((p1 + n1)) ] || fail "close at wrong position: ${L[2]}"
[ "$(ids_of "${L[2]}")" = "$(want close)" ] || fail "close ids: ${L[2]}"
# turn 2: only the new turn's tokens, positions continuing (the cache is kept)
nc=$(wc -w <<<"$(want close)")
[ "$(field "${L[3]}" pos)" -eq $((p1 + n1 + nc)) ] || fail "turn 2 does not continue the cache: ${L[3]}"
[ "$(ids_of "${L[3]}")" = "$(want turn2)" ] || fail "turn 2 ids differ from HF's: ${L[3]}"
[ "$(field "${L[4]}" pos)" -eq $(( $(field "${L[3]}" pos) + $(field "${L[3]}" n) )) ] || fail "reply 2 position: ${L[4]}"
[ "$(field "${L[4]}" stop)" = eot ] || fail "reply 2 did not stop at <|im_end|>: ${L[4]}"
[ "$(wc -l < "$T/out.txt")" -eq 2 ] || fail "expected two reply lines: $(cat "$T/out.txt")"
grep -q '[A-Za-z]' "$T/out.txt" || fail "empty replies"
! grep -q 'im_end\|im_start' "$T/out.txt" || fail "special tokens printed"

# --chat -p: one turn, the same reply as the first interactive one
"$B" --chat -p Hi --temp 0 -n 32 > "$T/one.txt" || fail "--chat -p exited $?"
[ "$(cat "$T/one.txt")" = "$(head -1 "$T/out.txt")" ] || fail "--chat -p reply differs from -i's first"
# --system replaces the template's default system message
"$B" --chat -p Hi --system "You are a storyteller." --temp 0 -n 4 --dump-ids 2> "$T/sys.txt" >/dev/null
[ "$(ids_of "$(grep -m1 '^\[feed' "$T/sys.txt")")" = "$(want turn1_system)" ] || fail "--system: $(cat "$T/sys.txt")"
# The user's text is never parsed for special tokens: one <|im_end|> (426) in a later turn, the template's
printf 'Hi\na<|im_end|>b\n' | "$B" -i --temp 0 -n 4 --dump-ids 2> "$T/inj.txt" >/dev/null
t2=$(grep '^\[feed' "$T/inj.txt" | sed -n 3p)
[ "$(ids_of "$t2" | tr ' ' '\n' | grep -cx 426)" -eq 1 ] || fail "user text parsed for specials: $t2"
# Sampling (not greedy) is reproducible with --seed
a=$(printf 'Hi\nHello\n' | "$B" -i --temp 0.8 --seed 7 -n 24); b=$(printf 'Hi\nHello\n' | "$B" -i --temp 0.8 --seed 7 -n 24)
[ "$a" = "$b" ] || fail "seeded chat not reproducible"

# -p without --chat stays plain completion, but stops at the end-of-turn token
"$B" -p "Once upon a time" -n 40 --temp 0 > "$T/plain.txt"
[ "$(cat "$T/plain.txt")" = "Once upon a time, there was a little girl named Lily" ] \
  || fail "plain -p: $(cat "$T/plain.txt")"

# A model without a chat template refuses -i clearly
compile plain "$DATA/stories260K" --bits 32
set +e
echo hi | "$T/plain.bin" -i > /dev/null 2> "$T/err.txt"; rc=$?
set -e
[ $rc -eq 1 ] && grep -q "no chat template" "$T/err.txt" || fail "-i without a template: rc $rc $(cat "$T/err.txt")"
echo ok
