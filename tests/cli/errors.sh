#!/usr/bin/env bash
# Every error: exit 2 for a usage error and 1 for a failed operation, one
# line on stderr "sluice: ..." naming what was wrong, nothing on stdout, and
# nothing half-applied (pins, rules, allow and deny lists as they were).
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib.sh"
. "$here/lib/helpers.sh"
trap 't_ns_cleanup; rm -rf "$W"' EXIT

t_begin "setup: test veth pair"
t_check "create $DEV0/$DEV1" make_veth
t_end

# --- before anything is attached -----------------------------------------
printf 'allow add 198.18.9.0/24\n' >"$W/policy.txt"
chmod 644 "$W/policy.txt"
CASE_PREFIX="nothing attached"
for cmd in "rule add pps 10" "rule del 1" "rule list" "allow add 198.18.0.0/24" \
	"allow list" "deny add 198.18.0.0/24" "deny del 198.18.0.0/24" "deny list --json" \
	"stats" "stats --json" "status" "top --once" "detach $DEV0" "-f $W/policy.txt"; do
	# shellcheck disable=SC2086 # cmd is a list of words
	fail_case 1 "nothing attached" $cmd
done
t_begin "nothing attached: no pin directory was created"
t_check "$SLUICE_PIN_ROOT exists" [ ! -e "$SLUICE_PIN_ROOT" ]
t_end

# --- a running policy to keep intact ---------------------------------------
t_begin "setup: attach and a baseline policy"
sl attach "$DEV0"
t_expect "attach $DEV0 exit status ($ERR)" "$RC" -eq 0
sl rule add name base dport 80 proto tcp pps 100
t_expect "rule add exit status ($ERR)" "$RC" -eq 0
sl allow add 198.18.1.0/24
t_expect "allow add exit status ($ERR)" "$RC" -eq 0
sl deny add 198.18.2.0/24
t_expect "deny add exit status ($ERR)" "$RC" -eq 0
sl deny add 2001:db8:2::/48 timeout 600
t_expect "deny add timeout exit status ($ERR)" "$RC" -eq 0
t_end

CASE_PREFIX="usage"
fail_case 2 "frobnicate" frobnicate
fail_case 2 "--bogus" --bogus
fail_case 2 "-f" -f
fail_case 2 "stats" -f "$W/policy.txt" stats
fail_case 2 "extra" status extra
fail_case 2 "extra" stats extra
fail_case 2 "extra" unload extra
fail_case 2 "count" top --count 0
fail_case 2 "--sideways" top --sideways
fail_case 2 "missing subcommand" rule
fail_case 2 "frob" rule frob
fail_case 2 "frob" allow frob 198.18.0.0/24
fail_case 2 "extra" rule list extra
fail_case 2 "extra" allow list extra
fail_case 2 "extra" deny list extra

CASE_PREFIX="rule add"
fail_case 2 "pps" rule add
fail_case 2 "pps" rule add name nopps dport 80
fail_case 2 "colour" rule add pps 10 colour red
fail_case 2 "frob" rule add frob pps 10
# Prefixes.
fail_case 2 "198.18.0.256" rule add pps 10 src 198.18.0.256/32
fail_case 2 "not-an-address" rule add pps 10 src not-an-address
fail_case 2 "198.18.0.0/33" rule add pps 10 src 198.18.0.0/33
fail_case 2 "198.18.0.0/-1" rule add pps 10 src 198.18.0.0/-1
fail_case 2 "198.18.0.0/x" rule add pps 10 src 198.18.0.0/x
fail_case 2 "2001:db8::/129" rule add pps 10 src 2001:db8::/129
fail_case 2 "host bits" rule add pps 10 src 198.18.0.1/24
fail_case 2 "198.18.0.0/24" rule add pps 10 src 198.18.0.1/24
fail_case 2 "host bits" rule add pps 10 src 2001:db8::1/32
# Ports.
fail_case 2 "'0'" rule add pps 10 dport 0
fail_case 2 "65536" rule add pps 10 dport 65536
fail_case 2 "90-80" rule add pps 10 dport 90-80
fail_case 2 "80-" rule add pps 10 dport 80-
fail_case 2 "http" rule add pps 10 dport http
fail_case 2 "dport" rule add pps 10 dport 53 proto icmp
# Rates.
fail_case 2 "pps '0'" rule add pps 0
fail_case 2 "99999999999999999999" rule add pps 99999999999999999999
fail_case 2 "2g" rule add pps 2g
fail_case 2 "1000000001" rule add pps 1000000001
fail_case 2 "-5" rule add pps -5
fail_case 2 "10x" rule add pps 10x
fail_case 2 "burst '0'" rule add pps 10 burst 0
fail_case 2 "10q" rule add pps 10 bps 10q
fail_case 2 "1mb" rule add pps 10 bps 1mb
fail_case 2 "kbit" rule add pps 10 bps 10kbit
fail_case 2 "bburst" rule add pps 10 bburst 4000
fail_case 2 "100" rule add pps 10 bps 1m bburst 100
# Missing values, repeated keywords, bad words.
fail_case 2 "pps" rule add pps
fail_case 2 "name" rule add pps 10 name
fail_case 2 "src" rule add pps 10 src
fail_case 2 "dport" rule add pps 10 dport
fail_case 2 "pps" rule add pps 10 pps 20
fail_case 2 "name" rule add name a1 name a2 pps 10
fail_case 2 "dport" rule add dport 80 pps 10 dport 81
fail_case 2 "gre" rule add pps 10 proto gre
fail_case 2 "flow" rule add pps 10 key flow
fail_case 2 "reject" rule add pps 10 action reject
fail_case 2 "mask4" rule add pps 10 mask4 33
fail_case 2 "mask6" rule add pps 10 mask6 0
fail_case 2 "mask4" rule add pps 10 key rule mask4 24
fail_case 2 "ban" rule add pps 10 key rule ban 60
fail_case 2 "ban" rule add pps 10 action count ban 60
fail_case 2 "ban '0'" rule add pps 10 ban 0
fail_case 2 "bad/name" rule add name bad/name pps 10
fail_case 2 "12345" rule add name 12345 pps 10
fail_case 2 "name" rule add name abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz pps 10
# A valid rule that cannot be added.
fail_case 1 "base" rule add name base pps 10

