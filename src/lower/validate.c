/* validate.c: the rules of the per-rank program format (program.h) that every interpreter relies on,
 * checked once before one runs a lowering: the simulator (src/sim/) and the executor (exec/) index
 * their arrays by these numbers and do not check them again.
 *
 * What is checked (each refusal is ST_EINVAL with a message naming the program, the group, the
 * link or route, or the rank and instruction):
 * - the tables: at least one program, a group table, ranks that are >= 0 and distinct, instruction
 *   lists, base_bytes finite and >= 0;
 * - shared instructions: `like` names a program of the same lowering that shares nobody's and
 *   has the same instructions; renames sorted by (what, from) (st_program_rename searches them);
 * - groups: members, each a rank that has a program, none listed twice;
 * - the network (when there are links and routes): capacities finite and > 0, routes whose hops lie
 *   in the hop table, hops on links that exist, crossed at least once;
 * - instructions: kind and stream known; duration, alloc/free bytes finite and >= 0; a transfer's
 *   latency within its duration and its route in range (with a network); deps in the program and
 *   not the instruction itself; a COLL's group in range with the rank a member; a SEND/RECV's peer a
 *   rank with a program, not its own.
 * Not checked here, because they are not properties of one instruction but of a run: that a send
 * meets a receive and that every member of a group reaches its collectives (an interpreter finds
 * them as a wait that never ends; the simulator names the root cause), and deps on later
 * instructions, which are legal (only a circle of waits is a deadlock).
 *
 * Workload facts behind the layout: a lowering of every rank of a 3,072-GPU plan holds ~1.5e7
 * instructions, but the ranks of a stage share one array (program.h, "Shared instructions"):
 * ~2e6 instructions are distinct. So an array is checked once, with its owner, and a program that
 * shares it only under its own names: each distinct group, peer and route its owner's instructions
 * use, renamed. Only when one of those is wrong is it read instruction by instruction, to say which
 * instruction is wrong.
 */
#include "src/lower/program.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ rank numbers -> programs */

static int pair_cmp(const void *x, const void *y) {
    const int32_t *a = x, *b = y;
    return (a[0] > b[0]) - (a[0] < b[0]);
}

int st_rank_index_init(st_rank_index *x, const st_lowered *l, st_error *err) {
    int nr = l->nranks;
    memset(x, 0, sizeof *x);
    x->n = nr;
    x->identity = 1;
    for (int p = 0; p < nr; p++) {
        if (l->progs[p].rank < 0)
            return st_error_set(err, ST_EINVAL, NULL, NULL, "program %d has a negative rank %d", p, l->progs[p].rank);
        if (l->progs[p].rank != p)
            x->identity = 0;
    }
    if (x->identity)
        return 0;
    if (!(x->pairs = malloc((size_t)nr * 2 * sizeof *x->pairs)))
        return st_error_set(err, ST_ENOMEM, NULL, NULL, "out of memory");
    for (int p = 0; p < nr; p++) {
        x->pairs[2 * p] = l->progs[p].rank;
        x->pairs[2 * p + 1] = p;
    }
    qsort(x->pairs, (size_t)nr, 2 * sizeof *x->pairs, pair_cmp);
    for (int k = 1; k < nr; k++)
        if (x->pairs[2 * k] == x->pairs[2 * k - 2]) {
            int rank = x->pairs[2 * k];
            st_rank_index_destroy(x);
            return st_error_set(err, ST_EINVAL, NULL, NULL, "two programs claim rank %d", rank);
        }
    return 0;
}

void st_rank_index_destroy(st_rank_index *x) {
    free(x->pairs);
    x->pairs = NULL;
}

int st_rank_index_find(const st_rank_index *x, int rank) {
    if (x->identity)
        return rank >= 0 && rank < x->n ? rank : -1;
    int lo = 0, hi = x->n;
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        if (x->pairs[2 * mid] < rank)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < x->n && x->pairs[2 * lo] == rank ? x->pairs[2 * lo + 1] : -1;
}

/* ------------------------------------------------------------ the checker's state */

