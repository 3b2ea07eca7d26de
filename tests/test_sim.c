/* test_sim.c: the Check suite of the discrete-event simulator (src/sim/: the engine, its setup, the
 * network and its max-min sharing) and the Chrome trace writer (traces/chrome.c).
 *
 * Programs are built by hand with a tiny builder (no lowering involved), so each test states its
 * schedule. Oracles:
 * - closed forms: a lone op; concurrency of two streams; a collective at the latest arrival; a
 *   rendezvous; 1F1B and GPipe with pp stages and m micro-batches take (m + pp - 1)(t_f + t_b)
 *   (Narayanan et al. SC'21, section 2.2); their peak activation memory is m micro-batches for
 *   GPipe and pp - s for stage s under 1F1B (Korthikanti et al. 2022, section 4.2.3);
 * - a trivially correct reference on random programs: operations are generated in one global
 *   order (compute on one rank, a collective on all, a send/recv pair between two), every wait
 *   points to an earlier operation, so start times follow by one pass in that order; the engine
 *   must agree exactly;
 * - max-min sharing (maxmin.c), through the engine and alone: a fluid reference that recomputes
 *   every rate over every flow and link at every event;
 * - bad input: a deadlock and an out-of-memory stop must name the rank and the instruction (the
 *   validator's own rules: test_validate.c);
 * - the trace: same input, same bytes; valid JSON with metadata, complete, flow and counter events,
 *   and no two complete events of one (pid, tid) overlapping.
 */
#include "src/sim/sim.h"
#include "src/sim/sim_private.h"
#include "suites.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ------------------------------------------------------------ builder */

static st_lowered *lw_new(int nranks) {
    st_lowered *l = calloc(1, sizeof *l);
    ck_assert_ptr_nonnull(l);
    l->nranks = nranks;
    l->progs = calloc((size_t)nranks, sizeof *l->progs);
    ck_assert_ptr_nonnull(l->progs);
    for (int r = 0; r < nranks; r++) {
        l->progs[r].rank = r;
        l->progs[r].stage = r;
        l->progs[r].replicas = 1;
    }
    l->microbatches = 1;
    return l;
}

static void lw_free(st_lowered *l) {
    for (int r = 0; r < l->nranks; r++)
        free(l->progs[r].ins);
    for (int g = 0; g < l->ngroups; g++)
        free(l->groups[g].ranks);
    free(l->progs);
    free(l->groups);
    free(l->links);
    free(l->routes);
    free(l->hops);
    free(l);
}

/* appends an instruction to rank r; returns its index */
static int lw_add(st_lowered *l, int r, st_ins_kind kind, int stream, double dur_s, const char *label, int dep0,
                  int dep1) {
    st_program *p = &l->progs[r];
    if (p->n == p->cap) {
        p->cap = p->cap ? 2 * p->cap : 16;
        p->ins = realloc(p->ins, (size_t)p->cap * sizeof *p->ins);
        ck_assert_ptr_nonnull(p->ins);
    }
    st_ins *in = &p->ins[p->n];
    memset(in, 0, sizeof *in);
    in->kind = kind;
    in->phase = ST_PHASE_OTHER;
    in->stream = stream;
    in->chunk = 0;
    in->mb = -1;
    in->dur_s = dur_s;
    in->peer = -1; /* and group */
    in->route = -1;
    in->dep[0] = dep0;
    in->dep[1] = dep1;
    in->label = label;
    return p->n++;
}

static st_ins *lw_ins(st_lowered *l, int r, int i) { return &l->progs[r].ins[i]; }

static int lw_compute(st_lowered *l, int r, int stream, double dur_s, st_phase ph, int mb, int dep0, int dep1) {
    static const char *const labels[ST_PHASE_COUNT] = {"fwd",       "bwd",       "bwd-i", "bwd-w",
                                                       "recompute", "optimizer", "other"};
    int i = lw_add(l, r, ST_INS_COMPUTE, stream, dur_s, labels[ph], dep0, dep1);
    lw_ins(l, r, i)->phase = ph;
    lw_ins(l, r, i)->mb = mb;
    return i;
}

static int lw_p2p(st_lowered *l, int r, st_ins_kind kind, int stream, int peer, int tag, double dur_s,
                  const char *label, int mb, int dep0) {
    int i = lw_add(l, r, kind, stream, dur_s, label, dep0, -1);
    lw_ins(l, r, i)->peer = peer;
    lw_ins(l, r, i)->tag = tag;
    lw_ins(l, r, i)->mb = mb;
    return i;
}

static int lw_coll(st_lowered *l, int r, int stream, int group, double dur_s, int dep0) {
    int i = lw_add(l, r, ST_INS_COLL, stream, dur_s, "all-reduce", dep0, -1);
    lw_ins(l, r, i)->coll = ST_COLL_ALLREDUCE;
    lw_ins(l, r, i)->group = group;
    return i;
}

/* a group of ranks[0..n); returns its index */
static int lw_group(st_lowered *l, st_group_kind kind, int n, const int *ranks) {
    l->groups = realloc(l->groups, (size_t)(l->ngroups + 1) * sizeof *l->groups);
    ck_assert_ptr_nonnull(l->groups);
    st_group_def *g = &l->groups[l->ngroups];
    g->kind = kind;
    g->n = n;
    g->ranks = malloc((size_t)n * sizeof *g->ranks);
    ck_assert_ptr_nonnull(g->ranks);
    memcpy(g->ranks, ranks, (size_t)n * sizeof *ranks);
    return l->ngroups++;
}

static void run_ok(const st_lowered *l, double limit, st_trace *tr, st_sim_result *res) {
    st_error err;
    st_error_clear(&err);
    int rc = st_sim_run(l, limit, tr, res, &err);
    ck_assert_msg(rc == 0, "st_sim_run: %d %s", rc, err.text);
}

#define EPS 1e-9
#define ck_assert_time(x, y) ck_assert_double_eq_tol((x), (y), EPS)

/* ---- network (program.h, "Network") */

/* a link of capacity cap bytes/s, shown on `rank`'s trace (-1: nowhere); returns its index */
static int lw_link(st_lowered *l, double cap, int rank, const char *name) {
    l->links = realloc(l->links, (size_t)(l->nlinks + 1) * sizeof *l->links);
    ck_assert_ptr_nonnull(l->links);
    st_link *k = &l->links[l->nlinks];
    memset(k, 0, sizeof *k);
    k->bytes_per_s = cap;
    k->rank = rank;
    snprintf(k->name, sizeof k->name, "%s", name);
    return l->nlinks++;
}

/* a route over links[i] crossed counts[i] times (NULL: once each), rate alone `rate` */
static int lw_route(st_lowered *l, double rate, int n, const int *links, const int *counts) {
    l->routes = realloc(l->routes, (size_t)(l->nroutes + 1) * sizeof *l->routes);
    l->hops = realloc(l->hops, (size_t)(l->nhops + n + 1) * sizeof *l->hops);
    ck_assert_ptr_nonnull(l->routes);
    ck_assert_ptr_nonnull(l->hops);
    l->routes[l->nroutes] = (st_route){l->nhops, n, rate};
    for (int i = 0; i < n; i++)
        l->hops[l->nhops++] = (st_hop){links[i], counts ? counts[i] : 1};
    return l->nroutes++;
}

/* rank r: compute for `after` s, then a collective of its own one-rank group on `route` that
 * takes dur_s alone, of which lat_s latency; returns the collective's index */
static int lw_flow(st_lowered *l, int r, int route, double after, double dur_s, double lat_s) {
    int g = lw_group(l, ST_GRP_DP, 1, &r);
    int c = after > 0 ? lw_compute(l, r, ST_STREAM_COMPUTE, after, ST_PHASE_FWD, 0, -1, -1) : -1;
    int i = lw_coll(l, r, ST_STREAM_DP, g, dur_s, c);
    lw_ins(l, r, i)->route = route;
    lw_ins(l, r, i)->latency_s = lat_s;
    lw_ins(l, r, i)->label = "flow";
    return i;
}

/* ------------------------------------------------------------ basic semantics */

START_TEST(single_compute) {
    st_lowered *l = lw_new(1);
    lw_compute(l, 0, ST_STREAM_COMPUTE, 2.5, ST_PHASE_FWD, 0, -1, -1);
    st_sim_result res;
    run_ok(l, 0, NULL, &res);
    ck_assert_time(res.iteration_time_s, 2.5);
    ck_assert_uint_eq(res.events, 1);
    ck_assert_int_eq(res.nranks, 1);
    ck_assert_time(res.ranks[0].busy_s[ST_STREAM_COMPUTE], 2.5);
    ck_assert_time(res.ranks[0].end_s, 2.5);
    ck_assert_time(res.ranks[0].compute_idle_s, 0);
    ck_assert_time(res.ranks[0].bubble_s, 0);
    ck_assert_int_eq(res.oom, 0);
    st_sim_result_destroy(&res);
    lw_free(l);
}
END_TEST

START_TEST(streams_overlap) {
    /* compute 3 s and p2p 2 s run side by side: 3 s, not 5 */
    st_lowered *l = lw_new(1);
    lw_compute(l, 0, ST_STREAM_COMPUTE, 3, ST_PHASE_FWD, 0, -1, -1);
    lw_compute(l, 0, ST_STREAM_P2P, 2, ST_PHASE_OTHER, -1, -1, -1);
    lw_compute(l, 0, ST_STREAM_DP, 1, ST_PHASE_OTHER, -1, -1, -1);
    st_sim_result res;
    run_ok(l, 0, NULL, &res);
    ck_assert_time(res.iteration_time_s, 3);
    ck_assert_time(res.ranks[0].busy_s[ST_STREAM_P2P], 2);
    ck_assert_time(res.ranks[0].busy_s[ST_STREAM_DP], 1);
    ck_assert_uint_eq(res.events, 3);
    st_sim_result_destroy(&res);
    lw_free(l);
}
END_TEST

START_TEST(stream_program_order) {
    /* compute: 1, 2, 3 in order; a p2p op waits for the second (ends at 1 + 2 = 3), then 10 s */
    st_lowered *l = lw_new(1);
    lw_compute(l, 0, ST_STREAM_COMPUTE, 1, ST_PHASE_FWD, 0, -1, -1);
    int b = lw_compute(l, 0, ST_STREAM_COMPUTE, 2, ST_PHASE_FWD, 1, -1, -1);
    lw_compute(l, 0, ST_STREAM_COMPUTE, 3, ST_PHASE_FWD, 2, -1, -1);
    lw_compute(l, 0, ST_STREAM_P2P, 10, ST_PHASE_OTHER, -1, b, -1);
    st_sim_result res;
    run_ok(l, 0, NULL, &res);
    ck_assert_time(res.iteration_time_s, 13);
    ck_assert_time(res.ranks[0].busy_s[ST_STREAM_COMPUTE], 6);
    ck_assert_time(res.ranks[0].compute_idle_s, 7);
    st_sim_result_destroy(&res);
    lw_free(l);
}
END_TEST

