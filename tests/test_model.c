/* test_model.c: presets, derived defaults, parameter counts and the operator graph against the
 * closed forms they generalise (Korthikanti et al. 2022 activation memory, the GPT FLOPs formula). */
#include "src/strata.h"
#include "suites.h"

#include <math.h>
#include <string.h>
#include <time.h>

static st_model preset(const char *name) {
    st_model m;
    ck_assert_msg(st_model_preset(name, &m) == 0, "preset %s", name);
    return m;
}

START_TEST(test_presets_finalize) {
    size_t n;
    const st_model *ms = st_model_presets(&n);
    ck_assert_uint_ge(n, 24);
    const char *required[] = {"gpt-1.7b", "gpt-3.6b", "gpt-7.5b", "gpt-18.4b", "gpt-39.1b", "gpt-76.1b",
                              "gpt-145.6b", "gpt-310.1b", "gpt-529.6b", "gpt-1008b", "gpt-22b", "gpt-175b",
                              "gpt-530b", "gpt-1t", "gpt3-175b", "llama2-7b", "llama2-13b", "llama2-70b",
                              "llama3-8b", "llama3-70b", "llama3-405b", "mixtral-8x7b", "bloom-176b", "opt-175b"};
    for (size_t i = 0; i < sizeof required / sizeof required[0]; i++) {
        st_model m = preset(required[i]);
        ck_assert_str_eq(m.name, required[i]);
        ck_assert_msg(m.source[0] != '\0', "%s cites a source", m.name);
        st_error err;
        ck_assert_int_eq(st_model_finalize(&m, NULL, &err), 0);
    }
    for (size_t i = 0; i < n; i++) ck_assert_int_gt(ms[i].ffn, 0);
    st_model x;
    ck_assert_int_eq(st_model_preset("no-such-model", &x), ST_EINVAL);
}
END_TEST

/* GPT with biases: 12h^2 + 13h per block, V*h + s*h embeddings, 2h final norm */
START_TEST(test_params_gpt_closed_form) {
    const char *names[] = {"gpt-1.7b", "gpt-175b", "gpt-1t", "gpt3-175b"};
    for (size_t i = 0; i < 4; i++) {
        st_model m = preset(names[i]);
        double h = (double)m.hidden, l = (double)m.layers;
        double want = l * (12 * h * h + 13 * h) + (double)m.vocab * h + (double)m.seq_len * h + 2 * h;
        ck_assert_double_eq_tol(st_model_params(&m), want, want * 1e-12);
    }
}
END_TEST

/* the published counts of Hugging Face checkpoints */
START_TEST(test_params_published) {
    st_model m = preset("llama2-7b");
    ck_assert_double_eq(st_model_params(&m), 6738415616.0);
    m = preset("llama2-70b");
    ck_assert_double_eq(st_model_params(&m), 68976648192.0);
    m = preset("llama3-8b");
    ck_assert_double_eq(st_model_params(&m), 8030261248.0);
    m = preset("mixtral-8x7b");
    ck_assert_double_eq(st_model_params(&m), 46702792704.0);
}
END_TEST

START_TEST(test_defaults) {
    st_model m;
    memset(&m, 0, sizeof m);
    m.layers = 2, m.hidden = 4096, m.heads = 32, m.vocab = 32000;
    m.activation = ST_ACT_SWIGLU, m.norm = ST_NORM_RMSNORM;
    m.tied_embeddings = m.dropout = m.bias = -1;
    ck_assert_int_eq(st_model_finalize(&m, NULL, NULL), 0);
    ck_assert_int_eq(m.kv_heads, 32);
    ck_assert_int_eq(m.head_dim, 128);
    ck_assert_int_eq(m.ffn, 11008); /* Llama's 8/3 h rounded up to 256 */
    ck_assert_int_eq(m.seq_len, 2048);
    ck_assert_int_eq(m.dropout, 0);
    ck_assert_int_eq(m.bias, 0);
    ck_assert_int_eq(m.tied_embeddings, 1);
    m.activation = ST_ACT_GELU, m.norm = ST_NORM_LAYERNORM, m.ffn = 0, m.dropout = m.bias = -1;
    ck_assert_int_eq(st_model_finalize(&m, NULL, NULL), 0);
    ck_assert_int_eq(m.ffn, 4 * 4096);
    ck_assert_int_eq(m.dropout, 1);
}
END_TEST

