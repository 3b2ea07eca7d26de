#!/bin/sh
# Accuracy report on today's published runs (../shared/validation/modern_public.json: Megatron-LM
# and Megatron-Core on H100, torchtitan on H100 and A100), for `strata estimate` and `strata sim`.
# As published (set modern) it is a report, not judged: the plans leave out settings their sources
# state. With those settings (set modern_settings) it holds issue 14's targets: every point fits
# (estimate and sim) and the estimate's mean absolute error is at most 15 %. It fails too when the report is
# broken: a point neither compared nor reported as not fitting or rejected with a reason, a row
# that failed ("error: ..."), a NaN or infinity, or counts that do not add up to the points.
# Environment (set by automake): STRATA, SRCDIR, VALIDATION. Exit 0 pass, 1 fail, 77 skip, 99 hard error.

SRCDIR=${SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
# shellcheck source=lib_accuracy.sh source-path=SCRIPTDIR
. "$SRCDIR/tests/lib_accuracy.sh"

fail=0
for set in modern modern_settings; do
for command in estimate sim; do
	echo "==== $set: strata $command"
	run_validation "$set" modern_public.json --command "$command"
	# the points in the file: each has one "id" (models and clusters have none)
	npoints=$(grep -o '"id"[ ]*:' "$VALIDATION/modern_public.json" | wc -l | tr -d ' ')
	echo
	printf '%s\n' "$out" | awk -v cmd="$set: $command" -v set="$set" -v npoints="$npoints" '
	# the rows: from the table header ("id ... error_%") to the blank line after it
	/^id .* measured_s  predicted_s  error_%$/ { inrows = 1; next }
	inrows && NF == 0 { inrows = 0 }
	inrows {
		rows++
		nonfinite = 0
		for (i = 1; i <= NF; i++) if (tolower($i) ~ /^[+-]?(nan|inf|infinity)$/) nonfinite = 1
		if (nonfinite) { printf "FAIL: %s: a row with a NaN or infinity: %s\n", cmd, $0; bad = 1 }
		else if ($NF ~ /^[+-][0-9]+\.[0-9]$/ && $(NF - 1) ~ /^[0-9]+\.[0-9]+$/) compared++
		else if ($0 ~ / does not fit \([0-9.]+ GiB > [0-9.]+ GiB\)$/ || $0 ~ / does not fit \(host memory /) nofit++
		else if ($0 ~ / rejected: [^ ]/) rejected++
		else { printf "FAIL: %s: a row neither compared, nor not fitting, nor rejected with a reason: %s\n", cmd, $0; bad = 1 }
	}
	$1 == "SUMMARY" && $2 == set {
		for (i = 3; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
		summary = 1
	}
	END {
		if (!summary) { printf "FAIL: %s: no SUMMARY %s line\n", cmd, set; bad = 1 }
		if (rows != npoints) { printf "FAIL: %s: %d rows for %d points\n", cmd, rows, npoints; bad = 1 }
		if (v["rows"] != rows || v["compared"] != compared || v["nofit"] != nofit || v["rejected"] != rejected) {
			printf "FAIL: %s: SUMMARY says rows=%s compared=%s nofit=%s rejected=%s, the table %d %d %d %d\n", cmd,
				v["rows"], v["compared"], v["nofit"], v["rejected"], rows, compared, nofit, rejected
			bad = 1
		}
		if (v["errors"] != 0) { printf "FAIL: %s: %s row(s) failed\n", cmd, v["errors"]; bad = 1 }
		# with the settings their sources state, issue 14 reached its targets: every run that ran
		# fits, and the mean absolute error of the estimate is at most 15 %; hold them
		if (set == "modern_settings" && nofit > 0) {
			printf "FAIL: %s: %d run(s) that really ran are predicted not to fit\n", cmd, nofit
			bad = 1
		}
		if (set == "modern_settings" && cmd ~ /estimate$/ && v["mae_pct"] + 0 > 15.0) {
			printf "FAIL: %s: MAE %.2f %% > 15 %% (issue 14 target)\n", cmd, v["mae_pct"]
			bad = 1
		}
		if (compared > 0 && (v["mae_pct"] == "nan" || v["max_abs_pct"] == "nan")) {
			printf "FAIL: %s: rows were compared but the MAE is nan\n", cmd
			bad = 1
		}
		if (!bad)
			printf "ok: %s: %d points: %d compared (MAE %.1f %%, max |error| %.1f %%), %d do not fit, %d rejected\n",
				cmd, rows, compared, v["mae_pct"], v["max_abs_pct"], nofit, rejected
		exit bad
	}' || fail=1
	echo
done
done
[ $fail -eq 0 ] && echo "PASS: accuracy_modern (a report: the errors above are not judged)" || echo "FAIL: accuracy_modern"
exit $fail
