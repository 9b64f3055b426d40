#!/usr/bin/env bash
# tests/e2e/fleet.sh - three gateways share one global limit through Redis.
#
# Topology: a sender namespace ($NS_S) with one veth pair to each of three
# gateway namespaces (g1..g3). Each gateway runs its own sluiced (its own
# pin root, its own instance name) attached in native mode to its end, with
# one global rule: UDP to $PORT, pps $G burst $B for the whole fleet. One
# redis-server (tests/lib/redis.sh) on a unix socket serves all three. What
# each gateway admits is counted by an nft counter on its ingress hook
# (after XDP), independent of sluice's own counters. trafgen floods each
# link at its own rate.
#
# Cases: skewed demand (the fleet admits G x T, each share follows max-min
# fairness); demand moves to another gateway (shares follow within two
# renewals); Redis killed (the total stays within the bound, no gateway at
# zero: leases, then G/3 each); Redis restarted empty (no burst). Every wait
# and every sender is bounded in time.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib.sh"
. "$here/../lib/redis.sh"
SLUICED=${SLUICED:-${SLUICE_BUILD:-build}/sluiced}
PY=/usr/bin/python3
NS_S=${T_PREFIX}s
TMP=$(mktemp -d "/tmp/$T_PREFIX.XXXXXX")
G=3000 B=300 PORT=9999
GWS="1 2 3"
declare -A D_PID TG_PID MAC

cleanup() {
	local i
	for i in $GWS; do
		[ -n "${TG_PID[$i]:-}" ] && kill "${TG_PID[$i]}" 2>/dev/null
		[ -n "${D_PID[$i]:-}" ] && kill -KILL "${D_PID[$i]}" 2>/dev/null
	done
	redis_stop >/dev/null 2>&1 # before the wait: it would wait for the server
	wait 2>/dev/null
	t_ns_cleanup
	for i in $GWS; do
		SLUICE_PIN_ROOT=$(pin_root "$i") "$SLUICE" unload >/dev/null 2>&1
		rm -rf "$(pin_root "$i")"
	done
	[ -n "${FLEET_KEEP:-}" ] && echo "kept $TMP" >&2 || rm -rf "$TMP"
}
trap cleanup EXIT

pin_root() { echo "/sys/fs/bpf/sluice-test-$T_PREFIX-g$1"; }
ns() { echo "${T_PREFIX}g$1"; }
in_g() { local i=$1; shift; ip netns exec "$(ns "$i")" timeout 30 "$@"; }
sl_g() { local i=$1; shift; SLUICE_PIN_ROOT=$(pin_root "$i") nsenter --net="/run/netns/$(ns "$i")" timeout 30 "$SLUICE" "$@"; }

setup() {
	local i
	ip netns add "$NS_S" || return 1
	ip -n "$NS_S" link set dev lo up
	for i in $GWS; do
		ip netns add "$(ns "$i")" || return 1
		ip link add "${T_PREFIX}s$i" type veth peer name "${T_PREFIX}g$i" || return 1
		ip link set dev "${T_PREFIX}s$i" netns "$NS_S" || return 1
		ip link set dev "${T_PREFIX}g$i" netns "$(ns "$i")" || return 1
		ip -n "$(ns "$i")" link set dev lo up
		ip -n "$NS_S" link set dev "${T_PREFIX}s$i" up || return 1
		ip -n "$(ns "$i")" link set dev "${T_PREFIX}g$i" up || return 1
		ip -n "$(ns "$i")" addr add "198.18.$i.254/24" dev "${T_PREFIX}g$i" || return 1
		MAC[$i]=$(ip -n "$(ns "$i")" -j link show dev "${T_PREFIX}g$i" | jq -r '.[0].address')
		in_g "$i" nft -f - <<-EOF || return 1
		table netdev fleet_e2e {
			chain rx {
				type filter hook ingress device "${T_PREFIX}g$i" priority 0;
				udp dport $PORT counter
			}
		}
		EOF
		{
			echo "{ eth(da=${MAC[$i]}), ipv4(sa=198.18.$i.1, da=198.18.$i.254, ttl=64),"
			echo "  udp(sp=40000, dp=$PORT), fill(0x41, 22) }"
		} >"$TMP/tg$i.cfg"
	done
}

# admitted I: packets gateway I let through XDP so far.
admitted() {
	in_g "$1" nft -j list chain netdev fleet_e2e rx |
		jq '[.nftables[].rule? | select(. != null) | .expr[] | .counter? |
		     select(. != null) | .packets] | add // 0'
}

