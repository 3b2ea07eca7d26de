/* cluster_io.c: cluster descriptions from JSON files (DESIGN.md, "Cluster: JSON"), resizing a
 * cluster to a GPU count, and the canonical JSON of a cluster (its content hash goes into plans).
 *
 * Units are in the key names and converted here, once, to SI: GB = 1e9 bytes, GiB = 2^30 bytes,
 * Gbit = 1e9 bits (/8 for bytes), TFLOPS = 1e12 FLOP/s, us = 1e-6 s. Bandwidths are per GPU and per
 * direction inside a node, per NIC and per direction between nodes.
 *
 * The scale-up domain ("scale_up": gpus, fabric, bandwidth_gb_per_s) is optional: without it the
 * domain is the host node on its intra_node link, as before the key existed, and the canonical
 * JSON leaves it out, so old files keep their meaning and their hash. With it, the domain's
 * bandwidth is the GPUs' one rate inside it (a host node's GPUs use the same fabric), so where
 * both keys give one they must agree. tdp_watts is left out of the canonical JSON: no time depends
 * on it, and plans made before it existed keep their hash.
 *
 * Invariants: every level rejects unknown keys with the dotted path (under the object's own path
 * when the cluster is an object inside another file: st__cluster_from_json, "clusters.KEY.gpu");
 * every size is bounded so that absurd inputs (10^9 nodes) are refused before anything is sized
 * from them; *out is written only after st_cluster_finalize accepted the result.
 *
 * The scale-out fabric (issue 16) is optional too: inter_node.nics_per_gpu may stand for nics_per_node
 * (the canonical JSON writes nics_per_node); "rail_optimized", "leaf" and "spine" (tiers: nodes under
 * one leaf and one pod, each tier's oversubscription) and in-network reduction (scale_up.sharp,
 * inter_node.sharp; CLUSTER:sharp=1) are written only when given, so a file without them hashes as
 * before.
 *
 * Node groups (issue 19): a cluster JSON with "groups" lists node descriptions (each with the keys of a
 * uniform cluster's nodes, read by the same code at key path groups[i]) and "between_groups", the
 * fabric joining them; it has no top-level node keys. A group may cut its GPUs into MIG slices
 * ("mig", as a uniform cluster does; written back as the group's whole GPUs and the layout). A file
 * without "groups" reads, writes and hashes as before.
 *
 * A uniform cluster's "mig": {"layout": [PROFILE, ...]} (or CLUSTER:mig=A+B+C) cuts each GPU into
 * several profiles (src/core/mig.c), which makes it node groups, one per profile; it is written back
 * as it was given, the whole GPUs and the layout. A node group takes one profile: it is one node type.
 */
#include "jsonutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define GIB 1073741824.0 /* 2^30 bytes */
#define MAX_BW_GB 1e6    /* 1 PB/s per GPU or NIC: beyond any hardware */
/* The physical floor of every rate and size: 1 MB/s (8 Mbit/s) for a link, 1 GFLOP/s for a peak,
 * 1 MiB for a memory. Below them a number is a typo, and a subnormal one (1e-320) made every time
 * that divides by it infinite: NaN answers with exit 0. */
#define MIN_BW_GB 1e-3
#define MIN_TFLOPS 1e-3
#define MIN_GIB (1.0 / 1024)

/* "calibration": the provenance strata calibrate --runs writes (profiler/fit.c); informational, not read */
static const char *const top_keys[] = {"name", "nodes", "gpus_per_node", "gpu", "intra_node", "scale_up",
                                       "inter_node", "host", "framework", "mig", "calibration", NULL};
static const char *const gpu_keys[] = {"name", "memory_gib", "hbm_gb_per_s", "peak_tflops", "gemm_efficiency",
                                       "gemm_efficiency_fp8", "sms", "tdp_watts", "gemm_half_dim", NULL};
static const char *const scale_up_keys[] = {"gpus", "fabric", "bandwidth_gb_per_s", "sharp", NULL};
static const char *const peak_keys[] = {"fp32", "tf32", "fp16", "bf16", "fp8", "mxfp8", "nvfp4", NULL};
static const char *const intra_keys[] = {"bandwidth_gb_per_s", "latency_us", NULL};
static const char *const inter_keys[] = {"nics_per_node", "nics_per_gpu", "nic_gbit_per_s", "latency_us",
                                         "oversubscription", "rail_optimized", "leaf", "spine", "sharp", NULL};
static const char *const tier_keys[] = {"nodes", "oversubscription", NULL};
static const char *const host_keys[] = {"memory_gib", "pcie_gb_per_s", NULL};
static const char *const framework_keys[] = {"reserved_gib", "launch_overhead_us", "host_us_per_kernel", NULL};
static const char *const mig_keys[] = {"profile", "per_gpu", "layout", NULL};
/* a cluster of node groups (issue 19): the groups, each a node description, and the fabric between them */
static const char *const grouped_keys[] = {"name", "source", "groups", "between_groups", "framework", "calibration",
                                           NULL};
static const char *const group_keys[] = {"name", "gpu", "nodes", "gpus_per_node", "scale_up", "intra_node",
                                         "inter_node", "host", "mig", NULL};
static const char *const between_keys[] = {"bandwidth_gb_per_s", "latency_us", "oversubscription", NULL};
#define MIN_GEMM_EFFICIENCY 0.05

/* dtype order of peak_keys matches st_dtype */
_Static_assert(ST_DT_FP32 == 0 && ST_DT_TF32 == 1 && ST_DT_FP16 == 2 && ST_DT_BF16 == 3 && ST_DT_FP8 == 4 &&
                   ST_DT_MXFP8 == 5 && ST_DT_NVFP4 == 6 && ST_DT_COUNT == 7,
               "peak_keys follow st_dtype");

static int missing(const char *file, const char *prefix, const char *key, st_error *err) {
    char path[128];
    return st_error_set(err, ST_EINVAL, file, st__json_key_path(path, sizeof path, prefix, key),
                        "missing required key");
}

/* A number in (0, hi] and >= lo: zero is refused with its own message, negative ones by the range. */
static int get_pos(const json_t *o, const char *key, double lo, double hi, double *out, int req, const char *file,
                   const char *prefix, st_error *err) {
    double x;
    int rc = st__json_get_num(o, key, 0, hi, &x, file, prefix, err);
    char path[128];

    if (rc < 0) return rc;
    if (rc == 0) return req ? missing(file, prefix, key, err) : 0;
    if (x <= 0)
        return st_error_set(err, ST_EINVAL, file, st__json_key_path(path, sizeof path, prefix, key),
                            "must be greater than 0 (allowed up to %g)", hi);
    if (x < lo)
        return st_error_set(err, ST_EINVAL, file, st__json_key_path(path, sizeof path, prefix, key),
                            "%g is below the physical floor (allowed %g..%g)", x, lo, hi);
    *out = x;
    return 1;
}

