/* test_structure.c: issue 15's model structure (block kinds, MoE shapes, latent attention, sliding
 * windows, Mamba-2, MTP) against closed forms, the strata JSON keys that carry it, and every
 * HuggingFace config of ../shared/ecosystem/hf against MANIFEST.tsv's exact counts.
 *
 * Forward FLOPs per token, the formula the ecosystem test holds each model to (1%):
 *   2 (active - embedding lookup tables) + 2 V h (the output layer)
 *   + per attention block 2 heads (dqk + dv) keys, keys = s / 2 (causal) or w - w^2 / (2 s) (a window w)
 *     (each block's own heads and head size: Gemma 4's global blocks); with sparse attention keys =
 *     k - k^2 / (2 s) for the index_topk k, plus the indexer's logits 2 index_heads index_head_dim s / 2
 *   + per Mamba-2 block 2 (G Q N + H Q P + 2 H N P) (the SSD scan, Q = 256)
 *   + per Gated DeltaNet block 2 Hv (3 C dk + 2 C dv + 3 dk dv) (the chunked delta rule, C = 64)
 * counted over the GEMMs, batched GEMMs and fused attention of the operator graph (tp = 1). */
#include "profiler/profiler.h"
#include "src/io/jsonutil.h"
#include "src/strata.h"
#include "suites.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef SRCDIR
#define SRCDIR "."
#endif

static st_model preset(const char *name) {
    st_model m;
    ck_assert_msg(st_model_preset(name, &m) == 0, "preset %s", name);
    return m;
}

static const st_op *find(const st_op *ops, int n, const char *name) {
    for (int i = 0; i < n; i++)
        if (!strcmp(ops[i].name, name)) return &ops[i];
    return NULL;
}

static st_shard shard1(int64_t seq) {
    st_shard s = {.tp = 1, .cp = 1, .ep = 1, .mbs = 1, .seq = seq, .dtype = ST_DT_BF16, .grad_bytes = 4};
    return s;
}

/* DeepSeek-V3: 3 dense blocks then 58 MoE; Nemotron-H: its pattern's three letters */
START_TEST(test_kinds) {
    st_model m = preset("deepseek-v3");
    int64_t rep[ST_MAX_KINDS], cnt[ST_MAX_KINDS];
    ck_assert_int_eq(st_model_kinds(&m, rep), 2);
    ck_assert_int_eq(rep[0], 0);
    ck_assert_int_eq(rep[1], 3);
    st_model_count_kinds(&m, 0, m.layers, cnt);
    ck_assert_int_eq(cnt[0], 3);
    ck_assert_int_eq(cnt[1], 58);
    st_model_count_kinds(&m, 2, 4, cnt);
    ck_assert_int_eq(cnt[0], 1);
    ck_assert_int_eq(cnt[1], 3);
    m = preset("nemotron-h-56b");
    ck_assert_int_eq(st_model_kinds(&m, rep), 3);
    st_model_count_kinds(&m, 0, m.layers, cnt);
    ck_assert_int_eq(cnt[0], 54); /* M */
    ck_assert_int_eq(cnt[1], 54); /* - */
    ck_assert_int_eq(cnt[2], 10); /* * */
    st_layer L;
    st_model_layer(&m, 0, &L);
    ck_assert_int_eq(L.mixer, ST_MIX_MAMBA);
    ck_assert_int_eq(L.mlp, ST_MLP_NONE);
    st_model_layer(&m, 1, &L);
    ck_assert_int_eq(L.mixer, ST_MIX_NONE);
    ck_assert_int_eq(L.mlp, ST_MLP_DENSE);
    /* Gemma 3: every 6th block global; Llama 4 Maverick: MoE on odd blocks, global every 4th */
    m = preset("gemma3-27b");
    st_model_layer(&m, 4, &L);
    ck_assert_int_eq(L.window, 1024);
    st_model_layer(&m, 5, &L);
    ck_assert_int_eq(L.window, 0);
    m = preset("llama4-maverick");
    ck_assert_int_eq(st_model_kinds(&m, rep), 3);
    ck_assert(!st_model_layer_is_moe(&m, 0) && st_model_layer_is_moe(&m, 1));
    int64_t dense, moe;
    st_model_block_kinds(&m, &dense, &moe);
    ck_assert_int_eq(dense, 0);
    ck_assert_int_eq(moe, 1);
}
END_TEST

/* st_model_count_kinds (closed forms where the kinds follow from moe_every) against a walk over the
 * blocks comparing st_model_layer with each kind's first block */
