#!/usr/bin/env bash
# Faults, compile side and run side: each gives a clear message and the
# right exit status, and a failed compile leaves nothing behind.
. "$(dirname "$0")/lib.sh"
M="$DATA/stories260K"
expect_fail() { # expect_fail WANT_RC SUBSTRING CMD... : stderr is one line holding SUBSTRING
  local want=$1 sub=$2; shift 2
  local rc=0
  "$@" > "$T/out" 2> "$T/err" || rc=$?
  [ "$rc" -eq "$want" ] || fail "'$*': exit $rc, want $want: $(cat "$T/err")"
  [ "$(wc -l < "$T/err")" -eq 1 ] || fail "'$*': stderr is not one line: $(cat "$T/err")"
  grep -qF -- "$sub" "$T/err" || fail "'$*': '$(cat "$T/err")' lacks '$sub'"
  echo "ok: $(cat "$T/err")"
}
empty_dir() { [ -z "$(ls -A "$1")" ] || fail "left behind in $1: $(ls -A "$1")"; }

# -- compile side --
expect_fail 1 "/nonexistent/dir/m.bin" "$QCC" "$M" --quiet -o /nonexistent/dir/m.bin
mkdir -p "$T/full"
# a 64 KiB file-size limit stands in for a full disk: the weight blob cannot be written
expect_fail 1 "disk full" bash -c "ulimit -f 64; exec '$QCC' '$M' --bits 32 --quiet -o '$T/full/m.bin'"
empty_dir "$T/full"
# SIGINT and SIGTERM in the middle of a (self-calibrating GPTQ) compile
for sig in INT TERM; do
  mkdir -p "$T/sig$sig"
  "$QCC" "$M" --bits 4 --calib-samples 64 --quiet -o "$T/sig$sig/m.bin" 2> /dev/null & pid=$!
  sleep 1
  kill -$sig $pid
  rc=0; wait $pid || rc=$?
  [ $rc -ge 128 ] || fail "SIG$sig: exit $rc"
  empty_dir "$T/sig$sig"
  echo "ok: SIG$sig -> exit $rc, nothing left"
done

# -- run side --
compile m "$M" --bits 16
expect_fail 1 "the context holds 8" "$T/m.bin" -c 8 -p "Once upon a time there was a very long prompt indeed"
: > "$T/empty.txt"
expect_fail 1 "fewer than one window" "$T/m.bin" --perplexity "$T/empty.txt" -c 512
echo "Lily went to the park." > "$T/short.txt"
expect_fail 1 "fewer than one window" "$T/m.bin" --perplexity "$T/short.txt" -c 512
expect_fail 1 "cannot read" "$T/m.bin" --perplexity "$T/missing.txt"
expect_fail 1 "unknown option" "$T/m.bin" --frobnicate
expect_fail 1 "invalid value" "$T/m.bin" -n lots
# invalid UTF-8 in the prompt goes through byte fallback
"$T/m.bin" -p $'Lily \xff\xfe\xc3 saw' -n 8 --temp 0 > "$T/utf8.txt" || fail "invalid UTF-8 prompt"
head -c 5 "$T/utf8.txt" | grep -q "Lily" || fail "prompt not echoed"
# a closed stdout pipe: no crash, no error spew
rc=0; "$T/m.bin" -n 400 --temp 1 --seed 3 2> "$T/err" | head -c 10 > /dev/null || rc=$?
[ ! -s "$T/err" ] || fail "closed pipe: $(cat "$T/err")"
# SIGINT during a long run: prompt exit with status 130
"$T/m.bin" --perplexity "$DATA/text/wikitext2_test_gptq_joined.txt" -c 512 > "$T/ppl.txt" 2>/dev/null & pid=$!
sleep 1; t0=$(date +%s%N); kill -INT $pid; rc=0; wait $pid || rc=$?; t1=$(date +%s%N)
[ $rc -eq 130 ] || fail "SIGINT during --perplexity: exit $rc"
[ $(( (t1 - t0) / 1000000 )) -lt 3000 ] || fail "SIGINT took $(( (t1 - t0) / 1000000 )) ms"
echo ok
