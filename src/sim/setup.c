/* setup.c: the engine's arrays (sim_private.h), built from a lowering (program.h) before the run.
 *
 * The lowering is validated first (st_program_validate, src/lower/validate.c): everything here
 * indexes by its numbers without checking them again, and only the simulator's own limits (int32
 * instruction numbers, dependencies, collectives) are checked here.
 *
 * Setup reads each instruction array once, in one pass over the programs ("pass 1"): stream
 * chains, pending counts, the reverse deps (laid out as each program ends, while its nodes are in
 * cache), the k of each COLL, the channel of each send/receive. A program that shares another's
 * instructions (program.h) is copied from that one's nodes under its own names (share()). The
 * memory pass 1 fills is faulted in ahead of it by a second thread, and the sends and receives
 * are paired on that thread while this one makes the collective slots: the run itself is one
 * thread, and its result does not depend on the other (the same bytes either way).
 *
 * The steps, in order (st__sim_setup): number the instructions; index the groups' members;
 * allocate pass 1's arrays; build the network (network.c); pass 1; pair sends and receives
 * (second thread) while making the collective slots; allocate the run's state.
 *
 * Workload facts behind the layout: the 1T-parameter model on 3,072 GPUs lowers to 64 programs of
 * ~5,000 instructions (one representative rank per stage) or to 3,072 of them (every rank, ~1.5e7
 * instructions, of which the ranks of a stage share one array); per instruction the engine keeps
 * one 32-byte node, and setup's cost is writing those.
 */
#define _DEFAULT_SOURCE /* madvise's MADV_POPULATE_WRITE */
#include "sim_private.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

/* Faulting memory in costs: the kernel zeroes every page on first touch, and on a virtual machine
 * that runs at about 1 GB/s, while setting up every rank of the 1T benchmark writes ~0.9 GB.
 * So, while pass 1 fills its arrays from the front, a second thread faults them in ahead of it
 * (MADV_POPULATE_WRITE, Linux 5.14: it maps pages without writing them, so it cannot race with
 * the writes; elsewhere it does nothing), a slice of each array at a time. */
enum { PF_REGIONS = 4, PF_SLICES = 128 };
typedef struct prefault {
    char *at[PF_REGIONS];
    size_t len[PF_REGIONS];
    atomic_int stop;
    pthread_t thread;
    int running;
} prefault;

static void *prefault_run(void *arg) {
#ifdef MADV_POPULATE_WRITE
    prefault *P = arg;
    size_t page = 4096, done[PF_REGIONS] = {0};
    for (int k = 0; k < PF_SLICES && !atomic_load_explicit(&P->stop, memory_order_relaxed); k++)
        for (int r = 0; r < PF_REGIONS; r++) {
            size_t end = (k + 1 == PF_SLICES ? P->len[r] : P->len[r] / PF_SLICES * (k + 1)) / page * page;
            if (end > done[r] && madvise(P->at[r] + done[r], end - done[r], MADV_POPULATE_WRITE))
                return NULL; /* not supported here, or out of memory: pass 1 faults its own pages */
            if (end > done[r])
                done[r] = end;
        }
#else
    (void)arg;
#endif
    return NULL;
}

/* region r: from the first whole page of [p, p + bytes) on */
static void prefault_add(prefault *P, int r, void *p, size_t bytes) {
    uintptr_t a = (uintptr_t)p, b = a + bytes, page = 4096;
    a = (a + page - 1) / page * page;
    P->at[r] = (char *)a;
    P->len[r] = b > a ? b - a : 0;
}

static void prefault_start(prefault *P) {
    atomic_init(&P->stop, 0);
    P->running = pthread_create(&P->thread, NULL, prefault_run, P) == 0;
}

static void prefault_stop(prefault *P) {
    if (!P->running)
        return;
    atomic_store(&P->stop, 1);
    pthread_join(P->thread, NULL);
    P->running = 0;
}


/* send/recv matching, by channel: a channel is a (sender, receiver) pair of programs. A small table
 * numbers the channels; each channel's sends and receives, as (tag, position) keys in program
 * order, are sorted when they are not in order already (the position breaks ties, so the i-th send
 * of a tag meets the i-th receive of it) and merged. A channel's keys are few and together: one
 * table of every send, looked up by (sender, receiver, tag), missed the cache at every lookup. */
typedef struct chan_slot {
    int32_t from, to, id; /* from = -1: empty */
} chan_slot;

typedef struct chan_tab {
    chan_slot *v;
    uint32_t cap;
    int32_t n;
} chan_tab;

static uint32_t chan_hash(int32_t from, int32_t to) {
    uint32_t h = (uint32_t)from * 0x9e3779b1u ^ (uint32_t)to * 0x85ebca77u;
    h ^= h >> 15;
    h *= 0x2c1b3c6du;
    h ^= h >> 12;
    return h;
}

/* the channel (from, to), numbered in order of first appearance; -1 when out of memory */
static int32_t chan_of(chan_tab *T, int32_t from, int32_t to) {
    if (2 * (uint32_t)(T->n + 1) > T->cap) {
        uint32_t cap = T->cap ? 2 * T->cap : 64;
        chan_slot *v = malloc((size_t)cap * sizeof *v);
        if (!v)
            return -1;
        for (uint32_t i = 0; i < cap; i++)
            v[i].from = -1;
        for (uint32_t k = 0; k < T->cap; k++)
            if (T->v[k].from >= 0) {
                uint32_t i = chan_hash(T->v[k].from, T->v[k].to) & (cap - 1);
                while (v[i].from >= 0)
                    i = (i + 1) & (cap - 1);
                v[i] = T->v[k];
            }
        free(T->v);
        T->v = v;
        T->cap = cap;
    }
    for (uint32_t i = chan_hash(from, to) & (T->cap - 1);; i = (i + 1) & (T->cap - 1)) {
        chan_slot *e = &T->v[i];
        if (e->from == from && e->to == to)
            return e->id;
        if (e->from < 0) {
            *e = (chan_slot){from, to, T->n};
            return T->n++;
        }
    }
}

