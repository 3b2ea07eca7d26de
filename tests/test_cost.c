/* test_cost.c: the cost model against closed forms: one op on one GPU, ring collectives, pipeline
 * bubbles, memory of schedules and ZeRO stages, calibration tables, and the estimate's own
 * bookkeeping (breakdown sums to the iteration time, MFU by its definition). */
#include "cost/cost_private.h"
#include "src/strata.h"
#include "suites.h"

#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define REL(a, b, r) ck_assert_double_eq_tol((a), (b), fabs((double)(b)) * (r) + 1e-15)

static st_cluster cluster(const char *name, int64_t gpus) {
    st_cluster c;
    ck_assert_int_eq(st_cluster_resolve(name, gpus, &c, NULL), 0);
    return c;
}

START_TEST(test_gemm_one_gpu) {
    st_cluster c = cluster("dgx-a100-80g", 8);
    st_op op;
    memset(&op, 0, sizeof op);
    op.cls = ST_OPC_GEMM;
    op.m = 8192, op.n = 8192, op.k = 8192, op.batch = 1;
    op.fwd_flops = 2.0 * 8192 * 8192 * 8192;
    op.fwd_bytes = 3.0 * 8192 * 8192 * 2;
    op.kernels_fwd = 1;
    double f = 8192.0 / (8192 + ST_GEMM_HALF_DIM);
    double want = op.fwd_flops / (312e12 * (267.9 / 312) * f * f * f) + ST_KERNEL_OVERHEAD_S;
    REL(st_cost_op_time(&c, NULL, &op, ST_DT_BF16, 0), want, 1e-12);
    /* memory bound: a stream of 1 GB */
    memset(&op, 0, sizeof op);
    op.cls = ST_OPC_ELEMWISE;
    op.fwd_bytes = 1e9;
    op.kernels_fwd = 1;
    REL(st_cost_op_time(&c, NULL, &op, ST_DT_BF16, 0), 1e9 / (2039e9 * ST_HBM_EFFICIENCY) + ST_KERNEL_OVERHEAD_S, 1e-12);
}
END_TEST

/* st_cost_op is the estimate's own per-operator price (the per-operator lowering takes its times
 * from it): each operator's compute and collectives, and a chunk of one block costs their sum. */
START_TEST(test_op_prices_sum_to_the_chunk) {
    st_model m;
    st_cluster c = cluster("dgx-a100-80g", 16);
    st_plan p;
    st_error err;
    ck_assert_int_eq(st_model_preset("gpt-7.5b", &m), 0); /* 36 blocks: 36 chunks of one */
    st_plan_defaults(&p);
    ck_assert_int_eq(st_plan_parse_spec("tp=4,pp=4,vp=9,mbs=1,gbs=16,sp=1", &p, &err), 0);
    ck_assert_int_eq(st_plan_finalize(&p, &m, &c, 0, NULL, &err), 0);
    st_cost_ctx *ctx = st_cost_ctx_new(&m, &c, NULL);
    ck_assert_ptr_eq(st_cost_model(ctx), &m);
    st_shard sh;
    st_op ops[ST_MAX_OPS];
    st_plan_shard(&p, &sh);
    int n = st_ops_layer(&m, &sh, 1, ops, ST_MAX_OPS);
    double fwd = 0, bwd = 0, coll[2][ST_GRP_COUNT] = {{0}};
    for (int i = 0; i < n; i++) {
        st_op_cost oc;
        st_group g;
        st_cost_op(ctx, &p, &ops[i], &oc);
        st_cost_group(&c, &p, ops[i].coll_group, &g);
        ck_assert(oc.fwd_s == st_cost_op_time(&c, NULL, &ops[i], p.dtype, 0));
        ck_assert(oc.bwd_s == st_cost_op_time(&c, NULL, &ops[i], p.dtype, 1));
        ck_assert(oc.fwd_coll_s == st_cost_collective(&c, NULL, ops[i].fwd_coll, &g, ops[i].coll_bytes));
        ck_assert(oc.bwd_coll_s == st_cost_collective(&c, NULL, ops[i].bwd_coll, &g, ops[i].coll_bytes));
        fwd += oc.fwd_s;
        bwd += oc.bwd_s;
        coll[0][ops[i].coll_group] += oc.fwd_coll_s;
        coll[1][ops[i].coll_group] += oc.bwd_coll_s;
    }
    st_chunk_cost cc;
    st_cost_chunk(ctx, &p, 1, &cc);
    REL(cc.fwd_s, fwd, 1e-12);
    REL(cc.bwd_s, bwd, 1e-12);
    ck_assert(coll[0][ST_GRP_TP] > 0 && coll[1][ST_GRP_TP] > 0);
    for (int g = 0; g < ST_GRP_COUNT; g++) {
        REL(cc.comm_fwd_g[g], coll[0][g], 1e-12);
        REL(cc.comm_bwd_g[g], coll[1][g], 1e-12);
    }
    st_cost_ctx_free(ctx);
}
END_TEST

/* The shard-cost cache when crowded (cost/estimate.c): once the eight slots a sharding may take all
 * hold others, or an entry cannot be allocated, an entry is priced into a slot that another sharding
 * held. 2 x ST_COST_CACHE shardings (micro-batch sizes) in one context, then each again, every
 * entry against a context of its own; then whole estimates on the crowded context, whose stage loop
 * holds the entry while it prices (cost_private.h: the entry lives until the next call). */
START_TEST(test_shard_cache_crowded) {
    st_model m;
    st_cluster c = cluster("dgx-a100-80g", 16);
    st_plan p;
    st_error err;
    ck_assert_int_eq(st_model_preset("gpt-1.7b", &m), 0);
    st_plan_defaults(&p);
    ck_assert_int_eq(st_plan_parse_spec("tp=2,pp=2,mbs=1,gbs=64,sp=1", &p, &err), 0);
    ck_assert_int_eq(st_plan_finalize(&p, &m, &c, 0, NULL, &err), 0);
    st_cost_ctx *ctx = st_cost_ctx_new(&m, &c, NULL);
    ck_assert_ptr_nonnull(ctx);
    const int n = 2 * ST_COST_CACHE;
    st_plan q = p;
    for (int pass = 0; pass < 2; pass++) {
        for (int i = 1; i <= n; i++) {
            q.mbs = i;
            const st__shard_cost *a = st__cost_shard(ctx, &q);
            st_cost_ctx *fresh = st_cost_ctx_new(&m, &c, NULL);
            ck_assert_ptr_nonnull(fresh);
            ck_assert_msg(a->mbs == i && memcmp(a, st__cost_shard(fresh, &q), offsetof(st__shard_cost, next)) == 0,
                          "pass %d, mbs %d: the cached entry differs from a fresh context's", pass, i);
            st_cost_ctx_free(fresh);
        }
        /* crowded indeed: every slot taken, and shardings priced before have been overwritten */
        int held = 0, first_held = 0;
        for (int k = 0; k < ST_COST_CACHE; k++) {
            held += ctx->cache[k] != NULL;
            first_held += ctx->cache[k] && ctx->cache[k]->mbs <= ST_COST_CACHE;
        }
        ck_assert_int_eq(held, ST_COST_CACHE);
        ck_assert_int_lt(first_held, ST_COST_CACHE);
    }
    static const char *const specs[] = {"tp=2,pp=2,mbs=1,gbs=64,sp=1", "tp=2,pp=4,vp=2,mbs=2,gbs=64,sp=1",
                                        "tp=4,pp=2,mbs=1,gbs=64,seq=4096,sp=1,zero=3"};
    for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++) {
        st_plan r;
        st_plan_defaults(&r);
        ck_assert_int_eq(st_plan_parse_spec(specs[i], &r, &err), 0);
        ck_assert_int_eq(st_plan_finalize(&r, &m, &c, 0, NULL, &err), 0);
        st_cost_ctx *fresh = st_cost_ctx_new(&m, &c, NULL);
        st_estimate a, b;
        ck_assert_int_eq(st_cost_estimate(ctx, &r, &a), 0);
        ck_assert_int_eq(st_cost_estimate(fresh, &r, &b), 0);
        ck_assert_msg(a.iteration_time_s == b.iteration_time_s && a.memory_peak_bytes == b.memory_peak_bytes &&
                          a.peak_stage == b.peak_stage && a.fits == b.fits,
                      "%s: %.17g s, %.17g bytes on the crowded context; %.17g s, %.17g bytes on a fresh one",
                      specs[i], a.iteration_time_s, a.memory_peak_bytes, b.iteration_time_s, b.memory_peak_bytes);
        st_cost_ctx_free(fresh);
    }
    st_cost_ctx_free(ctx);
}
END_TEST

/* Eager PyTorch's host issues a block's kernels at ST_HOST_S_PER_KERNEL each while the GPU runs
 * them: a list takes max(GPU time, host time), the stretch being host / GPU where the host is
 * slower. A small model cut eight ways (gpt-1.7b, tp 8, one 1,024-token sequence) is host-bound:
 * a chunk of its blocks costs its kernels x ST_HOST_S_PER_KERNEL, forward and backward. */
START_TEST(test_host_bound_block) {
    st_op three[3];
    memset(three, 0, sizeof three);
    for (int i = 0; i < 3; i++) three[i].kernels_fwd = 1, three[i].kernels_bwd = 2;
    st_cluster c = cluster("dgx-a100-80g", 24);
    REL(st_cost_host_stretch(&c, three, 3, 10e-6, 0), 3 * ST_HOST_S_PER_KERNEL / 10e-6, 1e-12);
    REL(st_cost_host_stretch(&c, three, 3, 100e-6, 1), 6 * ST_HOST_S_PER_KERNEL / 100e-6, 1e-12);
    ck_assert(st_cost_host_stretch(&c, three, 3, 1.0, 1) == 1);  /* GPU-bound: no stretch */
    ck_assert(st_cost_host_stretch(&c, three, 3, 0.0, 0) == 1);  /* nothing to stretch */
    st_model m;
    st_plan p;
    st_error err;
    ck_assert_int_eq(st_model_preset("gpt-1.7b", &m), 0); /* 24 blocks: 8 per stage */
    st_plan_defaults(&p);
    ck_assert_int_eq(st_plan_parse_spec("tp=8,pp=3,mbs=1,gbs=8,seq=1024,recompute=full", &p, &err), 0);
    ck_assert_int_eq(st_plan_finalize(&p, &m, &c, 0, NULL, &err), 0);
    st_shard sh;
    st_op ops[ST_MAX_OPS];
    st_plan_shard(&p, &sh);
    int n = st_ops_layer(&m, &sh, 8, ops, ST_MAX_OPS);
    double gpu[2] = {0, 0}, host[2] = {0, 0};
    for (int i = 0; i < n; i++)
        for (int b = 0; b < 2; b++) {
            gpu[b] += st_cost_op_time(&c, NULL, &ops[i], p.dtype, b);
            host[b] += (b ? ops[i].kernels_bwd : ops[i].kernels_fwd) * ST_HOST_S_PER_KERNEL;
        }
    ck_assert(gpu[0] < host[0] && gpu[1] < host[1]); /* the premise: host-bound both ways */
    st_cost_ctx *ctx = st_cost_ctx_new(&m, &c, NULL);
    st_chunk_cost cc;
    st_cost_chunk(ctx, &p, 1, &cc);
    REL(cc.fwd_s, 8 * host[0], 1e-12);
    REL(cc.bwd_s, 8 * host[1], 1e-12);
    st_cost_ctx_free(ctx);
}
END_TEST

/* A cluster's own per-kernel prices (framework.launch_overhead_us, host_us_per_kernel) and small-GEMM
 * half dimension (gpu.gemm_half_dim) replace cost/'s constants; 0 keeps them. */
START_TEST(test_cluster_kernel_prices) {
    st_cluster c = cluster("dgx-a100-80g", 8);
    ck_assert(st_cost_launch_s(&c) == ST_KERNEL_OVERHEAD_S);
    ck_assert(st_cost_host_s_per_kernel(&c) == ST_HOST_S_PER_KERNEL);
    ck_assert(st_cost_gemm_half_dim(&c.gpu) == ST_GEMM_HALF_DIM);
    st_op three[3];
    memset(three, 0, sizeof three);
    for (int i = 0; i < 3; i++) three[i].kernels_fwd = 2;
    st_op op;
    memset(&op, 0, sizeof op);
    op.cls = ST_OPC_GEMM;
    op.m = op.n = op.k = 256;
    op.fwd_flops = 2.0 * 256 * 256 * 256;
    op.kernels_fwd = 1;
    double t0 = st_cost_op_time(&c, NULL, &op, ST_DT_BF16, 0), f0 = 256 / (256 + ST_GEMM_HALF_DIM);
    c.launch_overhead_s = 10e-6;
    c.host_s_per_kernel = 5e-6;
    c.gpu.gemm_half_dim = 256;
    REL(st_cost_host_stretch(&c, three, 3, 10e-6, 0), 6 * 5e-6 / 10e-6, 1e-12);
    double gemm0_s = t0 - ST_KERNEL_OVERHEAD_S; /* compute-bound: the GEMM's time at the default curve */
    REL(st_cost_op_time(&c, NULL, &op, ST_DT_BF16, 0), gemm0_s * pow(f0 / 0.5, 3) + 10e-6, 1e-12);
}
END_TEST

START_TEST(test_ring_allreduce_one_node) {
    st_cluster c = cluster("dgx-a100-80g", 8);
    double S = 1e9;
    for (int n = 2; n <= 8; n *= 2) {
        st_group g = {.n = n, .per_node = n, .nodes = 1, .node_share = 8};
        double bw = 300e9 * ST_NVLINK_EFFICIENCY;
        double want = 2.0 * (n - 1) / n * S / bw + 2.0 * (n - 1) * 2e-6;
        REL(st_cost_collective(&c, NULL, ST_COLL_ALLREDUCE, &g, S), want, 1e-12);
        double ag = (double)(n - 1) / n * S / bw + (n - 1) * 2e-6;
        REL(st_cost_collective(&c, NULL, ST_COLL_ALLGATHER, &g, S), ag, 1e-12);
        REL(st_cost_collective(&c, NULL, ST_COLL_REDUCESCATTER, &g, S), ag, 1e-12);
    }
    st_group one = {.n = 1, .per_node = 1, .nodes = 1, .node_share = 8};
    ck_assert_double_eq(st_cost_collective(&c, NULL, ST_COLL_ALLREDUCE, &one, S), 0);
}
END_TEST

/* one rank per node: the ring crosses the fabric; every GPU of the node is in such a ring, so each
 * gets 1/8 of the node's 8 NICs */
START_TEST(test_ring_across_nodes) {
    st_cluster c = cluster("dgx-a100-80g", 64);
    double S = 4e9;
    st_group g = {.n = 8, .per_node = 1, .nodes = 8, .node_share = 8};
    double share = 8 * 25e9 * ST_NIC_EFFICIENCY / 8;
    double ring = 2.0 * 7 / 8 * S / share + 14 * 5e-6;
    REL(st_cost_collective(&c, NULL, ST_COLL_ALLREDUCE, &g, S), ring, 1e-9);
    /* a slower fabric makes it slower */
    c.oversubscription = 2;
    ck_assert(st_cost_collective(&c, NULL, ST_COLL_ALLREDUCE, &g, S) > 1.9 * ring);
    /* hierarchical: more ranks per node share the inter-node phase */
    c.oversubscription = 1;
    st_group h = {.n = 64, .per_node = 8, .nodes = 8, .node_share = 8};
    double t = st_cost_collective(&c, NULL, ST_COLL_ALLREDUCE, &h, S);
    double lower = 2.0 * 7 / 8 * (S / 8) / share; /* the cross-node phase alone */
    ck_assert(t > lower && t < ring);
}
END_TEST

/* Fabric tiers (issue 16): 16 DGX H100 nodes, leaves of 4 nodes (2:1 uplinks), pods of 8 (4:1). A
 * data-parallel group (tp 8) inside one leaf costs what it costs on a full-bisection fabric; one
 * across the two leaves of a pod what it costs with 2:1 everywhere; one across pods with 4:1. Blocks
 * of 3 nodes tiling the 16 divide neither a leaf nor a pod, so some copy straddles a pod: all pay 4:1. */
START_TEST(test_fabric_tiers) {
    st_cluster c = cluster("dgx-h100", 128), flat = c;
    c.leaf_nodes = 4, c.leaf_oversubscription = 2, c.pod_nodes = 8, c.pod_oversubscription = 4;
    ck_assert_int_eq(st_cluster_finalize(&c, NULL, NULL), 0);
    static const struct {
        int dp, tier;
        double over;
    } cases[] = {{2, ST_TIER_NODE, 1}, {4, ST_TIER_NODE, 1}, {8, ST_TIER_LEAF, 2}, {16, ST_TIER_POD, 4}};
    double S = 1e9;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        st_plan p;
        st_group g, gf;
        st_plan_defaults(&p);
        p.tp = 8, p.dp = cases[i].dp;
        st_cost_group(&c, &p, ST_GRP_DP, &g);
        ck_assert_int_eq(g.tier, cases[i].tier);
        REL(st_cost_tier_oversubscription(&c, g.tier), cases[i].over, 0);
        flat.oversubscription = cases[i].over;
        st_cost_group(&flat, &p, ST_GRP_DP, &gf);
        ck_assert_int_eq(gf.tier, ST_TIER_NODE); /* no tiers described: the flat ratio */
        REL(st_cost_collective(&c, NULL, ST_COLL_ALLREDUCE, &g, S),
            st_cost_collective(&flat, NULL, ST_COLL_ALLREDUCE, &gf, S), 1e-12);
        /* ring across nodes in closed form: 2(n-1)/n S over a GPU's NIC share / the tier's ratio */
        double share = 8 * 50e9 * ST_NIC_EFFICIENCY / 8 / cases[i].over, n = cases[i].dp;
        REL(st_cost_collective(&c, NULL, ST_COLL_ALLREDUCE, &g, S), 2 * (n - 1) / n * S / share + 2 * (n - 1) * 5e-6,
            1e-12);
    }
    st_plan p;
    st_group g;
    st_plan_defaults(&p);
    p.tp = 8, p.dp = 3;
    st_cost_group(&c, &p, ST_GRP_DP, &g);
    ck_assert_int_eq(g.tier, ST_TIER_POD);
    /* inside one NVLink domain no tier applies */
    p.dp = 1;
    st_cost_group(&c, &p, ST_GRP_TP, &g);
    ck_assert_int_eq(g.tier, ST_TIER_NODE);
    /* a tier above the job's nodes: a 16-node job under leaves of 32 pays nothing */
    c.leaf_nodes = 32, c.pod_nodes = 0;
    p.dp = 16;
    st_cost_group(&c, &p, ST_GRP_DP, &g);
    ck_assert_int_eq(g.tier, ST_TIER_NODE);
    /* bad tiers: a pod that is not whole leaves, a ratio below 1, a spine without leaves */
    st_error err;
    c.leaf_nodes = 4, c.pod_nodes = 6;
    ck_assert_int_eq(st_cluster_finalize(&c, NULL, &err), ST_EINVAL);
    ck_assert_str_eq(err.key, "inter_node.spine.nodes");
    c.pod_nodes = 8, c.leaf_oversubscription = 0.5;
    ck_assert_int_eq(st_cluster_finalize(&c, NULL, &err), ST_EINVAL);
    ck_assert_str_eq(err.key, "inter_node.leaf.oversubscription");
    c.leaf_oversubscription = 1, c.leaf_nodes = 0;
    ck_assert_int_eq(st_cluster_finalize(&c, NULL, &err), ST_EINVAL);
    ck_assert_str_eq(err.key, "inter_node.spine");
}
END_TEST