START_TEST(deps_across_streams) {
    /* A (compute, 2) -> B (p2p, 1, dep A) -> C (compute, 1, dep B): C starts at 3 */
    st_lowered *l = lw_new(1);
    int a = lw_compute(l, 0, ST_STREAM_COMPUTE, 2, ST_PHASE_FWD, 0, -1, -1);
    int b = lw_compute(l, 0, ST_STREAM_P2P, 1, ST_PHASE_OTHER, -1, a, -1);
    lw_compute(l, 0, ST_STREAM_COMPUTE, 1, ST_PHASE_BWD, 0, b, a);
    /* a dep listed twice counts once; a dep on a later instruction of another stream is fine */
    int d = lw_compute(l, 0, ST_STREAM_COPY, 0.5, ST_PHASE_OTHER, -1, 4, 4);
    lw_compute(l, 0, ST_STREAM_DP, 0.25, ST_PHASE_OTHER, -1, -1, -1);
    (void)d;
    st_sim_result res;
    run_ok(l, 0, NULL, &res);
    ck_assert_time(res.iteration_time_s, 4);
    ck_assert_time(res.ranks[0].compute_idle_s, 1);
    ck_assert_uint_eq(res.events, 5);
    st_sim_result_destroy(&res);
    lw_free(l);
}
END_TEST

START_TEST(collective_latest_arrival) {
    /* rank r computes r + 1 s, then two all-reduces: the first starts at 4 (the latest arrival) and
     * lasts the longest member's duration (0.5, 0.5, 0.5, 0.75) */
    st_lowered *l = lw_new(4);
    int all[4] = {0, 1, 2, 3};
    int g = lw_group(l, ST_GRP_DP, 4, all);
    for (int r = 0; r < 4; r++) {
        int c = lw_compute(l, r, ST_STREAM_COMPUTE, r + 1, ST_PHASE_FWD, 0, -1, -1);
        lw_coll(l, r, ST_STREAM_DP, g, r == 3 ? 0.75 : 0.5, c);
        lw_coll(l, r, ST_STREAM_DP, g, 1, -1);
    }
    st_sim_result res;
    run_ok(l, 0, NULL, &res);
    ck_assert_time(res.iteration_time_s, 4 + 0.75 + 1);
    for (int r = 0; r < 4; r++) {
        ck_assert_time(res.ranks[r].end_s, 5.75);
        ck_assert_time(res.ranks[r].busy_s[ST_STREAM_DP], 1.75);
        ck_assert_time(res.ranks[r].compute_idle_s, 5.75 - (r + 1));
        ck_assert_time(res.ranks[r].bubble_s, 0);
    }
    ck_assert_uint_eq(res.events, 12);
    st_sim_result_destroy(&res);
    lw_free(l);
}
END_TEST

START_TEST(collective_subgroups) {
    /* two tp pairs {0,1} and {2,3} and a dp pair {1,3}: the k-th collective of each group pairs up,
     * whatever the interleaving with other groups in program order */
    st_lowered *l = lw_new(4);
    int tp0[2] = {0, 1}, tp1[2] = {2, 3}, dp[2] = {3, 1};
    int g0 = lw_group(l, ST_GRP_TP, 2, tp0), g1 = lw_group(l, ST_GRP_TP, 2, tp1);
    int gd = lw_group(l, ST_GRP_DP, 2, dp);
    lw_compute(l, 0, ST_STREAM_COMPUTE, 1, ST_PHASE_FWD, 0, -1, -1);
    lw_coll(l, 0, ST_STREAM_COMPUTE, g0, 1, -1); /* [2, 3] with rank 1's */
    lw_coll(l, 1, ST_STREAM_DP, gd, 2, -1);      /* [0, 2] with rank 3's */
    lw_compute(l, 1, ST_STREAM_COMPUTE, 2, ST_PHASE_FWD, 0, -1, -1);
    lw_coll(l, 1, ST_STREAM_COMPUTE, g0, 1, -1);
    lw_coll(l, 2, ST_STREAM_COMPUTE, g1, 1, -1); /* [0, 1] */
    lw_coll(l, 3, ST_STREAM_COMPUTE, g1, 1, -1);
    lw_coll(l, 3, ST_STREAM_DP, gd, 2, -1);
    st_sim_result res;
    run_ok(l, 0, NULL, &res);
    ck_assert_time(res.ranks[0].end_s, 3);
    ck_assert_time(res.ranks[1].end_s, 3);
    ck_assert_time(res.ranks[2].end_s, 1);
    ck_assert_time(res.ranks[3].end_s, 2);
    ck_assert_time(res.iteration_time_s, 3);
    st_sim_result_destroy(&res);
    lw_free(l);
}
END_TEST

START_TEST(send_recv_rendezvous) {
    /* rank 0: compute 2 s, then send (1 s); rank 1: recv (1.5 s) posted at 0, compute 1 s after it.
     * Both start at 2 and last max(1, 1.5); rank 1's compute waits 3.5 s on a receive: bubble. */
    st_lowered *l = lw_new(2);
    int c = lw_compute(l, 0, ST_STREAM_COMPUTE, 2, ST_PHASE_FWD, 0, -1, -1);
    lw_p2p(l, 0, ST_INS_SEND, ST_STREAM_P2P, 1, 7, 1, "send act", 0, c);
    int r = lw_p2p(l, 1, ST_INS_RECV, ST_STREAM_P2P, 0, 7, 1.5, "recv act", 0, -1);
    lw_compute(l, 1, ST_STREAM_COMPUTE, 1, ST_PHASE_FWD, 0, r, -1);
    /* and the other way round: the receive comes late (rank 0 posts it after 5 s of work) */
    int w = lw_compute(l, 0, ST_STREAM_COMPUTE, 5, ST_PHASE_BWD, 0, -1, -1);
    lw_p2p(l, 0, ST_INS_RECV, ST_STREAM_P2P, 1, 8, 0.5, "recv grad", 0, w);
    lw_p2p(l, 1, ST_INS_SEND, ST_STREAM_P2P, 0, 8, 0.25, "send grad", 0, -1);
    st_sim_result res;
    run_ok(l, 0, NULL, &res);
    /* rank 0: compute [0,2] [2,7]; send [2,3.5]; recv [7,7.5]; rank 1: send [7,7.5] behind its recv */
    ck_assert_time(res.ranks[0].end_s, 7.5);
    ck_assert_time(res.ranks[1].end_s, 7.5);
    ck_assert_time(res.ranks[1].busy_s[ST_STREAM_P2P], 2.0);
    ck_assert_time(res.ranks[0].busy_s[ST_STREAM_P2P], 2.0);
    ck_assert_time(res.ranks[1].bubble_s, 3.5);
    ck_assert_time(res.ranks[0].bubble_s, 0);
    ck_assert_time(res.iteration_time_s, 7.5);
    st_sim_result_destroy(&res);
    lw_free(l);
}
END_TEST

START_TEST(send_recv_duplicate_tags) {
    /* a tag reused on one (sender, receiver) pair pairs in program order: sends of 1, 2, 3 s with
     * receives of 0 s on separate streams; the third send finds no receive */
    st_lowered *l = lw_new(2);
    lw_p2p(l, 0, ST_INS_SEND, ST_STREAM_P2P, 1, 5, 1, "send a", 0, -1);
    lw_p2p(l, 0, ST_INS_SEND, ST_STREAM_P2P, 1, 5, 2, "send b", 1, -1);
    lw_p2p(l, 1, ST_INS_RECV, ST_STREAM_P2P, 0, 5, 0, "recv a", 0, -1);
    lw_p2p(l, 1, ST_INS_RECV, ST_STREAM_DP, 0, 5, 0, "recv b", 1, -1);
    st_sim_result res;
    run_ok(l, 0, NULL, &res);
    /* recv a pairs with send a ([0, 1]); recv b, free at 0, still waits for send b ([1, 3]) */
    ck_assert_time(res.ranks[1].busy_s[ST_STREAM_P2P], 1);
    ck_assert_time(res.ranks[1].busy_s[ST_STREAM_DP], 2);
    ck_assert_time(res.iteration_time_s, 3);
    st_sim_result_destroy(&res);
    lw_p2p(l, 0, ST_INS_SEND, ST_STREAM_P2P, 1, 5, 3, "send c", 2, -1);
    st_error err;
    st_error_clear(&err);
    ck_assert_int_eq(st_sim_run(l, 0, NULL, &res, &err), ST_EINVAL);
    ck_assert_msg(strstr(err.text, "rank 0 instruction 2 (send c, mb 2) waits for a receive on rank 1 (tag 5)"), "%s",
                  err.text);
    lw_free(l);
}
END_TEST

/* ------------------------------------------------------------ pipelines */

typedef struct step {
    int bwd, mb;
} step;

/* Stage s's compute order: GPipe (all forwards, then all backwards) or 1F1B (pp - s - 1 warm-up
 * forwards, then one forward one backward, then the remaining backwards). */
static int pipe_order(int one_f_one_b, int pp, int m, int s, step *out) {
    int n = 0;
    if (!one_f_one_b) {
        for (int i = 0; i < m; i++)
            out[n++] = (step){0, i};
        for (int i = 0; i < m; i++)
            out[n++] = (step){1, i};
        return n;
    }
    int warm = pp - s - 1 < m ? pp - s - 1 : m;
    int f = 0, b = 0;
    for (; f < warm; f++)
        out[n++] = (step){0, f};
    while (f < m) {
        out[n++] = (step){0, f++};
        out[n++] = (step){1, b++};
    }
    while (b < m)
        out[n++] = (step){1, b++};
    return n;
}

/* A pipeline of pp stages: forward t_f allocates act_bytes, backward t_b frees them; receives are
 * blocking calls on the compute stream before the compute that needs them, sends go out on the p2p
 * stream after the compute that produced them (tags: 2*mb for activations, 2*mb+1 for gradients). */
