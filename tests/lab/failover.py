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
ADVBASE = 1
TAKEOVER_BOUND = 3 * ADVBASE + 1  # seconds: the bound on the stream's largest gap

# Default block; only connections started from the LAN (flags S/SA) create states.
RULES = """rules:
  - "block all"
  - "pass in on lan inet proto { tcp udp icmp } from 192.0.2.0/24 keep state"
  - "pass out on wan inet keep state"
"""
SYNC_EXTRA = "  bulk_timeout_ms: 1000\n  bulk_max_requests: 4\n"


def node_config(ha: HaLab, i: int, sync: bool = True, **kw) -> dict:
    extra = RULES
    if sync:
        extra += "sync:\n  interface: sync\n  interval_ms: 100\n" + SYNC_EXTRA
    # Backups skew 10 * i: node 1 declares the master down 3 * advbase + 10/256 s after
    # its last advert (OpenBSD's timer), well inside the bound.
    kw.setdefault("advskew", 10 * i)
    return dict(sync=False, extra=extra, advbase=ADVBASE, **kw)


def last_json(proc: Process) -> dict:
    for line in reversed(proc.output().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            return json.loads(line)
    return {}


class Streams:
    """A TCP stream client -> server and a UDP server-push stream, through the VIPs."""

    # The TCP stream sends 1 kB every 100 ms with thin-stream linear timeouts (stream.py):
    # few segments in flight, and retransmissions every RTO while the path is down, so that
    # its largest gap is the firewall's outage and not TCP's exponential backoff.
    def __init__(self, ha: HaLab, rate: int = 10_000, chunk: int = 1000, pps: int = 200):
        lab = ha.lab
        self.sink = lab.spawn("tcp-sink", ha.server, [PY, STREAM, "tcp-sink", "0.0.0.0", "5201"])
        self.sink.wait_for_line('"listening"', 10)
        self.push = lab.spawn("udp-push", ha.server,
                              [PY, STREAM, "udp-push", "0.0.0.0", "5202", "--pps", str(pps)])
        self.push.wait_for_line('"listening"', 10)
        self.source = lab.spawn("tcp-source", ha.client,
                                [PY, STREAM, "tcp-source", ha.SERVER4, "5201", "--rate", str(rate),
                                 "--chunk", str(chunk), "--thin"])
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
    for vhid in (ha.VHID_LAN, ha.VHID_WAN):
        assert ha.wait_single_master(vhid, timeout=20) == 0


def wait_master(ha: HaLab, node: int, timeout: float) -> float:
    """Seconds until `node` is master of both vhids."""
    start = time.monotonic()
    wait_until(lambda: all(ha.roles(v).get(node) == "master" for v in (ha.VHID_LAN, ha.VHID_WAN)),
               timeout, 0.05, f"node {node} master of both vhids")
    return time.monotonic() - start


