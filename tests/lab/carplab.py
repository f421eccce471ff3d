"""What the CARP lab tests (test_carp.py, test_carp6.py) share: running scapy in a
namespace, reading a node's CARP status, waiting for a master, failure context, and the
CARP header builder that forged adverts are made with."""

from __future__ import annotations

import json
import time

from halab import HaLab
from netlab import Lab

ADVBASE = 1
TAKEOVER_S = 3 * ADVBASE + 1  # what the issue allows between a master's death and a new one

# Python source for scripts that forge adverts: the internet checksum and a vhid's CARP
# header (version 2, type 1, advskew 0, advbase 1, a counter and a digest of filler bytes,
# so that the digest is wrong), with a good or a broken checksum.
CARP_HEADER_BUILDER = """
import struct

def csum(b):
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    s = (s >> 16) + (s & 0xffff)
    s += s >> 16
    return ~s & 0xffff

def carp(vhid, good_sum=True):
    h = bytearray(struct.pack("!BBBBBBH", 0x21, vhid, 0, 7, 0, 1, 0) + b"\\x11" * 8 + b"\\x22" * 20)
    s = csum(bytes(h))
    h[6:8] = struct.pack("!H", s if good_sum else s ^ 0xffff)
    return bytes(h)
"""


def python(lab: Lab, ns: str, script: str, *args: str) -> str:
    return lab.exec(ns, ["/usr/bin/python3", "-c", script, *args], timeout=30).stdout


def carp(ha: HaLab, i: int) -> dict:
    return ha.ctl(i, "show", "carp")


def vhid(ha: HaLab, i: int, n: int) -> dict:
    return next(v for v in carp(ha, i)["vhids"] if v["vhid"] == n)


def port_mac(ha: HaLab, i: int, port: str) -> str:
    line = ha.procs[i].wait_for_line(rf"^syncwall: interface {port} port \d+ mac ", 1)
    return line.split()[-1]


def both_masters(ha: HaLab, node: int, timeout: float) -> float:
    """Wait until `node` is the single master of vhids 1 and 2; return the seconds it took."""
    t0 = time.monotonic()
    for n in (1, 2):
        left = max(0.5, timeout - (time.monotonic() - t0))
        try:
            ha.wait_master(n, node, left)
        except TimeoutError as e:
            raise AssertionError(f"{e}\n{logs(ha)}") from None
    return time.monotonic() - t0


def logs(ha: HaLab) -> str:
    """The nodes' CARP lines, for failure messages."""
    out = []
    for i, proc in sorted(ha.procs.items()):
        lines = [line for line in proc.output().splitlines() if "carp" in line]
        out.append(f"--- {ha.name(i)} ({'running' if proc.running() else 'stopped'}):")
        out.extend(lines[-15:])
        if proc.running():
            try:
                out.append(json.dumps(ha.ctl(i, "show", "carp", timeout=3)))
            except Exception as e:  # a failure message must not fail itself
                out.append(f"show carp: {e}")
    return "\n".join(out)

