#!/usr/bin/env bash
# Connection tracking from the CLI: conn-rate/conns rules, 'sluice set',
# 'sluice conns', 'sluice signals', and what stats, status and rule list
# show of them. Every error case exits as errors.sh says; the happy paths
# run on an attached policy. No traffic flows here (the e2e suites send
# it): the connection counts and the signals are written into the pinned
# maps with bpftool, so what the CLI prints can be checked exactly.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib.sh"
. "$here/lib/helpers.sh"
trap 't_ns_cleanup; rm -rf "$W"' EXIT

jq_is() { [ "$(jq -c "$2" 2>/dev/null <<<"$1")" = true ]; }

# conn_entry RULE_ID KEY COUNT OPENED REFUSED: a sluice_conns entry, KEY a
# masked prefix ("198.18.0.0/24") or "rule", COUNT "dead" for a count the
# sweeper is reclaiming (SLUICE_CONN_DEAD, which it then leaves alone).
conn_entry() {
	python3 - "$@" <<'EOF' >"$W/conn.args"
import ipaddress, struct, sys
rid, key, count, opened, refused = sys.argv[1:]
if key == "rule":
    fam, plen, addr = 0, 0, b""
else:
    net = ipaddress.ip_network(key)
    fam, plen, addr = (4 if net.version == 4 else 6), net.prefixlen, net.network_address.packed
k = struct.pack("<IBBxx16s", int(rid), fam, plen, addr)
count = 1 << 63 if count == "dead" else int(count)
v = struct.pack("<QQQQ", count, int(opened), int(refused), 0)
print("key hex " + " ".join("%02x" % b for b in k) + " value hex " + " ".join("%02x" % b for b in v))
EOF
	# shellcheck disable=SC2046 # the words bpftool takes
	bpftool map update pinned "$SLUICE_PIN_ROOT/sluice_conns" $(cat "$W/conn.args")
}

# signal_entry PORT JSON: a sluice_signals entry. JSON gives "counters" (by
# index of enum sluice_signal) and "hists" (per enum sluice_hist, a list of
# [microseconds, times]).
signal_entry() {
	python3 - "$@" <<'EOF' >"$W/sig.args"
import json, struct, sys
port, spec = int(sys.argv[1]), json.loads(sys.argv[2])
def bucket(us):  # sluice_hist_bucket() in include/sluice.h
    if us < 8:
        return us
    msb = us.bit_length() - 1
    return min(((msb - 2) << 3) + ((us >> (msb - 3)) & 7), 191)
counters = spec.get("counters", []) + [0] * (12 - len(spec.get("counters", [])))
v = struct.pack("<12Q", *counters)
for h in range(4):
    b, count, total = [0] * 192, 0, 0
    for us, n in spec.get("hists", {}).get(str(h), []):
        b[bucket(us)] += n
        count += n
        total += us * n
    v += struct.pack("<QQ192Q", count, total, *b)
k = struct.pack("<I", port)
print("key hex " + " ".join("%02x" % x for x in k) + " value hex " + " ".join("%02x" % x for x in v))
EOF
	# shellcheck disable=SC2046
	bpftool map update pinned "$SLUICE_PIN_ROOT/sluice_signals" $(cat "$W/sig.args")
}

# wait_sampling PID: until PID sleeps out its interval (its first snapshot
# is taken), so what a test writes next falls inside the interval. The
# sanitized binary starts slowly on a loaded machine: a fixed sleep races.
wait_sampling() {
	local i nr
	for i in $(seq 200); do
		read -r nr _ <"/proc/$1/syscall" 2>/dev/null || return 1
		case "$nr" in 230 | 35) return 0 ;; esac # clock_nanosleep, nanosleep
		sleep 0.05
	done
	return 1
}

t_begin "setup: test veth pair"
t_check "create $DEV0/$DEV1" make_veth
t_end

# --- before anything is attached -----------------------------------------
printf 'set syn-timeout 9\n' >"$W/set.txt"
chmod 644 "$W/set.txt"
CASE_PREFIX="nothing attached"
for cmd in "conns" "conns --json" "signals --interval 0" "set syn-timeout 5" "-f $W/set.txt"; do
	# shellcheck disable=SC2086
	fail_case 1 "nothing attached" $cmd
