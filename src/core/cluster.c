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
 * AD102 in L40S: 142; GA102 in A10: 72); for AMD the compute units (CUs) of the datasheet.
 *
 * Blackwell (B200, B300, GB200, GB300): per-GPU dense peaks are the system datasheets' sparse
 * figures halved and divided by the GPUs (DGX B200: 72 PFLOPS fp8 sparse for 8 GPUs = 4.5 dense
 * each; GB200 NVL72: 720 PFLOPS fp8 sparse for 72 = 5 dense each). No MAMF is published for them
 * (the MAMF table's Blackwell rows are empty), so gemm_efficiency is H100 SXM's fraction and says
 * so; a calibration profile replaces it. Their MXFP8 peak is the fp8 one (the datasheets' FP8 row:
 * Blackwell's tensor cores apply the 1x32 block scales in the MMA itself, PTX tcgen05.mma
 * kind::mxf8f6f4 at kind::f8f6f4's rate), nvfp4 the datasheets' FP4 row (kind::mxf4nvf4): twice fp8
 * on B200 and GB200, three times on B300 and GB300 (Blackwell Ultra). Hopper, Ada and AMD's
 * MI300X/MI325X have no block-scaled GEMMs: 0, and a plan asking for them is refused.
 * AMD (MI300X, MI325X): the MAMF table's bf16 rows; MI355X has none and takes MI325X's fraction.
 * H800 and H20 are cut-down GH100s: H100's fractions.
 *
 * tdp_watts is the board power limit of the datasheet (NVIDIA "max TDP", AMD "TBP"); the energy
 * estimate of `strata compare` starts from it.
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
     .sms = 108, .tdp_watts = 400,
     .source = "NVIDIA A100 Tensor Core GPU datasheet (2021); MAMF: Bekman, ML Engineering"},
    {.name = "a100-sxm-80g", .memory_bytes = 80 * GIB, .hbm_bytes_per_s = 2039 * GBPS,
     .peak_flops = {[ST_DT_FP32] = 19.5 * TF, [ST_DT_TF32] = 156 * TF, [ST_DT_FP16] = 312 * TF,
                    [ST_DT_BF16] = 312 * TF},
     .gemm_efficiency = 267.9 / 312,
     .sms = 108, .tdp_watts = 400,
     .source = "NVIDIA A100 Tensor Core GPU datasheet (2021); MAMF: Bekman, ML Engineering"},
    {.name = "h100-sxm-80g", .memory_bytes = 80 * GIB, .hbm_bytes_per_s = 3350 * GBPS,
     .peak_flops = {[ST_DT_FP32] = 67 * TF, [ST_DT_TF32] = 494.7 * TF, [ST_DT_FP16] = 989.4 * TF,
                    [ST_DT_BF16] = 989.4 * TF, [ST_DT_FP8] = 1978.9 * TF},
     .gemm_efficiency = 792.1 / 989.4,
     .gemm_efficiency_fp8 = 1402.6 / 1978.9, /* MAMF table, FP8 (float8_e4m3fn), H100 SXM */
     .sms = 132, .tdp_watts = 700,
     .source = "NVIDIA H100 Tensor Core GPU datasheet (SXM5); MAMF: Bekman, ML Engineering"},
    {.name = "h200-sxm-141g", .memory_bytes = 141e9, .hbm_bytes_per_s = 4800 * GBPS,
     .peak_flops = {[ST_DT_FP32] = 67 * TF, [ST_DT_TF32] = 494.7 * TF, [ST_DT_FP16] = 989.4 * TF,
                    [ST_DT_BF16] = 989.4 * TF, [ST_DT_FP8] = 1978.9 * TF},
     .gemm_efficiency = 792.1 / 989.4,
     .gemm_efficiency_fp8 = 1453.4 / 1978.9, /* MAMF table, FP8 (float8_e4m3fn), H200 SXM */
     .sms = 132, .tdp_watts = 700,
     .source = "NVIDIA H200 Tensor Core GPU datasheet (SXM); same GH100 die as H100, so H100's MAMF"},
    {.name = "l40s", .memory_bytes = 48e9, .hbm_bytes_per_s = 864 * GBPS,
     .peak_flops = {[ST_DT_FP32] = 91.6 * TF, [ST_DT_TF32] = 183 * TF, [ST_DT_FP16] = 362.05 * TF,
                    [ST_DT_BF16] = 362.05 * TF, [ST_DT_FP8] = 733 * TF},
     .gemm_efficiency = 0.83,
     .sms = 142, .tdp_watts = 350,
     .source = "NVIDIA L40S datasheet (dense); no published MAMF: mean of A100/H100 fractions"},
    {.name = "a10", .memory_bytes = 24e9, .hbm_bytes_per_s = 600 * GBPS,
     .peak_flops = {[ST_DT_FP32] = 31.2 * TF, [ST_DT_TF32] = 62.5 * TF, [ST_DT_FP16] = 125 * TF,
                    [ST_DT_BF16] = 125 * TF},
     .gemm_efficiency = 0.83,
     .sms = 72, .tdp_watts = 150,
     .source = "NVIDIA A10 datasheet (dense); no published MAMF: mean of A100/H100 fractions"},
    /* H800 SXM: H100 SXM's compute and memory with NVLink cut to 400 GB/s (export version) */
    {.name = "h800-sxm-80g", .memory_bytes = 80 * GIB, .hbm_bytes_per_s = 3350 * GBPS,
     .peak_flops = {[ST_DT_FP32] = 67 * TF, [ST_DT_TF32] = 494.7 * TF, [ST_DT_FP16] = 989.4 * TF,
                    [ST_DT_BF16] = 989.4 * TF, [ST_DT_FP8] = 1978.9 * TF},
     .gemm_efficiency = 792.1 / 989.4,
     .gemm_efficiency_fp8 = 1402.6 / 1978.9,
     .sms = 132, .tdp_watts = 700,
     .source = "NVIDIA H800 SXM5 product brief (H100 SXM5 compute, NVLink 400 GB/s); GH100: H100's MAMF"},
    /* H20: a cut-down GH100 (78 SMs) with H200-class memory */
    {.name = "h20-96g", .memory_bytes = 96e9, .hbm_bytes_per_s = 4000 * GBPS,
     .peak_flops = {[ST_DT_FP32] = 44 * TF, [ST_DT_TF32] = 74 * TF, [ST_DT_FP16] = 148 * TF,
                    [ST_DT_BF16] = 148 * TF, [ST_DT_FP8] = 296 * TF},
     .gemm_efficiency = 792.1 / 989.4,
     .gemm_efficiency_fp8 = 1402.6 / 1978.9,
     .sms = 78, .tdp_watts = 400,
     .source = "NVIDIA H20 datasheet (dense; 96 GB HBM3, 4.0 TB/s, NVLink 900 GB/s); GH100: H100's MAMF"},
    /* HGX/DGX B200: DGX B200 datasheet, 8 GPUs: 1,440 GB HBM3e, 64 TB/s, fp4 144 / fp8 72 / bf16 36 /
     * tf32 18 PFLOPS sparse, fp32 600 TFLOPS; 1,000 W per GPU; 148 SMs (Blackwell whitepaper) */
    {.name = "b200-180g", .memory_bytes = 180e9, .hbm_bytes_per_s = 8000 * GBPS,
     .peak_flops = {[ST_DT_FP32] = 75 * TF, [ST_DT_TF32] = 1125 * TF, [ST_DT_FP16] = 2250 * TF,
                    [ST_DT_BF16] = 2250 * TF, [ST_DT_FP8] = 4500 * TF, [ST_DT_MXFP8] = 4500 * TF,
                    [ST_DT_NVFP4] = 9000 * TF}, /* fp4 144 PFLOPS sparse / 8 / 2 */
     .gemm_efficiency = 792.1 / 989.4,
     .sms = 148, .tdp_watts = 1000,
     .source = "NVIDIA DGX B200 datasheet (per GPU, dense); no Blackwell MAMF: H100 SXM's fraction"},
    /* HGX/DGX B300 (Blackwell Ultra): DGX B300 datasheet, 8 GPUs: 2.3 TB HBM3e, fp4 144 sparse / 108
     * dense, fp8 72 sparse PFLOPS, bf16 as B200; 1,100 W per GPU; 160 SMs (NVIDIA technical blog
     * "Inside NVIDIA Blackwell Ultra", 2025) */
    {.name = "b300-288g", .memory_bytes = 288e9, .hbm_bytes_per_s = 8000 * GBPS,
     .peak_flops = {[ST_DT_FP32] = 75 * TF, [ST_DT_TF32] = 1125 * TF, [ST_DT_FP16] = 2250 * TF,
                    [ST_DT_BF16] = 2250 * TF, [ST_DT_FP8] = 4500 * TF, [ST_DT_MXFP8] = 4500 * TF,
                    [ST_DT_NVFP4] = 13500 * TF}, /* fp4 108 PFLOPS dense / 8 */
     .gemm_efficiency = 792.1 / 989.4,
     .sms = 160, .tdp_watts = 1100,
     .source = "NVIDIA DGX B300 datasheet (per GPU, dense); no Blackwell MAMF: H100 SXM's fraction"},
    /* GB200 (in NVL72): GB200 NVL72 datasheet, 72 GPUs: 13.4 TB HBM3e, 576 TB/s, fp4 1,440 / fp8 720
     * / bf16 360 / tf32 180 PFLOPS sparse; 1,200 W per GPU (the GB200 superchip's GPU setting) */
    {.name = "gb200-186g", .memory_bytes = 186e9, .hbm_bytes_per_s = 8000 * GBPS,
     .peak_flops = {[ST_DT_FP32] = 80 * TF, [ST_DT_TF32] = 1250 * TF, [ST_DT_FP16] = 2500 * TF,
                    [ST_DT_BF16] = 2500 * TF, [ST_DT_FP8] = 5000 * TF, [ST_DT_MXFP8] = 5000 * TF,
                    [ST_DT_NVFP4] = 10000 * TF}, /* fp4 1,440 PFLOPS sparse / 72 / 2 */
     .gemm_efficiency = 792.1 / 989.4,
     .sms = 148, .tdp_watts = 1200,
     .source = "NVIDIA GB200 NVL72 datasheet (per GPU, dense); no Blackwell MAMF: H100 SXM's fraction"},
    /* GB300 (in NVL72): GB300 NVL72 datasheet, 72 GPUs: 20 TB HBM3e, 576 TB/s, fp4 1,080 dense, fp8
     * 720 / bf16 360 PFLOPS sparse; 1,400 W per GPU */
    {.name = "gb300-279g", .memory_bytes = 279e9, .hbm_bytes_per_s = 8000 * GBPS,
     .peak_flops = {[ST_DT_FP32] = 80 * TF, [ST_DT_TF32] = 1250 * TF, [ST_DT_FP16] = 2500 * TF,
                    [ST_DT_BF16] = 2500 * TF, [ST_DT_FP8] = 5000 * TF, [ST_DT_MXFP8] = 5000 * TF,
                    [ST_DT_NVFP4] = 15000 * TF}, /* fp4 1,080 PFLOPS dense / 72 */
     .gemm_efficiency = 792.1 / 989.4,
     .sms = 160, .tdp_watts = 1400,
     .source = "NVIDIA GB300 NVL72 datasheet (per GPU, dense); no Blackwell MAMF: H100 SXM's fraction"},
    /* MI300X: AMD Instinct MI300X datasheet: 192 GB HBM3, 5.3 TB/s, bf16 1,307.4, fp8 2,614.9, tf32
     * 653.7, fp32 163.4 TFLOPS dense, 304 CUs, 750 W; MAMF (table v1, ROCm 6.2) 781.9 of 1,300 */
    {.name = "mi300x", .memory_bytes = 192e9, .hbm_bytes_per_s = 5300 * GBPS,
     .peak_flops = {[ST_DT_FP32] = 163.4 * TF, [ST_DT_TF32] = 653.7 * TF, [ST_DT_FP16] = 1307.4 * TF,
                    [ST_DT_BF16] = 1307.4 * TF, [ST_DT_FP8] = 2614.9 * TF},
     .gemm_efficiency = 781.9 / 1300,
     .sms = 304, .tdp_watts = 750,
     .source = "AMD Instinct MI300X datasheet (dense); MAMF: Bekman, ML Engineering (ROCm 6.2)"},
    /* MI325X: MI300X's compute, 256 GB HBM3e at 6 TB/s, 1,000 W; MAMF 784.9 of 1,300 (torch 2.6, ROCm
     * 6.2.4, PYTORCH_TUNABLEOP_ENABLED=1) */
    {.name = "mi325x", .memory_bytes = 256e9, .hbm_bytes_per_s = 6000 * GBPS,
     .peak_flops = {[ST_DT_FP32] = 163.4 * TF, [ST_DT_TF32] = 653.7 * TF, [ST_DT_FP16] = 1307.4 * TF,
                    [ST_DT_BF16] = 1307.4 * TF, [ST_DT_FP8] = 2614.9 * TF},
     .gemm_efficiency = 784.9 / 1300,
     .sms = 304, .tdp_watts = 1000,
     .source = "AMD Instinct MI325X datasheet (dense); MAMF: Bekman, ML Engineering (ROCm 6.2.4)"},
    /* MI355X (CDNA 4): AMD Instinct MI355X datasheet: 288 GB HBM3e, 8 TB/s, bf16 2,516.6, fp8 5,033.2,
     * MXFP8 5,033.2, MXFP4 10,066.3, fp32 157.3 TFLOPS dense (no tf32 matrix path), 256 CUs, 1,400 W;
     * no MAMF: MI325X's fraction. Its fp4 is OCP MXFP4 (E8M0 scale per 32), not nvfp4 (E4M3 per 16):
     * nvfp4 stays 0 */
    {.name = "mi355x", .memory_bytes = 288e9, .hbm_bytes_per_s = 8000 * GBPS,
     .peak_flops = {[ST_DT_FP32] = 157.3 * TF, [ST_DT_FP16] = 2516.6 * TF, [ST_DT_BF16] = 2516.6 * TF,
                    [ST_DT_FP8] = 5033.2 * TF, [ST_DT_MXFP8] = 5033.2 * TF},
     .gemm_efficiency = 784.9 / 1300,
     .sms = 256, .tdp_watts = 1400,
     .source = "AMD Instinct MI355X datasheet (dense); no MAMF: MI325X's fraction"},
};

