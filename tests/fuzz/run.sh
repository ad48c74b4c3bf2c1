#!/usr/bin/env bash
# tests/fuzz/run.sh — runs the libFuzzer targets of a QC_FUZZ build
# (what `make fuzz` calls; docs/fuzzing.md).
#
#   run.sh BUILD SECONDS [TARGET...]   fuzz each TARGET (default: all built)
#                                       for SECONDS; fails if one crashed
#   run.sh merge BUILD [TARGET...]      minimize BUILD's work corpus into the
#                                       committed tests/fuzz/corpus/TARGET
#                                       (FUZZ_WORK=DIR: another build's fuzz-work;
#                                       FUZZ_MERGE_MAX: largest input taken, 4096)
#
# Each target fuzzes a work corpus BUILD/fuzz-work/TARGET/corpus: a copy of
# the committed corpus plus whatever earlier runs found (kept between runs).
# Crashes, timeouts (-timeout, seconds per input) and OOMs land in
# BUILD/fuzz-work/TARGET/ as crash-*, timeout-*, oom-*, the log in run.log.
# FUZZ_PARALLEL=N runs N targets at once (default 1); FUZZ_ARGS adds libFuzzer
# flags. Nothing found here goes into the committed corpus without `merge`:
# a fuzzing run that changed tests/fuzz/corpus fails.
set -uo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ALL="json safetensors config tokenizer_json tok_blob prompt gguf"

# libFuzzer dictionary for a target (written into its work dir).
dict() {
  local t=$1 out=$2
  case $t in
    json|config) cp "$HERE/json.dict" "$out" ;;
    safetensors) { cat "$HERE/json.dict"; echo '"\x0a@@shard@@\x0a"'; } > "$out" ;;
    tokenizer_json) { cat "$HERE/json.dict"; echo '"\x0a@@tokenizer_config.json@@\x0a"'; } > "$out" ;;
    tok_blob) printf '"QTOK"\n"\\x01\\x00\\x00\\x00"\n"\\x40\\x00\\x00\\x00"\n"\\xff\\xff\\xff\\xff"\n' > "$out" ;;
    prompt) printf '"<s>"\n"</s>"\n"<unk>"\n"<|endoftext|>"\n"<|im_start|>"\n"<|im_end|>"\n"<tool>"\n"\\xe2\\x96\\x81"\n"\\xc4\\xa0"\n"\\xc2\\xa0"\n"\\xf0\\x9f\\x98\\x80"\n"\\x0d\\x0a"\n"\x27s"\n"\x27ll"\n' > "$out" ;;
    *) return 1 ;;
  esac
}

# Fingerprint of the committed corpora (names and bytes).
corpus_sum() {
  (cd "$HERE/corpus" && find . -type f -print0 | sort -z | xargs -0 sha1sum) | sha1sum
}

