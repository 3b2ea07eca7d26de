/* exec.h: the executor layer (exec/): the second interpreter of the per-rank programs (program.h),
 * running them for real: one process per rank, MPI + BLAS on CPU, NCCL + cuBLAS on GPU (DESIGN.md,
 * "one program, two interpreters"; issue 18 builds the runtime). Uses core, cost, lower and traces.
 *
 * What is here: the backends by name, the CPU runtime (below), and the measure pass an executor runs before anything
 * else (ggml's and llm.c's "one arena per rank, sized before running"): the memory a rank's
 * program needs, from the lowering's alloc/free bytes, in the order the rank issues them. */
#ifndef STRATA_EXEC_H
#define STRATA_EXEC_H

#include "src/core/core.h"
#include "src/lower/lower.h"

typedef enum { ST_EXEC_CPU, ST_EXEC_CUDA, ST_EXEC_COUNT } st_exec_backend;
const char *st_exec_backend_name(st_exec_backend b); /* "cpu", "cuda" */
int st_exec_backend_parse(const char *s, st_exec_backend *out); /* 0 or ST_EINVAL */

/* ---------------------------------------------------------------- running (exec/cpu.c)
 *
 * `strata run` under mpirun: one process per rank of a plan lowered with every rank and the fused
 * collectives (st_lower_plan, every_rank 1, per_op 0). Each rank interprets its program in program
 * order on one host thread (what one CPU process can issue, and a valid order: the lowering puts
 * receives right before the compute that needs them and sends after it): COMPUTE forward, backward
 * (whole, or zb's, zbv's and dualpipe's input and weight halves) and optimizer instructions run the
 * stage's part of a real decoder (exec/model.c) on the micro-batch the instruction names (with vp > 1,
 * zbv and dualpipe on the chunk it names: a rank holds several chunks of blocks; with cp > 1 on its
 * chunks of the sequence, the keys and values exchanged in its cp group inside the attention, shown
 * on the fused lowering's "cp collectives"); SEND/RECV move its activations and gradients
 * (MPI_Isend, MPI_Recv; with sp each tp rank its token rows); COLL run in communicators made from the
 * program's groups: the dp all-reduce, or ZeRO-1's reduce-scatter and all-gather, ZeRO-3's gather of
 * each unit's parameters before its piece of a forward or backward and reduce-scatter of its
 * gradients after it, and the tied embedding's all-reduce (dualpipe: the mirror all-reduce of its two
 * copies). The tp collectives (with sp: all-gathers and reduce-scatters) run inside the compute,
 * where Megatron-LM issues them (exec/model.c); the fused
 * lowering's "tp collectives" instruction after each compute is shown with their measured time, its
 * "ep all-to-all" with the MoE blocks' dispatch and combine. An operator-level plan whose stages sit on
 * meshes of different shapes runs each stage as its own plan (st_exec_stage, below; st_lower_stages), its
 * SEND/RECV moving the rows of the cross-mesh exchange. Built when configure found MPI and a CBLAS;
 * otherwise st_exec_mpi_init says what is missing (exec/nompi.c). */

/* the measured kinds of instruction, the rows of st_exec_result.kind_s */
typedef enum {
    ST_EXEC_FWD,
    ST_EXEC_BWD,
    ST_EXEC_OPTIMIZER,
    ST_EXEC_COLL_TP,
    ST_EXEC_COLL_DP,
    ST_EXEC_COLL_PP,
    ST_EXEC_SEND,
    ST_EXEC_RECV,
    ST_EXEC_COLL_EP, /* the ep all-to-alls, inside the compute like tp's */
    ST_EXEC_RECOMPUTE,
    ST_EXEC_BWD_INPUT,  /* split backwards' halves (zb, zbv, dualpipe): input gradients, */
    ST_EXEC_BWD_WEIGHT, /* then weight gradients */
    ST_EXEC_COLL_CP,    /* the cp K/V exchanges, inside the compute like tp's */
    ST_EXEC_KINDS
} st_exec_kind;
/* "fwd", ..., "coll tp", ..., "recv", "coll ep", "recompute", "bwd input", "bwd weight", "coll cp" (the
 * lowering's labels) */
const char *st_exec_kind_name(st_exec_kind k);

/* the tensors --check compares (every block's of one name together) */
#define ST_EXEC_TENSORS 26
extern const char *const st_exec_tensor_names[ST_EXEC_TENSORS];