const st_gpu *st_gpu_presets(size_t *n) {
    *n = sizeof gpus / sizeof gpus[0];
    return gpus;
}

/* H100 SXM in the MAMF table's current rows (torch 2.7.0+cu126): fp8 1402.6 / 1979, bf16 794.5 / 989 */
#define ST_FP8_OVER_BF16_EFFICIENCY ((1402.6 / 1979) / (794.5 / 989))

double st_gpu_gemm_efficiency(const st_gpu *g, st_dtype dt) {
    /* no MAMF is published for block-scaled GEMMs: they take fp8's fraction of their own peak */
    if (!st_dtype_quantised(dt)) return g->gemm_efficiency;
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
    /* host nodes and their GPUs, the scale-up domain (0: the host node) and its fabric */
    int nodes, gpus_per_node, domain;
    st_fabric fabric;
    int nvls; /* its NVSwitches reduce in the switch (NVLink SHARP): st_cluster.nvls_capable */
} cluster_spec;

/* NVLink 3 (A100): 600 GB/s bidirectional per GPU = 300 per direction; NVLink 4 (H100/H200): 900
 * bidirectional = 450; H800's NVLink is cut to 400 bidirectional = 200; NVLink 5 (Blackwell): 1.8
 * TB/s bidirectional = 900. DGX A100: 8 ConnectX-6 HDR 200 Gb/s compute NICs; DGX H100/H200/B200:
 * 8 ConnectX-7 NDR 400 Gb/s; DGX B300 and GB300 NVL72: ConnectX-8 800 Gb/s, one per GPU; GB200
 * NVL72: one ConnectX-7 400 Gb/s per GPU (72). PCIe per GPU: Gen4 x16 = 32 GB/s raw, ~25
 * achieved; Gen5 x16 = 64 raw, ~50 achieved (the usual ~80% of raw after protocol overhead); Gen6
 * x16 (B300) = 128 raw, ~100. Grace-Blackwell trays have no PCIe between host and GPU: NVLink-C2C,
 * 900 GB/s bidirectional per Grace shared by its 2 GPUs = 225 per GPU per direction. Latencies:
 * NVLink/NVSwitch ~2 us and InfiniBand ~5 us end to end through NCCL (nccl-tests small-message
 * times); xGMI taken as NVLink's (no published RCCL figure).
 *
 * NVL72 (GB200/GB300): 18 compute trays of 4 GPUs and 2 Grace CPUs (host nodes) and 9 NVLink
 * switch trays joining all 72 GPUs at full NVLink 5 rate (NVIDIA GB200 NVL72 / GB300 NVL72
 * datasheets: 130 TB/s NVLink in all = 72 x 1.8 TB/s). Grace memory: GB200 480 GB LPDDR5X per
 * Grace, GB300 17 TB for 36 Grace = 472 GB each.
 *
 * AMD platforms (8 OAM GPUs on one baseboard, AMD Instinct MI300X / MI355X platform datasheets):
 * every GPU has 7 xGMI (Infinity Fabric) links, one to each other GPU: MI300X 128 GB/s
 * bidirectional per link, 896 GB/s in all per GPU (AMD: "896 GB/s aggregate peer-to-peer") =
 * 448 per direction; MI355X 153.6 GB/s per link, 1,075.2 in all = 537.6 per direction. A collective
 * over n of the 8 GPUs uses n - 1 of the 7 links (cost/comm.c). NICs: 8 x 400 Gb/s (MI300X: the
 * ConnectX-7 NDR of Azure's ND MI300X v5; MI355X: AMD Pollara 400).
 *
 * NVLink SHARP (the last column): the third-generation NVSwitch (HGX/DGX H100 and its H800, H20
 * and H200 variants) and NVLink 5's switches (B200, B300, NVL72) reduce in the switch (NVIDIA
 * Hopper architecture whitepaper, "NVLink SHARP"; NCCL >= 2.17 uses it as its NVLS algorithms,
 * e.g. nccl issue #1244 on HGX H20); A100's second-generation NVSwitch does not. The presets do
 * not turn it on (CLUSTER:sharp=1 does): the validation rows on DGX H100 were priced without it. */
