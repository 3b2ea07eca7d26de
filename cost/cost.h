/* cost.h: the cost layer (cost/): compute, collectives, memory, the estimate, resharding, and the
 * calibration profile's tables and lookups. Every price in strata comes from here (DESIGN.md, "one
 * cost path"). Uses src/core/ only; reading and writing profiles as files is src/io/'s. */
#ifndef STRATA_COST_H
#define STRATA_COST_H

#include "src/core/core.h"

/* ------------------------------------------------------- calibration */

/* A calibration profile: measured throughput tables (cost/profile.c, format in README). */
typedef struct st_profile st_profile;
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
/* The file's "date" and "source" labels (empty when it has none), as `strata profiles` lists them. */
const char *st_profile_date(const st_profile *p);
const char *st_profile_source(const st_profile *p);
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

/* ------------------------------------------------------------ cost */

/* Where one group's ranks sit: n ranks, k of them per node, over n/k nodes; `node_share` = how
 * many GPUs of a node use the node's NICs at the same time for this kind of collective. */
typedef struct st_group {
    int64_t n, per_node, nodes;
    int64_t node_share;
    /* the highest fabric tier its host nodes span (cost/comm.c): ST_TIER_NODE inside one leaf (or a
     * cluster without tiers), ST_TIER_LEAF across leaves of one pod, ST_TIER_POD across pods */
    int tier;
} st_group;
enum { ST_TIER_NODE, ST_TIER_LEAF, ST_TIER_POD };
/* The oversubscription traffic of a group at `tier` pays: the cluster's `oversubscription` above
 * the nodes, and the worst of the tiers' uplinks it crosses. */
double st_cost_tier_oversubscription(const st_cluster *c, int tier);

typedef struct st_cost_ctx st_cost_ctx;

/* new; free with st_cost_ctx_free. model, cluster and profile are borrowed and must outlive it. */
st_cost_ctx *st_cost_ctx_new(const st_model *m, const st_cluster *c, const st_profile *prof);
void st_cost_ctx_free(st_cost_ctx *ctx);
/* Clusters of node groups (issue 19): the context that prices ranks [first, first + n) on their own
 * GPUs and links, the one question cost/ asks about where a rank sits: ctx itself on a uniform
 * cluster, else a context on their view (st_cluster_view), made on first use and owned by ctx
 * (borrowed; valid while ctx lives). NULL when out of memory. */
st_cost_ctx *st_cost_view(st_cost_ctx *ctx, int64_t first, int64_t n);
/* The cluster a context prices for (borrowed). */
const st_cluster *st_cost_cluster(const st_cost_ctx *ctx);

/* The model a context prices (borrowed). */
const st_model *st_cost_model(const st_cost_ctx *ctx);

/* Compute time of one operator pass on one GPU (cost/compute.c). */
double st_cost_op_time(const st_cluster *c, const st_profile *prof, const st_op *op, st_dtype dt, int backward);
/* Host-bound stretch of a list of n operators (a block, the head or the tail) whose forward
 * (backward) GPU times add up to gpu_s: eager PyTorch's host takes kernels x st_cost_host_s_per_kernel
 * to issue them and runs ahead of the GPU, so the list takes max(gpu_s, host time); returns that
 * over gpu_s (>= 1; 1 when gpu_s is 0). The estimate and the per-operator lowering scale each
 * operator's time by it, so both price the list alike (cost/compute.c). */
double st_cost_host_stretch(const st_cluster *c, const st_op *ops, int n, double gpu_s, int backward);
/* The per-kernel prices compute uses on cluster c: the GPU's idle time per kernel launched
 * (framework.launch_overhead_us, else ST_KERNEL_OVERHEAD_S), the host's time to issue one
 * (framework.host_us_per_kernel, else ST_HOST_S_PER_KERNEL), both in seconds, and the small-GEMM
 * half dimension (gpu.gemm_half_dim, else ST_GEMM_HALF_DIM) (cost/compute.c). */
