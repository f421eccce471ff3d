"""EAL test on one net_pcap port ("router on a stick"): packets pf refuses, or that syncwall
refuses beyond pf, crafted the way an attacker would send them. Each case is also tried
with the packet that must still pass, so that a refusal cannot come from a broken path.

Client 192.0.2.10 and server 198.51.100.10 sit behind the one port, with a default route
to 198.51.100.254; one packet per burst, in file order.
"""

from pathlib import Path

import pytest
from scapy.all import ARP, ICMP, IP, TCP, UDP, Ether, Raw, rdpcap, wrpcap

from netlab import parse_counters, run_syncwall_for
from pcapcfg import one_port_lan, pcap_config

FW_MAC, CLIENT_MAC, SERVER_MAC, ROUTER_MAC, OTHER_MAC = (
    "02:00:00:00:00:01", "02:00:00:00:0c:01", "02:00:00:00:0d:01", "02:00:00:00:0e:01",
    "02:00:00:00:0f:01")
CLIENT, SERVER, ROUTER, OTHER = "192.0.2.10", "198.51.100.10", "198.51.100.254", "198.51.100.99"


def config(tmp: Path) -> str:
    return pcap_config(name="pcap-hardening", prefix="sw-pcaph", burst=1,
                       control={"socket": f"{tmp}/fw.sock"}, interfaces=one_port_lan(tmp, FW_MAC),
                       rules=["block all", "pass in on lan from 192.0.2.0/24 to any",
                              "pass in on lan from 127.0.0.0/8 to any", "pass out on lan all"],
                       extra=f"routes:\n  - {{ to: 0.0.0.0/0, via: {ROUTER} }}\n")


def frm(src_mac, pkt):
    return Ether(src=src_mac, dst=FW_MAC) / pkt


def c2s(flags, seq, ack=0, data=b"", sport=40000, ident=0, **tcp):
    return frm(CLIENT_MAC, IP(src=CLIENT, dst=SERVER, id=ident)
               / TCP(sport=sport, dport=80, flags=flags, seq=seq, ack=ack, window=8192, **tcp) / Raw(data))


def s2c(flags, seq, ack=0, data=b"", dport=40000, ident=0, **tcp):
    return frm(SERVER_MAC, IP(src=SERVER, dst=CLIENT, id=ident)
               / TCP(sport=80, dport=dport, flags=flags, seq=seq, ack=ack, window=8192, **tcp) / Raw(data))


def arp_reply(mac, ip, mine):
    return frm(mac, ARP(op=2, hwsrc=mac, psrc=ip, hwdst=FW_MAC, pdst=mine))


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("pcap-hardening")
    echo = IP(src=CLIENT, dst=SERVER, id=60) / ICMP(type=8, id=77, seq=1) / Raw(b"ping")
    pkts = [
        arp_reply(CLIENT_MAC, CLIENT, "192.0.2.1"),
        arp_reply(SERVER_MAC, SERVER, "198.51.100.1"),
        arp_reply(ROUTER_MAC, ROUTER, "198.51.100.1"),
        arp_reply(OTHER_MAC, OTHER, "198.51.100.1"),
        # A: an established connection (client ISN 1000, server ISN 5000, windows 8192).
        c2s("S", 1000, ident=10),
        s2c("SA", 5000, 1001, ident=11),
        c2s("A", 1001, 5001, ident=12),
        # A blind RST|ACK with ack 0, 3000 bytes behind the server's next number: inside
        # the window, not exact. Then a RST with a bad checksum and the exact number.
        s2c("RA", 5001 - 3000, 0, ident=21),
        c2s("R", 1001, ident=22, chksum=0xdead),
        # The connection is still open: data both ways.
        c2s("PA", 1001, 5001, b"still here", ident=23),
        s2c("PA", 5001, 1011, b"me too", ident=24),
        # B: a SYN with a bad checksum makes no state (its answer finds none).
        c2s("S", 3000, sport=41000, ident=31, chksum=0xbeef),
        s2c("SA", 8000, 3001, dport=41000, ident=32),
        # C: a stale SYN|ACK (ack ISN - 999) before the right one.
        c2s("S", 7000, sport=42000, ident=41),
        s2c("SA", 12345, 7000 - 999, dport=42000, ident=42),
        s2c("SA", 9000, 7001, dport=42000, ident=43),
        c2s("A", 7001, 9001, sport=42000, ident=44),
        s2c("PA", 9001, 7001, b"hello", dport=42000, ident=45),
        # D: an ICMP error from the client about its own echo, sent to another host on the
        # server's net; and a real one from the router to the client.
        frm(CLIENT_MAC, echo),
        frm(CLIENT_MAC, IP(src=CLIENT, dst=OTHER, id=61) / ICMP(type=3, code=3) / bytes(echo)[:28]),
        frm(ROUTER_MAC, IP(src=ROUTER, dst=CLIENT, id=62) / ICMP(type=3, code=1) / bytes(echo)[:28]),
        # E: martians a passing rule and the default route would forward.
        frm(CLIENT_MAC, IP(src="192.0.2.5", dst="224.0.0.5", id=51) / UDP(sport=5, dport=5)),
        frm(CLIENT_MAC, IP(src="192.0.2.5", dst="127.0.0.1", id=52) / UDP(sport=5, dport=5)),
        frm(CLIENT_MAC, IP(src="192.0.2.5", dst="198.51.100.255", id=53) / UDP(sport=5, dport=5)),
        frm(CLIENT_MAC, IP(src="192.0.2.5", dst="240.1.2.3", id=54) / UDP(sport=5, dport=5)),
        frm(CLIENT_MAC, IP(src="127.0.0.1", dst="203.0.113.7", id=55) / UDP(sport=5, dport=5)),
        frm(CLIENT_MAC, IP(src="192.0.2.5", dst="169.254.1.1", id=56) / UDP(sport=5, dport=5)),
        # ... while a packet to our own address and an ordinary one still work.
        frm(CLIENT_MAC, IP(src=CLIENT, dst="192.0.2.1", id=57) / ICMP(type=8, id=78) / Raw(b"us")),
        frm(CLIENT_MAC, IP(src="192.0.2.5", dst="203.0.113.7", id=58) / UDP(sport=5, dport=5)),
    ]
    wrpcap(str(tmp / "in.pcap"), pkts)
    (tmp / "fw.yaml").write_text(config(tmp))
    code, output = run_syncwall_for(tmp / "fw.yaml", 2.5)
    assert code == 0, output
    return {"output": output, "counters": parse_counters(output), "out": rdpcap(str(tmp / "out.pcap"))}


