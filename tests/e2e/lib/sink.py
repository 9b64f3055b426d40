#!/usr/bin/env python3
"""sink.py - the e2e suites' receiver clock.

Binds UDP PORT on IPv4 and IPv6 and records, per source address, how many
datagrams arrived and the kernel's receive timestamps (SO_TIMESTAMPNS) of the
first and the last, so a rate test can take the span of arrivals from the
receiver rather than from the sender's timer. The counts are a cross-check:
the suites count with nft, independently of this process.

Usage: sink.py PORT OUT_JSON READY_FILE MAX_SECONDS
Writes READY_FILE once bound; writes OUT_JSON ({"SRC": [count, first, last]},
seconds) on SIGTERM or after MAX_SECONDS.
"""
import json
import os
import select
import signal
import socket
import struct
import sys
import time

SO_TIMESTAMPNS = 35  # SO_TIMESTAMPNS_OLD on x86; Python 3.11 has no name
SO_RCVBUFFORCE = 33


def open_sock(family, addr, port):
    s = socket.socket(family, socket.SOCK_DGRAM)
    if family == socket.AF_INET6:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    s.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    # Big enough that a stalled reader loses nothing at the suites' rates.
    s.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 16 << 20)
    s.bind((addr, port))
    s.setblocking(False)
    return s


def drain(s, seen, limit):
    """Reads up to limit datagrams that are queued on s; returns how many."""
    n = 0
    while n < limit:
        try:
            _, anc, _, src = s.recvmsg(2048, 64)
        except BlockingIOError:
            break
        n += 1
        ts = time.time()
        for level, typ, data in anc:
            if level == socket.SOL_SOCKET and typ == SO_TIMESTAMPNS:
                sec, nsec = struct.unpack("qq", data[:16])
                ts = sec + nsec * 1e-9
        e = seen.get(src[0])
        if e is None:
            seen[src[0]] = [1, ts, ts]
        else:
            e[0] += 1
            e[1] = min(e[1], ts)
            e[2] = max(e[2], ts)
    return n


def main():
    port, out, ready, max_s = int(sys.argv[1]), sys.argv[2], sys.argv[3], float(sys.argv[4])
    socks = [open_sock(socket.AF_INET, "0.0.0.0", port),
             open_sock(socket.AF_INET6, "::", port)]
    seen = {}
    stop = [False]

    def on_term(*_):
        stop[0] = True

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    with open(ready, "w") as f:
        f.write("ready\n")
    deadline = time.monotonic() + max_s
    while not stop[0] and time.monotonic() < deadline:
        try:
            r, _, _ = select.select(socks, [], [], 0.1)
        except InterruptedError:
            continue
        for s in r:
            drain(s, seen, 4096)
    # The suite stops the sink after the sender has exited: take what is queued.
    for s in socks:
        drain(s, seen, 1 << 22)
    with open(out + ".tmp", "w") as f:
        json.dump(seen, f)
    os.rename(out + ".tmp", out)


if __name__ == "__main__":
    main()
