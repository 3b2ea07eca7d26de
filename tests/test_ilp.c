/* test_ilp.c: the sharding ILP (search/ilp.c) against its oracles. Exhaustive search
 * (st_ilp_brute) on random small problems (sparse, dense and chain graphs, repeated and reversed
 * edges, infinite costs, memory limits with ties at the limit), in all three modes of the solver:
 * the plain formulation, the default reductions, and every stage forced; the plain formulation
 * against the reduced one on larger problems where brute force cannot go; hand-made problems
 * with known answers; the infeasible-memory message and its numbers; malformed problems; time
 * limits (validity only: the timing is the machine's); chains of single-strategy nodes; and the
 * workload of the design (a 100-node chain with 40 strategies per node). Each returned
 * assignment is re-priced here, independently of the solver. */
#include "search/ilp.h"
#include "suites.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- helpers */

static uint64_t rng_state;
static uint64_t next(void) { /* splitmix64 */
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}
static double unif(void) { return (double)(next() >> 11) * 0x1.0p-53; }
static int rnd(int n) { return (int)(next() % (uint64_t)n); }

/* A problem that owns its arrays. */
typedef struct prob {
    int n, ne, *ns;
    double **cost, **mem, **ecost;
    st_ilp_edge *e;
    st_ilp p;
} prob;

static void prob_init(prob *q, int n, int maxedges) {
    memset(q, 0, sizeof *q);
    q->n = n;
    q->ns = calloc((size_t)n, sizeof *q->ns);
    q->cost = calloc((size_t)n, sizeof *q->cost);
    q->mem = calloc((size_t)n, sizeof *q->mem);
    q->ecost = calloc((size_t)maxedges + 1, sizeof *q->ecost);
    q->e = calloc((size_t)maxedges + 1, sizeof *q->e);
    ck_assert(q->ns && q->cost && q->mem && q->ecost && q->e);
}

static void prob_node(prob *q, int i, int k) {
    q->ns[i] = k;
    q->cost[i] = calloc((size_t)k, sizeof **q->cost);
    q->mem[i] = calloc((size_t)k, sizeof **q->mem);
    ck_assert(q->cost[i] && q->mem[i]);
}

static double *prob_edge(prob *q, int u, int v) {
    double *c = calloc((size_t)q->ns[u] * q->ns[v], sizeof *c);
    ck_assert(c);
    q->ecost[q->ne] = c;
    q->e[q->ne++] = (st_ilp_edge){u, v, c};
    return c;
}

static void prob_finish(prob *q, int with_mem, double limit, double time_limit_s) {
    q->p = (st_ilp){.n = q->n,
                    .nstrat = q->ns,
                    .cost = (const double *const *)q->cost,
                    .mem = with_mem ? (const double *const *)q->mem : NULL,
                    .mem_limit = limit,
                    .nedges = q->ne,
                    .edges = q->e,
                    .time_limit_s = time_limit_s};
}

static void prob_free(prob *q) {
    for (int i = 0; i < q->n; i++) free(q->cost[i]), free(q->mem[i]);
    for (int j = 0; j < q->ne; j++) free(q->ecost[j]);
    free(q->ns), free(q->cost), free(q->mem), free(q->ecost), free(q->e);
}

/* Cost of an assignment, recomputed here in the order ilp.h documents (nodes, then edges). */
static double price(const prob *q, const int *x) {
    double c = 0;
    for (int i = 0; i < q->n; i++) c += q->cost[i][x[i]];
    for (int j = 0; j < q->ne; j++) c += q->ecost[j][(size_t)x[q->e[j].u] * q->ns[q->e[j].v] + x[q->e[j].v]];
    return c;
}

static double memory(const prob *q, const int *x) {
    double m = 0;
    for (int i = 0; i < q->n; i++) m += q->mem[i][x[i]];
    return m;
}

/* A returned assignment is in range, finite, fits, and is priced as reported. */
static void check_answer(const prob *q, const int *x, const st_ilp_result *r) {
    for (int i = 0; i < q->n; i++) ck_assert_msg(x[i] >= 0 && x[i] < q->ns[i], "node %d: strategy %d", i, x[i]);
    double c = price(q, x);
    ck_assert_msg(isfinite(c), "infinite cost returned");
    ck_assert_msg(c == r->objective, "objective %.17g, re-priced %.17g", r->objective, c);
    if (q->p.mem && q->p.mem_limit > 0) {
        ck_assert_msg(memory(q, x) <= q->p.mem_limit, "memory %.17g over the limit %.17g", memory(q, x), q->p.mem_limit);
        ck_assert_double_eq(r->mem_bytes, memory(q, x));
    }
    ck_assert(r->gap >= 0);
    ck_assert(r->bound <= r->objective);
    if (r->optimal) {
        ck_assert_double_eq(r->bound, r->objective);
        ck_assert_double_eq(r->gap, 0);
    }
    ck_assert(r->solve_time_s >= 0);
}

