/* strata.h: the public interface of libstrata.
 *
 * The data model of DESIGN.md: a model description becomes an operator graph (one transformer
 * block as a list of operators, plus the embedding head and the logits/loss tail); a cluster is a
 * hierarchical topology (GPUs in NVLink domains, nodes joined by NICs); a plan is a sharding of
 * that graph (tp/sp/cp/ep inside operators, pp across layers, dp/ZeRO across replicas). cost/
 * prices one (model, cluster, plan) triple; everything that needs a cost (the estimator, the
 * enumerator, later the ILP and the simulator) goes through st_cost_*, so there is one cost path.
 *
 * Conventions (STYLE.md): public symbols st_, macros ST_; sizes are int64_t, times and FLOPs
 * double; SI units inside the code, units in every name (_s, _bytes, _bytes_per_s, _flops).
 * Fallible functions return 0 or a negative ST_E* code and fill an st_error.
 */
#ifndef STRATA_H
#define STRATA_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- errors */

/* One list of error codes (libuv's X-macro). Exit status in main.c: EINVAL/EIO/EUSAGE -> 2,
 * ENOFIT/ENOPLAN -> 1. */
#define ST_ERRNO_MAP(XX)                                                                           \
    XX(EINVAL, -1, "invalid input")                                                                \
    XX(ENOMEM, -2, "out of memory")                                                                \
    XX(EIO, -3, "input/output error")                                                              \
    XX(EUSAGE, -4, "usage error")                                                                  \
    XX(ENOFIT, -5, "plan does not fit in memory")                                                  \
    XX(ENOPLAN, -6, "no feasible plan")                                                            \
    XX(EINTERNAL, -7, "internal error")

enum {
    ST_OK = 0,
#define XX(name, val, text) ST_##name = val,
    ST_ERRNO_MAP(XX)
#undef XX
};

/* Where and why input was rejected. file/key empty and line/column 0 when unknown. */
typedef struct st_error {
    int code;
    char file[256];
    int line, column; /* 1-based position in `file` (JSON syntax errors) */
    char key[128];    /* dotted key path, e.g. "inter_node.nic_gbit_per_s" */
    char text[512];
} st_error;

const char *st_strerror(int code);
void st_error_clear(st_error *err);
/* Fills err (when non-NULL) and returns code. file and key may be NULL. */
int st_error_set(st_error *err, int code, const char *file, const char *key, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 5, 6)))
#endif
    ;
/* One line: "FILE:LINE:COL: key 'KEY': TEXT" with absent parts left out. */
void st_error_format(const st_error *err, char *buf, size_t n);

/* ------------------------------------------------------------ enums */

typedef enum { ST_DT_FP32, ST_DT_TF32, ST_DT_FP16, ST_DT_BF16, ST_DT_FP8, ST_DT_COUNT } st_dtype;
typedef enum { ST_ACT_GELU, ST_ACT_RELU, ST_ACT_SWIGLU } st_activation;
typedef enum { ST_NORM_LAYERNORM, ST_NORM_RMSNORM } st_norm;
typedef enum { ST_POS_LEARNED, ST_POS_ROPE, ST_POS_ALIBI } st_position;
typedef enum { ST_REC_NONE, ST_REC_SELECTIVE, ST_REC_FULL } st_recompute;
typedef enum { ST_OFF_NONE, ST_OFF_OPTIMIZER, ST_OFF_PARAMS } st_offload;
typedef enum { ST_SCHED_GPIPE, ST_SCHED_1F1B, ST_SCHED_INTERLEAVED, ST_SCHED_ZB } st_schedule;

const char *st_dtype_name(st_dtype d);
int st_dtype_parse(const char *s, st_dtype *out); /* 0 or ST_EINVAL */
double st_dtype_bytes(st_dtype d);                /* bytes per element (tf32 stored as 4) */
const char *st_activation_name(st_activation a);
int st_activation_parse(const char *s, st_activation *out);
const char *st_norm_name(st_norm n);
int st_norm_parse(const char *s, st_norm *out);
const char *st_position_name(st_position p);
int st_position_parse(const char *s, st_position *out);
const char *st_recompute_name(st_recompute r);
int st_recompute_parse(const char *s, st_recompute *out);
const char *st_offload_name(st_offload o);
int st_offload_parse(const char *s, st_offload *out);
const char *st_schedule_name(st_schedule s);
int st_schedule_parse(const char *s, st_schedule *out);

/* ------------------------------------------------------------ model */

/* Absurd-size guards shared by every loader (10^12 layers must be refused, not allocated). */
#define ST_MAX_LAYERS 100000
#define ST_MAX_HIDDEN (1 << 20)
#define ST_MAX_HEADS 65536
#define ST_MAX_VOCAB (1 << 24)
#define ST_MAX_SEQ (1 << 24)
#define ST_MAX_EXPERTS 4096
#define ST_MAX_GPUS (1 << 20)