START_TEST(test_count_oracle) {
    const char *names[] = {"llama3-8b", "mixtral-8x7b", "deepseek-v3", "llama4-maverick", "gemma3-27b",
                           "nemotron-h-56b", "gpt-oss-120b"};
    for (size_t i = 0; i < sizeof names / sizeof names[0] + 2; i++) {
        st_model m = preset(i < 7 ? names[i] : "mixtral-8x7b");
        if (i >= 7) m.moe_every = i == 7 ? 2 : 3; /* Switch-style every other / third block */
        int64_t rep[ST_MAX_KINDS], got[ST_MAX_KINDS];
        int nk = st_model_kinds(&m, rep);
        for (int64_t first = 0; first < m.layers; first += 7) {
            int64_t n = first + 13 <= m.layers ? 13 : m.layers - first, want[ST_MAX_KINDS] = {0};
            for (int64_t l = first; l < first + n; l++) {
                st_layer a, b;
                st_model_layer(&m, l, &a);
                for (int k = 0; k < nk; k++) {
                    st_model_layer(&m, rep[k], &b);
                    if (!memcmp(&a, &b, sizeof a)) want[k]++;
                }
            }
            st_model_count_kinds(&m, first, n, got);
            for (int k = 0; k < ST_MAX_KINDS; k++)
                ck_assert_msg(got[k] == want[k], "%s moe_every %lld [%lld, +%lld) kind %d: %lld, walk %lld", m.name,
                              (long long)m.moe_every, (long long)first, (long long)n, k, (long long)got[k],
                              (long long)want[k]);
        }
    }
}
END_TEST

/* DeepSeek-V3's count in closed form: MLA, dense and MoE MLPs, untied embeddings; MTP apart */
START_TEST(test_params_deepseek) {
    st_model m = preset("deepseek-v3");
    double h = 7168, V = 129280, a = 128, ql = 1536, kvl = 512, dn = 128, dr = 64, dv = 128;
    double attn = h * ql + ql + ql * a * (dn + dr) + h * (kvl + dr) + kvl + kvl * a * (dn + dv) + a * dv * h;
    double dense = 3 * h * 18432, moe = h * 256 + 256 * 3 * h * 2048 + 3 * h * 2048;
    double want = 2 * V * h + h + 61 * (attn + 2 * h) + 3 * dense + 58 * moe;
    ck_assert_double_eq_tol(st_model_params(&m), want, want * 1e-12);
    double active = 2 * V * h + h + 61 * (attn + 2 * h) + 3 * dense + 58 * (h * 256 + 8 * 3 * h * 2048 + 3 * h * 2048);
    ck_assert_double_eq_tol(st_model_active_params(&m), active, active * 1e-12);
    /* one MTP module: two norms, the 2h -> h projection, an MoE block, its final norm */
    double mtp = 2 * h + 2 * h * h + attn + 2 * h + moe + h;
    ck_assert_double_eq_tol(st_model_mtp_params(&m), mtp, mtp * 1e-12);
    m.mtp_layers = 0;
    ck_assert_double_eq(st_model_mtp_params(&m), 0);
}
END_TEST

/* fused attention: latent heads at 2 pairs (dqk + dv); a window w at s w - w^2 / 2 pairs */
START_TEST(test_attention_flops) {
    st_op ops[ST_MAX_OPS];
    st_model m = preset("deepseek-v3");
    st_shard s = shard1(4096);
    int n = st_ops_layer(&m, &s, 5, ops, ST_MAX_OPS);
    const st_op *o = find(ops, n, "attention");
    ck_assert_ptr_nonnull(o);
    double S = 4096;
    ck_assert_double_eq_tol(o->fwd_flops, 2 * 128 * (S * S / 2) * (192 + 128), 1);
    ck_assert_ptr_nonnull(find(ops, n, "q_down"));
    ck_assert_ptr_nonnull(find(ops, n, "kv_up"));
    ck_assert_ptr_nonnull(find(ops, n, "shared_fc1"));
    m = preset("gemma3-27b");
    s = shard1(8192);
    S = 8192;
    double w = 1024, d = 128, a = 32;
    n = st_ops_layer(&m, &s, 0, ops, ST_MAX_OPS);
    o = find(ops, n, "attention");
    ck_assert_double_eq_tol(o->fwd_flops, 4 * a * (S * w - w * w / 2) * d, 1);
    ck_assert_ptr_nonnull(find(ops, n, "qk_norm"));
    n = st_ops_layer(&m, &s, 5, ops, ST_MAX_OPS); /* global */
    o = find(ops, n, "attention");
    ck_assert_double_eq_tol(o->fwd_flops, 4 * a * (S * S / 2) * d, 1);
    /* cp = 2 splits the windowed work in two */
    s.cp = 2;
    n = st_ops_layer(&m, &s, 0, ops, ST_MAX_OPS);
    o = find(ops, n, "attention");
    ck_assert_double_eq_tol(o->fwd_flops, 4 * a * (S * w - w * w / 2) * d / 2, 1);
}
END_TEST

