# tests/e2e/lib/net.sh - topology, traffic and counting helpers for the e2e
# suites. Source it after tests/lib.sh. (In lib/ so tests/run.sh, which runs
# tests/e2e/*.sh, does not take it for a suite.)
#
# Topology: namespace $NS_S (sender) and $NS_B (backend), joined by one veth
# pair ($DEV_S -- $DEV_B) with two queues per side, so that what a CPU sends
# is received (and run through XDP) on that same CPU. sluice is attached in
# native mode to $DEV_B inside $NS_B. The backend counts what gets past XDP
# with nft counters on its ingress hook, one per source address, and a UDP
# sink (sink.py) records the kernel's receive time of each source's first and
# last datagram, so rate tests take the span of arrivals at the receiver.
#
#   net_begin TITLE ...       build it all and attach, or end the suite
#   net_setup                 build it all (call once, after the trap)
#   net_attach                fresh pin root and sluice attached to $DEV_B
#   net_reset                 zero the nft counters
#   nft_count SRC             packets from SRC that passed XDP
#   nft_bytes SRC             their bytes, whole Ethernet frames as XDP sees them
#   tg_frame SRC [BYTES]      one trafgen packet from SRC (frame size BYTES)
#   tg_send CFG NUM GAP_US    trafgen: NUM frames from CFG, round robin, paced
#   sink_start / sink_stop    receiver clock around a measurement
#   sink_span SRC...          seconds from the first to the last arrival of
#                             any of the SRCs
#   sink_count SRC            datagrams from SRC the sink received
#   within PCT ACTUAL EXPECTED   |ACTUAL - EXPECTED| <= PCT% of EXPECTED
#   expect_rate NAME ACTUAL RATE SPAN BURST   a case check: ACTUAL within 5% of
#                             RATE*SPAN+BURST
#   measure CFG NUM GAP_US    zero the counters, send with the sink running
#   tg_cfg FILE SRC[xN]...    a trafgen config, N frames from each SRC in turn
#   rule_stat ID FIELD        a rule's counter from 'sluice stats --json'
#   stats_get FILTER          a value from 'sluice stats --json' (jq filter)
#   sl_b ARGS...              sluice run in $NS_B's network namespace (attach,
#                             detach and status name $DEV_B from there)
#   xdp_on_dev                true while $DEV_B has any XDP program
#   xdp_packets_per_cpu       the program's per-CPU packets-seen counter
#   cpu_send CPU PPS COUNT SECS SRC   send.py: COUNT frames from SRC at PPS on
#                             CPU (in the background: collect with wait)
E2E_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
NS_S=${T_PREFIX}s NS_B=${T_PREFIX}b
DEV_S=${T_PREFIX}s0 DEV_B=${T_PREFIX}b0
DST4=198.18.0.254 DST6=2001:db8::fe
PORT=9999
# Source addresses the sender owns. The 198.18.1.0/24 and 2001:db8:0:1::/64
# ones are in another /24 (/64) than the rest, for the mask tests.
SRCS4="198.18.0.2 198.18.0.3 198.18.0.4 198.18.0.5 198.18.0.6 198.18.1.2"
SRCS6="2001:db8::2 2001:db8::3 2001:db8::4 2001:db8::5 2001:db8:0:1::2"
E2E_TMP=$(mktemp -d "/tmp/$T_PREFIX.XXXXXX")
MAC_S="" MAC_B="" _sink_pid=""

net_cleanup() {
	[ -n "$_sink_pid" ] && kill "$_sink_pid" 2>/dev/null
	[ -n "$_srv_pid" ] && kill "$_srv_pid" 2>/dev/null
	[ -n "$_cl_pid" ] && kill "$_cl_pid" 2>/dev/null
	t_ns_cleanup
	# Even a broken 'sluice unload' must not leave this suite's own pins.
	case $SLUICE_PIN_ROOT in */sluice-test-"$T_PREFIX") rm -rf "$SLUICE_PIN_ROOT" ;; esac
	rm -rf "$E2E_TMP"
}

