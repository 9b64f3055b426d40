#!/usr/bin/env bash
# The mock LLM backend (tests/mock-llm/mock_llm.c) that sluice-l7's tests, benchmark
# and demo stand on: OpenAI-shaped answers and usage numbers, streaming
# framing and timing, latency, /stats counts by key, error injection,
# keep-alive, pipelining, body limits, options and signals. The HTTP side is
# checked with raw sockets (python3), so framing is seen byte for byte.
#
# MOCK_LLM=path runs another build (e.g. one with sanitizers).
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib.sh"
MOCK=${MOCK_LLM:-${SLUICE_BUILD:-build}/mock-llm}
W=$(mktemp -d /tmp/sluice-mock.XXXXXX)
PIDS=()
declare -A PORT PID
cleanup() {
	local p
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
	rm -rf "$W"
}
trap cleanup EXIT

if [ ! -x "$MOCK" ]; then
	echo "not ok setup: $MOCK is missing (make build/mock-llm)"
	exit 1
fi
if ! command -v python3 >/dev/null; then
	echo "not ok setup: python3 is missing (apt-get install python3)"
	exit 1
fi

# start_mock NAME ARGS...: a mock on a free loopback port; sets PORT[NAME] and
# PID[NAME] once it has printed "listening on".
start_mock() {
	local name=$1 port=""
	shift
	"$MOCK" --listen 127.0.0.1:0 "$@" 2>"$W/$name.err" &
	PID[$name]=$!
	PIDS+=("$!")
	for _ in $(seq 100); do
		port=$(sed -n 's/^mock-llm: listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$W/$name.err")
		[ -n "$port" ] && break
		sleep 0.05
	done
	PORT[$name]=$port
	[ -n "$port" ]
}

# stop_mock NAME SIGNAL: send SIGNAL, and set RC to the exit status (124 if
# it did not exit within 5 s).
stop_mock() {
	local pid=${PID[$1]}
	kill -"$2" "$pid" 2>/dev/null
	for _ in $(seq 100); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.05
	done
	if kill -0 "$pid" 2>/dev/null; then
		kill -KILL "$pid"
		wait "$pid" 2>/dev/null
		RC=124
	else
		wait "$pid"
		RC=$?
	fi
}

differ() { ! cmp -s "$1" "$2"; }

# py CASE ARGS...: one check, done by the Python case of that name; its
# output is the reason when it fails.
py() {
	local out rc
	out=$(timeout 60 python3 "$W/cases.py" "$@" 2>&1)
	rc=$?
	t_check "$1: ${out:-exit status $rc}" [ "$rc" = 0 ]
}

cat >"$W/cases.py" <<'EOF'
import json, socket, sys, threading, time

HOST = "127.0.0.1"


class Fail(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise Fail(msg)


def connect(port):
    return socket.create_connection((HOST, port), timeout=10)


def request(method, path, body=None, headers=(), version="HTTP/1.1"):
    """The bytes of one request; body: dict (sent as JSON), bytes or None."""
    lines = [f"{method} {path} {version}", "Host: mock"]
    if isinstance(body, dict):
        body = json.dumps(body).encode()
    if body is not None:
        lines.append(f"Content-Length: {len(body)}")
    lines += [f"{k}: {v}" for k, v in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b"")


class Resp:
    def __init__(self):
        self.status, self.headers, self.body = 0, {}, b""
        self.chunks = []      # (arrival time, data) of each HTTP chunk
        self.complete = True  # False: the connection ended mid-body

    def json(self):
        return json.loads(self.body)


def read_resp(f):
    """One response from a socket file, checking the chunked framing."""
    r = Resp()
    line = f.readline()
    check(line, "connection closed before a response")
    check(line.endswith(b"\r\n"), f"status line without CRLF: {line!r}")
    parts = line.decode().split(" ", 2)
    check(parts[0] == "HTTP/1.1", f"bad status line {line!r}")
    r.status = int(parts[1])
    while True:
        h = f.readline()
        check(h.endswith(b"\r\n"), f"header line without CRLF: {h!r}")
        if h == b"\r\n":
            break
        k, v = h.decode().split(":", 1)
        r.headers[k.strip().lower()] = v.strip()
    if r.headers.get("transfer-encoding") == "chunked":
        check("content-length" not in r.headers, "both chunked and Content-Length")
        while True:
            size = f.readline()
            if not size:
                r.complete = False
                break
            check(size.endswith(b"\r\n"), f"chunk size line without CRLF: {size!r}")
            n = int(size.strip(), 16)
            if n == 0:
                check(f.readline() == b"\r\n", "no CRLF after the last chunk")
                break
            data = f.read(n)
            if len(data) < n:
                r.complete = False
                break
            check(f.read(2) == b"\r\n", "chunk data not followed by CRLF")
            r.chunks.append((time.monotonic(), data))
        r.body = b"".join(d for _, d in r.chunks)
    elif "content-length" in r.headers:
        r.body = f.read(int(r.headers["content-length"]))
        check(len(r.body) == int(r.headers["content-length"]), "short body")
    else:
        r.body = f.read()
    return r


def one(port, method, path, body=None, headers=()):
    with connect(port) as s:
        s.sendall(request(method, path, body, headers))
        return read_resp(s.makefile("rb"))


def chat(port, body=None, headers=(), **kw):
    b = {"model": "gpt-test", "messages": [{"role": "user", "content": "hello world"}]}
    b.update(body or {})
    return one(port, "POST", "/v1/chat/completions", b, headers)


def stats(port):
    r = one(port, "GET", "/stats")
    check(r.status == 200, f"/stats status {r.status}")
    return r.json()


def reset(port):
    r = one(port, "POST", "/stats/reset")
    check(r.status == 200, f"/stats/reset status {r.status}")


def events(r):
    """The SSE events of a streamed body, each as a string after 'data: '."""
    text = r.body.decode()
    check(text.endswith("\n\n") or not r.complete, f"stream does not end in a blank line")
    out = []
    for ev in text.split("\n\n"):
        if not ev:
            continue
        check(ev.startswith("data: "), f"event without 'data: ': {ev[:60]!r}")
        out.append(ev[6:])
    return out


def expect_error(r, status, etype):
    check(r.status == status, f"status {r.status}, expected {status}: {r.body[:200]!r}")
    e = r.json().get("error")
    check(isinstance(e, dict) and isinstance(e.get("message"), str) and e["message"],
          f"no error.message in {r.body!r}")
    check(e.get("type") == etype, f"error.type {e.get('type')!r}, expected {etype!r}")


# --- cases -------------------------------------------------------------------

def c_plain(port):
    r = one(port, "GET", "/health")
    check(r.status == 200 and r.body == b"ok", f"/health: {r.status} {r.body!r}")
    for path in ("/", "/bench", "/bench/a/b?x=1"):
        r = one(port, "GET", path)
        check(r.status == 200 and r.body == b"ok", f"GET {path}: {r.status} {r.body!r}")
    r = one(port, "POST", "/", b"xyz")
    check(r.status == 200, f"POST /: {r.status}")
    r = one(port, "GET", "/nope")
    expect_error(r, 404, "invalid_request_error")
    r = one(port, "GET", "/v1/chat/completions")
    check(r.status == 405, f"GET /v1/chat/completions: {r.status}")


def c_chat(port):
    r = chat(port, {"max_tokens": 5}, [("Authorization", "Bearer sk-chat")])
    check(r.status == 200, f"status {r.status}: {r.body!r}")
    check(r.headers.get("content-type") == "application/json",
          f"content-type {r.headers.get('content-type')}")
    j = r.json()
    check(j["id"].startswith("chatcmpl-"), f"id {j['id']}")
    check(j["object"] == "chat.completion", f"object {j['object']}")
    check(isinstance(j["created"], int) and abs(j["created"] - time.time()) < 60,
          f"created {j['created']}")
    check(j["model"] == "gpt-test", f"model {j['model']}")
    ch = j["choices"]
    check(len(ch) == 1 and ch[0]["index"] == 0 and ch[0]["finish_reason"] == "stop",
          f"choices {ch}")
    check(ch[0]["message"] == {"role": "assistant", "content": "tok " * 5},
          f"message {ch[0]['message']}")
    # "hello world": 11 characters -> 3, + 4 per message + 3
    check(j["usage"] == {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
          f"usage {j['usage']}")
    # Without max_tokens: the configured 16. max_completion_tokens counts too,
    # and a larger max_tokens does not raise it.
    for extra, want in (({}, 16), ({"max_completion_tokens": 2}, 2), ({"max_tokens": 99}, 16)):
        u = chat(port, extra).json()["usage"]
        check(u["completion_tokens"] == want, f"{extra}: completion_tokens {u}")
    # Characters, not bytes; two messages; content as parts.
    msgs = [{"role": "system", "content": "été!"},
            {"role": "user", "content": [{"type": "text", "text": "abcdefgh"}]}]
    u = chat(port, {"messages": msgs}).json()["usage"]
    check(u["prompt_tokens"] == 1 + 2 + 8 + 3, f"two messages: {u}")
    # The headers win over the body.
    u = chat(port, {"max_tokens": 3}, [("x-mock-prompt-tokens", "123"),
                                       ("x-mock-completion-tokens", "40")]).json()["usage"]
    check(u == {"prompt_tokens": 123, "completion_tokens": 40, "total_tokens": 163},
          f"override headers: {u}")
    j = chat(port, {"model": "a\"b\\c\u00e9"}).json()
    check(j["model"] == "a\"b\\c\u00e9", f"model not echoed exactly: {j['model']!r}")


def c_completions(port):
    r = one(port, "POST", "/v1/completions", {"model": "m", "prompt": "abcdefghi", "max_tokens": 4})
    check(r.status == 200, f"status {r.status}: {r.body!r}")
    j = r.json()
    check(j["object"] == "text_completion" and j["id"].startswith("cmpl-"), f"{j}")
    check(j["choices"][0]["text"] == "tok " * 4, f"choices {j['choices']}")
    check(j["usage"] == {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7},
          f"usage {j['usage']}")
    j = one(port, "POST", "/v1/completions", {"prompt": ["abcd", "efgh"]}).json()
    check(j["usage"]["prompt_tokens"] == 2, f"prompt list: {j['usage']}")


def stream_req(port, path, body, headers=()):
    t0 = time.monotonic()
    with connect(port) as s:
        s.sendall(request("POST", path, body, headers))
        r = read_resp(s.makefile("rb"))
        r.t0 = t0
        return r


def c_stream(port):
    body = {"model": "gpt-test", "stream": True, "max_tokens": 7,
            "stream_options": {"include_usage": True},
            "messages": [{"role": "user", "content": "hello world"}]}
    r = stream_req(port, "/v1/chat/completions", body)
    check(r.status == 200 and r.complete, f"status {r.status}, complete {r.complete}")
    check(r.headers.get("content-type") == "text/event-stream",
          f"content-type {r.headers.get('content-type')}")
    check(r.headers.get("transfer-encoding") == "chunked", "not chunked")
    ev = events(r)
    check(ev[-1] == "[DONE]", f"last event {ev[-1]!r}")
    js = [json.loads(e) for e in ev[:-1]]
    toks = [j for j in js if j["choices"]]
    check(len(toks) == 7, f"{len(toks)} token events, expected 7")
    content = ""
    for i, j in enumerate(toks):
        check(j["object"] == "chat.completion.chunk" and j["id"].startswith("chatcmpl-"),
              f"chunk {j}")
        d = j["choices"][0]["delta"]
        check(d.get("content") == "tok ", f"delta {d}")
        check((d.get("role") == "assistant") == (i == 0), f"role in delta {i}: {d}")
        fr = j["choices"][0]["finish_reason"]
        check(fr == ("stop" if i == 6 else None), f"finish_reason {i}: {fr}")
        content += d["content"]
    check(len({j["id"] for j in js}) == 1, "ids differ between chunks")
    last = js[-1]
    check(last["choices"] == [] and last["usage"] ==
          {"prompt_tokens": 10, "completion_tokens": 7, "total_tokens": 17},
          f"usage chunk {last}")
    # One event per HTTP chunk: each leaves on its own.
    check(len(r.chunks) == len(ev), f"{len(r.chunks)} chunks for {len(ev)} events")
    # Without include_usage: no usage chunk.
    del body["stream_options"]
    ev = events(stream_req(port, "/v1/chat/completions", body))
    check(len(ev) == 8 and ev[-1] == "[DONE]", f"{len(ev)} events without include_usage")
    check(all(json.loads(e)["choices"] for e in ev[:-1]), "a usage chunk without include_usage")
    # Completions stream.
    r = stream_req(port, "/v1/completions", {"prompt": "x", "stream": True, "max_tokens": 3})
    ev = events(r)
    check(len(ev) == 4 and ev[-1] == "[DONE]", f"completions: {len(ev)} events")
    for e in ev[:-1]:
        j = json.loads(e)
        check(j["object"] == "text_completion" and j["choices"][0]["text"] == "tok ", f"{j}")


def c_stream_timing(port, latency_ms, token_ms, tokens):
    latency, tok = int(latency_ms) / 1000, int(token_ms) / 1000
    body = {"stream": True, "messages": [{"role": "user", "content": "hi"}]}
    r = stream_req(port, "/v1/chat/completions", body)
    check(r.complete, "stream incomplete")
    toks = [(t, d) for t, d in r.chunks if b'"content":"tok "' in d]
    check(len(toks) == int(tokens), f"{len(toks)} tokens, expected {tokens}")
    # Client delays can only make a token late, never early: each one must
    # keep its schedule, and the first must not wait for the others.
    at = [t - r.t0 for t, _ in toks]
    for i, t in enumerate(at):
        check(t >= (latency + i * tok) * 0.98,
              f"token {i} after {t:.3f}s, due at {latency + i * tok:.3f}s: {at}")
    check(at[0] <= latency + 2.5 * tok, f"first token after {at[0]:.3f}s: {at}")
    check(at[-1] <= latency + (len(at) - 1) * tok + 1.0, f"last token late: {at}")


def c_latency(port, latency_ms):
    latency = int(latency_ms) / 1000
    t0 = time.monotonic()
    r = chat(port)
    dt = time.monotonic() - t0
    check(r.status == 200 and dt >= latency * 0.95, f"took {dt:.3f}s, latency {latency}s")
    t0 = time.monotonic()
    r = chat(port, headers=[("x-mock-latency-ms", "300")])
    dt = time.monotonic() - t0
    check(r.status == 200 and 0.29 <= dt < 3, f"x-mock-latency-ms 300 took {dt:.3f}s")
    best = min(timed(lambda: chat(port, headers=[("x-mock-latency-ms", "0")])) for _ in range(3))
    check(best < latency, f"x-mock-latency-ms 0 still took {best:.3f}s")


def timed(fn):
    t0 = time.monotonic()
    fn()
    return time.monotonic() - t0


def c_stats(port):
    reset(port)
    s = stats(port)
    check(s["requests"] == 0 and s["by_key"] == {} and s["prompt_tokens"] == 0 and
          s["completion_tokens"] == 0, f"after reset: {s}")
    for _ in range(3):
        chat(port, {"max_tokens": 2}, [("Authorization", "Bearer sk-a")])
    for _ in range(2):
        chat(port, {"max_tokens": 3}, [("x-api-key", "key-b")])
    chat(port, {"max_tokens": 1})
    r = stream_req(port, "/v1/chat/completions",
                   {"stream": True, "max_tokens": 4, "messages": [{"content": "hello world"}]},
                   [("Authorization", "Bearer sk-a")])
    check(r.complete, "stream incomplete")
    chat(port, {"messages": 5}, [("Authorization", "Bearer sk-a")])  # a 400, still counted
    one(port, "GET", "/health")
    s = stats(port)
    check(s["requests"] == 8, f"requests {s['requests']}, expected 8")
    check(s["by_key"] == {"sk-a": 5, "key-b": 2}, f"by_key {s['by_key']}")
    check(s["prompt_tokens"] == 7 * 10, f"prompt_tokens {s['prompt_tokens']}")
    check(s["completion_tokens"] == 3 * 2 + 2 * 3 + 1 + 4, f"completion_tokens {s}")
    check(s["by_status"] == {"200": 7, "400": 1}, f"by_status {s['by_status']}")
    check(s["in_flight"] == 0, f"in_flight {s['in_flight']}")


def c_in_flight(port):
    reset(port)
    socks = []
    for i in range(5):
        s = connect(port)
        s.sendall(request("POST", "/v1/chat/completions", {"messages": []},
                          [("x-mock-latency-ms", "600"), ("x-api-key", f"k{i}")]))
        socks.append(s)
    time.sleep(0.25)
    s = stats(port)
    check(s["in_flight"] == 5 and s["max_in_flight"] == 5, f"while waiting: {s}")
    for s in socks:
        r = read_resp(s.makefile("rb"))
        check(r.status == 200, f"status {r.status}")
        s.close()
    s = stats(port)
    check(s["in_flight"] == 0 and s["max_in_flight"] == 5 and len(s["by_key"]) == 5,
          f"after: {s}")


def c_errseq(port, out, lo, hi):
    statuses = []
    with connect(port) as s:
        f = s.makefile("rb")
        for _ in range(200):
            s.sendall(request("POST", "/v1/chat/completions", {"messages": []}))
            r = read_resp(f)
            check(r.status in (200, 500), f"status {r.status}")
            if r.status == 500:
                expect_error(r, 500, "server_error")
            statuses.append(r.status)
    n = statuses.count(500)
    check(int(lo) <= n <= int(hi), f"{n} of 200 answered 500, expected {lo}..{hi}")
    check(one(port, "GET", "/health").status == 200, "/health is not subject to errors")
    with open(out, "w") as f:
        f.write(" ".join(map(str, statuses)))


def c_status(port, status, etype):
    for path, body in (("/v1/chat/completions", {"messages": []}),
                       ("/v1/completions", {"prompt": "x"})):
        r = one(port, "POST", path, body)
        expect_error(r, int(status), etype)
    r = one(port, "GET", "/health")
    check(r.status == 200, "/health is not subject to --status")


def c_status_header(port):
    r = chat(port, headers=[("x-mock-status", "429")])
    expect_error(r, 429, "rate_limit_error")
    r = chat(port, {"stream": True}, [("x-mock-status", "503")])
    expect_error(r, 503, "server_error")
    r = chat(port, headers=[("x-mock-status", "200")])
    check(r.status == 200, f"x-mock-status 200: {r.status}")
    r = chat(port, headers=[("x-mock-status", "700")])
    expect_error(r, 400, "invalid_request_error")
    check("x-mock-status" in r.json()["error"]["message"], "message does not name the header")


def c_close_mid(port, n, header):
    body = {"stream": True, "max_tokens": 10, "stream_options": {"include_usage": True},
            "messages": [{"content": "hi"}]}
    hdrs = [("x-mock-close-mid-stream", n)] if header == "yes" else []
    r = stream_req(port, "/v1/chat/completions", body, hdrs)
    check(r.status == 200, f"status {r.status}")
    check(not r.complete, "the stream ended with its terminating chunk")
    ev = events(r)
    check(len(ev) == int(n) and "[DONE]" not in ev, f"{len(ev)} events before the close: {ev}")
    # Asked for fewer tokens than the cut: a whole stream.
    body["max_tokens"] = int(n)
    r = stream_req(port, "/v1/chat/completions", body, hdrs)
    check(r.complete and events(r)[-1] == "[DONE]", "a stream shorter than the cut was cut")


def c_keepalive(port):
    with connect(port) as s:
        f = s.makefile("rb")
        for i in range(5):
            s.sendall(request("POST", "/v1/chat/completions",
                              {"messages": [], "max_tokens": i + 1}))
            r = read_resp(f)
            check(r.status == 200 and r.json()["usage"]["completion_tokens"] == i + 1,
                  f"request {i} on one connection: {r.status}")
            check(r.headers.get("connection") != "close", "server asked to close")
        s.sendall(request("GET", "/health", headers=[("Connection", "close")]))
        r = read_resp(f)
        check(r.status == 200 and r.headers.get("connection") == "close",
              f"Connection: close not echoed: {r.headers}")
        check(f.read() == b"", "connection stayed open after Connection: close")


def c_pipeline(port):
    with connect(port) as s:
        # The first waits 200 ms: the others must still come after it.
        s.sendall(request("POST", "/v1/chat/completions", {"messages": [], "max_tokens": 2},
                          [("x-mock-latency-ms", "200")]) +
                  request("GET", "/health") +
                  request("POST", "/v1/chat/completions",
                          {"messages": [], "max_tokens": 2, "stream": True}) +
                  request("POST", "/v1/completions", {"prompt": "x", "max_tokens": 3}))
        f = s.makefile("rb")
        r1, r2, r3, r4 = (read_resp(f) for _ in range(4))
    check(r1.status == 200 and r1.json()["object"] == "chat.completion" and
          r1.json()["usage"]["completion_tokens"] == 2, f"first: {r1.body[:80]!r}")
    check(r2.status == 200 and r2.body == b"ok", f"second: {r2.body!r}")
    check(r3.status == 200 and events(r3)[-1] == "[DONE]", f"third: {r3.body[:80]!r}")
    check(r4.status == 200 and r4.json()["object"] == "text_completion" and
          r4.json()["usage"]["completion_tokens"] == 3, f"fourth: {r4.body[:80]!r}")


def c_pipeline_big(port):
    """A stream far larger than the socket buffers, read late: the answer
    behind it must still come."""
    with connect(port) as s:
        s.sendall(request("POST", "/v1/chat/completions", {"messages": [], "stream": True},
                          [("x-mock-completion-tokens", "30000")]) +
                  request("GET", "/health"))
        time.sleep(0.5)  # let every buffer on the way fill
        f = s.makefile("rb")
        r1 = read_resp(f)
        r2 = read_resp(f)
    ev = events(r1)
    check(r1.complete and len(ev) == 30001 and ev[-1] == "[DONE]", f"stream: {len(ev)} events")
    check(r2.status == 200 and r2.body == b"ok", f"after the stream: {r2.status} {r2.body!r}")


def c_chunked_body(port):
    body = json.dumps({"messages": [{"content": "hello world"}], "max_tokens": 2}).encode()
    parts = [body[:5], body[5:20], body[20:]]
    enc = b"".join(b"%x;ext=1\r\n%s\r\n" % (len(p), p) for p in parts) + b"0\r\nX-T: 1\r\n\r\n"
    head = (b"POST /v1/chat/completions HTTP/1.1\r\nHost: m\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n")
    with connect(port) as s:
        f = s.makefile("rb")
        s.sendall(head + enc[:7])  # in pieces: a partial body must wait
        time.sleep(0.05)
        s.sendall(enc[7:] + request("GET", "/health"))
        r = read_resp(f)
        check(r.status == 200 and r.json()["usage"]["prompt_tokens"] == 10,
              f"chunked: {r.status} {r.body[:200]!r}")
        r = read_resp(f)
        check(r.status == 200 and r.body == b"ok", "request after a chunked body")


def c_expect(port):
    body = json.dumps({"messages": [], "max_tokens": 1}).encode()
    with connect(port) as s:
        f = s.makefile("rb")
        s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: m\r\nExpect: 100-continue\r\n"
                  b"Content-Length: %d\r\n\r\n" % len(body))
        line = f.readline()
        check(line == b"HTTP/1.1 100 Continue\r\n" and f.readline() == b"\r\n",
              f"no 100 Continue: {line!r}")
        s.sendall(body)
        r = read_resp(f)
        check(r.status == 200, f"status {r.status}")


def c_bad_requests(port):
    r = one(port, "POST", "/v1/chat/completions", b"{not json")
    expect_error(r, 400, "invalid_request_error")
    r = one(port, "POST", "/v1/completions", b"")
    expect_error(r, 400, "invalid_request_error")
    r = one(port, "POST", "/v1/chat/completions", {"model": "x"})
    expect_error(r, 400, "invalid_request_error")
    check("messages" in r.json()["error"]["message"], f"{r.json()}")
    r = one(port, "POST", "/v1/completions", {"model": "x"})
    expect_error(r, 400, "invalid_request_error")
    r = chat(port, {"max_tokens": -1})
    expect_error(r, 400, "invalid_request_error")
    r = chat(port, headers=[("x-mock-latency-ms", "soon")])
    expect_error(r, 400, "invalid_request_error")
    check("x-mock-latency-ms" in r.json()["error"]["message"], f"{r.json()}")
    # The connection survives a 400 on the body.
    with connect(port) as s:
        f = s.makefile("rb")
        s.sendall(request("POST", "/v1/chat/completions", b"[1,") + request("GET", "/health"))
        check(read_resp(f).status == 400 and read_resp(f).status == 200,
              "keep-alive after a bad body")
    # A broken request line ends the connection with a 400.
    with connect(port) as s:
        s.sendall(b"GARBAGE\r\n\r\n")
        f = s.makefile("rb")
        r = read_resp(f)
        check(r.status == 400 and r.headers.get("connection") == "close", f"{r.status}")
        check(f.read() == b"", "still open after a bad request line")


def c_too_big(port):
    with connect(port) as s:
        s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: m\r\n"
                  b"Content-Length: 2000000\r\n\r\n")
        f = s.makefile("rb")
        r = read_resp(f)
        expect_error(r, 413, "invalid_request_error")
        check(r.headers.get("connection") == "close", "413 without Connection: close")
    # A chunked body that grows past 1 MiB while it is sent.
    with connect(port) as s:
        s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: m\r\n"
                  b"Transfer-Encoding: chunked\r\n\r\n")
        chunk = b"10000\r\n" + b"x" * 0x10000 + b"\r\n"
        try:
            for _ in range(18):  # 1.125 MiB
                s.sendall(chunk)
        except OSError:
            pass
        r = read_resp(s.makefile("rb"))
        expect_error(r, 413, "invalid_request_error")
    # Exactly 1 MiB is allowed (and is not JSON).
    with connect(port) as s:
        s.sendall(request("POST", "/v1/chat/completions", b" " * (1 << 20)))
        r = read_resp(s.makefile("rb"))
        expect_error(r, 400, "invalid_request_error")
    # A head over 16 KiB.
    with connect(port) as s:
        s.sendall(b"GET / HTTP/1.1\r\nX-Big: " + b"a" * 17000 + b"\r\n\r\n")
        r = read_resp(s.makefile("rb"))
        check(r.status == 431, f"big head: {r.status}")


