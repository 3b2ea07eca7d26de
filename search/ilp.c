/* ilp.c: the operator-sharding ILP of ilp.h, solved with GLPK, and its brute-force oracle.
 *
 * Formulation (Zheng et al., OSDI'22 "Alpa", section 4.2): a binary one-hot s[i][a] per node
 * (sum_a s[i][a] = 1); per edge (u, v) a continuous e[a][b] in [0, 1] with sum_b e[a][b] =
 * s[u][a] and sum_a e[a][b] = s[v][b], so that e is the product s[u][a] s[v][b] once s is integral;
 * objective sum c[i][a] s[i][a] + sum E[a][b] e[a][b]; one knapsack row sum m[i][a] s[i][a] <=
 * mem_limit. A strategy or pair with an infinite cost has no column (it is fixed to 0).
 *
 * Workload (issue 4): 30-150 nodes, up to ~50 strategies each, dense edge matrices, so a chain
 * of 100 nodes x 40 strategies is ~160,000 edge columns: too many to hand GLPK blindly. Before
 * GLPK the problem goes through reductions that keep the optimum and its value exactly:
 *   1. strategies with an infinite node cost are dropped; parallel edges are summed;
 *   2. arc consistency: a strategy that has an infinite cost against every strategy of some
 *      neighbour cannot appear in a finite assignment;
 *   3. memory bounding: a strategy whose memory plus every other node's least memory exceeds
 *      the limit cannot appear in a feasible assignment;
 *   4. a node left with one strategy is folded: its cost and memory become constants and its
 *      edges become node costs of its neighbours;
 *   5. edges are reparametrised: each row minimum moves into the producer's node cost and each
 *      column minimum into the consumer's (under one-hot s the objective is unchanged); an edge
 *      whose remainder is all zero disappears (it was separable);
 *   6. dominance: strategy a of node i goes when some a' is no worse in node cost, in memory
 *      and in every entry of every incident edge (ties keep the lower index), since switching a to
 *      a' in any assignment never costs more;
 *   7. without a memory row the problem is min-sum over a graph, and nodes of degree 0, 1 and 2
 *      are eliminated exactly (variable elimination: a leaf becomes a node cost of its
 *      neighbour, a degree-2 node an edge between its two neighbours). Chains, trees and
 *      series-parallel graphs, which is what operator graphs with residual branches are, vanish
 *      entirely; GLPK sees only a core in which every node has degree >= 3.
 * With a memory limit, the unconstrained optimum (7) is computed first: it is a relaxation, so
 * if it fits it is optimal. Otherwise (and for a core without one):
 *   8. Lagrangian relaxation of the memory row (Fisher 1981), L(lambda) = min cost + lambda
 *      (memory - limit), evaluated exactly by (7) when elimination consumes the whole graph, else
 *      on a series-parallel relaxation that drops a few edges after min-sum diffusion has moved
 *      what they carry onto their nodes (Werner, PAMI 2007); the best lambda by Kelley's cutting
 *      planes. Every minimiser met, repaired to fit and improved by 1-opt, is an incumbent;
 *   9. reduced-cost fixing: the min-marginals of L at the best lambda (backward pass of the
 *      elimination) bound every strategy and every pair; what cannot beat the incumbent goes;
 *  10. if many pair columns remain, the LP relaxation by column generation (few columns priced
 *      in by the row duals) and reduced-cost fixing with its duals; the LP is rounded for an
 *      incumbent;
 *  11. GLPK's branch and bound on what is left; the better of its answer and the incumbent.
 * Measured (tests/test_ilp.c, one core of the development machine): a chain of 100 nodes x 40
 * strategies with dense random edges solves in 5-10 ms without a memory limit and 15-170 ms with
 * a binding one (GLPK alone: 20 s, 27 s); with 30 extra edges two or three nodes apart, 40-60 ms.
 * Random long-range edges (treewidth well above 2) with a binding limit are hard for any solver:
 * seconds to minutes, which is what time_limit_s is for.
 *
 * Numerics: GLPK sees the objective divided by its largest coefficient and the memory row
 * divided by the limit. The returned objective and memory are recomputed from the caller's
 * arrays, in node order and then edge order (as st_ilp_brute does), never taken from GLPK.
 * GLPK aborts the process on malformed input, so the problem is validated first, and a GLPK
 * error hook longjmps back (the environment is then freed) in case something slips through.
 * Only this file includes glpk.h, and its 1-based arrays stay here. */
#include "ilp.h"

#include <float.h>
#include <glpk.h>
#include <limits.h>
#include <math.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int st__ilp_reduce = 1;

#define BRUTE_MAX_ASSIGNMENTS 1e7
#define MAX_COLUMNS 50000000.0 /* GLPK indexes with int; far beyond anything solvable anyway */
#define CG_MIN_PAIRS 4000      /* below this GLPK takes the whole model at once */
#define MEM_SLACK 1e-9         /* relative: memory bounding never removes a borderline strategy */

static int mem_on(const st_ilp *p) { return p->mem != NULL && p->mem_limit > 0 && isfinite(p->mem_limit); }

