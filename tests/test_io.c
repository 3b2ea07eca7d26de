/* test_io.c: the Check suite of strata's JSON input and output (src/io/jsonutil.c, model_io.c,
 * cluster_io.c, plan_io.c).
 *
 * Data-driven in Jansson's manner: tests/data/io/valid/ and hf/ hold files that must load, with
 * the values they must give; tests/data/io/invalid/ holds one file per kind of bad input, with the
 * error code, the exact key path and (for syntax errors) the position the loader must report.
 * HuggingFace configs are copies of the published config.json files; their parameter counts are
 * the ones the model cards and `sum(p.numel())` give, checked through st_model_params().
 */
#include "src/io/jsonutil.h"

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef SRCDIR
#define SRCDIR "."
#endif
#define DATA(p) SRCDIR "/tests/data/io/" p

Suite *suite_io(void);

/* ------------------------------------------------------------ helpers */

/* A fresh private directory under $TMPDIR (or /tmp); the caller removes it with rm_dir. */
static void make_tmpdir(char *buf, size_t n) {
    const char *base = getenv("TMPDIR");
    snprintf(buf, n, "%s/strata-io-XXXXXX", base && base[0] ? base : "/tmp");
    ck_assert_ptr_nonnull(mkdtemp(buf));
}

/* Entries of a directory other than . and .. */
static int count_entries(const char *dir) {
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;
    ck_assert_ptr_nonnull(d);
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
    closedir(d);
    return n;
}

/* Removes the files (and empty subdirectories) of dir, then dir. */
static void rm_dir(const char *dir) {
    DIR *d = opendir(dir);
    struct dirent *e;
    char path[1024];
    if (!d) return;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (unlink(path) != 0) rmdir(path);
    }
    closedir(d);
    rmdir(dir);
}

static void assert_rel(double got, double want, double tol, const char *what) {
    double rel = fabs(got - want) / fabs(want);
    ck_assert_msg(rel <= tol, "%s: got %.6g, want %.6g (relative error %.3g > %.3g)", what, got, want, rel, tol);
}

static void assert_models_equal(const st_model *a, const st_model *b) {
    ck_assert_str_eq(a->name, b->name);
    ck_assert_int_eq(a->layers, b->layers);
    ck_assert_int_eq(a->hidden, b->hidden);
    ck_assert_int_eq(a->heads, b->heads);
    ck_assert_int_eq(a->kv_heads, b->kv_heads);
    ck_assert_int_eq(a->head_dim, b->head_dim);
    ck_assert_int_eq(a->ffn, b->ffn);
    ck_assert_int_eq(a->vocab, b->vocab);
    ck_assert_int_eq(a->seq_len, b->seq_len);
    ck_assert_int_eq(a->activation, b->activation);
    ck_assert_int_eq(a->norm, b->norm);
    ck_assert_int_eq(a->position, b->position);
    ck_assert_int_eq(a->tied_embeddings, b->tied_embeddings);
    ck_assert_int_eq(a->dropout, b->dropout);
    ck_assert_int_eq(a->bias, b->bias);
    ck_assert_int_eq(a->experts, b->experts);
    ck_assert_int_eq(a->experts_topk, b->experts_topk);
    ck_assert_int_eq(a->moe_every, b->moe_every);
    ck_assert_int_eq(a->vocab_pad_multiple, b->vocab_pad_multiple);
}

/* Every plan field but `given`. */
static void assert_plans_equal(const st_plan *a, const st_plan *b) {
    ck_assert_int_eq(a->tp, b->tp);
    ck_assert_int_eq(a->pp, b->pp);
    ck_assert_int_eq(a->dp, b->dp);
    ck_assert_int_eq(a->cp, b->cp);
    ck_assert_int_eq(a->ep, b->ep);
    ck_assert_int_eq(a->vp, b->vp);
    ck_assert_int_eq(a->mbs, b->mbs);
    ck_assert_int_eq(a->gbs, b->gbs);
    ck_assert_int_eq(a->seq, b->seq);
    ck_assert_int_eq(a->sp, b->sp);
    ck_assert_int_eq(a->recompute, b->recompute);
    ck_assert_int_eq(a->zero, b->zero);
    ck_assert_int_eq(a->offload, b->offload);
    ck_assert_int_eq(a->dtype, b->dtype);
    ck_assert_int_eq(a->schedule, b->schedule);
    ck_assert_int_eq(a->attention, b->attention);
    ck_assert_int_eq(a->overlap_grad_reduce, b->overlap_grad_reduce);
    ck_assert_int_eq(a->overlap_param_gather, b->overlap_param_gather);
    ck_assert_int_eq(a->fp8_param_gather, b->fp8_param_gather);
    ck_assert_int_eq(a->tp_overlap, b->tp_overlap);
    ck_assert_int_eq(a->pp_partition, b->pp_partition);
    ck_assert_int_eq(a->grad_bytes, b->grad_bytes);
    ck_assert_int_eq(a->nstage_layers, b->nstage_layers);
    for (int i = 0; i < a->nstage_layers; i++) ck_assert_int_eq(a->stage_layers[i], b->stage_layers[i]);
    ck_assert_uint_eq(a->seed, b->seed);
}

/* |got - want| within a relative 1e-12 (exact for zeros) */
#define ASSERT_CLOSE(got, want) ck_assert_double_eq_tol(got, want, 1e-12 * fabs(want) + 1e-300)

static void assert_clusters_equal(const st_cluster *a, const st_cluster *b) {
    ck_assert_str_eq(a->name, b->name);
    ck_assert_int_eq(a->nodes, b->nodes);
    ck_assert_int_eq(a->gpus_per_node, b->gpus_per_node);
    ck_assert_str_eq(a->gpu.name, b->gpu.name);
    ASSERT_CLOSE(b->gpu.memory_bytes, a->gpu.memory_bytes);
    ASSERT_CLOSE(b->gpu.hbm_bytes_per_s, a->gpu.hbm_bytes_per_s);
    for (int d = 0; d < ST_DT_COUNT; d++)
        ASSERT_CLOSE(b->gpu.peak_flops[d], a->gpu.peak_flops[d]);
    ASSERT_CLOSE(b->gpu.gemm_efficiency, a->gpu.gemm_efficiency);
    ASSERT_CLOSE(b->gpu.gemm_efficiency_fp8, a->gpu.gemm_efficiency_fp8); /* 0 (derived) stays 0 */
    ASSERT_CLOSE(b->intra_bytes_per_s, a->intra_bytes_per_s);
    ASSERT_CLOSE(b->intra_latency_s, a->intra_latency_s);
    ck_assert_int_eq(a->nics_per_node, b->nics_per_node);
    ASSERT_CLOSE(b->nic_bytes_per_s, a->nic_bytes_per_s);
    ASSERT_CLOSE(b->inter_latency_s, a->inter_latency_s);
    ASSERT_CLOSE(b->oversubscription, a->oversubscription);
    ck_assert_int_eq(a->rail_optimized, b->rail_optimized);
    ck_assert_int_eq(a->sharp_domain, b->sharp_domain);
    ck_assert_int_eq(a->sharp_inter, b->sharp_inter);
    ck_assert_int_eq(a->leaf_nodes, b->leaf_nodes);
    ck_assert_int_eq(a->pod_nodes, b->pod_nodes);
    ASSERT_CLOSE(b->leaf_oversubscription, a->leaf_oversubscription);
    ASSERT_CLOSE(b->pod_oversubscription, a->pod_oversubscription);
    ASSERT_CLOSE(b->host_memory_bytes, a->host_memory_bytes);
    ASSERT_CLOSE(b->pcie_bytes_per_s, a->pcie_bytes_per_s);
    ASSERT_CLOSE(b->reserved_bytes, a->reserved_bytes);
    ck_assert_str_eq(a->mig.profile, b->mig.profile);
    ck_assert_int_eq(a->mig.per_gpu, b->mig.per_gpu);
}

/* ------------------------------------------------------------ models */

START_TEST(model_strata_gpt3) {
    st_model m;
    st_error err;
    st_error_clear(&err);
    ck_assert_int_eq(st_model_load(DATA("valid/model_gpt3.json"), &m, &err), 0);
    ck_assert_str_eq(m.name, "gpt3-175b");
    ck_assert_int_eq(m.layers, 96);
    ck_assert_int_eq(m.hidden, 12288);
    ck_assert_int_eq(m.heads, 96);
    ck_assert_int_eq(m.kv_heads, 96);
    ck_assert_int_eq(m.ffn, 49152);
    ck_assert_int_eq(m.vocab, 51200);
    ck_assert_int_eq(m.seq_len, 2048);
    ck_assert_int_eq(m.activation, ST_ACT_GELU);
    ck_assert_int_eq(m.norm, ST_NORM_LAYERNORM);
    ck_assert_int_eq(m.position, ST_POS_LEARNED);
    ck_assert_int_eq(m.tied_embeddings, 1);
    ck_assert_int_eq(m.experts, 0);
    ck_assert_str_eq(m.source, DATA("valid/model_gpt3.json"));
    /* 12*l*h^2 blocks + V*h + s*h embeddings (+ biases and norms): 174.6e9 */
    assert_rel(st_model_params(&m), 174.6e9, 0.01, "gpt3-175b params");
}
END_TEST

START_TEST(model_strata_minimal_defaults) {
    st_model m;
    st_error err;
    st_error_clear(&err);
    ck_assert_int_eq(st_model_load(DATA("valid/model_minimal.json"), &m, &err), 0);
    ck_assert_str_eq(m.name, "model_minimal"); /* from the file name */
    ck_assert_int_eq(m.kv_heads, 16);
    ck_assert_int_eq(m.head_dim, 128);
    ck_assert_int_eq(m.ffn, 4 * 2048);
    ck_assert_int_eq(m.seq_len, 2048);
    ck_assert_int_eq(m.activation, ST_ACT_GELU);
    ck_assert_int_eq(m.norm, ST_NORM_LAYERNORM);
    ck_assert_int_eq(m.position, ST_POS_LEARNED);
    ck_assert_int_eq(m.tied_embeddings, 1);
    ck_assert_int_eq(m.dropout, 1);
    ck_assert_int_eq(m.bias, 1);
    ck_assert_int_eq(m.experts, 0);
    ck_assert_int_eq(m.moe_every, 1);
}
END_TEST

