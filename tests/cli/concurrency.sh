#!/usr/bin/env bash
# Several CLI processes writing at once: the flock on the pin directory
# serialises them, so every change lands, ids stay distinct, nothing errors.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib.sh"
. "$here/lib/helpers.sh"
trap 't_ns_cleanup; rm -rf "$W"' EXIT

WRITERS=4
PER_WRITER=15 # 4 x 15 = 60 of the 64 rule slots

jq_is() { [ "$(jq -c "$2" 2>/dev/null <<<"$1")" = true ]; }

# writer N KIND: runs PER_WRITER commands one after the other, each
# writer with its own names; a failing command stops it. Its stdout, stderr
# and status go to $W/wN.{out,err,rc}.
writer() {
	local n=$1 kind=$2 i rc=0
	for ((i = 0; i < PER_WRITER; i++)); do
		case $kind in
		rule-add) "$SLUICE_SAN" rule add name "w$n-r$i" dport $((1000 + n * 100 + i)) pps $((n + 10)) ;;
		rule-del) "$SLUICE_SAN" rule del "w$n-r$i" ;;
		allow-add) "$SLUICE_SAN" allow add "198.18.$n.$i/32" ;;
		deny-add) "$SLUICE_SAN" deny add "2001:db8:$n:$((i + 1))::/64" timeout 600 ;;
		esac || { rc=$?; break; }
	done >"$W/w$n.out" 2>"$W/w$n.err"
	echo "$rc" >"$W/w$n.rc"
}

# Starts WRITERS writers of KIND at once (bounded: each runs PER_WRITER
# commands, and all of them must be done within 60 s).
run_writers() {
	local kind=$1 n pids=() deadline
	rm -f "$W"/w*.out "$W"/w*.err "$W"/w*.rc
	for ((n = 0; n < WRITERS; n++)); do
		writer "$n" "$kind" &
		pids+=($!)
	done
	deadline=$((SECONDS + 60))
	while [ "$(jobs -rp | wc -l)" -gt 0 ] && [ "$SECONDS" -lt "$deadline" ]; do
		sleep 0.1
	done
	if [ "$(jobs -rp | wc -l)" -gt 0 ]; then
		kill "${pids[@]}" 2>/dev/null
		wait
		return 1
	fi
	wait
}

check_writers() {
	local n
	for ((n = 0; n < WRITERS; n++)); do
		t_check "writer $n exit status $(cat "$W/w$n.rc" 2>/dev/null): $(head -c 200 "$W/w$n.err")" \
			[ "$(cat "$W/w$n.rc" 2>/dev/null)" = 0 ]
		t_check "writer $n: no sanitizer report" no_sanitizer_report "$W/w$n.err"
		t_check "writer $n: nothing on stderr: $(head -c 200 "$W/w$n.err")" [ ! -s "$W/w$n.err" ]
	done
}

t_begin "setup: test veth pair and attach"
t_check "create $DEV0/$DEV1" make_veth
sl attach "$DEV0"
t_expect "attach exit status ($ERR)" "$RC" -eq 0
t_end

t_begin "concurrent rule add: $WRITERS writers x $PER_WRITER rules"
t_check "writers finished within 60 s" run_writers rule-add
check_writers
printed=$(cat "$W"/w*.out | sort -n)
t_expect "ids printed" "$(wc -l <<<"$printed")" -eq $((WRITERS * PER_WRITER))
t_expect "distinct ids printed" "$(uniq <<<"$printed" | wc -l)" -eq $((WRITERS * PER_WRITER))
sl rule list --json
J=$OUT
t_expect "rules listed" "$(jq length <<<"$J")" -eq $((WRITERS * PER_WRITER))
t_expect "distinct ids listed" "$(jq '[.[].id] | unique | length' <<<"$J")" -eq $((WRITERS * PER_WRITER))
t_check "the listed ids are the printed ones" [ "$(jq -r '.[].id' <<<"$J" | sort -n)" = "$printed" ]
expected_names=$(for ((n = 0; n < WRITERS; n++)); do
	for ((i = 0; i < PER_WRITER; i++)); do echo "w$n-r$i"; done
done | sort)
t_check "every name listed once" [ "$(jq -r '.[].name' <<<"$J" | sort)" = "$expected_names" ]
t_check "each rule kept its own port and rate" jq_is "$J" 'all(.[];
	(.name | capture("^w(?<n>[0-9]+)-r(?<i>[0-9]+)$") | {n: (.n | tonumber), i: (.i | tonumber)}) as $w |
	.dport_lo == 1000 + $w.n * 100 + $w.i and .pps == $w.n + 10)'
