/* cpu.c: the CPU executor's runtime (exec.h, "running"): one MPI process per rank interprets its
 * lowered program with the decoder of exec/model.c, Open MPI for every transfer and OpenBLAS for the
 * GEMMs, and --check runs the single-rank reference once, on rank 0 (exec/check.c).
 *
 * Parallelism as Megatron-LM runs it: tp and sp inside the model (exec/model.c; sp's replicated
 * gradients summed over tp right before the optimizer); pp by the program's sends and receives in
 * its schedule's order (1F1B, GPipe, or interleaved 1F1B with vp chunks per rank, each with its own
 * activations per micro-batch, from the lowering; the split-backward schedules below); dp by summing
 * the gradients over the dp group (the loss gradient already carries 1/(micro-batches x dp), so the sum
 * is Megatron's average); ZeRO-1 (Rajbhandari et al. 2020; Megatron-LM's distributed optimizer) by a
 * reduce-scatter of the gradients, Adam on this rank's shard, and an all-gather of the parameters;
 * ZeRO-2 alike (the lowering gives it the same collectives: it differs in memory, not in numbers,
 * and this executor keeps the whole gradient buffer); ZeRO-3 by the lowering's per-unit gathers and
 * reduce-scatters around each forward, recompute and backward piece, on shards only ("ZeRO-3" below).
 * Activation recompute (full, selective, op): the program's recompute instruction before each backward
 * (exec/model.c; checked against the operators the lowering names, recompute_mismatch, for op those
 * that torchtitan's policy drops, op_reruns; with ZeRO-3 one per unit), block by block: it makes the
 * chunk's last block's activations again and the backward each other block's right before that block's
 * backward, whose seconds the runtime counts as the recompute's (redo_clock, account). recompute=op runs on
 * dense blocks with the fused attention (check_plan refuses the rest).
 * The tied embedding's gradient is all-reduced between the first and last stage (Megatron-LM's
 * embedding group). An operator-level plan's output layer over the dp group (st_exec_opts' head_dp;
 * exec/model.c, "operator-level plans") runs its gather, vocabulary-parallel loss and reduce-scatter in
 * the program's dp group (hd_*), timed with the tp collectives. ep (MoE): the all-to-alls run inside
 * the model (exec/model.c) in the program's ep groups (ep consecutive ranks of the dp group); the
 * experts' gradients are summed over the ranks of the dp group that hold the same experts
 * (Megatron-LM's expert-data-parallel group, made here by splitting the dp group), the rest over the
 * dp group. ZeRO shards each region of the
 * flat buffers on its own, over the group that sums it: the tied embedding (same size on both end
 * stages, so the pair holds the same shard of it and can all-reduce just that), the experts, and
 * the rest.
 *
 * Split-backward schedules (the lowering's zb, zbv and dualpipe): each backward runs as its input
 * half, whose gradient is sent at once, and its weight half, which frees the micro-batch's
 * activations later (exec/model.c). zbv's V (two chunks per rank) turns on the last stage, where
 * chunk pp - 1 hands its output to chunk pp, and that one its input gradient back, without a message
 * (hand_over). DualPipe (DeepSeek-V3 report Sec. 3.2.1) runs two copies of the pipeline: rank d
 * holds a stage of each (local_chunk), copy A runs the first half of a dp rank's micro-batches and
 * copy B the rest, and mirror ranks d and pp - 1 - d sum both copies' gradients before the optimizer
 * (the lowering's mirror all-reduce), so that Adam keeps the copies alike. With ZeRO-3 the halves run
 * unit by unit, each micro-batch's gradients of a unit kept from its input half to the reduce-scatter
 * after its weight half ("ZeRO-3" below).
 *
 * Stages of different shapes (an operator-level plan's stages on meshes of their own: st_exec_opts' stages,
 * lowered by src/lower/lower_stages.c): each rank runs its stage's plan and splits, its stage's copies in their
 * own groups computing alike. A send or receive of the lowering moves the rows of the micro-batch that the
 * cross-mesh exchange gives the pair (run_xmesh; Alpa's cross-mesh resharding): out of the forward's output, or
 * of the backward's input gradient, which stays until the step's end since other pairs take other rows of it,
 * into the receiver's buffer at the rows' place, used once every row came. dp rank q of a stage runs micro-batch
 * j's (j dp + q)-th share of samples (the plan's micro-batch split over the batch axes: every stage holds the
 * same rows of micro-batch j whatever its dp); the loss gradient's 1/(micro-batches x dp) is then the same per
 * row on every stage. The tied embedding's group holds the end stages' devices of one tp rank; each stage's sum
 * (over its dp group, before) is added once, by its dp rank 0's copy 0, the others adding zeros. The loss and
 * the parameters are counted on copy 0.
 *
 * Context parallelism: inside the model (exec/model.c), in the program's cp groups; the dp group of
 * the lowering is dp x cp ranks, so the dp reduction sums over both, and the loss gradient's
 * 1/(micro-batches x dp x cp) makes that the mean over the tokens of every rank's chunks.
 *
 * Data: dp rank r's micro-batch j holds samples (r * m + j) * mbs .. + mbs of the iteration's gbs
 * (contiguous per dp rank, as Megatron-LM's sampler hands them out; its cp ranks share them); the
 * reference runs the same gbs samples as gbs / mbs micro-batches on one rank, so both compute the
 * mean loss of the same tokens and its gradient. Replicas of different micro-batch counts (the plan's
 * dp_batches, which `plan` balances on node groups of different GPUs) run their own counts, replica r's
 * samples after those of the replicas before it, and every micro-batch's loss gradient carries
 * 1 / (gbs / mbs x cp): the dp sum is then the mean over every token, each replica weighted by its
 * share of the batch.
 *
 * Timing: CLOCK_MONOTONIC after a barrier at each iteration's start; a receive counts its wait for
 * the sender, a send only its start (MPI_Isend), a collective its wait for the slowest member.
 * A backend that queues its work on streams (st__xbackend's ins_begin: the cuda backend's) gets each
 * instruction's program stream and deps before its work and times it by its own events instead: the
 * runtime no longer waits after each instruction, and reads the spans, the tp/ep/cp clocks and the
 * GEMM share from step_end once the step's work is done; the iteration's time stays the host's. The blocks'
 * rebuilds a backward runs (recompute block by block) are timed apart inside it, by the host's clock or the
 * backend's events, and counted as the recompute's (account).
 *
 * Optimizer offload (ZeRO-Offload, Ren et al. 2021; offload=optimizer, or the share offload_optimizer): the
 * last share of each owned part is updated on the host: its fp32 weights (the master copy, copied down with
 * the first step's gradients), gradients and Adam moments in host memory; the program's copy-stream
 * instructions around the optimizer move the gradients down and the weights up (either done by the optimizer
 * itself where the program has none), the CPU's Adam (st__xadam) runs on the host share and the backend's on
 * the rest; with ZeRO-3 the owned parts are the shards, so each shard's host share is the host's and the weights
 * go up into the shard the next step's gathers read (DeepSpeed's ZeRO-3 with offload_optimizer). offload=params
 * (ZeRO-3 with offload_param) also keeps the shards on the host and copies a unit's up before its gathers
 * (z3_upload). The granular shares of the weights and activations are not run (check_plan).
 *
 * Faults (exec/fault.c): every transfer of a step runs in the run's own communicator (a duplicate
 * of the world with MPI_ERRORS_RETURN, and the groups' made from it) as a nonblocking call that
 * st__xwait polls until the timeout, naming this rank's instruction (S->w, kept up to date) when
 * it stops the job. */
#include "exec/exec.h"
#include "exec/exec_private.h"
#include "exec/check.h"
#include "traces/traces.h"

#include <limits.h>
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>


int st_exec_mpi_init(int *rank, int *size, st_error *err) {
    int inited = 0;
    MPI_Initialized(&inited);
    if (!inited && MPI_Init(NULL, NULL) != MPI_SUCCESS)
        return st_error_set(err, ST_EINVAL, NULL, NULL, "MPI_Init failed");
    MPI_Comm_rank(MPI_COMM_WORLD, rank);
    MPI_Comm_size(MPI_COMM_WORLD, size);
    return 0;
}

void st_exec_mpi_barrier(void) { MPI_Barrier(MPI_COMM_WORLD); }

void st_exec_mpi_finalize(void) {
    int fin = 0;
    MPI_Finalized(&fin);
    if (!fin) MPI_Finalize();
}

static double now_s(void) { return MPI_Wtime(); }

/* ---------------------------------------------------------------- the rank's state */

typedef struct region {
    int64_t off, n;  /* in the flat buffers */
    int kind;        /* REG_* */
    int unit;        /* ZeRO-3: the unit that holds it (tensor_unit); 0 otherwise */
    int64_t lo, hi;  /* the part this rank's Adam updates (all of it without ZeRO) */
    int64_t mv;      /* its place among the owned parts (ZeRO-3's shards zp, zg) */
    int64_t dmv;     /* its Adam moments on the device at m + dmv, v + dmv: the owned part but its host share */
    int64_t hn, hmv; /* optimizer offload: the last hn of the owned part updated on the host, its states at hmv */
} region;

/* what a region holds: summed over dp; the tied embedding, also over the end stages; experts, over edp */
enum { REG_REST, REG_TIED, REG_EXPERT };

typedef struct rank_state {
    const st_lowered *l;
    const st_program *pg;
    int rank, tp, tr, dp, dr, zero; /* zero: the optimizer states are sharded (ZeRO-1, -2 or -3) */
    int wrank; /* the world's rank: rank itself, or with copies of the job rank x copies + copy */
    int ep, er;             /* ep degree and this rank's place in its ep group (1, 0 without) */
    int cp, cr;             /* cp degree and this rank's place in its cp group (1, 0 without) */
    MPI_Comm cpc;           /* the cp group's communicator (one of comms) */
    double cp_s, pending_cp_s; /* the cp K/V exchanges' time so far, in the compute before */
    MPI_Comm epc, edpc;     /* the ep group's communicator; the expert-data-parallel one (split, owned) */
    int64_t M, T, gbs;      /* micro-batches of this rank's dp replica, sequence, batch */
    int64_t m0;             /* the replica's first micro-batch of the iteration's gbs / mbs (the replicas before's) */
    double den;             /* the loss's denominator: the iteration's micro-batches x cp (gbs / mbs x cp) */
    int pp, V;              /* pipeline stages; chunks per rank (vp; dualpipe's 2) */
    int dual;               /* schedule=dualpipe (local_chunk) */
    MPI_Comm *comms;        /* per group: its communicator where this rank is a member, else MPI_COMM_NULL */
    MPI_Comm tpc;
    MPI_Comm hdc;           /* head_dp: the dp group's, where the output layer runs (st__xmodel's hcomm) */
    st__xmodel x;
    int nreg;
    region *reg;            /* owned */
    float *m, *v;           /* Adam moments of the owned parts (but their host shares) */
    int64_t nmv;
    /* optimizer offload (ZeRO-Offload, Ren et al. 2021; offload=optimizer or the share offload_optimizer): the
     * owned parts' host shares' fp32 weights (the master copy), gradients and moments in host memory, nh floats
     * each; off_step: the step whose host weights are current (-1: none yet); in a step, whether the gradients
     * went down and the optimizer ran (the copy instructions before and after it, or the optimizer itself) */
    double off_frac;
    int64_t nh, off_step;
    float *hp, *hg, *hm, *hv;
    int grads_down, opt_done, weights_up, up_copy; /* up_copy: the program copies the weights up after the step */
    int grads_final; /* in a step: sp's replicated gradients summed over tp (and --check's kept), before the first
                        of the optimizer and the copy of the gradients down */
    int wte_reg;            /* the region of the tied embedding, -1 when none is shared across stages */
    /* per (chunk of this rank, micro-batch): slot chunk * M + mb */
    st__xacts **acts;       /* between its forward and backward */
    float **act_in, **grad_in; /* received */
    const float **fwd_out;  /* the forward's output, until sent */
    int *bwd_done;
    float **din;            /* per slot: the backward's input gradient, until sent (a copy) */
    int turn;               /* zbv: the chunk whose next chunk runs on this rank too (the V's turn), else -1 */
    int nsends;
    MPI_Request *reqs;      /* this iteration's sends */
    float **sendbufs;
    double tp_s;            /* tp collectives' time so far */
    double ep_s, pending_ep_s; /* the same for the ep all-to-alls */
    double pending_tp_s;    /* the tp collectives' time in the instruction before */
    /* the blocks' rebuilds inside backwards (redo_clock): their seconds so far on the host's clock less the
     * collectives inside, and those collectives' (on the host); the running rebuild's start and collectives then */
    double redo_s, redo_c, redo_t0, redo_c0;
    int *sendins;           /* this iteration's sends: the instruction of each */
    MPI_Comm world;         /* the run's communicator (owned; MPI_ERRORS_RETURN) */
    MPI_Comm job;           /* the job's ranks: the world's, or with replicas (st_exec_opts) this copy's (owned) */
    MPI_Comm all;           /* where a step's failure is agreed on: world, or with replicas every copy's (owned) */
    st__xgcomm gc;          /* the backend's dp collectives (NULL entries: MPI's below) */
    st__xwatch w;           /* where this rank is, for a timeout's or a crash's line */
    st__xfault fault;       /* STRATA_EXEC_FAULT's */
    /* ZeRO-3 (z3_*): this rank's shards of the parameters and gradients (nmv each, region g's at g->mv,
     * like the moments); the unit whose parameters are gathered, the parts of it gathered so far
     * (Z3_DENSE, Z3_EXPERTS) and its buffer; the gradient buffers that wait for their reduce-scatters
     * (npend of pend); per instruction, the unit its gather or reduce-scatter is for (Z3_NONE: none);
     * the rank's dp group (a ZeRO-3 collective in another is the experts' part) */
    int zero3;
    float *zp, *zg;
    int zunit, zmask;
    float *zbuf;
    /* offload=params (ZeRO-3 with DeepSpeed's offload_param): the shards are the host's; the lowering's "weights to
     * device (layer)" before a unit's gathers copies the unit's shards up into zup (zup_unit's), which the gathers
     * send from, and which goes once every part of the unit is gathered */
    int zoff, zup_unit;
    float *zup;
    struct z3_grads *pend;
    int npend, gdp;
    int *zins;
    int32_t *tokens;
    double loss_sum;
    double gemm_s, heap_peak_bytes, run_delay_s; /* st_exec_result.stats */
    /* stages of different shapes (st_exec_opts' stages; staged 0 otherwise): every stage's layout (nstages, owned),
     * the micro-batch's token rows, this rank's copy of its stage's ranks (0 otherwise), and per slot the rows of
     * the message it waits for (its input or output gradient) received so far (owned) */
    int staged, nstages, copy;
    st_stage_shape *shapes;
    int64_t rows;
    int64_t *got;
    int *sent; /* per slot: the input gradient's pairs sent so far this step (run_xmesh frees it after the last) */
} rank_state;

/* st__xmodel's redo_clock: a block's rebuild that a backward runs itself (exec/model.c, redo_timed), counted as
 * the recompute's (account): its seconds on the host's clock less the tp, ep and cp collectives inside, which stay
 * theirs; a backend that queues its work times it by its events instead (redo_mark), less the collectives it ran
 * there and those the host ran inside (redo_c) */
static void redo_clock(void *ctx, int end) {
    rank_state *S = ctx;
    double c = S->tp_s + S->ep_s + S->cp_s;
    if (S->x.be->redo_mark) S->x.be->redo_mark(end);
    if (!end) {
        S->redo_t0 = now_s(), S->redo_c0 = c;
        return;
    }
    S->redo_c += c - S->redo_c0;
    S->redo_s += now_s() - S->redo_t0 - (c - S->redo_c0);
}

static void tp_allreduce(void *ctx, float *buf, int64_t n, int max) {
    rank_state *S = ctx;
    double t0 = now_s();
    MPI_Request q = MPI_REQUEST_NULL;
    int rc = MPI_Iallreduce(MPI_IN_PLACE, buf, (int)n, MPI_FLOAT, max ? MPI_MAX : MPI_SUM, S->tpc, &q);
    st__xwait(&S->w, rc, &q, 1, "tp all-reduce", S->tpc, -1);
    S->tp_s += now_s() - t0;
}

