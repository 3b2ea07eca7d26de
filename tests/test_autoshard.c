/* test_autoshard.c: operator graphs, resharding, and the operator-level planner (issue 4), on mixed
 * clusters too (issue 19). */
#include "src/cli/cli.h"
#include "suites.h"

#include <igraph.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef SRCDIR
#define SRCDIR "."
#endif

static st_cluster cluster(const char *name, int64_t gpus) {
    st_cluster c;
    ck_assert_int_eq(st_cluster_resolve(name, gpus, &c, NULL), 0);
    return c;
}

static int op_index(const st_graph *g, const char *name) {
    for (int i = 0; i < g->nops; i++)
        if (strcmp(g->ops[i].name, name) == 0) return i;
    return -1;
}

/* ---------------------------------------------------------------- resharding closed forms */

START_TEST(reshard_single_axis) {
    st_cluster c = cluster("dgx-a100-80g", 8);
    st_mesh m;
    int size[1] = {8};
    st_mesh_init(&m, &c, 1, 8, 1, size);
    ck_assert_int_eq(m.grp[0].n, 8);
    ck_assert_int_eq(m.grp[0].nodes, 1);
    double S = 64e6;
    st_layout rep = {{-1, -1}, 0}, part = {{-1, -1}, 1}, s0 = {{0, -1}, 0}, s1 = {{1, -1}, 0};
    st_coll steps[2];
    int n;
    /* partial -> replicated: one all-reduce of the whole tensor */
    double t = st_cost_reshard(&c, NULL, &m, S, part, rep, steps, &n);
    ck_assert_int_eq(n, 1);
    ck_assert_int_eq(steps[0], ST_COLL_ALLREDUCE);
    ck_assert_double_eq_tol(t, st_cost_collective(&c, NULL, ST_COLL_ALLREDUCE, &m.grp[0], S), 1e-12);
    /* partial -> split: reduce-scatter, half an all-reduce's volume */
    t = st_cost_reshard(&c, NULL, &m, S, part, s0, steps, &n);
    ck_assert_int_eq(steps[0], ST_COLL_REDUCESCATTER);
    ck_assert_double_eq_tol(t, st_cost_collective(&c, NULL, ST_COLL_REDUCESCATTER, &m.grp[0], S), 1e-12);
    /* split -> replicated: all-gather into the full tensor */
    t = st_cost_reshard(&c, NULL, &m, S, s0, rep, steps, &n);
    ck_assert_int_eq(steps[0], ST_COLL_ALLGATHER);
    ck_assert_double_eq_tol(t, st_cost_collective(&c, NULL, ST_COLL_ALLGATHER, &m.grp[0], S), 1e-12);
    /* split on one dimension -> another: all-to-all of the local shard */
    t = st_cost_reshard(&c, NULL, &m, S, s0, s1, steps, &n);
    ck_assert_int_eq(steps[0], ST_COLL_ALLTOALL);
    ck_assert_double_eq_tol(t, st_cost_collective(&c, NULL, ST_COLL_ALLTOALL, &m.grp[0], S / 8), 1e-12);
    /* replicated -> split is a local slice; same layout is nothing */
    ck_assert_double_eq(st_cost_reshard(&c, NULL, &m, S, rep, s0, steps, &n), 0);
    ck_assert_int_eq(n, 0);
    ck_assert_double_eq(st_cost_reshard(&c, NULL, &m, S, s1, s1, NULL, NULL), 0);
}
END_TEST

/* Fabric tiers (issue 16) price a mesh axis as a hybrid plan's group: on 16 nodes in leaves of 4
 * (2:1) and pods of 8, the outer axis of a 16 x 8 mesh crosses pods, of a 4 x 8 mesh none, and an
 * all-gather along it costs what it costs with the tier's ratio everywhere. */
START_TEST(mesh_fabric_tiers) {
    st_cluster c = cluster("dgx-h100", 128), flat = c;
    c.leaf_nodes = 4, c.leaf_oversubscription = 2, c.pod_nodes = 8, c.pod_oversubscription = 4;
    flat.oversubscription = 4;
    st_mesh m, mf, small;
    int size[2] = {16, 8}, size4[2] = {4, 8};
    st_mesh_init(&m, &c, 16, 8, 2, size);
    st_mesh_init(&mf, &flat, 16, 8, 2, size);
    st_mesh_init(&small, &c, 4, 8, 2, size4);
    ck_assert_int_eq(m.grp[0].tier, ST_TIER_POD);
    ck_assert_int_eq(m.grp[1].tier, ST_TIER_NODE);
    ck_assert_int_eq(small.grp[0].tier, ST_TIER_NODE);
    ck_assert_double_eq(st_cost_collective(&c, NULL, ST_COLL_ALLGATHER, &m.grp[0], 1e9),
                        st_cost_collective(&flat, NULL, ST_COLL_ALLGATHER, &mf.grp[0], 1e9));
}
END_TEST

START_TEST(reshard_two_axes_cheapest_order) {
    st_cluster c = cluster("dgx-a100-80g", 16);
    st_mesh m;
    int size[2] = {2, 8};
    st_mesh_init(&m, &c, 2, 8, 2, size);
    ck_assert_int_eq(m.grp[1].nodes, 1);  /* inner axis inside a node */
    ck_assert_int_eq(m.grp[0].nodes, 2);  /* outer axis across the two nodes */
    double S = 128e6;
    /* partial along the inner axis, split along the outer: to replicated needs an all-reduce
     * inside the node and an all-gather across nodes; either order is priced, the cheaper wins */
    st_layout src = {{0, -1}, 2}, dst = {{-1, -1}, 0};
    st_coll steps[2];
    int n;
    double t = st_cost_reshard(&c, NULL, &m, S, src, dst, steps, &n);
    ck_assert_int_eq(n, 2);
    double local = S / 2;
    double ar_then_ag = st_cost_collective(&c, NULL, ST_COLL_ALLREDUCE, &m.grp[1], local) +
                        st_cost_collective(&c, NULL, ST_COLL_ALLGATHER, &m.grp[0], local * 2);
    double ag_then_ar = st_cost_collective(&c, NULL, ST_COLL_ALLGATHER, &m.grp[0], local * 2) +
                        st_cost_collective(&c, NULL, ST_COLL_ALLREDUCE, &m.grp[1], local * 2);
    ck_assert_double_eq_tol(t, fmin(ar_then_ag, ag_then_ar), 1e-12);
    ck_assert(ar_then_ag < ag_then_ar); /* reduce while small */
    ck_assert_int_eq(steps[0], ST_COLL_ALLREDUCE);
}
END_TEST

/* ---------------------------------------------------------------- graphs */

START_TEST(graph_from_preset) {
    st_model m;
    ck_assert_int_eq(st_model_preset("gpt3-175b", &m), 0);
    st_graph g;
    st_error err;
    ck_assert_int_eq(st_graph_from_model(&m, 1, 2048, ST_DT_BF16, ST_ATTN_UNFUSED, &g, &err), 0);
    ck_assert_int_eq(g.repeat, 96);
    ck_assert_int_ge(op_index(&g, "qkv"), 0);
    ck_assert_int_ge(op_index(&g, "fc2"), 0);
    ck_assert_int_ge(g.block_in, 0);
    /* parameters of the tied graph are the model's, up to biases and the position table */
    double p = st_graph_params(&g), want = st_model_params(&m);
    ck_assert_msg(fabs(p - want) / want < 0.01, "graph %.4g vs model %.4g parameters", p, want);
    /* topological order: every op after its producers */
    int *pos = calloc((size_t)g.nops, sizeof *pos);
    for (int i = 0; i < g.nops; i++) pos[g.topo[i]] = i;
    for (int o = 0; o < g.nops; o++)
        for (int i = 0; i < g.ops[o].nin; i++) {
            int pr = g.t[g.ops[o].in[i]].producer;
            if (pr >= 0) ck_assert_int_lt(pos[pr], pos[o]);
        }
    free(pos);
    st_graph_free(&g);
}
END_TEST

/* attention=flash: one fused operator from the QKV tensor to the context, with opgraph.c's costs at
 * tp = 1 (its FLOPs, the kernel's shape for the rate tables, causal), and nothing of the unfused
 * core attention; the weights are the unfused graph's. */
START_TEST(graph_flash_from_preset) {
    st_model m;
    ck_assert_int_eq(st_model_preset("gpt3-175b", &m), 0);
    st_graph g, u;
    st_error err;
    ck_assert_int_eq(st_graph_from_model(&m, 2, 2048, ST_DT_BF16, ST_ATTN_FLASH, &g, &err), 0);
    ck_assert_int_eq(st_graph_from_model(&m, 2, 2048, ST_DT_BF16, ST_ATTN_UNFUSED, &u, &err), 0);
    int a = op_index(&g, "attention");
    ck_assert_int_ge(a, 0);
    for (const char *const *n = (const char *const[]){"scores", "softmax", "attn_dropout", "context",
                                                       "context_transpose", NULL};
         *n; n++) {
        ck_assert_int_lt(op_index(&g, *n), 0);
        ck_assert_int_ge(op_index(&u, *n), 0);
    }
    const st_gop *o = &g.ops[a];
    ck_assert_int_eq(o->type, ST_GOP_ATTENTION);
    ck_assert_int_eq(o->cls, ST_OPC_ATTENTION);
    ck_assert_int_eq(o->causal, 1);
    ck_assert(o->block);
    ck_assert_double_eq(o->gemm[0], 2048);
    ck_assert_double_eq(o->gemm[1], 2048);
    ck_assert_double_eq(o->gemm[2], 128);
    ck_assert_double_eq(o->gemm[3], 2 * 96);
    ck_assert_double_eq_tol(o->fwd_flops, 4.0 * 2 * 2048 * 2048 * 12288 / 2, 1);
    ck_assert_double_eq_tol(o->bwd_flops, 2.5 * o->fwd_flops, 1);
    ck_assert_int_eq(g.ops[op_index(&g, "proj")].in[0], o->out); /* the projection reads its output */
    ck_assert_double_eq(st_graph_params(&g), st_graph_params(&u));
    st_graph_free(&g);
    st_graph_free(&u);
}
END_TEST

/* A custom graph from JSON text (through a temporary file, as `--graph` reads it); on success *g
 * holds it (st_graph_free). */
static int load_json(const char *json, st_graph *g, st_error *err) {
    char path[] = "/tmp/strata_graph_XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    FILE *f = fdopen(fd, "w");
    fputs(json, f);
    fclose(f);
    int rc = st_cli_graph_load(path, g, err);
    remove(path);
    return rc;
}

static int load_err(const char *json, st_error *err) {
    st_graph g;
    int rc = load_json(json, &g, err);
    if (rc == 0) st_graph_free(&g);
    return rc;
}

START_TEST(graph_bad_input) {
    st_error err;
    /* a cycle */
    ck_assert_int_eq(load_err("{\"tensors\":[{\"name\":\"a\",\"shape\":[4,4]},{\"name\":\"b\",\"shape\":[4,4]},"
                              "{\"name\":\"x\",\"shape\":[4,4],\"input\":true}],"
                              "\"ops\":[{\"name\":\"f\",\"type\":\"elementwise\",\"inputs\":[\"x\",\"b\"],\"output\":\"a\"},"
                              "{\"name\":\"g\",\"type\":\"elementwise\",\"inputs\":[\"a\"],\"output\":\"b\"}]}",
                              &err),
                     ST_EINVAL);
    ck_assert_msg(strstr(err.text, "cycle"), "%s", err.text);
    /* a dangling tensor: read, never written */
    ck_assert_int_eq(load_err("{\"tensors\":[{\"name\":\"a\",\"shape\":[4]},{\"name\":\"b\",\"shape\":[4]}],"
                              "\"ops\":[{\"name\":\"f\",\"type\":\"elementwise\",\"inputs\":[\"a\"],\"output\":\"b\"}]}",
                              &err),
                     ST_EINVAL);
    ck_assert_msg(strstr(err.text, "dangling"), "%s", err.text);
    /* shapes that do not match across a matmul */
    ck_assert_int_eq(load_err("{\"tensors\":[{\"name\":\"x\",\"shape\":[8,16],\"input\":true},"
                              "{\"name\":\"w\",\"shape\":[32,4],\"weight\":true},{\"name\":\"y\",\"shape\":[8,4]}],"
                              "\"ops\":[{\"name\":\"mm\",\"type\":\"matmul\",\"inputs\":[\"x\",\"w\"],\"output\":\"y\"}]}",
                              &err),
                     ST_EINVAL);
    ck_assert_msg(strstr(err.text, "do not match") && strstr(err.key, "mm"), "%s / %s", err.key, err.text);
    /* unknown type, unknown key, unknown tensor, zero size */
    ck_assert_int_eq(load_err("{\"tensors\":[{\"name\":\"x\",\"shape\":[8],\"input\":true},{\"name\":\"y\",\"shape\":[8]}],"
                              "\"ops\":[{\"name\":\"f\",\"type\":\"fft\",\"inputs\":[\"x\"],\"output\":\"y\"}]}",
                              &err),
                     ST_EINVAL);
    ck_assert_msg(strstr(err.text, "fft"), "%s", err.text);
    ck_assert_int_eq(load_err("{\"tensors\":[],\"ops\":[],\"colour\":1}", &err), ST_EINVAL);
    ck_assert_int_eq(load_err("{\"tensors\":[{\"name\":\"x\",\"shape\":[0]}],\"ops\":[]}", &err), ST_EINVAL);
    ck_assert_int_eq(load_err("{\"tensors\":[{\"name\":\"x\",\"shape\":[4],\"input\":true},{\"name\":\"y\",\"shape\":[4]}],"
                              "\"ops\":[{\"name\":\"f\",\"type\":\"elementwise\",\"inputs\":[\"z\"],\"output\":\"y\"}]}",
                              &err),
                     ST_EINVAL);
    ck_assert_msg(strstr(err.text, "'z'"), "%s", err.text);
    ck_assert_int_eq(load_err("{\"tensors\": [", &err), ST_EINVAL);
    ck_assert_int_gt(err.line, 0);
}
END_TEST

