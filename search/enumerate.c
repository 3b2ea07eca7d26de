/* enumerate.c: the hybrid-parallel space, tp x cp x pp x dp x ep x mbs x vp x sp x recompute x
 * zero x offload, every point priced by st_cost_estimate (the one cost path), the best K kept.
 *
 * Only plans that st_plan_finalize would accept are generated (tests check the kept ones against
 * it): tp divides heads and kv_heads; cp keeps seq divisible by 2 cp; tp*cp*pp*dp uses exactly
 * the GPUs; dp*mbs divides gbs (on node groups also a dp that does not, its replicas given uneven
 * micro-batch counts: uneven_dp); ep divides experts and dp*cp; vp > 1 only where pp*vp divides the
 * layers (what Megatron-LM's interleaved schedule accepts) and the micro-batches divide by pp;
 * uneven layer splits (balance.c) for vp = 1 and interleaved plans; offload=optimizer needs ZeRO >= 1,
 * offload=params ZeRO-3.
 * The overlaps are one dimension (inner()): off, or every one the plan allows.
 * The zero-bubble schedules (st_search_opts.zero_bubble: zb, ZB-H1, and zbv, ZB-V with two chunks
 * per rank in a V) are tried for a pipelined 1F1B plan that fits and whose time less its whole
 * bubble would enter the kept set: they change only the bubble (and zbv the memory, which puts the
 * first and the last chunk on stage 0 and holds pp micro-batches on every stage), so a plan out of
 * reach without any bubble is out of reach with theirs, and a 1F1B plan that does not fit is not
 * tried as zbv either (zbv holds at least 1F1B's first stage on every stage). zbv needs 2 pp <=
 * layers and 2 pp - 1 micro-batches. DualPipe (st_search_opts.dualpipe) is tried the same way for an
 * even pp and an even number of micro-batches, at least 2 pp, for every such 1F1B plan that fits (its
 * ranks average two stages and it hides the ep and pp communication, so the 1F1B plan's time bounds
 * it from below only as the shape bounds do, which take DualPipe's pairs of stages); it holds two
 * stages' model state and about 1F1B's first stage's activations everywhere, so a 1F1B plan that does
 * not fit is not tried. zbv's reach is not strict that way (its ranks average two chunks too).
 * gpipe is priced by `strata estimate` but not enumerated (it
 * never beats 1F1B here: the same time, more memory). The attention kernel is the options' (st_search_opts.attention),
 * not a searched dimension: frameworks choose their attention kernel by release and hardware, not
 * per plan, and searching it would double the space for a choice nobody makes there.
 *
 * Speed (the workload behind the design): the 530B model on 5,120 GPUs is about a million
 * points. Per point the shard cache (cost/estimate.c) turns the operator walk into a lookup, and
 * stage classes turn the pipeline walk into a handful of terms, so a point costs about a
 * microsecond. Ties are broken by memory and then by enumeration order, so output is
 * deterministic.
 *
 * Clusters of node groups (issue 19): every plan is priced as it is and balanced to its stages' and
 * replicas' GPUs (search/balance.c: layers per stage, micro-batches per replica), and the shape bounds,
 * which price the slowest GPU, are not used. */
#include "search/search.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

void st_search_opts_init(st_search_opts *o) {
    memset(o, 0, sizeof *o);
    o->top = 10;
    o->dtype = ST_DT_BF16;
    o->attention = ST_ATTN_DEFAULT;
}

void st_search_result_destroy(st_search_result *res) {
    free(res->plans);
    memset(res, 0, sizeof *res);
}

/* The kept plans: a max-heap on (time, memory, order) holding the K best, so the worst kept is at
 * the root and a better plan replaces it in O(log K). */
typedef struct keep {
    st_ranked *v;
    uint64_t *order;
    int n, cap;
} keep;

static int worse(const keep *k, int a, int b) {
    const st_estimate *x = &k->v[a].est, *y = &k->v[b].est;
    if (x->iteration_time_s != y->iteration_time_s) return x->iteration_time_s > y->iteration_time_s;
    if (x->memory_peak_bytes != y->memory_peak_bytes) return x->memory_peak_bytes > y->memory_peak_bytes;
    return k->order[a] > k->order[b];
}