double st_cost_launch_s(const st_cluster *c);
double st_cost_host_s_per_kernel(const st_cluster *c);
double st_cost_gemm_half_dim(const st_gpu *g);
/* Achieved FLOP/s of fused attention kernel `kernel` (attention=flash: FlashAttention-3 on Hopper,
 * FlashAttention-2 elsewhere; fa2; cudnn) on GPU g in dtype dt (fp8 runs attention in bf16), at `seq`
 * tokens per sequence, head dimension `head_dim`, causal or not, forward or backward, from the
 * published benchmark tables of cost/compute.c; FLOPs counted as those benchmarks count them
 * (causal: half of 4 b s^2 h d). */
double st_cost_attention_flops_per_s(const st_gpu *g, st_attention kernel, st_dtype dt, double seq, double head_dim,
                                     int causal, int backward);
/* nccl-tests' bus-bandwidth factor for collective `coll` over n ranks (doc/PERFORMANCE.md): busBw
 * = algBw x factor, algBw being the collective's size S over its time: all-reduce 2(n-1)/n,
 * all-gather, reduce-scatter and all-to-all (n-1)/n, broadcast and send/recv 1 (ST_COLL_NONE 0).
 * It is the share of S each rank moves over its link in a ring: st_cost_collective prices a
 * collective with it from a bus bandwidth, and profiler/ turns a measured time into a bus bandwidth
 * with it (cost/comm.c). */
double st_cost_bus_factor(st_coll coll, double n);
/* One operator's prices on one rank for one micro-batch, as the estimate sums them (the lowering's
 * per-operator instructions take theirs from here too): its forward and backward compute
 * (st_cost_op_time) and the collectives its sharding implies at it (st_op.fwd_coll and bwd_coll in
 * the plan's group of kind coll_group, st_cost_collective; 0 where it has none). */
typedef struct st_op_cost {
    double fwd_s, bwd_s;
    double fwd_coll_s, bwd_coll_s;
} st_op_cost;
void st_cost_op(const st_cost_ctx *ctx, const st_plan *p, const st_op *op, st_op_cost *out);
/* The operators of one list as st_ops_layer, st_ops_head or st_ops_tail give them, priced in
 * order: out[i] is st_cost_op of ops[i], except that with tp_overlap the tp collectives that
 * Transformer Engine's userbuffers overlap with a GEMM of the block (cost/estimate.c, "tp_overlap")
 * are priced at what they leave exposed, the GEMM's slowdown beside them included. The estimate and
 * the lowering's operators both take their prices from here. */
void st_cost_ops(const st_cost_ctx *ctx, const st_plan *p, const st_op *ops, int n, st_op_cost *out);
/* cp=p2p (Transformer Engine's ring; src/core/opgraph.c): what n ring steps leave exposed of their
 * transfers, each of x_s (one K/V block) or x2_s (K/V with dK/dV, backward's middle steps) beside
 * an attention step of first_s (the causal one) or other_s, plus the compute NCCL's SMs slow while
 * the hidden part runs (st_cost_overlap_tax). Forward: x_s beside steps 0 .. n-2; backward: x_s,
 * then x2_s n-2 times, then x_s beside the causal step. st_cost_ops prices the exchange so. */
double st_cost_cp_ring_exposed(const st_cluster *c, double x_s, double x2_s, double first_s, double other_s,
                               double n, int backward);
/* Collective time for `bytes` per rank (cost/comm.c). */
double st_cost_collective(const st_cluster *c, const st_profile *prof, st_coll coll, const st_group *g,
                          double bytes);
/* The expert-parallel all-to-all under group-limited routing: `bytes` per rank holding `copies`
 * routed copies a token, each token sent over the fabric once to each of the `nodes_per_token`
 * nodes it reaches and forwarded over NVLink inside them (DeepSeek-V3, Sec. 3.2.2; cost/comm.c). */
double st_cost_alltoall_routed(const st_cluster *c, const st_profile *prof, const st_group *g, double bytes,
                               double copies, double nodes_per_token);
/* The scale-up domain's rate (bytes/s per direction, NCCL's efficiency applied) that a GPU gets in a
 * collective over `peers` ranks of its domain: the port rate on a switch; on an xGMI mesh the
 * peers - 1 links of its domain - 1 that the collective uses (cost/comm.c). */
