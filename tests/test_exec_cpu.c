/* test_exec_cpu.c: the CPU executor's kernels and decoder (exec/kernels.c, exec/model.c) on one rank,
 * without MPI: BLAS GEMMs against the plain C ones, the attention's causality, rotary embedding's
 * inverse, Adam's first step in closed form, the seeded tokens, and every tensor's gradient against
 * central finite differences of the loss (the oracle of the whole backward). Built with the
 * executor only (configure found MPI and a CBLAS); the sharded runs are tests/cli_run.sh's. */
#include "exec/exec_private.h"
#include "src/strata.h"
#include "suites.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void fill(float *x, int64_t n, unsigned seed) {
    srand(seed);
    for (int64_t i = 0; i < n; i++) x[i] = (float)rand() / (float)RAND_MAX - 0.5f;
}

static double maxdiff(const float *a, const float *b, int64_t n) {
    double m = 0;
    for (int64_t i = 0; i < n; i++) m = fmax(m, fabs((double)a[i] - b[i]));
    return m;
}

/* BLAS and the plain loops agree on the forward (with bias and accumulation) and both gradients */
START_TEST(gemm_blas_vs_reference) {
    enum { N = 7, C = 13, OC = 5 };
    float inp[N * C], w[OC * C], b[OC], out1[N * OC], out2[N * OC], dout[N * OC];
    float di1[N * C] = {0}, di2[N * C] = {0}, dw1[OC * C] = {0}, dw2[OC * C] = {0}, db1[OC] = {0}, db2[OC] = {0};
    fill(inp, N * C, 1), fill(w, OC * C, 2), fill(b, OC, 3), fill(dout, N * OC, 4), fill(out1, N * OC, 5);
    for (int i = 0; i < N * OC; i++) out2[i] = out1[i];
    st__xkernels_reference = 0;
    st__xmm_fwd(out1, inp, w, b, N, C, OC, 1);
    st__xmm_bwd(di1, dw1, db1, dout, inp, w, N, C, OC);
    st__xmm_fwd_ref(out2, inp, w, b, N, C, OC, 1);
    st__xmm_bwd_ref(di2, dw2, db2, dout, inp, w, N, C, OC);
    ck_assert_double_le(maxdiff(out1, out2, N * OC), 1e-5);
    ck_assert_double_le(maxdiff(di1, di2, N * C), 1e-5);
    ck_assert_double_le(maxdiff(dw1, dw2, OC * C), 1e-5);
    ck_assert_double_le(maxdiff(db1, db2, OC), 1e-5);
    /* a zero-bubble schedule's halves (dw NULL, then dinp NULL and no w) add what the whole adds */
    for (int ref = 0; ref < 2; ref++) {
        float di3[N * C] = {0}, dw3[OC * C] = {0}, db3[OC] = {0};
        void (*bwd)(float *, float *, float *, const float *, const float *, const float *, int64_t, int64_t,
                    int64_t) = ref ? st__xmm_bwd_ref : st__xmm_bwd;
        bwd(di3, NULL, db3, dout, inp, w, N, C, OC);
        bwd(NULL, dw3, NULL, dout, inp, NULL, N, C, OC);
        ck_assert_double_eq(maxdiff(di3, ref ? di2 : di1, N * C), 0);
        ck_assert_double_eq(maxdiff(dw3, ref ? dw2 : dw1, OC * C), 0);
        ck_assert_double_eq(maxdiff(db3, ref ? db2 : db1, OC), 0);
    }
    /* out = x W^T by hand for one element */
    float o[N * OC];
    st__xmm_fwd_ref(o, inp, w, NULL, N, C, OC, 0);
    double s = 0;
    for (int c = 0; c < C; c++) s += (double)inp[2 * C + c] * w[3 * C + c];
    ck_assert_double_eq_tol(o[2 * OC + 3], s, 1e-5);
}
END_TEST

/* a token's output does not move when a later token's key or value does; rows of P sum to 1 */
START_TEST(attention_causal) {
    enum { B = 1, T = 5, HQ = 2, HKV = 1, D = 4 };
    float q[T * HQ * D], k[T * HKV * D], v[T * HKV * D], o1[T * HQ * D], o2[T * HQ * D], p[B * HQ * T * T];
    fill(q, T * HQ * D, 6), fill(k, T * HKV * D, 7), fill(v, T * HKV * D, 8);
    st__xattn_fwd(o1, p, q, k, v, B, T, HQ, HKV, D);
    for (int r = 0; r < HQ * T; r++) {
        double s = 0;
        for (int t = 0; t < T; t++) s += p[r * T + t];
        ck_assert_double_eq_tol(s, 1.0, 1e-6);
        ck_assert(p[r * T + T - 1] == 0 || r % T == T - 1);
    }
    k[(T - 1) * D] += 1.0f, v[(T - 1) * D] += 1.0f;
    st__xattn_fwd(o2, p, q, k, v, B, T, HQ, HKV, D);
    ck_assert_double_eq(maxdiff(o1, o2, (T - 1) * HQ * D), 0);
    ck_assert_double_gt(maxdiff(o1, o2, T * HQ * D), 0);
}
END_TEST

START_TEST(rope_inverse) {
    enum { N = 6, T = 3, H = 2, D = 8 };
    float x[N * H * D], y[N * H * D];
    fill(x, N * H * D, 9);
    for (int i = 0; i < N * H * D; i++) y[i] = x[i];
    st__xrope(y, N, T, H, D, H * D, 1);
    ck_assert_double_gt(maxdiff(x + H * D, y + H * D, (N - 1) * H * D), 1e-3); /* position 0 is not moved */
    ck_assert_double_eq(maxdiff(x, y, H * D), 0);
    st__xrope(y, N, T, H, D, H * D, -1);
    ck_assert_double_le(maxdiff(x, y, N * H * D), 1e-6);
}
END_TEST

/* Adam's first step moves each weight by lr against its gradient's sign (m / sqrt(v) = g / |g|) */
START_TEST(adam_first_step) {
    float p[3] = {1, 1, 1}, g[3] = {0.5f, -2.0f, 1e-3f}, m[3] = {0}, v[3] = {0};
    st__xadam(p, g, m, v, 3, 1, 0.1f, 0.9f, 0.95f, 1e-8f);
    ck_assert_double_eq_tol(p[0], 0.9, 1e-6);
    ck_assert_double_eq_tol(p[1], 1.1, 1e-6);
    ck_assert_double_eq_tol(p[2], 0.9, 1e-4);
}
END_TEST

START_TEST(tokens_seeded) {
    int32_t a[17], b[17], c[17];
    st__xtokens(a, 16, 50, 7, 2, 3);
    st__xtokens(b, 16, 50, 7, 2, 3);
    st__xtokens(c, 16, 50, 7, 2, 4);
    int same = 1, differ = 0;
    for (int i = 0; i < 17; i++) {
        ck_assert(a[i] >= 0 && a[i] < 50);
        same &= a[i] == b[i];
        differ |= a[i] != c[i];
    }
    ck_assert(same && differ);
}
END_TEST

static double loss_of(st__xmodel *x, const int32_t *tok) {
    double loss = 0;
    const float *o;
    st__xacts *a = st__xmodel_forward(x, 0, tok, NULL, &o, &loss);
    ck_assert_ptr_nonnull(a);
    st__xacts_free(a);
    return loss;
}

/* every tensor's largest gradient against (L(w + e) - L(w - e)) / 2e, in double where it counts:
 * the loss is a mean of float per-token losses, so rounding adds about u L / e ~ 4e-5 */
static void finite_differences(const char *preset, double capacity_factor) {
    st_model m;
    st_error err;
    ck_assert_int_eq(st_model_preset(preset, &m), 0);
    m.layers = 2, m.hidden = 16, m.heads = 4, m.head_dim = 4, m.vocab = 32;
    m.kv_heads = m.kv_heads < m.heads ? 2 : 4;
    m.ffn = 24;
    if (m.experts) m.moe_ffn = 20;
    m.capacity_factor = capacity_factor;
    enum { B = 2, T = 6 };
    st__xmodel x;
    int l0 = 0, l1 = 2;
    st__xpart pt = {.B = B, .T = T, .tp = 1, .nchunks = 1, .l0 = &l0, .l1 = &l1, .first = 1, .last = 1};
    ck_assert_msg(st__xmodel_init(&x, &m, &pt, 42, &err) == 0, "%s", err.text);
    st__xkernels_reference = 1;
    int32_t tok[B * (T + 1)];
    for (int b = 0; b < B; b++) st__xtokens(tok + b * (T + 1), T, m.vocab, 5, 0, b);
    /* weights and biases away from their 1 and 0 starts, so no gradient is zero by symmetry alone */
    for (int64_t i = 0; i < x.nparams; i++) x.params[i] += 0.1f * (float)sin((double)i);
    double loss = 0;
    const float *o;
    st__xacts *a = st__xmodel_forward(&x, 0, tok, NULL, &o, &loss);
    ck_assert_int_eq(st__xmodel_backward(&x, a, NULL, 1.0, &o), 0);
    st__xacts_free(a);
    ck_assert(loss > 0 && isfinite(loss));
    for (int i = 0; i < x.ntensors; i++) {
        const st__xtensor *t = &x.tensors[i];
        int64_t n = t->nrows * t->ncols, best = t->off;
        for (int64_t e = t->off; e < t->off + n; e++)
            if (fabsf(x.grads[e]) > fabsf(x.grads[best])) best = e;
        float w = x.params[best], eps = 1e-2f;
        x.params[best] = w + eps;
        double up = loss_of(&x, tok);
        x.params[best] = w - eps;
        double down = loss_of(&x, tok);
        x.params[best] = w;
        double fd = (up - down) / (2 * (double)eps), g = x.grads[best];
        ck_assert_msg(fabs(fd - g) <= 0.02 * fabs(g) + 2e-4, "%s %s layer %d: backward %.6g, finite differences %.6g",
                      preset, t->name, t->layer, g, fd);
    }
    st__xkernels_reference = 0;
    st__xmodel_destroy(&x);
}

