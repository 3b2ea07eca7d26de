#!/bin/sh
# bench/sim_1t.sh: `strata sim` on the 1T model (128 layers, h 25600) on 3,072 A100s with tp 8,
# pp 64, dp 6, gbs 3072, mbs 1 (issue 3's benchmark), in both lowerings: one representative rank
# per pipeline stage (the default) and every rank (--every-rank, 48 times the programs).
#
# Per lowering, the median over N runs of: the wall time of the whole process (model, lowering,
# simulation, output), its CPU time (user + system; on a shared machine wall can exceed it), the
# events per second of that wall time, and the peak memory (GNU time when present); and, from
# `strata sim --timing`, how the wall time of the median run splits into lowering, the engine's
# setup and its event loop, with the event loop's own events per second. A benchmark, not a test.
# usage: bench/sim_1t.sh [--strata PATH] [--runs N]
set -eu
STRATA=${STRATA:-./strata}
RUNS=5
while [ $# -gt 0 ]; do
	case $1 in
	--strata) STRATA=$2; shift 2 ;;
	--runs) RUNS=$2; shift 2 ;;
	*) echo "usage: $0 [--strata PATH] [--runs N]" >&2; exit 2 ;;
	esac
done
ARGS="sim --model gpt-1t --cluster dgx-a100-80g --gpus 3072 --plan tp=8,pp=64,dp=6,mbs=1,gbs=3072,recompute=full,dtype=fp16"
TIME=""
if [ -x /usr/bin/time ]; then TIME=/usr/bin/time; fi
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
echo "machine: $(uname -m), $(nproc) CPUs, $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo); load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "| lowering | ranks | events | flows on links | wall (s) | CPU (s) | events/s (wall) | peak RSS | lowering / setup / events (s) | events/s (event loop) |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---|---:|"
for mode in "" --every-rank; do
	text=$($STRATA $ARGS $mode)
	events=$(printf '%s\n' "$text" | awk '/^simulated/ { for (i = 1; i <= NF; i++) if ($i ~ /^events/) print $(i - 1) }')
	ranks=$(printf '%s\n' "$text" | awk '/^simulated/ { print $2 }')
	flows=$(printf '%s\n' "$text" | awk '/^network/ { print $4 }')
	runs=""
	i=0
	while [ $i -lt "$RUNS" ]; do
		# one line per run: wall CPU RSS lowering setup loop
		if [ -n "$TIME" ]; then
			$TIME -f 'TIME %e %U %S %M' $STRATA $ARGS $mode --json --timing >/dev/null 2>"$tmp"
		else
			t0=$(date +%s.%N)
			$STRATA $ARGS $mode --json --timing >/dev/null 2>"$tmp"
			t1=$(date +%s.%N)
			echo "TIME $(echo "$t1 - $t0" | bc -l) 0 0 0" >>"$tmp"
		fi
		runs="$runs
$(awk '/^TIME/ { w = $2; c = $3 + $4; m = $5 }
	/timing:/ { for (i = 1; i <= NF; i++) { if ($i == "lowering") l = $(i + 1); if ($i == "setup") s = $(i + 1); if ($i == "events") e = $(i + 1) } }
	END { print w, c, m, l, s, e }' "$tmp")"
		i=$((i + 1))
	done
	printf '%s\n' "$runs" | awk 'NF' | sort -n | awk -v e="$events" -v r="$ranks" -v f="$flows" \
		-v name="${mode:-one per stage}" -v has_time="$TIME" '
		{ w[NR] = $1; c[NR] = $2; m[NR] = $3; l[NR] = $4; s[NR] = $5; x[NR] = $6 }
		END {
			k = int((NR + 1) / 2)
			rss = has_time == "" ? "n/a" : sprintf("%d MiB", m[k] / 1024)
			cpu = has_time == "" ? "n/a" : sprintf("%.2f", c[k])
			label = name == "--every-rank" ? "every rank" : name
			loop = x[k] > 0 ? e / x[k] / 1e6 : 0
			printf "| %s | %d | %d | %d | %.3f | %s | %.1f M | %s | %.3f / %.3f / %.3f | %.1f M |\n",
				label, r, e, f, w[k], cpu, e / w[k] / 1e6, rss, l[k], s[k], x[k], loop
		}'
done