/* st__xcomm's in-place all-gather and reduce-scatter in communicator c, their time added to *clock */
static void allgather_in(rank_state *S, MPI_Comm c, float *buf, int64_t n, const char *what, double *clock) {
    double t0 = now_s();
    MPI_Request q = MPI_REQUEST_NULL;
    int rc = MPI_Iallgather(MPI_IN_PLACE, 0, MPI_FLOAT, buf, (int)n, MPI_FLOAT, c, &q);
    st__xwait(&S->w, rc, &q, 1, what, c, -1);
    *clock += now_s() - t0;
}

static void reduce_scatter_in(rank_state *S, MPI_Comm c, float *out, const float *in, int64_t n, const char *what,
                              double *clock) {
    double t0 = now_s();
    MPI_Request q = MPI_REQUEST_NULL;
    st__xwait(&S->w, MPI_Ireduce_scatter_block(in, out, (int)n, MPI_FLOAT, MPI_SUM, c, &q), &q, 1, what, c, -1);
    *clock += now_s() - t0;
}

static void tp_allgather(void *ctx, float *buf, int64_t n) {
    rank_state *S = ctx;
    allgather_in(S, S->tpc, buf, n, "tp all-gather", &S->tp_s);
}

/* an all-to-all of rows of `width` floats among the n members of c, scounts[i] rows to member i (st__xcomm's
 * alltoallv), its time added to *clock */
static float *alltoallv_in(rank_state *S, MPI_Comm comm, int n, const float *send, const int *scounts, int *rcounts,
                           int64_t width, const char *what, double *clock) {
    double t0 = now_s();
    int *c = malloc((size_t)(4 * n) * sizeof *c);
    float *recv = NULL;
    MPI_Request q = MPI_REQUEST_NULL;
    st__xwait(&S->w, MPI_Ialltoall(scounts, 1, MPI_INT, rcounts, 1, MPI_INT, comm, &q), &q, 1, what, comm, -1);
    if (c) { /* in floats: send counts, displacements, then the same received */
        int64_t so = 0, ro = 0;
        for (int i = 0; i < n; i++) {
            c[i] = (int)(scounts[i] * width), c[n + i] = (int)so, so += c[i];
            c[2 * n + i] = (int)(rcounts[i] * width), c[3 * n + i] = (int)ro, ro += c[2 * n + i];
        }
        recv = malloc((size_t)(ro + 1) * sizeof *recv);
    }
    /* every member takes part whatever it could allocate: a missing one would hang the others */
    static float none;
    int z[1] = {0};
    int rc = c && recv ? MPI_Ialltoallv(send, c, c + n, MPI_FLOAT, recv, c + 2 * n, c + 3 * n, MPI_FLOAT, comm, &q)
                       : MPI_Ialltoall(z, 0, MPI_FLOAT, &none, 0, MPI_FLOAT, comm, &q);
    st__xwait(&S->w, rc, &q, 1, what, comm, -1);
    free(c);
    *clock += now_s() - t0;
    return recv;
}

static float *ep_alltoallv(void *ctx, const float *send, const int *scounts, int *rcounts, int64_t width) {
    rank_state *S = ctx;
    return alltoallv_in(S, S->epc, S->ep, send, scounts, rcounts, width, "ep all-to-all", &S->ep_s);
}

/* moe_rows' dispatch and combine (st__xmodel's tp_a2av) in the tp group */
static float *tp_alltoallv(void *ctx, const float *send, const int *scounts, int *rcounts, int64_t width) {
    rank_state *S = ctx;
    return alltoallv_in(S, S->tpc, S->tp, send, scounts, rcounts, width, "tp all-to-all", &S->tp_s);
}

/* context parallelism's K/V exchanges (exec_private.h, st__xcpcomm) in the cp group */
static void cp_allgather(void *ctx, float *buf, int64_t n) {
    rank_state *S = ctx;
    allgather_in(S, S->cpc, buf, n, "cp all-gather", &S->cp_s);
}

static void cp_reduce_scatter(void *ctx, float *out, const float *in, int64_t n) {
    rank_state *S = ctx;
    reduce_scatter_in(S, S->cpc, out, in, n, "cp reduce-scatter", &S->cp_s);
}

/* the ring's step: to the next cp rank, from the previous (their places in the cp communicator) */
static void cp_ring(void *ctx, const float *send, float *recv, int64_t n) {
    rank_state *S = ctx;
    double t0 = now_s();
    MPI_Request q[2] = {MPI_REQUEST_NULL, MPI_REQUEST_NULL};
    int prev = (S->cr + S->cp - 1) % S->cp, rc = MPI_Irecv(recv, (int)n, MPI_FLOAT, prev, 0, S->cpc, &q[0]);
    if (rc == MPI_SUCCESS) rc = MPI_Isend(send, (int)n, MPI_FLOAT, (S->cr + 1) % S->cp, 0, S->cpc, &q[1]);
    st__xwait(&S->w, rc, q, 2, "cp ring", S->cpc, prev);
    S->cp_s += now_s() - t0;
}

/* an all-to-all of blocks of n in communicator c, its time added to *clock */
static void alltoall_in(rank_state *S, MPI_Comm c, const float *send, float *recv, int64_t n, const char *what,
                        double *clock) {
    double t0 = now_s();
    MPI_Request q = MPI_REQUEST_NULL;
    st__xwait(&S->w, MPI_Ialltoall(send, (int)n, MPI_FLOAT, recv, (int)n, MPI_FLOAT, c, &q), &q, 1, what, c, -1);
    *clock += now_s() - t0;
}

static void cp_alltoall(void *ctx, const float *send, float *recv, int64_t n) {
    rank_state *S = ctx;
    alltoall_in(S, S->cpc, send, recv, n, "cp all-to-all", &S->cp_s);
}

/* attn_rows' all-to-all (st__xcomm) in the tp group */
static void tp_alltoall(void *ctx, const float *send, float *recv, int64_t n) {
    rank_state *S = ctx;
    alltoall_in(S, S->tpc, send, recv, n, "tp all-to-all", &S->tp_s);
}

static void tp_reduce_scatter(void *ctx, float *out, const float *in, int64_t n) {
    rank_state *S = ctx;
    reduce_scatter_in(S, S->tpc, out, in, n, "tp reduce-scatter", &S->tp_s);
}

/* head_dp: the output layer's collectives (st__xmodel's hcomm) in the dp group; their time is the model's
 * collectives', with tp's (the ILP's resharding of the stage, as the tp ones are) */
static void hd_allreduce(void *ctx, float *buf, int64_t n, int max) {
    rank_state *S = ctx;
    double t0 = now_s();
    MPI_Request q = MPI_REQUEST_NULL;
    int rc = MPI_Iallreduce(MPI_IN_PLACE, buf, (int)n, MPI_FLOAT, max ? MPI_MAX : MPI_SUM, S->hdc, &q);
    st__xwait(&S->w, rc, &q, 1, "output layer all-reduce (dp group)", S->hdc, -1);
    S->tp_s += now_s() - t0;
}

static void hd_allgather(void *ctx, float *buf, int64_t n) {
    rank_state *S = ctx;
    allgather_in(S, S->hdc, buf, n, "output layer all-gather (dp group)", &S->tp_s);
}

static void hd_reduce_scatter(void *ctx, float *out, const float *in, int64_t n) {
    rank_state *S = ctx;
    reduce_scatter_in(S, S->hdc, out, in, n, "output layer reduce-scatter (dp group)", &S->tp_s);
}

/* the output layer's rows' targets, in place: n of them from each dp rank */
static void hd_tokens(void *ctx, int32_t *buf, int64_t n) {
    rank_state *S = ctx;
    double t0 = now_s();
    MPI_Request q = MPI_REQUEST_NULL;
    int rc = MPI_Iallgather(MPI_IN_PLACE, 0, MPI_INT32_T, buf, (int)n, MPI_INT32_T, S->hdc, &q);
    st__xwait(&S->w, rc, &q, 1, "output layer targets all-gather (dp group)", S->hdc, -1);
    S->tp_s += now_s() - t0;
}

/* the group of kind k that holds `rank`, and rank's place in it (-1 when none) */
static int find_group(const st_lowered *l, st_group_kind k, int rank, int *pos) {
    for (int g = 0; g < l->ngroups; g++) {
        if (l->groups[g].kind != k) continue;
        for (int i = 0; i < l->groups[g].n; i++)
            if (l->groups[g].ranks[i] == rank) {
                *pos = i;
                return g;
            }
    }
    *pos = 0;
    return -1;
}

/* Whether recompute=op's block_redo (exec/model.c) runs forward operator o again: all but the attention
 * (its output kept) and, of the MLP's GEMMs, the one whose outputs the policy keeps (op_sac's every second
 * aten.mm: SwiGLU's fc1 reruns its w3 half and fc2 none; GELU's fc1 none and fc2 all); an MoE block's router,
 * experts and weighted sum all (exec/model.c moe_redo_dev; the ep all-to-alls' outputs kept, which the lowering
 * leaves out of the recompute: st_cost_op_recompute). A mismatch means that the cost model's policy and the
 * executor's differ. */
static int op_reruns(const st_lowered_op *o, int swiglu) {
    if (o->cls == ST_OPC_ATTENTION) return 0;
    if (!strcmp(o->name, "fc1")) return swiglu;
    if (!strcmp(o->name, "fc2")) return !swiglu;
    return 1;
}

/* What this executor runs; the same answer on every rank (it reads only the plan and the lowering). */
/* The recompute of program pg as this executor runs it (exec/model.c): one right before each
 * backward, of the same chunk and micro-batch, naming the operators it recomputes: full, its chunk's
 * blocks' forward operators in their order; op, those of them that op_reruns says, in their order;
 * selective, attention cores only (scores, softmax, dropout, context, or the fused attention), at least
 * one in each block. Without recompute, none. ZeRO-3 runs them unit by unit (z_layers_re): each
 * backward piece (or input half's) after a recompute piece of its unit, set against that unit's
 * forward piece; of no operators where the unit holds no block (the embedding, the output layer). */
static const char *recompute_mismatch(const st_plan *p, const st_lowered *l, const st_program *pg, int64_t L,
                                      int swiglu) {
    int rec = -1, z3 = p->zero == 3; /* the pending recompute */
    for (int i = 0; i < pg->n; i++) {
        st_ins in, f;
        st_program_ins(pg, i, &in);
        if (in.kind != ST_INS_COMPUTE) continue;
        if (in.phase == ST_PHASE_BWD || in.phase == ST_PHASE_BWD_INPUT) { /* (the weight half needs none) */
            st_ins r;
            if (p->recompute == ST_REC_NONE) continue;
            if (rec < 0) return "a backward without its recompute";
            st_program_ins(pg, rec, &r);
            if (r.chunk != in.chunk || r.mb != in.mb) return "a recompute of another chunk or micro-batch";
            int32_t y = in.nops > 0 ? l->ops[in.op].layer : -2;
            if (z3 && (r.nops > 0 ? l->ops[r.op].layer != y : y >= 0 && y < L)) return "a recompute of another unit";
            rec = -1;
            continue;
        }
        if (in.phase != ST_PHASE_RECOMPUTE) continue;
        if (p->recompute == ST_REC_NONE || rec >= 0) return "a recompute without its backward";
        rec = i;
        if (z3 && in.nops == 0) continue;
        int fi = -1, nb = 0, last = -1;
        for (int j = 0; j < pg->n && fi < 0; j++) { /* the chunk's forward (any micro-batch's; ZeRO-3: the unit's) */
            st_program_ins(pg, j, &f);
            if (f.kind == ST_INS_COMPUTE && f.phase == ST_PHASE_FWD && f.chunk == in.chunk &&
                (!z3 || (f.nops > 0 && in.nops > 0 && l->ops[f.op].layer == l->ops[in.op].layer)))
                fi = j;
        }
        if (fi < 0) return "a recompute of a chunk that runs no forward";
        for (int k = 0; k < f.nops; k++) {
            int32_t y = l->ops[f.op + k].layer;
            if (y >= 0 && y < L && y != last) nb++, last = y;
        }
        int j = 0, blocks = 0, op = p->recompute == ST_REC_OP, whole = op || p->recompute == ST_REC_FULL;
        last = -1;
#define SKIP(g) ((g)->layer < 0 || (g)->layer >= L || (op && !op_reruns(g, swiglu)))
        for (int k = 0; k < in.nops; k++) {
            const st_lowered_op *o = &l->ops[in.op + k];
            if (o->layer != last) blocks++, last = o->layer;
            if (whole) { /* the next block operator of the forward (op: that its policy drops) */
                while (j < f.nops && SKIP(&l->ops[f.op + j])) j++;
                if (j == f.nops || l->ops[f.op + j].layer != o->layer || strcmp(l->ops[f.op + j].name, o->name))
                    return op ? "an op-level recompute that is not the operators its policy drops"
                              : "a full recompute that is not its chunk's blocks' forward";
                j++;
            } else if (o->cls != ST_OPC_ATTENTION && o->cls != ST_OPC_SOFTMAX && o->cls != ST_OPC_BGEMM &&
                       strcmp(o->name, "attn_dropout")) {
                return "a selective recompute of more than the attention core";
            }
        }
        while (whole && j < f.nops && SKIP(&l->ops[f.op + j])) j++;
#undef SKIP
        if (blocks != nb || (whole && j != f.nops)) return "a recompute that misses blocks";
    }
    return rec >= 0 ? "a recompute without its backward" : NULL;
}

/* (stage >= 0: the programs of that pipeline stage only, p its plan; -1: every program) */
static int check_plan(const st_plan *p, const st_lowered *l, const st_model *m, int size, int stage, st_error *err) {
    int64_t L = m->layers;
    if (size != l->nranks)
        return st_error_set(err, ST_EINVAL, NULL, "plan",
                            "the plan runs on %d ranks (tp x pp x dp x cp); mpirun started %d (mpirun -np %d)",
                            l->nranks, size, l->nranks);
    /* offload: the optimizer's states (offload=optimizer, offload_optimizer) and ZeRO-3's shards (offload=params)
     * run; the granular shares of the weights and the activations (offload_params, offload_activations: copies of
     * parts of the blocks inside the passes) do not */
    const char *why = p->offload_params > 0 || p->offload_activations > 0
                          ? "the granular offload of weights or activations (offload_params, offload_activations)"
                      : l->nops == 0 || l->progs == NULL ? "a lowering without operators"
                                                         : NULL;
    if (why) return st_error_set(err, ST_EINVAL, NULL, "plan", "the cpu executor does not run %s yet", why);
    /* recompute=op keeps the SDPA kernel's output and remakes the probabilities in the backward, as the fused
     * kernel does (exec/model.c, block_redo); the unfused core's scores, softmax and context are recomputed */
    /* (without the operator-level splits: st__xmodel_init says so, as it learns of them). With cp the
     * remade probabilities exchange the keys and values again inside the backward (exec/model.c, block_bwd),
     * where the lowering puts that exchange in the recompute (the cp collective of the operator that makes q and
     * k, cost/estimate.c st_cost_op_recompute): the same exchanges, timed under the backward. */
    if (p->recompute == ST_REC_OP && !st_attention_fused(p->attention))
        return st_error_set(err, ST_EINVAL, NULL, "attention",
                            "the cpu executor runs recompute=op with the fused attention (attention=flash), whose "
                            "output torchtitan's policy keeps");
    for (int i = 0; i < l->nranks; i++)
        if (l->progs[i].replicas != 1 || l->progs[i].rank != i)
            return st_error_set(err, ST_EINVAL, NULL, "plan", "the cpu executor needs every rank lowered, in order");
    for (int i = 0; i < l->nranks; i++) {
        if (stage >= 0 && l->progs[i].stage != stage) continue;
        const char *bad = recompute_mismatch(p, l, &l->progs[i], L, m->activation == ST_ACT_SWIGLU);
        if (bad)
            return st_error_set(err, ST_EINVAL, NULL, "plan",
                                "rank %d's program has %s: the cpu executor cannot run it", i, bad);
    }
    return 0;
}

