/* stage_dp.c: Alpa's inter-operator stage DP (Zheng et al., OSDI'22, section 5.2, Eq. 2-3).
 *
 * T* = min over t_max of  F(S, 0, N*M; t_max) + (B - 1) * t_max, where F(s, k, d; t) is the least
 * sum of stage times that cuts layers [k, L) into s stages on d devices with every stage <= t
 * (Eq. 3), the current stage having s - 1 stages after it. t_max ranges over the distinct finite
 * stage costs; at the t_max that equals the optimum's slowest stage the DP finds the optimum, and
 * at every other t_max it returns an upper bound on some real cut's T, so the minimum is exact.
 *
 * Workload behind the design. The callback may run an ILP, so every (first, last, mesh,
 * stages_after) is priced once, eagerly (the candidate t_max values need all of them), into a
 * packed table that holds only the tuples a cut can use: stages_after = 0 exactly when last = L,
 * stages_after <= L - last, and the devices and stages around the stage must leave room for the
 * rest. One DP over (s, k, d) costs about L^3/6 * shapes * N*M additions (1e8 for 32 layers on
 * 512 GPUs); a plain scan over the candidates (10^5-10^6 of them) is out of reach, so the t_max
 * axis is searched by branch and bound instead, keeping the answer exact:
 *   - F(t) is a non-increasing step function of t (more choices, never a worse minimum; this
 *     holds in floating point too, because each F entry is a min over the same additions);
 *   - solving at t returns a cut whose slowest stage m <= t is itself a candidate, and F is
 *     constant on [m, t], so one solve settles that whole range and T(m) is its best;
 *   - on an unsolved index range (a, b) between solved neighbours, F >= F(b + 1), so T >=
 *     F(b + 1) + (B - 1) * cand[a]; ranges whose bound reaches the best T are dropped (this
 *     subsumes Alpa's early stop (B - 1) * t_max >= best, since F >= 0), and ranges with
 *     F(a - 1) == F(b + 1) are constant and cannot improve;
 *   - the least feasible t_max (the bottleneck: min over cuts of the slowest stage) comes from
 *     one min-max DP, so the infeasible low candidates cost nothing.
 * With B = 1 a single DP settles it. Ranges are taken best bound first.
 *
 * Sub-mesh shapes are Alpa's (1, 2^p) for 2^p <= M, then (n, M) for n = 2..N; their sizes are
 * distinct and ascending in index order, which the DP's inner loop relies on to stop early.
 *
 * Mixed clusters (issue 19; AMP, Li et al. NeurIPS'22, and HexiScale price each stage on the devices
 * it lands on). Stages take consecutive devices in stage order, so a stage of [k, L)'s d remaining
 * devices starts at device D - d: the F table already knows where every stage sits. A stage's price
 * depends on the device groups it covers, (first group, last group); as the offset grows both only
 * grow, so each such class of a shape is one interval of offsets, hence of d. The cost table keeps
 * one entry per (stage, shape, class) and the inner loop runs each class over its interval of d.
 * With one group every shape has one class covering every d, and the arithmetic is the uniform
 * DP's, addition for addition. */
#include "stage_dp.h"

#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Guard on every table (doubles): 2^27 entries is 1 GiB. */
#define TABLE_MAX ((double)((int64_t)1 << 27))
/* Guard on the reference: sequences of (composition, shapes) it may walk. */
#define BRUTE_MAX 2e7