/* A sub-object at prefix.key: 1 present (an object, keys checked), 0 absent, <0 error. */
static int get_obj(const json_t *o, const char *prefix, const char *key, const char *const *allowed, json_t **out,
                   const char *file, st_error *err) {
    json_t *v = json_object_get(o, key);
    char path[128];
    int rc;

    if (!v) return 0;
    rc = st__json_check_keys(v, allowed, file, st__json_key_path(path, sizeof path, prefix, key), err);
    if (rc < 0) return rc;
    *out = v;
    return 1;
}

/* The GPU object at key path gpre ("gpu", or "clusters.KEY.gpu" in a bundle). */
static int load_gpu_object(const json_t *g, const char *file, const char *gpre, st_gpu *gpu, st_error *err) {
    int rc;
    const char *name = NULL;
    json_t *peak = json_object_get(g, "peak_tflops");
    double x;
    char ppre[128], path[160];

    memset(gpu, 0, sizeof *gpu);
    st__json_key_path(ppre, sizeof ppre, gpre, "peak_tflops");
    rc = st__json_check_keys(g, gpu_keys, file, gpre, err);
    if (rc < 0) goto out;
    rc = st__json_get_str(g, "name", &name, file, gpre, err);
    if (rc < 0) goto out;
    if (rc == 1 && (!name[0] || strlen(name) >= sizeof gpu->name)) {
        rc = st_error_set(err, ST_EINVAL, file, st__json_key_path(path, sizeof path, gpre, "name"),
                          "must be 1 to %zu characters", sizeof gpu->name - 1);
        goto out;
    }
    snprintf(gpu->name, sizeof gpu->name, "%s", name ? name : "custom");
    rc = get_pos(g, "memory_gib", MIN_GIB, 65536, &x, 1, file, gpre, err);
    if (rc < 0) goto out;
    gpu->memory_bytes = x * GIB;
    rc = get_pos(g, "hbm_gb_per_s", MIN_BW_GB, MAX_BW_GB, &x, 1, file, gpre, err);
    if (rc < 0) goto out;
    gpu->hbm_bytes_per_s = x * 1e9;
    if (!peak) {
        rc = missing(file, gpre, "peak_tflops", err);
        goto out;
    }
    rc = st__json_check_keys(peak, peak_keys, file, ppre, err);
    if (rc < 0) goto out;
    for (int d = 0; d < ST_DT_COUNT; d++) {
        x = 0;
        rc = st__json_get_num(peak, peak_keys[d], 0, 1e6, &x, file, ppre, err);
        if (rc < 0) goto out;
        if (x > 0 && x < MIN_TFLOPS) { /* 0 says the GPU lacks the dtype */
            rc = st_error_set(err, ST_EINVAL, file, st__json_key_path(path, sizeof path, ppre, peak_keys[d]),
                              "%g is below the physical floor (allowed 0, or %g..%g)", x, MIN_TFLOPS, 1e6);
            goto out;
        }
        gpu->peak_flops[d] = x * 1e12;
    }
    if (gpu->peak_flops[ST_DT_BF16] <= 0 && gpu->peak_flops[ST_DT_FP16] <= 0) {
        rc = st_error_set(err, ST_EINVAL, file, st__json_key_path(path, sizeof path, ppre, "bf16"),
                          "a GPU needs a 16-bit peak: bf16 or fp16 must be greater than 0");
        goto out;
    }
    /* The fraction of the dense peak large GEMMs reach: measured values are 0.6-0.9 (the presets'
     * sources); below MIN_GEMM_EFFICIENCY a number is a typo, and a subnormal one made every time
     * infinite (NaN in the output). fp8's is optional: without it st_gpu_gemm_efficiency derives
     * one. */
    gpu->gemm_efficiency = 0.8;
    static const char *const eff_keys[] = {"gemm_efficiency", "gemm_efficiency_fp8"};
    double *eff[] = {&gpu->gemm_efficiency, &gpu->gemm_efficiency_fp8};
    for (int k = 0; k < 2; k++) {
        rc = get_pos(g, eff_keys[k], 0, 1, eff[k], 0, file, gpre, err);
        if (rc < 0) goto out;
        if (rc == 1 && *eff[k] < MIN_GEMM_EFFICIENCY) {
            rc = st_error_set(err, ST_EINVAL, file, st__json_key_path(path, sizeof path, gpre, eff_keys[k]),
                              "%g is below %g of the dense peak: large GEMMs reach 0.6-0.9 of it", *eff[k],
                              MIN_GEMM_EFFICIENCY);
            goto out;
        }
    }
    int64_t sms = 0;
    rc = st__json_get_int(g, "sms", 1, 4096, &sms, file, gpre, err);
    if (rc < 0) goto out;
    gpu->sms = (int)sms;
    rc = get_pos(g, "tdp_watts", 1, 100000, &gpu->tdp_watts, 0, file, gpre, err);
    if (rc < 0) goto out;
    /* small GEMMs' tile quantisation (cost/compute.c); absent: cost/'s default */
    rc = get_pos(g, "gemm_half_dim", 1, 65536, &gpu->gemm_half_dim, 0, file, gpre, err);
    if (rc < 0) goto out;
    snprintf(gpu->source, sizeof gpu->source, "%s", file);
    rc = 0;
out:
    return rc;
}

/* "scale_up": the domain's GPUs (dividing the cluster's, a multiple of the host node's), fabric
 * and bandwidth into c (nodes and gpus_per_node already read); 0 when absent or read, <0 error. */
static int load_scale_up(const json_t *root, const char *file, const char *prefix, st_cluster *c, st_error *err) {
    json_t *su = NULL;
    const char *fab = NULL;
    char pre[128], path[160];
    double x = 0;
    int64_t all = c->nodes * c->gpus_per_node;
    int rc = get_obj(root, prefix, "scale_up", scale_up_keys, &su, file, err);

    if (rc <= 0) return rc;
    st__json_key_path(pre, sizeof pre, prefix, "scale_up");
    rc = st__json_get_int(su, "gpus", 1, ST_MAX_DOMAIN_GPUS, &c->domain_gpus, file, pre, err);
    if (rc < 0) return rc;
    if (rc == 0) return missing(file, pre, "gpus", err);
    st__json_key_path(path, sizeof path, pre, "gpus");
    if (c->domain_gpus > all)
        return st_error_set(err, ST_EINVAL, file, path, "%lld is larger than the cluster (%lld nodes x %lld GPUs)",
                            (long long)c->domain_gpus, (long long)c->nodes, (long long)c->gpus_per_node);
    if (all % c->domain_gpus != 0 || c->domain_gpus % c->gpus_per_node != 0)
        return st_error_set(err, ST_EINVAL, file, path,
                            "%lld must divide the cluster's %lld GPUs and be a multiple of gpus_per_node (%lld)",
                            (long long)c->domain_gpus, (long long)all, (long long)c->gpus_per_node);
    rc = st__json_get_str(su, "fabric", &fab, file, pre, err);
    if (rc < 0) return rc;
    if (rc == 1 && st_fabric_parse(fab, &c->fabric) != 0)
        return st_error_set(err, ST_EINVAL, file, st__json_key_path(path, sizeof path, pre, "fabric"),
                            "unknown fabric '%s' (nvswitch, xgmi or pcie)", fab);
    rc = get_pos(su, "bandwidth_gb_per_s", MIN_BW_GB, MAX_BW_GB, &x, 0, file, pre, err);
    if (rc < 0) return rc;
    c->intra_bytes_per_s = x * 1e9;
    /* the file's word that its switches reduce (checked against the fabric by st_cluster_finalize) */
    rc = st__json_get_bool(su, "sharp", &c->sharp_domain, file, pre, err);
    if (rc < 0) return rc;
    c->nvls_capable = c->sharp_domain;
    return 0;
}

