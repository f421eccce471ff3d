"""EAL test on one net_pcap port: DPDK telemetry and the Prometheus endpoint of a running
syncwall report the counters that `syncwallctl show info` reports, and no HTTP client can
take the endpoint (or the process) down.

The port reads a short capture once (a TCP handshake that creates states, blocked packets)
and then stays quiet, so the counters settle and every reader must agree on them exactly.
"""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from scapy.all import ARP, IP, TCP, UDP, Ether, Raw, wrpcap

from netlab import find_binary, wait_until
from pcapcfg import one_port_lan, pcap_config

FW_MAC, CLIENT_MAC, SERVER_MAC = "02:00:00:00:00:01", "02:00:00:00:0c:01", "02:00:00:00:0d:01"
CLIENT, SERVER = "192.0.2.10", "198.51.100.10"
TELEMETRY = "/usr/bin/dpdk-telemetry.py"
PREFIX_BASE = "sw-obs"
PREFIX = f"{PREFIX_BASE}-{os.getpid()}"
# rte_tel_data keeps strings of at most RTE_TEL_MAX_STRING_LEN - 1 characters.
TEL_MAX_STRING = 127


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def config(tmp: Path, port: int) -> str:
    return pcap_config(name='"obs \\"1\\""', prefix=PREFIX_BASE, burst=1,
                       control={"socket": f"{tmp}/fw.sock", "metrics": f'"127.0.0.1:{port}"'},
                       interfaces=one_port_lan(tmp, FW_MAC),
                       rules=["block all", "pass in on lan from 192.0.2.0/24 to any",
                              "pass out on lan all"])


def frm(src_mac, pkt):
    return Ether(src=src_mac, dst=FW_MAC) / pkt


PACKETS = [
    frm(CLIENT_MAC, ARP(op=2, hwsrc=CLIENT_MAC, psrc=CLIENT, hwdst=FW_MAC, pdst="192.0.2.1")),
    frm(SERVER_MAC, ARP(op=2, hwsrc=SERVER_MAC, psrc=SERVER, hwdst=FW_MAC, pdst="198.51.100.1")),
    frm(CLIENT_MAC, IP(src=CLIENT, dst=SERVER) / TCP(sport=40000, dport=80, flags="S", seq=1000)),
    frm(SERVER_MAC, IP(src=SERVER, dst=CLIENT) / TCP(sport=80, dport=40000, flags="SA", seq=5000, ack=1001)),
    frm(CLIENT_MAC, IP(src=CLIENT, dst=SERVER) / TCP(sport=40000, dport=80, flags="A", seq=1001, ack=5001)),
    # Not from the client's net: blocked.
    *[frm(SERVER_MAC, IP(src=SERVER, dst=CLIENT) / UDP(sport=53, dport=6000 + i) / Raw(b"x"))
      for i in range(3)],
]


class Fw:
    def __init__(self, tmp: Path, proc: subprocess.Popen, port: int):
        self.tmp, self.proc, self.port = tmp, proc, port
        self.lines: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line)

    def output(self) -> str:
        return "".join(self.lines)

    def ctl_json(self, *args: str):
        res = subprocess.run([str(find_binary("syncwallctl")), "-s", str(self.tmp / "fw.sock"),
                              "--json", *args], capture_output=True, text=True, timeout=30)
        assert res.returncode == 0, res.stderr + self.output()
        return json.loads(res.stdout)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


