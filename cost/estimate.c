/* estimate.c: iteration time of a plan, assembled from operator costs.
 *
 * Per micro-batch and pipeline chunk: forward and backward compute of its blocks (plus the
 * embedding on the first chunk, logits and loss on the last), recompute (selective: the
 * attention core, i.e. softmax and dropout unfused, the fused kernel's forward with flash; full:
 * the whole forward again, with its collectives), and the tp/cp/ep collectives, which
 * Megatron-LM runs on the critical path (no overlap by default). Pipeline send/recv of the
 * activations (fwd and bwd) between stages, also blocking in Megatron's schedules.
 *
 * Pipeline (Narayanan et al. SC'21, Sec. 2.2): with t_d the time of device d per micro-batch and
 * m micro-batches, T = m * max_d t_d + (sum_d t_d - max_d t_d) / vp; for equal stages this is
 * (m + (pp-1)/vp) * t, the 1F1B bubble (pp-1)/m and the interleaved one (pp-1)/(m vp). GPipe has
 * 1F1B's time. ZB-H1 (Qi et al. 2023, arXiv 2401.10241, Sec. 3.1 and Fig. 3) splits backward into input-
 * and weight-gradient halves; src/lower runs the paper's order (torch.distributed.pipelining's
 * ScheduleInterleavedZeroBubble with one stage per rank): 1F1B's forwards and input halves, stage d
 * holding d weight halves back. On equal stages with m >= pp that is m (t_F + t_B + t_W) plus
 * (pp - 1) max(t_F, t_B, t_F + t_B - t_W): the paper's bubble (pp - 1)(t_F + t_B - t_W) where t_W is at
 * most t_F and t_B. On unequal stages neither it nor 1F1B's sum - max is exact, so
 * st_cost_zb_pipeline_s plays the order out over each stage's t_F, t_B, t_W (pass_split), its sends
 * queued on one P2P stream as the lowering queues them, in O(pp m) steps: the simulator's time for
 * those passes to the last bit (tests/test_lower.c, test_zb_unequal).
 *
 * ZB-V (Qi et al., arXiv 2401.10241 Sec. 6; the order torch.distributed.pipelining's
 * ScheduleZBVZeroBubble runs, which src/lower/lower.c follows): two chunks per rank in a V, each
 * micro-batch's forward f, input gradient b and weight gradient w per chunk. The paper's "zero
 * bubble" assumes f = b = w and leaves out the start; played out with m >= 2 pp - 1 micro-batches
 * (what the plan checks) and b = w, as strata splits a backward, the time is m * 2 (f + 2b) plus
 *     max((pp - 1) b, (2 pp - 3) f - (pp - 2) b, (2 pp - 2) f - pp b)
 * (the first term is the ranks' staggered start when f <= b; the others the forward chain's when
 * forwards are slower), exact against an event simulation of that order for pp 2-12 and the
 * simulator's (tests/test_lower.c). The stage's time per micro-batch less its forward is the two
 * chunks' backwards, comm and recompute included: b is a quarter of it, an average where recompute
 * or collectives make the input half longer than the weight half. With f = b that is (pp - 1) b,
 * a sixth of the 1F1B bubble at the same stage times.
 *
 * DualPipe (DeepSeek-V3 technical report, arXiv 2412.19437, Sec. 3.2.1 and Table 2; the schedule of
 * deepseek-ai/DualPipe's dualpipe.py): two copies of the model, rank d holding stage d of one and
 * stage pp - 1 - d of the other, half the m micro-batches entering at each end; a forward chunk runs
 * beside a backward chunk of the other direction (F&B), hiding the expert all-to-all and the pipeline
 * messages (stage_cost). Each rank passes m micro-batches through one of its stages: m / 2 pairs of
 * time t (a forward and a backward of each stage), plus Table 2's bubble
 *     (pp / 2 - 1) (F&B + B - 3 W)
 * with F&B = t / 2, B a chunk's whole backward and W its weight-gradient half (st_cost_pipeline_s).
 * Table 2's form is the report's; played out in dualpipe.py's order (its eight steps, list-scheduled
 * with no communication, F&B = F + B, input and weight halves b = w) the bubble is
 * max((pp - 2) f, (pp / 2 - 1)(f + w) - f) with f a chunk's forward (exact for pp 2-16, even m from
 * 2 pp up): Table 2's at f = w, at most f lower when forwards are shorter and (pp / 2 - 1)(f - w)
 * higher when they are longer. The estimate keeps Table 2's; src/lower plays the order out (lower.c,
 * dualpipe_order), and tests/test_lower.c's test_dualpipe checks the simulated iteration against both
 * forms.
 * Table 2's parameters x2 and activations pp + 1 micro-batches: cost/memory.c. The two copies'
 * gradients are summed by an all-reduce between rank d and rank pp - 1 - d before the data-parallel
 * reduction (st_cost_dualpipe_mirror).
 *
 * Data parallelism after the last backward (Megatron's default; with overlap_grad_reduce only
 * what outlasts the last micro-batch's backward is exposed, with overlap_param_gather the gather's
 * first bucket and what outlasts the next forward, st_cost_param_gather_exposed): all-reduce of
 * the gradients (zero 0), reduce-scatter of gradients + all-gather of 16-bit weights (zero 1, 2), and for zero 3 the
 * weight all-gathers of every micro-batch's forward and backward, overlapped with the compute
 * stream's work (prefetch on a stream of its own) so that only the excess is exposed; that excess
 * stretches every micro-batch, so it is part of the stage's time in the pipeline (zero3_mb). Tied
 * embeddings with pp > 1 all-reduce the embedding gradient between the first and the last stage. Then the optimizer step (Adam, HBM
 * bound; on the CPU with offload=optimizer, after the gradients cross PCIe). With offload=params
 * the weights also cross PCIe, layer by layer, before every forward and backward: what a pass's
 * copies do not hide stretches the stage's micro-batches like ZeRO-3's traffic (offload_mb).
 *
 * tp_overlap (Megatron-LM --tp-comm-overlap: Transformer Engine's userbuffers; torchtitan's async
 * TP does the same with symmetric memory): with sp, each tp all-gather and reduce-scatter of a
 * block's attention and MLP runs beside a GEMM, cut into pieces, as TE's ub configurations pair
 * them (transformer_engine/pytorch/module/base.py, initialize_ub): qkv_fprop and fc1_fprop (the
 * all-gather before qkv and fc1, ring exchange), proj_fprop and fc2_fprop (the reduce-scatter after
 * proj and fc2, pipelined), proj_dgrad and fc2_dgrad (backward's all-gather of the output gradient,
 * ring exchange beside the input-gradient GEMM), qkv_wgrad and fc1_wgrad (backward's reduce-scatter
 * of qkv's and fc1's input gradient, in bulk beside their weight-gradient GEMM). TE's other two,
 * qkv_dgrad and fc1_dgrad, re-gather the saved input for the weight gradient, which strata does not
 * price. The embedding's, the output layer's and the loss's collectives and MoE layers stay as they
 * are (no TE userbuffers there). What a collective of time c beside a GEMM of time g exposes
 * (ub_exposed): bulk max(0, c - g); ring exchange in n = tp pieces max(0, c - g (n - 1) / n) (the last GEMM piece
 * has no transfer beside it); pipelined in n pieces c / n + (n - 1) / n max(0, c - g) (the first
 * GEMM piece and the last reduce-scatter run alone). On top: the GEMM cut into n pieces, priced as n
 * GEMMs of 1/n of its rows (st_cost_op_time), less the whole; and the SMs the communication holds
 * (st_cost_overlap_tax_sms: ST_UB_SMS for the whole GEMM where TE sets an SM margin, ST_UB_RING_SMS
 * while the ring's transfers run). The result is the collective's time in the breakdown's tp part.
 *
 * cp=p2p (Transformer Engine's ring, src/core/opgraph.c): the cp exchange's all-gather and
 * reduce-scatter are priced as the ring runs them, one send/recv per step beside the attention on
 * the block in hand (cp_ring, st_cost_cp_ring_exposed): each step exposes max(0, transfer - step)
 * and NCCL's SMs slow the step by the hidden part (st_cost_overlap_tax). all_gather and a2a run
 * their collectives exposed, as TE does. */
#include "cost_private.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

st_cost_ctx *st_cost_ctx_new(const st_model *m, const st_cluster *c, const st_profile *prof) {
    st_cost_ctx *ctx = calloc(1, sizeof *ctx);
    if (!ctx) return NULL;
    ctx->m = m;
    ctx->c = c;
    ctx->prof = prof;
    /* per-block kinds (issue 15's structure): prefix counts once, so that a stage's blocks are two
     * lookups per kind instead of a walk over its layers for every plan priced */
    int64_t probe[ST_MAX_KINDS];
    if (st_model_kinds(m, probe) > 1 && m->layers > 0) {
        unsigned char *kind_of = malloc((size_t)m->layers);
        ctx->kind_prefix = calloc((size_t)(m->layers + 1) * ST_MAX_KINDS, sizeof *ctx->kind_prefix);
        if (!kind_of || !ctx->kind_prefix) {
            free(kind_of);
            st_cost_ctx_free(ctx);
            return NULL;
        }
        st_model_layer_kinds(m, kind_of);
        for (int64_t l = 0; l < m->layers; l++) {
            for (int k = 0; k < ST_MAX_KINDS; k++)
                ctx->kind_prefix[(l + 1) * ST_MAX_KINDS + k] = ctx->kind_prefix[l * ST_MAX_KINDS + k];
            ctx->kind_prefix[(l + 1) * ST_MAX_KINDS + kind_of[l]]++;
        }
        free(kind_of);
    }
    return ctx;
}

const st_cluster *st_cost_cluster(const st_cost_ctx *ctx) { return ctx->c; }
const st_model *st_cost_model(const st_cost_ctx *ctx) { return ctx->m; }

/* A view of node groups g0..g1 and the context that prices on it (st_cost_view). */
struct st__view {
    st_cluster c;
    st_cost_ctx *ctx;
};

st_cost_ctx *st_cost_view(st_cost_ctx *ctx, int64_t first, int64_t n) {
    const st_cluster *c = ctx->c;
    if (c->ngroups == 0) return ctx;
    int g0 = st_cluster_rank_group(c, first), g1 = st_cluster_rank_group(c, first + (n > 0 ? n : 1) - 1);
    struct st__view **slot = &ctx->views[g0 * ST_MAX_GROUPS + g1];
    if (!*slot) {
        struct st__view *v = malloc(sizeof *v);
        if (!v) return NULL;
        st_cluster_view(c, first, n, &v->c);
        v->ctx = st_cost_ctx_new(ctx->m, &v->c, ctx->prof);
        if (!v->ctx) {
            free(v);
            return NULL;
        }
        *slot = v;
    }
    return (*slot)->ctx;
}

/* Only what was allocated is freed: the shard costs by their chain, the layouts by the slots listed
 * when built. Walking the tables (4,096 and 1,024 slots) instead made the fuzzing of calibrate --runs
 * (a context per fold and evaluation) spend half its time there: each empty slot's test is a
 * coverage callback, and free(NULL) records a stack trace under a sanitizer. */
void st_cost_ctx_free(st_cost_ctx *ctx) {
    if (!ctx) return;
    for (int i = 0; i < ST_MAX_GROUPS * ST_MAX_GROUPS; i++)
        if (ctx->views[i]) {
            st_cost_ctx_free(ctx->views[i]->ctx);
            free(ctx->views[i]);
        }
    for (int i = 0; i < ctx->nused; i++) {
        free(ctx->layouts[ctx->used[i]].cls);
        free(ctx->layouts[ctx->used[i]].of);
    }
    free(ctx->scratch.cls);
    free(ctx->scratch.of);
    free(ctx->kind_prefix);
    for (st__shard_cost *e = ctx->entries, *next; e; e = next) {
        next = e->next;
        free(e);
    }
    free(ctx);
}

