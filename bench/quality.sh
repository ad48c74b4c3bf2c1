#!/usr/bin/env bash
# Perplexity of stories260K builds on wikitext-2 (512-token windows), with
# calibration on ../shared/data/text/sotu (128 windows of 512 tokens, seed 0),
# compile time and peak memory of each compile. Prints a Markdown table and
# writes it to docs/quality.md. Usage: bench/quality.sh [BUILD_DIR]
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
  "RTN 4-bit per-channel|--bits 4 --method rtn --group-size -1"
  "GPTQ 4-bit per-channel|--bits 4 --group-size -1 $CAL"
  "RTN 3-bit per-channel|--bits 3 --method rtn --group-size -1"
  "GPTQ 3-bit per-channel|--bits 3 --group-size -1 $CAL"
  "RTN 4-bit g32|--bits 4 --method rtn --group-size 32"
  "GPTQ 4-bit g32|--bits 4 --group-size 32 $CAL"
  "RTN 3-bit g32|--bits 3 --method rtn --group-size 32"
  "GPTQ 3-bit g32|--bits 3 --group-size 32 $CAL"
  "GPTQ 3-bit g32 act-order|--bits 3 --group-size 32 --act-order $CAL"
)
ref() { case "$1" in
  f32|f16) echo 122.334;; "RTN 4-bit per-channel") echo 131.57;; "GPTQ 4-bit per-channel") echo 123.46;;
  "RTN 3-bit per-channel") echo 245.70;; "GPTQ 3-bit per-channel") echo 182.34;; "RTN 4-bit g32") echo 139.56;;
  "GPTQ 4-bit g32") echo 129.33;; "RTN 3-bit g32") echo 197.00;; "GPTQ 3-bit g32") echo 148.57;;
  "GPTQ 3-bit g32 act-order") echo 146.59;; *) echo "";; esac; }
out="| build | qcc ppl | reference ppl | qcc vs ref | compile s | compile peak MiB | size KiB |
|---|---|---|---|---|---|---|"
for c in "${configs[@]}"; do
  name=${c%%|*} flags=${c#*|}
  /usr/bin/time -f "%e %M" -o "$W/time" $QCC $M $flags --quiet -o "$W/m.bin"
  read -r secs kib < "$W/time"
  ppl=$("$W/m.bin" --perplexity "$TEXT" -c 512 | awk '/^perplexity:/ {print $2}')
  r=$(ref "$name")
  rel=$([ -n "$r" ] && awk -v a="$ppl" -v b="$r" 'BEGIN { printf "%+.2f%%", (a - b) / b * 100 }' || echo "")
  line="| $name | $ppl | ${r:--} | ${rel:--} | $secs | $((kib / 1024)) | $(( $(stat -c %s "$W/m.bin") / 1024 )) |"
  echo "$line"
  out="$out
$line"
done
{
  echo "# Quality: stories260K on wikitext-2"
  echo
  echo "Reproduce: \`bench/quality.sh\` (after \`make\`). Perplexity over non-overlapping 512-token"
  echo "windows of \`wikitext2_test_gptq_joined.txt\` (815,070 tokens); GPTQ calibrates on 128 random"
  echo "512-token windows of \`text/sotu/*.txt\` (seed 0), damp 0.01, asymmetric grid. Reference"
  echo "numbers: the GPTQ authors' implementation on the same model and protocol (../shared/data/README.md);"
  echo "its calibration windows differ from ours, so a few percent of spread is expected."
  echo "Embeddings and the (tied) LM head stay f16 in every quantized build."
  echo
  echo "$out"
} > docs/quality.md
echo "wrote docs/quality.md"
