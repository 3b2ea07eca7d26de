/* lower_ops.c: the operators a lowering's compute instructions run (program.h, "Operators").
 *
 * For each pipeline chunk, in chunk order, and each phase the programs run: the chunk's operators
 * (the embedding's on the first chunk, each of its blocks', the output layer's on the last:
 * st_ops_head, st_ops_layer, st_ops_tail with the plan's shard) in the order that phase runs them:
 * forward and recompute first to last, backward last to first. Recompute runs the blocks'
 * operators that cost/estimate.c prices as recomputed, each for the share of its forward that
 * st_cost_op_recompute gives (selective: those st_op.selective marks; full: all of them; op: what
 * torchtitan's op-level policy does not save); each half of ZB's split backward lists every operator at half the work, as
 * cost/ splits it. An operator with no work in a phase (grad_accum's forward) is left out of it.
 *
 * Collectives: the operator graph attaches each to the operator it follows in forward
 * (st_op.fwd_coll, bwd_coll). In a forward (and a full recompute) it runs right after that
 * operator; in a backward right before it, where the gradient crosses the same boundary the other
 * way. That is where Megatron-LM issues them (megatron/core/tensor_parallel/layers.py,
 * LinearWithGradAccumulationAndAsyncCommunication; mappings.py; cross_entropy.py): without
 * sequence parallelism the all-reduce after the row-parallel proj and fc2, and in backward the
 * all-reduce of the column-parallel qkv's and fc1's input gradient (attached to the norm before
 * them); with it the all-gather before qkv and fc1 and the reduce-scatter after proj and fc2, in
 * backward the all-gather of the output gradient before proj's and fc2's and the reduce-scatter of
 * qkv's and fc1's input gradient; the vocab-parallel embedding's all-reduce (reduce-scatter) and
 * the cross-entropy's; cp's key-value exchange and ep's all-to-alls likewise. Selective recompute's
 * operators talk to no one, and neither does ZB's weight-gradient half. Times: st_cost_ops, the
 * estimate's own per-operator prices (with tp_overlap, a collective's time is what it leaves
 * exposed beside its GEMM; with cp=p2p, the cp exchange's is what the ring leaves exposed beside the
 * attention's steps, st_cost_cp_ring_exposed), each list (head, block, tail) stretched where the host's issue time
 * outlasts its GPU time (st_cost_host_stretch), as the estimate stretches it.
 *
 * Not here, because cost/ does not price it: with sp, Megatron-LM all-gathers the column-parallel
 * GEMMs' saved input again for their weight gradient (overlapped with the input-gradient GEMM). */
#include "lower_private.h"

#include <stdlib.h>
#include <string.h>

typedef struct table {
    st_lowered *out;
    st__opcoll *x;
    int cap;
} table;

/* one operator of the chunk, priced (ctx, and ctx0 without latencies) */
typedef struct chunk_op {
    st_op op;
    int32_t layer;
    int16_t index;
    st_op_cost c, c0;
} chunk_op;

static int is_backward(int phase) {
    return phase == ST_PHASE_BWD || phase == ST_PHASE_BWD_INPUT || phase == ST_PHASE_BWD_WEIGHT;
}

/* appends o in `phase`; in a recompute, the share `part` of its forward that the plan's recompute
 * runs again, and its forward collective too when `coll` (st_cost_op_recompute) */
