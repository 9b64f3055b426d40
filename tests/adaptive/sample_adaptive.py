#!/usr/bin/env python3
"""sample_adaptive.py - one CSV row a second of what an adaptive limit is doing.

Each second it reads:
  - the limit: the rule's conn_rate or pps from 'sluice rule list --json'
    (the rule named by --rule, or the first whose dport range holds --port)
  - what sluice saw on --port: 'sluice signals --json --interval 0' read once
    a second; the differences of its cumulative counters give connections,
    requests and 5xx answers per second and the mean response latency over
    the second (count-weighted means: the JSON's percentiles are cumulative)
  - optionally the backend's own per-second log (testbackend.py --log): its
    last line's completed, p50 and in-flight
  - optionally the load generator's CSV (loadgen.py --csv): its last row's
    offered, admitted and client p50
and appends to --out:
  t,time,limit,conns_per_s,requests_per_s,http_5xx_per_s,resp_mean_ms,
  backend_completed,backend_p50_ms,backend_inflight,backend_failing,
  offered,admitted,client_p50_ms
(-1 where a source has nothing yet). Runs for --duration seconds (at most
3600) or until SIGTERM.
"""
import argparse
import json
import os
import signal
import subprocess
import sys
import time

COLS = ("t,time,limit,conns_per_s,requests_per_s,http_5xx_per_s,resp_mean_ms,"
        "backend_completed,backend_p50_ms,backend_inflight,backend_failing,"
        "offered,admitted,client_p50_ms")


def run_json(cmd):
    try:
        out = subprocess.run(cmd, capture_output=True, timeout=5, check=True).stdout
        return json.loads(out)
    except (subprocess.SubprocessError, OSError, ValueError):
        return None


def last_line(path, skip="#"):
    """The last complete line of a file, or None."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 8192))
            lines = f.read().decode("utf-8", "replace").split("\n")
    except OSError:
        return None
    lines = [x for x in lines[:-1] if x and not x.startswith(skip)]  # [-1]: partial
    return lines[-1] if lines else None


def limit_of(rules, a):
    for r in rules or []:
        if a.rule and (str(r.get("id")) == a.rule or r.get("name") == a.rule):
            return r.get(a.limit, -1)
        if not a.rule and r.get("dport_lo", 0) <= a.port <= r.get("dport_hi", -1):
            return r.get(a.limit, -1)
    return -1


def service(sig, port):
    for s in (sig or {}).get("services", []):
        if s.get("port") == port:
            return s
    return None


def main():
    p = argparse.ArgumentParser(description="Samples an adaptive limit, sluice's view "
                                "of the service and the test tools' logs into one CSV.")
    p.add_argument("--sluice", default=os.environ.get("SLUICE", "build/sluice"))
    p.add_argument("--port", type=int, required=True, help="the service port")
    p.add_argument("--rule", help="rule id or name (default: the first on --port)")
    p.add_argument("--limit", choices=("conn_rate", "pps"), default="conn_rate")
    p.add_argument("--backend-log", help="testbackend.py's --log file")
    p.add_argument("--loadgen-csv", help="loadgen.py's --csv file")
    p.add_argument("--out", required=True)
    p.add_argument("--duration", type=float, default=120)
    p.add_argument("--interval", type=float, default=1.0)
    a = p.parse_args()
    a.duration = min(a.duration, 3600)

    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))
    out = open(a.out, "w")
    out.write(COLS + "\n")
    out.flush()
    start = time.monotonic()
    prev = None  # (monotonic, counters, response count, response mean)
    n = 0
    while not stop and time.monotonic() - start < a.duration:
        now = time.monotonic()
        rules = run_json([a.sluice, "rule", "list", "--json"])
        svc = service(run_json([a.sluice, "signals", "--json", "--interval", "0"]), a.port)
        row = {"limit": limit_of(rules, a)}
        cur = None
        if svc:
            resp = svc.get("response") or {}
            cur = (now, svc.get("counters", {}), resp.get("count", 0), resp.get("mean_ms") or 0)
        for k in ("conns_per_s", "requests_per_s", "http_5xx_per_s", "resp_mean_ms"):
            row[k] = -1
        if cur and prev:
            dt = cur[0] - prev[0]
            c1, c0 = cur[1], prev[1]
            row["conns_per_s"] = round((c1.get("connections", 0) - c0.get("connections", 0)) / dt, 1)
            row["requests_per_s"] = round((c1.get("requests", 0) - c0.get("requests", 0)) / dt, 1)
            row["http_5xx_per_s"] = round((c1.get("http_5xx", 0) - c0.get("http_5xx", 0)) / dt, 1)
            dn = cur[2] - prev[2]
            if dn > 0:
                row["resp_mean_ms"] = round((cur[2] * cur[3] - prev[2] * prev[3]) / dn, 2)
        if cur:
            prev = cur
        be = last_line(a.backend_log) if a.backend_log else None
        f = be.split("\t") if be else []
        row["backend_completed"] = f[3] if len(f) > 8 else -1
        row["backend_p50_ms"] = f[6] if len(f) > 8 else -1
        row["backend_inflight"] = f[1] if len(f) > 8 else -1
        row["backend_failing"] = f[8] if len(f) > 8 else -1
        lg = last_line(a.loadgen_csv, skip="t,") if a.loadgen_csv else None
        f = lg.split(",") if lg else []
        row["offered"] = f[2] if len(f) > 10 else -1
        row["admitted"] = f[3] if len(f) > 10 else -1
        row["client_p50_ms"] = f[9] if len(f) > 10 else -1
        out.write("%d,%.3f,%s\n" % (n, time.time(), ",".join(str(row[c]) for c in COLS.split(",")[2:])))
        out.flush()
        n += 1
        # Sleep to the next whole interval since the start (bounded, no drift).
        nxt = start + n * a.interval
        while not stop and time.monotonic() < nxt:
            time.sleep(min(0.1, max(0.0, nxt - time.monotonic())))
    out.close()


if __name__ == "__main__":
    sys.exit(main())