/* ---------------------------------------------------------------- the planner */

static void plan_model(const char *model, const char *cl, int64_t gpus, int64_t gbs, int64_t mbs, int64_t seq,
                       int max_stages, st_autoshard_result *r) {
    st_model m;
    ck_assert_int_eq(st_model_preset(model, &m), 0);
    st_cluster c = cluster(cl, gpus);
    st_autoshard_opts o;
    st_autoshard_opts_init(&o);
    o.gbs = gbs, o.mbs = mbs, o.seq = seq, o.max_stages = max_stages;
    st_error err;
    int rc = st_autoshard(&m, NULL, &c, NULL, &o, r, &err);
    ck_assert_msg(rc == 0, "%s: %s", model, err.text);
}

static char split1(const st_autoshard_result *r, const char *op) {
    int i = op_index(r->g, op);
    ck_assert_int_ge(i, 0);
    return r->stage[0].choice[i].lab[0];
}

/* Megatron-LM's tensor parallelism, found by the ILP on its own: column-split QKV and fc1, row-split
 * projection and fc2, so two reductions per layer in forward (all-reduces, or with sequence
 * parallelism reduce-scatter + all-gather pairs of the same volume). */
START_TEST(ilp_finds_megatron) {
    st_autoshard_result r;
    plan_model("gpt-18.4b", "dgx-a100-80g", 8, 8, 1, 2048, 1, &r);
    ck_assert_int_eq(r.nstages, 1);
    ck_assert_int_eq(r.stage[0].mesh.naxes, 1);
    ck_assert_int_eq(split1(&r, "qkv"), 'n');
    ck_assert_int_eq(split1(&r, "proj"), 'n');
    ck_assert_int_eq(split1(&r, "fc1"), 'f');
    ck_assert_int_eq(split1(&r, "fc2"), 'f');
    ck_assert_str_eq(st_autoshard_role(r.g, op_index(r.g, "qkv"), &r.stage[0].choice[op_index(r.g, "qkv")], 1),
                     "column (output split)");
    ck_assert_str_eq(st_autoshard_role(r.g, op_index(r.g, "fc2"), &r.stage[0].choice[op_index(r.g, "fc2")], 1),
                     "row (partial sums)");
    int counts[ST_COLL_COUNT];
    st_autoshard_block_collectives(&r, 0, counts);
    int reductions = counts[ST_COLL_ALLREDUCE] + counts[ST_COLL_REDUCESCATTER];
    ck_assert_int_eq(reductions, 2);
    ck_assert_int_eq(counts[ST_COLL_ALLGATHER], counts[ST_COLL_REDUCESCATTER]);
    ck_assert_int_eq(counts[ST_COLL_ALLTOALL], 0);

    /* not worse than the hand-written pattern priced the same way (with and without sp) */
    st_cluster c = cluster("dgx-a100-80g", 8);
    for (int sp = 0; sp < 2; sp++) {
        const st_graph *g = r.g;
        char(*lab)[2] = calloc((size_t)g->nops, sizeof *lab);
        for (int o = 0; o < g->nops; o++) {
            const char *nm = g->ops[o].name;
            if (!strcmp(nm, "qkv") || !strcmp(nm, "qkv_bias") || !strcmp(nm, "attention") || !strcmp(nm, "proj"))
                lab[o][0] = 'n';
            else if (!strcmp(nm, "fc1") || !strcmp(nm, "act") || !strcmp(nm, "fc2"))
                lab[o][0] = 'f';
            else if (!strcmp(nm, "embedding"))
                lab[o][0] = 'v';
            else if (!strcmp(nm, "logits") || !strcmp(nm, "loss"))
                lab[o][0] = 'v';
            else if (sp && g->ops[o].block)
                lab[o][0] = 's';
        }
        double mem = 0;
        double hand = st_autoshard_price(g, &c, NULL, &r.stage[0].mesh, ST_DT_BF16, r.microbatches, (const char(*)[2])lab, &mem);
        ck_assert_msg(isfinite(hand), "the Megatron assignment must be a valid sharding");
        ck_assert_msg(r.stage[0].time_s <= hand * (1 + 1e-9), "ILP %.6f s vs Megatron%s %.6f s", r.stage[0].time_s,
                      sp ? "-SP" : "", hand);
        free(lab);
    }

    /* one cost path: the enumerator's estimate of the same plan agrees within 15% */
    st_model m;
    st_model_preset("gpt-18.4b", &m);
    st_plan p;
    st_plan_defaults(&p);
    st_error err;
    ck_assert_int_eq(st_plan_parse_spec("tp=8,pp=1,gbs=8,mbs=1,sp=1", &p, &err), 0);
    ck_assert_int_eq(st_plan_finalize(&p, &m, &c, 8, NULL, &err), 0);
    st_cost_ctx *ctx = st_cost_ctx_new(&m, &c, NULL);
    st_estimate e;
    ck_assert_int_eq(st_cost_estimate(ctx, &p, &e), 0);
    st_cost_ctx_free(ctx);
    ck_assert_msg(fabs(r.iteration_time_s - e.iteration_time_s) / e.iteration_time_s < 0.15, "ILP %.3f s vs estimate %.3f s",
                  r.iteration_time_s, e.iteration_time_s);
    ck_assert_msg(fabs(r.memory_peak_bytes - e.memory_peak_bytes) / e.memory_peak_bytes < 0.10, "memory %.3g vs %.3g",
                  r.memory_peak_bytes, e.memory_peak_bytes);
    st_autoshard_result_free(&r);
}
END_TEST

START_TEST(ilp_shards_experts) {
    st_autoshard_result r;
    plan_model("mixtral-8x7b", "dgx-h100", 16, 64, 0, 4096, 1, &r);
    int e = op_index(r.g, "expert_fc1");
    int found = 0;
    for (int a = 0; a < r.stage[0].mesh.naxes; a++) found |= r.stage[0].choice[e].lab[a] == 'e';
    ck_assert_msg(found, "expert_fc1 is not split over experts");
    int counts[ST_COLL_COUNT];
    st_autoshard_block_collectives(&r, 0, counts);
    ck_assert_int_gt(counts[ST_COLL_ALLTOALL], 0);
    ck_assert(r.memory_peak_bytes <= 78.0 * 1073741824.0);
    st_autoshard_result_free(&r);
}
END_TEST

static void plan_graph(const char *file, int64_t gpus) {
    char path[512];
    snprintf(path, sizeof path, "%s/tests/data/%s", SRCDIR, file);
    st_graph g;
    st_error err;
    ck_assert_msg(st_cli_graph_load(path, &g, &err) == 0, "%s", err.text);
    st_cluster c = cluster("dgx-a100-80g", gpus);
    st_autoshard_opts o;
    st_autoshard_opts_init(&o);
    o.microbatches = 4;
    st_autoshard_result r;
    ck_assert_msg(st_autoshard(NULL, &g, &c, NULL, &o, &r, &err) == 0, "%s", err.text);
    ck_assert_int_eq(r.nstages, 1);
    ck_assert(isfinite(r.iteration_time_s) && r.iteration_time_s > 0);
    /* every operator got a valid sharding whose splits divide its tensors */
    for (int op = 0; op < g.nops; op++) {
        ck_assert(r.stage[0].choice[op].lab[0] != '-');
        const st_gtensor *t = &g.t[g.ops[op].out];
        for (int a = 0; a < r.stage[0].mesh.naxes; a++) {
            int d = r.stage[0].choice[op].out.ax[a];
            if (d >= 0) ck_assert_int_eq(t->dim[d] % r.stage[0].mesh.size[a], 0);
        }
    }
    /* with 8 GPUs it uses them: faster than one GPU's share of the work would allow otherwise */
    ck_assert(r.mfu > 0.05);
    st_autoshard_result_free(&r);
    st_graph_free(&g);
}

START_TEST(ilp_custom_graphs) {
    plan_graph("graph_wrn_block.json", 8);
    plan_graph("graph_unet.json", 8);
    plan_graph("graph_unet.json", 16);
}
END_TEST

START_TEST(ilp_infeasible_memory) {
    st_model m;
    st_model_preset("gpt3-175b", &m);
    st_cluster c = cluster("dgx-a100-80g", 8);
    st_autoshard_opts o;
    st_autoshard_opts_init(&o);
    o.gbs = 8, o.mbs = 1, o.max_stages = 1;
    st_autoshard_result r;
    st_error err;
    ck_assert_int_eq(st_autoshard(&m, NULL, &c, NULL, &o, &r, &err), ST_ENOPLAN);
    ck_assert_msg(strstr(err.text, "memory limit") && strstr(err.text, "over"), "%s", err.text);
}
END_TEST

/* block tying: the ILP does not grow with depth */
START_TEST(ilp_size_independent_of_depth) {
    st_autoshard_result a, b;
    plan_model("gpt-1.7b", "dgx-a100-80g", 8, 8, 1, 2048, 1, &a);
    st_model m;
    st_model_preset("gpt-1.7b", &m);
    m.layers = 96;
    st_cluster c = cluster("dgx-a100-80g", 8);
    st_autoshard_opts o;
    st_autoshard_opts_init(&o);
    o.gbs = 8, o.mbs = 1, o.max_stages = 1;
    st_error err;
    ck_assert_int_eq(st_autoshard(&m, NULL, &c, NULL, &o, &b, &err), 0);
    ck_assert_int_eq(a.stage[0].ilp_rows, b.stage[0].ilp_rows);
    ck_assert_int_eq(a.stage[0].ilp_cols, b.stage[0].ilp_cols);
    st_autoshard_result_free(&a);
    st_autoshard_result_free(&b);
}
END_TEST

/* the stage DP over sub-meshes: GPT-3 on 64 GPUs is pipelined; stages cover the layers and use
 * every GPU once, each within memory */
START_TEST(ilp_pipeline_stages) {
    st_autoshard_result r;
    plan_model("gpt3-175b", "dgx-a100-80g", 64, 1536, 1, 2048, 0, &r);
    ck_assert_int_gt(r.nstages, 1);
    ck_assert_int_eq(r.stage[0].first, 0);
    ck_assert_int_eq(r.stage[r.nstages - 1].last, 96);
    int gpus = 0;
    double sum = 0, mx = 0;
    for (int i = 0; i < r.nstages; i++) {
        if (i) ck_assert_int_eq(r.stage[i].first, r.stage[i - 1].last);
        gpus += r.stage[i].mesh.nodes * r.stage[i].mesh.gpus;
        ck_assert(r.stage[i].memory_bytes <= 78.0 * 1073741824.0);
        sum += r.stage[i].time_s;
        mx = fmax(mx, r.stage[i].time_s);
    }
    ck_assert_int_eq(gpus, 64);
    ck_assert_double_eq_tol(r.iteration_time_s, sum + (double)(r.microbatches - 1) * mx, 1e-9 * r.iteration_time_s);
    ck_assert(r.mfu > 0.2 && r.mfu < 0.8);
    st_autoshard_result_free(&r);
}
END_TEST


/* ---------------------------------------------------------------- a given plan: estimate and simulation */

/* A copy of r's stage boundaries, meshes and labels only, as a plan file carries them. */
static void given_copy(const st_autoshard_result *r, st_autoshard_result *g) {
    memset(g, 0, sizeof *g);
    g->g = r->g;
    g->mbs = r->mbs;
    g->microbatches = r->microbatches;
    g->nstages = r->nstages;
    g->stage = calloc((size_t)r->nstages, sizeof *g->stage);
    ck_assert_ptr_nonnull(g->stage);
    for (int i = 0; i < r->nstages; i++) {
        g->stage[i].first = r->stage[i].first;
        g->stage[i].last = r->stage[i].last;
        g->stage[i].recompute = r->stage[i].recompute;
        g->stage[i].zero = r->stage[i].zero;
        g->stage[i].mesh = r->stage[i].mesh;
        g->stage[i].choice = calloc((size_t)r->g->nops, sizeof *g->stage[i].choice);
        ck_assert_ptr_nonnull(g->stage[i].choice);
        for (int o = 0; o < r->g->nops; o++) {
            g->stage[i].choice[o].lab[0] = r->stage[i].choice[o].lab[0];
            g->stage[i].choice[o].lab[1] = r->stage[i].choice[o].lab[1];
        }
    }
}

static void given_free(st_autoshard_result *g) {
    g->g = NULL; /* the planner's graph */
    st_autoshard_result_free(g);
}

/* What the planner found, priced again from its labels alone: the same time and memory, stage by
 * stage; and a stage's steps (st_autoshard_work) add up to its time. */
