/* sim.c: the discrete-event simulator, the first interpreter of a lowered plan (program.h).
 *
 * The engine only advances the clock (SimGrid's lesson): an event is "instruction g ends at time t"
 * or "the data of flow f is through at time t"; everything else (an instruction becoming ready, a
 * rendezvous completing, a stream moving on) happens while handling an end. Events sit in a queue
 * ordered by time and, among equal times, by the order they were pushed (a radix heap with buckets
 * in push order), so the same input gives the same run, the same statistics and the same trace
 * bytes (libuv's timers order equal times by a sequence number for the same reason).
 *
 * Model (the semantics of program.h, nothing more):
 * - An instruction is ready when the previous instruction of its stream and its deps have ended:
 *   a counter `pending` per instruction (1 for a stream predecessor + 1 per distinct dep) is
 *   decremented as those end; at 0 the instruction is "reached".
 * - COMPUTE starts when reached and ends dur_s later.
 * - COLL: the k-th COLL of group g in each member's program (k counted per group, in program order)
 *   forms one rendezvous slot; when the last member reaches it, all members start at that moment
 *   (the latest arrival, since events are handled in time order) and end max(dur_s) later.
 * - SEND/RECV pair by (sender, receiver, tag); when both are reached they start together and end
 *   max(dur_s) later. Duplicate keys pair in program order.
 * - At equal times every end of the batch is applied (frees included) before anything it released
 *   starts (allocations), so a free and an alloc at the same instant never add up to a false peak.
 * - Memory: base_bytes + alloc_bytes at start - free_bytes at end, per rank. With a positive limit,
 *   the first rank to exceed it stops the run: out->oom names the rank and the instruction (ins -1
 *   when base_bytes alone exceed it). Returns 0: the caller decides what an OOM means; the
 *   statistics then cover the run up to the stop.
 * - When the queue runs dry with instructions not run, the programs deadlock: ST_EINVAL, with the
 *   root cause found by following "waits for" links from the first instruction that never ran
 *   (an unmatched send/recv, a collective a member never reaches, or a circular wait).
 *
 * Shared links (program.h, "Network"; only when the program describes links). A transfer whose
 * route crosses links runs as a flow: its bandwidth part, dur_s - latency_s, is work at the
 * route's rate (`speed` 1 = alone), followed by its latency part, which nothing stretches. Links
 * are shared max-min fairly (progressive filling, the SimGrid/Bertsekas-Gallager fluid model):
 * every flow gets the same rate until it reaches its own rate alone or one of its links fills,
 * where a link with capacity c carries sum(count x rate) of the flows crossing it. Whenever a flow
 * starts or ends, the rates are recomputed only where they can change and the completions of the
 * flows whose rate changed are rescheduled:
 * - a link is "full" when the flows crossing it, each at its rate alone, would exceed it
 *   (demand > capacity); a link that is not full limits nobody;
 * - a flow that starts on links that are not full runs alone (speed 1, no recomputation): the
 *   common case, since the lowering gives each transfer the share of its links the cost model
 *   assumes, which fills a link exactly when all GPUs of a node communicate at once;
 * - otherwise the flows connected to it through full links (and, when a flow ends, those on the
 *   links it left full) are re-shared, and only their completions move.
 * A flow whose completion moves pushes a new event and leaves the old one behind, stale (its
 * version number tells). Every end at an instant, those of instructions whose flow ended at that
 * instant included, is applied before anything it releases starts. Links that every route
 * crosses alike (the ports of the ranks one representative stands for) carry the same load at all
 * times; setup keeps one of each such set (exact, and it makes a representative's route as short
 * as one rank's).
 *
 * Statistics per rank (st_rank_stats):
 * - busy_s[s]: sum of (end - start) of the instructions of stream s; for COLL/SEND/RECV the
 *   transfer only, not the wait for the peers (a stream waiting on a rendezvous is idle).
 * - bd_s[k]: the same time split by what it counts as (program.h, st_bd: the estimate's breakdown
 *   parts), so the two breakdowns read alike; streams overlap, so the parts can add up to more
 *   than the iteration.
 * - compute_idle_s = iteration_time_s - busy_s[compute]: the iteration is the same for all ranks.
 * - bubble_s, the pipeline bubble: compute-stream idle time that a pipeline receive ended. An idle
 *   gap before compute-stream instruction X (from the end of X's stream predecessor, or 0) counts
 *   when X itself is a RECV (the whole gap up to the transfer's start), or when the last thing X
 *   waited for was a RECV dependency (the gap up to that RECV's end). Waits for collectives, for
 *   other deps and the idle tail after a rank's last compute are not bubble (they are in
 *   compute_idle_s). For 1F1B with pp stages this gives (pp-1)(t_f+t_b) on the first stage, whose
 *   every wait is for a gradient, and (pp-1)t_f on the last (its idle tail is drain, not receive).
 *
 * Workload facts behind the layout: the 1T-parameter model on 3,072 GPUs lowers to 64 programs of
 * ~5,000 instructions (one representative rank per stage) or to 3,072 of them (every rank, ~1.5e7
 * instructions); the queue holds about one event per stream per rank (a stream runs one
 * instruction at a time) besides stale flow events, and its arrays only grow to that; nothing is
 * allocated per event.
 * Instructions are numbered globally (gid = offset of the rank + index), all runtime state is in
 * flat arrays, and per instruction it is one 32-byte node (start times are kept per stream).
 *
 * Setup reads each instruction array once: a program that shares another's (program.h) is copied
 * from that one's nodes under its own names, checked once per name (share()). The memory it fills
 * is faulted in ahead of it by a second thread, and the sends and receives are paired on that
 * thread while this one makes the collective slots: the run itself is one thread, and its result
 * does not depend on the other (the same bytes either way).
 */
#define _DEFAULT_SOURCE /* madvise's MADV_HUGEPAGE */
#include "src/sim/sim.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

enum { S_WAIT, S_REACHED, S_RUNNING, S_ENDED };
/* node.state holds the S_* state in its low bits, these flags, and in its high four bits what its
 * time counts as (st_bd), so that the common path never touches the (large, cold) st_ins record */
enum { F_ALLOC = 4, F_FREE = 8, BD_SHIFT = 4 };
#define STATE(nd) ((nd)->state & 3)
#define SET_STATE(nd, s) ((nd)->state = (uint8_t)(((nd)->state & ~3) | (s)))

typedef struct node {
    /* COLL/SEND/RECV: the rendezvous' longest; when it runs as a flow (route >= 0) the send's holds
     * the time of its data alone and the receive's the latency after the data (a collective keeps
     * both in its slot) */
    double dur_s;
    int32_t next;                         /* next instruction of the same stream on this rank, -1 */
    int32_t link;                         /* SEND/RECV: partner gid (-1 unmatched); COLL: slot */
    int32_t rdep0;                        /* reverse deps: rdeps[rdep0 .. nodes[gid + 1].rdep0) */
    int32_t prog;                         /* program index */
    int32_t route;                        /* COLL/SEND/RECV that runs as a flow: its route; else -1 */
    uint8_t kind, stream, pending, state; /* state: S_* | F_* */
} node;

/* a flow in progress: the data of a collective slot or of a send/recv pair */
typedef struct flow {
    double rem_s;    /* work left, in seconds at speed 1 */
    double speed;    /* rate / the route's rate alone, in (0, 1]; 0 = not yet scheduled */
    double t_last;   /* when rem_s was brought up to date */
    double finish;   /* t_last + rem_s / speed */
    double rate;     /* bytes/s per crossing rank, alone (the route's) */
    double new_rate; /* water-filling result */
    double lat_s;    /* the latency part, after the data */
    int32_t route;
    int32_t slot;    /* COLL: its slot; else -1 */
    int32_t a, b;    /* SEND/RECV: the send's and the receive's gids */
    uint32_t ver;    /* its schedule: bumped whenever its completion moves */
    int32_t mark, frozen;
    int32_t next_free;
} flow;

/* a (merged) link at run time */
typedef struct lnk {
    double cap;      /* bytes/s */
    double demand;   /* sum of count x rate alone of the flows on it */
    double rem, wsum; /* water-filling: capacity not taken by frozen flows, counts of the others */
    int32_t n, capn; /* flows on it: fl[2k] = flow, fl[2k + 1] = count */
    int32_t *fl;
    int32_t mark;
    int32_t rank, tid; /* trace: the rank's thread tid shows it; rank -1: not shown */
    const char *name;  /* borrowed from the program's st_link */
    int32_t alike;     /* links of the program it stands for (merged: crossed alike) */
    /* trace: the interval being shown */
    double since, util;
    int32_t shown_n;
    const char *shown_label;
} lnk;

typedef struct slot {
    int32_t arrived;
    int32_t n;     /* group size */
    int32_t mem;   /* members' gids: slot_mem[mem .. mem + n), -1 where a member has no such COLL */
    int32_t route; /* runs as a flow on this route; -1: takes the members' longest duration */
    double lat_s;  /* flow: the largest latency_s of its members, after the data */
    double work_s; /* flow: the data alone (the longest duration - lat_s) */
} slot;

typedef struct ev {
    uint64_t t;  /* the time's IEEE-754 bits: times are >= 0, where the bits order as the values */
    int32_t id;  /* an instruction's gid; -1 - f: the data of flow f is through */
    uint32_t ver; /* flow: its schedule when pushed (a later one makes this one stale) */
} ev;

/* the event queue's bucket: events, in push order */
typedef struct bucket {
    ev *v;
    int32_t n, cap;
} bucket;