typedef struct st_model {
    char name[64];
    int64_t layers;   /* transformer blocks */
    int64_t hidden;   /* h */
    int64_t heads;    /* a, query heads */
    int64_t kv_heads; /* GQA/MQA key-value heads; = heads for MHA */
    int64_t head_dim; /* hidden / heads unless the model says otherwise */
    int64_t ffn;      /* MLP inner size (per expert for MoE) */
    int64_t vocab;    /* unpadded vocabulary */
    int64_t seq_len;  /* default training sequence length */
    st_activation activation;
    st_norm norm;
    st_position position;
    int tied_embeddings;        /* output layer shares the input embedding */
    int dropout;                /* dropout after attention probs and residual branches */
    int bias;                   /* linear layers carry biases (GPT-2/3, OPT, BLOOM) */
    int64_t experts;            /* 0 = dense */
    int64_t experts_topk;       /* experts a token visits */
    int64_t moe_every;          /* every n-th block is MoE (1 = all) */
    int64_t vocab_pad_multiple; /* Megatron --make-vocab-size-divisible-by; pad to this x tp; 1 = none */
    char source[200];           /* citation for presets; file path for loaded models */
} st_model;

/* Presets (src/model.c). Returned arrays are static; borrowed. */
const st_model *st_model_presets(size_t *n);
int st_model_preset(const char *name, st_model *out); /* 0 or ST_EINVAL */
/* Fills defaults that derive from other fields (kv_heads, head_dim, ffn, ...) and checks ranges.
 * `file` names the source for messages (may be NULL). */
int st_model_finalize(st_model *m, const char *file, st_error *err);
/* Loads a strata model JSON or a HuggingFace config.json (src/model_io.c). */
int st_model_load(const char *path, st_model *out, st_error *err);
/* A preset name, else a path. */
int st_model_resolve(const char *arg, st_model *out, st_error *err);
/* Megatron-LM's padded vocabulary: round up to vocab_pad_multiple * tp. */
int64_t st_model_padded_vocab(const st_model *m, int tp);
/* Total parameters, counted from the operator graph at tp = 1 (no padding when pad is NULL). */
double st_model_params(const st_model *m);
/* Whether block `layer` (0-based) is an MoE block. */
int st_model_layer_is_moe(const st_model *m, int64_t layer);

/* ------------------------------------------------------- operator graph */

typedef enum {
    ST_OPC_GEMM,     /* dense matmul with weights */
    ST_OPC_BGEMM,    /* batched matmul without weights (attention scores / context) */
    ST_OPC_SOFTMAX,  /* scale + mask + softmax */
    ST_OPC_NORM,     /* layernorm / rmsnorm */
    ST_OPC_ELEMWISE, /* bias, activation, dropout, residual add, rope */
    ST_OPC_EMBED,    /* embedding lookup */
    ST_OPC_LOSS,     /* (vocab-parallel) cross-entropy */
    ST_OPC_COUNT
} st_opclass;
const char *st_opclass_name(st_opclass c);
int st_opclass_parse(const char *s, st_opclass *out);

typedef enum {
    ST_COLL_NONE,
    ST_COLL_ALLREDUCE,
    ST_COLL_ALLGATHER,
    ST_COLL_REDUCESCATTER,
    ST_COLL_ALLTOALL,
    ST_COLL_BROADCAST,
    ST_COLL_SENDRECV,
    ST_COLL_COUNT
} st_coll;
const char *st_coll_name(st_coll c);
int st_coll_parse(const char *s, st_coll *out);

/* The process groups a collective runs in. */
typedef enum { ST_GRP_TP, ST_GRP_CP, ST_GRP_EP, ST_GRP_DP, ST_GRP_PP, ST_GRP_COUNT } st_group_kind;

/* Which tensor split divides an operator's work (bit set). */
enum { ST_SPLIT_TP = 1, ST_SPLIT_SP = 2, ST_SPLIT_CP = 4, ST_SPLIT_EP = 8 };

/* How one rank runs a layer: the intra-operator degrees and the micro-batch shape. */
typedef struct st_shard {
    int tp, cp, ep; /* ep = 1 for dense models */
    int sp;         /* Megatron sequence parallelism (only with tp > 1) */
    int64_t mbs;    /* sequences per micro-batch */
    int64_t seq;    /* sequence length */
    st_dtype dtype; /* compute/activation dtype */
    int grad_bytes; /* gradient accumulator width (4 = fp32 main_grad as in Megatron-LM) */
} st_shard;

