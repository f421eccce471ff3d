#!/usr/bin/env bash
# The Debian package, end to end: build it (dpkg-buildpackage, lintian), install it,
# run the installed programs, verify the systemd units, check READY=1 and the watchdog
# pings of an installed syncwall on net_null ports, check syncwall-setup --dry-run, and
# remove the package. Needs root (dpkg -i); skipped (77) otherwise.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
here="$root/tests/pkg"
if [ "$(id -u)" -ne 0 ] || ! command -v dpkg-buildpackage >/dev/null; then
  echo "package: needs root and dpkg-buildpackage (scripts/setup.sh installs it); skipped"
  exit 77
fi
fail() { echo "package: FAILED: $*"; exit 1; }
step() { echo "== package: $*"; }

# Build from a copy of the tree, inside the repository (build-deb/ is ignored, and ccache's
# base_dir makes objects of an earlier package build reusable).
out="$root/build-deb"
src="$out/syncwall-0.1.0"
rm -rf "$out"
mkdir -p "$src"
(cd "$root" && git ls-files -z -co --exclude-standard | tar --null -T - -cf -) | tar -xf - -C "$src"
# nocheck: the unit tests run in the test command already; a plain package build (without
# it) builds and runs them in dh_auto_test.
step "dpkg-buildpackage (DEB_BUILD_OPTIONS=nocheck)"
(cd "$src" && DEB_BUILD_OPTIONS=nocheck dpkg-buildpackage -us -uc -b -j"$(nproc)") > "$out/build.log" 2>&1 \
  || { tail -40 "$out/build.log"; fail "dpkg-buildpackage (log: $out/build.log)"; }
deb=$(ls "$out"/syncwall_*_amd64.deb)
ls "$out"/syncwall-dbgsym_*_amd64.deb >/dev/null || fail "no -dbgsym package"
step "lintian"
lintian --fail-on error "$out"/syncwall_*_amd64.changes || fail "lintian reports errors"

# The package goes, and so does the runtime directory EAL leaves for the probed syncwall.
cleanup() {
  dpkg --purge syncwall >/dev/null 2>&1 || true
  rm -rf /var/run/dpdk/syncwall-pkgtest
}
trap cleanup EXIT
step "dpkg -i $(basename "$deb")"
dpkg -i "$deb" || fail "dpkg -i"
for f in /usr/sbin/syncwall /usr/bin/syncwallctl /usr/sbin/syncwall-setup /etc/syncwall/syncwall.yaml \
         /lib/systemd/system/syncwall.service /lib/systemd/system/syncwall@.service \
         /usr/share/man/man8/syncwall.8.gz /usr/share/man/man8/syncwallctl.8.gz \
         /usr/share/man/man5/syncwall.yaml.5.gz /usr/share/bash-completion/completions/syncwallctl \
         /usr/share/doc/syncwall/examples/default.yaml; do
  [ -e "$f" ] || fail "$f is not installed"
done
/usr/sbin/syncwall --check-config /etc/syncwall/syncwall.yaml || fail "installed --check-config"
/usr/bin/syncwallctl --help | grep -q "show" || fail "installed syncwallctl --help"
bash -c 'source /usr/share/bash-completion/bash_completion 2>/dev/null; source /usr/share/bash-completion/completions/syncwallctl; complete -p syncwallctl' \
  | grep -q _syncwallctl || fail "bash completion does not register"

step "systemd-analyze verify"
verify=$(mktemp -d)
cp /lib/systemd/system/syncwall.service "$verify/"
cp /lib/systemd/system/syncwall@.service "$verify/syncwall@edge.service"
if ! (cd "$verify" && SYSTEMD_LOG_LEVEL=warning systemd-analyze verify --man=no \
       ./syncwall.service ./syncwall@edge.service) > "$verify/log" 2>&1; then
  cat "$verify/log"; rm -rf "$verify"; fail "systemd-analyze verify"
fi
cat "$verify/log"
grep -q "syncwall" "$verify/log" && { rm -rf "$verify"; fail "systemd-analyze verify complains about the units"; }
rm -rf "$verify"

step "READY=1 and WATCHDOG=1 from the installed syncwall (net_null ports)"
cfg=$(mktemp --suffix=.yaml)
sed -e "s|/run/syncwall/syncwall.sock|${cfg%.yaml}.sock|" -e "s|127.0.0.1:9101|127.0.0.1:19131|" \
    -e 's|"--file-prefix", "syncwall"|"--file-prefix", "syncwall-pkgtest"|' /etc/syncwall/syncwall.yaml > "$cfg"
flock /tmp/syncwall-lab.lock /usr/bin/python3 "$here/notify_probe.py" /usr/sbin/syncwall "$cfg" 2000 5 \
  || { rm -f "$cfg"; fail "sd_notify READY/WATCHDOG"; }
step "log priorities when JOURNAL_STREAM names stdout"
flock /tmp/syncwall-lab.lock /usr/bin/python3 "$here/notify_probe.py" /usr/sbin/syncwall "$cfg" 2000 1 journal \
  || { rm -f "$cfg"; fail "journald priority prefixes"; }
rm -f "$cfg" "${cfg%.yaml}.sock"
rm -rf /var/run/dpdk/syncwall-pkgtest

step "syncwall-setup --dry-run"
"$here/test_setup_dry_run.sh" /usr/sbin/syncwall-setup || fail "syncwall-setup --dry-run"

step "dpkg --purge"
dpkg --purge syncwall || fail "dpkg --purge"
trap - EXIT
for f in /usr/sbin/syncwall /usr/bin/syncwallctl /etc/syncwall/syncwall.yaml /lib/systemd/system/syncwall.service; do
  [ ! -e "$f" ] || fail "$f is left after purge"
done
echo "package: ok"