double st_cost_domain_bytes_per_s(const st_cluster *c, int64_t peers);
/* Placement of a plan's group of kind k (Megatron order tp-cp-dp-pp; ep inside dp*cp). */
void st_cost_group(const st_cluster *c, const st_plan *p, st_group_kind k, st_group *g);
/* The links collectives are priced on, per direction, at the rates cost/comm.c gives them (for the
 * simulator's shared links): a GPU's NVLink port, a NIC port (nic_ports per node, GPU i on port
 * i * nic_ports / gpus_per_node), a node's link to the fabric (its NICs / oversubscription), the
 * share of its node's NICs one GPU gets across nodes when all of the node's GPUs communicate, and
 * the uplinks of the fabric's tiers. */
typedef struct st_net {
    int64_t gpus_per_node, nic_ports;
    int64_t gpus_per_port; /* GPUs whose traffic shares one domain port: 1, or a GPU's MIG slices */
    double nvlink_bytes_per_s, nic_port_bytes_per_s, uplink_bytes_per_s;
    /* the GPU's share across nodes for a group at each tier (ST_TIER_*; ST_TIER_NODE: the share
     * without tiers), and the tiers' uplinks: a leaf's (its nodes' NICs / the leaf's
     * oversubscription) and a pod's; 0 nodes = no such tier */
    double tier_share_bytes_per_s[ST_TIER_POD + 1];
    int64_t leaf_nodes, pod_nodes;
    double leaf_uplink_bytes_per_s, pod_uplink_bytes_per_s;
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
    /* at the stage's peak */
    double weights_bytes, grads_bytes, optimizer_bytes, activations_bytes, other_bytes;
    double total_bytes;
    /* for the lowering: what a rank holds besides activations from the step's start (base_bytes),
     * and what its backward adds to that when it begins (backward_extra_bytes: FSDP2's gradients
     * and second gathered block, which its forward does not hold; 0 elsewhere) */
    double base_bytes, backward_extra_bytes;
    /* granular offload (cost/offload.c): one micro-batch's saved activations on the stage, and what the
     * GPU keeps in host memory (the weights' and activations' host shares; 0 without offload_params and
     * offload_activations) */
    double microbatch_act_bytes, host_bytes;
} st_stage_memory;

/* The memory rules that the estimate (st_cost_stage_memory) and the operator-level ILP planner
 * (search/autoshard.c) share, so that both price memory the one way (cost/memory.c). */

/* fp8 training: Transformer Engine keeps, beside each fp8 linear layer's 16-bit weight, its fp8
 * copy and that copy's transpose (the dgrad GEMM's operand on Hopper, where cuBLASLt runs fp8 only
 * as TN): 1 + 1 bytes per parameter, made on the first micro-batch and cached for the rest
 * (transformer_engine/pytorch/module/linear.py, get_weight_workspace with is_first_microbatch;
 * Megatron-Core passes is_first_microbatch). Making them reads the 16-bit weight: 2 + 2 bytes of
 * HBM traffic per parameter per iteration. mxfp8 and nvfp4 keep a rowwise and a columnwise copy
 * the same way, each with its block scales: 2 * st_dtype_bytes(dt) (TE docs, "MXFP8: Handling
 * transposes"; nvfp4's 16x16 weight blocks make the two numerically equal, not one tensor), and
 * nvfp4 reads the weight twice (its amax first: st_dtype_cast_passes). fp8 on Blackwell (sm100) keeps
 * no transpose: its cuBLASLt runs fp8 GEMMs in every layout, so TE's Float8Quantizer makes the
 * columnwise copy only where nvte_is_non_tn_fp8_gemm_supported() is false (transformer_engine/pytorch/
 * csrc/quantizer.cpp, create_transpose = columnwise_usage && !nvte_is_non_tn_fp8_gemm_supported()):
 * 1 byte. strata tells sm100 by its NVFP4 rate (only Blackwell has one; GeForce Blackwell, sm120,
 * would have one without the layouts, and no preset is one). Bytes per parameter of the copies of a
 * quantised linear layer's weight under dt on GPU g (0 for the other dtypes). */
