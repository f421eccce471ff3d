"""The management socket and syncwallctl in the namespace lab: client ── syncwall ── server.

What an operator does: list the states of a live connection, read the counters and the rule
statistics, kill states, reload a broken file; and what a careless client does: send garbage,
an endless line, or twenty requests at once.
"""

import json
import os
import re
import socket
import stat
import subprocess
import time
from pathlib import Path

import pytest

from netlab import Lab, RoutedLab, find_binary, routed_lab, run, wait_until

PROBE = str(Path(__file__).resolve().parent / "probe.py")

RULES = """
rules:
  - "block return all"
  - "pass out all"
  - "pass in on lan proto tcp from lan:network to 198.51.100.10 port 8080"
"""

# Connects from the client, echoes one line, prints "connected <local port>" and keeps the
# connection open (and idle) until killed.
HOLD = """
import socket, sys, time
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=10)
s.sendall(b"hello\\n")
assert s.recv(16) == b"hello\\n"
print("connected", s.getsockname()[1], flush=True)
time.sleep(600)
"""


def extra(sock: Path, rules: str = RULES) -> str:
    return f"control:\n  socket: {sock}\n" + rules


class Fw:
    """The routed lab with its control socket and a syncwallctl runner."""

    def __init__(self, r: RoutedLab, sock: Path):
        self.r, self.lab, self.sock = r, r.lab, sock

    def ctl(self, *args: str, timeout: float = 30) -> subprocess.CompletedProcess:
        return run([str(find_binary("syncwallctl")), "-s", str(self.sock), *args], check=False,
                   timeout=timeout)

    def ok(self, *args: str) -> str:
        res = self.ctl(*args)
        assert res.returncode == 0, f"syncwallctl {' '.join(args)}: rc {res.returncode}\n{res.stdout}{res.stderr}"
        return res.stdout

    def json(self, *args: str):
        return json.loads(self.ok("--json", *args))


def request(sock: socket.socket, line: bytes) -> dict:
    """Send one line on a raw connection and read one reply line."""
    sock.sendall(line)
    buf = b""
    while not buf.endswith(b"\n"):
        chunk = sock.recv(65536)
        assert chunk, f"connection closed after {buf!r}"
        buf += chunk
    return json.loads(buf)


def raw(path: Path) -> socket.socket:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(str(path))
    return s


@pytest.fixture(scope="module")
def fw():
    with Lab() as lab:
        r = routed_lab(lab)
        sock = lab.tmp / "sw.sock"
        # A socket file left behind by a process that died: syncwall replaces it.
        stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        stale.bind(str(sock))
        stale.close()
        assert sock.exists()
        r.start(extra(sock))
        f = Fw(r, sock)
        # Ready: the control socket answers, and both hosts have taught syncwall their MACs
        # (their pings to it are blocked with an unreachable; a blocked ping makes no state).
        wait_until(lambda: f.ctl("show", "info").returncode == 0, 30, what="control socket answering")
        for ns, addr in ((r.client, r.FW_LAN4), (r.server, r.FW_WAN4)):
            wait_until(lambda: "Unreachable" in lab.exec(ns, f"ping -c 1 -W 1 {addr}", check=False).stdout,
                       15, what=f"syncwall answering on {addr}")
        srv = lab.spawn("tcp8080", r.server, ["/usr/bin/python3", PROBE, "serve", "tcp", r.SERVER4, "8080"])
        srv.wait_for_line("listening", 10)
        yield f
        assert r.fw_proc.stop() == 0, r.fw_proc.output()
        assert not sock.exists(), "the control socket outlived syncwall"


@pytest.fixture(scope="module")
def held(fw: Fw) -> int:
    """A TCP connection client -> server:8080 kept open; its client port."""
    proc = fw.lab.spawn("hold", fw.r.client, ["/usr/bin/python3", "-c", HOLD, fw.r.SERVER4, "8080"])
    line = proc.wait_for_line(r"^connected \d+", 15)
    return int(line.split()[1])


def test_socket_is_a_socket_with_mode_0600(fw: Fw):
    st = os.stat(fw.sock)
    assert stat.S_ISSOCK(st.st_mode)
    assert stat.S_IMODE(st.st_mode) == 0o600, oct(st.st_mode)


