#!/bin/sh
# cli_run_zb.sh: `strata run` of the zero-bubble schedules (issue 18): schedule=zb (ZB-H1), zbv
# (ZB-V, two chunks per rank in a V) and dualpipe (two copies of the pipeline fed from both ends, each
# rank a stage of each, the copies' gradients summed by mirror ranks d and pp - 1 - d) split each
# backward into its input half (bwd input, sent back at once) and its weight half (bwd weight, run
# later), exec/model.c's st__xmodel_backward_input and _weight, as the lowering orders them. Every
# run computes what the single-rank reference computes
# (--check, within tests/cli_run.sh's tolerances, which say why); with one rank per stage and no tp
# or dp the losses are 1F1B's and interleaved 1F1B's bit for bit (each weight's gradient adds the
# micro-batches in the same order); the trace and the per-kind times name the halves as strata
# sim's trace does. Skips (77) where strata was built without the executor or mpirun is missing.
SRCDIR=${SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
. "$SRCDIR/tests/lib.sh"
start_tests run_zb

need_executor

# losses PLAN: tiny-llama's losses over 3 steps on 2 ranks under PLAN
losses() {
	mpi_strata 180 2 run --model tiny-llama --plan "$1" --steps 3 --json
	grep -o '"loss": \[[^]]*' "$T/out"
}

# zbv on 4 stages needs 8 chunks of blocks
cat >"$T/llama8.json" <<'EOF'
{"name": "tiny-llama-8l", "layers": 8, "hidden": 128, "heads": 4, "kv_heads": 2, "ffn": 352, "vocab": 512,
 "seq_len": 64, "activation": "swiglu", "norm": "rmsnorm", "position": "rope", "tied_embeddings": false,
 "bias": false}
EOF

run_checked 2 "zb pp=2 (GPT, tied embedding across stages) matches the reference" \
	--model tiny-gpt --plan tp=1,pp=2,dp=1,mbs=1,gbs=4,seq=32,schedule=zb
run_checked 8 "zb pp=4 dp=2 ZeRO-1 (GPT) matches the reference" \
	--model tiny-gpt --plan tp=1,pp=4,dp=2,mbs=1,gbs=8,seq=32,schedule=zb,zero=1
run_checked 4 "zb tp=2 sp=1 pp=2 with selective recompute (Llama) matches the reference" \
	--model tiny-llama --plan tp=2,sp=1,pp=2,dp=1,mbs=1,gbs=4,seq=32,schedule=zb,recompute=selective
run_checked 2 "zbv pp=2 (GPT: rank 0 holds the embedding and the output layer, tied) matches the reference" \
	--model tiny-gpt --plan tp=1,pp=2,dp=1,mbs=1,gbs=4,seq=32,schedule=zbv
run_checked 4 "zbv pp=4 (Llama, 8 blocks in 8 chunks) matches the reference" \
	--model "$T/llama8.json" --plan tp=1,pp=4,dp=1,mbs=1,gbs=8,seq=32,schedule=zbv
run_checked 8 "zbv tp x pp x dp = 2x2x2 (Llama) matches the reference" \
	--model tiny-llama --plan tp=2,pp=2,dp=2,mbs=1,gbs=12,seq=32,schedule=zbv
run_checked 4 "zbv tp=2 sp=1 pp=2 with full recompute (GPT) matches the reference" \
	--model tiny-gpt --plan tp=2,sp=1,pp=2,dp=1,mbs=1,gbs=4,seq=32,schedule=zbv,recompute=full
run_checked 2 "zb pp=2 with recompute=op (Llama: the input half remakes the probabilities) matches the reference" \
	--model tiny-llama --plan tp=1,pp=2,dp=1,mbs=1,gbs=8,seq=32,schedule=zb,recompute=op
run_checked 4 "zbv MoE ep=2 dp=2 (the experts' gradients in the input half) matches the reference" \
	--model tiny-moe --plan tp=1,pp=2,dp=2,ep=2,mbs=1,gbs=8,seq=32,schedule=zbv

# dualpipe: every weight twice (a stage of each copy per rank), the mirror all-reduce makes the copies'
# gradients one, and Adam keeps the copies alike (step 2's loss is the reference's)
run_checked 2 "dualpipe pp=2 (GPT: ranks 0 and 1 both hold the embedding and the loss) matches the reference" \
	--model tiny-gpt --plan tp=1,pp=2,dp=1,mbs=1,gbs=4,seq=32,schedule=dualpipe
what="dualpipe: each parameter counted once (862,976, the single rank's), not per copy"
if grep -q '"params": 862976,' "$T/out"; then ok "$what"; else nok "$what" "$(grep -o '"params": [0-9]*' "$T/out")"; fi
run_checked 4 "dualpipe pp=4 (Llama) with selective recompute matches the reference" \
	--model tiny-llama --plan tp=1,pp=4,dp=1,mbs=1,gbs=8,seq=32,schedule=dualpipe,recompute=selective
run_checked 8 "dualpipe tp x pp x dp = 2x2x2 ZeRO-1 (GPT; the mirror sum of the owned shards) matches the reference" \
	--model tiny-gpt --plan tp=2,pp=2,dp=2,mbs=1,gbs=8,seq=32,schedule=dualpipe,zero=1
run_checked 4 "dualpipe MoE ep=2 dp=2 matches the reference" \
	--model tiny-moe --plan tp=1,pp=2,dp=2,ep=2,mbs=1,gbs=8,seq=32,schedule=dualpipe

ref=$(losses tp=1,pp=2,dp=1,mbs=1,gbs=4,seq=32)
zb=$(losses tp=1,pp=2,dp=1,mbs=1,gbs=4,seq=32,schedule=zb)
if [ -n "$ref" ] && [ "$ref" = "$zb" ]; then ok "zb: 1F1B's losses, bit for bit"
else nok "zb: 1F1B's losses, bit for bit" "$ref" "$zb"; fi
ref=$(losses tp=1,pp=2,vp=2,dp=1,mbs=1,gbs=4,seq=32)
mpi_strata 180 2 run --model tiny-llama --plan tp=1,pp=2,dp=1,mbs=1,gbs=4,seq=32,schedule=zbv --steps 3 --json \
	--trace "$T/trace.json"
if [ "$rc" -eq 0 ] && [ -n "$ref" ] && [ "$ref" = "$(grep -o '"loss": \[[^]]*' "$T/out")" ]; then
	ok "zbv: interleaved 1F1B's losses (the same chunks), bit for bit"
else nok "zbv: interleaved 1F1B's losses (the same chunks), bit for bit" "$ref"; fi

# the halves by name: 2 chunks x 4 micro-batches of each on each of the 2 ranks, as strata sim's trace
# shows them (category bwd-input / bwd-weight, name bwd input / bwd weight); every rank times both
awk "$FLATTEN" "$T/trace.json" >"$T/tflat" 2>/dev/null
awk "$FLATTEN" "$T/out" >"$T/flat" 2>/dev/null
if [ "$(grep -c '"bwd-input"' "$T/tflat")" -eq 16 ] && [ "$(grep -c '"bwd-weight"' "$T/tflat")" -eq 16 ] &&
	[ "$(grep -c '"bwd input"' "$T/tflat")" -eq 16 ] && [ "$(grep -c '"bwd weight"' "$T/tflat")" -eq 16 ] &&
	! grep -q '"bwd"' "$T/tflat"; then
	ok "zbv trace: every backward in its two halves, named as strata sim names them"
else nok "zbv trace: every backward in its two halves, named as strata sim names them"; fi
# (the flattened keys hold a space: "bwd input")
if awk '/^\.measured_s\[[01]\]\.bwd (input|weight) / && $NF > 0 { n++ }
	/^\.measured_s\[[01]\]\.bwd [0-9]/ && $NF != 0 { bad = 1 } END { exit n != 4 || bad }' "$T/flat"; then
	ok "zbv: every rank's time table has its bwd input and bwd weight, no whole bwd"
else nok "zbv: every rank's time table has its bwd input and bwd weight, no whole bwd"; fi

finish_tests