/* Random small problem: up to maxn nodes with up to maxk strategies; shape 0 sparse random
 * edges (some repeated, some reversed), 1 dense (every pair, some twice), 2 a chain. */
static void random_problem(prob *q, int maxn, int maxk, int shape, int with_mem, int with_inf) {
    int n = 1 + rnd(maxn);
    prob_init(q, n, 2 * n * n);
    int intmem = rnd(2); /* integer memories make ties at the limit likely */
    for (int i = 0; i < n; i++) {
        prob_node(q, i, 1 + rnd(maxk));
        for (int s = 0; s < q->ns[i]; s++) {
            q->cost[i][s] = with_inf && rnd(6) == 0 ? INFINITY : rnd(8) == 0 ? 0 : unif();
            q->mem[i][s] = intmem ? rnd(5) : 10 * unif();
        }
    }
    for (int u = 0; u < n; u++)
        for (int v = 0; v < n; v++) {
            if (u == v) continue;
            int take = shape == 1 ? u < v || rnd(6) == 0 : shape == 2 ? v == u + 1 : rnd(4) == 0;
            if (!take) continue;
            double *c = prob_edge(q, u, v);
            for (int t = 0; t < q->ns[u] * q->ns[v]; t++) c[t] = with_inf && rnd(10) == 0 ? INFINITY : rnd(5) == 0 ? 0 : 0.7 * unif();
        }
    double least = 0, most = 0;
    for (int i = 0; i < n; i++) {
        double lo = INFINITY, hi = 0;
        for (int s = 0; s < q->ns[i]; s++) lo = fmin(lo, q->mem[i][s]), hi = fmax(hi, q->mem[i][s]);
        least += lo, most += hi;
    }
    /* from a little below the least (infeasible) to well inside */
    double limit = least + (most - least) * (1.1 * unif() - 0.1);
    if (intmem) limit = floor(limit);
    prob_finish(q, with_mem, with_mem ? fmax(limit, 0.5) : 0, 0);
}

/* ---------------------------------------------------------------- oracle: brute force */

START_TEST(ilp_equals_brute_force) {
    rng_state = 20261122;
    int solved[3] = {0}, infeasible = 0, with_memory = 0, total = 0;
    for (int it = 0; it < 400; it++) {
        prob q;
        random_problem(&q, 8, 3, it % 3, it % 4 != 0, it % 5 < 2);
        int b[8], x[8];
        st_ilp_result rb, rx;
        st_error eb, ex;
        int rcb = st_ilp_brute(&q.p, b, &rb, &eb);
        ck_assert_msg(rcb == 0 || rcb == ST_ENOPLAN, "brute: %s", eb.text);
        if (rcb == 0) {
            check_answer(&q, b, &rb);
            ck_assert(rb.optimal);
        } else
            infeasible++;
        for (int mode = 0; mode < 3; mode++) {
            st__ilp_reduce = mode;
            int rcx = st_ilp_solve(&q.p, x, &rx, &ex);
            ck_assert_msg(rcx == rcb, "problem %d mode %d: rc %d (%s), brute %d (%s)", it, mode, rcx, rcx ? ex.text : "",
                          rcb, rcb ? eb.text : "");
            if (rcx) {
                /* the same reason; with a memory row, "nothing finite at all" may be found either
                 * before or after the memory bound, so either name is right there */
                if (!q.p.mem) ck_assert_str_eq(ex.key, eb.key);
                ck_assert_msg(!strcmp(ex.key, "cost") || !strcmp(ex.key, "memory"), "key %s", ex.key);
                continue;
            }
            ck_assert_msg(fabs(rx.objective - rb.objective) <= 1e-9 * fmax(1e-12, fabs(rb.objective)),
                          "problem %d mode %d: ILP %.17g, brute force %.17g", it, mode, rx.objective, rb.objective);
            check_answer(&q, x, &rx);
            ck_assert(rx.optimal);
            solved[mode]++;
        }
        st__ilp_reduce = 1;
        with_memory += q.p.mem != NULL && rcb == 0;
        total++;
        prob_free(&q);
    }
    /* the oracle must have had something to say on both sides */
    ck_assert_int_ge(solved[1], 200);
    ck_assert_int_eq(solved[0], solved[1]);
    ck_assert_int_eq(solved[2], solved[1]);
    ck_assert_int_ge(infeasible, 20);
    ck_assert_int_ge(with_memory, 100);
    ck_assert_int_eq(total, 400);
}
END_TEST

