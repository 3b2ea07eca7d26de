/* profiler.h: the profiler layer (profiler/): `strata calibrate` (PyTorch/Kineto traces to
 * calibration profiles, profiler/kineto.c) and `strata profile` (issue 6). Uses core, cost, io,
 * traces and exec.
 *
 * Two halves meet here:
 *   profiler/prof.c     pure C, built everywhere: the shape grids (which GEMMs and memory-bound
 *                       kernels to time), the operator shapes of one plan, random fills, medians,
 *                       fitting samples into tables, and the calibration profile writer;
 *   profiler/cuda.c     the measuring, built only with CUDA (profiler/nocuda.c otherwise says
 *                       that strata was built without it): cuBLAS/cuBLASLt GEMMs, the kernels of
 *                       profiler/kernels.cu, host<->device copies and NCCL collectives, timed by
 *                       CUPTI activity records or CUDA events.
 * The profile is the format of cost/profile.c (README "Calibration profiles"), and every x is
 * counted the way cost/ counts it for an st_op, so a table point is looked up by the same number
 * the estimator asks with: FLOPs per kernel (2mnk x batch), bytes per kernel as src/core/opgraph.c's
 * stream() counts them, message bytes per collective call as cost/comm.c takes them. */
#ifndef STRATA_PROFILER_H
#define STRATA_PROFILER_H

#include "cost/cost.h"
#include "src/core/core.h"

/* ---- calibration import */

/* `strata calibrate` (profiler/kineto.c): a PyTorch profiler (Kineto) trace to the tables of a
 * calibration profile, without a GPU. */
typedef struct st_calib_opts {
    const char *gpu;   /* the profile's GPU (a preset name); NULL = from the trace's deviceProperties */
    int gpus_per_node; /* collectives over more ranks (or over ranks on several nodes) are "inter" */
    const char *date;  /* "YYYY-MM-DD" for the profile; NULL = the trace's (profiler/kineto.c, set_date) */
} st_calib_opts;
void st_calib_opts_init(st_calib_opts *o); /* gpu NULL, gpus_per_node 8, date NULL */

/* What an import read and used. Kernels are counted once, in the first of used, unlinked,
 * unclassified, no_shapes or untimed that applies. */
typedef struct st_calib_summary {
    char gpu[48];         /* the profile's GPU */
    char device[128];     /* the trace's device name; empty when it has none */
    char gpu_note[200];   /* how the GPU was found when not by --gpu or its exact name; else empty */
    int64_t events;       /* trace events */
    int64_t kernels;      /* GPU kernels (cat "kernel") */
    int64_t used;         /* kernels that went into a sample */
    int64_t unlinked;     /* no CPU operator found by correlation or External id */
    int64_t unclassified; /* their operator has no strata class (e.g. aten::sum) */
    int64_t no_shapes;    /* class known, but shapes, dtypes or message sizes missing or unusable */
    int64_t untimed;      /* no positive "dur" */
    int64_t samples[4];   /* measured: operator calls (compute, memory, collectives), pinned copies */
    int64_t tables[4], points[4];
    int files;               /* rank traces read (a folder or a comma-separated list: one job) */
    int64_t world_size;      /* the job's, from distributedInfo; -1 when not recorded */
    int coll_ranks_min, coll_ranks_max; /* group sizes the collective tables were measured over */
    int64_t coll_matched;    /* collective calls found on several ranks ... */
    double coll_transfer_s;  /* ... their transfer time (the fastest rank's) ... */
    double coll_wait_s;      /* ... and the other ranks' wait for the slowest, left out of the tables */
} st_calib_summary;

typedef struct st_calib st_calib;
/* Reads a Kineto trace (Chrome trace JSON, plain or gzip), or the rank traces of one job (a
 * folder's *.json and *.json.gz, or a comma-separated list of files), and fits the profile tables.
 * Returns 0 with *out new (free with st_calib_free), ST_EIO (cannot read) or ST_EINVAL (malformed
 * JSON with line and column, not a Kineto trace, no GPU kernels, nothing measurable, a GPU name
 * that cannot label a profile, an NVIDIA --gpu for a ROCm trace, files that are not one job's). */