/* STRATA_EXEC_FAULT (exec.h's test hook): parsed, and its rank and instruction in the job */
static int check_fault(const char *env, const st_lowered *l, st__xfault *f, st_error *err) {
    int rc = st__xfault_parse(env, f, err);
    if (rc || f->kind == ST__XFAULT_NONE) return rc;
    if (f->rank >= l->nranks)
        return st_error_set(err, ST_EINVAL, NULL, "STRATA_EXEC_FAULT", "rank %d is not one of the job's %d", f->rank,
                            l->nranks);
    if (f->ins >= l->progs[f->rank].n)
        return st_error_set(err, ST_EINVAL, NULL, "STRATA_EXEC_FAULT",
                            "rank %d's program has %d instructions (0 .. %d), not %d", f->rank, l->progs[f->rank].n,
                            l->progs[f->rank].n - 1, f->ins);
    return 0;
}

/* The rank's chunk of the program's chunk j: j / pp (interleaved: j = c pp + stage; zbv's V: c 0 down,
 * c 1 up). DualPipe's chunks are two copies' stages, copy A's stage d (j = d) and copy B's stage
 * pp - 1 - d (j = 2 pp - 1 - d) on rank d (src/lower/lower.c, chunk_stage): the one with the earlier
 * blocks is the rank's chunk 0, so that mirror ranks d and pp - 1 - d hold the same blocks in the same
 * order (their gradient buffers are alike: the mirror all-reduce sums them whole) and the embedding
 * is in chunk 0, the loss in chunk 1, on ranks 0 and pp - 1 alike. */
static int local_chunk(int pp, int dual, int j) { return dual ? j % pp >= pp / 2 : j / pp; }

/* the blocks of each of the rank's chunks (local_chunk) and whether it holds the embedding and the
 * loss, from the operators its forward instructions run */
static void stage_layers(const st_lowered *l, const st_program *pg, int64_t L, int pp, int V, int dual, int *l0,
                         int *l1, int *first, int *last) {
    for (int c = 0; c < V; c++) l0[c] = (int)L, l1[c] = 0;
    *first = *last = 0;
    for (int i = 0; i < pg->n; i++) {
        st_ins in;
        st_program_ins(pg, i, &in);
        if (in.kind != ST_INS_COMPUTE || in.phase != ST_PHASE_FWD || in.chunk < 0) continue;
        int c = local_chunk(pp, dual, in.chunk);
        if (c >= V) continue;
        for (int k = 0; k < in.nops; k++) {
            int32_t y = l->ops[in.op + k].layer;
            if (y < 0) *first = 1;
            else if (y >= L) *last = 1;
            else {
                if (y < l0[c]) l0[c] = y;
                if (y + 1 > l1[c]) l1[c] = y + 1;
            }
        }
    }
    for (int c = 0; c < V; c++)
        if (l1[c] < l0[c]) l0[c] = l1[c] = 0;
}

/* the size of the group that sums a region and this rank's place in it */
static void region_group(const rank_state *S, const region *g, int *n, int *r) {
    *n = g->kind == REG_EXPERT ? S->dp / S->ep : S->dp;
    *r = g->kind == REG_EXPERT ? S->dr / S->ep : S->dr;
}

/* ZeRO-3: the unit (exec_private.h) that holds tensor t: its block; -1, the embedding's (the token
 * and position embeddings of the first stage); L, the output layer's (the final norm, the output
 * layer, or a later last stage's copy of the tied embedding) */
static int tensor_unit(const st__xmodel *x, const st__xtensor *t) {
    if (t->layer >= 0) return t->layer;
    return !strcmp(t->name, "wpe") || (!strcmp(t->name, "wte") && x->first) ? -1 : (int)x->L;
}

/* the regions (the tensors' runs of one kind, in buffer order; with ZeRO-3 of one unit too) and the
 * owned part of each (ZeRO: this rank's share in the group that sums it, each region on its own) */
static int setup_regions(rank_state *S) {
    st__xmodel *x = &S->x;
    S->wte_reg = -1;
    S->nreg = 0;
    if (!(S->reg = malloc((size_t)(x->ntensors + 1) * sizeof *S->reg))) return ST_ENOMEM;
    for (int i = 0; i < x->ntensors; i++) {
        const st__xtensor *t = &x->tensors[i];
        int kind = t->expert >= 0 ? REG_EXPERT
                   : x->tied && !(x->first && x->last) && !strcmp(t->name, "wte") ? REG_TIED
                                                                                   : REG_REST;
        int unit = S->zero3 ? tensor_unit(x, t) : 0;
        if (S->nreg == 0 || S->reg[S->nreg - 1].kind != kind || S->reg[S->nreg - 1].unit != unit) {
            if (kind == REG_TIED) S->wte_reg = S->nreg;
            S->reg[S->nreg++] = (region){.off = t->off, .kind = kind, .unit = unit};
        }
        S->reg[S->nreg - 1].n += t->nrows * t->ncols;
    }
    S->nmv = S->nh = 0;
    int64_t ndev = 0;
    for (int i = 0; i < S->nreg; i++) {
        region *g = &S->reg[i];
        int np, pr;
        region_group(S, g, &np, &pr);
        int64_t share = (g->n + np - 1) / np;
        g->lo = S->zero ? g->off + (int64_t)pr * share : g->off;
        g->hi = S->zero ? g->lo + share : g->off + g->n;
        if (g->lo > g->off + g->n) g->lo = g->off + g->n;
        if (g->hi > g->off + g->n) g->hi = g->off + g->n;
        g->mv = S->nmv;
        S->nmv += g->hi - g->lo;
        /* offload: the host's share of each owned part, its last floats (cost/offload.c prices a fraction) */
        g->hn = (int64_t)llround(S->off_frac * (double)(g->hi - g->lo));
        g->hmv = S->nh, g->dmv = ndev;
        S->nh += g->hn, ndev += g->hi - g->lo - g->hn;
    }
    /* Adam's moments beside the weights, in the backend's memory (zeroed); the host shares' in host memory */
    S->m = S->x.be->mem_alloc(ndev);
    S->v = S->x.be->mem_alloc(ndev);
    S->off_step = -1;
    if (S->nh) {
        S->hp = malloc((size_t)S->nh * sizeof *S->hp), S->hg = malloc((size_t)S->nh * sizeof *S->hg);
        S->hm = calloc((size_t)S->nh, sizeof *S->hm), S->hv = calloc((size_t)S->nh, sizeof *S->hv);
        if (!S->hp || !S->hg || !S->hm || !S->hv) return ST_ENOMEM;
    }
    return S->m && S->v ? 0 : ST_ENOMEM;
}

/* the counts and displacements of a region's shares, for MPI's v-collectives */
static void shares(const rank_state *S, const region *g, int *counts, int *displs) {
    int np, pr;
    region_group(S, g, &np, &pr);
    int64_t share = (g->n + np - 1) / np;
    for (int r = 0; r < np; r++) {
        int64_t lo = (int64_t)r * share, hi = lo + share;
        if (lo > g->n) lo = g->n;
        if (hi > g->n) hi = g->n;
        counts[r] = (int)(hi - lo);
        displs[r] = (int)lo;
    }
}

/* the gradients and parameters of region g's owned part (ZeRO-3: the shards; otherwise the flat buffers') */
static float *owned_grads(const rank_state *S, const region *g) {
    return S->zero3 ? S->zg + g->mv : S->x.grads + g->lo;
}
static float *owned_params(const rank_state *S, const region *g) {
    return S->zero3 ? S->zp + g->mv : S->x.params + g->lo;
}

/* ---------------------------------------------------------------- ZeRO-3
 *
 * Rajbhandari et al. 2020 (stage 3, P_os+g+p), as PyTorch's FSDP and DeepSpeed run it: a rank holds
 * its shard of each unit's parameters, gradients and Adam moments (the regions' owned parts); the
 * lowering's "zero-3 gather" before each unit's forward, recompute or backward piece all-gathers the
 * unit's parameters over the dp group into a buffer that lives until the forward or backward piece
 * has run (a recompute piece and the backward piece after it share one gather, as the lowering's
 * z_layers_re issues them); a backward piece writes the unit's gradients into a buffer of their own,
 * which the "zero-3 reduce-scatter" after it sums over the dp group into the shards (every
 * micro-batch, as DeepSpeed does) and frees. With a split backward (zb, zbv, dualpipe) the buffer is
 * the micro-batch's and the unit's: the input half writes what it computes into it and the weight
 * half, later, its weight gradients, and the reduce-scatter comes after the weight half (no gather
 * before it: a weight gradient reads no weights). With ep > 1 a unit's experts are sharded over the
 * expert-data-parallel group instead (the ranks of the dp group that hold the same experts), and the
 * lowering's "zero-3 expert gather" and "expert reduce-scatter" in that group move them: a unit is
 * ready when both parts are gathered, and its gradients are freed when both are scattered. The
 * output layer of a tied model that also holds the embedding gathers the embedding's unit with its
 * own, and scatters the gradient it adds to it. The lowering issues the gathers in program order one
 * unit ahead at most (src/lower/lower.c, z_layers_re): this runtime, one thread in program order,
 * holds one unit's parameters at a time, and refuses a program that asks for more. */

#define Z3_NONE (-2) /* no unit (units are -1 .. L) */
/* a unit's parts: the regions the dp group sums, those the edp group sums, those this rank alone
 * holds (the experts where ep = dp x cp: no group to move them, the lowering says nothing of them) */
enum { Z3_LOCAL = 0, Z3_DENSE = 1, Z3_EXPERTS = 2 };

/* one micro-batch's gradients of one unit until their reduce-scatters: slot k, unit u, the parts
 * scattered so far */
typedef struct z3_grads {
    int k, u, mask;
    float *buf;
} z3_grads;

/* whether region g belongs to unit u's gather and reduce-scatter */
static int z3_in_unit(const rank_state *S, const region *g, int u) {
    const st__xmodel *x = &S->x;
    return g->unit == u || (u == (int)x->L && g->unit == -1 && x->tied && x->first && x->last);
}

/* the part region g is in: the experts' with ep > 1 (without, the dp group sums them too) */
static int z3_part(const rank_state *S, const region *g) {
    return g->kind != REG_EXPERT || S->ep == 1 ? Z3_DENSE : S->dp > S->ep ? Z3_EXPERTS : Z3_LOCAL;
}

/* the floats of unit u's regions; *parts, the parts they are in */
static int64_t z3_size(const rank_state *S, int u, int *parts) {
    int64_t n = 0;
    *parts = 0;
    for (int i = 0; i < S->nreg; i++)
        if (z3_in_unit(S, &S->reg[i], u)) n += S->reg[i].n, *parts |= z3_part(S, &S->reg[i]);
    return n;
}

/* the unit of the piece of the chunk a compute instruction runs: its operators' layer (Z3_NONE: none) */
static int z3_piece_unit(const st_lowered *l, const st_ins *in) {
    return in->kind == ST_INS_COMPUTE && in->nops > 0 ? l->ops[in->op].layer : Z3_NONE;
}

/* the first compute after instruction i of pg that waits for i: on one of i's dependencies (from
 * `gathers` on: on one on the gather stream from i on, which runs in order); -1 when none */
static int z3_waiter(const st_program *pg, int i, int gathers) {
    st_ins j, d;
    for (int k = i + 1; k < pg->n; k++) {
        st_program_ins(pg, k, &j);
        if (j.kind != ST_INS_COMPUTE) continue;
        for (int e = 0; e < 2; e++) {
            if (j.dep[e] < 0 || (!gathers && j.dep[e] != i) || j.dep[e] < i) continue;
            st_program_ins(pg, j.dep[e], &d);
            if (!gathers || d.stream == ST_STREAM_GATHER) return k;
        }
    }
    return -1;
}

/* the unit of instruction i of pg where it is a ZeRO-3 gather (that of the piece that waits for it,
 * past a recompute piece of no operators: a unit that recomputes nothing) or reduce-scatter (that of
 * the piece it follows, through the piece's collectives); else Z3_NONE */
static int z3_unit_of(const st_lowered *l, const st_program *pg, int i) {
    st_ins in, j;
    st_program_ins(pg, i, &in);
    if (in.kind != ST_INS_COLL || l->groups[in.group].kind != ST_GRP_DP) return Z3_NONE;
    if (in.coll == ST_COLL_ALLGATHER && in.stream == ST_STREAM_GATHER) {
        for (int k = z3_waiter(pg, i, 1); k >= 0; k = z3_waiter(pg, k, 0)) {
            st_program_ins(pg, k, &j);
            if (j.phase != ST_PHASE_RECOMPUTE || j.nops > 0) return z3_piece_unit(l, &j);
        }
        return Z3_NONE;
    }
    if (in.coll != ST_COLL_REDUCESCATTER) return Z3_NONE;
    for (int k = in.dep[0]; k >= 0; k = j.dep[0]) {
        st_program_ins(pg, k, &j);
        if (j.kind == ST_INS_COMPUTE) return z3_piece_unit(l, &j);
        if (j.kind != ST_INS_COLL || j.stream != ST_STREAM_COMPUTE) break;
    }
    return Z3_NONE;
}

/* the shards (this rank's part of the initial parameters; zero gradients), each instruction's unit,
 * room for the gradient buffers (at most one per slot and unit) */
static int z3_setup(rank_state *S, uint64_t seed, int gdp) {
    S->zunit = Z3_NONE, S->gdp = gdp;
    S->zp = malloc((size_t)(S->nmv ? S->nmv : 1) * sizeof *S->zp);
    S->zg = calloc((size_t)(S->nmv ? S->nmv : 1), sizeof *S->zg);
    S->zins = malloc((size_t)(S->pg->n + 1) * sizeof *S->zins);
    S->pend = malloc((size_t)(S->M * S->V * S->nreg + 1) * sizeof *S->pend);
    if (!S->zp || !S->zg || !S->zins || !S->pend) return ST_ENOMEM;
    for (int i = 0; i < S->nreg; i++)
        st__xmodel_init_values(&S->x, seed, S->zp + S->reg[i].mv, S->reg[i].lo, S->reg[i].hi);
    for (int i = 0; i < S->pg->n; i++) S->zins[i] = z3_unit_of(S->l, S->pg, i);
    /* offload=params: a layer's copy up is the unit of the gather that waits for it */
    S->zup_unit = Z3_NONE;
    for (int i = 0; S->zoff && i < S->pg->n; i++) {
        st_ins in, g;
        st_program_ins(S->pg, i, &in);
        if (in.kind != ST_INS_COMPUTE || in.stream != ST_STREAM_COPY || in.chunk < 0) continue;
        for (int k = i + 1; k < S->pg->n; k++) {
            st_program_ins(S->pg, k, &g);
            if ((g.dep[0] == i || g.dep[1] == i) && S->zins[k] != Z3_NONE) {
                S->zins[i] = S->zins[k];
                break;
            }
        }
    }
    return 0;
}

/* where the gathers of unit u read region g's shard (its owned part): the shards, or with offload=params the copy
 * of them up (z3_upload) */
static const float *z3_shard(const rank_state *S, int u, const region *g) {
    if (!S->zoff || S->zup_unit != u) return S->zp + g->mv;
    int64_t pos = 0;
    for (int i = 0; i < S->nreg && &S->reg[i] != g; i++)
        if (z3_in_unit(S, &S->reg[i], u)) pos += S->reg[i].hi - S->reg[i].lo;
    return S->zup + pos;
}

/* offload=params' "weights to device (layer)": unit u's shards copied from the host up into zup, for its gathers
 * (the lowering's copy precedes them; one unit's at a time). Host memory on either backend, as the shards and the
 * gathers' buffers are (the cuda backend's ZeRO-3 moves them through the host), so the copy is the host's memcpy
 * of the bytes the lowering prices over PCIe. 0, ST_EINVAL or ST_ENOMEM. */
