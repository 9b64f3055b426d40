#!/usr/bin/env bash
# tests/e2e/l7_fleet.sh - sluice-l7 with a store: three instances (ASan, `kernel
# off`) on loopback ports, one private redis-server (tests/lib/redis.sh), one
# mock backend (build/mock-llm, whose /stats counts what reached it). Clients
# spread each key's traffic over the three.
#
#   1. rpm fleet-wide: the 200s within 5% of what one instance alone admits
#   2. tpm with reconcile (every request over-estimated 2x): the tokens within
#      5% (+ one request) of one instance's
#   3. concurrency 4 across the instances: the backend's own in-flight maximum
#   4. kill -9 of an instance holding 4 slots: they free themselves within the
#      slot ttl (10 s), seen in the store and by a request through another
#   5. a restarted instance still refuses a drained key (no refill)
#   6. Redis down: each instance enforces its share (limit / live instances):
#      not unlimited, not zero
#   7. (before 6) a fourth instance whose backend is down answers 502/503
#      and gives the store back what the take charged: the key's buckets are
#      full in Redis, and another instance admits the key at once
# A "minute" is `period 6s`. Bounded: about 50 s.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib.sh"
. "$here/../lib/redis.sh"
. "$here/lib/l7_suite.sh"
l7_suite_cleanup_hook() { redis_stop; }
l7_suite_begin "l7 fleet" redis-server

chat() {
	local content
	content=$(head -c "$1" /dev/zero | tr '\0' a)
	printf '{"model":"m","messages":[{"role":"user","content":"%s"}],"max_tokens":%s}' \
		"$content" "$2"
}

# The instances: NAME's ports in L7_PORT_NAME and L7_MPORT_NAME, its pid in
# L7_PID_NAME (l7_stop, from lib/l7_suite.sh, stops it).
# l7_cfg NAME [BACKEND-PORT]: the backend is the mock unless given.
l7_cfg() {
	local name=$1
	(umask 077; cat >"$TMP/$name.cfg" <<EOF
listen 127.0.0.1:$(eval echo "\$L7_PORT_$name")
metrics 127.0.0.1:$(eval echo "\$L7_MPORT_$name")
backend 127.0.0.1:${2:-$BP}
period 6s
kernel off
unknown-keys refuse
queue-timeout 2s
store redis unix:$REDIS_SOCK timeout 250ms
tier rq rpm 600 rpm-burst 50
tier tk rpm 600000 tpm 60000 tpm-burst 2000 tpm-kind total
tier cc rpm 600000 concurrency 4
tier dr rpm 1 rpm-burst 3
tier sh rpm 600 rpm-burst 60
tier ou rpm 3 tpm 900
key sk-rq tier rq
key sk-tk tier tk
key sk-cc tier cc
key sk-dr tier dr
key sk-sh tier sh
key sk-ou tier ou
EOF
	)
}
# l7_run NAME: starts it (again) with its config; waits for the store to be up.
l7_run() {
	local name=$1 pid i
	"$L7" -c "$TMP/$name.cfg" 2>>"$TMP/$name.err" &
	pid=$!
	PIDS+=("$pid")
	printf -v "L7_PID_$name" %s "$pid"
	for ((i = 0; i < 100; i++)); do
		[ "$(metric "$(eval echo "\$L7_MPORT_$name")" sluice_store_up)" = 1 ] && return 0
		sleep 0.1
	done
	echo "  sluice-l7 $name: the store is not up after 10 s: $(tail -n 5 "$TMP/$name.err")" >&2
	return 1
}
# spread KEY RATE DURATION BODY [HEADER...]: one load client per instance, at
# RATE/3 each, at once; prints the three JSON results, one a line.
spread() {
	local key=$1 rate=$2 dur=$3 body=$4 n; shift 4
	local hdrs=()
	for h in "$@"; do hdrs+=(--header "$h"); done
	for n in A B C; do
		$CLIENT load --addr "127.0.0.1:$(eval echo "\$L7_PORT_$n")" --key "$key" \
			--rate "$(awk -v r="$rate" 'BEGIN { print r / 3 }')" --duration "$dur" \
			--body "$body" "${hdrs[@]}" >"$TMP/spread.$n" &
	done
	wait_clients
	cat "$TMP/spread.A" "$TMP/spread.B" "$TMP/spread.C"
}
wait_clients() { local j; for j in $(jobs -p); do [[ " ${PIDS[*]} $REDIS_PID " == *" $j "* ]] || wait "$j"; done; }
sum_field() { jq -s --arg k "$1" "[.[] | .[\$k].$2 // 0] | add" <<<"$3"; }
fcmp_le() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a <= b) }'; }
hid() { printf 'key:%s' "$1" | sha256sum | cut -c1-32; }

