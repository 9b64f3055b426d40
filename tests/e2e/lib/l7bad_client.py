#!/usr/bin/env python3
"""l7bad_client.py - raw-socket HTTP/1.1 client for sluice-l7's bad-input
suites: it sends exactly the bytes it is given (no library fixes them up)
and reports what came back, parsed independently of sluice-l7's code.

  l7bad_client.py req HOST PORT EXPR [--then-sleep S] [--wait S] [--src ADDR]
      EXPR is a Python expression for the bytes to send, e.g.
      'b"GET / HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n"' or a list of such bytes,
      sent one item per write with --gap S (default 0.05 s) between them.
      The expression sees CHAT and STREAM (chat request bodies, JSON and
      streamed with usage) and post(BODY, EXTRA_HEADERS=b"", PATH=...).
      Then waits up to --wait S (default 5) for a complete response, and
      0.5 s more for the server to close the connection. Prints one JSON
      line: {"status": N or null, "headers": {lowercase: value},
      "body": text, "chunked_complete": bool or null, "closed": bool,
      "secs": seconds from the last write to the response's first byte,
      "close_secs": seconds from the last write to EOF or null,
      "error": text or null}
  l7bad_client.py garbage HOST PORT N SEED
      N connections (20 at a time), each sending 1..4096 random bytes (half
      of them with a plausible request line first) and then reading for at
      most 3 s or closing at once. Prints {"connections": N, "answered": n,
      "status": {"400": n, ...}, "connect_errors": n}.
"""
import json
import random
import socket
import sys
import threading
import time


def opt(args, name, default):
    if name in args:
        i = args.index(name)
        v = args[i + 1]
        del args[i:i + 2]
        return v
    return default


CHAT = b'{"model":"m","messages":[{"role":"user","content":"hello"}],"max_tokens":8}'
STREAM = (b'{"model":"m","messages":[{"role":"user","content":"hello"}],"max_tokens":8,'
          b'"stream":true,"stream_options":{"include_usage":true}}')


def post(body, extra=b"", path=b"/v1/chat/completions"):
    """A well-formed POST of body, with extra header lines (CRLF-ended)."""
    return (b"POST " + path + b" HTTP/1.1\r\nHost: l7\r\nContent-Type: application/json\r\n"
            + extra + b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)


def parse_response(buf):
    """(status, headers, body, chunked_complete, complete) from bytes."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return None, {}, b"", None, False
    head = buf[:end].decode("latin-1").split("\r\n")
    parts = head[0].split(" ", 2)
    status = None
    if len(parts) >= 2 and parts[0].startswith("HTTP/1.") and parts[1].isdigit():
        status = int(parts[1])
    headers = {}
    for line in head[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
    rest = buf[end + 4:]
    if status is not None and 100 <= status < 200:
        s, h, b, c, done = parse_response(rest)
        return s, h, b, c, done
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body, pos = b"", 0
        while True:
            eol = rest.find(b"\r\n", pos)
            if eol < 0:
                return status, headers, body, False, False
            try:
                size = int(rest[pos:eol].split(b";")[0], 16)
            except ValueError:
                return status, headers, body, False, False
            if size == 0:
                # The terminating chunk, then (no trailers) a CRLF.
                done = rest.find(b"\r\n", eol + 2) >= 0
                return status, headers, body, done, done
            if len(rest) < eol + 2 + size + 2:
                body += rest[eol + 2:]
                return status, headers, body, False, False
            body += rest[eol + 2:eol + 2 + size]
            pos = eol + 2 + size + 2
    if "content-length" in headers:
        n = int(headers["content-length"])
        return status, headers, rest[:n], None, len(rest) >= n
    return status, headers, rest, None, False  # till EOF


def cmd_req(args):
    wait = float(opt(args, "--wait", "5"))
    gap = float(opt(args, "--gap", "0.05"))
    then_sleep = float(opt(args, "--then-sleep", "0"))
    src = opt(args, "--src", None)
    host, port, expr = args[0], int(args[1]), args[2]
    data = eval(expr, {"__builtins__": {}, "range": range, "bytes": bytes, "str": str,
                       "post": post, "CHAT": CHAT, "STREAM": STREAM})
    parts = data if isinstance(data, list) else [data]
    out = {"status": None, "headers": {}, "body": "", "chunked_complete": None,
           "closed": False, "secs": None, "close_secs": None, "error": None}
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.settimeout(3)
    try:
        if src:
            s.bind((src, 0))
        s.connect((host, port))
        for i, p in enumerate(parts):
            if i:
                time.sleep(gap)
            s.sendall(p)
        if then_sleep:
            time.sleep(then_sleep)
    except OSError as e:
        out["error"] = "%s: %s" % (type(e).__name__, e)
        print(json.dumps(out))
        return
    t0 = time.monotonic()
    buf, deadline, complete = b"", t0 + wait, False
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        s.settimeout(left)
        try:
            d = s.recv(65536)
        except socket.timeout:
            break
        except OSError as e:  # a reset counts as closed
            out["error"] = "%s: %s" % (type(e).__name__, e)
            out["closed"] = True
            out["close_secs"] = time.monotonic() - t0
            break
        if not d:
            out["closed"] = True
            out["close_secs"] = time.monotonic() - t0
            break
        if not buf:
            out["secs"] = time.monotonic() - t0
        buf += d
        st, hd, body, cc, complete = parse_response(buf)
        if complete and deadline > time.monotonic() + 0.5:
            deadline = time.monotonic() + 0.5  # then only: does it close?
    s.close()
    st, hd, body, cc, complete = parse_response(buf)
    out.update(status=st, headers=hd, body=body.decode("utf-8", "replace"),
               chunked_complete=cc)
    print(json.dumps(out))


def cmd_garbage(args):
    host, port, n, seed = args[0], int(args[1]), int(args[2]), int(args[3])
    rng = random.Random(seed)
    jobs = []
    for i in range(n):
        size = rng.randint(1, 4096)
        data = bytes(rng.getrandbits(8) for _ in range(size))
        if i % 2:
            data = b"POST /v1/chat/completions HTTP/1.1\r\n" + data
        jobs.append((data, rng.random() < 0.5))
    res = {"connections": n, "answered": 0, "status": {}, "connect_errors": 0}
    lock = threading.Lock()

    def one(data, read):
        s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        s.settimeout(3)
        try:
            s.connect((host, port))
            try:
                s.sendall(data)
            except OSError:
                pass  # it may close on the first bad bytes
            if not read:
                return
            buf = b""
            end = time.monotonic() + 3
            while b"\r\n" not in buf and time.monotonic() < end:
                d = s.recv(4096)
                if not d:
                    break
                buf += d
            if buf.startswith(b"HTTP/1."):
                code = buf.split(b" ", 2)[1].decode()
                with lock:
                    res["answered"] += 1
                    res["status"][code] = res["status"].get(code, 0) + 1
        except OSError as e:
            if isinstance(e, ConnectionRefusedError):
                with lock:
                    res["connect_errors"] += 1
        finally:
            s.close()

    for k in range(0, n, 20):
        ts = [threading.Thread(target=one, args=j) for j in jobs[k:k + 20]]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
    print(json.dumps(res, sort_keys=True))


def main():
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "req":
        cmd_req(args)
    elif cmd == "garbage":
        cmd_garbage(args)
    else:
        print(__doc__, file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
