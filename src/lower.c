/* lower.c: a finalized plan becomes one program per pipeline stage (program.h).
 *
 * The tp, cp and dp ranks of a stage run identical programs on identical inputs, so each stage is
 * lowered once, as a representative rank (program.h, "Symmetry"); the collectives Megatron runs
 * inline (tp/cp/ep) are part of the compute instructions' durations, as on the real compute
 * stream. Durations come from st_cost_chunk and st_cost_estimate: the simulator and the estimator
 * price the same operators.
 *
 * Schedules, per stage d of pp with m micro-batches (Megatron-LM schedules.py, Narayanan et al.
 * SC'21 Sec. 2.2; Qi et al. 2023 for ZB-H1):
 * - gpipe: every forward, then every backward;
 * - 1f1b: min(pp - d - 1, m) warm-up forwards, then one forward and one backward alternately,
 *   then the remaining backwards;
 * - interleaved (vp > 1): m*vp virtual micro-batches; the k-th forward runs chunk (k / pp) % vp
 *   of micro-batch (k / (pp vp)) pp + k % pp, the k-th backward chunk vp - 1 - (k / pp) % vp;
 *   (pp - d - 1) * 2 + (vp - 1) * pp warm-up forwards, then 1F1B;
 * - zb (ZB-H1): 1F1B with the backward split into input and weight gradients; in the cool-down the
 *   weight-gradient halves wait until every input gradient has been sent, filling the bubble.
 * Each forward receives its input from the previous chunk's stage and sends its output on; each
 * backward receives the output gradient and sends the input gradient back. Receives block the
 * compute stream (Megatron-LM's synchronous p2p); sends go out on the P2P stream, so a stage
 * computes on while its output travels.
 *
 * Data parallelism (zero 0-2) on the dp stream, with the cost model's full collective times: the
 * gradient reduction after the whole backward, or, with overlap_grad_reduce, in buckets that the
 * last micro-batch's backward of each chunk hands over as it goes (the backward runs in pieces
 * for that); then the optimizer step, then (zero 1-2) the weight all-gather, of which only the
 * last bucket shows with overlap (the rest hides behind the next iteration's forward). ZeRO-3's
 * per-layer traffic is left to the estimator's exposed time for now. */
#include "program.h"

#include <stdlib.h>
#include <string.h>

typedef struct builder {
    st_program *pg;
    int failed;
    int last_dp; /* the last data-parallel bucket issued so far, -1 = none */
} builder;

static int emit(builder *b, const st_ins *in) {
    st_program *pg = b->pg;
    if (pg->n == pg->cap) {
        int cap = pg->cap ? pg->cap * 2 : 64;
        st_ins *grown = realloc(pg->ins, (size_t)cap * sizeof *grown);
        if (!grown) {
            b->failed = 1;
            return -1;
        }
        pg->ins = grown;
        pg->cap = cap;
    }
    pg->ins[pg->n] = *in;
    return pg->n++;
}

static st_ins blank(st_ins_kind kind, int stream, int chunk, int mb, const char *label) {
    st_ins in;
    memset(&in, 0, sizeof in);
    in.kind = kind;
    in.stream = stream;
    in.chunk = chunk;
    in.mb = mb;
    in.dep[0] = in.dep[1] = -1;
    in.label = label;
    in.phase = ST_PHASE_OTHER;
    in.coll = ST_COLL_NONE;
    in.peer = -1;
    return in;
}

/* message tags: one per (destination chunk, micro-batch, direction) */
static int tag_of(int chunk, int mb, int64_t m, int backward) { return (int)(((int64_t)chunk * m + mb) * 2 + backward); }

typedef struct lower_ctx {
    const st_plan *p;
    int chunks;
    int64_t m;
    const st_chunk_cost *cc; /* per chunk */
    int full;                /* every rank, with explicit tp collectives (st_lower_full) */
    int tp_i, cp_i, dp_i;    /* this rank's coordinates (full) */
    int tp_group;            /* this rank's tp group (full) */
    int dp_group;            /* this rank's data-parallel group */
    /* overlap_grad_reduce with zero 0-2: the reduction fires in buckets during the last
     * micro-batch's backward of each chunk (Megatron-LM's DDP buckets) */
    int dp_overlap;
    double dp_reduce_s, dp_buckets, stage_params;
    const st_cluster *c;
} lower_ctx;

/* Megatron's rank order tp-cp-dp-pp: the rank of this lane's copy of `stage` */
static int rank_at(const lower_ctx *L, int stage) {
    const st_plan *p = L->p;
    if (!L->full) return stage;
    return L->tp_i + p->tp * (L->cp_i + p->cp * (L->dp_i + p->dp * stage));
}

