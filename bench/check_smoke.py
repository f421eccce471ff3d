#!/usr/bin/env python3
"""Smoke run of syncwall-bench (meson test suite `bench`): tiny parameters, a second per
phase. Checks that every phase runs and reports sane, non-zero figures; no speed limits."""
import subprocess
import sys


def results(out):
    """RESULT lines -> {phase: {key: value}}."""
    found = {}
    for line in out.splitlines():
        if not line.startswith("RESULT "):
            continue
        fields = dict(kv.split("=", 1) for kv in line.split()[1:])
        found[fields["phase"]] = fields
    return found


def run(args, expect_rc=0):
    cmd = [sys.argv[1], "--duration", "1", "--stats-period", "0.5", "-m", "384", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=40)
    sys.stdout.write(proc.stdout)
    sys.stderr.write(proc.stderr)
    assert proc.returncode == expect_rc, f"{cmd} exited with {proc.returncode}"
    return results(proc.stdout), proc.stderr


def shmem_thp_allowed():
    try:
        mode = open("/sys/kernel/mm/transparent_hugepage/shmem_enabled").read()
    except OSError:
        return False
    return any(f"[{m}]" in mode for m in ("always", "advise", "within_size", "force"))


def main():
    failures = []

    def check(cond, what):
        if not cond:
            failures.append(what)

    # Established traffic on preloaded states, some new flows, sync on, sync alone.
    r, _ = run(["--states", "2000", "--rules", "50", "--new-share", "0.1", "--max-new", "20000",
             "--sync", "--sync-bench", "5000"])
    for phase in ("io", "syncwall", "sync_forward", "sync_ins", "sync_upd", "sync_bulk", "memory"):
        check(phase in r, f"no RESULT for phase {phase}")
    if not failures:
        io, sw = r["io"], r["syncwall"]
        for p in (io, sw):
            check(int(p["forwarded"]) > 0, f"{p['phase']}: nothing forwarded")
            check(0 < float(p["cycles_per_packet"]) < 1e6, f"{p['phase']}: cycles/packet {p['cycles_per_packet']}")
            check(float(p["mpps_per_worker"]) > 0, f"{p['phase']}: no Mpps")
        check(int(sw["states_created"]) > 0, "syncwall: no new states")
        # The preload makes each out state near its in state: partner slots.
        check(float(sw.get("twins_partner", -1)) == 1, f"syncwall: preload's twins apart: {sw}")
        check(float(sw["new_states_per_s_per_worker"]) > 0, "syncwall: no new states/s")
        check(0 < float(sw["ratio_to_io"]) < 10, f"syncwall: ratio to io {sw['ratio_to_io']}")
        # The worker forwards what the generator sent, apart from the SYN of an existing flow.
        check(int(sw["drops"]) * 10 < int(sw["generated"]), f"syncwall: drops {sw['drops']} of {sw['generated']}")
        check(int(r["sync_forward"]["peer_inserted"]) > 0, "sync: the peer applied nothing")
        for ph in ("sync_ins", "sync_upd"):
            check(int(r[ph]["applied"]) == 5000, f"{ph}: applied {r[ph]['applied']} of 5000")
            check(float(r[ph]["bytes_per_update"]) > 0, f"{ph}: bytes per update")
        check(r["sync_bulk"]["done"] == "1" and int(r["sync_bulk"]["received"]) == 5000,
              f"bulk: {r['sync_bulk']}")
        check(int(r["memory"]["bytes_per_state"]) > 0, "no memory per state")

    # The handshake: SYN, SYN-ACK and ACK through the worker, three states... two per flow.
    r, _ = run(["--states", "0", "--traffic", "handshake", "--max-new", "5000", "--no-baseline"])
    check("syncwall" in r, "handshake: no RESULT")
    if "syncwall" in r:
        check(int(r["syncwall"]["states_created"]) >= 2 * 1000,
              f"handshake: only {r['syncwall']['states_created']} states")

    # --nat: source NAT to the wan address; the preloaded connections are made by handshakes
    # through the worker, established traffic runs both ways, some new flows; the sink
    # checks that what comes out is translated (and back) with right checksums.
    r, _ = run(["--states", "2000", "--nat", "--new-share", "0.1", "--max-new", "20000",
                "--no-baseline"])
    for phase in ("nat_preload", "syncwall", "nat"):
        check(phase in r, f"--nat: no RESULT for phase {phase}")
    if not failures:
        pre, sw, nat = r["nat_preload"], r["syncwall"], r["nat"]
        check(int(pre["established"]) == 1000 and int(pre["states_created"]) == 2000,
              f"--nat: preload {pre}")
        check(pre["wrong"] == "0" and pre["states_wrong"] == "0" and int(pre["states_sampled"]) > 0,
              f"--nat: preload not translated as expected: {pre}")
        check(sw.get("nat") == "1" and sw.get("direction") == "both", f"--nat: {sw}")
        check(int(sw["forwarded"]) > 0 and int(sw["states_created"]) > 0, f"--nat: {sw}")
        check(int(sw["drops"]) * 10 < int(sw["generated"]), f"--nat: drops {sw['drops']} of {sw['generated']}")
        check(int(nat["checked"]) > 0 and nat["wrong"] == "0" and nat["unknown"] == "0",
              f"--nat: translation check {nat}")
        check(nat["nat_exhausted"] == "0", f"--nat: ports exhausted {nat}")

    # --twins-apart: every in state preloaded before every out state (a failed insert ends
    # the run); traffic finds them all.
    r, _ = run(["--states", "2000", "--twins-apart", "--no-baseline"])
    check("syncwall" in r, "--twins-apart: no RESULT")
    if "syncwall" in r:
        sw = r["syncwall"]
        check(sw.get("twins_apart") == "1", f"--twins-apart: not in the RESULT line: {sw}")
        check(0 <= float(sw.get("twins_partner", -1)) < 0.01,
              f"--twins-apart: twins side by side: {sw}")
        check(int(sw["forwarded"]) > 0 and int(sw["states_created"]) == 0, f"--twins-apart: {sw}")
        check(int(sw["drops"]) * 10 < int(sw["generated"]),
              f"--twins-apart: drops {sw['drops']} of {sw['generated']}")
    # --churn: the preload's connections replaced 32 a burst, each out state made near its
    # in state, as a worker makes them: every state is found, and the twins lie side by side.
    r, _ = run(["--states", "2000", "--churn", "3", "--no-baseline"])
    check("syncwall" in r, "--churn: no RESULT")
    if "syncwall" in r:
        sw = r["syncwall"]
        check(float(sw.get("churn", 0)) == 3, f"--churn: not in the RESULT line: {sw}")
        check(float(sw.get("twins_partner", 0)) >= 0.99, f"--churn: twins not side by side: {sw}")
        check(int(sw["forwarded"]) > 0 and int(sw["states_created"]) == 0, f"--churn: {sw}")
        check(int(sw["drops"]) * 10 < int(sw["generated"]),
              f"--churn: drops {sw['drops']} of {sw['generated']}")
    r, err = run(["--states", "2000", "--churn", "1", "--nat", "--no-baseline"], expect_rc=108)
    check(not r and "--nat excludes --churn" in err, f"--churn --nat: {err!r}")
    # --nat preloads through the worker: the two together are refused, not half obeyed.
    r, err = run(["--states", "2000", "--twins-apart", "--nat", "--no-baseline"], expect_rc=108)
    check(not r and "--nat excludes --twins-apart" in err, f"--twins-apart --nat: {err!r}")

    # --thp: on 2 MiB pages where the kernel allows it for shmem, else a clear refusal.
    thp = ["--states", "1000", "--no-baseline", "--thp"]
    if shmem_thp_allowed():
        r, _ = run(thp)
        check("memory" in r and float(r["memory"]["huge_page_mib"]) >= 0, "--thp: no memory RESULT")
        check(int(r.get("syncwall", {}).get("forwarded", 0)) > 0, "--thp: nothing forwarded")
    else:
        r, err = run(thp, expect_rc=2)
        check("shmem_enabled" in err and not r, f"--thp refused without a clear reason: {err!r}")

    if failures:
        print("bench smoke FAILED:\n  " + "\n  ".join(failures))
        return 1
    print("bench smoke: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