def test_show_states_lists_both_states_of_a_connection(fw: Fw, held: int):
    c, s = fw.r.CLIENT4, fw.r.SERVER4
    want_in = f"all tcp {s}:8080 <- {c}:{held}       ESTABLISHED:ESTABLISHED"
    want_out = f"all tcp {c}:{held} -> {s}:8080       ESTABLISHED:ESTABLISHED"

    def listed():
        text = fw.ok("show", "states")
        return text if want_in in text and want_out in text else None

    text = wait_until(listed, 10, what="both states ESTABLISHED")
    assert want_in in text.splitlines() and want_out in text.splitlines(), text

    states = fw.json("show", "states", "--addr", c)["states"]
    by_dir = {st["direction"]: st for st in states if held in st["port"]}
    assert set(by_dir) == {"in", "out"}, states
    assert by_dir["in"]["interface"] == "lan"
    assert by_dir["in"]["addr"] == [c, s] and by_dir["in"]["port"] == [held, 8080]
    assert by_dir["out"]["interface"] == "wan"
    assert by_dir["out"]["addr"] == [s, c] and by_dir["out"]["port"] == [8080, held]
    for st in by_dir.values():
        assert st["proto"] == 6 and st["creatorid"] == 0x0a000001
        assert st["src"]["state"] == st["dst"]["state"] == 4  # ESTABLISHED
        assert st["packets"][0] >= 2 and st["packets"][1] >= 2, st
        assert st["expires_in"] > 80000  # tcp.established: 24 h
    assert by_dir["in"]["rule"] == 2 and by_dir["out"]["rule"] == 1

    verbose = fw.ok("show", "states", "-v", "--port", str(held)).splitlines()
    i = verbose.index(want_in)
    assert verbose[i + 1].startswith("   [") and "  [" in verbose[i + 1], verbose
    assert verbose[i + 2].startswith("   age 00:00:") and ", rule 2" in verbose[i + 2], verbose
    assert verbose[i + 3].startswith("   id: ") and verbose[i + 3].endswith("creatorid: 0a000001")

    # Filters: by protocol number or name, and one that matches nothing.
    assert len(fw.json("show", "states", "--port", str(held), "--proto", "6")["states"]) == 2
    assert fw.json("show", "states", "--port", str(held), "--proto", "udp")["states"] == []
    assert fw.ok("show", "states", "--addr", "203.0.113.99") == ""
    limited = fw.json("show", "states", "--port", str(held), "--limit", "1")
    assert len(limited["states"]) == 1 and limited["truncated"] is True


def test_show_states_pages_with_a_cursor(fw: Fw, held: int):
    # One state a page: the first page says where the next starts; following "next" lists
    # both states of the connection, each once, and ends with next null.
    with raw(fw.sock) as s:
        args = {"port": held, "limit": 1}
        seen = []
        for _ in range(10):
            reply = request(s, json.dumps({"v": 1, "cmd": "show states", "args": args}).encode() + b"\n")
            assert reply["ok"] is True, reply
            result = reply["result"]
            assert len(result["states"]) <= 1
            seen += [st["id"] for st in result["states"]]
            assert result["truncated"] is (result["next"] is not None)
            if result["next"] is None:
                break
            args["cursor"] = result["next"]
        assert result["next"] is None
        assert len(seen) == 2 and len(set(seen)) == 2, seen
        # A page without a limit is bounded, and says where it stopped.
        page = request(s, b'{"v":1,"cmd":"show states"}\n')["result"]
        assert len(page["states"]) <= 1000 and "next" in page
    # syncwallctl pages through on its own.
    assert len(fw.json("show", "states", "--port", str(held))["states"]) == 2


def test_show_info_counters_follow_the_traffic(fw: Fw, held: int):
    info = fw.json("show", "info")
    assert info["hostid"] == 0x0a000001 and info["running"] is True
    assert info["states"]["current"] >= 2
    assert info["states"]["inserts"] >= 2
    assert info["counters"]["forwarded"] > 0
    ports = {p["name"]: p for p in info["ports"]}
    assert ports["lan"]["rx_packets"] > 0 and ports["wan"]["rx_packets"] > 0
    assert ports["lan"]["tx_packets"] > 0 and ports["wan"]["tx_packets"] > 0
    assert info["drops"]["filter_block"] > 0  # the readiness pings
    text = fw.ok("show", "info")
    assert text.startswith("Status: Enabled for 0 days "), text
    assert "Hostid: 0x0a000001" in text
    assert "Interface Stats for lan" in text and "Interface Stats for wan" in text
    lines = text.splitlines()
    current = next(line for line in lines if line.strip().startswith("current entries"))
    assert int(current.split()[2]) >= 2
    assert "Counters" in lines
    assert any(line.split()[:1] == ["filter_block"] for line in lines)


