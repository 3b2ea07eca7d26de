/* test_groups.c: clusters of node groups with different GPU types (issue 19): where ranks sit, the
 * uniform cluster a set of ranks is priced on, the checks of bad groups, and the JSON round trip. */
#include "src/io/jsonutil.h"
#include "src/strata.h"
#include "suites.h"

#include <string.h>

/* One group from a uniform preset cluster, `nodes` of its nodes. */
static void group_from(st_node_group *g, const char *preset, const char *name, int64_t nodes) {
    st_cluster u;
    ck_assert_int_eq(st_cluster_preset(preset, &u), 0);
    memset(g, 0, sizeof *g);
    snprintf(g->name, sizeof g->name, "%s", name);
    g->gpu = u.gpu;
    g->nodes = nodes, g->gpus_per_node = u.gpus_per_node, g->domain_gpus = u.domain_gpus, g->fabric = u.fabric;
    g->intra_bytes_per_s = u.intra_bytes_per_s, g->intra_latency_s = u.intra_latency_s;
    g->nics_per_node = u.nics_per_node, g->nic_bytes_per_s = u.nic_bytes_per_s;
    g->inter_latency_s = u.inter_latency_s, g->oversubscription = u.oversubscription;
    g->host_memory_bytes = u.host_memory_bytes, g->pcie_bytes_per_s = u.pcie_bytes_per_s;
}

/* 2 DGX A100 80GB + 2 DGX H100, 100 GB/s per node between them, 3 us, 2:1. */
static void mixed(st_cluster *c) {
    memset(c, 0, sizeof *c);
    snprintf(c->name, sizeof c->name, "mixed");
    c->ngroups = 2;
    group_from(&c->groups[0], "dgx-a100-80g", "a100", 2);
    group_from(&c->groups[1], "dgx-h100", "h100", 2);
    c->xgroup_bytes_per_s = 100e9, c->xgroup_latency_s = 3e-6, c->xgroup_oversubscription = 2;
    ck_assert_int_eq(st_cluster_finalize(c, NULL, NULL), 0);
}

START_TEST(test_rank_place) {
    st_cluster c;
    mixed(&c);
    ck_assert_int_eq(st_cluster_gpus(&c), 32);
    st_rank_place r;
    st_cluster_rank_place(&c, 0, &r);
    ck_assert_int_eq(r.group, 0);
    ck_assert_int_eq(r.node, 0);
    ck_assert_int_eq(r.gpu, 0);
    st_cluster_rank_place(&c, 15, &r);
    ck_assert_int_eq(r.group, 0);
    ck_assert_int_eq(r.node, 1);
    ck_assert_int_eq(r.gpu, 7);
    st_cluster_rank_place(&c, 16, &r);
    ck_assert_int_eq(r.group, 1);
    ck_assert_int_eq(r.node, 2);
    ck_assert_int_eq(r.gpu, 0);
    st_cluster_rank_place(&c, 29, &r);
    ck_assert_int_eq(r.group, 1);
    ck_assert_int_eq(r.node, 3);
    ck_assert_int_eq(r.gpu, 5);
    ck_assert_int_eq(st_cluster_rank_group(&c, 31), 1);
    /* without groups: node and GPU of a uniform cluster */
    st_cluster u;
    ck_assert_int_eq(st_cluster_resolve("dgx-h100", 32, &u, NULL), 0);
    st_cluster_rank_place(&u, 29, &r);
    ck_assert_int_eq(r.group, 0);
    ck_assert_int_eq(r.node, 3);
    ck_assert_int_eq(r.gpu, 5);
}
END_TEST

