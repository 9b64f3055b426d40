#!/usr/bin/env bash
# tests/e2e/l7_policy.sh - sluice-l7's policy end to end, over loopback:
# rate and token limits per key (measured against the mock backend's own
# counts and the client's), usage reconciliation (JSON and streams), the
# x-ratelimit-* headers and 429s, the priority queue, shadow tiers,
# keep-alive and pipelining, passive backend health, a SIGHUP reload, a
# fresh key's headers, requests too large for a limit, and what a request
# sluice-l7 could not serve costs (nothing).
#
# sluice-l7 runs as the ASan+UBSan build with `kernel off` (no BPF maps);
# each instance is stopped with SIGTERM at the end and must exit 0 with no
# sanitizer report. A "minute" is `period 6s`, so a limit of rpm R admits
# R/6 requests a second after its burst. The load client is
# lib/l7_client.py; the backend is build/mock-llm, whose GET /stats counts
# what reached it.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib.sh"
. "$here/lib/l7_suite.sh"
l7_suite_begin "l7 policy"

# fcmp A OP B: a floating-point comparison (OP: < <= > >=).
fcmp() {
	awk -v a="$1" -v b="$3" -v op="$2" 'BEGIN {
		if (op == "<") r = a < b; else if (op == "<=") r = a <= b
		else if (op == ">") r = a > b; else r = a >= b
		exit !r }'
}

# chat BODY-CHARS MAX-TOKENS [EXTRA-JSON]: a chat request body with one
# user message of BODY-CHARS ASCII characters. Its estimate is
# ceil(chars/4) + 4 + 3 input tokens and MAX-TOKENS output.
chat() {
	local content
	content=$(head -c "$1" /dev/zero | tr '\0' a)
	printf '{"model":"m","messages":[{"role":"user","content":"%s"}],"max_tokens":%s%s}' \
		"$content" "$2" "${3:-}"
}

# L7_CASES="3 8": run only those numbered cases (the setup always runs).
want() { [ -z "${L7_CASES:-}" ] || [[ " $L7_CASES " == *" $1 "* ]]; }

# --- the main instance --------------------------------------------------------

setup_ok=1
t_begin "l7 policy setup: mock-llm and sluice-l7 (ASan) start"
t_check "start mock-llm" mock_start main --token-ms 50 || setup_ok=0
MAIN_CFG_BODY() {
	cat <<EOF
backend 127.0.0.1:$MOCK_PORT_main
period 6s
kernel off
unknown-keys refuse
queue-timeout 5s
# case 1: requests per key
tier rq priority 0 rpm 600 rpm-burst 50
# case 2: tokens per key (total)
tier tk priority 0 tpm 60000 tpm-burst 2000 tpm-kind total
# cases 3, 4: reconciliation (refill 10 tokens/s: small beside a 990 refund)
tier rc priority 0 rpm 60000 tpm 60 tpm-burst 20000 tpm-kind total
# case 5: headers (0.5 requests/s, so Retry-After is 2)
tier hd priority 0 rpm 3 rpm-burst 3 tpm 6000 tpm-burst 50000 tpm-kind total
# case 7: shadow
tier sh priority 0 rpm 60 rpm-burst 3 shadow
# case 10: reload
tier rl priority 0 rpm $RL_RPM tpm 60000
# case 11: too large for tpm 1000; a fresh key of a big per-minute limit
tier tl priority 0 rpm 600 tpm 1000
tier fr priority 0 rpm 600 tpm 10000000
default-tier rq
key sk-rq-1 tier rq
key sk-rq-2 tier rq
key sk-tk-1 tier tk
key sk-tk-2 tier tk
key sk-rc-1 tier rc
key sk-hd-1 tier hd
key sk-sh-1 tier sh
key sk-rl-1 tier rl
key sk-tl-1 tier tl
key sk-fr-1 tier fr
EOF
}
RL_RPM=120
[ "$setup_ok" = 1 ] && { t_check "start sluice-l7 main" l7_start main "$(MAIN_CFG_BODY)" || setup_ok=0; }
t_end
[ "$setup_ok" = 1 ] || exit 1
M=127.0.0.1:$L7_PORT_main MP=$L7_MPORT_main BP=$MOCK_PORT_main

# --- 1. requests per minute, per key -----------------------------------------

if want 1; then
t_begin "rpm per key within 5% (two keys at once, each independently)"
mock_reset "$BP"
# rpm 600 per 6 s = 100/s after a burst of 50; each key is driven at 200/s.
out=$($CLIENT load --addr "$M" --key sk-rq-1 --key sk-rq-2 --rate 200 --duration 6 \
	--body "$(chat 20 5)" --header 'x-mock-completion-tokens: 5')
stats=$(mock_stats "$BP")
for k in sk-rq-1 sk-rq-2; do
	ok=$(jq -r --arg k "$k" '.[$k].ok' <<<"$out")
	sent=$(jq -r --arg k "$k" '.[$k].sent' <<<"$out")
	n429=$(jq -r --arg k "$k" '.[$k].status["429"] // 0' <<<"$out")
	span=$(jq -r --arg k "$k" '.[$k].span' <<<"$out")
	at_mock=$(jq -r --arg k "$k" '.by_key[$k] // 0' <<<"$stats")
	exp=$(awk -v s="$span" 'BEGIN { printf "%d", 50 + 600 * s / 6 }')
	echo "  $k: sent $sent over ${span}s, 200s $ok (mock $at_mock), 429s $n429, expected $exp" >&2
	t_expect "$k: driven above the limit (sent >= 1.5x expected)" $((sent * 2)) -ge $((exp * 3))
	t_expect "$k: every request answered 200 or 429" $((ok + n429)) -eq "$sent"
	t_expect "$k: the mock counted the client's 200s" "$at_mock" -eq "$ok"
	t_check "$k: 200s $ok within 5% of $exp" within 5 "$ok" "$exp"
