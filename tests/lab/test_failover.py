"""The product's promise, end to end: a connection through the master survives killing it.

Two (or three) syncwall nodes with CARP and pfsync between a client and a server (halab.py).
The ruleset is stateful with a default block, so that a TCP packet in the middle of a stream
passes a node only if that node holds the connection's state: B can carry the stream after
A dies only because pfsync gave it the state (the same test with sync off proves it).
"""

from __future__ import annotations

import signal
import time

import pytest

from failover import (PROBE, PY, TAKEOVER_BOUND, Streams, drops, last_json, node_config,
                      start_cluster, states_on, wait_master)
from halab import HaLab, ha_lab
from netlab import Lab, wait_until


@pytest.fixture(scope="module")
def cluster():
    with Lab() as lab:
        ha = ha_lab(lab, nodes=2)
        lab.spawn("echo", ha.server, [PY, PROBE, "serve", "tcp", "0.0.0.0", "5001"])
        start_cluster(ha)
        streams = Streams(ha)
        yield ha, streams


def test_failover_under_live_traffic_loses_nothing(cluster):
    ha, streams = cluster
    assert streams.progressing(5)
    # B holds the stream's states (one per interface crossed) before A dies.
    wait_until(lambda: len(states_on(ha, 1, streams.sport)) == 2, 5, 0.1, "the stream's states on B")
    assert {s["id"] for s in states_on(ha, 1, streams.sport)} == \
           {s["id"] for s in states_on(ha, 0, streams.sport)}
    ha.stop(0, signal.SIGKILL)
    takeover = wait_master(ha, 1, TAKEOVER_BOUND + 2)
    assert takeover <= TAKEOVER_BOUND
    assert streams.progressing(TAKEOVER_BOUND + 2), "the streams stopped after the failover"
    time.sleep(2)
    sink, src, udp = last_json(streams.sink), last_json(streams.source), last_json(streams.listen)
    assert not sink.get("reset") and not src.get("reset")
    assert sink["bad_bytes"] == 0
    assert sink["max_gap"] <= TAKEOVER_BOUND, sink
    assert udp["max_gap"] <= TAKEOVER_BOUND, udp
    # B carries the connection with the state it got from A (same creator and id).
    carried = states_on(ha, 1, streams.sport)
    assert carried and all(s["creatorid"] == 0x0a000001 for s in carried)


def test_window_fidelity_after_failover(cluster):
    """On the new master, data far outside the synced TCP window is dropped; in-window data
    passes. The connection was made through A before the failover test killed it."""
    ha, _ = cluster
    assert ha.running(1) and not ha.running(0)
    # A connection opened now goes through B; for fidelity we need one B learnt from A:
    # the stream's states qualify (A created them), and so does any state with A's creator.
    st = [s for s in ha.ctl(1, "show", "states", "--port", "5201")["states"]
          if s["direction"] == "in"][0]
    assert st["creatorid"] == 0x0a000001
    sport = st["port"][0]
    seqlo, seqhi = st["src"]["seqlo"], st["src"]["seqhi"]
    ack = st["dst"]["seqlo"]
    before = drops(ha, 1).get("filter_state_mismatch", 0)
    far = (seqhi + 50_000_000) % 2**32
    inject = (f"from scapy.all import IP, TCP, Raw, send; "
              f"send(IP(src='{ha.CLIENT4}', dst='{ha.SERVER4}')/TCP(sport={sport}, dport=5201, "
              f"flags='A', seq={far}, ack={ack}, window=1000)/Raw(b'zz'), verbose=False)")
    ha.lab.exec(ha.client, [PY, "-c", inject])
    wait_until(lambda: drops(ha, 1).get("filter_state_mismatch", 0) > before, 5, 0.1,
               "the out-of-window segment dropped by B")
    # The live stream itself keeps passing: in-window data is accepted by the same state.
    _, streams = cluster
    assert streams.progressing(3)
    assert drops(ha, 1).get("filter_state_mismatch", 0) - before < 5


def test_rejoin_bulk_update_then_preempt_without_breaking_the_stream(cluster):
    ha, streams = cluster
    ha.start(0, **node_config(ha, 0))
    # A stays backup until its bulk update is done; then, with preempt, takes both vhids.
    saw_pending_backup = False
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        roles = {v: ha.roles(v).get(0) for v in (ha.VHID_LAN, ha.VHID_WAN)}
        bulk = ha.ctl(0, "show", "sync")["bulk"]["status"]
        if bulk in ("requested", "receiving"):
            assert all(r != "master" for r in roles.values()), (roles, bulk)
            saw_pending_backup = True
        if all(r == "master" for r in roles.values()):
            assert bulk == "done"
            break
        time.sleep(0.05)
    else:
        raise TimeoutError("A did not take the master role back")
    assert ha.ctl(0, "show", "sync")["bulk"]["received_states"] >= 2
    assert len(states_on(ha, 0, streams.sport)) == 2
    assert streams.progressing(TAKEOVER_BOUND + 2)
    time.sleep(2)
    final = streams.stop()
    sink, src, udp = final["sink"], final["source"], final["udp"]
    assert not src["reset"] and not sink["reset"], final
    assert sink["eof"] and sink["bytes"] == src["bytes"] and sink["bad_bytes"] == 0, final
    assert sink["max_gap"] <= TAKEOVER_BOUND, final
    assert udp["max_gap"] <= TAKEOVER_BOUND and udp["received"] > 0, final
    # saw_pending_backup is informative: the bulk update can finish before the first poll.
    print("A rejoined: bulk pending seen as backup:", saw_pending_backup)


def test_without_sync_the_stream_dies():
    """The discriminating run: no pfsync, same failover; B has no state for the stream, so
    the default block drops it and it makes no progress."""
    with Lab() as lab:
        ha = ha_lab(lab, nodes=2)
        start_cluster(ha, sync=False)
        streams = Streams(ha)
        assert streams.progressing(5)
        assert states_on(ha, 1, streams.sport) == []
        ha.stop(0, signal.SIGKILL)
        wait_master(ha, 1, TAKEOVER_BOUND + 2)
        b0 = streams.sink_bytes()
        time.sleep(TAKEOVER_BOUND + 2)
        assert streams.sink_bytes() == b0, "the stream went on without synced state"
        assert drops(ha, 1)["filter_block"] > 0  # mid-stream packets hit "block all"


def test_three_nodes_every_state_reaches_both_others():
    with Lab() as lab:
        ha = ha_lab(lab, nodes=3)
        for i in range(3):
            ha.start(i, **node_config(ha, i))
        assert ha.wait_single_master(ha.VHID_LAN, timeout=20) == 0
        lab.spawn("echo", ha.server, [PY, PROBE, "serve", "tcp", "0.0.0.0", "5001"])
        # The echo server may still be starting: a refusal is retried, a timeout is not.
        out = wait_until(lambda: (o := lab.exec(ha.client, [PY, PROBE, "tcp", ha.SERVER4, "5001",
                                                            "5"]).stdout) and
                         not o.startswith("refused") and o, 10, 0.2, "a TCP connection")
        assert out.startswith("connected"), out
        ids = {s["id"] for s in states_on(ha, 0, 5001)}
        assert len(ids) >= 2  # refused attempts while the echo server started count too
        for i in (1, 2):
            wait_until(lambda: {s["id"] for s in states_on(ha, i, 5001)} == ids, 5, 0.1,
                       f"A's states on node {i}")