int st_calib_import_kineto(const char *path, const st_calib_opts *o, st_calib **out, st_error *err);
void st_calib_free(st_calib *c);
const st_calib_summary *st_calib_get_summary(const st_calib *c); /* borrowed */
/* One line per fitted table ("  gemm bf16: 3 points from 5 calls"), under headings. */
void st_calib_describe(const st_calib *c, FILE *f);
/* Writes the profile (st_profile_load's format) atomically; "-" = stdout. */
int st_calib_save(const st_calib *c, const char *path, st_error *err);

/* `strata calibrate --runs` (profiler/fit.c): measured iteration times of a user's runs fitted into
 * the cluster fields they identify (the file's header lists them, with their bounds). */
#define ST_FIT_PARAMS 9
typedef struct st_fit_opts {
    uint64_t seed;       /* of the fit fraction's draw and the folds' shuffle */
    int folds;           /* k of the k-fold cross-validation, >= 2 */
    double fit_fraction; /* (0, 1]: the seeded share of the rows fitted; the rest are held out */
    int max_evals;       /* objective evaluations per fit, >= 1; the search stops there (the fuzz target's
                            budget: tests/fuzz/targets.c) */
} st_fit_opts;
void st_fit_opts_init(st_fit_opts *o); /* seed 1, 5 folds, fraction 1, fit.c's MAX_EVALS evaluations */

/* how well a set of rows is predicted */
typedef struct st_fit_errors {
    int rows;
    double mae_pct;          /* mean |predicted / measured - 1|, in % */
    int groups;              /* groups (the CSV's `group` column) of 3 or more rows with a tau-b */
    double tau_mean, tau_min; /* Kendall tau-b within groups; NAN when none */
    int tau_ge_08, tau_ge_07; /* groups at or over 0.8 and 0.7 */
    char name[8][64];         /* the first 8 groups (by name) and their tau-b, for a summary */
    double tau[8];
} st_fit_errors;

typedef struct st_fit_result {
    int rows, fit_rows;
    st_fit_errors start, fitted; /* the fit rows under the given cluster and the fitted one */
    double cv_mae_pct;           /* k-fold cross-validated MAE over the fit rows, % */
    st_fit_errors held, held_start; /* the held-out rows (fit_fraction < 1), fitted and given */
} st_fit_result;

/* one parameter, in the unit of its cluster JSON field */
typedef struct st_fit_value {
    const char *name, *unit; /* "gpu.gemm_efficiency", ""; borrowed, static */
    double start, value, lo, hi;
    int pinned;   /* identified by the rows (else kept at start) */
    int at_bound; /* the fit stopped at a bound */
} st_fit_value;

typedef struct st_fit st_fit;
/* Reads the runs CSV, prices every row on cluster_arg (a preset or a file) sized to its GPUs, and
 * fits. 0 with *out new (free with st_fit_free); ST_EIO (cannot read), ST_EINVAL (a bad row: its
 * line in err->line and the text; too few rows; nothing identified), ST_EUSAGE (bad options). */
int st_fit_runs(const char *csv_path, const char *cluster_arg, const st_fit_opts *o, st_fit **out, st_error *err);
void st_fit_free(st_fit *f);
const st_fit_result *st_fit_get_result(const st_fit *f); /* borrowed */
int st_fit_param(const st_fit *f, int j, st_fit_value *out); /* j in 0 .. ST_FIT_PARAMS - 1; 0 or ST_EINVAL */
/* The fitted values, what was not pinned down, and the errors, for stdout. */
void st_fit_describe(const st_fit *f, FILE *out);
/* Writes the calibrated cluster JSON (the given cluster with the fitted fields, and a "calibration"
 * object: source, date, rows, seed, fitted values, those not pinned down, residual and
 * cross-validated errors) atomically; "-" = stdout. */
int st_fit_save(const st_fit *f, const char *path, st_error *err);
/* Writes one CSV line per row of the runs file: its line there, whether it was fitted or held out
 * ("fit", "held_out"), its group, the measured and the fitted cluster's predicted seconds and the
 * error in % (the residuals behind the summary's MAE). 0, ST_EIO or ST_ENOMEM. */
int st_fit_write_residuals(const st_fit *f, const char *path, st_error *err);

/* ------------------------------------------------------------------ what to time */

/* One GEMM: batch x ([m x k] x [k x n]), row-major as st_op has it; timed as the three kernels
 * of training (forward, input gradient, weight gradient), which do the same FLOPs each. */
