#!/usr/bin/env bash
# tests/e2e/cpus.sh - one source's bucket charged from both CPUs at once.
#
# Two send.py processes, pinned to CPU 0 and CPU 1, send from the same source
# address at the same time; the veth's transmit queue N maps to CPU N, so the
# backend's XDP program sees the source on both CPUs concurrently (checked
# with its per-CPU packet counter, and the rule's per-CPU passed counter).
# The bucket is one compare-and-swap word (bpf/gcra.h), so together they
# must get rate * span + burst within 5%, not that per CPU.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib.sh"
. "$here/lib/net.sh"

M="proto udp dport $PORT"
# Each sender: 4000 frames/s for 5 s; together 8x the 1000 pps limit.
PPS=4000 COUNT=20000 SECS=8

net_begin "e2e topology and attach" \
	"two CPUs to spread over" '[ "$(nproc)" -ge 2 ]'

# The rules' passed packets per CPU, summed over the rule slots: "CPU0 CPU1".
rule_passed_per_cpu() {
	bpftool -j map dump pinned "$SLUICE_PIN_ROOT/sluice_rstats" |
		jq -r '[.[].formatted.values[]] | group_by(.cpu) |
			map(map(.value.passed_pkts) | add) | @tsv'
}

# two_cpu_case NAME SRC
two_cpu_case() {
	local name=$1 src=$2 id before after p0 sent0 sent1 n span pass0 pass1
	t_begin "$name"
	net_attach
	id=$("$SLUICE" rule add name spread $M pps 1000 burst 500)
	t_check "rule add" [ -n "$id" ]
	before=$(xdp_packets_per_cpu)
	net_reset && sink_start || { t_fail "start the sink"; t_end; return; }
	cpu_send 0 "$PPS" "$COUNT" "$SECS" "$src" >"$E2E_TMP/sent0"
	p0=$!
	cpu_send 1 "$PPS" "$COUNT" "$SECS" "$src" >"$E2E_TMP/sent1"
	wait "$p0" "$!"
	t_check "stop the sink" sink_stop
	after=$(xdp_packets_per_cpu)
	sent0=$(cat "$E2E_TMP/sent0") sent1=$(cat "$E2E_TMP/sent1")
	echo "  sent: CPU 0 $sent0, CPU 1 $sent1; XDP saw per CPU: $before -> $after" >&2
	# Both ran for the whole ~5 s: they overlapped.
	t_expect "CPU 0's sender sent all in time" "${sent0:-0}" -eq "$COUNT"
	t_expect "CPU 1's sender sent all in time" "${sent1:-0}" -eq "$COUNT"
	set -- $before $after
	t_expect "XDP on CPU 0 saw CPU 0's frames" $(($3 - $1)) -ge "$COUNT"
	t_expect "XDP on CPU 1 saw CPU 1's frames" $(($4 - $2)) -ge "$COUNT"
	n=$(nft_count "$src") span=$(sink_span "$src")
	expect_rate "$src from both CPUs" "$n" 1000 "$span" 500
	# The buckets read the coarse clock (docs/design.md, "Clock"): its error
	# must stay well inside 2% of rate x span + burst across CPUs.
	t_check "$src from both CPUs within 2%" \
		within 2 "${n:-0}" "$(awk -v s="$span" 'BEGIN { printf "%d", 1000 * s + 500 }')"
	read -r pass0 pass1 <<<"$(rule_passed_per_cpu)"
	echo "  the rule passed per CPU: $pass0 + $pass1" >&2
	t_expect "the bucket admitted on CPU 0 too" "${pass0:-0}" -gt 1000
	t_expect "the bucket admitted on CPU 1 too" "${pass1:-0}" -gt 1000
	t_expect "sluice passed what arrived" $((pass0 + pass1)) -eq "$n"
	t_expect "no bucket update lost every CAS retry" "$(stats_get .bucket_contended)" -eq 0
	# The bucket's own counters are plain adds (docs/design.md, "Actions
	# and counters"): two CPUs at once may lose an increment, within 1%.
	rp=$(rule_stat "$id" passed_pkts) rd=$(rule_stat "$id" dropped_pkts)
	read -r bp bd <<<"$("$SLUICE" top --once --json --count 1000 |
		jq -r --argjson id "$id" '[.[] | select(.rule_id == $id)] |
			"\(map(.passed_pkts) | add // 0) \(map(.dropped_pkts) | add // 0)"')"
	echo "  the source's bucket counted $bp passed, $bd dropped; the rule $rp, $rd" >&2
	t_check "the bucket's passed within 1% of the rule's" within 1 "${bp:-0}" "${rp:-0}"
	t_check "the bucket's dropped within 1% of the rule's" within 1 "${bd:-0}" "${rd:-0}"
	t_end
}

two_cpu_case "IPv4 source on both CPUs at once shares one bucket" 198.18.0.2
two_cpu_case "IPv6 source on both CPUs at once shares one bucket" 2001:db8::2
