/* test_mig.c: MIG slices as devices (src/core/mig.c): the profile table against the MIG user
 * guide's limits, a slice's device, layouts that over-subscribe a GPU, the host-memory collectives
 * between slices in closed form (cost/comm.c) and as shared links in the simulator
 * (src/lower/lower_net.c), the CLUSTER:mig=PROFILE variants `compare` takes, and layouts of several
 * profiles on one GPU (placement rules, node groups, a 4g and a 3g slice balanced 4:3). */
#include "src/io/jsonutil.h"
#include "src/strata.h"
#include "suites.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define REL(a, b, r) ck_assert_double_eq_tol((a), (b), fabs((double)(b)) * (r) + 1e-15)
#define GIB 1073741824.0
#ifndef SRCDIR
#define SRCDIR "."
#endif

/* Every profile fits its GPU, and as many of it as fit is the guide's "Number of Instances
 * Available" (A100-40GB: 1g.5gb 7, 1g.10gb 4, 2g.10gb 3, 3g.20gb 2, 4g.20gb 1, 7g.40gb 1). */
START_TEST(test_profiles_fit_their_gpu) {
    size_t n;
    const st_mig_profile *p = st_mig_profiles(&n);
    ck_assert_uint_eq(n, 24);
    for (size_t i = 0; i < n; i++) {
        st_gpu g;
        ck_assert_int_eq(st_gpu_preset(p[i].gpu, &g), 0);
        ck_assert(p[i].compute_slices >= 1 && p[i].compute_slices <= ST_MIG_COMPUTE_SLICES);
        ck_assert(p[i].memory_slices >= 1 && p[i].memory_slices <= ST_MIG_MEMORY_SLICES);
        ck_assert_int_le(p[i].sms, g.sms);
        ck_assert(p[i].memory_gib * GIB <= g.memory_bytes * p[i].memory_slices / ST_MIG_MEMORY_SLICES + 1);
        ck_assert_ptr_eq(st_mig_profile_find(p[i].gpu, p[i].name), &p[i]);
    }
    static const struct {
        const char *name;
        int most;
    } want[] = {{"1g.5gb", 7}, {"1g.10gb", 4}, {"2g.10gb", 3}, {"3g.20gb", 2}, {"4g.20gb", 1}, {"7g.40gb", 1}};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        ck_assert_int_eq(st_mig_max_per_gpu(st_mig_profile_find("a100-sxm-40g", want[i].name)), want[i].most);
    ck_assert_ptr_null(st_mig_profile_find("a100-sxm-80g", "1g.5gb"));
    ck_assert_ptr_null(st_mig_profile_find("l40s", "1g.10gb"));
}
END_TEST

/* A slice: peaks by SM share (1g of A100: 14 of 108 SMs), HBM by memory-slice share (1 of 8), the
 * listed memory; 7g.40gb keeps all the bandwidth but only 98 of the 108 SMs. */
START_TEST(test_slice_device) {
    st_gpu a, s;
    ck_assert_int_eq(st_gpu_preset("a100-sxm-40g", &a), 0);
    st_gpu_mig_slice(&a, st_mig_profile_find("a100-sxm-40g", "1g.5gb"), &s);
    REL(s.peak_flops[ST_DT_BF16], 312e12 * 14 / 108, 1e-12);
    REL(s.peak_flops[ST_DT_FP32], 19.5e12 * 14 / 108, 1e-12);
    REL(s.hbm_bytes_per_s, 1555e9 / 8, 1e-12);
    REL(s.memory_bytes, 4.75 * GIB, 1e-12);
    ck_assert_int_eq(s.sms, 14);
    REL(s.gemm_efficiency, a.gemm_efficiency, 0);
    ck_assert_str_eq(s.name, "a100-sxm-40g/1g.5gb");
    st_gpu_mig_slice(&a, st_mig_profile_find("a100-sxm-40g", "7g.40gb"), &s);
    REL(s.peak_flops[ST_DT_BF16], 312e12 * 98 / 108, 1e-12);
    REL(s.hbm_bytes_per_s, 1555e9, 1e-12);
}
END_TEST

/* A DGX A100 cut into 7 x 1g.5gb per GPU: 56 devices, each with its share of its GPU's PCIe link;
 * "none" gives back the node as it was; over-subscription and unknown profiles name their key. */
START_TEST(test_layout) {
    st_cluster c, whole;
    st_error err;
    ck_assert_int_eq(st_cluster_preset("dgx-a100-40g", &whole), 0);
    c = whole;
    ck_assert_int_eq(st_cluster_set_mig(&c, "1g.5gb", 0, NULL, &err), 0);
    ck_assert_int_eq(c.mig.per_gpu, 7);
    ck_assert_int_eq(c.gpus_per_node, 56);
    ck_assert_int_eq(st_cluster_gpus(&c), 56);
    REL(c.pcie_bytes_per_s, 25e9 / 7, 1e-12);
    REL(c.intra_bytes_per_s, 25e9 / 7, 1e-12);
    REL(c.host_memory_bytes, whole.host_memory_bytes, 0);
    ck_assert_int_eq(c.fabric, ST_FABRIC_PCIE);
    ck_assert_int_eq(st_cluster_finalize(&c, NULL, &err), 0);
    /* a new layout replaces the old one, none restores the whole GPUs */
    ck_assert_int_eq(st_cluster_set_mig(&c, "3g.20gb", 2, NULL, &err), 0);
    ck_assert_int_eq(c.gpus_per_node, 16);
    REL(c.pcie_bytes_per_s, 25e9 / 2, 1e-12);
    ck_assert_int_eq(st_cluster_set_mig(&c, "none", 0, NULL, &err), 0);
    ck_assert_int_eq(c.gpus_per_node, 8);
    ck_assert_str_eq(c.gpu.name, "a100-sxm-40g");
    REL(c.intra_bytes_per_s, whole.intra_bytes_per_s, 0);
    REL(c.pcie_bytes_per_s, whole.pcie_bytes_per_s, 0);
    ck_assert_int_eq(c.mig.per_gpu, 0);
    /* 3 x 3g.20gb: 9 compute and 12 memory slices; 8 x 1g.5gb: 8 compute slices */
    ck_assert_int_eq(st_cluster_set_mig(&c, "3g.20gb", 3, NULL, &err), ST_EINVAL);
    ck_assert_str_eq(err.key, "mig.per_gpu");
    ck_assert_int_eq(st_cluster_set_mig(&c, "1g.5gb", 8, NULL, &err), ST_EINVAL);
    ck_assert_str_eq(err.key, "mig.per_gpu");
    ck_assert_int_eq(st_cluster_set_mig(&c, "1g.20gb", 1, NULL, &err), ST_EINVAL);
    ck_assert_str_eq(err.key, "mig.profile");
    ck_assert(strstr(err.text, "1g.5gb") != NULL); /* the GPU's profiles are listed */
    ck_assert_int_eq(st_cluster_preset("l40s-pcie-8", &c), 0);
    ck_assert_int_eq(st_cluster_set_mig(&c, "1g.10gb", 1, NULL, &err), ST_EINVAL);
    ck_assert_str_eq(err.key, "mig.profile");
    /* a GPU without an SM count cannot be sliced by SM share */
    ck_assert_int_eq(st_cluster_preset("dgx-h100", &c), 0);
    c.gpu.sms = 0;
    ck_assert_int_eq(st_cluster_set_mig(&c, "1g.10gb", 7, NULL, &err), ST_EINVAL);
    ck_assert_str_eq(err.key, "gpu.sms");
}
END_TEST

