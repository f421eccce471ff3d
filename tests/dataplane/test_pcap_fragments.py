"""EAL test on net_pcap ports: fragmented datagrams are reassembled before the filter and
leave refragmented. (net_af_packet ports never show syncwall a fragment: DPDK 22.11 joins a
kernel fanout group that defragments, so the namespace lab cannot test this.)

Client 192.0.2.10 / 2001:db8:1::10 on `lan` (MTU 1500) sends 3000-byte UDP datagrams in
fragments to server 198.51.100.10 / 2001:db8:2::10 on `wan` (MTU 1280). Only UDP to port
5353 passes inbound, so a datagram passes only if the filter sees its ports, which a
non-first fragment does not carry.
"""

from pathlib import Path

import pytest
from scapy.all import (ARP, ICMP, IP, UDP, Ether, ICMPv6ND_NS, ICMPv6NDOptSrcLLAddr, IPv6,
                       IPv6ExtHdrFragment, Raw, rdpcap, wrpcap)

from netlab import parse_counters, run_syncwall_for
from pcapcfg import pcap_config

LAN_MAC, WAN_MAC = "02:00:00:00:00:01", "02:00:00:00:00:02"
CLIENT_MAC, SERVER_MAC = "02:00:00:00:0c:01", "02:00:00:00:0d:01"
CLIENT, SERVER = "192.0.2.10", "198.51.100.10"
CLIENT6, SERVER6 = "2001:db8:1::10", "2001:db8:2::10"
WAN_MTU = 1280


def config(tmp: Path) -> str:
    def port(n, name, addresses, mac, mtu):
        return {"devargs": f'"net_pcap{n},rx_pcap={tmp}/{name}_in.pcap,tx_pcap={tmp}/{name}_out.pcap"',
                "addresses": addresses, "mac": f'"{mac}"', "mtu": mtu}
    return pcap_config(name="pcap-frag", prefix="sw-pcapg", burst=1,
                       control={"socket": f"{tmp}/fw.sock"},
                       interfaces={"lan": port(0, "lan", '[192.0.2.1/24, "2001:db8:1::1/64"]', LAN_MAC, 1500),
                                   "wan": port(1, "wan", '[198.51.100.1/24, "2001:db8:2::1/64"]', WAN_MAC, WAN_MTU)},
                       rules=["block all", "pass in on lan proto udp from any to any port 5353",
                              "pass in on wan inet6 proto icmp6", "pass out on wan all"],
                       extra="timeouts: { frag: 2 }\n")


def udp4(dport=5353, size=3000):
    """The UDP bytes (header, checksum and data) of an IPv4 datagram of `size` bytes."""
    data = bytes((i * 7) & 0xff for i in range(size - 28))
    return bytes(IP(src=CLIENT, dst=SERVER) / UDP(sport=5000, dport=dport) / Raw(data))[20:]


def udp6(size=3000):
    data = bytes((i * 5) & 0xff for i in range(size - 48))
    return bytes(IPv6(src=CLIENT6, dst=SERVER6) / UDP(sport=5000, dport=5353) / Raw(data))[40:]


def frags4(ident, pieces, df=False):
    """IPv4 fragments from (offset, bytes, more) triples."""
    return [Ether(src=CLIENT_MAC, dst=LAN_MAC)
            / IP(src=CLIENT, dst=SERVER, id=ident, proto=17, frag=off // 8,
                 flags=(2 if df else 0) | (1 if more else 0)) / Raw(b)
            for off, b, more in pieces]


