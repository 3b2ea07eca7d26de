#!/bin/sh
# shellcheck disable=SC2086 # $EST is an argument list, split on purpose
# profiler/mock/run.sh: `strata profile` against fake CUDA libraries, on a machine without a GPU.
#
#   profiler/mock/run.sh [--full] STRATA [CUDA_DIR]
#   profiler/mock/run.sh --libs DIR [CUDA_DIR]     (only builds the fakes into DIR: tests/run_cuda_mock.sh)
#
# Builds fake libcudart, libcupti, libcublas(Lt) and libnccl (the .c files beside this script,
# against CUDA_DIR's headers, default $CUDA_HOME or /usr/local/cuda) into a temporary folder and
# runs STRATA (a strata configured with that CUDA) with them first on LD_LIBRARY_PATH. The fakes do
# no arithmetic: they advance a simulated clock at known rates (GEMMs at 800 TFLOP/s in bf16 ...,
# collectives at 100 GB/s of bus bandwidth) and report CUPTI records, so a correct profiler
# measures exactly those rates. What this checks: every code path of profiler/cuda.c that a GPU
# would take (CUPTI grouping by external correlation or by order, the events fallback and its
# reasons, dropped records, cuBLAS and cuBLASLt calls with consistent leading dimensions, fp8 TN
# layouts, NCCL over 2 and 8 GPUs, plan shapes, the memory and time caps), and that what it writes
# loads with `strata estimate --profile`. What it cannot check: real timings, CUPTI's real
# behaviour, kernels' correctness. --full adds the full grid (half a minute, ~4 GiB of memory).
# `make check` runs it (tests/profile_mock.sh) with the CUDA strata was configured with, which the
# fakes must match. Replacing libcudart relies on GNU ld and glibc. Exit 0 when every check passes,
# 1 otherwise, 99 when the fakes do not build.
set -u
full=0 only=0
if [ "${1:-}" = --full ]; then
	full=1
	shift
fi
if [ "${1:-}" = --libs ]; then
	only=1
	shift
fi
S=${1:?usage: run.sh [--full] STRATA [CUDA_DIR] | run.sh --libs DIR [CUDA_DIR]}
CUDA=${2:-${CUDA_HOME:-/usr/local/cuda}}
D=$(cd "$(dirname "$0")" && pwd)
if [ $only = 1 ]; then
	M=$S
	mkdir -p "$M" || exit 99
else
	M=$(mktemp -d "${TMPDIR:-/tmp}/strata-mock.XXXXXX") || exit 99
	trap 'rm -rf "$M"' EXIT
	case $("$S" profile --help | tail -1) in
	*"built with CUDA"*) ;;
	*) echo "$S was built without CUDA: nothing to check"; exit 0 ;;
	esac
