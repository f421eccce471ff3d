"""Path-MTU discovery through nat-to: an ICMP error that a router beyond the firewall sends
to the NAT address (fragmentation needed, or ICMPv6 packet too big) reaches the client
translated back, so that the client's kernel learns the path MTU.

    client ──── syncwall ──── router ════ server          ════ : a link of MTU 1280
    192.0.2.10  lan 192.0.2.1    198.51.100.2  203.0.113.1    203.0.113.10, .11
    2001:db8:1::10  (nat-to)     2001:db8:2::2 2001:db8:3::1  2001:db8:3::10, ::11
                wan 198.51.100.1, 2001:db8:2::1

syncwall (one node, netlab's RoutedLab configuration: net_af_packet ports at MTU 1500 with
the lab's default frame size) translates the LAN to its WAN addresses (`match out on wan inet
from 192.0.2.0/24 to any nat-to 198.51.100.1`, and the same for inet6). The router's kernel
forwards between the WAN and the narrow link and knows no route to the LAN: only the NAT
address can be answered. Every packet too big for the narrow link draws from it an error
to the NAT address that quotes the packet as it left the firewall; syncwall must give it the
client's address again, outside and in the quote (echo id, ports and checksums included).
The server advertises an Ethernet's MSS (`advmss`), as a server on a wide link behind a
narrower hop would, so that a TCP upload starts with full-size segments and completes only
thanks to that error.
"""

from __future__ import annotations

import json
import re
import signal
import socket
from dataclasses import dataclass

import pytest
from scapy.all import rdpcap
from scapy.utils import checksum

from netlab import Lab, Process, RoutedLab, wait_until

PY = "/usr/bin/python3"
NARROW_MTU = 1280


@dataclass(frozen=True)
class Family:
    v: int
    client: str
    nat: str
    router_wan: str
    router_narrow: str
    server: str        # pinged
    server_tcp: str    # uploaded to: a path MTU of its own in the client's route cache
    prefix: int
    advmss: int        # an Ethernet's MSS
    headers: int       # IP and TCP headers without options

    @property
    def af(self) -> int:
        return socket.AF_INET if self.v == 4 else socket.AF_INET6


V4 = Family(4, RoutedLab.CLIENT4, RoutedLab.FW_WAN4, "198.51.100.2", "203.0.113.1",
            "203.0.113.10", "203.0.113.11", 24, 1460, 40)
V6 = Family(6, RoutedLab.CLIENT6, RoutedLab.FW_WAN6, "2001:db8:2::2", "2001:db8:3::1",
            "2001:db8:3::10", "2001:db8:3::11", 64, 1440, 60)

FW_EXTRA = f"""routes:
  - to: 0.0.0.0/0
    via: {V4.router_wan}
    interface: wan
  - to: "::/0"
    via: "{V6.router_wan}"
    interface: wan
rules:
  - "block all"
  - "pass in on lan inet proto {{ tcp udp icmp }} from 192.0.2.0/24 keep state"
  - "pass in on lan inet6 proto {{ tcp udp icmp6 }} from 2001:db8:1::/64 keep state"
  - "pass out on wan keep state"
  - "pass inet6 proto icmp6 icmp6-type {{ neighbrsol neighbradv }}"
  - "match out on wan inet from 192.0.2.0/24 to any nat-to {V4.nat}"
  - "match out on wan inet6 from 2001:db8:1::/64 to any nat-to {V6.nat}"
"""

# Captures on argv[1] from "sniffing" until SIGTERM, then writes what it saw to argv[2].
SNIFF = """
import signal, sys
from scapy.all import AsyncSniffer, conf, wrpcap
conf.verb = 0
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
sniffer = AsyncSniffer(iface=sys.argv[1], filter="ip or ip6", store=True,
                       started_callback=lambda: print("sniffing", flush=True))
sniffer.start()
signal.sigwait({signal.SIGTERM})
wrpcap(sys.argv[2], sniffer.stop())
"""

