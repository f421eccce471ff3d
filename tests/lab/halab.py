"""The HA lab: two or three syncwall nodes between a client and a server, in namespaces.

    client ── [LAN bridge] ──┬── fwa ──┬── [WAN bridge] ── server
                             ├── fwb ──┤
                             └── fwc ──┘   (N = 2 or 3)
                      fwa, fwb, fwc ══ [SYNC bridge] (pfsync)

A switch namespace holds the three Linux bridges (lan, wan, sync). Each firewall namespace
has three veths named `lan`, `wan` and `sync` into them; syncwall owns them through
net_af_packet. The client (192.0.2.10/24) and the server (198.51.100.10/24) use the CARP
virtual addresses as gateways: 192.0.2.254 (vhid 1 on lan) and 198.51.100.254 (vhid 2 on
wan). Node i has the real addresses 192.0.2.{2+i}, 198.51.100.{2+i} and 203.0.113.{2+i}.
IPv4 only by default: IPv6 is off in every namespace (other tests rely on that).

ha_lab(lab, ipv6=True) adds IPv6 where CARP over IPv6 needs it: the client, the server and
hosts added later keep IPv6 on, with 2001:db8:1::10/64 and 2001:db8:2::10/64 routed via the
IPv6 virtual addresses 2001:db8:1::fe (vhid 1) and 2001:db8:2::fe (vhid 2); node i gets
2001:db8:1::{2+i}/64 and 2001:db8:2::{2+i}/64 on lan and wan (syncwall's, not the kernel's:
the firewall namespaces keep IPv6 off). config(i, vips="v6") puts only the IPv6 virtual
addresses on the vhids, vips="both" both families.

    with Lab() as lab:
        ha = ha_lab(lab, nodes=2)
        ha.start(0); ha.start(1)
        assert ha.wait_single_master(1, timeout=10) == 0
        ha.ctl(1, "show", "carp")["vhids"][0]["role"]   # "backup"
        ha.stop(0, signal.SIGKILL)

Everything (namespaces, veths, processes, files) is the Lab's and goes with it.
"""

from __future__ import annotations

import json
import signal
import time
from dataclasses import dataclass, field

from netlab import Lab, Process, eal_args, find_binary, run

NAMES = ("fwa", "fwb", "fwc")
SEGMENTS = ("lan", "wan", "sync")


