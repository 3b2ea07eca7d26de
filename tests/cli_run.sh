#!/bin/sh
# cli_run.sh: `strata run` under mpirun (issue 18): every sharded run of the tiny presets computes
# what the single-rank reference computes (--check: tp, sp, pp 1F1B/gpipe/interleaved, dp, ZeRO-1
# and their product; MoE with ep; recompute full, selective and op; ZeRO-3 and cp: cli_run_zero3.sh,
# cli_run_cp.sh), the rank-count and plan refusals are one line and exit 2 on every rank, --json is
# one object from rank 0, --trace is the simulator's layout.
# --emit slurm's sbatch script is checked first, in every build. Skips (77) where strata was built
# without the executor or mpirun is missing; every mpirun runs
# under `timeout`, so a hang fails the test instead of stopping make check. Operator-level (ILP) plans
# run where their stages hold one device each (GLPK is a required dependency: no skip for it).
#
# Tolerance (fp32, unit roundoff u = 6e-8): a sharded run sums the same terms in other orders (tp
# splits the row-parallel GEMMs' inner dimension and the vocabulary, dp and the micro-batches sum
# gradients in another order, all-reduces in their own), so a sum of n terms may differ by about
# sqrt(n) u relative to the sum of magnitudes: n is at most tokens x ffn = 8 x 64 x 512 ~ 2.6e5 here,
# sqrt(n) u ~ 3e-5. Step 2 compares after one Adam step, whose update m / sqrt(v) is ~1 wherever
# the gradient is not ~0, so rounding differences move no weight by more than lr x 1e-4. Hence:
# loss within 1e-5 (1.6e-6 of ln 512), each tensor's gradients within 1e-3 of its largest reference
# gradient plus 1e-9 absolute (tensors whose true gradient is 0, e.g. the key bias, under which
# softmax is invariant). Observed (2 steps): at most 1.7e-7 on the loss and 4e-5 relative.
SRCDIR=${SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
. "$SRCDIR/tests/lib.sh"
start_tests run

# --emit slurm (needs neither MPI nor the executor): the sbatch script, written atomically
srun_args="'strata' 'run' '--model' 'tiny-gpt' .*'--plan' 'tp=2,pp=2,dp=4,.*'--steps' '5' '--check'\$"
run run --model tiny-gpt --plan tp=2,pp=2,dp=4,gbs=8,seq=32 --gpus 16 --steps 5 --check \
	--emit slurm --out "$T/job.sbatch"
if [ "$rc" -eq 0 ] && grep -qx "wrote $T/job.sbatch" "$T/out" && grep -qx '#SBATCH --nodes=2' "$T/job.sbatch" &&
	grep -qx '#SBATCH --ntasks-per-node=8' "$T/job.sbatch" && grep -qx '#SBATCH --gpus-per-node=8' "$T/job.sbatch" &&
	grep -q "^srun --ntasks=16 .*--gpu-bind=map_gpu:0,1,2,3,4,5,6,7 $srun_args" "$T/job.sbatch" &&
	bash -n "$T/job.sbatch" && [ -z "$(ls "$T" | grep 'job.sbatch.tmp')" ]; then
	ok "--emit slurm: 16 ranks on 2 nodes of 8, each task on its GPU, the run's command line"
else nok "--emit slurm: 16 ranks on 2 nodes of 8, each task on its GPU, the run's command line" "$(cat "$T/err")"; fi
run run --model tiny-moe --plan tp=2,pp=1,dp=2,ep=2,gbs=4,seq=32 --emit slurm --out "$T/job.sbatch"
if [ "$rc" -eq 0 ] && grep -qx '#SBATCH --nodes=1' "$T/job.sbatch" &&
	grep -qx '#SBATCH --ntasks-per-node=4' "$T/job.sbatch" &&
	grep -q -- '--gpu-bind=map_gpu:0,1,2,3 ' "$T/job.sbatch" && ! grep -q -- "'--gpus'" "$T/job.sbatch"; then
	ok "--emit slurm: 4 ranks on one node; the script is replaced"
else nok "--emit slurm: 4 ranks on one node; the script is replaced"; fi
run run --model tiny-gpt --plan tp=2,gbs=4,seq=32 --timeout 30 --emit slurm --out "$T/job.sbatch"
if [ "$rc" -eq 0 ] && grep -q "'--timeout' '30'" "$T/job.sbatch"; then ok "--emit slurm: the script passes --timeout on"
else nok "--emit slurm: the script passes --timeout on"; fi
run run --model tiny-gpt --plan tp=2,gbs=4,seq=32 --backend cuda --emit slurm --out "$T/job.sbatch"
if [ "$rc" -eq 0 ] && grep -q "'--backend' 'cuda'" "$T/job.sbatch"; then ok "--emit slurm: the script passes --backend on"
else nok "--emit slurm: the script passes --backend on"; fi
run run --model tiny-gpt --plan tp=2,gbs=4,seq=32 --backend gpu --emit slurm --out "$T/job3.sbatch"
if [ "$rc" -eq 2 ] && grep -q "backend" "$T/err" && [ ! -e "$T/job3.sbatch" ]; then ok "--emit slurm --backend gpu: refused"
else nok "--emit slurm --backend gpu: refused"; fi
run run --model tiny-gpt --plan tp=2,gbs=4,seq=32 --timeout 0 --emit slurm --out "$T/job2.sbatch"
if [ "$rc" -eq 2 ] && grep -q "'--timeout': 0 is out of range" "$T/err" && [ ! -e "$T/job2.sbatch" ]; then
	ok "--emit slurm --timeout 0: refused"
else nok "--emit slurm --timeout 0: refused"; fi
run run --model tiny-gpt --plan tp=2,gbs=4,seq=32 --emit slurm --out "$T/no/such/dir/job.sbatch"
if [ "$rc" -eq 2 ] && [ "$(nlines "$T/err")" -eq 1 ] && [ ! -e "$T/no" ]; then
	ok "--emit slurm into a missing folder: one line, exit 2"
else nok "--emit slurm into a missing folder: one line, exit 2" "$(cat "$T/err")"; fi
run run --model tiny-gpt --plan tp=2,gbs=4,seq=32 --emit pbs --out "$T/job.pbs"
if [ "$rc" -eq 2 ] && grep -q 'must be slurm' "$T/err" && [ ! -e "$T/job.pbs" ]; then ok "--emit pbs: refused"
else nok "--emit pbs: refused"; fi
run run --model tiny-gpt --plan tp=2,gbs=4,seq=32 --emit slurm
if [ "$rc" -eq 2 ] && grep -q 'needs --out' "$T/err"; then ok "--emit slurm without --out: refused"
else nok "--emit slurm without --out: refused"; fi

command -v mpirun >/dev/null 2>&1 || { echo "SKIP: mpirun not found"; exit 77; }
command -v timeout >/dev/null 2>&1 || { echo "SKIP: timeout not found"; exit 77; }
run run --model tiny-gpt --plan tp=1,pp=1,dp=1,gbs=1,seq=8 --steps 1
if grep -q "built without the executor" "$T/err"; then
	grep -q "openmpi-bin libopenmpi-dev libopenblas-dev" "$T/err" && [ "$rc" -eq 2 ] && [ "$(nlines "$T/err")" -eq 1 ] &&
		echo "ok   - without the executor: one line naming the packages, exit 2"
	echo "SKIP: strata was built without the executor"
	exit 77
fi

# mpirun NP ARGS...: strata run on NP ranks, at most 180 s
mpi() {
	_n=$1
	shift
	mpi_strata 180 "$_n" run "$@"
}

run_checked 2 "dp=2 (GPT) matches the single-rank reference" --model tiny-gpt --plan tp=1,pp=1,dp=2,mbs=1,gbs=4,seq=64
run_checked 2 "tp=2 (Llama, GQA, vocab-parallel loss) matches the reference" \
	--model tiny-llama --plan tp=2,pp=1,dp=1,mbs=1,gbs=4,seq=64
run_checked 2 "pp=2 1F1B (GPT, tied embedding across stages) matches the reference" \
	--model tiny-gpt --plan tp=1,pp=2,dp=1,mbs=1,gbs=4,seq=64
run_checked 2 "pp=2 gpipe (Llama) matches the reference" \
	--model tiny-llama --plan tp=1,pp=2,dp=1,mbs=2,gbs=8,seq=32,schedule=gpipe
run_checked 2 "dp=2 ZeRO-1 (reduce-scatter, sharded Adam, all-gather) matches the reference" \
	--model tiny-gpt --plan tp=1,pp=1,dp=2,mbs=1,gbs=4,seq=64,zero=1
run_checked 8 "tp x pp x dp = 2x2x2 ZeRO-1 on 8 ranks matches the reference" \
	--model tiny-gpt --plan tp=2,pp=2,dp=2,mbs=1,gbs=8,seq=32,zero=1

# sequence parallelism: norms and residuals on each tp rank's token rows, all-gather before the
# column-parallel GEMMs, reduce-scatter after the row-parallel ones, the replicated tensors'
# gradients summed over tp (a missing sum halves them: far outside the tolerance)
run_checked 2 "tp=2 sp=1 (GPT, learned positions on the rows, two sequences per micro-batch) matches the reference" \
	--model tiny-gpt --plan tp=2,sp=1,pp=1,dp=1,mbs=2,gbs=4,seq=32
run_checked 4 "tp=2 sp=1 pp=2 (Llama; each tp rank sends its rows) matches the reference" \
	--model tiny-llama --plan tp=2,sp=1,pp=2,dp=1,mbs=1,gbs=4,seq=32
# interleaved 1F1B: two chunks per rank, each with its own activations per micro-batch
run_checked 2 "pp=2 vp=2 interleaved (GPT, tied embedding across stages) matches the reference" \
	--model tiny-gpt --plan tp=1,pp=2,vp=2,dp=1,mbs=1,gbs=4,seq=32
run_checked 2 "pp=2 vp=2 interleaved over 8 micro-batches (Llama) matches the reference" \
	--model tiny-llama --plan tp=1,pp=2,vp=2,dp=1,mbs=1,gbs=8,seq=32
run_checked 8 "tp x pp x dp = 2x2x2 with sp, vp=2 and ZeRO-1 on 8 ranks matches the reference" \
	--model tiny-gpt --plan tp=2,sp=1,pp=2,vp=2,dp=2,mbs=1,gbs=8,seq=32,zero=1

# mixture of experts (tiny-moe: 4 experts, top-2): the ep all-to-alls dispatch and combine, the
# experts' gradients summed over the ranks that hold the same experts; with sp the MoE block reads
# the gathered rows like the dense MLP
run_checked 2 "MoE ep=2 (dp=2) matches the reference" --model tiny-moe --plan tp=1,pp=1,dp=2,ep=2,mbs=1,gbs=4,seq=32
run_checked 4 "MoE ep=2 with tp=2 sp=1 matches the reference" \
	--model tiny-moe --plan tp=2,sp=1,pp=1,dp=2,ep=2,mbs=1,gbs=4,seq=32
run_checked 8 "MoE tp x pp x dp = 2x2x2, ep=2, ZeRO-1 (experts sharded over their own group) matches the reference" \
	--model tiny-moe --plan tp=2,pp=2,dp=2,ep=2,mbs=1,gbs=8,seq=32,zero=1
if grep -q '"params": 1903744,' "$T/out"; then ok "MoE: every expert counted once (1,903,744 parameters)"
else nok "MoE: every expert counted once (1,903,744 parameters)" "$(grep -o '"params": [0-9]*' "$T/out")"; fi
# a capacity factor of 1: each expert takes at most ceil(64 x 2 / 4) = 32 of a micro-batch's pairs
cat >"$T/moecap.json" <<'EOF'
{"name": "tiny-moe-cap", "layers": 2, "hidden": 64, "heads": 4, "kv_heads": 2, "ffn": 128, "vocab": 256,
 "seq_len": 32, "activation": "swiglu", "norm": "rmsnorm", "position": "rope", "tied_embeddings": false,
 "bias": false, "experts": 4, "experts_topk": 2, "capacity_factor": 1.0}
EOF
run_checked 2 "MoE with a capacity factor (tokens dropped alike on every sharding) matches the reference" \
	--model "$T/moecap.json" --plan tp=1,pp=1,dp=2,ep=2,mbs=2,gbs=4,seq=32

# activation recompute: full (the blocks again from each chunk's input, tp and ep collectives
# included) and selective (the attention probabilities), each before its backward, as the lowering
# places them; ZeRO-2 runs ZeRO-1's collectives (the lowering gives it the same ones)
run_checked 4 "full recompute with tp=2 sp=1 pp=2 matches the reference" \
	--model tiny-gpt --plan tp=2,sp=1,pp=2,dp=1,mbs=1,gbs=4,seq=32,recompute=full
full=$(grep -o '"loss": \[[^]]*' "$T/out")
if awk "$FLATTEN" "$T/out" | awk '$1 ~ /^\.measured_s\[[0-9]\]\.recompute$/ && $2 > 0 { n++ } END { exit n != 4 }'; then
	ok "full recompute: every rank recomputes"
else nok "full recompute: every rank recomputes"; fi
mpi 4 --model tiny-gpt --plan tp=2,sp=1,pp=2,dp=1,mbs=1,gbs=4,seq=32 --steps 2 --json
kept=$(grep -o '"loss": \[[^]]*' "$T/out")
if [ -n "$full" ] && [ "$full" = "$kept" ]; then
	ok "full recompute: the same losses, bit for bit, as keeping the activations"
else nok "full recompute: the same losses, bit for bit, as keeping the activations" "$full"; fi
run_checked 4 "full recompute with MoE ep=2, interleaved pp=2 vp=2 and ZeRO-2 matches the reference" \
	--model tiny-moe --plan tp=1,pp=2,vp=2,dp=2,ep=2,mbs=1,gbs=8,seq=32,recompute=full,zero=2
mpi 2 --model tiny-llama --plan tp=1,pp=2,dp=1,mbs=1,gbs=4,seq=32,recompute=selective --steps 2 --check --json \
	--trace "$T/rtrace.json"
check_within "selective recompute (Llama, pp=2) matches the reference"
if [ "$(grep -c '"recompute"' "$T/rtrace.json")" -ge 4 ]; then ok "selective recompute: the trace shows the recomputes"
else nok "selective recompute: the trace shows the recomputes"; fi

# recompute=op (torchtitan's op-level checkpointing, exec/model.c block_redo): the forward keeps each block's
# input and the outputs its policy saves (wq's, wv's, w1's, SwiGLU's w2's, the attention's, sp's
# reduce-scatters'), the recompute reruns the rest, wk's and w3's GEMMs alone (the forward runs wq, wk, wv and
# w1, w3 as separate GEMMs under recompute=op, torchtitan's linears, so the recompute repeats its calls)
run_checked 4 "recompute=op with tp=2 sp=1 pp=2 (GPT: LayerNorm, GELU, biases) matches the reference" \
	--model tiny-gpt --plan tp=2,sp=1,pp=2,dp=1,mbs=1,gbs=4,seq=32,recompute=op
if awk "$FLATTEN" "$T/out" | awk '$1 ~ /^\.measured_s\[[0-9]\]\.recompute$/ && $2 > 0 { n++ } END { exit n != 4 }'; then
	ok "recompute=op: every rank recomputes"
else nok "recompute=op: every rank recomputes"; fi
run_checked 2 "recompute=op with pp=2 vp=2 interleaved (Llama: RMSNorm, SwiGLU, RoPE, GQA) matches the reference" \
	--model tiny-llama --plan tp=1,pp=2,vp=2,dp=1,mbs=1,gbs=8,seq=32,recompute=op
# with cp the backward remakes the probabilities through cp's exchange again (the ring's, the all-gather's, or
# Ulysses' all-to-alls of q, k and v), the rotary embedding at each rank's chunks' positions
run_checked 2 "recompute=op with cp=2 p2p (Llama) matches the reference" \
	--model tiny-llama --plan tp=1,pp=1,dp=1,cp=2,mbs=1,gbs=2,seq=64,recompute=op
run_checked 2 "recompute=op with cp=2 a2a (GPT) matches the reference" \
	--model tiny-gpt --plan tp=1,pp=1,dp=1,cp=2,mbs=1,gbs=2,seq=64,recompute=op,cp_comm=a2a
run_checked 8 "recompute=op with tp=2 sp=1 cp=2 all_gather and pp=2 (Llama) matches the reference" \
	--model tiny-llama --plan tp=2,sp=1,pp=2,dp=1,cp=2,mbs=1,gbs=4,seq=64,recompute=op,cp_comm=all_gather
run_checked 4 "recompute=op with cp=2 and dp=2 ZeRO-3 (GPT) matches the reference" \
	--model tiny-gpt --plan tp=1,pp=1,dp=2,cp=2,mbs=1,gbs=4,seq=64,recompute=op,zero=3
run_checked 2 "recompute=op with tp=2 sp=1 (Llama: wk's [32 x 32] GEMM alone, w2's partial sums kept) matches" \
	--model tiny-llama --plan tp=2,sp=1,pp=1,dp=1,mbs=1,gbs=4,seq=32,recompute=op
# --check runs the single-rank reference once, on world rank 0 (every rank sends it its reduced gradients after the
# step, exec/check.c): rank 1 keeps the reference's tensor table alone, at least 2 copies of the model's bytes below
# rank 0's heap (which also holds the reference's weights, gradients, Adam moments and activations); measured
# 18.1 MB against 26.6 MB, 869,504 parameters (when every rank ran the reference: 26.1 against 26.6)
mpi 2 --model tiny-llama --plan tp=1,pp=2,dp=1,mbs=1,gbs=4,seq=32 --steps 2 --check --compare --json
check_within "pp=2 (Llama), the reference on rank 0 alone, matches it"
reference_on_0 "--check: the reference on rank 0 only" 1 1 2
# the heap: tiny-llama, 2 x 256 tokens a micro-batch, interleaved pp=2 vp=2 (one block a chunk): rank 0 holds 5
# chunks' activations at its peak (cost/memory.c, st_cost_inflight: 2 (pp - 1) + (vp - 1) pp + 1), each block's
# 1,956 floats a token (h = 128, ffn = 352) and its probabilities (4 heads x 256 x 256 x 2) kept, 6.1 MB; with
# recompute=op 928 floats a token kept (the input, wq's, wv's, the attention's and w1's outputs, w2's), 1.9 MB,
# and while one of them recomputes 1,284 floats a token and one block's probabilities, 4.7 MB: 16.3 MB
# (15.5 MiB) less; measured 16,300,688 bytes. At least 14 MiB less.
heap() { tr -d '\n' <"$T/out" | awk '{ n = split($0, r, "\"heap_peak_bytes\": "); h = 0
	for (i = 2; i <= n; i++) { split(r[i], v, /[,}]/); if (v[1] > h) h = v[1] } print h }'; }