def c_http10(port):
    with connect(port) as s:
        s.sendall(request("POST", "/v1/chat/completions", {"messages": [], "max_tokens": 2},
                          version="HTTP/1.0"))
        f = s.makefile("rb")
        r = read_resp(f)
        check(r.status == 200 and r.json()["usage"]["completion_tokens"] == 2, f"{r.status}")
        check(f.read() == b"", "HTTP/1.0 without keep-alive stayed open")


def c_max_conns(port):
    a, b = connect(port), connect(port)
    for s in (a, b):
        s.sendall(request("GET", "/health"))
        check(read_resp(s.makefile("rb")).status == 200, "first two connections")
    c = connect(port)  # completes in the kernel's backlog
    c.sendall(request("GET", "/health"))
    c.settimeout(0.5)
    try:
        data = c.recv(100)
        check(False, f"a third connection was served past --max-conns 2: {data!r}")
    except socket.timeout:
        pass
    a.close()
    c.settimeout(5)
    check(read_resp(c.makefile("rb")).status == 200, "not served once a connection closed")
    b.close()
    c.close()


def c_many_requests(port, n):
    for _ in range(int(n)):
        with connect(port) as s:
            s.sendall(request("POST", "/v1/chat/completions", {"messages": [], "max_tokens": 1},
                              [("x-api-key", "w")]))
            check(read_resp(s.makefile("rb")).status == 200, "status")
    s = stats(port)
    check(s["requests"] == int(n) and s["by_key"] == {"w": int(n)}, f"stats across workers: {s}")


