/* network.c: the simulator's links and routes (program.h, "Network"), built from a validated
 * lowering, and their load shown in a trace; maxmin.c shares them among flows.
 *
 * Links that every route crosses alike (the ports of the ranks one representative stands for,
 * program.h "Symmetry") carry the same load at all times; the build keeps one of each such set:
 * exact, and it makes a representative's route as short as one rank's. Two links are alike when
 * they have the same capacity and the same routes cross them the same number of times; a hash of
 * that signature sorts the candidates, and a comparison of the (route, count) lists decides.
 * The merged links keep the order of their leaders (the first of each set in the lowering, a link
 * a trace shows before one it does not), so runs and traces do not depend on the hash. */
#include "sim_private.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* a link's signature for merging: capacity, the routes crossing it and how often, and whether a
 * trace shows it (shown ones lead their set) */
typedef struct link_key {
    uint64_t h;
    double cap;
    int32_t hidden, id;
} link_key;

static int link_key_cmp(const void *x, const void *y) {
    const link_key *a = x, *b = y;
    if (a->h != b->h)
        return a->h < b->h ? -1 : 1;
    if (a->cap != b->cap)
        return a->cap < b->cap ? -1 : 1;
    if (a->hidden != b->hidden)
        return a->hidden - b->hidden;
    return (a->id > b->id) - (a->id < b->id);
}

/* the build's temporaries, per link of the lowering */
typedef struct merge {
    int32_t *off, *csr; /* the (route, count) pairs crossing link i: csr[2 * (off[i] .. off[i + 1])] */
    link_key *keys;
    int32_t *rep;       /* the leader of its set */
    int32_t *newid;     /* leaders: its merged index, when some route crosses it; else -1 */
    int32_t *leaders;
} merge;

/* Per link, the (route, count) pairs crossing it in route order, and its signature. */
static void signatures(const st_lowered *l, merge *M) {
    int32_t nl = l->nlinks;
    for (int32_t r = 0; r < l->nroutes; r++)
        for (int32_t k = l->routes[r].first; k < l->routes[r].first + l->routes[r].n; k++)
            M->off[l->hops[k].link + 1]++;
    for (int32_t i = 0; i < nl; i++)
        M->off[i + 1] += M->off[i];
    for (int32_t i = 0; i < nl; i++) {
        uint64_t b;
        memcpy(&b, &l->links[i].bytes_per_s, sizeof b);
        M->keys[i].h = 1469598103934665603ULL ^ b;
        M->keys[i].cap = l->links[i].bytes_per_s;
        M->keys[i].hidden = l->links[i].rank < 0;
        M->keys[i].id = i;
        M->rep[i] = M->off[i]; /* fill position for now */
    }
    for (int32_t r = 0; r < l->nroutes; r++)
        for (int32_t k = l->routes[r].first; k < l->routes[r].first + l->routes[r].n; k++) {
            int32_t i = l->hops[k].link, at = M->rep[i]++;
            M->csr[2 * at] = r;
            M->csr[2 * at + 1] = l->hops[k].count;
            uint64_t h = M->keys[i].h ^ ((uint64_t)(uint32_t)r << 32 | (uint32_t)l->hops[k].count);
            h *= 1099511628211ULL;
            M->keys[i].h = h ^ h >> 29;
        }
}

/* rep[i]: the first link (in key order: shown before hidden, then by index) equal to link i */
static void find_leaders(int32_t nl, merge *M) {
    qsort(M->keys, (size_t)nl, sizeof *M->keys, link_key_cmp);
    for (int32_t a = 0, b; a < nl; a = b) {
        int32_t nlead = 0;
        for (b = a; b < nl && M->keys[b].h == M->keys[a].h && M->keys[b].cap == M->keys[a].cap; b++) {
            int32_t i = M->keys[b].id, j = -1;
            for (int32_t q = 0; q < nlead && j < 0; q++) {
                int32_t c = M->leaders[q];
                if (M->off[c + 1] - M->off[c] == M->off[i + 1] - M->off[i] &&
                    !memcmp(&M->csr[2 * M->off[c]], &M->csr[2 * M->off[i]],
                            (size_t)(M->off[i + 1] - M->off[i]) * 2 * sizeof *M->csr))
                    j = c;
            }
            if (j < 0)
                M->leaders[nlead++] = j = i;
            M->rep[i] = j;
        }
    }
}