/* More strategies on fewer nodes: dense 6x6 edge matrices, where dominance and fixing bite. */
START_TEST(ilp_equals_brute_force_wide) {
    rng_state = 77;
    int solved = 0;
    for (int it = 0; it < 120; it++) {
        prob q;
        random_problem(&q, 6, 6, it % 3, it % 3 != 0, it % 4 == 0);
        int b[6], x[6];
        st_ilp_result rb, rx;
        st_error eb, ex;
        int rcb = st_ilp_brute(&q.p, b, &rb, &eb);
        for (int mode = 1; mode < 3; mode++) {
            st__ilp_reduce = mode;
            int rcx = st_ilp_solve(&q.p, x, &rx, &ex);
            ck_assert_int_eq(rcx, rcb);
            if (rcx) continue;
            ck_assert_msg(fabs(rx.objective - rb.objective) <= 1e-9 * fmax(1e-12, fabs(rb.objective)),
                          "problem %d mode %d: ILP %.17g, brute force %.17g", it, mode, rx.objective, rb.objective);
            check_answer(&q, x, &rx);
            solved += mode == 1;
        }
        st__ilp_reduce = 1;
        prob_free(&q);
    }
    ck_assert_int_ge(solved, 60);
}
END_TEST

/* ---------------------------------------------------------------- oracle: the plain formulation */

/* Larger problems (chains with skip edges and a few long ones, up to 12 strategies, memory
 * limits in whole 100 MB steps so the optimum often sits on the limit): the reduced solver and
 * GLPK on the plain formulation agree. */
START_TEST(ilp_equals_plain_formulation) {
    rng_state = 5;
    int solved = 0;
    for (int it = 0; it < 24; it++) {
        int n = 10 + rnd(20);
        prob q;
        prob_init(&q, n, 3 * n);
        for (int i = 0; i < n; i++) {
            prob_node(&q, i, 1 + rnd(12));
            for (int s = 0; s < q.ns[i]; s++) {
                q.cost[i][s] = rnd(15) == 0 ? INFINITY : unif();
                q.mem[i][s] = rnd(20) * 1e8;
            }
        }
        for (int u = 0; u + 1 < n; u++) {
            int to[3] = {u + 1, u + 2 < n && rnd(2) ? u + 2 : -1, it % 3 == 2 && rnd(4) == 0 ? rnd(n) : -1};
            for (int t = 0; t < 3; t++) {
                if (to[t] < 0 || to[t] == u) continue;
                int a = rnd(2) ? u : to[t], b = a == u ? to[t] : u;
                double *c = prob_edge(&q, a, b);
                for (int z = 0; z < q.ns[a] * q.ns[b]; z++) c[z] = rnd(30) == 0 ? INFINITY : 0.5 * unif();
            }
        }
        double least = 0, most = 0;
        for (int i = 0; i < n; i++) {
            double lo = INFINITY, hi = 0;
            for (int s = 0; s < q.ns[i]; s++)
                if (isfinite(q.cost[i][s])) lo = fmin(lo, q.mem[i][s]), hi = fmax(hi, q.mem[i][s]);
            if (!isfinite(lo)) lo = hi = 0;
            least += lo, most += hi;
        }
        prob_finish(&q, it % 4 != 0, least + (most - least) * 0.6 * unif(), 0);
        double obj[3];
        int rc[3], x[40];
        for (int mode = 0; mode < 3; mode++) {
            st_ilp_result r;
            st_error err;
            st__ilp_reduce = mode;
            rc[mode] = st_ilp_solve(&q.p, x, &r, &err);
            obj[mode] = rc[mode] ? NAN : r.objective;
            if (rc[mode] == 0) {
                check_answer(&q, x, &r);
                ck_assert(r.optimal);
            }
        }
        st__ilp_reduce = 1;
        ck_assert_int_eq(rc[1], rc[0]);
        ck_assert_int_eq(rc[2], rc[0]);
        if (rc[0] == 0) {
            ck_assert_msg(fabs(obj[1] - obj[0]) <= 1e-9 * fabs(obj[0]), "problem %d: plain %.17g, reduced %.17g", it, obj[0], obj[1]);
            ck_assert_msg(fabs(obj[2] - obj[0]) <= 1e-9 * fabs(obj[0]), "problem %d: plain %.17g, forced %.17g", it, obj[0], obj[2]);
            solved++;
        }
        prob_free(&q);
    }
    ck_assert_int_ge(solved, 12);
}
END_TEST