/* Rails (issue 16): on a rail-optimised fabric an all-to-all's bytes for another rail cross NVLink
 * once more (NCCL's PXN). 2 nodes of 8 GPUs on a slow domain (PCIe, 25 GB/s) with fast NICs, so the
 * in-node term sets the time: 16 ranks, 8 per node; without rails 7/16 of S crosses the domain,
 * with them also 8/16 x 3/4 (the cross-node part; the node's 4 NICs are 4 rails, 3 of them foreign). */
START_TEST(test_rail_alltoall_relay) {
    st_cluster c = cluster("l40s-pcie-8", 16);
    c.intra_latency_s = c.inter_latency_s = 0;
    c.nic_bytes_per_s = 1e12;
    st_group g = {.n = 16, .per_node = 8, .nodes = 2, .node_share = 8};
    double S = 1e9, bi = st_cost_domain_bytes_per_s(&c, 8);
    REL(st_cost_collective(&c, NULL, ST_COLL_ALLTOALL, &g, S), 7.0 / 16 * S / bi, 1e-12);
    c.rail_optimized = 1;
    REL(st_cost_collective(&c, NULL, ST_COLL_ALLTOALL, &g, S), (7.0 / 16 + 8.0 / 16 * 3 / 4) * S / bi, 1e-12);
}
END_TEST

/* NVLink SHARP (issue 16, opt-in): an all-reduce of S over 8 H100s moves (1 + 1/8) S per GPU at
 * 309/370 of the ring's rate, 1.30x faster than the ring's 2 x 7/8 S, as nccl-tests measures (busBw
 * ~480 vs ~370 GB/s); on 2 GPUs the ring stays faster and is kept; all-gather is not changed. */
START_TEST(test_nvls_allreduce) {
    st_cluster c = cluster("dgx-h100", 8);
    c.intra_latency_s = 0;
    double S = 1e9, b = 450e9 * ST_NVLINK_EFFICIENCY;
    st_group g8 = {.n = 8, .per_node = 8, .nodes = 1, .node_share = 8}, g2 = {.n = 2, .per_node = 2, .nodes = 1};
    double ring8 = st_cost_collective(&c, NULL, ST_COLL_ALLREDUCE, &g8, S);
    double ring2 = st_cost_collective(&c, NULL, ST_COLL_ALLREDUCE, &g2, S);
    double ag = st_cost_collective(&c, NULL, ST_COLL_ALLGATHER, &g8, S);
    ck_assert(c.nvls_capable && !c.sharp_domain); /* the preset has it, off */
    c.sharp_domain = 1;
    double nvls8 = st_cost_collective(&c, NULL, ST_COLL_ALLREDUCE, &g8, S);
    REL(nvls8, 1.125 * S / (b * 309 / 370), 1e-12);
    REL(ring8 / nvls8, 480.0 / 370, 0.01);
    REL(st_cost_collective(&c, NULL, ST_COLL_ALLREDUCE, &g2, S), ring2, 0);
    REL(st_cost_collective(&c, NULL, ST_COLL_ALLGATHER, &g8, S), ag, 0);
    /* with latencies, NVLS's fixed 25 us (NCCL's tuning model) */
    c.intra_latency_s = 2e-6;
    REL(st_cost_collective(&c, NULL, ST_COLL_ALLREDUCE, &g8, S), nvls8 + ST_NVLS_LATENCY_S, 1e-12);
    /* A100's NVSwitch has none; an xGMI mesh cannot have it */
    st_cluster a = cluster("dgx-a100-80g", 8), x = cluster("mi300x", 8);
    ck_assert(!a.nvls_capable && !x.nvls_capable);
    st_error err;
    x.sharp_domain = 1;
    ck_assert_int_eq(st_cluster_finalize(&x, NULL, &err), ST_EINVAL);
    ck_assert_str_eq(err.key, "scale_up.sharp");
}
END_TEST

/* InfiniBand SHARP (CollNet) and NVLS-tree across 8 HGX H20 nodes of 4 NICs (issue 16): the
 * hierarchical all-reduce's cross-node phase moves S/8 once up and once down the switch tree
 * instead of 2 x 7/8 x S/8, which makes it the fastest algorithm; with NVLink SHARP too, its
 * in-node phase is NVLS's (1 + 1/8) S. */
START_TEST(test_collnet_allreduce) {
    st_cluster c = cluster("hgx-h20", 64);
    c.intra_latency_s = c.inter_latency_s = 0;
    double S = 1e9, bi = 450e9 * ST_NVLINK_EFFICIENCY, share = 4 * 50e9 * ST_NIC_EFFICIENCY / 8;
    st_group g = {.n = 64, .per_node = 8, .nodes = 8, .node_share = 8};
    double plain = st_cost_collective(&c, NULL, ST_COLL_ALLREDUCE, &g, S);
    c.sharp_inter = 1;
    double collnet = 1.75 * S / bi + S / 8 / share;
    REL(st_cost_collective(&c, NULL, ST_COLL_ALLREDUCE, &g, S), collnet, 1e-12);
    ck_assert(collnet < plain);
    c.sharp_domain = 1;
    REL(st_cost_collective(&c, NULL, ST_COLL_ALLREDUCE, &g, S), 1.125 * S / (bi * 309 / 370) + S / 8 / share, 1e-12);
}
END_TEST

/* Issue 16's closed forms. An all-reduce of n GPUs inside a GB200 NVL72 domain (18 host nodes of 4)
 * costs what n GPUs on one NVSwitch cost: the ring on the domain's 900 GB/s ports, whatever host
 * nodes the ranks sit on; a DGX B200 (same NVLink 5 rate) gives the same time for n <= 8. */
START_TEST(test_nvl72_domain_allreduce) {
    st_cluster c = cluster("gb200-nvl72", 72), b = cluster("dgx-b200", 72);
    st_plan p;
    double S = 1e9, bw = 900e9 * ST_NVLINK_EFFICIENCY;
    ck_assert_int_eq(c.nodes, 18);
    ck_assert_int_eq(st_cluster_domain(&c), 72);
    st_plan_defaults(&p);
    for (int n = 2; n <= 72; n++) {
        if (72 % n) continue;
        st_group g;
        p.tp = 72 / n, p.dp = n, p.pp = 1, p.cp = 1;
        st_cost_group(&c, &p, ST_GRP_DP, &g); /* n ranks 72/n apart: over 18/(72/n)... host nodes */
        ck_assert_int_eq(g.n, n);
        ck_assert_int_eq(g.nodes, 1);
        double want = 2.0 * (n - 1) / n * S / bw + 2.0 * (n - 1) * 2e-6;
        REL(st_cost_collective(&c, NULL, ST_COLL_ALLREDUCE, &g, S), want, 1e-12);
        if (n <= 8) {
            st_group one = {.n = n, .per_node = n, .nodes = 1, .node_share = 8};
            REL(st_cost_collective(&b, NULL, ST_COLL_ALLREDUCE, &one, S), want, 1e-12);
        }
    }
    /* beyond the domain: 144 GPUs, dp 144 spans two domains and pays the NICs */
    st_cluster c2 = cluster("gb200-nvl72", 144);
    st_group g2;
    p.tp = 1, p.dp = 144;
    st_cost_group(&c2, &p, ST_GRP_DP, &g2);
    ck_assert_int_eq(g2.nodes, 2);
    ck_assert_int_eq(g2.per_node, 72);
    ck_assert(st_cost_collective(&c2, NULL, ST_COLL_ALLREDUCE, &g2, S) > 2.0 * 143 / 144 * S / bw);
}
END_TEST

/* Issue 16's partial domains, closed forms: on 256 GPUs of GB200 NVL72, with 64 GPUs a domain a tp 8
 * all-reduce is one NVSwitch's ring and an ep 64 all-to-all stays in its domain on the 900 GB/s
 * ports; filled in order (72, 72, 72, 40) the ep group straddling 72 has 8 ranks a domain and sends
 * 56/64 of its bytes through the NIC share (4 x 400 Gb/s for 4 GPUs: 50 GB/s each). */
START_TEST(test_partial_domain_collectives) {
    st_cluster fill = cluster("gb200-nvl72", 256), part = cluster("gb200-nvl72:domain_gpus=64", 256);
    double S = 1e9, bw = 900e9 * ST_NVLINK_EFFICIENCY, share = 50e9 * ST_NIC_EFFICIENCY;
    st_plan p;
    st_group g;
    st_plan_defaults(&p);
    p.tp = 8, p.pp = 1, p.dp = 32, p.cp = 1, p.ep = 1;
    st_cost_group(&part, &p, ST_GRP_TP, &g);
    REL(st_cost_collective(&part, NULL, ST_COLL_ALLREDUCE, &g, S), 2.0 * 7 / 8 * S / bw + 2.0 * 7 * 2e-6, 1e-12);
    p.tp = 1, p.dp = 256, p.ep = 64;
    st_cost_group(&part, &p, ST_GRP_EP, &g);
    double inside = 63.0 / 64 * S / bw + 7 * 2e-6; /* latency steps 1 + log2 64 */
    REL(st_cost_collective(&part, NULL, ST_COLL_ALLTOALL, &g, S), inside, 1e-12);
    st_cost_group(&fill, &p, ST_GRP_EP, &g);
    double across = fmax(7.0 / 64 * S / bw, 56.0 / 64 * S / share) + 7 * 5e-6;
    REL(st_cost_collective(&fill, NULL, ST_COLL_ALLTOALL, &g, S), across, 1e-12);
    ck_assert(across > 10 * inside);
}
END_TEST

/* An 8-GPU MI300X xGMI mesh: a collective over n of the 8 GPUs runs on n - 1 of each GPU's 7 links
 * of 64 GB/s per direction (448 in all): ring all-reduce 2(n-1)/n S / ((n-1) 64 GB/s x eff) */
START_TEST(test_xgmi_mesh_allreduce) {
    st_cluster c = cluster("mi300x", 8);
    double S = 1e9, link = 448e9 / 7 * ST_NVLINK_EFFICIENCY;
    ck_assert_int_eq(c.fabric, ST_FABRIC_XGMI);
    for (int n = 2; n <= 8; n++) {
        st_group g = {.n = n, .per_node = n, .nodes = 1, .node_share = 8};
        double want = 2.0 * (n - 1) / n * S / ((n - 1) * link) + 2.0 * (n - 1) * 2e-6;
        REL(st_cost_collective(&c, NULL, ST_COLL_ALLREDUCE, &g, S), want, 1e-12);
        REL(st_cost_domain_bytes_per_s(&c, n), (n - 1) * link, 1e-12);
    }
    /* the switch of an NVSwitch node gives every group the whole port */
    st_cluster h = cluster("dgx-h100", 8);
    REL(st_cost_domain_bytes_per_s(&h, 2), st_cost_domain_bytes_per_s(&h, 8), 1e-15);
    /* the simulator's port carries all 7 links */
    st_net net;
    st_cost_net(&c, &net);
    REL(net.nvlink_bytes_per_s, 7 * link, 1e-12);
}
END_TEST

/* An MoE model of 64 experts (Mixtral's blocks with 64 experts, 8 per token) on 64 GPUs, ep = 64:
 * on GB200 NVL72 the expert-parallel all-to-all stays on NVLink (one domain, 16 host nodes), on DGX
 * B200 it crosses 8 nodes' NICs; the estimate and the simulator agree on NVL72. */
START_TEST(test_moe_alltoall_nvl72) {
    st_model m;
    st_error err;
    ck_assert_int_eq(st_model_preset("mixtral-8x7b", &m), 0);
    m.experts = 64, m.experts_topk = 8, m.layers = 4, m.seq_len = 4096;
    ck_assert_int_eq(st_model_finalize(&m, NULL, &err), 0);
    double ep_s[2], it_s[2];
    const char *names[] = {"gb200-nvl72", "dgx-b200"};
    for (int i = 0; i < 2; i++) {
        st_cluster c = cluster(names[i], 64);
        st_plan p;
        st_estimate e;
        st_group g;
        st_plan_defaults(&p);
        ck_assert_int_eq(st_plan_parse_spec("tp=1,pp=1,ep=64,gbs=64", &p, &err), 0);
        ck_assert_int_eq(st_plan_finalize(&p, &m, &c, 0, NULL, &err), 0);
        st_cost_group(&c, &p, ST_GRP_EP, &g);
        ck_assert_int_eq(g.nodes, i == 0 ? 1 : 8);
        st_cost_ctx *ctx = st_cost_ctx_new(&m, &c, NULL);
        ck_assert_int_eq(st_cost_estimate(ctx, &p, &e), 0);
        ep_s[i] = e.breakdown.ep_comm_s, it_s[i] = e.iteration_time_s;
        st_cost_ctx_free(ctx);
    }
    ck_assert(ep_s[0] > 0 && ep_s[0] < ep_s[1] / 5);
    ck_assert(it_s[0] < it_s[1]);
}
END_TEST

/* DeepSeek-V3's node-limited routing (report Sec. 2.1.2, 3.2.2): with ep over 8 nodes a token's
 * top-8 copies reach up to 8 nodes, with 8 groups and the top 4 at most 4; each crosses the fabric
 * once a node, so the all-to-all's fabric volume halves (closed form), and the estimate and the
 * simulator both charge the expert all-to-all about half of what they charge without the limit */
START_TEST(test_node_limited_routing) {
    st_model m;
    st_error err;
    ck_assert_int_eq(st_model_preset("deepseek-v3", &m), 0);
    ck_assert_int_eq(st_model_token_nodes(&m, 8), 4);
    ck_assert_int_eq(st_model_token_nodes(&m, 16), 8); /* a group on 2 nodes: 4 groups reach 8 */
    ck_assert_int_eq(st_model_token_nodes(&m, 2), 2);
    st_model free_routing = m;
    free_routing.router_groups = free_routing.router_group_topk = 0;
    ck_assert_int_eq(st_model_token_nodes(&free_routing, 8), 8);
    ck_assert_int_eq(st_model_token_nodes(&free_routing, 64), 8);

    st_cluster c = cluster("dgx-h100", 64);
    st_group g = {.n = 64, .per_node = 8, .nodes = 8, .node_share = 8};
    double bytes = 64e6, lat = (1 + log2(64)) * c.inter_latency_s;
    double plain = st_cost_collective(&c, NULL, ST_COLL_ALLTOALL, &g, bytes);
    REL(st_cost_alltoall_routed(&c, NULL, &g, bytes, 8, 8), plain, 1e-12); /* 8 nodes of 8: no saving */
    REL(st_cost_alltoall_routed(&c, NULL, &g, bytes, 8, 4) - lat, (plain - lat) / 2, 1e-12);
    st_group one = {.n = 8, .per_node = 8, .nodes = 1, .node_share = 8};
    REL(st_cost_alltoall_routed(&c, NULL, &one, bytes, 8, 1),
        st_cost_collective(&c, NULL, ST_COLL_ALLTOALL, &one, bytes), 1e-12);

    double est[2], sim[2];
    for (int i = 0; i < 2; i++) {
        st_model x = i ? free_routing : m;
        x.layers = 4, x.first_dense = 1, x.mtp_layers = 0;
        ck_assert_int_eq(st_model_finalize(&x, NULL, &err), 0);
        st_plan p;
        st_estimate e;
        st_plan_defaults(&p);
        ck_assert_int_eq(st_plan_parse_spec("tp=1,pp=1,ep=64,gbs=64", &p, &err), 0);
        ck_assert_int_eq(st_plan_finalize(&p, &x, &c, 0, NULL, &err), 0);
        st_cost_ctx *ctx = st_cost_ctx_new(&x, &c, NULL);
        ck_assert_int_eq(st_cost_estimate(ctx, &p, &e), 0);
        est[i] = e.breakdown.ep_comm_s;
        st_lowered l;
        ck_assert_int_eq(st_lower(ctx, &p, &l, &err), 0);
        st_sim_result r;
        ck_assert_msg(st_sim_run(&l, 0, NULL, &r, &err) == 0, "%s", err.text);
        sim[i] = r.ranks[0].bd_s[ST_BD_EP];
        st_sim_result_destroy(&r);
        st_lowered_destroy(&l);
        st_cost_ctx_free(ctx);
    }
    ck_assert_msg(est[0] > 0.45 * est[1] && est[0] < 0.6 * est[1], "estimate %g vs %g", est[0], est[1]);
    ck_assert_msg(sim[0] > 0.45 * sim[1] && sim[0] < 0.6 * sim[1], "sim %g vs %g", sim[0], sim[1]);
}
END_TEST

START_TEST(test_pipeline_closed_forms) {
    double t = 0.25, bubble;
    for (int pp = 1; pp <= 16; pp *= 2)
        for (int64_t m = pp; m <= 64; m *= 2)
            for (int vp = 1; vp <= 4; vp++) {
                double ts[1] = {t};
                int cnt[1] = {pp};
                double T = st_cost_pipeline_s(ts, cnt, 1, vp, m, vp > 1 ? ST_SCHED_INTERLEAVED : ST_SCHED_1F1B, 0,
                                              0, &bubble);
                REL(T, ((double)m + (pp - 1.0) / vp) * t, 1e-12);
                /* bubble fraction of the ideal time: (pp-1)/m for 1F1B, (pp-1)/(m vp) interleaved */
                REL(bubble / (m * t), (pp - 1.0) / ((double)m * vp), 1e-12);
            }
    /* unequal stages: (m - 1) * slowest + sum */
    double ts[2] = {1.0, 2.0};
    int cnt[2] = {3, 1};
    REL(st_cost_pipeline_s(ts, cnt, 2, 1, 10, ST_SCHED_1F1B, 0, 0, &bubble), 9 * 2.0 + 5.0, 1e-12);
    double b1;
    /* ZB-V, stages of two chunks (f forward, b input and b weight gradient each): with f = b the
     * bubble is (pp - 1) b, a sixth of 1F1B's (pp - 1) 6 b; forward-bound, (2 pp - 3) f - (pp - 2) b
     * and then (2 pp - 2) f - pp b (an event simulation of torch's order; tests/test_lower.c plays
     * it out) */
    for (int pp = 2; pp <= 16; pp *= 2) {
        double f = 1, b = 1, t = 2 * (f + 2 * b), bv;
        int cnt[1] = {pp};
        double ts[1] = {t};
        REL(st_cost_pipeline_s(ts, cnt, 1, 2, 40, ST_SCHED_ZBV, 2 * f, 4 * b, &bv), 40 * t + (pp - 1) * b, 1e-12);
        st_cost_pipeline_s(ts, cnt, 1, 1, 40, ST_SCHED_1F1B, 0, 0, &b1);
        REL(bv, b1 / 6, 1e-12);
        f = 1.5, ts[0] = 2 * (f + 2 * b); /* forward-bound: the second term */
        st_cost_pipeline_s(ts, cnt, 1, 2, 40, ST_SCHED_ZBV, 2 * f, 4 * b, &bv);
        REL(bv, (2 * pp - 3) * f - (pp - 2) * b, 1e-12);
        f = 4, ts[0] = 2 * (f + 2 * b); /* the third */
        st_cost_pipeline_s(ts, cnt, 1, 2, 40, ST_SCHED_ZBV, 2 * f, 4 * b, &bv);
        REL(bv, (2 * pp - 2) * f - pp * b, 1e-12);
    }
    /* DualPipe (DeepSeek-V3 report, Table 2), per chunk F forward, B whole backward, W its weight half,
     * F&B = F + B overlapped: m / 2 pairs (a forward and a backward of each of the rank's two stages)
     * and the bubble (pp / 2 - 1)(F&B + B - 3W), below 1F1B's (pp - 1)(F + B) and ZB1P's
     * (pp - 1)(F + B - 2W) at the same chunk times; none with pp = 2 */
    for (int pp = 2; pp <= 16; pp *= 2) {
        double F = 1.5, W = 1, B = 2 * W, pair = 2 * (F + B), bd;
        int cnt[1] = {pp}; /* every rank alike */
        double ts[1] = {pair};
        double T = st_cost_pipeline_s(ts, cnt, 1, 1, 40, ST_SCHED_DUALPIPE, 2 * F, 4 * W, &bd);
        REL(bd + 1, (pp / 2 - 1) * ((F + B) + B - 3 * W) + 1, 1e-12);
        REL(T, 20 * pair + bd, 1e-12);
        ck_assert(pp == 2 ? bd == 0 : bd < (pp - 1) * (F + B - 2 * W));
    }
}
END_TEST

