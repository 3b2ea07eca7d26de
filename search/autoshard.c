/* autoshard.c: operator-level auto-sharding (see autoshard.h; issue 4).
 *
 * Per logical mesh, every operator gets its candidate shardings (one label per mesh axis); each is
 * priced with cost/: compute on the local share (st_cost_op_time), the weight-gradient reduction
 * over the axes whose split leaves a weight's gradient partial (the data-parallel all-reduce falls
 * out of this rule: splitting the batch leaves every weight's gradient partial; with the
 * distributed optimizer a reduce-scatter and the weights' all-gather), memory (weights, fp32
 * gradient and Adam state, the last sharded over the reduction group with ZeRO-1: cost/'s
 * st_cost_state_bytes; saved activations times the micro-batches 1F1B keeps in flight:
 * st_cost_inflight). Each strategy is priced for both ZeRO stages;
 * ctx.zero says which counts. Edges carry the resharding between the producer's output layout and the layout the
 * consumer needs, forward, and backward the mirror: the consumer's input gradient (partial along
 * the axes that split a label the input lacks, e.g. a column-parallel matmul's input) resharded to
 * the producer's output layout. Megatron's f/g operators come out of these two rules by themselves.
 * An MoE layer prices Megatron-Core's all-to-all token dispatcher: the combine mirrors the dispatch
 * (search/graph.c: a split of the tokens is the expert outputs' capacity split, so the outputs return
 * to their tokens' devices by an all-to-all, not an all-gather of every expert's), and the router's
 * output is resharded once, for the dispatch, which carries it to the combine (edge_source).
 *
 * Size control (Alpa, section 4.2 and 6): element-wise operators with one activation input whose
 * producer feeds only them follow that producer's layout and are merged into its ILP node (follow
 * sets); the repeated transformer block appears once, its costs multiplied by its layers, the edge
 * from one block's output to the next block's input counted layers - 1 times (block tying), so
 * the ILP's size does not grow with depth.
 *
 * Pipelines: search/stage_dp.c cuts the layers into stages over sub-meshes. A stage's time for k
 * layers comes from a small set of block assignments per (sub-mesh, logical mesh), the ILP's
 * optima under a ladder of per-layer memory limits (the epsilon-constraint method), each priced
 * exactly for the stage (k layers, head and tail with their own optimal sharding given the block's,
 * the activations of the micro-batches 1F1B keeps in flight). The chosen stages are then solved
 * once more, exactly, with their real memory limit: those ILPs are the reported plan.
 *
 * Mixed clusters (node groups, issue 19): stages take consecutive GPUs in stage order, ranks fill
 * the groups in order, so a stage's GPUs are known from the GPUs before it; each stage is priced on
 * the view of its own GPUs (st_cluster_view: its group's GPU and links, or the slowest of each when
 * it spans groups) under its own GPU's memory (AMP, Li et al. NeurIPS'22; HexiScale), and the
 * exchange between two stages on the view of both. The stage DP keys its table on the groups a
 * stage covers (search/stage_dp.c), so it can put more layers on the faster GPUs. */
