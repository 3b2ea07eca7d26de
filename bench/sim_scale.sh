#!/bin/sh
# bench/sim_scale.sh: `strata sim --every-rank` from 3,072 to 131,072 GPUs (issue 21): Llama 3 405B on
# DGX H100 nodes, tp 8, pp 16, seq 8192, sp, selective recompute, ZeRO-1, mbs 1, 16 micro-batches per
# data-parallel rank (gbs 16 x dp), dp 128, 512 and 1,024; and, first, bench/sim_1t.sh's 1T
# model on 3,072 A100s (tp 8, pp 64, dp 6).
#
# Per row, the median (by wall time) of N runs of: the events, the wall time of the whole process
# and its CPU time (user + system; on a shared machine the wall time can exceed it), the events
# per second of the wall time and of the event loop alone (`strata sim --timing`), the max-min
# re-shares (`re-shared on full links`) and the peak memory (GNU time when present). A benchmark,
# not a test. Memory is limited to 6 GB per run (ulimit -v) unless --no-limit.
# usage: bench/sim_scale.sh [--strata PATH] [--runs N] [--max-gpus N] [--no-limit]
set -eu
STRATA=${STRATA:-./strata}
RUNS=1
MAX=131072
LIMIT=6000000
while [ $# -gt 0 ]; do
	case $1 in
	--strata) STRATA=$2; shift 2 ;;
	--runs) RUNS=$2; shift 2 ;;
	--max-gpus) MAX=$2; shift 2 ;;
	--no-limit) LIMIT=unlimited; shift ;;
	*) echo "usage: $0 [--strata PATH] [--runs N] [--max-gpus N] [--no-limit]" >&2; exit 2 ;;
	esac
done
TIME=""
if [ -x /usr/bin/time ]; then TIME=/usr/bin/time; fi
tmp=$(mktemp)
out=$(mktemp)
trap 'rm -f "$tmp" "$out"' EXIT
ulimit -v "$LIMIT"
echo "machine: $(uname -m), $(nproc) CPUs, $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo); load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "| model | GPUs | dp | events | wall (s) | CPU (s) | events/s (wall) | event loop (s) | events/s (event loop) | re-shares | peak RSS |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
# model GPUs dp args
while read -r model gpus dp args; do
	[ "$gpus" -le "$MAX" ] || continue
	runs=""
	i=0
	while [ $i -lt "$RUNS" ]; do
		# one line per run: wall CPU RSS loop events reshares
		if [ -n "$TIME" ]; then
			$TIME -f 'TIME %e %U %S %M' $STRATA sim --model "$model" --gpus "$gpus" $args --every-rank --timing \
				>"$out" 2>"$tmp"
		else
			t0=$(date +%s.%N)
			$STRATA sim --model "$model" --gpus "$gpus" $args --every-rank --timing >"$out" 2>"$tmp"
			t1=$(date +%s.%N)
			echo "TIME $(echo "$t1 - $t0" | bc -l) 0 0 0" >>"$tmp"
		fi
		runs="$runs
$(awk '/^TIME/ { w = $2; c = $3 + $4; m = $5 }
	/timing:/ { for (i = 1; i <= NF; i++) if ($i == "events") { e = $(i + 1); n = substr($(i + 3), 2) } }
	END { print w, c, m, e, n }' "$tmp") $(awk '/^network/ { print $(NF - 4) }' "$out")"
		i=$((i + 1))
	done
	printf '%s\n' "$runs" | awk 'NF' | sort -n | awk -v model="$model" -v g="$gpus" -v dp="$dp" -v has_time="$TIME" '
		{ w[NR] = $1; c[NR] = $2; m[NR] = $3; x[NR] = $4; e[NR] = $5; r[NR] = $6 }
		END {
			k = int((NR + 1) / 2)
			rss = has_time == "" ? "n/a" : sprintf("%d MiB", m[k] / 1024)
			cpu = has_time == "" ? "n/a" : sprintf("%.2f", c[k])
			printf "| %s | %d | %d | %d | %.2f | %s | %.1f M | %.2f | %.1f M | %d | %s |\n",
				model, g, dp, e[k], w[k], cpu, e[k] / w[k] / 1e6, x[k], (x[k] > 0 ? e[k] / x[k] / 1e6 : 0), r[k], rss
		}'
done <<ROWS
gpt-1t 3072 6 --cluster dgx-a100-80g --plan tp=8,pp=64,dp=6,mbs=1,gbs=3072,recompute=full,dtype=fp16
llama3-405b 16384 128 --cluster dgx-h100 --plan tp=8,pp=16,dp=128,mbs=1,gbs=2048,seq=8192,sp=1,recompute=selective,zero=1
llama3-405b 65536 512 --cluster dgx-h100 --plan tp=8,pp=16,dp=512,mbs=1,gbs=8192,seq=8192,sp=1,recompute=selective,zero=1
llama3-405b 131072 1024 --cluster dgx-h100 --plan tp=8,pp=16,dp=1024,mbs=1,gbs=16384,seq=8192,sp=1,recompute=selective,zero=1
ROWS
