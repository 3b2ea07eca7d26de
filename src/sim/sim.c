/* sim.c: the discrete-event simulator's engine, the first interpreter of a lowered plan (program.h).
 *
 * The engine only advances the clock (SimGrid's lesson): an event is "instruction g ends at time t"
 * or "the data of flow f is through at time t"; everything else (an instruction becoming ready, a
 * rendezvous completing, a stream moving on) happens while handling an end. Events sit in a queue
 * ordered by time and, among equal times, by the order they were pushed (a radix heap with buckets
 * in push order), so the same input gives the same run, the same statistics and the same trace
 * bytes (libuv's timers order equal times by a sequence number for the same reason). Its arrays
 * are built by setup.c; the links' sharing is maxmin.c's, their building network.c's
 * (sim_private.h says who does what).
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
 * route crosses links runs as a flow (maxmin.c): its bandwidth part, dur_s - latency_s, is work at
 * the route's rate, shared max-min fairly with the flows on the same links, followed by its latency
 * part, which nothing stretches. When a flow starts or ends, the flows whose rate changed get new
 * completions: each pushes a new event and leaves the old one behind, stale (its version number
 * tells). Every end at an instant, those of instructions whose flow ended at that instant
 * included, is applied before anything it releases starts.
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
 * Memory: one limit for every rank; on node groups of different GPUs the caller runs without one and
 * checks each program against its own devices afterwards (st_sim_check_memory).
 *
 * Workload facts behind the layout: the queue holds about one event per stream per rank (a stream
 * runs one instruction at a time) besides stale flow events, and its arrays only grow to that;
 * nothing is allocated per event. Instructions are numbered globally (gid = offset of the rank +
 * index), all runtime state is in flat arrays, and per instruction it is one 32-byte node (start
 * times are kept per stream). At 131,072 ranks nothing a rank owns stays in cache between its
 * events, so what an event touches is counted in cache lines: a rank's state and sums are one
 * record of three lines (st__rank), a link's what flows read is one line (st__link).
 */
#include "sim_private.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define STATE(nd) ((nd)->state & 3)
#define SET_STATE(nd, s) ((nd)->state = (uint8_t)(((nd)->state & ~3) | (s)))

/* GCC's and Clang's builtins, with plain C where a compiler lacks them */
#if defined(__GNUC__) || defined(__clang__)
#define PREFETCH(p) __builtin_prefetch(p)
#define HOT_INLINE inline __attribute__((always_inline))
static inline int high_bit(uint64_t x) { return 63 - __builtin_clzll(x); } /* x != 0 */
static inline int low_bit(uint64_t x) { return __builtin_ctzll(x); }       /* x != 0 */
#else
#define PREFETCH(p) ((void)(p))
#define HOT_INLINE inline
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

/* bucket B is full: twice the room; -1 (and the run stops) when out of memory */
static int q_grow(st__sim *S, st__bucket *B) {
    int32_t cap = B->cap ? 2 * B->cap : 256;
    st__ev *v = realloc(B->v, (size_t)cap * sizeof *v);
    if (!v) {
        S->stop = 2;
        return -1;
    }
    B->v = v;
    B->cap = cap;
    return 0;
}

/* (inline: every event is pushed two or three times, and a call spilled the event to the stack) */
static HOT_INLINE void q_push_ev(st__sim *S, st__ev e) {
    st__bucket *B = &S->q[q_bucket(e.t, S->q_last)];
    if (B->n == B->cap && q_grow(S, B))
        return;
    B->v[B->n++] = e;
    if (B != S->q)
        S->q_mask |= 1ull << (B - S->q - 1);
    S->nq++;
}

static inline void heap_push(st__sim *S, double t, int32_t gid) { q_push_ev(S, (st__ev){time_bits(t), gid, 0}); }

