"""EAL test on one net_pcap port ("router on a stick"): address translation with crafted
packets read in file order, one per burst, so that each request has been through both
filter passes before its reply arrives.

Clients 192.0.2.10-12 sit in the inside net, server 198.51.100.10 outside; syncwall owns
192.0.2.1 and 198.51.100.1. Outbound connections from the inside net leave from
198.51.100.1 (nat-to, by match rules), and 198.51.100.1 port 8080 is forwarded to the
inside web server 192.0.2.20 port 80 (rdr-to).
"""

from pathlib import Path

import pytest
from scapy.all import ARP, ICMP, IP, TCP, UDP, Ether, Raw, rdpcap, wrpcap

from netlab import parse_counters, run_syncwall_for
from pcapcfg import one_port_lan, pcap_config

FW_MAC, IN_MAC, OUT_MAC, WEB_MAC = (
    "02:00:00:00:00:01", "02:00:00:00:0c:01", "02:00:00:00:0d:01", "02:00:00:00:0e:01")
CLIENT, CLIENT2, CLIENT3, WEB = "192.0.2.10", "192.0.2.11", "192.0.2.12", "192.0.2.20"
SERVER, NAT, ROUTER = "198.51.100.10", "198.51.100.1", "198.51.100.254"
INSIDE_NET, OUTSIDE_NET = "192.0.2.0/24", "198.51.100.0/24"


def config(tmp: Path) -> str:
    return pcap_config(
        name="pcap-nat", prefix="sw-pcapn", burst=1, control={"socket": f"{tmp}/fw.sock"},
        interfaces=one_port_lan(tmp, FW_MAC),
        rules=["block all",
               f"pass in on lan from {INSIDE_NET} to any",
               "pass out on lan all",
               f"match out on lan proto tcp from {INSIDE_NET} to {OUTSIDE_NET} nat-to {NAT} static-port",
               f"match out on lan proto udp from {INSIDE_NET} to {OUTSIDE_NET} nat-to {NAT} port 50001:50010",
               f"match out on lan proto udp from {INSIDE_NET} to {SERVER} port 54 nat-to {NAT} port 60000:60001",
               f"match out on lan proto icmp from {INSIDE_NET} to {OUTSIDE_NET} nat-to {NAT}",
               f"pass in on lan proto tcp from any to {NAT} port 8080 rdr-to {WEB} port 80"])


def frm(src_mac, pkt):
    return Ether(src=src_mac, dst=FW_MAC) / pkt


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("pcap-nat")
    pkts = [
        frm(IN_MAC, ARP(op=2, hwsrc=IN_MAC, psrc=CLIENT, hwdst=FW_MAC, pdst="192.0.2.1")),
        frm(IN_MAC, ARP(op=2, hwsrc=IN_MAC, psrc=CLIENT2, hwdst=FW_MAC, pdst="192.0.2.1")),
        frm(IN_MAC, ARP(op=2, hwsrc=IN_MAC, psrc=CLIENT3, hwdst=FW_MAC, pdst="192.0.2.1")),
        frm(WEB_MAC, ARP(op=2, hwsrc=WEB_MAC, psrc=WEB, hwdst=FW_MAC, pdst="192.0.2.1")),
        frm(OUT_MAC, ARP(op=2, hwsrc=OUT_MAC, psrc=SERVER, hwdst=FW_MAC, pdst=NAT)),
        # nat-to static-port: the client's connection leaves from NAT:40000, the server's
        # answer to NAT:40000 reaches the client.
        frm(IN_MAC, IP(src=CLIENT, dst=SERVER, id=1) / TCP(sport=40000, dport=80, flags="S", seq=1000, window=8192)),
        frm(OUT_MAC, IP(src=SERVER, dst=NAT, id=2) / TCP(sport=80, dport=40000, flags="SA", seq=5000, ack=1001, window=8192)),
        frm(IN_MAC, IP(src=CLIENT, dst=SERVER, id=3) / TCP(sport=40000, dport=80, flags="A", seq=1001, ack=5001, window=8192) / Raw(b"hello")),
        # Straight to the inside address from outside: no state, blocked.
        frm(OUT_MAC, IP(src=SERVER, dst=CLIENT, id=4) / TCP(sport=80, dport=40000, flags="A", seq=5001, ack=1006, window=8192)),
        # UDP from two inside hosts with the same source port: two translated ports.
        frm(IN_MAC, IP(src=CLIENT, dst=SERVER, id=10) / UDP(sport=5000, dport=53) / Raw(b"q1")),
        frm(IN_MAC, IP(src=CLIENT2, dst=SERVER, id=11) / UDP(sport=5000, dport=53) / Raw(b"q2")),
        # A pool of two ports for three hosts: the third is refused and counted.
        *[frm(IN_MAC, IP(src=c, dst=SERVER, id=20 + i) / UDP(sport=6000, dport=54) / Raw(b"x"))
          for i, c in enumerate((CLIENT, CLIENT2, CLIENT3))],
        # ICMP echo: two hosts with the same id get ids of their own.
        frm(IN_MAC, IP(src=CLIENT, dst=SERVER, id=30) / ICMP(type=8, id=77, seq=1) / Raw(b"ping")),
        frm(IN_MAC, IP(src=CLIENT2, dst=SERVER, id=31) / ICMP(type=8, id=77, seq=1) / Raw(b"ping")),
        # rdr-to: NAT:8080 from outside reaches WEB:80, and its answer leaves from NAT:8080.
        frm(OUT_MAC, IP(src=SERVER, dst=NAT, id=40) / TCP(sport=50000, dport=8080, flags="S", seq=7000, window=8192)),
        frm(WEB_MAC, IP(src=WEB, dst=SERVER, id=41) / TCP(sport=80, dport=50000, flags="SA", seq=9000, ack=7001, window=8192)),
        # A router outside says the client's segment was too big, to the NAT address.
        frm(OUT_MAC, IP(src=ROUTER, dst=NAT, id=50) / ICMP(type=3, code=4, nexthopmtu=1400)
            / bytes(IP(src=NAT, dst=SERVER, id=1) / TCP(sport=40000, dport=80, flags="S", seq=1000, window=8192))[:28]),
    ]
    wrpcap(str(tmp / "in.pcap"), pkts)
    (tmp / "fw.yaml").write_text(config(tmp))
    code, output = run_syncwall_for(tmp / "fw.yaml", 2.5)
    assert code == 0, output
    return {"output": output, "counters": parse_counters(output), "out": rdpcap(str(tmp / "out.pcap"))}


