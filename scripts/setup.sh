#!/usr/bin/env bash
# Install what syncwall needs on Debian 12 (as root), then configure and build it.
# Idempotent: packages already present are not fetched again, an existing build is reused.
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(
  build-essential g++ meson ninja-build pkg-config clang libclang-rt-14-dev clang-format
  dpdk dpdk-dev libdpdk-dev libyaml-cpp-dev libboost-dev catch2 libssl-dev
  nlohmann-json3-dev libcli11-dev libpcap-dev
  python3 python3-pytest python3-scapy
  iproute2 iputils-ping ethtool iperf3 tshark ucarp curl procps
  libsystemd-dev systemd debhelper dpkg-dev lintian python3-yaml kmod bash-completion
  valgrind
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: missing packages: ${missing[*]} (run as root to install them)" >&2
    exit 1
  fi
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

build() { # build DIR [meson options...]
  local dir=$1; shift
  if [ ! -f "$dir/build.ninja" ]; then
    meson setup "$dir" "$@" >/dev/null
  fi
  ninja -C "$dir"
}

build build
