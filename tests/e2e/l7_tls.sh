#!/usr/bin/env bash
# tests/e2e/l7_tls.sh - sluice-l7 in front of an https backend, over
# loopback: a CA made here (tests/lib/tls_ca.sh), mock-llm serving TLS with
# its certificates, and `backend https://NAME:PORT tls-ca CA`.
#
#   1 verified: a request, a stream, an include_usage stream and a gzipped
#     answer through TLS, tokens counted as the mock counts them; the
#     upstream API key (api-key-file) replaces the caller's sluice key,
#     counted by the mock's own /stats, and a rotated key is taken on
#     SIGHUP; pooled connections reused (many requests, one handshake); new
#     connections resume the session (result="resumed")
#   2 a certificate for another name: 502, and the log says why
#   3 an expired certificate: 502, and the log says why
#   + a refused handshake is resent to the next backend
#   4 tls-verify off: works, and warns at start and at every reload
#   5 a name with an IPv4 and an IPv6 address (an /etc/hosts of the test's
#     own, bind-mounted in a private mount namespace): both used; one that
#     stops answering leaves rotation while the other serves; a changed hosts
#     file is picked up by the next resolution (resolve-every 1s), and a
#     failed lookup keeps the addresses
#
# sluice-l7 is the ASan+UBSan build with `kernel off`; each instance must
# exit 0 on SIGTERM with no sanitizer report.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib.sh"
. "$here/../lib/tls_ca.sh"
. "$here/lib/l7_suite.sh"
l7_suite_begin "l7 tls" openssl unshare

# A port free on both 127.0.0.1 and ::1.
free_port2() {
	"$PY" -c '
import socket
while True:
    a = socket.socket(); a.bind(("127.0.0.1", 0)); p = a.getsockname()[1]
    b = socket.socket(socket.AF_INET6)
    try:
        b.bind(("::1", p)); print(p); break
    except OSError:
        pass'
}

# tls_mock_start NAME CERT [LISTEN]: mock-llm over TLS with CERT.pem/CERT.key.
tls_mock_start() {
	mock_start_on "$1" "${3:-127.0.0.1:0}" --tls-cert "$TMP/$2.pem" --tls-key "$TMP/$2.key"
}
# tls_mock_stats ADDR:PORT: its /stats (-k: some mocks have certificates made
# to be refused).
tls_mock_stats() { curl -sfk --max-time 5 "https://$1/stats"; }
tls_mock_reset() { curl -sfk --max-time 5 -X POST "https://$1/stats/reset" >/dev/null; }

# "${WITH_HOSTS[@]}" FILE CMD...: CMD in a mount namespace of its own where
# /etc/hosts is FILE. (`cat >FILE` rewrites it in place, and a bind mount
# follows the inode.) So what "localhost" resolves to is the test's, not the
# machine's: one address, or two where the test wants two. unshare and sh
# exec, so $! of it in the background is CMD's own pid.
WITH_HOSTS=(unshare -m sh -c 'mount --bind "$0" /etc/hosts && exec "$@"')

# tls_l7_start NAME CONFIG-BODY [HOSTS]: sluice-l7 (ASan), its config in
# $TMP/NAME.cfg, stderr in $TMP/NAME.err, /etc/hosts HOSTS ($TMP/hosts.local).
tls_l7_start() {
	local L7_WRAP=("${WITH_HOSTS[@]}" "${3:-$TMP/hosts.local}")
	l7_start "$1" "kernel off
tier free
key sk-sluice-caller tier free
$2"
}
CHAT='{"model":"m","messages":[{"role":"user","content":"hello"}],"max_tokens":5}'
STREAM='{"model":"m","messages":[{"role":"user","content":"hello"}],"max_tokens":5,"stream":true}'
# req PORT [BODY [CURL-OPTIONS]]: the status; the body in $OUT ($TMP/body).
req() {
	curl -s --max-time 10 -o "${OUT:-$TMP/body}" -w '%{http_code}' \
		-H 'Authorization: Bearer sk-sluice-caller' -H 'Content-Type: application/json' \
		-d "${2:-$CHAT}" "${@:3}" "http://127.0.0.1:$1/v1/chat/completions"
}

