/* test_cluster.c: cluster and GPU presets, resizing, group placement. */
#include "src/strata.h"
#include "suites.h"

START_TEST(test_presets) {
    const char *names[] = {"dgx-a100-40g", "dgx-a100-80g", "dgx-h100", "dgx-h200", "l40s-pcie-8", "a10-pcie-8"};
    for (size_t i = 0; i < 6; i++) {
        st_cluster c;
        ck_assert_int_eq(st_cluster_preset(names[i], &c), 0);
        ck_assert_int_eq(st_cluster_finalize(&c, NULL, NULL), 0);
        ck_assert(c.source[0] && c.gpu.source[0]);
        ck_assert(c.gpu.peak_flops[ST_DT_BF16] > 0 && c.gpu.memory_bytes > 0 && c.gpu.hbm_bytes_per_s > 0);
    }
    st_cluster c;
    ck_assert_int_eq(st_cluster_preset("dgx-a100-80g", &c), 0);
    ck_assert_double_eq(c.gpu.peak_flops[ST_DT_BF16], 312e12);
    ck_assert_double_eq(c.intra_bytes_per_s, 300e9);
    ck_assert_double_eq(c.nic_bytes_per_s, 25e9);
    ck_assert_double_eq(c.gpu.peak_flops[ST_DT_FP8], 0); /* A100 has no fp8 */
    ck_assert_int_eq(st_cluster_preset("dgx-h100", &c), 0);
    ck_assert_double_eq(c.intra_bytes_per_s, 450e9);
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