/* ---------------------------------------------------------------- known answers */

/* Three nodes in a chain, two layouts each; changing layout across an edge costs 5.
 *   costs A {1, 2}  B {1, 1}  C {2, 0.5}: all-1 costs 3.5, all-0 costs 4, any mix >= 7.5.
 *   memory A {1, 4}  B {1, 1}  C {1, 1}: a limit of 5 rules out all-1 (6), so all-0 (3) wins. */
static void three_nodes(prob *q) {
    prob_init(q, 3, 2);
    double c[3][2] = {{1, 2}, {1, 1}, {2, 0.5}}, m[3][2] = {{1, 4}, {1, 1}, {1, 1}};
    for (int i = 0; i < 3; i++) {
        prob_node(q, i, 2);
        memcpy(q->cost[i], c[i], sizeof c[i]);
        memcpy(q->mem[i], m[i], sizeof m[i]);
    }
    double *ab = prob_edge(q, 0, 1), *bc = prob_edge(q, 1, 2);
    double reshard[4] = {0, 5, 5, 0};
    memcpy(ab, reshard, sizeof reshard);
    memcpy(bc, reshard, sizeof reshard);
}

START_TEST(ilp_three_nodes_known_answer) {
    prob q;
    three_nodes(&q);
    int x[3];
    st_ilp_result r;
    st_error err;
    for (int mode = 0; mode < 3; mode++) {
        st__ilp_reduce = mode;
        prob_finish(&q, 0, 0, 0);
        ck_assert_int_eq(st_ilp_solve(&q.p, x, &r, &err), 0);
        ck_assert_int_eq(x[0], 1);
        ck_assert_int_eq(x[1], 1);
        ck_assert_int_eq(x[2], 1);
        ck_assert_double_eq(r.objective, 3.5);
        ck_assert(r.optimal);
        ck_assert_double_eq(r.gap, 0);

        prob_finish(&q, 1, 5, 0);
        ck_assert_int_eq(st_ilp_solve(&q.p, x, &r, &err), 0);
        ck_assert_int_eq(x[0], 0);
        ck_assert_int_eq(x[1], 0);
        ck_assert_int_eq(x[2], 0);
        ck_assert_double_eq(r.objective, 4);
        ck_assert_double_eq(r.mem_bytes, 3);
        ck_assert_double_eq(r.bound, 4);
        ck_assert(r.optimal);

        /* exactly at the limit fits */
        prob_finish(&q, 1, 6, 0);
        ck_assert_int_eq(st_ilp_solve(&q.p, x, &r, &err), 0);
        ck_assert_double_eq(r.objective, 3.5);
        ck_assert_double_eq(r.mem_bytes, 6);

        /* A's layout 1 forbidden: all-0 */
        q.cost[0][1] = INFINITY;
        prob_finish(&q, 0, 0, 0);
        ck_assert_int_eq(st_ilp_solve(&q.p, x, &r, &err), 0);
        ck_assert_int_eq(x[0], 0);
        ck_assert_int_eq(x[1], 0);
        ck_assert_int_eq(x[2], 0);
        ck_assert_double_eq(r.objective, 4);
        q.cost[0][1] = 2;

        /* the pair (B=1, C=1) forbidden on its edge: all-1 is gone, all-0 (4) is next */
        q.ecost[1][3] = INFINITY;
        ck_assert_int_eq(st_ilp_solve(&q.p, x, &r, &err), 0);
        ck_assert_double_eq(r.objective, 4);
        ck_assert(!(x[1] == 1 && x[2] == 1));
        q.ecost[1][3] = 0;
    }
    st__ilp_reduce = 1;
    prob_free(&q);
}
END_TEST

