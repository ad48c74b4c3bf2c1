#!/usr/bin/env bash
# Two compiles of the same inputs are byte-identical, whatever the output
# name, the working directory, -j or the OpenBLAS thread count.
. "$(dirname "$0")/lib.sh"
compile a "$DATA/stories260K" --bits 16 -j 1
mkdir -p "$T/other" && (cd "$T/other" && OPENBLAS_NUM_THREADS=1 "$QCC" "$DATA/stories260K" --bits 16 -j 2 --quiet -o b.bin) || fail "second compile"
cmp "$T/a.bin" "$T/other/b.bin" || fail "builds differ"
compile c "$DATA/stories260K" --bits 32
cmp -s "$T/a.bin" "$T/c.bin" && fail "f16 and f32 builds are identical"
ls -A "$T" | grep -q qcc- && fail "temporary files left behind"
echo ok
