#!/usr/bin/env bash
# tests/e2e/conns.sh - connection limits (conns, conn-rate) and the timeouts
# that free their slots (half-open, idle), with a real TCP server and clients.
#
# tcpserver.py listens in the backend namespace behind sluice (XDP ingress,
# TC egress on the same veth); tcpclient.py connects from the sender's source
# addresses. What got through is counted by the server (connections accepted,
# per source) and by the client (connects that succeeded); a refused SYN is
# dropped at XDP, so its connect times out and the server never accepts it.
# sluice's own view ('sluice conns', 'sluice stats') is checked against those.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib.sh"
. "$here/lib/net.sh"

A4=198.18.0.2 B4=198.18.0.3 C4=198.18.0.4 X4=198.18.1.2
A6=2001:db8::2 X6=2001:db8:0:1::2
CFG=$E2E_TMP/tg.cfg
M="proto tcp dport $SP"

net_begin "e2e topology and attach (XDP and TC egress)" \
	"TC egress program on the backend veth" \
	"tc -n '$NS_B' filter show dev '$DEV_B' egress | grep -q sluice_tc"

t_begin "conns 3 per source: exactly 3 each (v4 and v6), a closed or reset one frees its slot"
t_check "fresh policy, server, client" tcp_case_start "$SP"
id=$("$SLUICE" rule add name persrc $M conns 3 key src)
t_check "rule add" [ -n "$id" ]
# A6 and X6 are in different /64s: separate keys under the default mask6 64.
for s in "$A4" "$B4" "$A6" "$X6"; do open_expect "$s" 4 3; done
t_expect "server: 12 connections open" "$(srv_get ".ports[\"$SP\"].open")" -eq 12
for k in "$A4/32" "$B4/32" 2001:db8::/64 2001:db8:0:1::/64; do
	t_expect "sluice conns $k: conns" "$(sl_conns "$k" conns)" -eq 3
	t_expect "sluice conns $k: refused" "$(sl_conns "$k" refused)" -eq 1
done
t_expect "closed 2 of $A4's (FIN)" "$(jf "$(cl close "$A4" 2)" closed)" -eq 2
open_expect "$A4" 3 2
t_expect "reset 1 of $A6's (RST from the client)" "$(jf "$(cl reset "$A6" 1)" reset)" -eq 1
open_expect "$A6" 2 1
t_expect "sluice conns $A4/32 after: conns" "$(sl_conns "$A4/32" conns)" -eq 3
t_expect "sluice conns 2001:db8::/64 after: conns" "$(sl_conns 2001:db8::/64 conns)" -eq 3
t_expect "sluice counted 6 conns drops (one per refused connect)" "$(stats_get .drops.conns)" -eq 6
for s in "$A4" "$B4" "$A6" "$X6"; do cl close "$s" 3 >/dev/null; done
t_check "server: every connection closed" srv_wait ".ports[\"$SP\"].open" 0
t_expect "sluice: every count back to 0" "$(sl_conns_sum conns)" -eq 0
t_end

t_begin "conns 4 per /24 (mask4 24): sources of one /24 share 4, another /24 has its own"
t_check "fresh policy, server, client" tcp_case_start "$SP"
id=$("$SLUICE" rule add name per24 $M conns 4 key src mask4 24)
t_check "rule add" [ -n "$id" ]
open_expect "$A4" 2 2
open_expect "$B4" 3 2
open_expect "$X4" 5 4
open_expect "$C4" 1 0
t_expect "sluice conns 198.18.0.0/24: conns" "$(sl_conns 198.18.0.0/24 conns)" -eq 4
t_expect "sluice conns 198.18.1.0/24: conns" "$(sl_conns 198.18.1.0/24 conns)" -eq 4
t_expect "closed 1 of $B4's" "$(jf "$(cl close "$B4" 1)" closed)" -eq 1
open_expect "$C4" 2 1
t_expect "server: 8 connections open" "$(srv_get ".ports[\"$SP\"].open")" -eq 8
t_end

t_begin "conns 5 per rule (key rule): v4 and v6 sources share 5"
t_check "fresh policy, server, client" tcp_case_start "$SP"
id=$("$SLUICE" rule add name whole $M conns 5 key rule)
t_check "rule add" [ -n "$id" ]
open_expect "$A4" 2 2
open_expect "$A6" 2 2
open_expect "$X4" 3 1
open_expect "$X6" 1 0
t_expect "sluice conns rule: conns" "$(sl_conns rule conns)" -eq 5
t_expect "reset 2 of $A4's" "$(jf "$(cl reset "$A4" 2)" reset)" -eq 2
open_expect "$X6" 3 2
t_expect "server: 5 connections open" "$(srv_get ".ports[\"$SP\"].open")" -eq 5
t_end

# An established connection that goes silent past the idle timeout stops
# counting (its slot is freed) but is never cut: it keeps working, untracked.
t_begin "idle timeout: silent connections free their conns slots and keep working"
t_check "fresh policy, server, client" tcp_case_start "$SP"
t_check "sluice set idle-timeout 2" "$SLUICE" set idle-timeout 2
id=$("$SLUICE" rule add name idle $M conns 3 key src)
t_check "rule add" [ -n "$id" ]
open_expect "$A4" 4 3
t_expect "the 3 held connections answer requests at the limit" "$(jf "$(cl ping "$A4")" ok)" -eq 3
n=-1
for _ in $(seq 12); do # idle 2 s and a sweep, at most 6 s
	n=$(sl_conns "$A4/32" conns)
	[ "$n" = 0 ] && break
	sleep 0.5
