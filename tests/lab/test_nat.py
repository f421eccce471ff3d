"""Translated connections survive a failover: the cluster translates the LAN's connections
to the WAN's CARP address (`nat-to (wan)`), and pfsync gives the backup both keys of each
translated state, so that it goes on translating the stream as the master did.

The same two-node lab as test_failover.py (halab.py), with a default block: a mid-stream
packet passes a node only if the node holds the connection's states. The server sees only
the virtual address. Killing the master with SIGKILL must not reset or corrupt the stream;
the same run without pfsync must stop it.
"""

from __future__ import annotations

import signal
import time

from failover import (PY, STREAM, TAKEOVER_BOUND, TCP_GAP_BOUND, Streams, drops, last_json,
                      node_config, states_on, wait_master)
from halab import HaLab, ha_lab
from netlab import Lab, wait_until

NAT_RULES = """rules:
  - "block all"
  - "pass in on lan inet proto { tcp udp icmp } from 192.0.2.0/24 keep state"
  - "pass out on wan inet keep state"
  - "match out on wan inet from 192.0.2.0/24 to any nat-to (wan)"
  - "pass in on wan inet proto tcp from any to 198.51.100.254 port 8080 rdr-to 192.0.2.10 port 5301"
  - "pass out on lan inet proto tcp from any to 192.0.2.10 port 5301"
"""


def start(ha: HaLab, sync: bool) -> None:
    ha.start(0, **node_config(ha, 0, sync, rules=NAT_RULES))
    ha.start(1, **node_config(ha, 1, sync, rules=NAT_RULES))
    ha.wait_settled(0)


def translated(states: list[dict]) -> list[dict]:
    return [s for s in states if "nat" in s]


def test_a_translated_stream_survives_kill_9_of_the_master():
    with Lab() as lab:
        ha = ha_lab(lab, nodes=2)
        start(ha, sync=True)
        streams = Streams(ha)
        assert streams.progressing(5)
        # The server sees the WAN's virtual address, never the client's.
        assert last_json(streams.sink).get("peer") == HaLab.VIP_WAN
        # A's outbound state is translated to the virtual address; B holds it with both keys.
        on_a = translated(states_on(ha, 0, streams.sport))
        assert len(on_a) == 1 and on_a[0]["nat"]["addr"][1] == HaLab.VIP_WAN, on_a
        wait_until(lambda: len(translated(states_on(ha, 1, streams.sport))) == 1, 5, 0.1,
                   "the translated state on B")
        on_b = translated(states_on(ha, 1, streams.sport))
        assert on_b[0]["id"] == on_a[0]["id"] and on_b[0]["nat"] == on_a[0]["nat"], (on_a, on_b)
        assert len(states_on(ha, 1, streams.sport)) == 2

        ha.stop(0, signal.SIGKILL)
        takeover = wait_master(ha, 1, TAKEOVER_BOUND + 2)
        print(f"takeover after kill -9: {takeover:.3f} s")
        assert streams.progressing(TCP_GAP_BOUND + 2), "the translated stream stopped"
        time.sleep(2)
        sink, src = last_json(streams.sink), last_json(streams.source)
        print(f"largest TCP gap through nat-to across the failover: {sink['max_gap']:.3f} s")
        assert not sink.get("reset") and not src.get("reset")
        assert sink["bad_bytes"] == 0
        assert sink["max_gap"] <= TCP_GAP_BOUND, sink
        assert sink.get("peer") == HaLab.VIP_WAN
        result = streams.stop()
        assert not result["sink"].get("reset") and result["sink"]["bad_bytes"] == 0


def test_without_sync_the_translated_stream_dies():
    with Lab() as lab:
        ha = ha_lab(lab, nodes=2)
        start(ha, sync=False)
        streams = Streams(ha)
        assert streams.progressing(5)
        assert last_json(streams.sink).get("peer") == HaLab.VIP_WAN
        assert states_on(ha, 1, streams.sport) == []
        ha.stop(0, signal.SIGKILL)
        wait_master(ha, 1, TAKEOVER_BOUND + 2)
        time.sleep(1.5)
        b0 = streams.sink_bytes()
        time.sleep(TCP_GAP_BOUND + 2)
        assert streams.sink_bytes() == b0, "the stream went on without the translated state"
        assert drops(ha, 1)["filter_block"] > 0


def test_a_port_forwarded_by_rdr_to_reaches_the_inside_host_and_survives_failover():
    """The server connects to the WAN's virtual address, port 8080; rdr-to forwards it to
    the client's port 5301, which sees the server's own address. The connection's inbound
    state is translated (wire key: the virtual address; stack key: the client), and it goes
    on through B after kill -9 of A."""
    with Lab() as lab:
        ha = ha_lab(lab, nodes=2)
        start(ha, sync=True)
        sink = lab.spawn("rdr-sink", ha.client, [PY, STREAM, "tcp-sink", "0.0.0.0", "5301"])
        sink.wait_for_line('"listening"', 10)
        source = lab.spawn("rdr-source", ha.server,
                           [PY, STREAM, "tcp-source", HaLab.VIP_WAN, "8080", "--rate", "10000",
                            "--chunk", "1000"])
        source.wait_for_line('"connected"', 15)
        wait_until(lambda: last_json(sink).get("bytes", 0) > 0, 5, 0.1, "data through rdr-to")
        assert last_json(sink).get("peer") == HaLab.SERVER4
        forwarded = translated(states_on(ha, 0, 8080))
        assert len(forwarded) == 1 and forwarded[0]["direction"] == "in", forwarded
        assert forwarded[0]["nat"]["addr"][1] == HaLab.CLIENT4
        assert forwarded[0]["nat"]["port"][1] == 5301
        wait_until(lambda: len(translated(states_on(ha, 1, 8080))) == 1, 5, 0.1,
                   "the forwarded connection's state on B")

        ha.stop(0, signal.SIGKILL)
        wait_master(ha, 1, TAKEOVER_BOUND + 2)
        before = last_json(sink).get("bytes", 0)
        wait_until(lambda: last_json(sink).get("bytes", 0) > before, TCP_GAP_BOUND + 2, 0.1,
                   "the forwarded connection moving through B")
        time.sleep(1)
        got = last_json(sink)
        print(f"largest gap of the rdr-to connection across the failover: {got['max_gap']:.3f} s")
        assert not got.get("reset") and got["bad_bytes"] == 0
        assert got["max_gap"] <= TCP_GAP_BOUND, got
        source.stop(signal.SIGTERM, timeout=20)
        sink.stop(signal.SIGTERM)