/* One operator as one rank runs it for one micro-batch (numbers already divided by the shard). */
typedef struct st_op {
    const char *name; /* static string: "qkv", "fc1", ... */
    st_opclass cls;
    double fwd_flops, bwd_flops; /* this rank's FLOPs */
    double fwd_bytes, bwd_bytes; /* this rank's HBM traffic */
    double m, n, k, batch;       /* GEMM/BGEMM shape (batch of m x k by k x n) */
    int kernels_fwd, kernels_bwd;
    double params;      /* parameters held by this rank */
    double saved_bytes; /* activation bytes stored for backward (no recompute) */
    int selective;      /* dropped (recomputed) under selective recompute */
    unsigned splits;    /* ST_SPLIT_* that divide this op's work */
    int expert;         /* weights belong to experts (sharded by ep, reduced over dp*cp/ep) */
    /* collective implied after this op in forward and in backward, in group coll_group */
    st_coll fwd_coll, bwd_coll;
    st_group_kind coll_group;
    double coll_bytes; /* full (unsharded-over-group) message size per rank */
} st_op;

#define ST_MAX_OPS 48
/* One dense and one MoE block index within the first MoE period (-1 when the model has none). */
void st_model_block_kinds(const st_model *m, int64_t *dense_idx, int64_t *moe_idx);
/* Operators of block `layer` (0-based); returns the count (<= cap) or a negative code. */
int st_ops_layer(const st_model *m, const st_shard *s, int64_t layer, st_op *ops, int cap);
/* Embedding (+ learned positions) on the first stage. */
int st_ops_head(const st_model *m, const st_shard *s, st_op *ops, int cap);
/* Final norm, logits, loss on the last stage. */
int st_ops_tail(const st_model *m, const st_shard *s, st_op *ops, int cap);

/* ------------------------------------------------------------ cluster */

typedef struct st_gpu {
    char name[48];
    double memory_bytes;
    double hbm_bytes_per_s;
    double peak_flops[ST_DT_COUNT]; /* dense peak per dtype, 0 = unsupported */
    double gemm_efficiency;         /* best achievable fraction of peak for large GEMMs */
    int sms;                        /* streaming multiprocessors; 0 = unknown (no contention modelled) */
    char source[200];
} st_gpu;

typedef struct st_cluster {
    char name[64];
    int64_t nodes;
    int64_t gpus_per_node;
    st_gpu gpu;
    double intra_bytes_per_s; /* per GPU per direction inside the NVLink domain */
    double intra_latency_s;
    int64_t nics_per_node;
    double nic_bytes_per_s; /* per NIC per direction */
    double inter_latency_s;
    double oversubscription; /* fabric above the nodes: 1 = full bisection */
    double host_memory_bytes;
    double pcie_bytes_per_s; /* per GPU per direction */
    char source[300];
} st_cluster;

const st_gpu *st_gpu_presets(size_t *n);
int st_gpu_preset(const char *name, st_gpu *out);
const st_cluster *st_cluster_presets(size_t *n);
int st_cluster_preset(const char *name, st_cluster *out);
int st_cluster_finalize(st_cluster *c, const char *file, st_error *err);
int st_cluster_load(const char *path, st_cluster *out, st_error *err);
/* A preset name or a path; gpus > 0 resizes to gpus / gpus_per_node nodes (must divide). */
int st_cluster_resolve(const char *arg, int64_t gpus, st_cluster *out, st_error *err);
static inline int64_t st_cluster_gpus(const st_cluster *c) { return c->nodes * c->gpus_per_node; }

/* ------------------------------------------------------------ plan */

#define ST_PLAN_FORMAT_VERSION 1
#define ST_PLAN_FORMAT "strata-plan" /* the plan JSON's "format" */
#define ST_MAX_STAGES 512 /* pipeline chunks (pp * vp); more is refused naming pp or vp */

typedef struct st_plan {
    int tp, pp, dp, cp, ep, vp;
    int64_t mbs, gbs, seq;
    int sp;
    st_recompute recompute;
    int zero; /* 0..3 */
    st_offload offload;
    st_dtype dtype;
    st_schedule schedule;
    int overlap_grad_reduce; /* DP reduce overlapped with backward (Megatron --overlap-grad-reduce) */
    int grad_bytes;          /* 4: fp32 gradient accumulation (Megatron), 2: 16-bit */
    int nstage_layers;       /* 0 = spread evenly; else pp*vp entries */
    int stage_layers[ST_MAX_STAGES];
    uint64_t seed;
    unsigned given; /* ST_GIVEN_* bits: keys the user set (dp and gbs are derived otherwise) */
    /* what a loaded plan file says it was made for (empty when unknown) */
    char for_model[64], for_model_hash[17], for_cluster[64], for_cluster_hash[17];
} st_plan;

enum {
    ST_GIVEN_DP = 1,
    ST_GIVEN_GBS = 2,
    ST_GIVEN_SEQ = 4,
    ST_GIVEN_SCHEDULE = 8,
    ST_GIVEN_GPUS = 16,
    ST_GIVEN_GRAD = 32
};

