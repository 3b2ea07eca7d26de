/* cost_private.h: what the cost files share: the per-shard cache of layer costs that makes the
 * enumerator fast without a second formula. Every number in the cache comes from st_ops_* and
 * st_cost_op_time / st_cost_collective; the cache only remembers them per shard. */
#ifndef STRATA_COST_PRIVATE_H
#define STRATA_COST_PRIVATE_H

#include "cost/cost.h"

/* Constants with their sources (DESIGN.md: "every constant in cost/ names its source"). */

/* Achieved fraction of HBM bandwidth for streaming kernels: BabelStream's triad reaches about
 * 85-90% of the datasheet bandwidth on A100 and H100 (Deakin et al., BabelStream results). */
#define ST_HBM_EFFICIENCY 0.85
/* Time a GPU stays idle per kernel launched from eager PyTorch: 4 us (the "few microseconds per
 * launch" measured in NVIDIA's "Getting Started with CUDA Graphs", 2019, plus dispatch). */
#define ST_KERNEL_OVERHEAD_S 4e-6
/* Host time eager PyTorch spends per kernel it launches from Python model code (the Python of the
 * layer, autograd, the dispatcher, the caching allocator, cudaLaunchKernel): 45 us, measured by
 * profiling eager SAM2 inference (facebookresearch/sam2 issue #768: 53.7 ms per frame for 1,185
 * launches while the GPU was busy 7.27 ms; captured as a CUDA graph, 12 ms). The host runs ahead
 * of the GPU through a block's operators, so a block takes max(its GPU time, its kernels x this),
 * not their sum: small models whose kernels are shorter than the host's work are host-bound. */
#define ST_HOST_S_PER_KERNEL 45e-6
/* GEMM tile quantisation: efficiency factor d / (d + ST_GEMM_HALF_DIM) per dimension, a smooth
 * stand-in for the 64-128 wide tiles of cuBLAS (NVIDIA Matrix Multiplication Background guide,
 * "Tile Quantization"): a 64-wide dimension runs at half the rate of a large one. */
#define ST_GEMM_HALF_DIM 64.0
/* Bus bandwidth NCCL reaches, as a fraction of the link rate: ~230-240 of 300 GB/s on DGX A100
 * NVSwitch and ~90% of InfiniBand line rate (nccl-tests all_reduce_perf results published by
 * NVIDIA for DGX A100/H100). */
#define ST_NVLINK_EFFICIENCY 0.78
#define ST_NIC_EFFICIENCY 0.9
/* NVLink SHARP (NCCL's NVLS all-reduce): each GPU moves (1 + 1/n) x S through its port (its shard
 * reduced in the switch, the result multicast back: the factor nccl issue #2140 uses) at 309 GB/s
 * on H100 where the ring moves 2(n-1)/n x S at ~370: 8 H100 reach algbw ~275 GB/s with NVLS (busBw
 * ~480) and ~370 busBw with the ring (sjeaugey in nccl-tests issue #212), 275 x (1 + 1/8) = 309;
 * 5, 6, 7 GPUs reach 258, 265, 270 GB/s (nccl issue #1455: 309 / 1.2, / 1.17, / 1.14), and with 2-4
 * GPUs NVLS gives the ring's busBw, as 309 / 1.25 = 370 / 1.5 says at n = 4. So NVLS runs at this
 * fraction of the rate the ring gets (ST_NVLINK_EFFICIENCY of the port), keeping the measured
 * 1.30x over the ring at 8 GPUs. B300's 8 GPUs: algbw 483 with NVLS, busBw 695 without (nccl issue
 * #2140): 543 / 695 = 0.78, close to H100's 0.835. */
#define ST_NVLS_RATE_OF_RING (309.0 / 370.0)
/* NVLS's fixed latency, whatever the GPU count: NCCL's tuning model gives it 25 us over NVLink
 * (src/graph/tuning.cc, hwLat[NVLINK][NVLS][Simple], NCCL 2.19-2.2x) where a ring step costs 3.4
 * us, so NCCL keeps the ring for small messages. */
#define ST_NVLS_LATENCY_S 25e-6
/* Host<->device copies over PCIe, as a fraction of the link rate: the protocol's 128b/130b
 * encoding and packet headers (PCIe 4.0/5.0, 256-byte maximum payload: 256 of ~280 bytes on the
 * wire) leave about 90% for data, and a DMA copy's request turnaround takes a little more. A
 * calibration profile's "copies" table replaces it (cost/comm.c, st__copy_s). */
