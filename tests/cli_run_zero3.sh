#!/bin/sh
# cli_run_zero3.sh: `strata run` of ZeRO-3 plans under mpirun (issue 18): each rank holds its shard of
# every unit's parameters, gradients and Adam moments, all-gathers a unit's parameters before each of
# its forward and backward pieces and reduce-scatters its gradients after each backward piece, as the
# lowering's "zero-3 gather" and "zero-3 reduce-scatter" say (exec/cpu.c, z3_*). Checked against the
# single-rank reference within tests/cli_run.sh's tolerance (it says why: fp32 sums in other orders;
# here the gradients are also summed over dp per micro-batch), its heap high-water against ZeRO-1's,
# and the plans it refuses. Skips (77) without the executor or mpirun; every mpirun under `timeout`.
SRCDIR=${SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
. "$SRCDIR/tests/lib.sh"
start_tests run_zero3

skip_without_executor

run_checked 2 "ZeRO-3 dp=2 (GPT: the output layer gathers the tied embedding's unit) matches the reference" \
	--model tiny-gpt --plan tp=1,pp=1,dp=2,mbs=1,gbs=4,seq=64,zero=3
run_checked 4 "ZeRO-3 dp=4 (Llama) matches the reference" \
	--model tiny-llama --plan tp=1,pp=1,dp=4,mbs=1,gbs=8,seq=32,zero=3
run_checked 8 "ZeRO-3 tp x pp x dp = 2x2x2 (GPT, tied embedding across stages) matches the reference" \
	--model tiny-gpt --plan tp=2,pp=2,dp=2,mbs=1,gbs=8,seq=32,zero=3
mpi_strata 180 8 run --model tiny-llama --plan tp=2,sp=1,pp=2,vp=2,dp=2,mbs=1,gbs=8,seq=32,zero=3 --steps 2 --check \
	--json --trace "$T/trace.json"
check_within "ZeRO-3 tp x pp x dp = 2x2x2 with sp and vp=2 (Llama) matches the reference"
# the trace: every gather and reduce-scatter of the program ran. A rank of stage 0 holds chunks 0 (the
# embedding and block 0) and 2 (block 2), of stage 1 chunks 1 and 3 (block 3 and the output layer): 3
# units, each gathered for its forward and its backward piece and reduce-scattered after the backward,
# for each of 4 micro-batches: 8 ranks x 4 x 6 = 192 gathers, 8 x 4 x 3 = 96 reduce-scatters
if [ "$(grep -o '"zero-3 gather"' "$T/trace.json" | wc -l)" -eq 192 ] &&
	[ "$(grep -o '"zero-3 reduce-scatter"' "$T/trace.json" | wc -l)" -eq 96 ]; then
	ok "ZeRO-3: the trace shows every gather (192) and reduce-scatter (96)"
else nok "ZeRO-3: the trace shows every gather (192) and reduce-scatter (96)"; fi

# memory: tiny-gpt holds 0.867M fp32 parameters (3.3 MiB), as many gradients; ZeRO-1 keeps both whole,
# ZeRO-3 a quarter of each on dp=4 and one unit gathered at a time (the largest, a block: 0.2M floats,
# 0.8 MiB, its weights and gradients): the heap high-water drops by 2 x 3.3 x 3/4 - 2 x 0.8 = 3.4 MiB or
# more; measured 4.2 MiB (24.0 against 19.8 MiB)
heap() { tr -d '\n' <"$T/out" | awk '{ n = split($0, r, "\"heap_peak_bytes\": "); h = 0
	for (i = 2; i <= n; i++) { split(r[i], v, /[,}]/); if (v[1] > h) h = v[1] } print h }'; }
mpi_strata 180 4 run --model tiny-gpt --plan tp=1,pp=1,dp=4,mbs=1,gbs=8,seq=64,zero=1 --steps 1 --compare --json
z1=$(heap)
mpi_strata 180 4 run --model tiny-gpt --plan tp=1,pp=1,dp=4,mbs=1,gbs=8,seq=64,zero=3 --steps 1 --compare --json
z3=$(heap)
if [ "$rc" -eq 0 ] && awk -v a="$z1" -v b="$z3" 'BEGIN { exit !(a > 0 && b > 0 && a - b >= 3.4 * 1048576) }'; then
	ok "ZeRO-3's heap high-water is below ZeRO-1's by the shards (3.4 MiB or more on dp=4)"
else nok "ZeRO-3's heap high-water is below ZeRO-1's by the shards (3.4 MiB or more on dp=4)" "$z1 $z3"; fi

# what it does not run: one line from rank 0, failure on every rank, no hang
mpi_strata 180 2 run --model tiny-gpt --plan tp=1,pp=1,dp=2,gbs=4,seq=32,zero=3,recompute=full
if [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] && [ "$(grep -c '^strata run:' "$T/err")" -eq 1 ] &&
	grep -q 'does not run ZeRO-3 with activation recompute' "$T/err" && [ ! -s "$T/out" ]; then
	ok "ZeRO-3 with recompute: refused in one line"
else nok "ZeRO-3 with recompute: refused in one line" "$(cat "$T/err")"; fi
mpi_strata 180 2 run --model tiny-moe --plan tp=1,pp=1,dp=2,ep=2,gbs=4,seq=32,zero=3
if [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] && [ "$(grep -c '^strata run:' "$T/err")" -eq 1 ] &&
	grep -q 'does not run ZeRO-3 with expert parallelism' "$T/err" && [ ! -s "$T/out" ]; then
	ok "ZeRO-3 with ep > 1: refused in one line"
else nok "ZeRO-3 with ep > 1: refused in one line" "$(cat "$T/err")"; fi
# the split backward's weight half would write a unit's gradients after that unit's reduce-scatter
mpi_strata 180 2 run --model tiny-gpt --plan tp=1,pp=2,dp=1,gbs=4,seq=32,zero=3,schedule=zb
if [ "$rc" -eq 2 ] && [ "$(grep -c '^strata run:' "$T/err")" -eq 1 ] &&
	grep -q 'does not run zero=3 with a split-backward schedule (schedule=zb, zbv or dualpipe)' "$T/err" &&
	[ ! -s "$T/out" ]; then
	ok "ZeRO-3 with schedule=zb: refused in one line, exit 2"
else nok "ZeRO-3 with schedule=zb: refused in one line, exit 2" "rc $rc: $(cat "$T/err")"; fi

finish_tests
