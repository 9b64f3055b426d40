#!/usr/bin/env bash
# tests/e2e/lists.sh - deny and allow lists, timeouts, bans and dry-run rules,
# measured at a backend.
#
# Each case sends real frames into the backend namespace where sluice runs in
# native XDP mode and counts with nft (per source, after XDP) what got
# through: a denied or banned source must get nothing, every other source
# everything it sent; sluice's own counters are only a cross-check.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib.sh"
. "$here/lib/net.sh"

A4=198.18.0.2 B4=198.18.0.3 C4=198.18.0.4 X4=198.18.1.2
A6=2001:db8::2 B6=2001:db8::3 C6=2001:db8::4 X6=2001:db8:0:1::2
CFG=$E2E_TMP/tg.cfg
M="proto udp dport $PORT"

net_begin "e2e topology and attach"

now() { date +%s.%N; }
# elapsed T0: seconds since T0, as a float.
elapsed() { awk -v t="$1" -v n="$(now)" 'BEGIN { printf "%.2f", n - t }'; }
# less SECS LIMIT: SECS < LIMIT (floats)
less() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a < b) }'; }

# expect_counts N SRC...: each SRC got exactly N frames past XDP.
expect_counts() {
	local n=$1 s; shift
	for s; do t_expect "$s: arrived" "$(nft_count "$s")" -eq "$n"; done
}

# deny_entry PREFIX FIELD: a field of PREFIX's entry in 'deny list --json'
# ("none" if it is not listed).
deny_entry() {
	"$SLUICE" deny list --json |
		jq -r --arg p "$1" --arg f "$2" '(.[] | select(.prefix == $p) | .[$f] | tostring) // "none"'
}

t_begin "deny list: IPv4 and IPv6 prefixes get nothing through, others everything"
net_attach
t_check "deny add 198.18.0.2/31" "$SLUICE" deny add 198.18.0.2/31
t_check "deny add 2001:db8::/126" "$SLUICE" deny add 2001:db8::/126
t_expect "listed as static, no expiry" \
	"$(deny_entry 198.18.0.2/31 kind)/$(deny_entry 2001:db8::/126 expires_in)" = "static/null"
tg_cfg "$CFG" "$A4" "$B4" "$C4" "$X4" "$A6" "$B6" "$C6" "$X6"
t_check "send 500 frames from each of 8 sources" measure "$CFG" 4000 100
expect_counts 0 "$A4" "$B4" "$A6" "$B6"
expect_counts 500 "$C4" "$X4" "$C6" "$X6"
t_expect "sluice counted the deny drops" "$(stats_get .drops.deny)" -eq 2000
t_check "deny del 198.18.0.2/31" "$SLUICE" deny del 198.18.0.2/31
t_check "deny del 2001:db8::/126" "$SLUICE" deny del 2001:db8::/126
t_expect "the deny list is empty" "$("$SLUICE" deny list --json | jq length)" -eq 0
t_check "send again" measure "$CFG" 4000 100
expect_counts 500 "$A4" "$B4" "$C4" "$X4" "$A6" "$B6" "$C6" "$X6"
t_end

# The rule lets each source through at 100 pps; each sends ~1500 frames/s.
t_begin "allow list: allowed sources pass untouched under a rule that limits the rest"
net_attach
id=$("$SLUICE" rule add name strict $M pps 100 burst 50)
t_check "rule add" [ -n "$id" ]
t_check "allow add $A4" "$SLUICE" allow add "$A4"
t_check "allow add $A6 (a /128: $B6 in its /64 is not allowed)" "$SLUICE" allow add "$A6"
tg_cfg "$CFG" "$A4" "$B4" "$A6" "$B6"
t_check "send 3000 frames from each of 4 sources" measure "$CFG" 12000 100
expect_counts 3000 "$A4" "$A6"
expect_rate "limited $B4" "$(nft_count "$B4")" 100 "$(sink_span "$B4")" 50
expect_rate "limited $B6" "$(nft_count "$B6")" 100 "$(sink_span "$B6")" 50
t_expect "sluice counted the allowed packets" "$(stats_get .allowed)" -eq 6000
t_expect "the rule saw only the others" \
	$(($(rule_stat "$id" passed_pkts) + $(rule_stat "$id" dropped_pkts))) -eq 6000
t_end

# Only nft counts here (no spans): no receiver clock to start and stop, so
# the first send, timed from before the deny add, fits well inside the 2 s.
t_begin "deny with a timeout: dropped while it lasts, passed after"
net_attach
tg_cfg "$CFG" "$A4" "$C4" "$A6" "$C6"
t_check "zero the counters" net_reset
t0=$(now)
t_check "deny add $A4 timeout 2" "$SLUICE" deny add "$A4" timeout 2
t_check "deny add $A6 timeout 2" "$SLUICE" deny add "$A6" timeout 2
t_expect "listed with its expiry" "$(deny_entry "$A4/32" expires_in)" -le 2
t_check "send 250 frames from each of 4 sources" tg_send "$CFG" 1000 100
e=$(elapsed "$t0")
t_check "the first send ended before the timeout (${e}s)" less "$e" 1.8
sleep 0.2 # frames still in flight
expect_counts 0 "$A4" "$A6"
expect_counts 250 "$C4" "$C6"
sleep "$(awk -v e="$e" 'BEGIN { d = 2.5 - e; printf "%.2f", (d > 0 ? d : 0) }')"
t_check "send again after the timeout" measure "$CFG" 1000 100
expect_counts 250 "$A4" "$C4" "$A6" "$C6"
t_expect "the expired entries are not listed" "$("$SLUICE" deny list --json | jq length)" -eq 0
t_end

