#!/bin/sh
# Golden CLI test: MIG slices as devices (examples/a100-mig.json; src/core/mig.c).
#   - estimate and sim on the example (8 A100-40GB cut into 7 x 1g.5gb: 56 devices of 4.75 GiB);
#     the two agree;
#   - compare: the same node as 7 x 1g.5gb, 1 x 7g.40gb and whole GPUs (CLUSTER:mig=PROFILE);
#     each row names its variant; the 1g slices pay their gradient reduction through host memory
#     and rank below the 7g slices for GPT-2;
#   - MIG inside node groups (examples/mixed-mig-h100.json): estimate, sim --every-rank and plan run,
#     each simulated rank held to its own device's memory;
#   - a layout of several profiles on one GPU (examples/a100-mig-mixed.json: 4g.40gb + 2g.20gb + 1g.10gb
#     of an A100 80GB): estimate and sim --every-rank agree within 10% with uneven dp_batches; compare
#     of layouts of one GPU (7g, 4g + 3g balanced 8:6, seven 1g, the example), each row named;
#   - bad input: an over-subscribing layout (of a uniform cluster and of a group; profile and per_gpu or
#     a layout, in JSON or inline), a profile of another GPU, a bad suffix, a layout of several
#     profiles inside a node group: exit 2, one line naming the key.
#
# Environment (set by automake): STRATA, SRCDIR. POSIX sh only. Exit 0 pass, 1 fail, 99 hard error.

SRCDIR=${SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
# shellcheck source=lib.sh source-path=SCRIPTDIR
. "$SRCDIR/tests/lib.sh"

start_tests cli-mig

EX=$SRCDIR/examples/a100-mig.json
M=$SRCDIR/tests/data/io/hf/gpt2.json
PLAN=tp=1,pp=1,dp=56,mbs=1,gbs=112,zero=1,recompute=selective
# val FILE KEY: the number after "KEY": in a one-line JSON object
val() { sed -n "s/.*\"$2\": *\\([-0-9.e+]*\\).*/\\1/p" "$1" | head -n 1; }

run estimate --model "$M" --cluster "$EX" --plan "$PLAN" --json
cp "$T/out" "$T/est.json"
gpu=$(sed -n 's/.*"gpu": *"\([^"]*\)".*/\1/p' "$T/est.json")
if [ $rc -eq 0 ] && [ "$gpu" = "a100-sxm-40g/1g.5gb" ] && grep -q '"fits": *true' "$T/est.json"; then
	ok "estimate on the example: 1g.5gb slices, the plan fits"
else
	nok "estimate on the example" "exit $rc, gpu '$gpu'"
fi

run sim --model "$M" --cluster "$EX" --plan "$PLAN" --json
a=$(val "$T/est.json" iteration_time_s)
b=$(val "$T/out" iteration_time_s)
if [ $rc -eq 0 ] && awk -v a="$a" -v b="$b" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(a > 0 && d <= 1e-6 * a) }'; then
	ok "sim agrees with the estimate on the slices ($b s vs $a s)"
else
	nok "sim on the example" "exit $rc, sim '$b' s, estimate '$a' s"
fi

# one node as 7 x 1g.5gb, 1 x 7g.40gb, whole GPUs
run compare --model "$M" --clusters "$EX,$EX:mig=7g.40gb,$EX:mig=none" --gbs 448 --tokens 10B
cp "$T/out" "$T/cmp.txt"
r1g=$(awk '$1 ~ /^[0-9]+$/ && $2 == "a100-mig" { print $1 }' "$T/cmp.txt")
r7g=$(awk '$1 ~ /^[0-9]+$/ && $2 == "a100-mig+7g.40gb" { print $1 }' "$T/cmp.txt")
rw=$(awk '$1 ~ /^[0-9]+$/ && $2 == "a100-mig+whole" { print $1 }' "$T/cmp.txt")
g1=$(awk '$1 ~ /^[0-9]+$/ && $2 == "a100-mig" { print $4 }' "$T/cmp.txt")
if [ $rc -eq 0 ] && [ "$g1" = 56 ] && [ -n "$r7g" ] && [ -n "$rw" ] && [ "$r7g" -lt "$r1g" ] && [ "$rw" -lt "$r7g" ]; then
	ok "compare: whole GPUs (rank $rw), then 7g.40gb (rank $r7g), then 56 x 1g.5gb (rank $r1g)"