/* Nemotron-H's Mamba-2 block: parameters in closed form, the SSD scan's FLOPs (Q = 256) */
START_TEST(test_mamba) {
    st_model m = preset("nemotron-h-56b");
    st_op ops[ST_MAX_OPS];
    st_shard s = shard1(8192);
    int n = st_ops_layer(&m, &s, 0, ops, ST_MAX_OPS);
    double h = 8192, H = 256, P = 64, N = 256, G = 8, di = H * P, conv = di + 2 * G * N, T = 8192;
    double want = h + h * (2 * di + 2 * G * N + H) + conv * 5 + 3 * H + di + di * h;
    double got = 0;
    for (int i = 0; i < n; i++) got += ops[i].params;
    ck_assert_double_eq_tol(got, want, 1e-3);
    const st_op *o = find(ops, n, "ssd_scan");
    ck_assert_ptr_nonnull(o);
    ck_assert_double_eq_tol(o->fwd_flops, 2 * (G * T * 256 * N + H * T * 256 * P + 2 * H * T * N * P), 1);
    ck_assert_ptr_null(find(ops, n, "fc1")); /* 'M' has no MLP */
    /* with tp = 8 the heads and groups split */
    s.tp = 8;
    n = st_ops_layer(&m, &s, 0, ops, ST_MAX_OPS);
    o = find(ops, n, "ssd_scan");
    ck_assert_double_eq_tol(o->fwd_flops, 2 * (G * T * 256 * N + H * T * 256 * P + 2 * H * T * N * P) / 8, 1);
    ck_assert_int_eq(find(ops, n, "out_proj")->fwd_coll, ST_COLL_ALLREDUCE);
}
END_TEST

/* the canonical JSON carries the model: read back, it has the same parameters and kinds */
static void roundtrip(const st_model *m) {
    st_model back;
    st_error err;
    json_t *o = st__model_to_json(m);
    ck_assert_int_eq(st__model_from_json(o, "x.json", NULL, NULL, &back, &err), 0);
    json_decref(o);
    ck_assert_double_eq(st_model_params(&back), st_model_params(m));
    ck_assert_str_eq(back.layer_pattern, m->layer_pattern);
    int64_t rep[ST_MAX_KINDS];
    ck_assert_int_eq(st_model_kinds(&back, rep), st_model_kinds(m, rep));
}

/* DeepSeek Sparse Attention on DeepSeek-V3's shape (GLM-5's indexer: 32 heads x 128, top-2048): the
 * main attention over k - k^2 / (2 s) keys a query, the indexer's logits over the causal half, its
 * parameters, replicated on the tp ranks, its keys all-gathered under cp */
START_TEST(test_sparse_attention) {
    st_model m = preset("deepseek-v3"), dense = m;
    m.index_heads = 32, m.index_head_dim = 128, m.index_topk = 2048;
    st_error err;
    ck_assert_int_eq(st_model_finalize(&m, NULL, &err), 0);
    st_op ops[ST_MAX_OPS];
    st_shard s = shard1(4096);
    double S = 4096, k = 2048, HI = 32, dI = 128, h = 7168;
    int n = st_ops_layer(&m, &s, 5, ops, ST_MAX_OPS);
    ck_assert_double_eq_tol(find(ops, n, "attention")->fwd_flops, 2 * 128 * (S * k - k * k / 2) * (192 + 128), 1);
    ck_assert_double_eq_tol(find(ops, n, "index_logits")->fwd_flops, 2 * HI * dI * S * S / 2, 1);
    ck_assert_double_eq_tol(find(ops, n, "index_q")->fwd_flops, 2 * S * 1536 * HI * dI, 1);
    ck_assert_double_eq_tol(find(ops, n, "index_topk")->saved_bytes, S * k * 4, 1e-6);
    double blocks = 61;
    ck_assert_double_eq_tol(st_model_params(&m) - st_model_params(&dense),
                            blocks * (1536 * HI * dI + h * dI + 2 * dI + h * HI), 1);
    s.tp = 8; /* replicated: the indexer's work is not divided */
    n = st_ops_layer(&m, &s, 5, ops, ST_MAX_OPS);
    ck_assert_double_eq_tol(find(ops, n, "index_q")->fwd_flops, 2 * S * 1536 * HI * dI, 1);
    ck_assert_int_eq(find(ops, n, "index_q")->splits, 0);
    s.tp = 1, s.cp = 2;
    n = st_ops_layer(&m, &s, 5, ops, ST_MAX_OPS);
    ck_assert_double_eq_tol(find(ops, n, "index_logits")->fwd_flops, 2 * HI * dI * S * S / 2 / 2, 1);
    ck_assert_int_eq(find(ops, n, "index_k_norm")->fwd_coll, ST_COLL_ALLGATHER);
    ck_assert_int_eq(find(ops, n, "index_k_norm")->coll_group, ST_GRP_CP);
    /* a top-k at or above the sequence is dense attention again */
    m.index_topk = 8192;
    s.cp = 1;
    n = st_ops_layer(&m, &s, 5, ops, ST_MAX_OPS);
    ck_assert_double_eq_tol(find(ops, n, "attention")->fwd_flops, 2 * 128 * (S * S / 2) * (192 + 128), 1);
    roundtrip(&m);
}
END_TEST

