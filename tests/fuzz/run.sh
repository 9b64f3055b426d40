#!/usr/bin/env bash
# Fuzzes sluice-l7's HTTP parser and token accounting (tests/fuzz/fuzz_l7.c):
# first every seed in tests/fuzz/corpus/ once, then FUZZ_SECONDS (default 30)
# of libFuzzer from a scratch copy of the seeds, so the checked-in corpus is
# left as it is. Output follows tests/run.sh: "ok NAME" / "not ok NAME: why".
# Usage: SLUICE_BUILD=build tests/fuzz/run.sh
set -u
here=$(cd "$(dirname "$0")" && pwd)
build=${SLUICE_BUILD:-$here/../../build}
fuzzer=$build/fuzz-l7
seconds=${FUZZ_SECONDS:-30}
seeds=$here/corpus

if [ ! -x "$fuzzer" ]; then
	echo "not ok fuzz-l7-seeds: $fuzzer not built (run: make build/fuzz-l7)"
	exit 1
fi
case "$seconds" in
'' | *[!0-9]*)
	echo "not ok fuzz-l7: FUZZ_SECONDS must be a whole number of seconds, not '$seconds'"
	exit 1
	;;
esac

work=$(mktemp -d /tmp/sluice-fuzz.XXXXXX) || {
	echo "not ok fuzz-l7: cannot create a temporary directory in /tmp"
	exit 1
}
# Crash files are kept out of the scratch directory so they outlive it.
crashes=${FUZZ_ARTIFACTS:-$build/fuzz-artifacts}
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/corpus" "$crashes" || {
	echo "not ok fuzz-l7: cannot create $work/corpus or $crashes"
	exit 1
}

# Leak checking stays on (sse_scan and jansson allocate); a crash stops the run.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}:abort_on_error=0
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

failed=0
crash_of() {
	# libFuzzer names what it saved: "Test unit written to PATH"
	sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$1" | tail -1
}

# 1. every seed once
nseeds=$(find "$seeds" -type f | wc -l)
if [ "$nseeds" = 0 ]; then
	echo "not ok fuzz-l7-seeds: no seed files in $seeds"
	failed=1
elif "$fuzzer" -runs=0 "$seeds" >"$work/seeds.log" 2>&1; then
	echo "ok fuzz-l7-seeds ($nseeds seeds)"
else
	echo "not ok fuzz-l7-seeds: a seed fails; output follows"
	tail -30 "$work/seeds.log" | sed 's/^/  /'
	failed=1
fi

# 2. fuzz for a bounded time
cp "$seeds"/* "$work/corpus/" 2>/dev/null
"$fuzzer" -max_total_time="$seconds" -max_len=8192 -timeout=10 -rss_limit_mb=1024 \
	-print_final_stats=1 -artifact_prefix="$crashes/" "$work/corpus" >"$work/fuzz.log" 2>&1
rc=$?
execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/fuzz.log" | tail -1)
if [ "$rc" = 0 ] && [ -n "$execs" ] && [ "$execs" -gt 0 ]; then
	echo "ok fuzz-l7 ($execs executions in ${seconds} s)"
else
	crash=$(crash_of "$work/fuzz.log")
	if [ -n "$crash" ]; then
		echo "not ok fuzz-l7: crash after ${execs:-?} executions, input saved in $crash" \
			"(replay: $fuzzer $crash)"
	else
		echo "not ok fuzz-l7: libFuzzer exited with status $rc and saved no input; output follows"
	fi
	grep -E 'ERROR|invariant broken|SUMMARY|runtime error' "$work/fuzz.log" | head -10 |
		sed 's/^/  /'
	failed=1
fi
exit "$failed"
