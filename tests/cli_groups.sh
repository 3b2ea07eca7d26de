#!/bin/sh
# shellcheck disable=SC2086 # fixed argument lists are split on purpose
# Golden CLI test: clusters of node groups with different GPU types (issue 19). The shipped example
# reads and estimates; bad node groups get one line naming the key and exit 2; a uniform cluster
# written as one group gives the numbers the uniform cluster gives; the operator-level planner puts
# more layers on the faster group's stages and estimates its plan as it planned it.
#
# Environment (set by automake): STRATA, SRCDIR. POSIX sh only. Exit 0 pass, 1 fail, 99 hard error.

SRCDIR=${SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
# shellcheck source=lib.sh source-path=SCRIPTDIR
. "$SRCDIR/tests/lib.sh"
MIX=$SRCDIR/examples/mixed-a100-h100.json

start_tests cli-groups
echo "# strata: $STRATA"

# group FILE GPU2 NODES2 GPN2 [EXTRA]: a two-group cluster, the second group's GPU, nodes, GPUs per node
group() {
	cat >"$1" <<JSON
{ "name": "g", "groups": [
  { "name": "a", "gpu": "a100-sxm-80g", "nodes": 2, "gpus_per_node": 8,
    "intra_node": { "bandwidth_gb_per_s": 300 }, "inter_node": { "nics_per_node": 8, "nic_gbit_per_s": 200 } },
  { "name": "b", "gpu": $2, "nodes": $3, "gpus_per_node": $4,
    "intra_node": { "bandwidth_gb_per_s": 450 }, "inter_node": { "nics_per_node": 8, "nic_gbit_per_s": 400 } ${5:-} } ],
  "between_groups": { "bandwidth_gb_per_s": 200 } }
JSON
}
EST="estimate --model llama2-7b --plan tp=8"

echo "# --- bad node groups: one line naming the key, exit 2"
group "$T/unknown.json" '"h999"' 2 8
bad "unknown GPU in a group" "groups[1].gpu" $EST --cluster "$T/unknown.json"
group "$T/zero.json" '"h100-sxm-80g"' 0 8
bad "a group of 0 nodes" "groups[1].nodes" $EST --cluster "$T/zero.json"
group "$T/neg.json" '"h100-sxm-80g"' 2 -8
bad "negative GPUs per node" "groups[1].gpus_per_node" $EST --cluster "$T/neg.json"
bad "DualPipe on node groups (a rank's two stages on both ends)" "schedule" estimate --model llama2-7b \
	--cluster "$MIX" --plan tp=1,pp=4,mbs=1,gbs=64,schedule=dualpipe
group "$T/domain.json" '"h100-sxm-80g"' 2 6
bad "domain sizes that do not divide" "groups[1].gpus_per_node" $EST --cluster "$T/domain.json"
group "$T/key.json" '"h100-sxm-80g"' 2 8 ', "framework": {}'
bad "a cluster-wide key inside a group" "groups[1]" $EST --cluster "$T/key.json"
group "$T/nofab.json" '"h100-sxm-80g"' 2 8
sed 's/"between_groups": { "bandwidth_gb_per_s": 200 }/"calibration": {}/' "$T/nofab.json" >"$T/nofab2.json"
bad "two groups without the fabric between them" "between_groups.bandwidth_gb_per_s" $EST --cluster "$T/nofab2.json"
bad "--gpus on a cluster of groups" "gpus" $EST --cluster "$MIX" --gpus 16

echo "# --- uneven plans: bad layer and batch splits"
EM="estimate --model llama2-13b --cluster $MIX"
bad "a stage with more layers than its GPU holds" "stage_layers
stage 0" $EM --plan tp=8,pp=2,dp=2,mbs=4,gbs=64,stage_layers=39,1
bad "stage layers that do not sum to the model's" "stage_layers" $EM --plan tp=8,pp=2,dp=2,stage_layers=10,10
bad "dp_batches that do not sum to the batch" "dp_batches" $EM --plan tp=8,pp=1,dp=4,gbs=64,dp_batches=1,2,3,4
bad "dp_batches with the wrong count" "dp_batches" $EM --plan tp=8,pp=1,dp=4,dp_batches=1,2
run $EM --plan tp=8,pp=2,dp=2,mbs=4,gbs=64 --json
if [ "$rc" -eq 0 ]; then ok "the even split of the same plan fits"; else nok "the even split of the same plan fits" "exit $rc"; fi

echo "# --- the estimate and the simulator agree within 10% on mixed plans"
for plan in tp=8,pp=4,dp=1 tp=8,pp=4,dp=1,stage_layers=6,6,10,10 tp=4,pp=2,dp=4 tp=8,pp=2,dp=2,stage_layers=13,19 \
	tp=8,pp=1,dp=4,dp_batches=12,12,20,20 tp=8,pp=4,dp=1,vp=2,stage_layers=3,3,5,5,3,3,5,5; do
	run estimate --model llama2-7b --cluster "$MIX" --plan "$plan,gbs=64" --json
	e=$(awk '/"iteration_time_s"/ { gsub(/[ ,]/, ""); split($0, a, ":"); print a[2]; exit }' "$T/out")
	run sim --model llama2-7b --cluster "$MIX" --plan "$plan,gbs=64" --json
	s=$(awk '/"iteration_time_s"/ { gsub(/[ ,]/, ""); split($0, a, ":"); print a[2]; exit }' "$T/out")
	if [ -n "$e" ] && [ -n "$s" ] && awk -v e="$e" -v s="$s" 'BEGIN { d = (s - e) / e; exit !(d < 0.1 && d > -0.1) }'
	then ok "$plan: sim $s s, estimate $e s"; else nok "$plan: sim within 10% of the estimate" "sim '$s', estimate '$e'"; fi
done

echo "# --- sim --every-rank: each rank on its own GPU, within 10% of the by-stage simulation and the estimate"
# busy RANK: the compute stream's busy time of rank RANK in $T/out (sim --json's "ranks")
busy() { awk -v r="$1" '/"rank":/ { gsub(/[ ,]/, ""); split($0, a, ":"); k = a[2] }
	/"busy_s":/ && k == r { gsub(/[ ,]/, ""); split($0, a, ":"); print a[2]; exit }' "$T/out"; }
for plan in tp=8,pp=2,dp=2 tp=8,pp=1,dp=4 tp=8,pp=1,dp=4,dp_batches=12,12,20,20 tp=4,pp=2,dp=4,dp_batches=12,20,12,20; do
	run estimate --model llama2-7b --cluster "$MIX" --plan "$plan,gbs=64" --json
	e=$(awk '/"iteration_time_s"/ { gsub(/[ ,]/, ""); split($0, a, ":"); print a[2]; exit }' "$T/out")
	run sim --model llama2-7b --cluster "$MIX" --plan "$plan,gbs=64" --json
	s=$(awk '/"iteration_time_s"/ { gsub(/[ ,]/, ""); split($0, a, ":"); print a[2]; exit }' "$T/out")
	run sim --model llama2-7b --cluster "$MIX" --plan "$plan,gbs=64" --every-rank --json
	f=$(awk '/"iteration_time_s"/ { gsub(/[ ,]/, ""); split($0, a, ":"); print a[2]; exit }' "$T/out")
	if [ "$rc" -eq 0 ] && [ -n "$e" ] && [ -n "$s" ] && [ -n "$f" ] && awk -v e="$e" -v s="$s" -v f="$f" \
		'BEGIN { d = (f - e) / e; x = (f - s) / s; exit !(d < 0.1 && d > -0.1 && x < 0.1 && x > -0.1) }'
	then ok "$plan --every-rank: $f s (by stage $s s, estimate $e s)"
	else nok "$plan --every-rank within 10% of by stage and the estimate" "every rank '$f', by stage '$s', estimate '$e'"; fi
done
# dp across the groups, even batches: rank 0 (A100) computes longer than rank 31 (H100)
run sim --model llama2-7b --cluster "$MIX" --plan tp=8,pp=1,dp=4,gbs=64 --every-rank --json
a=$(busy 0)
h=$(busy 31)
if [ -n "$a" ] && [ -n "$h" ] && awk -v a="$a" -v h="$h" 'BEGIN { exit !(h > 0 && h < a) }'
then ok "--every-rank: the H100 rank computes in $h s, the A100 rank in $a s"
else nok "--every-rank: the H100 rank computes faster" "A100 '$a', H100 '$h'"; fi
bad "--every-rank with uneven dp_batches and zero=3" "dp_batches" sim --model llama2-7b --cluster "$MIX" \
	--plan tp=8,pp=2,dp=2,gbs=64,zero=3,dp_batches=24,40 --every-rank
# ZeRO-3's gathers and the experts' all-to-all meet across replicas every micro-batch: refused everywhere
bad "uneven dp_batches with zero=3 (estimate)" "dp_batches" $EM --plan tp=8,pp=2,dp=2,gbs=64,zero=3,dp_batches=24,40
bad "uneven dp_batches with ep > 1" "dp_batches" estimate --model mixtral-8x7b --cluster "$MIX" \
	--plan tp=2,pp=1,dp=16,ep=8,gbs=64,dp_batches=2,2,2,2,2,2,2,2,6,6,6,6,6,6,6,6

echo "# --- plan balances the mixed cluster and beats the even split"
run plan --model llama2-7b --cluster "$MIX" --gbs 64 --top 1 --json
if [ "$rc" -eq 0 ] && grep -q 'dp_batches=\|stage_layers=' "$T/out"; then ok "the best plan is balanced: $(grep -m1 '"spec"' "$T/out")"
else nok "the best plan is balanced" "exit $rc"; fi
run plan --model llama2-7b --cluster "$MIX" --gbs 64 --top 1 --emit megatron
if [ "$rc" -eq 0 ] && grep -q -- '--tensor-model-parallel-size' "$T/out"; then ok "--emit keeps to plans Megatron-LM runs"
else nok "--emit keeps to plans Megatron-LM runs" "exit $rc" "$(cat "$T/err")"; fi

echo "# --- compare: the mixed cluster beside uniform ones of the same GPU count"
run compare --model llama2-7b --clusters "$MIX,dgx-a100-80g,dgx-h100" --gpus 32 --gbs 64 --tokens 1B \
	--price-per-gpu-hour 2.6,1.8,3.4 --energy --json
# one line per row: cluster, iteration time, power
awk '/"cluster":/ { gsub(/[",]/, ""); c = $2 } /"iteration_time_s":/ { gsub(/,/, ""); t[c] = $2 }
	/"power_kw":/ { gsub(/,/, ""); p[c] = $2 } END { for (k in t) print k, t[k], p[k] }' "$T/out" | sort >"$T/rows"
tm=$(awk '$1 == "mixed-a100-h100" { print $2 }' "$T/rows")
ta=$(awk '$1 == "dgx-a100-80g" { print $2 }' "$T/rows")
th=$(awk '$1 == "dgx-h100" { print $2 }' "$T/rows")
pm=$(awk '$1 == "mixed-a100-h100" { print $3 }' "$T/rows")
if [ "$rc" -eq 0 ] && [ -n "$tm" ] && awk -v m="$tm" -v a="$ta" -v h="$th" 'BEGIN { exit !(m < a && m > h) }'
then ok "mixed between all-A100 and all-H100: $tm s (A100 $ta s, H100 $th s)"
else nok "mixed between all-A100 and all-H100" "exit $rc" "$(cat "$T/rows")"; fi
# power at the wall: (16 x 400 W + 16 x 700 W + 4 nodes x 8 x 575 W) x PUE 1.2 = 43.2 kW
if awk -v p="$pm" 'BEGIN { exit !(p > 43.19 && p < 43.21) }'; then ok "mixed power: each group at its own TDP ($pm kW)"
else nok "mixed power: each group at its own TDP" "power_kw '$pm', expected 43.2"; fi

echo "# --- the example and one-group clusters"
run estimate --model llama2-7b --cluster "$MIX" --plan tp=8,pp=2,dp=2 --json
if [ "$rc" -eq 0 ] && grep -q '"cluster": "mixed-a100-h100"' "$T/out"; then ok "the mixed example estimates"
else nok "the mixed example estimates" "exit $rc" "$(cat "$T/err")"; fi
cat >"$T/one.json" <<JSON
{ "name": "dgx-a100-80g", "groups": [
  { "name": "a", "gpu": "a100-sxm-80g", "nodes": 4, "gpus_per_node": 8,
    "intra_node": { "bandwidth_gb_per_s": 300, "latency_us": 2 },
    "inter_node": { "nics_per_node": 8, "nic_gbit_per_s": 200, "latency_us": 5 },
    "host": { "memory_gib": 2048, "pcie_gb_per_s": 25 } } ] }
JSON
run estimate --model llama2-7b --cluster "$T/one.json" --plan tp=8,pp=2,dp=2 --json
grep '"iteration_time_s"' "$T/out" >"$T/one.t"
run estimate --model llama2-7b --cluster dgx-a100-80g --gpus 32 --plan tp=8,pp=2,dp=2 --json
grep '"iteration_time_s"' "$T/out" >"$T/uni.t"
if [ -s "$T/one.t" ] && cmp -s "$T/one.t" "$T/uni.t"; then ok "one group = the uniform cluster: $(cat "$T/one.t")"
else nok "one group = the uniform cluster" "$(cat "$T/one.t")" "$(cat "$T/uni.t")"; fi

echo "# --- the operator-level planner on the example: each stage on its own GPUs"
run plan --search ilp --model llama2-7b --cluster "$MIX" --gbs 128 --out "$T/ilp.json"
if [ "$rc" -eq 0 ] && grep -q "on 32 GPUs: 2 x 8 a100-sxm-80g (a100) + 2 x 8 h100-sxm-80g (h100)" "$T/out"
then ok "plan --search ilp names both groups"
else nok "plan --search ilp names both groups" "exit $rc" "$(head -1 "$T/out") $(cat "$T/err")"; fi
# layers per GPU of each stage: the first (the A100s, 16 GPUs first in the file) holds fewer per GPU
per=$(awk '$2 ~ /^[0-9]+-[0-9]+$/ && $1 ~ /^[0-9]+$/ { split($2, l, "-"); n = split($3, m, "x");
	g = n == 2 ? m[1] * m[2] : m[1]; printf "%s%.3f", sep, (l[2] - l[1] + 1) / g; sep = " " }' "$T/out")
if [ -n "$per" ] && echo "$per" | awk '{ for (i = 2; i <= NF; i++) if ($i <= $1) exit 1; exit NF < 2 }'
then ok "more layers per GPU on the H100 stages: $per"
else nok "more layers per GPU on the H100 stages" "$per" "$(cat "$T/out")"; fi
run estimate --model llama2-7b --cluster "$MIX" --plan "$T/ilp.json"
said=$(awk '/^iteration time/ { t = $3; s = $(NF - 1) } END { if (t != "" && t == s) print t }' "$T/out")
if [ "$rc" -eq 0 ] && [ -n "$said" ]; then ok "the estimate of the ILP plan is the planner's: $said s"
else nok "the estimate of the ILP plan is the planner's" "exit $rc" "$(grep iteration "$T/out") $(cat "$T/err")"; fi

finish_tests
