#!/usr/bin/env python3
"""testbackend.py - an HTTP/1.1 backend that overloads the way a real one does.

At most C requests are served at once, each for the base service time; the
rest wait in a FIFO queue for a free worker (--model queue, the default), so
a request's latency is the base while no more than C are in flight and grows
by one base per C queued requests beyond that: the queue of a saturated
server. --model share instead serves every request at once and stretches each
one's service time with the load when it starts:
base * (1 + k * max(0, inflight - C)).

Capacity is C / base requests per second. Latency is measured from the end
of a request's headers to the end of its response, which is what a client
and sluice's TC signals see (plus the network).

A switch makes the backend answer 503 at once (no queue, no service time),
until it is switched back:
  - a file: while --fail-file PATH exists
  - a control URL: GET /control/fail?secs=N (N seconds; 0 or none: until
    /control/ok), GET /control/ok; GET /control/stats answers the totals
  - signals: SIGUSR1 fails for --fail-secs, SIGUSR2 ends it
Control requests bypass the queue and are not counted as requests.

Every second it appends one line to --log (default stderr), tab-separated:
  time inflight queued completed failed_503 accepted p50_ms p99_ms failing
(time in Unix seconds; completed, failed_503 and accepted over that second;
p50/p99 of the latencies of the requests completed in it, -1 for none).
--stats FILE is rewritten atomically each second and at exit with the
totals: {"accepted", "requests", "completed", "failed_503", "write_errors",
"max_inflight"}.
It runs until SIGTERM/SIGINT or --max-seconds (default 600), and serves at
most --max-conns connections at once (more are closed at accept).
"""
import argparse
import asyncio
import json
import os
import signal
import sys
import time

BODY = b"ok\n"


def pct(vals, p):
    if not vals:
        return -1
    vals = sorted(vals)
    return round(vals[min(len(vals) - 1, int(len(vals) * p))] * 1000, 3)


class Backend:
    def __init__(self, a):
        self.a = a
        self.workers = asyncio.Semaphore(a.capacity)
        self.inflight = 0  # requests read and not yet answered, queued ones too
        self.queued = 0
        self.conns = 0
        self.fail_until = None  # monotonic deadline; inf: until switched back
        self.totals = {"accepted": 0, "requests": 0, "completed": 0, "failed_503": 0,
                       "write_errors": 0, "refused_conns": 0, "max_inflight": 0}
        self.sec = {"completed": 0, "failed_503": 0, "accepted": 0}
        self.lat = []

    def failing(self):
        if self.a.fail_file and os.path.exists(self.a.fail_file):
            return True
        return self.fail_until is not None and time.monotonic() < self.fail_until

    def fail(self, secs):
        self.fail_until = time.monotonic() + secs if secs > 0 else float("inf")

    def response(self, status, body, close):
        reason = {200: b"OK", 503: b"Service Unavailable", 404: b"Not Found"}[status]
        conn = b"close" if close else b"keep-alive"
        return (b"HTTP/1.1 %d %s\r\nContent-Length: %d\r\nContent-Type: text/plain\r\n"
                b"Connection: %s\r\n\r\n" % (status, reason, len(body), conn)) + body

    def control(self, path):
        if path.startswith("/control/fail"):
            secs = 0.0
            if "secs=" in path:
                secs = float(path.split("secs=", 1)[1].split("&")[0])
            self.fail(secs)
            return 200, b"failing\n"
        if path == "/control/ok":
            self.fail_until = None
            return 200, b"ok\n"
        if path == "/control/stats":
            return 200, (json.dumps(self.totals) + "\n").encode()
        return 404, b"unknown control\n"

    async def serve_one(self):
        """One request's service: the queue, then the base time."""
        a = self.a
        if a.model == "share":
            extra = max(0, self.inflight - a.capacity)
            await asyncio.sleep(a.base * (1 + a.k * extra))
            return
        self.queued += 1
        try:
            await self.workers.acquire()
        finally:
            self.queued -= 1
        try:
            await asyncio.sleep(a.base)
        finally:
            self.workers.release()

    async def handle(self, reader, writer):
        if self.conns >= self.a.max_conns:
            self.totals["refused_conns"] += 1
            writer.transport.abort()
            return
        self.conns += 1
        self.totals["accepted"] += 1
        self.sec["accepted"] += 1
        try:
            while True:
                try:
                    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"),
                                                  self.a.idle_timeout)
                except (asyncio.TimeoutError, asyncio.IncompleteReadError,
                        asyncio.LimitOverrunError, OSError):
                    return
                t0 = time.monotonic()
                line = head.split(b"\r\n", 1)[0].decode("latin-1").split()
                path = line[1] if len(line) > 1 else "/"
                client_close = b"connection: close" in head.lower()
                close = self.a.close or client_close
                if path.startswith("/control/"):
                    status, body = self.control(path)
                    writer.write(self.response(status, body, close))
                    await writer.drain()
                    if close:
                        return
                    continue
                self.totals["requests"] += 1
                if self.failing():
                    status = 503
                else:
                    status = 200
                    self.inflight += 1
                    self.totals["max_inflight"] = max(self.totals["max_inflight"],
                                                      self.inflight)
                    try:
                        await self.serve_one()
                    finally:
                        self.inflight -= 1
                try:
                    writer.write(self.response(status, BODY, close))
                    await writer.drain()
                except OSError:
                    self.totals["write_errors"] += 1
                    return
                if status == 503:
                    self.totals["failed_503"] += 1
                    self.sec["failed_503"] += 1
                else:
                    self.totals["completed"] += 1
                    self.sec["completed"] += 1
                    self.lat.append(time.monotonic() - t0)
                if close:
                    return
        finally:
            self.conns -= 1
            try:
                writer.close()
            except OSError:
                pass

    def write_stats(self):
        if not self.a.stats:
            return
        tmp = self.a.stats + ".tmp"
        with open(tmp, "w") as f:
            json.dump(self.totals, f)
        os.replace(tmp, self.a.stats)

    def log_second(self, out):
        lat, self.lat = self.lat, []
        s, self.sec = self.sec, {"completed": 0, "failed_503": 0, "accepted": 0}
        out.write("%.3f\t%d\t%d\t%d\t%d\t%d\t%s\t%s\t%d\n" % (
            time.time(), self.inflight, self.queued, s["completed"], s["failed_503"],
            s["accepted"], pct(lat, 0.5), pct(lat, 0.99), self.failing()))
        out.flush()
        self.write_stats()


