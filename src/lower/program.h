/* program.h: a lowered plan: one program per rank, the ordered instructions of one training
 * iteration, each with its stream and its dependencies (DESIGN.md, "one program, two
 * interpreters"). The lowering (src/lower/lower.c) writes it; the discrete-event simulator (src/sim/sim.c)
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
 *   The members of a rendezvous take the longest of their dur_s, or longer when links they share
 *   with other transfers slow them ("Network" below).
 *   Because streams are in order, the lowering must not let two ranks' streams wait on each
 *   other in a circle: src/lower/lower.c puts receives on the compute stream, right before the compute
 *   that needs them (Megatron-LM's blocking p2p), and sends on the P2P stream after it.
 * - Ranks are named by st_program.rank; peer and st_group_def.ranks[] hold those names.
 * - Memory: alloc_bytes are allocated when the instruction starts, free_bytes released when it
 *   ends; base_bytes (weights, gradients, optimizer states) are held throughout.
 *
 * Network (optional: with no links every transfer simply takes its dur_s). The lowering describes
 * the links of the cluster and, for each transfer, the links it crosses; an interpreter that has
 * real links (the executor) ignores all of it.
 * - A link (st_link) carries bytes one way at bytes_per_s: a GPU's NVLink port, a NIC port, a
 *   node's link to the fabric above the nodes, each per direction.
 * - A route (st_route) lists hops: a link and the number of ranks of the transfer whose traffic
 *   crosses it (a collective of n ranks on one node crosses each member's port out and in once;
 *   eight ranks of a node that talk across nodes cross its fabric link eight times).
 * - A transfer (COLL, SEND/RECV) on route r has two parts: latency_s, a fixed part (per-step
 *   latencies, which no link stretches), and dur_s - latency_s at the route's bytes_per_s alone:
 *   each rank pushes (dur_s - latency_s) * bytes_per_s "bus bytes" through each of its hops. Alone
 *   it takes dur_s. Transfers that share a link share its bandwidth (the simulator: max-min fair).
 * - A collective's members all name the same route (the whole collective's links); a send and its
 *   receive too.
 *
 * Shared instructions: ranks whose programs differ only in the names of their groups, peers and
 * routes (the tp, cp and dp lanes of a pipeline stage, lowered to every rank) may share one
 * instruction array: the program says whose (`like`) and how the names map (`renames`); an
 * interpreter reads an instruction through st_program_ins.
 *
 * Symmetry: ranks that would run identical programs on identical inputs (the tp, cp and dp
 * replicas of a pipeline stage) may be lowered once, as one representative rank per stage; the
 * group then lists that representative alone and `replicas` says how many ranks it stands for.
 * Its routes cross the links of every rank it stands for (program.gpu .. gpu + replicas - 1).
 *
 * Operators (what an executor computes): a lowering may list the operators its COMPUTE
 * instructions run, in st_lowered.ops (one table for all programs: the ranks of a stage run the
 * same operators on their own shards). A COMPUTE instruction runs ops[op .. op + nops) one after
 * the other (nops = 0: it names none, e.g. the optimizer step); each entry is one operator of the
 * model's operator graph (src/core/opgraph.c: st_ops_head, st_ops_layer, st_ops_tail) in one phase,
 * with its shape on this rank after sharding. The table lists a backward's operators in the order
 * they run (last layer first). Where the lowering places each collective of the sharding at its
 * operator (st_lower_opts.per_op), the COMPUTE instructions stop at every collective and the COLL
 * names its operator (coll_op); in the fused form a chunk's collectives follow its whole compute,
 * summed per group kind (coll_op -1), which times alike but is not executable. An ILP plan's
 * lowering (src/lower/lower_as.c) names the tensor-level graph's operators (st_graph.ops) and
 * always places each resharding collective at its operator: the COLL names the operator whose
 * output (in backward, whose output's gradient) it reshards.
 */
#ifndef STRATA_PROGRAM_H
#define STRATA_PROGRAM_H

#include "src/core/core.h"


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
    ST_STREAM_GATHER,  /* ZeRO-3's parameter all-gathers, ahead of the compute that needs them */
    ST_STREAMS
};
/* the streams' names, as traces show them ("compute", "p2p", "dp", "copy", "gather") */
extern const char *const st_stream_names[ST_STREAMS];

