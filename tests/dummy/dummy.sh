#!/usr/bin/env bash
# qcc --dummy-weights on the CPU (docs/dummy-weights.md), with the tiny
# config beside this file (2 layers, hidden 64, vocab 512):
#  - for every width (32/16/8/4/3/2, groups, sym/asym, seeds) the blob the
#    executable generates (QRT_DUMMY_DUMP) equals, byte for byte, what
#    dummy_ref.py (an independent numpy reimplementation of the layout, the
#    packed format and the generator) computes, and its sha256 is the fixed
#    value in checksums.txt; --bench runs; the one notice line is there;
#  - --info says so (weights "dummy", the seed, the blob's bytes);
#  - two runs give identical logits, finite and in a sane range;
#  - the f16 dummy executable computes the very logits of an executable
#    compiled from a checkpoint holding the same values (the generated code
#    reads the generated weights where the real blob would be);
#  - a Llama-2-7B-shaped 4-bit executable stays small (no weight blob);
#  - bad input: one error line, exit 1, nothing written.
. "$(dirname "$0")/../e2e/lib.sh"
HERE=$(cd "$(dirname "$0")" && pwd)
CFG=$HERE/tiny.json REF=$HERE/dummy_ref.py
IDS=1,5,300,7,511,2,64,3
# dummy_ref.py needs numpy: the first python3 that has it (tools/deps.sh installs Debian's python3-numpy
# for /usr/bin/python3, which a python3 earlier in PATH may lack)
PY=
for p in python3 /usr/bin/python3; do "$p" -c 'import numpy' 2> /dev/null && { PY=$p; break; }; done
[ -n "$PY" ] || fail "no python3 with numpy (tools/deps.sh installs python3-numpy)"

while read -r name bits group sym seed want; do
  case "$name" in ''|'#'*) continue ;; esac
  s=; [ "$sym" = sym ] && s=--sym
  compile "$name" --dummy-weights "$CFG" --bits "$bits" --group-size "$group" $s --seed "$seed" --target cpu
  QRT_DUMMY_DUMP="$T/$name.blob" "$T/$name.bin" --bench --prompt-len 8 --gen 8 > "$T/$name.bench" 2> "$T/$name.err" ||
    fail "$name: --bench exited $?: $(cat "$T/$name.err")"
  grep -q '| cpu | decode 8 |' "$T/$name.bench" || fail "$name: --bench printed $(cat "$T/$name.bench")"
  [ "$(wc -l < "$T/$name.err")" -eq 1 ] &&
    grep -q "^notice: dummy weights (qcc --dummy-weights, seed $seed): .* generated on the CPU in .*; the output is meaningless$" "$T/$name.err" ||
    fail "$name: stderr: $(cat "$T/$name.err")"
  got=$("$PY" "$REF" check "$CFG" "$T/$name.blob" --bits "$bits" --group "$group" $s --seed "$seed") || fail "$name: $got"
  [ "$got" = "sha256 $want" ] || fail "$name: $got, checksums.txt says $want"
  echo "$name: $got"
done < "$HERE/checksums.txt"

# --info
"$T/q4.bin" --info > "$T/info.json"
python3 - "$T/info.json" <<'PY' || fail "--info: $(cat "$T/info.json")"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["weights"] == "dummy" and d["dummy_seed"] == 0 and d["source"] == "tiny.json", d
assert d["weight_bytes"] == 190720 and 0 < d["weight_bytes_per_token"] < d["weight_bytes"], d
assert d["bits"] == 4 and d["group_size"] == 32 and d["method"] == "none" and "--dummy-weights" in d["flags"], d
PY

# two runs: identical, finite, sane logits (the notice on stderr only)
for r in 1 2; do
  "$T/q4.bin" --dump-logits "$T/l$r.f32" --ids "$IDS" -c 64 2> "$T/l$r.err" || fail "--dump-logits: $(cat "$T/l$r.err")"
