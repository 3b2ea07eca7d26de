#!/bin/sh
# tests/cli_sim.sh: `strata sim`: the estimate keys as simulated, beside the analytical ones; one
# row per pipeline stage; a Chrome trace that is the same bytes for the same input; out of memory
# reported with the rank (exit 1, no trace left behind); bad input exit 2.
SRCDIR=${SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
. "$SRCDIR/tests/lib.sh"
start_tests cli-sim

P="--model gpt3-175b --cluster dgx-a100-80g --gpus 64"
PLAN="tp=8,pp=4,dp=2,vp=3,gbs=32,sp=1,recompute=selective,zero=1"

run sim $P --plan "$PLAN"
if [ $rc -eq 0 ] && [ ! -s "$T/err" ] && grep -q '^iteration time (s) ' "$T/out" &&
	[ "$(grep -Ec '^ +[0-3] +[0-3] ' "$T/out")" -eq 4 ]; then
	ok "sim prints simulated and analytical times and one row per pipeline stage (4)"
else
	nok "sim text" "exit $rc, expected 0, an 'iteration time' line and 4 rank rows"
fi
# simulated and analytical agree within 10% (the same operator costs)
awk '/^iteration time \(s\)/ { d = $4 / $5 - 1; if (d < 0) d = -d; exit !(d < 0.10) }' "$T/out" &&
	ok "simulated and analytical iteration times agree within 10%" ||
	nok "sim vs estimate" "$(grep '^iteration time' "$T/out")"

run sim $P --plan "$PLAN" --json
missing=""
for k in iteration_time_s tokens_per_s model_tflops_per_gpu mfu memory_peak_gib fits breakdown_s ranks events analytical; do
	grep -q "\"$k\"" "$T/out" || missing="$missing $k"
done
if [ $rc -eq 0 ] && [ -z "$missing" ] && [ "$(head -c 1 "$T/out")" = "{" ]; then
	ok "sim --json has the estimate keys plus ranks, events and analytical"
else
	nok "sim --json" "exit $rc; missing:${missing:- none}"
fi

# the copy stream's busy time is in the simulated breakdown: always, 0 without offload (the plan
# above), and more with offload=params, which streams every layer's weights in
off0=$(sed -n '/"breakdown_s"/,/}/s/.*"offload": *\([0-9.e+-]*\).*/\1/p' "$T/out" | head -n 1)
run sim $P --plan "tp=8,pp=4,dp=2,mbs=1,gbs=8,zero=3,offload=params" --json
off=$(sed -n '/"breakdown_s"/,/}/s/.*"offload": *\([0-9.e+-]*\).*/\1/p' "$T/out" | head -n 1) # the simulated one, not the analytical
if [ "$off0" = "0.0" ] && [ -n "$off" ] && awk -v o="$off" 'BEGIN { exit !(o > 0) }'; then
	ok "sim --json breakdown_s.offload: the copy stream's busy time (0 without offload, $off s with offload=params)"
else
	nok "sim --json breakdown_s.offload" "without offload '$off0' (want 0.0), with offload=params '$off' (want > 0)"
fi
# ... and per rank: every rank's copy stream and ZeRO-3 gather stream, in the JSON and the table
copies=$(grep -c '"copy_s": [1-9]' "$T/out")
run sim $P --plan "tp=8,pp=4,dp=2,mbs=1,gbs=8,zero=3,offload=params"
if [ "$copies" -eq 4 ] && grep -q '^rank .* dp_s *gather_s *copy_s *idle_s' "$T/out"; then
	ok "sim: per-rank copy_s and gather_s (JSON and table) with offload=params"
else
	nok "sim: per-rank copy_s" "$copies ranks with copy_s > 0 (want 4); table header: $(grep '^rank' "$T/out")"
fi

run sim $P --plan "$PLAN" --trace "$T/a.json"
run sim $P --plan "$PLAN" --trace "$T/b.json"
if [ $rc -eq 0 ] && [ -s "$T/a.json" ] && cmp -s "$T/a.json" "$T/b.json" && head -c 16 "$T/a.json" | grep -q '{"traceEvents"' &&
	grep -q '"ph":"X"' "$T/a.json" && grep -q '"ph":"s"' "$T/a.json" && grep -q '"ph":"C"' "$T/a.json"; then
	ok "--trace writes a Chrome trace (spans, flows, memory counters), the same bytes twice"
else
	nok "sim --trace" "exit $rc; expected identical Chrome traces with X, flow and C events"
fi

# 95 GiB of model state per GPU before any activation: out of memory, named, nothing written
run sim $P --plan "tp=8,pp=4,dp=2,vp=3,gbs=32,sp=1,recompute=selective,zero=0" --trace "$T/oom.json"
if [ $rc -eq 1 ] && [ "$(nlines "$T/err")" -eq 1 ] && grep -q 'out of memory: rank 0 (stage 0)' "$T/err" &&
	! ls "$T" | grep -q '^oom'; then # neither the trace nor a temporary file of it
	ok "out of memory: exit 1, one line naming the rank and stage, no trace file"
else
	nok "sim out of memory" "exit $rc (want 1); files: $(ls "$T" | tr '\n' ' ')"
fi

# plan --validate K: the top K simulated and re-ranked by the simulated time
run plan --model llama2-13b --cluster dgx-a100-80g --gpus 32 --gbs 128 --top 5 --validate 3 --json
sims=$(grep '"simulated_iteration_time_s"' "$T/out" | sed 's/.*: *//; s/,$//')
nsim=$(printf '%s\n' "$sims" | grep -c '[0-9]')
sorted=$(printf '%s\n' "$sims" | sort -g | tr '\n' ' ')
if [ $rc -eq 0 ] && [ "$nsim" -eq 3 ] && [ "$(printf '%s\n' "$sims" | tr '\n' ' ')" = "$sorted" ]; then
	ok "plan --validate 3: three plans simulated, ranked by simulated time ($sorted)"
else
	nok "plan --validate" "exit $rc; $nsim simulated times: $sims"
fi
run plan --model llama2-13b --cluster dgx-a100-80g --gpus 32 --gbs 128 --top 5 --json
if [ $rc -eq 0 ] && ! grep -q simulated_iteration_time_s "$T/out"; then
	ok "plan without --validate simulates nothing"
else
	nok "plan without --validate" "exit $rc"
fi

# a rack-scale NVLink domain: tp 8 groups span two 4-GPU trays of GB200 NVL72 and the simulator
# shares the same domain links the estimate prices (issue 16: within 10%)
NVL="--model llama3-8b --cluster gb200-nvl72 --gpus 72 --plan tp=8,pp=3,gbs=72,sp=1"
run estimate $NVL --json
est=$(sed -n 's/^ *"iteration_time_s": *\([0-9.e+-]*\).*/\1/p' "$T/out" | head -1)
run sim $NVL --every-rank --json
simt=$(sed -n 's/^ *"iteration_time_s": *\([0-9.e+-]*\).*/\1/p' "$T/out" | head -1)
if [ $rc -eq 0 ] && awk -v a="$est" -v b="$simt" 'BEGIN { d = (b - a) / a; exit !(a > 0 && d < 0.1 && d > -0.1) }'; then
	ok "GB200 NVL72: sim $simt s within 10% of estimate $est s"
else
	nok "GB200 NVL72 sim vs estimate" "exit $rc; sim $simt, estimate $est"
fi
# part of a node: 4 GPUs of an 8-GPU DGX H100, and of an MI300X xGMI mesh
for cl in dgx-h100 mi300x; do
	run sim --model llama2-7b --cluster $cl --gpus 4 --plan tp=2,pp=2,gbs=16 --every-rank --json
	if [ $rc -eq 0 ]; then ok "--gpus 4 on 8-GPU $cl: simulated"; else nok "--gpus 4 on $cl" "exit $rc: $(cat "$T/err")"; fi
done

run sim $P --plan "$PLAN" --bogus
if [ $rc -eq 2 ] && [ "$(nlines "$T/err")" -eq 1 ] && [ ! -s "$T/out" ]; then
	ok "an unknown option: exit 2, one line"
else
	nok "sim --bogus" "exit $rc, want 2 and one line"
fi
run sim $P
if [ $rc -eq 2 ] && [ "$(nlines "$T/err")" -eq 1 ]; then ok "no --plan: exit 2, one line"; else nok "sim without --plan" "exit $rc"; fi

finish_tests