static int groups_from_json(const json_t *root, const char *file, const char *prefix, const char *fallback,
                            st_cluster *out, st_error *err);

/* inter_node's NICs: nics_per_node, or nics_per_gpu (a whole number of NICs per node once multiplied
 * by gpus_per_node: 0.5 is one NIC per two GPUs), one of the two; 0 or <0. */
static int load_nics(const json_t *inter, const char *file, const char *pre, st_cluster *c, st_error *err) {
    char path[160];
    double per_gpu = 0;
    int rc = st__json_get_int(inter, "nics_per_node", 0, 64, &c->nics_per_node, file, pre, err);
    if (rc < 0) return rc;
    int have_node = rc;
    rc = st__json_get_num(inter, "nics_per_gpu", 0, 64, &per_gpu, file, pre, err);
    if (rc < 0) return rc;
    if (rc == 0) return have_node ? 0 : missing(file, pre, "nics_per_node", err);
    st__json_key_path(path, sizeof path, pre, "nics_per_gpu");
    if (have_node) return st_error_set(err, ST_EINVAL, file, path, "give nics_per_node or nics_per_gpu, not both");
    double nics = per_gpu * (double)c->gpus_per_node;
    if (nics != floor(nics) || nics > 64)
        return st_error_set(err, ST_EINVAL, file, path,
                            "%g x %lld GPUs per node is not a whole number of NICs up to 64", per_gpu,
                            (long long)c->gpus_per_node);
    c->nics_per_node = (int64_t)nics;
    return 0;
}

/* inter_node's rails ("rail_optimized"), in-network reduction ("sharp") and tiers ("leaf": {nodes,
 * oversubscription}, "spine": the same for a pod): each tier's nodes must divide the described
 * cluster's when it has more (the checks between tiers are st_cluster_finalize's); 0 or <0. */
static int load_tiers(const json_t *inter, const char *file, const char *pre, st_cluster *c, st_error *err) {
    static const char *const names[] = {"leaf", "spine"};
    int64_t *nodes[] = {&c->leaf_nodes, &c->pod_nodes};
    double *over[] = {&c->leaf_oversubscription, &c->pod_oversubscription};
    char tpre[160], path[200];
    int rc = st__json_get_bool(inter, "rail_optimized", &c->rail_optimized, file, pre, err);
    if (rc < 0) return rc;
    rc = st__json_get_bool(inter, "sharp", &c->sharp_inter, file, pre, err);
    if (rc < 0) return rc;
    for (int t = 0; t < 2; t++) {
        json_t *o = NULL;
        rc = get_obj(inter, pre, names[t], tier_keys, &o, file, err);
        if (rc < 0) return rc;
        if (rc == 0) continue;
        st__json_key_path(tpre, sizeof tpre, pre, names[t]);
        rc = st__json_get_int(o, "nodes", 1, ST_MAX_GPUS, nodes[t], file, tpre, err);
        if (rc < 0) return rc;
        if (rc == 0) return missing(file, tpre, "nodes", err);
        *over[t] = 1;
        rc = st__json_get_num(o, "oversubscription", 1, 1000, over[t], file, tpre, err);
        if (rc < 0) return rc;
        if (c->nodes > *nodes[t] && c->nodes % *nodes[t] != 0)
            return st_error_set(err, ST_EINVAL, file, st__json_key_path(path, sizeof path, tpre, "nodes"),
                                "%lld does not divide the cluster's %lld nodes", (long long)*nodes[t],
                                (long long)c->nodes);
    }
    return 0;
}

/* "mig": every GPU of a node cut into per_gpu slices of one profile, or into the instances "layout"
 * lists (several profiles: src/core/mig.c); 0 when absent or applied, <0 error. Needs the GPU, host
 * and framework keys read. */
static int load_mig(const json_t *root, const char *file, const char *prefix, st_cluster *c, st_error *err) {
    json_t *m = NULL;
    const char *profile = NULL;
    int64_t per = 0;
    char pre[128], path[160];
    int rc = get_obj(root, prefix, "mig", mig_keys, &m, file, err);

    if (rc <= 0) return rc;
    st__json_key_path(pre, sizeof pre, prefix, "mig");
    const json_t *lay = json_object_get(m, "layout");
    if (lay) {
        char names[ST_MIG_MAX_LAYOUT][16];
        size_t n = json_is_array(lay) ? json_array_size(lay) : 0;
        st__json_key_path(path, sizeof path, pre, "layout");
        if (json_object_get(m, "profile") || json_object_get(m, "per_gpu"))
            return st_error_set(err, ST_EINVAL, file, path, "give either a layout or profile and per_gpu");
        if (n < 1 || n > ST_MIG_MAX_LAYOUT)
            return st_error_set(err, ST_EINVAL, file, path, "expected an array of 1 to %d MIG profile names",
                                ST_MIG_MAX_LAYOUT);
        for (size_t i = 0; i < n; i++) {
            const char *s = json_string_value(json_array_get(lay, i));
            if (!s || !s[0] || strlen(s) >= sizeof names[0])
                return st_error_set(err, ST_EINVAL, file, path, "entry %zu is not a MIG profile name", i);
            snprintf(names[i], sizeof names[i], "%s", s);
        }
        rc = st_cluster_set_mig_layout(c, names, (int)n, file, "mig.layout", err);
        if (rc < 0) st__json_prefix_error(err, prefix);
        return rc;
    }
    rc = st__json_get_str(m, "profile", &profile, file, pre, err);
    if (rc < 0) return rc;
    if (rc == 0) return missing(file, pre, "profile", err);
    rc = st__json_get_int(m, "per_gpu", 1, ST_MAX_DOMAIN_GPUS, &per, file, pre, err);
    if (rc < 0) return rc;
    rc = st_cluster_set_mig(c, profile, (int)per, file, err);
    if (rc < 0) st__json_prefix_error(err, prefix);
    return rc;
}

