/* cluster.c: GPU and cluster presets with their spec sheets, and cross-field checks.
 *
 * Peak numbers are dense (no 2:4 sparsity) from the vendor's datasheet. gemm_efficiency is the
 * best fraction of the bf16 peak that cuBLAS reaches on large GEMMs: the "maximum achievable
 * matmul FLOPS" measured by S. Bekman's mamf-finder (Machine Learning Engineering, chapter
 * "Accelerators", MAMF table): A100 SXM 267.9 of 312 TFLOP/s, H100 SXM 792.1 of 989. Where no such
 * measurement is published (L40S, A10) the value is the A100/H100 mean and says so; a calibration
 * profile replaces it.
 *
 * gemm_efficiency_fp8 is the same for fp8 (e4m3) GEMMs, from the fp8 half of the same MAMF table
 * (torch._scaled_mm, float8_e4m3fn, torch 2.7): H100 SXM 1402.6 of 1979 TFLOP/s (70.9%), H200 SXM
 * 1453.4 of 1979 (73.4%). fp8 reaches a smaller fraction of its (2x) peak than bf16 does, so an
 * fp8 GEMM is about 1.77x, not 2x, a bf16 one. Where no fp8 MAMF is published (L40S) it is 0 and
 * st_gpu_gemm_efficiency derives it: the bf16 efficiency times H100's fp8/bf16 ratio (70.9 / 80.3,
 * both from the table's current rows).
 *
 * SM counts from the architecture whitepapers (GA100 in A100: 108; GH100 in H100/H200 SXM: 132;
 * AD102 in L40S: 142; GA102 in A10: 72).
 *
 * Bandwidths are per direction: NVLink per GPU, NIC per port, PCIe per GPU. */
#include "src/core/core.h"

#include <string.h>

#define TF 1e12
#define GIB 1073741824.0
#define GBPS 1e9
#define GBIT (1e9 / 8)

static const st_gpu gpus[] = {
    {.name = "a100-sxm-40g", .memory_bytes = 40 * GIB, .hbm_bytes_per_s = 1555 * GBPS,
     .peak_flops = {[ST_DT_FP32] = 19.5 * TF, [ST_DT_TF32] = 156 * TF, [ST_DT_FP16] = 312 * TF,
                    [ST_DT_BF16] = 312 * TF},
     .gemm_efficiency = 267.9 / 312,
     .sms = 108,
     .source = "NVIDIA A100 Tensor Core GPU datasheet (2021); MAMF: Bekman, ML Engineering"},
    {.name = "a100-sxm-80g", .memory_bytes = 80 * GIB, .hbm_bytes_per_s = 2039 * GBPS,
     .peak_flops = {[ST_DT_FP32] = 19.5 * TF, [ST_DT_TF32] = 156 * TF, [ST_DT_FP16] = 312 * TF,
                    [ST_DT_BF16] = 312 * TF},
     .gemm_efficiency = 267.9 / 312,
     .sms = 108,
     .source = "NVIDIA A100 Tensor Core GPU datasheet (2021); MAMF: Bekman, ML Engineering"},
    {.name = "h100-sxm-80g", .memory_bytes = 80 * GIB, .hbm_bytes_per_s = 3350 * GBPS,
     .peak_flops = {[ST_DT_FP32] = 67 * TF, [ST_DT_TF32] = 494.7 * TF, [ST_DT_FP16] = 989.4 * TF,
                    [ST_DT_BF16] = 989.4 * TF, [ST_DT_FP8] = 1978.9 * TF},
     .gemm_efficiency = 792.1 / 989.4,
     .gemm_efficiency_fp8 = 1402.6 / 1978.9, /* MAMF table, FP8 (float8_e4m3fn), H100 SXM */
     .sms = 132,
     .source = "NVIDIA H100 Tensor Core GPU datasheet (SXM5); MAMF: Bekman, ML Engineering"},
    {.name = "h200-sxm-141g", .memory_bytes = 141e9, .hbm_bytes_per_s = 4800 * GBPS,
     .peak_flops = {[ST_DT_FP32] = 67 * TF, [ST_DT_TF32] = 494.7 * TF, [ST_DT_FP16] = 989.4 * TF,
                    [ST_DT_BF16] = 989.4 * TF, [ST_DT_FP8] = 1978.9 * TF},
     .gemm_efficiency = 792.1 / 989.4,
     .gemm_efficiency_fp8 = 1453.4 / 1978.9, /* MAMF table, FP8 (float8_e4m3fn), H200 SXM */
     .sms = 132,
     .source = "NVIDIA H200 Tensor Core GPU datasheet (SXM); same GH100 die as H100, so H100's MAMF"},
    {.name = "l40s", .memory_bytes = 48e9, .hbm_bytes_per_s = 864 * GBPS,
     .peak_flops = {[ST_DT_FP32] = 91.6 * TF, [ST_DT_TF32] = 183 * TF, [ST_DT_FP16] = 362.05 * TF,
                    [ST_DT_BF16] = 362.05 * TF, [ST_DT_FP8] = 733 * TF},
     .gemm_efficiency = 0.83,
     .sms = 142,
     .source = "NVIDIA L40S datasheet (dense); no published MAMF: mean of A100/H100 fractions"},
    {.name = "a10", .memory_bytes = 24e9, .hbm_bytes_per_s = 600 * GBPS,
     .peak_flops = {[ST_DT_FP32] = 31.2 * TF, [ST_DT_TF32] = 62.5 * TF, [ST_DT_FP16] = 125 * TF,
                    [ST_DT_BF16] = 125 * TF},
     .gemm_efficiency = 0.83,
     .sms = 72,
     .source = "NVIDIA A10 datasheet (dense); no published MAMF: mean of A100/H100 fractions"},
};