#define ST_PCIE_EFFICIENCY 0.8
/* SMs that NCCL occupies while a collective overlaps compute: one CUDA block per channel (NCCL
 * docs, NCCL_MIN/MAX_NCHANNELS), and NCCL's log (NCCL_DEBUG=INFO) shows 16 channels for rings over
 * the 8 NICs of a DGX A100/H100. Compute that shares the GPU with them runs on the rest. */
#define ST_NCCL_SMS 16
/* SMs DeepSeek-V3's all-to-all kernels hold while DualPipe overlaps them with computation: "only 20
 * SMs are sufficient to fully utilize the bandwidths of IB and NVLink" (DeepSeek-V3 technical report,
 * arXiv 2412.19437, Sec. 3.2.2) */
#define ST_DUALPIPE_COMM_SMS 20
/* Transformer Engine's userbuffers (tp_overlap), its defaults in initialize_ub's
 * get_default_config (transformer_engine/pytorch/module/base.py): the ring-exchange overlaps
 * (qkv_fprop, fc1_fprop, proj_dgrad, fc2_dgrad) move data with the copy engines and take num_sm 1
 * SM, in num_splits = tp pieces, with set_sm_margin off; the pipelined ones (proj_fprop, fc2_fprop)
 * take num_sm 16 SMs in num_splits 4 pieces and the bulk ones (qkv_wgrad, fc1_wgrad) 16 SMs, both
 * with set_sm_margin on: the GEMM runs on the other SMs for all of its time. */
#define ST_UB_RING_SMS 1
#define ST_UB_SMS 16
#define ST_UB_PIPELINE_SPLITS 4
/* CPU Adam (DeepSpeed's vectorised implementation) updates about 1e9 parameters per second per
 * GPU's share of a dual-socket host (Ren et al., ZeRO-Offload, 2021, Sec. 5.1, order of
 * magnitude); a calibration profile should replace it. */
#define ST_CPU_ADAM_PARAMS_PER_S 1e9
/* Adam's HBM traffic per parameter: read fp32 master, m, v (12) and the gradient, write master,
 * m, v (12) and the 16-bit weight (2). */
#define ST_ADAM_BYTES_PER_PARAM 26.0

/* What one kind of block (or the head, or the tail) costs one rank for one micro-batch. */
typedef struct st__pass {
    double fwd_s, bwd_s;    /* compute */
    double sel_fwd_s;       /* forward time of the ops that selective recompute redoes */
    double op_fwd_s;        /* ... that recompute=op redoes (st_cost_op_recompute) */
    double op_comm_s[ST_GRP_COUNT]; /* and the forward collectives it runs again */
    double fwd_comm_s[ST_GRP_COUNT], bwd_comm_s[ST_GRP_COUNT];
    double saved_bytes;     /* activations stored with recompute = none */
    double sel_bytes;       /* of which selective recompute drops */
    double input_bytes;     /* the block input, what full recompute keeps */
    double op_bytes;        /* the outputs recompute=op saves (besides the input) */
    double op_comm_bytes;   /* of op_bytes, those recompute=none does not keep (ep all-to-alls' outputs) */
    double wgrad_bytes;     /* the saved inputs of its linear layers (GEMMs with weights): what a weight-gradient
                               half needs (full recompute keeps them from the input half to it; memory.c) */
    double op_wgrad_bytes;  /* of wgrad_bytes, the inputs recompute=op does not save (the norms' outputs before
                               qkv and fc1, the activation's before fc2: not the SDPA output before proj) */
    double dy_bytes;        /* their output gradients (st_op.dy_bytes), which a weight half reads too */
    double params;          /* dense parameters on this rank */
    double expert_params;   /* expert parameters on this rank */
    double quant_params;    /* of both, those of the linear layers fp8/mxfp8/nvfp4 quantise (st_op.quant) */
    double work_bytes;      /* the largest st_op.work_bytes: held while that operator runs */
    int kernels;
} st__pass;

typedef struct st__shard_cost {
    int tp, cp, ep, sp, tp_overlap;
    st_cp_comm cp_comm;
    int64_t mbs, seq;
    st_dtype dtype;
    int grad_bytes;
    st_attention attention;
    st_kernels kernels;
    int nk;                      /* kinds the model has (st_model_kinds): kind[nk..] stay zero, and every */
    st__pass kind[ST_MAX_KINDS]; /* stage has 0 blocks of them, so the walks over kinds stop at nk */
    st__pass head, tail;
    struct st__shard_cost *next; /* the context's entries in the order they were allocated (st_cost_ctx_free) */
} st__shard_cost;

