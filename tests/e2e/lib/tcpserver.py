#!/usr/bin/env python3
"""tcpserver.py - the e2e suites' TCP and HTTP/1.1 backend, and its counters.

Listens on each PORT (IPv4 and IPv6, backlog 1024) and counts, per port, the
connections the kernel handed it (accept), per source address too, and the
requests and responses. These are the suites' independent counts: a SYN that
sluice drops never becomes an accepted connection.

A connection that sends nothing is held open until the client closes it; then
the server closes too (FIN). A request is anything up to a blank line; the
server answers it (keep-alive) per the port's spec:

  PORT[,delay=MS][,status=N][,rst]
    delay=MS   wait MS milliseconds before answering
    status=N   answer "HTTP/1.1 N" (default 200), headers and body in one write
    rst        do not answer: reset the connection (SO_LINGER 0, close)

With --sniff DEV, a thread also records every SYN (without ACK) to a listened
port that reaches DEV's packet taps, which run after XDP: per source, the
count and the kernel receive time (SO_TIMESTAMPNS) of the first and the last,
so a connection-rate test takes its span from the receiver's clock.

Usage: tcpserver.py STATS_JSON READY_FILE MAX_SECONDS [--sniff DEV] SPEC...
Writes READY_FILE once listening; rewrites STATS_JSON (atomically) every
0.1 s while something changed, and on SIGTERM or after MAX_SECONDS:
  {"ports": {"PORT": {"accepted": n, "open": n, "requests": n,
                      "responses": n, "resets": n, "by_src": {"SRC": n}}},
   "syn": {"SRC": [count, first, last]}}
"""
import asyncio
import json
import os
import signal
import socket
import struct
import sys
import threading
import time

SO_TIMESTAMPNS = 35  # SO_TIMESTAMPNS_OLD on x86; Python 3.11 has no name
SO_RCVBUFFORCE = 33
ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4
LINGER_RST = struct.pack("ii", 1, 0)

stats = {"ports": {}, "syn": {}}
lock = threading.Lock()
dirty = True


def bump(port, field, n=1):
    global dirty
    with lock:
        stats["ports"][port][field] += n
        dirty = True


def write_stats(path):
    global dirty
    with lock:
        text = json.dumps(stats)
        dirty = False
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def parse_spec(spec):
    parts = spec.split(",")
    cfg = {"port": int(parts[0]), "delay": 0.0, "status": 200, "rst": False}
    for p in parts[1:]:
        if p == "rst":
            cfg["rst"] = True
        elif p.startswith("delay="):
            cfg["delay"] = float(p[6:]) / 1000
        elif p.startswith("status="):
            cfg["status"] = int(p[7:])
        else:
            raise SystemExit("tcpserver.py: bad spec %r" % spec)
    return cfg


def handler(cfg):
    port = str(cfg["port"])
    body = b"ok\n"
    resp = (b"HTTP/1.1 %d Test\r\nContent-Length: %d\r\nConnection: keep-alive\r\n\r\n"
            % (cfg["status"], len(body))) + body

    async def serve(reader, writer):
        global dirty
        src = writer.get_extra_info("peername")[0]
        with lock:
            st = stats["ports"][port]
            st["accepted"] += 1
            st["open"] += 1
            st["by_src"][src] = st["by_src"].get(src, 0) + 1
            dirty = True
        buf = b""
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                buf += data
                while b"\r\n\r\n" in buf:
                    _, buf = buf.split(b"\r\n\r\n", 1)
                    bump(port, "requests")
                    if cfg["rst"]:
                        sock = writer.get_extra_info("socket")
                        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_RST)
                        bump(port, "resets")
                        writer.transport.abort()
                        return
                    if cfg["delay"]:
                        await asyncio.sleep(cfg["delay"])
                    writer.write(resp)
                    await writer.drain()
                    bump(port, "responses")
        except (ConnectionError, OSError):
            pass
        finally:
            bump(port, "open", -1)
            writer.close()

    return serve


def sniff(dev, ports):
    """Records SYNs to the listened ports as DEV's taps see them."""
    global dirty
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    s.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    s.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 16 << 20)
    s.bind((dev, 0))
    while True:
        data, anc, _, addr = s.recvmsg(256, 64)
        if addr[2] == PACKET_OUTGOING or len(data) < 14:
            continue
        etype = struct.unpack("!H", data[12:14])[0]
        if etype == 0x0800 and len(data) >= 34 and data[23] == 6:
            l4 = 14 + (data[14] & 0xF) * 4
            src = socket.inet_ntop(socket.AF_INET, data[26:30])
        elif etype == 0x86DD and len(data) >= 54 and data[20] == 6:
            l4 = 54
            src = socket.inet_ntop(socket.AF_INET6, data[22:38])
        else:
            continue
        if len(data) < l4 + 14:
            continue
        dport = struct.unpack("!H", data[l4 + 2:l4 + 4])[0]
        flags = data[l4 + 13]
        if dport not in ports or (flags & 0x12) != 0x02:  # SYN, not ACK
            continue
        ts = time.time()
        for level, typ, val in anc:
            if level == socket.SOL_SOCKET and typ == SO_TIMESTAMPNS:
                sec, nsec = struct.unpack("qq", val[:16])
                ts = sec + nsec * 1e-9
        with lock:
            e = stats["syn"].get(src)
            if e is None:
                stats["syn"][src] = [1, ts, ts]
            else:
                e[0] += 1
                e[1] = min(e[1], ts)
                e[2] = max(e[2], ts)
            dirty = True


async def main():
    args = sys.argv[1:]
    if len(args) < 4:
        raise SystemExit(__doc__)
    out, ready, max_secs = args[0], args[1], float(args[2])
    rest = args[3:]
    dev = None
    if rest[0] == "--sniff":
        dev, rest = rest[1], rest[2:]
    cfgs = [parse_spec(s) for s in rest]
    servers = []
    for cfg in cfgs:
        stats["ports"][str(cfg["port"])] = {"accepted": 0, "open": 0, "requests": 0,
                                            "responses": 0, "resets": 0, "by_src": {}}
        servers.append(await asyncio.start_server(handler(cfg), host=["0.0.0.0", "::"],
                                                  port=cfg["port"], backlog=1024,
                                                  reuse_address=True))
    if dev:
        threading.Thread(target=sniff, args=(dev, {c["port"] for c in cfgs}),
                         daemon=True).start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    write_stats(out)
    open(ready, "w").close()
    end = time.monotonic() + max_secs
    while not stop.is_set() and time.monotonic() < end:
        try:
            await asyncio.wait_for(stop.wait(), 0.1)
        except asyncio.TimeoutError:
            pass
        if dirty:
            write_stats(out)
    write_stats(out)
    for s in servers:
        s.close()
    os._exit(0)  # the sniffer thread blocks in recvmsg


if __name__ == "__main__":
    asyncio.run(main())