const st_gpu *st_gpu_presets(size_t *n) {
    *n = sizeof gpus / sizeof gpus[0];
    return gpus;
}

/* H100 SXM in the MAMF table's current rows (torch 2.7.0+cu126): fp8 1402.6 / 1979, bf16 794.5 / 989 */
#define ST_FP8_OVER_BF16_EFFICIENCY ((1402.6 / 1979) / (794.5 / 989))

double st_gpu_gemm_efficiency(const st_gpu *g, st_dtype dt) {
    if (dt != ST_DT_FP8) return g->gemm_efficiency;
    return g->gemm_efficiency_fp8 > 0 ? g->gemm_efficiency_fp8 : g->gemm_efficiency * ST_FP8_OVER_BF16_EFFICIENCY;
}

int st_gpu_preset(const char *name, st_gpu *out) {
    for (size_t i = 0; i < sizeof gpus / sizeof gpus[0]; i++)
        if (strcmp(gpus[i].name, name) == 0) {
            *out = gpus[i];
            return 0;
        }
    return ST_EINVAL;
}

typedef struct cluster_spec {
    const char *name, *gpu;
    double intra_gb_per_s, intra_latency_us;
    int nics;
    double nic_gbit, inter_latency_us, host_gib, pcie_gb_per_s;
    const char *source;
} cluster_spec;

/* NVLink 3 (A100): 600 GB/s bidirectional per GPU = 300 per direction; NVLink 4 (H100/H200): 900
 * bidirectional = 450. DGX A100: 8 ConnectX-6 HDR 200 Gb/s compute NICs; DGX H100/H200: 8
 * ConnectX-7 NDR 400 Gb/s. PCIe per GPU: Gen4 x16 = 32 GB/s raw, ~25 achieved; Gen5 x16 = 64
 * raw, ~50 achieved (the usual ~80% of raw after protocol overhead). Latencies: NVLink/NVSwitch
 * ~2 us and InfiniBand ~5 us end to end through NCCL (nccl-tests small-message times). */
static const cluster_spec specs[] = {
    {"dgx-a100-40g", "a100-sxm-40g", 300, 2, 8, 200, 5, 1024, 25,
     "NVIDIA DGX A100 System Architecture whitepaper (2020): 8x A100 40GB, NVSwitch, 8x HDR IB, 1 TB"},
    {"dgx-a100-80g", "a100-sxm-80g", 300, 2, 8, 200, 5, 2048, 25,
     "NVIDIA DGX A100 datasheet (80GB): 8x A100 80GB, NVSwitch, 8x HDR 200 Gb/s IB, 2 TB"},
    {"dgx-h100", "h100-sxm-80g", 450, 2, 8, 400, 5, 2048, 50,
     "NVIDIA DGX H100 datasheet: 8x H100 SXM5, NVLink 4 (900 GB/s), 8x ConnectX-7 NDR 400, 2 TB"},
    {"dgx-h200", "h200-sxm-141g", 450, 2, 8, 400, 5, 2048, 50,
     "NVIDIA DGX H200 datasheet: 8x H200 SXM, NVLink 4 (900 GB/s), 8x ConnectX-7 NDR 400, 2 TB"},
    {"l40s-pcie-8", "l40s", 25, 5, 4, 200, 5, 1024, 25,
     "8x L40S PCIe Gen4 server (no NVLink; GPU-GPU over PCIe ~25 GB/s), 4x 200 Gb/s NICs: a typical "
     "OEM configuration, check your vendor's"},
    {"a10-pcie-8", "a10", 25, 5, 2, 100, 5, 512, 25,
     "8x A10 PCIe Gen4 server (no NVLink), 2x 100 Gb/s NICs: a typical OEM configuration"},
};