t_begin "l7 fleet setup: redis-server, mock-llm and three sluice-l7 (ASan) with one store"
setup_ok=1
t_check "start redis-server" redis_start "$TMP/redis" || setup_ok=0
"$MOCK" --listen 127.0.0.1:0 2>"$TMP/mock.err" &
PIDS+=($!)
t_check "start mock-llm" wait_log "$TMP/mock.err" "listening on" || setup_ok=0
BP=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$TMP/mock.err" | head -n1)
for n in A B C; do
	printf -v "L7_PORT_$n" %s "$(free_port)"
	printf -v "L7_MPORT_$n" %s "$(free_port)"
	l7_cfg $n
	[ "$setup_ok" = 1 ] && { t_check "start sluice-l7 $n, store up" l7_run $n || setup_ok=0; }
done
if [ "$setup_ok" = 1 ]; then
	for ((i = 0; i < 50; i++)); do
		[ "$(metric "$L7_MPORT_A" sluice_l7_store_instances)" = 3 ] && break
		sleep 0.1
	done
	t_expect "l7_hello counts three live instances" \
		"$(metric "$L7_MPORT_A" sluice_l7_store_instances)" -eq 3
fi
t_end
[ "$setup_ok" = 1 ] || exit 1

# --- 1. rpm ------------------------------------------------------------------

t_begin "rpm fleet-wide: 200s over three instances within 5% of one instance's"
mock_reset "$BP"
# rpm 600 per 6 s = 100/s after a burst of 50; the key is driven at 200/s.
out=$(spread sk-rq 200 6 "$(chat 20 5)" 'x-mock-completion-tokens: 5')
ok=$(sum_field sk-rq ok "$out")
sent=$(sum_field sk-rq sent "$out")
n429=$(jq -s '[.[] | .["sk-rq"].status["429"] // 0] | add' <<<"$out")
span=$(jq -s '[.[] | .["sk-rq"].span] | max' <<<"$out")
at_mock=$(mock_stats "$BP" | jq -r '.by_key["sk-rq"] // 0')
exp=$(awk -v s="$span" 'BEGIN { printf "%d", 50 + 600 * s / 6 }')
echo "  sent $sent over ${span}s, 200s $ok (mock $at_mock), 429s $n429, expected $exp" >&2
t_expect "driven above the limit" $((sent * 2)) -ge $((exp * 3))
t_expect "every request answered 200 or 429" $((ok + n429)) -eq "$sent"
t_expect "the mock counted the client's 200s" "$at_mock" -eq "$ok"
t_check "200s $ok within 5% of $exp" within 5 "$ok" "$exp"
for n in A B C; do
	t_expect "instance $n decided through the store" \
		"$(metric "$(eval echo "\$L7_MPORT_$n")" 'sluice_l7_store_decisions_total{tier="rq",where="store"}')" -ge 1
done
t_end

# --- 2. tpm with reconcile -----------------------------------------------------

t_begin "tpm fleet-wide with reconcile: tokens within 5% (+ one request) of one instance's"
mock_reset "$BP"
# estimate 17 + 183 = 200 tokens; the mock answers 17 + 83 = 100: every
# request is refunded half its reservation. tpm 60000 per 6 s = 10000
# tokens/s = 100 requests/s after a burst of 2000; driven at 200/s.
out=$(spread sk-tk 200 6 "$(chat 40 183)" 'x-mock-prompt-tokens: 17' 'x-mock-completion-tokens: 83')
ok=$(sum_field sk-tk ok "$out")
sent=$(sum_field sk-tk sent "$out")
toks=$(sum_field sk-tk usage_tokens "$out")
span=$(jq -s '[.[] | .["sk-tk"].span] | max' <<<"$out")
stats=$(mock_stats "$BP")
exp=$(awk -v s="$span" 'BEGIN { printf "%d", 2000 + 60000 * s / 6 }')
echo "  sent $sent over ${span}s, 200s $ok with $toks tokens (mock $(jq -r '.prompt_tokens + .completion_tokens' <<<"$stats")), expected $exp (+200)" >&2
t_expect "driven above the limit" $((sent * 100)) -ge $((exp * 3 / 2))
t_expect "100 tokens in every 200" "$toks" -eq $((ok * 100))
t_expect "the mock's token count = the client's" \
	"$(jq -r '.prompt_tokens + .completion_tokens' <<<"$stats")" -eq "$toks"