/* (tag, position) as one sortable number: tags order as signed integers */
static inline uint64_t tag_key(int32_t tag, size_t pos) {
    return (uint64_t)((uint32_t)tag ^ 0x80000000u) << 32 | (uint32_t)pos;
}

static int u64_cmp(const void *x, const void *y) {
    uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;
    return (a > b) - (a < b);
}

/* a growable list of int32 5-tuples, for what pass 1 collects */
enum { IV = 5 };
typedef struct ivec {
    int32_t *v;
    size_t n, cap;
} ivec;

static int ivec_push(ivec *a, int32_t x, int32_t y, int32_t z, int32_t u, float w) {
    if (a->n + IV > a->cap) {
        size_t cap = a->cap ? 2 * a->cap : IV * 1024;
        int32_t *v = realloc(a->v, cap * sizeof *v);
        if (!v)
            return -1;
        a->v = v;
        a->cap = cap;
    }
    a->v[a->n++] = x;
    a->v[a->n++] = y;
    a->v[a->n++] = z;
    a->v[a->n++] = u;
    memcpy(&a->v[a->n++], &w, sizeof w);
    return 0;
}

/* what an instruction's time counts as (of a validated lowering) */
static int bd_of(const st_lowered *l, const st_ins *in) {
    switch (in->kind) {
    case ST_INS_SEND:
    case ST_INS_RECV: return ST_BD_PP;
    case ST_INS_COLL:
        if (in->stream == ST_STREAM_DP || in->stream == ST_STREAM_GATHER)
            return ST_BD_DP; /* data-parallel and ZeRO traffic, the end stages' embedding sum */
        switch (l->groups[in->group].kind) {
        case ST_GRP_TP: return ST_BD_TP;
        case ST_GRP_CP: return ST_BD_CP;
        case ST_GRP_EP: return ST_BD_EP;
        case ST_GRP_PP: return ST_BD_PP;
        default: return ST_BD_DP;
        }
    default:
        switch (in->phase) {
        case ST_PHASE_FWD:
        case ST_PHASE_BWD:
        case ST_PHASE_BWD_INPUT:
        case ST_PHASE_BWD_WEIGHT: return ST_BD_COMPUTE;
        case ST_PHASE_RECOMPUTE: return ST_BD_RECOMPUTE;
        case ST_PHASE_OPTIMIZER: return ST_BD_OPTIMIZER;
        default: return in->stream == ST_STREAM_COPY ? ST_BD_OFFLOAD : ST_BD_OTHER;
        }
    }
}

/* room for `more` int32s at the end of a */
static int ivec_reserve(ivec *a, size_t more) {
    if (a->n + more <= a->cap)
        return 0;
    size_t cap = a->cap ? 2 * a->cap : IV * 1024;
    while (cap < a->n + more)
        cap *= 2;
    int32_t *v = realloc(a->v, cap * sizeof *v);
    if (!v)
        return -1;
    a->v = v;
    a->cap = cap;
    return 0;
}

/* What pass 1 keeps of a program that others share (program.h, "Shared instructions"), so that
 * each of them is set up by copying it under its own names instead of reading every instruction
 * again: its collectives (i, local group, k, local route or -1, latency) and sends/receives
 * (i, 2 x local peer + 1 for a send, tag, local route or -1, latency), where a local number
 * indexes the values the program uses (gval, rval, pval). */
typedef struct tmpl {
    int made;
    ivec colls, p2ps;
    int32_t ng, nrt, npeer;
    int32_t *gval, *gk; /* per local group: the group, its COLLs in the program */
    int32_t *rval;      /* per local route: the route */
    int32_t *pval;      /* per local peer: its rank */
    uint8_t *pdir;      /* per local peer: 1 it receives from it, 2 it sends to it */
    int64_t nrdeps, np2p, nsend;
    int64_t rdep_base; /* its first reverse dep */
} tmpl;

/* how pass 1 set a program up, for the passes after it: the long way, with its collectives and
 * sends/receives in the setup's lists; or from a template, under the names in build.names:
 * groups[ng], routes[nrt], channels[2 x npeer] (receive from, send to each local peer) */
typedef struct prog_rec {
    int32_t via;   /* -1: the long way; else the program whose template it copies */
    size_t names;  /* via >= 0: where its names start */
    size_t c0, c1; /* via < 0: its collectives, colls.v[c0 .. c1) */
    size_t x0, x1; /* via < 0: its sends and receives, p2ps.v[x0 .. x1) */
} prog_rec;

/* setup's state beside what it fills in S (st__sim_setup frees it) */
typedef struct build {
    st_rank_index ix;
    int net;                  /* the network has links: transfers name routes */
    uint8_t *shared;          /* per program: another shares its instructions */
    size_t ncoll, nxfer;      /* COLLs and SEND/RECVs of the programs that share nobody's */
    /* per program p, the groups it is a member of: group mship[2a] at position mship[2a + 1], for a
     * in mship_off[p] .. mship_off[p + 1) */
    int32_t *mship_off, *mship;
    int32_t *posmap;          /* per group: the position in it of the program being set up, -1 */
    int32_t *kcount, *kmax;   /* per group: its COLLs so far in the program being set up; the most */
    /* collected by pass 1, so that later passes need not look the (large) instruction records up
     * again: collectives (gid, group, k, route, latency) and sends and receives (gid, channel, tag,
     * route, latency); a latency only splits a time, so a float is precise enough */
    ivec colls, p2ps;
    tmpl *tm;                    /* per program: its template, when others share its instructions */
    prog_rec *rec;               /* per program: how pass 1 set it up */
    chan_tab chans;
    int32_t *gmap, *rmap, *pmap; /* value -> local number while a template is made; -1 */
    int32_t *gmark, stamp;       /* groups taken by a sharer's names */
    ivec names;                  /* the sharers' names per local number, and their channels */
    int64_t racc, np2p, nsend;   /* pass 1 so far: reverse deps, sends and receives, sends */
    prefault pf;
} build;

