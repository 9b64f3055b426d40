#!/usr/bin/env bash
# What a user sees when things work: ids, lists in text and JSON, stats,
# status, top, deletes by id and by name, timed deny entries, --help.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib.sh"
. "$here/lib/helpers.sh"
trap 't_ns_cleanup; rm -rf "$W"' EXIT

json_ok() { jq -e . >/dev/null 2>&1 <<<"$1"; }
# jq_is JSON FILTER: FILTER yields true on JSON.
jq_is() { [ "$(jq -c "$2" 2>/dev/null <<<"$1")" = true ]; }
one_array_per_line() {
	local line n=0
	while IFS= read -r line; do
		jq_is "$line" 'type == "array"' || return 1
		n=$((n + 1))
	done <"$1"
	[ "$n" -gt 0 ]
}

t_begin "--help for sluice and every command"
for cmd in "" attach detach status rule allow deny set stats top conns signals unload; do
	# shellcheck disable=SC2086
	sl $cmd --help
	t_expect "'sluice $cmd --help' exit status ($ERR)" "$RC" -eq 0
	t_check "'sluice $cmd --help' prints Usage on stdout" has_prefix "$OUT" "Usage: sluice"
	t_check "'sluice $cmd --help' prints nothing on stderr: '$ERR'" is_empty "$ERR"
	if [ -n "$cmd" ]; then
		t_check "'sluice $cmd --help' shows that command's usage" contains "$OUT" "sluice $cmd"
	fi
done
sl -h
t_expect "'sluice -h' exit status" "$RC" -eq 0
t_check "'sluice -h' prints Usage" has_prefix "$OUT" "Usage: sluice"
sl rule add --help
t_expect "'sluice rule add --help' exit status" "$RC" -eq 0
t_check "'sluice rule add --help' prints Usage" has_prefix "$OUT" "Usage: sluice rule"
t_end

t_begin "sluice with no command prints usage on stderr and exits 2"
sl
t_expect "exit status" "$RC" -eq 2
t_check "usage on stderr" contains "$ERR" "Usage: sluice"
t_check "nothing on stdout: '$OUT'" is_empty "$OUT"
t_end

t_begin "attach prints the device and mode"
t_check "create $DEV0/$DEV1" make_veth
sl attach "$DEV0"
t_expect "exit status ($ERR)" "$RC" -eq 0
t_check "stdout names $DEV0 and a mode: '$OUT'" \
	grep -qE "^attached to $DEV0 \((native|generic) mode, TC egress\)$" <<<"$OUT"
t_check "stderr is empty: '$ERR'" is_empty "$ERR"
t_check "$DEV0 runs an XDP program" [ -n "$(xdp_of "$DEV0")" ]
t_end

t_begin "rule add prints the new id"
ids=()
for spec in "name web dport 80 proto tcp pps 100 burst 300" \
	"name dns dport 53-54 proto udp src 198.18.0.0/15 pps 2k key rule" \
	"name v6 src 2001:db8::/32 pps 1m bps 100m bburst 64k mask6 56 action count" \
	"pps 7" \
	"name banner src 198.19.0.0/16 pps 10 mask4 24 ban 30"; do
	# shellcheck disable=SC2086
	sl rule add $spec
	t_expect "rule add $spec: exit status ($ERR)" "$RC" -eq 0
	t_check "rule add $spec: stdout is one id: '$OUT'" is_uint "$OUT"
	t_check "rule add $spec: stderr is empty: '$ERR'" is_empty "$ERR"
	ids+=("$OUT")
done
t_check "ids are distinct and increasing: ${ids[*]}" \
	[ "$(printf '%s\n' "${ids[@]}" | sort -n | uniq | tr '\n' ' ')" = "${ids[*]} " ]
t_end

t_begin "rule list (text)"
sl rule list
t_expect "exit status ($ERR)" "$RC" -eq 0
t_check "header line" grep -qE '^ID +NAME +RULE' <<<"$OUT"
t_expect "one line per rule plus the header" "$(wc -l <<<"$OUT")" -eq 6
t_check "rule web listed with its id and match" \
	grep -qE "^${ids[0]} +web +dport 80 proto tcp pps 100 burst 300 " <<<"$OUT"
t_check "rule dns listed with its range" \
	grep -qE "^${ids[1]} +dns +src 198.18.0.0/15 dport 53-54 proto udp pps 2000 " <<<"$OUT"
