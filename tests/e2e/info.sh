#!/usr/bin/env bash
# --info prints each embedded section's size and xxh3-128, equal to hashes
# computed here from the file itself (see info.py). The default target, so
# a qcc with CUDA embeds device code and its archs and kernels are checked
# too; --target cpu checks the file without a CUDA section.
. "$(dirname "$0")/lib.sh"
compile s "$DATA/stories260K" --bits 32
python3 "$(dirname "$0")/info.py" "$T/s.bin" "$T"
compile c "$DATA/stories260K" --bits 16 --target cpu
python3 "$(dirname "$0")/info.py" "$T/c.bin" "$T"
