#!/usr/bin/env python3
"""demo_l7.py - the clients of `make demo`'s second act (demo/demo.sh).

Each client is a thread with its own source address and API key that sends
paced chat completions through sluice-l7 on one keep-alive connection and
tallies what it gets: 200s, 429s, other statuses, and connection failures
(connect or read timeouts, resets: what a client sees once XDP drops its
packets). Every --every seconds it prints one line of per-client counts for
that interval; at the end, the totals, and with --summary FILE the totals as
JSON for the demo's checks.

  demo_l7.py --target 198.18.1.1:8080 --duration 16 --every 2 \\
      --client pro,198.18.1.10,sk-demo-pro,5,stream \\
      --client free,198.18.1.11,sk-demo-free,0.5,json \\
      --client abuser,198.18.1.66,sk-demo-abuse,25,json

With --watch-log FILE --watch-match TEXT, lines of FILE written during the
run that contain TEXT are printed as they come, among the tally lines (the
demo shows sluice-l7's ban when it happens).

A client spec is NAME,SOURCE_ADDRESS,KEY,REQUESTS_PER_SECOND,json|stream.
Pacing does not catch up: a client held up by a timeout sends its next
request on schedule from then, not a burst of the missed ones.
"""
import argparse
import json
import socket
import sys
import threading
import time

CONNECT_TIMEOUT = 0.5  # the demo's network is one veth: a SYN unanswered this long was dropped
IO_TIMEOUT = 2.0       # the mock answers in tens of ms
MAX_RESPONSE = 1 << 20  # refuse to buffer more than this per response
out_lock = threading.Lock()


def say(line):
    with out_lock:
        print(line, flush=True)


class Failure(Exception):
    """The connection failed (timeout, reset, refused, EOF mid-response)."""


