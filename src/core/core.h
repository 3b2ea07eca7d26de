/* core.h: the core layer of strata (src/core/), the descriptions every other layer speaks.
 *
 * The data model of DESIGN.md: a model description becomes an operator graph (one transformer
 * block as a list of operators, plus the embedding head and the logits/loss tail); a cluster is a
 * hierarchical topology (GPUs in NVLink domains, nodes joined by NICs); a plan is a sharding of
 * that graph (tp/sp/cp/ep inside operators, pp across layers, dp/ZeRO across replicas). Types and
 * their logic only: reading and writing them as JSON is src/io/'s, pricing them cost/'s.
 * This layer uses nothing of strata's but itself (README "Architecture").
 *
 * Conventions (STYLE.md): public symbols st_, macros ST_; sizes are int64_t, times and FLOPs
 * double; SI units inside the code, units in every name (_s, _bytes, _bytes_per_s, _flops).
 * Fallible functions return 0 or a negative ST_E* code and fill an st_error.
 */
#ifndef STRATA_CORE_H
#define STRATA_CORE_H

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

/* mxfp8 and nvfp4: Blackwell's block-scaled GEMM formats (src/core/names.c, st_dtype_bytes). fp8,
 * mxfp8 and nvfp4 are training recipes more than storage types: the linear layers' GEMMs run in
 * them, everything else in bf16 (st_dtype_quantised). */
typedef enum {
    ST_DT_FP32, ST_DT_TF32, ST_DT_FP16, ST_DT_BF16, ST_DT_FP8, ST_DT_MXFP8, ST_DT_NVFP4, ST_DT_COUNT
} st_dtype;
typedef enum { ST_ACT_GELU, ST_ACT_RELU, ST_ACT_SWIGLU } st_activation;
typedef enum { ST_NORM_LAYERNORM, ST_NORM_RMSNORM } st_norm;
typedef enum { ST_POS_LEARNED, ST_POS_ROPE, ST_POS_ALIBI } st_position;
/* Activation recompute: none; selective = Megatron-LM's core-attention recompute
 * (--recompute-activations); full = whole blocks from their input (--recompute-granularity full);
 * op = torchtitan's op-level selective AC (selective_ac_option = "op"): every block checkpointed,
 * the outputs of every other matmul and of the attention kernel saved, the rest recomputed. */
typedef enum { ST_REC_NONE, ST_REC_SELECTIVE, ST_REC_FULL, ST_REC_OP } st_recompute;
typedef enum { ST_OFF_NONE, ST_OFF_OPTIMIZER, ST_OFF_PARAMS } st_offload;
/* Pipeline schedules: zb is ZB-H1 (Qi et al. 2023); zbv the V-shaped zero-bubble schedule (Qi et al.
 * 2024, arXiv 2401.10241 Sec. 6), two chunks per rank placed in a V (st_plan_chunk_stage); dualpipe
 * DeepSeek-V3's bidirectional schedule (arXiv 2412.19437 Sec. 3.2.1): two copies of the model, rank d
 * holding stage d of one and stage pp - 1 - d of the other (st_plan_stage_holds), half the
 * micro-batches entering at each end. */
typedef enum {
    ST_SCHED_GPIPE,
    ST_SCHED_1F1B,
    ST_SCHED_INTERLEAVED,
    ST_SCHED_ZB,
    ST_SCHED_ZBV,
    ST_SCHED_DUALPIPE
} st_schedule;
/* How attention runs: one fused FlashAttention-style kernel (what Megatron-Core/Transformer Engine,
 * NeMo, torchtitan and DeepSpeed run today) or Megatron-LM's unfused core attention of 2021-22
 * (scores, softmax, dropout and context as separate kernels, the s x s scores kept for backward).
 * The fused kinds differ only in the kernel's speed (cost/compute.c): flash, the fastest
 * FlashAttention for the GPU (FlashAttention-3 on Hopper, FlashAttention-2 elsewhere); fa2,
 * FlashAttention-2 on every GPU (flash-attn 2.x, PyTorch SDPA's flash backend: what torch runs on
 * Hopper unless cuDNN is asked for); cudnn, cuDNN's fused attention (Transformer Engine's
 * FusedAttention, which TE prefers on Hopper; Megatron-LM --attention-backend fused; SDPA's cuDNN
 * backend). Memory and FLOPs are the same for all three. */
typedef enum { ST_ATTN_FLASH, ST_ATTN_UNFUSED, ST_ATTN_FA2, ST_ATTN_CUDNN, ST_ATTN_COUNT } st_attention;
#define ST_ATTN_DEFAULT ST_ATTN_FLASH /* what a plan that does not say gets */
/* How the element-wise work around the GEMMs runs (src/core/opgraph.c): fused, as Megatron-LM and
 * Transformer Engine (fused RMSNorm/LayerNorm, RoPE, SwiGLU, bias-dropout-add, vocab-parallel
 * cross-entropy) or torch.compile run it, one kernel per operator; eager, as PyTorch runs
 * torchtitan's Llama without torch.compile: RMSNorm, rotary embedding and SwiGLU as chains of
 * element-wise kernels with fp32 intermediates, grouped-query K/V repeated to every head before
 * SDPA, the loss on an fp32 copy of the logits; compile, as torchtitan runs torch.compile (each
 * transformer block compiled, so fused, its repeat_kv copies kept; the final norm and the loss
 * outside, eager). */
typedef enum { ST_KERN_FUSED, ST_KERN_EAGER, ST_KERN_COMPILE } st_kernels;
/* Whether attention runs as one fused kernel (every kind but unfused). */
static inline int st_attention_fused(st_attention a) { return a != ST_ATTN_UNFUSED; }
/* How context parallelism exchanges keys and values (Megatron-LM --cp-comm-type, Transformer
 * Engine's cp_comm_type; src/core/opgraph.c): p2p, the ring of K/V blocks overlapped with the
 * attention steps (TE's default); all_gather, K/V all-gathered before attention and dK/dV
 * reduce-scattered after it (Llama 3, Sec. 3.3.2); a2a, Ulysses-style all-to-alls that trade the
 * sequence split for a head split around attention. */
typedef enum { ST_CP_P2P, ST_CP_ALLGATHER, ST_CP_A2A } st_cp_comm;

const char *st_dtype_name(st_dtype d);
int st_dtype_parse(const char *s, st_dtype *out); /* 0 or ST_EINVAL */
/* st_dtype's spellings, for the messages that list them (names.c's table in the same order) */
#define ST_DTYPE_NAMES "fp32, tf32, fp16, bf16, fp8, mxfp8, nvfp4"
double st_dtype_bytes(st_dtype d);                /* bytes per element (tf32 stored as 4), block scales included */
/* 1 for the recipes that quantise the linear layers' GEMM operands and keep 16-bit (bf16) weights and
 * activations (fp8, mxfp8, nvfp4), else 0. */