START_TEST(test_finalize_rejects) {
    st_error err;
    st_model m = preset("llama2-70b");
    m.kv_heads = 7;
    ck_assert_int_eq(st_model_finalize(&m, "x.json", &err), ST_EINVAL);
    ck_assert_str_eq(err.key, "kv_heads");
    ck_assert_str_eq(err.file, "x.json");
    m = preset("mixtral-8x7b");
    m.experts_topk = 9;
    ck_assert_int_eq(st_model_finalize(&m, NULL, &err), ST_EINVAL);
    ck_assert_str_eq(err.key, "experts_topk");
    m = preset("gpt-1.7b");
    m.layers = 1000000000000LL;
    ck_assert_int_eq(st_model_finalize(&m, NULL, &err), ST_EINVAL);
    ck_assert_str_eq(err.key, "layers");
}
END_TEST

START_TEST(test_padded_vocab) {
    st_model m = preset("gpt3-175b");
    ck_assert_int_eq(st_model_padded_vocab(&m, 1), 50304);
    ck_assert_int_eq(st_model_padded_vocab(&m, 8), 51200);
    m.vocab_pad_multiple = 1;
    ck_assert_int_eq(st_model_padded_vocab(&m, 8), 50264);
}
END_TEST

static double layer_sum(const st_model *m, const st_shard *s, int what) {
    st_op ops[ST_MAX_OPS];
    int n = st_ops_layer(m, s, 0, ops, ST_MAX_OPS);
    ck_assert_int_gt(n, 0);
    double t = 0;
    for (int i = 0; i < n; i++) {
        if (what == 0) t += ops[i].saved_bytes;
        if (what == 1 && !ops[i].selective) t += ops[i].saved_bytes;
        if (what == 2 && (ops[i].cls == ST_OPC_GEMM || ops[i].cls == ST_OPC_BGEMM)) t += ops[i].fwd_flops;
    }
    return t;
}

/* Korthikanti et al. 2022, Sec. 4.2: s*b*h*(34 + 5as/h) bytes per layer; with tp t and sp:
 * sbh(34/t + 5as/(ht)); tp without sp: sbh(10 + 24/t + 5as/(ht)); selective drops 5as/h. */
START_TEST(test_activations_korthikanti) {
    st_model m = preset("gpt-175b");
    double s = 2048, b = 2, h = (double)m.hidden, a = (double)m.heads;
    st_shard sh = {.tp = 1, .cp = 1, .ep = 1, .sp = 0, .mbs = 2, .seq = 2048, .dtype = ST_DT_BF16, .grad_bytes = 4,
                   .attention = ST_ATTN_UNFUSED};
    double sbh = s * b * h;
    ck_assert_double_eq_tol(layer_sum(&m, &sh, 0), sbh * (34 + 5 * a * s / h), 1);
    ck_assert_double_eq_tol(layer_sum(&m, &sh, 1), sbh * 34, 1);
    sh.tp = 8;
    ck_assert_double_eq_tol(layer_sum(&m, &sh, 0), sbh * (10 + 24.0 / 8 + 5 * a * s / (h * 8)), 1);
    sh.sp = 1;
    ck_assert_double_eq_tol(layer_sum(&m, &sh, 0), sbh * (34.0 / 8 + 5 * a * s / (h * 8)), 1);
    ck_assert_double_eq_tol(layer_sum(&m, &sh, 1), sbh * 34.0 / 8, 1);
}
END_TEST

/* DESIGN.md: forward 24*B*s*h^2*(1 + s/(6h)) per layer; model FLOPs 72*B*s*l*h^2*(1 + s/(6h) +
 * V/(12*l*h)) per iteration (Korthikanti et al. 2022, Sec. 6) */
