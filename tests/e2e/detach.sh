#!/usr/bin/env bash
# tests/e2e/detach.sh - detach leaves the policy pinned, unload leaves nothing.
#
# With a rate rule and a deny entry in force, `sluice detach DEV` must take
# the XDP program off the interface (traffic then arrives unlimited and
# undenied, counted with nft) while the pinned maps, and so the policy,
# survive: a new attach enforces them again. `sluice unload` must leave
# nothing under the pin root and no program on the link. IPv4 and IPv6
# traffic throughout.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib.sh"
. "$here/lib/net.sh"

A4=198.18.0.2 C4=198.18.0.4 A6=2001:db8::2 C6=2001:db8::4
CFG=$E2E_TMP/tg.cfg
M="proto udp dport $PORT"

net_begin "e2e topology and attach"

# ~2 s, ~1500 frames/s from each of 4 sources: A4 and A6 are 7x over the
# rule's 200 pps, C4 and C6 are denied.
tg_cfg "$CFG" "$A4" "$A6" "$C4" "$C6"
NUM=12000 EACH=3000
send() { t_check "send $EACH frames from each of 4 sources" measure "$CFG" "$NUM" 100; }

# enforced WHAT: A4 and A6 limited, C4 and C6 denied.
enforced() {
	expect_rate "$1: $A4 limited" "$(nft_count "$A4")" 200 "$(sink_span "$A4")" 100
	expect_rate "$1: $A6 limited" "$(nft_count "$A6")" 200 "$(sink_span "$A6")" 100
	t_expect "$1: denied $C4 gets nothing" "$(nft_count "$C4")" -eq 0
	t_expect "$1: denied $C6 gets nothing" "$(nft_count "$C6")" -eq 0
}

# unlimited WHAT: every frame of every source arrives.
unlimited() {
	local s
	for s in "$A4" "$A6" "$C4" "$C6"; do
		t_expect "$1: $s arrives unlimited" "$(nft_count "$s")" -eq "$EACH"
	done
}

# The id of the XDP program on $DEV_B, empty if none.
dev_prog_id() {
	ip -n "$NS_B" -j -d link show dev "$DEV_B" | jq -r '.[0].xdp.prog.id // empty'
}

# gone ID: the kernel has freed program ID (freeing is RCU-deferred: wait a
# moment for it).
gone() {
	local i
	for i in $(seq 40); do
		bpftool prog show id "$1" >/dev/null 2>&1 || return 0
		sleep 0.05
	done
	return 1
}

no_xdp() { ! xdp_on_dev; }
# sluice's TC egress filter, and the clsact qdisc it created, are gone too.
no_tc() { ! tc -n "$NS_B" qdisc show dev "$DEV_B" | grep -q clsact; }
tc_egress_on() { tc -n "$NS_B" filter show dev "$DEV_B" egress | grep -q sluice_tc_egres; }
quiet() { "$@" >/dev/null; }
listed_rules() { "$SLUICE" rule list --json | jq length; }
listed_deny() { "$SLUICE" deny list --json | jq length; }
attached() { sl_b status --json | jq '.attached | length'; }

t_begin "policy in force: a rate rule and a deny list, IPv4 and IPv6"
net_attach
id=$("$SLUICE" rule add name limit $M pps 200 burst 100)
t_check "rule add" [ -n "$id" ]
t_check "deny add $C4" "$SLUICE" deny add "$C4"
t_check "deny add $C6/128" "$SLUICE" deny add "$C6/128"
send
enforced "attached"
t_end

t_begin "detach: no XDP on the link, traffic unlimited, the policy stays pinned"
prog=$(dev_prog_id)
t_check "an XDP program on $DEV_B before (id ${prog:-none})" [ -n "$prog" ]
t_check "sluice's TC egress filter on $DEV_B before" tc_egress_on
t_check "sluice detach $DEV_B" quiet sl_b detach "$DEV_B"
t_check "ip -d link shows no prog/xdp on $DEV_B" no_xdp
t_check "no clsact qdisc (and so no TC filter) left on $DEV_B" no_tc
t_expect "status lists no attachment" "$(attached)" -eq 0
send
unlimited "detached"
t_expect "the rule is still listed" "$(listed_rules)" -eq 1
t_expect "the deny entries are still listed" "$(listed_deny)" -eq 2
t_check "the rules map is still pinned" [ -e "$SLUICE_PIN_ROOT/sluice_rules" ]
t_end

t_begin "attach again: the pinned policy is enforced again"
t_check "sluice attach $DEV_B" quiet sl_b attach "$DEV_B" --mode native
t_check "ip -d link shows sluice_xdp on $DEV_B" \
	sh -c "ip -n '$NS_B' -d link show dev '$DEV_B' | grep -q 'prog/xdp .*name sluice_xdp'"
t_expect "status lists one attachment" "$(attached)" -eq 1
send
enforced "re-attached"
t_expect "the same rule id counts it" "$(rule_stat "$id" passed_pkts)" -gt 0
t_end

t_begin "unload: nothing pinned, no XDP on the link, traffic unlimited"
prog=$(dev_prog_id)
t_check "sluice unload" quiet "$SLUICE" unload
t_check "no clsact qdisc left on $DEV_B after unload" no_tc
t_check "nothing under $SLUICE_PIN_ROOT" \
	sh -c "[ ! -e '$SLUICE_PIN_ROOT' ] || [ -z \"\$(ls -A '$SLUICE_PIN_ROOT')\" ]"
t_check "ip -d link shows no prog/xdp on $DEV_B" no_xdp
t_check "the kernel freed the program (id ${prog:-none})" gone "${prog:-0}"
send
unlimited "unloaded"
t_end