int st_dtype_quantised(st_dtype d);
/* The dtype a tensor is stored in when training in d: bf16 under a quantised recipe, else d. */
st_dtype st_dtype_storage(st_dtype d);
/* Reads of the 16-bit source a cast to d makes: 2 for nvfp4, whose per-tensor fp32 scale needs the
 * tensor's amax before any value is cast (a pass of its own), else 1 (fp8's delayed scaling uses
 * the amax of earlier steps; mxfp8's scales are per block). */
double st_dtype_cast_passes(st_dtype d);
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
const char *st_attention_name(st_attention a);
int st_attention_parse(const char *s, st_attention *out);
const char *st_kernels_name(st_kernels k);
int st_kernels_parse(const char *s, st_kernels *out);
const char *st_cp_comm_name(st_cp_comm c);
int st_cp_comm_parse(const char *s, st_cp_comm *out);

/* ------------------------------------------------------------ model */

/* Absurd-size guards shared by every loader (10^12 layers must be refused, not allocated). */
#define ST_MAX_LAYERS 100000
#define ST_MAX_HIDDEN (1 << 20)
#define ST_MAX_HEADS 65536
#define ST_MAX_VOCAB (1 << 24)
#define ST_MAX_SEQ (1 << 24)
#define ST_MAX_EXPERTS 4096
#define ST_MAX_GPUS (1 << 20)
#define ST_MAX_PATTERN 1024 /* blocks a per-block pattern (layer_pattern, layer_ffn) describes */

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
    double rope_theta;          /* RoPE base (config rope_theta); 0 = not given. Priced nowhere: emitted */
    int tied_embeddings;        /* output layer shares the input embedding */
    int dropout;                /* dropout after attention probs and residual branches */
    int bias;                   /* linear layers carry biases (GPT-2/3, OPT, BLOOM) */
    int64_t experts;            /* 0 = dense */
    int64_t experts_topk;       /* experts a token visits */
    int64_t moe_every;          /* every n-th block is MoE (1 = all) */
    int64_t vocab_pad_multiple; /* Megatron --make-vocab-size-divisible-by; pad to this x tp; 1 = none */
    /* MoE as DeepSeek and Qwen build it (DeepSeekMoE, Dai et al. 2024; DeepSeek-V3 report Sec. 2.1.2) */
    int64_t moe_ffn;         /* a routed expert's FFN size; 0 = ffn */
    int64_t shared_experts;  /* experts every token visits besides its top-k (0 = none) */
    int64_t shared_ffn;      /* one shared expert's FFN size; 0 = moe_ffn */
    int64_t first_dense;     /* the first k blocks keep a dense MLP (first_k_dense_replace) */
    double capacity_factor;  /* tokens an expert takes / its balanced share; 0 = dropless */
    double moe_imbalance;    /* tokens of the busiest expert rank / the mean; 1 = balanced (0 = 1) */
    /* group-limited routing (DeepSeek-V3 report Sec. 2.1.2, "Node-Limited Routing"; config n_group and
     * topk_group): the experts in router_groups equal groups, a token's top-k taken from its
     * router_group_topk best groups; 0 = none */
    int64_t router_groups, router_group_topk;
    /* multi-head latent attention (DeepSeek-V2, Sec. 2.1); kv_lora_rank 0 = ordinary attention */
    int64_t q_lora_rank;     /* 0 = queries projected directly */
    int64_t kv_lora_rank;
    int64_t qk_nope_dim, qk_rope_dim, v_head_dim;
    /* sliding-window attention (Mistral; Gemma 2/3, gpt-oss alternate it with global layers) */
    int64_t window;          /* keys a query sees in windowed blocks; 0 = all */
    int64_t global_every;    /* with a window: every n-th block (the last of each n) attends to all; 0 = none */
    int qk_norm;             /* norms on queries and keys: 0 none, 1 per head (Qwen3, Gemma 3), 2 full width (OLMo 2) */
    int attn_sinks;          /* one learned sink logit per head (gpt-oss) */
    int qkv_bias;            /* biases on q, k and v only (Qwen2) */
    int parallel_block;      /* attention and MLP side by side on one norm's output (GPT-J, GPT-NeoX, Cohere) */
    /* Mamba-2 mixers (Dao & Gu 2024, "Transformers are SSMs", Sec. 7 and Listing 1) */
    int64_t ssm_heads, ssm_head_dim, ssm_state, ssm_groups, ssm_conv;
    int64_t mtp_layers;      /* multi-token prediction modules (DeepSeek-V3 Sec. 2.2); priced, counted apart */
    /* DeepSeek Sparse Attention (DeepSeek-V3.2, GLM-5): a lightning indexer of index_heads x index_head_dim
     * scores every key, each query attends to its index_topk best; index_topk 0 = dense attention */
    int64_t index_heads, index_head_dim, index_topk;
    /* Gated DeltaNet mixers of the 'G' blocks (Yang et al. 2024, arXiv 2412.06464; Qwen3-Next, Qwen3.5):
     * gdn_k_heads query/key heads of gdn_k_dim, gdn_v_heads value heads of gdn_v_dim, conv1d width gdn_conv */
    int64_t gdn_k_heads, gdn_v_heads, gdn_k_dim, gdn_v_dim, gdn_conv;
    int attn_out_gate;       /* attention's output times sigmoid of a second query-sized projection (Qwen3-Next) */
    /* the global blocks of a windowed model with heads of their own (Gemma 4): 0 = the model's */
    int64_t global_head_dim, global_kv_heads;
    int global_k_eq_v;       /* global blocks reuse their keys as values (no value projection) */
    /* per-block kinds, one character a block (empty = every block 'T'): 'T' attention + MLP, 'M' Mamba-2
     * mixer alone, '*' attention alone, '-' MLP alone, 'E' MoE MLP alone (Nemotron-H's letters), 'G' Gated
     * DeltaNet + MLP */
    char layer_pattern[ST_MAX_PATTERN + 1];
    int32_t layer_ffn[ST_MAX_PATTERN]; /* per-block dense FFN size (0 = ffn): Nemotron-NAS block_configs */
    char source[200];           /* citation for presets; file path for loaded models */
    char note[480];             /* what an import assumed or left out (HuggingFace configs), said on stderr */
} st_model;

/* What one block is: its mixer, its MLP, its attention window and dense FFN size. Blocks that are
 * equal cost the same; the cost layer prices one of each kind and counts them (st_model_kinds). */
