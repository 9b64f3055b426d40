#!/usr/bin/env bash
# tests/e2e/keys.sh - what a bucket is keyed on, and byte limits, measured at
# a backend.
#
# `key rule` pools every source into one bucket; `mask4`/`mask6` pool the
# sources of one prefix; a `bps` limit is measured in frame bytes arriving.
# Arrivals are counted with nft after XDP (per source), spans come from the
# receiver's clock (sink.py): a limited bucket must get rate * span + burst
# within 5%, its span taken over all the sources that share it.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib.sh"
. "$here/lib/net.sh"

A4=198.18.0.2 B4=198.18.0.3 X4=198.18.1.2
A6=2001:db8::2 B6=2001:db8::3 X6=2001:db8:0:1::2
CFG=$E2E_TMP/tg.cfg
# Rules match only the test flows, never the namespaces' own chatter.
M="proto udp dport $PORT"
# ~5 s of traffic at ~6000 frames/s (trafgen's overhead adds to the gap).
# Every limited bucket is offered 4x its rate or more, and its burst is
# ~0.5 s of it: a source that a busy machine stalls for a moment still
# saturates its bucket over the run, as rate * span + burst assumes.
NUM=30000 GAP=100

net_begin "e2e topology and attach"

sum() { local s=0 a; for a; do s=$((s + a)); done; echo "$s"; }

t_begin "key rule: IPv4 and IPv6 sources share one bucket"
net_attach
id=$("$SLUICE" rule add name pooled $M pps 500 burst 250 key rule)
t_check "rule add" [ -n "$id" ]
tg_cfg "$CFG" "$A4" "$B4" "$A6" "$B6"
t_check "send $NUM frames from 4 sources" measure "$CFG" "$NUM" "$GAP"
na=$(nft_count "$A4") nb=$(nft_count "$B4") nc=$(nft_count "$A6") nd=$(nft_count "$B6")
total=$(sum "$na" "$nb" "$nc" "$nd")
echo "  per source: $A4 $na, $B4 $nb, $A6 $nc, $B6 $nd" >&2
expect_rate "the four together" "$total" 500 "$(sink_span "$A4" "$B4" "$A6" "$B6")" 250
for n in "$na" "$nb" "$nc" "$nd"; do
	t_expect "every source gets a share (>= 10% of the pool)" $((n * 10)) -ge "$total"
done
t_expect "sluice's passed_pkts = what arrived" "$(rule_stat "$id" passed_pkts)" -eq "$total"
t_expect "one bucket in the state table" "$(stats_get .state.entries)" -eq 1
t_end

# mask_case NAME POOL1 POOL2 ALONE MASKARGS: POOL1 and POOL2 are in one
# prefix of the rule's mask, ALONE in another; each sends ~2000 frames/s
# against a 200 pps limit, so the pool is 20x over and ALONE 10x.
mask_case() {
	local name=$1 p1=$2 p2=$3 alone=$4 id n1 n2 nx; shift 4
	t_begin "$name"
	net_attach
	id=$("$SLUICE" rule add name masked $M pps 200 burst 100 "$@")
	t_check "rule add" [ -n "$id" ]
	tg_cfg "$CFG" "$p1" "$p2" "$alone"
	t_check "send $NUM frames from 3 sources" measure "$CFG" "$NUM" "$GAP"
	n1=$(nft_count "$p1") n2=$(nft_count "$p2") nx=$(nft_count "$alone")
	echo "  per source: $p1 $n1, $p2 $n2, $alone $nx" >&2
	expect_rate "pool $p1 + $p2" $((n1 + n2)) 200 "$(sink_span "$p1" "$p2")" 100
	expect_rate "$alone on its own" "$nx" 200 "$(sink_span "$alone")" 100
	t_expect "$p1 gets a share of the pool" $((n1 * 10)) -ge $((n1 + n2))
	t_expect "$p2 gets a share of the pool" $((n2 * 10)) -ge $((n1 + n2))
	t_expect "two buckets in the state table" "$(stats_get .state.entries)" -eq 2
	t_end
}

mask_case "mask4 24: 198.18.0.x pooled, 198.18.1.2 apart" "$A4" "$B4" "$X4" mask4 24
mask_case "default mask6 64: 2001:db8::2 and ::3 pooled, 2001:db8:0:1::2 apart" \
	"$A6" "$B6" "$X6"

# A byte limit with frames of two sizes, so that a limit counted in packets
# could not pass: each source offers ~3000 frames/s of 200 and 1200 bytes
# (~17 Mbit/s) against 2 Mbit/s with a 100000-byte burst.
t_begin "bps limit with bburst, IPv4 and IPv6, in frame bytes arriving"
net_attach
id=$("$SLUICE" rule add name bytes $M pps 100k bps 2m bburst 100000)
t_check "rule add" [ -n "$id" ]
{ tg_frame "$A4" 200; tg_frame "$A6" 200; tg_frame "$A4" 1200; tg_frame "$A6" 1200; } >"$CFG"
t_check "send $NUM frames" measure "$CFG" "$NUM" "$GAP"
ba=$(nft_bytes "$A4") b6=$(nft_bytes "$A6")
expect_rate "bytes from $A4" "$ba" 250000 "$(sink_span "$A4")" 100000
expect_rate "bytes from $A6" "$b6" 250000 "$(sink_span "$A6")" 100000
t_expect "sluice's passed_bytes = frame bytes that arrived" \
	"$(rule_stat "$id" passed_bytes)" -eq $((ba + b6))
t_expect "drops were for bytes" "$(stats_get .drops.bytes)" -gt 0
t_expect "no drops for packets" "$(stats_get .drops.rate)" -eq 0
t_end