void st_plan_defaults(st_plan *p);
/* "tp=8,pp=8,..." over the current values of p. */
int st_plan_parse_spec(const char *spec, st_plan *p, st_error *err);
/* Loads a plan JSON (src/plan_io.c). Unknown keys are errors. */
int st_plan_load(const char *path, st_plan *p, st_error *err);
/* A path to a plan JSON if such a file exists, else an inline spec. */
int st_plan_resolve(const char *arg, st_plan *p, st_error *err);
/* Derives dp/gbs/seq/schedule and rejects impossible plans naming the key. `gpus` is the count
 * the plan must use (0 = at most the cluster's). */
int st_plan_finalize(st_plan *p, const st_model *m, const st_cluster *c, int64_t gpus, const char *file,
                     st_error *err);
/* Layers of each of the pp*vp chunks, in chunk order (chunk j lives on stage j % pp). Spreads
 * evenly, counting the embedding toward the first stage and the output layer toward the last. */
void st_plan_chunk_layers(const st_plan *p, const st_model *m, int *out);
int64_t st_plan_microbatches(const st_plan *p);
/* Canonical inline spec. */
void st_plan_format_spec(const st_plan *p, char *buf, size_t n);
/* The shard a plan runs its blocks with. */
void st_plan_shard(const st_plan *p, st_shard *out);
/* When a loaded plan file was made for another model or cluster than (m, c), writes a one-line
 * note saying so and returns 1; else 0. (The plan may still be valid for them.) */
int st_plan_origin_note(const st_plan *p, const st_model *m, const st_cluster *c, char *buf, size_t n);
/* Writes the plan JSON atomically (temp file + rename). */
int st_plan_save(const st_plan *p, const st_model *m, const st_cluster *c, const char *path, st_error *err);

/* The file an atomic write (temp file + rename) of `path` replaces: `path`, or for a symbolic link
 * the file it points to (the link stays a link). An existing target that is no regular file (a
 * device, a FIFO, a folder) is refused: rename(2) would replace it rather than write into it (as
 * root, --out /dev/full replaced the device). New string (free()), or NULL with err set. */
char *st__out_target(const char *path, st_error *err);

/* ------------------------------------------------------- calibration */

/* A calibration profile: measured throughput tables (cost/profile.c, format in README). */
typedef struct st_profile st_profile;
int st_profile_load(const char *path, st_profile **out, st_error *err); /* new; st_profile_free */
/* What --profile takes: a file, or the name of a shipped profile (NAME.json in $STRATA_PROFILE_PATH's
 * folders, the installed $(pkgdatadir)/profiles, or the source tree's traces/). */
int st_profile_open(const char *arg, st_profile **out, st_error *err);
/* The shipped profiles, sorted by name (free() the array); a file that does not load has `error` set. */
typedef struct st_profile_entry {
    char name[64], path[512], gpu[48], date[64], source[256], error[512];
} st_profile_entry;
int st_profile_shipped(st_profile_entry **out, size_t *n, st_error *err);
void st_profile_free(st_profile *p);
/* Achieved FLOP/s for a kernel of this class and dtype doing `flops`; 0 when the table is silent. */
double st_profile_flops_per_s(const st_profile *p, st_opclass cls, st_dtype dt, double flops);
/* Achieved bytes/s for a memory-bound kernel moving `bytes`; 0 when silent. */
double st_profile_bytes_per_s(const st_profile *p, st_opclass cls, double bytes);
/* Bus bandwidth (bytes/s) of collective `c` over `ranks` ranks, intra (1) or inter (0) node. */
double st_profile_bus_bytes_per_s(const st_profile *p, st_coll c, int intra, int ranks, double bytes);
/* Copies between pinned host memory and one GPU, the directions of a profile's "copies" tables. */
typedef enum { ST_COPY_H2D, ST_COPY_D2H, ST_COPY_COUNT } st_copy_dir;
const char *st_copy_dir_name(st_copy_dir d); /* "h2d", "d2h" */
/* Achieved bytes/s of one copy of `bytes` in direction d; 0 when the profile has no table for it. */
double st_profile_copy_bytes_per_s(const st_profile *p, st_copy_dir d, double bytes);
const char *st_profile_gpu(const st_profile *p);
const char *st_profile_file(const st_profile *p); /* the path it was loaded from */
/* A deep copy (st_profile_free), or NULL when out of memory. */
st_profile *st_profile_dup(const st_profile *p);
/* Makes a profile measured on one GPU type usable on `target` (issue 6, "Prediction across
 * hardware"): compute rates x target/measured dense peak of the table's dtype, memory rates x
 * target/measured HBM bandwidth, so each table keeps its efficiency shape; collective and copy
 * tables stay as measured (the profile does not record the measuring machine's links, NVLink,
 * NICs or the host's PCIe, and copies do not depend on the GPU type). Compute tables for a
 * dtype one of the two GPUs lacks are dropped. Afterwards st_profile_gpu is target->name.
 * Returns 0 (same GPU name: used as is, note empty), 1 (scaled; a one-line note saying so in
 * note), or ST_EINVAL naming key "gpu" when the profile's GPU is not a preset. */
