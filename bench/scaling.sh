#!/usr/bin/env bash
# The multi-worker scaling run: the established path at 1M states and new connections with
# 1, 2, 4 and 8 workers, one lcore each (needs 1 + the most workers CPUs, e.g. 16 cores;
# on fewer, lcores share CPUs and the figures say little). The generator and sink stay on
# the main lcore, so above ~25 Mpps in all the generator, not the workers, is the limit:
# compare cycles/packet per worker (capacity), and observed Mpps against the io baseline.
# Usage: bench/scaling.sh [build-dir [workers...]]   (env: REPEAT, DURATION)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build-bench}
shift || true
workers=${*:-1 2 4 8}
bench="$build/bench/syncwall-bench"
out=bench/results/scaling
mkdir -p "$out"
: > "$out/summary.txt"
for w in $workers; do
  for i in $(seq 1 "${REPEAT:-3}"); do
    for scenario in est new; do
      args=(--states 1000000)
      [ "$scenario" = new ] && args=(--states 0 --new-share 1 --max-new 4000000 --no-baseline)
      "$bench" --workers "$w" --duration "${DURATION:-3}" "${args[@]}" > "$out/$scenario-w$w-$i.txt" 2>&1 || {
        echo "FAILED: $scenario, $w workers"; tail -5 "$out/$scenario-w$w-$i.txt"; continue; }
      grep '^RESULT phase=\(io\|syncwall\) ' "$out/$scenario-w$w-$i.txt" |
        sed "s/^RESULT /RESULT run=$scenario-w$w-$i /" >> "$out/summary.txt"
    done
  done
done
# Medians per worker count.
/usr/bin/python3 - "$out/summary.txt" <<'PY'
import statistics, sys
from collections import defaultdict
runs = defaultdict(list)
for line in open(sys.argv[1]):
    f = dict(kv.split("=", 1) for kv in line.split()[1:])
    scenario, w = f["run"].split("-")[0], int(f["workers"])
    runs[(scenario, w, f["phase"])].append(f)
print("| scenario | workers | cycles/packet per worker | observed Mpps (all workers) | io-forward Mpps | new states/s per worker |")
print("|---|---|---|---|---|---|")
for (scenario, w, phase) in sorted(k for k in runs if k[2] == "syncwall"):
    r = runs[(scenario, w, phase)]
    med = lambda k: statistics.median(float(x[k]) for x in r)
    io = runs.get((scenario, w, "io"))
    io_pps = statistics.median(float(x["pps"]) for x in io) / 1e6 if io else float("nan")
    print(f"| {scenario} | {w} | {med('cycles_per_packet'):.0f} | {med('pps') / 1e6:.2f} | {io_pps:.2f} | "
          f"{med('new_states_per_s_per_worker') / 1e6:.2f} M |")
PY