static void swap(keep *k, int a, int b) {
    st_ranked t = k->v[a];
    k->v[a] = k->v[b];
    k->v[b] = t;
    uint64_t o = k->order[a];
    k->order[a] = k->order[b];
    k->order[b] = o;
}

static void sift_down(keep *k, int i) {
    for (;;) {
        int l = 2 * i + 1, r = l + 1, w = i;
        if (l < k->n && worse(k, l, w)) w = l;
        if (r < k->n && worse(k, r, w)) w = r;
        if (w == i) return;
        swap(k, i, w);
        i = w;
    }
}

static void sift_up(keep *k, int i) {
    while (i > 0) {
        int parent = (i - 1) / 2;
        if (!worse(k, i, parent)) return;
        swap(k, i, parent);
        i = parent;
    }
}

/* Would (t, mem) enter the kept set? Cheap test before copying the plan. */
static int admits(const keep *k, const st_estimate *e) {
    if (k->n < k->cap) return 1;
    const st_estimate *w = &k->v[0].est;
    return e->iteration_time_s < w->iteration_time_s ||
           (e->iteration_time_s == w->iteration_time_s && e->memory_peak_bytes < w->memory_peak_bytes);
}

static void offer(keep *k, const st_plan *p, const st_estimate *e, uint64_t order) {
    if (!admits(k, e)) return;
    int i;
    if (k->n < k->cap) {
        i = k->n++;
    } else {
        i = 0;
    }
    k->v[i].plan = *p;
    k->v[i].est = *e;
    k->order[i] = order;
    if (i == 0 && k->n == k->cap)
        sift_down(k, 0);
    else
        sift_up(k, i);
}

typedef struct search {
    const st_model *m;
    const st_cluster *c;
    const st_search_opts *o;
    st_cost_ctx *ctx;
    keep kept;
    uint64_t evaluated, feasible, bounded;
    double t0, next_report;
    int reported;
    int nomem;          /* an estimate ran out of memory: the ranking would miss it, so the search fails */
    uint64_t nonfinite; /* estimates with a non-finite number: never ranked, an error at the end */
    st_error first_nonfinite;
    char first_nonfinite_spec[512];
    st_plan balanced; /* price()'s balanced copy of the plan in hand */
    int balanced_only; /* group_tp's plans: priced balanced only (evenly where balancing changes nothing) */
    int uneven_only;   /* uneven_dp's plans: priced only where balancing gives the replicas dp_batches */
} search;

static void progress(search *s) {
    if (!s->o->progress) return;
    double t = st_clock_s();
    if (t < s->next_report) return;
    s->next_report = t + 0.5;
    fprintf(stderr, "\rsearching: %llu configurations evaluated, %llu fit, %.1f s", (unsigned long long)s->evaluated,
            (unsigned long long)s->feasible, t - s->t0);
    s->reported = 1;
}

static void price_one(search *s, st_plan *p);
static void zero_bubble(search *s, st_plan *p, const st_estimate *e1);

/* On a cluster of node groups, each plan both as it is (layers and batch spread evenly, as a plan
 * that ignores the GPU types is) and balanced to its stages' and replicas' speeds (balance.c). */
static void price(search *s, st_plan *p) {
    if (!s->balanced_only) price_one(s, p);
    if (s->c->ngroups < 2) return;
    st_plan *q = &s->balanced;
    *q = *p;
    if (st_search_balance(s->ctx, q) == 1) {
        if (!s->uneven_only || q->ndp_batches) price_one(s, q);
    } else if (s->balanced_only && !s->uneven_only) {
        price_one(s, p);
    }
}

