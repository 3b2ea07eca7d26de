/* mig.c: MIG (Multi-Instance GPU) slices as devices: the GPU-instance profiles of A100, H100 and
 * H200, the device one slice is, a host node whose GPUs are cut into slices, and layouts of several
 * profiles on one GPU (the guide's placement rules; node groups sharing the host: see below).
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

/* Back to the whole GPUs: the node as described before slicing (a layout of several profiles: the
 * host node its groups share, group 0 holding its description). */
static void restore_whole(st_cluster *c) {
    const st_cluster_mig *lay = st_cluster_mig_layout(c);
    if (lay) {
        const st_node_group *g = &c->groups[0];
        st_cluster_mig m = *lay;
        c->nodes = g->nodes;
        c->nics_per_node = g->nics_per_node;
        c->intra_latency_s = g->intra_latency_s;
        c->inter_latency_s = g->inter_latency_s;
        c->oversubscription = g->oversubscription;
        c->ngroups = 0;
        memset(c->groups, 0, sizeof c->groups);
        c->xgroup_bytes_per_s = c->xgroup_latency_s = c->xgroup_oversubscription = 0;
        c->mig = m;
    }
    if (c->mig.per_gpu > 0) {
        c->gpu = c->mig.gpu;
        c->gpus_per_node = c->mig.gpus_per_node;
        c->gpus_used = c->mig.gpus_used;
        c->domain_gpus = c->mig.domain_gpus;
        c->fabric = c->mig.fabric;
        c->intra_bytes_per_s = c->mig.intra_bytes_per_s;
        c->pcie_bytes_per_s = c->mig.pcie_bytes_per_s;
        c->nic_bytes_per_s = c->mig.nic_bytes_per_s;
        c->host_memory_bytes = c->mig.host_memory_bytes;
        memset(&c->mig, 0, sizeof c->mig);
    }
}

/* p's name for c's GPU, or ST_EINVAL naming `key` with the profiles c's GPU has */
static int find_profile(const st_cluster *c, const char *name, const char *file, const char *key,
                        const st_mig_profile **out, st_error *err) {
    if ((*out = st_mig_profile_find(c->gpu.name, name))) return 0;
    char known[256] = "";
    size_t used = 0;
    for (size_t i = 0; i < sizeof profiles / sizeof profiles[0]; i++)
        if (!strcmp(profiles[i].gpu, c->gpu.name) && used < sizeof known)
            used += (size_t)snprintf(known + used, sizeof known - used, "%s%s", used ? ", " : "", profiles[i].name);
    if (!known[0])
        return st_error_set(err, ST_EINVAL, file, key,
                            "GPU '%s' has no MIG profiles here (a100-sxm-40g, a100-sxm-80g, h100-sxm-80g, "
                            "h200-sxm-141g do)",
                            c->gpu.name);
    return st_error_set(err, ST_EINVAL, file, key, "'%s' is not a MIG profile of %s (%s)", name, c->gpu.name, known);
}

/* Cuts the whole GPUs of c into per_gpu slices of p, of `slices` slices per GPU in all (the layout's):
 * each slice's share of its parent's PCIe link is 1 / slices. */
static int slice(st_cluster *c, const st_mig_profile *p, int per_gpu, int slices, const char *file, st_error *err) {
    if (c->gpu.sms < 1)
        return st_error_set(err, ST_EINVAL, file, "gpu.sms", "slicing %s into MIG instances needs its SM count",
                            c->gpu.name);
    st_cluster_mig *m = &c->mig;
    snprintf(m->profile, sizeof m->profile, "%s", p->name);
    m->per_gpu = per_gpu;
    m->slices_per_gpu = slices;
    m->gpu = c->gpu;
    m->gpus_per_node = c->gpus_per_node;
    m->gpus_used = c->gpus_used;
    m->domain_gpus = c->domain_gpus;
    m->fabric = c->fabric;
    m->intra_bytes_per_s = c->intra_bytes_per_s;
    m->pcie_bytes_per_s = c->pcie_bytes_per_s;
    m->nic_bytes_per_s = c->nic_bytes_per_s;
    m->host_memory_bytes = c->host_memory_bytes;
    st_gpu_mig_slice(&m->gpu, p, &c->gpu);
    c->gpus_per_node *= per_gpu;
    c->gpus_used *= per_gpu;
    /* the scale-up domain is the host node's memory: no NVLink between instances */
    c->domain_gpus = 0;
    c->fabric = ST_FABRIC_PCIE;
    /* each slice's share of its parent's PCIe link, which its slices share when they all copy or
     * communicate at once (as every rank of a collective does) */
    c->pcie_bytes_per_s = m->pcie_bytes_per_s / slices;
    c->intra_bytes_per_s = c->pcie_bytes_per_s;
    if (!(c->reserved_bytes < c->gpu.memory_bytes))
        return st_error_set(err, ST_EINVAL, file, "framework.reserved_gib",
                            "%g GiB is not below a %s slice's %g GiB", c->reserved_bytes / GIB, p->name,
                            p->memory_gib);
    return 0;
}