START_TEST(model_strata_all_keys) {
    st_model m;
    st_error err;
    st_error_clear(&err);
    ck_assert_int_eq(st_model_load(DATA("valid/model_all_keys.json"), &m, &err), 0);
    ck_assert_str_eq(m.name, "moe-test");
    ck_assert_int_eq(m.layers, 16);
    ck_assert_int_eq(m.hidden, 2048);
    ck_assert_int_eq(m.heads, 16);
    ck_assert_int_eq(m.kv_heads, 4);
    ck_assert_int_eq(m.head_dim, 128);
    ck_assert_int_eq(m.ffn, 5632);
    ck_assert_int_eq(m.vocab, 32000);
    ck_assert_int_eq(m.seq_len, 4096);
    ck_assert_int_eq(m.experts, 8);
    ck_assert_int_eq(m.experts_topk, 2);
    ck_assert_int_eq(m.moe_every, 2);
    ck_assert_int_eq(m.vocab_pad_multiple, 64);
    ck_assert_int_eq(m.activation, ST_ACT_SWIGLU);
    ck_assert_int_eq(m.norm, ST_NORM_RMSNORM);
    ck_assert_int_eq(m.position, ST_POS_ROPE);
    ck_assert_int_eq(m.tied_embeddings, 0);
    ck_assert_int_eq(m.dropout, 0);
    ck_assert_int_eq(m.bias, 0);
}
END_TEST

/* HuggingFace config.json files and what they must map to. params: the published count. */
static const struct hf_case {
    const char *file, *name;
    int64_t layers, hidden, heads, kv_heads, ffn, vocab, seq_len;
    st_activation act;
    st_norm norm;
    st_position pos;
    int tied, bias, dropout;
    int64_t experts, topk;
    double params, tol;
} hf_cases[] = {
    {"hf/Llama-2-7b-hf.json", "meta-llama/Llama-2-7b-hf", 32, 4096, 32, 32, 11008, 32000, 4096, ST_ACT_SWIGLU,
     ST_NORM_RMSNORM, ST_POS_ROPE, 0, 0, 0, 0, 0, 6738415616.0, 0.01},
    {"hf/Meta-Llama-3-8B.json", "llama", 32, 4096, 32, 8, 14336, 128256, 8192, ST_ACT_SWIGLU, ST_NORM_RMSNORM,
     ST_POS_ROPE, 0, 0, 0, 0, 0, 8030261248.0, 0.01},
    /* rope_scaling: trained at 8192, extended to 131072 */
    {"hf/Meta-Llama-3.1-8B.json", "llama", 32, 4096, 32, 8, 14336, 128256, 8192, ST_ACT_SWIGLU, ST_NORM_RMSNORM,
     ST_POS_ROPE, 0, 0, 0, 0, 0, 8030261248.0, 0.01},
    {"hf/Mistral-7B-v0.1.json", "mistral", 32, 4096, 32, 8, 14336, 32000, 4096, ST_ACT_SWIGLU, ST_NORM_RMSNORM,
     ST_POS_ROPE, 0, 0, 0, 0, 0, 7241732096.0, 0.01},
    {"hf/Mixtral-8x7B-v0.1.json", "mixtral", 32, 4096, 32, 8, 14336, 32000, 4096, ST_ACT_SWIGLU, ST_NORM_RMSNORM,
     ST_POS_ROPE, 0, 0, 0, 8, 2, 46702792704.0, 0.01},
    {"hf/Qwen2-7B.json", "qwen2", 28, 3584, 28, 4, 18944, 152064, 4096, ST_ACT_SWIGLU, ST_NORM_RMSNORM,
     ST_POS_ROPE, 0, 0, 0, 0, 0, 7615616512.0, 0.01},
    {"hf/gpt2.json", "gpt2", 12, 768, 12, 12, 3072, 50257, 1024, ST_ACT_GELU, ST_NORM_LAYERNORM, ST_POS_LEARNED, 1,
     1, 1, 0, 0, 124439808.0, 0.01},
    /* no model_type or architectures: recognised by its keys, named after the file */
    {"hf/gpt2-keys-only.json", "gpt2-keys-only", 12, 768, 12, 12, 3072, 50257, 1024, ST_ACT_GELU,
     ST_NORM_LAYERNORM, ST_POS_LEARNED, 1, 1, 1, 0, 0, 124439808.0, 0.01},
    /* OPT's learned positions have 2048 + 2 rows */
    {"hf/opt-1.3b.json", "facebook/opt-1.3b", 24, 2048, 32, 32, 8192, 50272, 2048, ST_ACT_RELU, ST_NORM_LAYERNORM,
     ST_POS_LEARNED, 1, 1, 1, 0, 0, 1315758080.0, 0.02},
    {"hf/bloom-560m.json", "bloom", 24, 1024, 16, 16, 4096, 250880, 2048, ST_ACT_GELU, ST_NORM_LAYERNORM,
     ST_POS_ALIBI, 1, 1, 1, 0, 0, 559214592.0, 0.01},
};

START_TEST(model_hf) {
    const struct hf_case *c = &hf_cases[_i];
    char path[512], what[600];
    st_model m;
    st_error err;

    snprintf(path, sizeof path, DATA("%s"), c->file);
    st_error_clear(&err);
    memset(&m, 0x5a, sizeof m);
    ck_assert_msg(st_model_load(path, &m, &err) == 0, "%s: %s (key '%s')", c->file, err.text, err.key);
    ck_assert_str_eq(m.name, c->name);
    ck_assert_int_eq(m.layers, c->layers);
    ck_assert_int_eq(m.hidden, c->hidden);
    ck_assert_int_eq(m.heads, c->heads);
    ck_assert_int_eq(m.kv_heads, c->kv_heads);
    ck_assert_int_eq(m.head_dim, c->hidden / c->heads);
    ck_assert_int_eq(m.ffn, c->ffn);
    ck_assert_int_eq(m.vocab, c->vocab);
    ck_assert_int_eq(m.seq_len, c->seq_len);
    ck_assert_int_eq(m.activation, c->act);
    ck_assert_int_eq(m.norm, c->norm);
    ck_assert_int_eq(m.position, c->pos);
    ck_assert_int_eq(m.tied_embeddings, c->tied);
    ck_assert_int_eq(m.bias, c->bias);
    ck_assert_int_eq(m.dropout, c->dropout);
    ck_assert_int_eq(m.experts, c->experts);
    ck_assert_int_eq(m.experts_topk, c->topk);
    ck_assert_str_eq(m.source, path);
    snprintf(what, sizeof what, "%s params", c->file);
    assert_rel(st_model_params(&m), c->params, c->tol, what);
}
END_TEST

/* A long _name_or_path: its last component, cut at a UTF-8 character boundary; explicit GPT-2
 * keys (n_inner, relu, untied) win over the family defaults. */
START_TEST(model_hf_long_name) {
    st_model m;
    st_error err;
    json_t *j;

    st_error_clear(&err);
    ck_assert_int_eq(st_model_load(DATA("hf/long-name.json"), &m, &err), 0);
    ck_assert_uint_eq(strlen(m.name), 61); /* "x" + 20 three-byte characters; the 21st would split */
    ck_assert_int_eq(strncmp(m.name, "x\xe6\xa8\xa1", 4), 0);
    ck_assert_int_eq(m.ffn, 512);
    ck_assert_int_eq(m.activation, ST_ACT_RELU);
    ck_assert_int_eq(m.tied_embeddings, 0);
    ck_assert_int_eq(m.seq_len, 512);
    j = st__model_to_json(&m); /* the name is still valid UTF-8, so JSON accepts it */
    ck_assert_ptr_nonnull(j);
    ck_assert_str_eq(json_string_value(json_object_get(j, "name")), m.name);
    json_decref(j);
}
END_TEST

START_TEST(model_resolve) {
    size_t n;
    const st_model *presets = st_model_presets(&n);
    st_model m;
    st_error err;

    ck_assert_uint_gt(n, 0);
    st_error_clear(&err);
    ck_assert_int_eq(st_model_resolve(presets[0].name, &m, &err), 0);
    ck_assert_str_eq(m.name, presets[0].name);
    ck_assert_int_eq(m.layers, presets[0].layers);
    ck_assert_int_eq(st_model_resolve(DATA("hf/gpt2.json"), &m, &err), 0);
    ck_assert_int_eq(m.hidden, 768);
    /* neither a preset nor a file: says so, naming the argument */
    st_error_clear(&err);
    ck_assert_int_eq(st_model_resolve("no-such-model-xyz", &m, &err), ST_EINVAL);
    ck_assert_str_eq(err.key, "model");
    ck_assert_ptr_nonnull(strstr(err.text, "no-such-model-xyz"));
    /* an existing path that fails to load keeps the loader's error */
    ck_assert_int_eq(st_model_resolve(SRCDIR "/tests/data", &m, &err), ST_EIO);
}
END_TEST

/* Canonical JSON written and read back gives the same model; key order does not move the hash. */
START_TEST(model_json_round_trip) {
    char dir[256], path[300], h1[17], h2[17];
    st_model a, b;
    st_error err;
    json_t *ja, *jb;

    make_tmpdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/model.json", dir);
    st_error_clear(&err);
    for (size_t i = 0; i < sizeof hf_cases / sizeof hf_cases[0]; i++) {
        char src[512];
        snprintf(src, sizeof src, DATA("%s"), hf_cases[i].file);
        ck_assert_int_eq(st_model_load(src, &a, &err), 0);
        ja = st__model_to_json(&a);
        ck_assert_ptr_nonnull(ja);
        ck_assert_int_eq(st__json_write_file(ja, path, &err), 0);
        ck_assert_int_eq(st_model_load(path, &b, &err), 0);
        assert_models_equal(&a, &b);
        jb = st__model_to_json(&b);
        st__json_hash(ja, h1);
        st__json_hash(jb, h2);
        ck_assert_str_eq(h1, h2);
        json_decref(ja);
        json_decref(jb);
    }
    rm_dir(dir);
}
END_TEST

