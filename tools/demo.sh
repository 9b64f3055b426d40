#!/usr/bin/env bash
# sluice demo: a backend, a legitimate client and a flooding attacker in
# network namespaces; what the backend receives before and after sluice is
# attached with a per-source limit. Everything it creates is removed on exit.
# Usage: tools/demo.sh [BUILD_DIR]     (as root; `make demo` runs it)
set -euo pipefail

build=${1:-build}
SLUICE=$(cd "$build" && pwd)/sluice
# The demo keeps its own pin root, so it never touches a production policy.
export SLUICE_PIN_ROOT=/sys/fs/bpf/sluice-demo
NET=sldemo-net BE=sldemo-be
CLIENT=198.18.0.10 ATTACKER=198.18.0.66 BACKEND=198.18.0.1
PORT=9000 SECS=4
tmp=""

[ "$(id -u)" = 0 ] || { echo "demo: needs root (network namespaces and BPF)" >&2; exit 1; }
[ -x "$SLUICE" ] || { echo "demo: $SLUICE not built (run make)" >&2; exit 1; }

cleanup() {
	set +e
	for ns in $NET $BE; do
		ip netns pids "$ns" 2>/dev/null | xargs -r kill 2>/dev/null
		ip netns del "$ns" 2>/dev/null
	done
	"$SLUICE" unload >/dev/null 2>&1
	[ -z "$tmp" ] || rm -rf "$tmp"
}
cleanup # leftovers of an interrupted run
trap cleanup EXIT
tmp=$(mktemp -d)

if [ -t 1 ]; then B=$'\033[1m' N=$'\033[0m'; else B='' N=''; fi
say() { printf '\n%s%s%s\n' "$B" "$*" "$N"; }
sluice() { printf '  $ sluice %s\n' "$*"; "$SLUICE" "$@" 2>&1 | sed 's/^/    /'; }

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
say "Cleaning up: namespaces removed, sluice unloaded."