def test_show_rules_counts_the_pass_rule(fw: Fw, held: int):
    result = fw.json("show", "rules")
    rules = result["rules"]
    assert [r["number"] for r in rules] == [0, 1, 2]
    assert rules[0]["text"] == "block return all"
    assert rules[2]["text"] == ("pass in on lan inet proto tcp from lan:network to 198.51.100.10 "
                                "port = 8080 flags S/SA keep state")
    assert rules[2]["matches"] >= 1 and rules[2]["states_created"] >= 1 and rules[2]["states"] >= 1
    assert rules[2]["packets"] >= 1 and rules[2]["bytes"] > 0
    assert rules[0]["matches"] > 0  # the readiness pings were blocked
    assert re.fullmatch(r".*/fw\.yaml:\d+:\d+", rules[2]["source"]), rules[2]["source"]
    text = fw.ok("show", "rules").splitlines()
    i = text.index("@2 " + rules[2]["text"])
    # Rule counters move only with new connections, and none is made meanwhile.
    assert re.match(r"  \[ Matches: (\d+) +Packets: (\d+) +Bytes: (\d+) +States: (\d+) +\]$", text[i + 1]), text[i + 1]
    assert text[i + 1].split()[2] == str(rules[2]["matches"])
    assert text[i + 2] == f"  [ State Creations: {rules[2]['states_created']:<6}]"


def test_show_interfaces(fw: Fw):
    ifaces = fw.json("show", "interfaces")["interfaces"]
    assert [i["name"] for i in ifaces] == ["lan", "wan"]
    assert ifaces[0]["addresses"] == [f"{fw.r.FW_LAN4}/24", f"{fw.r.FW_LAN6}/64"]
    assert "iface=fw-lan" in ifaces[0]["devargs"] and ifaces[0]["rx_packets"] > 0
    text = fw.ok("show", "interfaces")
    assert text.startswith("lan: port ")
    assert f"\tinet {fw.r.FW_WAN4}/24\n" in text


def test_carp_and_sync_say_they_are_not_available(fw: Fw):
    for what in ("carp", "sync"):
        result = fw.json("show", what)
        assert result["available"] is False and result["reason"]
        assert fw.ok("show", what).startswith(f"{what}: not available: ")


def test_kill_states_by_client_address(fw: Fw, held: int):
    c = fw.r.CLIENT4
    before = fw.json("show", "states", "--addr", c)["states"]
    assert len(before) >= 2
    res = fw.ctl("kill", "states", "--addr", c)
    assert res.returncode == 0, res.stderr
    assert res.stdout == f"killed {len(before)} states\n"
    assert fw.json("show", "states", "--addr", c)["states"] == []
    assert fw.ok("show", "states", "--addr", c) == ""
    assert fw.json("kill", "states", "--addr", c) == {"killed": 0}
    # Usage errors never reach the daemon.
    assert fw.ctl("kill", "states").returncode == 2
    assert fw.ctl("kill", "states", "--addr", "not-an-address").returncode == 2


def test_broken_reload_fails_with_the_config_error_and_keeps_the_rules(fw: Fw):
    cfg = fw.lab.tmp / "fw.yaml"
    good = cfg.read_text()
    cfg.write_text(fw.r.config(extra(fw.sock, RULES + '  - "pass in on lan proto tcp to port 70000"\n')))
    res = fw.ctl("reload")
    assert res.returncode == 1, res.stdout + res.stderr
    assert "fw.yaml:" in res.stderr and "70000" in res.stderr, res.stderr
    result, _ = probe(fw, "tcp", fw.r.SERVER4, "8080")
    assert result == "connected"
    assert len(fw.json("show", "rules")["rules"]) == 3
    # The good file loads again, and the connection probe above was counted by the old rules.
    cfg.write_text(good)
    assert fw.ok("reload") == "reloaded: 3 rules\n"
    assert fw.json("show", "rules")["reloads"] == 1
    assert probe(fw, "tcp", fw.r.SERVER4, "8080")[0] == "connected"


def probe(fw: Fw, *args: str) -> tuple[str, float]:
    res = fw.lab.exec(fw.r.client, ["/usr/bin/python3", PROBE, *args], check=False, timeout=20)
    words = res.stdout.split()
    assert len(words) == 2, res.stdout + res.stderr
    return words[0], float(words[1])


