#!/usr/bin/python3
"""Plays systemd's part for one syncwall: a NOTIFY_SOCKET and WATCHDOG_USEC of its own.

notify_probe.py SYNCWALL CONFIG WATCHDOG_MS SECONDS [journal]: starts SYNCWALL -c CONFIG,
waits for READY=1, then records WATCHDOG=1 for SECONDS and fails unless no gap between pings
(and between READY=1 and the first ping) exceeds half the watchdog period. Stops it with
SIGTERM. Its log must say "syncwall: ready" plainly, or with "journal", where JOURNAL_STREAM
names its stdout as systemd sets it, with the syslog prefix "<6>".
"""
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time


def main():
    exe, config, wd_ms, seconds = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    journal = len(sys.argv) > 5 and sys.argv[5] == "journal"
    tmp = tempfile.mkdtemp(prefix="syncwall-notify-")
    path = os.path.join(tmp, "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    env = dict(os.environ, NOTIFY_SOCKET=path, WATCHDOG_USEC=str(wd_ms * 1000))
    env.pop("WATCHDOG_PID", None)
    env.pop("JOURNAL_STREAM", None)
    rfd, wfd = os.pipe()
    if journal:
        st = os.fstat(wfd)
        env["JOURNAL_STREAM"] = f"{st.st_dev}:{st.st_ino}"
    proc = subprocess.Popen([exe, "-c", config], env=env, stdout=wfd, stderr=wfd)
    os.close(wfd)
    reader = os.fdopen(rfd, "r")
    ready_at = None
    pings = []
    deadline = time.monotonic() + 30
    ok = True
    try:
        while True:
            now = time.monotonic()
            if ready_at is None and now > deadline:
                print("notify: no READY=1 within 30 s")
                ok = False
                break
            if ready_at is not None and now > ready_at + seconds:
                break
            if proc.poll() is not None:
                print(f"notify: syncwall exited with {proc.returncode} before the check ended")
                ok = False
                break
            sock.settimeout(0.5)
            try:
                msg = sock.recv(4096).decode()
            except socket.timeout:
                continue
            t = time.monotonic()
            fields = msg.split("\n")
            if "READY=1" in fields:
                if ready_at is None:
                    ready_at = t
                    print("notify: READY=1")
            if "WATCHDOG=1" in fields:
                if ready_at is None:
                    continue  # pings before READY=1 are allowed, not counted
                pings.append(t)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        out = reader.read()
        reader.close()
        sock.close()
        os.unlink(path)
        os.rmdir(tmp)
    if ready_at is not None:
        half = wd_ms / 2000.0
        stamps = [ready_at] + pings
        gaps = [b - a for a, b in zip(stamps, stamps[1:])]
        # The last ping must also be recent when the window closes.
        gaps.append(ready_at + seconds - stamps[-1])
        worst = max(gaps)
        print(f"notify: {len(pings)} WATCHDOG=1 in {seconds:.1f} s, longest gap {worst * 1000:.0f} ms "
              f"(half period {half * 1000:.0f} ms)")
        if not pings or worst > half:
            ok = False
    want = "<6>syncwall: ready" if journal else "syncwall: ready"
    lines = out.splitlines()
    if not any(line.startswith(want) for line in lines):
        print(f"notify: no log line starts with {want!r}")
        ok = False
    if not journal and any(line.startswith("<") for line in lines):
        print("notify: a syslog prefix without JOURNAL_STREAM")
        ok = False
    if not ok:
        print(out)
    print("notify:", "ok" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
