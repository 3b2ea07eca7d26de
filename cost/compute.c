/* compute.c: time of one operator pass on one GPU.
 *
 * t = max(FLOPs / (peak x efficiency), bytes / (HBM bandwidth x efficiency)) + kernels x overhead
 * (a roofline with achievable rather than datasheet ceilings). Efficiency comes from a
 * calibration profile when one is given and covers the op's class; otherwise from the default
 * curve: the GPU's best achievable GEMM fraction (st_gpu.gemm_efficiency, measured MAMF) times a
 * tile-quantisation factor per GEMM dimension. Element-wise work runs on the CUDA cores (fp32
 * peak) and is almost always bound by HBM. */
#include "cost_private.h"

static double dim_factor(double d) { return d / (d + ST_GEMM_HALF_DIM); }

double st_cost_op_time(const st_cluster *c, const st_profile *prof, const st_op *op, st_dtype dt, int backward) {
    double flops = backward ? op->bwd_flops : op->fwd_flops;
    double bytes = backward ? op->bwd_bytes : op->fwd_bytes;
    int kernels = backward ? op->kernels_bwd : op->kernels_fwd;
    if (flops <= 0 && bytes <= 0) return 0;
    const st_gpu *g = &c->gpu;
    double t_flops = 0, t_bytes;
    if (op->cls == ST_OPC_GEMM || op->cls == ST_OPC_BGEMM) {
        /* fp8 recipes (Transformer Engine) run the linear layers in fp8, attention in bf16 */
        st_dtype gdt = (dt == ST_DT_FP8 && op->cls == ST_OPC_BGEMM) ? ST_DT_BF16 : dt;
        double peak = g->peak_flops[gdt] > 0 ? g->peak_flops[gdt] : g->peak_flops[ST_DT_BF16];
        double rate = prof ? st_profile_flops_per_s(prof, op->cls, gdt, flops / kernels) : 0;
        if (!(rate > 0))
            rate = peak * g->gemm_efficiency * dim_factor(op->m) * dim_factor(op->n) * dim_factor(op->k);
        t_flops = flops / rate;
    } else if (flops > 0 && g->peak_flops[ST_DT_FP32] > 0) {
        t_flops = flops / g->peak_flops[ST_DT_FP32];
    }
    double bw = prof ? st_profile_bytes_per_s(prof, op->cls, bytes / kernels) : 0;
    if (!(bw > 0)) bw = g->hbm_bytes_per_s * ST_HBM_EFFICIENCY;
    t_bytes = bytes / bw;
    return (t_flops > t_bytes ? t_flops : t_bytes) + kernels * ST_KERNEL_OVERHEAD_S;
}