static void check_reprice(const char *model, const char *cl, int64_t gpus, int64_t gbs, int64_t seq, int max_stages) {
    st_model m;
    ck_assert_int_eq(st_model_preset(model, &m), 0);
    st_cluster c = cluster(cl, gpus);
    st_autoshard_result r, g;
    plan_model(model, cl, gpus, gbs, 0, seq, max_stages, &r);
    given_copy(&r, &g);
    st_autoshard_opts o;
    st_autoshard_opts_init(&o);
    o.gbs = gbs, o.seq = seq;
    st_error err;
    ck_assert_msg(st_autoshard_evaluate(&m, &c, NULL, &o, &g, &err) == 0, "%s: %s", model, err.text);
    double tol = 1e-9 * r.iteration_time_s;
    ck_assert_double_eq_tol(g.iteration_time_s, r.iteration_time_s, tol);
    ck_assert_double_eq_tol(g.memory_peak_bytes, r.memory_peak_bytes, 1e-9 * r.memory_peak_bytes);
    ck_assert_double_eq_tol(g.mfu, r.mfu, 1e-9);
    for (int i = 0; i < r.nstages; i++) {
        ck_assert_double_eq_tol(g.stage[i].time_s, r.stage[i].time_s, 1e-9 * r.stage[i].time_s);
        st_as_work w;
        ck_assert_int_eq(st_autoshard_work(&g, i, &c, NULL, o.dtype, &w, &err), 0);
        int k = g.stage[i].last - g.stage[i].first;
        double t = 0, mult[ST_AS_PARTS] = {1, 1, k, k - 1, 1, 1};
        for (int p = 0; p < ST_AS_PARTS; p++)
            for (int b = 0; b < 2; b++)
                for (int j = 0; j < w.n[p][b]; j++) t += mult[p] * w.step[p][b][j].time_s;
        t += (w.sync_s[0] + w.sync_s[1] + w.gather_s[0] + w.gather_s[1]) / (double)g.microbatches + w.p2p_s;
        ck_assert_msg(fabs(t - g.stage[i].time_s) <= 1e-9 * t, "%s stage %d: steps %.9g s, stage %.9g s", model, i, t,
                      g.stage[i].time_s);
        /* memory: the state and the activations 1F1B keeps in flight on this stage */
        double mem = w.state_bytes + w.saved_bytes * (double)(g.nstages - i);
        ck_assert_double_eq_tol(mem, g.stage[i].memory_bytes, 1e-9 * mem);
        st_as_work_free(&w);
    }
    given_free(&g);
    st_autoshard_result_free(&r);
}

START_TEST(given_plan_prices_as_planned) {
    check_reprice("gpt-18.4b", "dgx-a100-80g", 8, 64, 2048, 1);    /* Megatron-SP on one node */
    check_reprice("gpt-18.4b", "dgx-a100-80g", 8, 1536, 2048, 0);  /* stages on different sub-meshes */
    check_reprice("mixtral-8x7b", "dgx-h100", 16, 256, 4096, 0);   /* experts: all-to-all */
    check_reprice("llama2-7b", "dgx-a100-80g", 16, 256, 4096, 1);  /* two axes: nodes x GPUs */
}
END_TEST

/* ---------------------------------------------------------------- mixed clusters (node groups) */

#define MIXED SRCDIR "/examples/mixed-a100-h100.json"

/* On examples/mixed-a100-h100.json (2 DGX A100 + 2 DGX H100) each stage is priced on its own group's
 * GPU and links: its time less the exchange with its neighbours is what the same stage costs on a
 * uniform cluster of that group's nodes (the presets the example copies); the plan prices and
 * simulates stage by stage as planned. */
START_TEST(ilp_mixed_stages_own_rates) {
    st_model m;
    ck_assert_int_eq(st_model_preset("llama2-7b", &m), 0);
    st_cluster c = cluster(MIXED, 0), u[2] = {cluster("dgx-a100-80g", 32), cluster("dgx-h100", 32)};
    st_autoshard_result r, g[2];
    plan_model("llama2-7b", MIXED, 0, 256, 0, 4096, 0, &r);
    st_autoshard_opts o;
    st_autoshard_opts_init(&o);
    o.gbs = 256, o.seq = 4096;
    st_error err;
    int seen[2] = {0, 0};
    for (int k = 0; k < 2; k++) {
        given_copy(&r, &g[k]);
        ck_assert_msg(st_autoshard_evaluate(&m, &u[k], NULL, &o, &g[k], &err) == 0, "%s", err.text);
    }
    for (int i = 0, gpu = 0; i < r.nstages; gpu += r.stage[i].mesh.nodes * r.stage[i].mesh.gpus, i++) {
        int g0 = st_cluster_rank_group(&c, gpu), g1 = st_cluster_rank_group(&c, gpu + r.stage[i].mesh.nodes *
                                                                                      r.stage[i].mesh.gpus - 1);
        if (g0 != g1) continue;
        seen[g0]++;
        const st_as_stage *a = &r.stage[i], *b = &g[g0].stage[i];
        ck_assert_double_eq_tol(a->time_s - a->p2p_s, b->time_s - b->p2p_s, 1e-9 * a->time_s);
        ck_assert_double_eq_tol(a->compute_s, b->compute_s, 1e-9 * a->compute_s);
        ck_assert_double_eq_tol(a->memory_bytes, b->memory_bytes, 1e-9 * a->memory_bytes);
        /* and not what the other group's GPUs would take */
        ck_assert(fabs(a->compute_s - g[!g0].stage[i].compute_s) > 0.2 * a->compute_s);
        fprintf(stderr, "ilp mixed: stage %d layers %d-%d on %s, compute %.3f ms (%.3f ms on the other group)\n", i,
                a->first, a->last - 1, c.groups[g0].name, a->compute_s * 1e3, g[!g0].stage[i].compute_s * 1e3);
    }
    ck_assert_int_ge(seen[0], 1);
    ck_assert_int_ge(seen[1], 1);
    for (int k = 0; k < 2; k++) given_free(&g[k]);
    st_autoshard_result_free(&r);
    check_reprice("llama2-7b", MIXED, 0, 256, 4096, 0);
}
END_TEST

/* The plan r with its two stages cut at layer n0 instead, priced from its labels on c: the
 * iteration, and each stage's time in t[2]. */
static double split_at(const st_autoshard_result *r, const st_model *m, const st_cluster *c, int n0, double t[2]) {
    st_autoshard_result g;
    given_copy(r, &g);
    g.stage[0].last = g.stage[1].first = n0;
    st_autoshard_opts o;
    st_autoshard_opts_init(&o);
    o.gbs = 256, o.seq = 4096;
    st_error err;
    ck_assert_msg(st_autoshard_evaluate(m, c, NULL, &o, &g, &err) == 0, "%s", err.text);
    t[0] = g.stage[0].time_s, t[1] = g.stage[1].time_s;
    double it = g.iteration_time_s;
    given_free(&g);
    return it;
}

/* AMP's and HexiScale's uneven stages, in closed form: one DGX A100 and one DGX H100 node, two stages.
 * With the plan's shardings a stage's time is affine in its layers, t0 = c0 + a n on the A100s and
 * t1 = c1 + h n on the H100s (a, h: per-layer times, measured as differences); the 1F1B iteration
 * t0 + t1 + (B - 1) max(t0, t1) is least where the stages balance, n0 = (c1 - c0 + h L) / (a + h), and
 * the planner's cut lies within one layer of it. Its iteration is the closed form's at its cut, and
 * the even split costs what the closed form says: the gain is the formula's. */
START_TEST(ilp_mixed_uneven_closed_form) {
    st_model m;
    ck_assert_int_eq(st_model_preset("llama2-7b", &m), 0);
    st_cluster c = cluster(MIXED, 0);
    c.groups[0].nodes = c.groups[1].nodes = 1;
    st_error err;
    ck_assert_msg(st_cluster_finalize(&c, NULL, &err) == 0, "%s", err.text);
    st_autoshard_opts o;
    st_autoshard_opts_init(&o);
    o.gbs = 256, o.seq = 4096, o.max_stages = 2;
    st_autoshard_result r;
    ck_assert_msg(st_autoshard(&m, NULL, &c, NULL, &o, &r, &err) == 0, "%s", err.text);
    ck_assert_int_eq(r.nstages, 2);
    ck_assert_int_eq(r.stage[0].mesh.nodes * r.stage[0].mesh.gpus, 8);
    int L = 32, n0 = r.stage[0].last;
    double B = (double)r.microbatches, t[2], lo[2], hi[2];
    double planned = split_at(&r, &m, &c, n0, t);
    ck_assert_double_eq_tol(planned, r.iteration_time_s, 1e-9 * planned);
    split_at(&r, &m, &c, n0 - 1, lo);
    split_at(&r, &m, &c, n0 + 1, hi);
    double a = t[0] - lo[0], h = lo[1] - t[1];
    ck_assert_double_eq_tol(hi[0] - t[0], a, 1e-6 * a); /* affine */
    ck_assert_double_eq_tol(t[1] - hi[1], h, 1e-6 * h);
    double c0 = t[0] - a * n0, c1 = t[1] - h * (L - n0), x = (c1 - c0 + h * L) / (a + h);
    ck_assert_msg(fabs(n0 - x) <= 1, "cut at %d, closed form %.2f", n0, x);
    ck_assert(a > 2 * h); /* the A100 stage's layer is the slower */
    double e0 = c0 + a * L / 2, e1 = c1 + h * L / 2, even_cf = e0 + e1 + (B - 1) * fmax(e0, e1);
    double even = split_at(&r, &m, &c, L / 2, t);
    ck_assert_double_eq_tol(even, even_cf, 1e-6 * even);
    double p0 = c0 + a * n0, p1 = c1 + h * (L - n0), plan_cf = p0 + p1 + (B - 1) * fmax(p0, p1);
    ck_assert_double_eq_tol(r.iteration_time_s, plan_cf, 1e-6 * plan_cf);
    ck_assert(even > 1.3 * r.iteration_time_s);
    fprintf(stderr,
            "ilp mixed: a %.3f ms, h %.3f ms per layer; cut %d (closed form %.2f, L h / (a + h) = %.2f); "
            "%.3f s against %.3f s even (%.3fx, closed form %.3fx)\n",
            a * 1e3, h * 1e3, n0, x, L * h / (a + h), r.iteration_time_s, even, even / r.iteration_time_s,
            even_cf / plan_cf);
    st_autoshard_result_free(&r);
}
END_TEST

/* Each stage under its own GPU's memory: with A100 40GB nodes beside H100 80GB ones, the A100 stage
 * stays under 40 GB less the reserve while an H100 stage holds more than that. */
START_TEST(ilp_mixed_own_memory) {
    st_model m;
    ck_assert_int_eq(st_model_preset("llama2-7b", &m), 0);
    st_cluster c = cluster(MIXED, 0), a40 = cluster("dgx-a100-40g", 8);
    c.groups[0].nodes = c.groups[1].nodes = 1;
    c.groups[0].gpu = a40.gpu;
    st_error err;
    ck_assert_msg(st_cluster_finalize(&c, NULL, &err) == 0, "%s", err.text);
    st_autoshard_opts o;
    st_autoshard_opts_init(&o);
    o.gbs = 256, o.seq = 4096;
    st_autoshard_result r;
    ck_assert_msg(st_autoshard(&m, NULL, &c, NULL, &o, &r, &err) == 0, "%s", err.text);
    st_cluster va, vh;
    st_cluster_view(&c, 0, 8, &va);
    st_cluster_view(&c, 8, 8, &vh);
    double lim_a = st_autoshard_memory_limit(&va), lim_h = st_autoshard_memory_limit(&vh), most_h = 0;
    ck_assert(lim_h > 1.5 * lim_a);
    for (int i = 0, gpu = 0; i < r.nstages; gpu += r.stage[i].mesh.nodes * r.stage[i].mesh.gpus, i++) {
        int g = st_cluster_rank_group(&c, gpu);
        ck_assert(r.stage[i].memory_bytes <= (g ? lim_h : lim_a));
        if (g) most_h = fmax(most_h, r.stage[i].memory_bytes);
    }
    ck_assert_msg(most_h > lim_a, "H100 stages hold %.1f GiB at most", most_h / 1073741824.0);
    st_autoshard_result_free(&r);
}
END_TEST

/* A label an operator cannot split is refused, naming the stage and the operator. */
START_TEST(given_plan_bad_label) {
    st_model m;
    ck_assert_int_eq(st_model_preset("gpt-18.4b", &m), 0);
    st_cluster c = cluster("dgx-a100-80g", 8);
    st_autoshard_result r, g;
    plan_model("gpt-18.4b", "dgx-a100-80g", 8, 64, 1, 2048, 1, &r);
    given_copy(&r, &g);
    g.stage[0].choice[op_index(r.g, "fc1")].lab[0] = 'z';
    st_autoshard_opts o;
    st_autoshard_opts_init(&o);
    o.gbs = 64, o.seq = 2048;
    st_error err;
    st_error_clear(&err);
    ck_assert_int_eq(st_autoshard_evaluate(&m, &c, NULL, &o, &g, &err), ST_EINVAL);
    ck_assert_str_eq(err.key, "stages[0].ops.fc1.split");
    ck_assert_ptr_nonnull(strstr(err.text, "'fc1'"));
    given_free(&g);
    st_autoshard_result_free(&r);
}
END_TEST

/* The operators an ILP plan's lowering names (program.h, "Operators"), stage by stage, in one
 * micro-batch: every operator of the stage runs once per layer it holds (the head's and tail's once,
 * a custom graph's in its segment) in forward and in backward, and with recompute each block
 * operator's forward once more per layer; each entry is one device's share of the whole operator,
 * its FLOPs times the devices that split it giving the unsharded operator's (and a GEMM's shape
 * 2 m n k batch of them), its time what the instruction takes. A collective that names an
 * operator follows it in forward (and recompute) and precedes it in backward. Returns the
 * collectives that name one. */