double st_cost_weight_copy_bytes(st_dtype dt, const st_gpu *g);
/* Bytes of one stored weight when training in dtype dt: its own size, except that fp8, mxfp8 and
 * nvfp4 training keep 16-bit (bf16) weights and cast them per GEMM (NVIDIA Transformer Engine).
 * What the weights take in memory and what gathering or copying them moves. */
double st_cost_weight_bytes(st_dtype dt);
/* Bytes the data-parallel weight all-gather after the optimizer step (zero 1-2) moves for `params`
 * weights of which `quant_params` are quantised linear layers' (st__quant_params): st_cost_weight_bytes
 * each, except that with fp8_param_gather and dtype fp8 the quantised ones move their 1-byte fp8 data
 * (Megatron --fp8-param-gather); mxfp8's still move 16 bits (through the gradient buffer). */
double st_cost_gather_bytes(const st_plan *p, double params, double quant_params);
/* The share of block operator o's forward that recompute mode rc runs again (0..1): selective the
 * ops st_op.selective marks, full all, op st_op.op_recompute (opgraph.c). *coll (optional): whether
 * its forward collective runs again too: under full, and under op unless the policy saved its
 * output (torchtitan's _save_list holds the functional reduce-scatter). One rule for the estimate
 * (cost/estimate.c) and the per-operator lowering (src/lower/lower_ops.c). */
double st_cost_op_recompute(const st_op *o, st_recompute rc, int *coll);
/* Model state one GPU holds per parameter, training with Adam (DESIGN.md "Definitions";
 * Rajbhandari et al. 2020, ZeRO, Sec. 3.1): weights (st_cost_weight_bytes), the gradient
 * accumulator (grad_bytes: 4 = fp32 as Megatron-LM's main_grad, or 2), and the optimizer states:
 * fp32 master weights, m and v (12) with 16-bit weights, m and v alone (8) with fp32 (or tf32)
 * weights, which are their own master copy. ZeRO stage `zero` shards them over `shard` ranks (the
 * gradient-reduction group): 1 the optimizer states, 2 the gradients too, 3 the weights too.
 * Offload moves the optimizer states (ST_OFF_OPTIMIZER), and the weights too (ST_OFF_PARAMS), to
 * host memory: 0 here. total = weights + grads + optimizer. */
typedef struct st_state_bytes {
    double weights, grads, optimizer, total;
} st_state_bytes;
void st_cost_state_bytes(st_dtype dt, int grad_bytes, int zero, st_offload off, double shard, st_state_bytes *out);
/* Micro-batches whose activations pipeline stage `stage` (0-based) of pp holds at its peak under
 * schedule s with m micro-batches per iteration and vp chunks per stage (Megatron-LM's
 * schedules.py): GPipe all m; 1F1B and ZB-H1 warm up pp - stage - 1, so min(pp - stage, m); ZB-V pp on
 * every stage (its two chunks' 2 pp, cost/memory.c); DualPipe (pp + 1) / 2 of its two stages (pp + 1 of one);
 * interleaved (pp - stage - 1) * 2 + (vp - 1) * pp + 1 chunks (at most m * vp), over vp, which for
 * stage 0 is Korthikanti et al. 2022's pp * (1 + (pp - 1) / (pp * vp)). In units of the stage's
 * activations of one micro-batch (all its chunks). */
double st_cost_inflight(st_schedule s, int pp, int vp, int stage, int64_t m);

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
/* 0 when every number of e is finite, else ST_EINVAL naming the first that is not (its JSON key)
 * (cost/check.c): what estimate, plan, sim and compare call before they print or rank a result. */
int st_estimate_check(const st_estimate *e, st_error *err);
/* One pipeline message of stage d of replica r (its send or receive, st_chunk_cost.p2p_s), on the links
 * to its neighbour stages: the mean of its link to stage d - 1 and to d + 1 (one of them at the ends),
 * each on the view of both ends' GPUs (st_cost_view: the fabric between node groups where they differ);
 * on a uniform cluster the pipeline's one p2p time. 0 without a pipeline. */