@dataclass
class HaLab:
    lab: Lab
    nodes: int
    switch: str
    client: str
    server: str
    fw: list[str]                                   # firewall namespaces, node order
    procs: dict[int, Process] = field(default_factory=dict)
    ipv6: bool = False                              # ha_lab(..., ipv6=True)

    CLIENT4, SERVER4 = "192.0.2.10", "198.51.100.10"
    VIP_LAN, VIP_WAN = "192.0.2.254", "198.51.100.254"
    CLIENT6, SERVER6 = "2001:db8:1::10", "2001:db8:2::10"
    VIP6_LAN, VIP6_WAN = "2001:db8:1::fe", "2001:db8:2::fe"
    VHID_LAN, VHID_WAN = 1, 2
    PASS = "syncwall-lab"
    BRIDGES = {"lan": "br-lan", "wan": "br-wan", "sync": "br-sync"}

    # --- addresses ----------------------------------------------------------------------
    @staticmethod
    def lan_addr(i: int) -> str:
        return f"192.0.2.{2 + i}"

    @staticmethod
    def wan_addr(i: int) -> str:
        return f"198.51.100.{2 + i}"

    @staticmethod
    def lan6_addr(i: int) -> str:
        return f"2001:db8:1::{2 + i}"

    @staticmethod
    def wan6_addr(i: int) -> str:
        return f"2001:db8:2::{2 + i}"

    @staticmethod
    def sync_addr(i: int) -> str:
        return f"203.0.113.{2 + i}"

    @staticmethod
    def vmac(vhid: int) -> str:
        return f"00:00:5e:00:01:{vhid:02x}"

    def name(self, i: int) -> str:
        return NAMES[i]

    def socket(self, i: int) -> str:
        return str(self.lab.tmp / f"{NAMES[i]}.sock")

    # --- configuration ------------------------------------------------------------------
    def config(self, i: int, *, carp: bool = True, sync: bool = True, advskew: int | None = None,
               preempt: bool = True, advbase: int = 1, vips: str = "v4", extra: str = "") -> str:
        """syncwall's YAML for node i. advskew defaults to 50 * i, so node 0 is the preferred
        master and node 1 the first backup. (Not more: a backup declares the master down
        after 3 of its own intervals, 3 * (advbase + advskew/256) s as OpenBSD does, and with
        advbase 1 that stays within 3 * advbase + 1 s only while advskew <= 85.) `vips`:
        the vhids' virtual addresses, "v4" (the default), "v6" or "both" (IPv6 needs
        ha_lab(ipv6=True)). `extra` is appended (a `rules:` section in it replaces the
        default "pass all")."""
        skew = 50 * i if advskew is None else advskew
        name = NAMES[i]
        if vips not in ("v4", "v6", "both"):
            raise ValueError(f"vips: v4, v6 or both, not {vips!r}")
        if vips != "v4" and not self.ipv6:
            raise ValueError("IPv6 virtual addresses need ha_lab(..., ipv6=True)")
        lan = [f"{self.lan_addr(i)}/24"] + ([f'"{self.lan6_addr(i)}/64"'] if self.ipv6 else [])
        wan = [f"{self.wan_addr(i)}/24"] + ([f'"{self.wan6_addr(i)}/64"'] if self.ipv6 else [])
        vip_lan = ([f"{self.VIP_LAN}/24"] if vips != "v6" else []) + \
            ([f'"{self.VIP6_LAN}/64"'] if vips != "v4" else [])
        vip_wan = ([f"{self.VIP_WAN}/24"] if vips != "v6" else []) + \
            ([f'"{self.VIP6_WAN}/64"'] if vips != "v4" else [])
        text = f"""
node:
  name: {name}
  hostid: 0x0a0000{i + 1:02x}
dpdk:
  eal_args: {eal_args(f"sw{self.lab.tag}-{name}")}
  mbufs: 4095
lcores:
  main: 0
  workers: [1]
  idle: adaptive
interfaces:
  lan:
    devargs: "net_af_packet0,iface=lan,framecnt=4096"
    addresses: [{", ".join(lan)}]
  wan:
    devargs: "net_af_packet1,iface=wan,framecnt=4096"
    addresses: [{", ".join(wan)}]
  sync:
    devargs: "net_af_packet2,iface=sync,framecnt=4096"
    addresses: [{self.sync_addr(i)}/24]
control:
  socket: {self.socket(i)}
"""
        if "rules:" not in extra:
            text += 'rules:\n  - "pass all"\n'
        if sync:
            text += "sync: { interface: sync, interval_ms: 100 }\n"
        if carp:
            text += f"""carp:
  preempt: {"true" if preempt else "false"}
  tracked: [lan, wan]
  vhosts:
    - {{ vhid: {self.VHID_LAN}, interface: lan, addresses: [{", ".join(vip_lan)}], advbase: {advbase}, advskew: {skew}, pass: {self.PASS} }}
    - {{ vhid: {self.VHID_WAN}, interface: wan, addresses: [{", ".join(vip_wan)}], advbase: {advbase}, advskew: {skew}, pass: {self.PASS} }}
"""
        return text + extra

    # --- processes ----------------------------------------------------------------------
    def start(self, i: int, **kw) -> Process:
        """Start node i with config(i, **kw); returns once it printed 'ready'."""
        old = self.procs.get(i)
        if old is not None and old.running():
            raise RuntimeError(f"{NAMES[i]} is already running")
        proc = self.lab.syncwall(NAMES[i], self.fw[i], self.config(i, **kw))
        self.procs[i] = proc
        return proc

    def stop(self, i: int, sig: int = signal.SIGTERM, timeout: float = 15) -> int | None:
        """Stop node i with `sig` (SIGKILL: no bow-out, as a crash). Its exit status."""
        proc = self.procs.get(i)
        if proc is None:
            return None
        return proc.stop(sig, timeout=timeout)

    def running(self, i: int) -> bool:
        proc = self.procs.get(i)
        return proc is not None and proc.running()

    def ctl(self, i: int, *args: str, timeout: float = 10) -> dict:
        """syncwallctl --socket <node i> --json ARGS: the parsed result. Raises on an error."""
        res = run([str(find_binary("syncwallctl")), "--socket", self.socket(i), "--json",
                   "--timeout", str(timeout), *args], check=False, timeout=timeout + 5)
        if res.returncode != 0:
            raise RuntimeError(f"syncwallctl {' '.join(args)} on {NAMES[i]}: rc {res.returncode}: "
                               f"{res.stderr.strip()}")
        return json.loads(res.stdout)

    def roles(self, vhid: int) -> dict[int, str]:
        """The role of `vhid` on every running node: {node index: "master"|"backup"|"init"}."""
        out = {}
        for i in range(self.nodes):
            if not self.running(i):
                continue
            try:
                carp = self.ctl(i, "show", "carp", timeout=3)
            except (RuntimeError, json.JSONDecodeError):
                continue
            for v in carp.get("vhids", []):
                if v["vhid"] == vhid:
                    out[i] = v["role"]
        return out

    def wait_single_master(self, vhid: int, timeout: float = 10, among: list[int] | None = None) -> int:
        """Wait until exactly one running node (of `among`, default all running) is master of
        `vhid` and no other is (they are backup, or init when their link is down); return
        the master's index."""
        deadline = time.monotonic() + timeout
        last: dict[int, str] = {}
        while time.monotonic() < deadline:
            last = self.roles(vhid)
            if among is not None:
                last = {i: r for i, r in last.items() if i in among}
            masters = [i for i, r in last.items() if r == "master"]
            if len(masters) == 1:
                return masters[0]
            time.sleep(0.1)
        raise TimeoutError(f"vhid {vhid}: no single master within {timeout}s; roles {last}")

    def wait_settled(self, master: int, timeout: float = 30, hold: float = 1.0) -> None:
        """Wait until the cluster has settled: every running node has finished its pfsync bulk
        update (no CARP demotion left) and `master` is the single master of every vhid, and
        this has held for `hold` seconds. A node starts demoted until its bulk request is
        answered, so the roles may change a few times in the first seconds after a start."""
        deadline = time.monotonic() + timeout
        since: float | None = None
        last: object = None
        while time.monotonic() < deadline:
            try:
                carps = {i: self.ctl(i, "show", "carp", timeout=3)
                         for i in range(self.nodes) if self.running(i)}
            except (RuntimeError, json.JSONDecodeError) as e:
                carps, last = {}, e
            settled = bool(carps) and all(c.get("demotion", 0) == 0 for c in carps.values())
            vhids = {v["vhid"] for c in carps.values() for v in c.get("vhids", [])}
            for vhid in vhids:
                masters = [i for i, c in carps.items() for v in c["vhids"]
                           if v["vhid"] == vhid and v["role"] == "master"]
                settled = settled and masters == [master]
            if carps:
                last = {i: (c.get("demotion"), [v["role"] for v in c.get("vhids", [])])
                        for i, c in carps.items()}
            now = time.monotonic()
            if not settled:
                since = None
            elif since is None:
                since = now
            elif now - since >= hold:
                return
            time.sleep(0.1)
        raise TimeoutError(f"the cluster did not settle with {NAMES[master]} master within "
                           f"{timeout}s; last (demotion, roles) per node: {last}")

    def wait_master(self, vhid: int, node: int, timeout: float = 10) -> float:
        """Wait until node `node` is the single master of `vhid`; return the seconds it
        took."""
        t0 = time.monotonic()
        deadline = t0 + timeout
        last: object = None
        while time.monotonic() < deadline:
            try:
                last = self.wait_single_master(vhid, max(0.2, deadline - time.monotonic()))
            except TimeoutError as e:
                last = e
                break
            if last == node:
                return time.monotonic() - t0
            time.sleep(0.1)
        raise TimeoutError(f"vhid {vhid}: {NAMES[node]} not the single master within {timeout}s "
                           f"(last: {last}; roles {self.roles(vhid)})")

    # --- more hosts ---------------------------------------------------------------------
    def add_host(self, short: str, segment: str, addr: str, gw: str | None = None) -> str:
        """Another namespace on a segment ("lan", "wan", "sync"), eth0 with `addr` (CIDR):
        a second client, a ucarp peer, a capture point."""
        ns = self.lab.ns(short)
        if not self.ipv6:
            _ipv6_off(self.lab, ns)
        port = f"{short}0"
        self.lab.veth(ns, "eth0", self.switch, port)
        self.lab.exec(self.switch, f"ip link set {port} master {self.BRIDGES[segment]}")
        self.lab.host(ns, "eth0", [addr], gw)
        return ns