START_TEST(test_view) {
    st_cluster c, v, a100, h100;
    mixed(&c);
    ck_assert_int_eq(st_cluster_preset("dgx-a100-80g", &a100), 0);
    ck_assert_int_eq(st_cluster_preset("dgx-h100", &h100), 0);
    /* one group: its own description */
    st_cluster_view(&c, 16, 16, &v);
    ck_assert_str_eq(v.gpu.name, "h100-sxm-80g");
    ck_assert(v.intra_bytes_per_s == h100.intra_bytes_per_s && v.nic_bytes_per_s == h100.nic_bytes_per_s);
    ck_assert_int_eq(v.nodes, 2);
    ck_assert_int_eq(v.ngroups, 0);
    st_cluster_view(&c, 8, 4, &v);
    ck_assert_str_eq(v.gpu.name, "a100-sxm-80g");
    /* across: the slowest GPU and links, the fabric between the groups per NIC, its latency added */
    st_cluster_view(&c, 8, 16, &v);
    ck_assert_str_eq(v.gpu.name, "a100-sxm-80g");
    ck_assert(v.gpu.hbm_bytes_per_s == a100.gpu.hbm_bytes_per_s);
    ck_assert(v.intra_bytes_per_s == a100.intra_bytes_per_s);
    ck_assert_double_eq_tol(v.nic_bytes_per_s, 100e9 / 8, 1e-3);
    ck_assert_double_eq_tol(v.inter_latency_s, a100.inter_latency_s + 3e-6, 1e-12);
    ck_assert(v.oversubscription == 2);
    ck_assert_int_eq(v.nodes * v.gpus_per_node, 32);
    /* the top-level fields are the view of all GPUs; the groups stay */
    ck_assert_str_eq(c.gpu.name, "a100-sxm-80g");
    ck_assert_int_eq(c.ngroups, 2);
    ck_assert(c.nic_bytes_per_s == v.nic_bytes_per_s);
    /* a uniform cluster is its own view */
    st_cluster_view(&a100, 0, 8, &v);
    ck_assert(!memcmp(&v, &a100, sizeof v));
}
END_TEST

START_TEST(test_bad_groups) {
    st_cluster c;
    st_error err;
    mixed(&c);
    c.groups[1].gpus_per_node = 6; /* 6 and 8 do not divide one another */
    ck_assert_int_eq(st_cluster_finalize(&c, NULL, &err), ST_EINVAL);
    ck_assert_str_eq(err.key, "groups[1].gpus_per_node");
    mixed(&c);
    c.groups[0].nodes = 0;
    ck_assert_int_eq(st_cluster_finalize(&c, NULL, &err), ST_EINVAL);
    ck_assert_str_eq(err.key, "groups[0].nodes");
    mixed(&c);
    c.xgroup_bytes_per_s = 0;
    ck_assert_int_eq(st_cluster_finalize(&c, NULL, &err), ST_EINVAL);
    ck_assert_str_eq(err.key, "between_groups.bandwidth_gb_per_s");
    mixed(&c);
    c.groups[1].domain_gpus = 24; /* an NVLink domain of 3 nodes beside one of 8 GPUs: 8 divides 24 */
    ck_assert_int_eq(st_cluster_finalize(&c, NULL, &err), 0);
    c.groups[0].gpus_per_node = 16, c.groups[0].nodes = 1; /* 16 and 24 do not divide */
    ck_assert_int_eq(st_cluster_finalize(&c, NULL, &err), ST_EINVAL);
    ck_assert_str_eq(err.key, "groups[1].scale_up.gpus");
}
END_TEST

START_TEST(test_json_round_trip) {
    st_cluster c, back;
    st_error err;
    mixed(&c);
    json_t *j = st__cluster_to_json(&c);
    ck_assert_ptr_nonnull(j);
    ck_assert_ptr_nonnull(json_object_get(j, "groups"));
    ck_assert_ptr_null(json_object_get(j, "gpu"));
    ck_assert_int_eq(st__cluster_from_json(j, "mem", NULL, NULL, &back, &err), 0);
    ck_assert_int_eq(back.ngroups, 2);
    ck_assert_str_eq(back.groups[1].name, "h100");
    ck_assert_str_eq(back.groups[1].gpu.name, "h100-sxm-80g");
    ck_assert(back.xgroup_bytes_per_s == c.xgroup_bytes_per_s && back.xgroup_oversubscription == 2);
    ck_assert_double_eq_tol(back.groups[0].nic_bytes_per_s, c.groups[0].nic_bytes_per_s, 1e-3);
    json_decref(j);
}
END_TEST

Suite *suite_groups(void) {
    Suite *s = suite_create("groups");
    TCase *tc = tcase_create("groups");
    tcase_add_test(tc, test_rank_place);
    tcase_add_test(tc, test_view);
    tcase_add_test(tc, test_bad_groups);
    tcase_add_test(tc, test_json_round_trip);
    suite_add_tcase(s, tc);
    return s;
}
