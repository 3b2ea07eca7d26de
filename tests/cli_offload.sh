#!/bin/sh
# Golden CLI test: granular offload (plan keys offload_optimizer, offload_params, offload_activations;
# cost/offload.c).
#   - offload_optimizer=1 is offload=optimizer (same spec, same JSON numbers); 0.5 lies between
#     none and full, in time and in GPU memory, and its spec keeps the key;
#   - a node without the host memory for the states does not fit (exit 1, fits false);
#   - bad fractions and combinations: exit 2, one line naming offload_optimizer.
#   - offload_params and offload_activations: the estimate and the simulator agree within 2% and on
#     the memory peak, the host memory per node is reported and checked; bad fractions and
#     combinations exit 2 with one line naming the key.
#
# Environment (set by automake): STRATA, SRCDIR. POSIX sh only. Exit 0 pass, 1 fail, 99 hard error.

SRCDIR=${SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
# shellcheck source=lib.sh source-path=SCRIPTDIR
. "$SRCDIR/tests/lib.sh"

start_tests cli-offload

BASE="--model gpt-1.7b --cluster dgx-a100-40g"
P=tp=1,pp=1,dp=8,mbs=4,gbs=64,zero=1
# val FILE KEY: the first number after "KEY": in a JSON object
val() { sed -n "s/.*\"$2\": *\\([-0-9.e+]*\\).*/\\1/p" "$1" | head -n 1; }

for f in none full half one; do
	case $f in
	none) plan=$P ;;
	full) plan=$P,offload=optimizer ;;
	one) plan=$P,offload_optimizer=1 ;;
	half) plan=$P,offload_optimizer=0.5 ;;
	esac
	run estimate $BASE --plan $plan --json
	cp "$T/out" "$T/$f.json"
	[ $rc -eq 0 ] || nok "estimate --plan $plan" "exit $rc"
done
if cmp -s "$T/full.json" "$T/one.json"; then
	ok "offload_optimizer=1 gives offload=optimizer's output byte for byte"
else
	nok "offload_optimizer=1 against offload=optimizer" "$(diff "$T/full.json" "$T/one.json" | head -5)"
fi
tn=$(val "$T/none.json" iteration_time_s)
th=$(val "$T/half.json" iteration_time_s)
tf=$(val "$T/full.json" iteration_time_s)
mn=$(val "$T/none.json" memory_peak_gib)
mh=$(val "$T/half.json" memory_peak_gib)
mf=$(val "$T/full.json" memory_peak_gib)
if grep -q 'offload_optimizer=0.5' "$T/half.json" &&
	awk -v a="$tn" -v b="$th" -v c="$tf" -v x="$mn" -v y="$mh" -v z="$mf" 'BEGIN { exit !(a < b && b < c && x > y && y > z) }'; then
	ok "offload_optimizer=0.5 between none and full: $th s ($tn, $tf), $mh GiB ($mn, $mf)"
else
	nok "offload_optimizer=0.5 between none and full" "times $tn $th $tf, memory $mn $mh $mf"
fi

printf '{ "nodes": 1, "gpus_per_node": 8, "gpu": "a100-sxm-40g", "intra_node": { "bandwidth_gb_per_s": 300 },
  "inter_node": { "nics_per_node": 8, "nic_gbit_per_s": 200 }, "host": { "memory_gib": 4 } }\n' >"$T/small.json"
run estimate --model gpt-1.7b --cluster "$T/small.json" --plan $P,offload_optimizer=0.5 --json
if [ $rc -eq 1 ] && grep -q '"fits": *false' "$T/out"; then
	ok "4 GiB of host memory cannot hold half the states: exit 1, fits false"
else
	nok "host memory check" "exit $rc, expected 1 and fits false"
fi

run estimate --model gpt-1.7b --cluster "$T/small.json" --plan $P,offload_optimizer=0.5
if [ $rc -eq 1 ] && grep -q '^host memory/node .*: DOES NOT FIT$' "$T/out"; then
	ok "the text names host memory as what does not fit"
else
	nok "host memory in the text" "exit $rc; no 'host memory/node ... DOES NOT FIT' line"
fi

bad "a fraction above 1" "offload_optimizer" estimate $BASE --plan $P,offload_optimizer=1.5
bad "beside offload=params" "offload_optimizer
offload=params" estimate $BASE --plan tp=1,zero=3,offload=params,offload_optimizer=0.5
bad "without ZeRO" "offload_optimizer
zero" estimate $BASE --plan tp=1,zero=0,offload_optimizer=0.5

G=$P,offload_params=0.3,offload_activations=0.2
run estimate $BASE --plan $G --json
cp "$T/out" "$T/g_est.json"
run sim $BASE --plan $G --json
cp "$T/out" "$T/g_sim.json"
te=$(val "$T/g_est.json" iteration_time_s)
ts=$(val "$T/g_sim.json" iteration_time_s)
me=$(val "$T/g_est.json" memory_peak_gib)
ms=$(val "$T/g_sim.json" memory_peak_gib)
hm=$(val "$T/g_est.json" host_memory_per_node_gib)
if [ -n "$te" ] && [ -n "$hm" ] && grep -q 'offload_params=0.3,offload_activations=0.2' "$T/g_est.json" &&
	awk -v a="$te" -v b="$ts" -v x="$me" -v y="$ms" -v h="$hm" \
		'BEGIN { d = a / b - 1; if (d < 0) d = -d; e = x / y - 1; if (e < 0) e = -e
			exit !(d < 0.02 && e < 1e-6 && h > 0) }'; then
	ok "offload_params=0.3,offload_activations=0.2: estimate $te s, sim $ts s; $me GiB both; host $hm GiB/node"
else
	nok "granular weights and activations" "estimate $te s $me GiB, sim $ts s $ms GiB, host '$hm'"
fi
run estimate --model gpt-1.7b --cluster "$T/small.json" --plan $P,offload_activations=1 --json
if [ $rc -eq 1 ] && grep -q '"fits": *false' "$T/out"; then
	ok "4 GiB of host memory cannot hold 8 GPUs' activations: exit 1, fits false"
else
	nok "host memory check of offload_activations" "exit $rc, expected 1 and fits false"
fi
bad "offload_params above 1" "offload_params" estimate $BASE --plan $P,offload_params=1.5
bad "offload_activations below 0" "offload_activations" estimate $BASE --plan $P,offload_activations=-0.5
bad "offload_params under ZeRO-3" "offload_params
offload=params" estimate $BASE --plan tp=1,zero=3,offload_params=0.5
bad "offload_params beside offload_optimizer" "offload_params
offload_optimizer" estimate $BASE --plan $P,offload_params=0.5,offload_optimizer=0.5
bad "offload_activations under ZeRO-3" "offload_activations
zero" sim $BASE --plan tp=1,zero=3,offload_activations=0.5

finish_tests