# Accepts one connection on argv[1]:argv[2], reads to the end, answers with the count.
SINK = """
import json, socket, sys
family = socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET
server = socket.create_server((sys.argv[1], int(sys.argv[2])), family=family)
print("listening", flush=True)
conn, peer = server.accept()
n = 0
while data := conn.recv(65536):
    n += len(data)
conn.sendall(str(n).encode())
conn.close()
print(json.dumps({"peer": peer[0], "bytes": n}), flush=True)
"""

# Sends argv[3] bytes to argv[1]:argv[2] with Linux's default TCP settings (path-MTU
# discovery on: DF set) and reads the sink's count; reports the MSS before and after.
UPLOAD = """
import json, socket, sys, time
start = time.monotonic()
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=10)
mss_before = s.getsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG)
data = bytes(range(256)) * (int(sys.argv[3]) // 256)
s.sendall(data)
s.shutdown(socket.SHUT_WR)
counted = int(s.recv(64) or b"-1")
mss_after = s.getsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG)
print(json.dumps({"sent": len(data), "counted": counted, "mss_before": mss_before,
                  "mss_after": mss_after, "seconds": round(time.monotonic() - start, 3)}))
"""


@dataclass
class Pmtu:
    r: RoutedLab
    router: str
    server: str

    @property
    def lab(self) -> Lab:
        return self.r.lab


@pytest.fixture(scope="module")
def pmtu():
    with Lab() as lab:
        client, router, server = lab.ns("cli"), lab.ns("rtr"), lab.ns("srv")
        fw = lab.firewall_ns("fw")
        lab.veth(client, "eth0", fw, "fw-lan")
        lab.veth(router, "wan", fw, "fw-wan")
        lab.veth(router, "narrow", server, "eth0")
        # RoutedLab's configuration of the firewall; the router stands where its server was.
        r = RoutedLab(lab, client, router, fw)
        lab.host(client, "eth0", [f"{V4.client}/24", f"{V6.client}/64"], r.FW_LAN4, r.FW_LAN6)
        lab.exec(router, f"ip link set narrow mtu {NARROW_MTU}")
        lab.exec(server, f"ip link set eth0 mtu {NARROW_MTU}")
        for f in (V4, V6):
            lab.host(router, "wan", [f"{f.router_wan}/{f.prefix}"])
            lab.host(router, "narrow", [f"{f.router_narrow}/{f.prefix}"])
            lab.host(server, "eth0", [f"{f.server}/{f.prefix}", f"{f.server_tcp}/{f.prefix}"])
            lab.exec(server, f"ip -{f.v} route add default via {f.router_narrow} advmss {f.advmss}")
        lab.exec(router, "sysctl -qw net.ipv4.ip_forward=1")
        lab.exec(router, "sysctl -qw net.ipv6.conf.all.forwarding=1")
        # An answer to every packet too big, not a token bucket's share.
        lab.exec(router, "sysctl -qw net.ipv4.icmp_ratelimit=0")
        lab.exec(router, "sysctl -qw net.ipv6.icmp.ratelimit=0")
        r.start(FW_EXTRA)
        for f in (V4, V6):
            wait_until(lambda: lab.exec(client, f"ping -{f.v} -c 1 -W 1 {f.server}",
                                        check=False).returncode == 0,
                       timeout=30, what=f"IPv{f.v} ping through syncwall and the router")
        yield Pmtu(r, router, server)
        code = r.fw_proc.stop()
        assert code == 0, r.fw_proc.output()


