#!/usr/bin/env bash
# sluice-l7 (the sanitized build) where a request's completion used to run
# the next one on the completer's stack: one client pipelining thousands of
# requests that are all refused at once (401), and a hundred queued clients,
# each with three pipelined requests, released together onto a backend that
# refuses every connection (502/503). Every request gets its answer, in
# order, the process stops cleanly, and ASan/LSan/UBSan report nothing.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib.sh"
L7=${SLUICE_BUILD:-build}/san/sluice-l7
W=$(mktemp -d /tmp/sluice-l7-posted.XXXXXX)
l7=""
trap '[ -n "$l7" ] && kill "$l7" 2>/dev/null; rm -rf "$W"' EXIT

no_sanitizer() { ! grep -qE 'AddressSanitizer|LeakSanitizer|runtime error:' "$W/err"; }

free_ports() {
	python3 -c 'import socket
ss=[socket.socket() for _ in range(2)]
[s.bind(("127.0.0.1", 0)) for s in ss]
print(" ".join(str(s.getsockname()[1]) for s in ss))'
}

l7_up() {
	for _ in $(seq 100); do
		python3 -c "import socket; socket.create_connection(('127.0.0.1', $1), 0.2)" \
			2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}

l7_stop() {
	kill -TERM "$l7"
	wait "$l7"
	RC=$?
	l7=""
}

read -r lport bport <<<"$(free_ports)"
cat >"$W/refuse.conf" <<EOF
listen 127.0.0.1:$lport
backend 127.0.0.1:$bport
metrics off
kernel off
unknown-keys refuse
tier free priority 0 rpm 100000
default-tier free
key sk-posted-1 tier free
EOF
chmod 600 "$W/refuse.conf"

t_begin "3000 pipelined requests refused at once (401): all answered, in order"
"$L7" -c "$W/refuse.conf" 2>"$W/err" &
l7=$!
t_check "sluice-l7 starts" l7_up "$lport"
# Everything is written before a byte is read, so the answers pile up past
# the output ceiling and the rest wait for the flush: both ways a request
# goes on from the loop.
out=$(python3 - "$lport" <<'PY'
import socket, sys, threading, time
N = 3000
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), 5)
s.settimeout(20)
reqs = b"".join(b"GET /v1/models HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer sk-nope\r\n"
                b"x-request-id: r%d\r\n\r\n" % i for i in range(N))
t = threading.Thread(target=s.sendall, args=(reqs,))
t.start()
time.sleep(0.5)
data = b""
while data.count(b"HTTP/1.1 ") < N or not data.endswith(b"}}\n"):
    chunk = s.recv(1 << 16)
    if not chunk:
        break
    data += chunk
t.join()
heads = [h for h in data.split(b"HTTP/1.1 ")[1:]]
ok = sum(1 for h in heads if h.startswith(b"401 "))
order = all(b"x-request-id: r%d\r\n" % i in h for i, h in enumerate(heads))
print(len(heads), ok, int(order))
PY
)
read -r n n401 inorder <<<"$out"
t_expect "answers" "${n:-0}" -eq 3000
t_expect "all 401" "${n401:-0}" -eq 3000
t_expect "in order" "${inorder:-0}" -eq 1
l7_stop
t_expect "exit status" "$RC" -eq 0
t_check "no sanitizer report" no_sanitizer
t_end

read -r lport bport <<<"$(free_ports)"
cat >"$W/queue.conf" <<EOF
listen 127.0.0.1:$lport
backend 127.0.0.1:$bport
metrics off
kernel off
backend-concurrency 1
backend-fails 1000
queue-size 1000
queue-timeout 20s
tier free priority 0 rpm 100000
default-tier free
EOF
chmod 600 "$W/queue.conf"

t_begin "100 queued clients released at once onto a refusing backend: each gets 3 answers"
"$L7" -c "$W/queue.conf" 2>"$W/err" &
l7=$!
t_check "sluice-l7 starts" l7_up "$lport"
# The backend holds the one slot for a second, then stops listening and
# answers: every waiter starts at once, and every connection is refused.
out=$(python3 - "$lport" "$bport" <<'PY'
import socket, sys, threading, time
lport, bport = int(sys.argv[1]), int(sys.argv[2])
N, PIPE = 100, 3
ls = socket.socket()
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("127.0.0.1", bport))
ls.listen(8)

def backend():
    b, _ = ls.accept()
    buf = b""
    while b"\r\n\r\n" not in buf:
        buf += b.recv(4096)
    time.sleep(1.0)
    ls.close()
    b.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
    b.close()

threading.Thread(target=backend, daemon=True).start()
first = socket.create_connection(("127.0.0.1", lport), 5)
first.settimeout(20)
first.sendall(b"GET /first HTTP/1.1\r\nHost: x\r\n\r\n")
time.sleep(0.3)
clients = []
for i in range(N):
    c = socket.create_connection(("127.0.0.1", lport), 5)
    c.settimeout(20)
    c.sendall(b"GET /q HTTP/1.1\r\nHost: x\r\n\r\n" * PIPE)
    clients.append(c)

def answers(s, n):
    data = b""
    while data.count(b"HTTP/1.1 ") < n or not data.rstrip().endswith(b"}"):
        try:
            chunk = s.recv(1 << 16)
        except socket.timeout:
            break
        if not chunk:
            break
        data += chunk
        if n == 1 and data.endswith(b"ok"):
            break
    return [h[:3] for h in data.split(b"HTTP/1.1 ")[1:]]

print(b",".join(answers(first, 1)).decode())
full = sum(1 for c in clients
           if (lambda a: len(a) == PIPE and all(x in (b"502", b"503") for x in a))(answers(c, PIPE)))
print(full)
PY
)
first=$(sed -n 1p <<<"$out")
full=$(sed -n 2p <<<"$out")
t_check "the first request got 200 ($first)" [ "$first" = 200 ]
t_expect "clients with 3 answers of 502/503" "${full:-0}" -eq 100
l7_stop
t_expect "exit status" "$RC" -eq 0
t_check "no sanitizer report" no_sanitizer
t_end