START_TEST(gradients_gpt) { finite_differences("tiny-gpt", 0); }
END_TEST

START_TEST(gradients_llama) { finite_differences("tiny-llama", 0); }
END_TEST

/* the router (through the softmax over the top k) and every expert's MLP */
START_TEST(gradients_moe) { finite_differences("tiny-moe", 0); }
END_TEST

/* with a capacity of ceil(0.5 x 12 x 2 / 4) = 3 pairs per expert, half of them dropped */
START_TEST(gradients_moe_capacity) { finite_differences("tiny-moe", 0.5); }
END_TEST

/* the shards of tp = 2 hold the full model's numbers at their places, and refuse what does not divide */
START_TEST(shards_slice_the_full_tensors) {
    st_model m;
    st_error err;
    ck_assert_int_eq(st_model_preset("tiny-llama", &m), 0);
    st__xmodel full, half;
    int zero = 0, two = 2, four = 4;
    st__xpart pf = {.B = 1, .T = 8, .tp = 1, .nchunks = 1, .l0 = &zero, .l1 = &four, .first = 1, .last = 1};
    st__xpart ph = {.B = 1, .T = 8, .tp = 2, .tr = 1, .nchunks = 1, .l0 = &two, .l1 = &four, .last = 1};
    ck_assert_int_eq(st__xmodel_init(&full, &m, &pf, 3, &err), 0);
    ck_assert_int_eq(st__xmodel_init(&half, &m, &ph, 3, &err), 0);
    int checked = 0;
    for (int i = 0; i < half.ntensors; i++) {
        const st__xtensor *t = &half.tensors[i];
        for (int j = 0; j < full.ntensors; j++) {
            const st__xtensor *u = &full.tensors[j];
            if (u->layer != t->layer || strcmp(u->name, t->name)) continue;
            for (int64_t r = 0; r < t->nrows; r++)
                for (int64_t c = 0; c < t->ncols; c++)
                    ck_assert(half.params[t->off + r * t->ncols + c] ==
                              full.params[u->off + (t->row0 + r) * u->ncols + t->col0 + c]);
            checked++;
        }
    }
    ck_assert_int_eq(checked, half.ntensors);
    ck_assert_ptr_null(half.wte); /* not the first stage */
    st__xmodel_destroy(&full);
    st__xmodel_destroy(&half);
    m.vocab = 511;
    ph.tr = 0, ph.l0 = &zero, ph.first = 1;
    ck_assert_int_eq(st__xmodel_init(&half, &m, &ph, 3, &err), ST_EINVAL);
}
END_TEST

/* The fused GEMMs (one for q, k and v, one for SwiGLU's w1 and w3) against a block computed from the
 * backend's kernels one linear layer at a time, as the model's tensors name them: a middle stage's one
 * Llama block with biases (b1 on w1's half only) on tp rank 1 of 2, so that the fused weight is this
 * rank's heads' q, k and v rows, back to back. The same sums: within 1e-5. */
START_TEST(fused_gemms_match_separate) {
    st_model m;
    st_error err;
    ck_assert_int_eq(st_model_preset("tiny-llama", &m), 0);
    m.bias = 1;
    int one = 1, two = 2;
    const int64_t B = 2, T = 6, N = B * T;
    st__xpart pt = {.B = B, .T = T, .tp = 2, .tr = 1, .nchunks = 1, .l0 = &one, .l1 = &two};
    st__xmodel x;
    ck_assert_int_eq(st__xmodel_init(&x, &m, &pt, 5, &err), 0);
    const st__xbackend *be = &st__xbackend_cpu;
    const st__xlayer *w = &x.lp[0];
    int64_t h = x.h, ql = x.a_l * x.d, kl = x.kv_l * x.d, fl = x.f_l;
    /* the biases start at 0: give them values, so that a misplaced one shows */
    for (int64_t i = 0; i < ql + 2 * kl; i++) w->bq[i] = 0.01f * (float)(i % 7);
    for (int64_t i = 0; i < fl; i++) w->b1[i] = -0.01f * (float)(i % 5);
    float *in = malloc((size_t)(N * h) * sizeof *in), *buf = calloc((size_t)(N * (6 * h + 3 * ql + 3 * fl)), 4);
    ck_assert(in && buf);
    for (int64_t i = 0; i < N * h; i++) in[i] = (float)((i * 37) % 101) / 101.0f - 0.5f;
    float *n1 = buf, *mean = n1 + N * h, *rstd = mean + N, *q = rstd + N, *k = q + N * ql, *v = k + N * ql;
    float *ao = v + N * ql, *probs = ao + N * ql, *x2 = probs + N * h, *n2 = x2 + N * h, *h1 = n2 + N * h;
    float *h3 = h1 + N * fl, *g = h3 + N * fl, *y = g + N * fl;
    be->norm_fwd(n1, mean, rstd, in, w->ln1_w, w->ln1_b, N, h);
    be->mm_fwd(q, n1, w->wq, w->bq, N, h, ql, 0);
    be->mm_fwd(k, n1, w->wk, w->bk, N, h, kl, 0);
    be->mm_fwd(v, n1, w->wv, w->bv, N, h, kl, 0);
    be->rope(q, N, T, x.a_l, x.d, ql, 1);
    be->rope(k, N, T, x.kv_l, x.d, kl, 1);
    be->attn_fwd(ao, probs, q, k, v, B, T, x.a_l, x.kv_l, x.d);
    be->mm_fwd(x2, ao, w->wo, NULL, N, ql, h, 0); /* row-parallel: this rank's partial sum, no tp peer */
    be->bias_add(x2, w->bo, N, h);
    be->add(x2, in, N * h);
    be->norm_fwd(n2, mean, rstd, x2, w->ln2_w, w->ln2_b, N, h);
    be->mm_fwd(h1, n2, w->w1, w->b1, N, h, fl, 0);
    be->mm_fwd(h3, n2, w->w3, NULL, N, h, fl, 0);
    be->swiglu_fwd(g, h1, h3, N * fl);
    be->mm_fwd(y, g, w->w2, NULL, N, fl, h, 0);
    be->bias_add(y, w->b2, N, h);
    be->add(y, x2, N * h);
    const float *out;
    double loss = 0;
    st__xacts *a = st__xmodel_forward(&x, 0, NULL, in, &out, &loss);
    ck_assert_ptr_nonnull(a);
    double maxdiff = 0;
    for (int64_t i = 0; i < N * h; i++) maxdiff = fmax(maxdiff, fabs((double)out[i] - y[i]));
    ck_assert_msg(maxdiff < 1e-5, "maxdiff %g", maxdiff);
    st__xacts_free(a);
    free(in), free(buf);
    st__xmodel_destroy(&x);
}
END_TEST

/* an ILP plan's attention on the token rows (attn_rows): 1 holds the projection whole, 2 QKV too,
 * the MLP sliced as tp's either way; both need sp, and 2 whole sequences on each rank */
