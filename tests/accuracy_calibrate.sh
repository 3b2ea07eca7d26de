#!/bin/sh
# Issue 17's judgement of `strata calibrate --runs` on vTrain's ground truth (Bang et al., MICRO'24;
# ../shared/validation): fit on a seeded random 20 % of the rows (seed 1), predict the other 80 %.
# Targets (issue 17): mean absolute error <= 10 % and Kendall tau-b >= 0.8 within each group of one
# model, GPU count and batch on vtrain_single; tau-b >= 0.7 within each model size on vtrain_multi.
# The numbers are printed whatever they are; the test fails where the fit is broken or falls back:
#   - held out, the fitted cluster must predict better (MAE) than the cluster it started from;
#   - held out, no worse than what the fit reached with the per-kernel prices (seed 1: vtrain_single
#     MAE 7.1 %, mean tau-b 0.850; seeds 2 and 3 give 7.4 and 7.2 %, 0.856 and 0.832) and, on
#     vtrain_multi, with DeepSpeed's partitioned pipeline messages (pp_partition=1, set by
#     scripts/vtrain_runs.sh; seed 1: MAE 9.0 %, mean tau-b within model sizes 0.613; seeds 2-5:
#     9.4, 7.4, 8.6, 8.7 % and 0.687, 0.708, 0.629, 0.647), with a margin: vtrain_single MAE <= 8.5 %
#     and mean tau-b >= 0.82; vtrain_multi MAE <= 9.6 % and mean tau-b >= 0.60, which the model
#     without pp_partition (10.0 %, 0.591) fails. Issue 17's 0.7 within model sizes is not reached
#     on seed 1: 39.1B's tp=2 rows run 25-39 % slower than any priced cost explains;
#   - the measured times shuffled among the rows (a fixed derangement), the held-out error must be
#     at least twice the honest fit's: a fit cannot memorise its rows.
# Environment (set by automake): STRATA, SRCDIR, VALIDATION. Exit 0 pass, 1 fail, 77 skip, 99 hard error.

SRCDIR=${SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
STRATA=${STRATA:-./strata}
VAL=${VALIDATION:-$SRCDIR/../shared/validation}
[ -r "$VAL/vtrain_single.csv" ] && [ -r "$VAL/vtrain_multi.csv" ] || { echo "SKIP: no vTrain data in $VAL"; exit 77; }
T=$(mktemp -d "${TMPDIR:-/tmp}/strata-acc-calib.XXXXXX") || exit 99
trap 'rm -rf "$T"' EXIT
trap 'exit 1' HUP INT TERM
sh "$SRCDIR/scripts/vtrain_runs.sh" "$VAL" "$T" || exit 99
cluster=$SRCDIR/tests/data/validation/vtrain_cluster.json
fail=0

# after LINE KEY FILE: the word after KEY on the summary line that opens with LINE ("held out",
# "(unfitted)"), its comma dropped: the held-out MAE and the mean tau-b within groups
after() {
	awk -v w="$1" -v k="$2" 'index($0, w) == 1 {
		for (i = 1; i <= NF; i++) if ($i == k) { v = $(i + 1); sub(/,$/, "", v); print v; exit }
	}' "$3"
}
mae() { after "$1" MAE "$2"; }
tau_mean() { after "$1" mean "$2"; }
# reached WHAT VALUE OP LIMIT: ok or FAIL, as the value compares with what the fit reached
reached() {
	if awk -v v="$2" -v l="$4" -v op="$3" 'BEGIN { exit !(op == "<=" ? v <= l : v >= l) }'; then
		echo "ok: $1 $2 $3 $4"
	else
		echo "FAIL: $1 $2, not $3 $4 (what the fit reached, with a margin)"
		fail=1
	fi
}

for set in single multi; do
	if ! "$STRATA" calibrate --runs "$T/$set.csv" --cluster "$cluster" --fit-fraction 0.2 --seed 1 \
		--out "$T/$set.json" >"$T/$set.out" 2>"$T/err"; then
		echo "FAIL: calibrate --runs vtrain_$set: $(cat "$T/err")"
		exit 1
	fi
	echo "== vtrain_$set: fit on 20 % (seed 1), judged on the other 80 %"
	cat "$T/$set.out"
	held=$(mae "held out" "$T/$set.out") start=$(mae "(unfitted)" "$T/$set.out")
	if awk -v h="$held" -v s="$start" 'BEGIN { exit !(h < s) }'; then
		echo "ok: held-out MAE $held % < $start % of the cluster it started from"
	else
		echo "FAIL: held-out MAE $held % is not below the starting cluster's $start %"
		fail=1
	fi
	if [ $set = single ]; then
		reached "held-out MAE (%)" "$held" "<=" 8.5
		reached "held-out mean tau-b within groups" "$(tau_mean "held out" "$T/$set.out")" ">=" 0.82
	else
		reached "held-out MAE (%)" "$held" "<=" 9.6
		reached "held-out mean tau-b within model sizes" "$(tau_mean "held out" "$T/$set.out")" ">=" 0.60
	fi
	# the same rows with their times shuffled: row i gets row i + 7's (measured_s is the last field)
	awk 'NR == 1 { print; next } { line[NR] = $0; t = $0; sub(/.*,/, "", t); time[NR] = t } END {
		for (i = 2; i <= NR; i++) {
			l = line[i]
			sub(/[^,]*$/, "", l)
			print l time[(i - 2 + 7) % (NR - 1) + 2]
		}
	}' "$T/$set.csv" >"$T/$set-shuffled.csv"
	if ! "$STRATA" calibrate --runs "$T/$set-shuffled.csv" --cluster "$cluster" --fit-fraction 0.2 --seed 1 \
		--folds 2 --out "$T/$set-shuffled.json" >"$T/$set-shuffled.out" 2>"$T/err"; then
		echo "FAIL: calibrate --runs on shuffled vtrain_$set: $(cat "$T/err")"
		exit 1
	fi
	shuf=$(mae "held out" "$T/$set-shuffled.out")
	if awk -v h="$held" -v s="$shuf" 'BEGIN { exit !(s >= 2 * h) }'; then
		echo "ok: times shuffled, the held-out MAE is $shuf % (honest: $held %): nothing memorised"
	else
		echo "FAIL: times shuffled, the held-out MAE is $shuf %, not twice the honest $held %"
		fail=1
	fi
	echo
done
exit $fail