/* The cluster-wide end of a description, uniform or of node groups: what the training stack holds
 * besides the model ("framework"; absent: st_cluster_reserved_bytes's default), the source, the checks
 * of st_cluster_finalize; *out written only when they pass. 0 or <0. */
static int finish_cluster(const json_t *root, const char *file, const char *prefix, st_cluster *c, st_cluster *out,
                          st_error *err) {
    json_t *sub = NULL;
    int rc = get_obj(root, prefix, "framework", framework_keys, &sub, file, err);
    if (rc < 0) return rc;
    if (sub) {
        char p_fw[128];
        double x = 0;
        st__json_key_path(p_fw, sizeof p_fw, prefix, "framework");
        rc = get_pos(sub, "reserved_gib", MIN_GIB, 1 << 20, &x, 0, file, p_fw, err);
        if (rc < 0) return rc;
        c->reserved_bytes = x * GIB;
        /* per-kernel prices of the stack (cost/compute.c), from 10 ns to 1 s; absent: cost/'s defaults */
        static const char *const kernel_keys[] = {"launch_overhead_us", "host_us_per_kernel"};
        double *kernel_s[] = {&c->launch_overhead_s, &c->host_s_per_kernel};
        for (int k = 0; k < 2; k++) {
            x = 0;
            rc = get_pos(sub, kernel_keys[k], 0.01, 1e6, &x, 0, file, p_fw, err);
            if (rc < 0) return rc;
            *kernel_s[k] = x * 1e-6;
        }
    }
    /* a grouped cluster's keys have no "mig" (grouped_keys): each group slices its own (group_keys) */
    rc = load_mig(root, file, prefix, c, err);
    if (rc < 0) return rc;
    snprintf(c->source, sizeof c->source, "%s", file);
    rc = st_cluster_finalize(c, file, err);
    if (rc < 0) {
        st__json_prefix_error(err, prefix);
        return rc;
    }
    *out = *c;
    return 0;
}

int st__cluster_from_json(const json_t *root, const char *file, const char *prefix, const char *fallback,
                          st_cluster *out, st_error *err) {
    if (json_is_object(root) && json_object_get(root, "groups"))
        return groups_from_json(root, file, prefix, fallback, out, err);
    int rc;
    json_t *gv, *sub = NULL;
    const char *name = NULL;
    st_cluster c;
    double x;
    char path[128], p_gpu[128], p_intra[128], p_inter[128], p_host[128];

    memset(&c, 0, sizeof c);
    if (!json_is_object(root)) {
        rc = st_error_set(err, ST_EINVAL, file, prefix, "expected a JSON object (a cluster description)");
        goto out;
    }
    st__json_key_path(p_gpu, sizeof p_gpu, prefix, "gpu");
    st__json_key_path(p_intra, sizeof p_intra, prefix, "intra_node");
    st__json_key_path(p_inter, sizeof p_inter, prefix, "inter_node");
    st__json_key_path(p_host, sizeof p_host, prefix, "host");
    rc = st__json_check_keys(root, top_keys, file, prefix, err);
    if (rc < 0) goto out;

    rc = st__json_get_str(root, "name", &name, file, prefix, err);
    if (rc < 0) goto out;
    if (rc == 1) {
        if (!name[0] || strlen(name) >= sizeof c.name) {
            rc = st_error_set(err, ST_EINVAL, file, st__json_key_path(path, sizeof path, prefix, "name"),
                              "must be 1 to %zu characters", sizeof c.name - 1);
            goto out;
        }
        snprintf(c.name, sizeof c.name, "%s", name);
    } else if (fallback) {
        snprintf(c.name, sizeof c.name, "%s", fallback);
    } else {
        st__json_name_from_path(c.name, sizeof c.name, file, "cluster");
    }

    rc = st__json_get_int(root, "nodes", 1, ST_MAX_GPUS, &c.nodes, file, prefix, err);
    if (rc < 0) goto out;
    if (rc == 0) {
        rc = missing(file, prefix, "nodes", err);
        goto out;
    }
    rc = st__json_get_int(root, "gpus_per_node", 1, ST_MAX_DOMAIN_GPUS, &c.gpus_per_node, file, prefix, err);
    if (rc < 0) goto out;
    if (rc == 0) {
        rc = missing(file, prefix, "gpus_per_node", err);
        goto out;
    }
    if (c.nodes * c.gpus_per_node > ST_MAX_GPUS) {
        rc = st_error_set(err, ST_EINVAL, file, st__json_key_path(path, sizeof path, prefix, "nodes"),
                          "%lld nodes x %lld GPUs exceeds the limit of %d GPUs", (long long)c.nodes,
                          (long long)c.gpus_per_node, ST_MAX_GPUS);
        goto out;
    }

    gv = json_object_get(root, "gpu");
    if (!gv) {
        rc = missing(file, prefix, "gpu", err);
        goto out;
    }
    if (json_is_string(gv)) {
        if (st_gpu_preset(json_string_value(gv), &c.gpu) != 0) {
            rc = st_error_set(err, ST_EINVAL, file, p_gpu, "unknown GPU '%s' (see `strata clusters`)",
                              json_string_value(gv));
            goto out;
        }
    } else if (json_is_object(gv)) {
        rc = load_gpu_object(gv, file, p_gpu, &c.gpu, err);
        if (rc < 0) goto out;
    } else {
        rc = st_error_set(err, ST_EINVAL, file, p_gpu, "expected a GPU name or an object");
        goto out;
    }

    rc = load_scale_up(root, file, prefix, &c, err);
    if (rc < 0) goto out;
    sub = NULL;
    rc = get_obj(root, prefix, "intra_node", intra_keys, &sub, file, err);
    if (rc < 0) goto out;
    if (rc == 0 && !(c.intra_bytes_per_s > 0)) {
        rc = missing(file, p_intra, "bandwidth_gb_per_s", err);
        goto out;
    }
    x = 0;
    if (sub) {
        rc = get_pos(sub, "bandwidth_gb_per_s", MIN_BW_GB, MAX_BW_GB, &x, !(c.intra_bytes_per_s > 0), file, p_intra,
                     err);
        if (rc < 0) goto out;
    }
    if (x > 0 && c.intra_bytes_per_s > 0 && x * 1e9 != c.intra_bytes_per_s) {
        st__json_key_path(path, sizeof path, prefix, "scale_up.bandwidth_gb_per_s");
        rc = st_error_set(err, ST_EINVAL, file, path,
                          "%g differs from intra_node.bandwidth_gb_per_s %g: a host node's GPUs use the domain's "
                          "fabric, give one", c.intra_bytes_per_s / 1e9, x);
        goto out;
    }
    if (x > 0) c.intra_bytes_per_s = x * 1e9;
    x = 2;
    if (sub) {
        rc = st__json_get_num(sub, "latency_us", 0, 1e6, &x, file, p_intra, err);
        if (rc < 0) goto out;
    }
    c.intra_latency_s = x * 1e-6;

    rc = get_obj(root, prefix, "inter_node", inter_keys, &sub, file, err);
    if (rc < 0) goto out;
    if (rc == 0) {
        rc = missing(file, p_inter, "nics_per_node", err);
        goto out;
    }
    rc = load_nics(sub, file, p_inter, &c, err);
    if (rc < 0) goto out;
    if (c.nics_per_node == 0 && c.nodes > 1) {
        /* the key the file gave */
        const char *nk = json_object_get(sub, "nics_per_gpu") ? "nics_per_gpu" : "nics_per_node";
        rc = st_error_set(err, ST_EINVAL, file, st__json_key_path(path, sizeof path, p_inter, nk),
                          "0 NICs is allowed only for a single node (nodes is %lld)", (long long)c.nodes);
        goto out;
    }
    rc = get_pos(sub, "nic_gbit_per_s", MIN_BW_GB * 8, MAX_BW_GB * 8, &x, 1, file, p_inter, err);
    if (rc < 0) goto out;
    c.nic_bytes_per_s = x * 1e9 / 8;
    x = 5;
    rc = st__json_get_num(sub, "latency_us", 0, 1e6, &x, file, p_inter, err);
    if (rc < 0) goto out;
    c.inter_latency_s = x * 1e-6;
    c.oversubscription = 1;
    rc = st__json_get_num(sub, "oversubscription", 1, 1000, &c.oversubscription, file, p_inter, err);
    if (rc < 0) goto out;
    rc = load_tiers(sub, file, p_inter, &c, err);
    if (rc < 0) goto out;

    x = 1024;
    sub = NULL;
    rc = get_obj(root, prefix, "host", host_keys, &sub, file, err);
    if (rc < 0) goto out;
    if (sub) {
        rc = get_pos(sub, "memory_gib", MIN_GIB, 1 << 20, &x, 0, file, p_host, err);
        if (rc < 0) goto out;
    }
    c.host_memory_bytes = x * GIB;
    x = 25;
    if (sub) {
        rc = get_pos(sub, "pcie_gb_per_s", MIN_BW_GB, MAX_BW_GB, &x, 0, file, p_host, err);
        if (rc < 0) goto out;
    }
    c.pcie_bytes_per_s = x * 1e9;

    rc = finish_cluster(root, file, prefix, &c, out, err);
out:
    return rc;
}

