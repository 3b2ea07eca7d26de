#!/bin/sh
# shellcheck disable=SC2086 # fixed argument lists are split on purpose
# Golden CLI test of `strata calibrate --runs`: runs "measured" as strata's own estimates on a
# cluster whose GEMM efficiency is 0.6 (dgx-a100-80g otherwise), fitted from dgx-a100-80g:
#   - exit 0, nothing on stderr; the summary names each parameter, those not pinned down, the
#     cross-validated error; the fitted gemm_efficiency is 0.6 within 3 %;
#   - the calibrated cluster is taken by estimate, plan, sim and compare, and carries its
#     provenance ("calibration": rows, date, residuals); --residuals writes each row's prediction;
#   - bad input (unknown model, impossible plan, non-positive time, too few rows, a missing column,
#     --runs with --kineto) exits 2 with one line naming the file and row, and writes nothing.
# Environment (set by automake): STRATA, SRCDIR. POSIX sh only. Exit 0 pass, 1 fail, 99 hard error.

SRCDIR=${SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
# shellcheck source=lib.sh source-path=SCRIPTDIR
. "$SRCDIR/tests/lib.sh"
start_tests cli-calibrate-runs
SOURCE_DATE_EPOCH=0
export SOURCE_DATE_EPOCH

# the truth: dgx-a100-80g with GEMMs at 60 % of peak
cat >"$T/truth.json" <<EOF2
{ "name": "truth", "nodes": 4, "gpus_per_node": 8,
  "gpu": { "name": "a100-sxm-80g", "memory_gib": 80, "hbm_gb_per_s": 2039,
           "peak_tflops": { "fp32": 19.5, "tf32": 156, "fp16": 312, "bf16": 312 }, "gemm_efficiency": 0.6 },
  "intra_node": { "bandwidth_gb_per_s": 300, "latency_us": 2 },
  "inter_node": { "nics_per_node": 8, "nic_gbit_per_s": 200, "latency_us": 5 } }
EOF2
echo "model,gpus,plan,measured_s,group" >"$T/runs.csv"
for m in gpt-1.7b gpt-3.6b; do
	for g in 8 16; do
		for p in tp=1 tp=2 tp=4 tp=8 tp=2,pp=2 tp=1,pp=4; do
			spec="$p,mbs=2,gbs=$((8 * g))"
			run estimate --model $m --cluster "$T/truth.json" --gpus $g --plan "$spec" --json
			t=$(awk '/"iteration_time_s"/ { gsub(/[ ,]/, "", $2); print $2; exit }' "$T/out")
			[ -n "$t" ] || { echo "ERROR: no estimate for $m $g $spec: $(cat "$T/err")"; exit 99; }
			echo "$m,$g,\"$spec\",$t,$m $g" >>"$T/runs.csv"
		done
	done
done

run calibrate --runs "$T/runs.csv" --cluster dgx-a100-80g --out "$T/fitted.json" --seed 3 --residuals "$T/res.csv"
eff=$(awk '$1 == "gpu.gemm_efficiency" { print $2 }' "$T/out")
if [ $rc -eq 0 ] && [ ! -s "$T/err" ] && grep -q '^cross-valid\. 5-fold (seed 3): MAE' "$T/out" &&
	grep -q 'not pinned down by these runs' "$T/out" && grep -q "^wrote $T/fitted.json\$" "$T/out" &&
	awk -v e="$eff" 'BEGIN { exit !(e > 0.582 && e < 0.618) }'; then
	ok "calibrate --runs: fitted gemm_efficiency $eff (truth 0.6), what was not pinned down, the cross-validated error"
else
	nok "calibrate --runs" "exit $rc, gemm_efficiency '$eff'; expected 0, 0.6 +- 3 %, the summary lines" "$(cat "$T/out" "$T/err")"
fi
if grep -q '"calibration"' "$T/fitted.json" && grep -q '"rows": 24' "$T/fitted.json" &&
	grep -q '"date": "1970-01-01"' "$T/fitted.json" && grep -q '"mae_pct"' "$T/fitted.json"; then
	ok "the calibrated cluster carries its provenance"
else
	nok "provenance" "expected calibration.rows 24, date, mae_pct in $T/fitted.json"
fi
if [ "$(head -n 1 "$T/res.csv")" = "line,set,group,measured_s,predicted_s,error_pct" ] &&
	[ "$(grep -c ',fit,"' "$T/res.csv")" -eq 24 ] && [ "$(wc -l <"$T/res.csv")" -eq 25 ]; then
	ok "--residuals: one line per row with its measured and predicted time"
else
	nok "--residuals" "expected a header and 24 fitted rows in $T/res.csv" "$(cat "$T/res.csv")"
fi
for c in "estimate --model gpt-1.7b --gpus 16 --plan tp=2,pp=2" "sim --model gpt-1.7b --gpus 16 --plan tp=2,pp=2" \
	"plan --model gpt-1.7b --gpus 16 --top 1"; do
	run $c --cluster "$T/fitted.json"
	if [ $rc -eq 0 ] && [ ! -s "$T/err" ]; then
		ok "strata ${c%% *} takes the calibrated cluster"
	else
		nok "strata ${c%% *} --cluster fitted.json" "exit $rc: $(cat "$T/err")"
	fi
done
run compare --model gpt-1.7b --clusters "$T/fitted.json,dgx-a100-80g" --gpus 16
if [ $rc -eq 0 ]; then ok "strata compare takes the calibrated cluster"; else nok "compare" "exit $rc: $(cat "$T/err")"; fi

# ------------------------------------------------------------------ bad input
H="model,gpus,plan,measured_s"
# bad DESCRIPTION NEEDLE CSV-TEXT [EXTRA OPTIONS]: exit 2, one stderr line with NEEDLE, nothing written
bad() {
	printf '%s' "$3" >"$T/bad.csv"
	rm -f "$T/o.json"
	d=$1 n=$2
	shift 3
	run calibrate --runs "$T/bad.csv" --cluster dgx-a100-80g --out "$T/o.json" "$@"
	if [ $rc -eq 2 ] && [ ! -s "$T/out" ] && [ "$(wc -l <"$T/err")" -eq 1 ] && grep -qF -- "$n" "$T/err" &&
		[ ! -e "$T/o.json" ]; then
		ok "$d: exit 2, one line, nothing written"
	else
		nok "$d" "exit $rc; expected 2 and one line with '$n'" "$(cat "$T/err")"
	fi
}
bad "an unknown model" "bad.csv:3: model 'gpt-0b'" "$H
gpt-1.7b,8,tp=8,1
gpt-0b,8,tp=8,1
"
bad "an impossible plan" "bad.csv:2: plan 'tp=16'" "$H
gpt-1.7b,8,tp=16,1
"
bad "a non-positive time" "bad.csv:2: measured_s '0'" "$H
gpt-1.7b,8,tp=8,0
"
bad "too few rows" "too few to identify anything" "$H
gpt-1.7b,8,tp=8,1
gpt-1.7b,8,tp=4,1
"
bad "a missing column" "no column 'measured_s'" "model,gpus,plan
gpt-1.7b,8,tp=8
"
bad "--runs with --kineto" "give one" "$H
" --kineto x.json
bad "a bad --fit-fraction" "--fit-fraction" "$H
" --fit-fraction 1.5
finish_tests