def _ipv6_off(lab: Lab, ns: str) -> None:
    lab.exec(ns, "sysctl -qw net.ipv6.conf.all.disable_ipv6=1")
    lab.exec(ns, "sysctl -qw net.ipv6.conf.default.disable_ipv6=1")


def ha_lab(lab: Lab, nodes: int = 2, ipv6: bool = False) -> HaLab:
    """Build the topology (no syncwall started yet). `ipv6`: see the module docstring."""
    if nodes not in (2, 3):
        raise ValueError("the HA lab has 2 or 3 nodes")
    switch = lab.ns("sw")
    _ipv6_off(lab, switch)
    client, server = lab.ns("cli"), lab.ns("srv")
    if not ipv6:
        for ns in (client, server):
            _ipv6_off(lab, ns)
    fws = [lab.firewall_ns(NAMES[i]) for i in range(nodes)]
    members: dict[str, list[str]] = {seg: [] for seg in SEGMENTS}
    lab.veth(client, "eth0", switch, "cli0")
    members["lan"].append("cli0")
    lab.veth(server, "eth0", switch, "srv0")
    members["wan"].append("srv0")
    for i, ns in enumerate(fws):
        for seg in SEGMENTS:
            port = f"{NAMES[i]}-{seg}"
            lab.veth(ns, seg, switch, port)
            members[seg].append(port)
    for seg in SEGMENTS:
        bridge = HaLab.BRIDGES[seg]
        lab.bridge(switch, bridge, members[seg])
        # Every frame to every port, no multicast snooping surprises.
        lab.exec(switch, f"ip link set {bridge} type bridge mcast_snooping 0")
    ha = HaLab(lab, nodes, switch, client, server, fws, ipv6=ipv6)
    lab.host(client, "eth0", [f"{HaLab.CLIENT4}/24"], HaLab.VIP_LAN)
    lab.host(server, "eth0", [f"{HaLab.SERVER4}/24"], HaLab.VIP_WAN)
    if ipv6:
        lab.host(client, "eth0", [f"{HaLab.CLIENT6}/64"], gw6=HaLab.VIP6_LAN)
        lab.host(server, "eth0", [f"{HaLab.SERVER6}/64"], gw6=HaLab.VIP6_WAN)
    return ha
