/* test_cluster.c: cluster and GPU presets, resizing, group placement. */
#include "src/strata.h"
#include "suites.h"

START_TEST(test_presets) {
    const char *names[] = {"dgx-a100-40g", "dgx-a100-80g", "dgx-h100", "dgx-h200", "l40s-pcie-8", "a10-pcie-8",
                           "hgx-h800", "hgx-h20", "dgx-b200", "dgx-b300", "gb200-nvl72", "gb300-nvl72",
                           "mi300x", "mi355x"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        st_cluster c;
        ck_assert_int_eq(st_cluster_preset(names[i], &c), 0);
        ck_assert_int_eq(st_cluster_finalize(&c, NULL, NULL), 0);
        ck_assert(c.source[0] && c.gpu.source[0]);
        ck_assert(c.gpu.peak_flops[ST_DT_BF16] > 0 && c.gpu.memory_bytes > 0 && c.gpu.hbm_bytes_per_s > 0);
        ck_assert(c.gpu.tdp_watts > 0 && c.gpu.sms > 0);
        ck_assert_int_eq(st_cluster_domain(&c) % c.gpus_per_node, 0);
    }
    /* every GPU preset states its source, TDP and compute units */
    size_t ng;
    const st_gpu *g = st_gpu_presets(&ng);
    ck_assert_uint_ge(ng, 15);
    for (size_t i = 0; i < ng; i++)
        ck_assert_msg(g[i].source[0] && g[i].tdp_watts > 0 && g[i].sms > 0 && g[i].gemm_efficiency > 0, "%s",
                      g[i].name);
    st_cluster c;
    ck_assert_int_eq(st_cluster_preset("dgx-a100-80g", &c), 0);
    ck_assert_double_eq(c.gpu.peak_flops[ST_DT_BF16], 312e12);
    ck_assert_double_eq(c.intra_bytes_per_s, 300e9);
    ck_assert_double_eq(c.nic_bytes_per_s, 25e9);
    ck_assert_double_eq(c.gpu.peak_flops[ST_DT_FP8], 0); /* A100 has no fp8 */
    ck_assert_int_eq(st_cluster_preset("dgx-h100", &c), 0);
    ck_assert_double_eq(c.intra_bytes_per_s, 450e9);
    ck_assert_int_eq(st_cluster_domain(&c), 8); /* the host node */
    ck_assert_int_eq(st_cluster_preset("gb200-nvl72", &c), 0);
    ck_assert_int_eq(c.nodes * c.gpus_per_node, 72);
    ck_assert_int_eq(st_cluster_domain(&c), 72);
    ck_assert_double_eq(c.gpu.peak_flops[ST_DT_BF16], 2500e12);
    ck_assert_int_eq(st_cluster_preset("mi300x", &c), 0);
    ck_assert_int_eq(c.fabric, ST_FABRIC_XGMI);
    ck_assert_double_eq(c.intra_bytes_per_s, 448e9);
}
END_TEST

START_TEST(test_resolve_gpus) {
    st_cluster c;
    st_error err;
    ck_assert_int_eq(st_cluster_resolve("dgx-a100-80g", 1024, &c, &err), 0);
    ck_assert_int_eq(c.nodes, 128);
    ck_assert_int_eq(st_cluster_gpus(&c), 1024);
    ck_assert_int_eq(st_cluster_resolve("dgx-a100-80g", 12, &c, &err), ST_EINVAL);
    ck_assert_str_eq(err.key, "gpus");
    /* part of a node: the first GPUs of one node, as a launcher places them */
    ck_assert_int_eq(st_cluster_resolve("dgx-h100", 4, &c, &err), 0);
    ck_assert_int_eq(c.nodes, 1);
    ck_assert_int_eq(st_cluster_gpus(&c), 4);
    ck_assert_int_eq(st_cluster_resolve("dgx-h100", 8, &c, &err), 0);
    ck_assert_int_eq(c.gpus_used, 0);
    ck_assert_int_eq(st_cluster_gpus(&c), 8);
    /* NVL72: part of a domain spans host nodes; beyond it whole domains only */
    ck_assert_int_eq(st_cluster_resolve("gb200-nvl72", 6, &c, &err), 0);
    ck_assert_int_eq(c.nodes, 2);
    ck_assert_int_eq(st_cluster_gpus(&c), 6);
    ck_assert_int_eq(st_cluster_resolve("gb200-nvl72", 144, &c, &err), 0);
    ck_assert_int_eq(c.nodes, 36);
    ck_assert_int_eq(st_cluster_resolve("gb200-nvl72", 100, &c, &err), ST_EINVAL);
    ck_assert_str_eq(err.key, "gpus");
    ck_assert_ptr_nonnull(strstr(err.text, "scale-up domain"));
}
END_TEST

/* Megatron's rank order tp-cp-dp-pp on 8-GPU nodes */
START_TEST(test_group_placement) {
    st_cluster c;
    ck_assert_int_eq(st_cluster_resolve("dgx-a100-80g", 512, &c, NULL), 0);
    st_plan p;
    st_plan_defaults(&p);
    p.tp = 8, p.pp = 8, p.dp = 8, p.cp = 1;
    st_group g;
    st_cost_group(&c, &p, ST_GRP_TP, &g);
    ck_assert_int_eq(g.n, 8); ck_assert_int_eq(g.per_node, 8); ck_assert_int_eq(g.nodes, 1);
    st_cost_group(&c, &p, ST_GRP_DP, &g);
    ck_assert_int_eq(g.n, 8); ck_assert_int_eq(g.per_node, 1); ck_assert_int_eq(g.nodes, 8);
    st_cost_group(&c, &p, ST_GRP_PP, &g);
    ck_assert_int_eq(g.n, 8); ck_assert_int_eq(g.per_node, 1);
    p.tp = 2, p.dp = 32;
    st_cost_group(&c, &p, ST_GRP_DP, &g);
    ck_assert_int_eq(g.per_node, 4); ck_assert_int_eq(g.nodes, 8);
    p.tp = 16, p.dp = 4;
    st_cost_group(&c, &p, ST_GRP_TP, &g);
    ck_assert_int_eq(g.per_node, 8); ck_assert_int_eq(g.nodes, 2);
    /* NVL72: a tp 8 group spans 2 host nodes but one domain (node_share: the host's 4 GPUs share its
     * NICs); tp 16 groups straddle the domains' boundary at 72 = 4 x 16 + 8: split into pieces of 8 */
    ck_assert_int_eq(st_cluster_resolve("gb200-nvl72", 144, &c, NULL), 0);
    p.tp = 8, p.pp = 1, p.dp = 18;
    st_cost_group(&c, &p, ST_GRP_TP, &g);
    ck_assert_int_eq(g.nodes, 1); ck_assert_int_eq(g.node_share, 4);
    st_cost_group(&c, &p, ST_GRP_DP, &g);
    ck_assert_int_eq(g.per_node, 9); ck_assert_int_eq(g.nodes, 2);
    p.tp = 16, p.dp = 9;
    st_cost_group(&c, &p, ST_GRP_TP, &g);
    ck_assert_int_eq(g.per_node, 8); ck_assert_int_eq(g.nodes, 2);
}
END_TEST

Suite *suite_cluster(void) {
    Suite *s = suite_create("cluster");
    TCase *tc = tcase_create("cluster");
    tcase_add_test(tc, test_presets);
    tcase_add_test(tc, test_resolve_gpus);
    tcase_add_test(tc, test_group_placement);
    suite_add_tcase(s, tc);
    return s;
}