/* One collective of op o: the expert all-to-all of a model with group-limited routing priced as the
 * routing sends it (st_cost_alltoall_routed), every other as st_cost_collective prices it. */
static double op_collective(const st_cost_ctx *ctx, const st_op *o, const st_group *g, st_coll coll, double bytes) {
    const st_model *m = ctx->m;
    if (coll == ST_COLL_ALLTOALL && o->coll_group == ST_GRP_EP && m->router_groups > 0)
        return st_cost_alltoall_routed(ctx->c, ctx->prof, g, bytes, (double)m->experts_topk,
                                       (double)st_model_token_nodes(m, g->nodes));
    return st_cost_collective(ctx->c, ctx->prof, coll, g, bytes);
}

void st_cost_op(const st_cost_ctx *ctx, const st_plan *p, const st_op *op, st_op_cost *out) {
    out->fwd_s = st_cost_op_time(ctx->c, ctx->prof, op, p->dtype, 0);
    out->bwd_s = st_cost_op_time(ctx->c, ctx->prof, op, p->dtype, 1);
    out->fwd_coll_s = out->bwd_coll_s = 0;
    if (op->fwd_coll != ST_COLL_NONE || op->bwd_coll != ST_COLL_NONE) {
        st_group g;
        st_cost_group(ctx->c, p, op->coll_group, &g);
        out->fwd_coll_s = op_collective(ctx, op, &g, op->fwd_coll, st_op_fwd_coll_bytes(op));
        out->bwd_coll_s = op_collective(ctx, op, &g, op->bwd_coll, op->coll_bytes);
    }
}

double st_cost_op_recompute(const st_op *o, st_recompute rc, int *coll) {
    int c = 0;
    double f = 0;
    switch (rc) {
    case ST_REC_SELECTIVE: f = o->selective ? 1 : 0; break;
    case ST_REC_FULL: f = 1, c = 1; break;
    case ST_REC_OP:
        /* the policy saves the reduce-scatter's output and the ep all-to-all's (src/core/opgraph.c, moe_sac) */
        f = o->op_recompute;
        c = f > 0 && o->fwd_coll != ST_COLL_REDUCESCATTER &&
            !(o->coll_group == ST_GRP_EP && o->fwd_coll == ST_COLL_ALLTOALL);
        break;
    default: break;
    }
    if (coll) *coll = c;
    return f;
}

static double max0(double x) { return x > 0 ? x : 0; }

/* ---- tp_overlap (file comment) */

typedef enum { UB_RING, UB_PIPELINE, UB_BULK } ub_method;

/* TE's pairs: the operator whose collective (st_op.fwd_coll / bwd_coll) overlaps, the GEMM it
 * overlaps, and how in forward (fprop) and backward (dgrad for ring exchange, wgrad for bulk) */
static const struct ub_pair {
    const char *at, *gemm;
    ub_method fwd, bwd;
} ub_pairs[] = {
    {"ln1", "qkv", UB_RING, UB_BULK},      /* qkv_fprop all-gather, qkv_wgrad reduce-scatter */
    {"proj", "proj", UB_PIPELINE, UB_RING}, /* proj_fprop reduce-scatter, proj_dgrad all-gather */
    {"ln2", "fc1", UB_RING, UB_BULK},      /* fc1_fprop, fc1_wgrad */
    {"fc2", "fc2", UB_PIPELINE, UB_RING},   /* fc2_fprop, fc2_dgrad */
};

/* what a collective of c_s beside a GEMM of g_s leaves exposed, in n pieces (file comment) */
static double ub_exposed(ub_method m, double c_s, double g_s, double n) {
    if (m == UB_RING) return max0(c_s - g_s * (n - 1) / n);
    if (m == UB_PIPELINE) return c_s / n + (n - 1) / n * max0(c_s - g_s);
    return max0(c_s - g_s);
}

/* A tp collective of c_s overlapped with GEMM gemm (g_s of it: its forward, or half its backward,
 * the input- or the weight-gradient GEMM of equal FLOPs): its exposed time, the GEMM's cutting into
 * pieces (forward-shaped: the input gradient has the same dimensions and FLOPs) and the SMs the
 * communication takes from it. */
static double ub_price(const st_cost_ctx *ctx, const st_plan *p, ub_method m, double c_s, const st_op *gemm,
                       double g_s) {
    if (c_s <= 0) return 0;
    double n = m == UB_RING ? p->tp : m == UB_PIPELINE ? ST_UB_PIPELINE_SPLITS : 1, cut_s = 0;
    if (n > 1) {
        /* n GEMMs of m / n rows; the bytes scale alike (each piece re-reads the weight: left out,
         * the GEMMs TE overlaps are compute-bound). Not the launches: TE issues the pieces from C++
         * on streams of their own (_NUM_MAX_UB_STREAMS of them, base.py), each launched while
         * another runs, so only the smaller pieces' lower efficiency counts. */
        st_op piece = *gemm;
        piece.m /= n;
        piece.fwd_flops /= n;
        piece.fwd_bytes /= n;
        cut_s = max0(n * st_cost_op_time(ctx->c, ctx->prof, &piece, p->dtype, 0) -
                     st_cost_op_time(ctx->c, ctx->prof, gemm, p->dtype, 0) -
                     (n - 1) * gemm->kernels_fwd * st_cost_launch_s(ctx->c));
    }
    double tax_s = m == UB_RING ? st_cost_overlap_tax_sms(ctx->c, c_s < g_s ? c_s : g_s, ST_UB_RING_SMS)
                                : st_cost_overlap_tax_sms(ctx->c, g_s, ST_UB_SMS);
    return ub_exposed(m, c_s, g_s, n) + cut_s + tax_s;
}

static int op_index(const st_op *ops, int n, const char *name) {
    for (int i = 0; i < n; i++)
        if (strcmp(ops[i].name, name) == 0) return i;
    return -1;
}

/* ---- cp=p2p's ring (file comment; src/core/opgraph.c, "Context parallelism") */

double st_cost_cp_ring_exposed(const st_cluster *c, double x_s, double x2_s, double first_s, double other_s,
                               double n, int backward) {
    double exposed, hidden;
    if (n < 2) return 0;
    if (!backward) { /* kvb beside steps 0 (causal) .. n - 2 */
        exposed = max0(x_s - first_s) + (n - 2) * max0(x_s - other_s);
        hidden = fmin(x_s, first_s) + (n - 2) * fmin(x_s, other_s);
    } else { /* kvb beside step 0, 2 kvb beside steps 1 .. n - 2, kvb beside the causal last */
        exposed = max0(x_s - other_s) + (n - 2) * max0(x2_s - other_s) + max0(x_s - first_s);
        hidden = fmin(x_s, other_s) + (n - 2) * fmin(x2_s, other_s) + fmin(x_s, first_s);
    }
    return exposed + st_cost_overlap_tax(c, hidden);
}

/* The ring's exposed time in place of the exchange's collective times (ops[x]): its transfers
 * beside the core attention's steps (the operators cp splits; an unfused core's time is cut into
 * cp equal steps). */
static void cp_ring(const st_cost_ctx *ctx, const st_plan *p, const st_op *ops, int n, int x, st_op_cost *out) {
    double first[2] = {0, 0}, other[2] = {0, 0}, cp = p->cp;
    for (int i = 0; i < n; i++) {
        if (!(ops[i].splits & ST_SPLIT_CP)) continue;
        for (int b = 0; b < 2; b++) {
            double t = b ? out[i].bwd_s : out[i].fwd_s;
            if (ops[i].ring_steps > 1) {
                st_op a, o;
                st__ring_step(&ops[i], 1, &a);
                st__ring_step(&ops[i], 0, &o);
                first[b] += st_cost_op_time(ctx->c, ctx->prof, &a, p->dtype, b);
                other[b] += st_cost_op_time(ctx->c, ctx->prof, &o, p->dtype, b);
            } else {
                first[b] += t / cp, other[b] += t / cp;
            }
        }
    }
    st_group g;
    st_cost_group(ctx->c, p, ST_GRP_CP, &g);
    double kvb = ops[x].coll_bytes / cp;
    double x1 = st_cost_collective(ctx->c, ctx->prof, ST_COLL_SENDRECV, &g, kvb);
    double x2 = st_cost_collective(ctx->c, ctx->prof, ST_COLL_SENDRECV, &g, 2 * kvb);
    out[x].fwd_coll_s = st_cost_cp_ring_exposed(ctx->c, x1, x2, first[0], other[0], cp, 0);
    out[x].bwd_coll_s = st_cost_cp_ring_exposed(ctx->c, x1, x2, first[1], other[1], cp, 1);
}

void st_cost_ops(const st_cost_ctx *ctx, const st_plan *p, const st_op *ops, int n, st_op_cost *out) {
    for (int i = 0; i < n; i++) st_cost_op(ctx, p, &ops[i], &out[i]);
    if (p->cp > 1 && p->cp_comm == ST_CP_P2P)
        for (int i = 0; i < n; i++)
            if (ops[i].coll_group == ST_GRP_CP && ops[i].fwd_coll == ST_COLL_ALLGATHER) cp_ring(ctx, p, ops, n, i, out);
    if (!p->tp_overlap || p->tp < 2 || !p->sp) return;
    for (size_t k = 0; k < sizeof ub_pairs / sizeof ub_pairs[0]; k++) {
        int a = op_index(ops, n, ub_pairs[k].at), g = op_index(ops, n, ub_pairs[k].gemm);
        if (a < 0 || g < 0 || ops[a].coll_group != ST_GRP_TP) continue; /* (an MoE layer has no fc1) */
        out[a].fwd_coll_s = ub_price(ctx, p, ub_pairs[k].fwd, out[a].fwd_coll_s, &ops[g], out[g].fwd_s);
        out[a].bwd_coll_s = ub_price(ctx, p, ub_pairs[k].bwd, out[a].bwd_coll_s, &ops[g], out[g].bwd_s / 2);
    }
}

static void pass_add_ops(st_cost_ctx *ctx, const st_plan *p, const st_op *ops, int n, st__pass *out) {
    st_op_cost costs[ST_MAX_OPS];
    memset(out, 0, sizeof *out);
    st_cost_ops(ctx, p, ops, n, costs);
    double gpu_fwd_s = 0, gpu_bwd_s = 0;
    for (int i = 0; i < n; i++) gpu_fwd_s += costs[i].fwd_s, gpu_bwd_s += costs[i].bwd_s;
    /* a host-bound block stretches each of its operators alike (the lowering scales them so too) */
    double stretch_fwd = st_cost_host_stretch(ctx->c, ops, n, gpu_fwd_s, 0);
    double stretch_bwd = st_cost_host_stretch(ctx->c, ops, n, gpu_bwd_s, 1);
    for (int i = 0; i < n; i++) {
        const st_op *o = &ops[i];
        st_op_cost oc = costs[i];
        oc.fwd_s *= stretch_fwd;
        oc.bwd_s *= stretch_bwd;
        out->fwd_s += oc.fwd_s;
        out->bwd_s += oc.bwd_s;
        if (o->selective) {
            out->sel_fwd_s += oc.fwd_s;
            out->sel_bytes += o->saved_bytes - o->ckpt_kept_bytes;
        }
        out->saved_bytes += o->saved_bytes;
        if (o->cls == ST_OPC_GEMM && (o->params > 0 || o->shared_weight)) {
            out->wgrad_bytes += o->saved_bytes;
            out->dy_bytes += o->dy_bytes;
            /* its input is the operator before's output: saved by recompute=op when that one's is (op_sac) */
            if (i == 0 || !(ops[i - 1].op_saved_bytes > 0)) out->op_wgrad_bytes += o->saved_bytes;
        }
        int coll;
        out->op_fwd_s += st_cost_op_recompute(o, ST_REC_OP, &coll) * oc.fwd_s;
        if (coll) out->op_comm_s[o->coll_group] += oc.fwd_coll_s;
        out->op_bytes += o->op_saved_bytes;
        out->op_comm_bytes += o->op_comm_bytes;
        if (o->expert)
            out->expert_params += o->params;
        else
            out->params += o->params;
        if (o->quant) out->quant_params += o->params;
        if (o->work_bytes > out->work_bytes) out->work_bytes = o->work_bytes;
        out->kernels += o->kernels_fwd + o->kernels_bwd;
        out->fwd_comm_s[o->coll_group] += oc.fwd_coll_s;
        out->bwd_comm_s[o->coll_group] += oc.bwd_coll_s;
    }
    if (n > 0) out->input_bytes = ops[0].input_bytes; /* a block opens with its norm, whose input it is */
}