static int z3_upload(rank_state *S, int u) {
    if (u == Z3_NONE) return 0; /* (a copy that no gather waits for: nothing reads it) */
    if (S->zup) return ST_EINVAL;
    int64_t n = 0;
    for (int i = 0; i < S->nreg; i++)
        if (z3_in_unit(S, &S->reg[i], u)) n += S->reg[i].hi - S->reg[i].lo;
    if (!(S->zup = malloc((size_t)(n + 1) * sizeof *S->zup))) return ST_ENOMEM;
    for (int64_t i = 0, pos = 0; i < S->nreg; i++) {
        const region *g = &S->reg[i];
        if (!z3_in_unit(S, g, u)) continue;
        memcpy(S->zup + pos, S->zp + g->mv, (size_t)(g->hi - g->lo) * sizeof *S->zup);
        pos += g->hi - g->lo;
    }
    S->zup_unit = u;
    return 0;
}

/* the copy up given back once the unit's gathers read it */
static void z3_upload_done(rank_state *S) {
    free(S->zup);
    S->zup = NULL, S->zup_unit = Z3_NONE;
}

/* unit u's parameters (grads 0) or gradients (1): the model's tensors pointed at buf, region by region
 * (NULL: at nothing) */
static void z3_point(rank_state *S, int u, int grads, float *buf) {
    int64_t pos = 0;
    for (int i = 0; i < S->nreg; i++) {
        const region *g = &S->reg[i];
        if (!z3_in_unit(S, g, u)) continue;
        st__xmodel_point(&S->x, grads, buf ? buf + pos : NULL, g->off, g->off + g->n);
        pos += g->n;
    }
}

/* part `part` of unit u's regions in communicator c (the group that sums them: ST_EINVAL when its size
 * is not theirs): all-gathered from the shards into buf (scatter 0), or buf's gradients
 * reduce-scattered and added into the shards (1). 0, ST_EINVAL or ST_ENOMEM. */
static int z3_exchange(rank_state *S, int u, int part, MPI_Comm c, float *buf, int scatter) {
    int *counts = malloc((size_t)S->dp * sizeof *counts), *displs = malloc((size_t)S->dp * sizeof *displs);
    float *tmp = scatter ? malloc((size_t)(S->nmv + 1) * sizeof *tmp) : NULL;
    int rc = counts && displs && (tmp || !scatter) ? 0 : ST_ENOMEM, size = 0;
    int64_t pos = 0;
    MPI_Comm_size(c, &size);
    for (int i = 0; !rc && i < S->nreg; i++) {
        const region *g = &S->reg[i];
        if (!z3_in_unit(S, g, u)) continue;
        int np, pr;
        region_group(S, g, &np, &pr);
        if (z3_part(S, g) == part && np != size) rc = ST_EINVAL;
        if (z3_part(S, g) != part || rc) {
            pos += g->n;
            continue;
        }
        shares(S, g, counts, displs);
        MPI_Request q = MPI_REQUEST_NULL;
        int r = scatter ? MPI_Ireduce_scatter(buf + pos, tmp, counts, MPI_FLOAT, MPI_SUM, c, &q)
                        : MPI_Iallgatherv(z3_shard(S, u, g), (int)(g->hi - g->lo), MPI_FLOAT, buf + pos, counts,
                                          displs, MPI_FLOAT, c, &q);
        st__xwait(&S->w, r, &q, 1, scatter ? "zero-3 reduce-scatter" : "zero-3 gather", c, -1);
        for (int64_t e = 0; scatter && e < g->hi - g->lo; e++) S->zg[g->mv + e] += tmp[e];
        pos += g->n;
    }
    free(counts);
    free(displs);
    free(tmp);
    return rc;
}

/* unit u's local part: copied from the shards into buf (scatter 0), or buf's gradients added into them */
static void z3_local(rank_state *S, int u, float *buf, int scatter) {
    int64_t pos = 0;
    for (int i = 0; i < S->nreg; i++) {
        const region *g = &S->reg[i];
        if (!z3_in_unit(S, g, u)) continue;
        const float *src = z3_shard(S, u, g);
        for (int64_t e = 0; z3_part(S, g) == Z3_LOCAL && e < g->n; e++)
            if (scatter) S->zg[g->mv + e] += buf[pos + e];
            else buf[pos + e] = src[e];
        pos += g->n;
    }
}

/* a "zero-3 gather" of part `part` of unit u in c (FSDP's unshard); a part the unit lacks (the expert
 * gather of a unit without experts) moves nothing */
static int z3_gather(rank_state *S, int u, int part, MPI_Comm c) {
    int parts = 0;
    int64_t n = u == Z3_NONE ? 0 : z3_size(S, u, &parts);
    if (u == Z3_NONE || (S->zunit != Z3_NONE && (S->zunit != u || (S->zmask & part)))) return ST_EINVAL;
    if (!(parts & part)) return 0;
    if (S->zunit == Z3_NONE) {
        if (!(S->zbuf = malloc((size_t)(n + 1) * sizeof *S->zbuf))) return ST_ENOMEM;
        z3_point(S, u, 0, S->zbuf);
        z3_local(S, u, S->zbuf, 0);
        S->zunit = u, S->zmask = 0;
    }
    S->zmask |= part;
    int rc = z3_exchange(S, u, part, c, S->zbuf, 0);
    if (S->zup_unit == u && (S->zmask & parts) == parts) z3_upload_done(S);
    return rc;
}

/* whether unit u's parameters are gathered, every part of them */
static int z3_ready(const rank_state *S, int u) {
    int parts = 0;
    z3_size(S, u, &parts);
    return u != Z3_NONE && S->zunit == u && S->zmask == parts;
}

/* the gathered parameters given back after their piece ran (FSDP's reshard) */
static void z3_release(rank_state *S) {
    if (S->zunit == Z3_NONE) return;
    z3_point(S, S->zunit, 0, NULL);
    free(S->zbuf);
    S->zbuf = NULL, S->zunit = Z3_NONE, S->zmask = 0;
}

/* slot k's gradient buffer of unit u (NULL: none waits) */
static z3_grads *z3_pending(const rank_state *S, int k, int u) {
    for (int i = 0; i < S->npend; i++)
        if (S->pend[i].k == k && S->pend[i].u == u) return &S->pend[i];
    return NULL;
}

/* a new gradient buffer for slot k's unit u, zeroed (NULL: one waits already, or out of memory) */
static float *z3_grads_new(rank_state *S, int k, int u) {
    int parts = 0;
    int64_t n = z3_size(S, u, &parts);
    if (z3_pending(S, k, u) || S->npend >= S->M * S->V * S->nreg) return NULL;
    float *buf = calloc((size_t)(n + 1), sizeof *buf);
    if (buf) S->pend[S->npend++] = (z3_grads){k, u, 0, buf};
    return buf;
}

/* a "zero-3 reduce-scatter" of part `part` of slot k's unit u's gradients in c: summed into this
 * rank's shards; the buffer freed once every part went */
static int z3_scatter(rank_state *S, int k, int u, int part, MPI_Comm c) {
    int parts = 0;
    if (u == Z3_NONE) return ST_EINVAL;
    z3_size(S, u, &parts);
    if (!(parts & part)) return 0;
    z3_grads *e = z3_pending(S, k, u);
    if (!e || (e->mask & part)) return ST_EINVAL;
    int rc = z3_exchange(S, u, part, c, e->buf, 1);
    if ((e->mask |= part) == parts) {
        z3_local(S, u, e->buf, 1);
        free(e->buf);
        *e = S->pend[--S->npend];
    }
    return rc;
}

/* ---------------------------------------------------------------- one instruction */

static void gen_tokens(rank_state *S, int64_t step, int64_t first_sample, uint64_t seed) {
    int64_t B = S->x.B, T = S->T;
    for (int64_t b = 0; b < B; b++) st__xtokens(S->tokens + b * (T + 1), T, S->x.V, seed, step, first_sample + b);
}

/* the slot of an instruction's chunk and micro-batch in the per-micro-batch arrays, -1 when none */
static int slot_of(const rank_state *S, const st_ins *in) {
    int c = in->chunk >= 0 ? local_chunk(S->pp, S->dual, in->chunk) : -1;
    return c >= 0 && c < S->V && in->mb >= 0 && in->mb < S->M ? (int)(c * S->M + in->mb) : -1;
}

/* A pipeline transfer's buffer (a chunk's input or output, or their gradients: Ns x h floats) in the
 * backend's memory, where the model reads and writes them (the cuda backend's NCCL sends and receives
 * them there; the cpu backend's is the host's, MPI's); NULL when out of memory. */
static float *p2p_new(const rank_state *S) { return S->x.be->mem_alloc(S->x.Ns * S->x.h); }

static void p2p_free(const rank_state *S, float **p) {
    if (*p) S->x.be->mem_free(*p);
    *p = NULL;
}

/* ZB-V's turn (chunk pp - 1 to pp on the last stage, no message; src/lower/lower.c): the forward's
 * output becomes the next chunk's input, that one's input gradient this one's output gradient */
static int hand_over(rank_state *S, const st_ins *in, const float *src, int backward) {
    if (S->turn < 0 || in->chunk != S->turn + (backward ? 1 : 0) || !src) return 0;
    st_ins to = *in;
    to.chunk = in->chunk + (backward ? -1 : 1);
    int k = slot_of(S, &to);
    if (k < 0) return ST_EINVAL;
    float **dst = backward ? &S->grad_in[k] : &S->act_in[k];
    if (*dst) return ST_EINVAL;
    if (!(*dst = p2p_new(S))) return ST_ENOMEM;
    S->x.be->mem_copy(*dst, src, S->x.Ns * S->x.h);
    return 0;
}

/* what a finished backward (whole, or its input half: split) of slot k leaves: its input gradient din
 * (borrowed; NULL where it holds the embedding) copied until its send (or handed over at the turn),
 * its received gradient freed, and the whole backward's activations (the weight half frees the split
 * one's) */
static int backward_done(rank_state *S, const st_ins *in, int k, const float *din, int split) {
    if (!split) {
        st__xacts_free(S->acts[k]);
        S->acts[k] = NULL;
        S->fwd_out[k] = NULL;
    }
    p2p_free(S, &S->grad_in[k]);
    S->bwd_done[k] = 1;
    if (din && S->turn >= 0 && in->chunk == S->turn + 1) return hand_over(S, in, din, 1);
    if (din) {
        if (S->din[k]) return ST_EINVAL;
        if (!(S->din[k] = p2p_new(S))) return ST_ENOMEM;
        S->x.be->mem_copy(S->din[k], din, S->x.Ns * S->x.h); /* from the backward's scratch */
    }
    return 0;
}

/* A backward (whole, or a zero-bubble schedule's input or weight half: exec/model.c) of slot k; the
 * activations go with the weight gradients (the whole backward's, or the weight half's). */
static int run_backward(rank_state *S, const st_ins *in, int k) {
    if (in->phase == ST_PHASE_BWD_WEIGHT) {
        if (!S->acts[k] || !S->bwd_done[k]) return ST_EINVAL;
        int rc = st__xmodel_backward_weight(&S->x, S->acts[k]);
        st__xacts_free(S->acts[k]);
        S->acts[k] = NULL;
        S->fwd_out[k] = NULL;
        return rc;
    }
    int tail = S->x.last && local_chunk(S->pp, S->dual, in->chunk) == S->V - 1;
    int split = in->phase == ST_PHASE_BWD_INPUT;
    if (!S->acts[k] || S->bwd_done[k] || (!tail && !S->grad_in[k])) return ST_EINVAL;
    if (S->staged && S->grad_in[k] && S->got[k] != S->x.Ns) return ST_EINVAL;
    const float *din = NULL;
    double scale = 1.0 / S->den;
    int rc = split ? st__xmodel_backward_input(&S->x, S->acts[k], S->grad_in[k], scale, &din)
                   : st__xmodel_backward(&S->x, S->acts[k], S->grad_in[k], scale, &din);
    return rc ? rc : backward_done(S, in, k, din, split);
}

/* ZeRO-3: a forward or backward piece (whole, or a split one's input half) of slot k, one unit of its
 * chunk, on that unit's gathered parameters (the backward's gradients into a buffer of their own until
 * their reduce-scatter), which it gives back */
static int z3_piece(rank_state *S, const st_ins *in, int k) {
    int u = z3_piece_unit(S->l, in), last = 0, rc = 0, c = local_chunk(S->pp, S->dual, in->chunk);
    if (!z3_ready(S, u)) return ST_EINVAL;
    if (in->phase == ST_PHASE_FWD) {
        if (!S->acts[k]) { /* the chunk's first piece */
            if (!(S->x.first && c == 0) && !S->act_in[k]) return ST_EINVAL;
            if (!(S->acts[k] = st__xmodel_forward_begin(&S->x, c, S->tokens, S->act_in[k]))) return ST_ENOMEM;
            p2p_free(S, &S->act_in[k]);
        }
        double loss = 0;
        rc = st__xmodel_forward_unit(&S->x, S->acts[k], u, &S->fwd_out[k], &loss, &last);
        if (!rc && last) S->loss_sum += loss;
        if (!rc && last) rc = hand_over(S, in, S->fwd_out[k], 0);
    } else {
        int tail = S->x.last && c == S->V - 1, split = in->phase == ST_PHASE_BWD_INPUT;
        float *buf = NULL;
        if (!S->acts[k] || (!tail && !S->grad_in[k]) || !(buf = z3_grads_new(S, k, u))) return ST_EINVAL;
        z3_point(S, u, 1, buf);
        const float *din = NULL;
        double scale = 1.0 / S->den;
        rc = split ? st__xmodel_backward_input_unit(&S->x, S->acts[k], u, S->grad_in[k], scale, &din, &last)
                   : st__xmodel_backward_unit(&S->x, S->acts[k], u, S->grad_in[k], scale, &din, &last);
        z3_point(S, u, 1, NULL);
        if (!rc && last) rc = backward_done(S, in, k, din, split);
    }
    z3_release(S);
    return rc;
}

/* ZeRO-3: a recompute piece of slot k, on the parameters its backward piece uses next (kept); one of
 * no operators is a unit that recomputes nothing (the embedding, the output layer) */
static int z3_recompute(rank_state *S, const st_ins *in, int k) {
    int u = z3_piece_unit(S->l, in);
    if (k < 0 || !S->acts[k]) return ST_EINVAL;
    if (in->nops == 0) return 0;
    return z3_ready(S, u) ? st__xmodel_recompute_unit(&S->x, S->acts[k], u) : ST_EINVAL;
}

/* ZeRO-3: a weight-gradient half's piece of slot k (no parameters: dW = dout^T x) into the unit's
 * gradient buffer, which its input half made and its reduce-scatter takes after; the activations
 * go after the chunk's last */
static int z3_weight(rank_state *S, const st_ins *in, int k) {
    int u = z3_piece_unit(S->l, in), last = 0;
    if (k < 0 || !S->acts[k] || !z3_pending(S, k, u)) return ST_EINVAL;
    int rc = st__xmodel_backward_weight_unit(&S->x, S->acts[k], u, &last);
    if (!rc && last) {
        st__xacts_free(S->acts[k]);
        S->acts[k] = NULL;
        S->fwd_out[k] = NULL;
    }
    return rc;
}

/* Optimizer offload's copies: the host shares' gradients down to host memory (and, the first time, the weights
 * the host's Adam then keeps as their master copy), and after the step the updated weights back up. */
static int offload_grads_down(rank_state *S, int64_t step) {
    for (int i = 0; i < S->nreg; i++) {
        region *g = &S->reg[i];
        int64_t d = g->hi - g->lo - g->hn;
        if (g->hn <= 0) continue;
        if (S->off_step < 0) S->x.be->mem_copy(S->hp + g->hmv, owned_params(S, g) + d, g->hn);
        S->x.be->mem_copy(S->hg + g->hmv, owned_grads(S, g) + d, g->hn);
    }
    S->off_step = step;
    S->grads_down = 1;
    return 0;
}

static int offload_weights_up(rank_state *S) {
    for (int i = 0; i < S->nreg; i++) {
        region *g = &S->reg[i];
        if (g->hn > 0) S->x.be->mem_copy(owned_params(S, g) + (g->hi - g->lo - g->hn), S->hp + g->hmv, g->hn);
    }
    S->weights_up = 1;
    return 0;
}

