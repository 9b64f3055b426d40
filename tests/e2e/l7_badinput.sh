#!/usr/bin/env bash
# tests/e2e/l7_badinput.sh - sluice-l7 (the ASan+UBSan build) against bad
# input from both sides, on loopback with `kernel off`.
#
# Clients: raw sockets (l7bad_client.py) send exactly the bytes under test:
# malformed request lines, oversized heads and bodies, bad chunked framing,
# unsupported codings and versions, request-smuggling shapes, slow heads and
# bodies, bad JSON, and a burst of random garbage. Each answer's status is
# checked, the error body is OpenAI style, a rejected connection is closed,
# and mock-llm's own request count shows none of it reached the backend.
# Backends: one that closes mid-stream (mock-llm), one that answers garbage,
# one that never answers, and a closed port. At the end every sluice-l7 is
# alive, holds no client connection, and on SIGTERM exits 0 with no
# sanitizer report.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib.sh"
. "$here/lib/l7bad_lib.sh"
trap l7_cleanup EXIT

LH=127.0.0.1
# conf LISTEN_PORT METRICS_PORT BACKEND_PORT [BACKEND_TIMEOUT [EXTRA LINES]]
conf() {
	cat <<-EOF
	listen $LH:$1
	backend $LH:$3
	metrics $LH:$2
	kernel off
	period 6s
	max-header-bytes 4k
	max-body-bytes 8k
	header-timeout 1s
	body-timeout 1s
	idle-timeout 10s
	connect-timeout 1s
	backend-timeout ${4:-5s}
	tier free rpm 60000 tpm 100000000 concurrency 64
	default-tier free
	${5:-}
	EOF
}

setup_ok=1
t_begin "l7 bad input: mock-llm and sluice-l7 (ASan+UBSan) start"
t_check "mock-llm starts" mock_start mock --latency-ms 20 || setup_ok=0
LP=$(free_port) MP=$(free_port)
t_check "sluice-l7 starts" l7_start main "$(conf "$LP" "$MP" "$MOCK_PORT")" || setup_ok=0
t_end
[ "$setup_ok" = 1 ] || exit 1

t_begin "l7 bad input: well-formed requests are proxied (JSON and streamed)"
r=$(l7req $LH "$LP" 'post(CHAT)')
t_expect "JSON request: status" "$(jget "$r" .status)" -eq 200
t_expect "JSON request: usage from the mock" "$(jget "$r" '.body | fromjson | .usage.completion_tokens')" -eq 8
r=$(l7req $LH "$LP" 'post(STREAM)')
t_expect "streamed request: status" "$(jget "$r" .status)" -eq 200
t_check "streamed request: the chunked body is complete" [ "$(jget "$r" .chunked_complete)" = true ]
t_check "streamed request: it ends with data: [DONE]" grep -q 'data: \[DONE\]' <<<"$(jget "$r" .body)"
t_end

mock_before=$(mock_stat "$MOCK_PORT" .requests)
declare -A got=()

# bad NAME STATUS EXPR [l7req options]: the answer is STATUS with an OpenAI
# style error body, and the connection is closed after it.
bad() {
	local name=$1 status=$2 expr=$3 r; shift 3
	t_begin "l7 bad input: $name -> $status"
	r=$(l7req $LH "$LP" "$expr" "$@")
	t_expect "status (answer: $(jget "$r" '.status, .error' | tr '\n' ' '))" \
		"$(jget "$r" '.status // 0')" -eq "$status"
	t_check "error body {\"error\":{type: invalid_request_error, message}}" \
		[ "$(jget "$r" '.body | fromjson | .error | "\(.type) \(.message | length > 0) \(.param)"')" \
		= "invalid_request_error true null" ]
	t_check "the connection is closed after the answer" [ "$(jget "$r" .closed)" = true ]
	t_check "an x-request-id ($(jget "$r" '.headers["x-request-id"]'))" \
		grep -qE '^[0-9a-f]{24}$' <<<"$(jget "$r" '.headers["x-request-id"] // ""')"
	got[$status]=$((${got[$status]:-0} + 1))
	_last=$r
	t_end
}