done
t_expect "sluice-l7 counted the rpm rejections" \
	"$(metric "$MP" 'sluice_l7_rejections_total{tier="rq",limit="rpm"}')" -ge 1
t_end
fi

# --- 2. tokens per minute, per key -------------------------------------------

if want 2; then
t_begin "tpm per key within 5% (tpm-kind total, two keys at once)"
mock_reset "$BP"
# 40 characters: 10 + 4 + 3 = 17 input tokens estimated, and the mock
# counts 17; max_tokens 83 and the mock answers 83: 100 tokens a request,
# estimated exactly. tpm 60000 per 6 s = 10000 tokens/s = 100 requests/s
# after a burst of 2000; each key is driven at 200/s.
out=$($CLIENT load --addr "$M" --key sk-tk-1 --key sk-tk-2 --rate 200 --duration 6 \
	--body "$(chat 40 83)" --header 'x-mock-prompt-tokens: 17' \
	--header 'x-mock-completion-tokens: 83')
stats=$(mock_stats "$BP")
sum=0
for k in sk-tk-1 sk-tk-2; do
	ok=$(jq -r --arg k "$k" '.[$k].ok' <<<"$out")
	sent=$(jq -r --arg k "$k" '.[$k].sent' <<<"$out")
	n429=$(jq -r --arg k "$k" '.[$k].status["429"] // 0' <<<"$out")
	toks=$(jq -r --arg k "$k" '.[$k].usage_tokens' <<<"$out")
	span=$(jq -r --arg k "$k" '.[$k].span' <<<"$out")
	at_mock=$(jq -r --arg k "$k" '.by_key[$k] // 0' <<<"$stats")
	exp=$(awk -v s="$span" 'BEGIN { printf "%d", 2000 + 60000 * s / 6 }')
	echo "  $k: sent $sent over ${span}s, 200s $ok (mock $at_mock) with $toks tokens, expected $exp (+100)" >&2
	t_expect "$k: driven above the limit" $((sent * 100)) -ge $((exp * 3 / 2))
	t_expect "$k: every request answered 200 or 429" $((ok + n429)) -eq "$sent"
	t_expect "$k: the mock counted the client's 200s" "$at_mock" -eq "$ok"
	t_expect "$k: 100 tokens in every 200" "$toks" -eq $((ok * 100))
	t_check "$k: tokens $toks within 5% (+ one request) of $exp" within 5 "$toks" $((exp + 50))
	sum=$((sum + toks))
done
t_expect "the mock's token count = the sum of the client's" \
	"$(jq -r '.prompt_tokens + .completion_tokens' <<<"$stats")" -eq "$sum"
t_expect "sluice-l7 counted tpm rejections" \
	"$(metric "$MP" 'sluice_l7_rejections_total{tier="tk",limit="tpm"}')" -ge 1
t_end
fi

# --- 3. reconciliation, JSON --------------------------------------------------

# rc_req MAX-TOKENS COMPLETION [EXTRA-JSON]: one request of key sk-rc-1 (17
# input tokens); prints the client's JSON.
rc_req() {
	$CLIENT req --addr "$M" --key sk-rc-1 --body "$(chat 40 "$1" "${3:-}")" \
		--header 'x-mock-prompt-tokens: 17' --header "x-mock-completion-tokens: $2"
}
# hdr NAME JSON [INDEX]: a header of the INDEXth response (default 0).
hdr() { jq -r --arg h "$1" --argjson i "${3:-0}" '.responses[$i].headers[$h] // "none"' <<<"$2"; }
tok_metric() {
	echo $(($(metric "$MP" "sluice_l7_tokens_total{tier=\"$1\",direction=\"input\"}") + \
		$(metric "$MP" "sluice_l7_tokens_total{tier=\"$1\",direction=\"output\"}")))
}

if want 3; then
t_begin "reconciliation, JSON: refund when usage < estimate, charge when more"
mock_reset "$BP"
m0=$(tok_metric rc)
# Drain the bucket well under its burst first, so no refund is capped.
a=$(rc_req 5000 5000)
# b reserves 17 + 1000 and uses 17 + 10; c comes after b's refund of 990.
b=$(rc_req 1000 10)
c=$(rc_req 10 10)
ra=$(hdr x-ratelimit-remaining-tokens "$a")
rb=$(hdr x-ratelimit-remaining-tokens "$b")
rc=$(hdr x-ratelimit-remaining-tokens "$c")
echo "  remaining tokens: after a $ra, b $rb, c $rc" >&2
t_expect "a, b, c answered 200" "$(jq -s '[.[].responses[0].status] | map(select(. == 200)) | length' \
	<<<"$a$b$c")" -eq 3
t_expect "b's answer shows its whole reservation taken (a - 1017, + refill)" "$rb" -le $((ra - 1017 + 20))
# c = b + 990 (refund) - 27 (c's own estimate) + refill (10/s)
t_expect "c's remaining went back up by the refund (>= 990 - 27)" $((rc - rb)) -ge $((990 - 27))
t_expect "c's remaining: refund plus refill noise (<= 990 - 27 + 20)" $((rc - rb)) -le $((990 - 27 + 20))
# The reverse: d reserves 17 + 10, the backend answers 500 tokens.
d=$(rc_req 10 500)
e=$(rc_req 10 10)
rd=$(hdr x-ratelimit-remaining-tokens "$d")
re=$(hdr x-ratelimit-remaining-tokens "$e")
echo "  remaining tokens: after d $rd, e $re" >&2
t_expect "d (500 over 10 reserved) answered 200 with 517 tokens" \
	"$(jq -r '.responses[0].usage_tokens' <<<"$d")" -eq 517