const st__shard_cost *st__cost_shard(st_cost_ctx *ctx, const st_plan *p) {
    uint64_t h = 1469598103934665603ULL;
    int64_t key[12] = {p->tp, p->cp, p->ep, p->sp, p->mbs, p->seq, p->dtype, p->grad_bytes, p->attention,
                       p->tp_overlap, p->cp_comm, p->kernels};
    for (int i = 0; i < 12; i++) h = (h ^ (uint64_t)key[i]) * 1099511628211ULL;
    st__shard_cost *e = NULL;
    for (int probe = 0; probe < 8; probe++) {
        st__shard_cost **slot = &ctx->cache[(h + (uint64_t)probe) % ST_COST_CACHE], *c = *slot;
        if (!c) {
            e = *slot = malloc(sizeof *e);
            if (e)
                e->next = ctx->entries, ctx->entries = e;
            else
                e = &ctx->spare; /* priced, not kept */
            break;
        }
        if (c->tp == p->tp && c->cp == p->cp && c->ep == p->ep && c->sp == p->sp && c->mbs == p->mbs &&
            c->seq == p->seq && c->dtype == p->dtype && c->grad_bytes == p->grad_bytes &&
            c->attention == p->attention && c->kernels == p->kernels && c->tp_overlap == p->tp_overlap && c->cp_comm == p->cp_comm)
            return c;
    }
    if (!e) e = ctx->cache[h % ST_COST_CACHE]; /* table crowded: overwrite */
    st__shard_cost *chain = e->next;
    memset(e, 0, sizeof *e);
    e->next = chain;
    st_shard s;
    st_plan_shard(p, &s);
    st_op ops[ST_MAX_OPS];
    const st_model *m = ctx->m;
    int n;
    int64_t rep[ST_MAX_KINDS]; /* one block of each kind */
    int nk = st_model_kinds(m, rep);
    for (int k = 0; k < nk; k++) {
        n = st_ops_layer(m, &s, rep[k], ops, ST_MAX_OPS);
        pass_add_ops(ctx, p, ops, n, &e->kind[k]);
    }
    n = st_ops_head(m, &s, ops, ST_MAX_OPS);
    pass_add_ops(ctx, p, ops, n, &e->head);
    n = st_ops_tail(m, &s, ops, ST_MAX_OPS);
    pass_add_ops(ctx, p, ops, n, &e->tail);
    e->nk = nk;
    e->tp = p->tp, e->cp = p->cp, e->ep = p->ep, e->sp = p->sp;
    e->mbs = p->mbs, e->seq = p->seq, e->dtype = p->dtype, e->grad_bytes = p->grad_bytes;
    e->attention = p->attention;
    e->kernels = p->kernels;
    e->tp_overlap = p->tp_overlap;
    e->cp_comm = p->cp_comm;
    return e;
}

void st__cost_count_blocks(const st_cost_ctx *ctx, int64_t first, int64_t n, int64_t count[ST_MAX_KINDS]) {
    if (!ctx->kind_prefix) {
        st_model_count_kinds(ctx->m, first, n, count);
        return;
    }
    int64_t end = first + n < ctx->m->layers ? first + n : ctx->m->layers;
    if (first > end) first = end;
    for (int k = 0; k < ST_MAX_KINDS; k++)
        count[k] = ctx->kind_prefix[end * ST_MAX_KINDS + k] - ctx->kind_prefix[first * ST_MAX_KINDS + k];
}

/* ---- stage classes */

static void fill_class(st_cost_ctx *ctx, const st_plan *p, const int *chunk_layers, int stage, st__stage_class *c) {
    int chunks = p->pp * p->vp;
    memset(c, 0, sizeof *c);
    int64_t first = 0;
    for (int j = 0; j < chunks; j++) {
        if (st_plan_stage_holds(p, stage, j)) {
            int64_t nk[ST_MAX_KINDS];
            st__cost_count_blocks(ctx, first, chunk_layers[j], nk);
            for (int k = 0; k < ST_MAX_KINDS; k++) c->n[k] += nk[k];
            if (j == 0) c->head = 1;
            if (j == chunks - 1) c->tail = 1;
        }
        first += chunk_layers[j];
    }
    c->first = stage;
    c->count = 1;
}

void st__cost_stage_class(st_cost_ctx *ctx, const st_plan *p, int stage, st__stage_class *out) {
    int chunk_layers[ST_MAX_STAGES];
    st_plan_chunk_layers(p, ctx->m, chunk_layers);
    fill_class(ctx, p, chunk_layers, stage, out);
}

/* how chunks sit on stages (st__layout.v): 0 round robin, 1 zbv's V, 2 dualpipe's two copies */
static int placement(const st_plan *p) {
    return p->schedule == ST_SCHED_ZBV ? 1 : p->schedule == ST_SCHED_DUALPIPE ? 2 : 0;
}

static int build_layout(st_cost_ctx *ctx, const st_plan *p, st__layout *L) {
    int chunk_layers[ST_MAX_STAGES];
    st_plan_chunk_layers(p, ctx->m, chunk_layers);
    st__stage_class *cls = malloc(sizeof *cls * (size_t)p->pp);
    int *of = malloc(sizeof *of * (size_t)p->pp);
    if (!cls || !of) {
        free(cls);
        free(of);
        return ST_ENOMEM;
    }
    int n = 0;
    for (int d = 0; d < p->pp; d++) {
        st__stage_class c;
        fill_class(ctx, p, chunk_layers, d, &c);
        int k;
        for (k = 0; k < n; k++)
            if (!memcmp(cls[k].n, c.n, sizeof c.n) && cls[k].head == c.head && cls[k].tail == c.tail) break;
        if (k < n)
            cls[k].count++;
        else
            cls[n++] = c;
        of[d] = k;
    }
    free(L->cls);
    free(L->of);
    L->cls = cls;
    L->of = of;
    L->n = n;
    L->pp = p->pp;
    L->vp = p->vp;
    L->v = placement(p);
    return 0;
}

const st__layout *st__cost_layout(st_cost_ctx *ctx, const st_plan *p) {
    if (p->nstage_layers) return build_layout(ctx, p, &ctx->scratch) ? NULL : &ctx->scratch;
    int v = placement(p);
    st__layout *L = &ctx->layouts[((unsigned)p->pp * 131u + (unsigned)p->vp * 3u + (unsigned)v) % ST_LAYOUT_CACHE];
    if (L->cls && L->pp == p->pp && L->vp == p->vp && L->v == v) return L;
    if (!L->listed) L->listed = 1, ctx->used[ctx->nused++] = (int16_t)(L - ctx->layouts);
    return build_layout(ctx, p, L) ? NULL : L;
}

/* Per-micro-batch time of a stage class, split by kind. */
typedef struct stage_time {
    double compute_s, recompute_s, comm_s[ST_GRP_COUNT], fwd_s, bwd_s, total_s;
    double fwd_comm_s; /* of comm_s, the forward's inline collectives (not the recomputed forward's) */
} stage_time;

static void add_pass(stage_time *t, const st__pass *ps, double count, st_recompute rc, int is_block) {
    if (count <= 0) return;
    t->compute_s += count * (ps->fwd_s + ps->bwd_s);
    t->fwd_s += count * ps->fwd_s;
    t->bwd_s += count * ps->bwd_s;
    double rec = 0;
    if (is_block && rc == ST_REC_SELECTIVE) rec = ps->sel_fwd_s;
    if (is_block && rc == ST_REC_FULL) rec = ps->fwd_s;
    if (is_block && rc == ST_REC_OP) rec = ps->op_fwd_s;
    t->recompute_s += count * rec;
    for (int g = 0; g < ST_GRP_COUNT; g++) {
        double c = ps->fwd_comm_s[g] + ps->bwd_comm_s[g];
        t->fwd_comm_s += count * ps->fwd_comm_s[g];
        if (is_block && rc == ST_REC_FULL) c += ps->fwd_comm_s[g]; /* the recomputed forward talks again */
        if (is_block && rc == ST_REC_OP) c += ps->op_comm_s[g];
        t->comm_s[g] += count * c;
    }
}

/* A stage class's time per micro-batch (under dualpipe per pair of micro-batches, one each way: the
 * class holds both copies' stages, and each micro-batch passes one of them). DualPipe runs a forward
 * chunk beside a backward chunk of the other direction so that "both all-to-all and PP communication
 * can be fully hidden" (DeepSeek-V3 report, Sec. 3.2.1): the ep collectives and the pipeline messages
 * hide behind the pair's compute, up to its length, which the communication kernels' SMs slow
 * (ST_DUALPIPE_COMM_SMS); tp and cp collectives stay exposed (DeepSeek-V3 trains without tp). The
 * warm-up's and cool-down's chunks that run alone are priced overlapped too, as the closed form's F&B
 * assumes. */
static void stage_cost(const st_cluster *cl, const st_plan *p, const st__shard_cost *sc, const st__stage_class *c,
                       double p2p_s, stage_time *t) {
    memset(t, 0, sizeof *t);
    int dual = p->schedule == ST_SCHED_DUALPIPE;
    for (int k = 0; k < sc->nk; k++) add_pass(t, &sc->kind[k], (double)c->n[k], p->recompute, 1);
    if (c->head) add_pass(t, &sc->head, 1, p->recompute, 0);
    if (c->tail) add_pass(t, &sc->tail, 1, p->recompute, 0);
    /* each chunk a micro-batch passes receives and sends, both ways */
    if (p->pp > 1) t->comm_s[ST_GRP_PP] += 2 * (dual ? 2 : p->vp) * p2p_s;
    if (dual) {
        double hide = t->comm_s[ST_GRP_EP] + t->comm_s[ST_GRP_PP], tax;
        double shown = st_cost_dualpipe_overlap(cl, t->compute_s + t->recompute_s, hide, &tax);
        if (hide > 0) {
            t->comm_s[ST_GRP_EP] *= shown / hide;
            t->comm_s[ST_GRP_PP] *= shown / hide;
        }
        t->compute_s += tax;
    }
    t->total_s = t->compute_s + t->recompute_s;
    for (int g = 0; g < ST_GRP_COUNT; g++) t->total_s += t->comm_s[g];
}

double st_cost_dualpipe_overlap(const st_cluster *c, double work_s, double hide_s, double *tax_s) {
    double shown = hide_s > work_s ? hide_s - work_s : 0;
    *tax_s = st_cost_overlap_tax_sms(c, hide_s - shown, ST_DUALPIPE_COMM_SMS);
    return shown;
}

/* Model FLOPs count the full s x s attention whatever kernel runs it (DESIGN.md "Definitions",
 * Megatron-LM's num_floating_point_operations; Dao 2023, Sec. 4.2, keeps that convention for
 * FlashAttention too): the unfused operator list's GEMMs and batched GEMMs are exactly that. */
