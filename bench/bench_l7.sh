#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
# bench_l7.sh - requests/s and p99 latency through sluice-l7, against the same
# backend (build/mock-llm) reached directly and behind nginx with limit_req,
# all driven by wrk, interleaved in rounds (docs/benchmarks.md, "sluice-l7");
# then TLS to the backend: sluice-l7 and nginx (proxy_pass https://, pooled,
# sessions reused) in front of mock-llm --tls-cert, with a CA made here.
#
#   bench/bench_l7.sh [BUILD] [--markdown] [--rounds N] [--duration S]
#                     [--connections C] [--no-pin]
#
# Pinning (2 CPUs or more): wrk alone on CPU 0; the server side (backend, and
# the proxy in front of it) on CPU 1. The load generator then never competes
# with what it measures, and every path gets the same one CPU to serve from.
# Everything runs on 127.0.0.1 and is killed and removed on exit.
set -euo pipefail

PROG=bench_l7
BUILD=build
MARKDOWN=0
ROUNDS=5
DURATION=3
CONNS=64
PIN=1
KEY=sk-bench-1

die() { echo "$PROG: $*" >&2; exit 1; }

while [ $# -gt 0 ]; do
	case "$1" in
	--markdown) MARKDOWN=1 ;;
	--rounds) ROUNDS=${2:?--rounds N}; shift ;;
	--duration) DURATION=${2:?--duration S}; shift ;;
	--connections) CONNS=${2:?--connections C}; shift ;;
	--no-pin) PIN=0 ;;
	-h|--help) sed -n '3,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	-*) die "unknown option $1 (see --help)" ;;
	*) BUILD=$1 ;;
	esac
	shift
done
case "$ROUNDS$DURATION$CONNS" in *[!0-9]*) die "--rounds, --duration, --connections take integers" ;; esac
{ [ "$ROUNDS" -ge 1 ] && [ "$ROUNDS" -le 20 ]; } || die "--rounds must be 1..20"
{ [ "$DURATION" -ge 1 ] && [ "$DURATION" -le 30 ]; } || die "--duration must be 1..30 seconds"
{ [ "$CONNS" -ge 1 ] && [ "$CONNS" -le 1000 ]; } || die "--connections must be 1..1000"

L7=$BUILD/sluice-l7
MOCK=$BUILD/mock-llm
[ -x "$L7" ] || die "$L7 not found (run: make $L7)"
[ -x "$MOCK" ] || die "$MOCK not found (run: make $MOCK)"
for t in wrk nginx curl taskset; do
	command -v "$t" >/dev/null || die "$t not found (run: make deps)"
done
NGINX=$(command -v nginx)
if [ "$PIN" = 1 ] && [ "$(nproc)" -lt 2 ]; then
	echo "$PROG: one CPU only: not pinning" >&2
	PIN=0
fi
if [ "$PIN" = 1 ]; then
	CLIENT_CPU=(taskset -c 0)
	SERVER_CPU=(taskset -c 1)
else
	CLIENT_CPU=()
	SERVER_CPU=()
fi