static const cluster_spec specs[] = {
    {"dgx-a100-40g", "a100-sxm-40g", 300, 2, 8, 200, 5, 1024, 25,
     "NVIDIA DGX A100 System Architecture whitepaper (2020): 8x A100 40GB, NVSwitch, 8x HDR IB, 1 TB",
     1, 8, 0, ST_FABRIC_NVSWITCH, 0},
    {"dgx-a100-80g", "a100-sxm-80g", 300, 2, 8, 200, 5, 2048, 25,
     "NVIDIA DGX A100 datasheet (80GB): 8x A100 80GB, NVSwitch, 8x HDR 200 Gb/s IB, 2 TB", 1, 8, 0, ST_FABRIC_NVSWITCH,
     0},
    {"dgx-h100", "h100-sxm-80g", 450, 2, 8, 400, 5, 2048, 50,
     "NVIDIA DGX H100 datasheet: 8x H100 SXM5, NVLink 4 (900 GB/s), 8x ConnectX-7 NDR 400, 2 TB",
     1, 8, 0, ST_FABRIC_NVSWITCH, 1},
    {"dgx-h200", "h200-sxm-141g", 450, 2, 8, 400, 5, 2048, 50,
     "NVIDIA DGX H200 datasheet: 8x H200 SXM, NVLink 4 (900 GB/s), 8x ConnectX-7 NDR 400, 2 TB",
     1, 8, 0, ST_FABRIC_NVSWITCH, 1},
    {"l40s-pcie-8", "l40s", 25, 5, 4, 200, 5, 1024, 25,
     "8x L40S PCIe Gen4 server (no NVLink; GPU-GPU over PCIe ~25 GB/s), 4x 200 Gb/s NICs: a typical "
     "OEM configuration, check your vendor's", 1, 8, 0, ST_FABRIC_PCIE, 0},
    {"a10-pcie-8", "a10", 25, 5, 2, 100, 5, 512, 25,
     "8x A10 PCIe Gen4 server (no NVLink), 2x 100 Gb/s NICs: a typical OEM configuration", 1, 8, 0, ST_FABRIC_PCIE, 0},
    {"hgx-h800", "h800-sxm-80g", 200, 2, 8, 400, 5, 2048, 50,
     "HGX H800 8-GPU server: 8x H800 SXM5, NVLink 400 GB/s, 8x 400 Gb/s NICs, 2 TB: a typical OEM "
     "configuration", 1, 8, 0, ST_FABRIC_NVSWITCH, 1},
    {"hgx-h20", "h20-96g", 450, 2, 4, 400, 5, 2048, 50,
     "HGX H20 8-GPU server: 8x H20, NVLink 900 GB/s, 4x 400 Gb/s NICs, 2 TB: a typical OEM configuration",
     1, 8, 0, ST_FABRIC_NVSWITCH, 1},
    {"dgx-b200", "b200-180g", 900, 2, 8, 400, 5, 2048, 50,
     "NVIDIA DGX B200 datasheet: 8x B200, NVLink 5 (1.8 TB/s), 8x ConnectX-7 400 Gb/s, 2 TB, 14.3 kW",
     1, 8, 0, ST_FABRIC_NVSWITCH, 1},
    {"dgx-b300", "b300-288g", 900, 2, 8, 800, 5, 2048, 100,
     "NVIDIA DGX B300 datasheet: 8x B300, NVLink 5 (1.8 TB/s), 8x ConnectX-8 800 Gb/s, 2 TB",
     1, 8, 0, ST_FABRIC_NVSWITCH, 1},
    {"gb200-nvl72", "gb200-186g", 900, 2, 4, 400, 5, 894, 225,
     "NVIDIA GB200 NVL72 datasheet: 72x GB200 GPU in one NVLink 5 domain, 18 trays of 4 GPUs + 2 Grace, "
     "72x ConnectX-7 400 Gb/s", 18, 4, 72, ST_FABRIC_NVSWITCH, 1},
    {"gb300-nvl72", "gb300-279g", 900, 2, 4, 800, 5, 880, 225,
     "NVIDIA GB300 NVL72 datasheet: 72x Blackwell Ultra GPU in one NVLink 5 domain, 18 trays of 4 GPUs "
     "+ 2 Grace, 72x ConnectX-8 800 Gb/s", 18, 4, 72, ST_FABRIC_NVSWITCH, 1},
    {"mi300x", "mi300x", 448, 2, 8, 400, 5, 2048, 50,
     "AMD Instinct MI300X platform: 8x MI300X OAM, xGMI mesh (7 links x 128 GB/s per GPU), 8x 400 Gb/s, "
     "2 TB", 1, 8, 8, ST_FABRIC_XGMI, 0},
    {"mi355x", "mi355x", 537.6, 2, 8, 400, 5, 2048, 50,
     "AMD Instinct MI355X platform: 8x MI355X OAM, xGMI mesh (7 links x 153.6 GB/s per GPU), 8x 400 "
     "Gb/s, 2 TB", 1, 8, 8, ST_FABRIC_XGMI, 0},
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
            c->nodes = s->nodes;
            c->gpus_per_node = s->gpus_per_node;
            c->domain_gpus = s->domain;
            c->fabric = s->fabric;
            c->nvls_capable = s->nvls;
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

/* whether a GPU preset's NVSwitch systems reduce in the switch (NVLink SHARP): a cluster preset with it
 * says so (specs[].nvls) */
static int gpu_nvls(const char *gpu) {
    for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++)
        if (specs[i].nvls && !strcmp(specs[i].gpu, gpu)) return 1;
    return 0;
}

