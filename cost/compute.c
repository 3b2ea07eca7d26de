/* compute.c: time of one operator pass on one GPU.
 *
 * t = max(FLOPs / (peak x efficiency), bytes / (HBM bandwidth x efficiency)) + kernels x overhead
 * (a roofline with achievable rather than datasheet ceilings). Efficiency comes from a
 * calibration profile when one is given and covers the op's class; otherwise from the default
 * curve: the GPU's best achievable GEMM fraction (st_gpu_gemm_efficiency: measured MAMF, bf16 or
 * fp8) times a tile-quantisation factor per GEMM dimension. Element-wise work runs on the CUDA cores (fp32
 * peak) and is almost always bound by HBM. Fused attention runs at the rates the FlashAttention
 * papers measured (attention_tables below), by sequence length, head dimension, causal or not and
 * pass. The host's time to issue the kernels from eager PyTorch is priced apart, per list of
 * operators (st_cost_host_stretch): the host runs ahead of the GPU, so a block takes the longer of
 * its GPU time and its host time, and small models whose kernels are shorter than the host's work
 * per kernel are host-bound (ST_HOST_S_PER_KERNEL, cost_private.h). The per-kernel prices and the
 * small-GEMM half dimension are the cluster's where it sets them (a fit of measured runs does:
 * profiler/fit.c), else the constants of cost_private.h. Context parallelism's ring
 * (cp=p2p) runs cp kernels a pass: the first on the rank's own two chunks, causal, at the query
 * length s / cp; the others one chunk of s / 2cp against two or two against one, unmasked. Each of
 * those is as slow as the slower shape, whose inner loop runs over s / 2cp (keys in forward,
 * queries in backward): they are priced at the unmasked rate for s / 2cp (st__ring_step). */
#include "cost_private.h"

#include <math.h>
#include <string.h>
#include <strings.h>

/* Fused attention, TFLOP/s at sequence lengths 512, 1k, 2k, 4k, 8k, 16k (the benchmarks' grid:
 * batch x seq = 16k tokens, hidden 2048), FLOPs counted as the papers do: 4 b s^2 heads d forward,
 * halved with a causal mask, backward 2.5x forward (Dao 2023, Sec. 4.1). Indexed [head dim 64,
 * 128][non-causal, causal][forward, backward]. Between points the rate is interpolated linearly in
 * log2(seq) and in the head dimension; outside, the nearest point holds. Never fitted to a
 * validation row.
 *
 * ampere: FlashAttention-2 on A100 80GB SXM4, fp16/bf16 (Dao 2023, arXiv:2307.08691).
 *   Published: Fig. 4a (forward+backward, non-causal, d 64) 132 153 162 171 175 176; Fig. 4c
 *   (causal, d 64) 88 119 140 156 165 171 (values printed on the bars; 4c read from the figure's
 *   vector text layer); Figs. 5-6 at 16k: forward 192 (d 64) 223 (d 128), causal 183, 197;
 *   backward 170, 196, causal 166, 186.
 *   Derived here: forward(s) = fwdbwd(s) x forward(16k) / fwdbwd(16k), likewise backward, which
 *   keeps each sequence length's measured forward+backward time (the 16k split between the passes
 *   holds at every length); head dim 128, for which only the 16k points are at hand, follows the
 *   d 64 curve's shape: its 16k value x fwdbwd_d64(s) / fwdbwd_d64(16k).
 * hopper: FlashAttention-3 on H100 80GB SXM5, bf16 (Shah et al. 2024, arXiv:2407.08608). Published:
 *   Fig. 5 (forward): non-causal d 64 333 392 460 476 496 497, d 128 467 565 625 638 646 648;
 *   causal d 64 197 265 371 420 460 473, d 128 292 423 521 579 602 616. Fig. 6 (backward,
 *   non-causal): d 64 272 363 422 453 472 474, d 128 316 424 501 542 559 561.
 *   Derived here: causal backward (not in the paper) = non-causal backward x causal / non-causal
 *   forward at the same length.
 *   The same figures measure two other kernels on the same H100, derived the same way:
 *   FlashAttention-2 (attention=fa2: flash-attn 2.x, and PyTorch SDPA's flash backend, which is
 *   what torch runs on Hopper by default: cuDNN attention was made opt-in after torch 2.5,
 *   pytorch/pytorch#138522; pytorch/pytorch#142132 measures the default SDPA at 329 TFLOP/s against
 *   cuDNN's 631 on an H100, Dec 2024): Fig. 5 non-causal d 64 282 306 318 321 322 324, d 128 309 350
 *   362 368 370 370; causal d 64 180 229 262 284 295 299, d 128 191 260 298 319 333 335; Fig. 6 d 64
 *   198 238 264 279 287 291, d 128 214 260 291 310 318 322. cuDNN (attention=cudnn: Transformer
 *   Engine's FusedAttention, which TE picks over FlashAttention on Hopper, dot_product_attention
 *   utils.get_attention_backend, "give FusedAttention preference on Hopper+"): Fig. 5 non-causal
 *   d 64 335 373 395 408 412 413, d 128 497 574 617 609 600 595; causal d 64 225 288 334 363 379 388,
 *   d 128 315 410 484 518 529 539; Fig. 6 d 64 266 348 395 417 432 433, d 128 305 408 465 499 518
 *   516. FlashAttention-3 needs sm90, and no cuDNN numbers for A100 on this grid are published:
 *   off Hopper every fused kind uses the FlashAttention-2 table.
 * Other GPUs use the table of their generation, scaled by their dense peak over the reference
 * GPU's (Ampere-class GPUs and every GPU not named below: A100's 312 TFLOP/s; Hopper: H100 SXM's
 * 989.4): the kernels keep their fraction of peak, an assumption a calibration profile (class
 * "attention") replaces. fp32/tf32 plans run PyTorch's memory-efficient kernel (FlashAttention is
 * 16-bit only), priced at the same fraction of that dtype's peak. */
