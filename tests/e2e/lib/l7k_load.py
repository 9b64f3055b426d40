#!/usr/bin/env python3
"""l7k_load.py - sequential chat requests to sluice-l7 over one keep-alive
connection, counted by the client itself (the suites' independent count).

  l7k_load.py HOST PORT N [--src ADDR] [--key KEY] [--stream]
              [--timeout S] [--gap S]

Sends N POST /v1/chat/completions (JSON, or streamed with usage), each read
to its end, --gap S apart (default 0). A request that gets no answer within
--timeout S (default 3) ends the run: the connection is dropped, and the
run stops there (a banned source gets no answer at all). A connection the
server closed is reopened. Prints one JSON line:
  {"sent": n, "status": {"200": n, "429": n, ...}, "timeouts": n,
   "conn_errors": n, "ttfb_ms": [each 200's time to its first byte],
   "p50_ttfb_ms": x, "complete": n (2xx bodies read to their end;
   streams ending in data: [DONE])}
"""
import http.client
import json
import socket
import sys
import time


def opt(args, name, default, flag=False):
    if name in args:
        i = args.index(name)
        if flag:
            del args[i]
            return True
        v = args[i + 1]
        del args[i:i + 2]
        return v
    return default


def main():
    args = sys.argv[1:]
    src = opt(args, "--src", None)
    key = opt(args, "--key", None)
    stream = opt(args, "--stream", False, flag=True)
    timeout = float(opt(args, "--timeout", "3"))
    gap = float(opt(args, "--gap", "0"))
    host, port, n = args[0], int(args[1]), int(args[2])
    body = {"model": "m", "messages": [{"role": "user", "content": "hello there"}],
            "max_tokens": 8}
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    data = json.dumps(body).encode()
    headers = {"Content-Type": "application/json"}
    if key:
        headers["x-api-key"] = key
    res = {"sent": 0, "status": {}, "timeouts": 0, "conn_errors": 0, "ttfb_ms": [],
           "complete": 0}
    conn = None
    for i in range(n):
        if i and gap:
            time.sleep(gap)
        try:
            if conn is None:
                conn = http.client.HTTPConnection(
                    host, port, timeout=timeout,
                    source_address=(src, 0) if src else None)
                conn.connect()
            t0 = time.monotonic()
            conn.request("POST", "/v1/chat/completions", body=data, headers=headers)
            res["sent"] += 1
            r = conn.getresponse()
            t1 = time.monotonic()
            payload = r.read()
        except socket.timeout:
            res["timeouts"] += 1
            break
        except (ConnectionError, http.client.HTTPException, OSError):
            res["conn_errors"] += 1
            if conn:
                conn.close()
            conn = None
            continue
        code = str(r.status)
        res["status"][code] = res["status"].get(code, 0) + 1
        if r.status == 200:
            res["ttfb_ms"].append(round((t1 - t0) * 1000, 2))
            if (not stream and b'"usage"' in payload) or \
               (stream and payload.rstrip().endswith(b"data: [DONE]")):
                res["complete"] += 1
        if r.will_close:
            conn.close()
            conn = None
    if conn:
        conn.close()
    t = sorted(res["ttfb_ms"])
    res["p50_ttfb_ms"] = t[len(t) // 2] if t else None
    print(json.dumps(res, sort_keys=True))


if __name__ == "__main__":
    main()