targets() {
  local b=$1; shift
  local list="${*:-$ALL}" t
  for t in $list; do
    if [ -x "$b/tests/fuzz_$t" ]; then echo "$t"
    elif [ $# -gt 0 ]; then echo "run.sh: $b/tests/fuzz_$t not built" >&2; exit 2
    fi
  done
}

fuzz_one() {
  local b=$1 s=$2 t=$3 w="$1/fuzz-work/$3"
  mkdir -p "$w/corpus"
  cp -n "$HERE/corpus/$t/"* "$w/corpus/" 2>/dev/null
  local d=()
  dict "$t" "$w/dict" && d=(-dict="$w/dict")
  local start=$SECONDS t0
  t0=$(date +%s.%N)
  "$b/tests/fuzz_$t" -max_total_time="$s" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$w/" "${d[@]}" ${FUZZ_ARGS:-} "$w/corpus" > "$w/run.log" 2>&1
  local rc=$?
  local stats
  stats=$(grep -E '^(stat::number_of_executed_units|stat::peak_rss_mb)' "$w/run.log" | tr '\n' ' ')
  if [ $rc -ne 0 ]; then
    # the inputs this run saved (those of earlier runs may lie beside them)
    echo "fuzz_$t: FAILED after $((SECONDS - start)) s (rc $rc):" $(find "$w" -maxdepth 1 -newermt "@$t0" \
      -regextype egrep -regex '.*/(crash|timeout|oom|leak|slow-unit)-.*' -printf '%f\n')
    grep -E 'ERROR|SUMMARY|check failed|runtime error|^    #[0-9]+ .* in ' "$w/run.log" |
      grep -vE 'fuzzer::|__sanitizer|libc|_start|raise|abort|pthread_kill|CrashCallback' | head -16
    echo "  log: $w/run.log"
    return 1
  fi
  echo "fuzz_$t: ok, $((SECONDS - start)) s, corpus $(ls "$w/corpus" | wc -l) files, $stats"
}

main() {
  if [ "${1:-}" = merge ]; then
    # The seeds (seed_*) and regression inputs (regress_*: fixed findings)
    # stay; everything else is replaced by the smallest set of inputs
    # (-set_cover_merge) that adds to their coverage, taken from the old
    # committed corpus and the work corpus. Inputs that crash are left out.
    b=$2; shift 2
    for t in $(targets "$b" "$@"); do
      w="${FUZZ_WORK:-$b/fuzz-work}/$t"
      [ -d "$w/corpus" ] || { echo "merge: no work corpus $w/corpus"; continue; }
      before=$(ls "$HERE/corpus/$t" | wc -l)
      rm -rf "$w/merged" "$w/small" && mkdir -p "$w/merged" "$w/small" && cp "$HERE/corpus/$t/"seed_* "$w/merged/" &&
      { cp "$HERE/corpus/$t/"regress_* "$w/merged/" 2>/dev/null || true; }
      # candidates: found inputs up to FUZZ_MERGE_MAX bytes (the corpus stays small)
      for src in "$HERE/corpus/$t" "$w/corpus"; do # (same name = same bytes: sha1)
        find "$src" -type f ! -name 'seed_*' ! -name 'regress_*' -size -"$((${FUZZ_MERGE_MAX:-4096} + 1))"c -exec cp -n -t "$w/small" {} +
      done
      "$b/tests/fuzz_$t" -set_cover_merge=1 -timeout=10 -rss_limit_mb=2048 "$w/merged" "$w/small" \
        > "$w/merge.log" 2>&1 || { echo "merge of $t failed: $w/merge.log"; exit 1; }
      find "$HERE/corpus/$t" -type f ! -name 'seed_*' ! -name 'regress_*' -delete
      cp "$w/merged/"* "$HERE/corpus/$t/"
      n=$(ls "$HERE/corpus/$t" | wc -l)
      echo "merge $t: $before -> $n files, $(du -sh --apparent-size "$HERE/corpus/$t" | cut -f1)"
      [ "$n" -le 300 ] || echo "merge $t: more than 300 files; consider a smaller -max_len"
    done
    return 0
  fi

  [ $# -ge 2 ] || { sed -n '2,17p' "$0"; exit 2; }
  b=$1 s=$2; shift 2
  ts=$(targets "$b" "$@") || exit 2
  [ -n "$ts" ] || { echo "run.sh: no fuzz targets in $b (configure with -DQC_FUZZ=ON)"; exit 2; }
  par=${FUZZ_PARALLEL:-1}
  fail=0 running=0 sum=$(corpus_sum) start=$SECONDS
  for t in $ts; do
    fuzz_one "$b" "$s" "$t" & running=$((running + 1))
    if [ "$running" -ge "$par" ]; then wait -n || fail=1; running=$((running - 1)); fi
  done
  while [ "$running" -gt 0 ]; do wait -n || fail=1; running=$((running - 1)); done
  if [ "$(corpus_sum)" != "$sum" ]; then
    echo "run.sh: tests/fuzz/corpus changed during the run (fuzzing must only read it)"
    fail=1
  fi
  echo "run.sh: $(echo $ts | wc -w) targets, ${s} s each, $par at a time: $((SECONDS - start)) s, $([ $fail = 0 ] && echo ok || echo FAILED)"
  exit $fail
}

# One line: bash has parsed everything above before it runs, so editing this
# file while it fuzzes does not break the run.
main "$@"; exit $?
