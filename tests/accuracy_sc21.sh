#!/bin/sh
# Accuracy test against SC'21 Table 1 (Narayanan et al., Megatron-LM on Selene): strata's predicted
# iteration time for each row must be within 20 % of the measured one, the mean absolute error
# within 10 %, and every row's plan must be accepted and fit (they all ran on DGX A100 80GB).
# Environment (set by automake): STRATA, SRCDIR, VALIDATION. Exit 0 pass, 1 fail, 77 skip, 99 hard error.

SRCDIR=${SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
# shellcheck source=lib_accuracy.sh source-path=SCRIPTDIR
. "$SRCDIR/tests/lib_accuracy.sh"

MAE_LIMIT=10
ROW_LIMIT=20

run_validation sc21 sc21_table1.csv

echo
printf '%s\n' "$out" | awk -v mae_limit="$MAE_LIMIT" -v row_limit="$ROW_LIMIT" '
$1 == "SUMMARY" && $2 == "sc21" {
	for (i = 3; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
	fail = 0
	if (v["compared"] + 0 == 0) { print "FAIL: no row was compared"; fail = 1 }
	if (v["rejected"] + 0 > 0) { printf "FAIL: %d row(s) rejected by strata (they ran on Selene)\n", v["rejected"]; fail = 1 }
	if (v["nofit"] + 0 > 0) { printf "FAIL: %d row(s) do not fit in strata'"'"'s memory model (they ran on A100 80GB)\n", v["nofit"]; fail = 1 }
	if (v["errors"] + 0 > 0) { printf "FAIL: %d row(s) gave an error\n", v["errors"]; fail = 1 }
	if (v["compared"] + 0 > 0) {
		if (v["mae_pct"] + 0 > mae_limit) { printf "FAIL: MAE %.1f %% > %d %%\n", v["mae_pct"], mae_limit; fail = 1 }
		else printf "ok: MAE %.1f %% <= %d %%\n", v["mae_pct"], mae_limit
		if (v["max_abs_pct"] + 0 > row_limit) { printf "FAIL: max |error| %.1f %% > %d %%\n", v["max_abs_pct"], row_limit; fail = 1 }
		else printf "ok: max |error| %.1f %% <= %d %%\n", v["max_abs_pct"], row_limit
	}
	print fail ? "FAIL: accuracy_sc21" : "PASS: accuracy_sc21"
	exit fail
}'
