#!/usr/bin/env python3
"""Flipping any single byte of an embedded section (weights, tokenizer, info,
or a section's hash trailer) makes the executable refuse to run, with one
clear line and exit status 1. Usage: integrity.py EXE SCRATCH_DIR"""
import os, random, subprocess, sys

from elfsyms import qm_symbols

exe, scratch = sys.argv[1], sys.argv[2]
syms, _off = qm_symbols(exe)


def off(addr):
    o = _off(addr)
    if o is None:
        sys.exit(f"FAIL: address {addr:#x} in no section")
    return o

data = bytearray(open(exe, "rb").read())
rng = random.Random(1)
path = os.path.join(scratch, "flipped.bin")
tried = 0
for sec in ("weights", "tokenizer", "info"):
    lo, hi = off(syms[f"qm_{sec}_start"]), off(syms[f"qm_{sec}_end"] - 1) + 1
    picks = {lo, hi - 1, hi - 16, hi - 17} | {rng.randrange(lo, hi) for _ in range(6 if sec != "weights" else 20)}
    for p in sorted(picks):
        d = bytearray(data)
        d[p] ^= 1 << rng.randrange(8)
        with open(path, "wb") as f:
            f.write(d)
        os.chmod(path, 0o755)
        r = subprocess.run([path, "-n", "4", "--temp", "0"], capture_output=True, text=True)
        if r.returncode != 1 or "corrupted" not in r.stderr or r.stderr.count("\n") != 1 or r.stdout:
            sys.exit(f"FAIL: flip at {p:#x} ({sec}): rc={r.returncode} stderr={r.stderr!r} stdout={r.stdout[:80]!r}")
        tried += 1
# the untouched file still runs
r = subprocess.run([exe, "-n", "4", "--temp", "0"], capture_output=True, text=True)
if r.returncode != 0:
    sys.exit(f"FAIL: intact file: {r.stderr}")
print(f"ok: {tried} single-bit flips refused")