# A4 and A6 flood (~2700 frames/s each) a 500 pps rule that bans for 20 s a
# source dropped 50 times (its burst) within a second; B4 and X6 send
# ~170 frames/s, under the limit, 300 frames per send. With the default
# mask6 64 the ban covers A6's /64, so B6 (2001:db8::3) is banned with it; X6
# is in another /64. The case takes ~6 s (deny del ends the ban): the long
# ban only keeps a slow machine from passing off its expiry as the del.
t_begin "ban rule: a flooding source is banned, others are not, deny del lifts it"
net_attach
id=$("$SLUICE" rule add name flood $M pps 500 burst 50 ban 20)
t_check "rule add" [ -n "$id" ]
tg_cfg "$CFG" "${A4}x16" "${A6}x16" "$B4" "$X6" "$B6"
t0=$(now)
t_check "flood" measure "$CFG" 10500 100
expect_counts 300 "$B4" "$X6"
# Without the ban, the limit alone would pass each bucket ~rate * span +
# burst over the run (B4 arrives throughout it: its span is the run's). A ban
# cuts a bucket off once it has been dropped 50 times: normally after ~65
# packets, more if the sender starts slowly; never near the limit's share.
share=$(awk -v s="$(sink_span "$B4")" 'BEGIN { printf "%d", 500 * s + 50 }')
n4=$(nft_count "$A4") n6=$(($(nft_count "$A6") + $(nft_count "$B6")))
echo "  before the ban: $A4 $n4, $A6 + $B6 $n6 arrived (the limit alone: $share)" >&2
t_expect "$A4 was cut off: under half the limit's share" $((2 * n4)) -lt "$share"
t_expect "2001:db8::/64 was cut off: under half the limit's share" $((2 * n6)) -lt "$share"
t_expect "$A4/32 is on the deny list as a ban" "$(deny_entry "$A4/32" kind)" = ban
t_expect "by this rule" "$(deny_entry "$A4/32" rule_id)" -eq "$id"
t_expect "2001:db8::/64 is on the deny list as a ban" "$(deny_entry 2001:db8::/64 kind)" = ban
t_expect "sluice counted two bans" "$(stats_get .bans_issued)" -eq 2
t_check "flood again, during the ban" measure "$CFG" 10500 100
expect_counts 0 "$A4" "$A6" "$B6"
expect_counts 300 "$B4" "$X6"
t_expect "sluice counted ban drops (all of $A4, $A6, $B6 this time)" \
	"$(stats_get .drops.ban)" -ge $((2 * 4800 + 300))
t_check "deny del $A4/32" "$SLUICE" deny del "$A4/32"
t_check "deny del 2001:db8::/64" "$SLUICE" deny del 2001:db8::/64
# Now under the limit (~250 frames/s each): all of it arrives.
tg_cfg "$CFG" "$A4" "$A6" "$B4" "$X6"
t_check "send under the limit" measure "$CFG" 800 1000
expect_counts 200 "$A4" "$A6" "$B4" "$X6"
e=$(elapsed "$t0")
t_check "all within the 20 s ban (${e}s): deny del lifted it, not its expiry" less "$e" 19
t_expect "no new ban" "$("$SLUICE" deny list --json | jq length)" -eq 0
t_end

# A dry-run rule: each source sends ~3000 frames/s against 200 pps; all of it
# must arrive, and the source's bucket must show rate * span + burst passed,
# the rest "dropped".
t_begin "action count: everything arrives, the rule counts what it would drop"
net_attach
id=$("$SLUICE" rule add name trial $M pps 200 burst 100 action count)
t_check "rule add" [ -n "$id" ]
tg_cfg "$CFG" "$A4" "$A6"
t_check "send 6000 frames from each of 2 sources" measure "$CFG" 12000 100
expect_counts 6000 "$A4" "$A6"
"$SLUICE" top --once --json >"$E2E_TMP/top.json"
# Each source and its bucket, as 'top' names it.
for pair in "$A4 $A4/32" "$A6 2001:db8::/64"; do
	set -- $pair
	p=$(jq -r --arg s "$2" '.[] | select(.source == $s) | .passed_pkts' "$E2E_TMP/top.json")
	d=$(jq -r --arg s "$2" '.[] | select(.source == $s) | .dropped_pkts' "$E2E_TMP/top.json")
	expect_rate "would pass from $1 (bucket $2)" "$p" 200 "$(sink_span "$1")" 100
	t_expect "would drop from $1: the rest" "$d" -eq $((6000 - p))
done
t_expect "the rule's dropped_pkts: what both would lose" \
	"$(rule_stat "$id" dropped_pkts)" -eq $((12000 - $(rule_stat "$id" passed_pkts)))
t_expect "nothing counted as a rate drop" "$(stats_get .drops.rate)" -eq 0
t_end
