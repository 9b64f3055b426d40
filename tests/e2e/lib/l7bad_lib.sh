# shellcheck shell=bash
# tests/e2e/lib/l7bad_lib.sh - running sluice-l7 (ASan+UBSan build) and
# mock-llm in the e2e suites, and asking them things. Source it after
# tests/lib.sh. (In lib/ so tests/run.sh does not take it for a suite.)
#
# Set L7_NS to a namespace name to run everything below inside that
# namespace's network (nsenter --net, which keeps the host's bpffs pins in
# view, unlike ip netns exec).
#
#   free_port                 a TCP port nobody listens on (in L7_NS)
#   mock_start NAME ARGS...   build/mock-llm on 127.0.0.1, a free port: sets
#                             MOCK_PORT; its stderr in $L7_TMP/NAME.err
#   l7_start NAME CONF_TEXT   build/san/sluice-l7 with that config (mode 600)
#                             in the background; waits for "listening on"
#   l7_alive NAME             true while it runs
#   l7_stop NAME              SIGTERM; true if it exited 0 within 15 s with
#                             no sanitizer report on its stderr (t_stop in
#                             tests/lib.sh: a hang in LeakSanitizer's check
#                             after its last line is said, not failed)
#   l7_metric NAME SERIES     a sample's value from its /metrics (the whole
#                             series as printed, e.g. 'x{code="400"}'), 0 if absent
#   l7_wait_metric NAME SERIES VALUE SECS   until it reads VALUE
#   l7req ARGS...             l7bad_client.py req ARGS (a JSON line)
#   jget JSON FILTER          jq -r FILTER on a JSON string
#   l7_cleanup                stop whatever is still running, remove $L7_TMP
L7_LIB=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
L7_ROOT=$(cd "$L7_LIB/../../.." && pwd)
L7_BUILD=${SLUICE_BUILD:-$L7_ROOT/build}
L7_BIN=${L7_BIN:-$L7_BUILD/san/sluice-l7}
MOCK_BIN=${MOCK_BIN:-$L7_BUILD/mock-llm}
L7_PY=/usr/bin/python3
[ -x "$L7_PY" ] || L7_PY=python3
L7_NS=${L7_NS:-}
: "${ASAN_OPTIONS:=detect_leaks=1:abort_on_error=0}"
: "${UBSAN_OPTIONS:=print_stacktrace=1:halt_on_error=1}"
export ASAN_OPTIONS UBSAN_OPTIONS
L7_TMP=$(mktemp -d "/tmp/l7e2e.XXXXXX")
declare -A _l7_pid=() _l7_metrics=()
MOCK_PORT=""

# in_ns CMD...: CMD in L7_NS's network, or here; bounded in time.
in_ns() {
	if [ -n "$L7_NS" ]; then
		nsenter --net="/run/netns/$L7_NS" timeout 60 "$@"
	else
		timeout 60 "$@"
	fi
}

