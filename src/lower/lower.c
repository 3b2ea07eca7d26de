/* lower.c: a finalized plan becomes one program per pipeline stage (program.h).
 *
 * The tp, cp and dp ranks of a stage run identical programs on identical inputs, so each stage is
 * lowered once, as a representative rank (program.h, "Symmetry"); st_lower_full lowers every
 * rank, where the lanes of a stage run its first lane's instructions (on node groups, the first lane
 * of a replica like theirs) under their own names for groups, peers and routes (program.h, "Shared
 * instructions": 48 times less instruction memory and lowering time for the 1T benchmark). Durations come from st_cost_chunk, st_cost_op and
 * st_cost_estimate: the simulator and the estimator price the same operators.
 *
 * Compute instructions name the operators they run (program.h, "Operators"; the table is
 * lower_ops.c's). The collectives Megatron runs inline (tp/cp/ep) go on the compute stream in one
 * of two forms, from the same code (st_lower_opts.per_op):
 * - fused (the default, the simulator's fast form): a chunk's forward, recompute or backward of a
 *   micro-batch is one compute instruction, followed by one collective per group kind that talks
 *   (tp, then cp, then ep) timed as the sum of its operators' collectives;
 * - per operator (an executor's form): each collective right where Megatron-LM issues it, after
 *   (forward) or before (backward) its operator, the compute between two collectives one
 *   instruction. The same times in another order: on the compute stream, which runs one thing at
 *   a time, the sum is the same, so the simulated iteration matches the fused form's up to
 *   rounding unless links shared with other streams' transfers (or ZeRO-3's layer pieces and the
 *   data-parallel buckets, which follow the operators rather than equal shares) make the order
 *   matter.
 *
 * Schedules, per stage d of pp with m micro-batches (Megatron-LM schedules.py, Narayanan et al.
 * SC'21 Sec. 2.2; Qi et al. 2023 for ZB-H1):
 * - gpipe: every forward, then every backward;
 * - 1f1b: min(pp - d - 1, m) warm-up forwards, then one forward and one backward alternately,
 *   then the remaining backwards;
 * - interleaved (vp > 1): m*vp virtual micro-batches; the k-th forward runs chunk (k / pp) % vp
 *   of micro-batch (k / (pp vp)) pp + k % pp, the k-th backward chunk vp - 1 - (k / pp) % vp;
 *   (pp - d - 1) * 2 + (vp - 1) * pp warm-up forwards, then 1F1B;
 * - zb (ZB-H1, Qi et al. 2401.10241 Sec. 3.1 and Fig. 3; the order of torch.distributed.pipelining's
 *   ScheduleInterleavedZeroBubble with one stage per rank, _get_1f1b_rank_ops with
 *   num_1f1b_microbatches = rank): 1F1B's forwards and input-gradient halves B (the same warm-up,
 *   the same messages), each weight-gradient half W held back d input halves on stage d: after
 *   B(i) comes W(i - d) once i >= d, the last d W at the end. Stage d keeps at most pp micro-batches'
 *   activations (pp - d forwards waiting for their B, d for their W: 1F1B's first stage's, on every
 *   stage), and on equal stages the bubble is the paper's (pp - 1)(t_F + t_B - t_W) where t_W is at
 *   most t_F and t_B (cost/estimate.c); each weight half held back also keeps its chunk's linear-layer
 *   output gradients and, under full recompute, inputs, which its input half's recompute restored (backward());
 * - zbv (ZB-V, Qi et al. 2401.10241 Sec. 6): two chunks per stage in a V (st_plan_chunk_stage), the
 *   order of torch's ScheduleZBVZeroBubble (lower_ordered); the turn from chunk pp - 1 to pp stays on
 *   the last stage and sends nothing;
 * - dualpipe (DeepSeek-V3 report Sec. 3.2.1; deepseek-ai/DualPipe's dualpipe.py): two copies of the
 *   pipeline, 2 pp chunks (chunk_stage), half the micro-batches fed at each end, in DualPipe.step's
 *   order (dualpipe_order, lower_ordered), the backward in input and weight halves; each rank's
 *   gradients (both copies' stages) summed with its mirror rank pp - 1 - d's before the optimizer.
 *   Its simulated iteration is the estimate's closed form where forwards and backward halves are equal
 *   (cost/estimate.c); the overlapped F&B pair runs as its forward then its backward, its expert
 *   all-to-alls and messages hidden behind the two as the estimate hides them (pair_overlap).
 * Each forward receives its input from the previous chunk's stage and sends its output on; each
 * backward receives the output gradient and sends the input gradient back, each tp rank its whole
 * message, used as it arrives (Megatron-Core's, st_cost_p2p_bytes). Receives block the compute
 * stream (Megatron-LM's synchronous p2p); sends go out on the P2P stream, so a stage computes on
 * while its output travels.
 *
 * Data parallelism (zero 0-2) on the dp stream, with the cost model's full collective times: the
 * gradient reduction after the whole backward, or, with overlap_grad_reduce, in buckets that the
 * last micro-batch's backward of each chunk hands over as it goes (the backward runs in pieces
 * for that, each a share of its operators); then the optimizer step, then (zero 1-2) the weight
 * all-gather, of which with overlap_param_gather only what the next iteration's first forward does
 * not hide shows (st_cost_param_gather_exposed: the first bucket, and the rest's excess). ZeRO-3 (DeepSpeed's stage 3, Rajbhandari et al. 2020): every forward,
 * recompute and backward runs layer by layer, each layer after the all-gather of its weights on a
 * stream of its own, prefetched one layer ahead, and each layer's gradients are reduce-scattered
 * on the dp stream after its backward (every micro-batch, as DeepSpeed does); the optimizer waits
 * for the last of them. With offload=params (ZeRO-Infinity, Rajbhandari et al. SC'21) each layer's
 * shard first comes from the host over PCIe on the copy stream, under the same prefetch limit, and
 * its gather waits for it. Offload's optimizer step: the gradients to the host on the copy stream,
 * the CPU's Adam, the updated weights back (ZeRO-Offload, Ren et al. 2021).
 *
 * Node groups of different GPU types and uneven micro-batches per replica (issue 19): by stage, each
 * stage is lowered as the replica that sets the step (st_cost_slowest_replica) runs it; to every rank,
 * each replica's ranks as that replica runs them. Either way a program has its replica's micro-batch
 * count, its chunks priced on its own GPUs (st_cost_view of its tp x cp ranks), its pipeline messages
 * on the links to its neighbours (st_cost_stage_p2p: the fabric between groups where they differ), its
 * data-parallel collectives on the stage's data-parallel group; the per-operator form's operator table
 * keeps the cluster's slowest GPU. Every rank: the replicas that sit on the same groups and run as
 * many micro-batches share one replica's instructions. Collectives issued per micro-batch in groups
 * that span replicas (ZeRO-3's layer gathers, the experts' all-to-all) need equal micro-batch counts:
 * uneven dp_batches with zero=3 or ep > 1 are refused (st_plan_lockstep: no framework runs them).
 *
 * Network (program.h, "Network"; the links and routes are lower_net.c's). Every transfer gets a
 * route and a latency part: the cost model's time minus the same time on the cluster without
 * latencies; the rest is the bandwidth part, which contention stretches. Alone a transfer takes
 * exactly the cost model's time. Each kind of collective is an instruction of its own in a group
 * of its kind, on that group's links: a chunk's tp, cp and ep collectives and the tied
 * embedding's all-reduce between the end stages after the data-parallel reduction. In the
 * every-rank lowering the groups hold the ranks of Megatron's order (tp-cp-dp-pp; an ep group is
 * ep consecutive ranks of the dp x cp group, st_cost_group's placement); a representative's groups
 * hold it alone and its routes cross the links of every rank it stands for.
 *
 * A tp per stage (stage_tp) to every rank: stage d's ranks, tp-cp-dp at its own tp, follow stage d - 1's
 * (st_plan_stage_rank0), its groups at its tp; between stages of different tp the ranks pair as rank_pair
 * says (the by-stage lowering's min(tp) pairs, each message the exchange's), the tied embedding's end
 * stages too; each lane is lowered on its own (lanes differ in their messages). zbv and dualpipe, whose
 * sends follow their receivers' order, are refused there. */
#include "lower_private.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

typedef struct builder {
    st_program *pg;
    int failed;
    int last_dp; /* the last data-parallel bucket issued so far, -1 = none */
    int zp[2];   /* ZeRO-3: the last two layer computes, older first (-1 = none) */
    /* zbv, dualpipe: sends held back until their receiver expects them (lower_ordered); NULL: sends go out at once */
    st_ins *held;
    int nheld;
    int last_compute; /* the last instruction on the compute stream so far, -1 = none */
    /* a DualPipe F&B pair being emitted: the share of its ep all-to-alls that shows, and the tax of what
     * hides, for its first compute instruction (1 and 0 elsewhere; lower_ordered) */
    double ep_shown, pair_tax_s;
} builder;

static int emit(builder *b, const st_ins *in) {
    st_program *pg = b->pg;
    if (b->failed) return -1; /* stop at the first failure: retrying a multi-GB realloc per instruction took minutes */
    if (pg->n == (pg->cap < 0 ? -pg->cap : pg->cap)) {
        int cap = pg->n ? pg->n * 2 : 64;
        /* memory in a shared block (cap < 0) is not the program's to grow: move out of it */
        st_ins *grown = pg->cap < 0 ? malloc((size_t)cap * sizeof *grown) : realloc(pg->ins, (size_t)cap * sizeof *grown);
        if (!grown) {
            b->failed = 1;
            return -1;
        }
        if (pg->cap < 0) memcpy(grown, pg->ins, (size_t)pg->n * sizeof *grown);
        pg->ins = grown;
        pg->cap = cap;
    }
    pg->ins[pg->n] = *in;
    if (in->stream == ST_STREAM_COMPUTE) b->last_compute = pg->n;
    return pg->n++;
}

static st_ins blank(st_ins_kind kind, int stream, int chunk, int mb, const char *label) {
    st_ins in;
    memset(&in, 0, sizeof in);
    in.kind = (uint8_t)kind;
    in.stream = (uint8_t)stream;
    in.chunk = chunk;
    in.mb = mb;
    in.dep[0] = in.dep[1] = -1;
    in.label = label;
    in.phase = ST_PHASE_OTHER;
    in.coll = ST_COLL_NONE;
    in.peer = -1; /* and group and op: they share a field */
    if (kind == ST_INS_COLL) in.coll_op = -1; /* (a COMPUTE's nops, in the same field, stays 0: no operators) */
    in.route = -1;
    return in;
}

/* A pipeline send: emitted, or under zbv and dualpipe held for lower_ordered to emit in its receiver's order */
static void send_out(builder *b, const st_ins *s) {
    if (b->held)
        b->held[b->nheld++] = *s;
    else
        emit(b, s);
}

/* message tags: one per (destination chunk, micro-batch, direction) */
static int tag_of(int chunk, int mb, int64_t m, int backward) { return (int)(((int64_t)chunk * m + mb) * 2 + backward); }

/* ------------------------------------------------------------ programs */

typedef struct lower_ctx {
    const st_plan *p;
    int chunks; /* dualpipe: 2 pp, copy A's stages 0..pp-1 then copy B's (chunk_stage) */
    int dual;   /* schedule=dualpipe */
    int64_t m;
    int64_t chunk_mbs; /* the micro-batches each chunk runs: m, or dualpipe's m / 2 per copy */
    int rep;                  /* the replica this program runs (by stage: st_cost_slowest_replica's) */
    const st_chunk_cost *cc;  /* per chunk, on that replica's GPUs */
    const st_chunk_cost *cc0; /* per chunk, without latencies */
    int full;                 /* every rank, with explicit tp collectives (st_lower_full) */
    int per_op;               /* each collective at its operator (st_lower_opts.per_op) */
    st_plan *sbuf;            /* stage_tp: room for the plan of the stage lowered (stage_plan); else NULL */
    int tp_i, cp_i, dp_i;     /* this rank's coordinates (full) */
    int stage_i;              /* and its stage */
    int dp_group;             /* this rank's data-parallel group */
    /* this rank's group of each kind that talks inside a chunk (ST_GRP_TP, _CP, _EP; -1 none) and
     * its route */
    int grp[ST_GRP_COUNT], r_grp[ST_GRP_COUNT];
    int edp_group, r_edp; /* ZeRO-3 with experts: this rank's expert-data-parallel group, its route */
    /* overlap_grad_reduce with zero 0-2: the reduction fires in buckets during the last
     * micro-batch's backward of each chunk (Megatron-LM's DDP buckets); overlap_param_gather
     * (zero 1-2): the weight all-gather hides behind the next forward but for its last bucket */
    int dp_overlap, gather_overlap;
    double dp_reduce_s, dp_reduce_lat, dp_buckets, stage_params;
    double stage_quant; /* of stage_params, the quantised linear layers' (st_cost_gather_bytes) */
    double bwd_extra; /* the stage's st_stage_memory.backward_extra_bytes: its first backward allocates it */
    double stage_fwd_s; /* one micro-batch's forward compute on the stage (what the gather hides behind) */
    double p2p_bytes, grad_bytes;
    /* routes (-1: none): dp collectives; sends forward (activations) and backward (gradients) */
    int r_dp;
    const int *r_fwd, *r_bwd; /* per program */
    const st_cluster *c;
    const struct zchunk *z; /* ZeRO-3 (zero = 3): per chunk; NULL otherwise */
    const st_offload_copies *og; /* granular offload (offload_params, offload_activations): per chunk; or NULL */
    /* the operator table (lower_ops.c): entries, their collectives, each (chunk, phase)'s range */
    const st_lowered_op *ops;
    const st__opcoll *oc;
    const st__span *span;
} lower_ctx;

/* ZeRO-3's per-layer traffic of a chunk (st_cost_zero3_chunk), with latency parts */
typedef struct zchunk {
    int layers;
    double gather_s, gather_lat, gather_bytes;
    double scatter_s, scatter_lat, scatter_bytes;
    /* the layer's expert parameters, over the expert-data-parallel group (0 without experts) */
    double egather_s, egather_lat, egather_bytes;
    double escatter_s, escatter_lat, escatter_bytes;
    /* offload=params: the layer's weight shard copied from the host before its gather (0 without) */
    double copy_s, copy_bytes;
} zchunk;