/* Edges repeated between the same pair, in either direction, are summed. */
START_TEST(ilp_repeated_edges_sum) {
    prob q;
    prob_init(&q, 2, 3);
    prob_node(&q, 0, 2), prob_node(&q, 1, 3);
    double c0[2] = {0, 0}, c1[3] = {0, 0, 0};
    memcpy(q.cost[0], c0, sizeof c0), memcpy(q.cost[1], c1, sizeof c1);
    double *e1 = prob_edge(&q, 0, 1), *e2 = prob_edge(&q, 1, 0), *e3 = prob_edge(&q, 0, 1);
    /* alone, e1 prefers (0, 0); e2 (stored [b of 1][a of 0]) adds 3 there, e3 0.25 at (1, 2) */
    double m1[6] = {0, 1, 2, 1, 1, 1}, m2[6] = {3, 0, 0, 0, 0, 0}, m3[6] = {0, 0, 0, 0, 0, 0.25};
    memcpy(e1, m1, sizeof m1), memcpy(e2, m2, sizeof m2), memcpy(e3, m3, sizeof m3);
    prob_finish(&q, 0, 0, 0);
    int x[2];
    st_ilp_result r;
    st_error err;
    /* sums: (0,0) 3, (0,1) 1, (0,2) 2, (1,0) 1, (1,1) 1, (1,2) 1.25: (0,1), (1,0), (1,1) tie at 1 */
    ck_assert_int_eq(st_ilp_solve(&q.p, x, &r, &err), 0);
    ck_assert_double_eq(r.objective, 1);
    ck_assert_double_eq(price(&q, x), 1);
    prob_free(&q);
}
END_TEST

/* ---------------------------------------------------------------- no plan */

#define GiB (1024.0 * 1024.0 * 1024.0)

START_TEST(ilp_infeasible_memory_says_by_how_much) {
    prob q;
    prob_init(&q, 2, 1);
    prob_node(&q, 0, 3), prob_node(&q, 1, 2);
    double c0[3] = {1, 2, INFINITY}, m0[3] = {20 * GiB, 30 * GiB, 1 * GiB}; /* the tiny one is forbidden */
    double c1[2] = {1, 1}, m1[2] = {32.3 * GiB, 40 * GiB};
    memcpy(q.cost[0], c0, sizeof c0), memcpy(q.mem[0], m0, sizeof m0);
    memcpy(q.cost[1], c1, sizeof c1), memcpy(q.mem[1], m1, sizeof m1);
    double *e = prob_edge(&q, 0, 1);
    for (int z = 0; z < 6; z++) e[z] = 0.5;
    prob_finish(&q, 1, 40 * GiB, 0);
    int x[2];
    st_ilp_result r;
    st_error err;
    for (int mode = 0; mode < 3; mode++) {
        st__ilp_reduce = mode;
        ck_assert_int_eq(st_ilp_solve(&q.p, x, &r, &err), ST_ENOPLAN);
        ck_assert_str_eq(err.key, "memory");
        ck_assert_msg(strstr(err.text, "40.0 GiB"), "%s", err.text);
        ck_assert_msg(strstr(err.text, "52.3 GiB"), "%s", err.text);
        ck_assert_msg(strstr(err.text, "12.3 GiB over"), "%s", err.text);
    }
    st__ilp_reduce = 1;
    ck_assert_int_eq(st_ilp_brute(&q.p, x, &r, &err), ST_ENOPLAN);
    ck_assert_msg(strstr(err.text, "12.3 GiB over"), "%s", err.text);

    /* with room, the smaller strategies are taken */
    q.p.mem_limit = 52.3 * GiB;
    ck_assert_int_eq(st_ilp_solve(&q.p, x, &r, &err), 0);
    ck_assert_int_eq(x[0], 0);
    ck_assert_int_eq(x[1], 0);
    ck_assert_double_eq(r.objective, 2.5);
    prob_free(&q);

    /* the lead's first case: two nodes of {10, 6} bytes, limit 11 then 16 */
    prob_init(&q, 2, 0);
    for (int i = 0; i < 2; i++) {
        prob_node(&q, i, 2);
        q.cost[i][0] = 1, q.cost[i][1] = 2, q.mem[i][0] = 10, q.mem[i][1] = 6;
    }
    prob_finish(&q, 1, 11, 0);
    ck_assert_int_eq(st_ilp_solve(&q.p, x, &r, &err), ST_ENOPLAN);
    ck_assert_msg(strstr(err.text, "11 B") && strstr(err.text, "12 B") && strstr(err.text, "1 B over"), "%s", err.text);
    q.p.mem_limit = 16;
    ck_assert_int_eq(st_ilp_solve(&q.p, x, &r, &err), 0);
    ck_assert_double_eq(r.objective, 3);
    prob_free(&q);
}
END_TEST

/* Each node fits alone, but the assignments that fit are forbidden by an infinite pair; and a
 * problem where every assignment is infinite. */
