/* sim_private.h: what the simulator's files share (src/sim/). SimGrid's split:
 * - sim.c, the engine: the event queue, the clock, the interpretation of instructions (start, reach,
 *   release, finish), the deadlock diagnosis;
 * - setup.c: the engine's arrays, built from a validated lowering (st_program_validate) in one pass;
 * - network.c: the links and routes of the lowering, merged where they carry the same load, and
 *   their display in a trace;
 * - maxmin.c: the flows on those links and their max-min fair rates, recomputed where a flow
 *   starts or ends.
 * Internal: nothing here is part of libstrata's interface (tests use it to test maxmin.c alone). */
#ifndef STRATA_SIM_PRIVATE_H
#define STRATA_SIM_PRIVATE_H

#include "src/sim/sim.h"

#include <stdint.h>

/* ------------------------------------------------------------ the network (network.c, maxmin.c) */

/* A (merged) link at run time: what every start and end of a flow reads, in one 64-byte line
 * (aligned), the flows on it inline while they are few (the common case: a NIC port or a node's
 * fabric link carries a handful at once, 16 at most at 131,072 GPUs), so a hop of a route costs
 * one miss to memory where the link's record and its separate list of flows cost two or three. */
enum { ST__LINK_INLINE = 3 };
typedef struct st__link {
    _Alignas(64) double cap; /* bytes/s */
    double demand;           /* sum of count x rate alone of the flows on it */
    int32_t n, capn;         /* flows on it: fl[2k] = flow, fl[2k + 1] = count */
    int32_t *fl;             /* inl, or an allocation of its own once more than ST__LINK_INLINE */
    int32_t mark, at;        /* re-share: mark == st__net.stamp: it is q_ln[at] */
    int32_t inl[2 * ST__LINK_INLINE];
} st__link;

/* what only a trace reads of a link (st__net.lx, parallel to ln) */
typedef struct st__link_aux {
    int32_t rank, tid; /* trace: the rank's thread tid shows it (negative: not named yet); rank -1: not shown */
    const char *name;  /* borrowed from the lowering's st_link */
    int32_t alike;     /* links of the lowering it stands for (merged: crossed alike) */
    /* trace: the interval being shown */
    double since, util;
    int32_t shown_n;
    const char *shown_label;
} st__link_aux;

/* a merged route: its hops in st__net.hop[first .. first + n) */
typedef struct st__route {
    int32_t first, n;
    double rate; /* bytes/s per crossing rank, alone */
} st__route;

typedef struct st__hop {
    int32_t link, count;
} st__hop;

/* a flow in progress: the data of a collective slot or of a send/recv pair */
typedef struct st__flow {
    double rem_s;      /* work left, in seconds at speed 1 */
    double speed;      /* rate / the route's rate alone, in (0, 1]; 0 = not yet scheduled */
    double t_last;     /* when rem_s was brought up to date */
    double finish;     /* t_last + rem_s / speed */
    double rate;       /* bytes/s per crossing rank, alone (the route's) */
    double new_speed;  /* listed in st__net.q_fl[0 .. nchg): the speed it changes to */
    int32_t route;
    int32_t nbneck;    /* speed < 1: the links of its route that are its bottlenecks (maxmin.c) */
    uint32_t ver;      /* its schedule: bumped whenever its completion moves */
    int32_t mark;
    int32_t next_free;
    /* the engine's: what the end of its data ends (a collective slot, or a send a and receive b),
     * the latency after the data, and its label in a trace (when it is a link's only flow) */
    int32_t slot, a, b;
    double lat_s;
    const char *label;
} st__flow;

typedef struct st__net {
    st__link *ln; /* nln, 64-byte aligned */
    st__link_aux *lx;
    int32_t nln;
    st__route *rt; /* merged routes */
    st__hop *hop;
    st__flow *fl;
    int32_t capfl, free_fl; /* free_fl: head of the free list (chained through next_free), -1 */
    int32_t stamp;
    /* re-sharing work lists; after st__flow_start and st__flow_end, q_fl[0 .. nchg) lists the
     * flows whose speed changes, in a deterministic order */
    int32_t *q_fl, *q_ln;
    int32_t nq_fl, nq_ln, nchg;
    /* a re-share's working copy: per link of q_ln its capacity, and capacity left and flows not
     * frozen while filling (then its load and fastest flow); per flow of q_fl its rate alone, its
     * share and whether frozen, and its hops on q_ln's links (w_hop[w_first[i] .. w_first[i + 1]),
     * link = index in q_ln); dense, so the filling's passes stream through them instead of
     * reaching into thousands of flow and link records at random (maxmin.c) */
    double *w_cap, *w_rem, *w_wsum;
    double *w_rate, *w_share;
    uint8_t *w_frozen;
    int32_t *w_first;
    st__hop *w_hop;
    int64_t w_caphop;
    uint64_t reshares; /* max-min recomputations */
    uint64_t kept;     /* flows that ended on full links and left every rate as it was (not re-shared) */
} st__net;

/* network.c: builds N from a validated lowering: links that exactly the same routes cross the same
 * number of times (with the same capacity) merged into one; ix names the programs of the links'
 * ranks. No links, no routes or no hops: N stays empty (nln 0). Free with st__net_free. */