static int run_compute(rank_state *S, const st_ins *in, int64_t step, const st_exec_opts *o, int *kind) {
    int mb = in->mb, k = slot_of(S, in), c = in->chunk >= 0 ? local_chunk(S->pp, S->dual, in->chunk) : -1;
    if (in->stream == ST_STREAM_COPY && in->chunk >= 0) { /* offload=params: a unit's shards up before its gathers */
        *kind = in->phase == ST_PHASE_FWD ? ST_EXEC_FWD : ST_EXEC_BWD; /* (compute's: run_compare's "other") */
        return S->zoff ? z3_upload(S, S->zins[S->w.ins]) : ST_EINVAL;
    }
    if (in->stream == ST_STREAM_COPY && in->chunk < 0) { /* optimizer offload's copies around the step */
        *kind = ST_EXEC_OPTIMIZER;
        if (!S->nh) return ST_EINVAL;
        return S->opt_done ? offload_weights_up(S) : offload_grads_down(S, step);
    }
    if (in->phase == ST_PHASE_OPTIMIZER) {
        *kind = ST_EXEC_OPTIMIZER;
        if (S->npend) return ST_EINVAL; /* ZeRO-3: gradients that no reduce-scatter took */
        if (S->nh && !S->grads_down) offload_grads_down(S, step); /* (a program without the copy) */
        for (int i = 0; i < S->nreg; i++) {
            region *g = &S->reg[i];
            int64_t nd = g->hi - g->lo - g->hn;
            if (nd > 0)
                S->x.be->adam(owned_params(S, g), owned_grads(S, g), S->m + g->dmv, S->v + g->dmv, nd, (int)step + 1,
                              ADAM_LR, ADAM_B1, ADAM_B2, ADAM_EPS);
            if (g->hn > 0) /* the CPU's Adam on the host share (DeepSpeed's CPU Adam; the same update) */
                st__xadam(S->hp + g->hmv, S->hg + g->hmv, S->hm + g->hmv, S->hv + g->hmv, g->hn, (int)step + 1,
                          ADAM_LR, ADAM_B1, ADAM_B2, ADAM_EPS);
        }
        S->opt_done = 1;
        return S->nh && !S->up_copy ? offload_weights_up(S) : 0;
    }
    if (in->phase == ST_PHASE_RECOMPUTE) {
        *kind = ST_EXEC_RECOMPUTE;
        if (S->zero3) return z3_recompute(S, in, k);
        return k >= 0 && S->acts[k] ? st__xmodel_recompute(&S->x, S->acts[k]) : ST_EINVAL;
    }
    if (in->phase == ST_PHASE_BWD_WEIGHT) { /* reads no tokens */
        *kind = ST_EXEC_BWD_WEIGHT;
        if (S->zero3) return z3_weight(S, in, k);
        return k >= 0 ? run_backward(S, in, k) : ST_EINVAL;
    }
    if (k < 0 || (in->phase != ST_PHASE_FWD && in->phase != ST_PHASE_BWD && in->phase != ST_PHASE_BWD_INPUT))
        return ST_EINVAL;
    /* the dp replica's samples (the dp group is dp x cp, its cp ranks share their replica's sequences);
     * dualpipe: copy A runs the dp rank's first M / 2 micro-batches, copy B (chunks pp on) the rest */
    int64_t sample = S->m0 + mb + (S->dual && in->chunk >= S->pp ? S->M / 2 : 0);
    /* stages of different shapes: dp rank q's share of micro-batch j, the plan's samples (j dp + q) B .. (exec.h) */
    if (S->staged) sample = (int64_t)mb * S->dp + S->dr;
    if (S->x.first || S->x.last) gen_tokens(S, step, sample * S->x.B, o->seed);
    if (S->zero3) {
        *kind = in->phase == ST_PHASE_FWD ? ST_EXEC_FWD : in->phase == ST_PHASE_BWD ? ST_EXEC_BWD : ST_EXEC_BWD_INPUT;
        return z3_piece(S, in, k);
    }
    if (in->phase == ST_PHASE_FWD) {
        *kind = ST_EXEC_FWD;
        if (S->acts[k] || (!(S->x.first && c == 0) && !S->act_in[k])) return ST_EINVAL;
        if (S->staged && S->act_in[k] && S->got[k] != S->x.Ns) return ST_EINVAL; /* rows the exchange did not bring */
        double loss = 0;
        if (!(S->acts[k] = st__xmodel_forward(&S->x, c, S->tokens, S->act_in[k], &S->fwd_out[k], &loss)))
            return ST_ENOMEM;
        S->loss_sum += loss;
        p2p_free(S, &S->act_in[k]);
        return hand_over(S, in, S->fwd_out[k], 0);
    }
    *kind = in->phase == ST_PHASE_BWD ? ST_EXEC_BWD : ST_EXEC_BWD_INPUT;
    return run_backward(S, in, k);
}

/* the stage of rank r (stages of different shapes), -1 when none */
static int stage_of_rank(const rank_state *S, int r) {
    for (int d = 0; d < S->nstages; d++)
        if (r >= S->shapes[d].first && r < S->shapes[d].first + st_stage_width(&S->shapes[d])) return d;
    return -1;
}

/* Stages of different shapes: a send or receive moves the rows of the micro-batch that the cross-mesh exchange
 * gives the pair (st_stage_exchange; the lowering made one instruction per pair that moves any), out of the
 * forward's output or the backward's input gradient (kept until its last pair's send: other pairs take other rows
 * of it) into the receiver's input or output gradient at their place; the slot counts what came (got). */
static int run_xmesh(rank_state *S, const st_ins *in, int k) {
    int d = S->pg->stage, e = stage_of_rank(S, in->peer), send = in->kind == ST_INS_SEND;
    int me = S->rank - S->shapes[d].first;
    int64_t lo, n, mylo, myn, h = S->x.h;
    if (e < 0) return ST_EINVAL;
    st_stage_rows(&S->shapes[d], S->rows, me, &mylo, &myn);
    if (send) st_stage_exchange(&S->shapes[d], &S->shapes[e], S->rows, me, in->peer - S->shapes[e].first, &lo, &n);
    else st_stage_exchange(&S->shapes[e], &S->shapes[d], S->rows, in->peer - S->shapes[e].first, me, &lo, &n);
    if (n <= 0 || myn != S->x.Ns || lo < mylo || lo + n > mylo + myn) return ST_EINVAL;
    int64_t off = (lo - mylo) * h, cnt = n * h;
    if (send) {
        const float *src = S->bwd_done[k] ? S->din[k] : S->fwd_out[k];
        float *buf = src ? S->x.be->mem_alloc(cnt) : NULL;
        if (!buf) return src ? ST_ENOMEM : ST_EINVAL;
        S->x.be->mem_copy(buf, src + off, cnt);
        if (S->bwd_done[k]) { /* the input gradient: freed once every receiving device of stage e has its rows */
            int pairs = 0;
            for (int r = 0; r < st_stage_width(&S->shapes[e]); r++) {
                int64_t l2, n2;
                st_stage_exchange(&S->shapes[d], &S->shapes[e], S->rows, me, r, &l2, &n2);
                pairs += n2 > 0;
            }
            if (++S->sent[k] >= pairs) p2p_free(S, &S->din[k]);
        }
        S->sendbufs[S->nsends] = buf;
        S->sendins[S->nsends] = S->w.ins;
        MPI_Request *q = &S->reqs[S->nsends++];
        *q = MPI_REQUEST_NULL;
        int rc = MPI_Isend(buf, (int)cnt, MPI_FLOAT, in->peer, in->tag, S->world, q);
        if (rc != MPI_SUCCESS) st__xwait(&S->w, rc, q, 1, "send", S->world, in->peer); /* names it, stops */
        return 0;
    }
    float **slot = S->acts[k] ? &S->grad_in[k] : &S->act_in[k];
    if (!*slot) {
        if (!(*slot = p2p_new(S))) return ST_ENOMEM;
        S->got[k] = 0;
    }
    if (S->got[k] + n > S->x.Ns) return ST_EINVAL; /* more rows than the message has */
    MPI_Request q = MPI_REQUEST_NULL;
    st__xwait(&S->w, MPI_Irecv(*slot + off, (int)cnt, MPI_FLOAT, in->peer, in->tag, S->world, &q), &q, 1, "receive",
              S->world, in->peer);
    S->got[k] += n;
    return 0;
}

/* a send moves the forward's output of its chunk and micro-batch until that one's backward ran,
 * then the backward's input gradient (the lowering sends each right after the compute that makes
 * it); with sp each tp rank sends its own token rows */
static int run_p2p(rank_state *S, const st_ins *in) {
    int k = slot_of(S, in);
    int64_t n = S->x.Ns * S->x.h;
    if (k < 0) return ST_EINVAL;
    if (S->staged) return run_xmesh(S, in, k);
    if (in->kind == ST_INS_SEND) {
        float *buf = S->bwd_done[k] ? S->din[k] : NULL; /* the input gradient's copy goes with the send */
        S->din[k] = NULL;
        if (!buf && !S->bwd_done[k] && S->fwd_out[k] && (buf = p2p_new(S))) S->x.be->mem_copy(buf, S->fwd_out[k], n);
        if (!buf) return S->bwd_done[k] || !S->fwd_out[k] ? ST_EINVAL : ST_ENOMEM;
        if (S->gc.send) { /* the backend's: posted, buf copied */
            S->gc.send(buf, n, in->peer);
            p2p_free(S, &buf);
            return 0;
        }
        S->sendbufs[S->nsends] = buf;
        S->sendins[S->nsends] = S->w.ins;
        MPI_Request *q = &S->reqs[S->nsends++];
        *q = MPI_REQUEST_NULL;
        int rc = MPI_Isend(buf, (int)n, MPI_FLOAT, in->peer, in->tag, S->world, q);
        if (rc != MPI_SUCCESS) st__xwait(&S->w, rc, q, 1, "send", S->world, in->peer); /* names it, stops */
        return 0;
    }
    float **slot = S->acts[k] ? &S->grad_in[k] : &S->act_in[k];
    if (*slot) return ST_EINVAL;
    if (!(*slot = p2p_new(S))) return ST_ENOMEM;
    if (S->gc.recv) {
        S->gc.recv(*slot, n, in->peer);
        return 0;
    }
    MPI_Request q = MPI_REQUEST_NULL;
    st__xwait(&S->w, MPI_Irecv(*slot, (int)n, MPI_FLOAT, in->peer, in->tag, S->world, &q), &q, 1, "receive", S->world,
              in->peer);
    return 0;
}

static int run_coll(rank_state *S, const st_ins *in, int *kind) {
    const st_group_def *gd = &S->l->groups[in->group];
    MPI_Comm c = S->comms[in->group];
    float *gr = S->x.grads, *pa = S->x.params; /* (NULL with ZeRO-3, which uses the shards) */
    if (gd->kind == ST_GRP_TP || gd->kind == ST_GRP_EP || gd->kind == ST_GRP_CP) { /* ran inside the compute */
        *kind = gd->kind == ST_GRP_TP ? ST_EXEC_COLL_TP : gd->kind == ST_GRP_EP ? ST_EXEC_COLL_EP : ST_EXEC_COLL_CP;
        return 0;
    }
    if (c == MPI_COMM_NULL) return ST_EINVAL;
    if (gd->kind == ST_GRP_PP && S->dual) { /* DualPipe's mirror pair: both copies' gradients, owned parts */
        *kind = ST_EXEC_COLL_PP;
        for (int i = 0; i < S->nreg; i++) {
            const region *g = &S->reg[i];
            MPI_Request q = MPI_REQUEST_NULL;
            if (S->gc.allreduce) { /* the backend's (its memory: MPI would read it on the host) */
                S->gc.allreduce(in->group, owned_grads(S, g), g->hi - g->lo);
                continue;
            }
            int r = MPI_Iallreduce(MPI_IN_PLACE, owned_grads(S, g), (int)(g->hi - g->lo), MPI_FLOAT, MPI_SUM, c, &q);
            st__xwait(&S->w, r, &q, 1, "mirror all-reduce", c, -1);
        }
        return 0;
    }
    if (gd->kind == ST_GRP_PP) { /* the tied embedding's gradient, the owned part of it */
        *kind = ST_EXEC_COLL_PP;
        if (S->wte_reg < 0) return ST_EINVAL;
        const region *g = &S->reg[S->wte_reg];
        MPI_Request q = MPI_REQUEST_NULL;
        /* stages of different shapes: the group holds every device of the end stages with this tp rank, and each
         * stage's sum (over its dp group, before) is added once, by its dp rank 0's copy 0 (st_lower_stages) */
        if (S->staged && (S->dr != 0 || S->copy != 0)) S->x.be->mem_zero(owned_grads(S, g), g->hi - g->lo);
        if (S->gc.allreduce) S->gc.allreduce(in->group, owned_grads(S, g), g->hi - g->lo);
        else
            st__xwait(&S->w,
                      MPI_Iallreduce(MPI_IN_PLACE, owned_grads(S, g), (int)(g->hi - g->lo), MPI_FLOAT, MPI_SUM, c, &q),
                      &q, 1, "embedding all-reduce", c, -1);
        return 0;
    }
    if (gd->kind != ST_GRP_DP) return ST_EINVAL;
    *kind = ST_EXEC_COLL_DP;
    if (S->zero3) {
        int u = S->zins[S->w.ins], part = in->group == S->gdp ? Z3_DENSE : Z3_EXPERTS;
        return in->coll == ST_COLL_ALLGATHER ? z3_gather(S, u, part, c) : z3_scatter(S, slot_of(S, in), u, part, c);
    }
    int *counts = malloc((size_t)S->dp * sizeof *counts), *displs = malloc((size_t)S->dp * sizeof *displs);
    int rc = counts && displs ? 0 : ST_ENOMEM;
    for (int i = 0; !rc && i < S->nreg; i++) {
        const region *g = &S->reg[i];
        MPI_Comm gc = g->kind == REG_EXPERT && S->ep > 1 ? S->edpc : c;
        int gi = g->kind == REG_EXPERT && S->ep > 1 ? -1 : in->group; /* the backend's name of gc */
        int np, pr;
        region_group(S, g, &np, &pr);
        shares(S, g, counts, displs);
        MPI_Request q = MPI_REQUEST_NULL;
        const char *what = g->kind == REG_EXPERT && S->ep > 1 ? "expert-data-parallel " : "dp ";
        char name[64];
        if (in->coll == ST_COLL_ALLREDUCE && !S->zero) {
            snprintf(name, sizeof name, "%sall-reduce", what);
            if (S->gc.allreduce) S->gc.allreduce(gi, gr + g->off, g->n);
            else
                st__xwait(&S->w, MPI_Iallreduce(MPI_IN_PLACE, gr + g->off, (int)g->n, MPI_FLOAT, MPI_SUM, gc, &q), &q,
                          1, name, gc, -1);
        } else if (in->coll == ST_COLL_REDUCESCATTER && S->zero) {
            float *tmp = S->x.be->mem_alloc(counts[pr]); /* beside the gradients: NCCL's reduces land there */
            if (!tmp) {
                rc = ST_ENOMEM;
                break;
            }
            snprintf(name, sizeof name, "%sreduce-scatter", what);
            if (S->gc.reduce_scatterv) S->gc.reduce_scatterv(gi, gr + g->off, tmp, counts, displs);
            else
                st__xwait(&S->w, MPI_Ireduce_scatter(gr + g->off, tmp, counts, MPI_FLOAT, MPI_SUM, gc, &q), &q, 1,
                          name, gc, -1);
            S->x.be->mem_copy(gr + g->lo, tmp, counts[pr]);
            S->x.be->mem_free(tmp);
        } else if (in->coll == ST_COLL_ALLGATHER && S->zero) {
            snprintf(name, sizeof name, "%sall-gather", what);
            if (S->gc.allgatherv) {
                S->gc.allgatherv(gi, pa + g->off, counts, displs);
            } else {
                int r = MPI_Iallgatherv(MPI_IN_PLACE, 0, MPI_FLOAT, pa + g->off, counts, displs, MPI_FLOAT, gc, &q);
                st__xwait(&S->w, r, &q, 1, name, gc, -1);
            }
        } else {
            rc = ST_EINVAL;
        }
    }
    free(counts);
    free(displs);
    return rc;
}

/* ---------------------------------------------------------------- --check */