int st_profile_retarget(st_profile *p, const st_gpu *target, char *note, size_t n, st_error *err);
/* The GPU the tables were measured on when st_profile_retarget scaled them; else NULL. */
const char *st_profile_scaled_from(const st_profile *p);

/* ---- calibration import */

/* `strata calibrate` (profiler/kineto.c): a PyTorch profiler (Kineto) trace to the tables of a
 * calibration profile, without a GPU. */
typedef struct st_calib_opts {
    const char *gpu;   /* the profile's GPU (a preset name); NULL = from the trace's deviceProperties */
    int gpus_per_node; /* collectives over more ranks (or over ranks on several nodes) are "inter" */
    const char *date;  /* "YYYY-MM-DD" for the profile; NULL = today (UTC) or $SOURCE_DATE_EPOCH's day */
} st_calib_opts;
void st_calib_opts_init(st_calib_opts *o); /* gpu NULL, gpus_per_node 8, date NULL */

/* What an import read and used. Kernels are counted once, in the first of used, unlinked,
 * unclassified, no_shapes or untimed that applies. */
typedef struct st_calib_summary {
    char gpu[48];         /* the profile's GPU */
    char device[128];     /* the trace's device name; empty when it has none */
    int64_t events;       /* trace events */
    int64_t kernels;      /* GPU kernels (cat "kernel") */
    int64_t used;         /* kernels that went into a sample */
    int64_t unlinked;     /* no CPU operator found by correlation or External id */
    int64_t unclassified; /* their operator has no strata class (e.g. aten::sum) */
    int64_t no_shapes;    /* class known, but shapes, dtypes or message sizes missing or unusable */
    int64_t untimed;      /* no positive "dur" */
    int64_t samples[4];   /* measured: operator calls (compute, memory, collectives), pinned copies */
    int64_t tables[4], points[4];
} st_calib_summary;

typedef struct st_calib st_calib;
/* Reads a Kineto trace (Chrome trace JSON, plain or gzip) and fits the profile tables. Returns 0
 * with *out new (free with st_calib_free), ST_EIO (cannot read) or ST_EINVAL (malformed JSON with
 * line and column, not a Kineto trace, no GPU kernels, nothing measurable, unknown GPU). */
int st_calib_import_kineto(const char *path, const st_calib_opts *o, st_calib **out, st_error *err);
void st_calib_free(st_calib *c);
const st_calib_summary *st_calib_get_summary(const st_calib *c); /* borrowed */
/* One line per fitted table ("  gemm bf16: 3 points from 5 calls"), under headings. */
void st_calib_describe(const st_calib *c, FILE *f);
/* Writes the profile (st_profile_load's format) atomically; "-" = stdout. */
int st_calib_save(const st_calib *c, const char *path, st_error *err);

/* ------------------------------------------------------------ cost */

/* Where one group's ranks sit: n ranks, k of them per node, over n/k nodes; `node_share` = how
 * many GPUs of a node use the node's NICs at the same time for this kind of collective. */
typedef struct st_group {
    int64_t n, per_node, nodes;
    int64_t node_share;
} st_group;

typedef struct st_cost_ctx st_cost_ctx;

/* new; free with st_cost_ctx_free. model, cluster and profile are borrowed and must outlive it. */
st_cost_ctx *st_cost_ctx_new(const st_model *m, const st_cluster *c, const st_profile *prof);
void st_cost_ctx_free(st_cost_ctx *ctx);
/* The cluster a context prices for (borrowed). */
const st_cluster *st_cost_cluster(const st_cost_ctx *ctx);

/* Compute time of one operator pass on one GPU (cost/compute.c). */
double st_cost_op_time(const st_cluster *c, const st_profile *prof, const st_op *op, st_dtype dt, int backward);
/* Collective time for `bytes` per rank (cost/comm.c). */
double st_cost_collective(const st_cluster *c, const st_profile *prof, st_coll coll, const st_group *g,
                          double bytes);
/* Placement of a plan's group of kind k (Megatron order tp-cp-dp-pp; ep inside dp*cp). */
void st_cost_group(const st_cluster *c, const st_plan *p, st_group_kind k, st_group *g);
/* The links collectives are priced on, per direction, at the rates cost/comm.c gives them (for the
 * simulator's shared links): a GPU's NVLink port, a NIC port (nic_ports per node, GPU i on port
 * i * nic_ports / gpus_per_node), a node's link to the fabric (its NICs / oversubscription), and
 * the share of its node's NICs one GPU gets across nodes when all of the node's GPUs communicate. */
