#!/usr/bin/env python3
"""syncwall's main demo: a two-node cluster carries open connections through the death of
its master, with no reset and no lost byte.

Run as root (scripts/demo.sh installs and builds first). Everything it creates (network
namespaces, veths, bridges, processes) is removed on exit, also on Ctrl-C or a failure.
Exit status 0 when every promise held, 1 otherwise.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from failover import (ADVBASE, MASTER_SKEW, RULES, SKEW_STEP, TAKEOVER_BOUND,  # noqa: E402
                      TCP_GAP_BOUND, UDP_GAP_BOUND, Streams, last_json, node_config, states_on)
from halab import HaLab, ha_lab  # noqa: E402
from netlab import Lab, find_binary, wait_until  # noqa: E402

LEGEND = f"""
  syncwall HA demo: two firewalls, one virtual gateway per segment, pfsync between them

    client 192.0.2.10 ── LAN ──┬── A (192.0.2.2)  ──┬── WAN ── server 198.51.100.10
      gateway 192.0.2.254      └── B (192.0.2.3)  ──┘     gateway 198.51.100.254
      (CARP vhid 1)                A ══ sync ══ B          (CARP vhid 2)

  A has advskew {MASTER_SKEW} and is the preferred master; B (advskew {MASTER_SKEW + SKEW_STEP}) is the backup.
  The ruleset blocks by default: a packet in the middle of a TCP connection passes a node
  only if that node holds the connection's state. B can carry A's connections only because
  pfsync gave it their states.

  rules:{"".join(f"{chr(10)}    {l.strip()[3:-1]}" for l in RULES.splitlines() if l.strip().startswith("- "))}
  advbase {ADVBASE}: A advertises every {MASTER_SKEW}/256 s ({MASTER_SKEW * 1000 / 256:.0f} ms); B declares it dead
  after 3 x {MASTER_SKEW + SKEW_STEP}/256 s ({3 * (MASTER_SKEW + SKEW_STEP) * 1000 / 256:.0f} ms) of silence.
  The TCP stream keeps Linux's default settings: what an ordinary application sees.