t_check "an unnamed rule shows '-'" grep -qE "^${ids[3]} +- +pps 7 " <<<"$OUT"
t_end

t_begin "rule list --json"
sl rule list --json
J=$OUT
t_expect "exit status ($ERR)" "$RC" -eq 0
t_check "valid JSON: $J" json_ok "$J"
t_check "an array of 5 rules" jq_is "$J" 'type == "array" and length == 5'
t_check "every rule has every field with its type" jq_is "$J" 'all(.[];
	(.id | type) == "number" and (.name | type) == "string" and (.match | type) == "string" and
	(.proto | type) == "string" and (.dport_lo | type) == "number" and
	(.dport_hi | type) == "number" and (.pps | type) == "number" and
	(.burst | type) == "number" and (.bps | type) == "number" and
	(.bburst | type) == "number" and (.key | type) == "string" and
	(.mask4 | type) == "number" and (.mask6 | type) == "number" and
	(.action | type) == "string" and (.ban | type) == "number")'
t_check "ids match what rule add printed" \
	[ "$(jq -r 'map(.id) | join(" ")' <<<"$J")" = "${ids[*]}" ]
t_check "web as written" jq_is "$J" '.[] | select(.name == "web") |
	.dport_lo == 80 and .dport_hi == 80 and .proto == "tcp" and .pps == 100 and
	.burst == 300 and .key == "src" and .mask4 == 32 and .action == "drop" and .ban == 0'
t_check "dns as written" jq_is "$J" '.[] | select(.name == "dns") |
	.dport_lo == 53 and .dport_hi == 54 and .proto == "udp" and .pps == 2000 and
	.burst == 2000 and .key == "rule"'
t_check "v6 as written" jq_is "$J" '.[] | select(.name == "v6") |
	.pps == 1000000 and .bps == 100000000 and .bburst == 64000 and .mask6 == 56 and
	.action == "count"'
t_check "banner as written" jq_is "$J" '.[] | select(.name == "banner") |
	.mask4 == 24 and .ban == 30 and (.match | contains("src 198.19.0.0/16"))'
t_end

t_begin "allow add/list (text and --json)"
for p in 198.18.100.0/24 2001:db8:0:100::/64 198.18.101.7; do
	sl allow add "$p"
	t_expect "allow add $p: exit status ($ERR)" "$RC" -eq 0
	t_check "allow add $p: quiet: '$OUT$ERR'" is_empty "$OUT$ERR"
done
sl allow list
t_expect "allow list: exit status ($ERR)" "$RC" -eq 0
t_check "allow list text: '$OUT'" [ "$(sort <<<"$OUT" | tr '\n' ' ')" = \
	"198.18.100.0/24 198.18.101.7/32 2001:db8:0:100::/64 " ]
sl allow list --json
t_check "valid JSON: $OUT" json_ok "$OUT"
t_check "allow list --json: $OUT" jq_is "$OUT" \
	'map(.prefix) | sort == ["198.18.100.0/24", "198.18.101.7/32", "2001:db8:0:100::/64"]'
t_end

t_begin "deny add/list, with and without timeout (text and --json)"
sl deny add 198.18.200.0/24
t_expect "deny add: exit status ($ERR)" "$RC" -eq 0
sl deny add 2001:db8:200::/48 timeout 300
t_expect "deny add timeout: exit status ($ERR)" "$RC" -eq 0
sl deny list --json
J=$OUT
t_check "valid JSON: $J" json_ok "$J"
t_check "two entries" jq_is "$J" 'length == 2'
t_check "the static entry never expires" jq_is "$J" '.[] | select(.prefix == "198.18.200.0/24") |
	.kind == "static" and .expires_in == null'
t_check "the timed entry shows expires_in in (290, 300]" jq_is "$J" \
	'.[] | select(.prefix == "2001:db8:200::/48") |
	.kind == "static" and (.expires_in | type) == "number" and .expires_in > 290 and
	.expires_in <= 300'
sl deny list
t_expect "deny list: exit status ($ERR)" "$RC" -eq 0
t_check "text: header" grep -qE '^PREFIX +KIND +EXPIRES' <<<"$OUT"
t_check "text: static entry never expires" grep -qE '^198.18.200.0/24 +static +never' <<<"$OUT"
t_check "text: timed entry in seconds" grep -qE '^2001:db8:200::/48 +static +(29[1-9]|300)s' <<<"$OUT"
sl deny add 2001:db8:200::/48 timeout 60
t_expect "deny add again replaces: exit status ($ERR)" "$RC" -eq 0
sl deny list --json
t_check "re-adding replaced the timeout: $OUT" jq_is "$OUT" \
	'length == 2 and (.[] | select(.prefix == "2001:db8:200::/48") | .expires_in <= 60)'