mpi 2 --model tiny-llama --plan tp=1,pp=2,vp=2,dp=1,mbs=2,gbs=8,seq=256 --steps 1 --compare --json
hnone=$(heap)
mpi 2 --model tiny-llama --plan tp=1,pp=2,vp=2,dp=1,mbs=2,gbs=8,seq=256,recompute=op --steps 1 --compare --json
hop=$(heap)
if [ "$rc" -eq 0 ] && awk -v a="$hnone" -v b="$hop" 'BEGIN { exit !(a > 0 && b > 0 && a - b >= 14 * 1048576) }'; then
	ok "recompute=op: the heap high-water is 14 MiB or more below keeping the activations"
else nok "recompute=op: the heap high-water is 14 MiB or more below keeping the activations" "$hnone $hop"; fi

# operator-level plans (strata plan --search ilp --out): those whose stages hold one device each
# (what the ILP picks for these tiny models on A100s) run as the pipeline they are, with the ILP's
# stage cuts, micro-batch and recompute (on one stage only: each stage its own plan); a stage whose mesh
# replicates some operators and splits others is refused in one line (the ILP's shardings inside a stage:
# tests/cli_run_ilp.sh)
ilp() { "$STRATA" plan --search ilp --cluster dgx-a100-80g --seq 32 "$@" >"$T/ilpout" 2>&1 || nok "ILP plan $*"; }
ilp --model tiny-gpt --gpus 2 --gbs 4 --mbs 1 --out "$T/ilp2.json"
run_checked 2 "an ILP plan of tiny-gpt (2 stages of one device) matches the reference" \
	--model tiny-gpt --plan "$T/ilp2.json"