def test_garbage_gets_an_error_and_the_connection_carries_on(fw: Fw):
    with raw(fw.sock) as s:
        reply = request(s, b"garbage\n")
        assert reply == {"v": 1, "ok": False, "error": "invalid JSON at byte 1"}
        reply = request(s, b'{"v":1,"cmd":"show states","args":{"port":"80"}}\n')
        assert reply["ok"] is False and '"port" must be an integer' in reply["error"]
        reply = request(s, b'{"v":1,"cmd":"selfdestruct"}\n')
        assert reply["ok"] is False and reply["error"].startswith('unknown command "selfdestruct"')
        reply = request(s, b"[]\r\n")
        assert reply == {"v": 1, "ok": False, "error": "a request must be a JSON object"}
        # A line longer than 64 KiB, in pieces: one error, then the stream is in step again.
        s.sendall(b'{"v":1,"cmd":"show info","pad":"' + b"x" * 40000)
        reply = request(s, b"x" * 40000 + b'"}\n')
        assert reply == {"v": 1, "ok": False, "error": "request longer than 65536 bytes"}
        reply = request(s, b'{"v":1,"cmd":"show info"}\n')
        assert reply["ok"] is True and reply["result"]["hostid"] == 0x0a000001
        # Two requests in one write get two replies, in order.
        s.sendall(b'{"v":1,"cmd":"show carp"}\n{"v":1,"cmd":"show sync"}\n')
        buf = b""
        while buf.count(b"\n") < 2:
            buf += s.recv(65536)
        first, second = (json.loads(x) for x in buf.splitlines())
        assert "CARP" in first["result"]["reason"] and "pfsync" in second["result"]["reason"]
    # A client that hangs up in the middle of a line, and one that sends its last request
    # without a newline before closing its side, do not upset the daemon.
    with raw(fw.sock) as s:
        s.sendall(b'{"v":1,"cmd":"sho')
    with raw(fw.sock) as s:
        s.sendall(b'{"v":1,"cmd":"show info"}')
        s.shutdown(socket.SHUT_WR)
        assert json.loads(s.makefile("rb").readline())["ok"] is True
    assert fw.ctl("show", "info").returncode == 0


def test_twenty_clients_at_once(fw: Fw):
    # Twenty connections open together, each sends a request before any reply is read.
    conns = [raw(fw.sock) for _ in range(20)]
    try:
        for i, s in enumerate(conns):
            s.sendall(b'{"v":1,"cmd":"show states","args":{"limit":%d}}\n' % i)
        for s in conns:
            reply = json.loads(s.makefile("rb").readline())
            assert reply["ok"] is True, reply
    finally:
        for s in conns:
            s.close()
    # And twenty syncwallctl processes at once.
    ctl = str(find_binary("syncwallctl"))
    procs = [subprocess.Popen([ctl, "-s", str(fw.sock), "--json", "show", "info"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(20)]
    for p in procs:
        out, err = p.communicate(timeout=30)
        assert p.returncode == 0, err
        assert json.loads(out)["hostid"] == 0x0a000001


def test_a_new_client_is_served_while_64_connections_are_held(fw: Fw):
    # 64 idle connections hold every slot; the next client is served, and the connection
    # idle longest is told why it is closed to make room.
    conns = [raw(fw.sock) for _ in range(64)]
    try:
        assert request(conns[-1], b'{"v":1,"cmd":"show sync"}\n')["ok"] is True  # all accepted
        res = fw.ctl("show", "info")
        assert res.returncode == 0, res.stderr
        reply = json.loads(conns[0].makefile("rb").readline())
        assert reply == {"v": 1, "ok": False,
                         "error": "closed to make room for a new client (64 management connections at most)"}
        assert conns[0].recv(1) == b""  # and hung up on
        assert request(conns[-1], b'{"v":1,"cmd":"show sync"}\n')["ok"] is True
    finally:
        for s in conns:
            s.close()
    wait_until(lambda: fw.ctl("show", "info").returncode == 0, 5, what="a new client served again")


def test_a_number_too_large_or_nesting_too_deep_is_an_error_not_an_exit(fw: Fw):
    with raw(fw.sock) as s:
        assert request(s, b"1e999\n") == {"v": 1, "ok": False,
                                           "error": "invalid JSON: number overflow at byte 5"}
        reply = request(s, b'{"v":1,"cmd":"show states","args":{"limit":1e999}}\n')
        assert reply["ok"] is False and "number overflow" in reply["error"]
        deep = b'{"v":1,"cmd":"show states","args":' + b"[" * 65000 + b"}\n"
        assert request(s, deep) == {"v": 1, "ok": False, "error": "request nested deeper than 4 levels"}
        assert request(s, b'{"v":1,"cmd":"show info"}\n')["ok"] is True
    assert fw.r.fw_proc.running(), "syncwall exited"
    assert fw.ctl("show", "info").returncode == 0


def test_syncwallctl_exit_codes(fw: Fw):
    assert fw.ctl("show", "nonsense").returncode == 2
    assert fw.ctl("show", "states", "--port", "70000").returncode == 2
    assert fw.ctl("show", "states", "--proto", "bogus").returncode == 2
    assert fw.ctl().returncode == 2
    assert fw.ctl("--help").returncode == 0
    missing = run([str(find_binary("syncwallctl")), "-s", str(fw.lab.tmp / "nobody.sock"), "show", "info"],
                  check=False)
    assert missing.returncode == 3 and "cannot connect" in missing.stderr, missing.stderr