TMP=$(mktemp -d /tmp/sluice-bench-l7.XXXXXX)
PIDS=()
cleanup() {
	local p
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
	redis_stop || true   # redis.sh is not written for set -e
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A port nobody listens on: random in 20000..59999, checked against ss.
used_ports=$(ss -Htanl 2>/dev/null | awk '{ n = split($4, a, ":"); print a[n] }' | sort -u)
PICKED=" "
free_port() {
	local p i
	for i in $(seq 1 200); do
		p=$((20000 + RANDOM % 40000))
		if ! grep -qx "$p" <<<"$used_ports" && [[ "$PICKED" != *" $p "* ]]; then
			PICKED="$PICKED$p "
			echo "$p"
			return 0
		fi
	done
	die "no free port found in 200 tries"
}
P_BACK=$(free_port)     # mock-llm
P_L7=$(free_port)       # sluice-l7, limits that never bind
P_L7_MET=$(free_port)
P_L7S=$(free_port)      # sluice-l7 with a store (redis-server), limits that never bind
P_L7S_MET=$(free_port)
P_L7B=$(free_port)      # sluice-l7, 1000 requests/s that bind
P_L7B_MET=$(free_port)
P_NGX=$(free_port)      # nginx, limit_req that never binds
P_NGXB=$(free_port)     # nginx, 1000 requests/s that bind
P_BACKT=$(free_port)    # mock-llm over TLS
P_L7T=$(free_port)      # sluice-l7 -> https://localhost:P_BACKT
P_L7T_MET=$(free_port)
P_NGXT=$(free_port)     # nginx -> https://localhost:P_BACKT

# Waits (at most 5 s) until a process logs LINE in FILE; fails if it died.
wait_log() {
	local pid=$1 file=$2 line=$3 i
	for i in $(seq 1 100); do
		grep -q "$line" "$file" 2>/dev/null && return 0
		kill -0 "$pid" 2>/dev/null || { cat "$file" >&2; die "$4 exited at startup"; }
		sleep 0.05
	done
	cat "$file" >&2
	die "$4 not ready after 5 s"
}

# --- the backend ----------------------------------------------------------------
"${SERVER_CPU[@]}" "$MOCK" --listen "127.0.0.1:$P_BACK" --completion-tokens 16 \
	>"$TMP/mock.log" 2>&1 &
PIDS+=($!)
declare -A SRV_PID
SRV_PID[direct]=$!
wait_log $! "$TMP/mock.log" "listening on" mock-llm
# The TLS backend: the same mock-llm, serving a certificate of a test CA.
mkdir -p "$TMP/ca"
sh "$(dirname "$0")/../tests/lib/tls_ca.sh" "$TMP/ca" || die "could not make the test CA (openssl)"
"${SERVER_CPU[@]}" "$MOCK" --listen "127.0.0.1:$P_BACKT" --completion-tokens 16 \
	--tls-cert "$TMP/ca/server.pem" --tls-key "$TMP/ca/server.key" >"$TMP/mockt.log" 2>&1 &
PIDS+=($!)
SRV_PID[directtls]=$!
wait_log $! "$TMP/mockt.log" "listening on" "mock-llm (TLS)"

# --- sluice-l7: one tier, one key; every request goes through the per-key
# request and token buckets and the concurrency count, which never bind in
# the open instance and hold the key to 1000 requests/s in the bound one.
l7_conf() {  # PORT METRICS_PORT TIER_LIMITS [BACKEND]
	cat <<EOF
listen 127.0.0.1:$1
backend ${4:-127.0.0.1:$P_BACK}
metrics 127.0.0.1:$2
kernel off
key-header x-api-key
unknown-keys refuse
backend-concurrency 0
tier bench $3
default-tier bench
key $KEY tier bench
EOF
}
l7_conf "$P_L7" "$P_L7_MET" \
	"rpm 1000000000000 tpm 1000000000000000 concurrency 100000" >"$TMP/l7.conf"
l7_conf "$P_L7B" "$P_L7B_MET" \
	"rpm 60000 rpm-burst 100 tpm 1000000000000000 concurrency 100000" >"$TMP/l7b.conf"
# l7s: the open instance's limits, fleet-wide through a private redis-server
# on a unix socket (tests/lib/redis.sh), the store's server on the server CPU.
. "$(dirname "$0")/../tests/lib/redis.sh"
redis_start "$TMP/redis" || die "redis-server did not start (apt-get install redis-server)"
{ l7_conf "$P_L7S" "$P_L7S_MET" "rpm 1000000000000 tpm 1000000000000000 concurrency 100000"
  echo "store redis unix:$REDIS_SOCK timeout 200ms"; } >"$TMP/l7s.conf"
l7_conf "$P_L7T" "$P_L7T_MET" "rpm 1000000000000 tpm 1000000000000000 concurrency 100000" \
	"https://localhost:$P_BACKT tls-ca $TMP/ca/ca.pem" >"$TMP/l7t.conf"
chmod 600 "$TMP/l7.conf" "$TMP/l7b.conf" "$TMP/l7s.conf" "$TMP/l7t.conf"
for n in l7 l7s l7b l7t; do
	"${SERVER_CPU[@]}" "$L7" -c "$TMP/$n.conf" >"$TMP/$n.log" 2>&1 &
	PIDS+=($!)
	SRV_PID[$n]=$!
	wait_log $! "$TMP/$n.log" "listening on" "sluice-l7 ($n)"
done

# --- nginx: its own prefix, pid, logs and temp dirs in $TMP, loopback only,
# one worker (sluice-l7 is one thread), keep-alive to the backend. The rate
# limit is per API key, as sluice-l7's.
mkdir -p "$TMP/nginx"
cat >"$TMP/nginx/nginx.conf" <<EOF
worker_processes 1;
pid $TMP/nginx/nginx.pid;
error_log $TMP/nginx/error.log error;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $TMP/nginx/body;
    proxy_temp_path $TMP/nginx/proxy;
    fastcgi_temp_path $TMP/nginx/fastcgi;
    uwsgi_temp_path $TMP/nginx/uwsgi;
    scgi_temp_path $TMP/nginx/scgi;
    limit_req_zone \$http_x_api_key zone=open:10m rate=1000000r/s;
    limit_req_zone \$http_x_api_key zone=bound:10m rate=1000r/s;
    limit_req_status 429;
    limit_req_log_level warn;
    upstream mock {
        server 127.0.0.1:$P_BACK;
        keepalive 64;
    }
    server {
        listen 127.0.0.1:$P_NGX;
        location / {
            limit_req zone=open burst=1000000 nodelay;
            proxy_pass http://mock;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
    upstream mock_tls {
        server 127.0.0.1:$P_BACKT;
        keepalive 64;
    }
    server {
        listen 127.0.0.1:$P_NGXT;
        location / {
            limit_req zone=open burst=1000000 nodelay;
            proxy_pass https://mock_tls;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_ssl_server_name on;
            proxy_ssl_name localhost;
            proxy_ssl_verify on;
            proxy_ssl_trusted_certificate $TMP/ca/ca.pem;
            proxy_ssl_session_reuse on;
        }
    }
    server {
        listen 127.0.0.1:$P_NGXB;
        location / {
            limit_req zone=bound burst=100 nodelay;
            proxy_pass http://mock;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
EOF
"${SERVER_CPU[@]}" "$NGINX" -p "$TMP/nginx" -e "$TMP/nginx/error.log" -c "$TMP/nginx/nginx.conf" \
	-g 'daemon off;' >"$TMP/nginx/stderr" 2>&1 &
PIDS+=($!)
NGX_PID=$!
for i in $(seq 1 100); do
	curl -s -o /dev/null "http://127.0.0.1:$P_NGX/health" && break
	kill -0 "$NGX_PID" 2>/dev/null || { cat "$TMP/nginx/stderr" "$TMP/nginx/error.log" >&2; die "nginx exited at startup"; }
	[ "$i" -lt 100 ] || die "nginx not answering on 127.0.0.1:$P_NGX after 5 s"
	sleep 0.05
done
# nginx's CPU is its worker's (the master only waits).
SRV_PID[nginx]=$(pgrep -P "$NGX_PID" | tr '\n' ' ')
[ -n "${SRV_PID[nginx]}" ] || die "nginx has no worker process"
SRV_PID[nginxb]=${SRV_PID[nginx]}
SRV_PID[nginxt]=${SRV_PID[nginx]}

# --- the workloads ---------------------------------------------------------------
# One wrk Lua script per workload (wrk's -H needs "name: value" with the
# space, which word splitting would break; a script says it plainly).
cat >"$TMP/bench.lua" <<EOF
wrk.headers["x-api-key"] = "$KEY"
EOF
CHAT_BODY='{"model":"bench","messages":[{"role":"system","content":"You are terse."},{"role":"user","content":"Say hello in five words, please."}],"max_tokens":16}'
cat >"$TMP/chat.lua" <<EOF
wrk.method = "POST"
wrk.body = '$CHAT_BODY'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["x-api-key"] = "$KEY"
EOF
{ cat "$TMP/chat.lua"; echo 'wrk.headers["x-mock-latency-ms"] = "20"'; } >"$TMP/chat20.lua"

declare -A URL
URL[direct]=http://127.0.0.1:$P_BACK
URL[l7]=http://127.0.0.1:$P_L7
URL[l7s]=http://127.0.0.1:$P_L7S
URL[nginx]=http://127.0.0.1:$P_NGX
URL[l7b]=http://127.0.0.1:$P_L7B
URL[nginxb]=http://127.0.0.1:$P_NGXB
URL[directtls]=https://localhost:$P_BACKT
URL[l7t]=http://127.0.0.1:$P_L7T
URL[nginxt]=http://127.0.0.1:$P_NGXT

# Check each path answers as expected before measuring anything.
check() {  # NAME URL WANT_STATUS [curl args]
	local name=$1 url=$2 want=$3 got
	shift 3
	got=$(curl -s -o "$TMP/check.body" -D "$TMP/check.head" -w '%{http_code}' "$@" "$url") || true
	[ "$got" = "$want" ] || { cat "$TMP/check.head" "$TMP/check.body" >&2;
		die "$name: $url answered $got, expected $want"; }
}
for i in $(seq 1 50); do
	curl -s "http://127.0.0.1:$P_L7S_MET/metrics" | grep -q '^sluice_store_up 1' && break
	sleep 0.1
done
curl -s "http://127.0.0.1:$P_L7S_MET/metrics" | grep -q '^sluice_store_up 1' ||
	die "sluice-l7 (l7s): the store is not up after 5 s"
for p in direct l7 l7s nginx; do
	check "$p" "${URL[$p]}/bench" 200 -H "x-api-key: $KEY"
	check "$p" "${URL[$p]}/v1/chat/completions" 200 -H "x-api-key: $KEY" \
		-H 'Content-Type: application/json' -d "$CHAT_BODY"
done
for p in directtls l7t nginxt; do
	check "$p" "${URL[$p]}/v1/chat/completions" 200 --cacert "$TMP/ca/ca.pem" \
		-H "x-api-key: $KEY" -H 'Content-Type: application/json' -d "$CHAT_BODY"
done
# The key is known to sluice-l7 (an unknown one is refused), and its limits
# are evaluated: every answer carries the x-ratelimit headers.
check l7 "${URL[l7]}/bench" 401 -H "x-api-key: sk-not-configured"
curl -s -D - -o /dev/null -H "x-api-key: $KEY" "${URL[l7]}/bench" | grep -qi '^x-ratelimit-limit-requests' ||
	die "sluice-l7 sent no x-ratelimit headers: the limits are not evaluated"

# One wrk run; prints "rps p50_ms p99_ms requests non2xx errors".
run_wrk() {  # URL PATH SCRIPT
	local url=$1 path=$2 script=$3 out
	out=$("${CLIENT_CPU[@]}" wrk -t1 -c"$CONNS" -d"${DURATION}s" --timeout 2s --latency \
		-s "$TMP/$script.lua" "$url$path" 2>&1) || { echo "$out" >&2; die "wrk failed on $url$path"; }
	awk '
	function ms(v) {
		if (v ~ /us$/) return substr(v, 1, length(v) - 2) / 1000
		if (v ~ /ms$/) return substr(v, 1, length(v) - 2) + 0
		if (v ~ /m$/)  return substr(v, 1, length(v) - 1) * 60000
		if (v ~ /s$/)  return substr(v, 1, length(v) - 1) * 1000
		return v + 0
	}
	$1 == "50%" { p50 = ms($2) }
	$1 == "99%" { p99 = ms($2) }
	/requests in/ { n = $1 }
	/^Requests\/sec:/ { rps = $2 }
	/Non-2xx or 3xx responses:/ { bad = $NF }
	/Socket errors:/ { gsub(/,/, ""); err = $4 + $6 + $8 + $10 }
	END {
		if (rps == "" || p99 == "") exit 1
		printf "%.0f %.3f %.3f %d %d %d\n", rps, p50, p99, n, bad, err
	}' <<<"$out" || { echo "$out" >&2; die "could not read wrk's output"; }
}

# CPU time (ns) the processes have run: the first field of schedstat.
cpu_ns() {
	local p s=0 v
	for p in "$@"; do
		read -r v _ <"/proc/$p/schedstat" || die "cannot read /proc/$p/schedstat"
		s=$((s + v))
	done
	echo "$s"
}

backend_requests() {  # all requests mock-llm answered (LLM and other paths)
	curl -s "${URL[direct]}/stats" | sed -n 's/.*"requests":\([0-9]*\).*"other_requests":\([0-9]*\).*/\1 \2/p' |
		awk '{ print $1 + $2 }'
}

# Workloads: NAME, wrk path, wrk arguments.
WL_NAMES=(bench chat chat20)
WL_DESC=("GET /bench (fixed 2-byte 200)"
	 "POST /v1/chat/completions (JSON, usage reconciled)"
	 "POST /v1/chat/completions, backend latency 20 ms")
WL_PATH=(/bench /v1/chat/completions /v1/chat/completions)
WL_SCRIPT=(bench chat chat20)
PATHS=(direct l7 l7s nginx)

# lines: workload path round rps p50 p99 requests non2xx errors admitted
#        backend_cpu_ns proxy_cpu_ns
RES=$TMP/results
: >"$RES"
start=$(date +%s)
load_before=$(cut -d' ' -f1-3 /proc/loadavg)

# Warm-up, not recorded: connection pools, page cache, CPU frequency.
for p in "${PATHS[@]}"; do
	DURATION=1 run_wrk "${URL[$p]}" /bench bench >/dev/null
done

for w in "${!WL_NAMES[@]}"; do
	for r in $(seq 1 "$ROUNDS"); do
		for p in "${PATHS[@]}"; do
			# shellcheck disable=SC2086 # nginx: a list of pids
			pb=$(cpu_ns "${SRV_PID[direct]}") pp=$(cpu_ns ${SRV_PID[$p]})
			line=$(run_wrk "${URL[$p]}" "${WL_PATH[$w]}" "${WL_SCRIPT[$w]}")
			# shellcheck disable=SC2086
			pb=$(($(cpu_ns "${SRV_PID[direct]}") - pb)) pp=$(($(cpu_ns ${SRV_PID[$p]}) - pp))
			[ "$p" = direct ] && pp=0
			echo "${WL_NAMES[$w]} $p $r $line - $pb $pp" >>"$RES"
		done
	done
done

# The limit binds: 1000 requests/s (burst 100) for the key while wrk offers
# what it can. Admitted = what the backend saw (mock-llm's own counter).
for r in $(seq 1 "$ROUNDS"); do
	for p in l7b nginxb; do
		before=$(backend_requests)
		# shellcheck disable=SC2086 # nginx: a list of pids
		pp=$(cpu_ns ${SRV_PID[$p]})
		line=$(run_wrk "${URL[$p]}" /bench bench)
		# shellcheck disable=SC2086
		pp=$(($(cpu_ns ${SRV_PID[$p]}) - pp))
		after=$(backend_requests)
		echo "bound $p $r $line $((after - before)) 0 $pp" >>"$RES"
	done
done
# TLS to the backend: the chat workload through sluice-l7 and nginx, both
# over pooled TLS connections to mock-llm --tls-cert; "directtls" is wrk
# speaking TLS to it itself. Backend CPU is the TLS mock's.
TLS_PATHS=(directtls l7t nginxt)
for p in "${TLS_PATHS[@]}"; do
	DURATION=1 run_wrk "${URL[$p]}" /bench bench >/dev/null
done
for r in $(seq 1 "$ROUNDS"); do
	for p in "${TLS_PATHS[@]}"; do
		# shellcheck disable=SC2086 # nginx: a list of pids
		pb=$(cpu_ns "${SRV_PID[directtls]}") pp=$(cpu_ns ${SRV_PID[$p]})
		line=$(run_wrk "${URL[$p]}" /v1/chat/completions chat)
		# shellcheck disable=SC2086
		pb=$(($(cpu_ns "${SRV_PID[directtls]}") - pb)) pp=$(($(cpu_ns ${SRV_PID[$p]}) - pp))
		[ "$p" = directtls ] && pp=0
		echo "tls $p $r $line - $pb $pp" >>"$RES"
	done
done
L7T_HS=$(curl -s "http://127.0.0.1:$P_L7T_MET/metrics" |
	awk '/^sluice_l7_tls_handshakes_total/ { match($0, /result="[a-z]*"/);
		printf "%s%s %s", sep, substr($0, RSTART + 8, RLENGTH - 9), $NF; sep = ", " }')
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
elapsed=$(($(date +%s) - start))

# sluice-l7's own view of the bound runs: 429s by limit.
L7B_REJ=$(curl -s "http://127.0.0.1:$P_L7B_MET/metrics" |
	awk '/^sluice_l7_rejections_total/ { s += $NF } END { print s + 0 }')
L7_RECON=$(curl -s "http://127.0.0.1:$P_L7_MET/metrics" |
	awk '/^sluice_l7_usage_reconciled_total/ { s += $NF } END { print s + 0 }')

# --- report -----------------------------------------------------------------------
median() { sort -g | awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
col() {  # WORKLOAD PATH COLUMN -> the values of one column over the rounds
	awk -v w="$1" -v p="$2" -v c="$3" '$1 == w && $2 == p { print $c }' "$RES"
}
sum() { awk -v w="$1" -v p="$2" -v c="$3" '$1 == w && $2 == p { s += $c } END { print s + 0 }' "$RES"; }
per_req() {  # WORKLOAD PATH COLUMN -> CPU us per request over all rounds
	awk -v w="$1" -v p="$2" -v c="$3" '$1 == w && $2 == p { t += $c; n += $7 }
		END { if (n > 0 && t > 0) printf "%.1f", t / n / 1000; else print "-" }' "$RES"
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }

declare -A MED_RPS MED_P99 MED_P50
for w in "${WL_NAMES[@]}" bound tls; do
	for p in "${PATHS[@]}" l7b nginxb "${TLS_PATHS[@]}"; do
		[ -n "$(col "$w" "$p" 4)" ] || continue
		MED_RPS[$w.$p]=$(col "$w" "$p" 4 | median)
		MED_P50[$w.$p]=$(col "$w" "$p" 5 | median)
		MED_P99[$w.$p]=$(col "$w" "$p" 6 | median)
	done
done

if [ "$PIN" = 1 ]; then pin_note="wrk on CPU 0; mock-llm, sluice-l7 and nginx on CPU 1"; else pin_note="no pinning"; fi
wrk_cmd="wrk -t1 -c$CONNS -d${DURATION}s --latency"
echo
echo "sluice-l7 benchmark: $wrk_cmd, $ROUNDS interleaved rounds, medians"
echo "machine: $(nproc) CPUs, $(uname -r), $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)"
echo "pinning: $pin_note"
echo "load average: $load_before before, $load_after after; $elapsed s"
echo

if [ "$MARKDOWN" = 1 ]; then
	echo "| workload | path | req/s | p50 ms | p99 ms | l7 / path req/s | backend CPU µs/req | proxy CPU µs/req | non-2xx | errors |"
	echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"
else
	printf '%-52s %-7s %8s %7s %7s %8s %8s %8s %7s %6s\n' workload path req/s "p50 ms" "p99 ms" \
		"l7/path" "back us" "proxy us" non-2xx errors
fi
for w in "${!WL_NAMES[@]}"; do
	n=${WL_NAMES[$w]}
	for p in "${PATHS[@]}"; do
		rps=${MED_RPS[$n.$p]} l7=${MED_RPS[$n.l7]}
		rt=$(ratio "$l7" "$rps")
		[ "$p" = l7 ] && rt=""
		bad=$(sum "$n" "$p" 8) err=$(sum "$n" "$p" 9)
		bcpu=$(per_req "$n" "$p" 11) pcpu=$(per_req "$n" "$p" 12)
		if [ "$MARKDOWN" = 1 ]; then
			printf '| %s | %s | %s | %.2f | %.2f | %s | %s | %s | %s | %s |\n' "${WL_DESC[$w]}" \
				"$p" "$rps" "${MED_P50[$n.$p]}" "${MED_P99[$n.$p]}" "$rt" "$bcpu" "$pcpu" \
				"$bad" "$err"
		else
			printf '%-52s %-7s %8s %7.2f %7.2f %8s %8s %8s %7s %6s\n' "${WL_DESC[$w]}" "$p" \
				"$rps" "${MED_P50[$n.$p]}" "${MED_P99[$n.$p]}" "$rt" "$bcpu" "$pcpu" "$bad" "$err"
		fi
	done
done

echo
echo "The limit binds: 1000 requests/s (burst 100) for the key, GET /bench, $wrk_cmd"
if [ "$MARKDOWN" = 1 ]; then
	echo "| path | answers/s | p99 ms | 429 share | admitted/s (backend) | x open req/s | proxy CPU µs/answer |"
	echo "|---|---:|---:|---:|---:|---:|---:|"
else
	printf '%-10s %10s %8s %10s %21s %13s %9s\n' path answers/s "p99 ms" "429 share" \
		"admitted/s (backend)" "x open req/s" "proxy us"
fi
for p in l7b nginxb; do
	open=${p%b}
	total=$(sum bound "$p" 7) bad=$(sum bound "$p" 8) adm=$(sum bound "$p" 10)
	share=$(awk -v b="$bad" -v t="$total" 'BEGIN { printf "%.1f%%", t ? 100 * b / t : 0 }')
	adm_s=$(awk -v a="$adm" -v r="$ROUNDS" -v d="$DURATION" 'BEGIN { printf "%.0f", a / (r * d) }')
	name=$([ "$p" = l7b ] && echo sluice-l7 || echo nginx)
	rt=$(ratio "${MED_RPS[bound.$p]}" "${MED_RPS[bench.$open]}")
	pcpu=$(per_req bound "$p" 12)
	if [ "$MARKDOWN" = 1 ]; then
		printf '| %s | %s | %.2f | %s | %s | %s | %s |\n' "$name" "${MED_RPS[bound.$p]}" \
			"${MED_P99[bound.$p]}" "$share" "$adm_s" "$rt" "$pcpu"
	else
		printf '%-10s %10s %8.2f %10s %21s %13s %9s\n' "$name" "${MED_RPS[bound.$p]}" \
			"${MED_P99[bound.$p]}" "$share" "$adm_s" "$rt" "$pcpu"
	fi
done
echo
echo "sluice-l7 (bound) counted $L7B_REJ rejections; wrk saw $(sum bound l7b 8) non-2xx"
echo "(wrk does not count the answers in flight when it stops: up to $CONNS a run)."
echo "sluice-l7 (open) reconciled usage on $L7_RECON responses."

echo
echo "TLS to the backend: POST /v1/chat/completions (JSON, usage reconciled), $wrk_cmd"
if [ "$MARKDOWN" = 1 ]; then
	echo "| path | req/s | p50 ms | p99 ms | l7 / path req/s | backend CPU µs/req | proxy CPU µs/req | non-2xx | errors |"
	echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
else
	printf '%-22s %8s %7s %7s %8s %8s %8s %7s %6s\n' path req/s "p50 ms" "p99 ms" "l7/path" \
		"back us" "proxy us" non-2xx errors
fi
for p in "${TLS_PATHS[@]}"; do
	case $p in
	directtls) name="direct (wrk speaks TLS)" ;;
	l7t) name="sluice-l7 -> https" ;;
	nginxt) name="nginx -> https" ;;
	esac
	rps=${MED_RPS[tls.$p]}
	rt=$(ratio "${MED_RPS[tls.l7t]}" "$rps")
	[ "$p" = l7t ] && rt=""
	if [ "$MARKDOWN" = 1 ]; then
		printf '| %s | %s | %.2f | %.2f | %s | %s | %s | %s | %s |\n' "$name" "$rps" \
			"${MED_P50[tls.$p]}" "${MED_P99[tls.$p]}" "$rt" "$(per_req tls "$p" 11)" \
			"$(per_req tls "$p" 12)" "$(sum tls "$p" 8)" "$(sum tls "$p" 9)"
	else
		printf '%-22s %8s %7.2f %7.2f %8s %8s %8s %7s %6s\n' "$name" "$rps" \
			"${MED_P50[tls.$p]}" "${MED_P99[tls.$p]}" "$rt" "$(per_req tls "$p" 11)" \
			"$(per_req tls "$p" 12)" "$(sum tls "$p" 8)" "$(sum tls "$p" 9)"
	fi
done
echo "sluice-l7's TLS handshakes to the backend over all its runs: $L7T_HS"
