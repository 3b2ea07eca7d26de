/* opgraph.c: a model as operators, as one rank runs them for one micro-batch.
 *
 * One transformer block is the list below (Megatron-LM's GPT block; Llama's differs in norm,
 * SwiGLU and RoPE; MoE replaces the MLP with router + experts). Blocks differ by kind (st_layer:
 * core.h): attention (ordinary or latent: mla_ops; with sparse attention's indexer: indexer_ops; each
 * block's own heads: Gemma 4's global ones), a Mamba-2 or Gated DeltaNet mixer (recurrent_ops) or none, then a
 * dense MLP of the block's size, an MoE with shared experts (moe_ops) or none; windowed attention
 * is priced by its window (flash). The tail carries the MTP modules (mtp_ops). Each operator carries this
 * rank's FLOPs and HBM bytes (already divided by the shard), its GEMM shape for the efficiency
 * curve, its local parameters, the activation bytes it stores for backward, and the collective
 * that the sharding implies after it.
 *
 * Activation bytes follow Korthikanti et al. 2022, Sec. 4 (16-bit): per block
 * s*b*h*(34 + 5*a*s/h) without parallelism: LN inputs 2+2, QKV input 2, Q and K 4, softmax output
 * 2as/h, dropout mask as/h and output 2as/h, V 2, projection input 2, dropout mask 1, fc1 input 2,
 * GeLU input 8, fc2 input 8, dropout mask 1. Tensor parallelism divides the terms inside the
 * attention and MLP; sequence parallelism also divides the LN/dropout terms; the 5as/h terms are
 * the ones selective recompute drops. GQA, SwiGLU and MoE change the individual terms. That is
 * Megatron-LM's unfused core attention (plan key attention=unfused). With fused attention
 * (attention=flash, the default) no s x s tensor exists: the block keeps s*b*h*34 + 4*a*s*b bytes
 * (the log-sum-exp, fp32 per head and query) and the 5as/h terms are gone; see flash() below.
 *
 * recompute=op is torchtitan's op-level selective activation checkpointing (torchtitan
 * parallelisms/parallelize_llama.py, _apply_ac_to_transformer_block, Dec 2024): each block runs under
 * torch.utils.checkpoint with a policy that saves the outputs of the ops in _save_list (aten.mm, the
 * SDPA flash/efficient kernels, the functional reduce-scatter) except every second aten.mm of the
 * block, and recomputes everything else from the block input. torchtitan's Llama runs wq, wk, wv,
 * wo, then w1, w3, w2 as separate linears, one aten.mm each, so the saved ones are wq, wv, w1, w2
 * (and wk, wo, w3 recomputed); strata's fused qkv and SwiGLU fc1 split their outputs accordingly
 * (op_sac below). Every other operator is recomputed whole and keeps nothing. In an MoE block the
 * router's gate is forced to recompute (not counted), the routed experts run torch._grouped_mm, which
 * the policy neither counts nor saves, and since Sep 2025 the list holds the functional all-to-all
 * (the dispatch and the combine keep their outputs): moe_sac.
 *
 * kernels=eager is PyTorch's eager mode as torchtitan's Llama runs without torch.compile (torchtitan
 * models/llama/model.py and models/norms.py, Dec 2024; torch's nn.RMSNorm is a composite of ATen
 * ops, not one kernel): each chain below is priced by the bytes its kernels read and write, act
 * bytes per 16-bit element and 4 per fp32 one (opmath), over E elements (eager_* below):
 * - RMSNorm (torchtitan's RMSNorm: _norm(x.float()).type_as(x) * weight): x.float(), pow(2),
 *   mean(-1), + eps, rsqrt, x * rsqrt, type_as, * weight: 8 kernels, (4 act + 28) E bytes forward;
 *   autograd runs the chain back (the weight product's input and weight gradients, the cast, x *
 *   rsqrt's two gradients, the mean's expand into pow's gradient, the two paths into x summed, the
 *   cast): 12 kernels, (8 act + 56) E. It saves the fp32 input (pow and the product) and the 16-bit
 *   normalised output (the weight product): (4 + act) E bytes, where the fused kernel keeps its
 *   act E input (LayerNorm is one ATen kernel in eager mode too: unchanged).
 * - Rotary embedding of q and k: float(), view_as_complex * freqs_cis, view_as_real, type_as: 3
 *   kernels each, (2 act + 16) E bytes each way; it saves nothing large (freqs_cis only).
 * - Grouped-query attention: repeat_kv expands K and V to every query head before SDPA (a copy,
 *   reading kv heads and writing all heads, and the sum back in backward); SDPA then keeps the
 *   expanded K and V for its backward.
 * - SwiGLU: silu(w1 x) then * (w3 x): 2 kernels, 5 act F bytes forward (F elements of the hidden
 *   layer); backward 3 kernels (the product's two gradients, silu's), 8 act F; it saves w1 x, w3 x
 *   and the silu output: 3 act F (fused: 2 act F).
 * - Loss: cross_entropy(logits.float()): the fp32 copy (act + 4), log_softmax (max, sum of exps,
 *   write: 16), nll; backward nll's scatter (4), log_softmax's (16), the cast back (4 + act). It
 *   keeps the fp32 log-softmax (4 per logit, as the fused loss keeps its softmax) and, while it
 *   runs, the 16-bit logits and their fp32 copy (act + 4 per logit: st_op.work_bytes).
 * Residual adds, GELU and LayerNorm are single kernels in eager mode as well. kernels=compile is
 * torchtitan with torch.compile (parallelize_llama.py apply_compile: each TransformerBlock compiled
 * on its own): the blocks fused, except that SDPA, a kernel the compiler calls, still reads K and V
 * copied out by repeat_kv; the final norm and the loss run outside, eager.
 *
 * Collectives (Shoeybi et al. 2019, Fig. 3; Korthikanti et al. 2022, Fig. 5): without sp, the
 * "g" all-reduce after the row-parallel projection and fc2 in forward, the "f" all-reduce before
 * the column-parallel QKV and fc1 in backward; with sp, all-gather / reduce-scatter in their
 * place. Expert parallelism adds the dispatch and combine all-to-alls (Lepikhin et al. 2020).
 * Each collective belongs to the operator it follows in forward; in backward it runs at the same
 * boundary, before that operator's backward (the per-operator lowering, src/lower/lower_ops.c,
 * places them so).
 */
#include "src/core/core.h"

#include <string.h>

typedef struct dims {
    double b, s, sl; /* micro-batch, sequence, local sequence (s / cp) */
    double t;        /* tp */
    double T;        /* tokens on this rank before the tp/sp split: b * s / cp */
    double Tn;       /* tokens of the replicated (norm/dropout) regions: T / tp with sp */
    double act;      /* bytes per activation element */
    int quant;       /* fp8, mxfp8 or nvfp4 training: the linear layers run in that format (quant_cast) */
    double qb;       /* bytes per element of a quantised tensor, its block scales included (st_dtype_bytes) */
    double passes;   /* reads of the 16-bit source per cast (st_dtype_cast_passes) */
    int eager;       /* kernels=eager: PyTorch eager chains for RMSNorm, RoPE, SwiGLU and the loss */
    int eager_tail;  /* the final norm and the loss eager (kernels=eager or compile) */
    int repeat_kv;   /* GQA's K/V copied out before SDPA (torchtitan's model: eager or compiled) */
    double in8;      /* bytes per element of a linear layer's saved input: qb when quantised, else act */
    double h, a_l, kv_l, d, f;
    double gacc; /* bytes per parameter of one gradient accumulation pass */
} dims;

static void dims_init(dims *x, const st_model *m, const st_shard *s) {
    x->b = (double)s->mbs;
    x->s = (double)s->seq;
    x->sl = x->s / s->cp;
    x->t = s->tp;
    x->T = x->b * x->sl;
    x->Tn = s->sp && s->tp > 1 ? x->T / x->t : x->T;
    /* fp8, mxfp8 and nvfp4 training keep activations in 16 bits between GEMMs (Transformer Engine) */
    x->act = s->dtype == ST_DT_FP32 || s->dtype == ST_DT_TF32 ? 4 : 2;
    x->quant = st_dtype_quantised(s->dtype);
    x->qb = st_dtype_bytes(s->dtype);
    x->passes = st_dtype_cast_passes(s->dtype);
    x->eager = s->kernels == ST_KERN_EAGER;
    x->eager_tail = s->kernels == ST_KERN_EAGER || s->kernels == ST_KERN_COMPILE;
    x->repeat_kv = x->eager_tail;
    x->in8 = x->quant ? x->qb : x->act;
    x->h = (double)m->hidden;
    x->a_l = (double)m->heads / s->tp;
    x->kv_l = (double)m->kv_heads / s->tp;
    x->d = (double)m->head_dim;
    x->f = (double)m->ffn;
    /* backward adds each weight gradient into the accumulator: read the 16-bit gradient, read and
     * write the accumulator (Megatron-LM's main_grad hook; PyTorch's AccumulateGrad for 16-bit) */
    x->gacc = 2 + 2 * (s->grad_bytes > 0 ? s->grad_bytes : 4);
}

