#!/usr/bin/env bash
# tests/e2e/l7_provider.sh - provider-aware limits end to end, over loopback
# (docs/l7.md, "Provider limits"): mock-llm enforces its own limit as a
# provider does (--limit-rpm/--limit-tpm: 429 with retry-after, and
# x-ratelimit-* on every answer), and sluice-l7 in front of it must keep
# the clients from its 429s while using its limit to within 5%. Counted by
# the mock's own /stats and by the load client, not by sluice-l7.
#
#   1. rpm: the same load (1.8x the limit) direct to the mock (the baseline:
#      many 429s), then through sluice-l7: client 429s <= 1%, the limit used
#      within 5% in steady state, per-backend metrics non-zero
#   2. tpm: the same through sluice-l7 with a token limit
#   3. two backends, one cooling down: its refusal goes to the other one,
#      nothing more is sent to it, and its cooldown is logged once
#   4. a cooldown longer than the queue timeout: 429 with the provider's
#      wait as Retry-After, the second one without asking the backend
#   5. a cooldown shorter than the queue timeout: the request waits, then 200
#   6. waiting for the provider goes by tier priority
#
# sluice-l7 is the ASan+UBSan build with `kernel off`, stopped with SIGTERM
# at the end of each case (exit 0, no sanitizer report).
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib.sh"
. "$here/lib/l7bad_lib.sh"
trap l7_cleanup EXIT
CLIENT="$L7_PY $here/lib/l7_client.py"

for tool in curl jq; do
	if ! command -v "$tool" >/dev/null; then
		echo "not ok l7 provider setup: $tool is missing (apt-get install $tool)"
		exit 1
	fi
done

# Every mock-llm and sluice-l7 gets its own NAME: l7bad_lib.sh keys its pids
# and stderr files by it, so a shared one would leave a process behind.
# L7_CASES="3 4": run only those cases.
want() { [ -z "${L7_CASES:-}" ] || [[ " $L7_CASES " == *" $1 "* ]]; }

# within PCT ACTUAL EXPECTED: |ACTUAL - EXPECTED| <= PCT% of EXPECTED.
within() {
	awk -v p="$1" -v a="$2" -v e="$3" 'BEGIN { d = a - e; if (d < 0) d = -d;
		exit !(e > 0 && d <= e * p / 100) }'
}
now_s() { date +%s.%N; }

# chat CHARS MAX-TOKENS: a chat body; its estimate is ceil(CHARS/4) + 7
# input tokens and MAX-TOKENS output.
chat() {
	printf '{"model":"m","messages":[{"role":"user","content":"%s"}],"max_tokens":%s}' \
		"$(head -c "$1" /dev/zero | tr '\0' a)" "$2"
}

# drain PORT N: N requests straight to the mock, one after the other, so
# its bucket (full at start) is empty: the last ones are 429s.
drain() {
	$CLIENT req --addr "127.0.0.1:$1" --count "$2" --body "$(chat 40 83)" \
		--header 'x-mock-prompt-tokens: 17' --header 'x-mock-completion-tokens: 83' |
		jq '[.responses[].status | select(. == 429)] | length'
}