/* Field types are narrow where a 1T-parameter model on 3,072 GPUs, lowered to every rank, has
 * ~1.5e7 instructions. */
typedef struct st_ins {
    double dur_s;      /* COMPUTE: duration; COLL/SEND/RECV: transfer time alone on its links */
    double latency_s;  /* COLL/SEND/RECV: the part of dur_s that bandwidth sharing does not stretch */
    double bytes;      /* COLL/SEND/RECV: message size per rank (st_cost_collective's `bytes`);
                          a copy-stream COMPUTE: the bytes it copies (0 where not given) */
    double alloc_bytes, free_bytes;
    const char *label; /* static string, e.g. "fwd", "bwd", "send act", "dp reduce-scatter" */
    int32_t chunk, mb; /* pipeline chunk and micro-batch; -1 when not about one */
    union {
        int32_t group; /* COLL: index into st_lowered.groups */
        int32_t peer;  /* SEND/RECV: the other rank */
        int32_t op;    /* COMPUTE: its first operator, an index into st_lowered.ops (with nops) */
    };
    union {
        int32_t tag;     /* SEND/RECV: unique per (sender, receiver) pair */
        int32_t nops;    /* COMPUTE: it runs ops[op .. op + nops); 0 = names none */
        int32_t coll_op; /* COLL: the operator whose collective it is (index into st_lowered.ops); -1 = a
                            sum of several, or none (dp, ZeRO, pipeline, embedding); read only when
                            the lowering names operators (st_lowered.nops > 0) */
    };
    int32_t route;     /* COLL/SEND/RECV: index into st_lowered.routes; -1 = crosses no modelled link */
    int32_t dep[2];    /* instructions of this program that must end first; -1 = none */
    uint8_t kind;      /* st_ins_kind */
    uint8_t phase;     /* st_phase (COMPUTE) */
    uint8_t stream;    /* ST_STREAM_* */
    uint8_t coll;      /* st_coll (COLL) */
} st_ins;

/* A program that runs another's instructions under other names (program.h, "Shared
 * instructions"): every `what` value `from` of the other program's instructions reads `to`. */
typedef enum { ST_RENAME_GROUP, ST_RENAME_PEER, ST_RENAME_ROUTE } st_rename_what;
typedef struct st_rename {
    int32_t what; /* st_rename_what */
    int32_t from, to;
} st_rename;

typedef struct st_program {
    int rank;
    int stage;          /* pipeline stage of this rank */
    int replicas;       /* ranks this program stands for (symmetry) */
    int gpu;            /* the GPU it runs on: ranks gpu .. gpu + replicas - 1 in the cluster's order */
    double base_bytes;  /* memory held for the whole iteration */
    int n, cap;         /* cap < 0: ins lies in one of st_lowered.blocks (-cap slots), not owned */
    st_ins *ins;        /* n instructions, owned (unless cap < 0 or like) */
    /* Shared instructions: non-NULL, a program of the same st_lowered (itself without `like`) whose
     * instructions this one runs (ins and n are its, cap < 0), with the group, peer and route
     * values listed in renames (sorted by what, then from; owned) read as their `to`; the
     * other fields are the same. st_program_ins reads an instruction either way. */
    const struct st_program *like;
    int nrenames;
    st_rename *renames;
} st_program;

typedef struct st_group_def {
    st_group_kind kind;
    int n;         /* member ranks (in this lowering) */
    int *ranks;    /* owned */
} st_group_def;

/* FABRIC: a host node's link into its leaf; LEAF, POD: a leaf's or a pod's uplinks (cluster tiers);
 * GROUPS: a host node's share of the fabric between node groups (st_cluster.xgroup_bytes_per_s) */
typedef enum { ST_LINK_NVLINK, ST_LINK_NIC, ST_LINK_FABRIC, ST_LINK_LEAF, ST_LINK_POD, ST_LINK_GROUPS } st_link_kind;

