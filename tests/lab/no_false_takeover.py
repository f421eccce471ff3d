#!/usr/bin/env python3
"""No false takeover at sub-second CARP while the master is busy.

Two nodes at advbase 0 (advskew 10 on the master A, 30 on the backup B: B takes over after
352 ms without an advert). For --minutes, A reloads a 10 000-rule file every --reload-every
seconds, answers `show states` on about --states states (made by a SYN burst from the
client, refreshed before each query), and every --rejoin-every seconds B is restarted, so
that A sends it a bulk update of the whole table. At the end it prints the role changes
(A must have none, B must never have been master), A's longest main-loop pass and its
histogram. Exit status 0 when there was no false takeover.

  tests/lab/no_false_takeover.py [--minutes 10] [--states 100000] [--reload-every 30]
                                 [--rejoin-every 120] [--states-limit N]

Run as root, under `flock /tmp/syncwall-lab.lock`, with SYNCWALL_BUILD pointing at a build.
`--states-limit N` asks `show states --limit N` instead of the whole table.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from failover import PY, big_ruleset, carp_counts, node_config  # noqa: E402
from halab import HaLab, ha_lab  # noqa: E402
from netlab import Lab  # noqa: E402

HERE = Path(__file__).resolve().parent
SYN_BURST = str(HERE / "syn_burst.py")


def run(minutes: float, states: int, reload_every: float, rejoin_every: float,
        states_limit: int | None, say=print) -> dict:
    """The scenario; returns {"a_transitions", "b_became_master", "longest_ms", ...}."""
    with Lab() as lab:
        ha = ha_lab(lab, nodes=2)
        limits = f"limits:\n  states: {max(2 * states, 10_000)}\n"

        def cfg_of(i: int, **kw) -> dict:
            c = node_config(ha, i, **kw)
            c["extra"] += limits
            return c

        a_cfg, b_cfg = cfg_of(0), cfg_of(1)
        ha.start(0, **a_cfg)
        ha.start(1, **b_cfg)
        # A starts demoted until its own bulk request is answered: the roles settle in the
        # first second or two. Count from a settled cluster.
        ha.wait_settled(0, hold=3)
        big = ha.config(0, **cfg_of(0, rules=big_ruleset(10_000)))
        small = ha.config(0, **a_cfg)
        cfg = lab.tmp / "fwa.yaml"
        a0 = carp_counts(ha, 0)
        b_master = 0
        events = {"reloads": 0, "show_states": 0, "rejoins": 0}
        start = time.monotonic()
        end = start + minutes * 60
        next_reload = start + 1
        next_rejoin = start + rejoin_every / 2
        use_big = True
        # carp log lines of each node already seen (the start-up ones are not reported)
        seen = {i: sum("syncwall: carp vhid" in l for l in ha.procs[i].output().splitlines())
                for i in (0, 1)}
        last_event = "start"
        takeovers = [0]  # B's moves to MASTER, from its log

        def report_carp_lines() -> None:
            # Each role change with when it happened and what the run was doing then.
            for i in (0, 1):
                proc = ha.procs.get(i)
                if proc is None:
                    continue
                lines = [l for l in proc.output().splitlines() if "syncwall: carp vhid" in l]
                for line in lines[seen[i]:]:
                    if i == 1 and "-> MASTER" in line:
                        takeovers[0] += 1
                    if "INIT -> BACKUP" not in line:
                        say(f"  {time.monotonic() - start:7.1f} s, after {last_event}: "
                            f"{'AB'[i]}: {line}")
                seen[i] = len(lines)

        while time.monotonic() < end:
            report_carp_lines()
            now = time.monotonic()
            if now >= next_reload:
                last_event = "the SYN burst"
                lab.exec(ha.client, [PY, SYN_BURST, ha.CLIENT4, ha.SERVER4, "5300", str(states)],
                         timeout=120)
                report_carp_lines()
                cfg.write_text(big if use_big else small)
                use_big = not use_big
                last_event = "a reload"
                ha.ctl(0, "reload", timeout=120)
                events["reloads"] += 1
                report_carp_lines()
                last_event = "show states"
                args = ["show", "states"] + (["--limit", str(states_limit)] if states_limit else [])
                ha.ctl(0, *args, timeout=120)
                events["show_states"] += 1
                next_reload = now + reload_every
            if now >= next_rejoin:
                report_carp_lines()
                ha.stop(1)
                seen[1] = 0
                last_event = "B's restart (a bulk update)"
                ha.start(1, **b_cfg)  # asks A for a bulk update of every state
                events["rejoins"] += 1
                next_rejoin = now + rejoin_every
            roles = ha.roles(ha.VHID_LAN)
            if roles.get(1) == "master":
                b_master += 1
            time.sleep(0.2)
        report_carp_lines()
        for i in (0, 1):
            drops = {k: v for k, v in ha.ctl(i, "show", "info")["drops"].items() if v}
            say(f"  {'AB'[i]}'s drops: {drops}")
        a1 = carp_counts(ha, 0)
        loop = ha.ctl(0, "show", "info")["main_loop"]
        b_loop = ha.ctl(1, "show", "info")["main_loop"]
        say(f"  B's longest main-loop pass since its last start {b_loop['longest_ms']:.1f} ms")
        result = {"a_transitions": a1["transitions"] - a0["transitions"],
                  "b_seen_master": b_master + takeovers[0], "longest_ms": loop["longest_ms"],
                  "b_longest_ms": b_loop["longest_ms"],
                  "buckets": loop["buckets"], **events,
                  "a_adverts_received_from_b": a1["received"] - a0["received"]}
        say(f"{minutes} min: {events['reloads']} reloads, {events['show_states']} show states, "
            f"{events['rejoins']} rejoins; A's role changes {result['a_transitions']}, "
            f"B seen master {b_master} times; A's longest main-loop pass "
            f"{loop['longest_ms']:.1f} ms")
        return result


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--minutes", type=float, default=10)
    p.add_argument("--states", type=int, default=100_000)
    p.add_argument("--reload-every", type=float, default=30)
    p.add_argument("--rejoin-every", type=float, default=120)
    p.add_argument("--states-limit", type=int, default=None)
    a = p.parse_args()
    r = run(a.minutes, a.states, a.reload_every, a.rejoin_every, a.states_limit)
    for b in r["buckets"]:
        print(f"   passes <= {b['le_ms']} ms: {b['count']}")
    ok = r["a_transitions"] == 0 and r["b_seen_master"] == 0
    print("no false takeover" if ok else "FALSE TAKEOVER")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
