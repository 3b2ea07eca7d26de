/* groups.c: clusters made of node groups of different GPU types (issue 19): where a rank sits, and the
 * uniform cluster a set of ranks is priced on.
 *
 * Ranks fill the groups in the order the cluster JSON lists them, node by node, as torchrun or mpirun
 * place them from a hostfile that lists the groups' hosts in that order; inside a group, as in a
 * uniform cluster (Megatron-LM's rank order tp-cp-dp-pp then puts a pipeline stage's ranks together).
 *
 * The view of ranks that span groups (st_cluster_view) takes the slowest of everything they use: a
 * tensor- or data-parallel group moves in lockstep, so its slowest GPU sets its compute (Whale, Jia
 * et al. ATC'22, Sec. 3.3: "the slowest device determines the synchronous step") and its slowest link
 * its collectives (a ring or tree collective runs at its slowest hop). The view's nodes are those of
 * the fewest GPUs; a GPU's share of its node's NICs is each group's NIC bandwidth per GPU (NICs x rate
 * / GPUs per node), the least of them setting the ring, so the view takes the slowest group's NICs
 * scaled to its node (at least one, its rate making up a fraction). The fabric between groups is
 * described per node (what a node's NICs reach of the other group through the spine): a node's GPUs
 * share it, so a GPU's share is fabric / GPUs of the largest node, and a NIC across it runs at most
 * at that share of a view node / its NICs, with the fabric's latency added to the groups' and the
 * larger oversubscription.
 *
 * A group may be MIG slices (src/core/mig.c): its ranks are slices, its domain its nodes' host memory;
 * the view of that group alone is the sliced uniform cluster st_cluster_set_mig makes, so a stage or
 * replica on it is priced exactly as a MIG cluster is.
 *
 * A MIG layout of several profiles (st_cluster_set_mig_layout, src/core/mig.c) is one group per profile
 * on the same host nodes, so ranks across its groups are slices of the same GPUs and nodes: their
 * view is the sliced node itself, its slices of the groups spanned (the slowest of them), its domain the
 * host memory at each slice's share of its PCIe link, and the share of the host's NICs and memory those
 * slices have; the fabric between groups is not crossed. */
#include "src/core/core.h"

#include <string.h>

static int64_t group_gpus(const st_node_group *g) { return g->nodes * g->gpus_per_node; }

static int64_t group_domain(const st_node_group *g) { return g->domain_gpus > 0 ? g->domain_gpus : g->gpus_per_node; }

static int rank_group(const st_cluster *c, int64_t rank, int64_t *first) {
    int64_t at = 0;
    for (int g = 0; g < c->ngroups; g++) {
        int64_t n = group_gpus(&c->groups[g]);
        if (rank < at + n || g == c->ngroups - 1) {
            if (first) *first = at;
            return g;
        }
        at += n;
    }
    if (first) *first = 0;
    return 0;
}

int st_cluster_rank_group(const st_cluster *c, int64_t rank) { return c->ngroups > 0 ? rank_group(c, rank, NULL) : 0; }

void st_cluster_rank_place(const st_cluster *c, int64_t rank, st_rank_place *out) {
    memset(out, 0, sizeof *out);
    if (c->ngroups == 0) {
        out->node = rank / c->gpus_per_node;
        out->gpu = rank % c->gpus_per_node;
        return;
    }
    int64_t first;
    int g = rank_group(c, rank, &first);
    int64_t nodes_before = 0;
    for (int i = 0; i < g; i++) nodes_before += c->groups[i].nodes;
    out->group = g;
    out->node = nodes_before + (rank - first) / c->groups[g].gpus_per_node;
    out->gpu = (rank - first) % c->groups[g].gpus_per_node;
}

/* The uniform cluster of one group (the cluster's own name, reserved memory and source). */
static void group_cluster(const st_cluster *c, const st_node_group *g, st_cluster *out) {
    memset(out, 0, sizeof *out);
    memcpy(out->name, c->name, sizeof out->name);
    memcpy(out->source, c->source, sizeof out->source);
    out->reserved_bytes = c->reserved_bytes; /* the stack's settings are cluster-wide */
    out->launch_overhead_s = c->launch_overhead_s;
    out->host_s_per_kernel = c->host_s_per_kernel;
    out->gpu = g->gpu;
    out->nodes = g->nodes;
    out->gpus_per_node = g->gpus_per_node;
    out->domain_gpus = g->domain_gpus;
    out->fabric = g->fabric;
    out->intra_bytes_per_s = g->intra_bytes_per_s;
    out->intra_latency_s = g->intra_latency_s;
    out->nics_per_node = g->nics_per_node;
    out->nic_bytes_per_s = g->nic_bytes_per_s;
    out->inter_latency_s = g->inter_latency_s;
    out->oversubscription = g->oversubscription;
    out->host_memory_bytes = g->host_memory_bytes;
    out->pcie_bytes_per_s = g->pcie_bytes_per_s;
    out->mig = g->mig;
}

