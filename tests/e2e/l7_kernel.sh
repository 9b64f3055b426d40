#!/usr/bin/env bash
# tests/e2e/l7_kernel.sh - sluice-l7's ties to the kernel side: the signals
# it writes into sluice_signals, and the bans it puts on the XDP deny list.
#
# Topology (tests/e2e/lib/net.sh): clients in $NS_S on 198.18.0.x, sluice
# attached (XDP and TC) to the backend veth in $NS_B. sluice-l7 (ASan+UBSan
# build) listens on $NS_B's veth address, mock-llm on $NS_B's 127.0.0.1;
# both run with nsenter --net so they see this suite's pins. signals-port is
# the mock's port, which no packet on the veth uses: every count under it is
# sluice-l7's. Each count is checked against the client's own count.
# The case without pins runs on the host's loopback, with the suite's pin
# root before anything is pinned there; that instance keeps running while
# the topology attaches sluice, and its signals must then arrive.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib.sh"
. "$here/lib/net.sh"
. "$here/lib/l7bad_lib.sh"
cleanup() { l7_cleanup; net_cleanup; }
trap cleanup EXIT

GOOD4=198.18.0.3   # well behaved: a key with room to spare
COUNT4=198.18.0.4  # a few 429s, under deny-after
HAMMER4=198.18.0.2 # hammers a tight key until it is banned

# load SRC HOST PORT N ARGS...: l7k_load.py from SRC in the client namespace
# ("" SRC: on the host).
load() {
	local src=$1; shift
	if [ -n "$src" ]; then
		ip netns exec "$NS_S" timeout 120 "$PY" "$E2E_DIR/l7k_load.py" "$@" --src "$src"
	else
		timeout 120 "$PY" "$E2E_DIR/l7k_load.py" "$@"
	fi
}
st() { jq -r ".status[\"$2\"] // 0" <<<"$1"; }

# --- without pins -------------------------------------------------------
t_begin "l7 kernel: without sluice attached, sluice-l7 serves, warns once, counts dropped signals"
# The suite's own pin root: nothing has pinned there yet (the topology below
# attaches sluice later, while this instance runs).
nopins=$SLUICE_PIN_ROOT
ok=1
t_check "mock-llm starts (host loopback)" mock_start mock0 --latency-ms 5 || ok=0
MOCK0_PORT=$MOCK_PORT
P0=$(free_port) M0=$(free_port)
t_check "sluice-l7 starts, kernel on, pin root $nopins (absent)" \
	env SLUICE_PIN_ROOT="$nopins" bash -c '[ ! -e "$SLUICE_PIN_ROOT" ]'
SLUICE_PIN_ROOT=$nopins l7_start nopins "listen 127.0.0.1:$P0
backend 127.0.0.1:$MOCK_PORT
metrics 127.0.0.1:$M0
kernel on
period 6s
tier std rpm 60000 tpm 100000000
default-tier std" || ok=0
t_expect "sluice-l7 started" "$ok" -eq 1
r=$(load "" 127.0.0.1 "$P0" 5 --gap 0.4)
echo "  client: $r" >&2
t_expect "5 answers 200" "$(st "$r" 200)" -eq 5
sleep 1.5 # past a few of its once-a-second looks for the pins
t_check "still serving after its retries" l7_alive nopins
t_expect "one warning that signals and bans are off" \
	"$(grep -c 'kernel signals and bans are off' "$L7_TMP/nopins.err")" -eq 1
dropped=$(l7_metric nopins 'sluice_l7_signal_events_total{result="dropped"}')
echo "  signal events dropped: $dropped" >&2
# requests, responses, http_2xx and the response, total and per-token
# latencies: six events a request.
t_expect "signal events dropped: six per request" "$dropped" -eq 30
t_expect "signal events written" \
	"$(l7_metric nopins 'sluice_l7_signal_events_total{result="written"}')" -eq 0
t_check "the pin root is still absent (nothing created it)" [ ! -e "$nopins" ]
t_end

