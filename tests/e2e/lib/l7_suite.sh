# shellcheck shell=bash
# tests/e2e/lib/l7_suite.sh - the preamble of the sluice-l7 suites that run
# on loopback (l7_policy, l7_fleet, l7_sdk, ...): the binaries, a temporary
# directory, the processes to stop at exit, and the small questions they all
# ask. Source it after tests/lib.sh, then call l7_suite_begin. (In lib/ so
# tests/run.sh does not take it for a suite. The namespace suites use
# l7bad_lib.sh.)
#
#   l7_suite_begin TITLE [TOOL...]   checks build/san/sluice-l7, build/mock-llm
#                      and each TOOL (curl and jq always); sets L7, MOCK, PY,
#                      CLIENT, TMP; an EXIT trap stops every pid in PIDS, runs
#                      l7_suite_cleanup_hook if the suite defines it, and
#                      removes TMP. A missing piece: "not ok TITLE setup", exit 1.
#   free_port          a loopback TCP port nobody listens on
#   wait_log FILE TEXT [TRIES]   TEXT appears in FILE within TRIES/10 s (100)
#   not_grep TEXT FILE true if FILE lacks TEXT, else shows FILE's head
#   no_san_report FILE true if FILE has no sanitizer report
#   metric PORT SERIES a sample's value from 127.0.0.1:PORT/metrics, 0 if absent
#   wait_metric PORT SERIES VALUE   the sample reads VALUE within 5 s
#   within PCT ACTUAL EXPECTED   |ACTUAL - EXPECTED| <= PCT% of EXPECTED
#   mock_start NAME [OPTION...]  build/mock-llm on a free port: MOCK_PORT_NAME,
#                      MOCK_PID_NAME (mock_start_on NAME LISTEN [OPTION...]:
#                      on LISTEN); mock_stats PORT, mock_reset PORT
#   l7_start NAME CONFIG-BODY    sluice-l7 with CONFIG-BODY after its own
#                      listen/metrics lines: L7_PORT_NAME, L7_MPORT_NAME,
#                      L7_PID_NAME; $TMP/NAME.cfg (mode 600), $TMP/NAME.err.
#                      l7_write_cfg NAME CONFIG-BODY rewrites it (a reload)
#   l7_stop NAME       SIGTERM: checks exit status 0 and no sanitizer report
L7_SUITE_LIB=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
L7_SUITE_ROOT=$(cd "$L7_SUITE_LIB/../../.." && pwd)
BUILD=${SLUICE_BUILD:-$L7_SUITE_ROOT/build}
L7=${SLUICE_L7:-$BUILD/san/sluice-l7}
MOCK=${MOCK_LLM:-$BUILD/mock-llm}
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
CLIENT="$PY $L7_SUITE_LIB/l7_client.py"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
PIDS=()
TMP=""

# SIGTERM, then SIGKILL for what still runs 5 s later (a hung process must
# not hang the suite).
_l7_suite_cleanup() {
	local p i
	for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
	for ((i = 0; i < 50; i++)); do
		for p in "${PIDS[@]}"; do kill -0 "$p" 2>/dev/null && break; done
		kill -0 "$p" 2>/dev/null || break
		sleep 0.1
	done
	for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
	if declare -F l7_suite_cleanup_hook >/dev/null; then
		l7_suite_cleanup_hook
	fi
	[ -n "$TMP" ] && rm -rf "$TMP"
}

l7_suite_begin() {
	local title=$1 b tool; shift
	for b in "$L7" "$MOCK"; do
		if [ ! -x "$b" ]; then
			echo "not ok $title setup: $b is missing (make build/san/sluice-l7 build/mock-llm)"
			exit 1
		fi
	done
	for tool in curl jq "$@"; do
		if ! command -v "$tool" >/dev/null; then
			echo "not ok $title setup: $tool is missing (apt-get install $tool)"
			exit 1
		fi
	done
	TMP=$(mktemp -d "/tmp/sluice-${title// /-}.XXXXXX") || {
		echo "not ok $title setup: mktemp failed"
		exit 1
	}
	trap _l7_suite_cleanup EXIT
}