/* uniform in [0, 1) (Knuth's MMIX LCG, top 53 bits) */
static double lcg(uint64_t *x) {
    *x = *x * 6364136223846793005ULL + 1442695040888963407ULL;
    return (double)(*x >> 11) / 9007199254740992.0;
}

/* A reference for st_cost_zb_pipeline_s: the same order (src/lower/lower.c, lower_stage: torch's ZB1P,
 * stage d's weight halves d input halves late), written out as a table per stage, and the same sends
 * (each stage's in program order on one stream, each held until its receive is reached) played out by
 * repeated sweeps, each stage going as far as its receives allow, over whole tables of passes and sends,
 * so that neither the estimate's closed form, its rings nor its wake-ups are shared. */
static double zb_reference(const double *f, const double *b, const double *w, int pp, int m) {
    enum { P = 16, M = 48 };
    static int kind_at[P][3 * M], mb_at[P][3 * M], kind_of[P][2 * M], mb_of[P][2 * M];
    static double ready[P][2 * M]; /* each stage's sends, in the order made */
    double clk[P] = {0}, free_s[P] = {0};
    int pos[P] = {0}, placed = 0, made[P] = {0}, gone[P] = {0};
    ck_assert(pp <= P && m <= M);
    for (int d = 0; d < pp; d++) { /* F0..F(warm-1); F(warm+i) B(i) W(i-d) for each i; the last d W */
        int warm = pp - 1 - d < m ? pp - 1 - d : m, n = 0;
        for (int i = 0; i < warm; i++) kind_at[d][n] = 0, mb_at[d][n++] = i;
        for (int i = 0; i < m; i++) {
            if (warm + i < m) kind_at[d][n] = 0, mb_at[d][n++] = warm + i;
            kind_at[d][n] = 1, mb_at[d][n++] = i;
            if (i >= d) kind_at[d][n] = 2, mb_at[d][n++] = i - d;
        }
        for (int i = m - d > 0 ? m - d : 0; i < m; i++) kind_at[d][n] = 2, mb_at[d][n++] = i;
        ck_assert_int_eq(n, 3 * m);
    }
    while (placed < 3 * m * pp) {
        int before = placed;
        for (int d = 0; d < pp; d++)
            while (pos[d] < 3 * m) { /* stage d's next pass, if its receive meets its send */
                int kind = kind_at[d][pos[d]], i = mb_at[d][pos[d]];
                double start = clk[d];
                int from = kind == 0 && d > 0 ? d - 1 : kind == 1 && d < pp - 1 ? d + 1 : -1;
                if (from >= 0) {
                    int h = gone[from]; /* the sender's stream runs its sends one after another */
                    if (h == made[from] || kind_of[from][h] != kind || mb_of[from][h] != i) break;
                    start = fmax(start, fmax(ready[from][h], free_s[from]));
                    free_s[from] = start;
                    gone[from]++;
                }
                clk[d] = start + (kind == 0 ? f[d] : kind == 1 ? b[d] : w[d]);
                if ((kind == 0 && d < pp - 1) || (kind == 1 && d > 0))
                    kind_of[d][made[d]] = kind, mb_of[d][made[d]] = i, ready[d][made[d]++] = clk[d];
                pos[d]++, placed++;
            }
        ck_assert_int_gt(placed, before);
    }
    double end = 0;
    for (int d = 0; d < pp; d++)
        if (clk[d] > end) end = clk[d];
    return end;
}

/* ZB-H1 in the lowering's order. Equal stages with mb >= pp: mb (f + b + w) + (pp - 1) max(f, b, f + b - w),
 * the paper's (pp - 1)(f + b - w) where w <= f, b (one stage: no bubble), and that closed form is the
 * played-out reference's time over random equal stages, w beyond f and b included, and past the exact
 * values (fewer micro-batches than pp the estimate plays out). Random unequal stages, pp 1-16 and 1-48
 * micro-batches: the reference's time to the last bit, so is the simulator's (tests/test_lower.c,
 * test_zb_unequal); the bubble is the time beyond mb times the slowest stage. */
START_TEST(test_zb_pipeline) {
    double f[16], b[16], w[16], bubble;
    for (int pp = 1; pp <= 12; pp++)
        for (int m = pp; m <= 40; m += 13) {
            for (int d = 0; d < pp; d++) f[d] = 1.5, b[d] = 1.25, w[d] = 0.75;
            double want = m * 3.5 + (pp - 1) * 2.0;
            REL(st_cost_zb_pipeline_s(f, b, w, pp, m, &bubble), want, 1e-12);
            REL(bubble + 1, want - m * 3.5 + 1, 1e-12);
        }
    uint64_t seed = 12345;
    for (int trial = 0; trial < 3000; trial++) { /* equal stages: the closed form against the play */
        int pp = 1 + (int)(lcg(&seed) * 16), m = 1 + (int)(lcg(&seed) * 48);
        double fe = 0.01 + 3.0 * lcg(&seed), be = 0.01 + 3.0 * lcg(&seed), we = 4.0 * lcg(&seed);
        if (trial % 4 == 0) we = fe < be ? fe : be; /* the ties between the three terms */
        if (trial % 4 == 1) fe = be;
        for (int d = 0; d < pp; d++) f[d] = fe, b[d] = be, w[d] = we;
        double T = st_cost_zb_pipeline_s(f, b, w, pp, m, &bubble), ref = zb_reference(f, b, w, pp, m);
        ck_assert_msg(fabs(T / ref - 1) < 1e-12, "equal, pp %d, %d micro-batches: %.12g s, reference %.12g s", pp, m,
                      T, ref);
        REL(bubble + fe + be + we, T - m * (fe + be + we) + fe + be + we, 1e-12);
    }
    for (int trial = 0; trial < 3000; trial++) {
        int pp = 1 + (int)(lcg(&seed) * 16), m = 1 + (int)(lcg(&seed) * 48);
        double max = 0;
        for (int d = 0; d < pp; d++) {
            f[d] = 0.01 + 3.0 * lcg(&seed);
            b[d] = 0.01 + 3.0 * lcg(&seed);
            w[d] = 3.0 * lcg(&seed);
            if (f[d] + b[d] + w[d] > max) max = f[d] + b[d] + w[d];
        }
        if (pp > 2 && trial % 2) /* the estimate's usual shape: a head, equal middle stages, a tail */
            for (int d = 2; d < pp - 1; d++) f[d] = f[1], b[d] = b[1], w[d] = w[1];
        double T = st_cost_zb_pipeline_s(f, b, w, pp, m, &bubble), ref = zb_reference(f, b, w, pp, m);
        /* (one stage is an equal pipeline: its closed form rounds otherwise) */
        ck_assert_msg(pp == 1 ? fabs(T / ref - 1) < 1e-12 : T == ref,
                      "pp %d, %d micro-batches: %.17g s, reference %.17g s", pp, m, T, ref);
        max = 0;
        for (int d = 0; d < pp; d++)
            if (f[d] + b[d] + w[d] > max) max = f[d] + b[d] + w[d];
        REL(bubble + max, T - m * max + max, 1e-12);
    }
    /* long pipelines, many micro-batches: the play never deadlocks nor overfills a stream */
    for (int pp = 32; pp <= 512; pp *= 4) {
        double fl[512], bl[512], wl[512];
        for (int d = 0; d < pp; d++) fl[d] = 1.0 + (d % 3) * 0.25, bl[d] = 2.0 - (d % 5) * 0.125, wl[d] = 1.0;
        double T = st_cost_zb_pipeline_s(fl, bl, wl, pp, 4 * pp, &bubble);
        ck_assert_msg(isfinite(T) && T >= 4 * pp * 4.0, "pp %d: %g s", pp, T);
    }
}
END_TEST

/* nccl-tests' busBw factors (doc/PERFORMANCE.md), and the ring times of st_cost_collective use them */
START_TEST(test_bus_factor) {
    REL(st_cost_bus_factor(ST_COLL_ALLREDUCE, 8), 2.0 * 7 / 8, 1e-15);
    REL(st_cost_bus_factor(ST_COLL_ALLGATHER, 8), 7.0 / 8, 1e-15);
    REL(st_cost_bus_factor(ST_COLL_REDUCESCATTER, 4), 3.0 / 4, 1e-15);
    REL(st_cost_bus_factor(ST_COLL_ALLTOALL, 16), 15.0 / 16, 1e-15);
    ck_assert_double_eq(st_cost_bus_factor(ST_COLL_BROADCAST, 8), 1);
    ck_assert_double_eq(st_cost_bus_factor(ST_COLL_SENDRECV, 2), 1);
    ck_assert_double_eq(st_cost_bus_factor(ST_COLL_NONE, 8), 0);
    ck_assert_double_eq(st_cost_bus_factor(ST_COLL_ALLREDUCE, 1), 0); /* one rank moves nothing */
    /* one NVLink domain without latency: the time is factor x S / the bus bandwidth */
    st_cluster c = cluster("dgx-a100-80g", 8);
    c.intra_latency_s = 0;
    st_group g = {.n = 4, .per_node = 4, .nodes = 1, .node_share = 8};
    for (int k = ST_COLL_ALLREDUCE; k < ST_COLL_COUNT; k++)
        REL(st_cost_collective(&c, NULL, (st_coll)k, &g, 1e9),
            st_cost_bus_factor((st_coll)k, 4) * 1e9 / (300e9 * ST_NVLINK_EFFICIENCY), 1e-12);
}
END_TEST

/* Bytes of model state per parameter (Rajbhandari et al. 2020, ZeRO, Sec. 3.1 and Fig. 1) */
START_TEST(test_state_bytes) {
    ck_assert_double_eq(st_cost_weight_bytes(ST_DT_BF16), 2);
    ck_assert_double_eq(st_cost_weight_bytes(ST_DT_FP16), 2);
    ck_assert_double_eq(st_cost_weight_bytes(ST_DT_FP8), 2); /* fp8 GEMMs, bf16 weights */
    ck_assert_double_eq(st_cost_weight_bytes(ST_DT_FP32), 4);
    ck_assert_double_eq(st_cost_weight_bytes(ST_DT_TF32), 4);
    st_state_bytes b;
    /* bf16 weights, fp32 gradients (Megatron-LM), Adam: 2 + 4 + 12 = 18, the shard ignored at zero 0 */
    st_cost_state_bytes(ST_DT_BF16, 4, 0, ST_OFF_NONE, 64, &b);
    ck_assert_double_eq(b.weights, 2);
    ck_assert_double_eq(b.grads, 4);
    ck_assert_double_eq(b.optimizer, 12);
    ck_assert_double_eq(b.total, 18);
    /* ZeRO-1 over d ranks: 6 + 12/d (Megatron-LM docs/source/distrib_optimizer.md); 2: 2 + 16/d;
     * 3 (FSDP2: fp32 sharded weights are the master copy): 4/d + 4/d + 8/d = 16/d */
    for (double d = 1; d <= 64; d *= 2) {
        st_cost_state_bytes(ST_DT_BF16, 4, 1, ST_OFF_NONE, d, &b);
        REL(b.total, 6 + 12 / d, 1e-15);
        REL(b.optimizer, 12 / d, 1e-15);
        st_cost_state_bytes(ST_DT_BF16, 4, 2, ST_OFF_NONE, d, &b);
        REL(b.total, 2 + 16 / d, 1e-15);
        st_cost_state_bytes(ST_DT_BF16, 4, 3, ST_OFF_NONE, d, &b);
        REL(b.total, 16 / d, 1e-15);
        REL(b.weights, 4 / d, 1e-15);
        REL(b.optimizer, 8 / d, 1e-15);
        /* with the optimizer on the host the 16-bit shard stays: 2/d + 4/d */
        st_cost_state_bytes(ST_DT_BF16, 4, 3, ST_OFF_OPTIMIZER, d, &b);
        REL(b.total, 6 / d, 1e-15);
    }
    /* the paper's Figure 1: 7.5B parameters, 16-bit gradients (K = 12), 64 GPUs: 120 GB, 31.4 GB,
     * 16.6 GB, 1.9 GB per GPU */
    const double P = 7.5e9, want[4] = {120e9, 31.4e9, 16.6e9, 1.9e9};
    for (int z = 0; z < 4; z++) {
        st_cost_state_bytes(ST_DT_FP16, 2, z, ST_OFF_NONE, 64, &b);
        REL(P * b.total, want[z], 0.02);
    }
    st_cost_state_bytes(ST_DT_FP16, 2, 0, ST_OFF_NONE, 1, &b);
    ck_assert_double_eq(b.total, 16); /* 2 + 2 + 12: the paper's 16 Psi */
    /* fp32 weights are their own master copy: 4 + 4 + m, v (8) */
    st_cost_state_bytes(ST_DT_FP32, 4, 0, ST_OFF_NONE, 8, &b);
    ck_assert_double_eq(b.optimizer, 8);
    ck_assert_double_eq(b.total, 16);
    st_cost_state_bytes(ST_DT_TF32, 4, 1, ST_OFF_NONE, 4, &b);
    ck_assert_double_eq(b.total, 4 + 4 + 8.0 / 4);
    st_cost_state_bytes(ST_DT_FP8, 4, 0, ST_OFF_NONE, 1, &b);
    ck_assert_double_eq(b.total, 18);
    /* offload: the optimizer states (and the weights) live on the host */
    st_cost_state_bytes(ST_DT_BF16, 4, 1, ST_OFF_OPTIMIZER, 8, &b);
    ck_assert_double_eq(b.optimizer, 0);
    ck_assert_double_eq(b.total, 6);
    st_cost_state_bytes(ST_DT_BF16, 4, 3, ST_OFF_PARAMS, 8, &b);
    ck_assert_double_eq(b.weights, 0);
    ck_assert_double_eq(b.optimizer, 0);
    ck_assert_double_eq(b.total, 4.0 / 8);
}
END_TEST

/* Micro-batches held in flight (Megatron-LM schedules.py; Korthikanti et al. 2022, Sec. 4.2.3) */
START_TEST(test_inflight) {
    for (int pp = 1; pp <= 16; pp *= 2)
        for (int d = 0; d < pp; d++) {
            ck_assert_double_eq(st_cost_inflight(ST_SCHED_1F1B, pp, 1, d, 64), pp - d);
            /* ZB-H1: pp - d forwards waiting for their input halves, d held-back weight halves (src/lower) */
            ck_assert_double_eq(st_cost_inflight(ST_SCHED_ZB, pp, 1, d, 64), pp);
            ck_assert_double_eq(st_cost_inflight(ST_SCHED_ZB, pp, 1, d, 2), pp < 2 ? pp : 2);
            ck_assert_double_eq(st_cost_inflight(ST_SCHED_1F1B, pp, 1, d, 2), pp - d < 2 ? pp - d : 2);
            ck_assert_double_eq(st_cost_inflight(ST_SCHED_GPIPE, pp, 1, d, 24), 24);
            /* ZB-V: 2 pp chunks, pp micro-batches of the stage, on every stage (Qi et al. 2401.10241) */
            ck_assert_double_eq(st_cost_inflight(ST_SCHED_ZBV, pp, 2, d, 64), pp);
            /* DualPipe: pp + 1 micro-batches of one stage (DeepSeek-V3 report, Table 2), half that of
             * the rank's two stages */
            ck_assert_double_eq(st_cost_inflight(ST_SCHED_DUALPIPE, pp, 1, d, 64), (pp + 1) / 2.0);
        }
    /* interleaved, first stage: pp (1 + (pp - 1) / (pp vp)); last: ((vp - 1) pp + 1) / vp chunks */
    for (int pp = 2; pp <= 16; pp *= 2)
        for (int vp = 2; vp <= 4; vp++) {
            REL(st_cost_inflight(ST_SCHED_INTERLEAVED, pp, vp, 0, 256), pp * (1 + (pp - 1.0) / (pp * vp)), 1e-15);
            REL(st_cost_inflight(ST_SCHED_INTERLEAVED, pp, vp, pp - 1, 256), ((vp - 1.0) * pp + 1) / vp, 1e-15);
        }
    /* no more than the m micro-batches there are */
    ck_assert_double_eq(st_cost_inflight(ST_SCHED_INTERLEAVED, 4, 2, 0, 2), 2);
}
END_TEST

typedef struct env {
    st_model m;
    st_cluster c;
    st_plan *p;
    st_cost_ctx *ctx;
} env;

static void env_init_on(env *e, const char *cl, const char *model, int64_t gpus, const char *spec) {
    st_error err;
    ck_assert_int_eq(st_model_preset(model, &e->m), 0);
    e->c = cluster(cl, gpus);
    e->p = malloc(sizeof *e->p);
    st_plan_defaults(e->p);
    ck_assert_int_eq(st_plan_parse_spec(spec, e->p, &err), 0);
    ck_assert_msg(st_plan_finalize(e->p, &e->m, &e->c, 0, NULL, &err) == 0, "%s: %s", spec, err.text);
    e->ctx = st_cost_ctx_new(&e->m, &e->c, NULL);
}

static void env_init(env *e, const char *model, int64_t gpus, const char *spec) {
    env_init_on(e, "dgx-a100-80g", model, gpus, spec);
}

static void env_free(env *e) {
    st_cost_ctx_free(e->ctx);
    free(e->p);
}

/* GPipe keeps all m micro-batches' activations, 1F1B at most pp on the first stage */
START_TEST(test_gpipe_vs_1f1b_memory) {
    env e;
    env_init(&e, "gpt3-175b", 64, "tp=8,pp=8,mbs=1,gbs=32,schedule=1f1b");
    st_stage_memory a, b;
    st_cost_stage_memory(e.ctx, e.p, 0, &a);
    e.p->schedule = ST_SCHED_GPIPE;
    st_cost_stage_memory(e.ctx, e.p, 0, &b);
    REL(b.activations_bytes / a.activations_bytes, 32.0 / 8.0, 1e-12);
    ck_assert_double_eq(a.weights_bytes, b.weights_bytes);
    /* 1F1B: the last stage holds one micro-batch (its own activations besides the output layer's) */
    e.p->schedule = ST_SCHED_1F1B;
    st_stage_memory s3, s5;
    st_cost_stage_memory(e.ctx, e.p, 3, &s3);
    st_cost_stage_memory(e.ctx, e.p, 5, &s5);
    REL(s3.activations_bytes / s5.activations_bytes, 5.0 / 3.0, 1e-12);
    env_free(&e);
}
END_TEST