static st_op *push(st_op *ops, int *n, int cap, const char *name, st_opclass cls) {
    if (*n >= cap) return NULL;
    st_op *o = &ops[(*n)++];
    memset(o, 0, sizeof *o);
    o->name = name;
    o->cls = cls;
    o->kernels_fwd = 1;
    o->kernels_bwd = 1;
    o->coll_group = ST_GRP_TP;
    o->op_recompute = 1; /* recompute=op re-runs what its policy does not save */
    return o;
}

/* recompute=op on an op that stands for `nmm` consecutive aten.mm calls of torchtitan's block with
 * outputs of out[i] elements each (same k, so FLOPs in proportion): the policy saves the output of
 * the odd-numbered ones (*mm counts the block's calls so far) and recomputes the even ones. */
static void op_sac(st_op *o, const dims *x, int *mm, int nmm, const double *out) {
    double saved = 0, all = 0;
    for (int i = 0; i < nmm; i++) {
        all += out[i];
        if (++*mm % 2) saved += out[i];
    }
    o->op_saved_bytes = saved * x->act;
    o->op_recompute = all > 0 ? 1 - saved / all : 0;
}

/* GEMM [m x k] x [k x n]: backward computes the input and the weight gradients (2x). */
static void gemm(st_op *o, const dims *x, double m, double n, double k, double batch) {
    o->m = m;
    o->n = n;
    o->k = k;
    o->batch = batch;
    o->fwd_flops = 2 * m * n * k * batch;
    o->bwd_flops = 2 * o->fwd_flops;
    double wbytes = k * n * batch * x->act; /* one weight (or second operand) per batch entry */
    o->fwd_bytes = (m * k * batch + m * n * batch) * x->act + wbytes;
    o->bwd_bytes = 2 * o->fwd_bytes + wbytes;
    o->kernels_bwd = 2;
    /* the gradient of the output as this rank's GEMM consumes it: column-parallel outputs split by tp (n
     * local), a row-parallel one (proj, fc2) with sp the all-gathered [T, h] (the backward's all-gather
     * before it, tp_coll_after); 16-bit under fp8 too, as gradients flow between layers (dims_init) */
    o->dy_bytes = m * n * batch * x->act;
}

/* A memory-bound op reading `in` and writing `out` elements (+ extra bytes). Backward reads the
 * output gradient and what it saved, and writes the input gradient: about 1.5x the traffic. */
static void stream(st_op *o, const dims *x, double in, double out, double extra_bytes) {
    o->fwd_bytes = (in + out) * x->act + extra_bytes;
    o->bwd_bytes = 1.5 * o->fwd_bytes;
    o->fwd_flops = 4 * (in > out ? in : out); /* a handful of flops per element */
    o->bwd_flops = 2 * o->fwd_flops;
}

/* The tp collective of Megatron's f/g operators on a [Tfull x h] activation. `q_in`: what it
 * gathers feeds quantised linear layers (quant_cast), whose input Transformer Engine quantises before
 * the sequence-parallel all-gather (transformer_engine/pytorch/module/linear.py and
 * layernorm_linear.py: the input cast, then gather_along_first_dim; TE's MXFP8 and NVFP4 docs,
 * "Quantized all-gather"), so the forward's gather moves qb bytes per element (1 for fp8, the
 * block scales on top for mxfp8 and nvfp4); the backward's reduce-scatter of the input gradient stays
 * 16-bit. The output layer and the MoE router take 16-bit inputs (quant_cast's comment). */
static void tp_coll_before(st_op *o, const st_shard *s, const dims *x, int q_in) {
    if (s->tp <= 1) return;
    o->coll_group = ST_GRP_TP;
    o->coll_bytes = x->T * x->h * x->act;
    if (s->sp) {
        o->fwd_coll = ST_COLL_ALLGATHER;
        o->bwd_coll = ST_COLL_REDUCESCATTER;
        if (q_in && x->quant) o->fwd_coll_bytes = x->T * x->h * x->qb;
    } else {
        o->bwd_coll = ST_COLL_ALLREDUCE;
    }
}

static void tp_coll_after(st_op *o, const st_shard *s, const dims *x) {
    if (s->tp <= 1) return;
    o->coll_group = ST_GRP_TP;
    o->coll_bytes = x->T * x->h * x->act;
    if (s->sp) {
        o->fwd_coll = ST_COLL_REDUCESCATTER;
        o->bwd_coll = ST_COLL_ALLGATHER;
    } else {
        o->fwd_coll = ST_COLL_ALLREDUCE;
    }
}

static void norm(st_op *o, const st_model *m, const st_shard *s, const dims *x, int eager) {
    double e = x->Tn * x->h;
    stream(o, x, e, e, 0);
    o->params = (m->norm == ST_NORM_LAYERNORM ? 2 : 1) * x->h;
    o->saved_bytes = o->input_bytes = e * x->act;
    o->splits = s->sp ? ST_SPLIT_SP : 0;
    if (eager && m->norm == ST_NORM_RMSNORM) {
        /* torch's composite RMSNorm (file comment, "kernels=eager") */
        o->fwd_bytes = e * (4 * x->act + 28);
        o->bwd_bytes = e * (8 * x->act + 56);
        o->kernels_fwd = 8;
        o->kernels_bwd = 12;
        o->saved_bytes = e * (4 + x->act);
    }
}

/* dropout (optional) + residual add, fused as Megatron's bias_dropout_add */
static void residual(st_op *o, const st_model *m, const st_shard *s, const dims *x) {
    double mask = m->dropout ? x->Tn * x->h : 0; /* 1-byte mask */
    stream(o, x, 2 * x->Tn * x->h, x->Tn * x->h, mask);
    /* bias-dropout-add: backward also reduces the output gradient into the preceding bias */
    if (m->bias) o->bwd_bytes += x->Tn * x->h * x->act;
    o->saved_bytes = mask;
    o->splits = s->sp ? ST_SPLIT_SP : 0;
}

/* Fused attention (FlashAttention-2, Dao 2023; FlashAttention-3, Shah et al. 2024) of the local
 * queries over all keys: QK^T and PV, 2 x 2 x b x heads x s_q x s_kv x d FLOPs (Dao 2023, Sec. 4.1).
 * The models strata knows are causal decoders: the kernel skips the key blocks wholly above the
 * diagonal (FA2 Sec. 3.1.1) and masks the diagonal ones, about half of the work; the FLOPs here are
 * half the full count, the convention of the FA2/FA3 benchmarks whose rates cost/compute.c uses
 * (the diagonal blocks' extra work is inside those measured rates). With load-balanced context
 * parallelism every rank does 1/cp of the causal work. Backward 2.5x forward: five matmuls against
 * two, S and P recomputed inside the kernel (Dao 2023, Sec. 4.1). HBM: forward reads q, k, v and
 * writes o and the log-sum-exp (fp32 per query row and head); backward reads q, k, v, o, do and the
 * LSE and writes dq, dk, dv. The two small backward helpers (the rowsum of do x o, the dq
 * conversion) are inside the measured backward rate; one launch each way. Saved for backward:
 * q, k, v (the caller adds them) and the LSE; o is the projection's saved input already. Dropout
 * keeps no mask: the kernel regenerates it from the Philox seed. Selective recompute
 * (Megatron-Core checkpoints the core attention whatever its backend: attention.py,
 * checkpoint_core_attention) re-runs the kernel's forward and drops only the LSE.
 * Heads whose query-key and value dimensions differ (latent attention: dqk = qk_nope + qk_rope,
 * dv = v_head_dim) do 2 x pairs x (dqk + dv) FLOPs a head, the same count with d = (dqk + dv) / 2.
 * A causal window of w keys over s queries has s w - w^2 / 2 query-key pairs instead of s^2 / 2
 * (w < s); the kernel (FA2's window_size, Mistral and Gemma 2 use it) skips the blocks outside. */
static void flash(st_op *o, const st_shard *s, const dims *x, double dqk, double dv, double kv_l, double window) {
    double d = (dqk + dv) / 2;
    double q = x->T * x->a_l * d, kv = x->b * x->s * kv_l * d; /* elements; keys over all of s */
    double lse = x->b * x->a_l * x->sl * 4;
    o->m = x->sl;
    o->n = x->s;
    o->k = d;
    o->batch = x->b * x->a_l;
    o->causal = 1;
    o->kernel = s->attention;
    o->fwd_flops = 4 * o->batch * o->m * o->n * o->k / 2;
    if (window > 0 && window < x->s) {
        o->n = window;
        o->fwd_flops = 4 * o->batch * (x->s * window - window * window / 2) / s->cp * o->k;
    }
    o->bwd_flops = 2.5 * o->fwd_flops;
    o->fwd_bytes = (2 * q + 2 * kv) * x->act + lse;
    o->bwd_bytes = (4 * q + 4 * kv) * x->act + lse;
    o->saved_bytes = lse;
    o->selective = 1;
    /* recompute=op: SDPA is on the save list; its outputs are o and the LSE */
    o->op_saved_bytes = q * x->act + lse;
    o->op_recompute = 0;
    o->splits = ST_SPLIT_TP | ST_SPLIT_CP;
    if (s->cp <= 1) return;
    /* the kernels context parallelism runs instead (file comment, "Context parallelism"); the
     * FLOPs and bytes stay this rank's share. m is the length the rate is looked up at. */
    if (s->cp_comm == ST_CP_P2P) {
        o->ring_steps = s->cp; /* the causal step on the rank's own blocks (m = s / cp), then cp - 1 */
        o->kernels_fwd = o->kernels_bwd = s->cp;
    } else if (s->cp_comm == ST_CP_ALLGATHER) {
        /* two kernels, one per local query chunk (s / 2cp queries), against the keys up to its end:
         * (i + 1) and (2cp - i) chunks, on average s (2cp + 1) / 4cp keys, all but the last chunk
         * unmasked */
        o->m = x->s * (2 * s->cp + 1) / (4 * s->cp);
        o->causal = 0;
        o->kernels_fwd = o->kernels_bwd = 2;
    } else {
        o->m = x->s; /* a2a: the whole sequence, heads / cp of them */
        o->batch = x->b * x->a_l / s->cp;
    }
}