DUR_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3}


def duration(v):
    """OpenAI's reset format ("20ms", "1m30.5s") in seconds; fails on anything else."""
    import re
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|h|m|s)", v)
    check(parts and "".join(n + u for n, u in parts) == v, f"not a duration: {v!r}")
    return sum(float(n) * DUR_UNITS[u] for n, u in parts)


def limit_headers(r, kinds):
    for k in kinds:
        for h in ("limit", "remaining", "reset"):
            check(f"x-ratelimit-{h}-{k}" in r.headers, f"no x-ratelimit-{h}-{k}: {r.headers}")
    return {k: (int(r.headers[f"x-ratelimit-limit-{k}"]),
                int(r.headers[f"x-ratelimit-remaining-{k}"]),
                duration(r.headers[f"x-ratelimit-reset-{k}"])) for k in kinds}


def c_no_limit_headers(port):
    r = chat(port, {"max_tokens": 1})
    check(r.status == 200, f"status {r.status}")
    check(not any(h.startswith("x-ratelimit-") for h in r.headers), f"headers {r.headers}")
    check("limit" not in stats(port), "stats has 'limit' without --limit-*")


def c_limit_rpm(port):
    """--limit-rpm 5: five pass with remaining 4..0, the sixth is OpenAI's 429."""
    reset(port)
    for i in range(5):
        r = chat(port, {"max_tokens": 1})
        check(r.status == 200, f"request {i}: {r.status} {r.body[:200]!r}")
        v = limit_headers(r, ["requests"])["requests"]
        check(v[0] == 5 and v[1] == 4 - i, f"request {i}: limit, remaining {v[:2]}")
        # 12 s refill one request: the reset is the time to full
        check(abs(v[2] - 12 * (i + 1)) < 1.5, f"request {i}: reset {v[2]}")
    check(not any("tokens" in h for h in r.headers if h.startswith("x-ratelimit")),
          f"token headers without --limit-tpm: {r.headers}")
    for stream in (False, True):
        r = chat(port, {"max_tokens": 1, "stream": stream})
        expect_error(r, 429, "requests")
        check(r.json()["error"]["code"] == "rate_limit_exceeded", f"code: {r.body!r}")
        ms = int(r.headers["retry-after-ms"])
        check(11000 <= ms <= 12000, f"retry-after-ms {ms}, want about 12000")
        check(int(r.headers["retry-after"]) == (ms + 999) // 1000,
              f"retry-after {r.headers['retry-after']} vs ms {ms}")
        v = limit_headers(r, ["requests"])["requests"]
        check(v[1] == 0, f"remaining on the 429: {v}")
    s = stats(port)
    check(s["limit"] == {"rpm": 5, "tpm": 0, "limited": 2, "served_requests": 5,
                         "served_tokens": s["limit"]["served_tokens"]}, f"limit stats {s}")
    check(s["requests"] == 7 and s["by_status"] == {"200": 5, "429": 2}, f"stats {s}")
    reset(port)
    s = stats(port)
    check(s["limit"]["limited"] == 0 and s["limit"]["served_requests"] == 0, f"reset: {s}")


