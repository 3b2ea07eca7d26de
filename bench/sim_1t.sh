#!/bin/sh
# bench/sim_1t.sh: `strata sim` on the 1T model (128 layers, h 25600) on 3,072 A100s with tp 8,
# pp 64, dp 6, gbs 3072, mbs 1 (issue 3's benchmark), in both lowerings: one representative rank
# per pipeline stage (the default) and every rank (--every-rank, 48 times the programs). For each:
# the events simulated, the median wall time of the whole process (model, lowering, simulation,
# output) over N runs, events per second of that wall time, the CPU time (user + system) of the
# median run, and the peak memory (GNU time when present). Events per second are over the whole
# process, not the engine's loop alone. A benchmark, not a test.
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
ARGS="sim --model gpt-1t --cluster dgx-a100-80g --gpus 3072 --plan tp=8,pp=64,dp=6,mbs=1,gbs=3072,recompute=full,dtype=fp16 --json"
TIME=""
if [ -x /usr/bin/time ]; then TIME=/usr/bin/time; fi
echo "machine: $(uname -m), $(nproc) CPUs, $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo); load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "| lowering | ranks | events | flows | median wall (s) | CPU (s) | events/s (wall) | peak RSS |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|"
for mode in "" --every-rank; do
	out=$($STRATA $ARGS $mode)
	events=$(printf '%s\n' "$out" | awk -F': ' '/^  "events"/ { gsub(/[ ,]/, "", $2); print $2 }')
	ranks=$(printf '%s\n' "$out" | grep -c '"rank":' || true)
	flows=$($STRATA ${ARGS%--json} $mode | awk '/^network/ { print $4 }')
	runs=""
	i=0
	while [ $i -lt "$RUNS" ]; do
		if [ -n "$TIME" ]; then
			# wall, CPU, RSS of one run
			runs="$runs
$($TIME -f '%e %U %S %M' $STRATA $ARGS $mode 2>&1 >/dev/null | tail -1 | awk '{ print $1, $2 + $3, $4 }')"
		else
			t0=$(date +%s.%N)
			$STRATA $ARGS $mode >/dev/null
			t1=$(date +%s.%N)
			runs="$runs
$(echo "$t1 - $t0" | bc -l) 0 0"
		fi
		i=$((i + 1))
	done
	printf '%s\n' "$runs" | awk 'NF' | sort -n | awk -v n="$RUNS" -v e="$events" -v r="$ranks" -v f="$flows" \
		-v name="${mode:-one per stage}" -v has_time="$TIME" '
		{ w[NR] = $1; c[NR] = $2; m[NR] = $3 }
		END {
			k = int((NR + 1) / 2)
			rss = has_time == "" ? "n/a" : sprintf("%d MiB", m[k] / 1024)
			cpu = has_time == "" ? "n/a" : sprintf("%.2f", c[k])
			printf "| %s | %d | %d | %d | %.3f | %s | %.1f M | %s |\n", name == "--every-rank" ? "every rank" : name, r, e, f, w[k], cpu, e / w[k] / 1e6, rss
		}'
done
