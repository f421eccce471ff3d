"""Reloads do not leak: each one frees the ruleset it replaces and that ruleset's parsed
configuration once the workers' grace period is over, so RSS and the EAL heap stay flat.

client ── syncwall ── server (netlab.routed_lab) with a 1 000-rule file, reloaded
SYNCWALL_RELOADS times (default 200; the issue's figure is 1 000, about 10 minutes here).
"""

from __future__ import annotations

import json
import os
import time

from netlab import Lab, find_binary, routed_lab, run

RELOADS = int(os.environ.get("SYNCWALL_RELOADS", "200"))
WINDOW = 10


def rules(n: int) -> str:
    lines = ['  - "block return all"', '  - "pass out all"']
    lines += [f'  - "pass in on lan proto tcp from 10.{(k >> 8) & 255}.{k & 255}.0/24 '
              f'to 198.51.100.10 port {1024 + k} keep state"' for k in range(n - 2)]
    return "rules:\n" + "\n".join(lines) + "\n"


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def test_a_thousand_rule_file_reloaded_leaves_rss_and_the_eal_heap_flat():
    with Lab() as lab:
        r = routed_lab(lab)
        sock = lab.tmp / "fw.sock"
        proc = r.start(f"control:\n  socket: {sock}\n" + rules(1000))
        ctl = [str(find_binary("syncwallctl")), "-s", str(sock), "--json"]

        def reload() -> None:
            res = run(ctl + ["reload"], check=False, timeout=60)
            assert res.returncode == 0, res.stdout + res.stderr

        def heap() -> int:
            res = run(ctl + ["show", "info"], check=False, timeout=30)
            assert res.returncode == 0, res.stderr
            return json.loads(res.stdout)["memory"]["eal_heap_bytes"]

        pid = proc.popen.pid

        # RSS after each of WINDOW reloads, and its floor. A single reading swings by about
        # 16 MiB from one reload to the next, up and back down (memory the compile thread
        # used, not yet handed back when it is read); a leak lifts the floor.
        def window() -> tuple[int, list[int]]:
            samples = []
            for _ in range(WINDOW):
                reload()
                samples.append(rss_kib(pid))
            return min(samples), samples

        # Warm up: allocators reach their steady size in the first few reloads.
        for _ in range(20):
            reload()
        (rss0, first), heap0 = window(), heap()
        start = time.monotonic()
        for _ in range(RELOADS - 2 * WINDOW):
            reload()
        (rss1, last), heap1 = window(), heap()
        took = time.monotonic() - start
        print(f"{RELOADS} reloads of 1000 rules in {took:.1f} s: RSS floor {rss0} -> {rss1} KiB "
              f"(first readings {first}, last {last}), EAL heap {heap0} -> {heap1} bytes")
        # Each leaked configuration of this file is about 200 KiB: 200 of them, 40 MiB.
        assert rss1 - rss0 < 8 * 1024, (rss0, rss1)
        assert heap1 == heap0, (heap0, heap1)