START_TEST(rows_hold_whole_weights) {
    st_model m;
    st_error err;
    ck_assert_int_eq(st_model_preset("tiny-llama", &m), 0);
    int zero = 0, four = 4;
    for (int mode = 1; mode <= 2; mode++) {
        st__xmodel x;
        st__xpart pt = {.B = 2, .T = 8, .tp = 2, .tr = 1, .sp = 1, .attn_rows = mode, .nchunks = 1, .l0 = &zero,
                        .l1 = &four, .first = 1, .last = 1};
        ck_assert_int_eq(st__xmodel_init(&x, &m, &pt, 3, &err), 0);
        int seen = 0;
        for (int i = 0; i < x.ntensors; i++) {
            const st__xtensor *t = &x.tensors[i];
            int whole = t->nrows == t->rows && t->ncols == t->cols;
            int want = !strcmp(t->name, "wo")                                                          ? 1
                       : !strcmp(t->name, "wq") || !strcmp(t->name, "wk") || !strcmp(t->name, "wv") ? mode == 2
                       : !strcmp(t->name, "w1") || !strcmp(t->name, "w2")                         ? 0
                                                                                                    : -1;
            if (want < 0) continue;
            ck_assert_int_eq(whole, want);
            seen++;
        }
        ck_assert_int_eq(seen, 4 * 6);
        st__xmodel_destroy(&x);
        pt.sp = 0;
        ck_assert_int_eq(st__xmodel_init(&x, &m, &pt, 3, &err), ST_EINVAL);
        ck_assert_ptr_nonnull(strstr(err.text, "sp=1"));
        pt.sp = 1, pt.B = 1;
        ck_assert_int_eq(st__xmodel_init(&x, &m, &pt, 3, &err), mode == 2 ? ST_EINVAL : 0);
        if (mode == 2) ck_assert_ptr_nonnull(strstr(err.text, "whole sequences"));
        else st__xmodel_destroy(&x);
    }
    /* 2 splits no head: tp=4 over tiny-llama's 2 kv heads holds them all, the activations sized for them */
    st__xmodel x;
    st__xpart pt = {.B = 4, .T = 8, .tp = 4, .tr = 1, .sp = 1, .attn_rows = 2, .nchunks = 1, .l0 = &zero, .l1 = &four,
                    .first = 1, .last = 1};
    ck_assert_int_eq(st__xmodel_init(&x, &m, &pt, 3, &err), 0);
    ck_assert_int_eq(x.kv_l, m.kv_heads);
    st__xmodel_destroy(&x);
    pt.attn_rows = 0; /* Megatron's tp slices them */
    ck_assert_int_eq(st__xmodel_init(&x, &m, &pt, 3, &err), ST_EINVAL);
    ck_assert_ptr_nonnull(strstr(err.text, "kv heads (2)"));
}
END_TEST

/* QKV split along its fused width (attn_rows 3): this rank's 1 / tp of wq's, wk's and wv's rows and of wo's
 * columns, even where tp exceeds the kv heads (tiny-llama's 2 under tp=4); widths tp does not divide are refused */
START_TEST(qkv_width_holds_shares) {
    st_model m;
    st_error err;
    ck_assert_int_eq(st_model_preset("tiny-llama", &m), 0);
    int zero = 0, four = 4;
    st__xmodel x;
    st__xpart pt = {.B = 2, .T = 8, .tp = 4, .tr = 3, .sp = 1, .attn_rows = 3, .nchunks = 1, .l0 = &zero,
                    .l1 = &four, .first = 1, .last = 1};
    ck_assert_int_eq(st__xmodel_init(&x, &m, &pt, 3, &err), 0);
    int64_t qd = m.heads * m.head_dim, kd = m.kv_heads * m.head_dim;
    int seen = 0;
    for (int i = 0; i < x.ntensors; i++) {
        const st__xtensor *t = &x.tensors[i];
        int kv = !strcmp(t->name, "wk") || !strcmp(t->name, "wv");
        int64_t want0 = !strcmp(t->name, "wq") ? 3 * qd / 4 : kv ? 3 * kd / 4 : -1;
        if (want0 >= 0) {
            ck_assert_int_eq(t->row0, want0);
            ck_assert_int_eq(t->nrows, t->rows / 4);
            seen++;
        }
        if (!strcmp(t->name, "wo")) {
            ck_assert_int_eq(t->col0, 3 * qd / 4);
            ck_assert_int_eq(t->ncols, qd / 4);
            seen++;
        }
    }
    ck_assert_int_eq(seen, 4 * 4);
    st__xmodel_destroy(&x);
    pt.tp = 128, pt.tr = 0, pt.B = 16; /* 128 does not divide the keys' width (2 kv heads of 32) */
    ck_assert_int_eq(st__xmodel_init(&x, &m, &pt, 3, &err), ST_EINVAL);
    ck_assert_ptr_nonnull(strstr(err.text, "fused width"));
}
END_TEST

/* an ILP plan's experts over the tp group (moe_rows): tp rank r holds its E / tp experts whole and the router's h / tp
 * columns; it needs sp */
START_TEST(moe_rows_hold_whole_experts) {
    st_model m;
    st_error err;
    ck_assert_int_eq(st_model_preset("tiny-moe", &m), 0);
    int zero = 0, four = 4;
    st__xmodel x;
    st__xpart pt = {.B = 2, .T = 8, .tp = 2, .tr = 1, .sp = 1, .moe_rows = 1, .router_h = 1, .nchunks = 1, .l0 = &zero,
                    .l1 = &four, .first = 1, .last = 1};
    ck_assert_int_eq(st__xmodel_init(&x, &m, &pt, 3, &err), 0);
    int experts = 0, routers = 0;
    for (int i = 0; i < x.ntensors; i++) {
        const st__xtensor *t = &x.tensors[i];
        if (t->expert >= 0) {
            ck_assert_int_ge(t->expert, m.experts / 2); /* the second half */
            ck_assert(t->nrows == t->rows && t->ncols == t->cols);
            experts++;
        }
        if (!strcmp(t->name, "router")) {
            ck_assert_int_eq(t->col0, m.hidden / 2);
            ck_assert_int_eq(t->ncols, m.hidden / 2);
            routers++;
        }
    }
    ck_assert_int_eq(experts, 4 * 3 * (int)m.experts / 2); /* w1, w3, w2 of each, in each of the 4 blocks */
    ck_assert_int_eq(routers, 4);
    st__xmodel_destroy(&x);
    /* the router whole on the rows (the ILP's 'b' on a batch axis) and, without moe_rows, the experts split by their
     * ffn (expert tensor parallelism) beside a router split by the hidden dimension */
    for (int k = 0; k < 2; k++) {
        pt.moe_rows = k == 0, pt.router_h = k == 1;
        ck_assert_int_eq(st__xmodel_init(&x, &m, &pt, 3, &err), 0);
        for (int i = 0; i < x.ntensors; i++) {
            const st__xtensor *t = &x.tensors[i];
            if (!strcmp(t->name, "router")) ck_assert_int_eq(t->ncols, k == 0 ? m.hidden : m.hidden / 2);
            if (t->expert >= 0 && k == 1) { /* every expert, this rank's half of its ffn */
                ck_assert_int_eq(!strcmp(t->name, "moe_w2") ? t->ncols : t->nrows, x.fe / 2);
                ck_assert_int_eq(!strcmp(t->name, "moe_w2") ? t->col0 : t->row0, x.fe / 2);
            }
        }
        ck_assert_int_eq(x.E_l, k == 0 ? m.experts / 2 : m.experts);
        st__xmodel_destroy(&x);
    }
    pt.moe_rows = 1, pt.router_h = 1;
    pt.sp = 0;
    ck_assert_int_eq(st__xmodel_init(&x, &m, &pt, 3, &err), ST_EINVAL);
    ck_assert_ptr_nonnull(strstr(err.text, "sp=1"));
}
END_TEST

/* an interleaved rank's two chunks (blocks 0 and 2 of 4) hold the full model's blocks at their
 * places, one flat buffer after the other; a forward through chunk 0 then chunk 1 on the last stage
 * gives a finite loss; sp refuses a micro-batch whose tokens do not split over tp */