static int check_ops_named(const st_autoshard_result *r, const st_lowered *low) {
    const st_graph *g = r->g;
    const uint8_t phases[3] = {ST_PHASE_FWD, ST_PHASE_BWD, ST_PHASE_RECOMPUTE};
    int named = 0;
    ck_assert_int_gt(low->nops, 0);
    int *first = malloc(sizeof *first * (size_t)low->nops), *last = malloc(sizeof *last * (size_t)low->nops);
    ck_assert(first && last);
    for (int i = 0; i < r->nstages; i++) {
        const st_as_stage *st = &r->stage[i];
        const st_program *pg = &low->progs[i];
        int layers = g->block_in < 0 ? 1 : st->last - st->first;
        int *seen = calloc((size_t)g->nops * (size_t)layers * 3, sizeof *seen);
        ck_assert_ptr_nonnull(seen);
        for (int e = 0; e < low->nops; e++) first[e] = last[e] = -1;
        for (int k = 0; k < pg->n; k++) {
            const st_ins *in = &pg->ins[k];
            if (in->kind != ST_INS_COMPUTE || in->mb != 0) continue;
            double t = 0;
            for (int e = in->op; e < in->op + in->nops; e++) {
                const st_lowered_op *o = &low->ops[e];
                const st_gop *go = &g->ops[o->index];
                ck_assert_int_eq(o->phase, in->phase);
                ck_assert_str_eq(o->name, go->name);
                ck_assert_int_eq(o->cls, go->cls);
                ck_assert_int_eq(first[e], -1); /* once per micro-batch */
                first[e] = last[e] = k;
                t += o->dur_s;
                int l = g->block_in < 0 ? 0 : go->block ? o->layer - st->first : 0;
                if (g->block_in < 0) ck_assert_int_eq(o->layer, g->seg[o->index]);
                else if (go->block) ck_assert(o->layer >= st->first && o->layer < st->last);
                else ck_assert_int_eq(o->layer, st_graph_op_mult(g, o->index, 0, 1) ? -1 : (int)g->repeat);
                int ph = o->phase == ST_PHASE_FWD ? 0 : o->phase == ST_PHASE_BWD ? 1 : 2;
                seen[((size_t)o->index * (size_t)layers + (size_t)l) * 3 + (size_t)ph]++;
                double split = 1;
                for (int a = 0; a < st->mesh.naxes; a++)
                    if (st->choice[o->index].lab[a]) split *= st->mesh.size[a];
                double whole = ph == 1 ? go->bwd_flops : go->fwd_flops;
                ck_assert_msg(fabs(o->flops * split - whole) <= 1e-9 * whole, "%s: %g x %g FLOPs, whole %g", o->name,
                              o->flops, split, whole);
                if (o->cls == ST_OPC_GEMM && ph != 1)
                    ck_assert_msg(fabs(2 * o->m * o->n * o->k * o->batch * split - whole) <= 1e-9 * whole,
                                  "%s: shape %g x %g x %g x %g on %g devices, %g FLOPs", o->name, o->m, o->n, o->k,
                                  o->batch, split, whole);
            }
            ck_assert(fabs(t - in->dur_s) <= 1e-12 * in->dur_s);
        }
        for (int o = 0; o < g->nops; o++)
            for (int l = 0; l < layers; l++) {
                int here = st->choice[o].lab[0] != '-' && (g->block_in < 0 || g->ops[o].block || l == 0);
                int rec = here && st->recompute && g->block_in >= 0 && g->ops[o].block;
                const int *n = &seen[((size_t)o * (size_t)layers + (size_t)l) * 3];
                ck_assert_msg(n[0] == here && n[1] == here && n[2] == rec, "stage %d %s layer %d: %d %d %d", i,
                              g->ops[o].name, l, n[0], n[1], n[2]);
            }
        for (int k = 0; k < pg->n; k++) { /* where the collectives sit */
            const st_ins *in = &pg->ins[k];
            if (in->kind != ST_INS_COLL || in->mb != 0 || in->coll_op < 0) continue;
            named++;
            uint8_t ph = low->ops[in->coll_op].phase;
            ck_assert(ph == phases[0] || ph == phases[1] || ph == phases[2]);
            if (ph == ST_PHASE_BWD) ck_assert_int_gt(last[in->coll_op], k);
            else ck_assert(first[in->coll_op] >= 0 && first[in->coll_op] < k);
        }
        free(seen);
    }
    free(first), free(last);
    return named;
}

static void sim_plan(const st_autoshard_result *r, const st_cluster *c, st_sim_result *res) {
    st_lowered low;
    st_error err;
    ck_assert_msg(st_lower_autoshard(r, c, NULL, ST_DT_BF16, &low, &err) == 0, "%s", err.text);
    ck_assert_msg(st_program_validate(&low, &err) == 0, "%s", err.text);
    check_ops_named(r, &low);
    ck_assert_msg(st_sim_run(&low, 0, NULL, res, &err) == 0, "%s", err.text);
    st_lowered_destroy(&low);
}

/* A plan the planner found (model m, or a custom graph with m NULL; o gives gbs and seq), priced
 * again from its labels alone: the same time and memory; and simulated: within sim_tol of its time
 * (relative), each stage's memory as planned. */
static void check_replay(const st_model *m, const st_cluster *c, const st_autoshard_opts *o,
                         const st_autoshard_result *r, double sim_tol) {
    st_autoshard_result g;
    st_error err;
    given_copy(r, &g);
    ck_assert_msg(st_autoshard_evaluate(m, c, NULL, o, &g, &err) == 0, "%s", err.text);
    ck_assert_double_eq_tol(g.iteration_time_s, r->iteration_time_s, 1e-9 * r->iteration_time_s);
    ck_assert_double_eq_tol(g.memory_peak_bytes, r->memory_peak_bytes, 1e-9 * r->memory_peak_bytes);
    given_free(&g);
    st_sim_result res;
    sim_plan(r, c, &res);
    ck_assert_msg(fabs(res.iteration_time_s / r->iteration_time_s - 1) <= sim_tol, "simulated %.4f s, planned %.4f s",
                  res.iteration_time_s, r->iteration_time_s);
    for (int i = 0; i < r->nstages; i++)
        ck_assert_msg(fabs(res.ranks[i].memory_peak_bytes / r->stage[i].memory_bytes - 1) < 1e-6,
                      "stage %d (recompute %d, zero %d): simulated %.3f GiB, planned %.3f GiB", i, r->stage[i].recompute,
                      r->stage[i].zero, res.ranks[i].memory_peak_bytes / 1073741824.0,
                      r->stage[i].memory_bytes / 1073741824.0);
    st_sim_result_destroy(&res);
}

/* The simulator runs the plan's steps: one stage (no pipeline) takes exactly the planner's time and
 * memory; a pipeline's 1F1B agrees with sum + (micro-batches - 1) x slowest within 1%. */
START_TEST(given_plan_simulates) {
    st_cluster c = cluster("dgx-a100-80g", 8);
    st_autoshard_result r;
    st_sim_result res;
    plan_model("gpt-18.4b", "dgx-a100-80g", 8, 64, 0, 2048, 1, &r);
    sim_plan(&r, &c, &res);
    ck_assert_int_eq(res.nranks, 1);
    ck_assert_double_eq_tol(res.iteration_time_s, r.iteration_time_s, 1e-9 * r.iteration_time_s);
    ck_assert_double_eq_tol(res.ranks[0].memory_peak_bytes, r.memory_peak_bytes, 1e-6 * r.memory_peak_bytes);
    st_sim_result_destroy(&res);
    st_autoshard_result_free(&r);

    c = cluster("dgx-a100-80g", 64);
    plan_model("gpt3-175b", "dgx-a100-80g", 64, 256, 1, 2048, 0, &r);
    ck_assert_int_gt(r.nstages, 1);
    sim_plan(&r, &c, &res);
    ck_assert_int_eq(res.nranks, r.nstages);
    ck_assert_msg(fabs(res.iteration_time_s / r.iteration_time_s - 1) < 0.01, "simulated %.3f s, planned %.3f s",
                  res.iteration_time_s, r.iteration_time_s);
    for (int i = 0; i < r.nstages; i++)
        ck_assert_double_eq_tol(res.ranks[i].memory_peak_bytes, r.stage[i].memory_bytes, 1e-6 * r.stage[i].memory_bytes);
    st_sim_result_destroy(&res);
    st_autoshard_result_free(&r);
}
END_TEST

/* Coarsening a custom graph for the stage DP (igraph's dominator tree): segments end at the
 * operators every path from the inputs to the outputs crosses. The wide-ResNet block is a chain
 * (its residual reads the block's input, a graph input): every operator but the last ends one. In
 * the U-Net the skip connection spans down .. up_proj, so those share one segment with the concat
 * that closes it. */
START_TEST(graph_segments) {
    char path[512];
    st_graph g;
    st_error err;
    snprintf(path, sizeof path, "%s/tests/data/graph_wrn_block.json", SRCDIR);
    ck_assert_msg(st_cli_graph_load(path, &g, &err) == 0, "%s", err.text);
    ck_assert_int_eq(g.nsegs, 8);
    ck_assert_int_eq(st_graph_units(&g), 8);
    ck_assert_int_eq(g.seg_cut[g.nsegs - 1], -1);
    ck_assert_int_eq(g.seg[op_index(&g, "pool")], 7);
    ck_assert_int_eq(st_graph_unit_tensor(&g, 7), g.ops[op_index(&g, "residual")].out);
    st_graph_free(&g);

    snprintf(path, sizeof path, "%s/tests/data/graph_unet.json", SRCDIR);
    ck_assert_msg(st_cli_graph_load(path, &g, &err) == 0, "%s", err.text);
    ck_assert_int_eq(g.nsegs, 6);
    int s = g.seg[op_index(&g, "skip")];
    const char *inside[] = {"down", "mid", "mid_act", "up", "up_proj"};
    for (int i = 0; i < 5; i++) ck_assert_int_eq(g.seg[op_index(&g, inside[i])], s);
    ck_assert_int_eq(g.seg_cut[s], op_index(&g, "skip"));
    ck_assert_int_lt(g.seg[op_index(&g, "enc_act")], s);
    ck_assert_int_gt(g.seg[op_index(&g, "dec")], s);
    st_graph_free(&g);
}
END_TEST

/* The tower graph (tests/data/graph_tower.json: 16 segments) on 16 A100s, and options with
 * `microbatches` micro-batches and a memory limit of `limit_gib` (0: the GPU's). */
static void tower(st_graph *g, st_cluster *c, st_autoshard_opts *o, int64_t microbatches, double limit_gib) {
    char path[512];
    snprintf(path, sizeof path, "%s/tests/data/graph_tower.json", SRCDIR);
    st_error err;
    ck_assert_msg(st_cli_graph_load(path, g, &err) == 0, "%s", err.text);
    *c = cluster("dgx-a100-80g", 16);
    st_autoshard_opts_init(o);
    o->microbatches = microbatches;
    o->mem_limit_bytes = limit_gib * 1073741824.0;
}

/* A custom graph too big for one stage's memory is pipelined over its segments; the stages cover
 * them in order, fit, and the plan prices and simulates as planned. */
START_TEST(ilp_custom_pipeline) {
    st_graph g;
    st_cluster c;
    st_autoshard_opts o;
    st_error err;
    tower(&g, &c, &o, 64, 0);
    ck_assert_int_eq(g.nsegs, 16);
    o.zero = 0; /* with the distributed optimizer the tower fits one stage (ilp_zero_fits_tower) */
    st_autoshard_result r;
    ck_assert_msg(st_autoshard(NULL, &g, &c, NULL, &o, &r, &err) == 0, "%s", err.text);
    ck_assert_int_eq(r.nstages, 1); /* plenty of memory: one stage */
    double t1 = r.iteration_time_s;
    st_autoshard_result_free(&r);
    o.mem_limit_bytes = 6.0 * 1073741824.0;
    ck_assert_msg(st_autoshard(NULL, &g, &c, NULL, &o, &r, &err) == 0, "%s", err.text);
    ck_assert_int_gt(r.nstages, 1);
    ck_assert(r.iteration_time_s >= t1 * (1 - 1e-9)); /* the tighter problem is no faster */
    int gpus = 0;
    for (int i = 0; i < r.nstages; i++) {
        ck_assert_int_eq(r.stage[i].first, i ? r.stage[i - 1].last : 0);
        ck_assert(r.stage[i].memory_bytes <= o.mem_limit_bytes);
        gpus += r.stage[i].mesh.nodes * r.stage[i].mesh.gpus;
        for (int op = 0; op < g.nops; op++) {
            int here = g.seg[op] >= r.stage[i].first && g.seg[op] < r.stage[i].last;
            ck_assert_int_eq(r.stage[i].choice[op].lab[0] != '-', here);
        }
    }
    ck_assert_int_eq(r.stage[r.nstages - 1].last, 16);
    ck_assert_int_eq(gpus, 16);
    /* priced again from its labels, and simulated */
    st_autoshard_opts eo;
    st_autoshard_opts_init(&eo);
    check_replay(NULL, &c, &eo, &r, 0.01);
    st_autoshard_result_free(&r);
    st_graph_free(&g);
}
END_TEST

/* Under a tight memory limit the stages recompute their layers' activations (full recompute): they
 * keep each layer's input only, and run its forward again before its backward. The plan prices
 * again as planned, and simulates to the same memory per stage (the replayed forward allocates one
 * layer's activations) and time within 1%. */
START_TEST(ilp_recompute) {
    st_model m;
    ck_assert_int_eq(st_model_preset("gpt3-175b", &m), 0);
    st_cluster c = cluster("dgx-a100-80g", 64);
    st_autoshard_opts o;
    st_autoshard_opts_init(&o);
    o.gbs = 256, o.mbs = 1, o.seq = 2048;
    o.attention = ST_ATTN_UNFUSED; /* its s x s scores are what overflow 60 GiB */
    o.mem_limit_bytes = 60.0 * 1073741824.0;
    st_autoshard_result r, loose;
    st_error err;
    ck_assert_msg(st_autoshard(&m, NULL, &c, NULL, &o, &r, &err) == 0, "%s", err.text);
    int any = 0;
    for (int i = 0; i < r.nstages; i++) {
        any |= r.stage[i].recompute;
        ck_assert(r.stage[i].memory_bytes <= o.mem_limit_bytes);
    }
    ck_assert_msg(any, "no stage recomputes under 60 GiB");
    o.mem_limit_bytes = 0;
    ck_assert_msg(st_autoshard(&m, NULL, &c, NULL, &o, &loose, &err) == 0, "%s", err.text);
    ck_assert(loose.iteration_time_s < r.iteration_time_s); /* recompute costs time */
    st_autoshard_result_free(&loose);
    check_replay(&m, &c, &o, &r, 0.01);
    st_autoshard_result_free(&r);
}
END_TEST