def ids(result):
    return {p[IP].id for p in result["out"] if IP in p and p[Ether].src == FW_MAC}


def test_a_fake_ack_rst_does_not_reset_the_connection(result):
    resets = [p for p in result["out"] if TCP in p and "R" in str(p[TCP].flags)]
    assert not resets, result["output"]
    # RFC 5961: the sender of the in-window RST gets a challenge ACK (the RST rewritten, its
    # IP id kept) with pf's numbers: the client's seqlo (its ISN: no data yet), the server's.
    acks = [p for p in result["out"] if TCP in p and p[IP].id == 21]
    assert [(a[IP].dst, str(a[TCP].flags), a[TCP].seq, a[TCP].ack) for a in acks] == \
        [(SERVER, "A", 1000, 5001)], result["output"]
    assert {23, 24} <= ids(result)


def test_a_bad_checksum_neither_creates_nor_closes_a_state(result):
    assert 22 not in ids(result)  # (the only RST: see the test above)
    assert 31 not in ids(result) and 32 not in ids(result)
    assert result["counters"].get("drop.proto_cksum") == 2, result["output"]
    assert {23, 24} <= ids(result)


def test_a_stale_syn_ack_is_dropped_and_the_right_one_opens(result):
    got = ids(result)
    assert 42 not in got, result["output"]
    assert {41, 43, 44, 45} <= got, result["output"]
    assert result["counters"].get("drop.filter_synack_bad_ack") == 1


def test_an_icmp_error_must_go_to_the_quoted_source(result):
    got = ids(result)
    assert 60 in got and 62 in got, result["output"]
    assert 61 not in got
    assert result["counters"].get("drop.filter_icmp_wrong_destination") == 1, result["output"]


def test_martians_are_never_forwarded(result):
    got = ids(result)
    assert not {51, 52, 53, 54, 55, 56} & got, result["output"]
    c = result["counters"]
    for reason in ("martian_dst_multicast", "martian_dst_loopback", "martian_dst_broadcast",
                   "martian_dst_reserved", "martian_src_loopback", "martian_dst_link_local"):
        assert c.get(f"drop.{reason}") == 1, (reason, result["output"])


def test_our_own_address_and_ordinary_traffic_still_work(result):
    assert 58 in ids(result)
    replies = [p for p in result["out"] if ICMP in p and p[ICMP].type == 0 and p[IP].src == "192.0.2.1"]
    assert len(replies) == 1 and bytes(replies[0][Raw]) == b"us", result["output"]