sl status --json
t_check "status counts $((WRITERS * PER_WRITER)) rules" jq_is "$OUT" ".rules == $((WRITERS * PER_WRITER))"
t_end

# The table holds 64: fill it, and the 65th fails cleanly.
t_begin "rule table full: the 65th rule is refused and nothing changes"
for i in 1 2 3 4; do
	sl rule add name fill$i pps 1
	t_expect "rule add fill$i ($ERR)" "$RC" -eq 0
done
expect_fail 1 "full" rule add name overflow pps 1
t_end

t_begin "concurrent rule del: $WRITERS writers delete their own rules"
t_check "writers finished within 60 s" run_writers rule-del
check_writers
sl rule list --json
t_check "only the 4 fill rules remain: $OUT" \
	[ "$(jq -r 'map(.name) | join(",")' <<<"$OUT")" = "fill1,fill2,fill3,fill4" ]
t_end

t_begin "concurrent allow add: $WRITERS writers x $PER_WRITER prefixes"
t_check "writers finished within 60 s" run_writers allow-add
check_writers
sl allow list --json
expected=$(for ((n = 0; n < WRITERS; n++)); do
	for ((i = 0; i < PER_WRITER; i++)); do echo "198.18.$n.$i/32"; done
done | sort)
t_expect "entries listed" "$(jq length <<<"$OUT")" -eq $((WRITERS * PER_WRITER))
t_check "every prefix listed once" [ "$(jq -r '.[].prefix' <<<"$OUT" | sort)" = "$expected" ]
t_end

t_begin "concurrent deny add: $WRITERS writers x $PER_WRITER prefixes"
t_check "writers finished within 60 s" run_writers deny-add
check_writers
sl deny list --json
expected=$(for ((n = 0; n < WRITERS; n++)); do
	for ((i = 0; i < PER_WRITER; i++)); do echo "2001:db8:$n:$((i + 1))::/64"; done
done | sort)
t_expect "entries listed" "$(jq length <<<"$OUT")" -eq $((WRITERS * PER_WRITER))
t_check "every prefix listed once" [ "$(jq -r '.[].prefix' <<<"$OUT" | sort)" = "$expected" ]
t_check "every entry kept its timeout" jq_is "$OUT" 'all(.[]; .expires_in > 500 and .expires_in <= 600)'
t_end

# Writers and readers together: a reader never fails or sees a torn list.
t_begin "readers while writers add rules"
sl rule del fill1
sl rule del fill2
sl rule del fill3
sl rule del fill4
run_writers rule-add &
wpid=$!
bad=0 reads=0
for ((r = 0; r < 40; r++)); do
	out=$("$SLUICE_SAN" rule list --json 2>"$W/reader.err") || bad=$((bad + 1))
	no_sanitizer_report "$W/reader.err" || bad=$((bad + 1))
	jq -e 'type == "array"' >/dev/null 2>&1 <<<"$out" || bad=$((bad + 1))
	reads=$((reads + 1))
done
wait "$wpid"
t_expect "run_writers status" "$?" -eq 0
check_writers
t_expect "failed or torn reads out of $reads" "$bad" -eq 0
sl rule list --json
t_expect "rules listed afterwards" "$(jq length <<<"$OUT")" -eq $((WRITERS * PER_WRITER))
t_end