/* "40.0 GiB", "512 B" */
static void fmt_bytes(double b, char *buf, size_t n) {
    static const char *unit[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
    int u = 0;
    double x = b;
    while (fabs(x) >= 1024.0 && u < 5) {
        x /= 1024.0;
        u++;
    }
    if (u == 0)
        snprintf(buf, n, "%.4g B", x);
    else
        snprintf(buf, n, "%.1f %s", x, unit[u]);
}

/* ---------------------------------------------------------------- the caller's problem */

static int validate(const st_ilp *p, const int *choice, const st_ilp_result *r, st_error *err) {
    if (!p || !choice || !r) return st_error_set(err, ST_EINVAL, NULL, NULL, "ILP: null problem, choice or result");
    if (p->n < 1) return st_error_set(err, ST_EINVAL, NULL, "n", "ILP has %d nodes; at least 1 is needed", p->n);
    if (!p->nstrat || !p->cost)
        return st_error_set(err, ST_EINVAL, NULL, p->nstrat ? "cost" : "nstrat", "ILP: nstrat and cost are required");
    if (isnan(p->mem_limit)) return st_error_set(err, ST_EINVAL, NULL, "mem_limit", "ILP: memory limit is NaN");
    if (isnan(p->time_limit_s)) return st_error_set(err, ST_EINVAL, NULL, "time_limit_s", "ILP: time limit is NaN");
    double cols = 0;
    for (int i = 0; i < p->n; i++) {
        int k = p->nstrat[i];
        if (k < 1) return st_error_set(err, ST_EINVAL, NULL, "nstrat", "ILP node %d has %d strategies; at least 1 is needed", i, k);
        cols += k;
        if (!p->cost[i]) return st_error_set(err, ST_EINVAL, NULL, "cost", "ILP node %d: cost array is NULL", i);
        for (int s = 0; s < k; s++)
            if (isnan(p->cost[i][s]) || p->cost[i][s] < 0)
                return st_error_set(err, ST_EINVAL, NULL, "cost",
                                    "ILP node %d strategy %d: cost %g (must be >= 0, or INFINITY to forbid it)", i, s,
                                    p->cost[i][s]);
        if (p->mem) {
            if (!p->mem[i]) return st_error_set(err, ST_EINVAL, NULL, "mem", "ILP node %d: memory array is NULL", i);
            for (int s = 0; s < k; s++)
                if (!isfinite(p->mem[i][s]) || p->mem[i][s] < 0)
                    return st_error_set(err, ST_EINVAL, NULL, "mem",
                                        "ILP node %d strategy %d: memory %g bytes (must be finite and >= 0)", i, s,
                                        p->mem[i][s]);
        }
    }
    if (p->nedges < 0 || (p->nedges > 0 && !p->edges))
        return st_error_set(err, ST_EINVAL, NULL, "edges", "ILP: %d edges with %s array", p->nedges,
                            p->edges ? "an" : "no");
    for (int j = 0; j < p->nedges; j++) {
        const st_ilp_edge *e = &p->edges[j];
        if (e->u < 0 || e->u >= p->n || e->v < 0 || e->v >= p->n)
            return st_error_set(err, ST_EINVAL, NULL, "edges", "ILP edge %d (%d -> %d): node out of range [0, %d)", j,
                                e->u, e->v, p->n);
        if (e->u == e->v)
            return st_error_set(err, ST_EINVAL, NULL, "edges", "ILP edge %d joins node %d to itself", j, e->u);
        if (!e->cost) return st_error_set(err, ST_EINVAL, NULL, "edges", "ILP edge %d (%d -> %d): cost is NULL", j, e->u, e->v);
        int ku = p->nstrat[e->u], kv = p->nstrat[e->v];
        cols += (double)ku * kv;
        for (int a = 0; a < ku; a++)
            for (int b = 0; b < kv; b++) {
                double x = e->cost[(size_t)a * kv + b];
                if (isnan(x) || x < 0)
                    return st_error_set(err, ST_EINVAL, NULL, "edges",
                                        "ILP edge %d (%d -> %d): cost[%d][%d] is %g (must be >= 0, or INFINITY to "
                                        "forbid the pair)",
                                        j, e->u, e->v, a, b, x);
            }
    }
    if (cols > MAX_COLUMNS)
        return st_error_set(err, ST_EINVAL, NULL, "edges", "ILP too large: %.3g strategy and pair variables", cols);
    return 0;
}

/* Cost of an assignment, node terms in node order then edge terms in edge order (INFINITY if
 * any term is). st_ilp_brute and st_ilp_solve both report this, so they agree bit for bit. */
static double eval_cost(const st_ilp *p, const int *x) {
    double c = 0;
    for (int i = 0; i < p->n; i++) c += p->cost[i][x[i]];
    for (int j = 0; j < p->nedges; j++) {
        const st_ilp_edge *e = &p->edges[j];
        c += e->cost[(size_t)x[e->u] * p->nstrat[e->v] + x[e->v]];
    }
    return c;
}

static double eval_mem(const st_ilp *p, const int *x) {
    double m = 0;
    if (p->mem)
        for (int i = 0; i < p->n; i++) m += p->mem[i][x[i]];
    return m;
}

static int fits(const st_ilp *p, const int *x) { return !mem_on(p) || eval_mem(p, x) <= p->mem_limit; }

static int err_memory(const st_ilp *p, double least, st_error *err) {
    char lim[32], need[32], over[32];
    fmt_bytes(p->mem_limit, lim, sizeof lim);
    fmt_bytes(least, need, sizeof need);
    fmt_bytes(least - p->mem_limit, over, sizeof over);
    return st_error_set(err, ST_ENOPLAN, NULL, "memory",
                        "memory limit %s per device is infeasible: the least any assignment needs is %s (%s over)", lim,
                        need, over);
}

static int err_no_finite(int node, st_error *err) {
    if (node >= 0)
        return st_error_set(err, ST_ENOPLAN, NULL, "cost",
                            "every assignment has an infinite cost: no strategy of node %d can be combined with its "
                            "neighbours at a finite cost",
                            node);
    return st_error_set(err, ST_ENOPLAN, NULL, "cost", "every assignment has an infinite cost");
}

static int err_no_fit_finite(const st_ilp *p, st_error *err) {
    char lim[32];
    fmt_bytes(p->mem_limit, lim, sizeof lim);
    return st_error_set(err, ST_ENOPLAN, NULL, "memory",
                        "no assignment with a finite cost fits the memory limit of %s per device (the assignments "
                        "that fit are forbidden by infinite costs)",
                        lim);
}

static void fill_result(const st_ilp *p, const int *x, st_ilp_result *r) {
    r->objective = eval_cost(p, x);
    r->mem_bytes = eval_mem(p, x);
}

/* ---------------------------------------------------------------- brute force */

int st_ilp_brute(const st_ilp *p, int *choice, st_ilp_result *r, st_error *err) {
    int rc = validate(p, choice, r, err);
    if (rc) return rc;
    double t0 = st_clock_s();
    memset(r, 0, sizeof *r);
    double product = 1;
    for (int i = 0; i < p->n; i++) product *= p->nstrat[i];
    if (product > BRUTE_MAX_ASSIGNMENTS)
        return st_error_set(err, ST_EINVAL, NULL, "nstrat", "brute force refused: %.3g assignments (at most %.0g)",
                            product, BRUTE_MAX_ASSIGNMENTS);
    /* the same up-front verdicts as st_ilp_solve */
    double least = 0;
    for (int i = 0; i < p->n; i++) {
        double lo = INFINITY;
        for (int s = 0; s < p->nstrat[i]; s++)
            if (isfinite(p->cost[i][s])) lo = fmin(lo, p->mem ? p->mem[i][s] : 0);
        if (!isfinite(lo)) return err_no_finite(i, err);
        least += lo;
    }
    if (mem_on(p) && least > p->mem_limit) return err_memory(p, least, err);

    int *x = calloc((size_t)p->n, sizeof *x), *best = malloc((size_t)p->n * sizeof *best);
    if (!x || !best) {
        rc = st_error_set(err, ST_ENOMEM, NULL, NULL, "out of memory");
        goto out;
    }
    double best_cost = INFINITY;
    int any_finite = 0;
    for (;;) {
        double c = eval_cost(p, x);
        any_finite |= isfinite(c);
        if (c < best_cost && fits(p, x)) {
            best_cost = c;
            memcpy(best, x, (size_t)p->n * sizeof *best);
        }
        int i = 0; /* odometer, node 0 fastest */
        while (i < p->n && ++x[i] == p->nstrat[i]) x[i++] = 0;
        if (i == p->n) break;
    }
    if (!isfinite(best_cost)) {
        rc = any_finite ? err_no_fit_finite(p, err) : err_no_finite(-1, err);
        goto out;
    }
    memcpy(choice, best, (size_t)p->n * sizeof *choice);
    fill_result(p, best, r);
    r->bound = r->objective;
    r->optimal = 1;
    r->solve_time_s = st_clock_s() - t0;
out:
    free(x);
    free(best);
    return rc;
}

/* ---------------------------------------------------------------- the reduced problem */

/* Node i keeps k[i] of its strategies, orig[i][a] naming each in the caller's numbering; its node
 * cost c[i][a] absorbs what folding, reparametrisation and elimination move into it. Edges are
 * stored once per node pair (u < v), k[u] x k[v] row-major, in the current numbering. */
typedef struct rp_edge {
    int u, v;
    int live;
    double *c;
} rp_edge;

typedef struct rp {
    int n;
    int *k;
    int **orig;
    double **c;
    double **m; /* NULL: no memory row */
    double limit;
    unsigned char **kill; /* scratch, one flag per strategy (sized to the first k) */
    int *gone;            /* 0 live, 1 folded (strategy 0 taken), 2 eliminated */
    rp_edge *e;
    int ne, cape;
    int **adj; /* incident edge ids, live or not */
    int *nadj, *capadj;
    double c0, m0; /* cost and memory of the folded (and eliminated) nodes */
} rp;

static void rp_free(rp *r) {
    if (!r->k) return;
    for (int i = 0; i < r->n; i++) {
        free(r->orig[i]);
        free(r->c[i]);
        if (r->m) free(r->m[i]);
        free(r->kill[i]);
        free(r->adj[i]);
    }
    for (int j = 0; j < r->ne; j++) free(r->e[j].c);
    free(r->k);
    free(r->orig);
    free(r->c);
    free(r->m);
    free(r->kill);
    free(r->gone);
    free(r->e);
    free(r->adj);
    free(r->nadj);
    free(r->capadj);
    memset(r, 0, sizeof *r);
}

static int rp_alloc(rp *r, int n, int with_mem) {
    memset(r, 0, sizeof *r);
    r->n = n;
    r->k = calloc((size_t)n, sizeof *r->k);
    r->orig = calloc((size_t)n, sizeof *r->orig);
    r->c = calloc((size_t)n, sizeof *r->c);
    r->kill = calloc((size_t)n, sizeof *r->kill);
    r->gone = calloc((size_t)n, sizeof *r->gone);
    r->adj = calloc((size_t)n, sizeof *r->adj);
    r->nadj = calloc((size_t)n, sizeof *r->nadj);
    r->capadj = calloc((size_t)n, sizeof *r->capadj);
    if (with_mem) r->m = calloc((size_t)n, sizeof *r->m);
    if (!r->k || !r->orig || !r->c || !r->kill || !r->gone || !r->adj || !r->nadj || !r->capadj || (with_mem && !r->m))
        return ST_ENOMEM;
    return 0;
}

/* Cost across edge e of node x taking strategy ax and the other end taking by. */
static inline double ecost(const rp *r, const rp_edge *e, int x, int ax, int by) {
    return x == e->u ? e->c[(size_t)ax * r->k[e->v] + by] : e->c[(size_t)by * r->k[e->v] + ax];
}

static inline int eother(const rp_edge *e, int x) { return x == e->u ? e->v : e->u; }

static int adj_push(rp *r, int i, int id) {
    if (r->nadj[i] == r->capadj[i]) {
        int cap = r->capadj[i] ? 2 * r->capadj[i] : 4;
        int *a = realloc(r->adj[i], (size_t)cap * sizeof *a);
        if (!a) return ST_ENOMEM;
        r->adj[i] = a;
        r->capadj[i] = cap;
    }
    r->adj[i][r->nadj[i]++] = id;
    return 0;
}

static int rp_find_edge(const rp *r, int x, int y) {
    for (int t = 0; t < r->nadj[x]; t++) {
        const rp_edge *e = &r->e[r->adj[x][t]];
        if (e->live && eother(e, x) == y) return r->adj[x][t];
    }
    return -1;
}

/* Adds M (k[x] x k[y], row-major) to the edge between x and y, creating it if needed. */
static int rp_add_edge(rp *r, int x, int y, const double *M) {
    int kx = r->k[x], ky = r->k[y];
    int id = rp_find_edge(r, x, y);
    if (id >= 0) {
        rp_edge *e = &r->e[id];
        for (int a = 0; a < kx; a++)
            for (int b = 0; b < ky; b++) {
                double *dst = x == e->u ? &e->c[(size_t)a * ky + b] : &e->c[(size_t)b * kx + a];
                *dst += M[(size_t)a * ky + b];
            }
        return 0;
    }
    if (r->ne == r->cape) {
        int cap = r->cape ? 2 * r->cape : 16;
        rp_edge *ne = realloc(r->e, (size_t)cap * sizeof *ne);
        if (!ne) return ST_ENOMEM;
        r->e = ne;
        r->cape = cap;
    }
    rp_edge *e = &r->e[r->ne];
    e->u = x < y ? x : y;
    e->v = x < y ? y : x;
    e->live = 1;
    e->c = malloc((size_t)kx * ky * sizeof *e->c);
    if (!e->c) return ST_ENOMEM;
    for (int a = 0; a < kx; a++)
        for (int b = 0; b < ky; b++)
            if (x == e->u)
                e->c[(size_t)a * ky + b] = M[(size_t)a * ky + b];
            else
                e->c[(size_t)b * kx + a] = M[(size_t)a * ky + b];
    id = r->ne++;
    if (adj_push(r, x, id) || adj_push(r, y, id)) return ST_ENOMEM;
    return 0;
}

/* The caller's problem with infinite-cost strategies left out and parallel edges summed.
 * Returns ST_ENOPLAN (err filled) when a node has no finite strategy. */
static int rp_build(const st_ilp *p, rp *r, st_error *err) {
    int rc = rp_alloc(r, p->n, mem_on(p));
    double *M = NULL;
    if (rc) goto nomem;
    r->limit = mem_on(p) ? p->mem_limit : 0;
    int kmax = 0;
    for (int i = 0; i < p->n; i++) {
        int k = p->nstrat[i], kk = 0;
        kmax = k > kmax ? k : kmax;
        r->orig[i] = malloc((size_t)k * sizeof **r->orig);
        r->c[i] = malloc((size_t)k * sizeof **r->c);
        r->kill[i] = calloc((size_t)k, 1);
        if (r->m) r->m[i] = malloc((size_t)k * sizeof **r->m);
        if (!r->orig[i] || !r->c[i] || !r->kill[i] || (r->m && !r->m[i])) goto nomem;
        for (int s = 0; s < k; s++) {
            if (!isfinite(p->cost[i][s])) continue;
            r->orig[i][kk] = s;
            r->c[i][kk] = p->cost[i][s];
            if (r->m) r->m[i][kk] = p->mem[i][s];
            kk++;
        }
        if (kk == 0) return err_no_finite(i, err);
        r->k[i] = kk;
    }
    M = malloc((size_t)kmax * kmax * sizeof *M);
    if (!M) goto nomem;
    for (int j = 0; j < p->nedges; j++) {
        const st_ilp_edge *e = &p->edges[j];
        int x = e->u, y = e->v, kx = r->k[x], ky = r->k[y];
        for (int a = 0; a < kx; a++)
            for (int b = 0; b < ky; b++) M[(size_t)a * ky + b] = e->cost[(size_t)r->orig[x][a] * p->nstrat[y] + r->orig[y][b]];
        if (rp_add_edge(r, x, y, M)) goto nomem;
    }
    free(M);
    return 0;
nomem:
    free(M);
    return st_error_set(err, ST_ENOMEM, NULL, NULL, "out of memory");
}

/* A copy of s, without its memory unless with_mem. identity: the copy numbers each node's
 * strategies 0..k-1 as s does (orig[i][a] = a), so its answers read in s's numbering; otherwise
 * it keeps s's orig. emap (s->ne entries, may be NULL) receives the copy's id of each live edge
 * of s, -1 for the others. */
static int rp_clone(const rp *s, rp *r, int with_mem, int identity, int *emap) {
    if (rp_alloc(r, s->n, with_mem && s->m != NULL)) return ST_ENOMEM;
    r->limit = s->limit;
    r->c0 = s->c0;
    r->m0 = s->m0;
    for (int i = 0; i < s->n; i++) {
        int k = s->k[i];
        r->k[i] = k;
        r->gone[i] = s->gone[i];
        r->orig[i] = malloc((size_t)k * sizeof **r->orig);
        r->c[i] = malloc((size_t)k * sizeof **r->c);
        r->kill[i] = calloc((size_t)k, 1);
        if (r->m) r->m[i] = malloc((size_t)k * sizeof **r->m);
        if (!r->orig[i] || !r->c[i] || !r->kill[i] || (r->m && !r->m[i])) return ST_ENOMEM;
        for (int a = 0; a < k; a++) r->orig[i][a] = identity ? a : s->orig[i][a];
        memcpy(r->c[i], s->c[i], (size_t)k * sizeof **r->c);
        if (r->m) memcpy(r->m[i], s->m[i], (size_t)k * sizeof **r->m);
    }
    for (int j = 0; j < s->ne; j++) {
        const rp_edge *e = &s->e[j];
        if (emap) emap[j] = -1;
        if (!e->live) continue;
        if (emap) emap[j] = r->ne;
        if (rp_add_edge(r, e->u, e->v, e->c)) return ST_ENOMEM;
    }
    return 0;
}

/* Drops the strategies flagged in kill[][], renumbering nodes and their edges. *empty receives a
 * node left with no strategy (-1 if none); *nkilled the number dropped. */
static int rp_apply_kills(rp *r, int *nkilled, int *empty) {
    int total = 0;
    *empty = -1;
    for (int i = 0; i < r->n; i++) {
        if (r->gone[i]) continue;
        for (int a = 0; a < r->k[i]; a++) total += r->kill[i][a];
    }
    *nkilled = total;
    if (!total) return 0;
    for (int j = 0; j < r->ne; j++) {
        rp_edge *e = &r->e[j];
        if (!e->live) continue;
        int ku = r->k[e->u], kv = r->k[e->v], nu = 0, nv = 0, any = 0;
        for (int a = 0; a < ku; a++) nu += !r->kill[e->u][a], any |= r->kill[e->u][a];
        for (int b = 0; b < kv; b++) nv += !r->kill[e->v][b], any |= r->kill[e->v][b];
        if (!any) continue;
        size_t sz = (size_t)nu * nv;
        double *c = malloc((sz > 0 ? sz : 1) * sizeof *c);
        if (!c) return ST_ENOMEM;
        size_t t = 0;
        for (int a = 0; a < ku; a++) {
            if (r->kill[e->u][a]) continue;
            for (int b = 0; b < kv; b++)
                if (!r->kill[e->v][b]) c[t++] = e->c[(size_t)a * kv + b];
        }
        free(e->c);
        e->c = c;
    }
    for (int i = 0; i < r->n; i++) {
        if (r->gone[i]) continue;
        int kk = 0;
        for (int a = 0; a < r->k[i]; a++) {
            if (r->kill[i][a]) continue;
            r->orig[i][kk] = r->orig[i][a];
            r->c[i][kk] = r->c[i][a];
            if (r->m) r->m[i][kk] = r->m[i][a];
            kk++;
        }
        for (int a = 0; a < r->k[i]; a++) r->kill[i][a] = 0;
        r->k[i] = kk;
        if (kk == 0 && *empty < 0) *empty = i;
    }
    return 0;
}

/* Flags strategies with an infinite node cost, or infinite against every strategy of a
 * neighbour. Returns the number flagged. */
static int mark_inconsistent(rp *r) {
    int n = 0;
    for (int i = 0; i < r->n; i++) {
        if (r->gone[i]) continue;
        for (int a = 0; a < r->k[i]; a++)
            if (!isfinite(r->c[i][a]) && !r->kill[i][a]) r->kill[i][a] = 1, n++;
    }
    for (int j = 0; j < r->ne; j++) {
        const rp_edge *e = &r->e[j];
        if (!e->live) continue;
        int ku = r->k[e->u], kv = r->k[e->v];
        for (int a = 0; a < ku; a++) {
            int ok = 0;
            for (int b = 0; b < kv && !ok; b++) ok = isfinite(e->c[(size_t)a * kv + b]);
            if (!ok && !r->kill[e->u][a]) r->kill[e->u][a] = 1, n++;
        }
        for (int b = 0; b < kv; b++) {
            int ok = 0;
            for (int a = 0; a < ku && !ok; a++) ok = isfinite(e->c[(size_t)a * kv + b]);
            if (!ok && !r->kill[e->v][b]) r->kill[e->v][b] = 1, n++;
        }
    }
    return n;
}

static double least_memory(const rp *r) {
    double least = r->m0;
    for (int i = 0; i < r->n; i++) {
        if (r->gone[i]) continue;
        double lo = INFINITY;
        for (int a = 0; a < r->k[i]; a++) lo = fmin(lo, r->m[i][a]);
        least += lo;
    }
    return least;
}

/* Flags strategies that cannot fit even with every other node at its least memory. */
static int mark_memory(rp *r) {
    if (!r->m) return 0;
    double least = least_memory(r), cap = r->limit * (1 + MEM_SLACK);
    int n = 0;
    for (int i = 0; i < r->n; i++) {
        if (r->gone[i]) continue;
        double lo = INFINITY;
        for (int a = 0; a < r->k[i]; a++) lo = fmin(lo, r->m[i][a]);
        for (int a = 0; a < r->k[i]; a++)
            if (least - lo + r->m[i][a] > cap && !r->kill[i][a]) r->kill[i][a] = 1, n++;
    }
    return n;
}

/* Folds nodes with a single (finite) strategy into constants and neighbour node costs. */
static int fold_fixed(rp *r) {
    int n = 0;
    for (int i = 0; i < r->n; i++) {
        if (r->gone[i] || r->k[i] != 1 || !isfinite(r->c[i][0])) continue;
        r->gone[i] = 1;
        r->c0 += r->c[i][0];
        if (r->m) r->m0 += r->m[i][0];
        for (int t = 0; t < r->nadj[i]; t++) {
            rp_edge *e = &r->e[r->adj[i][t]];
            if (!e->live) continue;
            int y = eother(e, i);
            for (int b = 0; b < r->k[y]; b++) r->c[y][b] += ecost(r, e, i, 0, b);
            e->live = 0;
        }
        n++;
    }
    return n;
}

/* Moves row and column minima of every edge into node costs; drops edges left all zero. */
static int reparametrise(rp *r) {
    int dropped = 0;
    for (int j = 0; j < r->ne; j++) {
        rp_edge *e = &r->e[j];
        if (!e->live) continue;
        int ku = r->k[e->u], kv = r->k[e->v], zero = 1;
        for (int a = 0; a < ku; a++) {
            double *row = &e->c[(size_t)a * kv], f = INFINITY;
            for (int b = 0; b < kv; b++) f = fmin(f, row[b]);
            if (!isfinite(f) || f == 0) continue;
            for (int b = 0; b < kv; b++) row[b] -= f; /* INFINITY stays */
            r->c[e->u][a] += f;
        }
        for (int b = 0; b < kv; b++) {
            double g = INFINITY;
            for (int a = 0; a < ku; a++) g = fmin(g, e->c[(size_t)a * kv + b]);
            if (!isfinite(g) || g == 0) continue;
            for (int a = 0; a < ku; a++) e->c[(size_t)a * kv + b] -= g;
            r->c[e->v][b] += g;
        }
        for (size_t t = 0; t < (size_t)ku * kv && zero; t++) zero = e->c[t] == 0;
        if (zero) e->live = 0, dropped++;
    }
    return dropped;
}

/* Whether strategy b of node i may be dropped because strategy a is no worse everywhere. */
static int dominates(const rp *r, int i, int a, int b) {
    int strict = a < b;
    if (r->c[i][a] > r->c[i][b]) return 0;
    strict |= r->c[i][a] < r->c[i][b];
    if (r->m) {
        if (r->m[i][a] > r->m[i][b]) return 0;
        strict |= r->m[i][a] < r->m[i][b];
    }
    for (int t = 0; t < r->nadj[i]; t++) {
        const rp_edge *e = &r->e[r->adj[i][t]];
        if (!e->live) continue;
        int y = eother(e, i);
        for (int s = 0; s < r->k[y]; s++) {
            double xa = ecost(r, e, i, a, s), xb = ecost(r, e, i, b, s);
            if (xa > xb) return 0;
            strict |= xa < xb;
        }
    }
    return strict;
}

static int mark_dominated(rp *r) {
    int n = 0;
    for (int i = 0; i < r->n; i++) {
        if (r->gone[i] || r->k[i] < 2) continue;
        for (int b = 0; b < r->k[i]; b++) {
            if (r->kill[i][b]) continue;
            for (int a = 0; a < r->k[i]; a++)
                if (a != b && !r->kill[i][a] && dominates(r, i, a, b)) {
                    r->kill[i][b] = 1;
                    n++;
                    break;
                }
        }
    }
    return n;
}

/* Reductions 2-6 to a fixed point. with_memory adds memory bounding. Returns 0, ST_ENOPLAN
 * with *empty the node left with nothing, or ST_ENOMEM. */
static int rp_reduce(rp *r, int with_memory, int *empty) {
    *empty = -1;
    for (int round = 0; round < 1000; round++) {
        int changed = 0, nk;
        mark_inconsistent(r);
        if (with_memory) mark_memory(r);
        if (rp_apply_kills(r, &nk, empty)) return ST_ENOMEM;
        if (*empty >= 0) return ST_ENOPLAN;
        changed += nk;
        changed += fold_fixed(r);
        changed += reparametrise(r);
        mark_dominated(r);
        if (rp_apply_kills(r, &nk, empty)) return ST_ENOMEM;
        if (*empty >= 0) return ST_ENOPLAN;
        changed += nk;
        if (!changed) break;
    }
    return 0;
}

/* ---------------------------------------------------------------- variable elimination */

/* One elimination step. The factors (cv, E1, E2, M) are kept only when min-marginals are wanted. */
typedef struct elim {
    int v, u, w;   /* eliminated node and its neighbours (-1 when absent) */
    int e1, e2, t; /* edge ids: (u, v), (v, w) and the (u, w) edge v was merged into */
    int fixed;     /* degree 0: the strategy taken */
    int *best;     /* argmin of v per strategy of u, or per (u, w) pair, row-major */
    double *cv;    /* v's node cost when eliminated, k[v] */
    double *E1;    /* [a of u][b of v] */
    double *E2;    /* [b of v][c of w] */
    double *M;     /* what v left behind: on u, k[u]; or on (u, w), [a][c] */
} elim;

typedef struct elim_log {
    elim *v;
    int n, cap;
} elim_log;

static void elim_log_free(elim_log *l) {
    for (int t = 0; t < l->n; t++) {
        free(l->v[t].best);
        free(l->v[t].cv);
        free(l->v[t].E1);
        free(l->v[t].E2);
        free(l->v[t].M);
    }
    free(l->v);
    memset(l, 0, sizeof *l);
}

static elim *elim_push(elim_log *l) {
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 32;
        elim *v = realloc(l->v, (size_t)cap * sizeof *v);
        if (!v) return NULL;
        l->v = v;
        l->cap = cap;
    }
    elim *e = &l->v[l->n++];
    memset(e, 0, sizeof *e);
    e->u = e->w = e->e1 = e->e2 = e->t = -1;
    return e;
}

