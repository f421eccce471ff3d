#!/usr/bin/env python3
"""Medians (and best runs) of bench/ab.sh output, old against new.
Usage: /usr/bin/python3 bench/ab_summary.py bench/results/ab-round3.txt"""
import statistics
import sys
from collections import defaultdict

runs = defaultdict(lambda: defaultdict(list))  # scenario -> binary -> [fields]
for line in open(sys.argv[1]):
    if line.startswith("AB "):
        f = dict(kv.split("=", 1) for kv in line.split()[1:])
        runs[f["scenario"]][f["binary"]].append(f)

for scenario, by in runs.items():
    for key, lower_is_better in (("cycles_per_packet", True), ("new_states_per_s", False),
                                 ("new_states_capacity", False)):
        old = [float(f[key]) for f in by["old"]]
        new = [float(f[key]) for f in by["new"]]
        if not old or not new or max(old) == 0:
            continue
        best = min if lower_is_better else max
        mo, mn = statistics.median(old), statistics.median(new)
        print(f"{scenario} {key}: {len(old)} runs each, old {mo:.1f} (best {best(old):.1f}), "
              f"new {mn:.1f} (best {best(new):.1f}), {100 * (mn - mo) / mo:+.0f} %")