/* ------------------------------------------------------------ clusters */

START_TEST(cluster_preset_gpu) {
    st_cluster c;
    st_gpu g;
    st_error err;

    st_error_clear(&err);
    ck_assert_int_eq(st_cluster_load(DATA("valid/cluster_selene.json"), &c, &err), 0);
    ck_assert_int_eq(st_gpu_preset("a100-sxm-80g", &g), 0);
    ck_assert_str_eq(c.name, "selene");
    ck_assert_int_eq(c.nodes, 280);
    ck_assert_int_eq(c.gpus_per_node, 8);
    ck_assert_int_eq(st_cluster_gpus(&c), 2240);
    ck_assert_str_eq(c.gpu.name, "a100-sxm-80g");
    ck_assert_double_eq(c.gpu.memory_bytes, g.memory_bytes);
    ck_assert_double_eq(c.gpu.peak_flops[ST_DT_BF16], g.peak_flops[ST_DT_BF16]);
    ck_assert_double_eq(c.intra_bytes_per_s, 300e9);
    ck_assert_double_eq_tol(c.intra_latency_s, 2e-6, 1e-15);
    ck_assert_int_eq(c.nics_per_node, 8);
    ck_assert_double_eq(c.nic_bytes_per_s, 25e9); /* 200 Gbit/s */
    ck_assert_double_eq_tol(c.inter_latency_s, 5e-6, 1e-15);
    ck_assert_double_eq(c.oversubscription, 1);
    ck_assert_double_eq(c.host_memory_bytes, 2048.0 * 1073741824.0);
    ck_assert_double_eq(c.pcie_bytes_per_s, 25e9);
    ck_assert_str_eq(c.source, DATA("valid/cluster_selene.json"));
}
END_TEST

START_TEST(cluster_gpu_object) {
    st_cluster c;
    st_error err;

    st_error_clear(&err);
    ck_assert_int_eq(st_cluster_load(DATA("valid/cluster_gpu_object.json"), &c, &err), 0);
    ck_assert_str_eq(c.name, "custom-lab");
    ck_assert_int_eq(st_cluster_gpus(&c), 16);
    ck_assert_str_eq(c.gpu.name, "x100");
    ck_assert_double_eq(c.gpu.memory_bytes, 96.0 * 1073741824.0);
    ck_assert_double_eq(c.gpu.hbm_bytes_per_s, 4000e9);
    ck_assert_double_eq(c.gpu.peak_flops[ST_DT_FP32], 60e12);
    ck_assert_double_eq(c.gpu.peak_flops[ST_DT_TF32], 0);
    ck_assert_double_eq(c.gpu.peak_flops[ST_DT_FP16], 0);
    ck_assert_double_eq_tol(c.gpu.peak_flops[ST_DT_BF16], 800.5e12, 1);
    ck_assert_double_eq(c.gpu.peak_flops[ST_DT_FP8], 1601e12);
    ck_assert_double_eq(c.gpu.gemm_efficiency, 0.75);
    ck_assert_double_eq(c.intra_bytes_per_s, 450e9);
    /* defaults */
    ck_assert_double_eq_tol(c.intra_latency_s, 2e-6, 1e-15);
    ck_assert_double_eq_tol(c.inter_latency_s, 5e-6, 1e-15);
    ck_assert_double_eq(c.nic_bytes_per_s, 50e9);
    ck_assert_double_eq(c.oversubscription, 2);
    ck_assert_double_eq(c.host_memory_bytes, 1024.0 * 1073741824.0);
    ck_assert_double_eq(c.pcie_bytes_per_s, 25e9);
}
END_TEST

START_TEST(cluster_single_node_defaults) {
    st_cluster c;
    st_error err;

    st_error_clear(&err);
    ck_assert_int_eq(st_cluster_load(DATA("valid/cluster_single_node.json"), &c, &err), 0);
    ck_assert_str_eq(c.name, "cluster_single_node");
    ck_assert_str_eq(c.gpu.name, "custom");
    ck_assert_int_eq(c.nics_per_node, 0);
    ck_assert_double_eq(c.gpu.peak_flops[ST_DT_FP16], 71e12);
    ck_assert_double_eq(c.gpu.peak_flops[ST_DT_BF16], 0);
    ck_assert_double_eq(c.gpu.gemm_efficiency, 0.8);
    ck_assert_double_eq(c.intra_bytes_per_s, 56.25e9);
    ck_assert_double_eq_tol(c.intra_latency_s, 3.5e-6, 1e-15);
    ck_assert_double_eq(c.host_memory_bytes, 128.0 * 1073741824.0);
}
END_TEST

/* the framework's reserve: read from "framework", written back only when set (a cluster without
 * it writes, and hashes for plan files, as before the key existed), the default where absent */
START_TEST(cluster_framework_reserved) {
    st_cluster c;
    st_error err;

    st_error_clear(&err);
    ck_assert_int_eq(st_cluster_load(DATA("valid/cluster_framework.json"), &c, &err), 0);
    ck_assert_double_eq(c.reserved_bytes, 3.5 * 1073741824.0);
    ck_assert_double_eq(st_cluster_reserved_bytes(&c), 3.5 * 1073741824.0);
    json_t *j = st__cluster_to_json(&c);
    ck_assert_double_eq(json_real_value(json_object_get(json_object_get(j, "framework"), "reserved_gib")), 3.5);
    json_decref(j);
    ck_assert_int_eq(st_cluster_load(DATA("valid/cluster_gpu_object.json"), &c, &err), 0);
    ck_assert_double_eq(c.reserved_bytes, 0);
    ck_assert_double_eq(st_cluster_reserved_bytes(&c), ST_RESERVED_DEFAULT_BYTES);
    j = st__cluster_to_json(&c);
    ck_assert_ptr_null(json_object_get(j, "framework"));
    json_decref(j);
}
END_TEST

/* the per-kernel prices a fit of measured runs sets (framework.launch_overhead_us, host_us_per_kernel,
 * gpu.gemm_half_dim): read, written back only when set, and read again the same */
START_TEST(cluster_kernel_prices) {
    st_cluster c, back;
    st_error err;

    st_error_clear(&err);
    ck_assert_int_eq(st_cluster_load(DATA("valid/cluster_kernel_prices.json"), &c, &err), 0);
    ck_assert_double_eq_tol(c.launch_overhead_s, 8e-6, 1e-18);
    ck_assert_double_eq_tol(c.host_s_per_kernel, 12.5e-6, 1e-18);
    ck_assert_double_eq(c.gpu.gemm_half_dim, 128);
    json_t *j = st__cluster_to_json(&c);
    ck_assert_int_eq(st__cluster_from_json(j, "mem", NULL, NULL, &back, &err), 0);
    ck_assert_double_eq_tol(back.launch_overhead_s, 8e-6, 1e-18);
    ck_assert_double_eq_tol(back.host_s_per_kernel, 12.5e-6, 1e-18);
    ck_assert_double_eq(back.gpu.gemm_half_dim, 128);
    ck_assert_ptr_null(json_object_get(json_object_get(j, "framework"), "reserved_gib"));
    json_decref(j);
    ck_assert_int_eq(st_cluster_load(DATA("valid/cluster_gpu_object.json"), &c, &err), 0);
    ck_assert(c.launch_overhead_s == 0 && c.host_s_per_kernel == 0 && c.gpu.gemm_half_dim == 0);
    j = st__cluster_to_json(&c);
    ck_assert_ptr_null(json_object_get(json_object_get(j, "gpu"), "gemm_half_dim"));
    json_decref(j);
}
END_TEST

/* the block-scaled peaks (gpu.peak_tflops.mxfp8, .nvfp4): a preset's written and read back the same;
 * a GPU without them writes neither key (its JSON, and the plan files' hashes, as before they existed) */
START_TEST(cluster_blockscaled_peaks) {
    st_cluster c, back;
    st_error err;

    st_error_clear(&err);
    ck_assert_int_eq(st_cluster_resolve("dgx-b300", 8, &c, &err), 0);
    json_t *j = st__cluster_to_json(&c);
    json_t *peak = json_object_get(json_object_get(j, "gpu"), "peak_tflops");
    ck_assert_double_eq(json_real_value(json_object_get(peak, "mxfp8")), 4500);
    ck_assert_double_eq(json_real_value(json_object_get(peak, "nvfp4")), 13500);
    ck_assert_int_eq(st__cluster_from_json(j, "mem", NULL, NULL, &back, &err), 0);
    ck_assert_double_eq(back.gpu.peak_flops[ST_DT_MXFP8], 4500e12);
    ck_assert_double_eq(back.gpu.peak_flops[ST_DT_NVFP4], 13500e12);
    json_decref(j);
    ck_assert_int_eq(st_cluster_resolve("dgx-h100", 8, &c, &err), 0);
    j = st__cluster_to_json(&c);
    peak = json_object_get(json_object_get(j, "gpu"), "peak_tflops");
    ck_assert_ptr_null(json_object_get(peak, "mxfp8"));
    ck_assert_ptr_null(json_object_get(peak, "nvfp4"));
    ck_assert_ptr_nonnull(json_object_get(peak, "fp8"));
    json_decref(j);
}
END_TEST

/* st_cluster_size directly (st_cluster_resolve's sizing; a validation point's): the file it is
 * given is named, a refused size leaves the cluster as it was. */