START_TEST(chunks_hold_their_blocks) {
    st_model m;
    st_error err;
    ck_assert_int_eq(st_model_preset("tiny-gpt", &m), 0);
    st__xmodel full, two;
    int zero = 0, four = 4, l0[2] = {0, 2}, l1[2] = {1, 3};
    st__xpart pf = {.B = 1, .T = 8, .tp = 1, .nchunks = 1, .l0 = &zero, .l1 = &four, .first = 1, .last = 1};
    st__xpart pc = {.B = 1, .T = 8, .tp = 1, .nchunks = 2, .l0 = l0, .l1 = l1, .first = 1, .last = 1};
    ck_assert_int_eq(st__xmodel_init(&full, &m, &pf, 3, &err), 0);
    ck_assert_int_eq(st__xmodel_init(&two, &m, &pc, 3, &err), 0);
    ck_assert_int_eq(two.nl, 2);
    int seen[4] = {0};
    for (int i = 0; i < two.ntensors; i++) {
        const st__xtensor *t = &two.tensors[i];
        if (t->layer >= 0) seen[t->layer]++;
        for (int j = 0; j < full.ntensors; j++)
            if (full.tensors[j].layer == t->layer && !strcmp(full.tensors[j].name, t->name))
                ck_assert_int_eq(memcmp(two.params + t->off, full.params + full.tensors[j].off,
                                        (size_t)(t->nrows * t->ncols) * sizeof(float)), 0);
    }
    ck_assert(seen[0] > 0 && seen[1] == 0 && seen[2] == seen[0] && seen[3] == 0);
    ck_assert_ptr_eq(two.lp[1].wq, two.params + two.tensors[seen[0] + 2 + 2].off); /* wte, wpe, block 0, then wq */
    int32_t tok[9];
    st__xtokens(tok, 8, m.vocab, 1, 0, 0);
    const float *o = NULL;
    double loss = -1;
    st__xacts *a = st__xmodel_forward(&two, 0, tok, NULL, &o, &loss);
    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_nonnull(o);
    ck_assert_double_eq(loss, -1); /* chunk 0 holds no loss */
    st__xacts *b = st__xmodel_forward(&two, 1, tok, o, &o, &loss);
    ck_assert(b && loss > 0 && isfinite(loss));
    st__xacts_free(a);
    st__xacts_free(b);
    st__xmodel_destroy(&full);
    st__xmodel_destroy(&two);
    st__xpart ps = {.B = 1, .T = 7, .tp = 2, .sp = 1, .nchunks = 1, .l0 = &zero, .l1 = &four, .first = 1, .last = 1};
    ck_assert_int_eq(st__xmodel_init(&two, &m, &ps, 3, &err), ST_EINVAL);
    ck_assert_ptr_nonnull(strstr(err.text, "sp=1"));
    /* experts: ep must divide them; no biases */
    ck_assert_int_eq(st_model_preset("tiny-moe", &m), 0);
    st__xpart pe = {.B = 1, .T = 8, .tp = 1, .ep = 3, .nchunks = 1, .l0 = &zero, .l1 = &four, .first = 1, .last = 1};
    ck_assert_int_eq(st__xmodel_init(&two, &m, &pe, 3, &err), ST_EINVAL);
    ck_assert_ptr_nonnull(strstr(err.text, "ep=3 must divide the experts (4)"));
    pe.ep = 2, pe.er = 1, m.bias = 1;
    ck_assert_int_eq(st__xmodel_init(&two, &m, &pe, 3, &err), ST_EINVAL);
    m.bias = 0;
    ck_assert_int_eq(st__xmodel_init(&two, &m, &pe, 3, &err), 0);
    /* ep place 1 of 2 holds experts 2 and 3, after the dense tensors */
    ck_assert_int_eq(two.e0, 2);
    ck_assert_int_eq(two.tensors[two.ntensors - 1].expert, 3);
    ck_assert_str_eq(two.tensors[two.ntensors - 1].name, "moe_w2");
    st__xmodel_destroy(&two);
    /* recompute=op runs MoE blocks with Megatron's sharding, not the ILP's router split by the hidden size */
    st__xpart pr = {.B = 1, .T = 8, .tp = 2, .router_h = 1, .nchunks = 1, .l0 = &zero, .l1 = &four, .first = 1,
                    .last = 1, .recompute = 3};
    ck_assert_int_eq(st__xmodel_init(&two, &m, &pr, 3, &err), ST_EINVAL);
    ck_assert_str_eq(err.key, "recompute");
    ck_assert_ptr_nonnull(strstr(err.text, "operator-level split"));
}
END_TEST

/* selective, full and op recompute: the backward refuses until the recompute ran, which makes the
 * dropped activations again: the gradients are bit for bit those of the run that kept them (op: within fp32
 * rounding, its forward running QKV and fc1 part by part; wk's and w3's GEMMs alone again, the forward's own
 * calls; MoE blocks: their routing kept, the experts' GEMMs again, exec/model.c moe_redo_dev) */
/* the preset shrunk to 2 blocks of 16, and two seeded sequences of 6 tokens (and their targets) */
static void tiny_model(const char *preset, st_model *m, int32_t *tok) {
    ck_assert_int_eq(st_model_preset(preset, m), 0);
    m->layers = 2, m->hidden = 16, m->heads = 4, m->head_dim = 4, m->kv_heads = 2, m->vocab = 32, m->ffn = 24;
    if (m->experts) m->moe_ffn = 20;
    for (int b = 0; b < 2; b++) st__xtokens(tok + b * 7, 6, m->vocab, 5, 0, b);
}

static void recompute_restores(const char *preset) {
    st_model m;
    st_error err;
    int l0 = 0, l1 = 2;
    int32_t tok[2 * 7];
    tiny_model(preset, &m, tok);
    st__xmodel x[4];
    for (int r = 0; r < 4; r++) {
        st__xpart pt = {.B = 2, .T = 6, .tp = 1, .nchunks = 1, .l0 = &l0, .l1 = &l1, .first = 1, .last = 1,
                        .recompute = r};
        ck_assert_int_eq(st__xmodel_init(&x[r], &m, &pt, 42, &err), 0);
        double loss = 0;
        const float *o;
        st__xacts *a = st__xmodel_forward(&x[r], 0, tok, NULL, &o, &loss);
        ck_assert_ptr_nonnull(a);
        if (r) {
            ck_assert_int_eq(st__xmodel_backward(&x[r], a, NULL, 1.0, &o), ST_EINVAL);
            ck_assert_int_eq(st__xmodel_recompute(&x[r], a), 0);
        }
        ck_assert_int_eq(st__xmodel_recompute(&x[r], a), ST_EINVAL); /* nothing (more) to make */
        ck_assert_int_eq(st__xmodel_backward(&x[r], a, NULL, 1.0, &o), 0);
        st__xacts_free(a);
        if (r && r < 3) ck_assert_int_eq(memcmp(x[r].grads, x[0].grads, (size_t)x[0].nparams * sizeof(float)), 0);
        if (r == 3) { /* op runs QKV and fc1 part by part (torchtitan's linears), the others as one GEMM each
                       * (Megatron's): the same sums in another blocking, equal within fp32 rounding */
            double mx = 0, diff = 0;
            for (int64_t i = 0; i < x[0].nparams; i++) {
                mx = fmax(mx, fabs(x[0].grads[i]));
                diff = fmax(diff, fabs(x[r].grads[i] - x[0].grads[i]));
            }
            ck_assert_msg(mx > 0 && diff <= 1e-5 * mx, "recompute=op: gradients %g apart (largest %g)", diff, mx);
        }
    }
    for (int r = 0; r < 4; r++) st__xmodel_destroy(&x[r]);
}

/* Recompute block by block under the zero-bubble split: the input half makes each block's activations again in
 * the one block's room right before that block's backward (block 1's by st__xmodel_recompute, block 0's by the
 * backward itself), so the weight half, which runs after block 0 took the room, reads block 1's GEMM inputs from
 * the copies the input half kept (full and op; selective keeps them): the gradients of the split backward without
 * recompute, bit for bit (op: within fp32 rounding, fused_fwd). The copies' room (what the weight half frees):
 * under op it lacks the projection's input, which op's policy keeps (exec/model.c wkeep_floats; the lowering's
 * 12 s b h / t against full's 14, tests/test_lower.c): N x a x d floats a block fewer than under full. */
static void recompute_split(const char *preset) {
    st_model m;
    st_error err;
    int l0 = 0, l1 = 2;
    int32_t tok[2 * 7];
    tiny_model(preset, &m, tok);
    st__xmodel x[4];
    double freed[4] = {0}; /* the heap the weight half gives back (its weight gradients' list and copies) */
    for (int r = 0; r < 4; r++) {
        st__xpart pt = {.B = 2, .T = 6, .tp = 1, .nchunks = 1, .l0 = &l0, .l1 = &l1, .first = 1, .last = 1,
                        .recompute = r};
        ck_assert_int_eq(st__xmodel_init(&x[r], &m, &pt, 42, &err), 0);
        double loss = 0;
        const float *o;
        st__xacts *a = st__xmodel_forward(&x[r], 0, tok, NULL, &o, &loss);
        ck_assert_ptr_nonnull(a);
        if (r) {
            ck_assert_int_eq(st__xmodel_backward_input(&x[r], a, NULL, 1.0, &o), ST_EINVAL); /* not recomputed */
            ck_assert_int_eq(st__xmodel_recompute(&x[r], a), 0);
        }
        ck_assert_int_eq(st__xmodel_backward_input(&x[r], a, NULL, 1.0, &o), 0);
        double h0 = st__xheap_bytes();
        ck_assert_int_eq(st__xmodel_backward_weight(&x[r], a), 0);
        freed[r] = h0 - st__xheap_bytes();
        st__xacts_free(a);
        double mx = 0, diff = 0;
        for (int64_t i = 0; i < x[0].nparams; i++) {
            mx = fmax(mx, fabs(x[0].grads[i]));
            diff = fmax(diff, fabs(x[r].grads[i] - x[0].grads[i]));
        }
        if (r == 3) ck_assert_msg(mx > 0 && diff <= 1e-5 * mx, "%s op: gradients %g apart (of %g)", preset, diff, mx);
        else ck_assert_msg(diff == 0, "%s recompute %d: gradients %g apart (of %g)", preset, r, diff, mx);
    }
    /* the copies' room: full's less op's, the projection's inputs of both blocks (within malloc's rounding of
     * the two copies' allocations, 16 bytes each); 0 where the heap is not measured (st__xheap_bytes) */
    double ao = 2.0 * (double)(x[0].B * x[0].T * x[0].a * x[0].d) * sizeof(float);
    if (freed[2] > 0)
        ck_assert_msg(fabs(freed[2] - freed[3] - ao) <= 32, "%s: the weight half frees %.0f bytes under full, %.0f "
                      "under op; want %.0f apart", preset, freed[2], freed[3], ao);
    for (int r = 0; r < 4; r++) st__xmodel_destroy(&x[r]);
}

