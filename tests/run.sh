#!/usr/bin/env bash
# Runs every test suite and prints one closing line: "N passed, N failed".
#
# A suite is an executable that prints one line per test case:
#   ok NAME            the case passed (and made at least one check)
#   not ok NAME: WHY   it failed
# A suite that exits non-zero without reporting a failure counts as one.
# Usage: tests/run.sh [BUILD_DIR] [SUITE_FILTER]
set -u
build=${1:-build}
filter=${2:-}
here=$(cd "$(dirname "$0")" && pwd)
export SLUICE_BUILD=$(cd "$build" && pwd)
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

if [ "$(id -u)" != 0 ]; then
	echo "tests need root (they load BPF programs and create network namespaces)" >&2
	echo "0 passed, 1 failed"
	exit 1
fi

passed=0 failed=0
run_suite() {
	local name=$1; shift
	local out rc p f start
	case "$name" in *"$filter"*) ;; *) return ;; esac
	echo "== $name"
	out=$(mktemp)
	start=$SECONDS
	timeout 600 "$@" > >(tee "$out") 2>&1
	rc=$?
	sleep 0.2 # let tee finish
	echo "== $name: $((SECONDS - start)) s"
	p=$(grep -c '^ok ' "$out")
	f=$(grep -c '^not ok ' "$out")
	if [ "$rc" != 0 ] && [ "$f" = 0 ]; then
		echo "not ok $name: suite exited with status $rc"
		f=1
	fi
	passed=$((passed + p))
	failed=$((failed + f))
	rm -f "$out"
}

run_suite unit "$SLUICE_BUILD/unit-tests"
run_suite unit-asan-ubsan "$SLUICE_BUILD/san/unit-tests"
run_suite fuzz-l7 "$here/fuzz/run.sh"
for t in "$here"/cli/*.sh; do
	[ -e "$t" ] && run_suite "cli/$(basename "$t" .sh)" "$t"
done
for t in "$here"/e2e/*.sh; do
	[ -e "$t" ] && run_suite "e2e/$(basename "$t" .sh)" "$t"
done

echo
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
