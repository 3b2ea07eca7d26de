/* program.h: a lowered plan: one program per rank, the ordered instructions of one training
 * iteration, each with its stream and its dependencies (DESIGN.md, "one program, two
 * interpreters"). The lowering (src/lower.c) writes it; the discrete-event simulator (src/sim.c)
 * runs it with durations from cost/; the executor (exec/) will run it with real kernels. Nothing
 * here knows about either interpreter.
 *
 * Semantics every interpreter keeps:
 * - A rank has ST_STREAMS streams. Each stream runs its instructions one at a time, in program
 *   order (the order of `ins` restricted to that stream), like a CUDA stream.
 * - An instruction starts when the previous instruction of its stream has ended, every dep[] of
 *   the same program has ended, and
 *     COLL: every member rank of its group has reached the same collective (the k-th COLL of that
 *           group in each member's program, k counted per group): they start together;
 *     SEND/RECV: the matching RECV/SEND (same sender, receiver and tag) has been reached: they
 *           start together (a rendezvous, as NCCL's send/recv) and end dur_s later.
 *   Because streams are in order, the lowering must not let two ranks' streams wait on each
 *   other in a circle: src/lower.c puts receives on the compute stream, right before the compute
 *   that needs them (Megatron-LM's blocking p2p), and sends on the P2P stream after it.
 * - Ranks are named by st_program.rank; peer and st_group_def.ranks[] hold those names.
 * - Memory: alloc_bytes are allocated when the instruction starts, free_bytes released when it
 *   ends; base_bytes (weights, gradients, optimizer states) are held throughout.
 *
 * Symmetry: ranks that would run identical programs on identical inputs (the tp, cp and dp
 * replicas of a pipeline stage) may be lowered once, as one representative rank per stage; the
 * group then lists that representative alone and `replicas` says how many ranks it stands for.
 */
#ifndef STRATA_PROGRAM_H
#define STRATA_PROGRAM_H

#include "strata.h"

typedef enum { ST_INS_COMPUTE, ST_INS_COLL, ST_INS_SEND, ST_INS_RECV } st_ins_kind;

/* what a COMPUTE instruction does (and the colour of its box in a trace) */
typedef enum {
    ST_PHASE_FWD,
    ST_PHASE_BWD,       /* input and weight gradients */
    ST_PHASE_BWD_INPUT, /* zero-bubble schedules split backward */
    ST_PHASE_BWD_WEIGHT,
    ST_PHASE_RECOMPUTE,
    ST_PHASE_OPTIMIZER,
    ST_PHASE_OTHER,
    ST_PHASE_COUNT
} st_phase;

enum {
    ST_STREAM_COMPUTE, /* kernels, and the tp/cp/ep collectives Megatron runs inline */
    ST_STREAM_P2P,     /* pipeline send/recv */
    ST_STREAM_DP,      /* data-parallel / ZeRO collectives */
    ST_STREAM_COPY,    /* host <-> device (offload) */
    ST_STREAMS
};

typedef struct st_ins {
    st_ins_kind kind;
    st_phase phase;  /* COMPUTE */
    int stream;      /* ST_STREAM_* */
    int chunk, mb;   /* pipeline chunk and micro-batch; -1 when not about one */
    double dur_s;    /* COMPUTE: duration; COLL/SEND/RECV: transfer time alone on its links */
    st_coll coll;    /* COLL */
    int group;       /* COLL: index into st_lowered.groups */
    int peer, tag;   /* SEND/RECV: the other rank, and a tag unique per (sender, receiver) pair */
    double bytes;    /* COLL/SEND/RECV: message size per rank */
    double alloc_bytes, free_bytes;
    int dep[2];      /* instructions of this program that must end first; -1 = none */
    const char *label; /* static string, e.g. "fwd", "bwd", "send act", "dp reduce-scatter" */
} st_ins;