/* --check: the single-rank model, whole on world rank 0 (which runs it: chk.ref), its tensor table only on the
 * others (where each of their blocks lies in it) */
typedef struct reference {
    st__xmodel x;
    float *m, *v;
    double loss;
    st__xcheck chk;
    double d[2 * ST_EXEC_TENSORS]; /* rank 0: the largest differences, then |reference|s (exec/check.c) */
} reference;

/* one iteration of the reference: every micro-batch of the global batch, then its gradients stay
 * for the comparison and Adam runs after it (ref_step) */
static int ref_grads(reference *R, const rank_state *S, int64_t step, uint64_t seed, int32_t *tokens) {
    int64_t mref = S->gbs / R->x.B, T = S->T;
    memset(R->x.grads, 0, (size_t)R->x.nparams * sizeof(float));
    R->loss = 0;
    for (int64_t j = 0; j < mref; j++) {
        for (int64_t b = 0; b < R->x.B; b++)
            st__xtokens(tokens + b * (T + 1), T, R->x.V, seed, step, j * R->x.B + b);
        double loss = 0;
        const float *o;
        st__xacts *a = st__xmodel_forward(&R->x, 0, tokens, NULL, &o, &loss);
        if (!a) return ST_ENOMEM;
        st__xmodel_backward(&R->x, a, NULL, 1.0 / (double)mref, &o);
        st__xacts_free(a);
        R->loss += loss / (double)mref;
    }
    return 0;
}

/* this rank's reduced gradients (owned parts) to --check, each at its offset in the reference (exec/check.c:
 * rank 0 compares its own at once, the others keep theirs for after the step). 0 or ST_ENOMEM. */
static int ref_keep(reference *R, const rank_state *S) {
    const st__xmodel *x = &S->x;
    /* the owned gradients copied to the host (they lie in the backend's memory), at their moments' places */
    float *hg = malloc((size_t)(S->nmv + 1) * sizeof *hg);
    if (!hg) return ST_ENOMEM;
    for (int j = 0; j < S->nreg; j++)
        x->be->mem_copy(hg + S->reg[j].mv, owned_grads(S, &S->reg[j]), S->reg[j].hi - S->reg[j].lo);
    int rc = 0;
    for (int i = 0; i < x->ntensors && !rc; i++) {
        const st__xtensor *t = &x->tensors[i];
        const st__xtensor *u = NULL;
        for (int j = 0; j < R->x.ntensors && !u; j++)
            if (R->x.tensors[j].layer == t->layer && R->x.tensors[j].expert == t->expert &&
                !strcmp(R->x.tensors[j].name, t->name))
                u = &R->x.tensors[j];
        if (!u) continue;
        for (int64_t r = 0; r < t->nrows && !rc; r++)
            for (int64_t c = 0; c < t->ncols && !rc; c++) {
                int64_t e = t->off + r * t->ncols + c;
                const region *g = NULL;
                for (int j = 0; j < S->nreg && !g; j++)
                    if (e >= S->reg[j].lo && e < S->reg[j].hi) g = &S->reg[j];
                if (g)
                    rc = st__xcheck_add(&R->chk, u->off + (t->row0 + r) * u->ncols + t->col0 + c, hg[g->mv + e - g->lo],
                                        R->d);
            }
    }
    free(hg);
    return rc;
}

static void ref_step(reference *R, int64_t step) {
    st__xadam(R->x.params, R->x.grads, R->m, R->v, R->x.nparams, (int)step + 1, ADAM_LR, ADAM_B1, ADAM_B2, ADAM_EPS);
}

/* ---------------------------------------------------------------- the run */

const char *st__xtrace_cat(const struct st_ins *in) {
    return in->kind == ST_INS_COLL                ? "coll"
           : in->kind == ST_INS_SEND              ? "send"
           : in->kind == ST_INS_RECV              ? "recv"
           : in->phase == ST_PHASE_FWD            ? "fwd"
           : in->phase == ST_PHASE_BWD            ? "bwd"
           : in->phase == ST_PHASE_BWD_INPUT      ? "bwd-input"
           : in->phase == ST_PHASE_BWD_WEIGHT     ? "bwd-weight"
           : in->phase == ST_PHASE_RECOMPUTE      ? "recompute"
                                                  : "optimizer";
}

/* rank 0: the kept iteration's spans of every rank (run_steps: each rank's 3 n values, account), in the
 * simulator's processes and threads; a backward that rebuilt blocks (the recompute block by block) shows them as
 * a recompute span of their seconds right before its own */
static int write_trace(const rank_state *S, const double *all, const char *path, st_error *err) {
    const st_lowered *l = S->l;
    st_trace *t = st_trace_open(path, st_stream_names, ST_STREAMS, err);
    if (!t) return err->code ? err->code : ST_EIO;
    for (int r = 0; r < l->nranks; all += 3 * l->progs[r++].n) {
        const st_program *pg = &l->progs[r];
        st_trace_rank(t, pg->rank, pg->stage, 1);
        for (int i = 0, k = 0; i < pg->n; i++, k += 2) {
            st_ins in;
            st_program_ins(pg, i, &in);
            const char *cat = st__xtrace_cat(&in);
            double redo = all[2 * pg->n + i];
            if (redo > 0)
                st_trace_span(t, pg->rank, in.stream, all[k] - redo, all[k], "recompute", "recompute", in.chunk, in.mb);
            st_trace_span(t, pg->rank, in.stream, all[k], all[k + 1], cat, in.label ? in.label : cat, in.chunk, in.mb);
        }
    }
    return st_trace_close(t, err);
}

/* where the rank is, for st__xwait's and the crash handler's line */
static void watch_ins(rank_state *S, int i, const st_ins *in) {
    S->w.ins = i, S->w.mb = in->mb;
    S->w.label = in->label ? in->label : in->kind == ST_INS_SEND ? "send" : in->kind == ST_INS_RECV ? "recv"
                                                   : in->kind == ST_INS_COLL ? "coll" : "compute";
}

static void watch_between(rank_state *S, int64_t step, const char *where) {
    S->w.step = step, S->w.ins = -1, S->w.mb = -1, S->w.label = where;
}

/* the backend's failure (its error() says which call), as rank S's */
static int backend_failed(const rank_state *S, st_error *err) {
    int rc = S->x.be->error ? S->x.be->error(err) : 0;
    return rc ? rc : st_error_set(err, ST_EIO, NULL, NULL, "rank %d: the backend's streams failed", S->rank);
}

/* Instruction i's share of the step's clocks (kind_s, its span in work[2i, 2i + 1] and work[2n + i]): [s, e)
 * its span in seconds from the step's start, tp, ep and cp the seconds of the collectives it ran inside (each
 * shown after the compute, by the COLL instruction that names it, the next instruction of that kind), redo those
 * of the blocks' rebuilds a backward ran itself (the recompute block by block: exec/model.c; their collectives in
 * tp, ep, cp). The rebuilds are the recompute's, as the program and the simulator count them: the per-kind
 * clocks move them from the backward to the recompute, and the trace shows them as a recompute span of their
 * seconds at the backward's start (work[2n + i]; write_trace), the backward's own span after it. Each span is as
 * long as its work; where inside the backward the rebuilds ran (before each block's backward) it does not show. */
static void account(rank_state *S, int i, const st_ins *in, int kind, double s, double e, double tp, double ep,
                    double cp, double redo, double *kind_s, double *work) {
    /* the compute's own time; its tp collectives go to the "tp collectives" after it, its cp
     * exchanges to the "cp collectives" and its ep all-to-alls to the "ep all-to-all" after that */
    kind_s[kind] += e - s - tp - ep - cp - redo;
    kind_s[ST_EXEC_RECOMPUTE] += redo;
    kind_s[ST_EXEC_COLL_TP] += tp;
    kind_s[ST_EXEC_COLL_EP] += ep;
    kind_s[ST_EXEC_COLL_CP] += cp;
    work[2 * i] = s + redo;
    work[2 * i + 1] = e - tp - ep - cp;
    work[2 * S->pg->n + i] = redo;
    if (in->kind == ST_INS_COLL && kind == ST_EXEC_COLL_TP && i > 0) {
        /* shown right after the compute it ran in, with the time it took there */
        work[2 * i] = work[2 * i - 1];
        work[2 * i + 1] = work[2 * i] + S->pending_tp_s;
    }
    if (in->kind == ST_INS_COLL && (kind == ST_EXEC_COLL_EP || kind == ST_EXEC_COLL_CP) && i > 0) {
        work[2 * i] = work[2 * i - 1];
        work[2 * i + 1] = work[2 * i] + (kind == ST_EXEC_COLL_EP ? S->pending_ep_s : S->pending_cp_s);
    }
    S->pending_tp_s = tp;
    if (in->kind == ST_INS_COMPUTE) S->pending_ep_s = ep, S->pending_cp_s = cp;
}

/* Runs the steps. kind_s, spans and S->gemm_s keep the fastest iteration after the first (the
 * first alone with one step): the first pays MPI's connections and the first touches of memory,
 * and on a machine shared with other processes the fastest of the rest is the one least disturbed
 * by them (the minimum estimates the undisturbed machine, as Google Benchmark's repetitions and
 * hyperfine's min do; a median keeps part of the disturbance). Every rank keeps the same
 * iteration: the slowest rank's time decides. work holds the running iteration's spans (3 x n: account). */
static int run_steps(rank_state *S, const st_exec_opts *o, reference *R, st_exec_result *res, double *spans,
                     double *work, double *kind_best, st_error *err) {
    const st_program *pg = S->pg;
    const st__xbackend *be = S->x.be;
    int rc = 0, streams = be->ins_begin != NULL; /* the backend queues on streams, timed by its events */
    double kind_s[ST_EXEC_KINDS], best_s = INFINITY;
    /* streams: per instruction its kind and the host's clocks of the MPI collectives it ran (tp, ep,
     * cp: attn_rows 1's all-to-all; and those inside its blocks' rebuilds), then the backend's tp, ep and cp
     * seconds and its rebuilds' */
    int *kinds = streams ? malloc((size_t)(pg->n + 1) * sizeof *kinds) : NULL;
    double *host = streams ? malloc((size_t)(4 * pg->n + 1) * sizeof *host) : NULL;
    double *coll = streams ? malloc((size_t)(4 * pg->n + 1) * sizeof *coll) : NULL;
    if (streams && (!kinds || !host || !coll)) rc = st_error_set(err, ST_ENOMEM, NULL, NULL, "out of memory");
    for (int64_t step = 0; step < o->steps && !rc; step++) {
        if (S->zero3) memset(S->zg, 0, (size_t)S->nmv * sizeof *S->zg);
        else S->x.be->mem_zero(S->x.grads, S->x.nparams);
        memset(S->bwd_done, 0, (size_t)(S->M * S->V) * sizeof *S->bwd_done);
        memset(kind_s, 0, ST_EXEC_KINDS * sizeof *kind_s);
        S->loss_sum = 0;
        S->grads_down = S->opt_done = S->weights_up = S->grads_final = 0;
        S->nsends = 0;
        if (R) st__xcheck_begin(&R->chk);
        int wsize = 1;
        MPI_Comm_size(S->all, &wsize);
        watch_between(S, step, "its start: the single-rank reference of --check");
        if (R && R->chk.ref && (rc = ref_grads(R, S, step, o->seed, S->tokens + S->x.B * (S->T + 1)))) {
            if (wsize > 1) st__xfail(&S->w, "out of memory"); /* (the others wait for it in the barrier) */
            st_error_set(err, rc, NULL, NULL, "out of memory in the single-rank reference of --check");
            break;
        }
        watch_between(S, step, "the barrier that starts it");
        MPI_Request q = MPI_REQUEST_NULL;
        if (R) { /* rank 0 ran the reference before it: every rank (every copy) waits for that (exec/check.c) */
            st__xwatch bw = st__xcheck_barrier_watch(&S->w, wsize);
            st__xwait(&bw, MPI_Ibarrier(S->all, &q), &q, 1, "barrier", S->all, -1);
        } else {
            st__xwait(&S->w, MPI_Ibarrier(S->world, &q), &q, 1, "barrier", S->world, -1);
        }
        double t0 = now_s(), tp_before = 0, ep_before = 0, cp_before = 0, redo_before = 0, redoc_before = 0;
        double gemm0 = st__xkernels_gemm_s;
        double delay0 = st__xrun_delay_s();
        if (streams && be->step_begin(pg->n)) rc = backend_failed(S, err);
        for (int i = 0; i < pg->n && !rc; i++) {
            st_ins in;
            st_program_ins(pg, i, &in);
            watch_ins(S, i, &in);
            st__xfault_at(&S->fault, &S->w);
            if (streams) be->ins_begin(i, in.stream, in.dep); /* its work on its stream from here */
            if (S->fault.kind == ST__XFAULT_NAN && step == 0 && S->rank == S->fault.rank && i == S->fault.ins) {
                const float nan = NAN;
                S->x.be->mem_copy(S->zero3 ? S->zg : S->x.grads, &nan, 1);
            }
            double s = now_s();
            int kind = ST_EXEC_FWD;
            tp_before = S->tp_s, ep_before = S->ep_s, cp_before = S->cp_s, redo_before = S->redo_s;
            redoc_before = S->redo_c;
            /* the reduced gradients final: before the optimizer, or before optimizer offload's copy of them down */
            if (in.kind == ST_INS_COMPUTE && !S->grads_final &&
                (in.phase == ST_PHASE_OPTIMIZER || (in.stream == ST_STREAM_COPY && in.chunk < 0 && !S->opt_done))) {
                S->grads_final = 1;
                /* sp's replicated gradients summed over tp before anything reads them (tp collectives) */
                for (int g = 0; g < S->nreg; g++)
                    st__xmodel_sp_grads(&S->x, owned_grads(S, &S->reg[g]), S->reg[g].lo, S->reg[g].hi);
                if (R && ref_keep(R, S)) {
                    rc = ST_ENOMEM;
                    if (wsize > 1) st__xfail(&S->w, "out of memory"); /* (its peers would wait for it) */
                    break;
                }
            }
            if (st__xfault_fails(&S->fault, &S->w)) rc = ST_ENOMEM;
            else switch (in.kind) {
            case ST_INS_COMPUTE: rc = run_compute(S, &in, step, o, &kind); break;
            case ST_INS_COLL: rc = run_coll(S, &in, &kind); break;
            default: rc = run_p2p(S, &in); kind = in.kind == ST_INS_SEND ? ST_EXEC_SEND : ST_EXEC_RECV;
            }
            if (streams) be->ins_end(i); /* queued, not waited for: its events time it (step_end) */
            else if (be->sync) be->sync(); /* the instruction's kernels done: its time ends there */
            double e = now_s(), tp = S->tp_s - tp_before, ep = S->ep_s - ep_before, cp = S->cp_s - cp_before;
            if (streams) {
                kinds[i] = kind, host[4 * i] = tp, host[4 * i + 1] = ep, host[4 * i + 2] = cp;
                host[4 * i + 3] = S->redo_c - redoc_before;
            } else {
                account(S, i, &in, kind, s - t0, e - t0, tp, ep, cp, S->redo_s - redo_before, kind_s, work);
            }
            S->heap_peak_bytes = fmax(S->heap_peak_bytes, st__xheap_bytes());
            int kerr = !rc && S->x.be->error ? S->x.be->error(err) : 0; /* a kernel's failure: err says which */
            if (rc)
                st_error_set(err, rc, NULL, "plan", "rank %d instruction %d (%s, micro-batch %d) cannot run", S->rank, i,
                             in.label ? in.label : "?", in.mb);
            rc = rc ? rc : kerr;
            /* its peers may wait for it in a collective or a receive: they stop now, not at their timeout */
            int wsize = 1;
            if (rc) MPI_Comm_size(S->world, &wsize);
            if (rc && wsize > 1) st__xfail(&S->w, rc == ST_ENOMEM ? "out of memory" : err->text);
        }
        if (S->gc.sends_wait && !rc) S->gc.sends_wait(); /* (a rank that failed stops without) */
        if (streams && !rc) {
            /* the GPU's spans and clocks, read once the streams are done (the host's MPI collectives
             * inside an instruction added to its stream's: the stream waited for their result) */
            watch_between(S, step, "its end: waiting for the GPU's streams");
            if (be->step_end(work, coll)) rc = backend_failed(S, err);
            for (int i = 0; i < pg->n && !rc; i++) {
                st_ins in;
                st_program_ins(pg, i, &in);
                double redo = coll[4 * i + 3] - host[4 * i + 3]; /* (the host's collectives inside: theirs) */
                account(S, i, &in, kinds[i], work[2 * i], work[2 * i + 1], coll[4 * i] + host[4 * i],
                        coll[4 * i + 1] + host[4 * i + 1], coll[4 * i + 2] + host[4 * i + 2], redo > 0 ? redo : 0,
                        kind_s, work);
            }
        }
        double gemm_s = st__xkernels_gemm_s - gemm0, delay_s = st__xrun_delay_s() - delay0;
        for (int i = 0; i < S->nsends; i++) { /* each named by the instruction that sent it */
            st_ins in;
            st_program_ins(pg, S->sendins[i], &in);
            watch_ins(S, S->sendins[i], &in);
            st__xwait(&S->w, MPI_SUCCESS, &S->reqs[i], 1, "send", S->world, in.peer);
        }
        for (int i = 0; i < S->nsends; i++) p2p_free(S, &S->sendbufs[i]);
        S->nsends = 0;
        for (int64_t j = 0; S->staged && j < S->M * S->V; j++) /* (run_xmesh's: what no send took) */
            p2p_free(S, &S->din[j]), S->sent[j] = 0;
        double t = now_s() - t0, tmax = 0, loss = 0;
        double mine = S->x.last && S->tr == 0 && S->copy == 0 ? S->loss_sum / S->den : 0;
        /* a loss that is not finite is a diverged run, not a number to print */
        if (!rc && !isfinite(mine))
            rc = st_error_set(err, ST_EINVAL, NULL, "plan", "rank %d step %d: the loss is not finite (the run diverged)",
                              S->rank, (int)step + 1);
        if (!rc && R) rc = st__xcheck_step_error(&R->chk, S->rank, step, err);
        /* one rank's failure stops every rank: agree before the next collective that could hang */
        int bad = rc != 0 ? S->wrank : INT_MAX, first = INT_MAX; /* (a world rank: copies agree too) */
        watch_between(S, step, "its end: the ranks agree on errors, time and loss");
        st__xwait(&S->w, MPI_Iallreduce(&bad, &first, 1, MPI_INT, MPI_MIN, S->all, &q), &q, 1, "all-reduce",
                  S->all, -1);
        if (first != INT_MAX) {
            res->failed_by = first + 1;
            if (!rc) rc = st_error_set(err, ST_EINVAL, NULL, "plan", "world rank %d failed (its line says why)", first);
            break;
        }
        if (R) { /* every rank's (every copy's) gradients to world rank 0, after the timed part */
            watch_between(S, step, "its end: the gradients to rank 0 for --check");
            if ((rc = st__xcheck_gather(&R->chk, &S->w, S->all, S->wrank, wsize, R->d))) {
                if (wsize > 1) st__xfail(&S->w, "out of memory"); /* (the others would wait for it in the next step) */
                st_error_set(err, rc, NULL, NULL, "out of memory");
                break;
            }
        }
        MPI_Request r2[2] = {MPI_REQUEST_NULL, MPI_REQUEST_NULL};
        int rc2 = MPI_Iallreduce(&t, &tmax, 1, MPI_DOUBLE, MPI_MAX, S->world, &r2[0]);
        if (rc2 == MPI_SUCCESS) rc2 = MPI_Ireduce(&mine, &loss, 1, MPI_DOUBLE, MPI_SUM, 0, S->world, &r2[1]);
        st__xwait(&S->w, rc2, r2, 2, "reduce to rank 0", S->world, S->rank == 0 ? -1 : 0);
        if (step == 0 || (step == 1 && o->steps > 1) || tmax < best_s) {
            best_s = tmax, S->gemm_s = gemm_s, S->run_delay_s = delay_s, res->kept_step = (int)step;
            memcpy(kind_best, kind_s, sizeof kind_s);
            memcpy(spans, work, (size_t)(3 * pg->n) * sizeof *spans);
        }
        if (S->rank == 0) {
            res->loss[step] = loss;
            res->iteration_s[step] = tmax;
            if (R && R->chk.ref) {
                res->ref_loss[step] = R->loss;
                if (fabs(loss - R->loss) > res->loss_diff) res->loss_diff = fabs(loss - R->loss);
            }
        }
        if (R && R->chk.ref) ref_step(R, step);
    }
    free(kinds);
    free(host);
    free(coll);
    return rc;
}