typedef enum { ST_MIX_ATTN, ST_MIX_NONE, ST_MIX_MAMBA, ST_MIX_GDN } st_mixer;
typedef enum { ST_MLP_DENSE, ST_MLP_MOE, ST_MLP_NONE } st_mlp;
typedef struct st_layer {
    st_mixer mixer;
    st_mlp mlp;
    int64_t window; /* 0 = full attention */
    int64_t ffn;    /* dense MLP size */
    /* attention blocks: their head size and key-value heads, and whether keys serve as values */
    int64_t head_dim, kv_heads;
    int k_eq_v;
} st_layer;
#define ST_MAX_KINDS 8

/* Presets (src/core/model.c). Returned arrays are static; borrowed. */
const st_model *st_model_presets(size_t *n);
int st_model_preset(const char *name, st_model *out); /* 0 or ST_EINVAL */
/* Fills defaults that derive from other fields (kv_heads, head_dim, ffn, ...) and checks ranges.
 * `file` names the source for messages (may be NULL). */
int st_model_finalize(st_model *m, const char *file, st_error *err);
/* Megatron-LM's padded vocabulary: round up to vocab_pad_multiple * tp. */
int64_t st_model_padded_vocab(const st_model *m, int tp);
/* Total parameters, counted from the operator graph at tp = 1 (no padding when pad is NULL). */
double st_model_params(const st_model *m);
/* Whether tp divides every head count the model's blocks split (attention, Gemma 4's global blocks,
 * Mamba-2 and Gated DeltaNet heads and groups): 1 or 0. */
int st_model_tp_divides(const st_model *m, int tp);
/* The most nodes one token's routed copies reach when the experts lie evenly, in order, on `nodes`
 * nodes (an ep group over them): its top-k, and with group-limited routing router_group_topk groups
 * of router_groups, each on ceil(nodes / router_groups) nodes (DeepSeek-V3: 8 groups, top 4, on 8
 * nodes: 4); never more than `nodes`. */
int64_t st_model_token_nodes(const st_model *m, int64_t nodes);
/* Whether block `layer` (0-based) is an MoE block. */
int st_model_layer_is_moe(const st_model *m, int64_t layer);
/* What block `layer` (0-based) is. */
void st_model_layer(const st_model *m, int64_t layer, st_layer *out);
/* The distinct block kinds in order of first appearance, each by the index of its first block
 * (rep[k]); returns their count (1..ST_MAX_KINDS; st_model_finalize refuses more). */
int st_model_kinds(const st_model *m, int64_t rep[ST_MAX_KINDS]);
/* Blocks of each kind (st_model_kinds' order) among blocks [first, first + n). */
void st_model_count_kinds(const st_model *m, int64_t first, int64_t n, int64_t count[ST_MAX_KINDS]);
/* The kind (st_model_kinds' order) of every block, into kind_of[0 .. layers - 1], in one pass. */
void st_model_layer_kinds(const st_model *m, unsigned char *kind_of);
/* Parameters of the multi-token prediction modules (st_model_params leaves them out, as DeepSeek's
 * 671B does), and the parameters one token uses (its top-k routed experts, the shared experts and
 * everything else, embedding and output layer included; MTP left out). */
double st_model_mtp_params(const st_model *m);
double st_model_active_params(const st_model *m);
/* One line on the structure beyond a plain transformer (MLA, MoE shape, windows, block kinds, Mamba-2,
 * MTP); empty for a plain one. */
void st_model_describe(const st_model *m, char *buf, size_t n);

/* ------------------------------------------------------- operator graph */

typedef enum {
    ST_OPC_GEMM,     /* dense matmul with weights */
    ST_OPC_BGEMM,    /* batched matmul without weights (attention scores / context) */
    ST_OPC_SOFTMAX,  /* scale + mask + softmax */
    ST_OPC_NORM,     /* layernorm / rmsnorm */
    ST_OPC_ELEMWISE, /* bias, activation, dropout, residual add, rope */
    ST_OPC_EMBED,    /* embedding lookup */
    ST_OPC_LOSS,     /* (vocab-parallel) cross-entropy */
    ST_OPC_ATTENTION, /* fused attention (FlashAttention): QK^T, softmax, dropout and PV in one kernel */
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
    st_attention attention;
    st_cp_comm cp_comm; /* with cp > 1 */
    st_kernels kernels;
} st_shard;

/* One operator as one rank runs it for one micro-batch (numbers already divided by the shard). */
typedef struct st_op {
    const char *name; /* static string: "qkv", "fc1", ... */
    st_opclass cls;
    double fwd_flops, bwd_flops; /* this rank's FLOPs */
    double fwd_bytes, bwd_bytes; /* this rank's HBM traffic */
    double m, n, k, batch;       /* GEMM/BGEMM shape (batch of m x k by k x n); fused attention: query
                                    length, key length, head dim, batch x heads */
    int causal;                  /* fused attention with a causal mask (the kernel skips masked blocks) */
    st_attention kernel;         /* fused attention: which kernel runs it (its rates, cost/compute.c) */
    /* fused attention under cp=p2p: the ring's steps (cp kernels each way: the first causal at query
     * and key length m, the others unmasked on half-length blocks; cost/compute.c); 0: one kernel */
    int ring_steps;
    int kernels_fwd, kernels_bwd;
    double params;      /* parameters held by this rank */
    double saved_bytes; /* activation bytes stored for backward (no recompute) */
    /* a GEMM's output gradient dY (m x n x batch, the activations' width): with its saved input what its
     * weight gradient dY^T X reads, kept from the input-gradient half to the weight half (cost/memory.c) */
    double dy_bytes;
    /* a GEMM whose weight another operator holds (the output layer tied to the embedding, the MTP modules'
     * shared output layer): params 0 here, but its weight gradient is computed here, from dY and X */
    int shared_weight;
    double input_bytes; /* a block's first operator (its norm): the block input, what a checkpoint keeps */
    int selective;      /* recomputed under selective recompute, dropping its saved_bytes ... */
    double ckpt_kept_bytes; /* ... less these: the inputs the checkpoint keeps (a checkpointed fused
                               attention keeps q, k and v) */
    /* recompute=op (torchtitan's op-level selective AC): the output bytes the policy saves, and
     * the fraction of this op's forward that the block's recompute runs again (0..1); of the saved
     * bytes, those the backward without recompute does not keep (an ep all-to-all's output) */
    double op_saved_bytes, op_recompute, op_comm_bytes;
    unsigned splits;    /* ST_SPLIT_* that divide this op's work */
    int expert;         /* weights belong to experts (sharded by ep, reduced over dp*cp/ep) */
    int quant; /* a linear layer that fp8, mxfp8 or nvfp4 training runs in that format (forward, dgrad, wgrad) */
    /* collective implied after this op in forward, and at the same boundary in backward (before
     * this op's backward), in group coll_group */
    st_coll fwd_coll, bwd_coll;
    st_group_kind coll_group;
    double coll_bytes; /* full (unsharded-over-group) message size per rank */
    /* the forward collective's message when its wire format differs, else 0 (st_op_fwd_coll_bytes):
     * under fp8 Transformer Engine gathers a column-parallel linear's sequence-parallel input as the
     * quantised shard, 1 byte per element, while the backward's reduce-scatter stays 16-bit */
    double fwd_coll_bytes;
    /* bytes held only while this op runs (forward or backward, the larger): context parallelism's
     * key/value buffers (opgraph.c); part of the block's working set (cost/memory.c) */
    double work_bytes;
} st_op;
/* The bytes per rank of op o's forward collective (st_op.fwd_coll_bytes, else coll_bytes). */
static inline double st_op_fwd_coll_bytes(const st_op *o) {
    return o->fwd_coll_bytes > 0 ? o->fwd_coll_bytes : o->coll_bytes;
}

