#!/usr/bin/env bash
# tests/e2e/daemon.sh - sluiced's lifecycle: start, restart, reload, kill -9,
# interface re-creation, bad configs, idle CPU.
#
# sluiced runs in $NS_B's network namespace (nsenter --net, like sl_b, so it
# sees the suite's pins) with a config that attaches to $DEV_B and limits
# UDP to $PORT. Enforcement is checked with real traffic counted by nft at
# the backend (net.sh): A4 is held to the rule's rate, C4 is denied. State
# that must survive (rule ids, per-source buckets, counters, bans) is read
# with the CLI. Every wait is bounded; the trap kills the daemon.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib.sh"
. "$here/lib/net.sh"
SLUICED=${SLUICED:-${SLUICE_BUILD:-build}/sluiced}
CONF=$E2E_TMP/sluiced.conf
LOG=$E2E_TMP/sluiced.log
_d_pid=""

d_cleanup() {
	[ -n "$_d_pid" ] && kill -KILL "$_d_pid" 2>/dev/null
	net_cleanup
}
trap d_cleanup EXIT

A4=198.18.0.2 B4=198.18.0.3 C4=198.18.0.4
CFG=$E2E_TMP/tg.cfg
M="proto udp dport $PORT"

# conf OTHER_PPS [EXTRA_LINE]: the config; the 'other' rule's rate varies.
conf() {
	cat >"$CONF" <<-EOF
	# sluiced e2e
	interface $DEV_B mode native
	metrics off
	rule add name lim $M pps 200 burst 100
	rule add name strict $M src $B4 pps 20 burst 10 ban 600
	rule add name other proto udp dport 5000 pps $1
	deny add $C4
	${2:-}
	EOF
}

# d_start [ARGS]: sluiced in the foreground, in the background of this
# shell; waits (bounded) for its "running" line.
d_start() {
	: >"$LOG"
	nsenter --net="/run/netns/$NS_B" "$SLUICED" -f -c "$CONF" "$@" 2>>"$LOG" &
	_d_pid=$!
	t_wait_log "$LOG" 'info: running:' "$_d_pid" && return 0
	echo "sluiced did not start:" >&2
	sed 's/^/    /' "$LOG" >&2
	return 1
}

# d_stop SIGNAL: signal it and wait (bounded) for it to exit.
d_stop() {
	[ -n "$_d_pid" ] || return 1
	kill "-$1" "$_d_pid" 2>/dev/null
	t_wait_exit "$_d_pid" || return 1
	wait "$_d_pid" 2>/dev/null
	_d_pid=""
}

# logged PATTERN [SECS]: the daemon's log gets a line matching PATTERN.
logged() {
	local i
	for i in $(seq $((${2:-5} * 10))); do
		grep -qE -- "$1" "$LOG" && return 0
		sleep 0.1
	done
	echo "    not in the log: $1" >&2
	sed 's/^/    /' "$LOG" >&2
	return 1
}

NUM=6000 EACH=3000
send() { t_check "$1: send $EACH frames from $A4 and from $C4" measure "$CFG" "$NUM" 100; }
enforced() {
	send "$1"
	expect_rate "$1: $A4 limited" "$(nft_count "$A4")" 200 "$(sink_span "$A4")" 100
	t_expect "$1: denied $C4 gets nothing" "$(nft_count "$C4")" -eq 0
}

rule_ids() { "$SLUICE" rule list --json | jq -c '[.[] | {name, id}] | sort_by(.name)'; }
rule_id() { "$SLUICE" rule list --json | jq -r --arg n "$1" '.[] | select(.name == $n) | .id'; }
# bucket SRC RULE_ID: the per-source bucket's passed packets, 0 if it is gone.
bucket() {
	"$SLUICE" top --once --json --count 1000 |
		jq -r --arg s "$1/32" --argjson r "$2" \
		'[.[] | select(.source == $s and .rule_id == $r) | .passed_pkts] | add // 0'
}
bans() { "$SLUICE" deny list --json | jq '[.[] | select(.kind == "ban")] | length'; }
link_id() { sl_b status --json | jq -r '.attached[0].link_id // empty'; }
attached() { sl_b status --json | jq '.attached | length'; }