typedef struct st_net {
    int64_t gpus_per_node, nic_ports;
    double nvlink_bytes_per_s, nic_port_bytes_per_s, uplink_bytes_per_s, gpu_share_bytes_per_s;
} st_net;
void st_cost_net(const st_cluster *c, st_net *out);
/* The same model and profile priced on *c0, a copy of ctx's cluster without latencies (c0 must
 * outlive the result): T(ctx) - T(result) is the latency part of a time T. new; st_cost_ctx_free. */
st_cost_ctx *st_cost_ctx_without_latency(const st_cost_ctx *ctx, st_cluster *c0);
/* Bytes of the pipeline send/recv message per rank (what the p2p time of st_cost_chunk moves). */
double st_cost_p2p_bytes(const st_cost_ctx *ctx, const st_plan *p);
/* ZeRO-3 (zero = 3) in pipeline chunk `chunk`, as the estimate prices it: *layers gathered one by
 * one, one layer's all-gather and reduce-scatter of its dense parameters over the dp x cp group,
 * and the tied embedding's all-reduce on the first and last chunk (0 elsewhere). */
void st_cost_zero3_chunk(st_cost_ctx *ctx, const st_plan *p, int chunk, double *layers, double *gather_s,
                         double *scatter_s, double *embed_s);
/* The same for the chunk's expert parameters, sharded over the expert-data-parallel group
 * (st_cost_group_edp): one layer's all-gather and reduce-scatter; 0 without experts or with ep 1
 * (then they go with the dense ones). */
void st_cost_zero3_chunk_experts(st_cost_ctx *ctx, const st_plan *p, int chunk, double *gather_s, double *scatter_s);
/* offload=params (zero = 3) in pipeline chunk `chunk`: the time to copy one layer's share of the
 * GPU's weight shard from the host over PCIe (the chunk's parameters spread evenly over
 * st_cost_zero3_chunk's layers; dense weights sharded over the dp x cp group, experts over the
 * expert-data-parallel group; the last chunk with the tied embedding's copy), priced as the
 * estimate prices the streaming; a layer's weights cross before its forward and again before its
 * backward. *bytes (optional): the bytes one such copy moves. 0 without offload=params. */
double st_cost_offload_chunk(st_cost_ctx *ctx, const st_plan *p, int chunk, double *bytes);
/* The expert-data-parallel group: the dp x cp / ep ranks that hold the same experts (the same
 * position in their ep groups), ep x tp apart in Megatron's rank order. */
void st_cost_group_edp(const st_cluster *c, const st_plan *p, st_group *g);

/* A logical device mesh of one or two axes over a sub-mesh of the cluster (issue 4): axis
 * naxes - 1 is the innermost (consecutive GPUs), grp[a] places one group along axis a. */
typedef struct st_mesh {
    int naxes;
    int size[2];
    st_group grp[2];
    int nodes, gpus; /* the physical sub-mesh: nodes x GPUs per node */
} st_mesh;
/* A tensor's layout on a mesh: ax[a] = the dimension axis a splits (-1: replicated along a);
 * bit a of partial: the tensor holds partial sums along axis a (not split there). */
typedef struct st_layout {
    signed char ax[2];
    unsigned char partial;
} st_layout;
/* Builds a mesh of `naxes` axes of the given sizes (product = nodes * gpus) on nodes x gpus GPUs
 * of cluster c. */
void st_mesh_init(st_mesh *m, const st_cluster *c, int nodes, int gpus, int naxes, const int *size);
/* Cheapest sequence of collectives (Rink et al. 2021) that turns a tensor of `full_bytes` (unsharded)
 * from layout src into dst on mesh m: per axis a slice (free), reduce-scatter, all-reduce, all-to-all
 * or all-gather, tried in every order after the slices. steps (may be NULL) receives the
 * collectives in order (at most 2), *nsteps their count. Returns seconds. */
double st_cost_reshard(const st_cluster *c, const st_profile *prof, const st_mesh *m, double full_bytes, st_layout src,
                       st_layout dst, st_coll *steps, int *nsteps);
/* The same, step by step: each collective with its mesh axis, the bytes per rank it is priced
 * with (st_cost_collective's `bytes`) and its time alone. */
typedef struct st_reshard_step {
    st_coll coll;
    int axis;
    double bytes, time_s;
} st_reshard_step;
double st_cost_reshard_steps(const st_cluster *c, const st_profile *prof, const st_mesh *m, double full_bytes,
                             st_layout src, st_layout dst, st_reshard_step *steps, int *nsteps);

typedef struct st_breakdown {
    double compute_s, recompute_s;
    double tp_comm_s, cp_comm_s, ep_comm_s, pp_comm_s, dp_comm_s;
    double bubble_s, optimizer_s, offload_s;
} st_breakdown;

typedef struct st_stage_memory {
    double weights_bytes, grads_bytes, optimizer_bytes, activations_bytes, other_bytes;
    double total_bytes;
} st_stage_memory;