#define ST_MAX_OPS 64
/* The first block without and the first with an MoE MLP (-1 when the model has none). */
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
    double gemm_efficiency_fp8;     /* the same for fp8 GEMMs; 0 = unknown (st_gpu_gemm_efficiency) */
    int sms;                        /* SMs (AMD: compute units); 0 = unknown (no contention modelled) */
    double gemm_half_dim;           /* small GEMMs: factor d / (d + this) per dimension; 0 = cost/'s default */
    double tdp_watts;               /* board power limit (datasheet TDP/TBP); 0 = unknown */
    char source[200];
} st_gpu;

/* How the GPUs of one scale-up domain reach each other (src/core/cluster.c, cost/comm.c): through
 * switches, every GPU at its full port rate to any other (NVSwitch; a PCIe switch); or AMD xGMI, a
 * fully connected mesh of point-to-point links, domain - 1 per GPU, of which a collective over n
 * ranks of the domain uses n - 1. */
typedef enum { ST_FABRIC_NVSWITCH, ST_FABRIC_XGMI, ST_FABRIC_PCIE, ST_FABRIC_COUNT } st_fabric;
const char *st_fabric_name(st_fabric f);
int st_fabric_parse(const char *s, st_fabric *out); /* 0 or ST_EINVAL */

/* MIG (src/core/mig.c): a GPU-instance profile of one GPU preset, from NVIDIA's MIG user guide. */
#define ST_MIG_COMPUTE_SLICES 7 /* compute slices of an A100, H100 or H200 */
#define ST_MIG_MEMORY_SLICES 8  /* memory slices */
typedef struct st_mig_profile {
    const char *gpu;    /* the GPU preset it cuts */
    const char *name;   /* "1g.5gb" */
    int compute_slices; /* of ST_MIG_COMPUTE_SLICES */
    int memory_slices;  /* of ST_MIG_MEMORY_SLICES (HBM bandwidth and L2 go with them) */
    int sms;            /* SMs of the instance (nvidia-smi mig -lgip) */
    double memory_gib;  /* memory of the instance (nvidia-smi mig -lgip) */
} st_mig_profile;

/* A host node whose GPUs are cut into MIG slices: the layout, and the node as described before
 * slicing (what the canonical JSON writes and st_cluster_set_mig restores). per_gpu 0 = no MIG. */
typedef struct st_cluster_mig {
    char profile[16];
    int per_gpu; /* slices per physical GPU of `profile` */
    /* all slices of the physical GPU, which share its PCIe link: per_gpu, or with a layout of several
     * profiles (st_cluster_set_mig_layout) all of the layout's */
    int slices_per_gpu;
    /* a layout of several profiles ("4g.40gb+2g.20gb+1g.10gb"), each profile a node group; "" for one */
    char layout[64];
    st_gpu gpu;  /* the physical GPU */
    int64_t gpus_per_node, gpus_used, domain_gpus;
    st_fabric fabric;
    double intra_bytes_per_s, pcie_bytes_per_s;
    double nic_bytes_per_s, host_memory_bytes; /* the host node's, before a layout shares them out */
} st_cluster_mig;

/* One node group of a mixed cluster (issue 19): nodes of one GPU type with their own scale-up domain,
 * NICs, host memory and PCIe, in the fields and units of st_cluster's. A group whose GPUs are cut into
 * MIG slices (cluster JSON groups[i].mig) holds them as st_cluster does: gpu is one slice, gpus_per_node
 * counts slices, the domain is host memory, and `mig` keeps the layout and the whole GPUs. */
#define ST_MAX_GROUPS 8
typedef struct st_node_group {
    char name[32];
    st_gpu gpu;
    int64_t nodes, gpus_per_node, domain_gpus;
    st_fabric fabric;
    double intra_bytes_per_s, intra_latency_s;
    int64_t nics_per_node;
    double nic_bytes_per_s, inter_latency_s, oversubscription;
    double host_memory_bytes, pcie_bytes_per_s;
    st_cluster_mig mig; /* per_gpu 0: whole GPUs */
} st_node_group;