done

t_begin "attach with --flow-size 4096, and the settings' defaults"
sl attach "$DEV0" --flow-size 4096
t_expect "attach exit status ($ERR)" "$RC" -eq 0
sl rule add name base dport 80 proto tcp pps 100
t_expect "rule add exit status ($ERR)" "$RC" -eq 0
sl status --json
t_expect "status exit status ($ERR)" "$RC" -eq 0
t_check "status .flows is the defaults and a 4096-entry table: $(jq -c .flows <<<"$OUT")" \
	jq_is "$OUT" '.flows == {"entries":0,"max":4096,"syn_timeout_s":5,"fin_timeout_s":30,"idle_timeout_s":600,"flows_full":"open"}'
t_end

# --- usage errors ----------------------------------------------------------
CASE_PREFIX="rule add"
fail_case 2 "proto tcp or any" rule add conn-rate 10 proto udp
fail_case 2 "proto tcp or any" rule add conns 5 proto icmp
fail_case 2 "conn-burst" rule add pps 10 conn-burst 5
fail_case 2 "'burst' needs 'pps'" rule add burst 10 conns 5
fail_case 2 "a limit is required" rule add name nolimit dport 80 proto tcp
fail_case 2 "a limit is required" rule add key rule
fail_case 2 "conn-rate '0'" rule add conn-rate 0
fail_case 2 "conn-burst '0'" rule add conn-rate 10 conn-burst 0
fail_case 2 "conns '0'" rule add conns 0
fail_case 2 "conns 'x'" rule add conns x
fail_case 2 "conn-rate" rule add conn-rate
fail_case 2 "conns" rule add conns 5 conns 6
fail_case 2 "conn-rate '100000001'" rule add conn-rate 100000001

CASE_PREFIX="set"
fail_case 2 "nothing to set" set
fail_case 2 "bad syn-timeout '0'" set syn-timeout 0
fail_case 2 "bad syn-timeout '86401'" set syn-timeout 86401
fail_case 2 "bad fin-timeout '-1'" set fin-timeout -1
fail_case 2 "bad fin-timeout '5s'" set fin-timeout 5s
fail_case 2 "bad idle-timeout '2592001'" set idle-timeout 2592001
fail_case 2 "bad idle-timeout 'soon'" set idle-timeout soon
fail_case 2 "'idle-timeout' needs a value" set idle-timeout
fail_case 2 "bad flows-full 'maybe'" set flows-full maybe
fail_case 2 "'syn-timeout' given twice" set syn-timeout 5 syn-timeout 6
fail_case 2 "unknown setting 'colour'" set colour red
fail_case 2 "unknown setting 'timeout'" set timeout 5
# A good setting before a bad one: nothing applied (policy_state compares
# the settings too).
fail_case 2 "unknown setting 'colour'" set syn-timeout 9 flows-full closed colour red
fail_case 2 "bad flows-full 'shut'" set syn-timeout 9 flows-full shut

CASE_PREFIX="conns/signals"
fail_case 2 "count" conns --count 0
fail_case 2 "--count" conns --count
fail_case 2 "count 'x'" conns --count x
fail_case 2 "interval '-1'" conns --interval -1
fail_case 2 "interval '3600001'" conns --interval 3600001
fail_case 2 "--interval" conns --interval
fail_case 2 "--bogus" conns --bogus
fail_case 2 "extra" conns extra
fail_case 2 "--count" signals --count 5
fail_case 2 "interval 'soon'" signals --interval soon
fail_case 2 "--interval" signals --interval
fail_case 2 "--bogus" signals --bogus
fail_case 2 "extra" signals extra

CASE_PREFIX="-f"
printf 'rule add name f1 conns 5\nset syn-timeout 0\n' >"$W/badset.txt"
fail_case 2 "badset.txt:2: set: bad syn-timeout '0'" -f "$W/badset.txt"
printf 'set idle-timeout 60\nset frob 1\n' >"$W/badword.txt"
fail_case 2 "badword.txt:2: set: unknown setting 'frob'" -f "$W/badword.txt"