/* The merged links, in the order of their leaders; each rank's shown links get trace threads after
 * its streams. */
static int merged_links(st__net *N, const st_lowered *l, const st_rank_index *ix, merge *M) {
    int32_t nl = l->nlinks, nln = 0;
    int32_t *ntid = calloc((size_t)l->nranks, sizeof *ntid);
    if (!ntid)
        return -1;
    for (int32_t i = 0; i < nl; i++)
        M->newid[i] = M->rep[i] == i && M->off[i + 1] > M->off[i] ? nln++ : -1;
    size_t bytes = (size_t)(nln > 0 ? nln : 1) * sizeof *N->ln;
    if (!(N->ln = st__alloc_big(bytes)) ||
        !(N->lx = calloc((size_t)(nln > 0 ? nln : 1), sizeof *N->lx))) {
        free(ntid);
        return -1; /* (N->nln stays 0: st__net_free walks ln[0 .. nln)) */
    }
    memset(N->ln, 0, bytes);
    N->nln = nln;
    for (int32_t i = 0; i < nl; i++)
        if (M->newid[M->rep[i]] >= 0)
            N->lx[M->newid[M->rep[i]]].alike++;
    for (int32_t i = 0; i < nl; i++) {
        if (M->newid[i] < 0)
            continue;
        st__link *L = &N->ln[M->newid[i]];
        st__link_aux *X = &N->lx[M->newid[i]];
        int32_t p = l->links[i].rank >= 0 ? st_rank_index_find(ix, l->links[i].rank) : -1;
        L->cap = l->links[i].bytes_per_s;
        L->fl = L->inl;
        L->capn = ST__LINK_INLINE;
        X->name = l->links[i].name;
        X->rank = p >= 0 ? l->links[i].rank : -1;
        X->tid = p >= 0 ? -(ST_STREAMS + ntid[p]++) : 0; /* negative: thread not named yet */
    }
    free(ntid);
    return 0;
}

/* The merged routes: their hops on merged links, each link once (nrh: the routes' hops, all told). */
static int merged_routes(st__net *N, const st_lowered *l, const merge *M, int64_t nrh) {
    int32_t nrt = l->nroutes, nh = 0;
    int32_t *seen = NULL;
    if (!(N->rt = malloc((size_t)nrt * sizeof *N->rt)) || !(N->hop = malloc((size_t)(nrh + 1) * sizeof *N->hop)) ||
        !(seen = malloc((size_t)(N->nln > 0 ? N->nln : 1) * sizeof *seen)))
        return -1;
    for (int32_t m = 0; m < N->nln; m++)
        seen[m] = -1;
    for (int32_t r = 0; r < nrt; r++) {
        N->rt[r].first = nh;
        N->rt[r].rate = l->routes[r].bytes_per_s;
        for (int32_t k = l->routes[r].first; k < l->routes[r].first + l->routes[r].n; k++) {
            int32_t m = M->newid[M->rep[l->hops[k].link]];
            if (seen[m] == r)
                continue; /* an equal link of this route is already in */
            seen[m] = r;
            N->hop[nh++] = (st__hop){m, l->hops[k].count};
        }
        N->rt[r].n = nh - N->rt[r].first;
    }
    free(seen);
    return 0;
}