double st_cost_model_flops(const st_model *m, int64_t gbs, int64_t seq) {
    st_shard s = {.tp = 1, .cp = 1, .ep = 1, .sp = 0, .mbs = 1, .seq = seq, .dtype = ST_DT_BF16,
                  .attention = ST_ATTN_UNFUSED};
    st_op ops[ST_MAX_OPS];
    double per_seq = 0;
    int64_t rep[ST_MAX_KINDS], counts[ST_MAX_KINDS];
    int nk = st_model_kinds(m, rep);
    st_model_count_kinds(m, 0, m->layers, counts);
    for (int k = 0; k < nk; k++) {
        int64_t count = counts[k];
        int n = st_ops_layer(m, &s, rep[k], ops, ST_MAX_OPS);
        for (int i = 0; i < n; i++)
            if (ops[i].cls == ST_OPC_GEMM || ops[i].cls == ST_OPC_BGEMM) per_seq += ops[i].fwd_flops * (double)count;
    }
    int n = st_ops_tail(m, &s, ops, ST_MAX_OPS);
    for (int i = 0; i < n; i++)
        if (ops[i].cls == ST_OPC_GEMM) per_seq += ops[i].fwd_flops;
    return 3.0 * per_seq * (double)gbs;
}

/* Pipeline p2p: one micro-batch's message (st_cost_p2p_bytes: Megatron-Core's, which every tp rank
 * sends whole and nobody gathers) between neighbour stages, every GPU of a node sending at once.
 * With pp_partition each tp rank sends its 1/tp and the tp group all-gathers the whole message
 * (DeepSpeed's PartitionedTensor.full: one all_gather of the full size) before the pass it feeds.
 * A middle stage runs three such gathers per micro-batch (engine.py: the received activation, the
 * received gradient, and in _exec_backward_pass its own partitioned output restored for autograd)
 * for the four messages it sends and receives, each of which stage_cost prices at this time: so
 * each message carries 3/4 of a gather. */
double st__p2p_time(st_cost_ctx *ctx, const st_plan *p) {
    st_group g;
    double bytes = st_cost_p2p_bytes(ctx, p), gather_s = 0;
    st_cost_group(ctx->c, p, ST_GRP_PP, &g);
    if (p->pp_partition && p->tp > 1) {
        st_group gt;
        st_cost_group(ctx->c, p, ST_GRP_TP, &gt);
        gather_s = 0.75 * st_cost_collective(ctx->c, ctx->prof, ST_COLL_ALLGATHER, &gt, bytes * p->tp);
    }
    return st_cost_collective(ctx->c, ctx->prof, ST_COLL_SENDRECV, &g, bytes) + gather_s;
}

/* A chunk's compute for one micro-batch (nk blocks of each kind, the embedding and output layer where
 * head and tail say): forward, backward, and what each recompute mode redoes, rec_s[rc] (blocks only:
 * the embedding and output layer are never recomputed). */
static void chunk_compute(const st__shard_cost *sc, const int64_t nk[ST_MAX_KINDS], int head, int tail,
                          double *fwd_s, double *bwd_s, double rec_s[ST_REC_OP + 1]) {
    double f = 0, b = 0, sel = 0, full = 0, op = 0;
    for (int k = 0; k < sc->nk; k++) {
        if (nk[k] <= 0) continue;
        double n = (double)nk[k];
        const st__pass *ps = &sc->kind[k];
        f += n * ps->fwd_s, b += n * ps->bwd_s;
        sel += n * ps->sel_fwd_s, full += n * ps->fwd_s, op += n * ps->op_fwd_s;
    }
    if (head) f += sc->head.fwd_s, b += sc->head.bwd_s;
    if (tail) f += sc->tail.fwd_s, b += sc->tail.bwd_s;
    *fwd_s = f, *bwd_s = b;
    rec_s[ST_REC_NONE] = 0, rec_s[ST_REC_SELECTIVE] = sel, rec_s[ST_REC_FULL] = full, rec_s[ST_REC_OP] = op;
}

/* What a pass adds to a chunk besides its compute (chunk_compute). */
static void chunk_add(st_chunk_cost *o, const st__pass *ps, double count, st_recompute rc, int is_block) {
    if (count <= 0) return;
    for (int g = 0; g < ST_GRP_COUNT; g++) {
        o->comm_fwd_s += count * ps->fwd_comm_s[g];
        o->comm_bwd_s += count * ps->bwd_comm_s[g];
        o->comm_fwd_g[g] += count * ps->fwd_comm_s[g];
        o->comm_bwd_g[g] += count * ps->bwd_comm_s[g];
        if (is_block && rc == ST_REC_FULL) {
            o->comm_recompute_s += count * ps->fwd_comm_s[g];
            o->comm_recompute_g[g] += count * ps->fwd_comm_s[g];
        }
        if (is_block && rc == ST_REC_OP) {
            o->comm_recompute_s += count * ps->op_comm_s[g];
            o->comm_recompute_g[g] += count * ps->op_comm_s[g];
        }
    }
    o->act_bytes += count * (is_block ? st__block_act(ps, rc) : ps->saved_bytes);
    o->params += count * (ps->params + ps->expert_params);
    o->expert_params += count * ps->expert_params;
}

void st_cost_chunk(st_cost_ctx *ctx, const st_plan *p, int chunk, st_chunk_cost *out) {
    memset(out, 0, sizeof *out);
    int chunk_layers[ST_MAX_STAGES], chunks = p->pp * p->vp;
    st_plan_chunk_layers(p, ctx->m, chunk_layers);
    int64_t first = 0, nk[ST_MAX_KINDS];
    for (int i = 0; i < chunk; i++) first += chunk_layers[i];
    st__cost_count_blocks(ctx, first, chunk_layers[chunk], nk);
    const st__shard_cost *sc = st__cost_shard(ctx, p);
    double rec_s[ST_REC_OP + 1];
    chunk_compute(sc, nk, chunk == 0, chunk == chunks - 1, &out->fwd_s, &out->bwd_s, rec_s);
    out->recompute_s = rec_s[p->recompute];
    for (int k = 0; k < sc->nk; k++) chunk_add(out, &sc->kind[k], (double)nk[k], p->recompute, 1);
    if (chunk == 0) chunk_add(out, &sc->head, 1, p->recompute, 0);
    if (chunk == chunks - 1) chunk_add(out, &sc->tail, 1, p->recompute, 0);
    if (p->pp > 1) out->p2p_s = st__p2p_time(ctx, p);
    /* memory.c's working set: the largest block of the chunk */
    for (int k = 0; k < sc->nk; k++) {
        if (nk[k] <= 0) continue;
        out->wgrad_bytes += (double)nk[k] * st__block_wgrad(&sc->kind[k], p->recompute);
        if (st__block_working(&sc->kind[k], p->recompute) > out->working_bytes) {
            out->working_bytes = st__block_working(&sc->kind[k], p->recompute);
            out->wgrad_top_bytes = st__block_wgrad_working(&sc->kind[k], p->recompute);
        }
        if (sc->kind[k].work_bytes > out->work_bytes) out->work_bytes = sc->kind[k].work_bytes;
    }
    if (chunk == chunks - 1) out->tail_work_bytes = sc->tail.work_bytes;
    /* the output layer's weight half reads the logits' gradient (s b V / t, 16-bit: the loss's fp32 gradient cast
     * back at logits.float()), and the MTP modules' their blocks' and logits': kept from the input half alike.
     * (The embedding's weight half, on the first chunk, keeps the first block's input gradient: not counted.) */
    if (chunk == chunks - 1) out->wgrad_bytes += sc->tail.dy_bytes;
}

void st_cost_stage_compute(st_cost_ctx *ctx, const st_plan *p, double t_s[ST_REC_FULL + 1][ST_MAX_STAGES]) {
    int chunk_layers[ST_MAX_STAGES], chunks = p->pp * p->vp;
    st_plan_chunk_layers(p, ctx->m, chunk_layers);
    const st__shard_cost *sc = st__cost_shard(ctx, p);
    for (int rc = ST_REC_NONE; rc <= ST_REC_FULL; rc++)
        for (int d = 0; d < p->pp; d++) t_s[rc][d] = 0;
    int64_t first = 0, nk[ST_MAX_KINDS];
    for (int j = 0; j < chunks; j++) {
        double f, b, rec_s[ST_REC_OP + 1];
        st__cost_count_blocks(ctx, first, chunk_layers[j], nk);
        chunk_compute(sc, nk, j == 0, j == chunks - 1, &f, &b, rec_s);
        for (int rc = ST_REC_NONE; rc <= ST_REC_FULL; rc++) t_s[rc][st_plan_chunk_stage(p, j)] += f + b + rec_s[rc];
        first += chunk_layers[j];
    }
}

/* A collective over `total` bytes issued in n equal pieces (buckets, or one per layer). */
static double pieces(const st_cluster *c, const st_profile *prof, st_coll coll, const st_group *g, double total,
                     double n) {
    if (total <= 0) return 0;
    if (n < 1) n = 1;
    return n * st_cost_collective(c, prof, coll, g, total / n);
}

/* Compute slowed by a collective running beside it for `overlapped_s`: NCCL holds ST_NCCL_SMS of
 * the GPU's SMs meanwhile, so that much compute takes sms / (sms - nccl) longer. */
double st_cost_overlap_tax(const st_cluster *c, double overlapped_s) {
    return st_cost_overlap_tax_sms(c, overlapped_s, ST_NCCL_SMS);
}

double st_cost_overlap_tax_sms(const st_cluster *c, double overlapped_s, int comm_sms) {
    int sms = c->gpu.sms;
    if (sms <= comm_sms || overlapped_s <= 0) return 0;
    return overlapped_s * (double)comm_sms / (double)(sms - comm_sms);
}

static double buckets(double params, double dp);

/* ZeRO-3's gathers and scatters run on streams of their own (DeepSpeed's partitioned-parameter
 * coordinator all-gathers on a side stream, prefetching the next layers; the gradients are
 * reduce-scattered on another), so they hide behind everything the compute stream does, its own
 * collectives included: while a tp all-reduce runs on the compute stream, the gather stream's
 * all-gather runs too. What a collective can hide is limited by the links: one on the links the
 * dp group uses (both inside the NVLink domain, or both across the NICs) shares them with the
 * ZeRO traffic and hides none of it; one on other links hides as much as compute does. Pipeline
 * receives are left out (across nodes they share the NICs, and they are short). Compute beside
 * the traffic is slowed by NCCL's SMs (st_cost_overlap_tax); when the traffic outlasts the
 * compute, the compute stream waits for the gathers anyway, and the slowdown hides.
 * Returns how much longer a micro-batch of the stage takes than its compute stream's work t,
 * given its ZeRO-3 traffic per_mb (the collectives' times alone). */
static double zero3_mb(const st_cluster *c, const st_plan *p, const stage_time *t, double per_mb) {
    static const st_group_kind inline_groups[] = {ST_GRP_TP, ST_GRP_CP, ST_GRP_EP};
    st_group gdp;
    st_cost_group(c, p, ST_GRP_DP, &gdp);
    double compute = t->compute_s + t->recompute_s, window = compute;
    for (size_t i = 0; i < sizeof inline_groups / sizeof inline_groups[0]; i++) {
        st_group g;
        st_cost_group(c, p, inline_groups[i], &g);
        if ((g.nodes > 1) != (gdp.nodes > 1)) window += t->comm_s[inline_groups[i]];
    }
    double slowed = window + st_cost_overlap_tax(c, compute < per_mb ? compute : per_mb);
    return (per_mb > slowed ? per_mb : slowed) - window;
}

/* A stage's time per micro-batch t by pass: the forward f (its compute, inline collectives and the
 * receive of its input: each chunk receives once per pass), the zero-bubble schedules' weight-gradient
 * half w (half the backward's compute, talking to no one; 0 for the others) and the rest b (the
 * backward or its input half, with recompute, collectives and the receive of the output gradient). */
static void pass_split(const st_plan *p, const stage_time *t, double *f, double *b, double *w) {
    *f = t->fwd_s + t->fwd_comm_s + t->comm_s[ST_GRP_PP] / 2;
    *w = p->schedule == ST_SCHED_ZB || p->schedule == ST_SCHED_ZBV ? t->bwd_s / 2 : 0;
    *b = t->total_s - *f - *w;
}

