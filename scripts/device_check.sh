#!/bin/bash
# device_check.sh: the GPU checks of issue 18 (and issue 6's profile) in one short run, for a lent GPU machine
# (the `device` tool: 15 minutes of device time per session, start included, one GPU, CUDA but no package
# registry). Prepare here, on a machine with Debian's packages:
#   ./configure && make -j2 && scripts/device_pack.sh       (writes .dev.tar.xz, about 26 MB, git-ignored)
# then run there, from the repository root, carrying the pack:
#   run(command="bash scripts/device_check.sh", carry=[".dev.tar.xz"], timeout_s=560)
# It unpacks the pack (the binary built here with the cuda backend, its libraries and Open MPI), finds the
# machine's CUDA runtime, CUPTI, cuBLAS and NCCL (CUDA's folders, or the Python packages' nvidia/*/lib),
# and writes under $OUT (at most 8 files come back):
#   device.log    every command and its output; nvidia-smi; each step's wall time
#   tiny.jsonl    tiny-gpt, tiny-llama and tiny-moe on the GPU (one rank: NCCL takes one rank per GPU) with
#                 --check: the loss and gradients against the single-rank CPU reference, max_diff per tensor
#   quick.json    strata profile --quick: the GPU's GEMM and kernel rates in seconds
#   real.json     a real-sized model (gpt-1.7b, fp32 as the executor runs it; about 27 GiB of weights,
#                 gradients and Adam states) trained for STEPS steps on the GPU with --compare against the
#                 simulation of the same program on the machine's cluster preset priced by quick.json
#   real_trace.json  its Chrome trace (strata plot timeline draws it beside strata sim's)
#   profile.json  the full strata profile with the real run's shapes (issue 6), if it ends in PROFILE_S
# Every step has a timeout, cut to what is left of BUDGET_S (default 480 s from the unpacking; a step with
# under 10 s left is skipped), so the script ends within about 8 minutes whatever hangs, inside the run's
# timeout_s; a step that fails is logged and the next runs. Commit what comes back under traces/ and the measured-vs-predicted table in README, naming
# the GPU.
set -u
OUT=${OUT:-/tmp/device_out}
mkdir -p "$OUT"
LOG=$OUT/device.log
STEPS=${STEPS:-4}
PROFILE_S=${PROFILE_S:-210}
BUDGET_S=${BUDGET_S:-480}
exec > >(tee -a "$LOG") 2>&1
t0=$(date +%s)
step() { # step NAME TIMEOUT CMD...: runs CMD with a timeout (at most what is left of BUDGET_S), logs its status
	local name=$1 lim=$2 s e rc left
	shift 2
	s=$(date +%s)
	left=$((BUDGET_S - (s - t0)))
	[ "$lim" -gt "$left" ] && lim=$left
	# (the log lines on stderr: a step's stdout may be redirected to its JSON file)
	if [ "$lim" -lt 10 ]; then
		echo "=== $name: skipped ($left s left of BUDGET_S=$BUDGET_S)" >&2
		return 124
	fi
	echo "=== $name: $*" >&2
	timeout "$lim" "$@"
	rc=$?
	e=$(date +%s)
	echo "=== $name: rc=$rc in $((e - s)) s (at $((e - t0)) s)" >&2
	return $rc
}

[ -f .dev.tar.xz ] || { echo "device_check.sh: no .dev.tar.xz (scripts/device_pack.sh, then carry it)"; exit 2; }
W=/tmp/strata-dev
rm -rf "$W" && mkdir -p "$W" && tar -C "$W" -xJf .dev.tar.xz || exit 2
DEV_ENV=$W/.dev/env.sh . "$W/.dev/env.sh"
S=$W/.dev/strata

# CUDA's libraries as this machine has them: the toolkit's folders, then the Python packages'
libdirs=$(for n in libcudart.so.13 libcupti.so.13 libcublas.so.13 libcublasLt.so.13 libnccl.so.2; do
	find /usr/local/cuda/ /usr/local/cuda/extras/ /usr/lib/x86_64-linux-gnu/ /opt/ /usr/local/lib/ -name "$n" 2>/dev/null | head -n 1
done | xargs -r -n 1 dirname | awk '!seen[$0]++' | paste -sd: -)
export LD_LIBRARY_PATH="${LD_LIBRARY_PATH:-}${libdirs:+:$libdirs}"
echo "CUDA libraries from: $libdirs"
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv
gpu=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -n 1)
case $gpu in *H200*) cluster=dgx-h200 ;; *H100*) cluster=dgx-h100 ;; *A100*) cluster=dgx-a100-80g ;; *) cluster=dgx-h100 ;; esac
echo "GPU: $gpu; cluster preset for the simulation: $cluster"
ldd "$S" | grep -E 'not found|cuda|nccl|cupti' || true

# 1. numerics: each tiny preset on the GPU against the CPU reference (one rank)
: >"$OUT/tiny.jsonl"
for m in tiny-gpt tiny-llama tiny-moe; do
	step "$m" 120 "$S" run --backend cuda --model "$m" --plan tp=1,pp=1,dp=1,mbs=2,gbs=8,seq=128 --steps 3 --check \
		--json >"$OUT/tiny_$m.json" && cat "$OUT/tiny_$m.json" >>"$OUT/tiny.jsonl"
	rm -f "$OUT/tiny_$m.json"
done
# 2. the GPU's rates, quickly
step "profile --quick" 90 "$S" profile --quick --out "$OUT/quick.json"
prof=()
[ -s "$OUT/quick.json" ] && prof=(--profile "$OUT/quick.json")
# 3. a real-sized model, measured against the simulation of the same program
plan=tp=1,pp=1,dp=1,mbs=1,gbs=4,seq=2048,dtype=fp32
step "gpt-1.7b" 240 "$S" run --backend cuda --model gpt-1.7b --plan "$plan" --cluster "$cluster" --gpus 1 \
	--steps "$STEPS" --compare "${prof[@]}" --trace "$OUT/real_trace.json" --json >"$OUT/real.json"
# 4. the full profile with the real run's shapes (issue 6), in the time left
left=$((BUDGET_S - ($(date +%s) - t0)))
if [ "$left" -gt 30 ]; then
	step "profile" "$PROFILE_S" "$S" profile --model gpt-1.7b --plan "$plan" --out "$OUT/profile.json" ||
		rm -f "$OUT/profile.json"
fi
echo "device_check.sh: done in $(($(date +%s) - t0)) s; files: $(ls "$OUT" | paste -sd' ' -)"