/* [a of x][b of y] copy of edge e, for x one of its ends */
static double *edge_copy(const rp *r, const rp_edge *e, int x) {
    int y = eother(e, x), kx = r->k[x], ky = r->k[y];
    double *m = malloc((size_t)kx * ky * sizeof *m);
    if (!m) return NULL;
    for (int a = 0; a < kx; a++)
        for (int b = 0; b < ky; b++) m[(size_t)a * ky + b] = ecost(r, e, x, a, b);
    return m;
}

/* Min-sum elimination of nodes of degree <= 2, memory ignored (bucket elimination, Dechter
 * 1999): a leaf v on u adds min_b (E[a][b] + c_v[b]) to c_u[a]; a node v between u and w adds
 * min_b (E1[a][b] + c_v[b] + E2[b][c]) to the (u, w) edge. Nodes left with gone == 0 form the
 * core, every one of degree >= 3. keep: record the factors for min_marginals. */
static int eliminate(rp *r, elim_log *log, int keep) {
    int n = r->n, rc = 0, top = 0, capstack = 3 * n + 4;
    int *deg = calloc((size_t)n, sizeof *deg), *stack = malloc((size_t)capstack * sizeof *stack);
    double *M = NULL;
    if (!deg || !stack) goto nomem;
    int kmax = 1;
    for (int i = 0; i < n; i++) kmax = r->k[i] > kmax ? r->k[i] : kmax;
    M = malloc((size_t)kmax * kmax * sizeof *M);
    if (!M) goto nomem;
    for (int j = 0; j < r->ne; j++)
        if (r->e[j].live) deg[r->e[j].u]++, deg[r->e[j].v]++;
    for (int i = n - 1; i >= 0; i--)
        if (!r->gone[i]) stack[top++] = i;
    while (top > 0) {
        int v = stack[--top];
        if (r->gone[v] || deg[v] > 2) continue;
        int ids[2], ni = 0;
        for (int t = 0; t < r->nadj[v] && ni < 2; t++)
            if (r->e[r->adj[v][t]].live) ids[ni++] = r->adj[v][t];
        elim *rec = elim_push(log);
        if (!rec) goto nomem;
        rec->v = v;
        int kv = r->k[v];
        if (keep) {
            rec->cv = malloc((size_t)kv * sizeof *rec->cv);
            if (!rec->cv) goto nomem;
            memcpy(rec->cv, r->c[v], (size_t)kv * sizeof *rec->cv);
        }
        if (ni == 0) {
            int best = 0;
            for (int b = 1; b < kv; b++)
                if (r->c[v][b] < r->c[v][best]) best = b;
            rec->fixed = best;
            r->c0 += r->c[v][best];
        } else if (ni == 1) {
            rp_edge *e = &r->e[ids[0]];
            int u = eother(e, v), ku = r->k[u];
            rec->u = u;
            rec->e1 = ids[0];
            rec->best = malloc((size_t)ku * sizeof *rec->best);
            if (!rec->best) goto nomem;
            if (keep) {
                rec->E1 = edge_copy(r, e, u);
                rec->M = malloc((size_t)ku * sizeof *rec->M);
                if (!rec->E1 || !rec->M) goto nomem;
            }
            for (int a = 0; a < ku; a++) {
                double lo = INFINITY;
                int arg = 0;
                for (int b = 0; b < kv; b++) {
                    double x = ecost(r, e, u, a, b) + r->c[v][b];
                    if (x < lo) lo = x, arg = b;
                }
                rec->best[a] = arg;
                if (keep) rec->M[a] = lo;
                r->c[u][a] += lo;
            }
            e->live = 0;
            deg[u]--;
            stack[top++] = u;
        } else {
            rp_edge *e1 = &r->e[ids[0]], *e2 = &r->e[ids[1]];
            int u = eother(e1, v), w = eother(e2, v), ku = r->k[u], kw = r->k[w];
            rec->u = u;
            rec->w = w;
            rec->e1 = ids[0];
            rec->e2 = ids[1];
            rec->best = malloc((size_t)ku * kw * sizeof *rec->best);
            if (!rec->best) goto nomem;
            if (keep) {
                rec->E1 = edge_copy(r, e1, u);
                rec->E2 = edge_copy(r, e2, v);
                rec->M = malloc((size_t)ku * kw * sizeof *rec->M);
                if (!rec->E1 || !rec->E2 || !rec->M) goto nomem;
            }
            for (int a = 0; a < ku; a++)
                for (int c = 0; c < kw; c++) {
                    double lo = INFINITY;
                    int arg = 0;
                    for (int b = 0; b < kv; b++) {
                        double x = ecost(r, e1, u, a, b) + r->c[v][b] + ecost(r, e2, w, c, b);
                        if (x < lo) lo = x, arg = b;
                    }
                    rec->best[(size_t)a * kw + c] = arg;
                    M[(size_t)a * kw + c] = lo;
                }
            if (keep) memcpy(rec->M, M, (size_t)ku * kw * sizeof *M);
            e1->live = e2->live = 0;
            deg[u]--, deg[w]--;
            int had = rp_find_edge(r, u, w) >= 0;
            if (rp_add_edge(r, u, w, M)) goto nomem;
            rec->t = rp_find_edge(r, u, w);
            if (!had) deg[u]++, deg[w]++;
            stack[top++] = u; /* at most n initial pushes plus two per elimination: fits */
            stack[top++] = w;
        }
        r->gone[v] = 2;
    }
    goto out;
nomem:
    rc = ST_ENOMEM;
out:
    free(deg);
    free(stack);
    free(M);
    return rc;
}

/* Strategies of eliminated nodes, from the core's, in reverse order of elimination. */
static void elim_back(const elim_log *log, const rp *r, int *a) {
    for (int t = log->n - 1; t >= 0; t--) {
        const elim *e = &log->v[t];
        if (!e->best)
            a[e->v] = e->fixed;
        else if (e->w < 0)
            a[e->v] = e->best[a[e->u]];
        else
            a[e->v] = e->best[(size_t)a[e->u] * r->k[e->w] + a[e->w]];
    }
}

/* Min-marginals after a complete elimination (no core): MM[i][a] = the least objective of an
 * assignment with node i at a, and PMM[id] (edge orientation) the same for both ends of edge id
 * (every edge the elimination consumed). The backward pass of bucket elimination: elimination
 * leaves min-marginals of the nodes that remain unchanged, so in reverse order each node's
 * neighbours already have theirs, and what v left behind is subtracted to get the rest of the
 * graph seen from v ("outside" term). Returns 0, -1 when the log is not a complete elimination,
 * ST_ENOMEM. */
static double mm_out(double total, double part) { return isfinite(total) ? total - part : INFINITY; }

/* Stores the rows x cols table P (P[a * cols + b]) as edge e's, in the edge's orientation:
 * as is, or transposed when the edge runs the other way. Takes P. Returns 0, or ST_ENOMEM with
 * P freed and the edge's table NULL (the caller frees every edge's table). */
static int store_edge(double **PMM, int e, double *P, int rows, int cols, int as_is) {
    free(PMM[e]);
    PMM[e] = NULL;
    if (!as_is) {
        double *T = malloc((size_t)rows * cols * sizeof *T);
        if (!T) {
            free(P);
            return ST_ENOMEM;
        }
        for (int a = 0; a < rows; a++)
            for (int b = 0; b < cols; b++) T[(size_t)b * rows + a] = P[(size_t)a * cols + b];
        free(P);
        P = T;
    }
    PMM[e] = P;
    return 0;
}