def c_limit_tpm(port):
    """--limit-tpm 6000 (100 a second): a request costs prompt + completion."""
    big = [("x-mock-prompt-tokens", "5990")]
    r = chat(port, {"max_tokens": 10}, big)
    check(r.status == 200, f"6000 tokens of a full bucket: {r.status} {r.body[:200]!r}")
    v = limit_headers(r, ["tokens"])["tokens"]
    check(v[0] == 6000 and v[1] <= 10, f"after 6000: {v}")
    check(59 <= v[2] <= 60.5, f"reset after spending all: {v[2]}")
    t0 = time.monotonic()
    r = chat(port, {"max_tokens": 10}, [("x-mock-prompt-tokens", "90")])
    expect_error(r, 429, "tokens")
    ms = int(r.headers["retry-after-ms"])
    check(800 <= ms <= 1000, f"100 tokens at 100/s: retry-after-ms {ms}")
    check(r.headers["retry-after"] == "1", f"retry-after {r.headers['retry-after']}")
    time.sleep(max(0, ms / 1000 + 0.05 - (time.monotonic() - t0)))
    r = chat(port, {"max_tokens": 10}, [("x-mock-prompt-tokens", "90")])
    check(r.status == 200, f"after retry-after-ms: {r.status} {r.body[:200]!r}")
    # Over 2 s at most 200 more tokens (+ what refilled meanwhile) go through.
    t0, ok, n429 = time.monotonic(), 0, 0
    while time.monotonic() - t0 < 2:
        r = chat(port, {"max_tokens": 10}, [("x-mock-prompt-tokens", "10")])
        if r.status == 200:
            ok += 1
        else:
            n429 += 1
            time.sleep(0.005)
    check(8 <= ok <= 12, f"20-token requests over 2 s at 100 tokens/s: {ok} passed, {n429} refused")
    s = stats(port)["limit"]
    check(s["served_tokens"] == 6000 + 100 + 20 * ok, f"served tokens {s}")
    check(s["limited"] == n429 + 1, f"limited {s}")