conf() {
	cat >"$TMP/g$1.conf" <<-EOF
	interface ${T_PREFIX}g$1 mode native
	metrics off
	store redis unix:$REDIS_SOCK instance gw$1 timeout 200ms
	rule add name api proto udp dport $PORT pps $G burst $B key rule global
	EOF
}

d_start() {
	local i=$1 n
	conf "$i"
	: >"$TMP/g$i.log"
	SLUICE_PIN_ROOT=$(pin_root "$i") nsenter --net="/run/netns/$(ns "$i")" \
		"$SLUICED" -f -c "$TMP/g$i.conf" 2>>"$TMP/g$i.log" &
	D_PID[$i]=$!
	for n in $(seq 100); do
		grep -q 'store redis .*: up' "$TMP/g$i.log" && return 0
		kill -0 "${D_PID[$i]}" 2>/dev/null || break
		sleep 0.1
	done
	echo "sluiced g$i did not come up with the store:" >&2
	sed 's/^/    /' "$TMP/g$i.log" >&2
	return 1
}

# flood I PPS SECS: trafgen on link I at about PPS (paced), for at most SECS.
flood() {
	local i=$1 pps=$2 secs=$3
	[ -n "${TG_PID[$i]:-}" ] && kill "${TG_PID[$i]}" 2>/dev/null && wait "${TG_PID[$i]}" 2>/dev/null
	ip netns exec "$NS_S" timeout "$secs" trafgen --dev "${T_PREFIX}s$i" --conf "$TMP/tg$i.cfg" \
		-t "$((1000000 / pps))us" -P 1 -C >/dev/null 2>&1 &
	TG_PID[$i]=$!
}

stop_floods() {
	local i
	for i in $GWS; do
		[ -n "${TG_PID[$i]:-}" ] && kill "${TG_PID[$i]}" 2>/dev/null
		wait "${TG_PID[$i]}" 2>/dev/null
		TG_PID[$i]=""
	done
}

# window SECS: what each gateway admitted over SECS, into W1 W2 W3 (each
# scaled to the same span from its own two reads, timed at each read: reading
# three nft counters takes a while), the total into WT and the span into WS.
window() {
	local i a0=() a1=() t0=() t1=()
	for i in $GWS; do a0[$i]=$(admitted "$i"); t0[$i]=$(date +%s.%N); done
	sleep "$1"
	for i in $GWS; do a1[$i]=$(admitted "$i"); t1[$i]=$(date +%s.%N); done
	WS=$1
	for i in $GWS; do
		eval "W$i=$(awk -v a="${a0[$i]}" -v b="${a1[$i]}" -v s="${t0[$i]}" -v e="${t1[$i]}" -v w="$WS" \
			'BEGIN { printf "%d", (b - a) * w / (e - s) }')"
	done
	WT=$((W1 + W2 + W3))
	echo "  window ${WS}s: g1 $W1 g2 $W2 g3 $W3 total $WT (G x T = $((G * WS))); leases now: $(for i in $GWS; do printf '%s/%s ' "$(lease_of "$i")" "$(sl_g "$i" rule list --json | jq -r '.[0].global.source')"; done)" >&2
}

# the fleet's total within [lo% of G x T, G x T + B + hi%]
fleet_bound() {
	local what=$1 lo=$2 hi=$3
	t_check "$what: total $WT in [$lo% x G x T, G x T + B + $hi%] (T ${WS}s)" \
		awk -v t="$WT" -v s="$WS" -v g=$G -v b=$B -v lo="$lo" -v hi="$hi" \
		'BEGIN { e = g * s; exit !(t >= e * lo / 100 && t <= (e + b) * (1 + hi / 100)) }'
}

# wait_up_again SECS: every gateway logged "up" a second time
wait_up_again() {
	local n i ok
	for n in $(seq $(($1 * 10))); do
		ok=1
		for i in $GWS; do
			[ "$(grep -c 'store redis .*: up' "$TMP/g$i.log")" -ge 2 ] || ok=0
		done
		[ $ok = 1 ] && return 0
		sleep 0.1
	done
	return 1
}

lease_of() {
	sl_g "$1" rule list --json | jq -r '.[] | select(.name == "api") | .global.lease.pps // -1'
}

