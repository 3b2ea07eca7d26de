/* test_stagedp.c: the inter-operator stage DP (search/stage_dp.c) against its oracles: the
 * exhaustive reference on random small instances (hash-priced stages, random holes and
 * memory-like infeasibility that grows with the stages after), every returned cut re-checked
 * against the callback and the 1F1B formula, closed-form cases, memoisation (each tuple priced
 * once), determinism, the stage cap, "nothing fits" and bad options; device groups of different
 * speed (mixed clusters) against both oracles and the closed form of uneven stages. */
#include "search/stage_dp.h"
#include "suites.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- helpers */

static uint64_t mix(uint64_t x) { /* splitmix64 finaliser */
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static double unit(uint64_t h) { return (double)(h >> 11) * 0x1.0p-53; }

/* The fixed-seed generator of the random instances. */
static uint64_t rng_state;
static int rnd(int n) {
    rng_state = mix(rng_state);
    return (int)(rng_state % (uint64_t)n);
}

/* A deterministic pseudo-random stage price: layer weights times a per-tuple factor, divided by
 * devices^(0.4..1) (more devices usually faster), communication terms that grow with the mesh
 * (a large `sync` makes pipelining pay), random holes, and an activation budget: a stage with
 * (last - first) * (after + 1) / devices > mem_cap is infinite, so a stage with more stages after
 * it can stop fitting. */
typedef struct hcost {
    uint64_t seed;
    double hole;    /* probability of an INFINITY */
    double mem_cap; /* <= 0: none */
    double sync;    /* weight of a per-stage all-reduce-like term, work * (dev - 1) / dev */
    int ngroups;    /* device groups of different speed (st_stage_dp_opts.group_gpus); 0: none */
    int group_gpus[ST_MAX_GROUPS];
    int64_t calls;
} hcost;

/* The device group of device `dev` under h's groups, as the DP counts them. */
static int hgroup(const hcost *h, int dev) {
    int at = 0;
    for (int g = 0; g < h->ngroups; g++)
        if (dev < (at += h->group_gpus[g])) return g;
    return h->ngroups ? h->ngroups - 1 : 0;
}

static double hcost_fn(void *arg, int first, int last, st_submesh m, int after, int offset) {
    hcost *h = arg;
    h->calls++;
    int dev = m.nodes * m.gpus;
    uint64_t k = mix(h->seed ^ mix((uint64_t)first * 1000003u + (uint64_t)last * 10007u +
                                   (uint64_t)m.nodes * 101u + (uint64_t)m.gpus * 7u + (uint64_t)after * 65537u));
    /* with groups, the price depends on the groups the stage covers (and on nothing else of where) */
    if (h->ngroups) k = mix(k ^ ((uint64_t)hgroup(h, offset) * 131u + (uint64_t)hgroup(h, offset + dev - 1) + 1));
    if (unit(mix(k ^ 1)) < h->hole) return INFINITY;
    if (h->mem_cap > 0 && (double)(last - first) * (after + 1) / dev > h->mem_cap) return INFINITY;
    double work = 0;
    for (int i = first; i < last; i++) work += 0.5 + unit(mix(h->seed + (uint64_t)i));
    double comm = 0.1 * unit(mix(k ^ 3)) * log2(dev + 1.0) * (last - first); /* grows with the mesh */
    double sync = h->sync * (0.5 + unit(mix(k ^ 4))) * work * (dev - 1) / dev; /* favours small meshes */
    return work * (0.9 + 0.2 * unit(k)) / pow(dev, 0.4 + 0.6 * unit(mix(k ^ 2))) + comm + sync;
}

static void opts_set(st_stage_dp_opts *o, int L, int N, int M, int64_t B, st_stage_cost_fn fn, void *arg) {
    memset(o, 0, sizeof *o);
    o->nlayers = L;
    o->nodes = N;
    o->gpus_per_node = M;
    o->microbatches = B;
    o->cost = fn;
    o->arg = arg;
}

static int stage_cap(const st_stage_dp_opts *o) {
    int s = o->max_stages ? o->max_stages : ST_MAX_STAGES;
    if (s > o->nlayers) s = o->nlayers;
    if (s > o->nodes * o->gpus_per_node) s = o->nodes * o->gpus_per_node;
    return s;
}

static int is_pow2(int x) { return x >= 1 && (x & (x - 1)) == 0; }

/* The cut is a valid one and its numbers are the callback's and the formula's. */
static void check_cut(const st_stage_dp_opts *o, const st_stage_dp_result *r) {
    ck_assert_int_ge(r->nstages, 1);
    ck_assert_int_le(r->nstages, stage_cap(o));
    ck_assert_int_eq(r->first[0], 0);
    ck_assert_int_eq(r->first[r->nstages], o->nlayers);
    int devices = 0;
    double sum = 0, mx = 0;
    for (int i = 0; i < r->nstages; i++) {
        ck_assert_int_lt(r->first[i], r->first[i + 1]);
        st_submesh m = r->mesh[i];
        if (m.nodes == 1) ck_assert(is_pow2(m.gpus) && m.gpus <= o->gpus_per_node);
        else ck_assert(m.nodes >= 2 && m.nodes <= o->nodes && m.gpus == o->gpus_per_node);
        double c = o->cost(o->arg, r->first[i], r->first[i + 1], m, r->nstages - 1 - i, devices);
        devices += m.nodes * m.gpus;
        ck_assert_msg(c == r->stage_s[i], "stage %d: %.17g, callback %.17g", i, r->stage_s[i], c);
        ck_assert(isfinite(c));
        sum += c;
        if (c > mx) mx = c;
    }
    ck_assert_int_eq(devices, o->nodes * o->gpus_per_node);
    ck_assert_double_eq(r->max_stage_s, mx);
    double t = sum + (double)(o->microbatches - 1) * mx;
    ck_assert_double_eq_tol(r->total_s, t, 1e-12 * t);
}

/* A second oracle for sizes the exhaustive one cannot walk: a DP that keeps, for every (stages s,
 * first layer k, devices d), the whole Pareto front of (sum, slowest) over the cuts of [k, L) into
 * s stages on d devices. No t_max axis, no pruning: min over the fronts of sum + (B - 1) slowest. */
typedef struct front {
    int n, cap, done;
    double *sum, *mx;
} front;

typedef struct pareto {
    const st_stage_dp_opts *o;
    int L, D, K;
    st_submesh shape[32];
    front *f; /* (L + 1) x (L + 1) x (D + 1) */
} pareto;

static void front_add(front *f, double sum, double mx) {
    for (int i = 0; i < f->n; i++)
        if (f->sum[i] <= sum && f->mx[i] <= mx) return; /* dominated (or equal) */
    int m = 0;
    for (int i = 0; i < f->n; i++)
        if (!(sum <= f->sum[i] && mx <= f->mx[i])) {
            f->sum[m] = f->sum[i];
            f->mx[m] = f->mx[i];
            m++;
        }
    f->n = m;
    if (f->n == f->cap) {
        f->cap = f->cap ? 2 * f->cap : 8;
        f->sum = realloc(f->sum, sizeof *f->sum * f->cap);
        f->mx = realloc(f->mx, sizeof *f->mx * f->cap);
        ck_assert(f->sum && f->mx);
    }
    f->sum[f->n] = sum;
    f->mx[f->n] = mx;
    f->n++;
}

static front *pareto_get(pareto *p, int s, int k, int d) {
    front *f = &p->f[((size_t)s * (p->L + 1) + k) * (p->D + 1) + d];
    if (f->done) return f;
    f->done = 1;
    if (s == 0) {
        if (k == p->L && d == 0) front_add(f, 0, 0);
        return f;
    }
    for (int l = k + 1; l <= p->L; l++)
        for (int j = 0; j < p->K; j++) {
            int sz = p->shape[j].nodes * p->shape[j].gpus;
            if (sz > d) continue;
            front *g = pareto_get(p, s - 1, l, d - sz);
            if (g->n == 0) continue;
            double c = p->o->cost(p->o->arg, k, l, p->shape[j], s - 1, p->D - d);
            if (!isfinite(c)) continue;
            for (int i = 0; i < g->n; i++) front_add(f, c + g->sum[i], c > g->mx[i] ? c : g->mx[i]);
        }
    return f;
}

/* INFINITY when no cut fits. */
static double pareto_best(const st_stage_dp_opts *o) {
    pareto p = {.o = o, .L = o->nlayers, .D = o->nodes * o->gpus_per_node};
    for (int g = 1; g <= o->gpus_per_node; g *= 2) p.shape[p.K++] = (st_submesh){1, g};
    for (int n = 2; n <= o->nodes; n++) p.shape[p.K++] = (st_submesh){n, o->gpus_per_node};
    size_t nf = (size_t)(p.L + 1) * (p.L + 1) * (p.D + 1);
    p.f = calloc(nf, sizeof *p.f);
    ck_assert(p.f);
    double best = INFINITY;
    for (int s = 1; s <= stage_cap(o); s++) {
        front *f = pareto_get(&p, s, 0, p.D);
        for (int i = 0; i < f->n; i++) {
            double t = f->sum[i] + (double)(o->microbatches - 1) * f->mx[i];
            if (t < best) best = t;
        }
    }
    for (size_t i = 0; i < nf; i++) {
        free(p.f[i].sum);
        free(p.f[i].mx);
    }
    free(p.f);
    return best;
}

/* ---------------------------------------------------------------- tests */

/* DP against the exhaustive reference on random instances. */
START_TEST(test_matches_brute_force) {
    static const int mesh[][2] = {{1, 1}, {1, 2}, {1, 4}, {2, 2}, {1, 8}, {2, 4}, {3, 2}};
    static const int64_t Bs[] = {1, 2, 4, 8};
    static const double holes[] = {0, 0.1, 0.3};
    static const double caps[] = {0, 0.75, 1.5, 3};
    static const double syncs[] = {0, 0.5, 2};
    rng_state = 20240611;
    int n = 0, feasible = 0, multi = 0, capped = 0;
    double maxdiff = 0;
    static const int64_t bigBs[] = {2, 4, 16, 64};
    for (int it = 0; it < 100; it++) {
        /* then larger ones, whose many candidate t_max exercise the branch and bound */
        int big = it >= 70, L = big ? 7 + rnd(6) : 1 + rnd(6);
        int mi = rnd(7);
        hcost h = {.seed = mix((uint64_t)it), .hole = holes[rnd(3)], .mem_cap = caps[rnd(4)], .sync = syncs[rnd(3)]};
        st_stage_dp_opts o;
        opts_set(&o, L, mesh[mi][0], mesh[mi][1], big ? bigBs[rnd(4)] : Bs[rnd(4)], hcost_fn, &h);
        if (rnd(4) == 0) o.max_stages = 1 + rnd(L);
        st_stage_dp_result *a = malloc(sizeof *a), *b = malloc(sizeof *b);
        st_error ea, eb;
        int ra = st_stage_dp(&o, a, &ea), rb = st_stage_dp_brute(&o, b, &eb);
        ck_assert_msg(ra == rb, "instance %d (L=%d, %dx%d): dp %d (%s), brute %d (%s)", it, L, o.nodes,
                      o.gpus_per_node, ra, ra ? ea.text : "", rb, rb ? eb.text : "");
        ck_assert(ra == 0 || ra == ST_ENOPLAN);
        if (ra == 0) {
            check_cut(&o, a);
            check_cut(&o, b);
            double diff = fabs(a->total_s - b->total_s) / b->total_s;
            double pb = pareto_best(&o);
            ck_assert_msg(fabs(pb - b->total_s) <= 1e-12 * b->total_s, "instance %d: pareto %.17g, brute %.17g", it,
                          pb, b->total_s);
            ck_assert_msg(diff <= 1e-12, "instance %d: dp %.17g, brute %.17g", it, a->total_s, b->total_s);
            if (diff > maxdiff) maxdiff = diff;
            feasible++;
            multi += a->nstages > 1;
            capped += o.max_stages != 0;
            ck_assert_int_gt(a->cost_calls, 0);
            ck_assert(a->solve_time_s >= 0);
        }
        n++;
        free(a);
        free(b);
    }
    fprintf(stderr, "stagedp: %d instances, %d feasible, %d multi-stage, %d capped, maxdiff %.3g\n", n, feasible, multi,
            capped, maxdiff);
    ck_assert_int_ge(feasible, 30);
    ck_assert_int_ge(multi, 10);
    ck_assert_int_ge(n - feasible, 3); /* infeasible instances occur and agree */
    ck_assert_int_ge(capped, 3);
}
END_TEST

/* DP against the Pareto oracle where the exhaustive one cannot go: more layers and GPUs, and
 * micro-batch counts that make the slowest stage matter, so many t_max candidates are in play. */
START_TEST(test_matches_pareto) {
    static const int mesh[][2] = {{2, 4}, {4, 4}, {1, 16}, {3, 4}, {2, 8}, {5, 2}};
    static const int64_t Bs[] = {2, 4, 16, 64, 1024};
    static const double caps[] = {0, 1.5, 3};
    static const double syncs[] = {0.5, 2, 4};
    rng_state = 77;
    int feasible = 0, multi = 0;
    for (int it = 0; it < 40; it++) {
        int mi = rnd(6);
        hcost h = {.seed = mix((uint64_t)it + 1000), .hole = rnd(2) ? 0.1 : 0, .mem_cap = caps[rnd(3)],
                   .sync = syncs[rnd(3)]};
        st_stage_dp_opts o;
        opts_set(&o, 8 + rnd(9), mesh[mi][0], mesh[mi][1], Bs[rnd(5)], hcost_fn, &h);
        st_stage_dp_result *a = malloc(sizeof *a);
        st_error err;
        int rc = st_stage_dp(&o, a, &err);
        double pb = pareto_best(&o);
        ck_assert_msg(rc == (isfinite(pb) ? 0 : ST_ENOPLAN), "instance %d: rc %d (%s), pareto %g", it, rc,
                      rc ? err.text : "", pb);
        if (rc == 0) {
            check_cut(&o, a);
            ck_assert_msg(fabs(a->total_s - pb) <= 1e-12 * pb,
                          "instance %d (L=%d, %dx%d, B=%lld): dp %.17g, pareto %.17g", it, o.nlayers, o.nodes,
                          o.gpus_per_node, (long long)o.microbatches, a->total_s, pb);
            feasible++;
            multi += a->nstages > 2;
        }
        free(a);
    }
    fprintf(stderr, "stagedp: pareto oracle, 40 instances, %d feasible, %d with 3+ stages\n", feasible, multi);
    ck_assert_int_ge(feasible, 30);
    ck_assert_int_ge(multi, 10);
}
END_TEST

static double layers_per_gpu(void *arg, int first, int last, st_submesh m, int after, int offset) {
    const double *cap_layers = arg; /* a stage holds at most this many layers (memory) */
    if (cap_layers && last - first > *cap_layers) return INFINITY;
    return (double)(last - first) / (m.nodes * m.gpus);
}

/* Uniform layers, cost = layers / GPUs. Without a memory limit pipelining only adds bubbles, so
 * one stage on the whole cluster wins: T = B * L / (N M). With at most two layers per stage, 8
 * layers need four stages; (1, 2) each makes every stage 1 s (any 1-GPU stage would take 2 s),
 * so T = 4 + (B - 1). */
START_TEST(test_uniform_layers) {
    st_stage_dp_opts o;
    st_stage_dp_result *r = malloc(sizeof *r), *b = malloc(sizeof *b);
    st_error err;
    opts_set(&o, 8, 2, 4, 8, layers_per_gpu, NULL);
    ck_assert_int_eq(st_stage_dp(&o, r, &err), 0);
    ck_assert_int_eq(r->nstages, 1);
    ck_assert_int_eq(r->mesh[0].nodes, 2);
    ck_assert_int_eq(r->mesh[0].gpus, 4);
    ck_assert_double_eq_tol(r->total_s, 8.0, 1e-12);
    check_cut(&o, r);

    double cap = 2;
    o.arg = &cap;
    ck_assert_int_eq(st_stage_dp(&o, r, &err), 0);
    check_cut(&o, r);
    ck_assert_int_eq(r->nstages, 4);
    for (int i = 0; i < 4; i++) {
        ck_assert_int_eq(r->first[i], 2 * i);
        ck_assert_int_eq(r->mesh[i].nodes, 1);
        ck_assert_int_eq(r->mesh[i].gpus, 2);
        ck_assert_double_eq(r->stage_s[i], 1.0);
    }
    ck_assert_double_eq_tol(r->total_s, 4.0 + 7.0, 1e-12);
    ck_assert_int_eq(st_stage_dp_brute(&o, b, &err), 0);
    ck_assert_double_eq_tol(b->total_s, r->total_s, 1e-12);

    /* 64 layers on 8 x 8 GPUs, at most 8 layers a stage: eight stages of 8 layers on (1, 8) each,
     * every stage 1 s; T = 8 + (B - 1). */
    cap = 8;
    opts_set(&o, 64, 8, 8, 16, layers_per_gpu, &cap);
    ck_assert_int_eq(st_stage_dp(&o, r, &err), 0);
    check_cut(&o, r);
    ck_assert_int_eq(r->nstages, 8);
    for (int i = 0; i < 8; i++) {
        ck_assert_int_eq(r->first[i], 8 * i);
        ck_assert_int_eq(r->mesh[i].gpus * r->mesh[i].nodes, 8);
    }
    ck_assert_double_eq_tol(r->total_s, 8.0 + 15.0, 1e-12);
    free(r);
    free(b);
}
END_TEST

/* Every (first, last, mesh, stages_after) reaches the callback at most once, and cost_calls counts
 * the calls. */
typedef struct counted {
    hcost h;
    int L, K, S;
    unsigned char seen[8 * 9 * 8 * 8];
    int dup;
} counted;

static double counted_fn(void *arg, int first, int last, st_submesh m, int after, int offset) {
    counted *c = arg;
    int j = m.nodes == 1 ? (m.gpus == 1 ? 0 : m.gpus == 2 ? 1 : 2) : 1 + m.nodes; /* M = 4 */
    int idx = ((first * (c->L + 1) + last) * c->K + j) * c->S + after;
    if (c->seen[idx]++) c->dup++;
    return hcost_fn(&c->h, first, last, m, after, offset);
}

START_TEST(test_memoised_and_deterministic) {
    counted *c = calloc(1, sizeof *c);
    c->h = (hcost){.seed = 7, .hole = 0.1, .mem_cap = 1.5};
    c->L = 7;
    c->K = 5; /* (1,1) (1,2) (1,4) (2,4) (3,4) */
    c->S = 7;
    st_stage_dp_opts o;
    opts_set(&o, 7, 3, 4, 16, counted_fn, c);
    st_stage_dp_result *a = malloc(sizeof *a), *b = malloc(sizeof *b);
    st_error err;
    ck_assert_int_eq(st_stage_dp(&o, a, &err), 0);
    ck_assert_int_eq(c->dup, 0);
    ck_assert_int_eq(a->cost_calls, c->h.calls);
    ck_assert_int_gt(a->cost_calls, 0);
    check_cut(&o, a);
    ck_assert_int_eq(st_stage_dp(&o, b, &err), 0);
    b->solve_time_s = a->solve_time_s;
    ck_assert(memcmp(a, b, sizeof *a) == 0);
    free(a);
    free(b);
    free(c);
}
END_TEST

/* Device groups of different speed (a mixed cluster's node groups): the DP against both oracles on
 * random instances whose stage prices depend on the groups a stage covers; the exhaustive one
 * prices every stage at its own first device. */
START_TEST(test_groups_match_oracles) {
    static const int mesh[][2] = {{2, 2}, {1, 8}, {2, 4}, {3, 2}, {3, 4}, {4, 2}};
    static const int64_t Bs[] = {1, 2, 8, 64};
    rng_state = 4242;
    int feasible = 0, multi = 0, spanning = 0;
    for (int it = 0; it < 60; it++) {
        int mi = rnd(6), D = mesh[mi][0] * mesh[mi][1];
        hcost h = {.seed = mix((uint64_t)it + 5000), .hole = rnd(2) ? 0.1 : 0, .mem_cap = rnd(2) ? 1.5 : 0,
                   .sync = 0.5};
        /* two or three groups; the last one also holds every device after the listed ones */
        h.ngroups = 2 + rnd(2);
        for (int g = 0; g < h.ngroups; g++) h.group_gpus[g] = 1 + rnd(D / 2);
        st_stage_dp_opts o;
        opts_set(&o, 2 + rnd(it < 40 ? 5 : 8), mesh[mi][0], mesh[mi][1], Bs[rnd(4)], hcost_fn, &h);
        o.ngroups = h.ngroups;
        memcpy(o.group_gpus, h.group_gpus, sizeof o.group_gpus);
        st_stage_dp_result *a = malloc(sizeof *a), *b = malloc(sizeof *b);
        st_error ea, eb;
        int ra = st_stage_dp(&o, a, &ea), rb = st_stage_dp_brute(&o, b, &eb);
        ck_assert_msg(ra == rb, "instance %d: dp %d (%s), brute %d (%s)", it, ra, ra ? ea.text : "", rb,
                      rb ? eb.text : "");
        if (ra == 0) {
            check_cut(&o, a);
            check_cut(&o, b);
            ck_assert_msg(fabs(a->total_s - b->total_s) <= 1e-12 * b->total_s, "instance %d: dp %.17g, brute %.17g",
                          it, a->total_s, b->total_s);
            double pb = pareto_best(&o);
            ck_assert_msg(fabs(pb - b->total_s) <= 1e-12 * b->total_s, "instance %d: pareto %.17g, brute %.17g", it,
                          pb, b->total_s);
            feasible++;
            multi += a->nstages > 1;
            for (int i = 0, dev = 0; i < a->nstages; dev += a->mesh[i].nodes * a->mesh[i].gpus, i++)
                spanning += hgroup(&h, dev) != hgroup(&h, dev + a->mesh[i].nodes * a->mesh[i].gpus - 1);
        }
        free(a);
        free(b);
    }
    fprintf(stderr, "stagedp: groups, 60 instances, %d feasible, %d multi-stage, %d stages spanning groups\n",
            feasible, multi, spanning);
    ck_assert_int_ge(feasible, 30);
    ck_assert_int_ge(multi, 10);
    ck_assert_int_ge(spanning, 1);
}
END_TEST

/* Two groups of 8 GPUs; a stage's layer takes a on the first group's GPUs and h on the second's (the
 * slower where a stage spans both), divided by the stage's share of 8 GPUs. */
typedef struct speeds {
    double per_layer[2];
    int max_layers; /* a stage holds at most this many (memory) */
} speeds;

static double group_speed_fn(void *arg, int first, int last, st_submesh m, int after, int offset) {
    const speeds *sp = arg;
    int dev = m.nodes * m.gpus, g0 = offset >= 8, g1 = offset + dev - 1 >= 8;
    if (last - first > sp->max_layers) return INFINITY;
    double a = sp->per_layer[g0], b = sp->per_layer[g1];
    return (last - first) * (a > b ? a : b) * 8.0 / dev;
}

/* The closed form of AMP's and HexiScale's uneven stages: two stages, one per group (30 layers do
 * not fit one stage of 20), balanced when n_a a = n_h h, so n_a = L h / (a + h). a = 3, h = 2, L = 30:
 * 12 layers on the slow group and 18 on the fast, both stages 36 s, T = 2 * 36 + (B - 1) * 36 = 324
 * for B = 8; the even split (15, 15) would take 45 + 30 + 7 * 45 = 390, 1.2037x more. L = 31: the
 * continuous optimum 12.4 rounds to 12 (36 and 38 s: 74 + 7 * 38 = 340; 13 gives 348). Equal speeds:
 * the even split. */
START_TEST(test_groups_uneven_stages) {
    speeds sp = {{3, 2}, 20};
    st_stage_dp_opts o;
    st_stage_dp_result *r = malloc(sizeof *r), *b = malloc(sizeof *b);
    st_error err;
    opts_set(&o, 30, 2, 8, 8, group_speed_fn, &sp);
    o.max_stages = 2;
    o.ngroups = 2;
    o.group_gpus[0] = o.group_gpus[1] = 8;
    ck_assert_int_eq(st_stage_dp(&o, r, &err), 0);
    check_cut(&o, r);
    ck_assert_int_eq(r->nstages, 2);
    ck_assert_int_eq(r->first[1], 12);
    ck_assert_double_eq_tol(r->stage_s[0], 36.0, 1e-12);
    ck_assert_double_eq_tol(r->stage_s[1], 36.0, 1e-12);
    ck_assert_double_eq_tol(r->total_s, 324.0, 1e-12);
    double even = 15 * 3.0 + 15 * 2.0 + 7 * 15 * 3.0;
    ck_assert_double_eq_tol(even / r->total_s, 390.0 / 324.0, 1e-12);
    ck_assert_int_eq(st_stage_dp_brute(&o, b, &err), 0);
    ck_assert_double_eq_tol(b->total_s, r->total_s, 1e-12);

    o.nlayers = 31;
    ck_assert_int_eq(st_stage_dp(&o, r, &err), 0);
    ck_assert(fabs(r->first[1] - 31 * 2.0 / 5.0) <= 1);
    ck_assert_int_eq(r->first[1], 12);
    ck_assert_double_eq_tol(r->total_s, 340.0, 1e-12);

    sp.per_layer[1] = 3;
    o.nlayers = 30;
    ck_assert_int_eq(st_stage_dp(&o, r, &err), 0);
    ck_assert_int_eq(r->first[1], 15);
    ck_assert_double_eq_tol(r->total_s, 90.0 + 7 * 45.0, 1e-12);
    free(r);
    free(b);
}
END_TEST

/* The cap holds and the answer is the best among cuts with at most that many stages. */
START_TEST(test_max_stages) {
    double cap = 2;
    st_stage_dp_opts o;
    st_stage_dp_result *r = malloc(sizeof *r), *b = malloc(sizeof *b);
    st_error err;
    opts_set(&o, 8, 2, 4, 8, layers_per_gpu, &cap);
    o.max_stages = 3; /* four stages are needed */
    ck_assert_int_eq(st_stage_dp(&o, r, &err), ST_ENOPLAN);
    ck_assert_int_eq(st_stage_dp_brute(&o, b, &err), ST_ENOPLAN);
    o.max_stages = 4;
    ck_assert_int_eq(st_stage_dp(&o, r, &err), 0);
    ck_assert_int_eq(r->nstages, 4);

    /* the first seeded instance whose best cut has at least four stages, then capped below it */
    hcost h = {.sync = 2};
    opts_set(&o, 6, 2, 4, 2, hcost_fn, &h);
    int free_stages = 0;
    for (h.seed = 1; h.seed <= 200 && free_stages < 4; h.seed++) {
        if (st_stage_dp(&o, r, &err) == 0) free_stages = r->nstages;
        if (free_stages >= 4) break;
    }
    ck_assert_msg(free_stages >= 4, "no seed gives a 4-stage optimum");
    double free_t = r->total_s;
    int capped_ok = 0;
    for (int cap_s = free_stages - 1; cap_s >= 1; cap_s--) {
        o.max_stages = cap_s;
        int rc = st_stage_dp(&o, r, &err), rb = st_stage_dp_brute(&o, b, &err);
        ck_assert_int_eq(rc, rb);
        if (rc) continue;
        capped_ok++;
        ck_assert_int_le(r->nstages, cap_s);
        check_cut(&o, r);
        ck_assert_double_eq_tol(r->total_s, b->total_s, 1e-12 * b->total_s);
        ck_assert(r->total_s >= free_t);
    }
    ck_assert_int_ge(capped_ok, 1);
    free(r);
    free(b);
}
END_TEST

static double always_inf(void *arg, int first, int last, st_submesh m, int after, int offset) { return INFINITY; }

/* Only one-GPU stages are finite: two layers cannot cover four GPUs. */
static double one_gpu_only(void *arg, int first, int last, st_submesh m, int after, int offset) {
    return m.nodes * m.gpus == 1 ? 1.0 : INFINITY;
}

START_TEST(test_no_plan) {
    st_stage_dp_opts o;
    st_stage_dp_result *r = malloc(sizeof *r);
    st_error err;
    opts_set(&o, 4, 2, 2, 4, always_inf, NULL);
    ck_assert_int_eq(st_stage_dp(&o, r, &err), ST_ENOPLAN);
    ck_assert_int_eq(err.code, ST_ENOPLAN);
    ck_assert_msg(strncmp(err.text, "no pipeline cut fits: ", 22) == 0, "%s", err.text);
    ck_assert_ptr_nonnull(strstr(err.text, "4 layers on 2 x 2 GPUs"));
    ck_assert_int_eq(r->nstages, 0);
    ck_assert_int_gt(r->cost_calls, 0);
    ck_assert_int_eq(st_stage_dp_brute(&o, r, &err), ST_ENOPLAN);

    opts_set(&o, 2, 1, 4, 4, one_gpu_only, NULL);
    ck_assert_int_eq(st_stage_dp(&o, r, &err), ST_ENOPLAN);
    ck_assert_msg(strncmp(err.text, "no pipeline cut fits: ", 22) == 0, "%s", err.text);
    ck_assert_int_eq(st_stage_dp_brute(&o, r, &err), ST_ENOPLAN);
    /* with four layers, four one-GPU stages fit */
    o.nlayers = 4;
    ck_assert_int_eq(st_stage_dp(&o, r, &err), 0);
    ck_assert_int_eq(r->nstages, 4);
    ck_assert_double_eq_tol(r->total_s, 4.0 + 3.0, 1e-12);
    free(r);
}
END_TEST

static double nan_fn(void *arg, int first, int last, st_submesh m, int after, int offset) {
    return last - first == 2 ? NAN : 1.0;
}

START_TEST(test_bad_options) {
    hcost h = {.seed = 1};
    st_stage_dp_opts good, o;
    opts_set(&good, 4, 2, 4, 4, hcost_fn, &h);
    st_stage_dp_result *r = malloc(sizeof *r);
    st_error err;
    ck_assert_int_eq(st_stage_dp(&good, r, &err), 0);
    static const struct {
        const char *key;
        int field, value;
    } bad[] = {{"nlayers", 0, 0},       {"nlayers", 0, -3},       {"nlayers", 0, ST_MAX_LAYERS + 1},
               {"nodes", 1, 0},         {"gpus_per_node", 2, 0},  {"gpus_per_node", 2, 3},
               {"gpus_per_node", 2, 6}, {"microbatches", 3, 0},   {"microbatches", 3, -1},
               {"max_stages", 4, -1},   {"max_stages", 4, ST_MAX_STAGES + 1}, {"cost", 5, 0},
               {"ngroups", 6, -1},      {"ngroups", 6, ST_MAX_GROUPS + 1},    {"group_gpus", 7, 0}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        o = good;
        switch (bad[i].field) {
        case 0: o.nlayers = bad[i].value; break;
        case 1: o.nodes = bad[i].value; break;
        case 2: o.gpus_per_node = bad[i].value; break;
        case 3: o.microbatches = bad[i].value; break;
        case 4: o.max_stages = bad[i].value; break;
        case 5: o.cost = NULL; break;
        case 6: o.ngroups = bad[i].value; break;
        case 7: o.ngroups = 2, o.group_gpus[0] = 4, o.group_gpus[1] = bad[i].value; break;
        }
        st_error_clear(&err);
        ck_assert_int_eq(st_stage_dp(&o, r, &err), ST_EINVAL);
        ck_assert_str_eq(err.key, bad[i].key);
        st_error_clear(&err);
        ck_assert_int_eq(st_stage_dp_brute(&o, r, &err), ST_EINVAL);
        ck_assert_str_eq(err.key, bad[i].key);
    }
    /* tables that would not fit are refused before allocation */
    o = good;
    o.nlayers = 20000;
    o.nodes = 64;
    o.gpus_per_node = 8;
    ck_assert_int_eq(st_stage_dp(&o, r, &err), ST_EINVAL);
    ck_assert_str_eq(err.key, "nlayers");
    /* the reference refuses sizes it cannot walk */
    o = good;
    o.nlayers = 40;
    o.nodes = 8;
    o.gpus_per_node = 8;
    ck_assert_int_eq(st_stage_dp_brute(&o, r, &err), ST_EINVAL);
    ck_assert_str_eq(err.key, "nlayers");
    /* a callback returning NaN is reported, naming the stage */
    opts_set(&o, 4, 1, 2, 4, nan_fn, NULL);
    ck_assert_int_eq(st_stage_dp(&o, r, &err), ST_EINVAL);
    ck_assert_str_eq(err.key, "cost");
    ck_assert_ptr_nonnull(strstr(err.text, "layers [0, 2)"));
    ck_assert_int_eq(st_stage_dp_brute(&o, r, &err), ST_EINVAL);
    free(r);
}
END_TEST

Suite *suite_stagedp(void) {
    Suite *s = suite_create("stagedp");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_matches_brute_force);
    tcase_add_test(tc, test_matches_pareto);
    tcase_add_test(tc, test_uniform_layers);
    tcase_add_test(tc, test_memoised_and_deterministic);
    tcase_add_test(tc, test_groups_match_oracles);
    tcase_add_test(tc, test_groups_uneven_stages);
    tcase_add_test(tc, test_max_stages);
    tcase_add_test(tc, test_no_plan);
    tcase_add_test(tc, test_bad_options);
    suite_add_tcase(s, tc);
    return s;
}