/* offload=params (ZeRO-Infinity): the weights come from the host layer by layer on the copy
 * stream, each layer's shard ahead of its all-gather, for the forward and again for the backward
 * (st_cost_offload_chunk; fwd_s, bwd_s: each pass's copies of the stage, st__offload_h2d_s; with
 * granular offload, st__offload_granular's, the same way without ZeRO-3's gathers). A copy waits,
 * like the gather it feeds, for the compute two layers back, so the copies run at most a layer
 * ahead of the pass they feed: the forward's hide only behind the forward's work, the backward's
 * behind the backward's (its recompute included), and ZB's weight-gradient halves copy nothing
 * and hide nothing. They hide behind the compute stream's collectives and pipeline receives as
 * behind its kernels (PCIe is no link those use, and copy engines take no SMs), and behind the
 * pass's ZeRO-3 traffic (fwd_z_s: the forward's gathers; bwd_z_s: the backward's gathers and
 * scatters), which runs on other links. Returns what the copies add to a micro-batch of the
 * stage, beyond its compute stream's work t and ZeRO-3's stretch (zero3_mb). */
static double offload_mb(const st_plan *p, const stage_time *t, double fwd_s, double bwd_s, double fwd_z_s,
                         double bwd_z_s) {
    double f, b, w;
    pass_split(p, t, &f, &b, &w);
    double fz = f > fwd_z_s ? f : fwd_z_s, bz = b > bwd_z_s ? b : bwd_z_s; /* each pass without the copies */
    return (fwd_s > fz ? fwd_s - fz : 0) + (bwd_s > bz ? bwd_s - bz : 0);
}

/* Full (not overlapped) data-parallel times of a device holding `dense` and `expert` parameters,
 * zero 0-2: the gradient reduction (all-reduce for zero 0, reduce-scatter for 1 and 2) and the
 * weight all-gather (1 and 2; st_cost_gather_bytes: 16-bit, fp8 with fp8_param_gather), in Megatron-LM's
 * buckets (nb of them). `quant` of the parameters are quantised linear layers' (st__quant_params). */
static void dp_times(st_cost_ctx *ctx, const st_plan *p, double dense, double expert, double quant, double *red_s,
                     double *gat_s, double *nb) {
    const st_cluster *c = ctx->c;
    const st_profile *pr = ctx->prof;
    st_group gdp, gex;
    st_cost_group(c, p, ST_GRP_DP, &gdp);
    st_cost_group_edp(c, p, &gex);
    double gb = p->grad_bytes;
    double nbd = buckets(dense, (double)gdp.n), nbe = buckets(expert, (double)gex.n);
    st_coll red = p->zero == 0 ? ST_COLL_ALLREDUCE : ST_COLL_REDUCESCATTER;
    *red_s = pieces(c, pr, red, &gdp, dense * gb, nbd) + pieces(c, pr, red, &gex, expert * gb, nbe);
    /* the quantised weights: every expert weight (its GEMMs are quantised), the rest dense */
    double qe = quant < expert ? quant : expert;
    *gat_s = p->zero == 0 ? 0
                          : pieces(c, pr, ST_COLL_ALLGATHER, &gdp, st_cost_gather_bytes(p, dense, quant - qe), nbd) +
                                pieces(c, pr, ST_COLL_ALLGATHER, &gex, st_cost_gather_bytes(p, expert, qe), nbe);
    *nb = nbd + (expert > 0 ? nbe : 0);
}

/* Megatron-LM's DDP buckets: max(40M, 1M x dp) parameters (distributed_data_parallel_config.py,
 * bucket_size default). */
static double buckets(double params, double dp) {
    double per = 40e6 > 1e6 * dp ? 40e6 : 1e6 * dp;
    double n = params / per;
    return n < 1 ? 1 : (double)(int64_t)(n + 0.999999);
}

double st_cost_pipeline_s(const double *t_s, const int *count, int n, int vp, int64_t mb, st_schedule sched,
                          double fwd_s, double bwd_s, double *bubble_s) {
    double max = 0, sum = 0;
    for (int k = 0; k < n; k++) {
        if (t_s[k] > max) max = t_s[k];
        sum += t_s[k] * count[k];
    }
    double bubble = (sum - max) / (vp > 0 ? vp : 1);
    if (sched == ST_SCHED_DUALPIPE) {
        /* t_s per pair of micro-batches (one each way); per chunk (one stage, one micro-batch):
         * F&B = max / 2, B = (max - fwd_s) / 2, W = bwd_s / 4 (the weight half of B's compute) */
        double pp = 0, fb = max / 2, b = (max - fwd_s) / 2, w = bwd_s / 4;
        for (int k = 0; k < n; k++) pp += count[k];
        bubble = (pp / 2 - 1) * (fb + b - 3 * w);
        if (bubble < 0) bubble = 0;
        if (bubble_s) *bubble_s = bubble;
        return (double)(mb / 2) * max + bubble;
    }
    if (sched == ST_SCHED_ZBV) {
        /* per chunk (half the stage): forward f, input and weight gradient b each */
        double pp = 0, f = fwd_s / 2, b = (max - fwd_s) / 4;
        for (int k = 0; k < n; k++) pp += count[k];
        bubble = (pp - 1) * b;
        if ((2 * pp - 3) * f - (pp - 2) * b > bubble) bubble = (2 * pp - 3) * f - (pp - 2) * b;
        if ((2 * pp - 2) * f - pp * b > bubble) bubble = (2 * pp - 2) * f - pp * b;
    }
    if (bubble_s) *bubble_s = bubble;
    return (double)mb * max + bubble;
}

/* ZB-H1 in src/lower's order (torch's ScheduleInterleavedZeroBubble with one stage per rank), stage d
 * with w = min(pp - 1 - d, mb) warm-up forwards: F0..F(w-1), then for each micro-batch i F(w + i)
 * (while there are any), its input half B(i) and, once i >= d, the weight half W(i - d); then the last
 * d weight halves. F(i) receives stage d - 1's activation, B(i) stage d + 1's gradient, each receive
 * blocking the compute stream; W waits for nothing but the stream. A stage's sends (after each F onward,
 * after each B back) go out in that order on its one P2P stream, each holding it until its receiver
 * reaches the receive (src/sim's rendezvous), so a send waits for the one before it: the activation of
 * F(i + 1) can hold back the gradient of B(i) that the stage before is waiting for.
 *
 * Equal stages with mb >= pp (every stage's f, b, w the same): mb (f + b + w) + (pp - 1) max(f, b,
 * f + b - w) (the paper's bubble where w <= f, b; tests/test_cost.c, test_zb_pipeline, checks it against
 * the played-out order over random times). Otherwise the order is played out in sweeps up the stages
 * (as forwards go) and back down (as input halves go), each stage one step per pass where its receive
 * meets the head of its sender's stream; a step is a forward, or an input half with the weight half that
 * follows it (W sends and receives nothing, so it rides on its B; stage d's last d W add up at the end,
 * one by one as the simulator adds them). That is 2 pp mb steps, a third fewer than one per pass, in
 * about 1.5 times as many tries (bench/plan_530b.sh's ZB plans: up to 80 stages, mostly at most 2 pp
 * micro-batches, never all stages equal, a head and a tail stage apart, so the closed form never
 * applies there and no steady state is long enough to skip). A stage's stream never holds more than RING
 * sends; should that fail, or the play stop short (a deadlock), it returns NaN, which the estimate's
 * check reports, rather than a wrong time. */
double st_cost_zb_pipeline_s(const double *f_s, const double *b_s, const double *w_s, int pp, int64_t mb,
                             double *bubble_s) {
    enum { RING = 4 }; /* a power of two */
    /* each stage's unreceived sends, oldest at head: the pass that made each (2 i for F(i), 2 i + 1 for
     * B(i)) and when it ended; nf, nb: the forwards and input halves played so far */
    int64_t tag[ST_MAX_STAGES][RING], nf[ST_MAX_STAGES], nb[ST_MAX_STAGES], warm[ST_MAX_STAGES];
    double ready[ST_MAX_STAGES][RING], clk[ST_MAX_STAGES], p2p[ST_MAX_STAGES], max = 0, end = 0;
    int head[ST_MAX_STAGES], nq[ST_MAX_STAGES], equal = 1; /* p2p: when the stream is free */
    int64_t left = mb > 0 ? 2 * mb * pp : 0;
    if (bubble_s) *bubble_s = NAN; /* until the end */
    if (pp < 1 || pp > ST_MAX_STAGES) return NAN;
    for (int d = 0; d < pp; d++) {
        clk[d] = p2p[d] = 0, nf[d] = nb[d] = 0, head[d] = nq[d] = 0;
        warm[d] = pp - 1 - d < mb ? pp - 1 - d : mb;
        if (f_s[d] + b_s[d] + w_s[d] > max) max = f_s[d] + b_s[d] + w_s[d];
        equal &= f_s[d] == f_s[0] && b_s[d] == b_s[0] && w_s[d] == w_s[0];
    }
    if (equal && mb >= pp) {
        double f = f_s[0], b = b_s[0], w = w_s[0], step = f > b ? f : b;
        if (f + b - w > step) step = f + b - w;
        if (bubble_s) *bubble_s = (pp - 1) * step;
        return (double)mb * (f + b + w) + (pp - 1) * step;
    }
    while (left > 0) {
        int64_t before = left;
        for (int j = 0; j < 2 * pp; j++) { /* up the stages, as forwards go, then down, as input halves go */
            int d = j < pp ? j : 2 * pp - 1 - j;
            int64_t n_f = nf[d], n_b = nb[d];
            int fwd = n_f < warm[d] || (n_f < mb && n_f == warm[d] + n_b); /* F(i), else B(i) */
            if (!fwd && n_b == mb) continue;
            int64_t i = fwd ? n_f : n_b, t = 2 * i + !fwd;
            int from = fwd ? d - 1 : d + 1 < pp ? d + 1 : -1;
            double start = clk[d];
            if (from >= 0) { /* the receive meets its send once that is at the head of the sender's stream */
                int h = head[from];
                if (nq[from] == 0 || tag[from][h] != t) continue;
                if (ready[from][h] > start) start = ready[from][h];
                if (p2p[from] > start) start = p2p[from];
                p2p[from] = start;
                head[from] = (h + 1) & (RING - 1), nq[from]--;
            }
            double e = start + (fwd ? f_s[d] : b_s[d]);
            if (fwd ? d + 1 < pp : d > 0) {
                if (nq[d] == RING) return NAN;
                int k = (head[d] + nq[d]++) & (RING - 1);
                tag[d][k] = t, ready[d][k] = e;
            }
            if (fwd) {
                nf[d] = n_f + 1;
            } else {
                if (i >= d) e += w_s[d]; /* W(i - d) */
                nb[d] = n_b + 1;
            }
            clk[d] = e;
            left--;
        }
        if (left == before) return NAN; /* the order never deadlocks: some stage always steps */
    }
    for (int d = 0; d < pp; d++) {
        for (int64_t i = mb - d > 0 ? mb - d : 0; i < mb; i++) clk[d] += w_s[d]; /* the last d W, one by one */
        if (clk[d] > end) end = clk[d];
    }
    if (bubble_s) *bubble_s = end - (double)(mb > 0 ? mb : 0) * max;
    return end;
}

/* One pipeline stage of one replica priced: its compute stream's time per micro-batch (t), ZeRO-3's
 * and params offload's stretch of it (z, o; o_bwd: the part of o the backward's copies add) and the
 * parts nothing hides (z_first, o_first), its memory and parameters. cctx prices the stage's GPUs, nctx
 * its data-parallel group's links (the same context on a uniform cluster). */
typedef struct stage_price {
    stage_time t;
    st_stage_memory sm;
    double dense, expert, quant, z, z_first, o, o_bwd, o_first, total_s;
} stage_price;

