"""The YAML of the single-process pcap tests: one syncwall on net_pcap ports, two lcores
that share both CPUs, adaptive idle, a small pool. Each test gives what is its own."""

import os
from pathlib import Path

# Every EAL file prefix handed out in this process: conftest.py removes their runtime
# directories when the session ends.
PREFIXES: set[str] = set()


def pcap_config(*, name: str, prefix: str, control: dict, interfaces: dict, rules=(),
                burst: int | None = None, hostid: int = 9, extra: str = "") -> str:
    """`name` is YAML as written (quote it yourself if needed); `prefix` the EAL file prefix
    (made unique per process); `control` and each interface a dict of YAML scalars;
    `interfaces` maps a name to its dict; `extra` is appended as it is (routes, limits)."""
    def inline(d: dict) -> str:
        return ", ".join(f"{k}: {v}" for k, v in d.items())

    PREFIXES.add(f"{prefix}-{os.getpid()}")
    lines = [
        f"node: {{ name: {name}, hostid: {hostid} }}",
        "dpdk:",
        f'  eal_args: ["--no-huge", "--no-pci", "-m", "256", "--file-prefix", "{prefix}-{os.getpid()}",',
        '             "--lcores", "0@(0-1),1@(0-1)", "--log-level", "lib.eal:error"]',
        "  mbufs: 2047",
        "  mbuf_cache: 64",
    ]
    if burst is not None:
        lines.append(f"  burst: {burst}")
    lines += ["lcores: { main: 0, workers: [1], idle: adaptive }",
              f"control: {{ {inline(control)} }}",
              "interfaces:"]
    for iface, fields in interfaces.items():
        lines.append(f"  {iface}:")
        lines += [f"    {k}: {v}" for k, v in fields.items()]
    if rules:
        lines.append("rules:")
        lines += [f'  - "{r}"' for r in rules]
    return "\n".join(lines) + "\n" + extra


def one_port_lan(tmp: Path, mac: str) -> dict:
    """Router on a stick: port `lan` reads in.pcap and writes out.pcap, with an address in
    the client's net (192.0.2.0/24) and one in the server's (198.51.100.0/24)."""
    return {"lan": {"devargs": f'"net_pcap0,rx_pcap={tmp}/in.pcap,tx_pcap={tmp}/out.pcap"',
                    "addresses": "[192.0.2.1/24, 198.51.100.1/24]",
                    "mac": f'"{mac}"'}}