t_expect "e's remaining shows d's extra 490 charged (>= 490 + 27 - 20)" $((rd - re)) -ge $((490 + 27 - 20))
t_expect "e's remaining: the charge, less refill (<= 490 + 27)" $((rd - re)) -le $((490 + 27))
# A gzipped JSON answer (as to the OpenAI SDK's Accept-Encoding: gzip):
# forwarded as it came, its usage read through zlib (27, not the 1017 reserved).
z0=$(metric "$MP" 'sluice_l7_usage_reconciled_total{tier="rc"}')
z=$($CLIENT req --addr "$M" --key sk-rc-1 --body "$(chat 40 1000)" --header 'Accept-Encoding: gzip' \
	--header 'x-mock-prompt-tokens: 17' --header 'x-mock-completion-tokens: 10' --header 'x-mock-gzip: 1')
z1=$(metric "$MP" 'sluice_l7_usage_reconciled_total{tier="rc"}')
t_expect "gzip: answered 200" "$(jq -r ".responses[0].status" <<<"$z")" -eq 200
t_expect "gzip: Content-Encoding gzip reached the client" "$(hdr content-encoding "$z")" = gzip
t_expect "gzip: the body reached the client compressed (gzip magic 0x1f first)" \
	"$(jq -r '.responses[0].body | explode | .[0]' <<<"$z")" -eq 31
t_expect "gzip: reconciled from the compressed body's usage" $((z1 - z0)) -eq 1
stats=$(mock_stats "$BP")
mock_toks=$(jq -r '.prompt_tokens + .completion_tokens' <<<"$stats")
m1=$(tok_metric rc)
echo "  tokens: sluice_l7_tokens_total +$((m1 - m0)), mock $mock_toks" >&2
t_expect "sluice_l7_tokens_total{tier=rc} = the mock's counted tokens" $((m1 - m0)) -eq "$mock_toks"
t_expect "the mock counted a..e and the gzip one (5017 + 27 + 27 + 517 + 27 + 27)" "$mock_toks" \
	-eq $((5017 + 27 + 27 + 517 + 27 + 27))
t_end
fi

# --- 4. reconciliation, streams -------------------------------------------------

data_events() { jq -r '.responses[0].body | split("\n\n") | map(select(startswith("data: {"))) | length' <<<"$1"; }

if want 4; then
t_begin "reconciliation, streams: usage event, else the event count; not buffered"
rec0=$(metric "$MP" 'sluice_l7_usage_reconciled_total{tier="rc"}')
out0=$(metric "$MP" 'sluice_l7_tokens_total{tier="rc",direction="output"}')
f=$(rc_req 100 7 ',"stream":true,"stream_options":{"include_usage":true}')
rec1=$(metric "$MP" 'sluice_l7_usage_reconciled_total{tier="rc"}')
out1=$(metric "$MP" 'sluice_l7_tokens_total{tier="rc",direction="output"}')
t_expect "include_usage stream answered 200" "$(jq -r '.responses[0].status' <<<"$f")" -eq 200
t_expect "include_usage: the client saw the usage event (17 + 7)" \
	"$(jq -r '.responses[0].usage_tokens' <<<"$f")" -eq 24
t_expect "include_usage: reconciled from the usage event" $((rec1 - rec0)) -eq 1
t_expect "include_usage: 7 output tokens counted (not the 100 reserved)" $((out1 - out0)) -eq 7
g=$(rc_req 100 9 ',"stream":true')
rec2=$(metric "$MP" 'sluice_l7_usage_reconciled_total{tier="rc"}')
out2=$(metric "$MP" 'sluice_l7_tokens_total{tier="rc",direction="output"}')
ng=$(data_events "$g")
echo "  stream without usage: $ng data events, output tokens +$((out2 - out1))" >&2
t_expect "no usage: answered 200" "$(jq -r '.responses[0].status' <<<"$g")" -eq 200
t_expect "no usage: the client saw 9 data events" "$ng" -eq 9
t_expect "no usage: not counted as reconciled" $((rec2 - rec1)) -eq 0
t_expect "no usage: output tokens = the data events" $((out2 - out1)) -eq "$ng"
# 20 tokens 50 ms apart (mock --token-ms 50): about a second in all.
h=$(rc_req 100 20 ',"stream":true')
first=$(jq -r '.responses[0].events[0] // 99' <<<"$h")
last=$(jq -r '.responses[0].events[-1] // 0' <<<"$h")
total=$(jq -r '.responses[0].total' <<<"$h")
echo "  stream of 20 tokens: first event ${first}s, last ${last}s, total ${total}s" >&2
t_expect "20 events arrived" "$(data_events "$h")" -eq 20
t_check "the stream took its time (last event >= 0.8 s)" fcmp "$last" ">=" 0.8
t_check "first event before 30% of the total (not buffered)" \
	fcmp "$first" "<" "$(awk -v t="$total" 'BEGIN { print t * 0.3 }')"
t_end
fi

# --- 5. headers ------------------------------------------------------------------

DUR_RE='^([0-9]+h)?([0-9]+m)?([0-9]+(\.[0-9]+)?(ms|s))?$'
# six_headers JSON INDEX RPM TPM: the INDEXth response has all six
# x-ratelimit-* headers, its limits (the buckets' capacities, their bursts)
# as configured, remaining numbers, resets durations.
six_headers() {
	local j=$1 i=$2 v
	for v in limit-requests remaining-requests limit-tokens remaining-tokens; do
		v=$(hdr "x-ratelimit-$v" "$j" "$i")
		[[ $v =~ ^[0-9]+$ ]] || { echo "  not a number: '$v'" >&2; return 1; }
	done
	for v in reset-requests reset-tokens; do
		v=$(hdr "x-ratelimit-$v" "$j" "$i")
		[[ $v != none && -n $v && $v =~ $DUR_RE ]] || { echo "  not a duration: '$v'" >&2; return 1; }
	done
	[ "$(hdr x-ratelimit-limit-requests "$j" "$i")" = "$3" ] &&
		[ "$(hdr x-ratelimit-limit-tokens "$j" "$i")" = "$4" ]
}
status_of() { jq -r --argjson i "${2:-0}" '.responses[$i].status' <<<"$1"; }