done
cmp "$T/l1.f32" "$T/l2.f32" || fail "two runs gave different logits"
"$PY" "$REF" logits "$T/l1.f32" 512 || fail "logits"
"$T/q4.bin" -p "hello" -n 16 --temp 0 > "$T/g1.txt" 2>/dev/null && "$T/q4.bin" -p "hello" -n 16 --temp 0 > "$T/g2.txt" 2>/dev/null ||
  fail "greedy generation"
cmp "$T/g1.txt" "$T/g2.txt" && grep -q '^hello' "$T/g1.txt" || fail "greedy runs differ: $(cat "$T/g1.txt") / $(cat "$T/g2.txt")"

# f16: the dummy executable == one compiled from a checkpoint of the same values
mkdir -p "$T/ckpt"
cp "$CFG" "$T/ckpt/config.json"
cp "$DATA/stories260K/tokenizer.json" "$T/ckpt/"   # any tokenizer of 512 ids: only --ids are fed
"$PY" "$REF" safetensors "$CFG" "$T/ckpt/model.safetensors" --seed 3 || fail "writing the checkpoint"
compile real16 "$T/ckpt" --bits 16 --target cpu
compile dummy16 --dummy-weights "$CFG" --bits 16 --seed 3 --target cpu
"$T/real16.bin" --dump-logits "$T/real.f32" --ids "$IDS" -c 64 || fail "real16"
"$T/dummy16.bin" --dump-logits "$T/dummy.f32" --ids "$IDS" -c 64 2>/dev/null || fail "dummy16"
cmp "$T/real.f32" "$T/dummy.f32" || fail "the dummy f16 executable's logits differ from the checkpoint's"
echo "f16: logits identical to a checkpoint of the same values"

# a Llama-2-7B shape: no weight blob of the model's size
compile l7 --dummy-weights "$HERE/../../bench/configs/llama-2-7b.json" --bits 4 --target cpu
size=$(stat -c %s "$T/l7.bin")
wb=$("$T/l7.bin" --info | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["weight_bytes"])')
echo "llama-2-7b 4-bit: executable $size bytes, weights $wb bytes generated at start"
[ "$wb" -gt 3000000000 ] && [ "$size" -lt 64000000 ] || fail "executable $size bytes for $wb bytes of weights"

# bad input: one line, exit 1, no output
bad() { # expected-message-part qcc-args...
  local want=$1 rc=0; shift
  "$QCC" "$@" -o "$T/bad.bin" 2> "$T/bad.err" || rc=$?
  [ $rc -eq 1 ] && [ "$(wc -l < "$T/bad.err")" -eq 1 ] && grep -q -- "$want" "$T/bad.err" && [ ! -e "$T/bad.bin" ] ||
    fail "qcc $*: rc $rc, stderr: $(cat "$T/bad.err")"
  echo "bad input ok: $(cat "$T/bad.err")"
}
bad "cannot open" --dummy-weights "$T/missing.json"
printf '{"model_type": "llama", "hidden_size": 64,' > "$T/broken.json"
bad "broken.json" --dummy-weights "$T/broken.json"
sed 's/"vocab_size": 512/"vocab_size": 200/' "$CFG" > "$T/smallvocab.json"
bad "vocab_size" --dummy-weights "$T/smallvocab.json"
sed 's/"intermediate_size": 192/"intermediate_size": 100/' "$CFG" > "$T/odd.json"
bad "not a multiple of 32" --dummy-weights "$T/odd.json" --bits 4
echo '{"model_type": "gpt2", "n_embd": 64, "n_layer": 2, "n_head": 4, "vocab_size": 512}' > "$T/gpt2.json"
bad "llama family" --dummy-weights "$T/gpt2.json"
bad "takes the place of MODEL" --dummy-weights "$CFG" "$DATA/stories260K"
bad "--run needs a checkpoint" --dummy-weights "$CFG" --run hello
echo ok