t_end

t_begin "stats --json"
sl stats --json
J=$OUT
t_expect "exit status ($ERR)" "$RC" -eq 0
t_check "valid JSON: $J" json_ok "$J"
t_check "drops has every reason as a number" jq_is "$J" \
	'.drops | (keys | sort) == (["ban", "bytes", "conn_rate", "conns", "deny", "flow_full", "rate"]) and
	all(.[]; type == "number")'
t_check "malformed is counted beside drops, not among them" jq_is "$J" '.malformed | type == "number"'
# One list of drop reasons (SLUICE_DROP_REASONS): the docs name each one.
for reason in $(jq -r '.drops | keys[]' <<<"$J"); do
	t_check "docs/metrics.md names drop reason $reason" \
		grep -qE '^\| `sluice_drops_total` .*`'"$reason"'`' "$here/../../docs/metrics.md"
done
t_check "rules[] lists the 5 rules by id" \
	[ "$(jq -r '.rules | map(.id) | join(" ")' <<<"$J")" = "${ids[*]}" ]
t_check "every rule has id, name and its counters as numbers" jq_is "$J" 'all(.rules[];
	(.id | type) == "number" and (.name | type) == "string" and
	(.passed_pkts | type) == "number" and (.passed_bytes | type) == "number" and
	(.dropped_pkts | type) == "number" and (.dropped_bytes | type) == "number")'
t_check "rule names as added" \
	[ "$(jq -r '.rules | map(.name) | join(",")' <<<"$J")" = "web,dns,v6,,banner" ]
sl stats
t_expect "stats (text): exit status ($ERR)" "$RC" -eq 0
t_check "stats text lists drops" grep -q '^drops: deny [0-9]* ban [0-9]* rate' <<<"$OUT"
t_check "stats text lists rule web" grep -qE "^${ids[0]} +web +drop " <<<"$OUT"
t_end

t_begin "status --json and text"
sl status --json
J=$OUT
t_expect "exit status ($ERR)" "$RC" -eq 0
t_check "valid JSON: $J" json_ok "$J"
t_check "lists $DEV0 with its ifindex and a mode" jq_is "$J" \
	".attached | length == 1 and .[0].dev == \"$DEV0\" and
	.[0].ifindex == $(cat "/sys/class/net/$DEV0/ifindex") and
	(.[0].mode == \"native\" or .[0].mode == \"generic\") and .[0].prog_id > 0"
t_check "pin_root is $SLUICE_PIN_ROOT" jq_is "$J" ".pin_root == \"$SLUICE_PIN_ROOT\""
t_check "rules is 5" jq_is "$J" '.rules == 5 and .rules_max >= 5'
t_check "the prog id is the one on $DEV0 ($(xdp_of "$DEV0"))" \
	contains "$(xdp_of "$DEV0") " "id $(jq -r '.attached[0].prog_id' <<<"$J") "
sl status
t_expect "status (text): exit status ($ERR)" "$RC" -eq 0
t_check "status text names $DEV0" grep -q "^attached: $DEV0 " <<<"$OUT"
t_end

t_begin "top --once (--json and text)"
sl top --once --json
t_expect "exit status ($ERR)" "$RC" -eq 0
t_check "valid JSON: $OUT" json_ok "$OUT"
t_check "an array of rows with source and counters" jq_is "$OUT" 'type == "array" and all(.[];
	(.source | type) == "string" and (.rule_id | type) == "number" and
	(.passed_pkts | type) == "number" and (.dropped_pkts | type) == "number")'
sl top --once --count 3 --json
t_check "--count 3: at most 3 rows: $OUT" jq_is "$OUT" 'length <= 3'
sl top --once
t_expect "text: exit status ($ERR)" "$RC" -eq 0
t_check "text: header" grep -qE '^SOURCE +RULE +PASSED +DROPPED' <<<"$OUT"
t_end