static void state_destroy(rank_state *S) {
    free(S->hp), free(S->hg), free(S->hm), free(S->hv);
    if (S->edpc != MPI_COMM_NULL) MPI_Comm_free(&S->edpc);
    if (S->comms)
        for (int g = 0; g < S->l->ngroups; g++)
            if (S->comms[g] != MPI_COMM_NULL) MPI_Comm_free(&S->comms[g]);
    if (S->all != S->world && S->all != MPI_COMM_NULL) MPI_Comm_free(&S->all); /* before world: it may be world */
    if (S->world != MPI_COMM_NULL) MPI_Comm_free(&S->world);
    if (S->job != MPI_COMM_WORLD && S->job != MPI_COMM_NULL) MPI_Comm_free(&S->job);
    for (int64_t j = 0; S->acts && j < S->M * S->V; j++) {
        st__xacts_free(S->acts[j]);
        p2p_free(S, &S->act_in[j]);
        p2p_free(S, &S->grad_in[j]);
    }
    free(S->comms);
    free(S->acts);
    free(S->act_in);
    free(S->grad_in);
    free(S->fwd_out);
    free(S->bwd_done);
    for (int64_t j = 0; S->din && j < S->M * S->V; j++) p2p_free(S, &S->din[j]);
    free(S->din);
    free(S->reqs);
    free(S->sendbufs);
    free(S->sendins);
    free(S->tokens);
    if (S->x.be) {
        S->x.be->mem_free(S->m);
        S->x.be->mem_free(S->v);
    }
    free(S->reg);
    free(S->zp);
    free(S->zup);
    free(S->zg);
    free(S->zbuf);
    for (int i = 0; S->pend && i < S->npend; i++) free(S->pend[i].buf);
    free(S->pend);
    free(S->zins);
    free(S->shapes);
    free(S->got);
    free(S->sent);
    st__xmodel_destroy(&S->x);
}

/* the run's communicator (the job's ranks, errors returned to st__xwait), then the communicators
 * of the groups this rank is in, made from it, in the lowering's group order (MPI_Comm_create_group
 * is collective over the group's members only, so every member makes the same ones in the same
 * order); they inherit its error handler */
static int make_comms(rank_state *S) {
    const st_lowered *l = S->l;
    MPI_Group world;
    if (MPI_Comm_dup(S->job, &S->world) != MPI_SUCCESS) return ST_EINVAL;
    MPI_Comm_set_errhandler(S->world, MPI_ERRORS_RETURN);
    /* copies agree on a failure too: one that stopped alone would leave the others waiting at the exit */
    S->all = S->world;
    if (S->job != MPI_COMM_WORLD) {
        if (MPI_Comm_dup(MPI_COMM_WORLD, &S->all) != MPI_SUCCESS) return ST_EINVAL;
        MPI_Comm_set_errhandler(S->all, MPI_ERRORS_RETURN);
    }
    MPI_Comm_group(S->world, &world);
    for (int g = 0; g < l->ngroups; g++) {
        S->comms[g] = MPI_COMM_NULL;
        int in = 0;
        for (int i = 0; i < l->groups[g].n; i++) in |= l->groups[g].ranks[i] == S->rank;
        if (!in) continue;
        MPI_Group grp;
        MPI_Group_incl(world, l->groups[g].n, l->groups[g].ranks, &grp);
        int rc = MPI_Comm_create_group(S->world, grp, g, &S->comms[g]);
        MPI_Group_free(&grp);
        if (rc != MPI_SUCCESS) {
            MPI_Group_free(&world);
            return ST_EINVAL;
        }
    }
    MPI_Group_free(&world);
    return 0;
}

/* every rank's (rank, kind_s) and the kept iteration's spans to rank 0 */
static int gather(const rank_state *S, const st_exec_opts *o, const double *spans, const double *kind_s,
                  st_exec_result *res, st_error *err) {
    const st_lowered *l = S->l;
    int n = l->nranks, rc = 0, *counts = NULL, *displs = NULL;
    double *all = NULL;
    const st__xwatch *w = &S->w;
    MPI_Request q = MPI_REQUEST_NULL;
    MPI_Comm world = S->job;
    int mrc = MPI_Igather(kind_s, ST_EXEC_KINDS, MPI_DOUBLE, res->kind_s, ST_EXEC_KINDS, MPI_DOUBLE, 0, world, &q);
    st__xwait(w, mrc, &q, 1, "gather", world, -1);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double stats[ST_EXEC_STATS] = {[ST_EXEC_GEMM_S] = S->gemm_s, [ST_EXEC_HEAP_PEAK_BYTES] = S->heap_peak_bytes,
                                   [ST_EXEC_RSS_PEAK_BYTES] = (double)ru.ru_maxrss * 1024, /* Linux: KiB */
                                   [ST_EXEC_RUN_DELAY_S] = S->run_delay_s};
    if (o->backend == ST_EXEC_CUDA)
        st__xcuda_memory(&stats[ST_EXEC_DEVICE_PEAK_BYTES], &stats[ST_EXEC_DEVICE_USED_PEAK_BYTES]);
    mrc = MPI_Igather(stats, ST_EXEC_STATS, MPI_DOUBLE, res->stats, ST_EXEC_STATS, MPI_DOUBLE, 0, world, &q);
    st__xwait(w, mrc, &q, 1, "gather", world, -1);
    if (!o->trace) return 0;
    int64_t total = 0;
    if (S->rank == 0) {
        counts = malloc((size_t)n * sizeof *counts);
        displs = malloc((size_t)n * sizeof *displs);
        for (int r = 0; counts && displs && r < n; r++) {
            counts[r] = 3 * l->progs[r].n;
            displs[r] = (int)total;
            total += counts[r];
        }
        all = malloc((size_t)(total ? total : 1) * sizeof *all);
    }
    /* the other ranks take part whatever rank 0 could allocate: a gather into nothing would hang */
    int ok = S->rank != 0 || (counts && displs && all);
    st__xwait(w, MPI_Ibcast(&ok, 1, MPI_INT, 0, world, &q), &q, 1, "broadcast", world, -1);
    if (!ok) {
        rc = st_error_set(err, ST_ENOMEM, NULL, NULL, "out of memory for the trace");
        goto out;
    }
    mrc = MPI_Igatherv(spans, 3 * S->pg->n, MPI_DOUBLE, all, counts, displs, MPI_DOUBLE, 0, world, &q);
    st__xwait(w, mrc, &q, 1, "gather", world, -1);
    if (S->rank == 0 && S->wrank == 0) rc = write_trace(S, all, o->trace, err); /* copy 0's alone */
    st__xwait(w, MPI_Ibcast(&rc, 1, MPI_INT, 0, world, &q), &q, 1, "broadcast", world, -1);
    if (rc && S->rank != 0) st_error_set(err, rc, o->trace, NULL, "rank 0 could not write the trace");
out:
    free(counts);
    free(displs);
    free(all);
    return rc;
}

/* A step of the cuda backend's setup that failed on some rank fails on every rank (collective over
 * the world): rank 0's err says the first failing rank's reason. 0, or ST_EINVAL on every rank. */
