#!/usr/bin/env bash
# dpdk-testpmd io forward on virtual ports, for comparison with syncwall-bench's own
# io-forward baseline. One forwarding lcore, no hugepages, bounded by `timeout`.
#   net_null: the PMD makes the packets on rx and frees them on tx (no generator at all);
#   net_ring: two ring ports whose tx loops back to rx (nodeaction CREATE), started with
#             --tx-first, so a fixed set of mbufs circulates through rings (what our
#             ports are, minus our generator and sink).
# Prints testpmd's last per-port Rx-pps and one `RESULT phase=testpmd vdev=... pps=N` line
# (pps summed over both ports). Usage: bench/testpmd_baseline.sh [seconds]
set -euo pipefail
secs=${1:-8}
testpmd=${TESTPMD:-/usr/bin/dpdk-testpmd}
run() { # name vdev-args...
  local name=$1; shift
  local prefix="bench-testpmd-$$-$name"
  local out
  out=$(timeout -s INT "$secs" "$testpmd" --no-huge --no-pci -m 1024 --file-prefix "$prefix" \
        -l 0,1 "$@" --log-level lib.eal:error -- --forward-mode=io --stats-period 1 \
        --nb-cores=1 --total-num-mbufs=16384 --tx-first 2>&1 || true)
  rm -rf "/var/run/dpdk/$prefix"
  # The last complete stats block: one "Rx-pps:" line per port.
  local pps
  pps=$(printf '%s\n' "$out" | awk '/Rx-pps:/ {v[n++ % 2] = $2} END {print v[0] + v[1]}')
  echo "testpmd io forward on $name: $pps pps (both ports)"
  echo "RESULT phase=testpmd vdev=$name pps=$pps"
}
run net_null --vdev net_null0 --vdev net_null1
run net_ring --vdev net_ring0,nodeaction=bt0:0:CREATE --vdev net_ring1,nodeaction=bt1:0:CREATE