START_TEST(test_spec_parse) {
    char prof[16];
    int per;
    ck_assert_int_eq(st_mig_spec_parse("1g.5gb", prof, sizeof prof, &per), 0);
    ck_assert_str_eq(prof, "1g.5gb");
    ck_assert_int_eq(per, 0);
    ck_assert_int_eq(st_mig_spec_parse("3g.20gbx2", prof, sizeof prof, &per), 0);
    ck_assert_str_eq(prof, "3g.20gb");
    ck_assert_int_eq(per, 2);
    ck_assert_int_eq(st_mig_spec_parse("1g.5gbx", prof, sizeof prof, &per), ST_EINVAL);
    ck_assert_int_eq(st_mig_spec_parse("1g.5gbx9", prof, sizeof prof, &per), ST_EINVAL);
    ck_assert_int_eq(st_mig_spec_parse("x2", prof, sizeof prof, &per), ST_EINVAL);
    ck_assert_int_eq(st_mig_spec_parse("", prof, sizeof prof, &per), ST_EINVAL);
    ck_assert_int_eq(st_mig_spec_parse("an-overly-long-profile-name", prof, sizeof prof, &per), ST_EINVAL);
}
END_TEST

/* CLUSTER:mig=SPEC on a preset: the variant, named apart; a bad spec names "mig". */
START_TEST(test_resolve_suffix) {
    st_cluster c;
    st_error err;
    ck_assert_int_eq(st_cluster_resolve("dgx-a100-40g:mig=1g.5gb", 0, &c, &err), 0);
    ck_assert_str_eq(c.name, "dgx-a100-40g+1g.5gb");
    ck_assert_int_eq(st_cluster_gpus(&c), 56);
    ck_assert_int_eq(st_cluster_resolve("dgx-a100-40g:mig=1g.5gb", 7, &c, &err), 0);
    ck_assert_int_eq(st_cluster_gpus(&c), 7);
    ck_assert_int_eq(st_cluster_resolve("dgx-a100-40g:mig=3g.20gbx1", 0, &c, &err), 0);
    ck_assert_str_eq(c.name, "dgx-a100-40g+3g.20gbx1");
    ck_assert_int_eq(st_cluster_gpus(&c), 8);
    char path[512];
    snprintf(path, sizeof path, "%s/examples/a100-mig.json:mig=none", SRCDIR);
    ck_assert_msg(st_cluster_resolve(path, 0, &c, &err) == 0, "%s", err.text);
    ck_assert_str_eq(c.name, "a100-mig+whole");
    ck_assert_int_eq(c.mig.per_gpu, 0);
    ck_assert_int_eq(st_cluster_resolve("dgx-a100-40g:mig=9g.80gb", 0, &c, &err), ST_EINVAL);
    ck_assert_str_eq(err.key, "mig.profile");
    ck_assert_int_eq(st_cluster_resolve("dgx-a100-40g:mig=1g.5gbx0", 0, &c, &err), ST_EINVAL);
    ck_assert_str_eq(err.key, "mig");
}
END_TEST

/* The data-parallel group of a plan of dp ranks alone on c */
static void dp_group(const st_cluster *c, int dp, st_group *g) {
    st_plan p;
    st_plan_defaults(&p);
    p.tp = 1, p.cp = 1, p.dp = dp, p.pp = 1;
    st_cost_group(c, &p, ST_GRP_DP, g);
}

/* Seven 1g slices of one A100, no P2P: a ring all-reduce of S bytes moves 2(n-1)/n x S per rank
 * through the host memory at each rank's share of the GPU's PCIe link (25 GB/s / 7):
 * 2(n-1)/n x S / (pcie / 7) + 2(n-1) x latency; and the whole GPU does it over NVLink instead. */
START_TEST(test_allreduce_through_host_memory) {
    st_cluster c;
    st_error err;
    ck_assert_int_eq(st_cluster_resolve("dgx-a100-40g:mig=1g.5gb", 7, &c, &err), 0);
    st_group g;
    dp_group(&c, 7, &g);
    ck_assert_int_eq(g.n, 7);
    ck_assert_int_eq(g.nodes, 1);
    double S = 1e9, n = 7, pcie = 25e9, lat = c.intra_latency_s;
    double want = 2 * (n - 1) / n * S / (pcie / 7) + 2 * (n - 1) * lat;
    REL(st_cost_collective(&c, NULL, ST_COLL_ALLREDUCE, &g, S), want, 1e-12);
    /* = 2(n-1) S / pcie: the 7 ranks' traffic all crosses the one link */
    REL(want - 2 * (n - 1) * lat, 2 * (n - 1) * S / pcie, 1e-12);
    /* the simulator's port is the whole link, shared by the GPU's 7 slices */
    st_net net;
    st_cost_net(&c, &net);
    ck_assert_int_eq(net.gpus_per_port, 7);
    REL(net.nvlink_bytes_per_s, pcie, 1e-12);
    /* whole GPUs are untouched: one port each at the NVLink rate */
    st_cluster w;
    ck_assert_int_eq(st_cluster_resolve("dgx-a100-40g", 8, &w, &err), 0);
    st_cost_net(&w, &net);
    ck_assert_int_eq(net.gpus_per_port, 1);
    ck_assert(st_cost_domain_bytes_per_s(&w, 8) > 10 * st_cost_domain_bytes_per_s(&c, 7));
}
END_TEST

/* GPT-2 (124M) data-parallel on 56 slices of a DGX A100: the gradient all-reduce crosses each GPU's
 * PCIe link once per slice (8 links, 7 ranks each, at the link's full rate), and the simulated
 * iteration is the estimate's (the links fill exactly, as the estimate assumes). */
START_TEST(test_sim_shares_the_pcie_link) {
    st_model m;
    st_cluster c;
    st_error err;
    ck_assert_int_eq(st_model_load(SRCDIR "/tests/data/io/hf/gpt2.json", &m, &err), 0);
    ck_assert_int_eq(st_cluster_resolve("dgx-a100-40g:mig=1g.5gb", 0, &c, &err), 0);
    st_plan p;
    st_plan_defaults(&p);
    ck_assert_int_eq(st_plan_parse_spec("tp=1,pp=1,dp=56,mbs=1,gbs=112,zero=1,recompute=selective", &p, &err), 0);
    ck_assert_msg(st_plan_finalize(&p, &m, &c, 0, NULL, &err) == 0, "%s", err.text);
    st_cost_ctx *ctx = st_cost_ctx_new(&m, &c, NULL);
    st_estimate e;
    ck_assert_int_eq(st_cost_estimate(ctx, &p, &e), 0);
    ck_assert(e.fits);
    st_lower_opts o;
    st_lower_opts_init(&o);
    o.every_rank = 1;
    st_lowered l;
    ck_assert_msg(st_lower_plan(ctx, &p, &o, &l, &err) == 0, "%s", err.text);
    int pcie = 0;
    for (int k = 0; k < l.nlinks; k++) {
        if (l.links[k].kind != ST_LINK_NVLINK) continue;
        pcie++;
        ck_assert(!strncmp(l.links[k].name, "pcie ", 5));
        REL(l.links[k].bytes_per_s, 25e9, 1e-12);
    }
    ck_assert_int_eq(pcie, 16); /* 8 GPUs, out and in */
    int seen = 0;
    for (int r = 0; r < l.nroutes; r++) {
        const st_route *rt = &l.routes[r];
        if (rt->n != 16) continue;
        seen = 1;
        REL(rt->bytes_per_s, 25e9 / 7, 1e-12);
        for (int h = rt->first; h < rt->first + rt->n; h++) ck_assert_int_eq(l.hops[h].count, 7);
    }
    ck_assert(seen);
    st_sim_result r;
    ck_assert_msg(st_sim_run(&l, 0, NULL, &r, &err) == 0, "%s", err.text);
    REL(r.iteration_time_s, e.iteration_time_s, 1e-9);
    st_sim_result_destroy(&r);
    st_lowered_destroy(&l);
    st_cost_ctx_free(ctx);
}
END_TEST

