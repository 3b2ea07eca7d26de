#!/bin/sh
# shellcheck disable=SC2086 # the command lines below are split on purpose
# Allocation-failure torture (issue 20, after SQLite's and curl's): a few representative commands
# (model, HuggingFace config, cluster and plan loading with estimate; plan search with --out; a small
# simulation with lowering and a trace; Kineto import with calibrate) are run under
# tests/strata-failalloc (tests/failalloc.c) once to count their allocations, then once per failed
# allocation. Each failing run must either exit 2 with exactly one line on stderr, nothing on stdout
# and no output file (nor temporary) left, or, where strata needed nothing from the allocation,
# give the same status and stdout as the run without a failure. A crash, a sanitizer report (an
# ASan build: more than one line on stderr) or a half-written result fails the test.
#
# make check walks a sample (the first 40 allocations, where loading fails most variously, then
# 40 more spread evenly over the rest; seconds); `tests/failalloc.sh --all` walks every one.
# Environment: STRATA (its directory holds tests/strata-failalloc), SRCDIR. POSIX sh.
# Exit 0 pass, 1 fail, 99 hard error.

SRCDIR=${SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
# shellcheck source=lib.sh source-path=SCRIPTDIR
. "$SRCDIR/tests/lib.sh"

all=0
[ "${1:-}" = --all ] && all=1
STRATA=${STRATA_FAILALLOC:-$(dirname "$STRATA")/tests/strata-failalloc}
start_tests failalloc
echo "# strata: $STRATA"
D=$SRCDIR/tests/data
export LSAN_OPTIONS="${LSAN_OPTIONS:-}${LSAN_OPTIONS:+:}exitcode=23"

# norm FILE: stdout without what differs from run to run (plan's search time and rate)
norm() {
	sed -E -e 's/ in [0-9.]+ s, [0-9]+ per second//' -e 's/"search_time_s": [0-9.e+-]+/"search_time_s": T/' "$1"
}

# torture NAME OUT ARGS...: the walk over one command; OUT is the file it writes ("-" for none)
torture() {
	name=$1 out=$2
	shift 2
	rm -f "$T/count"
	STRATA_FAIL_ALLOC=0 STRATA_COUNT_ALLOC=$T/count "$STRATA" "$@" >"$T/ref" 2>"$T/referr"
	refrc=$?
	if [ ! -s "$T/count" ] || [ "$refrc" -ne 0 ]; then
		rc=$refrc cmd="strata $*"
		nok "$name: the run without a failure" "exit $refrc, expected 0 and a count" "$(head -n 5 "$T/referr")"
		return
	fi
	n=$(cat "$T/count")
	norm "$T/ref" >"$T/refn"
	[ "$out" = - ] || mv "$out" "$T/refout"
	if [ $all -eq 1 ] || [ "$n" -le 80 ]; then
		idx=$(seq 1 "$n")
	else
		idx="$(seq 1 40) $(seq 41 $(((n - 40) / 40)) "$n")"
	fi
	bad=0 tried=0
	for i in $idx; do
		tried=$((tried + 1))
		STRATA_FAIL_ALLOC=$i "$STRATA" "$@" >"$T/out" 2>"$T/err"
		rc=$?
		why=
		if [ $rc -eq 2 ]; then
			[ "$(wc -l <"$T/err")" -eq 1 ] || why="$(wc -l <"$T/err") lines on stderr"
			[ -s "$T/out" ] && why="${why:+$why; }stdout written"
			[ "$out" != - ] && [ -e "$out" ] && why="${why:+$why; }$out left behind"
		elif [ $rc -ne "$refrc" ] || ! norm "$T/out" | cmp -s - "$T/refn" || ! cmp -s "$T/err" "$T/referr"; then
			why="exit $rc, neither 2 nor the unfailed run's result"
		elif [ "$out" != - ] && ! cmp -s "$out" "$T/refout"; then
			why="exit $rc, but $out differs from the unfailed run's"
		fi
		# debris: a temporary beside the output (name.tmp.XXXXXX)
		if [ "$out" != - ] && ls "$out".tmp.* >/dev/null 2>&1; then why="${why:+$why; }temporary left"; fi
		[ "$out" = - ] || rm -f "$out" "$out".tmp.*
		if [ -n "$why" ]; then
			bad=$((bad + 1))
			cmd="STRATA_FAIL_ALLOC=$i strata $*"
			[ $bad -le 3 ] && nok "$name: allocation $i of $n: $why" "$(head -n 12 "$T/err")"
		fi
	done
	if [ $bad -eq 0 ]; then
		ok "$name: $tried of $n allocations failed in turn, each handled"
	elif [ $bad -gt 3 ]; then
		echo "       ... $name: $bad of $tried failed runs in all"
	fi
}

torture "estimate (model, cluster and plan files)" - estimate --model "$D/io/valid/model_all_keys.json" \
	--cluster "$D/io/valid/cluster_gpu_object.json" --plan "$D/io/valid/plan_minimal.json" --json
torture "estimate (HuggingFace config)" - estimate --model "$D/io/hf/Llama-2-7b-hf.json" \
	--cluster "$D/io/valid/cluster_gpu_object.json" --plan tp=2,pp=2,gbs=64
torture "plan --out" "$T/plan.json" plan --model gpt-1.7b --cluster dgx-a100-80g --gpus 16 --top 3 \
	--out "$T/plan.json"
torture "sim --trace (lowering, simulation)" "$T/trace.json" sim --model gpt-1.7b --cluster dgx-a100-80g \
	--plan tp=2,pp=2,dp=2,gbs=8 --trace "$T/trace.json" --json
torture "calibrate (Kineto, gzip)" "$T/profile.json" calibrate --kineto "$D/kineto/small.json.gz" \
	--out "$T/profile.json"
finish_tests