/* The zero-bubble split on a rank that holds the whole model in two chunks (blocks 0 and 1, as zbv's
 * first rank holds its V's ends), over two micro-batches of one sequence: both input halves (each
 * chunk's, the last first, passing the input gradient down), then both weight halves, give the fused
 * backward's input gradients bit for bit and its weight gradients bit for bit (the same GEMMs adding
 * in the same micro-batch order), but for a tied embedding, whose lookup's and output layer's parts
 * arrive in another order (within rounding). The halves refuse to run out of turn. */
static void split_matches_fused(const char *preset) {
    st_model m;
    st_error err;
    int l0[2] = {0, 1}, l1[2] = {1, 2};
    int32_t tok[2 * 7];
    tiny_model(preset, &m, tok);
    st__xmodel x[2];
    st__xacts *a[2][2];
    const float *o, *din[2];
    float keep[2][16 * 6]; /* the chunk-0 input gradient of each micro-batch, fused (Ns x h = 6 x 16) */
    for (int s = 0; s < 2; s++) {
        st__xpart pt = {.B = 1, .T = 6, .tp = 1, .nchunks = 2, .l0 = l0, .l1 = l1, .first = 1, .last = 1};
        ck_assert_int_eq(st__xmodel_init(&x[s], &m, &pt, 42, &err), 0);
        for (int mb = 0; mb < 2; mb++) {
            double loss = 0;
            ck_assert_ptr_nonnull(a[mb][0] = st__xmodel_forward(&x[s], 0, tok + 7 * mb, NULL, &o, &loss));
            ck_assert_ptr_nonnull(a[mb][1] = st__xmodel_forward(&x[s], 1, tok + 7 * mb, o, &o, &loss));
        }
        for (int mb = 0; mb < 2; mb++) {
            if (s == 0) {
                ck_assert_int_eq(st__xmodel_backward(&x[s], a[mb][1], NULL, 0.5, &din[mb]), 0);
                memcpy(keep[mb], din[mb], sizeof keep[mb]);
                ck_assert_int_eq(st__xmodel_backward(&x[s], a[mb][0], keep[mb], 0.5, &o), 0);
                continue;
            }
            ck_assert_int_eq(st__xmodel_backward_weight(&x[s], a[mb][1]), ST_EINVAL); /* no input half yet */
            ck_assert_int_eq(st__xmodel_backward_input(&x[s], a[mb][1], NULL, 0.5, &din[mb]), 0);
            ck_assert_int_eq(memcmp(din[mb], keep[mb], sizeof keep[mb]), 0);
            ck_assert_int_eq(st__xmodel_backward_input(&x[s], a[mb][1], NULL, 0.5, &o), ST_EINVAL); /* ran */
            ck_assert_int_eq(st__xmodel_backward_input(&x[s], a[mb][0], keep[mb], 0.5, &o), 0);
        }
        for (int mb = 0; s == 1 && mb < 2; mb++) {
            ck_assert_int_eq(st__xmodel_backward_weight(&x[s], a[mb][1]), 0);
            ck_assert_int_eq(st__xmodel_backward_weight(&x[s], a[mb][0]), 0);
            ck_assert_int_eq(st__xmodel_backward_weight(&x[s], a[mb][0]), ST_EINVAL); /* done */
        }
        for (int mb = 0; mb < 2; mb++) st__xacts_free(a[mb][0]), st__xacts_free(a[mb][1]);
    }
    for (int i = 0; i < x[0].ntensors; i++) {
        const st__xtensor *t = &x[0].tensors[i];
        int64_t n = t->nrows * t->ncols;
        double d = maxdiff(x[0].grads + t->off, x[1].grads + t->off, n), big = 0;
        for (int64_t e = 0; e < n; e++) big = fmax(big, fabs((double)x[0].grads[t->off + e]));
        ck_assert_msg(big > 0 || !strcmp(t->name, "bk"), "%s %s layer %d: no gradient", preset, t->name, t->layer);
        if (x[0].tied && !strcmp(t->name, "wte"))
            ck_assert_msg(d <= 1e-6 * big, "%s wte: %g of %g", preset, d, big);
        else
            ck_assert_msg(d == 0, "%s %s layer %d: %g", preset, t->name, t->layer, d);
    }
    st__xmodel_destroy(&x[0]);
    st__xmodel_destroy(&x[1]);
}

START_TEST(split_backward_gpt) { split_matches_fused("tiny-gpt"); }
END_TEST

START_TEST(split_backward_llama) { split_matches_fused("tiny-llama"); }
END_TEST

START_TEST(split_backward_moe) { split_matches_fused("tiny-moe"); }
END_TEST

START_TEST(recompute_dense) {
    recompute_restores("tiny-llama");
    recompute_restores("tiny-gpt");
}
END_TEST

START_TEST(recompute_moe) { recompute_restores("tiny-moe"); }
END_TEST

START_TEST(recompute_split_backward) {
    recompute_split("tiny-llama");
    recompute_split("tiny-gpt");
    recompute_split("tiny-moe"); /* (its MLP's backward whole in the input half) */
}
END_TEST

/* context parallelism's kernel: a chunk of queries at positions q0 .. q0 + Tq - 1 against the keys up
 * to its end gives, bit for bit, those rows of the whole sequence's attention (output and
 * probabilities), and its backward the whole backward's gradients when only those rows' output
 * gradients are non-zero; a model whose sequence does not split into 2 cp chunks, or (a2a) whose
 * heads do not split over cp, is refused */
START_TEST(attention_chunk) {
    enum { T = 8, HQ = 2, HKV = 1, D = 4, Q0 = 3, TQ = 2, TK = Q0 + TQ };
    float q[T * HQ * D], k[T * HKV * D], v[T * HKV * D], o[T * HQ * D], p[HQ * T * T], oc[TQ * HQ * D];
    float pc[HQ * TQ * TK], dout[T * HQ * D] = {0}, dq[T * HQ * D] = {0}, dk[T * HKV * D] = {0};
    float dv[T * HKV * D] = {0}, dqc[TQ * HQ * D] = {0}, dkc[T * HKV * D] = {0}, dvc[T * HKV * D] = {0};
    fill(q, T * HQ * D, 11), fill(k, T * HKV * D, 12), fill(v, T * HKV * D, 13);
    fill(dout + Q0 * HQ * D, TQ * HQ * D, 14);
    st__xattn_fwd(o, p, q, k, v, 1, T, HQ, HKV, D);
    st__xattn_fwd_at(oc, pc, q + Q0 * HQ * D, k, v, TQ, TK, Q0, HQ, HKV, D);
    ck_assert_int_eq(memcmp(oc, o + Q0 * HQ * D, sizeof oc), 0);
    for (int h = 0; h < HQ; h++)
        for (int t = 0; t < TQ; t++)
            ck_assert_int_eq(memcmp(pc + (h * TQ + t) * TK, p + (h * T + Q0 + t) * T, TK * sizeof(float)), 0);
    st__xattn_bwd(dq, dk, dv, dout, p, q, k, v, 1, T, HQ, HKV, D);
    st__xattn_bwd_at(dqc, dkc, dvc, dout + Q0 * HQ * D, pc, q + Q0 * HQ * D, k, v, TQ, TK, Q0, HQ, HKV, D);
    ck_assert_int_eq(memcmp(dqc, dq + Q0 * HQ * D, sizeof dqc), 0);
    ck_assert_int_eq(memcmp(dkc, dk, sizeof dkc), 0);
    ck_assert_int_eq(memcmp(dvc, dv, sizeof dvc), 0);
    ck_assert(dk[0] != 0 && dkc[(TK - 1) * HKV * D] != 0 && dkc[TK * HKV * D] == 0); /* keys past the chunk: none */
    st_model m;
    st_error err;
    int l0 = 0, l1 = 2;
    int32_t tok[2 * 7];
    tiny_model("tiny-llama", &m, tok);
    st__xmodel x;
    st__xpart pt = {.B = 2, .T = 6, .tp = 1, .nchunks = 1, .l0 = &l0, .l1 = &l1, .first = 1, .last = 1, .cp = 2};
    ck_assert_int_eq(st__xmodel_init(&x, &m, &pt, 42, &err), ST_EINVAL);
    ck_assert_ptr_nonnull(strstr(err.text, "cp=2 needs the sequence (6) divisible by 2 x cp"));
    pt.T = 8;
    ck_assert_int_eq(st__xmodel_init(&x, &m, &pt, 42, &err), 0);
    ck_assert_int_eq(x.T, 4); /* this rank's tokens of each sequence */
    ck_assert_int_eq(x.Tg, 8);
    st__xmodel_destroy(&x);
    pt.cp = 4, pt.cp_comm = ST_CP_A2A; /* 2 kv heads do not split over 4 */
    ck_assert_int_eq(st__xmodel_init(&x, &m, &pt, 42, &err), ST_EINVAL);
    ck_assert_ptr_nonnull(strstr(err.text, "cp_comm=a2a needs tp x cp (4) to divide the heads (4) and kv heads (2)"));
}
END_TEST