CASE_PREFIX="not root"
for cmd in "set syn-timeout 5" "conns" "signals --interval 0"; do
	# shellcheck disable=SC2086
	as_nobody fail_case 1 "root" $cmd
done

# --- happy paths -------------------------------------------------------------
t_begin "set: each setting, then one at a time keeps the others"
sl set syn-timeout 7 fin-timeout 40 idle-timeout 1200 flows-full closed
t_expect "exit status ($ERR)" "$RC" -eq 0
t_check "prints nothing: '$OUT$ERR'" is_empty "$OUT$ERR"
sl status --json
t_check "status shows them: $(jq -c .flows <<<"$OUT")" \
	jq_is "$OUT" '.flows | .syn_timeout_s == 7 and .fin_timeout_s == 40 and .idle_timeout_s == 1200 and .flows_full == "closed"'
sl set idle-timeout 2592000
t_expect "idle-timeout 30 days: exit status ($ERR)" "$RC" -eq 0
sl set syn-timeout 86400 flows-full open
t_expect "syn-timeout a day: exit status ($ERR)" "$RC" -eq 0
sl status --json
t_check "the others kept: $(jq -c .flows <<<"$OUT")" \
	jq_is "$OUT" '.flows | .syn_timeout_s == 86400 and .fin_timeout_s == 40 and .idle_timeout_s == 2592000 and .flows_full == "open"'
sl status
t_check "status text shows them: $OUT" \
	grep -q '^flow table: 0 of 4096 entries; syn-timeout 86400 s, fin-timeout 40 s, idle-timeout 2592000 s, flows-full open$' <<<"$OUT"
sl set syn-timeout 1 fin-timeout 1 idle-timeout 1
t_expect "the lower bound 1 s: exit status ($ERR)" "$RC" -eq 0
t_end

t_begin "-f: set and rules in one transaction"
printf '# settings with the rules\nset syn-timeout 3 fin-timeout 20\nrule add name fset conns 9 key rule\nset idle-timeout 300 # later\n' >"$W/set-ok.txt"
sl -f "$W/set-ok.txt"
t_expect "exit status ($ERR)" "$RC" -eq 0
t_check "applied 3 commands: '$OUT'" grep -q "^applied 3 command(s) from " <<<"$OUT"
sl status --json
t_check "settings from the file: $(jq -c .flows <<<"$OUT")" \
	jq_is "$OUT" '.flows | .syn_timeout_s == 3 and .fin_timeout_s == 20 and .idle_timeout_s == 300'
sl rule list --json
t_check "rule fset added with conns 9" jq_is "$OUT" 'map(select(.name == "fset") | .conns) == [9]'
sl rule del fset
t_expect "rule del fset ($ERR)" "$RC" -eq 0
t_end

t_begin "rule add with connection limits; rule list shows them (text and JSON)"
sl rule add name web dport 8080 proto tcp conn-rate 20 conns 5 mask4 24
t_expect "conn-rate and conns, no pps: exit status ($ERR)" "$RC" -eq 0
web=$OUT
sl rule add name burst dport 8081 conn-rate 1k conn-burst 50
t_expect "conn-rate with conn-burst, proto any: exit status ($ERR)" "$RC" -eq 0
burst=$OUT
sl rule add name all dport 8082 proto tcp pps 100 conns 10 key rule
t_expect "pps and conns, key rule: exit status ($ERR)" "$RC" -eq 0
all=$OUT
sl rule list --json
t_check "web: conn_rate 20, conn_burst 20 (default: one second), conns 5, pps 0" \
	jq_is "$OUT" "map(select(.id == $web)) | .[0] | .conn_rate == 20 and .conn_burst == 20 and .conns == 5 and .pps == 0"
t_check "burst: conn_rate 1000, conn_burst 50, conns 0" \
	jq_is "$OUT" "map(select(.id == $burst)) | .[0] | .conn_rate == 1000 and .conn_burst == 50 and .conns == 0"