setup_ok=1
t_begin "e2e topology"
t_check "build the namespaces and veth" net_setup || setup_ok=0
t_end
[ "$setup_ok" = 1 ] || exit 1
tg_cfg "$CFG" "$A4" "$C4" # the MACs are known now
"$SLUICE" unload >/dev/null 2>&1

t_begin "--check: OK for a good file, FILE:LINE for a bad one, and touches nothing"
conf 50
t_check "sluiced --check prints OK" sh -c "'$SLUICED' --check -c '$CONF' | grep -qx OK"
conf 50 "rule add name broken pps"
out=$("$SLUICED" --check -c "$CONF" 2>&1); rc=$?
t_expect "sluiced --check exits non-zero for a bad file" "$rc" -ne 0
t_check "it names $CONF:8 ($out)" grep -q "^$CONF:8: " <<<"$out"
t_check "nothing was pinned" [ ! -e "$SLUICE_PIN_ROOT/sluice_rules" ]
t_end

t_begin "start: attached, policy applied, enforced"
conf 50
t_check "sluiced starts" d_start
t_check "it logs the attachment" logged "info: attached to $DEV_B \(ifindex [0-9]+, native, tc egress\)"
t_check "XDP on $DEV_B" xdp_on_dev
t_expect "status lists one attachment" "$(attached)" -eq 1
t_expect "three rules" "$("$SLUICE" rule list --json | jq length)" -eq 3
enforced "started"
# B4 at ~1500 pps against 20 pps earns a ban.
tg_cfg "$E2E_TMP/ban.cfg" "$B4"
t_check "send from $B4" measure "$E2E_TMP/ban.cfg" 1500 600
t_expect "$B4 banned by the strict rule" "$(bans)" -eq 1
t_end

t_begin "restart (SIGTERM): enforcement kept while down; ids, buckets, counters and bans survive"
ids=$(rule_ids) lim=$(rule_id lim) lnk=$(link_id)
b_before=$(bucket "$A4" "$lim")
p_before=$(rule_stat "$lim" passed_pkts)
t_expect "$A4 has a bucket under rule $lim" "$b_before" -gt 0
t_check "SIGTERM: sluiced exits" d_stop TERM
t_check "it says enforcement stays" grep -q 'fail-static' "$LOG"
t_check "XDP still on $DEV_B" xdp_on_dev
enforced "daemon down"
b_down=$(bucket "$A4" "$lim")
t_expect "the bucket counted on while down" "$b_down" -gt "$b_before"
t_check "sluiced starts again" d_start
t_check "it adopts the attachment" logged "info: adopted $DEV_B .*replaced in place"
t_check "policy unchanged" logged "info: start: policy unchanged \(3 rule\(s\)\)"
t_check "same rule ids ($ids)" [ "$(rule_ids)" = "$ids" ]
t_check "same link ($lnk): the program was swapped, not re-attached" [ "$(link_id)" = "$lnk" ]
t_expect "$A4's bucket survived" "$(bucket "$A4" "$lim")" -ge "$b_down"
t_expect "rule counters survived" "$(rule_stat "$lim" passed_pkts)" -ge "$p_before"
t_expect "the ban survived" "$(bans)" -eq 1
enforced "restarted"
t_end

t_begin "reload (SIGHUP): one rule changed, the others keep their ids and state"
lim=$(rule_id lim) strict=$(rule_id strict) other=$(rule_id other)
b_before=$(bucket "$A4" "$lim")
conf 60
t_check "SIGHUP" kill -HUP "$_d_pid"
t_check "it logs the difference" logged "info: reload: policy applied: 3 rule\(s\); 2 kept, 1 added, 1 deleted"
t_expect "lim keeps id $lim" "$(rule_id lim)" -eq "$lim"
t_expect "strict keeps id $strict" "$(rule_id strict)" -eq "$strict"
t_expect "other gets a new id" "$(rule_id other)" -gt "$other"
t_expect "other's new rate" "$("$SLUICE" rule list --json | jq '.[] | select(.name == "other") | .pps')" -eq 60
t_expect "$A4's bucket under lim kept" "$(bucket "$A4" "$lim")" -eq "$b_before"
t_expect "the ban kept" "$(bans)" -eq 1
enforced "reloaded"
t_end