typedef struct st_exec_opts {
    int steps;         /* iterations, >= 1 */
    uint64_t seed;     /* weights and tokens */
    int check;         /* also run the single-rank reference and compare */
    const char *trace; /* Chrome trace of the kept iteration (rank 0 writes it), or NULL */
    int reference_kernels; /* the plain C GEMMs instead of BLAS */
    st_exec_backend backend; /* ST_EXEC_CPU (0), or ST_EXEC_CUDA: GEMMs and tp/ep collectives on GPUs (exec/cuda.c) */
    double timeout_s;  /* the longest wait in one collective, send or receive (> 0; below) */
    int attn_rows;     /* an operator-level plan's attention on each rank's token rows, whole weights: 1 the
                          projection, 2 QKV to the projection (st_as_hybrid's; needs sp; exec/model.c); 3 QKV split
                          along its fused width, the attention whole on every rank, the projection by heads */
    int moe_rows;      /* an operator-level plan's experts split over the tp axes, each rank's token rows routed there
                          (st_as_hybrid's; needs sp; exec/model.c) */
    int router_h;      /* an operator-level plan's router split over the tp axes by the hidden dimension
                          (st_as_hybrid's; exec/model.c); 0: whole */
    int replicas;      /* an operator-level plan's copies of the job (0 or 1: one): mesh axes on which the ILP splits
                          nothing, every device computing what the others do (st_as_hybrid's rep) */
    int head_dp;       /* an operator-level plan's output layer and loss vocabulary-parallel over the dp group, on the
                          final norm's rows gathered there from each tp rank's (st_as_hybrid's; sp or tp 1; the
                          embedding whole; exec/model.c); the cpu backend's */
    /* an operator-level plan whose stages run on meshes of different shapes (NULL: one plan for all): nstages
     * stages, stage d's as stages[d] says (its plan and splits replace the run's plan and the fields above on
     * its ranks), lowered by st_lower_stages; replicas 1; the cpu backend's */
    const struct st_exec_stage *stages;
    int nstages;
} st_exec_opts;

/* One stage of such a plan (st_exec_opts' stages): its hybrid plan (tp, dp, sp, ep, zero, recompute, pp the
 * pipeline's; mbs the plan's micro-batch over its dp: each dp rank's share of the same micro-batch, as the ILP
 * splits the batch), its copies (the ILP's mesh axes on which it splits nothing), and its splits as st_exec_opts'
 * fields above. Its ranks lie as st_stage_shape (src/lower/lower.h) lays them out: the residual stream moves
 * between stages of different shapes as the cross-mesh exchange's rows (st_stage_exchange); dp rank q of a
 * stage runs micro-batch j's samples (j dp + q) mbs' .. + mbs' (mbs' its share), so that every stage holds the
 * same rows of micro-batch j whatever its dp; a tied embedding's gradient is summed over the end stages' devices
 * of one tp rank, each stage's sum added once (its dp rank 0's copy 0). Refused: a tied embedding whose tables
 * the end stages split otherwise (tp, or whole under head_dp), or sharded by ZeRO there. */
typedef struct st_exec_stage {
    const st_plan *plan;
    int copies;
    int attn_rows, moe_rows, router_h, head_dp;
} st_exec_stage;

/* The job rank world rank world_rank runs, with `replicas` copies of a job of nranks ranks (st_exec_opts): copy
 * world_rank % replicas, rank world_rank / replicas, so that a stage's copies are neighbours, as the ILP's stage
 * mesh holds them where the axes that split nothing are its innermost (search/autoshard.c). Each copy computes
 * the same on the same data, with no collective between copies: the ILP reduces a gradient over no axis that
 * splits nothing. 0, or ST_EINVAL with err saying why (mpirun's rank count; the cuda backend, whose
 * communicators number the world's ranks). */
int st_exec_job_rank(int nranks, int replicas, st_exec_backend backend, int world_rank, int world_size, int *rank,
                     st_error *err);

/* Faults (exec/fault.c). Every wait of a rank for its peers in st_exec_run (a collective, send or
 * receive of an instruction, the barrier that starts a step, the agreements after the setup and
 * after each step, the gathering of the results at rank 0; not MPI_Comm_create_group and
 * MPI_Comm_split, which have no nonblocking form) is a nonblocking MPI call polled until
 * opts.timeout_s: past it, or on an MPI error, the rank prints one line on stderr, "strata run:
 * rank R timed out after S s in step K instruction I (LABEL, micro-batch M) waiting for rank(s) P
 * in the WHAT; stopping every rank",
 * and calls MPI_Abort(MPI_COMM_WORLD, 2), which ends the job (mpirun exits 2). The timeout must be
 * above the longest compute of a step that a peer may wait through. A rank that crashes (a fatal
 * signal) first prints "strata run: rank R crashed (signal S) in step K instruction I (...)"; one
 * that exits or is killed is named by mpirun, which then ends the others.
 * Test hook (tests/cli_run_fault.sh; not for users): the environment variable
 * STRATA_EXEC_FAULT=RANK:INSTRUCTION:die|crash|hang|nan|fail makes rank RANK, at instruction INSTRUCTION
 * of its program (0-based) in the first step, exit at once (status 1), raise SIGSEGV, sleep without
 * entering MPI (for 10 x the timeout + 60 s, then exit), put a NaN in its first gradient (a
 * diverged run: the step that meets it fails with a line naming the rank, never a NaN printed), or fail
 * the instruction as out of memory (the rank names itself and the instruction and stops every rank at
 * once: its peers do not wait out their timeout). The per-operator runtime's RANK is a world rank, its
 * INSTRUCTION one of the rank's stage's program. A malformed value, or a rank or instruction
 * the job does not have, is refused like a bad plan. */