static int min_marginals(const rp *r, const elim_log *log, double **MM, double **PMM) {
    double *out = NULL;
    int rc = 0;
    for (int t = log->n - 1; t >= 0; t--) {
        const elim *x = &log->v[t];
        int v = x->v, kv = r->k[v];
        if (!x->cv) return -1;
        if (x->u < 0) {
            double lo = INFINITY;
            for (int b = 0; b < kv; b++) lo = fmin(lo, x->cv[b]);
            for (int b = 0; b < kv; b++) MM[v][b] = isfinite(lo) ? r->c0 - lo + x->cv[b] : INFINITY;
            continue;
        }
        int u = x->u, ku = r->k[u];
        const rp_edge *e1 = &r->e[x->e1];
        double *P1 = malloc((size_t)ku * kv * sizeof *P1); /* [a][b] */
        if (!P1) return ST_ENOMEM;
        if (x->w < 0) {
            for (int a = 0; a < ku; a++) {
                double o = mm_out(MM[u][a], x->M[a]);
                for (int b = 0; b < kv; b++) P1[(size_t)a * kv + b] = o + x->E1[(size_t)a * kv + b] + x->cv[b];
            }
        } else {
            int w = x->w, kw = r->k[w];
            const rp_edge *et = &r->e[x->t], *e2 = &r->e[x->e2];
            if (x->t < 0 || !PMM[x->t]) {
                free(P1);
                return -1;
            }
            double *P2 = malloc((size_t)kv * kw * sizeof *P2); /* [b][c] */
            out = realloc(out, (size_t)ku * kw * sizeof *out);
            if (!P2 || !out) {
                free(P1);
                free(P2);
                rc = ST_ENOMEM;
                goto done;
            }
            for (int a = 0; a < ku; a++)
                for (int c = 0; c < kw; c++) {
                    double pt = et->u == u ? PMM[x->t][(size_t)a * kw + c] : PMM[x->t][(size_t)c * ku + a];
                    out[(size_t)a * kw + c] = mm_out(pt, x->M[(size_t)a * kw + c]);
                }
            for (int a = 0; a < ku; a++)
                for (int b = 0; b < kv; b++) {
                    double lo = INFINITY;
                    for (int c = 0; c < kw; c++) lo = fmin(lo, x->E2[(size_t)b * kw + c] + out[(size_t)a * kw + c]);
                    P1[(size_t)a * kv + b] = x->cv[b] + x->E1[(size_t)a * kv + b] + lo;
                }
            for (int b = 0; b < kv; b++)
                for (int c = 0; c < kw; c++) {
                    double lo = INFINITY;
                    for (int a = 0; a < ku; a++) lo = fmin(lo, x->E1[(size_t)a * kv + b] + out[(size_t)a * kw + c]);
                    P2[(size_t)b * kw + c] = x->cv[b] + x->E2[(size_t)b * kw + c] + lo;
                }
            if ((rc = store_edge(PMM, x->e2, P2, kv, kw, e2->u == v))) {
                free(P1);
                goto done;
            }
        }
        for (int b = 0; b < kv; b++) {
            double lo = INFINITY;
            for (int a = 0; a < ku; a++) lo = fmin(lo, P1[(size_t)a * kv + b]);
            MM[v][b] = lo;
        }
        if ((rc = store_edge(PMM, x->e1, P1, ku, kv, e1->u == u))) goto done;
    }
done:
    free(out);
    return rc;
}

/* ---------------------------------------------------------------- GLPK */

/* The model in plain arrays (1-based, as GLPK wants), solved inside one protected call. */
typedef struct lp_model {
    int rows, cols, nnz, binaries;
    int *ia, *ja;
    double *ar;
    double *obj;
    unsigned char *binary;
    int *row_type;
    double *row_rhs;
    /* results */
    double *x;      /* cols + 1 */
    int ret, status;
    double mip_obj; /* scaled */
    double bound;   /* scaled; -INFINITY until known */
} lp_model;

static void lp_model_free(lp_model *m) {
    free(m->ia);
    free(m->ja);
    free(m->ar);
    free(m->obj);
    free(m->binary);
    free(m->row_type);
    free(m->row_rhs);
    free(m->x);
    memset(m, 0, sizeof *m);
}

/* The best bound the branch-and-bound tree knows: the least bound of its active nodes, or the
 * incumbent if that is lower (pruned nodes were no better than it). */
static void ilp_callback(glp_tree *T, void *info) {
    lp_model *m = info;
    glp_prob *P = glp_ios_get_prob(T);
    int p = glp_ios_best_node(T);
    double b = p ? glp_ios_node_bound(T, p) : INFINITY;
    int st = glp_mip_status(P);
    if (st == GLP_FEAS || st == GLP_OPT) b = fmin(b, glp_mip_obj_val(P));
    if (b > -DBL_MAX / 2 && b < DBL_MAX / 2 && b > m->bound) m->bound = b;
    if (glp_ios_reason(T) == GLP_IROWGEN) {
        int cur = glp_ios_curr_node(T);
        if (cur && glp_ios_node_level(T, cur) == 0) {
            double lp = glp_get_obj_val(P);
            if (lp > m->bound) m->bound = lp;
        }
    }
}

static void glpk_error_hook(void *info) { longjmp(*(jmp_buf *)info, 1); }

/* GLPK prints nothing of its own (strata reports what a solve gave); its error hook is set per solve. */
void st__ilp_init(void) { glp_term_out(GLP_OFF); }

/* Loads and solves m. Returns 0, or -1 when GLPK raised an error (its environment is freed). */
static int glpk_run(lp_model *m, double tm_lim_s) {
    jmp_buf jb;
    if (setjmp(jb)) {
        glp_error_hook(NULL, NULL);
        glp_free_env();
        return -1;
    }
    glp_error_hook(glpk_error_hook, &jb);
    glp_term_out(GLP_OFF);
    glp_prob *P = glp_create_prob();
    glp_set_obj_dir(P, GLP_MIN);
    glp_add_rows(P, m->rows);
    glp_add_cols(P, m->cols);
    for (int i = 1; i <= m->rows; i++)
        glp_set_row_bnds(P, i, m->row_type[i], m->row_type[i] == GLP_UP ? 0 : m->row_rhs[i], m->row_rhs[i]);
    for (int j = 1; j <= m->cols; j++) {
        if (m->binary[j])
            glp_set_col_kind(P, j, GLP_BV);
        else
            glp_set_col_bnds(P, j, GLP_DB, 0, 1);
        glp_set_obj_coef(P, j, m->obj[j]);
    }
    glp_load_matrix(P, m->nnz, m->ia, m->ja, m->ar);
    glp_iocp parm;
    glp_init_iocp(&parm);
    parm.msg_lev = GLP_MSG_OFF;
    parm.presolve = GLP_ON;
    parm.cb_func = ilp_callback;
    parm.cb_info = m;
    parm.br_tech = GLP_BR_MFV; /* measured on memory-bound chains: half the time of the default */
    if (tm_lim_s > 0) parm.tm_lim = tm_lim_s * 1000 < INT_MAX ? (int)ceil(tm_lim_s * 1000) : INT_MAX;
    m->bound = -INFINITY;
    m->ret = glp_intopt(P, &parm);
    m->status = glp_mip_status(P);
    if (m->status == GLP_OPT || m->status == GLP_FEAS) {
        m->mip_obj = glp_mip_obj_val(P);
        for (int j = 1; j <= m->cols; j++) m->x[j] = glp_mip_col_val(P, j);
    }
    glp_delete_prob(P);
    glp_error_hook(NULL, NULL);
    return 0;
}

enum { RUN_OPTIMAL, RUN_FEASIBLE, RUN_NONE, RUN_INFEASIBLE };

typedef struct sub_out {
    int status;   /* RUN_* */
    double bound; /* lower bound on the optimum (c0 included); -INFINITY when unknown */
    int rows, cols, binaries;
} sub_out;

/* Solves the live part of r as an ILP; with_mem adds the memory row, its right-hand side (1 =
 * the limit) lowered by shrink. a[i] receives the strategy of each live node. */
static int solve_glpk(const rp *r, int with_mem, double shrink, double tm_lim_s, int *a, sub_out *o, st_error *err) {
    lp_model m = {0};
    int rc = 0, n = r->n;
    int *scol = NULL; /* column of s[i][a] at scol[off[i] + a], 0 when left out */
    size_t *off = malloc(((size_t)n + 1) * sizeof *off);
    memset(o, 0, sizeof *o);
    o->bound = -INFINITY;
    if (!off) goto nomem;
    off[0] = 0;
    for (int i = 0; i < n; i++) off[i + 1] = off[i] + (r->gone[i] ? 0 : (size_t)r->k[i]);
    scol = calloc(off[n] + 1, sizeof *scol);
    if (!scol) goto nomem;
    /* sizes */
    long cols = 0, rows = 0, nnz = 0, live = 0;
    for (int i = 0; i < n; i++) {
        if (r->gone[i]) continue;
        live++;
        rows++;
        for (int s = 0; s < r->k[i]; s++)
            if (isfinite(r->c[i][s])) scol[off[i] + s] = (int)++cols;
    }
    nnz = 2 * cols; /* one-hot and memory rows */
    if (live == 0) {
        o->status = RUN_OPTIMAL;
        o->bound = r->c0;
        goto out;
    }
    for (int j = 0; j < r->ne; j++) {
        const rp_edge *e = &r->e[j];
        if (!e->live) continue;
        int ku = r->k[e->u], kv = r->k[e->v];
        rows += ku + kv;
        for (int x = 0; x < ku; x++)
            for (int y = 0; y < kv; y++)
                if (isfinite(e->c[(size_t)x * kv + y]) && scol[off[e->u] + x] && scol[off[e->v] + y]) cols++, nnz += 2;
        nnz += ku + kv;
    }
    if (with_mem) rows++;
    m.rows = (int)rows;
    m.cols = (int)cols;
    m.ia = malloc((size_t)(nnz + 1) * sizeof *m.ia);
    m.ja = malloc((size_t)(nnz + 1) * sizeof *m.ja);
    m.ar = malloc((size_t)(nnz + 1) * sizeof *m.ar);
    m.obj = calloc((size_t)cols + 1, sizeof *m.obj);
    m.binary = calloc((size_t)cols + 1, 1);
    m.x = calloc((size_t)cols + 1, sizeof *m.x);
    m.row_type = calloc((size_t)rows + 1, sizeof *m.row_type);
    m.row_rhs = calloc((size_t)rows + 1, sizeof *m.row_rhs);
    if (!m.ia || !m.ja || !m.ar || !m.obj || !m.binary || !m.x || !m.row_type || !m.row_rhs) goto nomem;

    /* objective scale: the largest finite coefficient (diffusion may leave negative ones) */
    double scale = 0;
    for (int i = 0; i < n; i++) {
        if (r->gone[i]) continue;
        for (int s = 0; s < r->k[i]; s++)
            if (scol[off[i] + s]) scale = fmax(scale, fabs(r->c[i][s]));
    }
    for (int j = 0; j < r->ne; j++) {
        const rp_edge *e = &r->e[j];
        if (!e->live) continue;
        for (size_t t = 0; t < (size_t)r->k[e->u] * r->k[e->v]; t++)
            if (isfinite(e->c[t])) scale = fmax(scale, fabs(e->c[t]));
    }
    if (!(scale > 0)) scale = 1;

    int row = 0, col = 0;
    long z = 0;
#define NZ(i_, j_, v_) (z++, m.ia[z] = (i_), m.ja[z] = (j_), m.ar[z] = (v_))
    int mem_row = with_mem ? (int)rows : 0;
    for (int i = 0; i < n; i++) {
        if (r->gone[i]) continue;
        row++;
        m.row_type[row] = GLP_FX;
        m.row_rhs[row] = 1;
        for (int s = 0; s < r->k[i]; s++) {
            int j = scol[off[i] + s];
            if (!j) continue;
            col = j;
            m.binary[j] = 1;
            m.obj[j] = r->c[i][s] / scale;
            NZ(row, j, 1.0);
            if (with_mem && r->m[i][s] != 0) NZ(mem_row, j, r->m[i][s] / r->limit);
        }
    }
    m.binaries = col;
    for (int j = 0; j < r->ne; j++) {
        const rp_edge *e = &r->e[j];
        if (!e->live) continue;
        int ku = r->k[e->u], kv = r->k[e->v];
        int row_u = row, row_v = row + ku; /* rows row_u+1..row_u+ku, row_v+1..row_v+kv */
        for (int x = 0; x < ku; x++) {
            m.row_type[row_u + 1 + x] = GLP_FX;
            int su = scol[off[e->u] + x];
            if (su) NZ(row_u + 1 + x, su, -1.0);
        }
        for (int y = 0; y < kv; y++) {
            m.row_type[row_v + 1 + y] = GLP_FX;
            int sv = scol[off[e->v] + y];
            if (sv) NZ(row_v + 1 + y, sv, -1.0);
        }
        for (int x = 0; x < ku; x++)
            for (int y = 0; y < kv; y++) {
                double c = e->c[(size_t)x * kv + y];
                if (!isfinite(c) || !scol[off[e->u] + x] || !scol[off[e->v] + y]) continue;
                col++;
                m.obj[col] = c / scale;
                NZ(row_u + 1 + x, col, 1.0);
                NZ(row_v + 1 + y, col, 1.0);
            }
        row += ku + kv;
    }
    if (with_mem) {
        row++;
        m.row_type[row] = GLP_UP;
        m.row_rhs[row] = (r->limit - r->m0) / r->limit - shrink;
    }
#undef NZ
    if (row != m.rows || col != m.cols || z > nnz) {
        rc = st_error_set(err, ST_EINTERNAL, NULL, NULL, "ILP model size mismatch (%d/%d rows, %d/%d columns)", row,
                          m.rows, col, m.cols);
        goto out;
    }
    m.nnz = (int)z;
    o->rows = m.rows;
    o->cols = m.cols;
    o->binaries = m.binaries;
    if (glpk_run(&m, tm_lim_s) != 0) {
        rc = st_error_set(err, ST_EINTERNAL, NULL, NULL, "GLPK reported an internal error on a %d x %d ILP", m.rows,
                          m.cols);
        goto out;
    }
    int have = m.status == GLP_OPT || m.status == GLP_FEAS;
    if (m.bound > -INFINITY) o->bound = m.bound * scale + r->c0;
    if (have) {
        for (int i = 0; i < n; i++) {
            if (r->gone[i]) continue;
            int arg = -1;
            double hi = -1;
            for (int s = 0; s < r->k[i]; s++) {
                int j = scol[off[i] + s];
                if (j && m.x[j] > hi) hi = m.x[j], arg = s;
            }
            a[i] = arg;
        }
    }
    if (m.ret == 0 && m.status == GLP_OPT)
        o->status = RUN_OPTIMAL;
    else if (have)
        o->status = RUN_FEASIBLE;
    else if ((m.ret == 0 && m.status == GLP_NOFEAS) || m.ret == GLP_ENOPFS)
        o->status = RUN_INFEASIBLE;
    else if (m.ret == GLP_ETMLIM)
        o->status = RUN_NONE;
    else
        rc = st_error_set(err, ST_EINTERNAL, NULL, NULL, "GLPK failed on a %d x %d ILP (glp_intopt returned %d)",
                          m.rows, m.cols, m.ret);
    goto out;
nomem:
    rc = st_error_set(err, ST_ENOMEM, NULL, NULL, "out of memory");
out:
    lp_model_free(&m);
    free(off);
    free(scol);
    return rc;
}