static void price_one(search *s, st_plan *p) {
    st_estimate e;
    s->evaluated++;
    if ((s->evaluated & 0xffff) == 0) progress(s);
    int rc = st_cost_estimate(s->ctx, p, &e);
    if (rc == ST_ENOMEM) s->nomem = 1;
    if (rc) return;
    if (st_estimate_check(&e, s->nonfinite ? NULL : &s->first_nonfinite)) {
        if (!s->nonfinite++) st_plan_format_spec(p, s->first_nonfinite_spec, sizeof s->first_nonfinite_spec);
        return;
    }
    if (!e.fits) return;
    s->feasible++;
    if (!s->o->accept || !admits(&s->kept, &e) || s->o->accept(p, s->o->accept_arg))
        offer(&s->kept, p, &e, s->evaluated);
    if ((s->o->zero_bubble || s->o->dualpipe) && p->pp > 1 && p->schedule == ST_SCHED_1F1B) zero_bubble(s, p, &e);
}

/* Whether DualPipe can run plan p (plan.c's checks): an even pp, an even number of micro-batches, at
 * least 2 pp */
static int dualpipe_fits_shape(const st_plan *p) {
    int64_t mb = st_plan_microbatches(p);
    return p->pp % 2 == 0 && mb % 2 == 0 && mb >= 2LL * p->pp && p->vp == 1 && !p->nstage_layers && !p->ndp_batches &&
           !p->nstage_tp;
}

/* The zero-bubble forms of a 1F1B plan that fits (its estimate e1): only where its time without any
 * bubble would enter the kept set. DualPipe's wherever it can run: a rank's two stages average the
 * 1F1B stages' times and it hides communication, so the 1F1B plan's time bounds it from below only
 * as shape_bounds does. */
static void zero_bubble(search *s, st_plan *p, const st_estimate *e1) {
    st_estimate reach = *e1;
    int64_t mb = st_plan_microbatches(p);
    if (s->o->dualpipe && dualpipe_fits_shape(p)) {
        p->schedule = ST_SCHED_DUALPIPE;
        price_one(s, p);
    }
    reach.iteration_time_s -= e1->breakdown.bubble_s;
    if (!s->o->zero_bubble || !admits(&s->kept, &reach)) goto out;
    p->schedule = ST_SCHED_ZB;
    price_one(s, p);
    if (2LL * p->pp <= s->m->layers && 2 * p->pp <= ST_MAX_STAGES && mb >= 2LL * p->pp - 1 && !p->nstage_layers &&
        !p->ndp_batches) {
        p->schedule = ST_SCHED_ZBV, p->vp = 2;
        price_one(s, p);
        p->vp = 1;
    }
out:
    p->schedule = ST_SCHED_1F1B;
}

/* Times no plan of this shape (tp, cp, pp, dp, ep, mbs, vp) can beat, whatever its inner
 * dimensions, one per recompute mode: its micro-batches times the busiest stage's forward,
 * backward and recompute compute (where DualPipe is tried, half of them times the busiest rank's two
 * stages'), at the least compute any other inner choice has (sp on where
 * tp > 1, which splits the norms). The estimate's pipeline time is at least that (micro-batches x
 * the slowest stage's time, which holds its compute and more) and the iteration adds the rest, so
 * a shape or recompute mode whose bound is above the worst kept plan's time cannot enter the kept
 * set and is skipped unpriced. */
static void shape_bounds(search *s, const st_plan *p, double lb[ST_REC_FULL + 1]) {
    st_plan q = *p;
    q.sp = q.tp > 1;
    q.tp_overlap = 0;
    double t[ST_REC_FULL + 1][ST_MAX_STAGES];
    st_cost_stage_compute(s->ctx, &q, t);
    for (int rc = ST_REC_NONE; rc <= ST_REC_FULL; rc++) {
        double worst = 0;
        for (int d = 0; d < q.pp; d++)
            if (t[rc][d] > worst) worst = t[rc][d];
        lb[rc] = (double)st_plan_microbatches(&q) * worst;
        /* DualPipe, tried for this shape's 1F1B plans: half the micro-batches times the busiest rank's
         * two stages, at most the bound above */
        if (s->o->dualpipe && dualpipe_fits_shape(&q)) {
            double pair = 0;
            for (int d = 0; d < q.pp; d++)
                if (t[rc][d] + t[rc][q.pp - 1 - d] > pair) pair = t[rc][d] + t[rc][q.pp - 1 - d];
            lb[rc] = (double)(st_plan_microbatches(&q) / 2) * pair;
        }
    }
}

