#!/usr/bin/env bash
# tests/e2e/fleet_bans.sh - bans everywhere: a ban decided at one gateway
# drops the address at another gateway's XDP within a second.
#
# Topology (as tests/e2e/fleet.sh): a sender namespace with one veth pair to
# each of two gateway namespaces; each gateway runs its own sluiced (its own
# pin root, instance gw1 / gw2) with a `store` line; one redis-server on a
# unix socket serves both. Gateway 1 has a `ban` rule on UDP $PORT; gateway 2
# has no rule at all, so only a ban from the fleet can drop there. The
# attacker's address ($A1, later $A2) is the same on both links (trafgen
# writes the frames). What each gateway lets through XDP is counted by an nft
# counter on its ingress hook, independent of sluice's counters.
#
# Cases: the ban at gw1 is on gw2's deny list (by rule:strict, where gw1,
# about the same expiry) within a second, gw2's counter stops, a reload of gw2 keeps it; the ban
# expires on both and traffic passes gw2 again; with the store down a ban
# stays local, and reaches gw2 once the store is back (empty).
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib.sh"
. "$here/../lib/redis.sh"
GWS="1 2" PORT=9999 BAN=4
. "$here/../lib/fleet_net.sh"
TMP=$FLEET_TMP
trap fleet_cleanup EXIT
A1=198.51.100.7 A2=198.51.100.8
# gw1 bans; gw2 has no rule at all, so only a ban from the fleet drops there.
STRICT="rule add name strict proto udp dport $PORT pps 5 burst 10 key src ban $BAN"
NO_RULE="# no rule: only the fleet's bans drop here"

# entry I ADDR: ADDR/32's entry in gateway I's deny list (JSON), or "null".
entry() {
	sl_g "$1" deny list --json | jq -c --arg p "$2/32" '[.[] | select(.prefix == $p)][0]'
}

now_ms() { date +%s%3N; }

# wait_entry I ADDR SECS: until ADDR is on gateway I's deny list; prints the
# ms it took (or nothing when it did not come).
wait_entry() {
	local t0 end
	t0=$(now_ms)
	end=$((t0 + $3 * 1000))
	while [ "$(now_ms)" -lt "$end" ]; do
		if [ "$(entry "$1" "$2")" != null ]; then
			echo $(($(now_ms) - t0))
			return 0
		fi
		sleep 0.02
	done
	return 1
}

t_begin "fleet bans: two gateways and one Redis come up"
t_check "topology" fleet_setup
t_check "redis" redis_start "$TMP/redis"
t_check "sluiced g1 up with the store" d_start 1 "$STRICT"
t_check "sluiced g2 up with the store" d_start 2 "$NO_RULE"
t_end

