#!/bin/sh
# shellcheck disable=SC2086 # fixed argument lists are split on purpose
# `strata calibrate` on the 14 real Kineto traces of ../shared/ecosystem/kineto (SOURCES.txt there:
# HolisticTraceAnalysis test data and PyTorch Kineto samples; A100, V100, MI250; 1 to 128 ranks).
# Each either calibrates (exit 0, a profile written, the GPU as the trace names it) or is refused
# with exit 2, one line on stderr carrying the reason below, and nothing written:
#   - no GPU kernels (recorded without ProfilerActivity.CUDA);
#   - no kernel measurable (recorded without record_shapes, or only operators strata has no class for);
#   - no deviceProperties, so no GPU named: --gpu must say it.
# The two sampled ranks of one 128-rank job calibrate together (a comma-separated list) once --gpu
# names the GPU (their kernels are cutlass_80: sm80, an A100).
# Environment (set by automake): STRATA, SRCDIR. Exit 0 pass, 1 fail, 77 skip (no ../shared), 99 hard error.

SRCDIR=${SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
# shellcheck source=lib.sh source-path=SCRIPTDIR
. "$SRCDIR/tests/lib.sh"
K=${KINETO:-$SRCDIR/../shared/ecosystem/kineto}
if [ ! -d "$K" ]; then
	echo "SKIP: no real traces at $K"
	exit 77
fi
start_tests cli-calibrate-real

NO_SHAPES="could be measured"
NO_GPU="the trace names no GPU: name it with --gpu"
# file, then "ok GPU" or the reason it is refused
while IFS='|' read -r file want; do
	[ -n "$file" ] || continue
	rm -f "$T/p.json"
	run calibrate --kineto "$K/$file" --out "$T/p.json"
	case $want in
	ok\ *)
		gpu=${want#ok }
		if [ $rc -eq 0 ] && [ -s "$T/p.json" ] && grep -q "\"gpu\": \"$gpu\"" "$T/p.json" && [ ! -s "$T/err" ]; then
			ok "$file: calibrates, GPU $gpu"
		else
			nok "$file" "exit $rc, expected 0 and gpu '$gpu' in the profile" "$(head -c 400 "$T/err")"
		fi
		;;
	*)
		if [ $rc -eq 2 ] && [ ! -e "$T/p.json" ] && [ "$(wc -l <"$T/err")" -eq 1 ] && grep -qF "$want" "$T/err"; then
			ok "$file: refused ($want)"
		else
			nok "$file" "exit $rc, expected 2, one line with '$want' and nothing written" "$(head -c 400 "$T/err")"
		fi
		;;
	esac
done <<EOF2
hta_amd_trace_mi250_minitoy_train_ROCm6_2_kineto.json.gz|ok AMD Radeon Graphics
hta_critical_path_alexnet_benchmark_result_2869224_1695835535_trace.json.gz|$NO_SHAPES
hta_critical_path_simple_add_benchmark_result_493459_1694039959_trace.json.gz|$NO_SHAPES
hta_cupti_profiler_benchmark_result_924719_1679055439_trace.json.gz|no GPU kernels in the trace
hta_df_index_resolver_df_index_resolver.json.gz|$NO_SHAPES
hta_nccl_parser_config_nccl_data.json.gz|ok a100-sxm-40g
hta_negative_queue_length_values_check_rank0.json.gz|ok a100-sxm-80g
hta_ns_resolution_trace_rank-0.Apr_03_18_51_38.1102.pt.trace.json.gz|$NO_SHAPES
hta_trace_diff_control_control.json.gz|ok a100-sxm-40g
hta_trace_filter_sampled_rank-0.json.gz|$NO_GPU
hta_trace_filter_sampled_rank-1.json.gz|$NO_GPU
hta_triton_example_triton_example.json.gz|$NO_SHAPES
kineto_resnet50_num_workers_0_worker0.1623143089861.pt.trace.json.gz|ok Tesla V100-DGXS-32GB
kineto_resnet50_profiler_api_num_workers_0_worker0.pt.trace.json.gz|$NO_GPU
EOF2

n=$(find "$K" -name '*.json.gz' | wc -l)
if [ "$n" -eq 14 ]; then
	ok "the folder holds the 14 traces above"
else
	nok "trace count" "$K holds $n traces, the table above 14"
fi

# the two sampled ranks of one job, read together
run calibrate --kineto "$K/hta_trace_filter_sampled_rank-0.json.gz,$K/hta_trace_filter_sampled_rank-1.json.gz" \
	--gpu a100-sxm-80g --out "$T/job.json"
if [ $rc -eq 0 ] && grep -q '^ranks  *2 traces of one job (world size 128)' "$T/out"; then
	ok "two ranks of one job: calibrated together, the job's world size said"
else
	nok "two rank traces" "exit $rc; expected 0 and 'ranks 2 traces of one job (world size 128)'" "$(head -c 400 "$T/err")"
fi
# an AMD trace never takes an NVIDIA preset
run calibrate --kineto "$K/hta_amd_trace_mi250_minitoy_train_ROCm6_2_kineto.json.gz" --gpu a100-sxm-80g --out "$T/amd.json"
if [ $rc -eq 2 ] && [ ! -e "$T/amd.json" ] && grep -q 'AMD, ROCm' "$T/err"; then
	ok "the MI250 trace refuses --gpu a100-sxm-80g"
else
	nok "AMD trace with an NVIDIA preset" "exit $rc; expected 2 naming AMD, ROCm"
fi
# the profile's date is the trace's: the 2021 ResNet-50 sample's first event
run calibrate --kineto "$K/kineto_resnet50_num_workers_0_worker0.1623143089861.pt.trace.json.gz" --out "$T/r.json"
if [ $rc -eq 0 ] && grep -q '"date": "2021-06-08"' "$T/r.json"; then
	ok "the profile is dated by the trace (2021-06-08)"
else
	nok "trace date" "exit $rc; expected \"date\": \"2021-06-08\""
fi
finish_tests
