#!/bin/sh
# ilp_census.sh: which operator-level plans of the tiny presets `strata run` runs (issue 18), and why the
# others are refused. For tiny-gpt, tiny-llama and tiny-moe on the slow-GPU test fixtures
# (tests/data/cluster_slowgpu.json, its 2x2 variant, and 1x8 and 2x4 variants made here) and on
# dgx-a100-80g, on 2, 4 and 8 devices (as many as the cluster has), micro-batches of 1, 2 and 8
# sequences of 32 tokens (the global batch 4 micro-batches), with one stage or as many as the ILP
# likes: `strata plan --search ilp --out P`, then `mpirun -np G strata run --plan P --steps 2 --check
# --json` (G: the plan's devices: its ranks times its copies), and the refusal's line classified. Prints
# the count per class (run: within tests/cli_run.sh's 1e-5 of the single-rank run's loss; mismatch: not),
# the total run and their largest gradient difference, and with -v each plan's line (with its sizes).
#
# Not part of make check (it takes minutes: about 230 runs under mpirun). Usage, from the build tree:
#   scripts/ilp_census.sh [-v] [STRATA]      (STRATA: the binary, ./strata by default)
# Needs mpirun and timeout; Open MPI as root needs OMPI_ALLOW_RUN_AS_ROOT(_CONFIRM), set here.
set -u
VERBOSE=0
if [ "${1:-}" = -v ]; then VERBOSE=1; shift; fi
STRATA=${1:-./strata}
SRCDIR=$(cd "$(dirname "$0")/.." && pwd)
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1

SLOW=$SRCDIR/tests/data/cluster_slowgpu.json
sed 's/"gpus_per_node": 4/"gpus_per_node": 8/' "$SLOW" >"$W/slow1x8.json"
sed 's/"nodes": 1, "gpus_per_node": 4/"nodes": 2, "gpus_per_node": 4/' "$SLOW" >"$W/slow2x4.json"
# CLUSTER:DEVICES... (what each holds)
CASES="$SLOW:2,4 $SRCDIR/tests/data/cluster_slowgpu_2x2.json:2,4 $W/slow1x8.json:2,4,8 $W/slow2x4.json:2,4,8
dgx-a100-80g:2,4,8"

# class LINE: the refusal's class
class() {
	case "$1" in
	*"operator router"* | *"operator dispatch"* | *"operator expert_"* | *"operator moe_combine"*) echo "moe" ;;
	*"operator qkv: split 'e'"*) echo "qkv-width" ;;
	*"stages of one shape"* | *"stages of different"*) echo "stage-shapes" ;;
	*"kv heads"*) echo "kv-heads" ;;
	*"mesh axis 1"* | *"mesh axis 2"*) echo "2-d-mesh" ;;
	*) echo "other" ;;
	esac
}

: >"$W/classes"
: >"$W/lines"
for c in $CASES; do
	cl=${c%%:*}
	for g in $(echo "${c#*:}" | tr , ' '); do
		for model in tiny-gpt tiny-llama tiny-moe; do
			for mbs in 1 2 8; do
				for st in 1 0; do
					set -- --model "$model" --cluster "$cl" --seq 32 --gpus "$g" --mbs "$mbs" --gbs $((4 * mbs))
					[ "$st" = 1 ] && set -- "$@" --max-stages 1
					what="$model $(basename "$cl" .json) gpus=$g mbs=$mbs$([ "$st" = 1 ] && echo ' 1 stage')"
					if ! "$STRATA" plan --search ilp "$@" --out "$W/p.json" >"$W/pout" 2>&1; then
						echo "no-plan" >>"$W/classes"
						echo "no-plan	$what: $(tail -1 "$W/pout")" >>"$W/lines"
						continue
					fi
					# the ranks: the plan's devices (its stages' meshes hold them all)
					np=$g
					timeout 300 mpirun --oversubscribe -np "$np" "$STRATA" run --plan "$W/p.json" --cluster "$cl" \
						--model "$model" --steps 2 --check --json >"$W/out" 2>"$W/err"
					rc=$?
					if [ "$rc" -eq 0 ]; then
						# run: the loss within tests/cli_run.sh's 1e-5 of the single-rank run's (else mismatch)
						diff=$(grep -o '"max_diff_overall": [^}]*' "$W/out" | cut -d' ' -f2)
						loss=$(grep -o '"loss_max_diff": [^,]*' "$W/out" | cut -d' ' -f2)
						k=$(awk -v l="$loss" 'BEGIN { print (l != "" && l + 0 <= 1e-5) ? "run" : "mismatch" }')
						echo "$k" >>"$W/classes"
						echo "$k	$what: loss_max_diff $loss, max_diff_overall $diff" >>"$W/lines"
						continue
					fi
					line=$(grep -m1 '^strata run:' "$W/err")
					if [ -z "$line" ]; then
						echo "failed" >>"$W/classes"
						echo "failed	$what: rc $rc: $(head -c 300 "$W/err" | tr '\n' ' ')" >>"$W/lines"
						continue
					fi
					k=$(class "$line")
					echo "$k" >>"$W/classes"
					echo "$k	$what: $line" >>"$W/lines"
				done
			done
		done
	done
done
[ "$VERBOSE" = 1 ] && sort "$W/lines"
echo "class counts:"
sort "$W/classes" | uniq -c | sort -rn
echo "total plans: $(wc -l <"$W/classes"), run: $(grep -c '^run$' "$W/classes"), largest max_diff_overall of a run:" \
	"$(grep '^run' "$W/lines" | awk '{ print $NF }' | sort -g | tail -1)"