/* DualPipe (DeepSeek-V3 report, Table 2): rank d holds stage d and stage pp - 1 - d, so 2x the
 * parameters (weights, gradients and optimizer states each the sum of 1F1B's two stages), and pp + 1
 * micro-batches of one stage's activations (a: what a 1F1B stage holds per micro-batch, the step from
 * one middle stage to the next; the rest, the working set, as 1F1B's) and, while an input half runs, the
 * output gradients of its stage's linear layers, kept for its weight half: 12 blocks of 2 s b h (2 + 7 / t)
 * bytes (qkv's 3h / t and fc1's 4h / t columns, the projection's and fc2's all-reduced h; test_lower's
 * test_zb_recompute_keeps_weight_inputs) */
START_TEST(test_dualpipe_memory) {
    env e;
    env_init(&e, "gpt3-175b", 64, "tp=8,pp=8,mbs=1,gbs=32,schedule=1f1b");
    st_stage_memory s[8], d;
    for (int k = 0; k < 8; k++) st_cost_stage_memory(e.ctx, e.p, k, &s[k]);
    e.p->schedule = ST_SCHED_DUALPIPE;
    for (int k = 1; k <= 3; k++) { /* middle ranks; their mirrors 6..4 */
        st_cost_stage_memory(e.ctx, e.p, k, &d);
        REL(d.weights_bytes, s[k].weights_bytes + s[7 - k].weights_bytes, 1e-12);
        REL(d.weights_bytes, 2 * s[k].weights_bytes, 1e-12);
        REL(d.grads_bytes, 2 * s[k].grads_bytes, 1e-12);
        REL(d.optimizer_bytes, 2 * s[k].optimizer_bytes, 1e-12);
        double a = s[k].activations_bytes - s[k + 1].activations_bytes, rest = s[k].activations_bytes - (8 - k) * a;
        ck_assert(a > 0);
        REL(d.activations_bytes, 9 * a + rest + 12 * 2.0 * 2048 * 12288 * (2 + 7.0 / 8), 1e-12);
    }
    env_free(&e);
}
END_TEST

/* DualPipe's time (cost/estimate.c): the expert all-to-all and the pipeline messages hide behind the
 * paired chunks' compute (mixtral, where they are shorter), which their SMs slow; the two copies'
 * gradients are all-reduced between mirror ranks, so a plan without data parallelism or a tied
 * embedding still reduces (llama2-7b, dp = 1) */
START_TEST(test_dualpipe_estimate) {
    const char *specs[2] = {"tp=2,pp=4,ep=8,gbs=512,seq=4096", "tp=8,pp=4,gbs=16"};
    const char *models[2] = {"mixtral-8x7b", "llama2-7b"};
    int64_t gpus[2] = {64, 32};
    for (int i = 0; i < 2; i++) {
        env e;
        st_estimate e1, e2;
        env_init_on(&e, "dgx-h100", models[i], gpus[i], specs[i]);
        ck_assert_int_eq(st_cost_estimate(e.ctx, e.p, &e1), 0);
        e.p->schedule = ST_SCHED_DUALPIPE;
        ck_assert_int_eq(st_cost_estimate(e.ctx, e.p, &e2), 0);
        ck_assert(e2.iteration_time_s < e1.iteration_time_s);
        ck_assert(e2.breakdown.bubble_s < e1.breakdown.bubble_s);
        if (i == 0) {
            ck_assert(e1.breakdown.ep_comm_s > 0 && e1.breakdown.pp_comm_s > 0);
            ck_assert_double_eq(e2.breakdown.ep_comm_s, 0);
            ck_assert_double_eq(e2.breakdown.pp_comm_s, 0);
            ck_assert(e2.breakdown.compute_s > e1.breakdown.compute_s); /* the SMs they hold */
        } else {
            ck_assert_int_eq(e.m.tied_embeddings, 0);
            ck_assert_double_eq(e1.breakdown.dp_comm_s, 0);
            ck_assert(e2.breakdown.dp_comm_s > 0);
        }
        env_free(&e);
    }
}
END_TEST

/* ZeRO (Rajbhandari et al. 2020): stage 1 shards 12 bytes/param of optimizer state, stage 2 the
 * gradients too, stage 3 the weights too */
START_TEST(test_zero_memory) {
    env e;
    /* two micro-batches: gradients accumulate, so they are held from the first backward on */
    env_init(&e, "llama2-7b", 64, "tp=1,pp=1,dp=64,mbs=1,gbs=128,zero=0");
    double P = st_model_params(&e.m);
    /* llama2-7b pads 32000 to 32000: no padding, so the stage holds exactly the model */
    st_stage_memory z0, z1, z2, z3;
    st_cost_stage_memory(e.ctx, e.p, 0, &z0);
    REL(z0.weights_bytes, 2 * P, 1e-12);
    REL(z0.grads_bytes, 4 * P, 1e-12);
    REL(z0.optimizer_bytes, 12 * P, 1e-12);
    e.p->zero = 1;
    st_cost_stage_memory(e.ctx, e.p, 0, &z1);
    REL(z1.optimizer_bytes, 12 * P / 64, 1e-12);
    REL(z1.grads_bytes, 4 * P, 1e-12);
    e.p->zero = 2;
    st_cost_stage_memory(e.ctx, e.p, 0, &z2);
    REL(z2.grads_bytes, 4 * P / 64, 1e-12);
    e.p->zero = 3;
    st_cost_stage_memory(e.ctx, e.p, 0, &z3);
    /* FSDP2: 4/d fp32 weights + two gathered bf16 blocks + the root group (embedding, final norm,
     * output layer) gathered; 4/d gradients + one block's bf16 gradients and fp32 reduce-scatter
     * input; 8/d Adam states */
    st_shard sh;
    st_plan_shard(e.p, &sh);
    st_op ops[ST_MAX_OPS];
    double blk = 0, root = 0;
    int n = st_ops_layer(&e.m, &sh, 0, ops, ST_MAX_OPS);
    for (int i = 0; i < n; i++) blk += ops[i].params;
    n = st_ops_head(&e.m, &sh, ops, ST_MAX_OPS);
    for (int i = 0; i < n; i++) root += ops[i].params;
    n = st_ops_tail(&e.m, &sh, ops, ST_MAX_OPS);
    for (int i = 0; i < n; i++) root += ops[i].params;
    REL(z3.weights_bytes, 4 * P / 64 + 2 * 2 * blk + 2 * root, 1e-12);
    REL(z3.grads_bytes, 4 * P / 64 + (2 + 4) * blk, 1e-12);
    REL(z3.optimizer_bytes, 8 * P / 64, 1e-12);
    e.p->zero = 1, e.p->offload = ST_OFF_OPTIMIZER;
    st_cost_stage_memory(e.ctx, e.p, 0, &z1);
    ck_assert_double_eq(z1.optimizer_bytes, 0);
    env_free(&e);
}
END_TEST

/* FSDP2 in one pass (pp 1, one micro-batch; cost/memory.c): the peak is the larger of (a) the
 * forward's end, with no gradients (zero_grad set them to None), the last block and the root
 * gathered, the loss's transient; and (b) the first block's backward, with the loss's saved
 * tensors gone, two blocks and the root gathered, the output layer's and one block's 16-bit
 * gradients, the reduce-scatter input beyond the block's freed activations, one block's shard.
 * Without recompute (a) is the peak; with full recompute (b). The simulator's program holds the
 * same bytes at its peak. */
START_TEST(test_fsdp2_one_pass_memory) {
    static const char *specs[] = {"tp=1,pp=1,dp=64,mbs=2,gbs=128,seq=4096,zero=3",
                                  "tp=1,pp=1,dp=64,mbs=2,gbs=128,seq=4096,zero=3,recompute=full"};
    for (int i = 0; i < 2; i++) {
        env e;
        env_init(&e, "llama2-7b", 64, specs[i]);
        double P = st_model_params(&e.m);
        st_shard sh;
        st_plan_shard(e.p, &sh);
        st_op ops[ST_MAX_OPS];
        double blk = 0, head = 0, tail = 0, tail_saved = 0, tail_work = 0, blk_saved = 0, blk_in = 0;
        int n = st_ops_layer(&e.m, &sh, 0, ops, ST_MAX_OPS);
        for (int k = 0; k < n; k++) blk += ops[k].params, blk_saved += ops[k].saved_bytes;
        blk_in = ops[0].input_bytes;
        n = st_ops_head(&e.m, &sh, ops, ST_MAX_OPS);
        for (int k = 0; k < n; k++) head += ops[k].params;
        n = st_ops_tail(&e.m, &sh, ops, ST_MAX_OPS);
        for (int k = 0; k < n; k++) {
            tail += ops[k].params, tail_saved += ops[k].saved_bytes;
            if (ops[k].work_bytes > tail_work) tail_work = ops[k].work_bytes;
        }
        double L = (double)e.m.layers, root = head + tail, res = st_cluster_reserved_bytes(&e.c);
        double state = 4 * P / 64 + 8 * P / 64 + res; /* sharded fp32 weights and Adam's m, v */
        st_stage_memory sm;
        st_cost_stage_memory(e.ctx, e.p, 0, &sm);
        REL(sm.optimizer_bytes, 8 * P / 64, 1e-12);
        if (i == 0) { /* (a): everything saved, the loss running */
            double act = L * blk_saved + tail_saved;
            ck_assert_double_eq(sm.grads_bytes, 0);
            REL(sm.weights_bytes, 4 * P / 64 + 2 * (blk + root), 1e-12);
            REL(sm.total_bytes, state + 2 * (blk + root) + act + tail_work, 1e-12);
        } else { /* (b): block inputs kept, one block recomputed */
            double act = L * blk_in + tail_saved, rs = 4 * blk - blk_in;
            double grads = 2 * (tail + blk) + (rs > 0 ? rs : 0) + 4 * blk / 64;
            REL(sm.grads_bytes, grads, 1e-12);
            REL(sm.weights_bytes, 4 * P / 64 + 2 * (2 * blk + root), 1e-12);
            REL(sm.total_bytes, state + 2 * (2 * blk + root) + grads + act - tail_saved + blk_saved, 1e-9);
        }
        /* more micro-batches: gradients held all along, never less */
        st_stage_memory acc;
        e.p->gbs = 256;
        st_cost_stage_memory(e.ctx, e.p, 0, &acc);
        ck_assert(acc.total_bytes > sm.total_bytes && acc.grads_bytes > 0);
        e.p->gbs = 128;
        /* the simulator's program peaks at the same bytes */
        st_lowered l;
        st_error err;
        ck_assert_int_eq(st_lower(e.ctx, e.p, &l, &err), 0);
        st_sim_result r;
        ck_assert_msg(st_sim_run(&l, 0, NULL, &r, &err) == 0, "%s", err.text);
        REL(r.ranks[0].memory_peak_bytes, sm.total_bytes, 1e-9);
        st_sim_result_destroy(&r);
        st_lowered_destroy(&l);
        env_free(&e);
    }
}
END_TEST

START_TEST(test_estimate_bookkeeping) {
    const char *specs[] = {"tp=8,pp=8,mbs=1,gbs=512,sp=1,recompute=selective",
                           "tp=4,pp=4,vp=2,dp=4,mbs=2,gbs=512,recompute=full,zero=1",
                           "tp=8,pp=2,dp=4,mbs=1,gbs=256,zero=3", "tp=8,pp=8,mbs=1,gbs=512,schedule=zb",
                           /* forward bound by its weights' PCIe copies */
                           "tp=4,pp=8,dp=2,mbs=1,gbs=64,zero=3,offload=params",
                           "tp=4,pp=8,dp=2,mbs=1,gbs=64,zero=3,offload=params,schedule=zb"};
    for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++) {
        env e;
        env_init(&e, "gpt3-175b", 64, specs[i]);
        st_estimate est;
        ck_assert_int_eq(st_cost_estimate(e.ctx, e.p, &est), 0);
        const st_breakdown *b = &est.breakdown;
        double sum = b->compute_s + b->recompute_s + b->tp_comm_s + b->cp_comm_s + b->ep_comm_s + b->pp_comm_s +
                     b->bubble_s + b->dp_comm_s + b->optimizer_s + b->offload_s;
        REL(sum, est.iteration_time_s, 1e-9);
        REL(est.mfu, est.model_flops / est.iteration_time_s / 64 / 312e12, 1e-12);
        REL(est.tokens_per_s, (double)e.p->gbs * 2048 / est.iteration_time_s, 1e-12);
        ck_assert(est.iteration_time_s > 0 && est.mfu > 0.05 && est.mfu < 0.85);
        /* the same plan priced twice gives the same bits (the cache is transparent) */
        st_estimate again;
        st_cost_ctx *fresh = st_cost_ctx_new(&e.m, &e.c, NULL);
        ck_assert_int_eq(st_cost_estimate(fresh, e.p, &again), 0);
        ck_assert_double_eq(again.iteration_time_s, est.iteration_time_s);
        st_cost_ctx_free(fresh);
        env_free(&e);
    }
}
END_TEST

/* offload=params keeps the GPU's ZeRO-3 shard of the weights in host memory, beside Adam's fp32
 * states: dense weights over the dp x cp group, expert weights over the dp x cp / ep ranks that
 * hold the same experts, so with ep > 1 the experts weigh ep times what a dp x cp shard would */
START_TEST(test_offload_params_host_memory) {
    env e;
    env_init(&e, "mixtral-8x7b", 16, "tp=2,pp=1,dp=8,ep=4,mbs=1,gbs=32,seq=1024,zero=3,offload=params");
    st_chunk_cost cc;
    st_cost_chunk(e.ctx, e.p, 0, &cc);
    ck_assert(cc.expert_params > 0);
    double shard = (cc.params - cc.expert_params) / 8 + cc.expert_params / (8 / 4);
    st_estimate est;
    ck_assert_int_eq(st_cost_estimate(e.ctx, e.p, &est), 0);
    REL(est.host_memory_bytes, shard * (12 + 2) * 8, 1e-12); /* per node: 8 GPUs */
    env_free(&e);
}
END_TEST

/* offload=params where PCIe is the bottleneck (seq 256, dp = 2 inside a node): the copies
 * stretch every micro-batch of a stage, so the pipeline's bubble grows with them (it did not when
 * the streaming was added after the pipeline); a chunk's per-layer copy is its bytes at the PCIe
 * rate, and nothing without offload=params */
START_TEST(test_offload_params_stretch) {
    env e;
    env_init(&e, "gpt3-175b", 64, "tp=4,pp=8,dp=2,mbs=1,gbs=64,seq=256,zero=3,offload=params");
    st_estimate par, opt;
    ck_assert_int_eq(st_cost_estimate(e.ctx, e.p, &par), 0);
    double bytes, t = st_cost_offload_chunk(e.ctx, e.p, 0, &bytes);
    ck_assert(bytes > 0);
    REL(t, bytes / (e.c.pcie_bytes_per_s * ST_PCIE_EFFICIENCY), 1e-12);
    e.p->offload = ST_OFF_OPTIMIZER;
    ck_assert_int_eq(st_cost_estimate(e.ctx, e.p, &opt), 0);
    ck_assert_double_eq(st_cost_offload_chunk(e.ctx, e.p, 0, &bytes), 0);
    ck_assert_double_eq(bytes, 0);
    ck_assert_msg(par.breakdown.bubble_s > 3 * opt.breakdown.bubble_s, "bubble %.3f s, without streaming %.3f s",
                  par.breakdown.bubble_s, opt.breakdown.bubble_s);
    env_free(&e);
}
END_TEST

/* recompute=op, torchtitan's op-level selective AC: a llama2-7b block (MHA, SwiGLU) keeps its input,
 * the outputs of wq and wv (the 1st and 3rd of wq, wk, wv), of the attention kernel (o and its
 * fp32 log-sum-exp), of w1 (5th) and w2 (7th): 2T(5h + f) + 4 b a s bytes at tp = 1; the stage
 * keeps that per block and restores one block's rest while its backward runs; the recompute
 * re-runs wk (a third of qkv), wo, w3 (half of fc1) and every non-matmul op */
START_TEST(test_recompute_op) {
    env e;
    env_init(&e, "llama2-7b", 8, "tp=1,pp=1,dp=8,mbs=2,gbs=16,seq=4096,recompute=none");
    const double T = 2.0 * 4096, h = (double)e.m.hidden, f = (double)e.m.ffn, L = (double)e.m.layers;
    const double kept = 2 * T * (5 * h + f) + 4 * 2.0 * (double)e.m.heads * 4096;
    st_shard sh;
    st_plan_shard(e.p, &sh);
    st_op ops[ST_MAX_OPS];
    int n = st_ops_layer(&e.m, &sh, 0, ops, ST_MAX_OPS);
    double saved = 0, op_kept = ops[0].saved_bytes; /* the block input */
    for (int i = 0; i < n; i++) {
        saved += ops[i].saved_bytes;
        op_kept += ops[i].op_saved_bytes;
        double want = 1;
        if (!strcmp(ops[i].name, "qkv")) want = 1.0 / 3;
        if (!strcmp(ops[i].name, "fc1")) want = 0.5;
        if (!strcmp(ops[i].name, "attention") || !strcmp(ops[i].name, "fc2")) want = 0;
        REL(ops[i].op_recompute, want, 1e-15);
    }
    REL(op_kept, kept, 1e-12);
    st_stage_memory none, op;
    st_cost_stage_memory(e.ctx, e.p, 0, &none);
    e.p->recompute = ST_REC_OP;
    st_cost_stage_memory(e.ctx, e.p, 0, &op);
    REL(none.activations_bytes - op.activations_bytes, (L - 1) * (saved - kept), 1e-12);
    ck_assert_double_eq(none.weights_bytes, op.weights_bytes);
    /* what it recomputes lies between selective (the attention kernel) and full (everything) */
    st_estimate es, eo, ef;
    ck_assert_int_eq(st_cost_estimate(e.ctx, e.p, &eo), 0);
    e.p->recompute = ST_REC_SELECTIVE;
    ck_assert_int_eq(st_cost_estimate(e.ctx, e.p, &es), 0);
    e.p->recompute = ST_REC_FULL;
    ck_assert_int_eq(st_cost_estimate(e.ctx, e.p, &ef), 0);
    ck_assert(eo.breakdown.recompute_s > es.breakdown.recompute_s);
    ck_assert(eo.breakdown.recompute_s < ef.breakdown.recompute_s / 2);
    env_free(&e);
}
END_TEST

/* recompute=op on an MoE block (torchtitan's policy, src/core/opgraph.c moe_sac): the router's gate is forced to
 * recompute (per_op_sac_force_recompute_mm_shapes_by_fqns' default); the routed experts run torch._grouped_mm, which
 * the policy neither counts nor saves, so both expert GEMMs rerun whole; with ep > 1 the dispatch's all-to-all
 * output (the busiest rank's T k load rows, on the router, which carries it) and the combine's (the T k rows it
 * sent, on fc2) are kept (x h, bf16) and neither all-to-all runs again; they are no part of what recompute=none keeps, so the recompute's working set is
 * what op drops of none's, >= 0; with ep = 1 there is no all-to-all to keep */