/* A compute instruction and the tp/cp/ep collectives of its operators: inline in its duration
 * (representatives), or as a collective of the tp group right after it (every rank). Returns the
 * last of them. */
static int compute(builder *b, const lower_ctx *L, st_ins *in, double comm_s) {
    if (!L->full || L->p->tp == 1 || comm_s <= 0) {
        in->dur_s += comm_s;
        return emit(b, in);
    }
    double free_bytes = in->free_bytes;
    in->free_bytes = 0;
    int ci = emit(b, in);
    st_ins c = blank(ST_INS_COLL, ST_STREAM_COMPUTE, in->chunk, in->mb, "tp collectives");
    c.coll = ST_COLL_ALLREDUCE;
    c.group = L->tp_group;
    c.dur_s = comm_s;
    c.free_bytes = free_bytes;
    c.dep[0] = ci;
    return emit(b, &c);
}

static void forward(builder *b, const lower_ctx *L, int j, int mb) {
    const st_chunk_cost *c = &L->cc[j];
    int pp = L->p->pp, recv = -1;
    if (j > 0) {
        st_ins r = blank(ST_INS_RECV, ST_STREAM_COMPUTE, j, mb, "recv act"); /* blocking, as Megatron's */
        r.peer = rank_at(L, (j - 1) % pp);
        r.tag = tag_of(j, mb, L->m, 0);
        r.dur_s = c->p2p_s;
        recv = emit(b, &r);
    }
    st_ins f = blank(ST_INS_COMPUTE, ST_STREAM_COMPUTE, j, mb, "fwd");
    f.phase = ST_PHASE_FWD;
    f.dur_s = c->fwd_s;
    f.alloc_bytes = c->act_bytes;
    f.dep[0] = recv;
    int fi = compute(b, L, &f, c->comm_fwd_s);
    if (j < L->chunks - 1) {
        st_ins s = blank(ST_INS_SEND, ST_STREAM_P2P, j, mb, "send act");
        s.peer = rank_at(L, (j + 1) % pp);
        s.tag = tag_of(j + 1, mb, L->m, 0);
        s.dur_s = c->p2p_s;
        s.dep[0] = fi;
        emit(b, &s);
    }
}

/* An instruction that produces weight gradients. In the last micro-batch with overlapped
 * data-parallel reduction, it runs in pieces and each piece hands its share of the chunk's
 * buckets to the dp stream, which reduces them while the rest of the backward computes. */
static int grads(builder *b, const lower_ctx *L, st_ins *in, const st_chunk_cost *c, double comm_s) {
    if (!L->dp_overlap || in->mb != L->m - 1 || L->stage_params <= 0) return compute(b, L, in, comm_s);
    double share = c->params / L->stage_params;
    int k = (int)(L->dp_buckets * share + 0.5);
    if (k < 1) k = 1;
    if (k > 8) k = 8; /* enough pieces to show the overlap */
    double whole = in->dur_s, free_bytes = in->free_bytes, bucket_s = L->dp_reduce_s * share / k;
    int last = -1;
    for (int i = 0; i < k; i++) {
        st_ins piece = *in;
        /* from the second piece on, a bucket reduces beside it and holds NCCL's SMs */
        piece.dur_s = whole / k + (i > 0 ? st_cost_overlap_tax(L->c, bucket_s) : 0);
        piece.free_bytes = i == k - 1 ? free_bytes : 0;
        if (i > 0) piece.dep[0] = piece.dep[1] = -1; /* the stream orders the pieces */
        last = i == k - 1 ? compute(b, L, &piece, comm_s) : emit(b, &piece);
        st_ins r = blank(ST_INS_COLL, ST_STREAM_DP, in->chunk, in->mb, "dp reduce bucket");
        r.coll = L->p->zero == 0 ? ST_COLL_ALLREDUCE : ST_COLL_REDUCESCATTER;
        r.group = L->dp_group;
        r.dur_s = bucket_s;
        r.dep[0] = last;
        b->last_dp = emit(b, &r);
    }
    return last;
}

