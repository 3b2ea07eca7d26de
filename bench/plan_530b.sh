#!/bin/sh
# bench/plan_530b.sh: how fast `strata plan` searches the hybrid-parallel space.
#
#   bench/plan_530b.sh [--strata PATH] [--runs N]
#
# Jobs (each run N times, default 5; the median is reported):
#   530b   strata plan --model gpt-530b --cluster dgx-a100-80g --gpus 5120 --gbs 2560 --json
#   175b   strata plan --model gpt3-175b --cluster dgx-a100-80g --gpus 1024 --json   (the README's job)
#   dsv3   strata plan --model deepseek-v3 --cluster dgx-h100 --gpus 2048 --gbs 15360 --seq 4096 --json (issue 15)
# Wall time is taken with `date +%s.%N` around each run (includes process start and JSON output);
# search time is the JSON's search_time_s. Configurations covered = priced + ruled out by the
# search's bounds. Targets: >= 1,000,000 configurations/s (covered /
# median search time) and < 1 s median wall time. Prints a markdown table to paste into README.
# A benchmark, not a test: exit 0 when every run succeeded, 2 otherwise. POSIX sh + awk only.

set -u
LC_ALL=C
export LC_ALL

prog=plan_530b.sh
die() {
	echo "$prog: $*" >&2
	exit 2
}

strata=""
runs=5
while [ $# -gt 0 ]; do
	case $1 in
	--strata) [ $# -ge 2 ] || die "--strata needs a value"; strata=$2; shift 2 ;;
	--strata=*) strata=${1#--strata=}; shift ;;
	--runs) [ $# -ge 2 ] || die "--runs needs a value"; runs=$2; shift 2 ;;
	--runs=*) runs=${1#--runs=}; shift ;;
	-h | --help)
		echo "usage: bench/plan_530b.sh [--strata PATH (default ./strata, else \$STRATA)] [--runs N (default 5)]"
		exit 0
		;;
	*) die "unknown argument '$1'" ;;
	esac
done
case $runs in
'' | *[!0-9]* | 0) die "--runs must be a positive integer" ;;
esac
if [ -z "$strata" ]; then
	if [ -x ./strata ] && [ ! -d ./strata ]; then
		strata=./strata
	elif [ -n "${STRATA:-}" ]; then
		strata=$STRATA
	else
		die "no strata binary: run from the build folder, or pass --strata PATH or set STRATA"
	fi
fi
[ -x "$strata" ] && [ ! -d "$strata" ] || die "strata binary '$strata' not found or not executable"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/strata-bench.XXXXXX") || die "cannot create a temporary folder"
trap 'rm -rf "$tmp"' EXIT
trap 'rm -rf "$tmp"; exit 130' INT TERM

case $(date +%N 2>/dev/null) in
'' | *[!0-9]*) have_ns=0 ;;
*) have_ns=1 ;;
esac

cpu=$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null)
[ -n "$cpu" ] || cpu=$(awk -F': *' '/^(Hardware|cpu model|Processor|uarch)/ { print $2; exit }' /proc/cpuinfo 2>/dev/null)
[ -n "$cpu" ] || cpu=unknown
ncpu=$(nproc 2>/dev/null || getconf _NPROCESSORS_ONLN 2>/dev/null || echo "?")

echo "== strata plan search speed =="
echo "strata:   $strata ($("$strata" --version 2>/dev/null | head -n 1))"
echo "machine:  $(uname -m), $ncpu CPUs (nproc), $cpu"
echo "runs:     $runs per job, median reported; wall = date +%s.%N around the process$( [ $have_ns = 1 ] || echo ' (unavailable here: date has no %N)')"
echo

# json_num FILE KEY: the first top-level-looking "KEY": number in FILE
json_num() {
	awk -v key="\"$2\"" '{
		v = $0; sub(/^[ ]*/, "", v)
		if (index(v, key ":") == 1) { sub(/^[^:]*:[ ]*/, "", v); sub(/[ ,]*$/, "", v); print v; exit }
	}' "$1"
}