/* Every rank: stage d's ranks, st_plan_stage_rank0 on (stage_tp: its own tp x cp x dp, stages one after
 * another; else tp x cp x dp each) */
static int stage_width(const st_plan *p, int d) { return st_plan_stage_tp(p, d) * p->cp * p->dp; }

/* the stage rank r belongs to (every rank) */
static int rank_stage(const st_plan *p, int r) {
    int d = 0;
    while (d + 1 < p->pp && r >= st_plan_stage_rank0(p, d + 1)) d++;
    return d;
}

/* The rank of stage e that stage d's rank (t, c, q) (tp, cp, dp coordinates) exchanges with, or -1. Equal
 * tp: the same coordinates. stage_tp, between tp a and b = k a (k > 1): the smaller stage's rank (t, c, q)
 * pairs with the larger's (k t, c, q), the min(a, b) pairs spread over the larger stage as the by-stage
 * lowering routes them (make_routes) and the estimate prices them (one message per pair, cost/estimate.c
 * exchange_time); the larger stage's other ranks exchange nothing and meet their pair's at the stage's tp
 * collectives. The tied embedding's end-stage pairs are the same pairs. */
static int rank_pair(const st_plan *p, int d, int t, int c, int q, int e) {
    int a = st_plan_stage_tp(p, d), b = st_plan_stage_tp(p, e), te = t;
    if (b < a) te = t % (a / b) == 0 ? t / (a / b) : -1;
    if (b > a) te = t * (b / a);
    if (te < 0) return -1;
    return (int)st_plan_stage_rank0(p, e) + te + b * (c + p->cp * q);
}

/* Megatron's rank order tp-cp-dp-pp: the rank of this lane's copy of `stage`; -1: none (stage_tp: a lane
 * without a pair there, rank_pair) */
static int rank_at(const lower_ctx *L, int stage) {
    if (!L->full) return stage;
    return rank_pair(L->p, L->stage_i, L->tp_i, L->cp_i, L->dp_i, stage);
}

/* The stage of chunk j. DualPipe's chunks are two copies of the pipeline's pp: copy A's stage j (j < pp)
 * on rank j, fed at rank 0, and copy B's stage j - pp on rank 2 pp - 1 - j, fed at rank pp - 1: zbv's
 * V, but the turn (pp - 1 to pp) is no message, the two copies apart. */
static int chunk_stage(const lower_ctx *L, int j) {
    return L->dual ? (j < L->p->pp ? j : 2 * L->p->pp - 1 - j) : st_plan_chunk_stage(L->p, j);
}

/* whether chunk j takes its input from a chunk before it (and gives its gradient back), or gives its
 * output to one after it: every chunk but the ends, and under dualpipe each copy's ends */
static int has_prev(const lower_ctx *L, int j) { return L->dual ? j % L->p->pp != 0 : j > 0; }
static int has_next(const lower_ctx *L, int j) { return L->dual ? j % L->p->pp != L->p->pp - 1 : j < L->chunks - 1; }

/* the operators chunk j runs in `phase`, named by in */
static void name_ops(const lower_ctx *L, st_ins *in, int j, int phase) {
    st__span s = L->span[j * ST__PHASES + phase];
    in->op = s.op;
    in->nops = s.n;
}

static st__span ops_of(const st_ins *in) { return (st__span){in->op, in->nops}; }

/* the collectives of a compute instruction's operators, per group kind: times and latency parts */
typedef struct comm_g {
    double s[ST_GRP_COUNT], lat[ST_GRP_COUNT];
} comm_g;

static comm_g comm_of(const double *t, const double *t0) {
    comm_g c;
    for (int k = 0; k < ST_GRP_COUNT; k++) c.s[k] = t[k], c.lat[k] = st__latency_of(t[k], t0[k]);
    return c;
}

static comm_g comm_sum(comm_g a, const comm_g *b) {
    for (int k = 0; k < ST_GRP_COUNT; k++) a.s[k] += b->s[k], a.lat[k] += b->lat[k];
    return a;
}

static comm_g comm_scaled(comm_g a, double f) {
    for (int k = 0; k < ST_GRP_COUNT; k++) a.s[k] *= f, a.lat[k] *= f;
    return a;
}

static const comm_g no_comm;

/* The fused form: the compute instruction and the collectives of its operators, one instruction
 * per group kind that talks (tp, then cp, then ep), each in this rank's group of that kind and on
 * its links, on the compute stream right after it (Megatron runs them inline). A kind without a
 * group (size 1) costs nothing. Returns the last of them; *ci (optional) the compute instruction. */
static int fused_at(builder *b, const lower_ctx *L, st_ins *in, const comm_g *cm, int *ci) {
    static const char *const label[ST_GRP_COUNT] = {"tp collectives", "cp collectives", "ep all-to-all"};
    static const uint8_t coll[ST_GRP_COUNT] = {ST_COLL_ALLREDUCE, ST_COLL_ALLGATHER, ST_COLL_ALLTOALL};
    double free_bytes = in->free_bytes;
    int n = 0;
    for (int k = ST_GRP_TP; k <= ST_GRP_EP; k++) {
        if (cm->s[k] <= 0) continue;
        if (L->grp[k] < 0) in->dur_s += cm->s[k]; /* a group of one does not talk: not reached */
        else n++;
    }
    if (n > 0) in->free_bytes = 0;
    int last = emit(b, in);
    if (ci) *ci = last;
    for (int k = ST_GRP_TP; k <= ST_GRP_EP; k++) {
        if (cm->s[k] <= 0 || L->grp[k] < 0) continue;
        st_ins c = blank(ST_INS_COLL, ST_STREAM_COMPUTE, in->chunk, in->mb, label[k]);
        c.coll = coll[k];
        c.group = L->grp[k];
        c.dur_s = cm->s[k] * (k == ST_GRP_EP ? b->ep_shown : 1);
        c.latency_s = cm->lat[k] * (k == ST_GRP_EP ? b->ep_shown : 1);
        c.route = L->r_grp[k];
        c.free_bytes = --n == 0 ? free_bytes : 0;
        c.dep[0] = last;
        last = emit(b, &c);
    }
    return last;
}

/* a per-operator collective's label: its group kind and collective */
static const char *coll_label(uint8_t group, uint8_t coll) {
    static const char *const label[ST_GRP_COUNT][ST_COLL_COUNT] = {
        [ST_GRP_TP] = {[ST_COLL_ALLREDUCE] = "tp all-reduce", [ST_COLL_ALLGATHER] = "tp all-gather",
                       [ST_COLL_REDUCESCATTER] = "tp reduce-scatter"},
        [ST_GRP_CP] = {[ST_COLL_ALLGATHER] = "cp all-gather", [ST_COLL_REDUCESCATTER] = "cp reduce-scatter",
                       [ST_COLL_ALLTOALL] = "cp all-to-all"},
        [ST_GRP_EP] = {[ST_COLL_ALLTOALL] = "ep all-to-all"},
    };
    return label[group][coll] ? label[group][coll] : st_coll_name((st_coll)coll);
}

/* the next instruction of a per-operator sequence for template `in`: the first takes in's deps and
 * allocation, the rest follow it on the stream */
static int ops_next(builder *b, const st_ins *in, st_ins *x, int *count) {
    x->dep[0] = *count == 0 ? in->dep[0] : -1;
    x->dep[1] = *count == 0 ? in->dep[1] : -1;
    x->alloc_bytes = *count == 0 ? in->alloc_bytes : 0;
    x->free_bytes = 0;
    (*count)++;
    return emit(b, x);
}

/* The per-operator form of `in` (its operators, its labels, deps and memory): the operators' own
 * times (plus extra_s on the first compute: NCCL's SMs beside overlapped traffic), each
 * collective of theirs (lower_ops.c: after its operator in a forward, before it in a backward) an
 * instruction in this rank's group of its kind, the compute between two collectives one
 * instruction; in's free goes with the last. A collective of a group of one adds its time to the
 * compute, as in the fused form. Returns the last; *ci (optional) the last compute instruction. */
static int ops_at(builder *b, const lower_ctx *L, const st_ins *in, double extra_s, int *ci) {
    st_ins run = *in;
    int count = 0, last = -1, c = -1;
    run.nops = 0;
    run.dur_s = extra_s;
    for (int32_t e = in->op; e < in->op + in->nops; e++) {
        const st__opcoll *x = &L->oc[e];
        int talks = x->coll != ST_COLL_NONE && x->s > 0, grp = talks ? L->grp[x->group] : -1;
        st_ins coll = blank(ST_INS_COLL, ST_STREAM_COMPUTE, in->chunk, in->mb, coll_label(x->group, x->coll));
        coll.coll = x->coll;
        coll.group = grp;
        coll.route = grp >= 0 ? L->r_grp[x->group] : -1;
        coll.dur_s = x->s * (x->group == ST_GRP_EP ? b->ep_shown : 1); /* (a DualPipe pair's: pair_overlap) */
        coll.latency_s = x->latency_s * (x->group == ST_GRP_EP ? b->ep_shown : 1);
        coll.bytes = x->bytes;
        coll.coll_op = e;
        if (talks && grp < 0) run.dur_s += x->s; /* not reached */
        if (grp >= 0 && x->before) {
            if (run.nops > 0) { /* (a leading one keeps extra_s for the compute after it) */
                last = c = ops_next(b, in, &run, &count);
                run.nops = 0;
                run.dur_s = 0;
            }
            last = ops_next(b, in, &coll, &count);
        }
        if (run.nops++ == 0) run.op = e;
        run.dur_s += L->ops[e].dur_s;
        if (grp >= 0 && !x->before) {
            last = c = ops_next(b, in, &run, &count);
            run.nops = 0;
            run.dur_s = 0;
            last = ops_next(b, in, &coll, &count);
        }
    }
    if (run.nops > 0 || count == 0) last = c = ops_next(b, in, &run, &count);
    if (last >= 0) b->pg->ins[last].free_bytes = in->free_bytes;
    if (ci) *ci = c;
    return last;
}

/* A compute instruction `in` (naming its operators) and its collectives, in the lowering's form:
 * fused, `in` as given with cm after it; per operator, its operators' times plus extra_s, what
 * in->dur_s adds to the fused share of its operators' time (0, or NCCL's SMs beside overlapped
 * traffic). Returns the last; *ci (optional) the last compute instruction. */
static int compute_at(builder *b, const lower_ctx *L, st_ins *in, const comm_g *cm, double extra_s, int *ci) {
    double tax = b->pair_tax_s; /* a DualPipe pair's first compute (pair_overlap) */
    b->pair_tax_s = 0;
    if (L->per_op) return ops_at(b, L, in, extra_s + tax, ci);
    in->dur_s += tax;
    return fused_at(b, L, in, cm, ci);
}

static int compute(builder *b, const lower_ctx *L, st_ins *in, const comm_g *cm) {
    return compute_at(b, L, in, cm, 0, NULL);
}

/* a pipeline message's send or receive: Megatron-Core's whole message from every tp rank, used as
 * it comes (st_cost_p2p_bytes, st_chunk_cost.p2p_s) */
static void p2p_fill(const lower_ctx *L, st_ins *in, int j, int route) {
    in->dur_s = L->cc[j].p2p_s;
    in->latency_s = st__latency_of(L->cc[j].p2p_s, L->cc0[j].p2p_s);
    in->bytes = L->p2p_bytes;
    in->coll = ST_COLL_SENDRECV;
    in->route = route;
}

/* ZeRO-3: one collective of a layer's weights or gradients (time s, latency part lat, bytes) in
 * group g on route rt, after dep, for `in`'s chunk and micro-batch */
static int z_coll(builder *b, const st_ins *in, int stream, st_coll coll, const char *label, double s, double lat,
                  double bytes, int g, int rt, int dep) {
    st_ins c = blank(ST_INS_COLL, stream, in->chunk, in->mb, label);
    c.coll = (uint8_t)coll;
    c.group = g;
    c.route = rt;
    c.dur_s = s;
    c.latency_s = lat;
    c.bytes = bytes;
    c.dep[0] = dep;
    return emit(b, &c);
}

/* Granular offload (cost/offload.c): a pass's copies on the copy stream, started with the pass (when the
 * compute stream reaches it: after its last instruction so far, the pass's receive where it has one),
 * holding `alloc` bytes from their start (the activations' share coming back). */
static int og_copy(builder *b, int chunk, int mb, const char *label, double s, double bytes, double alloc) {
    st_ins cp = blank(ST_INS_COMPUTE, ST_STREAM_COPY, chunk, mb, label);
    cp.dur_s = s;
    cp.bytes = bytes;
    cp.alloc_bytes = alloc;
    cp.dep[0] = b->last_compute;
    return emit(b, &cp);
}

/* ... and the pass's end: the compute stream goes on when both its work (`last`) and the copies (`copy`)
 * are done, so the pass takes the longer of the two, as the estimate prices it (offload_mb); the
 * activations' host share, copied out, leaves the GPU then (`free`). */
static int og_wait(builder *b, const st_ins *pass, int last, int copy, double free_bytes) {
    st_ins w = blank(ST_INS_COMPUTE, ST_STREAM_COMPUTE, pass->chunk, pass->mb, "wait for offload copies");
    w.free_bytes = free_bytes;
    w.dep[0] = last;
    w.dep[1] = copy;
    return emit(b, &w);
}

/* A micro-batch's activations that its chunk keeps on the GPU from its forward to its backward: with
 * granular offload (og) the host share leaves but for a window of two blocks it passes through. */
static double act_kept(const st_chunk_cost *c, const st_offload_copies *og) {
    return c->act_bytes - (og ? og->act_host_bytes - og->act_window_bytes : 0);
}

/* ZeRO-3: a layer's weights all-gathered on the gather stream (dense parts in the dp group, then
 * the experts' in the expert-data-parallel group), after `prior`, and with offload=params first
 * copied from the host on the copy stream. Returns the last gather. */