/* Ranks across groups of which some are MIG slices: their links into the domain are the slices' share
 * of PCIe (the least intra rate, taken below), priced as a sliced node's are (cost/comm.c: no NVLink
 * efficiency on host-memory copies), with the layout of the most slices per GPU, whose slices share
 * their PCIe link the most. */
static void span_mig(const st_cluster *c, int g0, int g1, st_cluster *out) {
    for (int g = g0; g <= g1; g++)
        if (c->groups[g].mig.per_gpu > out->mig.per_gpu) out->mig = c->groups[g].mig;
}

static double dmin(double a, double b) { return a < b ? a : b; }
static double dmax(double a, double b) { return a > b ? a : b; }

/* The slowest GPU of groups g0..g1: the one with the least large-GEMM bf16 rate, with every other
 * number the least of theirs (a dtype any of them lacks is lacked). */
static void slowest_gpu(const st_cluster *c, int g0, int g1, st_gpu *out) {
    int slow = g0;
    for (int g = g0 + 1; g <= g1; g++) {
        const st_gpu *a = &c->groups[g].gpu, *b = &c->groups[slow].gpu;
        if (a->peak_flops[ST_DT_BF16] * a->gemm_efficiency < b->peak_flops[ST_DT_BF16] * b->gemm_efficiency) slow = g;
    }
    *out = c->groups[slow].gpu;
    for (int g = g0; g <= g1; g++) {
        const st_gpu *a = &c->groups[g].gpu;
        out->memory_bytes = dmin(out->memory_bytes, a->memory_bytes);
        out->hbm_bytes_per_s = dmin(out->hbm_bytes_per_s, a->hbm_bytes_per_s);
        for (int d = 0; d < ST_DT_COUNT; d++) out->peak_flops[d] = dmin(out->peak_flops[d], a->peak_flops[d]);
        if (a->sms > 0 && (out->sms == 0 || a->sms < out->sms)) out->sms = a->sms;
    }
}

/* Ranks across groups g0..g1 of one MIG layout: the host nodes with the spanned profiles' slices of each GPU */
static void layout_view(const st_cluster *c, int g0, int g1, st_cluster *out) {
    const st_cluster_mig *m = &c->groups[g0].mig;
    int per = 0;
    for (int g = g0; g <= g1; g++) per += c->groups[g].mig.per_gpu;
    slowest_gpu(c, g0, g1, &out->gpu);
    out->gpus_per_node = m->gpus_per_node * per;
    out->nic_bytes_per_s = m->nic_bytes_per_s * per / m->slices_per_gpu;
    out->host_memory_bytes = m->host_memory_bytes * per / m->slices_per_gpu;
    out->mig.per_gpu = per; /* the slices of a GPU whose traffic shares its PCIe link in this view */
}

void st_cluster_view(const st_cluster *c, int64_t first, int64_t n, st_cluster *out) {
    if (c->ngroups == 0) {
        *out = *c;
        return;
    }
    int g0 = rank_group(c, first, NULL), g1 = rank_group(c, first + (n > 0 ? n : 1) - 1, NULL);
    group_cluster(c, &c->groups[g0], out);
    if (g0 == g1) return;
    if (st_cluster_mig_layout(c)) {
        layout_view(c, g0, g1, out);
        return;
    }
    int64_t gpus = 0, most = 0;
    int nic_group = g0; /* the least NIC bandwidth per GPU */
    slowest_gpu(c, g0, g1, &out->gpu);
    span_mig(c, g0, g1, out);
    for (int g = g0; g <= g1; g++) {
        const st_node_group *x = &c->groups[g], *b = &c->groups[nic_group];
        gpus += group_gpus(x);
        if (x->gpus_per_node > most) most = x->gpus_per_node;
        if ((double)x->nics_per_node * x->nic_bytes_per_s / (double)x->gpus_per_node <
            (double)b->nics_per_node * b->nic_bytes_per_s / (double)b->gpus_per_node)
            nic_group = g;
        if (x->gpus_per_node < out->gpus_per_node) out->gpus_per_node = x->gpus_per_node;
        if (group_domain(x) < st_cluster_domain(out)) {
            out->domain_gpus = x->domain_gpus > 0 ? x->domain_gpus : 0;
            out->fabric = x->fabric;
        }
        out->intra_bytes_per_s = dmin(out->intra_bytes_per_s, x->intra_bytes_per_s);
        out->intra_latency_s = dmax(out->intra_latency_s, x->intra_latency_s);
        out->inter_latency_s = dmax(out->inter_latency_s, x->inter_latency_s);
        out->oversubscription = dmax(out->oversubscription, x->oversubscription);
        out->host_memory_bytes = dmin(out->host_memory_bytes, x->host_memory_bytes);
        out->pcie_bytes_per_s = dmin(out->pcie_bytes_per_s, x->pcie_bytes_per_s);
    }
    if (out->domain_gpus > 0 && out->domain_gpus <= out->gpus_per_node) out->domain_gpus = 0;
    /* the slowest group's NICs on a view node: NICs x rate / GPUs per node stays its own */
    const st_node_group *b = &c->groups[nic_group];
    double nics = (double)b->nics_per_node * (double)out->gpus_per_node / (double)b->gpus_per_node;
    out->nics_per_node = b->nics_per_node == 0 ? 0 : nics >= 1 ? (int64_t)nics : 1;
    out->nic_bytes_per_s = b->nic_bytes_per_s;
    if (out->nics_per_node > 0 && nics != (double)out->nics_per_node)
        out->nic_bytes_per_s = b->nic_bytes_per_s * nics / (double)out->nics_per_node;
    /* the fabric between the groups: a view node's share of it per NIC, its latency on top */
    if (out->nics_per_node > 0) {
        double node = most == out->gpus_per_node ? c->xgroup_bytes_per_s
                                                 : c->xgroup_bytes_per_s * (double)out->gpus_per_node / (double)most;
        out->nic_bytes_per_s = dmin(out->nic_bytes_per_s, node / (double)out->nics_per_node);
    }
    out->inter_latency_s += c->xgroup_latency_s;
    out->oversubscription = dmax(out->oversubscription, c->xgroup_oversubscription);
    out->nodes = gpus / out->gpus_per_node; /* in nodes of the smallest size: the GPUs stay the GPUs */
}