#define ST_COST_CACHE 4096

/* Pipeline stages that cost the same: equal block counts, same end (embedding / output layer).
 * first = the lowest stage index of the class (the one holding the most micro-batches). */
typedef struct st__stage_class {
    int64_t n[ST_MAX_KINDS]; /* blocks of each kind (st_model_kinds) on the stage, over all its chunks */
    int head, tail;
    int first, count;
} st__stage_class;

typedef struct st__layout {
    int pp, vp, n;
    int v;                /* the chunks' placement: 1 zbv's V, 2 dualpipe's two copies, 0 round robin */
    st__stage_class *cls; /* n classes */
    int *of;              /* pp entries: each stage's class (ZB-H1 plays its stages out in order) */
    int listed;           /* in the context's used[] (st_cost_ctx_free) */
} st__layout;

#define ST_LAYOUT_CACHE 1024

struct st_cost_ctx {
    const st_model *m;
    const st_cluster *c;
    const st_profile *prof;
    /* the shard costs by slot, each allocated when first filled (NULL: empty), so that a context
     * costs what it uses: a command prices a few shardings, validate makes a context per row, and
     * zeroing a table of ST_COST_CACHE entries (9 MB) was most of a small estimate's time; spare
     * stands in for an entry that cannot be allocated */
    st__shard_cost *cache[ST_COST_CACHE];
    st__shard_cost *entries; /* those allocated, chained by next: free walks these, not the table */
    st__shard_cost spare;
    st__layout layouts[ST_LAYOUT_CACHE]; /* even splits by (pp, vp, v) */
    int16_t used[ST_LAYOUT_CACHE];       /* the slots of layouts ever built, nused of them */
    int nused;
    st__layout scratch;                  /* explicit stage_layers */
    int64_t flops_seq;                   /* model FLOPs per sequence, for this sequence length */
    double flops_per_seq;
    /* blocks of kind k among the first l: kind_prefix[l * ST_MAX_KINDS + k] (the search counts a
     * stage's blocks for every plan it prices; NULL: st_model_count_kinds walks them) */
    int32_t *kind_prefix;
    double t_scratch[ST_MAX_STAGES];     /* per stage class: time per micro-batch */
    int n_scratch[ST_MAX_STAGES];        /* and how many stages it has */
    /* clusters of node groups (issue 19): a context per view of the groups g0..g1 that a set of ranks
     * spans (st_cluster_view), made when first asked for (st_cost_view), at views[g0 * ST_MAX_GROUPS + g1] */
    struct st__view *views[ST_MAX_GROUPS * ST_MAX_GROUPS];
};


/* Shard costs for plan p (cached). Never NULL. Borrowed, and good only until the next call on ctx:
 * when the eight slots p's sharding may take all hold others, the entry is priced into one of them
 * (ctx->cache[hash % ST_COST_CACHE]), and when it cannot be allocated, into ctx->spare; either way
 * the next call for another sharding may price over it. So a caller takes the pointer, reads it and
 * lets it go before anything that may call again on ctx: every caller in cost/ does (the estimate's
 * stage loops hold it through price_stage, which never calls it), and tests/test_cost.c's
 * test_shard_cache_crowded checks a crowded table against fresh contexts. */
const st__shard_cost *st__cost_shard(st_cost_ctx *ctx, const st_plan *p);
/* Blocks of each kind in layers [first, first + n). */
void st__cost_count_blocks(const st_cost_ctx *ctx, int64_t first, int64_t n, int64_t count[ST_MAX_KINDS]);
/* Activations a block keeps for backward under a recompute mode (cost/memory.c). */
double st__block_act(const st__pass *ps, st_recompute rc);
/* What a block's recompute restores while its backward runs (full: the whole block; op: what the
 * policy did not save; else 0), on top of what st__block_act keeps (cost/memory.c). */
double st__block_working(const st__pass *ps, st_recompute rc);
/* What a block's weight-gradient half needs beyond st__block_act, kept from its input half: its linear layers'
 * output gradients (st__pass.dy_bytes) and the inputs the input half's recompute restored: under full
 * recompute, which keeps only the block input, all of them (st__pass.wgrad_bytes); under recompute=op those
 * its policy does not save (st__pass.op_wgrad_bytes); none and selective keep them anyway (cost/memory.c). */