/* Qwen3.5-27B's blocks on qwen3-32b's width: three Gated DeltaNet blocks then one gated full attention;
 * the mixer's parameters (modeling_qwen3_next.py's shapes) and the chunked delta rule's FLOPs */
START_TEST(test_gated_deltanet) {
    st_model m = preset("qwen3-32b");
    ck_assert_int_eq(m.hidden, 5120);
    for (int64_t l = 0; l < m.layers; l++) m.layer_pattern[l] = l % 4 == 3 ? 'T' : 'G';
    m.layer_pattern[m.layers] = '\0';
    m.gdn_k_heads = 16, m.gdn_v_heads = 48, m.gdn_k_dim = 128, m.gdn_v_dim = 128, m.gdn_conv = 4;
    m.attn_out_gate = 1;
    st_error err;
    ck_assert_int_eq(st_model_finalize(&m, NULL, &err), 0);
    st_op ops[ST_MAX_OPS];
    st_shard s = shard1(4096);
    double h = 5120, Kd = 16 * 128, Vd = 48 * 128, T = 4096, Hv = 48, d = 128;
    int n = st_ops_layer(&m, &s, 0, ops, ST_MAX_OPS);
    ck_assert_ptr_null(find(ops, n, "attention"));
    ck_assert_double_eq(find(ops, n, "in_proj")->params, h * (2 * Kd + 2 * Vd + 2 * Hv));
    ck_assert_double_eq(find(ops, n, "conv1d")->params, (2 * Kd + Vd) * 4 + 2 * Hv);
    ck_assert_double_eq(find(ops, n, "gated_norm")->params, d);
    ck_assert_double_eq(find(ops, n, "out_proj")->params, Vd * h);
    double scan = 2 * T * Hv * (3 * 64 * d + 2 * 64 * d + 3 * d * d);
    ck_assert_double_eq_tol(find(ops, n, "gdn_scan")->fwd_flops, scan, 1);
    ck_assert_ptr_nonnull(find(ops, n, "fc1")); /* 'G' keeps its MLP */
    s.tp = 4;
    n = st_ops_layer(&m, &s, 0, ops, ST_MAX_OPS);
    ck_assert_double_eq_tol(find(ops, n, "gdn_scan")->fwd_flops, scan / 4, 1);
    ck_assert_int_eq(find(ops, n, "out_proj")->fwd_coll, ST_COLL_ALLREDUCE);
    /* the full-attention block: the query projection twice as wide (the output gate) */
    s.tp = 1;
    n = st_ops_layer(&m, &s, 3, ops, ST_MAX_OPS);
    ck_assert_double_eq(find(ops, n, "qkv")->n, 2 * 64 * 128 + 2 * 8 * 128);
    ck_assert_ptr_nonnull(find(ops, n, "out_gate"));
    ck_assert(st_model_tp_divides(&m, 8));
    roundtrip(&m);
    m.gdn_k_heads = 12; /* 48 value heads, 12 key heads: tp = 8 no longer divides */
    ck_assert(!st_model_tp_divides(&m, 8));
}
END_TEST