@dataclass
class Icmp:
    """An ICMP or ICMPv6 message of a capture, from its bytes."""

    v: int
    src: str
    dst: str
    ip: bytes        # the whole packet from its IP header
    icmp: bytes      # from the ICMP header

    @property
    def type(self) -> int:
        return self.icmp[0]

    @property
    def too_big(self) -> bool:
        return (self.icmp[0], self.icmp[1]) == ((3, 4) if self.v == 4 else (2, 0))

    @property
    def mtu(self) -> int:
        return int.from_bytes(self.icmp[6:8] if self.v == 4 else self.icmp[4:8], "big")

    @property
    def quote(self) -> bytes:
        return self.icmp[8:]

    def quoted_addresses(self) -> tuple[str, str]:
        return addresses(self.v, self.quote)

    def checksums_ok(self) -> bool:
        """The outer IPv4 header's checksum and the ICMP checksum (over ICMPv6's pseudo-header)."""
        if self.v == 4:
            return checksum(self.ip[:(self.ip[0] & 15) * 4]) == 0 and checksum(self.icmp) == 0
        pseudo = self.ip[8:40] + len(self.icmp).to_bytes(4, "big") + bytes([0, 0, 0, 58])
        return checksum(pseudo + self.icmp) == 0


def addresses(v: int, ip: bytes) -> tuple[str, str]:
    af, at, n = (socket.AF_INET, 12, 4) if v == 4 else (socket.AF_INET6, 8, 16)
    return socket.inet_ntop(af, ip[at:at + n]), socket.inet_ntop(af, ip[at + n:at + 2 * n])


def packets(path: str) -> list[tuple[int, bytes]]:
    """(IP version, bytes from the IP header) of every IP packet of a capture."""
    out = []
    for p in rdpcap(path):
        frame = p.original
        ethertype = int.from_bytes(frame[12:14], "big")
        if ethertype in (0x0800, 0x86DD):
            out.append((4 if ethertype == 0x0800 else 6, frame[14:]))
    return out


def icmp_messages(path: str) -> list[Icmp]:
    out = []
    for v, ip in packets(path):
        if v == 4 and ip[9] == 1:
            ip = ip[:int.from_bytes(ip[2:4], "big")]
            out.append(Icmp(4, *addresses(4, ip), ip, ip[(ip[0] & 15) * 4:]))
        elif v == 6 and ip[6] == 58:
            ip = ip[:40 + int.from_bytes(ip[4:6], "big")]
            out.append(Icmp(6, *addresses(6, ip), ip, ip[40:]))
    return out


def without_hop_count(v: int, ip: bytes) -> bytes:
    """An IP packet with its TTL (and the IPv4 header checksum) or hop limit zeroed."""
    b = bytearray(ip)
    for i in ((8, 10, 11) if v == 4 else (7,)):
        b[i] = 0
    return bytes(b)


def echo_id(v: int, ip: bytes) -> int:
    at = (ip[0] & 15) * 4 + 4 if v == 4 else 44
    return int.from_bytes(ip[at:at + 2], "big")


def sniff(lab: Lab, ns: str, iface: str, name: str) -> tuple[Process, str]:
    path = str(lab.tmp / f"{name}.pcap")
    proc = lab.spawn(name, ns, [PY, "-c", SNIFF, iface, path])
    return proc, path


