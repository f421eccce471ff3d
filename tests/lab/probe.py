#!/usr/bin/env python3
"""Tiny network probes for the lab, run inside a namespace.

  probe.py tcp HOST PORT [TIMEOUT]    -> prints "connected", "refused" or "timeout" and the
                                         seconds it took
  probe.py udp HOST PORT [TIMEOUT]    -> sends one datagram, prints "reply" or "timeout"
  probe.py serve tcp|udp ADDR PORT    -> echo server (accepts until killed)
"""

import socket
import sys
import threading
import time


def tcp(host: str, port: int, timeout: float) -> None:
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    start = time.monotonic()
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect((host, port))
        s.sendall(b"hello\n")
        data = s.recv(16)
        result = "connected" if data == b"hello\n" else "connected-no-echo"
    except ConnectionRefusedError:
        result = "refused"
    except (socket.timeout, TimeoutError):
        result = "timeout"
    except OSError as e:
        result = f"error:{e.errno}"
    print(result, f"{time.monotonic() - start:.3f}")


def udp(host: str, port: int, timeout: float) -> None:
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    start = time.monotonic()
    s = socket.socket(fam, socket.SOCK_DGRAM)
    s.settimeout(timeout)
    s.sendto(b"ping", (host, port))
    try:
        data, _ = s.recvfrom(64)
        result = "reply" if data == b"ping" else "bad-reply"
    except (socket.timeout, TimeoutError):
        result = "timeout"
    except ConnectionRefusedError:
        result = "refused"
    print(result, f"{time.monotonic() - start:.3f}")


def serve(kind: str, addr: str, port: int) -> None:
    fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
    if kind == "udp":
        s = socket.socket(fam, socket.SOCK_DGRAM)
        s.bind((addr, port))
        print("listening", flush=True)
        while True:
            data, peer = s.recvfrom(2048)
            s.sendto(data, peer)
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, port))
    s.listen(16)
    print("listening", flush=True)

    def echo(c: socket.socket) -> None:
        with c:
            while data := c.recv(65536):
                c.sendall(data)

    while True:
        c, _ = s.accept()
        threading.Thread(target=echo, args=(c,), daemon=True).start()


if __name__ == "__main__":
    if sys.argv[1] == "serve":
        serve(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    else:
        t = float(sys.argv[4]) if len(sys.argv) > 4 else 3.0
        (tcp if sys.argv[1] == "tcp" else udp)(sys.argv[2], int(sys.argv[3]), t)
