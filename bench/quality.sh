#!/usr/bin/env bash
# Perplexity of stories260K builds on wikitext-2 (512-token windows), with
# calibration on ../shared/data/text/sotu (128 windows of 512 tokens, seed 0),
# compile time and peak memory of each compile. Prints a Markdown table and
# writes it, with a comparison of the methods, to docs/quality.md.
# Usage: [JOBS=2] [ONLY=REGEX] [SEED=0] bench/quality.sh [BUILD_DIR]   (45 builds: about an hour on
# 2 cores with JOBS=2, which runs two builds side by side, single-threaded)
set -euo pipefail
cd "$(dirname "$0")/.."
B=${1:-build}
QCC=$B/qcc
DATA=../shared/data
M=$DATA/stories260K
TEXT=$DATA/text/wikitext2_test_gptq_joined.txt
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
SEED=${SEED:-0}
CAL="--calib $DATA/text/sotu --calib-samples 128 --calib-seqlen 512 --seed $SEED"
configs=(
  "f32|--bits 32"
  "f16|--bits 16"
  "SmoothQuant W8A8|--method smoothquant --alpha 0.5 $CAL"
)
for b in 8 4 3 2; do
  for gs in "per-channel|-1" "g32|32"; do
    gn=${gs%%|*} gv=${gs#*|}
    configs+=("RTN $b-bit $gn|--bits $b --group-size $gv --method rtn"
              "GPTQ $b-bit $gn|--bits $b --group-size $gv $CAL"
              "GPTQ $b-bit $gn act-order|--bits $b --group-size $gv --act-order $CAL"
              "AWQ $b-bit $gn|--bits $b --group-size $gv --method awq $CAL"
              "AWQ+GPTQ $b-bit $gn|--bits $b --group-size $gv --method awq+gptq $CAL")
  done
done
# The reference's own calibration windows (bench/ref_windows.py: Python's
# random.seed(0) over the tokenized sotu text, as the GPTQ authors' scripts
# draw them): the same GPTQ builds without our sampler's spread.
python3 bench/ref_windows.py "$M/tokenizer.json" "$DATA/text/sotu" "$W/ref.i32" 2> /dev/null
RW="--calib-tokens $W/ref.i32 --calib-seqlen 512"
for r in "4-bit per-channel|--bits 4 --group-size -1" "3-bit per-channel|--bits 3 --group-size -1" \
         "4-bit g32|--bits 4 --group-size 32" "3-bit g32|--bits 3 --group-size 32" \
         "3-bit g32 act-order|--bits 3 --group-size 32 --act-order"; do
  configs+=("GPTQ ${r%%|*}, reference windows|${r#*|} $RW")
done
# Self-calibration (no --calib: 128 x 512 tokens the f32 model samples itself).
configs+=("GPTQ 4-bit per-channel self-calibrated|--bits 4 --group-size -1 --calib-samples 128 --calib-seqlen 512 --seed 0"
          "GPTQ 3-bit g32 self-calibrated|--bits 3 --group-size 32 --calib-samples 128 --calib-seqlen 512 --seed 0")
# ONLY=REGEX runs just the builds whose name matches (and leaves docs/ alone).
if [ -n "${ONLY:-}" ]; then
  keep=()
  for c in "${configs[@]}"; do [[ ${c%%|*} =~ $ONLY ]] && keep+=("$c"); done
  configs=("${keep[@]}")
fi
ref() { case "$1" in
  f32|f16) echo 122.334;; "RTN 4-bit per-channel") echo 131.57;; "GPTQ 4-bit per-channel") echo 123.46;;
  "RTN 3-bit per-channel") echo 245.70;; "GPTQ 3-bit per-channel") echo 182.34;; "RTN 4-bit g32") echo 139.56;;
  "GPTQ 4-bit g32") echo 129.33;; "RTN 3-bit g32") echo 197.00;; "GPTQ 3-bit g32") echo 148.57;;
  "GPTQ 3-bit g32 act-order") echo 146.59;;
  *", reference windows") ref "${1%, reference windows}";; *) echo "";; esac; }
