/* memory.c: GPU memory of one pipeline stage, and the rules behind it that the operator-level ILP
 * planner (search/autoshard.c) prices its stages with too (st_cost_weight_bytes,
 * st_cost_state_bytes, st_cost_inflight, st_cluster_reserved_bytes in core.h): one memory model.
 *
 * Model state (Rajbhandari et al. 2020, ZeRO, Sec. 3): 16-bit weights (2 bytes), gradients
 * (grad_bytes: 4 where Megatron-LM accumulates in fp32), Adam's fp32 master weights, m and v (12;
 * 8 for fp32 training, which needs no master copy). ZeRO-1 shards the optimizer states over the
 * gradient-reduction group (dp x cp; dp x cp / ep for expert weights), ZeRO-2 the gradients too,
 * ZeRO-3 the weights too (plus a prefetch window of two gathered blocks). ZeRO-3 with fp32
 * gradients is priced as FSDP2 runs it in torchtitan: fp32 sharded weights that are Adam's master
 * copy, one block's unsharded gradients and reduce-scatter input, the root group (embedding and
 * output layer) gathered all step. Offload moves the optimizer states (and with offload=params the
 * weights) to host memory.
 *
 * Activations (Korthikanti et al. 2022, Sec. 4 and 5, generalised per operator in opgraph.c): per
 * block and micro-batch the saved bytes of its operators; selective recompute drops the attention
 * core (unfused: softmax and dropout; fused: only the log-sum-exp, as the checkpoint keeps q, k, v
 * and the projection keeps the output); full recompute keeps only the block input and needs one block's full
 * activations while it recomputes; recompute=op (torchtitan's op-level policy) keeps the block input
 * and the outputs the policy saves, and restores the rest while the block's backward runs. In-flight micro-batches follow Megatron-LM's schedules
 * (schedules.py): 1F1B warms up pp - d - 1 micro-batches on stage d, so holds pp - d (all m when
 * there are fewer); the interleaved schedule holds (pp - d - 1) * 2 + (vp - 1) * pp + 1 chunk
 * activations, which for d = 0 is Korthikanti's pp * (1 + (pp - 1) / (pp * vp)); GPipe holds all
 * m; ZB-H1 and ZB-V pp on every stage, DualPipe pp + 1 of a stage (st_cost_inflight), its ranks holding two
 * stages' model state. Their weight halves read the linear layers' inputs X and output gradients dY (dW =
 * dY^T X): a weight half held back keeps the dY its input half made (torch's stage_backward_input keeps them
 * in param_group["grads"] for stage_backward_weight, DualPipe's WeightGradStore in its queued closures) and,
 * under full recompute (recompute=op: those its policy does not save), the X the input half's recompute
 * restored (st__block_wgrad), counted at the moment
 * the schedule holds the most of them beside its activations. The embedding's dropout mask lives on the
 * first stage, logits and the fp32 softmax of the loss on the last. fp8, mxfp8 and nvfp4 training add
 * Transformer Engine's cached weight copies (st_cost_weight_copy_bytes per parameter of its
 * quantised linear layers; with fp8_param_gather those copies replace the 16-bit weights); its
 * quantised saved inputs are in the operators' saved bytes (opgraph.c). Context parallelism's
 * key/value buffers (opgraph.c, st_op.work_bytes) live only while attention runs: the largest
 * block's, once, on top. */
#include "cost_private.h"

#include <string.h>

double st_cost_weight_bytes(st_dtype dt) { return st_dtype_bytes(st_dtype_storage(dt)); }

double st_cost_weight_copy_bytes(st_dtype dt, const st_gpu *g) {
    if (!st_dtype_quantised(dt)) return 0;
    /* tensor-scaled fp8 on sm100: the fp8 copy serves every GEMM layout, no transpose (cost.h) */
    if (dt == ST_DT_FP8 && g->peak_flops[ST_DT_NVFP4] > 0) return st_dtype_bytes(dt);
    return 2 * st_dtype_bytes(dt);
}