# Bound to 0 and let go: the kernel does not hand it out again at once.
free_port() {
	"$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

wait_log() {
	local i
	for ((i = 0; i < ${3:-100}; i++)); do
		grep -q -- "$2" "$1" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}

not_grep() {
	if grep -q -- "$1" "$2"; then
		sed -n '1,40p' "$2" >&2
		return 1
	fi
	return 0
}

no_san_report() {
	not_grep 'ERROR: AddressSanitizer\|ERROR: LeakSanitizer\|runtime error:\|SUMMARY: ' "$1"
}

metric() {
	curl -sf --max-time 5 "http://127.0.0.1:$1/metrics" |
		awk -v m="$2" '$1 == m { v = $2; f = 1 } END { print f ? v : 0 }'
}

wait_metric() {
	local i
	for ((i = 0; i < 50; i++)); do
		[ "$(metric "$1" "$2")" = "$3" ] && return 0
		sleep 0.1
	done
	return 1
}

within() {
	awk -v p="$1" -v a="$2" -v e="$3" 'BEGIN { d = a - e; if (d < 0) d = -d;
		exit !(e > 0 && d <= e * p / 100) }'
}

# mock_start_on NAME LISTEN [OPTIONS]: starts mock-llm on LISTEN (port 0: a
# free one); sets MOCK_PORT_<NAME> and MOCK_PID_<NAME>. mock_start NAME
# [OPTIONS]: on 127.0.0.1, a free port.
mock_start_on() {
	local name=$1 listen=$2 err=$TMP/mock-$1.err pid port; shift 2
	"$MOCK" --listen "$listen" "$@" 2>"$err" &
	pid=$!
	PIDS+=("$pid")
	if ! wait_log "$err" "listening on"; then
		echo "  mock-llm $name did not start: $(cat "$err")" >&2
		return 1
	fi
	port=$(sed -n 's/.*listening on .*:\([0-9]*\).*/\1/p' "$err" | head -n1)
	printf -v "MOCK_PORT_$name" %s "$port"
	printf -v "MOCK_PID_$name" %s "$pid"
}
mock_start() {
	local name=$1; shift
	mock_start_on "$name" 127.0.0.1:0 "$@"
}

mock_stats() { curl -sf --max-time 5 "http://127.0.0.1:$1/stats"; }
mock_reset() { curl -sf --max-time 5 -X POST "http://127.0.0.1:$1/stats/reset" >/dev/null; }

# l7_start NAME CONFIG-BODY: sluice-l7 (ASan) with CONFIG-BODY after its own
# listen/metrics lines; sets L7_PORT_<NAME>, L7_MPORT_<NAME>, L7_PID_<NAME>.
# The config file is $TMP/NAME.cfg (mode 600), its stderr $TMP/NAME.err.
l7_write_cfg() {
	local name=$1 body=$2
	(umask 077; printf 'listen 127.0.0.1:%s\nmetrics 127.0.0.1:%s\n%s\n' \
		"$(eval echo "\$L7_PORT_$name")" "$(eval echo "\$L7_MPORT_$name")" "$body" \
		>"$TMP/$name.cfg")
}
# L7_WRAP: the command sluice-l7 runs under (none by default; l7_tls.sh gives
# it a private /etc/hosts), the exec'ing kind, so $! stays sluice-l7's pid.
L7_WRAP=()
l7_start() {
	local name=$1 body=$2 pid
	printf -v "L7_PORT_$name" %s "$(free_port)"
	printf -v "L7_MPORT_$name" %s "$(free_port)"
	l7_write_cfg "$name" "$body"
	"${L7_WRAP[@]}" "$L7" -c "$TMP/$name.cfg" 2>"$TMP/$name.err" &
	pid=$!
	PIDS+=("$pid")
	printf -v "L7_PID_$name" %s "$pid"
	if ! wait_log "$TMP/$name.err" "listening on"; then
		echo "  sluice-l7 $name did not start: $(cat "$TMP/$name.err")" >&2
		return 1
	fi
}

# l7_stop NAME: SIGTERM; exit status 0 and no sanitizer report (t_stop:
# a hang in LeakSanitizer's own check after a complete shutdown is said, not
# failed).
l7_stop() {
	local name=$1 pid st
	pid=$(eval echo "\$L7_PID_$name")
	t_stop "$pid" "$TMP/$name.err"
	st=$?
	t_expect "sluice-l7 $name stops on SIGTERM" "$st" -ne 1
	[ "$st" = 0 ] && t_expect "sluice-l7 $name exits 0 on SIGTERM" "$T_RC" -eq 0
	t_check "no sanitizer report in sluice-l7 $name's stderr" no_san_report "$TMP/$name.err"
}