/* Context parallelism (cp > 1; Megatron-LM --cp-comm-type, Transformer Engine's cp_comm_type, in
 * transformer_engine/pytorch/attention/dot_product_attention/context_parallel.py). The sequence is
 * cut into 2cp chunks and rank r holds chunks r and 2cp - 1 - r (load balance under the causal
 * mask). kvb below: the rank's own K and V, b x s/cp x 2 x kv heads/tp x d.
 * - p2p (AttnFuncWithCPAndKVP2P, the default): K/V blocks travel around the cp ring, one
 *   send/recv per step beside the attention on the block in hand: cp steps each way, each 1/cp of
 *   the rank's causal work (step 0 its own blocks, causal; the others one half block against the
 *   other's full one, unmasked). Forward: cp - 1 transfers of kvb, beside steps 0 .. cp - 2;
 *   backward: kvb beside the first step, K/V and dK/dV (2 kvb) beside the next cp - 2, dK/dV
 *   (kvb) beside the last (causal) one. What the ring leaves exposed is priced in
 *   cost/estimate.c (cp_ring); here the exchange is the all-gather / reduce-scatter of the
 *   sequence's K/V that it amounts to. Memory: the forward keeps every received block in its
 *   p2p_comm_buffers list until it returns (cp kvb; it saves the last one for backward), the
 *   backward two buffers of K/V and dK/dV (4 kvb).
 * - all_gather (AttnFuncWithCPAndKVAllGather: "KV all-gather between CP ranks is exposed"; Llama 3,
 *   Dubey et al. 2024, Sec. 3.3.2): K and V all-gathered before the forward, and again before the
 *   backward (only the local ones are saved), dK/dV reduce-scattered after it. Memory: the
 *   sequence's K/V (cp kvb) in forward, and with its dK/dV (2 cp kvb) in backward; the reordering
 *   copies (index_select) are left out.
 * - a2a (AttnFuncWithCPAndQKVOA2A, flash_attn_a2a_communicate; DeepSpeed Ulysses, Jacobs et al. 2023):
 *   all-to-all of q, k, v before attention (sequence split -> head split) and of its output after
 *   it, the gradients alike in backward; the attention runs over all of s on heads / cp. Memory:
 *   one copy of q, k, v while the all-to-all runs. */
static void cp_exchange(st_op *o, const st_shard *s, const dims *x, double q_out, double kv_out) {
    double kvb = x->T * 2 * kv_out / x->t * x->act;
    o->coll_group = ST_GRP_CP;
    if (s->cp_comm == ST_CP_A2A) {
        o->coll_bytes = x->T * (q_out + 2 * kv_out) / x->t * x->act;
        o->fwd_coll = o->bwd_coll = ST_COLL_ALLTOALL;
        o->work_bytes = o->coll_bytes;
        return;
    }
    o->coll_bytes = kvb * s->cp; /* the sequence's K/V: the gathered output */
    o->fwd_coll = ST_COLL_ALLGATHER;
    o->bwd_coll = ST_COLL_REDUCESCATTER;
    o->work_bytes = s->cp_comm == ST_CP_P2P ? (s->cp > 4 ? s->cp : 4) * kvb : 2 * s->cp * kvb;
}

/* The collective context parallelism adds at the core attention's last operator (cp_exchange):
 * all_gather's second K/V all-gather before the backward; a2a's output all-to-all (and its
 * gradient's before the backward). */
static void cp_core(st_op *o, const st_shard *s, const dims *x, double q_out, double kv_out) {
    if (s->cp_comm == ST_CP_P2P) return;
    o->coll_group = ST_GRP_CP;
    if (s->cp_comm == ST_CP_ALLGATHER) {
        o->coll_bytes = x->T * 2 * kv_out / x->t * x->act * s->cp;
        o->bwd_coll = ST_COLL_ALLGATHER;
    } else {
        o->coll_bytes = x->T * q_out / x->t * x->act;
        o->fwd_coll = o->bwd_coll = ST_COLL_ALLTOALL;
    }
}

/* fp8 training as Transformer Engine runs it (Megatron-LM --fp8-format hybrid: e4m3 forward, e5m2
 * gradients; TE's DelayedScaling recipe): the blocks' linear layers (qkv, proj, fc1, fc2 and the
 * experts' fc1/fc2: TE's Linear, LayerNormLinear and GroupedLinear) run their forward, dgrad and
 * wgrad GEMMs in fp8 (st_op.quant). The output layer stays bf16: Megatron-Core builds it as its own
 * tensor_parallel.ColumnParallelLinear, not a TE module (megatron/core/models/gpt/gpt_model.py),
 * and so does the MoE router (a plain linear in router.py); attention stays bf16 (TE's fp8_dpa is
 * off by default). Around each fp8 GEMM, memory-bound kernels this op carries
 * (transformer_engine/pytorch/module/linear.py, _Linear.forward and backward):
 *   forward: the input quantised with its transpose for wgrad (TE's fused cast_transpose, which
 *     records the amax as it goes): read `act` bytes, write 1 + 1 per input element;
 *   backward: the output gradient likewise (grad_output_preprocess: cast_transpose to e5m2).
 * The weights' fp8 copies (with their transposes) are made once per iteration, on the first
 * micro-batch (TE's weight workspace, is_first_microbatch, which Megatron-Core passes), priced
 * with the optimizer step (cost/estimate.c) and held in memory (cost/memory.c). TE saves the
 * quantised input for backward: 1 byte per element (x->in8) instead of act. With sequence
 * parallelism TE quantises the shard and gathers fp8 (tp_coll_before's q_in). What stays 16-bit
 * on the wire: the reduce-scatters and all-reduces of linear outputs and input gradients, the
 * output layer's gather, the MoE dispatch, pipeline sends and the data-parallel gradients.
 *
 * The block-scaled recipes (TE's MXFP8BlockScaling and NVFP4BlockScaling, Blackwell only) run the
 * same GEMMs (forward, dgrad, wgrad of the same layers) and keep the same layers in bf16; what
 * differs is the bytes (st_dtype_bytes):
 *   mxfp8: e4m3 everywhere with an E8M0 scale per 32 values. A scale runs along the GEMM's inner
 *     dimension, so the rowwise copy (forward, dgrad) and the columnwise one (wgrad) are two
 *     quantisations of the 16-bit source, not a transpose (TE docs, "MXFP8: Handling transposes"):
 *     one pass reads act and writes 2 * (1 + 1/32) per element;
 *   nvfp4 (arXiv 2509.25149 Sec. 4; TE docs "NVFP4"): e2m1 with an E4M3 scale per 16 values and an
 *     fp32 scale per tensor, which needs the tensor's amax before any value is cast: a second read
 *     of the source (st_dtype_cast_passes). Weights take 16x16 blocks (2D scaling), activations
 *     and gradients 1x16; the wgrad operands pass a 16x16 random Hadamard transform and gradients
 *     are rounded stochastically: both inside the cast kernel, no bytes of their own.
 * The paper also keeps a few first and last blocks in bf16 (Megatron-LM's --first-last-layers-bf16);
 * that is a choice of the run, not of the recipe, and strata prices every block in nvfp4. */
static void quant_cast(st_op *o, const dims *x, double in_elems, double out_elems, unsigned splits) {
    o->fwd_bytes = in_elems * (x->act * x->passes + 2 * x->qb);
    o->bwd_bytes = out_elems * (x->act * x->passes + 2 * x->qb);
    o->splits = splits;
}

/* The operator list being built: ops[0 .. n) of cap, and the block's aten.mm calls so far (op_sac). */
typedef struct oplist {
    st_op *ops;
    int n, cap, mm;
} oplist;

#define PUSH(name, cls)                                                                            \
    do {                                                                                           \
        if (!(o = push(L->ops, &L->n, L->cap, name, cls))) return ST_EINTERNAL;                    \
    } while (0)

/* A linear layer of T tokens, k inputs and n outputs (this rank's), cast first when quantised. The
 * caller sets params, saved bytes and the split. */
static st_op *linear(oplist *L, const char *cast_name, const char *name, const dims *x, double T, double n, double k,
                     unsigned splits) {
    st_op *o;
    if (x->quant) {
        if (!(o = push(L->ops, &L->n, L->cap, cast_name, ST_OPC_ELEMWISE))) return NULL;
        quant_cast(o, x, T * k, T * n, splits);
    }
    if (!(o = push(L->ops, &L->n, L->cap, name, ST_OPC_GEMM))) return NULL;
    gemm(o, x, T, n, k, 1);
    o->quant = x->quant;
    o->splits = splits;
    return o;
}