static void tmpl_free(tmpl *T) {
    free(T->colls.v);
    free(T->p2ps.v);
    free(T->gval);
    free(T->gk);
    free(T->rval);
    free(T->pval);
    free(T->pdir);
}

/* the local number of value v in vals (map: value -> local, -1) */
static inline int32_t local_of(int32_t *map, int32_t v, int32_t *vals, int32_t *n) {
    if (map[v] < 0) {
        vals[*n] = v;
        map[v] = (*n)++;
    }
    return map[v];
}

/* Makes program p's template from what the long way just collected for it: its collectives
 * colls[c0 ..), its sends/receives p2ps[q0 ..) and its reverse deps rdeps[base .. racc). */
static int tmpl_make(st__sim *S, build *B, int32_t p, size_t c0, size_t q0, int64_t base) {
    const st_program *pg = &S->l->progs[p];
    const ivec *colls = &B->colls, *p2ps = &B->p2ps;
    tmpl *T = &B->tm[p];
    size_t nc = (colls->n - c0) / IV, np = (p2ps->n - q0) / IV;
    T->rdep_base = base;
    T->nrdeps = B->racc - base;
    if (ivec_reserve(&T->colls, nc * IV) || ivec_reserve(&T->p2ps, np * IV) ||
        !(T->gval = malloc((nc + 1) * sizeof *T->gval)) || !(T->gk = calloc(nc + 1, sizeof *T->gk)) ||
        !(T->rval = malloc((nc + np + 1) * sizeof *T->rval)) || !(T->pval = malloc((np + 1) * sizeof *T->pval)) ||
        !(T->pdir = calloc(np + 1, sizeof *T->pdir)))
        return -1;
    int32_t *lpeer = malloc((np + 1) * sizeof *lpeer); /* the peer programs met, to reset pmap */
    if (!lpeer)
        return -1;
    for (size_t x = c0; x < colls->n; x += IV) {
        const int32_t *v = &colls->v[x];
        int32_t *t = &T->colls.v[T->colls.n];
        int32_t lg = local_of(B->gmap, v[1], T->gval, &T->ng);
        if (v[2] + 1 > T->gk[lg])
            T->gk[lg] = v[2] + 1;
        t[0] = v[0] - S->off[p];
        t[1] = lg;
        t[2] = v[2];
        t[3] = v[3] >= 0 ? local_of(B->rmap, v[3], T->rval, &T->nrt) : -1;
        t[4] = v[4];
        T->colls.n += IV;
    }
    for (size_t x = q0; x < p2ps->n; x += IV) {
        const int32_t *v = &p2ps->v[x];
        int32_t *t = &T->p2ps.v[T->p2ps.n];
        int32_t i = v[0] - S->off[p];
        int snd = S->nodes[v[0]].kind == ST_INS_SEND;
        int32_t q = st_rank_index_find(&B->ix, pg->ins[i].peer);
        int32_t lp = local_of(B->pmap, q, lpeer, &T->npeer);
        T->pval[lp] = pg->ins[i].peer;
        T->pdir[lp] |= (uint8_t)(1 << snd);
        t[0] = i;
        t[1] = 2 * lp + snd;
        t[2] = v[2];
        t[3] = v[3] >= 0 ? local_of(B->rmap, v[3], T->rval, &T->nrt) : -1;
        t[4] = v[4];
        T->p2ps.n += IV;
        T->np2p++;
        T->nsend += snd;
    }
    for (int32_t k = 0; k < T->ng; k++)
        B->gmap[T->gval[k]] = -1;
    for (int32_t k = 0; k < T->nrt; k++)
        B->rmap[T->rval[k]] = -1;
    for (int32_t k = 0; k < T->npeer; k++)
        B->pmap[lpeer[k]] = -1;
    free(lpeer);
    T->made = 1;
    return 0;
}

/* Sets up program p, which runs q's instructions under its own names, from q's template T: the
 * nodes and reverse deps copied to p's numbers, its names (groups, routes, channels) kept in
 * B->names for the passes after this one (R). The names are valid (st_program_validate); a
 * template serves only when p's groups are distinct (so that each COLL keeps its k) and of the
 * same kinds as q's (what their time counts as). Returns 0; 1 when it does not serve (nothing
 * written but perhaps a channel, which costs nothing while empty: p then goes the long way); -1
 * when out of memory. */