#include "search/search.h"
#include "ilp.h"
#include "stage_dp.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The gradient accumulator's width: fp32, Megatron-LM's main_grad (as plans' default grad_bytes).
 * Model state per parameter (weights, this accumulator, Adam's states; sharded by ZeRO-1) comes
 * from cost/'s st_cost_state_bytes, as the estimate's does. */
#define GRAD_BYTES 4
/* Gradient bytes the data-parallel reduction moves per parameter (the fp32 accumulator), and with
 * the distributed optimizer the updated weights gathered after the step (st_cost_weight_bytes):
 * Megatron-LM docs/source/distrib_optimizer.md (reduce-scatter the fp32 gradients, all-gather the
 * bf16 parameters), as cost/estimate.c's dp_times prices zero=1. */
#define GRAD_REDUCE_BYTES GRAD_BYTES
/* Backward adds each weight gradient into the accumulator: read the 16-bit gradient, read and write
 * the fp32 accumulator (as src/core/opgraph.c's grad_accum). */
#define GRAD_ACCUM_BYTES 10.0

/* Micro-batches of activations a stage holds at its peak with `stages_after` stages after it:
 * 1F1B's, as for the first of stages_after + 1 stages (cost/'s st_cost_inflight). */
static double held_microbatches(int stages_after, int64_t microbatches) {
    return st_cost_inflight(ST_SCHED_1F1B, stages_after + 1, 1, 0, microbatches);
}

/* the framework's headroom (cost.h) is not the plan's to use */
double st_autoshard_memory_limit(const st_cluster *c) { return c->gpu.memory_bytes - st_cluster_reserved_bytes(c); }

void st_autoshard_opts_init(st_autoshard_opts *o) {
    memset(o, 0, sizeof *o);
    o->gbs = 1536; /* as strata plan: GPT-3 175B, 3.2M tokens of 2048 (Brown et al. 2020, Table 2.1) */
    o->dtype = ST_DT_BF16;
    o->attention = ST_ATTN_DEFAULT;
    o->microbatches = 1;
    o->zero = ST_AS_ZERO_AUTO;
}

/* ------------------------------------------------------------ strategies */

typedef struct strat {
    char lab[2];
    st_layout in[ST_G_MAXIN], out;
    double fwd_s, bwd_s; /* compute */
    double comm_s;       /* inside the op: the loss's statistics, an unresolved partial output */
    double sync_s[2];      /* gradient reduction, once per iteration [zero 0, zero 1] */
    double state_bytes[2]; /* weights + gradients + optimizer state [zero 0, zero 1] */
    double saved_bytes;  /* activations kept for backward, one micro-batch */
} strat;

typedef struct opstrats {
    int n;
    strat *s;
} opstrats;

typedef struct ctx {
    const st_graph *g;
    const st_cluster *c;
    const st_profile *prof;
    st_mesh mesh;
    st_dtype dt;
    int64_t microbatches;
    opstrats *ops; /* per graph op */
    int *sink;     /* per op: its output leaves the ILP (graph output or stage boundary) */
    int recompute; /* full activation recompute of the block's layers (Megatron-LM's "full"): each
                      layer keeps only its input and runs its forward again before its backward */
    int entering;  /* the activation the stage receives from the previous stage's mesh, or -1 */
    int zero;      /* distributed optimizer (ZeRO-1): which of a strategy's sync_s and state_bytes count */
} ctx;


static int alias_of(const st_gop *o, char l) {
    for (int i = 0; o->alias_from[i]; i++)
        if (o->alias_from[i] == l) return o->alias_to[i];
    return 0;
}

/* the dimension of a tensor with labels `lab` that label l (or its alias) splits, or -1 */
static int dim_of(const st_gop *o, const char *lab, char l) {
    const char *p = strchr(lab, l);
    if (p && *p) return (int)(p - lab);
    int a = alias_of(o, l);
    if (a && (p = strchr(lab, a)) && *p) return (int)(p - lab);
    return -1;
}

static int linear_type(st_gop_type t) {
    return t == ST_GOP_MATMUL || t == ST_GOP_EMBEDDING || t == ST_GOP_LOSS || t == ST_GOP_CONV ||
           t == ST_GOP_COMBINE;
}

/* fraction of a tensor one device holds under a layout */
static double frac(const st_mesh *m, st_layout l) {
    double f = 1;
    for (int a = 0; a < m->naxes; a++)
        if (l.ax[a] >= 0) f /= m->size[a];
    return f;
}

/* Layout of a tensor (labels lab) under the op's per-axis labels; 0 if a dimension does not divide. */
static int layout_of(const ctx *x, const st_gop *o, const char *lab, const st_gtensor *t, const char *split, int is_out,
                     st_layout *l) {
    l->ax[0] = l->ax[1] = -1;
    l->partial = 0;
    int64_t div[ST_G_MAXDIM];
    for (int d = 0; d < ST_G_MAXDIM; d++) div[d] = 1;
    for (int a = 0; a < x->mesh.naxes; a++) {
        if (!split[a]) continue;
        int d = dim_of(o, lab, split[a]);
        if (d >= 0) {
            l->ax[a] = (signed char)d;
            div[d] *= x->mesh.size[a];
        } else if (is_out) {
            if (!linear_type(o->type)) return 0;
            l->partial |= (unsigned char)(1u << a);
        }
    }
    for (int d = 0; d < t->ndim; d++)
        if (t->dim[d] % div[d]) return 0;
    return 1;
}

static double role_div(const ctx *x, const char *role, const char *split) {
    double f = 1;
    for (int a = 0; a < x->mesh.naxes; a++)
        if (split[a] && strchr(role, split[a])) f *= x->mesh.size[a];
    return f;
}


/* GEMM shape roles from the labels: batch in both inputs and the output, m in the first input and
 * the output, n in the second and the output, k contracted. One-input "matmuls" (attention scores
 * from the fused QKV tensor) use their own roles. */
static void gemm_roles(const st_gop *o, char *rm, char *rn, char *rk, char *rb) {
    rm[0] = rn[0] = rk[0] = rb[0] = 0;
    /* the presets' attention reads the fused QKV tensor: scores [s x d] . [d x t] and context
     * [s x t] . [t x d] per (batch, head), as src/core/opgraph.c shapes them */
    if (strcmp(o->name, "scores") == 0 && o->nin == 1) {
        strcpy(rm, "s"), strcpy(rn, "t"), strcpy(rb, "bn");
        return;
    }
    if (strcmp(o->name, "context") == 0 && strcmp(o->lab_out, "bsnd") == 0) {
        strcpy(rm, "s"), strcpy(rn, "d"), strcpy(rk, "t"), strcpy(rb, "bn");
        return;
    }
    if (o->nin < 2) return;
    const char *a = o->lab[0], *b = o->lab[1], *c = o->lab_out;
    char seen[32] = "";
    for (int i = 0; i < 3; i++)
        for (const char *p = i == 0 ? a : i == 1 ? b : c; *p; p++) {
            if (strchr(seen, *p)) continue;
            size_t n = strlen(seen);
            if (n + 1 >= sizeof seen) break;
            seen[n] = *p, seen[n + 1] = 0;
            int ia = strchr(a, *p) != NULL, ib = strchr(b, *p) != NULL, ic = strchr(c, *p) != NULL;
            char *dst = ia && ib && ic ? rb : ia && ic ? rm : ib && ic ? rn : ia && ib ? rk : NULL;
            if (dst) {
                size_t k = strlen(dst);
                dst[k] = *p, dst[k + 1] = 0;
            }
        }
}

static double role_size(const st_graph *g, const st_gop *o, const char *role) {
    double s = 1;
    for (const char *p = role; *p; p++) s *= st_gop_label_size(g, o, *p);
    return s;
}

/* Partial results inside an operator that no edge resolves: the loss's max/sum/target statistics
 * (Megatron's vocab-parallel cross-entropy all-reduces them per token; src/core/opgraph.c: T x 4
 * bytes), one all-reduce per axis that splits the vocabulary. steps (may be NULL) has room for 2. */
static double loss_comm(const ctx *x, int oi, const strat *s, st_reshard_step *steps, int *nsteps) {
    const st_graph *g = x->g;
    const st_gop *o = &g->ops[oi];
    double t = 0;
    int n = 0;
    if (s->out.partial && o->type == ST_GOP_LOSS) {
        double bytes = st_gtensor_numel(&g->t[o->in[0]]) / st_gop_label_size(g, o, 'v') * frac(&x->mesh, s->in[0]) * 4;
        for (int a = 0; a < x->mesh.naxes; a++)
            if (s->out.partial & (1u << a)) {
                double ti = st_cost_collective(x->c, x->prof, ST_COLL_ALLREDUCE, &x->mesh.grp[a], bytes);
                if (steps) steps[n] = (st_reshard_step){ST_COLL_ALLREDUCE, a, bytes, ti};
                n++;
                t += ti;
            }
    }
    if (nsteps) *nsteps = n;
    return t;
}

/* The mesh axes along which input i (a weight) of op o is reduced under s: those whose label the
 * weight lacks, which leave its gradient partial (the rule that is data parallelism). An axis that
 * splits nothing leaves every device the whole gradient: nothing to reduce there. */
static unsigned reduce_axes(const ctx *x, const st_gop *o, int i, const strat *s) {
    unsigned m = 0;
    for (int a = 0; a < x->mesh.naxes; a++)
        if (s->lab[a] && dim_of(o, o->lab[i], s->lab[a]) < 0) m |= 1u << a;
    return m;
}

/* The weight-gradient reduction of op oi under s, once per iteration, for ZeRO stage `zero`. Zero 0:
 * each weight's gradient (GRAD_REDUCE_BYTES per local parameter) is all-reduced along every axis
 * of reduce_axes. Zero 1 (Megatron-LM's distributed optimizer; Rajbhandari et al. 2020, section
 * 5.1): reduce-scattered instead, axis by axis from the innermost (the full gradient on the fastest
 * links, the outer axes on what is left: 1/size of it per axis done), and after the optimizer step
 * the updated weights (st_cost_weight_bytes each) are all-gathered back in the reverse order. With
 * the ring model (cost/comm.c) each axis then moves 3/4 of the all-reduce's bytes at most, in as
 * many latency steps; across nodes NCCL's tree all-reduce has fewer latency steps, so for small
 * weights zero 1 can be slower, and the stage's choice of zero weighs that. red_s[a], red_b[a],
 * gat_s[a], gat_b[a] (each may be NULL) receive each axis's parts: the reduction (all-reduce or
 * reduce-scatter) and the gather (zero 1). Returns the sum. */
static double grad_sync(const ctx *x, int oi, const strat *s, int zero, double *red_s, double *red_b, double *gat_s,
                        double *gat_b) {
    const st_gop *o = &x->g->ops[oi];
    const st_mesh *m = &x->mesh;
    double t = 0;
    for (int a = 0; a < m->naxes; a++) {
        if (red_s) red_s[a] = 0;
        if (red_b) red_b[a] = 0;
        if (gat_s) gat_s[a] = 0;
        if (gat_b) gat_b[a] = 0;
    }
    for (int i = 0; i < o->nin; i++) {
        const st_gtensor *T = &x->g->t[o->in[i]];
        if (!T->weight) continue;
        unsigned axes = reduce_axes(x, o, i, s);
        double p = st_gtensor_numel(T) * frac(m, s->in[i]), left = 1; /* share of the gradient still whole */
        for (int a = m->naxes - 1; a >= 0; a--) {
            if (!(axes & (1u << a))) continue;
            double rb = p * GRAD_REDUCE_BYTES * (zero ? left : 1), gb = p * st_cost_weight_bytes(x->dt) * left;
            double rt = st_cost_collective(x->c, x->prof, zero ? ST_COLL_REDUCESCATTER : ST_COLL_ALLREDUCE, &m->grp[a], rb);
            double gt = zero ? st_cost_collective(x->c, x->prof, ST_COLL_ALLGATHER, &m->grp[a], gb) : 0;
            t += rt + gt;
            if (red_s) red_s[a] += rt;
            if (red_b) red_b[a] += rb;
            if (gat_s) gat_s[a] += gt;
            if (gat_b && zero) gat_b[a] += gb;
            left /= m->size[a];
        }
    }
    return t;
}

/* The size of the group input i's gradient is reduced over (1: none): ZeRO-1 shards the optimizer
 * state over it. */
static double reduce_group(const ctx *x, const st_gop *o, int i, const strat *s) {
    unsigned axes = reduce_axes(x, o, i, s);
    double d = 1;
    for (int a = 0; a < x->mesh.naxes; a++)
        if (axes & (1u << a)) d *= x->mesh.size[a];
    return d;
}

/* The operator oi as one device of the mesh runs it under s (its labels and layouts): the work
 * divided by every axis that splits a label, HBM bytes by the share of its tensors the device holds
 * (plus the local weights' gradient accumulation in backward), a GEMM's shape by the axes that
 * split each of its roles. The ILP prices this; the lowering names it (st_as_step). */
static void local_op(const ctx *x, int oi, const strat *s, st_op *op) {
    const st_graph *g = x->g;
    const st_gop *o = &g->ops[oi];
    const st_mesh *m = &x->mesh;
    const char *split = s->lab;
    double work = 1; /* each splitting axis divides the work */
    for (int a = 0; a < m->naxes; a++)
        if (split[a]) work *= m->size[a];
    double full = st_gtensor_numel(&g->t[o->out]) * st_dtype_bytes(g->t[o->out].dtype), local = full * frac(m, s->out);
    double params_local = 0;
    for (int i = 0; i < o->nin; i++) {
        const st_gtensor *t = &g->t[o->in[i]];
        double tb = st_gtensor_numel(t) * st_dtype_bytes(t->dtype);
        full += tb;
        local += tb * frac(m, s->in[i]);
        if (t->weight) params_local += st_gtensor_numel(t) * frac(m, s->in[i]);
    }
    double bfrac = full > 0 ? local / full : 1;
    memset(op, 0, sizeof *op);
    op->name = o->name;
    op->cls = o->cls;
    op->fwd_flops = o->fwd_flops / work;
    op->bwd_flops = o->bwd_flops / work;
    op->fwd_bytes = o->fwd_bytes * bfrac;
    op->bwd_bytes = o->bwd_bytes * bfrac + params_local * GRAD_ACCUM_BYTES;
    op->kernels_fwd = o->kernels_fwd;
    op->kernels_bwd = o->kernels_bwd;
    op->quant = o->quant;
    if (o->cls == ST_OPC_ATTENTION) {
        /* the fused kernel's shape (graph.c: query and key lengths, head dim, batch x heads);
         * shardings split the batch or the heads, never a sequence or the head dim (nosplit) */
        op->m = o->gemm[0], op->n = o->gemm[1], op->k = o->gemm[2];
        op->batch = o->gemm[3] / role_div(x, "bn", split);
        op->causal = o->causal;
    } else if (o->cls == ST_OPC_GEMM || o->cls == ST_OPC_BGEMM) {
        char rm[8], rn[8], rk[8], rb[8];
        gemm_roles(o, rm, rn, rk, rb);
        const char *roles[4] = {rm, rn, rk, rb};
        double dims[4];
        for (int r = 0; r < 4; r++)
            dims[r] = (o->gemm[r] > 0 ? o->gemm[r] : role_size(g, o, roles[r])) / role_div(x, roles[r], split);
        op->m = dims[0], op->n = dims[1], op->k = dims[2], op->batch = dims[3];
    }
}

static int price_strat(ctx *x, int oi, const char *split, strat *s) {
    const st_graph *g = x->g;
    const st_gop *o = &g->ops[oi];
    const st_mesh *m = &x->mesh;
    memset(s, 0, sizeof *s);
    s->lab[0] = split[0], s->lab[1] = split[1];
    for (int i = 0; i < o->nin; i++)
        if (!layout_of(x, o, o->lab[i], &g->t[o->in[i]], split, 0, &s->in[i])) return 0;
    if (!layout_of(x, o, o->lab_out, &g->t[o->out], split, 1, &s->out)) return 0;

    double state[2] = {0, 0};
    for (int i = 0; i < o->nin; i++) {
        const st_gtensor *t = &g->t[o->in[i]];
        if (!t->weight || t->shared) continue; /* a shared weight's state is counted where it is first used */
        double p = st_gtensor_numel(t) * frac(m, s->in[i]);
        /* ZeRO-1: the optimizer state sharded over the gradient-reduction group (Megatron-LM
         * docs/source/distrib_optimizer.md: 6 + 12/d bytes per parameter with fp32 gradients) */
        st_state_bytes z0, z1;
        st_cost_state_bytes(x->dt, GRAD_BYTES, 0, ST_OFF_NONE, 1, &z0);
        st_cost_state_bytes(x->dt, GRAD_BYTES, 1, ST_OFF_NONE, reduce_group(x, o, i, s), &z1);
        state[0] += p * z0.total;
        state[1] += p * z1.total;
    }
    for (int z = 0; z < 2; z++) {
        s->sync_s[z] = grad_sync(x, oi, s, z, NULL, NULL, NULL, NULL);
        s->state_bytes[z] = state[z];
    }
    st_op op;
    local_op(x, oi, s, &op);
    s->fwd_s = st_cost_op_time(x->c, x->prof, &op, x->dt, 0);
    s->bwd_s = st_cost_op_time(x->c, x->prof, &op, x->dt, 1);

    /* saved activations, divided like the tensor they are measured on */
    st_layout ref = o->save_ref >= o->nin ? s->out : s->in[o->save_ref];
    s->saved_bytes = o->saved_bytes * frac(m, ref);

    s->comm_s = loss_comm(x, oi, s, NULL, NULL);
    return 1;
}

static int enum_strats(ctx *x, int oi, opstrats *out) {
    const st_gop *o = &x->g->ops[oi];
    char cand[24] = {0};
    int nc = 0;
    cand[nc++] = 0;
    for (int i = 0; i <= o->nin; i++)
        for (const char *p = i < o->nin ? o->lab[i] : o->lab_out; *p; p++) {
            int dup = 0;
            for (int k = 1; k < nc; k++) dup |= cand[k] == *p;
            if (dup || strchr(o->nosplit, *p) || strchr(o->alias_to, *p) || nc >= 23) continue;
            cand[nc++] = *p;
        }
    int n1 = x->mesh.naxes > 1 ? nc : 1;
    out->s = calloc((size_t)nc * (size_t)n1, sizeof *out->s);
    out->n = 0;
    if (!out->s) return ST_ENOMEM;
    for (int i = 0; i < nc; i++)
        for (int j = 0; j < n1; j++) {
            char split[2] = {cand[i], x->mesh.naxes > 1 ? cand[j] : 0};
            /* an axis of size 1 splits nothing */
            if ((split[0] && x->mesh.size[0] <= 1) || (split[1] && x->mesh.size[1] <= 1)) continue;
            if (price_strat(x, oi, split, &out->s[out->n])) out->n++;
        }
    return out->n > 0 ? 0 : ST_ENOPLAN;
}

static void ctx_free(ctx *x) {
    if (x->ops)
        for (int i = 0; i < x->g->nops; i++) free(x->ops[i].s);
    free(x->ops);
    free(x->sink);
    x->ops = NULL;
    x->sink = NULL;
}

static int ctx_init(ctx *x, const st_graph *g, const st_cluster *c, const st_profile *prof, const st_mesh *mesh,
                    st_dtype dt, int64_t microbatches, st_error *err) {
    memset(x, 0, sizeof *x);
    x->g = g, x->c = c, x->prof = prof, x->mesh = *mesh, x->dt = dt, x->microbatches = microbatches;
    x->entering = -1;
    x->ops = calloc((size_t)g->nops, sizeof *x->ops);
    x->sink = calloc((size_t)g->nops, sizeof *x->sink);
    if (!x->ops || !x->sink) return st_error_set(err, ST_ENOMEM, NULL, NULL, "out of memory");
    for (int i = 0; i < g->nops; i++) {
        int rc = enum_strats(x, i, &x->ops[i]);
        if (rc == ST_ENOMEM) return st_error_set(err, rc, NULL, NULL, "out of memory");
        if (rc) {
            /* cannot happen while "replicated" is always valid; kept as a guard */
            return st_error_set(err, ST_ENOPLAN, NULL, g->ops[i].name, "no valid sharding of operator '%s'", g->ops[i].name);
        }
    }
    return 0;
}

/* Where consumer co's input i is resharded from: the op returned (-1: none) and, with *via >= 0, that
 * op's layout of its input *via rather than its output. The tensor's producer, except for an MoE
 * combine's router input: a Megatron-style MoE layer reshards the router's output once, for the
 * dispatch, whose token dispatcher carries the probabilities with the tokens to the combine
 * (Megatron-Core's megatron/core/transformer/moe/token_dispatcher.py, MoEAlltoAllTokenDispatcher:
 * dispatch_preprocess permutes the probs with the tokens, dispatch_all_to_all sends both; no second
 * reduction of the logits; exec/model.c's moe_rows alike), so the combine reads them as the dispatch
 * holds them, and the backward sums the two consumers' gradients before one resharding back to the
 * router. present[op] (may be NULL: every op) >= 0 says which ops take part; a dispatch that does not
 * leaves the producer. */
static int edge_source(const st_graph *g, const int *present, int co, int i, int *via) {
    const st_gop *c = &g->ops[co];
    int t = c->in[i];
    *via = -1;
    if (c->type == ST_GOP_COMBINE && i > 0)
        for (int d = 0; d < g->nops; d++) {
            const st_gop *o = &g->ops[d];
            if (o->type != ST_GOP_DISPATCH || (present && present[d] < 0)) continue;
            for (int j = 1; j < o->nin; j++)
                if (o->in[j] == t) {
                    *via = j;
                    return d;
                }
        }
    return g->t[t].producer;
}

/* the layout of strategy a that an edge reshards from (edge_source's via) */
static st_layout src_layout(const strat *a, int via) { return via >= 0 ? a->in[via] : a->out; }

/* Resharding of tensor t from layout src (its producer's output, or edge_source's) to consumer op
 * c's input i, strategy b: forward into fwd[], backward (the input gradient, partial along the axes
 * that split a label the input lacks, back to src without partial sums) into bwd[] (each may be
 * NULL, else room for 2); returns the two times' sum. */
static double edge_steps(const ctx *x, int t, st_layout src, const st_gop *co, int i, const strat *b,
                         st_reshard_step *fwd, int *nf, st_reshard_step *bwd, int *nb) {
    const st_gtensor *T = &x->g->t[t];
    double bytes = st_gtensor_numel(T) * st_dtype_bytes(T->dtype);
    double tf = st_cost_reshard_steps(x->c, x->prof, &x->mesh, bytes, src, b->in[i], fwd, nf);
    st_layout gsrc = b->in[i], gdst = src;
    for (int ax = 0; ax < x->mesh.naxes; ax++)
        if (b->lab[ax] && gsrc.ax[ax] < 0 && dim_of(co, co->lab[i], b->lab[ax]) < 0) gsrc.partial |= (unsigned char)(1u << ax);
    gdst.partial = 0;
    return tf + st_cost_reshard_steps(x->c, x->prof, &x->mesh, bytes, gsrc, gdst, bwd, nb);
}

/* How an activation arrives from the previous stage's mesh (Zhuang et al. 2023, cross-mesh
 * resharding with broadcast-based communication): every device of this mesh receives a distinct
 * share, each axis splitting the first dimension that still divides (replicated along an axis that
 * divides none). What the consumers need beyond that is a resharding inside this mesh (an
 * all-gather on its fast links), priced as any edge; its producer is this strategy. */
static strat arrival(const ctx *x, int t) {
    strat a;
    memset(&a, 0, sizeof a);
    a.out.ax[0] = a.out.ax[1] = -1;
    const st_gtensor *T = &x->g->t[t];
    int64_t left[ST_G_MAXDIM];
    for (int d = 0; d < T->ndim; d++) left[d] = T->dim[d];
    for (int ax = 0; ax < x->mesh.naxes; ax++) {
        if (x->mesh.size[ax] <= 1) continue;
        for (int d = 0; d < T->ndim; d++)
            if (left[d] % x->mesh.size[ax] == 0) {
                a.out.ax[ax] = (signed char)d;
                left[d] /= x->mesh.size[ax];
                break;
            }
    }
    return a;
}

/* Consumer co's input i reads the entering activation (its producer is on the previous stage). */
static int reads_entering(const ctx *x, const double *mult, int co, int i) {
    int t = x->g->ops[co].in[i], pr = x->g->t[t].producer;
    return x->entering >= 0 && t == x->entering && (pr < 0 || !mult || mult[pr] <= 0);
}

static double edge_cost(const ctx *x, int t, st_layout src, const st_gop *co, int i, const strat *b) {
    if (x->recompute && co->block) { /* the recomputed forward reshards the input again */
        const st_gtensor *T = &x->g->t[t];
        double again = st_cost_reshard(x->c, x->prof, &x->mesh, st_gtensor_numel(T) * st_dtype_bytes(T->dtype), src,
                                       b->in[i], NULL, NULL);
        return again + edge_steps(x, t, src, co, i, b, NULL, NULL, NULL, NULL);
    }
    return edge_steps(x, t, src, co, i, b, NULL, NULL, NULL, NULL);
}

/* ------------------------------------------------------------ ILP assembly */

/* Which ops take part and how often: mult[op] = 0 (absent), 1, or the layers of the block. */
typedef struct scope {
    double *mult;      /* per op */
    int *fixed;        /* per op: -1 free, else the only strategy allowed */
    double inflight;   /* micro-batches whose activations are alive at the peak */
    double cross_mult; /* block output -> next block input edges (layers - 1) */
    double mem_limit;  /* bytes, <= 0 none */
    double time_limit_s;
} scope;

typedef struct problem {
    int nnodes;
    int *node_of;     /* per op: ILP node, -1 absent */
    int *leader;      /* per node: its leading op */
    int *follow_src;  /* per op: the op it follows (same node), or -1 */
    int *nstrat;      /* per node */
    int **sidx;       /* per node, per node strategy: the leader's strategy index */
    int **fidx;       /* per op, per node strategy of its node: the op's own strategy index */
    double **cost, **mem;
    st_ilp_edge *edges;
    int nedges, capedges;
    double **ecost;   /* edge cost matrices */
} problem;

static void problem_free(problem *p, int nops) {
    for (int i = 0; i < p->nnodes; i++) {
        free(p->sidx[i]);
        free(p->cost[i]);
        free(p->mem[i]);
    }
    for (int i = 0; p->fidx && i < nops; i++) free(p->fidx[i]);
    for (int i = 0; i < p->nedges; i++) free(p->ecost[i]);
    free(p->node_of), free(p->leader), free(p->follow_src), free(p->nstrat), free(p->sidx), free(p->fidx);
    free(p->cost), free(p->mem), free(p->edges), free(p->ecost);
    memset(p, 0, sizeof *p);
}

/* the follower's strategy whose input layout is the producer's output without partial sums */
static int follow_match(const ctx *x, int f, const strat *ps) {
    const opstrats *fs = &x->ops[f];
    st_layout want = ps->out;
    want.partial = 0;
    for (int k = 0; k < fs->n; k++) {
        const st_layout *l = &fs->s[k].in[0];
        if (l->ax[0] == want.ax[0] && (x->mesh.naxes < 2 || l->ax[1] == want.ax[1]) && fs->s[k].out.partial == 0) return k;
    }
    return -1;
}

static double strat_cost(const ctx *x, const strat *s) {
    return s->fwd_s + s->bwd_s + s->comm_s + s->sync_s[x->zero] / (double)x->microbatches;
}

/* Resolving the partial sums of op o's output when it leaves the ILP (x->sink); steps (may be NULL,
 * room for 2) receive the collectives. */
static double sink_cost(const ctx *x, int o, const strat *s, st_reshard_step *steps, int *nsteps) {
    const st_gop *op = &x->g->ops[o];
    if (nsteps) *nsteps = 0;
    if (!x->sink[o] || !s->out.partial || op->type == ST_GOP_LOSS) return 0;
    const st_gtensor *T = &x->g->t[op->out];
    st_layout dst = s->out;
    dst.partial = 0;
    return st_cost_reshard_steps(x->c, x->prof, &x->mesh, st_gtensor_numel(T) * st_dtype_bytes(T->dtype), s->out, dst,
                                 steps, nsteps);
}

/* Bytes a layer keeps under full recompute: its input, the previous layer's output as the op that
 * writes it (strategy s) holds it. */
static double layer_input_bytes(const ctx *x, const strat *s) {
    const st_gtensor *T = &x->g->t[x->g->block_out];
    return st_gtensor_numel(T) * st_dtype_bytes(T->dtype) * frac(&x->mesh, s->out);
}

static double strat_mem(const ctx *x, const strat *s, double inflight) {
    return s->state_bytes[x->zero] + s->saved_bytes * inflight;
}

static int add_edge(problem *p, int u, int v, double *mat) {
    if (p->nedges == p->capedges) {
        int cap = p->capedges ? 2 * p->capedges : 64;
        st_ilp_edge *e = realloc(p->edges, (size_t)cap * sizeof *e);
        if (!e) return ST_ENOMEM;
        p->edges = e;
        double **ec = realloc(p->ecost, (size_t)cap * sizeof *ec);
        if (!ec) return ST_ENOMEM;
        p->ecost = ec;
        p->capedges = cap;
    }
    p->ecost[p->nedges] = mat;
    p->edges[p->nedges] = (st_ilp_edge){u, v, mat};
    p->nedges++;
    return 0;
}

/* strategy of op `o` when its node takes node-strategy k */
static const strat *op_strat(const ctx *x, const problem *p, int o, int k) {
    return &x->ops[o].s[p->fidx[o][k]];
}

/* One edge (tensor t from op pr, its output or with via >= 0 its input via, to consumer op co, input
 * i), with multiplicity w. */
static int tensor_edge(const ctx *x, problem *p, int t, int pr, int via, int co, int i, double w) {
    int u = p->node_of[pr], v = p->node_of[co];
    const st_gop *cop = &x->g->ops[co];
    if (u == v) {
        /* inside one node (a follower, or a tied block whose output feeds its own input op) */
        for (int k = 0; k < p->nstrat[u]; k++)
            p->cost[u][k] += w * edge_cost(x, t, src_layout(op_strat(x, p, pr, k), via), cop, i, op_strat(x, p, co, k));
        return 0;
    }
    int nu = p->nstrat[u], nv = p->nstrat[v];
    double *mat = malloc((size_t)nu * (size_t)nv * sizeof *mat);
    if (!mat) return ST_ENOMEM;
    for (int a = 0; a < nu; a++)
        for (int b = 0; b < nv; b++)
            mat[a * nv + b] = w * edge_cost(x, t, src_layout(op_strat(x, p, pr, a), via), cop, i, op_strat(x, p, co, b));
    int rc = add_edge(p, u, v, mat);
    if (rc) free(mat);
    return rc;
}

static int build(const ctx *x, const scope *sc, problem *p) {
    const st_graph *g = x->g;
    int n = g->nops;
    memset(p, 0, sizeof *p);
    p->node_of = malloc((size_t)n * sizeof *p->node_of);
    p->follow_src = malloc((size_t)n * sizeof *p->follow_src);
    p->leader = malloc((size_t)n * sizeof *p->leader);
    p->nstrat = calloc((size_t)n, sizeof *p->nstrat);
    p->sidx = calloc((size_t)n, sizeof *p->sidx);
    p->fidx = calloc((size_t)n, sizeof *p->fidx);
    p->cost = calloc((size_t)n, sizeof *p->cost);
    p->mem = calloc((size_t)n, sizeof *p->mem);
    if (!p->node_of || !p->follow_src || !p->leader || !p->nstrat || !p->sidx || !p->fidx || !p->cost || !p->mem)
        return ST_ENOMEM;
    for (int i = 0; i < n; i++) p->node_of[i] = -1, p->follow_src[i] = -1;

    /* nodes in topological order; followers join their producer's node */
    for (int ti = 0; ti < n; ti++) {
        int o = g->topo[ti];
        if (sc->mult[o] <= 0) continue;
        const st_gop *op = &g->ops[o];
        int src = -1;
        if (op->type == ST_GOP_ELEMWISE && op->nin == 1 && sc->fixed[o] < 0) {
            const st_gtensor *t = &g->t[op->in[0]];
            int pr = t->producer;
            if (pr >= 0 && p->node_of[pr] >= 0 && t->nconsumers == 1 && sc->mult[pr] == sc->mult[o] &&
                sc->fixed[p->leader[p->node_of[pr]]] < 0 && !x->sink[pr]) {
                int ok = 1;
                for (int k = 0; ok && k < p->nstrat[p->node_of[pr]]; k++)
                    ok = follow_match(x, o, op_strat(x, p, pr, k)) >= 0;
                if (ok) src = pr;
            }
        }
        if (src >= 0) {
            int u = p->node_of[src];
            p->node_of[o] = u;
            p->follow_src[o] = src;
            p->fidx[o] = malloc((size_t)p->nstrat[u] * sizeof(int));
            if (!p->fidx[o]) return ST_ENOMEM;
            for (int k = 0; k < p->nstrat[u]; k++) p->fidx[o][k] = follow_match(x, o, op_strat(x, p, src, k));
            continue;
        }
        int u = p->nnodes++;
        p->node_of[o] = u;
        p->leader[u] = o;
        int ns = sc->fixed[o] >= 0 ? 1 : x->ops[o].n;
        p->nstrat[u] = ns;
        p->sidx[u] = malloc((size_t)ns * sizeof(int));
        p->fidx[o] = malloc((size_t)ns * sizeof(int));
        if (!p->sidx[u] || !p->fidx[o]) return ST_ENOMEM;
        for (int k = 0; k < ns; k++) p->sidx[u][k] = p->fidx[o][k] = sc->fixed[o] >= 0 ? sc->fixed[o] : k;
    }
    for (int u = 0; u < p->nnodes; u++) {
        p->cost[u] = calloc((size_t)p->nstrat[u], sizeof(double));
        p->mem[u] = calloc((size_t)p->nstrat[u], sizeof(double));
        if (!p->cost[u] || !p->mem[u]) return ST_ENOMEM;
    }
    /* node costs and memory: every op of the node */
    for (int o = 0; o < n; o++) {
        int u = p->node_of[o];
        if (u < 0) continue;
        for (int k = 0; k < p->nstrat[u]; k++) {
            const strat *s = op_strat(x, p, o, k);
            /* an output that leaves the ILP must be whole: resolve partial sums by all-reduce (once:
             * only the stage's last layer's output leaves it) */
            p->cost[u][k] += sc->mult[o] * strat_cost(x, s) + sink_cost(x, o, s, NULL, NULL);
            if (x->recompute && g->ops[o].block) {
                /* the forward again; each layer keeps only its input (the previous layer's output,
                 * counted at the op that writes it), and one layer's activations live while it is
                 * recomputed and run backward */
                p->cost[u][k] += sc->mult[o] * s->fwd_s;
                p->mem[u][k] += sc->mult[o] * s->state_bytes[x->zero] + s->saved_bytes;
                if (g->block_out >= 0 && o == g->t[g->block_out].producer)
                    p->mem[u][k] += sc->mult[o] * sc->inflight * layer_input_bytes(x, s);
            } else {
                p->mem[u][k] += sc->mult[o] * strat_mem(x, s, sc->inflight);
            }
        }
    }
    /* the activation from the previous stage, resharded from how it arrives (once: the first layer) */
    for (int co = 0; co < n && x->entering >= 0; co++) {
        if (sc->mult[co] <= 0) continue;
        for (int i = 0; i < g->ops[co].nin; i++) {
            if (!reads_entering(x, sc->mult, co, i)) continue;
            strat a = arrival(x, g->ops[co].in[i]);
            int u = p->node_of[co];
            for (int k = 0; k < p->nstrat[u]; k++)
                p->cost[u][k] += edge_cost(x, g->ops[co].in[i], a.out, &g->ops[co], i, op_strat(x, p, co, k));
        }
    }
    /* edges */
    for (int co = 0; co < n; co++) {
        if (sc->mult[co] <= 0) continue;
        const st_gop *op = &g->ops[co];
        for (int i = 0; i < op->nin; i++) {
            int t = op->in[i], via;
            int pr = edge_source(g, p->node_of, co, i, &via);
            if (pr < 0 || sc->mult[pr] <= 0) continue;
            double w = sc->mult[co] < sc->mult[pr] ? sc->mult[co] : sc->mult[pr];
            int rc = tensor_edge(x, p, t, pr, via, co, i, w);
            if (rc) return rc;
        }
        /* tied blocks: the last block's output feeds the next block's input consumers */
        if (sc->cross_mult > 0 && g->block_in >= 0 && g->block_out >= 0 && op->block) {
            for (int i = 0; i < op->nin; i++) {
                if (op->in[i] != g->block_in) continue;
                int pr = g->t[g->block_out].producer;
                if (pr < 0 || sc->mult[pr] <= 0) continue;
                int rc = tensor_edge(x, p, g->block_out, pr, -1, co, i, sc->cross_mult);
                if (rc) return rc;
            }
        }
    }
    return 0;
}

typedef struct solved {
    int nodes;    /* ILP nodes, and its variables as formulated (one per strategy and per edge pair) */
    int64_t vars;
    int *strat;   /* per op: strategy index, -1 absent */
    double cost;  /* ILP objective */
    double mem;
    st_ilp_result r;
} solved;

static int solve(const ctx *x, const scope *sc, solved *out, st_error *err) {
    problem p;
    int n = x->g->nops;
    memset(out, 0, sizeof *out);
    int rc = build(x, sc, &p);
    if (rc) {
        problem_free(&p, n);
        return st_error_set(err, ST_ENOMEM, NULL, NULL, "out of memory building the ILP");
    }
    st_ilp ilp = {.n = p.nnodes,
                  .nstrat = p.nstrat,
                  .cost = (const double *const *)p.cost,
                  .mem = (const double *const *)p.mem,
                  .mem_limit = sc->mem_limit,
                  .nedges = p.nedges,
                  .edges = p.edges,
                  .time_limit_s = sc->time_limit_s};
    int *choice = malloc((size_t)(p.nnodes > 0 ? p.nnodes : 1) * sizeof *choice);
    out->strat = malloc((size_t)n * sizeof *out->strat);
    if (!choice || !out->strat) {
        free(choice);
        problem_free(&p, n);
        return st_error_set(err, ST_ENOMEM, NULL, NULL, "out of memory");
    }
    out->nodes = p.nnodes;
    for (int u = 0; u < p.nnodes; u++) out->vars += p.nstrat[u];
    for (int e = 0; e < p.nedges; e++) out->vars += (int64_t)p.nstrat[p.edges[e].u] * p.nstrat[p.edges[e].v];
    rc = p.nnodes > 0 ? st_ilp_solve(&ilp, choice, &out->r, err) : 0;
    if (rc == 0) {
        for (int o = 0; o < n; o++) out->strat[o] = p.node_of[o] >= 0 ? p.fidx[o][choice[p.node_of[o]]] : -1;
        out->cost = out->r.objective;
        out->mem = out->r.mem_bytes;
    }
    free(choice);
    problem_free(&p, n);
    if (rc) {
        free(out->strat);
        out->strat = NULL;
    }
    return rc;
}

/* ------------------------------------------------------------ pricing a fixed assignment */

double st_autoshard_price(const st_graph *g, const st_cluster *c, const st_profile *prof, const st_mesh *mesh,
                          st_dtype dt, int64_t microbatches, const char (*labels)[2], double *mem_bytes) {
    ctx x;
    double total = INFINITY;
    if (ctx_init(&x, g, c, prof, mesh, dt, microbatches > 0 ? microbatches : 1, NULL)) goto out;
    int n = g->nops;
    double *mult = malloc((size_t)n * sizeof *mult);
    int *fixed = malloc((size_t)n * sizeof *fixed);
    if (!mult || !fixed) {
        free(mult), free(fixed);
        goto out;
    }
    int ok = 1;
    for (int o = 0; o < n && ok; o++) {
        mult[o] = g->ops[o].block ? (double)g->repeat : 1;
        fixed[o] = -1;
        for (int k = 0; k < x.ops[o].n; k++)
            if (x.ops[o].s[k].lab[0] == labels[o][0] && (mesh->naxes < 2 || x.ops[o].s[k].lab[1] == labels[o][1]))
                fixed[o] = k;
        ok = fixed[o] >= 0;
    }
    if (ok) {
        for (int o = 0; o < n; o++) x.sink[o] = g->t[g->ops[o].out].nconsumers == 0;
        scope sc = {.mult = mult, .fixed = fixed, .inflight = 1, .cross_mult = (double)(g->repeat - 1), .time_limit_s = 10};
        solved s;
        if (solve(&x, &sc, &s, NULL) == 0) {
            total = s.cost;
            if (mem_bytes) *mem_bytes = s.mem;
            free(s.strat);
        }
    }
    free(mult), free(fixed);
out:
    ctx_free(&x);
    return total;
}

/* ------------------------------------------------------------ logical meshes */

/* The logical meshes tried on an n x m sub-mesh: one axis over all of it, and for several nodes
 * nodes x GPUs (the inner axis on NVLink, the outer across NICs). */
static int logical_meshes(const st_cluster *c, int nodes, int gpus, st_mesh *out) {
    int k = 0;
    int one[1] = {nodes * gpus};
    st_mesh_init(&out[k++], c, nodes, gpus, 1, one);
    if (nodes > 1 && gpus > 1) {
        int two[2] = {nodes, gpus};
        st_mesh_init(&out[k++], c, nodes, gpus, 2, two);
    }
    return k;
}

/* ------------------------------------------------------------ stage costs for the DP */

typedef struct cand {
    int *strat;           /* per op (block ops), -1 elsewhere */
    double t_layer;       /* one layer, with the edge into the next layer */
    double W, A;          /* per layer: model state, saved activations of one micro-batch */
    double rc_t, rc_A;    /* full recompute: the time it adds per layer, and the input a layer keeps */
    double head_t, head_W, head_A, tail_t, tail_W, tail_A;
    int have_head, have_tail;
    int zero;             /* priced with the distributed optimizer (ZeRO-1) */
} cand;

/* the memory ladder's rungs per ZeRO stage */
#define LADDER 8

typedef struct lmesh {
    ctx x;
    int ncand;
    cand c[2 * LADDER];
} lmesh;

/* The cluster a stage on a range of GPUs is priced on, and its memory limit. */
typedef struct sview {
    st_cluster c;
    double mem_limit; /* bytes, <= 0 none */
} sview;

typedef struct mcache {
    int nodes, gpus, ready, nlog;
    const sview *v;
    lmesh log[2];
    double *memo; /* stage times by (units, head, tail, stages_after); NaN = not priced yet */
} mcache;

typedef struct dpctx {
    const st_graph *g;
    const st_cluster *c;
    const st_profile *prof;
    st_dtype dt;
    int64_t microbatches;
    double mem_limit, time_limit_s; /* mem_limit: the one given (<= 0: each stage's GPU's) */
    int zero_lo, zero_hi; /* the ZeRO stages tried per stage */
    sview *view[ST_MAX_GROUPS * ST_MAX_GROUPS]; /* by (first group, last group), made when first asked */
    mcache *cache;
    int ncache, capcache;
    int64_t solves;
    int failed; /* out of memory or a solver error inside the callback */
    st_error *err;
    struct cmemo *cmemo; /* custom graphs: stage times per sub-mesh */
    int ncmemo;
} dpctx;

static void scope_alloc(const st_graph *g, scope *sc, double *mult, int *fixed) {
    memset(sc, 0, sizeof *sc);
    sc->mult = mult;
    sc->fixed = fixed;
    for (int o = 0; o < g->nops; o++) mult[o] = 0, fixed[o] = -1;
}

static void sum_parts(const ctx *x, const int *idx, int want_block, double *W, double *A) {
    *W = *A = 0;
    for (int o = 0; o < x->g->nops; o++) {
        if (idx[o] < 0 || x->g->ops[o].block != want_block) continue;
        const strat *s = &x->ops[o].s[idx[o]];
        *W += s->state_bytes[x->zero];
        *A += s->saved_bytes;
    }
}

/* What full recompute does to a block assignment: the forward again (its compute and the resharding
 * into every block op, the edge from the previous layer included), and the layer input it keeps. */
static void recompute_parts(const ctx *x, const int *idx, double *dt, double *ain) {
    const st_graph *g = x->g;
    *dt = *ain = 0;
    for (int co = 0; co < g->nops; co++) {
        if (idx[co] < 0 || !g->ops[co].block) continue;
        const strat *b = &x->ops[co].s[idx[co]];
        *dt += b->fwd_s;
        const st_gop *op = &g->ops[co];
        for (int i = 0; i < op->nin; i++) {
            int t = op->in[i], via, pr = edge_source(g, idx, co, i, &via);
            if (t == g->block_in && g->block_out >= 0) t = g->block_out, pr = g->t[t].producer, via = -1;
            if (pr < 0 || idx[pr] < 0 || !g->ops[pr].block) continue;
            const st_gtensor *T = &g->t[t];
            *dt += st_cost_reshard(x->c, x->prof, &x->mesh, st_gtensor_numel(T) * st_dtype_bytes(T->dtype),
                                   src_layout(&x->ops[pr].s[idx[pr]], via), b->in[i], NULL, NULL);
        }
    }
    if (g->block_out >= 0) {
        int pr = g->t[g->block_out].producer;
        if (pr >= 0 && idx[pr] >= 0) *ain = layer_input_bytes(x, &x->ops[pr].s[idx[pr]]);
    }
}

/* Head (want_head) or tail ops' best sharding given block candidate cd; fills the cand fields. */
static int end_cost(dpctx *d, lmesh *lm, cand *cd, int head) {
    const st_graph *g = d->g;
    int n = g->nops;
    double *mult = malloc((size_t)n * sizeof *mult);
    int *fixed = malloc((size_t)n * sizeof *fixed);
    if (!mult || !fixed) {
        free(mult), free(fixed);
        return ST_ENOMEM;
    }
    scope sc;
    scope_alloc(g, &sc, mult, fixed);
    sc.inflight = 1;
    sc.time_limit_s = d->time_limit_s;
    lm->x.zero = cd->zero;
    /* the head ops come before the block in topological order, the tail ops after */
    int seen_block = 0;
    for (int ti = 0; ti < n; ti++) {
        int o = g->topo[ti];
        if (g->ops[o].block) {
            seen_block = 1;
            mult[o] = 1;
            fixed[o] = cd->strat[o];
        } else if (head ? !seen_block : seen_block) {
            mult[o] = 1;
        }
    }
    for (int o = 0; o < n; o++) lm->x.sink[o] = g->t[g->ops[o].out].nconsumers == 0;
    solved s;
    int rc = solve(&lm->x, &sc, &s, d->err);
    d->solves++;
    if (rc == 0) {
        /* what the end ops add beyond the fixed block (whose cost is t_layer less its cross edge) */
        double bt = 0;
        for (int o = 0; o < n; o++)
            if (g->ops[o].block) bt += strat_cost(&lm->x, &lm->x.ops[o].s[cd->strat[o]]);
        double t = s.cost - bt, W = 0, A = 0;
        for (int o = 0; o < n; o++) {
            if (g->ops[o].block || s.strat[o] < 0) continue;
            const strat *st = &lm->x.ops[o].s[s.strat[o]];
            W += st->state_bytes[lm->x.zero], A += st->saved_bytes;
        }
        if (head) cd->head_t = t, cd->head_W = W, cd->head_A = A, cd->have_head = 1;
        else cd->tail_t = t, cd->tail_W = W, cd->tail_A = A, cd->have_tail = 1;
        free(s.strat);
    }
    free(mult), free(fixed);
    return rc;
}

/* Block assignments of one logical mesh: the ILP's optimum, then optima under a ladder of per-layer
 * memory limits (epsilon-constraint), each a Pareto point of time against memory; one ladder per
 * ZeRO stage tried (the distributed optimizer changes both the time and the memory a sharding
 * costs, so the other stage's optima need not be its). */
static int make_cands(dpctx *d, lmesh *lm) {
    const st_graph *g = d->g;
    int n = g->nops;
    double *mult = malloc((size_t)n * sizeof *mult);
    int *fixed = malloc((size_t)n * sizeof *fixed);
    if (!mult || !fixed) {
        free(mult), free(fixed);
        return ST_ENOMEM;
    }
    scope sc;
    scope_alloc(g, &sc, mult, fixed);
    for (int o = 0; o < n; o++) mult[o] = g->ops[o].block ? 1 : 0;
    sc.cross_mult = 1;
    sc.inflight = 1;
    sc.time_limit_s = d->time_limit_s;
    for (int o = 0; o < n; o++) lm->x.sink[o] = 0;
    int rc = 0;
    for (int z = d->zero_lo; z <= d->zero_hi && !rc; z++) {
        lm->x.zero = z;
        double limit = 0;
        for (int step = 0; step < LADDER; step++) {
            sc.mem_limit = limit;
            solved s;
            st_error e;
            rc = solve(&lm->x, &sc, &s, &e);
            d->solves++;
            if (rc == ST_ENOPLAN) {
                rc = 0;
                break;
            }
            if (rc) break;
            cand *cd = &lm->c[lm->ncand++];
            memset(cd, 0, sizeof *cd);
            cd->strat = s.strat;
            cd->t_layer = s.cost;
            cd->zero = z;
            sum_parts(&lm->x, s.strat, 1, &cd->W, &cd->A);
            recompute_parts(&lm->x, s.strat, &cd->rc_t, &cd->rc_A);
            double mem = cd->W + cd->A;
            if (mem <= 0) break;
            limit = mem * 0.55; /* the next rung asks for a little over half the memory */
        }
    }
    free(mult), free(fixed);
    return rc;
}

/* The view stage GPUs [first, first + n) are priced on (one per pair of first and last node group:
 * st_cluster_view depends on nothing else), NULL when out of memory. */
static const sview *stage_view(dpctx *d, int first, int n) {
    if (d->c->ngroups == 0 && d->view[0]) return d->view[0]; /* one GPU type: one view, asked for often */
    int g0 = st_cluster_rank_group(d->c, first), g1 = st_cluster_rank_group(d->c, first + n - 1);
    sview **v = &d->view[g0 * ST_MAX_GROUPS + g1];
    if (!*v) {
        if (!(*v = malloc(sizeof **v))) return NULL;
        st_cluster_view(d->c, first, n, &(*v)->c);
        (*v)->mem_limit = d->mem_limit > 0 ? d->mem_limit : st_autoshard_memory_limit(&(*v)->c);
    }
    return *v;
}

static mcache *get_cache(dpctx *d, st_submesh sm, const sview *v) {
    for (int i = 0; i < d->ncache; i++)
        if (d->cache[i].nodes == sm.nodes && d->cache[i].gpus == sm.gpus && d->cache[i].v == v) return &d->cache[i];
    if (d->ncache == d->capcache) {
        int cap = d->capcache ? 2 * d->capcache : 16;
        mcache *c = realloc(d->cache, (size_t)cap * sizeof *c);
        if (!c) return NULL;
        d->cache = c;
        d->capcache = cap;
    }
    mcache *mc = &d->cache[d->ncache++];
    memset(mc, 0, sizeof *mc);
    mc->nodes = sm.nodes;
    mc->gpus = sm.gpus;
    mc->v = v;
    st_mesh meshes[2];
    mc->nlog = logical_meshes(&v->c, sm.nodes, sm.gpus, meshes);
    for (int l = 0; l < mc->nlog; l++) {
        if (ctx_init(&mc->log[l].x, d->g, &v->c, d->prof, &meshes[l], d->dt, d->microbatches, d->err) ||
            make_cands(d, &mc->log[l])) {
            d->failed = 1;
            mc->nlog = l + 1;
            return mc;
        }
    }
    mc->ready = 1;
    return mc;
}

/* p2p between stages: the block's activation (forward) and its gradient (backward), each device
 * sending its share (Zhuang et al. 2023: cross-mesh resharding spreads the transfer over the
 * devices) across the nodes' NICs, or over NVLink when the stage is smaller than a node */
static double p2p_s(const st_graph *G, int tensor, const st_cluster *c, const st_profile *prof, st_submesh sm) {
    if (tensor < 0) return 0;
    const st_gtensor *t = &G->t[tensor];
    double bytes = st_gtensor_numel(t) * st_dtype_bytes(t->dtype) / (double)(sm.nodes * sm.gpus);
    st_group g = {.n = 2, .per_node = sm.gpus < c->gpus_per_node ? 2 : 1, .nodes = 0, .node_share = c->gpus_per_node};
    g.nodes = 2 / g.per_node;
    return 2 * st_cost_collective(c, prof, ST_COLL_SENDRECV, &g, bytes);
}

/* The exchange between stages i and i + 1 of a plan, forward and backward: the activation crosses
 * once (Zhuang et al. 2023: broadcast-based cross-mesh resharding sends each distinct share once),
 * spread over min(senders, receivers) device pairs, over NVLink when both sub-meshes lie in one node
 * (stages take consecutive GPUs), else across the NICs. *bytes: per device pair, one way. */
static double pair_p2p(const st_graph *G, const st_as_stage *st, int i, const st_cluster *c, const st_profile *prof,
                       double *bytes) {
    int tensor = st_graph_unit_tensor(G, st[i].last);
    if (bytes) *bytes = 0;
    if (tensor < 0) return 0;
    int gpu = 0;
    for (int j = 0; j < i; j++) gpu += st[j].mesh.nodes * st[j].mesh.gpus;
    int ns = st[i].mesh.nodes * st[i].mesh.gpus, nr = st[i + 1].mesh.nodes * st[i + 1].mesh.gpus;
    st_cluster v; /* the links the two stages' GPUs have (on node groups, the slower's across groups) */
    st_cluster_view(c, gpu, ns + nr, &v);
    int G_ = (int)c->gpus_per_node, one_node = gpu / G_ == (gpu + ns + nr - 1) / G_;
    const st_gtensor *t = &G->t[tensor];
    double b = st_gtensor_numel(t) * st_dtype_bytes(t->dtype) / (double)(ns < nr ? ns : nr);
    if (bytes) *bytes = b;
    st_group g = {.n = 2, .per_node = one_node ? 2 : 1, .nodes = one_node ? 1 : 2, .node_share = v.gpus_per_node};
    return 2 * st_cost_collective(&v, prof, ST_COLL_SENDRECV, &g, b);
}

/* Each stage's exchange time, added to its time: it waits for its input's activation from the
 * stage before and for its output's gradient from the stage after (Megatron-LM's blocking receives;
 * its own sends overlap its compute), one way each. */
static void plan_p2p(const st_graph *G, st_as_stage *st, int n, const st_cluster *c, const st_profile *prof) {
    for (int i = 0; i < n && n > 1; i++) {
        st[i].p2p_s = (i > 0 ? pair_p2p(G, st, i - 1, c, prof, NULL) / 2 : 0) +
                      (i < n - 1 ? pair_p2p(G, st, i, c, prof, NULL) / 2 : 0);
        st[i].time_s += st[i].p2p_s;
    }
}

/* The exchange of a stage holding units [first, last) of L with its neighbours, priced on the tensor
 * it sends on (the last stage: the one it receives) and its own sub-mesh, as the stage DP sees it
 * before it knows the neighbours; 0 for a stage that holds everything. */
static double stage_p2p(const st_graph *G, int first, int last, const st_cluster *c, const st_profile *prof,
                        st_submesh sm) {
    int L = st_graph_units(G);
    if (first == 0 && last == L) return 0;
    return p2p_s(G, st_graph_unit_tensor(G, last < L ? last : first), c, prof, sm);
}

/* best (time) candidate of a cache entry for k layers; *lm_out, *cd_out say which */
static double stage_time(dpctx *d, mcache *mc, int first, int last, int stages_after, int L, int *lm_out, int *cd_out,
                         int *rc_out) {
    double limit = mc->v->mem_limit;
    double best = INFINITY;
    int k = last - first, head = first == 0, tail = last == L;
    double inflight = held_microbatches(stages_after, d->microbatches);
    for (int l = 0; l < mc->nlog; l++) {
        lmesh *lm = &mc->log[l];
        for (int ci = 0; ci < lm->ncand; ci++) {
            cand *cd = &lm->c[ci];
            if (head && !cd->have_head && end_cost(d, lm, cd, 1)) continue;
            if (tail && !cd->have_tail && end_cost(d, lm, cd, 0)) continue;
            for (int rc = 0; rc < 2; rc++) {
                double t = k * (cd->t_layer + rc * cd->rc_t);
                double mem = rc ? k * (cd->W + cd->rc_A * inflight) + cd->A : k * (cd->W + cd->A * inflight);
                if (head) t += cd->head_t, mem += cd->head_W + cd->head_A * inflight;
                if (tail) t += cd->tail_t, mem += cd->tail_W + cd->tail_A * inflight;
                if (limit > 0 && mem > limit) continue;
                if (t < best) {
                    best = t;
                    if (lm_out) *lm_out = l;
                    if (cd_out) *cd_out = ci;
                    if (rc_out) *rc_out = rc;
                }
            }
        }
    }
    return best;
}

/* The DP works on units of u layers (Alpa's layer clustering, section 5.2): at most MAX_UNITS
 * units, so its cubic cost stays bounded for deep models; blocks are identical, so a stage's time
 * depends only on its length, whether it holds the head or the tail, its sub-mesh and the stages
 * after it, and is priced once per such combination. */
#define MAX_UNITS 100

typedef struct dparg {
    dpctx *d;
    int L, u, units;
    int hit; /* the cache entry of the last call, or -1: the DP asks for one (mesh, view) many times in a row */
} dparg;

static double dp_cost(void *arg, int first, int last, st_submesh sm, int stages_after, int offset) {
    dparg *a = arg;
    dpctx *d = a->d;
    if (d->failed) return INFINITY;
    const sview *v = stage_view(d, offset, sm.nodes * sm.gpus);
    mcache *mc = a->hit >= 0 ? &d->cache[a->hit] : NULL;
    if (!mc || mc->v != v || mc->nodes != sm.nodes || mc->gpus != sm.gpus) {
        mc = v ? get_cache(d, sm, v) : NULL;
        a->hit = mc ? (int)(mc - d->cache) : -1;
    }
    if (!mc || !mc->ready) {
        d->failed = 1;
        return INFINITY;
    }
    int U = a->units + 1, head = first == 0, tail = last == a->units;
    if (!mc->memo) {
        mc->memo = malloc((size_t)U * 4 * (size_t)U * sizeof *mc->memo);
        if (!mc->memo) {
            d->failed = 1;
            return INFINITY;
        }
        for (size_t i = 0; i < (size_t)U * 4 * (size_t)U; i++) mc->memo[i] = NAN;
    }
    double *slot = &mc->memo[((size_t)(last - first) * 4 + (size_t)(head * 2 + tail)) * (size_t)U + (size_t)stages_after];
    if (!isnan(*slot)) return *slot;
    int f = first * a->u, l = last == a->units ? a->L : last * a->u;
    double t = stage_time(d, mc, f, l, stages_after, a->L, NULL, NULL, NULL);
    /* a stage with a neighbour exchanges activations with it */
    if (isfinite(t) && !(head && tail)) t += p2p_s(d->g, d->g->block_out, &v->c, d->prof, sm);
    *slot = t;
    return t;
}

static int final_stage(const st_graph *g, const st_cluster *c, const st_profile *prof, const st_autoshard_opts *o,
                       int64_t microbatches, double mem_limit, const st_mesh *mesh, int first, int last, int L,
                       int stages_after, int recompute, int zero, const st_as_choice *given, st_as_stage *st,
                       int64_t *solves, st_error *err);

/* A custom graph's stage (segments, no tied block): each logical mesh's ILP over the stage's
 * operators, exactly, with each ZeRO stage tried, memoised per (sub-mesh, first, last, stages after). */
typedef struct cmemo {
    int nodes, gpus;
    const sview *v;
    double *t;
} cmemo;

static double custom_stage(dpctx *d, int first, int last, st_submesh sm, const sview *v, int stages_after,
                           st_as_stage *keep) {
    const st_graph *g = d->g;
    int L = st_graph_units(g);
    st_mesh meshes[2];
    int nl = logical_meshes(&v->c, sm.nodes, sm.gpus, meshes);
    double best = INFINITY;
    st_autoshard_opts o;
    st_autoshard_opts_init(&o);
    o.dtype = d->dt;
    o.time_limit_s = d->time_limit_s;
    for (int l = 0; l < nl * (d->zero_hi - d->zero_lo + 1); l++) {
        st_as_stage st;
        memset(&st, 0, sizeof st);
        st_error e;
        int rc = final_stage(g, &v->c, d->prof, &o, d->microbatches, v->mem_limit, &meshes[l % nl], first, last, L,
                             stages_after, 0, d->zero_lo + l / nl, NULL, &st, &d->solves, &e);
        if (rc == 0 && st.time_s < best) {
            best = st.time_s;
            if (keep) {
                free(keep->choice);
                *keep = st;
                continue;
            }
        } else if (rc && rc != ST_ENOPLAN) {
            d->failed = 1;
            if (d->err) *d->err = e;
        }
        free(st.choice);
    }
    return best;
}

static double dp_cost_custom(void *arg, int first, int last, st_submesh sm, int stages_after, int offset) {
    dparg *a = arg;
    dpctx *d = a->d;
    if (d->failed) return INFINITY;
    int U = a->units + 1;
    const sview *v = stage_view(d, offset, sm.nodes * sm.gpus);
    if (!v) {
        d->failed = 1;
        return INFINITY;
    }
    cmemo *cm = NULL;
    for (int i = 0; i < d->ncmemo; i++)
        if (d->cmemo[i].nodes == sm.nodes && d->cmemo[i].gpus == sm.gpus && d->cmemo[i].v == v) cm = &d->cmemo[i];
    if (!cm) {
        cmemo *grown = realloc(d->cmemo, (size_t)(d->ncmemo + 1) * sizeof *grown);
        double *t = grown ? malloc((size_t)U * U * U * sizeof *t) : NULL;
        if (!t) {
            if (grown) d->cmemo = grown;
            d->failed = 1;
            return INFINITY;
        }
        for (size_t i = 0; i < (size_t)U * U * U; i++) t[i] = NAN;
        d->cmemo = grown;
        cm = &d->cmemo[d->ncmemo++];
        cm->nodes = sm.nodes, cm->gpus = sm.gpus, cm->v = v, cm->t = t;
    }
    double *slot = &cm->t[((size_t)first * U + (size_t)last) * U + (size_t)stages_after];
    if (!isnan(*slot)) return *slot;
    int f = first * a->u, l = last == a->units ? a->L : last * a->u;
    double t = custom_stage(d, f, l, sm, v, stages_after, NULL);
    if (isfinite(t)) t += stage_p2p(d->g, f, l, &v->c, d->prof, sm);
    *slot = t;
    return t;
}

static void dpctx_free(dpctx *d) {
    for (int i = 0; i < d->ncmemo; i++) free(d->cmemo[i].t);
    free(d->cmemo);
    for (int i = 0; i < d->ncache; i++)
        for (int l = 0; l < d->cache[i].nlog; l++) {
            for (int c = 0; c < d->cache[i].log[l].ncand; c++) free(d->cache[i].log[l].c[c].strat);
            ctx_free(&d->cache[i].log[l].x);
        }
    for (int i = 0; i < d->ncache; i++) free(d->cache[i].memo);
    free(d->cache);
    for (int i = 0; i < ST_MAX_GROUPS * ST_MAX_GROUPS; i++) free(d->view[i]);
    memset(d, 0, sizeof *d);
}

/* ------------------------------------------------------------ the planner */

void st_autoshard_result_free(st_autoshard_result *r) {
    for (int i = 0; r->stage && i < r->nstages; i++) free(r->stage[i].choice);
    free(r->stage);
    st_graph_free(&r->graph);
    memset(r, 0, sizeof *r);
}

/* Solves one stage exactly: layers [first, last) of the block on `mesh`, with the head and tail
 * where they belong, `stages_after` pipeline stages after it (the activations 1F1B keeps in flight:
 * held_microbatches), full recompute or not, ZeRO stage `zero` (0 or 1); fills st. */
static int final_stage(const st_graph *g, const st_cluster *c, const st_profile *prof, const st_autoshard_opts *o,
                       int64_t microbatches, double mem_limit, const st_mesh *mesh, int first, int last, int L,
                       int stages_after, int recompute, int zero, const st_as_choice *given, st_as_stage *st,
                       int64_t *solves, st_error *err) {
    ctx x;
    int rc = ctx_init(&x, g, c, prof, mesh, o->dtype, microbatches, err);
    int n = g->nops;
    double *mult = malloc((size_t)n * sizeof *mult);
    int *fixed = malloc((size_t)n * sizeof *fixed);
    if (!rc && (!mult || !fixed)) rc = st_error_set(err, ST_ENOMEM, NULL, NULL, "out of memory");
    if (rc) goto out;
    x.recompute = recompute && g->block_in >= 0;
    x.zero = zero;
    x.entering = first > 0 ? st_graph_unit_tensor(g, first) : -1;
    scope sc;
    scope_alloc(g, &sc, mult, fixed);
    int k = last - first;
    for (int op = 0; op < n; op++) mult[op] = st_graph_op_mult(g, op, first, last);
    int leaving = last < L ? st_graph_unit_tensor(g, last) : -1;
    for (int op = 0; op < n; op++) {
        /* outputs leaving the stage must be whole */
        const st_gtensor *t = &g->t[g->ops[op].out];
        x.sink[op] = t->nconsumers == 0 || (leaving >= 0 && op == g->t[leaving].producer);
    }
    if (given) /* a plan being priced: every operator of the stage keeps its sharding */
        for (int op = 0; op < n; op++) {
            if (mult[op] <= 0) continue;
            for (int j = 0; j < x.ops[op].n && fixed[op] < 0; j++)
                if (x.ops[op].s[j].lab[0] == given[op].lab[0] && (mesh->naxes < 2 || x.ops[op].s[j].lab[1] == given[op].lab[1]))
                    fixed[op] = j;
            if (fixed[op] < 0) {
                char want[8] = "", shape[32];
                for (int a = 0; a < mesh->naxes; a++) {
                    size_t len = strlen(want);
                    snprintf(want + len, sizeof want - len, "%s%c", a ? "," : "", given[op].lab[a] ? given[op].lab[a] : '-');
                }
                if (mesh->naxes > 1) snprintf(shape, sizeof shape, "%d x %d", mesh->size[0], mesh->size[1]);
                else snprintf(shape, sizeof shape, "%d", mesh->size[0]);
                char key[96];
                snprintf(key, sizeof key, "ops.%s.split", g->ops[op].name);
                rc = st_error_set(err, ST_EINVAL, NULL, key,
                                  "operator '%s': split [%s] is not a valid sharding of it on a mesh of %s GPUs "
                                  "(a label it lacks, or a dimension the axis does not divide)",
                                  g->ops[op].name, want, shape);
                goto out;
            }
        }
    sc.inflight = held_microbatches(stages_after, microbatches);
    sc.cross_mult = k > 1 ? k - 1 : 0;
    sc.mem_limit = mem_limit;
    sc.time_limit_s = o->time_limit_s > 0 ? o->time_limit_s : 60;
    solved s;
    rc = solve(&x, &sc, &s, err);
    (*solves)++;
    if (rc) goto out;
    st->first = first;
    st->last = last;
    st->recompute = x.recompute;
    st->zero = x.zero;
    st->mesh = *mesh;
    st->time_s = s.cost;
    st->memory_bytes = s.mem;
    st->ilp_rows = s.r.rows, st->ilp_cols = s.r.cols, st->ilp_binaries = s.r.binaries;
    st->ilp_nodes = s.nodes, st->ilp_vars = s.vars;
    st->ilp_optimal = s.r.optimal, st->ilp_gap = s.r.gap, st->ilp_time_s = s.r.solve_time_s;
    st->choice = calloc((size_t)n, sizeof *st->choice);
    if (!st->choice) {
        free(s.strat);
        rc = st_error_set(err, ST_ENOMEM, NULL, NULL, "out of memory");
        goto out;
    }
    double comp = 0, sync = 0;
    for (int op = 0; op < n; op++) {
        if (s.strat[op] < 0) {
            st->choice[op].lab[0] = st->choice[op].lab[1] = '-';
            continue;
        }
        const strat *sp = &x.ops[op].s[s.strat[op]];
        st->choice[op].lab[0] = sp->lab[0];
        st->choice[op].lab[1] = sp->lab[1];
        st->choice[op].out = sp->out;
        comp += mult[op] * (sp->fwd_s + sp->bwd_s + (x.recompute && g->ops[op].block ? sp->fwd_s : 0));
        sync += mult[op] * sp->sync_s[x.zero] / (double)microbatches;
    }
    st->compute_s = comp;
    st->sync_s = sync;
    st->comm_s = st->time_s - comp - sync;
    free(s.strat);
out:
    free(mult), free(fixed);
    ctx_free(&x);
    return rc;
}

static int plan_submesh(int64_t gpus, const st_cluster *c, int *nodes, int *per) {
    int64_t G = c->gpus_per_node;
    if (gpus >= G) {
        if (gpus % G) return -1;
        *nodes = (int)(gpus / G);
        *per = (int)G;
    } else {
        if (G % gpus) return -1;
        *nodes = 1;
        *per = (int)gpus;
    }
    return 0;
}

/* one micro-batch size: fills r (stages etc.) when better than r->iteration_time_s */
static int plan_one(const st_graph *g, const st_cluster *c, const st_profile *prof,
                    const st_autoshard_opts *o, int nodes, int per, int64_t mbs, int64_t microbatches, double mem_limit,
                    st_autoshard_result *best, int *have, st_error *err) {
    int L = st_graph_units(g), custom = g->block_in < 0;
    int single = o->max_stages == 1 || L <= 1;
    int zlo = o->zero == ST_AS_ZERO_AUTO ? 0 : o->zero, zhi = o->zero == ST_AS_ZERO_AUTO ? 1 : o->zero;
    st_as_stage *stages = NULL;
    int nst = 0, rc = 0;
    double total = INFINITY;
    int64_t solves = 0;
    if (single) {
        st_cluster v; /* the GPUs used (on node groups, the slowest of each across groups) */
        st_cluster_view(c, 0, nodes * per, &v);
        if (o->mem_limit_bytes <= 0) mem_limit = st_autoshard_memory_limit(&v);
        st_mesh meshes[2];
        int nl = logical_meshes(&v, nodes, per, meshes);
        st_error first_err;
        int first_rc = 0;
        /* every logical mesh, with and without recompute (model graphs), with each ZeRO stage tried */
        int nre = custom ? 1 : 2, nz = zhi - zlo + 1;
        for (int l = 0; l < nl * nre * nz; l++) {
            st_as_stage st;
            memset(&st, 0, sizeof st);
            st_error e;
            rc = final_stage(g, &v, prof, o, microbatches, mem_limit, &meshes[l % nl], 0, L, L, 0, l / nl % nre,
                             zlo + l / (nl * nre), NULL, &st, &solves, &e);
            best->evaluated++;
            if (rc) {
                if (!first_rc) first_rc = rc, first_err = e;
                if (rc != ST_ENOPLAN) break;
                continue;
            }
            double t = st.time_s * (double)microbatches;
            if (t < total) {
                if (stages) free(stages[0].choice);
                free(stages);
                stages = malloc(sizeof *stages);
                if (!stages) return st_error_set(err, ST_ENOMEM, NULL, NULL, "out of memory");
                stages[0] = st;
                nst = 1;
                total = t;
            } else {
                free(st.choice);
            }
        }
        if (!nst) {
            if (err && first_rc) *err = first_err;
            best->ilp_solves += solves;
            return first_rc ? first_rc : ST_ENOPLAN;
        }
        rc = 0;
    } else {
        /* each stage under its own GPU's memory unless a limit is given */
        dpctx d = {.g = g, .c = c, .prof = prof, .dt = o->dtype, .microbatches = microbatches,
                   .mem_limit = o->mem_limit_bytes > 0 ? mem_limit : 0,
                   .time_limit_s = o->time_limit_s > 0 ? o->time_limit_s : 60, .zero_lo = zlo, .zero_hi = zhi,
                   .err = err};
        int u = 1;
        while ((L + u - 1) / u > MAX_UNITS) u++;
        dparg a = {&d, L, u, (L + u - 1) / u, -1};
        st_stage_dp_opts dpo = {.nlayers = a.units, .nodes = nodes, .gpus_per_node = per, .microbatches = microbatches,
                                .max_stages = o->max_stages, .cost = custom ? dp_cost_custom : dp_cost, .arg = &a};
        for (int k = 0; k < c->ngroups; k++) /* the groups the stages' GPUs may fall in */
            dpo.group_gpus[dpo.ngroups++] = (int)(c->groups[k].nodes * c->groups[k].gpus_per_node);
        st_stage_dp_result dr;
        rc = st_stage_dp(&dpo, &dr, err);
        solves += d.solves;
        best->dp_cost_calls += dr.cost_calls;
        best->evaluated += (uint64_t)dr.cost_calls;
        if (d.failed && rc == 0) rc = err && err->code ? err->code : ST_EINTERNAL;
        if (rc == 0) {
            stages = calloc((size_t)dr.nstages, sizeof *stages);
            if (!stages) rc = st_error_set(err, ST_ENOMEM, NULL, NULL, "out of memory");
            for (int i = 0; i <= dr.nstages; i++) dr.first[i] = i == dr.nstages ? L : dr.first[i] * u;
            for (int i = 0, gpu = 0; !rc && i < dr.nstages; gpu += dr.mesh[i].nodes * dr.mesh[i].gpus, i++) {
                const sview *v = stage_view(&d, gpu, dr.mesh[i].nodes * dr.mesh[i].gpus);
                if (!v) {
                    rc = st_error_set(err, ST_ENOMEM, NULL, NULL, "out of memory");
                } else if (custom) { /* the best logical mesh, solved again exactly */
                    int64_t before = d.solves;
                    double t = custom_stage(&d, dr.first[i], dr.first[i + 1], dr.mesh[i], v, dr.nstages - 1 - i,
                                            &stages[i]);
                    solves += d.solves - before;
                    if (!isfinite(t)) rc = d.failed && err && err->code ? err->code : ST_ENOPLAN;
                } else {
                    /* the logical mesh the cost table preferred for this stage */
                    mcache *mc = get_cache(&d, dr.mesh[i], v);
                    int lm = 0, cd = 0, re = 0;
                    if (mc) stage_time(&d, mc, dr.first[i], dr.first[i + 1], dr.nstages - 1 - i, L, &lm, &cd, &re);
                    int z = mc ? mc->log[lm].c[cd].zero : zlo;
                    st_mesh meshes[2];
                    logical_meshes(&v->c, dr.mesh[i].nodes, dr.mesh[i].gpus, meshes);
                    rc = final_stage(g, &v->c, prof, o, microbatches, v->mem_limit, &meshes[lm], dr.first[i],
                                     dr.first[i + 1], L, dr.nstages - 1 - i, re, z, NULL, &stages[i], &solves, err);
                    /* the exact ILP needs more memory than the candidate did: recompute, then (when the
                     * choice is ours) the distributed optimizer too */
                    if (rc == ST_ENOPLAN && !re)
                        rc = final_stage(g, &v->c, prof, o, microbatches, v->mem_limit, &meshes[lm], dr.first[i],
                                         dr.first[i + 1], L, dr.nstages - 1 - i, 1, z, NULL, &stages[i], &solves, err);
                    if (rc == ST_ENOPLAN && z < zhi)
                        rc = final_stage(g, &v->c, prof, o, microbatches, v->mem_limit, &meshes[lm], dr.first[i],
                                         dr.first[i + 1], L, dr.nstages - 1 - i, 1, zhi, NULL, &stages[i], &solves,
                                         err);
                }
                if (!rc) nst = i + 1;
            }
            if (!rc) plan_p2p(g, stages, nst, c, prof);
            if (!rc) {
                double sum = 0, mx = 0;
                for (int i = 0; i < nst; i++) {
                    sum += stages[i].time_s;
                    if (stages[i].time_s > mx) mx = stages[i].time_s;
                }
                total = sum + (double)(microbatches - 1) * mx;
            }
        }
        dpctx_free(&d);
    }
    best->ilp_solves += solves;
    if (rc) {
        for (int i = 0; i < nst; i++) free(stages[i].choice);
        free(stages);
        return rc;
    }
    if (!*have || total < best->iteration_time_s) {
        for (int i = 0; best->stage && i < best->nstages; i++) free(best->stage[i].choice);
        free(best->stage);
        st_graph_free(&best->graph);
        best->stage = stages;
        best->nstages = nst;
        best->iteration_time_s = total;
        best->mbs = mbs;
        best->microbatches = microbatches;
        best->memory_peak_bytes = 0;
        for (int i = 0; i < nst; i++)
            if (stages[i].memory_bytes > best->memory_peak_bytes) best->memory_peak_bytes = stages[i].memory_bytes;
        *have = 1;
        return 1; /* the caller keeps the graph */
    }
    for (int i = 0; i < nst; i++) free(stages[i].choice);
    free(stages);
    return 0;
}

/* Throughput figures of a result whose iteration time (and, for models, model_flops and
 * tokens_per_s) are set. */
static void finish(st_autoshard_result *r, const st_graph *custom, const st_cluster *c, st_dtype dt, int64_t gpus) {
    if (custom) {
        double f = 0;
        for (int i = 0; i < custom->nops; i++) f += custom->ops[i].fwd_flops + custom->ops[i].bwd_flops;
        r->model_flops = f * (double)r->microbatches;
    }
    r->model_tflops_per_gpu = r->model_flops / r->iteration_time_s / (double)gpus / 1e12;
    double peak = c->gpu.peak_flops[dt] > 0 ? c->gpu.peak_flops[dt] : c->gpu.peak_flops[ST_DT_BF16];
    if (c->ngroups > 0) { /* node groups: the mean of the peaks of the GPUs used, each group's its own */
        double sum = 0, left = (double)gpus;
        for (int g = 0; g < c->ngroups && left > 0; g++) {
            const st_gpu *x = &c->groups[g].gpu;
            double n = (double)(c->groups[g].nodes * c->groups[g].gpus_per_node);
            sum += (n < left ? n : left) * (x->peak_flops[dt] > 0 ? x->peak_flops[dt] : x->peak_flops[ST_DT_BF16]);
            left -= n;
        }
        peak = sum / (double)gpus;
    }
    r->mfu = peak > 0 ? r->model_tflops_per_gpu * 1e12 / peak : 0;
}

int st_autoshard(const st_model *m, const st_graph *custom, const st_cluster *c, const st_profile *prof,
                 const st_autoshard_opts *o, st_autoshard_result *r, st_error *err) {
    double t0 = st_clock_s();
    memset(r, 0, sizeof *r);
    int64_t gpus = o->gpus > 0 ? o->gpus : st_cluster_gpus(c);
    int nodes, per;
    if (gpus > st_cluster_gpus(c))
        return st_error_set(err, ST_EINVAL, NULL, "gpus", "%lld GPUs asked for, the cluster has %lld", (long long)gpus,
                            (long long)st_cluster_gpus(c));
    if (plan_submesh(gpus, c, &nodes, &per))
        return st_error_set(err, ST_EINVAL, NULL, "gpus",
                            "%lld GPUs is neither whole nodes of %lld nor a divisor of a node's %lld", (long long)gpus,
                            (long long)c->gpus_per_node, (long long)c->gpus_per_node);
    if (per & (per - 1))
        return st_error_set(err, ST_EINVAL, NULL, "gpus", "the GPUs used per node (%d) must be a power of two", per);
    double mem_limit = o->mem_limit_bytes > 0 ? o->mem_limit_bytes : st_autoshard_memory_limit(c);
    int have = 0, rc = 0, last_rc = ST_ENOPLAN;
    st_error last_err;
    st_error_clear(&last_err);
    last_err.code = ST_ENOPLAN;
    snprintf(last_err.text, sizeof last_err.text, "no sharding fits");
    /* With the ZeRO stage ours to choose, the stage DP weighs each stage with and without the
     * distributed optimizer; the search also runs without it, and the faster plan is kept. The DP
     * prices a stage's exchange with its neighbours on its own sub-mesh (README, "Not yet"), so a
     * choice that looks faster there can come out slower once the chosen stages are priced pair by
     * pair (GPT-3 175B on 64 A100s: a two-node stage in the middle, 0.1% slower); this way auto is
     * never slower than plain data parallelism. Ties go to plain data parallelism (it runs first). */
    st_autoshard_opts modes[2] = {*o, *o};
    int nmodes = 1;
    if (o->zero == ST_AS_ZERO_AUTO) modes[0].zero = 0, nmodes = 2;
    if (custom) {
        st_graph g = *custom;
        int64_t B = o->microbatches > 0 ? o->microbatches : 1;
        for (int k = 0; k < nmodes; k++) {
            rc = plan_one(&g, c, prof, &modes[k], nodes, per, 0, B, mem_limit, r, &have, &last_err);
            if (rc < 0) last_rc = rc;
            if (rc < 0 && rc != ST_ENOPLAN) break;
        }
        r->g = custom; /* the caller's */
    } else {
        int64_t seq = o->seq > 0 ? o->seq : m->seq_len;
        if (o->gbs < 1) return st_error_set(err, ST_EINVAL, NULL, "gbs", "must be at least 1");
        for (int64_t mbs = o->mbs > 0 ? o->mbs : 1; mbs <= (o->mbs > 0 ? o->mbs : 8); mbs *= 2) {
            if (o->gbs % mbs) continue;
            st_graph g;
            if ((rc = st_graph_from_model(m, mbs, seq, o->dtype, o->attention, &g, err))) return rc;
            int took = 0; /* r holds g (plan_one frees the graph of a result it replaces: not g) */
            for (int k = 0; k < nmodes; k++) {
                st_error e;
                if (took) memset(&r->graph, 0, sizeof r->graph);
                rc = plan_one(&g, c, prof, &modes[k], nodes, per, mbs, o->gbs / mbs, mem_limit, r, &have, &e);
                took |= rc == 1;
                if (took) r->graph = g, r->g = &r->graph;
                if (rc < 0) last_rc = rc, last_err = e;
                if (rc < 0 && rc != ST_ENOPLAN) break;
            }
            if (!took) st_graph_free(&g);
            if (rc < 0 && rc != ST_ENOPLAN) break;
        }
        if (have) {
            r->model_flops = st_cost_model_flops(m, o->gbs, seq);
            r->tokens_per_s = (double)o->gbs * (double)seq / r->iteration_time_s;
        }
    }
    if (!have) {
        if (err) *err = last_err;
        return last_rc;
    }
    finish(r, custom, c, o->dtype, gpus);
    r->attention = o->attention;
    r->search_time_s = st_clock_s() - t0;
    return 0;
}

/* op's input i's layout under the stage's labels for it */
static st_layout choice_in(const st_graph *g, const st_as_stage *st, int op, int i) {
    st_layout l = {{-1, -1}, 0};
    for (int a = 0; a < st->mesh.naxes; a++) {
        char c = st->choice[op].lab[a];
        if (c) l.ax[a] = (signed char)dim_of(&g->ops[op], g->ops[op].lab[i], c);
    }
    return l;
}

void st_autoshard_block_collectives(const st_autoshard_result *r, int stage, int counts[ST_COLL_COUNT]) {
    memset(counts, 0, ST_COLL_COUNT * sizeof counts[0]);
    if (stage < 0 || stage >= r->nstages) return;
    const st_graph *g = r->g;
    const st_as_stage *st = &r->stage[stage];
    for (int co = 0; co < g->nops; co++) {
        const st_gop *op = &g->ops[co];
        if (!op->block || st->choice[co].lab[0] == '-') continue;
        for (int i = 0; i < op->nin; i++) {
            int t = op->in[i], via = -1, pr = g->t[t].producer;
            if (t == g->block_in) pr = g->t[g->block_out].producer; /* from the previous layer */
            else pr = edge_source(g, NULL, co, i, &via);
            if (pr < 0 || st->choice[pr].lab[0] == '-') continue;
            st_layout src = via >= 0 ? choice_in(g, st, pr, via) : st->choice[pr].out, dst = choice_in(g, st, co, i);
            st_coll steps[2];
            int ns = 0;
            st_cost_reshard(NULL, NULL, &st->mesh, 0, src, dst, steps, &ns);
            for (int k = 0; k < ns; k++) counts[steps[k]]++;
        }
    }
}

/* ------------------------------------------------------------ describing a result */

static int weight_has(const st_graph *g, const st_gop *o, char l, int *in_out) {
    int w = 0;
    for (int i = 0; i < o->nin; i++)
        if (g->t[o->in[i]].weight && dim_of(o, o->lab[i], l) >= 0) w = 1;
    *in_out = dim_of(o, o->lab_out, l) >= 0;
    return w;
}

const char *st_autoshard_role(const st_graph *g, int op, const st_as_choice *ch, int naxes) {
    const st_gop *o = &g->ops[op];
    int any = 0;
    for (int a = 0; a < naxes; a++) any |= ch->lab[a] != 0;
    if (!any) return "replicated";
    /* describe the first splitting axis's label; 2-D choices say "2-D" */
    char l = ch->lab[0] ? ch->lab[0] : ch->lab[1];
    if (naxes > 1 && ch->lab[0] && ch->lab[1] && ch->lab[0] != ch->lab[1]) return "2-D split";
    int in_out;
    int w = weight_has(g, o, l, &in_out);
    if (w && !in_out) return "row (partial sums)";
    if (w && o->type == ST_GOP_MATMUL && strchr(o->lab[1], l) && o->nin > 1 && strchr(o->lab[0], l) && in_out)
        return l == 'e' ? "experts" : "batched weights split";
    if (w && in_out) return "column (output split)";
    if (!in_out) return "partial sums";
    if (o->nin > 0 && !g->t[o->in[0]].weight && o->lab[0][0] == l) return "data (batch split)";
    if (l == 's') return "sequence";
    if (l == 'n') return "heads";
    if (l == 'c') return "tokens";
    if (l == 'b') return "data (batch split)"; /* an MoE combine's tokens: its first input is the experts' */
    return "split";
}

static int op_index(const st_graph *g, const char *name) {
    for (int i = 0; i < g->nops; i++)
        if (strcmp(g->ops[i].name, name) == 0) return i;
    return -1;
}

void st_autoshard_spec(const st_autoshard_result *r, char *buf, size_t n) {
    const st_graph *g = r->g;
    int qkv = op_index(g, "qkv"), ln1 = op_index(g, "ln1"), fc1 = op_index(g, "fc1");
    if (qkv < 0 || r->nstages < 1) {
        snprintf(buf, n, "custom (per-operator shardings)");
        return;
    }
    int proj = op_index(g, "proj"), fc2 = op_index(g, "fc2");
    if (fc1 < 0 || fc2 < 0 || proj < 0) {
        snprintf(buf, n, "custom (MoE: per-operator shardings)");
        return;
    }
    const st_as_stage *s0 = &r->stage[0];
    int tp = 1, dp = 1, sp = 0;
    for (int i = 0; i < r->nstages; i++) {
        const st_as_stage *st = &r->stage[i];
        if (st->mesh.naxes != s0->mesh.naxes || st->mesh.size[0] != s0->mesh.size[0] ||
            (st->mesh.naxes > 1 && st->mesh.size[1] != s0->mesh.size[1])) {
            snprintf(buf, n, "custom (stages on different meshes)");
            return;
        }
        for (int a = 0; a < s0->mesh.naxes; a++) /* (a stage without the layers' operators has '-' labels) */
            if (st->choice[qkv].lab[a] != s0->choice[qkv].lab[a] || st->choice[fc1].lab[a] != s0->choice[fc1].lab[a] ||
                (ln1 >= 0 && st->choice[ln1].lab[a] != s0->choice[ln1].lab[a])) {
                snprintf(buf, n, "custom (stages sharded differently)");
                return;
            }
    }
    for (int a = 0; a < s0->mesh.naxes; a++) {
        char l = s0->choice[qkv].lab[a];
        if (l == 'n') tp *= s0->mesh.size[a];
        else if (l == 'b') dp *= s0->mesh.size[a];
        else if (l) {
            snprintf(buf, n, "custom (qkv split on '%c')", l);
            return;
        }
        if (ln1 >= 0 && s0->choice[ln1].lab[a] == 's') sp = 1;
        if ((l == 'n' && (s0->choice[fc1].lab[a] != 'f' || s0->choice[fc2].lab[a] != 'f' ||
                          s0->choice[proj].lab[a] != 'n')) ||
            (l != 'n' && (s0->choice[fc1].lab[a] != l || s0->choice[fc2].lab[a] != l))) {
            snprintf(buf, n, "custom (attention and MLP split differently)");
            return;
        }
    }
    snprintf(buf, n, "tp=%d,pp=%d,dp=%d,mbs=%lld,sp=%d", tp, r->nstages, dp, (long long)(r->mbs / dp > 0 ? r->mbs / dp : 1), sp);
}

/* ------------------------------------------------------------ pricing a given plan */

int st_autoshard_evaluate(const st_model *m, const st_cluster *c, const st_profile *prof, const st_autoshard_opts *o,
                          st_autoshard_result *r, st_error *err) {
    double t0 = st_clock_s();
    const st_graph *g = r->g;
    int L = st_graph_units(g), n = r->nstages, rc = 0;
    int64_t gpus = 0, solves = 0;
    if (n < 1) return st_error_set(err, ST_EINVAL, NULL, "stages", "no stage");
    for (int i = 0; i < n; i++) {
        const st_as_stage *st = &r->stage[i];
        gpus += (int64_t)st->mesh.nodes * st->mesh.gpus;
        if (st->first != (i ? r->stage[i - 1].last : 0) || st->last <= st->first || (i == n - 1 && st->last != L))
            return st_error_set(err, ST_EINVAL, NULL, "stages",
                                "stage %d: layers [%d, %d) do not continue the stages before it (the %d layers must "
                                "be cut into consecutive, non-empty ranges)",
                                i, st->first, st->last, L);
    }
    if (gpus > st_cluster_gpus(c))
        return st_error_set(err, ST_EINVAL, NULL, "mesh", "the stages' meshes hold %lld GPUs, the cluster has %lld",
                            (long long)gpus, (long long)st_cluster_gpus(c));
    double sum = 0, mx = 0;
    r->memory_peak_bytes = 0;
    for (int i = 0, gpu = 0; i < n; gpu += r->stage[i].mesh.nodes * r->stage[i].mesh.gpus, i++) {
        st_as_stage *st = &r->stage[i];
        st_as_choice *given = st->choice;
        st_as_stage out;
        memset(&out, 0, sizeof out);
        st_cluster v; /* the stage's own GPUs, as the planner priced it */
        st_cluster_view(c, gpu, st->mesh.nodes * st->mesh.gpus, &v);
        rc = final_stage(g, &v, prof, o, r->microbatches, 0, &st->mesh, st->first, st->last, L, n - 1 - i,
                         st->recompute, st->zero, given, &out, &solves, err);
        if (rc) {
            if (err) { /* name the stage in the key: stages[i].ops.NAME.split */
                char key[sizeof err->key];
                snprintf(key, sizeof key, "%s", err->key);
                snprintf(err->key, sizeof err->key, "stages[%d]%s%.100s", i % 1000, key[0] ? "." : "", key);
            }
            return rc;
        }
        /* the priced stage keeps the given labels; out.choice also has the layouts */
        free(given);
        *st = out;
    }
    plan_p2p(g, r->stage, n, c, prof);
    for (int i = 0; i < n; i++) {
        const st_as_stage *st = &r->stage[i];
        sum += st->time_s;
        if (st->time_s > mx) mx = st->time_s;
        if (st->memory_bytes > r->memory_peak_bytes) r->memory_peak_bytes = st->memory_bytes;
    }
    r->ilp_solves = solves;
    r->iteration_time_s = sum + (double)(r->microbatches - 1) * mx;
    if (m) {
        int64_t seq = o->seq > 0 ? o->seq : m->seq_len;
        r->model_flops = st_cost_model_flops(m, o->gbs, seq);
        r->tokens_per_s = (double)o->gbs * (double)seq / r->iteration_time_s;
    }
    finish(r, m ? NULL : g, c, o->dtype, gpus);
    r->evaluated = (uint64_t)n;
    r->search_time_s = st_clock_s() - t0;
    return 0;
}

/* ------------------------------------------------------------ a stage's work, step by step */

static int work_push(st_as_work *w, int part, int bwd, st_as_step st) {
    int *n = &w->n[part][bwd], *cap = &w->cap[part][bwd];
    if (*n == *cap) {
        int nc = *cap ? 2 * *cap : 16;
        st_as_step *p = realloc(w->step[part][bwd], (size_t)nc * sizeof *p);
        if (!p) return ST_ENOMEM;
        w->step[part][bwd] = p;
        *cap = nc;
    }
    w->step[part][bwd][(*n)++] = st;
    return 0;
}

static int push_colls(st_as_work *w, int part, int bwd, int op, int src, const st_reshard_step *rs, int k) {
    for (int i = 0; i < k; i++) {
        st_as_step st = {.coll = rs[i].coll, .axis = rs[i].axis, .time_s = rs[i].time_s, .bytes = rs[i].bytes, .op = op,
                         .src = src};
        if (work_push(w, part, bwd, st)) return ST_ENOMEM;
    }
    return 0;
}

void st_as_work_free(st_as_work *w) {
    for (int p = 0; p < ST_AS_PARTS; p++)
        for (int b = 0; b < 2; b++) free(w->step[p][b]);
    memset(w, 0, sizeof *w);
}

int st_autoshard_work(const st_autoshard_result *r, int stage, const st_cluster *c, const st_profile *prof,
                      st_dtype dt, st_as_work *w, st_error *err) {
    memset(w, 0, sizeof *w);
    const st_graph *g = r->g;
    const st_as_stage *st = &r->stage[stage];
    int n = g->nops, L = st_graph_units(g), k = st->last - st->first, gpu = 0;
    for (int i = 0; i < stage; i++) gpu += r->stage[i].mesh.nodes * r->stage[i].mesh.gpus;
    st_cluster v; /* the stage's own GPUs, as the planner priced it */
    st_cluster_view(c, gpu, st->mesh.nodes * st->mesh.gpus, &v);
    ctx x;
    int rc = ctx_init(&x, g, &v, prof, &st->mesh, dt, r->microbatches, err);
    x.recompute = st->recompute && g->block_in >= 0;
    x.zero = st->zero;
    x.entering = st->first > 0 ? st_graph_unit_tensor(g, st->first) : -1;
    int *si = malloc((size_t)n * sizeof *si), *part = malloc((size_t)n * sizeof *part);
    if (!rc && (!si || !part)) rc = st_error_set(err, ST_ENOMEM, NULL, NULL, "out of memory");
    if (rc) goto out;
    /* each op's strategy and part (as final_stage scopes the stage) */
    int seen_block = 0;
    for (int ti = 0; ti < n; ti++) {
        int o = g->topo[ti];
        si[o] = -1;
        if (g->ops[o].block) seen_block = 1, part[o] = ST_AS_LAYER;
        else part[o] = seen_block ? ST_AS_TAIL : ST_AS_HEAD;
        if (st->choice[o].lab[0] == '-') continue;
        for (int j = 0; j < x.ops[o].n && si[o] < 0; j++)
            if (x.ops[o].s[j].lab[0] == st->choice[o].lab[0] &&
                (st->mesh.naxes < 2 || x.ops[o].s[j].lab[1] == st->choice[o].lab[1]))
                si[o] = j;
        if (si[o] < 0) {
            rc = st_error_set(err, ST_EINVAL, NULL, g->ops[o].name, "operator '%s': not a valid sharding", g->ops[o].name);
            goto out;
        }
    }
    int leaving = st->last < L ? st_graph_unit_tensor(g, st->last) : -1;
    for (int o = 0; o < n; o++) {
        const st_gtensor *t = &g->t[g->ops[o].out];
        x.sink[o] = t->nconsumers == 0 || (leaving >= 0 && o == g->t[leaving].producer);
    }
    st_reshard_step rs[2], rb[2];
    int nf, nb;
    /* forward, in topological order: each input's resharding, then the op, then what it resolves */
    for (int ti = 0; ti < n && !rc; ti++) {
        int co = g->topo[ti];
        if (si[co] < 0) continue;
        const st_gop *op = &g->ops[co];
        const strat *b = &x.ops[co].s[si[co]];
        for (int i = 0; i < op->nin && !rc; i++) {
            int t = op->in[i], pr = g->t[t].producer;
            if (x.entering >= 0 && t == x.entering && (pr < 0 || si[pr] < 0)) { /* from the previous stage */
                strat a = arrival(&x, t);
                int pt = part[co] == ST_AS_LAYER ? ST_AS_ENTER : part[co];
                edge_steps(&x, t, a.out, op, i, b, rs, &nf, rb, &nb);
                rc = push_colls(w, pt, 0, co, -1, rs, nf) || push_colls(w, pt, 1, co, -1, rb, nb) ? ST_ENOMEM : 0;
                if (rc) break;
            }
            int via, src = edge_source(g, si, co, i, &via); /* pr's output, or what holds it for co */
            if (src >= 0 && si[src] >= 0) {
                int pt = part[src] == part[co] ? part[co] : part[co] == ST_AS_LAYER ? ST_AS_ENTER : ST_AS_LEAVE;
                edge_steps(&x, t, src_layout(&x.ops[src].s[si[src]], via), op, i, b, rs, &nf, rb, &nb);
                rc = push_colls(w, pt, 0, co, src, rs, nf) || push_colls(w, pt, 1, co, src, rb, nb) ? ST_ENOMEM : 0;
            }
            if (!rc && t == g->block_in && k > 1 && g->block_out >= 0) { /* from the previous layer */
                int lp = g->t[g->block_out].producer;
                if (lp >= 0 && si[lp] >= 0) {
                    edge_steps(&x, g->block_out, x.ops[lp].s[si[lp]].out, op, i, b, rs, &nf, rb, &nb);
                    rc = push_colls(w, ST_AS_CROSS, 0, co, lp, rs, nf) || push_colls(w, ST_AS_CROSS, 1, co, lp, rb, nb)
                         ? ST_ENOMEM
                         : 0;
                }
            }
        }
        if (rc) break;
        st_op lo; /* what one device runs, as the ILP priced it */
        local_op(&x, co, b, &lo);
        st_as_step cs = {.coll = ST_COLL_NONE, .axis = -1, .time_s = b->fwd_s, .bytes = lo.fwd_bytes, .op = co,
                         .src = -1, .m = lo.m, .n = lo.n, .k = lo.k, .batch = lo.batch, .flops = lo.fwd_flops};
        if (work_push(w, part[co], 0, cs)) rc = ST_ENOMEM;
        cs.time_s = b->bwd_s, cs.bytes = lo.bwd_bytes, cs.flops = lo.bwd_flops;
        if (!rc && work_push(w, part[co], 1, cs)) rc = ST_ENOMEM;
        int nl;
        loss_comm(&x, co, b, rs, &nl);
        if (!rc) rc = push_colls(w, part[co], 0, co, co, rs, nl);
        sink_cost(&x, co, b, rs, &nf);
        if (!rc) rc = push_colls(w, part[co] == ST_AS_LAYER ? ST_AS_LEAVE : part[co], 0, co, co, rs, nf);
        double mult = g->ops[co].block ? (double)k : 1, ts[2], by[2], gs[2], gb[2];
        grad_sync(&x, co, b, x.zero, ts, by, gs, gb);
        for (int a = 0; a < st->mesh.naxes; a++) {
            w->sync_s[a] += mult * ts[a], w->sync_bytes[a] += mult * by[a];
            w->gather_s[a] += mult * gs[a], w->gather_bytes[a] += mult * gb[a];
        }
        w->state_bytes += mult * b->state_bytes[x.zero];
        if (x.recompute && g->ops[co].block) {
            w->recompute_bytes += b->saved_bytes; /* one layer's, while it is recomputed */
            if (co == g->t[g->block_out].producer) w->saved_bytes += mult * layer_input_bytes(&x, b);
        } else {
            w->saved_bytes += mult * b->saved_bytes;
        }
    }
    w->recompute = x.recompute;
    w->zero = x.zero;
    if (rc) {
        st_error_set(err, rc, NULL, NULL, "out of memory");
        goto out;
    }
    /* backward runs each part's list in reverse: per op, [its inputs' resharding, its compute]
     * becomes [its backward compute, its inputs' gradient resharding] */
    for (int p = 0; p < ST_AS_PARTS; p++) {
        st_as_step *v = w->step[p][1];
        for (int i = 0, j = w->n[p][1] - 1; i < j; i++, j--) {
            st_as_step tmp = v[i];
            v[i] = v[j], v[j] = tmp;
        }
    }
    w->p2p_s = st->p2p_s;
    if (stage > 0) w->p2p_in_s = pair_p2p(g, r->stage, stage - 1, c, prof, &w->p2p_in_bytes) / 2;
    if (stage < r->nstages - 1) w->p2p_out_s = pair_p2p(g, r->stage, stage, c, prof, &w->p2p_out_bytes) / 2;
out:
    if (rc) st_as_work_free(w);
    free(si), free(part);
    ctx_free(&x);
    return rc;
}