@pytest.fixture(scope="module")
def fw(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("observability")
    wrpcap(str(tmp / "in.pcap"), PACKETS)
    port = free_port()
    (tmp / "fw.yaml").write_text(config(tmp, port))
    proc = subprocess.Popen([str(find_binary("syncwall")), "-c", str(tmp / "fw.yaml")],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    f = Fw(tmp, proc, port)
    try:
        wait_until(lambda: any(l.startswith("syncwall: ready") for l in f.lines) or proc.poll() is not None,
                   60, what="syncwall ready")
        assert proc.poll() is None, f.output()
        # Every packet of the capture has been read and decided.
        wait_until(lambda: f.ctl_json("show", "info")["ports"][0]["rx_packets"] == len(PACKETS)
                   and f.ctl_json("show", "info")["drops"]["filter_block"] == 3,
                   20, what="the capture read")
        yield f
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)
        shutil.rmtree(f"/var/run/dpdk/{PREFIX}", ignore_errors=True)
    assert proc.returncode == 0, f.output()


# --- DPDK telemetry ----------------------------------------------------------------------

def flatten(value, path="") -> dict:
    """A management result as syncwall hands it to telemetry (control/mgmt/telemetry_view.hpp)."""
    out = {}
    if isinstance(value, dict):
        for k, v in value.items():
            out.update(flatten(v, f"{path}/{re.sub('[^A-Za-z0-9_/]', '_', k)}" if path
                               else re.sub("[^A-Za-z0-9_/]", "_", k)))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out.update(flatten(v, f"{path}/{i}" if path else str(i)))
    elif isinstance(value, bool):
        out[path] = int(value)
    elif isinstance(value, str):
        out[path] = value[:TEL_MAX_STRING]
    else:
        out[path] = value
    return out


def telemetry(*commands: str) -> dict:
    """Run dpdk-telemetry.py against the instance; {command: reply}."""
    res = subprocess.run(["/usr/bin/python3", TELEMETRY, "-f", PREFIX], input="\n".join(commands) + "\n",
                         capture_output=True, text=True, timeout=30)
    assert res.returncode == 0, res.stdout + res.stderr
    replies = {}
    for line in res.stdout.splitlines():
        replies.update(json.loads(line))
    assert set(replies) == set(commands), res.stdout + res.stderr
    return replies


def test_telemetry_socket_is_in_the_runtime_directory(fw):
    assert Path(f"/var/run/dpdk/{PREFIX}/dpdk_telemetry.v2").exists()


def test_telemetry_lists_the_syncwall_commands(fw):
    cmds = telemetry("/")["/"]
    assert {"/syncwall/info", "/syncwall/carp", "/syncwall/sync"} <= set(cmds)


def test_telemetry_info_has_the_counters_of_show_info(fw):
    # The snapshot is republished every half second; the counters have settled, so the next
    # one (if not this one) agrees exactly with the control socket.
    # What moves by itself while nothing happens: the clock, the main loop's pass histogram,
    # the workers' poll counts and the EAL heap (the control thread allocates).
    def settled(flat):
        return {k: v for k, v in flat.items()
                if k != "uptime" and not k.startswith(("main_loop/", "memory/", "workers/"))}

    def same():
        want = flatten(fw.ctl_json("show", "info"))
        got = telemetry("/syncwall/info")["/syncwall/info"]
        return got if settled(got) == settled(want) else None
    got = wait_until(same, 5, interval=0.3, what="telemetry equal to show info")
    assert got["ports/0/name"] == "lan"
    assert got["ports/0/rx_packets"] == len(PACKETS)
    assert got["drops/filter_block"] == 3
    assert got["states/current"] == 2 and got["states/inserts"] == 2
    assert got["node"] == 'obs "1"' and got["hostid"] == 9 and got["running"] == 1


def thp_for_advised_memory() -> bool:
    """Whether a mapping advised MADV_HUGEPAGE may get 2 MiB pages here: the kernel's mode
    for anonymous memory allows it, and no parent turned THP off (PR_SET_THP_DISABLE)."""
    try:
        text = Path("/sys/kernel/mm/transparent_hugepage/enabled").read_text()
    except OSError:
        return False
    m = re.search(r"\[(\w+)\]", text)
    if not m or m.group(1) not in ("always", "madvise"):
        return False
    status = Path("/proc/self/status").read_text()
    return not re.search(r"^THP_enabled:\s*0$", status, re.M)


def test_show_info_reports_the_state_table_and_its_2mib_pages(fw):
    # The default limit, 100 000 states: 108 001 slots of 192 bytes and two indexes. EAL runs
    # with --no-huge, so the slots are a mapping of their own, advised for 2 MiB pages.
    info = fw.ctl_json("show", "info")
    mem = info["memory"]
    assert info["states"]["limit"] == 100000
    assert mem["state_table_bytes"] >= 108001 * 192
    huge = mem["state_table_huge_page_bytes"]
    assert huge <= mem["state_table_bytes"] and huge % (2 << 20) == 0
    if thp_for_advised_memory():
        assert huge > 0, mem
    else:
        assert huge == 0, mem


def test_telemetry_carp_and_sync_answer_as_show_carp_and_sync(fw):
    replies = telemetry("/syncwall/carp", "/syncwall/sync")
    for what in ("carp", "sync"):
        want = flatten(fw.ctl_json("show", what))
        got = replies[f"/syncwall/{what}"]
        assert isinstance(got, dict) and got.get("available") == want["available"], (got, want)
        if not want["available"]:
            assert got == want


# --- Prometheus --------------------------------------------------------------------------

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"(,|$)')


def unescape(value: str) -> str:
    return re.sub(r'\\(.)', lambda m: {"n": "\n", "\\": "\\", '"': '"'}[m.group(1)], value)


def parse_prometheus(text: str) -> dict:
    """A strict reader of the text format 0.0.4: {(name, ((label, value), ...)): float}.
    Every sample belongs to the family whose HELP and TYPE came just before it, each family
    is announced once, label sets are unique."""
    assert text.endswith("\n")
    samples, announced, family, typed, histogram = {}, set(), None, False, False
    for line in text.splitlines():
        if line.startswith("# HELP "):
            name, _, help_text = line[7:].partition(" ")
            assert name not in announced, f"family {name} announced twice"
            assert help_text, line
            announced.add(name)
            family, typed = name, False
        elif line.startswith("# TYPE "):
            name, _, kind = line[7:].partition(" ")
            assert name == family and not typed, line
            assert kind in ("counter", "gauge", "histogram"), line
            typed, histogram = True, kind == "histogram"
        else:
            m = SAMPLE.match(line)
            assert m, f"not a sample line: {line!r}"
            name, labels_text, value = m.group(1), m.group(3) or "", m.group(4)
            # A histogram's samples are its _bucket (with le), _sum and _count series.
            base = name
            if histogram:
                for suffix in ("_bucket", "_sum", "_count"):
                    if name == family + suffix:
                        base = family
                assert name != family, f"histogram sample without its suffix: {line!r}"
                assert name.endswith("_bucket") == ("le=" in labels_text), line
            assert base == family and typed, f"sample without HELP/TYPE just before: {line!r}"
            labels, pos = [], 0
            while pos < len(labels_text):
                lm = LABEL.match(labels_text, pos)
                assert lm, f"bad labels in {line!r}"
                labels.append((lm.group(1), unescape(lm.group(2))))
                pos = lm.end()
            key = (name, tuple(labels))
            assert key not in samples, f"duplicate sample {line!r}"
            samples[key] = float(value)
    return samples


def get(url: str, method: str = "GET"):
    return urllib.request.urlopen(urllib.request.Request(url, method=method), timeout=10)


def scrape_between_equal_infos(fw):
    """(show info, samples) from a scrape between two equal show info results (the slow
    path may still send an ARP refresh now and then)."""
    def steady():
        before = fw.ctl_json("show", "info")
        with get(fw.url("/metrics")) as res:
            assert res.status == 200
            assert res.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
            samples = parse_prometheus(res.read().decode())
        after = fw.ctl_json("show", "info")
        for info in (before, after):  # what moves while nothing happens
            for key in ("uptime", "main_loop", "memory", "workers"):
                del info[key]
        return (after, samples) if before == after else None
    return wait_until(steady, 10, interval=0.3, what="counters steady around a scrape")


def test_metrics_parse_and_match_show_info(fw):
    info, samples = scrape_between_equal_infos(fw)
    p = info["ports"][0]
    for direction in ("rx", "tx"):
        labels = (("interface", "lan"), ("direction", direction))
        assert samples[("syncwall_interface_packets_total", labels)] == p[f"{direction}_packets"]
        assert samples[("syncwall_interface_bytes_total", labels)] == p[f"{direction}_bytes"]
    for reason, count in info["drops"].items():
        assert samples[("syncwall_drops_total", (("reason", reason),))] == count
    assert samples[("syncwall_drops_total", (("reason", "filter_block"),))] == 3
    assert samples[("syncwall_states", ())] == info["states"]["current"] == 2
    assert samples[("syncwall_states_limit", ())] == info["states"]["limit"]
    mem = fw.ctl_json("show", "info")["memory"]  # set when the table was built
    assert samples[("syncwall_state_table_bytes", ())] == mem["state_table_bytes"] > 0
    assert (samples[("syncwall_state_table_huge_page_bytes", ())]
            == mem["state_table_huge_page_bytes"])
    assert samples[("syncwall_state_inserts_total", ())] == info["states"]["inserts"]
    assert samples[("syncwall_state_removals_total", ())] == info["states"]["removals"]
    assert samples[("syncwall_forwarded_packets_total", ())] == info["counters"]["forwarded"]
    assert samples[("syncwall_punted_packets_total", ())] == info["counters"]["punted"]
    assert samples[("syncwall_pflog_dropped_total", ())] == 0
    # The node name has a quote in it: escaped on the wire, intact once read.
    assert samples[("syncwall_info", (("node", 'obs "1"'), ("hostid", "9")))] == 1
    # CARP and pfsync say they are not running: no families for them.
    for what in ("carp", "sync"):
        if not fw.ctl_json("show", what)["available"]:
            assert not any(name.startswith(f"syncwall_{what}_") for name, _ in samples)


def test_other_paths_are_404_and_other_methods_405(fw):
    with pytest.raises(urllib.error.HTTPError) as e:
        get(fw.url("/"))
    assert e.value.code == 404
    with pytest.raises(urllib.error.HTTPError) as e:
        get(fw.url("/metrics"), method="POST")
    assert e.value.code == 405
    with get(fw.url("/metrics?name[]=x"), method="HEAD") as res:
        assert res.status == 200 and res.read() == b""


def raw_exchange(port: int, data: bytes, timeout: float = 10) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        try:
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
        except OSError:  # the server hung up on a request it refused
            pass
        out = b""
        try:
            while chunk := s.recv(65536):
                out += chunk
        except OSError:
            pass
        return out


def test_garbage_requests_get_400_and_do_not_kill_the_process(fw):
    assert raw_exchange(fw.port, b"\x00\xff garbage \r\n\r\n").startswith(b"HTTP/1.1 400")
    assert raw_exchange(fw.port, b"GET /metrics HTTP/9.9\r\n\r\n").startswith(b"HTTP/1.1 400")
    # A header far over the limit: refused, not buffered.
    # (Closing with unread bytes makes a reset, which may discard the 400 before it is read.)
    big = b"GET /metrics HTTP/1.1\r\nX: " + b"a" * 200_000 + b"\r\n\r\n"
    assert raw_exchange(fw.port, big)[:12] in (b"", b"HTTP/1.1 400")
    # A body over the limit.
    body = b"POST /metrics HTTP/1.1\r\nContent-Length: 100000\r\n\r\n" + b"b" * 100_000
    assert raw_exchange(fw.port, body)[:12] in (b"", b"HTTP/1.1 400")
    # Half a request, then the client goes away.
    raw_exchange(fw.port, b"GET /metr")
    # Many clients at once, some idle, some pipelining two requests.
    idle = [socket.create_connection(("127.0.0.1", fw.port), timeout=10) for _ in range(80)]
    try:
        two = b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\nGET /nothing HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        # The idle ones hold every slot; a new client is served all the same (the one busy
        # longest makes room for it).
        for _ in range(5):
            reply = raw_exchange(fw.port, two)
            assert reply.startswith(b"HTTP/1.1 200") and b"HTTP/1.1 404" in reply, reply[:200]
    finally:
        for s in idle:
            s.close()
    assert fw.proc.poll() is None, fw.output()
    # Slots are free again once those clients are gone.
    def served():
        try:
            with get(fw.url("/metrics")) as res:
                return res.status == 200 and b"syncwall_states 2\n" in res.read()
        except (urllib.error.URLError, ConnectionError):
            return False
    wait_until(served, 10, what="/metrics served again")
    # And the keep-alive pair on a fresh connection: both answered, in order.
    reply = raw_exchange(fw.port, two)
    assert reply.startswith(b"HTTP/1.1 200") and reply.count(b"HTTP/1.1 ") == 2 and b"HTTP/1.1 404" in reply