double st__block_wgrad(const st__pass *ps, st_recompute rc);
/* Of st__block_wgrad, what is in the block's working set (st__block_working) while its recompute runs: the
 * restored linear inputs above; else 0. */
double st__block_wgrad_working(const st__pass *ps, st_recompute rc);
/* One step of a cp=p2p fused attention (st_op.ring_steps; compute.c): the first (first = 1: the
 * causal one on the rank's own blocks) or any other (unmasked, half-length blocks), each 1/steps of
 * the work, one kernel. */
void st__ring_step(const st_op *op, int first, st_op *out);
/* Parameters of a stage of class cls that fp8, mxfp8 or nvfp4 training quantises (0 for the other dtypes). */
double st__quant_params(const st__shard_cost *sc, const st__stage_class *cls);
/* Pipeline send/recv time of one activation between stages (cost/estimate.c). */
double st__p2p_time(st_cost_ctx *ctx, const st_plan *p);
/* Stage classes of plan p (cached for even splits). Never NULL unless out of memory. */
const st__layout *st__cost_layout(st_cost_ctx *ctx, const st_plan *p);
/* Fills one stage's class by scanning the chunks. */
void st__cost_stage_class(st_cost_ctx *ctx, const st_plan *p, int stage, st__stage_class *out);
/* Memory of a stage of class `cls` at stage index `stage`, from the plan's shard costs sc
 * (st__cost_shard(ctx, p), which the caller has in hand); also returns the parameters it holds
 * (dense, expert) before ZeRO sharding. */
void st__cost_stage_memory(st_cost_ctx *ctx, const st_plan *p, const st__shard_cost *sc, const st__stage_class *cls,
                           int stage, st_stage_memory *out, double *dense_params, double *expert_params);

/* The optimizer step with a fraction f (0 < f < 1) of the optimizer states on the host
 * (cost/offload.c): the gradient copy down and the weight copy up of the host's share, and the
 * rest of the step between them (GPU part and CPU part side by side). gpu_step_s: the whole step on
 * the GPU. */
typedef struct st__opt_step {
    double grads_s, optimizer_s, weights_s;
} st__opt_step;
void st__offload_optimizer_step(const st_cluster *c, const st_profile *prof, double f, double opt_params,
                                double grad_bytes, double weight_bytes, double gpu_step_s, st__opt_step *out);

/* Granular weight and activation offload (cost/offload.c) for one micro-batch of a stage or chunk that
 * holds `params` parameters (before any sharding: zero 0-2) in `blocks` blocks and saves `act_bytes`
 * of activations (st_offload_copies). */
void st__offload_granular(const st_cluster *c, const st_profile *prof, const st_plan *p, double params,
                          double act_bytes, double blocks, st_offload_copies *out);

/* Seconds for `pieces` equal host<->device copies of `bytes` in all: at the profile's copy table's
 * rate for bytes / pieces, else at the cluster's PCIe rate x ST_PCIE_EFFICIENCY (cost/comm.c). */
double st__copy_s(const st_cluster *c, const st_profile *prof, st_copy_dir d, double bytes, double pieces);
/* The fabric tier (st_group.tier) that groups spanning `span` consecutive ranks, in aligned blocks
 * over the whole cluster, cross (cost/comm.c, "Tiers"). */
int st__group_tier(const st_cluster *c, int64_t span);
/* offload=params: seconds to bring the GPU's ZeRO-3 shard of `dense` and `expert` parameters
 * (dense over the dp x cp group, experts over the expert-data-parallel group) from the host over
 * PCIe as 16-bit weights, in `pieces` copies (st__copy_s); *bytes (optional) what crosses in all
 * (cost/comm.c). The estimate and st_cost_offload_chunk both price the weight streaming with it. */
double st__offload_h2d_s(const st_cluster *c, const st_profile *prof, const st_plan *p, double dense, double expert,
                         double pieces, double *bytes);
/* Parameters of the copy of the tied embedding that the last stage keeps for its output layer
 * (tied embeddings and pp > 1; else 0) per tp rank: held like its own weights (cost/memory.c). */
double st__tied_copy_params(const st_model *m, const st_plan *p);

#endif