if __name__ == "__main__":
    try:
        globals()["c_" + sys.argv[1]](*sys.argv[2:])
    except Fail as e:
        print(e)
        sys.exit(1)
    except Exception as e:
        print(f"{type(e).__name__}: {e}")
        sys.exit(1)
EOF

# --- options -----------------------------------------------------------------
t_begin "--help documents every option and header"
"$MOCK" --help >"$W/out" 2>"$W/err"
t_expect "exit status" "$?" -eq 0
t_check "Usage on stdout" grep -q '^Usage: mock-llm' "$W/out"
t_check "nothing on stderr" [ ! -s "$W/err" ]
for o in --listen --latency-ms --token-ms --completion-tokens --error-rate --seed --status \
	--close-mid-stream --max-conns --workers --limit-rpm --limit-tpm --verbose x-mock-latency-ms \
	x-mock-completion-tokens x-mock-prompt-tokens x-mock-status x-mock-close-mid-stream; do
	t_check "--help mentions $o" grep -q -- "$o" "$W/out"
done
t_end

# bad_opt WORD ARGS...: exit 2, nothing on stdout, one line naming WORD.
bad_opt() {
	local word=$1 rc
	shift
	t_begin "bad option exits 2: $*"
	timeout 5 "$MOCK" "$@" >"$W/out" 2>"$W/err"
	rc=$?
	t_expect "exit status" "$rc" -eq 2
	t_check "nothing on stdout" [ ! -s "$W/out" ]
	t_check "one line on stderr: $(head -c 300 "$W/err")" [ "$(wc -l <"$W/err")" = 1 ]
	t_check "stderr starts 'mock-llm: ' and names '$word': $(head -c 300 "$W/err")" \
		grep -q -- "^mock-llm: .*$word" "$W/err"
	t_end
}
bad_opt "--latency-ms" --latency-ms soon
bad_opt "--latency-ms" --latency-ms 99999999
bad_opt "--token-ms" --token-ms -5
bad_opt "--completion-tokens" --completion-tokens 1000001
bad_opt "--error-rate" --error-rate 1.5
bad_opt "--error-rate" --error-rate half
bad_opt "--status" --status 700
bad_opt "--status" --status 204
bad_opt "--close-mid-stream" --close-mid-stream x
bad_opt "--max-conns" --max-conns 0
bad_opt "--workers" --workers 0
bad_opt "--limit-rpm" --limit-rpm 0
bad_opt "--limit-tpm" --limit-tpm lots
bad_opt "--limit-tpm" --limit-tpm 1000000001
bad_opt "--listen" --listen 9000
bad_opt "--listen" --listen 127.0.0.1:70000
bad_opt "--listen" --listen nowhere:80
bad_opt "--listen" --listen
bad_opt "--bogus" --bogus
bad_opt "extra" extra

