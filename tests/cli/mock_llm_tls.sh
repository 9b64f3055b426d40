#!/usr/bin/env bash
# mock-llm over TLS (--tls-cert/--tls-key), with a private CA from
# tests/lib/tls_ca.sh: curl --cacert reaches it (plain answers, streams,
# a large upload, keep-alive); a client without the CA refuses it; the
# options are checked; pipelined requests over one TLS connection are all
# answered (bytes that OpenSSL decrypted ahead are not forgotten).
#
# MOCK_LLM=path runs another build (e.g. one with sanitizers).
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib.sh"
. "$here/../lib/tls_ca.sh"
MOCK=${MOCK_LLM:-${SLUICE_BUILD:-build}/mock-llm}
W=$(mktemp -d /tmp/sluice-mock-tls.XXXXXX)
MPID=""
cleanup() {
	[ -n "$MPID" ] && kill "$MPID" 2>/dev/null && wait "$MPID" 2>/dev/null
	rm -rf "$W"
}
trap cleanup EXIT

for tool in curl python3 openssl; do
	if ! command -v $tool >/dev/null; then
		echo "not ok setup: $tool is missing (apt-get install $tool)"
		exit 1
	fi
done
if [ ! -x "$MOCK" ]; then
	echo "not ok setup: $MOCK is missing (make build/mock-llm)"
	exit 1
fi
if ! tls_ca_make "$W"; then
	echo "not ok setup: tests/lib/tls_ca.sh could not make the certificates"
	exit 1
fi

"$MOCK" --listen 127.0.0.1:0 --tls-cert "$W/server.pem" --tls-key "$W/server.key" 2>"$W/mock.err" &
MPID=$!
PORT=""
for _ in $(seq 100); do
	PORT=$(sed -n 's/^mock-llm: listening on 127\.0\.0\.1:\([0-9]*\) (TLS)$/\1/p' "$W/mock.err")
	[ -n "$PORT" ] && break
	sleep 0.05
done
if [ -z "$PORT" ]; then
	echo "not ok setup: mock-llm --tls-cert did not start: $(cat "$W/mock.err")"
	exit 1
fi
URL=https://localhost:$PORT
CURL=(curl -sS --max-time 20 --cacert "$W/ca.pem")

t_begin mock_llm_tls_curl_verified
out=$("${CURL[@]}" "$URL/health" 2>&1)
t_check "GET /health over TLS: '$out'" [ "$out" = ok ]
out=$("${CURL[@]}" "https://127.0.0.1:$PORT/health" 2>&1)
t_check "by address (the certificate names 127.0.0.1): '$out'" [ "$out" = ok ]
body='{"model":"m","messages":[{"role":"user","content":"hello"}],"max_tokens":5}'
out=$("${CURL[@]}" -H 'content-type: application/json' -d "$body" "$URL/v1/chat/completions")
t_check "a chat completion with usage: $out" \
	sh -c 'printf "%s" "$1" | python3 -c "import json,sys; u=json.load(sys.stdin)[\"usage\"]; sys.exit(u[\"completion_tokens\"]!=5)"' _ "$out"
body='{"model":"m","messages":[{"role":"user","content":"hello"}],"max_tokens":4,"stream":true}'
out=$("${CURL[@]}" -N -H 'content-type: application/json' -d "$body" "$URL/v1/chat/completions")
t_expect "a stream of 4 tokens and [DONE]" "$(printf '%s\n' "$out" | grep -c '"content":"tok "')" -eq 4
t_check "the stream ends with [DONE]" sh -c 'printf "%s" "$1" | grep -q "^data: \[DONE\]"' _ "$out"
out=$("${CURL[@]}" -o /dev/null -o /dev/null -w '%{num_connects}:%{http_version} ' \
	"$URL/health" "$URL/stats")
t_check "two requests on one kept-alive TLS connection, HTTP/1.1 (ALPN): '$out'" \
	[ "$out" = "1:1.1 0:1.1 " ]
python3 -c 'import json; print(json.dumps({"model":"m","messages":[{"role":"user","content":"x"*900000}],"max_tokens":1}))' >"$W/big.json"
out=$("${CURL[@]}" -H 'content-type: application/json' --data-binary @"$W/big.json" "$URL/v1/chat/completions")
t_check "a 900 kB upload over TLS is answered: ${out:0:200}" \
	sh -c 'printf "%s" "$1" | grep -q "\"prompt_tokens\""' _ "$out"
t_end

t_begin mock_llm_tls_refused_without_the_ca
out=$(curl -sS --max-time 20 "$URL/health" 2>&1)
rc=$?
t_expect "curl without --cacert fails verification (exit 60): $out" "$rc" -eq 60
out=$(curl -sS --max-time 20 "http://localhost:$PORT/health" 2>&1)
t_check "plain HTTP to the TLS port gets no answer: '$out'" [ "$out" != ok ]
out=$("${CURL[@]}" "$URL/health" 2>&1)
t_check "and the server still serves afterwards: '$out'" [ "$out" = ok ]
t_end

t_begin mock_llm_tls_pipelined
out=$(timeout 30 python3 - "$PORT" "$W/ca.pem" <<'PY' 2>&1
import socket, ssl, sys
port, ca = int(sys.argv[1]), sys.argv[2]
ctx = ssl.create_default_context(cafile=ca)
s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=10),
                    server_hostname="localhost")
n = 20
s.sendall(b"GET /health HTTP/1.1\r\nHost: m\r\n\r\n" * n)
data = b""
while data.count(b"HTTP/1.1 200") < n:
    got = s.recv(65536)
    if not got:
        break
    data += got
print(data.count(b"HTTP/1.1 200"))
PY
)
t_check "20 pipelined requests in one TLS write, 20 answers: '$out'" [ "$out" = 20 ]
t_end

t_begin mock_llm_tls_options
"$MOCK" --listen 127.0.0.1:0 --tls-cert "$W/server.pem" 2>"$W/o1.err"
rc=$?
t_expect "--tls-cert without --tls-key: exit 2 ($(cat "$W/o1.err"))" "$rc" -eq 2
t_check "and says why" grep -q -- "--tls-key go together" "$W/o1.err"
"$MOCK" --listen 127.0.0.1:0 --tls-cert "$W/nope.pem" --tls-key "$W/server.key" 2>"$W/o2.err"
rc=$?
t_expect "a missing certificate: exit 1 ($(cat "$W/o2.err"))" "$rc" -eq 1
t_check "and names it" grep -q "nope.pem" "$W/o2.err"
"$MOCK" --listen 127.0.0.1:0 --tls-cert "$W/server.pem" --tls-key "$W/wrong.key" 2>"$W/o3.err"
rc=$?
t_expect "a key of another certificate: exit 1 ($(cat "$W/o3.err"))" "$rc" -eq 1
kill -TERM "$MPID"
wait "$MPID"
rc=$?
MPID=""
t_expect "SIGTERM exits 0" "$rc" -eq 0
t_check "no sanitizer report: $(grep -m1 -i 'sanitizer' "$W/mock.err")" \
	sh -c '! grep -qi sanitizer "$1"' _ "$W/mock.err"
t_end