START_TEST(ilp_no_finite_assignment) {
    prob q;
    prob_init(&q, 2, 1);
    prob_node(&q, 0, 2), prob_node(&q, 1, 2);
    double m[2] = {1, 5};
    memcpy(q.mem[0], m, sizeof m), memcpy(q.mem[1], m, sizeof m);
    double *e = prob_edge(&q, 0, 1);
    double pairs[4] = {INFINITY, 0, 0, 0}; /* (0, 0), the only pair within 3 bytes, is forbidden */
    memcpy(e, pairs, sizeof pairs);
    prob_finish(&q, 1, 3, 0);
    int x[2];
    st_ilp_result r;
    st_error err;
    for (int mode = 0; mode < 3; mode++) {
        st__ilp_reduce = mode;
        ck_assert_int_eq(st_ilp_solve(&q.p, x, &r, &err), ST_ENOPLAN);
        ck_assert_str_eq(err.key, "memory");
    }
    ck_assert_int_eq(st_ilp_brute(&q.p, x, &r, &err), ST_ENOPLAN);
    /* every pair forbidden */
    for (int z = 0; z < 4; z++) e[z] = INFINITY;
    prob_finish(&q, 0, 0, 0);
    for (int mode = 0; mode < 3; mode++) {
        st__ilp_reduce = mode;
        ck_assert_int_eq(st_ilp_solve(&q.p, x, &r, &err), ST_ENOPLAN);
        ck_assert_str_eq(err.key, "cost");
        ck_assert_msg(strstr(err.text, "infinite"), "%s", err.text);
    }
    st__ilp_reduce = 1;
    ck_assert_int_eq(st_ilp_brute(&q.p, x, &r, &err), ST_ENOPLAN);
    /* a node whose every strategy is forbidden is named */
    e[0] = 0;
    q.cost[1][0] = q.cost[1][1] = INFINITY;
    ck_assert_int_eq(st_ilp_solve(&q.p, x, &r, &err), ST_ENOPLAN);
    ck_assert_msg(strstr(err.text, "node 1"), "%s", err.text);
    prob_free(&q);
}
END_TEST

/* ---------------------------------------------------------------- malformed */

START_TEST(ilp_malformed) {
    prob q;
    prob_init(&q, 3, 2);
    for (int i = 0; i < 3; i++) prob_node(&q, i, 2);
    prob_edge(&q, 0, 1);
    prob_finish(&q, 1, 10, 0);
    int x[3];
    st_ilp_result r;
    st_error err;
    ck_assert_int_eq(st_ilp_solve(&q.p, x, &r, &err), 0); /* the base problem is fine */

#define BAD(expr_set, expr_reset, needle)                                                          \
    do {                                                                                           \
        expr_set;                                                                                  \
        st_error_clear(&err);                                                                      \
        ck_assert_int_eq(st_ilp_solve(&q.p, x, &r, &err), ST_EINVAL);                              \
        ck_assert_msg(strstr(err.text, needle), "'%s' not in: %s", needle, err.text);              \
        ck_assert_int_eq(st_ilp_brute(&q.p, x, &r, &err), ST_EINVAL);                              \
        expr_reset;                                                                                \
        ck_assert_int_eq(st_ilp_solve(&q.p, x, &r, &err), 0);                                      \
    } while (0)
    BAD(q.p.n = 0, q.p.n = 3, "0 nodes");
    BAD(q.ns[2] = 0, q.ns[2] = 2, "node 2 has 0 strategies");
    BAD(q.cost[1][1] = -1, q.cost[1][1] = 0, "node 1 strategy 1");
    BAD(q.cost[2][0] = NAN, q.cost[2][0] = 0, "node 2 strategy 0");
    BAD(q.mem[0][1] = -1, q.mem[0][1] = 0, "node 0 strategy 1: memory");
    BAD(q.mem[0][0] = INFINITY, q.mem[0][0] = 0, "node 0 strategy 0: memory");
    BAD(q.e[0].u = 3, q.e[0].u = 0, "edge 0 (3 -> 1)");
    BAD(q.e[0].v = -1, q.e[0].v = 1, "out of range");
    BAD(q.e[0].v = 0, q.e[0].v = 1, "joins node 0 to itself");
    BAD(q.ecost[0][3] = -0.5, q.ecost[0][3] = 0, "cost[1][1]");
    BAD(q.ecost[0][2] = NAN, q.ecost[0][2] = 0, "cost[1][0]");
    BAD(q.p.edges = NULL, q.p.edges = q.e, "edges");
    BAD(q.p.nedges = -1, q.p.nedges = 1, "edges");
    BAD(q.p.mem_limit = NAN, q.p.mem_limit = 10, "NaN");
#undef BAD
    ck_assert_int_eq(st_ilp_solve(NULL, x, &r, &err), ST_EINVAL);
    ck_assert_int_eq(st_ilp_solve(&q.p, NULL, &r, &err), ST_EINVAL);
    prob_free(&q);

    /* brute force refuses what it cannot enumerate */
    prob_init(&q, 24, 0);
    for (int i = 0; i < 24; i++) prob_node(&q, i, 2); /* 2^24 > 1e7 */
    prob_finish(&q, 0, 0, 0);
    ck_assert_int_eq(st_ilp_brute(&q.p, x, &r, &err), ST_EINVAL);
    ck_assert_msg(strstr(err.text, "brute force"), "%s", err.text);
    int *y = malloc(24 * sizeof *y);
    ck_assert_int_eq(st_ilp_solve(&q.p, y, &r, &err), 0); /* the solver does not care */
    ck_assert_double_eq(r.objective, 0);
    free(y);
    prob_free(&q);
}
END_TEST

