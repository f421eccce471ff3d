#!/usr/bin/env python3
"""syncwall demo: a client and a server in network namespaces, syncwall routing between
them on two net_af_packet ports. Shows ping (IPv4 and IPv6), a TCP transfer, an ICMP
time-exceeded from the firewall, and the counters syncwall reports when it stops.

Run as root (scripts/demo.sh builds first). Everything it creates is removed on exit.
"""

import json
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from netlab import Lab, parse_counters, routed_lab, wait_until  # noqa: E402

PROBE = str(Path(__file__).resolve().parent / "probe.py")

# A pf ruleset: everything blocked (with a refusal) except what the LAN may start.
RULES = """
rules:
  - "block return all"
  - "pass out all"
  - "pass in on lan proto tcp from lan:network to any port { 5201 8080 }"
  - "pass in on lan inet proto icmp icmp-type echoreq"
  - "pass in inet6 proto icmp6 icmp6-type { echoreq neighbrsol neighbradv }"
"""


def say(text: str) -> None:
    print(text, flush=True)


def main() -> int:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(130))
    say("""
  client 192.0.2.10 ── lan [ syncwall ] wan ── server 198.51.100.10
         2001:db8:1::10                          2001:db8:2::10
  (network namespaces; syncwall owns both veth ends through net_af_packet)

  rules:""" + "".join(f"\n    {line.strip()[3:-1]}" for line in RULES.splitlines() if line.strip().startswith("- ")) + "\n")
    with Lab() as lab:
        r = routed_lab(lab)
        say("starting syncwall ...")
        fw = r.start(RULES)
        say("syncwall is ready; waiting for it to answer on the LAN ...")
        wait_until(lambda: lab.exec(r.client, f"ping -c 1 -W 1 {r.FW_LAN4}", check=False).returncode == 0,
                   30, what="syncwall answering ping")
        verdicts = []

        def step(title, cmd, ns=r.client, ok=lambda res: res.returncode == 0, timeout=30):
            res = lab.exec(ns, cmd, check=False, timeout=timeout)
            good = ok(res)
            verdicts.append((title, good))
            say(f"\n== {title}: {'OK' if good else 'FAILED'}")
            return res

        res = step("ping client -> server through syncwall", f"ping -c 3 -i 0.3 -W 2 {r.SERVER4}")
        say(res.stdout.strip().splitlines()[-1] if res.stdout else res.stderr)
        wait_until(lambda: lab.exec(r.client, f"ping -6 -c 1 -W 1 {r.FW_LAN6}", check=False).returncode == 0,
                   15, what="neighbour discovery")
        res = step("ping6 client -> server through syncwall", f"ping -6 -c 3 -i 0.3 -W 2 {r.SERVER6}")
        say(res.stdout.strip().splitlines()[-1] if res.stdout else res.stderr)
        res = step("TTL 1 gets 'time exceeded' from the firewall", f"ping -c 1 -t 1 -W 2 {r.SERVER4}",
                   ok=lambda res: "Time to live exceeded" in res.stdout)
        say("\n".join(line for line in res.stdout.splitlines() if "From" in line))

        for port in ("8080", "9999"):
            lab.spawn(f"tcp{port}", r.server, ["/usr/bin/python3", PROBE, "serve", "tcp", r.SERVER4, port]) \
               .wait_for_line("listening", 10)
        res = step("TCP to an allowed port (8080) connects", ["/usr/bin/python3", PROBE, "tcp", r.SERVER4, "8080"],
                   ok=lambda res: res.stdout.startswith("connected"))
        say(f"   {res.stdout.strip()} s")
        res = step("TCP to a blocked port (9999) is refused at once (block return)",
                   ["/usr/bin/python3", PROBE, "tcp", r.SERVER4, "9999"],
                   ok=lambda res: res.stdout.startswith("refused"))
        say(f"   {res.stdout.strip()} s")
        res = step("the server cannot ping the client (nothing passes in on wan)", ["ping", "-c", "1", "-W", "1", r.CLIENT4],
                   ns=r.server, ok=lambda res: res.returncode != 0)
        say("   " + (res.stdout.strip().splitlines()[1] if len(res.stdout.strip().splitlines()) > 1 else res.stdout.strip()))

        server = lab.spawn("iperf3", r.server, ["iperf3", "-s", "-1"])
        wait_until(lambda: ":5201" in lab.exec(r.server, "ss -ltn").stdout, 10, what="iperf3 listening")
        res = step("TCP transfer (iperf3, 3 s)", ["iperf3", "-c", r.SERVER4, "-t", "3", "-J"])
        server.stop()
        if res.returncode == 0:
            end = json.loads(res.stdout)["end"]
            say(f"   {end['sum_received']['bytes'] / 1e6:.1f} MB received at "
                f"{end['sum_received']['bits_per_second'] / 1e9:.2f} Gbit/s, "
                f"{end['sum_sent'].get('retransmits', 0)} retransmits")

        fw.stop()
        counters = parse_counters(fw.output())
        say("\n== syncwall's counters at exit")
        for line in fw.output().splitlines():
            if line.startswith(("port ", "forwarded", "punted", "state", "drop", "worker")):
                say("   " + line)
        failed = [t for t, good in verdicts if not good]
        say(f"\nverdict: {'all steps passed' if not failed else 'FAILED: ' + ', '.join(failed)}"
            f" ({counters.get('forwarded', 0)} packets forwarded)")
        return 0 if not failed else 1


if __name__ == "__main__":
    sys.exit(main())
