#!/usr/bin/env bash
# sluice -f FILE: one transaction. A good file applies every line; a file
# with one bad line applies nothing and names FILE:LINE.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib.sh"
. "$here/lib/helpers.sh"
trap 't_ns_cleanup; rm -rf "$W"' EXIT

rule_names() { "$SLUICE" rule list --json | jq -r 'map(.name) | join(",")'; }
allow_list() { "$SLUICE" allow list --json | jq -r 'map(.prefix) | sort | join(",")'; }
deny_list() { "$SLUICE" deny list --json | jq -r 'map(.prefix) | sort | join(",")'; }

# A line of exactly N characters (before its newline) that is a valid
# command: "allow add PREFIX", padded with trailing blanks.
line_of() {
	local n=$1 cmd=$2
	printf '%s%*s' "$cmd" $((n - ${#cmd})) ''
}

t_begin "setup: test veth pair and attach"
t_check "create $DEV0/$DEV1" make_veth
sl attach "$DEV0"
t_expect "attach exit status ($ERR)" "$RC" -eq 0
sl rule add name existing pps 50
t_expect "rule add exit status ($ERR)" "$RC" -eq 0
t_end

t_begin "-f: a good file applies every command"
cat >"$W/good.txt" <<'EOF'
# sluice policy for the test: comments, blank lines, indentation

rule add name web dport 80 proto tcp pps 100 burst 200
	rule add name dns dport 53 proto udp src 198.18.0.0/15 pps 1k key rule   # trailing comment
rule add name v6 src 2001:db8::/32 pps 500 bps 8m mask6 48 action count
rule add name temp pps 5
rule del temp
rule del existing

allow add 198.18.10.0/24
allow add 2001:db8:10::/48
allow add 198.18.11.0/24
allow del 198.18.11.0/24
deny add 198.18.20.0/24
deny add 198.18.21.0/24 timeout 300
   # an indented comment
deny add 2001:db8:20::/48
EOF
sl -f "$W/good.txt"
t_expect "exit status ($ERR)" "$RC" -eq 0
t_check "stderr is empty: '$ERR'" is_empty "$ERR"
t_check "stdout reports 13 commands applied: '$OUT'" contains "$OUT" "applied 13 command"
t_check "rules are web,dns,v6 (got $(rule_names))" [ "$(rule_names)" = "web,dns,v6" ]
t_check "rule dns as written" [ "$("$SLUICE" rule list --json | jq -c '.[] | select(.name=="dns") |
	[.dport_lo, .dport_hi, .proto, .pps, .key]')" = '[53,53,"udp",1000,"rule"]' ]
t_check "rule v6 as written" [ "$("$SLUICE" rule list --json | jq -c '.[] | select(.name=="v6") |
	[.bps, .mask6, .action]')" = '[8000000,48,"count"]' ]
t_check "allow list (got $(allow_list))" [ "$(allow_list)" = "198.18.10.0/24,2001:db8:10::/48" ]
t_check "deny list (got $(deny_list))" \
	[ "$(deny_list)" = "198.18.20.0/24,198.18.21.0/24,2001:db8:20::/48" ]
t_check "the timed deny entry expires in (0, 300] s" [ "$("$SLUICE" deny list --json |
	jq '.[] | select(.prefix=="198.18.21.0/24") | .expires_in > 0 and .expires_in <= 300')" = true ]
t_end

# Every bad file below must leave exactly this behind.
before=$(policy_state)
unchanged() { [ "$before" = "$(policy_state)" ]; }

# bad_file NAME CODE WORD: FILE exists already; sluice -f FILE fails with
# CODE (or any non-zero with CODE "nz"), one stderr line naming FILE:LINE
# and WORD, and applies nothing.
bad_file() {
	local file=$1 code=$2 where=$3 word=$4
	sl -f "$file"
	if [ "$code" = nz ]; then
		t_expect "exit status ($ERR)" "$RC" -ne 0
	else
		t_expect "exit status ($ERR)" "$RC" -eq "$code"
	fi
	t_check "stdout is empty: '$OUT'" is_empty "$OUT"
	t_check "one line on stderr: '$ERR'" one_line "$ERR"
	t_check "stderr starts 'sluice: $where': '$ERR'" has_prefix "$ERR" "sluice: $where"
	t_check "stderr names '$word': '$ERR'" contains "$ERR" "$word"
	t_check "the policy changed" unchanged
}

t_begin "-f: a bad line 3 applies nothing and names FILE:3"
cat >"$W/bad3.txt" <<'EOF'
rule add name new1 pps 10
deny add 198.18.30.0/24
rule add name new2 pps 0
allow add 198.18.31.0/24
EOF
bad_file "$W/bad3.txt" 2 "$W/bad3.txt:3:" "pps '0'"
t_end

t_begin "-f: a bad line 3 after deletions applies nothing"
cat >"$W/bad3del.txt" <<'EOF'
rule del web
allow del 198.18.10.0/24
rule add name web pps 10 colour blue
EOF
bad_file "$W/bad3del.txt" 2 "$W/bad3del.txt:3:" "colour"
t_end

t_begin "-f: line 3 deletes a rule that does not exist"
printf '# comment\nrule add name new3 pps 10\nrule del nosuch\n' >"$W/del3.txt"
bad_file "$W/del3.txt" nz "$W/del3.txt:3:" "nosuch"
t_end

t_begin "-f: line 3 adds an allow entry that line 1 added"
printf 'allow add 198.18.40.0/24\n\nallow add 198.18.40.0/24\n' >"$W/dup3.txt"
bad_file "$W/dup3.txt" nz "$W/dup3.txt:3:" "198.18.40.0/24"
t_end

t_begin "-f: a rule name used twice in the file"
printf 'rule add name twin pps 1\nrule add name other pps 1\nrule add name twin pps 2\n' >"$W/twin.txt"
bad_file "$W/twin.txt" nz "$W/twin.txt:3:" "twin"
t_end

t_begin "-f: stats in a file is refused"
printf 'rule add name s1 pps 10\nstats\n' >"$W/stats.txt"
bad_file "$W/stats.txt" 2 "$W/stats.txt:2:" "stats"
t_end

for cmd in "rule list" "attach $DEV1" "unload" "status --json" "deny list"; do
	t_begin "-f: '$cmd' in a file is refused"
	printf 'allow add 198.18.50.0/24\n%s\n' "$cmd" >"$W/refused.txt"
	bad_file "$W/refused.txt" 2 "$W/refused.txt:2:" "${cmd%% *}"
	t_end
done

t_begin "-f: a missing file"
expect_fail 1 "$W/missing.txt" -f "$W/missing.txt"
t_end

t_begin "-f: an over-long line"
{
	echo "allow add 198.18.60.0/24"
	line_of 5000 "allow add 198.18.61.0/24"
	echo
	echo "allow add 198.18.62.0/24"
} >"$W/long.txt"
bad_file "$W/long.txt" 2 "$W/long.txt:2:" "longer"
t_end

t_begin "-f: an over-long last line without a newline"
{
	echo "allow add 198.18.60.0/24"
	line_of 5000 "allow add 198.18.61.0/24"
} >"$W/longeof.txt"
bad_file "$W/longeof.txt" 2 "$W/longeof.txt:2:" "longer"
t_end

t_begin "-f: a line one past the limit (4096 characters) is refused"
{ line_of 4096 "allow add 198.18.63.0/24"; echo; } >"$W/limit1.txt"
bad_file "$W/limit1.txt" 2 "$W/limit1.txt:1:" "longer than 4095"
t_end

# The limit the message states: "line longer than 4095 characters" is
# refused, so a line of 4095 characters is accepted.
t_begin "-f: a line of exactly 4095 characters is accepted"
{ line_of 4095 "allow add 198.18.64.0/24"; echo; } >"$W/limit.txt"
sl -f "$W/limit.txt"
t_expect "exit status ($ERR)" "$RC" -eq 0
t_check "198.18.64.0/24 is on the allow list" contains "$(allow_list)" "198.18.64.0/24"
t_end

t_begin "-f: a last line of 4095 characters without a newline is accepted"
line_of 4095 "allow add 198.18.65.0/24" >"$W/limiteof.txt"
sl -f "$W/limiteof.txt"
t_expect "exit status ($ERR)" "$RC" -eq 0
t_check "198.18.65.0/24 is on the allow list" contains "$(allow_list)" "198.18.65.0/24"
t_end

t_begin "-f: a line of 4000 characters is accepted"
{ line_of 4000 "allow add 198.18.66.0/24"; echo; } >"$W/long4000.txt"
sl -f "$W/long4000.txt"
t_expect "exit status ($ERR)" "$RC" -eq 0
t_check "198.18.66.0/24 is on the allow list" contains "$(allow_list)" "198.18.66.0/24"
t_end

t_begin "-f: an empty file and a file of comments apply nothing and succeed"
: >"$W/empty.txt"
printf '# nothing\n\n   \n# here\n' >"$W/comments.txt"
before=$(policy_state)
sl -f "$W/empty.txt"
t_expect "empty file: exit status ($ERR)" "$RC" -eq 0
t_check "empty file: reports 0 commands: '$OUT'" contains "$OUT" "applied 0 command"
sl -f "$W/comments.txt"
t_expect "comments: exit status ($ERR)" "$RC" -eq 0
t_check "comments: reports 0 commands: '$OUT'" contains "$OUT" "applied 0 command"
t_check "the policy changed" unchanged
t_end

t_begin "-f: CRLF line ends are accepted"
printf 'allow add 198.18.70.0/24\r\nrule add name crlf pps 7\r\n' >"$W/crlf.txt"
sl -f "$W/crlf.txt"
t_expect "exit status ($ERR)" "$RC" -eq 0
t_check "198.18.70.0/24 is on the allow list" contains "$(allow_list)" "198.18.70.0/24"
t_check "rule crlf exists" contains ",$(rule_names)," ",crlf,"
t_end