/* split: 0 whole backward, 1 input gradient only, 2 weight gradient only */
static int backward(builder *b, const lower_ctx *L, int j, int mb, int split) {
    const st_chunk_cost *c = &L->cc[j];
    int pp = L->p->pp, dep = -1;
    if (split == 2) {
        st_ins w = blank(ST_INS_COMPUTE, ST_STREAM_COMPUTE, j, mb, "bwd weight");
        w.phase = ST_PHASE_BWD_WEIGHT;
        w.dur_s = c->bwd_s / 2;
        w.free_bytes = c->act_bytes;
        return grads(b, L, &w, c, 0);
    }
    if (j < L->chunks - 1) {
        st_ins r = blank(ST_INS_RECV, ST_STREAM_COMPUTE, j, mb, "recv grad");
        r.peer = rank_at(L, (j + 1) % pp);
        r.tag = tag_of(j, mb, L->m, 1);
        r.dur_s = c->p2p_s;
        dep = emit(b, &r);
    }
    if (L->p->recompute != ST_REC_NONE && c->recompute_s > 0) {
        st_ins rc = blank(ST_INS_COMPUTE, ST_STREAM_COMPUTE, j, mb, "recompute");
        rc.phase = ST_PHASE_RECOMPUTE;
        rc.dur_s = c->recompute_s;
        rc.alloc_bytes = c->working_bytes; /* freed when the backward ends */
        rc.dep[0] = dep;
        dep = compute(b, L, &rc, c->comm_recompute_s);
    }
    st_ins g = blank(ST_INS_COMPUTE, ST_STREAM_COMPUTE, j, mb, split ? "bwd input" : "bwd");
    g.phase = split ? ST_PHASE_BWD_INPUT : ST_PHASE_BWD;
    g.dur_s = split ? c->bwd_s / 2 : c->bwd_s;
    g.free_bytes = (split ? 0 : c->act_bytes) + (L->p->recompute != ST_REC_NONE && c->recompute_s > 0 ? c->working_bytes : 0);
    g.dep[0] = dep;
    int gi = split ? compute(b, L, &g, c->comm_bwd_s) : grads(b, L, &g, c, c->comm_bwd_s);
    if (j > 0) {
        st_ins s = blank(ST_INS_SEND, ST_STREAM_P2P, j, mb, "send grad");
        s.peer = rank_at(L, (j - 1) % pp);
        s.tag = tag_of(j - 1, mb, L->m, 1);
        s.dur_s = c->p2p_s;
        s.dep[0] = gi;
        emit(b, &s);
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

static int lower_stage(builder *b, const lower_ctx *L, int d) {
    const st_plan *p = L->p;
    int64_t m = L->m;
    int last = -1;
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
    int zb = p->schedule == ST_SCHED_ZB;
    int64_t warm = p->pp - d - 1 < m ? p->pp - d - 1 : m;
    for (int64_t i = 0; i < warm; i++) forward(b, L, d, (int)i);
    for (int64_t i = 0; i < m - warm; i++) {
        forward(b, L, d, (int)(warm + i));
        last = backward(b, L, d, (int)i, zb);
        if (zb) last = backward(b, L, d, (int)i, 2);
    }
    for (int64_t i = m - warm; i < m; i++) last = backward(b, L, d, (int)i, zb);
    if (zb)
        for (int64_t i = m - warm; i < m; i++) last = backward(b, L, d, (int)i, 2);
    return last;
}

void st_lowered_destroy(st_lowered *l) {
    if (!l) return;
    for (int i = 0; i < l->nranks; i++) free(l->progs[i].ins);
    for (int i = 0; i < l->ngroups; i++) free(l->groups[i].ranks);
    free(l->progs);
    free(l->groups);
    memset(l, 0, sizeof *l);
}

static int lower(st_cost_ctx *ctx, const st_plan *p, int full, st_lowered *out, st_error *err) {
    memset(out, 0, sizeof *out);
    int pp = p->pp, chunks = pp * p->vp, rc = 0;
    int lanes = full ? p->tp * p->cp * p->dp : 1; /* ranks per stage */
    int nranks = pp * lanes;
    /* groups: one dp group per (stage, tp rank), and with every rank one tp group per (stage, cp, dp) */
    int ndp = full ? pp * p->tp : pp, ntp = full && p->tp > 1 ? pp * p->cp * p->dp : 0;
    st_chunk_cost *cc = calloc((size_t)chunks, sizeof *cc);
    st_estimate est;
    out->nranks = nranks;
    out->ngroups = ndp + ntp;
    out->microbatches = st_plan_microbatches(p);
    out->progs = calloc((size_t)nranks, sizeof *out->progs);
    out->groups = calloc((size_t)out->ngroups, sizeof *out->groups);
    if (!cc || !out->progs || !out->groups) goto nomem;
    for (int j = 0; j < chunks; j++) st_cost_chunk(ctx, p, j, &cc[j]);
    if ((rc = st_cost_estimate(ctx, p, &est))) {
        st_error_set(err, rc, NULL, "plan", "the plan cannot be priced");
        goto out;
    }
    lower_ctx L = {.p = p, .chunks = chunks, .m = out->microbatches, .cc = cc, .full = full, .c = st_cost_cluster(ctx)};
    /* group members, in rank order */
    for (int d = 0; d < pp; d++)
        for (int t = 0; t < (full ? p->tp : 1); t++) {
            st_group_def *g = &out->groups[d * (full ? p->tp : 1) + t];
            g->kind = ST_GRP_DP;
            g->n = full ? p->cp * p->dp : 1;
            if (!(g->ranks = malloc(sizeof(int) * (size_t)g->n))) goto nomem;
            for (int k = 0; k < g->n; k++) g->ranks[k] = full ? t + p->tp * (k + p->cp * p->dp * d) : d;
        }
    for (int k = 0; k < ntp; k++) { /* k = lane (cp, dp) + cp*dp*stage */
        st_group_def *g = &out->groups[ndp + k];
        g->kind = ST_GRP_TP;
        g->n = p->tp;
        if (!(g->ranks = malloc(sizeof(int) * (size_t)g->n))) goto nomem;
        for (int t = 0; t < p->tp; t++) g->ranks[t] = t + p->tp * k;
    }
    for (int r = 0; r < nranks; r++) {
        int d = r / lanes, lane = r % lanes;
        L.tp_i = full ? lane % p->tp : 0;
        L.cp_i = full ? (lane / p->tp) % p->cp : 0;
        L.dp_i = full ? lane / (p->tp * p->cp) : 0;
        L.tp_group = ndp + (full ? lane / p->tp + p->cp * p->dp * d : 0);
        st_program *pg = &out->progs[r];
        st_stage_memory sm;
        pg->rank = r;
        pg->stage = d;
        pg->replicas = full ? 1 : p->tp * p->dp * p->cp;
        st_cost_stage_memory(ctx, p, d, &sm);
        pg->base_bytes = sm.weights_bytes + sm.grads_bytes + sm.optimizer_bytes + sm.other_bytes;

        builder b = {.pg = pg, .last_dp = -1};
        double gather_s = 0;
        L.dp_group = d * (full ? p->tp : 1) + L.tp_i;
        L.dp_overlap = 0;
        if (p->zero <= 2) {
            st_cost_dp_stage(ctx, p, d, &L.dp_reduce_s, &gather_s, &L.dp_buckets);
            L.dp_overlap = p->overlap_grad_reduce;
            L.stage_params = 0;
            for (int j = d; j < chunks; j += pp) L.stage_params += cc[j].params;
        }
        int last = lower_stage(&b, &L, d);
        int before_opt = last;
        st_ins dpi = blank(ST_INS_COLL, ST_STREAM_DP, -1, -1, "dp reduce");
        dpi.coll = p->zero == 0 ? ST_COLL_ALLREDUCE : ST_COLL_REDUCESCATTER;
        dpi.group = L.dp_group;
        dpi.dep[0] = last;
        if (p->zero == 3) {
            /* ZeRO-3's per-layer gathers overlap the compute: its exposed time, as estimated */
            dpi.dur_s = est.breakdown.dp_comm_s;
            before_opt = emit(&b, &dpi);
        } else if (!L.dp_overlap) {
            dpi.dur_s = L.dp_reduce_s; /* after the whole backward (Megatron-LM's default) */
            before_opt = emit(&b, &dpi);
        } else if (b.last_dp >= 0) {
            before_opt = b.last_dp; /* the buckets went out during the backward */
        }
        st_ins opt = blank(ST_INS_COMPUTE, ST_STREAM_COMPUTE, -1, -1, "optimizer");
        opt.phase = ST_PHASE_OPTIMIZER;
        opt.dur_s = est.breakdown.optimizer_s + est.breakdown.offload_s;
        opt.dep[0] = before_opt;
        int oi = emit(&b, &opt);
        if (p->zero >= 1 && p->zero <= 2 && gather_s > 0) {
            /* the updated weights all-gathered; with --overlap-param-gather all but the last
             * bucket hide behind the next iteration's forward */
            st_ins g = blank(ST_INS_COLL, ST_STREAM_DP, -1, -1, "dp gather");
            g.coll = ST_COLL_ALLGATHER;
            g.group = L.dp_group;
            /* (what hides still took NCCL's SMs from that forward) */
            g.dur_s = L.dp_overlap ? gather_s / L.dp_buckets + st_cost_overlap_tax(L.c, gather_s - gather_s / L.dp_buckets)
                                   : gather_s;
            g.dep[0] = oi;
            emit(&b, &g);
        }
        if (b.failed) goto nomem;
    }
    goto out;
nomem:
    rc = st_error_set(err, ST_ENOMEM, NULL, NULL, "out of memory");
    st_lowered_destroy(out);
out:
    free(cc);
    return rc;
}

int st_lower(st_cost_ctx *ctx, const st_plan *p, st_lowered *out, st_error *err) { return lower(ctx, p, 0, out, err); }

int st_lower_full(st_cost_ctx *ctx, const st_plan *p, st_lowered *out, st_error *err) {
    return lower(ctx, p, 1, out, err);
}