/* a description's name after its file: basename, no ".json", printable ASCII, cut, a default */
START_TEST(json_name_from_path) {
    char out[8];
    st__json_name_from_path(out, sizeof out, "/a/b/x.json", "model");
    ck_assert_str_eq(out, "x");
    st__json_name_from_path(out, sizeof out, "dir/", "cluster");
    ck_assert_str_eq(out, "cluster");
    st__json_name_from_path(out, sizeof out, "m\xc3\xa9 1", "model");
    ck_assert_str_eq(out, "m___1");
    st__json_name_from_path(out, sizeof out, "abcdefghij.json", "model");
    ck_assert_str_eq(out, "abcdefg");
}
END_TEST

START_TEST(cluster_size) {
    st_cluster c, keep;
    st_error err;
    ck_assert_int_eq(st_cluster_preset("dgx-h100", &c), 0);
    st_error_clear(&err);
    ck_assert_int_eq(st_cluster_size(&c, 4096, "bundle.json", &err), 0);
    ck_assert_int_eq(c.nodes, 512);
    keep = c;
    const int64_t bad[] = {0, -8, 12, (int64_t)ST_MAX_GPUS + 8};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        st_error_clear(&err);
        ck_assert_int_eq(st_cluster_size(&c, bad[i], "bundle.json", &err), ST_EINVAL);
        ck_assert_str_eq(err.key, "gpus");
        ck_assert_str_eq(err.file, "bundle.json");
        ck_assert_int_eq(c.nodes, keep.nodes);
    }
}
END_TEST

START_TEST(cluster_resolve_resize) {
    size_t n;
    const st_cluster *presets = st_cluster_presets(&n);
    st_cluster c, keep;
    st_error err;

    ck_assert_uint_gt(n, 0);
    st_error_clear(&err);
    ck_assert_int_eq(st_cluster_resolve(presets[0].name, 0, &c, &err), 0);
    ck_assert_int_eq(c.nodes, presets[0].nodes);
    ck_assert_int_eq(st_cluster_resolve(presets[0].name, 8 * presets[0].gpus_per_node, &c, &err), 0);
    ck_assert_int_eq(c.nodes, 8);
    ck_assert_int_eq(st_cluster_gpus(&c), 8 * presets[0].gpus_per_node);

    ck_assert_int_eq(st_cluster_resolve(DATA("valid/cluster_selene.json"), 16, &c, &err), 0);
    ck_assert_str_eq(c.name, "selene");
    ck_assert_int_eq(c.nodes, 2);
    ck_assert_int_eq(c.gpus_per_node, 8);

    /* not a multiple of gpus_per_node: refused, naming "gpus", output untouched */
    keep = c;
    st_error_clear(&err);
    ck_assert_int_eq(st_cluster_resolve(DATA("valid/cluster_selene.json"), 12, &c, &err), ST_EINVAL);
    ck_assert_str_eq(err.key, "gpus");
    ck_assert_ptr_nonnull(strstr(err.text, "12"));
    ck_assert_int_eq(c.nodes, keep.nodes);
    st_error_clear(&err);
    ck_assert_int_eq(st_cluster_resolve(presets[0].name, -8, &c, &err), ST_EINVAL);
    ck_assert_str_eq(err.key, "gpus");
    /* a single node without NICs cannot grow to two nodes */
    st_error_clear(&err);
    ck_assert_int_eq(st_cluster_resolve(DATA("valid/cluster_single_node.json"), 4, &c, &err), ST_EINVAL);
    ck_assert_str_eq(err.key, "gpus");
    ck_assert_int_eq(st_cluster_resolve(DATA("valid/cluster_single_node.json"), 2, &c, &err), 0);
    ck_assert_int_eq(c.nodes, 1);
    st_error_clear(&err);
    ck_assert_int_eq(st_cluster_resolve("no-such-cluster-xyz", 0, &c, &err), ST_EINVAL);
    ck_assert_str_eq(err.key, "cluster");
}
END_TEST

/* The scale-out fabric's keys (issue 16): NICs per GPU, rails, tiers, SHARP; a file without them
 * writes no such keys (its canonical JSON, and so its hash, as before). */
START_TEST(cluster_tiers_load) {
    st_cluster c;
    st_error err;
    st_error_clear(&err);
    ck_assert_int_eq(st_cluster_load(DATA("valid/cluster_tiers.json"), &c, &err), 0);
    ck_assert_int_eq(c.nics_per_node, 8); /* 1 per GPU x 8 */
    ck_assert_int_eq(c.rail_optimized, 1);
    ck_assert_int_eq(c.leaf_nodes, 4);
    ck_assert_int_eq(c.pod_nodes, 8);
    ck_assert_double_eq(c.leaf_oversubscription, 2);
    ck_assert_double_eq(c.pod_oversubscription, 4);
    ck_assert_int_eq(c.sharp_domain, 1);
    ck_assert_int_eq(c.sharp_inter, 1);
    ck_assert_int_eq(st_cluster_load(DATA("valid/cluster_selene.json"), &c, &err), 0);
    json_t *j = st__cluster_to_json(&c), *inter = json_object_get(j, "inter_node");
    ck_assert_ptr_nonnull(inter);
    ck_assert_ptr_null(json_object_get(inter, "rail_optimized"));
    ck_assert_ptr_null(json_object_get(inter, "leaf"));
    ck_assert_ptr_null(json_object_get(inter, "spine"));
    ck_assert_ptr_null(json_object_get(inter, "sharp"));
    ck_assert_ptr_null(json_object_get(j, "scale_up"));
    json_decref(j);
}
END_TEST

START_TEST(cluster_json_round_trip) {
    static const char *const files[] = {"valid/cluster_selene.json", "valid/cluster_gpu_object.json",
                                        "valid/cluster_single_node.json", "valid/cluster_framework.json",
                                        "valid/cluster_mig.json", "valid/cluster_tiers.json"};
    char dir[256], path[300], src[512];
    st_cluster a, b;
    st_error err;
    size_t n;
    const st_cluster *presets = st_cluster_presets(&n);

    make_tmpdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/cluster.json", dir);
    st_error_clear(&err);
    for (size_t i = 0; i < sizeof files / sizeof files[0] + n; i++) {
        json_t *j;
        if (i < sizeof files / sizeof files[0]) {
            snprintf(src, sizeof src, DATA("%s"), files[i]);
            ck_assert_int_eq(st_cluster_load(src, &a, &err), 0);
        } else {
            a = presets[i - sizeof files / sizeof files[0]];
        }
        j = st__cluster_to_json(&a);
        ck_assert_ptr_nonnull(j);
        ck_assert_int_eq(st__json_write_file(j, path, &err), 0);
        json_decref(j);
        ck_assert_msg(st_cluster_load(path, &b, &err) == 0, "%s: %s", a.name, err.text);
        assert_clusters_equal(&a, &b);
    }
    rm_dir(dir);
}
END_TEST

/* ------------------------------------------------------------ plans */

START_TEST(plan_load_full) {
    st_plan p;
    st_error err;
    static const int stages[] = {3, 4, 4, 4, 4, 4, 4, 5};

    st_plan_defaults(&p);
    st_error_clear(&err);
    ck_assert_int_eq(st_plan_load(DATA("valid/plan_full.json"), &p, &err), 0);
    ck_assert_int_eq(p.tp, 8);
    ck_assert_int_eq(p.pp, 4);
    ck_assert_int_eq(p.dp, 2);
    ck_assert_int_eq(p.cp, 1);
    ck_assert_int_eq(p.ep, 1);
    ck_assert_int_eq(p.vp, 2);
    ck_assert_int_eq(p.mbs, 1);
    ck_assert_int_eq(p.gbs, 512);
    ck_assert_int_eq(p.seq, 4096);
    ck_assert_int_eq(p.sp, 1);
    ck_assert_int_eq(p.recompute, ST_REC_SELECTIVE);
    ck_assert_int_eq(p.zero, 1);
    ck_assert_int_eq(p.offload, ST_OFF_NONE);
    ck_assert_int_eq(p.dtype, ST_DT_BF16);
    ck_assert_int_eq(p.schedule, ST_SCHED_INTERLEAVED);
    ck_assert_int_eq(p.attention, ST_ATTN_UNFUSED);
    ck_assert_int_eq(p.overlap_grad_reduce, 1);
    ck_assert_int_eq(p.grad_bytes, 2);
    ck_assert_int_eq(p.nstage_layers, 8);
    for (int i = 0; i < 8; i++) ck_assert_int_eq(p.stage_layers[i], stages[i]);
    ck_assert_uint_eq(p.seed, 42);
    ck_assert_uint_eq(p.given, ST_GIVEN_DP | ST_GIVEN_GBS | ST_GIVEN_SEQ | ST_GIVEN_SCHEDULE | ST_GIVEN_GRAD | ST_GIVEN_TP);
}
END_TEST

START_TEST(plan_load_minimal) {
    st_plan p, d;
    st_error err;

    st_plan_defaults(&p);
    st_plan_defaults(&d);
    d.tp = 2;
    d.pp = 2;
    st_error_clear(&err);
    ck_assert_int_eq(st_plan_load(DATA("valid/plan_minimal.json"), &p, &err), 0);
    assert_plans_equal(&p, &d); /* no "attention" (files older than the key): the default, flash */
    ck_assert_int_eq(p.attention, ST_ATTN_FLASH);
    ck_assert_uint_eq(p.given, ST_GIVEN_TP); /* its tp (stage_tp's largest entry must equal it) */
}
END_TEST