/* ---------------------------------------------------------------- incumbents */

static double rp_cost(const rp *r, const int *a) {
    double c = r->c0;
    for (int i = 0; i < r->n; i++)
        if (!r->gone[i]) c += r->c[i][a[i]];
    for (int j = 0; j < r->ne; j++) {
        const rp_edge *e = &r->e[j];
        if (e->live) c += e->c[(size_t)a[e->u] * r->k[e->v] + a[e->v]];
    }
    return c;
}

static double rp_mem(const rp *r, const int *a) {
    double m = r->m0;
    for (int i = 0; i < r->n; i++)
        if (!r->gone[i]) m += r->m[i][a[i]];
    return m;
}

static double rp_delta(const rp *r, const int *a, int i, int s) {
    double d = r->c[i][s] - r->c[i][a[i]];
    for (int t = 0; t < r->nadj[i]; t++) {
        const rp_edge *e = &r->e[r->adj[i][t]];
        if (!e->live) continue;
        int y = eother(e, i);
        d += ecost(r, e, i, s, a[y]) - ecost(r, e, i, a[i], a[y]);
    }
    return d;
}

/* From a finite-cost assignment of the live nodes of r: with a memory row, greedy repair until
 * it fits (least cost per byte saved first); then 1-opt descent that keeps it fitting. Returns
 * 0, or -1 when the start is infinite or the repair gets stuck. */
static int heuristic(const rp *r, int *a) {
    if (!isfinite(rp_cost(r, a))) return -1;
    double mem = r->m ? rp_mem(r, a) : 0;
    while (r->m && mem > r->limit) {
        int bi = -1, bs = -1;
        double best = INFINITY;
        for (int i = 0; i < r->n; i++) {
            if (r->gone[i]) continue;
            for (int s = 0; s < r->k[i]; s++) {
                double dm = r->m[i][s] - r->m[i][a[i]];
                if (dm >= 0) continue;
                double dc = rp_delta(r, a, i, s), ratio = dc / -dm;
                if (isfinite(dc) && ratio < best) best = ratio, bi = i, bs = s;
            }
        }
        if (bi < 0) return -1;
        mem += r->m[bi][bs] - r->m[bi][a[bi]];
        a[bi] = bs;
    }
    for (int pass = 0; pass < 100; pass++) { /* cheap: always runs, deadline or not */
        int improved = 0;
        for (int i = 0; i < r->n; i++) {
            if (r->gone[i]) continue;
            int bs = -1;
            double best = 0;
            for (int s = 0; s < r->k[i]; s++) {
                if (s == a[i] || (r->m && mem + r->m[i][s] - r->m[i][a[i]] > r->limit)) continue;
                double dc = rp_delta(r, a, i, s);
                if (dc < best - 1e-12 * fabs(r->c[i][a[i]])) best = dc, bs = s;
            }
            if (bs >= 0) {
                if (r->m) mem += r->m[i][bs] - r->m[i][a[i]];
                a[i] = bs;
                improved = 1;
            }
        }
        if (!improved) break;
    }
    return 0;
}

/* The numbering r->orig refers to, from r's (folded nodes took their one strategy). */
static void to_choice(const rp *r, const int *a, int *x) {
    for (int i = 0; i < r->n; i++) x[i] = r->orig[i][r->gone[i] == 1 ? 0 : a[i]];
}

/* A bound that needs no solver: reparametrised edges are >= 0. */
static double trivial_bound(const rp *r) {
    double b = r->c0;
    for (int i = 0; i < r->n; i++) {
        if (r->gone[i]) continue;
        double lo = INFINITY;
        for (int s = 0; s < r->k[i]; s++) lo = fmin(lo, r->c[i][s]);
        b += lo;
    }
    return b;
}

typedef struct incumbent {
    const rp *s;
    const st_ilp *p; /* with a memory row: s->orig is p's numbering, and fits() has the last word */
    double cost;     /* in s's objective; INFINITY when none */
    int *x;          /* in s->orig's numbering */
    int *tmp;
} incumbent;

/* The incumbent in s's current numbering (s renumbers as it is reduced). Returns -1 when one of
 * its strategies is gone (dominated), 0 otherwise. */
static int remap(const incumbent *in, int *a) {
    const rp *s = in->s;
    for (int i = 0; i < s->n; i++) {
        a[i] = 0;
        if (s->gone[i]) continue;
        int found = -1;
        for (int x = 0; x < s->k[i] && found < 0; x++)
            if (s->orig[i][x] == in->x[i]) found = x;
        if (found < 0) return -1;
        a[i] = found;
    }
    return 0;
}

static void consider(incumbent *in, const int *a) {
    double c = rp_cost(in->s, a);
    if (!(c < in->cost)) return;
    to_choice(in->s, a, in->tmp);
    if (in->s->m && !fits(in->p, in->tmp)) return;
    in->cost = c;
    memcpy(in->x, in->tmp, (size_t)in->s->n * sizeof *in->x);
}

static void considerh(incumbent *in, const int *a, int *scratch) {
    memcpy(scratch, a, (size_t)in->s->n * sizeof *scratch);
    consider(in, a);
    if (heuristic(in->s, scratch) == 0) consider(in, scratch);
}

/* ---------------------------------------------------------------- Lagrangian bounds and fixing */

/* The memory row moved into the objective with a multiplier lambda >= 0 (Fisher 1981):
 * L(lambda) = min_x cost(x) + lambda (mem(x) - limit) is a lower bound for every lambda, and for
 * a graph that elimination reduces completely it is computed exactly in milliseconds. Where
 * elimination leaves a core, the relaxation also drops the edges outside a maximum spanning
 * forest (their costs are >= 0, so the bound stays valid). The best lambda is found by Kelley's
 * cutting planes on the concave, piecewise-linear L. Its min-marginals then bound every
 * strategy and every pair: whatever cannot beat the incumbent is removed (reduced-cost fixing),
 * and GLPK gets what is left, usually a small fraction of the pair columns. */
typedef struct lagr {
    const rp *s;
    unsigned char *drop; /* per edge id of s: outside the spanning forest */
    int *emap;           /* edge id of s -> id in the evaluated copy */
} lagr;

/* Min-sum diffusion (Kovalevsky and Koval; Werner, PAMI 2007, section 6.3), in place: for each
 * node, the node cost and the row minima of its edges are made equal, which keeps the cost of
 * every assignment and never lowers the bound  sum_i min c_i + sum_edges min E. It converges to
 * an arc-consistent reparametrisation whose bound is usually close to the LP's; edges dropped
 * from the series-parallel relaxation afterwards lose only what diffusion left on them. s must
 * be arc consistent (every row and column of every edge has a finite entry). Returns the bound. */
static double diffusion_bound(const rp *s) {
    double b = s->c0;
    for (int i = 0; i < s->n; i++) {
        if (s->gone[i]) continue;
        double lo = INFINITY;
        for (int a = 0; a < s->k[i]; a++) lo = fmin(lo, s->c[i][a]);
        b += lo;
    }
    for (int j = 0; j < s->ne; j++) {
        const rp_edge *e = &s->e[j];
        if (!e->live) continue;
        double lo = INFINITY;
        for (size_t z = 0; z < (size_t)s->k[e->u] * s->k[e->v]; z++) lo = fmin(lo, e->c[z]);
        b += lo;
    }
    return b;
}

static int diffuse(rp *s, double deadline, int max_sweeps) {
    int kmax = 1, dmax = 1;
    for (int i = 0; i < s->n; i++) kmax = s->k[i] > kmax ? s->k[i] : kmax, dmax = s->nadj[i] > dmax ? s->nadj[i] : dmax;
    double *m = malloc((size_t)kmax * dmax * sizeof *m), *avg = malloc((size_t)kmax * sizeof *avg);
    if (!m || !avg) {
        free(m), free(avg);
        return ST_ENOMEM;
    }
    double prev = diffusion_bound(s);
    for (int sweep = 0; sweep < max_sweeps; sweep++) {
        for (int i = 0; i < s->n; i++) {
            if (s->gone[i]) continue;
            int ki = s->k[i], nd = 0;
            for (int a = 0; a < ki; a++) avg[a] = s->c[i][a];
            for (int t = 0; t < s->nadj[i]; t++) {
                const rp_edge *e = &s->e[s->adj[i][t]];
                if (!e->live) continue;
                int y = eother(e, i);
                for (int a = 0; a < ki; a++) {
                    double lo = INFINITY;
                    for (int b = 0; b < s->k[y]; b++) lo = fmin(lo, ecost(s, e, i, a, b));
                    m[(size_t)nd * ki + a] = lo;
                    avg[a] += lo;
                }
                nd++;
            }
            if (!nd) continue;
            for (int a = 0; a < ki; a++) avg[a] /= nd + 1;
            nd = 0;
            for (int t = 0; t < s->nadj[i]; t++) {
                rp_edge *e = &s->e[s->adj[i][t]];
                if (!e->live) continue;
                int y = eother(e, i), ky = s->k[y];
                for (int a = 0; a < ki; a++) {
                    double d = avg[a] - m[(size_t)nd * ki + a];
                    if (i == e->u)
                        for (int b = 0; b < ky; b++) e->c[(size_t)a * ky + b] += d;
                    else
                        for (int b = 0; b < ky; b++) e->c[(size_t)b * ki + a] += d;
                }
                nd++;
            }
            for (int a = 0; a < ki; a++) s->c[i][a] = avg[a];
        }
        if (sweep % 10 == 9) {
            double cur = diffusion_bound(s);
            if (cur - prev <= 1e-7 * fabs(cur) || (deadline > 0 && st_clock_s() > deadline)) break;
            prev = cur;
        }
    }
    free(m), free(avg);
    return 0;
}

/* Chooses edges of s to leave out of the relaxation so that elimination consumes the rest
 * completely (a series-parallel relaxation): while elimination gets stuck on a core, drop the
 * lightest original edge behind an edge of a least-degree core node, and start again. Topology
 * only, on an n x n matrix of origins; graphs too large for it get a maximum spanning forest. */
static double edge_weight(const rp *s, const rp_edge *e) {
    double sum = 0;
    size_t cnt = 0, total = (size_t)s->k[e->u] * s->k[e->v];
    for (size_t z = 0; z < total; z++) {
        if (!isfinite(e->c[z])) return INFINITY; /* infinite pairs carry the most information */
        sum += e->c[z];
        cnt++;
    }
    return cnt ? sum / (double)cnt : 0;
}

static int uf_find(int *par, int i) {
    while (par[i] != i) i = par[i] = par[par[i]];
    return i;
}

static int spanning_forest(const rp *s, const double *w, unsigned char *drop) {
    int *ids = malloc(((size_t)s->ne + 1) * sizeof *ids), *par = malloc((size_t)s->n * sizeof *par), nw = 0;
    if (!ids || !par) {
        free(ids), free(par);
        return ST_ENOMEM;
    }
    for (int j = 0; j < s->ne; j++)
        if (s->e[j].live) ids[nw++] = j;
    /* heaviest first, ties by id: insertion sort is fine for the few hundred edges at stake */
    for (int x = 1; x < nw; x++)
        for (int y = x; y > 0 && (w[ids[y]] > w[ids[y - 1]] || (w[ids[y]] == w[ids[y - 1]] && ids[y] < ids[y - 1])); y--) {
            int t = ids[y];
            ids[y] = ids[y - 1], ids[y - 1] = t;
        }
    for (int i = 0; i < s->n; i++) par[i] = i;
    for (int z = 0; z < nw; z++) {
        const rp_edge *e = &s->e[ids[z]];
        int a = uf_find(par, e->u), b = uf_find(par, e->v);
        if (a == b)
            drop[ids[z]] = 1;
        else
            par[a] = b;
    }
    free(ids), free(par);
    return 0;
}

