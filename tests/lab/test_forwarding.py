"""client ── syncwall (two net_af_packet ports) ── server, in network namespaces."""

import json
import re

import pytest

from netlab import Lab, RoutedLab, parse_counters, routed_lab, wait_until


@pytest.fixture(scope="module")
def routed():
    with Lab() as lab:
        r = routed_lab(lab)
        r.start()
        # Readiness: the firewall answers ping on its LAN address (ARP + ICMP via the slow path).
        wait_until(lambda: lab.exec(r.client, f"ping -c 1 -W 1 {r.FW_LAN4}", check=False).returncode == 0,
                   timeout=30, what="syncwall answering ping")
        yield r
        code = r.fw_proc.stop()
        assert code == 0, r.fw_proc.output()


def test_ping_through_firewall(routed: RoutedLab):
    res = routed.lab.exec(routed.client, f"ping -c 5 -i 0.2 -W 2 {routed.SERVER4}", check=False)
    assert res.returncode == 0, res.stdout + res.stderr
    assert " 0% packet loss" in res.stdout


def test_ping6_through_firewall(routed: RoutedLab):
    lab = routed.lab
    wait_until(lambda: lab.exec(routed.client, f"ping -6 -c 1 -W 1 {routed.FW_LAN6}", check=False).returncode == 0,
               timeout=15, what="syncwall answering ping6 (neighbour discovery)")
    res = lab.exec(routed.client, f"ping -6 -c 5 -i 0.2 -W 2 {routed.SERVER6}", check=False)
    assert res.returncode == 0, res.stdout + res.stderr
    assert " 0% packet loss" in res.stdout


def test_firewall_answers_on_both_sides(routed: RoutedLab):
    lab = routed.lab
    assert lab.exec(routed.server, f"ping -c 2 -i 0.2 -W 2 {routed.FW_WAN4}", check=False).returncode == 0
    # The far-side address of the firewall is local too, reached through it.
    assert lab.exec(routed.client, f"ping -c 2 -i 0.2 -W 2 {routed.FW_WAN4}", check=False).returncode == 0


def test_ttl_expiry_gets_time_exceeded_from_firewall(routed: RoutedLab):
    res = routed.lab.exec(routed.client, f"ping -c 1 -t 1 -W 2 {routed.SERVER4}", check=False)
    assert re.search(rf"From {re.escape(routed.FW_LAN4)}.*Time to live exceeded", res.stdout), res.stdout


def test_tcp_transfer_through_firewall(routed: RoutedLab):
    lab = routed.lab
    server = lab.spawn("iperf3-server", routed.server, ["iperf3", "-s", "-1", "-B", routed.SERVER4])
    wait_until(lambda: ":5201" in lab.exec(routed.server, "ss -ltn").stdout, 10, what="iperf3 listening")
    res = lab.exec(routed.client, ["iperf3", "-c", routed.SERVER4, "-t", "3", "-J"], check=False, timeout=30)
    server.stop()
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr
    result = json.loads(res.stdout)
    received = result["end"]["sum_received"]["bytes"]
    assert received > 1_000_000, f"only {received} bytes received"


def test_counters_printed_on_exit_count_forwarded_packets():
    with Lab() as lab:
        r = routed_lab(lab)
        proc = r.start()
        wait_until(lambda: lab.exec(r.client, f"ping -c 1 -W 1 {r.SERVER4}", check=False).returncode == 0,
                   timeout=30, what="ping through syncwall")
        lab.exec(r.client, f"ping -c 10 -i 0.05 -W 1 {r.SERVER4}")
        assert proc.stop() == 0
        counters = parse_counters(proc.output())
        assert "syncwall: stopping (SIGTERM)" in proc.output()
        # 10 echo requests and 10 replies at least, plus the readiness ping(s).
        assert counters["forwarded"] >= 20, proc.output()
        assert counters["port.lan.rx_packets"] >= 11
        assert counters["port.wan.tx_packets"] >= 11