/* ---------------------------------------------------------------- single strategies */

START_TEST(ilp_chain_of_fixed_nodes) {
    /* every node has one strategy: the answer is the sum, whatever the graph */
    prob q;
    prob_init(&q, 12, 12);
    double want = 0, mem = 0;
    for (int i = 0; i < 12; i++) {
        prob_node(&q, i, 1);
        q.cost[i][0] = 0.25 * i, q.mem[i][0] = 1 + i;
        want += 0.25 * i, mem += 1 + i;
    }
    for (int i = 0; i + 1 < 12; i++) want += (prob_edge(&q, i, i + 1)[0] = 0.5);
    int x[12];
    st_ilp_result r;
    st_error err;
    for (int mode = 0; mode < 3; mode++) {
        st__ilp_reduce = mode;
        prob_finish(&q, 1, mem, 0); /* exactly full */
        ck_assert_int_eq(st_ilp_solve(&q.p, x, &r, &err), 0);
        for (int i = 0; i < 12; i++) ck_assert_int_eq(x[i], 0);
        ck_assert_double_eq_tol(r.objective, want, 1e-12);
        ck_assert(r.optimal);
        check_answer(&q, x, &r);
        prob_finish(&q, 1, mem - 0.5, 0);
        ck_assert_int_eq(st_ilp_solve(&q.p, x, &r, &err), ST_ENOPLAN);
        ck_assert_str_eq(err.key, "memory");
    }
    st__ilp_reduce = 1;
    prob_free(&q);

    /* fixed nodes between free ones pass their edges on: a chain free-fixed-free-fixed-free */
    rng_state = 3;
    for (int it = 0; it < 30; it++) {
        prob_init(&q, 5, 6);
        for (int i = 0; i < 5; i++) {
            prob_node(&q, i, i % 2 ? 1 : 3);
            for (int s = 0; s < q.ns[i]; s++) q.cost[i][s] = unif(), q.mem[i][s] = rnd(4);
        }
        for (int i = 0; i + 1 < 5; i++) {
            double *c = prob_edge(&q, i, i + 1);
            for (int z = 0; z < q.ns[i] * q.ns[i + 1]; z++) c[z] = unif();
        }
        double *c = prob_edge(&q, 4, 0); /* and a long edge between free ones */
        for (int z = 0; z < 9; z++) c[z] = unif();
        prob_finish(&q, it % 2, 6, 0);
        int b[5];
        st_ilp_result rb;
        int rcb = st_ilp_brute(&q.p, b, &rb, &err);
        ck_assert_int_eq(st_ilp_solve(&q.p, x, &r, &err), rcb);
        if (rcb == 0) {
            ck_assert(fabs(r.objective - rb.objective) <= 1e-9 * rb.objective);
            check_answer(&q, x, &r);
        }
        prob_free(&q);
    }
}
END_TEST

/* ---------------------------------------------------------------- time limits and the workload */

/* Random graph of treewidth well above 2, with a tight memory limit: hard for any solver.
 * Under a time limit the answer is valid and consistent, optimal or not; nothing about the
 * timing is asserted beyond a generous sanity bound. */