# --- one mock for most cases ---------------------------------------------------
t_begin "starts and prints 'listening on' with the port it chose"
t_check "mock started: $(cat "$W/main.err" 2>/dev/null)" start_mock main
t_end
P=${PORT[main]}

t_begin "a second mock on the same port fails with exit 1 and says why"
timeout 5 "$MOCK" --listen "127.0.0.1:$P" >"$W/out" 2>"$W/err"
t_expect "exit status" "$?" -eq 1
t_check "names bind and the cause: $(cat "$W/err")" grep -q "^mock-llm: bind 127.0.0.1:$P: .*in use" "$W/err"
t_end

t_begin "/health, /, /bench answer ok; other paths 404, GET on the LLM path 405"
py plain "$P"
t_end
t_begin "chat completions: OpenAI shape, prompt and completion usage, overrides"
py chat "$P"
t_end
t_begin "completions: text_completion shape and usage"
py completions "$P"
t_end
t_begin "streaming: one event per token in its own chunk, usage chunk, [DONE], framing"
py stream "$P"
t_end
t_begin "/stats counts requests by key and tokens; /stats/reset zeroes them"
py stats "$P"
t_end
t_begin "/stats in_flight and max_in_flight follow requests waiting on latency"
py in_flight "$P"
t_end
t_begin "without --limit-*: no x-ratelimit headers, no limit in /stats"
py no_limit_headers "$P"
t_end
t_begin "x-mock-status answers with that status and an OpenAI error"
py status_header "$P"
t_end
t_begin "x-mock-close-mid-stream cuts the stream after N tokens, without the last chunk"
py close_mid "$P" 3 yes
t_end
t_begin "keep-alive: several requests on one connection, then Connection: close"
py keepalive "$P"
t_end
t_begin "pipelining: four requests in one write are answered in order"
py pipeline "$P"
t_end
t_begin "pipelining behind a stream of 30000 tokens that fills every buffer"
py pipeline_big "$P"
t_end
t_begin "chunked request bodies, sent in pieces, with extensions and trailers"
py chunked_body "$P"
t_end
t_begin "Expect: 100-continue gets an interim 100"
py expect "$P"
t_end
t_begin "400 on bad JSON, missing fields and bad override headers"
py bad_requests "$P"
t_end
t_begin "413 on a body over 1 MiB (declared or chunked), 431 on a head over 16 KiB"
py too_big "$P"
t_end
t_begin "HTTP/1.0 gets an answer and a close"
py http10 "$P"
t_end