t_begin "reload with a bad file: logged with FILE:LINE, nothing changed"
ids=$(rule_ids)
conf 70 "interface $DEV_B"
t_check "SIGHUP" kill -HUP "$_d_pid"
t_check "the error names $CONF:8" logged "error: reload: $CONF:8: interface $DEV_B: already named on line 2 \(nothing was changed\)"
t_check "rules unchanged" [ "$(rule_ids)" = "$ids" ]
t_check "sluiced still running" kill -0 "$_d_pid"
t_end

t_begin "kill -9: enforcement continues, a restart adopts"
conf 60
ids=$(rule_ids) lim=$(rule_id lim)
t_check "kill -9" d_stop KILL
t_check "XDP still on $DEV_B" xdp_on_dev
enforced "killed"
b_down=$(bucket "$A4" "$lim")
t_check "sluiced starts again" d_start
t_check "it adopts" logged "info: adopted $DEV_B"
t_check "same rule ids" [ "$(rule_ids)" = "$ids" ]
t_expect "$A4's bucket survived" "$(bucket "$A4" "$lim")" -ge "$b_down"
t_end

# relink: delete the veth pair and make it again with the same names, then
# the addresses, neighbours and counters net_setup gave it.
relink() {
	local a
	ip -n "$NS_B" link del dev "$DEV_B" || return 1
	ip link add "$DEV_S" numtxqueues 2 numrxqueues 2 type veth \
		peer name "$DEV_B" numtxqueues 2 numrxqueues 2 || return 1
	ip link set dev "$DEV_S" netns "$NS_S" && ip link set dev "$DEV_B" netns "$NS_B" || return 1
	ip -n "$NS_S" link set dev "$DEV_S" address "$MAC_S" &&
		ip -n "$NS_B" link set dev "$DEV_B" address "$MAC_B" || return 1
	ip -n "$NS_S" link set dev "$DEV_S" up && ip -n "$NS_B" link set dev "$DEV_B" up || return 1
	ip -n "$NS_B" addr add "$DST4/24" dev "$DEV_B" || return 1
	ip -n "$NS_B" route add 198.18.0.0/15 dev "$DEV_B" || return 1
	ip -n "$NS_S" addr add 198.18.0.1/24 dev "$DEV_S" || return 1
	for a in $SRCS4; do
		ip -n "$NS_S" addr add "$a/24" dev "$DEV_S" || return 1
		ip -n "$NS_B" neigh add "$a" lladdr "$MAC_S" nud permanent dev "$DEV_B" || return 1
	done
	ip -n "$NS_S" neigh add "$DST4" lladdr "$MAC_B" nud permanent dev "$DEV_S" || return 1
	ip -n "$NS_S" route add 198.18.0.0/15 dev "$DEV_S" 2>/dev/null
	in_b sysctl -qw "net.ipv4.conf.$DEV_B.rp_filter=0" || return 1
	in_s sh -c "echo 1 > /sys/class/net/$DEV_S/queues/tx-0/xps_cpus &&
		    echo 2 > /sys/class/net/$DEV_S/queues/tx-1/xps_cpus" || return 1
	nft_setup
}

t_begin "interface re-created with the same name: re-attached, enforced, logged"
old=$(ip -n "$NS_B" -j link show dev "$DEV_B" | jq -r '.[0].ifindex')
t_check "delete and re-create the veth pair" relink
new=$(ip -n "$NS_B" -j link show dev "$DEV_B" | jq -r '.[0].ifindex')
t_check "logged: $DEV_B disappeared" logged "warn: $DEV_B disappeared \(ifindex $old\)"
t_check "logged: $DEV_B appeared" logged "info: $DEV_B appeared \(ifindex $new\)"
t_check "logged: attached to the new $DEV_B" logged "info: attached to $DEV_B \(ifindex $new, native"
t_check "XDP on the new $DEV_B" xdp_on_dev
t_expect "status lists one attachment (the stale link pin is gone)" "$(attached)" -eq 1
enforced "re-created"
t_end