/* Gemma 4's global blocks on gemma3-27b's shape: their own head size and kv heads, keys as values */
START_TEST(test_global_heads) {
    st_model m = preset("gemma3-27b"), base = m;
    m.global_head_dim = 256, m.global_kv_heads = 2, m.global_k_eq_v = 1;
    st_error err;
    ck_assert_int_eq(st_model_finalize(&m, NULL, &err), 0);
    st_op ops[ST_MAX_OPS];
    st_shard s = shard1(8192);
    double S = 8192, a = 32, h = 5376;
    int n = st_ops_layer(&m, &s, 5, ops, ST_MAX_OPS);
    ck_assert_double_eq(find(ops, n, "qkv")->n, a * 256 + 2 * 256); /* q and k; no v */
    ck_assert_double_eq_tol(find(ops, n, "attention")->fwd_flops, 4 * a * (S * S / 2) * 256, 1);
    ck_assert_double_eq(find(ops, n, "proj")->params, a * 256 * h);
    n = st_ops_layer(&m, &s, 0, ops, ST_MAX_OPS); /* windowed: the model's heads */
    ck_assert_double_eq(find(ops, n, "qkv")->n, a * 128 + 2 * 16 * 128);
    int64_t rep[ST_MAX_KINDS];
    ck_assert_int_eq(st_model_kinds(&m, rep), st_model_kinds(&base, rep));
    ck_assert(st_model_tp_divides(&m, 2));
    ck_assert(!st_model_tp_divides(&m, 4));
    roundtrip(&m);
}
END_TEST

/* imbalance and capacity scale the routed experts' work on the busiest rank; shared experts do not */
START_TEST(test_moe_load) {
    st_model m = preset("deepseek-v3");
    st_op ops[ST_MAX_OPS];
    st_shard s = shard1(4096);
    int n = st_ops_layer(&m, &s, 3, ops, ST_MAX_OPS);
    double e1 = find(ops, n, "expert_fc1")->fwd_flops, sh = find(ops, n, "shared_fc1")->fwd_flops;
    ck_assert_double_eq_tol(e1, 2 * 4096.0 * 8 * 7168 * 2 * 2048, 1);
    m.moe_imbalance = 1.5;
    n = st_ops_layer(&m, &s, 3, ops, ST_MAX_OPS);
    ck_assert_double_eq_tol(find(ops, n, "expert_fc1")->fwd_flops, 1.5 * e1, 1);
    ck_assert_double_eq(find(ops, n, "shared_fc1")->fwd_flops, sh);
    m.capacity_factor = 1.25;
    n = st_ops_layer(&m, &s, 3, ops, ST_MAX_OPS);
    ck_assert_double_eq_tol(find(ops, n, "expert_fc1")->fwd_flops, 1.25 * e1, 1);
    /* MTP priced in the tail: the model's FLOPs grow by the module's */
    m = preset("deepseek-v3");
    double with = st_cost_model_flops(&m, 1, 4096);
    m.mtp_layers = 0;
    ck_assert_double_gt(with, st_cost_model_flops(&m, 1, 4096) * 1.01);
}
END_TEST

START_TEST(test_structure_rejects) {
    st_error err;
    st_model m = preset("nemotron-h-56b");
    m.ssm_state = 0;
    ck_assert_int_eq(st_model_finalize(&m, NULL, &err), ST_EINVAL);
    ck_assert_str_eq(err.key, "ssm_state");
    m = preset("nemotron-h-56b");
    m.layer_pattern[3] = 'x';
    ck_assert_int_eq(st_model_finalize(&m, NULL, &err), ST_EINVAL);
    ck_assert_str_eq(err.key, "layer_pattern");
    m = preset("nemotron-h-56b");
    m.layer_pattern[10] = '\0';
    ck_assert_int_eq(st_model_finalize(&m, NULL, &err), ST_EINVAL);
    m = preset("llama3-8b");
    m.moe_ffn = 1024;
    ck_assert_int_eq(st_model_finalize(&m, NULL, &err), ST_EINVAL);
    ck_assert_str_eq(err.key, "moe_ffn");
    m = preset("llama3-8b");
    m.qk_rope_dim = 64;
    ck_assert_int_eq(st_model_finalize(&m, NULL, &err), ST_EINVAL);
    ck_assert_str_eq(err.key, "kv_lora_rank");
    m = preset("llama3-8b"); /* nine distinct FFN sizes: more kinds than the cost layer prices */
    for (int i = 0; i < 9; i++) m.layer_ffn[i] = 1024 * (i + 1);
    ck_assert_int_eq(st_model_finalize(&m, NULL, &err), ST_EINVAL);
    m = preset("deepseek-v3");
    m.moe_imbalance = 0.5;
    ck_assert_int_eq(st_model_finalize(&m, NULL, &err), ST_EINVAL);
    ck_assert_str_eq(err.key, "moe_imbalance");
    m = preset("deepseek-v3"); /* 256 experts in 7 groups */
    m.router_groups = 7;
    ck_assert_int_eq(st_model_finalize(&m, NULL, &err), ST_EINVAL);
    ck_assert_str_eq(err.key, "router_groups");
    m = preset("deepseek-v3");
    m.router_group_topk = 9;
    ck_assert_int_eq(st_model_finalize(&m, NULL, &err), ST_EINVAL);
    ck_assert_str_eq(err.key, "router_group_topk");
    m = preset("deepseek-v3"); /* an indexer without its top-k */
    m.index_heads = 32, m.index_head_dim = 128;
    ck_assert_int_eq(st_model_finalize(&m, NULL, &err), ST_EINVAL);
    ck_assert_str_eq(err.key, "index_topk");
    m = preset("llama3-8b"); /* 'G' blocks without their shapes */
    memset(m.layer_pattern, 'G', (size_t)m.layers);
    ck_assert_int_eq(st_model_finalize(&m, NULL, &err), ST_EINVAL);
    ck_assert_str_eq(err.key, "gdn_k_heads");
    m = preset("llama3-8b"); /* global heads without windowed blocks */
    m.global_head_dim = 256;
    ck_assert_int_eq(st_model_finalize(&m, NULL, &err), ST_EINVAL);
    ck_assert_str_eq(err.key, "global_head_dim");
}
END_TEST