/* A low-rank projection: down to `down_n` outputs (replicated on the tp ranks), a norm over the
 * first `rank` of them, up to `up_n` (split by tp); `down_saved` the bytes the down-projection keeps. */
static int lora_ops(oplist *L, const dims *x, const char *const names[5], double down_n, double rank, double up_n,
                    double down_saved) {
    st_op *o;
    if (!(o = linear(L, names[0], names[1], x, x->T, down_n, x->h, 0))) return ST_EINTERNAL;
    o->params = x->h * down_n;
    o->saved_bytes = down_saved;
    op_sac(o, x, &L->mm, 1, (double[]){x->T * down_n});
    PUSH(names[2], ST_OPC_NORM);
    stream(o, x, x->T * rank, x->T * rank, 0);
    o->params = rank;
    o->saved_bytes = x->T * rank * x->act;
    if (!(o = linear(L, names[3], names[4], x, x->T, up_n, rank, ST_SPLIT_TP))) return ST_EINTERNAL;
    o->params = rank * up_n;
    o->saved_bytes = x->T * rank * x->in8;
    op_sac(o, x, &L->mm, 1, (double[]){x->T * up_n});
    return 0;
}

/* Multi-head latent attention's projections (DeepSeek-V2, Sec. 2.1.2-2.1.3; HF modeling_deepseek):
 * queries through a low-rank bottleneck (q_lora_rank; 0 = one projection), keys and values from a
 * shared latent of kv_lora_rank plus one rotary key of qk_rope_dim shared by the heads; up-projected
 * per head to qk_nope (+ qk_rope from the queries) and v_head_dim. The down-projections are small
 * and replicated on the tp ranks (Megatron-Core's MLA builds them "duplicated"); the up-projections
 * and the output projection are split by heads like Megatron's column/row-parallel linears. Each
 * projection is one aten.mm in torchtitan's DeepSeek-V3 (models/deepseek_v3/model/model.py: wq, or
 * wq_a then wq_b; wkv_a, wkv_b; then wo), counted in recompute=op's every-second rule in that order
 * (op_sac): with q_lora_rank wq_a's, wkv_a's and wo's outputs are saved, without it wq's and wkv_b's. */
static int mla_ops(oplist *L, const st_model *m, const dims *x) {
    st_op *o;
    double ql = (double)m->q_lora_rank, kvl = (double)m->kv_lora_rank, dr = (double)m->qk_rope_dim;
    double dqk = (double)(m->qk_nope_dim + m->qk_rope_dim), dkv = (double)(m->qk_nope_dim + m->v_head_dim);
    static const char *const q_names[] = {"q_down_cast", "q_down", "q_norm", "q_up_cast", "q_up"};
    static const char *const kv_names[] = {"kv_down_cast", "kv_down", "kv_norm", "kv_up_cast", "kv_up"};
    int rc;
    if (ql > 0) {
        if ((rc = lora_ops(L, x, q_names, ql, ql, x->a_l * dqk, x->T * x->h * x->in8))) return rc;
    } else {
        if (!(o = linear(L, "q_proj_cast", "q_proj", x, x->T, x->a_l * dqk, x->h, ST_SPLIT_TP))) return ST_EINTERNAL;
        o->params = x->h * x->a_l * dqk;
        o->saved_bytes = x->Tn * x->h * x->in8;
        op_sac(o, x, &L->mm, 1, (double[]){x->T * x->a_l * dqk});
    }
    /* the keys' down-projection reads q_down's input (saved once) */
    if ((rc = lora_ops(L, x, kv_names, kvl + dr, kvl, x->a_l * dkv, ql > 0 ? 0 : x->T * x->h * x->in8))) return rc;
    PUSH("rope", ST_OPC_ELEMWISE); /* the queries' rotary part and the shared rotary key */
    stream(o, x, x->T * (x->a_l + 1) * dr, x->T * (x->a_l + 1) * dr, 0);
    o->splits = ST_SPLIT_TP;
    return 0;
}

/* Query and key norms (Qwen3, OLMo 2, Gemma 3: RMSNorm of each head's q and k, or of the whole
 * projections) between the projection and rope: memory-bound, their input saved. */
static int qk_norm_op(oplist *L, const st_model *m, const dims *x, double q_out, double kv_out) {
    st_op *o;
    double e = x->T * (q_out + kv_out) / x->t;
    PUSH("qk_norm", ST_OPC_NORM);
    stream(o, x, e, e, 0);
    o->params = m->qk_norm == 1 ? 2 * x->d : (q_out + kv_out) / x->t;
    o->saved_bytes = e * x->act;
    o->splits = ST_SPLIT_TP;
    return 0;
}

/* DeepSeek Sparse Attention's lightning indexer (DeepSeek-V3.2 report, Sec. 2.1; its inference/model.py
 * Indexer, transformers' DeepseekV32Indexer, which GLM-5's glm_moe_dsa reuses): per query, index_heads
 * heads of index_head_dim (wq_b from the query latent, else from the block input), one key of
 * index_head_dim per token (wk, then a LayerNorm with weight and bias), per-head weights (weights_proj,
 * h -> index_heads); the logits sum_j w_j relu(q_j . k) over every earlier key, then the index_topk
 * best keys per query. The logits kernel (DeepGEMM's fp8_mqa_logits) does 2 index_heads x index_head_dim
 * FLOPs per query-key pair of the causal half (s^2 / 2 pairs, 1/cp of them per rank under load-balanced
 * cp) and writes fp32 logits; backward (the indexer's KL loss against the main attention's
 * distribution, Sec. 2.1.1) twice the forward. The indexer runs whole on every tp rank, as MLA's
 * down-projections do: its heads are summed before the top-k, so a head split would all-reduce the
 * s x s logits. Under cp its keys are all-gathered (their gradients reduce-scattered) beside the main
 * K/V. It keeps its q, keys and weights and the chosen indices (int32) for backward, not the logits. */
static int indexer_ops(oplist *L, const st_model *m, const st_shard *s, const dims *x) {
    st_op *o;
    double HI = (double)m->index_heads, dI = (double)m->index_head_dim, k = (double)m->index_topk;
    double in = m->q_lora_rank > 0 ? (double)m->q_lora_rank : x->h;
    double pairs = x->b * x->s * x->s / 2 / s->cp; /* this rank's causal query-key pairs */

    if (!(o = linear(L, "index_q_cast", "index_q", x, x->T, HI * dI, in, 0))) return ST_EINTERNAL;
    o->params = in * HI * dI; /* its input: the query latent (or the block input), kept by q_up (q_down) */
    if (!(o = linear(L, "index_k_cast", "index_k", x, x->T, dI, x->h, 0))) return ST_EINTERNAL;
    o->params = x->h * dI;
    PUSH("index_k_norm", ST_OPC_NORM);
    stream(o, x, x->T * dI, x->T * dI, 0);
    o->params = 2 * dI;
    o->saved_bytes = x->T * dI * x->act;
    if (s->cp > 1) {
        o->coll_group = ST_GRP_CP;
        o->coll_bytes = x->T * dI * x->act * s->cp;
        o->fwd_coll = ST_COLL_ALLGATHER;
        o->bwd_coll = ST_COLL_REDUCESCATTER;
    }
    if (!(o = linear(L, "index_w_cast", "index_w", x, x->T, HI, x->h, 0))) return ST_EINTERNAL;
    o->params = x->h * HI;
    o->saved_bytes = x->T * HI * 4; /* fp32 weights */

    PUSH("index_logits", ST_OPC_BGEMM);
    gemm(o, x, x->sl, x->s, dI, x->b * HI);
    o->fwd_flops = 2 * HI * dI * pairs;
    o->bwd_flops = 2 * o->fwd_flops;
    o->fwd_bytes = x->T * (HI * dI + dI) * x->act + pairs * 4;
    o->bwd_bytes = 2 * o->fwd_bytes;
    o->kernels_bwd = 1;
    o->saved_bytes = x->T * HI * dI * x->act; /* q (the keys: index_k_norm's) */
    o->splits = ST_SPLIT_CP;

    PUSH("index_topk", ST_OPC_ELEMWISE); /* reads the logits, writes the indices; no backward */
    o->fwd_bytes = pairs * 4 + x->T * k * 4;
    o->fwd_flops = pairs;
    o->kernels_bwd = 0;
    o->saved_bytes = x->T * k * 4;
    o->splits = ST_SPLIT_CP;
    return 0;
}

