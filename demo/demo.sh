#!/usr/bin/env bash
# sluice demo, in network namespaces; everything it creates is removed on exit.
#  Act 1: a backend, a legitimate client and a flooding attacker: what the
#         backend receives before and after sluice is attached with a
#         per-source limit.
#  Act 2: three API keys (pro, free, and an abusive free one) calling a mock
#         LLM through sluice-l7: 429s with their headers, the abuser's
#         address banned to sluice's XDP deny list, the others unaffected.
#  Act 3: three gateways share one global limit through Redis: the leases
#         follow the traffic, hold while Redis is down, come back with it
#         (demo/demo_fleet.sh).
# Usage: demo/demo.sh [--act 1|2|3] [BUILD_DIR]   (as root; `make demo` runs all three)
set -euo pipefail

acts="1 2 3"
if [ "${1:-}" = --act ]; then
	case "${2:-}" in 1|2|3) acts=$2 ;; *) echo "demo: --act takes 1, 2 or 3" >&2; exit 2 ;; esac
	shift 2
fi
build=${1:-build}
[ -d "$build" ] || { echo "demo: no build directory $build (run make)" >&2; exit 1; }
build=$(cd "$build" && pwd)
SLUICE=$build/sluice L7=$build/sluice-l7 MOCK=$build/mock-llm
here=$(cd "$(dirname "$0")" && pwd)
# The demo keeps its own pin root, so it never touches a production policy.
export SLUICE_PIN_ROOT=/sys/fs/bpf/sluice-demo
# Act 1
NET=sldemo-net BE=sldemo-be
CLIENT=198.18.0.10 ATTACKER=198.18.0.66 BACKEND=198.18.0.1
PORT=9000 SECS=4
# Act 2: clients' namespace, server namespace (sluice-l7, the mock LLM)
L7C=sldemo-l7c L7S=sldemo-l7s
SERVER=198.18.1.1 PRO_IP=198.18.1.10 FREE_IP=198.18.1.11 ABUSER_IP=198.18.1.66
L7_PORT=8080 MOCK_PORT=9000 METRICS_PORT=9465
PRO_KEY=sk-demo-pro-7f3a FREE_KEY=sk-demo-free-2b9c ABUSER_KEY=sk-demo-free-e41d
TRAFFIC_SECS=16
tmp=""

[ "$(id -u)" = 0 ] || { echo "demo: needs root (network namespaces and BPF)" >&2; exit 1; }
[ -x "$SLUICE" ] || { echo "demo: $SLUICE not built (run make)" >&2; exit 1; }
case " $acts " in *" 3 "*)
	for tool in redis-server trafgen jq nft; do
		command -v $tool >/dev/null || { echo "demo: act 3 needs $tool (make deps)" >&2; exit 1; }
	done ;;
esac
case " $acts " in *" 2 "*)
	for bin in "$L7" "$MOCK"; do
		[ -x "$bin" ] || { echo "demo: $bin not built (run make)" >&2; exit 1; }
	done
	for tool in curl jq python3; do
		command -v $tool >/dev/null || { echo "demo: act 2 needs $tool" >&2; exit 1; }
	done ;;
esac

# Stops what runs in the namespaces given (SIGTERM, SIGKILL after 2 s), removes
# them, and unloads sluice from the demo's pin root.
teardown() {
	local ns i left
	for ns in "$@"; do
		ip netns pids "$ns" 2>/dev/null | xargs -r kill 2>/dev/null
	done
	for i in $(seq 20); do
		left=""
		for ns in "$@"; do left+=$(ip netns pids "$ns" 2>/dev/null); done
		[ -n "$left" ] || break
		sleep 0.1
	done
	for ns in "$@"; do
		ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null
		ip netns del "$ns" 2>/dev/null
	done
	"$SLUICE" unload >/dev/null 2>&1
}
cleanup() {
	set +e
	teardown $NET $BE $L7C $L7S
	[ -z "$tmp" ] || rm -rf "$tmp"
}
cleanup # leftovers of an interrupted run
trap cleanup EXIT
trap 'exit 130' INT TERM
tmp=$(mktemp -d)

if [ -t 1 ]; then B=$'\033[1m' N=$'\033[0m'; else B='' N=''; fi
say() { printf '\n%s%s%s\n' "$B" "$*" "$N"; }
sluice() { printf '  $ sluice %s\n' "$*"; "$SLUICE" "$@" 2>&1 | sed 's/^/    /'; }
pause() { sleep "${DEMO_PAUSE:-1}"; }