GET='b"GET /v1/models HTTP/1.1\r\nHost: l7\r\n'
CHATH='b"POST /v1/chat/completions HTTP/1.1\r\nHost: l7\r\n'
bad "malformed request line" 400 'b"GARBAGE\r\n\r\n"'
bad "request line without a version" 400 'b"GET /v1/models\r\nHost: l7\r\n\r\n"'
bad "head over max-header-bytes (4k)" 431 "$GET"'X-Big: " + b"a" * 6000 + b"\r\n\r\n"'
bad "Content-Length over max-body-bytes (8k)" 413 "$CHATH"'Content-Length: 9000\r\n\r\n" + b"{" * 100'
bad "chunked body over max-body-bytes" 413 \
	"$CHATH"'Transfer-Encoding: chunked\r\n\r\n" + (b"1000\r\n" + b"a" * 4096 + b"\r\n") * 3 + b"0\r\n\r\n"'
bad "chunked: bad hex size" 400 "$CHATH"'Transfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n"'
bad "chunked: no CRLF after the data" 400 "$CHATH"'Transfer-Encoding: chunked\r\n\r\n3\r\nabcXX0\r\n\r\n"'
bad "Transfer-Encoding gzip" 501 "$CHATH"'Transfer-Encoding: gzip\r\n\r\n"'
bad "HTTP/2.0 request line" 505 'b"GET /v1/models HTTP/2.0\r\nHost: l7\r\n\r\n"'
bad "smuggling: obs-fold header line" 400 "$GET"'X-A: b\r\n  folded\r\n\r\n"'
bad "smuggling: space before the colon" 400 'b"GET /v1/models HTTP/1.1\r\nHost : l7\r\n\r\n"'
bad "smuggling: Content-Length and Transfer-Encoding" 400 \
	"$CHATH"'Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /v1/models HTTP/1.1\r\nHost: l7\r\n\r\n"'
bad "smuggling: two different Content-Lengths" 400 \
	"$CHATH"'Content-Length: 2\r\nContent-Length: 40\r\n\r\n{}"'
bad "slow client: half a head, then nothing" 408 "$GET"'Accept: */*\r\n"' --wait 4
t_begin "l7 bad input: the 408 for a slow head comes after header-timeout (1 s)"
t_check "answered $(jget "$_last" .secs) s after the last byte: within 0.8..2.5 s" \
	awk -v s="$(jget "$_last" '.secs // 99')" 'BEGIN { exit !(s >= 0.8 && s <= 2.5) }'
t_end
bad "slow body: 10 of 100 bytes, then nothing" 408 "$CHATH"'Content-Length: 100\r\n\r\n{\"model\":"' --wait 4
t_begin "l7 bad input: the 408 for a slow body comes after body-timeout (1 s)"
t_check "answered $(jget "$_last" .secs) s after the last byte: within 0.8..2.5 s" \
	awk -v s="$(jget "$_last" '.secs // 99')" 'BEGIN { exit !(s >= 0.8 && s <= 2.5) }'
t_end

# A client that writes its whole body before it reads (as many HTTP
# libraries do): the kernel must not reset the connection under the 413
# (sluice-l7 answers, shuts down its write side and discards the upload).
t_begin "l7 bad input: a 4 MiB upload written whole before reading gets its 413, 20 of 20"
n413=0 other=""
for i in $(seq 20); do
	r=$(l7req $LH "$LP" "$CHATH"'Content-Length: 4194304\r\n\r\n" + b"a" * 4194304')
	if [ "$(jget "$r" '.status // 0')" = 413 ] && [ "$(jget "$r" .closed)" = true ]; then
		n413=$((n413 + 1))
	else
		other="$(jget "$r" '"\(.status) \(.error)"')"
	fi
done
got[413]=$((${got[413]:-0} + n413))
t_expect "413s read whole, then the close (else: $other)" "$n413" -eq 20
r=$(l7req $LH "$LP" "$CHATH"'X-Big: " + b"a" * 6000 + b"\r\nContent-Length: 4194304\r\n\r\n" + b"a" * 4194304')
t_expect "an oversized head with a 4 MiB body behind it: 431 ($(jget "$r" .error))" \
	"$(jget "$r" '.status // 0')" -eq 431
[ "$(jget "$r" '.status // 0')" = 431 ] && got[431]=$((${got[431]:-0} + 1))
t_end