def frags6(ident, pieces):
    return [Ether(src=CLIENT_MAC, dst=LAN_MAC) / IPv6(src=CLIENT6, dst=SERVER6)
            / IPv6ExtHdrFragment(nh=17, offset=off // 8, m=int(more), id=ident) / Raw(b)
            for off, b, more in pieces]


def split(payload, size):
    return [(off, payload[off:off + size], off + size < len(payload))
            for off in range(0, len(payload), size)]


P4, P6 = udp4(), udp6()
BLOCKED = udp4(dport=9999)
TINY = udp4(size=540)  # 520 UDP bytes: 65 fragments of 8


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("pcap-fragments")
    overlap4 = [(0, P4[:1480], True),
                (1000, b"X" * 480 + P4[1480:2480], True),  # its head overlaps the first
                (2480, P4[2480:], False)]
    lan_in = [
        Ether(src=CLIENT_MAC, dst=LAN_MAC) / ARP(op=2, hwsrc=CLIENT_MAC, psrc=CLIENT, hwdst=LAN_MAC, pdst="192.0.2.1"),
        *frags4(100, split(P4, 1480)),                          # 1480 + 1480 + 20
        *frags6(0x1001, split(P6, 1000)),                       # 1000 + 1000 + 960
        *frags4(101, overlap4),
        *frags6(0x1002, [(0, P6[:1000], True), (992, P6[992:1992], True), (1992, P6[1992:], False)]),
        *frags4(102, split(TINY, 8)),                           # 65 fragments
        *frags4(103, split(P4, 1480), df=True),                 # DF, larger than wan's MTU
        *frags4(104, split(P4, 1480)[:1]),                      # never completed
        *frags4(105, split(P4, 248)),                           # 13 fragments: beyond DPDK's 8
        *frags4(106, split(BLOCKED, 1480)),                     # reassembled, then blocked
    ]
    wan_in = [
        Ether(src=SERVER_MAC, dst=WAN_MAC) / ARP(op=2, hwsrc=SERVER_MAC, psrc=SERVER, hwdst=WAN_MAC, pdst="198.51.100.1"),
        # The server asks for our address: its solicitation teaches us its own (RFC 4861
        # 7.2.3), whichever port's packets the worker reads first.
        Ether(src=SERVER_MAC, dst=WAN_MAC) / IPv6(src=SERVER6, dst="2001:db8:2::1", hlim=255)
        / ICMPv6ND_NS(tgt="2001:db8:2::1") / ICMPv6NDOptSrcLLAddr(lladdr=SERVER_MAC),
    ]
    wrpcap(str(tmp / "lan_in.pcap"), lan_in)
    wrpcap(str(tmp / "wan_in.pcap"), wan_in)
    (tmp / "fw.yaml").write_text(config(tmp))
    code, output = run_syncwall_for(tmp / "fw.yaml", 4.5)
    assert code == 0, output
    return {"output": output, "counters": parse_counters(output),
            "lan_out": rdpcap(str(tmp / "lan_out.pcap")), "wan_out": rdpcap(str(tmp / "wan_out.pcap"))}


def out4(result, ident):
    return [p for p in result["wan_out"] if IP in p and p[IP].id == ident]


def joined4(frags):
    """The payload the fragments carry, checking that they tile it without gaps."""
    data = b""
    for p in sorted(frags, key=lambda p: p[IP].frag):
        assert p[IP].frag * 8 == len(data)
        data += bytes(p[IP].payload)[:p[IP].len - p[IP].ihl * 4]
    assert not (sorted(frags, key=lambda p: p[IP].frag)[-1][IP].flags & 1)  # the last has no MF
    return data


def test_ipv4_datagram_in_three_fragments_passes_a_port_rule_and_leaves_in_mtu_fragments(result):
    frags = out4(result, 100)
    assert frags, result["output"]
    assert joined4(frags) == P4
    assert all(len(p[IP]) <= WAN_MTU for p in frags)
    assert len(frags) == 3  # 1256 + 1256 + 468 payload bytes at MTU 1280
    assert all(p[IP].ttl == 63 and p[Ether].src == WAN_MAC and p[Ether].dst == SERVER_MAC for p in frags)
    for p in frags:
        stored = p[IP].chksum
        q = p[IP].copy()
        del q.chksum
        assert IP(bytes(q)).chksum == stored


def test_ipv6_datagram_in_three_fragments_leaves_in_fragments_no_larger_than_received(result):
    frags = [p for p in result["wan_out"] if IPv6ExtHdrFragment in p and p[IPv6ExtHdrFragment].id == 0x1001]
    assert frags, result["output"]
    frags.sort(key=lambda p: p[IPv6ExtHdrFragment].offset)
    data = b""
    for p in frags:
        fh = p[IPv6ExtHdrFragment]
        assert fh.offset * 8 == len(data)
        piece = bytes(fh.payload)
        assert len(piece) <= 1000
        data += piece
    assert data == P6
    assert frags[-1][IPv6ExtHdrFragment].m == 0
    assert all(p[IPv6].hlim == 63 and p[Ether].dst == SERVER_MAC for p in frags)


def test_overlapping_ipv4_fragment_is_trimmed_and_the_older_data_kept(result):
    frags = out4(result, 101)
    assert frags, result["output"]
    assert joined4(frags) == P4  # the X bytes over the first fragment were cut away


def test_overlapping_ipv6_fragments_drop_the_datagram(result):
    assert not [p for p in result["wan_out"] if IPv6ExtHdrFragment in p and p[IPv6ExtHdrFragment].id == 0x1002]
    assert result["counters"].get("drop.frag_overlap") == 2, result["output"]


def test_datagram_in_too_many_fragments_is_refused_and_counted(result):
    assert not out4(result, 102)
    assert result["counters"].get("drop.frag_too_many") == 65, result["output"]


def test_more_fragments_than_dpdks_eight_still_reassemble(result):
    assert joined4(out4(result, 105)) == P4, result["output"]


def test_df_datagram_too_big_for_egress_gets_fragmentation_needed(result):
    assert not out4(result, 103)
    errors = [p for p in result["lan_out"] if ICMP in p and p[ICMP].type == 3 and p[ICMP].code == 4]
    assert len(errors) == 1, result["output"]
    assert errors[0][IP].dst == CLIENT and errors[0][ICMP].nexthopmtu == WAN_MTU


def test_reassembled_datagram_to_a_blocked_port_is_blocked(result):
    assert not out4(result, 106)
    assert result["counters"].get("drop.filter_block", 0) >= 1


def test_incomplete_datagrams_time_out_and_counters_say_so(result):
    c = result["counters"]
    # id 104's only fragment, and the IPv6 fragment that came after its datagram was dropped.
    assert c.get("drop.frag_timeout") == 2, result["output"]
    assert c.get("frags_held") == 0
    # 100, 0x1001, 101, 103 (then too big), 105, 106 (then blocked).
    assert c.get("frag_reassembled") == 6
    assert c.get("frag_refragmented") == 4
