#!/usr/bin/env bash
# libFuzzer campaign over every harness in fuzz/: builds them with clang (ASan + UBSan +
# coverage) in build-fuzz, seeds each corpus from the unit tests' vectors, then runs each
# harness for SECONDS (default 10). Fails on the first crash, leak, sanitizer report or
# timeout; the reproducer is left in build-fuzz/crashes/ (add it to fuzz/regressions/NAME/
# and a unit test with the fix). The corpora grow in build-fuzz/corpus/ from run to run.
#   scripts/fuzz.sh [SECONDS]        all harnesses
#   FUZZ_TARGETS="fuzz_pfsync" scripts/fuzz.sh 3600   one harness, one hour
#   FUZZ_JOBS=4 scripts/fuzz.sh 600  4 parallel fuzzing jobs per harness
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-10}
jobs=()
[ "${FUZZ_JOBS:-1}" -gt 1 ] && jobs=(-jobs="$FUZZ_JOBS" -workers="$FUZZ_JOBS")
targets=${FUZZ_TARGETS:-"fuzz_packet fuzz_tcp_track fuzz_pfsync fuzz_carp fuzz_mgmt fuzz_pf_rule fuzz_config fuzz_http"}
dir=build-fuzz

if [ ! -f "$dir/build.ninja" ]; then
  CC=clang CXX=clang++ meson setup "$dir" -Dfuzz=true -Dwerror=false \
    -Db_sanitize=address,undefined -Db_lundef=false \
    -Dcpp_args=-fsanitize=fuzzer-no-link >/dev/null
fi
ninja -C "$dir" $(for t in $targets; do echo "fuzz/$t"; done)

# Seeds: the unit tests' vectors (a hidden Catch2 tag writes them), the example configs.
ninja -C build tests/unit_tests >/dev/null
seeds="$dir/seeds"
rm -rf "$seeds"
mkdir -p "$seeds"/{packet,tcp_track,pfsync,carp,mgmt,pf_rule,config,http}
SYNCWALL_FUZZ_SEEDS="$PWD/$seeds" build/tests/unit_tests "[fuzz-seeds]" >/dev/null
cp config/examples/*.yaml "$seeds/config/"
# Request lines, rules and files: the string literals of their unit tests.
/usr/bin/python3 - "$seeds" <<'PY'
import pathlib, re, sys
seeds = pathlib.Path(sys.argv[1])
requests = re.findall(r'R"\((.*?)\)"', pathlib.Path("tests/unit/test_mgmt_protocol.cpp").read_text())
for i, r in enumerate(dict.fromkeys(requests)):
    # fuzz_mgmt: the first byte sets the framer's line limit (0xff: 1021 bytes).
    (seeds / "mgmt" / f"req{i}").write_bytes(b"\xff" + r.encode() + b"\n" + r.encode() + b"\n")
rules = re.findall(r'"((?:pass|block|match)\b(?:[^"\\]|\\.)*)"', pathlib.Path("tests/unit/test_pf_rule.cpp").read_text())
for i, r in enumerate(dict.fromkeys(rules)):
    (seeds / "pf_rule" / f"rule{i}").write_text(r.encode().decode("unicode_escape"))
files = re.findall(r'R"\((.*?)\)"', pathlib.Path("tests/unit/test_config.cpp").read_text(), re.S)
for i, f in enumerate(files):
    (seeds / "config" / f"file{i}.yaml").write_text(f)
PY
printf 'GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n' >"$seeds/http/get"
printf 'HEAD /metrics?x=1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' >"$seeds/http/head"
printf 'POST /metrics HTTP/1.1\r\nContent-Length: 3\r\n\r\nabcGET / HTTP/1.0\r\n\r\n' >"$seeds/http/post"
printf 'GET /m HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n' >"$seeds/http/chunked"

# Inputs that once crashed a harness (fuzz/regressions/NAME/) run first, every time.
for r in fuzz/regressions/*/; do
  [ -d "$r" ] && cp "$r"* "$seeds/$(basename "$r")/"
done

mkdir -p "$dir/crashes"
status=0
for t in $targets; do
  corpus="$dir/corpus/${t#fuzz_}"
  mkdir -p "$corpus"
  echo "== $t: ${seconds}s"
  log="$dir/crashes/$t.log"
  if ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 \
     UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
     "$dir/fuzz/$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
       "${jobs[@]}" -print_final_stats=1 \
       -artifact_prefix="$dir/crashes/$t-" "$corpus" "$seeds/${t#fuzz_}" >"$log" 2>&1; then
    grep -E '^stat::number_of_executed_units|^stat::new_units_added' "$log" | tr '\n' ' '
    echo
  else
    status=1
    echo "!! $t failed: $log"
    grep -E 'ERROR|SUMMARY|runtime error|Test unit written' "$log" | head -20
  fi
done
[ $status -eq 0 ] && echo "fuzz: every harness ran ${seconds}s clean" || echo "fuzz: FAILED"
exit $status
