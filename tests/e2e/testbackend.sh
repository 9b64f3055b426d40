#!/usr/bin/env bash
# tests/e2e/testbackend.sh - the adaptive controller's test tools, tested on
# their own (no sluice): tests/adaptive/testbackend.py, tests/adaptive/loadgen.py,
# tests/adaptive/sample_adaptive.py and tests/adaptive/plot_adaptive.sh.
#
# Both ends run on the loopback of one namespace. The backend serves C=4
# requests at once for 40 ms each (capacity 100/s) and queues the rest; its
# own per-second log and totals are the counter the client is checked
# against, and the other way round.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib.sh"
trap 't_ns_cleanup; rm -rf "$TMP"' EXIT

TOOLS=$(cd "$here/../adaptive" && pwd)
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
NS=${T_PREFIX}t
TMP=$(mktemp -d "/tmp/$T_PREFIX.XXXXXX")
CAP=4 BASE=40 CLOSE=8080 KEEP=8081
SRCS=127.0.0.2,127.0.0.3
in_t() { ip netns exec "$NS" timeout 60 "$@"; }

# be_start NAME PORT ARGS...: a backend in the background, ready when this returns.
be_start() {
	local name=$1 port=$2 i; shift 2
	ip netns exec "$NS" timeout 120 "$PY" "$TOOLS/testbackend.py" --port "$port" \
		--listen 127.0.0.1 --capacity "$CAP" --base-ms "$BASE" --log "$TMP/$name.log" \
		--stats "$TMP/$name.json" --ready "$TMP/$name.ready" --pidfile "$TMP/$name.pid" \
		--max-seconds 110 "$@" &
	for i in $(seq 100); do
		[ -e "$TMP/$name.ready" ] && return 0
		sleep 0.05
	done
	echo "testbackend $name did not start" >&2
	return 1
}
# be_total NAME FIELD: a backend's running total (rewritten once a second).
be_total() { jq -r ".$2" "$TMP/$1.json"; }
# be_settle NAME: until the totals file has been rewritten twice (a second's lag).
be_settle() { sleep 2.1; }

# lg OUT ARGS...: loadgen, its CSV in $TMP/OUT.csv; prints its totals JSON.
lg() {
	local out=$1; shift
	in_t "$PY" "$TOOLS/loadgen.py" --dst 127.0.0.1 --src "$SRCS" --csv "$TMP/$out.csv" "$@"
}
# col OUT NAME: the sum of a loadgen CSV column.
col() {
	awk -F, -v c="$2" 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == c) k = i; next }
		{ s += $k } END { print s + 0 }' "$TMP/$1.csv"
}
# median_p50 OUT: the median of the per-second client p50s (seconds with answers).
median_p50() {
	awk -F, 'NR > 1 && $10 >= 0 { print $10 }' "$TMP/$1.csv" | sort -n |
		awk '{ v[NR] = $1 } END { print NR ? v[int((NR + 1) / 2)] : -1 }'
}
# last_p50 OUT: the client p50 of the last second with answers.
last_p50() { awk -F, 'NR > 1 && $10 >= 0 { p = $10 } END { print p + 0 }' "$TMP/$1.csv"; }
# be_p50 NAME FROM TO: the median of the backend's per-second p50s logged
# between Unix times FROM and TO.
be_p50() {
	awk -F'\t' -v a="$2" -v b="$3" '!/^#/ && $1 >= a && $1 <= b && $7 >= 0 { print $7 }' \
		"$TMP/$1.log" | sort -n | awk '{ v[NR] = $1 } END { print NR ? v[int((NR + 1) / 2)] : -1 }'
}
be_p50_max() {
	awk -F'\t' -v a="$2" -v b="$3" '!/^#/ && $1 >= a && $1 <= b && $7 > m { m = $7 } END { print m + 0 }' \
		"$TMP/$1.log"
}
gt() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a > b) }'; }
# within PCT ACTUAL EXPECTED
within() {
	awk -v p="$1" -v a="$2" -v e="$3" 'BEGIN {
		d = a - e; if (d < 0) d = -d
		exit !(e > 0 && d <= e * p / 100) }'
}