double st_cost_gather_bytes(const st_plan *p, double params, double quant_params) {
    double w = st_cost_weight_bytes(p->dtype);
    /* Megatron-LM's param_and_grad_buffer.py: fp8 (tensor-scaled) parameters live in a uint8 buffer that
     * the all-gather fills; MXFP8's column-wise copy cannot be made from gathered row-wise data, so
     * Megatron Bridge's recipe (reuse_grad_buf_for_mxfp8_param_ag) gathers the 16-bit values into the
     * gradient buffer and quantises them after */
    if (!p->fp8_param_gather || p->dtype != ST_DT_FP8) return params * w;
    return (params - quant_params) * w + quant_params * st_dtype_bytes(ST_DT_FP8);
}

void st_cost_state_bytes(st_dtype dt, int grad_bytes, int zero, st_offload off, double shard, st_state_bytes *out) {
    /* 16-bit weights need an fp32 master copy beside Adam's m and v; fp32 weights are their own */
    double opt = dt != ST_DT_FP32 && dt != ST_DT_TF32 ? 12 : 8;
    double w = st_cost_weight_bytes(dt);
    out->weights = off == ST_OFF_PARAMS ? 0 : zero >= 3 ? w / shard : w;
    out->grads = zero >= 2 ? grad_bytes / shard : grad_bytes;
    out->optimizer = off != ST_OFF_NONE ? 0 : zero >= 1 ? opt / shard : opt;
    /* FSDP2, torchtitan's ZeRO-3 (torch fully_shard with MixedPrecisionPolicy(param_dtype=bf16,
     * reduce_dtype=fp32), torchtitan's training.mixed_precision_param/_reduce defaults): the sharded
     * parameters are fp32 and are what Adam updates, so the master copy is the weights and no sharded
     * 16-bit copy exists; 16-bit weights live only gathered (st__cost_stage_memory's window). 4 + 8
     * (+ grad_bytes) per parameter over the shard: the 16 / d bytes of ZeRO's Sec. 3.1 with fp32 grads.
     * With 16-bit gradients (grad_bytes = 2) the layout stays ZeRO's (DeepSpeed stage 3 keeps 16-bit
     * parameter and gradient partitions beside the fp32 master: 2 + 2 + 12). */
    if (zero >= 3 && off == ST_OFF_NONE && opt == 12 && grad_bytes == 4) {
        out->weights = 4 / shard;
        out->optimizer = 8 / shard;
    }
    out->total = out->weights + out->grads + out->optimizer;
}

double st_cost_inflight(st_schedule s, int pp, int vp, int stage, int64_t m) {
    switch (s) {
    case ST_SCHED_GPIPE: return (double)m;
    case ST_SCHED_INTERLEAVED: {
        double ch = (double)(pp - stage - 1) * 2 + (double)(vp - 1) * pp + 1;
        if (ch > (double)m * vp) ch = (double)m * vp;
        return ch / vp;
    }
    /* ZB-V: every rank holds 2 pp chunks' activations at its peak, the 1F1B first stage's pp
     * micro-batches (Qi et al. 2401.10241 Sec. 6: "the same peak memory as 1F1B"): rank d holds
     * 2 pp - 1 - d of its first chunk and d + 1 of its second (counted in torch's
     * ScheduleZBVZeroBubble order; exact when the chunks' activations are equal, and above the
     * lowering's peak by up to (pp - 1) x the difference where the loss chunk holds more) */
    /* ZB-H1: stage d's pp - d forwards waiting for their input halves and the d weight halves it holds
     * back, each keeping its micro-batch's activations (src/lower/lower.c frees them with the weight
     * half): pp on every stage once m >= pp, the paper's "same peak memory as 1F1B" (Qi et al. 2401.10241
     * Sec. 3.1), all m before */
    case ST_SCHED_ZB:
    case ST_SCHED_ZBV: return (double)pp < (double)m ? (double)pp : (double)m;
    /* DualPipe: pp + 1 micro-batches of one stage (DeepSeek-V3 report, Table 2), in units of the rank's
     * two stages' (one micro-batch each way) half that; the plan holds m >= 2 pp */
    case ST_SCHED_DUALPIPE: return (pp + 1) / 2.0;
    default: return (double)(pp - stage) < (double)m ? (double)(pp - stage) : (double)m;
    }
}

double st__block_act(const st__pass *ps, st_recompute rc) {
    switch (rc) {
    case ST_REC_SELECTIVE: return ps->saved_bytes - ps->sel_bytes;
    case ST_REC_FULL: return ps->input_bytes;
    case ST_REC_OP: return ps->input_bytes + ps->op_bytes;
    default: return ps->saved_bytes;
    }
}