# The start every single-gateway suite shares: the namespaces and the veth
# pair, sluice attached in native mode, all removed when the suite exits.
# More setup steps follow as pairs of NAME and COMMAND (run with eval, so a
# shell function or a pipe will do). A failed step ends the suite: nothing
# after it could mean anything.
#   net_begin TITLE [NAME COMMAND]...
net_begin() {
	local title=$1 ok=1
	shift
	trap net_cleanup EXIT
	t_begin "$title"
	t_check "build the namespaces and veth" net_setup || ok=0
	t_check "attach sluice in native mode" net_attach || ok=0
	while [ $# -ge 2 ]; do
		t_check "$1" eval "$2" || ok=0
		shift 2
	done
	t_end
	[ "$ok" = 1 ] || exit 1
}

# Every command is bounded in time: a wedged tool fails its case, not the run.
in_s() { ip netns exec "$NS_S" timeout 30 "$@"; }
in_b() { ip netns exec "$NS_B" timeout 30 "$@"; }

net_setup() {
	local a
	ip netns add "$NS_S" && ip netns add "$NS_B" || return 1
	ip link add "$DEV_S" numtxqueues 2 numrxqueues 2 type veth \
		peer name "$DEV_B" numtxqueues 2 numrxqueues 2 || return 1
	ip link set dev "$DEV_S" netns "$NS_S" && ip link set dev "$DEV_B" netns "$NS_B" || return 1
	ip -n "$NS_S" link set dev lo up && ip -n "$NS_B" link set dev lo up || return 1
	# No router solicitations, DAD or MLD chatter from the sender.
	in_s sysctl -qw net.ipv6.conf.all.accept_ra=0 net.ipv6.conf.default.accept_ra=0
	ip -n "$NS_S" link set dev "$DEV_S" up && ip -n "$NS_B" link set dev "$DEV_B" up || return 1
	MAC_S=$(ip -n "$NS_S" -j link show dev "$DEV_S" | jq -r '.[0].address')
	MAC_B=$(ip -n "$NS_B" -j link show dev "$DEV_B" | jq -r '.[0].address')

	ip -n "$NS_B" addr add "$DST4/24" dev "$DEV_B" || return 1
	ip -n "$NS_B" addr add "$DST6/64" dev "$DEV_B" nodad || return 1
	ip -n "$NS_B" route add 198.18.0.0/15 dev "$DEV_B" || return 1
	ip -n "$NS_B" route add 2001:db8::/32 dev "$DEV_B" || return 1
	ip -n "$NS_S" addr add 198.18.0.1/24 dev "$DEV_S" || return 1
	for a in $SRCS4; do
		ip -n "$NS_S" addr add "$a/24" dev "$DEV_S" || return 1
		ip -n "$NS_B" neigh add "$a" lladdr "$MAC_S" nud permanent dev "$DEV_B" || return 1
	done
	for a in $SRCS6; do
		ip -n "$NS_S" addr add "$a/64" dev "$DEV_S" nodad || return 1
		ip -n "$NS_B" neigh add "$a" lladdr "$MAC_S" nud permanent dev "$DEV_B" || return 1
	done
	ip -n "$NS_S" neigh add "$DST4" lladdr "$MAC_B" nud permanent dev "$DEV_S" || return 1
	ip -n "$NS_S" neigh add "$DST6" lladdr "$MAC_B" nud permanent dev "$DEV_S" || return 1
	ip -n "$NS_S" route add 198.18.0.0/15 dev "$DEV_S" || return 1
	# The backend has no route back to every source it sees: accept anyway.
	in_b sysctl -qw net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0 \
		"net.ipv4.conf.$DEV_B.rp_filter=0" || return 1
	# Transmit queue N on CPU N: the veth peer then receives on that CPU.
	in_s sh -c "echo 1 > /sys/class/net/$DEV_S/queues/tx-0/xps_cpus &&
		    echo 2 > /sys/class/net/$DEV_S/queues/tx-1/xps_cpus" || return 1
	nft_setup
}

# One counter per source address on the backend's ingress hook, which runs
# after XDP: it sees exactly what sluice passed, and nothing that it dropped.
# The counters are anonymous (per rule), which 'nft reset counters' does not
# touch and nft 1.0.6 cannot reset otherwise: net_reset replaces the table,
# in one transaction.
nft_setup() {
	local a rules=""
	for a in $SRCS4; do rules="$rules
		ip saddr $a counter"; done
	for a in $SRCS6; do rules="$rules
		ip6 saddr $a counter"; done
	in_b nft -f - <<-EOF
	table netdev sluice_e2e
	delete table netdev sluice_e2e
	table netdev sluice_e2e {
		chain rx {
			type filter hook ingress device "$DEV_B" priority 0;
			$rules
		}
	}
	EOF
}

net_reset() { nft_setup; }

nft_count() {
	in_b nft -j list chain netdev sluice_e2e rx |
		jq --arg a "$1" '[.nftables[].rule? | select(. != null) |
			select(.expr[0].match.right == $a) | .expr[1].counter.packets] | add // -1'
}