START_TEST(test_flops_closed_form) {
    st_model m = preset("gpt-1t");
    double s = 2048, h = (double)m.hidden, l = (double)m.layers, V = (double)st_model_padded_vocab(&m, 1);
    st_shard sh = {.tp = 1, .cp = 1, .ep = 1, .mbs = 1, .seq = 2048, .dtype = ST_DT_BF16, .grad_bytes = 4,
                   .attention = ST_ATTN_UNFUSED};
    double fwd = layer_sum(&m, &sh, 2);
    ck_assert_double_eq_tol(fwd, 24 * s * h * h * (1 + s / (6 * h)), fwd * 1e-12);
    double B = 512;
    double want = 72 * B * s * l * h * h * (1 + s / (6 * h) + V / (12 * l * h));
    ck_assert_double_eq_tol(st_cost_model_flops(&m, 512, 2048), want, want * 1e-12);
    /* tensor parallelism divides each rank's layer FLOPs by tp; context parallelism by cp */
    sh.tp = 8;
    ck_assert_double_eq_tol(layer_sum(&m, &sh, 2), fwd / 8, fwd * 1e-12);
    sh.tp = 1, sh.cp = 4;
    ck_assert_double_eq_tol(layer_sum(&m, &sh, 2), fwd / 4, fwd * 1e-12);
}
END_TEST

static const st_op *find(const st_op *ops, int n, const char *name) {
    for (int i = 0; i < n; i++)
        if (!strcmp(ops[i].name, name)) return &ops[i];
    return NULL;
}

/* Fused attention (attention=flash): no s x s tensor. Per layer s*b*h*34 bytes (Korthikanti's
 * 11sbh of the attention block without its 5as^2b score terms, plus the 24sbh of the rest) plus
 * the log-sum-exp, 4*a*s*b bytes (fp32 per head and query row); with tp t and sp everything /t.
 * Selective recompute re-runs the kernel and drops the LSE only (the checkpoint keeps q, k, v; the
 * projection keeps the output): s*b*h*34 remains. */
START_TEST(test_flash_activations) {
    st_model m = preset("gpt-175b");
    double s = 2048, b = 2, h = (double)m.hidden, a = (double)m.heads, sbh = s * b * h;
    st_shard sh = {.tp = 1, .cp = 1, .ep = 1, .sp = 0, .mbs = 2, .seq = 2048, .dtype = ST_DT_BF16, .grad_bytes = 4,
                   .attention = ST_ATTN_FLASH};
    ck_assert_double_eq_tol(layer_sum(&m, &sh, 0), sbh * 34 + 4 * a * s * b, 1);
    /* the ops not marked selective: all but the fused one (q, k, v and the LSE) */
    ck_assert_double_eq_tol(layer_sum(&m, &sh, 1), sbh * 34 - (2 + 2 + 2) * sbh, 1);
    st_op ops[ST_MAX_OPS];
    int n = st_ops_layer(&m, &sh, 0, ops, ST_MAX_OPS);
    const st_op *f = find(ops, n, "attention");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(f->cls, ST_OPC_ATTENTION);
    ck_assert(f->selective);
    ck_assert_double_eq_tol(f->saved_bytes - f->ckpt_kept_bytes, 4 * a * s * b, 1e-6); /* selective drops the LSE */
    ck_assert_ptr_null(find(ops, n, "scores"));
    ck_assert_ptr_null(find(ops, n, "softmax"));
    ck_assert_ptr_null(find(ops, n, "context_transpose"));
    sh.tp = 8, sh.sp = 1;
    ck_assert_double_eq_tol(layer_sum(&m, &sh, 0), (sbh * 34 + 4 * a * s * b) / 8, 1);
}
END_TEST

