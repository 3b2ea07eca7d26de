#!/bin/sh
# shellcheck disable=SC2086 # fixed argument lists are split on purpose
# Golden CLI test: the scale-out fabric (issue 16). Rails, NICs per GPU and tiers read from a cluster
# JSON; a data-parallel group inside one leaf costs what it costs on a full-bisection fabric, one
# across pods more, in the estimate and the simulator alike; in-network reduction is opt-in and
# refused where the switches lack it; the planner puts an MoE model's ep across the host nodes of an
# NVL72 domain, and on 256 GPUs of NVL72 racks keeps it inside a domain unless the job takes 64 GPUs of
# each (CLUSTER:domain_gpus=64); bad input gets one line naming the key, exit 2.
#
# Environment (set by automake): STRATA, SRCDIR. POSIX sh only. Exit 0 pass, 1 fail, 99 hard error.

SRCDIR=${SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
# shellcheck source=lib.sh source-path=SCRIPTDIR
. "$SRCDIR/tests/lib.sh"

start_tests cli-fabric
echo "# strata: $STRATA"

# fabric FILE INTER: 16 DGX H100-like nodes with inter_node keys INTER (after the NIC rate)
fabric() {
	cat >"$1" <<JSON
{ "name": "f", "nodes": 16, "gpus_per_node": 8, "gpu": "h100-sxm-80g",
  "intra_node": { "bandwidth_gb_per_s": 450 },
  "inter_node": { "nic_gbit_per_s": 400, $2 },
  "host": { "memory_gib": 2048, "pcie_gb_per_s": 50 } }
JSON
}
TIERS='"nics_per_gpu": 1, "leaf": { "nodes": 4, "oversubscription": 2 }, "spine": { "nodes": 8, "oversubscription": 4 }'
EST="estimate --model gpt-7.5b"

echo "# --- bad fabrics: one line naming the key, exit 2"
fabric "$T/b1.json" '"nics_per_node": 8, "leaf": { "nodes": 3 }'
bad "a leaf that does not divide the nodes" "inter_node.leaf.nodes" $EST --plan tp=8 --cluster "$T/b1.json"
fabric "$T/b2.json" '"nics_per_node": 8, "leaf": { "nodes": 4, "oversubscription": 0.5 }'
bad "a leaf oversubscription below 1" "inter_node.leaf.oversubscription" $EST --plan tp=8 --cluster "$T/b2.json"
fabric "$T/b3.json" '"nics_per_node": 8, "leaf": { "nodes": 4 }, "spine": { "nodes": 2 }'
bad "a pod smaller than a leaf" "inter_node.spine.nodes" $EST --plan tp=8 --cluster "$T/b3.json"
fabric "$T/b4.json" '"nics_per_node": 8, "nics_per_gpu": 1'
bad "NICs per node and per GPU" "inter_node.nics_per_gpu" $EST --plan tp=8 --cluster "$T/b4.json"

echo "# --- a dp group's price follows the tier it spans; the simulator agrees"
fabric "$T/tiers.json" "$TIERS"
fabric "$T/flat1.json" '"nics_per_node": 8'
fabric "$T/flat4.json" '"nics_per_node": 8, "oversubscription": 4'
# key NAME: the number after "NAME": in the last run's JSON (first occurrence)
key() { awk -v k="\"$1\"" '$1 == k":" { gsub(/[ ,]/, ""); split($0, a, ":"); print a[2]; exit }' "$T/out"; }
dp_s() { # dp_s CMD CLUSTER PLAN [ARGS]: the dp_comm seconds of the breakdown (estimate) or the iteration time (sim)
	_c=$1 _cl=$2 _p=$3
	shift 3
	run "$_c" --model gpt-7.5b --cluster "$_cl" --plan "$_p" --json "$@"
	[ "$rc" -eq 0 ] || { echo "x$rc"; return; }
	if [ "$_c" = estimate ]; then key dp_comm; else key iteration_time_s; fi
}
a=$(dp_s estimate "$T/tiers.json" tp=8,dp=4,gbs=64)
b=$(dp_s estimate "$T/flat1.json" tp=8,dp=4,gbs=64)
if [ -n "$a" ] && [ "$a" = "$b" ]; then ok "dp inside a leaf = full bisection: $a s"; else nok "dp inside a leaf" "$a vs $b"; fi
a=$(dp_s estimate "$T/tiers.json" tp=8,dp=16,gbs=64)
b=$(dp_s estimate "$T/flat4.json" tp=8,dp=16,gbs=64)
if [ -n "$a" ] && [ "$a" = "$b" ]; then ok "dp across pods = the spine's 4:1 everywhere: $a s"; else nok "dp across pods" "$a vs $b"; fi
a=$(dp_s sim "$T/tiers.json" tp=8,dp=16,gbs=64)
b=$(dp_s sim "$T/flat4.json" tp=8,dp=16,gbs=64)
if [ -n "$a" ] && [ "$a" = "$b" ]; then ok "the simulator too: $a s"; else nok "sim across pods" "$a vs $b"; fi

echo "# --- in-network reduction: opt-in, refused where the switches lack it; the simulator agrees"
bad "NVLink SHARP on A100's NVSwitch" "sharp" $EST --plan tp=8 --cluster dgx-a100-80g:sharp=1
bad "a sharp value that is not 0 or 1" "sharp" $EST --plan tp=8 --cluster dgx-h100:sharp=yes
cat >"$T/x.json" <<JSON
{ "nodes": 1, "gpus_per_node": 8, "gpu": "mi300x", "intra_node": { "bandwidth_gb_per_s": 448 },
  "scale_up": { "gpus": 8, "fabric": "xgmi", "sharp": true }, "inter_node": { "nics_per_node": 0, "nic_gbit_per_s": 400 } }
JSON
bad "NVLink SHARP on an xGMI mesh" "scale_up.sharp" $EST --plan tp=8 --cluster "$T/x.json"
run estimate --model gpt-7.5b --cluster dgx-h100:sharp=1 --gpus 16 --plan tp=8,dp=2,gbs=64 --json
e=$(key iteration_time_s)
tp1=$(key tp_comm)
b=$(dp_s sim dgx-h100:sharp=1 tp=8,dp=2,gbs=64 --gpus 16)
if [ -n "$e" ] && [ "$e" = "$b" ]; then ok "NVLS: estimate = sim, $e s"; else nok "NVLS estimate vs sim" "$e vs $b"; fi
run estimate --model gpt-7.5b --cluster dgx-h100 --gpus 16 --plan tp=8,dp=2,gbs=64 --json
tp0=$(key tp_comm)
if awk -v a="$tp1" -v b="$tp0" 'BEGIN { exit !(a > 0 && a < b) }'; then ok "NVLS shortens tp all-reduces: $tp0 -> $tp1 s"
else nok "NVLS tp all-reduces" "$tp0 -> $tp1"; fi

# a cluster file of H100s on NVSwitch can turn it on as the preset can, and prices it the same
cat >"$T/h100.json" <<JSON
{ "nodes": 2, "gpus_per_node": 8, "gpu": "h100-sxm-80g", "intra_node": { "bandwidth_gb_per_s": 450 },
  "inter_node": { "nics_per_node": 8, "nic_gbit_per_s": 400 } }
JSON
run estimate --model gpt-7.5b --cluster "$T/h100.json:sharp=1" --gpus 16 --plan tp=8,dp=2,gbs=64 --json
tpf=$(key tp_comm)
if [ "$rc" -eq 0 ] && [ "$tpf" = "$tp1" ]; then ok "NVLS from a cluster file of H100s: tp all-reduces $tpf s, as the preset's"
else nok "NVLS from a cluster file" "exit $rc; $tpf vs $tp1" "$(cat "$T/err")"; fi

echo "# --- issue 16's check: an MoE model of 64 experts gets a wider ep on GB200 NVL72 than on DGX B200"
cat >"$T/moe64.json" <<JSON
{ "name": "moe64", "layers": 16, "hidden": 4096, "heads": 32, "kv_heads": 8, "ffn": 14336, "vocab": 32000,
  "seq_len": 4096, "activation": "swiglu", "norm": "rmsnorm", "position": "rope", "tied_embeddings": false,
  "experts": 64, "experts_topk": 8 }
JSON
run plan --model "$T/moe64.json" --cluster gb200-nvl72 --gpus 64 --gbs 256 --top 1 --json
ep_nvl=$(key ep)
run plan --model "$T/moe64.json" --cluster dgx-b200 --gpus 64 --gbs 256 --top 1 --json
ep_b200=$(key ep)
if [ -n "$ep_nvl" ] && [ -n "$ep_b200" ] && [ "$ep_nvl" -gt "$ep_b200" ] && [ "$ep_nvl" -gt 8 ]; then
	ok "ep on NVL72 ($ep_nvl, across host nodes) > ep on DGX B200 ($ep_b200)"
else nok "wider ep on NVL72" "NVL72 ep $ep_nvl, B200 ep $ep_b200"; fi

echo "# --- part of a scale-up domain: 256 GPUs of NVL72 racks, filled in order or 64 of each domain"
bad "a part above the domain" "domain_gpus" $EST --plan tp=8 --gpus 256 --cluster gb200-nvl72:domain_gpus=76
bad "a part that is not whole host nodes" "domain_gpus" $EST --plan tp=8 --gpus 256 --cluster gb200-nvl72:domain_gpus=66
bad "GPUs that are not whole parts" "gpus" $EST --plan tp=8 --gpus 200 --cluster gb200-nvl72:domain_gpus=64
bad "GPUs beyond a domain that are not whole host nodes" "gpus" $EST --plan tp=2 --gpus 258 --cluster gb200-nvl72
# filled in order (72, 72, 72, 40) an ep 64 group straddles a domain and crosses the NICs, so the
# planner keeps ep inside a domain; with 64 GPUs of each domain ep 64 is one domain
run plan --model "$T/moe64.json" --cluster gb200-nvl72 --gpus 256 --gbs 1024 --top 1 --json
ep_fill=$(key ep) t_fill=$(key iteration_time_s)
run plan --model "$T/moe64.json" --cluster gb200-nvl72:domain_gpus=64 --gpus 256 --gbs 1024 --top 1 --json
ep_part=$(key ep) t_part=$(key iteration_time_s)
if [ "${ep_part:-0}" -eq 64 ] && [ "${ep_fill:-64}" -lt 64 ] &&
	awk -v a="$t_part" -v b="$t_fill" 'BEGIN { exit !(a > 0 && a < b) }'; then
	ok "256 GPUs: ep $ep_fill filled in order ($t_fill s), ep 64 with 64 a domain ($t_part s)"
else nok "plan on part of NVL72 domains" "ep $ep_fill ($t_fill s) vs ep $ep_part ($t_part s)"; fi

finish_tests