fi
rt=$(sed -n 's/^#define CUDART_VERSION *\([0-9]*\).*/\1/p' "$CUDA/include/cuda_runtime_api.h")
blas=$(sed -n 's/^#define CUBLAS_VER_MAJOR *\([0-9]*\).*/\1/p' "$CUDA/include/cublas_api.h")
lib() {
	printf '%s { global: *; };\n' "$1" >"$M/$1.map"
	${CC:-cc} -shared -fPIC -O1 -I"$CUDA/include" -Wl,-soname,"$1" -Wl,--version-script="$M/$1.map" \
		-o "$M/$1" "$D/$2" -ldl || exit 99
}
lib "libcudart.so.$((rt / 1000))" cudart.c
lib "libcupti.so.$((rt / 1000))" cupti.c
lib "libcublas.so.$blas" cublas.c
lib "libcublasLt.so.$blas" cublas.c
lib libnccl.so.2 nccl.c
[ $only = 1 ] && exit 0
LD_LIBRARY_PATH=$M${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
export LD_LIBRARY_PATH

npass=0
nfail=0
# expect DESCRIPTION STATUS PATTERN... -- ARGS: strata ARGS exits STATUS and its stdout+stderr
# match every (grep -E) PATTERN
expect() {
	desc=$1 want=$2
	shift 2
	n=0
	for a in "$@"; do
		[ "$a" = -- ] && break
		n=$((n + 1))
	done
	i=0
	pats=
	while [ $i -lt "$n" ]; do
		pats="$pats
$1"
		shift
		i=$((i + 1))
	done
	shift
	"$S" "$@" >"$M/out" 2>&1
	rc=$?
	why=
	[ $rc -eq "$want" ] || why="exit $rc, expected $want"
	_ifs=$IFS
	IFS='
'
	for p in $pats; do
		grep -Eq -e "$p" "$M/out" || why="${why:+$why; }no /$p/"
	done
	IFS=$_ifs
	if [ -z "$why" ]; then
		npass=$((npass + 1))
		echo "ok   - $desc"
	else
		nfail=$((nfail + 1))
		echo "FAIL - $desc: $why"
		sed 's/^/       /' "$M/out"
	fi
}

P=$M/p.json
EST="estimate --model llama2-7b --cluster dgx-h100 --gpus 8 --plan tp=8,mbs=1,gbs=64"

expect "quick profile, CUPTI records grouped by external correlation" 0 \
	'^timer +CUPTI activity records \(kernel and memcpy GPU time\), median' \
	'^compute +gemm bf16 .*: 800 to 800 TFLOP/s' '^ +bgemm bf16 .*: 400 to 400 TFLOP/s' \
	'allreduce intra 2 ranks .* 100 to 100 bus GB/s' 'alltoall intra 2 ranks .* 100 to 100 bus GB/s' \
	'sendrecv intra 2 ranks .* 100 to 100 bus GB/s' \
	'^copies +h2d pinned +2 points from 2 measurements: 23\.33 to 24\.97 GB/s' \
	'^ +d2h pinned +2 points from 2 measurements: 23\.33 to 24\.97 GB/s' \
	-- profile --quick --out "$P"
# the fake copies take 5 us + bytes / 25 GB/s, of which CUPTI sees 3 us + bytes / 25 GB/s: 1 MiB at
# 1048576 B / 44.94 us = 23.33 GB/s, 64 MiB at 24.97 GB/s
expect "the copy tables in the profile, at both sizes" 0 '"copies": \[' '"dir": "h2d"' '"dir": "d2h"' \
	'^ +1048576,$' '^ +23\.33[0-9]*$' '^ +67108864,$' '^ +24\.97[0-9]*$' -- profile --quick --out -
expect "the profile loads" 0 '^model ' -- $EST --profile "$P"
case $("$S" profile --help | tail -1) in
*"memory-bound kernels: yes"*)
	expect "memory-bound kernels (profiler/kernels.cu)" 0 ' softmax +[0-9]+ points' ' norm +[0-9]+ points' \
		' elementwise +[0-9]+ points' -- profile --quick --out "$P"
	;;
*) expect "built without nvcc: memory-bound kernels skipped, said" 0 'memory-bound kernels not timed' \
	-- profile --quick --out "$P" ;;
esac
MOCK_NDEV=8
export MOCK_NDEV
expect "8 GPUs: collectives over 2 and 8" 0 'allgather intra 2 ranks .* 100 to 100' \
	'allgather intra 8 ranks .* 100 to 100' 'reducescatter intra 8 ranks .* 100 to 100' \
	-- profile --quick --out "$P"
# a plan's collectives at the sizes the estimator asks with (test_prof_plan_colls lists them), on
# one node of 8: the tp all-reduce of [4096, 4096] bf16 activations (33554432 B) over 2 and the
# data-parallel buckets over 2, the send/recv of the activations' half (16777216 B) as the 2-rank
# table, each its own point
PLAN=tp=2,pp=2,dp=2,mbs=1,gbs=64,zero=0
expect "8 GPUs and a plan: its collectives as exact points" 0 \
	"^plan +$PLAN on llama2-7b: .* [0-9]+ collective sizes \\([0-9]+ timed\\)\$" \
	' allreduce intra 2 ranks .* \(([2-9]|[1-9][0-9]+) at plan shapes\)' \
	'^ +sendrecv intra 2 ranks .* \(1 at plan shapes\)' \
	-- profile --quick --out "$P" --model llama2-7b --plan $PLAN
expect "... in the profile at exactly those sizes" 0 '^ +33554432,$' '^ +16777216,$' \
	-- profile --quick --out - --model llama2-7b --plan $PLAN
MOCK_NDEV=2
expect "2 GPUs: a plan's 4-rank groups cannot be measured, said" 0 \
	'^plan .*\([0-9]+ timed; [0-9]+ over up to 4 GPUs, more than the 2 here, not\)$' \
	-- profile --quick --out "$P" --model llama2-7b --plan tp=4,pp=2,mbs=1,gbs=64
MOCK_NDEV=1
expect "1 GPU: no collectives" 0 '^collectives +none measured' -- profile --quick --out "$P"
export MOCK_NOEXT=1
expect "no external correlation records: grouped by order" 0 \
	'points grouped by order' '^compute +gemm bf16 .*: 800 to 800 TFLOP/s' -- profile --quick --out "$P"