/* every new preset survives the canonical JSON: written, read back, equal */
START_TEST(test_json_roundtrip) {
    const char *names[] = {"deepseek-v3", "kimi-k2", "qwen3-235b-a22b", "gpt-oss-120b", "llama4-maverick",
                           "gemma3-27b", "nemotron-h-56b"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        st_model m = preset(names[i]), back;
        m.moe_imbalance = i == 0 ? 1.2 : m.moe_imbalance;
        m.layer_ffn[0] = i == 6 ? 4096 : 0;
        json_t *o = st__model_to_json(&m);
        st_error err;
        ck_assert_int_eq(st__model_from_json(o, "x.json", NULL, NULL, &back, &err), 0);
        json_decref(o);
        ck_assert_double_eq(st_model_params(&back), st_model_params(&m));
        ck_assert_str_eq(back.layer_pattern, m.layer_pattern);
        ck_assert_int_eq(back.layer_ffn[0], m.layer_ffn[0]);
        ck_assert_double_eq(back.moe_imbalance, m.moe_imbalance);
        ck_assert_int_eq(back.kv_lora_rank, m.kv_lora_rank);
        ck_assert_int_eq(back.window, m.window);
        ck_assert_int_eq(back.global_every, m.global_every);
        ck_assert_int_eq(back.attn_sinks, m.attn_sinks);
        ck_assert_double_eq(back.rope_theta, m.rope_theta);
        ck_assert_int_eq(back.router_groups, m.router_groups);
        ck_assert_int_eq(back.router_group_topk, m.router_group_topk);
    }
}
END_TEST

/* a file's first 1 MB as text (static buffer: valid until the next call) */
static const char *file_text(const char *path) {
    static char buf[1 << 20];
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    if (f) fclose(f);
    buf[n] = '\0';
    return buf;
}

/* forward FLOPs per token of the graph (file comment's formula) */
static double fwd_flops_per_token(const st_model *m, int64_t seq) {
    st_shard s = shard1(seq);
    s.attention = ST_ATTN_FLASH;
    st_op ops[ST_MAX_OPS];
    int64_t rep[ST_MAX_KINDS], cnt[ST_MAX_KINDS];
    int nk = st_model_kinds(m, rep);
    st_model_count_kinds(m, 0, m->layers, cnt);
    double f = 0;
    for (int k = 0; k < nk; k++) {
        int n = st_ops_layer(m, &s, rep[k], ops, ST_MAX_OPS);
        for (int i = 0; i < n; i++)
            if (ops[i].cls == ST_OPC_GEMM || ops[i].cls == ST_OPC_BGEMM || ops[i].cls == ST_OPC_ATTENTION)
                f += ops[i].fwd_flops * (double)cnt[k];
    }
    st_model u = *m;
    u.mtp_layers = 0;
    int n = st_ops_tail(&u, &s, ops, ST_MAX_OPS);
    for (int i = 0; i < n; i++)
        if (ops[i].cls == ST_OPC_GEMM) f += ops[i].fwd_flops;
    return f / (double)seq;
}