int st__net_build(st__net *N, const st_lowered *l, const st_rank_index *ix, st_error *err);
void st__net_free(st__net *N);
/* trace: the links of flow f's route changed load at t */
void st__net_show(st__net *N, st_trace *trace, int32_t f, double t);

/* maxmin.c: room for cap flows at once (and the work lists) */
int st__net_alloc_flows(st__net *N, int32_t cap);
/* A flow of work_s seconds (its data alone at its route's rate) starts on route at t: returns its
 * index, -1 when out of memory. The flows whose speed changes (the new one among them) are then
 * listed in q_fl[0 .. nchg): apply each with st__flow_set_speed. */
int32_t st__flow_start(st__net *N, int32_t route, double work_s, double t);
/* Flow f's data is through: it leaves its links (its index is free again; its route stays readable
 * until the next start); the flows it shared full links with are listed as st__flow_start says.
 * 0, or -1 when out of memory. */
int st__flow_end(st__net *N, int32_t f);
/* Applies f's new_speed from t on: its work brought up to date, its finish moved, ver bumped
 * (inline: the engine calls it for every flow, on its hot path). */
static inline void st__flow_set_speed(st__net *N, int32_t f, double t) {
    st__flow *F = &N->fl[f];
    double speed = F->new_speed;
    if (F->speed > 0) {
        F->rem_s -= (t - F->t_last) * F->speed;
        if (F->rem_s < 0)
            F->rem_s = 0;
    }
    F->t_last = t;
    F->speed = speed;
    F->finish = t + (speed == 1 ? F->rem_s : F->rem_s / speed);
    F->ver++;
}

/* ------------------------------------------------------------ the engine (sim.c, setup.c) */

enum { S_WAIT, S_REACHED, S_RUNNING, S_ENDED };
/* node.state holds the S_* state in its low bits, these flags, and in its high four bits what its
 * time counts as (st_bd), so that the common path never touches the (large, cold) st_ins record */
enum { F_ALLOC = 4, F_FREE = 8, BD_SHIFT = 4 };

typedef struct st__node {
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
} st__node;

typedef struct st__slot {
    int32_t arrived;
    int32_t n;     /* group size */
    int32_t mem;   /* members' gids: slot_mem[mem .. mem + n), -1 where a member has no such COLL */
    int32_t route; /* runs as a flow on this route; -1: takes the members' longest duration */
    double lat_s;  /* flow: the largest latency_s of its members, after the data */
    double work_s; /* flow: the data alone (the longest duration - lat_s) */
} st__slot;

typedef struct st__ev {
    uint64_t t;   /* the time's IEEE-754 bits: times are >= 0, where the bits order as the values */
    int32_t id;   /* an instruction's gid; -1 - f: the data of flow f is through */
    uint32_t ver; /* flow: its schedule when pushed (a later one makes this one stale) */
} st__ev;

/* the event queue's bucket: events, in push order */
typedef struct st__bucket {
    st__ev *v;
    int32_t n, cap;
} st__bucket;

/* A rank's state during the run and its sums, in 64-byte lines (aligned): the first holds what
 * every start and end of an instruction reads and writes, the next two the sums an end adds to
 * (moved to st_rank_stats when the run is over). Where they were four arrays and the result's
 * records, an end touched four or five lines of its rank, each a miss to memory at 131,072 ranks. */
typedef struct st__rank {
    _Alignas(64) double start_s[ST_STREAMS]; /* start of the instruction running on each stream */
    double end_s;                             /* its last end so far */
    double last_end_compute;                  /* the last end on its compute stream */
    double bubble_s;
    double busy_s[ST_STREAMS], bd_s[ST_BD_COUNT]; /* as st_rank_stats */
    double mem;                                   /* bytes now */
} st__rank;

typedef struct st__sim {
    const st_lowered *l;
    double limit_bytes;
    st_trace *trace;
    st_sim_result *out;
    int64_t total;
    int32_t *off;      /* nranks + 1: gid of each program's first instruction */
    st__node *nodes;   /* total + 1 (a sentinel closes the last rdep range) */
    int32_t *rdeps;
    st__slot *slots;
    int32_t nslots;
    int32_t *slot_mem;
    int32_t *slot_grp;        /* per slot: its group */
    int32_t *slot_base;       /* per group (ngroups + 1): its first slot; slot - slot_base[group] = k */
    st__rank *rk;             /* nranks */
    st__bucket q[65]; /* the event queue (a radix heap over the time bits, sim.c) */
    int32_t q_head;   /* the next event of bucket 0 */
    uint64_t q_last;  /* the time (bits) of the last event taken; every queued one is >= it */
    uint64_t q_mask;  /* bit b - 1 set: bucket b (1..64) holds events */
    int64_t nq;       /* events queued, stale flow events included */
    int32_t *batch;
    int64_t ended;
    int stop;         /* 1: out of memory on the device (the run's result); 2: out of host memory */
    st__net net;      /* shared links; nln 0: none */
    FILE *progress;   /* a progress line here after 1 s of events (NULL: none) */
    double next_report_s, t0_s;
    uint64_t next_check; /* events after which the clock is read again */
    int reported;
} st__sim;

/* setup.c: validates S->l and fills S's arrays for run(); 0, or ST_EINVAL / ST_ENOMEM with err.
 * What it allocated is S's, freed by the engine either way. */
int st__sim_setup(st__sim *S, st_error *err);

#endif
