/* exec.h: the executor layer (exec/): the second interpreter of the per-rank programs (program.h),
 * running them for real: one process per rank, MPI + BLAS on CPU, NCCL + cuBLAS on GPU (DESIGN.md,
 * "one program, two interpreters"; issue 18 builds the runtime). Uses core, cost, lower and traces.
 *
 * What is here now: the backends by name, and the measure pass an executor runs before anything
 * else (ggml's and llm.c's "one arena per rank, sized before running"): the memory a rank's
 * program needs, from the lowering's alloc/free bytes, in the order the rank issues them. */
#ifndef STRATA_EXEC_H
#define STRATA_EXEC_H

#include "src/core/core.h"
#include "src/lower/lower.h"

typedef enum { ST_EXEC_CPU, ST_EXEC_CUDA, ST_EXEC_COUNT } st_exec_backend;
const char *st_exec_backend_name(st_exec_backend b); /* "cpu", "cuda" */
int st_exec_backend_parse(const char *s, st_exec_backend *out); /* 0 or ST_EINVAL */

/* The arena a rank's program needs when its instructions run one after another in program order
 * (the order one host thread issues them in): its base bytes plus the highest running sum of
 * alloc_bytes (taken when an instruction starts) less free_bytes (given back when it ends). An
 * interpreter that runs streams side by side may hold more at once (the simulator's peak is the
 * one that counts for fitting): this is the lower bound an arena must have. Bytes. */
double st_exec_arena_bytes(const st_program *pg);

#endif
