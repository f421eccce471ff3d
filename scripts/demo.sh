#!/usr/bin/env bash
# The main job: install, build, and run the demo (see README).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec /usr/bin/python3 tests/lab/demo.py "$@"