double st_cost_stage_p2p(st_cost_ctx *ctx, const st_plan *p, int r, int d);
/* The bytes of that message: st_cost_p2p_bytes, or with stage_tp the mean of stage d's exchanges with
 * its neighbours (each the activation resharded between the two stages' tp groups: 1/min of the two
 * tp of it with sp, the whole without; cost/estimate.c, exchange_time). */
double st_cost_stage_p2p_bytes(const st_cost_ctx *ctx, const st_plan *p, int d);
/* The data-parallel replica whose pipeline sets the step (issue 19: node groups of different GPUs,
 * uneven dp_batches), as st_cost_estimate finds it; 0 on a uniform cluster with even micro-batches.
 * The lowering lowers it as each stage's representative. */
int st_cost_slowest_replica(st_cost_ctx *ctx, const st_plan *p);
/* A plan that gives stage_layers (issue 19): ST_EINVAL naming "stage_layers" when a stage's layers do
 * not fit the memory of its own GPUs (each replica's, st_cost_view), saying which stage; else 0. */
int st_cost_check_stage_layers(st_cost_ctx *ctx, const st_plan *p, st_error *err);
/* Memory of pipeline stage `stage` (0-based). */
void st_cost_stage_memory(st_cost_ctx *ctx, const st_plan *p, int stage, st_stage_memory *out);
/* Pipeline time of mb micro-batches over stages of n kinds: kind k has count[k] stages taking
 * t_s[k] per micro-batch (all their chunks). m * max + (sum - max) / vp (Narayanan et al.
 * SC'21; GPipe, 1F1B, interleaved; ZB-H1 is st_cost_zb_pipeline_s); ZB-V (count summing to pp stages of
 * two chunks each)
 * max((pp - 1) b, (2 pp - 3) f - (pp - 2) b, (2 pp - 2) f - pp b) with f = fwd_s / 2 and b a
 * quarter of the slowest stage's time less fwd_s (cost/estimate.c); DualPipe, t_s per pair of micro-batches
 * (one each way), mb / 2 pairs and (pp / 2 - 1) (F&B + B - 3 W) with F&B = max / 2, B = (max - fwd_s) / 2,
 * W = bwd_s / 4 (DeepSeek-V3 report, Table 2). Writes the bubble to *bubble_s. */
double st_cost_pipeline_s(const double *t_s, const int *count, int n, int vp, int64_t mb, st_schedule sched,
                          double fwd_s, double bwd_s, double *bubble_s);
/* ZB-H1's time (Qi et al. 2023), mb micro-batches on pp stages in order, stage d taking f_s[d] per forward,
 * b_s[d] per input-gradient half and w_s[d] per weight-gradient half: src/lower's order played out
 * (cost/estimate.c). Equal stages, mb >= pp: mb (f + b + w) + (pp - 1) max(f, b, f + b - w).
 * Writes the time beyond mb times the slowest stage's f + b + w to *bubble_s. */
double st_cost_zb_pipeline_s(const double *f_s, const double *b_s, const double *w_s, int pp, int64_t mb,
                             double *bubble_s);