typedef struct sim {
    const st_lowered *l;
    double limit_bytes;
    st_trace *trace;
    st_sim_result *out;
    int64_t total;
    int32_t *off;    /* nranks + 1: gid of each program's first instruction */
    node *nodes;     /* total + 1 (a sentinel closes the last rdep range) */
    double *start_s; /* nranks * ST_STREAMS: start of the instruction running on each stream */
    int32_t *rdeps;
    slot *slots;
    int32_t nslots;
    int32_t *slot_mem;
    int32_t *slot_grp;        /* per slot: its group */
    int32_t *slot_base;       /* per group (ngroups + 1): its first slot; slot - slot_base[group] = k */
    double *mem;              /* nranks: current bytes */
    double *last_end_compute; /* nranks */
    bucket q[65];     /* the event queue (a radix heap over the time bits, see below) */
    int32_t q_head;   /* the next event of bucket 0 */
    uint64_t q_last;  /* the time (bits) of the last event taken; every queued one is >= it */
    uint64_t q_mask;  /* bit b - 1 set: bucket b (1..64) holds events */
    int64_t nq;       /* events queued, stale flow events included */
    int32_t *batch;
    int64_t ended;
    int stop; /* OOM */
    /* shared links */
    lnk *ln;
    int32_t nln;
    int32_t *rt_first, *rt_n; /* merged routes: hops in hop_link/hop_count[rt_first .. + rt_n) */
    double *rt_rate;
    int32_t *hop_link, *hop_count;
    flow *fl;
    int32_t capfl, free_fl; /* free_fl: head of the free list (chained through next_free), -1 */
    int32_t stamp;
    int32_t *q_fl, *q_ln; /* re-sharing work lists */
    int32_t nq_fl, nq_ln, capq_fl, capq_ln;
} sim;


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

/* GCC's and Clang's builtins, with plain C where a compiler lacks them */
#if defined(__GNUC__) || defined(__clang__)
#define PREFETCH(p) __builtin_prefetch(p)
static inline int high_bit(uint64_t x) { return 63 - __builtin_clzll(x); } /* x != 0 */
static inline int low_bit(uint64_t x) { return __builtin_ctzll(x); }       /* x != 0 */
#else
#define PREFETCH(p) ((void)(p))
static inline int high_bit(uint64_t x) {
    int b = 0;
    while (x >>= 1)
        b++;
    return b;
}
static inline int low_bit(uint64_t x) {
    int b = 0;
    while (!(x & 1))
        x >>= 1, b++;
    return b;
}
#endif

static double wall_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ------------------------------------------------------------ event queue */

static inline uint64_t time_bits(double t) {
    uint64_t b;
    memcpy(&b, &t, sizeof b);
    return b;
}

static inline double bits_time(uint64_t b) {
    double t;
    memcpy(&t, &b, sizeof t);
    return t;
}

/* The event queue is a radix heap (Ahuja, Mehlhorn, Orlin and Tarjan 1990): event times never go
 * below the last one taken (an instruction or a flow ends no earlier than now), so an event goes to
 * bucket b = the highest bit in which its time's bits differ from the last taken time (0: equal),
 * and taking an event only looks into bucket 0 until it is empty; then the lowest non-empty bucket
 * is spread over the buckets below it around its smallest time. Each event moves a few times at
 * most, along arrays it appends to in order, where a binary heap chased a pointer per level
 * through a heap of every rank's streams. Buckets keep push order and spreading keeps it among
 * equal times, so equal times come out in the order they were pushed. */
static inline int q_bucket(uint64_t t, uint64_t last) {
    uint64_t x = t ^ last;
    return x ? high_bit(x) + 1 : 0;
}

static void q_push_ev(sim *S, ev e) {
    bucket *B = &S->q[q_bucket(e.t, S->q_last)];
    if (B->n == B->cap) {
        int32_t cap = B->cap ? 2 * B->cap : 256;
        ev *v = realloc(B->v, (size_t)cap * sizeof *v);
        if (!v) {
            S->stop = 2;
            return;
        }
        B->v = v;
        B->cap = cap;
    }
    B->v[B->n++] = e;
    if (B != S->q)
        S->q_mask |= 1ull << (B - S->q - 1);
    S->nq++;
}

static inline void heap_push(sim *S, double t, int32_t gid) { q_push_ev(S, (ev){time_bits(t), gid, 0}); }

/* the next event's time (bits), filling bucket 0 if it is empty; the queue must not be empty */
static uint64_t q_top(sim *S) {
    bucket *z = &S->q[0];
    if (S->q_head < z->n)
        return z->v[S->q_head].t;
    z->n = S->q_head = 0;
    int b = low_bit(S->q_mask) + 1;
    bucket *B = &S->q[b];
    uint64_t m = B->v[0].t;
    for (int32_t i = 1; i < B->n; i++)
        if (B->v[i].t < m)
            m = B->v[i].t;
    S->q_last = m;
    S->q_mask &= ~(1ull << (b - 1));
    int32_t n = B->n;
    B->n = 0;
    for (int32_t i = 0; i < n; i++) { /* every one lands below b: push keeps order, no growth of B */
        S->nq--;
        q_push_ev(S, B->v[i]);
    }
    return m;
}

/* takes the next event (after q_top) */
static inline ev q_pop(sim *S) {
    S->nq--;
    return S->q[0].v[S->q_head++];
}

/* ------------------------------------------------------------ names for messages and traces */

static const char *phase_cat(st_phase p) {
    switch (p) {
    case ST_PHASE_FWD: return "fwd";
    case ST_PHASE_BWD: return "bwd";
    case ST_PHASE_BWD_INPUT: return "bwd-input";
    case ST_PHASE_BWD_WEIGHT: return "bwd-weight";
    case ST_PHASE_RECOMPUTE: return "recompute";
    case ST_PHASE_OPTIMIZER: return "optimizer";
    default: return "other";
    }
}

static const char *ins_cat(const st_ins *in) {
    switch (in->kind) {
    case ST_INS_COMPUTE: return phase_cat(in->phase);
    case ST_INS_COLL: return "coll";
    case ST_INS_SEND: return "send";
    case ST_INS_RECV: return "recv";
    }
    return "other";
}

static const char *ins_label(const st_ins *in) { return in->label && in->label[0] ? in->label : ins_cat(in); }

static const char *group_kind_name(st_group_kind k) {
    static const char *const names[ST_GRP_COUNT] = {"tp", "cp", "ep", "dp", "pp"};
    return (unsigned)k < ST_GRP_COUNT ? names[k] : "?";
}

static inline const st_ins *ins_of(const sim *S, int32_t gid) {
    int32_t p = S->nodes[gid].prog;
    return &S->l->progs[p].ins[gid - S->off[p]];
}

static inline int rank_of(const sim *S, int32_t gid) { return S->l->progs[S->nodes[gid].prog].rank; }

static const char *flow_label(const sim *S, const flow *F) {
    int32_t g = F->a;
    if (F->slot >= 0) /* it runs: every member is there */
        g = S->slot_mem[S->slots[F->slot].mem];
    return ins_label(ins_of(S, g));
}

/* "rank R instruction I (LABEL, mb M)" */
static void describe(const sim *S, int32_t gid, char *buf, size_t n) {
    const st_ins *in = ins_of(S, gid);
    int p = S->nodes[gid].prog;
    int len =
        snprintf(buf, n, "rank %d instruction %d (%s", S->l->progs[p].rank, (int)(gid - S->off[p]), ins_label(in));
    if (len < 0 || (size_t)len >= n)
        return;
    if (in->chunk > 0)
        len += snprintf(buf + len, n - (size_t)len, ", chunk %d", in->chunk);
    if ((size_t)len >= n)
        return;
    if (in->mb >= 0)
        len += snprintf(buf + len, n - (size_t)len, ", mb %d", in->mb);
    if ((size_t)len >= n)
        return;
    snprintf(buf + len, n - (size_t)len, ")");
}

/* ------------------------------------------------------------ shared links */

/* a link is full when its flows, each at its rate alone, would exceed it; the margin keeps links
 * that the lowering fills exactly (every GPU of a node at its share) from counting as full */
static inline int link_full(const lnk *L) { return L->demand > L->cap * (1 + 1e-9); }

/* a flow's new speed takes effect at t: bring its work up to date and move its completion */
static void flow_schedule(sim *S, int32_t f, double speed, double t) {
    flow *F = &S->fl[f];
    if (F->speed > 0) {
        F->rem_s -= (t - F->t_last) * F->speed;
        if (F->rem_s < 0)
            F->rem_s = 0;
    }
    F->t_last = t;
    F->speed = speed;
    F->finish = t + (speed == 1 ? F->rem_s : F->rem_s / speed);
    q_push_ev(S, (ev){time_bits(F->finish), -1 - f, ++F->ver});
}

static const char *flow_label(const sim *S, const flow *F);

/* trace: the link's load changed at t; close the interval shown so far */
static void link_show(sim *S, lnk *L, double t) {
    double load = 0;
    for (int32_t k = 0; k < L->n; k++) {
        const flow *F = &S->fl[L->fl[2 * k]];
        load += L->fl[2 * k + 1] * F->rate * F->speed;
    }
    double util = load / L->cap;
    const char *label = L->n == 1 ? flow_label(S, &S->fl[L->fl[0]]) : NULL;
    if (L->n == L->shown_n && label == L->shown_label && fabs(util - L->util) <= 1e-9)
        return;
    if (L->shown_n > 0 && t > L->since) {
        char buf[32];
        if (L->tid < 0) { /* first interval: name the thread */
            char name[64];
            if (L->alike > 1)
                snprintf(name, sizeof name, "%s (+%d alike)", L->name, (int)L->alike - 1);
            else
                snprintf(name, sizeof name, "%s", L->name);
            L->tid = -L->tid;
            st_trace_thread(S->trace, L->rank, L->tid, name);
        }
        if (!L->shown_label)
            snprintf(buf, sizeof buf, "%d flows", (int)L->shown_n);
        st_trace_link(S->trace, L->rank, L->tid, L->since, t, L->shown_label ? L->shown_label : buf, L->shown_n,
                      L->util);
    }
    L->since = t;
    L->shown_n = L->n;
    L->util = util;
    L->shown_label = label;
}

static void show_links_of(sim *S, int32_t f, double t) {
    int32_t r = S->fl[f].route;
    for (int32_t h = S->rt_first[r], e = h + S->rt_n[r]; h < e; h++) {
        lnk *L = &S->ln[S->hop_link[h]];
        if (L->rank >= 0)
            link_show(S, L, t);
    }
}