/* One 7g slice or seven 1g slices of an A100 for GPT-2: the same 98 SMs, but the seven pay their
 * gradient all-reduce through host memory; the 7g slice has no all-reduce at all. */
START_TEST(test_one_7g_or_seven_1g) {
    st_model m;
    st_error err;
    ck_assert_int_eq(st_model_load(SRCDIR "/tests/data/io/hf/gpt2.json", &m, &err), 0);
    const char *cl[2] = {"dgx-a100-40g:mig=7g.40gb", "dgx-a100-40g:mig=1g.5gb"};
    const char *spec[2] = {"tp=1,pp=1,dp=1,mbs=4,gbs=56,zero=0",
                           "tp=1,pp=1,dp=7,mbs=1,gbs=56,zero=1,recompute=selective"};
    int64_t gpus[2] = {1, 7};
    st_estimate e[2];
    for (int i = 0; i < 2; i++) {
        st_cluster c;
        st_plan p;
        ck_assert_int_eq(st_cluster_resolve(cl[i], gpus[i], &c, &err), 0);
        st_plan_defaults(&p);
        ck_assert_int_eq(st_plan_parse_spec(spec[i], &p, &err), 0);
        ck_assert_msg(st_plan_finalize(&p, &m, &c, 0, NULL, &err) == 0, "%s", err.text);
        st_cost_ctx *ctx = st_cost_ctx_new(&m, &c, NULL);
        ck_assert_int_eq(st_cost_estimate(ctx, &p, &e[i]), 0);
        ck_assert(e[i].fits);
        st_cost_ctx_free(ctx);
    }
    ck_assert(e[0].breakdown.dp_comm_s == 0);
    ck_assert(e[1].breakdown.dp_comm_s > 0);
    ck_assert(e[0].iteration_time_s < e[1].iteration_time_s);
}
END_TEST

/* H200 141GB: the guide's instance counts (1g.18gb 7, 1g.35gb 4, 2g.35gb 3, 3g.71gb 2, 4g.71gb 1,
 * 7g.141gb 1); each profile's SMs those of the H100 profile with the same compute and memory slices
 * (one GH100 die) and its memory the H100 listing's scaled by the boards' (141 GB over 80 GiB), to
 * the table's 0.01 GiB; 1g.18gb as the one published -lgip line has it (16 SMs, 16.00 GiB). A DGX
 * H200 as 7 x 1g.18gb: 56 slices of 16/132 of the H200's peak and 1/8 of its 4.8 TB/s. */
START_TEST(test_h200_profiles) {
    static const struct {
        const char *name;
        int most;
    } want[] = {{"1g.18gb", 7}, {"1g.35gb", 4}, {"2g.35gb", 3}, {"3g.71gb", 2}, {"4g.71gb", 1}, {"7g.141gb", 1}};
    size_t n;
    const st_mig_profile *all = st_mig_profiles(&n);
    st_gpu h200;
    ck_assert_int_eq(st_gpu_preset("h200-sxm-141g", &h200), 0);
    int seen = 0;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(all[i].gpu, "h200-sxm-141g")) continue;
        seen++;
        const st_mig_profile *h = NULL;
        for (size_t k = 0; k < n; k++)
            if (!strcmp(all[k].gpu, "h100-sxm-80g") && all[k].compute_slices == all[i].compute_slices &&
                all[k].memory_slices == all[i].memory_slices)
                h = &all[k];
        ck_assert_ptr_nonnull(h);
        ck_assert_int_eq(all[i].sms, h->sms);
        ck_assert_double_eq_tol(all[i].memory_gib, h->memory_gib * h200.memory_bytes / (80 * GIB), 0.005);
    }
    ck_assert_int_eq(seen, 6);
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        const st_mig_profile *p = st_mig_profile_find("h200-sxm-141g", want[i].name);
        ck_assert_ptr_nonnull(p);
        ck_assert_int_eq(st_mig_max_per_gpu(p), want[i].most);
    }
    const st_mig_profile *one = st_mig_profile_find("h200-sxm-141g", "1g.18gb");
    ck_assert_int_eq(one->sms, 16);
    REL(one->memory_gib, 16.00, 0);
    st_cluster c;
    st_error err;
    ck_assert_int_eq(st_cluster_resolve("dgx-h200:mig=1g.18gb", 0, &c, &err), 0);
    ck_assert_int_eq(st_cluster_gpus(&c), 56);
    REL(c.gpu.peak_flops[ST_DT_BF16], h200.peak_flops[ST_DT_BF16] * 16 / 132, 1e-12);
    REL(c.gpu.hbm_bytes_per_s, 4800e9 / 8, 1e-12);
    REL(c.gpu.memory_bytes, 16.00 * GIB, 1e-12);
    ck_assert_int_eq(st_cluster_resolve("dgx-h200:mig=1g.10gb", 0, &c, &err), ST_EINVAL);
    ck_assert_str_eq(err.key, "mig.profile");
    ck_assert(strstr(err.text, "7g.141gb") != NULL);
}
END_TEST

/* ---- MIG inside node groups */

/* Half a DGX A100 80GB (4 GPUs) cut into 2 x 3g.40gb each (8 slices), beside a DGX H100 (8 GPUs);
 * `uniform` (when given): the sliced A100 node alone, as a uniform MIG cluster. */
static void mig_beside_h100(st_cluster *c, st_cluster *uniform) {
    st_cluster a, h;
    st_error err;
    ck_assert_int_eq(st_cluster_resolve("dgx-a100-80g", 4, &a, &err), 0);
    ck_assert_int_eq(st_cluster_set_mig(&a, "3g.40gb", 2, NULL, &err), 0);
    ck_assert_int_eq(st_cluster_finalize(&a, NULL, &err), 0);
    ck_assert_int_eq(st_cluster_preset("dgx-h100", &h), 0);
    if (uniform) *uniform = a;
    memset(c, 0, sizeof *c);
    snprintf(c->name, sizeof c->name, "mig-h100");
    c->ngroups = 2;
    const st_cluster *src[2] = {&a, &h};
    for (int g = 0; g < 2; g++) {
        st_node_group *x = &c->groups[g];
        const st_cluster *u = src[g];
        snprintf(x->name, sizeof x->name, "%s", g ? "h100" : "a100-mig");
        x->gpu = u->gpu;
        x->nodes = 1, x->gpus_per_node = st_cluster_gpus(u), x->domain_gpus = u->domain_gpus, x->fabric = u->fabric;
        x->intra_bytes_per_s = u->intra_bytes_per_s, x->intra_latency_s = u->intra_latency_s;
        x->nics_per_node = u->nics_per_node, x->nic_bytes_per_s = u->nic_bytes_per_s;
        x->inter_latency_s = u->inter_latency_s, x->oversubscription = u->oversubscription;
        x->host_memory_bytes = u->host_memory_bytes, x->pcie_bytes_per_s = u->pcie_bytes_per_s;
        x->mig = u->mig;
    }
    c->xgroup_bytes_per_s = 200e9, c->xgroup_latency_s = 1e-6, c->xgroup_oversubscription = 1;
    ck_assert_int_eq(st_cluster_finalize(c, NULL, &err), 0);
}