if want 5; then
t_begin "x-ratelimit-* headers on 200, 404 and 429; Retry-After; 401 for unknown keys"
# Four requests on one connection, back to back: rpm 3 with a burst of 3
# refills one request per 2 s, so the fourth is refused.
# Each reserves 1017 tokens (refilled at 1000/s) and uses 27.
r=$($CLIENT req --addr "$M" --key sk-hd-1 --count 4 --body "$(chat 40 1000)" \
	--header 'x-mock-completion-tokens: 10' \
	--paths /v1/chat/completions,/v1/no-such-thing,/v1/chat/completions,/v1/chat/completions)
t_expect "1st: 200 from the backend" "$(status_of "$r" 0)" -eq 200
t_expect "2nd: 404 from the backend" "$(status_of "$r" 1)" -eq 404
t_expect "3rd: 200" "$(status_of "$r" 2)" -eq 200
t_expect "4th: 429 (rpm 3, burst 3)" "$(status_of "$r" 3)" -eq 429
for i in 0 1 2 3; do
	t_check "six sane x-ratelimit headers on response $i ($(status_of "$r" $i))" \
		six_headers "$r" $i 3 50000
done
q=()
for i in 0 1 2 3; do q+=("$(hdr x-ratelimit-remaining-requests "$r" $i)"); done
echo "  remaining requests: ${q[*]}; resets on the 3rd: $(hdr x-ratelimit-reset-requests "$r" 2)" \
	"$(hdr x-ratelimit-reset-tokens "$r" 2)" >&2
t_expect "remaining-requests decreases (1st > 2nd)" "${q[0]}" -gt "${q[1]}"
t_expect "remaining-requests decreases (2nd > 3rd)" "${q[1]}" -gt "${q[2]}"
t_expect "remaining-requests 0 at the 429" "${q[3]}" -eq 0
t_expect "remaining-tokens shows the 1st request's reservation" \
	"$(hdr x-ratelimit-remaining-tokens "$r" 0)" -le $((50000 - 1017 + 200))
ra=$(hdr retry-after "$r" 3)
t_check "429 has Retry-After as an integer >= 1 ($ra)" eval '[[ $ra =~ ^[0-9]+$ ]] && [ "$ra" -ge 1 ]'
ram=$(hdr retry-after-ms "$r" 3)
t_check "429 has retry-after-ms, a whole number >= 1 ($ram)" eval '[[ $ram =~ ^[0-9]+$ ]] && [ "$ram" -ge 1 ]'
t_check "ceil(retry-after-ms / 1000) = Retry-After ($ram ms, $ra s)" \
	eval '[[ $ram =~ ^[0-9]+$ ]] && [ $(((ram + 999) / 1000)) = "$ra" ]'
t_check "429 has an x-request-id ($(hdr x-request-id "$r" 3))" \
	grep -qE '^[0-9a-f]{24}$' <<<"$(hdr x-request-id "$r" 3)"
t_expect "429 body: error.code rate_limit_exceeded, error.type requests" \
	"$(jq -r '.responses[3].body | fromjson | .error | select(.code == "rate_limit_exceeded" and .type == "requests") | 1' <<<"$r" 2>/dev/null || echo 0)" -eq 1
t_expect "429 Content-Type is JSON" "$(hdr content-type "$r" 3 | grep -c '^application/json')" -eq 1
[[ $ra =~ ^[0-9]+$ ]] && [ "$ra" -le 10 ] && sleep "$ra"
r5=$($CLIENT req --addr "$M" --key sk-hd-1 --body "$(chat 40 10)")
t_expect "after waiting Retry-After: 200" "$(status_of "$r5")" -eq 200
u=$($CLIENT req --addr "$M" --key sk-nobody --body "$(chat 40 10)" --header 'x-request-id: trace-7f3a')
t_expect "401 echoes the client's x-request-id" "$(hdr x-request-id "$u")" = trace-7f3a
t_expect "unknown key with unknown-keys refuse: 401" "$(status_of "$u")" -eq 401
t_expect "401 body: error.code invalid_api_key" \
	"$(jq -r '.responses[0].body | fromjson | .error.code' <<<"$u" 2>/dev/null)" = invalid_api_key
t_end
fi

# --- 7. shadow mode -------------------------------------------------------------

if want 7; then
t_begin "shadow tier: over its limit, no 429, shadow rejections counted"
mock_reset "$BP"
sh0=$(metric "$MP" 'sluice_l7_shadow_rejections_total{tier="sh",limit="rpm"}')
rj0=$(metric "$MP" 'sluice_l7_rejections_total{tier="sh",limit="rpm"}')
# rpm 60 burst 3 = 3 + 10/s; 30 requests in 0.6 s are about 20 over.
out=$($CLIENT load --addr "$M" --key sk-sh-1 --rate 50 --duration 0.6 --body "$(chat 20 5)")
sh1=$(metric "$MP" 'sluice_l7_shadow_rejections_total{tier="sh",limit="rpm"}')
rj1=$(metric "$MP" 'sluice_l7_rejections_total{tier="sh",limit="rpm"}')
sent=$(jq -r '."sk-sh-1".sent' <<<"$out")
echo "  sent $sent, 200s $(jq -r '."sk-sh-1".ok' <<<"$out"), shadow rejections +$((sh1 - sh0))" >&2
t_expect "30 requests sent" "$sent" -eq 30
t_expect "all 200" "$(jq -r '."sk-sh-1".ok' <<<"$out")" -eq "$sent"
t_expect "the mock got them all" "$(mock_stats "$BP" | jq -r '.by_key["sk-sh-1"] // 0')" -eq "$sent"
t_expect "shadow rejections rose by the excess (>= 12)" $((sh1 - sh0)) -ge 12
t_expect "shadow rejections no more than sent - burst" $((sh1 - sh0)) -le $((sent - 3))
t_expect "no real rejections for the shadow tier" $((rj1 - rj0)) -eq 0
t_end
fi

