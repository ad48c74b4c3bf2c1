#!/usr/bin/env bash
# A damaged executable refuses to run (see integrity.py).
. "$(dirname "$0")/lib.sh"
compile s "$DATA/stories260K" --bits 16
python3 "$(dirname "$0")/integrity.py" "$T/s.bin" "$T"