static int z_gather(builder *b, const lower_ctx *L, const st_ins *in, const zchunk *z, int prior) {
    if (z->copy_s > 0) { /* offload=params: the shard comes from the host first */
        st_ins cp = blank(ST_INS_COMPUTE, ST_STREAM_COPY, in->chunk, in->mb, "weights to device (layer)");
        cp.dur_s = z->copy_s;
        cp.bytes = z->copy_bytes;
        cp.dep[0] = prior;
        prior = emit(b, &cp);
    }
    int gi = z_coll(b, in, ST_STREAM_GATHER, ST_COLL_ALLGATHER, "zero-3 gather", z->gather_s, z->gather_lat,
                    z->gather_bytes, L->dp_group, L->r_dp, prior);
    if (z->egather_s > 0 && L->edp_group >= 0) /* the experts' shards, after it on the stream */
        gi = z_coll(b, in, ST_STREAM_GATHER, ST_COLL_ALLGATHER, "zero-3 expert gather", z->egather_s, z->egather_lat,
                    z->egather_bytes, L->edp_group, L->r_edp, prior);
    return gi;
}

/* ZeRO-3: a layer's gradients reduce-scattered on the dp stream after `after` (dense, then
 * experts'); b->last_dp is the last. */
static void z_scatter(builder *b, const lower_ctx *L, const st_ins *in, const zchunk *z, int after) {
    b->last_dp = z_coll(b, in, ST_STREAM_DP, ST_COLL_REDUCESCATTER, "zero-3 reduce-scatter", z->scatter_s,
                        z->scatter_lat, z->scatter_bytes, L->dp_group, L->r_dp, after);
    if (z->escatter_s > 0 && L->edp_group >= 0)
        b->last_dp = z_coll(b, in, ST_STREAM_DP, ST_COLL_REDUCESCATTER, "zero-3 expert reduce-scatter",
                            z->escatter_s, z->escatter_lat, z->escatter_bytes, L->edp_group, L->r_edp, after);
}

/* ZeRO-3: `in` (a forward, recompute or backward of a whole chunk) runs layer by layer, each layer
 * after the all-gather of its weights on the gather stream. A gather starts when the compute two
 * layers back has ended (two layers' weights are held, as the memory model assumes: prefetch one
 * layer ahead); with offload=params the layer's shard is copied from the host on the copy stream
 * first, under the same limit, and the gather waits for the copy (st_cost_offload_chunk; the copy
 * lands in memory the held weights already count). With `scatter`, each layer's gradients are
 * reduce-scattered on the dp stream after its backward. `re` (optional) is a recompute that runs
 * layer by layer in step with it: layer i's recompute, then its backward, on one gather (and one
 * copy). Each piece names its layer's operators (the embedding and the output layer count as
 * layers, as st_cost_zero3_chunk counts them). Fused, each piece takes an equal share of the
 * chunk's time and its collectives follow it, as Megatron issues them inside each layer (one lump
 * at the end of the chunk would hold the next gather back, which waits for the layer two back to
 * finish, collectives included); per operator, each layer its own. Compute beside a gather or
 * scatter is charged for NCCL's SMs, as in the estimate (a copy takes none: copy engines).
 * Returns the last instruction. */
static int z_layers_re(builder *b, const lower_ctx *L, st_ins *in, st_ins *re, const comm_g *cm, int gather,
                       int scatter) {
    const zchunk *z = &L->z[in->chunk];
    int n = z->layers, last = -1;
    comm_g share = comm_scaled(*cm, 1.0 / n);
    double tax = st_cost_overlap_tax(L->c, (gather ? z->gather_s : 0) + (scatter ? z->scatter_s : 0));
    st__span all = ops_of(in), part = {all.op, 0};
    for (int i = 0; i < n; i++) {
        part = st__span_part(L->ops, all, part.op + part.n); /* the layer's operators, in the order `in` runs them */
        int gi = -1;
        if (gather) gi = z_gather(b, L, in, z, b->zp[0]); /* after two layers back: its weights' buffer is free */
        if (re) {
            st__span rs = {re->op, 0}; /* its layer's recompute */
            if (part.n > 0) rs = st__span_layer(L->ops, ops_of(re), L->ops[part.op].layer);
            st_ins r = *re;
            r.dur_s = re->dur_s / n;
            r.alloc_bytes = i == 0 ? re->alloc_bytes : 0;
            r.dep[0] = i == 0 ? re->dep[0] : -1;
            r.dep[1] = gi;
            r.op = rs.op;
            r.nops = rs.n;
            /* the backward follows it on the stream; fused, its collectives come with the backward's */
            gi = L->per_op ? ops_at(b, L, &r, 0, NULL) : emit(b, &r);
        }
        st_ins piece = *in;
        piece.dur_s = in->dur_s / n + tax;
        piece.alloc_bytes = i == 0 ? in->alloc_bytes : 0;
        piece.free_bytes = i == n - 1 ? in->free_bytes : 0;
        piece.dep[0] = i == 0 ? in->dep[0] : -1;
        piece.dep[1] = gi;
        piece.op = part.op;
        piece.nops = part.n;
        last = compute_at(b, L, &piece, &share, tax, NULL);
        if (scatter) z_scatter(b, L, in, z, last);
        if (gather) {
            b->zp[0] = b->zp[1];
            b->zp[1] = last;
        }
    }
    return last;
}

static int z_layers(builder *b, const lower_ctx *L, st_ins *in, const comm_g *cm, int scatter) {
    return z_layers_re(b, L, in, NULL, cm, 1, scatter);
}

/* the route of a message from stage `from` to its neighbour `to` (make_routes: r_fwd leads to the
 * next stage, (d + 1) % pp, r_bwd to the previous): activations forward and gradients back, the
 * interleaved schedule's included (its wrap from the last stage to the first is r_fwd); on zbv's
 * way back up the V (chunks pp and on) activations go to the previous stage and gradients to the
 * next; dualpipe's copy B, fed at the last stage, runs the same way */
static int route_of(const lower_ctx *L, int from, int to, int grad) {
    int next = L->p->schedule == ST_SCHED_ZBV || L->dual ? to > from : !grad;
    return next ? L->r_fwd[rank_at(L, from)] : L->r_bwd[rank_at(L, from)];
}

static void forward(builder *b, const lower_ctx *L, int j, int mb) {
    const st_chunk_cost *c = &L->cc[j];
    int d = chunk_stage(L, j), recv = -1;
    /* (zbv's turn, chunk pp - 1 to pp, stays on its stage: no message) */
    /* (stage_tp, every rank: a lane without a pair in the stage before receives nothing, rank_pair) */
    if (has_prev(L, j) && chunk_stage(L, j - 1) != d && rank_at(L, chunk_stage(L, j - 1)) >= 0) {
        int from = chunk_stage(L, j - 1);
        st_ins r = blank(ST_INS_RECV, ST_STREAM_COMPUTE, j, mb, "recv act"); /* blocking, as Megatron's */
        r.peer = rank_at(L, from);
        r.tag = tag_of(j, mb, L->m, 0);
        p2p_fill(L, &r, j, route_of(L, from, d, 0));
        recv = emit(b, &r);
    }
    st_ins f = blank(ST_INS_COMPUTE, ST_STREAM_COMPUTE, j, mb, "fwd");
    f.phase = ST_PHASE_FWD;
    f.dur_s = c->fwd_s;
    /* cp's K/V buffers, or on the last chunk the eager loss's logits, live while it runs (memory.c) */
    double fwd_work = c->tail_work_bytes > c->work_bytes ? c->tail_work_bytes : c->work_bytes;
    const st_offload_copies *og = L->og ? &L->og[j] : NULL;
    double act_keep = act_kept(c, og);
    f.alloc_bytes = act_keep + fwd_work;
    f.free_bytes = fwd_work;
    f.dep[0] = recv;
    name_ops(L, &f, j, ST_PHASE_FWD);
    comm_g cm = comm_of(c->comm_fwd_g, L->cc0[j].comm_fwd_g);
    int copy = -1;
    if (og && og->fwd_s > 0) {
        /* the stage's first forward waits for its first block's weights, which nothing hides */
        double first = mb == 0 && j < L->p->pp ? og->first_s : 0;
        if (first > 0) f.dep[1] = og_copy(b, j, mb, "weights to device (first block)", first, 0, 0);
        copy = og_copy(b, j, mb, "offload copies (fwd)", og->fwd_s - first, og->fwd_bytes, 0);
    }
    int fi = L->z ? z_layers(b, L, &f, &cm, 0) : compute(b, L, &f, &cm);
    if (copy >= 0) fi = og_wait(b, &f, fi, copy, og->act_window_bytes);
    if (has_next(L, j) && chunk_stage(L, j + 1) != d && rank_at(L, chunk_stage(L, j + 1)) >= 0) {
        int to = chunk_stage(L, j + 1);
        st_ins s = blank(ST_INS_SEND, ST_STREAM_P2P, j, mb, "send act");
        s.peer = rank_at(L, to);
        s.tag = tag_of(j + 1, mb, L->m, 0);
        p2p_fill(L, &s, j, route_of(L, d, to, 0));
        s.dep[0] = fi;
        send_out(b, &s);
    }
}

/* An instruction that produces weight gradients. In the last micro-batch with overlapped
 * data-parallel reduction, it runs in pieces, each a share of its operators, and each piece hands
 * its share of the chunk's buckets to the dp stream, which reduces them while the rest of the
 * backward computes. */
static int grads(builder *b, const lower_ctx *L, st_ins *in, const st_chunk_cost *c, const comm_g *cm) {
    if (!L->dp_overlap || in->mb != L->chunk_mbs - 1 || L->stage_params <= 0) return compute(b, L, in, cm);
    double share = c->params / L->stage_params;
    int k = (int)(L->dp_buckets * share + 0.5);
    if (k < 1) k = 1;
    if (k > 8) k = 8; /* enough pieces to show the overlap */
    double whole = in->dur_s, free_bytes = in->free_bytes, bucket_s = L->dp_reduce_s * share / k;
    st__span all = ops_of(in);
    double ops_s = 0, done_s = 0; /* the operators' time, and of those in the pieces so far */
    for (int32_t e = all.op; e < all.op + all.n; e++) ops_s += L->ops[e].dur_s;
    int32_t next = all.op;
    int last = -1;
    for (int i = 0; i < k; i++) {
        st_ins piece = *in;
        /* from the second piece on, a bucket reduces beside it and holds NCCL's SMs */
        double tax = i > 0 ? st_cost_overlap_tax(L->c, bucket_s) : 0;
        piece.dur_s = whole / k + tax;
        piece.alloc_bytes = i == 0 ? in->alloc_bytes : 0;
        piece.free_bytes = i == k - 1 ? free_bytes : 0;
        /* its operators: up to where they reach (i + 1) / k of the time (the last: the rest) */
        piece.op = next;
        while (next < all.op + all.n && (i == k - 1 || done_s + L->ops[next].dur_s <= ops_s * (i + 1) / k))
            done_s += L->ops[next++].dur_s;
        piece.nops = next - piece.op;
        if (i > 0) piece.dep[0] = piece.dep[1] = -1; /* the stream orders the pieces */
        /* the bucket's gradients are ready when the piece's kernels end, not its collectives
         * (fused, the chunk's collectives all follow the last piece) */
        int ci = -1;
        if (!L->per_op && i < k - 1)
            last = ci = emit(b, &piece);
        else
            last = compute_at(b, L, &piece, cm, tax, &ci);
        st_ins r = blank(ST_INS_COLL, ST_STREAM_DP, in->chunk, in->mb, "dp reduce bucket");
        r.coll = L->p->zero == 0 ? ST_COLL_ALLREDUCE : ST_COLL_REDUCESCATTER;
        r.group = L->dp_group;
        r.dur_s = bucket_s;
        r.latency_s = L->dp_reduce_lat * share / k;
        r.bytes = L->stage_params * L->grad_bytes * share / k;
        r.route = L->r_dp;
        r.dep[0] = ci;
        b->last_dp = emit(b, &r);
    }
    return last;
}