/* `spec` for model m on mig_beside_h100 (c): the plan (p) and its context, new (free it) */
static st_cost_ctx *plan_on_slices(const st_model *m, const char *spec, st_cluster *c, st_plan *p) {
    st_error err;
    mig_beside_h100(c, NULL);
    st_plan_defaults(p);
    ck_assert_int_eq(st_plan_parse_spec(spec, p, &err), 0);
    ck_assert_msg(st_plan_finalize(p, m, c, 0, NULL, &err) == 0, "%s: %s", spec, err.text);
    st_cost_ctx *ctx = st_cost_ctx_new(m, c, NULL);
    ck_assert_ptr_nonnull(ctx);
    return ctx;
}

/* plan_on_slices for GPT-2 (124M), loaded into m */
static st_cost_ctx *gpt2_on_slices(const char *spec, st_model *m, st_cluster *c, st_plan *p) {
    st_error err;
    ck_assert_int_eq(st_model_load(SRCDIR "/tests/data/io/hf/gpt2.json", m, &err), 0);
    return plan_on_slices(m, spec, c, p);
}

/* A group of slices is priced as the uniform MIG cluster is: its view is the sliced node (a 3g.40gb
 * slice: 42 of 108 SMs, 4 of 8 memory slices, 39.25 GiB; each slice half its GPU's 25 GB/s PCIe
 * link), and a dp all-reduce of S over its 8 slices (4 GPUs, no P2P) moves 2(n-1)/n x S per rank at
 * pcie / 2: 2(n-1)/n x S / 12.5 GB/s + 2(n-1) x latency. Across the groups the slices' PCIe share is
 * the domain link, at its rate (no NVLink efficiency on host-memory copies). */
START_TEST(test_group_of_slices) {
    st_cluster c, u, v, x;
    mig_beside_h100(&c, &u);
    st_cluster_view(&c, 0, 8, &v);
    ck_assert_int_eq(v.mig.per_gpu, 2);
    ck_assert_str_eq(v.gpu.name, "a100-sxm-80g/3g.40gb");
    REL(v.gpu.peak_flops[ST_DT_BF16], 312e12 * 42 / 108, 1e-12);
    REL(v.gpu.hbm_bytes_per_s, u.gpu.hbm_bytes_per_s, 0);
    REL(v.gpu.memory_bytes, 39.25 * GIB, 1e-12);
    ck_assert_int_eq(v.gpus_per_node, 8);
    ck_assert_int_eq(v.fabric, ST_FABRIC_PCIE);
    REL(v.intra_bytes_per_s, 25e9 / 2, 1e-12);
    REL(v.pcie_bytes_per_s, 25e9 / 2, 1e-12);
    st_plan p;
    st_plan_defaults(&p);
    p.tp = 1, p.cp = 1, p.dp = 8, p.pp = 1;
    st_group g, gu;
    st_cost_group(&v, &p, ST_GRP_DP, &g);
    st_cost_group(&u, &p, ST_GRP_DP, &gu);
    double S = 1e9, n = 8;
    double want = 2 * (n - 1) / n * S / 12.5e9 + 2 * (n - 1) * v.intra_latency_s;
    REL(st_cost_collective(&v, NULL, ST_COLL_ALLREDUCE, &g, S), want, 1e-12);
    REL(st_cost_collective(&u, NULL, ST_COLL_ALLREDUCE, &gu, S), want, 1e-12);
    st_net net;
    st_cost_net(&v, &net);
    ck_assert_int_eq(net.gpus_per_port, 2);
    REL(net.nvlink_bytes_per_s, 25e9, 1e-12);
    /* the H100 group keeps its NVLink */
    st_cluster_view(&c, 8, 8, &v);
    ck_assert_int_eq(v.mig.per_gpu, 0);
    ck_assert_int_eq(v.fabric, ST_FABRIC_NVSWITCH);
    /* across both: the slice, the slices' PCIe share as the domain rate */
    st_cluster_view(&c, 0, 16, &x);
    ck_assert_int_eq(x.mig.per_gpu, 2);
    ck_assert_str_eq(x.gpu.name, "a100-sxm-80g/3g.40gb");
    REL(st_cost_domain_bytes_per_s(&x, 8), 25e9 / 2, 1e-12);
}
END_TEST

/* GPT-2 as two pipeline stages, stage 0 on the slices and stage 1 on the H100s: stage 0's chunk
 * costs on the group what it costs on the uniform MIG cluster; MFU counts each group's own peak
 * (8 slices at 42/108 of an A100, 8 H100s); balancing moves layers to the H100 stage; memory is
 * checked against each stage's own device (a plan that fits an H100 but not a 39.25 GiB slice does
 * not fit, at stage 0). */
START_TEST(test_group_of_slices_estimate) {
    st_model m;
    st_cluster c, u;
    st_error err;
    ck_assert_int_eq(st_model_load(SRCDIR "/tests/data/io/hf/gpt2.json", &m, &err), 0);
    mig_beside_h100(&c, &u);
    st_plan p;
    st_cost_ctx *ctx = plan_on_slices(&m, "tp=1,pp=2,dp=8,mbs=4,gbs=256,zero=1", &c, &p),
                *cu = st_cost_ctx_new(&m, &u, NULL);
    st_chunk_cost a, b;
    st_cost_chunk(st_cost_view(ctx, 0, 1), &p, 0, &a);
    st_cost_chunk(cu, &p, 0, &b);
    REL(a.fwd_s, b.fwd_s, 1e-12);
    REL(a.bwd_s, b.bwd_s, 1e-12);
    st_estimate e;
    ck_assert_int_eq(st_cost_estimate(ctx, &p, &e), 0);
    ck_assert(e.fits);
    st_gpu a100, h100;
    st_gpu_preset("a100-sxm-80g", &a100);
    st_gpu_preset("h100-sxm-80g", &h100);
    double peak = 8 * a100.peak_flops[ST_DT_BF16] * 42 / 108 + 8 * h100.peak_flops[ST_DT_BF16];
    REL(e.mfu, e.model_flops / e.iteration_time_s / peak, 1e-12);
    st_plan q = p;
    ck_assert_int_eq(st_search_balance(ctx, &q), 1);
    ck_assert_int_eq(q.nstage_layers, 2);
    ck_assert_int_lt(q.stage_layers[0], q.stage_layers[1]);
    st_estimate eq;
    ck_assert_int_eq(st_cost_estimate(ctx, &q, &eq), 0);
    ck_assert(eq.iteration_time_s < e.iteration_time_s);
    /* llama2-7b, zero 0, 4096 tokens: stage 0's 74.6 GiB fit an H100's 78 GiB but not a slice's 39.25 */
    ck_assert_int_eq(st_model_preset("llama2-7b", &m), 0);
    st_cost_ctx *c7 = st_cost_ctx_new(&m, &c, NULL);
    ck_assert_int_eq(st_plan_parse_spec("tp=1,pp=2,dp=8,mbs=1,gbs=64,zero=0,seq=4096", &p, &err), 0);
    ck_assert_msg(st_plan_finalize(&p, &m, &c, 0, NULL, &err) == 0, "%s", err.text);
    ck_assert_int_eq(st_cost_estimate(c7, &p, &e), 0);
    ck_assert(!e.fits);
    ck_assert_int_eq(e.peak_stage, 0);
    ck_assert(e.memory_peak_bytes > 39.25 * GIB && e.memory_peak_bytes < 78 * GIB);
    st_cost_ctx_free(c7);
    st_cost_ctx_free(cu);
    st_cost_ctx_free(ctx);
}
END_TEST

