#!/usr/bin/env bash
# GGUF input: stories260K.gguf (the original llama2.c conversion, F32, Q/K
# rows in llama.cpp's interleaved order, tokenizer in the metadata) compiles
# to an executable whose greedy text is the reference, and that equals the
# build from the safetensors checkpoint: same weight blob (so the Q/K
# un-permutation is exact), same text at 32 and 16 bits, same perplexity.
. "$(dirname "$0")/lib.sh"
G="$DATA/stories260K/stories260K.gguf"
compile g32 "$G" --bits 32
"$T/g32.bin" -n 256 --temp 0 > "$T/out.txt" || fail "run exited $?"
printf '%s' "$(cat "$T/out.txt")" > "$T/got.txt"   # drop the final newline
cmp "$T/got.txt" "$DATA/stories260K/greedy_256.txt" || {
  diff <(fold -w 80 "$T/got.txt") <(fold -w 80 "$DATA/stories260K/greedy_256.txt") | head; fail "greedy text differs"; }
"$T/g32.bin" -p "Once upon a time" -n 20 --temp 0 > "$T/p.txt"
grep -q "^Once upon a time, there was a little girl named Lily" "$T/p.txt" || fail "prompted text: $(cat "$T/p.txt")"

# Against the safetensors build.
weights() { "$1" --info | grep -o '"weights_xxh3_128": "[0-9a-f]*"'; }
for bits in 32 16; do
  [ $bits = 32 ] || compile g$bits "$G" --bits $bits
  compile s$bits "$DATA/stories260K" --bits $bits
  [ -n "$(weights "$T/g$bits.bin")" ] || fail "--info has no weights hash"
  [ "$(weights "$T/g$bits.bin")" = "$(weights "$T/s$bits.bin")" ] || fail "--bits $bits: weight blobs differ"
  "$T/g$bits.bin" -n 200 --temp 0 -p "Tom had a red" > "$T/g$bits.txt" || fail "g$bits run"
  "$T/s$bits.bin" -n 200 --temp 0 -p "Tom had a red" > "$T/s$bits.txt" || fail "s$bits run"
  cmp "$T/g$bits.txt" "$T/s$bits.txt" || fail "--bits $bits: GGUF and safetensors builds generate different text"
done
"$T/g32.bin" --info | grep -q '"source": "stories260K.gguf"' || fail "--info source: $("$T/g32.bin" --info)"

# Perplexity over the first windows of wikitext-2 is the same number.
head -c 100000 "$DATA/text/wikitext2_test_gptq_joined.txt" > "$T/wiki.txt"
pg=$("$T/g32.bin" --perplexity "$T/wiki.txt" -c 512 2>&1 | grep -io 'perplexity[^0-9]*[0-9.]*' | grep -o '[0-9.]*$')
ps=$("$T/s32.bin" --perplexity "$T/wiki.txt" -c 512 2>&1 | grep -io 'perplexity[^0-9]*[0-9.]*' | grep -o '[0-9.]*$')
[ -n "$pg" ] && [ "$pg" = "$ps" ] || fail "perplexity: GGUF '$pg' vs safetensors '$ps'"
echo "ok (perplexity $pg on 100 kB)"
