#!/bin/sh
# tests/adaptive/plot_adaptive.sh - draw an adaptive-limit run (the CSV that
# tests/adaptive/sample_adaptive.py writes) as a PNG with gnuplot (Debian: gnuplot-nox).
#
# Usage: tests/adaptive/plot_adaptive.sh [-o OUT.png] [-t TITLE] [-l LATENCY_TARGET_MS]
#                               [-m T:LABEL]... [-L LOADGEN.csv] [-B BACKEND.log]
#                               SAMPLES.csv
#
# Three panels over time (seconds from the first sample):
#   rates    the limit written into the rule, the offered and the admitted
#            rate (loadgen's), and the connections per second sluice saw
#   latency  the backend's own p50, the client's p50 and sluice's mean
#            response time over each second, log scale, with the target
#   errors   5xx answers per second as sluice counted them
# The sampler reads the load generator's and the backend's last complete
# second, so its copies of their columns lag by a second or two: with -L
# (loadgen.py --csv) and -B (testbackend.py --log) those series are drawn from
# the files themselves instead, each second at its middle, on the same clock.
# -m marks an event (overload start, end, 5xx on/off) with a vertical line on
# every panel; T is seconds from the first sample or a Unix time.
# Columns may be -1 (nothing measured): those points are left out.
set -eu
out=docs/adaptive.png title="sluice adaptive limit" target="" marks="" lg="" be=""
usage() { sed -n '5,7p' "$0" | sed 's/^# //' >&2; exit 2; }
while getopts "o:t:l:m:L:B:h" opt; do
	case $opt in
	o) out=$OPTARG ;;
	t) title=$OPTARG ;;
	l) target=$OPTARG ;;
	L) lg=$OPTARG ;;
	B) be=$OPTARG ;;
	m) marks="$marks
$OPTARG" ;;
	*) usage ;;
	esac
done
shift $((OPTIND - 1))
[ $# = 1 ] || usage
csv=$1
[ -s "$csv" ] || { echo "plot_adaptive: $csv: no samples" >&2; exit 1; }
command -v gnuplot >/dev/null || { echo "plot_adaptive: gnuplot not found (apt-get install gnuplot-nox)" >&2; exit 1; }
head -1 "$csv" | grep -q '^t,time,limit,' || { echo "plot_adaptive: $csv: not a sample_adaptive.py CSV" >&2; exit 1; }
t0=$(awk -F, 'NR == 2 { print $2; exit }' "$csv")
[ -n "$t0" ] || { echo "plot_adaptive: $csv: no samples" >&2; exit 1; }

# One gnuplot 'set arrow' and 'set label' per mark, at seconds from the start.
gp_marks=$(printf '%s\n' "$marks" | awk -F: -v t0="$t0" 'NF >= 1 && $1 != "" {
	t = $1 + 0; if (t > 1e9) t -= t0
	lbl = substr($0, length($1) + 2)
	printf "set arrow from %.2f, graph 0 to %.2f, graph 1 nohead dt 2 lw 1.5 lc rgb \"#555555\"\n", t, t
	if (lbl != "") printf "LABELS = LABELS . sprintf(\"set label \\\"%s\\\" at %.2f, graph 1.04 center font \\\",9\\\"; \")\n", lbl, t
}')
gp_target=""
[ -n "$target" ] && gp_target="set arrow 99 from graph 0, first $target to graph 1, first $target nohead lw 1.5 lc rgb \"#cc0000\"
set label \"target ${target} ms\" at graph 0.01, first $target offset 0,0.6 tc rgb \"#cc0000\" font \",9\""

# Rates and client p50 from the load generator's CSV (its time is the start
# of each second), the backend's p50 from its log (time: the end of each
# second, converted to CSV), or else the sampler's copies.
tmpd=$(mktemp -d)
trap 'rm -rf "$tmpd"' EXIT
if [ -n "$lg" ]; then
	head -1 "$lg" | grep -q '^t,time,offered,admitted,' || { echo "plot_adaptive: $lg: not a loadgen.py CSV" >&2; exit 1; }
	lg_src="\"$lg\"" lg_x="(column(\"time\") - $t0 + 0.5)"
	lg_p50=p50_ms
else
	lg_src="\"$csv\"" lg_x="1"
	lg_p50=client_p50_ms
fi
if [ -n "$be" ]; then
	awk -F'\t' 'BEGIN { print "time,backend_p50_ms" } !/^#/ && NF >= 9 { print $1 "," $7 }' "$be" >"$tmpd/be.csv"
	be_src="\"$tmpd/be.csv\"" be_x="(column(\"time\") - $t0 - 0.5)"
else
	be_src="\"$csv\"" be_x="1"
fi

mkdir -p "$(dirname "$out")"
gnuplot <<EOF
set terminal pngcairo size 1200,900 font ",10"
set output "$out"
set datafile separator ","
set datafile missing "-1"
set datafile columnheaders
set key outside right top
set grid
set lmargin 12
set rmargin 28
set xlabel ""
LABELS = ""
$gp_marks
set multiplot layout 3,1 title "$title" font ",13"

set ylabel "per second"
set yrange [0:*]
eval LABELS
plot "$csv" using 1:(column("limit")) with steps lw 2.5 lc rgb "#1f77b4" title "limit", \
     $lg_src using $lg_x:(column("offered")) with lines lw 1 lc rgb "#999999" title "offered (loadgen)", \
     $lg_src using $lg_x:(column("admitted")) with lines lw 2 lc rgb "#2ca02c" title "admitted (loadgen)", \
     "$csv" using (\$1 - 0.5):(column("conns_per_s")) with points pt 7 ps 0.4 lc rgb "#9467bd" title "connections (sluice)"
unset label

set ylabel "latency, ms"
set yrange [*:*]
set logscale y
$gp_target
plot $be_src using $be_x:(column("backend_p50_ms")) with lines lw 2 lc rgb "#ff7f0e" title "backend p50", \
     $lg_src using $lg_x:(column("$lg_p50")) with lines lw 1 lc rgb "#8c564b" title "client p50", \
     "$csv" using (\$1 - 0.5):(column("resp_mean_ms")) with points pt 7 ps 0.4 lc rgb "#9467bd" title "response mean (sluice)"
unset logscale y
unset arrow 99
unset label

set ylabel "5xx per second"
set yrange [0:*]
set xlabel "seconds"
plot "$csv" using (\$1 - 0.5):(column("http_5xx_per_s")) with impulses lw 2 lc rgb "#d62728" title "HTTP 5xx (sluice)"
unset multiplot
EOF
echo "plot_adaptive: wrote $out"
