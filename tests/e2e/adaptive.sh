#!/usr/bin/env bash
# tests/e2e/adaptive.sh - the adaptive controller closes the loop on a real
# overloaded backend (issue 4, "What the controller must show").
#
# tests/adaptive/testbackend.py in $NS_B serves C=4 requests at once for 40 ms each
# (capacity 100/s) and queues the rest, one request per connection, so its
# latency rises steeply past capacity. tests/adaptive/loadgen.py in $NS_S opens
# connections from four addresses at an offered rate, one SYN each.
# sluiced attaches to $DEV_B with one rule on the backend's port, key rule,
# whose conn-rate an adaptive controller owns (target-latency mode).
#
# One run of ~115 s, seconds from the load generator's start:
#    0  40/s   under capacity: the limit stays at max
#   10  300/s  overload, 3x capacity: within 10 s the backend's own p50 must
#              be within the target, and stay there; the admitted rate, once
#              settled, within 20% of its mean, and not pinned to the floor
#   40  40/s   the limit back at max within 30 s
#   75         the backend answers 503 (under capacity): the limit drops
#   85         503s stop: the limit back at max within 30 s
# Latency is the backend's own log, admitted the load generator's own count;
# the limit is what 'sluice rule list --json' shows each second
# (tests/adaptive/sample_adaptive.py). ADAPTIVE_KEEP=DIR keeps the CSVs, logs and
# the plot (tests/adaptive/plot_adaptive.sh) of the run: docs/adaptive.png is one.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib.sh"
. "$here/lib/net.sh"
TOOLS=$(cd "$here/../adaptive" && pwd)
SLUICED=${SLUICED:-${SLUICE_BUILD:-build}/sluiced}

CAP=4 BASE=40 TARGET=100 MIN=10 MAX=300
LOW=40 HIGH=300
OV_START=10 OV_END=40 FAIL_START=75 FAIL_END=85 RUN=115
LG_SRCS=198.18.0.2,198.18.0.3,198.18.0.4,198.18.0.5
_d_pid="" _be_pid="" _lg_pid="" _sm_pid=""