async def main(a):
    be = Backend(a)
    out = open(a.log, "a") if a.log else sys.stderr
    out.write("# time\tinflight\tqueued\tcompleted\tfailed_503\taccepted\tp50_ms\tp99_ms\tfailing\n")
    out.flush()
    hosts = a.listen.split(",")
    server = await asyncio.start_server(be.handle, host=hosts, port=a.port,
                                        backlog=a.backlog, reuse_address=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    loop.add_signal_handler(signal.SIGUSR1, be.fail, a.fail_secs)
    loop.add_signal_handler(signal.SIGUSR2, lambda: setattr(be, "fail_until", None))
    if a.pidfile:
        with open(a.pidfile, "w") as f:
            f.write("%d\n" % os.getpid())
    be.write_stats()
    if a.ready:
        open(a.ready, "w").close()
    end = time.monotonic() + a.max_seconds
    tick = time.monotonic() + 1
    while not stop.is_set() and time.monotonic() < end:
        try:
            await asyncio.wait_for(stop.wait(), max(0.0, tick - time.monotonic()))
        except asyncio.TimeoutError:
            pass
        if time.monotonic() >= tick:
            be.log_second(out)
            tick += 1
            if tick < time.monotonic():  # a stalled loop: skip, don't burst
                tick = time.monotonic() + 1
    server.close()
    be.log_second(out)
    os._exit(0)  # queued handlers need not finish


def parse_args():
    p = argparse.ArgumentParser(
        description="HTTP/1.1 test backend whose latency rises steeply beyond C "
                    "requests in flight; see the module docstring for the log format.")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--listen", default="0.0.0.0,::",
                   help="comma-separated addresses (default 0.0.0.0,::)")
    p.add_argument("--capacity", "-C", type=int, default=8,
                   help="requests served at once (default 8)")
    p.add_argument("--base-ms", type=float, default=20.0,
                   help="service time of one request (default 20 ms)")
    p.add_argument("--model", choices=("queue", "share"), default="queue",
                   help="queue: C workers, the rest wait (default); share: every "
                        "request served at once, slowed by k per request over C")
    p.add_argument("-k", type=float, default=1.0,
                   help="share model: slowdown per request over C (default 1)")
    p.add_argument("--close", action="store_true",
                   help="one request per connection (default: keep-alive)")
    p.add_argument("--fail-file", help="answer 503 while this file exists")
    p.add_argument("--fail-secs", type=float, default=10.0,
                   help="how long SIGUSR1 makes it fail (default 10 s; 0: until SIGUSR2)")
    p.add_argument("--log", help="append the per-second log here (default stderr)")
    p.add_argument("--stats", help="rewrite these totals (JSON) every second")
    p.add_argument("--ready", help="create this file once listening")
    p.add_argument("--pidfile")
    p.add_argument("--max-seconds", type=float, default=600.0)
    p.add_argument("--max-conns", type=int, default=4096,
                   help="connections served at once (default 4096)")
    p.add_argument("--backlog", type=int, default=1024)
    p.add_argument("--idle-timeout", type=float, default=30.0,
                   help="close a connection idle this long (default 30 s)")
    a = p.parse_args()
    if a.capacity < 1 or a.base_ms <= 0:
        p.error("--capacity must be >= 1 and --base-ms > 0")
    a.base = a.base_ms / 1000
    return a


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
