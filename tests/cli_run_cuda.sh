#!/bin/sh
# cli_run_cuda.sh: `strata run --backend cuda` (exec/cuda.c) without a GPU, under the fake CUDA
# libraries of profiler/mock (built here against the CUDA strata was configured with) and the fake
# NCCL of exec/mock (over MPI, built with mpicc): the fake cuBLAS computes cublasSgemm's product and
# the fake NCCL its collectives (the dp ones too: ZeRO-1's as grouped reduces and broadcasts) and its
# sends and receives, left in flight on their stream until the stream's next work or synchronize, a
# send done only once received (MPI_Issend: a rank that waits for its send before it receives hangs,
# as on GPUs); both abort on a buffer outside the fake device memory; the fake runtime aborts on a
# copy whose pointers do not match its direction, keeps device memory in pages the host cannot touch
# outside the fakes' own calls (a host read of a device pointer dies: checked first, with its zeroing
# and pitched copies), and runs each launched kernel of exec/kernels_cuda.cu through its host version
# (aborting on a pointer outside the fake device memory), so a run that passes kept the model's tensors
# on the device (exec/cuda.c: the host touches them only through copies) and computed there. Checked:
# tiny-gpt with tp x pp x dp = 2x2x2 and
# ZeRO-1 on 8 ranks against the single-rank CPU reference (tests/cli_run.sh's tolerance) and the cpu
# backend's losses; tiny-moe with tp=2 sp=1 ep=2 (NCCL's all-reduce, all-gather, reduce-scatter and
# grouped send/recv), its routing on the device (the fake's count of the bytes copied through the host); tiny-llama (RMSNorm, RoPE, SwiGLU, GQA kernels) and under zbv (the backward in
# halves: input-only and weight-only GEMMs); the pipeline's sends and receives over NCCL (each on
# its channel's stream) under 1F1B, interleaved 1F1B and DualPipe, whose orders send twice before
# receiving; context parallelism's ring, all-gather and all-to-all over NCCL (cp=2, with pp=2 too);
# the ILP's attention on the rows (MPI's all-to-all on host copies of device tensors) and its experts over a
# batch axis;
# the device memory per rank in --compare's table and JSON; that the kernels ran (launches that only
# take time break the check); refusals (no GPU, a device allocation or NCCL communicator
# that fails, a bad --backend, --reference-kernels) as one line from rank 0 and a failure on every
# rank, no hang. What the fakes cannot check: real timings, real concurrency, a real GPU's or NCCL's
# behaviour, cuBLAS's and CUDA's math library's own rounding. Where strata was built without the
# cuda backend, its refusal is checked instead. Skips (77) without the executor or mpirun.
SRCDIR=${SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
. "$SRCDIR/tests/lib.sh"
start_tests run-cuda

command -v mpirun >/dev/null 2>&1 || { echo "SKIP: mpirun not found"; exit 77; }
command -v timeout >/dev/null 2>&1 || { echo "SKIP: timeout not found"; exit 77; }
P=tp=2,pp=1,dp=1,mbs=1,gbs=2,seq=32
# refused DESCRIPTION PATTERN: the last run failed on every rank (mpirun's status), rank 0 said why in
# one line matching PATTERN, nothing on stdout, no hang
refused() {
	if [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] && [ "$(grep -c '^strata run:' "$T/err")" -eq 1 ] &&
		grep -q "$2" "$T/err" && [ ! -s "$T/out" ]; then ok "$1"; else nok "$1"; fi
}

mpi_strata 60 2 run --model tiny-gpt --plan $P --steps 1 --backend cuda
if grep -q "built without the executor" "$T/err"; then echo "SKIP: strata was built without the executor"; exit 77; fi
if grep -q "built without the cuda backend" "$T/err"; then
	refused "without the cuda backend: one line saying what configure did not find" \
		'built without the cuda backend: configure found no '
	finish_tests
fi
mpi_strata 60 2 run --model tiny-gpt --plan $P --backend gpu
refused "--backend gpu: refused" "must be cpu or cuda, not 'gpu'"
mpi_strata 60 2 run --model tiny-gpt --plan $P --backend cuda --reference-kernels
refused "--reference-kernels with --backend cuda: refused" "goes with --backend cpu"

sh "$SRCDIR/profiler/mock/run.sh" --libs "$T/mock" "${CUDA_DIR:-/usr/local/cuda}" >"$T/mockbuild" 2>&1 || {
	echo "ERROR: the fake CUDA libraries did not build"
	cat "$T/mockbuild"
	exit 99
}
# the NCCL that computes, over MPI, in place of profiler/mock's timing one
if ! ${MPICC:-mpicc} -shared -fPIC -O1 -I"${CUDA_DIR:-/usr/local/cuda}/include" -Wl,-soname,libnccl.so.2 \
	-o "$T/mock/libnccl.so.2" "$SRCDIR/exec/mock/nccl.c" >"$T/mockbuild" 2>&1; then
	echo "ERROR: the fake NCCL did not build"
	cat "$T/mockbuild"
	exit 99
fi
LD_LIBRARY_PATH=$T/mock${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
export LD_LIBRARY_PATH

# the fake device memory: reachable through the copies, a fault when the host reads it
cat >"$T/deref.c" <<'EOF'
#include <cuda_runtime_api.h>
#include <stdio.h>
int main(void) {
	float *d, h = 1;
	if (cudaMalloc((void **)&d, 64) || cudaMemcpyAsync(d, &h, sizeof h, cudaMemcpyHostToDevice, 0)) return 3;
	h = 0;
	if (cudaMemcpyAsync(&h, d, sizeof h, cudaMemcpyDeviceToHost, 0) || h != 1) return 4;
	printf("%g\n", d[0]);
	return 0;
}
EOF
lib=$(ls "$T"/mock/libcudart.so.* | grep -v '\.map$' | head -n 1)
if ${CC:-cc} -I"${CUDA_DIR:-/usr/local/cuda}/include" -o "$T/deref" "$T/deref.c" "$lib" >"$T/mockbuild" 2>&1; then
	"$T/deref" >/dev/null 2>&1
	drc=$?
	if [ "$drc" -gt 128 ]; then ok "the fake device memory: a host read of a device pointer faults"
	else nok "the fake device memory: a host read of a device pointer faults" "exit $drc"; fi
else nok "the fake device memory: the check builds" "$(cat "$T/mockbuild")"; fi
# what the cuda backend's tensor memory uses (exec/cuda.c mem_zero, mem_copy2d): the fake's zeroing and
# pitched copies do their work on device memory, and abort on a host pointer (argument 1) as a GPU faults
cat >"$T/memops.c" <<'EOF'
#include <cuda_runtime_api.h>
int main(int argc, char **argv) {
	float *d, h[6] = {1, 2, 3, 4, 5, 6}, b[4] = {9, 9, 9, 9};
	if (cudaMalloc((void **)&d, sizeof h)) return 3;
	if (argc > 1) cudaMemsetAsync(h, 0, sizeof h, 0); /* a host pointer: abort */
	if (cudaMemsetAsync(d, 0, sizeof h, 0) || cudaMemcpyAsync(h, d, sizeof h, cudaMemcpyDeviceToHost, 0) || h[5] != 0)
		return 4;
	for (int i = 0; i < 6; i++) h[i] = (float)i;
	/* [2 x 3] up, its columns 1 and 2 down into [2 x 2] */
	if (cudaMemcpyAsync(d, h, sizeof h, cudaMemcpyHostToDevice, 0) ||
	    cudaMemcpy2DAsync(b, 2 * sizeof *b, d + 1, 3 * sizeof *d, 2 * sizeof *b, 2, cudaMemcpyDeviceToHost, 0))
		return 5;
	return b[0] == 1 && b[1] == 2 && b[2] == 4 && b[3] == 5 ? 0 : 6;
}
EOF
if ${CC:-cc} -I"${CUDA_DIR:-/usr/local/cuda}/include" -o "$T/memops" "$T/memops.c" "$lib" >"$T/mockbuild" 2>&1; then
	"$T/memops" >/dev/null 2>&1
	mrc=$?
	"$T/memops" host >/dev/null 2>&1
	hrc=$?
	if [ "$mrc" -eq 0 ] && [ "$hrc" -gt 128 ]; then
		ok "the fake's zeroing and pitched copies: right on the device, abort on the host"
	else nok "the fake's zeroing and pitched copies" "exit $mrc, on a host pointer $hrc"; fi
else nok "the fake's memory operations: the check builds" "$(cat "$T/mockbuild")"; fi

# the fake's check of the ordering between streams (profiler/mock/cudart.c mock_access): a write of
# what another stream read, with no event between them, aborts naming both; recorded on one stream and
# waited for on the other, it passes; two streams' reads of the same bytes need no order
cat >"$T/race.c" <<'EOF'
#include <cuda_runtime_api.h>
int main(int argc, char **argv) {
	float *d, h[4] = {1, 2, 3, 4};
	cudaStream_t a, b;
	cudaEvent_t e;
	if (cudaMalloc((void **)&d, sizeof h) || cudaStreamCreateWithFlags(&a, cudaStreamNonBlocking) ||
	    cudaStreamCreateWithFlags(&b, cudaStreamNonBlocking) || cudaEventCreate(&e))
		return 3;
	cudaMemcpyAsync(d, h, sizeof h, cudaMemcpyHostToDevice, a); /* a writes */
	cudaEventRecord(e, a);
	cudaStreamWaitEvent(b, e, 0);
	cudaMemcpyAsync(h, d, sizeof h, cudaMemcpyDeviceToHost, b); /* b reads after it */
	cudaMemcpyAsync(h, d, sizeof h, cudaMemcpyDeviceToHost, a); /* a reads too: reads need no order */
	if (argc > 1) {
		cudaMemsetAsync(d, 0, sizeof h, a); /* a writes what b read, unordered: abort */
	} else {
		cudaEventRecord(e, b);
		cudaStreamWaitEvent(a, e, 0);
		cudaMemsetAsync(d, 0, sizeof h, a);
	}
	return 0;
}
EOF
if ${CC:-cc} -I"${CUDA_DIR:-/usr/local/cuda}/include" -o "$T/race" "$T/race.c" "$lib" >"$T/mockbuild" 2>&1; then
	"$T/race" >/dev/null 2>&1
	orc=$?
	"$T/race" race >/dev/null 2>"$T/raceerr"
	rrc=$?
	if [ "$orc" -eq 0 ] && [ "$rrc" -gt 128 ] && grep -q "a race on device memory" "$T/raceerr"; then
		ok "the fake's ordering check: an unordered write after another stream's read aborts, an event orders it"
	else nok "the fake's ordering check" "exit $orc, unordered $rrc: $(cat "$T/raceerr")"; fi
else nok "the fake's ordering check: the check builds" "$(cat "$T/mockbuild")"; fi

mpi_strata 300 8 run --model tiny-gpt --plan tp=2,pp=2,dp=2,mbs=1,gbs=8,seq=32,zero=1 --steps 2 --check --json \
	--backend cuda
check_within "cuda, tp x pp x dp = 2x2x2 ZeRO-1 on 8 ranks, matches the single-rank CPU reference"
cuda=$(grep -o '"loss": \[[^]]*' "$T/out")
if grep -q '"backend": "cuda"' "$T/out"; then ok "the JSON names the cuda backend"
else nok "the JSON names the cuda backend"; fi
mpi_strata 300 8 run --model tiny-gpt --plan tp=2,pp=2,dp=2,mbs=1,gbs=8,seq=32,zero=1 --steps 2 --json
cpu=$(grep -o '"loss": \[[^]]*' "$T/out")
# fp32 GEMMs summed in another order: the tolerance of tests/cli_run.sh's losses
if [ -n "$cuda" ] && [ -n "$cpu" ] && [ "$cuda" != "$cpu" ] && awk -v a="${cuda#*[}" -v b="${cpu#*[}" 'BEGIN {
	na = split(a, x, ", "); nb = split(b, y, ", ")
	if (na != 2 || nb != 2) exit 1
	for (i = 1; i <= 2; i++) { d = x[i] - y[i]; if (d > 1e-5 || d < -1e-5) exit 1 }
}'; then ok "cuda's losses are the cpu backend's within 1e-5 (and not its bits: cuBLAS ran)"
else nok "cuda's losses are the cpu backend's within 1e-5 (and not its bits: cuBLAS ran)" "$cuda" "$cpu"; fi
mpi_strata 300 4 run --model tiny-moe --plan tp=2,sp=1,pp=1,dp=2,ep=2,mbs=1,gbs=4,seq=32 --steps 2 --check --json \
	--backend cuda
check_within "cuda, MoE with tp=2 sp=1 ep=2 (NCCL all-gather, reduce-scatter, all-to-all) matches the reference"
# the MoE routing, dispatch and combine on the device (exec/moe_kernels.h): a step moves through the host only
# the counts, the loss's row sums and the tokens, not the rows. The fake counts each process's bytes copied
# either way (MOCK_COPY_LOG); a step's (a 2-step run's less a 1-step run's, per rank) must stay under one copy of
# one block's norm output (32 rows x 128 floats: the host routing copied several per block and micro-batch, some
# 4 MB a step each way here)
for s in 1 2; do
	rm -f "$T/copies$s"
	MOCK_COPY_LOG=$T/copies$s
	export MOCK_COPY_LOG
	mpi_strata 300 4 run --model tiny-moe --plan tp=2,sp=1,pp=1,dp=2,ep=2,mbs=1,gbs=4,seq=32 \
		--steps $s --backend cuda
	unset MOCK_COPY_LOG
	eval "rc$s=\$rc"
done
if [ "$rc1" -eq 0 ] && [ "$rc2" -eq 0 ] && [ -s "$T/copies1" ] && [ -s "$T/copies2" ] && cat "$T/copies1" "$T/copies2" |
	awk -v n1="$(wc -l <"$T/copies1")" 'NR <= n1 { h1 += $1; d1 += $2; next } { h2 += $1; d2 += $2; n2++ }
	END { b = 32 * 128 * 4; exit !(n1 == 4 && n2 == 4 && (h2 - h1) / 4 < b && (d2 - d1) / 4 < b && d2 > d1) }'; then
	ok "cuda, MoE: a step copies no rows through the host (the routing on the device)"
else nok "cuda, MoE: a step copies no rows through the host" "exit $rc1 $rc2: $(cat "$T/copies1" "$T/copies2")"; fi
mpi_strata 300 2 run --model tiny-llama --plan tp=1,pp=2,dp=1,mbs=1,gbs=4,seq=32,schedule=zbv --steps 2 --check \
	--json --backend cuda
check_within "cuda, zbv (the backward's halves: cuBLAS's input-only and weight-only GEMMs) matches the reference"
# an ILP plan of tiny-moe on 4 slow GPUs: QKV on its fused width (NCCL's all-gather of its output), the experts
# over the tp group on each rank's rows (exec/model.c, "operator-level plans")
"$STRATA" plan --search ilp --cluster "$SRCDIR/tests/data/cluster_slowgpu.json" --seq 32 --model tiny-moe --gpus 4 \
	--gbs 8 --mbs 2 --max-stages 1 --out "$T/m4.json" >"$T/ilpout" 2>&1 || nok "ILP plan tiny-moe on 4" "$(cat "$T/ilpout")"
mpi_strata 300 4 run --model tiny-moe --plan "$T/m4.json" --cluster "$SRCDIR/tests/data/cluster_slowgpu.json" \
	--steps 2 --check --json --backend cuda
check_within "cuda, an ILP plan (QKV on its fused width, experts over the tp group) matches the reference"
# recompute=op: wk's and w3's cuBLAS GEMMs alone again, the probabilities in the backward (exec/model.c, block_redo)
run_checked 4 "cuda, recompute=op with tp=2 sp=1 pp=2 (Llama) matches the reference" \
	--model tiny-llama --plan tp=2,sp=1,pp=2,dp=1,mbs=1,gbs=4,seq=32,recompute=op --backend cuda
run_checked 2 "cuda, recompute=op with cp=2 (Llama: the probabilities remade on host buffers) matches the reference" \
	--model tiny-llama --plan tp=1,pp=1,dp=1,cp=2,mbs=1,gbs=2,seq=64,recompute=op --backend cuda
# MoE blocks: the routing kept on the device, with ep=2 the all-to-alls' outputs too, the experts' GEMMs again
# (exec/model.c moe_redo_dev)
run_checked 4 "cuda, recompute=op with MoE blocks, tp=2 sp=1 ep=2 dp=2 matches the reference" \
	--model tiny-moe --plan tp=2,sp=1,pp=1,dp=2,ep=2,mbs=1,gbs=4,seq=32,recompute=op --backend cuda
# full recompute block by block (exec/model.c, "activation recompute"): the backward's rebuilds timed by the
# backend's events (redo_mark) as the recompute's: per micro-batch two recompute spans on rank 0 (the
# instruction's, block 3; the backward's, blocks 2 to 0), of positive length, adding up to its recompute time
mpi_strata 180 2 run --model tiny-llama --plan tp=2,sp=1,pp=1,dp=1,mbs=1,gbs=2,seq=32,recompute=full --steps 2 \
	--json --backend cuda --trace "$T/rtrace.json"
if [ "$rc" -eq 0 ] && tr -d '\n' <"$T/rtrace.json" | awk -v want="$(awk "$FLATTEN" "$T/out" |
	awk '$1 == ".measured_s[0].recompute" { print $2 }')" '
	{ n = split($0, e, /"name": *"recompute"/)
	  for (i = 2; i <= n; i++) { split(e[i], p, /"pid": */); split(p[2], q, /[,}]/); if (q[1] != 0) continue
		split(e[i], d, /"dur": */); split(d[2], v, /[,}]/); if (v[1] <= 0) bad = 1; s += v[1]; k++ } }
	END { df = s * 1e-6 - want; exit bad || k != 4 || !(want > 0) || df > 1e-6 * want + 2e-9 || -df > 1e-6 * want + 2e-9 }'
