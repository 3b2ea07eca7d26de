/* lower.h: the lowering layer (src/lower/): a plan becomes one program per rank (program.h, the
 * format both interpreters run: src/sim/ and exec/). Durations come from cost/, so simulated and
 * analytical numbers share their per-operator costs. Uses core, cost and search (the ILP plans it
 * lowers). */
#ifndef STRATA_LOWER_H
#define STRATA_LOWER_H

#include "cost/cost.h"
#include "search/search.h"
#include "src/core/core.h"
#include "src/lower/program.h"

/* How st_lower_plan lowers a plan (st_lower_opts_init: the default, what `strata sim` runs). */
typedef struct st_lower_opts {
    /* 1: every rank (tp x cp x dp x pp, Megatron's rank order; stage_tp: each stage's at its own tp, the
     * stages one after another), with the tp, cp and ep collectives
     * in real tp, cp and ep groups, the dp reduction in real dp x cp groups and the tied
     * embedding's all-reduce in real pairs of end-stage ranks: what the representatives stand for
     * (the tests prove both simulate alike); 0: one representative rank per pipeline stage */
    int every_rank;
    /* 1: each collective of the sharding at its operator, where Megatron-LM issues it, and the
     * compute between two collectives an instruction of its own (the form an executor runs); 0: a
     * chunk's compute of a micro-batch as one instruction and its collectives summed per group
     * kind after it (fewer instructions for the simulator; the same times up to rounding) */
    int per_op;
    /* strata run of an operator-level plan whose attention or experts run on the token rows (search/as_hybrid.c's
     * attn_rows, moe_rows): the executor runs the hybrid spec's program with other tp collectives inside its
     * compute (all-to-alls, gathers) than the spec's Megatron ones. ntp_stages = pp: per pipeline stage, one
     * micro-batch's tp collectives in forward, backward and a full recompute's forward, as the ILP prices the
     * resharding that runs (st_autoshard_work), replace the spec's in each chunk's "tp collectives" (fused form
     * only); 0: the spec's */
    int ntp_stages;
    double tp_fwd_s[ST_MAX_STAGES], tp_bwd_s[ST_MAX_STAGES], tp_recompute_s[ST_MAX_STAGES];
} st_lower_opts;
void st_lower_opts_init(st_lower_opts *o);
/* Lowers a finalized plan (src/lower/lower.c). Durations come from the cost context, so simulated
 * and analytical numbers share their per-operator costs. Fills out (free with
 * st_lowered_destroy). */
int st_lower_plan(st_cost_ctx *ctx, const st_plan *p, const st_lower_opts *o, st_lowered *out, st_error *err);
/* st_lower_plan with the default options: one representative rank per stage, fused. */
int st_lower(st_cost_ctx *ctx, const st_plan *p, st_lowered *out, st_error *err);
/* st_lower_plan with every_rank. */
int st_lower_full(st_cost_ctx *ctx, const st_plan *p, st_lowered *out, st_error *err);
/* Lowers an ILP plan (st_autoshard_evaluate's result) to one representative program per stage
 * (src/lower/lower_as.c). */
int st_lower_autoshard(const st_autoshard_result *r, const st_cluster *c, const st_profile *prof, st_dtype dt,
                       st_lowered *out, st_error *err);

#endif