/* The fused operator's work: forward 4*b*s^2*h FLOPs for the full s x s (QK^T and PV), of which a
 * causal kernel does half (the FA2/FA3 benchmark count); backward 2.5x forward; HBM: forward q, k,
 * v read, o written (b*s*h 16-bit elements each; MHA), LSE written; backward q, k, v, o, do read
 * and dq, dk, dv written, LSE read. Context parallelism: each rank has 1/cp of the causal
 * work over all the keys. */
START_TEST(test_flash_flops) {
    st_model m = preset("gpt-175b");
    double s = 2048, b = 1, h = (double)m.hidden, a = (double)m.heads;
    st_shard sh = {.tp = 1, .cp = 1, .ep = 1, .mbs = 1, .seq = 2048, .dtype = ST_DT_BF16, .grad_bytes = 4};
    st_op ops[ST_MAX_OPS];
    int n = st_ops_layer(&m, &sh, 0, ops, ST_MAX_OPS);
    const st_op *f = find(ops, n, "attention");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(f->causal, 1);
    double full = 4 * b * s * s * h;
    ck_assert_double_eq_tol(f->fwd_flops, full / 2, full * 1e-12);
    ck_assert_double_eq_tol(f->bwd_flops, 2.5 * f->fwd_flops, full * 1e-12);
    double lse = 4 * a * s * b;
    ck_assert_double_eq_tol(f->fwd_bytes, 4 * b * s * h * 2 + lse, 1e-3);
    ck_assert_double_eq_tol(f->bwd_bytes, 8 * b * s * h * 2 + lse, 1e-3);
    ck_assert_double_eq(f->m, s);
    ck_assert_double_eq(f->n, s);
    ck_assert_double_eq(f->k, h / a);
    ck_assert_double_eq(f->batch, b * a);
    /* the unfused path's GEMM and batched-GEMM FLOPs are the full count: the same total */
    sh.attention = ST_ATTN_UNFUSED;
    double unfused = layer_sum(&m, &sh, 2);
    sh.attention = ST_ATTN_FLASH;
    ck_assert_double_eq_tol(layer_sum(&m, &sh, 2) + 2 * f->fwd_flops, unfused, unfused * 1e-12);
    sh.tp = 8, sh.cp = 4;
    n = st_ops_layer(&m, &sh, 0, ops, ST_MAX_OPS);
    f = find(ops, n, "attention");
    ck_assert_double_eq_tol(f->fwd_flops, full / 2 / 32, full * 1e-12);
    ck_assert_double_eq(f->m, s / 4);
    ck_assert_double_eq(f->n, s);
}
END_TEST

/* kernels=eager (PyTorch eager, torchtitan's Llama without torch.compile), in closed form per layer
 * of Llama 3 8B (T tokens, E = T h norm elements, F = T f SwiGLU elements, bf16: act 2):
 * - saved bytes: each RMSNorm keeps its fp32 input and 16-bit output (6 E) where the fused norm
 *   keeps its 2 E input; SwiGLU keeps w1 x, w3 x and silu's output (6 F, fused 4 F); SDPA keeps K
 *   and V repeated to every head (2 T (q_out - kv_out) x 2 more): a layer keeps
 *   fused + 2 x 4 E + 2 F + 4 T (q_out - kv_out) bytes;
 * - HBM: norm forward (4 act + 28) E = 36 E, backward (8 act + 56) E = 72 E; rope (2 act + 16) =
 *   20 bytes per q and k element each way; SwiGLU 5 act F = 10 F forward, 8 act F = 16 F backward;
 * - the GEMMs' FLOPs are unchanged (the chains move bytes), and full recompute keeps the same block input (the 16-bit residual stream, 2 E). */