static int share(st__sim *S, build *B, const tmpl *T, int32_t q, int32_t p, prog_rec *R) {
    const st_lowered *l = S->l;
    const st_program *pg = &l->progs[p];
    size_t need = (size_t)T->ng + (size_t)T->nrt + 2 * (size_t)T->npeer;
    if (ivec_reserve(&B->names, need))
        return -1;
    int32_t *gto = B->names.v + B->names.n, *rto = gto + T->ng, *chs = rto + T->nrt;
    if (++B->stamp == INT32_MAX) { /* (never in practice) */
        memset(B->gmark, 0, (size_t)(l->ngroups > 0 ? l->ngroups : 1) * sizeof *B->gmark);
        B->stamp = 1;
    }
    for (int32_t k = 0; k < T->ng; k++) {
        int32_t v = st_program_rename(pg, ST_RENAME_GROUP, T->gval[k]);
        if (B->gmark[v] == B->stamp || l->groups[v].kind != l->groups[T->gval[k]].kind)
            return 1;
        B->gmark[v] = B->stamp;
        gto[k] = v;
    }
    for (int32_t k = 0; k < T->nrt; k++) /* (routes are collected only with a network) */
        rto[k] = st_program_rename(pg, ST_RENAME_ROUTE, T->rval[k]);
    for (int32_t k = 0; k < T->npeer; k++) {
        int32_t v = st_rank_index_find(&B->ix, st_program_rename(pg, ST_RENAME_PEER, T->pval[k]));
        chs[2 * k] = chs[2 * k + 1] = -1;
        if ((T->pdir[k] & 1) && (chs[2 * k] = chan_of(&B->chans, v, p)) < 0)
            return -1;
        if ((T->pdir[k] & 2) && (chs[2 * k + 1] = chan_of(&B->chans, p, v)) < 0)
            return -1;
    }
    int32_t n = pg->n, dg = S->off[p] - S->off[q];
    if (B->racc + T->nrdeps >= INT32_MAX)
        return 1; /* the long way says "too many dependencies" */
    R->via = q;
    R->names = B->names.n;
    B->names.n += need;
    for (int32_t k = 0; k < T->ng; k++)
        if (T->gk[k] > B->kmax[gto[k]])
            B->kmax[gto[k]] = T->gk[k];
    int32_t dr = (int32_t)(B->racc - T->rdep_base);
    const st__node *src = &S->nodes[S->off[q]];
    st__node *dst = &S->nodes[S->off[p]];
    for (int32_t i = 0; i < n; i++) {
        st__node x = src[i];
        if (x.next >= 0)
            x.next += dg;
        x.rdep0 += dr;
        x.prog = p;
        dst[i] = x;
    }
    for (size_t x = 0; x < T->p2ps.n; x += IV) { /* the parked route, under p's name */
        const int32_t *t = &T->p2ps.v[x];
        dst[t[0]].route = t[3] >= 0 ? rto[t[3]] : -1;
    }
    const int32_t *rs = &S->rdeps[T->rdep_base];
    int32_t *rd = &S->rdeps[B->racc];
    for (int64_t k = 0; k < T->nrdeps; k++)
        rd[k] = rs[k] + dg;
    B->racc += T->nrdeps;
    B->np2p += T->np2p;
    B->nsend += T->nsend;
    return 0;
}

/* A program's collectives or sends/receives as pass 1 recorded them (prog_rec): entries e[0 .. n)
 * of IV int32s, where entry x names gid e[x] + base, and, when names is not NULL, local numbers
 * read through it. */
typedef struct entries {
    const int32_t *e;
    size_t n;
    int32_t base;
    const int32_t *names;
} entries;

static entries colls_of(const st__sim *S, const build *B, int p) {
    const prog_rec *R = &B->rec[p];
    if (R->via < 0)
        return (entries){B->colls.v + R->c0, R->c1 - R->c0, 0, NULL};
    return (entries){B->tm[R->via].colls.v, B->tm[R->via].colls.n, S->off[p], B->names.v + R->names};
}

static entries p2ps_of(const st__sim *S, const build *B, int p) {
    const prog_rec *R = &B->rec[p];
    if (R->via < 0)
        return (entries){B->p2ps.v + R->x0, R->x1 - R->x0, 0, NULL};
    const tmpl *T = &B->tm[R->via];
    return (entries){T->p2ps.v, T->p2ps.n, S->off[p], B->names.v + R->names + T->ng + T->nrt};
}


/* ------------------------------------------------------------ pairing sends and receives */

/* Pairs one channel's sends a[0 .. na) with its receives b[0 .. nb), both (tag, gid) keys: the i-th
 * send of a tag with the i-th receive of it, in program order. Pass 1 parked each one's route in
 * node.route and its latency (a float) in node.link; a pair gets the longer duration and latency,
 * and, with links, runs as a flow: the send keeps the data's time alone, the receive the latency
 * after it. */
static void pair_channel(st__sim *S, uint64_t *a, size_t na, uint64_t *b, size_t nb) {
    size_t i = 0, j = 0;
    for (size_t k = 1; k < na; k++)
        if (a[k] < a[k - 1]) {
            qsort(a, na, sizeof *a, u64_cmp);
            break;
        }
    for (size_t k = 1; k < nb; k++)
        if (b[k] < b[k - 1]) {
            qsort(b, nb, sizeof *b, u64_cmp);
            break;
        }
    while (i < na || j < nb) {
        if (i == na || j == nb || a[i] >> 32 != b[j] >> 32) {
            /* unmatched (reported if it blocks the run): no partner, no flow */
            int32_t g = (int32_t)(uint32_t)(j == nb || (i < na && a[i] >> 32 < b[j] >> 32) ? a[i++] : b[j++]);
            S->nodes[g].link = S->nodes[g].route = -1;
            continue;
        }
        int32_t snd = (int32_t)(uint32_t)a[i++], g = (int32_t)(uint32_t)b[j++];
        st__node *x = &S->nodes[snd], *y = &S->nodes[g];
        float ls, lr;
        memcpy(&ls, &x->link, sizeof ls);
        memcpy(&lr, &y->link, sizeof lr);
        int32_t route = x->route >= 0 ? x->route : y->route;
        double d = x->dur_s > y->dur_s ? x->dur_s : y->dur_s;
        double lat = ls > lr ? ls : lr;
        x->link = g;
        y->link = snd;
        x->dur_s = y->dur_s = d;
        x->route = y->route = -1;
        if (route >= 0 && S->net.rt[route].n > 0 && d - lat > 0) {
            x->route = y->route = route;
            x->dur_s = d - lat;
            y->dur_s = lat;
        }
    }
}

/* the pairing of sends and receives, which runs beside the collective slots' pass (they write
 * different nodes) */
typedef struct pairing {
    st__sim *S;
    const build *B;
    int rc; /* -1: out of memory */
    pthread_t thread;
    int running;
} pairing;