#define ST_EXEC_TIMEOUT_S 300.0 /* the default: minutes, not hours, for a CI job to fail */

/* What rank 0 learns (the other ranks' copies hold only rank and nranks). */
typedef struct st_exec_result {
    int rank, nranks, steps;
    /* the processes that ran (0: nranks), and the world rank each row of kind_s and stats stands for (NULL: row k
     * is rank k; owned): the per-operator runtime's rows are its stages, each its first device's */
    int world, *row_rank;
    double params;       /* the model's parameters */
    double *loss;        /* steps: the iteration's mean loss (owned) */
    double *iteration_s; /* steps: the slowest rank's time from the common start (owned) */
    double *kind_s;      /* nranks x ST_EXEC_KINDS: seconds of each kind in the kept iteration (owned) */
    /* the kept iteration (0-based): the fastest after the first, the first alone with one step; its
     * kinds, GEMM seconds and trace are what the result holds (the minimum over the steps estimates
     * the machine least disturbed by other processes, exec/cpu.c run_steps) */
    int kept_step;
    /* --check: the largest |sharded - reference| over steps: the loss, and per tensor the reduced
     * gradients (-1: no rank holds one of that name), beside the reference's largest |gradient| */
    double loss_diff, grad_diff[ST_EXEC_TENSORS], grad_ref[ST_EXEC_TENSORS];
    double *ref_loss; /* steps: the reference's loss (owned; with check) */
    double *stats;    /* nranks x ST_EXEC_STATS (below; owned) */
    /* an error that every rank met alike before running (the plan refused, or a rank's setup
     * failed and all of them learnt it): rank 0 may say why while the others wait */
    int refused;
    /* 1 + the lowest world rank whose step failed, which every rank learnt at the step's end (0:
     * none; with copies of the job, a rank of any copy): that rank alone says why (the others only
     * know that it failed) while the others wait */
    int failed_by;
} st_exec_result;
/* What each rank measured besides its instructions' times (st_exec_result.stats): the seconds of
 * the kept iteration spent in the GEMMs (inside its fwd and bwd), the high-water mark of the bytes
 * it had allocated (heap in use, sampled after every instruction of every iteration; with --check
 * rank 0's holds the reference's too), its peak resident set (getrusage's ru_maxrss: the process, MPI's
 * buffers and the code included), the seconds of the kept iteration it was runnable but waited
 * for a core (the kernel's run delay, /proc/thread-self/schedstat; 0 where not kept): other
 * processes' share of the measurement, or other ranks' on an oversubscribed core; with the cuda
 * backend (else 0) the high-water mark of the device memory the backend allocated, and of the
 * GPU's used memory as the driver reports it (cudaMemGetInfo's total less free: the CUDA context
 * and NCCL's buffers included; 0 where it does not say). */
enum {
    ST_EXEC_GEMM_S,
    ST_EXEC_HEAP_PEAK_BYTES,
    ST_EXEC_RSS_PEAK_BYTES,
    ST_EXEC_RUN_DELAY_S,
    ST_EXEC_DEVICE_PEAK_BYTES,
    ST_EXEC_DEVICE_USED_PEAK_BYTES,
    ST_EXEC_STATS
};

/* MPI_Init: this process's rank and the job's size. Without the executor built, ST_EINVAL saying
 * what configure did not find. */
int st_exec_mpi_init(int *rank, int *size, st_error *err);
void st_exec_mpi_finalize(void);
/* Waits for every rank (MPI_Barrier on the world): for errors every rank meets alike (its inputs),
 * so that rank 0 has said why before any rank's exit lets mpirun stop the job. */
void st_exec_mpi_barrier(void);
/* Runs opts->steps iterations of l (lowered from plan p of model m as above) on this rank. Every
 * rank returns the same code: ST_EINVAL when the job's size is not the plan's ranks or the plan asks
 * for what this executor does not run (err says which; the same text on every rank), ST_ENOMEM,
 * ST_EIO (the trace). Fills r (free with st_exec_result_destroy, also after a failure). */