t_begin "l7 bad input: x-request-id: a safe one is echoed, an unsafe or long one replaced"
r=$(l7req $LH "$LP" "$GET"'X-Request-Id: req-42.a_b:c\r\nX-Big: " + b"a" * 6000 + b"\r\n\r\n"')
got[431]=$((${got[431]:-0} + 1))
t_expect "431 answered" "$(jget "$r" '.status // 0')" -eq 431
r=$(l7req $LH "$LP" 'post(b"[1]", b"X-Request-Id: req-42.a_b:c\r\n")')
got[400]=$((${got[400]:-0} + 1))
t_expect "a 400 after the head was read echoes the client's id" \
	"$(jget "$r" '.headers["x-request-id"] // ""')" = "req-42.a_b:c"
r=$(l7req $LH "$LP" 'post(b"[1]", b"X-Request-Id: a<b>\r\n")')
got[400]=$((${got[400]:-0} + 1))
t_check "unsafe characters: our own id instead" \
	grep -qE '^[0-9a-f]{24}$' <<<"$(jget "$r" '.headers["x-request-id"] // ""')"
r=$(l7req $LH "$LP" 'post(b"[1]", b"X-Request-Id: " + b"a" * 65 + b"\r\n")')
got[400]=$((${got[400]:-0} + 1))
t_check "65 characters: our own id instead" \
	grep -qE '^[0-9a-f]{24}$' <<<"$(jget "$r" '.headers["x-request-id"] // ""')"
a=$(jget "$(l7req $LH "$LP" 'post(b"[1]")')" '.headers["x-request-id"]')
b=$(jget "$(l7req $LH "$LP" 'post(b"[1]")')" '.headers["x-request-id"]')
got[400]=$((${got[400]:-0} + 2))
t_check "two requests, two ids ($a, $b)" test -n "$a" -a "$a" != "$b"
t_end

t_begin "l7 bad input: bad JSON to /v1/chat/completions -> 400, OpenAI style"
r=$(l7req $LH "$LP" 'post(b"{\"model\": \"m\", \"messages\": [")')
t_expect "status" "$(jget "$r" '.status // 0')" -eq 400
t_check "error.type invalid_request_error, param null, message says JSON" \
	[ "$(jget "$r" '.body | fromjson | .error | "\(.type) \(.param) \(.message | test("JSON"))"')" \
	= "invalid_request_error null true" ]
got[400]=$((${got[400]:-0} + 1))
r=$(l7req $LH "$LP" 'post(b"[1, 2]")')
t_expect "a JSON array, not an object: status" "$(jget "$r" '.status // 0')" -eq 400
got[400]=$((${got[400]:-0} + 1))
t_end

t_begin "l7 bad input: none of it reached the backend; sluice-l7 counted each by status"
t_expect "mock-llm's request count unchanged" "$(mock_stat "$MOCK_PORT" .requests)" -eq "$mock_before"
for s in 400 408 413 431 501 505; do
	t_expect "sluice_l7_bad_requests_total{code=\"$s\"} = what the clients got" \
		"$(l7_metric main "sluice_l7_bad_requests_total{code=\"$s\"}")" -eq "${got[$s]:-0}"
done
t_end

t_begin "l7 bad input: a backend that closes mid-stream -> the client's connection is cut"
r=$(l7req $LH "$LP" 'post(STREAM, b"x-mock-close-mid-stream: 3\r\n")')
t_expect "status" "$(jget "$r" '.status // 0')" -eq 200
t_check "no terminating chunk" [ "$(jget "$r" .chunked_complete)" = false ]
t_check "the connection is closed" [ "$(jget "$r" .closed)" = true ]
t_expect "the 3 token events before the cut arrived" "$(jget "$r" .body | grep -c '^data: {')" -eq 3
t_check "no data: [DONE]" bash -c '! grep -q "\[DONE\]" <<<"$1"' _ "$(jget "$r" .body)"
r=$(l7req $LH "$LP" 'post(STREAM)')
t_check "the next stream is whole" [ "$(jget "$r" '.status, .chunked_complete' | tr '\n' ' ')" = "200 true " ]
t_end

