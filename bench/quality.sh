#!/usr/bin/env bash
# Perplexity of stories260K builds on wikitext-2 (512-token windows), with
# calibration on ../shared/data/text/sotu (128 windows of 512 tokens, seed 0),
# compile time and peak memory of each compile. Prints a Markdown table and
# writes it, with a comparison of the methods, to docs/quality.md.
# Usage: bench/quality.sh [BUILD_DIR]     (takes a while: ~27 builds)
set -euo pipefail
cd "$(dirname "$0")/.."
B=${1:-build}
QCC=$B/qcc
DATA=../shared/data
M=$DATA/stories260K
TEXT=$DATA/text/wikitext2_test_gptq_joined.txt
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
CAL="--calib $DATA/text/sotu --calib-samples 128 --calib-seqlen 512 --seed 0"
configs=(
  "f32|--bits 32"
  "f16|--bits 16"
  "RTN 8-bit g128|--bits 8 --method rtn"
  "RTN 8-bit per-channel|--bits 8 --method rtn --group-size -1"
  "GPTQ 8-bit per-channel|--bits 8 --group-size -1 $CAL"
  "SmoothQuant W8A8|--method smoothquant --alpha 0.5 $CAL"
  "RTN 4-bit per-channel|--bits 4 --method rtn --group-size -1"
  "GPTQ 4-bit per-channel|--bits 4 --group-size -1 $CAL"
  "AWQ 4-bit per-channel|--bits 4 --group-size -1 --method awq $CAL"
  "AWQ+GPTQ 4-bit per-channel|--bits 4 --group-size -1 --method awq+gptq $CAL"
  "RTN 3-bit per-channel|--bits 3 --method rtn --group-size -1"
  "GPTQ 3-bit per-channel|--bits 3 --group-size -1 $CAL"
  "AWQ 3-bit per-channel|--bits 3 --group-size -1 --method awq $CAL"
  "AWQ+GPTQ 3-bit per-channel|--bits 3 --group-size -1 --method awq+gptq $CAL"
  "RTN 4-bit g32|--bits 4 --method rtn --group-size 32"
  "GPTQ 4-bit g32|--bits 4 --group-size 32 $CAL"
  "AWQ 4-bit g32|--bits 4 --group-size 32 --method awq $CAL"
  "AWQ+GPTQ 4-bit g32|--bits 4 --group-size 32 --method awq+gptq $CAL"
  "RTN 3-bit g32|--bits 3 --method rtn --group-size 32"
  "GPTQ 3-bit g32|--bits 3 --group-size 32 $CAL"
  "GPTQ 3-bit g32 act-order|--bits 3 --group-size 32 --act-order $CAL"
  "AWQ 3-bit g32|--bits 3 --group-size 32 --method awq $CAL"
  "AWQ+GPTQ 3-bit g32|--bits 3 --group-size 32 --method awq+gptq $CAL"
  "RTN 2-bit g32|--bits 2 --method rtn --group-size 32"
  "GPTQ 2-bit g32|--bits 2 --group-size 32 $CAL"
  "AWQ 2-bit g32|--bits 2 --group-size 32 --method awq $CAL"
  "AWQ+GPTQ 2-bit g32|--bits 2 --group-size 32 --method awq+gptq $CAL"
)
ref() { case "$1" in
  f32|f16) echo 122.334;; "RTN 4-bit per-channel") echo 131.57;; "GPTQ 4-bit per-channel") echo 123.46;;
  "RTN 3-bit per-channel") echo 245.70;; "GPTQ 3-bit per-channel") echo 182.34;; "RTN 4-bit g32") echo 139.56;;
  "GPTQ 4-bit g32") echo 129.33;; "RTN 3-bit g32") echo 197.00;; "GPTQ 3-bit g32") echo 148.57;;
  "GPTQ 3-bit g32 act-order") echo 146.59;; *) echo "";; esac; }
declare -A P
out="| build | qcc ppl | reference ppl | qcc vs ref | compile s | compile peak MiB | size KiB |
|---|---|---|---|---|---|---|"
for c in "${configs[@]}"; do
  name=${c%%|*} flags=${c#*|}
  /usr/bin/time -f "%e %M" -o "$W/time" $QCC $M $flags --quiet -o "$W/m.bin"
  read -r secs kib < "$W/time"
  ppl=$("$W/m.bin" --perplexity "$TEXT" -c 512 | awk '/^perplexity:/ {print $2}')
  P[$name]=$ppl
  r=$(ref "$name")
  rel=$([ -n "$r" ] && awk -v a="$ppl" -v b="$r" 'BEGIN { printf "%+.2f%%", (a - b) / b * 100 }' || echo "")
  line="| $name | $ppl | ${r:--} | ${rel:--} | $secs | $((kib / 1024)) | $(( $(stat -c %s "$W/m.bin") / 1024 )) |"
  echo "$line"
  out="$out
$line"
done
# Per bits and group size: the methods side by side, and whether AWQ+GPTQ
# beats the better of AWQ and GPTQ alone.
pct() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%+.1f%%", (a - b) / b * 100 }'; }
cmpt="| bits, group | RTN | GPTQ | AWQ | AWQ+GPTQ | best | AWQ+GPTQ vs better of AWQ, GPTQ |
|---|---|---|---|---|---|---|"
for s in "4-bit per-channel" "3-bit per-channel" "4-bit g32" "3-bit g32" "2-bit g32"; do
  r=${P["RTN $s"]} g=${P["GPTQ $s"]} a=${P["AWQ $s"]} ag=${P["AWQ+GPTQ $s"]}
  best=$(printf 'RTN %s\nGPTQ %s\nAWQ %s\nAWQ+GPTQ %s\n' "$r" "$g" "$a" "$ag" | sort -g -k2 | head -1 | cut -d' ' -f1)
  better=$(awk -v a="$a" -v g="$g" 'BEGIN { print (a < g ? a : g) }')
  cmpt="$cmpt
| $s | $r | $g | $a | $ag | $best | $(pct "$ag" "$better") |"
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
  echo "clipping and rounds with GPTQ on the rescaled weights and inputs. Both errors are"
  echo "measured through the Hessian of the calibration inputs (docs/formats.md)."
  echo "The last column of the table above answers whether combining them helps here:"
  echo "negative means AWQ+GPTQ is better than either alone."
} > docs/quality.md
echo "wrote docs/quality.md"