static int choose_drops(const rp *s, unsigned char *drop) {
    int n = s->n, rc = 0;
    double *w = malloc(((size_t)s->ne + 1) * sizeof *w);
    if (!w) return ST_ENOMEM;
    for (int j = 0; j < s->ne; j++) w[j] = s->e[j].live ? edge_weight(s, &s->e[j]) : 0;
    if (n > 2000) {
        rc = spanning_forest(s, w, drop);
        free(w);
        return rc;
    }
    int *O = malloc((size_t)n * n * sizeof *O), *deg = malloc((size_t)n * sizeof *deg);
    int *stack = malloc((3 * (size_t)n + 4) * sizeof *stack);
    unsigned char *gone = malloc((size_t)n);
    if (!O || !deg || !stack || !gone) {
        rc = ST_ENOMEM;
        goto out;
    }
    for (int round = 0; round <= s->ne; round++) {
        for (size_t z = 0; z < (size_t)n * n; z++) O[z] = -1;
        for (int i = 0; i < n; i++) deg[i] = 0, gone[i] = s->gone[i] != 0;
        for (int j = 0; j < s->ne; j++) {
            const rp_edge *e = &s->e[j];
            if (!e->live || drop[j]) continue;
            O[(size_t)e->u * n + e->v] = O[(size_t)e->v * n + e->u] = j;
            deg[e->u]++, deg[e->v]++;
        }
        int top = 0;
        for (int i = n - 1; i >= 0; i--)
            if (!gone[i]) stack[top++] = i;
        while (top > 0) {
            int v = stack[--top];
            if (gone[v] || deg[v] > 2) continue;
            int nb[2], ni = 0;
            for (int y = 0; y < n && ni < deg[v]; y++)
                if (O[(size_t)v * n + y] >= 0) nb[ni++] = y;
            if (ni == 1) {
                O[(size_t)v * n + nb[0]] = O[(size_t)nb[0] * n + v] = -1;
                deg[nb[0]]--;
                stack[top++] = nb[0];
            } else if (ni == 2) {
                int u = nb[0], x = nb[1], origin = O[(size_t)v * n + u];
                O[(size_t)v * n + u] = O[(size_t)u * n + v] = O[(size_t)v * n + x] = O[(size_t)x * n + v] = -1;
                deg[u]--, deg[x]--;
                if (O[(size_t)u * n + x] < 0) {
                    O[(size_t)u * n + x] = O[(size_t)x * n + u] = origin;
                    deg[u]++, deg[x]++;
                }
                stack[top++] = u;
                stack[top++] = x;
            }
            gone[v] = 1;
            deg[v] = 0;
        }
        int mind = INT_MAX;
        for (int i = 0; i < n; i++)
            if (!gone[i] && deg[i] < mind) mind = deg[i];
        if (mind == INT_MAX) goto out; /* eliminated completely */
        int pick = -1;
        for (int i = 0; i < n; i++) {
            if (gone[i] || deg[i] != mind) continue;
            for (int y = 0; y < n; y++) {
                int o = O[(size_t)i * n + y];
                if (o >= 0 && (pick < 0 || w[o] < w[pick] || (w[o] == w[pick] && o < pick))) pick = o;
            }
        }
        drop[pick] = 1;
    }
    rc = spanning_forest(s, w, drop); /* not reached: each round drops an edge */
out:
    free(w), free(O), free(deg), free(stack), free(gone);
    return rc;
}

static int lagr_init(rp *s, lagr *L, double deadline) {
    rp t = {0};
    elim_log lg = {0};
    int rc = 0, core = 0;
    L->s = s;
    L->drop = calloc((size_t)s->ne + 1, 1);
    L->emap = malloc(((size_t)s->ne + 1) * sizeof *L->emap);
    if (!L->drop || !L->emap) goto nomem;
    if (rp_clone(s, &t, 0, 1, NULL) || eliminate(&t, &lg, 0)) goto nomem;
    for (int i = 0; i < t.n; i++) core += t.gone[i] == 0;
    if (core) {
        /* some edges must go: first move what they carry onto the nodes */
        if (diffuse(s, deadline, 1000)) goto nomem;
        reparametrise(s);
        if (choose_drops(s, L->drop)) goto nomem;
    }
    goto out;
nomem:
    rc = ST_ENOMEM;
out:
    rp_free(&t);
    elim_log_free(&lg);
    return rc;
}

static void lagr_free(lagr *L) {
    free(L->drop);
    free(L->emap);
}

/* Minimises cost + lambda (mem - limit) over the relaxation: *value the minimum (a lower bound
 * on the ILP), a the minimiser in s's numbering, cl and log the eliminated copy (factors kept
 * when keep). Returns 0, ST_ENOMEM, or -1 if the elimination was not complete. */
static int lagr_eval(const lagr *L, double lambda, int keep, rp *cl, elim_log *log, int *a, double *value) {
    const rp *s = L->s;
    if (rp_clone(s, cl, 0, 1, L->emap)) return ST_ENOMEM;
    if (s->m) {
        for (int i = 0; i < s->n; i++)
            if (!s->gone[i])
                for (int x = 0; x < s->k[i]; x++) cl->c[i][x] += lambda * s->m[i][x];
        cl->c0 += lambda * (s->m0 - s->limit);
    }
    for (int j = 0; j < s->ne; j++)
        if (L->drop[j] && L->emap[j] >= 0) cl->e[L->emap[j]].live = 0;
    if (eliminate(cl, log, keep)) return ST_ENOMEM;
    for (int i = 0; i < s->n; i++)
        if (!cl->gone[i]) return -1; /* not reducible after all: no bound from here */
    for (int i = 0; i < s->n; i++) a[i] = 0;
    elim_back(log, cl, a);
    *value = cl->c0;
    return 0;
}

/* Removes from s every strategy and pair whose Lagrangian min-marginal at lambda exceeds ub.
 * Exact: an assignment using one costs at least that much, so it cannot beat the incumbent. */
static int lagr_fix(const lagr *L, rp *s, double lambda, double ub, double tol) {
    rp cl = {0};
    elim_log log = {0};
    double **MM = calloc((size_t)s->n, sizeof *MM), **PMM = NULL, v;
    int *a = malloc((size_t)s->n * sizeof *a), rc = 0;
    if (!MM || !a) goto nomem;
    rc = lagr_eval(L, lambda, 1, &cl, &log, a, &v);
    if (rc) goto out;
    PMM = calloc((size_t)cl.ne + 1, sizeof *PMM);
    if (!PMM) goto nomem;
    for (int i = 0; i < s->n; i++) {
        if (s->gone[i]) continue;
        MM[i] = malloc((size_t)s->k[i] * sizeof **MM);
        if (!MM[i]) goto nomem;
        for (int x = 0; x < s->k[i]; x++) MM[i][x] = INFINITY;
    }
    rc = min_marginals(&cl, &log, MM, PMM);
    if (rc < 0 && rc != -1) goto out;
    if (rc == -1) { /* not a complete elimination: fix nothing */
        rc = 0;
        goto out;
    }
    double cut = ub + tol;
    for (int i = 0; i < s->n; i++) {
        if (s->gone[i]) continue;
        for (int x = 0; x < s->k[i]; x++)
            if (MM[i][x] > cut) s->kill[i][x] = 1;
    }
    for (int j = 0; j < s->ne; j++) {
        rp_edge *e = &s->e[j];
        if (!e->live) continue;
        int ku = s->k[e->u], kv = s->k[e->v], cid = L->emap[j];
        const double *P = !L->drop[j] && cid >= 0 ? PMM[cid] : NULL;
        if (!L->drop[j] && !P) continue;
        for (int x = 0; x < ku; x++)
            for (int y = 0; y < kv; y++) {
                double *c = &e->c[(size_t)x * kv + y];
                /* a dropped edge was left out of the relaxation: its own cost comes on top */
                double b = P ? P[(size_t)x * kv + y] : fmax(MM[e->u][x], MM[e->v][y]) + *c;
                if (b > cut) *c = INFINITY;
            }
    }
    goto out;
nomem:
    rc = ST_ENOMEM;
out:
    if (MM)
        for (int i = 0; i < s->n; i++) free(MM[i]);
    if (PMM)
        for (int j = 0; j < cl.ne; j++) free(PMM[j]);
    free(MM);
    free(PMM);
    free(a);
    elim_log_free(&log);
    rp_free(&cl);
    return rc;
}

/* Kelley's cutting planes on the concave, piecewise-linear L(lambda), from lambda = 0 (value v0,
 * minimiser a). Every minimiser met is offered as an incumbent (repaired). *lb and *best receive
 * the best bound and its lambda. a, b: scratch. */
static int lagr_search(const lagr *L, incumbent *in, double v0, int *a, int *b, double deadline, double *lb,
                       double *best) {
    const rp *s = L->s;
    int n = s->n, rc = 0, with_mem = s->m != NULL;
    double hdead = deadline > 0 ? deadline : INFINITY;
    rp cl = {0};
    elim_log log = {0};
    *lb = v0;
    *best = 0;
    double g0 = with_mem ? rp_mem(s, a) - s->limit : 0;
    if (with_mem && g0 > 0) {
        /* lines C + lambda G of the minimisers on both sides of the optimal lambda */
        double lo = 0, c_lo = v0, g_lo = g0, hi = 0, c_hi = 0, g_hi = 0;
        double range = 0;
        for (int i = 0; i < n; i++) {
            if (s->gone[i]) continue;
            double mn = INFINITY, mx = 0;
            for (int x = 0; x < s->k[i]; x++) mn = fmin(mn, s->c[i][x]), mx = fmax(mx, s->c[i][x]);
            range += mx - mn;
        }
        double lam = (isfinite(in->cost) ? fmax(in->cost - v0, 0) : 0) + range;
        lam = fmax(lam, 1e-300) / g0;
        int found = 0;
        for (int it = 0; it < 200 && !found && st_clock_s() < hdead; it++, lam *= 4) {
            double v;
            rc = lagr_eval(L, lam, 0, &cl, &log, a, &v);
            rp_free(&cl), elim_log_free(&log);
            if (rc) return rc; /* -1 cannot happen: same structure as at lambda = 0 */
            double g = rp_mem(s, a) - s->limit;
            if (v > *lb) *lb = v, *best = lam;
            considerh(in, a, b);
            if (g <= 0)
                found = 1, hi = lam, c_hi = v - lam * g, g_hi = g;
            else
                lo = lam, c_lo = v - lam * g, g_lo = g;
        }
        for (int it = 0; found && it < 100 && st_clock_s() < hdead; it++) {
            double lam_x = (c_hi - c_lo) / (g_lo - g_hi), v;
            if (!(lam_x > lo && lam_x < hi)) break;
            rc = lagr_eval(L, lam_x, 0, &cl, &log, a, &v);
            rp_free(&cl), elim_log_free(&log);
            if (rc) return rc; /* -1 cannot happen: same structure as at lambda = 0 */
            double g = rp_mem(s, a) - s->limit, top = c_lo + lam_x * g_lo;
            if (v > *lb) *lb = v, *best = lam_x;
            considerh(in, a, b);
            if (v >= top - 1e-12 * (fabs(top) + lam_x * s->limit)) break; /* lam_x maximises L */
            if (g > 0)
                lo = lam_x, c_lo = v - lam_x * g, g_lo = g;
            else
                hi = lam_x, c_hi = v - lam_x * g, g_hi = g;
        }
    }
    return 0;
}

/* ---------------------------------------------------------------- LP bound by column generation */

/* The LP relaxation of the whole formulation is a bound for any graph, but most of its pair
 * columns stay at zero and solving all of them is what makes GLPK slow (a 31-node core with 40
 * strategies per node: 80,000 columns, seconds). So the LP starts from the pairs that are cheapest
 * for each strategy (row and column minima) plus the incumbent's, and prices the rest with the
 * row duals: a pair e[a][b] of edge (u, v) has reduced cost E[a][b] - y(u, a) - y(v, b). When no
 * pair prices out the LP is solved over all of them. Its duals then bound every column: any
 * assignment costs at least  y.b + sum of the reduced costs of the columns it uses  (columns
 * only have lower bounds 0 here; the memory row's dual is <= 0), so a column whose reduced cost
 * exceeds the gap to the incumbent is fixed to zero (reduced-cost fixing). */
typedef struct cg {
    const rp *s;
    const int *inc; /* incumbent, s's numbering, or NULL */
    int with_mem;
    double scale, deadline;
    int nrows, mem_row, maxlen;
    int *row1;     /* per node: its one-hot row (0 for gone nodes) */
    int *rmarg;    /* per edge: row before its u marginals; v's follow after k[u] of them */
    size_t *soff, *eoff;
    int *scol;     /* per node strategy: column, 0 when left out */
    int *ecol;     /* per edge entry: column, 0 when not in the pool */
    int *ind;
    double *val;   /* one column, maxlen + 1 */
    double *y;     /* row duals */
    double *xs;    /* LP value per node strategy */
    double *ds;    /* reduced cost per node strategy */
    double *de;    /* reduced cost per edge entry */
    double dual_obj; /* y.b, scaled */
    int status;    /* 0 solved over all columns, 1 time limit, 2 failed */
    int cols, rounds;
} cg;

static void cg_free(cg *g) {
    free(g->row1), free(g->rmarg), free(g->soff), free(g->eoff), free(g->scol), free(g->ecol);
    free(g->ind), free(g->val), free(g->y), free(g->xs), free(g->ds), free(g->de);
}