/* split: 0 whole backward, 1 input gradient only, 2 weight gradient only */
static int backward(builder *b, const lower_ctx *L, int j, int mb, int split) {
    const st_chunk_cost *c = &L->cc[j], *c0 = &L->cc0[j];
    int d = chunk_stage(L, j), dep = -1;
    const st_offload_copies *og = L->og ? &L->og[j] : NULL;
    double act_keep = act_kept(c, og);
    /* the window of the activations' host share that the backward's copies bring back: the input half
     * frees it (the weight half copies and needs none of the host share, as memory.c counts it), so a
     * weight half held back keeps only what stayed on the GPU */
    double window = og && og->bwd_s > 0 ? og->act_window_bytes : 0;
    int rec = L->p->recompute != ST_REC_NONE && c->recompute_s > 0;
    /* split in halves: the input half keeps what the weight half reads, the linear layers' output gradients
     * (torch's stage_backward_input keeps them in param_group["grads"] for stage_backward_weight) and, under
     * full recompute, the inputs its recompute restored (with the weights' autograd nodes); the recompute's
     * own block has its inputs in its working set already (cost/memory.c counts the same) */
    double wgrad = split ? c->wgrad_bytes : 0, wtop = split ? c->wgrad_top_bytes : 0;
    if (split == 2) {
        st_ins w = blank(ST_INS_COMPUTE, ST_STREAM_COMPUTE, j, mb, "bwd weight");
        w.phase = ST_PHASE_BWD_WEIGHT;
        w.dur_s = c->bwd_s / 2;
        w.free_bytes = act_keep - window + wgrad + (mb == 0 && j == L->chunks - 1 ? L->bwd_extra : 0);
        name_ops(L, &w, j, ST_PHASE_BWD_WEIGHT);
        /* ZeRO-3: weight gradients need no weights, and are scattered layer by layer */
        return L->z ? z_layers_re(b, L, &w, NULL, &no_comm, 0, 1) : grads(b, L, &w, c, &no_comm);
    }
    if (has_next(L, j) && chunk_stage(L, j + 1) != d && rank_at(L, chunk_stage(L, j + 1)) >= 0) {
        int from = chunk_stage(L, j + 1);
        st_ins r = blank(ST_INS_RECV, ST_STREAM_COMPUTE, j, mb, "recv grad");
        r.peer = rank_at(L, from);
        r.tag = tag_of(j, mb, L->m, 1);
        p2p_fill(L, &r, j, route_of(L, from, d, 1));
        dep = emit(b, &r);
    }
    int copy = -1; /* the weights' and activations' host shares in (ZB's weight-gradient half needs none) */
    if (og && og->bwd_s > 0)
        copy = og_copy(b, j, mb, "offload copies (bwd)", og->bwd_s, og->bwd_bytes, og->act_window_bytes);
    /* FSDP2 in one pass (memory.c): the state its backward adds, held to the backward's end */
    double extra = mb == 0 && j == L->chunks - 1 ? L->bwd_extra : 0;
    st_ins rc = blank(ST_INS_COMPUTE, ST_STREAM_COMPUTE, j, mb, "recompute");
    rc.phase = ST_PHASE_RECOMPUTE;
    rc.dur_s = c->recompute_s;
    /* freed when the backward ends (an input half's linear inputs and output gradients with its weight half) */
    rc.alloc_bytes = c->working_bytes + c->work_bytes + extra + wgrad - wtop;
    rc.dep[0] = dep;
    if (rec) name_ops(L, &rc, j, ST_PHASE_RECOMPUTE);
    comm_g rcm = comm_of(c->comm_recompute_g, c0->comm_recompute_g);
    if (rec && !L->z) dep = compute(b, L, &rc, &rcm);
    st_ins g = blank(ST_INS_COMPUTE, ST_STREAM_COMPUTE, j, mb, split ? "bwd input" : "bwd");
    g.phase = split ? ST_PHASE_BWD_INPUT : ST_PHASE_BWD;
    g.dur_s = split ? c->bwd_s / 2 : c->bwd_s;
    /* cp's K/V buffers and an input half's kept output gradients (the recompute allocates them where it runs) */
    g.alloc_bytes = rec ? 0 : c->work_bytes + extra + wgrad;
    g.free_bytes = (split ? 0 : act_keep + extra) + (rec ? c->working_bytes - wtop : 0) + c->work_bytes;
    g.dep[0] = dep;
    name_ops(L, &g, j, g.phase);
    comm_g cm = comm_of(c->comm_bwd_g, c0->comm_bwd_g);
    int gi;
    if (L->z) { /* layer by layer, the recompute in step; the chunk's collectives spread over the layers */
        comm_g both = rec ? comm_sum(cm, &rcm) : cm;
        gi = z_layers_re(b, L, &g, rec ? &rc : NULL, &both, 1, !split);
    } else {
        gi = split ? compute(b, L, &g, &cm) : grads(b, L, &g, c, &cm);
    }
    if (copy >= 0) gi = og_wait(b, &g, gi, copy, split ? window : 0);
    if (has_prev(L, j) && chunk_stage(L, j - 1) != d && rank_at(L, chunk_stage(L, j - 1)) >= 0) {
        int to = chunk_stage(L, j - 1);
        st_ins s = blank(ST_INS_SEND, ST_STREAM_P2P, j, mb, "send grad");
        s.peer = rank_at(L, to);
        s.tag = tag_of(j - 1, mb, L->m, 1);
        p2p_fill(L, &s, j, route_of(L, d, to, 1));
        s.dep[0] = gi;
        send_out(b, &s);
    }
    return gi;
}

/* the k-th forward / backward of stage d under the interleaved schedule */
static void virtual_mb(const st_plan *p, int d, int64_t k, int backward, int *chunk, int *mb) {
    int64_t pp = p->pp, vp = p->vp;
    int64_t local = (k / pp) % vp;
    if (backward) local = vp - 1 - local;
    *chunk = (int)(local * pp + d);
    *mb = (int)((k / (pp * vp)) * pp + k % pp);
}

/* One action of a listed order (zbv, dualpipe): a forward (F), an input-gradient half (I), a weight-gradient
 * half (W) or a whole backward (B: I and W back to back, its input gradient sent when both end, as an
 * autograd backward without DualPipe's WeightGradStore gives it). pair: a forward run overlapped with the
 * backward after it (DualPipe's F&B), its output sent when the pair ends. */
enum { ACT_F, ACT_I, ACT_W, ACT_B };
typedef struct sched_op {
    int kind, chunk, mb, pair;
} sched_op;

/* ZB-V's order on stage d (chunks c0 = d and c1 = 2 pp - 1 - d) as torch.distributed.pipelining's
 * ScheduleZBVZeroBubble._calculate_single_rank_operations gives it (after Qi et al. 2401.10241 Sec. 6):
 * warm-up 2 (pp - d) - 1 forwards of c0, d pairs F c1 F c0, pp - d triples F I W of c1; then, while
 * forwards remain, F c0 I W c0 F c1 I W c1; cool-down d pairs I c0 I c1, pp - d pairs I c0 W c0 (W of
 * the oldest c0), then the remaining W of c1 and of c0. The plan holds m >= 2 pp - 1 micro-batches
 * (torch pads to that many and drops the padding's actions; with as many there is none). Writes the
 * 6 m actions to out; returns their number. */
static int64_t zbv_order(int pp, int64_t m, int d, sched_op *out) {
    int c0 = d, c1 = 2 * pp - 1 - d, f0 = 0, f1 = 0, b0 = 0, b1 = 0;
    int64_t n = 0;
#define OP(k, c, i) (out[n++] = (sched_op){(k), (c), (i), 0})
    for (int i = 0; i < 2 * (pp - d) - 1; i++) OP(ACT_F, c0, f0++);
    for (int i = 0; i < d; i++) {
        OP(ACT_F, c1, f1++);
        OP(ACT_F, c0, f0++);
    }
    for (int i = 0; i < pp - d; i++) {
        OP(ACT_F, c1, f1++);
        OP(ACT_I, c1, b1);
        OP(ACT_W, c1, b1++);
    }
    while (f1 < f0 || f0 < m) {
        if (f0 < m) OP(ACT_F, c0, f0++);
        OP(ACT_I, c0, b0);
        OP(ACT_W, c0, b0++);
        OP(ACT_F, c1, f1++);
        OP(ACT_I, c1, b1);
        OP(ACT_W, c1, b1++);
    }
    int w0 = b0, w1 = b1;
    for (int i = 0; i < d; i++) {
        OP(ACT_I, c0, b0++);
        OP(ACT_I, c1, b1++);
    }
    for (int i = 0; i < pp - d; i++) {
        OP(ACT_I, c0, b0++);
        OP(ACT_W, c0, w0++);
    }
    while (w1 < b1) OP(ACT_W, c1, w1++);
    while (w0 < b0) OP(ACT_W, c0, w0++);
#undef OP
    return n;
}

/* DualPipe's order on rank d (deepseek-ai/DualPipe, dualpipe.py, DualPipe.step), m micro-batches, m / 2
 * entering at each end. Phase 0 is the copy whose micro-batches reach the rank first (copy A, chunk d, on
 * the first half of the ranks; copy B, chunk 2 pp - 1 - d, on the second), phase 1 the other; h = min(d,
 * pp - 1 - d). Its eight steps: 2 (pp/2 - h - 1) forwards of phase 0; h + 1 pairs F0 F1; pp/2 - h - 1
 * triples I1 W F1 (zero bubble: the weight half queued, the oldest one run); m/2 - pp + h + 1 pairs
 * F0&B1 F1&B0 (overlapped forward-backward chunks; the middle ranks' first F0, B1 apart, the same order,
 * where dualpipe.py also holds their last step-2 F1's send back to that F0's end: here it goes when made);
 * pp/2 - h - 1 times B1 F1&B0; h + 1 times B1 B0, from the middle one on with the weight halves queued
 * (the B1 of that step too when h is odd); pp/2 - h - 1 times W I0; h + 1 W. Writes the 2 m to 3 m
 * actions to out (and its queue's behind them); returns their number. */
static int64_t dualpipe_order(int pp, int64_t m, int d, sched_op *out) {
    int nh = pp / 2, h = d < pp - 1 - d ? d : pp - 1 - d, second = d >= nh;
    int64_t half = m / 2, n = 0, q0 = 0, q1 = 0; /* q: the queue of weight halves, FIFO (WeightGradStore) */
    int chunk[2] = {second ? 2 * pp - 1 - d : d, second ? d : 2 * pp - 1 - d};
    int f[2] = {0, 0}, bk[2] = {0, 0};
    sched_op *queue = out + 3 * m; /* scratch behind the order's at most 3 m (order_room) */
#define F(ph) (out[n++] = (sched_op){ACT_F, chunk[ph], f[ph]++, 0})
#define BK(ph, zb)                                                                                                     \
    do {                                                                                                               \
        if (zb) queue[q1++] = (sched_op){ACT_W, chunk[ph], bk[ph], 0};                                                \
        out[n++] = (sched_op){(zb) ? ACT_I : ACT_B, chunk[ph], bk[ph]++, 0};                                           \
    } while (0)
#define W() (out[n++] = queue[q0++])
#define FB(ph0, ph1)                                                                                                   \
    do {                                                                                                               \
        F(ph0);                                                                                                        \
        out[n - 1].pair = 1;                                                                                           \
        BK(ph1, 0);                                                                                                    \
    } while (0)
    for (int i = 0; i < 2 * (nh - h - 1); i++) F(0);
    for (int i = 0; i < h + 1; i++) F(0), F(1);
    for (int i = 0; i < nh - h - 1; i++) {
        BK(1, 1);
        W();
        F(1);
    }
    for (int64_t i = 0; i < half - pp + h + 1; i++) {
        FB(0, 1);
        FB(1, 0);
    }
    for (int i = 0; i < nh - h - 1; i++) {
        BK(1, 0);
        FB(1, 0);
    }
    int zb = 0;
    for (int i = 0; i < h + 1; i++) {
        if (i == (h + 1) / 2 && h % 2 == 1) zb = 1;
        BK(1, zb);
        if (i == (h + 1) / 2 && h % 2 == 0) zb = 1;
        BK(0, zb);
    }
    for (int i = 0; i < nh - h - 1; i++) {
        W();
        BK(0, 1);
    }
    for (int i = 0; i < h + 1; i++) W();
#undef F
#undef BK
#undef W
#undef FB
    assert(q0 == q1 && f[0] == half && f[1] == half && bk[0] == half && bk[1] == half);
    return n;
}

/* room for one stage's order: zbv's 6 m actions; dualpipe's at most 3 m and its queue's m */
static int64_t order_room(const lower_ctx *L) { return L->dual ? 4 * L->m : 6 * L->m; }

static int64_t order_of(const lower_ctx *L, int d, sched_op *out) {
    return L->dual ? dualpipe_order(L->p->pp, L->m, d, out) : zbv_order(L->p->pp, L->m, d, out);
}

/* When each message of a listed order's iteration is needed (need_s, by tag_of of the action that makes
 * it): the start of the action that receives it, with every stage running its order list-scheduled, each
 * forward, input and weight gradient taking the chunks' mean (compute and inline collectives), messages
 * none. Means, so that the order is the schedule's own and not the accident of one chunk's cost (the
 * embedding's, the loss's). ops: order_room actions per stage, filled here, n their numbers; done:
 * chunks * m * 2 slots (a forward's and an input gradient's end). */
static void order_need(const lower_ctx *L, sched_op *ops, int64_t *n, int64_t *at, double *free_s, double *done,
                       double *need_s) {
    const st_plan *p = L->p;
    int pp = p->pp, chunks = L->chunks;
    int64_t m = L->m, room = order_room(L);
    double dur[4] = {0, 0, 0, 0};
    for (int j = 0; j < chunks; j++) {
        const st_chunk_cost *c = &L->cc[j];
        dur[ACT_F] += (c->fwd_s + c->comm_fwd_s) / chunks;
        dur[ACT_I] += (c->bwd_s / 2 + c->recompute_s + c->comm_recompute_s + c->comm_bwd_s) / chunks;
        dur[ACT_W] += c->bwd_s / 2 / chunks;
    }
    dur[ACT_B] = dur[ACT_I] + dur[ACT_W];
    for (int r = 0; r < pp; r++) n[r] = order_of(L, r, ops + r * room), at[r] = 0, free_s[r] = 0;
    for (int64_t k = 0; k < (int64_t)chunks * m * 2; k++) done[k] = -1;
    for (int moved = 1; moved;) {
        moved = 0;
        for (int r = 0; r < pp; r++)
            for (; at[r] < n[r]; at[r]++) {
                const sched_op *o = &ops[r * room + at[r]];
                int j = o->chunk, bwd = o->kind != ACT_F;
                /* what it waits for: the previous chunk's forward, the next chunk's input gradient (the
                 * loss chunk's own forward), its own input gradient */
                int64_t w = o->kind == ACT_F ? (has_prev(L, j) ? tag_of(j - 1, o->mb, m, 0) : -1)
                            : o->kind != ACT_W
                                ? (has_next(L, j) ? tag_of(j + 1, o->mb, m, 1) : tag_of(j, o->mb, m, 0))
                                : tag_of(j, o->mb, m, 1);
                if (w >= 0 && done[w] < 0) break;
                /* a pair's forward waits for its backward's input too (dualpipe.py receives both first) */
                const sched_op *o2 = o->pair ? o + 1 : NULL;
                int64_t w2 = !o2                       ? -1
                             : has_next(L, o2->chunk) ? tag_of(o2->chunk + 1, o2->mb, m, 1)
                                                      : tag_of(o2->chunk, o2->mb, m, 0);
                if (w2 >= 0 && done[w2] < 0) break;
                double start = w >= 0 && done[w] > free_s[r] ? done[w] : free_s[r];
                if (w2 >= 0 && done[w2] > start) start = done[w2];
                if ((o->kind == ACT_F && has_prev(L, j)) || (bwd && o->kind != ACT_W && has_next(L, j)))
                    need_s[w] = start;
                free_s[r] = start + dur[o->kind];
                if (o2) { /* the pair: both run, both send at its end */
                    if (has_next(L, o2->chunk)) need_s[w2] = start;
                    free_s[r] += dur[o2->kind];
                    done[tag_of(o2->chunk, o2->mb, m, 1)] = free_s[r];
                    at[r]++;
                }
                if (o->kind != ACT_W) done[tag_of(j, o->mb, m, bwd)] = free_s[r];
                moved = 1;
            }
    }
}