# Bytes as nft counts them at ingress (from the network header), plus the
# Ethernet header: the frame length that sluice's byte buckets charge.
nft_bytes() {
	in_b nft -j list chain netdev sluice_e2e rx |
		jq --arg a "$1" '[.nftables[].rule? | select(. != null) |
			select(.expr[0].match.right == $a) | .expr[1].counter |
			.bytes + 14 * .packets] | add // -1'
}

# A fresh policy: unload whatever the previous case left, attach anew.
net_attach() {
	"$SLUICE" unload >/dev/null 2>&1
	nsenter --net="/run/netns/$NS_B" timeout 30 "$SLUICE" attach "$DEV_B" --mode native >/dev/null
}

sl_b() { nsenter --net="/run/netns/$NS_B" timeout 30 "$SLUICE" "$@"; }

xdp_on_dev() { ip -n "$NS_B" -d link show dev "$DEV_B" | grep -q 'prog/xdp'; }

# The XDP program's per-CPU "packets seen" counter (index 5,
# SLUICE_CNT_PACKETS): "CPU0 CPU1 ...", tab-separated.
xdp_packets_per_cpu() {
	bpftool -j map lookup pinned "$SLUICE_PIN_ROOT/sluice_counters" key 5 0 0 0 |
		jq -r '[.formatted.values[] | .value] | @tsv'
}

# tg_frame SRC [BYTES]: a UDP frame from SRC to the backend's sink port.
tg_frame() {
	local src=$1 size=${2:-64} ip hdr
	case $src in
	*:*) ip="ipv6(sa=$src, da=$DST6, hoplimit=64)"; hdr=62 ;;
	*) ip="ipv4(sa=$src, da=$DST4, ttl=64)"; hdr=42 ;;
	esac
	echo "{ eth(da=$MAC_B, sa=$MAC_S), $ip, udp(sp=40000, dp=$PORT), fill(0x41, $((size - hdr))) }"
}

# tg_send CFG NUM GAP_US: NUM frames, round robin over CFG's packets, one
# every GAP_US (plus trafgen's own overhead; the receiver measures the span).
# Bounded at ~1 ms a frame: each paced frame is a wakeup, which a host with
# much CPU steal delays by a millisecond or more, and a send cut short fails
# every count after it.
tg_send() {
	local cfg=$1 num=$2 gap=$3 limit
	limit=$((num * (gap + 1000) / 1000000 + 10))
	ip netns exec "$NS_S" timeout "$limit" trafgen --dev "$DEV_S" --conf "$cfg" \
		--num "$num" -t "${gap}us" -P 1 -C >"$E2E_TMP/trafgen.log" 2>&1 || {
		tr '\r' '\n' <"$E2E_TMP/trafgen.log" | grep -v '^$' | tail -3 >&2
		return 1
	}
}

sink_start() {
	local i
	rm -f "$E2E_TMP/sink.json" "$E2E_TMP/sink.ready"
	ip netns exec "$NS_B" timeout 120 "$PY" "$E2E_DIR/sink.py" "$PORT" \
		"$E2E_TMP/sink.json" "$E2E_TMP/sink.ready" 100 &
	_sink_pid=$!
	for i in $(seq 100); do
		[ -e "$E2E_TMP/sink.ready" ] && return 0
		sleep 0.05
	done
	echo "sink did not start" >&2
	return 1
}

sink_stop() {
	sleep 0.2 # frames still in flight
	[ -n "$_sink_pid" ] && kill -TERM "$_sink_pid" 2>/dev/null
	wait "$_sink_pid" 2>/dev/null
	_sink_pid=""
	[ -s "$E2E_TMP/sink.json" ]
}

# sink_span SRC...: seconds between the first and the last arrival from any
# of the SRCs (one shared bucket sees them as one stream).
sink_span() {
	jq -r --args '[to_entries[] | select(.key | IN($ARGS.positional[]))] |
		if length == 0 then -1 else
		(map(.value[2]) | max) - (map(.value[1]) | min) end' "$@" <"$E2E_TMP/sink.json"
}

sink_count() {
	jq -r --arg a "$1" '.[$a][0] // 0' <"$E2E_TMP/sink.json"
}

# within PCT ACTUAL EXPECTED
within() {
	awk -v p="$1" -v a="$2" -v e="$3" 'BEGIN {
		d = a - e; if (d < 0) d = -d
		exit !(e > 0 && d <= e * p / 100) }'
}

