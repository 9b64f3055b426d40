#!/usr/bin/env python3
"""tcpclient.py - the e2e suites' TCP clients, driven one command at a time.

Reads commands on stdin, one a line, and answers each with one JSON line on
stdout once it is done. Connections that `open` made stay open (held, per
source address) across commands until `close` or `reset` ends them. Every
socket is bound to the given source address, so the backend sees one client
per address. Counts are the client's own: a connect that timed out or was
refused is a failure, whatever sluice says.

  open SRC DST PORT N TIMEOUT
      N connects at once; the ones that succeed within TIMEOUT seconds are held
      -> {"ok": n, "failed": n}
  close SRC N     N held connections of SRC end with a FIN; each waits (2 s at
                  most) for the server's FIN, so the connection is over on both
                  sides when the answer comes  -> {"closed": n}
  reset SRC N     N held connections of SRC end with a RST (SO_LINGER 0)
                  -> {"reset": n}
  ping SRC        one HTTP request on each held connection of SRC (they stay
                  held)  -> {"ok": n, "failed": n}
  held            -> {"SRC": n, ...}
  rate SRC DST PORT SECONDS CONC TIMEOUT
      for SECONDS, CONC workers each connect (TIMEOUT each, shorter than the
      first SYN retransmission at 1 s: one attempt is one SYN) and close at
      once; -> {"ok": n, "failed": n}
  churn SRC DST PORT N CONC TIMEOUT
      N short connections, CONC at a time, in turn: an HTTP request answered
      and closed with FINs; a connect reset by the client (SO_LINGER 0); a
      connect abandoned mid-handshake (SYN sent, socket closed at once)
      -> {"ok": n, "failed": n, "fin": n, "rst": n, "abandoned": n}
  http SRC DST PORT CONNS REQS CONC
      CONNS connections, CONC at a time, each sending REQS requests in turn
      (keep-alive); times each request to the first byte of its answer
      -> {"requests": n, "responses": n, "reset": n, "failed": n,
          "status": {"200": n}, "p50_ms": x, "p90_ms": x}
  quit
"""
import asyncio
import json
import socket
import struct
import sys
import time

LINGER_RST = struct.pack("ii", 1, 0)
REQUEST = b"GET / HTTP/1.1\r\nHost: backend\r\n\r\n"
held = {}


def family(addr):
    return socket.AF_INET6 if ":" in addr else socket.AF_INET


async def connect(src, dst, port, timeout):
    """A connected (reader, writer), or None."""
    try:
        return await asyncio.wait_for(
            asyncio.open_connection(dst, port, local_addr=(src, 0)), timeout)
    except (asyncio.TimeoutError, OSError):
        return None


def rst(writer):
    sock = writer.get_extra_info("socket")
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_RST)
    except OSError:
        pass
    writer.transport.abort()


async def fin(reader, writer):
    """Ends with a FIN and waits for the server's."""
    try:
        writer.write_eof()
        await asyncio.wait_for(reader.read(), 2)
    except (asyncio.TimeoutError, OSError):
        pass
    writer.close()


async def cmd_open(src, dst, port, n, timeout):
    conns = await asyncio.gather(*(connect(src, dst, int(port), float(timeout))
                                   for _ in range(int(n))))
    ok = [c for c in conns if c]
    held.setdefault(src, []).extend(ok)
    return {"ok": len(ok), "failed": len(conns) - len(ok)}


async def cmd_close(src, n):
    pool = held.get(src, [])
    take, held[src] = pool[:int(n)], pool[int(n):]
    await asyncio.gather(*(fin(r, w) for r, w in take))
    return {"closed": len(take)}


async def cmd_reset(src, n):
    pool = held.get(src, [])
    take, held[src] = pool[:int(n)], pool[int(n):]
    for _, w in take:
        rst(w)
    await asyncio.sleep(0.05)
    return {"reset": len(take)}


async def cmd_ping(src):
    res = {"ok": 0, "failed": 0}

    async def one(r, w):
        try:
            w.write(REQUEST)
            await asyncio.wait_for(r.readuntil(b"ok\n"), 2)
            res["ok"] += 1
        except (asyncio.TimeoutError, asyncio.IncompleteReadError, OSError):
            res["failed"] += 1

    await asyncio.gather(*(one(r, w) for r, w in held.get(src, [])))
    return res


