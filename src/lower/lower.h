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

/* Pipelines whose stages run on meshes of different shapes (src/lower/lower_stages.c): an operator-level
 * plan's stages, each its own hybrid plan. A stage's layout: its tp x dp ranks (cp 1) `copies` times (the
 * ILP's mesh axes that split nothing), rank first + c + copies x (t + tp x q) for copy c, tp rank t, dp rank
 * q; its residual stream by the micro-batch's N token rows, dp rank q holding the q-th N / dp of them and,
 * with sp, tp rank t the t-th share of those (without sp all of them), every copy the same. */
typedef struct st_stage_shape {
    int tp, dp, sp;
    int copies; /* >= 1 */
    int first;  /* its first rank */
} st_stage_shape;
int st_stage_width(const st_stage_shape *s); /* its ranks: tp x dp x copies */
/* the rows [*lo, *lo + *n) of the micro-batch's N that device i (0 .. width - 1) of stage s holds */
void st_stage_rows(const st_stage_shape *s, int64_t N, int i, int64_t *lo, int64_t *n);
/* The cross-mesh exchange of a residual stream (an activation forward, its gradient backward) from stage
 * `from` to stage `to`: the rows [*lo, *lo + *n) of the micro-batch's N that device src of `from` sends to
 * device dst of `to` (*n 0: none). Every device of `to` receives each of its rows once, from a device that
 * holds it; where several hold a block (copies, or tp ranks without sp) the receiver's index picks one. */
void st_stage_exchange(const st_stage_shape *from, const st_stage_shape *to, int64_t N, int src, int dst, int64_t *lo,
                       int64_t *n);
/* Lowers the pipeline of nstages stages, stage d running plans[d] (pp nstages, vp 1, cp 1, 1f1b or gpipe, the
 * same micro-batch count and rows of a micro-batch: mbs x dp x seq) on copies[d] copies of its ranks, each
 * with opts[d] (its own tp collectives, st_lower_opts' ntp_stages), to every rank in the layout above: each
 * stage's programs from its plan's every-rank lowering, its groups per copy, the pipeline's transfers as the
 * cross-mesh exchange's pairs, the tied embedding's all-reduce in groups of the end stages' devices of one tp
 * rank (each stage's sum added by one of them: exec/cpu.c). No links (route -1). 0, ST_EINVAL (err says why:
 * plans that are not one pipeline, a tied embedding split otherwise on the end stages), ST_ENOMEM. */
int st_lower_stages(st_cost_ctx *ctx, const st_plan *const *plans, const int *copies, const st_lower_opts *opts,
                    int nstages, st_lowered *out, st_error *err);

#endif