/* How many configurations inner() prices for one recompute mode of shape p with sequence
 * parallelism sp (0 or 1; -1: both where tp > 1), for the count of those the bounds rule out. */
static uint64_t inner_count(const search *s, const st_plan *p, int sp_only) {
    uint64_t n = 0;
    for (int sp = 0; sp <= (p->tp > 1); sp++) {
        if (sp_only >= 0 && sp != sp_only) continue;
        int tpo = p->tp > 1 && sp && p->tp <= s->c->gpus_per_node;
        for (int z = 0; z <= 3; z++)
            for (int off = ST_OFF_NONE; off <= ST_OFF_PARAMS; off++) {
                if ((off == ST_OFF_OPTIMIZER && z < 1) || (off == ST_OFF_PARAMS && z != 3)) continue;
                n += 1 + (z < 3 || tpo);
            }
    }
    return n;
}

/* The innermost dimensions: everything that changes neither the shard nor the pipeline shape.
 * Returns how many recompute modes the bounds (lb, or NULL) skipped unpriced. */
static int inner(search *s, st_plan *p, const double lb[ST_REC_FULL + 1]) {
    int max_sp = p->tp > 1 ? 1 : 0, skipped = 0;
    for (int sp = 0; sp <= max_sp; sp++) {
        p->sp = sp;
        for (int rc = ST_REC_NONE; rc <= ST_REC_FULL; rc++) {
            if (lb && s->kept.n == s->kept.cap && lb[rc] > s->kept.v[0].est.iteration_time_s) {
                skipped++;
                s->bounded += inner_count(s, p, sp);
                continue;
            }
            p->recompute = (st_recompute)rc;
            for (int z = 0; z <= 3; z++) {
                p->zero = z;
                for (int off = ST_OFF_NONE; off <= ST_OFF_PARAMS; off++) {
                    if (off == ST_OFF_OPTIMIZER && z < 1) continue;
                    if (off == ST_OFF_PARAMS && z != 3) continue;
                    p->offload = (st_offload)off;
                    /* with or without the overlaps, all together as Megatron-LM's performance
                     * configurations set them (its --overlap-param-gather needs
                     * --overlap-grad-reduce; --tp-comm-overlap needs sequence parallelism): the
                     * data-parallel reduction and gather (ZeRO-3 always overlaps, prefetching) and
                     * with tp > 1 and sp the tensor-parallel traffic (tp_overlap) */
                    /* plan.c's rule; not with a tp per stage (stage_tp), which plan.c refuses it with */
                    int tpo = p->tp > 1 && sp && p->tp <= s->c->gpus_per_node && !p->nstage_tp;
                    for (int ov = 0; ov <= (z < 3 || tpo); ov++) {
                        p->overlap_grad_reduce = ov && z < 3;
                        p->overlap_param_gather = ov && z >= 1 && z < 3;
                        p->tp_overlap = ov && tpo;
                        price(s, p);
                    }
                }
            }
        }
    }
    return skipped;
}

/* Data parallelism whose degree does not divide the global batch, on a cluster of node groups (issue 19): dp
 * replicas of different speeds (a 4g, a 2g and a 1g MIG slice; an A100 and an H100 replica) take micro-batches in
 * proportion to their speeds (balance.c's dp_batches, Whale's hardware-aware balancing), so dp needs only to be
 * at most the micro-batch count gbs / mbs: 3 replicas share 14 micro-batches as 8, 4, 2 where an even split
 * needs dp to divide them. Each mbs dividing gbs with at least dp micro-batches, vp = 1 and ep = 1 (interleaved
 * replicas, balanced in whole multiples of pp micro-batches, and MoE's expert groups, which plan.c refuses with
 * uneven replicas anyway, are left out to keep the growth to these shapes), priced only where the balance gives the replicas different counts (replicas of
 * one speed cannot split such a batch evenly: no plan). Growing mbs stops where no plan of an mbs fits. */
