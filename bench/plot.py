#!/usr/bin/env python3
"""Plot cycles/packet versus state count from bench/results/summary.txt (run_matrix.sh).

Writes bench/cycles_vs_states.png: the median over runs of the worker's per-burst median
cycles/packet on the established path, syncwall beside the io-forward baseline of the same
runs. Needs python3-matplotlib (apt); run by hand, the PNG is committed.
Usage: /usr/bin/python3 bench/plot.py [summary.txt] [out.png]"""
import statistics
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

here = Path(__file__).resolve().parent
summary = Path(sys.argv[1]) if len(sys.argv) > 1 else here / "results" / "summary.txt"
out = Path(sys.argv[2]) if len(sys.argv) > 2 else here / "cycles_vs_states.png"

series = {"syncwall": {}, "io": {}, "thp": {}}
for line in summary.read_text().splitlines():
    if not line.startswith("RESULT "):
        continue
    f = dict(kv.split("=", 1) for kv in line.split()[1:])
    if not f.get("run", "").startswith("est-") or f["run"].startswith("est-1M"):
        continue
    phase = f["phase"]
    if f["run"].startswith("est-thp-"):  # the same runs on 2 MiB pages (run_matrix.sh thp)
        if phase != "syncwall":
            continue
        phase = "thp"
    if phase in series:
        series[phase].setdefault(int(f["states"]), []).append(float(f["cycles_per_packet"]))

fig, ax = plt.subplots(figsize=(7, 4.2))
for phase, label, marker in (("syncwall", "syncwall worker (filter in+out, route, tx), 4 KiB pages", "o"),
                             ("thp", "syncwall worker, 2 MiB pages (--thp)", "^"),
                             ("io", "io-forward baseline (same ports, generator)", "s")):
    pts = sorted(series[phase].items())
    if not pts:
        continue
    xs = [s for s, _ in pts]
    ys = [statistics.median(v) for _, v in pts]
    ax.plot(xs, ys, marker=marker, label=label)
    below = phase == "thp"  # labels under the points, apart from the 4 KiB ones
    for x, y in zip(xs, ys):
        ax.annotate(f"{y:.0f}", (x, y), textcoords="offset points", xytext=(0, -12 if below else 6),
                    ha="center", fontsize=8)
ax.axhline(120, color="grey", linestyle="--", linewidth=1, label="target: 120 cycles/packet")
ax.set_xscale("log")
ax.set_xlabel("states in the table")
ax.set_ylabel("cycles per packet (median per burst)")
ax.set_title("syncwall-bench: established TCP, 64-byte frames, 1 worker")
ax.grid(True, which="both", alpha=0.3)
ax.legend(fontsize=8)
fig.tight_layout()
fig.savefig(out, dpi=110)
print(f"wrote {out}")