/* A DualPipe F&B pair (forward o, backward o + 1), priced as the estimate prices its stage's time
 * (st_cost_dualpipe_overlap): the ep all-to-alls of both and their two messages hide behind both
 * computes; what hides does not show (its ep all-to-alls shortened to what shows: the overlap itself is
 * not simulated) and taxes the pair's first compute (compute_at), in the fused and the per-operator
 * form alike. */
static void pair_overlap(builder *b, const lower_ctx *L, const sched_op *o) {
    const st_chunk_cost *cf = &L->cc[o->chunk], *cb = &L->cc[o[1].chunk];
    int rec = L->p->recompute != ST_REC_NONE;
    double ep = L->grp[ST_GRP_EP] < 0 ? 0
                                      : cf->comm_fwd_g[ST_GRP_EP] + cb->comm_bwd_g[ST_GRP_EP] +
                                            (rec ? cb->comm_recompute_g[ST_GRP_EP] : 0);
    double hide = ep + cf->p2p_s + cb->p2p_s, work = cf->fwd_s + cb->bwd_s + (rec ? cb->recompute_s : 0);
    double shown = st_cost_dualpipe_overlap(L->c, work, hide, &b->pair_tax_s);
    b->ep_shown = hide > 0 ? shown / hide : 1;
}

/* A listed order (zbv, dualpipe) on stage d. Its sends go to both neighbours on one P2P stream, and a
 * send holds the stream until its receive is reached (src/sim: rendezvous): sent in the order of making
 * them, zbv's first stage's activation of micro-batch 2 pp - 2 would block the gradient of micro-batch 0,
 * which stage 1 waits for first (torch and dualpipe.py post each as a separate isend). So the sends go out
 * in the order their receivers need them (order_need), each once made: the one at the stream's head is
 * the one needed first. A pair (DualPipe's F&B) runs as its forward then its backward, one after the other
 * on the compute stream: the estimate's F&B, a forward plus a backward (the overlap hides communication,
 * not compute: cost/estimate.c); its backward's receive comes after the forward (Megatron-style blocking
 * receives), and both its sends when the backward ends. */
static int lower_ordered(builder *b, const lower_ctx *L, int d) {
    const st_plan *p = L->p;
    int pp = p->pp, chunks = L->chunks, last = -1, nout = 0, next = 0;
    int64_t m = L->m, room = order_room(L), slots = (int64_t)chunks * m * 2;
    sched_op *ops = malloc(sizeof *ops * (size_t)(pp * room));
    int64_t *at = malloc(sizeof *at * (size_t)pp), *n = malloc(sizeof *n * (size_t)pp);
    double *free_s = malloc(sizeof *free_s * (size_t)pp), *done = malloc(sizeof *done * (size_t)slots);
    double *need_s = malloc(sizeof *need_s * (size_t)slots);
    int *out = malloc(sizeof *out * (size_t)slots), *held_at = malloc(sizeof *held_at * (size_t)slots);
    b->held = malloc(sizeof *b->held * (size_t)(4 * m));
    b->nheld = 0;
    if (!ops || !at || !n || !free_s || !done || !need_s || !out || !held_at || !b->held) {
        b->failed = 1;
        goto out;
    }
    order_need(L, ops, n, at, free_s, done, need_s);
    /* this stage's messages, by the action that makes them (tag_of of its chunk), in the order they
     * are needed */
    const sched_op *mine = ops + (int64_t)d * room;
    for (int64_t i = 0; i < n[d]; i++) {
        int j = mine[i].chunk, k = mine[i].kind;
        if ((k == ACT_F && has_next(L, j) && chunk_stage(L, j + 1) != d) ||
            ((k == ACT_I || k == ACT_B) && has_prev(L, j) && chunk_stage(L, j - 1) != d))
            out[nout++] = tag_of(j, mine[i].mb, m, k != ACT_F);
    }
    for (int i = 1; i < nout; i++) /* insertion sort by need, stable: few are out of place */
        for (int k = i; k > 0 && need_s[out[k]] < need_s[out[k - 1]]; k--) {
            int t = out[k];
            out[k] = out[k - 1], out[k - 1] = t;
        }
    for (int64_t k = 0; k < slots; k++) held_at[k] = -1;
    int wait_pair = 0; /* the sends made since a pair's forward, to go when its backward ends */
    for (int64_t i = 0; i < n[d]; i++) {
        const sched_op *o = &mine[i];
        int before = b->nheld;
        if (o->pair) pair_overlap(b, L, o);
        if (o->kind == ACT_F)
            forward(b, L, o->chunk, o->mb);
        else
            last = backward(b, L, o->chunk, o->mb, o->kind == ACT_B ? 1 : o->kind);
        if (o->kind == ACT_B) last = backward(b, L, o->chunk, o->mb, 2);
        if (o->pair) { /* its sends wait for the pair's backward */
            wait_pair = before;
            continue;
        }
        if (o->kind == ACT_B) /* its sends (and its pair's) when both halves end */
            for (int h = i > 0 && mine[i - 1].pair ? wait_pair : before; h < b->nheld; h++) b->held[h].dep[0] = last;
        b->ep_shown = 1;
        for (int h = 0; h < b->nheld; h++) /* (a send's tag is odd for a gradient) */
            held_at[tag_of(b->held[h].chunk, b->held[h].mb, m, b->held[h].tag & 1)] = h;
        while (next < nout && held_at[out[next]] >= 0) emit(b, &b->held[held_at[out[next++]]]);
    }
    assert(b->failed || next == nout); /* every send made and sent */
out:
    free(b->held);
    b->held = NULL;
    free(ops);
    free(at);
    free(n);
    free(free_s);
    free(done);
    free(need_s);
    free(out);
    free(held_at);
    return last;
}

static int lower_stage(builder *b, const lower_ctx *L, int d) {
    const st_plan *p = L->p;
    int64_t m = L->m;
    int last = -1;
    if (p->schedule == ST_SCHED_ZBV || L->dual) return lower_ordered(b, L, d);
    if (p->schedule == ST_SCHED_GPIPE) {
        for (int64_t i = 0; i < m; i++) forward(b, L, d, (int)i);
        for (int64_t i = 0; i < m; i++) last = backward(b, L, d, (int)i, 0);
        return last;
    }
    if (p->vp > 1) {
        int64_t total = m * p->vp;
        int64_t warm = (int64_t)(p->pp - d - 1) * 2 + (int64_t)(p->vp - 1) * p->pp;
        if (warm > total) warm = total;
        int c, mb;
        for (int64_t k = 0; k < warm; k++) {
            virtual_mb(p, d, k, 0, &c, &mb);
            forward(b, L, c, mb);
        }
        for (int64_t i = 0; i < total - warm; i++) {
            virtual_mb(p, d, warm + i, 0, &c, &mb);
            forward(b, L, c, mb);
            virtual_mb(p, d, i, 1, &c, &mb);
            last = backward(b, L, c, mb, 0);
        }
        for (int64_t k = total - warm; k < total; k++) {
            virtual_mb(p, d, k, 1, &c, &mb);
            last = backward(b, L, c, mb, 0);
        }
        return last;
    }
    int64_t warm = p->pp - d - 1 < m ? p->pp - d - 1 : m;
    for (int64_t i = 0; i < warm; i++) forward(b, L, d, (int)i);
    if (p->schedule == ST_SCHED_ZB) { /* ZB-H1: stage d holds d weight halves back (the opening comment) */
        for (int64_t i = 0; i < m; i++) {
            if (warm + i < m) forward(b, L, d, (int)(warm + i));
            last = backward(b, L, d, (int)i, 1);
            if (i >= d) last = backward(b, L, d, (int)(i - d), 2);
        }
        for (int64_t i = m - d > 0 ? m - d : 0; i < m; i++) last = backward(b, L, d, (int)i, 2);
        return last;
    }
    for (int64_t i = 0; i < m - warm; i++) {
        forward(b, L, d, (int)(warm + i));
        last = backward(b, L, d, (int)i, 0);
    }
    for (int64_t i = m - warm; i < m; i++) last = backward(b, L, d, (int)i, 0);
    return last;
}

static int rename_cmp(const void *x, const void *y) {
    const st_rename *a = x, *b = y;
    if (a->what != b->what) return a->what < b->what ? -1 : 1;
    return (a->from > b->from) - (a->from < b->from);
}

/* the names a lane's program gives what its stage's lane 0 calls `from` */
typedef struct lane_names {
    int grp[8], ngrp;      /* its groups, in a fixed order (-1: none) */
    int peer[2], route[8]; /* its peers (the lanes of the stages before and after it), its routes */
    int nroute;
} lane_names;

static void names_of(const lower_ctx *L, int d, int emb_group, const int *r_g, lane_names *n) {
    const st_plan *p = L->p;
    int pp = p->pp, k = 0;
    int g[] = {L->dp_group, L->grp[ST_GRP_TP], L->grp[ST_GRP_CP], L->grp[ST_GRP_EP], L->edp_group, emb_group};
    n->ngrp = (int)(sizeof g / sizeof g[0]);
    for (int i = 0; i < n->ngrp; i++) n->grp[i] = g[i];
    n->peer[0] = rank_at(L, (d + pp - 1) % pp);
    n->peer[1] = rank_at(L, (d + 1) % pp);
    for (int i = 0; i < n->ngrp; i++) n->route[k++] = g[i] >= 0 ? r_g[g[i]] : -1;
    n->nroute = k;
}

/* Lane `pg` of a stage runs lane 0's (`first`'s) instructions: the renames from lane 0's names to
 * its own (groups, peers, the routes of groups and of sends and receives; each distinct, and the
 * same name in both left out). Returns 0 or ST_ENOMEM. */
static int share_lane(st_program *pg, const st_program *first, const lane_names *a, const lane_names *b,
                      const int *r_fwd, const int *r_bwd) {
    st_rename v[32];
    int n = 0;
    for (int i = 0; i < a->ngrp; i++)
        if (a->grp[i] >= 0) v[n++] = (st_rename){ST_RENAME_GROUP, a->grp[i], b->grp[i]};
    for (int i = 0; i < a->nroute; i++)
        if (a->route[i] >= 0) v[n++] = (st_rename){ST_RENAME_ROUTE, a->route[i], b->route[i]};
    int self0 = first->rank, self = pg->rank;
    int x0[3] = {self0, a->peer[0], a->peer[1]}, x[3] = {self, b->peer[0], b->peer[1]};
    for (int i = 0; i < 3; i++) { /* a send names its own route forward, a receive its sender's */
        if (r_fwd[x0[i]] >= 0) v[n++] = (st_rename){ST_RENAME_ROUTE, r_fwd[x0[i]], r_fwd[x[i]]};
        if (r_bwd[x0[i]] >= 0) v[n++] = (st_rename){ST_RENAME_ROUTE, r_bwd[x0[i]], r_bwd[x[i]]};
    }
    for (int i = 0; i < 2; i++) v[n++] = (st_rename){ST_RENAME_PEER, a->peer[i], b->peer[i]};
    qsort(v, (size_t)n, sizeof *v, rename_cmp);
    int m = 0;
    for (int i = 0; i < n; i++) {
        if (v[i].from == v[i].to) continue;
        if (m > 0 && v[m - 1].what == v[i].what && v[m - 1].from == v[i].from) continue; /* the same twice */
        v[m++] = v[i];
    }
    pg->like = first;
    pg->ins = first->ins;
    pg->n = first->n;
    pg->cap = -first->n;
    pg->nrenames = m;
    if (m == 0) return 0;
    if (!(pg->renames = malloc(sizeof *pg->renames * (size_t)m))) return ST_ENOMEM;
    memcpy(pg->renames, v, sizeof *v * (size_t)m);
    return 0;
}


/* ------------------------------------------------------------ the lowering, step by step */

/* The groups of a lowering, in this order: one dp group per (stage, tp rank); with tp > 1 one tp
 * group per (stage, cp, dp rank); with cp > 1 one cp group per (stage, tp, dp rank); with ep > 1
 * one ep group per (stage, tp rank, ep consecutive ranks of the dp x cp group); with tied
 * embeddings and a pipeline one embedding group per lane (tp, cp, dp rank): its first and last
 * stage (dualpipe: one pair group per lane and mirror pair d, pp - 1 - d, d < pp / 2, for the copies'
 * all-reduce, k = lane + lanes d); with ZeRO-3, experts and ep > 1, one expert-data-parallel group per
 * (stage, tp rank, position in the ep group). A representative's groups list it alone (one per stage),
 * a pair group its two stages. */
typedef struct group_layout {
    int ndp;                                    /* dp groups, from 0 */
    int ngk[ST_GRP_COUNT], gbase[ST_GRP_COUNT]; /* tp, cp and ep groups: how many, the first */
    int nemb, embbase;                          /* the embedding's end-stage pairs, or dualpipe's mirror pairs */
    int nedp, edpbase;                          /* expert-data-parallel groups */
    int ngroups;
    int dpcp, neg; /* dp x cp; ep groups per (stage, tp rank) */
    /* each stage's first group of a kind, counted from the kind's first (ST_GRP_DP: the dp groups; ST_GRP_PP:
     * the expert-data-parallel ones): stage d's, in the same order; with stage_tp stages differ in count */
    int s0[ST_GRP_COUNT][ST_MAX_STAGES + 1];
} group_layout;

