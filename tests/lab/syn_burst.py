#!/usr/bin/env python3
"""Send N TCP SYNs from this host's address to HOST:PORT, each from another source port
(and, past 60 000, another destination port), through a raw socket: one firewall state
each when a `keep state` rule lets them in. Prints {"sent": N} when done.

  syn_burst.py SRC HOST PORT N
"""

import json
import socket
import struct
import sys


def checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def main() -> None:
    src, host, port, n = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
    pseudo_head = socket.inet_aton(src) + socket.inet_aton(host) + struct.pack("!BBH", 0, 6, 20)
    for k in range(n):
        sport = 1024 + k % 60000
        dport = port + k // 60000
        hdr = struct.pack("!HHIIBBHHH", sport, dport, 1000 + k, 0, 5 << 4, 0x02, 64240, 0, 0)
        c = checksum(pseudo_head + hdr)
        hdr = hdr[:16] + struct.pack("!H", c) + hdr[18:]
        while True:
            try:
                s.sendto(hdr, (host, 0))
                break
            except BlockingIOError:
                continue
            except OSError:  # ENOBUFS: the qdisc is full for a moment
                import time
                time.sleep(0.001)
    print(json.dumps({"sent": n}), flush=True)


if __name__ == "__main__":
    main()