/* Every rank of the two-stage GPT-2 plan on its own device and links: the slices' domain ports are
 * their GPUs' PCIe links (4, out and in, at the link's 25 GB/s, each crossed by both of its slices in
 * stage 0's dp reduction at 12.5 GB/s), the H100s' their NVLink ports; no transfer alone outruns a
 * link, and the simulated iteration is within 10% of the estimate. */
START_TEST(test_group_of_slices_sim) {
    st_model m;
    st_cluster c;
    st_error err;
    st_plan p;
    st_cost_ctx *ctx = gpt2_on_slices("tp=1,pp=2,dp=8,mbs=4,gbs=256,zero=1", &m, &c, &p);
    st_estimate e;
    ck_assert_int_eq(st_cost_estimate(ctx, &p, &e), 0);
    st_lowered l;
    ck_assert_msg(st_lower_full(ctx, &p, &l, &err) == 0, "%s", err.text);
    int pcie = 0, nvlink = 0;
    for (int k = 0; k < l.nlinks; k++) {
        const st_link *lk = &l.links[k];
        if (lk->kind != ST_LINK_NVLINK) continue;
        if (lk->index < 8) {
            pcie++;
            ck_assert_msg(!strncmp(lk->name, "pcie ", 5) && lk->index % 2 == 0, "%s", lk->name);
            REL(lk->bytes_per_s, 25e9, 1e-12);
        } else {
            nvlink++;
            ck_assert_msg(!strncmp(lk->name, "nvlink ", 7), "%s", lk->name);
            ck_assert(lk->bytes_per_s > 100e9);
        }
    }
    ck_assert_int_eq(pcie, 8);
    ck_assert_int_eq(nvlink, 16);
    int seen = 0;
    for (int r = 0; r < l.nroutes; r++) {
        const st_route *rt = &l.routes[r];
        int on_pcie = rt->n == 8;
        for (int h = rt->first; h < rt->first + rt->n; h++) {
            const st_link *lk = &l.links[l.hops[h].link];
            on_pcie &= lk->kind == ST_LINK_NVLINK && lk->index < 8 && l.hops[h].count == 2;
            ck_assert(l.hops[h].count * rt->bytes_per_s <= lk->bytes_per_s * (1 + 1e-9));
        }
        if (on_pcie) {
            seen = 1;
            REL(rt->bytes_per_s, 12.5e9, 1e-12);
        }
    }
    ck_assert(seen);
    st_sim_result r;
    ck_assert_msg(st_sim_run(&l, 0, NULL, &r, &err) == 0, "%s", err.text);
    ck_assert_msg(fabs(r.iteration_time_s - e.iteration_time_s) <= 0.1 * e.iteration_time_s, "sim %g s, estimate %g s",
                  r.iteration_time_s, e.iteration_time_s);
    st_sim_result_destroy(&r);
    st_lowered_destroy(&l);
    st_cost_ctx_free(ctx);
}
END_TEST

/* Each stage's gradients reduce over its own dp group's links, and the longest shows: GPT-2 with
 * 4 layers and the embedding on the slices (8 of them, through 12.5 GB/s of PCIe each) and 8 layers
 * on the H100s (NVLink): the estimate's dp time is stage 0's reduce-scatter and all-gather (zero 1,
 * nothing overlapped) plus the tied embedding's all-reduce, though stage 1 holds more parameters;
 * by-stage and every-rank simulations agree within 5%. */
START_TEST(test_group_of_slices_dp) {
    st_model m;
    st_cluster c;
    st_error err;
    st_plan p;
    st_cost_ctx *ctx = gpt2_on_slices("tp=1,pp=2,dp=8,mbs=4,gbs=256,zero=1,stage_layers=4,8", &m, &c, &p);
    double red[2], gat[2], nb;
    for (int d = 0; d < 2; d++) st_cost_dp_stage(st_cost_view(ctx, 8 * d, 8), &p, d, &red[d], &gat[d], &nb);
    ck_assert(red[0] + gat[0] > 5 * (red[1] + gat[1]));
    st_estimate e;
    ck_assert_int_eq(st_cost_estimate(ctx, &p, &e), 0);
    REL(e.breakdown.dp_comm_s, red[0] + gat[0] + st_cost_embedding_allreduce(ctx, &p, NULL), 1e-12);
    for (int full = 0; full < 2; full++) {
        st_lowered l;
        st_sim_result r;
        ck_assert_msg((full ? st_lower_full(ctx, &p, &l, &err) : st_lower(ctx, &p, &l, &err)) == 0, "%s", err.text);
        ck_assert_msg(st_sim_run(&l, 0, NULL, &r, &err) == 0, "%s", err.text);
        ck_assert_msg(fabs(r.iteration_time_s - e.iteration_time_s) <= 0.05 * e.iteration_time_s,
                      "every rank %d: sim %g s, estimate %g s", full, r.iteration_time_s, e.iteration_time_s);
        st_sim_result_destroy(&r);
        st_lowered_destroy(&l);
    }
    st_cost_ctx_free(ctx);
}
END_TEST

/* The simulator holds each rank to its own device's memory: Llama 2 7B with 8 layers on the slices
 * and 24 on the H100s peaks at 43 GiB on an H100, over a slice's 39.25 GiB but within its own 80:
 * it runs; stage 0's ranks are held to 39.25 GiB, stage 1's to 80. */
