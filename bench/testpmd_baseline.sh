#!/usr/bin/env bash
# dpdk-testpmd on virtual ports, for comparison with syncwall-bench (bench/vs_testpmd.sh puts
# the two side by side). One forwarding lcore, no hugepages, bounded by `timeout`.
#   net_null: the PMD makes the packets on rx and frees them on tx (no generator at all:
#             allocating and freeing the mbufs is the forwarding lcore's own work);
#   net_ring: two ring ports whose tx loops back to rx (nodeaction CREATE), started with
#             --tx-first, so a fixed set of mbufs circulates through rings (what our
#             ports are, minus our generator and sink).
# Forward modes: io (packets untouched), macswap (swaps the Ethernet addresses and sets the
# mbuf's tx offload fields), 5tswap (swaps the addresses of Ethernet, then of IPv4/IPv6 and
# the TCP/UDP ports as far as it finds those headers). net_null writes no frame data, so its
# frames are zeros: Ethernet type 0, and 5tswap stops after the Ethernet addresses.
# A run is VDEV:MODE, or MODE alone for net_null:MODE; default: net_null:io net_ring:io.
# The pps of a run is the median, over testpmd's 1-second stats periods, of Rx-pps summed
# over both ports: packets forwarded per second by the one forwarding lcore. Prints one
# `RESULT phase=testpmd vdev=... mode=... pps=N` line per run.
# Usage: bench/testpmd_baseline.sh [seconds [run...]]
#   e.g. bench/testpmd_baseline.sh 8 io macswap 5tswap net_ring:io
set -euo pipefail
secs=${1:-8}
shift || true
runs=("$@")
[ ${#runs[@]} -gt 0 ] || runs=(net_null:io net_ring:io)
testpmd=${TESTPMD:-/usr/bin/dpdk-testpmd}

run() { # vdev mode
  local vdev=$1 mode=$2 vdevs
  case $vdev in
    net_null) vdevs=(--vdev net_null0 --vdev net_null1) ;;
    net_ring) vdevs=(--vdev 'net_ring0,nodeaction=bt0:0:CREATE' --vdev 'net_ring1,nodeaction=bt1:0:CREATE') ;;
    *) echo "testpmd_baseline.sh: unknown vdev $vdev (net_null or net_ring)" >&2; exit 2 ;;
  esac
  case $mode in
    io | macswap | 5tswap) ;;
    *) echo "testpmd_baseline.sh: unknown forward mode $mode (io, macswap or 5tswap)" >&2; exit 2 ;;
  esac
  local prefix="bench-testpmd-$$-$vdev-$mode"
  local out
  out=$(timeout -s INT "$secs" "$testpmd" --no-huge --no-pci -m 1024 --file-prefix "$prefix" \
        -l 0,1 "${vdevs[@]}" --log-level lib.eal:error -- --forward-mode="$mode" --stats-period 1 \
        --nb-cores=1 --total-num-mbufs=16384 --tx-first 2>&1 || true)
  rm -rf "/var/run/dpdk/$prefix"
  # One stats block per period, one "Rx-pps:" line per port (port 0, then port 1); the
  # first block reads 0 (no earlier sample), a block cut by the end of the run is dropped.
  local periods pps pv
  periods=$(printf '%s\n' "$out" | awk '/Rx-pps:/ { if (n++ % 2) { s = p + $2; if (s > 0) printf "%.0f ", s } else p = $2 }')
  read -r -a pv <<<"$periods"
  pps=0
  if [ ${#pv[@]} -gt 0 ]; then
    pps=$(printf '%s\n' "${pv[@]}" | sort -n | awk '{v[NR] = $1} END {
          if (NR % 2) print v[(NR + 1) / 2]; else printf "%.0f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }')
  else
    echo "testpmd $mode forward on $vdev: no stats (the last lines of its output follow)" >&2
    printf '%s\n' "$out" | tail -15 >&2
  fi
  echo "testpmd $mode forward on $vdev: $pps pps (both ports, median of 1 s periods: ${periods% })"
  echo "RESULT phase=testpmd vdev=$vdev mode=$mode pps=$pps"
}

for r in "${runs[@]}"; do
  if [[ $r == *:* ]]; then run "${r%%:*}" "${r#*:}"; else run net_null "$r"; fi
done
