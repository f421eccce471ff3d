"""EAL test on net_pcap ports: crafted frames in, the real worker loop, frames out.

syncwall runs with two net_pcap ports whose input pcaps scapy wrote; after it stops, the
output pcaps hold what it transmitted and its exit report holds the counters.
"""

from pathlib import Path

import pytest
from scapy.all import (ARP, ICMP, IP, TCP, UDP, Ether, ICMPv6EchoRequest, ICMPv6ND_NA,
                       ICMPv6NDOptDstLLAddr, IPv6, Raw, rdpcap, wrpcap)

from scapy.layers.inet import IPerror

from netlab import parse_counters, run_syncwall_for
from pcapcfg import one_port_lan, pcap_config

LAN_MAC, WAN_MAC = "02:00:00:00:00:01", "02:00:00:00:00:02"
CLIENT_MAC, GW_MAC, HOST6_MAC = "02:00:00:00:0c:01", "02:00:00:00:0e:fe", "02:00:00:00:0e:20"


def config(tmp: Path) -> str:
    def port(n, name, addresses, mac):
        return {"devargs": f'"net_pcap{n},rx_pcap={tmp}/{name}_in.pcap,tx_pcap={tmp}/{name}_out.pcap"',
                "addresses": addresses, "mac": f'"{mac}"'}
    return pcap_config(name="pcap-test", prefix="sw-pcap", hostid=7,
                       control={"socket": f"{tmp}/fw.sock"},
                       interfaces={"lan": port(0, "lan", "[192.0.2.1/24]", LAN_MAC),
                                   "wan": port(1, "wan", '[198.51.100.1/24, "2001:db8:2::1/64"]', WAN_MAC)},
                       extra="routes:\n  - { to: 0.0.0.0/0, via: 198.51.100.254 }\n")


def lan(pkt):
    return Ether(src=CLIENT_MAC, dst=LAN_MAC) / pkt


def bad_checksum_frame() -> bytes:
    raw = bytearray(bytes(lan(IP(src="192.0.2.10", dst="203.0.113.5", id=3) / UDP(sport=1, dport=2))))
    raw[14 + 10] ^= 0xFF  # corrupt the IPv4 header checksum
    return bytes(raw)