static void uneven_dp(search *s, st_plan *p, int tp, int cp, int pp, int64_t dp) {
    int64_t gbs = p->gbs;
    if (dp < 2 || dp > ST_MAX_REPLICAS) return;
    p->tp = tp, p->cp = cp, p->pp = pp, p->dp = (int)dp, p->ep = 1, p->vp = 1;
    p->schedule = ST_SCHED_1F1B;
    s->balanced_only = s->uneven_only = 1;
    for (int64_t mbs = 1; gbs / mbs >= dp; mbs++) {
        if (gbs % mbs) continue;
        p->mbs = mbs;
        uint64_t before = s->feasible;
        inner(s, p, NULL);
        if (s->feasible == before) break; /* memory never falls as mbs grows */
    }
    s->balanced_only = s->uneven_only = 0;
}

/* A tp per node group (issue 19, stage_tp: HexiScale's, Metis's and AMP's plans, a lower tp where the GPUs are
 * faster): group g of the first `gpus` ranks (n_g of them, in rank order) holds pp_g = n_g / (tp_g cp dp) whole
 * stages of its own tp_g, one dp and cp for the model. Every (cp, dp, mbs) with one tp per group, not all equal
 * (those are the uniform plans above), ep = 1, vp = 1: at most T^G - T shapes per (cp, dp, mbs) for T tp choices
 * and G groups (2 groups, tp in 1, 2, 4, 8: 12), each priced through inner() balanced only: such a plan exists
 * for GPUs of different speeds, and its even split of the layers is the heterogeneity-unaware plan it should
 * beat. Growing mbs stops where no plan of an mbs fits, as above. Pipelines of at most 8 stages
 * (ST__GROUP_TP_MAX_PP): the longer ones (tp 1-2 on every stage, dp 1) cost the most to price and never
 * ranked first on examples/mixed-a100-h100.json (Llama 2 7B and 13B, gbs 128: the best had 3 stages). */
#define ST__GROUP_TP_MAX_PP 8 /* group_tp's longest pipeline (see there) */
static void group_tp(search *s, st_plan *p, int64_t gpus, int max_tp) {
    const st_model *m = s->m;
    const st_cluster *c = s->c;
    int G = 0, tps[64], nt = 0, idx[ST_MAX_GROUPS];
    int64_t n[ST_MAX_GROUPS], left = gpus, least = gpus, node = gpus, gbs = p->gbs;
    for (int g = 0; g < c->ngroups && left > 0; g++) {
        int64_t k = c->groups[g].nodes * c->groups[g].gpus_per_node;
        n[G] = k < left ? k : left;
        left -= n[G];
        if (n[G] < least) least = n[G];
        if (c->groups[g].gpus_per_node < node) node = c->groups[g].gpus_per_node;
        G++;
    }
    /* tp inside a node of every group: a tp group across nodes (its all-reduces on the NICs) is never the
     * faster choice per stage, and leaving it out keeps the growth to the shapes that can win */
    for (int tp = 1; tp <= max_tp && tp <= least && tp <= node && nt < 64; tp++)
        if (st_model_tp_divides(m, tp) && m->heads % tp == 0 && m->hidden % tp == 0) tps[nt++] = tp;
    if (G < 2 || nt < 2) return;
    for (int cp = 1; cp <= least; cp *= 2) {
        if (cp > 1 && p->seq % (2 * cp)) break;
        for (int64_t dp = 1; dp * cp <= least && dp <= ST_MAX_REPLICAS; dp++) {
            if (gbs % dp) continue;
            memset(idx, 0, sizeof idx);
            for (;;) { /* every tp per group: an odometer over idx */
                int pp = 0, same = 1, top = 0, whole = 1;
                for (int g = 0; g < G; g++) {
                    int64_t w = (int64_t)tps[idx[g]] * cp * dp;
                    whole = whole && n[g] % w == 0;
                    pp += whole ? (int)(n[g] / w) : 0;
                    same = same && idx[g] == idx[0];
                    if (tps[idx[g]] > top) top = tps[idx[g]];
                }
                if (whole && !same && pp <= m->layers && pp <= ST__GROUP_TP_MAX_PP) {
                    p->pp = pp, p->tp = top, p->cp = cp, p->dp = (int)dp, p->ep = 1, p->vp = 1;
                    p->schedule = ST_SCHED_1F1B;
                    p->nstage_tp = 0;
                    for (int g = 0; g < G; g++)
                        for (int64_t k = n[g] / ((int64_t)tps[idx[g]] * cp * dp); k > 0; k--)
                            p->stage_tp[p->nstage_tp++] = tps[idx[g]];
                    s->balanced_only = 1;
                    for (int64_t mbs = 1; mbs <= gbs / dp; mbs++) {
                        if ((gbs / dp) % mbs) continue;
                        p->mbs = mbs;
                        uint64_t before = s->feasible;
                        inner(s, p, NULL);
                        if (s->feasible == before) break; /* memory never falls as mbs grows */
                    }
                    s->balanced_only = 0;
                }
                int g = 0;
                while (g < G && ++idx[g] == nt) idx[g++] = 0;
                if (g == G) break;
            }
        }
    }
    p->nstage_tp = 0;
}

