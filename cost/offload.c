/* offload.c: granular optimizer offload, a fraction f of the optimizer states in host memory
 * (plan key offload_optimizer; st_plan.offload_optimizer).
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
#include "cost_private.h"

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