done
t_expect "sluice conns $A4/32: 0 once they sat idle" "$n" -eq 0
t_expect "sluice counted 3 idle expiries" "$(stats_get .flows.expired_idle)" -eq 3
t_expect "the expired connections still answer requests" "$(jf "$(cl ping "$A4")" ok)" -eq 3
open_expect "$A4" 4 3
t_expect "server: 6 connections open" "$(srv_get ".ports[\"$SP\"].open")" -eq 6
t_end

# conn-rate 100/s, burst 20, per source. 64 workers connect from one source
# for 5 s, each attempt given 0.2 s (so a dropped SYN is never retransmitted:
# one attempt, one SYN), which offers ~300 SYNs/s. The server's sniffer
# records the SYNs that got past XDP with the kernel's receive time: the span
# of the ones that passed. They must number 100 * span + 20 within 5%.
rate_case() {
	local src=$1 r n syn span drops
	t_begin "conn-rate 100/s burst 20 from $src: rate * span + burst within 5%"
	t_check "fresh policy, server, client" tcp_case_start "$SP"
	id=$("$SLUICE" rule add name cr $M conn-rate 100 conn-burst 20 key src)
	t_check "rule add" [ -n "$id" ]
	r=$(cl rate "$src" "$(dst "$src")" "$SP" 5 64 0.2)
	sleep 0.3
	n=$(accepted "$src")
	syn=$(srv_get ".syn[\"$src\"][0] // 0")
	span=$(srv_get ".syn[\"$src\"] | if . then .[2] - .[1] else -1 end")
	echo "  client: $r; server accepted $n, saw $syn SYNs over ${span}s" >&2
	t_expect "offered over twice the limit" "$(($(jf "$r" ok) + $(jf "$r" failed)))" -gt 1000
	expect_rate "accepted from $src" "$n" 100 "$span" 20
	t_expect "each passed SYN was accepted" "$syn" -eq "$n"
	t_expect "each accepted connect succeeded at the client" "$(jf "$r" ok)" -eq "$n"
	drops=$(stats_get .drops.conn_rate)
	t_check "sluice's conn_rate drops ($drops) = the client's failed attempts ($(jf "$r" failed)) +-2%" \
		within 2 "$drops" "$(jf "$r" failed)"
	t_end
}
rate_case "$A4"
rate_case "$A6"

# A SYN flood from 30 spoofed sources that never complete a handshake: the
# first 10 take the 10 slots of a rule-wide conns limit. The backend can
# answer half of those (a neighbour entry: the SYN-ACK leaves, nothing comes
# back, the flow sits in SYN_RECV); the other half it cannot (no neighbour:
# no SYN-ACK, the flow sits in SYN_SENT). A real client is refused until the
# syn timeout (2 s) expires them, then gets in, and finds all 10 slots free.
t_begin "SYN flood: half-open connections hold conns slots until the syn timeout, then free them"
t_check "fresh policy, server, client" tcp_case_start "$SP"
t_check "sluice set syn-timeout 2" "$SLUICE" set syn-timeout 2
id=$("$SLUICE" rule add name flood $M conns 10 key rule)
t_check "rule add" [ -n "$id" ]
: >"$CFG"
for i in $(seq 30); do
	tg_syn "198.18.2.$i" $((20000 + i)) "$SP" >>"$CFG"
	[ $((i % 2)) = 1 ] && ip -n "$NS_B" neigh add "198.18.2.$i" lladdr "$MAC_S" nud permanent dev "$DEV_B"
done
t0=$(date +%s.%N)
t_check "send 30 spoofed SYNs" tg_send "$CFG" 30 1000
sleep 0.3
t_expect "the backend saw 10 of them (sniffer)" \
	"$(srv_get '[.syn | to_entries[] | select(.key | startswith("198.18.2.")) | .value[0]] | add // 0')" -eq 10
t_expect "sluice conns rule: conns" "$(sl_conns rule conns)" -eq 10
t_expect "sluice conns rule: refused" "$(sl_conns rule refused)" -eq 20
r=$(cl open "$A4" "$DST4" "$SP" 1 1)
t_expect "a real client is refused meanwhile" "$(jf "$r" ok)" -eq 0
t_expect "the server accepted nothing" "$(srv_get ".ports[\"$SP\"].accepted")" -eq 0
# Try every 0.25 s for up to 6 s.
got=0
for _ in $(seq 24); do
	r=$(cl open "$A4" "$DST4" "$SP" 1 0.25)
	[ "$(jf "$r" ok)" = 1 ] && { got=1; break; }
done
e=$(awk -v t="$t0" -v n="$(date +%s.%N)" 'BEGIN { printf "%.2f", n - t }')
echo "  the real client got in ${e}s after the flood started" >&2
t_expect "the real client got in after the half-open ones expired" "$got" -eq 1
t_check "not before the 2 s syn timeout (${e}s)" awk -v e="$e" 'BEGIN { exit !(e >= 1.9) }'
t_check "within the timeout and a sweep or two (${e}s <= 4.5)" awk -v e="$e" 'BEGIN { exit !(e <= 4.5) }'
open_expect "$A4" 10 9
t_expect "sluice conns rule: conns" "$(sl_conns rule conns)" -eq 10
t_expect "sluice counted 10 half-open expiries" "$(stats_get .flows.expired_half_open)" -eq 10
t_expect "5 SYNs got no SYN-ACK (the unanswerable half)" \
	"$(sluice_signal "$SP" .counters.syn_timeout)" -eq 5
t_end
