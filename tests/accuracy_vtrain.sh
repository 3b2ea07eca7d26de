#!/bin/sh
# Ranking test against the vTrain ground truth (Bang et al., MICRO'24; Megatron-DeepSpeed on A100
# clusters): within each model size, Kendall's tau-b between measured and predicted iteration time
# must be at least 0.7. The cluster is not published, so absolute errors are printed for information
# only. Rows strata rejects as impossible plans are excluded, with strata's reason printed; a row
# that "does not fit" is a failure of the memory model (every row ran on A100 80GB GPUs).
# Environment (set by automake): STRATA, SRCDIR, VALIDATION. Exit 0 pass, 1 fail, 77 skip, 99 hard error.

SRCDIR=${SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
# shellcheck source=lib_accuracy.sh source-path=SCRIPTDIR
. "$SRCDIR/tests/lib_accuracy.sh"

TAU_LIMIT=0.7

run_validation vtrain vtrain_multi.csv

echo
printf '%s\n' "$out" | awk -v limit="$TAU_LIMIT" '
/ rejected: / { rej[++nrej] = $0 }
/ does not fit: / { nf[++nnf] = $0 }
/ error: / { er[++ner] = $0 }
$1 == "TAU" && $2 == "vtrain" {
	split("", v)
	for (i = 3; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
	ng++
	if (v["tau_b"] == "nan" || v["compared"] + 0 < 3) {
		printf "FAIL: %sB: tau-b not computable (%d of %d rows compared)\n", v["size"], v["compared"], v["rows"]
		fail = 1
	} else if (v["tau_b"] + 0 < limit) {
		printf "FAIL: %sB: tau-b %.3f < %.2f (%d of %d rows compared)\n", v["size"], v["tau_b"], limit,
			v["compared"], v["rows"]
		fail = 1
	} else {
		printf "ok:   %sB: tau-b %.3f >= %.2f (%d of %d rows compared)\n", v["size"], v["tau_b"], limit,
			v["compared"], v["rows"]
	}
}
END {
	if (ng == 0) { print "FAIL: no model size group"; fail = 1 }
	for (i = 1; i <= nrej; i++) {
		if (i == 1) printf "NOTE: %d row(s) excluded from the ranking: strata rejects the plan as impossible (reason after \"rejected:\"):\n", nrej
		print "  " rej[i]
	}
	for (i = 1; i <= nnf; i++) {
		if (i == 1) printf "FAIL: %d row(s) do not fit in strata'"'"'s memory model, but they ran on A100 80GB GPUs:\n", nnf
		print "  " nf[i]
		fail = 1
	}
	for (i = 1; i <= ner; i++) {
		if (i == 1) printf "FAIL: %d row(s) gave an error:\n", ner
		print "  " er[i]
		fail = 1
	}
	print fail ? "FAIL: accuracy_vtrain" : "PASS: accuracy_vtrain"
	exit fail
}'