/* The attention half of a block: norm, projections, core attention, output projection, residual. */
static int attention_ops(oplist *L, const st_model *m, const st_shard *s, const dims *x_, const st_layer *kind,
                         int parallel) {
    dims xv = *x_, *x = &xv;
    st_op *o, *core_last = NULL; /* core_last: the core attention's last operator */
    int mla = m->kv_lora_rank > 0;
    double window = (double)kind->window;
    x->d = (double)kind->head_dim, x->kv_l = (double)kind->kv_heads / s->tp; /* Gemma 4's global blocks differ */
    double dqk = mla ? (double)(m->qk_nope_dim + m->qk_rope_dim) : x->d, dv = mla ? (double)m->v_head_dim : x->d;
    double q_out = (double)m->heads * x->d, kv_out = (double)kind->kv_heads * x->d, v_out = q_out;
    if (mla) { /* every head has its own key and value after the up-projection */
        x->kv_l = x->a_l;
        q_out = (double)m->heads * dqk, kv_out = (double)m->heads * (dqk + dv) / 2, v_out = (double)m->heads * dv;
    }
    /* the projection's outputs: q (twice with an output gate), k, and v unless keys serve as values */
    double gate_out = m->attn_out_gate ? q_out : 0, nkv = kind->k_eq_v ? 1 : 2;
    double qkv_l = (q_out + gate_out + nkv * kv_out) / x->t;
    double bias = m->bias ? 1 : 0;

    PUSH("ln1", ST_OPC_NORM);
    norm(o, m, s, x, x->eager);
    tp_coll_before(o, s, x, 1);

    if (mla) {
        int rc = mla_ops(L, m, x);
        if (rc) return rc;
        o = &L->ops[L->n - 1];
        if (m->index_topk > 0) {
            if ((rc = indexer_ops(L, m, s, x))) return rc;
            /* the main attention sees the index_topk keys the indexer picked: a window's count of
             * query-key pairs, s k - k^2 / 2 (query i sees min(i, k) keys) */
            if (window == 0 || (double)m->index_topk < window) window = (double)m->index_topk;
        }
    } else {
        if (!(o = linear(L, "qkv_cast", "qkv", x, x->T, qkv_l, x->h, ST_SPLIT_TP))) return ST_EINTERNAL;
        o->params = x->h * qkv_l + (m->bias || m->qkv_bias ? qkv_l : 0);
        o->saved_bytes = x->Tn * x->h * x->in8; /* sp ranks keep their shard and re-gather */
        op_sac(o, x, &L->mm, 3,
               (double[]){x->T * (q_out + gate_out) / x->t, x->T * kv_out / x->t,
                          x->T * (nkv - 1) * kv_out / x->t}); /* wq wk wv */
        if (m->bias || m->qkv_bias) {
            /* the linear's bias: broadcast into the output before the GEMM, its gradient reduced */
            PUSH("qkv_bias", ST_OPC_ELEMWISE);
            stream(o, x, 0, x->T * qkv_l, 0);
            o->bwd_bytes = x->T * qkv_l * x->act;
            o->splits = ST_SPLIT_TP;
        }
        if (m->qk_norm) {
            int rc = qk_norm_op(L, m, x, q_out, kv_out);
            if (rc) return rc;
        }
        if (m->position == ST_POS_ROPE) {
            PUSH("rope", ST_OPC_ELEMWISE);
            double e = x->T * (q_out + kv_out) / x->t;
            stream(o, x, e, e, 0);
            o->splits = ST_SPLIT_TP;
            if (x->eager) {
                /* complex multiply in fp32 (file comment, "kernels=eager") */
                o->fwd_bytes = o->bwd_bytes = e * (2 * x->act + 16);
                o->kernels_fwd = o->kernels_bwd = 6;
            }
        }
        if (x->repeat_kv && st_attention_fused(s->attention) && m->kv_heads < m->heads) {
            /* repeat_kv: K and V copied out to every query head, summed back in backward; SDPA keeps
             * the copies, beyond the kv heads' K and V the attention operator counts */
            PUSH("repeat_kv", ST_OPC_ELEMWISE);
            double e = x->T * (kv_out + q_out) / x->t;
            o->fwd_bytes = o->bwd_bytes = 2 * e * x->act;
            o->fwd_flops = 0;
            o->bwd_flops = 2 * x->T * q_out / x->t;
            o->kernels_fwd = o->kernels_bwd = 2;
            o->saved_bytes = 2 * x->T * (q_out - kv_out) / x->t * x->act;
            o->splits = ST_SPLIT_TP | ST_SPLIT_CP;
        }
    }

    /* Core attention over the full key length; with cp the keys and values of the other ranks
     * arrive before it and their gradients go back after its backward (cp_exchange): the
     * collective of the operator that makes them (qkv, its bias or rope), which it follows. */
    if (s->cp > 1) cp_exchange(o, s, x, q_out, kv_out);
    double qk_saved = x->T * (q_out + kv_out) / x->t * x->act, v_saved = x->T * (nkv - 1) * kv_out / x->t * x->act;
    if (st_attention_fused(s->attention)) {
        PUSH("attention", ST_OPC_ATTENTION);
        flash(o, s, x, dqk, dv, x->kv_l, window);
        core_last = o;
        o->saved_bytes += qk_saved + v_saved;
        /* the kernel's backward reads its output o in 16 bits; without fp8 that is the projection's
         * saved input, under fp8 the projection keeps an fp8 copy and the attention keeps o */
        if (x->quant) o->saved_bytes += x->T * v_out / x->t * x->act;
        o->ckpt_kept_bytes = qk_saved + v_saved;
        if (m->attn_sinks) o->params = x->a_l; /* gpt-oss: one sink logit per head */
    } else {
        /* Megatron-LM's unfused core attention: the s x s scores materialised */
        double E = x->b * x->a_l * x->sl * x->s; /* score elements */
        PUSH("scores", ST_OPC_BGEMM);
        gemm(o, x, x->sl, x->s, dqk, x->b * x->a_l);
        o->saved_bytes = qk_saved; /* Q and K */
        o->splits = ST_SPLIT_TP | ST_SPLIT_CP;
        if (m->attn_sinks) o->params = x->a_l;

        PUSH("softmax", ST_OPC_SOFTMAX);
        stream(o, x, E, E, 0);
        o->saved_bytes = E * x->act;
        o->selective = 1;
        o->splits = ST_SPLIT_TP | ST_SPLIT_CP;

        if (m->dropout) {
            PUSH("attn_dropout", ST_OPC_ELEMWISE);
            stream(o, x, E, E, E);
            o->saved_bytes = E * (1 + x->act); /* mask + output */
            o->selective = 1;
            o->splits = ST_SPLIT_TP | ST_SPLIT_CP;
        }

        PUSH("context", ST_OPC_BGEMM);
        gemm(o, x, x->sl, dv, x->s, x->b * x->a_l);
        o->saved_bytes = v_saved; /* V */
        o->splits = ST_SPLIT_TP | ST_SPLIT_CP;
        core_last = o;

        /* [b*heads, s, d] -> [s, b, heads*d]: the contiguous() copy before the projection (the
         * fused kernels read and write the [s, b, heads*d] layout itself: Transformer Engine's
         * sbhd format) */
        PUSH("context_transpose", ST_OPC_ELEMWISE);
        stream(o, x, x->T * v_out / x->t, x->T * v_out / x->t, 0);
        o->splits = ST_SPLIT_TP;
    }

    if (s->cp > 1) cp_core(core_last, s, x, q_out, kv_out);

    if (m->attn_out_gate) {
        /* Qwen3-Next's gated attention: o times sigmoid(gate), the gate from the query projection */
        PUSH("out_gate", ST_OPC_ELEMWISE);
        stream(o, x, 2 * x->T * v_out / x->t, x->T * v_out / x->t, 0);
        o->saved_bytes = 2 * x->T * v_out / x->t * x->act; /* o and the gate */
        o->splits = ST_SPLIT_TP | ST_SPLIT_CP;
    }

    if (!(o = linear(L, "proj_cast", "proj", x, x->T, x->h, v_out / x->t, ST_SPLIT_TP))) return ST_EINTERNAL;
    o->params = v_out / x->t * x->h + bias * x->h;
    o->saved_bytes = x->T * v_out / x->t * x->in8;
    op_sac(o, x, &L->mm, 1, (double[]){x->T * x->h}); /* wo */
    tp_coll_after(o, s, x);
    if (s->sp && s->tp > 1) o->op_saved_bytes += x->Tn * x->h * x->act; /* the reduce-scatter's output: saved */

    if (parallel) return 0; /* one residual add after the MLP takes both branches */
    PUSH("attn_residual", ST_OPC_ELEMWISE);
    residual(o, m, s, x);
    return 0;
}

/* A recurrent mixer as one rank runs it (recurrent_ops): in_proj from h to in_l outputs, a depthwise
 * causal conv1d of width `width` over `conv` channels, a chunked scan, a gated RMSNorm over `di` and
 * out_proj back to h. Heads split over tp like attention's (in_proj column-, out_proj row-parallel),
 * so the tp collectives are attention's. The scan reads the conv's output and `gates` more elements
 * a token, writes di, keeps `state_bytes` of fp32 chunk states for backward (and its inputs), and is
 * priced as a batched GEMM of its intra-chunk shape (chunk x n by k, `batch` of them), where its
 * FLOPs are; backward twice the forward. Under cp each rank scans its own tokens: the state passed
 * between cp ranks is left out (as for every recurrent mixer here). */
typedef struct recurrent {
    const char *scan_name;
    double in_l, conv, width, conv_params, gates, di, norm_params;
    double chunk, n, k, batch, scan_flops, state_bytes;
    int kernels_fwd, kernels_bwd;
} recurrent;