t_check "all: pps 100, conn_rate 0, conns 10" \
	jq_is "$OUT" "map(select(.id == $all)) | .[0] | .pps == 100 and .conn_rate == 0 and .conn_burst == 0 and .conns == 10"
t_check "base: no connection limits" \
	jq_is "$OUT" 'map(select(.name == "base")) | .[0] | .conn_rate == 0 and .conn_burst == 0 and .conns == 0'
sl rule list
t_check "text: web's limits: $OUT" \
	grep -qE "^$web +web +dport 8080 proto tcp conn-rate 20 conn-burst 20 conns 5 key src mask4 24" <<<"$OUT"
t_check "text: all's limits" grep -qE "^$all +all +dport 8082 proto tcp pps 100 burst 100 conns 10 key rule" <<<"$OUT"
t_end

t_begin "stats: the new drop reasons and the flow table (JSON and text)"
sl stats --json
t_expect "exit status ($ERR)" "$RC" -eq 0
t_check "drops has conn_rate, conns, flow_full: $(jq -c .drops <<<"$OUT")" \
	jq_is "$OUT" '.drops | [.conn_rate, .conns, .flow_full] | all(type == "number")'
t_check "flows has every key: $(jq -c .flows <<<"$OUT")" \
	jq_is "$OUT" '.flows | keys == (["entries","max","opened","closed","reset","expired_half_open","expired_idle","table_full","sweeps"] | sort)'
t_check "flows: 0 of 4096" jq_is "$OUT" '.flows.entries == 0 and .flows.max == 4096'
sl stats
t_check "text drops line: $OUT" grep -qE '^drops: deny 0 ban 0 rate 0 bytes 0 conn_rate 0 conns 0 flow_full 0$' <<<"$OUT"
t_check "text flows line" grep -qE '^flows: 0 of 4096 entries, opened 0 closed 0 reset 0 expired_half_open 0 expired_idle 0 table_full 0 sweeps [0-9]+$' <<<"$OUT"
t_end

t_begin "conns: empty table"
sl conns --json --interval 0
t_expect "exit status ($ERR)" "$RC" -eq 0
t_check "shape: $OUT" jq_is "$OUT" '. == {"interval_ms":0,"flows":{"entries":0,"max":4096},"keys":[]}'
sl conns --interval 0
t_check "text: fill and header: $OUT" \
	[ "$(head -2 <<<"$OUT" | sed 's/  */ /g')" = "$(printf 'flow table: 0 of 4096 entries\nRULE NAME KEY CONNS NEW/s OPENED REFUSED')" ]
t_end

t_begin "conns: keys sorted by connections, masked prefixes, rule-wide, reclaimed"
t_check "write the counts" conn_entry "$web" 198.18.0.0/24 3 10 2
t_check "write the counts" conn_entry "$web" 2001:db8::/64 5 7 0
t_check "write the counts" conn_entry "$all" rule 4 40 9
# The sweeper is reclaiming this one: its count reads as 0.
t_check "write the counts" conn_entry "$web" 198.18.1.0/24 dead 1 0
sl conns --json --interval 0
t_expect "exit status ($ERR)" "$RC" -eq 0
t_check "keys in order: $(jq -c .keys <<<"$OUT")" jq_is "$OUT" "[.keys[] | [.rule_id, .rule, .key, .conns, .opened, .refused]] == [[$web,\"web\",\"2001:db8::/64\",5,7,0],[$all,\"all\",\"rule\",4,40,9],[$web,\"web\",\"198.18.0.0/24\",3,10,2],[$web,\"web\",\"198.18.1.0/24\",0,1,0]]"
t_check "no rates without an interval" jq_is "$OUT" '[.keys[].conn_rate] == [0,0,0,0]'
sl conns --json --interval 0 --count 2
t_check "--count 2: the top two" jq_is "$OUT" '[.keys[].key] == ["2001:db8::/64","rule"]'
sl conns --count 1 --interval 0
t_check "text: the top key: $OUT" grep -qE "^$web +web +2001:db8::/64 +5 +- +7 +0$" <<<"$OUT"
t_expect "text: fill, header and one key" "$(wc -l <<<"$OUT")" -eq 3
t_end