START_TEST(test_recompute_op_moe) {
    const char *const models[] = {"mixtral-8x7b", "qwen3-235b-a22b"};
    for (int mi = 0; mi < 2; mi++) {
        env e;
        env_init(&e, models[mi], 64, "tp=1,pp=4,dp=16,ep=8,mbs=1,gbs=256,seq=4096,recompute=op");
        st_shard sh;
        st_plan_shard(e.p, &sh);
        st_op ops[ST_MAX_OPS];
        int n = st_ops_layer(&e.m, &sh, e.m.layers - 1, ops, ST_MAX_OPS), seen = 0;
        double load = e.m.capacity_factor > 0 ? e.m.capacity_factor : e.m.moe_imbalance > 0 ? e.m.moe_imbalance : 1;
        double Tk = 4096.0 * (double)e.m.experts_topk, h2 = (double)e.m.hidden * 2; /* bf16 */
        for (int i = 0; i < n; i++) {
            int coll = -1;
            double f = st_cost_op_recompute(&ops[i], ST_REC_OP, &coll);
            if (!strcmp(ops[i].name, "router")) { /* it carries the dispatch: its output kept */
                ck_assert_double_eq(f, 1);
                REL(ops[i].op_saved_bytes, Tk * load * h2, 1e-12);
                ck_assert_int_eq(coll, 0);
                seen |= 1;
            }
            if (!strcmp(ops[i].name, "expert_fc1")) {
                ck_assert_double_eq(f, 1);
                ck_assert_double_eq(ops[i].op_saved_bytes, 0);
                seen |= 2;
            }
            if (!strcmp(ops[i].name, "expert_fc2")) {
                ck_assert_double_eq(f, 1);
                REL(ops[i].op_saved_bytes, Tk * h2, 1e-12);
                ck_assert_int_eq(coll, 0); /* (the combine's) */
                seen |= 4;
            }
        }
        ck_assert_int_eq(seen, 7);
        const st__shard_cost *sc = st__cost_shard(e.ctx, e.p);
        for (int k = 0; k < sc->nk; k++)
            ck_assert_msg(st__block_working(&sc->kind[k], ST_REC_OP) >= 0, "%s kind %d: working set %g", models[mi], k,
                          st__block_working(&sc->kind[k], ST_REC_OP));
        st_error err;
        ck_assert_int_eq(st_plan_parse_spec("tp=1,pp=4,dp=16,ep=1,mbs=1,gbs=256,seq=4096,recompute=op", e.p, &err), 0);
        st_plan_shard(e.p, &sh);
        n = st_ops_layer(&e.m, &sh, e.m.layers - 1, ops, ST_MAX_OPS);
        for (int i = 0; i < n; i++)
            if (!strcmp(ops[i].name, "router") || !strcmp(ops[i].name, "expert_fc2"))
                ck_assert_double_eq(ops[i].op_saved_bytes, 0);
        /* with sp the weighted sum's reduce-scatter keeps its output (the policy's list), as the dense fc2's */
        ck_assert_int_eq(st_plan_parse_spec("tp=2,sp=1,pp=4,dp=8,ep=1,mbs=1,gbs=256,seq=4096,recompute=op", e.p, &err),
                         0);
        st_plan_shard(e.p, &sh);
        n = st_ops_layer(&e.m, &sh, e.m.layers - 1, ops, ST_MAX_OPS), seen = 0;
        for (int i = 0; i < n; i++)
            if (!strcmp(ops[i].name, "moe_combine")) {
                int coll = -1;
                ck_assert_double_eq(st_cost_op_recompute(&ops[i], ST_REC_OP, &coll), 1);
                ck_assert_int_eq(coll, 0);
                REL(ops[i].op_saved_bytes, 4096.0 / 2 * h2, 1e-12);
                seen = 1;
            }
        ck_assert_int_eq(seen, 1);
        env_free(&e);
    }
}
END_TEST

/* recompute=op on multi-head latent attention: each projection one aten.mm of torchtitan's DeepSeek-V3, in the
 * every-second rule in its order: with q_lora_rank wq_a (q_down), wkv_a (kv_down) and wo (proj) saved, wq_b and
 * wkv_b rerun; without it wq (q_proj) and wkv_b saved, wkv_a and wo rerun */
START_TEST(test_recompute_op_mla) {
    for (int lora = 1; lora >= 0; lora--) {
        env e;
        env_init(&e, "deepseek-v3", 256, "tp=1,pp=8,dp=32,ep=32,mbs=1,gbs=256,seq=4096,recompute=op");
        if (!lora) e.m.q_lora_rank = 0;
        st_shard sh;
        st_plan_shard(e.p, &sh);
        st_op ops[ST_MAX_OPS];
        int n = st_ops_layer(&e.m, &sh, e.m.layers - 1, ops, ST_MAX_OPS), seen = 0;
        const char *saved[] = {"q_down", "kv_down", "proj", "q_proj", "kv_up"}, *rerun[] = {"q_up", "kv_up", "kv_down", "proj"};
        for (int i = 0; i < n; i++) {
            for (int k = lora ? 0 : 3; k < (lora ? 3 : 5); k++)
                if (!strcmp(ops[i].name, saved[k])) {
                    ck_assert_msg(ops[i].op_recompute == 0 && ops[i].op_saved_bytes > 0, "lora %d: %s not saved",
                                  lora, ops[i].name);
                    seen++;
                }
            for (int k = lora ? 0 : 2; k < (lora ? 2 : 4); k++)
                if (!strcmp(ops[i].name, rerun[k])) {
                    ck_assert_msg(ops[i].op_recompute == 1 && ops[i].op_saved_bytes == 0, "lora %d: %s not rerun",
                                  lora, ops[i].name);
                    seen++;
                }
        }
        ck_assert_int_eq(seen, lora ? 5 : 4);
        env_free(&e);
    }
}
END_TEST

/* the framework's reserve is the cluster's setting: other_bytes, and the default where unset */
START_TEST(test_reserved_setting) {
    env e;
    env_init(&e, "llama2-7b", 8, "tp=1,pp=1,dp=8,mbs=1,gbs=8");
    st_stage_memory a, b;
    st_cost_stage_memory(e.ctx, e.p, 0, &a);
    ck_assert_double_eq(a.other_bytes, ST_RESERVED_DEFAULT_BYTES);
    ck_assert_double_eq(st_cluster_reserved_bytes(&e.c), ST_RESERVED_DEFAULT_BYTES);
    st_cost_ctx_free(e.ctx);
    e.c.reserved_bytes = 5.5 * 1073741824.0;
    e.ctx = st_cost_ctx_new(&e.m, &e.c, NULL);
    st_cost_stage_memory(e.ctx, e.p, 0, &b);
    ck_assert_double_eq(b.other_bytes, 5.5 * 1073741824.0);
    REL(b.total_bytes - a.total_bytes, 3.5 * 1073741824.0, 1e-12);
    ck_assert_double_eq(st_autoshard_memory_limit(&e.c), e.c.gpu.memory_bytes - 5.5 * 1073741824.0);
    env_free(&e);
}
END_TEST

/* directions the model must get right */
START_TEST(test_estimate_directions) {
    env e;
    env_init(&e, "gpt3-175b", 64, "tp=8,pp=8,mbs=1,gbs=64,recompute=none");
    st_estimate none, sel, full;
    ck_assert_int_eq(st_cost_estimate(e.ctx, e.p, &none), 0);
    e.p->recompute = ST_REC_SELECTIVE;
    st_cost_estimate(e.ctx, e.p, &sel);
    e.p->recompute = ST_REC_FULL;
    st_cost_estimate(e.ctx, e.p, &full);
    ck_assert(none.iteration_time_s < sel.iteration_time_s && sel.iteration_time_s < full.iteration_time_s);
    ck_assert(none.memory_peak_bytes > sel.memory_peak_bytes && sel.memory_peak_bytes > full.memory_peak_bytes);
    /* more micro-batches amortise the bubble */
    e.p->recompute = ST_REC_NONE;
    e.p->gbs = 512;
    st_estimate big;
    st_cost_estimate(e.ctx, e.p, &big);
    ck_assert(big.breakdown.bubble_s / big.iteration_time_s < none.breakdown.bubble_s / none.iteration_time_s);
    env_free(&e);
    /* a faster GPU is faster */
    env a, h;
    env_init(&a, "llama2-7b", 8, "tp=2,dp=4,mbs=1,gbs=64,zero=1");
    env_init(&h, "llama2-7b", 8, "tp=2,dp=4,mbs=1,gbs=64,zero=1");
    h.c = cluster("dgx-h100", 8);
    st_cost_ctx_free(h.ctx);
    h.ctx = st_cost_ctx_new(&h.m, &h.c, NULL);
    st_estimate ea, eh;
    st_cost_estimate(a.ctx, a.p, &ea);
    st_cost_estimate(h.ctx, h.p, &eh);
    ck_assert(eh.iteration_time_s < ea.iteration_time_s / 2);
    env_free(&a);
    env_free(&h);
}
END_TEST

/* Overlapped communication hides behind compute but holds ST_NCCL_SMS SMs meanwhile: without an
 * SM count nothing is charged, with fewer SMs more is charged, and without overlap nothing. (The
 * ZeRO-3 plan is compute-bound: mbs 4 gives each gather four times the compute to hide behind.) */
START_TEST(test_overlap_takes_sms) {
    /* unfused attention: its compute is what these plans' overlap was sized against */
    const char *specs[] = {"tp=4,dp=16,mbs=4,gbs=256,zero=3,attention=unfused",
                           "tp=4,pp=2,dp=8,mbs=1,gbs=64,zero=1,overlap_grad_reduce=1,attention=unfused"};
    for (int i = 0; i < 2; i++) {
        env e;
        env_init(&e, "llama2-13b", 64, specs[i]);
        st_estimate none, many, few;
        e.c.gpu.sms = 0;
        ck_assert_int_eq(st_cost_estimate(e.ctx, e.p, &none), 0);
        e.c.gpu.sms = 1000;
        st_cost_estimate(e.ctx, e.p, &many);
        e.c.gpu.sms = 108;
        st_cost_estimate(e.ctx, e.p, &few);
        ck_assert(none.iteration_time_s < many.iteration_time_s);
        ck_assert(many.iteration_time_s < few.iteration_time_s);
        /* the charge scales as 16 / (sms - 16) */
        double d_many = many.iteration_time_s - none.iteration_time_s, d_few = few.iteration_time_s - none.iteration_time_s;
        REL(d_few / d_many, (16.0 / 92) / (16.0 / 984), 1e-9);
        env_free(&e);
    }
    /* ZeRO-3 bound by its traffic (mbs 1): the compute stream waits for the gathers anyway, so a
     * small charge hides, and a large one shows only as far as it outlasts the traffic */
    env e;
    env_init(&e, "llama2-13b", 64, "tp=4,dp=16,mbs=1,gbs=64,zero=3,attention=unfused");
    st_estimate none, many, few;
    e.c.gpu.sms = 0;
    ck_assert_int_eq(st_cost_estimate(e.ctx, e.p, &none), 0);
    e.c.gpu.sms = 1000;
    st_cost_estimate(e.ctx, e.p, &many);
    e.c.gpu.sms = 108;
    st_cost_estimate(e.ctx, e.p, &few);
    ck_assert_double_eq(none.iteration_time_s, many.iteration_time_s);
    ck_assert(many.iteration_time_s < few.iteration_time_s);
    env_free(&e);
}
END_TEST

/* cp_comm (src/core/opgraph.c, "Context parallelism"; cost/estimate.c, cp_ring). The ring's closed
 * forms: a transfer shorter than its step hides, leaving only NCCL's SMs' slowdown of the step;
 * a longer one exposes transfer - step, per step. The exchange moves the sequence's K/V
 * (b s 2 kv_heads/tp d x 2 bytes), (cp-1)/cp of it over each rank's links, as all_gather does. The
 * ring's fused attention is its steps' sum; all_gather gathers again before the backward; a2a
 * all-to-alls around attention. Memory: the ring's cp blocks (at least 4), all_gather's 2 cp. */
START_TEST(test_cp_comm) {
    st_cluster c = cluster("dgx-h100", 16);
    double n = 8, x = 1e-3, tax = st_cost_overlap_tax(&c, (n - 1) * x);
    REL(st_cost_cp_ring_exposed(&c, x, 2 * x, 5e-3, 3e-3, n, 0), tax, 1e-12);
    ck_assert(tax > 0);
    REL(st_cost_cp_ring_exposed(&c, x, 2 * x, 5e-3, 3e-3, n, 1), st_cost_overlap_tax(&c, x + 6 * 2 * x + x), 1e-12);
    double big = 10e-3, exp_f = (big - 5e-3) + (n - 2) * (big - 3e-3) + st_cost_overlap_tax(&c, 5e-3 + 6 * 3e-3);
    REL(st_cost_cp_ring_exposed(&c, big, 2 * big, 5e-3, 3e-3, n, 0), exp_f, 1e-12);
    double exp_b = (big - 3e-3) + (n - 2) * (2 * big - 3e-3) + (big - 5e-3) + st_cost_overlap_tax(&c, 3e-3 * 7 + 5e-3);
    REL(st_cost_cp_ring_exposed(&c, big, 2 * big, 5e-3, 3e-3, n, 1), exp_b, 1e-12);
    ck_assert_double_eq(st_cost_cp_ring_exposed(&c, big, 2 * big, 5e-3, 3e-3, 1, 0), 0);

    const char *modes[] = {"p2p", "all_gather", "a2a"};
    double act[3], kvb = 0;
    for (int k = 0; k < 3; k++) {
        char spec[128];
        /* a2a: llama3-70b's 8 kv heads split over cp = 8 only without tp */
        snprintf(spec, sizeof spec, "tp=%d,cp=8,mbs=1,gbs=16,seq=65536,sp=1,cp_comm=%s", k < 2 ? 8 : 1, modes[k]);
        env e;
        env_init(&e, "llama3-70b", 128, spec);
        st_shard sh;
        st_plan_shard(e.p, &sh);
        st_op ops[ST_MAX_OPS];
        st_op_cost plain[ST_MAX_OPS], priced[ST_MAX_OPS];
        int nops = st_ops_layer(&e.m, &sh, 0, ops, ST_MAX_OPS), xi = -1, ai = -1;
        for (int i = 0; i < nops; i++) {
            st_cost_op(e.ctx, e.p, &ops[i], &plain[i]);
            if (ops[i].coll_group == ST_GRP_CP && xi < 0) xi = i;
            if (!strcmp(ops[i].name, "attention")) ai = i;
        }
        st_cost_ops(e.ctx, e.p, ops, nops, priced);
        ck_assert_int_ge(xi, 0);
        ck_assert_int_eq(xi, ai - 1); /* the operator that makes K and V (rope) */
        double seq_kv = 65536.0 * 2 * 8 / 8 * 128 * 2; /* b s 2 kv_heads/tp d bytes */
        st_group g;
        st_cost_group(&e.c, e.p, ST_GRP_CP, &g);
        ck_assert_int_eq(g.n, 8);
        if (k < 2) {
            REL(ops[xi].coll_bytes, seq_kv, 1e-12);
            REL(st_cost_bus_factor(ST_COLL_ALLGATHER, 8) * ops[xi].coll_bytes, 7.0 / 8 * seq_kv, 1e-12);
            kvb = seq_kv / 8;
        }
        if (k == 0) {
            /* the ring: its steps' kernels, and what its send/recvs leave exposed beside them */
            ck_assert_int_eq(ops[ai].ring_steps, 8);
            st_op first, other;
            st__ring_step(&ops[ai], 1, &first);
            st__ring_step(&ops[ai], 0, &other);
            ck_assert_int_eq(first.causal, 1);
            ck_assert_int_eq(other.causal, 0);
            REL(other.m, 65536.0 / 16, 1e-12);
            for (int b = 0; b < 2; b++) {
                double f = st_cost_op_time(&e.c, NULL, &first, e.p->dtype, b);
                double o = st_cost_op_time(&e.c, NULL, &other, e.p->dtype, b);
                REL(b ? plain[ai].bwd_s : plain[ai].fwd_s, f + 7 * o, 1e-12);
                double x1 = st_cost_collective(&e.c, NULL, ST_COLL_SENDRECV, &g, kvb);
                double x2 = st_cost_collective(&e.c, NULL, ST_COLL_SENDRECV, &g, 2 * kvb);
                double want = st_cost_cp_ring_exposed(&e.c, x1, x2, f, o, 8, b);
                REL(b ? priced[xi].bwd_coll_s : priced[xi].fwd_coll_s, want, 1e-12);
                ck_assert(want < (b ? plain[xi].bwd_coll_s : plain[xi].fwd_coll_s));
            }
            REL(ops[xi].work_bytes, 8 * kvb, 1e-12);
        } else if (k == 1) {
            ck_assert_double_eq(priced[xi].fwd_coll_s, plain[xi].fwd_coll_s); /* exposed */
            ck_assert_int_eq(ops[ai].bwd_coll, ST_COLL_ALLGATHER);            /* gathered again */
            ck_assert_int_eq(ops[ai].fwd_coll, ST_COLL_NONE);
            REL(ops[ai].coll_bytes, seq_kv, 1e-12);
            REL(ops[xi].work_bytes, 16 * kvb, 1e-12);
            ck_assert_int_eq(ops[ai].kernels_fwd, 2);
        } else {
            ck_assert_int_eq(ops[xi].fwd_coll, ST_COLL_ALLTOALL);
            ck_assert_int_eq(ops[ai].fwd_coll, ST_COLL_ALLTOALL);
            ck_assert_int_eq(ops[ai].bwd_coll, ST_COLL_ALLTOALL);
            REL(ops[ai].batch, 64.0 / 8, 1e-12); /* heads / cp */
            REL(ops[ai].m, 65536, 1e-12);
        }
        st_stage_memory sm;
        st_cost_stage_memory(e.ctx, e.p, 0, &sm);
        act[k] = sm.activations_bytes;
        env_free(&e);
    }
    /* the same saved activations; the buffers differ by 2 cp - cp blocks */
    REL(act[1] - act[0], 8 * kvb, 1e-9);
}
END_TEST

/* tp_overlap's closed forms (cost/estimate.c): the reduce-scatter of qkv's input gradient runs in
 * bulk beside qkv's weight-gradient GEMM (TE's qkv_wgrad, 16 SMs held for the whole GEMM), so it
 * exposes max(0, c - g) plus that GEMM's slowdown, 16 / (sms - 16) of it: only the slowdown where
 * the GEMM covers it (GPT-3's GEMMs at tp 2 inside a DGX A100), c - g more where it does not (Llama
 * 2 7B's at tp 8 over an L40S server's PCIe; userbuffers keep the tp group inside one node). The pipelined reduce-scatter after proj shows at least a
 * quarter of itself (its last piece), the ring all-gather before fc1 less than itself (1 SM); the
 * output layer's and the loss's collectives (no TE userbuffers) and every collective without the
 * key stay as priced alone. */
