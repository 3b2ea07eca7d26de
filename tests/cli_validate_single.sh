#!/bin/sh
# tests/cli_validate_single.sh: `scripts/validate.sh --set vtrain_single` on a made-up 3-row fixture
# in the layout of vTrain's ground_truth_single.csv (byte-order mark and header included): one
# group (same model, GPUs, global batch) of tp 1, 2, 4. The fixture's measured times are strata's
# own predictions, computed here with the construction the script documents (the vTrain model and
# plan, the vTrain cluster as one node of the row's GPUs): in the same order they give tau-b +1 and
# MAE 0, in reverse order tau-b -1 and no group >= 0.5; a row whose tp*pp*dp is not its GPU count is
# reported as an error and left out. Checks the SUMMARY fields and the --csv rows.
SRCDIR=${SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
. "$SRCDIR/tests/lib.sh"
start_tests cli-validate-single

VAL=$SRCDIR/scripts/validate.sh
CL=$SRCDIR/tests/data/validation/vtrain_cluster.json

cat >"$T/model.json" <<'EOF'
{ "name": "m", "layers": 12, "hidden": 1024, "heads": 16, "kv_heads": 16,
  "ffn": 4096, "vocab": 50257, "seq_len": 1024,
  "activation": "gelu", "norm": "layernorm", "position": "learned",
  "tied_embeddings": true, "dropout": true, "bias": true }
EOF
sed -e 's/"nodes": *[0-9]*/"nodes": 1/' -e 's/"gpus_per_node": *[0-9]*/"gpus_per_node": 8/' "$CL" >"$T/node8.json"

# predicted milliseconds of the three plans (tp pp dp mbs), as the script must run them
pred=""
for p in "1 1 8 2" "2 1 4 4" "4 1 2 8"; do
	# shellcheck disable=SC2086 # the four degrees, split on purpose
	set -- $p
	spec="tp=$1,pp=$2,dp=$3,cp=1,mbs=$4,gbs=16,vp=1,seq=1024,sp=0,recompute=full,zero=0,dtype=fp16"
	spec="$spec,schedule=1f1b,grad_bytes=2,attention=unfused"
	run estimate --model "$T/model.json" --cluster "$T/node8.json" --gpus 8 --plan "$spec" --json
	s=$(awk "$FLATTEN" "$T/out" 2>/dev/null | awk '$1 == ".iteration_time_s" { print $2; exit }')
	if [ $rc -ne 0 ] || [ -z "$s" ]; then
		nok "strata estimate of plan $p" "exit $rc"
		finish_tests
	fi
	pred="$pred $s"
done
# shellcheck disable=SC2086 # the three times, split on purpose
set -- $pred
p1=$1 p2=$2 p3=$3
# the three predictions must differ, else no order exists to test
if awk -v a="$p1" -v b="$p2" -v c="$p3" 'BEGIN { exit !(a != b && b != c && a != c) }'; then
	ok "strata predicts three different times for tp 1, 2, 4"
else
	nok "three different predictions" "$p1 $p2 $p3"
fi

# fixture DIR MS1 MS2 MS3 [GPUS1]: the 3-row CSV with these measured milliseconds
fixture() {
	mkdir -p "$1"
	{
		printf '\357\273\277# GPUs,global batch,micro batch,hidden size,attention heads,# layers,'
		printf 'sequence length,tensor parallelism,data parallelism,pipeline parallelism,iteration time (ms)\r\n'
		printf '%s,16,2,1024,16,12,1024,1,8,1,%s\r\n' "${5:-8}" "$2"
		printf '8,16,4,1024,16,12,1024,2,4,1,%s\r\n' "$3"
		printf '8,16,8,1024,16,12,1024,4,2,1,%s\r\n' "$4"
	} >"$1/vtrain_single.csv"
}
ms() { awk -v s="$1" 'BEGIN { printf "%.9f", s * 1000 }'; }

# summary KEY: the value of KEY= in the SUMMARY vtrain_single line of $T/out
summary() { awk -v k="$1" '$1 == "SUMMARY" && $2 == "vtrain_single" {
	for (i = 3; i <= NF; i++) if (index($i, k "=") == 1) { print substr($i, length(k) + 2); exit } }' "$T/out"; }

# ---------------------------------------------------------------- measured in strata's order
fixture "$T/same" "$(ms "$p1")" "$(ms "$p2")" "$(ms "$p3")"
cmd="validate.sh --set vtrain_single (same order)"
sh "$VAL" --strata "$STRATA" --validation "$T/same" --set vtrain_single --csv "$T/acc.csv" >"$T/out" 2>"$T/err"
rc=$?
got="rows=$(summary rows) compared=$(summary compared) errors=$(summary errors) groups=$(summary groups)"
got="$got tau_groups=$(summary tau_groups) tau_mean=$(summary tau_mean) tau_median=$(summary tau_median)"
got="$got tau_ge_0_5=$(summary tau_ge_0_5) mae_pct=$(summary mae_pct)"
want="rows=3 compared=3 errors=0 groups=1 tau_groups=1 tau_mean=1.0000 tau_median=1.0000 tau_ge_0_5=1.0000"
want="$want mae_pct=0.000"
if [ $rc -eq 0 ] && [ "$got" = "$want" ]; then
	ok "measured = predicted: one group, tau-b +1, all of it >= 0.5, MAE 0"
else
	nok "same order summary" "exit $rc" "got:  $got" "want: $want"
fi
if [ "$(nlines "$T/acc.csv")" -eq 4 ] && [ "$(sed -n 1p "$T/acc.csv")" = "name,measured,predicted,set" ] &&
	awk -F, -v p="$p2" '/tp=2 pp=1 dp=4 mbs=4/ { found = ($NF == "vtrain_single" && $(NF - 1) == p) }
		END { exit !found }' "$T/acc.csv"; then
	ok "--csv writes the 3 rows, each with strata's seconds, set vtrain_single"
else
	nok "--csv rows" "$(cat "$T/acc.csv")"
fi

# ---------------------------------------------------------------- measured in reverse order
# C - p reverses every pair's order whatever order the three predictions come in
C=$(awk -v a="$p1" -v b="$p2" -v c="$p3" 'BEGIN { printf "%.17g", a + b + c }')
rev() { awk -v c="$C" -v s="$1" 'BEGIN { printf "%.9f", (c - s) * 1000 }'; }
fixture "$T/rev" "$(rev "$p1")" "$(rev "$p2")" "$(rev "$p3")"
cmd="validate.sh --set vtrain_single (reverse order)"
sh "$VAL" --strata "$STRATA" --validation "$T/rev" --set vtrain_single >"$T/out" 2>"$T/err"
rc=$?
got="tau_mean=$(summary tau_mean) tau_ge_0_5=$(summary tau_ge_0_5)"
if [ $rc -eq 0 ] && [ "$got" = "tau_mean=-1.0000 tau_ge_0_5=0.0000" ]; then
	ok "measured in reverse: tau-b -1, no group >= 0.5"
else
	nok "reverse order summary" "exit $rc" "got: $got"
fi

# ---------------------------------------------------------------- a row that contradicts itself
fixture "$T/bad" "$(ms "$p1")" "$(ms "$p2")" "$(ms "$p3")" 4
cmd="validate.sh --set vtrain_single (tp*pp*dp != GPUs)"
sh "$VAL" --strata "$STRATA" --validation "$T/bad" --set vtrain_single >"$T/out" 2>"$T/err"
rc=$?
got="rows=$(summary rows) compared=$(summary compared) errors=$(summary errors) groups=$(summary groups)"
got="$got tau_groups=$(summary tau_groups)"
if [ $rc -eq 0 ] && [ "$got" = "rows=3 compared=2 errors=1 groups=2 tau_groups=1" ] &&
	grep -q 'error: data: tp\*pp\*dp = 8 != # GPUs 4' "$T/out"; then
	ok "a row with tp*pp*dp != GPUs: an error of its own group, the other two compared"
else
	nok "bad row" "exit $rc" "got: $got"
fi

finish_tests