t_begin "l7 bad input: 200 connections of random bytes"
g=$(in_ns "$L7_PY" "$L7_LIB/l7bad_client.py" garbage $LH "$LP" 200 "${L7_SEED:-$RANDOM}")
echo "  garbage: $g" >&2
t_expect "every connection was accepted" "$(jget "$g" .connect_errors)" -eq 0
t_expect "connections that read an answer got one" "$(jget "$g" .answered)" -ge 1
t_check "only 4xx/5xx answers" [ "$(jget "$g" '[.status | keys[] | select(test("^[45]") | not)] | length')" = 0 ]
t_check "sluice-l7 is alive" l7_alive main
r=$(l7req $LH "$LP" 'post(CHAT)')
t_expect "a good request after it: status" "$(jget "$r" '.status // 0')" -eq 200
t_end

# Backends that misbehave: one sluice-l7 each.
py_backend() {
	_bg "$1" "$L7_PY" "$L7_LIB/l7bad_backend.py" "$2" $LH "$3" "$L7_TMP/$1.ready" 120
	for _ in $(seq 100); do
		[ -e "$L7_TMP/$1.ready" ] && return 0
		sleep 0.05
	done
	return 1
}

t_begin "l7 bad input: a backend that answers garbage -> 502"
BP=$(free_port) LP2=$(free_port) MP2=$(free_port)
t_check "garbage backend starts" py_backend gbe garbage "$BP"
t_check "sluice-l7 starts" l7_start garbage "$(conf "$LP2" "$MP2" "$BP")"
r=$(l7req $LH "$LP2" 'post(CHAT)')
t_expect "status" "$(jget "$r" '.status // 0')" -eq 502
t_check "error type server_error" [ "$(jget "$r" '.body | fromjson | .error.type')" = server_error ]
t_expect "upstream_errors{kind=malformed}" "$(l7_metric garbage 'sluice_l7_upstream_errors_total{kind="malformed"}')" -eq 1
t_end

t_begin "l7 bad input: a backend that never answers, backend-timeout 1s -> 504"
BP=$(free_port) LP3=$(free_port) MP3=$(free_port)
t_check "silent backend starts" py_backend sbe silent "$BP"
t_check "sluice-l7 starts" l7_start silent "$(conf "$LP3" "$MP3" "$BP" 1s)"
r=$(l7req $LH "$LP3" 'post(CHAT)' --wait 5)
t_expect "status" "$(jget "$r" '.status // 0')" -eq 504
t_check "after $(jget "$r" .secs) s: within 0.8..2.5 s" \
	awk -v s="$(jget "$r" '.secs // 99')" 'BEGIN { exit !(s >= 0.8 && s <= 2.5) }'
t_expect "upstream_errors{kind=timeout}" "$(l7_metric silent 'sluice_l7_upstream_errors_total{kind="timeout"}')" -eq 1
t_end

t_begin "l7 bad input: a closed backend port -> 502, then 503 once it is marked down"
BP=$(free_port) LP4=$(free_port) MP4=$(free_port)
t_check "sluice-l7 starts" l7_start closed "$(conf "$LP4" "$MP4" "$BP" 5s "backend-fails 2
backend-down 30s")"
r1=$(l7req $LH "$LP4" 'post(CHAT)')
r2=$(l7req $LH "$LP4" 'post(CHAT)')
r3=$(l7req $LH "$LP4" 'post(CHAT)')
t_expect "first: status" "$(jget "$r1" '.status // 0')" -eq 502
t_expect "second: status" "$(jget "$r2" '.status // 0')" -eq 502
t_expect "third, after backend-fails 2: status" "$(jget "$r3" '.status // 0')" -eq 503
t_expect "the 503 carries Retry-After" "$(jget "$r3" '.headers["retry-after"] // 0')" -ge 1
t_expect "backend_up 0" "$(l7_metric closed "sluice_l7_backend_up{backend=\"$LH:$BP\"}")" -eq 0
t_expect "upstream_errors{kind=connect}" "$(l7_metric closed 'sluice_l7_upstream_errors_total{kind="connect"}')" -eq 2
t_end

t_begin "l7 bad input: every sluice-l7 alive, no client connection left open"
for n in main garbage silent closed; do
	t_check "$n is alive" l7_alive "$n"
	t_check "$n: sluice_l7_client_connections back to 0" \
		l7_wait_metric "$n" sluice_l7_client_connections 0 5
done
t_end

t_begin "l7 bad input: SIGTERM -> exit 0, no ASan/UBSan/leak report"
for n in main garbage silent closed; do
	t_check "$n: exit 0 and a clean stderr" l7_stop "$n"
done
t_end