START_TEST(test_tp_overlap_closed_form) {
    const char *models[] = {"gpt3-175b", "llama2-7b"};
    const char *specs[] = {"tp=2,dp=8,mbs=4,gbs=64,sp=1,tp_overlap=1", "tp=8,mbs=1,gbs=8,sp=1,tp_overlap=1"};
    const char *clusters[] = {"dgx-a100-80g", "l40s-pcie-8"};
    const int64_t gpus[] = {16, 8};
    for (int k = 0; k < 2; k++) {
        env e;
        env_init_on(&e, clusters[k], models[k], gpus[k], specs[k]);
        st_shard sh;
        st_plan_shard(e.p, &sh);
        st_op ops[ST_MAX_OPS];
        st_op_cost plain[ST_MAX_OPS], over[ST_MAX_OPS];
        int n = st_ops_layer(&e.m, &sh, 0, ops, ST_MAX_OPS);
        ck_assert_int_gt(n, 0);
        for (int i = 0; i < n; i++) st_cost_op(e.ctx, e.p, &ops[i], &plain[i]);
        st_cost_ops(e.ctx, e.p, ops, n, over);
        int ln1 = -1, qkv = -1, proj = -1, ln2 = -1;
        for (int i = 0; i < n; i++) {
            if (!strcmp(ops[i].name, "ln1")) ln1 = i;
            if (!strcmp(ops[i].name, "qkv")) qkv = i;
            if (!strcmp(ops[i].name, "proj")) proj = i;
            if (!strcmp(ops[i].name, "ln2")) ln2 = i;
            ck_assert_double_eq(over[i].fwd_s, plain[i].fwd_s); /* compute stays as it is */
            ck_assert_double_eq(over[i].bwd_s, plain[i].bwd_s);
        }
        ck_assert(ln1 >= 0 && qkv >= 0 && proj >= 0 && ln2 >= 0); /* a renamed operator fails here */
        double c = plain[ln1].bwd_coll_s, g = plain[qkv].bwd_s / 2;
        double tax = g * 16.0 / (e.c.gpu.sms - 16);
        ck_assert_double_eq_tol(st_cost_overlap_tax_sms(&e.c, g, 16), tax, tax * 1e-12);
        if (k == 0) {
            ck_assert(c < g);
            REL(over[ln1].bwd_coll_s, tax, 1e-12);
        } else {
            ck_assert(c > g);
            REL(over[ln1].bwd_coll_s, c - g + tax, 1e-12);
        }
        ck_assert(over[proj].fwd_coll_s >= plain[proj].fwd_coll_s / 4);
        if (k == 0) ck_assert(over[ln2].fwd_coll_s < plain[ln2].fwd_coll_s);
        n = st_ops_tail(&e.m, &sh, ops, ST_MAX_OPS);
        st_cost_ops(e.ctx, e.p, ops, n, over);
        for (int i = 0; i < n; i++) {
            st_cost_op(e.ctx, e.p, &ops[i], &plain[i]);
            ck_assert_double_eq(over[i].fwd_coll_s, plain[i].fwd_coll_s);
            ck_assert_double_eq(over[i].bwd_coll_s, plain[i].bwd_coll_s);
        }
        /* without the key: st_cost_op's prices, and a slower iteration */
        st_estimate on, off;
        ck_assert_int_eq(st_cost_estimate(e.ctx, e.p, &on), 0);
        e.p->tp_overlap = 0;
        n = st_ops_layer(&e.m, &sh, 0, ops, ST_MAX_OPS);
        st_cost_ops(e.ctx, e.p, ops, n, over);
        for (int i = 0; i < n; i++) {
            st_cost_op(e.ctx, e.p, &ops[i], &plain[i]);
            ck_assert_double_eq(over[i].bwd_coll_s, plain[i].bwd_coll_s);
            ck_assert_double_eq(over[i].fwd_coll_s, plain[i].fwd_coll_s);
        }
        ck_assert_int_eq(st_cost_estimate(e.ctx, e.p, &off), 0);
        /* over PCIe the overlap hides much; at tp 2 on NVLink there is little to hide, and the
         * SMs TE's defaults set aside beside half of the GEMMs cost more than that */
        if (k == 1)
            ck_assert(on.breakdown.tp_comm_s < off.breakdown.tp_comm_s);
        else
            ck_assert(on.breakdown.tp_comm_s > off.breakdown.tp_comm_s);
        ck_assert_double_eq(on.breakdown.compute_s, off.breakdown.compute_s);
        env_free(&e);
    }
}
END_TEST

/* overlap_param_gather is a flag of its own: overlap_grad_reduce alone hides the reduction, not
 * the weight all-gather after the step; with both, the gather shows its first bucket and what of
 * the rest outlasts the next forward (and the SMs the hidden part took from that forward) */
START_TEST(test_param_gather_overlap) {
    env e;
    env_init(&e, "llama2-13b", 64, "tp=8,dp=8,mbs=16,gbs=512,zero=1,overlap_grad_reduce=1");
    st_estimate red, both;
    ck_assert_int_eq(st_cost_estimate(e.ctx, e.p, &red), 0);
    double reduce_s, gather_s, nb;
    st_cost_dp_stage(e.ctx, e.p, 0, &reduce_s, &gather_s, &nb);
    ck_assert(gather_s > 0 && nb >= 1);
    e.p->overlap_param_gather = 1;
    ck_assert_int_eq(st_cost_estimate(e.ctx, e.p, &both), 0);
    double hidden = gather_s - gather_s / nb; /* mbs 16: the forward covers all but the first bucket */
    REL(red.breakdown.dp_comm_s - both.breakdown.dp_comm_s, hidden - st_cost_overlap_tax(&e.c, hidden), 1e-9);
    /* bucket by bucket: the first shows; each next one beside the previous one's layers */
    double tax;
    REL(st_cost_param_gather_exposed(&e.c, 1.0, 4, 2.0, &tax), 0.25, 1e-12);
    REL(tax, st_cost_overlap_tax(&e.c, 0.75), 1e-12);
    REL(st_cost_param_gather_exposed(&e.c, 1.0, 4, 0.4, &tax), 0.25 + 0.75 * 0.6, 1e-12);
    REL(tax, st_cost_overlap_tax(&e.c, 0.3), 1e-12);
    REL(st_cost_param_gather_exposed(&e.c, 1.0, 1, 0.4, &tax), 1.0, 1e-12); /* one bucket hides nothing */
    ck_assert_double_eq(tax, 0);
    env_free(&e);
}
END_TEST

/* fp8_param_gather (Megatron --fp8-param-gather): the quantised copies are the weights, so each stage
 * holds 2 bytes less per quantised parameter and nothing else changes (the fp32 master shard, the
 * gradients, the activations); the weight all-gather after the step moves 1 byte per quantised
 * parameter for fp8 instead of 2, the same 2 for mxfp8 (the 16-bit values through the gradient buffer) */
START_TEST(test_fp8_param_gather_cost) {
    const char *dts[] = {"fp8", "mxfp8"};
    for (int d = 0; d < 2; d++) {
        char spec[128];
        snprintf(spec, sizeof spec, "tp=4,pp=4,vp=2,dp=4,mbs=1,gbs=64,sp=1,zero=1,grad_bytes=2,dtype=%s", dts[d]);
        env e;
        env_init_on(&e, "dgx-b200", "llama3-70b", 64, spec);
        for (int stage = 0; stage < 4; stage++) {
            st_stage_memory off, on;
            double red0, gat0, nb0, red1, gat1, nb1;
            e.p->fp8_param_gather = 0;
            st_cost_stage_memory(e.ctx, e.p, stage, &off);
            st_cost_dp_stage(e.ctx, e.p, stage, &red0, &gat0, &nb0);
            e.p->fp8_param_gather = 1;
            st_cost_stage_memory(e.ctx, e.p, stage, &on);
            st_cost_dp_stage(e.ctx, e.p, stage, &red1, &gat1, &nb1);
            double q = st_cost_stage_quant_params(e.ctx, e.p, stage);
            /* every block's linear layers: 80 / 16 blocks of 4 of them per chunk, sharded over tp 4 */
            ck_assert(q > 0.8 * 70e9 / 16 && q < 70e9 / 16);
            REL(off.weights_bytes - on.weights_bytes, 2 * q, 1e-12);
            REL(off.total_bytes - on.total_bytes, 2 * q, 1e-12);
            ck_assert_double_eq(on.optimizer_bytes, off.optimizer_bytes);
            ck_assert_double_eq(on.grads_bytes, off.grads_bytes);
            ck_assert_double_eq(on.activations_bytes, off.activations_bytes);
            ck_assert_double_eq(red1, red0);
            ck_assert_double_eq(nb1, nb0);
            if (d == 0)
                ck_assert(gat1 < gat0 && gat1 > 0.4 * gat0);
            else
                ck_assert_double_eq(gat1, gat0);
        }
        /* bytes: 2 per 16-bit weight, 1 per fp8 one */
        REL(st_cost_gather_bytes(e.p, 10, 6), d == 0 ? 4 * 2 + 6 : 20, 1e-15);
        e.p->fp8_param_gather = 0;
        REL(st_cost_gather_bytes(e.p, 10, 6), 20, 1e-15);
        env_free(&e);
    }
}
END_TEST

/* a profile from JSON text, through a file as --profile reads it (new) */
static st_profile *profile_text(const char *fmt, ...) {
    char path[512], text[2048];
    const char *base = getenv("TMPDIR");
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    ck_assert(n > 0 && n < (int)sizeof text);
    snprintf(path, sizeof path, "%s/strata-cost-XXXXXX", base && base[0] ? base : "/tmp");
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, text, (size_t)n), n);
    close(fd);
    st_profile *p = NULL;
    st_error err;
    st_error_clear(&err);
    int rc = st_profile_load(path, &p, &err);
    unlink(path);
    ck_assert_msg(rc == 0, "%s", err.text);
    return p;
}

#define COPIES(tables) "{\"strata_profile\": 1, \"gpu\": \"a100-sxm-80g\", \"copies\": [" tables "]}"

/* Fused attention's rates (cost/compute.c): at the table's points the table's values (FA2 on A100,
 * FA3 on H100, TFLOP/s; derived entries included), linear in log2(seq) and in the head dim between
 * them, the nearest point outside; other GPUs by their generation's table x their dense peak over
 * the reference GPU's; fp8 runs attention in bf16. */
START_TEST(test_attention_rates) {
    st_gpu a100, h100, h200, l40s;
    ck_assert_int_eq(st_gpu_preset("a100-sxm-80g", &a100), 0);
    ck_assert_int_eq(st_gpu_preset("h100-sxm-80g", &h100), 0);
    ck_assert_int_eq(st_gpu_preset("h200-sxm-141g", &h200), 0);
    ck_assert_int_eq(st_gpu_preset("l40s", &l40s), 0);
    const double T = 1e12, r = 1e-12;
    /* published points: FA2 Fig. 4a/4c-derived (A100), FA3 Figs. 5 and 6 (H100) */
    REL(st_cost_attention_flops_per_s(&a100, ST_ATTN_FLASH, ST_DT_BF16, 16384, 64, 0, 0), 192.0 * T, r);
    REL(st_cost_attention_flops_per_s(&a100, ST_ATTN_FLASH, ST_DT_BF16, 16384, 128, 1, 1), 186.0 * T, r);
    REL(st_cost_attention_flops_per_s(&a100, ST_ATTN_FLASH, ST_DT_FP16, 2048, 128, 1, 0), 161.3 * T, r);
    REL(st_cost_attention_flops_per_s(&a100, ST_ATTN_FLASH, ST_DT_BF16, 512, 64, 1, 1), 85.4 * T, r);
    REL(st_cost_attention_flops_per_s(&h100, ST_ATTN_FLASH, ST_DT_BF16, 512, 64, 0, 1), 272.0 * T, r);
    REL(st_cost_attention_flops_per_s(&h100, ST_ATTN_FLASH, ST_DT_BF16, 4096, 128, 1, 0), 579.0 * T, r);
    REL(st_cost_attention_flops_per_s(&h100, ST_ATTN_FLASH, ST_DT_BF16, 8192, 128, 0, 0), 646.0 * T, r);
    REL(st_cost_attention_flops_per_s(&h100, ST_ATTN_FLASH, ST_DT_BF16, 1024, 128, 1, 1), 317.4 * T, r);
    /* between points: halfway in log2(seq), halfway in the head dim */
    REL(st_cost_attention_flops_per_s(&h100, ST_ATTN_FLASH, ST_DT_BF16, 1024 * sqrt(2.0), 128, 0, 0), (565.0 + 625.0) / 2 * T, r);
    REL(st_cost_attention_flops_per_s(&h100, ST_ATTN_FLASH, ST_DT_BF16, 2048, 96, 0, 0), (460.0 + 625.0) / 2 * T, r);
    /* outside: the nearest point */
    REL(st_cost_attention_flops_per_s(&h100, ST_ATTN_FLASH, ST_DT_BF16, 128, 32, 0, 0), 333.0 * T, r);
    REL(st_cost_attention_flops_per_s(&h100, ST_ATTN_FLASH, ST_DT_BF16, 131072, 256, 1, 0), 616.0 * T, r);
    /* fp8 plans run attention in bf16; H200 is a Hopper with H100's peak; L40S takes the Ampere
     * table at its peak over A100's */
    REL(st_cost_attention_flops_per_s(&h100, ST_ATTN_FLASH, ST_DT_FP8, 4096, 128, 1, 0), 579.0 * T, r);
    REL(st_cost_attention_flops_per_s(&h200, ST_ATTN_FLASH, ST_DT_BF16, 4096, 128, 1, 0), 579.0 * T, r);
    REL(st_cost_attention_flops_per_s(&l40s, ST_ATTN_FLASH, ST_DT_BF16, 4096, 128, 1, 0), 179.7 * T * 362.05 / 312, r);
    /* the other kernels of the FA3 paper's figures on H100: FlashAttention-2 (PyTorch SDPA's
     * default) and cuDNN (Transformer Engine's choice on Hopper), published and derived points;
     * off Hopper every fused kind is FlashAttention-2 */
    REL(st_cost_attention_flops_per_s(&h100, ST_ATTN_FA2, ST_DT_BF16, 8192, 128, 1, 0), 333.0 * T, r);
    REL(st_cost_attention_flops_per_s(&h100, ST_ATTN_FA2, ST_DT_BF16, 512, 64, 0, 1), 198.0 * T, r);
    REL(st_cost_attention_flops_per_s(&h100, ST_ATTN_FA2, ST_DT_BF16, 4096, 128, 1, 1), 268.7 * T, r);
    REL(st_cost_attention_flops_per_s(&h100, ST_ATTN_CUDNN, ST_DT_BF16, 4096, 128, 1, 0), 518.0 * T, r);
    REL(st_cost_attention_flops_per_s(&h100, ST_ATTN_CUDNN, ST_DT_BF16, 2048, 128, 0, 0), 617.0 * T, r);
    REL(st_cost_attention_flops_per_s(&h100, ST_ATTN_CUDNN, ST_DT_BF16, 16384, 64, 1, 1), 406.8 * T, r);
    REL(st_cost_attention_flops_per_s(&a100, ST_ATTN_FA2, ST_DT_BF16, 16384, 128, 1, 1), 186.0 * T, r);
    REL(st_cost_attention_flops_per_s(&a100, ST_ATTN_CUDNN, ST_DT_BF16, 16384, 128, 1, 1), 186.0 * T, r);
    /* fp32: the same fraction of the fp32 peak */
    REL(st_cost_attention_flops_per_s(&a100, ST_ATTN_FLASH, ST_DT_FP32, 4096, 128, 1, 0), 179.7 * T * 19.5 / 312, r);
    /* a custom GPU named as NVIDIA names it is still a Hopper (in any case, after "NVIDIA"); an
     * unknown name with H100's peaks gets the Ampere table scaled by its peak */
    st_gpu named = h100;
    snprintf(named.name, sizeof named.name, "NVIDIA H100 80GB HBM3");
    REL(st_cost_attention_flops_per_s(&named, ST_ATTN_FLASH, ST_DT_BF16, 4096, 128, 1, 0), 579.0 * T, r);
    snprintf(named.name, sizeof named.name, "nvidia-h200-sxm");
    REL(st_cost_attention_flops_per_s(&named, ST_ATTN_FLASH, ST_DT_BF16, 4096, 128, 1, 0), 579.0 * T, r);
    snprintf(named.name, sizeof named.name, "x100");
    REL(st_cost_attention_flops_per_s(&named, ST_ATTN_FLASH, ST_DT_BF16, 4096, 128, 1, 0),
        179.7 * T * named.peak_flops[ST_DT_BF16] / (312 * T), r);

    /* the operator's time: its FLOPs at that rate (compute-bound), plus one launch; a calibration
     * profile's attention table replaces the rate */
    st_cluster c = cluster("dgx-h100", 8);
    st_op op;
    memset(&op, 0, sizeof op);
    op.cls = ST_OPC_ATTENTION;
    op.m = op.n = 4096, op.k = 128, op.batch = 32, op.causal = 1;
    op.fwd_flops = 4.0 * 32 * 4096 * 4096 * 128 / 2;
    op.bwd_flops = 2.5 * op.fwd_flops;
    op.fwd_bytes = 4.0 * 4096 * 32 * 128 * 2;
    op.kernels_fwd = op.kernels_bwd = 1;
    REL(st_cost_op_time(&c, NULL, &op, ST_DT_BF16, 0), op.fwd_flops / (579.0 * T) + ST_KERNEL_OVERHEAD_S, r);
    REL(st_cost_op_time(&c, NULL, &op, ST_DT_BF16, 1), op.bwd_flops / (491.9 * T) + ST_KERNEL_OVERHEAD_S, r);
    st_profile *p = profile_text("{\"strata_profile\": 1, \"gpu\": \"h100-sxm-80g\", \"compute\": [{\"class\": "
                                 "\"attention\", \"dtype\": \"bf16\", \"points\": [[1e9, 300], [1e15, 300]]}]}");
    REL(st_cost_op_time(&c, p, &op, ST_DT_BF16, 0), op.fwd_flops / (300.0 * T) + ST_KERNEL_OVERHEAD_S, r);
    REL(st_cost_op_time(&c, p, &op, ST_DT_FP8, 1), op.bwd_flops / (300.0 * T) + ST_KERNEL_OVERHEAD_S, r);
    st_profile_free(p);
}
END_TEST

/* attention=flash against unfused on one plan: model FLOPs (hence MFU's numerator) the same, the
 * activations smaller by the score terms; selective recompute re-runs the fused kernel's forward
 * (Megatron-Core checkpoints the core attention) and saves almost nothing with it. */
START_TEST(test_flash_estimate) {
    env u, f;
    env_init(&u, "gpt3-175b", 64, "tp=8,pp=8,mbs=1,gbs=64,sp=1,attention=unfused");
    env_init(&f, "gpt3-175b", 64, "tp=8,pp=8,mbs=1,gbs=64,sp=1");
    ck_assert_int_eq(f.p->attention, ST_ATTN_FLASH);
    st_estimate eu, ef;
    ck_assert_int_eq(st_cost_estimate(u.ctx, u.p, &eu), 0);
    ck_assert_int_eq(st_cost_estimate(f.ctx, f.p, &ef), 0);
    REL(ef.model_flops, eu.model_flops, 1e-12);
    ck_assert(ef.iteration_time_s < eu.iteration_time_s);
    ck_assert(ef.memory_peak_bytes < eu.memory_peak_bytes);
    st_chunk_cost none, sel;
    st_cost_chunk(f.ctx, f.p, 1, &none);
    f.p->recompute = ST_REC_SELECTIVE;
    st_cost_chunk(f.ctx, f.p, 1, &sel);
    /* per block: one fused forward again, the LSE (fp32, 96 heads / 8, 2048 queries) dropped */
    st_shard sh;
    st_op ops[ST_MAX_OPS];
    st_plan_shard(f.p, &sh);
    int n = st_ops_layer(&f.m, &sh, 1, ops, ST_MAX_OPS), i;
    for (i = 0; i < n && strcmp(ops[i].name, "attention"); i++) continue;
    ck_assert_int_lt(i, n);
    double blocks = 96.0 / 8;
    REL(sel.recompute_s, blocks * st_cost_op_time(&f.c, NULL, &ops[i], ST_DT_BF16, 0), 1e-9);
    REL(none.act_bytes - sel.act_bytes, blocks * 4.0 * 2048 * 96 / 8, 1e-9);
    env_free(&u);
    env_free(&f);
}
END_TEST