/* Max-min fair rates for the flows queued in q_fl (marked with the current stamp): first the flows
 * and full links connected to them through full links, then progressive filling over those, then
 * new completions for the flows whose speed changed. */
static void reshare(sim *S, double t) {
    int32_t stamp = S->stamp;
    S->out->reshares++;
    S->nq_ln = 0;
    for (int32_t i = 0; i < S->nq_fl; i++) {
        int32_t r = S->fl[S->q_fl[i]].route;
        for (int32_t h = S->rt_first[r], e = h + S->rt_n[r]; h < e; h++) {
            int32_t l = S->hop_link[h];
            lnk *L = &S->ln[l];
            if (L->mark == stamp || !link_full(L))
                continue;
            L->mark = stamp;
            S->q_ln[S->nq_ln++] = l;
            for (int32_t k = 0; k < L->n; k++) {
                flow *G = &S->fl[L->fl[2 * k]];
                if (G->mark != stamp) {
                    G->mark = stamp;
                    S->q_fl[S->nq_fl++] = L->fl[2 * k];
                }
            }
        }
    }
    for (int32_t i = 0; i < S->nq_ln; i++) {
        lnk *L = &S->ln[S->q_ln[i]];
        L->rem = L->cap;
        L->wsum = 0;
        for (int32_t k = 0; k < L->n; k++)
            L->wsum += L->fl[2 * k + 1];
    }
    for (int32_t i = 0; i < S->nq_fl; i++)
        S->fl[S->q_fl[i]].frozen = 0;
    /* progressive filling: every unfrozen flow has the same rate x; raise x until a flow reaches
     * its rate alone or a link fills, freeze those flows, repeat */
    int32_t left = S->nq_fl;
    double level = 0;
    while (left > 0) {
        double x = INFINITY;
        for (int32_t i = 0; i < S->nq_ln; i++) {
            const lnk *L = &S->ln[S->q_ln[i]];
            if (L->wsum > 0 && L->rem / L->wsum < x)
                x = L->rem / L->wsum;
        }
        for (int32_t i = 0; i < S->nq_fl; i++) {
            const flow *F = &S->fl[S->q_fl[i]];
            if (!F->frozen && F->rate < x)
                x = F->rate;
        }
        if (x < level)
            x = level; /* rounding; the level never goes down */
        level = x;
        double lim = x * (1 + 1e-12);
        for (int32_t i = 0; i < S->nq_fl; i++) {
            flow *F = &S->fl[S->q_fl[i]];
            if (F->frozen)
                continue;
            if (F->rate <= lim) {
                F->new_rate = F->rate;
                F->frozen = 2;
                continue;
            }
            for (int32_t h = S->rt_first[F->route], e = h + S->rt_n[F->route]; h < e; h++) {
                const lnk *L = &S->ln[S->hop_link[h]];
                if (L->mark == stamp && L->wsum > 0 && L->rem / L->wsum <= lim) {
                    F->new_rate = x;
                    F->frozen = 2;
                    break;
                }
            }
        }
        for (int32_t i = 0; i < S->nq_fl; i++) {
            flow *F = &S->fl[S->q_fl[i]];
            if (F->frozen != 2)
                continue;
            F->frozen = 1;
            left--;
            for (int32_t h = S->rt_first[F->route], e = h + S->rt_n[F->route]; h < e; h++) {
                lnk *L = &S->ln[S->hop_link[h]];
                if (L->mark == stamp) {
                    L->rem -= S->hop_count[h] * F->new_rate;
                    L->wsum -= S->hop_count[h];
                }
            }
        }
    }
    for (int32_t i = 0; i < S->nq_fl; i++) {
        int32_t f = S->q_fl[i];
        flow *F = &S->fl[f];
        double sp = F->new_rate >= F->rate ? 1.0 : F->new_rate / F->rate;
        if (sp == F->speed)
            continue;
        flow_schedule(S, f, sp, t);
        if (S->trace)
            show_links_of(S, f, t);
    }
}

static int link_add(sim *S, lnk *L, int32_t f, int32_t count) {
    if (L->n == L->capn) {
        int32_t cap = L->capn ? 2 * L->capn : 4;
        int32_t *grown = realloc(L->fl, (size_t)cap * 2 * sizeof *grown);
        if (!grown) {
            S->stop = 2;
            return -1;
        }
        L->fl = grown;
        L->capn = cap;
    }
    L->fl[2 * L->n] = f;
    L->fl[2 * L->n + 1] = count;
    L->n++;
    return 0;
}

/* the data of a rendezvous starts at t: of collective slot `slot`, or of the send a and receive b */
static void flow_begin(sim *S, int32_t route, int32_t slot, int32_t a, int32_t b, double work_s, double lat_s,
                       double t) {
    int32_t f = S->free_fl;
    flow *F = &S->fl[f];
    S->free_fl = F->next_free;
    uint32_t ver = F->ver; /* events of its previous life stay stale */
    memset(F, 0, sizeof *F);
    F->ver = ver;
    F->rem_s = work_s;
    F->lat_s = lat_s;
    F->t_last = t;
    F->rate = S->rt_rate[route];
    F->route = route;
    F->slot = slot;
    F->a = a;
    F->b = b;
    S->out->flows++;
    int full = 0;
    for (int32_t h = S->rt_first[route], e = h + S->rt_n[route]; h < e; h++) {
        lnk *L = &S->ln[S->hop_link[h]];
        if (link_add(S, L, f, S->hop_count[h]))
            return;
        L->demand += S->hop_count[h] * F->rate;
        full |= link_full(L);
    }
    if (!full) {
        flow_schedule(S, f, 1.0, t); /* alone on every link it crosses */
        if (S->trace)
            show_links_of(S, f, t);
        return;
    }
    S->stamp++;
    F->mark = S->stamp;
    S->q_fl[0] = f;
    S->nq_fl = 1;
    reshare(S, t);
}

/* flow f's data ends at t: its members end after the latency part; the flows it shared full links
 * with get its bandwidth */
static void flow_end(sim *S, int32_t f, double t) {
    flow *F = &S->fl[f];
    if (F->slot >= 0) {
        const slot *sl = &S->slots[F->slot];
        for (int32_t j = 0; j < sl->n; j++)
            heap_push(S, t + F->lat_s, S->slot_mem[sl->mem + j]);
    } else {
        heap_push(S, t + F->lat_s, F->a);
        heap_push(S, t + F->lat_s, F->b);
    }
    S->stamp++;
    S->nq_fl = 0;
    F->mark = S->stamp; /* not a seed itself */
    for (int32_t h = S->rt_first[F->route], e = h + S->rt_n[F->route]; h < e; h++) {
        lnk *L = &S->ln[S->hop_link[h]];
        int was_full = link_full(L);
        double demand = 0;
        for (int32_t k = 0; k < L->n; k++) {
            if (L->fl[2 * k] == f) { /* remove, keeping the others in order */
                memmove(&L->fl[2 * k], &L->fl[2 * k + 2], (size_t)(L->n - k - 1) * 2 * sizeof *L->fl);
                L->n--;
                break;
            }
        }
        for (int32_t k = 0; k < L->n; k++) /* summed afresh: no drift from adding and subtracting */
            demand += L->fl[2 * k + 1] * S->fl[L->fl[2 * k]].rate;
        L->demand = demand;
        if (!was_full)
            continue;
        for (int32_t k = 0; k < L->n; k++) {
            flow *G = &S->fl[L->fl[2 * k]];
            if (G->mark != S->stamp) {
                G->mark = S->stamp;
                S->q_fl[S->nq_fl++] = L->fl[2 * k];
            }
        }
    }
    F->speed = 0;
    if (S->trace)
        show_links_of(S, f, t);
    F->next_free = S->free_fl; /* back on the free list */
    S->free_fl = f;
    if (S->nq_fl > 0)
        reshare(S, t);
}

/* ------------------------------------------------------------ the engine */

static void start(sim *S, int32_t g, double t) {
    node *nd = &S->nodes[g];
    int32_t p = nd->prog;
    SET_STATE(nd, S_RUNNING);
    S->start_s[p * ST_STREAMS + nd->stream] = t;
    if (nd->state & F_ALLOC) {
        const st_ins *in = &S->l->progs[p].ins[g - S->off[p]];
        st_rank_stats *rs = &S->out->ranks[p];
        double m = (S->mem[p] += in->alloc_bytes);
        if (m > rs->memory_peak_bytes) {
            rs->memory_peak_bytes = m;
            rs->memory_peak_ins = (int)(g - S->off[p]);
        }
        if (S->trace)
            st_trace_memory(S->trace, S->l->progs[p].rank, t, m);
        if (S->limit_bytes > 0 && m > S->limit_bytes && !S->out->oom) {
            S->out->oom = 1;
            S->out->oom_rank = S->l->progs[p].rank;
            S->out->oom_ins = (int)(g - S->off[p]);
            S->stop = 1;
        }
    }
    if (nd->kind == ST_INS_RECV && nd->stream == ST_STREAM_COMPUTE)
        S->out->ranks[p].bubble_s += t - S->last_end_compute[p];
    if (nd->route < 0) /* else the end comes when its flow's data is through */
        heap_push(S, t + nd->dur_s, g);
    /* what its end will read: the next instructions and its reverse deps. Thousands of other
     * events pass before then, each on another rank's stretch of these arrays, so without this
     * every one of them is a miss to memory */
    PREFETCH(&S->nodes[nd->next >= 0 ? nd->next : g]);
    PREFETCH(&S->nodes[g + 1]);
    PREFETCH(&S->rdeps[nd->rdep0]);
    PREFETCH(&S->l->progs[p].ins[g - S->off[p] + 1]);
}