setup_ok=1
t_begin "testbackend: namespace and two backends (one request per connection, keep-alive)"
t_check "namespace with loopback" sh -c "ip netns add '$NS' && ip -n '$NS' link set dev lo up" || setup_ok=0
t_check "backend on $CLOSE (--close)" be_start close "$CLOSE" --close || setup_ok=0
t_check "backend on $KEEP (keep-alive)" be_start keep "$KEEP" --fail-secs 1 || setup_ok=0
t_check "--help of every tool" sh -c "'$PY' '$TOOLS/testbackend.py' --help >/dev/null &&
	'$PY' '$TOOLS/loadgen.py' --help >/dev/null && '$PY' '$TOOLS/sample_adaptive.py' --help >/dev/null"
t_end
[ "$setup_ok" = 1 ] || exit 1

# 25 requests a second, 40 ms each: about one in flight, never more than C.
t_begin "under C in flight: latency at the base ($BASE ms), client and backend agree"
t0=$(date +%s.%N)
r=$(lg low --port "$CLOSE" --rate 25 --duration 3)
t1=$(date +%s.%N)
echo "  loadgen: $r" >&2
be_settle
t_expect "client: 75 answers, no errors" "$(col low ok)" -eq 75
t_expect "client: no errors" "$(col low errors)" -eq 0
p=$(median_p50 low)
echo "  client p50 $p ms, backend p50 $(be_p50 close "$t0" "$t1") ms, backend max in flight $(be_total close max_inflight)" >&2
t_check "client p50 $p ms within 20% of $BASE ms" within 20 "$p" "$BASE"
p=$(be_p50 close "$t0" "$t1")
t_check "backend p50 $p ms within 10% of $BASE ms" within 10 "$p" "$BASE"
m=$(be_total close max_inflight)
t_expect "backend: at most C=$CAP in flight (max $m)" "$m" -le "$CAP"
t_end

# 150 a second into a capacity of 100: the queue grows by 50 a second and
# each second of it adds half a second of latency.
t_begin "above C in flight: latency rises steeply (1.5x capacity for 3 s)"
acc0=$(be_total close accepted) done0=$(be_total close completed)
t0=$(date +%s.%N)
r=$(lg high --port "$CLOSE" --rate 150 --duration 3 --timeout 10)
t1=$(date +%s.%N)
echo "  loadgen: $r" >&2
be_settle
m=$(be_total close max_inflight)
t_check "backend: over 10x C in flight (max $m)" gt "$m" $((CAP * 10))
p=$(be_p50_max close "$t0" "$t1")
echo "  backend p50 up to $p ms, client p50 of the last second $(last_p50 high) ms, max in flight $m" >&2
t_check "backend p50 reached $p ms, over 10x the base" gt "$p" $((BASE * 10))
p=$(last_p50 high)
t_check "client p50 of the last second $p ms, over 10x the base" gt "$p" $((BASE * 10))
t_expect "client: no errors" "$(col high errors)" -eq 0
t_end

t_begin "loadgen's counts match the backend's own (one request per connection)"
adm=$(col high admitted) ok=$(col high ok)
acc=$(( $(be_total close accepted) - acc0 )) done=$(( $(be_total close completed) - done0 ))
echo "  loadgen admitted $adm, answered $ok; backend accepted $acc, completed $done" >&2
t_expect "offered 450" "$(col high offered)" -eq 450
t_check "admitted $adm within 2% of the backend's accepted $acc" within 2 "$adm" "$acc"
t_check "answered $ok within 2% of the backend's completed $done" within 2 "$ok" "$done"
t_end

# One SYN in three dropped at the backend's input (nft, random): the
# connects that time out are errors, not admitted, and what the loadgen calls
# admitted is what the backend accepted.
t_begin "loadgen's admitted count matches the backend's when a third of the SYNs are dropped"
t_check "nft: drop 1 in 3 SYNs to $CLOSE" in_t nft -f - <<-EOF2
	table inet lgtest {
		chain in {
			type filter hook input priority 0;
			tcp dport $CLOSE tcp flags & (syn | ack) == syn numgen random mod 3 == 0 counter drop
		}
	}
	EOF2
