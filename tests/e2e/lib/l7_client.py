#!/usr/bin/env python3
"""l7_client.py - an HTTP/1.1 load and probe client for sluice-l7's e2e tests.

It counts what it gets itself (statuses, usage tokens, SSE events, timings),
so a suite can check sluice-l7 against an independent count. Raw sockets,
no library between the test and the bytes: keep-alive, pipelining and
HTTP/1.0 are exactly what is written. Results are one JSON object on stdout.

  load   paced requests per key, one keep-alive connection per key (a thread
         each): request i of a key goes out at t0 + i/rate. Per key: sent,
         statuses, first/last send times (the span T), usage tokens summed
         over the 200s.
  req    N requests on one connection, one after the other, or all in one
         write (--pipeline); every response with its status, headers, body,
         time to first byte and, for event streams, each event's arrival.
  multi  requests on their own connections, each started at its own offset
         (--spec JSON list of {"at_ms","key","headers","body","path"}):
         send and completion times, statuses. For the priority queue.
"""
import argparse
import json
import socket
import sys
import threading
import time

IO_TIMEOUT = 15.0   # a socket read that waits longer is a failure
MAX_BODY = 8 << 20  # refuse to buffer more than this per response


class HttpError(Exception):
    pass


class Conn:
    """One client connection with a read buffer."""

    def __init__(self, host, port):
        self.host, self.port = host, port
        self.sock = socket.create_connection((host, port), timeout=IO_TIMEOUT)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.eof = False

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def _fill(self):
        if self.eof:
            return False
        d = self.sock.recv(65536)
        if not d:
            self.eof = True
            return False
        self.buf += d
        if len(self.buf) > MAX_BODY:
            raise HttpError("response larger than %d bytes" % MAX_BODY)
        return True

    def _line(self):
        while b"\r\n" not in self.buf:
            if not self._fill():
                raise HttpError("connection closed in a line")
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _take(self, n):
        while len(self.buf) < n:
            if not self._fill():
                raise HttpError("connection closed in a body (%d of %d bytes)" %
                                (len(self.buf), n))
        d, self.buf = self.buf[:n], self.buf[n:]
        return d

    def read_response(self, t_sent, is_head=False):
        """A response: dict with status, headers (lower-case names, last
        value wins), body (text), ttfb and total seconds from t_sent, and
        the arrival time of every SSE data event (seconds from t_sent)."""
        while not self.buf:
            if not self._fill():
                raise HttpError("connection closed before a response")
        t_first = time.monotonic()
        status_line = self._line().decode("latin-1")
        parts = status_line.split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1."):
            raise HttpError("bad status line %r" % status_line)
        version, status = parts[0], int(parts[1])
        headers = {}
        while True:
            line = self._line().decode("latin-1")
            if not line:
                break
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        events = []
        body = b""
        te = headers.get("transfer-encoding", "").lower()
        if is_head or status in (204, 304) or 100 <= status < 200:
            pass
        elif te == "chunked":
            pending = b""
            while True:
                size = int(self._line().split(b";")[0], 16)
                if size == 0:
                    while self._line():
                        pass
                    break
                chunk = self._take(size)
                self._take(2)
                body += chunk
                pending += chunk
                # SSE events end at a blank line; stamp each on arrival.
                while b"\n\n" in pending:
                    ev, pending = pending.split(b"\n\n", 1)
                    if ev.startswith(b"data:"):
                        events.append(time.monotonic() - t_sent)
        elif "content-length" in headers:
            body = self._take(int(headers["content-length"]))
        else:
            while self._fill():
                pass
            body, self.buf = self.buf, b""
            for ev in body.split(b"\n\n"):
                if ev.startswith(b"data:"):
                    events.append(time.monotonic() - t_sent)
        t_end = time.monotonic()
        conn_hdr = headers.get("connection", "").lower()
        if version == "HTTP/1.0":
            closes = conn_hdr != "keep-alive"
        else:
            closes = conn_hdr == "close"
        return {
            "status": status, "version": version, "headers": headers,
            "body": body.decode("utf-8", "replace"),
            "ttfb": t_first - t_sent, "total": t_end - t_sent,
            "events": events, "closes": closes,
        }


