"""The stateful filter in the namespace lab: client ── syncwall ── server with pf rules."""

import json
import signal
import time
from pathlib import Path

import pytest

from netlab import Lab, RoutedLab, parse_counters, routed_lab, wait_until

PROBE = str(Path(__file__).resolve().parent / "probe.py")

RULES = """
tables:
  servers: [198.51.100.10]
rules:
  - "block return all"
  - "pass out all"
  - "pass in on lan proto tcp from lan:network to <servers> port { 5201 8080 }"
  - "pass in on lan proto udp from lan:network to <servers> port 5353"
  - "pass in on lan inet proto icmp icmp-type echoreq"
  - "pass in inet6 proto icmp6 icmp6-type { echoreq neighbrsol neighbradv }"
"""

OPEN_7000 = RULES + '  - "pass in on lan proto tcp to port 7000"\n'


def probe(lab: Lab, ns: str, *args: str) -> tuple[str, float]:
    res = lab.exec(ns, ["/usr/bin/python3", PROBE, *args], check=False, timeout=20)
    words = res.stdout.split()
    assert len(words) == 2, res.stdout + res.stderr
    return words[0], float(words[1])


@pytest.fixture(scope="module")
def fw():
    with Lab() as lab:
        r = routed_lab(lab)
        r.start(RULES)
        wait_until(lambda: lab.exec(r.client, f"ping -c 1 -W 1 {r.FW_LAN4}", check=False).returncode == 0,
                   timeout=30, what="syncwall answering ping")
        for port in (8080, 7000, 9999):
            srv = lab.spawn(f"tcp{port}", r.server, ["/usr/bin/python3", PROBE, "serve", "tcp", r.SERVER4, str(port)])
            srv.wait_for_line("listening", 10)
        srv = lab.spawn("udp5353", r.server, ["/usr/bin/python3", PROBE, "serve", "udp", r.SERVER4, "5353"])
        srv.wait_for_line("listening", 10)
        srv = lab.spawn("client-tcp", r.client, ["/usr/bin/python3", PROBE, "serve", "tcp", r.CLIENT4, "2222"])
        srv.wait_for_line("listening", 10)
        yield r
        assert r.fw_proc.stop() == 0, r.fw_proc.output()


def test_allowed_tcp_passes_through_state(fw: RoutedLab):
    assert probe(fw.lab, fw.client, "tcp", fw.SERVER4, "8080")[0] == "connected"


def test_blocked_port_is_refused_at_once_by_block_return(fw: RoutedLab):
    result, seconds = probe(fw.lab, fw.client, "tcp", fw.SERVER4, "9999", "5")
    assert result == "refused"
    assert seconds < 1.0


def test_connection_from_outside_is_blocked(fw: RoutedLab):
    # Nothing passes in on wan except ICMPv6 ND/echo: the server cannot reach the client.
    result, _ = probe(fw.lab, fw.server, "tcp", fw.CLIENT4, "2222", "3")
    assert result == "refused"


def test_allowed_udp_gets_its_reply_through_state(fw: RoutedLab):
    assert probe(fw.lab, fw.client, "udp", fw.SERVER4, "5353")[0] == "reply"


def test_ping_allowed_out_but_not_in(fw: RoutedLab):
    lab = fw.lab
    assert lab.exec(fw.client, f"ping -c 2 -i 0.2 -W 2 {fw.SERVER4}", check=False).returncode == 0
    res = lab.exec(fw.server, f"ping -c 2 -i 0.2 -W 1 {fw.CLIENT4}", check=False)
    assert res.returncode != 0
    # block return answers the echo request with "port unreachable" from the firewall.
    assert "Destination Port Unreachable" in res.stdout or "Unreachable" in res.stdout, res.stdout


def test_ping6_with_neighbour_discovery_allowed(fw: RoutedLab):
    lab = fw.lab
    wait_until(lambda: lab.exec(fw.client, f"ping -6 -c 1 -W 1 {fw.SERVER6}", check=False).returncode == 0,
               timeout=15, what="ping6 through syncwall")


