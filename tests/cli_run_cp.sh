#!/bin/sh
# cli_run_cp.sh: `strata run` of context-parallel plans under mpirun (issue 18): each cp rank holds
# chunks cr and 2cp - 1 - cr of every sequence (Megatron-LM's load-balanced causal split), runs
# everything but attention on its own tokens, and attends its queries against the whole sequence's
# keys and values (passed around a ring of sends and receives with cp_comm=p2p, all-gathered with
# all_gather), the gradients of the keys and values going back to their ranks the same way, or with
# a2a trades its tokens of every head for the whole sequence of 1/cp of the heads; the loss and
# gradients are reduced over the dp x cp group (exec/model.c, "context parallelism").
# Checked against the single-rank reference within tests/cli_run.sh's tolerance (it says why);
# refusals are one line. Skips (77) without the executor or mpirun; every mpirun under `timeout`.
SRCDIR=${SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
. "$SRCDIR/tests/lib.sh"
start_tests run_cp

skip_without_executor

mpi_strata 180 2 run --model tiny-gpt --plan tp=1,pp=1,cp=2,dp=1,mbs=1,gbs=4,seq=64 --steps 2 --check --json \
	--trace "$T/trace.json"
check_within "cp=2 ring (GPT, learned positions) matches the single-rank reference"
# the fused lowering's "cp collectives" after each forward and backward (4 micro-batches x 2, on each of
# the 2 ranks) shows the exchanges' time
if [ "$(grep -o '"cp collectives"' "$T/trace.json" | wc -l)" -eq 16 ] &&
	grep -o '"coll cp": [-0-9.e+]*' "$T/out" | awk '$3 > 0 { n++ } END { exit n != 2 }'; then
	ok "cp: the trace shows the cp collectives, every rank measured them"
else nok "cp: the trace shows the cp collectives, every rank measured them"; fi
run_checked 2 "cp=2 all_gather (Llama, rotary positions, GQA) matches the reference" \
	--model tiny-llama --plan tp=1,pp=1,cp=2,dp=1,mbs=1,gbs=4,seq=64,cp_comm=all_gather --compare
# --compare: the cp collectives measured beside the lowering's (all_gather's are exposed; p2p's ring
# the cost model hides behind the attention)
if [ "$(grep -o '"coll_cp": [-0-9.e+]*' "$T/out" | awk '$2 > 0 { n++ } END { print n + 0 }')" -eq 2 ]; then
	ok "cp --compare: the cp collectives measured and simulated"
else nok "cp --compare: the cp collectives measured and simulated" "$(grep -o '"coll_cp": [-0-9.e+]*' "$T/out")"; fi
run_checked 4 "cp=4 ring (Llama, 3 steps around the ring, two sequences a micro-batch) matches the reference" \
	--model tiny-llama --plan tp=1,pp=1,cp=4,dp=1,mbs=2,gbs=4,seq=32
run_checked 4 "cp=2 x tp=2 (Llama) matches the reference" \
	--model tiny-llama --plan tp=2,pp=1,cp=2,dp=1,mbs=1,gbs=4,seq=32
run_checked 4 "cp=2 x dp=2 with ZeRO-3 (GPT; the dp x cp group holds the shards) matches the reference" \
	--model tiny-gpt --plan tp=1,pp=1,cp=2,dp=2,mbs=1,gbs=4,seq=32,zero=3
# learned positions and targets through the backend's kernels: with sp each tp rank's rows cross the
# two chunks' runs of positions (T = 12 a cp rank, 18 rows a tp rank of 3 sequences)
run_checked 4 "cp=2 x tp=2 with sp (GPT, positions in runs over the chunks) matches the reference" \
	--model tiny-gpt --plan tp=2,pp=1,cp=2,dp=1,mbs=3,gbs=6,seq=24,sp=1
# the split backward (zb: input half, weight half later) with the K/V exchanges in its input half
run_checked 4 "cp=2 x pp=2 with schedule=zb (GPT) matches the reference" \
	--model tiny-gpt --plan tp=1,pp=2,cp=2,dp=1,mbs=1,gbs=4,seq=32,schedule=zb
run_checked 2 "cp=2 with selective recompute (the attention again over the gathered keys) matches the reference" \
	--model tiny-llama --plan tp=1,pp=1,cp=2,dp=1,mbs=1,gbs=4,seq=32,recompute=selective

# a2a (Ulysses): q, k and v all-to-all'd to the whole sequence on 1/cp of the heads, the output back
run_checked 2 "cp=2 a2a (Llama, GQA: 2 kv heads, one a rank) matches the reference" \
	--model tiny-llama --plan tp=1,pp=1,cp=2,dp=1,mbs=1,gbs=4,seq=64,cp_comm=a2a
run_checked 4 "cp=4 a2a (GPT, two sequences a micro-batch) matches the reference" \
	--model tiny-gpt --plan tp=1,pp=1,cp=4,dp=1,mbs=2,gbs=4,seq=32,cp_comm=a2a

finish_tests
