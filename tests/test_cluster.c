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
    /* more than a domain: whole host nodes, the domains filled in order (100 = 72 + 28) */
    ck_assert_int_eq(st_cluster_resolve("gb200-nvl72", 100, &c, &err), 0);
    ck_assert_int_eq(c.nodes, 25);
    ck_assert_int_eq(c.gpus_used, 0);
    ck_assert_int_eq(st_cluster_resolve("gb200-nvl72", 102, &c, &err), ST_EINVAL);
    ck_assert_str_eq(err.key, "gpus");
    ck_assert_ptr_nonnull(strstr(err.text, "4 GPUs per node"));
}
END_TEST

/* Part of every scale-up domain (CLUSTER:domain_gpus=N): the described cluster keeps its domains and
 * uses N of each; bad input names the key */
START_TEST(test_domain_gpus_suffix) {
    st_cluster c;
    st_error err;
    ck_assert_int_eq(st_cluster_resolve("gb200-nvl72:domain_gpus=64", 0, &c, &err), 0);
    ck_assert_int_eq(c.nodes, 16); /* 16 of the rack's 18 trays */
    ck_assert_int_eq(c.domain_gpus_used, 64);
    ck_assert_int_eq(st_cluster_domain(&c), 72);
    ck_assert_int_eq(st_cluster_domain_used(&c), 64);
    ck_assert_str_eq(c.name, "gb200-nvl72+64of72");
    ck_assert_int_eq(st_cluster_resolve("gb200-nvl72:domain_gpus=64", 256, &c, &err), 0);
    ck_assert_int_eq(c.nodes, 64);
    ck_assert_int_eq(st_cluster_gpus(&c), 256);
    ck_assert_int_eq(st_cluster_resolve("gb200-nvl72:sharp=1:domain_gpus=72", 144, &c, &err), 0);
    ck_assert(c.sharp_domain);
    ck_assert_int_eq(st_cluster_domain_used(&c), 72);
    ck_assert_int_eq(st_cluster_domain_used(&(st_cluster){.gpus_per_node = 8}), 8); /* unset: the domain */
    const struct {
        const char *spec, *key;
        int64_t gpus;
    } bad[] = {
        {"gb200-nvl72:domain_gpus=76", "domain_gpus", 0},  /* above the domain */
        {"gb200-nvl72:domain_gpus=66", "domain_gpus", 0},  /* not whole host nodes */
        {"gb200-nvl72:domain_gpus=0", "domain_gpus", 0},   /* not a count */
        {"gb200-nvl72:domain_gpus=6x", "domain_gpus", 0},
        {"gb200-nvl72:domain_gpus=64", "gpus", 200},       /* not whole parts */
        {"gb200-nvl72:domain_gpus=64:sharp=1", "domain_gpus", 0}, /* out of order */
        {"dgx-h100:domain_gpus=4", "domain_gpus", 0},       /* a host node is not cut */
        {"dgx-a100-40g:mig=1g.5gb:domain_gpus=8", "domain_gpus", 0},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ck_assert_msg(st_cluster_resolve(bad[i].spec, bad[i].gpus, &c, &err) == ST_EINVAL, "%s", bad[i].spec);
        ck_assert_msg(!strcmp(err.key, bad[i].key), "%s: key %s", bad[i].spec, err.key);
    }
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

/* 256 GPUs of NVL72 racks (issue 16): filled in order the domains hold 72, 72, 72 and 40 ranks; with
 * 64 of each domain (CLUSTER:domain_gpus=64) four of 64. tp 8 groups never cross a domain either way;
 * an ep 64 group (64 consecutive ranks) is one domain with 64 of each, and filled in order the block
 * [64, 128) is cut at 72 into 8 + 56: the most split copy has 8 ranks a domain, over 8 such pieces.
 * A dp group of all 256 ranks in order has its fewest, 40, in the last domain. */
START_TEST(test_partial_domain_placement) {
    st_cluster fill, part;
    st_plan p;
    st_group g;
    ck_assert_int_eq(st_cluster_resolve("gb200-nvl72", 256, &fill, NULL), 0);
    ck_assert_int_eq(st_cluster_resolve("gb200-nvl72:domain_gpus=64", 256, &part, NULL), 0);
    ck_assert_int_eq(fill.nodes, 64);
    ck_assert_int_eq(part.nodes, 64);
    st_plan_defaults(&p);
    p.tp = 8, p.pp = 1, p.dp = 32, p.cp = 1, p.ep = 1;
    for (int i = 0; i < 2; i++) {
        st_cost_group(i ? &part : &fill, &p, ST_GRP_TP, &g);
        ck_assert_int_eq(g.nodes, 1); ck_assert_int_eq(g.per_node, 8);
    }
    p.tp = 1, p.dp = 256, p.ep = 64;
    st_cost_group(&part, &p, ST_GRP_EP, &g);
    ck_assert_int_eq(g.nodes, 1); ck_assert_int_eq(g.per_node, 64);
    st_cost_group(&fill, &p, ST_GRP_EP, &g);
    ck_assert_int_eq(g.per_node, 8); ck_assert_int_eq(g.nodes, 8);
    st_cost_group(&fill, &p, ST_GRP_DP, &g);
    ck_assert_int_eq(g.per_node, 40); ck_assert_int_eq(g.nodes, 7);
    st_cost_group(&part, &p, ST_GRP_DP, &g);
    ck_assert_int_eq(g.per_node, 64); ck_assert_int_eq(g.nodes, 4);
    /* tp 16 (blocks of 16: [64, 80) straddles 72) splits in pieces of 8 whether or not the last domain is whole */
    p.tp = 16, p.dp = 16, p.ep = 1;
    st_cost_group(&fill, &p, ST_GRP_TP, &g);
    ck_assert_int_eq(g.per_node, 8); ck_assert_int_eq(g.nodes, 2);
    st_cost_group(&part, &p, ST_GRP_TP, &g);
    ck_assert_int_eq(g.nodes, 1);
}
END_TEST

Suite *suite_cluster(void) {
    Suite *s = suite_create("cluster");
    TCase *tc = tcase_create("cluster");
    tcase_add_test(tc, test_presets);
    tcase_add_test(tc, test_resolve_gpus);
    tcase_add_test(tc, test_group_placement);
    tcase_add_test(tc, test_domain_gpus_suffix);
    tcase_add_test(tc, test_partial_domain_placement);
    suite_add_tcase(s, tc);
    return s;
}