double st__block_working(const st__pass *ps, st_recompute rc) {
    switch (rc) {
    case ST_REC_FULL: return ps->saved_bytes;
    case ST_REC_OP: return ps->saved_bytes - (st__block_act(ps, rc) - ps->op_comm_bytes); /* (what op drops) */
    default: return 0;
    }
}

double st__block_wgrad(const st__pass *ps, st_recompute rc) { return st__block_wgrad_working(ps, rc) + ps->dy_bytes; }

double st__block_wgrad_working(const st__pass *ps, st_recompute rc) {
    return rc == ST_REC_FULL ? ps->wgrad_bytes : rc == ST_REC_OP ? ps->op_wgrad_bytes : 0;
}

double st__quant_params(const st__shard_cost *sc, const st__stage_class *cls) {
    double b = 0;
    for (int k = 0; k < sc->nk; k++) b += (double)cls->n[k] * sc->kind[k].quant_params;
    return b;
}

/* tied output layer: Megatron keeps a copy of the embedding on the last stage (zbv's V puts the
 * output layer on the first stage, beside the embedding itself; dualpipe's ends hold both) */
double st__tied_copy_params(const st_model *m, const st_plan *p) {
    if (!m->tied_embeddings || p->pp <= 1 || p->schedule == ST_SCHED_ZBV || p->schedule == ST_SCHED_DUALPIPE)
        return 0;
    return (double)st_model_padded_vocab(m, p->tp) / p->tp * (double)m->hidden;
}

/* FSDP2 (torchtitan's ZeRO-3: fp32 sharded weights that are Adam's master, st_cost_state_bytes)
 * with no pipeline and one micro-batch per step: the step whose forward holds no gradients. */
static int fsdp2_one_pass(const st_plan *p) {
    return p->zero >= 3 && p->offload == ST_OFF_NONE && p->dtype != ST_DT_FP32 && p->dtype != ST_DT_TF32 &&
           p->grad_bytes == 4 && p->pp == 1 && st_plan_microbatches(p) == 1;
}