def build_request(method, path, host, key, key_header, body, extra, version="1.1",
                  keep_alive=None):
    lines = ["%s %s HTTP/%s" % (method, path, version), "Host: %s" % host]
    if key:
        if key_header == "authorization":
            lines.append("Authorization: Bearer %s" % key)
        else:
            lines.append("%s: %s" % (key_header, key))
    for h in extra:
        lines.append(h)
    if keep_alive is not None:
        lines.append("Connection: %s" % ("keep-alive" if keep_alive else "close"))
    data = body.encode() if body is not None else b""
    if body is not None:
        lines.append("Content-Type: application/json")
        lines.append("Content-Length: %d" % len(data))
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + data


def usage_tokens(resp):
    """prompt + completion tokens of a 200 JSON body, or of an SSE stream's
    usage event; 0 when there is none."""
    if resp["status"] != 200:
        return 0
    text = resp["body"]
    try:
        if resp["headers"].get("content-type", "").startswith("text/event-stream"):
            total = 0
            for ev in text.split("\n\n"):
                if ev.startswith("data:") and '"usage":{' in ev:
                    u = json.loads(ev[5:])["usage"]
                    total = u["prompt_tokens"] + u["completion_tokens"]
            return total
        u = json.loads(text)["usage"]
        return u["prompt_tokens"] + u["completion_tokens"]
    except (ValueError, KeyError, TypeError):
        return 0


def split_addr(addr):
    host, _, port = addr.rpartition(":")
    return host, int(port)


# --- load ----------------------------------------------------------------------

def load_key(args, key, out, barrier):
    host, port = split_addr(args.addr)
    req = build_request(args.method, args.path, args.addr, key, args.key_header, args.body,
                        args.header)
    res = {"sent": 0, "status": {}, "usage_tokens": 0, "errors": 0, "reconnects": 0,
           "t_first": None, "t_last": None, "max_late_ms": 0.0}
    conn = None
    barrier.wait()
    t0 = time.monotonic() + 0.05
    deadline = t0 + args.duration
    i = 0
    while True:
        due = t0 + i / args.rate
        if due >= deadline or i >= args.max_requests:
            break
        now = time.monotonic()
        if due > now:
            time.sleep(due - now)
        else:
            res["max_late_ms"] = max(res["max_late_ms"], (now - due) * 1000)
        i += 1
        try:
            if conn is None:
                conn = Conn(host, port)
                res["reconnects"] += 1
            t = time.monotonic()
            conn.sock.sendall(req)
            res["sent"] += 1
            if res["t_first"] is None:
                res["t_first"] = t
            res["t_last"] = t
            r = conn.read_response(t)
        except (OSError, HttpError) as e:
            res["errors"] += 1
            res["last_error"] = str(e)
            if conn:
                conn.close()
            conn = None
            continue
        s = str(r["status"])
        res["status"][s] = res["status"].get(s, 0) + 1
        res["usage_tokens"] += usage_tokens(r)
        if r["closes"]:
            conn.close()
            conn = None
    if conn:
        conn.close()
    res["span"] = (res["t_last"] - res["t_first"]) if res["sent"] else 0.0
    res["ok"] = res["status"].get("200", 0)
    out[key] = res


def cmd_load(args):
    out = {}
    barrier = threading.Barrier(len(args.key))
    threads = [threading.Thread(target=load_key, args=(args, k, out, barrier))
               for k in args.key]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for v in out.values():
        v.pop("t_first", None)
        v.pop("t_last", None)
    json.dump(out, sys.stdout)
    print()
    return 0


# --- req -----------------------------------------------------------------------