then ok "cuda, full recompute: the backward's rebuilds are the recompute's (4 spans on rank 0, its recompute time)"
else nok "cuda, full recompute: the backward's rebuilds are the recompute's (4 spans on rank 0, its recompute time)" \
	"$(grep -o '"name": *"recompute"[^}]*' "$T/rtrace.json" | head -8)"; fi
# optimizer offload: the host share's gradients copied down from device memory, the CPU's Adam, the weights up
run_checked 2 "cuda, offload_optimizer=0.5 with dp=2 ZeRO-1 (Llama) matches the reference" \
	--model tiny-llama --plan tp=1,pp=1,dp=2,mbs=1,gbs=4,seq=32,zero=1,offload_optimizer=0.5 --backend cuda
run_checked 2 "cuda, offload_optimizer=0.5 with dp=2 ZeRO-3 (Llama) matches the reference" \
	--model tiny-llama --plan tp=1,pp=1,dp=2,mbs=1,gbs=4,seq=32,zero=3,offload_optimizer=0.5 --backend cuda
run_checked 2 "cuda, offload=params with dp=2 ZeRO-3 (Llama) matches the reference" \
	--model tiny-llama --plan tp=1,pp=1,dp=2,mbs=1,gbs=4,seq=32,zero=3,offload=params --backend cuda