/* ZeRO-3's pieces: a model without flat buffers, each unit's tensors pointed at buffers of its own
 * (filled with st__xmodel_init_values) while it runs, unit by unit forward and backward, computes the
 * whole model's loss and gradients bit for bit; a unit out of order, or a backward before the
 * forward's end, is refused. Tied GPT (the output layer reads the embedding's unit) and Llama. With
 * recompute rec (1 selective, 2 full, 3 op) each block's backward waits for its unit's recompute, which
 * refuses the output layer and a second run; split, the input halves unit by unit, then the weight
 * halves in the same order (refused before their input half, out of order, twice) give the same
 * gradients (bit for bit but for the tied embedding, whose lookup's and output layer's parts add in
 * another order: within rounding). */
static void units_match_whole(const char *preset, int rec, int split) {
    st_model m;
    st_error err;
    int l0 = 0, l1 = 2;
    int32_t tok[2 * 7];
    tiny_model(preset, &m, tok);
    st__xmodel w, z;
    st__xpart pt = {.B = 2, .T = 6, .tp = 1, .nchunks = 1, .l0 = &l0, .l1 = &l1, .first = 1, .last = 1};
    ck_assert_int_eq(st__xmodel_init(&w, &m, &pt, 42, &err), 0);
    pt.sharded = 1, pt.recompute = rec;
    ck_assert_int_eq(st__xmodel_init(&z, &m, &pt, 42, &err), 0);
    ck_assert_ptr_null(z.params);
    ck_assert_ptr_null(z.lp[0].wq);
    int64_t n = z.nparams;
    float *p = malloc((size_t)n * sizeof *p), *g = calloc((size_t)n, sizeof *g);
    ck_assert_ptr_nonnull(p);
    ck_assert_ptr_nonnull(g);
    st__xmodel_init_values(&z, 42, p, 0, n);
    ck_assert_int_eq(memcmp(p, w.params, (size_t)n * sizeof *p), 0);
    /* each unit's range of the flat layout: the embedding, the blocks, the output layer */
    int64_t lo[4] = {0}, hi[4] = {0};
    for (int i = 0; i < z.ntensors; i++) {
        const st__xtensor *t = &z.tensors[i];
        int u = t->layer >= 0 ? t->layer + 1 : i == 0 || !strcmp(t->name, "wpe") ? 0 : 3;
        if (hi[u] == 0) lo[u] = t->off;
        hi[u] = t->off + t->nrows * t->ncols;
    }
    double loss = 0, lw = 0;
    const float *o = NULL, *din = NULL;
    int last = 0;
    st__xacts *a = st__xmodel_forward_begin(&z, 0, tok, NULL), *b = st__xmodel_forward(&w, 0, tok, NULL, &o, &lw);
    ck_assert_ptr_nonnull(a);
    ck_assert_int_eq(st__xmodel_forward_unit(&z, a, 0, &o, &loss, &last), ST_EINVAL); /* the embedding first */
    for (int u = 0; u < 4; u++) {
        int64_t ulo = u == 3 ? 0 : lo[u]; /* tied: the output layer reads the embedding too */
        st__xmodel_point(&z, 0, p + ulo, ulo, hi[u]);
        ck_assert_int_eq(st__xmodel_backward_unit(&z, a, u == 3 ? 2 : u - 1, NULL, 1.0, &din, &last), ST_EINVAL);
        ck_assert_int_eq(st__xmodel_forward_unit(&z, a, u - 1, &o, &loss, &last), 0);
        ck_assert_int_eq(last, u == 3);
        st__xmodel_point(&z, 0, NULL, ulo, hi[u]);
        ck_assert_ptr_null(z.lp[0].wq);
    }
    ck_assert(loss == lw);
    ck_assert_int_eq(st__xmodel_backward(&w, b, NULL, 1.0, &o), 0);
    int (*bwd)(st__xmodel *, st__xacts *, int, const float *, double, const float **, int *) =
        split ? st__xmodel_backward_input_unit : st__xmodel_backward_unit;
    ck_assert_int_eq(st__xmodel_backward_weight_unit(&z, a, 2, &last), ST_EINVAL); /* no input half yet */
    for (int u = 3; u >= 0; u--) {
        int64_t ulo = u == 3 ? 0 : lo[u];
        st__xmodel_point(&z, 0, p + ulo, ulo, hi[u]);
        st__xmodel_point(&z, 1, g + ulo, ulo, hi[u]);
        if (u == 3) {
            ck_assert_int_eq(bwd(&z, a, 1, NULL, 1.0, &din, &last), ST_EINVAL); /* the output layer first */
            ck_assert_int_eq(st__xmodel_recompute_unit(&z, a, 2), ST_EINVAL);   /* not a block */
            ck_assert_int_eq(bwd(&z, a, 2, NULL, 1.0, &din, &last), 0);
        }
        if (u == 3 && split) ck_assert_int_eq(st__xmodel_backward_unit(&z, a, 1, NULL, 1.0, &din, &last), ST_EINVAL);
        if (rec && u > 0 && u < 3) {
            ck_assert_int_eq(bwd(&z, a, u - 1, NULL, 1.0, &din, &last), ST_EINVAL); /* not recomputed yet */
            ck_assert_int_eq(st__xmodel_recompute_unit(&z, a, u - 1), 0);
            ck_assert_int_eq(bwd(&z, a, u - 1, NULL, 1.0, &din, &last), 0);
            ck_assert_int_eq(st__xmodel_recompute_unit(&z, a, u - 1), ST_EINVAL); /* its backward ran */
        } else if (u < 3) {
            ck_assert_int_eq(st__xmodel_recompute_unit(&z, a, u - 1), ST_EINVAL); /* nothing dropped, or no block */
            ck_assert_int_eq(bwd(&z, a, u - 1, NULL, 1.0, &din, &last), 0);
        }
        ck_assert_int_eq(last, u == 0);
    }
    for (int u = 3; split && u >= 0; u--) {
        ck_assert_int_eq(st__xmodel_backward_weight_unit(&z, a, u == 3 ? 0 : u - 2, &last), ST_EINVAL); /* order */
        ck_assert_int_eq(st__xmodel_backward_weight_unit(&z, a, u == 3 ? 2 : u - 1, &last), 0);
        ck_assert_int_eq(last, u == 0);
    }
    if (split) ck_assert_int_eq(st__xmodel_backward_weight_unit(&z, a, -1, &last), ST_EINVAL); /* done */
    for (int64_t e = 0; e < n; e++)
        if (split && m.tied_embeddings) ck_assert(fabsf(g[e] - w.grads[e]) <= 1e-6f * fabsf(w.grads[e]) + 1e-9f);
        else ck_assert(g[e] == w.grads[e]);
    st__xacts_free(a);
    st__xacts_free(b);
    free(p);
    free(g);
    st__xmodel_destroy(&w);
    st__xmodel_destroy(&z);
}

START_TEST(units_gpt) { units_match_whole("tiny-gpt", 0, 0); }
END_TEST

START_TEST(units_llama) { units_match_whole("tiny-llama", 0, 0); }
END_TEST

START_TEST(units_recompute) {
    units_match_whole("tiny-gpt", 1, 0);
    units_match_whole("tiny-llama", 2, 0);
    units_match_whole("tiny-gpt", 3, 0);
}
END_TEST

START_TEST(units_split) {
    units_match_whole("tiny-gpt", 0, 1);
    units_match_whole("tiny-llama", 2, 1);
    units_match_whole("tiny-llama", 3, 1);
}
END_TEST

/* the model runs its kernels through the backend it was given: a backend that counts its calls
 * and runs the CPU's sees every kind the Llama blocks use (GEMMs, RMSNorm, SwiGLU, rotary, attention)
 * and gives the CPU backend's gradients bit for bit */