/* the next event's time (bits), filling bucket 0 if it is empty; the queue must not be empty */
static uint64_t q_top(st__sim *S) {
    st__bucket *z = &S->q[0];
    if (S->q_head < z->n)
        return z->v[S->q_head].t;
    z->n = S->q_head = 0;
    int b = low_bit(S->q_mask) + 1;
    st__bucket *B = &S->q[b];
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
static inline st__ev q_pop(st__sim *S) {
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

static inline const st_ins *ins_of(const st__sim *S, int32_t gid) {
    int32_t p = S->nodes[gid].prog;
    return &S->l->progs[p].ins[gid - S->off[p]];
}

static inline int rank_of(const st__sim *S, int32_t gid) { return S->l->progs[S->nodes[gid].prog].rank; }

/* "rank R instruction I (LABEL, mb M)" */
static void describe(const st__sim *S, int32_t gid, char *buf, size_t n) {
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

/* ------------------------------------------------------------ flows (maxmin.c) */

/* the flows whose speed changed at t (N->q_fl[0 .. nchg)): new completions, and the trace's links */
static inline void apply_speeds(st__sim *S, double t) {
    st__net *N = &S->net;
    for (int32_t i = 0; i < N->nchg; i++) {
        int32_t f = N->q_fl[i];
        st__flow_set_speed(N, f, t);
        q_push_ev(S, (st__ev){time_bits(N->fl[f].finish), -1 - f, N->fl[f].ver});
        if (S->trace)
            st__net_show(N, S->trace, f, t);
    }
}

/* the data of a rendezvous starts at t: of collective slot `slot`, or of the send a and receive b */
static HOT_INLINE void flow_begin(st__sim *S, int32_t route, int32_t slot, int32_t a, int32_t b, double work_s,
                                   double lat_s, double t) {
    int32_t f = st__flow_start(&S->net, route, work_s, t);
    if (f < 0) {
        S->stop = 2;
        return;
    }
    st__flow *F = &S->net.fl[f];
    F->slot = slot;
    F->a = a;
    F->b = b;
    F->lat_s = lat_s;
    F->label = NULL;
    if (S->trace) /* what a link shows while it carries this flow alone (it runs: every member is there) */
        F->label = ins_label(ins_of(S, slot >= 0 ? S->slot_mem[S->slots[slot].mem] : a));
    S->out->flows++;
    apply_speeds(S, t);
}

/* flow f's data ends at t: its members end after the latency part; the flows it shared full links
 * with get its bandwidth */
static void flow_end(st__sim *S, int32_t f, double t) {
    const st__flow *F = &S->net.fl[f];
    if (F->slot >= 0) {
        const st__slot *sl = &S->slots[F->slot];
        for (int32_t j = 0; j < sl->n; j++)
            heap_push(S, t + F->lat_s, S->slot_mem[sl->mem + j]);
    } else {
        heap_push(S, t + F->lat_s, F->a);
        heap_push(S, t + F->lat_s, F->b);
    }
    if (st__flow_end(&S->net, f)) {
        S->stop = 2;
        return;
    }
    if (S->trace)
        st__net_show(&S->net, S->trace, f, t);
    apply_speeds(S, t);
}

/* ------------------------------------------------------------ the engine */

static void start(st__sim *S, int32_t g, double t) {
    st__node *nd = &S->nodes[g];
    int32_t p = nd->prog;
    SET_STATE(nd, S_RUNNING);
    S->rk[p].start_s[nd->stream] = t;
    if (nd->state & F_ALLOC) {
        const st_ins *in = &S->l->progs[p].ins[g - S->off[p]];
        st_rank_stats *rs = &S->out->ranks[p];
        double m = (S->rk[p].mem += in->alloc_bytes);
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
        S->rk[p].bubble_s += t - S->rk[p].last_end_compute;
    if (nd->route < 0) /* else the end comes when its flow's data is through */
        heap_push(S, t + nd->dur_s, g);
}

/* g's last wait ended at t, released by instruction `by` (-1: ready from the start). */
static void reach(st__sim *S, int32_t g, double t, int32_t by) {
    st__node *nd = &S->nodes[g];
    int32_t p = nd->prog;
    if (nd->stream == ST_STREAM_COMPUTE && by >= 0 && S->nodes[by].kind == ST_INS_RECV && nd->kind != ST_INS_RECV)
        S->rk[p].bubble_s += t - S->rk[p].last_end_compute;
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
        st__slot *sl = &S->slots[nd->link];
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

static void release(st__sim *S, int32_t g, double t) {
    const st__node *nd = &S->nodes[g];
    if (nd->next >= 0 && --S->nodes[nd->next].pending == 0)
        reach(S, nd->next, t, g);
    for (int32_t i = nd->rdep0, e = S->nodes[g + 1].rdep0; i < e; i++) {
        int32_t d = S->rdeps[i];
        if (--S->nodes[d].pending == 0)
            reach(S, d, t, g);
    }
}

static void finish(st__sim *S, int32_t g, double t) {
    st__node *nd = &S->nodes[g];
    int32_t p = nd->prog;
    st__rank *R = &S->rk[p];
    double s = R->start_s[nd->stream];
    SET_STATE(nd, S_ENDED);
    S->ended++;
    R->busy_s[nd->stream] += t - s;
    R->bd_s[nd->state >> BD_SHIFT] += t - s;
    R->end_s = t; /* events pop in time order */
    if (nd->stream == ST_STREAM_COMPUTE)
        R->last_end_compute = t;
    if (!(nd->state & F_FREE) && !S->trace)
        return;
    const st_ins *in = &S->l->progs[p].ins[g - S->off[p]];
    if (nd->state & F_FREE) {
        R->mem -= in->free_bytes;
        if (S->trace)
            st_trace_memory(S->trace, S->l->progs[p].rank, t, R->mem);
    }
    if (S->trace)
        st_trace_span(S->trace, S->l->progs[p].rank, nd->stream, s, t, ins_cat(in), ins_label(in), in->chunk, in->mb);
}

/* the progress line, at most twice a second after the first second (as the search prints its own) */
static void progress(st__sim *S, double t) {
    double now = st_clock_s();
    if (now < S->next_report_s) return;
    S->next_report_s = now + 0.5;
    fprintf(S->progress, "\rsimulating: %llu events, %.3f s simulated, %.1f s", (unsigned long long)S->out->events, t,
            now - S->t0_s);
    fflush(S->progress);
    S->reported = 1;
}

/* The events at one time are often thousands (the data-parallel replicas of a stage run in step),
 * each on another rank's stretch of the arrays: a miss to memory per node, per rank's statistics and
 * per next instruction. What the events AHEAD in the batch will read is requested early, in two
 * steps (a node must be in cache before what it points to can be requested), so that the misses
 * overlap instead of following one another. */
enum { AHEAD_NODE = 16, AHEAD_LINKS = 8, AHEAD_PEER = 4 };

static HOT_INLINE void ahead_of_pop(const st__sim *S) {
    const st__bucket *z = &S->q[0];
    int32_t h = S->q_head;
    if (h + AHEAD_NODE < z->n) {
        int32_t id = z->v[h + AHEAD_NODE].id;
        if (id >= 0)
            PREFETCH(&S->nodes[id]);
        else
            PREFETCH(&S->net.fl[-1 - id]);
    }
    if (h + AHEAD_LINKS < z->n && z->v[h + AHEAD_LINKS].id >= 0) {
        const st__node *nd = &S->nodes[z->v[h + AHEAD_LINKS].id];
        const st__rank *R = &S->rk[nd->prog];
        PREFETCH(R);
        PREFETCH(&R->busy_s[nd->stream]);
        PREFETCH(&R->bd_s[nd->state >> BD_SHIFT]);
    }
}

/* instruction x, if this release may start it: its partner or collective slot, and its stream's start */
static HOT_INLINE void ahead_of_start(const st__sim *S, int32_t x) {
    const st__node *nd = &S->nodes[x];
    if (nd->pending != 1)
        return;
    if (nd->kind == ST_INS_COLL)
        PREFETCH(&S->slots[nd->link]);
    else if (nd->kind != ST_INS_COMPUTE && nd->link >= 0)
        PREFETCH(&S->nodes[nd->link]);
    PREFETCH(&S->rk[nd->prog]);
}

static HOT_INLINE void ahead_of_release(const st__sim *S, int32_t i, int32_t nb) {
    if (i + AHEAD_NODE < nb)
        PREFETCH(&S->nodes[S->batch[i + AHEAD_NODE]]);
    if (i + AHEAD_LINKS < nb) {
        const st__node *nd = &S->nodes[S->batch[i + AHEAD_LINKS]];
        PREFETCH(&S->nodes[nd->next >= 0 ? nd->next : 0]);
        PREFETCH(&S->rdeps[nd->rdep0]);
    }
    if (i + AHEAD_PEER < nb) { /* the instructions it releases: their nodes, then what they start */
        int32_t g = S->batch[i + AHEAD_PEER];
        for (int32_t k = S->nodes[g].rdep0, e = S->nodes[g + 1].rdep0; k < e; k++)
            PREFETCH(&S->nodes[S->rdeps[k]]);
        if (S->nodes[g].next >= 0)
            ahead_of_start(S, S->nodes[g].next);
    }
    if (i + AHEAD_PEER / 2 < nb) {
        int32_t g = S->batch[i + AHEAD_PEER / 2];
        for (int32_t k = S->nodes[g].rdep0, e = S->nodes[g + 1].rdep0; k < e; k++)
            ahead_of_start(S, S->rdeps[k]);
    }
}

static void run(st__sim *S) {
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
            ahead_of_pop(S);
            st__ev e = q_pop(S);
            if (e.id < 0) {
                int32_t f = -1 - e.id;
                if (e.ver != S->net.fl[f].ver || S->net.fl[f].speed == 0)
                    continue; /* rescheduled, or long done */
                S->out->events++;
                flow_end(S, f, t);
                continue;
            }
            S->out->events++;
            finish(S, e.id, t);
            S->batch[nb++] = e.id;
        }
        for (int32_t i = 0; i < nb && !S->stop; i++) {
            ahead_of_release(S, i, nb);
            release(S, S->batch[i], t);
        }
        if (S->progress && S->out->events >= S->next_check) { /* the clock every 64Ki events */
            S->next_check = S->out->events + 65536;
            progress(S, t);
        }
    }
    if (S->reported) fprintf(S->progress, "\r%*s\r", 72, "");
}

/* ------------------------------------------------------------ deadlock diagnosis */

/* What g waits for: another instruction (returned), or a root cause written to why (returns -1). */
static int32_t blocker(const st__sim *S, int32_t g, char *why, size_t n) {
    const st__node *nd = &S->nodes[g];
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
    const st__slot *sl = &S->slots[nd->link];
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

static int diagnose(st__sim *S, st_error *err) {
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

static void sim_free(st__sim *S) {
    free(S->off);
    free(S->nodes);
    free(S->rdeps);
    free(S->slots);
    free(S->slot_mem);
    free(S->slot_base);
    free(S->slot_grp);
    free(S->rk);
    for (int b = 0; b < 65; b++)
        free(S->q[b].v);
    free(S->batch);
    st__net_free(&S->net);
}

int st_sim_run(const st_lowered *l, double memory_limit_bytes, st_trace *trace, st_sim_result *out, st_error *err) {
    return st_sim_run_progress(l, memory_limit_bytes, trace, NULL, out, err);
}

int st_sim_run_progress(const st_lowered *l, double memory_limit_bytes, st_trace *trace, FILE *progress,
                        st_sim_result *out, st_error *err) {
    int rc = 0;
    st__sim S;
    memset(&S, 0, sizeof S);
    S.progress = progress;
    S.t0_s = st_clock_s();
    S.next_report_s = S.t0_s + 1.0;
    memset(out, 0, sizeof *out);
    out->oom_rank = out->oom_ins = -1;
    if (!l)
        return st_error_set(err, ST_EINVAL, NULL, NULL, "nothing to simulate");
    S.l = l;
    S.limit_bytes = memory_limit_bytes;
    S.trace = trace;
    S.out = out;
    double t0 = wall_s();
    if ((rc = st__sim_setup(&S, err)))
        goto out;
    if (!(out->ranks = calloc((size_t)l->nranks, sizeof *out->ranks))) {
        rc = st_error_set(err, ST_ENOMEM, NULL, NULL, "out of memory");
        goto out;
    }
    out->nranks = l->nranks;
    for (int p = 0; p < l->nranks; p++) {
        const st_program *pg = &l->progs[p];
        S.rk[p].mem = pg->base_bytes;
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
    for (int p = 0; p < l->nranks; p++) {
        st_rank_stats *rs = &out->ranks[p];
        const st__rank *R = &S.rk[p];
        memcpy(rs->busy_s, R->busy_s, sizeof rs->busy_s);
        memcpy(rs->bd_s, R->bd_s, sizeof rs->bd_s);
        rs->bubble_s = R->bubble_s;
        rs->end_s = R->end_s;
    }
    out->reshares = S.net.reshares;
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

double st_sim_device_memory_bytes(const st_cluster *c, const st_program *pg) {
    if (c->ngroups == 0) return c->gpu.memory_bytes;
    st_cluster v;
    st_cluster_view(c, pg->gpu, pg->replicas > 0 ? pg->replicas : 1, &v);
    return v.gpu.memory_bytes;
}

void st_sim_check_memory(const st_lowered *l, const st_cluster *c, st_sim_result *r) {
    for (int p = 0; p < l->nranks && p < r->nranks && !r->oom; p++) {
        const st_program *pg = &l->progs[p];
        if (!(r->ranks[p].memory_peak_bytes > st_sim_device_memory_bytes(c, pg))) continue;
        r->oom = 1;
        r->oom_rank = pg->rank;
        r->oom_ins = r->ranks[p].memory_peak_ins;
    }
}