# expect_rate NAME ACTUAL RATE SPAN BURST: ACTUAL within 5% of RATE*SPAN+BURST.
expect_rate() {
	local name=$1 actual=$2 rate=$3 span=$4 burst=$5 exp
	exp=$(awk -v r="$rate" -v s="$span" -v b="$burst" 'BEGIN { printf "%d", r * s + b }')
	echo "  $name: passed $actual, expected $exp (rate $rate/s x span ${span}s + burst $burst)" >&2
	t_check "$name: passed $actual, expected $exp +-5% (rate $rate x ${span}s + $burst)" \
		within 5 "$actual" "$exp"
}

# measure CFG NUM GAP_US: zero the counters, send with the sink running.
measure() {
	net_reset && sink_start || return 1
	tg_send "$@" || { sink_stop; return 1; }
	sink_stop
}

# tg_cfg FILE SRC[xN]...: a trafgen config with N frames (default 1) from
# each SRC in turn, e.g. "198.18.0.2x3 198.18.0.3" sends 3:1.
tg_cfg() {
	local f=$1 s n; shift
	: >"$f"
	for s in "$@"; do
		n=1
		case $s in *x*) n=${s##*x}; s=${s%x*} ;; esac
		for _ in $(seq "$n"); do tg_frame "$s" "${TG_SIZE:-64}" >>"$f"; done
	done
}

# cpu_send CPU PPS COUNT MAX_SECONDS SRC: send.py in the sender namespace, in
# the background; prints the number of frames sent when it ends.
cpu_send() {
	ip netns exec "$NS_S" timeout $(($4 + 10)) "$PY" "$E2E_DIR/send.py" "$DEV_S" "$1" "$2" "$3" "$4" \
		"$MAC_S" "$MAC_B" "$5" "$(case $5 in *:*) echo "$DST6" ;; *) echo "$DST4" ;; esac)" "$PORT" &
}

# rule_stat ID FIELD: a rule's counter from 'sluice stats --json'.
rule_stat() {
	"$SLUICE" stats --json | jq -r --argjson id "$1" --arg f "$2" \
		'.rules[] | select(.id == $id) | .[$f]'
}

# stats_get FILTER: e.g. stats_get .drops.deny
stats_get() { "$SLUICE" stats --json | jq -r "$1"; }

# ------------------------------------------------------------------------
# TCP: a real server in $NS_B and clients in $NS_S (tcpserver.py and
# tcpclient.py describe themselves). The server's accept counts and the
# client's success counts are the suites' independent counters.
#
#   srv_start [--sniff] SPEC...  the server on PORT[,delay=MS][,status=N][,rst]
#                             (--sniff: also record SYNs past XDP on $DEV_B)
#   srv_stop                  stop it (net_cleanup does too)
#   srv_get FILTER            a value from its stats (jq filter), e.g.
#                             srv_get '.ports["8080"].accepted'
#   srv_wait FILTER VALUE [SECS]  until srv_get FILTER = VALUE (default 5 s)
#   cl_start / cl_stop        the client, driven through two FIFOs
#   cl CMD ARGS...            one client command; prints its JSON answer
#   tg_syn SRC SPORT DPORT    a trafgen TCP SYN frame from SRC to the backend
#   sluice_signal PORT FILTER a value of PORT's 'sluice signals --json' entry
# Connection-limit cases, on the service port $SP:
#   tcp_case_start SPEC...    a fresh policy, server (with --sniff) and client
#   open_expect SRC N OK      N connects from SRC at once, OK of them succeed
#                             (client and server agree), the rest time out
#   accepted SRC              connections the server accepted from SRC
#   sl_conns KEY FIELD        KEY's FIELD in 'sluice conns --json'
#   sl_conns_sum FIELD        FIELD summed over every key
#   dst SRC / jf JSON FIELD   the backend address of SRC's family / a field
SP=8080
_srv_pid="" _cl_pid="" _cl_w="" _cl_r=""

srv_start() {
	local i sniff=""
	[ "$1" = --sniff ] && { sniff="--sniff $DEV_B"; shift; }
	rm -f "$E2E_TMP/srv.json" "$E2E_TMP/srv.ready"
	# shellcheck disable=SC2086
	ip netns exec "$NS_B" timeout 300 "$PY" "$E2E_DIR/tcpserver.py" "$E2E_TMP/srv.json" \
		"$E2E_TMP/srv.ready" 290 $sniff "$@" &
	_srv_pid=$!
	for i in $(seq 100); do
		[ -e "$E2E_TMP/srv.ready" ] && return 0
		sleep 0.05
	done
	echo "tcpserver did not start" >&2
	return 1
}