typedef struct st_link {
    int32_t kind;       /* st_link_kind */
    int32_t dir;        /* 0: out of the GPU / NIC / node, 1: into it */
    int32_t index;      /* the GPU (NVLINK), the node * ports + port (NIC), the node (FABRIC, GROUPS), leaf or pod */
    int32_t rank;       /* the rank whose trace shows it (its own GPU's or node's link); -1: none */
    double bytes_per_s; /* capacity */
    char name[24];      /* e.g. "nvlink 5 out", "nic 2.1 in", "fabric 3 up" */
} st_link;

typedef struct st_hop {
    int32_t link;  /* index into st_lowered.links */
    int32_t count; /* ranks of the transfer crossing it, >= 1 */
} st_hop;

typedef struct st_route {
    int32_t first, n;   /* hops[first .. first + n) */
    double bytes_per_s; /* what each crossing rank gets alone (a transfer's rate without contention) */
} st_route;

/* One operator in one phase, as a COMPUTE instruction runs it (program.h, "Operators"). */
typedef struct st_lowered_op {
    const char *name;      /* the operator graph's name ("qkv", "fc1", "loss", ...): static, or (ILP
                              plans) in one of st_lowered.blocks */
    int32_t layer;         /* its block (0-based); -1: the embedding (st_ops_head), the model's layer
                              count: the output layer (st_ops_tail); ILP plans: the same for the
                              graph's head and tail (st_graph.repeat), a custom graph's segment */
    int16_t index;         /* its position in that block's (head's, tail's) operator list; ILP plans:
                              the operator in st_graph.ops */
    uint8_t cls;           /* st_opclass */
    uint8_t phase;         /* st_phase: FWD, BWD, BWD_INPUT, BWD_WEIGHT (the halves of a split
                              backward, each half the work as cost/ splits it) or RECOMPUTE */
    double m, n, k, batch; /* GEMM shape on this rank (batch of m x k by k x n); 0 for other classes */
    double flops, bytes;   /* this phase's FLOPs and HBM bytes on this rank */
    double dur_s;          /* its time alone, as cost/ prices it */
} st_lowered_op;

typedef struct st_lowered {
    int nranks;
    st_program *progs; /* nranks, owned */
    int ngroups;
    st_group_def *groups; /* owned */
    int nops;
    st_lowered_op *ops; /* owned; NULL (nops 0) when the lowering names no operators */
    int64_t microbatches;
    /* network (program.h, "Network"); all 0 / NULL when not modelled */
    int nlinks, nroutes, nhops;
    st_link *links;   /* owned */
    st_route *routes; /* owned */
    st_hop *hops;     /* owned */
    int nblocks;
    void **blocks;    /* owned: memory that several programs' instructions (or ops' names) lie in */
} st_lowered;

/* Frees what a lowering filled (src/lower/program.c). */
void st_lowered_destroy(st_lowered *l);
/* Instruction i of pg as it runs there (its `like`'s, renamed), into *out. */
void st_program_ins(const st_program *pg, int i, st_ins *out);
/* v renamed by pg's renames of kind `what` (v when pg shares nothing or v is not renamed) */
int32_t st_program_rename(const st_program *pg, st_rename_what what, int32_t v);

/* Checking a lowering before running it (src/lower/validate.c) */

/* Checks that l keeps the rules above that an interpreter indexes by (ranks, groups, peers, routes,
 * deps, links and hops in range; durations, bytes and latencies finite; what a shared program
 * shares and its renames sorted). Returns 0, or ST_EINVAL with err naming the program, group,
 * link or route, or the rank and instruction that breaks one (ST_ENOMEM). */
int st_program_validate(const st_lowered *l, st_error *err);

/* Programs by rank number (st_program.rank names ranks; interpreters index programs). */
typedef struct st_rank_index {
    int n;          /* programs */
    int identity;   /* every program p has rank p: no table */
    int32_t *pairs; /* unless identity: n (rank, program) pairs sorted by rank, owned */
} st_rank_index;
/* Fills x for l's programs (l->nranks >= 0, progs valid): 0, or ST_EINVAL when a rank is negative or
 * two programs claim one (ST_ENOMEM). Free with st_rank_index_destroy (also after a failure). */
int st_rank_index_init(st_rank_index *x, const st_lowered *l, st_error *err);
void st_rank_index_destroy(st_rank_index *x);
/* the program that has rank `rank`, -1 when none */
int st_rank_index_find(const st_rank_index *x, int rank);


#endif