typedef struct st_cluster {
    char name[64];
    int64_t nodes;         /* host nodes */
    int64_t gpus_per_node; /* GPUs of one host node (its NICs, host memory and PCIe) */
    /* GPUs the job uses when fewer than nodes x gpus_per_node: part of a node, or of a scale-up
     * domain, placed on the first GPUs as a launcher places them; 0 = all */
    int64_t gpus_used;
    /* the scale-up domain: domain_gpus GPUs (a multiple of gpus_per_node, spanning domain_gpus /
     * gpus_per_node host nodes; 0 = one host node) joined by `fabric`; collectives whose ranks lie
     * in one domain use it even across host nodes */
    int64_t domain_gpus;
    /* GPUs the job takes of each scale-up domain (CLUSTER:domain_gpus=N: a multiple of gpus_per_node,
     * at most the domain), its ranks filling them in order: 64 of NVL72's 72 is 16 of the rack's 18
     * trays, Slurm's --segment=16. 0: the job fills whole domains in order, the last one in part when
     * its GPUs are not a multiple of the domain (256 on NVL72: 72, 72, 72, 40). */
    int64_t domain_gpus_used;
    st_fabric fabric;
    st_gpu gpu;
    double intra_bytes_per_s; /* per GPU per direction inside the scale-up domain (xGMI: all its links) */
    double intra_latency_s;
    int64_t nics_per_node;
    double nic_bytes_per_s; /* per NIC per direction */
    double inter_latency_s;
    double oversubscription; /* fabric above the nodes: 1 = full bisection */
    /* The scale-out fabric's tiers (cluster JSON inter_node.leaf / inter_node.spine; cost/comm.c): a
     * leaf switch (with rails, each rail's leaf) holds leaf_nodes host nodes, a pod of pod_nodes nodes
     * (a multiple of leaf_nodes) hangs under one spine group, the core joins pods. Traffic leaving a
     * leaf crosses its uplinks, oversubscribed leaf_oversubscription : 1; traffic leaving a pod also the
     * spine's, pod_oversubscription : 1. 0 nodes = no such tier (everything under one switch as far as
     * oversubscription goes: the single `oversubscription` above applies to all inter-node traffic). */
    int64_t leaf_nodes, pod_nodes;
    double leaf_oversubscription, pod_oversubscription;
    /* rail-optimised (inter_node.rail_optimized): NIC i of every node on rail (leaf) i, so traffic
     * between GPUs of the same local index stays on its rail; traffic to another rail is relayed over
     * NVLink first (NCCL's PXN). 0: all NICs of a node on one leaf. */
    int rail_optimized;
    /* In-network reduction (cost/comm.c): sharp_domain, the scale-up switches reduce (NVLink SHARP,
     * NCCL's NVLS algorithms; cluster JSON scale_up.sharp or CLUSTER:sharp=1); sharp_inter, the
     * scale-out switches do (InfiniBand SHARP, NCCL's CollNet; inter_node.sharp). nvls_capable: the
     * preset's NVSwitches can (third generation on, H100 onward); what CLUSTER:sharp=1 checks. */
    int sharp_domain, sharp_inter, nvls_capable;
    double host_memory_bytes;
    double pcie_bytes_per_s; /* per GPU per direction */
    /* memory the training framework holds besides model state and activations (CUDA context,
     * NCCL and cuBLAS buffers, allocator fragmentation): cluster JSON "framework.reserved_gib";
     * 0 = the default (st_cluster_reserved_bytes) */
    double reserved_bytes;
    /* MIG: when set, gpu is one slice, gpus_per_node counts slices, the scale-up domain is the host
     * node's memory (no peer-to-peer between instances) and intra_bytes_per_s and pcie_bytes_per_s
     * are a slice's share of its parent GPU's PCIe link */
    st_cluster_mig mig;
    /* per-kernel costs of the training stack (cluster JSON "framework.launch_overhead_us" and
     * "host_us_per_kernel"): the GPU's idle time per kernel and the host's time to issue one
     * (cost/compute.c); 0 = cost/'s defaults */
    double launch_overhead_s, host_s_per_kernel;
    char source[300];
    /* Node groups (cluster JSON "groups"; 0 = one uniform cluster, the fields above). Ranks fill the
     * groups in order, as a launcher given a hostfile listing them in order does. With groups, the
     * fields above are st_cluster_view of all the GPUs (the slowest GPU and links of them all), what
     * code that prices one GPU type sees; cost/ asks st_cluster_view for the GPUs it prices. */
    int ngroups;
    st_node_group groups[ST_MAX_GROUPS];
    /* the fabric between node groups: bandwidth per node per direction, its latency (added to the
     * groups' own) and oversubscription */
    double xgroup_bytes_per_s, xgroup_latency_s, xgroup_oversubscription;
} st_cluster;

const st_gpu *st_gpu_presets(size_t *n);
/* The achievable fraction of peak_flops[dt] for large GEMMs: gemm_efficiency_fp8 for fp8 where
 * known, else gemm_efficiency times H100 SXM's measured fp8/bf16 ratio (src/core/cluster.c);
 * gemm_efficiency for the other dtypes. */
double st_gpu_gemm_efficiency(const st_gpu *g, st_dtype dt);
int st_gpu_preset(const char *name, st_gpu *out);
const st_cluster *st_cluster_presets(size_t *n);
int st_cluster_preset(const char *name, st_cluster *out);
/* Checks a cluster; with node groups first the groups (counts, domain sizes that divide one another,
 * the fabric between them: st__cluster_groups_finalize, src/core/groups.c), whose view of all GPUs then
 * fills the top-level fields (st_cluster_view). */
int st_cluster_finalize(st_cluster *c, const char *file, st_error *err);
int st__cluster_groups_finalize(st_cluster *c, const char *file, st_error *err);
static inline int64_t st_cluster_gpus(const st_cluster *c) {
    return c->gpus_used > 0 ? c->gpus_used : c->nodes * c->gpus_per_node;
}
/* GPUs of one scale-up domain: domain_gpus, or the host node's where it is not set. */
static inline int64_t st_cluster_domain(const st_cluster *c) {
    return c->domain_gpus > 0 ? c->domain_gpus : c->gpus_per_node;
}
/* GPUs of each scale-up domain the job's ranks fill in order (cost/comm.c's placement):
 * domain_gpus_used where the job takes part of every domain, else the whole domain. */
static inline int64_t st_cluster_domain_used(const st_cluster *c) {
    return c->domain_gpus_used > 0 ? c->domain_gpus_used : st_cluster_domain(c);
}
/* Where rank `rank` (0-based, < all GPUs) sits: its node group (0 without groups), host node and
 * GPU within the node, both counted over the whole cluster's nodes and from 0. */
typedef struct st_rank_place {
    int group;
    int64_t node, gpu;
} st_rank_place;
void st_cluster_rank_place(const st_cluster *c, int64_t rank, st_rank_place *out);
/* The node group of rank `rank` (0 without groups). */
int st_cluster_rank_group(const st_cluster *c, int64_t rank);
/* The uniform cluster that ranks [first, first + n) are priced on: *c itself without groups; the
 * group's own description when they lie in one group; across groups the slowest of each (GPU peak,
 * memory and HBM, scale-up rate, host memory and PCIe, the smaller node and domain), the NICs of the
 * group with the least NIC bandwidth per GPU (scaled to the smaller node), with the fabric between
 * groups as its inter-node links (its rate per node shared by the node's GPUs, its latency added, the
 * larger oversubscription): a collective crossing groups is priced on the slowest link it crosses.
 * out->ngroups is 0. */
void st_cluster_view(const st_cluster *c, int64_t first, int64_t n, st_cluster *out);
/* "NODES x GPUS_PER_NODE GPU" for a uniform cluster; for node groups each group's, joined by " + ", with
 * the group's name: what the text outputs print. */
void st_cluster_describe(const st_cluster *c, char *buf, size_t n);
/* The most GPUs one host node or scale-up domain may have: 576, NVIDIA's largest announced NVLink
 * domain (NVL576); more is a typo. */
#define ST_MAX_DOMAIN_GPUS 576
/* MIG profiles (static, borrowed), and the one of GPU preset `gpu` named `name` (NULL if none). */
const st_mig_profile *st_mig_profiles(size_t *n);
const st_mig_profile *st_mig_profile_find(const char *gpu, const char *name);
/* The most instances of p one GPU holds: 7 compute and 8 memory slices shared. */
int st_mig_max_per_gpu(const st_mig_profile *p);
/* The device one slice of `parent` is (peaks by SM share, HBM bandwidth by memory-slice share). */
void st_gpu_mig_slice(const st_gpu *parent, const st_mig_profile *p, st_gpu *out);
/* Cuts every GPU of c into per_gpu slices of `profile` (0: as many as fit), replacing any layout
 * c had; profile NULL or "none" restores the whole GPUs. An unknown profile for c's GPU or a layout
 * that over-subscribes a GPU is ST_EINVAL naming mig.profile or mig.per_gpu. */