static void price_stage(st_cost_ctx *cctx, st_cost_ctx *nctx, const st_plan *p, const st__shard_cost *sc,
                        const st__stage_class *cls, int d, double p2p_s, stage_price *out) {
    const st_cluster *c = cctx->c, *nc = nctx->c;
    const st_profile *pr = cctx->prof;
    double wbytes = st_cost_weight_bytes(p->dtype), gb = p->grad_bytes;
    memset(out, 0, sizeof *out);
    stage_cost(c, p, sc, cls, p2p_s, &out->t);
    st__cost_stage_memory(cctx, p, sc, cls, d, &out->sm, &out->dense, &out->expert);
    out->quant = st__quant_params(sc, cls);
    if (p->zero == 3) {
        /* every micro-batch, layer by layer (each block, the embedding and the output layer
         * a layer, as the lowering gathers them): the weights gathered for the forward and
         * again for the backward, the gradients reduce-scattered */
        st_group gdp, gex;
        st_cost_group(nc, p, ST_GRP_DP, &gdp);
        st_cost_group_edp(nc, p, &gex);
        double nl = (double)(cls->head + cls->tail);
        for (int j = 0; j < sc->nk; j++) nl += (double)cls->n[j];
        if (nl < 1) nl = 1;
        double gather = pieces(nc, pr, ST_COLL_ALLGATHER, &gdp, out->dense * wbytes, nl) +
                        pieces(nc, pr, ST_COLL_ALLGATHER, &gex, out->expert * wbytes, nl);
        double scatter = pieces(nc, pr, ST_COLL_REDUCESCATTER, &gdp, out->dense * gb, nl) +
                         pieces(nc, pr, ST_COLL_REDUCESCATTER, &gex, out->expert * gb, nl);
        double per_mb = 2 * gather + scatter;
        out->z = zero3_mb(c, p, &out->t, per_mb);
        out->z_first = per_mb / nl; /* the first layer's gather, which nothing hides */
        if (p->offload == ST_OFF_PARAMS) {
            double pass_s = st__offload_h2d_s(c, pr, p, out->dense, out->expert, nl, NULL); /* a copy per layer */
            out->o = offload_mb(p, &out->t, pass_s, pass_s, gather, gather + scatter);
            out->o_bwd = offload_mb(p, &out->t, 0, pass_s, gather, gather + scatter);
            out->o_first = pass_s / nl; /* the first layer's copy, before that gather */
        }
    }
    if (p->offload_params > 0 || p->offload_activations > 0) { /* zero 0-2 (st_plan_finalize) */
        double nl = (double)(cls->head + cls->tail);
        for (int j = 0; j < sc->nk; j++) nl += (double)cls->n[j];
        st_offload_copies op;
        st__offload_granular(c, pr, p, out->dense + out->expert, out->sm.microbatch_act_bytes, nl, &op);
        out->o = offload_mb(p, &out->t, op.fwd_s, op.bwd_s, 0, 0);
        out->o_bwd = offload_mb(p, &out->t, 0, op.bwd_s, 0, 0);
        out->o_first = op.first_s;
    }
    out->total_s = out->t.total_s + out->z + out->o;
}

/* A priced stage's passes for ZB-H1's play (pass_split): ZeRO-3's stretch goes with the forward, as the
 * weight-gradient half gathers nothing; the offload copies' with the pass that waits for them (src/lower:
 * the forward for its copies, the input half for the backward's), as the weight half copies nothing.
 * Where the play's bubble is max(f, b, f + b - w) (cost/estimate.c), which pass takes the stretch counts. */
static void zb_split(const st_plan *p, const stage_price *sp, double *f, double *b, double *w) {
    pass_split(p, &sp->t, f, b, w);
    *f += sp->z + sp->o - sp->o_bwd;
    *b += sp->o_bwd;
}

/* What the stages add up to: the pipeline's time, the stage that sets it (slow), the model state of the
 * stage with the most parameters and the context its data-parallel group is priced on (dctx), the
 * memory peak; and the stage whose data-parallel reduction takes longest (dp_*): on a uniform cluster
 * the one with the most parameters, on node groups the one whose dp group's links are slowest for its
 * parameters (a stage of MIG slices reducing through PCIe beside H100s on NVLink). */
typedef struct pipe_sum {
    double pipeline_s, bubble_s;
    stage_price slow;
    int64_t mb;  /* micro-batches of the replica that sets the pace (dualpipe: pairs, one each way) */
    int replica; /* that replica (0 on a uniform cluster with even micro-batches) */
    double dense_max, expert_max, quant_max, mem_peak;
    int peak_stage, fits;
    st_cost_ctx *dctx;
    st_cost_ctx *dp_ctx;
    double dp_dense, dp_expert, dp_quant, dp_worst_s;
    int d_stage, dp_stage; /* the stages of dctx and dp_ctx (with stage_tp, whose tp prices their groups) */
    double host_node_bytes; /* granular offload: the most host memory a node of a stage's GPUs holds */
} pipe_sum;

/* Granular offload's host memory of a stage on its GPUs' cluster c: every GPU of the node holds as much;
 * over the node's host memory, the plan does not fit. */
static void host_add(pipe_sum *ps, const st_cluster *c, const st_stage_memory *sm) {
    if (sm->host_bytes <= 0) return;
    double node = sm->host_bytes * (double)c->gpus_per_node;
    if (node > ps->host_node_bytes) ps->host_node_bytes = node;
    if (node > c->host_memory_bytes) ps->fits = 0;
}

/* A uniform cluster, every replica with gbs / (dp mbs) micro-batches: stages that cost the same
 * priced once (stage classes). */
static int pipe_uniform(st_cost_ctx *ctx, const st_plan *p, pipe_sum *ps) {
    const st__layout *L = st__cost_layout(ctx, p);
    if (!L) return ST_ENOMEM;
    ps->fits = 1;
    double p2p_s = p->pp > 1 ? st__p2p_time(ctx, p) : 0;
    const st__shard_cost *sc = st__cost_shard(ctx, p); /* one lookup for all classes: the same GPUs */
    /* time per micro-batch of each stage class; the slowest stage sets the pace. ZeRO-3 stretches
     * every micro-batch of a stage by what its gathers and scatters do not hide (zero3_mb), so it
     * goes into the stage's time, where the pipeline's bubble grows with it. Model state per
     * class: the most parameters set the data-parallel and optimizer times. */
    double *t_cls = ctx->t_scratch;
    int *n_cls = ctx->n_scratch;
    double t_dev_max = -1, params_max = 0, f[ST_MAX_STAGES], b[ST_MAX_STAGES], w[ST_MAX_STAGES];
    for (int k = 0; k < L->n; k++) {
        stage_price sp;
        int d = L->cls[k].first; /* the class's first stage holds the most micro-batches */
        price_stage(ctx, ctx, p, sc, &L->cls[k], d, p2p_s, &sp);
        host_add(ps, ctx->c, &sp.sm);
        if (sp.sm.total_bytes > ps->mem_peak || (sp.sm.total_bytes == ps->mem_peak && d < ps->peak_stage))
            ps->mem_peak = sp.sm.total_bytes, ps->peak_stage = d;
        if (sp.dense + sp.expert > params_max)
            params_max = sp.dense + sp.expert, ps->dense_max = sp.dense, ps->expert_max = sp.expert,
            ps->quant_max = sp.quant;
        t_cls[k] = sp.total_s;
        n_cls[k] = L->cls[k].count;
        if (p->schedule == ST_SCHED_ZB) zb_split(p, &sp, &f[k], &b[k], &w[k]);
        if (t_cls[k] > t_dev_max) {
            t_dev_max = t_cls[k];
            ps->slow = sp;
        }
    }
    /* ZB-H1, ZB-V and DualPipe hold more weight halves back on a class's later stages than on its first
     * (memory.c: their linear layers' output gradients and inputs): every stage's memory counts */
    if (p->schedule == ST_SCHED_ZB || p->schedule == ST_SCHED_ZBV || p->schedule == ST_SCHED_DUALPIPE)
        for (int d = 0; d < p->pp; d++) {
            const st__stage_class *cls = &L->cls[L->of[d]];
            st_stage_memory sm;
            double dense, expert;
            if (d == cls->first) continue; /* priced above */
            st__cost_stage_memory(ctx, p, sc, cls, d, &sm, &dense, &expert);
            host_add(ps, ctx->c, &sm);
            if (sm.total_bytes > ps->mem_peak || (sm.total_bytes == ps->mem_peak && d < ps->peak_stage))
                ps->mem_peak = sm.total_bytes, ps->peak_stage = d;
        }
    ps->mb = st_plan_microbatches(p);
    if (p->schedule == ST_SCHED_ZB) { /* played out in stage order: each stage's class's passes */
        double fd[ST_MAX_STAGES], bd[ST_MAX_STAGES], wd[ST_MAX_STAGES];
        for (int d = 0; d < p->pp; d++) fd[d] = f[L->of[d]], bd[d] = b[L->of[d]], wd[d] = w[L->of[d]];
        ps->pipeline_s = st_cost_zb_pipeline_s(fd, bd, wd, p->pp, ps->mb, &ps->bubble_s);
    } else {
        ps->pipeline_s = st_cost_pipeline_s(t_cls, n_cls, L->n, p->vp, ps->mb, p->schedule,
                                            ps->slow.t.fwd_s + ps->slow.z + ps->slow.o, ps->slow.t.bwd_s,
                                            &ps->bubble_s);
    }
    if (p->schedule == ST_SCHED_DUALPIPE) ps->mb /= 2; /* pairs, the unit of the stage times */
    ps->fits = ps->fits && ps->mem_peak <= ctx->c->gpu.memory_bytes;
    ps->dctx = ps->dp_ctx = ctx;
    ps->dp_dense = ps->dense_max, ps->dp_expert = ps->expert_max, ps->dp_quant = ps->quant_max;
    return 0;
}

/* Node groups of different GPU types, or replicas with uneven micro-batches (issue 19): every stage of
 * every replica priced on its own GPUs (the tp x cp ranks of replica r's stage d, in Megatron's rank
 * order tp-cp-dp-pp: ranks tp cp (r + dp d) on), its pipeline messages on the links between it and
 * its neighbours, its ZeRO-3 traffic on its stage's data-parallel group. Each replica is a pipeline of
 * unequal stages: m_r max_d t_d + (sum_d t_d - max_d t_d) / vp (Narayanan et al. SC'21, as for uniform
 * stages: in 1F1B's steady state every stage runs one forward and one backward per slot, so the slowest
 * stage sets the slot, and the others' times fill and drain the pipeline; the same bottleneck form is
 * the cost model of AMP, Li et al. NeurIPS'22, Sec. 3.2, and of HexiScale's heterogeneous pipelines).
 * The replicas meet at the gradient reduction, so the slowest replica (m_r micro-batches) sets the
 * step (Whale, Jia et al. ATC'22, Sec. 3.3). Each stage's memory is checked against its own GPU. */
