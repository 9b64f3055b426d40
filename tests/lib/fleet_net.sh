# tests/lib/fleet_net.sh - a fleet of gateways in namespaces, for the fleet
# suites and the demo's third act. Source it after tests/lib.sh and
# tests/lib/redis.sh.
#
# A sender namespace ($NS_S) with one veth pair to each gateway namespace
# ($(ns I), I in $GWS). Each gateway runs its own sluiced (its own pin root,
# instance gwI) attached in native mode to its end; what it admits to UDP
# $PORT is counted by an nft counter on its ingress hook (after XDP).
#
#   fleet_setup            namespaces, veths, addresses, counters
#   fleet_cleanup          floods, daemons, Redis, namespaces, pins (for the trap)
#   d_start I [RULES...]   sluiced on gateway I with the store and the RULES
#                          lines (default: the global rule api, pps $G burst $B;
#                          a comment line for none); waits (bounded) until its
#                          store is up
#   flood I PPS SECS [SRC] trafgen on link I at about PPS, for at most SECS,
#                          from SRC (default 198.18.I.1); replaces the flood
#                          on link I from the same SRC
#   stop_flood I [SRC]
#   stop_floods
#   admitted I             packets gateway I let through XDP so far
#   sl_g I ARGS...         sluice against gateway I's pins, in its namespace
#   in_g I CMD...          CMD in gateway I's namespace (bounded)
SLUICED=${SLUICED:-${SLUICE_BUILD:-build}/sluiced}
NS_S=${T_PREFIX}s
FLEET_TMP=${FLEET_TMP:-$(mktemp -d "/tmp/$T_PREFIX.XXXXXX")}
G=${G:-3000} B=${B:-300} PORT=${PORT:-9999}
GWS=${GWS:-"1 2 3"}
FLEET_PIN_BASE=${FLEET_PIN_BASE:-/sys/fs/bpf/sluice-test-$T_PREFIX}
declare -A D_PID TG_PID MAC

fleet_cleanup() {
	local i
	for i in "${TG_PID[@]}"; do
		[ -n "$i" ] && kill "$i" 2>/dev/null
	done
	for i in $GWS; do
		[ -n "${D_PID[$i]:-}" ] && kill -KILL "${D_PID[$i]}" 2>/dev/null
	done
	redis_stop >/dev/null 2>&1 # before the wait: it is a child too
	wait 2>/dev/null
	t_ns_cleanup
	for i in $GWS; do
		SLUICE_PIN_ROOT=$(pin_root "$i") "$SLUICE" unload >/dev/null 2>&1
		rm -rf "$(pin_root "$i")"
	done
	[ -n "${FLEET_KEEP:-}" ] && echo "kept $FLEET_TMP" >&2 || rm -rf "$FLEET_TMP"
}

pin_root() { echo "$FLEET_PIN_BASE-g$1"; }
ns() { echo "${T_PREFIX}g$1"; }
in_g() { local i=$1; shift; ip netns exec "$(ns "$i")" timeout 30 "$@"; }
sl_g() { local i=$1; shift; SLUICE_PIN_ROOT=$(pin_root "$i") nsenter --net="/run/netns/$(ns "$i")" timeout 30 "$SLUICE" "$@"; }

fleet_setup() {
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
	done
}

admitted() {
	in_g "$1" nft -j list chain netdev fleet_e2e rx |
		jq '[.nftables[].rule? | select(. != null) | .expr[] | .counter? |
		     select(. != null) | .packets] | add // 0'
}

fleet_conf() {
	local i=$1 r; shift
	{
		echo "interface ${T_PREFIX}g$i mode native"
		echo "metrics $([ "$i" = 1 ] && echo 127.0.0.1:9464 || echo off)"
		echo "store redis unix:$REDIS_SOCK instance gw$i timeout 200ms"
		if [ $# = 0 ]; then
			echo "rule add name api proto udp dport $PORT pps $G burst $B key rule global"
		fi
		for r in "$@"; do echo "$r"; done
	} >"$FLEET_TMP/g$i.conf"
}

d_start() {
	local i=$1; shift
	fleet_conf "$i" "$@"
	: >"$FLEET_TMP/g$i.log"
	SLUICE_PIN_ROOT=$(pin_root "$i") nsenter --net="/run/netns/$(ns "$i")" \
		"$SLUICED" -f -c "$FLEET_TMP/g$i.conf" 2>>"$FLEET_TMP/g$i.log" &
	D_PID[$i]=$!
	t_wait_log "$FLEET_TMP/g$i.log" 'store redis .*: up' "${D_PID[$i]}" && return 0
	echo "sluiced g$i did not come up with the store:" >&2
	sed 's/^/    /' "$FLEET_TMP/g$i.log" >&2
	return 1
}

flood() {
	local i=$1 pps=$2 secs=$3 src=${4:-198.18.$1.1} cfg
	cfg=$FLEET_TMP/tg$i-$src.cfg
	stop_flood "$i" "$src"
	{
		echo "{ eth(da=${MAC[$i]}), ipv4(sa=$src, da=198.18.$i.254, ttl=64),"
		echo "  udp(sp=40000, dp=$PORT), fill(0x41, 22) }"
	} >"$cfg"
	ip netns exec "$NS_S" timeout "$secs" trafgen --dev "${T_PREFIX}s$i" --conf "$cfg" \
		-t "$((1000000 / pps))us" -P 1 -C >/dev/null 2>&1 &
	TG_PID[$i-$src]=$!
}

stop_flood() {
	local k=$1-${2:-198.18.$1.1}
	[ -n "${TG_PID[$k]:-}" ] || return 0
	kill "${TG_PID[$k]}" 2>/dev/null
	wait "${TG_PID[$k]}" 2>/dev/null
	TG_PID[$k]=""
}

stop_floods() {
	local k
	for k in "${!TG_PID[@]}"; do
		[ -n "${TG_PID[$k]}" ] || continue
		kill "${TG_PID[$k]}" 2>/dev/null
		wait "${TG_PID[$k]}" 2>/dev/null
		TG_PID[$k]=""
	done
}
