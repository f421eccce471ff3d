#!/usr/bin/env bash
# The runs behind BENCHMARKS.md. Each scenario runs REPEAT times (default 3); every run's
# full output goes to bench/results/NAME-N.txt, and bench/results/summary.txt collects the
# RESULT lines. Then: /usr/bin/python3 bench/plot.py (cycles/packet versus states).
# Usage: bench/run_matrix.sh [build-dir [scenario...]]   (env: REPEAT, DURATION)
# Scenarios: est new sync testpmd vs-testpmd thp nat (default: all). nat runs NAT and
# plain traffic interleaved, REPEAT rounds (see below; summary: bench/nat_summary.py).
# vs-testpmd runs
# bench/vs_testpmd.sh (syncwall's capacity against testpmd's io, macswap and 5tswap on
# net_null) at 1k and 1M states, alternately. thp repeats est's state counts on
# 2 MiB pages (--thp); it needs /sys/kernel/mm/transparent_hugepage/shmem_enabled at advise
# or always (as root: echo advise > ...; this script does not change it).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build-bench}
bench="$build/bench/syncwall-bench"
shift || true
scenarios=${*:-est new sync testpmd vs-testpmd thp nat}
out=bench/results
want() { [[ " $scenarios " == *" $1 "* ]]; }
repeat=${REPEAT:-3}
dur=${DURATION:-3}
mkdir -p "$out"
touch "$out/summary.txt"

run() { # name args...
  local name=$1; shift
  for i in $(seq 1 "$repeat"); do
    echo "== $name #$i: $*"
    sed -i "/ run=$name-$i /d" "$out/summary.txt"
    "$bench" --duration "$dur" "$@" > "$out/$name-$i.txt" 2>&1 || { echo "   FAILED"; tail -5 "$out/$name-$i.txt"; continue; }
    grep '^RESULT' "$out/$name-$i.txt" | sed "s/^RESULT /RESULT run=$name-$i /" | tee -a "$out/summary.txt" | grep -E 'phase=(syncwall|io|sync_upd|sync_bulk) ' | cut -c1-200 || true
  done
}

if want est; then
  # Established fast path against a table of 1k, 100k, 1M, 10M states (64-byte TCP ACKs).
  for s in 1000 100000 1000000 10000000; do run "est-$s" --states "$s"; done
  # Frame size and UDP at 1M states.
  run "est-1M-1500B" --states 1000000 --size 1500
  run "udp-1M" --states 1000000 --proto udp
fi
if want new; then
  # New connections: every packet a SYN of a new flow, against 10, 1000, 10000 rules.
  for r in 10 1000 10000; do run "new-rules$r" --states 0 --new-share 1 --rules "$r" --max-new 2000000; done
  # Full handshakes (SYN, SYN-ACK, ACK) through the worker; with sync to an in-process peer.
  run "handshake" --states 0 --traffic handshake --max-new 1000000
  run "new-sync" --states 0 --new-share 1 --sync --max-new 1000000
fi
if want thp; then
  if grep -qE '\[(always|advise|within_size|force)\]' /sys/kernel/mm/transparent_hugepage/shmem_enabled 2>/dev/null; then
    for s in 1000 100000 1000000 10000000; do run "est-thp-$s" --states "$s" --thp; done
  else
    echo "== thp skipped: shmem_enabled is $(cat /sys/kernel/mm/transparent_hugepage/shmem_enabled 2>/dev/null || echo unreadable)"
  fi
fi
# The sync role alone: 1M inserts, 1M updates, bulk transfer of 1M states.
if want sync; then run "sync-1M" --no-forward --sync-bench 1000000; fi
# dpdk-testpmd io forward on net_null and net_ring.
want testpmd && for i in $(seq 1 "$repeat"); do
  sed -i "/ run=testpmd-$i /d" "$out/summary.txt"
  bench/testpmd_baseline.sh 8 | tee "$out/testpmd-$i.txt" | grep RESULT | sed "s/^RESULT /RESULT run=testpmd-$i /" >> "$out/summary.txt"
done
# syncwall-bench, then testpmd on net_null, and the ratios (RESULT phase=testpmd_ratio).
want vs-testpmd && for i in $(seq 1 "$repeat"); do
  for ns in 1k:1000 1M:1000000; do
    name=vs-testpmd-${ns%%:*} s=${ns#*:}
    echo "== $name #$i: --states $s"
    sed -i "/ run=$name-$i /d" "$out/summary.txt"
    BENCH="$bench" bench/vs_testpmd.sh --states "$s" --duration "$dur" > "$out/$name-$i.txt" 2>&1 \
      || { echo "   FAILED"; tail -5 "$out/$name-$i.txt"; continue; }
    grep '^RESULT' "$out/$name-$i.txt" | sed "s/^RESULT /RESULT run=$name-$i /" | tee -a "$out/summary.txt" | grep 'phase=testpmd_ratio ' || true
  done
done
# NAT beside plain traffic, in the same period: each round runs, in turn (the order
# reversed every other round), plain established traffic lan -> wan (the est scenarios'
# kind), plain both ways (--direction both: the servers' segments in on wan too) and
# nat-to both ways (--nat), at 1k and 1M states; then new connections plain and --nat.
# Outputs bench/results/{plain,plain-both,nat}-est-{1k,1M}-N.txt and
# {plain,nat}-new-N.txt, RESULT lines in bench/results/nat-summary.txt;
# /usr/bin/python3 bench/nat_summary.py prints the medians and best runs.
if want nat; then
  touch "$out/nat-summary.txt"
  nat_run() { # name args...
    local name=$1; shift
    echo "== $name: $*"
    sed -i "/ run=$name /d" "$out/nat-summary.txt"
    "$bench" --no-baseline --duration "$dur" "$@" > "$out/$name.txt" 2>&1 \
      || { echo "   FAILED"; tail -5 "$out/$name.txt"; return 0; }
    grep '^RESULT' "$out/$name.txt" | sed "s/^RESULT /RESULT run=$name /" | tee -a "$out/nat-summary.txt" \
      | grep -E 'phase=(syncwall|nat) ' | cut -c1-200 || true
  }
  for i in $(seq 1 "$repeat"); do
    kinds="plain plain-both nat"
    [ $((i % 2)) -eq 0 ] && kinds="nat plain-both plain"
    for ns in 1k:1000 1M:1000000; do
      for k in $kinds; do
        args=(--states "${ns#*:}")
        [ "$k" = plain-both ] && args+=(--direction both)
        [ "$k" = nat ] && args+=(--nat)
        nat_run "$k-est-${ns%%:*}-$i" "${args[@]}"
      done
    done
    for k in $kinds; do
      [ "$k" = plain-both ] && continue
      args=(--states 0 --new-share 1 --rules 10 --max-new 2000000)
      [ "$k" = nat ] && args+=(--nat)
      nat_run "$k-new-$i" "${args[@]}"
    done
  done
fi
{ echo "# machine"; uname -r; lscpu | grep -E 'Model name|^CPU\(s\)|Hypervisor|L2|L3'; } > "$out/machine.txt"
echo "done: $out/summary.txt"