static int pipe_groups(st_cost_ctx *ctx, const st_plan *p, pipe_sum *ps) {
    int pp = p->pp, dp = p->dp;
    st_plan *buf = p->nstage_tp ? malloc(sizeof *buf) : NULL; /* stage_tp: the plan of the stage priced */
    if (p->nstage_tp && !buf) return ST_ENOMEM;
    if (buf) *buf = *p;
    const st_plan *pd = p;
    st__stage_class cls[ST_MAX_STAGES];
    double t[ST_MAX_STAGES];
    int one[ST_MAX_STAGES];
    stage_price prev[ST_MAX_STAGES]; /* the stages of the last replica priced */
    int sig0[ST_MAX_STAGES], sig1[ST_MAX_STAGES], have_prev = 0; /* its blocks' first and last groups */
    double params_max = 0, worst = -1;
    ps->fits = 1;
    for (int d = 0; d < pp; d++) {
        st__cost_stage_class(ctx, p, d, &cls[d]);
        one[d] = 1;
    }
    for (int r = 0; r < dp; r++) {
        int64_t m_r = st_plan_replica_microbatches(p, r);
        /* consecutive replicas on the same groups cost the same: priced once */
        int same = have_prev;
        for (int d = 0; d < pp && same; d++) {
            int64_t blk = (int64_t)st_plan_stage_tp(p, d) * p->cp, first = st_plan_stage_rank0(p, d) + blk * r;
            same = sig0[d] == st_cluster_rank_group(ctx->c, first) &&
                   sig1[d] == st_cluster_rank_group(ctx->c, first + blk - 1);
        }
        if (!same) {
            for (int d = 0; d < pp; d++) {
                /* stage d's ranks: its tp x cp block of replica r, its dp group all of its blocks */
                int64_t blk = (int64_t)st_plan_stage_tp(p, d) * p->cp, first = st_plan_stage_rank0(p, d) + blk * r;
                st_cost_ctx *cctx = st_cost_view(ctx, first, blk);
                st_cost_ctx *nctx = st_cost_view(ctx, st_plan_stage_rank0(p, d), blk * dp);
                if (!cctx || !nctx) {
                    free(buf);
                    return ST_ENOMEM;
                }
                if (buf) st_plan_stage_retarget(p, d, buf), pd = buf;
                price_stage(cctx, nctx, pd, st__cost_shard(cctx, pd), &cls[d], d, st_cost_stage_p2p(ctx, p, r, d),
                            &prev[d]);
                if (prev[d].sm.total_bytes > cctx->c->gpu.memory_bytes) ps->fits = 0;
                host_add(ps, cctx->c, &prev[d].sm);
                if (prev[d].sm.total_bytes > ps->mem_peak) ps->mem_peak = prev[d].sm.total_bytes, ps->peak_stage = d;
                if (prev[d].dense + prev[d].expert > params_max) {
                    params_max = prev[d].dense + prev[d].expert;
                    ps->dense_max = prev[d].dense, ps->expert_max = prev[d].expert, ps->quant_max = prev[d].quant;
                    ps->dctx = nctx, ps->d_stage = d;
                }
                /* each stage's gradients reduce over its own dp group's links: the longest shows last */
                double red_s, gat_s, nb;
                dp_times(nctx, pd, prev[d].dense, prev[d].expert, prev[d].quant, &red_s, &gat_s, &nb);
                if (!ps->dp_ctx || red_s + gat_s > ps->dp_worst_s) {
                    ps->dp_worst_s = red_s + gat_s, ps->dp_ctx = nctx, ps->dp_stage = d;
                    ps->dp_dense = prev[d].dense, ps->dp_expert = prev[d].expert, ps->dp_quant = prev[d].quant;
                }
                sig0[d] = st_cluster_rank_group(ctx->c, first);
                sig1[d] = st_cluster_rank_group(ctx->c, first + blk - 1);
            }
            have_prev = 1;
        }
        int slow = 0;
        double f[ST_MAX_STAGES], b[ST_MAX_STAGES], w[ST_MAX_STAGES];
        for (int d = 0; d < pp; d++) {
            t[d] = prev[d].total_s;
            if (t[d] > t[slow]) slow = d;
            if (p->schedule == ST_SCHED_ZB) zb_split(p, &prev[d], &f[d], &b[d], &w[d]);
        }
        double bubble, pipe = p->schedule == ST_SCHED_ZB
                                  ? st_cost_zb_pipeline_s(f, b, w, pp, m_r, &bubble)
                                  : st_cost_pipeline_s(t, one, pp, p->vp, m_r, p->schedule,
                                                       prev[slow].t.fwd_s + prev[slow].z + prev[slow].o,
                                                       prev[slow].t.bwd_s, &bubble);
        if (pipe > worst) {
            worst = pipe;
            ps->pipeline_s = pipe, ps->bubble_s = bubble, ps->slow = prev[slow], ps->replica = r;
            ps->mb = p->schedule == ST_SCHED_DUALPIPE ? m_r / 2 : m_r; /* (dualpipe: pairs) */
        }
    }
    free(buf);
    if (!ps->dctx) ps->dctx = st_cost_view(ctx, 0, st_plan_stage_rank0(p, 1));
    if (!ps->dp_ctx) ps->dp_ctx = ps->dctx, ps->dp_stage = ps->d_stage;
    return ps->dctx ? 0 : ST_ENOMEM;
}

int st_cost_estimate(st_cost_ctx *ctx, const st_plan *p, st_estimate *out) {
    const st_model *m = ctx->m;
    const st_cluster *c = ctx->c;
    memset(out, 0, sizeof *out);
    int pp = p->pp, vp = p->vp, chunks = pp * vp;
    if (chunks < 1 || chunks > ST_MAX_STAGES) return ST_EINVAL;
    if (st_plan_microbatches(p) < 1 && !p->ndp_batches) return ST_EINVAL;
    if (p->ndp_batches && p->ndp_batches != p->dp) return ST_EINVAL;

    pipe_sum ps;
    memset(&ps, 0, sizeof ps);
    int rc = c->ngroups > 0 || p->ndp_batches || p->nstage_tp ? pipe_groups(ctx, p, &ps) : pipe_uniform(ctx, p, &ps);
    if (rc) return rc;
    /* stage_tp: the data-parallel reduction priced with the tp of the stage it is the longest on */
    st_plan dq;
    const st_plan *pdp = p;
    if (p->nstage_tp) st_plan_stage_plan(p, ps.dp_stage, &dq), pdp = &dq;
    /* the data-parallel group of the stage with the most parameters: its links (dctx) */
    st_cost_ctx *dctx = ps.dctx;
    const st_cluster *dc = dctx->c;
    int64_t mb = ps.mb;
    const stage_time slow = ps.slow.t;
    double z_slow = ps.slow.z, z_tail = ps.slow.z_first, o_slow = ps.slow.o, o_tail = ps.slow.o_first;
    double dense_max = ps.dense_max, expert_max = ps.expert_max, quant_max = ps.quant_max;
    double pipeline_s = ps.pipeline_s, bubble = ps.bubble_s;
    st_group gdp, gex;
    st_cost_group(dc, p, ST_GRP_DP, &gdp);
    st_cost_group_edp(dc, p, &gex); /* expert weights are replicated over dp*cp/ep ranks */
    double gb = p->grad_bytes;
    const st_profile *pr = ctx->prof;

    /* ---- data parallel, ZeRO, optimizer, offload: on the device with the most parameters */
    double dp_s = 0;
    if (p->zero <= 2) {
        /* With overlap_grad_reduce the reduction hides behind the last micro-batch's backward
         * (Megatron-LM's --overlap-grad-reduce), with overlap_param_gather the gather behind the
         * next forward (--overlap-param-gather, a flag of its own); the last bucket always shows. */
        double red_s, gat_s, nb;
        dp_times(ps.dp_ctx, pdp, ps.dp_dense, ps.dp_expert, ps.dp_quant, &red_s, &gat_s, &nb);
        if (p->overlap_grad_reduce) {
            double red_x = red_s - slow.bwd_s > red_s / nb ? red_s - slow.bwd_s : red_s / nb;
            /* what hid behind compute still slowed it */
            red_s = red_x + st_cost_overlap_tax(c, red_s - red_x);
        }
        if (p->overlap_param_gather) {
            double tax;
            gat_s = st_cost_param_gather_exposed(c, gat_s, nb, slow.fwd_s, &tax) + tax;
        }
        dp_s = red_s + gat_s;
    } else {
        /* the stretch of every micro-batch is in pipeline_s (reported here, not as compute) */
        dp_s = z_tail;
    }
    dp_s += st_cost_embedding_allreduce(ctx, p, NULL) + st_cost_dualpipe_mirror(ctx, p, dense_max + expert_max, NULL);

    double shard_dense = p->zero >= 1 ? (double)gdp.n : 1, shard_exp = p->zero >= 1 ? (double)gex.n : 1;
    double opt_params = dense_max / shard_dense + expert_max / shard_exp;
    double opt_s = 0, offload_s = 0;
    if (p->offload == ST_OFF_NONE) {
        opt_s = opt_params * (ST_ADAM_BYTES_PER_PARAM + gb - 4) / (c->gpu.hbm_bytes_per_s * ST_HBM_EFFICIENCY) +
                8 * st_cost_launch_s(c);
        if (p->offload_optimizer > 0) { /* granular: part of the states on the host (cost/offload.c) */
            st__opt_step os;
            st__offload_optimizer_step(c, pr, p->offload_optimizer, opt_params, gb, st_cost_weight_bytes(p->dtype),
                                       opt_s, &os);
            opt_s = os.optimizer_s;
            out->offload_grads_s = os.grads_s;
            out->offload_weights_s = os.weights_s;
            offload_s = os.grads_s + os.weights_s;
        }
        if (p->offload_params > 0) {
            /* the host copy rewritten from the updated weights after the step (cost/offload.c), on the
             * PCIe of the GPUs that hold the most */
            out->offload_weights_s = st__copy_s(dc, pr, ST_COPY_D2H,
                                                p->offload_params * (dense_max + expert_max) *
                                                    st_cost_weight_bytes(p->dtype), 1);
            offload_s += out->offload_weights_s + o_tail; /* and the first block's weights, before all */
        }
    } else {
        opt_s = opt_params / ST_CPU_ADAM_PARAMS_PER_S;
        /* gradients down, weights up, each priced as one copy of the GPU's shard (with a copy
         * table: its rate at that size, which for shards of hundreds of MB is the table's plateau) */
        out->offload_grads_s = st__copy_s(c, pr, ST_COPY_D2H, opt_params * gb, 1);
        /* opt_params * wbytes / pcie, as the streaming prices it */
        out->offload_weights_s = st__offload_h2d_s(c, pr, p, dense_max, expert_max, 1, NULL);
        /* params: the streaming's stretch of the micro-batches is in pipeline_s (offload_mb) */
        offload_s = out->offload_grads_s + out->offload_weights_s + o_tail;
    }

    /* fp8, mxfp8, nvfp4: the weights' quantised copies, remade once per iteration after the step (read
     * the 16-bit weight once, twice for nvfp4, and write the copies; cost.h, st_cost_weight_copy_bytes),
     * counted with the optimizer step */
    opt_s += quant_max * (2 * st_dtype_cast_passes(p->dtype) + st_cost_weight_copy_bytes(p->dtype, &c->gpu)) /
             (c->gpu.hbm_bytes_per_s * ST_HBM_EFFICIENCY);
    out->iteration_time_s = pipeline_s + dp_s + opt_s + offload_s;
    dp_s += (double)mb * z_slow; /* ZeRO-3's stretch of the micro-batches, inside pipeline_s */
    offload_s += (double)mb * o_slow; /* and the weight streaming's */
    double gpus = (double)st_plan_gpus(p);
    double tokens = (double)p->gbs * (double)p->seq;
    out->tokens_per_s = tokens / out->iteration_time_s;
    if (ctx->flops_seq != p->seq) {
        ctx->flops_per_seq = st_cost_model_flops(m, 1, p->seq);
        ctx->flops_seq = p->seq;
    }
    out->model_flops = ctx->flops_per_seq * (double)p->gbs;
    out->model_tflops_per_gpu = out->model_flops / out->iteration_time_s / gpus / 1e12;
    if (c->ngroups == 0) {
        out->mfu = out->model_flops / out->iteration_time_s / gpus / c->gpu.peak_flops[p->dtype];
    } else { /* of the peaks of the GPUs the plan uses, each group's at its own */
        double peak = 0, left = gpus;
        for (int g = 0; g < c->ngroups && left > 0; g++) {
            double n = (double)(c->groups[g].nodes * c->groups[g].gpus_per_node);
            peak += (n < left ? n : left) * c->groups[g].gpu.peak_flops[p->dtype];
            left -= n;
        }
        out->mfu = out->model_flops / out->iteration_time_s / peak;
    }
    out->memory_peak_bytes = ps.mem_peak;
    out->peak_stage = ps.peak_stage;
    out->fits = ps.fits;
    if (p->offload != ST_OFF_NONE || p->offload_optimizer > 0) {
        /* the optimizer states (+ weights for params offload) of the GPU's shard, for all GPUs of a
         * node, in host memory (with offload_optimizer, its share of the states) */
        st_state_bytes full;
        st_cost_state_bytes(p->dtype, p->grad_bytes, 0, ST_OFF_NONE, 1, &full);
        double per_gpu = opt_params * full.optimizer + (p->offload == ST_OFF_PARAMS ? opt_params * full.weights : 0);
        if (p->offload_optimizer > 0) per_gpu *= p->offload_optimizer;
        out->host_memory_bytes = per_gpu * (double)c->gpus_per_node;
        if (out->host_memory_bytes > c->host_memory_bytes) out->fits = 0;
    }
    if (p->offload_params > 0 || p->offload_activations > 0) {
        /* each stage's node checked on its own group (host_add); on a uniform cluster with the
         * optimizer's share beside it */
        out->host_memory_bytes += ps.host_node_bytes;
        if (c->ngroups == 0 && out->host_memory_bytes > c->host_memory_bytes) out->fits = 0;
    }

    st_breakdown *b = &out->breakdown;
    b->compute_s = (double)mb * slow.compute_s;
    b->recompute_s = (double)mb * slow.recompute_s;
    b->tp_comm_s = (double)mb * slow.comm_s[ST_GRP_TP];
    b->cp_comm_s = (double)mb * slow.comm_s[ST_GRP_CP];
    b->ep_comm_s = (double)mb * slow.comm_s[ST_GRP_EP];
    b->pp_comm_s = (double)mb * slow.comm_s[ST_GRP_PP];
    b->bubble_s = bubble;
    b->dp_comm_s = dp_s;
    b->optimizer_s = opt_s;
    b->offload_s = offload_s;
    return 0;
}