START_TEST(ilp_time_limit_gives_valid_incumbent) {
    rng_state = 11;
    prob q;
    int n = 60, k = 25;
    prob_init(&q, n, 2 * n);
    double least = 0, most = 0;
    for (int i = 0; i < n; i++) {
        prob_node(&q, i, k);
        double lo = INFINITY, hi = 0;
        for (int s = 0; s < k; s++) {
            q.cost[i][s] = unif();
            q.mem[i][s] = 1e9 * (1 + 9 * unif());
            lo = fmin(lo, q.mem[i][s]), hi = fmax(hi, q.mem[i][s]);
        }
        least += lo, most += hi;
    }
    for (int j = 0; j < 2 * n - 10; j++) {
        int u = j < n - 1 ? j : rnd(n), v = j < n - 1 ? j + 1 : rnd(n);
        if (u == v) v = (u + 1) % n;
        double *c = prob_edge(&q, u, v);
        for (int z = 0; z < k * k; z++) c[z] = 0.5 * unif();
    }
    int *x = malloc((size_t)n * sizeof *x);
    st_ilp_result r;
    st_error err;
    double limits[3] = {0.3, 0.05, 1e-4};
    for (int t = 0; t < 3; t++) {
        prob_finish(&q, 1, least + 0.2 * (most - least), limits[t]);
        int rc = st_ilp_solve(&q.p, x, &r, &err);
        if (rc) { /* allowed only as "the time ran out before anything was found" */
            ck_assert_int_eq(rc, ST_ENOPLAN);
            ck_assert_str_eq(err.key, "time_limit_s");
            ck_assert_msg(strstr(err.text, "time limit"), "%s", err.text);
            continue;
        }
        check_answer(&q, x, &r);
        ck_assert(r.gap >= 0 && r.gap <= 1);
        ck_assert(r.bound >= 0);
        ck_assert(r.solve_time_s < limits[t] + 30);
    }
    free(x);
    prob_free(&q);
}
END_TEST

/* The design's workload: a chain of 100 nodes with 40 strategies each and dense random edge
 * matrices (160,000 pair variables), without and with a binding memory limit. Solved to proven
 * optimality; the same input gives the same answer; the times go to the log. */
START_TEST(ilp_chain_100_by_40) {
    rng_state = 42;
    int n = 100, k = 40;
    prob q;
    prob_init(&q, n, n);
    double least = 0, most = 0;
    for (int i = 0; i < n; i++) {
        prob_node(&q, i, k);
        double lo = INFINITY, hi = 0;
        for (int s = 0; s < k; s++) {
            q.cost[i][s] = unif();
            q.mem[i][s] = 1e9 * (1 + 9 * unif());
            lo = fmin(lo, q.mem[i][s]), hi = fmax(hi, q.mem[i][s]);
        }
        least += lo, most += hi;
    }
    for (int i = 0; i + 1 < n; i++) {
        double *c = prob_edge(&q, i, i + 1);
        for (int z = 0; z < k * k; z++) c[z] = 0.5 * unif();
    }
    int *x = malloc((size_t)n * sizeof *x), *y = malloc((size_t)n * sizeof *y);
    double frac[4] = {0, 0.5, 0.1, 0.02}, prev = 0;
    for (int t = 0; t < 4; t++) {
        st_ilp_result r, r2;
        st_error err;
        prob_finish(&q, frac[t] > 0, frac[t] > 0 ? least + frac[t] * (most - least) : 0, 0);
        ck_assert_int_eq(st_ilp_solve(&q.p, x, &r, &err), 0);
        check_answer(&q, x, &r);
        ck_assert(r.optimal);
        ck_assert(r.objective >= prev); /* tighter limits never make it cheaper */
        prev = r.objective;
        ck_assert_int_eq(st_ilp_solve(&q.p, y, &r2, &err), 0);
        ck_assert_int_eq(memcmp(x, y, (size_t)n * sizeof *x), 0);
        fprintf(stderr, "ilp: chain %d x %d, memory limit %s%.0f%% of the range: %.3f s (objective %.6f, %d x %d ILP)\n",
                n, k, frac[t] > 0 ? "" : "none, ", 100 * frac[t], r.solve_time_s, r.objective, r.rows, r.cols);
    }
    free(x), free(y);
    prob_free(&q);
}
END_TEST

Suite *suite_ilp(void) {
    Suite *s = suite_create("ilp");
    TCase *tc = tcase_create("oracle");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, ilp_equals_brute_force);
    tcase_add_test(tc, ilp_equals_brute_force_wide);
    tcase_add_test(tc, ilp_equals_plain_formulation);
    suite_add_tcase(s, tc);

    tc = tcase_create("cases");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, ilp_three_nodes_known_answer);
    tcase_add_test(tc, ilp_repeated_edges_sum);
    tcase_add_test(tc, ilp_infeasible_memory_says_by_how_much);
    tcase_add_test(tc, ilp_no_finite_assignment);
    tcase_add_test(tc, ilp_malformed);
    tcase_add_test(tc, ilp_chain_of_fixed_nodes);
    suite_add_tcase(s, tc);

    tc = tcase_create("scale");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, ilp_time_limit_gives_valid_incumbent);
    tcase_add_test(tc, ilp_chain_100_by_40);
    suite_add_tcase(s, tc);
    return s;
}
