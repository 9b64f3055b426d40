#!/usr/bin/env bash
# tests/e2e/flows.sh - the flow table: counts never leak, whatever way
# connections end, and a full table follows its flows-full policy.
#
# As in conns.sh: a real TCP server behind sluice (XDP ingress, TC egress on
# the backend veth) counts what it accepted, the client what connected;
# 'ss' in the backend namespace says which connections really live.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib.sh"
. "$here/lib/net.sh"

A4=198.18.0.2 B4=198.18.0.3 A6=2001:db8::2
CFG=$E2E_TMP/tg.cfg
M="proto tcp dport $SP"

net_begin "e2e topology and attach (XDP and TC egress)"

# Thousands of short connections from three sources, each third ended a
# different way: an HTTP request and FINs both ways; a RST from the client
# (SO_LINGER 0); a SYN abandoned mid-handshake (the client's socket is gone
# before the SYN-ACK, which its kernel answers with a RST). Then 200 SYNs
# from spoofed sources that nothing ever answers. Two rules charge each
# connection: a per-source conns 12 (16 at once from one source: some are
# refused) and a rule-wide conns with a conn-rate (a SYN it drops gives back
# the per-source slot it had taken). Afterwards no connection lives, so every
# count must return to 0 and the flow table must empty within the syn
# timeout, with no flow left to the idle timeouts.
t_begin "no count leaks after 3600 short connections (FIN, RST, abandoned) and a spoofed SYN flood"
t_check "fresh policy, server, client" tcp_case_start "$SP"
t_check "sluice set syn-timeout 2 fin-timeout 3" "$SLUICE" set syn-timeout 2 fin-timeout 3
id1=$("$SLUICE" rule add name persrc $M conns 12 key src)
id2=$("$SLUICE" rule add name all $M conns 1000 conn-rate 400 conn-burst 50 key rule)
t_check "rule add (2 rules)" [ -n "$id1" -a -n "$id2" ]
ok=0 failed=0
for s in "$A4" "$A6" "$B4"; do
	r=$(cl churn "$s" "$(dst "$s")" "$SP" 1200 16 0.5)
	echo "  churn from $s: $r" >&2
	t_expect "churn from $s: every connection accounted for" \
		$(($(jf "$r" fin) + $(jf "$r" rst) + $(jf "$r" abandoned) + $(jf "$r" failed))) -eq 1200
	ok=$((ok + $(jf "$r" ok))) failed=$((failed + $(jf "$r" failed)))
done
: >"$CFG"
for i in $(seq 200); do tg_syn "198.18.3.$((i % 250 + 1))" $((30000 + i)) "$SP" >>"$CFG"; done
# ~300/s, under the rule-wide conn-rate: most of them become flows.
t_check "send 200 spoofed SYNs" tg_send "$CFG" 200 3000
t_expect "some connections got in" "$ok" -gt 1000
t_expect "some were refused (a check that can fail)" "$failed" -gt 0
# Within the 2 s syn timeout and a sweep, plus slack for a busy host.
left=-1 entries=-1
for _ in $(seq 16); do
	left=$(sl_conns_sum conns) entries=$(stats_get .flows.entries)
	[ "$left" = 0 ] && [ "$entries" = 0 ] && break
	sleep 0.5
done
t_expect "server: no connection open" "$(srv_get ".ports[\"$SP\"].open")" -eq 0
t_expect "backend: no TCP connection on port $SP" \
	"$(ip netns exec "$NS_B" ss -Htn state established "( sport = :$SP )" | wc -l)" -eq 0
t_expect "sluice conns: every count back to 0" "$left" -eq 0
t_expect "sluice: the flow table is empty" "$entries" -eq 0
"$SLUICE" stats --json | jq -c .flows >&2
t_expect "opened = closed + reset + expired" "$(stats_get .flows.opened)" -eq \
	"$(stats_get '.flows.closed + .flows.reset + .flows.expired_half_open + .flows.expired_idle')"
spoofed=$(srv_get '[.syn | to_entries[] | select(.key | startswith("198.18.3.")) | .value[0]] | add // 0')
t_expect "the backend saw spoofed SYNs (sniffer)" "$spoofed" -gt 100
t_expect "every spoofed SYN that got past XDP expired half-open" \
	"$(stats_get .flows.expired_half_open)" -ge "$spoofed"
t_expect "no flow was left for an idle or FIN timeout" "$(stats_get .flows.expired_idle)" -eq 0
t_end

# The smallest flow table (1024 entries) with no rules: every connection is
# tracked. 8 real connections and 1100 SYNs from spoofed sources that the
# backend answers into a blackhole (half-open, held for the 30 s syn timeout)
# fill it. Full, a SYN is refused (flows-full closed) or passed untracked
# (open); the connections in the table keep working either way. A short syn
# timeout then empties it, and closed admits again.
t_begin "flow table full (--flow-size 1024): closed refuses new connections, open passes them untracked"
cl_stop; srv_stop
"$SLUICE" unload >/dev/null 2>&1
t_check "attach --flow-size 1024" sl_b attach "$DEV_B" --mode native --flow-size 1024 >/dev/null
t_check "start the server" srv_start "$SP"
t_check "start the client" cl_start
t_check "sluice set flows-full closed syn-timeout 30" "$SLUICE" set flows-full closed syn-timeout 30
t_check "blackhole the spoofed sources' replies" ip -n "$NS_B" route add blackhole 198.19.0.0/16
open_expect "$A4" 8 8
: >"$CFG"
for i in $(seq 1100); do tg_syn "198.19.$((i / 250)).$((i % 250 + 1))" 40000 "$SP" >>"$CFG"; done
t_check "send 1100 spoofed SYNs" tg_send "$CFG" 1100 200
sleep 0.2
t_expect "sluice: the table is full" "$(stats_get .flows.entries)" -eq 1024
full=$(stats_get .flows.table_full)
t_expect "sluice: the SYNs past 1024 found it full" "$full" -eq $((1100 + 8 - 1024))
open_expect "$B4" 2 0
t_expect "sluice: 2 more table_full" "$(stats_get .flows.table_full)" -eq $((full + 2))
t_expect "sluice: flow_full drops: the spoofed ones and B4's 2" "$(stats_get .drops.flow_full)" -eq $((full + 2))
t_expect "the 8 tracked connections answer requests" "$(jf "$(cl ping "$A4")" ok)" -eq 8
t_check "sluice set flows-full open" "$SLUICE" set flows-full open
open_expect "$B4" 2 2
t_expect "sluice: still 1024 flows (B4's untracked)" "$(stats_get .flows.entries)" -eq 1024
t_expect "sluice: no more flow_full drops" "$(stats_get .drops.flow_full)" -eq $((full + 2))
t_check "sluice set flows-full closed syn-timeout 1" "$SLUICE" set flows-full closed syn-timeout 1
n=-1
for _ in $(seq 10); do # 1 s and a sweep, at most 5 s
	n=$(stats_get .flows.entries)
	[ "$n" = 8 ] && break
	sleep 0.5
done
t_expect "the half-open flows expired, the 8 established remain" "$n" -eq 8
open_expect "$B4" 2 2
t_expect "the 8 tracked connections still answer" "$(jf "$(cl ping "$A4")" ok)" -eq 8
t_end
