/* offload.c: granular offload: a fraction f of the optimizer states in host memory (plan key
 * offload_optimizer), and fractions of the weights and of the saved activations (offload_params,
 * offload_activations; the second half of this comment).
 *
 * Where the states live: as Elixir (Huang et al. 2023, "Elixir: Train a Large Language Model on a
 * Small GPU Cluster") and ColossalAI's Gemini place them, chunk by chunk: the chunks whose optimizer
 * states are on the host are stepped by the CPU's Adam, the others by the GPU's, in the same
 * optimizer step. strata takes the fraction as given (not rounded to whole chunks: with chunks of
 * tens of MB against shards of GBs the rounding is below a percent).
 *
 * The step: the GPU updates its 1 - f share (HBM-bound Adam, as the estimate prices a whole step:
 * gpu_step_s x (1 - f)) while the host's f share goes the ZeRO-Offload way (Ren et al. 2021,
 * Sec. 4): gradients down over PCIe, Adam on the CPU at ST_CPU_ADAM_PARAMS_PER_S, the updated
 * 16-bit weights back up. The two run on different processors and data, side by side, so the step
 * takes max(GPU part, copies + CPU part). At f = 1 this is ZeRO-Offload's chain exactly (what
 * offload=optimizer prices); at f = 0 the GPU's step. Memory: the GPU keeps 1 - f of the states
 * (cost/memory.c), the host f of them for each GPU of the node (checked against host.memory_gib). */
/*
 * Weights and activations (Elixir, Huang et al. 2023, Sec. 3-4; ColossalAI Gemini's chunk manager):
 * parameters are packed into chunks in the order the model calls them, and the chunks whose home is
 * the host are fetched into a GPU-resident cache of chunks (Elixir's rCache) as the computation reaches
 * them, the next one prefetched while the current one computes (Elixir reserves two cache blocks when
 * prefetch overlaps compute). strata's chunk is a block's host share (f x its 16-bit weights: the
 * blocks are called in order, so a chunk of tens of MB maps to about a block at these sizes, and the
 * lowering's unit is the block), the cache two of them. Every forward and every backward streams the
 * stage's host share in again (the cache holds two blocks, so nothing of a pass survives to the next
 * beyond them, which is ignored: two blocks of dozens). After the optimizer step the host copy is
 * rewritten from the GPU's updated weights (one copy down per iteration). A fraction g of each
 * micro-batch's saved activations goes down after its forward and comes back for its backward (the
 * activation offloading of Megatron-Core / Transformer Engine's cpu_offload, here by fraction).
 * All copies run on one copy stream, in order (the simulator's copy stream; PCIe's two directions are
 * not overlapped with each other), beside the compute of the pass they feed: a pass takes
 * max(its compute, its copies) (offload_mb in estimate.c), the first block's weights before the first
 * forward exposed. Memory: the GPU keeps 1 - f of its weights plus the two cached chunks, and 1 - g of
 * the activations of the micro-batches in flight plus the host share of two blocks' (copied block by
 * block, as the weights: the one in transit and the one computing); the host holds f of the weights
 * and g of the in-flight activations, for each GPU of its node. */
#include "cost_private.h"

#include <string.h>

void st__offload_optimizer_step(const st_cluster *c, const st_profile *prof, double f, double opt_params,
                                double grad_bytes, double weight_bytes, double gpu_step_s, st__opt_step *out) {
    double host = f * opt_params;
    out->grads_s = st__copy_s(c, prof, ST_COPY_D2H, host * grad_bytes, 1);
    out->weights_s = st__copy_s(c, prof, ST_COPY_H2D, host * weight_bytes, 1);
    double chain = out->grads_s + host / ST_CPU_ADAM_PARAMS_PER_S + out->weights_s;
    double gpu = (1 - f) * gpu_step_s;
    double step = gpu > chain ? gpu : chain;
    /* the copies as the lowering runs them (before and after the step's instruction), the rest
     * of the step between them */
    out->optimizer_s = step - out->grads_s - out->weights_s;
}

void st__offload_granular(const st_cluster *c, const st_profile *prof, const st_plan *p, double params,
                          double act_bytes, double blocks, st_offload_copies *out) {
    double n = blocks < 1 ? 1 : blocks;
    double w = p->offload_params * params * st_cost_weight_bytes(p->dtype), a = p->offload_activations * act_bytes;
    double w_in = st__copy_s(c, prof, ST_COPY_H2D, w, n);
    out->fwd_s = w_in + st__copy_s(c, prof, ST_COPY_D2H, a, n);
    out->bwd_s = w_in + st__copy_s(c, prof, ST_COPY_H2D, a, n);
    out->fwd_bytes = out->bwd_bytes = w + a;
    out->first_s = w_in / n;
    out->act_host_bytes = a;
}

void st_cost_offload_granular_chunk(st_cost_ctx *ctx, const st_plan *p, int chunk, st_offload_copies *out) {
    memset(out, 0, sizeof *out);
    if (p->offload_params <= 0 && p->offload_activations <= 0) return;
    int chunk_layers[ST_MAX_STAGES], chunks = p->pp * p->vp;
    st_chunk_cost cc;
    st_plan_chunk_layers(p, ctx->m, chunk_layers);
    st_cost_chunk(ctx, p, chunk, &cc);
    double params = cc.params + (chunk == chunks - 1 ? st__tied_copy_params(ctx->m, p) : 0); /* as memory.c holds */
    double blocks = (double)chunk_layers[chunk] + (chunk == 0) + (chunk == chunks - 1);
    st__offload_granular(ctx->c, ctx->prof, p, params, cc.act_bytes, blocks, out);
    int64_t first = 0, nk[ST_MAX_KINDS];
    for (int i = 0; i < chunk; i++) first += chunk_layers[i];
    st__cost_count_blocks(ctx, first, chunk_layers[chunk], nk);
    const st__shard_cost *sc = st__cost_shard(ctx, p);
    double blk = 0; /* the most a block of the chunk keeps */
    for (int k = 0; k < sc->nk; k++) {
        double a = st__block_act(&sc->kind[k], p->recompute);
        if (nk[k] > 0 && a > blk) blk = a;
    }
    out->act_window_bytes = 2 * p->offload_activations * blk;
}
