#!/bin/sh
# cli_run_ilp.sh: `strata run` of operator-level plans that shard operators inside a stage (issue 18):
# what `strata plan --search ilp` picks for tiny-gpt, tiny-llama and tiny-moe on 2, 4 and 8 devices runs with
# each operator split as the ILP split it, where that is the decoder's Megatron sharding, part of the
# attention on the token rows under it, QKV on its fused width with the attention whole, or the experts
# over a tp or batch axis or split by their ffn, or on a 2-D mesh the output layer vocabulary-parallel over
# its batch axis (search/as_hybrid.c), and computes what the single-rank run computes, within
# tests/cli_run.sh's tolerances. Stages on meshes of different shapes run stage by stage, each with its own
# degrees, the activations and gradients moved between them as the cross-mesh exchange
# (src/lower/lower_stages.c). The other shardings of dense models (GSPMD-style 2-D splits) run per operator
# (exec/opexec.c) within the tolerances too; MoE plans no template takes are refused in one line naming the stage
# and the operator.
# scripts/ilp_census.sh counts what runs and what is refused over all the tiny presets' plans.
#
# The clusters (tests/data/cluster_slowgpu*.json) are test fixtures, not hardware: GPUs of 0.01
# TFLOP/s on a fast network, so that the tiny presets' compute outweighs the collectives and the ILP
# shards them (on a real cluster it keeps them whole: tests/cli_run.sh); the 2x2 one has a slow
# network between its two nodes. Skips (77) where strata was built without the executor or mpirun is
# missing (GLPK is a required dependency: no skip for it).
SRCDIR=${SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
. "$SRCDIR/tests/lib.sh"
start_tests run-ilp

command -v mpirun >/dev/null 2>&1 || { echo "SKIP: mpirun not found"; exit 77; }
command -v timeout >/dev/null 2>&1 || { echo "SKIP: timeout not found"; exit 77; }
run run --model tiny-gpt --plan tp=1,pp=1,dp=1,gbs=1,seq=8 --steps 1
if grep -q "built without the executor" "$T/err"; then echo "SKIP: strata was built without the executor"; exit 77; fi

SLOW=$SRCDIR/tests/data/cluster_slowgpu.json
# ilp NAME ARGS...: plan into $T/NAME.json on $SLOW, sequences of 32 tokens
ilp() {
	_name=$1
	shift
	"$STRATA" plan --search ilp --cluster "$SLOW" --seq 32 "$@" --out "$T/$_name.json" >"$T/ilpout" 2>&1 ||
		nok "ILP plan $*" "$(cat "$T/ilpout")"
}
# checked NP DESCRIPTION ARGS...: ARGS with --steps 2 --check --json on NP ranks, within the tolerance
checked() {
	_np=$1 _what=$2
	shift 2
	mpi_strata 120 "$_np" run --cluster "$SLOW" "$@" --steps 2 --check --json
	check_within "$_what"
}
# splits NAME OP LABELS: the plan file splits operator OP by LABELS, one per mesh axis (e.g. '"n"')
splits() {
	[ "$(awk -v op="\"$2\": {" 'f && /]/ { exit } f { gsub(/[ ,]/, ""); s = s $0 } index($0, op) { getline; f = 1 }
		END { print s }' "$T/$1.json")" = "$3" ]
}
# ran SPEC: the run's plan (JSON) begins with SPEC
ran() { grep -q "\"plan\": \"$1" "$T/out"; }
# simulated_tp NAME MODEL: the last run's --compare simulates the tp collectives that ran: as plan NAME's own
# lowering prices them (strata sim --plan: the all-to-alls and gathers of its rows splits, as the ILP prices
# them), not the Megatron collectives of the plain tp spec the executor runs it as (its program's)
simulated_tp() {
	_run=$(awk '$1 == ".compare.simulated_s.coll_tp" { print $2 }' "$T/flat")
	_ilp=$("$STRATA" sim --cluster "$SLOW" --model "$2" --plan "$T/$1.json" --json | awk "$FLATTEN" |
		awk '$1 == ".breakdown_s.tp_comm" { print $2 }')
	_spec=$(grep -o '"plan": "[^"]*' "$T/out" | cut -d'"' -f4)
	_plain=$("$STRATA" sim --cluster "$SLOW" --model "$2" --plan "$_spec" --json | awk "$FLATTEN" |
		awk '$1 == ".breakdown_s.tp_comm" { print $2 }')
	if awk -v r="$_run" -v i="$_ilp" -v p="$_plain" \
		'BEGIN { exit !(r > 0 && i > 0 && (r - i) ^ 2 <= (1e-6 * i) ^ 2 && (r - p) ^ 2 > (1e-3 * r) ^ 2) }'; then
		ok "$1: --compare simulates the tp collectives that ran (${_run} s, the ILP's; the plain spec's ${_plain:-none: not a plan without the ILP whole heads})"
	else nok "$1: --compare simulates the tp collectives that ran" "run $_run, ILP $_ilp, plain spec $_plain"; fi
}

# tiny-gpt on 2: heads and ffn split (Megatron's tp), the residual stream split by sequences
ilp g2 --model tiny-gpt --gpus 2 --gbs 8 --mbs 2 --max-stages 1
if splits g2 qkv '"n"' && splits g2 fc2 '"f"' && splits g2 ln1 '"b"' && splits g2 loss '"v"'; then
	ok "tiny-gpt on 2: the ILP splits heads, ffn and vocabulary, and the residual stream by sequences"
else nok "tiny-gpt on 2: the ILP's shardings" "$(cat "$T/g2.json")"; fi
checked 2 "tiny-gpt, ILP tp=2 with the residual stream split, matches the single-rank reference" \
	--model tiny-gpt --plan "$T/g2.json"
if ran "tp=2,pp=1,dp=1,.*sp=1"; then ok "it runs as tp=2 with sp"; else nok "it runs as tp=2 with sp"; fi

# tiny-gpt on 4: the residual stream split along the sequence ('s')
ilp g4 --model tiny-gpt --gpus 4 --gbs 8 --mbs 2 --max-stages 1
if splits g4 ln2 '"s"' && splits g4 proj '"n"'; then ok "tiny-gpt on 4: the residual stream split along the sequence"
else nok "tiny-gpt on 4: the ILP's shardings" "$(cat "$T/g4.json")"; fi
checked 4 "tiny-gpt, ILP tp=4 with the residual stream split, matches the reference" \
	--model tiny-gpt --plan "$T/g4.json"

# tiny-llama on 2 x 2: two stages, each on a mesh of two devices that shards it the same way
ilp l4 --model tiny-llama --gpus 4 --gbs 8 --mbs 2
if [ "$(grep -c '"gpus_per_node": 2' "$T/l4.json")" -eq 2 ] && splits l4 qkv '"n"'; then
	ok "tiny-llama on 4: two stages on meshes of two devices"
else nok "tiny-llama on 4: two stages on meshes of two devices" "$(cat "$T/l4.json")"; fi
checked 4 "tiny-llama, ILP 2 stages x tp=2 (GQA, rope, the exchange of each device's rows), matches the reference" \
	--model tiny-llama --plan "$T/l4.json"
if ran "tp=2,pp=2,dp=1,.*sp=1,.*stage_layers=2,2"; then ok "it runs as 2 stages of tp=2 with sp"
else nok "it runs as 2 stages of tp=2 with sp" "$(grep -o '"plan": "[^"]*' "$T/out")"; fi

# micro-batches of 8 sequences: the rows outweigh the attention's weights, and the ILP splits part of
# the attention by them (search/as_hybrid.c, exec/model.c "operator-level plans"). Over 270 plans of
# the tiny presets (these clusters, 1x8 and 2x4 variants and dgx-a100-80g; 2, 4, 8 devices; mbs 1, 2,
# 8; one or more stages) the projection on the rows was tiny-gpt's choice in 16, all run now; the
# whole attention on the sequences under a tensor-parallel MLP tiny-llama's in 19: the 8 on 2
# devices run, and the 9 with tp=4 or 8 over its 2 kv heads (below), 2 mix it with other splits
# tiny-gpt on 2: the projection on the rows under tp with sp (an all-to-all from the heads before it)
ilp g2r --model tiny-gpt --gpus 2 --gbs 16 --mbs 8 --max-stages 1
if splits g2r qkv '"n"' && splits g2r attention '"n"' && splits g2r proj '"b"' && splits g2r fc2 '"f"'; then
	ok "tiny-gpt on 2, micro-batch 8: the ILP splits the projection by the rows, the rest as Megatron's tp"
else nok "tiny-gpt on 2, micro-batch 8: the ILP's shardings" "$(cat "$T/g2r.json")"; fi
checked 2 "tiny-gpt, ILP tp=2 with the projection on the rows, matches the reference" --model tiny-gpt --plan "$T/g2r.json" \
	--compare
simulated_tp g2r tiny-gpt
if grep -q '"on_rows": "projection"' "$T/out"; then ok "it runs the projection on the rows"
else nok "it runs the projection on the rows" "$(head -3 "$T/out")"; fi
# tiny-llama on 2: QKV to the projection on each device's sequences, the MLP and the output layer tp
ilp l2r --model tiny-llama --gpus 2 --gbs 16 --mbs 8 --max-stages 1
if splits l2r qkv '"b"' && splits l2r attention '"b"' && splits l2r proj '"b"' && splits l2r fc1 '"f"' &&
	splits l2r logits '"v"'; then
	ok "tiny-llama on 2, micro-batch 8: the ILP splits the attention by sequences, the MLP by columns"
else nok "tiny-llama on 2, micro-batch 8: the ILP's shardings" "$(cat "$T/l2r.json")"; fi
checked 2 "tiny-llama, ILP attention data-parallel under a tp=2 MLP (GQA, rope), matches the reference" \
	--model tiny-llama --plan "$T/l2r.json"
if grep -q '"on_rows": "attention"' "$T/out" && ran "tp=2,pp=1,dp=1,.*sp=1"; then
	ok "it runs the attention on the rows, the MLP as tp=2 with sp"
else nok "it runs the attention on the rows, the MLP as tp=2 with sp" "$(head -3 "$T/out")"; fi
# tiny-gpt on 2 stages of 4 devices: the projection on the rows of a 4-way split, sent between the stages
SLOW8=$T/cluster_slowgpu8.json
sed 's/"gpus_per_node": 4/"gpus_per_node": 8/' "$SLOW" >"$SLOW8"
"$STRATA" plan --search ilp --cluster "$SLOW8" --seq 32 --model tiny-gpt --gpus 8 --gbs 32 --mbs 8 \
	--out "$T/g8r.json" >"$T/ilpout" 2>&1 || nok "ILP plan tiny-gpt on 8" "$(cat "$T/ilpout")"
if [ "$(grep -c '"gpus_per_node": 4' "$T/g8r.json")" -eq 2 ] && splits g8r proj '"b"'; then
	ok "tiny-gpt on 8, micro-batch 8: two stages of 4, the projection on the rows"
else nok "tiny-gpt on 8, micro-batch 8: two stages of 4, the projection on the rows" "$(cat "$T/g8r.json")"; fi
mpi_strata 180 8 run --cluster "$SLOW8" --model tiny-gpt --plan "$T/g8r.json" --steps 2 --check --json
check_within "tiny-gpt, ILP 2 stages x tp=4 with the projection on the rows, matches the reference (8 ranks)"

# refused: one line naming the stage and the operator, exit 2 on every rank, nothing on stdout
refused() {
	_what=$1 _needle=$2
	shift 2
	mpi_strata 60 "$@" --steps 1
	if [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] && [ "$(grep -c '^strata run:' "$T/err")" -eq 1 ] && [ ! -s "$T/out" ] &&
		grep -q "$_needle" "$T/err"; then
		ok "$_what: refused in one line"
	else nok "$_what: refused in one line" "$(cat "$T/err")"; fi
}
# QKV split along its fused width, its output all-gathered, the attention whole on every device and the
# projection by heads (exec/model.c, attn_rows 3): the ILP's pick where tp exceeds the kv heads
# (tiny-llama's 2 on 4 devices) or the heads (tiny-gpt's 4 on 8, the projection by head dimension)
ilp l4s --model tiny-llama --gpus 4 --gbs 8 --mbs 2 --max-stages 1
if splits l4s qkv '"e"' && splits l4s attention null && splits l4s proj '"n"' && splits l4s fc1 '"f"'; then
	ok "tiny-llama on 4: the ILP splits QKV along its fused width, the attention replicated"
else nok "tiny-llama on 4: the ILP's shardings" "$(cat "$T/l4s.json")"; fi
checked 4 "tiny-llama, ILP tp=4 with QKV on its fused width (2 kv heads), matches the reference" \
	--model tiny-llama --plan "$T/l4s.json" --compare
simulated_tp l4s tiny-llama
if grep -q '"qkv_split": "width"' "$T/out" && ran "tp=4,pp=1,dp=1,.*sp=1"; then
	ok "it runs QKV on its fused width, the rest as tp=4 with sp"
else nok "it runs QKV on its fused width, the rest as tp=4 with sp" "$(head -3 "$T/out")"; fi
SLOW18=$T/cluster_slowgpu18.json
sed 's/"gpus_per_node": 4/"gpus_per_node": 8/' "$SLOW" >"$SLOW18"
"$STRATA" plan --search ilp --cluster "$SLOW18" --seq 32 --model tiny-gpt --gpus 8 --gbs 8 --mbs 2 --max-stages 1 \
	--out "$T/g8e.json" >"$T/ilpout" 2>&1 || nok "ILP plan tiny-gpt on 8" "$(cat "$T/ilpout")"
if splits g8e qkv '"e"' && splits g8e qkv_bias '"e"' && splits g8e proj '"d"'; then
	ok "tiny-gpt on 8: QKV (and its bias) on its fused width, the projection by head dimension"
else nok "tiny-gpt on 8: the ILP's shardings" "$(cat "$T/g8e.json")"; fi
mpi_strata 180 8 run --cluster "$SLOW18" --model tiny-gpt --plan "$T/g8e.json" --steps 2 --check --json
check_within "tiny-gpt, ILP tp=8 over 4 heads with QKV on its fused width, matches the reference (8 ranks)"
# MoE on a tensor-parallel axis (exec/model.c, moe_rows): the router split by the hidden dimension (an
# all-to-all from the rows, its partial logits reduce-scattered to them), each device's rows dispatched to
# the experts split over the axis and combined back by all-to-alls; tiny-moe on 2 (attention by heads) and
# on 4 (QKV on its fused width, 2 kv heads)
ilp m2 --model tiny-moe --gpus 2 --gbs 8 --mbs 2 --max-stages 1
# (the rows by sequence 's' or by batch 'b', the same price with two sequences on two devices)
m2rows() { splits m2 ln2 "$1" && splits m2 dispatch "$1" && splits m2 moe_combine "$1"; }
if splits m2 qkv '"n"' && splits m2 router '"h"' && splits m2 expert_fc1 '"e"' && { m2rows '"s"' || m2rows '"b"'; }; then
	ok "tiny-moe on 2: the ILP splits the router by the hidden dimension, the experts over the axis"
else nok "tiny-moe on 2: the ILP's shardings" "$(cat "$T/m2.json")"; fi
checked 2 "tiny-moe, ILP tp=2 with the experts over the axis, matches the reference" \
	--model tiny-moe --plan "$T/m2.json" --compare
simulated_tp m2 tiny-moe
if grep -q '"experts": "tp rows"' "$T/out"; then ok "it runs the experts over the tp group on the rows"
else nok "it runs the experts over the tp group on the rows" "$(head -3 "$T/out")"; fi
ilp m4 --model tiny-moe --gpus 4 --gbs 8 --mbs 2 --max-stages 1
checked 4 "tiny-moe, ILP tp=4 with QKV on its fused width and the experts over the axis, matches the reference" \
	--model tiny-moe --plan "$T/m4.json"
# the experts over a batch axis (mbs 8): the attention, router, dispatch and combine on each device's sequences,
# the experts over the axis, the output layer vocabulary-parallel there; run as a tp axis whose attention and
# router take the rows (attn_rows 2, moe_rows with the router whole), the output layer Megatron's with sp
ilp m2b --model tiny-moe --gpus 2 --gbs 32 --mbs 8 --max-stages 1
if splits m2b qkv '"b"' && splits m2b router '"b"' && splits m2b expert_fc1 '"e"' && splits m2b moe_combine '"b"' &&
	splits m2b logits '"v"'; then
	ok "tiny-moe on 2, micro-batch 8: the ILP splits the experts over a batch axis, the output layer by vocabulary"
else nok "tiny-moe on 2, micro-batch 8: the ILP's shardings" "$(cat "$T/m2b.json")"; fi
checked 2 "tiny-moe, ILP experts over a batch axis beside a vocabulary-parallel output layer, matches the reference" \
	--model tiny-moe --plan "$T/m2b.json"
if grep -q '"on_rows": "attention"' "$T/out" && grep -q '"experts": "tp rows"' "$T/out" &&
	! grep -q '"router": "hidden"' "$T/out"; then
	ok "it runs the attention and the router on the rows, the experts over the group"
else nok "it runs the attention and the router on the rows, the experts over the group" "$(head -3 "$T/out")"; fi
# the same plan with the final norm, output layer and loss on the batch too (tests/data/plan_ilp_tiny_moe_ep2.json,
# m2b's file so edited by hand: the ILP does not pick it on these fixtures): Megatron's ep over the dp ranks
checked 2 "tiny-moe, ILP experts over a batch axis beside a data-parallel output layer (dp=2, ep=2), matches" \
	--model tiny-moe --plan "$SRCDIR/tests/data/plan_ilp_tiny_moe_ep2.json"
if ran "tp=1,pp=1,dp=2,.*ep=2,"; then ok "it runs as dp=2 with ep=2"
else nok "it runs as dp=2 with ep=2" "$(grep -o '"plan": "[^"]*' "$T/out")"; fi
# and on a 2x2 mesh beside a tp axis whose router splits the hidden dimension (tests/data/plan_ilp_tiny_moe_ep2_tp2.json,
# by hand: the ep2 plan's batch axis, then heads, ffn of each expert, router 'h'): no template (the executor's ep
# group would be dp ranks, the router's columns over tp not beside it), so it runs per operator (exec/opexec.c's MoE:
# each device's tokens dispatched to every expert's rows, the experts' all-to-alls as the lowering lists them)
checked 4 "tiny-moe, experts over a batch axis beside a router split by the hidden dimension, per operator, matches" \
	--model tiny-moe --plan "$SRCDIR/tests/data/plan_ilp_tiny_moe_ep2_tp2.json"
if ran ".*run per operator"; then ok "it runs per operator"; else nok "it runs per operator" "$(head -3 "$T/out")"; fi
# per operator (STRATA_RUN_PER_OP=1) also m2's plan (the router 'h', its partial logits reduced for the dispatch, which
# carries them to the combine: search/autoshard.c's edge_source; the combine's logit gradient back to the dispatch's
# layout, then to the router), and a hand-edited copy with the router whole (its logits sliced for the dispatch)
STRATA_RUN_PER_OP=1
export STRATA_RUN_PER_OP
checked 2 "tiny-moe, ILP router 'h' and experts over the axis, run per operator, matches the reference" \
	--model tiny-moe --plan "$T/m2.json"
awk '/"router": {/ { r = 1 } r && /"h"/ { sub(/"h"/, "null"); r = 0 } { print }' "$T/m2.json" >"$T/m2w.json"
if splits m2w router 'null'; then
	checked 2 "tiny-moe, the router whole, run per operator, matches the reference" --model tiny-moe --plan "$T/m2w.json"
else nok "m2w: the router made whole" "$(cat "$T/m2w.json")"; fi
unset STRATA_RUN_PER_OP
# a combine whose tokens are not the dispatch's (the hand-edited plan's combine whole on the rows): refused, naming it
awk '/"moe_combine": {/ { r = 1 } r && /"b"/ { sub(/"b"/, "null"); r = 0 } { print }' \
	"$SRCDIR/tests/data/plan_ilp_tiny_moe_ep2_tp2.json" >"$T/mc.json"
refused "tiny-moe, the combine's rows split otherwise than the dispatch's" \
	"operator moe_combine: .*the per-operator runtime's combine takes the tokens the dispatch routed" \
	4 run --cluster "$SLOW" --model tiny-moe --plan "$T/mc.json"
# each expert split by its ffn (expert tensor parallelism, Megatron-Core's --expert-tensor-parallel-size: fc1
# column- and fc2 row-parallel, the tokens all-gathered, the partial outputs reduce-scattered) on 8 devices: on a tp
# axis beside a router split by the hidden dimension (mbs 1), on a batch axis beside the attention on the rows (mbs 8)
SLOW18M=$T/cluster_slowgpu18m.json
sed 's/"gpus_per_node": 4/"gpus_per_node": 8/' "$SLOW" >"$SLOW18M"
for mb in 1 8; do
	"$STRATA" plan --search ilp --cluster "$SLOW18M" --seq 32 --model tiny-moe --gpus 8 --gbs $((4 * mb)) --mbs $mb \
		--max-stages 1 --out "$T/m8f.json" >"$T/ilpout" 2>&1 || nok "ILP plan tiny-moe on 8" "$(cat "$T/ilpout")"
	r=$([ $mb = 1 ] && echo h || echo b)
	if splits m8f expert_fc1 '"f"' && splits m8f expert_fc2 '"f"' && splits m8f router "\"$r\""; then
		ok "tiny-moe on 8, micro-batch $mb: the ILP splits each expert by its ffn, the router '$r'"
	else nok "tiny-moe on 8, micro-batch $mb: the ILP's shardings" "$(cat "$T/m8f.json")"; fi
	mpi_strata 240 8 run --cluster "$SLOW18M" --model tiny-moe --plan "$T/m8f.json" --steps 2 --check --json
	check_within "tiny-moe, ILP expert tensor parallelism over 8 (router '$r'), matches the reference (8 ranks)"
	if ! grep -q '"experts"' "$T/out" && { [ $mb = 8 ] || grep -q '"router": "hidden"' "$T/out"; }; then
		ok "it runs the experts split by their ffn (router '$r')"
	else nok "it runs the experts split by their ffn (router '$r')" "$(head -3 "$T/out")"; fi
done
# tiny-llama on 4 at micro-batch 8: the attention on the rows under a tp=4 MLP, which splits no head, so
# tp=4 need not divide the 2 kv heads
ilp l4r --model tiny-llama --gpus 4 --gbs 16 --mbs 8 --max-stages 1
checked 4 "tiny-llama, ILP attention on the rows under a tp=4 MLP (2 kv heads), matches the reference" \
	--model tiny-llama --plan "$T/l4r.json"
if grep -q '"on_rows": "attention"' "$T/out" && ran "tp=4,"; then ok "it runs the attention on the rows under tp=4"
else nok "it runs the attention on the rows under tp=4" "$(head -3 "$T/out")"; fi
# GSPMD-style plans, no Megatron template (exec/opexec.c runs them per operator: each device the stage's program on
# its shards, the resharding per mesh axis as the lowering lists it): on 2 nodes of 4 the ILP splits QKV by its
# contraction and fused width, the projection by hidden and heads, fc1 on both axes, the residual stream by hidden
# and sequence (tiny-llama), or QKV by hidden and heads and fc2 by its ffn on both axes (tiny-gpt: tied, biases,
# learned positions)
SLOW24=$T/cluster_slowgpu_2x4.json
sed 's/"nodes": 1, "gpus_per_node": 4/"nodes": 2, "gpus_per_node": 4/' "$SLOW" >"$SLOW24"
for mt in l:tiny-llama g:tiny-gpt; do
	"$STRATA" plan --search ilp --cluster "$SLOW24" --seq 32 --model "${mt#*:}" --gpus 8 --gbs 4 --mbs 1 --max-stages 1 \
		--out "$T/${mt%%:*}24.json" >"$T/ilpout" 2>&1 || nok "ILP plan ${mt#*:} on 2x4" "$(cat "$T/ilpout")"
done
if splits l24 qkv '"h""e"' && splits l24 proj '"h""n"' && splits l24 fc1 '"f""f"' &&
	splits l24 attn_residual '"h""s"'; then
	ok "tiny-llama on 2x4: the ILP's 2-D splits (QKV 'h','e', the projection 'h','n', fc1 'f','f')"
else nok "tiny-llama on 2x4: the ILP's shardings" "$(cat "$T/l24.json")"; fi
mpi_strata 180 8 run --cluster "$SLOW24" --model tiny-llama --plan "$T/l24.json" --steps 2 --check --json
check_within "tiny-llama, ILP 2-D splits on 2x4 run per operator, matches the reference (8 ranks)"
# the instructions measured: compute, resharding collectives, gradient reduction
measured() { grep -o "\"$1\": [0-9.e+-]*" "$T/out" | head -1 | awk '{ exit !($2 > 0) }'; }
if ran ".*run per operator" && measured fwd && measured bwd && measured "coll tp" && measured "coll dp"; then
	ok "it runs per operator, its compute and collectives measured"
else nok "it runs per operator, its compute and collectives measured" "$(head -3 "$T/out")"; fi
if splits g24 qkv '"h""n"' && splits g24 fc2 '"f""f"' && splits g24 embedding '"h""s"'; then
	ok "tiny-gpt on 2x4: the ILP's 2-D splits (QKV 'h','n', fc2 'f','f', the embedding 'h','s')"
else nok "tiny-gpt on 2x4: the ILP's shardings" "$(cat "$T/g24.json")"; fi
mpi_strata 180 8 run --cluster "$SLOW24" --model tiny-gpt --plan "$T/g24.json" --steps 2 --check --json
check_within "tiny-gpt, ILP 2-D splits on 2x4 run per operator (tied, biases, positions), matches the reference"
# the runtime also runs what the templates run (STRATA_RUN_PER_OP=1, a test hook): two stages, the activation sent
# to the next mesh device pair by device pair
STRATA_RUN_PER_OP=1
export STRATA_RUN_PER_OP
mpi_strata 180 4 run --cluster "$SLOW" --model tiny-llama --plan "$T/l4.json" --steps 2 --check --json
unset STRATA_RUN_PER_OP
check_within "tiny-llama, ILP 2 stages x 2 run per operator, matches the reference"
if ran ".*run per operator"; then ok "it runs per operator"; else nok "it runs per operator" "$(head -3 "$T/out")"; fi
# its report counts the 4 ranks that ran, and names each stage's row by its first device's world rank (0 and 2)
if grep -q '"ranks": 4,' "$T/out" &&
	[ "$(grep -o '"rank": [0-9]*, "stage": [0-9]*' "$T/out" | tr '\n' ' ')" = '"rank": 0, "stage": 0 "rank": 2, "stage": 1 ' ]; then
	ok "its report counts the ranks that ran and names each stage's row by its first device's rank"
else nok "its report counts the ranks that ran and names each stage's row by its first device's rank" "$(head -12 "$T/out")"; fi
# --check runs the single-rank reference once, on rank 0 (every rank sends it its reduced gradient blocks after the
# step): stage 1's first device (rank 2) holds no copy of the model, at least 3 copies' bytes below rank 0's heap
STRATA_RUN_PER_OP=1
export STRATA_RUN_PER_OP
mpi_strata 180 4 run --cluster "$SLOW" --model tiny-llama --plan "$T/l4.json" --steps 2 --check --json --compare
unset STRATA_RUN_PER_OP
check_within "tiny-llama, ILP 2 stages x 2 per operator, --check with the reference on rank 0 alone"
reference_on_0 "--check per operator: the reference on rank 0 only" 1 2 3
# the same plan hand-edited: stage 0 recomputing, stage 1 without ZeRO-1; the report line names each stage's ZeRO
awk '/"recompute"/ && !r { sub(/"none"/, "\"full\""); r = 1 } /"zero": 1/ { z++; if (z == 2) sub(/1/, "0") } { print }' \
	"$T/l4.json" >"$T/l4z.json"
STRATA_RUN_PER_OP=1
export STRATA_RUN_PER_OP
mpi_strata 180 4 run --cluster "$SLOW" --model tiny-llama --plan "$T/l4z.json" --steps 2 --check --json
unset STRATA_RUN_PER_OP
check_within "tiny-llama, ILP 2 stages x 2 per operator, stage 0 recomputing, stage 1 without ZeRO-1"
if ran ".*run per operator on 4 devices (stage meshes 2,2, mbs=2, gbs=8, zero=1,0;"; then
	ok "its plan line names each stage's ZeRO-1"
else nok "its plan line names each stage's ZeRO-1" "$(head -3 "$T/out")"; fi
# SwiGLU with biases (a model file: tiny-llama's shapes, bias true): the fc1 bias's [2 f] entries are interleaved as
# fc1's columns, the reference's b1 on the gate's (w1's) half alone, the up half's entries 0 and kept so
cat >"$T/llama_bias.json" <<'EOM'
{"name": "tiny-llama-bias", "layers": 4, "hidden": 128, "heads": 4, "kv_heads": 2, "head_dim": 32, "ffn": 352,
 "vocab": 512, "seq_len": 64, "activation": "swiglu", "norm": "rmsnorm", "position": "rope", "tied_embeddings": false,
 "dropout": false, "bias": true}
EOM
ilp lb4 --model "$T/llama_bias.json" --gpus 4 --gbs 8 --mbs 2 --max-stages 1
if splits lb4 fc1 '"f"'; then ok "SwiGLU with biases on 4: the ILP splits fc1 by its columns"
else nok "SwiGLU with biases on 4: the ILP's shardings" "$(cat "$T/lb4.json")"; fi
STRATA_RUN_PER_OP=1
export STRATA_RUN_PER_OP
checked 4 "SwiGLU with biases, fc1 split by its columns, run per operator, matches the reference (b1 on the gate)" \
	--model "$T/llama_bias.json" --plan "$T/lb4.json"
unset STRATA_RUN_PER_OP
# a rotary embedding split inside its heads (the ILP's l24 plan with QKV and the rotary embedding 'e' on both axes:
# 16 columns each, half a head): gathered along the axes that split it, rotated whole, sliced back
mpi_strata 180 8 run --cluster "$SLOW24" --model tiny-llama --steps 2 --check --json \
	--plan "$SRCDIR/tests/data/plan_ilp_tiny_llama_rope_cut.json"
check_within "tiny-llama, the rotary embedding split inside its heads, runs per operator and matches the reference"
# a 2x2 mesh (slow between its nodes) at micro-batch 8: the first axis splits the batch, the second is Megatron's
# tp with sp, and the output layer and loss are vocabulary-parallel over the batch axis, on the tp axis' rows
# (head_dp: the final norm's rows and their targets gathered over the dp group, the vocabulary-parallel loss
# there, the embedding whole on the rows; exec/model.c, "operator-level plans")
SLOW=$SRCDIR/tests/data/cluster_slowgpu_2x2.json
ilp g22 --model tiny-gpt --gpus 4 --gbs 32 --mbs 8 --max-stages 1
if splits g22 qkv '"b""n"' && splits g22 fc1 '"b""f"' && splits g22 ln2 '"b""b"' && splits g22 logits '"v""b"' &&
	splits g22 loss '"v""b"' && splits g22 embedding 'null"b"'; then
	ok "tiny-gpt on a 2x2 mesh, micro-batch 8: the ILP splits the output layer by vocabulary over the batch axis"
else nok "tiny-gpt on a 2x2 mesh, micro-batch 8: the ILP's shardings" "$(cat "$T/g22.json")"; fi
checked 4 "tiny-gpt, ILP dp=2 x tp=2 with the output layer vocabulary-parallel over dp, matches the reference" \
	--model tiny-gpt --plan "$T/g22.json"
if grep -q '"output_layer": "dp vocabulary"' "$T/out" && ran "tp=2,pp=1,dp=2,.*sp=1"; then
	ok "it runs as dp=2 x tp=2 with sp, the output layer over the dp group"
else nok "it runs as dp=2 x tp=2 with sp, the output layer over the dp group" "$(head -3 "$T/out")"; fi
# (under mpirun, as a user runs it: Open MPI's own leaks are suppressed there under ASan, not in a singleton)
refused "--backend cuda with the output layer over the dp group" "runs on --backend cpu only" \
	4 run --cluster "$SLOW" --model tiny-gpt --plan "$T/g22.json" --backend cuda
# on 4 such nodes, two stages of 2x2 alike: the tied table whole on the first and on the last stage's copy
SLOW42=$T/cluster_slowgpu_4x2.json
sed 's/"nodes": 2/"nodes": 4/' "$SLOW" >"$SLOW42"
"$STRATA" plan --search ilp --cluster "$SLOW42" --seq 32 --model tiny-gpt --gpus 8 --gbs 32 --mbs 8 \
	--out "$T/g42.json" >"$T/ilpout" 2>&1 || nok "ILP plan tiny-gpt on 4x2" "$(cat "$T/ilpout")"
if [ "$(grep -c '"gpus_per_node": 2' "$T/g42.json")" -eq 2 ] && splits g42 logits '"v""b"'; then
	ok "tiny-gpt on 4x2, micro-batch 8: two stages of 2x2, the output layer vocabulary-parallel over the batch axis"
else nok "tiny-gpt on 4x2, micro-batch 8: the ILP's shardings" "$(cat "$T/g42.json")"; fi
mpi_strata 240 8 run --cluster "$SLOW42" --model tiny-gpt --plan "$T/g42.json" --steps 2 --check --json
check_within "tiny-gpt, ILP 2 stages of dp=2 x tp=2, the output layer over dp (tied), matches the reference (8 ranks)"
if grep -q '"output_layer": "dp vocabulary"' "$T/out" && ran "tp=2,pp=2,dp=2,.*sp=1"; then
	ok "it runs as 2 stages of dp=2 x tp=2 with sp, the output layer over the dp group"
else nok "it runs as 2 stages of dp=2 x tp=2 with sp, the output layer over the dp group" "$(head -3 "$T/out")"; fi
# tiny-moe there: the experts over both axes (the attention on the rows of one, by heads on the other): no template,
# run per operator
ilp m22 --model tiny-moe --gpus 4 --gbs 32 --mbs 8 --max-stages 1
if splits m22 expert_fc1 '"e""e"'; then ok "tiny-moe on a 2x2 mesh, micro-batch 8: the ILP splits the experts over both axes"
else nok "tiny-moe on a 2x2 mesh, micro-batch 8: the ILP's shardings" "$(cat "$T/m22.json")"; fi
checked 4 "tiny-moe on a 2x2 mesh, the experts over both axes, run per operator, matches the reference" \
	--model tiny-moe --plan "$T/m22.json"
if ran ".*run per operator"; then ok "it runs per operator"; else nok "it runs per operator" "$(head -3 "$T/out")"; fi
# without --check a rank holds its blocks of the weights only (seeded from the single-rank model's table): its heap
# lies at least 3 copies of the model's parameters below the --check run's, which also trains the whole model
# (parameters, gradients and Adam's two moments on every rank)
heap0() { awk "$FLATTEN" "$T/out" | awk '$1 == ".compare.memory[0].heap_peak_bytes" { print $2 }'; }
mpi_strata 120 4 run --cluster "$SLOW" --model tiny-moe --plan "$T/m22.json" --steps 2 --json --compare
h_run=$(heap0)
params=$(awk "$FLATTEN" "$T/out" | awk '$1 == ".params" { print $2 }')
mpi_strata 120 4 run --cluster "$SLOW" --model tiny-moe --plan "$T/m22.json" --steps 2 --json --compare --check
h_check=$(heap0)
if awk -v a="$h_run" -v b="$h_check" -v p="$params" 'BEGIN { exit !(a > 0 && p > 0 && a + 3 * 4 * p < b) }'; then
	ok "per operator without --check, a rank holds its blocks only (heap $h_run bytes, $h_check with --check, $params parameters)"
else nok "per operator without --check, a rank holds its blocks only" "heap $h_run, with --check $h_check, params $params"; fi
# MPI counts are ints: a tensor of 2^31 elements (the logits of a 2M vocabulary over 1,024 tokens) is refused per
# operator before anything is allocated, naming it
cat >"$T/bigv.json" <<'EOM'
{"name": "wide-vocab", "layers": 1, "hidden": 64, "heads": 1, "kv_heads": 1, "ffn": 128, "vocab": 2097152, "seq_len": 1024,
 "activation": "swiglu", "norm": "rmsnorm", "position": "rope", "tied_embeddings": false, "dropout": false, "bias": false}
EOM
"$STRATA" plan --search ilp --cluster "$SRCDIR/tests/data/cluster_slowgpu.json" --seq 1024 --model "$T/bigv.json" --gpus 2 \
	--gbs 2 --mbs 1 --max-stages 1 --out "$T/bigv_p.json" >"$T/ilpout" 2>&1 || nok "ILP plan wide-vocab" "$(cat "$T/ilpout")"
STRATA_RUN_PER_OP=1
export STRATA_RUN_PER_OP
refused "a tensor of 2^31 elements, per operator" "key 'model': the per-operator runtime's MPI counts are ints: tensor logits_out" \
	2 run --cluster "$SRCDIR/tests/data/cluster_slowgpu.json" --model "$T/bigv.json" --plan "$T/bigv_p.json"
unset STRATA_RUN_PER_OP
# experts of their own ffn (moe_ffn 512 beside ffn 256, 2 layers): the planner's expert tensors are the experts'
# (search/graph.c), so the per-operator run trains the reference's model
cat >"$T/moe_fe.json" <<'EOM'
{"name": "tiny-moe-fe", "layers": 2, "hidden": 128, "heads": 4, "kv_heads": 2, "ffn": 256, "moe_ffn": 512, "vocab": 512,
 "seq_len": 64, "activation": "swiglu", "norm": "rmsnorm", "position": "rope", "tied_embeddings": false,
 "dropout": false, "bias": false, "experts": 4, "experts_topk": 2}
EOM
ilp mfe --model "$T/moe_fe.json" --gpus 2 --gbs 8 --mbs 2 --max-stages 1
STRATA_RUN_PER_OP=1
export STRATA_RUN_PER_OP
checked 2 "MoE experts with their own ffn (moe_ffn 512, ffn 256), run per operator, matches the reference" \
	--model "$T/moe_fe.json" --plan "$T/mfe.json"
unset STRATA_RUN_PER_OP
# a capacity factor (which tokens an expert drops depends on every token of the micro-batch) is refused there
cat >"$T/moe_cf.json" <<'EOM'
{"name": "tiny-moe-cf", "layers": 4, "hidden": 128, "heads": 4, "kv_heads": 2, "ffn": 256, "vocab": 512, "seq_len": 64,
 "activation": "swiglu", "norm": "rmsnorm", "position": "rope", "tied_embeddings": false, "dropout": false,
 "bias": false, "experts": 4, "experts_topk": 2, "capacity_factor": 1.25}
EOM
ilp mcf --model "$T/moe_cf.json" --gpus 4 --gbs 32 --mbs 8 --max-stages 1
refused "tiny-moe with a capacity factor, per operator" "key 'model': the per-operator runtime runs dropless MoE blocks" \
	4 run --cluster "$SLOW" --model "$T/moe_cf.json" --plan "$T/mcf.json"

# stages on meshes of different shapes (Alpa's: each stage's own mesh and sharding), run stage by stage: each
# stage its own hybrid plan, the activations and their gradients moved between stages as the cross-mesh exchange
# (src/lower/lower_stages.c: each receiving device its rows from a device of the other stage that holds them).
# On dgx-a100-80g at micro-batches of 2 the ILP puts tiny-gpt's 4 layers on meshes of 1, 1, 2 and 4 devices,
# every operator whole (the last two stages 2 and 4 copies); tiny-moe alike
for model in tiny-gpt tiny-moe; do
	"$STRATA" plan --search ilp --cluster dgx-a100-80g --seq 32 --model $model --gpus 8 --gbs 8 --mbs 2 \
		--out "$T/s8.json" >"$T/ilpout" 2>&1 || nok "ILP plan $model on 8 of dgx-a100-80g" "$(cat "$T/ilpout")"
	if [ "$(grep -o '"gpus_per_node": [0-9]*' "$T/s8.json" | awk '{ printf "%s ", $2 }')" = "1 1 2 4 " ]; then
		ok "$model on 8 of dgx-a100-80g, micro-batch 2: stages on meshes of 1, 1, 2 and 4 devices"
	else nok "$model on 8 of dgx-a100-80g, micro-batch 2: stages on meshes of 1, 1, 2 and 4" "$(cat "$T/s8.json")"; fi
	mpi_strata 180 8 run --cluster dgx-a100-80g --model $model --plan "$T/s8.json" --steps 2 --check --json --compare
	check_within "$model, ILP stages of 1, 1, 2 and 4 devices (the last two copies), matches the reference (8 ranks)"
	if ran "pp=4,mbs=2,gbs=8,seq=32, stages of different shapes: .* x2 copies\] \[.* x4 copies\]" &&
		awk '$1 == ".compare.simulated_s.iteration" { s = $2 } END { exit !(s > 0) }' "$T/flat"; then
		ok "it runs each stage on its own ranks, and --compare simulates the program that ran"
	else nok "it runs each stage on its own ranks, and --compare simulates the program that ran" "$(head -3 "$T/out")"; fi
done
refused "--backend cuda with stages of different shapes" "stages on meshes of different shapes run on --backend cpu only" \
	8 run --cluster dgx-a100-80g --model tiny-moe --plan "$T/s8.json" --backend cuda
# stages that differ in tp, sp, dp, ZeRO, recompute and copies (tests/data/plan_ilp_tiny_llama_stages.json: the ILP's
# tiny-llama plan on 8 of dgx-a100-80g, 4 stages of 2 devices, its splits edited by hand, mbs 4): tp=2 without sp,
# dp=2 with ZeRO-1, 2 copies recomputing, tp=2 with sp. The exchange: tp ranks that both hold the rows to dp ranks
# (each its half from one of them), dp ranks to copies (each copy both halves), copies to sp ranks (each its half)
mpi_strata 180 8 run --cluster dgx-a100-80g --model tiny-llama --plan "$SRCDIR/tests/data/plan_ilp_tiny_llama_stages.json" \
	--steps 2 --check --json
check_within "tiny-llama, ILP stages of tp=2, dp=2 (ZeRO-1), 2 copies (recompute) and tp=2 with sp, matches the reference"
if ran "pp=4,mbs=4,.* \[1 layers: tp=2,dp=1,sp=0\] \[1 layers: tp=1,dp=2,sp=0,zero=1\] \[1 layers: tp=1,dp=1,sp=0,recompute=full x2 copies\] \[1 layers: tp=2,dp=1,sp=1\]"
then ok "it runs each stage with its own degrees"
else nok "it runs each stage with its own degrees" "$(grep -o '"plan": "[^"]*' "$T/out")"; fi
mpi_strata 60 4 run --cluster dgx-a100-80g --model tiny-llama --plan "$SRCDIR/tests/data/plan_ilp_tiny_llama_stages.json" \
	--steps 1
if [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] && [ "$(grep -c '^strata run:' "$T/err")" -eq 1 ] &&
	grep -q "the plan's stages run on 8 ranks (each stage's tp x dp x copies); mpirun started 4" "$T/err"; then
	ok "stages of different shapes on too few ranks: refused in one line"
else nok "stages of different shapes on too few ranks: refused in one line" "$(cat "$T/err")"; fi

finish_tests
