#!/usr/bin/env bash
# The executable needs nothing beside it: copied alone into an empty
# directory it runs, and ldd lists only the C library family.
. "$(dirname "$0")/lib.sh"
compile s "$DATA/stories260K" --bits 16
mkdir -p "$T/empty" && cp "$T/s.bin" "$T/empty/model.bin" && rm "$T/s.bin"
(cd "$T/empty" && env -i ./model.bin -n 8 --temp 0 > out.txt) || fail "run from an empty dir"
[ -s "$T/empty/out.txt" ] || fail "no output"
ldd "$T/empty/model.bin" | awk '{print $1}' > "$T/libs.txt"
if grep -vE '^(linux-vdso\.so\.1|libc\.so\.6|libm\.so\.6|libpthread\.so\.0|libdl\.so\.2|/lib64/ld-linux-x86-64\.so\.2|ld-linux-x86-64\.so\.2)$' "$T/libs.txt"; then
  fail "unexpected shared libraries (above)"
fi
"$T/empty/model.bin" --info > "$T/info.json"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["architecture"]=="llama" and d["bits"]==16 and d["parameters"]>0 and len(d["weights_xxh3_128"])==32, d' "$T/info.json" || fail "--info"
echo ok