# --- 8. keep-alive, pipelining, HTTP/1.0 ---------------------------------------------

if want 8; then
t_begin "keep-alive, pipelining in order, HTTP/1.0 connection handling"
r=$($CLIENT req --addr "$M" --key sk-rq-1 --count 5 --eof-wait 0.3 --body "$(chat 20 5)")
t_expect "keep-alive: 5 answers on one connection" \
	"$(jq '[.responses[].status] | map(select(. == 200)) | length' <<<"$r")" -eq 5
t_expect "keep-alive: no error" "$(jq -r '.error // "none"' <<<"$r")" = none
t_expect "keep-alive: the connection stays open" "$(jq -r '.server_closed' <<<"$r")" = false
# The first is slow at the backend, the second is a fast 404: in order or not
# at all.
r=$($CLIENT req --addr "$M" --key sk-rq-1 --count 2 --pipeline --eof-wait 0.3 \
	--header 'x-mock-latency-ms: 200' --body "$(chat 20 5)" \
	--paths /v1/chat/completions,/v1/pipelined-second)
t_expect "pipelined: two answers, no error" "$(jq '.responses | length' <<<"$r")" -eq 2
t_expect "pipelined: the slow 200 first" "$(status_of "$r" 0)" -eq 200
t_expect "pipelined: its body is the completion" \
	"$(jq -r '.responses[0].body | fromjson | .usage.completion_tokens' <<<"$r" 2>/dev/null)" = 5
t_expect "pipelined: the 404 second" "$(status_of "$r" 1)" -eq 404
t_check "pipelined: the 404 names its own path" \
	eval 'jq -r ".responses[1].body" <<<"$r" | grep -q pipelined-second'
t_expect "pipelined: the connection stays open" "$(jq -r '.server_closed' <<<"$r")" = false
r=$($CLIENT req --addr "$M" --key sk-rq-1 --http10 --eof-wait 2 --body "$(chat 20 5)")
t_expect "HTTP/1.0: 200" "$(status_of "$r")" -eq 200
t_expect "HTTP/1.0: the whole body" \
	"$(jq -r '.responses[0].body | fromjson | .usage.completion_tokens' <<<"$r" 2>/dev/null)" = 5
t_expect "HTTP/1.0 without keep-alive: the server closes" "$(jq -r '.server_closed' <<<"$r")" = true
t_expect "HTTP/1.0: not chunked" "$(hdr transfer-encoding "$r")" = none
r=$($CLIENT req --addr "$M" --key sk-rq-1 --http10 --connection keep-alive --count 2 \
	--eof-wait 0.3 --body "$(chat 20 5)")
t_expect "HTTP/1.0 keep-alive: two answers on one connection" \
	"$(jq '[.responses[].status] | map(select(. == 200)) | length' <<<"$r")" -eq 2
t_expect "HTTP/1.0 keep-alive: Connection: keep-alive in the answer" \
	"$(hdr connection "$r" 1 | tr A-Z a-z)" = keep-alive
t_expect "HTTP/1.0 keep-alive: the connection stays open" "$(jq -r '.server_closed' <<<"$r")" = false
r=$($CLIENT req --addr "$M" --key sk-rq-1 --connection close --eof-wait 2 --body "$(chat 20 5)")
t_expect "HTTP/1.1 Connection: close: 200" "$(status_of "$r")" -eq 200
t_expect "HTTP/1.1 Connection: close: answered with Connection: close" \
	"$(hdr connection "$r" | tr A-Z a-z)" = close
t_expect "HTTP/1.1 Connection: close: the server closes" "$(jq -r '.server_closed' <<<"$r")" = true
t_end
fi

# --- 10. reload ---------------------------------------------------------------

if want 10; then
t_begin "SIGHUP reload changes a tier's limit"
r=$($CLIENT req --addr "$M" --key sk-rl-1 --body "$(chat 20 5)")
t_expect "before: x-ratelimit-limit-requests 120" "$(hdr x-ratelimit-limit-requests "$r")" -eq 120
RL_RPM=240
l7_write_cfg main "$(MAIN_CFG_BODY)"
kill -HUP "$L7_PID_main"
t_check "sluice-l7 logs the reload" wait_log "$TMP/main.err" "reloaded"
r=$($CLIENT req --addr "$M" --key sk-rl-1 --body "$(chat 20 5)")
t_expect "after: x-ratelimit-limit-requests 240" "$(hdr x-ratelimit-limit-requests "$r")" -eq 240
t_expect "after: still 200" "$(status_of "$r")" -eq 200
t_end
fi

# --- 11. a fresh key's headers; a request too large -------------------------------

if want 11; then
t_begin "fresh key: remaining = limit; more tokens than the limit holds: 429 request_too_large"
# tpm 10000000 (burst: the rate): the issue's "10,000,000 limit, 1,000,000
# remaining" on a fresh key. The first answer shows its own 100 taken.
r=$($CLIENT req --addr "$M" --key sk-fr-1 --body "$(chat 40 83)" \
	--header 'x-mock-prompt-tokens: 17' --header 'x-mock-completion-tokens: 83')