else
	nok "compare of the MIG variants" "exit $rc; ranks 1g '$r1g' (gpus '$g1'), 7g '$r7g', whole '$rw'" "$(cat "$T/cmp.txt")"
fi

# MIG inside node groups (examples/mixed-mig-h100.json: a DGX A100 80GB as 56 x 1g.10gb beside a DGX H100)
MX=$SRCDIR/examples/mixed-mig-h100.json
MP=tp=1,pp=1,dp=64,mbs=1,gbs=128,zero=1
run estimate --model "$M" --cluster "$MX" --plan "$MP" --json
cp "$T/out" "$T/mx.json"
if [ $rc -eq 0 ] && grep -q '"fits": *true' "$T/mx.json" && grep -q '"gpus": *64' "$T/mx.json"; then
	ok "estimate on slices beside H100s: 64 devices, the plan fits"
else
	nok "estimate on the mixed MIG example" "exit $rc" "$(cat "$T/out" "$T/err")"
fi
run sim --model "$M" --cluster "$MX" --plan "$MP" --every-rank --json
b=$(val "$T/out" iteration_time_s)
if [ $rc -eq 0 ] && awk -v b="$b" 'BEGIN { exit !(b > 0) }'; then
	ok "sim --every-rank on slices beside H100s ($b s)"
else
	nok "sim --every-rank on the mixed MIG example" "exit $rc" "$(cat "$T/err")"
fi
# the H100 stage holds 13.5 GiB, more than a 1g.10gb slice's 9.5 but within its own GPU's: it runs
GP=tp=1,pp=8,dp=8,mbs=4,gbs=256,zero=0,schedule=gpipe,stage_layers=1,1,1,1,1,1,1,5
run sim --model "$M" --cluster "$MX" --plan "$GP" --every-rank --json
if [ $rc -eq 0 ] && grep -q '"fits": *true' "$T/out"; then
	ok "sim --every-rank holds each rank to its own device's memory"
else
	nok "sim --every-rank on an H100 stage above a slice's memory" "exit $rc" "$(cat "$T/err")"
fi
run plan --model "$M" --cluster "$MX" --gbs 256 --top 1
best=$(sed -n 's/^best: //p' "$T/out")
if [ $rc -eq 0 ] && [ -n "$best" ]; then
	ok "plan on slices beside H100s: $best"
else
	nok "plan on the mixed MIG example" "exit $rc" "$(cat "$T/out" "$T/err")"
fi

# a layout of several profiles on one A100 80GB: three node groups of one slice each
LX=$SRCDIR/examples/a100-mig-mixed.json
LP=tp=1,pp=1,dp=3,mbs=4,gbs=56,dp_batches=8,4,2
run estimate --model "$M" --cluster "$LX" --plan "$LP" --json
a=$(val "$T/out" iteration_time_s)
if [ $rc -eq 0 ] && grep -q '"gpus": *3' "$T/out" && grep -q '"fits": *true' "$T/out"; then
	ok "estimate on 4g.40gb + 2g.20gb + 1g.10gb of one GPU ($a s)"
else
	nok "estimate on the mixed layout" "exit $rc" "$(cat "$T/out" "$T/err")"
fi
run sim --model "$M" --cluster "$LX" --plan "$LP" --every-rank --json
b=$(val "$T/out" iteration_time_s)
if [ $rc -eq 0 ] && awk -v a="$a" -v b="$b" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(a > 0 && d <= 0.1 * a) }'; then
	ok "sim --every-rank agrees with the estimate on the mixed layout ($b s vs $a s)"
else
	nok "sim on the mixed layout" "exit $rc, sim '$b' s, estimate '$a' s" "$(cat "$T/err")"