/* The exchange between stage lo (plan q, its own tp) and the next stage, of tp tp_hi (stage_tp). Equal tp:
 * st__p2p_time. Different tp: the activation resharded between the two tp groups (Zhuang et al. 2023,
 * cross-mesh resharding, as search/autoshard.c's pair_p2p prices stage-to-stage exchanges): without sp
 * every rank of both groups holds the whole activation and each receiver takes one whole copy, as
 * Megatron-Core's send does; with sp each sender holds 1/tp_lo of the sequence and each receiver needs
 * 1/tp_hi, so the busiest end moves 1/min(tp_lo, tp_hi) of it: one message of that size between ranks
 * placed as stage lo's pipeline neighbours are (pp_partition is refused with stage_tp). */
static double exchange_bytes(const st_cost_ctx *ctx, st_plan *q, int tp_hi) {
    int tp = q->tp, sp = q->sp; /* q as the smaller tp of the two, for the message, then as it was */
    q->tp = tp_hi < tp ? tp_hi : tp;
    q->sp = sp && q->tp > 1;
    double b = st_cost_p2p_bytes(ctx, q);
    q->tp = tp, q->sp = sp;
    return b;
}

static double exchange_time(st_cost_ctx *ctx, st_plan *q, int tp_hi) {
    if (tp_hi == q->tp) return st__p2p_time(ctx, q);
    st_group g;
    st_cost_group(ctx->c, q, ST_GRP_PP, &g);
    return st_cost_collective(ctx->c, ctx->prof, ST_COLL_SENDRECV, &g, exchange_bytes(ctx, q, tp_hi));
}

double st_cost_stage_p2p_bytes(const st_cost_ctx *ctx, const st_plan *p, int d) {
    if (!p->nstage_tp) return st_cost_p2p_bytes(ctx, p);
    double sum = 0;
    int n = 0;
    st_plan q = *p;
    for (int e = d - 1; e <= d + 1; e += 2) {
        if (e < 0 || e >= p->pp) continue;
        int lo = e < d ? e : d, hi = e < d ? d : e;
        st_plan_stage_retarget(p, lo, &q);
        sum += exchange_bytes(ctx, &q, st_plan_stage_tp(p, hi));
        n++;
    }
    return n ? sum / n : 0;
}

double st_cost_stage_p2p(st_cost_ctx *ctx, const st_plan *p, int r, int d) {
    if (p->pp < 2) return 0;
    double sum = 0;
    int n = 0;
    st_plan *q = p->nstage_tp ? malloc(sizeof *q) : NULL; /* stage lo's plan */
    if (p->nstage_tp && !q) return NAN;
    if (q) *q = *p;
    for (int e = d - 1; e <= d + 1; e += 2) {
        if (e < 0 || e >= p->pp) continue;
        int lo = e < d ? e : d, hi = e < d ? d : e;
        int64_t blo = (int64_t)st_plan_stage_tp(p, lo) * p->cp, bhi = (int64_t)st_plan_stage_tp(p, hi) * p->cp;
        int64_t a = st_plan_stage_rank0(p, lo) + blo * r, b = st_plan_stage_rank0(p, hi) + bhi * r + bhi;
        st_cost_ctx *v = st_cost_view(ctx, a, b - a); /* both ends' groups and the fabric between them */
        if (!v) {
            free(q);
            return NAN; /* out of memory: st_estimate_check refuses the result */
        }
        if (q) st_plan_stage_retarget(p, lo, q);
        sum += q ? exchange_time(v, q, st_plan_stage_tp(p, hi)) : st__p2p_time(v, p);
        n++;
    }
    free(q);
    return sum / n;
}

int st_cost_slowest_replica(st_cost_ctx *ctx, const st_plan *p) {
    if (ctx->c->ngroups == 0 && !p->ndp_batches && !p->nstage_tp) return 0;
    if (p->pp < 1 || p->pp * p->vp > ST_MAX_STAGES || (p->ndp_batches && p->ndp_batches != p->dp)) return 0;
    pipe_sum ps;
    memset(&ps, 0, sizeof ps);
    return pipe_groups(ctx, p, &ps) ? 0 : ps.replica;
}

int st_cost_check_stage_layers(st_cost_ctx *ctx, const st_plan *p, st_error *err) {
    if (!p->nstage_layers) return 0;
    st_plan pd;
    for (int d = 0; d < p->pp; d++) {
        int last = -1;
        int64_t blk = (int64_t)st_plan_stage_tp(p, d) * p->cp;
        st_plan_stage_plan(p, d, &pd);
        for (int r = 0; r < p->dp; r++) {
            int64_t first = st_plan_stage_rank0(p, d) + blk * r;
            int g = st_cluster_rank_group(ctx->c, first);
            if (g == last && st_cluster_rank_group(ctx->c, first + blk - 1) == g) continue; /* priced already */
            last = g;
            st_cost_ctx *v = st_cost_view(ctx, first, blk);
            if (!v) return st_error_set(err, ST_ENOMEM, NULL, NULL, "out of memory");
            st_stage_memory sm;
            st_cost_stage_memory(v, &pd, d, &sm);
            if (sm.total_bytes > v->c->gpu.memory_bytes) {
                int chunk_layers[ST_MAX_STAGES], n = 0;
                st_plan_chunk_layers(p, ctx->m, chunk_layers);
                for (int j = 0; j < p->pp * p->vp; j++) n += st_plan_stage_holds(p, d, j) ? chunk_layers[j] : 0;
                return st_error_set(err, ST_EINVAL, NULL, "stage_layers",
                                    "stage %d's %d layers need %.1f GiB, more than its %s's %.1f GiB", d, n,
                                    sm.total_bytes / 1073741824.0, v->c->gpu.name,
                                    v->c->gpu.memory_bytes / 1073741824.0);
            }
        }
    }
    return 0;
}

void st_cost_dp_stage(st_cost_ctx *ctx, const st_plan *p, int stage, double *reduce_s, double *gather_s,
                      double *nbuckets) {
    st__stage_class cls;
    st_stage_memory sm;
    double dense, expert;
    st__cost_stage_class(ctx, p, stage, &cls);
    const st__shard_cost *sc = st__cost_shard(ctx, p);
    st__cost_stage_memory(ctx, p, sc, &cls, stage, &sm, &dense, &expert);
    dp_times(ctx, p, dense, expert, st__quant_params(sc, &cls), reduce_s, gather_s, nbuckets);
}

double st_cost_stage_quant_params(st_cost_ctx *ctx, const st_plan *p, int stage) {
    st__stage_class cls;
    st__cost_stage_class(ctx, p, stage, &cls);
    return st__quant_params(st__cost_shard(ctx, p), &cls);
}

double st_cost_param_gather_exposed(const st_cluster *c, double gather_s, double nbuckets, double fwd_s,
                                    double *tax_s) {
    double nb = nbuckets < 1 ? 1 : nbuckets;
    double exposed = gather_s / nb + (nb - 1) / nb * max0(gather_s - fwd_s);
    *tax_s = st_cost_overlap_tax(c, gather_s - exposed);
    return exposed;
}

/* An all-reduce of `b` bytes between two ranks of the pipeline group, priced as two ranks on two nodes,
 * each with its GPU's share of its node's NICs: in one scale-up domain when the pipeline group is
 * (pp stages of one node), else in two (a pipeline spanning domains has its ends apart). */
static double pp_pair_allreduce(st_cost_ctx *ctx, const st_plan *p, double b) {
    st_group gpp;
    st_cost_group(ctx->c, p, ST_GRP_PP, &gpp);
    st_group ge = {.n = 2, .per_node = gpp.nodes == 1 ? 2 : 1, .nodes = gpp.nodes == 1 ? 1 : 2,
                   .node_share = ctx->c->gpus_per_node, .tier = gpp.tier};
    return st_cost_collective(ctx->c, ctx->prof, ST_COLL_ALLREDUCE, &ge, b);
}

/* DualPipe's two copies of every stage (rank d's stage d and rank pp - 1 - d's second copy of it) get
 * one update: each rank all-reduces the gradients of its `params` with its mirror rank pp - 1 - d, a
 * pair of the pipeline group, before the data-parallel reduction (an upper bound where dp > 1: one
 * reduction over both copies' 2 dp ranks would move no more than the dp reduction alone). */
double st_cost_dualpipe_mirror(st_cost_ctx *ctx, const st_plan *p, double params, double *bytes) {
    double b = p->schedule == ST_SCHED_DUALPIPE ? params * p->grad_bytes : 0;
    if (bytes) *bytes = b;
    return b > 0 ? pp_pair_allreduce(ctx, p, b) : 0;
}

/* Megatron-LM's _allreduce_embedding_grads (finalize_model_grads.py): the word embedding's
 * gradient, on the first stage, and its tied copy on the last, summed by an all-reduce of the
 * two ranks (pp_pair_allreduce). None under zbv, whose V puts the first and the last chunk on stage 0,
 * nor under dualpipe, whose ends each hold the embedding and the output layer (their sum local, the
 * copies' in st_cost_dualpipe_mirror): one tensor. */
double st_cost_embedding_allreduce(st_cost_ctx *ctx, const st_plan *p, double *bytes) {
    double b = 0, t = 0;
    if (ctx->m->tied_embeddings && p->pp > 1 && p->schedule != ST_SCHED_ZBV && p->schedule != ST_SCHED_DUALPIPE) {
        /* stage_tp: the end stages' shards differ; each pair moves the larger (the smaller tp's) */
        int t0 = st_plan_stage_tp(p, 0), t1 = st_plan_stage_tp(p, p->pp - 1), tp = t0 < t1 ? t0 : t1;
        b = (double)st_model_padded_vocab(ctx->m, tp) / tp * (double)ctx->m->hidden * p->grad_bytes;
        t = pp_pair_allreduce(ctx, p, b);
    }
    if (bytes) *bytes = b;
    return t;
}