int st_exec_run(const st_model *m, const st_plan *p, const st_lowered *l, const st_exec_opts *opts,
                st_exec_result *r, st_error *err);
void st_exec_result_destroy(st_exec_result *r);
/* An operator-level plan that is no Megatron template (search/as_hybrid.c refuses it), run per operator
 * (exec/opexec.c): every rank a device of the stage's mesh (mpirun -np: the mesh's devices), each interpreting
 * the stage's program of l (st_lower_autoshard of r on c, prof and dt, which st_autoshard_work's steps must
 * match) on its shards of every tensor, with the backend's cpu kernels. opts as for st_exec_run (replicas,
 * attn_rows and the like unused: the mesh's axes say it all). Fills r as st_exec_run does, each stage's first
 * device standing for its program's rank. Every rank returns the same code: ST_EINVAL with err naming the stage,
 * operator, label and axis it does not run (res->refused), ST_ENOMEM, ST_EIO (the trace). */
int st_exec_run_ilp(const st_model *m, const st_autoshard_result *r, const st_cluster *c, const st_profile *prof,
                    st_dtype dt, const st_lowered *l, const st_exec_opts *opts, st_exec_result *res, st_error *err);

/* The arena a rank's program needs when its instructions run one after another in program order
 * (the order one host thread issues them in): its base bytes plus the highest running sum of
 * alloc_bytes (taken when an instruction starts) less free_bytes (given back when it ends). An
 * interpreter that runs streams side by side may hold more at once (the simulator's peak is the
 * one that counts for fitting): this is the lower bound an arena must have. Bytes. */
double st_exec_arena_bytes(const st_program *pg);

/* For a lowering with one program per rank (program i of rank i, as strata run needs): 1 when, for
 * every pair of ranks, the receiver's receives from the sender come in the order of the sender's
 * sends to it (their tags, unique per pair, in the two programs' orders; a send without its receive
 * fails too), as a transport that matches by order and not by tag needs (NCCL: the cuda backend);
 * 0 when not; -1 when out of memory. Linear in the programs' lengths. */
int st_exec_p2p_in_order(const st_lowered *l);

/* ---------------------------------------------------------------- measuring this machine (exec/bench.c)
 *
 * `strata profile --cpu` times what `strata run` runs: these kernels at one BLAS thread per rank and
 * Open MPI's transfers. Every rank of the job calls each function with the same arguments at the same
 * time; each returns the same numbers on every rank. Compute: the fastest of `reps` windows (1..64,
 * after one warm-up; each window calls the kernel back to back for at least 10 ms, so that a rank
 * sharing its core measures its share), averaged over the ranks. Transfers: the fastest over reps of
 * the slowest member's time. 0, ST_ENOMEM on every rank when one could not allocate, ST_EINVAL (a
 * collective this cannot time). Without the executor built, the st_exec_mpi_init error. */

/* the GEMMs of a linear layer y[m x n] = x[m x k] W^T: forward (one GEMM), backward (input and
 * weight gradients, two GEMMs of the forward's FLOPs each) */
int st_exec_bench_gemm(int64_t m, int64_t n, int64_t k, int reps, double *fwd_s, double *bwd_s, st_error *err);
/* causal attention of B sequences of T tokens, hq query and hkv key/value heads of d */
int st_exec_bench_attn(int64_t B, int64_t T, int64_t hq, int64_t hkv, int64_t d, int reps, double *fwd_s,
                       double *bwd_s, st_error *err);
/* memory-bound kernels over rows x cols floats: a norm (LayerNorm) over rows of cols, GELU, SwiGLU
 * (rows x cols outputs), a residual add (its backward: the same add), Adam over rows x cols
 * parameters (both passes a step) */
typedef enum {
    ST_EXEC_STREAM_NORM,
    ST_EXEC_STREAM_GELU,
    ST_EXEC_STREAM_SWIGLU,
    ST_EXEC_STREAM_ADD,
    ST_EXEC_STREAM_ADAM
} st_exec_stream;
int st_exec_bench_stream(st_exec_stream kind, int64_t rows, int64_t cols, int reps, double *fwd_s, double *bwd_s,
                         st_error *err);
/* one call of coll (all-reduce, all-gather, reduce-scatter; send/recv: one way between ranks 0 and 1)
 * over the world's ranks 0 .. ranks - 1 (2 <= ranks <= the job's), `bytes` per rank as cost/comm.c
 * takes them (a multiple of 4: fp32) */
int st_exec_bench_coll(st_coll coll, int ranks, double bytes, int reps, double *s, st_error *err);
/* the largest peak resident set of the job's ranks so far (getrusage), bytes; 0 without the executor */
double st_exec_bench_rss_bytes(void);

#endif