/* Sorts every send and receive, as a (tag, gid) key, into its channel (sender, receiver), then
 * pairs each channel's (pair_channel). Keys ascend in program order within a channel, since gids
 * do, unless a channel's programs were met out of order. */
static void *pair_run(void *arg) {
    pairing *X = arg;
    st__sim *S = X->S;
    const build *B = X->B;
    int64_t np2p = B->np2p, nsend = B->nsend;
    int32_t nc = B->chans.n, *cs = NULL, *cr = NULL;
    uint64_t *ks = NULL, *kr = NULL;
    if (np2p == 0)
        return NULL;
    if (!(cs = calloc((size_t)nc + 1, sizeof *cs)) || !(cr = calloc((size_t)nc + 1, sizeof *cr)) ||
        !(ks = malloc((size_t)(nsend > 0 ? nsend : 1) * sizeof *ks)) ||
        !(kr = malloc((size_t)(np2p - nsend > 0 ? np2p - nsend : 1) * sizeof *kr))) {
        X->rc = -1;
        goto out;
    }
    for (int p = 0; p < S->l->nranks; p++) {
        entries E = p2ps_of(S, B, p);
        for (size_t x = 0; x < E.n; x += IV) {
            const int32_t *v = &E.e[x];
            int32_t ch = E.names ? E.names[v[1]] : v[1];
            (S->nodes[v[0] + E.base].kind == ST_INS_SEND ? cs : cr)[ch + 1]++;
        }
    }
    for (int32_t c = 0; c < nc; c++) {
        cs[c + 1] += cs[c];
        cr[c + 1] += cr[c];
    }
    for (int p = 0; p < S->l->nranks; p++) { /* fill, moving each channel's start on */
        entries E = p2ps_of(S, B, p);
        for (size_t x = 0; x < E.n; x += IV) {
            const int32_t *v = &E.e[x];
            int32_t g = v[0] + E.base, ch = E.names ? E.names[v[1]] : v[1];
            uint64_t key = tag_key(v[2], (size_t)g);
            if (S->nodes[g].kind == ST_INS_SEND)
                ks[cs[ch]++] = key;
            else
                kr[cr[ch]++] = key;
        }
    }
    for (int32_t c = nc; c > 0; c--) { /* each start moved onto the next one's: move back */
        cs[c] = cs[c - 1];
        cr[c] = cr[c - 1];
    }
    cs[0] = cr[0] = 0;
    for (int32_t c = 0; c < nc; c++)
        pair_channel(S, ks + cs[c], (size_t)(cs[c + 1] - cs[c]), kr + cr[c], (size_t)(cr[c + 1] - cr[c]));
out:
    free(cs);
    free(cr);
    free(ks);
    free(kr);
    return NULL;
}

/* ------------------------------------------------------------ the steps */

#define BAD(...)                                                                                                       \
    do {                                                                                                               \
        rc = st_error_set(err, ST_EINVAL, NULL, NULL, __VA_ARGS__);                                                    \
        goto out;                                                                                                      \
    } while (0)

/* Step 1. Instruction numbering (gid = off[p] + i, within int32); which programs others share; the
 * sizes of pass 1's lists for the programs that share nobody's (a sharer that must go the long way
 * makes them grow). */
static int number(st__sim *S, build *B, st_error *err) {
    const st_lowered *l = S->l;
    int rc = 0, nr = l->nranks;
    if (!(S->off = malloc((size_t)(nr + 1) * sizeof *S->off)) || !(B->shared = calloc((size_t)nr, 1)))
        return st_error_set(err, ST_ENOMEM, NULL, NULL, "out of memory");
    int64_t total = 0;
    for (int p = 0; p < nr; p++) {
        const st_program *pg = &l->progs[p];
        if (pg->like)
            B->shared[pg->like - l->progs] = 1;
        S->off[p] = (int32_t)total;
        total += pg->n;
        if (total >= INT32_MAX - 1)
            BAD("too many instructions (%lld) to simulate", (long long)total);
        if (!pg->like)
            for (int i = 0; i < pg->n; i++) {
                uint8_t k = pg->ins[i].kind;
                B->ncoll += k == ST_INS_COLL;
                B->nxfer += k == ST_INS_SEND || k == ST_INS_RECV;
            }
    }
    S->off[nr] = (int32_t)total;
    S->total = total;
out:
    return rc;
}

/* Step 2. Group membership: for each program, the (group, position) pairs it is in. */
static int memberships(st__sim *S, build *B, st_error *err) {
    const st_lowered *l = S->l;
    int rc = 0, nr = l->nranks;
    int32_t *fill = NULL;
    if (!(B->mship_off = calloc((size_t)nr + 1, sizeof *B->mship_off)))
        goto nomem;
    int64_t nmship = 0;
    for (int g = 0; g < l->ngroups; g++)
        for (int j = 0; j < l->groups[g].n; j++) {
            B->mship_off[st_rank_index_find(&B->ix, l->groups[g].ranks[j]) + 1]++;
            nmship++;
        }
    if (nmship >= INT32_MAX)
        BAD("groups too large");
    for (int p = 0; p < nr; p++)
        B->mship_off[p + 1] += B->mship_off[p];
    if (!(B->mship = malloc((size_t)(nmship > 0 ? nmship : 1) * 2 * sizeof *B->mship)) ||
        !(fill = malloc((size_t)nr * sizeof *fill)))
        goto nomem;
    memcpy(fill, B->mship_off, (size_t)nr * sizeof *fill);
    for (int g = 0; g < l->ngroups; g++)
        for (int j = 0; j < l->groups[g].n; j++) {
            int32_t at = fill[st_rank_index_find(&B->ix, l->groups[g].ranks[j])]++;
            B->mship[2 * at] = g;
            B->mship[2 * at + 1] = j;
        }
    goto out;
nomem:
    rc = st_error_set(err, ST_ENOMEM, NULL, NULL, "out of memory");
out:
    free(fill);
    return rc;
}

