/* balance.c: plans for clusters of node groups of different GPU types (issue 19): layers per pipeline
 * stage in proportion to each stage's speed under its memory, and micro-batches per data-parallel
 * replica in proportion to the replica's speed.
 *
 * Stages: layer l of stage d takes tau_d per micro-batch on the stage's GPUs (the slowest GPU of the
 * stage's replicas, st_cost_view); 1F1B's steady state runs at the slowest stage's pace (cost/estimate.c),
 * so the split that equalises L_d tau_d, L_d proportional to 1 / tau_d, is the fastest (AMP, Li et al.
 * NeurIPS'22, Sec. 4.2, and HexiScale's stage partitioning balance the same per-stage times), each
 * L_d capped at the most layers whose memory fits the stage's GPU. The embedding (first stage) and the
 * output layer (last) are not counted in the proportion: the even split's ends are left to it.
 *
 * Replicas: with its stages balanced, replica r takes T_r per micro-batch (its slowest stage), so the
 * global batch's M micro-batches split as m_r proportional to 1 / T_r make the replicas finish
 * together (Whale, Jia et al. ATC'22, Sec. 3.3, hardware-aware load balancing; Adaptive SGD's batch
 * scaling by GPU speed). Every replica then holds a different share of the batch, so its gradient
 * enters the average with weight m_r / M, not 1 / dp (say so to whoever runs the plan; the
 * frameworks strata emits for cannot: src/report/emit.c refuses dp_batches). Not with zero=3 or ep > 1,
 * whose collectives meet across replicas every micro-batch (st_plan_lockstep).
 *
 * Interleaved plans (vp > 1): rank d holds chunks d, d + pp, ..., all run on its GPUs, and the
 * pipeline's time is m max_d t_d + (sum_d t_d - max_d t_d) / vp with t_d the rank's time per micro-batch,
 * all its chunks together (Narayanan et al. SC'21, Sec. 2.2; cost/estimate.c). So the balance is per
 * rank, as for vp = 1: L_d in proportion to 1 / tau_d under the rank's memory, each of its vp chunks
 * taking L_d / vp (the first L_d mod vp of them one more). Megatron-LM runs such chunks with
 * --pipeline-model-parallel-layout (src/report/emit.c), torchtitan with its split points.
 * With a tp per stage (stage_tp) each stage and replica is priced on its own ranks with its own tp. */
#include "search/search.h"

#include <string.h>

int st_balance_split(const double *speed, const int64_t *cap, int n, int64_t total, int64_t *out) {
    double x[ST_MAX_STAGES > ST_MAX_REPLICAS ? ST_MAX_STAGES : ST_MAX_REPLICAS];
    int64_t capsum = 0;
    if (n < 1 || n > (int)(sizeof x / sizeof x[0]) || total < n) return ST_EINVAL;
    for (int i = 0; i < n; i++) {
        if (!(speed[i] > 0) || (cap && cap[i] < 1)) return ST_EINVAL;
        capsum += cap ? cap[i] : total;
    }
    if (capsum < total) return ST_EINVAL;
    /* x_i = clamp(lambda speed_i, 1, cap_i) with sum x_i = total: lambda by bisection (the sum grows
     * with lambda), between 0 and the lambda that puts every item at its cap */
    double lo = 0, hi = 0;
    for (int i = 0; i < n; i++) {
        double need = (double)(cap ? cap[i] : total) / speed[i];
        if (need > hi) hi = need;
    }
    for (int it = 0; it < 200; it++) {
        double mid = (lo + hi) / 2, sum = 0;
        for (int i = 0; i < n; i++) {
            double v = mid * speed[i], c = (double)(cap ? cap[i] : total);
            sum += v < 1 ? 1 : v > c ? c : v;
        }
        if (sum < (double)total) lo = mid;
        else hi = mid;
    }
    int64_t given = 0;
    for (int i = 0; i < n; i++) {
        double v = hi * speed[i], c = (double)(cap ? cap[i] : total);
        x[i] = v < 1 ? 1 : v > c ? c : v;
        out[i] = (int64_t)x[i];
        given += out[i];
    }
    /* largest remainders, ties to the lower index (an item with a fraction is below its integer cap) */
    while (given < total) {
        int best = -1;
        for (int i = 0; i < n; i++) {
            if (cap && out[i] >= cap[i]) continue;
            if (best < 0 || x[i] - (double)out[i] > x[best] - (double)out[best]) best = i;
        }
        if (best < 0) return ST_EINVAL;
        out[best]++;
        x[best] = (double)out[best]; /* its fraction is spent */
        given++;
    }
    while (given > total) { /* bisection's last ulp: take from the largest */
        int best = 0;
        for (int i = 1; i < n; i++)
            if (out[i] > out[best]) best = i;
        if (out[best] <= 1) return ST_EINVAL;
        out[best]--;
        given--;
    }
    return 0;
}

/* One micro-batch of pipeline chunk `chunk` of p on ctx's GPUs: compute, recompute and the inline
 * collectives (what the stage's time per micro-batch holds besides the pipeline messages). */
static double chunk_s(st_cost_ctx *ctx, const st_plan *p, int chunk) {
    st_chunk_cost cc;
    st_cost_chunk(ctx, p, chunk, &cc);
    return cc.fwd_s + cc.bwd_s + cc.recompute_s + cc.comm_fwd_s + cc.comm_bwd_s + cc.comm_recompute_s;
}

/* Rank d's `total` layers over its vp chunks d, d + pp, ... of q: evenly, the first total mod vp one more. */
static void spread(st_plan *q, int d, int64_t total) {
    int pp = q->pp, vp = q->vp;
    for (int v = 0; v < vp; v++) q->stage_layers[d + v * pp] = (int)(total / vp + (v < total % vp));
}