# the attention's rows (exec/model.c, "operator-level plans"), MPI's all-to-all between the heads and the rows
# on host copies of the gradients in device memory: the projection on the rows (tiny-gpt), QKV to the
# projection on each rank's sequences (tiny-llama), as tests/cli_run_ilp.sh plans them
for mr in "tiny-gpt projection" "tiny-llama attention"; do
	"$STRATA" plan --search ilp --cluster "$SRCDIR/tests/data/cluster_slowgpu.json" --seq 32 --model "${mr% *}" \
		--gpus 2 --gbs 16 --mbs 8 --max-stages 1 --out "$T/rows.json" >"$T/ilpout" 2>&1 ||
		nok "ILP plan ${mr% *} on 2" "$(cat "$T/ilpout")"
	mpi_strata 300 2 run --model "${mr% *}" --plan "$T/rows.json" --cluster "$SRCDIR/tests/data/cluster_slowgpu.json" \
		--steps 2 --check --json --backend cuda
	if grep -q "\"on_rows\": \"${mr#* }\"" "$T/out"; then check_within "cuda, ${mr% *} with the ${mr#* } on the rows"
	else nok "cuda, ${mr% *} with the ${mr#* } on the rows" "$(head -3 "$T/out")"; fi
done
# tiny-moe's experts over a batch axis (mbs 8): the attention and the router whole on each rank's sequences, the
# experts over the group (MPI's all-to-alls on host copies), the output layer vocabulary-parallel over NCCL
"$STRATA" plan --search ilp --cluster "$SRCDIR/tests/data/cluster_slowgpu.json" --seq 32 --model tiny-moe --gpus 2 \
	--gbs 32 --mbs 8 --max-stages 1 --out "$T/m2b.json" >"$T/ilpout" 2>&1 ||
	nok "ILP plan tiny-moe on 2" "$(cat "$T/ilpout")"