int st_cluster_finalize(st_cluster *c, const char *file, st_error *err) {
#define BAD(key, ...) return st_error_set(err, ST_EINVAL, file, key, __VA_ARGS__)
    /* a cluster file of such GPUs on NVSwitch can turn NVLink SHARP on (CLUSTER:sharp=1) as the
     * presets can, without the file saying so; nothing is priced differently until it is on */
    if (!c->nvls_capable && !c->ngroups && c->mig.per_gpu == 0 && c->fabric == ST_FABRIC_NVSWITCH &&
        gpu_nvls(c->gpu.name))
        c->nvls_capable = 1;
    if (c->ngroups) {
        int rc = st__cluster_groups_finalize(c, file, err);
        if (rc) return rc;
    }
    if (c->nodes < 1 || c->nodes > ST_MAX_GPUS) BAD("nodes", "must be 1..%d", ST_MAX_GPUS);
    if (c->gpus_per_node < 1 || c->gpus_per_node > ST_MAX_DOMAIN_GPUS)
        BAD("gpus_per_node", "must be 1..%d", ST_MAX_DOMAIN_GPUS);
    if (c->nodes * c->gpus_per_node > ST_MAX_GPUS)
        BAD("nodes", "%lld GPUs in all exceeds the limit of %d", (long long)(c->nodes * c->gpus_per_node),
            ST_MAX_GPUS);
    if (c->gpus_used < 0 || c->gpus_used > c->nodes * c->gpus_per_node)
        BAD("gpus", "must be 1..%lld, the GPUs of the cluster", (long long)(c->nodes * c->gpus_per_node));
    if ((int)c->fabric < 0 || c->fabric >= ST_FABRIC_COUNT) BAD("scale_up.fabric", "unknown fabric");
    if (c->domain_gpus != 0) {
        if (c->domain_gpus < c->gpus_per_node || c->domain_gpus > ST_MAX_DOMAIN_GPUS ||
            c->domain_gpus % c->gpus_per_node != 0)
            BAD("scale_up.gpus", "%lld must be a multiple of gpus_per_node (%lld) up to %d",
                (long long)c->domain_gpus, (long long)c->gpus_per_node, ST_MAX_DOMAIN_GPUS);
    }
    /* a job on part of every domain (CLUSTER:domain_gpus=N, src/io/cluster_io.c): whole host nodes of
     * each, of uniform whole GPUs, on a fabric without tiers (cost/comm.c counts a tier's host nodes
     * as the job's, which skip the domains' unused ones) */
    if (c->domain_gpus_used != 0) {
        int64_t used = c->domain_gpus_used;
        if (used < c->gpus_per_node || used % c->gpus_per_node != 0 || used > st_cluster_domain(c))
            BAD("domain_gpus", "%lld must be a multiple of gpus_per_node (%lld) up to the domain's %lld GPUs",
                (long long)used, (long long)c->gpus_per_node, (long long)st_cluster_domain(c));
        if (c->ngroups || c->mig.per_gpu > 0 || c->leaf_nodes)
            BAD("domain_gpus", "needs a uniform cluster of whole GPUs without fabric tiers (no groups, MIG, leaf)");
        if (st_cluster_gpus(c) % used != 0)
            BAD("domain_gpus", "the job's %lld GPUs are not a multiple of %lld", (long long)st_cluster_gpus(c),
                (long long)used);
    }
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
    /* tiers: a pod is whole leaves (a job on part of the cluster, st_cluster_size, may fill its last
     * leaf or pod in part); above the nodes the tiers' own ratios apply */
    if (c->leaf_nodes < 0 || c->leaf_nodes > ST_MAX_GPUS) BAD("inter_node.leaf.nodes", "must be 1..%d", ST_MAX_GPUS);
    if (c->pod_nodes && !c->leaf_nodes) BAD("inter_node.spine", "needs inter_node.leaf");
    if (c->leaf_nodes) {
        if (c->oversubscription != 1)
            BAD("inter_node.oversubscription", "must be 1 (or absent) with tiers: give leaf.oversubscription");
        if (!(c->leaf_oversubscription >= 1)) BAD("inter_node.leaf.oversubscription", "must be >= 1");
    }
    if (c->pod_nodes) {
        if (c->pod_nodes < 0 || c->pod_nodes > ST_MAX_GPUS || c->pod_nodes % c->leaf_nodes != 0 ||
            c->pod_nodes == c->leaf_nodes)
            BAD("inter_node.spine.nodes", "%lld must be a multiple of leaf.nodes (%lld) above it, up to %d",
                (long long)c->pod_nodes, (long long)c->leaf_nodes, ST_MAX_GPUS);
        if (!(c->pod_oversubscription >= 1)) BAD("inter_node.spine.oversubscription", "must be >= 1");
    }
    /* NVLink SHARP reduces in NVSwitches; a MIG slice has no NVLink */
    if (c->sharp_domain && (c->fabric != ST_FABRIC_NVSWITCH || c->mig.per_gpu > 0))
        BAD("scale_up.sharp", "needs an NVSwitch domain of whole GPUs (fabric nvswitch, no MIG)");
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
