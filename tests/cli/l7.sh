#!/usr/bin/env bash
# sluice-l7's command line (the sanitized build): --help, usage errors (exit 2
# and one line naming the problem), --check on good and bad files (FILE:LINE;
# a good one's tiers described),
# the mode-600 warning, and a start that fails cleanly (a port in use: exit 1).
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib.sh"
L7=${SLUICE_BUILD:-build}/san/sluice-l7
W=$(mktemp -d /tmp/sluice-l7-cli.XXXXXX)
trap 'rm -rf "$W"' EXIT

run() { OUT=$("$L7" "$@" 2>"$W/err"); RC=$?; ERR=$(cat "$W/err"); }
no_sanitizer() { ! grep -qE 'AddressSanitizer|LeakSanitizer|runtime error:' "$W/err"; }

cat >"$W/good.conf" <<'EOF'
listen 127.0.0.1:18999
backend 127.0.0.1:19999
metrics off
kernel off
tier free priority 0 rpm 60 tpm 10k concurrency 2
tier pro priority 5 rpm 600 tpm 100k concurrency 8
default-tier free
key sk-cli-test-1 tier pro
EOF
chmod 600 "$W/good.conf"

t_begin "--help: usage on stdout, exit 0"
run --help
t_expect "exit status" "$RC" -eq 0
t_check "names -c FILE and --check" grep -q -- '--check' <<<"$OUT"
t_check "nothing on stderr" test -z "$ERR"
t_end

for args in "" "-c" "--bogus" "-c $W/good.conf extra"; do
	t_begin "usage error: sluice-l7 $args -> exit 2, an explanation on stderr"
	# shellcheck disable=SC2086 # args is a list of words
	run $args
	t_expect "exit status ($ERR)" "$RC" -eq 2
	t_check "an explanation on stderr" test -n "$ERR"
	t_check "nothing on stdout" test -z "$OUT"
	t_check "no sanitizer report" no_sanitizer
	t_end
done

t_begin "--check on a good file: a summary, exit 0, no warning"
run --check -c "$W/good.conf"
t_expect "exit status ($ERR)" "$RC" -eq 0
t_check "summary names 2 tiers and 1 key" grep -q '2 tier(s), 1 key(s)' <<<"$OUT"
t_check "no warning" test -z "$ERR"
t_check "each tier's rpm bucket: rate and capacity (burst = rate by default)" \
	grep -q 'rpm  *600 per 1m, bucket capacity (burst) 600' <<<"$OUT"
t_check "the headers a fresh key of tier free will see" \
	grep -q 'x-ratelimit-limit-tokens 10000$' <<<"$OUT"
t_end

t_begin "--check on an https backend with tls-verify off: valid, and a loud warning"
(umask 077; printf 'backend https://llm.example:8443 tls-verify off\ntier t\n' >"$W/insecure.conf")
run --check -c "$W/insecure.conf"
t_expect "exit status ($ERR)" "$RC" -eq 0
t_check "the warning names the backend and says verification is off" \
	grep -q 'backend https://llm.example:8443: TLS verification is OFF' <<<"$ERR"
t_check "no sanitizer report" no_sanitizer
t_end

t_begin "--check on a group-readable file holding keys: a warning to chmod 600"
cp "$W/good.conf" "$W/open.conf"
chmod 644 "$W/open.conf"
run --check -c "$W/open.conf"
t_expect "exit status ($ERR)" "$RC" -eq 0
t_check "the warning says chmod 600" grep -q '600' <<<"$ERR"
t_end

# FILE:LINE: reason for each, and exit 2.
bad() {
	local name=$1 line=$2 text=$3
	printf '%s\n' "$text" >"$W/bad.conf"
	chmod 600 "$W/bad.conf"
	t_begin "--check refuses $name: exit 2, $W/bad.conf:$line"
	run --check -c "$W/bad.conf"
	t_expect "exit status ($ERR)" "$RC" -eq 2
	t_check "the error names the file and line $line" grep -q "bad.conf:$line" <<<"$ERR"
	t_check "no sanitizer report" no_sanitizer
	t_end
}
bad "an unknown directive" 2 $'backend 127.0.0.1:9000\nfrobnicate 3\ntier t'
bad "a key of an undefined tier" 3 $'backend 127.0.0.1:9000\ntier t\nkey sk-1 tier nope'
bad "a host name as backend" 1 $'backend localhost:9000\ntier t'
bad "a wildcard listen without public" 1 $'listen 0.0.0.0:8080\nbackend 127.0.0.1:9000\ntier t'
bad "a duration without a unit" 3 $'backend 127.0.0.1:9000\ntier t\nqueue-timeout 5'

t_begin "a missing file: exit 2, the path and the cause"
run --check -c "$W/none.conf"
t_expect "exit status" "$RC" -eq 2
t_check "names the file" grep -q 'none.conf' <<<"$ERR"
t_end

t_begin "start with the listen port in use: exit 1, the address named, clean exit"
python3 -c 'import socket,sys,time
s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 18999)); s.listen(1); sys.stdout.write("up\n"); sys.stdout.flush(); time.sleep(10)' \
	>"$W/holder.out" &
