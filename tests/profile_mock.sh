#!/bin/sh
# `strata profile` against fake CUDA libraries (profiler/mock/run.sh), so that every path of
# profiler/cuda.c a GPU would take (CUPTI grouping, the events fallback and its reasons, dropped
# records, cuBLAS/cuBLASLt/NCCL calls, plan shapes, memory and time caps) is checked on machines
# without a GPU, CI included. The fakes are built against the CUDA headers this strata was
# configured with (CUDA_DIR, from configure). Skipped (77) when strata was built without CUDA.
#
# Environment (set by automake): STRATA, SRCDIR, CUDA_DIR. Exit 0 pass, 1 fail, 77 skip, 99 error.
SRCDIR=${SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
if [ -z "${CUDA_DIR:-}" ] || ! "$STRATA" profile --help | tail -1 | grep -q "built with CUDA"; then
	echo "SKIP: strata was built without CUDA"
	exit 77
fi
exec sh "$SRCDIR/profiler/mock/run.sh" "$STRATA" "$CUDA_DIR"