# --- with sluice attached -------------------------------------------------
setup_ok=1
t_begin "l7 kernel: topology, sluice attached, mock-llm and sluice-l7 in the server namespace"
t_check "build the namespaces and veth" net_setup || setup_ok=0
t_check "attach sluice (XDP and TC) to the server veth" net_attach || setup_ok=0
# shellcheck disable=SC2034 # l7bad_lib.sh runs everything in it from here on
L7_NS=$NS_B
t_check "mock-llm starts (latency 50 ms)" mock_start mock --latency-ms 50 --token-ms 2 || setup_ok=0
LP=$(free_port) MP=$(free_port)
t_check "sluice-l7 starts on $DST4:$LP" l7_start main "listen $DST4:$LP
backend 127.0.0.1:$MOCK_PORT
metrics 127.0.0.1:$MP
signals-port $MOCK_PORT
period 6s
key-header x-api-key
deny-after 10 within 10s ban 30s
idle-timeout 3s
tier std rpm 60000 tpm 100000000
tier tight rpm 6 rpm-burst 1 tpm 100000000
default-tier std
key sk-good tier std
key sk-count tier tight
key sk-tight tier tight" || setup_ok=0
t_check "no 'kernel ... off' warning: it found the pins" \
	bash -c '! grep -q "kernel signals.* off" "$1"' _ "$L7_TMP/main.err"
t_end
[ "$setup_ok" = 1 ] || exit 1

sig() { sluice_signal "$MOCK_PORT" "$1"; }

# The instance started without pins (on the host's loopback) finds them
# within a second of the attach above, and its signals start to arrive.
t_begin "l7 kernel: sluice attached while sluice-l7 runs: its signals arrive from then on"
sleep 1.5 # its once-a-second look for the pins
r=$(load "" 127.0.0.1 "$P0" 5 --gap 0.1)
t_expect "5 answers 200" "$(st "$r" 200)" -eq 5
sleep 0.5 # flushed every 100 ms
t_expect "sluice signals for its port: 5 requests" \
	"$(sluice_signal "$MOCK0_PORT" .counters.requests)" -eq 5
t_expect "sluice signals for its port: 5 total latencies" \
	"$(sluice_signal "$MOCK0_PORT" .total.count)" -eq 5
t_expect "signal events written: six per request" \
	"$(L7_NS='' l7_metric nopins 'sluice_l7_signal_events_total{result="written"}')" -eq 30
t_check "SIGTERM: exit 0, no sanitizer report" l7_stop nopins
t_end

t_begin "l7 kernel: signals for N requests (JSON and streamed) match the client's counts"
rj=$(load "$GOOD4" "$DST4" "$LP" 20 --key sk-good)
rs=$(load "$GOOD4" "$DST4" "$LP" 10 --key sk-good --stream)
echo "  client JSON: $(jq -c 'del(.ttfb_ms)' <<<"$rj")" >&2
echo "  client streamed: $(jq -c 'del(.ttfb_ms)' <<<"$rs")" >&2
n=$(($(st "$rj" 200) + $(st "$rs" 200)))
t_expect "client: 30 answers 200" "$n" -eq 30
t_expect "client: 30 complete bodies (usage / data: [DONE])" \
	$(($(jget "$rj" .complete) + $(jget "$rs" .complete))) -eq 30
sleep 0.5 # sluice-l7 flushes every 100 ms
echo "  sluice signals $MOCK_PORT: $(sig . | jq -c '{response, total, per_token, counters}')" >&2
t_expect "requests" "$(sig .counters.requests)" -eq "$n"
t_expect "responses" "$(sig .counters.responses)" -eq "$n"
t_expect "http_2xx" "$(sig .counters.http_2xx)" -eq "$n"
t_expect "no http_5xx" "$(sig .counters.http_5xx)" -eq 0
t_expect "response (TTFB) histogram count" "$(sig .response.count)" -eq "$n"
t_expect "total histogram count" "$(sig .total.count)" -eq "$n"
t_expect "per_token histogram count (every answer had tokens)" "$(sig .per_token.count)" -eq "$n"
p50=$(sig .response.p50_ms)
t_check "client's own TTFB p50 ($(jget "$rj" .p50_ttfb_ms) ms) within 20% of the mock's 50 ms" \
	within 20 "$(jget "$rj" .p50_ttfb_ms)" 50
