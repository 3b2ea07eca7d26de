#!/bin/sh
# shellcheck disable=SC2086 # fixed argument lists are split on purpose
# Golden CLI test: clusters of node groups with different GPU types (issue 19). The shipped example
# reads and estimates; bad node groups get one line naming the key and exit 2; a uniform cluster
# written as one group gives the numbers the uniform cluster gives.
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
group "$T/domain.json" '"h100-sxm-80g"' 2 6
bad "domain sizes that do not divide" "groups[1].gpus_per_node" $EST --cluster "$T/domain.json"
group "$T/key.json" '"h100-sxm-80g"' 2 8 ', "framework": {}'
bad "a cluster-wide key inside a group" "groups[1]" $EST --cluster "$T/key.json"
group "$T/nofab.json" '"h100-sxm-80g"' 2 8
sed 's/"between_groups": { "bandwidth_gb_per_s": 200 }/"calibration": {}/' "$T/nofab.json" >"$T/nofab2.json"
bad "two groups without the fabric between them" "between_groups.bandwidth_gb_per_s" $EST --cluster "$T/nofab2.json"
bad "--gpus on a cluster of groups" "gpus" $EST --cluster "$MIX" --gpus 16

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

finish_tests