@pytest.fixture(scope="module")
def run_result(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("pcap-forwarding")
    tcp = IP(src="192.0.2.10", dst="203.0.113.5", ttl=64, id=1) / TCP(sport=40000, dport=443, flags="S", seq=1000) / Raw(b"x" * 20)
    lan_in = [
        # The client asks for the firewall's address (syncwall learns it and answers).
        Ether(src=CLIENT_MAC, dst="ff:ff:ff:ff:ff:ff") / ARP(op=1, hwsrc=CLIENT_MAC, psrc="192.0.2.10", pdst="192.0.2.1"),
        lan(IP(src="192.0.2.10", dst="192.0.2.1", id=2) / ICMP(type=8, id=77, seq=1) / Raw(b"ping")),
        lan(tcp),
        bad_checksum_frame(),
        bytes(lan(tcp))[:14 + 20 + 10],  # cut inside the TCP header
        lan(IP(src="192.0.2.10", dst="203.0.113.5", ttl=1, id=4) / UDP(sport=5000, dport=53) / Raw(b"q")),
        Ether(src=CLIENT_MAC, dst="02:00:00:00:99:99") / IP(src="192.0.2.10", dst="203.0.113.5") / UDP(),
        Ether(src=CLIENT_MAC, dst=LAN_MAC) / IPv6(src="2001:db8:1::10", dst="2001:db8:2::20", hlim=9) / UDP(sport=7, dport=9) / Raw(b"v6"),
        lan(IP(src="192.0.2.10", dst="192.0.2.77", id=5) / UDP()),  # local net, nobody answers ARP
    ]
    wan_in = [
        Ether(src=GW_MAC, dst=WAN_MAC) / ARP(op=2, hwsrc=GW_MAC, psrc="198.51.100.254", hwdst=WAN_MAC, pdst="198.51.100.1"),
        Ether(src=HOST6_MAC, dst=WAN_MAC) / IPv6(src="2001:db8:2::20", dst="2001:db8:2::1", hlim=255)
        / ICMPv6ND_NA(tgt="2001:db8:2::20", S=0, O=1) / ICMPv6NDOptDstLLAddr(lladdr=HOST6_MAC),
    ]
    wrpcap(str(tmp / "lan_in.pcap"), [Ether(bytes(f)) if isinstance(f, bytes) else f for f in lan_in])
    wrpcap(str(tmp / "wan_in.pcap"), wan_in)
    (tmp / "fw.yaml").write_text(config(tmp))
    code, output = run_syncwall_for(tmp / "fw.yaml", 4.5)
    assert code == 0, output
    return {
        "output": output,
        "counters": parse_counters(output),
        "lan_out": rdpcap(str(tmp / "lan_out.pcap")),
        "wan_out": rdpcap(str(tmp / "wan_out.pcap")),
    }


def valid_ipv4_checksum(pkt) -> bool:
    ip = pkt[IP].copy()
    stored = ip.chksum
    del ip.chksum
    return IP(bytes(ip)).chksum == stored


def test_routed_tcp_leaves_wan_with_gateway_mac_ttl_and_checksum(run_result):
    tcp = [p for p in run_result["wan_out"] if TCP in p and p[TCP].dport == 443]
    assert len(tcp) == 1, run_result["output"]
    p = tcp[0]
    assert p[Ether].dst == GW_MAC and p[Ether].src == WAN_MAC
    assert p[IP].ttl == 63
    assert valid_ipv4_checksum(p)
    assert bytes(p[Raw]) == b"x" * 20
    assert p[TCP].seq == 1000


def test_ipv6_forwarded_after_neighbour_advertisement(run_result):
    v6 = [p for p in run_result["wan_out"] if IPv6 in p and UDP in p]
    assert len(v6) == 1, run_result["output"]
    assert v6[0][Ether].dst == HOST6_MAC and v6[0][Ether].src == WAN_MAC
    assert v6[0][IPv6].hlim == 8


def test_arp_request_answered(run_result):
    replies = [p for p in run_result["lan_out"] if ARP in p and p[ARP].op == 2]
    assert len(replies) == 1
    r = replies[0]
    assert r[ARP].psrc == "192.0.2.1" and r[ARP].hwsrc == LAN_MAC
    assert r[ARP].pdst == "192.0.2.10" and r[Ether].dst == CLIENT_MAC


def test_echo_request_to_firewall_answered(run_result):
    replies = [p for p in run_result["lan_out"] if ICMP in p and p[ICMP].type == 0]
    assert len(replies) == 1
    r = replies[0]
    assert r[IP].src == "192.0.2.1" and r[IP].dst == "192.0.2.10"
    assert r[ICMP].id == 77 and bytes(r[Raw]) == b"ping"
    assert valid_ipv4_checksum(r)


def test_ttl_expired_packet_gets_time_exceeded(run_result):
    errors = [p for p in run_result["lan_out"] if ICMP in p and p[ICMP].type == 11]
    assert len(errors) == 1
    e = errors[0]
    assert e[IP].src == "192.0.2.1" and e[IP].dst == "192.0.2.10" and e[Ether].dst == CLIENT_MAC
    quoted = e[IPerror]
    assert quoted.id == 4 and quoted.dst == "203.0.113.5" and quoted.ttl == 1
    assert not any(UDP in p and p[UDP].dport == 53 for p in run_result["wan_out"])


def test_malformed_and_foreign_frames_are_counted_not_forwarded(run_result):
    c = run_result["counters"]
    assert c.get("drop.ipv4_bad_checksum") == 1, run_result["output"]
    assert c.get("drop.tcp_truncated", 0) + c.get("drop.ipv4_bad_total_length", 0) == 1, run_result["output"]
    assert c.get("drop.not_our_mac") == 1
    assert c.get("drop.ttl_exceeded") == 1
    # Only the good TCP packet and the IPv6 packet were routed out of the WAN port;
    # the rest of what it sent is address resolution.
    routed = [p for p in run_result["wan_out"] if IP in p or (IPv6 in p and UDP in p)]
    assert len(routed) == 2


def test_unanswered_next_hop_is_dropped_after_three_requests(run_result):
    requests = [p for p in run_result["lan_out"] if ARP in p and p[ARP].op == 1 and p[ARP].pdst == "192.0.2.77"]
    assert len(requests) == 3
    assert run_result["counters"].get("drop.neighbour_unresolved") == 1


def test_counters_match_what_was_sent(run_result):
    c = run_result["counters"]
    assert c["port.lan.rx_packets"] == 9
    assert c["port.wan.rx_packets"] == 2
    assert c["forwarded"] == 2