static st_lowered *build_pipeline(int one_f_one_b, int pp, int m, double t_f, double t_b, double p2p_s,
                                  double act_bytes) {
    st_lowered *l = lw_new(pp);
    step *order = malloc((size_t)(2 * m) * sizeof *order);
    ck_assert_ptr_nonnull(order);
    l->microbatches = m;
    for (int s = 0; s < pp; s++) {
        int n = pipe_order(one_f_one_b, pp, m, s, order);
        l->progs[s].base_bytes = 1e9;
        for (int k = 0; k < n; k++) {
            int mb = order[k].mb;
            if (!order[k].bwd) {
                if (s > 0)
                    lw_p2p(l, s, ST_INS_RECV, ST_STREAM_COMPUTE, s - 1, 2 * mb, p2p_s, "recv act", mb, -1);
                int c = lw_compute(l, s, ST_STREAM_COMPUTE, t_f, ST_PHASE_FWD, mb, -1, -1);
                lw_ins(l, s, c)->alloc_bytes = act_bytes;
                if (s < pp - 1)
                    lw_p2p(l, s, ST_INS_SEND, ST_STREAM_P2P, s + 1, 2 * mb, p2p_s, "send act", mb, c);
            } else {
                if (s < pp - 1)
                    lw_p2p(l, s, ST_INS_RECV, ST_STREAM_COMPUTE, s + 1, 2 * mb + 1, p2p_s, "recv grad", mb, -1);
                int c = lw_compute(l, s, ST_STREAM_COMPUTE, t_b, ST_PHASE_BWD, mb, -1, -1);
                lw_ins(l, s, c)->free_bytes = act_bytes;
                if (s > 0)
                    lw_p2p(l, s, ST_INS_SEND, ST_STREAM_P2P, s - 1, 2 * mb + 1, p2p_s, "send grad", mb, c);
            }
        }
    }
    free(order);
    return l;
}

START_TEST(pipeline_1f1b_closed_form) {
    const int pp = 4, m = 8;
    const double t_f = 1.0, t_b = 2.0, act = 1e8;
    st_lowered *l = build_pipeline(1, pp, m, t_f, t_b, 0, act);
    st_sim_result res;
    run_ok(l, 0, NULL, &res);
    ck_assert_time(res.iteration_time_s, (m + pp - 1) * (t_f + t_b));
    for (int s = 0; s < pp; s++) {
        /* every stage idles (pp - 1)(t_f + t_b) of the iteration */
        ck_assert_time(res.ranks[s].compute_idle_s, (pp - 1) * (t_f + t_b));
        ck_assert_time(res.ranks[s].busy_s[ST_STREAM_COMPUTE], m * (t_f + t_b));
        /* 1F1B: stage s holds at most pp - s micro-batches of activations */
        ck_assert_double_eq_tol(res.ranks[s].memory_peak_bytes, 1e9 + (pp - s) * act, 1);
        ck_assert_int_ge(res.ranks[s].memory_peak_ins, 0);
    }
    /* the first stage's every wait is for a gradient; the last's is its fill (t_f per stage ahead) */
    ck_assert_time(res.ranks[0].bubble_s, (pp - 1) * (t_f + t_b));
    ck_assert_time(res.ranks[pp - 1].bubble_s, (pp - 1) * t_f);
    /* events: per stage 2m computes, + m recvs/sends per neighbour direction */
    ck_assert_uint_eq(res.events, (uint64_t)(pp * 2 * m + (pp - 1) * 4 * m));
    st_sim_result_destroy(&res);
    lw_free(l);
}
END_TEST

START_TEST(pipeline_gpipe_closed_form) {
    const int pp = 4, m = 8;
    const double t_f = 1.0, t_b = 2.0, act = 1e8;
    st_lowered *l = build_pipeline(0, pp, m, t_f, t_b, 0, act);
    st_sim_result res;
    run_ok(l, 0, NULL, &res);
    ck_assert_time(res.iteration_time_s, (m + pp - 1) * (t_f + t_b));
    for (int s = 0; s < pp; s++) {
        ck_assert_time(res.ranks[s].compute_idle_s, (pp - 1) * (t_f + t_b));
        /* GPipe holds all m micro-batches at the turn */
        ck_assert_double_eq_tol(res.ranks[s].memory_peak_bytes, 1e9 + m * act, 1);
    }
    st_sim_result_destroy(&res);
    lw_free(l);
}
END_TEST

START_TEST(pipeline_shapes) {
    /* the closed form across shapes, with m < pp too */
    static const int shapes[][2] = {{2, 1}, {2, 5}, {3, 3}, {5, 2}, {8, 16}, {6, 7}};
    for (size_t k = 0; k < sizeof shapes / sizeof shapes[0]; k++)
        for (int f1b = 0; f1b < 2; f1b++) {
            int pp = shapes[k][0], m = shapes[k][1];
            st_lowered *l = build_pipeline(f1b, pp, m, 0.3, 0.7, 0, 0);
            st_sim_result res;
            run_ok(l, 0, NULL, &res);
            ck_assert_msg(fabs(res.iteration_time_s - (m + pp - 1) * 1.0) < EPS, "pp %d m %d %s: %g", pp, m,
                          f1b ? "1f1b" : "gpipe", res.iteration_time_s);
            st_sim_result_destroy(&res);
            lw_free(l);
        }
}
END_TEST

/* ------------------------------------------------------------ bad programs */

START_TEST(deadlock_recv_without_send) {
    st_lowered *l = lw_new(4);
    for (int r = 0; r < 4; r++)
        lw_compute(l, r, ST_STREAM_COMPUTE, 1, ST_PHASE_FWD, 0, -1, -1);
    int x = lw_p2p(l, 3, ST_INS_RECV, ST_STREAM_P2P, 2, 9, 0.1, "recv act", 4, -1);
    lw_compute(l, 3, ST_STREAM_COMPUTE, 1, ST_PHASE_FWD, 4, x, -1);
    st_sim_result res;
    st_error err;
    st_error_clear(&err);
    int rc = st_sim_run(l, 0, NULL, &res, &err);
    ck_assert_int_eq(rc, ST_EINVAL);
    ck_assert_msg(strstr(err.text, "rank 3 instruction 1 (recv act, mb 4)") != NULL, "%s", err.text);
    ck_assert_msg(strstr(err.text, "send from rank 2") != NULL, "%s", err.text);
    ck_assert_msg(strstr(err.text, "2 instructions never ran") != NULL, "%s", err.text);
    ck_assert_ptr_null(res.ranks);
    lw_free(l);
}
END_TEST

START_TEST(deadlock_circular) {
    /* both ranks send before they receive, on one in-order p2p stream: a rendezvous cycle */
    st_lowered *l = lw_new(2);
    for (int r = 0; r < 2; r++) {
        lw_p2p(l, r, ST_INS_SEND, ST_STREAM_P2P, 1 - r, r, 0.1, "send", 0, -1);
        lw_p2p(l, r, ST_INS_RECV, ST_STREAM_P2P, 1 - r, 1 - r, 0.1, "recv", 0, -1);
    }
    st_sim_result res;
    st_error err;
    st_error_clear(&err);
    int rc = st_sim_run(l, 0, NULL, &res, &err);
    ck_assert_int_eq(rc, ST_EINVAL);
    ck_assert_msg(strstr(err.text, "circular wait") != NULL, "%s", err.text);
    ck_assert_msg(strstr(err.text, "rank 0 instruction 0 (send, mb 0)") != NULL, "%s", err.text);
    ck_assert_msg(strstr(err.text, "rank 1 instruction 1 (recv, mb 0)") != NULL, "%s", err.text);
    lw_free(l);
}
END_TEST

START_TEST(deadlock_collective_missing_member) {
    st_lowered *l = lw_new(3);
    int all[3] = {0, 1, 2};
    int g = lw_group(l, ST_GRP_TP, 3, all);
    lw_coll(l, 0, ST_STREAM_COMPUTE, g, 1, -1);
    lw_coll(l, 1, ST_STREAM_COMPUTE, g, 1, -1);
    lw_coll(l, 0, ST_STREAM_COMPUTE, g, 1, -1);
    lw_coll(l, 1, ST_STREAM_COMPUTE, g, 1, -1);
    lw_coll(l, 2, ST_STREAM_COMPUTE, g, 1, -1); /* rank 2 has only one */
    st_sim_result res;
    st_error err;
    st_error_clear(&err);
    int rc = st_sim_run(l, 0, NULL, &res, &err);
    ck_assert_int_eq(rc, ST_EINVAL);
    ck_assert_msg(strstr(err.text, "rank 0 instruction 1") != NULL, "%s", err.text);
    ck_assert_msg(strstr(err.text, "rank 2, which never reaches collective #1 of group 0") != NULL, "%s", err.text);
    lw_free(l);
}
END_TEST

START_TEST(deadlock_dep_cycle) {
    /* instruction 0 (p2p) depends on 1 (compute) which depends on 0 */
    st_lowered *l = lw_new(1);
    lw_compute(l, 0, ST_STREAM_P2P, 1, ST_PHASE_OTHER, -1, 1, -1);
    lw_compute(l, 0, ST_STREAM_COMPUTE, 1, ST_PHASE_FWD, 0, 0, -1);
    st_sim_result res;
    st_error err;
    st_error_clear(&err);
    ck_assert_int_eq(st_sim_run(l, 0, NULL, &res, &err), ST_EINVAL);
    ck_assert_msg(strstr(err.text, "circular wait") && strstr(err.text, "rank 0 instruction 1"), "%s", err.text);
    lw_free(l);
}
END_TEST

START_TEST(out_of_memory) {
    /* 10 GB limit: rank 1's third instruction takes it from 8 + 1 to 8 + 1 + 2 = 11 */
    st_lowered *l = lw_new(2);
    for (int r = 0; r < 2; r++) {
        l->progs[r].base_bytes = 8e9;
        int a = lw_compute(l, r, ST_STREAM_COMPUTE, 1, ST_PHASE_FWD, 0, -1, -1);
        lw_ins(l, r, a)->alloc_bytes = 1e9;
        lw_ins(l, r, a)->free_bytes = r == 0 ? 1e9 : 0; /* rank 0 frees it: stays under */
        lw_compute(l, r, ST_STREAM_COMPUTE, 1, ST_PHASE_FWD, 1, -1, -1);
        int c = lw_compute(l, r, ST_STREAM_COMPUTE, 1, ST_PHASE_FWD, 2, -1, -1);
        lw_ins(l, r, c)->alloc_bytes = 1.5e9;
    }
    st_sim_result res;
    run_ok(l, 10e9, NULL, &res);
    ck_assert_int_eq(res.oom, 1);
    ck_assert_int_eq(res.oom_rank, 1);
    ck_assert_int_eq(res.oom_ins, 2);
    ck_assert_double_eq_tol(res.ranks[1].memory_peak_bytes, 10.5e9, 1);
    ck_assert_int_eq(res.ranks[1].memory_peak_ins, 2);
    st_sim_result_destroy(&res);
    /* without a limit: no stop, and the peaks are the real ones */
    run_ok(l, 0, NULL, &res);
    ck_assert_int_eq(res.oom, 0);
    ck_assert_double_eq_tol(res.ranks[0].memory_peak_bytes, 9.5e9, 1);
    ck_assert_int_eq(res.ranks[0].memory_peak_ins, 2);
    ck_assert_time(res.iteration_time_s, 3);
    st_sim_result_destroy(&res);
    /* base bytes alone over the limit: instruction -1 */
    run_ok(l, 5e9, NULL, &res);
    ck_assert_int_eq(res.oom, 1);
    ck_assert_int_eq(res.oom_rank, 0);
    ck_assert_int_eq(res.oom_ins, -1);
    st_sim_result_destroy(&res);
    lw_free(l);
}
END_TEST