adaptive_cleanup() {
	local p
	for p in $_lg_pid $_sm_pid $_be_pid; do kill -TERM "$p" 2>/dev/null; done
	if [ -n "$_d_pid" ]; then
		kill -TERM "$_d_pid" 2>/dev/null
		wait "$_d_pid" 2>/dev/null
	fi
	if [ -n "${ADAPTIVE_KEEP:-}" ] && [ -d "$E2E_TMP" ]; then
		mkdir -p "$ADAPTIVE_KEEP" && cp "$E2E_TMP"/*.csv "$E2E_TMP"/*.log "$E2E_TMP"/*.png \
			"$E2E_TMP"/*.conf "$ADAPTIVE_KEEP"/ 2>/dev/null
	fi
	net_cleanup
}
trap adaptive_cleanup EXIT

# wait_for SECS CMD...: until CMD succeeds, polling every 0.1 s.
wait_for() {
	local n=$(($1 * 10)) i; shift
	for i in $(seq "$n"); do
		"$@" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}
rule_limit() { "$SLUICE" rule list --json | jq -e '.[] | select(.name == "api") | .conn_rate'; }
rule_ready() { [ "$(rule_limit)" = "$MAX" ] && xdp_on_dev; }

setup_ok=1
t_begin "adaptive: topology, backend, sluiced with an adaptive conn-rate on port $SP"
t_check "sluiced is built ($SLUICED)" test -x "$SLUICED" || setup_ok=0
t_check "build the namespaces and veth" net_setup || setup_ok=0
"$SLUICE" unload >/dev/null 2>&1
cat >"$E2E_TMP/sluiced.conf" <<-EOF
	interface $DEV_B mode native
	metrics off
	rule add name api dport $SP proto tcp conn-rate $MAX conn-burst $((MAX / 10)) key rule
	adaptive port $SP limit conn-rate min $MIN max $MAX target-latency $TARGET
EOF
nsenter --net="/run/netns/$NS_B" timeout $((RUN + 120)) "$SLUICED" -c "$E2E_TMP/sluiced.conf" -f \
	2>"$E2E_TMP/sluiced.log" &
_d_pid=$!
t_check "sluiced attached, rule 'api' at conn-rate $MAX" wait_for 10 rule_ready || setup_ok=0
ip netns exec "$NS_B" timeout $((RUN + 60)) "$PY" "$TOOLS/testbackend.py" --port "$SP" \
	--capacity "$CAP" --base-ms "$BASE" --close --fail-file "$E2E_TMP/fail" \
	--log "$E2E_TMP/backend.log" --stats "$E2E_TMP/backend.json" --ready "$E2E_TMP/backend.ready" \
	--max-seconds $((RUN + 50)) &
_be_pid=$!
t_check "backend on $DST4:$SP (C=$CAP, $BASE ms)" wait_for 5 test -e "$E2E_TMP/backend.ready" || setup_ok=0
t_end
if [ "$setup_ok" != 1 ]; then
	sed 's/^/  sluiced: /' "$E2E_TMP/sluiced.log" | tail -20 >&2
	exit 1
fi

# The run: sampler first, then the load; the 503 switch on the schedule.
timeout $((RUN + 30)) "$PY" "$TOOLS/sample_adaptive.py" --sluice "$SLUICE" --port "$SP" \
	--rule api --backend-log "$E2E_TMP/backend.log" --loadgen-csv "$E2E_TMP/loadgen.csv" \
	--out "$E2E_TMP/samples.csv" --duration $((RUN + 8)) &
_sm_pid=$!
sleep 1
ip netns exec "$NS_S" timeout $((RUN + 40)) "$PY" "$TOOLS/loadgen.py" --dst "$DST4" --port "$SP" \
	--src "$LG_SRCS" --schedule "0:$LOW,$OV_START:$HIGH,$OV_END:$LOW" --duration "$RUN" \
	--concurrency 1024 --timeout 10 --csv "$E2E_TMP/loadgen.csv" >"$E2E_TMP/loadgen.json" &
_lg_pid=$!
wait_for 5 test -s "$E2E_TMP/loadgen.csv"
sleep "$FAIL_START"
touch "$E2E_TMP/fail"
fail_on=$(date +%s.%N)
sleep $((FAIL_END - FAIL_START))
rm -f "$E2E_TMP/fail"
fail_off=$(date +%s.%N)
wait "$_lg_pid"
_lg_pid=""
sleep 3
kill -TERM "$_sm_pid" 2>/dev/null
wait "$_sm_pid" 2>/dev/null
_sm_pid=""
echo "  loadgen: $(cat "$E2E_TMP/loadgen.json")" >&2

# Everything below in seconds from the load generator's start (T0).
T0=$(awk -F, 'NR == 2 { print $2 }' "$E2E_TMP/loadgen.csv")
# Backend log: time inflight queued completed failed_503 accepted p50 p99
# failing; its time is the end of the second it covers.
be_rows() { awk -F'\t' -v t0="$T0" '!/^#/ { printf "%.0f %s %s %s %s %s\n", $1 - t0 - 1, $4, $5, $6, $7, $9 }' \
	"$E2E_TMP/backend.log"; }
# Loadgen: t offered admitted ... ; sampler: t limit
lg_rows() { awk -F, 'NR > 1 { print $1, $3, $4, $7, $10 }' "$E2E_TMP/loadgen.csv"; }
sm_rows() { awk -F, -v t0="$T0" 'NR > 1 { printf "%.1f %s\n", $2 - t0, $3 }' "$E2E_TMP/samples.csv"; }
# series over [FROM, TO): one value a line
be_p50s() { be_rows | awk -v a="$1" -v b="$2" '$1 >= a && $1 < b { print $5 }'; }
admitted() { lg_rows | awk -v a="$1" -v b="$2" '$1 >= a && $1 < b { print $3 }'; }
limits() { sm_rows | awk -v a="$1" -v b="$2" '$1 >= a && $1 < b { print $2 }'; }
# first_at FROM TO VALUE: seconds after FROM of the first sample with limit VALUE (or -1)
first_at() { sm_rows | awk -v a="$1" -v b="$2" -v v="$3" '$1 >= a && $1 < b && $2 == v { print $1 - a; f = 1; exit } END { if (!f) print -1 }'; }
first_below() { sm_rows | awk -v a="$1" -v b="$2" -v v="$3" '$1 >= a && $1 < b && $2 <= v { print $1 - a; f = 1; exit } END { if (!f) print -1 }'; }
stats() { awk '{ s += $1; n++; if (n == 1 || $1 < lo) lo = $1; if ($1 > hi) hi = $1 }
	END { if (!n) { print "none"; exit } m = s / n; printf "n=%d mean=%.1f min=%s max=%s dev=%.1f%%\n", n, m, lo, hi,
		100 * ((hi - m > m - lo) ? hi - m : m - lo) / (m ? m : 1) }'; }
series() { tr '\n' ' '; }
add() { awk -v a="$1" -v b="$2" 'BEGIN { print a + b }'; }
SETTLED=$((OV_START + 10))
# The switch's real times (the schedule's are the load generator's own).
FAIL_START=$(awk -v a="$fail_on" -v t="$T0" 'BEGIN { printf "%.1f", a - t }')
FAIL_END=$(awk -v a="$fail_off" -v t="$T0" 'BEGIN { printf "%.1f", a - t }')

t_begin "before the overload: the limit at max ($MAX), p50 at the base"
echo "  limit 2..$OV_START s: $(limits 2 "$OV_START" | series)" >&2
echo "  backend p50 2..$OV_START s: $(be_p50s 2 "$OV_START" | series)" >&2
t_check "limit $MAX throughout" awk -v m="$MAX" '$1 != m { exit 1 } END { exit !NR }' <<<"$(limits 2 "$OV_START")"
t_check "backend p50 under the target" awk -v t="$TARGET" '$1 > t { exit 1 } END { exit !NR }' \
	<<<"$(be_p50s 2 "$OV_START")"
t_end

# The controller sees the p50 through sluice's histogram, whose estimates
# are within 9.4% (docs/design.md): 10% over the target is still within it.
P50_MAX=$((TARGET * 110 / 100))
t_begin "overload (${HIGH}/s, capacity $((CAP * 1000 / BASE))/s): backend p50 within $TARGET ms (+10%) from 10 s after it starts"
p=$(be_p50s "$SETTLED" "$OV_END")
echo "  backend p50 $OV_START..$OV_END s: $(be_p50s "$OV_START" "$OV_END" | series)" >&2
echo "  limit $OV_START..$OV_END s: $(limits "$OV_START" "$OV_END" | series)" >&2
echo "  settled p50: $(stats <<<"$p")" >&2
t_check "every second's p50 from $SETTLED to $OV_END s within $P50_MAX ms" \
	awk -v t="$P50_MAX" '$1 < 0 || $1 > t { print "  over: " $1 > "/dev/stderr"; bad = 1 } END { exit bad || NR < 15 }' <<<"$p"
t_end

t_begin "overload: the admitted rate, once settled, within 20% of its mean and off the floor"
a=$(admitted "$SETTLED" "$OV_END")
echo "  admitted $OV_START..$OV_END s: $(admitted "$OV_START" "$OV_END" | series)" >&2
s=$(stats <<<"$a")
echo "  settled admitted: $s" >&2
mean=$(awk '{ s += $1 } END { printf "%.1f", NR ? s / NR : 0 }' <<<"$a")
t_check "no second more than 20% off the mean ($s)" \
	awk -v m="$mean" '{ d = $1 - m; if (d < 0) d = -d; if (d > 0.2 * m) bad = 1 } END { exit bad || NR < 15 }' <<<"$a"
t_check "mean admitted $mean/s at least half the capacity ($((CAP * 1000 / BASE / 2))/s): not stuck at the floor" \
	awk -v m="$mean" -v c=$((CAP * 1000 / BASE / 2)) 'BEGIN { exit !(m >= c) }'
t_check "mean admitted $mean/s at most 1.2x capacity" \
	awk -v m="$mean" -v c=$((CAP * 1000 / BASE * 12 / 10)) 'BEGIN { exit !(m <= c) }'
# The load generator's admitted count is checked against the backend's own.
acc=$(be_rows | awk -v a="$SETTLED" -v b="$OV_END" '$1 >= a && $1 < b { s += $4 } END { print s + 0 }')
sum=$(awk '{ s += $1 } END { print s + 0 }' <<<"$a")
t_check "loadgen admitted $sum within 5% of the backend's accepted $acc" within 5 "$sum" "$acc"
t_end

t_begin "after the overload: the limit back at max ($MAX) within 30 s"
echo "  limit $OV_END..$((OV_END + 32)) s: $(limits "$OV_END" $((OV_END + 32)) | series)" >&2
w=$(first_at "$OV_END" $((OV_END + 30)) "$MAX")
echo "  back at $MAX after $w s" >&2
t_check "at $MAX within 30 s (after $w s)" awk -v w="$w" 'BEGIN { exit !(w >= 0) }'
t_check "it had left max during the overload" awk -v m="$MAX" '$1 < m { f = 1 } END { exit !f }' \
	<<<"$(limits "$OV_START" "$OV_END")"
t_end

t_begin "5xx: the backend answers 503 for 10 s; the limit drops, then recovers to max within 30 s"
echo "  limit $FAIL_START..$FAIL_END (+30) s: $(limits "$FAIL_START" "$(add "$FAIL_END" 30)" | series)" >&2
c5=$(lg_rows | awk -v a="$FAIL_START" -v b="$FAIL_END" '$1 >= a && $1 < b { s += $4 } END { print s + 0 }')
t_check "the client got 503s ($c5)" test "$c5" -gt 0
n5=$(sluice_signal "$SP" .counters.http_5xx)
t_check "sluice counted 5xx on port $SP ($n5)" test "$n5" -gt 0
t_check "limit at $MAX when the errors start" awk -v m="$MAX" '$1 != m { exit 1 } END { exit !NR }' \
	<<<"$(limits "$(add "$FAIL_START" -3)" "$FAIL_START")"
w=$(first_below "$FAIL_START" "$FAIL_END" $((MAX / 2)))
echo "  under $((MAX / 2)) after $w s" >&2
t_check "limit under half of max within 5 s of the first 503 (after $w s)" \
	awk -v w="$w" 'BEGIN { exit !(w >= 0 && w <= 5) }'
w=$(first_at "$FAIL_END" "$(add "$FAIL_END" 30)" "$MAX")
echo "  back at $MAX after $w s" >&2
t_check "back at $MAX within 30 s after the last 503 (after $w s)" awk -v w="$w" 'BEGIN { exit !(w >= 0) }'
t_end

t_begin "the run's plot (tests/adaptive/plot_adaptive.sh)"
t_check "plot" "$TOOLS/plot_adaptive.sh" -o "$E2E_TMP/adaptive.png" -l "$TARGET" \
	-t "sluice adaptive conn-rate: backend C=$CAP x $BASE ms ($((CAP * 1000 / BASE))/s), target p50 $TARGET ms" \
	-m "$(awk -v t="$T0" -v o="$OV_START" 'BEGIN { printf "%.3f", t + o }'):overload ${HIGH}/s" \
	-m "$(awk -v t="$T0" -v o="$OV_END" 'BEGIN { printf "%.3f", t + o }'):load ${LOW}/s" \
	-m "$fail_on:503 on" -m "$fail_off:503 off" \
	-L "$E2E_TMP/loadgen.csv" -B "$E2E_TMP/backend.log" "$E2E_TMP/samples.csv" >/dev/null
t_check "a PNG" sh -c "file -b '$E2E_TMP/adaptive.png' | grep -q '^PNG image data'"
t_end