async def cmd_rate(src, dst, port, secs, conc, timeout):
    res = {"ok": 0, "failed": 0}
    end = time.monotonic() + float(secs)

    async def worker():
        while time.monotonic() < end:
            c = await connect(src, dst, int(port), float(timeout))
            if c:
                res["ok"] += 1
                rst(c[1])
            else:
                res["failed"] += 1

    await asyncio.gather(*(worker() for _ in range(int(conc))))
    return res


def abandon(src, dst, port):
    """Sends a SYN and closes the socket before the handshake completes."""
    s = socket.socket(family(dst), socket.SOCK_STREAM)
    s.bind((src, 0))
    s.setblocking(False)
    try:
        s.connect((dst, port))
    except BlockingIOError:
        pass
    s.close()


async def cmd_churn(src, dst, port, n, conc, timeout):
    port, n = int(port), int(n)
    res = {"ok": 0, "failed": 0, "fin": 0, "rst": 0, "abandoned": 0}
    sem = asyncio.Semaphore(int(conc))

    async def one(i):
        async with sem:
            if i % 3 == 2:
                abandon(src, dst, port)
                res["abandoned"] += 1
                await asyncio.sleep(0.001)
                return
            c = await connect(src, dst, port, float(timeout))
            if not c:
                res["failed"] += 1
                return
            res["ok"] += 1
            r, w = c
            if i % 3 == 1:
                rst(w)
                res["rst"] += 1
                return
            try:
                w.write(REQUEST)
                await asyncio.wait_for(r.readuntil(b"ok\n"), 2)
            except (asyncio.TimeoutError, asyncio.IncompleteReadError, OSError):
                pass
            await fin(r, w)
            res["fin"] += 1

    await asyncio.gather(*(one(i) for i in range(n)))
    return res


def pct(vals, p):
    if not vals:
        return -1
    vals = sorted(vals)
    return round(vals[min(len(vals) - 1, int(len(vals) * p))] * 1000, 3)


async def cmd_http(src, dst, port, conns, reqs, conc):
    res = {"requests": 0, "responses": 0, "reset": 0, "failed": 0, "status": {}}
    times = []
    sem = asyncio.Semaphore(int(conc))

    async def one():
        async with sem:
            c = await connect(src, dst, int(port), 2)
            if not c:
                res["failed"] += 1
                return
            r, w = c
            for _ in range(int(reqs)):
                t0 = time.monotonic()
                res["requests"] += 1
                try:
                    w.write(REQUEST)
                    line = await asyncio.wait_for(r.readline(), 5)
                    if not line:
                        res["reset"] += 1
                        break
                    times.append(time.monotonic() - t0)
                    res["responses"] += 1
                    code = line.split()[1].decode()
                    res["status"][code] = res["status"].get(code, 0) + 1
                    await asyncio.wait_for(r.readuntil(b"ok\n"), 5)
                except ConnectionResetError:
                    res["reset"] += 1
                    w.transport.abort()
                    return
                except (asyncio.TimeoutError, asyncio.IncompleteReadError, OSError):
                    res["reset"] += 1
                    w.transport.abort()
                    return
            await fin(r, w)

    await asyncio.gather(*(one() for _ in range(int(conns))))
    res["p50_ms"], res["p90_ms"] = pct(times, 0.5), pct(times, 0.9)
    return res


COMMANDS = {"open": cmd_open, "close": cmd_close, "reset": cmd_reset, "ping": cmd_ping, "rate": cmd_rate,
            "churn": cmd_churn, "http": cmd_http}


async def main():
    loop = asyncio.get_running_loop()
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        words = line.split()
        if not line or words == ["quit"]:
            break
        if not words:
            continue
        if words[0] == "held":
            out = {s: len(c) for s, c in held.items()}
        elif words[0] in COMMANDS:
            try:
                out = await COMMANDS[words[0]](*words[1:])
            except TypeError as e:
                out = {"error": str(e)}
        else:
            out = {"error": "unknown command " + words[0]}
        print(json.dumps(out), flush=True)
    for pool in held.values():
        for _, w in pool:
            w.transport.abort()


if __name__ == "__main__":
    asyncio.run(main())