START_TEST(test_group_of_slices_sim_memory) {
    st_model m;
    st_cluster c;
    st_error err;
    ck_assert_int_eq(st_model_preset("llama2-7b", &m), 0);
    st_plan p;
    st_cost_ctx *ctx =
        plan_on_slices(&m, "tp=1,pp=2,dp=8,mbs=1,gbs=64,zero=1,seq=2048,stage_layers=8,24,recompute=selective", &c, &p);
    st_lowered l;
    st_sim_result r;
    ck_assert_msg(st_lower_full(ctx, &p, &l, &err) == 0, "%s", err.text);
    ck_assert_msg(st_sim_run(&l, 0, NULL, &r, &err) == 0, "%s", err.text);
    REL(st_sim_device_memory_bytes(&c, &l.progs[0]), 39.25 * GIB, 1e-12);
    REL(st_sim_device_memory_bytes(&c, &l.progs[8]), 80 * GIB, 1e-12);
    ck_assert(r.ranks[8].memory_peak_bytes > 39.25 * GIB);
    st_sim_check_memory(&l, &c, &r);
    ck_assert_int_eq(r.oom, 0);
    /* a slice's rank over its 39.25 GiB is caught, at the instruction of its peak */
    r.ranks[0].memory_peak_bytes = 40 * GIB;
    st_sim_check_memory(&l, &c, &r);
    ck_assert_int_eq(r.oom, 1);
    ck_assert_int_eq(r.oom_rank, l.progs[0].rank);
    ck_assert_int_eq(r.oom_ins, r.ranks[0].memory_peak_ins);
    st_sim_result_destroy(&r);
    st_lowered_destroy(&l);
    st_cost_ctx_free(ctx);
}
END_TEST

/* examples/mixed-mig-h100.json: a DGX A100 80GB as 56 x 1g.10gb beside a DGX H100; its canonical
 * JSON writes the group's whole GPUs and the layout, and reads back the same; a group layout that
 * over-subscribes a GPU or a profile of another GPU is refused naming the group's key. */
START_TEST(test_group_json) {
    st_cluster c, back;
    st_error err;
    ck_assert_msg(st_cluster_load(SRCDIR "/examples/mixed-mig-h100.json", &c, &err) == 0, "%s", err.text);
    ck_assert_int_eq(c.ngroups, 2);
    ck_assert_int_eq(c.groups[0].mig.per_gpu, 7);
    ck_assert_str_eq(c.groups[0].mig.profile, "1g.10gb");
    ck_assert_int_eq(c.groups[0].gpus_per_node, 56);
    ck_assert_str_eq(c.groups[0].gpu.name, "a100-sxm-80g/1g.10gb");
    REL(c.groups[0].pcie_bytes_per_s, 25e9 / 7, 1e-12);
    ck_assert_int_eq(c.groups[1].mig.per_gpu, 0);
    ck_assert_int_eq(st_cluster_gpus(&c), 64);
    json_t *j = st__cluster_to_json(&c);
    ck_assert_ptr_nonnull(j);
    json_t *g0 = json_array_get(json_object_get(j, "groups"), 0);
    ck_assert_int_eq(json_integer_value(json_object_get(g0, "gpus_per_node")), 8);
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(g0, "gpu"), "name")), "a100-sxm-80g");
    ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(g0, "mig"), "per_gpu")), 7);
    ck_assert_ptr_null(json_object_get(json_array_get(json_object_get(j, "groups"), 1), "mig"));
    ck_assert_msg(st__cluster_from_json(j, "mem", NULL, NULL, &back, &err) == 0, "%s", err.text);
    json_decref(j);
    ck_assert_int_eq(back.groups[0].gpus_per_node, 56);
    ck_assert_str_eq(back.groups[0].gpu.name, c.groups[0].gpu.name);
    REL(back.groups[0].gpu.peak_flops[ST_DT_BF16], c.groups[0].gpu.peak_flops[ST_DT_BF16], 1e-12);
    REL(back.groups[0].pcie_bytes_per_s, c.groups[0].pcie_bytes_per_s, 1e-12);
    static const struct {
        const char *mig, *key;
    } bad[] = {{"{\"profile\": \"2g.20gb\", \"per_gpu\": 4}", "groups[0].mig.per_gpu"},
               {"{\"profile\": \"2g.10gb\"}", "groups[0].mig.profile"},
               {"{\"per_gpu\": 2}", "groups[0].mig.profile"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char text[1024];
        snprintf(text, sizeof text,
                 "{\"groups\": [{\"gpu\": \"a100-sxm-80g\", \"nodes\": 1, \"gpus_per_node\": 8, "
                 "\"intra_node\": {\"bandwidth_gb_per_s\": 300}, \"inter_node\": {\"nics_per_node\": 8, "
                 "\"nic_gbit_per_s\": 200}, \"mig\": %s}]}",
                 bad[i].mig);
        json_t *root = json_loads(text, 0, NULL);
        ck_assert_ptr_nonnull(root);
        ck_assert_int_eq(st__cluster_from_json(root, "mem", NULL, NULL, &back, &err), ST_EINVAL);
        ck_assert_str_eq(err.key, bad[i].key);
        json_decref(root);
    }
}
END_TEST

/* Mixed layouts (st_mig_layout_place) against the placement tables of the MIG user guide: on A100-40GB
 * 4g + 2g + 1g starts at memory slices 0, 4, 6; 3g + 2g + 1g + 1g only with the 3g at slice 4 (a 1g.5gb
 * cannot start at slice 7); 4g + 4g, 3g + 3g + 1g (the 3g take all 8 memory slices) and eight 1g.5gb do
 * not fit. A100-80GB, H100 and H200 by the same shapes. */
static int place(const char *gpu, const char *const *names, int n, int *start) {
    const st_mig_profile *p[ST_MIG_MAX_LAYOUT];
    for (int i = 0; i < n; i++) ck_assert_ptr_nonnull(p[i] = st_mig_profile_find(gpu, names[i]));
    return st_mig_layout_place(p, n, start);
}
START_TEST(test_layout_placement) {
    int s[ST_MIG_MAX_LAYOUT];
    const char *a[] = {"4g.20gb", "2g.10gb", "1g.5gb"};
    ck_assert_int_eq(place("a100-sxm-40g", a, 3, s), 0);
    ck_assert_int_eq(s[0], 0);
    ck_assert_int_eq(s[1], 4);
    ck_assert_int_eq(s[2], 6);
    const char *b[] = {"3g.20gb", "2g.10gb", "1g.5gb", "1g.5gb"};
    ck_assert_int_eq(place("a100-sxm-40g", b, 4, s), 0);
    ck_assert_int_eq(s[0], 4);
    ck_assert_int_eq(s[1], 0);
    ck_assert_int_eq(s[2], 2);
    ck_assert_int_eq(s[3], 3);
    const char *c[] = {"4g.20gb", "3g.20gb"}, *d[] = {"2g.10gb", "2g.10gb", "2g.10gb", "1g.5gb"};
    ck_assert_int_eq(place("a100-sxm-40g", c, 2, s), 0);
    ck_assert_int_eq(place("a100-sxm-40g", d, 4, s), 0);
    const char *e[] = {"4g.20gb", "4g.20gb"}, *f[] = {"3g.20gb", "3g.20gb", "1g.5gb"}, *g[] = {"7g.40gb", "1g.5gb"};
    ck_assert_int_eq(place("a100-sxm-40g", e, 2, s), ST_EINVAL);
    ck_assert_int_eq(place("a100-sxm-40g", f, 3, s), ST_EINVAL);
    ck_assert_int_eq(place("a100-sxm-40g", g, 2, s), ST_EINVAL);
    const char *h[] = {"1g.5gb", "1g.5gb", "1g.5gb", "1g.5gb", "1g.5gb", "1g.5gb", "1g.5gb"};
    ck_assert_int_eq(place("a100-sxm-40g", h, 7, s), 0);
    const char *i8[] = {"4g.20gb", "1g.10gb", "1g.10gb", "1g.5gb"}; /* 4g + two 1g.10gb fill the memory */
    ck_assert_int_eq(place("a100-sxm-40g", i8, 4, s), ST_EINVAL);
    const char *j[] = {"4g.40gb", "2g.20gb", "1g.10gb"}, *k[] = {"1g.20gb", "1g.20gb", "1g.20gb", "1g.20gb"};
    ck_assert_int_eq(place("a100-sxm-80g", j, 3, s), 0);
    ck_assert_int_eq(place("a100-sxm-80g", k, 4, s), 0);
    const char *l[] = {"1g.20gb", "1g.20gb", "1g.20gb", "1g.20gb", "1g.10gb"}, *m[] = {"4g.40gb", "4g.40gb"};
    ck_assert_int_eq(place("a100-sxm-80g", l, 5, s), ST_EINVAL);
    ck_assert_int_eq(place("a100-sxm-80g", m, 2, s), ST_EINVAL);
    const char *n[] = {"3g.40gb", "2g.20gb", "1g.10gb", "1g.10gb"}, *o[] = {"3g.40gb", "3g.40gb"};
    const char *q[] = {"3g.40gb", "3g.40gb", "1g.10gb"}, *r[] = {"4g.40gb", "1g.20gb", "1g.20gb", "1g.10gb"};
    ck_assert_int_eq(place("h100-sxm-80g", n, 4, s), 0);
    ck_assert_int_eq(place("h100-sxm-80g", o, 2, s), 0);
    ck_assert_int_eq(place("h100-sxm-80g", q, 3, s), ST_EINVAL);
    ck_assert_int_eq(place("h100-sxm-80g", r, 4, s), ST_EINVAL);
    const char *t[] = {"4g.71gb", "2g.35gb", "1g.18gb"}, *u[] = {"3g.71gb", "3g.71gb", "1g.18gb"};
    ck_assert_int_eq(place("h200-sxm-141g", t, 3, s), 0);
    ck_assert_int_eq(place("h200-sxm-141g", u, 3, s), ST_EINVAL);
}
END_TEST