static const double attn_seq[6] = {512, 1024, 2048, 4096, 8192, 16384};

typedef struct attn_table {
    double peak_flops;   /* the reference GPU's dense bf16 peak */
    double tflops[2][2][2][6];
} attn_table;

static const attn_table attn_ampere = {
    312e12,
    {{{{144.0, 166.9, 176.7, 186.5, 190.9, 192.0},   /* d 64, non-causal, forward: Fig. 4a x 192/176 */
       {127.5, 147.8, 156.5, 165.2, 169.0, 170.0}},  /*                   backward: Fig. 4a x 170/176 */
      {{94.2, 127.4, 149.8, 166.9, 176.6, 183.0},    /* d 64, causal, forward: Fig. 4c x 183/171 */
       {85.4, 115.5, 135.9, 151.4, 160.2, 166.0}}},  /*               backward: Fig. 4c x 166/171 */
     {{{167.2, 193.9, 205.3, 216.7, 221.7, 223.0},   /* d 128, non-causal, forward: 223 x Fig. 4a / 176 */
       {147.0, 170.4, 180.4, 190.4, 194.9, 196.0}},  /*                    backward: 196 x Fig. 4a / 176 */
      {{101.4, 137.1, 161.3, 179.7, 190.1, 197.0},   /* d 128, causal, forward: 197 x Fig. 4c / 171 */
       {95.7, 129.4, 152.3, 169.7, 179.5, 186.0}}}}, /*                backward: 186 x Fig. 4c / 171 */
};

static const attn_table attn_hopper = {
    989.4e12,
    {{{{333, 392, 460, 476, 496, 497},               /* d 64, non-causal, forward: Fig. 5 */
       {272, 363, 422, 453, 472, 474}},              /*                   backward: Fig. 6 */
      {{197, 265, 371, 420, 460, 473},               /* d 64, causal, forward: Fig. 5 */
       {160.9, 245.4, 340.4, 399.7, 437.7, 451.1}}}, /*               backward: Fig. 6 x causal/non-causal fwd */
     {{{467, 565, 625, 638, 646, 648},               /* d 128, non-causal, forward: Fig. 5 */
       {316, 424, 501, 542, 559, 561}},              /*                    backward: Fig. 6 */
      {{292, 423, 521, 579, 602, 616},               /* d 128, causal, forward: Fig. 5 */
       {197.6, 317.4, 417.6, 491.9, 520.9, 533.3}}}}, /*               backward: Fig. 6 x causal/non-causal fwd */
};

