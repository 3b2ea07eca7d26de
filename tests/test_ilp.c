/* test_ilp.c: the sharding ILP (search/ilp.c) against exhaustive search. */
#include "ilp.h"
#include "suites.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rng_state;
static uint64_t next(void) { /* splitmix64 */
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}
static double unif(void) { return (double)(next() >> 11) / 9007199254740992.0; }

typedef struct rp {
    int n, ns[8], ne;
    double cost[8][3], mem[8][3], ecost[32][9];
    const double *cp[8], *mp[8];
    st_ilp_edge e[32];
    st_ilp p;
} rp;

static void random_problem(rp *r, int with_mem, int with_inf) {
    memset(r, 0, sizeof *r);
    r->n = 1 + (int)(next() % 8);
    for (int i = 0; i < r->n; i++) {
        r->ns[i] = 1 + (int)(next() % 3);
        for (int k = 0; k < r->ns[i]; k++) {
            r->cost[i][k] = with_inf && k > 0 && next() % 7 == 0 ? INFINITY : 10 * unif();
            r->mem[i][k] = 5 * unif();
        }
        r->cp[i] = r->cost[i];
        r->mp[i] = r->mem[i];
    }
    for (int u = 0; u < r->n && r->ne < 32; u++)
        for (int v = u + 1; v < r->n && r->ne < 32; v++) {
            if (next() % 2) continue;
            for (int k = 0; k < r->ns[u] * r->ns[v]; k++) r->ecost[r->ne][k] = 5 * unif();
            r->e[r->ne] = (st_ilp_edge){u, v, r->ecost[r->ne]};
            r->ne++;
        }
    r->p = (st_ilp){.n = r->n, .nstrat = r->ns, .cost = r->cp, .mem = with_mem ? r->mp : NULL,
                    .mem_limit = with_mem ? 2.5 * r->n : 0, .nedges = r->ne, .edges = r->e};
}

static double objective(const rp *r, const int *ch) {
    double t = 0;
    for (int i = 0; i < r->n; i++) t += r->cost[i][ch[i]];
    for (int e = 0; e < r->ne; e++) t += r->ecost[e][ch[r->e[e].u] * r->ns[r->e[e].v] + ch[r->e[e].v]];
    return t;
}

START_TEST(ilp_equals_brute_force) {
    rng_state = 42;
    int compared = 0;
    for (int it = 0; it < 60; it++) {
        rp r;
        random_problem(&r, it % 2, it % 3 == 0);
        int a[8], b[8];
        st_ilp_result ra, rb;
        st_error e1, e2;
        int rc1 = st_ilp_solve(&r.p, a, &ra, &e1), rc2 = st_ilp_brute(&r.p, b, &rb, &e2);
        ck_assert_int_eq(rc1, rc2);
        if (rc1) continue;
        ck_assert_msg(fabs(ra.objective - rb.objective) <= 1e-9 * fmax(1, rb.objective), "ILP %.12g vs brute %.12g",
                      ra.objective, rb.objective);
        ck_assert_double_eq_tol(objective(&r, a), ra.objective, 1e-9 * fmax(1, ra.objective));
        if (r.p.mem) {
            double m = 0;
            for (int i = 0; i < r.n; i++) m += r.mem[i][a[i]];
            ck_assert(m <= r.p.mem_limit + 1e-9);
        }
        compared++;
    }
    ck_assert_int_ge(compared, 30);
}
END_TEST

START_TEST(ilp_infeasible_memory_says_by_how_much) {
    int ns[2] = {2, 2};
    double c0[2] = {1, 2}, c1[2] = {1, 2}, m0[2] = {10, 6}, m1[2] = {10, 6};
    const double *cp[2] = {c0, c1}, *mp[2] = {m0, m1};
    st_ilp p = {.n = 2, .nstrat = ns, .cost = cp, .mem = mp, .mem_limit = 11};
    int ch[2];
    st_ilp_result r;
    st_error err;
    ck_assert_int_eq(st_ilp_solve(&p, ch, &r, &err), ST_ENOPLAN);
    ck_assert_msg(strstr(err.text, "limit"), "%s", err.text);
    /* with room for one big strategy, the cheap-in-memory one goes where the edge says */
    p.mem_limit = 16;
    ck_assert_int_eq(st_ilp_solve(&p, ch, &r, &err), 0);
    ck_assert_double_eq_tol(r.objective, 3, 1e-12);
}
END_TEST

START_TEST(ilp_malformed) {
    int ns[2] = {2, 0};
    double c0[2] = {1, 2}, c1[2] = {1, 2};
    const double *cp[2] = {c0, c1};
    st_ilp p = {.n = 2, .nstrat = ns, .cost = cp};
    int ch[2];
    st_ilp_result r;
    st_error err;
    ck_assert_int_eq(st_ilp_solve(&p, ch, &r, &err), ST_EINVAL);
    ns[1] = 2;
    c1[0] = NAN;
    ck_assert_int_eq(st_ilp_solve(&p, ch, &r, &err), ST_EINVAL);
    c1[0] = 1;
    double ec[4] = {0, 0, 0, 0};
    st_ilp_edge e = {1, 1, ec};
    p.nedges = 1;
    p.edges = &e;
    ck_assert_int_eq(st_ilp_solve(&p, ch, &r, &err), ST_EINVAL);
}
END_TEST

Suite *suite_ilp(void) {
    Suite *s = suite_create("ilp");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, ilp_equals_brute_force);
    tcase_add_test(tc, ilp_infeasible_memory_says_by_how_much);
    tcase_add_test(tc, ilp_malformed);
    suite_add_tcase(s, tc);
    return s;
}