acc0=$(be_total close accepted)
r=$(lg drop --port "$CLOSE" --rate 60 --duration 2)
echo "  loadgen: $r" >&2
be_settle
adm=$(col drop admitted) err=$(col drop errors) acc=$(( $(be_total close accepted) - acc0 ))
dropped=$(in_t nft -j list table inet lgtest | jq '[.nftables[].rule?.expr[]?.counter?.packets // empty] | add')
echo "  loadgen admitted $adm, errors $err; backend accepted $acc; nft dropped $dropped SYNs" >&2
t_expect "offered 120 = admitted + errors" $((adm + err)) -eq 120
t_check "admitted $adm within 2% of the backend's accepted $acc" within 2 "$adm" "$acc"
t_expect "errors $err = SYNs dropped $dropped" "$err" -eq "$dropped"
t_check "some dropped, some admitted" sh -c "[ $err -gt 10 ] && [ $adm -gt 50 ]"
in_t nft delete table inet lgtest
t_end

t_begin "loadgen --mode keepalive: answers match the backend's, over few connections"
r=$(lg ka --port "$KEEP" --mode keepalive --rate 50 --duration 2 --concurrency 8)
echo "  loadgen: $r" >&2
be_settle
t_expect "client: 100 answers" "$(col ka ok)" -eq 100
t_expect "backend: 100 completed" "$(be_total keep completed)" -eq 100
t_check "backend: at most 8 connections for 100 requests ($(be_total keep accepted))" \
	test "$(be_total keep accepted)" -le 8
t_end

# The 503 switch: a file, a control URL (until /control/ok, or for 1 s),
# SIGUSR1 (--fail-secs 30) and SIGUSR2.
get() { in_t "$PY" -c "import urllib.request as u; print(u.urlopen('http://127.0.0.1:$KEEP$1', timeout=5).read().decode().strip())"; }
# ka_run OUT SECS: 40 requests a second on 4 keep-alive connections.
ka_run() { lg "$1" --port "$KEEP" --mode keepalive --rate 40 --duration "$2" --concurrency 4 >/dev/null; }
t_begin "503 switch: by file, by control URL and by SIGUSR1; answers 200 again after"
touch "$TMP/fail"
kill -TERM "$(cat "$TMP/keep.pid")" # restart it with the file switch
sleep 0.3
rm -f "$TMP/keep.ready"
t_check "backend restarted with --fail-file" be_start keep "$KEEP" --fail-secs 30 --fail-file "$TMP/fail"
ka_run f1 1
t_expect "file present: 40 answers 503" "$(col f1 http_5xx)" -eq 40
rm -f "$TMP/fail"
ka_run f2 1
t_expect "file removed: 40 answers 200" "$(col f2 ok)" -eq 40
t_check "control URL /control/fail" test "$(get /control/fail)" = failing
ka_run f3 0.5
t_expect "control URL: 20 answers 503" "$(col f3 http_5xx)" -eq 20
t_check "control URL /control/ok" test "$(get /control/ok)" = ok
ka_run f4 0.5
t_expect "after /control/ok: 20 answers 200" "$(col f4 ok)" -eq 20
kill -USR1 "$(cat "$TMP/keep.pid")"
sleep 0.1
ka_run f5 0.5
t_expect "SIGUSR1: 20 answers 503" "$(col f5 http_5xx)" -eq 20
kill -USR2 "$(cat "$TMP/keep.pid")"
sleep 0.1
ka_run f6 0.5
t_expect "SIGUSR2: 20 answers 200" "$(col f6 ok)" -eq 20
t_check "control URL /control/fail?secs=1" test "$(get '/control/fail?secs=1')" = failing
sleep 1.2
ka_run f7 0.5
t_expect "1 s later: 20 answers 200" "$(col f7 ok)" -eq 20
be_settle
t_expect "backend: 80 answered 503" "$(be_total keep failed_503)" -eq 80
t_expect "backend: 100 answered 200" "$(be_total keep completed)" -eq 100
t_check "backend log marks the failing seconds" \
	awk -F'\t' '!/^#/ && $9 == 1 { n++ } END { exit !(n >= 2) }' "$TMP/keep.log"
t_end