static int cg_alloc(cg *g) {
    const rp *s = g->s;
    int n = s->n;
    g->row1 = calloc((size_t)n, sizeof *g->row1);
    g->rmarg = calloc((size_t)s->ne + 1, sizeof *g->rmarg);
    g->soff = malloc(((size_t)n + 1) * sizeof *g->soff);
    g->eoff = malloc(((size_t)s->ne + 1) * sizeof *g->eoff);
    if (!g->row1 || !g->rmarg || !g->soff || !g->eoff) return ST_ENOMEM;
    int row = 0, maxdeg = 0;
    g->soff[0] = 0;
    for (int i = 0; i < n; i++) {
        g->soff[i + 1] = g->soff[i] + (size_t)s->k[i];
        if (!s->gone[i]) g->row1[i] = ++row;
        maxdeg = s->nadj[i] > maxdeg ? s->nadj[i] : maxdeg;
    }
    g->eoff[0] = 0;
    for (int j = 0; j < s->ne; j++) {
        const rp_edge *e = &s->e[j];
        g->eoff[j + 1] = g->eoff[j] + (e->live ? (size_t)s->k[e->u] * s->k[e->v] : 0);
        if (e->live) g->rmarg[j] = row, row += s->k[e->u] + s->k[e->v];
    }
    g->mem_row = g->with_mem ? ++row : 0;
    g->nrows = row;
    g->maxlen = maxdeg + 3;
    g->scol = calloc(g->soff[n] + 1, sizeof *g->scol);
    g->ecol = calloc(g->eoff[s->ne] + 1, sizeof *g->ecol);
    g->ind = malloc(((size_t)g->maxlen + 1) * sizeof *g->ind);
    g->val = malloc(((size_t)g->maxlen + 1) * sizeof *g->val);
    g->y = calloc((size_t)row + 1, sizeof *g->y);
    g->xs = calloc(g->soff[n] + 1, sizeof *g->xs);
    g->ds = calloc(g->soff[n] + 1, sizeof *g->ds);
    g->de = calloc(g->eoff[s->ne] + 1, sizeof *g->de);
    if (!g->scol || !g->ecol || !g->ind || !g->val || !g->y || !g->xs || !g->ds || !g->de) return ST_ENOMEM;
    return 0;
}

static void cg_add_pair(cg *g, glp_prob *P, int j, int a, int b) {
    const rp *s = g->s;
    const rp_edge *e = &s->e[j];
    int kv = s->k[e->v];
    size_t z = g->eoff[j] + (size_t)a * kv + b;
    if (g->ecol[z] || !isfinite(e->c[(size_t)a * kv + b])) return;
    if (!g->scol[g->soff[e->u] + a] || !g->scol[g->soff[e->v] + b]) return;
    int c = glp_add_cols(P, 1);
    glp_set_col_bnds(P, c, GLP_LO, 0, 0);
    glp_set_obj_coef(P, c, e->c[(size_t)a * kv + b] / g->scale);
    g->ind[1] = g->rmarg[j] + 1 + a, g->val[1] = 1;
    g->ind[2] = g->rmarg[j] + 1 + s->k[e->u] + b, g->val[2] = 1;
    glp_set_mat_col(P, c, 2, g->ind, g->val);
    g->ecol[z] = c;
    g->cols++;
}

static double cg_price(const cg *g, int j, int a, int b) {
    const rp *s = g->s;
    const rp_edge *e = &s->e[j];
    return e->c[(size_t)a * s->k[e->v] + b] / g->scale - g->y[g->rmarg[j] + 1 + a] - g->y[g->rmarg[j] + 1 + s->k[e->u] + b];
}

/* The GLPK part, protected like glpk_run. Returns 0, or -1 on a GLPK error. */
static int cg_run(cg *g) {
    jmp_buf jb;
    if (setjmp(jb)) {
        glp_error_hook(NULL, NULL);
        glp_free_env();
        return -1;
    }
    glp_error_hook(glpk_error_hook, &jb);
    glp_term_out(GLP_OFF);
    const rp *s = g->s;
    glp_prob *P = glp_create_prob();
    glp_set_obj_dir(P, GLP_MIN);
    glp_add_rows(P, g->nrows);
    for (int i = 1; i <= g->nrows; i++) glp_set_row_bnds(P, i, GLP_FX, 0, 0);
    for (int i = 0; i < s->n; i++)
        if (g->row1[i]) glp_set_row_bnds(P, g->row1[i], GLP_FX, 1, 1);
    if (g->mem_row) glp_set_row_bnds(P, g->mem_row, GLP_UP, 0, (s->limit - s->m0) / s->limit);
    for (int i = 0; i < s->n; i++) {
        if (s->gone[i]) continue;
        for (int a = 0; a < s->k[i]; a++) {
            if (!isfinite(s->c[i][a])) continue;
            int c = glp_add_cols(P, 1), len = 0;
            glp_set_col_bnds(P, c, GLP_LO, 0, 0);
            glp_set_obj_coef(P, c, s->c[i][a] / g->scale);
            g->ind[++len] = g->row1[i], g->val[len] = 1;
            for (int t = 0; t < s->nadj[i]; t++) {
                int j = s->adj[i][t];
                const rp_edge *e = &s->e[j];
                if (!e->live) continue;
                g->ind[++len] = g->rmarg[j] + 1 + (i == e->u ? a : s->k[e->u] + a), g->val[len] = -1;
            }
            if (g->mem_row && s->m[i][a] != 0) g->ind[++len] = g->mem_row, g->val[len] = s->m[i][a] / s->limit;
            glp_set_mat_col(P, c, len, g->ind, g->val);
            g->scol[g->soff[i] + a] = c;
            g->cols++;
        }
    }
    for (int j = 0; j < s->ne; j++) {
        const rp_edge *e = &s->e[j];
        if (!e->live) continue;
        int ku = s->k[e->u], kv = s->k[e->v];
        for (int a = 0; a < ku; a++) {
            int arg = -1;
            for (int b = 0; b < kv; b++)
                if (isfinite(e->c[(size_t)a * kv + b]) && (arg < 0 || e->c[(size_t)a * kv + b] < e->c[(size_t)a * kv + arg])) arg = b;
            if (arg >= 0) cg_add_pair(g, P, j, a, arg);
        }
        for (int b = 0; b < kv; b++) {
            int arg = -1;
            for (int a = 0; a < ku; a++)
                if (isfinite(e->c[(size_t)a * kv + b]) && (arg < 0 || e->c[(size_t)a * kv + b] < e->c[(size_t)arg * kv + b])) arg = a;
            if (arg >= 0) cg_add_pair(g, P, j, arg, b);
        }
        if (g->inc) cg_add_pair(g, P, j, g->inc[e->u], g->inc[e->v]);
    }
    g->status = 2;
    for (g->rounds = 0; g->rounds < 500; g->rounds++) {
        glp_smcp sm;
        glp_init_smcp(&sm);
        sm.msg_lev = GLP_MSG_OFF;
        sm.meth = GLP_DUAL; /* measured: about twice as fast as primal here */
        if (g->deadline > 0) {
            double left = g->deadline - st_clock_s();
            if (left <= 0) {
                g->status = 1;
                break;
            }
            sm.tm_lim = left * 1000 < INT_MAX ? (int)ceil(left * 1000) : INT_MAX;
        }
        int ret = glp_simplex(P, &sm);
        if (ret == GLP_ETMLIM) {
            g->status = 1;
            break;
        }
        if (ret != 0 || glp_get_status(P) != GLP_OPT) break; /* infeasible pool or failure */
        for (int i = 1; i <= g->nrows; i++) g->y[i] = glp_get_row_dual(P, i);
        /* per marginal row, its most negative pair: enough to move the duals, few columns */
        int added = 0;
        for (int j = 0; j < s->ne; j++) {
            const rp_edge *e = &s->e[j];
            if (!e->live) continue;
            int ku = s->k[e->u], kv = s->k[e->v];
            for (int a = 0; a < ku; a++) {
                int arg = -1;
                double lo = -1e-9;
                for (int b = 0; b < kv; b++) {
                    if (g->ecol[g->eoff[j] + (size_t)a * kv + b] || !isfinite(e->c[(size_t)a * kv + b])) continue;
                    double d = cg_price(g, j, a, b);
                    if (d < lo) lo = d, arg = b;
                }
                if (arg >= 0) {
                    int before = g->cols;
                    cg_add_pair(g, P, j, a, arg);
                    added += g->cols > before;
                }
            }
            for (int b = 0; b < kv; b++) {
                int arg = -1;
                double lo = -1e-9;
                for (int a = 0; a < ku; a++) {
                    if (g->ecol[g->eoff[j] + (size_t)a * kv + b] || !isfinite(e->c[(size_t)a * kv + b])) continue;
                    double d = cg_price(g, j, a, b);
                    if (d < lo) lo = d, arg = a;
                }
                if (arg >= 0) {
                    int before = g->cols;
                    cg_add_pair(g, P, j, arg, b);
                    added += g->cols > before;
                }
            }
        }
        if (!added) {
            g->status = 0;
            break;
        }
    }
    if (g->status == 0) {
        double yb = 0;
        for (int i = 0; i < s->n; i++)
            if (g->row1[i]) yb += g->y[g->row1[i]];
        if (g->mem_row) yb += g->y[g->mem_row] * ((s->limit - s->m0) / s->limit);
        g->dual_obj = yb;
        for (int i = 0; i < s->n; i++) {
            if (s->gone[i]) continue;
            for (int a = 0; a < s->k[i]; a++) {
                int c = g->scol[g->soff[i] + a];
                g->xs[g->soff[i] + a] = c ? glp_get_col_prim(P, c) : 0;
                g->ds[g->soff[i] + a] = c ? glp_get_col_dual(P, c) : INFINITY;
            }
        }
        for (int j = 0; j < s->ne; j++) {
            const rp_edge *e = &s->e[j];
            if (!e->live) continue;
            int ku = s->k[e->u], kv = s->k[e->v];
            for (int a = 0; a < ku; a++)
                for (int b = 0; b < kv; b++) {
                    size_t z = g->eoff[j] + (size_t)a * kv + b;
                    g->de[z] = g->ecol[z] ? glp_get_col_dual(P, g->ecol[z])
                               : isfinite(e->c[(size_t)a * kv + b]) ? cg_price(g, j, a, b)
                                                                     : INFINITY;
                }
        }
    }
    glp_delete_prob(P);
    glp_error_hook(NULL, NULL);
    return 0;
}

/* LP bound of s by column generation; an assignment rounded from the LP joins the incumbents;
 * then reduced-cost fixing against the incumbent. *lb receives the bound (-INFINITY if none),
 * *fixed how many columns were removed. a and scratch: n ints each. */
static int cg_fix(rp *s, incumbent *in, double deadline, double *lb, long *fixed, int *a, int *scratch) {
    cg g = {0};
    int rc = 0;
    *lb = -INFINITY;
    *fixed = 0;
    g.s = s;
    g.inc = isfinite(in->cost) && remap(in, a) == 0 ? a : NULL;
    g.with_mem = s->m != NULL;
    g.deadline = deadline;
    g.scale = 0;
    for (int i = 0; i < s->n; i++)
        if (!s->gone[i])
            for (int x = 0; x < s->k[i]; x++)
                if (isfinite(s->c[i][x])) g.scale = fmax(g.scale, fabs(s->c[i][x]));
    for (int j = 0; j < s->ne; j++)
        if (s->e[j].live)
            for (size_t z = 0; z < (size_t)s->k[s->e[j].u] * s->k[s->e[j].v]; z++)
                if (isfinite(s->e[j].c[z])) g.scale = fmax(g.scale, fabs(s->e[j].c[z]));
    if (!(g.scale > 0)) g.scale = 1;
    if (cg_alloc(&g)) {
        rc = ST_ENOMEM;
        goto out;
    }
    if (cg_run(&g) != 0 || g.status != 0) goto out;
    /* GLPK's duals are feasible within its tolerance (1e-7 per reduced cost), and an assignment
     * uses one column per live node and per live edge: the bound gives that much back. */
    int ncol1 = 0;
    for (int i = 0; i < s->n; i++) ncol1 += !s->gone[i];
    for (int j = 0; j < s->ne; j++) ncol1 += s->e[j].live;
    double slack = 2e-7 * ncol1;
    *lb = (g.dual_obj - slack) * g.scale + s->c0;
    for (int i = 0; i < s->n; i++) {
        if (s->gone[i]) continue;
        int arg = 0;
        for (int x = 1; x < s->k[i]; x++)
            if (g.xs[g.soff[i] + x] > g.xs[g.soff[i] + arg]) arg = x;
        a[i] = arg;
    }
    considerh(in, a, scratch);
    if (!isfinite(in->cost)) goto out;
    double cut = (in->cost - s->c0) / g.scale - (g.dual_obj - slack) + 1e-6;
    for (int i = 0; i < s->n; i++) {
        if (s->gone[i]) continue;
        for (int x = 0; x < s->k[i]; x++)
            if (g.ds[g.soff[i] + x] > cut) s->kill[i][x] = 1, (*fixed)++;
    }
    for (int j = 0; j < s->ne; j++) {
        rp_edge *e = &s->e[j];
        if (!e->live) continue;
        size_t nz = (size_t)s->k[e->u] * s->k[e->v];
        for (size_t z = 0; z < nz; z++)
            if (isfinite(e->c[z]) && g.de[g.eoff[j] + z] > cut) e->c[z] = INFINITY, (*fixed)++;
    }
out:
    cg_free(&g);
    return rc;
}