t_begin "l7 tls setup: a CA, certificates, the upstream key"
t_check "tls_ca_make" tls_ca_make "$TMP"
t_check "a certificate for llm.test" tls_ca_leaf "$TMP" llm ca 'DNS:llm.test'
(umask 077; echo "sk-provider-secret" >"$TMP/provider.key")
printf '127.0.0.1 localhost\n' >"$TMP/hosts.local"
t_check "a private /etc/hosts (unshare -m, mount --bind)" \
	eval '"${WITH_HOSTS[@]}" "$TMP/hosts.local" cat /etc/hosts | grep -qx "127.0.0.1 localhost"'
t_end

# --- 1: verified ---------------------------------------------------------------
t_begin "l7 tls: verified backend, streams, the upstream key, pooling, resumption"
if tls_mock_start good server && tls_l7_start main "backend https://localhost:$MOCK_PORT_good \
tls-ca $TMP/ca.pem api-key-file $TMP/provider.key header x-tenant t-1"; then
	P=$L7_PORT_main M=$L7_MPORT_main B="https://localhost:$MOCK_PORT_good"
	t_check "the name resolved" wait_metric "$M" "sluice_l7_backend_addresses{backend=\"$B\"}" 1
	t_expect "a request through TLS: 200" "$(req "$P")" -eq 200
	t_check "its usage came back" grep -q '"completion_tokens":5' "$TMP/body"
	t_expect "a stream through TLS: 200" "$(req "$P" "$STREAM" -N)" -eq 200
	t_check "the stream ended with [DONE]" grep -q 'data: \[DONE\]' "$TMP/body"
	# As the OpenAI SDK asks: a stream with include_usage, a gzipped JSON answer.
	r0=$(metric "$M" 'sluice_l7_usage_reconciled_total{tier="free"}')
	t_expect "a stream with include_usage: 200" "$(req "$P" "${STREAM%\}},\"stream_options\":\
{\"include_usage\":true}}" -N)" -eq 200
	t_check "its usage event came through" grep -q '"usage":{"prompt_tokens"' "$TMP/body"
	t_expect "a gzipped answer: 200" "$(req "$P" "$CHAT" -H 'Accept-Encoding: gzip' \
		-H 'x-mock-gzip: 1' -D "$TMP/head")" -eq 200
	t_check "it reached the client gzipped" grep -qi '^content-encoding: gzip' "$TMP/head"
	t_expect "both reconciled from their usage" \
		$(($(metric "$M" 'sluice_l7_usage_reconciled_total{tier="free"}') - r0)) -eq 2
	n=0
	for ((i = 0; i < 16; i++)); do [ "$(req "$P")" = 200 ] && n=$((n + 1)); done
	t_expect "16 more requests: 200" "$n" -eq 16
	st=$(tls_mock_stats "127.0.0.1:$MOCK_PORT_good")
	t_expect "the mock counted 20 requests with the provider's key" \
		"$(jq -r '.by_key["sk-provider-secret"] // 0' <<<"$st")" -eq 20
	t_expect "the caller's sluice key never reached the mock" \
		"$(jq -r '.by_key["sk-sluice-caller"] // 0' <<<"$st")" -eq 0
	full=$(metric "$M" "sluice_l7_tls_handshakes_total{backend=\"$B\",result=\"ok\"}")
	res=$(metric "$M" "sluice_l7_tls_handshakes_total{backend=\"$B\",result=\"resumed\"}")
	echo "  20 sequential requests: $full full handshake(s), $res resumed" >&2
	t_expect "one connection, reused: one handshake for 20 requests" "$((full + res))" -eq 1
	# Four at once: three new connections, which offer the first one's session.
	par=()
	for ((i = 0; i < 4; i++)); do
		OUT=$TMP/par$i req "$P" "$CHAT" -H 'x-mock-latency-ms: 400' >"$TMP/par$i.code" &
		par+=($!)
	done
	wait "${par[@]}"
	t_expect "four at once: 200s" "$(cat "$TMP"/par?.code)" = 200200200200
	res=$(metric "$M" "sluice_l7_tls_handshakes_total{backend=\"$B\",result=\"resumed\"}")
	full=$(metric "$M" "sluice_l7_tls_handshakes_total{backend=\"$B\",result=\"ok\"}")
	echo "  after 4 concurrent: $full full, $res resumed" >&2
	t_expect "new connections resumed the session" "$res" -ge 1
	t_expect "no failed handshake" \
		"$(metric "$M" "sluice_l7_tls_handshakes_total{backend=\"$B\",result=\"failed\"}")" -eq 0
	st=$(tls_mock_stats "127.0.0.1:$MOCK_PORT_good")
	toks=$(($(metric "$M" 'sluice_l7_tokens_total{tier="free",direction="input"}') +
		$(metric "$M" 'sluice_l7_tokens_total{tier="free",direction="output"}')))
	t_expect "sluice-l7's token count = the mock's own" "$toks" -eq \
		"$(jq -r '.prompt_tokens + .completion_tokens' <<<"$st")"
	# A rotated key: the file rewritten, SIGHUP, and the next request has it.
	echo "sk-provider-rotated" >"$TMP/provider.key"
	kill -HUP "$L7_PID_main"
	t_check "reloaded" wait_log "$TMP/main.err" "reloaded"
	t_expect "after the reload: 200" "$(req "$P")" -eq 200
	t_expect "the rotated key reached the mock" "$(tls_mock_stats "127.0.0.1:$MOCK_PORT_good" |
		jq -r '.by_key["sk-provider-rotated"] // 0')" -eq 1
	t_check "no key in the log" not_grep "sk-provider" "$TMP/main.err"
	l7_stop main
