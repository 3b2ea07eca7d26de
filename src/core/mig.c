/* mig.c: MIG (Multi-Instance GPU) slices as devices: the GPU-instance profiles of A100, H100 and
 * H200, the device one slice is, and a host node whose GPUs are cut into slices.
 *
 * Profiles (NVIDIA Multi-Instance GPU User Guide, "Supported MIG Profiles"): a GPU has 7 compute
 * slices and 8 memory slices; a profile <c>g.<m>gb takes c compute slices ("Fraction of SMs" c/7)
 * and a number of memory slices ("Fraction of Memory", with the L2 cache and the memory
 * controllers that go with them). On A100-SXM4-40GB: 1g.5gb 1/8, 1g.10gb 2/8 (the guide's table
 * prints 1/8 for it, but 10 GB is two 5 GB slices and its 4 instances at most fill 8/8), 2g.10gb
 * 2/8, 3g.20gb 4/8, 4g.20gb 4/8, 7g.40gb 8/8; A100-80GB and H100-80GB the same with doubled sizes.
 * SMs and memory are what `nvidia-smi mig -lgip` lists (the device CUDA sees): A100-40GB 1g.5gb 14
 * SMs 4.75 GiB, 2g.10gb 28 / 9.75, 3g.20gb 42 / 19.62, 4g.20gb 56 / 19.62, 7g.40gb 98 / 39.50
 * (NVIDIA developer forum, "Why MIG instances can only sum up to 98 SMs instead of the 108 SMs
 * available?", 2021: the 7 slices hold 98 of GA100's 108 SMs); A100-80GB 1g.10gb 14 / 9.50,
 * 2g.20gb 28 / 19.50, 3g.40gb 42 / 39.25, 4g.40gb 56 / 39.25, 7g.80gb 98 / 79.00; H100 SXM5 80GB
 * 1g.10gb 16 / 9.75, 1g.20gb 26 / 19.62, 2g.20gb 32 / 19.62, 3g.40gb 60 / 39.50, 4g.40gb 64 / 39.50,
 * 7g.80gb 132 / 79.25 (the user guide's -lgip listing for H100; 16 SMs for 1g.10gb also in
 * XLA's GPU test configurations). The same listing says "P2P: No" for every profile.
 *
 * H200 141GB (the guide's "H200 MIG Profiles" table: 1g.18gb 1/8 of the memory and 1/7 of the SMs,
 * 1g.35gb 2/8 and 1/7, 2g.35gb 2/8 and 2/7, 3g.71gb 4/8 and 3/7, 4g.71gb 4/8 and 4/7, 7g.141gb all).
 * No full -lgip listing of its SM counts and memory sizes was at hand, so they are derived: the H200
 * is the H100's GH100 die with 132 SMs and the same compute-slice geometry (NVIDIA H200 datasheet;
 * the guide lists both under Hopper with 7 compute slices), so each profile has the SMs of the H100
 * profile in its place (16, 26, 32, 60, 64, 132), and the H100 listing's memory scaled by the boards'
 * memory (141 GB / 80 GiB: 16.00, 32.21, 32.21, 64.84, 64.84, 130.09 GiB). The one published H200
 * -lgip line found agrees: "MIG 1g.18gb ... 16.00 GiB, P2P No, 16 SMs" (quoted in a public
 * host-inventory script's parser of `nvidia-smi mig -lgip`; also "16.0 GiB usable, 16 SMs" in a
 * user's notes on an H200 1g.18gb slice); tests/test_mig.c checks the derivation.
 *
 * A slice as a device: its peak FLOP/s is the parent's times its SMs over the parent's SMs (same
 * clocks and tensor cores per SM), its HBM bandwidth the parent's times its memory slices / 8 (the
 * guide: each instance has its own memory controllers and DRAM bus share), its memory the listed
 * size; GEMM efficiency is the parent's (a calibration profile of the slice replaces it).
 *
 * No peer-to-peer between instances: CUDA IPC is not supported between MIG instances, so NCCL has
 * no P2P/NVLink transport between them and falls back to shared host memory (NCCL User Guide,
 * "Creating a Communicator: Using MIG instances"; RAPIDS deployment guide, "Multi-Instance GPU":
 * "NVLink and NVSwitch are thus completely unavailable, forcing the application to take a more
 * expensive communication channel via the system (CPU) memory"). A sliced node's scale-up domain is
 * therefore its host memory: every slice moves its collective traffic over its parent GPU's PCIe
 * link, which the parent's slices share (cost/comm.c prices it, src/lower/lower_net.c makes it a
 * shared link for the simulator). */