/* "groups": each group read as a node description at groups[i] (its errors name groups[i].KEY), then
 * the fabric between them ("between_groups": bandwidth per node per direction, latency, oversubscription)
 * and the cluster-wide keys (name, framework). */
static int groups_from_json(const json_t *root, const char *file, const char *prefix, const char *fallback,
                            st_cluster *out, st_error *err) {
    int rc;
    st_cluster c, gc;
    json_t *arr = json_object_get(root, "groups"), *sub = NULL;
    char pre[128], gpre[160], path[200];
    const char *name = NULL;
    double x;

    memset(&c, 0, sizeof c);
    rc = st__json_check_keys(root, grouped_keys, file, prefix, err);
    if (rc < 0) goto out;
    st__json_key_path(pre, sizeof pre, prefix, "groups");
    if (!json_is_array(arr) || json_array_size(arr) < 1 || json_array_size(arr) > ST_MAX_GROUPS) {
        rc = st_error_set(err, ST_EINVAL, file, pre, "expected an array of 1 to %d node groups", ST_MAX_GROUPS);
        goto out;
    }
    rc = st__json_get_str(root, "name", &name, file, prefix, err);
    if (rc < 0) goto out;
    if (rc == 1 && (!name[0] || strlen(name) >= sizeof c.name)) {
        rc = st_error_set(err, ST_EINVAL, file, st__json_key_path(path, sizeof path, prefix, "name"),
                          "must be 1 to %zu characters", sizeof c.name - 1);
        goto out;
    }
    if (name)
        snprintf(c.name, sizeof c.name, "%s", name);
    else if (fallback)
        snprintf(c.name, sizeof c.name, "%s", fallback);
    else
        st__json_name_from_path(c.name, sizeof c.name, file, "cluster");
    for (size_t i = 0; i < json_array_size(arr); i++) {
        const json_t *g = json_array_get(arr, i);
        st_node_group *x = &c.groups[i];
        snprintf(gpre, sizeof gpre, "%s[%zu]", pre, i);
        if (!json_is_object(g)) {
            rc = st_error_set(err, ST_EINVAL, file, gpre, "expected a node group object");
            goto out;
        }
        rc = st__json_check_keys(g, group_keys, file, gpre, err);
        if (rc < 0) goto out;
        char gname[32];
        snprintf(gname, sizeof gname, "group%zu", i);
        rc = st__cluster_from_json(g, file, gpre, gname, &gc, err);
        if (rc < 0) goto out;
        if (gc.ngroups > 0) { /* one node group is one node type: a layout of several profiles would be several */
            rc = st_error_set(err, ST_EINVAL, file, st__json_key_path(path, sizeof path, gpre, "mig.layout"),
                              "a node group takes one MIG profile (profile and per_gpu); a layout of several "
                              "profiles is a cluster of its own");
            goto out;
        }
        if (strlen(gc.name) >= sizeof x->name) {
            rc = st_error_set(err, ST_EINVAL, file, st__json_key_path(path, sizeof path, gpre, "name"),
                              "must be 1 to %zu characters", sizeof x->name - 1);
            goto out;
        }
        snprintf(x->name, sizeof x->name, "%s", gc.name);
        x->gpu = gc.gpu;
        x->nodes = gc.nodes, x->gpus_per_node = gc.gpus_per_node, x->domain_gpus = gc.domain_gpus;
        x->fabric = gc.fabric;
        x->intra_bytes_per_s = gc.intra_bytes_per_s, x->intra_latency_s = gc.intra_latency_s;
        x->nics_per_node = gc.nics_per_node, x->nic_bytes_per_s = gc.nic_bytes_per_s;
        x->inter_latency_s = gc.inter_latency_s, x->oversubscription = gc.oversubscription;
        x->host_memory_bytes = gc.host_memory_bytes, x->pcie_bytes_per_s = gc.pcie_bytes_per_s;
        x->mig = gc.mig;
        if (gc.leaf_nodes || gc.rail_optimized || gc.sharp_inter) { /* the fabric between groups is between_groups */
            rc = st_error_set(err, ST_EINVAL, file, st__json_key_path(path, sizeof path, gpre, "inter_node"),
                              "rails, tiers and SHARP (rail_optimized, leaf, spine, sharp) are not described inside "
                              "node groups");
            goto out;
        }
        if (gc.sharp_domain) {
            rc = st_error_set(err, ST_EINVAL, file, st__json_key_path(path, sizeof path, gpre, "scale_up.sharp"),
                              "NVLink SHARP is not described inside node groups");
            goto out;
        }
        c.ngroups++;
    }
    st__json_key_path(pre, sizeof pre, prefix, "between_groups");
    rc = get_obj(root, prefix, "between_groups", between_keys, &sub, file, err);
    if (rc < 0) goto out;
    if (rc == 0 && c.ngroups > 1) {
        rc = missing(file, pre, "bandwidth_gb_per_s", err);
        goto out;
    }
    c.xgroup_oversubscription = 1;
    if (sub) {
        rc = get_pos(sub, "bandwidth_gb_per_s", MIN_BW_GB, MAX_BW_GB, &x, 1, file, pre, err);
        if (rc < 0) goto out;
        c.xgroup_bytes_per_s = x * 1e9;
        x = 5;
        rc = st__json_get_num(sub, "latency_us", 0, 1e6, &x, file, pre, err);
        if (rc < 0) goto out;
        c.xgroup_latency_s = x * 1e-6;
        rc = st__json_get_num(sub, "oversubscription", 1, 1000, &c.xgroup_oversubscription, file, pre, err);
        if (rc < 0) goto out;
    }
    /* where the numbers come from (a JSON file has no comments); the file path where it does not say */
    const char *src = NULL;
    rc = st__json_get_str(root, "source", &src, file, prefix, err);
    if (rc < 0) goto out;
    rc = finish_cluster(root, file, prefix, &c, out, err);
    if (rc == 0 && src) snprintf(out->source, sizeof out->source, "%s", src);
out:
    return rc;
}

