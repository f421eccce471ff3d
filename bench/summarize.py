#!/usr/bin/env python3
"""Medians over repeated runs from bench/results/summary.txt (run_matrix.sh), as the
markdown tables of BENCHMARKS.md. Usage: /usr/bin/python3 bench/summarize.py [summary.txt]"""
import statistics
import sys
from collections import defaultdict
from pathlib import Path

summary = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent / "results" / "summary.txt"
runs = defaultdict(lambda: defaultdict(list))  # scenario -> "phase.key" -> values
for line in summary.read_text().splitlines():
    if not line.startswith("RESULT "):
        continue
    f = dict(kv.split("=", 1) for kv in line.split()[1:])
    scenario = f["run"].rsplit("-", 1)[0]
    for k, v in f.items():
        try:
            runs[scenario][f"{f['phase']}.{k}"].append(float(v))
        except ValueError:
            pass


def med(scenario, key):
    v = runs.get(scenario, {}).get(key)
    return statistics.median(v) if v else float("nan")


def n(scenario):
    return len(runs.get(scenario, {}).get("syncwall.cycles_per_packet", []))


print("| scenario | runs | syncwall cycles/pkt (median burst) | mean | capacity Mpps/worker | "
      "observed Mpps | io-fwd cycles/pkt | io-fwd observed Mpps | capacity ratio to io | observed ratio |")
print("|---|---|---|---|---|---|---|---|---|---|")
for s in sorted(runs, key=lambda s: (s.split("-")[0], len(s), s)):
    if n(s) == 0:
        continue
    sw_pps, io_pps = med(s, "syncwall.pps"), med(s, "io.pps")
    print(f"| {s} | {n(s)} | {med(s, 'syncwall.cycles_per_packet'):.0f} | {med(s, 'syncwall.mean_cycles_per_packet'):.0f} | "
          f"{med(s, 'syncwall.mpps_per_worker'):.2f} | {sw_pps / 1e6:.2f} | {med(s, 'io.cycles_per_packet'):.1f} | "
          f"{io_pps / 1e6:.2f} | {med(s, 'syncwall.ratio_to_io'):.3f} | {sw_pps / io_pps:.3f} |")

print()
print("| scenario | new states/s per busy worker-second | new states/s capacity per worker |")
print("|---|---|---|")
for s in sorted(runs):
    if med(s, "syncwall.states_created") > 0:
        # Capacity: states a worker makes per second at its median burst cost (older
        # binaries did not print it; it follows from the other fields).
        cap = [m * 1e6 * c / max(f, 1) for m, c, f in zip(runs[s]["syncwall.mpps_per_worker"],
                                                         runs[s]["syncwall.states_created"],
                                                         runs[s]["syncwall.forwarded"])]
        print(f"| {s} | {med(s, 'syncwall.new_states_per_s_per_worker') / 1e6:.3f} M | "
              f"{statistics.median(cap) / 1e6:.3f} M |")

print()
for s in sorted(runs):
    if f"sync_upd.encode_per_s" in runs[s]:
        print(f"sync ({s}): INS encode {med(s, 'sync_ins.encode_per_s') / 1e6:.2f} M/s, apply "
              f"{med(s, 'sync_ins.apply_per_s') / 1e6:.2f} M/s, {med(s, 'sync_ins.bytes_per_update'):.1f} B/state, "
              f"{med(s, 'sync_ins.updates_per_packet'):.1f}/packet; UPD_C encode {med(s, 'sync_upd.encode_per_s') / 1e6:.2f} M/s, "
              f"apply {med(s, 'sync_upd.apply_per_s') / 1e6:.2f} M/s, pipeline {med(s, 'sync_upd.pipeline_per_s') / 1e6:.2f} M/s, "
              f"{med(s, 'sync_upd.bytes_per_update'):.1f} B/update, {med(s, 'sync_upd.updates_per_packet'):.1f}/packet; "
              f"bulk 1M: {med(s, 'sync_bulk.seconds'):.2f} s (runs: {runs[s]['sync_bulk.seconds']})")
    if "sync_forward.peer_inserted" in runs[s]:
        print(f"sync with forwarding ({s}): peer applied {med(s, 'sync_forward.peer_inserted'):.0f} inserts, "
              f"{med(s, 'sync_forward.bytes') / max(med(s, 'sync_forward.sent_states'), 1):.1f} B/state, ring full "
              f"{med(s, 'sync_forward.ring_full'):.0f}")
for s in sorted(runs):
    if "memory.bytes_per_state" in runs[s]:
        print(f"memory ({s}): {med(s, 'memory.bytes_per_state'):.0f} B/state, heap {med(s, 'memory.heap_mib'):.0f} MiB, "
              f"peak RSS {med(s, 'memory.peak_rss_mib'):.0f} MiB")
tp = defaultdict(list)  # (scenario, vdev, mode) -> pps
for line in summary.read_text().splitlines():
    if " phase=testpmd " in line:
        f = dict(kv.split("=", 1) for kv in line.split()[1:])
        tp[(f["run"].rsplit("-", 1)[0], f["vdev"], f.get("mode", "io"))].append(float(f["pps"]))
for (s, vdev, mode), v in sorted(tp.items()):
    print(f"testpmd {mode} forward on {vdev} ({s}): median {statistics.median(v) / 1e6:.1f} Mpps "
          f"(runs {[round(x / 1e6, 1) for x in v]})")

# bench/vs_testpmd.sh: syncwall's capacity and testpmd's pps per forwarding core, from the
# same runs; the ratios are the medians of each run's own ratio.
vs = [s for s in sorted(runs) if "testpmd_ratio.capacity_pps" in runs[s]]
if vs:
    print()
    print("| scenario | runs | syncwall cycles/pkt | capacity Mpps/worker | testpmd io Mpps | macswap Mpps | "
          "5tswap Mpps | ratio to io | ratio to macswap | ratio to 5tswap |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for s in vs:
        r = "testpmd_ratio."
        print(f"| {s} | {len(runs[s][r + 'capacity_pps'])} | {med(s, r + 'cycles_per_packet'):.1f} | "
              f"{med(s, r + 'capacity_pps') / 1e6:.2f} | {med(s, r + 'io_pps') / 1e6:.1f} | "
              f"{med(s, r + 'macswap_pps') / 1e6:.1f} | {med(s, r + '5tswap_pps') / 1e6:.1f} | "
              f"{med(s, r + 'ratio_io'):.3f} | {med(s, r + 'ratio_macswap'):.3f} | {med(s, r + 'ratio_5tswap'):.3f} |")
        print(f"  {s} runs: ratio to macswap {runs[s][r + 'ratio_macswap']}, to 5tswap {runs[s][r + 'ratio_5tswap']}")