# --- mocks with options --------------------------------------------------------
t_begin "--latency-ms delays the first byte; x-mock-latency-ms overrides it"
t_check "mock started" start_mock lat --latency-ms 150
py latency "${PORT[lat]}" 150
t_end

t_begin "--token-ms spaces streamed tokens; --latency-ms comes first"
t_check "mock started" start_mock tok --latency-ms 100 --token-ms 100 --completion-tokens 6
py stream_timing "${PORT[tok]}" 100 100 6
t_end

t_begin "--error-rate 0.25 --seed 7: 500s within tolerance over 200, the same sequence again"
t_check "mock started" start_mock err1 --error-rate 0.25 --seed 7
py errseq "${PORT[err1]}" "$W/seq1" 30 70
t_check "mock started" start_mock err2 --error-rate 0.25 --seed 7
py errseq "${PORT[err2]}" "$W/seq2" 30 70
t_check "mock started" start_mock err3 --error-rate 0.25 --seed 8
py errseq "${PORT[err3]}" "$W/seq3" 30 70
t_check "the same seed gives the same sequence" cmp -s "$W/seq1" "$W/seq2"
t_check "another seed gives another sequence" differ "$W/seq1" "$W/seq3"
t_end

t_begin "--error-rate 0 and 1"
t_check "mock started" start_mock err0 --error-rate 0
py errseq "${PORT[err0]}" "$W/seq0" 0 0
t_check "mock started" start_mock errall --error-rate 1
py errseq "${PORT[errall]}" "$W/seqall" 200 200
t_end