/* What one micro-batch costs in one pipeline chunk (the simulator's instruction durations). */
typedef struct st_chunk_cost {
    double fwd_s, bwd_s, recompute_s;                  /* compute */
    double comm_fwd_s, comm_bwd_s, comm_recompute_s;   /* its inline tp/cp/ep collectives */
    /* the same per group kind (ST_GRP_TP, ST_GRP_CP, ST_GRP_EP; the others 0) */
    double comm_fwd_g[ST_GRP_COUNT], comm_bwd_g[ST_GRP_COUNT], comm_recompute_g[ST_GRP_COUNT];
    double act_bytes;                                  /* activations kept until its backward */
    double working_bytes;                              /* full recompute: one block's activations, live
                                                          while that backward recomputes them */
    /* what a backward split in halves keeps from its input half to its weight half (st__block_wgrad): the
     * chunk's blocks' linear-layer output gradients and, under full recompute, their inputs; and of those the
     * inputs of the block that sets working_bytes (in its working set while its input half runs; full only) */
    double wgrad_bytes, wgrad_top_bytes;
    double work_bytes;                                 /* the largest block's st_op.work_bytes (cp's
                                                          K/V buffers), live while its forward and
                                                          again while its backward runs */
    double tail_work_bytes;                            /* the last chunk's: the output layer's (the
                                                          eager loss's logits and their fp32 copy),
                                                          live while its forward runs */
    double p2p_s;                                      /* sending its output (or input gradient):
                                                          one message, st_cost_p2p_bytes */
    double params;                                     /* parameters it holds (its gradients' share) */
    double expert_params;                              /* of which expert weights (ZeRO shards them
                                                          over the expert-data-parallel group) */
} st_chunk_cost;
void st_cost_chunk(st_cost_ctx *ctx, const st_plan *p, int chunk, st_chunk_cost *out);
/* Granular offload's copies for one micro-batch (offload_params, offload_activations; cost/offload.c):
 * those of its forward (the weights' host share in, the activations' share out) and of its backward
 * (both in), their bytes, the first block's share of the weights (first_s, which nothing hides before
 * the iteration's first forward), the activations' host share (act_host_bytes) and how much of it is
 * on the GPU at a time, in transit block by block (act_window_bytes: two blocks' share; set by
 * st_cost_offload_granular_chunk, as memory.c counts it). All 0 without. */
typedef struct st_offload_copies {
    double fwd_s, bwd_s, fwd_bytes, bwd_bytes, first_s, act_host_bytes, act_window_bytes;
} st_offload_copies;
/* ... of pipeline chunk `chunk` on ctx's GPUs, as the estimate prices a stage's. */
void st_cost_offload_granular_chunk(st_cost_ctx *ctx, const st_plan *p, int chunk, st_offload_copies *out);
/* Each pipeline stage's compute for one micro-batch, for every recompute mode none..full at once:
 * t_s[rc][d] = the sum over stage d's chunks of st_cost_chunk's fwd_s + bwd_s + recompute_s with
 * p->recompute = rc (no collectives, no pipeline messages; the search's shape bounds). */
void st_cost_stage_compute(st_cost_ctx *ctx, const st_plan *p, double t_s[ST_REC_FULL + 1][ST_MAX_STAGES]);
/* Compute time added while a collective of `overlapped_s` runs beside it (NCCL's SMs). */
double st_cost_overlap_tax(const st_cluster *c, double overlapped_s);
/* The same for communication kernels that hold `comm_sms` SMs (st_cost_overlap_tax: NCCL's). */
double st_cost_overlap_tax_sms(const st_cluster *c, double overlapped_s, int comm_sms);
/* The parameters of pipeline stage `stage` that its quantised linear layers hold (fp8, mxfp8, nvfp4;
 * 0 for the other dtypes): what st_cost_gather_bytes moves in fp8 with fp8_param_gather. */
double st_cost_stage_quant_params(st_cost_ctx *ctx, const st_plan *p, int stage);
/* Full (not overlapped) data-parallel times of pipeline stage `stage` for zero 0-2: the gradient
 * reduction, the weight all-gather, and how many buckets Megatron-LM issues them in. */
void st_cost_dp_stage(st_cost_ctx *ctx, const st_plan *p, int stage, double *reduce_s, double *gather_s,
                      double *nbuckets);
/* overlap_param_gather (Megatron-LM's --overlap-param-gather): what the weight all-gather after the
 * optimizer step, gather_s in nbuckets buckets, leaves exposed when the next iteration's first
 * forward takes fwd_s: the first bucket's gather (optimizer.zero_grad dispatches it; nothing runs
 * beside it), then each next bucket's beside the previous bucket's layers (the forward pre-hooks
 * dispatch it), so gather_s / nb + (nb - 1) / nb x max(0, gather_s - fwd_s); *tax_s the time the
 * hidden part's SMs add to that forward (st_cost_overlap_tax). The estimate and the lowering price
 * the gather with it. */
double st_cost_param_gather_exposed(const st_cluster *c, double gather_s, double nbuckets, double fwd_s,
                                    double *tax_s);
