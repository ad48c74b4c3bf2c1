#!/usr/bin/env bash
# Every bad input in tests/bad/cases.txt makes qcc print exactly one line
# naming the file and the problem, exit with status 1, and leave no output
# file and no temporary behind. The good tiny models compile and run.
set -uo pipefail
: "${QCC:?}" "${SCRATCH:?}"
here=$(cd "$(dirname "$0")" && pwd)
T="$SCRATCH/bad" && rm -rf "$T" && mkdir -p "$T"
fails=0
while IFS=$'\t' read -r case want; do
  [ -n "$case" ] || continue
  out="$T/out.bin"
  "$QCC" "$here/files/$case" -o "$out" > "$T/stdout" 2> "$T/stderr"
  rc=$?
  lines=$(wc -l < "$T/stderr")
  msg=$(cat "$T/stderr")
  if [ $rc -ne 1 ]; then echo "FAIL $case: exit $rc (want 1): $msg"; fails=$((fails+1)); continue; fi
  if [ "$lines" -ne 1 ]; then echo "FAIL $case: $lines lines of stderr: $msg"; fails=$((fails+1)); continue; fi
  case "$msg" in *"$want"*) ;; *) echo "FAIL $case: message '$msg' lacks '$want'"; fails=$((fails+1)); continue;; esac
  case "$msg" in "qcc: error: "*/*": "*) ;; *) echo "FAIL $case: message does not name a file: $msg"; fails=$((fails+1)); continue;; esac
  if [ -n "$(ls -A "$T" | grep -vE '^(stdout|stderr)$')" ]; then
    echo "FAIL $case: left behind: $(ls -A "$T")"; fails=$((fails+1)); rm -rf "$T"/out.bin*; continue
  fi
  echo "ok   $case: $msg"
done < "$here/cases.txt"
# Bad options.
for opts in "--bits 5" "--emit wasm" "--frobnicate" "-o" "--gemv-warps 3" "--gemv-warps 8x"; do
  "$QCC" "$here/files/ok_tiny" $opts -o "$T/o.bin" 2> "$T/stderr"; rc=$?
  if [ $rc -ne 1 ] || [ -e "$T/o.bin" ] || [ "$(wc -l < "$T/stderr")" -ne 1 ]; then
    echo "FAIL options '$opts': exit $rc: $(cat "$T/stderr")"; fails=$((fails+1)); fi
done
"$QCC" > /dev/null 2>&1 && { echo "FAIL: no MODEL accepted"; fails=$((fails+1)); }
# The good path: both tiny models compile and generate.
for ok in ok_tiny ok_tiny_sharded; do
  if "$QCC" "$here/files/$ok" --bits 32 --quiet -o "$T/$ok.bin" && "$T/$ok.bin" -n 4 --temp 0 > "$T/$ok.txt"; then
    echo "ok   $ok compiles and runs"
  else
    echo "FAIL $ok"; fails=$((fails+1))
  fi
done
[ $fails -eq 0 ] || { echo "$fails failures"; exit 1; }
