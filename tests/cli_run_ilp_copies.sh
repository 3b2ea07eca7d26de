#!/bin/sh
# cli_run_ilp_copies.sh: `strata run` of operator-level plans whose stage meshes have axes on which the
# ILP splits no operator (issue 18): on dgx-a100-80g the tiny presets are too small to shard, and
# `strata plan --search ilp` keeps every operator whole on every device of a stage, each computing what
# the others do. The executor runs such an axis as that many copies of the job (st_exec_job_rank: world
# rank w runs rank w / copies of copy w % copies), each on the same data, with no collective between
# the copies (the ILP reduces no gradient over an axis that splits nothing: search/autoshard.c's
# grad_sync); every copy's gradients are checked against the single-rank run, within tests/cli_run.sh's
# tolerances. Skips (77) where strata was built without the executor or mpirun is missing.
SRCDIR=${SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
. "$SRCDIR/tests/lib.sh"
start_tests run-ilp-copies

need_executor

# ilp NAME ARGS...: plan into $T/NAME.json on dgx-a100-80g, sequences of 32 tokens
ilp() {
	_name=$1
	shift
	"$STRATA" plan --search ilp --cluster dgx-a100-80g --seq 32 "$@" --out "$T/$_name.json" >"$T/ilpout" 2>&1 ||
		nok "ILP plan $*" "$(cat "$T/ilpout")"
}
# whole NAME OP: the plan file keeps operator OP whole on its one mesh axis
whole() { grep -A3 "\"$2\": {" "$T/$1.json" | tr -d ' \n' | grep -q '"split":\[null\]'; }

# tiny-gpt on 2 devices: one stage, every operator whole on both
ilp g2 --model tiny-gpt --gpus 2 --gbs 8 --mbs 2 --max-stages 1
if whole g2 qkv && whole g2 fc1 && whole g2 loss && grep -q '"gpus_per_node": 2' "$T/g2.json"; then
	ok "tiny-gpt on 2 of dgx-a100-80g: the ILP keeps every operator whole on both devices"
else nok "tiny-gpt on 2: the ILP's shardings" "$(cat "$T/g2.json")"; fi
mpi_strata 120 2 run --model tiny-gpt --plan "$T/g2.json" --steps 2 --check --json
check_within "tiny-gpt, ILP on 2 devices computing alike, matches the single-rank reference on both"
if grep -q '"copies": 2' "$T/out" && grep -q '"ranks": 1,' "$T/out" && grep -q '"plan": "tp=1,pp=1,dp=1,' "$T/out"; then
	ok "it runs as 2 copies of one rank"
else nok "it runs as 2 copies of one rank" "$(head -3 "$T/out")"; fi
# the text report says so
mpi_strata 120 2 run --model tiny-gpt --plan "$T/g2.json" --steps 1
if [ "$rc" -eq 0 ] && grep -q "2 copies of these ranks computing the same" "$T/out"; then
	ok "the text report names the copies"
else nok "the text report names the copies" "$(cat "$T/out" "$T/err")"; fi
# mpirun's count is the job's ranks times the copies: one line, exit 2 on every rank, nothing on stdout
mpi_strata 60 1 run --model tiny-gpt --plan "$T/g2.json" --steps 1
if [ "$rc" -eq 2 ] && [ "$(grep -c '^strata run:' "$T/err")" -eq 1 ] && [ ! -s "$T/out" ] &&
	grep -q "runs on 1 ranks (tp x pp x dp x cp), 2 copies of them .*mpirun started 1 (mpirun -np 2)" "$T/err"; then
	ok "one rank for a plan of 2 copies: refused in one line"
else nok "one rank for a plan of 2 copies: refused in one line" "$(cat "$T/err")"; fi

# tiny-llama on 4 devices: one stage of 4 copies (GQA, rope, RMSNorm, SwiGLU)
ilp l4 --model tiny-llama --gpus 4 --gbs 8 --mbs 2 --max-stages 1
if whole l4 qkv && whole l4 attention && grep -q '"gpus_per_node": 4' "$T/l4.json"; then
	ok "tiny-llama on 4 of dgx-a100-80g: the ILP keeps every operator whole on the 4 devices"
else nok "tiny-llama on 4: the ILP's shardings" "$(cat "$T/l4.json")"; fi
mpi_strata 180 4 run --model tiny-llama --plan "$T/l4.json" --steps 2 --check --json
check_within "tiny-llama, ILP on 4 devices computing alike, matches the single-rank reference on all 4"
if grep -q '"copies": 4' "$T/out"; then ok "it runs as 4 copies"
else nok "it runs as 4 copies" "$(head -3 "$T/out")"; fi

# tiny-gpt on 4 devices in at most 2 stages: 2 stages, each on 2 devices computing alike (2 copies of a
# 2-stage pipeline: world ranks 0, 1 run stage 0, ranks 2, 3 stage 1)
ilp p4 --model tiny-gpt --gpus 4 --gbs 8 --mbs 2 --max-stages 2
if [ "$(grep -c '"gpus_per_node": 2' "$T/p4.json")" -eq 2 ] && whole p4 qkv; then
	ok "tiny-gpt on 4 of dgx-a100-80g in 2 stages: each stage whole on its 2 devices"
else nok "tiny-gpt on 4 in 2 stages: the ILP's shardings" "$(cat "$T/p4.json")"; fi
mpi_strata 180 4 run --model tiny-gpt --plan "$T/p4.json" --steps 2 --check --json
check_within "tiny-gpt, ILP 2 stages on 2 devices each computing alike, matches the single-rank reference"
if grep -q '"copies": 2' "$T/out" && grep -q '"plan": "tp=1,pp=2,dp=1,' "$T/out"; then ok "it runs as 2 copies of pp=2"
else nok "it runs as 2 copies of pp=2" "$(head -3 "$T/out")"; fi
# a step that fails (a NaN put in rank 0's first gradient: the last stage meets the loss) stops every
# copy, and copy 0's last stage says why, in one line (tests/cli_run_fault.sh's case without copies)
STRATA_EXEC_FAULT=0:1:nan
export STRATA_EXEC_FAULT
mpi_strata 120 4 run --model tiny-gpt --plan "$T/p4.json" --steps 2
unset STRATA_EXEC_FAULT
if [ "$rc" -eq 2 ] && [ "$(grep -c '^strata run:' "$T/err")" -eq 1 ] && [ ! -s "$T/out" ] &&
	grep -q '^strata run: .*rank 1 step 2: the loss is not finite' "$T/err"; then
	ok "a diverged loss in every copy: one line from copy 0's last stage, exit 2"
else nok "a diverged loss in every copy: one line from copy 0's last stage, exit 2" "rc=$rc $(cat "$T/err")"; fi

finish_tests