act1() {
	say "1. Topology: client $CLIENT and attacker $ATTACKER -> backend $BACKEND:$PORT/udp"
	ip netns add $NET
	ip netns add $BE
	ip link add sldemo0 netns $NET type veth peer name sldemo1 netns $BE
	for ns in $NET $BE; do ip -n $ns link set dev lo up; done
	ip -n $NET link set dev sldemo0 up
	ip -n $BE link set dev sldemo1 up
	ip -n $NET addr add $CLIENT/24 dev sldemo0
	ip -n $BE addr add $BACKEND/24 dev sldemo1
	ip netns exec $BE sysctl -qw net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.sldemo1.rp_filter=0
	be_mac=$(ip -n $BE -j link show dev sldemo1 | jq -r '.[0].address')
	net_mac=$(ip -n $NET -j link show dev sldemo0 | jq -r '.[0].address')

	# The backend counts arrivals per source with nft, independently of sluice.
	ip netns exec $BE nft -f - <<EOF
	table inet demo {
		chain in {
			type filter hook prerouting priority raw;
			ip saddr $CLIENT udp dport $PORT counter
			ip saddr $ATTACKER udp dport $PORT counter
		}
	}
EOF

	for who in client:$CLIENT attacker:$ATTACKER; do
		cat > "$tmp/${who%%:*}.cfg" <<EOF
	{ eth(da=$be_mac, sa=$net_mac), ipv4(sa=${who#*:}, da=$BACKEND),
	  udp(sp=40000, dp=$PORT), fill(0x41, 18) }
EOF
	done

	counts() {
		ip netns exec $BE nft -j list chain inet demo in |
			jq -r '[.nftables[] | select(.rule) | .rule.expr[] | select(.counter) | .counter.packets] | @tsv'
	}

	# Client: 200 packets/s. Attacker: as fast as one trafgen paces (~20k/s).
	phase() {
		local c0 a0 c a
		read -r c0 a0 < <(counts)
		ip netns exec $NET timeout $((SECS + 2)) trafgen --dev sldemo0 --conf "$tmp/client.cfg" \
			--num $((SECS * 200)) -t 5000us -q >/dev/null 2>&1 &
		ip netns exec $NET timeout $SECS trafgen --dev sldemo0 --conf "$tmp/attacker.cfg" \
			--num 1000000 -t 20us -q >/dev/null 2>&1 || true
		wait
		read -r c a < <(counts)
		c=$((c - c0)) a=$((a - a0))
		printf '  backend received: client %6d packets (%5d/s)   attacker %7d packets (%6d/s)\n' \
			"$c" $((c / SECS)) "$a" $((a / SECS))
		echo "$c $a" > "$tmp/$1"
	}

	say "2. Without sluice: the flood reaches the backend ($SECS s of traffic)"
	phase before

	say "3. Attach sluice and limit every source to 1000 packets/s on port $PORT"
	printf '  $ sluice attach sldemo1        (in the backend namespace)\n'
	nsenter --net=/run/netns/$BE "$SLUICE" attach sldemo1 | sed 's/^/    /'
	sluice rule add name per-source dport $PORT proto udp pps 1000 burst 200

	say "4. With sluice ($SECS s of the same traffic)"
	phase after

	say "5. What sluice saw"
	sluice stats
	sluice top --once --count 5

	say "6. Escalation: a source that keeps exceeding its limit is banned for 10 s"
	sluice rule del per-source
	sluice rule add name ban-floods dport $PORT proto udp pps 1000 burst 200 ban 10
	ip netns exec $NET timeout 2 trafgen --dev sldemo0 --conf "$tmp/attacker.cfg" \
		--num 100000 -t 20us -q >/dev/null 2>&1 || true
	sluice deny list

	read -r cb ab < "$tmp/before"
	read -r ca aa < "$tmp/after"
	say "Summary"
	printf '  client   (200/s, under the limit): %6d -> %6d packets  (%s)\n' "$cb" "$ca" \
		"$([ "$ca" -ge $((cb * 95 / 100)) ] && echo 'unaffected' || echo 'LOST PACKETS')"
	printf '  attacker (flood):                 %6d -> %6d packets  (%d%% of the flood dropped at XDP)\n' \
		"$ab" "$aa" $(( ab > 0 ? 100 - aa * 100 / ab : 0 ))
	printf '  expected for the attacker: 1000/s x %d s + 200 burst = %d\n' $SECS $((1000 * SECS + 200))
}

# --- Act 2: sluice-l7 -------------------------------------------------------

BODY='{"model":"demo","max_tokens":32,"messages":[{"role":"user","content":"Say something short, please."}]}'

# ask SOURCE KEY OUT: one chat completion from SOURCE with KEY; the body goes to
# OUT, the head to OUT.head; prints the status (000: no connection).
ask() {
	ip netns exec $L7C curl -sS -o "$3" -D "$3.head" -w '%{http_code}' --interface "$1" \
		--connect-timeout 1 -m 5 -H "Authorization: Bearer $2" \
		-H 'Content-Type: application/json' --data "$BODY" \
		"http://$SERVER:$L7_PORT/v1/chat/completions" 2>"$3.err" || true
}
show_head() { tr -d '\r' < "$1" | grep -iE "^(HTTP/|${2:-x-ratelimit-})" | sed 's/^/    /'; }
# A completion shortened to its id, content and usage; an error body whole.
show_body() {
	jq -c 'if .choices then {id, content: .choices[0].message.content, usage} else . end' "$1" |
		sed 's/^/    /'
}

# wait_log FILE TEXT: up to 5 s for a daemon's readiness line.
wait_log() {
	local i
	for i in $(seq 50); do
		grep -q "$2" "$1" 2>/dev/null && return 0
		sleep 0.1
	done
	echo "demo: no '$2' in $1 after 5 s:" >&2
	sed 's/^/  /' "$1" >&2
	exit 1
}

act2() {
	local pro_status i st ns a statuses="" last429=""

	say "Act 2. Three API keys call a mock LLM through sluice-l7"
	printf '  pro key   %-12s  free key  %-12s  abusive free key %s\n' $PRO_IP $FREE_IP $ABUSER_IP
	printf '  -> sluice-l7 %s:%d -> mock LLM 127.0.0.1:%d (server namespace), sluice XDP on its veth\n' \
		$SERVER $L7_PORT $MOCK_PORT
	ip netns add $L7C
	ip netns add $L7S
	ip link add sldl7c netns $L7C type veth peer name sldl7s netns $L7S
	for ns in $L7C $L7S; do ip -n $ns link set dev lo up; done
	ip -n $L7C link set dev sldl7c up
	ip -n $L7S link set dev sldl7s up
	for a in $PRO_IP $FREE_IP $ABUSER_IP; do ip -n $L7C addr add $a/24 dev sldl7c; done
	ip -n $L7S addr add $SERVER/24 dev sldl7s
	# sluice-l7 and the mock must see the host's bpffs pins: nsenter, not ip netns exec.
	nsenter --net=/run/netns/$L7S "$SLUICE" attach sldl7s >/dev/null
	nsenter --net=/run/netns/$L7S "$MOCK" --listen 127.0.0.1:$MOCK_PORT --latency-ms 40 \
		--token-ms 5 --completion-tokens 16 2>"$tmp/mock.log" &
	cat > "$tmp/l7.conf" <<EOF
listen $SERVER:$L7_PORT
backend 127.0.0.1:$MOCK_PORT
metrics 127.0.0.1:$METRICS_PORT
unknown-keys refuse
tier free priority 0 rpm 60 rpm-burst 5 tpm 20k concurrency 2
tier pro  priority 8 rpm 600 tpm 200k concurrency 8
key $PRO_KEY tier pro
key $FREE_KEY tier free
key $ABUSER_KEY tier free
deny-after 60 within 10s ban 30s
EOF
	chmod 600 "$tmp/l7.conf"
	wait_log "$tmp/mock.log" "listening on"
	nsenter --net=/run/netns/$L7S "$L7" -c "$tmp/l7.conf" 2>"$tmp/l7.log" &
	wait_log "$tmp/l7.log" "listening on"
	echo "  sluice-l7's configuration (rpm: requests per minute per key, tpm: tokens):"
	grep -E '^(tier|key|deny-after)' "$tmp/l7.conf" | sed 's/^/    /'
	pause

	say "A well-behaved request (pro key): 200, with the key's remaining budget in x-ratelimit-*"
	pro_status=$(ask $PRO_IP $PRO_KEY "$tmp/pro")
	show_head "$tmp/pro.head"
	show_body "$tmp/pro"
	[ "$pro_status" = 200 ] || { echo "demo: the pro request got $pro_status" >&2; exit 1; }
	pause

	say "The abusive free key fires requests back to back: a burst of 5 (+1 a second), then 429"
	for i in $(seq 12); do
		st=$(ask $ABUSER_IP $ABUSER_KEY "$tmp/ab$i")
		statuses="$statuses $st"
		if [ "$st" = 429 ]; then last429=$tmp/ab$i; break; fi
	done
	echo "  statuses:$statuses"
	[ -n "$last429" ] || { echo "demo: no 429 for the abuser's burst" >&2; exit 1; }
	echo "  one 429 in full:"
	show_head "$last429.head" "x-ratelimit-|retry-after|content-type"
	echo
	show_body "$last429"
	pause

	say "$TRAFFIC_SECS s of traffic: pro 5 req/s (300 of 600 rpm), free 0.5 req/s (30 of 60 rpm), abuser 25 req/s"
	echo "  sluice-l7 bans an address answered 60 429s within 10 s: its packets are then dropped in XDP"
	ip netns exec $L7C python3 "$here/demo_l7.py" --target $SERVER:$L7_PORT \
		--duration $TRAFFIC_SECS --every 2 --summary "$tmp/tally.json" \
		--watch-log "$tmp/l7.log" --watch-match ' ban' \
		--client pro,$PRO_IP,$PRO_KEY,5,stream \
		--client free,$FREE_IP,$FREE_KEY,0.5,json \
		--client abuser,$ABUSER_IP,$ABUSER_KEY,25,json
	pause

	say "The ban: sluice-l7's log, then sluice's deny list"
	grep -E ' ban' "$tmp/l7.log" | sed 's/^/    /' || true
	sluice deny list
	echo "  the abuser tries again; the pro key too:"
	st=$(ask $ABUSER_IP $ABUSER_KEY "$tmp/after")
	printf '    abuser: %s (%s)\n' "$st" "$(cat "$tmp/after.err")"
	st=$(ask $PRO_IP $PRO_KEY "$tmp/after-pro")
	printf '    pro:    %s\n' "$st"
	echo "  sluice's XDP counters: 'ban' counts the abuser's packets its ban dropped"
	printf '  $ sluice stats\n'
	"$SLUICE" stats | head -n 2 | sed 's/^/    /'
	pause

	say "Signals sluice-l7 wrote for the backend's port $MOCK_PORT (the adaptive controller steers on them)"
	printf '  $ sluice signals --interval 0\n'
	"$SLUICE" signals --interval 0 | awk -v RS= -v p="port $MOCK_PORT" 'index($0, p) == 1' |
		sed 's/^/    /'
	pause

	say "sluice-l7's own metrics (http://127.0.0.1:$METRICS_PORT/metrics, a few lines)"
	nsenter --net=/run/netns/$L7S curl -sS -m 2 "http://127.0.0.1:$METRICS_PORT/metrics" |
		grep -E '^sluice_l7_(requests_total|rejections_total|bans_total|tokens_total)' |
		grep -v ' 0$' | head -n 14 | sed 's/^/    /'

	if grep -q 'warn\|error' "$tmp/l7.log"; then
		echo "  sluice-l7's warnings and errors:"
		grep 'warn\|error' "$tmp/l7.log" | head -n 5 | sed 's/^/    /'
	fi
	act2_summary
}

# The demo fails unless it showed what it claims.
act2_summary() {
	local t=$tmp/tally.json bad=0 denied
	denied=$("$SLUICE" deny list --json | jq -r --arg a $ABUSER_IP \
		'[.[] | select(.prefix | startswith($a))] | length')
	say "Summary of act 2"
	jq -r 'to_entries[] | "  \(.key): \(.value["200"]) answered, \(.value["429"]) 429s, \(.value.fail) connection failures"' "$t"
	for who in pro free; do
		if [ "$(jq -r --arg w $who '.[$w]["429"] + .[$w].fail + .[$w].other' "$t")" != 0 ] ||
		   [ "$(jq -r --arg w $who '.[$w]["200"]' "$t")" = 0 ]; then
			echo "  FAILED: the well-behaved $who key was affected"; bad=1
		fi
	done
	if [ "$(jq -r '.abuser["429"]' "$t")" = 0 ] || [ "$(jq -r '.abuser.fail' "$t")" = 0 ]; then
		echo "  FAILED: the abuser was not both limited (429) and then dropped"; bad=1
	fi
	if [ "$denied" = 0 ]; then
		echo "  FAILED: $ABUSER_IP is not on the deny list"; bad=1
	fi
	[ $bad = 0 ] || exit 1
	echo "  the good keys were unaffected; the abuser got 429s, then its packets were dropped in XDP"
}

for act in $acts; do
	case $act in
	1) say "Act 1. A UDP flood against a namespace backend"; act1; teardown $NET $BE ;;
	2) act2 ;;
	3) "$here/demo_fleet.sh" "$build" || exit 1 ;;
	esac
done
say "Cleaning up: namespaces removed, sluice unloaded."