# One build and its perplexity: writes "ppl secs kib bytes" to $W/$1.res.
# With JOBS > 1 every compile and run is single-threaded (-j 1, -t 1).
one() {
  local i=$1 flags=${configs[$1]#*|} th=()
  [ "$JOBS" -gt 1 ] && th=(-j 1)
  # shellcheck disable=SC2086
  /usr/bin/time -f "%e %M" -o "$W/$i.time" $QCC $M $flags "${th[@]}" --quiet -o "$W/$i.bin"
  local rt=() ppl
  [ "$JOBS" -gt 1 ] && rt=(-t 1)
  ppl=$("$W/$i.bin" --perplexity "$TEXT" -c 512 "${rt[@]}" | awk '/^perplexity:/ {print $2}')
  echo "$ppl $(cat "$W/$i.time") $(stat -c %s "$W/$i.bin")" > "$W/$i.res"
  rm -f "$W/$i.bin"
}
JOBS=${JOBS:-1}
for i in "${!configs[@]}"; do
  while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do wait -n; done
  one "$i" &
done
wait
declare -A P
out="| build | qcc ppl | reference ppl | qcc vs ref | vs f32 | compile s | compile peak MiB | size KiB |
|---|---|---|---|---|---|---|---|"
for i in "${!configs[@]}"; do
  name=${configs[$i]%%|*}
  [ -s "$W/$i.res" ] || { echo "quality.sh: $name: no result" >&2; exit 1; }
  read -r ppl secs kib bytes < "$W/$i.res"
  P[$name]=$ppl
  r=$(ref "$name")
  rel=$([ -n "$r" ] && awk -v a="$ppl" -v b="$r" 'BEGIN { printf "%+.2f%%", (a - b) / b * 100 }' || echo "")
  vf=$([ -n "${P[f32]:-}" ] && [ "$name" != f32 ] && awk -v a="$ppl" -v b="${P[f32]}" 'BEGIN { printf "%+.2f%%", (a - b) / b * 100 }' || echo "")
  line="| $name | $ppl | ${r:--} | ${rel:--} | ${vf:--} | $secs | $((kib / 1024)) | $((bytes / 1024)) |"
  echo "$line"
  out="$out
$line"
done
[ -z "${ONLY:-}" ] || exit 0
# Per bits and group size: the methods side by side, and whether AWQ+GPTQ
# beats the better of AWQ and GPTQ alone.
pct() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%+.1f%%", (a - b) / b * 100 }'; }
cmpt="| bits, group | RTN | GPTQ | GPTQ act-order | AWQ | AWQ+GPTQ | best | AWQ+GPTQ vs better of AWQ, GPTQ |
|---|---|---|---|---|---|---|---|"
for s in {8,4,3,2}-bit\ {per-channel,g32}; do
  r=${P["RTN $s"]} g=${P["GPTQ $s"]} go=${P["GPTQ $s act-order"]} a=${P["AWQ $s"]} ag=${P["AWQ+GPTQ $s"]}
  best=$(printf 'RTN %s\nGPTQ %s\nGPTQ-act-order %s\nAWQ %s\nAWQ+GPTQ %s\n' "$r" "$g" "$go" "$a" "$ag" |
         sort -g -k2 | head -1 | cut -d' ' -f1)
  better=$(awk -v a="$a" -v g="$g" 'BEGIN { print (a < g ? a : g) }')
  cmpt="$cmpt
| $s | $r | $g | $go | $a | $ag | $best | $(pct "$ag" "$better") |"
done
{
  echo "# Quality: stories260K on wikitext-2"
  echo
  echo "Reproduce: \`bench/quality.sh\` (after \`make\`). Perplexity over non-overlapping 512-token"
  echo "windows of \`wikitext2_test_gptq_joined.txt\` (815,070 tokens); GPTQ, AWQ and SmoothQuant"
  echo "calibrate on 128 random 512-token windows of \`text/sotu/*.txt\` (seed 0); damp 0.01,"
  echo "asymmetric grid. Reference numbers: the GPTQ authors' implementation on the same model and"
  echo "protocol (../shared/data/README.md); its calibration windows differ from ours, so a few"
  echo "percent of spread is expected. Embeddings and the (tied) LM head stay f16 in every"
  echo "quantized build."
  echo
  echo "$out"
  echo
  echo "Rows marked *reference windows* calibrate on the reference's own draw of windows"
  echo "(\`bench/ref_windows.py\`: Python \`random.seed(0)\`, \`randint(0, n - 513)\` over the tokenized"
  echo "sotu text, passed with \`--calib-tokens\`), so they compare the algorithm alone; the other"
  echo "GPTQ rows use qcc's own seeded draw (\`--seed 0\`). Which 128 windows are drawn moves these"
  echo "perplexities by several percent on a model this small: \`SEED=1 ONLY='^GPTQ' bench/quality.sh\`"
  echo "reruns the GPTQ rows with another draw. GPTQ act-order here uses static groups (the group"
  echo "of column k stays k / g, so the runtime needs no index table), as the issue asks; the"
  echo "reference's act-order number regroups columns in activation order, which needs one."
  echo
  echo "## Methods side by side"
  echo
  echo "$cmpt"
  echo
  echo "SmoothQuant W8A8 (int8 weights per channel, int8 activations per token, alpha 0.5):"
  echo "${P["SmoothQuant W8A8"]}, $(pct "${P["SmoothQuant W8A8"]}" "${P[f32]}") against f32 (${P[f32]});"
  echo "weight-only RTN 8-bit per-channel: ${P["RTN 8-bit per-channel"]} ($(pct "${P["RTN 8-bit per-channel"]}" "${P[f32]}"))."
  echo
  echo "What the methods are: AWQ (\`--method awq\`) searches per-input-channel scales"
  echo "\`s = mean|x|^a\` (a on a grid of 20) for each group of linears sharing an input, folds"
  echo "\`1/s\` into the norm or the previous linear's rows, clips each weight group's range"
  echo "(ratios 1 .. 0.5, not for q/k) and rounds with RTN; AWQ+GPTQ keeps AWQ's scales and"
  echo "rounds with GPTQ on the rescaled weights and inputs, with or without AWQ's clipping,"
  echo "whichever gives the lower calibration error per linear. All errors are measured"
  echo "through the Hessian of the calibration inputs (docs/formats.md)."
  echo "The last column of the table above answers whether combining them helps here:"
  echo "negative means AWQ+GPTQ is better than either alone."
  echo
  echo "## Calibrating without text"
  echo
  echo "Without \`--calib\`, qcc samples its calibration windows from the f32 model itself"
  echo "(temperature 1 from BOS, seeded). Against real text (sotu):"
  echo
  echo "| build | sotu | self-generated |"
  echo "|---|---|---|"
  echo "| GPTQ 4-bit per-channel | ${P["GPTQ 4-bit per-channel"]} | ${P["GPTQ 4-bit per-channel self-calibrated"]} |"
  echo "| GPTQ 3-bit g32 | ${P["GPTQ 3-bit g32"]} | ${P["GPTQ 3-bit g32 self-calibrated"]} |"
  echo
  echo "Times: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), JOBS=$JOBS"
  echo "builds side by side$([ "$JOBS" -gt 1 ] && echo ', each compile and perplexity run single-threaded')."
  echo "Compile peak memory is the compiler's maximum resident set (\`/usr/bin/time\`)."
} > docs/quality.md
echo "wrote docs/quality.md"