typedef struct vstate {
    const st_lowered *l;
    st_rank_index ix;
    int net;           /* there is a network: routes are checked */
    int64_t *moff;     /* nranks + 1: program p is a member of the groups mgrp[moff[p] .. moff[p + 1]) */
    int32_t *mgrp;
    uint8_t *member;   /* ngroups: 1 while the program being checked is a member */
    uint8_t *shared;   /* nranks: 1 another program shares its instructions, 2 their names are collected */
    /* names of an owner's instructions (for its sharers): (st_rename_what, value) pairs, program q's
     * at names[2 * nm0[q] .. 2 * nm1[q]) once shared[q] is 2 */
    int32_t *names;
    int64_t nnames, capnames;
    int64_t *nm0, *nm1;
    int32_t *seen[3];  /* per group, program, route: the owner (+ 1) that last collected it */
} vstate;

#define BAD(...)                                                                                                       \
    do {                                                                                                               \
        rc = st_error_set(err, ST_EINVAL, NULL, NULL, __VA_ARGS__);                                                    \
        goto out;                                                                                                      \
    } while (0)

/* The tables: ranks, programs (their instruction lists, what they share), base_bytes. */
static int check_programs(vstate *V, st_error *err) {
    const st_lowered *l = V->l;
    int rc = 0, nr = l->nranks;
    if ((rc = st_rank_index_init(&V->ix, l, err)))
        return rc;
    for (int p = 0; p < nr; p++) {
        const st_program *pg = &l->progs[p];
        if (pg->n < 0 || (pg->n > 0 && !pg->ins))
            BAD("rank %d: invalid instruction list", pg->rank);
        if (pg->like) {
            ptrdiff_t q = pg->like - l->progs;
            if (q < 0 || q >= nr || pg->like->like || pg->like->ins != pg->ins || pg->like->n != pg->n)
                BAD("rank %d: shares the instructions of a program it cannot", pg->rank);
            V->shared[q] = 1;
            if (pg->nrenames < 0 || (pg->nrenames > 0 && !pg->renames))
                BAD("rank %d: invalid renames", pg->rank);
            for (int k = 1; k < pg->nrenames; k++)
                if (pg->renames[k].what < pg->renames[k - 1].what ||
                    (pg->renames[k].what == pg->renames[k - 1].what && pg->renames[k].from <= pg->renames[k - 1].from))
                    BAD("rank %d: renames not sorted by (what, from)", pg->rank);
        }
        if (!isfinite(pg->base_bytes) || pg->base_bytes < 0)
            BAD("rank %d: base_bytes must be finite and >= 0", pg->rank);
    }
out:
    return rc;
}

/* Groups: members that have programs; each program's groups as a CSR (moff, mgrp). */
static int check_groups(vstate *V, st_error *err) {
    const st_lowered *l = V->l;
    int rc = 0, nr = l->nranks;
    int64_t *fill = NULL;
    for (int g = 0; g < l->ngroups; g++) {
        const st_group_def *gd = &l->groups[g];
        if (gd->n < 1 || !gd->ranks)
            BAD("group %d has no members", g);
        for (int j = 0; j < gd->n; j++) {
            int p = st_rank_index_find(&V->ix, gd->ranks[j]);
            if (p < 0)
                BAD("group %d lists rank %d, which has no program", g, gd->ranks[j]);
            V->moff[p + 1]++;
        }
    }
    for (int p = 0; p < nr; p++)
        V->moff[p + 1] += V->moff[p];
    if (!(V->mgrp = malloc((size_t)(V->moff[nr] > 0 ? V->moff[nr] : 1) * sizeof *V->mgrp)) ||
        !(fill = malloc((size_t)nr * sizeof *fill))) {
        rc = st_error_set(err, ST_ENOMEM, NULL, NULL, "out of memory");
        goto out;
    }
    memcpy(fill, V->moff, (size_t)nr * sizeof *fill);
    for (int g = 0; g < l->ngroups; g++)
        for (int j = 0; j < l->groups[g].n; j++)
            V->mgrp[fill[st_rank_index_find(&V->ix, l->groups[g].ranks[j])]++] = g;
out:
    free(fill);
    return rc;
}