/* Step 3. The arrays pass 1 fills, and a thread that faults them in ahead of it. -1: out of memory. */
static int alloc_pass1(st__sim *S, build *B) {
    const st_lowered *l = S->l;
    size_t total = (size_t)S->total, ng = (size_t)(l->ngroups > 0 ? l->ngroups : 1);
    if (!(S->nodes = st__alloc_big((total + 1) * sizeof *S->nodes)) ||
        !(B->kcount = calloc(ng, sizeof *B->kcount)) || !(B->kmax = calloc(ng, sizeof *B->kmax)) ||
        !(B->posmap = malloc(ng * sizeof *B->posmap)))
        return -1;
    memset(&S->nodes[total], 0, sizeof *S->nodes); /* pass 1 writes the others */
    if (!(S->rdeps = st__alloc_big((2 * total + 1) * sizeof *S->rdeps)) || /* <= 2 deps each */
        !(B->colls.v = st__alloc_big((B->ncoll * IV + 1) * sizeof *B->colls.v)) ||
        !(B->p2ps.v = st__alloc_big((B->nxfer * IV + 1) * sizeof *B->p2ps.v)))
        return -1;
    B->colls.cap = B->ncoll * IV + 1;
    B->p2ps.cap = B->nxfer * IV + 1;
    prefault_add(&B->pf, 0, S->nodes, total * sizeof *S->nodes);
    prefault_add(&B->pf, 1, S->rdeps, total * sizeof *S->rdeps); /* about one dep each */
    prefault_add(&B->pf, 2, B->colls.v, B->ncoll * IV * sizeof *B->colls.v);
    prefault_add(&B->pf, 3, B->p2ps.v, B->nxfer * IV * sizeof *B->p2ps.v);
    prefault_start(&B->pf);
    for (int g = 0; g < l->ngroups; g++)
        B->posmap[g] = -1;
    return 0;
}

/* Step 4 (after the network's: it sizes the route map). Templates and their maps. -1: out of memory. */
static int alloc_templates(st__sim *S, build *B) {
    const st_lowered *l = S->l;
    size_t nr = (size_t)l->nranks, ng = (size_t)(l->ngroups > 0 ? l->ngroups : 1);
    size_t nrt = (size_t)(B->net && l->nroutes > 0 ? l->nroutes : 1);
    if (!(B->tm = calloc(nr, sizeof *B->tm)) || !(B->rec = malloc(nr * sizeof *B->rec)) ||
        !(B->gmap = malloc(ng * sizeof *B->gmap)) || !(B->gmark = calloc(ng, sizeof *B->gmark)) ||
        !(B->rmap = malloc(nrt * sizeof *B->rmap)) || !(B->pmap = malloc(nr * sizeof *B->pmap)))
        return -1;
    memset(B->gmap, -1, ng * sizeof *B->gmap);
    memset(B->rmap, -1, nrt * sizeof *B->rmap);
    memset(B->pmap, -1, nr * sizeof *B->pmap);
    return 0;
}

/* Pass 1, the long way: program p's instructions one by one (under its own names when it shares
 * another's): its nodes (stream chains, pending counts, the reverse deps counted in rdep0 and
 * parked in link and route), its collectives with their k and its sends/receives with their
 * channel in the build's lists. *ndeps: its dependencies. -1: out of memory. */
static int read_program(st__sim *S, build *B, int p, int64_t *ndeps) {
    const st_lowered *l = S->l;
    const st_program *pg = &l->progs[p];
    int32_t last[ST_STREAMS];
    for (int s = 0; s < ST_STREAMS; s++)
        last[s] = -1;
    memset(&S->nodes[S->off[p]], 0, (size_t)pg->n * sizeof *S->nodes);
    for (int i = 0; i < pg->n; i++) {
        const st_ins *in = &pg->ins[i];
        st_ins renamed;
        if (pg->like && in->kind != ST_INS_COMPUTE) { /* its own names for groups, peers, routes */
            st_program_ins(pg, i, &renamed);
            in = &renamed;
        }
        int32_t g = S->off[p] + i;
        st__node *nd = &S->nodes[g];
        nd->kind = (uint8_t)in->kind;
        nd->stream = (uint8_t)in->stream;
        nd->prog = p;
        nd->next = -1;
        nd->link = -1;
        nd->route = -1;
        nd->dur_s = in->dur_s + 0.0; /* -0.0 becomes +0.0: event times stay >= +0 */
        nd->state = (uint8_t)((in->alloc_bytes != 0 ? F_ALLOC : 0) | (in->free_bytes != 0 ? F_FREE : 0) |
                              bd_of(l, in) << BD_SHIFT);
        if (last[in->stream] >= 0) {
            S->nodes[last[in->stream]].next = g;
            nd->pending++;
        }
        last[in->stream] = g;
        for (int k = 0; k < 2; k++) {
            int d = in->dep[k];
            if (d == -1 || (k == 1 && d == in->dep[0]))
                continue;
            nd->pending++;
            S->nodes[S->off[p] + d].rdep0++; /* count for now */
            (*ndeps)++;
            /* parked in fields that are still free, for the reverse-dep pass */
            if (k == 0)
                nd->link = S->off[p] + d;
            else
                nd->route = S->off[p] + d;
        }
        if (in->kind == ST_INS_COLL) {
            if (ivec_push(&B->colls, g, in->group, B->kcount[in->group]++, B->net ? in->route : -1,
                          (float)in->latency_s))
                return -1;
            if (B->kcount[in->group] > B->kmax[in->group])
                B->kmax[in->group] = B->kcount[in->group];
        } else if (in->kind == ST_INS_SEND || in->kind == ST_INS_RECV) {
            int32_t peer = st_rank_index_find(&B->ix, in->peer);
            int snd = in->kind == ST_INS_SEND;
            int32_t ch = chan_of(&B->chans, snd ? p : peer, snd ? peer : p);
            if (ch < 0 || ivec_push(&B->p2ps, g, ch, in->tag, B->net ? in->route : -1, (float)in->latency_s))
                return -1;
            B->np2p++;
            B->nsend += snd;
        }
    }
    return 0;
}