t_begin "conns: the rate is the opened delta over the interval"
"$SLUICE_SAN" conns --json --interval 2000 >"$W/rate.out" 2>"$W/rate.err" &
pid=$!
t_check "conns took its first snapshot" wait_sampling $pid
t_check "50 more opened under 198.18.0.0/24" conn_entry "$web" 198.18.0.0/24 3 60 2
wait $pid
t_expect "exit status ($(cat "$W/rate.err"))" "$?" -eq 0
OUT=$(cat "$W/rate.out")
t_check "interval_ms 2000" jq_is "$OUT" '.interval_ms == 2000'
t_check "198.18.0.0/24: about 25/s: $(jq -c .keys <<<"$OUT")" \
	jq_is "$OUT" '.keys[] | select(.key == "198.18.0.0/24") | .conn_rate > 20 and .conn_rate < 30 and .opened == 60'
t_check "the others: 0/s" jq_is "$OUT" '[.keys[] | select(.key != "198.18.0.0/24") | .conn_rate] == [0,0,0]'
t_check "no sanitizer report" no_sanitizer_report "$W/rate.err"
t_end

t_begin "rule del removes the rule's connection counts, and only its"
sl rule del web
t_expect "exit status ($ERR)" "$RC" -eq 0
sl conns --json --interval 0
t_check "only all's key is left: $(jq -c .keys <<<"$OUT")" jq_is "$OUT" "[.keys[] | [.rule_id, .key]] == [[$all, \"rule\"]]"
t_end

t_begin "signals: none yet"
sl signals --json --interval 0
t_expect "exit status ($ERR)" "$RC" -eq 0
t_check "shape: $OUT" jq_is "$OUT" '. == {"interval_ms":0,"services":[]}'
sl signals --interval 0
t_check "text says so: $OUT" grep -q "^no service seen yet" <<<"$OUT"
t_end

t_begin "signals: percentiles, means and counters per port"
# connect: 100 at 250 us. response: 90 at 50 ms and 10 at 200 ms. Counters
# in enum order: connections requests responses server_rst icmp_unreach
# syn_timeout http_1xx 2xx 3xx 4xx 5xx l7_429.
t_check "write port 8080" signal_entry 8080 \
	'{"counters":[100,100,100,3,1,2,0,90,0,5,5,0],"hists":{"0":[[250,100]],"1":[[50000,90],[200000,10]]}}'
t_check "write port 443" signal_entry 443 '{"counters":[1,0,0,0,0,0,0,0,0,0,0,7],"hists":{"0":[[1200,1]]}}'
sl signals --json --interval 0
t_expect "exit status ($ERR)" "$RC" -eq 0
t_check "ports in order: $(jq -c '[.services[].port]' <<<"$OUT")" jq_is "$OUT" '[.services[].port] == [443, 8080]'
s8080=$(jq -c '.services[] | select(.port == 8080)' <<<"$OUT")
t_check "every key: $s8080" jq_is "$s8080" 'keys == (["port","connect","response","total","per_token","conns_per_s","requests_per_s","counters"] | sort)'
t_check "connect: 100 at 0.25 ms: $(jq -c .connect <<<"$s8080")" \
	jq_is "$s8080" '.connect == {"count":100,"mean_ms":0.25,"p50_ms":0.25,"p90_ms":0.25,"p99_ms":0.25}'
t_check "response: count 100, mean 65 ms: $(jq -c .response <<<"$s8080")" \
	jq_is "$s8080" '.response | .count == 100 and .mean_ms == 65'
t_check "response p50 and p90 within 10% of 50 ms, p99 of 200 ms" \
	jq_is "$s8080" '.response | (.p50_ms - 50 | fabs) < 5 and (.p90_ms - 50 | fabs) < 5 and (.p99_ms - 200 | fabs) < 20'
t_check "total and per_token: count 0, null percentiles" \
	jq_is "$s8080" '[.total, .per_token] == [range(2) | {"count":0,"mean_ms":null,"p50_ms":null,"p90_ms":null,"p99_ms":null}]'