def test_reload_opens_a_port_without_breaking_a_running_transfer(fw: RoutedLab):
    lab = fw.lab
    assert probe(lab, fw.client, "tcp", fw.SERVER4, "7000", "3")[0] == "refused"
    server = lab.spawn("iperf3", fw.server, ["iperf3", "-s", "-1", "-p", "5201", "-B", fw.SERVER4])
    wait_until(lambda: ":5201" in lab.exec(fw.server, "ss -ltn").stdout, 10, what="iperf3 listening")
    client = lab.spawn("iperf3-client", fw.client, ["iperf3", "-c", fw.SERVER4, "-t", "5", "-J"])
    time.sleep(1.5)  # the transfer is under way when the ruleset changes
    (lab.tmp / "fw.yaml").write_text(fw.config(OPEN_7000))
    fw.fw_proc.popen.send_signal(signal.SIGHUP)
    fw.fw_proc.wait_for_line(r"^syncwall: reloaded", 10)
    assert probe(lab, fw.client, "tcp", fw.SERVER4, "7000", "3")[0] == "connected"
    client.popen.wait(20)
    server.stop()
    assert client.popen.returncode == 0, client.output()
    result = json.loads(client.output())
    assert "error" not in result, result.get("error")
    assert result["end"]["sum_received"]["bytes"] > 1_000_000, client.output()[-3000:]


def test_broken_reload_changes_nothing(fw: RoutedLab):
    lab = fw.lab
    (lab.tmp / "fw.yaml").write_text(fw.config(RULES + '  - "pass in on lan proto tcp to port 70000"\n'))
    fw.fw_proc.popen.send_signal(signal.SIGHUP)
    line = fw.fw_proc.wait_for_line(r"^syncwall: reload failed", 10)
    assert "70000" in line or "port" in line
    assert probe(lab, fw.client, "tcp", fw.SERVER4, "8080")[0] == "connected"
    assert probe(lab, fw.client, "tcp", fw.SERVER4, "9999", "5")[0] == "refused"


def test_state_limit_reached_and_recovered():
    with Lab() as lab:
        r = routed_lab(lab)
        r.start("""
limits: { states: 6 }
timeouts: { udp.first: 2, udp.single: 2, udp.multiple: 2, interval: 1,
            adaptive.start: 1000, adaptive.end: 2000 }  # no adaptive scaling this close to the limit
rules:
  - "block return all"
  - "pass out all"
  - "pass in on lan proto udp to port 5353"
""")
        srv = lab.spawn("udp5353", r.server, ["/usr/bin/python3", PROBE, "serve", "udp", r.SERVER4, "5353"])
        srv.wait_for_line("listening", 10)
        # Address resolution first: the hosts' ARP requests teach syncwall their addresses
        # (ARP is not filtered; the pings themselves are blocked and make no state).
        wait_until(lambda: lab.exec(r.client, f"ping -c 1 -W 1 {r.FW_LAN4}", check=False).stdout.count("Unreachable"),
                   15, what="syncwall answering on lan")
        wait_until(lambda: lab.exec(r.server, f"ping -c 1 -W 1 {r.FW_WAN4}", check=False).stdout.count("Unreachable"),
                   15, what="syncwall answering on wan")
        # Each flow takes two states (in on lan, out on wan): with 6, the 4th flow is refused.
        results = [probe(lab, r.client, "udp", r.SERVER4, "5353", "1")[0] for _ in range(4)]
        assert results == ["reply", "reply", "reply", "timeout"], (results, r.fw_proc.stop(), r.fw_proc.output())
        # The UDP states expire after 2 s and the sweep removes them: new flows pass again.
        wait_until(lambda: probe(lab, r.client, "udp", r.SERVER4, "5353", "1")[0] == "reply", 10,
                   what="a new flow after the states expired")
        assert r.fw_proc.stop() == 0
        c = parse_counters(r.fw_proc.output())
        assert c.get("drop.filter_state_limit", 0) >= 1, r.fw_proc.output()
        assert c["state_removals"] >= 6