int st_cluster_set_mig(st_cluster *c, const char *profile, int per_gpu, const char *file, st_error *err);
/* "PROFILE" or "PROFILExN" (N slices per GPU) into profile[n] and *per_gpu (0 when not given). */
int st_mig_spec_parse(const char *s, char *profile, size_t n, int *per_gpu);
/* Mixed MIG layouts (src/core/mig.c): several profiles on one GPU, placed by NVIDIA's placement rules. */
#define ST_MIG_MAX_LAYOUT ST_MIG_COMPUTE_SLICES /* instances of one GPU: each takes a compute slice */
/* Places the n instances p[] on one GPU: start[i] = the first memory slice of p[i]. 0, or ST_EINVAL
 * where no placement of the MIG user guide's lets them share the GPU. */
int st_mig_layout_place(const st_mig_profile *const *p, int n, int *start);
/* "A+B+C", each item PROFILE or PROFILExN (N of it), into names[*n] (at most max). 0 or ST_EINVAL. */
int st_mig_layout_parse(const char *s, char (*names)[16], int max, int *n);
/* Cuts every GPU of uniform cluster c into the n instances names[] (replacing any layout c had): one
 * profile is st_cluster_set_mig's layout; several become node groups, one per profile in order of
 * first appearance, on the same host nodes (see mig.c). A profile unknown for c's GPU, a layout the
 * guide cannot place or that strata cannot group is ST_EINVAL naming `key` (e.g. "mig.layout"). The
 * caller finalizes c. */
int st_cluster_set_mig_layout(st_cluster *c, char (*names)[16], int n, const char *file, const char *key,
                              st_error *err);
/* The layout of a cluster cut by st_cluster_set_mig_layout into several profiles (borrowed), else NULL. */
const st_cluster_mig *st_cluster_mig_layout(const st_cluster *c);

/* The default of st_cluster.reserved_bytes. PyTorch's CUDA context alone takes about 0.5 GiB on
 * A100/H100 (PyTorch "CUDA semantics" notes); cuBLAS workspaces, NCCL's buffers and the caching
 * allocator's fragmentation take the rest of the 2 GiB headroom Megatron-LM users leave. A cluster
 * JSON replaces it (framework.reserved_gib) where a measurement of the stack says otherwise. */
#define ST_RESERVED_DEFAULT_BYTES (2.0 * 1073741824.0)
/* Memory the framework reserves per GPU besides model state and activations: the cluster's
 * reserved_bytes, or ST_RESERVED_DEFAULT_BYTES where it does not say. */
double st_cluster_reserved_bytes(const st_cluster *c);

/* ------------------------------------------------------------ plan */

#define ST_PLAN_FORMAT_VERSION 1
#define ST_PLAN_FORMAT "strata-plan" /* the plan JSON's "format" */
#define ST_MAX_STAGES 512 /* pipeline chunks (pp * vp); more is refused naming pp or vp */
#define ST_MAX_REPLICAS 256 /* data-parallel replicas a plan's dp_batches may list */

typedef struct st_plan {
    int tp, pp, dp, cp, ep, vp;
    int64_t mbs, gbs, seq;
    int sp;
    st_recompute recompute;
    int zero; /* 0..3 */
    st_offload offload;
    /* granular offload (cost/offload.c): the fraction of the optimizer states (Adam's master
     * weights, m and v) kept in host memory and stepped by the CPU, 0 < f < 1, with offload=none;
     * 0 = none, and 1 is offload=optimizer (st_plan_finalize makes it so) */
    double offload_optimizer;
    /* granular offload of the weights and the saved activations (cost/offload.c, Elixir's chunks): the
     * fraction of each block's 16-bit weights kept in host memory and streamed in, chunk by chunk, for
     * every forward and backward; the fraction of each micro-batch's saved activations copied to the
     * host after its forward and back before its backward. 0 = none (zero 0-2, offload=none) */
    double offload_params, offload_activations;
    st_dtype dtype;
    st_schedule schedule;
    st_attention attention;
    st_kernels kernels; /* fused (default) or eager element-wise kernels */
    st_cp_comm cp_comm; /* how cp > 1 exchanges keys and values (default p2p) */
    int overlap_grad_reduce; /* DP reduce overlapped with backward (Megatron --overlap-grad-reduce) */
    /* zero 1-2: the weight all-gather after the optimizer step overlapped with the next forward,
     * bucket by bucket (Megatron --overlap-param-gather; needs overlap_grad_reduce, as there) */
    int overlap_param_gather;
    /* zero 1-2 with dtype fp8 or mxfp8: the quantised linear layers' weights exist only as Transformer
     * Engine's quantised tensors, no 16-bit copy beside them (Megatron --fp8-param-gather); the weight
     * all-gather after the step moves 1 byte per such weight for fp8, and for mxfp8 the 16-bit values
     * through the gradient buffer (st_cost_gather_bytes) */
    int fp8_param_gather;
    /* sp's tp all-gathers and reduce-scatters overlapped with the GEMMs beside them (Megatron
     * --tp-comm-overlap, Transformer Engine's userbuffers; torchtitan's async TP): tp > 1, sp = 1 */
    int tp_overlap;
    /* pipeline messages partitioned over the tp group (DeepSpeed's pipeline engine: pipe_partitioned
     * and grad_partitioned, on by default with tp > 1; Megatron-LM's --scatter-gather-tensors-in-
     * pipeline until 2023): each tp rank sends 1/tp of the activation or gradient, the receivers
     * all-gather it over tp (st_cost_p2p_bytes, st__p2p_time); sp = 0 */
    int pp_partition;
    int grad_bytes;          /* 4: fp32 gradient accumulation (Megatron), 2: 16-bit */
    int nstage_layers;       /* 0 = spread evenly; else pp*vp entries */
    int stage_layers[ST_MAX_STAGES];
    /* tensor-parallel degree of each pipeline stage (issue 19, per-group tp on mixed GPUs: HexiScale's,
     * Metis's and AMP's plans); 0 = tp everywhere; else pp entries, tp = the largest. Stage d's ranks are
     * stage_tp[d] x cp x dp, in Megatron's order tp-cp-dp-pp: the stages' blocks one after another
     * (st_plan_stage_rank0). st_plan_finalize makes a list of equal entries plain tp. */
    int nstage_tp;
    int stage_tp[ST_MAX_STAGES];
    /* micro-batches of each data-parallel replica per iteration (issue 19, uneven data parallelism on
     * mixed GPUs: Whale's hardware-aware batch split); 0 = gbs / (dp * mbs) each; else dp entries
     * summing to gbs / mbs, the gradients averaged with weights dp_batches[r] / (gbs / mbs) */
    int ndp_batches;
    int dp_batches[ST_MAX_REPLICAS];
    uint64_t seed;
    unsigned given; /* ST_GIVEN_* bits: keys the user set (dp and gbs are derived otherwise) */
    /* strata run of an operator-level plan whose attention is whole on every device of a tp group (QKV split
     * along its fused width, or the whole attention on each device's rows: search/as_hybrid.c's attn_rows 3
     * and 2): tp need not divide the heads and kv heads, only their widths, which the executor checks; no
     * spec or file key sets it */
    int heads_whole;
    /* what a loaded plan file says it was made for (empty when unknown) */
    char for_model[64], for_model_hash[17], for_cluster[64], for_cluster_hash[17];
} st_plan;

