#!/bin/sh
# shellcheck disable=SC2086 # fixed argument lists are split on purpose
# Golden CLI test: `strata plan --search ilp` (issue 4).
#   - GPT 18.4B on one DGX A100 node, no pipeline: the table names Megatron's roles (column-split
#     qkv/fc1, row-split proj/fc2) and the equivalent plan tp=8;
#   - --json: the enumerator's shape (plans[].spec, iteration_time_s, ..., evaluated, search_time_s)
#     plus the per-operator assignment; --out writes the plan JSON atomically;
#   - a custom graph (tests/data/graph_unet.json) gives a plan;
#   - strata estimate and strata sim take the plan file: the planner's time again (exactly, in
#     simulation, for one stage; within 2% for a pipeline), the estimate keys, a trace with the
#     resharding collectives; a custom graph's plan with --graph; an unknown operator, another
#     model's plan and --every-rank are refused (exit 2, one line);
#   - the distributed optimizer: auto takes ZeRO-1 where memory is tight, the plan file carries
#     stages[].zero and sim runs its reduce-scatter and all-gather; bad --zero and "zero" values
#     exit 2 with one line;
#   - bad input: unknown --search, a cyclic graph, a graph with mismatched shapes (exit 2, one line,
#     no output file), an infeasible memory limit (exit 1 naming the limit and the excess).
#
# Environment (set by automake): STRATA, SRCDIR. POSIX sh only. Exit 0 pass, 1 fail, 99 hard error.

