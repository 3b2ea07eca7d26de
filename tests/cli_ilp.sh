#!/bin/sh
# shellcheck disable=SC2086 # fixed argument lists are split on purpose
# Golden CLI test: `strata plan --search ilp` (issue 4).
#   - GPT 18.4B on one DGX A100 node, no pipeline: the table names Megatron's roles (column-split
#     qkv/fc1, row-split proj/fc2) and the equivalent plan tp=8;
#   - --json: the enumerator's shape (plans[].spec, iteration_time_s, ..., evaluated, search_time_s)
#     plus the per-operator assignment; --out writes the plan JSON atomically;
#   - a custom graph (tests/data/graph_unet.json) gives a plan;
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