int st_cluster_load(const char *path, st_cluster *out, st_error *err) {
    json_t *root = NULL;
    int rc = st__json_load_file(path, &root, err);
    if (rc == 0) rc = st__cluster_from_json(root, path, NULL, NULL, out, err);
    json_decref(root);
    return rc;
}

int st_cluster_size(st_cluster *c, int64_t gpus, const char *file, st_error *err) {
    int64_t per = c->gpus_per_node, dom = st_cluster_domain(c);
    /* ranks fill the groups in order; a part of a mixed cluster is described as its own groups */
    if (c->ngroups > 0 && gpus != st_cluster_gpus(c))
        return st_error_set(err, ST_EINVAL, file, "gpus",
                            "cluster '%s' is made of node groups and is used whole (%lld GPUs); describe the "
                            "part you want as its groups", c->name, (long long)st_cluster_gpus(c));
    if (c->ngroups > 0) return 0;
    if (gpus <= 0) return st_error_set(err, ST_EINVAL, file, "gpus", "must be positive (got %lld)", (long long)gpus);
    if (gpus > ST_MAX_GPUS)
        return st_error_set(err, ST_EINVAL, file, "gpus", "%lld exceeds the limit of %d GPUs", (long long)gpus,
                            ST_MAX_GPUS);
    /* the job on part of every domain: whole parts (CLUSTER:domain_gpus=N) */
    if (c->domain_gpus_used > 0 && gpus % c->domain_gpus_used != 0)
        return st_error_set(err, ST_EINVAL, file, "gpus",
                            "%lld is not a multiple of the %lld GPUs the job takes of each scale-up domain of "
                            "cluster '%s' (domain_gpus)", (long long)gpus, (long long)c->domain_gpus_used, c->name);
    /* fewer GPUs than one node or domain: the first ones, as a launcher places them; more: whole host
     * nodes, filling the domains in order (the last one in part: 256 on NVL72 is 72, 72, 72, 40) */
    if (gpus > dom && gpus % per != 0)
        return st_error_set(err, ST_EINVAL, file, "gpus",
                            "%lld is not a multiple of the %lld GPUs per node of cluster '%s'", (long long)gpus,
                            (long long)per, c->name);
    int64_t nodes = (gpus + per - 1) / per;
    if (gpus > st_cluster_domain_used(c) && c->nics_per_node == 0)
        return st_error_set(err, ST_EINVAL, file, "gpus",
                            "%lld GPUs need %lld nodes but cluster '%s' has no NICs between nodes", (long long)gpus,
                            (long long)nodes, c->name);
    c->nodes = nodes;
    c->gpus_used = gpus % per ? gpus : 0;
    return 0;
}

/* "CLUSTER:mig=PROFILE[xN]" (or ":mig=none"), or a layout of several "PROFILE[xN]+PROFILE[xN]...": the
 * cluster with its GPUs cut so (src/core/mig.c), named CLUSTER+SPEC so that `compare` tells the
 * variants apart. 0, or ST_EINVAL naming "mig". */
static int apply_mig_suffix(const char *spec, const char *file, st_cluster *c, st_error *err) {
    char profile[16], names[ST_MIG_MAX_LAYOUT][16];
    int per = 0, rc, n = 0;
    if (c->ngroups > 0 && !st_cluster_mig_layout(c))
        return st_error_set(err, ST_EINVAL, file, "mig", "a cluster of node groups cannot be cut into MIG slices");
    if (strchr(spec, '+')) {
        if (st_mig_layout_parse(spec, names, ST_MIG_MAX_LAYOUT, &n) != 0)
            return st_error_set(err, ST_EINVAL, file, "mig",
                                "'%s' is not a layout PROFILE[xN]+PROFILE[xN]... of at most %d instances", spec,
                                ST_MIG_MAX_LAYOUT);
        if ((rc = st_cluster_set_mig_layout(c, names, n, file, "mig", err)) < 0) return rc;
    } else {
        if (st_mig_spec_parse(spec, profile, sizeof profile, &per) != 0)
            return st_error_set(err, ST_EINVAL, file, "mig",
                                "'%s' is not PROFILE or PROFILExN (e.g. 1g.5gb, 3g.20gbx2)", spec);
        if ((rc = st_cluster_set_mig(c, profile, per, file, err)) < 0) return rc;
    }
    char name[sizeof c->name];
    if (n)
        snprintf(name, sizeof name, "%.30s+%.32s", c->name, spec);
    else if (!c->mig.per_gpu)
        snprintf(name, sizeof name, "%.40s+whole", c->name);
    else if (per)
        snprintf(name, sizeof name, "%.40s+%sx%d", c->name, profile, per);
    else
        snprintf(name, sizeof name, "%.40s+%s", c->name, profile);
    memcpy(c->name, name, sizeof name);
    return st_cluster_finalize(c, file, err);
}

/* "CLUSTER:sharp=1" (or 0): NVLink SHARP on (off) inside the scale-up domain, where the cluster's
 * switches have it (st_cluster.nvls_capable), named CLUSTER+sharp so that `compare` tells the variants
 * apart. 0, or ST_EINVAL naming "sharp". */