typedef struct st__prof_gemm {
    st_opclass cls; /* ST_OPC_GEMM or ST_OPC_BGEMM */
    double m, n, k, batch;
    double flops; /* 2 m n k batch: one kernel's work */
    int plan;     /* a --plan shape: kept as its own table point */
} st__prof_gemm;

/* The three GEMM kernels of one linear layer, in cuBLAS terms (column-major), for y = x W^T with
 * x [m, k], W [n, k]: forward TN (n, m, k); input gradient NN (k, m, n); weight gradient NT
 * (k, n, m). cuBLASLt runs fp8 only as TN, so fp8 runs all three as TN with those sizes
 * (Transformer Engine keeps transposed fp8 copies for exactly this). */
enum { ST_PROF_FWD, ST_PROF_DGRAD, ST_PROF_WGRAD, ST_PROF_PASSES };

/* Memory-bound kernels of profiler/kernels.cu. Activations are bf16; Adam is Megatron-LM's
 * fused step on fp32 master weights, moments and main_grad, writing the bf16 weight copy. */
typedef enum {
    ST_PROF_LAYERNORM, /* rows x cols, per-row mean and variance */
    ST_PROF_RMSNORM,
    ST_PROF_SOFTMAX, /* rows x cols, scaled and causally masked (Megatron's fused softmax) */
    ST_PROF_GELU,    /* n = rows x cols elements in, n out */
    ST_PROF_SWIGLU,  /* 2n in (gate, up), n out */
    ST_PROF_ADD,     /* residual add: 2n in, n out */
    ST_PROF_ADAM,    /* n parameters */
    ST_PROF_KERNELS
} st__prof_kernel;

typedef struct st__prof_mem {
    st__prof_kernel kernel;
    int64_t rows, cols;
    double x; /* the table's x: bytes of the operator it stands for (a plan op), else its own */
    int plan;
} st__prof_mem;

const char *st__prof_kernel_name(st__prof_kernel k);
st_opclass st__prof_kernel_class(st__prof_kernel k);
/* HBM bytes one kernel moves, counted as src/core/opgraph.c counts its operator (bf16 activations):
 * norms and softmax read and write rows x cols; GeLU n in + n out; SwiGLU and add 2n in + n out;
 * Adam 30 bytes per parameter (read fp32 weight, grad, m, v; write weight, m, v and bf16 copy). */
double st__prof_mem_bytes(const st__prof_mem *k);

/* The GEMM grid: every GEMM and batched GEMM of every model preset (src/core/model.c) under tp = 1, 2,
 * 4, 8 (where heads and kv_heads divide), micro-batch 1 and 4, at the preset's sequence length:
 * the blocks (dense and MoE) and the logits. These shapes are binned by FLOPs in powers of two
 * (the table is looked up by FLOPs), and each bin keeps `per_bin` of them (3 full, 1 quick),
 * spread over the bin's range of sizes. Shapes needing more than cap_bytes of device memory at
 * elem_bytes per element (inputs, gradients and one output) are left out before the picking, so
 * a bin keeps a shape that fits where one exists. --quick keeps every third bin up to 2^42 FLOPs.
 * Sorted by class, then FLOPs. *out new (free()); returns 0 or ST_ENOMEM. */
int st__prof_gemm_grid(int quick, double cap_bytes, double elem_bytes, st__prof_gemm **out, int *n);
/* the grid's presets are those at least this wide: the narrower ones are strata run's CPU test
 * models (tiny-gpt, tiny-llama), which no GPU trains */
#define ST_PROF_MIN_HIDDEN 1024
/* Device bytes the three kernels of g need: x, W, dy and one output of the largest. */
double st__prof_gemm_bytes(const st__prof_gemm *g, double elem_bytes);
/* The memory-bound grid: each kernel at 2^18 ... 2^30 bytes in steps of 4 (quick: 2^20, 2^24,
 * 2^28); norms over rows of 4096, softmax over rows of 2048 (a sequence). *out new (free()). */
int st__prof_mem_grid(int quick, st__prof_mem **out, int *n);
/* The per-rank operator shapes of one finalized plan (st_plan_shard; st_ops_layer for one block of
 * each kind (st_model_kinds), st_ops_head, st_ops_tail): its GEMMs and batched GEMMs (distinct shapes), and one
 * memory-bound kernel per distinct (class, bytes per kernel) of its norm, softmax and elementwise
 * operators, forward and backward: a norm by the model's norm, the MLP activation by GeLU or
 * SwiGLU, everything else by a residual add of the same bytes. Embedding and loss have no kernel
 * here. New arrays in *g and *mm (free()); returns 0 or ST_ENOMEM. */