int st__cluster_groups_finalize(st_cluster *c, const char *file, st_error *err) {
#define BAD(key, ...) return st_error_set(err, ST_EINVAL, file, key, __VA_ARGS__)
    char key[64];
    if (c->ngroups < 1 || c->ngroups > ST_MAX_GROUPS) BAD("groups", "must list 1 to %d node groups", ST_MAX_GROUPS);
    int64_t gpus = 0;
    for (int g = 0; g < c->ngroups; g++) {
        const st_node_group *x = &c->groups[g];
        if (x->nodes < 1) BAD((snprintf(key, sizeof key, "groups[%d].nodes", g), key), "must be at least 1");
        if (x->gpus_per_node < 1 || x->gpus_per_node > ST_MAX_DOMAIN_GPUS)
            BAD((snprintf(key, sizeof key, "groups[%d].gpus_per_node", g), key), "must be 1..%d", ST_MAX_DOMAIN_GPUS);
        gpus += group_gpus(x);
        if (gpus > ST_MAX_GPUS) BAD((snprintf(key, sizeof key, "groups[%d].nodes", g), key),
                                    "the groups' GPUs exceed the limit of %d", ST_MAX_GPUS);
        /* a tensor-parallel group or a pipeline stage sized to one group's domain must fit the
         * other's domains whole: the sizes divide one another */
        for (int h = 0; h < g; h++) {
            int64_t a = group_domain(x), b = group_domain(&c->groups[h]);
            int64_t lo = a < b ? a : b, hi = a < b ? b : a;
            if (hi % lo)
                BAD((snprintf(key, sizeof key, x->domain_gpus > 0 ? "groups[%d].scale_up.gpus" : "groups[%d].gpus_per_node",
                              g), key),
                    "a scale-up domain of %lld GPUs and group %d's of %lld do not divide one another", (long long)a, h,
                    (long long)b);
            if (x->gpus_per_node % c->groups[h].gpus_per_node && c->groups[h].gpus_per_node % x->gpus_per_node)
                BAD((snprintf(key, sizeof key, "groups[%d].gpus_per_node", g), key),
                    "%lld GPUs per node and group %d's %lld do not divide one another", (long long)x->gpus_per_node, h,
                    (long long)c->groups[h].gpus_per_node);
        }
    }
    if (c->ngroups > 1 && !(c->xgroup_bytes_per_s > 0))
        BAD("between_groups.bandwidth_gb_per_s", "node groups need the fabric between them (> 0)");
    if (c->ngroups > 1 && !(c->xgroup_oversubscription >= 1))
        BAD("between_groups.oversubscription", "must be >= 1");
    if (!(c->xgroup_latency_s >= 0)) BAD("between_groups.latency_us", "must be >= 0");
    /* the top-level fields: the view of all GPUs, for what prices one GPU type (the groups stay) */
    st_cluster v;
    st_cluster_view(c, 0, gpus, &v);
    memcpy(v.groups, c->groups, sizeof v.groups);
    v.ngroups = c->ngroups;
    v.xgroup_bytes_per_s = c->xgroup_bytes_per_s;
    v.xgroup_latency_s = c->xgroup_latency_s;
    v.xgroup_oversubscription = c->xgroup_oversubscription;
    *c = v;
    return 0;
#undef BAD
}

void st_cluster_describe(const st_cluster *c, char *buf, size_t n) {
    if (c->ngroups == 0) {
        snprintf(buf, n, "%lld x %lld %s", (long long)c->nodes, (long long)c->gpus_per_node, c->gpu.name);
        return;
    }
    size_t w = 0;
    buf[0] = '\0';
    for (int g = 0; g < c->ngroups && w < n; g++) {
        const st_node_group *x = &c->groups[g];
        int k = snprintf(buf + w, n - w, "%s%lld x %lld %s (%s)", g ? " + " : "", (long long)x->nodes,
                         (long long)x->gpus_per_node, x->gpu.name, x->name);
        if (k < 0) break;
        w += (size_t)k;
    }
}