typedef struct st_estimate {
    double iteration_time_s;
    double tokens_per_s;
    double model_flops; /* per iteration, no recompute (DESIGN.md definition) */
    double model_tflops_per_gpu;
    double mfu;
    double memory_peak_bytes; /* max over stages */
    int peak_stage;
    int fits;
    double host_memory_bytes; /* per node, for offload */
    /* offload: the optimizer step's PCIe copies, gradients to the host and updated weights back
     * (parts of breakdown.offload_s; the rest is params offload's weight streaming) */
    double offload_grads_s, offload_weights_s;
    st_breakdown breakdown;
} st_estimate;

/* Prices a finalized plan. Returns 0, or ST_EINVAL when the plan cannot be costed. */
int st_cost_estimate(st_cost_ctx *ctx, const st_plan *p, st_estimate *out);
/* Memory of pipeline stage `stage` (0-based). */
void st_cost_stage_memory(st_cost_ctx *ctx, const st_plan *p, int stage, st_stage_memory *out);
/* Pipeline time of mb micro-batches over stages of n kinds: kind k has count[k] stages taking
 * t_s[k] per micro-batch (all their chunks). m * max + (sum - max) / vp (Narayanan et al.
 * SC'21); ZB-H1 shrinks the bubble by (tf + tb - tw) / (tf + tb + tw) of the slowest stage,
 * given as fwd_s and bwd_s (tb = tw = bwd / 2). Writes the bubble to *bubble_s. */
double st_cost_pipeline_s(const double *t_s, const int *count, int n, int vp, int64_t mb, st_schedule sched,
                          double fwd_s, double bwd_s, double *bubble_s);
/* What one micro-batch costs in one pipeline chunk (the simulator's instruction durations). */
typedef struct st_chunk_cost {
    double fwd_s, bwd_s, recompute_s;                  /* compute */
    double comm_fwd_s, comm_bwd_s, comm_recompute_s;   /* its inline tp/cp/ep collectives */
    /* the same per group kind (ST_GRP_TP, ST_GRP_CP, ST_GRP_EP; the others 0) */
    double comm_fwd_g[ST_GRP_COUNT], comm_bwd_g[ST_GRP_COUNT], comm_recompute_g[ST_GRP_COUNT];
    double act_bytes;                                  /* activations kept until its backward */
    double working_bytes;                              /* full recompute: one block's activations, live
                                                          while that backward recomputes them */
    double p2p_s;                                      /* sending its output (or input gradient) */
    double p2p_send_s, p2p_gather_s;                   /* p2p_s's parts: the 1/tp slice's send, and
                                                          the receivers' tp all-gather of it */
    double params;                                     /* parameters it holds (its gradients' share) */
    double expert_params;                              /* of which expert weights (ZeRO shards them
                                                          over the expert-data-parallel group) */
} st_chunk_cost;
void st_cost_chunk(st_cost_ctx *ctx, const st_plan *p, int chunk, st_chunk_cost *out);
/* Compute time added while a collective of `overlapped_s` runs beside it (NCCL's SMs). */
double st_cost_overlap_tax(const st_cluster *c, double overlapped_s);
/* Full (not overlapped) data-parallel times of pipeline stage `stage` for zero 0-2: the gradient
 * reduction, the weight all-gather, and how many buckets Megatron-LM issues them in. */
void st_cost_dp_stage(st_cost_ctx *ctx, const st_plan *p, int stage, double *reduce_s, double *gather_s,
                      double *nbuckets);
/* The tied embedding's gradient all-reduce between the first and the last pipeline stage (each tp
 * rank its 1/tp of the padded vocabulary), after the data-parallel reduction; 0 without tied
 * embeddings or without a pipeline. *bytes: its message per rank. */
double st_cost_embedding_allreduce(st_cost_ctx *ctx, const st_plan *p, double *bytes);
/* Model FLOPs of one iteration (3 x forward, no recompute). */
double st_cost_model_flops(const st_model *m, int64_t gbs, int64_t seq);

/* ------------------------------------------------------------ search */

typedef struct st_search_opts {
    int64_t gpus, gbs, seq;
    int top;          /* plans kept */
    st_dtype dtype;
    int max_tp;       /* 0 = heads */
    int progress;     /* progress line on stderr after 1 s */
    uint64_t seed;
    /* optional filter: plans for which accept() returns 0 are priced (counted) but not kept, e.g.
     * plans a framework cannot run; called only for plans good enough to enter the kept set */
    int (*accept)(const st_plan *p, void *arg);
    void *accept_arg;
} st_search_opts;

typedef struct st_ranked {
    st_plan plan;
    st_estimate est;
    double sim_time_s; /* simulated iteration time (st_search_validate); 0 = not simulated,
                          < 0 = the simulation could not run it */
} st_ranked;

