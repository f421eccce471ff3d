"""`syncwall --check-config` refuses what the daemon would refuse at start: rules that do
not parse, rule features it does not support, routes it cannot install. It compiles the
rules in an EAL of its own (no hugepages, no PCI, no ports), so it also runs beside a
live daemon, and reports file:line:column as the daemon does."""

import subprocess
from pathlib import Path

import pytest

from netlab import find_binary
from pcapcfg import one_port_lan, pcap_config

FW_MAC = "02:00:00:00:00:01"


def write(tmp: Path, name: str, rules, extra: str = "") -> Path:
    path = tmp / name
    path.write_text(pcap_config(name="check", prefix="sw-check", control={"socket": f"{tmp}/fw.sock"},
                                interfaces=one_port_lan(tmp, FW_MAC), rules=rules, extra=extra))
    return path


def check(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(find_binary("syncwall")), "--check-config", str(path)],
                          capture_output=True, text=True, timeout=60)


def test_a_valid_file_compiles_and_says_ok(tmp_path):
    path = write(tmp_path, "ok.yaml", ["block all", "pass in on lan proto tcp to port { 22 80 443 }",
                                       "pass out on lan all"])
    r = check(path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(f"{path}: ok (3 rules, "), r.stdout


@pytest.mark.parametrize("rule, message", [
    ("pass in on lan proto tcp to port 80 frobnicate", 'unknown keyword "frobnicate"'),
    ("match in on lan scrub (no-df)", 'pf option "scrub" is not supported'),
    ("pass in on lan from <nosuchtable> to any", "nosuchtable"),
])
def test_a_rule_the_daemon_refuses_fails_with_its_position(tmp_path, rule, message):
    path = write(tmp_path, "bad.yaml", ["block all", rule])
    r = check(path)
    assert r.returncode == 1, r.stdout
    assert "ok" not in r.stdout
    # The second rule is on line 16 of the file pcap_config writes (after "rules:").
    assert f"{path}:16:" in r.stderr, r.stderr
    assert message in r.stderr, r.stderr


def test_a_route_whose_next_hop_is_on_no_connected_network_fails(tmp_path):
    path = write(tmp_path, "route.yaml", ["block all"],
                 extra="routes:\n  - { to: 10.0.0.0/8, via: 203.0.113.1 }\n")
    r = check(path)
    assert r.returncode == 1, r.stdout
    assert f"{path}:17:" in r.stderr and "is on no connected network" in r.stderr, r.stderr


def test_check_config_leaves_no_eal_runtime_directory(tmp_path):
    path = write(tmp_path, "ok.yaml", ["pass all"])
    before = set(Path("/var/run/dpdk").glob("syncwall-check-*")) if Path("/var/run/dpdk").exists() else set()
    assert check(path).returncode == 0
    after = set(Path("/var/run/dpdk").glob("syncwall-check-*")) if Path("/var/run/dpdk").exists() else set()
    assert after <= before
