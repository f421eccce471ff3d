"""pfsync between two syncwall nodes in the HA lab (CARP off: traffic goes through node A).

What a user sees on the two nodes' `show states`: a TCP connection and a UDP flow through A
appear on B within a second with the same (creatorid, id), keys and TCP windows; closing
the connection removes it on both; a restarted B gets every state back by bulk update;
mismatched authentication keys sync nothing and count the drops; malformed or spoofed pfsync
on the sync port, and pfsync sent at a data port, create nothing and do not stop the node.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from halab import HaLab, ha_lab
from netlab import Lab, wait_until

PROBE = str(Path(__file__).resolve().parent / "probe.py")
PY = "/usr/bin/python3"

# Short TCP close timeouts and a 1 s expiry sweep, so that a closed connection goes quickly.
TIMEOUTS = "timeouts: { tcp.finwait: 2, tcp.closed: 2, interval: 1 }\n"
SYNC_FAST = "  maxupd: 128\n  bulk_timeout_ms: 1000\n  bulk_max_requests: 3\n"

# A TCP client driven from the test: connects, then "send N" (waits for the echo) or "close".
CLIENT = r"""
import socket, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5)
print("connected", s.getsockname()[1], flush=True)
for line in sys.stdin:
    cmd = line.split()
    if cmd[0] == "send":
        n = int(cmd[1]); s.sendall(b"x" * n); got = 0
        while got < n:
            chunk = s.recv(65536)
            if not chunk:
                break
            got += len(chunk)
        print("echoed", got, flush=True)
    elif cmd[0] == "close":
        s.shutdown(socket.SHUT_WR); s.recv(1); s.close(); print("closed", flush=True); break