t_begin "--status 503 answers every LLM request 503"
t_check "mock started" start_mock st --status 503
py status "${PORT[st]}" 503 server_error
t_end

t_begin "--close-mid-stream 2 cuts every stream after 2 tokens"
t_check "mock started" start_mock cut --close-mid-stream 2
py close_mid "${PORT[cut]}" 2 no
t_end

t_begin "--limit-rpm: x-ratelimit-*-requests on every answer, then 429 with retry-after"
t_check "mock started" start_mock lrpm --limit-rpm 5
py limit_rpm "${PORT[lrpm]}"
t_end

t_begin "--limit-tpm: prompt + completion tokens, refilled continuously, /stats limit"
t_check "mock started" start_mock ltpm --limit-tpm 6000
py limit_tpm "${PORT[ltpm]}"
t_end

t_begin "--max-conns 2: a third client waits until one leaves"
t_check "mock started" start_mock mc --max-conns 2
py max_conns "${PORT[mc]}"
t_end

t_begin "--workers 2: two processes, one shared /stats, SIGTERM stops all"
t_check "mock started" start_mock wk --workers 2
t_expect "worker processes" "$(pgrep -c -P "${PID[wk]}")" -eq 2
py many_requests "${PORT[wk]}" 40
kids=$(pgrep -P "${PID[wk]}" | tr '\n' ' ')
stop_mock wk TERM
t_expect "exit status after SIGTERM" "$RC" -eq 0
for k in $kids; do
	t_check "worker $k is gone" bash -c "! kill -0 $k 2>/dev/null"
done
t_end

t_begin "SIGINT and SIGTERM exit 0, also with requests in flight"
t_check "mock started" start_mock sig1
stop_mock sig1 INT
t_expect "exit status after SIGINT" "$RC" -eq 0
t_check "mock started" start_mock sig2 --latency-ms 5000
python3 -c "import socket,time; s=socket.create_connection(('127.0.0.1',${PORT[sig2]})); s.sendall(b'POST /v1/completions HTTP/1.1\r\nContent-Length: 14\r\n\r\n{\"prompt\":\"x\"}'); time.sleep(3)" &
client=$!
sleep 0.3
stop_mock sig2 TERM
t_expect "exit status after SIGTERM" "$RC" -eq 0
kill "$client" 2>/dev/null
wait "$client" 2>/dev/null
t_end

t_begin "the main mock is still up and no sanitizer report in any mock's stderr"
py plain "$P"
stop_mock main TERM
t_expect "exit status after SIGTERM" "$RC" -eq 0
t_check "no sanitizer report: $(grep -hE 'ERROR: AddressSanitizer|runtime error:|LeakSanitizer' "$W"/*.err | head -3)" \
	bash -c "! grep -qE 'ERROR: AddressSanitizer|runtime error:|LeakSanitizer' $W/*.err"
t_end