/* Pass 1, the long way, after read_program: program p's reverse deps laid out from B->racc on
 * (CSR): counts to offsets, filled from the deps parked in link and route (moving each offset on),
 * then each offset is where the next node's start. */
static void lay_out_rdeps(st__sim *S, build *B, int p) {
    int32_t a0 = S->off[p], a1 = S->off[p + 1];
    int64_t base = B->racc;
    for (int32_t g = a0; g < a1; g++) {
        int32_t c = S->nodes[g].rdep0;
        S->nodes[g].rdep0 = (int32_t)B->racc;
        B->racc += c;
    }
    for (int32_t g = a0; g < a1; g++) {
        st__node *nd = &S->nodes[g];
        if (nd->link >= 0)
            S->rdeps[S->nodes[nd->link].rdep0++] = g;
        if (nd->route >= 0)
            S->rdeps[S->nodes[nd->route].rdep0++] = g;
        nd->link = nd->route = -1;
    }
    for (int32_t g = a1 - 1; g > a0; g--)
        S->nodes[g].rdep0 = S->nodes[g - 1].rdep0;
    if (a1 > a0)
        S->nodes[a0].rdep0 = (int32_t)base;
}

/* Step 5. Pass 1, program by program: a program that shares another's instructions is copied
 * from that one's template under its own names (share()); the others, and a sharer whose template
 * does not serve, go the long way (read_program, lay_out_rdeps), and a program that others share
 * leaves its template. posmap holds the program's positions in its groups meanwhile. */
static int pass1(st__sim *S, build *B, st_error *err) {
    const st_lowered *l = S->l;
    int rc = 0;
    for (int p = 0; p < l->nranks; p++) {
        const st_program *pg = &l->progs[p];
        for (int32_t a = B->mship_off[p]; a < B->mship_off[p + 1]; a++)
            B->posmap[B->mship[2 * a]] = B->mship[2 * a + 1];
        int32_t q = pg->like ? (int32_t)(pg->like - l->progs) : -1;
        int r = q >= 0 && q < p && B->tm[q].made ? share(S, B, &B->tm[q], q, p, &B->rec[p]) : 1;
        if (r < 0)
            goto nomem;
        if (r > 0) {
            if (pg->like) /* a sharer the long way may grow the lists: the prefaulter must not follow them */
                prefault_stop(&B->pf);
            size_t c0 = B->colls.n, q0 = B->p2ps.n;
            int64_t base = B->racc, ndeps = 0;
            if (read_program(S, B, p, &ndeps))
                goto nomem;
            if (B->racc + ndeps >= INT32_MAX)
                BAD("too many dependencies");
            lay_out_rdeps(S, B, p);
            B->rec[p] = (prog_rec){-1, 0, c0, B->colls.n, q0, B->p2ps.n};
            for (size_t x = q0; x < B->p2ps.n; x += IV) { /* route and latency parked for the pairing */
                S->nodes[B->p2ps.v[x]].route = B->p2ps.v[x + 3];
                S->nodes[B->p2ps.v[x]].link = B->p2ps.v[x + 4];
            }
            if (B->shared[p] && !pg->like && tmpl_make(S, B, p, c0, q0, base))
                goto nomem;
        }
        for (int32_t a = B->mship_off[p]; a < B->mship_off[p + 1]; a++) {
            B->posmap[B->mship[2 * a]] = -1;
            B->kcount[B->mship[2 * a]] = 0; /* (a program's COLLs are of its groups: all reset) */
        }
    }
    S->nodes[S->total].rdep0 = (int32_t)B->racc;
    prefault_stop(&B->pf);
    goto out;
nomem:
    rc = st_error_set(err, ST_ENOMEM, NULL, NULL, "out of memory");
out:
    return rc;
}

/* Step 6a. Collective slots, empty: one per (group, k) up to the most COLLs of the group in one
 * program, its members in the group's order. */
static int make_slots(st__sim *S, build *B, st_error *err) {
    const st_lowered *l = S->l;
    int rc = 0;
    int64_t ns = 0, nm = 0;
    if (!(S->slot_base = malloc((size_t)(l->ngroups + 1) * sizeof *S->slot_base)))
        goto nomem;
    for (int g = 0; g < l->ngroups; g++) {
        S->slot_base[g] = (int32_t)ns;
        ns += B->kmax[g];
        nm += (int64_t)B->kmax[g] * l->groups[g].n;
        if (nm >= INT32_MAX)
            BAD("too many collectives");
    }
    S->slot_base[l->ngroups] = (int32_t)ns;
    S->nslots = (int32_t)ns;
    if (!(S->slots = calloc((size_t)(ns > 0 ? ns : 1), sizeof *S->slots)) ||
        !(S->slot_grp = malloc((size_t)(ns > 0 ? ns : 1) * sizeof *S->slot_grp)) ||
        !(S->slot_mem = malloc((size_t)(nm > 0 ? nm : 1) * sizeof *S->slot_mem)))
        goto nomem;
    int32_t m = 0;
    for (int g = 0; g < l->ngroups; g++)
        for (int k = 0; k < B->kmax[g]; k++) {
            st__slot *sl = &S->slots[S->slot_base[g] + k];
            sl->n = l->groups[g].n;
            sl->mem = m;
            sl->route = -1;
            S->slot_grp[S->slot_base[g] + k] = g;
            for (int j = 0; j < sl->n; j++)
                S->slot_mem[m + j] = -1;
            m += sl->n;
        }
    goto out;
nomem:
    rc = st_error_set(err, ST_ENOMEM, NULL, NULL, "out of memory");
out:
    return rc;
}

