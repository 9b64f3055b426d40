#!/usr/bin/env bash
# tests/e2e/rate.sh - packet and byte rate limits, measured at a backend.
#
# Each case sends real frames through a veth pair into a namespace where
# sluice runs in native XDP mode, counts what got through with nft (per
# source, after XDP) and takes the span of arrivals from the receiver's
# clock (sink.py). A limited source must get rate * span + burst within 5%;
# a source under its limit must lose nothing.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib.sh"
. "$here/lib/net.sh"

A4=198.18.0.2 B4=198.18.0.3 C4=198.18.0.4 D4=198.18.0.5 X4=198.18.1.2
A6=2001:db8::2 B6=2001:db8::3 C6=2001:db8::4 X6=2001:db8:0:1::2
CFG=$E2E_TMP/tg.cfg
# Rules match only the test flows, never the namespaces' own chatter.
M="proto udp dport $PORT"

net_begin "e2e topology and attach" \
	"the backend veth runs sluice in native (driver) mode" \
	"ip -n '$NS_B' -d link show dev '$DEV_B' | grep -q 'prog/xdp .*name sluice_xdp'"

# per_source_case NAME OVER UNDER SRC: under a rule for source prefix SRC,
# OVER sends ~6x a 1000 pps per-source limit, UNDER ~2/3 of it, 9:1 round
# robin for ~5 s. The burst is half a second of the rate, so that a sender
# a busy machine stalls for a moment still saturates the bucket over the run,
# as rate * span + burst assumes (with ~2x and a 0.1 s burst, stalls cost up
# to 10% on a noisy host).
per_source_case() {
	local name=$1 over=$2 under=$3 id n_over n_under span drop
	t_begin "$name"
	net_attach
	# mask6 128: A6 and B6 share a /64, which the default mask6 would pool.
	id=$("$SLUICE" rule add name persrc src "$4" $M pps 1000 burst 500 key src mask6 128)
	t_check "rule add" [ -n "$id" ]
	tg_cfg "$CFG" "${over}x9" "$under"
	t_check "send 30000 frames" measure "$CFG" 30000 100
	n_over=$(nft_count "$over") n_under=$(nft_count "$under")
	span=$(sink_span "$over")
	expect_rate "over-limit source $over" "$n_over" 1000 "$span" 500
	t_expect "under-limit source $under loses nothing" "$n_under" -eq 3000
	t_expect "the receiver clock saw what nft counted" "$(sink_count "$over")" -eq "$n_over"
	drop=$(rule_stat "$id" dropped_pkts)
	t_expect "sluice's dropped_pkts = sent - arrived" "$drop" -eq $((27000 - n_over))
	t_end
}

per_source_case "IPv4 per-source pps limit" "$A4" "$B4" 198.18.0.0/16
per_source_case "IPv6 per-source pps limit" "$A6" "$B6" 2001:db8::/32