unset MOCK_NOEXT
export MOCK_NOREC=1
expect "CUPTI delivers nothing: events" 0 \
	'^timer +CUDA events \(CUPTI started but delivered no activity records\)' -- profile --quick --out "$P"
unset MOCK_NOREC
export MOCK_DROP=1
expect "dropped records: those points by events" 0 \
	'CUDA events for [0-9]+ of [0-9]+ points \(CUPTI dropped' -- profile --quick --out "$P"
unset MOCK_DROP
export MOCK_CUPTI_REFUSE=1
expect "CUPTI refused: the reason" 0 'CUPTI_ERROR_INSUFFICIENT_PRIVILEGES' \
	-- profile --quick --out "$P"
unset MOCK_CUPTI_REFUSE
export CUDA_VISIBLE_DEVICES=-1
expect "every GPU hidden" 2 '^strata profile: no CUDA GPU: no CUDA-capable device is detected$' -- profile --quick --out "$P"
unset CUDA_VISIBLE_DEVICES
expect "--timer events" 0 '^timer +CUDA events \(--timer events\)' -- profile --quick --out "$P" --timer events
export MOCK_NAME="NVIDIA GeForce RTX 4090"
expect "a GPU without a preset needs --gpu" 2 \
	"has no preset for GPU 'NVIDIA GeForce RTX 4090'" -- profile --quick --out "$M/none.json"
unset MOCK_NAME
if [ -e "$M/none.json" ]; then
	nfail=$((nfail + 1))
	echo "FAIL - a profile was written although strata refused"
fi
export MOCK_NAME="NVIDIA GeForce RTX 4090"
expect "... and takes it" 0 "note: 'rtx4090' is not a GPU preset" \
	-- profile --quick --out "$P" --gpu rtx4090
unset MOCK_NAME
expect "--device beyond the GPUs" 2 "option '--device': 3, but 1 GPU is visible" -- profile --quick --out "$P" --device 3
expect "a plan's shapes: exact points (fp8 GEMMs through cuBLASLt, unfused attention's in bf16)" 0 \
	'^plan +tp=8,mbs=1,gbs=64,dtype=fp8,attention=unfused on llama2-7b: 7 GEMM shapes' \
	'^ +gemm fp8 .* 1600 to 1600 TFLOP/s \(5 at plan shapes\)' '^ +bgemm bf16 .*\(1 at plan shapes\)' \
	-- profile --quick --out "$P" --model llama2-7b --plan tp=8,mbs=1,gbs=64,dtype=fp8,attention=unfused
expect "a plan with fused attention: its GEMMs only (no kernel of strata's runs fused attention)" 0 \
	'^plan +tp=8,mbs=1,gbs=64,dtype=fp8 on llama2-7b: 5 GEMM shapes' \
	-- profile --quick --out "$P" --model llama2-7b --plan tp=8,mbs=1,gbs=64,dtype=fp8
expect "the plan profile loads" 0 '^model ' -- $EST --profile "$P"
expect "MoE plan (batched expert GEMMs in fp8; the router padded to 16)" 0 '^ +gemm fp8 .* [0-9.]+ to 1600 TFLOP/s' \
	-- profile --quick --out "$P" --model mixtral-8x7b --plan tp=2,ep=4,pp=2,mbs=1,seq=4096,dtype=fp8
export MOCK_MEM_GB=0.25
expect "small memory: shapes left out, said" 0 'did not fit in device memory' \
	-- profile --quick --out "$P" --model llama2-7b --plan tp=1,mbs=4
unset MOCK_MEM_GB
if [ $full = 1 ]; then
	MOCK_NDEV=2
	export MOCK_MEM_GB=4 MOCK_SLOW32=1
	expect "full grid: every dtype; slow fp32 shapes capped" 0 \
		'^compute +gemm fp32 .* 1 to 1 TFLOP/s' '^ +gemm tf32 .* 400 to 400' '^ +gemm fp16 .* 800 to 800' \
		'^ +gemm fp8 .* [0-9.]+ to 1600' 'grid fp32: gemm shapes from .* FLOPs up not timed' \
		-- profile --out "$P"
	unset MOCK_MEM_GB MOCK_SLOW32
	expect "the full profile loads" 0 '^model ' -- $EST --profile "$P"
fi
echo "# $npass passed, $nfail failed"
[ $nfail -eq 0 ]
