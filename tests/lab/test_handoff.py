"""Two workers on net_af_packet ports: client ── syncwall (2 workers) ── server.

Each port has one queue per worker, and the kernel spreads the frames over them by a hash
of their addresses and ports, the same for both directions of an untranslated flow. With
`nat-to`, a reply's tuple is not its request's reversed, so about half the replies reach
the worker that does not own the connection's states: that worker must hand them to the
owner (docs/ownership.md section 6), which tracks them and translates them back. Every
connection must carry its data, the server must see only the translated address, and the
hand-offs must be counted.
"""

from __future__ import annotations

import json

from netlab import Lab, find_binary, parse_counters, routed_lab, run, wait_until

NAT_ADDRESS = "198.51.100.1"  # the firewall's own WAN address
CONNECTIONS = 16

RULES = f"""rules:
  - "block all"
  - "pass in on lan inet proto {{ tcp icmp }} from 192.0.2.0/24 keep state"
  - "pass out on wan inet keep state"
  - "match out on wan inet from 192.0.2.0/24 to any nat-to {NAT_ADDRESS}"
"""


def test_nat_replies_on_the_other_worker_are_handed_to_the_owner():
    with Lab() as lab:
        r = routed_lab(lab)
        r.start(RULES, workers=2)
        sock = str(lab.tmp / "fw.sock")

        def ctl(*args: str) -> dict:
            res = run([str(find_binary("syncwallctl")), "-s", sock, "--json", *args], check=False)
            assert res.returncode == 0, res.stdout + res.stderr
            return json.loads(res.stdout)

        wait_until(lambda: lab.exec(r.client, f"ping -c 1 -W 1 {r.SERVER4}",
                                    check=False).returncode == 0,
                   timeout=30, what="ping through the firewall")
        server = lab.spawn("iperf3-server", r.server,
                           ["iperf3", "-s", "-1", "-J", "-B", r.SERVER4])
        wait_until(lambda: ":5201" in lab.exec(r.server, "ss -ltn").stdout, 10,
                   what="iperf3 listening")
        # Default TCP, several connections at once so that their replies spread over both
        # queues.
        res = lab.exec(r.client, ["iperf3", "-c", r.SERVER4, "-P", str(CONNECTIONS), "-t", "4",
                                  "-J"], check=False, timeout=60)
        assert res.returncode == 0, res.stdout[-2000:] + res.stderr
        streams = json.loads(res.stdout)["end"]["streams"]
        assert len(streams) == CONNECTIONS
        # Every connection carried data (its ACKs are the replies that may cross workers).
        for s in streams:
            assert s["receiver"]["bytes"] > 100_000, s

        def server_result():
            try:
                return json.loads(server.output())
            except ValueError:
                return None

        seen = wait_until(server_result, 15, 0.2, "the iperf3 server's report")
        # The server saw the translated address only.
        peers = {c["remote_host"] for c in seen["start"]["connected"]}
        assert peers == {NAT_ADDRESS}, peers
        # The connections' states (closing now, still held) are translated to it.
        translated = [s for s in ctl("show", "states", "--port", "5201")["states"] if "nat" in s]
        assert len(translated) > CONNECTIONS, translated
        assert all(s["nat"]["addr"][1] == NAT_ADDRESS for s in translated), translated

        info = ctl("show", "info")
        workers = info["workers"]
        code = r.fw_proc.stop()
        assert code == 0, r.fw_proc.output()
        counters = parse_counters(r.fw_proc.output())
        print(f"handed off {counters.get('handed_off')}, per worker "
              f"{[w['handed_off'] for w in workers]}, forwarded per worker "
              f"{[w['forwarded'] for w in workers]}, ring full "
              f"{counters.get('drop.handoff_ring_full', 0)}")
        assert len(workers) == 2
        assert counters["handed_off"] > 0
        assert counters["handed_off"] >= sum(w["handed_off"] for w in workers)
        assert all(w["forwarded"] > 0 for w in workers), workers
        assert counters.get("drop.filter_block", 0) == 0, counters