/* Offload copies with a profile's copy tables: each copy at the measured rate for its size
 * (offload=params: one layer's shard, as st_cost_offload_chunk copies it; offload=optimizer: the
 * gradients down and the weights up, one copy of the shard each), interpolated between points;
 * without copy tables exactly the PCIe rate of before. */
START_TEST(test_offload_copy_tables) {
    env e;
    env_init(&e, "gpt3-175b", 64, "tp=4,pp=8,dp=2,mbs=1,gbs=64,seq=256,zero=3,offload=params");
    double b, b2;
    double t0 = st_cost_offload_chunk(e.ctx, e.p, 3, &b);
    st_estimate none, with;
    ck_assert_int_eq(st_cost_estimate(e.ctx, e.p, &none), 0);

    /* at a table point: the measured rate */
    st_profile *prof = profile_text(COPIES("{\"dir\": \"h2d\", \"points\": [[%.17g, 10]]}"), b);
    st_cost_ctx *ctx = st_cost_ctx_new(&e.m, &e.c, prof);
    REL(st_cost_offload_chunk(ctx, e.p, 3, &b2), b / 10e9, 1e-12);
    ck_assert_double_eq(b2, b);
    ck_assert(fabs(b / 10e9 - t0) > 0.1 * t0); /* differs from the PCIe rate (25 GB/s x 0.8) */
    st_cost_ctx_free(ctx);
    st_profile_free(prof);

    /* between points: linear in log size (b is the log midpoint of b/4 and 4b) */
    prof = profile_text(COPIES("{\"dir\": \"h2d\", \"points\": [[%.17g, 10], [%.17g, 30]]}"), b / 4, b * 4);
    ctx = st_cost_ctx_new(&e.m, &e.c, prof);
    REL(st_cost_offload_chunk(ctx, e.p, 3, NULL), b / 20e9, 1e-12);
    /* the estimate's weights after the optimizer step: the whole shard in one copy, beyond 4b */
    double shard = none.offload_weights_s * e.c.pcie_bytes_per_s * ST_PCIE_EFFICIENCY;
    ck_assert(shard > 4 * b);
    ck_assert_int_eq(st_cost_estimate(ctx, e.p, &with), 0);
    REL(with.offload_weights_s, shard / 30e9, 1e-12);
    ck_assert(with.iteration_time_s != none.iteration_time_s);
    st_cost_ctx_free(ctx);
    st_profile_free(prof);

    /* offload=optimizer: the gradients down at the d2h table's rate, the weights up at h2d's */
    e.p->offload = ST_OFF_OPTIMIZER;
    ck_assert_int_eq(st_cost_estimate(e.ctx, e.p, &none), 0);
    double grads = none.offload_grads_s * e.c.pcie_bytes_per_s * ST_PCIE_EFFICIENCY;
    prof = profile_text(COPIES("{\"dir\": \"d2h\", \"points\": [[%.17g, 5], [%.17g, 15]]},"
                               " {\"dir\": \"h2d\", \"points\": [[1, 40]]}"),
                        grads / 2, grads * 2);
    ctx = st_cost_ctx_new(&e.m, &e.c, prof);
    ck_assert_int_eq(st_cost_estimate(ctx, e.p, &with), 0);
    REL(with.offload_grads_s, grads / 10e9, 1e-12);
    REL(with.offload_weights_s, shard / 40e9, 1e-12);
    st_cost_ctx_free(ctx);
    st_profile_free(prof);

    /* a profile without copy tables leaves every copy at the PCIe rate, to the bit */
    prof = profile_text("{\"strata_profile\": 1, \"gpu\": \"a100-sxm-80g\", \"memory\": "
                        "[{\"class\": \"elementwise\", \"points\": [[1e6, 300]]}]}");
    ctx = st_cost_ctx_new(&e.m, &e.c, prof);
    ck_assert_int_eq(st_cost_estimate(ctx, e.p, &with), 0);
    ck_assert_double_eq(with.offload_grads_s, none.offload_grads_s);
    ck_assert_double_eq(with.offload_weights_s, none.offload_weights_s);
    REL(none.offload_grads_s, grads / (25e9 * 0.8), 1e-12); /* dgx-a100-80g: host.pcie_gb_per_s 25 */
    e.p->offload = ST_OFF_PARAMS;
    ck_assert_double_eq(st_cost_offload_chunk(ctx, e.p, 3, NULL), t0);
    st_cost_ctx_free(ctx);
    st_profile_free(prof);
    env_free(&e);
}
END_TEST

START_TEST(test_profile_tables) {
    st_profile *prof = NULL;
    st_error err;
    ck_assert_int_eq(st_profile_load(SRCDIR "/tests/data/profile/a100_test.json", &prof, &err), 0);
    ck_assert_str_eq(st_profile_gpu(prof), "a100-sxm-80g");
    /* the table's numbers at its points, log-linear between them, flat outside */
    REL(st_profile_flops_per_s(prof, ST_OPC_GEMM, ST_DT_BF16, 1e11), 200e12, 1e-12);
    REL(st_profile_flops_per_s(prof, ST_OPC_GEMM, ST_DT_BF16, 1e10), 125e12, 1e-12);
    REL(st_profile_flops_per_s(prof, ST_OPC_GEMM, ST_DT_BF16, 1e15), 250e12, 1e-12);
    REL(st_profile_flops_per_s(prof, ST_OPC_GEMM, ST_DT_BF16, 1e3), 50e12, 1e-12);
    ck_assert_double_eq(st_profile_flops_per_s(prof, ST_OPC_GEMM, ST_DT_FP16, 1e11), 0);
    REL(st_profile_bytes_per_s(prof, ST_OPC_ELEMWISE, 1e9), 1600e9, 1e-12);
    REL(st_profile_bus_bytes_per_s(prof, ST_COLL_ALLREDUCE, 1, 8, 1e9), 230e9, 1e-12);
    ck_assert_double_eq(st_profile_bus_bytes_per_s(prof, ST_COLL_ALLGATHER, 1, 8, 1e9), 0);
    REL(st_profile_copy_bytes_per_s(prof, ST_COPY_H2D, 1e6), 10e9, 1e-12);
    REL(st_profile_copy_bytes_per_s(prof, ST_COPY_H2D, sqrt(1e6 * 1e9)), 16e9, 1e-12); /* log midpoint */
    REL(st_profile_copy_bytes_per_s(prof, ST_COPY_H2D, 1e12), 22e9, 1e-12);
    REL(st_profile_copy_bytes_per_s(prof, ST_COPY_D2H, 1e3), 20e9, 1e-12); /* one point: flat */
    /* the cost model uses them */
    st_cluster c = cluster("dgx-a100-80g", 8);
    st_op op;
    memset(&op, 0, sizeof op);
    op.cls = ST_OPC_GEMM;
    op.m = op.n = op.k = 4096, op.batch = 1;
    op.fwd_flops = 1e11;
    op.kernels_fwd = 1;
    REL(st_cost_op_time(&c, prof, &op, ST_DT_BF16, 0), 1e11 / 200e12 + ST_KERNEL_OVERHEAD_S, 1e-12);
    st_group g = {.n = 8, .per_node = 8, .nodes = 1, .node_share = 8};
    REL(st_cost_collective(&c, prof, ST_COLL_ALLREDUCE, &g, 1e9), 2.0 * 7 / 8 * 1e9 / 230e9 + 14 * 2e-6, 1e-12);
    st_profile_free(prof);
    /* bad tables are refused naming the key */
    ck_assert_int_eq(st_profile_load(SRCDIR "/tests/data/profile/missing.json", &prof, &err), ST_EIO);
}
END_TEST

/* A 16384^3 linear-layer GEMM marked for the quantised recipes (st_op.quant), one forward kernel
 * and two backward (dgrad, wgrad). */
static st_op big_quant_gemm(void) {
    st_op op;
    memset(&op, 0, sizeof op);
    op.cls = ST_OPC_GEMM;
    op.m = op.n = op.k = 16384, op.batch = 1;
    op.fwd_flops = 2.0 * 16384 * 16384 * 16384;
    op.bwd_flops = 2 * op.fwd_flops;
    op.kernels_fwd = 1, op.kernels_bwd = 2;
    op.quant = 1;
    return op;
}

/* fp8: a linear layer's GEMM at the fp8 MAMF (H100 SXM 1402.6 of 1978.9 TFLOP/s), not at 2x bf16;
 * the same shape not marked fp8 (output layer, router) at bf16's; a GPU without a published fp8
 * MAMF gets its bf16 efficiency x H100's fp8/bf16 ratio; a GPU without fp8 runs bf16. */
START_TEST(test_fp8_gemm_rate) {
    st_cluster c = cluster("dgx-h100", 8);
    st_op op = big_quant_gemm();
    double f = 16384.0 / (16384 + ST_GEMM_HALF_DIM), q = f * f * f;
    REL(st_cost_op_time(&c, NULL, &op, ST_DT_FP8, 0), op.fwd_flops / (1402.6e12 * q) + ST_KERNEL_OVERHEAD_S, 1e-12);
    /* dgrad and wgrad in fp8 too */
    REL(st_cost_op_time(&c, NULL, &op, ST_DT_FP8, 1), op.bwd_flops / (1402.6e12 * q) + 2 * ST_KERNEL_OVERHEAD_S,
        1e-12);
    double bf = st_cost_op_time(&c, NULL, &op, ST_DT_BF16, 0);
    REL(bf, op.fwd_flops / (792.1e12 * q) + ST_KERNEL_OVERHEAD_S, 1e-12);
    op.quant = 0;
    REL(st_cost_op_time(&c, NULL, &op, ST_DT_FP8, 0), bf, 1e-12);
    st_gpu g;
    ck_assert_int_eq(st_gpu_preset("l40s", &g), 0);
    ck_assert_double_eq(g.gemm_efficiency_fp8, 0);
    REL(st_gpu_gemm_efficiency(&g, ST_DT_FP8), 0.83 * (1402.6 / 1979) / (794.5 / 989), 1e-12);
    REL(st_gpu_gemm_efficiency(&g, ST_DT_BF16), 0.83, 1e-12);
    ck_assert_int_eq(st_gpu_preset("h200-sxm-141g", &g), 0);
    REL(st_gpu_gemm_efficiency(&g, ST_DT_FP8), 1453.4 / 1978.9, 1e-12);
    st_cluster a = cluster("dgx-a100-80g", 8);
    op.quant = 1;
    REL(st_cost_op_time(&a, NULL, &op, ST_DT_FP8, 0), st_cost_op_time(&a, NULL, &op, ST_DT_BF16, 0), 1e-12);
}
END_TEST

static const st_op *find(const st_op *ops, int n, const char *name) {
    for (int i = 0; i < n; i++)
        if (strcmp(ops[i].name, name) == 0) return &ops[i];
    return NULL;
}

/* fp8's block: the four linear layers marked fp8, each after a cast_transpose that reads the 16-bit
 * tensor and writes it twice in fp8 (input forward, output gradient backward), their inputs saved
 * in one byte; the output layer bf16; a bf16 block unchanged (no casts, nothing marked). */
START_TEST(test_fp8_block_ops) {
    st_model m;
    ck_assert_int_eq(st_model_preset("llama3-70b", &m), 0);
    st_shard s = {.tp = 8, .cp = 1, .ep = 1, .sp = 1, .mbs = 1, .seq = 8192, .dtype = ST_DT_FP8, .grad_bytes = 4};
    st_op ops[ST_MAX_OPS], b16[ST_MAX_OPS], tail[ST_MAX_OPS];
    int n = st_ops_layer(&m, &s, 0, ops, ST_MAX_OPS);
    int nt = st_ops_tail(&m, &s, tail, ST_MAX_OPS);
    s.dtype = ST_DT_BF16;
    int nb = st_ops_layer(&m, &s, 0, b16, ST_MAX_OPS);
    ck_assert_int_eq(n, nb + 4);
    double T = 8192, h = 8192, f_l = 28672.0 / 8, q_l = 8192.0 / 8, qkv_l = (8192.0 + 2 * 1024) / 8;
    const char *gemms[] = {"qkv", "proj", "fc1", "fc2"};
    const double in[] = {T * h, T * q_l, T * h, T * f_l}, out[] = {T * qkv_l, T * h, T * 2 * f_l, T * h};
    for (int i = 0; i < 4; i++) {
        char cname[32];
        snprintf(cname, sizeof cname, "%s_cast", gemms[i]);
        const st_op *g = find(ops, n, gemms[i]), *cst = find(ops, n, cname), *g16 = find(b16, nb, gemms[i]);
        ck_assert_ptr_nonnull(g);
        ck_assert_ptr_nonnull(cst);
        ck_assert_ptr_null(find(b16, nb, cname));
        ck_assert_int_eq(g->quant, 1);
        ck_assert_int_eq(g16->quant, 0);
        ck_assert_ptr_eq(cst + 1, g); /* right before its GEMM */
        REL(cst->fwd_bytes, in[i] * (2 + 1 + 1), 1e-12);
        REL(cst->bwd_bytes, out[i] * (2 + 1 + 1), 1e-12);
        REL(g->saved_bytes, g16->saved_bytes / 2, 1e-12);
        REL(g->fwd_flops, g16->fwd_flops, 1e-12);
    }
    /* the attention keeps its 16-bit output, which the projection kept before */
    REL(find(ops, n, "attention")->saved_bytes - find(b16, nb, "attention")->saved_bytes, T * q_l * 2, 1e-12);
    ck_assert_int_eq(find(tail, nt, "logits")->quant, 0);
    /* on the wire: the sequence-parallel gathers before qkv and fc1 move the quantised shard (1 byte
     * per element); their backward reduce-scatters, the row-parallel outputs' reduce-scatters and
     * the output layer's gather stay 16-bit */
    const char *norms[] = {"ln1", "ln2"};
    for (int i = 0; i < 2; i++) {
        const st_op *o8 = find(ops, n, norms[i]), *o16 = find(b16, nb, norms[i]);
        ck_assert_int_eq(o8->fwd_coll, ST_COLL_ALLGATHER);
        REL(st_op_fwd_coll_bytes(o8), T * h, 1e-12);
        REL(o8->coll_bytes, T * h * 2, 1e-12);
        REL(st_op_fwd_coll_bytes(o16), T * h * 2, 1e-12);
    }
    REL(st_op_fwd_coll_bytes(find(ops, n, "proj")) + st_op_fwd_coll_bytes(find(ops, n, "fc2")), 2 * T * h * 2, 1e-12);
    REL(st_op_fwd_coll_bytes(&tail[0]), T * h * 2, 1e-12);
}
END_TEST

/* The forward gather in fp8 is priced at its bytes in the estimate's operator costs, and the
 * simulator's instruction carries the same bytes. */
START_TEST(test_fp8_wire_priced) {
    env e;
    env_init_on(&e, "dgx-h100", "llama3-70b", 64, "tp=8,pp=1,dp=8,sp=1,mbs=1,gbs=64,seq=8192,dtype=fp8");
    st_shard sh;
    st_plan_shard(e.p, &sh);
    st_op ops[ST_MAX_OPS];
    int n = st_ops_layer(&e.m, &sh, 0, ops, ST_MAX_OPS);
    const st_op *ln1 = find(ops, n, "ln1");
    st_op_cost oc;
    st_cost_op(e.ctx, e.p, ln1, &oc);
    st_group g;
    st_cost_group(&e.c, e.p, ST_GRP_TP, &g);
    REL(oc.fwd_coll_s, st_cost_collective(&e.c, NULL, ST_COLL_ALLGATHER, &g, 8192.0 * 8192), 1e-12);
    REL(oc.bwd_coll_s, st_cost_collective(&e.c, NULL, ST_COLL_REDUCESCATTER, &g, 8192.0 * 8192 * 2), 1e-12);
    st_lowered l;
    st_error err;
    st_lower_opts o;
    st_lower_opts_init(&o);
    o.per_op = 1;
    ck_assert_msg(st_lower_plan(e.ctx, e.p, &o, &l, &err) == 0, "%s", err.text);
    int seen = 0;
    for (int k = 0; k < l.progs[0].n; k++) {
        const st_ins *in = &l.progs[0].ins[k];
        if (in->kind == ST_INS_COLL && in->coll == ST_COLL_ALLGATHER && in->coll_op >= 0 &&
            l.ops[in->coll_op].phase == ST_PHASE_FWD && strcmp(l.ops[in->coll_op].name, "ln1") == 0) {
            REL(in->bytes, 8192.0 * 8192, 1e-12);
            seen++;
        }
    }
    ck_assert_int_gt(seen, 0);
    st_lowered_destroy(&l);
    env_free(&e);
}
END_TEST

/* fp8's memory: TE's cached fp8 weights and transposes, 2 bytes per parameter of the fp8 linear
 * layers on top of bf16's model state; activations differ by the one-byte saved inputs; the
 * optimizer step carries remaking the copies (read 2, write 2 bytes per such parameter). */
START_TEST(test_fp8_memory_and_weight_casts) {
    st_model m;
    st_cluster c = cluster("dgx-h100", 64);
    st_plan p8, p16;
    st_error err;
    ck_assert_int_eq(st_model_preset("llama3-70b", &m), 0);
    st_plan_defaults(&p8);
    ck_assert_int_eq(st_plan_parse_spec("tp=8,pp=4,mbs=1,gbs=64,sp=1,recompute=selective,zero=1,dtype=fp8", &p8, &err),
                     0);
    ck_assert_int_eq(st_plan_finalize(&p8, &m, &c, 0, NULL, &err), 0);
    p16 = p8;
    p16.dtype = ST_DT_BF16;
    st_cost_ctx *ctx = st_cost_ctx_new(&m, &c, NULL);
    st_stage_memory a, b;
    st_cost_stage_memory(ctx, &p8, 1, &a); /* a middle stage: blocks only */
    st_cost_stage_memory(ctx, &p16, 1, &b);
    st_shard s;
    st_plan_shard(&p8, &s);
    st_op ops[ST_MAX_OPS];
    int n = st_ops_layer(&m, &s, 0, ops, ST_MAX_OPS);
    double w8 = 0, sel8 = 0;
    for (int i = 0; i < n; i++) {
        if (ops[i].quant) w8 += ops[i].params;
        sel8 += ops[i].saved_bytes - (ops[i].selective ? ops[i].saved_bytes - ops[i].ckpt_kept_bytes : 0);
    }
    double layers = 80.0 / 4;
    REL(a.weights_bytes - b.weights_bytes, 2 * w8 * layers, 1e-12);
    REL(a.grads_bytes, b.grads_bytes, 1e-12);
    REL(a.optimizer_bytes, b.optimizer_bytes, 1e-12);
    REL(a.activations_bytes, sel8 * layers * st_cost_inflight(p8.schedule, 4, 1, 1, st_plan_microbatches(&p8)), 1e-12);
    ck_assert(a.activations_bytes < b.activations_bytes);
    st_estimate e8, e16;
    ck_assert_int_eq(st_cost_estimate(ctx, &p8, &e8), 0);
    ck_assert_int_eq(st_cost_estimate(ctx, &p16, &e16), 0);
    REL(e8.breakdown.optimizer_s - e16.breakdown.optimizer_s, 4 * w8 * layers / (3350e9 * ST_HBM_EFFICIENCY), 1e-9);
    /* ZeRO-3: only the two gathered blocks have fp8 copies */
    p8.zero = p16.zero = 3;
    st_cost_stage_memory(ctx, &p8, 1, &a);
    st_cost_stage_memory(ctx, &p16, 1, &b);
    REL(a.weights_bytes - b.weights_bytes, 2 * 2 * w8, 1e-12);
    st_cost_ctx_free(ctx);
}
END_TEST