t_check "response p50 ($p50 ms) within 20% of the mock's 50 ms" within 20 "$p50" 50
t_check "total p50 ($(sig .total.p50_ms) ms) at least the response p50" \
	awk -v t="$(sig .total.p50_ms)" -v r="$p50" 'BEGIN { exit !(t >= r) }'
t_expect "the mock answered sk-good $n times" "$(mock_stat "$MOCK_PORT" '.by_key["sk-good"] // 0')" -eq "$n"
t_end

t_begin "l7 kernel: l7_429 equals the 429s the client got"
r=$(load "$COUNT4" "$DST4" "$LP" 8 --key sk-count)
echo "  client: $(jq -c 'del(.ttfb_ms)' <<<"$r")" >&2
n429=$(st "$r" 429) n200=$(st "$r" 200)
t_expect "client: some 429s (rpm 6 per 6 s, burst 1, 8 at once)" "$n429" -ge 5
t_expect "client: every request answered 200 or 429" $((n429 + n200)) -eq 8
sleep 0.5
t_expect "sluice signals l7_429" "$(sig .counters.l7_429)" -eq "$n429"
t_expect "requests: only the admitted ones reached the backend" "$(sig .counters.requests)" -eq $((n + n200))
t_expect "sluice_l7_rejections_total{tier=tight,...} agrees" \
	"$(l7_scrape main | awk '/^sluice_l7_rejections_total\{tier="tight"/ { s += $2 } END { print s + 0 }')" -eq "$n429"
t_expect "no ban: under deny-after" "$(l7_metric main sluice_l7_bans_total)" -eq 0
t_end

t_begin "l7 kernel: deny escalation: 10 429s within 10 s -> banned at XDP; others still served"
# XDP's drops of listed sources: 'deny' for static entries, 'ban' for bans.
listed_drops() { stats_get '(.drops.deny // 0) + (.drops.ban // 0)'; }
deny_before=$(listed_drops)
r=$(load "$HAMMER4" "$DST4" "$LP" 30 --key sk-tight --timeout 2)
echo "  hammering client: $(jq -c 'del(.ttfb_ms)' <<<"$r")" >&2
t_expect "hammer: exactly deny-after (10) answers 429" "$(st "$r" 429)" -eq 10
t_expect "hammer: then no answer at all (its packets dropped)" "$(jget "$r" .timeouts)" -eq 1
t_expect "sluice_l7_bans_total" "$(l7_metric main sluice_l7_bans_total)" -eq 1
dl=$("$SLUICE" deny list --json)
echo "  deny list: $(jq -c . <<<"$dl")" >&2
t_check "$HAMMER4/32 is on the deny list" \
	[ "$(jq -r --arg p "$HAMMER4/32" '[.[] | select(.prefix == $p)] | length' <<<"$dl")" = 1 ]