START_TEST(free_before_alloc_at_equal_times) {
    /* A (compute, 1 s) and C (dp, 1 s, frees 4 GB) both end at t = 1; B follows A and allocates
     * 4 GB. A pops first (pushed first), so an engine that started B before applying C's free would
     * see 8 GB. Ends of one instant are applied before what they release starts: peak 4 GB. */
    st_lowered *l = lw_new(1);
    l->progs[0].base_bytes = 4e9;
    lw_compute(l, 0, ST_STREAM_COMPUTE, 1, ST_PHASE_FWD, 0, -1, -1);
    int b = lw_compute(l, 0, ST_STREAM_COMPUTE, 1, ST_PHASE_FWD, 1, -1, -1);
    lw_ins(l, 0, b)->alloc_bytes = 4e9;
    int c = lw_compute(l, 0, ST_STREAM_DP, 1, ST_PHASE_OTHER, -1, -1, -1);
    lw_ins(l, 0, c)->free_bytes = 4e9;
    st_sim_result res;
    run_ok(l, 4e9, NULL, &res);
    ck_assert_int_eq(res.oom, 0);
    ck_assert_double_eq_tol(res.ranks[0].memory_peak_bytes, 4e9, 1);
    ck_assert_time(res.iteration_time_s, 2);
    st_sim_result_destroy(&res);
    lw_free(l);
}
END_TEST