static int validate(const st_stage_dp_opts *o, st_error *err) {
    if (!o) return st_error_set(err, ST_EINVAL, NULL, NULL, "no options given");
    if (o->nlayers < 1 || o->nlayers > ST_MAX_LAYERS)
        return st_error_set(err, ST_EINVAL, NULL, "nlayers", "nlayers must be in [1, %d], got %d", ST_MAX_LAYERS,
                            o->nlayers);
    if (o->nodes < 1) return st_error_set(err, ST_EINVAL, NULL, "nodes", "nodes must be >= 1, got %d", o->nodes);
    if (o->gpus_per_node < 1 || (o->gpus_per_node & (o->gpus_per_node - 1)) != 0)
        return st_error_set(err, ST_EINVAL, NULL, "gpus_per_node",
                            "gpus_per_node must be a power of two >= 1, got %d", o->gpus_per_node);
    if ((int64_t)o->nodes * o->gpus_per_node > ST_MAX_GPUS)
        return st_error_set(err, ST_EINVAL, NULL, "nodes", "%d nodes x %d GPUs exceeds %d GPUs", o->nodes,
                            o->gpus_per_node, ST_MAX_GPUS);
    if (o->microbatches < 1)
        return st_error_set(err, ST_EINVAL, NULL, "microbatches", "microbatches must be >= 1, got %lld",
                            (long long)o->microbatches);
    if (!o->cost) return st_error_set(err, ST_EINVAL, NULL, "cost", "no stage cost callback");
    if (o->max_stages < 0 || o->max_stages > ST_MAX_STAGES)
        return st_error_set(err, ST_EINVAL, NULL, "max_stages", "max_stages must be in [0, %d], got %d",
                            ST_MAX_STAGES, o->max_stages);
    if (o->ngroups < 0 || o->ngroups > ST_MAX_GROUPS)
        return st_error_set(err, ST_EINVAL, NULL, "ngroups", "ngroups must be in [0, %d], got %d", ST_MAX_GROUPS,
                            o->ngroups);
    for (int g = 0; g < o->ngroups; g++)
        if (o->group_gpus[g] < 1)
            return st_error_set(err, ST_EINVAL, NULL, "group_gpus", "group_gpus[%d] must be >= 1, got %d", g,
                                o->group_gpus[g]);
    return 0;
}

/* The stage cap S: max_stages, or min(L, N*M, ST_MAX_STAGES) when 0; never more stages than
 * layers or devices, since every stage takes at least one of each. */
static int stage_cap(const st_stage_dp_opts *o) {
    int64_t s = o->max_stages ? o->max_stages : ST_MAX_STAGES;
    if (s > o->nlayers) s = o->nlayers;
    if (s > (int64_t)o->nodes * o->gpus_per_node) s = (int64_t)o->nodes * o->gpus_per_node;
    return (int)s;
}

static int shape_count(int nodes, int gpus_per_node) {
    int k = 0;
    for (int g = 1; g <= gpus_per_node; g *= 2) k++;
    return k + nodes - 1;
}

/* Shape j, sizes ascending. */
static st_submesh shape_at(int j, int nodes, int gpus_per_node) {
    int k1 = shape_count(1, gpus_per_node);
    st_submesh m;
    if (j < k1) {
        m.nodes = 1;
        m.gpus = 1 << j;
    } else {
        m.nodes = j - k1 + 2;
        m.gpus = gpus_per_node;
    }
    (void)nodes;
    return m;
}

/* The device group of device `dev` (0 without groups; past the listed groups, the last). */
static int device_group(const st_stage_dp_opts *o, int dev) {
    int at = 0;
    for (int g = 0; g < o->ngroups; g++) {
        at += o->group_gpus[g];
        if (dev < at) return g;
    }
    return o->ngroups > 0 ? o->ngroups - 1 : 0;
}

static int check_cost(double c, int first, int last, st_submesh m, int after, st_error *err) {
    if (isnan(c) || c < 0)
        return st_error_set(err, ST_EINVAL, NULL, "cost",
                            "stage cost callback returned %g for layers [%d, %d) on (%d, %d) with %d stages "
                            "after; expected a time >= 0 or INFINITY",
                            c, first, last, m.nodes, m.gpus, after);
    return 0;
}

/* ------------------------------------------------------------------ the DP */

