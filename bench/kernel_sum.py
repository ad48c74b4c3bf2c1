#!/usr/bin/env python3
"""Per-decode-step sum of kernel times from Nsight Compute CSV output.

    kernel_sum.py A.csv NA B.csv NB

A.csv and B.csv: `ncu --csv --metrics gpu__time_duration.sum` of the same
executable generating NA and NB tokens (NB > NA, same prompt, plain
launches). The difference of the two runs is (NB - NA) decode steps: the
prefill, the first step and start-up cancel out. Prints, per kernel name,
launches and microseconds per decode step, and the total: the sum of kernel
times of one decode step, each kernel timed on its own by the profiler.
"""
import collections
import csv
import sys

SCALE = {"nsecond": 1e-3, "ns": 1e-3, "usecond": 1.0, "us": 1.0, "msecond": 1e3, "ms": 1e3, "second": 1e6, "s": 1e6}


def load(path):
    lines = open(path, errors="replace").read().splitlines()
    start = next((i for i, l in enumerate(lines) if l.startswith('"ID"')), None)
    if start is None:
        sys.exit("kernel_sum.py: %s: no ncu CSV table (no line starting with \"ID\")" % path)
    tot, cnt = collections.Counter(), collections.Counter()
    for r in csv.DictReader(lines[start:]):
        if r.get("Metric Name") != "gpu__time_duration.sum":
            continue
        k = r["Kernel Name"].split("(")[0]
        if k.startswith("qk_gemv_") and "_k" in k:
            k = "qk_gemv_" + k.split("_")[2] + " (specialized)"
        tot[k] += float(r["Metric Value"].replace(",", "")) * SCALE.get(r["Metric Unit"], 1.0)
        cnt[k] += 1
    return tot, cnt


def main():
    if len(sys.argv) != 5:
        sys.exit(__doc__)
    (ta, ca), na = load(sys.argv[1]), int(sys.argv[2])
    (tb, cb), nb = load(sys.argv[3]), int(sys.argv[4])
    if nb <= na:
        sys.exit("kernel_sum.py: NB must exceed NA")
    steps = nb - na
    per = {k: (tb[k] - ta.get(k, 0.0)) / steps for k in tb}
    launches = {k: (cb[k] - ca.get(k, 0)) / steps for k in cb}
    total = sum(per.values())
    print("| kernel | launches per step | us per step | share |")
    print("|---|---|---|---|")
    for k, v in sorted(per.items(), key=lambda kv: -kv[1]):
        if launches[k] > 0:
            print("| `%s` | %.1f | %.2f | %.1f%% |" % (k, launches[k], v, 100 * v / total if total else 0))
    print("| all | %.1f | %.2f | |" % (sum(launches.values()), total))
    print("sum of kernel times per decode step: %.2f us (%d steps)" % (total, steps))


if __name__ == "__main__":
    main()