enum {
    ST_GIVEN_DP = 1,
    ST_GIVEN_GBS = 2,
    ST_GIVEN_SEQ = 4,
    ST_GIVEN_SCHEDULE = 8,
    ST_GIVEN_GPUS = 16,
    ST_GIVEN_GRAD = 32,
    ST_GIVEN_TP = 64
};

void st_plan_defaults(st_plan *p);
/* "tp=8,pp=8,..." over the current values of p. */
int st_plan_parse_spec(const char *spec, st_plan *p, st_error *err);
/* Derives dp/gbs/seq/schedule and rejects impossible plans naming the key. `gpus` is the count
 * the plan must use (0 = at most the cluster's). */
int st_plan_finalize(st_plan *p, const st_model *m, const st_cluster *c, int64_t gpus, const char *file,
                     st_error *err);
/* The stage that runs chunk j (0 <= j < pp*vp): j % pp (Megatron's round robin), or for zbv the V
 * (torch.distributed.pipelining's generate_stage_to_rank_mapping, style "v"): j for j < pp, then
 * 2 pp - 1 - j, so that stage 0 holds the first and the last chunk and the middle of the model turns
 * on stage pp - 1 without a message. */
int st_plan_chunk_stage(const st_plan *p, int j);
/* Whether stage d holds chunk j: it runs it (st_plan_chunk_stage), or under dualpipe holds it as the
 * second copy's stage pp - 1 - d. */
int st_plan_stage_holds(const st_plan *p, int d, int j);
/* Layers of each of the pp*vp chunks, in chunk order (chunk j lives on st_plan_chunk_stage). Spreads
 * evenly, counting the embedding toward the first stage and the output layer toward the last. */
void st_plan_chunk_layers(const st_plan *p, const st_model *m, int *out);
int64_t st_plan_microbatches(const st_plan *p);
/* Per-stage tp (st_plan.stage_tp): stage d's tp; the first rank of stage d (ranks in Megatron's order
 * tp-cp-dp-pp, stage by stage); the GPUs the plan uses, cp x dp x the sum of the stages' tp; the plan
 * that stage d runs, uniform with tp = its own (sp, tp_overlap off where that tp is 1), into *out.
 * st_plan_stage_retarget does the second half only, on an *out that already holds a copy of p (or
 * another stage's plan of p; its other fields, stage_layers included, stay): stage after stage without
 * copying the whole plan each time. */
int st_plan_stage_tp(const st_plan *p, int d);
int64_t st_plan_stage_rank0(const st_plan *p, int d);
int64_t st_plan_gpus(const st_plan *p);
void st_plan_stage_plan(const st_plan *p, int d, st_plan *out);
void st_plan_stage_retarget(const st_plan *p, int d, st_plan *out);
/* Micro-batches of data-parallel replica r (0-based) per iteration: dp_batches[r], or the even share. */
int64_t st_plan_replica_microbatches(const st_plan *p, int r);
/* Why p cannot run: uneven dp_batches while collectives are issued once per micro-batch in groups across
 * the replicas, "zero=3 (the layer gathers)" or "ep > 1 (the experts' all-to-all)"; NULL where p has
 * none of them (borrowed, static). See st_plan_finalize. */
const char *st_plan_lockstep(const st_plan *p);
/* Canonical inline spec. */
void st_plan_format_spec(const st_plan *p, char *buf, size_t n);
/* The shard a plan runs its blocks with. */
void st_plan_shard(const st_plan *p, st_shard *out);
/* When a loaded plan file was made for another model or cluster than (m, c), writes a one-line
 * note saying so and returns 1; else 0. (The plan may still be valid for them.) */
int st_plan_origin_note(const st_plan *p, const st_model *m, const st_cluster *c, char *buf, size_t n);

/* The file an atomic write (temp file + rename) of `path` replaces: `path`, or for a symbolic link
 * the file it points to (the link stays a link). An existing target that is no regular file (a
 * device, a FIFO, a folder) is refused: rename(2) would replace it rather than write into it (as
 * root, --out /dev/full replaced the device). New string (free()), or NULL with err set. */
char *st__out_target(const char *path, st_error *err);
/* Temporary files of the atomic writes (src/core/util.c). st__tmp_create makes "<target>.tmp.XXXXXX"
 * beside target (mode 0666 & ~umask) and registers it for removal on SIGINT, SIGTERM or SIGHUP;
 * returns an open descriptor and *tmp (new; give it to st__tmp_commit or st__tmp_discard), or -1
 * with err set (naming `shown`). st__tmp_commit renames tmp onto target (0, or ST_EIO with the
 * temporary removed); both consume tmp. st__tmp_discard(NULL) does nothing. */
int st__tmp_create(const char *target, const char *shown, char **tmp, st_error *err);
int st__tmp_commit(char *tmp, const char *target, const char *shown, st_error *err);
void st__tmp_discard(char *tmp);
/* A child process writing a registered temporary (gnuplot drawing the image), 0 = none: a fatal
 * signal ends and reaps it before the temporaries go. */
void st__child_register(int pid);
/* Installs the handler of SIGINT, SIGTERM and SIGHUP that removes the registered temporaries and
 * re-raises the signal (main.c, once at start-up). Signals that were ignored stay ignored. */
void st_signals_install(void);
/* Replaces every control character of s (bytes below 0x20, and DEL) with '?', in place; returns s
 * (src/core/util.c). For every name strata echoes as text: a model named "evil\nname" split the
 * output, an ESC in a name reached the terminal. Names are cleaned where models and clusters are
 * finalized, messages where they are printed; JSON output escapes by itself (Jansson). */
char *st_text_clean(char *s);
/* The most memory this process can take (src/core/util.c): the machine's physical memory, or less
 * where a limit (ulimit -v, RLIMIT_AS or RLIMIT_DATA) says so. What a run is sized against before
 * it allocates (the lowering refuses programs that cannot fit rather than swap or fail after minutes). */