lt=$(hdr x-ratelimit-limit-tokens "$r") rt=$(hdr x-ratelimit-remaining-tokens "$r")
lr=$(hdr x-ratelimit-limit-requests "$r") rr=$(hdr x-ratelimit-remaining-requests "$r")
echo "  fresh key's first answer: tokens $rt of $lt, requests $rr of $lr" >&2
t_expect "fresh key: 200" "$(status_of "$r")" -eq 200
t_expect "fresh key: limit-tokens is the configured tpm" "$lt" = 10000000
t_expect "fresh key: remaining-tokens = limit less this request's 100" "$rt" -ge $((10000000 - 100))
t_expect "fresh key: remaining-tokens never above the limit" "$rt" -le "$lt"
t_expect "fresh key: limit-requests is the configured rpm" "$lr" = 600
t_expect "fresh key: remaining-requests = limit less this one" "$rr" -ge 599
mock_reset "$BP"
tl0=$(metric "$MP" 'sluice_l7_requests_total{tier="tl",outcome="too_large"}')
# 17 + 2000 tokens estimated, tpm 1000: no wait would ever admit it.
big=$($CLIENT req --addr "$M" --key sk-tl-1 --body "$(chat 40 2000)" --header 'x-mock-completion-tokens: 5')
echo "  too large: $(status_of "$big") $(jq -r '.responses[0].body' <<<"$big" | head -c 300)" >&2
t_expect "too large: 429" "$(status_of "$big")" -eq 429
t_expect "too large: error.code request_too_large, type tokens" \
	"$(jq -r '.responses[0].body | fromjson | .error | select(.code == "request_too_large" and .type == "tokens") | 1' <<<"$big" 2>/dev/null || echo 0)" = 1
t_check "too large: the message names the estimate and the limit" \
	eval 'jq -r ".responses[0].body | fromjson | .error.message" <<<"$big" | grep -q "2017 tokens.*1000"'
t_expect "too large: x-should-retry: false" "$(hdr x-should-retry "$big")" = false
t_expect "too large: no Retry-After (waiting does not help)" "$(hdr retry-after "$big")" = none
t_expect "too large: no retry-after-ms" "$(hdr retry-after-ms "$big")" = none
t_check "too large: an x-request-id ($(hdr x-request-id "$big"))" \
	grep -qE '^[0-9a-f]{24}$' <<<"$(hdr x-request-id "$big")"
t_expect "too large: not charged (remaining-tokens = limit-tokens = 1000)" \
	"$(hdr x-ratelimit-remaining-tokens "$big"):$(hdr x-ratelimit-limit-tokens "$big")" = 1000:1000
t_expect "too large: not charged (remaining-requests = limit-requests = 600)" \
	"$(hdr x-ratelimit-remaining-requests "$big"):$(hdr x-ratelimit-limit-requests "$big")" = 600:600
t_expect "too large: never reached the backend" \
	"$(mock_stats "$BP" | jq -r '.by_key["sk-tl-1"] // 0')" -eq 0
t_expect "too large: counted as outcome too_large" \
	$(($(metric "$MP" 'sluice_l7_requests_total{tier="tl",outcome="too_large"}') - tl0)) -eq 1
# One that fits goes through at once and is charged.
r=$($CLIENT req --addr "$M" --key sk-tl-1 --body "$(chat 40 500)" \
	--header 'x-mock-prompt-tokens: 17' --header 'x-mock-completion-tokens: 500')
t_expect "then one that fits (517 of 1000): 200 at once" "$(status_of "$r")" -eq 200
t_expect "and it is charged (remaining-tokens <= 1000 - 517 + refill)" \
	"$(hdr x-ratelimit-remaining-tokens "$r")" -le $((1000 - 517 + 100))
t_end
fi

t_begin "main instance: SIGTERM, exit 0, no sanitizer report"
l7_stop main
t_end

# --- 6. the priority queue ----------------------------------------------------------

# multi_field JSON NAME FIELD: a field of the named request's result.
mf() { jq -r --arg n "$2" --arg f "$3" '.[] | select(.name == $n) | .[$f] // "none"' <<<"$1"; }

if want 6; then
t_begin "priority queue: high tier first; queue timeouts 503 (backends) and 429 (concurrency)"
ok=1
l7_start prio "backend 127.0.0.1:$BP
period 6s
kernel off
backend-concurrency 1
queue-timeout 1500ms
tier lo priority 0
tier hi priority 5
tier cc priority 0 concurrency 1
default-tier lo
key sk-lo-1 tier lo
key sk-hi-1 tier hi
key sk-cc-1 tier cc" || ok=0
t_expect "sluice-l7 prio started" "$ok" -eq 1
fi
if want 6 && [ "$ok" = 1 ]; then
P=127.0.0.1:$L7_PORT_prio
mock_reset "$BP"
q0=$(metric "$L7_MPORT_prio" sluice_l7_queued_total)
# One slot at the backends: "occupy" holds it 400 ms; three low-tier
# requests queue behind it, then two high-tier ones. Served one at a time,
# 100 ms each: hi1, hi2, then lo1..lo3 (the last waits ~700 ms < 1.5 s).
L='"x-mock-latency-ms: 100"'
spec='[{"name":"occupy","at_ms":0,"key":"sk-lo-1","headers":["x-mock-latency-ms: 400"]},
 {"name":"lo1","at_ms":100,"key":"sk-lo-1","headers":['$L']},
 {"name":"lo2","at_ms":120,"key":"sk-lo-1","headers":['$L']},
 {"name":"lo3","at_ms":140,"key":"sk-lo-1","headers":['$L']},
 {"name":"hi1","at_ms":200,"key":"sk-hi-1","headers":['$L']},
 {"name":"hi2","at_ms":220,"key":"sk-hi-1","headers":['$L']}]'