"""


def say(text: str = "") -> None:
    print(text, flush=True)


def step(text: str) -> None:
    say(f"\n== {text}")


def ctl_text(ha: HaLab, i: int, *args: str) -> str:
    res = subprocess.run([str(find_binary("syncwallctl")), "--socket", ha.socket(i), *args],
                         capture_output=True, text=True, timeout=10)
    return (res.stdout or res.stderr).rstrip()


def roles_line(ha: HaLab) -> str:
    out = []
    for i, name in ((0, "A"), (1, "B")):
        if not ha.running(i):
            out.append(f"{name}: down")
            continue
        r = {v: ha.roles(v).get(i, "?") for v in (ha.VHID_LAN, ha.VHID_WAN)}
        out.append(f"{name}: lan {r[ha.VHID_LAN].upper()}, wan {r[ha.VHID_WAN].upper()}")
    return "   ".join(out)


def show_states(ha: HaLab, streams: Streams) -> None:
    for i, name in ((0, "A"), (1, "B")):
        if not ha.running(i):
            continue
        say(f"  -- {name}: syncwallctl show states (the two streams)")
        for port in (streams.sport, 5202):
            text = ctl_text(ha, i, "show", "states", "--port", str(port))
            for line in text.splitlines():
                say("     " + line)


def progress_wait(what: str, predicate, timeout: float, streams: Streams) -> float:
    """Wait for `predicate`, printing a progress line; returns the seconds it took."""
    start = time.monotonic()
    while True:
        elapsed = time.monotonic() - start
        done = predicate()
        sink = last_json(streams.sink)
        sys.stdout.write(f"\r   {what}: {elapsed:4.1f} s   stream: {sink.get('bytes', 0):>9} bytes "
                         f"received, {sink.get('since_last', 0):4.1f} s since the last ")
        sys.stdout.flush()
        if done:
            sys.stdout.write("\n")
            return elapsed
        if elapsed > timeout:
            sys.stdout.write("\n")
            raise TimeoutError(f"{what}: not within {timeout} s")
        time.sleep(0.02)


def main() -> int:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(130))
    say(LEGEND)
    verdicts: list[tuple[str, bool]] = []
    with Lab() as lab:
        step("building the lab and starting A and B ...")
        ha = ha_lab(lab, nodes=2)
        ha.start(0, **node_config(ha, 0))
        ha.start(1, **node_config(ha, 1))
        ha.wait_settled(0)
        say("   " + roles_line(ha))

        step("opening a TCP stream (client -> server, 1 kB every 100 ms) and a UDP server push "
             "(200 datagrams/s)")
        streams = Streams(ha)
        wait_until(lambda: len(states_on(ha, 1, streams.sport)) == 2, 10, 0.1, "states on B")
        time.sleep(1)
        say("   both nodes hold the same states (same creator id and state id; B's are 'peer'):")
        show_states(ha, streams)
        ids_a = {s["id"] for s in states_on(ha, 0, streams.sport)}
        ids_b = {s["id"] for s in states_on(ha, 1, streams.sport)}
        verdicts.append(("B holds A's states before the failure", ids_a == ids_b and len(ids_a) == 2))

        step("killing A, the master, with SIGKILL (no goodbye)")
        before = last_json(streams.sink).get("bytes", 0)
        ha.stop(0, signal.SIGKILL)
        takeover = progress_wait("waiting for B to take over",
                                 lambda: all(ha.roles(v).get(1) == "master"
                                             for v in (ha.VHID_LAN, ha.VHID_WAN)),
                                 TAKEOVER_BOUND + 5, streams)
        resumed = progress_wait("waiting for the stream to resume",
                                lambda: last_json(streams.sink).get("bytes", 0) > before + 2000,
                                10, streams)
        time.sleep(2)
        say("   " + roles_line(ha))
        say(f"   time to takeover: {takeover:.3f} s (bound: {TAKEOVER_BOUND} s)")
        sink_now, udp_now = last_json(streams.sink), last_json(streams.listen)
        say(f"   the gap so far: TCP {sink_now.get('max_gap', 0):.3f} s, "
            f"UDP {udp_now.get('max_gap', 0):.3f} s")
        say("   B now carries the connections with the states A made:")
        show_states(ha, streams)
        verdicts.append((f"takeover within {TAKEOVER_BOUND} s", takeover <= TAKEOVER_BOUND))

        step("restarting A with an empty state table")
        ha.start(0, **node_config(ha, 0))
        bulk = ha.ctl(0, "show", "sync")["bulk"]
        say(f"   A asks its peer for every state (bulk update): status {bulk['status']}")
        progress_wait("waiting for A's bulk update and its preempting B",
                      lambda: all(ha.roles(v).get(0) == "master" for v in (ha.VHID_LAN, ha.VHID_WAN)),
                      30, streams)
        bulk = ha.ctl(0, "show", "sync")["bulk"]
        say(f"   A's bulk update: {bulk['status']}, {bulk['received_states']} states received; "
            f"A took the master role back")
        say("   " + roles_line(ha))
        time.sleep(2)

        step("closing the streams and counting")
        final = streams.stop()
        sink, src, udp = final["sink"], final["source"], final["udp"]
        lost = src["bytes"] - sink["bytes"]
        say(f"   TCP: {src['bytes']} bytes sent, {sink['bytes']} received in order "
            f"({sink['bad_bytes']} corrupt), lost {lost}")
        say(f"   TCP: resets seen: {int(bool(src['reset'])) + int(bool(sink['reset']))}, "
            f"largest gap {sink['max_gap']:.3f} s (the stream resumed {resumed:.2f} s after the "
            f"takeover was noticed)")
        say(f"   UDP: {udp['received']} of {udp['highest']} datagrams arrived, "
            f"largest gap {udp['max_gap']:.3f} s")
        say(f"   the gap: TCP {sink['max_gap']:.3f} s, UDP {udp['max_gap']:.3f} s")
        verdicts += [
            ("no TCP byte lost", lost == 0 and sink["eof"] and sink["bad_bytes"] == 0),
            ("no reset", not src["reset"] and not sink["reset"]),
            (f"largest TCP gap within {TCP_GAP_BOUND} s", sink["max_gap"] <= TCP_GAP_BOUND),
            (f"UDP kept flowing, largest gap within {UDP_GAP_BOUND} s",
             udp["received"] > 0 and udp["max_gap"] <= UDP_GAP_BOUND),
        ]

    step("verdict")
    for what, ok in verdicts:
        say(f"   [{'PASS' if ok else 'FAIL'}] {what}")
    ok = all(v for _, v in verdicts)
    say("\n   " + ("every promise held: the cluster lost nothing." if ok else "SOMETHING FAILED."))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
