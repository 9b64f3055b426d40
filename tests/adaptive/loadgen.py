#!/usr/bin/env python3
"""loadgen.py - an open-loop HTTP/1.1 load generator, bounded in count and time.

Starts requests at an offered rate (constant, or a schedule of steps) whatever
the backend does, the way independent clients arrive, with at most
--concurrency outstanding: an arrival over that is counted as skipped, not
queued. Source addresses are used in turn.

  --mode conn       (default) each request on a new connection: connect (one
                    SYN: --connect-timeout under the 1 s retransmission), send
                    "Connection: close", read the answer; admitted = connected
  --mode keepalive  up to --concurrency persistent connections, one request at
                    a time each; admitted = answered

Writes one CSV row per second (each event counted in the second it happened;
a row is written once its second is over):
  t,time,offered,admitted,responses,ok,http_5xx,errors,skipped,p50_ms,p99_ms,inflight
t counts seconds from the start, time is Unix time at the start of the second;
p50/p99 of the response latencies (request sent to status line) that ended in
the second, -1 for none; inflight the most outstanding at once. errors: connects that failed or timed out, resets and
response timeouts. At the end prints the totals as one JSON line.

Every loop is bounded: the run ends after --duration seconds (at most 600) or
--max-requests arrivals, then waits at most the timeouts for what is
outstanding.
"""
import argparse
import asyncio
import json
import math
import socket
import sys
import time

IP_BIND_ADDRESS_NO_PORT = 24


def pct(vals, p):
    if not vals:
        return -1
    vals = sorted(vals)
    return round(vals[min(len(vals) - 1, int(len(vals) * p))] * 1000, 3)


def parse_schedule(text):
    """ "0:100,10:400,40:100" -> [(0, 100), (10, 400), (40, 100)] """
    steps = []
    for part in text.split(","):
        t, r = part.split(":")
        steps.append((float(t), float(r)))
    steps.sort()
    if not steps or steps[0][0] != 0:
        raise ValueError("the schedule must start at 0")
    return steps


FIELDS = ("offered", "admitted", "responses", "ok", "http_5xx", "errors", "skipped")


class Gen:
    def __init__(self, a):
        self.a = a
        self.start = time.monotonic()
        self.wall0 = time.time()
        self.rows = {}
        self.lat = {}
        self.peak = {}  # most requests outstanding, per second
        self.totals = dict.fromkeys(FIELDS, 0)
        self.inflight = 0
        self.idle = []  # keep-alive connections waiting for a request
        self.nconns = 0
        self.next_src = 0
        self.req = (b"GET %s HTTP/1.1\r\nHost: %s\r\n%s\r\n" % (
            a.path.encode(), a.dst.encode(),
            b"Connection: close\r\n" if a.mode == "conn" else b""))

    def sec(self):
        return int(time.monotonic() - self.start)

    def count(self, field, n=1):
        s = self.sec()
        row = self.rows.setdefault(s, dict.fromkeys(FIELDS, 0))
        row[field] += n
        self.totals[field] += n

    def latency(self, v):
        self.lat.setdefault(self.sec(), []).append(v)

    def src(self):
        if not self.a.src:
            return None
        s = self.a.src[self.next_src % len(self.a.src)]
        self.next_src += 1
        return s

    async def connect(self):
        """(reader, writer) or None; one SYN, --connect-timeout at most."""
        a = self.a
        fam = socket.AF_INET6 if ":" in a.dst else socket.AF_INET
        s = socket.socket(fam, socket.SOCK_STREAM)
        try:
            src = self.src()
            if src:
                # The port is chosen at connect, per destination: many more
                # short connections per source before ports run out.
                if fam == socket.AF_INET:
                    s.setsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1)
                s.bind((src, 0))
            s.setblocking(False)
            loop = asyncio.get_running_loop()
            await asyncio.wait_for(loop.sock_connect(s, (a.dst, a.port)), a.connect_timeout)
            return await asyncio.open_connection(sock=s)
        except (asyncio.TimeoutError, OSError):
            s.close()
            return None

    async def exchange(self, r, w):
        """One request and its answer: True if the connection may be reused."""
        t0 = time.monotonic()
        try:
            w.write(self.req)
            line = await asyncio.wait_for(r.readline(), self.a.timeout)
            if not line:
                self.count("errors")
                return False
            self.latency(time.monotonic() - t0)
            self.count("responses")
            code = int(line.split()[1])
            if 200 <= code < 300:
                self.count("ok")
            elif code >= 500:
                self.count("http_5xx")
            if self.a.mode == "keepalive":
                self.count("admitted")
            head = await asyncio.wait_for(r.readuntil(b"\r\n\r\n"), self.a.timeout)
            length = 0
            for h in head.split(b"\r\n"):
                if h.lower().startswith(b"content-length:"):
                    length = int(h.split(b":")[1])
            if length:
                await asyncio.wait_for(r.readexactly(length), self.a.timeout)
            return b"connection: close" not in head.lower()
        except (asyncio.TimeoutError, asyncio.IncompleteReadError,
                asyncio.LimitOverrunError, OSError, ValueError, IndexError):
            self.count("errors")
            return False

    async def one(self):
        self.inflight += 1
        s = self.sec()
        self.peak[s] = max(self.peak.get(s, 0), self.inflight)
        try:
            if self.a.mode == "conn":
                c = await self.connect()
                if not c:
                    self.count("errors")
                    return
                self.count("admitted")
                r, w = c
                await self.exchange(r, w)
                w.transport.abort()  # the server closed first: no TIME_WAIT here
                return
            if self.idle:
                r, w = self.idle.pop()
            else:
                self.nconns += 1
                c = await self.connect()
                if not c:
                    self.nconns -= 1
                    self.count("errors")
                    return
                r, w = c
            if await self.exchange(r, w):
                self.idle.append((r, w))
            else:
                self.nconns -= 1
                w.transport.abort()
        finally:
            self.inflight -= 1

    def flush(self, out, upto):
        """Writes the rows of every second before upto."""
        for s in range(self.written, upto):
            row = self.rows.pop(s, dict.fromkeys(FIELDS, 0))
            lat = self.lat.pop(s, [])
            out.write("%d,%.3f,%s,%s,%s,%d\n" % (
                s, self.wall0 + s, ",".join(str(row[f]) for f in FIELDS),
                pct(lat, 0.5), pct(lat, 0.99), self.peak.pop(s, 0)))
        out.flush()
        self.written = max(self.written, upto)

    async def run(self, out):
        a = self.a
        out.write("t,time," + ",".join(FIELDS) + ",p50_ms,p99_ms,inflight\n")
        self.written = 0
        tasks = set()
        sent = 0.0  # arrivals due so far (the integral of the rate)
        started = 0
        last = self.start
        end = self.start + a.duration
        done = False
        while started < a.max_requests and not done:
            now = time.monotonic()
            if now >= end:  # the arrivals due before the end, not after
                now, done = end, True
            rate = a.schedule[0][1]
            for t, r in a.schedule:
                if now - self.start >= t:
                    rate = r
            sent += rate * (now - last)
            last = now
            # Arrival k is due once the integral passes k: the first at the
            # start, and exactly rate * duration of them in a constant run.
            while started < math.ceil(sent - 1e-9) and started < a.max_requests:
                started += 1
                self.count("offered")
                if self.inflight >= a.concurrency:
                    self.count("skipped")
                    continue
                task = asyncio.ensure_future(self.one())
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            self.flush(out, self.sec())
            if not done:
                await asyncio.sleep(a.tick)
        # What is outstanding ends within its timeouts; then it is cut.
        if tasks:
            await asyncio.wait(tasks, timeout=a.connect_timeout + 2 * a.timeout + 1)
        for t in tasks:
            t.cancel()
        for _, w in self.idle:
            w.transport.abort()
        self.flush(out, self.sec() + 1)