mpi_strata 300 2 run --model tiny-moe --plan "$T/m2b.json" --cluster "$SRCDIR/tests/data/cluster_slowgpu.json" \
	--steps 2 --check --json --backend cuda
if grep -q '"experts": "tp rows"' "$T/out"; then check_within "cuda, an ILP plan with the experts over a batch axis"
else nok "cuda, an ILP plan with the experts over a batch axis" "$(head -3 "$T/out")"; fi
# the pipeline over NCCL: interleaved 1F1B sends a chunk's output twice before it receives (a send that
# waited for its receive would hang the fake here), DualPipe both ways at once
run_checked 2 "cuda, interleaved pp=2 vp=2 (Llama) over NCCL sends and receives matches the reference" \
	--model tiny-llama --plan tp=1,pp=2,vp=2,dp=1,mbs=1,gbs=8,seq=32 --backend cuda
run_checked 2 "cuda, DualPipe pp=2 (GPT; the mirror all-reduce) matches the reference" \
	--model tiny-gpt --plan tp=1,pp=2,dp=1,mbs=1,gbs=8,seq=32,schedule=dualpipe --backend cuda
# context parallelism over NCCL: the ring (grouped send and receive), the all-gather, the all-to-all
run_checked 2 "cuda, cp=2 ring (GPT) matches the reference" \
	--model tiny-gpt --plan tp=1,pp=1,cp=2,dp=1,mbs=1,gbs=4,seq=64 --backend cuda