fi
t_end

# --- 2, 3: refused certificates ------------------------------------------------
# refused NAME CERT WHY: a backend with CERT answers 502, the log says WHY.
refused() {
	local name=$1 cert=$2 why=$3 code
	tls_mock_start "$name" "$cert" || return
	tls_l7_start "$name" "backend https://localhost:$(eval echo "\$MOCK_PORT_$name") \
tls-ca $TMP/ca.pem" || return
	code=$(req "$(eval echo "\$L7_PORT_$name")")
	t_expect "$cert certificate: 502 to the client" "$code" -eq 502
	t_check "the 502 says why ($why)" grep -q "$why" "$TMP/body"
	t_check "the log says why ($why)" grep -q "TLS: certificate verify failed: .*$why" \
		"$TMP/$name.err"
	t_expect "the mock answered nothing" \
		"$(tls_mock_stats "127.0.0.1:$(eval echo "\$MOCK_PORT_$name")" | jq -r .requests)" -eq 0
	t_expect "failed handshakes counted" "$(metric "$(eval echo "\$L7_MPORT_$name")" \
		'sluice_l7_upstream_errors_total{kind="tls"}')" -ge 1
	l7_stop "$name"
}
t_begin "l7 tls: a certificate for another name is refused"
refused wrong wrong "hostname mismatch (the certificate is for another name"
t_end
t_begin "l7 tls: an expired certificate is refused"
refused expired expired "certificate has expired (the backend must renew"
t_end

t_begin "l7 tls: a refused handshake is resent to the next backend"
if tls_l7_start retry "backend https://localhost:$MOCK_PORT_wrong tls-ca $TMP/ca.pem
backend https://localhost:$MOCK_PORT_good tls-ca $TMP/ca.pem"; then
	tls_mock_reset "127.0.0.1:$MOCK_PORT_good"
	n=0
	for ((i = 0; i < 6; i++)); do [ "$(req "$L7_PORT_retry")" = 200 ] && n=$((n + 1)); done
	t_expect "6 requests, one backend refusing its certificate: all 200" "$n" -eq 6
	t_expect "the good backend served them" \
		"$(tls_mock_stats "127.0.0.1:$MOCK_PORT_good" | jq -r .requests)" -eq 6
	t_expect "the refused handshakes counted" \
		"$(metric "$L7_MPORT_retry" 'sluice_l7_upstream_errors_total{kind="tls"}')" -ge 1
	t_expect "and resent" "$(metric "$L7_MPORT_retry" sluice_l7_retries_total)" -ge 1
	l7_stop retry
fi
t_end

# --- 4: tls-verify off ---------------------------------------------------------
t_begin "l7 tls: tls-verify off works, and warns at start and at every reload"
if tls_l7_start off "backend https://localhost:$MOCK_PORT_wrong tls-verify off"; then
	t_check "warned at start" grep -q "TLS verification is OFF" "$TMP/off.err"
	t_expect "the wrong-name backend answers: 200" "$(req "$L7_PORT_off")" -eq 200
	kill -HUP "$L7_PID_off"
	t_check "reloaded" wait_log "$TMP/off.err" "reloaded"
	t_expect "warned again at the reload" "$(grep -c "TLS verification is OFF" "$TMP/off.err")" \
		-ge 2
	l7_stop off
