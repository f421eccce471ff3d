"""CARP over IPv6 in the HA lab: two syncwall nodes whose vhids carry only IPv6 addresses.

client ── [lan] ──┬── fwa ──┬── [wan] ── server      vhid 1: 2001:db8:1::fe on lan
                  └── fwb ──┘                         vhid 2: 2001:db8:2::fe on wan

halab's topology built with ipv6=True (the client and the server speak IPv6; the firewall
namespaces keep their kernels off the ports) and config(vips="v6"). fwa has advskew 0, fwb
50, advbase 1, preempt on. One lab serves the module; every test starts from both nodes
running with fwa master of both vhids.
"""

import signal
import time

import pytest

from carplab import CARP_HEADER_BUILDER, TAKEOVER_S, both_masters, logs, port_mac, python, vhid
from halab import HaLab, ha_lab
from netlab import Lab, wait_until


# Neighbour solicitation for argv[1] from the client to its solicited-node group; prints
# every solicited NA for that target as "<target lladdr> <Ethernet source>". Sniffs rather
# than matches with srp: answers to a multicast question.
ND_PROBE = """
import socket, sys, time
from scapy.all import (AsyncSniffer, Ether, ICMPv6ND_NA, ICMPv6ND_NS, ICMPv6NDOptDstLLAddr,
                       ICMPv6NDOptSrcLLAddr, IPv6, conf, get_if_hwaddr, sendp)
from scapy.layers.inet6 import in6_getnsma, in6_getnsmac
conf.verb = 0
target = sys.argv[1]
group = in6_getnsma(socket.inet_pton(socket.AF_INET6, target))
dst_mac = in6_getnsmac(group)
mac = get_if_hwaddr("eth0")
sniffer = AsyncSniffer(iface="eth0", filter="icmp6", store=True)
sniffer.start()
time.sleep(0.3)
sendp(Ether(src=mac, dst=dst_mac) /
      IPv6(src="2001:db8:1::10", dst=socket.inet_ntop(socket.AF_INET6, group), hlim=255) /
      ICMPv6ND_NS(tgt=target) / ICMPv6NDOptSrcLLAddr(lladdr=mac), iface="eth0")
time.sleep(1.5)
for p in sniffer.stop():
    if ICMPv6ND_NA in p and p[ICMPv6ND_NA].tgt == target and p[ICMPv6ND_NA].S == 1:
        ll = p[ICMPv6NDOptDstLLAddr].lladdr if ICMPv6NDOptDstLLAddr in p else "-"
        print(ll, p[Ether].src)
"""

# Forged vhid-1 IPv6 adverts from the client to ff02::12: a wrong digest (hop limit 255),
# a hop limit of 64, a broken checksum, and a header cut to 30 bytes.
FORGED_ADVERTS = """
from scapy.all import IPv6, Ether, Raw, conf, sendp
conf.verb = 0
""" + CARP_HEADER_BUILDER + """
def send(payload, hlim):
    sendp(Ether(dst="33:33:00:00:00:12") / IPv6(src="fe80::10", dst="ff02::12", hlim=hlim, nh=112)
          / Raw(payload), iface="eth0")

send(carp(1), 255)
send(carp(1), 64)
send(carp(1, good_sum=False), 255)
send(carp(1)[:30], 255)
"""








def link_local_of(mac: str) -> str:
    """The modified EUI-64 link-local address of `mac`, as `ip -6` would print it."""
    b = [int(x, 16) for x in mac.split(":")]
    b[0] ^= 0x02
    words = [b[0] << 8 | b[1], b[2] << 8 | 0xff, 0xfe << 8 | b[3], b[4] << 8 | b[5]]
    return "fe80::" + ":".join(f"{w:x}" for w in words)






@pytest.fixture(scope="module")
def lab_ha():
    with Lab() as lab:
        yield ha_lab(lab, nodes=2, ipv6=True)


@pytest.fixture
def ha(lab_ha: HaLab):
    """Both nodes running with IPv6-only vhids, fwa the master of both."""
    ha = lab_ha
    for i in (0, 1):
        if not ha.running(i):
            ha.start(i, vips="v6")
    try:
        both_masters(ha, 0, 8)
    except AssertionError:  # a failed test left something odd: start over
        for i in (0, 1):
            ha.stop(i)
        ha.start(0, vips="v6")
        ha.start(1, vips="v6")
        both_masters(ha, 0, 10)
    return ha


def test_one_master_per_ipv6_only_vhid_advertising_on_ipv6_alone(ha: HaLab):
    for n in (1, 2):
        a, b = vhid(ha, 0, n), vhid(ha, 1, n)
        assert (a["role"], b["role"]) == ("master", "backup")
        assert a["addresses"] == [f"{HaLab.VIP6_LAN if n == 1 else HaLab.VIP6_WAN}/64"]
        # IPv6 adverts only, from the port's link-local address; the backup hears them.
        port = "lan" if n == 1 else "wan"
        assert a["advert_sources"] == {"ipv6": link_local_of(port_mac(ha, 0, port))}, a
        assert a["adverts_by_family"]["ipv4"]["sent"] == 0
        assert a["adverts_by_family"]["ipv6"]["sent"] > 0
        assert b["adverts_by_family"]["ipv6"]["received"] > 0
        assert b["adverts_by_family"]["ipv4"]["received"] == 0
        assert sum(a["adverts_rejected"].values()) == 0, a
        assert sum(b["adverts_rejected"].values()) == 0, b
    # Traffic goes through the master on the IPv6 virtual gateways.
    res = ha.lab.exec(ha.client, f"ping -6 -c 3 -i 0.2 -W 1 {HaLab.SERVER6}", check=False)
    assert " 0% packet loss" in res.stdout, res.stdout + res.stderr