/* The tied embedding's gradient all-reduce between the first and the last pipeline stage (each tp
 * rank its 1/tp of the padded vocabulary), after the data-parallel reduction; 0 without tied
 * embeddings or without a pipeline. *bytes: its message per rank. */
double st_cost_embedding_allreduce(st_cost_ctx *ctx, const st_plan *p, double *bytes);
/* DualPipe's mirror all-reduce: rank d sums the gradients of its `params` (both copies' stages) with
 * rank pp - 1 - d, which holds the same stages, before the data-parallel reduction; 0 under other
 * schedules. *bytes: its message per rank. */
double st_cost_dualpipe_mirror(st_cost_ctx *ctx, const st_plan *p, double params, double *bytes);
/* DualPipe's F&B overlap (DeepSeek-V3 report, Sec. 3.2.1): of hide_s of expert all-to-all and pipeline
 * messages beside work_s of compute, what still shows (returned); *tax_s: what the hidden part's
 * communication kernels (ST_DUALPIPE_COMM_SMS of the GPU's SMs) add to the compute. The estimate's
 * stage times and the lowering's pairs both price it here. */
double st_cost_dualpipe_overlap(const st_cluster *c, double work_s, double hide_s, double *tax_s);
/* Model FLOPs of one iteration (3 x forward, no recompute). */
double st_cost_model_flops(const st_model *m, int64_t gbs, int64_t seq);

/* ------------------------------------------------------------ building profiles (internal) */

/* One table of a calibration profile as `strata calibrate` and `strata profile` write it
 * (cost/profile.c's format, written and described there). */
typedef struct st__ptable {
    int kind; /* 0 compute (FLOPs -> FLOP/s), 1 memory-bound (bytes -> bytes/s), 2 collective (bytes -> bus bytes/s),
               * 3 host<->device copy (bytes -> bytes/s) */
    st_opclass cls;
    st_dtype dtype;
    st_coll coll;
    int intra, ranks;
    st_copy_dir dir; /* copies */
    int n, samples, exact; /* points; measurements behind them; points at a plan's own shapes */
    const double *x, *y;   /* SI */
} st__ptable;
typedef struct st__phead {
    const char *gpu, *source, *date, *driver, *cuda; /* driver, cuda: NULL or "" = unknown */
} st__phead;
/* The bounds st_profile_load applies (no rate beyond the hardware, no point implying a kernel of
 * over an hour, no table twice), on tables about to be written: 0, or ST_EINVAL saying which
 * measured table is not physical. st__profile_write checks first, so no command writes a profile
 * that --profile would refuse. */
int st__profile_check(const st__phead *h, const st__ptable *t, int n, st_error *err);
/* One line per table under the headings compute / memory / collectives / copies; an empty heading says
 * `none` ("none measured"); `per` names what samples count ("call", "measurement"). */
void st__profile_describe(const st__ptable *t, int n, const char *per, const char *none, FILE *f);
/* A profile from tables (points copied) under a header, as st_profile_load builds one from a file
 * (`file`: its path, for messages and st_profile_file; may be NULL): the tables must pass the
 * bounds above, errors naming `file` and the table's key ("compute[0].points"). *out new
 * (st_profile_free). */
int st__profile_new(const st__phead *h, const char *file, const st__ptable *t, int n, st_profile **out,
                    st_error *err);

/* A profile without tables that notes the collective lookups cost/ makes of it (each answered 0,
 * so the pricing is the default one): the (collective, scope, ranks, bytes) the estimator asks a
 * profile's collective tables for, exactly. New; st_profile_free. NULL when out of memory. */
typedef struct st__coll_lookup {
    st_coll coll;
    int intra, ranks;
    double bytes;
} st__coll_lookup;
st_profile *st__profile_recorder_new(void);
/* The distinct lookups so far, sorted by collective, scope (intra first), ranks, bytes; borrowed,
 * valid until the next lookup. *lost: some were not kept (out of memory). */
const st__coll_lookup *st__profile_recorded(const st_profile *p, int *n, int *lost);

#endif