/* An executor can run an ILP plan's programs: Megatron's split found by the ILP, lowered, names its
 * operators (check_ops_named), and the forward's reduction after the row-parallel fc2 names fc2. */
START_TEST(ilp_lowering_names_operators) {
    st_cluster c = cluster("dgx-a100-80g", 8);
    st_autoshard_result r;
    plan_model("gpt-18.4b", "dgx-a100-80g", 8, 8, 1, 2048, 1, &r);
    ck_assert_int_eq(split1(&r, "fc2"), 'f');
    st_lowered low;
    st_error err;
    ck_assert_msg(st_lower_autoshard(&r, &c, NULL, ST_DT_BF16, &low, &err) == 0, "%s", err.text);
    ck_assert_msg(st_program_validate(&low, &err) == 0, "%s", err.text);
    ck_assert_int_gt(check_ops_named(&r, &low), 0);
    int fc2 = 0;
    for (int k = 0; k < low.progs[0].n; k++) {
        const st_ins *in = &low.progs[0].ins[k];
        if (in->kind == ST_INS_COLL && in->coll_op >= 0 && low.ops[in->coll_op].phase == ST_PHASE_FWD &&
            strcmp(low.ops[in->coll_op].name, "fc2") == 0)
            fc2++;
    }
    ck_assert_int_gt(fc2, 0);
    st_lowered_destroy(&low);
    st_autoshard_result_free(&r);
}
END_TEST

/* ---------------------------------------------------------------- the distributed optimizer (ZeRO-1) */

/* A one-stage plan of graph g on mesh, labels per op (lab[o][0], lab[o][1]), priced by
 * st_autoshard_evaluate with ZeRO stage `zero`; r is the priced result (st_autoshard_result_free,
 * after setting r->g = NULL when g is the caller's: given_free). */
static void price_given(const st_model *m, const st_graph *g, const st_cluster *c, const st_mesh *mesh,
                        const char (*lab)[2], int zero, int64_t mbs, int64_t microbatches, st_autoshard_result *r) {
    memset(r, 0, sizeof *r);
    r->g = g;
    r->mbs = mbs;
    r->microbatches = microbatches;
    r->nstages = 1;
    r->stage = calloc(1, sizeof *r->stage);
    ck_assert_ptr_nonnull(r->stage);
    r->stage[0].first = 0;
    r->stage[0].last = st_graph_units(g);
    r->stage[0].mesh = *mesh;
    r->stage[0].zero = zero;
    r->stage[0].choice = calloc((size_t)g->nops, sizeof *r->stage[0].choice);
    ck_assert_ptr_nonnull(r->stage[0].choice);
    for (int o = 0; o < g->nops; o++) r->stage[0].choice[o].lab[0] = lab[o][0], r->stage[0].choice[o].lab[1] = lab[o][1];
    st_autoshard_opts o;
    st_autoshard_opts_init(&o);
    o.gbs = mbs * microbatches, o.seq = 2048;
    st_error err;
    ck_assert_msg(st_autoshard_evaluate(m, c, NULL, &o, r, &err) == 0, "%s", err.text);
    ck_assert_int_eq(r->stage[0].zero, zero);
}

/* One matmul, batch split over the 8 GPUs of a node: its weight (P parameters) is replicated 8
 * times. Plain data parallelism keeps 18 bytes per parameter and all-reduces the fp32 gradient;
 * the distributed optimizer keeps 2 + 4 + 12/8 and reduce-scatters the gradient (4P bytes), then
 * all-gathers the bf16 weights (2P bytes). The ring on NVLink (cost/comm.c): a collective of S
 * bytes over n ranks takes (n-1)/n S/B per pass (two for the all-reduce) + (n-1) latencies per pass;
 * B follows from the all-reduce's time, and the reduce-scatter + all-gather must then take
 * 6/8 of its bandwidth term in as many latencies. */
START_TEST(ilp_zero_hand_computed) {
    st_graph g;
    st_error err;
    ck_assert_msg(load_json("{\"name\": \"one-mm\", \"tensors\": [{\"name\": \"x\", \"shape\": [64, 1024], \"input\": true},"
                            "{\"name\": \"w\", \"shape\": [1024, 4096], \"weight\": true}, {\"name\": \"y\", \"shape\": [64, 4096]}],"
                            "\"ops\": [{\"name\": \"mm\", \"type\": \"matmul\", \"inputs\": [\"x\", \"w\"], \"output\": \"y\"}]}",
                            &g, &err) == 0,
                  "%s", err.text);
    st_cluster c = cluster("dgx-a100-80g", 8);
    st_mesh mesh;
    int size[1] = {8};
    st_mesh_init(&mesh, &c, 1, 8, 1, size);
    char lab[1][2] = {{g.ops[0].lab[0][0], 0}}; /* the batch label */
    const double P = 1024.0 * 4096.0, n = 8, lat = c.intra_latency_s;
    const int64_t B = 4; /* micro-batches */
    double state[2], sync[2], ar = 0;
    for (int z = 0; z < 2; z++) {
        st_autoshard_result r;
        price_given(NULL, &g, &c, &mesh, (const char(*)[2])lab, z, 0, B, &r);
        st_as_work w;
        ck_assert_int_eq(st_autoshard_work(&r, 0, &c, NULL, ST_DT_BF16, &w, &err), 0);
        ck_assert_int_eq(w.zero, z);
        state[z] = w.state_bytes;
        sync[z] = w.sync_s[0] + w.gather_s[0];
        ck_assert_double_eq_tol(r.stage[0].sync_s * (double)B, sync[z], 1e-12);
        ck_assert_double_eq_tol(r.stage[0].memory_bytes, w.state_bytes + w.saved_bytes, 1e-6);
        if (z == 0) {
            ck_assert_double_eq_tol(state[0], 18 * P, 1e-6);
            ck_assert_double_eq(w.sync_bytes[0], 4 * P);
            ck_assert_double_eq(w.gather_s[0], 0);
            ar = w.sync_s[0];
        } else {
            ck_assert_double_eq_tol(state[1], (2 + 4 + 12 / n) * P, 1e-6);
            ck_assert_double_eq(w.sync_bytes[0], 4 * P);
            ck_assert_double_eq(w.gather_bytes[0], 2 * P);
            double bw = 2 * (n - 1) / n * 4 * P / (ar - 2 * (n - 1) * lat); /* from the all-reduce */
            ck_assert_double_eq_tol(w.sync_s[0], (n - 1) / n * 4 * P / bw + (n - 1) * lat, 1e-12);
            ck_assert_double_eq_tol(w.gather_s[0], (n - 1) / n * 2 * P / bw + (n - 1) * lat, 1e-12);
        }
        st_as_work_free(&w);
        given_free(&r);
    }
    ck_assert(sync[1] < sync[0]);
    /* replicated along no axis (the weight split over the mesh): nothing to shard, nothing to reduce */
    char col[1][2] = {{g.ops[0].lab[1][1], 0}};
    for (int z = 0; z < 2; z++) {
        st_autoshard_result r;
        price_given(NULL, &g, &c, &mesh, (const char(*)[2])col, z, 0, B, &r);
        st_as_work w;
        ck_assert_int_eq(st_autoshard_work(&r, 0, &c, NULL, ST_DT_BF16, &w, &err), 0);
        ck_assert_double_eq_tol(w.state_bytes, 18 * P / n, 1e-6);
        ck_assert_double_eq(w.sync_s[0] + w.gather_s[0], 0);
        st_as_work_free(&w);
        given_free(&r);
    }
    st_graph_free(&g);
}
END_TEST

/* Model m's graph for 8 sequences of 2048 tokens on one node of 8 A100s, a one-axis mesh, and room
 * for a label per operator (free). */
static void one_node(const st_model *m, st_attention attn, st_cluster *c, st_graph *g, st_mesh *mesh,
                     char (**lab)[2]) {
    st_error err;
    *c = cluster("dgx-a100-80g", 8);
    ck_assert_int_eq(st_graph_from_model(m, 8, 2048, ST_DT_BF16, attn, g, &err), 0);
    int size[1] = {8};
    st_mesh_init(mesh, c, 1, 8, 1, size);
    *lab = calloc((size_t)g->nops, sizeof **lab);
    ck_assert_ptr_nonnull(*lab);
}

/* Labels of a GPT model's graph on a one-axis mesh: every operator splits the batch (pattern 0,
 * data parallel), or Megatron's tensor parallelism, the norms and residuals (the final norm too)
 * splitting the sequence (pattern 1, sequence parallelism) or whole on every rank (pattern 2). */
static void layer_labels(const st_graph *g, int pattern, char (*lab)[2]) {
    for (int o = 0; o < g->nops; o++) {
        const char *nm = g->ops[o].name;
        lab[o][0] = 'b';
        lab[o][1] = 0;
        if (pattern == 0) continue;
        if (!strcmp(nm, "qkv") || !strcmp(nm, "qkv_bias") || !strcmp(nm, "rope") || !strcmp(nm, "scores") ||
            !strcmp(nm, "softmax") || !strcmp(nm, "attn_dropout") || !strcmp(nm, "context") ||
            !strcmp(nm, "context_transpose") || !strcmp(nm, "attention") || !strcmp(nm, "proj"))
            lab[o][0] = 'n';
        else if (!strcmp(nm, "fc1") || !strcmp(nm, "act") || !strcmp(nm, "fc2"))
            lab[o][0] = 'f';
        else if (!strcmp(nm, "embedding") || !strcmp(nm, "logits") || !strcmp(nm, "loss"))
            lab[o][0] = 'v';
        else
            lab[o][0] = pattern == 1 && (g->ops[o].block || g->ops[o].type == ST_GOP_NORM) ? 's' : 0;
    }
}

/* For the same sharding, the distributed optimizer never costs more gradient-sync time (on one
 * node's ring: 6/8 of the all-reduce's bytes, as many latencies) nor memory. A GPT layer fully data
 * parallel (every operator splits the batch): every weight but the tied output layer's is
 * replicated 8 times, so the state shrinks exactly by (2 + 4 + 12/8) / 18; under Megatron's tensor
 * and sequence parallelism only the norms' weights and some biases are. */
START_TEST(ilp_zero_never_slower) {
    st_model m;
    ck_assert_int_eq(st_model_preset("gpt-1.7b", &m), 0);
    st_cluster c;
    st_graph g;
    st_mesh mesh;
    char(*lab)[2];
    st_error err;
    one_node(&m, ST_ATTN_UNFUSED, &c, &g, &mesh, &lab);
    for (int pattern = 0; pattern < 2; pattern++) {
        layer_labels(&g, pattern, lab);
        st_autoshard_result r0, r1;
        price_given(&m, &g, &c, &mesh, (const char(*)[2])lab, 0, 8, 8, &r0);
        price_given(&m, &g, &c, &mesh, (const char(*)[2])lab, 1, 8, 8, &r1);
        st_as_work w0, w1;
        ck_assert_int_eq(st_autoshard_work(&r0, 0, &c, NULL, ST_DT_BF16, &w0, &err), 0);
        ck_assert_int_eq(st_autoshard_work(&r1, 0, &c, NULL, ST_DT_BF16, &w1, &err), 0);
        double s0 = w0.sync_s[0], s1 = w1.sync_s[0] + w1.gather_s[0];
        ck_assert_msg(s0 > 0 && s1 <= s0, "pattern %d: zero 1 syncs in %.6g s, zero 0 in %.6g s", pattern, s1, s0);
        ck_assert(w1.state_bytes < w0.state_bytes);
        ck_assert(r1.iteration_time_s <= r0.iteration_time_s);
        ck_assert(r1.memory_peak_bytes < r0.memory_peak_bytes);
        if (pattern == 0) {
            ck_assert_double_eq_tol(w1.state_bytes, w0.state_bytes * (2 + 4 + 12.0 / 8) / 18, 1e-6 * w0.state_bytes);
            ck_assert_msg(s1 < 0.8 * s0, "data parallel: zero 1 %.6g s, zero 0 %.6g s", s1, s0);
        }
        st_as_work_free(&w0), st_as_work_free(&w1);
        given_free(&r0), given_free(&r1);
    }
    free(lab);
    st_graph_free(&g);
}
END_TEST

/* The ILP and the estimate price model state by one rule (cost/'s st_cost_state_bytes), so where
 * they hold the same weights they hold the same bytes. Llama-2 7B has no biases and no learned
 * positions; with a vocabulary that needs no padding (32768) the planner's graph has exactly the
 * estimate's weights. Fully data parallel on 8 GPUs its state is the estimate's for tp=1, dp=8 with
 * zero 0 and 1; under Megatron's tensor parallelism the estimate's for tp=8 with zero 0 (with zero
 * 1 the ILP also shards the state of the norms' weights, which tp replicates, over the tp group,
 * where Megatron-LM's distributed optimizer shards over dp only). The activations the stage keeps
 * (one micro-batch in flight) are the estimate's too, unfused and fused attention, with and without
 * sequence parallelism: the graph's operators keep opgraph.c's saved bytes (search/graph.c). */
