"""What the failover tests and the demo share: the stateful ruleset, node configs for the HA
lab, the TCP and UDP streams through the virtual addresses, and a few cluster helpers."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

from halab import HaLab
from netlab import Process, wait_until

HERE = Path(__file__).resolve().parent
STREAM = str(HERE / "stream.py")
PROBE = str(HERE / "probe.py")
PY = "/usr/bin/python3"
# Sub-second CARP: advbase 0, so the interval is advskew/256 s. The master (node 0) has
# advskew 10 (an advert every 39 ms), the backup 30: it declares the master down after
# 3 x 30/256 = 0.35 s of silence.
ADVBASE = 0
MASTER_SKEW, SKEW_STEP = 10, 20
# Bounds, in seconds, after a kill -9 of the master: the backup is master; the largest gap
# of a TCP stream with Linux's default settings (its retransmissions back off: 0.2 s, then
# 0.4 s more, ...); the largest gap of a UDP stream (the outage itself).
TAKEOVER_BOUND = 0.5
TCP_GAP_BOUND = 1.5
UDP_GAP_BOUND = 0.6

# Default block; only connections started from the LAN (flags S/SA) create states.
RULES = """rules:
  - "block all"
  - "pass in on lan inet proto { tcp udp icmp } from 192.0.2.0/24 keep state"
  - "pass out on wan inet keep state"
"""
SYNC_EXTRA = "  bulk_timeout_ms: 1000\n  bulk_max_requests: 4\n"


def node_config(ha: HaLab, i: int, sync: bool = True, rules: str = RULES, **kw) -> dict:
    extra = rules
    if sync:
        extra += "sync:\n  interface: sync\n  interval_ms: 100\n" + SYNC_EXTRA
    # Node i skews 10 + 20 * i: node 1 (30) declares the master down 3 x 30/256 s after its
    # last advert (OpenBSD's timer), node 2 (50) 3 x 50/256 s.
    kw.setdefault("advskew", MASTER_SKEW + SKEW_STEP * i)
    return dict(sync=False, extra=extra, advbase=ADVBASE, **kw)


def last_json(proc: Process) -> dict:
    for line in reversed(proc.output().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            return json.loads(line)
    return {}


class Streams:
    """A TCP stream client -> server and a UDP server-push stream, through the VIPs."""

    # The TCP stream sends 1 kB every 100 ms with Linux's default TCP settings: its largest
    # gap is what an ordinary application sees, the outage plus TCP's backoff.
    def __init__(self, ha: HaLab, rate: int = 10_000, chunk: int = 1000, pps: int = 200):
        lab = ha.lab
        self.sink = lab.spawn("tcp-sink", ha.server, [PY, STREAM, "tcp-sink", "0.0.0.0", "5201"])
        self.sink.wait_for_line('"listening"', 10)
        self.push = lab.spawn("udp-push", ha.server,
                              [PY, STREAM, "udp-push", "0.0.0.0", "5202", "--pps", str(pps)])
        self.push.wait_for_line('"listening"', 10)
        self.source = lab.spawn("tcp-source", ha.client,
                                [PY, STREAM, "tcp-source", ha.SERVER4, "5201", "--rate", str(rate),
                                 "--chunk", str(chunk)])
        line = self.source.wait_for_line('"connected"', 15)
        self.sport = json.loads(line)["sport"]
        self.listen = lab.spawn("udp-listen", ha.client, [PY, STREAM, "udp-listen", ha.SERVER4, "5202"])

    def sink_bytes(self) -> int:
        return last_json(self.sink).get("bytes", 0)

    def udp_received(self) -> int:
        return last_json(self.listen).get("received", 0)

    def progressing(self, timeout: float) -> bool:
        """Both streams move forward within `timeout` seconds."""
        b0, u0 = self.sink_bytes(), self.udp_received()
        try:
            wait_until(lambda: self.sink_bytes() > b0 and self.udp_received() > u0, timeout, 0.1)
            return True
        except TimeoutError:
            return False

    def stop(self) -> dict:
        """Stop the source (it closes cleanly), let the sink see the end, stop the rest."""
        self.source.stop(signal.SIGTERM, timeout=40)
        try:
            self.sink.wait_for_line('"final"', 30)
        finally:
            self.sink.stop(signal.SIGTERM)
        self.listen.stop(signal.SIGTERM)
        self.push.stop(signal.SIGTERM)
        return {"source": last_json(self.source), "sink": last_json(self.sink),
                "udp": last_json(self.listen)}


def states_on(ha: HaLab, i: int, port: int) -> list[dict]:
    return ha.ctl(i, "show", "states", "--port", str(port))["states"]


def drops(ha: HaLab, i: int) -> dict:
    return ha.ctl(i, "show", "info")["drops"]


def start_cluster(ha: HaLab, sync: bool = True) -> None:
    ha.start(0, **node_config(ha, 0, sync))
    ha.start(1, **node_config(ha, 1, sync))
    # A starts demoted until its bulk request is answered; B may preempt it meanwhile.
    ha.wait_settled(0)


def wait_master(ha: HaLab, node: int, timeout: float) -> float:
    """Seconds until `node` is master of both vhids (polled: an upper bound by one
    show carp, some 10 ms)."""
    start = time.monotonic()

    def master_of_both() -> bool:
        carp = ha.ctl(node, "show", "carp", timeout=3)
        return all(v["role"] == "master" for v in carp["vhids"])

    wait_until(master_of_both, timeout, 0.01, f"node {node} master of both vhids")
    return time.monotonic() - start


def carp_counts(ha: HaLab, node: int) -> dict:
    """{"transitions": n, "received": n} summed over node's vhids."""
    vhids = ha.ctl(node, "show", "carp", timeout=3)["vhids"]
    return {"transitions": sum(v["transitions"] for v in vhids),
            "received": sum(v["adverts_received"] for v in vhids)}


def big_ruleset(n: int) -> str:
    """RULES with n more rules that match nothing in the lab (a reload's compile load)."""
    extra = "".join(f'  - "pass in on lan proto tcp from 10.{(k >> 8) & 255}.{k & 255}.0/24 '
                    f'to 203.0.113.{k % 250 + 1} port {1024 + k % 60000} keep state"\n'
                    for k in range(n))
    return RULES + extra