SRCDIR=${SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
# shellcheck source=lib.sh source-path=SCRIPTDIR
. "$SRCDIR/tests/lib.sh"

start_tests cli-ilp
flat() { awk "$FLATTEN" "$1" >"$1.flat" 2>"$T/flat.err"; }
get() { awk -v p="$2" '$1 == p { print substr($0, length($1) + 2); exit }' "$1"; }

echo "# strata: $STRATA"
GPT="--search ilp --model gpt-18.4b --cluster dgx-a100-80g --gpus 8 --gbs 8 --mbs 1 --max-stages 1"

run plan $GPT
if [ $rc -eq 0 ] && grep -Eq '^  qkv +matmul +n +column' "$T/out" && grep -Eq '^  fc2 +matmul +f +row' "$T/out" &&
	grep -q 'amounts to: tp=8,pp=1,dp=1' "$T/out"; then
	ok "gpt-18.4b on 8 GPUs: the ILP finds Megatron's column/row split by itself"
else
	nok "gpt-18.4b on 8 GPUs: Megatron's roles and tp=8 expected"
fi

run plan $GPT --json --out "$T/plan.json"
if [ $rc -eq 0 ] && [ ! -s "$T/err" ] && cp "$T/out" "$T/r.json" && flat "$T/r.json"; then
	F="$T/r.json.flat"
	missing=""
	for k in iteration_time_s tokens_per_s model_tflops_per_gpu mfu memory_peak_gib; do
		get "$F" ".plans[0].$k" | grep -Eq '^[0-9]' || missing="$missing $k"
	done
	get "$F" ".plans[0].spec" | grep -q '"tp=8' || missing="$missing spec"
	get "$F" '.plans[0].stages[0].ops.qkv.split[0]' | grep -q '"n"' || missing="$missing ops.qkv.split"
	get "$F" .evaluated | grep -Eq '^[0-9]+$' || missing="$missing evaluated"
	get "$F" .search_time_s | grep -Eq '^[0-9]' || missing="$missing search_time_s"
	if [ -z "$missing" ]; then ok "--json: plans[], per-operator split, evaluated, search_time_s"; else nok "--json lacks:$missing"; fi
else
	nok "--json: one JSON object, nothing on stderr" "$(cat "$T/flat.err" 2>/dev/null)"
fi
if [ -s "$T/plan.json" ] && flat "$T/plan.json" && get "$T/plan.json.flat" .search | grep -q '"ilp"' &&
	get "$T/plan.json.flat" '.stages[0].layers[1]' | grep -q '^40$'; then
	ok "--out: the plan JSON with stages and shardings"
else
	nok "--out: plan JSON expected"
fi

run plan --search ilp --graph "$SRCDIR/tests/data/graph_unet.json" --cluster dgx-a100-80g --gpus 8 --microbatches 4
if [ $rc -eq 0 ] && grep -q '^graph unet-small (11 operators)' "$T/out" && grep -Eq '^  skip +concat' "$T/out"; then
	ok "a custom U-Net graph gets a plan"
else
	nok "custom graph plan expected"
fi

# ------------------------------------------------------------------ estimate and sim take the plan
num() { awk -v k="$2" 'index($0, k) == 1 { sub(/^[^0-9]*/, "", $0); print $1 + 0; exit }' "$1"; }
close_to() { awk -v a="$1" -v b="$2" -v tol="$3" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(a > 0 && d <= tol * b) }'; }
EST="--model gpt-18.4b --cluster dgx-a100-80g --gpus 8"
predicted=$(get "$T/plan.json.flat" .predicted_iteration_time_s)
run estimate $EST --plan "$T/plan.json"
t=$(num "$T/out" "iteration time")
if [ $rc -eq 0 ] && [ ! -s "$T/err" ] && close_to "$t" "$predicted" 0.001 && grep -q 'amounts to: tp=8,pp=1,dp=1' "$T/out"; then
	ok "estimate --plan ILP_PLAN: the planner's time ($t s), the equivalent spec"
else
	nok "estimate of the ILP plan: $t s, the planner said $predicted s" "$(cat "$T/err")"
fi
run estimate $EST --plan "$T/plan.json" --json
if [ $rc -eq 0 ] && cp "$T/out" "$T/e.json" && flat "$T/e.json"; then
	missing=""
	for k in iteration_time_s tokens_per_s model_tflops_per_gpu mfu memory_peak_gib breakdown_s.compute; do
		get "$T/e.json.flat" ".$k" | grep -Eq '^[0-9]' || missing="$missing $k"
	done
	get "$T/e.json.flat" .fits | grep -q true || missing="$missing fits"
	get "$T/e.json.flat" '.stages[0].ops.fc1.split[0]' | grep -q '"f"' || missing="$missing stages"
	if [ -z "$missing" ]; then ok "estimate --json of the ILP plan: the estimate keys and the stages"; else nok "estimate --json lacks:$missing"; fi
else
	nok "estimate --json of the ILP plan"
fi
run sim $EST --plan "$T/plan.json" --trace "$T/ilp.trace.json"
t=$(num "$T/out" "iteration time (s)")
if [ $rc -eq 0 ] && close_to "$t" "$predicted" 0.001 && grep -q '^simulated  1 ranks' "$T/out" && [ -s "$T/ilp.trace.json" ] &&
	grep -q '"reducescatter"\|"allgather"' "$T/ilp.trace.json"; then
	ok "sim --plan ILP_PLAN: one stage takes exactly the planner's time; its collectives are in the trace"
else
	nok "sim of the ILP plan: $t s, the planner said $predicted s" "$(cat "$T/err")"
fi

# a pipeline over sub-meshes of different sizes
run plan --search ilp $EST --gbs 256 --out "$T/pipe.json"
stages=$(grep -c '"layers"' "$T/pipe.json" 2>/dev/null)
predicted=$(flat "$T/pipe.json" && get "$T/pipe.json.flat" .predicted_iteration_time_s)
run sim $EST --plan "$T/pipe.json" --json
if [ $rc -eq 0 ] && [ "${stages:-0}" -gt 1 ] && cp "$T/out" "$T/s.json" && flat "$T/s.json" &&
	close_to "$(get "$T/s.json.flat" .iteration_time_s)" "$predicted" 0.02 &&
	close_to "$(get "$T/s.json.flat" .analytical.iteration_time_s)" "$predicted" 0.000001 &&
	get "$T/s.json.flat" .events | grep -Eq '^[1-9]'; then
	ok "sim --json of a $stages-stage ILP plan: within 2% of the planner's 1F1B formula"
else
	nok "sim of the pipelined ILP plan ($stages stages)" "$(cat "$T/err")"
fi

run plan --search ilp --graph "$SRCDIR/tests/data/graph_unet.json" --cluster dgx-a100-80g --gpus 8 --microbatches 4 --out "$T/unet.json"
run estimate --graph "$SRCDIR/tests/data/graph_unet.json" --cluster dgx-a100-80g --gpus 8 --plan "$T/unet.json"
if [ $rc -eq 0 ] && grep -q '^graph      unet-small' "$T/out" && grep -q 'iteration time' "$T/out"; then
	ok "estimate --graph with the custom graph's plan"
else
	nok "estimate of a custom graph's plan" "$(cat "$T/err")"
fi

# a custom graph too big for one stage: pipelined over its segments, then estimated and simulated
TOWER="--graph $SRCDIR/tests/data/graph_tower.json --cluster dgx-a100-80g --gpus 16"
run plan --search ilp $TOWER --microbatches 64 --mem-limit 6 --zero 0 --out "$T/tower.json"
stages=$(grep -c '"layers"' "$T/tower.json" 2>/dev/null)
run sim $TOWER --plan "$T/tower.json" --json
if [ $rc -eq 0 ] && [ "${stages:-0}" -gt 1 ] && cp "$T/out" "$T/ts.json" && flat "$T/ts.json" &&
	close_to "$(get "$T/ts.json.flat" .iteration_time_s)" "$(get "$T/ts.json.flat" .analytical.iteration_time_s)" 0.01; then
	ok "a custom graph over its memory limit: $stages pipeline stages over its segments, simulated within 1%"
else
	nok "custom graph pipeline ($stages stages)" "$(cat "$T/err")"
fi

# bad plans: exit 2, one line naming the file and key
# refused DESC FILE PATTERN ESTIMATE_ARGS...: strata estimate of the plan FILE exits 2 with one line
# on stderr that matches PATTERN
refused() {
	desc=$1 file=$2 pat=$3
	shift 3
	run estimate "$@" --plan "$file"
	if [ $rc -eq 2 ] && [ "$(nlines "$T/err")" -eq 1 ] && grep -q "$pat" "$T/err"; then ok "$desc"; else nok "$desc" "$(cat "$T/err")"; fi
}
sed 's/"fc1"/"fc9"/' "$T/plan.json" >"$T/badop.json"
refused "ILP plan with an unknown operator: exit 2 naming stages[0].ops.fc9" "$T/badop.json" \
	"badop.json: key 'stages\[0\].ops.fc9'" $EST
run sim --model gpt3-175b --cluster dgx-a100-80g --gpus 8 --plan "$T/plan.json"
if [ $rc -eq 2 ] && [ "$(nlines "$T/err")" -eq 1 ] && grep -q "made for model gpt-18.4b" "$T/err"; then
	ok "ILP plan of another model: exit 2, says which model it was made for"
else
	nok "ILP plan of another model" "$(cat "$T/err")"
fi
sed 's/"pp": 1,/"pp": 2,/' "$T/plan.json" >"$T/badpp.json"
refused "ILP plan whose pp disagrees with its stages: exit 2 naming pp" "$T/badpp.json" "key 'pp'.*1 stages" $EST
run sim $EST --plan "$T/plan.json" --every-rank
if [ $rc -eq 2 ] && [ "$(nlines "$T/err")" -eq 1 ] && grep -q "every-rank" "$T/err"; then
	ok "sim --every-rank of an ILP plan: exit 2, one line (stages run one SPMD program per mesh)"
else
	nok "sim --every-rank of an ILP plan" "$(cat "$T/err")"
fi

# ------------------------------------------------------------------ the distributed optimizer (ZeRO-1)
# Llama-2 7B on 16 A100s without a pipeline: memory is tight at 18 bytes per parameter, and auto
# (the default) takes ZeRO-1; --zero 0 is slower. The plan file carries stages[].zero; sim runs
# the reduce-scatter and the weights' all-gather and takes exactly the planner's time.
ZERO="--search ilp --model llama2-7b --cluster dgx-a100-80g --gpus 16 --gbs 256 --max-stages 1"
ZEST="--model llama2-7b --cluster dgx-a100-80g --gpus 16"
run plan $ZERO --zero 0
t0=$(num "$T/out" "iteration")
run plan $ZERO --out "$T/zero.json"
t1=$(num "$T/out" "iteration")
if [ $rc -eq 0 ] && grep -Eq '^ +0 +0-31 +2x8 +[0-9.]+ +[0-9.]+ +1 +none' "$T/out" && flat "$T/zero.json" &&
	get "$T/zero.json.flat" '.stages[0].zero' | grep -q '^1$' &&
	awk -v a="$t1" -v b="$t0" 'BEGIN { exit !(a > 0 && a < b) }'; then
	ok "ZeRO-1 chosen where memory is tight: $t1 s against $t0 s with --zero 0; stages[].zero in the plan file"
else
	nok "auto should choose zero 1 for llama2-7b on 16 GPUs ($t1 s vs $t0 s)" "$(cat "$T/err")"
fi
predicted=$(get "$T/zero.json.flat" .predicted_iteration_time_s)
run sim $ZEST --plan "$T/zero.json" --trace "$T/zero.trace.json"
t=$(num "$T/out" "iteration time (s)")
if [ $rc -eq 0 ] && close_to "$t" "$predicted" 0.001 && grep -q '"grad reduce-scatter"' "$T/zero.trace.json" &&
	grep -q '"param all-gather"' "$T/zero.trace.json" && ! grep -q '"grad all-reduce"' "$T/zero.trace.json"; then
	ok "sim of a ZeRO-1 ILP plan: the planner's time ($t s); reduce-scatter and all-gather, no all-reduce"
else
	nok "sim of the ZeRO-1 plan: $t s, the planner said $predicted s" "$(cat "$T/err")"
fi
for bad in '2' '"yes"'; do
	sed "s/\"zero\": 1,/\"zero\": $bad,/" "$T/zero.json" >"$T/badzero.json"
	refused "ILP plan with \"zero\": $bad: exit 2 naming stages[0].zero" "$T/badzero.json" \
		"badzero.json: key 'stages\[0\].zero'" $ZEST
done
run plan $ZERO --zero 2 --out "$T/nope3.json"
if [ $rc -eq 2 ] && [ "$(nlines "$T/err")" -eq 1 ] && grep -q "'--zero'" "$T/err" && [ ! -e "$T/nope3.json" ]; then
	ok "--zero 2: exit 2, one line"
else
	nok "--zero 2" "$(cat "$T/err")"
fi

# ------------------------------------------------------------------ bad input
run plan --search annealing --model gpt-1.7b --cluster dgx-a100-80g
if [ $rc -eq 2 ] && [ "$(nlines "$T/err")" -eq 1 ] && grep -q "'--search'" "$T/err"; then ok "unknown --search: exit 2, one line"; else nok "unknown --search"; fi

cat >"$T/cycle.json" <<'J'
{"tensors": [{"name": "x", "shape": [4, 4], "input": true}, {"name": "a", "shape": [4, 4]}, {"name": "b", "shape": [4, 4]}],
 "ops": [{"name": "f", "type": "elementwise", "inputs": ["x", "b"], "output": "a"},
         {"name": "g", "type": "elementwise", "inputs": ["a"], "output": "b"}]}
J
run plan --search ilp --graph "$T/cycle.json" --cluster dgx-a100-80g --gpus 8 --out "$T/nope.json"
if [ $rc -eq 2 ] && [ "$(nlines "$T/err")" -eq 1 ] && grep -q "cycle.json.*cycle" "$T/err" && [ ! -e "$T/nope.json" ]; then
	ok "cyclic graph: exit 2, one line naming the file, no plan written"
else
	nok "cyclic graph"
fi

cat >"$T/shape.json" <<'J'
{"tensors": [{"name": "x", "shape": [8, 16], "input": true}, {"name": "w", "shape": [32, 4], "weight": true},
             {"name": "y", "shape": [8, 4]}],
 "ops": [{"name": "mm", "type": "matmul", "inputs": ["x", "w"], "output": "y"}]}
J
run plan --search ilp --graph "$T/shape.json" --cluster dgx-a100-80g --gpus 8
if [ $rc -eq 2 ] && [ "$(nlines "$T/err")" -eq 1 ] && grep -q "ops\[0\] (mm)" "$T/err"; then
	ok "mismatched shapes: exit 2 naming the operator"
else
	nok "mismatched shapes"
fi

run plan --search ilp --model gpt3-175b --cluster dgx-a100-80g --gpus 8 --gbs 8 --mbs 1 --max-stages 1 --out "$T/nope2.json"
if [ $rc -eq 1 ] && [ "$(nlines "$T/err")" -eq 1 ] && grep -q "memory limit.*over" "$T/err" && [ ! -e "$T/nope2.json" ]; then
	ok "175B on 8 GPUs without a pipeline: exit 1, which limit and by how much"
else
	nok "infeasible memory"
fi

finish_tests
