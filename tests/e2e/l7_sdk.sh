#!/usr/bin/env bash
# tests/e2e/l7_sdk.sh - the official `openai` Node SDK (v4) as the client of
# sluice-l7 (ASan, `kernel off`) in front of build/mock-llm, over loopback:
# what an application using the SDK sees. tests/e2e/lib/openai_sdk.js drives
# the SDK and records every exchange through its `fetch` option.
#
#   1. a chat completion and a stream come back as the SDK's objects, with
#      a fresh key's x-ratelimit-remaining next to its limit
#   2. a 429: reported by the SDK (no retries) with retry-after-ms; with one
#      retry allowed, the SDK waits at least that long and is then admitted
#   3. request_too_large: an error the SDK does not retry (x-should-retry:
#      false), though it is allowed two retries
#
# The SDK is installed with npm into $SLUICE_OPENAI_SDK (default
# /tmp/sluice-openai-sdk), once; without node and npm, and as root, Debian's
# nodejs and npm are installed first. When that cannot be done (no
# network, no registry), the suite says why on a "# skipped" line and exits
# 0 without a test, which tests/run.sh counts as nothing run. About 10 s.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib.sh"
. "$here/lib/l7_suite.sh"
SDK=${SLUICE_OPENAI_SDK:-/tmp/sluice-openai-sdk}

skip() { echo "# skipped l7 sdk: $*"; exit 0; }

l7_suite_begin "l7 sdk" python3

# The SDK: node and npm from Debian, openai@4 from the npm registry.
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
	[ "$(id -u)" = 0 ] && command -v apt-get >/dev/null ||
		skip "node and npm are missing (apt-get install nodejs npm)"
	echo "  installing Debian's nodejs and npm" >&2
	timeout 600 apt-get install -y -q nodejs npm >/dev/null 2>"$SDK.apt.err" ||
		skip "apt-get install nodejs npm failed: $(tail -n 1 "$SDK.apt.err")"
fi
if [ ! -f "$SDK/node_modules/openai/package.json" ]; then
	echo "  installing openai@4 into $SDK (npm)" >&2
	mkdir -p "$SDK" || skip "cannot make $SDK"
	timeout 300 npm install --prefix "$SDK" --no-audit --no-fund --loglevel=error openai@4 \
		>/dev/null 2>"$SDK.npm.err" ||
		skip "npm install openai@4 failed (is the registry reachable?): $(tail -n 1 "$SDK.npm.err")"
fi
sdk_version=$(jq -r .version "$SDK/node_modules/openai/package.json")
case "$sdk_version" in
4.*) ;;
*) skip "$SDK holds openai $sdk_version, not 4.x (remove it to reinstall)" ;;
esac

t_begin "l7 sdk setup: openai $sdk_version, mock-llm and sluice-l7 (ASan) start"
t_check "start mock-llm" mock_start B
# rpm 2 per 6 s: two requests, then one every 3 s. tpm 1000: max_tokens 5000
# can never fit.
t_check "start sluice-l7" l7_start S "backend 127.0.0.1:$MOCK_PORT_B
period 6s
kernel off
unknown-keys refuse
tier rpm2 rpm 2 tpm 100000
tier tpm1k rpm 600 tpm 1000
default-tier rpm2
key sk-sdk-rpm tier rpm2
key sk-sdk-tpm tier tpm1k"
LP=$L7_PORT_S MP=$L7_MPORT_S
t_end
[ -z "$_t_fail" ] || exit 1

out=$(timeout 60 node "$here/lib/openai_sdk.js" "$SDK" "http://127.0.0.1:$LP/v1" sk-sdk-rpm sk-sdk-tpm)
rc=$?
echo "  sdk: $(jq -c '{chat, stream, limited: (.limited | {class, status, code, retry_after_ms}),
	retried: (.retried | {ok, elapsed_ms, exchanges}), too_large: (.too_large | {class, status,
	code, should_retry, n: (.exchanges | length)}), total_ms, fatal}' <<<"$out" 2>/dev/null || echo "$out")" >&2