static double formula_per_token(const st_model *m, int64_t seq) {
    double h = (double)m->hidden, S = (double)seq, V = (double)m->vocab;
    double emb = V * h + (m->position == ST_POS_LEARNED ? S * h : 0);
    double f = 2 * (st_model_active_params(m) - emb) + (m->tied_embeddings ? 2 * V * h : 0);
    int mla = m->kv_lora_rank > 0;
    for (int64_t l = 0; l < m->layers; l++) {
        st_layer L;
        st_model_layer(m, l, &L);
        double dqk = mla ? (double)(m->qk_nope_dim + m->qk_rope_dim) : (double)L.head_dim;
        double dv = mla ? (double)m->v_head_dim : (double)L.head_dim;
        if (L.mixer == ST_MIX_ATTN) {
            double w = m->index_topk > 0 ? (double)m->index_topk : (double)L.window;
            double keys = w > 0 && w < S ? w - w * w / (2 * S) : S / 2;
            f += 2 * (double)m->heads * (dqk + dv) * keys;
            f += 2 * (double)(m->index_heads * m->index_head_dim) * S / 2;
        } else if (L.mixer == ST_MIX_GDN) {
            double Hv = (double)m->gdn_v_heads, dk = (double)m->gdn_k_dim, dvv = (double)m->gdn_v_dim;
            f += 2 * Hv * (3 * 64 * dk + 2 * 64 * dvv + 3 * dk * dvv);
        } else if (L.mixer == ST_MIX_MAMBA) {
            double H = (double)m->ssm_heads, P = (double)m->ssm_head_dim, N = (double)m->ssm_state;
            f += 2 * ((double)m->ssm_groups * 256 * N + H * 256 * P + 2 * H * N * P);
        }
    }
    return f;
}

/* the files of ../shared/ecosystem/hf, every one: MANIFEST.tsv's exact total and active counts (1%), the
 * FLOPs formula (1%). strata counts what MANIFEST counts (language model, no MTP, no vision tower);
 * Gemma 4's dense MLP beside the MoE is a shared expert (its extra norms, 0.002%, left out). */
START_TEST(test_ecosystem) {
    char path[1024], line[8192];
    snprintf(path, sizeof path, "%s/../shared/ecosystem/hf/MANIFEST.tsv", SRCDIR);
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "test_ecosystem: %s absent, skipped\n", path);
        return;
    }
    int files = 0, imported = 0;
    ck_assert_ptr_nonnull(fgets(line, sizeof line, f)); /* header */
    while (fgets(line, sizeof line, f)) {
        char *col[16] = {0}, *save = NULL;
        int nc = 0;
        for (char *t = strtok_r(line, "\t", &save); t && nc < 16; t = strtok_r(NULL, "\t", &save)) col[nc++] = t;
        ck_assert_int_ge(nc, 9);
        files++;
        snprintf(path, sizeof path, "%s/../shared/ecosystem/hf/%s", SRCDIR, col[0]);
        st_model m;
        st_error err;
        int rc = st_model_load(path, &m, &err);
        ck_assert_msg(rc == 0, "%s: %s (key '%s')", col[0], err.text, err.key);
        const char *text = file_text(path);
        int gives = strstr(text, "rope_theta") || strstr(text, "rotary_emb_base");
        ck_assert_msg((m.rope_theta > 0) == (gives && m.position == ST_POS_ROPE), "%s: rope_theta %g", col[0],
                      m.rope_theta);
        if (!strcmp(col[0], "aic_gemma-4-26B-A4B.json")) ck_assert_double_eq(m.rope_theta, 1e6); /* full_attention's */
        if (!strcmp(col[0], "aic_Qwen3.5-27B.json")) ck_assert_double_eq(m.rope_theta, 1e7);
        if (!strcmp(col[0], "aic_DeepSeek-V3.json")) ck_assert_double_eq(m.rope_theta, 1e4);
        imported++;
        double total = atof(col[7]), active = atof(col[8]);
        double p = st_model_params(&m), a = st_model_active_params(&m);
        ck_assert_msg(fabs(p - total) <= 0.01 * total, "%s: %.0f parameters, MANIFEST %.0f", col[0], p, total);
        ck_assert_msg(fabs(a - active) <= 0.01 * active, "%s: %.0f active, MANIFEST %.0f", col[0], a, active);
        double got = fwd_flops_per_token(&m, m.seq_len), want = formula_per_token(&m, m.seq_len);
        ck_assert_msg(fabs(got - want) <= 0.01 * want, "%s: %.4g FLOPs/token, formula %.4g", col[0], got, want);
    }
    fclose(f);
    ck_assert_int_eq(files, 40);
    ck_assert_int_eq(imported, 40);
}
END_TEST