static int apply_sharp_suffix(const char *spec, const char *file, st_cluster *c, st_error *err) {
    if (strcmp(spec, "1") != 0 && strcmp(spec, "0") != 0)
        return st_error_set(err, ST_EINVAL, file, "sharp", "'%s' is not 1 or 0", spec);
    c->sharp_domain = spec[0] == '1';
    if (c->sharp_domain && (!c->nvls_capable || c->ngroups > 0))
        return st_error_set(err, ST_EINVAL, file, "sharp",
                            "cluster '%s' has no NVLink SHARP (NVSwitch gen 3 on: H100, H200, B200, B300, NVL72)",
                            c->name);
    char name[sizeof c->name];
    snprintf(name, sizeof name, "%.50s+%s", c->name, c->sharp_domain ? "sharp" : "nosharp");
    memcpy(c->name, name, sizeof name);
    return st_cluster_finalize(c, file, err);
}

/* "CLUSTER:domain_gpus=N": the job takes N GPUs of each of the cluster's scale-up domains (whole host
 * nodes of each, its ranks filling them in order), the rest of each domain left to others: NVIDIA's
 * advice for jobs of 128 GPUs and more on GB200 NVL72 is Slurm's --segment=16, 16 of a rack's 18
 * trays (NVIDIA technical blog, "Achieving Peak System and Workload Efficiency on NVIDIA GB200
 * NVL72 with Slurm Block Scheduling"). The cluster as described keeps its domains and uses N of each;
 * named CLUSTER+NofD so that `compare` tells the placements apart. 0, or ST_EINVAL naming "domain_gpus". */
static int apply_domain_suffix(const char *spec, const char *file, st_cluster *c, st_error *err) {
    char *end = NULL;
    long long n = strtoll(spec, &end, 10);
    if (!spec[0] || *end || n < 1 || n > ST_MAX_DOMAIN_GPUS)
        return st_error_set(err, ST_EINVAL, file, "domain_gpus", "'%s' is not a GPU count 1..%d", spec,
                            ST_MAX_DOMAIN_GPUS);
    int64_t domains = st_cluster_gpus(c) / st_cluster_domain_used(c), dom = st_cluster_domain(c);
    c->domain_gpus_used = n;
    if (n % c->gpus_per_node == 0 && n <= dom) c->nodes = domains * n / c->gpus_per_node;
    char name[sizeof c->name];
    snprintf(name, sizeof name, "%.40s+%lldof%lld", c->name, n, (long long)dom);
    memcpy(c->name, name, sizeof name);
    return st_cluster_finalize(c, file, err);
}

int st_cluster_resolve(const char *arg, int64_t gpus, st_cluster *out, st_error *err) {
    /* the suffixes CLUSTER[:mig=SPEC][:sharp=1][:domain_gpus=N], in this order, each cut off at its ':' */
    static const char *const tags[] = {":mig=", ":sharp=", ":domain_gpus="};
    static const char *const keys[] = {"mig", "sharp", "domain_gpus"};
    enum { NTAGS = sizeof tags / sizeof tags[0] };
    const char *spec[NTAGS] = {NULL}, *at[NTAGS], *file = NULL;
    char *base = NULL;
    st_cluster c;
    int rc, any = 0;

    if (!arg || !arg[0]) {
        rc = st_error_set(err, ST_EUSAGE, NULL, "cluster", "no cluster given");
        goto out;
    }
    for (int i = 0; i < NTAGS; i++) {
        at[i] = strstr(arg, tags[i]);
        any |= at[i] != NULL;
        for (int j = 0; j < i; j++)
            if (at[i] && at[j] && at[i] < at[j]) {
                rc = st_error_set(err, ST_EINVAL, NULL, keys[i], "write %s after %s", tags[i], tags[j]);
                goto out;
            }
    }
    if (any) { /* base is a copy to cut, from the last suffix back */
        if (!(base = strdup(arg))) {
            rc = st_error_set(err, ST_ENOMEM, NULL, "cluster", "out of memory");
            goto out;
        }
        for (int i = NTAGS - 1; i >= 0; i--)
            if (at[i]) {
                base[at[i] - arg] = 0;
                spec[i] = base + (at[i] - arg) + strlen(tags[i]);
            }
        arg = base;
    }
    if (st_cluster_preset(arg, &c) != 0) {
        rc = st_cluster_load(arg, &c, err);
        if (rc < 0) {
            rc = st__preset_or_file_error(arg, "cluster", "strata clusters", err);
            goto out;
        }
        file = arg;
    }
    if (spec[0] && (rc = apply_mig_suffix(spec[0], file, &c, err)) < 0) goto out;
    if (spec[1] && (rc = apply_sharp_suffix(spec[1], file, &c, err)) < 0) goto out;
    if (spec[2] && (rc = apply_domain_suffix(spec[2], file, &c, err)) < 0) goto out;
    if (gpus != 0) { /* 0: as described */
        rc = st_cluster_size(&c, gpus, file, err);
        if (rc < 0) goto out;
    }
    *out = c;
    rc = 0;
out:
    free(base);
    return rc;
}

/* ------------------------------------------------------------ canonical JSON */

static json_t *cluster_fields_to_json(const st_cluster *c);

/* The cluster-wide "framework" keys, only those set: a cluster that keeps the defaults writes (and
 * hashes) as before. New object (possibly empty), or NULL when out of memory. */
static json_t *framework_to_json(const st_cluster *c) {
    json_t *fw = json_object();
    int bad = !fw;
    if (!bad && c->reserved_bytes > 0) bad |= json_object_set_new(fw, "reserved_gib", json_real(c->reserved_bytes / GIB));
    if (!bad && c->launch_overhead_s > 0)
        bad |= json_object_set_new(fw, "launch_overhead_us", json_real(c->launch_overhead_s * 1e6));
    if (!bad && c->host_s_per_kernel > 0)
        bad |= json_object_set_new(fw, "host_us_per_kernel", json_real(c->host_s_per_kernel * 1e6));
    if (bad) {
        json_decref(fw);
        return NULL;
    }
    return fw;
}

/* A cluster of node groups: its name, each group's node description (the uniform cluster of the group,
 * st_cluster_view), the fabric between them and the cluster-wide keys. */