typedef struct dp {
    const st_stage_dp_opts *o;
    int L, D, K, S; /* layers, devices (N*M), shapes, stage cap */
    st_submesh *shape; /* K */
    int *size;         /* K, ascending */
    /* Classes: shape j's are slots jbase[j] .. jbase[j] + ncls[j] - 1 of W in all (W = K, slot j,
     * with one group); slot c covers the stages starting at devices [olo[c], ohi[c]]. */
    int W;
    int *jbase, *ncls; /* K */
    int *olo, *ohi;    /* W */
    /* Packed cost table. For last == L only stages_after = 0 is stored; for last < L,
     * stages_after = 1..nsa[last]. Entry (k, l, a, slot c) at base[l] + (k * nsa[l] + a - a0) * W + c,
     * a0 = (l == L ? 0 : 1). Unusable tuples hold INFINITY without a call. */
    int *nsa;       /* L + 1 */
    int64_t *base;  /* L + 1 */
    double *cost;
    int64_t ncost;
    double *cand; /* distinct finite costs, ascending */
    int64_t ncand;
    /* F(s, k, d) at ((s * (L + 1)) + k) * (D + 1) + d; only d in [lo, hi] of (s, k) is valid
     * after a fill (entries outside are stale). */
    double *F;
    int *lo, *hi; /* (S + 1) x (L + 1) */
    int64_t calls;
} dp;

static inline const double *cost_row(const dp *w, int k, int l, int after) {
    int a0 = l == w->L ? 0 : 1;
    return w->cost + w->base[l] + ((int64_t)k * w->nsa[l] + after - a0) * w->W;
}

static inline double *F_row(const dp *w, int s, int k) { return w->F + ((int64_t)s * (w->L + 1) + k) * (w->D + 1); }

static void dp_free(dp *w) {
    free(w->shape);
    free(w->size);
    free(w->jbase);
    free(w->ncls);
    free(w->olo);
    free(w->ohi);
    free(w->nsa);
    free(w->base);
    free(w->cost);
    free(w->cand);
    free(w->F);
    free(w->lo);
    free(w->hi);
}

/* Sizes the tables and refuses runs that would not fit (before allocating anything big). */
static int dp_init(dp *w, const st_stage_dp_opts *o, st_error *err) {
    memset(w, 0, sizeof *w);
    w->o = o;
    w->L = o->nlayers;
    w->D = o->nodes * o->gpus_per_node;
    w->K = shape_count(o->nodes, o->gpus_per_node);
    w->S = stage_cap(o);
    int L = w->L;
    w->shape = malloc(sizeof *w->shape * w->K);
    w->size = malloc(sizeof *w->size * w->K);
    w->jbase = malloc(sizeof *w->jbase * w->K);
    w->ncls = malloc(sizeof *w->ncls * w->K);
    if (!w->shape || !w->size || !w->jbase || !w->ncls)
        return st_error_set(err, ST_ENOMEM, NULL, NULL, "out of memory (stage DP tables)");
    /* each shape's classes, in the order of their offsets; at most 2 * groups per shape */
    int cap = w->K * 2 * (o->ngroups > 0 ? o->ngroups : 1);
    w->olo = malloc(sizeof *w->olo * cap);
    w->ohi = malloc(sizeof *w->ohi * cap);
    if (!w->olo || !w->ohi) return st_error_set(err, ST_ENOMEM, NULL, NULL, "out of memory (stage DP tables)");
    for (int j = 0; j < w->K; j++) {
        w->shape[j] = shape_at(j, o->nodes, o->gpus_per_node);
        w->size[j] = w->shape[j].nodes * w->shape[j].gpus;
        assert(j == 0 || w->size[j] > w->size[j - 1]);
        w->jbase[j] = w->W;
        w->ncls[j] = 0;
        int pg0 = -1, pg1 = -1;
        for (int off = 0; off + w->size[j] <= w->D; off++) {
            int g0 = device_group(o, off), g1 = device_group(o, off + w->size[j] - 1);
            if (g0 != pg0 || g1 != pg1) {
                assert(w->W < cap);
                w->olo[w->W++] = off;
                w->ncls[j]++;
                pg0 = g0, pg1 = g1;
            }
            w->ohi[w->W - 1] = off;
        }
    }
    double ncost = (double)L * w->W; /* last == L */
    for (int l = 1; l < L; l++) ncost += (double)l * (L - l < w->S - 1 ? L - l : w->S - 1) * w->W;
    double nF = (double)(w->S + 1) * (L + 1) * (w->D + 1);
    if (ncost > TABLE_MAX || nF > TABLE_MAX)
        return st_error_set(err, ST_EINVAL, NULL, ncost > TABLE_MAX ? "nlayers" : "nodes",
                            "%d layers on %d GPUs in up to %d stages needs %.3g cost and %.3g DP entries (at most "
                            "%.3g each); coarsen the layers or lower max_stages",
                            L, w->D, w->S, ncost, nF, TABLE_MAX);
    w->nsa = malloc(sizeof *w->nsa * (L + 1));
    w->base = malloc(sizeof *w->base * (L + 1));
    w->cost = malloc(sizeof *w->cost * (size_t)ncost);
    w->F = malloc(sizeof *w->F * (size_t)nF);
    w->lo = malloc(sizeof *w->lo * (size_t)(w->S + 1) * (L + 1));
    w->hi = malloc(sizeof *w->hi * (size_t)(w->S + 1) * (L + 1));
    if (!w->nsa || !w->base || !w->cost || !w->F || !w->lo || !w->hi)
        return st_error_set(err, ST_ENOMEM, NULL, NULL, "out of memory (stage DP tables)");
    int64_t off = 0;
    for (int l = 0; l <= L; l++) {
        w->nsa[l] = l == L ? 1 : (L - l < w->S - 1 ? L - l : w->S - 1);
        w->base[l] = off;
        off += (int64_t)l * w->nsa[l] * w->W;
    }
    w->ncost = off;
    assert((double)off == ncost);
    return 0;
}