START_TEST(plan_save_load_round_trip) {
    char dir[256], path[300], hash[17];
    st_plan a, b;
    st_model m;
    st_cluster c;
    st_error err;
    json_t *root, *j;

    st_error_clear(&err);
    ck_assert_int_eq(st_model_load(DATA("hf/Llama-2-7b-hf.json"), &m, &err), 0);
    ck_assert_int_eq(st_cluster_load(DATA("valid/cluster_gpu_object.json"), &c, &err), 0);
    st_plan_defaults(&a);
    a.tp = 4;
    a.pp = 2;
    a.dp = 2;
    a.cp = 1;
    a.ep = 2;
    a.vp = 4;
    a.mbs = 2;
    a.gbs = 1024;
    a.seq = 8192;
    a.sp = 1;
    a.recompute = ST_REC_FULL;
    a.zero = 3;
    a.offload = ST_OFF_OPTIMIZER;
    a.dtype = ST_DT_FP8;
    a.schedule = ST_SCHED_ZB;
    a.attention = ST_ATTN_UNFUSED;
    a.overlap_grad_reduce = 1;
    a.grad_bytes = 2;
    a.nstage_layers = 8;
    for (int i = 0; i < 8; i++) a.stage_layers[i] = 3 + (i % 3);
    a.seed = 18446744073709551557ULL; /* beyond int64: must survive */

    make_tmpdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/plan.json", dir);
    st_error_clear(&err);
    ck_assert_int_eq(st_plan_save(&a, &m, &c, path, &err), 0);
    st_plan_defaults(&b);
    ck_assert_msg(st_plan_load(path, &b, &err) == 0, "%s: key '%s': %s", path, err.key, err.text);
    assert_plans_equal(&a, &b);

    /* the file itself: format, version, GPU count, model and cluster identities */
    ck_assert_int_eq(st__json_load_file(path, &root, &err), 0);
    ck_assert_str_eq(json_string_value(json_object_get(root, "format")), "strata-plan");
    ck_assert_int_eq(json_integer_value(json_object_get(root, "version")), ST_PLAN_FORMAT_VERSION);
    ck_assert_int_eq(json_integer_value(json_object_get(root, "gpus")), 16);
    ck_assert_ptr_nonnull(strstr(json_string_value(json_object_get(root, "spec")), "tp=4"));
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(root, "model"), "name")), m.name);
    j = st__model_to_json(&m);
    st__json_hash(j, hash);
    json_decref(j);
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(root, "model"), "hash")), hash);
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(root, "cluster"), "name")), "custom-lab");
    j = st__cluster_to_json(&c);
    st__json_hash(j, hash);
    json_decref(j);
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(root, "cluster"), "hash")), hash);
    json_decref(root);

    /* no stage_layers when the pipeline is spread evenly; a small seed stays an integer */
    a.nstage_layers = 0;
    a.seed = 7;
    ck_assert_int_eq(st_plan_save(&a, &m, &c, path, &err), 0);
    ck_assert_int_eq(st__json_load_file(path, &root, &err), 0);
    ck_assert_ptr_null(json_object_get(root, "stage_layers"));
    ck_assert(json_is_integer(json_object_get(root, "seed")));
    json_decref(root);
    st_plan_defaults(&b);
    ck_assert_int_eq(st_plan_load(path, &b, &err), 0);
    assert_plans_equal(&a, &b);

    /* the V-shaped zero-bubble schedule and DualPipe round-trip by their names */
    static const struct {
        st_schedule s;
        int vp;
        const char *name;
    } named[] = {{ST_SCHED_ZBV, 2, "zbv"}, {ST_SCHED_DUALPIPE, 1, "dualpipe"}};
    for (size_t i = 0; i < sizeof named / sizeof named[0]; i++) {
        a.schedule = named[i].s;
        a.vp = named[i].vp;
        ck_assert_int_eq(st_plan_save(&a, &m, &c, path, &err), 0);
        ck_assert_int_eq(st__json_load_file(path, &root, &err), 0);
        ck_assert_str_eq(json_string_value(json_object_get(root, "schedule")), named[i].name);
        json_decref(root);
        st_plan_defaults(&b);
        ck_assert_int_eq(st_plan_load(path, &b, &err), 0);
        assert_plans_equal(&a, &b);
    }

    /* the overlap keys and pp_partition: written when on and read back; absent when off (files as
     * before them) */
    ck_assert_ptr_null(json_object_get(root = st__plan_to_json(&a), "tp_overlap"));
    ck_assert_ptr_null(json_object_get(root, "overlap_param_gather"));
    ck_assert_ptr_null(json_object_get(root, "pp_partition"));
    ck_assert_ptr_null(json_object_get(root, "fp8_param_gather"));
    json_decref(root);
    a.tp_overlap = a.overlap_param_gather = a.pp_partition = a.fp8_param_gather = 1;
    ck_assert_int_eq(st_plan_save(&a, &m, &c, path, &err), 0);
    ck_assert_int_eq(st__json_load_file(path, &root, &err), 0);
    ck_assert(json_is_true(json_object_get(root, "tp_overlap")));
    ck_assert(json_is_true(json_object_get(root, "overlap_param_gather")));
    ck_assert(json_is_true(json_object_get(root, "pp_partition")));
    ck_assert(json_is_true(json_object_get(root, "fp8_param_gather")));
    json_decref(root);
    st_plan_defaults(&b);
    ck_assert_int_eq(st_plan_load(path, &b, &err), 0);
    assert_plans_equal(&a, &b);

    /* plan_to_json holds the plan's keys only */
    j = st__plan_to_json(&a);
    ck_assert_ptr_null(json_object_get(j, "model"));
    ck_assert_ptr_null(json_object_get(j, "format"));
    ck_assert_int_eq(json_integer_value(json_object_get(j, "tp")), 4);
    ck_assert_str_eq(json_string_value(json_object_get(j, "attention")), "unfused");
    json_decref(j);
    ck_assert_int_eq(count_entries(dir), 1); /* plan.json, no temporary files */
    rm_dir(dir);
}
END_TEST

START_TEST(plan_resolve) {
    st_plan p;
    st_error err;

    st_plan_defaults(&p);
    st_error_clear(&err);
    ck_assert_int_eq(st_plan_resolve(DATA("valid/plan_full.json"), &p, &err), 0);
    ck_assert_int_eq(p.tp, 8);
    ck_assert_int_eq(p.nstage_layers, 8);
    st_plan_defaults(&p);
    ck_assert_int_eq(st_plan_resolve("tp=4,pp=2", &p, &err), 0);
    ck_assert_int_eq(p.tp, 4);
    ck_assert_int_eq(p.pp, 2);
    st_error_clear(&err);
    ck_assert_int_eq(st_plan_resolve(DATA("valid/no-such-plan.json"), &p, &err), ST_EIO);
    ck_assert_str_eq(err.file, DATA("valid/no-such-plan.json"));
}
END_TEST

/* ------------------------------------------------------------ jsonutil */

START_TEST(json_write_atomic) {
    char dir[256], path[300], bad[400], buf[64];
    st_error err;
    json_t *v = json_pack("{s:i, s:[i,i]}", "b", 1, "a", 2, 3), *back = NULL;
    FILE *f;
    size_t n;

    make_tmpdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/out.json", dir);
    st_error_clear(&err);
    ck_assert_int_eq(st__json_write_file(v, path, &err), 0);
    /* insertion order kept, two-space indent, trailing newline */
    f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    ck_assert_str_eq(buf, "{\n  \"b\": 1,\n  \"a\": [\n    2,\n    3\n  ]\n}\n");
    ck_assert_int_eq(st__json_load_file(path, &back, &err), 0);
    ck_assert(json_equal(v, back));
    json_decref(back);
    /* replaces an existing file */
    json_object_set_new(v, "b", json_integer(5));
    ck_assert_int_eq(st__json_write_file(v, path, &err), 0);
    ck_assert_int_eq(st__json_load_file(path, &back, &err), 0);
    ck_assert_int_eq(json_integer_value(json_object_get(back, "b")), 5);
    json_decref(back);
    ck_assert_int_eq(count_entries(dir), 1);

    /* a directory that does not exist: ST_EIO, nothing created */
    snprintf(bad, sizeof bad, "%s/missing/out.json", dir);
    st_error_clear(&err);
    ck_assert_int_eq(st__json_write_file(v, bad, &err), ST_EIO);
    ck_assert_str_eq(err.file, bad);
    ck_assert_int_eq(access(bad, F_OK), -1);
    ck_assert_int_eq(count_entries(dir), 1);

    /* the target is a directory: rename fails, the temporary file is removed */
    snprintf(bad, sizeof bad, "%s/sub", dir);
    ck_assert_int_eq(mkdir(bad, 0700), 0);
    st_error_clear(&err);
    ck_assert_int_eq(st__json_write_file(v, bad, &err), ST_EIO);
    ck_assert_int_eq(count_entries(dir), 2); /* out.json and sub, no *.tmp.* */
    ck_assert_int_eq(count_entries(bad), 0);
    json_decref(v);
    rm_dir(dir);
}
END_TEST

START_TEST(json_hash) {
    json_t *a = json_loads("{\"a\": 1, \"b\": [true, null]}", 0, NULL);
    json_t *b = json_loads("{\"b\": [true, null], \"a\": 1}", 0, NULL);
    json_t *c = json_loads("{\"a\": 2, \"b\": [true, null]}", 0, NULL);
    json_t *e = json_object();
    char ha[17], hb[17], hc[17], he[17];

    st__json_hash(a, ha);
    st__json_hash(b, hb);
    st__json_hash(c, hc);
    st__json_hash(e, he);
    /* FNV-1a 64 of the compact sorted dump, computed independently */
    ck_assert_str_eq(ha, "595cf28929e773ea");
    ck_assert_str_eq(hb, ha);
    ck_assert_str_ne(hc, ha);
    ck_assert_str_eq(he, "08f44b07b5901a25");
    ck_assert_uint_eq(strlen(ha), 16);
    json_decref(a);
    json_decref(b);
    json_decref(c);
    json_decref(e);
}
END_TEST