/* the profiler's grid for a plan covers every kind of block: Nemotron-H's Mamba in_proj and SSD scan */
START_TEST(test_profiler_kinds) {
    st_model m = preset("nemotron-h-56b");
    st_plan p;
    st_plan_defaults(&p);
    st_error err;
    ck_assert_int_eq(st_plan_parse_spec("tp=8,pp=1,gbs=8,seq=4096", &p, &err), 0);
    st_cluster c;
    ck_assert_int_eq(st_cluster_preset("dgx-h100", &c), 0);
    ck_assert_int_eq(st_plan_finalize(&p, &m, &c, 8, NULL, &err), 0);
    st__prof_gemm *g;
    st__prof_mem *mm;
    int ng, nm, in_proj = 0, scan = 0, fc1 = 0;
    ck_assert_int_eq(st__prof_plan_shapes(&m, &p, &g, &ng, &mm, &nm), 0);
    double in_l = (2 * 16384 + 2 * 8 * 256 + 256) / 8.0;
    for (int i = 0; i < ng; i++) {
        in_proj |= g[i].cls == ST_OPC_GEMM && g[i].n == in_l && g[i].k == 8192;
        scan |= g[i].cls == ST_OPC_BGEMM && g[i].m == 256 && g[i].n == 64 && g[i].k == 256;
        fc1 |= g[i].cls == ST_OPC_GEMM && g[i].n == 32768 / 8 && g[i].k == 8192;
    }
    ck_assert(in_proj && scan && fc1);
    free(g);
    free(mm);
}
END_TEST

/* a parallel block: one norm and one residual add fewer, the last one reading three inputs */
START_TEST(test_parallel_block) {
    st_model m = preset("llama3-8b"), p = m;
    p.parallel_block = 1;
    ck_assert_double_eq_tol(st_model_params(&m) - st_model_params(&p), (double)(m.layers * m.hidden), 1e-3);
    st_op a[ST_MAX_OPS], b[ST_MAX_OPS];
    st_shard s = shard1(8192);
    s.tp = 8, s.sp = 1;
    int na = st_ops_layer(&m, &s, 0, a, ST_MAX_OPS), nb = st_ops_layer(&p, &s, 0, b, ST_MAX_OPS);
    ck_assert_int_eq(na - nb, 2);
    ck_assert_ptr_null(find(b, nb, "ln2"));
    ck_assert_ptr_null(find(b, nb, "attn_residual"));
    double x = 8192.0 / 8 * 4096 * 2; /* one sp shard of the block input, 16 bits */
    ck_assert_double_eq_tol(find(b, nb, "mlp_residual")->fwd_bytes - find(a, na, "mlp_residual")->fwd_bytes, x, 1e-6);
    int colls = 0;
    for (int i = 0; i < nb; i++) colls += b[i].fwd_coll != ST_COLL_NONE;
    ck_assert_int_eq(colls, 3); /* ln1's all-gather, proj's and fc2's reduce-scatters */
}
END_TEST

/* the operator-level planner refuses what its one repeated block cannot hold, naming it */
START_TEST(test_graph_refuses) {
    st_graph g;
    st_error err;
    st_model m = preset("deepseek-v3");
    ck_assert_int_eq(st_graph_from_model(&m, 1, 4096, ST_DT_BF16, ST_ATTN_FLASH, &g, &err), ST_EINVAL);
    ck_assert_ptr_nonnull(strstr(err.text, "latent attention"));
    m = preset("nemotron-h-56b");
    ck_assert_int_eq(st_graph_from_model(&m, 1, 4096, ST_DT_BF16, ST_ATTN_FLASH, &g, &err), ST_EINVAL);
    m = preset("qwen3-32b");
    ck_assert_int_eq(st_graph_from_model(&m, 1, 4096, ST_DT_BF16, ST_ATTN_FLASH, &g, &err), 0);
    st_graph_free(&g);
}
END_TEST

Suite *suite_structure(void) {
    Suite *s = suite_create("structure");
    TCase *tc = tcase_create("structure");
    tcase_add_test(tc, test_kinds);
    tcase_add_test(tc, test_count_oracle);
    tcase_add_test(tc, test_params_deepseek);
    tcase_add_test(tc, test_attention_flops);
    tcase_add_test(tc, test_sparse_attention);
    tcase_add_test(tc, test_gated_deltanet);
    tcase_add_test(tc, test_global_heads);
    tcase_add_test(tc, test_mamba);
    tcase_add_test(tc, test_moe_load);
    tcase_add_test(tc, test_structure_rejects);
    tcase_add_test(tc, test_json_roundtrip);
    tcase_add_test(tc, test_ecosystem);
    tcase_add_test(tc, test_profiler_kinds);
    tcase_add_test(tc, test_graph_refuses);
    tcase_add_test(tc, test_parallel_block);
    suite_add_tcase(s, tc);
    return s;
}