/* The first device at which a cut can hold stage [k, l) on shape j, class slot c, with `after`
 * stages after it, or -1: the stages after need a device each and the stages before (k > 0) at
 * least one stage and one device; the first stage starts at device 0, the last ends at D. */
static int usable(const dp *w, int k, int j, int c, int after) {
    int sz = w->size[j], lo = w->olo[c], hi = w->ohi[c];
    if (after + 1 + (k > 0) > w->S) return -1;
    if (k == 0) hi = hi < 0 ? hi : 0;
    else lo = lo > 1 ? lo : 1;
    if (after == 0) lo = lo > w->D - sz ? lo : w->D - sz;
    else hi = hi < w->D - sz - after ? hi : w->D - sz - after;
    return lo <= hi ? lo : -1;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Prices every usable tuple once (in (first, last, mesh, stages_after) order, so a caller that
 * caches per (first, last, mesh) sees its hits together) and collects the candidates. */
static int dp_price(dp *w, st_error *err) {
    const st_stage_dp_opts *o = w->o;
    int L = w->L, K = w->K;
    w->cand = malloc(sizeof *w->cand * (size_t)(w->ncost ? w->ncost : 1));
    if (!w->cand) return st_error_set(err, ST_ENOMEM, NULL, NULL, "out of memory (stage DP candidates)");
    for (int64_t i = 0; i < w->ncost; i++) w->cost[i] = INFINITY;
    int64_t n = 0;
    for (int k = 0; k < L; k++)
        for (int l = w->S == 1 ? L : k + 1; l <= L; l++) { /* one stage: it ends at L */
            int a0 = l == L ? 0 : 1, a1 = l == L ? 0 : w->nsa[l];
            for (int j = 0; j < K; j++)
                for (int cl = w->jbase[j]; cl < w->jbase[j] + w->ncls[j]; cl++)
                    for (int a = a0; a <= a1; a++) {
                        int at = usable(w, k, j, cl, a);
                        if (at < 0) continue;
                        double c = o->cost(o->arg, k, l, w->shape[j], a, at);
                        w->calls++;
                        int rc = check_cost(c, k, l, w->shape[j], a, err);
                        if (rc) return rc;
                        c += 0.0; /* -0.0 -> +0.0 */
                        ((double *)cost_row(w, k, l, a))[cl] = c;
                        if (isfinite(c)) w->cand[n++] = c;
                    }
        }
    qsort(w->cand, (size_t)n, sizeof *w->cand, cmp_double);
    int64_t m = 0;
    for (int64_t i = 0; i < n; i++)
        if (m == 0 || w->cand[i] != w->cand[m - 1]) w->cand[m++] = w->cand[i];
    w->ncand = m;
    return 0;
}

/* r[d] = min(r[d], cj + q[d]) (or the larger of cj and q[d] for the bottleneck) for d in [a, b].
 * Four d at a time: the one-at-a-time loop is a few instructions, and its speed hung on where the
 * linker put it (gpt-1t's plan took 10-20% longer when a change elsewhere moved it across a 64-byte
 * line); four independent updates per turn compile to packed SSE2 min/max/add (exact, element by
 * element, so the table is the same to the bit) and leave the loop's placement little to decide. */
static inline void relax(double *restrict r, const double *restrict q, double cj, int a, int b, int bottleneck) {
    int d = a;
    if (bottleneck) {
        for (; d + 3 <= b; d += 4)
            for (int i = 0; i < 4; i++) {
                double v = q[d + i] > cj ? q[d + i] : cj;
                r[d + i] = v < r[d + i] ? v : r[d + i];
            }
        for (; d <= b; d++) {
            double v = q[d] > cj ? q[d] : cj;
            r[d] = v < r[d] ? v : r[d];
        }
    } else {
        for (; d + 3 <= b; d += 4)
            for (int i = 0; i < 4; i++) {
                double v = cj + q[d + i];
                r[d + i] = v < r[d + i] ? v : r[d + i];
            }
        for (; d <= b; d++) {
            double v = cj + q[d];
            r[d] = v < r[d] ? v : r[d];
        }
    }
}

/* Fills F(s, k, d) for s = 1..S over the choices with cost <= t: the least sum of stage times
 * (bottleneck = 0) or the least slowest stage (bottleneck = 1). Returns min over s of F(s, 0, D)
 * and the s that attains it first in *best_s (0 when none is finite). */
static double dp_fill(dp *w, double t, int bottleneck, int *best_s) {
    int L = w->L, D = w->D, K = w->K, S = w->S, one = w->W == w->K;
    const int *size = w->size, *jbase = w->jbase, *ncls = w->ncls, *olo = w->olo, *ohi = w->ohi;
    int W = L + 1;
    for (int s = 0; s <= S; s++)
        for (int k = 0; k <= L; k++) {
            w->lo[s * W + k] = 1;
            w->hi[s * W + k] = 0;
        }
    F_row(w, 0, L)[0] = 0.0;
    w->lo[L] = w->hi[L] = 0;
    double best = INFINITY;
    *best_s = 0;
    for (int s = 1; s <= S; s++) {
        int after = s - 1;
        for (int k = L - s; k >= 0; k--) {
            if (k > 0 && s == S) continue; /* a stage before would exceed S */
            /* d devices for [k, L): all of them for k == 0, else at least one left for before */
            int tlo = k == 0 ? D : s, thi = k == 0 ? D : D - 1;
            if (tlo > thi) continue;
            double *restrict r = F_row(w, s, k);
            for (int d = tlo; d <= thi; d++) r[d] = INFINITY;
            int lfirst = after == 0 ? L : k + 1, llast = L - after;
            for (int l = lfirst; l <= llast; l++) {
                int plo = w->lo[(s - 1) * W + l], phi = w->hi[(s - 1) * W + l];
                if (plo > phi) continue;
                const double *restrict p = F_row(w, s - 1, l);
                const double *c = cost_row(w, k, l, after);
                if (one) { /* one class per shape, every d: the uniform DP */
                    for (int j = 0; j < K; j++) {
                        int sz = size[j];
                        if (plo + sz > thi) break;
                        if (!(c[j] <= t)) continue;
                        int a = plo + sz > tlo ? plo + sz : tlo, b = phi + sz < thi ? phi + sz : thi;
                        relax(r, p - sz, c[j], a, b, bottleneck);
                    }
                    continue;
                }
                for (int j = 0; j < K; j++) {
                    int sz = size[j];
                    if (plo + sz > thi) break;
                    int a = plo + sz > tlo ? plo + sz : tlo, b = phi + sz < thi ? phi + sz : thi;
                    for (int cl = jbase[j]; cl < jbase[j] + ncls[j]; cl++) {
                        /* the class's stages start at devices [olo, ohi], so d = D - offset */
                        int ca = D - ohi[cl] > a ? D - ohi[cl] : a, cb = D - olo[cl] < b ? D - olo[cl] : b;
                        if (c[cl] <= t) relax(r, p - sz, c[cl], ca, cb, bottleneck);
                    }
                }
            }
            int lo = tlo, hi = thi;
            while (lo <= hi && r[lo] == INFINITY) lo++;
            while (hi >= lo && r[hi] == INFINITY) hi--;
            w->lo[s * W + k] = lo;
            w->hi[s * W + k] = hi;
            if (k == 0 && lo <= hi && r[D] < best) {
                best = r[D];
                *best_s = s;
            }
        }
    }
    return best;
}

/* The cut behind F(s, 0, D) of the last sum fill at t: at each stage the first (l, j), in fill
 * order, whose addition reproduces F exactly. */
static void dp_cut(const dp *w, double t, int s, st_stage_dp_result *r) {
    int L = w->L, W = L + 1, k = 0, d = w->D, n = 0;
    while (s > 0) {
        int after = s - 1, found = 0;
        double target = F_row(w, s, k)[d];
        int lfirst = after == 0 ? L : k + 1, llast = L - after;
        for (int l = lfirst; l <= llast && !found; l++) {
            int plo = w->lo[(s - 1) * W + l], phi = w->hi[(s - 1) * W + l];
            const double *p = F_row(w, s - 1, l), *c = cost_row(w, k, l, after);
            for (int j = 0; j < w->K && !found; j++) {
                int e = d - w->size[j], cl = w->jbase[j];
                while (cl < w->jbase[j] + w->ncls[j] - 1 && w->ohi[cl] < w->D - d) cl++;
                if (e < plo || e > phi || w->olo[cl] > w->D - d || w->ohi[cl] < w->D - d || !(c[cl] <= t)) continue;
                if (c[cl] + p[e] == target) {
                    r->first[n] = k;
                    r->mesh[n] = w->shape[j];
                    r->stage_s[n] = c[cl];
                    n++;
                    k = l;
                    d = e;
                    found = 1;
                }
            }
        }
        assert(found);
        s--;
    }
    assert(k == L && d == 0);
    r->nstages = n;
    r->first[n] = L;
}

/* max_stage_s and total_s of a filled cut, summed front to back. */
static void finish(st_stage_dp_result *r, int64_t microbatches) {
    double sum = 0, mx = 0;
    for (int i = 0; i < r->nstages; i++) {
        sum += r->stage_s[i];
        if (r->stage_s[i] > mx) mx = r->stage_s[i];
    }
    r->max_stage_s = mx;
    r->total_s = sum + (double)(microbatches - 1) * mx;
}

/* Index of x in cand (x is one of them). */
static int64_t cand_index(const dp *w, double x) {
    int64_t a = 0, b = w->ncand - 1;
    while (a < b) {
        int64_t m = a + (b - a) / 2;
        if (w->cand[m] < x) a = m + 1;
        else b = m;
    }
    assert(w->cand[a] == x);
    return a;
}

static int no_cut(const dp *w, st_error *err) {
    return st_error_set(err, ST_ENOPLAN, NULL, NULL,
                        "no pipeline cut fits: %d layers on %d x %d GPUs in 1..%d stages over %d sub-mesh shapes; "
                        "%lld stage choices priced, %lld distinct finite times, %s",
                        w->L, w->o->nodes, w->o->gpus_per_node, w->S, w->K, (long long)w->calls,
                        (long long)w->ncand,
                        w->ncand ? "but no cut of the layers has a finite time for every stage with sub-meshes "
                                   "that use every GPU"
                                 : "every one infinite");
}

/* An unsolved range of candidate indices [a, b]; fa = F(cand[a - 1]) (INFINITY below the least
 * feasible), fb = F(cand[b + 1]). */
typedef struct range {
    int64_t a, b;
    double fa, fb;
} range;

int st_stage_dp(const st_stage_dp_opts *o, st_stage_dp_result *out, st_error *err) {
    double t0 = st_clock_s();
    dp w;
    memset(&w, 0, sizeof w);
    range *rs = NULL;
    st_stage_dp_result *cur = NULL;
    int nr = 0, cap = 0;
    if (out) memset(out, 0, sizeof *out);
    int rc = validate(o, err);
    if (rc) goto out;
    if (!out) {
        rc = st_error_set(err, ST_EINVAL, NULL, NULL, "no result given");
        goto out;
    }
    if ((rc = dp_init(&w, o, err)) != 0) goto out;
    if ((rc = dp_price(&w, err)) != 0) goto out;
    cur = calloc(1, sizeof *cur);
    if (!cur) {
        rc = st_error_set(err, ST_ENOMEM, NULL, NULL, "out of memory (stage DP)");
        goto out;
    }
    int s = 0;
    double tb = w.ncand ? dp_fill(&w, INFINITY, 1, &s) : INFINITY; /* least feasible t_max */
    if (!isfinite(tb)) {
        rc = no_cut(&w, err);
        goto out;
    }
    double bmul = (double)(o->microbatches - 1);
    int64_t lo = cand_index(&w, tb);
    /* Every choice allowed: the least sum; its slowest stage settles [m, top]. */
    double ftop = dp_fill(&w, w.cand[w.ncand - 1], 0, &s);
    assert(isfinite(ftop));
    dp_cut(&w, w.cand[w.ncand - 1], s, out);
    finish(out, o->microbatches);
    double best = out->total_s;
    int64_t m = cand_index(&w, out->max_stage_s);
    cap = 16;
    rs = malloc(sizeof *rs * cap);
    if (!rs) {
        rc = st_error_set(err, ST_ENOMEM, NULL, NULL, "out of memory (stage DP)");
        goto out;
    }
    if (lo < m) rs[nr++] = (range){lo, m - 1, INFINITY, ftop};
    while (nr > 0) {
        int pick = 0;
        double pb = INFINITY;
        for (int i = 0; i < nr; i++) {
            double lb = rs[i].fb + bmul * w.cand[rs[i].a];
            if (i == 0 || lb < pb) {
                pick = i;
                pb = lb;
            }
        }
        range g = rs[pick];
        rs[pick] = rs[--nr];
        if (pb >= best || g.fa == g.fb) continue;
        int64_t mid = g.a + (g.b - g.a) / 2;
        double fm = dp_fill(&w, w.cand[mid], 0, &s);
        int64_t rm = mid;
        if (isfinite(fm)) {
            dp_cut(&w, w.cand[mid], s, cur);
            finish(cur, o->microbatches);
            if (cur->total_s < best) {
                best = cur->total_s;
                memcpy(out, cur, sizeof *out);
            }
            rm = cand_index(&w, cur->max_stage_s);
        }
        if (nr + 2 > cap) {
            range *n2 = realloc(rs, sizeof *rs * cap * 2);
            if (!n2) {
                rc = st_error_set(err, ST_ENOMEM, NULL, NULL, "out of memory (stage DP)");
                goto out;
            }
            rs = n2;
            cap *= 2;
        }
        if (rm > g.a && isfinite(fm)) rs[nr++] = (range){g.a, rm - 1, g.fa, fm};
        if (mid < g.b) rs[nr++] = (range){mid + 1, g.b, fm, g.fb};
    }
out:
    if (out) {
        if (rc) memset(out, 0, sizeof *out);
        out->cost_calls = w.calls;
        out->solve_time_s = st_clock_s() - t0;
    }
    free(cur);
    free(rs);
    dp_free(&w);
    return rc;
}

/* ------------------------------------------------------------ the reference */

typedef struct brute {
    const st_stage_dp_opts *o;
    int L, D, K, S;
    st_submesh *shape;
    st_stage_dp_result *cur, *best;
    int found, rc;
    int64_t calls;
    st_error *err;
} brute;

/* Stage i of n starts at layer k with `used` devices taken by the stages before it. */
static void brute_rec(brute *b, int n, int i, int k, int used) {
    int after = n - 1 - i;
    int lfirst = after == 0 ? b->L : k + 1, llast = after == 0 ? b->L : b->L - after;
    for (int l = lfirst; l <= llast; l++)
        for (int j = 0; j < b->K; j++) {
            st_submesh m = b->shape[j];
            int sz = m.nodes * m.gpus;
            if (used + sz > b->D) break; /* sizes ascend */
            if (after == 0 && used + sz != b->D) continue;
            double c = b->o->cost(b->o->arg, k, l, m, after, used);
            b->calls++;
            if ((b->rc = check_cost(c, k, l, m, after, b->err)) != 0) return;
            if (!isfinite(c)) continue;
            b->cur->first[i] = k;
            b->cur->mesh[i] = m;
            b->cur->stage_s[i] = c + 0.0;
            if (after > 0) {
                brute_rec(b, n, i + 1, l, used + sz);
                if (b->rc) return;
                continue;
            }
            b->cur->nstages = n;
            b->cur->first[n] = b->L;
            finish(b->cur, b->o->microbatches);
            if (!b->found || b->cur->total_s < b->best->total_s) memcpy(b->best, b->cur, sizeof *b->best);
            b->found = 1;
        }
}

/* Cuts the reference would walk: sum over n of C(L - 1, n - 1) compositions times the sequences
 * of n shapes whose sizes sum to D. */
static double brute_count(const brute *b) {
    double total = 0, comp = 1; /* C(L - 1, n - 1) */
    double *ways = calloc((size_t)b->D + 1, sizeof *ways), *next = calloc((size_t)b->D + 1, sizeof *next);
    if (!ways || !next) {
        free(ways);
        free(next);
        return INFINITY;
    }
    ways[0] = 1;
    for (int n = 1; n <= b->S; n++) {
        memset(next, 0, sizeof *next * ((size_t)b->D + 1));
        for (int d = 0; d <= b->D; d++)
            for (int j = 0; j < b->K; j++) {
                int sz = b->shape[j].nodes * b->shape[j].gpus;
                if (d + sz <= b->D) next[d + sz] += ways[d];
            }
        double *t = ways;
        ways = next;
        next = t;
        total += comp * ways[b->D];
        comp = comp * (b->L - n) / n;
    }
    free(ways);
    free(next);
    return total;
}

int st_stage_dp_brute(const st_stage_dp_opts *o, st_stage_dp_result *out, st_error *err) {
    double t0 = st_clock_s();
    brute b;
    memset(&b, 0, sizeof b);
    if (out) memset(out, 0, sizeof *out);
    int rc = validate(o, err);
    if (rc) goto out;
    if (!out) {
        rc = st_error_set(err, ST_EINVAL, NULL, NULL, "no result given");
        goto out;
    }
    b.o = o;
    b.L = o->nlayers;
    b.D = o->nodes * o->gpus_per_node;
    b.K = shape_count(o->nodes, o->gpus_per_node);
    b.S = stage_cap(o);
    b.err = err;
    if (b.L > 64 || b.D > 4096) {
        rc = st_error_set(err, ST_EINVAL, NULL, "nlayers",
                          "brute force over %d layers on %d GPUs is too large (at most 64 layers, 4096 GPUs)", b.L,
                          b.D);
        goto out;
    }
    b.shape = malloc(sizeof *b.shape * b.K);
    b.cur = calloc(1, sizeof *b.cur);
    b.best = out;
    if (!b.shape || !b.cur) {
        rc = st_error_set(err, ST_ENOMEM, NULL, NULL, "out of memory (stage DP reference)");
        goto out;
    }
    for (int j = 0; j < b.K; j++) b.shape[j] = shape_at(j, o->nodes, o->gpus_per_node);
    double cuts = brute_count(&b);
    if (!(cuts <= BRUTE_MAX)) {
        rc = st_error_set(err, ST_EINVAL, NULL, "nlayers",
                          "brute force over %.3g cuts of %d layers on %d GPUs is too large (at most %.3g)", cuts, b.L,
                          b.D, BRUTE_MAX);
        goto out;
    }
    for (int n = 1; n <= b.S && !b.rc; n++) brute_rec(&b, n, 0, 0, 0);
    if ((rc = b.rc) != 0) goto out;
    if (!b.found)
        rc = st_error_set(err, ST_ENOPLAN, NULL, NULL,
                          "no pipeline cut fits: %d layers on %d x %d GPUs in 1..%d stages; all %lld priced stage "
                          "choices of every cut are infinite",
                          b.L, o->nodes, o->gpus_per_node, b.S, (long long)b.calls);
out:
    if (out) {
        if (rc) memset(out, 0, sizeof *out);
        out->cost_calls = b.calls;
        out->solve_time_s = st_clock_s() - t0;
    }
    free(b.shape);
    free(b.cur);
    return rc;
}
