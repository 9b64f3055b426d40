#!/usr/bin/env bash
# bench/bench_fleet.sh - what fleet leases cost sluiced: its CPU per second
# with 64 global rules renewed through Redis every second, against the same
# 64 rules without a store, in one run (interleaved rounds, medians).
#
# One namespace with a veth pair (created and removed here), sluiced attached
# to it, a private redis-server on a unix socket. No traffic: the cost is the
# renewals (64 EVALSHA a second, their replies, 64 rule writes when a lease
# moves, the counter reads). CPU from /proc/PID/stat (utime + stime).
# Usage: bench/bench_fleet.sh [BUILD_DIR] [ROUNDS] [SECS]
set -uo pipefail
build=$(cd "${1:-build}" && pwd)
rounds=${2:-3} secs=${3:-10}
here=$(cd "$(dirname "$0")" && pwd)
export SLUICE=$build/sluice SLUICED=$build/sluiced T_PREFIX=slbf
export SLUICE_PIN_ROOT=/sys/fs/bpf/sluice-bench-fleet
. "$here/../tests/lib.sh"
. "$here/../tests/lib/redis.sh"
tmp=$(mktemp -d /tmp/slbf.XXXXXX)
pid=""
cleanup() {
	[ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null
	redis_stop >/dev/null 2>&1
	wait 2>/dev/null
	t_ns_cleanup
	rm -rf "$tmp" "$SLUICE_PIN_ROOT"
}
trap cleanup EXIT
[ "$(id -u)" = 0 ] || { echo "bench_fleet: needs root" >&2; exit 1; }
ip netns add ${T_PREFIX}n && ip link add ${T_PREFIX}a type veth peer name ${T_PREFIX}b &&
	ip link set dev ${T_PREFIX}b netns ${T_PREFIX}n && ip -n ${T_PREFIX}n link set dev ${T_PREFIX}b up ||
	{ echo "bench_fleet: could not make the namespace" >&2; exit 1; }
redis_start "$tmp/redis" || exit 1

conf() { # conf FILE with-store(0|1)
	{
		echo "interface ${T_PREFIX}b mode native"
		echo "metrics off"
		[ "$2" = 1 ] && echo "store redis unix:$REDIS_SOCK instance bench"
		for i in $(seq 0 63); do
			echo "rule add name g$i proto udp dport $((10000 + i)) pps 100k bps 1g key rule global"
		done
	} >"$1"
}
conf "$tmp/store.conf" 1
conf "$tmp/local.conf" 0

# cpu_ms CONF: sluiced's CPU milliseconds per second over $secs, after a
# 3 s warm-up (attach, the first leases).
cpu_ms() {
	local a b hz
	hz=$(getconf CLK_TCK)
	"$SLUICE" unload >/dev/null 2>&1
	nsenter --net=/run/netns/${T_PREFIX}n "$SLUICED" -f -c "$1" 2>"$tmp/d.log" &
	pid=$!
	sleep 3
	a=$(awk '{print $14 + $15}' /proc/$pid/stat)
	sleep "$secs"
	b=$(awk '{print $14 + $15}' /proc/$pid/stat)
	kill -TERM "$pid"; wait "$pid" 2>/dev/null; pid=""
	awk -v a="$a" -v b="$b" -v hz="$hz" -v s="$secs" 'BEGIN { printf "%.2f", (b - a) * 1000 / hz / s }'
}

median() { sort -n | awk '{v[NR] = $1} END { print v[int((NR + 1) / 2)] }'; }
: >"$tmp/store.ms"; : >"$tmp/local.ms"
for r in $(seq "$rounds"); do
	cpu_ms "$tmp/local.conf" >>"$tmp/local.ms"; echo >>"$tmp/local.ms"
	cpu_ms "$tmp/store.conf" >>"$tmp/store.ms"; echo >>"$tmp/store.ms"
	grep -q "store redis .*: up" "$tmp/d.log" || { echo "bench_fleet: the store never came up" >&2; cat "$tmp/d.log" >&2; exit 1; }
done
renewals=$(redis-cli -s "$REDIS_SOCK" info commandstats | tr -d '\r' | sed -n 's/^cmdstat_evalsha:calls=\([0-9]*\),.*/\1/p')
echo "sluiced CPU, 64 global rules, ${secs} s x $rounds rounds (median ms of CPU per second):"
printf '  %-34s %s\n' "without a store (local limits)" "$(median <"$tmp/local.ms") ms/s"
printf '  %-34s %s\n' "with the store (64 leases/s)" "$(median <"$tmp/store.ms") ms/s"
echo "  EVALSHA calls served by Redis in all: ${renewals:-?}"