/* Step 6b. Each program's collectives into their slots, at the program's positions in its groups;
 * a slot takes the route its members name (the first that names one) and their longest latency. */
static void fill_slots(st__sim *S, build *B) {
    for (int p = 0; p < S->l->nranks; p++) {
        entries E = colls_of(S, B, p);
        const int32_t *rto = E.names ? E.names + B->tm[B->rec[p].via].ng : NULL;
        for (int32_t a = B->mship_off[p]; a < B->mship_off[p + 1]; a++)
            B->posmap[B->mship[2 * a]] = B->mship[2 * a + 1];
        for (size_t x = 0; x < E.n; x += IV) {
            const int32_t *v = &E.e[x];
            int32_t g = v[0] + E.base, grp = E.names ? E.names[v[1]] : v[1];
            int32_t route = !E.names ? v[3] : v[3] >= 0 ? rto[v[3]] : -1;
            float lat;
            memcpy(&lat, &v[4], sizeof lat);
            int32_t s = S->slot_base[grp] + v[2];
            st__slot *sl = &S->slots[s];
            S->nodes[g].link = s;
            S->slot_mem[sl->mem + B->posmap[grp]] = g;
            if (sl->route < 0)
                sl->route = route;
            if (lat > sl->lat_s)
                sl->lat_s = lat;
        }
        for (int32_t a = B->mship_off[p]; a < B->mship_off[p + 1]; a++)
            B->posmap[B->mship[2 * a]] = -1;
    }
}

/* Step 6c. Every member of a slot runs for the longest of their durations; with links, the slot's
 * data is one flow on its route, with the longest latency after it. */
static void time_slots(st__sim *S) {
    for (int32_t s = 0; s < S->nslots; s++) {
        st__slot *sl = &S->slots[s];
        double d = 0;
        for (int j = 0; j < sl->n; j++) {
            int32_t g = S->slot_mem[sl->mem + j];
            if (g >= 0 && S->nodes[g].dur_s > d)
                d = S->nodes[g].dur_s;
        }
        if (sl->route < 0 || S->net.rt[sl->route].n == 0 || !(d - sl->lat_s > 0))
            sl->route = -1;
        else
            sl->work_s = d - sl->lat_s;
        for (int j = 0; j < sl->n; j++)
            if (S->slot_mem[sl->mem + j] >= 0) {
                S->nodes[S->slot_mem[sl->mem + j]].dur_s = d;
                S->nodes[S->slot_mem[sl->mem + j]].route = sl->route;
            }
    }
}

/* Step 7. The run's state: memory per rank, the batch of ends at one instant, the flows (a flow
 * runs a rendezvous, which holds a stream of each member: at most one per stream). -1: out of
 * memory. */
static int alloc_run(st__sim *S) {
    size_t nr = (size_t)S->l->nranks;
    if (!(S->rk = st__alloc_big(nr * sizeof *S->rk)) || !(S->batch = malloc(nr * ST_STREAMS * sizeof *S->batch)))
        return -1;
    memset(S->rk, 0, nr * sizeof *S->rk);
    return S->net.nln > 0 ? st__net_alloc_flows(&S->net, (int32_t)nr * ST_STREAMS) : 0;
}

static void build_free(build *B, int nr) {
    prefault_stop(&B->pf);
    st_rank_index_destroy(&B->ix);
    free(B->shared);
    free(B->mship_off);
    free(B->mship);
    free(B->posmap);
    free(B->kcount);
    free(B->kmax);
    free(B->colls.v);
    free(B->p2ps.v);
    if (B->tm)
        for (int p = 0; p < nr; p++)
            tmpl_free(&B->tm[p]);
    free(B->tm);
    free(B->rec);
    free(B->chans.v);
    free(B->gmap);
    free(B->rmap);
    free(B->pmap);
    free(B->gmark);
    free(B->names.v);
}

int st__sim_setup(st__sim *S, st_error *err) {
    const st_lowered *l = S->l;
    build B;
    pairing X = {0};
    int rc;
    memset(&B, 0, sizeof B);
    if (l->nranks <= 0 || !l->progs)
        return st_error_set(err, ST_EINVAL, NULL, NULL, "nothing to simulate: no ranks");
    if ((rc = st_program_validate(l, err)))
        return rc;
    if ((rc = st_rank_index_init(&B.ix, l, err)) || (rc = number(S, &B, err)) || (rc = memberships(S, &B, err)))
        goto out;
    if (alloc_pass1(S, &B))
        goto nomem;
    if ((rc = st__net_build(&S->net, l, &B.ix, err)))
        goto out;
    B.net = S->net.nln > 0;
    if (alloc_templates(S, &B))
        goto nomem;
    if ((rc = pass1(S, &B, err)))
        goto out;
    /* the sends and receives are paired on a second thread while this one makes the slots */
    X = (pairing){.S = S, .B = &B};
    X.running = pthread_create(&X.thread, NULL, pair_run, &X) == 0;
    if (!X.running)
        pair_run(&X);
    if ((rc = make_slots(S, &B, err)))
        goto out;
    fill_slots(S, &B);
    time_slots(S);
    free(B.colls.v); /* done with: room for what comes */
    B.colls.v = NULL;
    if (X.running)
        pthread_join(X.thread, NULL);
    X.running = 0;
    if (X.rc)
        goto nomem;
    free(B.p2ps.v);
    B.p2ps.v = NULL;
    if (alloc_run(S))
        goto nomem;
    goto out;
nomem:
    rc = st_error_set(err, ST_ENOMEM, NULL, NULL, "out of memory");
out:
    if (X.running)
        pthread_join(X.thread, NULL);
    build_free(&B, l->nranks);
    return rc;
}