typedef struct st_search_result {
    st_ranked *plans; /* best first, n of them */
    int n;
    uint64_t evaluated; /* fully specified configurations priced */
    uint64_t feasible;  /* of those, the ones that fit */
    double search_time_s;
} st_search_result;

void st_search_opts_init(st_search_opts *o);
/* Enumerates the hybrid space. Fills res (free with st_search_result_destroy). Returns
 * ST_ENOPLAN when nothing fits. */
int st_search_enumerate(const st_model *m, const st_cluster *c, const st_profile *prof,
                        const st_search_opts *o, st_search_result *res, st_error *err);
void st_search_result_destroy(st_search_result *res);
/* Simulates the first k plans of res (strata sim) and re-ranks those k by simulated time; plans the
 * simulator cannot run go after them. */
int st_search_validate(const st_model *m, const st_cluster *c, const st_profile *prof, st_search_result *res, int k,
                       st_error *err);

/* ------------------------------------------------------------ emit */

typedef enum { ST_EMIT_MEGATRON, ST_EMIT_DEEPSPEED, ST_EMIT_TORCHTITAN } st_emit_kind;
int st_emit_parse(const char *s, st_emit_kind *out);
/* Writes framework configuration for the plan to f. */
int st_emit(st_emit_kind kind, const st_plan *p, const st_model *m, const st_cluster *c, FILE *f,
            st_error *err);

/* ------------------------------------------------------------ compare */

/* One row of `strata compare`: the best plan of one cluster at one GPU count, and what it means
 * for a training run of `tokens` tokens (search/compare.c). */
typedef struct st_compare_row {
    st_cluster cluster;        /* sized to `gpus` GPUs */
    int64_t gpus;
    int cluster_index;         /* position in the cluster list (the order prices follow) */
    int order;                 /* position in the cross product clusters x gpus (ties keep it) */
    int has_price;             /* price_per_gpu_hour was given */
    double price_per_gpu_hour; /* currency units per GPU-hour */
    int profiled;              /* the calibration profile: 0 none, 1 applied as measured (its GPU is this
                                  cluster's), 2 scaled to this cluster's GPU (st_profile_retarget) */
    char profile_note[320];    /* when scaled: st_profile_retarget's note */
    int fits;                  /* a plan fits; best and the derived numbers are valid only then */
    st_ranked best;
    uint64_t evaluated;        /* configurations the search priced */
    double search_time_s;
    /* derived by st_compare_row_derive; 0 where they do not apply (no fit, no price) */
    double time_to_train_s, time_to_train_h, time_to_train_days;
    double cost_to_train;      /* time_h x gpus x price */
    double tokens_per_dollar;  /* tokens_per_s x 3600 / (gpus x price) */
    double headroom_bytes;     /* GPU memory minus the peak of the busiest stage */
} st_compare_row;

#define ST_COMPARE_MAX_LIST 64 /* clusters, GPU counts, prices */
#define ST_COMPARE_DEFAULT_TOKENS 3e11 /* GPT-3's 300B training tokens (Brown et al. 2020, section 2.2) */

/* "3e11", "300000000000", "300B", "15T", "2.5M", "40K" (decimal suffixes K M B T, either case) to
 * finite count >= 1. Nothing else: no sign, spaces, hex, inf or nan. Returns 0 or ST_EINVAL (*out
 * untouched). */
int st_compare_parse_tokens(const char *s, double *out);
/* Fills a row's derived numbers from best.est, gpus, price and the cluster's GPU memory. Pure. */
void st_compare_row_derive(st_compare_row *r, double tokens);
/* Orders rows best first: rows that fit by time to train, then the ones that do not; ties keep
 * the input order (`order`), so output is deterministic. */
void st_compare_rows_sort(st_compare_row *rows, int n);
/* For each cluster argument (preset or cluster JSON) and each GPU count (cross product, clusters
 * outer; gpus NULL or ngpus 0 = each cluster at its own size), resolves the cluster with
 * st_cluster_resolve, searches with st_search_enumerate (o->top and o->gpus are ignored: top 1,
 * all the row's GPUs) and derives the row. prices: NULL, or one per cluster. prof (may be NULL)
 * applies to the rows whose GPU is the profile's; ST_EUSAGE if none is. Every cluster is resolved
 * before any search, so bad input fails fast. A row where nothing fits is kept with fits = 0.
 * Returns 0 with *rows (new; free with st_compare_rows_free) sorted by st_compare_rows_sort and
 * *nrows set (none fits when (*rows)[0].fits is 0), or a negative code with *rows NULL. */
int st_compare_run(const st_model *m, const char *const *cluster_args, int nclusters, const int64_t *gpus,
                   int ngpus, const double *prices, const st_search_opts *o, double tokens, const st_profile *prof,
                   st_compare_row **rows, int *nrows, st_error *err);
void st_compare_rows_free(st_compare_row *rows);

#ifdef __cplusplus
}
#endif
#endif