/* ---------------------------------------------------------------- the solver */

/* Solves the live part of s, which it reduces in place. With a memory row, p is the caller's
 * problem and s->orig its numbering. start (s's numbering, may be NULL) seeds the incumbent.
 * plain: GLPK on s as it is (tests use it to check the full formulation). out receives the
 * answer in s->orig's numbering. */
static int solve_sub(rp *s, const st_ilp *p, const int *start, double deadline, int plain, int *out, sub_out *o,
                     st_error *err) {
    int n = s->n, rc = 0, with_mem = s->m != NULL, glpk_optimal = 0, glpk_ran = 0;
    /* tests (st__ilp_reduce == 2): the incumbent only drives the fixing, the answer must come
     * from GLPK on what the fixing left, so that a fixing that cut too deep shows */
    int strict = st__ilp_reduce == 2;
    lagr L = {0};
    rp cl = {0};
    elim_log log = {0};
    incumbent in = {s, p, INFINITY, calloc((size_t)n, sizeof(int)), calloc((size_t)n, sizeof(int))};
    int *a = calloc((size_t)n, sizeof *a), *b = calloc((size_t)n, sizeof *b);
    double LB = -INFINITY;
    memset(o, 0, sizeof *o);
    o->bound = -INFINITY;
    if (!in.x || !in.tmp || !a || !b) goto nomem;
    if (plain) goto glpk;

    if (start) considerh(&in, start, b);
    if (lagr_init(s, &L, deadline)) goto nomem;
    double v0, best_lambda = 0;
    rc = lagr_eval(&L, 0, 0, &cl, &log, a, &v0);
    rp_free(&cl), elim_log_free(&log);
    if (rc == -1) {
        rc = 0;
        goto lp;
    }
    if (rc) goto nomem;
    LB = v0;
    considerh(&in, a, b);
    rc = lagr_search(&L, &in, v0, a, b, deadline, &LB, &best_lambda);
    if (rc) goto nomem;
    int ndrop = 0;
    for (int j = 0; j < s->ne; j++) ndrop += L.drop[j] && s->e[j].live;
    if (with_mem && ndrop && best_lambda > 0 && !(isfinite(in.cost) && in.cost <= LB + 1e-10 * fabs(in.cost))) {
        /* the diffusion balanced the costs at lambda = 0; balance them at the best lambda, where
         * the memory terms moved the optimum, and search again */
        for (int i = 0; i < n; i++)
            if (!s->gone[i])
                for (int x = 0; x < s->k[i]; x++) s->c[i][x] += best_lambda * s->m[i][x];
        rc = diffuse(s, deadline, 1000);
        for (int i = 0; i < n; i++)
            if (!s->gone[i])
                for (int x = 0; x < s->k[i]; x++) s->c[i][x] -= best_lambda * s->m[i][x];
        if (rc) goto nomem;
        reparametrise(s);
        rc = lagr_eval(&L, 0, 0, &cl, &log, a, &v0);
        rp_free(&cl), elim_log_free(&log);
        if (rc) goto nomem;
        considerh(&in, a, b);
        double lb2, lam2;
        rc = lagr_search(&L, &in, v0, a, b, deadline, &lb2, &lam2);
        if (rc) goto nomem;
        if (lb2 > LB) LB = lb2, best_lambda = lam2;
    }
    o->bound = LB;
    if (!strict && isfinite(in.cost) && in.cost <= LB + 1e-10 * fabs(in.cost)) goto done; /* it meets the bound */
    if (isfinite(in.cost)) {
        double tol = 1e-9 * (fabs(in.cost) + (with_mem ? best_lambda * s->limit : 0)) + 1e-300;
        rc = lagr_fix(&L, s, best_lambda, in.cost, tol);
        if (rc) goto nomem;
        int empty;
        rc = rp_reduce(s, with_mem, &empty);
        if (rc == ST_ENOPLAN && !strict) { /* nothing beats the incumbent */
            rc = 0;
            o->bound = in.cost;
            goto done;
        }
        if (rc == ST_ENOPLAN) goto overfixed;
        if (rc) goto nomem;
    }

lp:;
    /* still many pair columns (the relaxation dropped edges, or the bound was loose): the LP */
    long pairs = 0;
    for (int j = 0; j < s->ne; j++)
        if (s->e[j].live)
            for (size_t z = 0; z < (size_t)s->k[s->e[j].u] * s->k[s->e[j].v]; z++) pairs += isfinite(s->e[j].c[z]);
    if (pairs > CG_MIN_PAIRS || (st__ilp_reduce == 2 && pairs > 0)) {
        double lb;
        long fixed;
        rc = cg_fix(s, &in, deadline, &lb, &fixed, a, b);
        if (rc) goto nomem;
        o->bound = fmax(o->bound, lb);
        if (!strict && isfinite(in.cost) && in.cost <= o->bound + 1e-10 * fabs(in.cost)) goto done;
        if (fixed) {
            int empty;
            rc = rp_reduce(s, with_mem, &empty);
            if (rc == ST_ENOPLAN && !strict) {
                rc = 0;
                o->bound = in.cost;
                goto done;
            }
            if (rc == ST_ENOPLAN) goto overfixed;
            if (rc) goto nomem;
        }
    }


glpk:;
    /* GLPK accepts the memory row within its feasibility tolerance: an answer that does not fit
     * exactly is solved again with the row tightened. */
    static const double shrink[] = {0, 1e-7, 1e-5};
    int live = 0;
    for (int i = 0; i < n; i++) live += !s->gone[i];
    if (!live) { /* the reductions fixed everything */
        if (strict) in.cost = INFINITY;
        consider(&in, a);
        glpk_optimal = 1;
    }
    for (int t = 0; t < 3 && live && !glpk_ran && (deadline <= 0 || st_clock_s() < deadline); t++) {
        sub_out g;
        double left = deadline > 0 ? fmax(deadline - st_clock_s(), 1e-3) : 0;
        rc = solve_glpk(s, with_mem, shrink[t], left, a, &g, err);
        if (rc) goto out;
        o->rows = g.rows, o->cols = g.cols, o->binaries = g.binaries;
        if (g.status == RUN_INFEASIBLE) {
            if (strict && t == 0 && isfinite(in.cost)) goto overfixed;
            if (t == 0) glpk_optimal = glpk_ran = 1; /* nothing (better than the incumbent) exists */
            continue;
        }
        if (t == 0 && g.bound > -INFINITY) o->bound = fmax(o->bound, fmin(g.bound, in.cost));
        if (g.status == RUN_OPTIMAL || g.status == RUN_FEASIBLE) {
            to_choice(s, a, in.tmp);
            if (!with_mem || fits(p, in.tmp)) {
                glpk_ran = 1;
                glpk_optimal = g.status == RUN_OPTIMAL && t == 0;
                double c = rp_cost(s, a);
                if (c < in.cost || strict) {
                    in.cost = c;
                    memcpy(in.x, in.tmp, (size_t)n * sizeof *in.x);
                }
            }
        }
        if (g.status == RUN_NONE) break;
    }
    if (strict && isfinite(in.cost) && o->bound > in.cost + 1e-9 * fabs(in.cost)) {
        rc = st_error_set(err, ST_EINTERNAL, NULL, NULL, "ILP lower bound %.17g above the optimum %.17g", o->bound,
                          in.cost);
        goto out;
    }
    if (glpk_optimal) o->bound = in.cost;
done:
    if (!isfinite(in.cost))
        o->status = glpk_optimal ? RUN_INFEASIBLE : RUN_NONE;
    else
        o->status = o->bound >= in.cost - 1e-10 * fabs(in.cost) ? RUN_OPTIMAL : RUN_FEASIBLE;
    if (isfinite(in.cost)) memcpy(out, in.x, (size_t)n * sizeof *out);
    goto out;
overfixed:
    rc = st_error_set(err, ST_EINTERNAL, NULL, NULL, "ILP reductions removed every assignment as good as the incumbent");
    goto out;
nomem:
    rc = st_error_set(err, ST_ENOMEM, NULL, NULL, "out of memory");
out:
    lagr_free(&L);
    rp_free(&cl);
    elim_log_free(&log);
    free(in.x);
    free(in.tmp);
    free(a);
    free(b);
    return rc;
}

/* The problem of q without its memory row: exact elimination, then the core (if any) through
 * solve_sub. a receives the answer in q's numbering. */
static int solve_free(const rp *q, double deadline, int *a, sub_out *o, st_error *err) {
    rp r = {0}, s = {0};
    elim_log log = {0};
    int rc = 0;
    memset(o, 0, sizeof *o);
    if (rp_clone(q, &r, 0, 1, NULL) || eliminate(&r, &log, 0)) goto nomem;
    int core = 0;
    for (int i = 0; i < r.n; i++) core += r.gone[i] == 0;
    for (int i = 0; i < r.n; i++) a[i] = 0;
    if (core == 0) {
        o->status = isfinite(r.c0) ? RUN_OPTIMAL : RUN_INFEASIBLE;
        o->bound = r.c0;
    } else {
        if (rp_clone(&r, &s, 0, 1, NULL)) goto nomem;
        rc = solve_sub(&s, NULL, NULL, deadline, 0, a, o, err);
        if (rc) goto out;
    }
    if (o->status == RUN_OPTIMAL || o->status == RUN_FEASIBLE) elim_back(&log, &r, a);
    goto out;
nomem:
    rc = st_error_set(err, ST_ENOMEM, NULL, NULL, "out of memory");
out:
    elim_log_free(&log);
    rp_free(&r);
    rp_free(&s);
    return rc;
}

int st_ilp_solve(const st_ilp *p, int *choice, st_ilp_result *r, st_error *err) {
    int rc = validate(p, choice, r, err);
    if (rc) return rc;
    double t0 = st_clock_s(), deadline = p->time_limit_s > 0 ? t0 + p->time_limit_s : 0;
    memset(r, 0, sizeof *r);
    rp q = {0};
    int *a = NULL, *x = NULL, empty = -1;
    rc = rp_build(p, &q, err);
    if (rc) goto out;
    a = calloc((size_t)p->n, sizeof *a);
    x = calloc((size_t)p->n, sizeof *x);
    if (!a || !x) goto nomem;
    int memory = q.m != NULL;

    /* finite costs first, then memory: the message names the first reason */
    if (st__ilp_reduce) {
        rc = rp_reduce(&q, 0, &empty);
        if (rc == ST_ENOPLAN) {
            rc = err_no_finite(empty, err);
            goto out;
        }
        if (rc) goto nomem;
    }
    if (memory) {
        double least = least_memory(&q);
        if (least > p->mem_limit) {
            rc = err_memory(p, least, err);
            goto out;
        }
        if (st__ilp_reduce) {
            rc = rp_reduce(&q, 1, &empty);
            if (rc == ST_ENOPLAN) {
                rc = err_no_fit_finite(p, err);
                goto out;
            }
            if (rc) goto nomem;
        }
    }

    sub_out o = {0};
    double bound = trivial_bound(&q);
    int have = 0, optimal = 0, have_free = 0;
    if (st__ilp_reduce) {
        /* without the memory row; with one, its optimum is optimal if it fits */
        rc = solve_free(&q, deadline, a, &o, err);
        if (rc) goto out;
        r->rows = o.rows, r->cols = o.cols, r->binaries = o.binaries;
        if (o.status == RUN_INFEASIBLE) {
            rc = err_no_finite(-1, err);
            goto out;
        }
        if (o.bound > -INFINITY) bound = fmax(bound, o.bound);
        if (o.status == RUN_OPTIMAL || o.status == RUN_FEASIBLE) {
            have_free = 1;
            to_choice(&q, a, x);
            if (o.status == RUN_OPTIMAL) bound = fmax(bound, eval_cost(p, x));
            if (fits(p, x)) have = 1, optimal = o.status == RUN_OPTIMAL;
        }
    }
    if ((memory || !st__ilp_reduce) && !have) {
        rc = solve_sub(&q, p, have_free ? a : NULL, deadline, !st__ilp_reduce, x, &o, err);
        if (rc) goto out;
        if (o.rows) r->rows = o.rows, r->cols = o.cols, r->binaries = o.binaries;
        if (o.status == RUN_INFEASIBLE) {
            rc = memory ? err_no_fit_finite(p, err) : err_no_finite(-1, err);
            goto out;
        }
        if (o.bound > -INFINITY) bound = fmax(bound, o.bound);
        if (o.status == RUN_OPTIMAL || o.status == RUN_FEASIBLE) have = 1, optimal = o.status == RUN_OPTIMAL;
    }
    if (!have) {
        if (deadline > 0 && st_clock_s() >= deadline - 1e-3)
            rc = st_error_set(err, ST_ENOPLAN, NULL, "time_limit_s",
                              "the time limit of %g s expired before a feasible assignment was found", p->time_limit_s);
        else
            rc = memory ? err_no_fit_finite(p, err) : err_no_finite(-1, err);
        goto out;
    }
    memcpy(choice, x, (size_t)p->n * sizeof *choice);
    fill_result(p, x, r);
    r->optimal = optimal;
    if (optimal) {
        r->bound = r->objective;
        r->gap = 0;
    } else {
        r->bound = fmin(fmax(bound, 0), r->objective);
        r->gap = (r->objective - r->bound) / fmax(r->objective, 1e-300);
    }
    r->solve_time_s = st_clock_s() - t0;
    goto out;
nomem:
    rc = st_error_set(err, ST_ENOMEM, NULL, NULL, "out of memory");
out:
    rp_free(&q);
    free(a);
    free(x);
    return rc;
}
