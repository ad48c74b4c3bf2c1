#!/usr/bin/env bash
# Side-by-side decode (or prefill) throughput of qcc executables: every
# variant once per round, rounds interleaved, so that each comparison is made
# on one machine in one sitting (a device call gets a fresh machine;
# bench/NOTES-gemv.md, session 10, shows ~1% between machines, less within
# one). Prints one markdown table: tok/s per round, the median, and the
# ratio of the median to the first variant's.
#
#   bench/ab.sh [-r ROUNDS] VARIANT...
#
# VARIANT: "EXE" or "EXE|OPTIONS" or "EXE|OPTIONS|ENV", e.g.
#   bench/ab.sh carry/e2e/llama-2-7b-4.bin "carry/e2e/llama-2-7b-4.bin|--cache-type f16"
#   bench/ab.sh "old/l4.bin" "new/l4.bin" "new/l4.bin||QRT_SOMETHING=1"
# OPTIONS go to the executable after --bench --prompt-len PROMPT --gen GEN -c CTX (env: PROMPT 128,
# GEN 128, CTX 1024; the executable reports the median of 5 repetitions itself); METRIC=prefill compares
# the prompt's tok/s instead of decode's, e.g.
#   METRIC=prefill PROMPT=64 GEN=4 bench/ab.sh X.bin "X.bin|--fused-gemm-max 0"
# ENV is a space-separated
# list of NAME=VALUE set for that run only. An executable that fails, or that ran on the CPU (unless
# CPU_OK=1: testing the script), stops the script with its error.
set -euo pipefail
rounds=2
if [ "${1:-}" = "-r" ]; then rounds=${2:?}; shift 2; fi
[ "$#" -ge 1 ] || { echo "usage: bench/ab.sh [-r ROUNDS] EXE[|OPTIONS[|ENV]]..." >&2; exit 2; }
case "$rounds" in '' | *[!0-9]* | 0) echo "ab.sh: -r $rounds: expected a positive count" >&2; exit 2 ;; esac
PROMPT=${PROMPT:-128} GEN=${GEN:-128} CTX=${CTX:-1024} METRIC=${METRIC:-decode}
case "$METRIC" in decode | prefill) ;; *) echo "ab.sh: METRIC=$METRIC: expected decode or prefill" >&2; exit 2 ;; esac
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
n=$#
for r in $(seq 1 "$rounds"); do
  i=0
  for v in "$@"; do
    i=$((i + 1))
    IFS='|' read -r exe opts envs <<< "$v"
    [ -x "$exe" ] || { echo "ab.sh: $exe: not an executable" >&2; exit 1; }
    # shellcheck disable=SC2086
    if ! env ${envs:-} "$exe" --bench --prompt-len "$PROMPT" --gen "$GEN" -c "$CTX" ${opts:-} \
        > "$tmp/out" 2> "$tmp/err"; then
      echo "ab.sh: variant $i ($v) failed: $(grep -v '^notice: dummy' "$tmp/err" | head -3)" >&2
      exit 1
    fi
    if [ -z "${CPU_OK:-}" ] && grep -q '| cpu |' "$tmp/out"; then
      echo "ab.sh: variant $i ($v) ran on the CPU: $(head -3 "$tmp/err")" >&2
      exit 1
    fi
    tg=$(awk -F'|' -v m="$METRIC" '$3 ~ m { gsub(/ /, "", $4); print $4 }' "$tmp/out")
    [ -n "$tg" ] || { echo "ab.sh: variant $i ($v): no $METRIC row in --bench's output" >&2; exit 1; }
    echo "$tg" >> "$tmp/v$i"
  done
done
{
  printf '| # | variant |'
  for r in $(seq 1 "$rounds"); do printf ' round %d |' "$r"; done
  printf ' median | / #1 |\n|---|---|'
  for r in $(seq 1 "$rounds"); do printf -- '---|'; done
  printf -- '---|---|\n'
}
base=
for i in $(seq 1 "$n"); do
  v=${!i}
  med=$(sort -n "$tmp/v$i" | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }')
  [ -n "$base" ] || base=$med
  # shellcheck disable=SC2016 # (backticks: markdown code)
  printf '| %d | `%s` |' "$i" "${v//|/\\|}"
  while read -r x; do printf ' %s |' "$x"; done < "$tmp/v$i"
  awk -v m="$med" -v b="$base" 'BEGIN { printf " %.1f | %.3f |\n", m, m / b }'
done
echo
echo "batch 1, --bench --prompt-len $PROMPT --gen $GEN -c $CTX, $METRIC tok/s; $rounds rounds, variants interleaved."
