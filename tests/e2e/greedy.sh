#!/usr/bin/env bash
# Greedy decoding of the f32 stories260K build reproduces the reference text
# and ids (../shared/data/stories260K/greedy_256.txt, from llama2.c/PyTorch).
. "$(dirname "$0")/lib.sh"
compile s32 "$DATA/stories260K" --bits 32
"$T/s32.bin" -n 256 --temp 0 > "$T/out.txt" || fail "run exited $?"
printf '%s' "$(cat "$T/out.txt")" > "$T/got.txt"   # drop the final newline
cmp "$T/got.txt" "$DATA/stories260K/greedy_256.txt" || {
  diff <(fold -w 80 "$T/got.txt") <(fold -w 80 "$DATA/stories260K/greedy_256.txt") | head; fail "greedy text differs"; }
# The same from a prompt that is the first words of the reference.
"$T/s32.bin" -p "Once upon a time" -n 20 --temp 0 > "$T/p.txt"
grep -q "^Once upon a time, there was a little girl named Lily" "$T/p.txt" || fail "prompted text: $(cat "$T/p.txt")"
# The reference executor (the specification) agrees with the executable.
"$QCC" "$DATA/stories260K" --bits 32 --run "" -n 256 > "$T/ref.txt" || fail "qcc --run"
cmp "$T/ref.txt" "$T/out.txt" || fail "reference executor and executable disagree"
echo ok