t_begin "fleet bans: a ban at gw1 drops the address at gw2's XDP within a second"
flood 2 200 20 "$A1"   # the attacker at gw2: passes, no rule there
sleep 1
p0=$(admitted 2)
t_expect "gw2 passes the attacker before the ban ($p0 packets)" "$p0" -gt 100
t_expect "gw2 has no ban yet" "$(sl_g 2 deny list --json | jq length)" -eq 0
t0=$(now_ms)
flood 1 1000 2 "$A1"   # the flood at gw1: over burst 10 within ~10 ms, banned
ms1=$(wait_entry 1 "$A1" 2)
ms2=$(wait_entry 2 "$A1" 2)
t1=$(now_ms)
prop=$((t1 - t0))
echo "  banned at gw1 after ${ms1:-?} ms; on gw2's deny list ${prop} ms after gw1's flood began" >&2
t_check "gw1 banned $A1" test -n "$ms1"
t_check "gw2 applied the ban" test -n "$ms2"
t_expect "within a second of the flood (ms)" "$prop" -lt 1000
# each entry's expiry as a wall-clock instant: the read's time + expires_in_ms
# (the two reads are ~0.1 s apart)
ta=$(now_ms); e1=$(entry 1 "$A1"); tb=$(now_ms); e2=$(entry 2 "$A1"); tc=$(now_ms)
echo "  gw1: $e1" >&2
echo "  gw2: $e2" >&2
t_check "gw1: local, by rule:strict" jq -e >/dev/null '.kind == "ban" and .by == "rule:strict" and .where == "local"' <<<"$e1"
t_check "gw2: a fleet ban by rule:strict at gw1" jq -e >/dev/null '.kind == "ban" and .by == "rule:strict" and .where == "gw1" and .fleet == true' <<<"$e2"
d=$(( (ta + tb) / 2 + $(jq .expires_in_ms <<<"$e1") - (tb + tc) / 2 - $(jq .expires_in_ms <<<"$e2") ))
t_expect "about the same expiry (gw1 - gw2: $d ms)" "${d#-}" -le 300
sleep 0.2
q0=$(admitted 2)
sleep 1
q1=$(admitted 2)
echo "  gw2 passed $p0 before, $q0 at the ban, $q1 a second later" >&2
t_expect "gw2's XDP drops the attacker: nothing more passes" "$q1" -eq "$q0"
t_expect "gw2 counts those drops as ban" "$(sl_g 2 stats --json | jq .drops.ban)" -gt 100
t_check "gw2's text list shows by and where" sh -c "SLUICE_PIN_ROOT=$(pin_root 2) nsenter --net=/run/netns/$(ns 2) '$SLUICE' deny list | grep -qE '^$A1/32 +ban +[0-9]+s +rule:strict +gw1'"
t_check "gw2 logged it" grep -q "bans: from the fleet: $A1/32 .* by rule:strict at gw1" "$TMP/g2.log"
kill -HUP "${D_PID[2]}"
for n in $(seq 30); do grep -q 'reload: done' "$TMP/g2.log" && break; sleep 0.05; done
t_check "gw2 reloaded its file" grep -q 'reload: done' "$TMP/g2.log"
t_check "and kept the fleet ban" jq -e >/dev/null '.where == "gw1"' <<<"$(entry 2 "$A1")"
t_end

t_begin "fleet bans: the ban expires on both gateways"
stop_flood 1 "$A1"
sleep $((BAN - 1))
for n in $(seq 40); do
	[ "$(entry 1 "$A1")" = null ] && [ "$(entry 2 "$A1")" = null ] && break
	sleep 0.1
done
t_check "gone from gw1's list" test "$(entry 1 "$A1")" = null
t_check "gone from gw2's list" test "$(entry 2 "$A1")" = null
r0=$(admitted 2)
sleep 1
r1=$(admitted 2)
t_expect "gw2 passes the attacker again ($r0 -> $r1)" "$((r1 - r0))" -gt 100
t_check "the store forgot it" test "$(redis_cli ZCARD 'sluice:{bans}:exp')" = 0
stop_flood 2 "$A1"
t_end

t_begin "fleet bans: store down, the ban stays local; published when the store is back"
redis_stop
sleep 0.5
flood 1 1000 1 "$A2"
t_check "gw1 bans $A2 without the store" test -n "$(wait_entry 1 "$A2" 2)"
sleep 0.5
t_check "gw2 does not have it" test "$(entry 2 "$A2")" = null
t_check "redis back, empty" redis_start "$TMP/redis"
t0=$(now_ms)
ms=$(wait_entry 2 "$A2" 6)
echo "  $A2 on gw2's list ${ms:-never} ms after the store came back" >&2
t_check "gw2 applied it once the store was back" test -n "$ms"
t_check "as gw1's" jq -e >/dev/null '.by == "rule:strict" and .where == "gw1"' <<<"$(entry 2 "$A2")"
for k in exp seq from last; do
	t_expect "sluice:{bans}:$k has a TTL" "$(redis_cli PTTL "sluice:{bans}:$k")" -gt 0
done
t_end