t_check "counters: $(jq -c .counters <<<"$s8080")" \
	jq_is "$s8080" '.counters == {"connections":100,"requests":100,"responses":100,"server_rst":3,"icmp_unreach":1,"syn_timeout":2,"http_1xx":0,"http_2xx":90,"http_3xx":0,"http_4xx":5,"http_5xx":5,"l7_429":0}'
t_check "no rates without an interval" jq_is "$s8080" '.conns_per_s == 0 and .requests_per_s == 0'
t_check "443: connect 1.2 ms, l7_429 7" \
	jq_is "$OUT" '.services[0] | .connect.p50_ms == 1.2 and .counters.l7_429 == 7 and .response.count == 0'
sl signals --interval 0
t_check "text: port 8080 block" grep -q '^port 8080$' <<<"$OUT"
t_check "text: connect line" grep -qE '^  connect +100 +0\.250 +0\.250 +0\.250 +0\.250$' <<<"$OUT"
t_check "text: an empty latency is a dash" grep -qE '^  per_token +-$' <<<"$OUT"
t_check "text: errors line" grep -q '^  errors: server_rst 3, icmp_unreach 1, syn_timeout 2, l7_429 0$' <<<"$OUT"
t_check "text: http line" grep -q '^  http: 1xx 0, 2xx 90, 3xx 0, 4xx 5, 5xx 5$' <<<"$OUT"
t_end

t_begin "signals: connections and requests per second over the interval"
"$SLUICE_SAN" signals --json --interval 2000 >"$W/sig.out" 2>"$W/sig.err" &
pid=$!
t_check "signals took its first snapshot" wait_sampling $pid
t_check "40 more connections, 80 more requests on 8080" signal_entry 8080 \
	'{"counters":[140,180,180,3,1,2,0,170,0,5,5,0],"hists":{"0":[[250,140]],"1":[[50000,170],[200000,10]]}}'
wait $pid
t_expect "exit status ($(cat "$W/sig.err"))" "$?" -eq 0
OUT=$(cat "$W/sig.out")
t_check "8080: about 20 connections/s and 40 requests/s: $(jq -c '.services[] | [.port, .conns_per_s, .requests_per_s]' <<<"$OUT")" \
	jq_is "$OUT" '.interval_ms == 2000 and (.services[] | select(.port == 8080) | .conns_per_s > 16 and .conns_per_s < 24 and .requests_per_s > 32 and .requests_per_s < 48)'
t_check "443: 0/s" jq_is "$OUT" '.services[] | select(.port == 443) | .conns_per_s == 0 and .requests_per_s == 0'
t_check "no sanitizer report" no_sanitizer_report "$W/sig.err"
t_end

t_begin "conns and signals with the plain build, default interval"
out=$("$SLUICE" conns --json 2>&1)
t_check "conns: interval_ms 1000: $out" jq_is "$out" '.interval_ms == 1000 and (.keys | length) == 1'
out=$("$SLUICE" signals --json 2>&1)
t_check "signals: interval_ms 1000: $out" jq_is "$out" '.interval_ms == 1000 and (.services | length) == 2'
t_end

t_begin "attach --no-tc: XDP only, said so, and status shows it"
sl attach "$DEV1" --no-tc
t_expect "exit status ($ERR)" "$RC" -eq 0
t_check "first line: $OUT" grep -qE "^attached to $DEV1 \((native|generic) mode, XDP only\)$" <<<"$OUT"
t_check "a note says what is off: $OUT" grep -q "^note: no TC egress on $DEV1: conns limits and backend signals are off" <<<"$OUT"
sl status --json
t_check "status: $DEV0 with TC egress, $DEV1 without: $(jq -c '[.attached[] | [.dev, .tc_egress]]' <<<"$OUT")" \
	jq_is "$OUT" "[.attached[] | [.dev, .tc_egress]] | sort == [[\"$DEV0\", true], [\"$DEV1\", false]]"
sl status
t_check "status text: $DEV1 has no tc egress" grep -qE "^attached: $DEV1 .*, no tc egress$" <<<"$OUT"
sl detach "$DEV1"
t_expect "detach $DEV1 ($ERR)" "$RC" -eq 0
t_end
