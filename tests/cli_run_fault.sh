#!/bin/sh
# cli_run_fault.sh: `strata run` when a rank dies or hangs (issue 18, "Bad input and faults"): the
# job ends within the timeout plus a margin, with a failing status, a line naming the rank and the
# instruction (for a hang: the ranks waited for and what in; for a crash: the signal), and no
# process left behind. Faults come from the test hook STRATA_EXEC_FAULT=RANK:INSTRUCTION:KIND
# (exec.h), the timeout from STRATA_RUN_TIMEOUT (3 s here) or --timeout. Instruction numbers are the
# ranks' programs' (the lowering is deterministic): tiny-gpt at pp=2, gbs 4, mbs 1 has rank 1 send
# the first micro-batch's gradient at its instruction 3 while rank 0 receives it at its 4.
# Skips (77) where strata was built without the executor or mpirun is missing.
SRCDIR=${SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
. "$SRCDIR/tests/lib.sh"
start_tests run_fault

need_executor
ulimit -c 0 2>/dev/null # the injected crash leaves no core file

MARGIN=30 # seconds past the timeout: mpirun's start and teardown on a loaded 2-core machine
STRATA_RUN_TIMEOUT=3
export STRATA_RUN_TIMEOUT
n=0

# fault SPEC NP ARGS...: strata run ARGS on NP ranks with the fault SPEC; $secs the wall time. Each
# run's trace path (never written: the run fails) marks its processes for leftovers()
fault() {
	_f=$1 _np=$2
	shift 2
	n=$((n + 1))
	_t0=$(date +%s)
	STRATA_EXEC_FAULT=$_f
	export STRATA_EXEC_FAULT
	mpi_strata 120 "$_np" run --steps 2 --trace "$T/fault$n.json" "$@"
	unset STRATA_EXEC_FAULT
	secs=$(($(date +%s) - _t0))
}

# leftovers: the processes of the last run still alive after 10 s (none expected)
leftovers() {
	_i=0
	while [ $_i -lt 10 ]; do
		_left=$(ps -eo pid=,args= | grep -F -- "$T/fault$n.json" | grep -v grep)
		[ -z "$_left" ] && return 0
		sleep 1
		_i=$((_i + 1))
	done
	echo "$_left"
}

# ended DESCRIPTION STATUS PATTERN: the last run exited STATUS (any failure: "fail"), within the
# timeout and the margin, with a line on stderr matching the ERE PATTERN, and left nothing
ended() {
	_why=
	if [ "$2" = fail ]; then
		{ [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ]; } || _why="exit status $rc"
	else [ "$rc" -eq "$2" ] || _why="exit status $rc, expected $2"; fi
	[ "$secs" -le $((STRATA_RUN_TIMEOUT + MARGIN)) ] || _why="$_why; took $secs s"
	grep -Eq -- "$3" "$T/err" || _why="$_why; no line matching: $3"
	_left=$(leftovers)
	[ -z "$_left" ] || _why="$_why; left running: $_left"
	if [ -z "$_why" ]; then ok "$1 ($secs s)"; else nok "$1" "$_why"; fi
}

pp2='--model tiny-gpt --plan tp=1,pp=2,dp=1,mbs=1,gbs=4,seq=32'
# shellcheck disable=SC2086
fault 1:3:hang 2 $pp2
pat='^strata run: rank 0 timed out after 3 s in step 1 instruction 4 \(recv grad, micro-batch 0\) waiting for rank 1'
ended "a rank that hangs before a send: its receiver times out naming the receive and the sender" 2 \
	"$pat in the receive; stopping every rank\$"
if [ "$(grep -c '^strata run:' "$T/err")" -eq 1 ]; then ok "a hang: one line from strata"
else nok "a hang: one line from strata" "$(grep '^strata run:' "$T/err")"; fi
fault 1:0:hang 2 --model tiny-gpt --plan tp=2,pp=1,dp=1,mbs=1,gbs=2,seq=32
ended "a hang in tensor parallelism: its peer times out in the tp all-reduce inside the forward" 2 \
	'^strata run: rank 0 timed out after 3 s in step 1 instruction 0 \(fwd, micro-batch 0\) waiting for rank 1 in the tp '\
'all-reduce;'
fault 1:0:hang 2 --model tiny-gpt --plan tp=2,sp=1,pp=1,dp=1,mbs=1,gbs=2,seq=32
ended "a hang with sequence parallelism: the tp reduce-scatter" 2 \
	'^strata run: rank 0 timed out .* instruction 0 \(fwd, micro-batch 0\) waiting for rank 1 in the tp reduce-scatter;'
fault 0:1:hang 2 --model tiny-gpt --plan tp=1,pp=1,dp=2,mbs=1,gbs=4,seq=32,zero=1
ended "a hang before ZeRO-1's reduce-scatter: the other dp rank names it" 2 \
	'^strata run: rank 1 timed out .* instruction 4 \(dp reduce\) waiting for rank 0 in the dp reduce-scatter;'
fault 1:0:hang 2 --model tiny-moe --plan tp=1,pp=1,dp=2,ep=2,mbs=1,gbs=4,seq=32
ended "a hang with expert parallelism: the ep all-to-all" 2 \
	'^strata run: rank 0 timed out .* instruction 0 \(fwd, micro-batch 0\) waiting for rank 1 in the ep all-to-all;'
fault 3:0:hang 8 --model tiny-gpt --plan tp=2,pp=2,dp=2,mbs=1,gbs=8,seq=32 --timeout 4
ended "8 ranks (tp x pp x dp), --timeout 4: the job ends, a rank names what it waited in" 2 \
	'^strata run: rank [0-7] timed out after 4 s in step 1 instruction [0-9]+ \([a-z ]+(, micro-batch [0-9])?\) '\
'waiting for ranks? [0-9,]+ in the '

# shellcheck disable=SC2086
fault 1:3:crash 2 $pp2
ended "a rank that crashes names itself, the signal and the instruction; mpirun ends the other" fail \
	'^strata run: rank 1 crashed \(signal 11\) in step 1 instruction 3 \(send grad, micro-batch 0\)$'
fault 5:0:crash 8 --model tiny-gpt --plan tp=2,pp=2,dp=2,mbs=1,gbs=8,seq=32
ended "a crash among 8 ranks" fail '^strata run: rank 5 crashed \(signal 11\) in step 1 instruction 0 '
# a rank that exits without a word: only mpirun can name it (Open MPI 4: "Process name: [[JOB,1],RANK]",
# "process rank RANK"; PRRTE: "[prterun-HOST-PID@1,RANK]")
# shellcheck disable=SC2086
fault 1:3:die 2 $pp2
ended "a rank that exits: the job ends and mpirun names the rank" fail '(\[\[[0-9]+,1\],1\]|process rank 1 |@1,1\])'

# an instruction that fails mid-step (out of memory: the `fail` hook): the failing rank names itself, the
# instruction and why, and stops every rank at once, its peers not left waiting out their timeout (60 s here)
# shellcheck disable=SC2086
fault 1:3:fail 2 $pp2 --timeout 60
if [ "$rc" -eq 2 ] && [ "$secs" -lt 40 ] && [ "$(grep -c '^strata run:' "$T/err")" -eq 1 ] &&
	grep -q '^strata run: rank 1 failed in step 1 instruction 3 (send grad, micro-batch 0): out of memory; stopping every rank$' \
		"$T/err" && [ -z "$(leftovers)" ]; then
	ok "an instruction that fails mid-step stops every rank at once, naming the rank and the instruction ($secs s)"
else nok "an instruction that fails mid-step stops every rank at once" "exit $rc, $secs s: $(grep '^strata' "$T/err")"; fi
# the same in an operator-level plan run per operator (tiny-llama's ILP plan on 2: exec/opexec.c)
"$STRATA" plan --search ilp --cluster "$SRCDIR/tests/data/cluster_slowgpu.json" --seq 32 --model tiny-llama --gpus 2 \
	--gbs 4 --mbs 1 --max-stages 1 --out "$T/l2.json" >"$T/ilpout" 2>&1 || nok "ILP plan tiny-llama on 2" "$(cat "$T/ilpout")"
STRATA_RUN_PER_OP=1
export STRATA_RUN_PER_OP
fault 0:2:fail 2 --cluster "$SRCDIR/tests/data/cluster_slowgpu.json" --model tiny-llama --plan "$T/l2.json" --timeout 60
unset STRATA_RUN_PER_OP
if [ "$rc" -eq 2 ] && [ "$secs" -lt 40 ] && [ "$(grep -c '^strata run:' "$T/err")" -eq 1 ] &&
	grep -q '^strata run: rank 0 failed in step 1 instruction 2 (.*): out of memory; stopping every rank$' "$T/err"; then
	ok "per operator: an instruction that fails mid-step stops every rank at once ($secs s)"
else nok "per operator: an instruction that fails mid-step stops every rank at once" "exit $rc, $secs s: $(grep '^strata' "$T/err")"; fi

# per operator alike: the NaN (in every gradient block of rank 0) stops the step that meets it, before any
# difference is printed (an infinite one was, with --steps 1)
STRATA_RUN_PER_OP=1
export STRATA_RUN_PER_OP
fault 0:1:nan 2 --cluster "$SRCDIR/tests/data/cluster_slowgpu.json" --model tiny-llama --plan "$T/l2.json" --check --json
unset STRATA_RUN_PER_OP
ended "per operator: a NaN gradient under --check stops the run in the step that meets it" 2 \
	'^strata run: .*rank 0 step 1: [0-9]+ gradient value\(s\) not finite'
if [ ! -s "$T/out" ]; then ok "per operator: a NaN gradient: nothing on stdout"
else nok "per operator: a NaN gradient: nothing on stdout" "$(head -c 300 "$T/out")"; fi

# a diverged run (a NaN put in rank 0's first gradient): never a NaN printed, never a check that
# passes; one line naming the rank and the step, nothing on stdout
dp2='--model tiny-gpt --plan tp=1,pp=1,dp=2,mbs=1,gbs=4,seq=32'
# shellcheck disable=SC2086
fault 0:1:nan 2 $dp2 --check
ended "a NaN gradient under --check: the step that meets it stops the run" 2 \
	'^strata run: .*rank 0 step 1: 1 gradient value\(s\) not finite'
if [ ! -s "$T/out" ]; then ok "a NaN gradient: nothing on stdout"; else nok "a NaN gradient: nothing on stdout"; fi
# ZeRO-3 holds its gradients in shards: the NaN goes into this rank's shard, --check meets it there
# shellcheck disable=SC2086
fault 0:1:nan 2 $dp2,zero=3 --check
ended "a NaN gradient in a ZeRO-3 shard under --check: the step stops the run" 2 \
	'^strata run: .*rank 0 step 1: 1 gradient value\(s\) not finite'
# shellcheck disable=SC2086
fault 0:1:nan 2 $dp2 --json
ended "a NaN gradient without --check: the next step's loss stops the run" 2 \
	'^strata run: .*rank [01] step 2: the loss is not finite'
if [ ! -s "$T/out" ]; then ok "a diverged loss: no JSON written"; else nok "a diverged loss: no JSON written"; fi
# the last stage meets the loss: rank 1 says why itself (rank 0 only learns that rank 1 failed)
# shellcheck disable=SC2086
fault 0:1:nan 2 $pp2
ended "a diverged loss on the last stage: its own rank names it" 2 '^strata run: .*rank 1 step 2: the loss is not finite'
if [ "$(grep -c '^strata run:' "$T/err")" -eq 1 ]; then ok "a diverged loss: one line from strata"
else nok "a diverged loss: one line from strata" "$(grep '^strata run:' "$T/err")"; fi

# the hook and the timeout are checked like any input: one line from rank 0, exit 2, no hang
# shellcheck disable=SC2086
for bad in x 1:3 1:3:explode -1:3:die 1:-3:die 2:0:die 1:19:die; do
	fault "$bad" 2 $pp2
	if [ "$rc" -eq 2 ] && [ "$(grep -c '^strata run:' "$T/err")" -eq 1 ] &&
		grep -q "^strata run: key 'STRATA_EXEC_FAULT'" "$T/err"; then
		ok "STRATA_EXEC_FAULT=$bad: refused in one line"
	else nok "STRATA_EXEC_FAULT=$bad: refused in one line" "$(grep '^strata' "$T/err")"; fi
done
if grep -q "rank 1's program has 19 instructions (0 .. 18), not 19" "$T/err"; then
	ok "the hook names the program's length"
else nok "the hook names the program's length"; fi
# shellcheck disable=SC2086
fault "" 2 $pp2 --timeout 0
if [ "$rc" -eq 2 ] && grep -q "^strata run: option '--timeout': 0 is out of range" "$T/err"; then
	ok "--timeout 0: refused"
else nok "--timeout 0: refused" "$(grep '^strata' "$T/err")"; fi
STRATA_RUN_TIMEOUT=soon
# shellcheck disable=SC2086
fault "" 2 $pp2
if [ "$rc" -eq 2 ] && grep -q "STRATA_RUN_TIMEOUT.*expected an integer, got 'soon'" "$T/err"; then
	ok "STRATA_RUN_TIMEOUT that is not a number: refused naming it"
else nok "STRATA_RUN_TIMEOUT that is not a number: refused naming it" "$(grep '^strata' "$T/err")"; fi
STRATA_RUN_TIMEOUT=3
# shellcheck disable=SC2086
fault "" 2 $pp2 --timeout 60 --json
if [ "$rc" -eq 0 ] && grep -q '"loss": \[' "$T/out"; then ok "no fault, --timeout 60: the run completes"
else nok "no fault, --timeout 60: the run completes"; fi

finish_tests
