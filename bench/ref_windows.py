#!/usr/bin/env python3
"""Calibration windows drawn the way the GPTQ authors' scripts draw them, for
`qcc --calib-tokens` (bench/quality.sh, docs/quality.md).

The text of every *.txt in a directory, concatenated in file-name order, is
tokenized with the model's tokenizer.json (its post-processor adds BOS, as
`tokenizer(text)` does), then Python's `random.seed(SEED)` and, per window,
`i = random.randint(0, n - seqlen - 1)`, window = ids[i : i + seqlen].
Written as int32 little-endian, windows back to back.

    bench/ref_windows.py TOKENIZER_JSON TEXT_DIR OUT.i32 [--n 128] [--seqlen 512] [--seed 0]
"""
import argparse
import os
import random
import struct
import sys

from tokenizers import Tokenizer


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("tokenizer")
    ap.add_argument("text_dir")
    ap.add_argument("out")
    ap.add_argument("--n", type=int, default=128)
    ap.add_argument("--seqlen", type=int, default=512)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    names = sorted(f for f in os.listdir(a.text_dir) if f.endswith(".txt"))
    text = "".join(open(os.path.join(a.text_dir, f), encoding="utf-8").read() for f in names)
    ids = Tokenizer.from_file(a.tokenizer).encode(text).ids
    random.seed(a.seed)
    out = []
    for _ in range(a.n):
        i = random.randint(0, len(ids) - a.seqlen - 1)
        out.extend(ids[i:i + a.seqlen])
    with open(a.out, "wb") as f:
        f.write(struct.pack("<%di" % len(out), *out))
    print(f"{len(names)} files, {len(ids)} tokens, {a.n} windows of {a.seqlen} -> {a.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