r=$($CLIENT multi --addr "$P" --body "$(chat 20 5)" --spec "$spec")
echo "  done at (s): $(jq -r '[.[] | "\(.name) \(.status) \(.t_done // "-" | tostring | .[0:5])"] | join(", ")' <<<"$r")" >&2
t_expect "all six answered 200" "$(jq '[.[] | select(.status == 200)] | length' <<<"$r")" -eq 6
hi_last=$(jq '[.[] | select(.name | startswith("hi")) | .t_done] | max' <<<"$r")
lo_first=$(jq '[.[] | select(.name | test("^lo")) | .t_done] | min' <<<"$r")
hi_sent=$(jq '[.[] | select(.name | startswith("hi")) | .t_sent] | min' <<<"$r")
lo_sent=$(jq '[.[] | select(.name | test("^lo")) | .t_sent] | max' <<<"$r")
t_check "the high tier was sent after the low tier queued" fcmp "$hi_sent" ">" "$lo_sent"
t_check "both high-tier requests completed before any queued low-tier one" \
	fcmp "$hi_last" "<" "$lo_first"
t_check "the low tier in FIFO order" \
	eval '[ "$(jq -r "[.[] | select(.name | test(\"^lo\"))] | sort_by(.t_done) | map(.name) | join(\",\")" <<<"$r")" = lo1,lo2,lo3 ]'
t_expect "the mock never had two in flight (backend-concurrency 1)" \
	"$(mock_stats "$BP" | jq -r .max_in_flight)" -eq 1
t_expect "sluice-l7 queued five" $(($(metric "$L7_MPORT_prio" sluice_l7_queued_total) - q0)) -eq 5
# The slot held 2 s: a low-tier request waits for the backends and gets a
# 503 after 1.5 s; a second request of a key with concurrency 1 waits for
# its own slot and gets a 429.
spec='[{"name":"hold","at_ms":0,"key":"sk-cc-1","headers":["x-mock-latency-ms: 2000"]},
 {"name":"lo","at_ms":100,"key":"sk-lo-1"},
 {"name":"cc","at_ms":150,"key":"sk-cc-1"}]'