# The sampler against a stand-in sluice whose counters grow by 50
# connections and 40 requests (one 5xx) a call, and whose rule has conn-rate 123.
t_begin "sample_adaptive.py: the limit, per-second rates and the tools' logs in one CSV"
cat >"$TMP/fake-sluice" <<-EOF
	#!/bin/sh
	n=\$(cat "$TMP/calls" 2>/dev/null || echo 0)
	case "\$1" in
	rule) echo '[{"id":1,"name":"api","dport_lo":$CLOSE,"dport_hi":$CLOSE,"conn_rate":123,"pps":0}]' ;;
	signals) echo \$((n + 1)) >"$TMP/calls"
		echo "{\"interval_ms\":0,\"services\":[{\"port\":$CLOSE,\"response\":{\"count\":\$((n * 40)),\"mean_ms\":25},
		\"counters\":{\"connections\":\$((n * 50)),\"requests\":\$((n * 40)),\"http_5xx\":\$n}}]}" ;;
	esac
	EOF
chmod +x "$TMP/fake-sluice"
t_check "sample 3 s" timeout 10 "$PY" "$TOOLS/sample_adaptive.py" --sluice "$TMP/fake-sluice" \
	--port "$CLOSE" --backend-log "$TMP/close.log" --loadgen-csv "$TMP/high.csv" \
	--out "$TMP/samples.csv" --duration 3
t_expect "3 rows" "$(($(wc -l <"$TMP/samples.csv") - 1))" -eq 3
t_check "limit 123 in every row" awk -F, 'NR > 1 && $3 != 123 { exit 1 }' "$TMP/samples.csv"
t_check "about 50 connections/s from the differences" \
	awk -F, 'NR > 2 { n++; if ($4 < 45 || $4 > 55) exit 1 } END { exit !n }' "$TMP/samples.csv"
t_check "mean response 25 ms over the interval" awk -F, 'NR > 2 && $7 != 25 { exit 1 }' "$TMP/samples.csv"
lo=$(tail -1 "$TMP/high.csv" | cut -d, -f3,4)
t_check "the loadgen's last row (offered,admitted $lo)" \
	awk -F, -v w="$lo" 'NR > 1 && $12 "," $13 != w { exit 1 }' "$TMP/samples.csv"
t_check "the backend's last line (a p50)" awk -F, 'NR > 1 && $9 == "" { exit 1 }' "$TMP/samples.csv"
t_end

t_begin "plot_adaptive.sh: a PNG from a sample CSV, with marks and a target"
awk 'BEGIN { print "t,time,limit,conns_per_s,requests_per_s,http_5xx_per_s,resp_mean_ms,backend_completed,backend_p50_ms,backend_inflight,backend_failing,offered,admitted,client_p50_ms"
	for (t = 0; t < 40; t++) { lim = (t < 10 || t > 30) ? 400 : 150; off = (t < 10 || t > 30) ? 50 : 300
		adm = off < lim ? off : lim
		printf "%d,%d,%d,%d,%d,%d,%.1f,%d,%.1f,4,0,%d,%d,%.1f\n", t, 1795490000 + t, lim, adm, adm,
			(t > 35 ? 3 : -1), 20 + adm / 10, adm, 20 + adm / 10, off, adm, 21 + adm / 10 } }' >"$TMP/plot.csv"
t_check "plot" "$TOOLS/plot_adaptive.sh" -o "$TMP/plot.png" -l 40 -m 10:overload -m 1795490030:end "$TMP/plot.csv"
t_check "file says PNG ($(file -b "$TMP/plot.png" 2>&1 | cut -d, -f1-2))" \
	sh -c "file -b '$TMP/plot.png' | grep -q '^PNG image data, 1200 x 900'"
t_check "plot with the loadgen's CSV and the backend's log (-L, -B)" "$TOOLS/plot_adaptive.sh" \
	-o "$TMP/plot2.png" -L "$TMP/high.csv" -B "$TMP/close.log" "$TMP/samples.csv"
t_check "file says PNG" sh -c "file -b '$TMP/plot2.png' | grep -q '^PNG image data'"
t_check "a bad CSV is refused" sh -c "echo x,y >'$TMP/bad.csv'; ! '$TOOLS/plot_adaptive.sh' -o '$TMP/bad.png' '$TMP/bad.csv' 2>/dev/null"
t_end
