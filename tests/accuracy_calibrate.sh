#!/bin/sh
# Issue 17's judgement of `strata calibrate --runs` on vTrain's ground truth (Bang et al., MICRO'24;
# ../shared/validation): fit on a seeded random 20 % of the rows (seed 1), predict the other 80 %.
# Targets (issue 17): mean absolute error <= 10 % and Kendall tau-b >= 0.8 within each group of one
# model, GPU count and batch on vtrain_single; tau-b >= 0.7 within each model size on vtrain_multi.
# The numbers are printed whatever they are; the test fails only where the fit is broken:
#   - held out, the fitted cluster must predict better (MAE) than the cluster it started from;
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

# held-out MAE of a summary: the "held out" or "(unfitted)" line
mae() { awk -v w="$1" 'index($0, w) == 1 { for (i = 1; i <= NF; i++) if ($i == "MAE") { print $(i + 1); exit } }' "$2"; }

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