static int push(table *t, const chunk_op *o, int phase, double part, int coll) {
    st_lowered *out = t->out;
    int bwd = is_backward(phase);
    if (phase == ST_PHASE_BWD_INPUT || phase == ST_PHASE_BWD_WEIGHT) part = 0.5;
    st__opcoll x = {.coll = ST_COLL_NONE, .group = (uint8_t)o->op.coll_group};
    if (phase == ST_PHASE_FWD || (phase == ST_PHASE_RECOMPUTE && coll)) {
        x.coll = (uint8_t)o->op.fwd_coll;
        x.bytes = st_op_fwd_coll_bytes(&o->op);
        x.s = o->c.fwd_coll_s;
        x.latency_s = st__latency_of(o->c.fwd_coll_s, o->c0.fwd_coll_s);
    } else if (phase == ST_PHASE_BWD || phase == ST_PHASE_BWD_INPUT) {
        x.coll = (uint8_t)o->op.bwd_coll;
        x.bytes = o->op.coll_bytes;
        x.before = 1;
        x.s = o->c.bwd_coll_s;
        x.latency_s = st__latency_of(o->c.bwd_coll_s, o->c0.bwd_coll_s);
    }
    if (x.coll == ST_COLL_NONE) x.bytes = 0;
    if ((bwd ? o->op.kernels_bwd : o->op.kernels_fwd) == 0 && x.coll == ST_COLL_NONE) return 0; /* nothing to run */
    if (out->nops == t->cap) {
        int cap = t->cap ? 2 * t->cap : 256;
        st_lowered_op *grown = realloc(out->ops, sizeof *grown * (size_t)cap);
        if (!grown) return ST_ENOMEM;
        out->ops = grown;
        st__opcoll *xg = realloc(t->x, sizeof *xg * (size_t)cap);
        if (!xg) return ST_ENOMEM;
        t->x = xg;
        t->cap = cap;
    }
    st_lowered_op *e = &out->ops[out->nops];
    e->name = o->op.name;
    e->layer = o->layer;
    e->index = o->index;
    e->cls = (uint8_t)o->op.cls;
    e->phase = (uint8_t)phase;
    e->m = o->op.m;
    e->n = o->op.n;
    e->k = o->op.k;
    e->batch = o->op.batch;
    e->flops = (bwd ? o->op.bwd_flops : o->op.fwd_flops) * part;
    e->bytes = (bwd ? o->op.bwd_bytes : o->op.fwd_bytes) * part;
    e->dur_s = (bwd ? o->c.bwd_s : o->c.fwd_s) * part;
    t->x[out->nops++] = x;
    return 0;
}

/* the operators of one list (head, block or tail), priced, appended to ops[*n] */
static void add_list(st_cost_ctx *ctx, st_cost_ctx *ctx0, const st_plan *p, const st_op *list, int count,
                     int32_t layer, chunk_op *ops, int *n) {
    st_op_cost c[ST_MAX_OPS], c0[ST_MAX_OPS];
    st_cost_ops(ctx, p, list, count, c);
    st_cost_ops(ctx0, p, list, count, c0);
    double gpu_fwd_s = 0, gpu_bwd_s = 0;
    for (int i = 0; i < count; i++) gpu_fwd_s += c[i].fwd_s, gpu_bwd_s += c[i].bwd_s;
    /* a host-bound list stretches each of its operators alike, as cost/estimate.c prices it */
    double stretch_fwd = st_cost_host_stretch(st_cost_cluster(ctx), list, count, gpu_fwd_s, 0);
    double stretch_bwd = st_cost_host_stretch(st_cost_cluster(ctx), list, count, gpu_bwd_s, 1);
    for (int i = 0; i < count; i++) {
        chunk_op *o = &ops[(*n)++];
        o->op = list[i];
        o->layer = layer;
        o->index = (int16_t)i;
        o->c = c[i];
        o->c0 = c0[i];
        o->c.fwd_s *= stretch_fwd, o->c0.fwd_s *= stretch_fwd;
        o->c.bwd_s *= stretch_bwd, o->c0.bwd_s *= stretch_bwd;
    }
}