/* Stage layers: 1 / tau_d under each stage's memory cap, per rank (its vp chunks together). 1 when p
 * changed, 0 when not, <0 error. */
static int balance_stages(st_cost_ctx *ctx, const st_model *m, st_plan *p) {
    int pp = p->pp, vp = p->vp, chunks = pp * vp;
    if (pp < 2 || chunks > ST_MAX_STAGES) return 0;
    double speed[ST_MAX_STAGES];
    int64_t cap[ST_MAX_STAGES], L[ST_MAX_STAGES];
    st_plan q = *p;
    q.nstage_layers = chunks;
    for (int j = 0; j < chunks; j++) q.stage_layers[j] = 1;
    for (int d = 0; d < pp; d++) {
        st_plan_stage_retarget(p, d, &q); /* stage_tp: stage d priced as it runs, with its own tp */
        int64_t S = (int64_t)st_plan_stage_tp(p, d) * p->cp * p->dp;
        st_cost_ctx *v = st_cost_view(ctx, st_plan_stage_rank0(p, d), S);
        if (!v) return ST_ENOMEM;
        /* tau_d: two layers less one in the rank's first chunk, which leaves its embedding or output layer out */
        q.stage_layers[d] = 2;
        double two = chunk_s(v, &q, d);
        q.stage_layers[d] = 1;
        double tau = two - chunk_s(v, &q, d);
        if (!(tau > 0)) return 0;
        speed[d] = 1 / tau;
        /* the most layers whose memory fits (memory grows with the layers): bisection over the rank's
         * total, at least one layer a chunk */
        int64_t lo = vp - 1, hi = m->layers - (int64_t)(pp - 1) * vp;
        double mem = st_cost_cluster(v)->gpu.memory_bytes;
        while (lo < hi) {
            int64_t mid = (lo + hi + 1) / 2;
            st_stage_memory sm;
            spread(&q, d, mid);
            st_cost_stage_memory(v, &q, d, &sm);
            if (sm.total_bytes <= mem) lo = mid;
            else hi = mid - 1;
        }
        spread(&q, d, vp);
        if (lo < vp) return 0; /* not even one layer a chunk fits: the even plan says so */
        cap[d] = lo;
    }
    if (st_balance_split(speed, cap, pp, m->layers, L)) return 0;
    for (int d = 0; d < pp; d++) {
        if (L[d] < vp) return 0; /* a chunk left without a layer: no framework builds it */
        spread(&q, d, L[d]);
    }
    int even[ST_MAX_STAGES], same = 1;
    st_plan_chunk_layers(p, m, even);
    for (int j = 0; j < chunks; j++) same &= even[j] == q.stage_layers[j];
    if (same) return 0;
    p->nstage_layers = chunks;
    for (int j = 0; j < chunks; j++) p->stage_layers[j] = q.stage_layers[j];
    return 1;
}

/* Micro-batches per replica: 1 / T_r. 1 when p changed, 0 when not, <0 error. */
static int balance_replicas(st_cost_ctx *ctx, st_plan *p) {
    int pp = p->pp, dp = p->dp, same = 1;
    int64_t M = p->gbs / p->mbs;
    double speed[ST_MAX_REPLICAS];
    int64_t m[ST_MAX_REPLICAS];
    st_plan q = *p; /* stage_tp: the plan of stage d */
    /* ZeRO-3's gathers and the experts' all-to-all meet across replicas every micro-batch: uneven counts
     * do not run (st_plan_lockstep) */
    if (dp > ST_MAX_REPLICAS || p->gbs % p->mbs || p->zero == 3 || p->ep > 1) return 0;
    for (int r = 0; r < dp; r++) {
        double worst = 0;
        for (int d = 0; d < pp; d++) {
            int64_t blk = (int64_t)st_plan_stage_tp(p, d) * p->cp;
            st_cost_ctx *v = st_cost_view(ctx, st_plan_stage_rank0(p, d) + blk * r, blk);
            if (!v) return ST_ENOMEM;
            st_plan_stage_retarget(p, d, &q);
            double t = 0; /* the rank's time per micro-batch: all its chunks (vp > 1: d, d + pp, ...) */
            for (int j = d; j < pp * p->vp; j += pp) t += chunk_s(v, &q, j);
            if (t > worst) worst = t;
        }
        if (!(worst > 0)) return 0;
        speed[r] = 1 / worst;
        same &= speed[r] == speed[0];
    }
    /* the interleaved schedule runs a multiple of pp micro-batches on every replica (plan.c) */
    int64_t unit = p->vp > 1 ? pp : 1;
    if (same || M % unit || st_balance_split(speed, NULL, dp, M / unit, m)) return 0;
    p->ndp_batches = dp;
    for (int r = 0; r < dp; r++) p->dp_batches[r] = (int)(m[r] * unit);
    return 1;
}

int st_search_balance(st_cost_ctx *ctx, st_plan *p) {
    const st_cluster *c = st_cost_cluster(ctx);
    /* ZB-V's chunks sit in a V, not round robin: not balanced here */
    if (c->ngroups < 2 || p->nstage_layers || p->ndp_batches || (p->vp > 1 && p->schedule != ST_SCHED_INTERLEAVED))
        return 0;
    int changed = 0, rc = 0;
    if (p->pp > 1) {
        rc = balance_stages(ctx, st_cost_model(ctx), p);
        if (rc < 0) return rc;
        changed |= rc;
    }
    if (p->dp > 1) {
        rc = balance_replicas(ctx, p);
        if (rc < 0) return rc;
        changed |= rc;
    }
    return changed;
}