START_TEST(bad_input) {
    st_sim_result res;
    st_error err;
    struct {
        const char *what, *expect;
    } cases[] = {
        {"dep", "dep 5 out of range"},
        {"stream", "stream 9 out of range"},
        {"dur", "duration"},
        {"peer", "peer rank 7 has no program"},
        {"group", "group 3 out of range"},
        {"member", "not a member of group 0"},
        {"dupe", "two programs claim rank 0"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        st_lowered *l = lw_new(2);
        int one[1] = {0};
        lw_group(l, ST_GRP_TP, 1, one);
        int i = lw_compute(l, 1, ST_STREAM_COMPUTE, 1, ST_PHASE_FWD, 0, -1, -1);
        st_ins *in = lw_ins(l, 1, i);
        const char *w = cases[k].what;
        if (!strcmp(w, "dep"))
            in->dep[0] = 5;
        if (!strcmp(w, "stream"))
            in->stream = 9;
        if (!strcmp(w, "dur"))
            in->dur_s = NAN;
        if (!strcmp(w, "peer"))
            in->kind = ST_INS_SEND, in->peer = 7;
        if (!strcmp(w, "group"))
            in->kind = ST_INS_COLL, in->group = 3;
        if (!strcmp(w, "member"))
            in->kind = ST_INS_COLL, in->group = 0;
        if (!strcmp(w, "dupe"))
            l->progs[1].rank = 0;
        st_error_clear(&err);
        int rc = st_sim_run(l, 0, NULL, &res, &err);
        ck_assert_int_eq(rc, ST_EINVAL);
        ck_assert_msg(strstr(err.text, cases[k].expect) != NULL, "%s: %s", w, err.text);
        ck_assert_ptr_null(res.ranks);
        lw_free(l);
    }
    st_error_clear(&err);
    ck_assert_int_eq(st_sim_run(NULL, 0, NULL, &res, &err), ST_EINVAL);
}
END_TEST

START_TEST(rank_numbers_not_indices) {
    /* programs may carry global rank numbers (one representative per stage): peers and group
     * members name those numbers */
    st_lowered *l = lw_new(2);
    l->progs[0].rank = 0;
    l->progs[1].rank = 64;
    int both[2] = {64, 0};
    int g = lw_group(l, ST_GRP_PP, 2, both);
    int c = lw_compute(l, 0, ST_STREAM_COMPUTE, 1, ST_PHASE_FWD, 0, -1, -1);
    lw_p2p(l, 0, ST_INS_SEND, ST_STREAM_P2P, 64, 0, 0.5, "send act", 0, c);
    lw_coll(l, 0, ST_STREAM_DP, g, 1, -1);
    int r = lw_p2p(l, 1, ST_INS_RECV, ST_STREAM_P2P, 0, 0, 0.5, "recv act", 0, -1);
    lw_coll(l, 1, ST_STREAM_DP, g, 1, r);
    st_sim_result res;
    run_ok(l, 0, NULL, &res);
    ck_assert_time(res.iteration_time_s, 2.5);
    st_sim_result_destroy(&res);
    lw_free(l);
}
END_TEST

/* ------------------------------------------------------------ oracle: random programs */

static uint64_t rng_state;
static uint32_t rnd(uint32_t n) {
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(rng_state >> 33) % n;
}

/* per-instruction reference end times, filled in global order */
typedef struct ref {
    double *end[8];
    double last[8][ST_STREAMS];
} ref;

/* ready time of instruction i of rank r: its stream predecessor and its deps ended */
static double ref_ready(st_lowered *l, ref *R, int r, int i) {
    const st_ins *in = lw_ins(l, r, i);
    double t = R->last[r][in->stream];
    for (int k = 0; k < 2; k++)
        if (in->dep[k] >= 0 && R->end[r][in->dep[k]] > t)
            t = R->end[r][in->dep[k]];
    return t;
}

START_TEST(oracle_random_programs) {
    for (int trial = 0; trial < 60; trial++) {
        rng_state = 0x9e3779b97f4a7c15ull + (uint64_t)trial;
        int nr = 2 + (int)rnd(7), nops = 20 + (int)rnd(200);
        st_lowered *l = lw_new(nr);
        int *all = malloc((size_t)nr * sizeof *all);
        for (int r = 0; r < nr; r++)
            all[r] = nr - 1 - r;
        int gall = lw_group(l, ST_GRP_DP, nr, all);
        int gpair = lw_group(l, ST_GRP_TP, 2, (int[]){0, 1});
        ref R;
        memset(&R, 0, sizeof R);
        for (int r = 0; r < nr; r++)
            R.end[r] = calloc((size_t)nops * 2 + 4, sizeof(double));
        int tag = 0;
        for (int op = 0; op < nops; op++) {
            int kind = (int)rnd(10);
            int a = (int)rnd((uint32_t)nr), b = (a + 1 + (int)rnd((uint32_t)nr - 1)) % nr;
            int sa = (int)rnd(ST_STREAMS), sb = (int)rnd(ST_STREAMS);
            double da = 0.25 * rnd(9), db = 0.25 * rnd(9);
            int pa = l->progs[a].n, pb = l->progs[b].n;
            int da0 = pa > 0 && rnd(2) ? (int)rnd((uint32_t)pa) : -1,
                da1 = pa > 0 && rnd(3) == 0 ? (int)rnd((uint32_t)pa) : -1;
            int db0 = pb > 0 && rnd(2) ? (int)rnd((uint32_t)pb) : -1;
            if (kind < 5) { /* compute on rank a */
                int i = lw_compute(l, a, sa, da, ST_PHASE_FWD, op, da0, da1);
                double s = ref_ready(l, &R, a, i);
                R.end[a][i] = R.last[a][sa] = s + da;
            } else if (kind < 8) { /* send a -> b */
                int i = lw_p2p(l, a, ST_INS_SEND, sa, b, tag, da, "send", op, da0);
                int j = lw_p2p(l, b, ST_INS_RECV, sb, a, tag, db, "recv", op, db0);
                tag++;
                double s = fmax(ref_ready(l, &R, a, i), ref_ready(l, &R, b, j)), d = fmax(da, db);
                R.end[a][i] = R.last[a][sa] = s + d;
                R.end[b][j] = R.last[b][sb] = s + d;
            } else { /* a collective of everybody (kind 8) or of ranks 0 and 1 (kind 9) */
                int n = kind == 8 ? nr : 2;
                int idx[8];
                double s = 0, d = 0;
                for (int k = 0; k < n; k++) {
                    int r = kind == 8 ? all[k] : k;
                    int st = (int)rnd(ST_STREAMS),
                        dep = l->progs[r].n > 0 && rnd(2) ? (int)rnd((uint32_t)l->progs[r].n) : -1;
                    double dur = 0.25 * rnd(5);
                    idx[k] = lw_coll(l, r, st, kind == 8 ? gall : gpair, dur, dep);
                    s = fmax(s, ref_ready(l, &R, r, idx[k]));
                    d = fmax(d, dur);
                }
                for (int k = 0; k < n; k++) {
                    int r = kind == 8 ? all[k] : k;
                    R.end[r][idx[k]] = R.last[r][lw_ins(l, r, idx[k])->stream] = s + d;
                }
            }
        }
        st_sim_result res;
        run_ok(l, 0, NULL, &res);
        double T = 0;
        for (int r = 0; r < nr; r++) {
            double e = 0;
            for (int i = 0; i < l->progs[r].n; i++)
                e = fmax(e, R.end[r][i]);
            ck_assert_msg(fabs(res.ranks[r].end_s - e) < EPS, "trial %d rank %d: end %.17g, reference %.17g", trial, r,
                          res.ranks[r].end_s, e);
            T = fmax(T, e);
            free(R.end[r]);
        }
        ck_assert_time(res.iteration_time_s, T);
        uint64_t total = 0;
        for (int r = 0; r < nr; r++)
            total += (uint64_t)l->progs[r].n;
        ck_assert_uint_eq(res.events, total);
        st_sim_result_destroy(&res);
        free(all);
        lw_free(l);
    }
}
END_TEST


/* ------------------------------------------------------------ shared links */

START_TEST(link_two_flows_share) {
    /* one link of 10 B/s; a flow that alone takes 2 s of data (20 bus bytes at 10 B/s) and 0.5 s
     * of latency. Alone: 2.5 s. Two at once: each gets 5 B/s, 4 s of data, then the latency. */
    for (int both = 0; both < 2; both++) {
        st_lowered *l = lw_new(2);
        int k = lw_link(l, 10, 0, "link");
        int r = lw_route(l, 10, 1, &k, NULL);
        lw_flow(l, 0, r, 0, 2.5, 0.5);
        if (both)
            lw_flow(l, 1, r, 0, 2.5, 0.5);
        st_sim_result res;
        run_ok(l, 0, NULL, &res);
        ck_assert_time(res.ranks[0].end_s, both ? 4.5 : 2.5);
        ck_assert_time(res.iteration_time_s, both ? 4.5 : 2.5);
        ck_assert_uint_eq(res.flows, both ? 2 : 1);
        ck_assert_uint_eq(res.events, both ? 4 : 2); /* per flow: the data's end, the instruction's */
        ck_assert_time(res.ranks[0].busy_s[ST_STREAM_DP], both ? 4.5 : 2.5);
        st_sim_result_destroy(&res);
        lw_free(l);
    }
}
END_TEST

START_TEST(link_staggered_and_counted) {
    /* a flow (10 bytes at up to 10 B/s, link 10 B/s) alone for 0.5 s; then a second, crossing
     * the link twice (count 2: two ranks' traffic), joins: rates x with x + 2x = 10 -> 10/3 each.
     * First: 5 bytes left at 10/3 -> ends at 0.5 + 1.5 = 2. Second: 5 bytes by then, 5 left alone
     * at its rate 10 (2 x 10 > 10: the link allows 5) -> 1 s more: 3. */
    st_lowered *l = lw_new(2);
    int k = lw_link(l, 10, 0, "link");
    int two = 2;
    int r1 = lw_route(l, 10, 1, &k, NULL), r2 = lw_route(l, 10, 1, &k, &two);
    lw_flow(l, 0, r1, 0, 1, 0);
    lw_flow(l, 1, r2, 0.5, 1, 0);
    st_sim_result res;
    run_ok(l, 0, NULL, &res);
    ck_assert_time(res.ranks[0].end_s, 2);
    ck_assert_time(res.ranks[1].end_s, 3);
    st_sim_result_destroy(&res);
    lw_free(l);
}
END_TEST

START_TEST(link_bottleneck) {
    /* a flow crossing links of 10 and 4 B/s, its own rate no limit (100): it gets 4 B/s. 100 bus
     * bytes (1 s alone at 100 B/s) take 25 s. */
    st_lowered *l = lw_new(1);
    int k[2] = {lw_link(l, 10, 0, "a"), lw_link(l, 4, 0, "b")};
    int r = lw_route(l, 100, 2, k, NULL);
    lw_flow(l, 0, r, 0, 1, 0);
    st_sim_result res;
    run_ok(l, 0, NULL, &res);
    ck_assert_time(res.iteration_time_s, 25);
    st_sim_result_destroy(&res);
    lw_free(l);
}
END_TEST

START_TEST(link_max_min_unequal) {
    /* Bertsekas & Gallager's example: link A (1 B/s) carries f1 and f2, link B (3 B/s) carries f1
     * and f3. Max-min: f1 = f2 = 0.5 (A is full), f3 = 3 - 0.5 = 2.5. Bytes 4, 10, 30 (rates
     * alone 100, so only the links limit):
     * - f1: 4 / 0.5 = 8 s;
     * - f3: 20 bytes by 8 s, then alone on B at 3: 10 / 3 more -> 8 + 10/3;
     * - f2: 4 bytes by 8 s, then alone on A at 1: 6 s more -> 14. */
    st_lowered *l = lw_new(3);
    int a = lw_link(l, 1, 0, "A"), b = lw_link(l, 3, 0, "B");
    int ab[2] = {a, b};
    int r1 = lw_route(l, 100, 2, ab, NULL), r2 = lw_route(l, 100, 1, &a, NULL), r3 = lw_route(l, 100, 1, &b, NULL);
    lw_flow(l, 0, r1, 0, 0.04, 0);
    lw_flow(l, 1, r2, 0, 0.10, 0);
    lw_flow(l, 2, r3, 0, 0.30, 0);
    st_sim_result res;
    run_ok(l, 0, NULL, &res);
    ck_assert_time(res.ranks[0].end_s, 8);
    ck_assert_time(res.ranks[2].end_s, 8 + 10.0 / 3);
    ck_assert_time(res.ranks[1].end_s, 14);
    ck_assert_uint_ge(res.reshares, 1);
    st_sim_result_destroy(&res);
    lw_free(l);
}
END_TEST

/* n GPUs of node 0 each send to the same GPU of node 1 at once, on the links the lowering makes
 * for a cluster (st_cost_net): NIC ports and the nodes' fabric links; each transfer alone would
 * fill its NIC (1 s). Returns the iteration time. */
static double cross_node_sends(double oversubscription, int n) {
    st_cluster c;
    ck_assert_int_eq(st_cluster_preset("dgx-a100-80g", &c), 0);
    c.oversubscription = oversubscription;
    st_net net;
    st_cost_net(&c, &net);
    int G = (int)net.gpus_per_node;
    ck_assert_int_eq(net.nic_ports, G); /* one NIC per GPU */
    st_lowered *l = lw_new(2 * G);
    int up = lw_link(l, net.uplink_bytes_per_s, 0, "fabric 0 up"), down = lw_link(l, net.uplink_bytes_per_s, G, "fabric 1 down");
    for (int i = 0; i < n; i++) {
        int k[4] = {lw_link(l, net.nic_port_bytes_per_s, i, "nic out"), up, down,
                    lw_link(l, net.nic_port_bytes_per_s, G + i, "nic in")};
        int r = lw_route(l, net.nic_port_bytes_per_s, 4, k, NULL);
        int s = lw_p2p(l, i, ST_INS_SEND, ST_STREAM_P2P, G + i, 0, 1.0, "send", 0, -1);
        int v = lw_p2p(l, G + i, ST_INS_RECV, ST_STREAM_COMPUTE, i, 0, 1.0, "recv", 0, -1);
        lw_ins(l, i, s)->route = lw_ins(l, G + i, v)->route = r;
    }
    st_sim_result res;
    run_ok(l, 0, NULL, &res);
    double t = res.iteration_time_s;
    st_sim_result_destroy(&res);
    lw_free(l);
    return t;
}

START_TEST(link_oversubscription) {
    /* a node's fabric link carries its NICs' bandwidth / oversubscription: all 8 GPUs of a node
     * sending across at once take that factor longer; one alone does not notice it */
    for (double os = 1; os <= 4; os *= 2) {
        ck_assert_double_eq_tol(cross_node_sends(os, 8), os, 1e-9);
        ck_assert_double_eq_tol(cross_node_sends(os, 1), 1, 1e-9);
    }
    ck_assert_double_eq_tol(cross_node_sends(2, 4), 1, 1e-9); /* 4 NICs' worth: just fits */
}
END_TEST

/* ---- oracle: flows with random starts on random links, against a fluid reference that
 * recomputes max-min over every active flow and every link at every event (no incremental
 * bookkeeping, no "full link" shortcut) */

typedef struct rflow {
    double start, bytes, rate, lat;
    int n, link[3], count[3];
} rflow;

/* max-min rates of the active flows: progressive filling over all links */
static void ref_rates(const rflow *f, int nf, const int *active, const double *cap, int nl, double *rate) {
    int frozen[32] = {0}, left = 0;
    double used[8] = {0};
    for (int i = 0; i < nf; i++)
        if (active[i])
            left++;
        else
            frozen[i] = 1;
    while (left > 0) {
        double x = INFINITY;
        for (int k = 0; k < nl; k++) {
            double w = 0;
            for (int i = 0; i < nf; i++)
                for (int h = 0; h < f[i].n; h++)
                    if (!frozen[i] && f[i].link[h] == k)
                        w += f[i].count[h];
            if (w > 0)
                x = fmin(x, (cap[k] - used[k]) / w);
        }
        for (int i = 0; i < nf; i++)
            if (!frozen[i])
                x = fmin(x, f[i].rate);
        int fr[32] = {0};
        for (int i = 0; i < nf; i++) {
            if (frozen[i])
                continue;
            if (f[i].rate <= x * (1 + 1e-12))
                fr[i] = 1;
            for (int h = 0; h < f[i].n; h++) {
                int k = f[i].link[h];
                double w = 0;
                for (int j = 0; j < nf; j++)
                    for (int g = 0; g < f[j].n; g++)
                        if (!frozen[j] && f[j].link[g] == k)
                            w += f[j].count[g];
                if ((cap[k] - used[k]) / w <= x * (1 + 1e-12))
                    fr[i] = 1;
            }
        }
        for (int i = 0; i < nf; i++)
            if (fr[i]) {
                rate[i] = fmin(x, f[i].rate);
                frozen[i] = 1;
                left--;
                for (int h = 0; h < f[i].n; h++)
                    used[f[i].link[h]] += f[i].count[h] * rate[i];
            }
    }
}

/* the max-min rates of the active flows of a reference network (net) */
typedef void ref_rates_fn(const void *net, const int *active, double *rate);

/* The fluid run of nf flows, each from start[i] with bytes[i] to move and lat[i] after its data:
 * at every start and end every rate is recomputed (rates), and end[i] is when its latency ends. */
static void ref_fluid(int nf, const double *start, const double *bytes, const double *lat, double *end,
                      ref_rates_fn *rates, const void *net) {
    double *left = malloc((size_t)nf * sizeof *left), *rate = malloc((size_t)nf * sizeof *rate), t = 0;
    int *active = calloc((size_t)nf, sizeof *active), *done = calloc((size_t)nf, sizeof *done), ndone = 0;
    ck_assert(left && rate && active && done);
    for (int i = 0; i < nf; i++)
        left[i] = bytes[i];
    while (ndone < nf) {
        rates(net, active, rate);
        double next = INFINITY;
        for (int i = 0; i < nf; i++) {
            if (!active[i] && !done[i])
                next = fmin(next, start[i]);
            if (active[i])
                next = fmin(next, t + left[i] / rate[i]);
        }
        for (int i = 0; i < nf; i++)
            if (active[i])
                left[i] -= rate[i] * (next - t);
        t = next;
        for (int i = 0; i < nf; i++) {
            if (active[i] && left[i] <= bytes[i] * 1e-12) {
                active[i] = 0;
                done[i] = 1;
                ndone++;
                end[i] = t + lat[i];
            }
            if (!active[i] && !done[i] && start[i] <= t)
                active[i] = 1;
        }
    }
    free(left);
    free(rate);
    free(active);
    free(done);
}

/* ref_rates over random flows */
typedef struct rnet {
    const rflow *f;
    int nf, nl;
    const double *cap;
} rnet;

static void rnet_rates(const void *net, const int *active, double *rate) {
    const rnet *R = net;
    ref_rates(R->f, R->nf, active, R->cap, R->nl, rate);
}

/* nl random links (capacities in cap) and nf flows on 1..3 distinct ones of them, each crossed 1..3
 * times, with a start, a rate alone, bytes and a latency; their routes in route */
static void random_flows(st_lowered *l, int nl, int nf, double *cap, rflow *f, int *route) {
    int ids[8];
    for (int k = 0; k < nl; k++) {
        cap[k] = 1 + rnd(8);
        ids[k] = lw_link(l, cap[k], 0, "link");
    }
    for (int i = 0; i < nf; i++) {
        rflow *x = &f[i];
        x->start = 0.5 * rnd(6);
        x->rate = 1 + rnd(10);
        x->bytes = 1 + rnd(20);
        x->lat = 0.25 * rnd(3);
        x->n = 1 + (int)rnd((uint32_t)(nl < 3 ? nl : 3));
        int used[8] = {0}, hl[3];
        for (int h = 0; h < x->n; h++) {
            int k;
            do
                k = (int)rnd((uint32_t)nl);
            while (used[k]);
            used[k] = 1;
            x->link[h] = k;
            x->count[h] = 1 + (int)rnd(3);
            hl[h] = ids[k];
        }
        route[i] = lw_route(l, x->rate, x->n, hl, x->count);
    }
}

START_TEST(link_oracle_random) {
    for (int trial = 0; trial < 200; trial++) {
        rng_state = 0x5851f42d4c957f2dull + (uint64_t)trial;
        int nl = 1 + (int)rnd(6), nf = 2 + (int)rnd(12);
        double cap[8];
        rflow f[32];
        st_lowered *l = lw_new(nf);
        int route[32];
        random_flows(l, nl, nf, cap, f, route);
        for (int i = 0; i < nf; i++)
            lw_flow(l, i, route[i], f[i].start, f[i].bytes / f[i].rate + f[i].lat, f[i].lat);
        double start[32], bytes[32], lat[32], end[32];
        for (int i = 0; i < nf; i++) {
            start[i] = f[i].start;
            bytes[i] = f[i].bytes;
            lat[i] = f[i].lat;
        }
        ref_fluid(nf, start, bytes, lat, end, rnet_rates, &(rnet){f, nf, nl, cap});
        st_sim_result res;
        run_ok(l, 0, NULL, &res);
        for (int i = 0; i < nf; i++)
            ck_assert_msg(fabs(res.ranks[i].end_s - end[i]) < 1e-9 * (1 + end[i]),
                          "trial %d flow %d: simulated %.17g, reference %.17g", trial, i, res.ranks[i].end_s, end[i]);
        ck_assert_uint_eq(res.flows, (uint64_t)nf);
        st_sim_result_destroy(&res);
        lw_free(l);
    }
}
END_TEST

/* ---- oracle for maxmin.c alone: random flows on random links, started and ended by hand; after
 * every start and end, the rate of every active flow (its rate alone x its speed) must be the
 * reference's, which recomputes max-min over every flow and link (ref_rates) */

/* maxmin.c's network for lowering l, with room for nf flows (ix: its rank index); free with net_close */
static void net_open(st__net *N, st_rank_index *ix, const st_lowered *l, int nf) {
    st_error err;
    memset(N, 0, sizeof *N);
    ck_assert_int_eq(st_rank_index_init(ix, l, &err), 0);
    ck_assert_int_eq(st__net_build(N, l, ix, &err), 0);
    ck_assert_int_eq(st__net_alloc_flows(N, nf), 0);
}

static void net_close(st__net *N, st_rank_index *ix, st_lowered *l) {
    st__net_free(N);
    st_rank_index_destroy(ix);
    lw_free(l);
}

/* starts or ends the next flow (the earliest end, else the earliest start); returns the time */
static double maxmin_step(st__net *N, const double *start, const double *work_s, int nf, const int *route, int *id,
                          int *active, int *done, double t) {
    int fi = -1, si = -1;
    for (int i = 0; i < nf; i++) {
        if (active[i] && (fi < 0 || N->fl[id[i]].finish < N->fl[id[fi]].finish))
            fi = i;
        if (!active[i] && !done[i] && (si < 0 || start[i] < start[si]))
            si = i;
    }
    if (fi >= 0 && (si < 0 || N->fl[id[fi]].finish <= start[si])) {
        t = N->fl[id[fi]].finish;
        st__flow_end(N, id[fi]);
        active[fi] = 0;
        done[fi] = 1;
    } else {
        t = fmax(t, start[si]);
        id[si] = st__flow_start(N, route[si], work_s[si], t);
        ck_assert_int_ge(id[si], 0);
        active[si] = 1;
    }
    for (int k = 0; k < N->nchg; k++)
        st__flow_set_speed(N, N->q_fl[k], t);
    return t;
}

START_TEST(maxmin_oracle_rates) {
    uint64_t reshares = 0;
    int slowed = 0;
    for (int trial = 0; trial < 200; trial++) {
        rng_state = 0x2545f4914f6cdd1dull + (uint64_t)trial;
        int nl = 1 + (int)rnd(6), nf = 2 + (int)rnd(20);
        double cap[8];
        rflow f[32];
        int route[32], id[32], active[32] = {0}, done[32] = {0};
        st_lowered *l = lw_new(1);
        random_flows(l, nl, nf, cap, f, route);
        st_rank_index ix;
        st__net N;
        net_open(&N, &ix, l, nf);
        double t = 0, start[32], work_s[32];
        for (int i = 0; i < nf; i++) {
            start[i] = f[i].start;
            work_s[i] = f[i].bytes / f[i].rate;
        }
        for (int step = 0; step < 2 * nf; step++) { /* each flow starts once and ends once */
            t = maxmin_step(&N, start, work_s, nf, route, id, active, done, t);
            double want[32];
            ref_rates(f, nf, active, cap, nl, want);
            for (int i = 0; i < nf; i++) {
                if (!active[i])
                    continue;
                double got = N.fl[id[i]].rate * N.fl[id[i]].speed;
                ck_assert_msg(fabs(got - want[i]) <= 1e-9 * want[i],
                              "trial %d flow %d at %g: rate %.17g, reference %.17g", trial, i, t, got, want[i]);
                slowed += N.fl[id[i]].speed < 1;
            }
        }
        for (int i = 0; i < nf; i++)
            ck_assert(done[i]);
        reshares += N.reshares;
        net_close(&N, &ix, l);
    }
    ck_assert_uint_gt(reshares, 0); /* the oracle saw re-sharing, and flows slowed by it */
    ck_assert_int_gt(slowed, 0);
}
END_TEST

/* ---- oracle at fabric scale: nodes of G GPUs, a NIC port per GPU and a link to the fabric per node,
 * each per direction, routed as src/lower/lower_net.c routes them; thousands of flows: sends between
 * GPUs of two nodes and collectives along a rail (one GPU of each of several nodes: each member's
 * port out and in and its node's fabric links), which keep fabric links full while sends come and
 * go on them (where maxmin.c keeps rates without re-sharing, end_keeps_rates) */

typedef struct fabric {
    int nodes, G, nl, nf;
    double cap[2 * 32 * 8 + 2 * 32];
    int first[2048], n[2048], hl[2048 * 4 * 8], route[2048];
    double start[2048], work_s[2048], rate[2048], lat[2048];
} fabric;

static int fabric_port(const fabric *F, int gpu, int in) { return 2 * gpu + in; }
static int fabric_uplink(const fabric *F, int node, int down) { return 2 * F->nodes * F->G + 2 * node + down; }

/* nodes x G GPUs (nodes <= 32, G <= 8), NIC ports of capacity 1, node links of capacity G / oversubscription;
 * nf flows (<= 2048) with random starts in [0, 4), data of 0.25 to 4 seconds alone, latencies; routes in l */
static void fabric_flows(fabric *F, st_lowered *l, int nodes, int G, double oversubscription, int nf) {
    F->nodes = nodes;
    F->G = G;
    F->nl = 2 * nodes * G + 2 * nodes;
    F->nf = nf;
    for (int k = 0; k < F->nl; k++) {
        F->cap[k] = k < 2 * nodes * G ? 1.0 : G / oversubscription;
        ck_assert_int_eq(lw_link(l, F->cap[k], -1, "fabric"), k);
    }
    int nh = 0;
    for (int i = 0; i < nf; i++) {
        int first = nh;
        if (rnd(20)) { /* a send between two GPUs of different nodes */
            int a = (int)rnd((uint32_t)(nodes * G)), b;
            do
                b = (int)rnd((uint32_t)(nodes * G));
            while (b / G == a / G);
            F->hl[nh++] = fabric_port(F, a, 0);
            F->hl[nh++] = fabric_port(F, b, 1);
            F->hl[nh++] = fabric_uplink(F, a / G, 0);
            F->hl[nh++] = fabric_uplink(F, b / G, 1);
        } else { /* a collective on rail r of 2..8 distinct nodes */
            int r = (int)rnd((uint32_t)G), k = 2 + (int)rnd(7), used[32] = {0};
            for (int m = 0; m < k; m++) {
                int node;
                do
                    node = (int)rnd((uint32_t)nodes);
                while (used[node]);
                used[node] = 1;
                F->hl[nh++] = fabric_port(F, node * G + r, 0);
                F->hl[nh++] = fabric_port(F, node * G + r, 1);
                F->hl[nh++] = fabric_uplink(F, node, 0);
                F->hl[nh++] = fabric_uplink(F, node, 1);
            }
        }
        F->first[i] = first;
        F->n[i] = nh - first;
        F->rate[i] = rnd(4) ? 1.0 : 0.5; /* some flows alone at half a port */
        F->start[i] = 40.0 * rnd(1000) / 1000;
        F->work_s[i] = F->n[i] == 4 ? 0.1 + 0.9 * rnd(1000) / 1000 : 5 + 15.0 * rnd(1000) / 1000;
        F->lat[i] = 0.01 * rnd(3);
        F->route[i] = lw_route(l, F->rate[i], F->n[i], &F->hl[first], NULL);
    }
}

/* max-min rates of the active flows: progressive filling over every flow and link, each time afresh */
static void fabric_rates(const void *net, const int *active, double *rate) {
    const fabric *F = net;
    static double used[sizeof ((fabric *)0)->cap / sizeof(double)], w[sizeof used / sizeof *used];
    static int frozen[2048], fr[2048];
    int left = 0;
    for (int k = 0; k < F->nl; k++)
        used[k] = 0;
    for (int i = 0; i < F->nf; i++) {
        frozen[i] = !active[i];
        left += active[i];
    }
    while (left > 0) {
        double x = INFINITY;
        for (int k = 0; k < F->nl; k++)
            w[k] = 0;
        for (int i = 0; i < F->nf; i++)
            for (int h = 0; h < F->n[i] && !frozen[i]; h++)
                w[F->hl[F->first[i] + h]] += 1;
        for (int k = 0; k < F->nl; k++)
            if (w[k] > 0)
                x = fmin(x, (F->cap[k] - used[k]) / w[k]);
        for (int i = 0; i < F->nf; i++)
            if (!frozen[i])
                x = fmin(x, F->rate[i]);
        for (int i = 0; i < F->nf; i++) {
            fr[i] = !frozen[i] && F->rate[i] <= x * (1 + 1e-12);
            for (int h = 0; h < F->n[i] && !frozen[i]; h++) {
                int k = F->hl[F->first[i] + h];
                fr[i] |= (F->cap[k] - used[k]) / w[k] <= x * (1 + 1e-12);
            }
        }
        for (int i = 0; i < F->nf; i++)
            if (fr[i]) {
                rate[i] = fmin(x, F->rate[i]);
                frozen[i] = 1;
                left--;
                for (int h = 0; h < F->n[i]; h++)
                    used[F->hl[F->first[i] + h]] += rate[i];
            }
    }
}

/* after every start and end of 2,000 flows on 32 nodes of 8 GPUs, every rate is the reference's */
START_TEST(maxmin_oracle_fabric) {
    static fabric F;
    static int id[2048], active[2048], done[2048];
    static double want[2048];
    for (int trial = 0; trial < 2; trial++) {
        rng_state = 0x9e3779b97f4a7c15ull + (uint64_t)trial;
        st_lowered *l = lw_new(1);
        fabric_flows(&F, l, 32, 8, trial ? 2.0 : 1.0, 2000);
        memset(active, 0, sizeof active);
        memset(done, 0, sizeof done);
        st_rank_index ix;
        st__net N;
        net_open(&N, &ix, l, F.nf);
        double t = 0, maxdiff = 0;
        int most = 0, slowed = 0;
        for (int step = 0; step < 2 * F.nf; step++) {
            t = maxmin_step(&N, F.start, F.work_s, F.nf, F.route, id, active, done, t);
            fabric_rates(&F, active, want);
            int now = 0;
            for (int i = 0; i < F.nf; i++) {
                if (!active[i])
                    continue;
                double got = N.fl[id[i]].rate * N.fl[id[i]].speed;
                ck_assert_msg(fabs(got - want[i]) <= 1e-9 * want[i],
                              "trial %d flow %d at %g: rate %.17g, reference %.17g", trial, i, t, got, want[i]);
                maxdiff = fmax(maxdiff, fabs(got - want[i]) / want[i]);
                slowed += N.fl[id[i]].speed < 1;
                now++;
            }
            most = now > most ? now : most;
        }
        for (int i = 0; i < F.nf; i++)
            ck_assert(done[i]);
        /* hundreds of flows at once, slowed; most ends on full links proven to keep every rate */
        ck_assert_int_gt(most, 100);
        ck_assert_int_gt(slowed, 0);
        ck_assert_uint_gt(N.reshares, 0);
        ck_assert_uint_gt(N.kept, 0);
        ck_assert_double_le(maxdiff, 1e-9);
        net_close(&N, &ix, l);
    }
}
END_TEST

/* the same flows through the engine, each on its own rank after a compute: every flow's end is the
 * fluid reference's */
START_TEST(link_oracle_fabric) {
    static fabric F;
    static double bytes[2048], end[2048];
    rng_state = 0x9e3779b97f4a7c15ull;
    st_lowered *l = lw_new(2000);
    fabric_flows(&F, l, 32, 8, 1.0, 2000);
    for (int i = 0; i < F.nf; i++) {
        bytes[i] = F.work_s[i] * F.rate[i];
        lw_flow(l, i, F.route[i], F.start[i], F.work_s[i] + F.lat[i], F.lat[i]);
    }
    ref_fluid(F.nf, F.start, bytes, F.lat, end, fabric_rates, &F);
    st_sim_result res;
    run_ok(l, 0, NULL, &res);
    double maxdiff = 0;
    for (int i = 0; i < F.nf; i++) {
        ck_assert_msg(fabs(res.ranks[i].end_s - end[i]) < 1e-9 * (1 + end[i]), "flow %d: simulated %.17g, reference %.17g",
                      i, res.ranks[i].end_s, end[i]);
        maxdiff = fmax(maxdiff, fabs(res.ranks[i].end_s - end[i]) / (1 + end[i]));
    }
    ck_assert_double_le(maxdiff, 1e-9);
    ck_assert_uint_eq(res.flows, (uint64_t)F.nf);
    ck_assert_uint_gt(res.reshares, 0);
    st_sim_result_destroy(&res);
    lw_free(l);
}
END_TEST

START_TEST(link_equal_links_merge) {
    /* 48 ranks' NIC ports that one representative stands for, crossed alike by its routes, are
     * one link to the engine; the result is that of the route over all of them. A flow of 48
     * ports and a fabric link crossed 48 times (capacity 24 x the rate): 48 x r <= 24 -> r = 0.5. */
    st_lowered *l = lw_new(1);
    int k[49], cnt[49];
    for (int i = 0; i < 48; i++) {
        k[i] = lw_link(l, 1, -1, "nic");
        cnt[i] = 1;
    }
    k[48] = lw_link(l, 24, 0, "fabric");
    cnt[48] = 48;
    int r = lw_route(l, 1, 49, k, cnt);
    lw_flow(l, 0, r, 0, 1, 0);
    st_sim_result res;
    run_ok(l, 0, NULL, &res);
    ck_assert_time(res.iteration_time_s, 2);
    st_sim_result_destroy(&res);
    lw_free(l);
}
END_TEST

START_TEST(link_bad_input) {
    static const char *const cases[][2] = {
        {"cap", "link 0: bytes_per_s"},   {"rate", "route 0: bytes_per_s"}, {"hop", "route 0: link 5 out of range"},
        {"count", "count must be >= 1"},  {"route", "route 7 out of range"}, {"latency", "latency must be"},
        {"first", "route 0: hops out of range"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        st_lowered *l = lw_new(1);
        int k = lw_link(l, 10, 0, "link");
        int r = lw_route(l, 10, 1, &k, NULL);
        int i = lw_flow(l, 0, r, 0, 1, 0);
        const char *w = cases[c][0];
        if (!strcmp(w, "cap"))
            l->links[0].bytes_per_s = 0;
        if (!strcmp(w, "rate"))
            l->routes[0].bytes_per_s = NAN;
        if (!strcmp(w, "hop"))
            l->hops[0].link = 5;
        if (!strcmp(w, "count"))
            l->hops[0].count = 0;
        if (!strcmp(w, "route"))
            lw_ins(l, 0, i)->route = 7;
        if (!strcmp(w, "latency"))
            lw_ins(l, 0, i)->latency_s = 2;
        if (!strcmp(w, "first"))
            l->routes[0].n = 3;
        st_sim_result res;
        st_error err;
        st_error_clear(&err);
        ck_assert_int_eq(st_sim_run(l, 0, NULL, &res, &err), ST_EINVAL);
        ck_assert_msg(strstr(err.text, cases[c][1]) != NULL, "%s: %s", w, err.text);
        lw_free(l);
    }
}
END_TEST

/* ------------------------------------------------------------ trace */

static char *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    ck_assert_ptr_nonnull(buf);
    ck_assert_uint_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = '\0';
    fclose(f);
    *len = (size_t)n;
    return buf;
}

static void write_trace(const st_lowered *l, const char *path) {
    st_error err;
    st_error_clear(&err);
    st_trace *tr = st_trace_open(path, st_stream_names, ST_STREAMS, &err);
    ck_assert_msg(tr != NULL, "%s", err.text);
    st_sim_result res;
    run_ok(l, 0, tr, &res);
    st_sim_result_destroy(&res);
    ck_assert_int_eq(st_trace_close(tr, &err), 0);
}

static st_lowered *trace_program(void) {
    st_lowered *l = build_pipeline(1, 3, 4, 1e-3, 2e-3, 1e-4, 3 * 1073741824.0);
    int all[3] = {0, 1, 2};
    int g = lw_group(l, ST_GRP_DP, 3, all);
    for (int r = 0; r < 3; r++) {
        lw_coll(l, r, ST_STREAM_DP, g, 5e-4, l->progs[r].n - 1);
        lw_ins(l, r, 0)->label = "q\"uote\\d \x01 caf\xc3\xa9 \xff";
    }
    return l;
}

START_TEST(trace_deterministic_and_valid) {
    char dir[] = "/tmp/strata-sim-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char p1[64], p2[64];
    snprintf(p1, sizeof p1, "%s/a.json", dir);
    snprintf(p2, sizeof p2, "%s/b.json", dir);
    st_lowered *l = trace_program();
    write_trace(l, p1);
    write_trace(l, p2);
    size_t n1, n2;
    char *b1 = slurp(p1, &n1), *b2 = slurp(p2, &n2);
    ck_assert_uint_eq(n1, n2);
    ck_assert_msg(memcmp(b1, b2, n1) == 0, "traces differ");

    json_error_t jerr;
    json_t *root = json_loads(b1, 0, &jerr);
    ck_assert_msg(root != NULL, "invalid JSON: %s at line %d col %d", jerr.text, jerr.line, jerr.column);
    ck_assert_str_eq(json_string_value(json_object_get(root, "displayTimeUnit")), "ms");
    json_t *evs = json_object_get(root, "traceEvents");
    ck_assert(json_is_array(evs));

    int nproc = 0, nthread = 0, nx = 0, ns = 0, nf = 0, nc = 0, quoted = 0;
    size_t i;
    json_t *e;
    typedef struct span {
        int pid, tid;
        double ts, dur;
    } span;
    span *spans = calloc(json_array_size(evs), sizeof *spans);
    long long flow_s_ids = 0, flow_f_ids = 0;
    json_array_foreach(evs, i, e) {
        const char *ph = json_string_value(json_object_get(e, "ph"));
        const char *name = json_string_value(json_object_get(e, "name"));
        ck_assert_ptr_nonnull(ph);
        int pid = (int)json_integer_value(json_object_get(e, "pid"));
        ck_assert(pid >= 0 && pid < 3);
        if (!strcmp(ph, "M")) {
            const char *what = json_string_value(json_object_get(json_object_get(e, "args"), "name"));
            if (!strcmp(name, "process_name")) {
                char want[64];
                snprintf(want, sizeof want, "rank %d (stage %d)", pid, pid);
                ck_assert_str_eq(what, want);
                nproc++;
            } else if (!strcmp(name, "thread_name")) {
                int tid = (int)json_integer_value(json_object_get(e, "tid"));
                static const char *const names[] = {"compute", "p2p", "dp", "copy"};
                ck_assert_str_eq(what, names[tid]);
                nthread++;
            }
        } else if (!strcmp(ph, "X")) {
            span *sp = &spans[nx++];
            sp->pid = pid;
            sp->tid = (int)json_integer_value(json_object_get(e, "tid"));
            sp->ts = json_number_value(json_object_get(e, "ts"));
            sp->dur = json_number_value(json_object_get(e, "dur"));
            ck_assert(sp->dur >= 0);
            ck_assert_ptr_nonnull(json_string_value(json_object_get(e, "cat")));
            ck_assert(json_is_integer(json_object_get(json_object_get(e, "args"), "mb")));
            ck_assert(json_is_integer(json_object_get(json_object_get(e, "args"), "chunk")));
            if (!strcmp(name, "q\"uote\\d \x01 caf\xc3\xa9 \xef\xbf\xbd"))
                quoted++;
        } else if (!strcmp(ph, "s")) {
            ns++;
            flow_s_ids += json_integer_value(json_object_get(e, "id"));
        } else if (!strcmp(ph, "f")) {
            nf++;
            flow_f_ids += json_integer_value(json_object_get(e, "id"));
            ck_assert_str_eq(json_string_value(json_object_get(e, "bp")), "e");
        } else if (!strcmp(ph, "C")) {
            ck_assert_str_eq(name, "memory");
            ck_assert(json_is_number(json_object_get(json_object_get(e, "args"), "GiB")));
            nc++;
        }
    }
    ck_assert_int_eq(nproc, 3);
    ck_assert_int_ge(nthread, 6); /* compute, p2p, dp on each */
    ck_assert_int_gt(nx, 0);
    ck_assert_int_eq(quoted, 3);
    /* pp = 3, m = 4: 2 boundaries x 4 micro-batches x 2 directions */
    ck_assert_int_eq(ns, 16);
    ck_assert_int_eq(nf, 16);
    ck_assert_int_eq(flow_s_ids, flow_f_ids);
    ck_assert_int_gt(nc, 3);
    /* no overlap per (pid, tid) */
    for (int a = 0; a < nx; a++)
        for (int b = a + 1; b < nx; b++) {
            if (spans[a].pid != spans[b].pid || spans[a].tid != spans[b].tid)
                continue;
            int apart =
                spans[a].ts + spans[a].dur <= spans[b].ts + 1e-9 || spans[b].ts + spans[b].dur <= spans[a].ts + 1e-9;
            ck_assert_msg(apart, "overlap on pid %d tid %d: [%g +%g] and [%g +%g]", spans[a].pid, spans[a].tid,
                          spans[a].ts, spans[a].dur, spans[b].ts, spans[b].dur);
        }
    /* a known event: stage 0's first forward is [0, 1000] us, on the compute thread */
    int found = 0;
    for (int a = 0; a < nx; a++)
        if (spans[a].pid == 0 && spans[a].tid == 0 && spans[a].ts == 0 && spans[a].dur == 1000)
            found = 1;
    ck_assert(found);
    free(spans);
    json_decref(root);
    free(b1);
    free(b2);
    unlink(p1);
    unlink(p2);
    /* nothing else (no temporary file) is left in the directory */
    ck_assert_int_eq(rmdir(dir), 0);
    lw_free(l);
}
END_TEST

START_TEST(trace_links) {
    /* the max-min example, traced: a thread per shown link, one complete event per interval of
     * constant load (the flow's name when alone, else "N flows"), the same bytes twice */
    st_lowered *l = lw_new(3);
    int a = lw_link(l, 1, 0, "A"), b = lw_link(l, 3, 2, "B");
    int ab[2] = {a, b};
    int r1 = lw_route(l, 100, 2, ab, NULL), r2 = lw_route(l, 100, 1, &a, NULL), r3 = lw_route(l, 100, 1, &b, NULL);
    lw_flow(l, 0, r1, 0, 0.04, 0);
    lw_flow(l, 1, r2, 0, 0.10, 0);
    lw_flow(l, 2, r3, 0, 0.30, 0);
    char dir[] = "/tmp/strata-sim-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char p1[64], p2[64];
    snprintf(p1, sizeof p1, "%s/a.json", dir);
    snprintf(p2, sizeof p2, "%s/b.json", dir);
    write_trace(l, p1);
    write_trace(l, p2);
    size_t n1, n2;
    char *b1 = slurp(p1, &n1), *b2 = slurp(p2, &n2);
    ck_assert_uint_eq(n1, n2);
    ck_assert_msg(memcmp(b1, b2, n1) == 0, "traces differ");
    json_error_t jerr;
    json_t *root = json_loads(b1, 0, &jerr);
    ck_assert_msg(root != NULL, "invalid JSON: %s", jerr.text);
    json_t *evs = json_object_get(root, "traceEvents"), *e;
    size_t i;
    int named_a = 0, named_b = 0, spans_a = 0, spans_b = 0;
    double end_a = 0, end_b = 0;
    json_array_foreach(evs, i, e) {
        const char *ph = json_string_value(json_object_get(e, "ph"));
        const char *name = json_string_value(json_object_get(e, "name"));
        int pid = (int)json_integer_value(json_object_get(e, "pid"));
        int tid = (int)json_integer_value(json_object_get(e, "tid"));
        if (!strcmp(ph, "M") && !strcmp(name, "thread_name") && tid >= ST_STREAMS) {
            const char *what = json_string_value(json_object_get(json_object_get(e, "args"), "name"));
            named_a += pid == 0 && !strcmp(what, "A");
            named_b += pid == 2 && !strcmp(what, "B");
        }
        if (strcmp(ph, "X") || strcmp(json_string_value(json_object_get(e, "cat")), "link"))
            continue;
        ck_assert_int_ge(tid, ST_STREAMS);
        double ts = json_number_value(json_object_get(e, "ts")), dur = json_number_value(json_object_get(e, "dur"));
        json_t *args = json_object_get(e, "args");
        int flows = (int)json_integer_value(json_object_get(args, "flows"));
        double util = json_number_value(json_object_get(args, "utilization"));
        double *end = pid == 0 ? &end_a : &end_b;
        ck_assert_msg(ts >= *end - 1e-6, "link spans overlap on pid %d", pid); /* in order, apart */
        *end = ts + dur;
        if (pid == 0) { /* A: f1 + f2 full until 8 s, then f2 alone at its 1 B/s */
            spans_a++;
            if (spans_a == 1) {
                ck_assert_int_eq(flows, 2);
                ck_assert_str_eq(name, "2 flows");
                ck_assert_double_eq_tol(dur, 8e6, 1e-3);
                ck_assert_double_eq_tol(util, 1, 1e-4);
            } else {
                ck_assert_int_eq(flows, 1);
                ck_assert_str_eq(name, "flow");
                ck_assert_double_eq_tol(ts + dur, 14e6, 1e-3);
            }
        } else {
            spans_b++;
        }
    }
    ck_assert_int_eq(named_a, 1);
    ck_assert_int_eq(named_b, 1);
    ck_assert_int_eq(spans_a, 2);
    ck_assert_int_eq(spans_b, 2); /* f1 + f3, then f3 alone */
    json_decref(root);
    free(b1);
    free(b2);
    unlink(p1);
    unlink(p2);
    ck_assert_int_eq(rmdir(dir), 0);
    lw_free(l);
}
END_TEST

START_TEST(trace_errors_leave_nothing) {
    st_error err;
    st_error_clear(&err);
    ck_assert_ptr_null(st_trace_open("/nonexistent-dir/x/trace.json", st_stream_names, ST_STREAMS, &err));
    ck_assert_int_eq(err.code, ST_EIO);
    ck_assert_str_eq(err.file, "/nonexistent-dir/x/trace.json");
    st_error_clear(&err);
    ck_assert_ptr_null(st_trace_open("", st_stream_names, ST_STREAMS, &err));
    ck_assert_int_eq(st_trace_close(NULL, &err), 0);

    /* a folder there is refused when the trace is opened (st__out_target) */
    char dir[] = "/tmp/strata-sim-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    st_error_clear(&err);
    ck_assert_ptr_null(st_trace_open(dir, st_stream_names, ST_STREAMS, &err));
    ck_assert_int_eq(err.code, ST_EIO);
    ck_assert_ptr_nonnull(strstr(err.text, "a folder"));

    /* a rename that fails (the target became a non-empty directory meanwhile) removes the
     * temporary file */
    char target[64], inner[80];
    snprintf(target, sizeof target, "%s/t.json", dir);
    snprintf(inner, sizeof inner, "%s/t.json/keep", dir);
    st_trace *tr = st_trace_open(target, st_stream_names, ST_STREAMS, &err);
    ck_assert_ptr_nonnull(tr);
    ck_assert_int_eq(mkdir(target, 0700), 0);
    FILE *f = fopen(inner, "w");
    ck_assert_ptr_nonnull(f);
    fclose(f);
    st_trace_span(tr, 0, 0, 0, 1, "fwd", "fwd", 0, 0);
    ck_assert_int_eq(st_trace_close(tr, &err), ST_EIO);
    unlink(inner);
    ck_assert_int_eq(rmdir(target), 0);
    ck_assert_int_eq(rmdir(dir), 0); /* empty: no temporary file left */
}
END_TEST

Suite *suite_sim(void) {
    Suite *s = suite_create("sim");
    TCase *tc = tcase_create("engine");
    tcase_add_test(tc, single_compute);
    tcase_add_test(tc, streams_overlap);
    tcase_add_test(tc, stream_program_order);
    tcase_add_test(tc, deps_across_streams);
    tcase_add_test(tc, collective_latest_arrival);
    tcase_add_test(tc, collective_subgroups);
    tcase_add_test(tc, send_recv_rendezvous);
    tcase_add_test(tc, send_recv_duplicate_tags);
    tcase_add_test(tc, rank_numbers_not_indices);
    tcase_add_test(tc, free_before_alloc_at_equal_times);
    suite_add_tcase(s, tc);

    tc = tcase_create("pipelines");
    tcase_add_test(tc, pipeline_1f1b_closed_form);
    tcase_add_test(tc, pipeline_gpipe_closed_form);
    tcase_add_test(tc, pipeline_shapes);
    suite_add_tcase(s, tc);

    tc = tcase_create("bad");
    tcase_add_test(tc, deadlock_recv_without_send);
    tcase_add_test(tc, deadlock_circular);
    tcase_add_test(tc, deadlock_collective_missing_member);
    tcase_add_test(tc, deadlock_dep_cycle);
    tcase_add_test(tc, out_of_memory);
    tcase_add_test(tc, bad_input);
    suite_add_tcase(s, tc);

    tc = tcase_create("oracle");
    tcase_add_test(tc, oracle_random_programs);
    tcase_set_timeout(tc, 60);
    suite_add_tcase(s, tc);

    tc = tcase_create("links");
    tcase_add_test(tc, link_two_flows_share);
    tcase_add_test(tc, link_staggered_and_counted);
    tcase_add_test(tc, link_bottleneck);
    tcase_add_test(tc, link_max_min_unequal);
    tcase_add_test(tc, link_oversubscription);
    tcase_add_test(tc, link_oracle_random);
    tcase_add_test(tc, maxmin_oracle_rates);
    tcase_add_test(tc, maxmin_oracle_fabric);
    tcase_add_test(tc, link_oracle_fabric);
    tcase_add_test(tc, link_equal_links_merge);
    tcase_add_test(tc, link_bad_input);
    tcase_set_timeout(tc, 60);
    suite_add_tcase(s, tc);

    tc = tcase_create("trace");
    tcase_add_test(tc, trace_deterministic_and_valid);
    tcase_add_test(tc, trace_links);
    tcase_add_test(tc, trace_errors_leave_nothing);
    suite_add_tcase(s, tc);
    return s;
}
