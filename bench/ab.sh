#!/usr/bin/env bash
# Two syncwall-bench binaries run alternately, back to back, on the same scenarios: the
# before/after comparison behind BENCHMARKS.md's A/B tables (a shared machine's noise
# drifts over minutes, so two matrices taken apart compare badly).
# Usage: bench/ab.sh OLD_BENCH NEW_BENCH [RUNS]   -> AB lines on stdout; summarise with
#        /usr/bin/python3 bench/ab_summary.py FILE
# OLD_ARGS / NEW_ARGS add options to one side, e.g. the same binary without and with --thp:
#        NEW_ARGS=--thp bench/ab.sh build-bench/bench/syncwall-bench build-bench/bench/syncwall-bench
# SCENARIOS limits the run to some of est-1k est-1M est-10M new-rules10 (default: all).
set -euo pipefail
old=$1 new=$2 runs=${3:-7}
read -r -a old_args <<<"${OLD_ARGS:-}"
read -r -a new_args <<<"${NEW_ARGS:-}"
scenarios=${SCENARIOS:-est-1k est-1M est-10M new-rules10}
ab() { # runs name args...
  local n=$1 name=$2; shift 2
  [[ " $scenarios " == *" $name "* ]] || return 0
  for r in $(seq "$n"); do
    for which in old new; do
      local bin=$old extra=("${old_args[@]}")
      [ "$which" = new ] && bin=$new extra=("${new_args[@]}")
      local out; out=$("$bin" "$@" "${extra[@]}" --no-baseline --duration 2 2>&1)
      local cyc ns cap
      cyc=$(awk '/cycles\/packet:/ {print $2; exit}' <<<"$out")
      ns=$(grep -o 'new_states_per_s_per_worker=[0-9]*' <<<"$out" | cut -d= -f2 || true)
      cap=$(grep -o 'new_states_capacity_per_worker=[0-9]*' <<<"$out" | cut -d= -f2 || true)
      echo "AB scenario=$name run=$r binary=$which cycles_per_packet=$cyc new_states_per_s=${ns:-0} new_states_capacity=${cap:-0}"
    done
  done
}
ab "$runs" est-1k --states 1000
ab "$runs" est-1M --states 1000000
ab 3 est-10M --states 10000000
ab "$runs" new-rules10 --states 0 --new-share 1 --rules 10 --max-new 2000000