"""


class Client:
    def __init__(self, lab: Lab, ns: str, host: str, port: int):
        self.p = subprocess.Popen(["ip", "netns", "exec", ns, PY, "-c", CLIENT, host, str(port)],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True)
        words = self._line(10).split()
        assert words[0] == "connected", words
        self.sport = int(words[1])

    def _line(self, timeout: float) -> str:
        import select
        r, _, _ = select.select([self.p.stdout], [], [], timeout)
        assert r, "client did not answer"
        return self.p.stdout.readline().strip()

    def send(self, n: int) -> None:
        self.p.stdin.write(f"send {n}\n")
        self.p.stdin.flush()
        assert self._line(10) == f"echoed {n}"

    def close(self) -> None:
        self.p.stdin.write("close\n")
        self.p.stdin.flush()
        assert self._line(10) == "closed"
        self.p.wait(5)

    def kill(self) -> None:
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait(5)


def sync_config(extra: str = "", auth_key: Path | None = None, peer: str | None = None) -> str:
    sync = "sync:\n  interface: sync\n  interval_ms: 100\n" + SYNC_FAST
    if peer is not None:
        sync += f"  peer: {peer}\n"
    if auth_key is not None:
        sync += f"  auth: {{ key_file: {auth_key} }}\n"
    return sync + TIMEOUTS + extra


def start_node(ha: HaLab, i: int, **kw):
    # The lab's default `sync:` line is replaced by ours (carp off, sync section in extra).
    return ha.start(i, carp=False, sync=False, extra=sync_config(**kw))


def states(ha: HaLab, i: int, **filt) -> list[dict]:
    args = ["show", "states"]
    for k, v in filt.items():
        args += [f"--{k}", str(v)]
    return ha.ctl(i, *args)["states"]


def ident(st: dict) -> tuple:
    return (st["creatorid"], st["id"], st["proto"], tuple(st["addr"]), tuple(st["port"]),
            st["direction"])


def windows(st: dict) -> tuple:
    return tuple((p["state"], p["seqlo"], p["seqhi"], p["max_win"], p["wscale"])
                 for p in (st["src"], st["dst"]))


@pytest.fixture(scope="module")
def ha():
    with Lab() as lab:
        h = ha_lab(lab, nodes=2)
        # Traffic goes through A by its real addresses: this is about sync, not CARP.
        lab.exec(h.client, f"ip route replace default via {h.lan_addr(0)}")
        lab.exec(h.server, f"ip route replace default via {h.wan_addr(0)}")
        lab.spawn("echo-tcp", h.server, [PY, PROBE, "serve", "tcp", "0.0.0.0", "5001"])
        lab.spawn("echo-udp", h.server, [PY, PROBE, "serve", "udp", "0.0.0.0", "5002"])
        start_node(h, 0)
        start_node(h, 1)
        yield h


def test_tcp_and_udp_states_reach_the_peer_with_identity_keys_and_windows(ha: HaLab):
    c = Client(ha.lab, ha.client, ha.SERVER4, 5001)
    try:
        c.send(20000)
        out = ha.lab.exec(ha.client, [PY, PROBE, "udp", ha.SERVER4, "5002", "3"]).stdout
        assert out.startswith("reply"), out
        on_a = {ident(s): s for s in states(ha, 0, addr=ha.CLIENT4)}
        # One state per interface crossed, for each of TCP and UDP.
        assert sorted(k[2] for k in on_a) == [6, 6, 17, 17], on_a.keys()
        assert all(s["origin"] == "local" and s["creatorid"] == 0x0a000001 for s in on_a.values())
        start = time.monotonic()
        on_b = wait_until(lambda: {ident(s): s for s in states(ha, 1, addr=ha.CLIENT4)}
                          if len(states(ha, 1, addr=ha.CLIENT4)) == 4 else None, 5, 0.05,
                          "the states on B")
        assert time.monotonic() - start < 1.5
        assert set(on_b) == set(on_a)
        assert all(s["origin"] == "peer" for s in on_b.values())
        # The windows B holds are A's (nothing moved since: the connection is idle).
        on_a = {ident(s): s for s in states(ha, 0, addr=ha.CLIENT4)}
        wait_until(lambda: all(windows(on_a[k]) == windows(s)
                               for k, s in {ident(s): s for s in states(ha, 1, addr=ha.CLIENT4)}.items()),
                   3, 0.1, "the same TCP windows on B")
        tcp_b = [s for s in on_b.values() if s["proto"] == 6]
        assert all(s["src"]["seqhi"] != 0 and s["dst"]["seqhi"] != 0 for s in tcp_b)
        sync_a = ha.ctl(0, "show", "sync")
        assert sync_a["sent"]["ins"] >= 4 and sync_a["sent"]["packets"] >= 1
        sync_b = ha.ctl(1, "show", "sync")
        assert sync_b["received"]["ins"] >= 4 and sync_b["applied"]["inserted"] >= 4

        # Closing: the states go through FIN to closed on both nodes, and when they expire
        # on A the deletes remove them from B.
        c.close()
        wait_until(lambda: not [s for s in states(ha, 1, addr=ha.CLIENT4, port=5001)], 15, 0.2,
                   "the closed connection gone from B")
        # If B's sweep came first, A drops its copy when B's DEL_C arrives: a moment later.
        wait_until(lambda: not states(ha, 0, addr=ha.CLIENT4, port=5001), 5, 0.1,
                   "the closed connection gone from A")
        # Both copies expire on the same class timer; whichever node's sweep comes first
        # tells the other with DEL_C.
        assert sum(ha.ctl(i, "show", "sync")["sent"]["del_c"] for i in (0, 1)) >= 2
    finally:
        c.kill()


def test_kill_states_on_a_is_synced_as_a_delete(ha: HaLab):
    c = Client(ha.lab, ha.client, ha.SERVER4, 5001)
    try:
        c.send(100)
        wait_until(lambda: len(states(ha, 1, port=c.sport)) == 2, 5, 0.1, "the states on B")
        killed = ha.ctl(0, "kill", "states", "--port", str(c.sport))["killed"]
        assert killed == 2
        wait_until(lambda: not states(ha, 1, port=c.sport), 3, 0.1, "the states gone from B")
    finally:
        c.kill()


def test_restarted_node_gets_every_state_by_bulk_update(ha: HaLab):
    clients = [Client(ha.lab, ha.client, ha.SERVER4, 5001) for _ in range(3)]
    try:
        for c in clients:
            c.send(1000)
        wait_until(lambda: len(states(ha, 1, port=5001)) == 6, 5, 0.1, "the states on B")
        ha.stop(1, signal.SIGKILL)
        start_node(ha, 1)
        assert len(states(ha, 1)) == 0 or True  # may already be arriving
        wait_until(lambda: ha.ctl(1, "show", "sync")["bulk"]["status"] == "done", 10, 0.1,
                   "B's bulk update done")
        on_a = {ident(s) for s in states(ha, 0, port=5001)}
        on_b = {ident(s) for s in states(ha, 1, port=5001)}
        assert on_a == on_b and len(on_b) == 6
        sync_b = ha.ctl(1, "show", "sync")
        assert sync_b["bulk"]["received_states"] >= 6
        assert ha.ctl(0, "show", "sync")["bulk"]["sent_states"] >= 6
    finally:
        for c in clients:
            c.kill()


def test_resync_command_runs_a_bulk_update(ha: HaLab):
    before = ha.ctl(1, "show", "sync")["bulk"]["requests"]
    ha.ctl(1, "sync", "resync")
    wait_until(lambda: ha.ctl(1, "show", "sync")["bulk"]["requests"] > before and
               ha.ctl(1, "show", "sync")["bulk"]["status"] == "done", 10, 0.1, "a second bulk update")


def _pfsync_packet(scapy, src: str, dst: str, ttl: int, payload: bytes):
    return scapy.IP(src=src, dst=dst, ttl=ttl, proto=240) / scapy.Raw(payload)


def _ins_payload(creator: int, state_id: int) -> bytes:
    """A well-formed pfsync v6 packet with one INS of a TCP state 192.0.2.99:1234 ->
    198.51.100.99:80, built from the documented layout."""
    import struct
    key = (bytes([192, 0, 2, 99]) + bytes(12) + bytes([198, 51, 100, 99]) + bytes(12) +
           struct.pack("!HHHBB", 1234, 80, 0, 2, 0))
    peer = bytes(8) + struct.pack("!IIIHHBB", 1000, 70000, 0, 65535, 0, 4, 0) + bytes(6)
    st = (struct.pack("!Q", state_id) + b"all".ljust(16, b"\0") + key + key + peer + peer +
          bytes(16) + struct.pack("!IIIII", 0xffffffff, 0xffffffff, 0xffffffff, 5, 100) +
          bytes(32) + struct.pack("!I", creator) + bytes(8) + struct.pack("!H", 0) +
          bytes([2, 6, 1, 0, 0, 2, 0, 0, 0, 0]) + struct.pack("!H", 0) + bytes(2))
    assert len(st) == 264
    sub = struct.pack("!BBH", 13, 264 // 4, 1)
    body = sub + st
    return struct.pack("!BBH", 6, 0, 20 + len(body)) + bytes(16) + body


SENDER = r"""
import sys
from scapy.all import IP, Raw, Ether, get_if_hwaddr, sendp
kind, iface, src, dst, hexdata, ttl = sys.argv[1:7]
# The source MAC is given: scapy finds none for a destination it has no route to, and a
# bridge drops frames from 00:00:00:00:00:00.
pkt = Ether(src=get_if_hwaddr(iface), dst="01:00:5e:00:00:f0") / IP(src=src, dst=dst, ttl=int(ttl), proto=240) / Raw(bytes.fromhex(hexdata))
sendp(pkt, iface=iface, verbose=False)
"""


def _send(ha: HaLab, ns: str, src: str, payload: bytes, ttl: int = 255, dst: str = "224.0.0.240"):
    ha.lab.exec(ns, [PY, "-c", SENDER, "x", "eth0", src, dst, payload.hex(), str(ttl)])


def test_spoofed_and_malformed_pfsync_create_nothing_and_are_counted(ha: HaLab, tmp_path):
    evil = ha.add_host("evil", "sync", "203.0.113.99/24")
    good = _ins_payload(0x0bad0001, 42)
    errors = lambda: ha.ctl(1, "show", "sync")["errors"]
    base = errors()
    _send(ha, evil, "203.0.113.99", good, ttl=64)                    # wrong TTL
    _send(ha, evil, "203.0.113.99", b"\x05" + good[1:])              # wrong version
    _send(ha, evil, "203.0.113.99", good[:100])                      # truncated
    bad_count = bytearray(good)
    bad_count[22:24] = (50).to_bytes(2, "big")                        # 50 records claimed
    _send(ha, evil, "203.0.113.99", bytes(bad_count))
    wait_until(lambda: errors()["bad_ttl"] > base["bad_ttl"] and
               errors()["bad_version"] > base["bad_version"] and
               errors()["len_beyond_packet"] > base["len_beyond_packet"] and
               errors()["section_truncated"] > base["section_truncated"], 5, 0.1,
               f"the malformed packets counted (before {base})")
    # The same well-formed INS at a data port (B's LAN, from the client): never accepted.
    _send(ha, ha.client, ha.CLIENT4, good)
    _send(ha, ha.client, ha.CLIENT4, good, dst=ha.lan_addr(1))
    time.sleep(0.5)
    assert not [s for s in states(ha, 1) if s["creatorid"] == 0x0bad0001]
    assert ha.running(1) and ha.running(0)
    # Without authentication, a well-formed INS on the sync segment is pfsync doing its job:
    # that is what the keyed MAC is for (next test).
    _send(ha, evil, "203.0.113.99", good)
    wait_until(lambda: [s for s in states(ha, 1) if s["creatorid"] == 0x0bad0001], 5, 0.1,
               "the well-formed INS applied")


def test_authentication_mismatched_keys_sync_nothing_and_count_drops(ha: HaLab):
    key_a, key_b = ha.lab.tmp / "a.key", ha.lab.tmp / "b.key"
    key_a.write_text("syncwall-lab-key-one-0123456789\n")
    key_b.write_text("syncwall-lab-key-two-0123456789\n")
    ha.stop(0)
    ha.stop(1)
    start_node(ha, 0, auth_key=key_a)
    start_node(ha, 1, auth_key=key_b)
    c = Client(ha.lab, ha.client, ha.SERVER4, 5001)
    try:
        c.send(1000)
        wait_until(lambda: ha.ctl(1, "show", "sync")["errors"]["auth_bad_mac"] >= 1, 5, 0.1,
                   "bad MACs counted on B")
        time.sleep(0.5)
        assert not states(ha, 1, port=c.sport)
        assert len(states(ha, 0, port=c.sport)) == 2
        # A spoofed packet without a trailer is refused too.
        evil = ha.add_host("evil2", "sync", "203.0.113.98/24")
        _send(ha, evil, "203.0.113.98", _ins_payload(0x0bad0002, 7))
        wait_until(lambda: ha.ctl(1, "show", "sync")["errors"]["auth_missing"] >= 1, 5, 0.1,
                   "the unauthenticated packet counted")
        assert not [s for s in states(ha, 1) if s["creatorid"] == 0x0bad0002]
        # With the same key on both, the states arrive.
        ha.stop(1)
        key_b.write_text(key_a.read_text())
        start_node(ha, 1, auth_key=key_b)
        wait_until(lambda: len(states(ha, 1, port=c.sport)) == 2, 10, 0.1,
                   "the states on B by bulk update, authenticated")
    finally:
        c.kill()


def test_unicast_peer_resolved_by_arp_carries_the_states(ha: HaLab):
    """sync.peer instead of the multicast group: each node learns the other's MAC by ARP on
    the sync port and sends to it alone."""
    ha.stop(0)
    ha.stop(1)
    start_node(ha, 0, peer=ha.sync_addr(1))
    start_node(ha, 1, peer=ha.sync_addr(0))
    c = Client(ha.lab, ha.client, ha.SERVER4, 5001)
    try:
        c.send(1000)
        wait_until(lambda: len(states(ha, 1, port=c.sport)) == 2, 5, 0.1, "the states on B")
        sync_a = ha.ctl(0, "show", "sync")
        assert sync_a["peer"] == ha.sync_addr(1) and sync_a["peer_resolved"]
    finally:
        c.kill()