START_TEST(ilp_state_as_estimate) {
    st_model m;
    ck_assert_int_eq(st_model_preset("llama2-7b", &m), 0);
    m.vocab = 32768;
    const char *spec[3] = {"tp=1,pp=1,dp=8,mbs=1,gbs=64,seq=2048,zero=%d,attention=%s",
                           "tp=8,pp=1,dp=1,sp=1,mbs=8,gbs=64,seq=2048,zero=%d,attention=%s",
                           "tp=8,pp=1,dp=1,sp=0,mbs=8,gbs=64,seq=2048,zero=%d,attention=%s"};
    for (int fused = 0; fused < 2; fused++) {
        st_cluster c;
        st_graph g;
        st_mesh mesh;
        char(*lab)[2];
        st_error err;
        one_node(&m, fused ? ST_ATTN_FLASH : ST_ATTN_UNFUSED, &c, &g, &mesh, &lab);
        st_cost_ctx *ctx = st_cost_ctx_new(&m, &c, NULL);
        for (int pattern = 0; pattern < 3; pattern++) {
            layer_labels(&g, pattern, lab);
            for (int z = 0; z < (pattern ? 1 : 2); z++) {
                st_autoshard_result r;
                price_given(&m, &g, &c, &mesh, (const char(*)[2])lab, z, 8, 8, &r);
                st_as_work w;
                ck_assert_int_eq(st_autoshard_work(&r, 0, &c, NULL, ST_DT_BF16, &w, &err), 0);
                st_plan p;
                char text[96];
                snprintf(text, sizeof text, spec[pattern], z, fused ? "flash" : "unfused");
                st_plan_defaults(&p);
                ck_assert_int_eq(st_plan_parse_spec(text, &p, &err), 0);
                ck_assert_msg(st_plan_finalize(&p, &m, &c, 8, NULL, &err) == 0, "%s: %s", text, err.text);
                st_stage_memory sm;
                st_cost_stage_memory(ctx, &p, 0, &sm);
                double state = sm.weights_bytes + sm.grads_bytes + sm.optimizer_bytes;
                ck_assert_msg(fabs(w.state_bytes / state - 1) < 1e-12, "%s: ILP %.6f GiB of state, estimate %.6f GiB",
                              text, w.state_bytes / 1073741824.0, state / 1073741824.0);
                double act = r.stage[0].memory_bytes - w.state_bytes;
                ck_assert_msg(fabs(act / sm.activations_bytes - 1) < 1e-9,
                              "%s: ILP %.6f GiB of activations, estimate %.6f GiB", text, act / 1073741824.0,
                              sm.activations_bytes / 1073741824.0);
                /* and what the ILP keeps free of the GPU is what the estimate reserves */
                ck_assert_double_eq(st_autoshard_memory_limit(&c), c.gpu.memory_bytes - sm.other_bytes);
                st_as_work_free(&w);
                given_free(&r);
            }
        }
        st_cost_ctx_free(ctx);
        free(lab);
        st_graph_free(&g);
    }
}
END_TEST

/* With fewer micro-batches than stages after it, a 1F1B stage holds all of them and no more
 * (st_cost_inflight: min(pp - d, m)): the tower's two-stage plan run with one micro-batch prices
 * each stage's memory as its state and one micro-batch's activations, and the simulator, which
 * runs the schedule, peaks there. */
START_TEST(ilp_inflight_few_microbatches) {
    st_graph g;
    st_cluster c;
    st_autoshard_opts o;
    st_error err;
    tower(&g, &c, &o, 4, 6);
    o.zero = 0;
    st_autoshard_result r, one;
    ck_assert_msg(st_autoshard(NULL, &g, &c, NULL, &o, &r, &err) == 0, "%s", err.text);
    ck_assert_int_gt(r.nstages, 1);
    given_copy(&r, &one);
    one.microbatches = 1;
    st_autoshard_opts eo;
    st_autoshard_opts_init(&eo);
    ck_assert_msg(st_autoshard_evaluate(NULL, &c, NULL, &eo, &one, &err) == 0, "%s", err.text);
    st_sim_result res;
    sim_plan(&one, &c, &res);
    for (int i = 0; i < one.nstages; i++) {
        st_as_work w;
        ck_assert_int_eq(st_autoshard_work(&one, i, &c, NULL, ST_DT_BF16, &w, &err), 0);
        double mem = one.stage[i].memory_bytes;
        ck_assert_double_eq_tol(mem, w.state_bytes + w.saved_bytes, 1e-9 * mem);
        double sim = res.ranks[i].memory_peak_bytes;
        ck_assert_msg(fabs(sim / mem - 1) < 1e-6, "stage %d: simulated %.6f GiB, priced %.6f GiB", i,
                      sim / 1073741824.0, mem / 1073741824.0);
        st_as_work_free(&w);
    }
    /* the first stage held more with four */
    ck_assert(r.stage[0].memory_bytes > one.stage[0].memory_bytes);
    st_sim_result_destroy(&res);
    given_free(&one);
    st_autoshard_result_free(&r);
    st_graph_free(&g);
}
END_TEST

static void plan_zero(const char *model, int64_t gpus, int64_t gbs, int max_stages, int zero, st_autoshard_result *r) {
    st_model m;
    ck_assert_int_eq(st_model_preset(model, &m), 0);
    st_cluster c = cluster("dgx-a100-80g", gpus);
    st_autoshard_opts o;
    st_autoshard_opts_init(&o);
    o.gbs = gbs, o.seq = 2048, o.max_stages = max_stages, o.zero = zero;
    st_error err;
    ck_assert_msg(st_autoshard(&m, NULL, &c, NULL, &o, r, &err) == 0, "%s: %s", model, err.text);
}

/* Where memory is tight the choice pays: Llama-2 7B on 16 A100s without a pipeline needs more
 * tensor parallelism to hold 18 bytes per parameter than with the distributed optimizer. auto picks
 * it, and is faster than --zero 0; the plan prices again and simulates as planned. On GPT-3 175B
 * over 64 A100s (README), auto is never slower than --zero 0 (and --zero 1 is honoured). */
START_TEST(ilp_zero_auto_pays) {
    st_autoshard_result a, z0;
    plan_zero("llama2-7b", 16, 256, 1, ST_AS_ZERO_AUTO, &a);
    plan_zero("llama2-7b", 16, 256, 1, 0, &z0);
    ck_assert_int_eq(a.stage[0].zero, 1);
    ck_assert_int_eq(z0.stage[0].zero, 0);
    ck_assert_msg(a.iteration_time_s < 0.97 * z0.iteration_time_s, "auto %.3f s, zero 0 %.3f s", a.iteration_time_s,
                  z0.iteration_time_s);
    st_model m;
    ck_assert_int_eq(st_model_preset("llama2-7b", &m), 0);
    st_cluster c = cluster("dgx-a100-80g", 16);
    ck_assert(a.memory_peak_bytes <= st_autoshard_memory_limit(&c));
    st_autoshard_opts o;
    st_autoshard_opts_init(&o);
    o.gbs = 256, o.seq = 2048;
    check_replay(&m, &c, &o, &a, 1e-9); /* one stage: exactly the planner's time */
    st_autoshard_result_free(&a), st_autoshard_result_free(&z0);

    st_autoshard_result one;
    plan_zero("gpt3-175b", 64, 1536, 0, ST_AS_ZERO_AUTO, &a);
    plan_zero("gpt3-175b", 64, 1536, 0, 0, &z0);
    plan_zero("gpt3-175b", 64, 1536, 0, 1, &one);
    ck_assert(a.iteration_time_s <= z0.iteration_time_s);
    for (int i = 0; i < one.nstages; i++) ck_assert_int_eq(one.stage[i].zero, 1);
    st_autoshard_result_free(&a), st_autoshard_result_free(&z0), st_autoshard_result_free(&one);
}
END_TEST

/* A custom graph too big for one stage with 18 bytes per parameter fits one with ZeRO-1: the tower
 * (ilp_custom_pipeline) under 6 GiB on 16 GPUs, fully data parallel, faster than its pipeline. */
START_TEST(ilp_zero_fits_tower) {
    st_graph g;
    st_cluster c;
    st_autoshard_opts o;
    st_error err;
    tower(&g, &c, &o, 64, 6);
    st_autoshard_result a, z0;
    ck_assert_msg(st_autoshard(NULL, &g, &c, NULL, &o, &a, &err) == 0, "%s", err.text);
    o.zero = 0;
    ck_assert_msg(st_autoshard(NULL, &g, &c, NULL, &o, &z0, &err) == 0, "%s", err.text);
    ck_assert_int_gt(z0.nstages, 1);
    ck_assert_int_eq(a.nstages, 1);
    ck_assert_int_eq(a.stage[0].zero, 1);
    ck_assert(a.memory_peak_bytes <= o.mem_limit_bytes);
    ck_assert(a.iteration_time_s < z0.iteration_time_s);
    st_autoshard_result_free(&a), st_autoshard_result_free(&z0);
    st_graph_free(&g);
}
END_TEST

/* The plan file carries each stage's choice: written and read back, the stages keep zero and
 * price the same; a file without the key (written before ZeRO-1 was planned) reads as zero 0. */
START_TEST(ilp_zero_plan_file) {
    st_model m;
    ck_assert_int_eq(st_model_preset("llama2-7b", &m), 0);
    st_cluster c = cluster("dgx-a100-80g", 16);
    st_autoshard_result a, back;
    plan_zero("llama2-7b", 16, 256, 1, ST_AS_ZERO_AUTO, &a);
    char path[] = "/tmp/strata_zero_XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    close(fd);
    st_error err;
    ck_assert_msg(st_autoshard_save(&a, &m, NULL, &c, 256, 2048, ST_DT_BF16, path, &err) == 0, "%s", err.text);
    st_autoshard_opts o;
    st_as_origin orig;
    ck_assert_msg(st_autoshard_load(path, &m, NULL, &c, &o, &back, &orig, &err) == 0, "%s", err.text);
    ck_assert_int_eq(back.stage[0].zero, 1);
    ck_assert_msg(st_autoshard_evaluate(&m, &c, NULL, &o, &back, &err) == 0, "%s", err.text);
    ck_assert_double_eq_tol(back.iteration_time_s, a.iteration_time_s, 1e-9 * a.iteration_time_s);
    st_autoshard_result_free(&back);
    /* without the key */
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    char buf[1 << 16];
    size_t len = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[len] = 0;
    char *k = strstr(buf, "\"zero\": 1,");
    ck_assert_ptr_nonnull(k);
    memmove(k, k + 10, strlen(k + 10) + 1);
    f = fopen(path, "w");
    fputs(buf, f);
    fclose(f);
    ck_assert_msg(st_autoshard_load(path, &m, NULL, &c, &o, &back, &orig, &err) == 0, "%s", err.text);
    ck_assert_int_eq(back.stage[0].zero, 0);
    st_autoshard_result_free(&back);
    remove(path);
    st_autoshard_result_free(&a);
}
END_TEST

/* The plan file says how its model graph ran attention: written and read back, flash stays flash
 * (and prices the same); a file without the key, written before it existed, names the unfused
 * operators in its stages and reads as unfused. */
START_TEST(ilp_attention_plan_file) {
    st_model m;
    ck_assert_int_eq(st_model_preset("gpt-1.7b", &m), 0);
    st_cluster c = cluster("dgx-a100-80g", 8);
    char path[] = "/tmp/strata_attn_XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    close(fd);
    for (int kind = 0; kind < 2; kind++) {
        st_autoshard_opts o;
        st_autoshard_opts_init(&o);
        ck_assert_int_eq(o.attention, ST_ATTN_FLASH);
        o.gbs = 64, o.mbs = 1, o.seq = 2048, o.max_stages = 1;
        o.attention = kind ? ST_ATTN_UNFUSED : ST_ATTN_FLASH;
        st_autoshard_result a, back;
        st_as_origin orig;
        st_error err;
        ck_assert_msg(st_autoshard(&m, NULL, &c, NULL, &o, &a, &err) == 0, "%s", err.text);
        ck_assert_int_eq(a.attention, o.attention);
        ck_assert_int_eq(op_index(a.g, kind ? "scores" : "attention") >= 0, 1);
        ck_assert_msg(st_autoshard_save(&a, &m, NULL, &c, 64, 2048, ST_DT_BF16, path, &err) == 0, "%s", err.text);
        FILE *f = fopen(path, "r");
        char buf[1 << 16];
        size_t len = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[len] = 0;
        const char *key = kind ? "\"attention\": \"unfused\"," : "\"attention\": \"flash\",";
        char *k = strstr(buf, key);
        ck_assert_ptr_nonnull(k);
        if (kind) { /* as an older strata wrote it */
            memmove(k, k + strlen(key), strlen(k + strlen(key)) + 1);
            f = fopen(path, "w");
            fputs(buf, f);
            fclose(f);
        }
        st_autoshard_opts lo;
        ck_assert_msg(st_autoshard_load(path, &m, NULL, &c, &lo, &back, &orig, &err) == 0, "%s", err.text);
        ck_assert_int_eq(lo.attention, o.attention);
        ck_assert_int_eq(back.attention, o.attention);
        ck_assert_msg(st_autoshard_evaluate(&m, &c, NULL, &lo, &back, &err) == 0, "%s", err.text);
        ck_assert_double_eq_tol(back.iteration_time_s, a.iteration_time_s, 1e-9 * a.iteration_time_s);
        st_autoshard_result_free(&back);
        st_autoshard_result_free(&a);
    }
    remove(path);
}
END_TEST

/* igraph's default error handler aborts the process; st_search_init (main() and the runner call it
 * first) makes an igraph error a return code, so st_graph_check can report it as one. */
START_TEST(igraph_errors_return) {
    igraph_vector_int_t edges;
    ck_assert_int_eq(igraph_vector_int_init(&edges, 2), IGRAPH_SUCCESS);
    VECTOR(edges)[0] = 0;
    VECTOR(edges)[1] = -1; /* no vertex has a negative id */
    igraph_t g;
    ck_assert_int_ne(igraph_create(&g, &edges, 2, IGRAPH_DIRECTED), IGRAPH_SUCCESS);
    igraph_vector_int_destroy(&edges);
}
END_TEST

