#!/usr/bin/env bash
# syncwall's capacity against dpdk-testpmd, in one run: syncwall-bench (one worker), then
# bench/testpmd_baseline.sh (io, macswap and 5tswap forward on two net_null ports, one
# forwarding lcore), then the ratios. Both figures are packets forwarded per second by one
# core: syncwall's capacity (TSC Hz / its median cycles per packet) and testpmd's Rx-pps
# summed over both ports (median of its 1 s periods). testpmd's cycles per packet is
# TSC Hz / its pps.
# Usage: bench/vs_testpmd.sh [syncwall-bench options...]
#   e.g. bench/vs_testpmd.sh --states 1000000 --duration 3
# env: BENCH (default: build-bench/bench/syncwall-bench of this tree), TESTPMD_SECONDS
# (default 8, per mode), TESTPMD (the testpmd binary, as in testpmd_baseline.sh).
# Prints everything both print, then one line and
#   RESULT phase=testpmd_ratio states=N cycles_per_packet=C capacity_pps=P io_pps=...
#     macswap_pps=... 5tswap_pps=... MODE_cycles_per_packet=... ratio_io=... ratio_macswap=...
#     ratio_5tswap=...
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bench=${BENCH:-$here/../build-bench/bench/syncwall-bench}
secs=${TESTPMD_SECONDS:-8}
log=$(mktemp)
trap 'rm -f "$log"' EXIT

"$bench" "$@" 2>&1 | tee "$log"
echo
"$here/testpmd_baseline.sh" "$secs" io macswap 5tswap | tee -a "$log"
echo

awk '
  function field(k,   i, kv) {
    for (i = 2; i <= NF; i++) { split($i, kv, "="); if (kv[1] == k) return kv[2] }
    return ""
  }
  /^RESULT phase=syncwall / {
    if (field("workers") != 1) { print "vs_testpmd.sh: one worker only (testpmd forwards on one lcore)" > "/dev/stderr"; bad = 1 }
    states = field("states"); cpp = field("cycles_per_packet"); cap = field("mpps_per_worker") * 1e6
  }
  /^RESULT phase=testpmd / && field("vdev") == "net_null" { pps[field("mode")] = field("pps") }
  END {
    if (bad) exit 2
    if (cap <= 0) { print "vs_testpmd.sh: no syncwall capacity in the bench output" > "/dev/stderr"; exit 1 }
    tsc = cap * cpp
    line = sprintf("RESULT phase=testpmd_ratio states=%s cycles_per_packet=%s capacity_pps=%.0f", states, cpp, cap)
    ratios = ""; text = ""
    n = split("io macswap 5tswap", modes, " ")
    for (i = 1; i <= n; i++) {
      m = modes[i]; p = pps[m] + 0
      if (p <= 0) { print "vs_testpmd.sh: no testpmd " m " figure" > "/dev/stderr"; exit 1 }
      line = line sprintf(" %s_pps=%.0f %s_cycles_per_packet=%.1f", m, p, m, tsc / p)
      ratios = ratios sprintf(" ratio_%s=%.4f", m, cap / p)
      text = text sprintf("%s%s %.2f Mpps (%.1f cycles) %.3fx", i > 1 ? ", " : "", m, p / 1e6, tsc / p, cap / p)
    }
    printf "syncwall capacity %.3f Mpps per worker (%s cycles/packet, %s states) against testpmd on net_null, one forwarding lcore: %s\n", cap / 1e6, cpp, states, text
    print line ratios
  }
' "$log"