CASE_PREFIX="rule del"
fail_case 1 "999" rule del 999
fail_case 1 "nosuchrule" rule del nosuchrule
fail_case 2 "rule del" rule del
fail_case 2 "rule del" rule del base extra

CASE_PREFIX="allow/deny"
fail_case 2 "PREFIX" allow add
fail_case 2 "198.18.300.0/24" allow add 198.18.300.0/24
fail_case 2 "198.18.1.0/33" allow add 198.18.1.0/33
fail_case 2 "host bits" allow add 198.18.1.1/24
fail_case 2 "extra" allow add 198.18.7.0/24 extra
fail_case 1 "198.18.1.0/24" allow add 198.18.1.0/24
fail_case 1 "198.18.5.0/24" allow del 198.18.5.0/24
fail_case 1 "198.18.2.0/24" allow del 198.18.2.0/24
fail_case 2 "PREFIX" deny add
fail_case 2 "timeout" deny add 198.18.6.0/24 timeout
fail_case 2 "timeout '0'" deny add 198.18.6.0/24 timeout 0
fail_case 2 "soon" deny add 198.18.6.0/24 timeout soon
fail_case 2 "forever" deny add 198.18.6.0/24 forever
fail_case 2 "timeout" deny del 198.18.2.0/24 timeout 5
fail_case 2 "2001:db8::1/32" deny add 2001:db8::1/32
fail_case 1 "198.18.1.0/24" deny del 198.18.1.0/24
fail_case 1 "2001:db8:9::/48" deny del 2001:db8:9::/48

CASE_PREFIX="attach/detach"
fail_case 2 "DEV" attach
fail_case 2 "--mode" attach "$DEV1" --mode
fail_case 2 "turbo" attach "$DEV1" --mode turbo
fail_case 2 "--wobble" attach "$DEV1" --wobble
fail_case 2 "$DEV0" attach "$DEV1" "$DEV0"
fail_case 2 "state size" attach "$DEV1" --state-size 10
fail_case 2 "insert rate" attach "$DEV1" --insert-rate 0
fail_case 1 "${T_PREFIX}nope" attach "${T_PREFIX}nope"
fail_case 1 "$DEV0" attach "$DEV0"
fail_case 1 "$DEV0" attach "$DEV0" --mode generic
fail_case 1 "state table" attach "$DEV1" --state-size 2048
fail_case 2 "DEV" detach
fail_case 2 "DEV" detach "$DEV0" "$DEV1"
fail_case 1 "$DEV1" detach "$DEV1"
fail_case 1 "${T_PREFIX}nope" detach "${T_PREFIX}nope"

# Another XDP program holds DEV1: attach must fail and leave it in place.
t_begin "attach/detach: sluice attach to a device held by another XDP program"
floor=$(dirname "$SLUICE")/floor.bpf.o
t_check "load a foreign XDP program on $DEV1" ip link set dev "$DEV1" xdpdrv obj "$floor" sec xdp
foreign=$(xdp_of "$DEV1")
expect_fail 1 "$DEV1" attach "$DEV1"
t_check "the foreign program on $DEV1 is gone or replaced (was '$foreign', now '$(xdp_of "$DEV1")')" \
	same_nonempty "$foreign" "$(xdp_of "$DEV1")"
t_check "remove the foreign program" ip link set dev "$DEV1" xdpdrv off
t_end

CASE_PREFIX="not root"
for cmd in "rule add pps 10" "rule del base" "rule list" "allow add 198.18.8.0/24" \
	"allow list" "deny add 198.18.8.0/24" "deny del 198.18.2.0/24" "deny list" \
	"stats --json" "status" "top --once" "attach $DEV1" "detach $DEV0" "unload" \
	"-f $W/policy.txt"; do
	# shellcheck disable=SC2086
	as_nobody fail_case 1 "root" $cmd
done

t_begin "errors left the baseline policy and attachment intact"
sl rule list --json
t_check "one rule named base (got $OUT)" [ "$(jq -r 'map(.name) | join(",")' <<<"$OUT")" = base ]
sl allow list --json
t_check "allow list is 198.18.1.0/24 (got $OUT)" \
	[ "$(jq -r 'map(.prefix) | join(",")' <<<"$OUT")" = 198.18.1.0/24 ]
sl deny list --json
t_check "deny list is 198.18.2.0/24, 2001:db8:2::/48 (got $OUT)" \
	[ "$(jq -r 'map(.prefix) | sort | join(",")' <<<"$OUT")" = "198.18.2.0/24,2001:db8:2::/48" ]
sl status --json
t_check "attached to $DEV0 only (got $OUT)" \
	[ "$(jq -r '.attached | map(.dev) | join(",")' <<<"$OUT")" = "$DEV0" ]
t_check "$DEV0 still runs an XDP program" [ -n "$(xdp_of "$DEV0")" ]
t_check "$DEV1 runs no XDP program" [ -z "$(xdp_of "$DEV1")" ]
t_end