int st_search_enumerate(const st_model *m, const st_cluster *c, const st_profile *prof, const st_search_opts *o,
                        st_search_result *res, st_error *err) {
    memset(res, 0, sizeof *res);
    int64_t gpus = o->gpus > 0 ? o->gpus : st_cluster_gpus(c);
    int64_t seq = o->seq > 0 ? o->seq : m->seq_len;
    int64_t gbs = o->gbs;
    if (gpus > st_cluster_gpus(c))
        return st_error_set(err, ST_EINVAL, NULL, "gpus", "%lld GPUs asked for, the cluster has %lld", (long long)gpus,
                            (long long)st_cluster_gpus(c));
    if (gbs < 1) return st_error_set(err, ST_EINVAL, NULL, "gbs", "must be >= 1");
    if (o->top < 1 || o->top > 100000) return st_error_set(err, ST_EINVAL, NULL, "top", "must be 1..100000");
    if (!(c->gpu.peak_flops[o->dtype] > 0))
        return st_error_set(err, ST_EINVAL, NULL, "dtype", "%s has no %s tensor throughput", c->gpu.name,
                            st_dtype_name(o->dtype));

    search s = {.m = m, .c = c, .o = o};
    s.ctx = st_cost_ctx_new(m, c, prof);
    s.kept.cap = o->top;
    s.kept.v = calloc((size_t)o->top, sizeof *s.kept.v);
    s.kept.order = calloc((size_t)o->top, sizeof *s.kept.order);
    int rc = 0;
    if (!s.ctx || !s.kept.v || !s.kept.order) {
        rc = st_error_set(err, ST_ENOMEM, NULL, NULL, "out of memory");
        goto out;
    }
    s.t0 = st_clock_s();
    s.next_report = s.t0 + 1.0;

    st_plan *p = malloc(sizeof *p);
    if (!p) {
        rc = st_error_set(err, ST_ENOMEM, NULL, NULL, "out of memory");
        goto out;
    }
    st_plan_defaults(p);
    p->dtype = o->dtype;
    p->attention = o->attention;
    p->kernels = o->kernels;
    p->seq = seq;
    p->gbs = gbs;
    p->seed = o->seed;
    p->given = ST_GIVEN_DP | ST_GIVEN_GBS | ST_GIVEN_SEQ;
    int max_tp = o->max_tp > 0 ? o->max_tp : (int)m->heads;

    for (int tp = 1; tp <= max_tp && tp <= gpus; tp++) {
        if (!st_model_tp_divides(m, tp) || gpus % tp) continue;
        for (int cp = 1; (int64_t)tp * cp <= gpus; cp *= 2) {
            if (cp > 1 && seq % (2 * cp)) break;
            if (gpus % ((int64_t)tp * cp)) continue;
            for (int pp = 1; pp <= m->layers && pp <= ST_MAX_STAGES && (int64_t)tp * cp * pp <= gpus; pp++) {
                if (gpus % ((int64_t)tp * cp * pp)) continue;
                int64_t dp = gpus / ((int64_t)tp * cp * pp);
                if (gbs % dp) {
                    if (c->ngroups >= 2) uneven_dp(&s, p, tp, cp, pp, dp);
                    continue;
                }
                int64_t per_replica = gbs / dp;
                for (int ep = 1; ep <= (m->experts > 0 ? m->experts : 1); ep++) {
                    if (ep > 1 && (m->experts % ep || (dp * cp) % ep)) continue;
                    for (int64_t mbs = 1; mbs <= per_replica; mbs++) {
                        if (per_replica % mbs) continue;
                        int64_t mb = per_replica / mbs;
                        p->tp = tp, p->cp = cp, p->pp = pp, p->dp = (int)dp, p->ep = ep, p->mbs = mbs;
                        int fits_1f1b = 0;
                        for (int vp = 1; (int64_t)pp * vp <= m->layers && pp * vp <= ST_MAX_STAGES; vp++) {
                            if (vp > 1 && (pp == 1 || m->layers % ((int64_t)pp * vp) || mb % pp)) continue;
                            p->vp = vp;
                            p->schedule = vp > 1 ? ST_SCHED_INTERLEAVED : ST_SCHED_1F1B;
                            double lb[ST_REC_FULL + 1], *lbp = NULL;
                            /* the bounds price the slowest GPU; a balanced mixed plan beats them */
                            if (s.kept.n == s.kept.cap && c->ngroups == 0) {
                                shape_bounds(&s, p, lb);
                                lbp = lb;
                                if (lb[ST_REC_NONE] > s.kept.v[0].est.iteration_time_s) {
                                    if (vp == 1) fits_1f1b = 1; /* unknown: keep growing mbs */
                                    s.bounded += (ST_REC_FULL + 1) * inner_count(&s, p, -1);
                                    continue;
                                }
                            }
                            uint64_t before = s.feasible;
                            int skipped = inner(&s, p, lbp);
                            if (vp == 1) fits_1f1b = s.feasible > before || skipped > 0; /* skipped: unknown */
                        }
                        /* memory never falls as mbs grows (a stage holds min(stages ahead, m) micro-
                         * batches of mbs sequences, m = per_replica / mbs; the working set and the
                         * loss grow with mbs) and the interleaved schedule holds at least what 1F1B
                         * does: when no 1F1B plan of this mbs fits, no larger mbs fits either */
                        if (!fits_1f1b) break;
                    }
                }
            }
        }
    }
    if (c->ngroups >= 2) group_tp(&s, p, gpus, max_tp);
    free(p);

    /* best first */
    keep *k = &s.kept;
    int n = k->n;
    while (k->n > 1) {
        swap(k, 0, k->n - 1);
        k->n--;
        sift_down(k, 0);
    }
    k->n = n;
    res->plans = k->v;
    res->n = n;
    k->v = NULL;
    res->evaluated = s.evaluated;
    res->feasible = s.feasible;
    res->bounded = s.bounded;
    res->search_time_s = st_clock_s() - s.t0;
    if (s.nomem)
        rc = st_error_set(err, ST_ENOMEM, NULL, NULL, "out of memory");
    else if (s.nonfinite)
        rc = st_error_set(err, ST_EINVAL, NULL, s.first_nonfinite.key, "%s (%llu configurations, the first %s)",
                          s.first_nonfinite.text, (unsigned long long)s.nonfinite, s.first_nonfinite_spec);
    else if (s.evaluated == 0)
        rc = st_error_set(err, ST_ENOPLAN, NULL, "gpus",
                          "no configuration divides: %lld GPUs cannot be split as tp*cp*pp*dp with tp dividing the "
                          "%lld heads and %lld KV heads, pp <= %lld layers (and <= %d), dp dividing gbs %lld",
                          (long long)gpus, (long long)m->heads, (long long)m->kv_heads, (long long)m->layers,
                          ST_MAX_STAGES, (long long)gbs);
    else if (n == 0)
        rc = st_error_set(err, ST_ENOPLAN, NULL, NULL,
                          "no plan fits: %llu configurations of %s on %lld x %s evaluated, none fits in %.0f GiB",
                          (unsigned long long)s.evaluated, m->name, (long long)gpus, c->gpu.name,
                          c->gpu.memory_bytes / 1073741824.0);
out:
    if (s.reported) fprintf(stderr, "\r%*s\r", 72, "");
    free(s.kept.v);
    free(s.kept.order);
    st_cost_ctx_free(s.ctx);
    return rc;
}
