#!/usr/bin/env bash
# Every tracked C++ file as .clang-format (Debian's clang-format 14) lays it out; lists the
# files that are not and exits 1. `scripts/check-format.sh --fix` formats them in place.
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t files < <(git ls-files '*.cpp' '*.hpp' '*.h')
if [ "${1:-}" = "--fix" ]; then
  clang-format -i "${files[@]}"
  exit 0
fi
bad=0
for f in "${files[@]}"; do
  if ! clang-format --dry-run -Werror "$f" >/dev/null 2>&1; then
    echo "not formatted: $f (scripts/check-format.sh --fix)"
    bad=1
  fi
done
[ "$bad" = 0 ] && echo "format: ${#files[@]} C++ files as .clang-format lays them out"
exit $bad