static json_t *groups_to_json(const st_cluster *c) {
    json_t *o = json_object(), *arr = json_array(), *bg = json_object();
    int bad = !o || !arr || !bg;
    int64_t first = 0;

    if (bad) goto out;
    bad |= json_object_set_new(o, "name", json_string(c->name));
    for (int g = 0; g < c->ngroups && !bad; g++) {
        st_cluster v;
        int64_t n = c->groups[g].nodes * c->groups[g].gpus_per_node;
        st_cluster_view(c, first, n, &v);
        v.reserved_bytes = v.launch_overhead_s = v.host_s_per_kernel = 0; /* cluster-wide, written once below */
        snprintf(v.name, sizeof v.name, "%s", c->groups[g].name);
        json_t *gj = cluster_fields_to_json(&v);
        bad |= !gj || json_array_append_new(arr, gj);
        first += n;
    }
    bad |= json_object_set(o, "groups", arr);
    bad |= json_object_set_new(bg, "bandwidth_gb_per_s", json_real(c->xgroup_bytes_per_s / 1e9));
    bad |= json_object_set_new(bg, "latency_us", json_real(c->xgroup_latency_s * 1e6));
    bad |= json_object_set_new(bg, "oversubscription", json_real(c->xgroup_oversubscription));
    bad |= json_object_set(o, "between_groups", bg);
    json_t *fw = framework_to_json(c);
    if (fw && json_object_size(fw))
        bad |= json_object_set(o, "framework", fw);
    else if (!fw)
        bad = 1;
    json_decref(fw);
out:
    json_decref(arr);
    json_decref(bg);
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

json_t *st__cluster_to_json(const st_cluster *c) {
    return c->ngroups > 0 && !st_cluster_mig_layout(c) ? groups_to_json(c) : cluster_fields_to_json(c);
}

static json_t *cluster_fields_to_json(const st_cluster *c) {
    /* a sliced cluster writes its whole GPUs and the layout, so that loading it slices it again */
    st_cluster whole;
    const st_cluster_mig *lay = st_cluster_mig_layout(c);
    st_cluster_mig mig = lay ? *lay : c->mig;
    if (mig.per_gpu > 0) {
        whole = *c;
        st_cluster_set_mig(&whole, NULL, 0, NULL, NULL);
        c = &whole;
    }
    json_t *o = json_object(), *g = json_object(), *peak = json_object(), *intra = json_object(),
           *inter = json_object(), *host = json_object(), *fw = framework_to_json(c);
    int bad = !o || !g || !peak || !intra || !inter || !host || !fw;

    if (bad) goto out;
    /* divide by the exact unit constants (2^30, 1e9, 1e12) so whole numbers come back whole */
    bad |= json_object_set_new(o, "name", json_string(c->name));
    bad |= json_object_set_new(o, "nodes", json_integer(c->nodes));
    bad |= json_object_set_new(o, "gpus_per_node", json_integer(c->gpus_per_node));
    bad |= json_object_set_new(g, "name", json_string(c->gpu.name));
    bad |= json_object_set_new(g, "memory_gib", json_real(c->gpu.memory_bytes / GIB));
    bad |= json_object_set_new(g, "hbm_gb_per_s", json_real(c->gpu.hbm_bytes_per_s / 1e9));
    /* the block-scaled formats only where the GPU has them: a description without them reads back the same */
    for (int d = 0; d < ST_DT_COUNT; d++)
        if (!(d >= ST_DT_MXFP8 && c->gpu.peak_flops[d] <= 0))
            bad |= json_object_set_new(peak, peak_keys[d], json_real(c->gpu.peak_flops[d] / 1e12));
    bad |= json_object_set(g, "peak_tflops", peak);
    bad |= json_object_set_new(g, "gemm_efficiency", json_real(c->gpu.gemm_efficiency));
    if (c->gpu.gemm_efficiency_fp8 > 0)
        bad |= json_object_set_new(g, "gemm_efficiency_fp8", json_real(c->gpu.gemm_efficiency_fp8));
    if (c->gpu.sms > 0) bad |= json_object_set_new(g, "sms", json_integer(c->gpu.sms));
    if (c->gpu.gemm_half_dim > 0) bad |= json_object_set_new(g, "gemm_half_dim", json_real(c->gpu.gemm_half_dim));
    bad |= json_object_set(o, "gpu", g);
    bad |= json_object_set_new(intra, "bandwidth_gb_per_s", json_real(c->intra_bytes_per_s / 1e9));
    bad |= json_object_set_new(intra, "latency_us", json_real(c->intra_latency_s * 1e6));
    bad |= json_object_set(o, "intra_node", intra);
    /* only when set: a cluster whose domain is its host node writes (and hashes) as before */
    if (c->domain_gpus > 0 || c->fabric != ST_FABRIC_NVSWITCH || c->sharp_domain) {
        json_t *su = json_object();
        bad |= !su || json_object_set_new(su, "gpus", json_integer(st_cluster_domain(c)));
        bad |= !su || json_object_set_new(su, "fabric", json_string(st_fabric_name(c->fabric)));
        if (c->sharp_domain) bad |= !su || json_object_set_new(su, "sharp", json_true());
        bad |= json_object_set_new(o, "scale_up", su);
    }
    bad |= json_object_set_new(inter, "nics_per_node", json_integer(c->nics_per_node));
    bad |= json_object_set_new(inter, "nic_gbit_per_s", json_real(c->nic_bytes_per_s * 8 / 1e9));
    bad |= json_object_set_new(inter, "latency_us", json_real(c->inter_latency_s * 1e6));
    bad |= json_object_set_new(inter, "oversubscription", json_real(c->oversubscription));
    /* only when set: a cluster without rails or tiers writes (and hashes) as before */
    if (c->rail_optimized) bad |= json_object_set_new(inter, "rail_optimized", json_true());
    if (c->sharp_inter) bad |= json_object_set_new(inter, "sharp", json_true());
    for (int t = 0; t < 2; t++) {
        int64_t tn = t ? c->pod_nodes : c->leaf_nodes;
        if (!tn) continue;
        json_t *tj = json_object();
        bad |= !tj || json_object_set_new(tj, "nodes", json_integer(tn));
        double over = t ? c->pod_oversubscription : c->leaf_oversubscription;
        bad |= !tj || json_object_set_new(tj, "oversubscription", json_real(over));
        bad |= json_object_set_new(inter, t ? "spine" : "leaf", tj);
    }
    bad |= json_object_set(o, "inter_node", inter);
    bad |= json_object_set_new(host, "memory_gib", json_real(c->host_memory_bytes / GIB));
    bad |= json_object_set_new(host, "pcie_gb_per_s", json_real(c->pcie_bytes_per_s / 1e9));
    bad |= json_object_set(o, "host", host);
    /* only when set: a cluster that keeps the defaults writes (and hashes) as before */
    if (json_object_size(fw)) bad |= json_object_set(o, "framework", fw);
    if (lay) { /* a layout of several profiles: its instances, as given */
        json_t *m = json_object(), *arr = json_array();
        char text[sizeof mig.layout];
        memcpy(text, mig.layout, sizeof text);
        for (char *save = NULL, *tok = strtok_r(text, "+", &save); tok && arr; tok = strtok_r(NULL, "+", &save))
            bad |= json_array_append_new(arr, json_string(tok));
        if (!m) json_decref(arr);
        bad |= !m || !arr || json_object_set_new(m, "layout", arr);
        bad |= json_object_set_new(o, "mig", m);
    } else if (mig.per_gpu > 0) {
        json_t *m = json_object();
        bad |= !m || json_object_set_new(m, "profile", json_string(mig.profile));
        bad |= !m || json_object_set_new(m, "per_gpu", json_integer(mig.per_gpu));
        bad |= json_object_set_new(o, "mig", m);
    }
out:
    json_decref(fw);
    json_decref(g);
    json_decref(peak);
    json_decref(intra);
    json_decref(inter);
    json_decref(host);
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}
