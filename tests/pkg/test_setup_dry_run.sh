#!/usr/bin/env bash
# syncwall-setup --dry-run on a YAML with PCI ports prints the hugepage and binding commands
# and runs nothing. Argument: the syncwall-setup to test (default: the tree's).
set -euo pipefail
setup=${1:-$(cd "$(dirname "$0")/../.." && pwd)/dist/syncwall-setup}
cfg=$(mktemp --suffix=.yaml)
trap 'rm -f "$cfg"' EXIT
cat > "$cfg" <<'YAML'
node: {name: fw-a, hostid: 1}
dpdk:
  eal_args: ["--file-prefix", "fw-a", "--lcores", "0@0,1@2"]
interfaces:
  lan: {devargs: "0000:03:00.0", addresses: [192.0.2.1/24]}
  wan: {devargs: "04:00.1,rx_vec_en=0", addresses: [198.51.100.1/24]}
  sync: {devargs: "net_af_packet0,iface=eth9", addresses: [203.0.113.1/24]}
YAML
got=$("$setup" --dry-run --hugepages 4G "$cfg")
echo "$got"
expect=(
  "syncwall-setup: interface lan is PCI device 0000:03:00.0"
  "syncwall-setup: interface wan is PCI device 0000:04:00.1"
  "would run: dpdk-hugepages.py --pagesize 2M --setup 4G"
  "would run: modprobe vfio-pci"
  "would run: dpdk-devbind.py --bind=vfio-pci 0000:03:00.0 0000:04:00.1"
)
for line in "${expect[@]}"; do
  grep -qxF "$line" <<<"$got" || { echo "dry-run: missing: $line"; exit 1; }
done
grep -q "eth9\|net_af_packet" <<<"$got" && { echo "dry-run: a virtual device was taken for PCI"; exit 1; }
grep -q "^running:" <<<"$got" && { echo "dry-run: ran a command"; exit 1; }
# A config with --no-huge reserves no hugepages; a broken file is an error, not a traceback.
sed -i 's|"--file-prefix"|"--no-huge", "--file-prefix"|' "$cfg"
"$setup" --dry-run "$cfg" | grep -q "dpdk-hugepages" && { echo "dry-run: hugepages with --no-huge"; exit 1; }
echo "interfaces: [" > "$cfg"
if err=$("$setup" --dry-run "$cfg" 2>&1); then echo "dry-run: a broken YAML passed"; exit 1; fi
grep -q "Traceback" <<<"$err" && { echo "dry-run: traceback on a broken YAML"; exit 1; }
echo "dry-run: ok"