static int calls[12];
static void c_mm_fwd(float *o, const float *i, const float *w, const float *b, int64_t N, int64_t C, int64_t OC,
                     int acc) {
    calls[0]++, st__xbackend_cpu.mm_fwd(o, i, w, b, N, C, OC, acc);
}
static void c_mm_bwd(float *di, float *dw, float *db, const float *d, const float *i, const float *w, int64_t N,
                     int64_t C, int64_t OC) {
    calls[1]++, st__xbackend_cpu.mm_bwd(di, dw, db, d, i, w, N, C, OC);
}
static void c_norm_fwd(float *o, float *m, float *r, const float *i, const float *w, const float *b, int64_t N,
                       int64_t C) {
    calls[2]++, st__xbackend_cpu.norm_fwd(o, m, r, i, w, b, N, C);
}
static void c_norm_bwd(float *di, float *dw, float *db, const float *d, const float *i, const float *w,
                       const float *m, const float *r, int64_t N, int64_t C) {
    calls[3]++, st__xbackend_cpu.norm_bwd(di, dw, db, d, i, w, m, r, N, C);
}
static void c_swiglu_fwd(float *o, const float *a, const float *b, int64_t n) {
    calls[6]++, st__xbackend_cpu.swiglu_fwd(o, a, b, n);
}
static void c_swiglu_bwd(float *da, float *db, const float *a, const float *b, const float *d, int64_t n) {
    calls[7]++, st__xbackend_cpu.swiglu_bwd(da, db, a, b, d, n);
}
static void c_rope(float *x, int64_t N, int64_t T, int64_t h, int64_t d, int64_t s, int sign) {
    calls[8]++, st__xbackend_cpu.rope(x, N, T, h, d, s, sign);
}
static void c_attn_fwd(float *o, float *p, const float *q, const float *k, const float *v, int64_t B, int64_t T,
                       int64_t hq, int64_t hkv, int64_t d) {
    calls[9]++, st__xbackend_cpu.attn_fwd(o, p, q, k, v, B, T, hq, hkv, d);
}
static void c_attn_bwd(float *dq, float *dk, float *dv, const float *d, const float *p, const float *q,
                       const float *k, const float *v, int64_t B, int64_t T, int64_t hq, int64_t hkv, int64_t hd) {
    calls[10]++, st__xbackend_cpu.attn_bwd(dq, dk, dv, d, p, q, k, v, B, T, hq, hkv, hd);
}

/* the tensors' memory through the backend too: the blocks it handed out (live), and the copies */
static float *live[64];
static int nlive, nallocs, ncopies;
static float *c_mem_alloc(int64_t n) {
    float *p = st__xbackend_cpu.mem_alloc(n);
    ck_assert_int_lt(nlive, 64);
    if (p) live[nlive++] = p, nallocs++;
    return p;
}
static void c_mem_free(float *p) {
    int i = 0;
    if (!p) return;
    while (i < nlive && live[i] != p) i++;
    ck_assert_int_lt(i, nlive); /* only what it handed out */
    live[i] = live[--nlive];
    st__xbackend_cpu.mem_free(p);
}
static void c_mem_copy(float *d, const float *s, int64_t n) { ncopies++, st__xbackend_cpu.mem_copy(d, s, n); }
static int is_live(const float *p) {
    for (int i = 0; i < nlive; i++)
        if (live[i] == p) return 1;
    return 0;
}

START_TEST(kernels_through_the_backend) {
    st__xbackend counting = st__xbackend_cpu;
    counting.mem_alloc = c_mem_alloc, counting.mem_free = c_mem_free, counting.mem_copy = c_mem_copy;
    counting.name = "counting", counting.mm_fwd = c_mm_fwd, counting.mm_bwd = c_mm_bwd;
    counting.norm_fwd = c_norm_fwd, counting.norm_bwd = c_norm_bwd, counting.swiglu_fwd = c_swiglu_fwd;
    counting.swiglu_bwd = c_swiglu_bwd, counting.rope = c_rope, counting.attn_fwd = c_attn_fwd;
    counting.attn_bwd = c_attn_bwd;
    st_model m;
    st_error err;
    int l0 = 0, l1 = 2;
    int32_t tok[2 * 7];
    tiny_model("tiny-llama", &m, tok);
    st__xmodel x[2];
    for (int r = 0; r < 2; r++) {
        st__xpart pt = {.B = 2, .T = 6, .tp = 1, .nchunks = 1, .l0 = &l0, .l1 = &l1, .first = 1, .last = 1,
                        .be = r ? &counting : NULL};
        ck_assert_int_eq(st__xmodel_init(&x[r], &m, &pt, 42, &err), 0);
        ck_assert_ptr_eq(x[r].be, r ? &counting : &st__xbackend_cpu);
        /* the weights, their gradients and the backward's scratch are the backend's; the weights uploaded */
        if (r) ck_assert(nlive == 3 && is_live(x[r].params) && is_live(x[r].grads) && is_live(x[r].work) && ncopies);
        double loss = 0;
        const float *o;
        st__xacts *a = st__xmodel_forward(&x[r], 0, tok, NULL, &o, &loss);
        ck_assert_ptr_nonnull(a);
        if (r) ck_assert_int_gt(nlive, 3); /* the activations */
        ck_assert_int_eq(st__xmodel_backward(&x[r], a, NULL, 1.0, &o), 0);
        st__xacts_free(a);
        if (r) ck_assert_int_eq(nlive, 3);
    }
    /* per block: the lowering's 4 GEMM operators (qkv, the projection, fc1 with SwiGLU's two halves,
     * fc2), one call each forward (recompute=op alone runs wq, wk, wv and w1, w3 apart: exec/model.c,
     * fused_fwd) and backward, 2 norms, 2 rotations, 1 attention; the final norm and the output layer */
    ck_assert_int_eq(calls[0], 2 * 4 + 1);
    ck_assert_int_eq(calls[1], 2 * 4 + 1);
    ck_assert_int_eq(calls[2], 2 * 2 + 1);
    ck_assert_int_eq(calls[3], 2 * 2 + 1);
    ck_assert_int_eq(calls[6], 2);
    ck_assert_int_eq(calls[7], 2);
    ck_assert_int_eq(calls[8], 2 * 4);
    ck_assert_int_eq(calls[9], 2);
    ck_assert_int_eq(calls[10], 2);
    ck_assert_int_eq(memcmp(x[1].grads, x[0].grads, (size_t)x[0].nparams * sizeof(float)), 0);
    for (int r = 0; r < 2; r++) st__xmodel_destroy(&x[r]);
    ck_assert_int_eq(nlive, 0); /* every block given back */
    ck_assert_int_gt(nallocs, 3);
}
END_TEST

/* the cpu backend's tensor memory: zeroed blocks; a column block of a row-major matrix copied with
 * its pitches, the floats outside it untouched; a copy and a zeroing of n floats */
START_TEST(cpu_memory_ops) {
    const st__xbackend *be = &st__xbackend_cpu;
    float *m = be->mem_alloc(15), *d = be->mem_alloc(8);
    ck_assert(m && d);
    for (int i = 0; i < 15; i++) ck_assert(m[i] == 0.0f), m[i] = (float)i; /* [3 x 5]: m[r][c] = 5r + c */
    for (int i = 0; i < 8; i++) d[i] = -1.0f;
    be->mem_copy2d(d, 3, m + 1, 5, 2, 3); /* columns 1 and 2 into [3 x 3]'s first two columns (8 floats) */
    const float want[8] = {1, 2, -1, 6, 7, -1, 11, 12};
    for (int i = 0; i < 8; i++) ck_assert_float_eq(d[i], want[i]);
    be->mem_copy(d, m + 10, 5);
    be->mem_zero(d + 5, 3);
    const float want2[8] = {10, 11, 12, 13, 14, 0, 0, 0};
    for (int i = 0; i < 8; i++) ck_assert_float_eq(d[i], want2[i]);
    be->mem_free(m);
    be->mem_free(d);
}
END_TEST

/* what strata run --compare reads: the GEMMs' clock advances only in the GEMMs, and the heap in use
 * grows by what is allocated and touched (and falls back when it is freed) */
START_TEST(gemm_clock_and_heap) {
    enum { N = 64, C = 64, OC = 64 };
    static float inp[N * C], w[OC * C], out[N * OC];
    fill(inp, N * C, 1), fill(w, OC * C, 2);
    double g0 = st__xkernels_gemm_s;
    st__xnorm_fwd(out, NULL, NULL, inp, w, NULL, 0, C); /* no GEMM: no time */
    ck_assert_double_eq(st__xkernels_gemm_s, g0);
    st__xmm_fwd(out, inp, w, NULL, N, C, OC, 0);
    ck_assert_double_gt(st__xkernels_gemm_s, g0);
    double h0 = st__xheap_bytes();
    char *big = malloc(8 << 20);
    ck_assert_ptr_nonnull(big);
    for (int i = 0; i < 8 << 20; i += 4096) big[i] = (char)i;
    double h1 = st__xheap_bytes();
    free(big);
#if defined(__SANITIZE_ADDRESS__) || (defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33)))
    ck_assert_double_ge(h1 - h0, 8 << 20);
    ck_assert_double_lt(st__xheap_bytes(), h1);
#else
    ck_assert_double_eq(h1, 0);
#endif
}
END_TEST

/* the run delay is the second field of /proc/thread-self/schedstat in seconds (bracketed by two
 * calls: it only grows; the first field, the time on a CPU, would fall outside), and 0 where the
 * kernel does not say */