/* the operators of chunk j in forward order, with their prices: *n of them in ops (new) */
static int chunk_ops(st_cost_ctx *ctx, st_cost_ctx *ctx0, const st_plan *p, int j, const int *chunk_layers,
                     chunk_op **ops, int *n) {
    const st_model *m = st_cost_model(ctx);
    int chunks = p->pp * p->vp, first = 0;
    for (int i = 0; i < j; i++) first += chunk_layers[i];
    st_shard s;
    st_op list[ST_MAX_OPS];
    st_plan_shard(p, &s);
    *n = 0;
    *ops = malloc(sizeof **ops * (size_t)(chunk_layers[j] + 2) * ST_MAX_OPS);
    if (!*ops) return ST_ENOMEM;
    int k;
    if (j == 0) {
        if ((k = st_ops_head(m, &s, list, ST_MAX_OPS)) < 0) return k;
        add_list(ctx, ctx0, p, list, k, -1, *ops, n);
    }
    for (int l = first; l < first + chunk_layers[j]; l++) {
        if ((k = st_ops_layer(m, &s, l, list, ST_MAX_OPS)) < 0) return k;
        add_list(ctx, ctx0, p, list, k, l, *ops, n);
    }
    if (j == chunks - 1) {
        if ((k = st_ops_tail(m, &s, list, ST_MAX_OPS)) < 0) return k;
        add_list(ctx, ctx0, p, list, k, (int32_t)m->layers, *ops, n);
    }
    return 0;
}

int st__lower_ops(st_cost_ctx *ctx, st_cost_ctx *ctx0, const st_plan *p, unsigned phases, st_lowered *out,
                  st__span *span, st__opcoll **colls) {
    const st_model *m = st_cost_model(ctx);
    int chunks = p->pp * p->vp, chunk_layers[ST_MAX_STAGES], rc = 0;
    table t = {.out = out};
    chunk_op *ops = NULL;
    st_plan *q = p->nstage_tp ? malloc(sizeof *q) : NULL; /* stage_tp: each chunk's operators at its stage's tp */
    if (p->nstage_tp && !q) return ST_ENOMEM;
    st_plan_chunk_layers(p, m, chunk_layers);
    for (int j = 0; j < chunks && !rc; j++) {
        int n;
        if (q) st_plan_stage_plan(p, st_plan_chunk_stage(p, j), q);
        if ((rc = chunk_ops(ctx, ctx0, q ? q : p, j, chunk_layers, &ops, &n))) break;
        for (int ph = 0; ph < ST__PHASES && !rc; ph++) {
            st__span *s = &span[j * ST__PHASES + ph];
            s->op = out->nops;
            s->n = 0;
            if (!(phases >> ph & 1)) continue;
            for (int i = 0; i < n && !rc; i++) {
                const chunk_op *o = &ops[is_backward(ph) ? n - 1 - i : i];
                double part = 1;
                int coll = 0;
                if (ph == ST_PHASE_RECOMPUTE) {
                    int block = o->layer >= 0 && o->layer < m->layers;
                    if (!block || !(part = st_cost_op_recompute(&o->op, p->recompute, &coll))) continue;
                }
                rc = push(&t, o, ph, part, coll);
            }
            s->n = out->nops - s->op;
        }
        free(ops);
        ops = NULL;
    }
    free(ops);
    free(q);
    if (rc) {
        free(t.x);
        t.x = NULL;
    }
    *colls = t.x;
    return rc;
}

st__span st__span_part(const st_lowered_op *ops, st__span s, int32_t from) {
    st__span r = {from, 0};
    while (from + r.n < s.op + s.n && ops[from + r.n].layer == ops[from].layer) r.n++;
    return r;
}

st__span st__span_layer(const st_lowered_op *ops, st__span s, int32_t layer) {
    /* the range runs layer by layer, up (forward) or down (backward): the first entry of `layer`
     * by bisection */
    int up = s.n < 2 || ops[s.op].layer <= ops[s.op + s.n - 1].layer;
    int32_t lo = s.op, hi = s.op + s.n;
    while (lo < hi) {
        int32_t mid = lo + (hi - lo) / 2;
        if (up ? ops[mid].layer < layer : ops[mid].layer > layer)
            lo = mid + 1;
        else
            hi = mid;
    }
    st__span r = {lo, 0};
    while (lo + r.n < s.op + s.n && ops[lo + r.n].layer == layer) r.n++;
    return r;
}
