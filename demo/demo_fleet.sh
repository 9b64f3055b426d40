#!/usr/bin/env bash
# sluice demo, act 3: three gateways share one budget through Redis.
#
# Three gateways in namespaces, each with its own sluiced, one redis-server
# in a temporary directory, one global rule (UDP 9999, 3000 packets/s for
# the whole fleet). The flood moves from one gateway to another and the
# leases follow; Redis is stopped and the shares hold (each gateway keeps
# its lease, then enforces a third); it comes back. Everything it creates is
# removed on exit. Usage: demo/demo_fleet.sh [BUILD_DIR]   (as root)
set -uo pipefail
build=${1:-build}
build=$(cd "$build" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
export SLUICE=$build/sluice SLUICED=$build/sluiced
export T_PREFIX=sldf
FLEET_PIN_BASE=/sys/fs/bpf/sluice-demo-fleet
. "$here/../tests/lib.sh"
. "$here/../tests/lib/redis.sh"
. "$here/../tests/lib/fleet_net.sh"

if [ -t 1 ]; then Bo=$'\033[1m' N=$'\033[0m'; else Bo='' N=''; fi
say() { printf '\n%s%s%s\n' "$Bo" "$*" "$N"; }
fleet_cleanup >/dev/null 2>&1 # leftovers of an interrupted run
FLEET_TMP=$(mktemp -d /tmp/sldf.XXXXXX)
trap 'fleet_cleanup >/dev/null 2>&1' EXIT
trap 'exit 130' INT TERM
over=0 starved=0

lease() { sl_g "$1" rule list --json | jq -r '.[0].global | "\(.lease.pps) \(.source)"'; }

# table SECS LABEL: one line a second: each gateway's lease and what it
# passed in that second, the fleet's total against the limit.
table() {
	local n i t a0=() a1=() t0=() t1=() l src tot line
	for i in $GWS; do a0[$i]=$(admitted "$i"); t0[$i]=$(date +%s%N); done
	for n in $(seq "$1"); do
		sleep 1
		tot=0 line=""
		for i in $GWS; do
			a1[$i]=$(admitted "$i")
			t1[$i]=$(date +%s%N)
			read -r l src < <(lease "$i")
			# per second of this gateway's own interval (the reads take time)
			t=$(( (a1[i] - a0[i]) * 1000000000 / (t1[i] - t0[i]) ))
			a0[$i]=${a1[$i]} t0[$i]=${t1[$i]}
			tot=$((tot + t))
			[ "$t" = 0 ] && starved=1
			line+=$(printf '  g%s %5s %-10s %5d/s |' "$i" "$l" "$src" "$t")
		done
		# a one-second window read in three steps: allow for the read's skew
		[ "$tot" -gt $((G + B + G / 10)) ] && over=1
		printf '  %-9s|%s fleet %5d/s (limit %d)\n' "$2" "$line" "$tot" "$G"
	done
}

say "Act 3. Three gateways share one budget through Redis"
echo "  every gateway's sluiced.conf has:"
echo "    store redis unix:/tmp/.../redis.sock instance gwN"
echo "    rule add name api proto udp dport $PORT pps $G burst $B key rule global"
redis_start "$FLEET_TMP/redis" || exit 1
fleet_setup || exit 1
for i in $GWS; do d_start "$i" || exit 1; done
echo "  each gateway: lease (what it enforces now), where it comes from, what it passed"

say "The flood hits gateway 1 (4000/s); 2 and 3 get 300/s each"
flood 1 4000 60; flood 2 300 60; flood 3 300 60
table 5 "g1 busy"

say "The flood moves to gateway 2: its lease grows within two renewals"
flood 1 300 60; flood 2 4000 60
table 5 "moved"

say "Redis stops: each gateway keeps its lease for 3 s, then enforces a third of the limit"
redis_stop >/dev/null 2>&1
table 6 "no store"

say "Redis comes back (empty): leases again, without a burst"
rm -f "$FLEET_TMP/redis/redis.sock"
redis_start "$FLEET_TMP/redis" || exit 1
table 5 "back"
stop_floods

say "Summary of act 3"
if [ $over = 0 ] && [ $starved = 0 ]; then
	echo "  the fleet stayed within its limit every second, and no gateway was ever cut to zero"
else
	[ $over = 1 ] && echo "  FAILED: the fleet passed more than its limit in a second"
	[ $starved = 1 ] && echo "  FAILED: a gateway passed nothing in a second"
	exit 1
fi