r=$($CLIENT multi --addr "$P" --body "$(chat 20 5)" --spec "$spec")
echo "  $(jq -r '[.[] | "\(.name) \(.status) at \(.t_done // "-" | tostring | .[0:5]) retry-after \(.retry_after)"] | join(", ")' <<<"$r")" >&2
t_expect "the holder: 200" "$(mf "$r" hold status)" -eq 200
t_expect "backends saturated for the queue timeout: 503" "$(mf "$r" lo status)" -eq 503
t_check "the 503 waited the queue timeout (1.4..1.9 s)" \
	eval 'fcmp "$(mf "$r" lo t_done)" ">=" 1.5 && fcmp "$(mf "$r" lo t_done)" "<" 2.0'
t_check "the 503 has Retry-After >= 1" eval '[ "$(mf "$r" lo retry_after)" -ge 1 ]'
t_expect "the key's concurrency for the queue timeout: 429" "$(mf "$r" cc status)" -eq 429
t_check "the 429 has Retry-After >= 1" eval '[ "$(mf "$r" cc retry_after)" -ge 1 ]'
t_check "the 429's body says rate_limit_exceeded" \
	eval 'mf "$r" cc body | jq -e ".error.code == \"rate_limit_exceeded\"" >/dev/null'
l7_stop prio
fi
want 6 && t_end

# --- 9. passive backend health --------------------------------------------------------

if want 9; then
t_begin "passive health: a dead backend is marked down and skipped; all down is 503"
ok=1
t_check "start mock-llm hb" mock_start hb || ok=0
DEAD=$(free_port)
l7_start health "backend 127.0.0.1:$MOCK_PORT_hb
backend 127.0.0.1:$DEAD
period 6s
kernel off
backend-fails 1
backend-down 10s
tier t priority 0
default-tier t" || ok=0
t_expect "sluice-l7 health started" "$ok" -eq 1
fi
if want 9 && [ "$ok" = 1 ]; then
H=127.0.0.1:$L7_PORT_health HM=$L7_MPORT_health
out=$($CLIENT load --addr "$H" --rate 20 --duration 1 --body "$(chat 20 5)")
echo "  20 requests: $(jq -c '.null.status' <<<"$out"); retries $(metric "$HM" sluice_l7_retries_total)" >&2
# A refused connect is resent to the next backend (nothing reached the
# dead one), so no client sees it; with backend-fails 1 the dead backend is
# out after one failure.
n200=$(jq -r '.null.ok' <<<"$out")
t_expect "20 requests sent" "$(jq -r '.null.sent' <<<"$out")" -eq 20
t_expect "all 20 answered 200" "$n200" -eq 20
t_check "the refused connect was resent (retries >= 1)" \
	test "$(metric "$HM" sluice_l7_retries_total)" -ge 1
t_expect "the live mock got every 200" "$(mock_stats "$MOCK_PORT_hb" | jq -r .requests)" -eq "$n200"
t_expect "the dead backend is down" \
	"$(metric "$HM" "sluice_l7_backend_up{backend=\"127.0.0.1:$DEAD\"}")" -eq 0
t_expect "the live backend is up" \
	"$(metric "$HM" "sluice_l7_backend_up{backend=\"127.0.0.1:$MOCK_PORT_hb\"}")" -eq 1
t_expect "connect failures counted" \
	"$(metric "$HM" 'sluice_l7_upstream_errors_total{kind="connect"}')" -ge 1
kill -TERM "$MOCK_PID_hb"
wait "$MOCK_PID_hb" 2>/dev/null
out=$($CLIENT load --addr "$H" --rate 10 --duration 0.5 --body "$(chat 20 5)")
echo "  with both down: $(jq -c '.null.status' <<<"$out")" >&2
r=$($CLIENT req --addr "$H" --body "$(chat 20 5)")
t_expect "both down: 503" "$(status_of "$r")" -eq 503
t_check "the 503 has Retry-After >= 1" eval '[ "$(hdr retry-after "$r")" -ge 1 ] 2>/dev/null'
t_check "the 503's retry-after-ms agrees with its Retry-After" \
	eval 'm=$(hdr retry-after-ms "$r"); [[ $m =~ ^[0-9]+$ ]] && [ $(((m + 999) / 1000)) = "$(hdr retry-after "$r")" ]'
t_expect "both down: sluice_l7_backend_up 0 for the mock" \
	"$(metric "$HM" "sluice_l7_backend_up{backend=\"127.0.0.1:$MOCK_PORT_hb\"}")" -eq 0
l7_stop health
fi
want 9 && t_end

# --- 12. what a request costs when it was not served --------------------------------

# The backend is down: sluice-l7's own 502 (connects refused) and 503 (the
# backend resting) give the request and its whole reservation back, so once
# the backend is back the key is admitted as if nothing happened. A
# backend's own 500 costs its request and only the tokens it reports (none).
if want 12; then
t_begin "sluice-l7's own 502/503 refund the request and its tokens; a backend's 500 costs a request"
ok=1
UP=$(free_port)
# period: a minute, so refills (0.05 requests/s, 15 tokens/s) stay small
l7_start un "backend 127.0.0.1:$UP
kernel off
backend-fails 2
backend-down 2s
tier ou priority 0 rpm 3 tpm 900
default-tier ou
key sk-ou-1 tier ou" || ok=0
t_expect "sluice-l7 un started" "$ok" -eq 1
fi
if want 12 && [ "$ok" = 1 ]; then
U=127.0.0.1:$L7_PORT_un UM=$L7_MPORT_un
# 17 + 283 = 300 tokens reserved each: four unrefunded would be 1200 > 900.
sts=() ids=0
for i in 1 2 3 4; do
	r=$($CLIENT req --addr "$U" --key sk-ou-1 --body "$(chat 40 283)")
	sts+=("$(status_of "$r")")
	grep -qE '^[0-9a-f]{24}$' <<<"$(hdr x-request-id "$r")" && ids=$((ids + 1))
done
echo "  backend down: ${sts[*]}; the last shows requests $(hdr x-ratelimit-remaining-requests "$r")," \
	"tokens $(hdr x-ratelimit-remaining-tokens "$r")" >&2
t_expect "backend down: no 429 (nothing was served, nothing stays charged)" \
	"$(printf '%s\n' "${sts[@]}" | grep -c 429)" -eq 0
t_expect "backend down: a 502 (connect refused)" "$(printf '%s\n' "${sts[@]}" | grep -c 502)" -ge 1
t_expect "backend down: a 503 (the backend resting)" "$(printf '%s\n' "${sts[@]}" | grep -c 503)" -ge 1
t_expect "backend down: every 502/503 has an x-request-id" "$ids" -eq 4
t_expect "after four: remaining-requests is the whole limit (3)" \
	"$(hdr x-ratelimit-remaining-requests "$r")" -eq 3
t_expect "after four: remaining-tokens is the whole limit (900)" \
	"$(hdr x-ratelimit-remaining-tokens "$r")" -eq 900
t_expect "sluice_l7_unserved_refunds_total counted the four" \
	"$(metric "$UM" 'sluice_l7_unserved_refunds_total{tier="ou"}')" -eq 4
"$MOCK" --listen "127.0.0.1:$UP" 2>"$TMP/mock-up.err" &
PIDS+=($!)
t_check "the backend comes back" wait_log "$TMP/mock-up.err" "listening on"
for ((i = 0; i < 50; i++)); do
	[ "$(metric "$UM" "sluice_l7_backend_up{backend=\"127.0.0.1:$UP\"}")" = 1 ] && break
	sleep 0.1
done
b1=$($CLIENT req --addr "$U" --key sk-ou-1 --body "$(chat 40 283)" --header 'x-mock-status: 500')
b2=$($CLIENT req --addr "$U" --key sk-ou-1 --body "$(chat 40 283)" \
	--header 'x-mock-prompt-tokens: 17' --header 'x-mock-completion-tokens: 283')
b3=$($CLIENT req --addr "$U" --key sk-ou-1 --body "$(chat 40 283)" \
	--header 'x-mock-prompt-tokens: 17' --header 'x-mock-completion-tokens: 283')
b4=$($CLIENT req --addr "$U" --key sk-ou-1 --body "$(chat 40 283)")
echo "  backend back: $(status_of "$b1") $(status_of "$b2") $(status_of "$b3") $(status_of "$b4");" \
	"after the 500: requests $(hdr x-ratelimit-remaining-requests "$b2")," \
	"tokens $(hdr x-ratelimit-remaining-tokens "$b2")" >&2
t_expect "the backend's own 500 reaches the client" "$(status_of "$b1")" -eq 500
t_expect "then 200 (the outage left the key its whole limit)" "$(status_of "$b2")" -eq 200
t_expect "the backend's 500 cost one request (remaining-requests 1 after the next)" \
	"$(hdr x-ratelimit-remaining-requests "$b2")" -eq 1
t_expect "and no tokens: the next shows only its own 300 taken (>= 600)" \
	"$(hdr x-ratelimit-remaining-tokens "$b2")" -ge 600
t_expect "(and no more than refill: <= 630)" "$(hdr x-ratelimit-remaining-tokens "$b2")" -le 630
t_expect "a third request: 200" "$(status_of "$b3")" -eq 200
t_expect "a fourth: 429 (rpm 3: the 500 and two 200s)" "$(status_of "$b4")" -eq 429
t_expect "the backend's 500 is no refund of sluice-l7's" \
	"$(metric "$UM" 'sluice_l7_unserved_refunds_total{tier="ou"}')" -eq 4
l7_stop un
fi
want 12 && t_end
exit 0