static int recurrent_ops(oplist *L, const st_model *m, const st_shard *s, const dims *x, const recurrent *r) {
    st_op *o;
    double bias = m->bias ? 1 : 0;

    PUSH("ln1", ST_OPC_NORM);
    norm(o, m, s, x, x->eager);
    tp_coll_before(o, s, x, 1);
    if (!(o = linear(L, "in_proj_cast", "in_proj", x, x->T, r->in_l, x->h, ST_SPLIT_TP))) return ST_EINTERNAL;
    o->params = x->h * r->in_l + bias * r->in_l;
    o->saved_bytes = x->Tn * x->h * x->in8;
    op_sac(o, x, &L->mm, 1, (double[]){x->T * r->in_l});

    PUSH("conv1d", ST_OPC_ELEMWISE);
    stream(o, x, x->T * r->conv, x->T * r->conv, 0);
    o->fwd_flops = 2 * r->width * x->T * r->conv;
    o->bwd_flops = 2 * o->fwd_flops;
    o->params = r->conv_params;
    o->saved_bytes = x->T * r->conv * x->act;
    o->splits = ST_SPLIT_TP;

    PUSH(r->scan_name, ST_OPC_BGEMM);
    gemm(o, x, r->chunk, r->n, r->k, r->batch);
    o->fwd_flops = r->scan_flops;
    o->bwd_flops = 2 * o->fwd_flops;
    o->fwd_bytes = x->T * (r->conv + r->gates + r->di) * x->act + r->state_bytes;
    o->bwd_bytes = 2 * o->fwd_bytes;
    o->kernels_fwd = r->kernels_fwd, o->kernels_bwd = r->kernels_bwd;
    o->saved_bytes = x->T * (r->conv + r->gates) * x->act + r->state_bytes;
    o->splits = ST_SPLIT_TP;

    PUSH("gated_norm", ST_OPC_NORM);
    stream(o, x, 2 * x->T * r->di, x->T * r->di, 0);
    o->params = r->norm_params;
    o->saved_bytes = 2 * x->T * r->di * x->act; /* y and the gate z */
    o->splits = ST_SPLIT_TP;

    if (!(o = linear(L, "out_proj_cast", "out_proj", x, x->T, x->h, r->di, ST_SPLIT_TP))) return ST_EINTERNAL;
    o->params = r->di * x->h + bias * x->h;
    o->saved_bytes = x->T * r->di * x->in8;
    op_sac(o, x, &L->mm, 1, (double[]){x->T * x->h});
    tp_coll_after(o, s, x);
    if (s->sp && s->tp > 1) o->op_saved_bytes += x->Tn * x->h * x->act;

    PUSH("mixer_residual", ST_OPC_ELEMWISE);
    residual(o, m, s, x);
    return 0;
}

/* A Mamba-2 mixer (Dao & Gu 2024, "Transformers are SSMs", Sec. 7.1 and mamba_ssm's Mamba2; the
 * block Nemotron-H uses): in_proj from h to z, x, B, C and dt (2 d_inner + 2 groups N + heads), a
 * depthwise causal conv1d of width ssm_conv over x, B, C (weights and bias; dt_bias, A_log and D per
 * head), the SSD scan, a gated RMSNorm over d_inner and out_proj back to h (Megatron-Core's
 * MambaMixer splits heads and groups over tp). The scan runs the chunked SSD algorithm (Sec. 6) with
 * chunks of Q = 256 tokens (mamba_ssm's default chunk_size): per group the intra-chunk C B^T (T Q N
 * multiply-adds), per head its masked product with x (T Q P), the chunk states (T N P) and the
 * outputs from the states (T N P): 2 (G T Q N + H T Q P + 2 H T N P) FLOPs forward; it reads x, B, C
 * and dt and keeps fp32 chunk states (T / Q x H x P x N); mamba_chunk_scan_combined runs 3 kernels
 * forward (chunk cumsum, states, scan) and 5 backward. */
static int mamba_ops(oplist *L, const st_model *m, const st_shard *s, const dims *x) {
    const double Q = 256;
    double H = (double)m->ssm_heads / x->t, P = (double)m->ssm_head_dim, N = (double)m->ssm_state;
    double G = (double)m->ssm_groups / x->t, di = H * P, conv = di + 2 * G * N, k = (double)m->ssm_conv;
    recurrent r = {.scan_name = "ssd_scan", .in_l = 2 * di + 2 * G * N + H, .conv = conv, .width = k,
                   .conv_params = conv * (k + 1) + 3 * H, .gates = H, .di = di, .norm_params = di,
                   .chunk = Q, .n = P, .k = N, .batch = x->b * x->sl / Q * H,
                   .scan_flops = 2 * (G * x->T * Q * N + H * x->T * Q * P + 2 * H * x->T * N * P),
                   .state_bytes = x->T / Q * H * P * N * 4, .kernels_fwd = 3, .kernels_bwd = 5};
    return recurrent_ops(L, m, s, x, &r);
}

/* A Gated DeltaNet mixer (Yang, Kautz and Hatamizadeh 2024, "Gated Delta Networks", arXiv 2412.06464;
 * transformers' modeling_qwen3_next.py Qwen3NextGatedDeltaNet, which Qwen3.5 keeps): in_proj_qkvz from
 * h to q and k (gdn_k_heads x gdn_k_dim each), v and the output gate z (gdn_v_heads x gdn_v_dim each),
 * in_proj_ba to beta and the decay a (one per value head); a depthwise conv1d of width gdn_conv over
 * q, k, v without bias; dt_bias and A_log per value head; RMSNormGated with one weight of gdn_v_dim;
 * out_proj back to h. The query/key heads are repeated to the value heads, so the delta rule runs on
 * gdn_v_heads heads of dk x dv state. Its chunkwise form (Sec. 3.3, after Yang et al. 2024, DeltaNet,
 * arXiv 2406.06484, Sec. 3.2; flash-linear-attention's chunk_gated_delta_rule, chunks of C = 64) per
 * chunk and head: K K^T (C^2 dk), the WY factors W = T K and U = T V (C^2 dk + C^2 dv), the state's
 * use and update W S, Q S and K^T (U - W S) (3 C dk dv), the intra-chunk Q K^T (C^2 dk) and its product
 * with U - W S (C^2 dv) multiply-adds: per token 2 (3 C dk + 2 C dv + 3 dk dv) FLOPs a head (the
 * triangular solve, C^3 / 3 a chunk, and the gates' elementwise work left out); it reads q, k, v,
 * beta and the decay and keeps fp32 chunk states (T / C x heads x dk x dv) as the Mamba scan does;
 * the kernels: 4 forward (cumsum of the decay, the WY factors, the states, the output), 6 backward. */
static int gdn_ops(oplist *L, const st_model *m, const st_shard *s, const dims *x) {
    const double C = 64;
    double Hk = (double)m->gdn_k_heads / x->t, Hv = (double)m->gdn_v_heads / x->t;
    double dk = (double)m->gdn_k_dim, dv = (double)m->gdn_v_dim, k = (double)m->gdn_conv;
    double Kd = Hk * dk, Vd = Hv * dv, conv = 2 * Kd + Vd;
    recurrent r = {.scan_name = "gdn_scan", .in_l = 2 * Kd + 2 * Vd + 2 * Hv, .conv = conv, .width = k,
                   .conv_params = conv * k + 2 * Hv, .gates = 2 * Hv, .di = Vd, .norm_params = dv,
                   .chunk = C, .n = dv, .k = dk, .batch = x->b * x->sl / C * Hv,
                   .scan_flops = 2 * x->T * Hv * (3 * C * dk + 2 * C * dv + 3 * dk * dv),
                   .state_bytes = x->T / C * Hv * dk * dv * 4, .kernels_fwd = 4, .kernels_bwd = 6};
    return recurrent_ops(L, m, s, x, &r);
}

/* A dense MLP of inner size f on Tt tokens (fc1, activation, fc2); names[] gives the three ops'
 * names (and fc1's and fc2's casts). The tp collective after fc2 is the caller's. */
static int mlp_ops(oplist *L, const st_model *m, const dims *x, double Tt, double f, const char *const names[5],
                   unsigned splits, int expert) {
    st_op *o;
    double gate = m->activation == ST_ACT_SWIGLU ? 2 : 1;
    double f_l = f / x->t, bias = m->bias ? 1 : 0;
    if (!(o = linear(L, names[0], names[1], x, Tt, gate * f_l, x->h, splits))) return ST_EINTERNAL;
    o->params = x->h * gate * f_l + bias * gate * f_l;
    o->saved_bytes = (expert ? Tt : x->Tn) * x->h * x->in8;
    o->expert = expert;
    op_sac(o, x, &L->mm, (int)gate, (double[]){Tt * f_l, Tt * f_l}); /* w1 (and w3) */

    PUSH(names[2], ST_OPC_ELEMWISE);
    stream(o, x, gate * Tt * f_l, Tt * f_l, 0);
    if (m->bias && !expert) o->bwd_bytes += gate * Tt * f_l * x->act; /* bias-gelu: fc1's bias gradient */
    o->saved_bytes = gate * Tt * f_l * x->act;
    o->splits = splits;
    if (x->eager && gate == 2) {
        /* silu(w1 x) * (w3 x) as two kernels (file comment, "kernels=eager") */
        o->fwd_bytes = 5 * Tt * f_l * x->act;
        o->bwd_bytes = 8 * Tt * f_l * x->act;
        o->kernels_fwd = 2;
        o->kernels_bwd = 3;
        o->saved_bytes = 3 * Tt * f_l * x->act;
    }

    if (!(o = linear(L, names[3], names[4], x, Tt, x->h, f_l, splits))) return ST_EINTERNAL;
    o->params = f_l * x->h + bias * x->h;
    o->saved_bytes = Tt * f_l * x->in8;
    o->expert = expert;
    op_sac(o, x, &L->mm, 1, (double[]){Tt * x->h}); /* w2 */
    return 0;
}

