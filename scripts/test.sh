#!/usr/bin/env bash
# Every test: unit (Catch2), the same unit tests under ASan+UBSan, the EAL dataplane tests
# and the network-namespace lab (pytest). Installs and builds first.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh

# Sanitizer build of the pure code's unit tests.
if [ ! -f build-asan/build.ninja ]; then
  meson setup build-asan -Db_sanitize=address,undefined -Db_lundef=false >/dev/null
fi
ninja -C build-asan tests/unit_tests

export SYNCWALL_BUILD="$PWD/build"
status=0
meson test -C build --print-errorlogs --num-processes 1 || status=1
echo "== unit tests under AddressSanitizer + UndefinedBehaviorSanitizer"
asan=0
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
  build-asan/tests/unit_tests || { status=1; asan=1; }

# One closing line for every suite: meson's results plus the sanitizer run.
/usr/bin/python3 - "$asan" <<'PY'
import json, sys
passed = failed = 0
for line in open("build/meson-logs/testlog.json"):
    result = json.loads(line)["result"]
    passed += result == "OK"
    failed += result != "OK" and result != "SKIP"
passed += sys.argv[1] == "0"
failed += sys.argv[1] != "0"
print(f"syncwall: {passed} passed, {failed} failed")
PY
exit $status