/* The network (program.h, "Network"): none without links or routes. */
static int check_network(vstate *V, st_error *err) {
    const st_lowered *l = V->l;
    int rc = 0;
    int32_t nl = l->nlinks, nrt = l->nroutes;
    if (nl <= 0 || nrt <= 0)
        return 0;
    if (!l->links || !l->routes || l->nhops < 0 || (l->nhops > 0 && !l->hops))
        BAD("invalid network description");
    for (int32_t i = 0; i < nl; i++)
        if (!isfinite(l->links[i].bytes_per_s) || l->links[i].bytes_per_s <= 0)
            BAD("link %d: bytes_per_s must be finite and > 0", (int)i);
    for (int32_t r = 0; r < nrt; r++) {
        const st_route *rt = &l->routes[r];
        if (rt->first < 0 || rt->n < 0 || (int64_t)rt->first + rt->n > l->nhops)
            BAD("route %d: hops out of range", (int)r);
        if (!isfinite(rt->bytes_per_s) || rt->bytes_per_s <= 0)
            BAD("route %d: bytes_per_s must be finite and > 0", (int)r);
        for (int32_t k = rt->first; k < rt->first + rt->n; k++) {
            if (l->hops[k].link < 0 || l->hops[k].link >= nl)
                BAD("route %d: link %d out of range", (int)r, (int)l->hops[k].link);
            if (l->hops[k].count < 1)
                BAD("route %d: a hop's count must be >= 1", (int)r);
        }
    }
    V->net = 1;
out:
    return rc;
}

/* ------------------------------------------------------------ instructions */

/* Records that owner q's instructions use name (what, v), once per distinct name. */
static int collect(vstate *V, int32_t q, st_rename_what what, int32_t v, int32_t key) {
    int32_t *seen = &V->seen[what][key];
    if (*seen == q + 1)
        return 0;
    *seen = q + 1;
    if (V->nnames == V->capnames) {
        int64_t cap = V->capnames ? 2 * V->capnames : 64;
        int32_t *grown = realloc(V->names, (size_t)cap * 2 * sizeof *grown);
        if (!grown)
            return -1;
        V->names = grown;
        V->capnames = cap;
    }
    V->names[2 * V->nnames] = (int32_t)what;
    V->names[2 * V->nnames + 1] = v;
    V->nnames++;
    return 0;
}

/* Program p, instruction by instruction (under its own names when it shares another's), with
 * V->member marking p's groups. An owner whose instructions others share also collects the
 * names they use (collect()). */
/* The operator table COMPUTE instructions name (program.h, "Operators"): what an executor runs must
 * be a known operator class in a forward, backward or recompute phase, with finite, non-negative
 * shapes, work and time. */
static int check_ops(const st_lowered *l, st_error *err) {
    if (l->nops < 0 || (l->nops > 0 && !l->ops))
        return st_error_set(err, ST_EINVAL, NULL, NULL, "invalid operator table (%d operators)", l->nops);
    for (int i = 0; i < l->nops; i++) {
        const st_lowered_op *o = &l->ops[i];
        int phase_ok = o->phase == ST_PHASE_FWD || o->phase == ST_PHASE_BWD || o->phase == ST_PHASE_BWD_INPUT ||
                       o->phase == ST_PHASE_BWD_WEIGHT || o->phase == ST_PHASE_RECOMPUTE;
        double v[] = {o->m, o->n, o->k, o->batch, o->flops, o->bytes, o->dur_s};
        int finite = 1;
        for (size_t k = 0; k < sizeof v / sizeof v[0]; k++) finite &= isfinite(v[k]) && v[k] >= 0;
        if (!o->name || o->cls >= ST_OPC_COUNT || !phase_ok || !finite)
            return st_error_set(err, ST_EINVAL, NULL, NULL,
                                "operator %d (%s): needs a name, a known class, a forward/backward/recompute phase "
                                "and finite sizes, work and time >= 0", i, o->name ? o->name : "unnamed");
    }
    return 0;
}