const st_cluster *st_cluster_presets(size_t *n) {
    static st_cluster out[sizeof specs / sizeof specs[0]];
    static int done;
    if (!done) {
        for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++) {
            const cluster_spec *s = &specs[i];
            st_cluster *c = &out[i];
            memset(c, 0, sizeof *c);
            snprintf(c->name, sizeof c->name, "%s", s->name);
            c->nodes = 1;
            c->gpus_per_node = 8;
            st_gpu_preset(s->gpu, &c->gpu);
            c->intra_bytes_per_s = s->intra_gb_per_s * GBPS;
            c->intra_latency_s = s->intra_latency_us * 1e-6;
            c->nics_per_node = s->nics;
            c->nic_bytes_per_s = s->nic_gbit * GBIT;
            c->inter_latency_s = s->inter_latency_us * 1e-6;
            c->oversubscription = 1;
            c->host_memory_bytes = s->host_gib * GIB;
            c->pcie_bytes_per_s = s->pcie_gb_per_s * GBPS;
            snprintf(c->source, sizeof c->source, "%s", s->source);
        }
        done = 1;
    }
    *n = sizeof specs / sizeof specs[0];
    return out;
}

double st_cluster_reserved_bytes(const st_cluster *c) {
    return c->reserved_bytes > 0 ? c->reserved_bytes : ST_RESERVED_DEFAULT_BYTES;
}

int st_cluster_preset(const char *name, st_cluster *out) {
    size_t n;
    const st_cluster *p = st_cluster_presets(&n);
    for (size_t i = 0; i < n; i++)
        if (strcmp(p[i].name, name) == 0) {
            *out = p[i];
            return 0;
        }
    return ST_EINVAL;
}

int st_cluster_finalize(st_cluster *c, const char *file, st_error *err) {
#define BAD(key, ...) return st_error_set(err, ST_EINVAL, file, key, __VA_ARGS__)
    if (c->nodes < 1 || c->nodes > ST_MAX_GPUS) BAD("nodes", "must be 1..%d", ST_MAX_GPUS);
    if (c->gpus_per_node < 1 || c->gpus_per_node > 64) BAD("gpus_per_node", "must be 1..64");
    if (c->nodes * c->gpus_per_node > ST_MAX_GPUS)
        BAD("nodes", "%lld GPUs in all exceeds the limit of %d", (long long)(c->nodes * c->gpus_per_node),
            ST_MAX_GPUS);
    if (!(c->gpu.memory_bytes > 0)) BAD("gpu.memory_gib", "must be > 0");
    if (!(c->gpu.hbm_bytes_per_s > 0)) BAD("gpu.hbm_gb_per_s", "must be > 0");
    if (!(c->gpu.peak_flops[ST_DT_BF16] > 0) && !(c->gpu.peak_flops[ST_DT_FP16] > 0))
        BAD("gpu.peak_tflops", "needs a bf16 or fp16 peak > 0");
    if (!(c->gpu.gemm_efficiency > 0 && c->gpu.gemm_efficiency <= 1))
        BAD("gpu.gemm_efficiency", "must be in (0, 1]");
    if (!(c->gpu.gemm_efficiency_fp8 >= 0 && c->gpu.gemm_efficiency_fp8 <= 1))
        BAD("gpu.gemm_efficiency_fp8", "must be in (0, 1], or 0 for the derived value");
    if (!(c->intra_bytes_per_s > 0)) BAD("intra_node.bandwidth_gb_per_s", "must be > 0");
    if (c->nodes > 1 && (c->nics_per_node < 1 || !(c->nic_bytes_per_s > 0)))
        BAD("inter_node.nics_per_node", "a multi-node cluster needs NICs with bandwidth > 0");
    if (!(c->oversubscription >= 1)) BAD("inter_node.oversubscription", "must be >= 1");
    if (!(c->pcie_bytes_per_s > 0)) BAD("host.pcie_gb_per_s", "must be > 0");
    if (!(c->host_memory_bytes > 0)) BAD("host.memory_gib", "must be > 0");
    if (!(c->reserved_bytes >= 0 && c->reserved_bytes < c->gpu.memory_bytes))
        BAD("framework.reserved_gib", "must be below the GPU's memory");
    if (!c->name[0]) snprintf(c->name, sizeof c->name, "custom");
    st_text_clean(c->name); /* printed as text: no control characters */
    st_text_clean(c->gpu.name);
    return 0;
#undef BAD
}