START_TEST(test_eager_kernels) {
    st_model m = preset("llama3-8b");
    double T = 8192, h = (double)m.hidden, f = (double)m.ffn, E = T * h, F = T * f;
    double q_out = (double)m.heads * m.head_dim, kv_out = (double)m.kv_heads * m.head_dim;
    st_shard sh = {.tp = 1, .cp = 1, .ep = 1, .mbs = 1, .seq = 8192, .dtype = ST_DT_BF16, .grad_bytes = 4,
                   .attention = ST_ATTN_FLASH, .kernels = ST_KERN_FUSED};
    double fused_saved = layer_sum(&m, &sh, 0), fused_flops = layer_sum(&m, &sh, 2);
    st_op fo[ST_MAX_OPS];
    int fn = st_ops_layer(&m, &sh, 0, fo, ST_MAX_OPS);
    sh.kernels = ST_KERN_EAGER;
    ck_assert_double_eq_tol(layer_sum(&m, &sh, 0), fused_saved + 8 * E + 2 * F + 4 * T * (q_out - kv_out), 1);
    ck_assert_double_eq_tol(layer_sum(&m, &sh, 2), fused_flops, fused_flops * 1e-12); /* the GEMMs' FLOPs */
    st_op ops[ST_MAX_OPS];
    int n = st_ops_layer(&m, &sh, 0, ops, ST_MAX_OPS);
    const st_op *ln = find(ops, n, "ln1"), *rope = find(ops, n, "rope"), *act = find(ops, n, "act");
    ck_assert_ptr_nonnull(ln);
    ck_assert_ptr_nonnull(rope);
    ck_assert_ptr_nonnull(act);
    ck_assert_ptr_nonnull(find(ops, n, "repeat_kv"));
    ck_assert_ptr_null(find(fo, fn, "repeat_kv"));
    ck_assert_double_eq_tol(ln->fwd_bytes, 36 * E, 1e-3);
    ck_assert_double_eq_tol(ln->bwd_bytes, 72 * E, 1e-3);
    ck_assert_double_eq_tol(ln->input_bytes, 2 * E, 1e-3); /* what a checkpoint keeps, as fused */
    ck_assert_double_eq_tol(rope->fwd_bytes, 20 * T * (q_out + kv_out), 1e-3);
    ck_assert_double_eq_tol(act->fwd_bytes, 10 * F, 1e-3);
    ck_assert_double_eq_tol(act->bwd_bytes, 16 * F, 1e-3);
    /* the loss on an fp32 copy: its 16-bit logits and the copy live while it runs */
    st_op t[ST_MAX_OPS];
    n = st_ops_tail(&m, &sh, t, ST_MAX_OPS);
    const st_op *loss = find(t, n, "loss");
    ck_assert_ptr_nonnull(loss);
    ck_assert_double_eq_tol(loss->work_bytes, T * (double)m.vocab * (2 + 4), 1);
    sh.kernels = ST_KERN_FUSED;
    n = st_ops_tail(&m, &sh, t, ST_MAX_OPS);
    ck_assert_double_eq(find(t, n, "loss")->work_bytes, 0);
    /* kernels=compile (torchtitan's torch.compile per block): the blocks fused but SDPA still fed
     * by repeat_kv's copies; the final norm and the loss outside, eager */
    sh.kernels = ST_KERN_COMPILE;
    n = st_ops_layer(&m, &sh, 0, ops, ST_MAX_OPS);
    ck_assert_double_eq_tol(layer_sum(&m, &sh, 0), fused_saved + 4 * T * (q_out - kv_out), 1);
    ck_assert_double_eq_tol(find(ops, n, "ln1")->fwd_bytes, 2 * 2 * E, 1e-3);
    n = st_ops_tail(&m, &sh, t, ST_MAX_OPS);
    ck_assert_double_eq_tol(find(t, n, "loss")->work_bytes, T * (double)m.vocab * (2 + 4), 1);
    ck_assert_double_eq_tol(find(t, n, "final_norm")->fwd_bytes, 36 * E, 1e-3);
}
END_TEST

/* MoE: each token visits topk experts, so expert FLOPs are topk x a dense MLP of the same ffn,
 * and experts are split over ep */