/* "A+B+C" with PROFILExN items; more than 7 instances or an empty item is refused. */
START_TEST(test_layout_parse) {
    char names[ST_MIG_MAX_LAYOUT][16];
    int n;
    ck_assert_int_eq(st_mig_layout_parse("4g.40gb+2g.20gb+1g.10gb", names, ST_MIG_MAX_LAYOUT, &n), 0);
    ck_assert_int_eq(n, 3);
    ck_assert_str_eq(names[1], "2g.20gb");
    ck_assert_int_eq(st_mig_layout_parse("2g.10gbx3+1g.5gb", names, ST_MIG_MAX_LAYOUT, &n), 0);
    ck_assert_int_eq(n, 4);
    ck_assert_str_eq(names[2], "2g.10gb");
    ck_assert_str_eq(names[3], "1g.5gb");
    ck_assert_int_eq(st_mig_layout_parse("1g.5gbx7+1g.5gb", names, ST_MIG_MAX_LAYOUT, &n), ST_EINVAL);
    ck_assert_int_eq(st_mig_layout_parse("4g.40gb+", names, ST_MIG_MAX_LAYOUT, &n), ST_EINVAL);
    ck_assert_int_eq(st_mig_layout_parse("+1g.5gb", names, ST_MIG_MAX_LAYOUT, &n), ST_EINVAL);
}
END_TEST

/* A layout of three profiles on a DGX A100 80GB: three node groups of 8 slices on the same node, each
 * slice with a third of its GPU's PCIe link (25 GB/s / 3) and of the node's NICs; the simulator's link of
 * a group's slice is that share; the canonical JSON writes the layout back and reads the same; :mig=none
 * restores the whole GPUs; an invalid layout names the key. */
START_TEST(test_layout_cluster) {
    st_cluster c, w;
    st_error err;
    ck_assert_msg(st_cluster_resolve("dgx-a100-80g:mig=4g.40gb+2g.20gb+1g.10gb", 0, &c, &err) == 0, "%s", err.text);
    ck_assert_int_eq(c.ngroups, 3);
    ck_assert_int_eq(st_cluster_gpus(&c), 24);
    ck_assert_str_eq(c.groups[0].gpu.name, "a100-sxm-80g/4g.40gb");
    ck_assert_str_eq(c.groups[2].gpu.name, "a100-sxm-80g/1g.10gb");
    ck_assert_ptr_nonnull(st_cluster_mig_layout(&c));
    ck_assert_str_eq(st_cluster_mig_layout(&c)->layout, "4g.40gb+2g.20gb+1g.10gb");
    st_cluster whole;
    ck_assert_int_eq(st_cluster_preset("dgx-a100-80g", &whole), 0);
    for (int g = 0; g < 3; g++) {
        REL(c.groups[g].pcie_bytes_per_s, 25e9 / 3, 1e-12);
        REL(c.groups[g].nic_bytes_per_s, whole.nic_bytes_per_s / 3, 1e-12);
        ck_assert_int_eq(c.groups[g].mig.slices_per_gpu, 3);
        st_cluster gv;
        st_net gnet;
        st_cluster_view(&c, 8 * g, 8, &gv);
        st_cost_net(&gv, &gnet);
        ck_assert_int_eq(gnet.gpus_per_port, 1);
        REL(gnet.nvlink_bytes_per_s, 25e9 / 3, 1e-12);
    }
    /* across the groups: the host node itself, 24 slices reducing through host memory, 3 per PCIe link
     * and each at a third of it: a ring all-reduce of S bytes takes 2(n-1)/n x S / (pcie / 3) + 2(n-1)
     * latencies, as on a node cut into 3 slices of one profile */
    st_cluster v;
    st_cluster_view(&c, 0, 24, &v);
    ck_assert_int_eq(v.gpus_per_node, 24);
    ck_assert_int_eq(v.mig.per_gpu, 3);
    ck_assert_str_eq(v.gpu.name, "a100-sxm-80g/1g.10gb");
    REL(v.nic_bytes_per_s, whole.nic_bytes_per_s, 1e-12);
    st_group grp;
    dp_group(&v, 24, &grp);
    ck_assert_int_eq(grp.nodes, 1);
    double S = 1e9, n = 24;
    REL(st_cost_collective(&v, NULL, ST_COLL_ALLREDUCE, &grp, S),
        2 * (n - 1) / n * S / (25e9 / 3) + 2 * (n - 1) * v.intra_latency_s, 1e-12);
    st_net net;
    st_cost_net(&v, &net);
    ck_assert_int_eq(net.gpus_per_port, 3);
    REL(net.nvlink_bytes_per_s, 25e9, 1e-12);
    json_t *j = st__cluster_to_json(&c);
    ck_assert_ptr_nonnull(j);
    ck_assert_int_eq((int)json_array_size(json_object_get(json_object_get(j, "mig"), "layout")), 3);
    ck_assert_msg(st__cluster_from_json(j, "x.json", NULL, NULL, &w, &err) == 0, "%s", err.text);
    json_decref(j);
    ck_assert_int_eq(w.ngroups, 3);
    REL(w.groups[1].pcie_bytes_per_s, c.groups[1].pcie_bytes_per_s, 1e-12);
    REL(w.xgroup_bytes_per_s, c.xgroup_bytes_per_s, 1e-12);
    ck_assert_int_eq(st_cluster_resolve("dgx-a100-80g:mig=4g.40gb+3g.40gb", 0, &c, &err), 0);
    ck_assert_int_eq(st_cluster_set_mig(&c, NULL, 0, NULL, NULL), 0);
    ck_assert_int_eq(st_cluster_finalize(&c, NULL, &err), 0);
    ck_assert_int_eq(c.ngroups, 0);
    ck_assert_int_eq(st_cluster_gpus(&c), 8);
    REL(c.pcie_bytes_per_s, whole.pcie_bytes_per_s, 1e-12);
    REL(c.nic_bytes_per_s, whole.nic_bytes_per_s, 1e-12);
    REL(c.gpu.peak_flops[ST_DT_BF16], whole.gpu.peak_flops[ST_DT_BF16], 1e-12);
    /* one profile is the old form */
    ck_assert_int_eq(st_cluster_resolve("dgx-a100-80g:mig=1g.10gb+1g.10gb", 0, &c, &err), 0);
    ck_assert_int_eq(c.ngroups, 0);
    ck_assert_int_eq(c.mig.per_gpu, 2);
    ck_assert_int_eq(st_cluster_resolve("dgx-a100-80g:mig=4g.40gb+4g.40gb", 0, &c, &err), ST_EINVAL);
    ck_assert_str_eq(err.key, "mig");
    ck_assert_int_eq(st_cluster_resolve("dgx-a100-80g:mig=4g.40gb+1g.5gb", 0, &c, &err), ST_EINVAL);
    ck_assert_str_eq(err.key, "mig");
    ck_assert_int_eq(st_cluster_resolve("dgx-a100-40g:mig=2g.10gbx2+1g.5gbx3", 0, &c, &err), ST_EINVAL);
    ck_assert(strstr(err.text, "divide"));
}
END_TEST