t_check "as a ban by sluice-l7" [ "$(jq -r --arg p "$HAMMER4/32" '.[] | select(.prefix == $p) |
	"\(.kind) \(.by)"' <<<"$dl")" = "ban sluice-l7" ]
t_check "and nothing else" [ "$(jq length <<<"$dl")" = 1 ]
t_check "with a timeout of at most 30 s" \
	[ "$(jq -r --arg p "$HAMMER4/32" '.[] | select(.prefix == $p) |
		(.expires_in // 0) | (. > 0 and . <= 30)' <<<"$dl")" = true ]
c=$(ip netns exec "$NS_S" timeout 30 "$PY" "$E2E_DIR/l7bad_client.py" req "$DST4" "$LP" 'post(CHAT)' --src "$HAMMER4")
t_check "a new connection from $HAMMER4 times out ($(jget "$c" .error))" \
	grep -q 'timed out' <<<"$(jget "$c" .error)"
t_expect "XDP counted drops of listed sources" "$(listed_drops)" -gt "$deny_before"
r=$(load "$GOOD4" "$DST4" "$LP" 10 --key sk-good)
t_expect "$GOOD4 with sk-good: 10 answers 200" "$(st "$r" 200)" -eq 10
r=$(load "$COUNT4" "$DST4" "$LP" 3 --key sk-good)
t_expect "$COUNT4 (some 429s earlier, under deny-after): 3 answers 200" "$(st "$r" 200)" -eq 3
t_expect "still one ban" "$(l7_metric main sluice_l7_bans_total)" -eq 1
t_end

# sluiced adopts the running attachment and applies its own file as a
# declarative diff: sluice-l7's ban (kind ban) must survive it, and the
# daemon's adaptive controller for the signals port must see the latency
# sluice-l7 measured (the mock answers after 50 ms).
t_begin "l7 kernel: sluiced adopts it: sluice-l7's ban stays; its controller reads sluice-l7's latency"
SLUICED=${SLUICED:-${SLUICE_BUILD:-build}/sluiced}
DCONF=$L7_TMP/sluiced.conf DLOG=$L7_TMP/sluiced.log DMP=$(free_port)
cat >"$DCONF" <<EOF
interface $DEV_B mode native
metrics 127.0.0.1:$DMP
rule add name l7svc proto tcp dport $MOCK_PORT conn-rate 1000
adaptive port $MOCK_PORT limit conn-rate min 10 max 1000 tick 200
EOF
nsenter --net="/run/netns/$NS_B" "$SLUICED" -f -c "$DCONF" 2>"$DLOG" &
dpid=$!
for _ in $(seq 100); do
	grep -q 'info: running:' "$DLOG" && break
	kill -0 "$dpid" 2>/dev/null || break
	sleep 0.1
done
t_check "sluiced starts, adopting the attachment" grep -q 'info: running:' "$DLOG"
dl=$("$SLUICE" deny list --json)
t_check "after sluiced applied its file, $HAMMER4/32 is still banned by sluice-l7" \
	[ "$(jq -r --arg p "$HAMMER4/32" '.[] | select(.prefix == $p) | "\(.kind) \(.by)"' \
		<<<"$dl")" = "ban sluice-l7" ]
load "$GOOD4" "$DST4" "$LP" 60 --key sk-good >"$L7_TMP/dload.json" &
lpid=$!
lat=NaN
for _ in $(seq 30); do
	sleep 0.2
	lat=$(nsenter --net="/run/netns/$NS_B" curl -s --max-time 5 "http://127.0.0.1:$DMP/metrics" |
		awk -v p="sluice_adaptive_latency_seconds{port=\"$MOCK_PORT\"" \
			'index($0, p) == 1 { print $2 }')
	case "$lat" in '' | NaN) ;; *) break ;; esac
done
wait "$lpid"
echo "  sluiced's controller for port $MOCK_PORT: latency ${lat:-none} s" >&2
t_check "the controller's latency (${lat:-none} s) within 25% of the mock's 0.05 s" \
	within 25 "${lat:-0}" 0.05
kill -TERM "$dpid" 2>/dev/null
for _ in $(seq 100); do kill -0 "$dpid" 2>/dev/null || break; sleep 0.1; done
t_check "sluiced stops on SIGTERM" sh -c "! kill -0 $dpid 2>/dev/null"
wait "$dpid" 2>/dev/null
t_end

# The banned client's keep-alive connection cannot close (its FIN is dropped
# too): sluice-l7's idle-timeout (3 s) must reap it.
t_begin "l7 kernel: sluice-l7 stops cleanly; no client connection left"
t_check "sluice_l7_client_connections back to 0 (idle-timeout 3 s)" \
	l7_wait_metric main sluice_l7_client_connections 0 8
t_check "SIGTERM: exit 0, no sanitizer report" l7_stop main
t_end
