/* test_mig.c: MIG slices as devices (src/core/mig.c): the profile table against the MIG user
 * guide's limits, a slice's device, layouts that over-subscribe a GPU, the host-memory collectives
 * between slices in closed form (cost/comm.c) and as shared links in the simulator
 * (src/lower/lower_net.c), and the CLUSTER:mig=PROFILE variants `compare` takes. */
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
    ck_assert_uint_eq(n, 18);
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

/* Seven 1g slices of one A100, no P2P: a ring all-reduce of S bytes moves 2(n-1)/n x S per rank
 * through the host memory at each rank's share of the GPU's PCIe link (25 GB/s / 7):
 * 2(n-1)/n x S / (pcie / 7) + 2(n-1) x latency; and the whole GPU does it over NVLink instead. */
START_TEST(test_allreduce_through_host_memory) {
    st_cluster c;
    st_error err;
    ck_assert_int_eq(st_cluster_resolve("dgx-a100-40g:mig=1g.5gb", 7, &c, &err), 0);
    st_plan p;
    st_plan_defaults(&p);
    p.tp = 1, p.cp = 1, p.dp = 7, p.pp = 1;
    st_group g;
    st_cost_group(&c, &p, ST_GRP_DP, &g);
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

Suite *suite_mig(void) {
    Suite *s = suite_create("mig");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_profiles_fit_their_gpu);
    tcase_add_test(tc, test_slice_device);
    tcase_add_test(tc, test_layout);
    tcase_add_test(tc, test_spec_parse);
    tcase_add_test(tc, test_resolve_suffix);
    tcase_add_test(tc, test_allreduce_through_host_memory);
    tcase_add_test(tc, test_sim_shares_the_pcie_link);
    tcase_add_test(tc, test_one_7g_or_seven_1g);
    suite_add_tcase(s, tc);
    return s;
}
