#!/usr/bin/env bash
# tests/e2e/signals.sh - backend signals, measured passively by sluice (XDP
# ingress, TC egress) while a real HTTP/1.1 server answers real clients.
#
# tcpserver.py serves one behaviour per port: answers after 50 ms, answers
# 503, 404 or 302 at once, or resets the connection on the first request.
# The server and the client count requests, answers and resets themselves,
# and the client times each request to its first answer byte; 'sluice
# signals --json' must agree with them: the p50 response latency within 20%
# of the 50 ms the server waits, every status class and RST counted.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib.sh"
. "$here/lib/net.sh"

A4=198.18.0.2 B4=198.18.0.3 A6=2001:db8::2
SLOW=8081 E503=8082 RST=8083 E404=8084 E302=8085 CLOSED=8090

net_begin "e2e topology, attach (XDP and TC egress), server and client" \
	"TC egress program on the backend veth" \
	"tc -n '$NS_B' filter show dev '$DEV_B' egress | grep -q sluice_tc" \
	"start the server" \
	'srv_start "$SLOW,delay=50" "$E503,status=503" "$RST,rst" "$E404,status=404" "$E302,status=302"' \
	"start the client" cl_start

port_stat() { srv_get ".ports[\"$1\"].$2"; }
# sig PORT FILTER, with the port's name for messages
sig() { sluice_signal "$@"; }

# 20 connections from each of A4 and A6, 5 requests each (keep-alive), 4 at
# a time: 200 requests that each wait 50 ms at the server.
t_begin "response latency: a server that answers after 50 ms shows p50 within 20% of 50 ms (v4 and v6)"
r4=$(cl http "$A4" "$DST4" "$SLOW" 20 5 4)
r6=$(cl http "$A6" "$DST6" "$SLOW" 20 5 4)
echo "  client $A4: $r4" >&2
echo "  client $A6: $r6" >&2
sleep 0.3
t_expect "client: 200 answers" $(($(jf "$r4" responses) + $(jf "$r6" responses))) -eq 200
t_expect "server: 200 requests answered" "$(port_stat "$SLOW" responses)" -eq 200
t_check "client's own p50 ($(jf "$r4" p50_ms) ms) within 20% of 50 ms" within 20 "$(jf "$r4" p50_ms)" 50
p50=$(sig "$SLOW" .response.p50_ms)
echo "  sluice signals $SLOW: response $(sig "$SLOW" .response | jq -c .)" >&2
t_check "sluice's response p50 ($p50 ms) within 20% of 50 ms" within 20 "$p50" 50
t_expect "sluice: 200 response latencies" "$(sig "$SLOW" .response.count)" -eq 200
t_expect "sluice: 200 requests" "$(sig "$SLOW" .counters.requests)" -eq 200
t_expect "sluice: 200 responses" "$(sig "$SLOW" .counters.responses)" -eq 200
t_expect "sluice: 200 http_2xx" "$(sig "$SLOW" .counters.http_2xx)" -eq 200
t_expect "sluice: 40 connections" "$(sig "$SLOW" .counters.connections)" -eq 40
t_expect "sluice: 40 connect latencies" "$(sig "$SLOW" .connect.count)" -eq 40
t_check "sluice: connect p50 ($(sig "$SLOW" .connect.p50_ms) ms) under 50 ms (no delay on the handshake)" \
	awk -v p="$(sig "$SLOW" .connect.p50_ms)" 'BEGIN { exit !(p >= 0 && p < 50) }'
t_end

t_begin "HTTP status classes: 503, 404 and 302 counted as 5xx, 4xx, 3xx (v4 and v6)"
r=$(cl http "$B4" "$DST4" "$E503" 10 2 4)
r6=$(cl http "$A6" "$DST6" "$E503" 5 2 4)
t_expect "client: 30 answers 503" \
	$(($(jf "$r" 'status["503"] // 0') + $(jf "$r6" 'status["503"] // 0'))) -eq 30
r=$(cl http "$B4" "$DST4" "$E404" 10 1 4)
t_expect "client: 10 answers 404" "$(jf "$r" 'status["404"] // 0')" -eq 10
r=$(cl http "$B4" "$DST4" "$E302" 10 1 4)
t_expect "client: 10 answers 302" "$(jf "$r" 'status["302"] // 0')" -eq 10
sleep 0.3
t_expect "server: 30 answered on $E503" "$(port_stat "$E503" responses)" -eq 30
t_expect "sluice: 30 http_5xx on $E503" "$(sig "$E503" .counters.http_5xx)" -eq 30
t_expect "sluice: no http_2xx on $E503" "$(sig "$E503" .counters.http_2xx)" -eq 0
t_expect "sluice: 10 http_4xx on $E404" "$(sig "$E404" .counters.http_4xx)" -eq 10
t_expect "sluice: 10 http_3xx on $E302" "$(sig "$E302" .counters.http_3xx)" -eq 10
t_expect "sluice: no 5xx on the 50 ms port" "$(sig "$SLOW" .counters.http_5xx)" -eq 0
t_end

t_begin "server RSTs: a server that resets, and a port nobody listens on, counted as server_rst"
r=$(cl http "$A4" "$DST4" "$RST" 15 1 4)
r6=$(cl http "$A6" "$DST6" "$RST" 10 1 4)
echo "  client: $r $r6" >&2
t_expect "client: 25 requests reset" $(($(jf "$r" reset) + $(jf "$r6" reset))) -eq 25
sleep 0.3
t_expect "server: 25 resets sent" "$(port_stat "$RST" resets)" -eq 25
t_expect "sluice: 25 server_rst on $RST" "$(sig "$RST" .counters.server_rst)" -eq 25
t_expect "sluice: no responses on $RST" "$(sig "$RST" .counters.responses)" -eq 0
r=$(cl open "$A4" "$DST4" "$CLOSED" 10 1)
t_expect "client: 10 connects to closed port $CLOSED refused" "$(jf "$r" failed)" -eq 10
t_expect "sluice: 10 server_rst on $CLOSED" "$(sig "$CLOSED" .counters.server_rst)" -eq 10
t_expect "sluice: no server_rst on the 50 ms port" "$(sig "$SLOW" .counters.server_rst)" -eq 0
t_end

# UDP to a port nobody serves: the backend answers each datagram with an ICMP
# (v6) port unreachable, which the sender counts with nft as it arrives.
t_begin "ICMP unreachables sent back are counted for the port they quote (v4 and v6)"
t_check "no ICMP rate limit in the backend" in_b sysctl -qw net.ipv4.icmp_ratelimit=0 \
	net.ipv4.icmp_msgs_per_sec=100000 net.ipv4.icmp_msgs_burst=100000 net.ipv6.icmp.ratelimit=0
t_check "nft counters for unreachables at the sender" in_s nft -f - <<-EOF2
	table inet sluice_e2e_s {
		chain in {
			type filter hook input priority 0;
			icmp type destination-unreachable counter
			icmpv6 type destination-unreachable counter
		}
	}
	EOF2
tg_cfg "$E2E_TMP/tg.cfg" "${A4}x2" "$A6"
t_check "send 60 UDP datagrams to port $PORT (40 v4, 20 v6)" tg_send "$E2E_TMP/tg.cfg" 60 2000
sleep 0.3
got=$(in_s nft -j list chain inet sluice_e2e_s in | jq '[.nftables[].rule?.expr[1].counter.packets // empty] | add')
t_expect "the sender received 60 unreachables" "$got" -eq 60
t_expect "sluice: 60 icmp_unreach on port $PORT" "$(sig "$PORT" .counters.icmp_unreach)" -eq 60
t_end
