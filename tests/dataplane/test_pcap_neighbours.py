"""EAL test on a net_pcap port: what the slow path learns from unsolicited neighbour
messages, and how many packets it holds for next-hop resolution.

One port (router on a stick) reads in.pcap and writes out.pcap; bursts of one frame keep the
worker's punts in the order the frames were written.
"""

from pathlib import Path

import pytest
from scapy.all import (ARP, IP, UDP, Ether, ICMPv6ND_NA, ICMPv6ND_NS, ICMPv6NDOptDstLLAddr,
                       ICMPv6NDOptSrcLLAddr, IPv6, Raw, rdpcap, wrpcap)

from netlab import parse_counters, run_syncwall_for
from pcapcfg import pcap_config

OUR_MAC, HOST_MAC = "02:00:00:00:00:01", "02:00:00:00:0c:01"
EVIL_MAC, MAC_A, MAC_B = "02:00:00:00:ee:ee", "02:00:00:00:0a:0a", "02:00:00:00:0b:0b"
OURS6 = "2001:db8:2::1"


def config(tmp: Path, burst: int) -> str:
    port = {"devargs": f'"net_pcap0,rx_pcap={tmp}/in.pcap,tx_pcap={tmp}/out.pcap"',
            "addresses": f'[192.0.2.1/24, "{OURS6}/64"]', "mac": f'"{OUR_MAC}"'}
    return pcap_config(name="pcap-neighbours", prefix="sw-pcap", control={"socket": f"{tmp}/fw.sock"},
                       interfaces={"lan": port}, burst=burst)


def run(tmp: Path, frames: list, burst: int) -> dict:
    wrpcap(str(tmp / "in.pcap"), frames)
    (tmp / "fw.yaml").write_text(config(tmp, burst))
    code, output = run_syncwall_for(tmp / "fw.yaml", 4.5)
    assert code == 0, output
    return {"output": output, "counters": parse_counters(output), "out": rdpcap(str(tmp / "out.pcap"))}


def to_us(pkt):
    return Ether(src=HOST_MAC, dst=OUR_MAC) / pkt


def udp6(dst: str, sport: int):
    return to_us(IPv6(src="2001:db8:2::99", dst=dst, hlim=64) / UDP(sport=sport, dport=9) / Raw(b"v6"))


def na(target: str, lladdr: str, override: int):
    return to_us(IPv6(src=target, dst=OURS6, hlim=255) / ICMPv6ND_NA(tgt=target, S=0, O=override, R=0)
                 / ICMPv6NDOptDstLLAddr(lladdr=lladdr))


@pytest.fixture(scope="module")
def nd_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("pcap-nd")
    frames = [
        # An unsolicited NA for a neighbour nobody asked about, then traffic to it.
        na("2001:db8:2::30", EVIL_MAC, 1),
        udp6("2001:db8:2::30", 1),
        # ::40 asks for our address: we learn it (MAC_A) from its NS.
        Ether(src=MAC_A, dst="33:33:ff:00:00:01")
        / IPv6(src="2001:db8:2::40", dst="ff02::1:ff00:1", hlim=255)
        / ICMPv6ND_NS(tgt=OURS6) / ICMPv6NDOptSrcLLAddr(lladdr=MAC_A),
        # An NA without Override that names another address for ::40, then traffic to it.
        na("2001:db8:2::40", MAC_B, 0),
        udp6("2001:db8:2::40", 2),
    ]
    return run(tmp, frames, burst=1)


def test_unsolicited_na_for_an_unknown_neighbour_creates_no_entry(nd_run):
    out = nd_run["out"]
    assert not [p for p in out if p[Ether].dst == EVIL_MAC], nd_run["output"]
    # The packet waited for a resolution of its own: an NS for ::30, no answer, dropped.
    assert [p for p in out if ICMPv6ND_NS in p and p[ICMPv6ND_NS].tgt == "2001:db8:2::30"]
    assert nd_run["counters"].get("drop.neighbour_unresolved") == 1, nd_run["output"]


def test_na_without_override_does_not_replace_a_known_address(nd_run):
    out = nd_run["out"]
    sent = [p for p in out if UDP in p and p[UDP].sport == 2]
    assert len(sent) == 1, nd_run["output"]
    assert sent[0][Ether].dst == MAC_A
    assert not [p for p in out if p[Ether].dst == MAC_B]


@pytest.fixture(scope="module")
def hold_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("pcap-hold")
    # 40 unused addresses of a connected network, 16 packets each: 640 packets to hold, more
    # than a quarter of the 2047-mbuf pool (511).
    frames = [to_us(IP(src="198.51.100.7", dst=f"192.0.2.{100 + n}") / UDP(sport=1000 + i, dport=9))
              for i in range(16) for n in range(40)]
    return run(tmp, frames, burst=32)


def test_packets_held_for_resolution_are_capped_in_total_and_counted(hold_run):
    c = hold_run["counters"]
    held_cap = 2047 // 4
    unresolved = c.get("drop.neighbour_unresolved", 0)
    capped = c.get("drop.neighbour_hold_full", 0)
    assert 0 < unresolved <= held_cap, hold_run["output"]
    assert capped > 0, hold_run["output"]
    # Every packet is accounted for: held then given up, refused by the cap, or (if the main
    # lcore fell behind) refused at the punt ring.
    assert unresolved + capped + c.get("drop.punt_ring_full", 0) == 640, hold_run["output"]
    # Each of the 40 neighbours was asked for.
    asked = {p[ARP].pdst for p in hold_run["out"] if ARP in p and p[ARP].op == 1}
    assert len(asked) == 40