static void layout_groups(st_cost_ctx *ctx, const st_plan *p, int full, group_layout *G) {
    int pp = p->pp, chunks = pp * p->vp, experts = 0;
    memset(G, 0, sizeof *G);
    G->dpcp = p->dp * p->cp;
    G->neg = G->dpcp / p->ep;
    if (p->zero == 3 && p->ep > 1) {
        st_chunk_cost c1;
        for (int j = 0; j < chunks && !experts; j++) {
            st_cost_chunk(ctx, p, j, &c1);
            experts = c1.expert_params > 0;
        }
    }
    for (int d = 0; d < pp; d++) { /* every rank: per (stage, its own tp's ranks ...); else one per stage */
        int t = full ? st_plan_stage_tp(p, d) : 1, any = full ? st_plan_stage_tp(p, d) > 1 : p->tp > 1;
        int n[ST_GRP_COUNT] = {[ST_GRP_DP] = t, [ST_GRP_TP] = any ? (full ? G->dpcp : 1) : 0,
                               [ST_GRP_CP] = p->cp > 1 ? (full ? t * p->dp : 1) : 0,
                               [ST_GRP_EP] = p->ep > 1 ? (full ? t * G->neg : 1) : 0,
                               [ST_GRP_PP] = experts ? (full ? t * p->ep : 1) : 0};
        for (int k = 0; k < ST_GRP_COUNT; k++) G->s0[k][d + 1] = G->s0[k][d] + n[k];
    }
    G->ndp = G->s0[ST_GRP_DP][pp];
    for (int k = ST_GRP_TP; k <= ST_GRP_EP; k++) G->ngk[k] = G->s0[k][pp];
    G->nedp = G->s0[ST_GRP_PP][pp];
    /* the embedding's pairs: every lane of the smaller end stage (rank_pair) */
    int ew = stage_width(p, 0) < stage_width(p, pp - 1) ? stage_width(p, 0) : stage_width(p, pp - 1);
    G->nemb = st_cost_embedding_allreduce(ctx, p, NULL) > 0 ? (full ? ew : 1) : 0;
    if (p->schedule == ST_SCHED_DUALPIPE) G->nemb = (full ? ew : 1) * (pp / 2);
    G->gbase[ST_GRP_TP] = G->ndp;
    G->gbase[ST_GRP_CP] = G->gbase[ST_GRP_TP] + G->ngk[ST_GRP_TP];
    G->gbase[ST_GRP_EP] = G->gbase[ST_GRP_CP] + G->ngk[ST_GRP_CP];
    G->embbase = G->gbase[ST_GRP_EP] + G->ngk[ST_GRP_EP];
    G->edpbase = G->embbase + G->nemb;
    G->ngroups = G->edpbase + G->nedp;
}

static int group_alloc(st_group_def *g, st_group_kind kind, int n) {
    g->kind = kind;
    g->n = n;
    g->ranks = malloc(sizeof(int) * (size_t)n);
    return g->ranks ? 0 : ST_ENOMEM;
}

/* Group k of stage d in the slot `slot` of G->s0 (ST_GRP_PP: the expert-data-parallel groups), of kind `kind`
 * and n ranks (by stage: one, listing d); NULL when out of memory */
static st_group_def *stage_group(st_lowered *out, const group_layout *G, int slot, st_group_kind kind, int d, int k,
                                 int n, int full) {
    int base = slot == ST_GRP_DP ? 0 : slot == ST_GRP_PP ? G->edpbase : G->gbase[slot];
    st_group_def *g = &out->groups[base + G->s0[slot][d] + k];
    if (group_alloc(g, kind, full ? n : 1)) return NULL;
    if (!full) g->ranks[0] = d;
    return g;
}

/* each group's members, in rank order (Megatron's tp-cp-dp-pp; stage_tp: each stage at its own tp). Every
 * rank: stage d's groups of a kind from G->s0[kind][d] on, its ranks from st_plan_stage_rank0 on; by stage one
 * group of each kind per stage, listing it. */
static int fill_groups(st_lowered *out, const st_plan *p, int full, const group_layout *G) {
    int pp = p->pp, dpcp = G->dpcp, neg = G->neg, ep = p->ep;
    for (int d = 0; d < pp; d++) {
        int tp = st_plan_stage_tp(p, d), base = (int)st_plan_stage_rank0(p, d);
        st_group_def *g;
        for (int t = 0; t < G->s0[ST_GRP_DP][d + 1] - G->s0[ST_GRP_DP][d]; t++) {
            if (!(g = stage_group(out, G, ST_GRP_DP, ST_GRP_DP, d, t, dpcp, full))) return ST_ENOMEM;
            for (int k = 0; full && k < g->n; k++) g->ranks[k] = base + t + tp * k;
        }
        for (int l = 0; l < G->s0[ST_GRP_TP][d + 1] - G->s0[ST_GRP_TP][d]; l++) { /* l: the lane (cp, dp) */
            if (!(g = stage_group(out, G, ST_GRP_TP, ST_GRP_TP, d, l, tp, full))) return ST_ENOMEM;
            for (int i = 0; full && i < g->n; i++) g->ranks[i] = base + i + tp * l;
        }
        for (int k = 0; k < G->s0[ST_GRP_CP][d + 1] - G->s0[ST_GRP_CP][d]; k++) { /* k = t + tp * dp rank */
            if (!(g = stage_group(out, G, ST_GRP_CP, ST_GRP_CP, d, k, p->cp, full))) return ST_ENOMEM;
            for (int i = 0; full && i < g->n; i++) g->ranks[i] = base + k % tp + tp * (i + p->cp * (k / tp));
        }
        /* EP, k = t + tp * e: ep consecutive ranks of the dp x cp group */
        for (int k = 0; k < G->s0[ST_GRP_EP][d + 1] - G->s0[ST_GRP_EP][d]; k++) {
            if (!(g = stage_group(out, G, ST_GRP_EP, ST_GRP_EP, d, k, ep, full))) return ST_ENOMEM;
            for (int i = 0; full && i < g->n; i++) g->ranks[i] = base + k % tp + tp * ((k / tp) * ep + i);
        }
        /* expert data parallel, k = t + tp * (position in the ep group) */
        for (int k = 0; k < G->s0[ST_GRP_PP][d + 1] - G->s0[ST_GRP_PP][d]; k++) {
            if (!(g = stage_group(out, G, ST_GRP_PP, ST_GRP_DP, d, k, neg, full))) return ST_ENOMEM;
            for (int e = 0; full && e < g->n; e++) g->ranks[e] = base + k % tp + tp * (e * ep + k / tp);
        }
    }
    for (int k = 0; k < G->nemb; k++) { /* k = lane + lanes d: stages d and pp - 1 - d (the embedding's: d = 0) */
        st_group_def *g = &out->groups[G->embbase + k];
        int lanes = G->nemb / (p->schedule == ST_SCHED_DUALPIPE ? pp / 2 : 1), lane = k % lanes, d = k / lanes;
        int e = pp - 1 - d, s = stage_width(p, e) < stage_width(p, d) ? e : d; /* the smaller end's lane */
        int ts = st_plan_stage_tp(p, s), t = lane % ts, c = (lane / ts) % p->cp, q = lane / (ts * p->cp);
        if (group_alloc(g, ST_GRP_PP, 2)) return ST_ENOMEM;
        g->ranks[0] = full ? rank_pair(p, s, t, c, q, d) : d;
        g->ranks[1] = full ? rank_pair(p, s, t, c, q, e) : e;
    }
    return 0;
}

/* Node groups (issue 19): the context that prices stage d of replica `rep` on its own GPUs (its tp x cp
 * ranks; dpg: the stage's whole data-parallel group, for its collectives); ctx itself on a uniform
 * cluster; NULL when out of memory. */
static st_cost_ctx *stage_view(st_cost_ctx *ctx, const st_plan *p, int rep, int d, int dpg) {
    int64_t blk = (int64_t)st_plan_stage_tp(p, d) * p->cp, first = st_plan_stage_rank0(p, d);
    if (dpg) return st_cost_view(ctx, first, blk * p->dp);
    return st_cost_view(ctx, first + blk * rep, blk);
}

/* The plan stage d runs (stage_tp: its own tp) in *q when the plan has stage_tp, else p itself. */
static const st_plan *stage_plan(const st_plan *p, int d, st_plan *q) {
    if (!p->nstage_tp) return p;
    st_plan_stage_plan(p, d, q);
    return q;
}

/* chunk j's costs (price_chunks), p the plan of its stage (pl's with its own tp under stage_tp) */
static int price_chunk(st_cost_ctx *ctx_all, st_cost_ctx *ctx0_all, const st_plan *pl, const st_plan *p, int rep, int j,
                       double wbytes, st_chunk_cost *cc, st_chunk_cost *cc0, st_offload_copies *og, zchunk *z) {
    st_cost_ctx *ctx = stage_view(ctx_all, pl, rep, st_plan_chunk_stage(pl, j), 0);
    st_cost_ctx *ctx0 = stage_view(ctx0_all, pl, rep, st_plan_chunk_stage(pl, j), 0);
    st_cost_ctx *nctx = stage_view(ctx_all, pl, rep, st_plan_chunk_stage(pl, j), 1);
    st_cost_ctx *nctx0 = stage_view(ctx0_all, pl, rep, st_plan_chunk_stage(pl, j), 1);
    if (!ctx || !ctx0 || !nctx || !nctx0) return ST_ENOMEM;
    st_cost_chunk(ctx, p, j, &cc[j]);
    st_cost_chunk(ctx0, p, j, &cc0[j]);
    if (st_cost_cluster(ctx_all)->ngroups > 0 || pl->nstage_tp) { /* its messages on the links to its neighbours */
        cc[j].p2p_s = st_cost_stage_p2p(ctx_all, pl, rep, st_plan_chunk_stage(pl, j));
        cc0[j].p2p_s = st_cost_stage_p2p(ctx0_all, pl, rep, st_plan_chunk_stage(pl, j));
    }
    if (og) st_cost_offload_granular_chunk(ctx, p, j, &og[j]);
    if (!z) return 0;
    double n, g0, s0, e;
    st_cost_zero3_chunk(nctx, p, j, &n, &z[j].gather_s, &z[j].scatter_s, &e);
    st_cost_zero3_chunk(nctx0, p, j, &n, &g0, &s0, &e);
    z[j].layers = (int)n;
    z[j].gather_lat = st__latency_of(z[j].gather_s, g0);
    z[j].scatter_lat = st__latency_of(z[j].scatter_s, s0);
    double dense = cc[j].params - (p->ep > 1 ? cc[j].expert_params : 0); /* st_cost_zero3_chunk's */
    z[j].gather_bytes = dense / n * wbytes;
    z[j].scatter_bytes = dense / n * p->grad_bytes;
    if (p->ep > 1) { /* ep = 1: the expert-data-parallel group is the dp group, priced as dense */
        double eg0, es0;
        st_cost_zero3_chunk_experts(nctx, p, j, &z[j].egather_s, &z[j].escatter_s);
        st_cost_zero3_chunk_experts(nctx0, p, j, &eg0, &es0);
        z[j].egather_lat = st__latency_of(z[j].egather_s, eg0);
        z[j].escatter_lat = st__latency_of(z[j].escatter_s, es0);
        z[j].egather_bytes = cc[j].expert_params / n * wbytes;
        z[j].escatter_bytes = cc[j].expert_params / n * p->grad_bytes;
    }
    z[j].copy_s = st_cost_offload_chunk(ctx, p, j, &z[j].copy_bytes);
    return 0;
}

/* each chunk's costs (cc; cc0 without latencies), with granular offload its copies (og), and with
 * ZeRO-3 its per-layer traffic, on the GPUs of its stage in replica rep; 0 or ST_ENOMEM */
static int price_chunks(st_cost_ctx *ctx_all, st_cost_ctx *ctx0_all, const st_plan *pl, int rep, st_chunk_cost *cc,
                        st_chunk_cost *cc0, st_offload_copies *og, zchunk *z) {
    double wbytes = st_cost_weight_bytes(pl->dtype);
    st_plan *q = pl->nstage_tp ? malloc(sizeof *q) : NULL; /* each chunk priced with its stage's tp */
    if (pl->nstage_tp && !q) return ST_ENOMEM;
    int rc = 0;
    for (int j = 0; j < pl->pp * pl->vp && !rc; j++)
        rc = price_chunk(ctx_all, ctx0_all, pl, stage_plan(pl, st_plan_chunk_stage(pl, j), q), rep, j, wbytes, cc, cc0,
                         og, z);
    free(q);
    return rc;
}

/* Every route: each program's sends forward and backward (r_fwd, r_bwd: its replicas', or its own,
 * to the same lanes of the next and previous stage) and each group's (r_g), on the links that
 * cost/ prices them on. 0 or ST_ENOMEM. */
static int make_routes(st__lnet *B, const st_lowered *out, const st_cluster *c, const st_plan *p, int full,
                       const group_layout *G, int *r_fwd, int *r_bwd, int *r_g) {
    int pp = p->pp, width = p->tp * p->cp * p->dp;
    int *a = malloc(sizeof(int) * 2 * (size_t)width), *z = a + width;
    st_plan *q = p->nstage_tp ? malloc(sizeof *q) : NULL; /* stage_tp: a stage's own plan */
    if (!a || (p->nstage_tp && !q)) {
        free(a);
        free(q);
        return ST_ENOMEM;
    }
    st_group gd, gp;
    st_cost_group(c, p, ST_GRP_DP, &gd);
    st_cost_group(c, p, ST_GRP_PP, &gp);
    /* a program's replicas (or itself): ranks gpu .. gpu + replicas - 1; with stage_tp (by stage only) a stage
     * of w ranks and one of w' exchange over min(w, w') pairs spread over both (cost/estimate.c, exchange_time) */
    for (int r = 0; r < out->nranks; r++) {
        int d = full ? rank_stage(p, r) : r, wd = stage_width(p, d), tp = st_plan_stage_tp(p, d);
        int lane = r - (int)st_plan_stage_rank0(p, d); /* (every rank) */
        r_fwd[r] = r_bwd[r] = -1;
        if (pp == 1) continue;
        for (int dir = 0; dir < 2; dir++) {
            int e = dir == 0 ? (d + 1) % pp : (d + pp - 1) % pp; /* forward to the next stage, back to the previous */
            int we = stage_width(p, e), n = full ? 1 : wd < we ? wd : we;
            /* every rank: to its pair there (rank_pair; stage_tp: none for some lanes of the larger stage) */
            int to = full ? rank_pair(p, d, lane % tp, (lane / tp) % p->cp, lane / (tp * p->cp), e) : 0;
            if (to < 0) continue;
            for (int i = 0; i < n; i++) {
                a[i] = (full ? r : (int)st_plan_stage_rank0(p, d)) + i * (wd / n);
                z[i] = full ? to : (int)st_plan_stage_rank0(p, e) + i * (we / n); /* lane i of e */
            }
            int id = st__lnet_p2p(B, a, z, n, gp.nodes > 1, gp.tier);
            if (dir == 0)
                r_fwd[r] = id;
            else
                r_bwd[r] = id;
        }
    }
    /* a group's links: its members' (full: a rank is its GPU), or every rank a representative
     * stands for; inside the NVLink domain or across the NICs as cost/ prices the kind (the
     * embedding's pair across nodes) */
    for (int k = 0; k < G->ngroups; k++) {
        const st_group_def *gd_k = &out->groups[k];
        int n = 0, nic, peers = 2, tier = gp.tier; /* the embedding's pair: the pipeline's ends */
        if (k >= G->embbase && k < G->edpbase) {
            nic = 1;
            /* by stage, every lane of both ends (stage_tp: as many as the smaller end has) */
            int w0 = st_plan_stage_tp(p, 0), w1 = st_plan_stage_tp(p, pp - 1), ew = (w0 < w1 ? w0 : w1) * p->cp * p->dp;
            for (int i = 0; i < 2; i++)
                for (int l = 0; l < (full ? 1 : ew); l++)
                    a[n++] = full ? gd_k->ranks[i] : (int)st_plan_stage_rank0(p, gd_k->ranks[i]) + l;
        } else {
            /* the plan of the group's stage prices it (by stage its ranks name the stage) */
            const st_plan *pk = stage_plan(p, full ? rank_stage(p, gd_k->ranks[0]) : gd_k->ranks[0], q);
            int wk = pk->tp * p->cp * p->dp;
            st_group gk, gdk;
            if (k >= G->edpbase)
                st_cost_group_edp(c, pk, &gk);
            else
                st_cost_group(c, pk, gd_k->kind, &gk);
            if (pk != p) st_cost_group(c, pk, ST_GRP_DP, &gdk);
            else gdk = gd;
            nic = k < G->ndp ? gdk.nodes > 1 : gk.nodes > 1;
            peers = (int)(k < G->ndp ? gdk.n : gk.n);
            tier = k < G->ndp ? gdk.tier : gk.tier;
            if (full)
                for (int i = 0; i < gd_k->n; i++) a[n++] = gd_k->ranks[i];
            else
                for (int i = 0; i < wk; i++) a[n++] = (int)st_plan_stage_rank0(p, gd_k->ranks[0]) + i;
        }
        r_g[k] = st__lnet_coll(B, a, n, nic, peers, tier);
    }
    free(a);
    free(q);
    return B->failed ? ST_ENOMEM : 0;
}