# load ADDR RATE SECS: KEYS keep-alive clients (a thread each) at RATE/KEYS
# requests a second each, for SECS; a client whose answer is late sends its
# next one at once. Totals as JSON: sent, ok, n429, other.
KEYS=8
load() {
	local keys=() i
	for ((i = 1; i <= KEYS; i++)); do keys+=(--key "sk-load-$i"); done
	$CLIENT load --addr "$1" "${keys[@]}" --rate "$(awk -v r="$2" -v k=$KEYS 'BEGIN { print r / k }')" \
		--duration "$3" --body "$(chat 40 83)" \
		--header 'x-mock-prompt-tokens: 17' --header 'x-mock-completion-tokens: 83' |
		jq -c '[.[]] | { sent: (map(.sent) | add), ok: (map(.ok) | add),
			n429: (map(.status["429"] // 0) | add), errors: (map(.errors) | add) }
			| .other = (.sent - .ok - .n429)'
}

# served PORT WHAT: the mock's count of admitted requests (or tokens).
served() { mock_stat "$1" ".limit.served_$2"; }

# steady MOCK-PORT WHAT ADDR LOADRATE SECS: runs load against ADDR in the
# background, and counts what the mock admitted between 2 s in and 1 s
# before the end (the steady state: the start's and end's transients
# left out). Sets SERVED, SPAN and LOADOUT.
steady() {
	local port=$1 what=$2 addr=$3 lrate=$4 secs=$5 t1 t2 s1 s2 out=$L7_TMP/load.json
	load "$addr" "$lrate" "$secs" >"$out" &
	local lp=$!
	sleep 2
	s1=$(served "$port" "$what"); t1=$(now_s)
	sleep $((secs - 3))
	s2=$(served "$port" "$what"); t2=$(now_s)
	wait "$lp"
	LOADOUT=$(cat "$out")
	SERVED=$((s2 - s1))
	SPAN=$(awk -v a="$t1" -v b="$t2" 'BEGIN { printf "%.3f", b - a }')
}

l7_conf() {   # PORT-OF-LISTEN PORT-OF-METRICS QUEUE-TIMEOUT BACKEND...
	local lp=$1 mp=$2 qt=$3 b; shift 3
	printf 'listen 127.0.0.1:%s\nmetrics 127.0.0.1:%s\nkernel off\nperiod 60s\nqueue-timeout %s\n' \
		"$lp" "$mp" "$qt"
	printf 'tier t priority 0 rpm 1000000 tpm 1000000000\ndefault-tier t\n'
	for b; do printf 'backend 127.0.0.1:%s\n' "$b"; done
}

metric_pos() {   # NAME SERIES: the series is present and > 0
	local v
	v=$(l7_metric "$1" "$2")
	echo "  $2 = $v" >&2
	awk -v v="$v" 'BEGIN { exit !(v > 0) }'
}

# --- 1. rpm: baseline direct, then through sluice-l7 ------------------------

if want 1; then
t_begin "rpm: through sluice-l7 the clients see <= 1% 429s and the limit is used within 5%"
RPM=1200 LRATE=36 SECS=8       # 20/s allowed, 36/s offered (1.8x)
mock_start mock_rpm --limit-rpm $RPM || t_fail "start mock-llm --limit-rpm"
MP=$MOCK_PORT LP=$(free_port) MMP=$(free_port)
l7_start rpm "$(l7_conf "$LP" "$MMP" 5s "$MP")" || t_fail "start sluice-l7"
n=$(drain "$MP" $((RPM + 40)))
t_expect "the mock's burst drained (429s at the end of the drain)" "$n" -ge 1
# The baseline: the same clients straight to the provider.
steady "$MP" requests "127.0.0.1:$MP" $LRATE $SECS
base=$LOADOUT base_served=$SERVED base_span=$SPAN
echo "  direct: $base; the mock admitted $base_served in ${base_span}s" >&2
b_sent=$(jget "$base" .sent) b_429=$(jget "$base" .n429)
t_expect "direct: the load is over the limit (sent >= 1.5x what it allows)" \
	$((b_sent * 100)) -ge $((RPM * SECS * 150 / 60))
t_expect "direct: many 429s (>= 25% of the requests)" $((b_429 * 4)) -ge "$b_sent"
lim0=$(mock_stat "$MP" .limit.limited)
steady "$MP" requests "127.0.0.1:$LP" $LRATE $SECS
via=$LOADOUT
exp=$(awk -v r=$RPM -v s="$SPAN" 'BEGIN { printf "%d", r * s / 60 }')
v_sent=$(jget "$via" .sent) v_ok=$(jget "$via" .ok) v_429=$(jget "$via" .n429)
mock429=$(($(mock_stat "$MP" .limit.limited) - lim0))
echo "  via sluice-l7: $via; the mock admitted $SERVED in ${SPAN}s (limit: $exp)," \
	"answered $mock429 429s" >&2
echo "  FIGURES rpm: direct 429s $b_429/$b_sent; via sluice-l7 429s $v_429/$v_sent," \
	"limit used $SERVED/$exp, backend 429s $mock429" >&2
t_expect "via sluice-l7: every request answered 200 or 429" "$(jget "$via" .other)" -eq 0
t_expect "via sluice-l7: client 429s <= 1%" $((v_429 * 100)) -le "$v_sent"
t_check "via sluice-l7: the mock admitted $SERVED, within 5% of its limit $exp" \
	within 5 "$SERVED" "$exp"
t_expect "via sluice-l7: the backend's 429s are few (<= 2% of the requests)" \
	$((mock429 * 50)) -le "$v_sent"
t_expect "metric: the backend's 429s counted, as the mock counted them" \
	"$(l7_metric rpm "sluice_l7_backend_429_total{backend=\"127.0.0.1:$MP\"}")" -eq "$mock429"
t_check "metric: cooldowns shown" \
	l7_scrape rpm | grep -q "^sluice_l7_backend_cooldowns_total{backend=\"127.0.0.1:$MP\"} [0-9]*$"
t_check "metric: requests held back counted" \
	metric_pos rpm "sluice_l7_backend_held_back_total{backend=\"127.0.0.1:$MP\"}"
t_check "metric: the learned request budget is shown" \
	l7_scrape rpm | grep -q "^sluice_l7_backend_remaining{backend=\"127.0.0.1:$MP\",kind=\"requests\"} [0-9]"
t_check "metric: the token budget is unknown (-1): the mock has no tpm" \
	l7_scrape rpm | grep -q "^sluice_l7_backend_remaining{backend=\"127.0.0.1:$MP\",kind=\"tokens\"} -1$"
t_check "metric: the cooldown gauge is shown" \
	l7_scrape rpm | grep -q "^sluice_l7_backend_cooldown_seconds{backend=\"127.0.0.1:$MP\"} [0-9.]*$"
t_check "sluice-l7 rpm stops cleanly" l7_stop rpm
t_end
fi

# --- 2. tpm -------------------------------------------------------------------

if want 2; then
t_begin "tpm: through sluice-l7 the clients see <= 1% 429s and the token limit is used within 5%"
TPM=60000 LRATE=15 SECS=8    # 1000 tokens/s = 10 requests/s of 100 tokens; 1.5x offered
mock_start mock_tpm --limit-tpm $TPM || t_fail "start mock-llm --limit-tpm"
MP=$MOCK_PORT LP=$(free_port) MMP=$(free_port)
l7_start tpm "$(l7_conf "$LP" "$MMP" 5s "$MP")" || t_fail "start sluice-l7"
n=$(drain "$MP" $((TPM / 100 + 40)))
t_expect "the mock's burst drained" "$n" -ge 1
lim0=$(mock_stat "$MP" .limit.limited)
steady "$MP" tokens "127.0.0.1:$LP" $LRATE $SECS
via=$LOADOUT
exp=$(awk -v r=$TPM -v s="$SPAN" 'BEGIN { printf "%d", r * s / 60 }')
v_sent=$(jget "$via" .sent) v_429=$(jget "$via" .n429)
mock429=$(($(mock_stat "$MP" .limit.limited) - lim0))
echo "  via sluice-l7: $via; the mock admitted $SERVED tokens in ${SPAN}s (limit: $exp)," \
	"answered $mock429 429s" >&2
echo "  FIGURES tpm: via sluice-l7 429s $v_429/$v_sent, limit used $SERVED/$exp tokens," \
	"backend 429s $mock429" >&2
t_expect "every request answered 200 or 429" "$(jget "$via" .other)" -eq 0
t_expect "client 429s <= 1%" $((v_429 * 100)) -le "$v_sent"
t_check "the mock admitted $SERVED tokens, within 5% of its limit $exp" within 5 "$SERVED" "$exp"
t_check "metric: the learned token budget is shown" \
	l7_scrape tpm | grep -q "^sluice_l7_backend_remaining{backend=\"127.0.0.1:$MP\",kind=\"tokens\"} [0-9]"
t_check "sluice-l7 tpm stops cleanly" l7_stop tpm
t_end
fi

# --- 3. two backends, one cooling down ------------------------------------------

if want 3; then
t_begin "two backends: the one cooling down gets nothing, the other serves all"
mock_start hot --limit-rpm 6 || t_fail "start mock-llm hot"
HOT=$MOCK_PORT
mock_start cold || t_fail "start mock-llm cold"
COLD=$MOCK_PORT LP=$(free_port) MMP=$(free_port)
drain "$HOT" 7 >/dev/null
# Round robin starts at the first backend: the first request meets the
# hot one's 429, and must be served by the cold one.
l7_start two "$(l7_conf "$LP" "$MMP" 5s "$HOT" "$COLD")" || t_fail "start sluice-l7"
lim0=$(mock_stat "$HOT" .limit.limited)
out=$($CLIENT req --addr "127.0.0.1:$LP" --count 20 --body "$(chat 40 83)")
ok=$(jget "$out" '[.responses[] | select(.status == 200)] | length')
t_expect "all 20 requests answered 200" "$ok" -eq 20
t_expect "the hot backend answered one 429, then got nothing" \
	$(($(mock_stat "$HOT" .limit.limited) - lim0)) -eq 1
t_expect "the cold backend served all 20" "$(mock_stat "$COLD" .requests)" -eq 20
t_expect "the cooldown logged once" \
	"$(grep -c "backend 127.0.0.1:$HOT: 429, cooling down" "$L7_TMP/two.err")" -eq 1
t_expect "metric: the hot backend's 429 counted" \
	"$(l7_metric two "sluice_l7_backend_429_total{backend=\"127.0.0.1:$HOT\"}")" -eq 1
t_expect "metric: one cooldown" \
	"$(l7_metric two "sluice_l7_backend_cooldowns_total{backend=\"127.0.0.1:$HOT\"}")" -eq 1
t_check "metric: the hot backend held requests back" \
	metric_pos two "sluice_l7_backend_held_back_total{backend=\"127.0.0.1:$HOT\"}"
t_check "metric: the hot backend is cooling down" \
	metric_pos two "sluice_l7_backend_cooldown_seconds{backend=\"127.0.0.1:$HOT\"}"
# A 503 without Retry-After is the backend's answer, not its limit: relayed.
out=$($CLIENT req --addr "127.0.0.1:$LP" --body "$(chat 40 83)" --header 'x-mock-status: 503')
t_expect "a plain 503 reaches the client" "$(jget "$out" '.responses[0].status')" -eq 503
t_expect "metric: the cold backend never cooled down" \
	"$(l7_metric two "sluice_l7_backend_cooldowns_total{backend=\"127.0.0.1:$COLD\"}")" -eq 0
t_expect "metric: the cold backend held nothing back" \
	"$(l7_metric two "sluice_l7_backend_held_back_total{backend=\"127.0.0.1:$COLD\"}")" -eq 0
t_check "sluice-l7 two stops cleanly" l7_stop two
t_end
fi

# --- 4. a wait longer than the queue timeout: 429 with the provider's wait -------

# ra PORT: one chat request with curl (quick to start, so two probes are
# close in time): "STATUS RETRY-AFTER-MS RETRY-AFTER T-MS", T-MS the
# monotonic-ish wall clock in ms just before it was sent.
ra() {
	local t h
	t=$(($(date +%s%N) / 1000000))
	h=$(curl -s --max-time 10 -D - -o /dev/null -H 'Content-Type: application/json' \
		--data "$(chat 40 83)" "http://127.0.0.1:$1/v1/chat/completions" | tr -d '\r')
	awk -v t="$t" 'NR == 1 { st = $2 } tolower($1) == "retry-after-ms:" { ms = $2 }
		tolower($1) == "retry-after:" { s = $2 }
		END { printf "%s %s %s %s\n", st, ms == "" ? -1 : ms, s == "" ? -1 : s, t }' <<<"$h"
}

if want 4; then
t_begin "queue timeout shorter than the cooldown: 429 with the provider's Retry-After"
mock_start slow --limit-rpm 6 || t_fail "start mock-llm slow"   # one request per 10 s
SP=$MOCK_PORT LP=$(free_port) MMP=$(free_port)
l7_start ra "$(l7_conf "$LP" "$MMP" 1s "$SP")" || t_fail "start sluice-l7"
drain "$SP" 7 >/dev/null
lim0=$(mock_stat "$SP" .limit.limited)
read -r st1 ms1 s1 t1 <<<"$(ra "$LP")"
read -r std msd sd td <<<"$(ra "$SP")"
# The provider's wait as an instant: when each answer says to come back.
d=$(((t1 + ms1) - (td + msd)))
echo "  via sluice-l7: $st1 retry-after-ms $ms1 ($s1 s); the mock's own $((td - t1)) ms later:" \
	"$std $msd ($sd s): the instants differ by $d ms" >&2
t_expect "via sluice-l7: 429" "$st1" -eq 429
t_expect "the mock: 429" "$std" -eq 429
t_expect "retry-after-ms ends within 150 ms of the provider's (-)" "$d" -ge -150
t_expect "retry-after-ms ends within 150 ms of the provider's (+)" "$d" -le 150
t_expect "Retry-After is retry-after-ms in whole seconds, rounded up" \
	"$s1" -eq $(((ms1 + 999) / 1000))
t_expect "the mock saw the first (and the direct probe)" \
	$(($(mock_stat "$SP" .limit.limited) - lim0)) -eq 2
# Known now: refused without asking the backend.
lim1=$(mock_stat "$SP" .limit.limited)
read -r st2 ms2 _ t2 <<<"$(ra "$LP")"
d=$(((t2 + ms2) - (t1 + ms1)))
echo "  again: $st2 retry-after-ms $ms2, ending $d ms from the first's" >&2
t_expect "again: 429" "$st2" -eq 429
t_expect "again: not sent to the backend" "$(mock_stat "$SP" .limit.limited)" -eq "$lim1"
t_expect "again: the same instant within 150 ms (-)" "$d" -ge -150
t_expect "again: the same instant within 150 ms (+)" "$d" -le 150
t_check "sluice-l7 ra stops cleanly" l7_stop ra
t_end
fi

# --- 5. a wait within the queue timeout: queued, then served -----------------------

if want 5; then
t_begin "queue timeout longer than the cooldown: the request waits, then 200"
mock_start quick --limit-rpm 60 || t_fail "start mock-llm quick"   # one a second
QP=$MOCK_PORT LP=$(free_port) MMP=$(free_port)
l7_start wq "$(l7_conf "$LP" "$MMP" 4s "$QP")" || t_fail "start sluice-l7"
drain "$QP" 62 >/dev/null
out=$($CLIENT req --addr "127.0.0.1:$LP" --count 3 --body "$(chat 40 83)")
echo "  $(jget "$out" '[.responses[] | "\(.status) \(.total * 1000 | floor) ms"] | join(", ")')" >&2
t_expect "all three answered 200" \
	"$(jget "$out" '[.responses[] | select(.status == 200)] | length')" -eq 3
t_expect "they waited for the provider (the three took >= 1.5 s)" \
	"$(jget "$out" '[.responses[].total] | add * 1000 | floor')" -ge 1500
t_expect "sluice-l7 counted them as queued" "$(l7_metric wq sluice_l7_queued_total)" -ge 2
t_check "sluice-l7 wq stops cleanly" l7_stop wq
t_end
fi

# --- 6. waiting by priority ------------------------------------------------------

if want 6; then
t_begin "the provider's capacity goes by tier priority: a later high-tier request first"
mock_start mock_prio --limit-rpm 60 || t_fail "start mock-llm prio"   # one a second
PP=$MOCK_PORT LP=$(free_port) MMP=$(free_port)
l7_start prio "$(l7_conf "$LP" "$MMP" 8s "$PP")
tier lo priority 0 rpm 1000000
tier hi priority 8 rpm 1000000
key sk-lo tier lo
key sk-hi tier hi" || t_fail "start sluice-l7"
drain "$PP" 62 >/dev/null
body=$(chat 40 83)
spec=$(jq -nc --arg b "$body" '[
	{name: "lo1", at_ms: 0, key: "sk-lo", body: $b}, {name: "lo2", at_ms: 100, key: "sk-lo", body: $b},
	{name: "lo3", at_ms: 150, key: "sk-lo", body: $b}, {name: "hi", at_ms: 300, key: "sk-hi", body: $b}]')
out=$($CLIENT multi --addr "127.0.0.1:$LP" --spec "$spec")
echo "  $(jget "$out" '[.[] | "\(.name) \(.status) sent \(.t_sent * 1000 | floor) done \(.t_done * 1000 | floor) ms"] | join(", ")')" >&2
t_expect "all four answered 200" "$(jget "$out" '[.[] | select(.status == 200)] | length')" -eq 4
t_expect "the high-tier request, sent last, was served first" \
	"$(jget "$out" '([.[] | select(.name == "hi") | .t_done][0]) < ([.[] | select(.name != "hi") | .t_done] | min) | if . then 1 else 0 end')" -eq 1
t_check "sluice-l7 prio stops cleanly" l7_stop prio
t_end
fi