/* Block-scaled formats: bytes per element with their scales (MXFP8 an E8M0 byte per 32 values,
 * NVFP4 an E4M3 byte per 16 and an fp32 per tensor), which dtypes keep bf16 storage, and nvfp4's
 * extra read for its per-tensor amax. */
START_TEST(test_blockscaled_dtype_bytes) {
    REL(st_dtype_bytes(ST_DT_MXFP8), 33.0 / 32, 1e-15);
    REL(st_dtype_bytes(ST_DT_NVFP4), 9.0 / 16, 1e-15);
    ck_assert_double_eq(st_dtype_bytes(ST_DT_FP8), 1);
    const st_dtype all[] = {ST_DT_FP32, ST_DT_TF32, ST_DT_FP16, ST_DT_BF16, ST_DT_FP8, ST_DT_MXFP8, ST_DT_NVFP4};
    const int quant[] = {0, 0, 0, 0, 1, 1, 1};
    st_gpu hopper, blackwell;
    ck_assert_int_eq(st_gpu_preset("h100-sxm-80g", &hopper), 0);
    ck_assert_int_eq(st_gpu_preset("b200-180g", &blackwell), 0);
    for (int i = 0; i < 7; i++) {
        ck_assert_int_eq(st_dtype_quantised(all[i]), quant[i]);
        ck_assert_int_eq(st_dtype_storage(all[i]), quant[i] ? ST_DT_BF16 : all[i]);
        ck_assert_double_eq(st_dtype_cast_passes(all[i]), all[i] == ST_DT_NVFP4 ? 2 : 1);
        /* Hopper: a copy and its transpose for every quantised format; Blackwell: fp8's one copy serves
         * every GEMM layout (TE makes no transpose where non-TN fp8 GEMMs run), the block-scaled two */
        ck_assert_double_eq(st_cost_weight_copy_bytes(all[i], &hopper), quant[i] ? 2 * st_dtype_bytes(all[i]) : 0);
        ck_assert_double_eq(st_cost_weight_copy_bytes(all[i], &blackwell),
                            !quant[i] ? 0 : all[i] == ST_DT_FP8 ? 1 : 2 * st_dtype_bytes(all[i]));
        st_dtype back;
        ck_assert_int_eq(st_dtype_parse(st_dtype_name(all[i]), &back), 0);
        ck_assert_int_eq(back, all[i]);
    }
    st_dtype d;
    ck_assert_int_eq(st_dtype_parse("fp4", &d), ST_EINVAL); /* the name says which fp4 */
    ck_assert_int_eq(st_dtype_parse("mxfp4", &d), ST_EINVAL);
}
END_TEST

/* On B200 an nvfp4 linear layer's GEMM runs at twice fp8's rate (9,000 vs 4,500 dense TFLOP/s at
 * the same fraction), mxfp8 at fp8's; the GEMMs the recipes keep in bf16 (output layer, router:
 * quant 0) at bf16's; MI355X's mxfp8 at its fp8 rate. */
START_TEST(test_blockscaled_gemm_rate) {
    st_cluster c = cluster("dgx-b200", 8);
    st_op op = big_quant_gemm();
    double t8 = st_cost_op_time(&c, NULL, &op, ST_DT_FP8, 0) - ST_KERNEL_OVERHEAD_S;
    double t4 = st_cost_op_time(&c, NULL, &op, ST_DT_NVFP4, 0) - ST_KERNEL_OVERHEAD_S;
    REL(t8 / t4, 2, 1e-12);
    REL(st_cost_op_time(&c, NULL, &op, ST_DT_MXFP8, 1), st_cost_op_time(&c, NULL, &op, ST_DT_FP8, 1), 1e-12);
    double f = 16384.0 / (16384 + ST_GEMM_HALF_DIM), q = f * f * f;
    double eff = (792.1 / 989.4) * (1402.6 / 1979) / (794.5 / 989); /* no Blackwell MAMF: derived */
    REL(t4, op.fwd_flops / (9000e12 * eff * q), 1e-12);
    double bf = st_cost_op_time(&c, NULL, &op, ST_DT_BF16, 0);
    op.quant = 0;
    REL(st_cost_op_time(&c, NULL, &op, ST_DT_NVFP4, 0), bf, 1e-12);
    REL(st_cost_op_time(&c, NULL, &op, ST_DT_MXFP8, 0), bf, 1e-12);
    st_cluster a = cluster("mi355x", 8);
    op.quant = 1;
    REL(st_cost_op_time(&a, NULL, &op, ST_DT_MXFP8, 0), st_cost_op_time(&a, NULL, &op, ST_DT_FP8, 0), 1e-12);
}
END_TEST

/* nvfp4's and mxfp8's blocks: the same operators as fp8's; each cast reads the 16-bit tensor once
 * (mxfp8) or twice (nvfp4: amax first) and writes a rowwise and a columnwise copy with their
 * scales; saved inputs and the sequence-parallel gathers carry the quantised bytes; attention and
 * the output layer as in bf16. */
START_TEST(test_blockscaled_block_ops) {
    st_model m;
    ck_assert_int_eq(st_model_preset("llama3-70b", &m), 0);
    st_shard s = {.tp = 8, .cp = 1, .ep = 1, .sp = 1, .mbs = 1, .seq = 8192, .dtype = ST_DT_FP8, .grad_bytes = 4};
    st_op o8[ST_MAX_OPS], ob[ST_MAX_OPS], tail[ST_MAX_OPS];
    int n8 = st_ops_layer(&m, &s, 0, o8, ST_MAX_OPS);
    const st_dtype dts[] = {ST_DT_MXFP8, ST_DT_NVFP4};
    const double qb[] = {1 + 1.0 / 32, 0.5 + 1.0 / 16}, reads[] = {1, 2};
    double T = 8192, h = 8192, q_l = 8192.0 / 8;
    for (int d = 0; d < 2; d++) {
        s.dtype = dts[d];
        int n = st_ops_layer(&m, &s, 0, ob, ST_MAX_OPS);
        ck_assert_int_eq(n, n8);
        const st_op *c8 = find(o8, n8, "qkv_cast"), *c = find(ob, n, "qkv_cast");
        ck_assert_ptr_nonnull(c);
        REL(c->fwd_bytes, T * h * (2 * reads[d] + 2 * qb[d]), 1e-12);
        REL(c->fwd_bytes / c8->fwd_bytes, (2 * reads[d] + 2 * qb[d]) / 4, 1e-12);
        const st_op *g = find(ob, n, "proj"), *g8 = find(o8, n8, "proj");
        ck_assert_int_eq(g->quant, 1);
        REL(g->saved_bytes, T * q_l * qb[d], 1e-12);
        REL(g->saved_bytes / g8->saved_bytes, qb[d], 1e-12);
        REL(st_op_fwd_coll_bytes(find(ob, n, "ln1")), T * h * qb[d], 1e-12);
        REL(find(ob, n, "attention")->saved_bytes, find(o8, n8, "attention")->saved_bytes, 1e-12);
        int nt = st_ops_tail(&m, &s, tail, ST_MAX_OPS);
        ck_assert_int_eq(find(tail, nt, "logits")->quant, 0);
    }
}
END_TEST

/* The memory of the scales: the cached weight copies take 2 * (1 + 1/32) bytes per parameter of the
 * quantised layers under mxfp8 and 2 * (1/2 + 1/16) under nvfp4 (fp8: 2); the optimizer step
 * remakes them (read the 16-bit weight once, nvfp4 twice). */
START_TEST(test_blockscaled_memory) {
    st_model m;
    st_cluster c = cluster("dgx-b200", 64);
    st_plan p, p16;
    st_error err;
    ck_assert_int_eq(st_model_preset("llama3-70b", &m), 0);
    st_plan_defaults(&p);
    ck_assert_int_eq(st_plan_parse_spec("tp=8,pp=4,mbs=1,gbs=64,sp=1,recompute=selective,zero=1,dtype=nvfp4", &p, &err),
                     0);
    ck_assert_msg(st_plan_finalize(&p, &m, &c, 0, NULL, &err) == 0, "%s", err.text);
    p16 = p;
    p16.dtype = ST_DT_BF16;
    st_shard s;
    st_plan_shard(&p, &s);
    st_op ops[ST_MAX_OPS];
    int n = st_ops_layer(&m, &s, 0, ops, ST_MAX_OPS);
    double wq = 0;
    for (int i = 0; i < n; i++)
        if (ops[i].quant) wq += ops[i].params;
    double layers = 80.0 / 4;
    st_cost_ctx *ctx = st_cost_ctx_new(&m, &c, NULL);
    st_stage_memory a, b;
    st_estimate eq, e16;
    ck_assert_int_eq(st_cost_estimate(ctx, &p16, &e16), 0);
    st_cost_stage_memory(ctx, &p16, 1, &b);
    const st_dtype dts[] = {ST_DT_MXFP8, ST_DT_NVFP4};
    const double copy[] = {2 * (1 + 1.0 / 32), 2 * (0.5 + 1.0 / 16)}, reads[] = {1, 2};
    for (int d = 0; d < 2; d++) {
        p.dtype = dts[d];
        st_cost_stage_memory(ctx, &p, 1, &a);
        REL(a.weights_bytes - b.weights_bytes, copy[d] * wq * layers, 1e-12);
        REL(a.optimizer_bytes, b.optimizer_bytes, 1e-12);
        ck_assert_int_eq(st_cost_estimate(ctx, &p, &eq), 0);
        REL(eq.breakdown.optimizer_s - e16.breakdown.optimizer_s,
            (2 * reads[d] + copy[d]) * wq * layers / (8000e9 * ST_HBM_EFFICIENCY), 1e-9);
    }
    st_cost_ctx_free(ctx);
}
END_TEST

/* A GPU without the format refuses the plan, naming the key: nvfp4 on H100 (no fp4 tensor cores)
 * and on MI355X (its fp4 is MXFP4), mxfp8 on H100 and MI300X; MI355X's mxfp8 and B300's nvfp4 pass. */
START_TEST(test_blockscaled_refused) {
    st_model m;
    st_error err;
    ck_assert_int_eq(st_model_preset("llama2-7b", &m), 0);
    const struct {
        const char *cl, *spec;
        int ok;
    } cases[] = {
        {"dgx-h100", "tp=8,gbs=8,dtype=nvfp4", 0}, {"mi355x", "tp=8,gbs=8,dtype=nvfp4", 0},
        {"dgx-h100", "tp=8,gbs=8,dtype=mxfp8", 0}, {"mi300x", "tp=8,gbs=8,dtype=mxfp8", 0},
        {"mi355x", "tp=8,gbs=8,dtype=mxfp8", 1},   {"dgx-b300", "tp=4,gbs=8,dtype=nvfp4", 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        st_cluster c = cluster(cases[i].cl, 8);
        st_plan p;
        st_plan_defaults(&p);
        ck_assert_int_eq(st_plan_parse_spec(cases[i].spec, &p, &err), 0);
        int rc = st_plan_finalize(&p, &m, &c, 8, NULL, &err);
        if (cases[i].ok) {
            ck_assert_msg(rc == 0, "%s %s: %s", cases[i].cl, cases[i].spec, err.text);
        } else {
            ck_assert_int_eq(rc, ST_EINVAL);
            ck_assert_str_eq(err.key, "dtype");
            ck_assert_ptr_nonnull(strstr(err.text, st_dtype_name(p.dtype)));
        }
    }
}
END_TEST

/* st_estimate_check passes a real estimate and names the first non-finite number by its JSON key */
START_TEST(test_estimate_check_names_nonfinite) {
    st_model m;
    st_cluster c;
    st_plan p;
    st_error err;
    ck_assert_int_eq(st_model_preset("gpt-1.7b", &m), 0);
    ck_assert_int_eq(st_cluster_resolve("dgx-a100-80g", 8, &c, NULL), 0);
    st_plan_defaults(&p);
    ck_assert_int_eq(st_plan_parse_spec("tp=2,pp=2", &p, &err), 0);
    ck_assert_int_eq(st_plan_finalize(&p, &m, &c, 8, NULL, &err), 0);
    st_cost_ctx *ctx = st_cost_ctx_new(&m, &c, NULL);
    st_estimate e;
    ck_assert_int_eq(st_cost_estimate(ctx, &p, &e), 0);
    ck_assert_int_eq(st_estimate_check(&e, &err), 0);
    st_estimate bad = e;
    bad.breakdown.bubble_s = NAN;
    ck_assert_int_eq(st_estimate_check(&bad, &err), ST_EINVAL);
    ck_assert_str_eq(err.key, "breakdown_s.bubble");
    bad.tokens_per_s = INFINITY;
    ck_assert_int_eq(st_estimate_check(&bad, &err), ST_EINVAL);
    ck_assert_str_eq(err.key, "tokens_per_s");
    st_cost_ctx_free(ctx);
}
END_TEST

/* The search's bounds walk every chunk once for all recompute modes (st_cost_stage_compute): the
 * same bits as st_cost_chunk's compute summed per stage, one mode at a time (the oracle), on a
 * one-kind model with uneven chunks and interleaving, and on DeepSeek-V3's dense and MoE blocks. */
START_TEST(test_stage_compute_is_chunk_sum) {
    static const struct {
        const char *model, *cluster, *spec;
        int64_t gpus;
    } cases[] = {
        {"gpt3-175b", "dgx-a100-80g", "tp=8,pp=8,vp=3,mbs=1,gbs=64,sp=1", 64},
        {"gpt3-175b", "dgx-a100-80g", "tp=4,pp=5,dp=2,mbs=2,gbs=40", 40}, /* 96 layers over 5: uneven */
        {"deepseek-v3", "dgx-h100", "tp=1,pp=4,ep=8,dp=8,mbs=1,gbs=64,seq=4096", 32},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        env e;
        env_init_on(&e, cases[i].cluster, cases[i].model, cases[i].gpus, cases[i].spec);
        double t[ST_REC_FULL + 1][ST_MAX_STAGES];
        st_cost_stage_compute(e.ctx, e.p, t);
        int chunks = e.p->pp * e.p->vp, nonzero = 0;
        for (int rc = ST_REC_NONE; rc <= ST_REC_FULL; rc++) {
            double want[ST_MAX_STAGES] = {0};
            e.p->recompute = (st_recompute)rc;
            for (int c = 0; c < chunks; c++) {
                st_chunk_cost cc;
                st_cost_chunk(e.ctx, e.p, c, &cc);
                want[c % e.p->pp] += cc.fwd_s + cc.bwd_s + cc.recompute_s;
            }
            for (int d = 0; d < e.p->pp; d++) {
                ck_assert_msg(t[rc][d] == want[d], "%s rc %d stage %d: %.17g != %.17g", cases[i].spec, rc, d,
                              t[rc][d], want[d]);
                nonzero += want[d] > 0;
            }
        }
        ck_assert_int_eq(nonzero, (ST_REC_FULL + 1) * e.p->pp);
        ck_assert(t[ST_REC_FULL][0] > t[ST_REC_SELECTIVE][0] && t[ST_REC_SELECTIVE][0] > t[ST_REC_NONE][0]);
        env_free(&e);
    }
}
END_TEST

Suite *suite_cost(void) {
    Suite *s = suite_create("cost");
    TCase *tc = tcase_create("cost");
    tcase_add_test(tc, test_gemm_one_gpu);
    tcase_add_test(tc, test_estimate_check_names_nonfinite);
    tcase_add_test(tc, test_op_prices_sum_to_the_chunk);
    tcase_add_test(tc, test_shard_cache_crowded);
    tcase_add_test(tc, test_host_bound_block);
    tcase_add_test(tc, test_stage_compute_is_chunk_sum);
    tcase_add_test(tc, test_cluster_kernel_prices);
    tcase_add_test(tc, test_ring_allreduce_one_node);
    tcase_add_test(tc, test_ring_across_nodes);
    tcase_add_test(tc, test_pipeline_closed_forms);
    tcase_add_test(tc, test_zb_pipeline);
    tcase_add_test(tc, test_node_limited_routing);
    tcase_add_test(tc, test_bus_factor);
    tcase_add_test(tc, test_state_bytes);
    tcase_add_test(tc, test_recompute_op);
    tcase_add_test(tc, test_recompute_op_moe);
    tcase_add_test(tc, test_recompute_op_mla);
    tcase_add_test(tc, test_reserved_setting);
    tcase_add_test(tc, test_inflight);
    tcase_add_test(tc, test_gpipe_vs_1f1b_memory);
    tcase_add_test(tc, test_dualpipe_memory);
    tcase_add_test(tc, test_dualpipe_estimate);
    tcase_add_test(tc, test_zero_memory);
    tcase_add_test(tc, test_fsdp2_one_pass_memory);
    tcase_add_test(tc, test_estimate_bookkeeping);
    tcase_add_test(tc, test_estimate_directions);
    tcase_add_test(tc, test_offload_params_host_memory);
    tcase_add_test(tc, test_offload_params_stretch);
    tcase_add_test(tc, test_overlap_takes_sms);
    tcase_add_test(tc, test_tp_overlap_closed_form);
    tcase_add_test(tc, test_cp_comm);
    tcase_add_test(tc, test_param_gather_overlap);
    tcase_add_test(tc, test_fp8_param_gather_cost);
    tcase_add_test(tc, test_profile_tables);
    tcase_add_test(tc, test_offload_copy_tables);
    tcase_add_test(tc, test_attention_rates);
    tcase_add_test(tc, test_flash_estimate);
    tcase_add_test(tc, test_fabric_tiers);
    tcase_add_test(tc, test_rail_alltoall_relay);
    tcase_add_test(tc, test_nvls_allreduce);
    tcase_add_test(tc, test_collnet_allreduce);
    tcase_add_test(tc, test_nvl72_domain_allreduce);
    tcase_add_test(tc, test_xgmi_mesh_allreduce);
    tcase_add_test(tc, test_moe_alltoall_nvl72);
    tcase_add_test(tc, test_partial_domain_collectives);
    tcase_add_test(tc, test_fp8_gemm_rate);
    tcase_add_test(tc, test_fp8_block_ops);
    tcase_add_test(tc, test_fp8_wire_priced);
    tcase_add_test(tc, test_fp8_memory_and_weight_casts);
    tcase_add_test(tc, test_blockscaled_dtype_bytes);
    tcase_add_test(tc, test_blockscaled_gemm_rate);
    tcase_add_test(tc, test_blockscaled_block_ops);
    tcase_add_test(tc, test_blockscaled_memory);
    tcase_add_test(tc, test_blockscaled_refused);
    suite_add_tcase(s, tc);
    return s;
}