int st__prof_plan_shapes(const st_model *m, const st_plan *p, st__prof_gemm **g, int *ng, st__prof_mem **mm, int *nm);

/* One collective call of a plan: `ranks` GPUs of one node, `bytes` as cost/comm.c takes them. */
typedef struct st__prof_coll {
    st_coll coll;
    int ranks; /* send/recv: 2, the ranks its table is measured over */
    double bytes;
} st__prof_coll;
/* The collectives of one finalized plan on cluster c, exactly as the estimator looks them up in a
 * profile: st_cost_estimate runs against a recording profile (st__profile_recorder_new), so the
 * sizes and group sizes are those of cost/estimate.c and cost/comm.c (tp/cp/ep collectives of
 * the operators, data-parallel buckets, ZeRO-3's per-layer gathers and scatters, pipeline
 * send/recv, the tied embedding's all-reduce). Those inside one node (intra) go to *out, distinct
 * and sorted by collective, ranks, bytes; *inter counts the distinct ones across nodes, which one
 * machine cannot measure. New array in *out (free()); 0, ST_ENOMEM or the estimate's error. */
int st__prof_plan_colls(const st_model *m, const st_cluster *c, const st_plan *p, st__prof_coll **out, int *n,
                        int *inter);

/* ------------------------------------------------------------------ numbers */

/* Fills n elements of dtype dt with random values from the xorshift state *seed: sign random
 * (positive only when `positive`), magnitude in [1/16, 2) with a random mantissa. Never zero,
 * never inf or NaN, in every format (fp8 is e4m3). elem bytes: st_dtype_bytes, fp8 1. */
void st__prof_fill(st_dtype dt, int positive, void *buf, size_t n, uint64_t *seed);
/* The median of v[0..n-1] (sorted in place); 0 when n is 0. */
double st__prof_median(double *v, int n);

/* ------------------------------------------------------------------ results */

enum { ST_PROF_COMPUTE, ST_PROF_MEMORY, ST_PROF_COLL, ST_PROF_COPY }; /* the profile's table kinds 0..3 */

typedef struct st__prof_sample {
    int kind;        /* ST_PROF_COMPUTE, _MEMORY, _COLL or _COPY */
    st_opclass cls;  /* compute and memory */
    st_dtype dtype;  /* compute */
    st_coll coll;    /* collectives (intra-node: one machine) */
    int ranks;
    st_copy_dir dir; /* copies (pinned host memory <-> one GPU) */
    int exact;       /* a --plan shape: its own point at exactly x */
    double x;        /* FLOPs, bytes, or message bytes per kernel / call / copy */
    double y;        /* FLOP/s, bytes/s, or bus bytes/s (nccl-tests' busBw) */
} st__prof_sample;

typedef struct st__prof_table {
    int kind;
    st_opclass cls;
    st_dtype dtype;
    st_coll coll;
    int ranks;
    st_copy_dir dir;
    int n, samples, exact; /* points; samples behind them; points at plan shapes */
    double *x, *y;
} st__prof_table;

#define ST_PROF_NOTES 12

typedef struct st__prof_result {
    char gpu[48];     /* the profile's GPU: a preset (or --gpu) */
    char device[256]; /* cudaDeviceProp.name */
    char driver[16];  /* "580.159" style when known, else the CUDA driver API version "13.0" */
    char cuda[16];    /* runtime version "13.0" */
    char date[16];
    char timer[512];    /* how the points were timed, for "source" and the summary */
    int quick, devices; /* devices: GPUs the collectives ran over (1: none) */
    int plan_colls_timed; /* of st__prof_opts.plan_colls: how many were timed */
    st__prof_sample *s;
    int ns, cap;
    st__prof_table *t; /* after st__prof_fit */
    int nt;
    char notes[ST_PROF_NOTES][240];
    int nnotes;
} st__prof_result;