/* recompute=op in an MoE block (file comment). Its GEMMs rerun whole, none counted in the
 * every-second rule: torchtitan forces the router's gate to recompute
 * (per_op_sac_force_recompute_mm_shapes_by_fqns' default, ["moe.router.gate"]), and the routed
 * experts run torch._grouped_mm (GroupedExperts, use_grouped_mm), which is no aten.mm and on no save
 * list (its per-model _op_sac_save_list; since Feb 2026 PyTorch's compute-intensive list,
 * torch/_functorch/partitioners.py get_default_op_list: mm, bmm, addmm, the SDPA kernels,
 * _scaled_mm); push's default (op_recompute 1, nothing saved) says so. The ep all-to-alls, on the
 * list since pytorch/torchtitan#1672 (Sep 2025, "Save _to_copy and a2a in selective AC policy"; the
 * dispatch through all_to_all_single_autograd), keep their outputs and do not run again
 * (st_cost_op_recompute): o, the op that carries one (the router the dispatch, fc2 the combine), keeps
 * its rows x h with ep > 1, which the backward without recompute does not keep here (op_comm_bytes:
 * not part of what op drops of none's). */
static void moe_sac(st_op *o, const st_shard *s, const dims *x, double rows) {
    o->op_saved_bytes = o->op_comm_bytes = s->ep > 1 ? rows * x->h * x->act : 0;
}

/* MoE (Lepikhin et al. 2020; DeepSeekMoE, Dai et al. 2024): a router, the routed experts of
 * moe_ffn each (top-k a token), and shared experts every token visits (shared_experts x
 * shared_ffn, run as one dense MLP beside them, split by tp like the dense MLP; Megatron-Core's
 * SharedExpertMLP). The routed tokens on the busiest ep rank set the pace: the balanced share times
 * moe_imbalance when dropless, times capacity_factor when experts take a fixed capacity (the
 * buffers padded to it, as GShard and Switch run them). */
static int moe_ops(oplist *L, const st_model *m, const st_shard *s, const dims *x) {
    static const char *const routed[] = {"expert_fc1_cast", "expert_fc1", "expert_act", "expert_fc2_cast",
                                         "expert_fc2"};
    static const char *const shared[] = {"shared_fc1_cast", "shared_fc1", "shared_act", "shared_fc2_cast",
                                         "shared_fc2"};
    st_op *o;
    double E_all = (double)m->experts, k = (double)m->experts_topk;
    double e_l = E_all / s->ep; /* experts on this rank */
    double load = m->capacity_factor > 0 ? m->capacity_factor : m->moe_imbalance;
    double Tk = x->T * k * load; /* routed token copies on this rank (balanced over ep: load 1) */
    double f_l = (double)m->moe_ffn / x->t, gate = m->activation == ST_ACT_SWIGLU ? 2 : 1;

    if (m->shared_experts > 0) {
        int rc = mlp_ops(L, m, x, x->T, (double)(m->shared_experts * m->shared_ffn), shared, ST_SPLIT_TP, 0);
        if (rc) return rc;
    }
    PUSH("router", ST_OPC_GEMM);
    gemm(o, x, x->T, E_all, x->h, 1);
    o->params = x->h * E_all;
    o->saved_bytes = x->T * E_all * 4; /* fp32 router probabilities */
    moe_sac(o, s, x, Tk); /* the dispatch's output: the busiest rank's received rows */
    if (s->ep > 1) {
        o->coll_group = ST_GRP_EP;
        o->coll_bytes = Tk * x->h * x->act;
        o->fwd_coll = ST_COLL_ALLTOALL; /* dispatch */
        o->bwd_coll = ST_COLL_ALLTOALL;
    }

    if (x->quant) {
        PUSH("expert_fc1_cast", ST_OPC_ELEMWISE);
        quant_cast(o, x, Tk * x->h, Tk * gate * f_l, ST_SPLIT_TP | ST_SPLIT_EP);
    }
    PUSH("expert_fc1", ST_OPC_GEMM);
    gemm(o, x, Tk / e_l, gate * f_l, x->h, e_l);
    o->quant = x->quant;
    o->params = e_l * (x->h * gate * f_l + (m->bias ? gate * f_l : 0));
    o->saved_bytes = Tk * x->h * x->in8;
    o->expert = 1;
    o->splits = ST_SPLIT_TP | ST_SPLIT_EP; /* (recompute=op: reruns whole, moe_sac) */

    PUSH(routed[2], ST_OPC_ELEMWISE);
    stream(o, x, gate * Tk * f_l, Tk * f_l, 0);
    o->saved_bytes = gate * Tk * f_l * x->act;
    o->splits = ST_SPLIT_TP | ST_SPLIT_EP;

    if (x->quant) {
        PUSH(routed[3], ST_OPC_ELEMWISE);
        quant_cast(o, x, Tk * f_l, Tk * x->h, ST_SPLIT_TP | ST_SPLIT_EP);
    }
    PUSH(routed[4], ST_OPC_GEMM);
    gemm(o, x, Tk / e_l, x->h, f_l, e_l);
    o->quant = x->quant;
    o->params = e_l * (f_l * x->h + (m->bias ? x->h : 0));
    o->saved_bytes = Tk * f_l * x->in8;
    o->expert = 1;
    o->splits = ST_SPLIT_TP | ST_SPLIT_EP;
    /* the combine's output: the rows this rank sent, back (padded to the capacity where there is one) */
    moe_sac(o, s, x, x->T * k * (m->capacity_factor > 0 ? m->capacity_factor : 1));
    if (s->ep > 1) {
        o->coll_group = ST_GRP_EP;
        o->coll_bytes = Tk * x->h * x->act;
        o->fwd_coll = ST_COLL_ALLTOALL; /* combine */
        o->bwd_coll = ST_COLL_ALLTOALL;
    }

    /* weighted sum of the k expert outputs (and the shared experts'); carries the tp reduction of
     * the expert MLP */
    PUSH("moe_combine", ST_OPC_ELEMWISE);
    stream(o, x, Tk * x->h, x->T * x->h, 0);
    o->saved_bytes = x->T * k * 4;
    tp_coll_after(o, s, x);
    if (s->sp && s->tp > 1) o->op_saved_bytes = x->Tn * x->h * x->act; /* the reduce-scatter's output: saved */
    return 0;
}

int st_ops_layer(const st_model *m, const st_shard *s, int64_t layer, st_op *ops, int cap) {
    static const char *const dense[] = {"fc1_cast", "fc1", "act", "fc2_cast", "fc2"};
    dims x;
    dims_init(&x, m, s);
    oplist Lst = {.ops = ops, .cap = cap}, *L = &Lst; /* the PUSH macro's list */
    st_op *o;
    st_layer kind;
    int rc = 0;
    st_model_layer(m, layer, &kind);
    /* a parallel block (GPT-J; Black et al. 2022, GPT-NeoX, Sec. 2.1): the MLP reads the same norm's
     * output as attention, so there is no second norm (and its tp collective: the first one's
     * gathers the input and reduces the gradient for both), and one residual add sums the block
     * input and both branches */
    int parallel = m->parallel_block && kind.mixer == ST_MIX_ATTN && kind.mlp != ST_MLP_NONE;

    if (kind.mixer == ST_MIX_ATTN) rc = attention_ops(L, m, s, &x, &kind, parallel);
    if (kind.mixer == ST_MIX_MAMBA) rc = mamba_ops(L, m, s, &x);
    if (kind.mixer == ST_MIX_GDN) rc = gdn_ops(L, m, s, &x);
    if (rc) return rc;

    /* ---- MLP or MoE */
    if (kind.mlp != ST_MLP_NONE) {
        if (!parallel) {
            PUSH("ln2", ST_OPC_NORM);
            norm(o, m, s, &x, x.eager);
            tp_coll_before(o, s, &x, kind.mlp == ST_MLP_DENSE);
        }
        if (kind.mlp == ST_MLP_DENSE) {
            if ((rc = mlp_ops(L, m, &x, x.T, (double)kind.ffn, dense, ST_SPLIT_TP, 0))) return rc;
            o = &ops[L->n - 1];
            tp_coll_after(o, s, &x);
            if (s->sp && s->tp > 1) o->op_saved_bytes += x.Tn * x.h * x.act;
        } else if ((rc = moe_ops(L, m, s, &x))) {
            return rc;
        }
        PUSH("mlp_residual", ST_OPC_ELEMWISE);
        residual(o, m, s, &x);
        if (parallel) o->fwd_bytes += x.Tn * x.h * x.act, o->bwd_bytes += x.Tn * x.h * x.act; /* a third input */
    }

    /* accumulate this micro-batch's weight gradients (backward only) */
    double p_layer = 0;
    for (int i = 0; i < L->n; i++) p_layer += ops[i].params;
    PUSH("grad_accum", ST_OPC_ELEMWISE);
    o->bwd_bytes = p_layer * x.gacc;
    o->kernels_fwd = 0;
    o->kernels_bwd = 1;
    return L->n;
}