t_begin "fleet: three gateways and one Redis come up with the global rule"
setup
t_check "topology" test -n "${MAC[3]:-}"
t_check "redis" redis_start "$TMP/redis"
for i in $GWS; do t_check "sluiced g$i up with the store" d_start "$i"; done
sleep 1.5
for i in $GWS; do
	j=$(sl_g "$i" rule list --json)
	t_check "g$i: global object" test "$(echo "$j" | jq -r '.[0].global.store')" = up
	t_expect "g$i: fleet limit" "$(echo "$j" | jq -r '.[0].global.limit.pps')" -eq $G
	t_expect "g$i: gateways" "$(echo "$j" | jq -r '.[0].global.gateways')" -eq 3
	t_expect "g$i: the rule holds the lease, below G" "$(echo "$j" | jq -r '.[0].pps')" -lt $G
done
sum=0
for i in $GWS; do sum=$((sum + $(lease_of "$i"))); done
t_expect "the leases sum to at most G" "$sum" -le $G
t_check "rule list text shows the lease" sh -c "SLUICE_PIN_ROOT=$(pin_root 1) '$SLUICE' rule list | grep -q 'global: pps $G lease'"
t_end

t_begin "fleet: skewed demand: the fleet admits G x T, shares max-min fair"
flood 1 4000 40; flood 2 1500 40; flood 3 300 40
sleep 3
window 5
fleet_bound "skewed" 95 2
t_check "g3 (300/s offered) passes what it sends: $W3 in 5 s" awk -v w="$W3" -v s="$WS" 'BEGIN { exit !(w >= 0.85 * 300 * s) }'
t_check "g1 and g2 split the rest: $W1 vs $W2" awk -v a="$W1" -v b="$W2" 'BEGIN { exit !(a > 0 && b > 0 && a / b < 1.3 && b / a < 1.3) }'
t_end

t_begin "fleet: demand moves from g1 to g2: shares follow within two renewals"
flood 1 300 40; flood 2 4000 40; flood 3 1500 40
sleep 2.5
window 4
fleet_bound "shifted" 95 2
t_check "g1 now passes its small demand: $W1" awk -v w="$W1" -v s="$WS" 'BEGIN { exit !(w >= 0.85 * 300 * s && w <= 1.3 * 300 * s) }'
t_check "g2 took the share g1 gave back: $W2 > 1000/s" awk -v w="$W2" -v s="$WS" 'BEGIN { exit !(w >= 1000 * s) }'
t_end

t_begin "fleet: Redis killed mid-run: within the bound, no gateway at zero"
kill -KILL "$REDIS_PID"; wait "$REDIS_PID" 2>/dev/null; REDIS_PID=""
window 2   # the leases run out (3 s after their last renewal)
fleet_bound "store down, leases" 0 2
sleep 1.5
window 4   # then G / 3 each (g1 uses less: it is offered 300/s)
fleet_bound "store down, safe shares" 0 2
t_expect "g1 still passes" "$W1" -gt 0
t_expect "g2 still passes" "$W2" -gt 0
t_expect "g3 still passes" "$W3" -gt 0
for i in 2 3; do
	w=$(eval echo "\$W$i")
	t_check "g$i at G/3: $w" awk -v w="$w" -v s="$WS" -v g=$G 'BEGIN { exit !(w >= 0.9 * g / 3 * s && w <= 1.02 * g / 3 * s + 100) }'
done
for i in $GWS; do
	t_check "g$i logged the store down once" test "$(grep -c 'store redis .*: down' "$TMP/g$i.log")" -ge 1
	t_check "g$i: safe share shown" test "$(sl_g "$i" rule list --json | jq -r '.[0].global.source')" = safe-share
done
t_end

t_begin "fleet: Redis restarted empty: no burst, leases again"
rm -f "$TMP/redis/redis.sock"
t_check "redis again" redis_start "$TMP/redis"
t_check "the gateways reconnect (backoff at most 2 s)" wait_up_again 5
window 3   # learning: nobody gets more than it enforces
fleet_bound "store back (learning): no burst" 0 2
sleep 1
window 4
fleet_bound "store back" 95 2
for i in $GWS; do
	t_check "g$i: leased again" test "$(sl_g "$i" rule list --json | jq -r '.[0].global.source')" = leased
	t_check "g$i: saw the new epoch" grep -q "a new epoch" "$TMP/g$i.log"
done
stop_floods
t_end

t_begin "fleet: no key material and no password in the logs, keys carry TTLs"
t_check "every key has a TTL" sh -c "redis-cli -s '$REDIS_SOCK' --scan | while read -r k; do t=\$(redis-cli -s '$REDIS_SOCK' pttl \"\$k\"); [ \"\$t\" -gt 0 ] || exit 1; done"
t_check "the alloc key is hash-tagged by rule" sh -c "redis-cli -s '$REDIS_SOCK' --scan | grep -qx 'sluice:{rule:api}:alloc'"
t_end