@pytest.mark.parametrize("f", [V4, V6], ids=["ipv4", "ipv6"])
def test_a_path_mtu_error_from_beyond_the_nat_reaches_the_client_translated(pmtu: Pmtu, f: Family):
    lab = pmtu.lab
    on_client, client_pcap = sniff(lab, pmtu.r.client, "eth0", f"sniff{f.v}-client")
    on_router, router_pcap = sniff(lab, pmtu.router, "wan", f"sniff{f.v}-router")
    on_client.wait_for_line("^sniffing", 15)
    on_router.wait_for_line("^sniffing", 15)
    res = lab.exec(pmtu.r.client, f"ping -{f.v} -M do -s 1400 -c 3 -i 0.3 -W 1 {f.server}",
                   check=False)
    on_client.stop(signal.SIGTERM)
    on_router.stop(signal.SIGTERM)
    print(res.stdout + res.stderr)

    # ping heard the router: the error matched ping's own echo (the quoted id restored).
    said = (rf"Frag needed and DF set \(mtu = {NARROW_MTU}\)" if f.v == 4
            else rf"Packet too big: mtu={NARROW_MTU}")
    assert re.search(rf"From {re.escape(f.router_wan)} icmp_seq=1 {said}", res.stdout), \
        res.stdout + res.stderr
    # The client's kernel learnt the path MTU (later echoes are refused before they leave).
    route = lab.exec(pmtu.r.client, f"ip -{f.v} route get {f.server}").stdout
    print(route)
    assert re.search(rf"\bmtu {NARROW_MTU}\b", route), route

    # The router saw the NAT address only: the echo it could not forward and its error.
    at_router = packets(router_pcap)
    assert all(f.client not in addresses(v, ip) for v, ip in at_router)
    sent = [m for m in icmp_messages(router_pcap) if m.too_big]
    assert sent
    for s in sent:
        print(f"from the router: {s.src} -> {s.dst}, {len(s.ip)} bytes, quoting "
              f"{s.quoted_addresses()}, echo id {echo_id(f.v, s.quote)}")
        assert (s.src, s.dst, s.quoted_addresses()) == (f.router_wan, f.nat, (f.nat, f.server))

    # On the client's wire: the router's error, to the client, whole, quoting the echo
    # exactly as the client sent it (but for the hop count the firewall took), with good
    # checksums. (Normally one error: the client sends no second echo that big.)
    at_client = icmp_messages(client_pcap)
    echo_type = 8 if f.v == 4 else 128
    echoes = [m for m in at_client if m.type == echo_type and m.src == f.client]
    errors = [m for m in at_client if m.too_big]
    assert echoes and errors, [(m.src, m.dst, m.type) for m in at_client]
    for e in errors:
        print(f"at the client: {e.src} -> {e.dst}, mtu {e.mtu}, {len(e.ip)} bytes, quoting "
              f"{e.quoted_addresses()}, echo id {echo_id(f.v, e.quote)}")
        assert (e.src, e.dst, e.mtu) == (f.router_wan, f.client, NARROW_MTU)
        assert e.quoted_addresses() == (f.client, f.server)
        assert e.checksums_ok()
        assert len(e.ip) == len(sent[0].ip)
        quote = without_hop_count(f.v, e.quote)
        assert any(without_hop_count(f.v, m.ip)[:len(quote)] == quote for m in echoes), \
            "the quoted echo is not one the client sent"

@pytest.mark.parametrize("f", [V4, V6], ids=["ipv4", "ipv6"])
def test_a_tcp_upload_finds_the_path_mtu_through_the_nat(pmtu: Pmtu, f: Family):
    lab = pmtu.lab
    sink = lab.spawn(f"sink{f.v}", pmtu.server, [PY, "-c", SINK, f.server_tcp, "5001"])
    sink.wait_for_line("^listening", 15)
    res = lab.exec(pmtu.r.client, [PY, "-c", UPLOAD, f.server_tcp, "5001", "400000"],
                   check=False, timeout=20)
    assert res.returncode == 0, res.stdout + res.stderr
    up = json.loads(res.stdout)
    got = json.loads(sink.wait_for_line(r'^\{"peer"', 5))
    print(up, got)
    assert up["counted"] == up["sent"] == got["bytes"] == 399872
    # The server saw the NAT address only.
    assert got["peer"] == f.nat
    # Full-size segments first (the advertised MSS less TCP options), then the narrow link's.
    assert up["mss_before"] > NARROW_MTU - f.headers, up
    assert up["mss_after"] <= NARROW_MTU - f.headers, up
    route = lab.exec(pmtu.r.client, f"ip -{f.v} route get {f.server_tcp}").stdout
    assert re.search(rf"\bmtu {NARROW_MTU}\b", route), route