double st_memory_limit_bytes(void);
/* Seconds on the monotonic clock (CLOCK_MONOTONIC): for time limits and the wall times strata reports. */
double st_clock_s(void);
/* Internal (src/core/util.c; the lowering and the simulator): `bytes` of uninitialized memory, free with free(),
 * aligned to 64 bytes (a cache line: the simulator lays records out in lines). A large block is aligned for and
 * asked to be backed by huge pages where the system has them (Linux's transparent huge pages on madvise): a
 * lowering to every rank writes over a gigabyte, and faulting that in 4 KiB pages took longer than writing it.
 * NULL when out of memory. */
void *st__alloc_big(size_t bytes);

/* ------------------------------------------------- tensor-level graph */

/* The tensor-level operator graph the auto-sharding ILP works on (issue 4).
 *
 * An operator reads up to ST_G_MAXIN tensors and writes one. Every tensor dimension an operator
 * touches carries a one-letter label, in einsum style: a matmul is "bsh,hf->bsf". A sharding of
 * the operator picks, for each axis of the device mesh, one label to split (or none); the layouts
 * of its inputs and output follow from the labels (Zheng et al. OSDI'22, Alpa, section 4.1: the
 * "S0/S1/R" specs are these per-axis choices). A label the output lacks (a contraction) leaves the
 * output partial along that axis: a later all-reduce or reduce-scatter resolves it. Labels that an
 * operator cannot split locally (the normalised dimension of a norm or softmax, the spatial
 * dimensions of a convolution) are listed in `nosplit`. `alias` maps a label the operator splits
 * onto the label it becomes in another tensor (MoE dispatch: the token dimensions b and s become
 * the capacity dimension c of the dispatched [experts, capacity, hidden] tensor).
 *
 * Graphs come from the model presets and HuggingFace configs (st_graph_from_model: one
 * transformer block, tied: it stands for all `repeat` layers, plus the embedding head and the
 * logits/loss tail, with the per-operator FLOPs and bytes of src/core/opgraph.c so that both planners
 * price the same operators) or from a custom graph JSON (src/io/graph_io.c). search/graph.c checks
 * them with igraph: cycles, dangling tensors, shapes that do not match across an edge. */
#define ST_G_MAXDIM 6
#define ST_G_MAXIN 3
#define ST_G_NAME 48

typedef enum {
    ST_GOP_MATMUL,    /* x[..., k] . w[k, n] (or batched [.., k, n]) -> [..., n] */
    ST_GOP_ELEMWISE,  /* same-shape inputs and output: add, mul, activation, dropout, bias */
    ST_GOP_NORM,      /* layer/RMS norm over the last dimension (+ optional weight [last]) */
    ST_GOP_SOFTMAX,   /* softmax over the last dimension */
    ST_GOP_ATTENTION, /* fused attention: q, k, v [b, s, heads, d] -> [b, s, heads, d] */
    ST_GOP_EMBEDDING, /* ids [...] . table [v, h] -> [..., h] */
    ST_GOP_LOSS,      /* cross-entropy over the last dimension of logits -> scalar */
    ST_GOP_CONV,      /* 2-D convolution: x [n, c, h, w], w [o, c, kh, kw] -> [n, o, h', w'] */
    ST_GOP_RESIZE,    /* pooling / up-sampling: [n, c, h, w] -> [n, c, h', w'] */
    ST_GOP_CONCAT,    /* concatenation along dimension 1 (channels) */
    ST_GOP_DISPATCH,  /* MoE: tokens [..., h] (+ router [..., e]) -> [e, c, h] */
    ST_GOP_COMBINE,   /* MoE: [e, c, h] (+ router [..., e]) -> tokens [..., h] */
    ST_GOP_COUNT
} st_gop_type;

const char *st_gop_type_name(st_gop_type t);
int st_gop_type_parse(const char *s, st_gop_type *out); /* 0 or ST_EINVAL */

typedef struct st_gtensor {
    char name[ST_G_NAME];
    int ndim; /* 0 = scalar */
    int64_t dim[ST_G_MAXDIM];
    st_dtype dtype;
    int weight;     /* a parameter: gradients, optimizer state, synchronised when replicated */
    int input;      /* fed from outside (token ids, images): any layout for free */
    int shared;     /* a weight already counted elsewhere (tied embeddings): no memory here */
    int producer;   /* op index, -1 for weights and inputs */
    int nconsumers;
} st_gtensor;

typedef struct st_gop {
    char name[ST_G_NAME];
    st_gop_type type;
    st_opclass cls; /* the cost class cost/compute.c prices it with */
    int nin;
    int in[ST_G_MAXIN];
    int out;
    char lab[ST_G_MAXIN][ST_G_MAXDIM + 1]; /* labels of each input's dimensions */
    char lab_out[ST_G_MAXDIM + 1];
    char nosplit[16];
    char alias_from[4], alias_to[4]; /* split alias_from[i] appears as alias_to[i] elsewhere */
    /* whole operator, unsharded, one micro-batch */
    double fwd_flops, bwd_flops, fwd_bytes, bwd_bytes;
    int kernels_fwd, kernels_bwd;
    double gemm[4];     /* m, n, k, batch of a GEMM-class op, unsharded (0: from the labels); fused
                           attention: query length, key length, head dim, batch x heads */
    int causal;         /* fused attention with a causal mask */
    int quant;          /* a GEMM that fp8, mxfp8 or nvfp4 training runs in that format (st_op.quant) */
    double saved_bytes; /* activation bytes kept for backward, unsharded */
    int save_ref;       /* the tensor whose sharding divides saved_bytes: an input index, or
                           ST_G_MAXIN for the output */
    int saved_given;    /* saved_bytes is the operator's own (opgraph.c's, even 0): not derived */
    int block;              /* 1: part of the repeated transformer block */
} st_gop;

typedef struct st_graph {
    char name[64];
    int nops, ntensors;
    st_gop *ops;
    st_gtensor *t;
    int64_t repeat;   /* the block's layers (1 = no repeated block) */
    int block_in;     /* tensor the first block reads (the previous block's output), or -1 */
    int block_out;    /* tensor the last block writes, or -1 */
    int64_t mbs, seq; /* micro-batch shape the graph was built for (presets) */
    int *topo;        /* ops in topological order (st_graph_check fills it) */
    /* Graphs without a repeated block (custom graphs): segments between the operators that every
     * path from inputs to outputs crosses (igraph's dominator tree), the units the pipeline-stage
     * DP cuts into stages; 0 / NULL for model graphs. seg_cut[s]: the op whose output is the only
     * activation leaving segment s (-1 for the last). */
    int nsegs;
    int *seg, *seg_cut; /* per op; per segment */
} st_graph;

void st_graph_free(st_graph *g); /* frees the arrays; g itself is the caller's */
/* Elements of a tensor. */
double st_gtensor_numel(const st_gtensor *t);

#ifdef __cplusplus
}
#endif
#endif