t_check "tokens $toks within 5% (+ one request) of $exp" within 5 "$toks" $((exp + 100))
settles=0
for n in A B C; do
	settles=$((settles + $(metric "$(eval echo "\$L7_MPORT_$n")" sluice_l7_store_settles_total)))
done
t_expect "a settle per admitted request at least" "$settles" -ge "$ok"
t_expect "no reservation left behind" "$(redis_cli --scan --pattern 'sluice:{t:tk}:r:*' | wc -l)" -eq 0
t_end

# --- 3. concurrency --------------------------------------------------------------

t_begin "concurrency 4 across three instances: the backend's in-flight maximum"
mock_reset "$BP"
for n in A B C; do
	spec=$(jq -nc '[range(6) | {name: ("r" + tostring), at_ms: (. * 20), key: "sk-cc",
		headers: ["x-mock-latency-ms: 400"]}]')
	$CLIENT multi --addr "127.0.0.1:$(eval echo "\$L7_PORT_$n")" --body "$(chat 20 5)" \
		--spec "$spec" >"$TMP/cc.$n" &
done
wait_clients
r=$(cat "$TMP/cc.A" "$TMP/cc.B" "$TMP/cc.C" | jq -s 'add')
n200=$(jq '[.[] | select(.status == 200)] | length' <<<"$r")
n429=$(jq '[.[] | select(.status == 429)] | length' <<<"$r")
maxin=$(mock_stats "$BP" | jq -r .max_in_flight)
echo "  18 requests of 400 ms: 200s $n200, 429s $n429, the mock's max in flight $maxin" >&2
t_expect "the backend never had more than 4 in flight" "$maxin" -le 4
t_expect "the backend had 4 in flight at some point" "$maxin" -ge 4
t_expect "every request answered 200 or 429" $((n200 + n429)) -eq 18
t_expect "queued requests got slots freed on other instances (more than 4 200s)" "$n200" -gt 4
t_expect "no slot left held" "$(redis_cli zcard "sluice:{t:cc}:cs:$(hid sk-cc)")" -eq 0
t_end

# --- 4. kill -9 of an instance holding slots -------------------------------------

t_begin "kill -9 of an instance holding 4 slots: freed within the slot ttl (10 s)"
spec=$(jq -nc '[range(4) | {name: ("h" + tostring), at_ms: 0, key: "sk-cc",
	headers: ["x-mock-latency-ms: 30000"]}]')
$CLIENT multi --addr "127.0.0.1:$L7_PORT_C" --body "$(chat 20 5)" --spec "$spec" >/dev/null 2>&1 &
PIDS+=($!)
held=0
for ((i = 0; i < 50; i++)); do
	held=$(redis_cli zcard "sluice:{t:cc}:cs:$(hid sk-cc)")
	[ "$held" = 4 ] && break
	sleep 0.1