fi
t_end

# --- 5: a name with two addresses, re-resolved ---------------------------------
t_begin "l7 tls: every address of a name used, a changed hosts file picked up"
DP=$(free_port2)
if tls_mock_start v4 llm "127.0.0.1:$DP" && tls_mock_start v6 llm "[::1]:$DP"; then
	printf '127.0.0.1 llm.test\n::1 llm.test\n' >"$TMP/hosts"
	if tls_l7_start dual "backend https://llm.test:$DP tls-ca $TMP/ca.pem resolve-every 1s" \
		"$TMP/hosts"; then
		P=$L7_PORT_dual M=$L7_MPORT_dual B="https://llm.test:$DP"
		t_check "both addresses resolved" \
			wait_metric "$M" "sluice_l7_backend_addresses{backend=\"$B\"}" 2
		n=0
		for ((i = 0; i < 10; i++)); do [ "$(req "$P")" = 200 ] && n=$((n + 1)); done
		t_expect "10 requests to llm.test: 200" "$n" -eq 10
		a=$(tls_mock_stats "127.0.0.1:$DP" | jq -r .requests)
		b=$(tls_mock_stats "[::1]:$DP" | jq -r .requests)
		echo "  127.0.0.1 got $a, ::1 got $b" >&2
		t_expect "127.0.0.1 served half" "$a" -eq 5
		t_expect "::1 served half" "$b" -eq 5
		# Health per address: ::1 gone, its requests resent to 127.0.0.1.
		kill -TERM "$MOCK_PID_v6"
		wait "$MOCK_PID_v6" 2>/dev/null
		n=0
		for ((i = 0; i < 8; i++)); do [ "$(req "$P")" = 200 ] && n=$((n + 1)); done
		t_expect "::1 down: 8 requests still 200" "$n" -eq 8
		t_check "::1 out of rotation after backend-fails refusals" grep -q \
			"llm.test:$DP (\[::1\]:$DP): 3 failures in a row" "$TMP/dual.err"
		t_expect "the backend is still up (127.0.0.1 is)" \
			"$(metric "$M" "sluice_l7_backend_up{backend=\"$B\"}")" -eq 1
		printf '127.0.0.1 llm.test\n' | cat >"$TMP/hosts"
		t_check "the next resolution has one address" \
			wait_metric "$M" "sluice_l7_backend_addresses{backend=\"$B\"}" 1
		tls_mock_reset "127.0.0.1:$DP"
		c0=$(metric "$M" 'sluice_l7_upstream_errors_total{kind="connect"}')
		n=0
		for ((i = 0; i < 6; i++)); do [ "$(req "$P")" = 200 ] && n=$((n + 1)); done
		t_expect "6 more: 200" "$n" -eq 6
		t_expect "all to 127.0.0.1" "$(tls_mock_stats "127.0.0.1:$DP" | jq -r .requests)" -eq 6
		t_expect "no connect to ::1 tried any more" \
			"$(metric "$M" 'sluice_l7_upstream_errors_total{kind="connect"}')" -eq "$c0"
		t_check "the change was logged" grep -q "llm.test:$DP: 1 address(es): 127.0.0.1:$DP" \
			"$TMP/dual.err"
		t_check "resolutions counted" test "$(metric "$M" \
			"sluice_l7_backend_resolutions_total{backend=\"$B\",result=\"ok\"}")" -ge 2
		# The name gone: the lookup fails, the address it had stays.
		printf '127.0.0.2 other.test\n' | cat >"$TMP/hosts"
		t_check "a failed lookup is counted" wait_metric "$M" \
			"sluice_l7_backend_resolutions_total{backend=\"$B\",result=\"failed\"}" 1
		t_check "and logged" grep -q "llm.test:$DP: .*(keeping its 1 address(es))" \
			"$TMP/dual.err"
		t_expect "the address stays" \
			"$(metric "$M" "sluice_l7_backend_addresses{backend=\"$B\"}")" -eq 1
		t_expect "requests still go: 200" "$(req "$P")" -eq 200
		l7_stop dual
	fi
fi
t_end
exit 0