int st_cluster_set_mig(st_cluster *c, const char *profile, int per_gpu, const char *file, st_error *err) {
    /* back to the whole GPUs first: a layout replaces the one before it */
    restore_whole(c);
    if (!profile || !strcmp(profile, "none")) return 0;
    const st_mig_profile *p;
    int rc = find_profile(c, profile, file, "mig.profile", &p, err);
    if (rc < 0) return rc;
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
    return slice(c, p, per_gpu, per_gpu, file, err);
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

/* Placements (NVIDIA MIG User Guide, "Supported MIG Profiles": the placement diagrams of A100 and H100,
 * H200 drawn the same, and the `nvidia-smi mig -lgipp` listing in "Getting Started with MIG", e.g. on
 * A100-40GB "Profile ID 9 Placements: {0,4}:4"): an instance of m memory slices starts at one of its
 * profile's listed memory slices and takes m from there, and a GPU instance that overlaps an occupied
 * memory slice cannot be created (NVML, nvmlDeviceGetGpuInstancePossiblePlacements_v2). By shape
 * (compute slices, memory slices), the same on A100 40GB/80GB, H100 and H200: 1g of one memory slice
 * {0..6}, 1g of two {0,2,4,6}, 2g {0,2,4}, 3g {0,4}, 4g {0}, 7g {0}. So 4g + 2g + 1g fits (0-3, 4-5,
 * 6), 4g + 4g does not (both start at 0), nor 3g + 3g + 1g (the two 3g take all 8 memory slices). */
static const struct {
    int compute, memory;
    unsigned starts; /* bit s: may start at memory slice s */
} placements[] = {{1, 1, 0x7f}, {1, 2, 0x55}, {2, 2, 0x15}, {3, 4, 0x11}, {4, 4, 0x01}, {7, 8, 0x01}};

static unsigned starts_of(const st_mig_profile *p) {
    for (size_t i = 0; i < sizeof placements / sizeof placements[0]; i++)
        if (placements[i].compute == p->compute_slices && placements[i].memory == p->memory_slices)
            return placements[i].starts;
    return 0;
}

/* instance i onward into the free memory slices `used` leaves: depth-first, at most 7 deep */
static int place_from(const st_mig_profile *const *p, int n, int i, unsigned used, int *start) {
    if (i == n) return 1;
    unsigned starts = starts_of(p[i]), span = (1u << p[i]->memory_slices) - 1;
    for (int s = 0; s < ST_MIG_MEMORY_SLICES; s++) {
        if (!(starts >> s & 1) || (used & span << s)) continue;
        start[i] = s;
        if (place_from(p, n, i + 1, used | span << s, start)) return 1;
    }
    return 0;
}

int st_mig_layout_place(const st_mig_profile *const *p, int n, int *start) {
    int compute = 0;
    for (int i = 0; i < n; i++) compute += p[i]->compute_slices;
    if (n < 1 || n > ST_MIG_MAX_LAYOUT || compute > ST_MIG_COMPUTE_SLICES) return ST_EINVAL;
    return place_from(p, n, 0, 0, start) ? 0 : ST_EINVAL;
}

int st_mig_layout_parse(const char *s, char (*names)[16], int max, int *n) {
    *n = 0;
    while (1) {
        const char *plus = strchr(s, '+');
        size_t len = plus ? (size_t)(plus - s) : strlen(s);
        char item[32];
        int per;
        if (len >= sizeof item) return ST_EINVAL;
        memcpy(item, s, len);
        item[len] = '\0';
        if (st_mig_spec_parse(item, names[*n < max ? *n : 0], sizeof names[0], &per) != 0) return ST_EINVAL;
        for (int k = 1; k < (per ? per : 1); k++)
            if (*n + k < max) memcpy(names[*n + k], names[*n], sizeof names[0]);
        *n += per ? per : 1;
        if (*n > max) return ST_EINVAL;
        if (!plus) return 0;
        s = plus + 1;
    }
}

const st_cluster_mig *st_cluster_mig_layout(const st_cluster *c) {
    return c->ngroups > 0 && c->groups[0].mig.layout[0] ? &c->groups[0].mig : NULL;
}

/* A layout of several profiles as node groups, one per profile (issue 19: "a mixed cluster"), all on the
 * same host nodes: group k holds the cnt_k slices of profile k of every GPU, so the uneven stages,
 * dp_batches and per-rank devices of node groups price slices of different sizes. What the slices of a
 * host share is shared out by slice: each slice's share of its parent GPU's PCIe link is 1 / (slices
 * per GPU) (the simulator's link of a group's slices of one GPU is their cnt_k of them), the host's NICs
 * and memory go to group k by cnt_k / slices, so every slice has the share it has when all of them
 * communicate at once, as cost/ assumes of every collective. Between the groups (slices of different
 * profiles) the path is the same: host memory through each slice's share of its PCIe link, and the
 * host's NICs across nodes; the view of ranks across the groups is the sliced host itself (src/core/
 * groups.c), which crosses no fabric between groups. The one st__cluster_groups_finalize asks for is
 * the host's: its GPUs' PCIe links into host memory, per node, with no latency of its own. */
int st_cluster_set_mig_layout(st_cluster *c, char (*names)[16], int n, const char *file, const char *key,
                              st_error *err) {
    const st_mig_profile *p[ST_MIG_MAX_LAYOUT], *distinct[ST_MIG_MAX_LAYOUT];
    int start[ST_MIG_MAX_LAYOUT], cnt[ST_MIG_MAX_LAYOUT] = {0}, k = 0, rc;
    restore_whole(c);
    if (c->ngroups > 0)
        return st_error_set(err, ST_EINVAL, file, key, "a cluster of node groups cannot be cut into MIG slices");
    if (n < 1 || n > ST_MIG_MAX_LAYOUT)
        return st_error_set(err, ST_EINVAL, file, key, "must list 1 to %d MIG instances of one GPU", ST_MIG_MAX_LAYOUT);
    char text[sizeof c->mig.layout] = "";
    size_t w = 0;
    for (int i = 0; i < n; i++) {
        if ((rc = find_profile(c, names[i], file, key, &p[i], err)) < 0) return rc;
        int d = 0;
        while (d < k && distinct[d] != p[i]) d++;
        if (d == k) distinct[k++] = p[i];
        cnt[d]++;
        if (w < sizeof text) w += (size_t)snprintf(text + w, sizeof text - w, "%s%s", i ? "+" : "", p[i]->name);
    }
    if (st_mig_layout_place(p, n, start) != 0) {
        int compute = 0, memory = 0;
        for (int i = 0; i < n; i++) compute += p[i]->compute_slices, memory += p[i]->memory_slices;
        return st_error_set(err, ST_EINVAL, file, key,
                            "%s over-subscribes a GPU (%s) or has no placement in the MIG user guide's tables: "
                            "%d of %d compute slices, %d of %d memory slices",
                            text, c->gpu.name, compute, ST_MIG_COMPUTE_SLICES, memory, ST_MIG_MEMORY_SLICES);
    }
    if (k == 1) return st_cluster_set_mig(c, p[0]->name, n, file, err);
    if (c->gpus_used > 0 || c->domain_gpus > c->gpus_per_node || c->leaf_nodes || c->rail_optimized ||
        c->sharp_domain || c->sharp_inter)
        return st_error_set(err, ST_EINVAL, file, key,
                            "a layout of several profiles needs whole host nodes without a larger scale-up domain, "
                            "rails, tiers or SHARP (its profiles are node groups)");
    for (int d = 0; d < k; d++)
        for (int e = 0; e < d; e++)
            if (cnt[d] % cnt[e] && cnt[e] % cnt[d])
                return st_error_set(err, ST_EINVAL, file, key,
                                    "%d x %s and %d x %s per GPU: strata's node groups (one per profile) need counts "
                                    "that divide one another",
                                    cnt[e], distinct[e]->name, cnt[d], distinct[d]->name);
    if (c->gpus_per_node * n > ST_MAX_DOMAIN_GPUS)
        return st_error_set(err, ST_EINVAL, file, key, "%lld GPUs x %d slices exceeds %d devices per node",
                            (long long)c->gpus_per_node, n, ST_MAX_DOMAIN_GPUS);
    st_cluster whole = *c;
    for (int d = 0; d < k; d++) {
        st_cluster u = whole;
        st_node_group *g = &c->groups[d];
        if ((rc = slice(&u, distinct[d], cnt[d], n, file, err)) < 0) return rc;
        memset(g, 0, sizeof *g);
        snprintf(g->name, sizeof g->name, "%s", distinct[d]->name);
        g->gpu = u.gpu;
        g->nodes = u.nodes, g->gpus_per_node = u.gpus_per_node, g->domain_gpus = 0;
        g->fabric = u.fabric;
        g->intra_bytes_per_s = u.intra_bytes_per_s, g->intra_latency_s = u.intra_latency_s;
        g->nics_per_node = u.nics_per_node;
        g->nic_bytes_per_s = u.nic_bytes_per_s * cnt[d] / n;
        g->inter_latency_s = u.inter_latency_s, g->oversubscription = u.oversubscription;
        g->host_memory_bytes = u.host_memory_bytes * cnt[d] / n;
        g->pcie_bytes_per_s = u.pcie_bytes_per_s;
        g->mig = u.mig;
        memcpy(g->mig.layout, text, sizeof text);
    }
    c->ngroups = k;
    c->xgroup_bytes_per_s = whole.pcie_bytes_per_s * (double)whole.gpus_per_node;
    c->xgroup_latency_s = 0;
    c->xgroup_oversubscription = 1;
    return 0;
}