static const attn_table attn_hopper_fa2 = {
    989.4e12,
    {{{{282, 306, 318, 321, 322, 324},               /* d 64, non-causal, forward: Fig. 5 */
       {198, 238, 264, 279, 287, 291}},              /*                   backward: Fig. 6 */
      {{180, 229, 262, 284, 295, 299},               /* d 64, causal, forward: Fig. 5 */
       {126.4, 178.1, 217.5, 246.8, 262.9, 268.5}}}, /*               backward: Fig. 6 x causal/non-causal fwd */
     {{{309, 350, 362, 368, 370, 370},               /* d 128, non-causal, forward: Fig. 5 */
       {214, 260, 291, 310, 318, 322}},              /*                    backward: Fig. 6 */
      {{191, 260, 298, 319, 333, 335},               /* d 128, causal, forward: Fig. 5 */
       {132.3, 193.1, 239.6, 268.7, 286.2, 291.5}}}}, /*               backward: Fig. 6 x causal/non-causal fwd */
};

static const attn_table attn_hopper_cudnn = {
    989.4e12,
    {{{{335, 373, 395, 408, 412, 413},               /* d 64, non-causal, forward: Fig. 5 */
       {266, 348, 395, 417, 432, 433}},              /*                   backward: Fig. 6 */
      {{225, 288, 334, 363, 379, 388},               /* d 64, causal, forward: Fig. 5 */
       {178.7, 268.7, 334.0, 371.0, 397.4, 406.8}}}, /*               backward: Fig. 6 x causal/non-causal fwd */
     {{{497, 574, 617, 609, 600, 595},               /* d 128, non-causal, forward: Fig. 5 */
       {305, 408, 465, 499, 518, 516}},              /*                    backward: Fig. 6 */
      {{315, 410, 484, 518, 529, 539},               /* d 128, causal, forward: Fig. 5 */
       {193.3, 291.4, 364.8, 424.4, 456.7, 467.4}}}}, /*               backward: Fig. 6 x causal/non-causal fwd */
};

/* Hopper GPUs (FlashAttention-3 needs sm90): the presets' and NVIDIA's names for them, in any case
 * and after an optional "nvidia-" or "nvidia " ("H100", "nvidia-h100-sxm"); any other GPU gets the
 * Ampere (FlashAttention-2) table scaled by its dense peak */
static int is_hopper(const st_gpu *g) {
    static const char *const names[] = {"h100", "h200", "h800", "gh200"};
    const char *s = g->name;
    if (strncasecmp(s, "nvidia", 6) == 0 && (s[6] == '-' || s[6] == ' ' || s[6] == '_')) s += 7;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strncasecmp(s, names[i], strlen(names[i])) == 0) return 1;
    return 0;
}

/* one curve at `seq`: linear in log2(seq) between the grid points */
static double attn_curve(const double *v, double seq) {
    if (!(seq > attn_seq[0])) return v[0];
    if (seq >= attn_seq[5]) return v[5];
    int i = 0;
    while (seq > attn_seq[i + 1]) i++;
    double f = log2(seq / attn_seq[i]); /* the grid doubles */
    return v[i] + f * (v[i + 1] - v[i]);
}

double st_cost_attention_flops_per_s(const st_gpu *g, st_attention kernel, st_dtype dt, double seq,
                                     double head_dim, int causal, int backward) {
    const attn_table *t = &attn_ampere;
    if (is_hopper(g))
        t = kernel == ST_ATTN_FA2 ? &attn_hopper_fa2 : kernel == ST_ATTN_CUDNN ? &attn_hopper_cudnn : &attn_hopper;
    st_dtype adt = st_dtype_storage(dt);
    double peak = g->peak_flops[adt] > 0 ? g->peak_flops[adt] : g->peak_flops[ST_DT_BF16];
    int c = causal ? 1 : 0, b = backward ? 1 : 0;
    double r64 = attn_curve(t->tflops[0][c][b], seq), r128 = attn_curve(t->tflops[1][c][b], seq);
    double f = (head_dim - 64) / 64;
    f = f < 0 ? 0 : f > 1 ? 1 : f;
    return (r64 + f * (r128 - r64)) * 1e12 * (peak / t->peak_flops);
}

double st_cost_launch_s(const st_cluster *c) {
    return c->launch_overhead_s > 0 ? c->launch_overhead_s : ST_KERNEL_OVERHEAD_S;
}

double st_cost_host_s_per_kernel(const st_cluster *c) {
    return c->host_s_per_kernel > 0 ? c->host_s_per_kernel : ST_HOST_S_PER_KERNEL;
}

double st_cost_gemm_half_dim(const st_gpu *g) { return g->gemm_half_dim > 0 ? g->gemm_half_dim : ST_GEMM_HALF_DIM; }