/* g's last wait ended at t, released by instruction `by` (-1: ready from the start). */
static void reach(sim *S, int32_t g, double t, int32_t by) {
    node *nd = &S->nodes[g];
    int32_t p = nd->prog;
    if (nd->stream == ST_STREAM_COMPUTE && by >= 0 && S->nodes[by].kind == ST_INS_RECV && nd->kind != ST_INS_RECV)
        S->out->ranks[p].bubble_s += t - S->last_end_compute[p];
    switch ((st_ins_kind)nd->kind) {
    case ST_INS_COMPUTE: start(S, g, t); break;
    case ST_INS_SEND:
    case ST_INS_RECV: {
        int32_t q = nd->link;
        if (q >= 0 && STATE(&S->nodes[q]) == S_REACHED) {
            int32_t snd = nd->kind == ST_INS_SEND ? g : q, rcv = nd->kind == ST_INS_SEND ? q : g;
            start(S, snd, t);
            start(S, rcv, t);
            if (S->nodes[snd].route >= 0)
                flow_begin(S, S->nodes[snd].route, -1, snd, rcv, S->nodes[snd].dur_s, S->nodes[rcv].dur_s, t);
            if (S->trace)
                st_trace_flow(S->trace, rank_of(S, snd), S->nodes[snd].stream, t, rank_of(S, rcv), S->nodes[rcv].stream,
                              t);
        } else {
            SET_STATE(nd, S_REACHED);
        }
        break;
    }
    case ST_INS_COLL: {
        slot *sl = &S->slots[nd->link];
        SET_STATE(nd, S_REACHED);
        if (++sl->arrived == sl->n) {
            for (int32_t j = 0; j < sl->n; j++)
                start(S, S->slot_mem[sl->mem + j], t);
            if (sl->route >= 0)
                flow_begin(S, sl->route, nd->link, -1, -1, sl->work_s, sl->lat_s, t);
        }
        break;
    }
    }
}

static void release(sim *S, int32_t g, double t) {
    const node *nd = &S->nodes[g];
    if (nd->next >= 0 && --S->nodes[nd->next].pending == 0)
        reach(S, nd->next, t, g);
    for (int32_t i = nd->rdep0, e = S->nodes[g + 1].rdep0; i < e; i++) {
        int32_t d = S->rdeps[i];
        if (--S->nodes[d].pending == 0)
            reach(S, d, t, g);
    }
}

static void finish(sim *S, int32_t g, double t) {
    node *nd = &S->nodes[g];
    int32_t p = nd->prog;
    st_rank_stats *rs = &S->out->ranks[p];
    double s = S->start_s[p * ST_STREAMS + nd->stream];
    SET_STATE(nd, S_ENDED);
    S->ended++;
    rs->busy_s[nd->stream] += t - s;
    rs->bd_s[nd->state >> BD_SHIFT] += t - s;
    rs->end_s = t; /* events pop in time order */
    if (nd->stream == ST_STREAM_COMPUTE)
        S->last_end_compute[p] = t;
    if (!(nd->state & F_FREE) && !S->trace)
        return;
    const st_ins *in = &S->l->progs[p].ins[g - S->off[p]];
    if (nd->state & F_FREE) {
        S->mem[p] -= in->free_bytes;
        if (S->trace)
            st_trace_memory(S->trace, S->l->progs[p].rank, t, S->mem[p]);
    }
    if (S->trace)
        st_trace_span(S->trace, S->l->progs[p].rank, nd->stream, s, t, ins_cat(in), ins_label(in), in->chunk, in->mb);
}

static void run(sim *S) {
    /* everything without predecessors is ready at 0, in (rank, program) order */
    for (int64_t g = 0; g < S->total && !S->stop; g++)
        if (S->nodes[g].pending == 0)
            reach(S, (int32_t)g, 0.0, -1);
    while (S->nq > 0 && !S->stop) {
        uint64_t tb = q_top(S);
        double t = bits_time(tb);
        int32_t nb = 0;
        /* every end at t, those that flows ending at t add included, before anything they release:
         * bucket 0 holds exactly the events at t (it is not refilled while times may still be
         * pushed that fall between t and the next bucket's) */
        while (S->q_head < S->q[0].n && !S->stop) {
            ev e = q_pop(S);
            if (e.id < 0) {
                int32_t f = -1 - e.id;
                if (e.ver != S->fl[f].ver || S->fl[f].speed == 0)
                    continue; /* rescheduled, or long done */
                S->out->events++;
                flow_end(S, f, t);
                continue;
            }
            if (S->q_head < S->q[0].n) /* the next one's node, while this one is handled */
                PREFETCH(&S->nodes[S->q[0].v[S->q_head].id >= 0 ? S->q[0].v[S->q_head].id : 0]);
            S->out->events++;
            finish(S, e.id, t);
            S->batch[nb++] = e.id;
        }
        for (int32_t i = 0; i < nb && !S->stop; i++)
            release(S, S->batch[i], t);
    }
}

/* ------------------------------------------------------------ deadlock diagnosis */

/* What g waits for: another instruction (returned), or a root cause written to why (returns -1). */
static int32_t blocker(const sim *S, int32_t g, char *why, size_t n) {
    const node *nd = &S->nodes[g];
    const st_ins *in = ins_of(S, g);
    const st_lowered *l = S->l;
    int32_t p = nd->prog, i = (int32_t)(g - S->off[p]);
    why[0] = '\0';
    if (STATE(nd) == S_WAIT) {
        for (int32_t j = i - 1; j >= 0; j--)
            if (l->progs[p].ins[j].stream == in->stream) {
                if (STATE(&S->nodes[S->off[p] + j]) != S_ENDED)
                    return S->off[p] + j;
                break;
            }
        for (int k = 0; k < 2; k++)
            if (in->dep[k] >= 0 && STATE(&S->nodes[S->off[p] + in->dep[k]]) != S_ENDED)
                return S->off[p] + in->dep[k];
        snprintf(why, n, "never becomes ready");
        return -1;
    }
    if (nd->kind == ST_INS_SEND || nd->kind == ST_INS_RECV) {
        if (nd->link >= 0)
            return nd->link;
        int peer = st_program_rename(&l->progs[p], ST_RENAME_PEER, in->peer);
        if (nd->kind == ST_INS_RECV)
            snprintf(why, n, "waits for a send from rank %d (tag %d) that never comes", peer, in->tag);
        else
            snprintf(why, n, "waits for a receive on rank %d (tag %d) that is never posted", peer, in->tag);
        return -1;
    }
    /* COLL */
    const slot *sl = &S->slots[nd->link];
    int32_t grp = S->slot_grp[nd->link];
    const st_group_def *gd = &l->groups[grp];
    for (int32_t j = 0; j < sl->n; j++)
        if (S->slot_mem[sl->mem + j] < 0) {
            snprintf(why, n, "waits for rank %d, which never reaches collective #%d of group %d (%s, %d ranks)",
                     gd->ranks[j], nd->link - S->slot_base[grp], grp, group_kind_name(gd->kind), gd->n);
            return -1;
        }
    for (int32_t j = 0; j < sl->n; j++) {
        int32_t m = S->slot_mem[sl->mem + j];
        if (STATE(&S->nodes[m]) == S_WAIT)
            return m;
    }
    snprintf(why, n, "waits for a collective that never completes");
    return -1;
}

static int diagnose(sim *S, st_error *err) {
    int64_t never = S->total - S->ended;
    int32_t g = 0;
    while (g < S->total && STATE(&S->nodes[g]) == S_ENDED)
        g++;
    /* follow "waits for" from the first instruction that never ran until a root cause or a cycle */
    char why[256], a[160], b[160], chain[1024];
    uint8_t *seen = calloc((size_t)S->total, 1);
    if (!seen)
        return st_error_set(err, ST_ENOMEM, NULL, NULL, "out of memory");
    chain[0] = '\0';
    int32_t cur = g;
    int rc;
    for (;;) {
        seen[cur] = 1;
        int32_t nx = blocker(S, cur, why, sizeof why);
        describe(S, cur, a, sizeof a);
        if (nx < 0) {
            rc = st_error_set(err, ST_EINVAL, NULL, NULL, "deadlock: %s %s; %lld instructions never ran", a, why,
                              (long long)never);
            break;
        }
        if (seen[nx]) {
            /* a circular wait: print it from nx round to nx */
            size_t len = 0;
            int32_t c = nx;
            int steps = 0;
            do {
                describe(S, c, b, sizeof b);
                int w = snprintf(chain + len, sizeof chain - len, "%s%s", steps ? " waits for " : "", b);
                if (w < 0 || (size_t)w >= sizeof chain - len)
                    break;
                len += (size_t)w;
                c = blocker(S, c, why, sizeof why);
                steps++;
            } while (c >= 0 && c != nx && steps < 8);
            if (c == nx) {
                describe(S, nx, b, sizeof b);
                snprintf(chain + len, sizeof chain - len, " waits for %s", b);
            } else if (c >= 0) {
                snprintf(chain + len, sizeof chain - len, " waits for ...");
            }
            rc = st_error_set(err, ST_EINVAL, NULL, NULL, "deadlock: a circular wait: %s; %lld instructions never ran",
                              chain, (long long)never);
            break;
        }
        cur = nx;
    }
    free(seen);
    return rc;
}

/* ------------------------------------------------------------ setup */

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

typedef struct rank_map {
    int32_t rank, prog;
} rank_map;

static int rank_map_cmp(const void *x, const void *y) {
    const rank_map *a = x, *b = y;
    return (a->rank > b->rank) - (a->rank < b->rank);
}