class Client:
    KINDS = ("200", "429", "other", "fail")

    def __init__(self, spec, target):
        parts = spec.split(",")
        if len(parts) != 5 or parts[4] not in ("json", "stream"):
            raise ValueError("client spec %r: want NAME,SOURCE,KEY,RATE,json|stream" % spec)
        self.name, self.src, self.key = parts[0], parts[1], parts[2]
        self.rate = float(parts[3])
        if not 0 < self.rate <= 1000:
            raise ValueError("client %s: rate %s outside (0, 1000]" % (self.name, parts[3]))
        self.stream = parts[4] == "stream"
        self.target = target
        self.sock = None
        self.buf = b""
        self.lock = threading.Lock()
        self.counts = dict.fromkeys(self.KINDS, 0)
        self.first_fail = None
        self.first_fail_why = ""
        body = {"model": "demo", "max_tokens": 32,
                "messages": [{"role": "user", "content": "Say something short, please."}]}
        if self.stream:
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
        payload = json.dumps(body).encode()
        self.request = (("POST /v1/chat/completions HTTP/1.1\r\nHost: demo\r\n"
                         "Authorization: Bearer %s\r\nContent-Type: application/json\r\n"
                         "Content-Length: %d\r\n\r\n") % (self.key, len(payload))).encode() + payload

    # --- one HTTP/1.1 exchange on a keep-alive connection ---

    def _connect(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.bind((self.src, 0))
            s.settimeout(CONNECT_TIMEOUT)
            s.connect(self.target)
            s.settimeout(IO_TIMEOUT)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            s.close()
            raise
        self.sock, self.buf = s, b""

    def _close(self):
        if self.sock:
            self.sock.close()
        self.sock, self.buf = None, b""

    def _fill(self):
        d = self.sock.recv(65536)
        if not d:
            raise Failure("connection closed by the proxy")
        self.buf += d
        if len(self.buf) > MAX_RESPONSE:
            raise Failure("response over %d bytes" % MAX_RESPONSE)

    def _line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _take(self, n):
        while len(self.buf) < n:
            self._fill()
        d, self.buf = self.buf[:n], self.buf[n:]
        return d

    def _exchange(self):
        """Sends one request, reads its response; returns (status, keep_alive)."""
        if self.sock is None:
            self._connect()
        self.sock.sendall(self.request)
        status_line = self._line().decode("latin-1")
        parts = status_line.split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
            raise Failure("bad status line %r" % status_line[:60])
        status = int(parts[1])
        length, chunked, close = 0, False, False
        while True:
            line = self._line().decode("latin-1")
            if not line:
                break
            name, _, value = line.partition(":")
            name, value = name.strip().lower(), value.strip().lower()
            if name == "content-length":
                length = int(value)
            elif name == "transfer-encoding":
                chunked = "chunked" in value
            elif name == "connection":
                close = "close" in value
        if chunked:
            while True:
                size = int(self._line().split(b";")[0], 16)
                self._take(size + 2)
                if size == 0:
                    break
        else:
            self._take(length)
        return status, not close

    def run(self, t0, duration, stop):
        interval = 1.0 / self.rate
        nxt = t0
        while not stop.is_set():
            now = time.monotonic()
            if now - t0 >= duration:
                break
            if now < nxt:
                stop.wait(min(nxt - now, duration - (now - t0)))
                continue
            nxt = max(nxt + interval, now)
            try:
                status, keep = self._exchange()
                kind = "200" if status == 200 else "429" if status == 429 else "other"
                if not keep:
                    self._close()
            except (OSError, Failure, ValueError) as e:
                self._close()
                kind = "fail"
                why = ("timed out" if isinstance(e, socket.timeout) else str(e) or type(e).__name__)
                with self.lock:
                    if self.first_fail is None:
                        self.first_fail, self.first_fail_why = time.monotonic() - t0, why
            with self.lock:
                self.counts[kind] += 1
        self._close()

    def snapshot(self):
        with self.lock:
            return dict(self.counts), self.first_fail, self.first_fail_why


def watch(path, text, stop):
    """Prints the lines appended to path that contain text, until stop."""
    try:
        f = open(path, "r", errors="replace")
    except OSError as e:
        say("  (cannot watch %s: %s)" % (path, e.strerror))
        return
    with f:
        f.seek(0, 2)
        part = ""
        while True:
            chunk = f.read(65536)
            if chunk:
                part += chunk
                *lines, part = part.split("\n")
                for line in lines:
                    if text in line:
                        say("    log: " + line)
                part = part[-4096:]  # a line without its end is bounded
            elif stop.wait(0.1):
                return


def parse_target(s):
    host, sep, port = s.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError("--target %r: want ADDR:PORT" % s)
    return host, int(port)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--target", required=True, help="sluice-l7's ADDR:PORT")
    ap.add_argument("--duration", type=float, default=16, help="seconds of traffic (16)")
    ap.add_argument("--every", type=float, default=2, help="seconds between tally lines (2)")
    ap.add_argument("--client", action="append", required=True,
                    help="NAME,SOURCE,KEY,RATE,json|stream (repeatable)")
    ap.add_argument("--summary", help="write the per-client totals here as JSON")
    ap.add_argument("--watch-log", help="print this file's new lines that contain --watch-match")
    ap.add_argument("--watch-match", default="", help="the text --watch-log looks for")
    a = ap.parse_args()
    if not 0 < a.duration <= 300 or not 0 < a.every <= a.duration:
        ap.error("want 0 < --every <= --duration <= 300")
    try:
        target = parse_target(a.target)
        clients = [Client(c, target) for c in a.client]
    except ValueError as e:
        ap.error(str(e))

    head1 = "  %-9s" % "seconds" + "".join("  %-21s" % ("%s %s" % (c.name, c.src)) for c in clients)
    head2 = "  %-9s" % "" + "".join("  %5s %5s %5s    " % ("200", "429", "fail") for c in clients)
    say(head1.rstrip())
    say(head2.rstrip())

    stop = threading.Event()
    t0 = time.monotonic()
    threads = [threading.Thread(target=c.run, args=(t0, a.duration, stop), daemon=True)
               for c in clients]
    if a.watch_log:
        threads.append(threading.Thread(target=watch, args=(a.watch_log, a.watch_match, stop),
                                        daemon=True))
    for t in threads:
        t.start()
    last = [c.snapshot()[0] for c in clients]
    reported = [False] * len(clients)
    tick = 1
    while True:
        end = min(tick * a.every, a.duration)
        stop.wait(max(0.0, t0 + end - time.monotonic()))
        snaps = [c.snapshot() for c in clients]
        row = "  %3.0f-%-3.0f s" % (end - a.every if end - a.every > 0 else 0, end)
        for i, (counts, _, _) in enumerate(snaps):
            d = {k: counts[k] - last[i][k] for k in Client.KINDS}
            row += "  %5d %5d %5d    " % (d["200"], d["429"], d["fail"])
            last[i] = counts
        say(row.rstrip())
        for i, (counts, ff, why) in enumerate(snaps):
            if ff is not None and not reported[i]:
                reported[i] = True
                say("    -> %s: first connection failure at %.1f s (%s)"
                    % (clients[i].name, ff, why))
        if end >= a.duration:
            break
        tick += 1
    stop.set()
    for t in threads:
        t.join(IO_TIMEOUT + CONNECT_TIMEOUT + 1)

    totals = {}
    for c in clients:
        counts, ff, why = c.snapshot()
        totals[c.name] = dict(counts, first_fail_s=ff, source=c.src)
    row = "  %-9s" % "total"
    for c in clients:
        t = totals[c.name]
        row += "  %5d %5d %5d    " % (t["200"], t["429"], t["fail"])
    say(row.rstrip())
    others = [(n, t["other"]) for n, t in totals.items() if t["other"]]
    if others:
        say("  other statuses: " + ", ".join("%s %d" % o for o in others))
    if a.summary:
        with open(a.summary, "w") as f:
            json.dump(totals, f)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # the demo was interrupted: its trap cleans up
        sys.exit(130)