START_TEST(run_delay_from_schedstat) {
    double a = st__xrun_delay_s();
    FILE *f = fopen("/proc/thread-self/schedstat", "r");
    unsigned long long on_cpu_ns = 0, waited_ns = 0;
    int n = f ? fscanf(f, "%llu %llu", &on_cpu_ns, &waited_ns) : 0;
    if (f) fclose(f);
    double b = st__xrun_delay_s();
    ck_assert_double_ge(a, 0);
    ck_assert_double_ge(b, a);
    if (n == 2) {
        ck_assert_double_le(a, (double)waited_ns * 1e-9);
        ck_assert_double_ge(b, (double)waited_ns * 1e-9);
    } else {
        ck_assert_double_eq(b, 0);
    }
}
END_TEST

/* STRATA_EXEC_FAULT's syntax: RANK:INSTRUCTION:die|crash|hang, digits only, nothing after; empty
 * or unset is no fault */
START_TEST(fault_hook_parse) {
    st__xfault f;
    st_error err = {0};
    ck_assert_int_eq(st__xfault_parse(NULL, &f, &err), 0);
    ck_assert_int_eq(f.kind, ST__XFAULT_NONE);
    ck_assert_int_eq(st__xfault_parse("", &f, &err), 0);
    ck_assert_int_eq(f.kind, ST__XFAULT_NONE);
    ck_assert_int_eq(st__xfault_parse("3:17:hang", &f, &err), 0);
    ck_assert_int_eq(f.kind, ST__XFAULT_HANG);
    ck_assert_int_eq(f.rank, 3);
    ck_assert_int_eq(f.ins, 17);
    ck_assert_int_eq(st__xfault_parse("0:0:die", &f, &err), 0);
    ck_assert_int_eq(f.kind, ST__XFAULT_DIE);
    ck_assert_int_eq(st__xfault_parse("12:5:crash", &f, &err), 0);
    ck_assert_int_eq(f.kind, ST__XFAULT_CRASH);
    ck_assert_int_eq(f.rank, 12);
    const char *bad[] = {"x", "1", "1:2", "1:2:", "1:2:dies", "1:2:die ", " 1:2:die", "-1:2:die", "1:-2:die",
                         "+1:2:die", "1:2:hang:4", "99999999999:0:die", "0:99999999999:die", ":2:die", "1::die"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        f.kind = ST__XFAULT_HANG;
        ck_assert_msg(st__xfault_parse(bad[i], &f, &err) == ST_EINVAL, "accepted '%s'", bad[i]);
        ck_assert_str_eq(err.key, "STRATA_EXEC_FAULT");
        ck_assert_int_eq(f.kind, ST__XFAULT_NONE);
    }
}
END_TEST

/* The per-operator runtime's resharding (exec/opexec.c, st__xreshard_mem) against the full tensor: on a 2 x 4
 * mesh and on 8 devices in a line, every layout of a [4 x 8 x 6] tensor (per axis a dimension, replicated, or
 * partial sums: each device's share a power of two of the whole, exact) into every layout without partial
 * sums: each device must hold exactly its block of the tensor (a dimension split by both axes, axis 0 outer). */
START_TEST(opexec_reshard_blocks) {
    const int64_t dim[3] = {4, 8, 6};
    float full[4 * 8 * 6];
    fill(full, 4 * 8 * 6, 7);
    for (int shape = 0; shape < 2; shape++) {
        int size[2] = {shape ? 8 : 2, shape ? 1 : 4}, naxes = shape ? 1 : 2, n = size[0] * size[1], checked = 0;
        for (int f = 0; f < 25; f++) /* per axis: replicated, dimension 0, 1, 2, partial */
            for (int t = 0; t < 16; t++) {
                st_layout from = {{-1, -1}, 0}, to = {{-1, -1}, 0};
                for (int a = 0; a < naxes; a++) {
                    int kf = a ? f / 5 : f % 5, kt = a ? t / 4 : t % 4;
                    if (kf == 4) from.partial |= (unsigned char)(1u << a);
                    else from.ax[a] = (signed char)(kf - 1);
                    to.ax[a] = (signed char)(kt - 1);
                }
                if (naxes == 1 && (f >= 5 || t >= 4)) continue;
                /* every device's block under `from`, its share of the partial sums */
                float *src[8] = {0}, *dst[8] = {0};
                int ok = 1;
                for (int r = 0; r < n && ok; r++) {
                    int c[2] = {naxes > 1 ? r / size[1] : r, naxes > 1 ? r % size[1] : 0};
                    int64_t lo[3], len[3] = {4, 8, 6};
                    double share = 1;
                    for (int d = 0; d < 3; d++) {
                        int64_t div = 1, idx = 0;
                        for (int a = 0; a < naxes; a++)
                            if (from.ax[a] == d) div *= size[a], idx = idx * size[a] + c[a];
                        ok &= dim[d] % div == 0;
                        len[d] = dim[d] / div, lo[d] = idx * len[d];
                    }
                    for (int a = 0; a < naxes; a++)
                        if (from.partial & (1u << a)) share /= size[a];
                    if (!ok) break;
                    src[r] = malloc((size_t)(len[0] * len[1] * len[2]) * sizeof(float));
                    for (int64_t i = 0; i < len[0]; i++)
                        for (int64_t j = 0; j < len[1]; j++)
                            for (int64_t k = 0; k < len[2]; k++)
                                src[r][(i * len[1] + j) * len[2] + k] =
                                    (float)(full[((lo[0] + i) * 8 + lo[1] + j) * 6 + lo[2] + k] * share);
                }
                int rc = ok ? st__xreshard_mem(size, naxes, dim, 3, from, to, src, dst) : ST_EINVAL;
                if (ok && rc != ST_EINVAL) {
                    ck_assert_int_eq(rc, 0);
                    for (int r = 0; r < n; r++) {
                        int c[2] = {naxes > 1 ? r / size[1] : r, naxes > 1 ? r % size[1] : 0};
                        int64_t lo[3], len[3];
                        for (int d = 0; d < 3; d++) {
                            int64_t div = 1, idx = 0;
                            for (int a = 0; a < naxes; a++)
                                if (to.ax[a] == d) div *= size[a], idx = idx * size[a] + c[a];
                            len[d] = dim[d] / div, lo[d] = idx * len[d];
                        }
                        for (int64_t i = 0; i < len[0]; i++)
                            for (int64_t j = 0; j < len[1]; j++)
                                for (int64_t k = 0; k < len[2]; k++)
                                    ck_assert_float_eq_tol(dst[r][(i * len[1] + j) * len[2] + k],
                                                           full[((lo[0] + i) * 8 + lo[1] + j) * 6 + lo[2] + k], 1e-6);
                    }
                    checked++;
                }
                for (int r = 0; r < n; r++) free(src[r]), free(dst[r]);
            }
        ck_assert_int_ge(checked, (shape ? 6 : 150)); /* the pairs whose layouts divide the tensor */
    }
}
END_TEST

Suite *suite_exec_cpu(void) {
    Suite *s = suite_create("exec_cpu");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, gemm_blas_vs_reference);
    tcase_add_test(tc, opexec_reshard_blocks);
    tcase_add_test(tc, attention_causal);
    tcase_add_test(tc, rope_inverse);
    tcase_add_test(tc, adam_first_step);
    tcase_add_test(tc, tokens_seeded);
    tcase_add_test(tc, gradients_gpt);
    tcase_add_test(tc, gradients_llama);
    tcase_add_test(tc, gradients_moe);
    tcase_add_test(tc, gradients_moe_capacity);
    tcase_add_test(tc, shards_slice_the_full_tensors);
    tcase_add_test(tc, fused_gemms_match_separate);
    tcase_add_test(tc, rows_hold_whole_weights);
    tcase_add_test(tc, qkv_width_holds_shares);
    tcase_add_test(tc, moe_rows_hold_whole_experts);
    tcase_add_test(tc, chunks_hold_their_blocks);
    tcase_add_test(tc, recompute_dense);
    tcase_add_test(tc, recompute_moe);
    tcase_add_test(tc, recompute_split_backward);
    tcase_add_test(tc, split_backward_gpt);
    tcase_add_test(tc, split_backward_llama);
    tcase_add_test(tc, split_backward_moe);
    tcase_add_test(tc, attention_chunk);
    tcase_add_test(tc, units_gpt);
    tcase_add_test(tc, units_llama);
    tcase_add_test(tc, units_recompute);
    tcase_add_test(tc, units_split);
    tcase_add_test(tc, gemm_clock_and_heap);
    tcase_add_test(tc, kernels_through_the_backend);
    tcase_add_test(tc, cpu_memory_ops);
    tcase_add_test(tc, fault_hook_parse);
    tcase_add_test(tc, run_delay_from_schedstat);
    suite_add_tcase(s, tc);
    return s;
}