static int agree(int failed, int rank, int size, st_error *err) {
    int first = failed ? rank : size, bad = size;
    MPI_Allreduce(&first, &bad, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    if (bad == size) return 0;
    if (bad != 0 && rank == bad) MPI_Send(err->text, sizeof err->text, MPI_CHAR, 0, 0, MPI_COMM_WORLD);
    if (bad != 0 && rank == 0) {
        MPI_Recv(err->text, sizeof err->text, MPI_CHAR, bad, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        err->text[sizeof err->text - 1] = 0;
    }
    return err->code = ST_EINVAL;
}

/* Stages of different shapes (st_exec_opts' stages): every stage's layout (new, nstages; NULL when out of memory),
 * as st_lower_stages lays the ranks out */
static st_stage_shape *stage_shapes(const st_exec_opts *o) {
    st_stage_shape *sh = malloc((size_t)(o->nstages > 0 ? o->nstages : 1) * sizeof *sh);
    for (int d = 0, first = 0; sh && d < o->nstages; d++) {
        const st_plan *q = o->stages[d].plan;
        sh[d] = (st_stage_shape){.tp = q->tp, .dp = q->dp, .sp = q->sp, .copies = o->stages[d].copies, .first = first};
        first += st_stage_width(&sh[d]);
    }
    return sh;
}

/* What runs of them (the same answer on every rank): each stage's plan as check_plan takes it, on its programs;
 * the ranks laid out as the stages say; the tied embedding's tables split alike on the end stages, not by ZeRO
 * there (its gradient is summed over devices of both, each stage's sum added once: run_coll) */
static int check_stages(const st_model *m, const st_lowered *l, const st_exec_opts *o, int size, st_error *err) {
    int S = o->nstages, rc = 0;
    if (o->backend != ST_EXEC_CPU || o->replicas > 1 || S < 2)
        return st_error_set(err, ST_EINVAL, NULL, "stages",
                            "stages of different shapes run on the cpu backend, %d stages with their own copies, not "
                            "%s", S, o->backend != ST_EXEC_CPU ? "the cuda backend" : "copies of the whole job");
    if (size != l->nranks)
        return st_error_set(err, ST_EINVAL, NULL, "plan",
                            "the plan's stages run on %d ranks (each stage's tp x dp x copies); mpirun started %d "
                            "(mpirun -np %d)", l->nranks, size, l->nranks);
    for (int d = 0; d < S && !rc; d++) {
        const st_plan *q = o->stages[d].plan;
        if (q->pp != S || q->vp != 1 || q->cp != 1 || o->stages[d].copies < 1 ||
            q->mbs * q->dp != o->stages[0].plan->mbs * o->stages[0].plan->dp)
            return st_error_set(err, ST_EINVAL, NULL, "stages",
                                "stage %d's plan is not one of a pipeline of %d stages (vp 1, cp 1, one micro-batch)",
                                d, S);
        rc = check_plan(q, l, m, size, d, err);
    }
    st_stage_shape *sh = stage_shapes(o);
    if (!sh) return rc ? rc : st_error_set(err, ST_ENOMEM, NULL, NULL, "out of memory");
    int n = st_stage_width(&sh[S - 1]) + sh[S - 1].first;
    for (int i = 0; !rc && i < l->nranks; i++)
        if (n != l->nranks || l->progs[i].stage < 0 || l->progs[i].stage >= S || i < sh[l->progs[i].stage].first ||
            i >= sh[l->progs[i].stage].first + st_stage_width(&sh[l->progs[i].stage]))
            rc = st_error_set(err, ST_EINVAL, NULL, "stages",
                              "the lowering's rank %d is not where its stage %d lies (%d ranks; the stages' %d)", i,
                              l->progs[i].stage, l->nranks, n);
    const st_plan *a = o->stages[0].plan, *z = o->stages[S - 1].plan;
    int whole0 = a->tp == 1, wholez = z->tp == 1 || o->stages[S - 1].head_dp;
    if (!rc && m->tied_embeddings && (whole0 != wholez || (!whole0 && a->tp != z->tp)))
        rc = st_error_set(err, ST_EINVAL, NULL, "stages",
                          "the tied embedding's table is %s on stage 0 and %s on stage %d: the executor sums its "
                          "gradient between end stages that hold it alike", whole0 ? "whole" : "split over tp",
                          wholez ? "whole" : "split over tp", S - 1);
    if (!rc && m->tied_embeddings && ((a->zero && a->dp > 1) || (z->zero && z->dp > 1)))
        rc = st_error_set(err, ST_EINVAL, NULL, "stages",
                          "the tied embedding's gradient between end stages of different shapes is summed whole: "
                          "ZeRO on stage %d shards it", a->zero && a->dp > 1 ? 0 : S - 1);
    free(sh);
    return rc;
}

int st_exec_run(const st_model *m, const st_plan *p, const st_lowered *l, const st_exec_opts *o,
                st_exec_result *res, st_error *err) {
    rank_state S = {0};
    reference R = {0}, *Rp = NULL;
    double *spans = NULL, kind_s[ST_EXEC_KINDS] = {0};
    int rc = 0, size = 0, *l0 = NULL, *l1 = NULL, whole[2] = {0, (int)m->layers};
    memset(res, 0, sizeof *res);
    int wrank = 0, reps = o->replicas > 1 ? o->replicas : 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &wrank);
    S.wrank = wrank;
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    /* stages of different shapes: this rank's stage's plan and splits are the run's */
    st_exec_opts ostage;
    if (o->stages) {
        if ((rc = check_stages(m, l, o, size, err))) {
            res->refused = 1;
            return rc;
        }
        const st_exec_stage *x = &o->stages[l->progs[wrank].stage];
        ostage = *o;
        ostage.attn_rows = x->attn_rows, ostage.moe_rows = x->moe_rows, ostage.router_h = x->router_h;
        ostage.head_dp = x->head_dp;
        o = &ostage, p = x->plan;
    }
    if ((rc = st_exec_job_rank(l->nranks, reps, o->backend, wrank, size, &S.rank, err))) {
        res->refused = 1;
        return rc;
    }
    if (reps > 1) size = l->nranks; /* the copy's */
    res->rank = S.rank, res->nranks = size, res->steps = o->steps;
    if ((rc = check_plan(p, l, m, size, o->stages ? l->progs[S.rank].stage : -1, err)) ||
        (rc = check_fault(getenv("STRATA_EXEC_FAULT"), l, &S.fault, err))) {
        res->refused = 1;
        return rc;
    }
    S.world = S.all = MPI_COMM_NULL, S.job = MPI_COMM_WORLD;
    S.w = (st__xwatch){.timeout_s = o->timeout_s > 0 ? o->timeout_s : ST_EXEC_TIMEOUT_S, .rank = S.rank,
                       .world = MPI_COMM_WORLD, .step = -1, .ins = -1, .mb = -1, .label = "the setup"};
    const st__xbackend *be = &st__xbackend_cpu;
    /* every rank starts its GPU; one that cannot stops them all */
    if (o->backend == ST_EXEC_CUDA && (rc = agree(st__xcuda_open(&be, err) != 0, S.rank, size, err))) {
        st__xcuda_close();
        res->refused = 1;
        return rc;
    }
    st__xkernels_reference = o->reference_kernels;
    st__xkernels_threads(1); /* one core per rank (the ranks are the parallelism) */
    S.l = l;
    S.pg = &l->progs[S.rank];
    if (o->stages) {
        S.staged = 1, S.nstages = o->nstages, S.shapes = stage_shapes(o), S.rows = p->mbs * p->dp * p->seq;
        if (S.shapes) S.copy = (S.rank - S.shapes[S.pg->stage].first) % S.shapes[S.pg->stage].copies;
    }
    S.M = l->microbatches, S.T = p->seq, S.gbs = p->gbs, S.zero = p->zero >= 1 && p->zero <= 3;
    S.zero3 = p->zero == 3;
    S.pp = p->pp, S.dual = p->schedule == ST_SCHED_DUALPIPE, S.V = S.dual ? 2 : p->vp;
    /* zbv's V turns on the last stage: chunk pp - 1 hands over to chunk pp there */
    S.turn = p->schedule == ST_SCHED_ZBV && S.pg->stage == p->pp - 1 ? p->pp - 1 : -1;
    int gt = find_group(l, ST_GRP_TP, S.rank, &S.tr), gd = find_group(l, ST_GRP_DP, S.rank, &S.dr);
    S.tp = gt >= 0 ? l->groups[gt].n : 1;
    S.dp = gd >= 0 ? l->groups[gd].n : 1;
    int ge = find_group(l, ST_GRP_EP, S.rank, &S.er), gc = find_group(l, ST_GRP_CP, S.rank, &S.cr);
    S.ep = ge >= 0 ? l->groups[ge].n : 1;
    S.cp = gc >= 0 ? l->groups[gc].n : 1;
    /* the replica's micro-batches (dp_batches[r] where the plan lists them: each replica runs its own count, its
     * samples after the replicas before it), and the loss over all of the iteration's */
    int replica = S.dr / S.cp;
    S.M = st_plan_replica_microbatches(p, replica), S.m0 = 0;
    for (int r = 0; r < replica; r++) S.m0 += st_plan_replica_microbatches(p, r);
    S.den = (double)(p->gbs / p->mbs) * S.cp;
    /* offload=params offloads the optimizer whole too (cost/memory.c: no weights or optimizer state on the GPU) */
    S.off_frac = p->offload == ST_OFF_OPTIMIZER || p->offload == ST_OFF_PARAMS ? 1 : p->offload_optimizer;
    S.zoff = p->offload == ST_OFF_PARAMS && S.zero3;
    for (int i = 0, opt = 0; i < S.pg->n; i++) { /* does a copy bring the weights back after the optimizer? */
        st_ins in;
        st_program_ins(S.pg, i, &in);
        opt |= in.kind == ST_INS_COMPUTE && in.phase == ST_PHASE_OPTIMIZER;
        S.up_copy |= opt && in.kind == ST_INS_COMPUTE && in.stream == ST_STREAM_COPY && in.chunk < 0;
    }
    S.epc = S.edpc = MPI_COMM_NULL;
    l0 = calloc((size_t)S.V, sizeof *l0), l1 = calloc((size_t)S.V, sizeof *l1);
    st__xpart part = {.B = p->mbs, .T = p->seq, .tp = S.tp, .tr = S.tr, .sp = p->sp, .attn_rows = o->attn_rows,
                      .moe_rows = o->moe_rows, .router_h = o->router_h, .ep = S.ep, .er = S.er,
                      .hd = o->head_dp ? S.dp : 1, .hr = o->head_dp ? S.dr : 0,
                      .cp = S.cp, .cr = S.cr, .cp_comm = p->cp_comm,
                      .nchunks = S.V, .l0 = l0, .l1 = l1, .be = be,
                      .recompute = p->recompute == ST_REC_OP          ? 3
                                   : p->recompute == ST_REC_FULL      ? 2
                                   : p->recompute == ST_REC_SELECTIVE ? 1
                                                                      : 0,
                      .sharded = S.zero3};
    if (l0 && l1) stage_layers(l, S.pg, m->layers, S.pp, S.V, S.dual, l0, l1, &part.first, &part.last);
    /* a refusal of the model's shape is every rank's (each checks the same numbers); running out of
     * memory may be one rank's: all of them learn it below before any collective that could hang */
    rc = l0 && l1 ? st__xmodel_init(&S.x, m, &part, o->seed, err)
                  : st_error_set(err, ST_ENOMEM, NULL, NULL, "out of memory");
    if (!rc && (p->mbs * p->seq * m->hidden > 0x7fffffff || S.x.nparams > 0x7fffffff))
        rc = st_error_set(err, ST_EINVAL, NULL, "model", "the cpu executor moves at most 2^31 floats in one message");
    S.comms = calloc((size_t)(l->ngroups ? l->ngroups : 1), sizeof *S.comms);
    for (int g = 0; S.comms && g < l->ngroups; g++) S.comms[g] = MPI_COMM_NULL; /* until make_comms */
    size_t M = (size_t)(S.M * S.V);
    S.acts = calloc(M, sizeof *S.acts);
    S.act_in = calloc(M, sizeof *S.act_in);
    S.grad_in = calloc(M, sizeof *S.grad_in);
    S.fwd_out = calloc(M, sizeof *S.fwd_out);
    S.bwd_done = calloc(M, sizeof *S.bwd_done);
    S.din = calloc(M, sizeof *S.din);
    S.got = S.staged ? calloc(M, sizeof *S.got) : NULL;
    S.sent = S.staged ? calloc(M, sizeof *S.sent) : NULL;
    S.reqs = calloc((size_t)S.pg->n + 1, sizeof *S.reqs);
    S.sendbufs = calloc((size_t)S.pg->n + 1, sizeof *S.sendbufs);
    S.sendins = calloc((size_t)S.pg->n + 1, sizeof *S.sendins);
    S.tokens = malloc((size_t)(2 * p->mbs * (p->seq + 1)) * sizeof *S.tokens);
    spans = calloc((size_t)(6 * S.pg->n + 2), sizeof *spans); /* the kept iteration's, then the running one's */
    if (S.rank == 0) {
        res->loss = calloc((size_t)o->steps, sizeof *res->loss);
        res->iteration_s = calloc((size_t)o->steps, sizeof *res->iteration_s);
        res->kind_s = calloc((size_t)size * ST_EXEC_KINDS, sizeof *res->kind_s);
        res->ref_loss = calloc((size_t)o->steps, sizeof *res->ref_loss);
        res->stats = calloc((size_t)size * ST_EXEC_STATS, sizeof *res->stats);
    }
    /* the copies (st_exec_job_rank's numbering; collective over the world, whose ranks all come here) */
    if (reps > 1 && MPI_Comm_split(MPI_COMM_WORLD, wrank % reps, wrank / reps, &S.job) != MPI_SUCCESS) {
        S.job = MPI_COMM_NULL;
        if (!rc) rc = st_error_set(err, ST_EINVAL, NULL, NULL, "MPI could not split the world into the plan's copies");
    }
    int bad = rc || !S.comms || !S.acts || !S.act_in || !S.grad_in || !S.fwd_out || !S.bwd_done || !S.din || !S.reqs ||
              (S.staged && (!S.shapes || !S.got || !S.sent)) ||
              !S.sendbufs || !S.sendins || !S.tokens || !spans || (S.rank == 0 && (!res->loss || !res->iteration_s ||
              !res->kind_s || !res->ref_loss || !res->stats)) || setup_regions(&S) ||
              (S.zero3 && z3_setup(&S, o->seed, gd));
    if (!bad && o->check) { /* the reference: run on world rank 0 alone, its table on the others (exec/check.c) */
        Rp = &R;
        st__xpart one = {.B = p->mbs, .T = p->seq, .tp = 1, .nchunks = 1, .l0 = whole, .l1 = whole + 1, .first = 1,
                         .last = 1, .table = wrank != 0};
        bad = (rc = st__xmodel_init(&R.x, m, &one, o->seed, err)) != 0;
        if (!bad && wrank == 0) {
            R.chk.ref = &R.x;
            R.m = calloc((size_t)R.x.nparams + 1, sizeof *R.m);
            R.v = calloc((size_t)R.x.nparams + 1, sizeof *R.v);
            bad |= !R.m || !R.v;
        }
        st__xcheck_clear(R.d);
    }
    int anybad = 0;
    MPI_Request q = MPI_REQUEST_NULL;
    st__xwait(&S.w, MPI_Iallreduce(&bad, &anybad, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD, &q), &q, 1, "all-reduce",
              MPI_COMM_WORLD, -1);
    if (anybad) {
        if (!rc) rc = st_error_set(err, ST_ENOMEM, NULL, NULL, "out of memory setting up a rank's model");
        res->refused = 1;
        goto out;
    }
    if ((rc = make_comms(&S))) {
        st_error_set(err, rc, NULL, NULL, "MPI could not make the program's communicators");
        goto out;
    }
    S.tpc = gt >= 0 ? S.comms[gt] : MPI_COMM_NULL;
    S.epc = ge >= 0 ? S.comms[ge] : MPI_COMM_NULL;
    S.cpc = gc >= 0 ? S.comms[gc] : MPI_COMM_NULL;
    S.hdc = gd >= 0 ? S.comms[gd] : MPI_COMM_NULL;
    /* the ranks of the dp group that hold the same experts: the same place in their ep groups */
    if (S.ep > 1 && (gd < 0 || MPI_Comm_split(S.comms[gd], S.er, S.dr, &S.edpc) != MPI_SUCCESS)) {
        rc = st_error_set(err, ST_EINVAL, NULL, NULL, "MPI could not make the expert-data-parallel communicator");
        goto out;
    }
    /* the cpu backend's memory is the host's: its alltoallv serves the device path as it is (mem_free is free) */
    S.x.comm = (st__xcomm){tp_allreduce, tp_allgather, tp_reduce_scatter, ep_alltoallv, ep_alltoallv, &S};
    S.x.tp_a2a.fn = tp_alltoall, S.x.tp_a2a.ctx = &S;
    S.x.tp_a2av.fn = tp_alltoallv, S.x.tp_a2av.ctx = &S;
    S.x.cpcomm = (st__xcpcomm){cp_allgather, cp_reduce_scatter, cp_ring, cp_alltoall, &S};
    S.x.hcomm = (st__xcomm){.allreduce = hd_allreduce, .allgather = hd_allgather, .reduce_scatter = hd_reduce_scatter,
                            .ctx = &S};
    S.x.hcomm_tokens = hd_tokens;
    S.x.redo_clock.fn = redo_clock, S.x.redo_clock.ctx = &S;
    /* the backend's communicators, each step agreed on (a rank that went on would wait for one that
     * stopped) */
    if (o->backend == ST_EXEC_CUDA &&
        ((rc = agree(st__xcuda_comm(&S.x.comm, gt >= 0 ? l->groups[gt].ranks : NULL, S.tp,
                                    ge >= 0 ? l->groups[ge].ranks : NULL, S.ep, err) != 0,
                     S.rank, size, err)) ||
         (rc = agree(st__xcuda_gcomm(&S.gc, l, gd, S.ep > 1 ? S.er : -1, &S.w, err) != 0, S.rank, size, err)))) {
        res->refused = 1;
        goto out;
    }
    if (o->backend == ST_EXEC_CUDA && gc >= 0) st__xcuda_cpcomm(&S.x.cpcomm, gc);
    for (int i = 0; i < ST_EXEC_TENSORS; i++) res->grad_diff[i] = res->grad_ref[i] = -1;
    S.w.world = S.world;
    st__xcrash_install(&S.w);
    rc = run_steps(&S, o, Rp, res, spans, spans + 3 * S.pg->n + 1, kind_s, err);
    st__xcrash_remove();
    if (rc) goto out;
    watch_between(&S, -1, "gathering the results at rank 0");
    if (o->check && wrank == 0) { /* the largest over ranks (every copy's), compared at world rank 0 */
        memcpy(res->grad_diff, R.d, sizeof res->grad_diff);
        memcpy(res->grad_ref, R.d + ST_EXEC_TENSORS, sizeof res->grad_ref);
    }
    double np = 0, nptot = 0;
    /* each parameter once: tp rank shards add up, replicated ones (norms, biases after a
     * row-parallel GEMM, positions, routers) counted on tp rank 0 only, the tied copy not, dp
     * replicas not (the experts: on the first ep group of the dp group), dualpipe's mirror copies not (its
     * ranks pp / 2 and on hold the same blocks as the first half) */
    for (int i = 0; i < S.x.ntensors; i++) {
        const st__xtensor *t = &S.x.tensors[i];
        int replicated = t->nrows == t->rows && t->ncols == t->cols && t->expert < 0; /* (moe_rows: own experts) */
        int once = !(replicated && S.tr != 0) && !(!strcmp(t->name, "wte") && !S.x.first) && S.copy == 0 &&
                   (t->expert >= 0 ? S.dr < S.ep : S.dr == 0) && !(S.dual && S.pg->stage >= S.pp / 2);
        if (once) np += (double)(t->nrows * t->ncols);
    }
    st__xwait(&S.w, MPI_Ireduce(&np, &nptot, 1, MPI_DOUBLE, MPI_SUM, 0, S.job, &q), &q, 1, "reduce to rank 0",
              S.job, -1);
    res->params = nptot;
    rc = gather(&S, o, spans, kind_s, res, err);
out:
    free(l0);
    free(l1);
    free(spans);
    st__xmodel_destroy(&R.x);
    st__xcheck_free(&R.chk);
    free(R.m);
    free(R.v);
    state_destroy(&S);
    if (o->backend == ST_EXEC_CUDA) st__xcuda_close();
    return rc;
}