fi
# plan: three replicas of different speeds share gbs 56 unevenly (dp = 3 divides neither 56 nor its
# micro-batches: search/enumerate.c's uneven_dp); before, the best plan was a 3-stage pipeline at 2x the time
run plan --model "$M" --cluster "$LX" --gbs 56 --top 3
best=$(sed -n 's/^best: //p' "$T/out")
if [ $rc -eq 0 ] && printf '%s\n' "$best" | grep -q 'pp=1,dp=3,' && printf '%s\n' "$best" | grep -q 'dp_batches=4,2,1$'; then
	ok "plan on 4g + 2g + 1g: dp=3 with micro-batches 4:2:1 ($best)"
else
	nok "plan with uneven data parallelism on the mixed layout" "exit $rc" "$(cat "$T/out" "$T/err")"
fi
run compare --model "$M" --clusters "$LX:mig=7g.80gb,$LX:mig=4g.40gb+3g.40gb,$LX:mig=1g.10gbx7,$LX" --gbs 56 --tokens 1B
rows=$(awk '$1 ~ /^[0-9]+$/ && $2 ~ /^a100-mig-mixed/ { n++ } END { print n + 0 }' "$T/out")
if [ $rc -eq 0 ] && [ "$rows" = 4 ] && grep -q '^ *[0-9]* a100-mig-mixed+4g.40gb+3g.40gb ' "$T/out" &&
	grep -q 'a100-mig-mixed+4g.40gb+3g.40gb x 2: .*dp_batches=8,6' "$T/out"; then
	ok "compare of layouts of one GPU: 4 rows, the 4g + 3g slices balanced 8:6"
else
	nok "compare of MIG layouts" "exit $rc, rows '$rows'" "$(cat "$T/out" "$T/err")"
fi

# ------------------------------------------------------------------ bad input
sed 's/"per_gpu": 7/"per_gpu": 8/' "$MX" >"$T/gover.json"
bad "a group layout that over-subscribes a GPU" "groups[0].mig.per_gpu
over-subscribes" estimate --model "$M" --cluster "$T/gover.json" --plan tp=1
printf '{ "nodes": 1, "gpus_per_node": 8, "gpu": "a100-sxm-40g", "intra_node": { "bandwidth_gb_per_s": 300 },
  "inter_node": { "nics_per_node": 8, "nic_gbit_per_s": 200 }, "mig": { "profile": "2g.10gb", "per_gpu": 4 } }\n' >"$T/over.json"
bad "a layout that over-subscribes a GPU" "mig.per_gpu
over-subscribes" estimate --model "$M" --cluster "$T/over.json" --plan tp=1
bad "a profile of another GPU" "mig.profile
2g.10gb" estimate --model "$M" --cluster "dgx-h100:mig=2g.10gb" --plan tp=1
bad "a suffix that is no layout" "key 'mig'
PROFILExN" compare --model "$M" --clusters "$EX:mig=1g.5gbx0"

sed 's/"1g.10gb"/"2g.20gb"/' "$LX" >"$T/lover.json"
bad "a layout that over-subscribes a GPU" "key 'mig.layout'
4g.40gb+2g.20gb+2g.20gb" estimate --model "$M" --cluster "$T/lover.json" --plan tp=1
sed 's/"mig": {.*/"mig": { "profile": "1g.10gb", "layout": ["1g.10gb"] }/' "$LX" >"$T/lboth.json"
bad "a profile and a layout" "key 'mig.layout'" estimate --model "$M" --cluster "$T/lboth.json" --plan tp=1
sed 's/"mig": { "profile": "1g.10gb", "per_gpu": 7 }/"mig": { "layout": ["4g.40gb", "4g.40gb"] }/' "$MX" >"$T/glay.json"
bad "a group layout the guide cannot place" "groups[0].mig.layout
4g.40gb+4g.40gb" estimate --model "$M" --cluster "$T/glay.json" --plan tp=1
sed 's/"mig": { "profile": "1g.10gb", "per_gpu": 7 }/"mig": { "layout": ["4g.40gb", "3g.40gb"] }/' "$MX" >"$T/gmix.json"
bad "a layout of several profiles inside a node group" "groups[0].mig.layout
one MIG profile" estimate --model "$M" --cluster "$T/gmix.json" --plan tp=1
bad "an inline layout with 3g + 3g + 1g" "key 'mig'
no placement" estimate --model "$M" --cluster "dgx-a100-40g:mig=3g.20gbx2+1g.5gb" --plan tp=1

finish_tests