START_TEST(test_moe_ops) {
    st_model m = preset("mixtral-8x7b");
    st_shard sh = {.tp = 1, .cp = 1, .ep = 1, .mbs = 1, .seq = 4096, .dtype = ST_DT_BF16, .grad_bytes = 4};
    st_op ops[ST_MAX_OPS];
    int n = st_ops_layer(&m, &sh, 0, ops, ST_MAX_OPS);
    double expert_flops = 0, expert_params = 0;
    int a2a = 0;
    for (int i = 0; i < n; i++)
        if (ops[i].expert) expert_flops += ops[i].fwd_flops, expert_params += ops[i].params;
    double T = 4096, h = 4096, f = 14336;
    ck_assert_double_eq_tol(expert_flops, 2.0 * (2 * T * h * 2 * f + 2 * T * f * h), 1);
    ck_assert_double_eq_tol(expert_params, 8 * 3 * h * f, 1);
    sh.ep = 4;
    n = st_ops_layer(&m, &sh, 0, ops, ST_MAX_OPS);
    expert_params = 0;
    for (int i = 0; i < n; i++) {
        if (ops[i].expert) expert_params += ops[i].params;
        if (ops[i].fwd_coll == ST_COLL_ALLTOALL) a2a++;
    }
    ck_assert_double_eq_tol(expert_params, 2 * 3 * h * f, 1);
    ck_assert_int_eq(a2a, 2); /* dispatch and combine */
}
END_TEST

/* Megatron's collectives: two all-reduces per layer in forward without sp, all-gather and
 * reduce-scatter pairs with sp */
START_TEST(test_tp_collectives) {
    st_model m = preset("gpt-175b");
    st_shard sh = {.tp = 8, .cp = 1, .ep = 1, .mbs = 1, .seq = 2048, .dtype = ST_DT_BF16, .grad_bytes = 4};
    st_op ops[ST_MAX_OPS];
    int n = st_ops_layer(&m, &sh, 0, ops, ST_MAX_OPS);
    int far = 0, bar = 0, fag = 0, frs = 0;
    for (int i = 0; i < n; i++) {
        far += ops[i].fwd_coll == ST_COLL_ALLREDUCE;
        bar += ops[i].bwd_coll == ST_COLL_ALLREDUCE;
    }
    ck_assert_int_eq(far, 2);
    ck_assert_int_eq(bar, 2);
    sh.sp = 1;
    n = st_ops_layer(&m, &sh, 0, ops, ST_MAX_OPS);
    for (int i = 0; i < n; i++) {
        fag += ops[i].fwd_coll == ST_COLL_ALLGATHER;
        frs += ops[i].fwd_coll == ST_COLL_REDUCESCATTER;
        ck_assert(ops[i].fwd_coll != ST_COLL_ALLREDUCE);
    }
    ck_assert_int_eq(fag, 2);
    ck_assert_int_eq(frs, 2);
}
END_TEST

/* src/core/util.c's clock: monotonic, in seconds (a 20 ms sleep reads as 20 ms, not 20 s or 0) */
START_TEST(test_clock) {
    double t0 = st_clock_s();
    struct timespec d = {0, 20000000};
    while (nanosleep(&d, &d) != 0) {}
    double t1 = st_clock_s();
    ck_assert_msg(t1 - t0 >= 0.019 && t1 - t0 < 5, "slept 20 ms, the clock says %g s", t1 - t0);
}
END_TEST

Suite *suite_model(void) {
    Suite *s = suite_create("model");
    TCase *tc = tcase_create("model");
    tcase_add_test(tc, test_presets_finalize);
    tcase_add_test(tc, test_clock);
    tcase_add_test(tc, test_params_gpt_closed_form);
    tcase_add_test(tc, test_params_published);
    tcase_add_test(tc, test_defaults);
    tcase_add_test(tc, test_finalize_rejects);
    tcase_add_test(tc, test_padded_vocab);
    tcase_add_test(tc, test_activations_korthikanti);
    tcase_add_test(tc, test_flops_closed_form);
    tcase_add_test(tc, test_flash_activations);
    tcase_add_test(tc, test_flash_flops);
    tcase_add_test(tc, test_eager_kernels);
    tcase_add_test(tc, test_moe_ops);
    tcase_add_test(tc, test_tp_collectives);
    suite_add_tcase(s, tc);
    return s;
}