done
t_expect "instance C holds the 4 slots" "$held" -eq 4
kill -KILL "$L7_PID_C"
# the latest deadline of the dead slots, from the server's clock now
left=$(redis_cli eval "local t = redis.call('TIME'); local now = t[1] * 1000 + math.floor(t[2] / 1000)
	local l = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES'); return tonumber(l[2]) - now" 1 \
	"sluice:{t:cc}:cs:$(hid sk-cc)")
echo "  the dead slots' latest deadline: ${left} ms after the kill" >&2
t_expect "the dead slots end within the slot ttl (10000 ms)" "${left:-99999}" -le 10000
wait "$L7_PID_C" 2>/dev/null
t0=$(date +%s.%N)
first=$($CLIENT req --addr "127.0.0.1:$L7_PORT_A" --key sk-cc --body "$(chat 20 5)" | jq -r '.responses[0].status')
t_expect "at once, a request through A waits and gets 429 (the dead slots are held)" "$first" -eq 429
freed=""
for ((i = 0; i < 40; i++)); do
	if [ "$(redis_cli zcard "sluice:{t:cc}:cs:$(hid sk-cc)")" = 0 ] ||
	   [ "$($CLIENT req --addr "127.0.0.1:$L7_PORT_A" --key sk-cc --body "$(chat 20 5)" |
		jq -r '.responses[0].status')" = 200 ]; then
		freed=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
		break
	fi
	sleep 0.5
done
echo "  the dead instance's slots freed after ${freed:-never} s" >&2
t_check "freed (within 20 s)" test -n "$freed"
t_check "seen free within the slot ttl, 10 s (+ 2.5 s of polling: a poll can wait its queue-timeout)" \
	fcmp_le "${freed:-99}" 12.5
r=$($CLIENT req --addr "127.0.0.1:$L7_PORT_B" --key sk-cc --body "$(chat 20 5)" | jq -r '.responses[0].status')
t_expect "then a request through B gets a slot" "$r" -eq 200
t_check "restart C" l7_run C
t_end

# --- 5. restart: no refill --------------------------------------------------------

t_begin "a restarted instance still refuses a drained key (no refill)"
# rpm 1 per 6 s, burst 3: three 200s drain it; it refills one in 6 s.
r=$($CLIENT req --addr "127.0.0.1:$L7_PORT_A" --key sk-dr --count 4 --body "$(chat 20 5)")
t_expect "three 200s then a 429" \
	"$(jq -r '[.responses[].status] | map(tostring) | join(",")' <<<"$r")" = 200,200,200,429
{ kill -KILL "$L7_PID_A"; wait "$L7_PID_A"; } 2>/dev/null
t_check "restart A" l7_run A
r=$($CLIENT req --addr "127.0.0.1:$L7_PORT_A" --key sk-dr --body "$(chat 20 5)")
t_expect "the restarted A refuses the drained key" "$(jq -r '.responses[0].status' <<<"$r")" -eq 429
r=$($CLIENT req --addr "127.0.0.1:$L7_PORT_B" --key sk-dr --body "$(chat 20 5)")
t_expect "and so does B" "$(jq -r '.responses[0].status' <<<"$r")" -eq 429
t_end

# --- 7. sluice-l7's own 5xx: refunded in the store ---------------------------------

t_begin "fleet: an instance's own 502/503 refunds the store's charge; another instance admits"
# Here, not first: a key's buckets in a store born moments ago start part
# full (they ramp up from the store's birth, case 5). D: the same store, a
# backend nobody listens on. rpm 3 and tpm 900 per 6 s
# (0.5 requests/s, 150 tokens/s); three requests of 300 tokens through D,
# unrefunded, would leave the key at 0 and 0.
DEAD=$(free_port)
L7_PORT_D=$(free_port) L7_MPORT_D=$(free_port)
l7_cfg D "$DEAD"
ok=1
t_check "start sluice-l7 D (backend down), store up" l7_run D || ok=0
if [ "$ok" = 1 ]; then
	key="sluice:{t:ou}:c:$(hid sk-ou)"
	sts=""
	for i in 1 2 3; do
		r=$($CLIENT req --addr "127.0.0.1:$L7_PORT_D" --key sk-ou --body "$(chat 40 283)")
		sts="$sts $(jq -r '.responses[0].status' <<<"$r")"
	done
	full=0
	for ((i = 0; i < 20; i++)); do
		lv=$(redis_cli hmget "$key" rpm_level tpm_level | tr '\n' ' ')
		awk -v r="${lv% *}" -v t="${lv#* }" 'BEGIN { exit !(r + 0 >= 3 && t + 0 >= 900) }' &&
			{ full=1; break; }
		sleep 0.05
	done
	echo "  through D:$sts; the store's levels (rpm tpm): $lv" >&2
	t_expect "D answered 502/503, no 429" "$(tr ' ' '\n' <<<"$sts" | grep -cE '^50[23]$')" -eq 3
	t_expect "the store's buckets of the key are full again (rpm 3, tpm 900)" "$full" -eq 1
	t_expect "D counted three refunds" \
		"$(metric "$L7_MPORT_D" 'sluice_l7_unserved_refunds_total{tier="ou"}')" -eq 3
	t_expect "D's settles reached the store" "$(metric "$L7_MPORT_D" sluice_l7_store_settles_total)" -ge 3
	t_expect "no reservation left behind" \
		"$(redis_cli --scan --pattern 'sluice:{t:ou}:r:*' | wc -l)" -eq 0
	r=$($CLIENT req --addr "127.0.0.1:$L7_PORT_A" --key sk-ou --count 3 --body "$(chat 40 283)" \
		--header 'x-mock-prompt-tokens: 17' --header 'x-mock-completion-tokens: 283')
	t_expect "then through A: three 200s at once (the whole limit)" \
		"$(jq -r '[.responses[].status] | map(tostring) | join(",")' <<<"$r")" = 200,200,200
	t_expect "A's first answer: the store's full bucket less itself (remaining-requests 2)" \
		"$(jq -r '.responses[0].headers["x-ratelimit-remaining-requests"]' <<<"$r")" -eq 2
	l7_stop D
fi
t_end

# --- 6. Redis down: the share ------------------------------------------------------

t_begin "Redis down: each instance enforces its share (not unlimited, not zero)"
# (D of case 7 is gone: counted out once silent for 3 s)
for ((i = 0; i < 100; i++)); do
	[ "$(metric "$L7_MPORT_A" sluice_l7_store_instances)" = 3 ] &&
		[ "$(metric "$L7_MPORT_B" sluice_l7_store_instances)" = 3 ] &&
		[ "$(metric "$L7_MPORT_C" sluice_l7_store_instances)" = 3 ] && break
	sleep 0.1
done
live=$(metric "$L7_MPORT_A" sluice_l7_store_instances)
t_expect "three live instances before the outage" "$live" -eq 3
redis_stop
for ((i = 0; i < 50; i++)); do
	[ "$(metric "$L7_MPORT_A" sluice_store_up)$(metric "$L7_MPORT_B" sluice_store_up)$(metric "$L7_MPORT_C" sluice_store_up)" = 000 ] && break
	sleep 0.1
done
t_expect "sluice_store_up is 0 everywhere" \
	"$(metric "$L7_MPORT_A" sluice_store_up)$(metric "$L7_MPORT_B" sluice_store_up)$(metric "$L7_MPORT_C" sluice_store_up)" = 000
mock_reset "$BP"
# rpm 600 (burst 60) per 6 s: each of 3 enforces 200 (burst 20), 33.3/s;
# each is driven at 100/s for 3 s.
out=$(spread sk-sh 300 3 "$(chat 20 5)" 'x-mock-completion-tokens: 5')
for n in A B C; do
	o=$(jq -s --arg n "$n" 'if $n == "A" then .[0] elif $n == "B" then .[1] else .[2] end' <<<"$out")
	ok=$(jq -r '.["sk-sh"].ok' <<<"$o")
	sent=$(jq -r '.["sk-sh"].sent' <<<"$o")
	span=$(jq -r '.["sk-sh"].span' <<<"$o")
	exp=$(awk -v s="$span" 'BEGIN { printf "%d", 20 + 200 * s / 6 }')
	echo "  instance $n: sent $sent over ${span}s, 200s $ok, its share $exp" >&2
	t_expect "$n: not unlimited (200s < sent / 2)" $((ok * 2)) -lt "$sent"
	t_expect "$n: not zero" "$ok" -gt 0
	t_check "$n: 200s $ok within 10% of its share $exp" within 10 "$ok" "$exp"
done
grep -h "limits: local" "$TMP/A.err" | tail -n 1 | sed 's/^/  /' >&2
t_expect "one log line for the change to local limits (A)" \
	"$(grep -c 'limits: local until' "$TMP/A.err")" -eq 1
t_end

t_begin "l7 fleet: the instances stop cleanly (SIGTERM, no sanitizer report)"
for n in A B C; do l7_stop $n; done
t_end
