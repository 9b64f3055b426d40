# tests/cli/lib/helpers.sh - what the CLI suites share. Source it after
# tests/lib.sh. (It lives in lib/ so that tests/run.sh, which runs
# tests/cli/*.sh, does not take it for a suite.)
#
#   sl ARGS...            run the sanitizer build of sluice; sets RC, OUT, ERR
#                         and fails the case on any sanitizer report
#   as_nobody sl ARGS...  the same, as uid/gid 65534 with no groups
#   expect_fail CODE WORD ARGS...
#                         'sluice ARGS' exits CODE, prints nothing on stdout,
#                         exactly one line on stderr that starts "sluice: " and
#                         contains WORD, and leaves the policy as it was
#   policy_state          a comparable dump of everything sluice keeps
#   make_veth             create ${T_PREFIX}x0/${T_PREFIX}x1 in the host namespace
W=$(mktemp -d /tmp/sluice-cli.XXXXXX)
chmod 755 "$W" # as_nobody reads files from here
DEV0=${T_PREFIX}x0
DEV1=${T_PREFIX}x1
RUN_AS=()
RC=0 OUT="" ERR=""

if [ ! -x "$SLUICE_SAN" ] || [ ! -x "$SLUICE" ]; then
	echo "not ok setup: $SLUICE_SAN or $SLUICE is missing (make build/san/sluice build/sluice)"
	exit 1
fi

no_sanitizer_report() {
	if grep -qE 'ERROR: AddressSanitizer|runtime error:|LeakSanitizer' "$1"; then
		sed -n 1,8p "$1" >&2
		return 1
	fi
}

# Reports come through stderr: the runner sets halt_on_error and detect_leaks;
# keep them on when a suite runs by hand.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

sl() {
	"${RUN_AS[@]}" "$SLUICE_SAN" "$@" >"$W/out" 2>"$W/err"
	RC=$?
	OUT=$(cat "$W/out")
	ERR=$(cat "$W/err")
	t_check "no sanitizer report from 'sluice $*'" no_sanitizer_report "$W/err"
}

as_nobody() {
	local RUN_AS=(setpriv --reuid=65534 --regid=65534 --clear-groups)
	"$@"
}

has_prefix() { case "$1" in "$2"*) return 0 ;; esac; return 1; }
contains() { case "$1" in *"$2"*) return 0 ;; esac; return 1; }
one_line() { [ -n "$1" ] && [ "$(printf '%s\n' "$1" | wc -l)" -eq 1 ]; }
is_uint() { case "$1" in '' | *[!0-9]*) return 1 ;; esac; return 0; }
is_empty() { [ -z "$1" ]; }
same_nonempty() { [ -n "$1" ] && [ "$1" = "$2" ]; }

# Everything a failed command must leave alone: the pins (maps and links),
# the rules, the allow and deny lists, and the settings of 'sluice set'. A
# timed deny entry's countdown (expires_in, expires_in_ms) is left out, it moves by itself.
policy_state() {
	ls "$SLUICE_PIN_ROOT" "$SLUICE_PIN_ROOT/links" 2>&1
	"$SLUICE" rule list --json 2>&1
	"$SLUICE" allow list --json 2>&1
	"$SLUICE" deny list --json 2>/dev/null | jq -c 'map(del(.expires_in, .expires_in_ms))' 2>&1
	"$SLUICE" status --json 2>/dev/null | jq -c '.flows | del(.entries)' 2>&1
}

expect_fail() {
	local code=$1 word=$2 before after
	shift 2
	before=$(policy_state)
	sl "$@"
	after=$(policy_state)
	t_expect "exit status of 'sluice $*'" "$RC" -eq "$code"
	t_check "'sluice $*' printed on stdout: '$OUT'" is_empty "$OUT"
	t_check "'sluice $*' should print one line on stderr, printed '$ERR'" one_line "$ERR"
	t_check "stderr of 'sluice $*' should start with 'sluice: ': '$ERR'" has_prefix "$ERR" "sluice: "
	t_check "stderr of 'sluice $*' should name '$word': '$ERR'" contains "$ERR" "$word"
	t_check "'sluice $*' changed the policy or pins" [ "$before" = "$after" ]
}

# A case of its own per error: the report names which one failed.
fail_case() {
	local code=$1 word=$2
	shift 2
	t_begin "$CASE_PREFIX: sluice $*"
	expect_fail "$code" "$word" "$@"
	t_end
}

make_veth() {
	ip link add dev "$DEV0" type veth peer name "$DEV1" &&
		ip link set dev "$DEV0" up &&
		ip link set dev "$DEV1" up
}

# The XDP program on DEV, as ip shows it: "prog/xdp id N ..." or nothing.
xdp_of() { ip -d link show dev "$1" 2>/dev/null | grep -o 'prog/xdp[a-z]* id [0-9]*'; }