int st_ops_head(const st_model *m, const st_shard *s, st_op *ops, int cap) {
    dims x;
    dims_init(&x, m, s);
    oplist Lst = {.ops = ops, .cap = cap}, *L = &Lst; /* the PUSH macro's list */
    st_op *o;
    double v_l = (double)st_model_padded_vocab(m, s->tp) / x.t;

    /* vocab-parallel embedding: each tp rank looks up its slice, then an all-reduce (sp:
     * reduce-scatter) combines them (Megatron VocabParallelEmbedding) */
    PUSH("embedding", ST_OPC_EMBED);
    o->fwd_bytes = x.T * x.h * x.act * 2 + x.T * 8;
    o->bwd_bytes = 2 * x.T * x.h * x.act + v_l * x.h * x.act; /* scatter-add + zeroing the grad */
    o->params = v_l * x.h + (m->position == ST_POS_LEARNED ? x.s * x.h : 0);
    o->splits = ST_SPLIT_TP;
    tp_coll_after(o, s, &x);

    if (m->dropout) {
        PUSH("embed_dropout", ST_OPC_ELEMWISE);
        stream(o, &x, x.Tn * x.h, x.Tn * x.h, x.Tn * x.h);
        o->saved_bytes = x.Tn * x.h;
        o->splits = s->sp ? ST_SPLIT_SP : 0;
    }
    return L->n;
}

/* The output layer and the loss: `params` says whether the output weights are this op's. */
static int output_ops(oplist *L, const st_model *m, const st_shard *s, const dims *x, int params,
                      const char *const names[3]) {
    st_op *o;
    double v_l = (double)st_model_padded_vocab(m, s->tp) / x->t;

    PUSH(names[0], ST_OPC_NORM);
    norm(o, m, s, x, x->eager_tail);
    tp_coll_before(o, s, x, 0);

    /* the output layer's weights: a separate matrix when untied; when tied, Megatron keeps a copy
     * of the embedding on the last stage for pp > 1 (counted by the memory model, not here) */
    PUSH(names[1], ST_OPC_GEMM);
    gemm(o, x, x->T, v_l, x->h, 1);
    o->params = m->tied_embeddings || !params ? 0 : v_l * x->h;
    o->shared_weight = o->params == 0;
    o->saved_bytes = x->Tn * x->h * x->act;
    o->splits = ST_SPLIT_TP;

    /* vocab-parallel cross-entropy in fp32 (Megatron): keeps the fp32 softmax for backward
     * (Korthikanti et al. 2022, Sec. 4.3: 4sbv/t) and all-reduces max, sum and target logit */
    PUSH(names[2], ST_OPC_LOSS);
    o->fwd_bytes = x->T * v_l * (x->act + 4 + 4);
    o->bwd_bytes = x->T * v_l * (4 + x->act);
    o->fwd_flops = 5 * x->T * v_l;
    o->bwd_flops = 2 * x->T * v_l;
    o->saved_bytes = x->T * v_l * 4;
    o->kernels_fwd = 4;
    o->splits = ST_SPLIT_TP;
    if (x->eager_tail) {
        /* cross_entropy(logits.float()) (file comment, "kernels=eager") */
        o->fwd_bytes = x->T * v_l * (x->act + 20);
        o->bwd_bytes = x->T * v_l * (x->act + 24);
        o->kernels_fwd = 5;
        o->kernels_bwd = 4;
        o->work_bytes = x->T * v_l * (x->act + 4);
    }
    if (s->tp > 1) {
        o->coll_group = ST_GRP_TP;
        o->coll_bytes = x->T * 4;
        o->fwd_coll = ST_COLL_ALLREDUCE;
    }
    return 0;
}

/* Multi-token prediction (DeepSeek-V3, Sec. 2.2, Fig. 3): after the main output, each of the
 * mtp_layers modules normalises the last hidden state and the next token's embedding (two RMSNorms),
 * projects their concatenation 2h -> h (replicated on the tp ranks here: one small GEMM), runs one
 * block shaped like the model's last, and predicts through the shared output layer (no weights of
 * its own) with its own loss. The modules are equal and run one after another: one is built and
 * its work, parameters and activations counted mtp_layers times. */
static int mtp_ops(oplist *L, const st_model *m, const st_shard *s, const dims *x) {
    static const char *const names[] = {"mtp_final_norm", "mtp_logits", "mtp_loss"};
    st_op *o;
    int first = L->n;
    PUSH("mtp_norm", ST_OPC_NORM);
    stream(o, x, 2 * x->Tn * x->h, 2 * x->Tn * x->h, 0);
    o->params = 2 * x->h;
    o->saved_bytes = 2 * x->Tn * x->h * x->act;
    o->splits = s->sp ? ST_SPLIT_SP : 0;
    tp_coll_before(o, s, x, 0);
    PUSH("mtp_proj", ST_OPC_GEMM);
    gemm(o, x, x->T, x->h, 2 * x->h, 1);
    o->params = 2 * x->h * x->h;
    o->saved_bytes = 2 * x->T * x->h * x->act;
    int n = st_ops_layer(m, s, m->layers - 1, L->ops + L->n, L->cap - L->n);
    if (n < 0) return n;
    L->n += n;
    int rc = output_ops(L, m, s, x, 0, names);
    if (rc) return rc;
    double k = (double)m->mtp_layers;
    for (int i = first; k > 1 && i < L->n; i++) {
        st_op *p = &L->ops[i];
        p->fwd_flops *= k, p->bwd_flops *= k, p->fwd_bytes *= k, p->bwd_bytes *= k;
        p->params *= k, p->saved_bytes *= k, p->ckpt_kept_bytes *= k, p->op_saved_bytes *= k, p->op_comm_bytes *= k;
        p->coll_bytes *= k;
        p->dy_bytes *= k;
        p->fwd_coll_bytes *= k;
        p->kernels_fwd *= (int)k, p->kernels_bwd *= (int)k;
    }
    return 0;
}

int st_ops_tail(const st_model *m, const st_shard *s, st_op *ops, int cap) {
    static const char *const names[] = {"final_norm", "logits", "loss"};
    dims x;
    dims_init(&x, m, s);
    oplist Lst = {.ops = ops, .cap = cap}, *L = &Lst;
    int rc = output_ops(L, m, s, &x, 1, names);
    if (!rc && m->mtp_layers > 0) rc = mtp_ops(L, m, s, &x);
    return rc ? rc : L->n;
}

/* Parameters of the blocks, the embedding and the output layer at tp = 1 (the model's own
 * vocabulary, not Megatron's padding); `active`: the routed experts' counted k / experts times. */
static double count_params(const st_model *m, int active) {
    st_shard s = {.tp = 1, .cp = 1, .ep = 1, .sp = 0, .mbs = 1, .seq = m->seq_len, .dtype = ST_DT_BF16};
    st_op ops[ST_MAX_OPS];
    st_model u = *m;
    u.vocab_pad_multiple = 1;
    u.mtp_layers = 0;
    double total = 0, share = m->experts > 0 ? (double)m->experts_topk / (double)m->experts : 1;
    int n = st_ops_head(&u, &s, ops, ST_MAX_OPS);
    for (int i = 0; i < n; i++) total += ops[i].params;
    n = st_ops_tail(&u, &s, ops, ST_MAX_OPS);
    for (int i = 0; i < n; i++) total += ops[i].params;
    int64_t rep[ST_MAX_KINDS], count[ST_MAX_KINDS];
    int nk = st_model_kinds(m, rep);
    st_model_count_kinds(m, 0, m->layers, count);
    for (int k = 0; k < nk; k++) {
        n = st_ops_layer(&u, &s, rep[k], ops, ST_MAX_OPS);
        double p = 0;
        for (int i = 0; i < n; i++) p += ops[i].params * (active && ops[i].expert ? share : 1);
        total += p * (double)count[k];
    }
    return total;
}

double st_model_params(const st_model *m) { return count_params(m, 0); }

double st_model_active_params(const st_model *m) { return count_params(m, 1); }

double st_model_mtp_params(const st_model *m) {
    st_shard s = {.tp = 1, .cp = 1, .ep = 1, .sp = 0, .mbs = 1, .seq = m->seq_len, .dtype = ST_DT_BF16};
    st_op ops[ST_MAX_OPS];
    st_model u = *m;
    u.vocab_pad_multiple = 1;
    int n = st_ops_tail(&u, &s, ops, ST_MAX_OPS);
    double p = 0;
    for (int i = 3; i < n; i++) p += ops[i].params; /* after the main output's three */
    return p;
}
