#!/usr/bin/env bash
# Instructions per packet of the worker's packet path, counted by valgrind's callgrind: a
# figure that does not move with the machine's load, for changes too small for the cycle
# counts of bench/ab.sh to tell apart on a shared machine. Counts what Worker::process_burst
# executes (parse, filter, route, rewrite; not rx_burst, tx_burst or the poll loop), per
# packet forwarded, in total and by function (exclusive). Totals repeat within 0.3 % from
# run to run: StateTable::lookup_bulk's count depends on where the run's random flows land
# in the key index (220-247 per packet at 1k); the other functions' are the same each run.
# Usage: bench/instructions.sh BENCH [BENCH...] [-- BENCH_OPTIONS]
#   default options: --states 1000 --no-baseline --duration 100 (under valgrind the
#   generator is slow: 100 s give a few thousand packets, 3 000 to 22 000 in our runs, so
#   each of 1 000 connections is seen several times)
# TOP=N functions listed (default 12).
set -euo pipefail
bins=()
while [ $# -gt 0 ] && [ "$1" != -- ]; do
  bins+=("$1")
  shift
done
[ "${1:-}" = -- ] && shift
opts=("$@")
[ ${#opts[@]} -eq 0 ] && opts=(--states 1000 --no-baseline --duration 100)
[ ${#bins[@]} -gt 0 ] || { echo "usage: $0 BENCH [BENCH...] [-- OPTIONS]" >&2; exit 2; }
command -v valgrind >/dev/null || { echo "$0: needs valgrind" >&2; exit 2; }
top=${TOP:-12}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for bin in "${bins[@]}"; do
  out=$tmp/cg.out
  if ! valgrind --tool=callgrind --callgrind-out-file="$out" \
    --toggle-collect='syncwall::dp::Worker::process_burst(*' \
    "$bin" "${opts[@]}" >"$tmp/log" 2>&1; then
    echo "$0: $bin failed under valgrind" >&2
    tail -5 "$tmp/log" >&2
    exit 1
  fi
  pkts=$(grep -o 'phase=syncwall .* forwarded=[0-9]*' "$tmp/log" | grep -o 'forwarded=[0-9]*' |
    cut -d= -f2 | head -1 || true)
  if [ -z "$pkts" ] || [ "$pkts" -eq 0 ]; then
    echo "$0: $bin forwarded no packet under valgrind" >&2
    tail -5 "$tmp/log" >&2
    exit 1
  fi
  callgrind_annotate --auto=no --inclusive=no "$out" 2>/dev/null |
    awk -v bin="$bin" -v pkts="$pkts" '
      $1 ~ /^[0-9,]+$/ {
        n = $1; gsub(",", "", n)
        if ($0 ~ /PROGRAM TOTALS/) {
          printf "INSTR binary=%s packets=%d instructions_per_packet=%.1f\n", bin, pkts, n / pkts
          next
        }
        # "file:function(args) [object]": by function, its lines from every file summed
        f = $0; sub(/^ *[0-9,]+ +(\([^)]*\) +)?/, "", f); sub(/^[^:]*:/, "", f)
        gsub(/\(anonymous namespace\)/, "{anon}", f); sub(/\(.*/, "", f)
        sum[f] += n
      }
      END { for (f in sum) printf "  %8.1f  %s\n", sum[f] / pkts, f | "sort -k1,1nr | head -'"$top"'" }'
done
