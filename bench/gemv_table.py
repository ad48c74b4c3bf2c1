#!/usr/bin/env python3
"""bench/gemv_table.py BENCH_OUTPUT: the table of docs/performance.md from
bench/gpu.sh's output (one row per shape and format; 1 row in full, 2, 4
and 8 rows as microseconds and speedup over cuBLAS f16)."""
import sys

rows = {}  # (shape, format) -> {batch: fields}
order = []
for line in open(sys.argv[1]):
    f = [c.strip() for c in line.strip().strip("|").split("|")]
    if len(f) != 11 or " x " not in f[0] or not f[2].isdigit() or f[3] not in ("0", "GemmEx"):
        continue
    key = (f[0], f[1])
    if key not in rows:
        rows[key] = {}
        order.append(key)
    rows[key][int(f[2])] = f

print("| K x N | format | 1 row: us | GB/s | % of copy | x cuBLAS | no PDL us |"
      " 2 rows: us | x cuBLAS | 4 rows: us | x cuBLAS | 8 rows: us | x cuBLAS |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
for key in order:
    r = rows[key]
    one = r.get(1)
    cells = [key[0], key[1]]
    if one:
        cells += [one[4], one[5], one[6], one[7], "" if one[3] == "GemmEx" else one[10]]
    else:
        cells += ["", "", "", "", ""]
    for b in (2, 4, 8):
        x = r.get(b)
        cells += [x[4], x[7]] if x else ["", ""]
    print("| " + " | ".join(cells) + " |")
