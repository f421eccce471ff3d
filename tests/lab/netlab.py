"""Network-namespace lab for syncwall tests and the demo.

A Lab owns every namespace, veth, bridge and process it creates and removes them all on
exit: context-manager exit, an exception, SIGINT/SIGTERM (via the caller's signal handling
turning into an exception), or interpreter exit (atexit). Names carry a short per-lab tag
so that concurrent or leftover labs never collide.

Only documentation prefixes are used (192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24,
2001:db8::/32), and only inside namespaces the lab made.
"""

from __future__ import annotations

import atexit
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def find_binary(name: str) -> Path:
    """The built binary: $SYNCWALL_BUILD/app/NAME, else build/app/NAME."""
    build = Path(os.environ.get("SYNCWALL_BUILD", ROOT / "build"))
    path = build / "app" / name
    if not path.exists():
        raise FileNotFoundError(f"{path} not built (run meson/ninja first)")
    return path


def run(cmd: list[str] | str, check: bool = True, timeout: float = 30, **kw) -> subprocess.CompletedProcess:
    if isinstance(cmd, str):
        cmd = cmd.split()
    return subprocess.run(cmd, check=check, timeout=timeout, capture_output=True, text=True, **kw)


@dataclass
class Process:
    """A background process whose output is collected by a thread."""

    name: str
    popen: subprocess.Popen
    lines: list[str] = field(default_factory=list)
    cond: threading.Condition = field(default_factory=threading.Condition)

    def _reader(self) -> None:
        assert self.popen.stdout is not None
        for line in self.popen.stdout:
            with self.cond:
                self.lines.append(line.rstrip("\n"))
                self.cond.notify_all()
        with self.cond:
            self.cond.notify_all()

    def wait_for_line(self, pattern: str, timeout: float) -> str:
        """Wait until a line matching `pattern` (regex) appears; raise with the output if not."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        seen = 0
        with self.cond:
            while True:
                for line in self.lines[seen:]:
                    if rx.search(line):
                        return line
                seen = len(self.lines)
                left = deadline - time.monotonic()
                if left <= 0 or (self.popen.poll() is not None and seen == len(self.lines)):
                    break
                self.cond.wait(min(left, 0.2))
        raise TimeoutError(f"{self.name}: no line matching {pattern!r} within {timeout}s; "
                           f"exit={self.popen.poll()} output:\n" + self.output())

    def output(self) -> str:
        with self.cond:
            return "\n".join(self.lines)

    def running(self) -> bool:
        return self.popen.poll() is None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> int:
        if self.popen.poll() is None:
            try:
                os.killpg(self.popen.pid, sig)
            except ProcessLookupError:
                pass
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(5)
        return self.popen.returncode


class Lab:
    """Namespaces, links and processes, all removed by close()."""

    _made = 0  # labs made by this process, so that two labs alive at once differ

    def __init__(self, tag: str | None = None):
        Lab._made += 1
        self.tag = tag or f"{os.getpid() % 1000:03d}{Lab._made % 100:02d}"
        self.namespaces: list[str] = []
        self.links: list[tuple[str | None, str]] = []  # (netns or None, ifname)
        self.processes: list[Process] = []
        self.tmp = Path(tempfile.mkdtemp(prefix=f"syncwall-lab-{self.tag}-"))
        self._closed = False
        atexit.register(self.close)

    # --- building -------------------------------------------------------------------
    def ns(self, short: str) -> str:
        name = f"sw{self.tag}-{short}"
        run(["ip", "netns", "add", name])
        self.namespaces.append(name)
        self.exec(name, "ip link set lo up")
        return name

    def exec(self, ns: str | None, cmd: list[str] | str, check: bool = True, timeout: float = 30):
        if isinstance(cmd, str):
            cmd = cmd.split()
        prefix = ["ip", "netns", "exec", ns] if ns else []
        return run(prefix + cmd, check=check, timeout=timeout)

    def veth(self, ns_a: str | None, name_a: str, ns_b: str | None, name_b: str) -> None:
        """A veth pair with ends in two namespaces (None = the root namespace), offloads off.
        Made under unique temporary names in the root namespace, then moved and renamed."""
        self._veths = getattr(self, "_veths", 0) + 1
        tmp_a, tmp_b = f"sw{self.tag}v{self._veths}a", f"sw{self.tag}v{self._veths}b"
        run(["ip", "link", "add", tmp_a, "type", "veth", "peer", "name", tmp_b])
        self.links.append((None, tmp_a))
        for ns, name, tmp in ((ns_a, name_a, tmp_a), (ns_b, name_b, tmp_b)):
            if ns:
                run(["ip", "link", "set", tmp, "netns", ns])
            self.exec(ns, f"ip link set {tmp} name {name}")
            self.exec(ns, f"ip link set {name} up")
            # af_packet sees what the kernel hands it: no partial checksums, no super-frames.
            self.exec(ns, f"ethtool -K {name} tx off rx off gso off tso off gro off", check=False)
        self.links[-1] = (ns_a, name_a)

    def bridge(self, ns: str, name: str, ports: list[str]) -> None:
        self.exec(ns, f"ip link add {name} type bridge")
        self.exec(ns, f"ip link set {name} type bridge stp_state 0 forward_delay 0")
        for p in ports:
            self.exec(ns, f"ip link set {p} master {name}")
        self.exec(ns, f"ip link set {name} up")

    def host(self, ns: str, ifname: str, addrs: list[str], gw4: str | None = None, gw6: str | None = None):
        for a in addrs:
            self.exec(ns, ["ip", "addr", "add", a, "dev", ifname] + (["nodad"] if ":" in a else []))
        if gw4:
            self.exec(ns, f"ip route add default via {gw4}")
        if gw6:
            self.exec(ns, f"ip -6 route add default via {gw6}")

    def firewall_ns(self, short: str) -> str:
        """A namespace for a syncwall process: its kernel stack stays off the ports."""
        ns = self.ns(short)
        self.exec(ns, "sysctl -qw net.ipv4.ip_forward=0")
        self.exec(ns, "sysctl -qw net.ipv6.conf.all.disable_ipv6=1")
        self.exec(ns, "sysctl -qw net.ipv6.conf.default.disable_ipv6=1")
        return ns

    # --- processes ------------------------------------------------------------------
    def spawn(self, name: str, ns: str | None, cmd: list[str], env: dict | None = None) -> Process:
        prefix = ["ip", "netns", "exec", ns] if ns else []
        popen = subprocess.Popen(prefix + cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                 stdin=subprocess.DEVNULL, text=True, start_new_session=True,
                                 env={**os.environ, **(env or {})})
        proc = Process(name, popen)
        threading.Thread(target=proc._reader, daemon=True).start()
        self.processes.append(proc)
        return proc

    def syncwall(self, name: str, ns: str, config_text: str, ready_timeout: float = 60) -> Process:
        """Start syncwall in `ns` with the given YAML; return once it printed 'ready'."""
        cfg = self.tmp / f"{name}.yaml"
        cfg.write_text(config_text)
        proc = self.spawn(name, ns, [str(find_binary("syncwall")), "-c", str(cfg)])
        proc.wait_for_line(r"^syncwall: ready", ready_timeout)
        return proc

    # --- teardown -------------------------------------------------------------------
    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for p in reversed(self.processes):
            try:
                p.stop(signal.SIGTERM, timeout=10)
            except Exception:
                pass
        for ns, name in self.links:
            run((["ip", "netns", "exec", ns] if ns else []) + ["ip", "link", "del", name], check=False)
        for ns in reversed(self.namespaces):
            # Kill anything left in the namespace before removing it.
            pids = run(["ip", "netns", "pids", ns], check=False).stdout.split()
            for pid in pids:
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (ProcessLookupError, ValueError):
                    pass
            run(["ip", "netns", "del", ns], check=False)
        shutil.rmtree(self.tmp, ignore_errors=True)
        for d in Path("/var/run/dpdk").glob(f"sw{self.tag}-*"):
            shutil.rmtree(d, ignore_errors=True)

    def __enter__(self) -> "Lab":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def parse_counters(output: str) -> dict[str, int]:
    """The counters syncwall prints when it stops, as a flat dict:
    'forwarded', 'punted', 'drops_total', 'drop.<reason>', 'port.<name>.<counter>'."""
    out: dict[str, int] = {}
    for line in output.splitlines():
        words = line.split()
        if len(words) == 2 and words[1].isdigit():
            out[words[0]] = int(words[1])
        elif len(words) == 3 and words[0] == "drop" and words[2].isdigit():
            out[f"drop.{words[1]}"] = int(words[2])
        elif len(words) >= 4 and words[0] == "port":
            for k, v in zip(words[2::2], words[3::2]):
                out[f"port.{words[1]}.{k}"] = int(v)
    return out


def eal_args(prefix: str, mem_mb: int = 256, lcores: int = 2) -> str:
    """EAL arguments for a lab instance: no hugepages, no PCI, lcores 0..lcores-1 all float
    on both CPUs."""
    mapping = ",".join(f"{i}@(0-1)" for i in range(lcores))
    return (f'["--no-huge", "--no-pci", "-m", "{mem_mb}", "--file-prefix", "{prefix}", '
            f'"--lcores", "{mapping}", "--log-level", "lib.eal:error"]')


def wait_until(predicate, timeout: float, interval: float = 0.2, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(interval)
    raise TimeoutError(f"{what} not reached within {timeout}s")


@dataclass
class RoutedLab:
    """client ── syncwall ── server: one firewall routing between two hosts."""

    lab: Lab
    client: str
    server: str
    fw: str
    fw_proc: Process | None = None

    CLIENT4, SERVER4 = "192.0.2.10", "198.51.100.10"
    FW_LAN4, FW_WAN4 = "192.0.2.1", "198.51.100.1"
    CLIENT6, SERVER6 = "2001:db8:1::10", "2001:db8:2::10"
    FW_LAN6, FW_WAN6 = "2001:db8:1::1", "2001:db8:2::1"

    def config(self, extra: str = "", idle: str = "adaptive", workers: int = 1) -> str:
        # Each instance gets its own control socket unless the test names one.
        control = "" if "control:" in extra else f"control: {{ socket: {self.lab.tmp}/fw.sock }}"
        # One queue pair per worker (net_af_packet's sockets join one kernel fanout group,
        # which spreads flows over them by a hash of their addresses and ports).
        queues = f",qpairs={workers}" if workers > 1 else ""
        return f"""