/* Program r's coordinates, groups and routes into L; returns its embedding group (-1: none). */
static int rank_names(lower_ctx *L, const group_layout *G, const int *r_g, int r) {
    const st_plan *p = L->p;
    int full = L->full, d = full ? rank_stage(p, r) : r, lane = full ? r - (int)st_plan_stage_rank0(p, d) : 0;
    int tp = st_plan_stage_tp(p, d);
    L->stage_i = d;
    L->tp_i = lane % tp;
    L->cp_i = (lane / tp) % p->cp;
    L->dp_i = lane / (tp * p->cp);
    int t = L->tp_i, q = L->dp_i, kk = L->cp_i + p->cp * L->dp_i; /* kk: position in the dp x cp group */
    int idx[ST_GRP_COUNT] = {0};                                    /* within the stage's groups of the kind */
    idx[ST_GRP_TP] = lane / tp;
    idx[ST_GRP_CP] = t + tp * q;
    idx[ST_GRP_EP] = t + tp * (kk / p->ep);
    for (int kind = 0; kind < ST_GRP_COUNT; kind++) {
        int has = kind <= ST_GRP_EP && G->s0[kind][d + 1] > G->s0[kind][d]; /* (stage_tp: a stage at tp 1 has none) */
        L->grp[kind] = has ? G->gbase[kind] + G->s0[kind][d] + (full ? idx[kind] : 0) : -1;
        L->r_grp[kind] = L->grp[kind] >= 0 ? r_g[L->grp[kind]] : -1;
    }
    L->edp_group = G->nedp ? G->edpbase + G->s0[ST_GRP_PP][d] + (full ? t + tp * (kk % p->ep) : 0) : -1;
    L->r_edp = L->edp_group >= 0 ? r_g[L->edp_group] : -1;
    L->dp_group = G->s0[ST_GRP_DP][d] + (full ? t : 0);
    L->r_dp = r_g[L->dp_group];
    int dual = p->schedule == ST_SCHED_DUALPIPE, dd = d < p->pp - 1 - d ? d : p->pp - 1 - d, e = p->pp - 1 - dd;
    if (!G->nemb || (!dual && d != 0 && d != p->pp - 1)) return -1;
    /* its pair's index: the lane of the smaller end stage it pairs with (fill_groups; none: -1) */
    int s = stage_width(p, e) < stage_width(p, dd) ? e : dd, at = full ? rank_at(L, s) : 0;
    if (at < 0) return -1;
    int lanes = G->nemb / (dual ? p->pp / 2 : 1);
    return G->embbase + (full ? at - (int)st_plan_stage_rank0(p, s) : 0) + lanes * (dual ? dd : 0);
}

/* What ends an iteration (what the estimate prices after the pipeline) */
typedef struct iteration_end {
    const st_estimate *est;
    double emb_s, emb_lat, emb_bytes; /* the tied embedding's all-reduce, or dualpipe's mirror all-reduce */
    int emb_group, emb_route;         /* this program's (-1: none) */
    double gather_s, gather_lat;      /* zero 1-2: the weight all-gather */
} iteration_end;

/* After the stage's last instruction `last`: the data-parallel reduction (unless it went out in
 * buckets or layer by layer during the backward) and the tied embedding's all-reduce. Returns
 * what the optimizer step waits for. */
static int reduce_grads(builder *b, const lower_ctx *L, const iteration_end *E, int last) {
    const st_plan *p = L->p;
    int before_opt = last;
    if (p->zero == 3) {
        before_opt = b->last_dp; /* the layers' reduce-scatters went out during the backward */
    } else if (!L->dp_overlap) {
        st_ins dpi = blank(ST_INS_COLL, ST_STREAM_DP, -1, -1, "dp reduce");
        dpi.coll = p->zero == 0 ? ST_COLL_ALLREDUCE : ST_COLL_REDUCESCATTER;
        dpi.group = L->dp_group;
        dpi.dep[0] = last;
        dpi.dur_s = L->dp_reduce_s; /* after the whole backward (Megatron-LM's default) */
        dpi.latency_s = L->dp_reduce_lat;
        dpi.bytes = L->stage_params * L->grad_bytes;
        dpi.route = L->r_dp;
        before_opt = emit(b, &dpi);
    } else if (b->last_dp >= 0) {
        before_opt = b->last_dp; /* the buckets went out during the backward */
    }
    if (E->emb_group >= 0) {
        /* the end stages sum the tied embedding's gradient after the data-parallel reduction
         * (Megatron-LM's finalize_model_grads), in a group of their own on their own links; dualpipe's
         * mirror pairs sum their copies' there too (the estimate puts it before the reduction: on the
         * one dp stream the order leaves the sum) */
        st_ins e = blank(ST_INS_COLL, ST_STREAM_DP, -1, -1, L->dual ? "mirror all-reduce" : "embedding all-reduce");
        e.coll = ST_COLL_ALLREDUCE;
        e.group = E->emb_group;
        e.route = E->emb_route;
        e.dur_s = E->emb_s;
        e.latency_s = E->emb_lat;
        e.bytes = E->emb_bytes;
        e.dep[0] = last;
        before_opt = emit(b, &e);
    }
    return before_opt;
}

/* The optimizer step after before_opt, with offload's copies around it, then (zero 1-2) the
 * weight all-gather. */
static void step_optimizer(builder *b, const lower_ctx *L, const iteration_end *E, int before_opt) {
    const st_plan *p = L->p;
    const st_estimate *est = E->est;
    if (est->offload_grads_s > 0) {
        /* offload: the gradients go to the host over PCIe on the copy stream, the CPU runs
         * Adam (the GPU waits), the updated weights come back (ZeRO-Offload, Ren et al. 2021) */
        st_ins cp = blank(ST_INS_COMPUTE, ST_STREAM_COPY, -1, -1, "grads to host");
        cp.dur_s = est->offload_grads_s;
        cp.dep[0] = before_opt;
        before_opt = emit(b, &cp);
    }
    const char *opt_label = est->offload_grads_s > 0 ? "optimizer (CPU)" : "optimizer";
    st_ins opt = blank(ST_INS_COMPUTE, ST_STREAM_COMPUTE, -1, -1, opt_label);
    opt.phase = ST_PHASE_OPTIMIZER;
    opt.dur_s = est->breakdown.optimizer_s;
    opt.dep[0] = before_opt;
    int oi = emit(b, &opt);
    if (est->offload_weights_s > 0) {
        /* offload_params: the host copy rewritten from the updated weights (cost/offload.c) */
        st_ins cp = blank(ST_INS_COMPUTE, ST_STREAM_COPY, -1, -1,
                          p->offload_params > 0 ? "weights to host" : "weights to device");
        cp.dur_s = est->offload_weights_s;
        cp.dep[0] = oi;
        oi = emit(b, &cp);
    }
    if (p->zero >= 1 && p->zero <= 2 && E->gather_s > 0) {
        /* the updated weights all-gathered; with overlap_param_gather (--overlap-param-gather)
         * all but the last bucket hide behind the next iteration's forward */
        st_ins g = blank(ST_INS_COLL, ST_STREAM_DP, -1, -1, "dp gather");
        g.coll = ST_COLL_ALLGATHER;
        g.group = L->dp_group;
        g.route = L->r_dp;
        g.bytes = st_cost_gather_bytes(p, L->stage_params, L->stage_quant);
        if (L->gather_overlap) {
            /* what the next iteration's first forward does not hide (st_cost_param_gather_exposed),
             * its share of the latency and bytes; what hides still took NCCL's SMs from that
             * forward: a fixed part, like a latency */
            double tax, x = st_cost_param_gather_exposed(L->c, E->gather_s, L->dp_buckets, L->stage_fwd_s, &tax);
            g.dur_s = x + tax;
            g.latency_s = E->gather_lat * x / E->gather_s + tax;
            g.bytes *= x / E->gather_s;
        } else {
            g.dur_s = E->gather_s;
            g.latency_s = E->gather_lat;
        }
        g.dep[0] = oi;
        emit(b, &g);
    }
}

/* Program pg (stage d, its names in L): the stage's schedule, then the end of the iteration.
 * 0 or ST_ENOMEM. */
static int lower_program(st_cost_ctx *ctx, st_cost_ctx *ctx0, lower_ctx *L, iteration_end *E, st_program *pg, int d) {
    const st_plan *p = L->p;
    builder b = {.pg = pg, .last_dp = -1, .zp = {-1, -1}, .last_compute = -1, .ep_shown = 1};
    L->dp_overlap = L->gather_overlap = 0;
    L->stage_params = L->stage_fwd_s = L->stage_quant = 0;
    /* the stage's chunks: d, d + pp, ...; zbv's and dualpipe's d and 2 pp - 1 - d */
    for (int j = 0; j < L->chunks; j++)
        if (chunk_stage(L, j) == d) L->stage_params += L->cc[j].params, L->stage_fwd_s += L->cc[j].fwd_s;
    if (L->dual) { /* the mirror all-reduce of the two copies' gradients: after the stage's, in its pair */
        E->emb_s = st_cost_dualpipe_mirror(ctx, p, L->stage_params, &E->emb_bytes);
        E->emb_lat = st__latency_of(E->emb_s, st_cost_dualpipe_mirror(ctx0, p, L->stage_params, NULL));
    }
    E->gather_s = E->gather_lat = 0;
    if (p->zero <= 2) {
        double red0, gat0, nb0;
        st_cost_ctx *v = stage_view(ctx, p, L->rep, d, 1), *v0 = stage_view(ctx0, p, L->rep, d, 1);
        if (!v || !v0) return ST_ENOMEM;
        const st_plan *pd = stage_plan(p, d, L->sbuf); /* its own tp under stage_tp */
        st_cost_dp_stage(v, pd, d, &L->dp_reduce_s, &E->gather_s, &L->dp_buckets);
        st_cost_dp_stage(v0, pd, d, &red0, &gat0, &nb0);
        L->stage_quant = st_cost_stage_quant_params(v, pd, d);
        L->dp_reduce_lat = st__latency_of(L->dp_reduce_s, red0);
        E->gather_lat = st__latency_of(E->gather_s, gat0);
        L->dp_overlap = p->overlap_grad_reduce;
        L->gather_overlap = p->overlap_param_gather;
    }
    step_optimizer(&b, L, E, reduce_grads(&b, L, E, lower_stage(&b, L, d)));
    if (b.failed) return ST_ENOMEM;
    if (pg->cap > pg->n && pg->n > 0) { /* give back what doubling left over */
        st_ins *fit = realloc(pg->ins, sizeof *pg->ins * (size_t)pg->n);
        if (fit) pg->ins = fit, pg->cap = pg->n;
    }
    return 0;
}

/* the phases whose operators the programs name: lower_stage's schedules */
static unsigned phases_of(const st_plan *p) {
    /* (vp > 1 runs interleaved; dualpipe's whole backwards run as their two halves) */
    int zb = (p->schedule == ST_SCHED_ZB && p->vp <= 1) || p->schedule == ST_SCHED_ZBV ||
             p->schedule == ST_SCHED_DUALPIPE;
    unsigned ph = 1u << ST_PHASE_FWD | (zb ? 1u << ST_PHASE_BWD_INPUT | 1u << ST_PHASE_BWD_WEIGHT : 1u << ST_PHASE_BWD);
    if (p->recompute != ST_REC_NONE) ph |= 1u << ST_PHASE_RECOMPUTE;
    return ph;
}

void st_lower_opts_init(st_lower_opts *o) { memset(o, 0, sizeof *o); }

/* What an interpreter keeps per instruction besides the instruction (the simulator's dependency
 * counters and event state): a run of gpt-1.7b at tp=1,pp=1 took 113 bytes per instruction in all
 * (maximum resident size at gbs 4e6 and 8e6), of which sizeof(st_ins) is the instruction. */
#define ST__STATE_BYTES_PER_INS 48.0

/* Refuses a plan whose programs cannot fit in memory, before anything is allocated: each program has
 * at least a forward and a backward instruction per micro-batch and chunk of its stage, and the
 * simulator keeps every program's (the ranks simulated: one per stage, or every rank). gbs 1e9 asked
 * for 28 GB and ran for minutes; now it is one line naming the key that made it big. */