holder=$!
for _ in $(seq 50); do grep -q up "$W/holder.out" 2>/dev/null && break; sleep 0.1; done
run -c "$W/good.conf"
kill "$holder" 2>/dev/null
wait "$holder" 2>/dev/null
t_expect "exit status ($ERR)" "$RC" -eq 1
t_check "names the address" grep -q '127.0.0.1:18999' <<<"$ERR"
t_check "no sanitizer report" no_sanitizer
t_end

# A stop lets a request in progress finish (its response says close), and
# refuses new connections meanwhile.
t_begin "SIGTERM drains: the request in progress gets its 200, new connections are refused, exit 0"
ports=$(python3 -c 'import socket
ss=[socket.socket() for _ in range(2)]
[s.bind(("127.0.0.1", 0)) for s in ss]
print(" ".join(str(s.getsockname()[1]) for s in ss))')
read -r lport mport <<<"$ports"
"${SLUICE_BUILD:-build}/mock-llm" --listen "127.0.0.1:$mport" 2>"$W/mock.err" &
mock=$!
sed -e "s/18999/$lport/" -e "s/19999/$mport/" "$W/good.conf" >"$W/drain.conf"
chmod 600 "$W/drain.conf"
"$L7" -c "$W/drain.conf" 2>"$W/err" &
l7=$!
for _ in $(seq 50); do
	python3 -c "import socket; socket.create_connection(('127.0.0.1', $lport), 0.2)" \
		2>/dev/null && break
	sleep 0.1
done
python3 - "$lport" >"$W/slow.out" 2>&1 <<'PY' &
import http.client, json, sys, time
c = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]), timeout=10)
c.request("POST", "/v1/chat/completions", body=json.dumps({"messages": [{"role": "user", "content": "hi"}]}),
          headers={"Authorization": "Bearer sk-cli-test-1", "x-mock-latency-ms": "1500"})
print("sent", flush=True)
r = c.getresponse()
r.read()
print(r.status, r.getheader("Connection"))
PY
client=$!
# SIGTERM once the request is at the backend (the mock holds it 1.5 s): a
# fixed sleep lost the race when the client was slow to start on a busy host
for _ in $(seq 100); do grep -q '^sent' "$W/slow.out" 2>/dev/null && break; sleep 0.05; done
sleep 0.3
kill -TERM "$l7"
sleep 0.3
t_check "a new connection is refused while draining" \
	python3 -c "import socket, sys
try:
    socket.create_connection(('127.0.0.1', $lport), 1)
    sys.exit(1)
except ConnectionRefusedError:
    sys.exit(0)"
wait "$client"
wait "$l7"
rc=$?
kill "$mock" 2>/dev/null
wait "$mock" 2>/dev/null
t_check "the request in progress got 200 with Connection: close ($(cat "$W/slow.out"))" \
	grep -q '^200 close$' "$W/slow.out"
t_expect "exit status" "$rc" -eq 0
t_check "the drain was logged" grep -q 'stopping after the 1 open connection' "$W/err"
t_check "no sanitizer report" no_sanitizer
t_end

# IPv6 on both sides: a keyless caller is keyed by its address and gets the
# default tier's headers.
t_begin "IPv6: listen on [::1], backend on [::1]: proxied, keyed by address, headers"
ports=$(python3 -c 'import socket
ss=[socket.socket(socket.AF_INET6) for _ in range(2)]
[s.bind(("::1", 0)) for s in ss]
print(" ".join(str(s.getsockname()[1]) for s in ss))')
read -r lport mport <<<"$ports"
"${SLUICE_BUILD:-build}/mock-llm" --listen "[::1]:$mport" 2>"$W/mock6.err" &
mock=$!
sed -e "s/127.0.0.1:18999/[::1]:$lport/" -e "s/127.0.0.1:19999/[::1]:$mport/" \
	"$W/good.conf" >"$W/v6.conf"
chmod 600 "$W/v6.conf"
"$L7" -c "$W/v6.conf" 2>"$W/err" &
l7=$!
for _ in $(seq 50); do
	python3 -c "import socket; socket.create_connection(('::1', $lport), 0.2)" 2>/dev/null && break
	sleep 0.1
done
out=$(python3 - "$lport" <<'PY'
import http.client, json, sys
c = http.client.HTTPConnection("::1", int(sys.argv[1]), timeout=5)
for i in range(2):
    c.request("POST", "/v1/chat/completions",
              body=json.dumps({"messages": [{"role": "user", "content": "hi"}]}))
    r = c.getresponse()
    r.read()
    print(r.status, r.getheader("x-ratelimit-limit-requests"),
          r.getheader("x-ratelimit-remaining-requests"))
PY
)
kill -TERM "$l7"
wait "$l7"
rc=$?
kill "$mock" 2>/dev/null
wait "$mock" 2>/dev/null
echo "  answers: $(tr '\n' ';' <<<"$out")" >&2
t_check "two answers 200 with the free tier's rpm (60)" \
	[ "$(awk '$1 == 200 && $2 == 60' <<<"$out" | wc -l)" = 2 ]
t_check "the same caller both times (remaining went down)" \
	[ "$(awk 'NR == 1 { a = $3 } NR == 2 { b = $3 } END { print (b < a) }' <<<"$out")" = 1 ]
t_expect "exit status" "$rc" -eq 0
t_check "no sanitizer report" no_sanitizer
t_end