node:
  name: fw-{self.lab.tag}
  hostid: 0x0a000001
dpdk:
  eal_args: {eal_args(f"sw{self.lab.tag}-fw", lcores=1 + workers)}
  mbufs: {4095 * workers}
lcores:
  main: 0
  workers: {list(range(1, 1 + workers))}
  idle: {idle}
interfaces:
  lan:
    devargs: "net_af_packet0,iface=fw-lan,framecnt=4096{queues}"
    addresses: [{self.FW_LAN4}/24, "{self.FW_LAN6}/64"]
  wan:
    devargs: "net_af_packet1,iface=fw-wan,framecnt=4096{queues}"
    addresses: [{self.FW_WAN4}/24, "{self.FW_WAN6}/64"]
{control}
{extra}
"""

    def start(self, extra: str = "", workers: int = 1) -> Process:
        self.fw_proc = self.lab.syncwall("fw", self.fw, self.config(extra, workers=workers))
        return self.fw_proc


def routed_lab(lab: Lab) -> RoutedLab:
    client, server = lab.ns("cli"), lab.ns("srv")
    fw = lab.firewall_ns("fw")
    lab.veth(client, "eth0", fw, "fw-lan")
    lab.veth(server, "eth0", fw, "fw-wan")
    r = RoutedLab(lab, client, server, fw)
    lab.host(client, "eth0", [f"{r.CLIENT4}/24", f"{r.CLIENT6}/64"], r.FW_LAN4, r.FW_LAN6)
    lab.host(server, "eth0", [f"{r.SERVER4}/24", f"{r.SERVER6}/64"], r.FW_WAN4, r.FW_WAN6)
    return r


def run_syncwall_for(config_path: Path, seconds: float) -> tuple[int, str]:
    """Run syncwall (outside any namespace) on `config_path` until it has been ready for
    `seconds`, or until it exits; stop it with SIGTERM. Returns (exit code, all output)."""
    proc = subprocess.Popen([str(find_binary("syncwall")), "-c", str(config_path)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.append(line)
        if line.startswith("syncwall: ready"):
            break
    try:
        proc.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=20)
    return proc.returncode, "".join(lines) + out