run_checked 2 "cuda, cp=2 all_gather (Llama, GQA) matches the reference" \
	--model tiny-llama --plan tp=1,pp=1,cp=2,dp=1,mbs=1,gbs=4,seq=64,cp_comm=all_gather --backend cuda
run_checked 2 "cuda, cp=2 a2a (Llama) matches the reference" \
	--model tiny-llama --plan tp=1,pp=1,cp=2,dp=1,mbs=1,gbs=4,seq=64,cp_comm=a2a --backend cuda
run_checked 4 "cuda, cp=2 x pp=2 (GPT) matches the reference" \
	--model tiny-gpt --plan tp=1,pp=2,cp=2,dp=1,mbs=1,gbs=4,seq=32 --backend cuda
# the device memory beside the heap: each rank's high-water mark of its allocations (at least the
# staging buffer of a micro-batch's activations: 32 tokens x 128 floats here), and the fake driver's
# used bytes (its live blocks), which hold at least as much
mpi_strata 300 2 run --model tiny-gpt --plan tp=1,pp=2,dp=1,mbs=1,gbs=4,seq=32 --steps 2 --compare --json \
	--backend cuda
if awk "$FLATTEN" "$T/out" >"$T/flat" 2>/dev/null && awk '
	$1 ~ /^\.compare\.memory\[[0-9]+\]\.device_peak_bytes$/ { n++; if ($2 + 0 < 32 * 128 * 4) bad = 1; d[$1] = $2 + 0 }
	$1 ~ /^\.compare\.memory\[[0-9]+\]\.device_used_peak_bytes$/ {
		u++; k = $1; sub(/used_/, "", k); if ($2 + 0 < d[k]) bad = 1 }
	END { exit !(n == 2 && u == 2 && !bad) }' "$T/flat"; then ok "--compare --json: device memory per rank"