void st__cost_stage_memory(st_cost_ctx *ctx, const st_plan *p, const st__shard_cost *sc, const st__stage_class *cls,
                           int stage, st_stage_memory *out, double *dense_params, double *expert_params) {
    const st_model *m = ctx->m;
    int pp = p->pp, vp = p->vp;
    memset(out, 0, sizeof *out);

    double dense = 0, expert = 0, act_mb = 0;
    /* the largest block's working set, weights, and cp's K/V buffers (st_op.work_bytes, live while
     * its attention runs) */
    double working = 0, block_max = 0, act_max = 0, work = 0, b8 = 0; /* act_max: that block's kept bytes */
    double act_blk = 0; /* the most a block keeps */
    double wgrad = 0, wtop = 0; /* full recompute: the blocks' linear-layer inputs, and the working block's */
    for (int k = 0; k < sc->nk; k++) {
        const st__pass *ps = &sc->kind[k];
        double nb = (double)cls->n[k];
        dense += nb * ps->params;
        expert += nb * ps->expert_params;
        double act = st__block_act(ps, p->recompute);
        act_mb += nb * act;
        if (nb <= 0) continue;
        wgrad += nb * st__block_wgrad(ps, p->recompute);
        if (st__block_working(ps, p->recompute) > working) {
            working = st__block_working(ps, p->recompute);
            wtop = st__block_wgrad_working(ps, p->recompute);
        }
        if (act > act_blk) act_blk = act;
        if (ps->params + ps->expert_params > block_max)
            block_max = ps->params + ps->expert_params, act_max = act;
        if (ps->work_bytes > work) work = ps->work_bytes;
        if (ps->quant_params > b8) b8 = ps->quant_params;
    }
    if (cls->head) {
        dense += sc->head.params;
        act_mb += sc->head.saved_bytes;
    }
    if (cls->tail) {
        dense += sc->tail.params;
        act_mb += sc->tail.saved_bytes;
        dense += st__tied_copy_params(m, p);
    }

    double inflight = st_cost_inflight(p->schedule, pp, vp, stage, st_plan_microbatches(p));
    /* offload_activations: 1 - g of every in-flight micro-batch's activations stay, and the host share
     * of two blocks' (the one whose copy runs, the one computing; cost/offload.c) */
    double act_kept = act_mb * inflight;
    if (p->offload_activations > 0)
        act_kept = act_kept * (1 - p->offload_activations) + 2 * p->offload_activations * act_blk;
    double dpn = (double)p->dp * p->cp, epn = dpn / p->ep;
    if (epn < 1) epn = 1;
    /* per parameter: dense weights sharded over the dp x cp group, experts over their own */
    st_state_bytes sd, se;
    st_cost_state_bytes(p->dtype, p->grad_bytes, p->zero, p->offload, dpn, &sd);
    st_cost_state_bytes(p->dtype, p->grad_bytes, p->zero, p->offload, epn, &se);
    out->weights_bytes = dense * sd.weights + expert * se.weights;
    double wb = st_cost_weight_bytes(p->dtype);
    /* offload_params (zero 0-2): 1 - f of the weights stay, and two cached chunks of a block's host share
     * (cost/offload.c) */
    if (p->offload_params > 0)
        out->weights_bytes = out->weights_bytes * (1 - p->offload_params) + 2 * p->offload_params * block_max * wb;
    /* ZeRO-3 and offload=params gather (or copy in) a block's weights while the one before runs:
     * a window of two blocks' full weights */
    if (p->zero >= 3 || p->offload == ST_OFF_PARAMS) out->weights_bytes += 2 * block_max * wb;
    /* fp8, mxfp8, nvfp4: the cached quantised weights and their transposes of the weights the GPU computes
     * with: all of its layers', or with ZeRO-3 and offload=params only those of the two gathered
     * blocks (the copies live and go with the gathered weights) */
    double quant_w = st__quant_params(sc, cls), copy_b = st_cost_weight_copy_bytes(p->dtype, &ctx->c->gpu);
    if (p->zero >= 3 || p->offload == ST_OFF_PARAMS) {
        if (2 * b8 < quant_w) quant_w = 2 * b8;
    }
    out->weights_bytes += copy_b * quant_w;
    /* fp8_param_gather (Megatron --fp8-param-gather, Transformer Engine's fp8_model_init): the quantised
     * copies are the weights, no 16-bit copy beside them; the distributed optimizer's fp32 master shard
     * and the gradient buffer stay (zero 1-2 only, st_plan_finalize) */
    if (p->fp8_param_gather) out->weights_bytes -= wb * quant_w;
    out->grads_bytes = dense * sd.grads + expert * se.grads;
    if (p->zero >= 3 && p->offload == ST_OFF_NONE) {
        /* FSDP2 (torch/distributed/fsdp/_fully_shard/_fsdp_collectives.py, foreach_reduce): a block's
         * backward leaves its unsharded 16-bit gradients, copied into a reduce-scatter input in the
         * reduce dtype (grad_bytes) before they are freed; that input lives until the next block's
         * post-backward waits for its reduce-scatter, while that block's 16-bit gradients appear: one
         * block's 16-bit gradients and one reduce-scatter input at a time */
        out->grads_bytes += block_max * (wb + p->grad_bytes);
        /* torchtitan wraps the embedding, final norm and output layer in the root fully_shard group
         * (apply_fsdp): gathered for the whole forward and again for the whole backward */
        double root = (cls->head ? sc->head.params : 0) + (cls->tail ? sc->tail.params : 0);
        out->weights_bytes += root * wb;
    }
    out->optimizer_bytes = dense * sd.optimizer + expert * se.optimizer;
    out->optimizer_bytes *= 1 - p->offload_optimizer; /* granular offload: the rest is on the host */
    /* the eager loss's 16-bit logits and fp32 copy (the tail's work_bytes) live while it runs,
     * after the last block's forward: beside the saved activations, not the blocks' working set */
    double tail_work = cls->tail ? sc->tail.work_bytes : 0;
    double peak_extra = working + work;
    /* an input half (one of the rank's two chunks'): its chunk's linear layers' dY and, under full recompute,
     * one block restored, the chunk's other blocks' linear inputs kept for its weight half (DualPipe's whole
     * backwards run as the two halves back to back) */
    /* the last chunk's weight half keeps the logits' gradient too (st_cost_chunk's wgrad_bytes) */
    double tail_dy = cls->tail ? sc->tail.dy_bytes : 0;
    if (p->schedule == ST_SCHED_ZBV || p->schedule == ST_SCHED_DUALPIPE) peak_extra += wgrad / 2 + tail_dy - wtop;
    if (p->schedule == ST_SCHED_ZB) {
        /* ZB-H1: each weight half held back keeps its micro-batch's linear-layer dY and, under full recompute,
         * inputs (wgrad) from its input half, which makes the dY and whose recompute restores the inputs block
         * by block (one block's working set, the others' inputs beside it). Stage d's input half i runs with
         * min(i, d) weight halves held and i's activations among the forwards'; both counts peak at
         * i = min(d, m - 1), as in src/lower/lower.c's order */
        int64_t mb = st_plan_microbatches(p), held = stage < mb - 1 ? stage : mb - 1;
        act_kept += (double)held * (wgrad + tail_dy);
        peak_extra += wgrad + tail_dy - wtop;
    }
    if (tail_work > peak_extra) peak_extra = tail_work;
    out->activations_bytes = act_kept + peak_extra;
    out->microbatch_act_bytes = act_mb;
    if (p->schedule == ST_SCHED_ZBV && cls->head && cls->tail) {
        /* ZB-V's stage 0 holds the embedding's chunk and the loss's: at its peak 2 pp - 1 micro-batches
         * of the first and one of the last, or (from 2 pp micro-batches on) 2 pp of the first
         * (st_cost_inflight's count; its blocks split evenly over the two chunks) */
        double blocks = act_mb - sc->head.saved_bytes - sc->tail.saved_bytes;
        double c0 = blocks / 2 + sc->head.saved_bytes, c1 = blocks / 2 + sc->tail.saved_bytes;
        double last = st_plan_microbatches(p) >= 2LL * pp && c0 > c1 ? c0 : c1;
        out->activations_bytes = (2.0 * pp - 1) * c0 + last + peak_extra;
    }
    double a0 = act_mb / 2, a1 = act_mb / 2; /* zbv, dualpipe: a micro-batch's in each of the rank's chunks */
    if (cls->head && cls->tail) { /* the ends: the embedding's chunk (their first) and the loss's */
        double blocks = act_mb - sc->head.saved_bytes - sc->tail.saved_bytes;
        a0 = blocks / 2 + sc->head.saved_bytes, a1 = blocks / 2 + sc->tail.saved_bytes;
    }
    if (p->schedule == ST_SCHED_ZBV && wgrad > 0) {
        /* ZB-V: its steady state runs each weight half right after its input half (the input half making its
         * chunk's dY and, under full recompute, restoring one block of its chunk and keeping the chunk's other
         * blocks' linear inputs: peak_extra), but its cool-down holds them back: rank d runs d pairs of input halves
         * (one of each chunk) with no weight half, then pp - d input halves of its first chunk, each followed
         * by the oldest weight half (src/lower/lower.c's zbv_order). The first of those runs with pp
         * micro-batches of the first chunk and d of the second in flight and d weight halves of each held,
         * every weight half keeping its chunk's dY and linear inputs (half the stage's: the blocks split evenly
         * over the two chunks); the steady state's peak (above) is the larger unless those outweigh the
         * pp - d micro-batches of the second chunk it holds more */
        double cool = pp * a0 + stage * (a1 + wgrad) + working + work + wgrad / 2 - wtop;
        if (cool > out->activations_bytes) out->activations_bytes = cool;
    }
    if (p->schedule == ST_SCHED_DUALPIPE && wgrad > 0) {
        /* DualPipe: its cool-down's h + 1 pairs of whole backwards (h = min(d, pp - 1 - d))
         * queue their weight halves from the middle one on (dualpipe.py's WeightGradStore; src/lower/lower.c's
         * dualpipe_order): h + 1 queued, then run. The last of them peaks, with h weight halves held (each
         * keeping its chunk's dY and linear inputs) and pp / 2 micro-batches of the rank's two chunks in flight,
         * ceil(h / 2) of them the second's */
        int h = stage < pp - 1 - stage ? stage : pp - 1 - stage, late = (h + 1) / 2;
        double cool = (pp / 2 - late) * a0 + late * a1 + h * wgrad / 2 + working + work + wgrad / 2 - wtop;
        if (cool > out->activations_bytes) out->activations_bytes = cool;
    }
    if (p->schedule == ST_SCHED_DUALPIPE) {
        /* dualpipe.py's order holds pp - h micro-batches of the copy that reaches rank d first (the chunk of the
         * nearer end: the embedding's at the ends) and h + 1 of the other, where Table 2's count (st_cost_inflight)
         * is (pp + 1) / 2 of each: ((pp - 1) / 2 - h)(a0 - a1) more, 0 where the two chunks keep the same (the
         * middle ranks), less at the ends where the loss's chunk keeps more (its logits: llama3-8b tp=2 pp=4, 3.1
         * GiB less on ranks 0 and 3); the simulator's peak exactly (tests/test_lower.c) */
        int h = stage < pp - 1 - stage ? stage : pp - 1 - stage;
        out->activations_bytes += ((pp - 1) / 2.0 - h) * (a0 - a1);
    }
    if (p->offload_params > 0 || p->offload_activations > 0)
        out->host_bytes = p->offload_params * (dense + expert) * wb + p->offload_activations * act_mb * inflight;
    out->other_bytes = st_cluster_reserved_bytes(ctx->c);
    out->base_bytes = out->weights_bytes + out->grads_bytes + out->optimizer_bytes + out->other_bytes;
    out->backward_extra_bytes = 0;
    if (fsdp2_one_pass(p)) {
        /* FSDP2 with one micro-batch per step (no pipeline, no accumulation): two moments, priced
         * apart. torchtitan's step starts with optimizer.zero_grad(), whose set_to_none (PyTorch's
         * default since 2.0) frees the sharded gradients, so none exist in the forward; its
         * apply_fsdp leaves the last block gathered after its forward ("FSDP would prefetch it
         * immediately"), and the root group (embedding, final norm, output layer) is gathered for
         * the forward (parallelize_llama.py). (a) The forward's end, the loss running: the saved
         * activations and the loss's transient; the sharded fp32 weights, the last block and the
         * root gathered; no gradients. (b) The first block's backward (later blocks hold less: each
         * frees its activations and adds only its shard of fp32 gradients): the loss's saved
         * tensors are gone; two blocks and the root gathered; the output layer's 16-bit gradients
         * (the root's reduce-scatter waits for the embedding's, at the end); the block's 16-bit
         * gradients, then its reduce-scatter input in the reduce dtype, which FSDP2 makes after
         * the block's backward has freed the block's activations, and its gradient shard; the
         * recompute's working set. A program allocates only when an instruction starts, so (b)
         * is priced never below (a)'s state, which keeps the estimate and the simulator's program
         * (base_bytes, backward_extra_bytes) alike. */
        double root = (cls->head ? sc->head.params : 0) + (cls->tail ? sc->tail.params : 0);
        double out_grads = cls->tail ? sc->tail.params + (m->tied_embeddings ? sc->head.params : 0) : 0;
        double sharded = dense * sd.weights + expert * se.weights + copy_b * quant_w;
        double a_weights = sharded + (block_max + root) * wb;
        double a_state = a_weights + out->optimizer_bytes + out->other_bytes;
        double a = a_state + act_mb + (work > tail_work ? work : tail_work);
        double b_weights = sharded + (2 * block_max + root) * wb;
        double rs_in = block_max * p->grad_bytes - act_max;
        double b_grads = (out_grads + block_max) * wb + (rs_in > 0 ? rs_in : 0) + block_max * sd.grads;
        double extra = b_weights + b_grads - a_weights - (cls->tail ? sc->tail.saved_bytes : 0);
        if (extra < 0) extra = 0;
        double b = a_state + extra + act_mb + working + work;
        out->base_bytes = a_state;
        out->backward_extra_bytes = extra;
        if (a >= b) {
            out->weights_bytes = a_weights, out->grads_bytes = 0;
            out->activations_bytes = a - a_state;
        } else {
            out->weights_bytes = b_weights, out->grads_bytes = b_grads;
            out->activations_bytes = b - (b_weights + b_grads + out->optimizer_bytes + out->other_bytes);
        }
    }
    out->total_bytes = out->weights_bytes + out->grads_bytes + out->optimizer_bytes + out->activations_bytes +
                       out->other_bytes;
    *dense_params = dense;
    *expert_params = expert;
}

void st_cost_stage_memory(st_cost_ctx *ctx, const st_plan *p, int stage, st_stage_memory *out) {
    st__stage_class cls;
    double a, b;
    st__cost_stage_class(ctx, p, stage, &cls);
    st__cost_stage_memory(ctx, p, st__cost_shard(ctx, p), &cls, stage, out, &a, &b);
}