int st__net_build(st__net *N, const st_lowered *l, const st_rank_index *ix, st_error *err) {
    int32_t nl = l->nlinks;
    int rc = 0;
    int64_t nrh = 0; /* hops of all routes (routes may share hops of the table) */
    merge M = {0};
    if (nl <= 0 || l->nroutes <= 0)
        return 0;
    for (int32_t r = 0; r < l->nroutes; r++)
        nrh += l->routes[r].n;
    if (nrh >= INT32_MAX)
        return st_error_set(err, ST_EINVAL, NULL, NULL, "too many hops (%lld) to simulate", (long long)nrh);
    if (!(M.off = calloc((size_t)nl + 1, sizeof *M.off)) || !(M.csr = malloc((size_t)(nrh + 1) * 2 * sizeof *M.csr)) ||
        !(M.keys = malloc((size_t)nl * sizeof *M.keys)) ||
        !(M.rep = malloc((size_t)nl * sizeof *M.rep)) || !(M.newid = malloc((size_t)nl * sizeof *M.newid)) ||
        !(M.leaders = malloc((size_t)nl * sizeof *M.leaders)))
        goto nomem;
    signatures(l, &M);
    find_leaders(nl, &M);
    if (merged_links(N, l, ix, &M) || merged_routes(N, l, &M, nrh))
        goto nomem;
    goto out;
nomem:
    rc = st_error_set(err, ST_ENOMEM, NULL, NULL, "out of memory");
out:
    free(M.off);
    free(M.csr);
    free(M.keys);
    free(M.rep);
    free(M.newid);
    free(M.leaders);
    return rc;
}

void st__net_free(st__net *N) {
    for (int32_t i = 0; i < N->nln; i++)
        if (N->ln[i].fl != N->ln[i].inl)
            free(N->ln[i].fl);
    free(N->ln);
    free(N->lx);
    free(N->rt);
    free(N->hop);
    free(N->fl);
    free(N->q_fl);
    free(N->q_ln);
    free(N->w_cap);
    free(N->w_rem);
    free(N->w_wsum);
    free(N->w_rate);
    free(N->w_share);
    free(N->w_frozen);
    free(N->w_first);
    free(N->w_hop);
    memset(N, 0, sizeof *N);
}

/* trace: the link's load changed at t; close the interval shown so far */
static void link_show(st__net *N, st_trace *trace, const st__link *L, st__link_aux *X, double t) {
    double load = 0;
    for (int32_t k = 0; k < L->n; k++) {
        const st__flow *F = &N->fl[L->fl[2 * k]];
        load += L->fl[2 * k + 1] * F->rate * F->speed;
    }
    double util = load / L->cap;
    const char *label = L->n == 1 ? N->fl[L->fl[0]].label : NULL;
    if (L->n == X->shown_n && label == X->shown_label && fabs(util - X->util) <= 1e-9)
        return;
    if (X->shown_n > 0 && t > X->since) {
        char buf[32];
        if (X->tid < 0) { /* first interval: name the thread */
            char name[64];
            if (X->alike > 1)
                snprintf(name, sizeof name, "%s (+%d alike)", X->name, (int)X->alike - 1);
            else
                snprintf(name, sizeof name, "%s", X->name);
            X->tid = -X->tid;
            st_trace_thread(trace, X->rank, X->tid, name);
        }
        if (!X->shown_label)
            snprintf(buf, sizeof buf, "%d flows", (int)X->shown_n);
        st_trace_link(trace, X->rank, X->tid, X->since, t, X->shown_label ? X->shown_label : buf, X->shown_n, X->util);
    }
    X->since = t;
    X->shown_n = L->n;
    X->util = util;
    X->shown_label = label;
}

void st__net_show(st__net *N, st_trace *trace, int32_t f, double t) {
    const st__route *R = &N->rt[N->fl[f].route];
    for (int32_t h = R->first; h < R->first + R->n; h++) {
        int32_t l = N->hop[h].link;
        if (N->lx[l].rank >= 0)
            link_show(N, trace, &N->ln[l], &N->lx[l], t);
    }
}
