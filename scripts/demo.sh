#!/usr/bin/env bash
# The main job: install, build, and run the two-node failover demo (see README).
#   scripts/demo.sh           the HA demo: kill the master, lose nothing
#   scripts/demo.sh --routed  the single-firewall demo: a pf ruleset routing two hosts
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
if [ "${1:-}" = "--routed" ]; then
  shift
  exec /usr/bin/python3 tests/lab/demo.py "$@"
fi
exec /usr/bin/python3 tests/lab/ha_demo.py "$@"
