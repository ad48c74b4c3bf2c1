#!/usr/bin/env bash
# One decode step of an executable on the GPU: the per-token time as run
# (graph replay with programmatic dependent launch, the default; and without
# each) against the sum of the times of the kernels the step launches, each
# timed on its own by Nsight Compute (gpu__time_duration; clocks and caches
# left alone). A per-token time well above the kernel sum means the step is
# launch-bound; near it, kernel-bound.
#   bench/step.sh EXE [NA NB]     NA < NB: generated-token counts of the two
#                                 profiled runs (default 8, 24); their
#                                 difference is NB - NA decode steps
# Needs a GPU and ncu (PATH or /opt/nvidia/nsight-compute/*/ncu). Prints
# markdown tables. CTX (default 1024): the context size (-c) of every run,
# as bench/e2e.sh uses; ARGS: more options for every run (e.g. --no-fuse-norm).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
exe=$1
na=${2:-8}
nb=${3:-24}
ncu=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu 2> /dev/null | head -1 || true)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "| launch mode | decode tok/s | us per token |"
echo "|---|---|---|"
for mode in "" "--no-pdl" "--no-cuda-graph" "--no-cuda-graph --no-pdl"; do
  # shellcheck disable=SC2086
  "$exe" --device cuda --bench --prompt-len 128 --gen 128 -c "${CTX:-1024}" $mode ${ARGS:-} > "$tmp/b.out" 2> "$tmp/b.err" ||
    { cat "$tmp/b.err" >&2; exit 1; }
  grep -q '| cpu |' "$tmp/b.out" && { echo "step.sh: ran on the CPU: $(cat "$tmp/b.err")" >&2; exit 1; }
  tg=$(awk -F'|' '/decode/ { gsub(/ /, "", $4); print $4 }' "$tmp/b.out")
  awk -v m="${mode:-graph + PDL (default)}" -v tg="$tg" 'BEGIN { printf "| %s | %.1f | %.2f |\n", m, tg, 1e6 / tg }'
done
[ -n "$ncu" ] || { echo "step.sh: no ncu: kernel sum skipped" >&2; exit 0; }
for n in "$na" "$nb"; do
  # shellcheck disable=SC2086
  "$ncu" --csv --clock-control none --cache-control none --metrics gpu__time_duration.sum \
    "$exe" --device cuda -p "Once upon a time" -n "$n" --temp 0 -c "${CTX:-1024}" --no-cuda-graph --no-pdl ${ARGS:-} \
    > "$tmp/k$n.csv" 2> "$tmp/k$n.err" ||
    { tail -5 "$tmp/k$n.err" >&2; exit 1; }
done
echo
python3 "$root/bench/kernel_sum.py" "$tmp/k$na.csv" "$na" "$tmp/k$nb.csv" "$nb"