START_TEST(json_getters) {
    json_t *o = json_loads("{\"i\": 7, \"r\": 1.5, \"w\": 2.0, \"t\": true, \"s\": \"x\", \"n\": null, "
                           "\"big\": 1000000000000}",
                           0, NULL);
    st_error err;
    int64_t x = -99;
    double d = -99;
    int b = -99;
    const char *s = NULL;

    ck_assert_ptr_nonnull(o);
    st_error_clear(&err);
    /* absent: 0 and out untouched */
    ck_assert_int_eq(st__json_get_int(o, "nope", 0, 10, &x, "f.json", NULL, &err), 0);
    ck_assert_int_eq(x, -99);
    ck_assert_int_eq(st__json_get_num(o, "nope", 0, 10, &d, "f.json", NULL, &err), 0);
    ck_assert_int_eq(st__json_get_bool(o, "nope", &b, "f.json", NULL, &err), 0);
    ck_assert_int_eq(st__json_get_str(o, "nope", &s, "f.json", NULL, &err), 0);
    ck_assert_int_eq(err.code, 0);
    /* integers */
    ck_assert_int_eq(st__json_get_int(o, "i", 0, 10, &x, "f.json", NULL, &err), 1);
    ck_assert_int_eq(x, 7);
    ck_assert_int_eq(st__json_get_int(o, "w", 0, 10, &x, "f.json", NULL, &err), 1); /* integral real */
    ck_assert_int_eq(x, 2);
    x = -99;
    ck_assert_int_eq(st__json_get_int(o, "r", 0, 10, &x, "f.json", "outer", &err), ST_EINVAL);
    ck_assert_str_eq(err.key, "outer.r");
    ck_assert_str_eq(err.file, "f.json");
    ck_assert_int_eq(x, -99);
    ck_assert_int_eq(st__json_get_int(o, "t", 0, 10, &x, "f.json", "", &err), ST_EINVAL);
    ck_assert_str_eq(err.key, "t");
    ck_assert_int_eq(st__json_get_int(o, "s", 0, 10, &x, "f.json", NULL, &err), ST_EINVAL);
    ck_assert_int_eq(st__json_get_int(o, "n", 0, 10, &x, "f.json", NULL, &err), ST_EINVAL);
    ck_assert_int_eq(st__json_get_int(o, "i", 8, 10, &x, "f.json", NULL, &err), ST_EINVAL);
    ck_assert_ptr_nonnull(strstr(err.text, "8..10"));
    ck_assert_int_eq(st__json_get_int(o, "big", 1, 100000, &x, "f.json", NULL, &err), ST_EINVAL);
    ck_assert_ptr_nonnull(strstr(err.text, "1000000000000"));
    ck_assert_int_eq(x, -99);
    /* numbers accept integers, not booleans or strings */
    ck_assert_int_eq(st__json_get_num(o, "i", 0, 10, &d, "f.json", NULL, &err), 1);
    ck_assert_double_eq(d, 7);
    ck_assert_int_eq(st__json_get_num(o, "r", 0, 10, &d, "f.json", NULL, &err), 1);
    ck_assert_double_eq(d, 1.5);
    ck_assert_int_eq(st__json_get_num(o, "r", 2, 10, &d, "f.json", NULL, &err), ST_EINVAL);
    ck_assert_int_eq(st__json_get_num(o, "t", 0, 10, &d, "f.json", "a.b", &err), ST_EINVAL);
    ck_assert_str_eq(err.key, "a.b.t");
    ck_assert_ptr_nonnull(strstr(err.text, "expected a number"));
    ck_assert_int_eq(st__json_get_num(o, "s", 0, 10, &d, "f.json", NULL, &err), ST_EINVAL);
    /* booleans and strings */
    ck_assert_int_eq(st__json_get_bool(o, "t", &b, "f.json", NULL, &err), 1);
    ck_assert_int_eq(b, 1);
    ck_assert_int_eq(st__json_get_bool(o, "i", &b, "f.json", NULL, &err), ST_EINVAL);
    ck_assert_str_eq(err.key, "i");
    ck_assert_int_eq(st__json_get_str(o, "s", &s, "f.json", NULL, &err), 1);
    ck_assert_str_eq(s, "x");
    ck_assert_int_eq(st__json_get_str(o, "i", &s, "f.json", NULL, &err), ST_EINVAL);
    json_decref(o);
}
END_TEST

START_TEST(json_check_keys) {
    static const char *const allowed[] = {"a", "b", NULL};
    json_t *ok = json_loads("{\"a\": 1, \"b\": 2}", 0, NULL);
    json_t *bad = json_loads("{\"a\": 1, \"c\": 2}", 0, NULL);
    json_t *arr = json_loads("[1]", 0, NULL);
    st_error err;

    st_error_clear(&err);
    ck_assert_int_eq(st__json_check_keys(ok, allowed, "f.json", NULL, &err), 0);
    ck_assert_int_eq(st__json_check_keys(bad, allowed, "f.json", NULL, &err), ST_EINVAL);
    ck_assert_str_eq(err.key, "c");
    ck_assert_int_eq(st__json_check_keys(bad, allowed, "f.json", "x.y", &err), ST_EINVAL);
    ck_assert_str_eq(err.key, "x.y.c");
    ck_assert_int_eq(st__json_check_keys(arr, allowed, "f.json", "x", &err), ST_EINVAL);
    ck_assert_str_eq(err.key, "x");
    json_decref(ok);
    json_decref(bad);
    json_decref(arr);
}
END_TEST

/* ------------------------------------------------------------ bad input */

typedef enum { K_MODEL, K_CLUSTER, K_PLAN } kind;

static int load_any(kind k, const char *path, st_error *err) {
    st_model m;
    st_cluster c;
    st_plan *p;
    int rc;
    switch (k) {
    case K_MODEL: return st_model_load(path, &m, err);
    case K_CLUSTER: return st_cluster_load(path, &c, err);
    case K_PLAN:
        p = malloc(sizeof *p);
        ck_assert_ptr_nonnull(p);
        st_plan_defaults(p);
        rc = st_plan_load(path, p, err);
        free(p);
        return rc;
    }
    return ST_EINTERNAL;
}

/* One file per kind of bad input: the loader must give this code, this exact key and (for syntax
 * errors) Jansson's line and column (the column is where the offending token ends). */
