#!/usr/bin/env python3
"""l7bad_backend.py - a broken backend for sluice-l7's bad-input suite.

  l7bad_backend.py MODE ADDR PORT READY_FILE MAX_SECONDS
    garbage   reads the request head, answers "NOT HTTP\\r\\n\\r\\n", closes
    silent    accepts and reads, never answers (until the client closes)

Writes READY_FILE once listening; prints "accepted N" on stderr when it
ends (after MAX_SECONDS, or killed: then nothing).
"""
import socket
import sys
import threading
import time

mode, addr, port, ready, max_s = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], float(sys.argv[5])
ls = socket.socket(socket.AF_INET6 if ":" in addr else socket.AF_INET)
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind((addr, port))
ls.listen(128)
ls.settimeout(0.5)
with open(ready, "w") as f:
    f.write("ready\n")
accepted = 0


def serve(c):
    c.settimeout(max_s)
    try:
        buf = b""
        while b"\r\n\r\n" not in buf:
            d = c.recv(65536)
            if not d:
                return
            buf += d
        if mode == "garbage":
            c.sendall(b"NOT HTTP\r\n\r\n")
            return
        while c.recv(65536):  # silent: hold it until the proxy gives up
            pass
    except OSError:
        pass
    finally:
        c.close()


end = time.monotonic() + max_s
while time.monotonic() < end:
    try:
        c, _ = ls.accept()
    except socket.timeout:
        continue
    accepted += 1
    threading.Thread(target=serve, args=(c,), daemon=True).start()
print("accepted %d" % accepted, file=sys.stderr)