else nok "--compare --json: device memory per rank" "$(grep device "$T/flat")"; fi
mpi_strata 300 2 run --model tiny-gpt --plan tp=1,pp=2,dp=1,mbs=1,gbs=4,seq=32 --steps 1 --compare --backend cuda
if grep -q 'rank .*heap .*arena .*device .*used' "$T/out"; then ok "--compare: the device columns"
else nok "--compare: the device columns" "$(grep -A3 'memory per rank' "$T/out")"; fi
# tiny-llama: RMSNorm, rotary embedding, SwiGLU, grouped queries through the own kernels
mpi_strata 300 2 run --model tiny-llama --plan $P --steps 2 --check --json --backend cuda
check_within "cuda, tiny-llama tp=2 (RMSNorm, RoPE, SwiGLU kernels) matches the reference"
# the kernels really ran: with launches that only take time the gradients are far off the reference's
# (the largest of them about 0.2: tests/cli_run.sh's tolerance is 1e-3 of that), or the loss is not
# finite and the run stops saying so
export MOCK_NO_HOST_KERNELS=1
mpi_strata 300 2 run --model tiny-gpt --plan $P --steps 1 --check --json --backend cuda
unset MOCK_NO_HOST_KERNELS
d=$(sed -n 's/.*"max_diff_overall": *\([^,}]*\).*/\1/p' "$T/out")
if { [ -n "$d" ] && awk -v d="$d" 'BEGIN { exit !(d + 0 > 1e-2) }'; } ||
	{ [ "$rc" -eq 2 ] && grep -q "not finite" "$T/err"; }; then ok "kernels that do not run: the check sees it"
