#!/usr/bin/env python3
"""NAT beside plain traffic: medians and best runs from bench/results/nat-summary.txt
(bench/run_matrix.sh build-bench nat), as the table of BENCHMARKS.md's NAT section.
Usage: /usr/bin/python3 bench/nat_summary.py [nat-summary.txt]"""
import statistics
import sys
from collections import defaultdict
from pathlib import Path

summary = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent / "results" / "nat-summary.txt"
runs = defaultdict(list)  # scenario (run name less "-N") -> [{phase: fields}] per run
by_run = defaultdict(dict)
for line in summary.read_text().splitlines():
    if not line.startswith("RESULT "):
        continue
    f = dict(kv.split("=", 1) for kv in line.split()[1:])
    by_run[f["run"]][f["phase"]] = f
for run, phases in by_run.items():
    if "syncwall" in phases:
        runs[run.rsplit("-", 1)[0]].append(phases)


def values(scenario, phase, key, scale=1.0):
    return [float(r[phase][key]) * scale for r in runs.get(scenario, []) if phase in r and key in r[phase]]


def cell(v, lower_is_better, fmt):
    if not v:
        return "–"
    best = min(v) if lower_is_better else max(v)
    return f"{fmt(statistics.median(v))} ({fmt(best)})"


def change(a, b, lower_is_better):
    """b against a: medians and bests."""
    if not a or not b:
        return "–"
    best = min if lower_is_better else max
    ma, mb = statistics.median(a), statistics.median(b)
    return f"{100 * (mb - ma) / ma:+.0f} % ({100 * (best(b) - best(a)) / best(a):+.0f} % best)"


cyc = lambda x: f"{x:.0f}"
print("Established traffic, cycles per packet (median over bursts), median of runs (best run):")
print()
print("| states | runs | plain, lan → wan | plain, both ways | nat-to, both ways | nat-to against plain both ways |")
print("|---|---|---|---|---|---|")
for n in ("1k", "1M"):
    p, p2, nt = (values(f"{k}-est-{n}", "syncwall", "cycles_per_packet") for k in ("plain", "plain-both", "nat"))
    if not (p or p2 or nt):
        continue
    print(f"| {n} | {len(p)}/{len(p2)}/{len(nt)} | {cell(p, True, cyc)} | {cell(p2, True, cyc)} | "
          f"{cell(nt, True, cyc)} | {change(p2, nt, True)} |")

conn = lambda x: f"{x / 1e6:.2f} M"
print()
print("New connections (every packet a SYN of a new flow; two states per connection), per busy")
print("worker-second and at the median burst cost (capacity), median of runs (best run):")
print()
print("| | runs | plain | nat-to | nat-to against plain |")
print("|---|---|---|---|---|")
for key, what in (("new_states_per_s_per_worker", "connections per busy worker-second"),
                  ("new_states_capacity_per_worker", "connections/s capacity")):
    p, nt = (values(f"{k}-new", "syncwall", key, 0.5) for k in ("plain", "nat"))
    if p or nt:
        print(f"| {what} | {len(p)}/{len(nt)} | {cell(p, False, conn)} | {cell(nt, False, conn)} | {change(p, nt, False)} |")
p, nt = (values(f"{k}-new", "syncwall", "cycles_per_packet") for k in ("plain", "nat"))
if p or nt:
    print(f"| cycles per SYN packet | {len(p)}/{len(nt)} | {cell(p, True, cyc)} | {cell(nt, True, cyc)} | {change(p, nt, True)} |")

print()
for s in sorted(runs):
    drops = values(s, "syncwall", "drops")
    gen = values(s, "syncwall", "generated")
    line = f"{s}: cycles/packet runs {[round(x) for x in values(s, 'syncwall', 'cycles_per_packet')]}, " \
           f"drops {int(sum(drops))} of {int(sum(gen))} generated"
    if any("nat" in r for r in runs[s]):
        line += f"; frames checked {int(sum(values(s, 'nat', 'checked')))}, translated wrongly " \
                f"{int(sum(values(s, 'nat', 'wrong')))}, nat_exhausted {int(sum(values(s, 'nat', 'nat_exhausted')))}"
    if any("nat_preload" in r for r in runs[s]):
        line += f"; preload {statistics.median(values(s, 'nat_preload', 'seconds')):.1f} s (median), " \
                f"states sampled {int(sum(values(s, 'nat_preload', 'states_sampled')))}, not as made " \
                f"{int(sum(values(s, 'nat_preload', 'states_wrong')))}"
    print(line)
