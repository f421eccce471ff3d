#!/usr/bin/env python3
"""Long-lived streams for the failover lab, run inside a namespace. Each prints one JSON
object per line: progress every `--report` seconds and a final line on SIGTERM/SIGINT.

  stream.py tcp-sink ADDR PORT
      accepts one connection, checks that the bytes are the pattern (byte i = i % 251),
      reports {"role": "tcp-sink", "bytes", "max_gap", "bad_bytes", "reset", "eof"}
  stream.py tcp-source HOST PORT [--rate BYTES_PER_S] [--chunk BYTES]
      connects and sends the pattern at a steady rate until stopped, then closes cleanly;
      the socket keeps Linux's default TCP settings (no thin-stream timeouts), so a failover
      is measured as an ordinary application sees it, exponential backoff included;
      reports {"role": "tcp-source", "bytes", "max_stall", "reset", "error"}
  stream.py udp-push ADDR PORT [--pps N]
      waits for a datagram, then sends numbered datagrams back to its sender (server push)
  stream.py udp-listen HOST PORT
      subscribes to a udp-push server and counts what arrives;
      reports {"role": "udp-listen", "received", "highest", "missing", "max_gap"}

"max_gap" is the longest time between two arrivals, the measure of a failover's pause.
"""

import argparse
import json
import signal
import socket
import sys
import time

PATTERN_MOD = 251


def pattern(offset: int, n: int) -> bytes:
    start = offset % PATTERN_MOD
    base = bytes(range(PATTERN_MOD)) * ((n + start) // PATTERN_MOD + 2)
    return base[start:start + n]


class Stop(Exception):
    pass


stopping = False


def on_signal(*_):
    # A flag, not an exception: a send() is never cut between the syscall and the count.
    global stopping
    stopping = True


def check_stop() -> None:
    if stopping:
        raise Stop()


def pace(next_send: float) -> None:
    """Stop if asked to, else sleep until `next_send` (a time.monotonic() value)."""
    check_stop()
    delay = next_send - time.monotonic()
    if delay > 0:
        time.sleep(delay)


def emit(obj: dict) -> None:
    print(json.dumps(obj), flush=True)


def tcp_sink(args) -> None:
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((args.addr, args.port))
    srv.listen(1)
    emit({"role": "tcp-sink", "listening": True})
    st = {"role": "tcp-sink", "bytes": 0, "max_gap": 0.0, "bad_bytes": 0, "reset": False,
          "eof": False}
    conn = None
    try:
        srv.settimeout(0.2)
        while conn is None:
            check_stop()
            try:
                conn, peer = srv.accept()
                st["peer"] = peer[0]
            except socket.timeout:
                pass
        conn.settimeout(args.report)
        last = time.monotonic()
        next_report = last + args.report
        while True:
            check_stop()
            try:
                data = conn.recv(65536)
            except socket.timeout:
                data = None
            except ConnectionResetError:
                st["reset"] = True
                break
            now = time.monotonic()
            if data == b"":
                st["eof"] = True
                break
            if data:
                st["max_gap"] = max(st["max_gap"], now - last)
                last = now
                if data != pattern(st["bytes"], len(data)):
                    st["bad_bytes"] += sum(1 for i, b in enumerate(data)
                                           if b != (st["bytes"] + i) % PATTERN_MOD)
                st["bytes"] += len(data)
            if now >= next_report:
                emit({**st, "since_last": now - last})
                next_report = now + args.report
    except Stop:
        pass
    emit({**st, "final": True})


def tcp_source(args) -> None:
    st = {"role": "tcp-source", "bytes": 0, "max_stall": 0.0, "reset": False, "error": None}
    s = socket.create_connection((args.host, args.port), timeout=10)
    s.settimeout(1.0)
    emit({"role": "tcp-source", "connected": True, "sport": s.getsockname()[1]})
    chunk = args.chunk
    interval = chunk / args.rate
    next_send = time.monotonic()
    next_report = next_send + args.report
    last_progress = next_send
    try:
        while True:
            pace(next_send)
            try:
                sent = s.send(pattern(st["bytes"], chunk))
                st["bytes"] += sent
                now = time.monotonic()
                st["max_stall"] = max(st["max_stall"], now - last_progress)
                last_progress = now
            except socket.timeout:
                pass  # the send buffer is full: the path is stalled; keep trying
            except (ConnectionResetError, BrokenPipeError) as e:
                st["reset"] = True
                st["error"] = str(e)
                break
            next_send += interval
            if time.monotonic() >= next_report:
                emit(st)
                next_report = time.monotonic() + args.report
    except Stop:
        pass
    if not st["reset"]:
        try:
            s.settimeout(30)
            s.shutdown(socket.SHUT_WR)  # a clean FIN after the last byte
            s.recv(1)
        except OSError as e:
            st["error"] = str(e)
            st["reset"] = isinstance(e, ConnectionResetError)
    s.close()
    emit({**st, "final": True})


def udp_push(args) -> None:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((args.addr, args.port))
    emit({"role": "udp-push", "listening": True})
    s.settimeout(0.2)
    peer = None
    try:
        while peer is None:
            check_stop()
            try:
                _, peer = s.recvfrom(64)
            except socket.timeout:
                pass
    except Stop:
        emit({"role": "udp-push", "sent": 0, "final": True})
        return
    seq = 0
    interval = 1.0 / args.pps
    next_send = time.monotonic()
    try:
        while True:
            pace(next_send)
            seq += 1
            try:
                s.sendto(seq.to_bytes(8, "big") + b"p" * 56, peer)
            except OSError:
                pass
            next_send += interval
    except Stop:
        pass
    emit({"role": "udp-push", "sent": seq, "final": True})


def udp_listen(args) -> None:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(args.report)
    s.sendto(b"subscribe", (args.host, args.port))
    st = {"role": "udp-listen", "received": 0, "highest": 0, "max_gap": 0.0}
    last = None
    next_report = time.monotonic() + args.report
    try:
        while True:
            check_stop()
            try:
                data, _ = s.recvfrom(2048)
                now = time.monotonic()
                if last is not None:
                    st["max_gap"] = max(st["max_gap"], now - last)
                last = now
                st["received"] += 1
                st["highest"] = max(st["highest"], int.from_bytes(data[:8], "big"))
            except socket.timeout:
                pass
            if time.monotonic() >= next_report:
                emit({**st, "missing": st["highest"] - st["received"]})
                next_report = time.monotonic() + args.report
    except Stop:
        pass
    emit({**st, "missing": st["highest"] - st["received"], "final": True})


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["tcp-sink", "tcp-source", "udp-push", "udp-listen"])
    p.add_argument("addr")
    p.add_argument("port", type=int)
    p.add_argument("--rate", type=float, default=2_000_000)
    p.add_argument("--chunk", type=int, default=8192)
    p.add_argument("--pps", type=float, default=200)
    p.add_argument("--report", type=float, default=0.5)
    args = p.parse_args()
    args.host = args.addr
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    {"tcp-sink": tcp_sink, "tcp-source": tcp_source, "udp-push": udp_push,
     "udp-listen": udp_listen}[args.mode](args)


if __name__ == "__main__":
    try:
        main()
    except Stop:
        sys.exit(0)
