#!/usr/bin/env bash
# Every test: unit (Catch2), the same unit tests and the EAL tests under ASan+UBSan, the
# state table's concurrent tests under TSan, the formatting check, a short run of every
# fuzzer, the EAL dataplane tests and the network-namespace lab (pytest). Installs and
# builds first.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh

# Sanitizer build of the pure code's unit tests.
if [ ! -f build-asan/build.ninja ]; then
  meson setup build-asan -Db_sanitize=address,undefined -Db_lundef=false >/dev/null
fi
ninja -C build-asan tests/unit_tests tests/eal_tests
# ThreadSanitizer build (clang) of the EAL tests, for the state table's concurrent tests.
if [ ! -f build-tsan/build.ninja ]; then
  CC=clang CXX=clang++ meson setup build-tsan -Db_sanitize=thread -Db_lundef=false -Dwerror=false >/dev/null
fi
ninja -C build-tsan tests/eal_tests

export SYNCWALL_BUILD="$PWD/build"
status=0
meson test -C build --print-errorlogs --num-processes 1 || status=1
echo "== unit tests under AddressSanitizer + UndefinedBehaviorSanitizer"
asan=0
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
  build-asan/tests/unit_tests || { status=1; asan=1; }
echo "== EAL tests under AddressSanitizer + UndefinedBehaviorSanitizer"
eal_asan=0
ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
  build-asan/tests/eal_tests || { status=1; eal_asan=1; }
echo "== the state table's concurrent tests under ThreadSanitizer"
tsan=0
TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1:suppressions=$PWD/tests/eal/tsan.supp \
  build-tsan/tests/eal_tests "[concurrent]" || { status=1; tsan=1; }
echo "== formatting (clang-format 14, .clang-format)"
format=0
scripts/check-format.sh || { status=1; format=1; }
echo "== fuzzers (libFuzzer, ASan + UBSan), 5 s each; longer campaigns: scripts/fuzz.sh SECONDS"
fuzz=0
scripts/fuzz.sh 5 || { status=1; fuzz=1; }

# One closing line for every suite: meson's results plus the sanitizer run.
/usr/bin/python3 - "$asan" "$eal_asan" "$tsan" "$format" "$fuzz" <<'PY'
import json, sys
passed = failed = 0
for line in open("build/meson-logs/testlog.json"):
    result = json.loads(line)["result"]
    passed += result == "OK"
    failed += result != "OK" and result != "SKIP"
passed += sys.argv[1:].count("0")
failed += len(sys.argv[1:]) - sys.argv[1:].count("0")
print(f"syncwall: {passed} passed, {failed} failed")
PY
exit $status