#include "src/core/core.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GIB 1073741824.0

static const st_mig_profile profiles[] = {
    {"a100-sxm-40g", "1g.5gb", 1, 1, 14, 4.75},   {"a100-sxm-40g", "1g.10gb", 1, 2, 14, 9.75},
    {"a100-sxm-40g", "2g.10gb", 2, 2, 28, 9.75},  {"a100-sxm-40g", "3g.20gb", 3, 4, 42, 19.62},
    {"a100-sxm-40g", "4g.20gb", 4, 4, 56, 19.62}, {"a100-sxm-40g", "7g.40gb", 7, 8, 98, 39.50},
    {"a100-sxm-80g", "1g.10gb", 1, 1, 14, 9.50},  {"a100-sxm-80g", "1g.20gb", 1, 2, 14, 19.50},
    {"a100-sxm-80g", "2g.20gb", 2, 2, 28, 19.50}, {"a100-sxm-80g", "3g.40gb", 3, 4, 42, 39.25},
    {"a100-sxm-80g", "4g.40gb", 4, 4, 56, 39.25}, {"a100-sxm-80g", "7g.80gb", 7, 8, 98, 79.00},
    {"h100-sxm-80g", "1g.10gb", 1, 1, 16, 9.75},  {"h100-sxm-80g", "1g.20gb", 1, 2, 26, 19.62},
    {"h100-sxm-80g", "2g.20gb", 2, 2, 32, 19.62}, {"h100-sxm-80g", "3g.40gb", 3, 4, 60, 39.50},
    {"h100-sxm-80g", "4g.40gb", 4, 4, 64, 39.50}, {"h100-sxm-80g", "7g.80gb", 7, 8, 132, 79.25},
    /* derived from the H100 rows (see above) */
    {"h200-sxm-141g", "1g.18gb", 1, 1, 16, 16.00},   {"h200-sxm-141g", "1g.35gb", 1, 2, 26, 32.21},
    {"h200-sxm-141g", "2g.35gb", 2, 2, 32, 32.21},   {"h200-sxm-141g", "3g.71gb", 3, 4, 60, 64.84},
    {"h200-sxm-141g", "4g.71gb", 4, 4, 64, 64.84},   {"h200-sxm-141g", "7g.141gb", 7, 8, 132, 130.09},
};

const st_mig_profile *st_mig_profiles(size_t *n) {
    *n = sizeof profiles / sizeof profiles[0];
    return profiles;
}

const st_mig_profile *st_mig_profile_find(const char *gpu, const char *name) {
    for (size_t i = 0; i < sizeof profiles / sizeof profiles[0]; i++)
        if (!strcmp(profiles[i].gpu, gpu) && !strcmp(profiles[i].name, name)) return &profiles[i];
    return NULL;
}

int st_mig_max_per_gpu(const st_mig_profile *p) {
    int by_compute = ST_MIG_COMPUTE_SLICES / p->compute_slices, by_memory = ST_MIG_MEMORY_SLICES / p->memory_slices;
    return by_compute < by_memory ? by_compute : by_memory;
}

void st_gpu_mig_slice(const st_gpu *parent, const st_mig_profile *p, st_gpu *out) {
    st_gpu g = *parent;
    double sm_share = (double)p->sms / (double)parent->sms;
    for (int d = 0; d < ST_DT_COUNT; d++) g.peak_flops[d] = parent->peak_flops[d] * sm_share;
    g.hbm_bytes_per_s = parent->hbm_bytes_per_s * p->memory_slices / ST_MIG_MEMORY_SLICES;
    g.memory_bytes = p->memory_gib * GIB;
    g.sms = p->sms;
    /* the board's power is shared too: a slice's share by its compute slices */
    g.tdp_watts = parent->tdp_watts * p->compute_slices / ST_MIG_COMPUTE_SLICES;
    snprintf(g.name, sizeof g.name, "%.24s/%s", parent->name, p->name);
    snprintf(g.source, sizeof g.source, "MIG %s of %s: NVIDIA MIG User Guide, nvidia-smi mig -lgip", p->name,
             parent->name);
    *out = g;
}