def sent(result, ident):
    return [p for p in result["out"] if IP in p and p[IP].id == ident]


def checksums_ok(p):
    """Every checksum of the packet as scapy computes it whole."""
    rebuilt = p[IP].copy()
    del rebuilt[IP].chksum
    for layer in (TCP, UDP, ICMP):
        if layer in rebuilt:
            del rebuilt[layer].chksum
    again = IP(bytes(rebuilt))
    ok = again.chksum == p[IP].chksum
    for layer in (TCP, UDP, ICMP):
        if layer in p:
            ok = ok and again[layer].chksum == p[layer].chksum
    return ok


def test_nat_to_translates_the_source_and_the_reply_back(result):
    out = sent(result, 1)
    assert len(out) == 1, result["output"]
    assert (out[0][IP].src, out[0][TCP].sport, out[0][IP].dst) == (NAT, 40000, SERVER)
    back = sent(result, 2)
    assert len(back) == 1, result["output"]
    assert (back[0][IP].src, back[0][IP].dst, back[0][TCP].dport) == (SERVER, CLIENT, 40000)
    assert back[0][Ether].dst == IN_MAC
    data = sent(result, 3)
    assert len(data) == 1 and data[0][IP].src == NAT and bytes(data[0][Raw]) == b"hello"
    assert all(checksums_ok(p) for p in out + back + data)


def test_the_inside_address_is_not_reachable_from_outside(result):
    assert not sent(result, 4)


def test_two_hosts_with_one_source_port_get_two_translated_ports(result):
    a, b = sent(result, 10), sent(result, 11)
    assert len(a) == 1 and len(b) == 1, result["output"]
    ports = {a[0][UDP].sport, b[0][UDP].sport}
    assert len(ports) == 2 and all(50001 <= p <= 50010 for p in ports)
    assert a[0][IP].src == NAT and b[0][IP].src == NAT
    assert checksums_ok(a[0]) and checksums_ok(b[0])


def test_an_exhausted_port_pool_is_a_counted_refusal(result):
    passed = [p for i in (20, 21, 22) for p in sent(result, i)]
    assert sorted(p[UDP].sport for p in passed) == [60000, 60001], result["output"]
    assert result["counters"].get("drop.nat_exhausted") == 1, result["output"]


def test_icmp_echo_ids_are_translated_per_host(result):
    a, b = sent(result, 30), sent(result, 31)
    assert len(a) == 1 and len(b) == 1, result["output"]
    assert a[0][IP].src == NAT and b[0][IP].src == NAT
    assert a[0][ICMP].id != b[0][ICMP].id
    assert checksums_ok(a[0]) and checksums_ok(b[0])


def test_rdr_to_forwards_a_port_and_the_answer_leaves_from_it(result):
    syn = sent(result, 40)
    assert len(syn) == 1, result["output"]
    assert (syn[0][IP].dst, syn[0][TCP].dport, syn[0][IP].src) == (WEB, 80, SERVER)
    assert syn[0][Ether].dst == WEB_MAC
    answer = sent(result, 41)
    assert len(answer) == 1, result["output"]
    assert (answer[0][IP].src, answer[0][TCP].sport, answer[0][IP].dst) == (NAT, 8080, SERVER)
    assert checksums_ok(syn[0]) and checksums_ok(answer[0])


def internet_checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(int.from_bytes(data[i:i + 2], "big") for i in range(0, len(data), 2))
    while total >> 16:
        total = (total & 0xffff) + (total >> 16)
    return total


def test_an_icmp_error_to_the_nat_address_reaches_the_client_translated(result):
    err = sent(result, 50)
    assert len(err) == 1, result["output"]
    ip = err[0][IP]
    assert (ip.src, ip.dst) == (ROUTER, CLIENT)
    assert err[0][Ether].dst == IN_MAC
    quoted = IP(bytes(ip[ICMP].payload))
    assert (quoted.src, quoted.dst) == (CLIENT, SERVER)
    assert bytes(quoted)[20:22] == (40000).to_bytes(2, "big")
    # Every checksum sums to 0xffff: outer IP header, the ICMP message, the quoted header.
    raw = bytes(ip)
    assert internet_checksum(raw[:20]) == 0xffff
    assert internet_checksum(raw[20:ip.len]) == 0xffff
    assert internet_checksum(raw[28:48]) == 0xffff
