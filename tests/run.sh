#!/usr/bin/env bash
# Runs every test suite and prints one closing line: "N passed, N failed".
#
# A suite is an executable that prints one line per test case:
#   ok NAME            the case passed (and made at least one check)
#   not ok NAME: WHY   it failed
# A suite that exits non-zero without reporting a failure counts as one.
# Without root, only the suites that need none run (the pure unit tests,
# the fuzzer's); the rest are named as skipped before the closing line. A
# run in which no test ran fails.
# Usage: tests/run.sh [BUILD_DIR] [SUITE_FILTER]
set -u
build=${1:-build}
filter=${2:-}
here=$(cd "$(dirname "$0")" && pwd)
export SLUICE_BUILD=$(cd "$build" && pwd)
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

root=0
[ "$(id -u)" = 0 ] && root=1

passed=0 failed=0
skipped=()
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

# run_root_suite NAME CMD...: a suite that needs root, skipped without it.
run_root_suite() {
	if [ "$root" = 1 ]; then
		run_suite "$@"
	else
		case "$1" in *"$filter"*) skipped+=("$1") ;; esac
	fi
}

# The unit tests' two groups (tests/unit/harness.h): pure needs no root.
run_suite unit "$SLUICE_BUILD/unit-tests" --group pure
run_suite unit-asan-ubsan "$SLUICE_BUILD/san/unit-tests" --group pure
run_root_suite unit-bpf "$SLUICE_BUILD/unit-tests" --group bpf
run_root_suite unit-bpf-asan-ubsan "$SLUICE_BUILD/san/unit-tests" --group bpf
run_suite fuzz-l7 "$here/fuzz/run.sh"
for t in "$here"/cli/*.sh; do
	[ -e "$t" ] && run_root_suite "cli/$(basename "$t" .sh)" "$t"
done
for t in "$here"/e2e/*.sh; do
	[ -e "$t" ] && run_root_suite "e2e/$(basename "$t" .sh)" "$t"
done

# A run that ran nothing (every suite skipped, or a filter that matches
# none) must not pass.
if [ $((passed + failed)) = 0 ]; then
	echo "not ok run.sh: no test ran${filter:+ (filter '$filter')}"
	failed=1
fi

echo
if [ "${#skipped[@]}" != 0 ]; then
	echo "skipped ${#skipped[@]} suites, which need root (they load BPF programs, pin maps or" \
		"create network namespaces): ${skipped[*]}"
fi
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