int st_cluster_set_mig(st_cluster *c, const char *profile, int per_gpu, const char *file, st_error *err) {
    /* back to the whole GPUs first: a layout replaces the one before it */
    if (c->mig.per_gpu > 0) {
        c->gpu = c->mig.gpu;
        c->gpus_per_node = c->mig.gpus_per_node;
        c->gpus_used = c->mig.gpus_used;
        c->domain_gpus = c->mig.domain_gpus;
        c->fabric = c->mig.fabric;
        c->intra_bytes_per_s = c->mig.intra_bytes_per_s;
        c->pcie_bytes_per_s = c->mig.pcie_bytes_per_s;
        memset(&c->mig, 0, sizeof c->mig);
    }
    if (!profile || !strcmp(profile, "none")) return 0;
    const st_mig_profile *p = st_mig_profile_find(c->gpu.name, profile);
    if (!p) {
        char known[256] = "";
        size_t used = 0;
        for (size_t i = 0; i < sizeof profiles / sizeof profiles[0]; i++)
            if (!strcmp(profiles[i].gpu, c->gpu.name) && used < sizeof known)
                used += (size_t)snprintf(known + used, sizeof known - used, "%s%s", used ? ", " : "", profiles[i].name);
        if (!known[0])
            return st_error_set(err, ST_EINVAL, file, "mig.profile",
                                "GPU '%s' has no MIG profiles here (a100-sxm-40g, a100-sxm-80g, h100-sxm-80g, "
                                "h200-sxm-141g do)",
                                c->gpu.name);
        return st_error_set(err, ST_EINVAL, file, "mig.profile", "'%s' is not a MIG profile of %s (%s)", profile,
                            c->gpu.name, known);
    }
    if (c->gpu.sms < 1)
        return st_error_set(err, ST_EINVAL, file, "gpu.sms", "slicing %s into MIG instances needs its SM count",
                            c->gpu.name);
    int most = st_mig_max_per_gpu(p);
    if (per_gpu == 0) per_gpu = most;
    if (per_gpu < 1 || per_gpu > most)
        return st_error_set(err, ST_EINVAL, file, "mig.per_gpu",
                            "%d x %s over-subscribes a GPU: %d of %d compute slices and %d of %d memory slices "
                            "(at most %d)",
                            per_gpu, p->name, per_gpu * p->compute_slices, ST_MIG_COMPUTE_SLICES,
                            per_gpu * p->memory_slices, ST_MIG_MEMORY_SLICES, most);
    if (c->gpus_per_node * per_gpu > ST_MAX_DOMAIN_GPUS)
        return st_error_set(err, ST_EINVAL, file, "mig.per_gpu", "%lld GPUs x %d slices exceeds %d devices per node",
                            (long long)c->gpus_per_node, per_gpu, ST_MAX_DOMAIN_GPUS);
    st_cluster_mig *m = &c->mig;
    snprintf(m->profile, sizeof m->profile, "%s", p->name);
    m->per_gpu = per_gpu;
    m->gpu = c->gpu;
    m->gpus_per_node = c->gpus_per_node;
    m->gpus_used = c->gpus_used;
    m->domain_gpus = c->domain_gpus;
    m->fabric = c->fabric;
    m->intra_bytes_per_s = c->intra_bytes_per_s;
    m->pcie_bytes_per_s = c->pcie_bytes_per_s;
    st_gpu_mig_slice(&m->gpu, p, &c->gpu);
    c->gpus_per_node *= per_gpu;
    c->gpus_used *= per_gpu;
    /* the scale-up domain is the host node's memory: no NVLink between instances */
    c->domain_gpus = 0;
    c->fabric = ST_FABRIC_PCIE;
    /* each slice's share of its parent's PCIe link, which its slices share when they all copy or
     * communicate at once (as every rank of a collective does) */
    c->pcie_bytes_per_s = m->pcie_bytes_per_s / per_gpu;
    c->intra_bytes_per_s = c->pcie_bytes_per_s;
    if (!(c->reserved_bytes < c->gpu.memory_bytes))
        return st_error_set(err, ST_EINVAL, file, "framework.reserved_gib",
                            "%g GiB is not below a %s slice's %g GiB", c->reserved_bytes / GIB, p->name,
                            p->memory_gib);
    return 0;
}

int st_mig_spec_parse(const char *s, char *profile, size_t n, int *per_gpu) {
    /* PROFILE or PROFILExN */
    const char *x = strrchr(s, 'x');
    size_t len = x ? (size_t)(x - s) : strlen(s);
    *per_gpu = 0;
    if (len == 0 || len >= n) return ST_EINVAL;
    if (x) {
        char *end;
        long v = strtol(x + 1, &end, 10);
        if (end == x + 1 || *end || v < 1 || v > ST_MIG_COMPUTE_SLICES) return ST_EINVAL;
        *per_gpu = (int)v;
    }
    memcpy(profile, s, len);
    profile[len] = '\0';
    return 0;
}