static int check_size(const st_plan *p, int64_t microbatches, int nranks, st_error *err) {
    double per_rank = 2.0 * (double)microbatches * p->vp;
    double bytes = per_rank * nranks * (sizeof(st_ins) + ST__STATE_BYTES_PER_INS);
    double limit = st_memory_limit_bytes();
    if (bytes <= limit) return 0;
    const char *key = (double)nranks > per_rank ? "gpus" : "gbs";
    return st_error_set(err, ST_EINVAL, NULL, key,
                        "the simulated programs would take at least %.3g GiB (%.3g instructions per rank x %d ranks), "
                        "more than the %.3g GiB this process may use: lower gbs or the GPUs simulated",
                        bytes / 1073741824.0, per_rank, nranks, limit / 1073741824.0);
}

/* Every rank on node groups or with dp_batches (nrep = dp replicas priced): like[q], the first replica
 * whose programs replica q's equal, the one whose instructions q runs: as many micro-batches and every
 * stage's block on the same node groups (its first and last rank's), so its chunks, messages and
 * memory are priced alike (cost/estimate.c prices consecutive replicas once by the same signature).
 * nrep = 1: one replica stands for all. */
static void replicas_alike(const st_cluster *c, const st_plan *p, int nrep, int *like) {
    for (int q = 0; q < nrep; q++) {
        like[q] = q;
        for (int k = 0; k < q && like[q] == q; k++) {
            int same = st_plan_replica_microbatches(p, k) == st_plan_replica_microbatches(p, q);
            for (int d = 0; d < p->pp && same; d++) {
                int64_t blk = (int64_t)st_plan_stage_tp(p, d) * p->cp, f0 = st_plan_stage_rank0(p, d);
                int64_t fq = f0 + blk * q, fk = f0 + blk * k;
                same = st_cluster_rank_group(c, fq) == st_cluster_rank_group(c, fk) &&
                       st_cluster_rank_group(c, fq + blk - 1) == st_cluster_rank_group(c, fk + blk - 1);
            }
            if (same) like[q] = k;
        }
    }
}

/* st_lower_opts' tp collectives of stage d in place of chunk cost c's (c0: without latencies, the same
 * latency share kept) */
static void tp_override(const st_lower_opts *o, int d, st_chunk_cost *c, st_chunk_cost *c0) {
    double *g[3] = {c->comm_fwd_g, c->comm_bwd_g, c->comm_recompute_g};
    double *g0[3] = {c0->comm_fwd_g, c0->comm_bwd_g, c0->comm_recompute_g};
    double *sum[3] = {&c->comm_fwd_s, &c->comm_bwd_s, &c->comm_recompute_s};
    double *sum0[3] = {&c0->comm_fwd_s, &c0->comm_bwd_s, &c0->comm_recompute_s};
    const double want[3] = {o->tp_fwd_s[d], o->tp_bwd_s[d], o->tp_recompute_s[d]};
    for (int k = 0; k < 3; k++) {
        double was = g[k][ST_GRP_TP], was0 = g0[k][ST_GRP_TP], now0 = was > 0 ? want[k] * was0 / was : want[k];
        *sum[k] += want[k] - was;
        *sum0[k] += now0 - was0;
        g[k][ST_GRP_TP] = want[k];
        g0[k][ST_GRP_TP] = now0;
    }
}

int st_lower_plan(st_cost_ctx *ctx, const st_plan *p, const st_lower_opts *o, st_lowered *out, st_error *err) {
    memset(out, 0, sizeof *out);
    if (o->ntp_stages && (o->ntp_stages != p->pp || o->per_op || p->vp > 1 || p->schedule == ST_SCHED_DUALPIPE))
        return st_error_set(err, ST_EINVAL, NULL, "plan",
                            "an operator-level plan's own tp collectives take one chunk per stage, fused");
    int full = o->every_rank, dual = p->schedule == ST_SCHED_DUALPIPE;
    /* dualpipe: the pipeline's pp chunks twice, copy B's behind copy A's (chunk_stage) */
    int pp = p->pp, chunks = pp * p->vp * (dual ? 2 : 1), rc = 0;
    int width = p->tp * p->cp * p->dp;               /* ranks per stage (stage_tp: the widest's) */
    int nranks = full ? (int)st_plan_gpus(p) : pp; /* programs */
    /* node groups, uneven micro-batches (issue 19): by stage, each stage as the replica that sets the
     * step runs it; every rank, each replica as it runs (nrep replicas priced, each its own chunks) */
    const st_cluster *c = st_cost_cluster(ctx);
    int mixed = c->ngroups > 0 || p->ndp_batches, nrep = full && mixed ? p->dp : 1;
    const char *lockstep = st_plan_lockstep(p); /* (st_plan_finalize refuses it first) */
    if (lockstep)
        return st_error_set(err, ST_EINVAL, NULL, "dp_batches",
                            "uneven dp_batches with %s: its collectives run once per micro-batch in groups across "
                            "replicas that run different counts, which no framework runs; give even micro-batches",
                            lockstep);
    /* every rank: zbv's and dualpipe's sends wait in their receiver's order (lower_ordered), which a lane that
     * exchanges nothing with a stage of another tp (rank_pair) does not have */
    if (full && p->nstage_tp && (p->schedule == ST_SCHED_ZBV || dual))
        return st_error_set(err, ST_EINVAL, NULL, "stage_tp",
                            "a different tp per stage with schedule %s is simulated by stage, not every rank "
                            "(--every-rank)", st_schedule_name(p->schedule));
    int rep = st_cost_slowest_replica(ctx, p);
    int64_t m_max = st_plan_replica_microbatches(p, rep);
    for (int q = 0; q < nrep; q++)
        if (st_plan_replica_microbatches(p, q) > m_max) m_max = st_plan_replica_microbatches(p, q);
    if ((rc = check_size(p, m_max, nranks, err))) return rc;
    group_layout G;
    layout_groups(ctx, p, full, &G);
    size_t nc = (size_t)nrep * (size_t)chunks; /* chunk costs: per replica priced, chunk by chunk */
    st_chunk_cost *cc = calloc(nc, sizeof *cc), *cc0 = calloc(nc, sizeof *cc0);
    int *r_fwd = malloc(sizeof(int) * (size_t)nranks), *r_bwd = malloc(sizeof(int) * (size_t)nranks);
    int *r_g = malloc(sizeof(int) * (size_t)G.ngroups); /* each group's route */
    int *like = malloc(sizeof(int) * (size_t)nrep);     /* the replica whose instructions each replica runs */
    zchunk *z = p->zero == 3 ? calloc(nc, sizeof *z) : NULL;
    int granular = p->offload_params > 0 || p->offload_activations > 0;
    st_offload_copies *og = granular ? calloc(nc, sizeof *og) : NULL;
    st__span *span = malloc(sizeof *span * (size_t)chunks * ST__PHASES);
    st__opcoll *oc = NULL;
    st_cluster c0;
    st_cost_ctx *ctx0 = st_cost_ctx_without_latency(ctx, &c0);
    st__lnet B;
    st_estimate est;
    out->nranks = nranks;
    out->ngroups = G.ngroups;
    out->microbatches = st_plan_replica_microbatches(p, rep);
    out->progs = calloc((size_t)nranks, sizeof *out->progs);
    out->groups = calloc((size_t)out->ngroups, sizeof *out->groups);
    out->blocks = calloc((size_t)pp, sizeof *out->blocks);
    st_plan *sbuf = p->nstage_tp ? malloc(sizeof *sbuf) : NULL; /* stage_tp: the plan of the stage lowered */
    if (st__lnet_init(&B, out, c, (int)st_plan_gpus(p), width, full) || (p->nstage_tp && !sbuf) ||
        !cc || !cc0 || !r_fwd || !r_bwd || !r_g || !like ||
        !span || !ctx0 || !out->progs || !out->groups || !out->blocks || (p->zero == 3 && !z) || (granular && !og))
        goto nomem;
    for (int q = 0; q < nrep; q++) {
        size_t at = (size_t)q * (size_t)chunks;
        if (price_chunks(ctx, ctx0, p, nrep > 1 ? q : rep, cc + at, cc0 + at, og ? og + at : NULL, z ? z + at : NULL))
            goto nomem;
        for (int j = pp; dual && j < chunks; j++) { /* copy B's stage j - pp is copy A's (granular offload refused) */
            cc[at + j] = cc[at + j - pp], cc0[at + j] = cc0[at + j - pp];
            if (z) z[at + j] = z[at + j - pp];
        }
    }
    for (size_t i = 0; o->ntp_stages && i < nc; i++) /* the operator-level plan's own tp collectives */
        tp_override(o, st_plan_chunk_stage(p, (int)(i % (size_t)chunks)), &cc[i], &cc0[i]);
    replicas_alike(c, p, nrep, like);
    if ((rc = st_cost_estimate(ctx, p, &est))) {
        st_error_set(err, rc, NULL, "plan", "the plan cannot be priced");
        st_lowered_destroy(out);
        goto out;
    }
    if ((rc = st__lower_ops(ctx, ctx0, p, phases_of(p), out, span, &oc))) {
        if (rc == ST_ENOMEM) goto nomem;
        st_error_set(err, rc, NULL, "model", "a block has more operators than strata's limit (%d)", ST_MAX_OPS);
        st_lowered_destroy(out);
        goto out;
    }
    if (dual) memcpy(span + pp * ST__PHASES, span, sizeof *span * (size_t)pp * ST__PHASES); /* copy B's: A's */
    if (p->nstage_tp && !full) /* by stage, each stage's program stands for its ranks from its first GPU on */
        for (int g = 0, d = 0; g < (int)st_plan_gpus(p); g++) {
            int at = d < pp && g == st_plan_stage_rank0(p, d);
            B.prog_of_gpu[g] = at ? d : -1;
            d += at;
        }
    if (fill_groups(out, p, full, &G) || make_routes(&B, out, c, p, full, &G, r_fwd, r_bwd, r_g)) goto nomem;

    /* (each program's replica, micro-batches and chunk costs are set before it is lowered) */
    lower_ctx L = {.p = p, .chunks = chunks, .dual = dual, .full = full, .per_op = o->per_op, .c = c, .r_fwd = r_fwd,
                   .r_bwd = r_bwd, .p2p_bytes = st_cost_p2p_bytes(ctx, p), .grad_bytes = p->grad_bytes,
                   .ops = out->ops, .oc = oc, .span = span, .sbuf = sbuf};
    iteration_end E = {.est = &est};
    E.emb_s = st_cost_embedding_allreduce(ctx, p, &E.emb_bytes);
    E.emb_lat = st__latency_of(E.emb_s, st_cost_embedding_allreduce(ctx0, p, NULL));
    lane_names names0, names;
    for (int r = 0; r < nranks; r++) {
        int d = full ? rank_stage(p, r) : r, lane = full ? r - (int)st_plan_stage_rank0(p, d) : 0;
        int blk = st_plan_stage_tp(p, d) * p->cp;  /* a replica's ranks in the stage */
        int q = full ? lane / blk : rep;            /* its replica */
        int qi = nrep > 1 ? q : 0;                  /* where its chunk costs are */
        /* the lane whose instructions it runs (stage_tp: its own, rank_pair gives lanes different messages) */
        int first = full ? (p->nstage_tp ? lane : like[qi] * blk) : 0;
        st_program *pg = &out->progs[r];
        st_stage_memory sm;
        pg->rank = r;
        pg->stage = d;
        pg->replicas = full ? 1 : st_plan_stage_tp(p, d) * p->cp * p->dp;
        pg->gpu = full ? r : (int)st_plan_stage_rank0(p, d);
        st_cost_ctx *v = stage_view(ctx, p, q, d, 0);
        if (!v) goto nomem;
        st_cost_stage_memory(v, stage_plan(p, d, sbuf), d, &sm);
        if (p->nstage_tp) L.p2p_bytes = st_cost_stage_p2p_bytes(ctx, p, d);
        pg->base_bytes = sm.base_bytes;
        /* every rank: the lanes of a stage run the same instructions as the first lane of a replica
         * like theirs but for the names of their groups, peers and routes, so they share its
         * (program.h, "Shared instructions") */
        if (full && lane != first) {
            int emb0 = rank_names(&L, &G, r_g, r - lane + first);
            names_of(&L, d, emb0, r_g, &names0);
            names_of(&L, d, rank_names(&L, &G, r_g, r), r_g, &names);
            if (share_lane(pg, &out->progs[r - lane + first], &names0, &names, r_fwd, r_bwd)) goto nomem;
            continue;
        }
        E.emb_group = rank_names(&L, &G, r_g, r);
        E.emb_route = E.emb_group >= 0 ? r_g[E.emb_group] : -1;
        L.bwd_extra = sm.backward_extra_bytes;
        L.rep = q;
        L.m = st_plan_replica_microbatches(p, q);
        L.chunk_mbs = dual ? L.m / 2 : L.m; /* dualpipe: half of them through each copy */
        L.cc = cc + (size_t)qi * (size_t)chunks;
        L.cc0 = cc0 + (size_t)qi * (size_t)chunks;
        L.z = z ? z + (size_t)qi * (size_t)chunks : NULL;
        L.og = og ? og + (size_t)qi * (size_t)chunks : NULL;
        if (lower_program(ctx, ctx0, &L, &E, pg, d)) goto nomem;
    }
    goto out;
nomem:
    rc = st_error_set(err, ST_ENOMEM, NULL, NULL, "out of memory");
    st_lowered_destroy(out);
out:
    free(sbuf);
    free(cc);
    free(cc0);
    free(r_fwd);
    free(r_bwd);
    free(r_g);
    free(like);
    free(z);
    free(og);
    free(span);
    free(oc);
    st__lnet_destroy(&B);
    st_cost_ctx_free(ctx0);
    return rc;
}

int st_lower(st_cost_ctx *ctx, const st_plan *p, st_lowered *out, st_error *err) {
    st_lower_opts o;
    st_lower_opts_init(&o);
    return st_lower_plan(ctx, p, &o, out, err);
}

int st_lower_full(st_cost_ctx *ctx, const st_plan *p, st_lowered *out, st_error *err) {
    st_lower_opts o;
    st_lower_opts_init(&o);
    o.every_rank = 1;
    return st_lower_plan(ctx, p, &o, out, err);
}