if grep -q '"plan": "tp=1,pp=2,dp=1,.*,stage_layers=2,2"' "$T/out"; then ok "the ILP plan runs as its pipeline"
else nok "the ILP plan runs as its pipeline" "$(grep -o '"plan": "[^"]*' "$T/out")"; fi
ilp --model tiny-llama --gpus 4 --gbs 8 --mbs 2 --out "$T/ilp4.json"
run_checked 4 "an ILP plan of tiny-llama (4 stages, 2 sequences a micro-batch) matches the reference" \
	--model tiny-llama --plan "$T/ilp4.json"
cat >"$T/gpt3l.json" <<'EOF2'
{"name": "tiny-gpt-3l", "layers": 3, "hidden": 128, "heads": 4, "vocab": 512, "seq_len": 64}
EOF2
ilp --model "$T/gpt3l.json" --gpus 2 --gbs 4 --mbs 1 --out "$T/ilp3l.json"
run_checked 2 "an ILP plan with uneven stages (3 layers cut 2 + 1) matches the reference" \
	--model "$T/gpt3l.json" --plan "$T/ilp3l.json"
if grep -q '"plan": "tp=1,pp=2,.*,stage_layers=2,1"' "$T/out"; then ok "the ILP's cuts are kept"
else nok "the ILP's cuts are kept" "$(grep -o '"plan": "[^"]*' "$T/out")"; fi
sed 's/"recompute": "none"/"recompute": "full"/' "$T/ilp2.json" >"$T/ilp2r.json"
run_checked 2 "an ILP plan whose stages recompute matches the reference" --model tiny-gpt --plan "$T/ilp2r.json"
awk '!d && /"recompute": "none"/ { sub(/"none"/, "\"full\""); d = 1 } { print }' "$T/ilp2.json" >"$T/ilp2m.json"
# (recomputing on one stage only: each stage runs its own plan, as stages of different shapes do)
run_checked 2 "an ILP plan recomputing on one stage only matches the reference" --model tiny-gpt --plan "$T/ilp2m.json"
if grep -q '"plan": ".*stages of different shapes: \[2 layers: [^]]*,recompute=full\] \[2 layers: tp=1,dp=1,sp=0\]"' "$T/out"
then ok "it runs each stage as its own plan, stage 0 recomputing"
else nok "it runs each stage as its own plan, stage 0 recomputing" "$(grep -o '"plan": "[^"]*' "$T/out")"; fi
# the ILP keeps every operator whole on both devices: 2 copies of one rank (tests/cli_run_ilp_copies.sh);
# with one operator split on that axis instead (ln1 by the batch, QKV replicated: no template), it runs per
# operator (exec/opexec.c), ln1's rows resharded to the replicated QKV and its weights' gradients summed
ilp --model tiny-gpt --gpus 2 --gbs 4 --mbs 2 --max-stages 1 --out "$T/ilp1.json"
awk 'f && /null/ { sub(/null/, "\"b\""); f = 0 } /"ln1": \{/ { f = 1 } { print }' "$T/ilp1.json" >"$T/ilp1b.json"
run_checked 2 "an ILP plan replicating QKV on 2 devices, splitting ln1, runs per operator and matches the reference" \
	--model tiny-gpt --plan "$T/ilp1b.json"
if grep -q '"plan": "[^"]*run per operator' "$T/out"; then ok "it runs per operator"
else nok "it runs per operator" "$(head -3 "$T/out")"; fi

# the same run with --reference-kernels (plain C GEMMs) gives the same losses up to rounding
mpi 2 --model tiny-gpt --plan tp=2,pp=1,dp=1,mbs=1,gbs=2,seq=32 --steps 1 --json
blas=$(grep -o '"loss": \[[^]]*' "$T/out")
mpi 2 --model tiny-gpt --plan tp=2,pp=1,dp=1,mbs=1,gbs=2,seq=32 --steps 1 --json --reference-kernels
plain=$(grep -o '"loss": \[[^]]*' "$T/out")
if [ "$rc" -eq 0 ] && [ -n "$blas" ] &&
	awk -v a="${blas#*[}" -v b="${plain#*[}" 'BEGIN { d = a - b; exit !(d < 1e-5 && d > -1e-5) }'; then
	ok "plain C GEMMs give BLAS's loss"
else nok "plain C GEMMs give BLAS's loss" "$blas" "$plain"; fi

# text output and the trace: rank 0 alone prints; every rank's process as strata sim names it
mpi 4 --model tiny-gpt --plan tp=1,pp=2,dp=2,mbs=1,gbs=4,seq=32 --steps 2 --trace "$T/trace.json"
if [ "$rc" -eq 0 ] && [ "$(grep -c '^model ' "$T/out")" -eq 1 ] && grep -q '^ *2 ' "$T/out" &&
	grep -q "wrote $T/trace.json" "$T/out"; then ok "text: one report from rank 0"; else nok "text: one report from rank 0"; fi
if awk "$FLATTEN" "$T/trace.json" >"$T/tflat" 2>/dev/null &&
	[ "$(grep -c '"rank [0-3] (stage [01])"' "$T/tflat")" -eq 4 ] && grep -q '"send act"' "$T/tflat" &&
	grep -q '"dp reduce"' "$T/tflat" && grep -q '"embedding all-reduce"' "$T/tflat"; then
	ok "trace: four ranks, their sends, dp and embedding collectives"
else nok "trace: four ranks, their sends, dp and embedding collectives"; fi
run plot timeline --input "$T/trace.json" --out "$T/timeline.svg"
if [ "$rc" -eq 0 ] && [ -s "$T/timeline.dat" ]; then ok "strata plot timeline draws the run's trace"
else nok "strata plot timeline draws the run's trace"; fi

# refusals: one line from rank 0, exit 2 from every rank, no hang
mpi 2 --model tiny-gpt --plan tp=2,pp=2,dp=1,gbs=4,seq=32
if [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] && [ "$(grep -c '^strata run:' "$T/err")" -eq 1 ] &&
	grep -q 'runs on 4 ranks.*mpirun started 2' "$T/err" && [ ! -s "$T/out" ]; then
	ok "a rank count that is not the plan's: one line, failure"
else nok "a rank count that is not the plan's: one line, failure"; fi
mpi 2 --model tiny-gpt --plan tp=1,pp=1,dp=2,gbs=4,seq=32,recompute=op,attention=unfused --steps 1
if [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] && [ "$(grep -c '^strata run:' "$T/err")" -eq 1 ] &&
	grep -q "key 'attention'.*recompute=op with the fused attention" "$T/err"; then
	ok "recompute=op with attention=unfused: refused in one line"
else nok "recompute=op with attention=unfused: refused in one line" "$(cat "$T/err")"; fi
# replicas of different micro-batch counts (dp_batches, what plan balances on node groups of different GPUs):
# each runs its own count on its own samples, and the loss gradient's 1 / (gbs / mbs) weights each replica by
# its share (1 / (micro-batches x dp) would weight the replica of 1 micro-batch as much as that of 3)
run_checked 2 "dp=2 with dp_batches=3,1 (uneven replicas) matches the reference" \
	--model tiny-gpt --plan tp=1,pp=1,dp=2,mbs=1,gbs=4,seq=32,dp_batches=3,1
run_checked 4 "pp=2 dp=2 with dp_batches=3,5 and ZeRO-1 (Llama) matches the reference" \
	--model tiny-llama --plan tp=1,pp=2,dp=2,mbs=1,gbs=8,seq=32,dp_batches=3,5,zero=1
# optimizer offload (ZeRO-Offload): each owned part's host share updated by the CPU's Adam on host copies (the
# gradients down before the step, the weights up after it, as the lowering's copies say); a share not written
# back would leave the next steps' losses off the reference's
run_checked 2 "offload=optimizer with dp=2 ZeRO-1 (Llama) matches the reference" \
	--model tiny-llama --plan tp=1,pp=1,dp=2,mbs=1,gbs=4,seq=32,zero=1,offload=optimizer
run_checked 4 "offload_optimizer=0.4 with pp=2 dp=2 ZeRO-1 (GPT, tied embedding) matches the reference" \
	--model tiny-gpt --plan tp=1,pp=2,dp=2,mbs=1,gbs=8,seq=32,zero=1,offload_optimizer=0.4
# with ZeRO-3 (DeepSpeed's ZeRO-3 with offload_optimizer): the owned parts are the shards, each shard's host share
# updated on the host and copied back into the shard that the next step's gathers read
run_checked 2 "offload=optimizer with dp=2 ZeRO-3 (GPT, tied embedding) matches the reference" \
	--model tiny-gpt --plan tp=1,pp=1,dp=2,mbs=1,gbs=4,seq=32,zero=3,offload=optimizer
# with sp, the replicated gradients (norms, biases after the row-parallel GEMMs) summed over tp before they go down:
# a host Adam on one tp rank's partial sums left the second step's loss 7e-4 off
run_checked 4 "offload=optimizer with tp=2 sp=1 dp=2 ZeRO-3 (GPT) matches the reference" \
	--model tiny-gpt --plan tp=2,sp=1,pp=1,dp=2,mbs=1,gbs=4,seq=32,zero=3,offload=optimizer
run_checked 4 "offload_optimizer=0.4 with pp=2 dp=2 ZeRO-3 (Llama) matches the reference" \
	--model tiny-llama --plan tp=1,pp=2,dp=2,mbs=1,gbs=8,seq=32,zero=3,offload_optimizer=0.4
# offload=params (ZeRO-3 with DeepSpeed's offload_param): the shards stay on the host, each unit's copied up at the
# lowering's "weights to device (layer)" before its gathers, which send from that copy (a copy left unread, or
# read stale, would leave the losses off the reference's); the optimizer on the host whole
mpi 2 --model tiny-gpt --plan tp=1,pp=1,dp=2,mbs=1,gbs=4,seq=32,zero=3,offload=params --steps 2 --check --json \
	--trace "$T/otrace.json"
check_within "offload=params with dp=2 ZeRO-3 (GPT, tied embedding) matches the reference"
# each unit's shards copied up before each of its gathers (forward and backward): as many copies as gathers
if [ "$(grep -o '"name": *"weights to device (layer)"' "$T/otrace.json" | wc -l)" -gt 0 ] &&
	[ "$(grep -o '"name": *"weights to device (layer)"' "$T/otrace.json" | wc -l)" -eq \
		"$(grep -o '"name": *"zero-3 gather"' "$T/otrace.json" | wc -l)" ]; then
	ok "offload=params: a copy up before each ZeRO-3 gather in the trace"
else nok "offload=params: a copy up before each ZeRO-3 gather in the trace" \
	"$(grep -o '"name": *"[^"]*"' "$T/otrace.json" | sort | uniq -c | head -20)"; fi
run_checked 4 "offload=params with pp=2 dp=2 ZeRO-3 (Llama) matches the reference" \
	--model tiny-llama --plan tp=1,pp=2,dp=2,mbs=1,gbs=8,seq=32,zero=3,offload=params
run_checked 4 "offload=params with MoE ep=2 dp=4 ZeRO-3 (the experts' shards in their own group) matches the reference" \
	--model tiny-moe --plan tp=1,pp=1,dp=4,ep=2,mbs=1,gbs=8,seq=32,zero=3,offload=params
mpi 2 --model tiny-gpt --plan tp=1,pp=2,dp=1,gbs=4,seq=32,offload_activations=0.5
if [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] && [ "$(grep -c '^strata run:' "$T/err")" -eq 1 ] &&
	grep -q 'does not run the granular offload' "$T/err"; then ok "granular offload: refused in one line, before the setup"
else nok "granular offload: refused in one line, before the setup" "$(cat "$T/err")"; fi
mpi 2 --model tiny-gpt --plan tp=2,sp=1,pp=1,dp=1,mbs=1,gbs=4,seq=31
if [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] && [ "$(grep -c '^strata run:' "$T/err")" -eq 1 ] &&
	grep -q 'sp=1 needs the micro-batch.s tokens (31) divisible by tp=2' "$T/err"; then
	ok "sp with tokens that do not split over tp: refused in one line"
else nok "sp with tokens that do not split over tp: refused in one line" "$(cat "$T/err")"; fi
mpi 2 --model tiny-gpt --plan tp=2,pp=1,dp=1,gbs=4,seq=32 --steps 0
if [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] && [ "$(grep -c '^strata run:' "$T/err")" -eq 1 ] && grep -q steps "$T/err"; then
	ok "--steps 0: refused in one line"
else nok "--steps 0: refused in one line"; fi
run run --model tiny-gpt
if [ "$rc" -eq 2 ] && grep -q -- '--plan' "$T/err"; then ok "--plan is required"; else nok "--plan is required"; fi

finish_tests