/* Closed form: a 4g and a 3g slice of one A100 80GB in data parallelism. The 4g has 56 SMs, the 3g 42
 * (4:3), the same 4 memory slices; on a model whose time is mostly GEMMs, micro-batches 8 and 6 (4:3 of
 * their compute) make the replicas finish together (within the memory-bound share, 5%), the balancer
 * picks that split, it beats the even split 7 and 7, and the simulator's every rank agrees. */
START_TEST(test_layout_dp_closed_form) {
    st_model m;
    st_cluster c;
    st_error err;
    ck_assert_int_eq(st_model_load(SRCDIR "/tests/data/mig/wide2.json", &m, &err), 0);
    char path[512];
    snprintf(path, sizeof path, "%s/examples/a100-mig-mixed.json:mig=4g.40gb+3g.40gb", SRCDIR);
    ck_assert_msg(st_cluster_resolve(path, 0, &c, &err) == 0, "%s", err.text);
    ck_assert_int_eq(c.ngroups, 2);
    REL(c.groups[0].gpu.peak_flops[ST_DT_BF16] / c.groups[1].gpu.peak_flops[ST_DT_BF16], 4.0 / 3, 1e-12);
    double t_rep[2];
    for (int r = 0; r < 2; r++) { /* each replica alone: its slice, its micro-batches */
        st_cluster one;
        st_plan p;
        st_estimate e;
        snprintf(path, sizeof path, "%s/examples/a100-mig-mixed.json:mig=%s", SRCDIR, r ? "3g.40gbx1" : "4g.40gbx1");
        ck_assert_int_eq(st_cluster_resolve(path, 0, &one, &err), 0);
        st_plan_defaults(&p);
        ck_assert_int_eq(st_plan_parse_spec(r ? "tp=1,pp=1,dp=1,mbs=1,gbs=6" : "tp=1,pp=1,dp=1,mbs=1,gbs=8", &p, &err), 0);
        ck_assert_msg(st_plan_finalize(&p, &m, &one, 0, NULL, &err) == 0, "%s", err.text);
        st_cost_ctx *ctx = st_cost_ctx_new(&m, &one, NULL);
        ck_assert_int_eq(st_cost_estimate(ctx, &p, &e), 0);
        t_rep[r] = e.breakdown.compute_s;
        st_cost_ctx_free(ctx);
    }
    ck_assert_msg(fabs(t_rep[0] - t_rep[1]) < 0.05 * t_rep[0], "4g x 8: %g s, 3g x 6: %g s", t_rep[0], t_rep[1]);
    st_plan even, q;
    st_estimate ee, eb;
    st_plan_defaults(&even);
    ck_assert_int_eq(st_plan_parse_spec("tp=1,pp=1,dp=2,mbs=1,gbs=14,zero=1", &even, &err), 0);
    ck_assert_msg(st_plan_finalize(&even, &m, &c, 0, NULL, &err) == 0, "%s", err.text);
    st_cost_ctx *ctx = st_cost_ctx_new(&m, &c, NULL);
    q = even;
    ck_assert_int_eq(st_search_balance(ctx, &q), 1);
    ck_assert_int_eq(q.ndp_batches, 2);
    ck_assert_int_eq(q.dp_batches[0], 8);
    ck_assert_int_eq(q.dp_batches[1], 6);
    ck_assert_int_eq(st_cost_estimate(ctx, &even, &ee), 0);
    ck_assert_int_eq(st_cost_estimate(ctx, &q, &eb), 0);
    ck_assert(eb.iteration_time_s < ee.iteration_time_s);
    st_lower_opts o;
    st_lower_opts_init(&o);
    o.every_rank = 1;
    st_lowered l;
    ck_assert_msg(st_lower_plan(ctx, &q, &o, &l, &err) == 0, "%s", err.text);
    st_sim_result r;
    ck_assert_msg(st_sim_run(&l, 0, NULL, &r, &err) == 0, "%s", err.text);
    ck_assert_msg(fabs(r.iteration_time_s - eb.iteration_time_s) < 0.1 * eb.iteration_time_s, "sim %g s, estimate %g s",
                  r.iteration_time_s, eb.iteration_time_s);
    st_sim_result_destroy(&r);
    st_lowered_destroy(&l);
    st_cost_ctx_free(ctx);
}
END_TEST

Suite *suite_mig(void) {
    Suite *s = suite_create("mig");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_profiles_fit_their_gpu);
    tcase_add_test(tc, test_slice_device);
    tcase_add_test(tc, test_h200_profiles);
    tcase_add_test(tc, test_layout);
    tcase_add_test(tc, test_spec_parse);
    tcase_add_test(tc, test_resolve_suffix);
    tcase_add_test(tc, test_allreduce_through_host_memory);
    tcase_add_test(tc, test_sim_shares_the_pcie_link);
    tcase_add_test(tc, test_one_7g_or_seven_1g);
    tcase_add_test(tc, test_group_of_slices);
    tcase_add_test(tc, test_group_of_slices_estimate);
    tcase_add_test(tc, test_group_of_slices_sim);
    tcase_add_test(tc, test_group_of_slices_dp);
    tcase_add_test(tc, test_group_of_slices_sim_memory);
    tcase_add_test(tc, test_group_json);
    tcase_add_test(tc, test_layout_placement);
    tcase_add_test(tc, test_layout_parse);
    tcase_add_test(tc, test_layout_cluster);
    tcase_add_test(tc, test_layout_dp_closed_form);
    suite_add_tcase(s, tc);
    return s;
}