void st__prof_result_init(st__prof_result *r);
void st__prof_result_destroy(st__prof_result *r);
int st__prof_add(st__prof_result *r, const st__prof_sample *s); /* 0 or ST_ENOMEM */
void st__prof_note(st__prof_result *r, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* Samples to tables, one per (class, dtype), class, (collective, ranks) or copy direction. Grid samples are binned
 * by powers of two of x, each bin one point (median x rounded down, median rate); plan samples
 * are points at their exact x (several at one x: total work over total time), and a grid bin that
 * holds a plan point gives way to it. x strictly increases in every table. 0 or ST_ENOMEM. */
int st__prof_fit(st__prof_result *r);
/* The date for the profile: today (UTC), or $SOURCE_DATE_EPOCH's day. */
void st__prof_date(char *buf, size_t n);
/* The GPU preset of a CUDA device name (cudaDeviceProp.name), NULL when strata has none. */
const char *st__prof_gpu_preset(const char *device);
/* Writes the fitted profile (st_profile_load's format) atomically; "-" = stdout. */
int st__prof_save(const st__prof_result *r, const char *path, st_error *err);
/* What was measured, one line per table, for stdout. */
void st__prof_describe(const st__prof_result *r, FILE *f);

/* ------------------------------------------------------------------ the measuring (cuda.c) */

typedef struct st__prof_opts {
    int quick;
    int device;                      /* CUDA device for the single-GPU parts */
    int events;                      /* --timer events: do not try CUPTI */
    const char *gpu;                 /* --gpu: the profile's GPU name; NULL = from the device name */
    const st__prof_gemm *plan_gemms; /* --model/--plan shapes (may be NULL) */
    int nplan_gemms;
    const st__prof_mem *plan_mems;
    int nplan_mems;
    const st__prof_coll *plan_colls; /* intra-node collectives of the plan (st__prof_plan_colls) */
    int nplan_colls;
    st_dtype plan_dtype;
    FILE *progress; /* one line per section, or NULL */
} st__prof_opts;

/* Measures on the local GPU(s) and fills r (samples, notes, names, versions; r->date is left to
 * the caller). Returns 0, or ST_EINVAL with "no CUDA GPU: <reason>" / "strata was built without
 * CUDA; ..." / the GPU is no preset and --gpu was not given, ST_ENOMEM, or ST_EIO when the device
 * fails in the middle. */
int st__prof_run(const st__prof_opts *o, st__prof_result *r, st_error *err);
/* One line on how this strata was built for profiling: "built without CUDA" or "built with CUDA
 * 13.0 (CUPTI, cuBLAS, ...)". */
const char *st__prof_build_info(void);


/* ------------------------------------------------------------------ this CPU (cpu.c)
 *
 * `strata profile --cpu` under mpirun -np N: the executor's kernels and Open MPI timed on every rank
 * at once (exec.h, "measuring this machine"), as a cluster of one node of N "GPUs" named "cpu" (one
 * rank's share of the CPU) and a calibration profile for it (profiler/cpu.c says what each number
 * is). */
typedef struct st__prof_cpu {
    int rank, ranks, quick;
    st_cluster cluster;       /* finalized-ready: one node of `ranks` GPUs "cpu" */
    st__prof_result r;        /* samples, and tables after st__prof_cpu_run */
    double gemm_flops_per_s;  /* the best GEMM rate (the cluster's peak) */
    double triad_bytes_per_s; /* the residual add's best rate */
    double adam_params_per_s;
    int gemms, attns, mems, colls; /* shapes and transfers timed */
    unsigned mem_classes;          /* memory-bound classes timed at the plan's operators (1 << st_opclass) */
} st__prof_cpu;
void st__prof_cpu_init(st__prof_cpu *c);
void st__prof_cpu_destroy(st__prof_cpu *c);
/* Measures (every rank calls it; m and p: a finalized plan whose shapes to time, or NULL) and fits
 * the tables. 0; the executor's errors (built without it, ST_ENOMEM); ST_EINVAL when the measured
 * cluster is not physical (st_cluster_finalize's message). */
int st__prof_cpu_run(const st_model *m, const st_plan *p, int quick, st__prof_cpu *c, st_error *err);
/* The cluster JSON (st_cluster_load's format, plus an informational "calibration" object saying what
 * each number is) atomically; "-" = stdout. */
int st__prof_cpu_save_cluster(const st__prof_cpu *c, const char *path, st_error *err);
/* What was measured, for stdout. */
void st__prof_cpu_describe(const st__prof_cpu *c, FILE *f);

#endif