/* The executor's view of ILP plans (search/as_hybrid.c): what the ILP picks for tiny-gpt on two slow
 * GPUs (tests/data/cluster_slowgpu.json: compute dominates, so it shards) is Megatron's tp with the
 * residual stream split by sequences, and its resharding is sp's (2 all-gathers and 2
 * reduce-scatters a layer); shardings the executor does not run are named by stage and operator. */
static void set_all(st_autoshard_result *r, int s, char lab) {
    for (int o = 0; o < r->g->nops; o++)
        if (r->stage[s].choice[o].lab[0] != '-') r->stage[s].choice[o].lab[0] = lab;
}

static void hybrid_refused(const st_autoshard_result *r, const char *text) {
    st_as_hybrid h;
    st_error err;
    ck_assert_int_eq(st_autoshard_hybrid(r, &h, &err), ST_EINVAL);
    ck_assert_msg(strstr(err.text, text) != NULL, "'%s' in '%s'", text, err.text);
}

START_TEST(ilp_hybrid_degrees) {
    const char *cl = SRCDIR "/tests/data/cluster_slowgpu.json";
    st_autoshard_result r;
    st_as_hybrid h;
    st_error err;
    plan_model("tiny-gpt", cl, 2, 8, 2, 32, 1, &r);
    ck_assert_int_eq(st_autoshard_hybrid(&r, &h, &err), 0);
    ck_assert_int_eq(h.tp, 2);
    ck_assert_int_eq(h.dp, 1);
    ck_assert_int_eq(h.sp, 1);
    ck_assert_int_eq(h.zero, 0);
    int counts[ST_COLL_COUNT];
    st_autoshard_block_collectives(&r, 0, counts);
    ck_assert_int_eq(counts[ST_COLL_ALLGATHER], 2);
    ck_assert_int_eq(counts[ST_COLL_REDUCESCATTER], 2);
    ck_assert_int_eq(counts[ST_COLL_ALLREDUCE], 0);
    ck_assert_int_eq(counts[ST_COLL_ALLTOALL], 0);
    st_as_choice *ch = r.stage[0].choice;
    const int qkv = op_index(r.g, "qkv"), ln2 = op_index(r.g, "ln2"), loss = op_index(r.g, "loss");
    ch[loss].lab[0] = 0; /* the logits gathered for a replicated loss */
    hybrid_refused(&r, "stage 0, operator loss: split none on mesh axis 0 (2 devices): Megatron's");
    ch[loss].lab[0] = 'v';
    ch[qkv].lab[0] = 'e'; /* the fused width (what it picks for tiny-llama's 2 kv heads on 4), its bias not */
    hybrid_refused(&r, "operator qkv_bias: split 'n' on mesh axis 0 (2 devices): it follows QKV's split along its "
                       "fused width");
    ch[qkv].lab[0] = 'n';
    ch[ln2].lab[0] = 0; /* a residual stream split before the attention only */
    hybrid_refused(&r, "operator ln2: split none on mesh axis 0 (2 devices): the residual stream's other");
    set_all(&r, 0, 0); /* nothing split: two copies of one device's job */
    ck_assert_int_eq(st_autoshard_hybrid(&r, &h, &err), 0);
    ck_assert_int_eq(h.tp * h.dp, 1);
    ck_assert_int_eq(h.sp, 0);
    ck_assert_int_eq(h.rep, 2);
    ch[ln2].lab[0] = 'b'; /* one operator split: the axis no longer replicates the stage */
    hybrid_refused(&r, "operator qkv: split none on mesh axis 0 (2 devices): every device would compute the same");
    set_all(&r, 0, 'b'); /* data parallelism, ZeRO-1 where the stage says */
    r.stage[0].zero = 1;
    ck_assert_int_eq(st_autoshard_hybrid(&r, &h, &err), 0);
    ck_assert_int_eq(h.tp, 1);
    ck_assert_int_eq(h.dp, 2);
    ck_assert_int_eq(h.sp, 0);
    ck_assert_int_eq(h.zero, 1);
    ck_assert_int_eq(h.rep, 1);
    st_autoshard_result_free(&r);

    /* two stages of two devices (tiny-llama): both tp=2 with sp; stage 1 as dp instead is refused */
    plan_model("tiny-llama", cl, 4, 8, 2, 32, 0, &r);
    ck_assert_int_eq(r.nstages, 2);
    ck_assert_int_eq(st_autoshard_hybrid(&r, &h, &err), 0);
    ck_assert_int_eq(h.tp, 2);
    ck_assert_int_eq(h.dp, 1);
    ck_assert_int_eq(h.sp, 1);
    /* the exchange between the stages: each device its rows of the micro-batch's activation (the
     * executor's sp send), bf16 as planned */
    st_model lm;
    ck_assert_int_eq(st_model_preset("tiny-llama", &lm), 0);
    st_cluster c = cluster(cl, 4);
    st_as_work w;
    ck_assert_int_eq(st_autoshard_work(&r, 0, &c, NULL, ST_DT_BF16, &w, &err), 0);
    ck_assert_double_eq_tol(w.p2p_out_bytes, 2.0 * 32 * lm.hidden * 2 / 2, 1e-9);
    st_as_work_free(&w);
    set_all(&r, 1, 'b');
    hybrid_refused(&r, "stage 1 shards as tp=1, dp=2, sp=0, zero=1 and stage 0 as tp=2, dp=1, sp=1, zero=0: stages of "
                       "different shapes");
    /* which the executor runs stage by stage, each with its own degrees */
    st_as_hybrid hs[2];
    ck_assert_int_eq(st_autoshard_hybrid_stages(&r, hs, &err), 0);
    ck_assert_int_eq(hs[0].tp, 2);
    ck_assert_int_eq(hs[0].sp, 1);
    ck_assert_int_eq(hs[0].dp, 1);
    ck_assert_int_eq(hs[1].tp, 1);
    ck_assert_int_eq(hs[1].dp, 2);
    ck_assert_int_eq(hs[1].zero, r.stage[1].zero);
    ck_assert_int_eq(hs[1].rep, 1);
    ch = r.stage[1].choice;
    ch[op_index(r.g, "fc1")].lab[0] = 'f'; /* a stage's own refusal is named alike */
    ck_assert_int_eq(st_autoshard_hybrid_stages(&r, hs, &err), ST_EINVAL);
    ck_assert_msg(strstr(err.text, "stage 1, operator act: split 'b' on mesh axis 0") != NULL, "%s", err.text);
    set_all(&r, 0, 0), set_all(&r, 1, 0); /* both replicated: two copies of a two-stage pipeline */
    ck_assert_int_eq(st_autoshard_hybrid(&r, &h, &err), 0);
    ck_assert_int_eq(h.tp * h.dp, 1);
    ck_assert_int_eq(h.rep, 2);
    r.stage[1].mesh.size[0] = 1; /* stage 1 on one device: one copy of it against stage 0's two */
    hybrid_refused(&r, "stage 1 computes on 1 devices alike and stage 0 on 2: stages of different shapes");
    ck_assert_int_eq(st_autoshard_hybrid_stages(&r, hs, &err), 0);
    ck_assert_int_eq(hs[0].rep, 2);
    ck_assert_int_eq(hs[1].rep, 1);
    r.stage[1].mesh.size[0] = 2;
    st_autoshard_result_free(&r);

    /* a 2x2 mesh: the ILP mixes the axes (the output layer vocabulary-split where QKV splits the batch, on the rows
     * where it splits the heads): dp=2 x tp=2 with sp, the output layer over the dp group (head_dp) */
    plan_model("tiny-gpt", SRCDIR "/tests/data/cluster_slowgpu_2x2.json", 4, 32, 8, 32, 1, &r);
    ck_assert_int_eq(st_autoshard_hybrid(&r, &h, &err), 0);
    ck_assert_int_eq(h.tp, 2);
    ck_assert_int_eq(h.dp, 2);
    ck_assert_int_eq(h.sp, 1);
    ck_assert_int_eq(h.head_dp, 1);
    ck_assert_int_eq(h.attn_rows, 0);
    {
        st_as_choice *c2 = r.stage[0].choice;
        int lg = -1, ls = -1, em = -1;
        for (int o = 0; o < r.g->nops; o++) {
            if (!strcmp(r.g->ops[o].name, "logits")) lg = o;
            if (!strcmp(r.g->ops[o].name, "loss")) ls = o;
            if (!strcmp(r.g->ops[o].name, "embedding")) em = o;
        }
        ck_assert(lg >= 0 && ls >= 0 && em >= 0 && c2[lg].lab[0] == 'v' && c2[lg].lab[1] == 'b');
        c2[ls].lab[0] = 'b'; /* the loss not as the output layer */
        hybrid_refused(&r, "operator loss: split 'b' on mesh axis 0 (2 devices): the loss follows the output layer's");
        c2[ls].lab[0] = 'v', c2[lg].lab[1] = c2[ls].lab[1] = 'v'; /* vocabulary-split on both axes (2-D) */
        hybrid_refused(&r, "operator logits: vocabulary-parallel on 1 of its 1 batch axes and on the rows on 0");
        c2[lg].lab[1] = c2[ls].lab[1] = 'b', c2[em].lab[1] = 'v'; /* the embedding vocabulary-parallel over tp */
        hybrid_refused(&r, "the embedding vocabulary-parallel on 1");
        c2[em].lab[1] = 'b';
        ck_assert_int_eq(st_autoshard_hybrid(&r, &h, &err), 0);
    }
    st_autoshard_result_free(&r);
}
END_TEST

/* The ILP's attention on token rows (search/as_hybrid.c, attn_rows): with micro-batches of 8 sequences
 * on two slow GPUs it splits tiny-gpt's projection by the rows under tp with sp (1), and tiny-llama's
 * whole attention by the sequences under a tensor-parallel MLP (2); other mixes are named. */
START_TEST(ilp_hybrid_rows) {
    const char *cl = SRCDIR "/tests/data/cluster_slowgpu.json";
    st_autoshard_result r;
    st_as_hybrid h;
    st_error err;
    plan_model("tiny-gpt", cl, 2, 16, 8, 32, 1, &r);
    st_as_choice *ch = r.stage[0].choice;
    const int qkv = op_index(r.g, "qkv"), proj = op_index(r.g, "proj"), att = op_index(r.g, "attention");
    ck_assert_int_eq(ch[qkv].lab[0], 'n');
    ck_assert_int_eq(ch[proj].lab[0], 'b');
    ck_assert_int_eq(st_autoshard_hybrid(&r, &h, &err), 0);
    ck_assert_int_eq(h.tp, 2);
    ck_assert_int_eq(h.sp, 1);
    ck_assert_int_eq(h.attn_rows, 1);
    ch[proj].lab[0] = 's'; /* rows, but not as the residual stream splits them */
    hybrid_refused(&r, "operator proj: split 's' on mesh axis 0 (2 devices): the executor splits the attention by rows "
                       "only as the residual stream");
    ch[proj].lab[0] = 'b';
    ch[qkv].lab[0] = 'b'; /* QKV and the projection on the rows, the attention core on the heads */
    hybrid_refused(&r, "operator qkv: split 'b' on mesh axis 0 (2 devices): the executor splits by the rows the "
                       "projection alone or the whole attention");
    for (int o = 0; o < r.g->nops; o++) /* every attention operator on the rows: the whole attention */
        if (ch[o].lab[0] == 'n') ch[o].lab[0] = 'b';
    ck_assert_int_eq(st_autoshard_hybrid(&r, &h, &err), 0);
    ck_assert_int_eq(h.attn_rows, 2);
    ck_assert_int_eq(h.tp, 2);
    ch[att].lab[0] = 'n';
    hybrid_refused(&r, "projection alone or the whole attention");
    st_autoshard_result_free(&r);

    plan_model("tiny-llama", cl, 2, 16, 8, 32, 1, &r);
    ch = r.stage[0].choice;
    ck_assert_int_eq(ch[op_index(r.g, "qkv")].lab[0], 'b');
    ck_assert_int_eq(ch[op_index(r.g, "fc1")].lab[0], 'f');
    ck_assert_int_eq(st_autoshard_hybrid(&r, &h, &err), 0);
    ck_assert_int_eq(h.tp, 2);
    ck_assert_int_eq(h.dp, 1);
    ck_assert_int_eq(h.sp, 1);
    ck_assert_int_eq(h.attn_rows, 2);
    ch[op_index(r.g, "fc1")].lab[0] = 'b'; /* the MLP on the batch too, fc2 not: a batch axis, refused */
    hybrid_refused(&r, "operator act: split 'f' on mesh axis 0 (2 devices): QKV splits the batch there");
    st_autoshard_result_free(&r);
}
END_TEST

/* QKV split along its fused width with the attention replicated (attn_rows 3): the ILP's pick for tiny-llama on
 * four slow GPUs (its 2 kv heads under tp=4); the projection must follow by heads (or by head dimension) and the
 * attention stay whole, else named. */
START_TEST(ilp_hybrid_qkv_width) {
    st_autoshard_result r;
    st_as_hybrid h;
    st_error err;
    plan_model("tiny-llama", SRCDIR "/tests/data/cluster_slowgpu.json", 4, 8, 2, 32, 1, &r);
    st_as_choice *ch = r.stage[0].choice;
    const int qkv = op_index(r.g, "qkv"), proj = op_index(r.g, "proj"), att = op_index(r.g, "attention");
    ck_assert_int_eq(ch[qkv].lab[0], 'e');
    ck_assert_int_eq(ch[att].lab[0], 0);
    ck_assert_int_eq(ch[proj].lab[0], 'n');
    ck_assert_int_eq(st_autoshard_hybrid(&r, &h, &err), 0);
    ck_assert_int_eq(h.tp, 4);
    ck_assert_int_eq(h.sp, 1);
    ck_assert_int_eq(h.attn_rows, 3);
    ch[proj].lab[0] = 'd'; /* by head dimension: the same row-parallel GEMM */
    ck_assert_int_eq(st_autoshard_hybrid(&r, &h, &err), 0);
    ck_assert_int_eq(h.attn_rows, 3);
    ch[proj].lab[0] = 'b';
    hybrid_refused(&r, "operator proj: split 'b' on mesh axis 0 (4 devices): Megatron's tensor parallelism");
    ch[proj].lab[0] = 'n';
    ch[att].lab[0] = 'n';
    hybrid_refused(&r, "operator attention: split 'n' on mesh axis 0 (4 devices): with QKV split along its fused "
                       "width the attention is whole");
    st_autoshard_result_free(&r);
}
END_TEST

