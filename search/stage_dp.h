/* stage_dp.h: Alpa's inter-operator pass (Zheng et al. OSDI'22, section 5.2; issue 4).
 *
 * Cuts a sequence of L layers (already coarsened by the caller: one unit may stand for several
 * transformer blocks) into S contiguous pipeline stages and gives each stage a sub-mesh of the
 * cluster, minimising the 1F1B iteration latency
 *
 *     T = sum_i t_i + (B - 1) * max_i t_i
 *
 * (t_i: stage i's time for one micro-batch, forward + backward; B: micro-batches), using every
 * device of the N x M cluster exactly once. Sub-mesh shapes are Alpa's: (1, 1), (1, 2), (1, 4), ...
 * (1, M) inside one node and (n, M) for n = 2..N whole nodes, which always tile the cluster when
 * their sizes sum to N * M (Alpa, Theorem 1). */
#ifndef STRATA_SEARCH_STAGE_DP_H
#define STRATA_SEARCH_STAGE_DP_H

#include "search/search.h"

typedef struct st_submesh {
    int nodes; /* n */
    int gpus;  /* GPUs per node used: a power of two <= M when nodes == 1, else M */
} st_submesh;

/* Time of one micro-batch (fwd + bwd, seconds) of layers [first, last) on sub-mesh `mesh` when
 * `stages_after` stages follow this one (1F1B keeps stages_after + 1 micro-batches of activations
 * alive, so memory, and with it feasibility, depends on it), the mesh's devices starting at device
 * `offset` (stages take consecutive devices in stage order). Returns INFINITY when the stage does
 * not fit or the mesh cannot run it. Must be deterministic, and may depend on `offset` only through
 * the device groups (st_stage_dp_opts.group_gpus) the stage's devices lie in: the DP prices one
 * offset per (stage, groups) and uses it wherever the stage lands in the same groups. The DP may
 * call it many times with the same arguments (cache inside the callback when pricing is expensive). */
typedef double (*st_stage_cost_fn)(void *arg, int first, int last, st_submesh mesh, int stages_after, int offset);

typedef struct st_stage_dp_opts {
    int nlayers;          /* L >= 1 */
    int nodes, gpus_per_node; /* N, M (M a power of two) */
    int64_t microbatches; /* B >= 1 */
    int max_stages;       /* 0 = min(L, N * M, ST_MAX_STAGES) */
    /* Device groups of different speed (a mixed cluster's node groups, issue 19): group g holds the
     * next group_gpus[g] devices in order, the last group every device after them. 0 groups: one. */
    int ngroups;
    int group_gpus[ST_MAX_GROUPS];
    st_stage_cost_fn cost;
    void *arg;
} st_stage_dp_opts;

typedef struct st_stage_dp_result {
    int nstages;
    int first[ST_MAX_STAGES + 1]; /* stage i holds layers [first[i], first[i + 1]); first[nstages] = L */
    st_submesh mesh[ST_MAX_STAGES];
    double stage_s[ST_MAX_STAGES];
    double max_stage_s;
    double total_s;       /* T */
    int64_t cost_calls;   /* callback invocations */
    double solve_time_s;
} st_stage_dp_result;

/* Returns 0; ST_ENOPLAN when no cut fits (every choice infinite; err says so); ST_EINVAL for bad
 * options (err names the field). */
int st_stage_dp(const st_stage_dp_opts *o, st_stage_dp_result *out, st_error *err);

/* Exhaustive reference (tests only): every composition of L into stages and every sequence of
 * sub-mesh shapes that sums to N * M. Same contract. */
int st_stage_dp_brute(const st_stage_dp_opts *o, st_stage_dp_result *out, st_error *err);

#endif