def test_adverts_decode_as_carp_over_ipv6_to_ff02_12_with_hop_limit_255(ha: HaLab):
    res = ha.lab.exec(ha.switch, ["tshark", "-n", "-i", "fwa-lan", "-a", "duration:3",
                                  "-f", "ip proto 112 or ip6 proto 112",
                                  "-d", "ip.proto==112,carp",
                                  "-T", "fields", "-E", "separator=,",
                                  "-e", "frame.protocols", "-e", "eth.src", "-e", "eth.dst",
                                  "-e", "ipv6.src", "-e", "ipv6.dst", "-e", "ipv6.hlim",
                                  "-e", "carp.version", "-e", "carp.type", "-e", "carp.vhid",
                                  "-e", "carp.advskew", "-e", "carp.checksum.status"],
                       timeout=20)
    lines = [line for line in res.stdout.splitlines() if line.strip()]
    assert len(lines) >= 2, res.stdout + res.stderr
    source = link_local_of(port_mac(ha, 0, "lan"))
    for line in lines:
        protocols, src, dst, ip_src, ip_dst, hlim, version, typ, vh, skew, status = \
            line.split(",")
        assert protocols.endswith(":ipv6:carp"), line  # no IPv4 advert for this vhid
        assert (src, dst, ip_src, ip_dst, hlim, version, typ, vh, skew) == \
            (HaLab.vmac(1), "33:33:00:00:00:12", source, "ff02::12", "255", "2", "1", "1",
             "0"), line
        assert status in ("1", "Good"), line


def test_backup_never_answers_nd_for_the_virtual_address(ha: HaLab):
    lab = ha.lab
    # The solicitation goes to the VIP's solicited-node group: both nodes' slow paths see it
    # (workers punt every multicast frame). One answer, from the master, with the virtual
    # MAC; a backup answering too would show as a second pair.
    answers = python(lab, ha.client, ND_PROBE, HaLab.VIP6_LAN).split()
    assert answers == [HaLab.vmac(1), HaLab.vmac(1)], answers
    # The backup does answer, the same way, for its own address (the probe reaches it).
    backup_mac = port_mac(ha, 1, "lan")
    assert python(lab, ha.client, ND_PROBE, HaLab.lan6_addr(1)).split() == \
        [backup_mac, backup_mac]


def test_rejected_ipv6_adverts_are_counted_by_reason(ha: HaLab):
    reasons = ("bad_digest", "bad_ttl", "bad_checksum", "bad_length")
    before = [vhid(ha, i, 1)["adverts_rejected"] for i in (0, 1)]
    python(ha.lab, ha.client, FORGED_ADVERTS)

    def counted():
        after = [vhid(ha, i, 1)["adverts_rejected"] for i in (0, 1)]
        return all(after[i][r] == before[i][r] + 1 for i in (0, 1) for r in reasons) and after
    wait_until(counted, 3, what="four rejections counted on both nodes")
    assert vhid(ha, 0, 1)["role"] == "master" and vhid(ha, 1, 1)["role"] == "backup"


def test_sigkill_of_the_master_moves_the_role_and_nd_follows(ha: HaLab):
    t0 = time.monotonic()
    ha.stop(0, signal.SIGKILL)
    assert ha.wait_single_master(1, TAKEOVER_S + 2) == 1
    assert ha.wait_single_master(2, TAKEOVER_S + 2) == 1
    took = time.monotonic() - t0
    assert took <= TAKEOVER_S, f"takeover took {took:.2f}s\n{logs(ha)}"
    assert vhid(ha, 1, 1)["last_reason"] == "no advertisement for 3 intervals"
    # The new master answers ND for the virtual address, with the same virtual MAC.
    answers = python(ha.lab, ha.client, ND_PROBE, HaLab.VIP6_LAN).split()
    assert answers == [HaLab.vmac(1), HaLab.vmac(1)], answers
    res = ha.lab.exec(ha.client, f"ping -6 -c 3 -i 0.2 -W 1 {HaLab.SERVER6}", check=False)
    assert " 0% packet loss" in res.stdout, res.stdout + res.stderr
    # fwa comes back as backup and, with preempt, takes the role back on fwb's adverts.
    ha.start(0, vips="v6")
    both_masters(ha, 0, 8)
    assert vhid(ha, 0, 1)["last_reason"] == "preempting a slower master"


def test_a_mixed_vhid_advertises_on_both_families_and_both_are_accepted(ha: HaLab):
    """vips="both": one advert becomes two frames, 224.0.0.18 and ff02::12, with one HMAC
    over the IPv4 and the IPv6 addresses; each node accepts both from the other."""
    for i in (1, 0):
        ha.stop(i)
    try:
        ha.start(0, vips="both")
        ha.start(1, vips="both")
        both_masters(ha, 0, 8)
        wait_until(lambda: all(vhid(ha, 1, 1)["adverts_by_family"][f]["received"] >= 2
                               for f in ("ipv4", "ipv6")), 5, what="adverts of both families")
        for n in (1, 2):
            a, b = vhid(ha, 0, n), vhid(ha, 1, n)
            assert set(a["advert_sources"]) == {"ipv4", "ipv6"}, a
            assert a["adverts_by_family"]["ipv4"]["sent"] > 0
            assert a["adverts_by_family"]["ipv6"]["sent"] > 0
            assert sum(b["adverts_rejected"].values()) == 0, b
            assert sum(a["adverts_rejected"].values()) == 0, a
    finally:
        for i in (1, 0):  # the next test starts both with IPv6-only vhids again
            ha.stop(i)