/* the label of the residual stream's rows on mesh axis 0 (the ILP's 'b' or 's', equal in price where the
 * micro-batch's sequences divide over the axis) */
static char stream_rows(const st_autoshard_result *r) {
    char l = r->stage[0].choice[op_index(r->g, "ln2")].lab[0];
    ck_assert_msg(l == 'b' || l == 's', "ln2 split '%c', not by rows", l ? l : '0');
    return l;
}

/* MoE blocks on a tensor-parallel axis (moe_rows): tiny-moe on two slow GPUs, the router split by the hidden
 * dimension, dispatch and combine on the residual stream's rows, the experts over the axis; a dispatch off the
 * rows, or a stream the stage does not split, named. */
START_TEST(ilp_hybrid_moe_rows) {
    st_autoshard_result r;
    st_as_hybrid h;
    st_error err;
    plan_model("tiny-moe", SRCDIR "/tests/data/cluster_slowgpu.json", 2, 8, 2, 32, 1, &r);
    st_as_choice *ch = r.stage[0].choice;
    const int router = op_index(r.g, "router"), dsp = op_index(r.g, "dispatch"), fc1 = op_index(r.g, "expert_fc1");
    const char rows = stream_rows(&r);
    ck_assert_int_eq(ch[router].lab[0], 'h');
    ck_assert_int_eq(ch[dsp].lab[0], rows);
    ck_assert_int_eq(ch[op_index(r.g, "moe_combine")].lab[0], rows);
    ck_assert_int_eq(ch[fc1].lab[0], 'e');
    ck_assert_int_eq(st_autoshard_hybrid(&r, &h, &err), 0);
    ck_assert_int_eq(h.tp, 2);
    ck_assert_int_eq(h.sp, 1);
    ck_assert_int_eq(h.moe_rows, 1);
    ck_assert_int_eq(h.router_h, 1);
    ck_assert_int_eq(h.attn_rows, 0);
    /* each expert split by its ffn over the axis (expert tensor parallelism), the router still 'h' */
    for (int o = 0; o < r.g->nops; o++)
        if (!strncmp(r.g->ops[o].name, "expert_", 7)) ch[o].lab[0] = 'f';
    ck_assert_int_eq(st_autoshard_hybrid(&r, &h, &err), 0);
    ck_assert_int_eq(h.moe_rows, 0);
    ck_assert_int_eq(h.router_h, 1);
    ck_assert_int_eq(h.tp, 2);
    ch[op_index(r.g, "expert_act")].lab[0] = 'e'; /* the three alike */
    hybrid_refused(&r, "operator expert_act: split 'e' on mesh axis 0 (2 devices): the executor splits the experts");
    ch[op_index(r.g, "expert_act")].lab[0] = 'f';
    ch[router].lab[0] = 0; /* neither 'h' nor the stream's rows */
    hybrid_refused(&r, "operator router: split none on mesh axis 0 (2 devices): the executor splits the router by "
                       "the hidden dimension ('h') or runs it whole on the residual stream's rows");
    ch[router].lab[0] = rows;
    ck_assert_int_eq(st_autoshard_hybrid(&r, &h, &err), 0);
    ck_assert_int_eq(h.router_h, 0);
    for (int o = 0; o < r.g->nops; o++)
        if (!strncmp(r.g->ops[o].name, "expert_", 7)) ch[o].lab[0] = 'e';
    ch[router].lab[0] = 'h';
    ch[dsp].lab[0] = 0;
    hybrid_refused(&r, "operator dispatch: split none on mesh axis 0 (2 devices): the residual stream's other");
    for (int o = 0; o < r.g->nops; o++) /* the residual stream whole: no rows to route by */
        if (ch[o].lab[0] == rows) ch[o].lab[0] = 0;
    hybrid_refused(&r, "operator dispatch: split none on mesh axis 0 (2 devices): the executor routes the tokens by "
                       "the residual stream's rows");
    st_autoshard_result_free(&r);
}
END_TEST

/* Experts on a batch axis (tiny-moe on two slow GPUs, micro-batches of 8): the attention, router, dispatch and
 * combine on each device's sequences ('b'), the experts over the axis ('e'), the
 * output layer vocabulary-parallel ('v'): the axis runs as a tp axis whose attention and router take the rows
 * (attn_rows 2, moe_rows with the router whole), the output layer as Megatron's with sp; with the output layer
 * on the batch too, Megatron's ep over the dp ranks. */
START_TEST(ilp_hybrid_moe_batch) {
    st_autoshard_result r;
    st_as_hybrid h;
    st_error err;
    plan_model("tiny-moe", SRCDIR "/tests/data/cluster_slowgpu.json", 2, 32, 8, 32, 1, &r);
    st_as_choice *ch = r.stage[0].choice;
    ck_assert_int_eq(ch[op_index(r.g, "qkv")].lab[0], 'b');
    ck_assert_int_eq(ch[op_index(r.g, "router")].lab[0], 'b');
    ck_assert_int_eq(ch[op_index(r.g, "expert_fc1")].lab[0], 'e');
    ck_assert_int_eq(ch[op_index(r.g, "moe_combine")].lab[0], 'b');
    ck_assert_int_eq(ch[op_index(r.g, "logits")].lab[0], 'v');
    ck_assert_int_eq(st_autoshard_hybrid(&r, &h, &err), 0);
    ck_assert_int_eq(h.tp, 2);
    ck_assert_int_eq(h.dp, 1);
    ck_assert_int_eq(h.sp, 1);
    ck_assert_int_eq(h.attn_rows, 2);
    ck_assert_int_eq(h.moe_rows, 1);
    ck_assert_int_eq(h.router_h, 0);
    ch[op_index(r.g, "moe_combine")].lab[0] = 's'; /* not the stream's rows */
    hybrid_refused(&r, "operator moe_combine: split 's' on mesh axis 0 (2 devices): the residual stream's other");
    ch[op_index(r.g, "moe_combine")].lab[0] = 'b';
    /* the output layer on the batch too: Megatron's ep over the dp ranks */
    ch[op_index(r.g, "logits")].lab[0] = ch[op_index(r.g, "loss")].lab[0] = 'b';
    ck_assert_int_eq(st_autoshard_hybrid(&r, &h, &err), 0);
    ck_assert_int_eq(h.tp, 1);
    ck_assert_int_eq(h.dp, 2);
    ck_assert_int_eq(h.ep, 2);
    ck_assert_int_eq(h.moe_rows, 0);
    ck_assert_int_eq(h.attn_rows, 0);
    /* but with each expert split by its ffn the axis is a tp one on the rows, whose output layer is Megatron's */
    for (int o = 0; o < r.g->nops; o++)
        if (!strncmp(r.g->ops[o].name, "expert_", 7)) ch[o].lab[0] = 'f';
    hybrid_refused(&r, "operator logits: split 'b' on mesh axis 0 (2 devices): QKV splits the batch there and the "
                       "experts split: the executor runs the axis as tensor-parallel with the attention on the rows, "
                       "which splits it 'v'");
    st_autoshard_result_free(&r);
}
END_TEST

/* What a Megatron-style MoE layer on a tp axis moves (moe_rows; Megatron-Core's token_dispatcher.py,
 * MoEAlltoAllTokenDispatcher; exec/model.c runs the same): the router's partial logits reduce-scattered to
 * the rows once (the dispatch carries them to the combine), in backward their gradient all-gathered once;
 * the experts' outputs returned to their tokens' rows by an all-to-all of each device's share (E x C x h
 * / tp, bf16), in backward the reverse all-to-all; no all-gather of every expert's output. */
START_TEST(ilp_moe_rows_combine_alltoall) {
    st_autoshard_result r;
    st_error err;
    const int64_t mbs = 2, seq = 32, tp = 2;
    plan_model("tiny-moe", SRCDIR "/tests/data/cluster_slowgpu.json", tp, 8, mbs, seq, 1, &r);
    const int router = op_index(r.g, "router"), dsp = op_index(r.g, "dispatch"), cmb = op_index(r.g, "moe_combine"),
              fc2 = op_index(r.g, "expert_fc2");
    const st_as_choice *ch = r.stage[0].choice;
    const char rows = stream_rows(&r);
    ck_assert_int_eq(ch[router].lab[0], 'h');
    ck_assert_int_eq(ch[dsp].lab[0], rows);
    ck_assert_int_eq(ch[cmb].lab[0], rows);
    ck_assert_int_eq(ch[fc2].lab[0], 'e');
    st_model m;
    ck_assert_int_eq(st_model_preset("tiny-moe", &m), 0);
    st_cluster c = cluster(SRCDIR "/tests/data/cluster_slowgpu.json", tp);
    st_as_work w;
    ck_assert_int_eq(st_autoshard_work(&r, 0, &c, NULL, ST_DT_BF16, &w, &err), 0);
    const double C = (double)((mbs * seq * m.experts_topk + m.experts - 1) / m.experts); /* graph.c's capacity */
    const double share = (double)m.experts * C * (double)m.hidden * 2 / (double)tp;
    for (int bwd = 0; bwd < 2; bwd++) {
        int logits[ST_COLL_COUNT] = {0}, back[ST_COLL_COUNT] = {0};
        for (int i = 0; i < w.n[ST_AS_LAYER][bwd]; i++) {
            const st_as_step *v = &w.step[ST_AS_LAYER][bwd][i];
            if (v->coll == ST_COLL_NONE) continue;
            if (v->src == router) logits[v->coll]++;
            if (v->op == cmb && v->src == fc2) {
                back[v->coll]++;
                ck_assert_double_eq_tol(v->bytes, share, 1e-9);
                ck_assert_double_eq_tol(v->time_s, st_cost_collective(&c, NULL, ST_COLL_ALLTOALL, &r.stage[0].mesh.grp[0], share),
                                        1e-15);
            }
            /* the combine reads the logits as the dispatch holds them: nothing to move */
            ck_assert_msg(!(v->op == cmb && v->src == dsp), "the combine reshards the router's logits again");
        }
        ck_assert_int_eq(logits[bwd ? ST_COLL_ALLGATHER : ST_COLL_REDUCESCATTER], 1);
        ck_assert_int_eq(logits[ST_COLL_ALLGATHER] + logits[ST_COLL_REDUCESCATTER] + logits[ST_COLL_ALLREDUCE] +
                             logits[ST_COLL_ALLTOALL], 1);
        ck_assert_int_eq(back[ST_COLL_ALLTOALL], 1);
        ck_assert_int_eq(back[ST_COLL_ALLGATHER] + back[ST_COLL_REDUCESCATTER] + back[ST_COLL_ALLREDUCE], 0);
    }
    st_as_work_free(&w);
    st_autoshard_result_free(&r);
}
END_TEST

Suite *suite_autoshard(void) {
    Suite *s = suite_create("autoshard");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, reshard_single_axis);
    tcase_add_test(tc, igraph_errors_return);
    tcase_add_test(tc, mesh_fabric_tiers);
    tcase_add_test(tc, reshard_two_axes_cheapest_order);
    tcase_add_test(tc, graph_from_preset);
    tcase_add_test(tc, graph_flash_from_preset);
    tcase_add_test(tc, graph_bad_input);
    tcase_add_test(tc, ilp_finds_megatron);
    tcase_add_test(tc, ilp_shards_experts);
    tcase_add_test(tc, ilp_custom_graphs);
    tcase_add_test(tc, ilp_infeasible_memory);
    tcase_add_test(tc, ilp_size_independent_of_depth);
    tcase_add_test(tc, ilp_pipeline_stages);
    tcase_add_test(tc, given_plan_prices_as_planned);
    tcase_add_test(tc, ilp_mixed_stages_own_rates);
    tcase_add_test(tc, ilp_mixed_uneven_closed_form);
    tcase_add_test(tc, ilp_mixed_own_memory);
    tcase_add_test(tc, given_plan_bad_label);
    tcase_add_test(tc, given_plan_simulates);
    tcase_add_test(tc, graph_segments);
    tcase_add_test(tc, ilp_custom_pipeline);
    tcase_add_test(tc, ilp_recompute);
    tcase_add_test(tc, ilp_lowering_names_operators);
    tcase_add_test(tc, ilp_zero_hand_computed);
    tcase_add_test(tc, ilp_zero_never_slower);
    tcase_add_test(tc, ilp_zero_auto_pays);
    tcase_add_test(tc, ilp_zero_fits_tower);
    tcase_add_test(tc, ilp_zero_plan_file);
    tcase_add_test(tc, ilp_attention_plan_file);
    tcase_add_test(tc, ilp_state_as_estimate);
    tcase_add_test(tc, ilp_inflight_few_microbatches);
    tcase_add_test(tc, ilp_hybrid_degrees);
    tcase_add_test(tc, ilp_hybrid_rows);
    tcase_add_test(tc, ilp_hybrid_qkv_width);
    tcase_add_test(tc, ilp_hybrid_moe_rows);
    tcase_add_test(tc, ilp_hybrid_moe_batch);
    tcase_add_test(tc, ilp_moe_rows_combine_alltoall);
    suite_add_tcase(s, tc);
    return s;
}