t_begin "idle: ~0% CPU"
# utime + stime (fields 14 and 15 of /proc/PID/stat, in clock ticks) over 3 s.
ticks() { awk '{ print $14 + $15 }' "/proc/$_d_pid/stat"; }
t0=$(ticks); sleep 3; t1=$(ticks)
hz=$(getconf CLK_TCK)
echo "  idle: $((t1 - t0)) ticks of CPU in 3 s (CLK_TCK $hz)" >&2
t_expect "at most 1% of a CPU (ticks in 3 s)" "$((t1 - t0))" -le $((hz * 3 / 100))
t_end

t_begin "bad config at start: non-zero exit, FILE:LINE, the running policy untouched"
t_check "SIGTERM" d_stop TERM
ids=$(rule_ids)
conf 80 "state-size 12"
: >"$LOG"
nsenter --net="/run/netns/$NS_B" timeout 30 "$SLUICED" -f -c "$CONF" 2>"$LOG"
rc=$?
t_expect "sluiced exits non-zero" "$rc" -ne 0
t_check "the error names $CONF:8" grep -q "error: $CONF:8: bad state-size" "$LOG"
t_check "rules unchanged" [ "$(rule_ids)" = "$ids" ]
t_check "XDP still on $DEV_B" xdp_on_dev
enforced "after a refused start"
t_end

t_begin "--detach-on-exit: SIGTERM detaches, the policy stays pinned"
conf 60
t_check "sluiced starts" d_start --detach-on-exit
t_check "SIGTERM" d_stop TERM
t_check "it logs the detach" grep -q "info: detached from $DEV_B" "$LOG"
t_check "no XDP on $DEV_B" sh -c "! ip -n '$NS_B' -d link show dev '$DEV_B' | grep -q prog/xdp"
t_expect "the rules stay pinned" "$("$SLUICE" rule list --json | jq length)" -eq 3
t_end

t_begin "metrics endpoint and an adaptive controller in the loop"
conf 60 "rule add name svc proto tcp dport 8080 conn-rate 100"
sed -i 's/^metrics off$/metrics 127.0.0.1:19464/' "$CONF"
echo "adaptive port 8080 limit conn-rate min 10 max 100 tick 200" >>"$CONF"
t_check "sluiced --check accepts it" sh -c "'$SLUICED' --check -c '$CONF' | grep -qx OK"
t_check "sluiced starts" d_start
t_check "it serves metrics" logged "info: metrics: serving http://127.0.0.1:19464/metrics"
t_check "it starts the controller" logged "info: adaptive .*8080.*: started"
scrape() {
	nsenter --net="/run/netns/$NS_B" timeout 10 "$PY" -c \
		'import urllib.request; print(urllib.request.urlopen("http://127.0.0.1:19464/metrics").read().decode())'
}
sleep 0.5 # a few controller ticks
scrape >"$E2E_TMP/scrape.txt" 2>&1
t_check "a scrape returns sluice_ metrics" grep -q '^sluice_' "$E2E_TMP/scrape.txt"
t_check "promtool check metrics accepts the scrape" \
	sh -c "promtool check metrics <'$E2E_TMP/scrape.txt' >'$E2E_TMP/promtool.txt' 2>&1"
[ -s "$E2E_TMP/promtool.txt" ] && sed 's/^/  promtool: /' "$E2E_TMP/promtool.txt" >&2
t_check "the controller's limit is exported" \
	grep -q '^sluice_adaptive_limit{port="8080"' "$E2E_TMP/scrape.txt"
t_check "the rule's counters are exported" \
	grep -q '^sluice_rule_packets_total{rule="svc"' "$E2E_TMP/scrape.txt"
t_check "SIGTERM" d_stop TERM
t_end