else nok "kernels that do not run: the check sees it" "$(head -c 300 "$T/out")"; fi
mpi_strata 120 2 run --model tiny-gpt --plan $P --steps 1 --backend cuda
if [ "$rc" -eq 0 ] && grep -q '^ran .*cuda backend (fp32, cuBLAS GEMMs)' "$T/out"; then
	ok "text: the cuda backend named"
else nok "text: the cuda backend named"; fi

# a rank that hangs before its pipeline send: the receiver's wait for the NCCL receive on its stream is
# bounded by --timeout as an MPI wait is (exec/cuda.c stream_wait), one line naming it, every rank stopped
t0=$(date +%s)
STRATA_EXEC_FAULT=1:3:hang
export STRATA_EXEC_FAULT
mpi_strata 120 2 run --model tiny-gpt --plan tp=1,pp=2,dp=1,mbs=1,gbs=4,seq=32 --steps 2 --timeout 3 --backend cuda
unset STRATA_EXEC_FAULT
secs=$(($(date +%s) - t0))
if [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] && [ "$secs" -le 60 ] &&
	grep -Eq '^strata run: rank 0 timed out after 3 s in step 1 instruction 4 .* waiting for rank 1 in the pipeline receive over NCCL' \
		"$T/err"; then ok "cuda: a hang before a pipeline send: the NCCL receive times out, naming it ($secs s)"
else nok "cuda: a hang before a pipeline send" "exit $rc, $secs s: $(grep '^strata run' "$T/err")"; fi
# the program's streams on CUDA streams of their own, ordered by events (exec/cuda.c ins_begin): with the
# test hook that drops the waits for dep[]'s events, the dp reduction's stream reads the gradients the
# backward's stream is writing, and the fake's ordering check aborts naming them; the same run without
# the hook passes
for hook in 0 1; do
	STRATA_EXEC_CUDA_SKIP_WAITS=$hook
	export STRATA_EXEC_CUDA_SKIP_WAITS
	mpi_strata 120 2 run --model tiny-gpt --plan tp=1,pp=1,dp=2,mbs=1,gbs=4,seq=32 --steps 2 --backend cuda
	eval "rc$hook=\$rc"
	cp "$T/err" "$T/err$hook"
done
unset STRATA_EXEC_CUDA_SKIP_WAITS
if [ "$rc0" -eq 0 ] && [ "$rc1" -ne 0 ] && [ "$rc1" -ne 124 ] &&
	grep -q "mock cudart: a race on device memory.*ncclAllReduce (reads on stream 3" "$T/err1"; then
	ok "cuda: the dp stream waits for the backward's events (without them the fake sees the race)"
else nok "cuda: the dp stream waits for the backward's events" "exit $rc0 and $rc1: $(grep mock "$T/err1")"; fi
export CUDA_VISIBLE_DEVICES=-1
mpi_strata 60 2 run --model tiny-gpt --plan $P --backend cuda
refused "no GPU: refused on every rank" "no CUDA GPU: no CUDA-capable device is detected"
unset CUDA_VISIBLE_DEVICES
export MOCK_MEM_GB=0.000001
mpi_strata 60 2 run --model tiny-gpt --plan $P --backend cuda
unset MOCK_MEM_GB
refused "a device allocation that fails: every rank stops" \
	"rank [01] (GPU 0): cudaMalloc of the model's tensors failed"
export MOCK_NCCL_FAIL=1
mpi_strata 60 2 run --model tiny-gpt --plan $P --backend cuda
unset MOCK_NCCL_FAIL
refused "a tp communicator that NCCL cannot make: every rank stops" "rank 0 (GPU 0): ncclCommInitRank failed"
finish_tests