free_port() {
	in_ns "$L7_PY" -c 'import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# _bg NAME CMD...: CMD in the background (in L7_NS), stderr to NAME.err.
_bg() {
	local name=$1; shift
	if [ -n "$L7_NS" ]; then
		nsenter --net="/run/netns/$L7_NS" timeout 600 "$@" 2>"$L7_TMP/$name.err" &
	else
		timeout 600 "$@" 2>"$L7_TMP/$name.err" &
	fi
	_l7_pid[$name]=$!
}

# _wait_log NAME PATTERN SECS
_wait_log() {
	for _ in $(seq $(($3 * 20))); do
		grep -q "$2" "$L7_TMP/$1.err" 2>/dev/null && return 0
		kill -0 "${_l7_pid[$1]}" 2>/dev/null || break
		sleep 0.05
	done
	echo "  $1 did not start; its stderr:" >&2
	sed 's/^/    /' "$L7_TMP/$1.err" >&2
	return 1
}

mock_start() {
	local name=$1; shift
	[ -x "$MOCK_BIN" ] || { echo "  $MOCK_BIN missing: make build/mock-llm" >&2; return 1; }
	_bg "$name" "$MOCK_BIN" --listen 127.0.0.1:0 "$@"
	_wait_log "$name" "listening on" 10 || return 1
	MOCK_PORT=$(sed -n 's/.*listening on .*:\([0-9]*\)$/\1/p' "$L7_TMP/$name.err" | head -1)
	[ -n "$MOCK_PORT" ]
}

# l7_start NAME CONF_TEXT: the config's "metrics ADDR" line is remembered
# for l7_metric.
l7_start() {
	local name=$1 conf=$L7_TMP/$1.conf
	[ -x "$L7_BIN" ] || { echo "  $L7_BIN missing: make build/san/sluice-l7" >&2; return 1; }
	printf '%s\n' "$2" >"$conf" && chmod 600 "$conf" || return 1
	_l7_metrics[$name]=$(awk '$1 == "metrics" { print $2 }' "$conf")
	_bg "$name" "$L7_BIN" -c "$conf"
	_wait_log "$name" "listening on" 15
}

l7_alive() { kill -0 "${_l7_pid[$1]}" 2>/dev/null; }

# A sanitizer report, or UBSan's "runtime error", anywhere in NAME's stderr.
l7_san_report() {
	grep -E 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:|SUMMARY: (Address|Undefined|Leak)' \
		"$L7_TMP/$1.err"
}

l7_stop() {
	local name=$1 pid=${_l7_pid[$1]:-} st rc
	[ -n "$pid" ] || return 1
	t_stop "$pid" "$L7_TMP/$name.err" 15
	st=$?
	rc=$T_RC
	unset "_l7_pid[$name]"
	[ "$st" = 1 ] && return 1
	if [ "$st" = 0 ] && [ "$rc" != 0 ]; then
		echo "  $name: exit status $rc; the end of its stderr:" >&2
		tail -20 "$L7_TMP/$name.err" | sed 's/^/    /' >&2
		return 1
	fi
	if l7_san_report "$name" >/dev/null; then
		echo "  $name: sanitizer report on stderr:" >&2
		grep -E -A12 'ERROR:|runtime error:' "$L7_TMP/$name.err" | head -40 | sed 's/^/    /' >&2
		return 1
	fi
}

l7_scrape() { in_ns curl -s --max-time 5 "http://${_l7_metrics[$1]}/metrics"; }

l7_metric() {
	l7_scrape "$1" | awk -v s="$2" '$1 == s { v = $2 } END { print v == "" ? 0 : v }'
}

l7_wait_metric() {
	local v end=$((SECONDS + $4))
	while :; do
		v=$(l7_metric "$1" "$2")
		[ "$v" = "$3" ] && return 0
		[ "$SECONDS" -lt "$end" ] || break
		sleep 0.1
	done
	echo "  $1: $2 is $v, not $3, after $4 s" >&2
	return 1
}

l7req() { in_ns "$L7_PY" "$L7_LIB/l7bad_client.py" req "$@"; }

jget() { jq -r "$2" <<<"$1"; }

# mock_stat PORT FILTER: a value from the mock's GET /stats.
mock_stat() {
	in_ns curl -s --max-time 5 "http://127.0.0.1:$1/stats" | jq -r "$2"
}

l7_cleanup() {
	local n
	for n in "${!_l7_pid[@]}"; do
		kill -TERM "${_l7_pid[$n]}" 2>/dev/null
	done
	sleep 0.5
	for n in "${!_l7_pid[@]}"; do
		pkill -KILL -P "${_l7_pid[$n]}" 2>/dev/null # timeout's child
		kill -KILL "${_l7_pid[$n]}" 2>/dev/null
		wait "${_l7_pid[$n]}" 2>/dev/null
	done
	if [ -n "${L7_KEEP:-}" ]; then
		echo "  logs kept in $L7_TMP" >&2
	else
		rm -rf "$L7_TMP"
	fi
}
