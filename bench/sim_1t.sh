#!/bin/sh
# bench/sim_1t.sh: `strata sim` on the 1T model (128 layers, h 25600) on 3,072 A100s with tp 8,
# pp 64, dp 6, gbs 3072, mbs 1 (issue 3's benchmark): wall time of the whole process, events per
# second of that wall time, and peak memory (GNU time when present). A benchmark, not a test.
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
echo "machine: $(uname -m), $(nproc) CPUs, $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)"
events=$($STRATA $ARGS | awk -F': ' '/"events"/ { gsub(/[ ,]/, "", $2); print $2 }')
walls=""
i=0
while [ $i -lt "$RUNS" ]; do
	t0=$(date +%s.%N)
	$STRATA $ARGS >/dev/null
	t1=$(date +%s.%N)
	walls="$walls $(echo "$t1 - $t0" | bc -l)"
	i=$((i + 1))
done
median=$(printf '%s\n' $walls | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }')
rss="n/a"
if [ -x /usr/bin/time ]; then rss=$(/usr/bin/time -f '%M' $STRATA $ARGS 2>&1 >/dev/null | tail -1); rss="$((rss / 1024)) MiB"; fi
echo "| job | events | median wall (s) | events/s (wall) | peak RSS |"
echo "|---|---:|---:|---:|---:|"
awk -v e="$events" -v w="$median" -v r="$rss" 'BEGIN { printf "| gpt-1t, 3,072 GPUs (tp 8, pp 64, dp 6), gbs 3072 | %d | %.3f | %.1f M | %s |\n", e, w, e / w / 1e6, r }'