static int check_each(vstate *V, int p, st_error *err) {
    const st_lowered *l = V->l;
    const st_program *pg = &l->progs[p];
    int rc = 0, names = V->shared[p] && !pg->like;
    if (names)
        V->nm0[p] = V->nnames;
    for (int i = 0; i < pg->n; i++) {
        const st_ins *in = &pg->ins[i];
        st_ins renamed;
        if (pg->like && in->kind != ST_INS_COMPUTE) {
            st_program_ins(pg, i, &renamed);
            in = &renamed;
        }
        if ((unsigned)in->kind > ST_INS_RECV)
            BAD("rank %d instruction %d: unknown kind %d", pg->rank, i, (int)in->kind);
        if (in->stream >= ST_STREAMS)
            BAD("rank %d instruction %d: stream %d out of range", pg->rank, i, in->stream);
        if (!isfinite(in->dur_s) || in->dur_s < 0)
            BAD("rank %d instruction %d: duration must be finite and >= 0", pg->rank, i);
        if (!isfinite(in->alloc_bytes) || !isfinite(in->free_bytes) || in->alloc_bytes < 0 || in->free_bytes < 0)
            BAD("rank %d instruction %d: alloc/free bytes must be finite and >= 0", pg->rank, i);
        if (in->kind != ST_INS_COMPUTE) {
            if (!isfinite(in->latency_s) || in->latency_s < 0 || in->latency_s > in->dur_s)
                BAD("rank %d instruction %d: latency must be finite, >= 0 and <= the duration", pg->rank, i);
            if (V->net && (in->route < -1 || in->route >= l->nroutes))
                BAD("rank %d instruction %d: route %d out of range", pg->rank, i, (int)in->route);
            if (names && V->net && in->route >= 0 && collect(V, p, ST_RENAME_ROUTE, in->route, in->route))
                goto nomem;
        }
        for (int k = 0; k < 2; k++) {
            int d = in->dep[k];
            if (d == -1 || (k == 1 && d == in->dep[0]))
                continue;
            if (d < 0 || d >= pg->n || d == i)
                BAD("rank %d instruction %d: dep %d out of range (the program has %d instructions)", pg->rank, i, d,
                    pg->n);
        }
        if (in->kind == ST_INS_COMPUTE &&
            (in->nops < 0 || (in->nops > 0 && (in->op < 0 || (int64_t)in->op + in->nops > l->nops))))
            BAD("rank %d instruction %d: operators [%d, %lld) out of range (the lowering names %d)", pg->rank, i,
                (int)in->op, (long long)in->op + in->nops, l->nops);
        /* coll_op means something only where the lowering names operators (hand-made programs
         * leave it 0 with no table) */
        if (in->kind == ST_INS_COLL && l->nops > 0 && (in->coll_op < -1 || in->coll_op >= l->nops))
            BAD("rank %d instruction %d: collective of operator %d out of range (the lowering names %d)", pg->rank, i,
                (int)in->coll_op, l->nops);
        if (in->kind == ST_INS_COLL) {
            if (in->group < 0 || in->group >= l->ngroups)
                BAD("rank %d instruction %d: group %d out of range", pg->rank, i, in->group);
            if (!V->member[in->group])
                BAD("rank %d instruction %d: rank %d is not a member of group %d", pg->rank, i, pg->rank, in->group);
            if (names && collect(V, p, ST_RENAME_GROUP, in->group, in->group))
                goto nomem;
        } else if (in->kind == ST_INS_SEND || in->kind == ST_INS_RECV) {
            int peer = st_rank_index_find(&V->ix, in->peer);
            if (peer < 0)
                BAD("rank %d instruction %d: peer rank %d has no program", pg->rank, i, in->peer);
            if (peer == p)
                BAD("rank %d instruction %d: a %s to itself", pg->rank, i,
                    in->kind == ST_INS_SEND ? "send" : "receive");
            if (names && collect(V, p, ST_RENAME_PEER, in->peer, peer))
                goto nomem;
        }
    }
    if (names) {
        V->nm1[p] = V->nnames;
        V->shared[p] = 2;
    }
out:
    return rc;
nomem:
    return st_error_set(err, ST_ENOMEM, NULL, NULL, "out of memory");
}