static const struct bad_case {
    kind k;
    const char *file;
    int code;
    const char *key;
    int line, column;
} bad_cases[] = {
    /* missing files */
    {K_MODEL, "invalid/no-such-file.json", ST_EIO, "", 0, 0},
    {K_CLUSTER, "invalid/no-such-file.json", ST_EIO, "", 0, 0},
    {K_PLAN, "invalid/no-such-file.json", ST_EIO, "", 0, 0},
    {K_MODEL, "invalid", ST_EIO, "", 0, 0}, /* a directory */
    /* malformed JSON */
    {K_MODEL, "invalid/model_malformed.json", ST_EINVAL, "", 4, 10},
    {K_MODEL, "invalid/model_duplicate_key.json", ST_EINVAL, "", 4, 10},
    {K_MODEL, "invalid/model_empty.json", ST_EINVAL, "", 1, 0},
    {K_CLUSTER, "invalid/cluster_malformed.json", ST_EINVAL, "", 5, 1},
    {K_PLAN, "invalid/plan_malformed.json", ST_EINVAL, "", 4, 13},
    /* not an object */
    {K_MODEL, "invalid/model_not_object.json", ST_EINVAL, "", 0, 0},
    {K_CLUSTER, "invalid/cluster_not_object.json", ST_EINVAL, "", 0, 0},
    {K_PLAN, "invalid/plan_not_object.json", ST_EINVAL, "", 0, 0},
    /* model: wrong type, unknown key, zero, negative, absurd, missing, bad value */
    {K_MODEL, "invalid/model_wrong_type.json", ST_EINVAL, "hidden", 0, 0},
    {K_MODEL, "invalid/model_fractional.json", ST_EINVAL, "hidden", 0, 0},
    {K_MODEL, "invalid/model_bool_as_int.json", ST_EINVAL, "layers", 0, 0},
    {K_MODEL, "invalid/model_bool_wrong.json", ST_EINVAL, "bias", 0, 0},
    {K_MODEL, "invalid/model_name_type.json", ST_EINVAL, "name", 0, 0},
    {K_MODEL, "invalid/model_long_name.json", ST_EINVAL, "name", 0, 0},
    {K_MODEL, "invalid/model_unknown_key.json", ST_EINVAL, "hiden", 0, 0},
    {K_MODEL, "invalid/model_zero_layers.json", ST_EINVAL, "layers", 0, 0},
    {K_MODEL, "invalid/model_negative_heads.json", ST_EINVAL, "heads", 0, 0},
    {K_MODEL, "invalid/model_absurd_layers.json", ST_EINVAL, "layers", 0, 0},
    {K_MODEL, "invalid/model_absurd_experts.json", ST_EINVAL, "experts", 0, 0},
    {K_MODEL, "invalid/model_missing_vocab.json", ST_EINVAL, "vocab", 0, 0},
    {K_MODEL, "invalid/model_bad_enum.json", ST_EINVAL, "activation", 0, 0},
    {K_MODEL, "invalid/model_kv_heads.json", ST_EINVAL, "kv_heads", 0, 0}, /* st_model_finalize */
    /* HuggingFace */
    {K_MODEL, "invalid/hf_wrong_type.json", ST_EINVAL, "hidden_size", 0, 0},
    {K_MODEL, "invalid/hf_missing_key.json", ST_EINVAL, "num_attention_heads", 0, 0},
    {K_MODEL, "invalid/hf_unsupported.json", ST_EINVAL, "num_kv_shared_layers", 0, 0},
    {K_MODEL, "invalid/hf_dsa_no_topk.json", ST_EINVAL, "index_topk", 0, 0},
    {K_MODEL, "invalid/hf_dsa_no_mla.json", ST_EINVAL, "index_topk", 0, 0},
    {K_MODEL, "invalid/hf_unsupported_arch.json", ST_EINVAL, "num_attention_heads", 0, 0},
    {K_MODEL, "invalid/hf_absurd_layers.json", ST_EINVAL, "num_hidden_layers", 0, 0},
    {K_MODEL, "invalid/hf_zero_heads.json", ST_EINVAL, "num_attention_heads", 0, 0},
    {K_MODEL, "invalid/hf_rope_scaling_type.json", ST_EINVAL, "rope_scaling", 0, 0},
    {K_MODEL, "invalid/hf_rope_original_type.json", ST_EINVAL, "rope_scaling.original_max_position_embeddings", 0,
     0},
    {K_MODEL, "invalid/hf_bad_act.json", ST_EINVAL, "hidden_act", 0, 0},
    {K_MODEL, "invalid/hf_tie_type.json", ST_EINVAL, "tie_word_embeddings", 0, 0},
    {K_MODEL, "invalid/hf_mixtral_no_experts.json", ST_EINVAL, "num_local_experts", 0, 0},
    /* cluster */
    {K_CLUSTER, "invalid/cluster_unknown_top.json", ST_EINVAL, "gpus", 0, 0},
    {K_CLUSTER, "invalid/cluster_unknown_nested.json", ST_EINVAL, "inter_node.nic_gbps", 0, 0},
    {K_CLUSTER, "invalid/cluster_unknown_deep.json", ST_EINVAL, "gpu.peak_tflops.fp4", 0, 0},
    {K_CLUSTER, "invalid/cluster_wrong_type.json", ST_EINVAL, "inter_node.nic_gbit_per_s", 0, 0},
    {K_CLUSTER, "invalid/cluster_intra_not_object.json", ST_EINVAL, "intra_node", 0, 0},
    {K_CLUSTER, "invalid/cluster_gpu_wrong_type.json", ST_EINVAL, "gpu", 0, 0},
    {K_CLUSTER, "invalid/cluster_zero_bw.json", ST_EINVAL, "intra_node.bandwidth_gb_per_s", 0, 0},
    {K_CLUSTER, "invalid/cluster_zero_gpus_per_node.json", ST_EINVAL, "gpus_per_node", 0, 0},
    {K_CLUSTER, "invalid/cluster_negative_latency.json", ST_EINVAL, "inter_node.latency_us", 0, 0},
    {K_CLUSTER, "invalid/cluster_negative_memory.json", ST_EINVAL, "gpu.memory_gib", 0, 0},
    {K_CLUSTER, "invalid/cluster_absurd_nodes.json", ST_EINVAL, "nodes", 0, 0},
    {K_CLUSTER, "invalid/cluster_absurd_total.json", ST_EINVAL, "nodes", 0, 0},
    {K_CLUSTER, "invalid/cluster_absurd_bw.json", ST_EINVAL, "intra_node.bandwidth_gb_per_s", 0, 0},
    {K_CLUSTER, "invalid/cluster_missing_gpu.json", ST_EINVAL, "gpu", 0, 0},
    {K_CLUSTER, "invalid/cluster_missing_nic.json", ST_EINVAL, "inter_node.nic_gbit_per_s", 0, 0},
    {K_CLUSTER, "invalid/cluster_missing_intra.json", ST_EINVAL, "intra_node.bandwidth_gb_per_s", 0, 0},
    {K_CLUSTER, "invalid/cluster_missing_gpu_memory.json", ST_EINVAL, "gpu.memory_gib", 0, 0},
    {K_CLUSTER, "invalid/cluster_unknown_gpu.json", ST_EINVAL, "gpu", 0, 0},
    {K_CLUSTER, "invalid/cluster_framework_zero.json", ST_EINVAL, "framework.reserved_gib", 0, 0},
    {K_CLUSTER, "invalid/cluster_launch_zero.json", ST_EINVAL, "framework.launch_overhead_us", 0, 0},
    {K_CLUSTER, "invalid/cluster_gemm_half_dim.json", ST_EINVAL, "gpu.gemm_half_dim", 0, 0},
    {K_CLUSTER, "invalid/cluster_framework_big.json", ST_EINVAL, "framework.reserved_gib", 0, 0},
    {K_CLUSTER, "invalid/cluster_framework_unknown.json", ST_EINVAL, "framework.reserved_gb", 0, 0},
    {K_CLUSTER, "invalid/cluster_no_16bit.json", ST_EINVAL, "gpu.peak_tflops.bf16", 0, 0},
    {K_CLUSTER, "invalid/cluster_gemm_efficiency.json", ST_EINVAL, "gpu.gemm_efficiency", 0, 0},
    {K_CLUSTER, "invalid/cluster_gemm_efficiency_fp8.json", ST_EINVAL, "gpu.gemm_efficiency_fp8", 0, 0},
    /* a subnormal efficiency made every time infinite and printed NaN with exit 0 */
    {K_CLUSTER, "invalid/cluster_gemm_efficiency_subnormal.json", ST_EINVAL, "gpu.gemm_efficiency", 0, 0},
    {K_CLUSTER, "invalid/cluster_gemm_efficiency_fp8_low.json", ST_EINVAL, "gpu.gemm_efficiency_fp8", 0, 0},
    {K_CLUSTER, "invalid/cluster_nics_zero_multinode.json", ST_EINVAL, "inter_node.nics_per_node", 0, 0},
    {K_CLUSTER, "invalid/cluster_nics_per_gpu_zero_multinode.json", ST_EINVAL, "inter_node.nics_per_gpu", 0, 0},
    {K_CLUSTER, "invalid/cluster_oversubscription.json", ST_EINVAL, "inter_node.oversubscription", 0, 0},
    {K_CLUSTER, "invalid/cluster_tier_leaf_not_dividing.json", ST_EINVAL, "inter_node.leaf.nodes", 0, 0},
    {K_CLUSTER, "invalid/cluster_tier_leaf_no_nodes.json", ST_EINVAL, "inter_node.leaf.nodes", 0, 0},
    {K_CLUSTER, "invalid/cluster_tier_spine_not_multiple.json", ST_EINVAL, "inter_node.spine.nodes", 0, 0},
    {K_CLUSTER, "invalid/cluster_tier_spine_without_leaf.json", ST_EINVAL, "inter_node.spine", 0, 0},
    {K_CLUSTER, "invalid/cluster_tier_oversubscription.json", ST_EINVAL, "inter_node.leaf.oversubscription", 0, 0},
    {K_CLUSTER, "invalid/cluster_tier_flat_oversubscription.json", ST_EINVAL, "inter_node.oversubscription", 0, 0},
    {K_CLUSTER, "invalid/cluster_nics_both.json", ST_EINVAL, "inter_node.nics_per_gpu", 0, 0},
    {K_CLUSTER, "invalid/cluster_nics_per_gpu_fraction.json", ST_EINVAL, "inter_node.nics_per_gpu", 0, 0},
    {K_CLUSTER, "invalid/cluster_rail_type.json", ST_EINVAL, "inter_node.rail_optimized", 0, 0},
    {K_CLUSTER, "invalid/cluster_scale_up_too_big.json", ST_EINVAL, "scale_up.gpus", 0, 0},
    {K_CLUSTER, "invalid/cluster_scale_up_not_dividing.json", ST_EINVAL, "scale_up.gpus", 0, 0},
    {K_CLUSTER, "invalid/cluster_scale_up_fabric.json", ST_EINVAL, "scale_up.fabric", 0, 0},
    {K_CLUSTER, "invalid/cluster_scale_up_bandwidth.json", ST_EINVAL, "scale_up.bandwidth_gb_per_s", 0, 0},
    {K_CLUSTER, "invalid/cluster_mig_oversubscribed.json", ST_EINVAL, "mig.per_gpu", 0, 0},
    {K_CLUSTER, "invalid/cluster_mig_per_gpu_range.json", ST_EINVAL, "mig.per_gpu", 0, 0},
    {K_CLUSTER, "invalid/cluster_mig_bad_profile.json", ST_EINVAL, "mig.profile", 0, 0},
    {K_CLUSTER, "invalid/cluster_mig_no_profiles.json", ST_EINVAL, "mig.profile", 0, 0},
    {K_CLUSTER, "invalid/cluster_mig_missing_profile.json", ST_EINVAL, "mig.profile", 0, 0},
    {K_CLUSTER, "invalid/cluster_mig_unknown_key.json", ST_EINVAL, "mig.slices", 0, 0},
    {K_CLUSTER, "invalid/cluster_scale_up_no_gpus.json", ST_EINVAL, "scale_up.gpus", 0, 0},
    /* plan */
    {K_PLAN, "invalid/plan_unknown_key.json", ST_EINVAL, "tensor_parallel", 0, 0},
    {K_PLAN, "invalid/plan_format.json", ST_EINVAL, "format", 0, 0},
    {K_PLAN, "invalid/plan_version.json", ST_EINVAL, "version", 0, 0},
    {K_PLAN, "invalid/plan_gpus_mismatch.json", ST_EINVAL, "gpus", 0, 0},
    {K_PLAN, "invalid/plan_tp_zero.json", ST_EINVAL, "tp", 0, 0},
    {K_PLAN, "invalid/plan_attention.json", ST_EINVAL, "attention", 0, 0},
    {K_PLAN, "invalid/plan_tp_fraction.json", ST_EINVAL, "tp", 0, 0},
    {K_PLAN, "invalid/plan_pp_string.json", ST_EINVAL, "pp", 0, 0},
    {K_PLAN, "invalid/plan_absurd_gbs.json", ST_EINVAL, "gbs", 0, 0},
    {K_PLAN, "invalid/plan_negative_seed.json", ST_EINVAL, "seed", 0, 0},
    {K_PLAN, "invalid/plan_bad_schedule.json", ST_EINVAL, "schedule", 0, 0},
    {K_PLAN, "invalid/plan_bad_dtype.json", ST_EINVAL, "dtype", 0, 0},
    {K_PLAN, "invalid/plan_zero4.json", ST_EINVAL, "zero", 0, 0},
    {K_PLAN, "invalid/plan_grad_bytes.json", ST_EINVAL, "grad_bytes", 0, 0},
    {K_PLAN, "invalid/plan_sp_two.json", ST_EINVAL, "sp", 0, 0},
    {K_PLAN, "invalid/plan_stage_zero.json", ST_EINVAL, "stage_layers[1]", 0, 0},
    {K_PLAN, "invalid/plan_stage_type.json", ST_EINVAL, "stage_layers", 0, 0},
    {K_PLAN, "invalid/plan_stage_empty.json", ST_EINVAL, "stage_layers", 0, 0},
    {K_PLAN, "invalid/plan_model_type.json", ST_EINVAL, "model", 0, 0},
};

