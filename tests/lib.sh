# tests/lib.sh - shared by the shell test suites. Source it.
#
#   t_begin NAME        start a case
#   t_check "WHAT" CMD  run CMD; a non-zero status fails the case with WHAT
#   t_expect "WHAT" A OP B   numeric comparison (OP: -eq -ne -lt -le -gt -ge)
#   t_end               print "ok NAME" or "not ok NAME: WHY"; a case with no
#                       checks fails
#   t_ns_cleanup        remove every namespace and veth this suite created
#   t_wait_log FILE PATTERN PID [SECS]
#                       wait (SECS, default 10) for a line matching PATTERN
#                       (grep -E) in FILE; gives up at once if PID exits
#   t_wait_exit PID [SECS]  wait (SECS, default 10) for PID to exit
#   t_stop PID ERRFILE [SECS]  SIGTERM, then wait (SECS, default 15): 0 when
#                       it exited (its status in T_RC), 2 when it wrote its
#                       last line ("stopped") and then hung in the sanitizer's
#                       leak check at exit (a known LeakSanitizer flake,
#                       google/sanitizers#1330: killed, said on stderr), 1
#                       when it hung before that (killed)
#
# Namespaces and interfaces are named with $T_PREFIX so a suite removes only
# its own. All traffic stays inside them.
set -u
SLUICE=${SLUICE:-${SLUICE_BUILD:-build}/sluice}
SLUICE_SAN=${SLUICE_SAN:-${SLUICE_BUILD:-build}/san/sluice}
T_PREFIX=${T_PREFIX:-slt$$}
# Each suite pins under its own root: tests never touch a production policy.
export SLUICE_PIN_ROOT=${SLUICE_PIN_ROOT:-/sys/fs/bpf/sluice-test-$T_PREFIX}
_t_name="" _t_checks=0 _t_fail=""

t_begin() { _t_name=$1; _t_checks=0; _t_fail=""; }
t_fail() { [ -n "$_t_fail" ] || _t_fail=$1; echo "  check failed: $1" >&2; }
t_check() {
	local what=$1; shift
	_t_checks=$((_t_checks + 1))
	"$@" || t_fail "$what"
}
t_expect() {
	local what=$1 a=$2 op=$3 b=$4
	_t_checks=$((_t_checks + 1))
	[ "$a" "$op" "$b" ] 2>/dev/null || t_fail "$what: $a $op $b is false"
}
t_end() {
	if [ "$_t_checks" = 0 ]; then echo "not ok $_t_name: made no checks"
	elif [ -n "$_t_fail" ]; then echo "not ok $_t_name: $_t_fail"
	else echo "ok $_t_name ($_t_checks checks)"; fi
}

t_ns_cleanup() {
	local ns
	for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep "^$T_PREFIX" || true); do
		ip netns pids "$ns" 2>/dev/null | xargs -r kill 2>/dev/null
		ip netns del "$ns" 2>/dev/null
	done
	ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | cut -d@ -f1 | grep "^$T_PREFIX" |
		while read -r l; do ip link del dev "$l" 2>/dev/null; done
	"$SLUICE" unload >/dev/null 2>&1 || true
}

t_wait_log() {
	local file=$1 pattern=$2 pid=$3 i
	for i in $(seq $((${4:-10} * 10))); do
		grep -qE -- "$pattern" "$file" 2>/dev/null && return 0
		kill -0 "$pid" 2>/dev/null || return 1
		sleep 0.1
	done
	return 1
}

t_wait_exit() {
	local pid=$1 i
	for i in $(seq $((${2:-10} * 10))); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.1
	done
	return 1
}

T_RC=0
t_stop() {
	local pid=$1 err=$2
	kill -TERM "$pid" 2>/dev/null
	if t_wait_exit "$pid" "${3:-15}"; then
		wait "$pid" 2>/dev/null
		T_RC=$?
		return 0
	fi
	pkill -KILL -P "$pid" 2>/dev/null   # LeakSanitizer's tracer, or timeout's child
	kill -KILL "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	T_RC=137
	if tail -n 1 "$err" 2>/dev/null | grep -q 'stopped$'; then
		echo "  # pid $pid finished its shutdown but hung in LeakSanitizer's check at" \
			"exit (google/sanitizers#1330); killed, no leak check this time" >&2
		return 2
	fi
	echo "  pid $pid still running ${3:-15} s after SIGTERM; the end of $err:" >&2
	tail -n 20 "$err" 2>/dev/null | sed 's/^/    /' >&2
	return 1
}