typedef struct st_program {
    int rank;
    int stage;          /* pipeline stage of this rank */
    int replicas;       /* ranks this program stands for (symmetry) */
    double base_bytes;  /* memory held for the whole iteration */
    int n, cap;
    st_ins *ins;        /* n instructions, owned */
} st_program;

typedef struct st_group_def {
    st_group_kind kind;
    int n;         /* member ranks (in this lowering) */
    int *ranks;    /* owned */
} st_group_def;

typedef struct st_lowered {
    int nranks;
    st_program *progs; /* nranks, owned */
    int ngroups;
    st_group_def *groups; /* owned */
    int64_t microbatches;
} st_lowered;

/* Lowers a finalized plan (src/lower.c): one representative rank per pipeline stage. Durations
 * come from the cost context, so simulated and analytical numbers share their per-operator costs.
 * Fills out (free with st_lowered_destroy). */
int st_lower(st_cost_ctx *ctx, const st_plan *p, st_lowered *out, st_error *err);
/* Every rank (tp x cp x dp x pp, Megatron's rank order), with the tp collectives as collectives
 * of real tp groups and the dp reduction in real dp x cp groups: what the representatives stand
 * for; the tests prove both simulate alike. For small plans. */
int st_lower_full(st_cost_ctx *ctx, const st_plan *p, st_lowered *out, st_error *err);
void st_lowered_destroy(st_lowered *l);

/* ------------------------------------------------------------ simulation (src/sim.c) */

typedef struct st_rank_stats {
    double busy_s[ST_STREAMS];  /* time each stream was running something */
    double compute_idle_s;      /* compute stream idle between the iteration's start and end */
    double bubble_s;            /* compute stream idle while waiting on pipeline receives */
    double end_s;               /* when its last instruction ended */
    double memory_peak_bytes;
    int memory_peak_ins;        /* the instruction at which memory peaked */
} st_rank_stats;

typedef struct st_sim_result {
    double iteration_time_s;   /* the last end over all ranks */
    uint64_t events;           /* events the engine processed */
    int nranks;
    st_rank_stats *ranks;      /* nranks, owned */
    int oom;                   /* 1 when some rank exceeded memory_limit_bytes */
    int oom_rank, oom_ins;
} st_sim_result;

typedef struct st_trace st_trace; /* trace sink (traces/chrome.c); NULL = no trace */

/* Runs the programs. memory_limit_bytes <= 0 disables the out-of-memory check. Returns 0, or
 * ST_EINVAL with err naming the rank and instruction when the programs deadlock (a receive
 * without a send, a collective some member never reaches). */
int st_sim_run(const st_lowered *l, double memory_limit_bytes, st_trace *trace, st_sim_result *out, st_error *err);
void st_sim_result_destroy(st_sim_result *r);

/* ------------------------------------------------------------ Chrome trace (traces/chrome.c) */

/* new; the file is written atomically by st_trace_close. */
st_trace *st_trace_open(const char *path, st_error *err);
/* complete event on (rank, stream) from start to end, with its category and label */
void st_trace_span(st_trace *t, int rank, int stream, double start_s, double end_s, const char *cat,
                   const char *name, int chunk, int mb);
/* flow arrow from (rank_from at t_from) to (rank_to at t_to), e.g. a send to its receive */
void st_trace_flow(st_trace *t, int rank_from, int stream_from, double t_from, int rank_to, int stream_to,
                   double t_to);
/* memory counter of a rank */
void st_trace_memory(st_trace *t, int rank, double time_s, double bytes);
/* writes and frees; returns 0 or an error (and leaves no partial file) */
int st_trace_close(st_trace *t, st_error *err);
/* frees without writing anything (the run failed) */
void st_trace_discard(st_trace *t);
/* names a rank's row: "rank N (stage S)", or "(stage S, R replicas)" when it stands for several */
void st_trace_rank(st_trace *t, int rank, int stage, int replicas);

#endif