START_TEST(bad_input) {
    const struct bad_case *c = &bad_cases[_i];
    char path[512], line[1024];
    st_error err;
    int rc;

    snprintf(path, sizeof path, DATA("%s"), c->file);
    st_error_clear(&err);
    rc = load_any(c->k, path, &err);
    ck_assert_msg(rc == c->code, "%s: code %d, want %d (%s)", c->file, rc, c->code, err.text);
    ck_assert_int_eq(err.code, c->code);
    ck_assert_msg(strcmp(err.key, c->key) == 0, "%s: key '%s', want '%s' (%s)", c->file, err.key, c->key, err.text);
    ck_assert_str_eq(err.file, path);
    ck_assert_int_eq(err.line, c->line);
    ck_assert_int_eq(err.column, c->column);
    ck_assert_msg(err.text[0] != '\0', "%s: no message", c->file);
    /* the one-line message names the file and the key */
    st_error_format(&err, line, sizeof line);
    ck_assert_ptr_nonnull(strstr(line, path));
    if (c->key[0]) ck_assert_ptr_nonnull(strstr(line, c->key));
    ck_assert_ptr_null(strchr(line, '\n'));
    if (strstr(c->file, "no-such")) ck_assert_ptr_nonnull(strstr(err.text, strerror(ENOENT)));
}
END_TEST

/* The same files as objects inside another file (st__model_from_json, st__cluster_from_json, as a
 * validation bundle holds them): the same code, the key under the object's path, the file named.
 * A HuggingFace config is refused as a whole there. Syntax errors and missing files are the outer
 * file's, not the object's, and plans have no such entry. */
START_TEST(bad_input_nested) {
    const struct bad_case *c = &bad_cases[_i];
    static const char prefix[] = "outer[2].obj";
    char path[512], want[256];
    json_t *root = NULL;
    st_error err;
    st_model m;
    st_cluster cl;
    int rc, hf = strstr(c->file, "/hf_") != NULL;

    if (c->k == K_PLAN || c->code == ST_EIO || c->line > 0) return;
    snprintf(path, sizeof path, DATA("%s"), c->file);
    st_error_clear(&err);
    ck_assert_int_eq(st__json_load_file(path, &root, &err), 0);
    rc = c->k == K_MODEL ? st__model_from_json(root, path, prefix, "fallback", &m, &err)
                         : st__cluster_from_json(root, path, prefix, "fallback", &cl, &err);
    json_decref(root);
    ck_assert_msg(rc == (hf ? ST_EINVAL : c->code), "%s: code %d (%s)", c->file, rc, err.text);
    if (hf || !c->key[0])
        snprintf(want, sizeof want, "%s", prefix);
    else
        snprintf(want, sizeof want, "%s.%s", prefix, c->key);
    ck_assert_msg(strcmp(err.key, want) == 0, "%s: key '%s', want '%s' (%s)", c->file, err.key, want, err.text);
    ck_assert_str_eq(err.file, path);
}
END_TEST

/* A valid file's object gives what the file gives (canonical JSON equal); without a "name" the
 * object is called by the fallback (a bundle's key) where the file is called after itself. */
START_TEST(nested_equals_file) {
    static const char *const files[] = {"valid/model_gpt3.json", "valid/model_minimal.json",
                                        "valid/model_all_keys.json", "valid/cluster_selene.json",
                                        "valid/cluster_gpu_object.json", "valid/cluster_single_node.json",
                                        "valid/cluster_nvl72.json"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char path[512];
        json_t *root = NULL, *ja, *jb;
        st_error err;
        int model = strstr(files[i], "model_") != NULL, named;
        st_model ma, mb;
        st_cluster ca, cb;

        snprintf(path, sizeof path, DATA("%s"), files[i]);
        st_error_clear(&err);
        ck_assert_int_eq(st__json_load_file(path, &root, &err), 0);
        named = json_object_get(root, "name") != NULL;
        if (model) {
            ck_assert_int_eq(st_model_load(path, &ma, &err), 0);
            ck_assert_int_eq(st__model_from_json(root, path, "models.k", "the-key", &mb, &err), 0);
            if (!named) ck_assert_str_eq(mb.name, "the-key");
            snprintf(mb.name, sizeof mb.name, "%s", ma.name);
            ja = st__model_to_json(&ma);
            jb = st__model_to_json(&mb);
        } else {
            ck_assert_int_eq(st_cluster_load(path, &ca, &err), 0);
            ck_assert_int_eq(st__cluster_from_json(root, path, "clusters.k", "the-key", &cb, &err), 0);
            if (!named) ck_assert_str_eq(cb.name, "the-key");
            snprintf(cb.name, sizeof cb.name, "%s", ca.name);
            ja = st__cluster_to_json(&ca);
            jb = st__cluster_to_json(&cb);
        }
        ck_assert_msg(json_equal(ja, jb), "%s: the object differs from the file", files[i]);
        json_decref(ja);
        json_decref(jb);
        json_decref(root);
    }
}
END_TEST

/* Every data file through every loader, and every prefix of some files: each call returns 0 or a
 * negative code with a message, and never crashes. */
START_TEST(never_crash) {
    static const char *const dirs[] = {DATA("valid"), DATA("invalid"), DATA("hf")};
    static const char *const prefixed[] = {DATA("valid/plan_full.json"), DATA("valid/cluster_gpu_object.json"),
                                           DATA("valid/model_all_keys.json"), DATA("hf/Meta-Llama-3.1-8B.json")};
    char path[1024], dir[256], cut[300];
    int files = 0;

    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
        DIR *d = opendir(dirs[i]);
        struct dirent *e;
        ck_assert_ptr_nonnull(d);
        while ((e = readdir(d))) {
            if (e->d_name[0] == '.') continue;
            snprintf(path, sizeof path, "%s/%s", dirs[i], e->d_name);
            for (int k = K_MODEL; k <= K_PLAN; k++) {
                st_error err;
                int rc;
                st_error_clear(&err);
                rc = load_any((kind)k, path, &err);
                ck_assert_int_le(rc, 0);
                if (rc < 0) ck_assert_msg(err.text[0] != '\0', "%s: empty message", path);
            }
            files++;
        }
        closedir(d);
    }
    ck_assert_int_gt(files, 80);

    make_tmpdir(dir, sizeof dir);
    snprintf(cut, sizeof cut, "%s/cut.json", dir);
    for (size_t i = 0; i < sizeof prefixed / sizeof prefixed[0]; i++) {
        FILE *f = fopen(prefixed[i], "rb");
        char text[4096];
        size_t n;
        ck_assert_ptr_nonnull(f);
        n = fread(text, 1, sizeof text, f);
        fclose(f);
        for (size_t len = 0; len + 2 < n; len++) { /* all but "}\n": never a whole object */
            st_error err;
            f = fopen(cut, "wb");
            ck_assert_ptr_nonnull(f);
            fwrite(text, 1, len, f);
            fclose(f);
            for (int k = K_MODEL; k <= K_PLAN; k++) {
                st_error_clear(&err);
                ck_assert_int_eq(load_any((kind)k, cut, &err), ST_EINVAL);
                ck_assert_int_gt(err.line, 0);
            }
        }
    }
    rm_dir(dir);
}
END_TEST

Suite *suite_io(void) {
    Suite *s = suite_create("io");
    TCase *tc;

    tc = tcase_create("model");
    tcase_add_test(tc, model_strata_gpt3);
    tcase_add_test(tc, model_strata_minimal_defaults);
    tcase_add_test(tc, model_strata_all_keys);
    tcase_add_loop_test(tc, model_hf, 0, (int)(sizeof hf_cases / sizeof hf_cases[0]));
    tcase_add_test(tc, model_hf_long_name);
    tcase_add_test(tc, model_resolve);
    tcase_add_test(tc, model_json_round_trip);
    suite_add_tcase(s, tc);

    tc = tcase_create("cluster");
    tcase_add_test(tc, cluster_preset_gpu);
    tcase_add_test(tc, cluster_gpu_object);
    tcase_add_test(tc, cluster_single_node_defaults);
    tcase_add_test(tc, cluster_size);
    tcase_add_test(tc, json_name_from_path);
    tcase_add_test(tc, cluster_resolve_resize);
    tcase_add_test(tc, cluster_tiers_load);
    tcase_add_test(tc, cluster_json_round_trip);
    tcase_add_test(tc, cluster_framework_reserved);
    tcase_add_test(tc, cluster_kernel_prices);
    tcase_add_test(tc, cluster_blockscaled_peaks);
    suite_add_tcase(s, tc);

    tc = tcase_create("plan");
    tcase_add_test(tc, plan_load_full);
    tcase_add_test(tc, plan_load_minimal);
    tcase_add_test(tc, plan_save_load_round_trip);
    tcase_add_test(tc, plan_resolve);
    suite_add_tcase(s, tc);

    tc = tcase_create("json");
    tcase_add_test(tc, json_write_atomic);
    tcase_add_test(tc, json_hash);
    tcase_add_test(tc, json_getters);
    tcase_add_test(tc, json_check_keys);
    suite_add_tcase(s, tc);

    tc = tcase_create("bad_input");
    tcase_add_loop_test(tc, bad_input, 0, (int)(sizeof bad_cases / sizeof bad_cases[0]));
    tcase_add_loop_test(tc, bad_input_nested, 0, (int)(sizeof bad_cases / sizeof bad_cases[0]));
    tcase_add_test(tc, nested_equals_file);
    tcase_add_test(tc, never_crash);
    tcase_set_timeout(tc, 60);
    suite_add_tcase(s, tc);
    return s;
}