t_begin "top without --once refreshes until SIGINT"
"$SLUICE_SAN" top --json >"$W/top.out" 2>"$W/top.err" &
top_pid=$!
sleep 2.5
kill -INT "$top_pid"
wait "$top_pid"
rc=$?
t_expect "exit status after SIGINT" "$rc" -eq 0
t_check "no sanitizer report" no_sanitizer_report "$W/top.err"
t_expect "at least one refresh in 2.5 s" "$(wc -l <"$W/top.out")" -ge 1
t_check "one JSON array per line" one_array_per_line "$W/top.out"
t_end

t_begin "rule del by id and by name"
sl rule del "${ids[3]}"
t_expect "del by id: exit status ($ERR)" "$RC" -eq 0
t_check "del by id: quiet: '$OUT$ERR'" is_empty "$OUT$ERR"
sl rule del dns
t_expect "del by name: exit status ($ERR)" "$RC" -eq 0
sl rule list --json
t_check "web, v6, banner remain: $OUT" \
	[ "$(jq -r 'map("\(.id):\(.name)") | join(",")' <<<"$OUT")" = \
	"${ids[0]}:web,${ids[2]}:v6,${ids[4]}:banner" ]
sl stats --json
t_check "stats no longer lists them" \
	[ "$(jq -r '.rules | map(.id) | join(" ")' <<<"$OUT")" = "${ids[0]} ${ids[2]} ${ids[4]}" ]
sl rule add name dns pps 3
t_expect "the name dns can be used again ($ERR)" "$RC" -eq 0
t_check "a new id, not a reused one: $OUT" [ "$OUT" -gt "${ids[4]}" ]
t_end

t_begin "allow del and deny del"
sl allow del 198.18.101.7/32
t_expect "allow del: exit status ($ERR)" "$RC" -eq 0
sl allow del 198.18.101.7
t_expect "allow del again fails" "$RC" -eq 1
sl allow list --json
t_check "198.18.101.7/32 gone: $OUT" jq_is "$OUT" \
	'map(.prefix) | sort == ["198.18.100.0/24", "2001:db8:0:100::/64"]'
sl deny del 2001:db8:200::/48
t_expect "deny del: exit status ($ERR)" "$RC" -eq 0
sl deny list --json
t_check "only 198.18.200.0/24 left: $OUT" jq_is "$OUT" 'map(.prefix) == ["198.18.200.0/24"]'
t_end

# "help" is a valid rule name ("letters, digits, '-', '_', '.'"); as a value
# it must not turn the command into a request for help that exits 0 having
# applied nothing.
t_begin "a rule named 'help' is added, not taken for --help"
sl rule add name help pps 10
t_expect "exit status ($ERR)" "$RC" -eq 0
t_check "stdout is the new id: '$(head -c 60 <<<"$OUT")'" is_uint "$OUT"
t_check "the rule is listed" jq_is "$("$SLUICE" rule list --json)" 'any(.[]; .name == "help")'
sl rule del help
t_expect "rule del help: exit status ($ERR)" "$RC" -eq 0
t_check "rule del help: removed it" jq_is "$("$SLUICE" rule list --json)" 'all(.[]; .name != "help")'
t_end

# An interface that is deleted and created again (often with the same index)
# must not be refused as "already attached" because of the dead link's pin.
t_begin "attach after the interface was deleted and re-created with its index"
idx=$((30000 + $$ % 20000))
RE0=${T_PREFIX}r0 RE1=${T_PREFIX}r1
t_check "create $RE0 with index $idx" ip link add dev "$RE0" index "$idx" type veth peer name "$RE1"
sl attach "$RE0"
t_expect "first attach ($ERR)" "$RC" -eq 0
ip link del dev "$RE0"
sl status --json
t_check "the dead link shows as defunct: $OUT" jq_is "$OUT" \
	"any(.attached[]; .ifindex == 0 and .mode == \"defunct\")"
t_check "re-create $RE0 with index $idx" ip link add dev "$RE0" index "$idx" type veth peer name "$RE1"
sl attach "$RE0"
t_expect "attach again ($ERR)" "$RC" -eq 0
t_check "$RE0 runs sluice's program" [ -n "$(xdp_of "$RE0")" ]
sl attach "$RE0"
t_expect "a third attach, while attached, is refused" "$RC" -eq 1
sl detach "$RE0"
t_expect "detach ($ERR)" "$RC" -eq 0
t_check "$RE0 has no XDP program after detach" [ -z "$(xdp_of "$RE0")" ]
ip link del dev "$RE0" 2>/dev/null
t_end