/* Program p, which shares owner q's instructions (already checked): each name q's instructions use,
 * read under p's renames, where p's groups are marked in V->member. 1 when one is wrong. */
static int names_wrong(const vstate *V, int p, int q) {
    const st_lowered *l = V->l;
    const st_program *pg = &l->progs[p];
    for (int64_t k = V->nm0[q]; k < V->nm1[q]; k++) {
        st_rename_what what = (st_rename_what)V->names[2 * k];
        int32_t v = st_program_rename(pg, what, V->names[2 * k + 1]);
        if (what == ST_RENAME_GROUP && (v < 0 || v >= l->ngroups || !V->member[v]))
            return 1;
        if (what == ST_RENAME_ROUTE && (v < -1 || v >= l->nroutes))
            return 1;
        if (what == ST_RENAME_PEER) {
            int peer = st_rank_index_find(&V->ix, v);
            if (peer < 0 || peer == p)
                return 1;
        }
    }
    return 0;
}

int st_program_validate(const st_lowered *l, st_error *err) {
    int rc = 0, nr = l ? l->nranks : 0;
    vstate V;
    memset(&V, 0, sizeof V);
    V.l = l;
    if (!l || nr <= 0 || !l->progs)
        return st_error_set(err, ST_EINVAL, NULL, NULL, "no programs: no ranks");
    if (l->ngroups < 0 || (l->ngroups > 0 && !l->groups))
        return st_error_set(err, ST_EINVAL, NULL, NULL, "invalid group table");
    size_t ng = (size_t)(l->ngroups > 0 ? l->ngroups : 1);
    if (!(V.shared = calloc((size_t)nr, 1)) || !(V.moff = calloc((size_t)nr + 1, sizeof *V.moff)) ||
        !(V.member = calloc(ng, 1)) || !(V.nm0 = calloc((size_t)nr, sizeof *V.nm0)) ||
        !(V.nm1 = calloc((size_t)nr, sizeof *V.nm1)) || !(V.seen[ST_RENAME_GROUP] = calloc(ng, sizeof(int32_t))) ||
        !(V.seen[ST_RENAME_PEER] = calloc((size_t)nr, sizeof(int32_t)))) {
        rc = st_error_set(err, ST_ENOMEM, NULL, NULL, "out of memory");
        goto out;
    }
    if ((rc = check_ops(l, err)) || (rc = check_programs(&V, err)) || (rc = check_groups(&V, err)) ||
        (rc = check_network(&V, err)))
        goto out;
    if (!(V.seen[ST_RENAME_ROUTE] = calloc((size_t)(V.net ? l->nroutes : 1), sizeof(int32_t)))) {
        rc = st_error_set(err, ST_ENOMEM, NULL, NULL, "out of memory");
        goto out;
    }
    for (int p = 0; p < nr && !rc; p++) {
        const st_program *pg = &l->progs[p];
        for (int64_t a = V.moff[p]; a < V.moff[p + 1]; a++) {
            if (V.member[V.mgrp[a]])
                BAD("group %d lists rank %d twice", (int)V.mgrp[a], pg->rank);
            V.member[V.mgrp[a]] = 1;
        }
        int q = pg->like ? (int)(pg->like - l->progs) : -1;
        /* a sharer whose owner came first: by its names, unless one is wrong */
        if (q < 0 || q > p || V.shared[q] != 2 || names_wrong(&V, p, q))
            rc = check_each(&V, p, err);
        for (int64_t a = V.moff[p]; a < V.moff[p + 1]; a++)
            V.member[V.mgrp[a]] = 0;
    }
out:
    st_rank_index_destroy(&V.ix);
    free(V.shared);
    free(V.moff);
    free(V.mgrp);
    free(V.member);
    free(V.names);
    free(V.nm0);
    free(V.nm1);
    for (int k = 0; k < 3; k++)
        free(V.seen[k]);
    return rc;
}