j() { jq -r "$1" <<<"$out" 2>/dev/null; }

t_begin "openai SDK: a chat completion and a stream through sluice-l7"
t_expect "the SDK script ran to the end" "$rc" -eq 0
t_expect "chat: the completion's 5 tokens (usage)" "$(j .chat.completion_tokens)" = 5
t_check "chat: content came back" test -n "$(j '.chat.content // empty')"
t_expect "chat: x-ratelimit-limit-requests is the rpm (burst = rate)" "$(j .chat.limit_requests)" = 2
t_expect "chat: a fresh key's remaining-requests, after this one: 1" "$(j .chat.remaining_requests)" = 1
t_expect "chat: x-ratelimit-limit-tokens is the tpm" "$(j .chat.limit_tokens)" = 100000
t_check "chat: remaining-tokens near the limit (not a tenth of it)" \
	test "$(j '.chat.remaining_tokens // 0')" -ge 99900
t_check "stream: more than one chunk" test "$(j '.stream.chunks // 0')" -gt 1
t_expect "stream: the usage chunk's 4 tokens" "$(j .stream.completion_tokens)" = 4
t_check "stream: text assembled from the deltas" test -n "$(j '.stream.text // empty')"
t_end

t_begin "openai SDK: a 429 with retry-after-ms, honoured by the SDK's retry"
t_expect "no retries: the SDK raised RateLimitError" "$(j .limited.class)" = RateLimitError
t_expect "no retries: status 429" "$(j .limited.status)" = 429
t_expect "no retries: code rate_limit_exceeded" "$(j .limited.code)" = rate_limit_exceeded
ram=$(j '.limited.retry_after_ms // 0')
t_check "no retries: retry-after-ms given ($ram), within the 3 s refill" \
	eval '[ "$ram" -ge 1 ] && [ "$ram" -le 3000 ]'
t_check "no retries: x-request-id on the 429" test -n "$(j '.limited.request_id // empty')"
t_expect "one retry: admitted in the end" "$(j .retried.ok)" = true
t_expect "one retry: two exchanges, 429 then 200" "$(j '[.retried.exchanges[].status] | map(tostring) | join(",")')" = 429,200
wait_ms=$(j '.retried.exchanges[0].retry_after_ms // 0')
gap=$(j '.retried.exchanges[1].sent_ms - .retried.exchanges[0].sent_ms')
echo "  the retry's 429 said retry-after-ms $wait_ms; the SDK resent after $gap ms" >&2
t_check "one retry: the SDK waited retry-after-ms ($wait_ms) before resending ($gap)" \
	eval '[ "$wait_ms" -ge 1 ] && [ "$gap" -ge "$wait_ms" ]'
t_check "one retry: and not much longer (< retry-after-ms + 1.5 s)" \
	eval '[ "$gap" -lt $((wait_ms + 1500)) ]'
t_end

t_begin "openai SDK: request_too_large is an error the SDK does not retry"
t_expect "the SDK raised RateLimitError (a 429)" "$(j .too_large.class)" = RateLimitError
t_expect "status 429" "$(j .too_large.status)" = 429
t_expect "code request_too_large" "$(j .too_large.code)" = request_too_large
t_expect "x-should-retry: false" "$(j .too_large.should_retry)" = false
t_expect "one exchange only, though two retries were allowed" "$(j '.too_large.exchanges | length')" -eq 1
t_check "x-request-id on it" test -n "$(j '.too_large.request_id // empty')"
t_expect "counted as outcome too_large" \
	"$(metric "$MP" 'sluice_l7_requests_total{tier="tpm1k",outcome="too_large"}')" -eq 1
t_end

t_begin "l7 sdk: sluice-l7 stops cleanly (SIGTERM, no sanitizer report)"
l7_stop S
t_end
exit 0