def parse_args():
    p = argparse.ArgumentParser(
        description="Open-loop HTTP/1.1 load generator with a per-second CSV "
                    "(see the module docstring for the columns).")
    p.add_argument("--dst", required=True, help="backend address")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--path", default="/")
    p.add_argument("--src", default="",
                   help="comma-separated source addresses, used in turn")
    p.add_argument("--rate", type=float, help="arrivals per second (constant)")
    p.add_argument("--schedule",
                   help="steps T:RATE,... (seconds from the start), e.g. 0:50,10:400,40:50")
    p.add_argument("--duration", type=float, required=True, help="seconds (at most 600)")
    p.add_argument("--max-requests", type=int, default=1000000)
    p.add_argument("--concurrency", type=int, default=512,
                   help="outstanding requests at most; arrivals over it are skipped "
                        "(keepalive: also the number of connections)")
    p.add_argument("--mode", choices=("conn", "keepalive"), default="conn")
    p.add_argument("--connect-timeout", type=float, default=0.9)
    p.add_argument("--timeout", type=float, default=5.0, help="response timeout (s)")
    p.add_argument("--tick", type=float, default=0.005, help="pacing step (s)")
    p.add_argument("--csv", help="per-second CSV file (default stdout)")
    a = p.parse_args()
    if a.duration <= 0 or a.duration > 600:
        p.error("--duration must be in (0, 600]")
    if (a.rate is None) == (a.schedule is None):
        p.error("give one of --rate and --schedule")
    try:
        a.schedule = parse_schedule(a.schedule) if a.schedule else [(0.0, a.rate)]
    except ValueError as e:
        p.error("--schedule: %s" % e)
    a.src = [s for s in a.src.split(",") if s]
    return a


def main():
    a = parse_args()
    out = open(a.csv, "w") if a.csv else sys.stdout
    g = Gen(a)
    asyncio.run(g.run(out))
    if out is not sys.stdout:
        out.close()
    tot = dict(g.totals)
    tot["seconds"] = round(time.monotonic() - g.start, 3)
    print(json.dumps(tot), file=sys.stderr if out is sys.stdout else sys.stdout, flush=True)


if __name__ == "__main__":
    main()