/* program index of a rank number, -1 when no program has it */
static int32_t find_prog(const rank_map *map, int nranks, int identity, int rank) {
    if (identity)
        return rank >= 0 && rank < nranks ? rank : -1;
    rank_map key = {rank, 0};
    const rank_map *m = bsearch(&key, map, (size_t)nranks, sizeof *map, rank_map_cmp);
    return m ? m->prog : -1;
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

/* the float in the 5th column */
static inline float ivec_f(const ivec *a, size_t at) {
    float w;
    memcpy(&w, &a->v[at + 4], sizeof w);
    return w;
}

#define BAD(...)                                                                                                       \
    do {                                                                                                               \
        rc = st_error_set(err, ST_EINVAL, NULL, NULL, __VA_ARGS__);                                                    \
        goto out;                                                                                                      \
    } while (0)
#define NOMEM()                                                                                                        \
    do {                                                                                                               \
        rc = st_error_set(err, ST_ENOMEM, NULL, NULL, "out of memory");                                                \
        goto out;                                                                                                      \
    } while (0)

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

static int32_t find_prog(const rank_map *map, int nranks, int identity, int rank);

/* The network of program.h: validated; links that exactly the same routes cross the same number of
 * times (with the same capacity) merged into one, since their loads are equal at all times; the
 * merged routes laid out flat. No links or no routes: no network, every transfer takes dur_s. */
static int net_setup(sim *S, const rank_map *map, int identity, st_error *err) {
    const st_lowered *l = S->l;
    int rc = 0;
    int32_t nl = l->nlinks, nrt = l->nroutes;
    link_key *keys = NULL;
    int32_t *off = NULL, *csr = NULL, *rep = NULL, *newid = NULL, *seen = NULL, *ntid = NULL, *leaders = NULL;
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
    /* per link, the (route, count) pairs crossing it, in route order */
    if (!(off = calloc((size_t)nl + 1, sizeof *off)) || !(csr = malloc((size_t)(l->nhops + 1) * 2 * sizeof *csr)) ||
        !(keys = malloc((size_t)nl * sizeof *keys)) || !(rep = malloc((size_t)nl * sizeof *rep)) ||
        !(newid = malloc((size_t)nl * sizeof *newid)) || !(leaders = malloc((size_t)nl * sizeof *leaders)))
        NOMEM();
    for (int32_t k = 0; k < l->nhops; k++)
        off[l->hops[k].link + 1]++;
    for (int32_t i = 0; i < nl; i++)
        off[i + 1] += off[i];
    for (int32_t i = 0; i < nl; i++) {
        uint64_t b;
        memcpy(&b, &l->links[i].bytes_per_s, sizeof b);
        keys[i].h = 1469598103934665603ULL ^ b;
        keys[i].cap = l->links[i].bytes_per_s;
        keys[i].hidden = l->links[i].rank < 0;
        keys[i].id = i;
        rep[i] = off[i]; /* fill position for now */
    }
    for (int32_t r = 0; r < nrt; r++)
        for (int32_t k = l->routes[r].first; k < l->routes[r].first + l->routes[r].n; k++) {
            int32_t i = l->hops[k].link, at = rep[i]++;
            csr[2 * at] = r;
            csr[2 * at + 1] = l->hops[k].count;
            keys[i].h = (keys[i].h ^ ((uint64_t)(uint32_t)r << 32 | (uint32_t)l->hops[k].count)) * 1099511628211ULL;
            keys[i].h ^= keys[i].h >> 29;
        }
    qsort(keys, (size_t)nl, sizeof *keys, link_key_cmp);
    for (int32_t a = 0, b; a < nl; a = b) {
        int32_t nlead = 0;
        for (b = a; b < nl && keys[b].h == keys[a].h && keys[b].cap == keys[a].cap; b++) {
            int32_t i = keys[b].id, j = -1;
            for (int32_t q = 0; q < nlead && j < 0; q++) {
                int32_t c = leaders[q];
                if (off[c + 1] - off[c] == off[i + 1] - off[i] &&
                    !memcmp(&csr[2 * off[c]], &csr[2 * off[i]], (size_t)(off[i + 1] - off[i]) * 2 * sizeof *csr))
                    j = c;
            }
            if (j < 0)
                leaders[nlead++] = j = i;
            rep[i] = j;
        }
    }
    /* merged links, in the order of their leaders; each rank's shown links get threads after its streams */
    if (!(ntid = calloc((size_t)l->nranks, sizeof *ntid)))
        NOMEM();
    int32_t nln = 0;
    for (int32_t i = 0; i < nl; i++)
        newid[i] = rep[i] == i && off[i + 1] > off[i] ? nln++ : -1;
    if (!(S->ln = calloc((size_t)(nln > 0 ? nln : 1), sizeof *S->ln)))
        NOMEM(); /* (S->nln stays 0: sim_free walks ln[0 .. nln)) */
    S->nln = nln;
    for (int32_t i = 0; i < nl; i++)
        if (newid[rep[i]] >= 0)
            S->ln[newid[rep[i]]].alike++;
    for (int32_t i = 0; i < nl; i++) {
        if (newid[i] < 0)
            continue;
        lnk *L = &S->ln[newid[i]];
        int32_t p = l->links[i].rank >= 0 ? find_prog(map, l->nranks, identity, l->links[i].rank) : -1;
        L->cap = l->links[i].bytes_per_s;
        L->name = l->links[i].name;
        L->rank = p >= 0 ? l->links[i].rank : -1;
        L->tid = p >= 0 ? -(ST_STREAMS + ntid[p]++) : 0; /* negative: thread not named yet */
    }
    /* merged routes: hops on merged links, each link once */
    if (!(S->rt_first = malloc((size_t)nrt * sizeof *S->rt_first)) ||
        !(S->rt_n = malloc((size_t)nrt * sizeof *S->rt_n)) || !(S->rt_rate = malloc((size_t)nrt * sizeof *S->rt_rate)) ||
        !(S->hop_link = malloc((size_t)(l->nhops + 1) * sizeof *S->hop_link)) ||
        !(S->hop_count = malloc((size_t)(l->nhops + 1) * sizeof *S->hop_count)) ||
        !(seen = malloc((size_t)(S->nln > 0 ? S->nln : 1) * sizeof *seen)))
        NOMEM();
    for (int32_t m = 0; m < S->nln; m++)
        seen[m] = -1;
    int32_t nh = 0;
    for (int32_t r = 0; r < nrt; r++) {
        S->rt_first[r] = nh;
        S->rt_rate[r] = l->routes[r].bytes_per_s;
        for (int32_t k = l->routes[r].first; k < l->routes[r].first + l->routes[r].n; k++) {
            int32_t m = newid[rep[l->hops[k].link]];
            if (seen[m] == r)
                continue; /* an equal link of this route is already in */
            seen[m] = r;
            S->hop_link[nh] = m;
            S->hop_count[nh++] = l->hops[k].count;
        }
        S->rt_n[r] = nh - S->rt_first[r];
    }
out:
    free(keys);
    free(off);
    free(csr);
    free(rep);
    free(newid);
    free(seen);
    free(ntid);
    free(leaders);
    return rc;
}

/* what an instruction's time counts as (a valid one: pass 1 checks the group first) */
static int bd_of(const st_lowered *l, const st_ins *in) {
    switch (in->kind) {
    case ST_INS_SEND:
    case ST_INS_RECV: return ST_BD_PP;
    case ST_INS_COLL:
        if (in->stream == ST_STREAM_DP || in->stream == ST_STREAM_GATHER)
            return ST_BD_DP; /* data-parallel and ZeRO traffic, the end stages' embedding sum */
        if (in->group < 0 || in->group >= l->ngroups)
            return ST_BD_OTHER;
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

/* pass 1's state beside the setup's own */
typedef struct pass1 {
    const rank_map *map;
    int identity;
    chan_tab chans;
    int32_t *gmap, *rmap, *pmap; /* value -> local number while a template is made; -1 */
    int32_t *gmark, stamp;       /* groups taken by a sharer's names */
    ivec names;                  /* the sharers' names per local number, and their channels */
} pass1;

/* how pass 1 set a program up, for the passes after it: the long way, with its collectives and
 * sends/receives in the setup's lists; or from a template, under the names in pass1.names:
 * groups[ng], routes[nrt], channels[2 x npeer] (receive from, send to each local peer) */
typedef struct prog_rec {
    int32_t via;   /* -1: the long way; else the program whose template it copies */
    size_t names;  /* via >= 0: where its names start */
    size_t c0, c1; /* via < 0: its collectives, colls.v[c0 .. c1) */
    size_t x0, x1; /* via < 0: its sends and receives, p2ps.v[x0 .. x1) */
} prog_rec;

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
static int tmpl_make(sim *S, pass1 *P, tmpl *T, int32_t p, const ivec *colls, size_t c0, const ivec *p2ps, size_t q0,
                     int64_t base, int64_t racc) {
    const st_program *pg = &S->l->progs[p];
    size_t nc = (colls->n - c0) / IV, np = (p2ps->n - q0) / IV;
    T->rdep_base = base;
    T->nrdeps = racc - base;
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
        int32_t lg = local_of(P->gmap, v[1], T->gval, &T->ng);
        if (v[2] + 1 > T->gk[lg])
            T->gk[lg] = v[2] + 1;
        t[0] = v[0] - S->off[p];
        t[1] = lg;
        t[2] = v[2];
        t[3] = v[3] >= 0 ? local_of(P->rmap, v[3], T->rval, &T->nrt) : -1;
        t[4] = v[4];
        T->colls.n += IV;
    }
    for (size_t x = q0; x < p2ps->n; x += IV) {
        const int32_t *v = &p2ps->v[x];
        int32_t *t = &T->p2ps.v[T->p2ps.n];
        int32_t i = v[0] - S->off[p];
        int snd = S->nodes[v[0]].kind == ST_INS_SEND;
        int32_t q = find_prog(P->map, S->l->nranks, P->identity, pg->ins[i].peer); /* checked by the long way */
        int32_t lp = local_of(P->pmap, q, lpeer, &T->npeer);
        T->pval[lp] = pg->ins[i].peer;
        T->pdir[lp] |= (uint8_t)(1 << snd);
        t[0] = i;
        t[1] = 2 * lp + snd;
        t[2] = v[2];
        t[3] = v[3] >= 0 ? local_of(P->rmap, v[3], T->rval, &T->nrt) : -1;
        t[4] = v[4];
        T->p2ps.n += IV;
        T->np2p++;
        T->nsend += snd;
    }
    for (int32_t k = 0; k < T->ng; k++)
        P->gmap[T->gval[k]] = -1;
    for (int32_t k = 0; k < T->nrt; k++)
        P->rmap[T->rval[k]] = -1;
    for (int32_t k = 0; k < T->npeer; k++)
        P->pmap[lpeer[k]] = -1;
    free(lpeer);
    T->made = 1;
    return 0;
}

/* Sets up program p, which runs q's instructions under its own names, from q's template T: the
 * nodes and reverse deps copied to p's numbers, its names (groups, routes, channels) kept in
 * P->names for the passes after this one (R). p's names are checked first, as the long way would:
 * groups it is a member of (and distinct, so that each COLL keeps its k), routes in range, peers
 * that have programs other than p. Returns 0; 1 when a name does not check out (nothing written
 * but perhaps a channel, which costs nothing while empty: the long way then says what is wrong);
 * -1 when out of memory. */
static int share(sim *S, pass1 *P, const tmpl *T, int32_t q, int32_t p, const int32_t *posmap, int32_t *kmax,
                 prog_rec *R, int64_t *racc) {
    const st_lowered *l = S->l;
    const st_program *pg = &l->progs[p];
    int net = S->nln > 0;
    size_t need = (size_t)T->ng + (size_t)T->nrt + 2 * (size_t)T->npeer;
    if (ivec_reserve(&P->names, need))
        return -1;
    int32_t *gto = P->names.v + P->names.n, *rto = gto + T->ng, *chs = rto + T->nrt;
    if (++P->stamp == INT32_MAX) { /* (never in practice) */
        memset(P->gmark, 0, (size_t)(l->ngroups > 0 ? l->ngroups : 1) * sizeof *P->gmark);
        P->stamp = 1;
    }
    for (int32_t k = 0; k < T->ng; k++) {
        int32_t v = st_program_rename(pg, ST_RENAME_GROUP, T->gval[k]);
        if (v < 0 || v >= l->ngroups || posmap[v] < 0 || P->gmark[v] == P->stamp ||
            l->groups[v].kind != l->groups[T->gval[k]].kind) /* (what its time counts as) */
            return 1;
        P->gmark[v] = P->stamp;
        gto[k] = v;
    }
    for (int32_t k = 0; k < T->nrt; k++) {
        int32_t v = st_program_rename(pg, ST_RENAME_ROUTE, T->rval[k]);
        if (net && (v < -1 || v >= l->nroutes))
            return 1;
        rto[k] = net ? v : -1;
    }
    for (int32_t k = 0; k < T->npeer; k++) {
        int32_t v = find_prog(P->map, l->nranks, P->identity, st_program_rename(pg, ST_RENAME_PEER, T->pval[k]));
        if (v < 0 || v == p)
            return 1;
        chs[2 * k] = chs[2 * k + 1] = -1;
        if ((T->pdir[k] & 1) && (chs[2 * k] = chan_of(&P->chans, v, p)) < 0)
            return -1;
        if ((T->pdir[k] & 2) && (chs[2 * k + 1] = chan_of(&P->chans, p, v)) < 0)
            return -1;
    }
    int32_t n = pg->n, dg = S->off[p] - S->off[q];
    if (*racc + T->nrdeps >= INT32_MAX)
        return 1; /* the long way says "too many dependencies" */
    R->via = q;
    R->names = P->names.n;
    P->names.n += need;
    for (int32_t k = 0; k < T->ng; k++)
        if (T->gk[k] > kmax[gto[k]])
            kmax[gto[k]] = T->gk[k];
    int32_t dr = (int32_t)(*racc - T->rdep_base);
    const node *src = &S->nodes[S->off[q]];
    node *dst = &S->nodes[S->off[p]];
    for (int32_t i = 0; i < n; i++) {
        node x = src[i];
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
    int32_t *rd = &S->rdeps[*racc];
    for (int64_t k = 0; k < T->nrdeps; k++)
        rd[k] = rs[k] + dg;
    *racc += T->nrdeps;
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

static entries colls_of(const sim *S, const pass1 *P, const prog_rec *R, const tmpl *tm, const ivec *colls, int p) {
    if (R->via < 0)
        return (entries){colls->v + R->c0, R->c1 - R->c0, 0, NULL};
    return (entries){tm[R->via].colls.v, tm[R->via].colls.n, S->off[p], P->names.v + R->names};
}

static entries p2ps_of(const sim *S, const pass1 *P, const prog_rec *R, const tmpl *tm, const ivec *p2ps, int p) {
    if (R->via < 0)
        return (entries){p2ps->v + R->x0, R->x1 - R->x0, 0, NULL};
    const tmpl *T = &tm[R->via];
    return (entries){T->p2ps.v, T->p2ps.n, S->off[p], P->names.v + R->names + T->ng + T->nrt};
}

/* the pairing of sends and receives, which runs beside the collective slots' pass (they write
 * different nodes) */
typedef struct pairing {
    sim *S;
    const pass1 *P1;
    const prog_rec *rec;
    const tmpl *tm;
    const ivec *p2ps;
    int64_t np2p, nsend;
    int rc; /* -1: out of memory */
    pthread_t thread;
    int running;
} pairing;

static void *pair_run(void *arg) {
    pairing *X = arg;
    sim *S = X->S;
    const pass1 *P1 = X->P1;
    const prog_rec *rec = X->rec;
    const tmpl *tm = X->tm;
    const ivec *p2ps = X->p2ps;
    int64_t np2p = X->np2p, nsend = X->nsend;
    int32_t *cs = NULL, *cr = NULL;
    uint64_t *ks = NULL, *kr = NULL;
    /* send/recv pairs: the i-th send of a (sender, receiver, tag) with the i-th receive, in program
     * order. Pass 1 gave each its channel (sender, receiver) and parked its route in node.route and
     * its latency (a float) in node.link; keys are (tag, gid), and gids ascend in program order. */
    if (np2p > 0) {
        int32_t nc = P1->chans.n;
        if (!(cs = calloc((size_t)nc + 1, sizeof *cs)) || !(cr = calloc((size_t)nc + 1, sizeof *cr)) ||
            !(ks = malloc((size_t)(nsend > 0 ? nsend : 1) * sizeof *ks)) ||
            !(kr = malloc((size_t)(np2p - nsend > 0 ? np2p - nsend : 1) * sizeof *kr))) {
            X->rc = -1;
            goto out;
        }
        for (int p = 0; p < S->l->nranks; p++) {
            entries E = p2ps_of(S, P1, &rec[p], tm, p2ps, p);
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
            entries E = p2ps_of(S, P1, &rec[p], tm, p2ps, p);
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
        for (int32_t c = 0; c < nc; c++) {
            uint64_t *a = ks + cs[c], *b = kr + cr[c];
            size_t na = (size_t)(cs[c + 1] - cs[c]), nb = (size_t)(cr[c + 1] - cr[c]), i = 0, j = 0;
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
                float ls, lr;
                memcpy(&ls, &S->nodes[snd].link, sizeof ls);
                memcpy(&lr, &S->nodes[g].link, sizeof lr);
                int32_t route = S->nodes[snd].route >= 0 ? S->nodes[snd].route : S->nodes[g].route;
                double d = S->nodes[snd].dur_s > S->nodes[g].dur_s ? S->nodes[snd].dur_s : S->nodes[g].dur_s;
                double lat = ls > lr ? ls : lr;
                S->nodes[snd].link = g;
                S->nodes[g].link = snd;
                S->nodes[snd].dur_s = S->nodes[g].dur_s = d;
                S->nodes[snd].route = S->nodes[g].route = -1;
                /* with links: the send keeps the data's time alone, the receive the latency after it */
                if (route >= 0 && S->rt_n[route] > 0 && d - lat > 0) {
                    S->nodes[snd].route = S->nodes[g].route = route;
                    S->nodes[snd].dur_s = d - lat;
                    S->nodes[g].dur_s = lat;
                }
            }
        }
    }
out:
    free(cs);
    free(cr);
    free(ks);
    free(kr);
    return NULL;
}

static int setup(sim *S, st_error *err) {
    const st_lowered *l = S->l;
    int rc = 0, nr = l->nranks, identity = 1;
    rank_map *map = NULL;
    int32_t *last = NULL, *kcount = NULL, *posmap = NULL, *mship_off = NULL, *mship = NULL, *kmax = NULL;
    int32_t *slot_base = NULL; /* = S->slot_base, owned by S */
    pass1 P1 = {0};
    prefault pf = {0};
    tmpl *tm = NULL;
    prog_rec *rec = NULL;
    uint8_t *shared = NULL; /* per program: another shares its instructions */
    pairing X = {0};
    /* collected by pass 1, so that later passes need not look the (large) instruction records up
     * again: collectives (gid, group, k, route, latency) and sends and receives (gid, peer program,
     * tag, route, latency); a latency only splits a time, so a float is precise enough */
    ivec colls = {0}, p2ps = {0};

    if (nr <= 0 || !l->progs)
        BAD("nothing to simulate: no ranks");
    if (l->ngroups < 0 || (l->ngroups > 0 && !l->groups))
        BAD("invalid group table");

    /* ranks -> programs */
    if (!(map = malloc((size_t)nr * sizeof *map)))
        NOMEM();
    for (int p = 0; p < nr; p++) {
        if (l->progs[p].rank < 0)
            BAD("program %d has a negative rank %d", p, l->progs[p].rank);
        if (l->progs[p].rank != p)
            identity = 0;
        map[p].rank = l->progs[p].rank;
        map[p].prog = p;
    }
    qsort(map, (size_t)nr, sizeof *map, rank_map_cmp);
    for (int p = 1; p < nr; p++)
        if (map[p].rank == map[p - 1].rank)
            BAD("two programs claim rank %d", map[p].rank);

    /* instruction numbering */
    if (!(S->off = malloc((size_t)(nr + 1) * sizeof *S->off)) || !(shared = calloc((size_t)nr, sizeof *shared)))
        NOMEM();
    int64_t total = 0;
    for (int p = 0; p < nr; p++) {
        const st_program *pg = &l->progs[p];
        if (pg->n < 0 || (pg->n > 0 && !pg->ins))
            BAD("rank %d: invalid instruction list", pg->rank);
        if (pg->like) { /* shared instructions (program.h): another program's, renamed */
            ptrdiff_t q = pg->like - l->progs;
            if (q < 0 || q >= nr || pg->like->like || pg->like->ins != pg->ins || pg->like->n != pg->n)
                BAD("rank %d: shares the instructions of a program it cannot", pg->rank);
            shared[q] = 1;
            if (pg->nrenames < 0 || (pg->nrenames > 0 && !pg->renames))
                BAD("rank %d: invalid renames", pg->rank);
            for (int k = 1; k < pg->nrenames; k++)
                if (pg->renames[k].what < pg->renames[k - 1].what ||
                    (pg->renames[k].what == pg->renames[k - 1].what && pg->renames[k].from <= pg->renames[k - 1].from))
                    BAD("rank %d: renames not sorted by (what, from)", pg->rank);
        }
        if (!isfinite(pg->base_bytes) || pg->base_bytes < 0)
            BAD("rank %d: base_bytes must be finite and >= 0", pg->rank);
        S->off[p] = (int32_t)total;
        total += pg->n;
        if (total >= INT32_MAX - 1)
            BAD("too many instructions (%lld) to simulate", (long long)total);
    }
    S->off[nr] = (int32_t)total;
    /* pass 1's lists, sized once for the programs that share nobody's instructions (a sharer that
     * must go the long way makes them grow) */
    size_t ncoll = 0, nxfer = 0;
    for (int p = 0; p < nr; p++)
        if (!l->progs[p].like)
            for (int i = 0; i < l->progs[p].n; i++) {
                uint8_t k = l->progs[p].ins[i].kind;
                ncoll += k == ST_INS_COLL;
                nxfer += k == ST_INS_SEND || k == ST_INS_RECV;
            }
    S->total = total;

    /* group membership: for each rank, the (group, position) pairs it is in */
    if (!(mship_off = calloc((size_t)nr + 1, sizeof *mship_off)))
        NOMEM();
    int64_t nmship = 0;
    for (int g = 0; g < l->ngroups; g++) {
        const st_group_def *gd = &l->groups[g];
        if (gd->n < 1 || !gd->ranks)
            BAD("group %d has no members", g);
        for (int j = 0; j < gd->n; j++) {
            int32_t p = find_prog(map, nr, identity, gd->ranks[j]);
            if (p < 0)
                BAD("group %d lists rank %d, which has no program", g, gd->ranks[j]);
            mship_off[p + 1]++;
            nmship++;
        }
    }
    if (nmship >= INT32_MAX)
        BAD("groups too large");
    for (int p = 0; p < nr; p++)
        mship_off[p + 1] += mship_off[p];
    if (!(mship = malloc((size_t)(nmship > 0 ? nmship : 1) * 2 * sizeof *mship)))
        NOMEM();
    {
        int32_t *fill = malloc((size_t)nr * sizeof *fill);
        if (!fill)
            NOMEM();
        memcpy(fill, mship_off, (size_t)nr * sizeof *fill);
        for (int g = 0; g < l->ngroups; g++)
            for (int j = 0; j < l->groups[g].n; j++) {
                int32_t p = find_prog(map, nr, identity, l->groups[g].ranks[j]);
                int32_t at = fill[p]++;
                mship[2 * at] = g;
                mship[2 * at + 1] = j;
            }
        free(fill);
    }

    if (!(S->nodes = st__alloc_big(((size_t)total + 1) * sizeof *S->nodes)) ||
        !(S->start_s = calloc((size_t)nr * ST_STREAMS, sizeof *S->start_s)) ||
        !(last = malloc((size_t)ST_STREAMS * sizeof *last)) ||
        !(kcount = calloc((size_t)(l->ngroups > 0 ? l->ngroups : 1), sizeof *kcount)) ||
        !(kmax = calloc((size_t)(l->ngroups > 0 ? l->ngroups : 1), sizeof *kmax)) ||
        !(posmap = malloc((size_t)(l->ngroups > 0 ? l->ngroups : 1) * sizeof *posmap)))
        NOMEM();
    memset(&S->nodes[total], 0, sizeof *S->nodes); /* pass 1 writes the others */
    if (!(S->rdeps = st__alloc_big(((size_t)2 * (size_t)total + 1) * sizeof *S->rdeps)) || /* <= 2 deps each */
        !(colls.v = st__alloc_big((ncoll * IV + 1) * sizeof *colls.v)) ||
        !(p2ps.v = st__alloc_big((nxfer * IV + 1) * sizeof *p2ps.v)))
        NOMEM();
    colls.cap = ncoll * IV + 1;
    p2ps.cap = nxfer * IV + 1;
    prefault_add(&pf, 0, S->nodes, (size_t)total * sizeof *S->nodes);
    prefault_add(&pf, 1, S->rdeps, (size_t)total * sizeof *S->rdeps); /* about one dep each */
    prefault_add(&pf, 2, colls.v, ncoll * IV * sizeof *colls.v);
    prefault_add(&pf, 3, p2ps.v, nxfer * IV * sizeof *p2ps.v);
    prefault_start(&pf);
    for (int g = 0; g < l->ngroups; g++)
        posmap[g] = -1;
    if ((rc = net_setup(S, map, identity, err)))
        goto out;
    int net = S->nln > 0;
    {
        size_t ng = (size_t)(l->ngroups > 0 ? l->ngroups : 1), nrt = (size_t)(net && l->nroutes > 0 ? l->nroutes : 1);
        P1.map = map;
        P1.identity = identity;
        if (!(tm = calloc((size_t)nr, sizeof *tm)) || !(rec = malloc((size_t)nr * sizeof *rec)) || !(P1.gmap = malloc(ng * sizeof *P1.gmap)) ||
            !(P1.gmark = calloc(ng, sizeof *P1.gmark)) || !(P1.rmap = malloc(nrt * sizeof *P1.rmap)) ||
            !(P1.pmap = malloc((size_t)nr * sizeof *P1.pmap)))
            NOMEM();
        memset(P1.gmap, -1, ng * sizeof *P1.gmap);
        memset(P1.rmap, -1, nrt * sizeof *P1.rmap);
        memset(P1.pmap, -1, (size_t)nr * sizeof *P1.pmap);
    }

    /* pass 1, program by program: validate, stream chains, pending counts, the reverse deps (CSR,
     * laid out as each program ends, while its nodes are in cache), k of each COLL, the channel of
     * each send/receive. A program that shares another's instructions is copied from that one's
     * template under its own names (share()); only when a name does not check out does it go the
     * long way, which then says what is wrong. */
    int64_t nrdeps = 0, np2p = 0, nsend = 0, racc = 0;
    for (int p = 0; p < nr; p++) {
        const st_program *pg = &l->progs[p];
        for (int32_t a = mship_off[p]; a < mship_off[p + 1]; a++) {
            if (posmap[mship[2 * a]] >= 0)
                BAD("group %d lists rank %d twice", mship[2 * a], pg->rank);
            posmap[mship[2 * a]] = mship[2 * a + 1];
        }
        int32_t q = pg->like ? (int32_t)(pg->like - l->progs) : -1;
        if (q >= 0 && q < p && tm[q].made) {
            int r = share(S, &P1, &tm[q], q, p, posmap, kmax, &rec[p], &racc);
            if (r < 0)
                NOMEM();
            if (r == 0) {
                nrdeps += tm[q].nrdeps;
                np2p += tm[q].np2p;
                nsend += tm[q].nsend;
                goto next_prog;
            }
        }
        if (pg->like) /* a sharer the long way may grow the lists: the prefaulter must not follow them */
            prefault_stop(&pf);
        size_t c0 = colls.n, q0 = p2ps.n;
        int64_t base = racc, nd0 = nrdeps;
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
            node *nd = &S->nodes[g];
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
                if (net && (in->route < -1 || in->route >= l->nroutes))
                    BAD("rank %d instruction %d: route %d out of range", pg->rank, i, (int)in->route);
            }
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
                if (d < 0 || d >= pg->n || d == i)
                    BAD("rank %d instruction %d: dep %d out of range (the program has %d instructions)", pg->rank, i, d,
                        pg->n);
                nd->pending++;
                S->nodes[S->off[p] + d].rdep0++; /* count for now */
                nrdeps++;
                /* parked in fields that are still free, for the reverse-dep pass */
                if (k == 0)
                    nd->link = S->off[p] + d;
                else
                    nd->route = S->off[p] + d;
            }
            if (in->kind == ST_INS_COLL) {
                if (in->group < 0 || in->group >= l->ngroups)
                    BAD("rank %d instruction %d: group %d out of range", pg->rank, i, in->group);
                if (posmap[in->group] < 0)
                    BAD("rank %d instruction %d: rank %d is not a member of group %d", pg->rank, i, pg->rank,
                        in->group);
                if (ivec_push(&colls, g, in->group, kcount[in->group]++, net ? in->route : -1, (float)in->latency_s))
                    NOMEM();
                if (kcount[in->group] > kmax[in->group])
                    kmax[in->group] = kcount[in->group];
            } else if (in->kind == ST_INS_SEND || in->kind == ST_INS_RECV) {
                int32_t peer = find_prog(map, nr, identity, in->peer);
                if (peer < 0)
                    BAD("rank %d instruction %d: peer rank %d has no program", pg->rank, i, in->peer);
                if (peer == p)
                    BAD("rank %d instruction %d: a %s to itself", pg->rank, i,
                        in->kind == ST_INS_SEND ? "send" : "receive");
                int snd = in->kind == ST_INS_SEND;
                int32_t ch = chan_of(&P1.chans, snd ? p : peer, snd ? peer : p);
                if (ch < 0 || ivec_push(&p2ps, g, ch, in->tag, net ? in->route : -1, (float)in->latency_s))
                    NOMEM();
                np2p++;
                nsend += snd;
            }
        }
        /* its reverse deps: counts to offsets, fill from the deps parked in link and route (moving
         * each offset on), then each offset is where the next node's start */
        {
            int32_t a0 = S->off[p], a1 = S->off[p + 1];
            if (racc + (nrdeps - nd0) >= INT32_MAX)
                BAD("too many dependencies");
            for (int32_t g = a0; g < a1; g++) {
                int32_t c = S->nodes[g].rdep0;
                S->nodes[g].rdep0 = (int32_t)racc;
                racc += c;
            }
            for (int32_t g = a0; g < a1; g++) {
                node *nd = &S->nodes[g];
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
        rec[p] = (prog_rec){-1, 0, c0, colls.n, q0, p2ps.n};
        for (size_t x = q0; x < p2ps.n; x += IV) { /* route and latency parked for the pairing pass */
            S->nodes[p2ps.v[x]].route = p2ps.v[x + 3];
            S->nodes[p2ps.v[x]].link = p2ps.v[x + 4];
        }
        if (shared[p] && !pg->like && tmpl_make(S, &P1, &tm[p], p, &colls, c0, &p2ps, q0, base, racc))
            NOMEM();
    next_prog:
        for (int32_t a = mship_off[p]; a < mship_off[p + 1]; a++) {
            posmap[mship[2 * a]] = -1;
            kcount[mship[2 * a]] = 0;
        }
        /* COLLs of groups the rank is not in were rejected above, so kcount is clean */
    }
    S->nodes[total].rdep0 = (int32_t)racc;
    prefault_stop(&pf);

    /* the sends and receives are paired on a second thread while this one makes the slots */
    X = (pairing){.S = S, .P1 = &P1, .rec = rec, .tm = tm, .p2ps = &p2ps, .np2p = np2p, .nsend = nsend};
    X.running = pthread_create(&X.thread, NULL, pair_run, &X) == 0;
    if (!X.running)
        pair_run(&X);

    /* collective slots: one per (group, k), members in the group's order */
    if (!(slot_base = S->slot_base = malloc((size_t)(l->ngroups + 1) * sizeof *slot_base)))
        NOMEM();
    {
        int64_t ns = 0, nm = 0;
        for (int g = 0; g < l->ngroups; g++) {
            slot_base[g] = (int32_t)ns;
            ns += kmax[g];
            nm += (int64_t)kmax[g] * l->groups[g].n;
            if (nm >= INT32_MAX)
                BAD("too many collectives");
        }
        slot_base[l->ngroups] = (int32_t)ns;
        S->nslots = (int32_t)ns;
        if (!(S->slots = calloc((size_t)(ns > 0 ? ns : 1), sizeof *S->slots)) ||
            !(S->slot_grp = malloc((size_t)(ns > 0 ? ns : 1) * sizeof *S->slot_grp)) ||
            !(S->slot_mem = malloc((size_t)(nm > 0 ? nm : 1) * sizeof *S->slot_mem)))
            NOMEM();
        int32_t m = 0;
        for (int g = 0; g < l->ngroups; g++)
            for (int k = 0; k < kmax[g]; k++) {
                slot *sl = &S->slots[slot_base[g] + k];
                sl->n = l->groups[g].n;
                sl->mem = m;
                sl->route = -1;
                S->slot_grp[slot_base[g] + k] = g;
                for (int j = 0; j < sl->n; j++)
                    S->slot_mem[m + j] = -1;
                m += sl->n;
            }
        for (int p = 0; p < nr; p++) {
            /* the collectives of one program, with that program's positions in its groups */
            entries E = colls_of(S, &P1, &rec[p], tm, &colls, p);
            const int32_t *rto = E.names ? E.names + tm[rec[p].via].ng : NULL;
            for (int32_t a = mship_off[p]; a < mship_off[p + 1]; a++)
                posmap[mship[2 * a]] = mship[2 * a + 1];
            for (size_t x = 0; x < E.n; x += IV) {
                const int32_t *v = &E.e[x];
                int32_t g = v[0] + E.base, grp = E.names ? E.names[v[1]] : v[1];
                int32_t route = !E.names ? v[3] : v[3] >= 0 ? rto[v[3]] : -1;
                float lat;
                memcpy(&lat, &v[4], sizeof lat);
                int32_t s = slot_base[grp] + v[2];
                slot *sl = &S->slots[s];
                S->nodes[g].link = s;
                S->slot_mem[sl->mem + posmap[grp]] = g;
                /* the route its members name, the longest latency */
                if (sl->route < 0)
                    sl->route = route;
                if (lat > sl->lat_s)
                    sl->lat_s = lat;
            }
            for (int32_t a = mship_off[p]; a < mship_off[p + 1]; a++)
                posmap[mship[2 * a]] = -1;
        }
        /* every member of a slot runs for the longest of their durations; with links, the slot's
         * data is one flow on the route its members name, with the longest latency after it */
        for (int32_t s = 0; s < S->nslots; s++) {
            slot *sl = &S->slots[s];
            double d = 0;
            for (int j = 0; j < sl->n; j++) {
                int32_t g = S->slot_mem[sl->mem + j];
                if (g >= 0 && S->nodes[g].dur_s > d)
                    d = S->nodes[g].dur_s;
            }
            if (sl->route < 0 || S->rt_n[sl->route] == 0 || !(d - sl->lat_s > 0))
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

    free(colls.v); /* done with: room for what comes */
    colls.v = NULL;
    if (X.running)
        pthread_join(X.thread, NULL);
    X.running = 0;
    if (X.rc)
        NOMEM();

    free(p2ps.v);
    p2ps.v = NULL;

    if (!(S->mem = malloc((size_t)nr * sizeof *S->mem)) ||
        !(S->last_end_compute = calloc((size_t)nr, sizeof *S->last_end_compute)) ||
        !(S->batch = malloc((size_t)nr * ST_STREAMS * sizeof *S->batch)))
        NOMEM();
    if (net) {
        /* a flow runs a rendezvous, which holds a stream of each member: at most one per stream */
        int32_t cap = nr * ST_STREAMS;
        if (!(S->fl = malloc((size_t)cap * sizeof *S->fl)) || !(S->q_fl = malloc((size_t)cap * sizeof *S->q_fl)) || !(S->q_ln = malloc((size_t)S->nln * sizeof *S->q_ln)))
            NOMEM();
        S->capfl = cap;
        for (int32_t f = 0; f < cap; f++) {
            S->fl[f].next_free = f + 1 < cap ? f + 1 : -1;
            S->fl[f].mark = 0;
            S->fl[f].ver = 0;
        }
        S->free_fl = 0;
    }
out:
    prefault_stop(&pf);
    if (X.running)
        pthread_join(X.thread, NULL);
    free(map);
    free(last);
    free(kcount);
    free(kmax);
    free(posmap);
    free(mship_off);
    free(mship);
    free(colls.v);
    free(p2ps.v);
    free(shared);
    if (tm)
        for (int p = 0; p < nr; p++)
            tmpl_free(&tm[p]);
    free(tm);
    free(P1.chans.v);
    free(P1.gmap);
    free(P1.rmap);
    free(P1.pmap);
    free(P1.gmark);
    free(P1.names.v);
    free(rec);
    return rc;
}

static void sim_free(sim *S) {
    free(S->off);
    free(S->nodes);
    free(S->start_s);
    free(S->rdeps);
    free(S->slots);
    free(S->slot_mem);
    free(S->slot_base);
    free(S->slot_grp);
    free(S->mem);
    free(S->last_end_compute);
    for (int b = 0; b < 65; b++)
        free(S->q[b].v);
    free(S->batch);
    for (int32_t i = 0; i < S->nln; i++)
        free(S->ln[i].fl);
    free(S->ln);
    free(S->rt_first);
    free(S->rt_n);
    free(S->rt_rate);
    free(S->hop_link);
    free(S->hop_count);
    free(S->fl);
    free(S->q_fl);
    free(S->q_ln);
}

int st_sim_run(const st_lowered *l, double memory_limit_bytes, st_trace *trace, st_sim_result *out, st_error *err) {
    int rc = 0;
    sim S;
    memset(&S, 0, sizeof S);
    memset(out, 0, sizeof *out);
    out->oom_rank = out->oom_ins = -1;
    if (!l)
        return st_error_set(err, ST_EINVAL, NULL, NULL, "nothing to simulate");
    S.l = l;
    S.limit_bytes = memory_limit_bytes;
    S.trace = trace;
    S.out = out;
    double t0 = wall_s();
    if ((rc = setup(&S, err)))
        goto out;
    if (!(out->ranks = calloc((size_t)l->nranks, sizeof *out->ranks))) {
        rc = st_error_set(err, ST_ENOMEM, NULL, NULL, "out of memory");
        goto out;
    }
    out->nranks = l->nranks;
    for (int p = 0; p < l->nranks; p++) {
        const st_program *pg = &l->progs[p];
        S.mem[p] = pg->base_bytes;
        out->ranks[p].memory_peak_bytes = pg->base_bytes;
        out->ranks[p].memory_peak_ins = -1;
        if (trace) {
            st_trace_rank(trace, pg->rank, pg->stage, pg->replicas);
            st_trace_memory(trace, pg->rank, 0.0, pg->base_bytes);
        }
        if (memory_limit_bytes > 0 && pg->base_bytes > memory_limit_bytes && !out->oom) {
            out->oom = 1;
            out->oom_rank = pg->rank;
            out->oom_ins = -1;
            S.stop = 1;
        }
    }

    double t1 = wall_s();
    run(&S);
    out->setup_wall_s = t1 - t0;
    out->run_wall_s = wall_s() - t1;

    double T = 0;
    for (int p = 0; p < l->nranks; p++)
        if (out->ranks[p].end_s > T)
            T = out->ranks[p].end_s;
    out->iteration_time_s = T;
    for (int p = 0; p < l->nranks; p++) {
        double idle = T - out->ranks[p].busy_s[ST_STREAM_COMPUTE];
        out->ranks[p].compute_idle_s = idle > 0 ? idle : 0;
    }
    if (S.stop == 2)
        rc = st_error_set(err, ST_ENOMEM, NULL, NULL, "out of memory");
    else if (!S.stop && S.ended < S.total)
        rc = diagnose(&S, err);
out:
    sim_free(&S);
    if (rc)
        st_sim_result_destroy(out);
    return rc;
}

void st_sim_result_destroy(st_sim_result *r) {
    if (!r)
        return;
    free(r->ranks);
    r->ranks = NULL;
    r->nranks = 0;
}