double st_cost_host_stretch(const st_cluster *c, const st_op *ops, int n, double gpu_s, int backward) {
    double host_s = 0, per_kernel_s = st_cost_host_s_per_kernel(c);
    for (int i = 0; i < n; i++) host_s += (backward ? ops[i].kernels_bwd : ops[i].kernels_fwd) * per_kernel_s;
    return gpu_s > 0 && host_s > gpu_s ? host_s / gpu_s : 1;
}

static double dim_factor(const st_gpu *g, double d) { return d / (d + st_cost_gemm_half_dim(g)); }

void st__ring_step(const st_op *op, int first, st_op *out) {
    double n = op->ring_steps > 1 ? op->ring_steps : 1;
    *out = *op;
    out->ring_steps = 0;
    out->fwd_flops /= n, out->bwd_flops /= n;
    out->fwd_bytes /= n, out->bwd_bytes /= n;
    out->kernels_fwd = out->kernels_bwd = 1;
    if (!first) out->m /= 2, out->causal = 0;
}

double st_cost_op_time(const st_cluster *c, const st_profile *prof, const st_op *op, st_dtype dt, int backward) {
    if (op->cls == ST_OPC_ATTENTION && op->ring_steps > 1) {
        /* cp=p2p: the ring's steps, each at its own blocks' rate (opgraph.c) */
        st_op first, other;
        st__ring_step(op, 1, &first);
        st__ring_step(op, 0, &other);
        return st_cost_op_time(c, prof, &first, dt, backward) +
               (op->ring_steps - 1) * st_cost_op_time(c, prof, &other, dt, backward);
    }
    double flops = backward ? op->bwd_flops : op->fwd_flops;
    double bytes = backward ? op->bwd_bytes : op->fwd_bytes;
    int kernels = backward ? op->kernels_bwd : op->kernels_fwd;
    if (flops <= 0 && bytes <= 0) return 0;
    const st_gpu *g = &c->gpu;
    double t_flops = 0, t_bytes;
    if (op->cls == ST_OPC_ATTENTION) {
        /* fp8, mxfp8 and nvfp4 recipes keep attention in bf16 (Transformer Engine's default, fp8_dpa off;
         * the NVFP4 recipe's attention stays bf16 too: arXiv 2509.25149 Sec. 4) */
        st_dtype adt = st_dtype_storage(dt);
        double rate = prof ? st_profile_flops_per_s(prof, op->cls, adt, flops / kernels) : 0;
        if (!(rate > 0)) rate = st_cost_attention_flops_per_s(g, op->kernel, adt, op->m, op->k, op->causal, backward);
        t_flops = flops / rate;
    } else if (op->cls == ST_OPC_GEMM || op->cls == ST_OPC_BGEMM) {
        /* fp8, mxfp8 and nvfp4 recipes run only the blocks' linear layers in that format (st_op.quant:
         * forward, dgrad and wgrad GEMMs, e4m3 x e4m3 forward and e5m2 x e4m3 backward, one tensor-core
         * rate on Hopper; the block-scaled ones at their own peak on Blackwell); attention, the router
         * and the output layer stay bf16 (src/core/opgraph.c says why) */
        st_dtype gdt = (st_dtype_quantised(dt) && !op->quant) ? ST_DT_BF16 : dt;
        st_dtype pdt = g->peak_flops[gdt] > 0 ? gdt : ST_DT_BF16; /* a dtype the GPU lacks runs as bf16 */
        double rate = prof ? st_profile_flops_per_s(prof, op->cls, gdt, flops / kernels) : 0;
        if (!(rate > 0))
            rate = g->peak_flops[pdt] * st_gpu_gemm_efficiency(g, pdt) * dim_factor(g, op->m) * dim_factor(g, op->n) *
                   dim_factor(g, op->k);
        t_flops = flops / rate;
    } else if (flops > 0 && g->peak_flops[ST_DT_FP32] > 0) {
        t_flops = flops / g->peak_flops[ST_DT_FP32];
    }
    double bw = prof ? st_profile_bytes_per_s(prof, op->cls, bytes / kernels) : 0;
    if (!(bw > 0)) bw = g->hbm_bytes_per_s * ST_HBM_EFFICIENCY;
    t_bytes = bytes / bw;
    return (t_flops > t_bytes ? t_flops : t_bytes) + kernels * st_cost_launch_s(c);
}