srv_stop() {
	[ -n "$_srv_pid" ] || return 0
	kill -TERM "$_srv_pid" 2>/dev/null
	wait "$_srv_pid" 2>/dev/null
	_srv_pid=""
}

srv_get() { jq -r "$1" "$E2E_TMP/srv.json"; }

srv_wait() {
	local i
	for i in $(seq $((${3:-5} * 10))); do
		[ "$(srv_get "$1")" = "$2" ] && return 0
		sleep 0.1
	done
	return 1
}

cl_start() {
	rm -f "$E2E_TMP/cl.in" "$E2E_TMP/cl.out"
	mkfifo "$E2E_TMP/cl.in" "$E2E_TMP/cl.out" || return 1
	ip netns exec "$NS_S" timeout 300 "$PY" "$E2E_DIR/tcpclient.py" \
		<"$E2E_TMP/cl.in" >"$E2E_TMP/cl.out" &
	_cl_pid=$!
	exec {_cl_w}>"$E2E_TMP/cl.in" {_cl_r}<"$E2E_TMP/cl.out"
}

cl_stop() {
	[ -n "$_cl_pid" ] || return 0
	echo quit >&"$_cl_w" 2>/dev/null
	exec {_cl_w}>&- {_cl_r}<&-
	wait "$_cl_pid" 2>/dev/null
	_cl_pid=""
}

# cl CMD ARGS...: the answer, or "{}" (and failure) if none came in 60 s.
cl() {
	local reply
	echo "$*" >&"$_cl_w"
	if ! read -r -t 60 reply <&"$_cl_r"; then
		echo "tcpclient: no answer to '$*'" >&2
		echo "{}"
		return 1
	fi
	echo "$reply"
}

tg_syn() {
	local src=$1 sp=$2 dp=$3 ip
	case $src in
	*:*) ip="ipv6(sa=$src, da=$DST6, hoplimit=64)" ;;
	*) ip="ipv4(sa=$src, da=$DST4, ttl=64)" ;;
	esac
	echo "{ eth(da=$MAC_B, sa=$MAC_S), $ip, tcp(sp=$sp, dp=$dp, seq=$((0x10000 + sp)), syn, win=64240) }"
}

# sluice_signal PORT FILTER: a value of PORT's entry in 'sluice signals
# --json' (jq FILTER, e.g. .counters.http_5xx or .response.p50_ms); "none"
# if the port is not listed.
sluice_signal() {
	"$SLUICE" signals --json --interval 100 |
		jq -r --argjson p "$1" "(.services[] | select(.port == \$p) | $2) // \"none\""
}

dst() { case $1 in *:*) echo "$DST6" ;; *) echo "$DST4" ;; esac; }
# jf JSON FIELD: a field of a client answer.
jf() { jq -r ".$2" <<<"$1"; }
accepted() { srv_get ".ports[\"$SP\"].by_src[\"$1\"] // 0"; }

# open_expect SRC N OK: N connects from SRC at once; OK of them succeed, the
# rest time out, and the server accepted exactly those. 0.8 s each: well
# before the SYN's first retransmission (1 s), so a refused connect is one
# dropped SYN.
open_expect() {
	local src=$1 n=$2 ok=$3 before r
	sleep 0.3 # the baseline too: an accept just before this call lags as well
	before=$(accepted "$src")
	r=$(cl open "$src" "$(dst "$src")" "$SP" "$n" 0.8)
	t_expect "$src: $n connects, succeeded" "$(jf "$r" ok)" -eq "$ok"
	t_expect "$src: $n connects, timed out" "$(jf "$r" failed)" -eq $((n - ok))
	sleep 0.3 # the server's stats file lags by 0.1 s
	t_expect "$src: the server accepted" "$(accepted "$src")" -eq $((before + ok))
}

# sl_conns KEY FIELD: a field of KEY's entry in 'sluice conns --json' (KEY as
# it prints it: "198.18.0.0/24", "rule"), 0 if the key is not listed.
sl_conns() {
	"$SLUICE" conns --json --interval 100 --count 1000 |
		jq -r --arg k "$1" --arg f "$2" '[.keys[] | select(.key == $k) | .[$f]] | add // 0'
}

# sl_conns_sum FIELD: FIELD summed over every listed key.
sl_conns_sum() {
	"$SLUICE" conns --json --interval 100 --count 1000 | jq -r --arg f "$1" '[.keys[] | .[$f]] | add // 0'
}

# tcp_case_start SPEC...: a fresh policy, server and client.
tcp_case_start() {
	cl_stop; srv_stop
	net_attach && srv_start --sniff "$@" && cl_start
}