def cmd_req(args):
    host, port = split_addr(args.addr)
    version = "1.0" if args.http10 else "1.1"
    keep = None
    if args.connection:
        keep = args.connection == "keep-alive"
    reqs = []
    paths = args.paths.split(",") if args.paths else [args.path]
    for i in range(args.count):
        reqs.append(build_request(args.method, paths[i % len(paths)], args.addr, args.key,
                                  args.key_header, args.body, args.header, version, keep))
    conn = Conn(host, port)
    resps = []
    err = None
    try:
        if args.pipeline:
            t = time.monotonic()
            conn.sock.sendall(b"".join(reqs))
            for _ in reqs:
                resps.append(conn.read_response(t, args.method == "HEAD"))
        else:
            for i, rq in enumerate(reqs):
                if i and args.gap_ms:
                    time.sleep(args.gap_ms / 1000.0)
                t = time.monotonic()
                conn.sock.sendall(rq)
                resps.append(conn.read_response(t, args.method == "HEAD"))
        # Did the server close after the last response? Wait a moment for EOF.
        closed = None
        if args.eof_wait > 0:
            conn.sock.settimeout(args.eof_wait)
            try:
                closed = not conn._fill()
            except socket.timeout:
                closed = False
            except OSError:
                closed = True
    except (OSError, HttpError) as e:
        err = str(e)
        closed = True
    conn.close()
    for r in resps:
        r["usage_tokens"] = usage_tokens(r)
    json.dump({"responses": resps, "server_closed": closed, "error": err}, sys.stdout)
    print()
    return 0


# --- multi ---------------------------------------------------------------------

def multi_one(args, spec, idx, t0, out):
    host, port = split_addr(args.addr)
    body = spec.get("body", args.body)
    req = build_request(spec.get("method", args.method), spec.get("path", args.path), args.addr,
                        spec.get("key"), args.key_header, body, spec.get("headers", []))
    res = {"i": idx, "name": spec.get("name", str(idx)), "status": None}
    delay = t0 + spec.get("at_ms", 0) / 1000.0 - time.monotonic()
    if delay > 0:
        time.sleep(delay)
    try:
        conn = Conn(host, port)
        t = time.monotonic()
        res["t_sent"] = t - t0
        conn.sock.sendall(req)
        r = conn.read_response(t)
        res["t_done"] = time.monotonic() - t0
        res["status"] = r["status"]
        res["retry_after"] = r["headers"].get("retry-after")
        res["body"] = r["body"][:300]
        conn.close()
    except (OSError, HttpError) as e:
        res["error"] = str(e)
    out[idx] = res


def cmd_multi(args):
    specs = json.loads(args.spec)
    out = [None] * len(specs)
    t0 = time.monotonic() + 0.05
    threads = [threading.Thread(target=multi_one, args=(args, s, i, t0, out))
               for i, s in enumerate(specs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    json.dump(out, sys.stdout)
    print()
    return 0


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("cmd", choices=["load", "req", "multi"])
    p.add_argument("--addr", required=True, help="HOST:PORT of the proxy")
    p.add_argument("--method", default="POST")
    p.add_argument("--path", default="/v1/chat/completions")
    p.add_argument("--body", default=None, help="request body (JSON text)")
    p.add_argument("--header", action="append", default=[], help='"Name: value" (repeat)')
    p.add_argument("--key", action="append", default=[], help="API key (load: one per thread)")
    p.add_argument("--key-header", default="authorization",
                   help="authorization (Bearer) or a header name")
    p.add_argument("--rate", type=float, default=10.0, help="load: requests/s per key")
    p.add_argument("--duration", type=float, default=1.0, help="load: seconds")
    p.add_argument("--max-requests", type=int, default=100000)
    p.add_argument("--count", type=int, default=1, help="req: requests on the connection")
    p.add_argument("--gap-ms", type=float, default=0, help="req: pause between requests")
    p.add_argument("--pipeline", action="store_true", help="req: all requests in one write")
    p.add_argument("--http10", action="store_true", help="req: HTTP/1.0 requests")
    p.add_argument("--connection", choices=["keep-alive", "close"], default=None)
    p.add_argument("--paths", default=None,
                   help="req: comma-separated targets, used in turn (instead of --path)")
    p.add_argument("--eof-wait", type=float, default=0,
                   help="req: seconds to wait for the server's close at the end (0: don't)")
    p.add_argument("--spec", default="[]", help="multi: JSON list of request specs")
    args = p.parse_args()
    if args.cmd == "load" and not args.key:
        args.key = [None]
    if args.cmd == "req":
        args.key = args.key[0] if args.key else None
    return {"load": cmd_load, "req": cmd_req, "multi": cmd_multi}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