# median of the numbers in FILE (one a line)
median() {
	awk '{ a[NR] = $1 + 0 } END {
		if (NR == 0) { print "nan"; exit }
		for (i = 2; i <= NR; i++) { v = a[i]; for (j = i - 1; j >= 1 && a[j] > v; j--) a[j + 1] = a[j]; a[j + 1] = v }
		if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }' "$1"
}

rows=$tmp/rows
: >"$rows"
failed=0

# bench NAME GPUS ARGS...: run strata plan ARGS --json $runs times
bench() {
	name=$1 gpus=$2
	shift 2
	: >"$tmp/wall"
	: >"$tmp/search"
	i=0
	while [ $i -lt "$runs" ]; do
		i=$((i + 1))
		t0=$(date +%s.%N)
		"$strata" plan "$@" --json >"$tmp/out" 2>"$tmp/err"
		rc=$?
		t1=$(date +%s.%N)
		if [ $rc -ne 0 ]; then
			echo "$prog: run $i of '$name' failed (exit $rc): $(head -n 1 "$tmp/err")" >&2
			failed=1
			return
		fi
		[ $have_ns = 1 ] && awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.6f\n", b - a }' >>"$tmp/wall"
		json_num "$tmp/out" search_time_s >>"$tmp/search"
	done
	evaluated=$(json_num "$tmp/out" evaluated)
	feasible=$(json_num "$tmp/out" feasible)
	bounded=$(json_num "$tmp/out" bounded)
	best=$(awk '/^[ ]*"spec"[ ]*:/ { v = $0; sub(/^[^:]*:[ ]*"/, "", v); sub(/".*$/, "", v); print v; exit }' "$tmp/out")
	best_t=$(json_num "$tmp/out" iteration_time_s)
	if [ $have_ns = 1 ]; then wall=$(median "$tmp/wall"); else wall=nan; fi
	search=$(median "$tmp/search")
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$gpus" "$evaluated" "$feasible" "$wall" \
		"$search" "$best" "$best_t" "strata plan $*" "$bounded" >>"$rows"
}

bench "gpt-530b, gbs 2560" 5120 --model gpt-530b --cluster dgx-a100-80g --gpus 5120 --gbs 2560
bench "gpt3-175b, gbs 1536" 1024 --model gpt3-175b --cluster dgx-a100-80g --gpus 1024
bench "deepseek-v3 on dgx-h100, gbs 15360, seq 4096" 2048 --model deepseek-v3 --cluster dgx-h100 --gpus 2048 --gbs 15360 --seq 4096

awk -F '\t' '
function yes(c) { return c ? "yes" : "**no**" }
{
	n++
	cmd[n] = $9; best[n] = $7; bt[n] = $8; name[n] = $1
	covered = $3 + $10 # priced, and ruled out unpriced by the bounds of the search
	rate = ($6 > 0) ? covered / $6 : 0
	wrate = ($5 != "nan" && $5 > 0) ? sprintf("%.2f M", covered / $5 / 1e6) : "n/a"
	wall = ($5 == "nan") ? "n/a" : sprintf("%.3f", $5)
	met_rate = rate >= 1e6
	met_wall = ($5 != "nan" && $5 < 1)
	line[n] = sprintf("| %s | %d | %d | %d | %d | %s | %.3f | %.2f M | %s | %s | %s |", $1, $2, $3, $10, $4, wall, $6,
		rate / 1e6, wrate, yes(met_rate), yes(met_wall))
}
END {
	for (i = 1; i <= n; i++) print "job " i ": " cmd[i]
	print ""
	print "| job | GPUs | configurations priced | ruled out by bounds | priced that fit | median wall (s) | median search (s) | configs/s (search) | configs/s (wall) | >= 1 M configs/s | < 1 s wall |"
	print "|---|---:|---:|---:|---:|---:|---:|---:|---:|:---:|:---:|"
	for (i = 1; i <= n; i++) print line[i]
	print ""
	for (i = 1; i <= n; i++) printf "best plan, %s: %s (%.2f s per iteration)\n", name[i], best[i], bt[i]
}' "$rows"

exit $((failed * 2))
