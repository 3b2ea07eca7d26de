/* test_exec_cuda.c: the cuda backend's own kernels (exec/kernels_cuda.cu) without a GPU: each
 * launcher's launch runs the kernel's host version (st__xkc_host_table, the same per-thread code the
 * GPU runs) over the launch's grid, and its outputs must equal the CPU kernels' (exec/kernels.c) on
 * the same inputs: norms with and without bias, GELU and ReLU, SwiGLU, rotary embedding both ways,
 * causal attention with grouped queries forward and backward, Adam, a bias and its gradient, the
 * vocab-parallel embedding, learned positions and cross-entropy with their backwards. The
 * host versions check every pointer against the test's "device" buffers first: a host pointer is
 * refused and nothing runs. Built with the cuda backend only. */
#include "exec/exec_private.h"
#include "exec/kernels_cuda.h"
#include "suites.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* the "device": the buffers dev() handed out; on_device says whether [p, p + bytes) lies in one */
static struct {
    float *p;
    size_t n;
} devs[64];
static int ndevs, nlaunches;

static float *dev(int64_t n, unsigned seed) {
    float *p = malloc((size_t)(n > 0 ? n : 1) * sizeof *p);
    ck_assert_ptr_nonnull(p);
    srand(seed);
    for (int64_t i = 0; i < n; i++) p[i] = (float)rand() / (float)RAND_MAX - 0.5f;
    ck_assert_int_lt(ndevs, 64);
    devs[ndevs].p = p, devs[ndevs++].n = (size_t)n * sizeof *p;
    return p;
}

static float *copy(const float *x, int64_t n) {
    float *p = malloc((size_t)(n > 0 ? n : 1) * sizeof *p);
    ck_assert_ptr_nonnull(p);
    memcpy(p, x, (size_t)n * sizeof *p);
    return p;
}

static int on_device(const void *p, size_t bytes, int write) {
    (void)write;
    for (int i = 0; i < ndevs; i++)
        if ((const char *)p >= (const char *)devs[i].p && (const char *)p + bytes <= (const char *)devs[i].p + devs[i].n)
            return 1;
    return 0;
}

static int host_launch(const void *kernel, unsigned grid, unsigned block, void **args, void *stream) {
    int n = 0;
    const st__xkc_host *t = st__xkc_host_table(&n);
    (void)stream;
    nlaunches++;
    for (int i = 0; i < n; i++)
        if (t[i].kernel == kernel) return t[i].run(args, grid, block, on_device) ? 1 : 0;
    return 2; /* not in the table */
}

static void setup(void) { st__xkc_launch = host_launch, ndevs = 0, nlaunches = 0; }

static void teardown(void) {
    for (int i = 0; i < ndevs; i++) free(devs[i].p);
    ndevs = 0;
}

static void same(const float *a, const float *b, int64_t n) {
    double m = 0;
    for (int64_t i = 0; i < n; i++) m = fmax(m, fabs((double)a[i] - b[i]));
    ck_assert_double_le(m, 1e-6);
}

START_TEST(norms_as_cpu) {
    enum { N = 5, C = 24 };
    for (int ln = 0; ln < 2; ln++) { /* 0: RMSNorm, 1: LayerNorm */
        float *x = dev(N * C, 1), *w = dev(C, 2), *b = ln ? dev(C, 3) : NULL, *out = dev(N * C, 4);
        float *mean = dev(N, 5), *rstd = dev(N, 6), *dout = dev(N * C, 7), *din = dev(N * C, 8), *dw = dev(C, 9);
        float *db = ln ? dev(C, 10) : NULL;
        float ro[N * C], rm[N], rr[N], *rdin = copy(din, N * C), *rdw = copy(dw, C), *rdb = ln ? copy(db, C) : NULL;
        ck_assert_int_eq(st__xkc_norm_fwd(NULL, out, ln ? mean : NULL, rstd, x, w, b, N, C), 0);
        st__xnorm_fwd(ro, ln ? rm : NULL, rr, x, w, b, N, C);
        same(out, ro, N * C);
        same(rstd, rr, N);
        if (ln) same(mean, rm, N);
        ck_assert_int_eq(st__xkc_norm_bwd(NULL, din, dw, db, dout, x, w, mean, rstd, N, C), 0);
        st__xnorm_bwd(rdin, rdw, rdb, dout, x, w, rm, rr, N, C);
        same(din, rdin, N * C), same(dw, rdw, C);
        if (ln) same(db, rdb, C);
        free(rdin), free(rdw), free(rdb);
    }
    ck_assert_int_eq(nlaunches, 6); /* the backward is two kernels: rows, then columns */
}
END_TEST

START_TEST(elementwise_as_cpu) {
    enum { n = 1000 }; /* four blocks, the last partly idle */
    float *a = dev(n, 1), *b = dev(n, 2), *dout = dev(n, 3), *o1 = dev(n, 4), *o2 = dev(n, 5);
    float r1[n], r2[n];
    for (int relu = 0; relu < 2; relu++) {
        st__xact act = relu ? ST__XACT_RELU : ST__XACT_GELU;
        ck_assert_int_eq(st__xkc_act_fwd(NULL, o1, a, n, relu), 0);
        st__xact_fwd(r1, a, n, act);
        same(o1, r1, n);
        ck_assert_int_eq(st__xkc_act_bwd(NULL, o1, a, dout, n, relu), 0);
        st__xact_bwd(r1, a, dout, n, act);
        same(o1, r1, n);
    }
    ck_assert_int_eq(st__xkc_swiglu_fwd(NULL, o1, a, b, n), 0);
    st__xswiglu_fwd(r1, a, b, n);
    same(o1, r1, n);
    ck_assert_int_eq(st__xkc_swiglu_bwd(NULL, o1, o2, a, b, dout, n), 0);
    st__xswiglu_bwd(r1, r2, a, b, dout, n);
    same(o1, r1, n), same(o2, r2, n);
}
END_TEST

START_TEST(rope_as_cpu) {
    enum { N = 6, T = 3, H = 2, D = 8, S = 3 * H * D }; /* rows of a wider buffer, as q within qkv */
    float *x = dev(N * S, 1), *r = copy(x, N * S);
    for (int sign = 1; sign >= -1; sign -= 2) {
        ck_assert_int_eq(st__xkc_rope(NULL, x, N, T, H, D, S, sign), 0);
        st__xrope(r, N, T, H, D, S, sign);
        same(x, r, N * S);
    }
    free(r);
}
END_TEST

START_TEST(attention_as_cpu) {
    enum { B = 2, T = 5, HQ = 4, HKV = 2, D = 4, N = B * T, P = B * HQ * T * T };
    float *q = dev(N * HQ * D, 1), *k = dev(N * HKV * D, 2), *v = dev(N * HKV * D, 3), *out = dev(N * HQ * D, 4);
    float *probs = dev(P, 5), *dout = dev(N * HQ * D, 6), *dq = dev(N * HQ * D, 7), *dk = dev(N * HKV * D, 8);
    float *dv = dev(N * HKV * D, 9), *ds = dev(P, 10);
    float ro[N * HQ * D], rp[P], *rdq = copy(dq, N * HQ * D), *rdk = copy(dk, N * HKV * D), *rdv = copy(dv, N * HKV * D);
    ck_assert_int_eq(st__xkc_attn_fwd(NULL, out, probs, q, k, v, B, T, HQ, HKV, D), 0);
    st__xattn_fwd(ro, rp, q, k, v, B, T, HQ, HKV, D);
    same(out, ro, N * HQ * D), same(probs, rp, P);
    ck_assert_int_eq(st__xkc_attn_bwd(NULL, dq, dk, dv, ds, dout, probs, q, k, v, B, T, HQ, HKV, D), 0);
    st__xattn_bwd(rdq, rdk, rdv, dout, rp, q, k, v, B, T, HQ, HKV, D);
    same(dq, rdq, N * HQ * D), same(dk, rdk, N * HKV * D), same(dv, rdv, N * HKV * D);
    free(rdq), free(rdk), free(rdv);
}
END_TEST

START_TEST(adam_and_bias_as_cpu) {
    enum { n = 300, R = 7, OC = 9 };
    float *p = dev(n, 1), *g = dev(n, 2), *m = dev(n, 3), *v = dev(n, 4);
    float *rp = copy(p, n), *rm = copy(m, n), *rv = copy(v, n);
    for (int i = 0; i < n; i++) v[i] = rv[i] = fabsf(v[i]);
    for (int t = 1; t <= 2; t++) {
        ck_assert_int_eq(st__xkc_adam(NULL, p, g, m, v, n, t, 1e-3f, 0.9f, 0.95f, 1e-8f), 0);
        st__xadam(rp, g, rm, rv, n, t, 1e-3f, 0.9f, 0.95f, 1e-8f);
    }
    same(p, rp, n), same(m, rm, n), same(v, rv, n);
    /* the bias as the CPU GEMM puts it first: out = (acc ? out : 0) + b; dbias += column sums */
    float *out = dev(R * OC, 5), *b = dev(OC, 6), *db = dev(OC, 7), *o0 = copy(out, R * OC), *db0 = copy(db, OC);
    ck_assert_int_eq(st__xkc_bias_fill(NULL, out, b, R, OC, 1), 0);
    for (int i = 0; i < R * OC; i++) ck_assert_float_eq(out[i], o0[i] + b[i % OC]);
    ck_assert_int_eq(st__xkc_bias_fill(NULL, out, b, R, OC, 0), 0);
    for (int i = 0; i < R * OC; i++) ck_assert_float_eq(out[i], b[i % OC]);
    float *dy = dev(R * OC, 8);
    ck_assert_int_eq(st__xkc_col_sum(NULL, db, dy, R, OC), 0);
    for (int o = 0; o < OC; o++) {
        float s = db0[o];
        for (int r = 0; r < R; r++) s += dy[r * OC + o];
        ck_assert_float_eq(db[o], s);
    }
    free(rp), free(rm), free(rv), free(o0), free(db0);
}
END_TEST

/* the embedding, positions and cross-entropy over tokens, this rank holding vocabulary rows 4 .. 12 */
START_TEST(tokens_as_cpu) {
    enum { B = 2, T = 5, N = B * T, H = 6, V0 = 4, VL = 8, S = 4, R0 = 3 };
    float *tf = dev(B * (T + 1), 1), *wte = dev(VL * H, 2), *out = dev(N * H, 3), *dwte = dev(VL * H, 4);
    float *dout = dev(N * H, 5), *x = dev(S * H, 6), *wpe = dev(T * H, 7), *dwpe = dev(T * H, 8);
    float *lg = dev(N * VL, 9), *mx = dev(N, 10), *st = dev(2 * N, 11);
    int32_t *tok = (int32_t *)tf; /* a "device" buffer of B x (T + 1) tokens below 16: some held here */
    for (int i = 0; i < B * (T + 1); i++) tok[i] = (int32_t)((i * 7 + 3) % 16);
    float ro[N * H], *rdwte = copy(dwte, VL * H), *rx = copy(x, S * H), *rdwpe = copy(dwpe, T * H);
    float *rlg = copy(lg, N * VL), rmx[N], rst[2 * N];
    ck_assert_int_eq(st__xkc_embed_fwd(NULL, out, tok, wte, N, T, H, V0, VL), 0);
    st__xembed_fwd(ro, tok, wte, N, T, H, V0, VL);
    same(out, ro, N * H);
    ck_assert_int_eq(st__xkc_embed_bwd(NULL, dwte, tok, dout, N, T, H, V0, VL), 0);
    st__xembed_bwd(rdwte, tok, dout, N, T, H, V0, VL);
    same(dwte, rdwte, VL * H);
    ck_assert_int_eq(st__xkc_pos_fwd(NULL, x, wpe, S, T, H, R0), 0);
    st__xpos_fwd(rx, wpe, S, T, H, R0);
    same(x, rx, S * H);
    ck_assert_int_eq(st__xkc_pos_bwd(NULL, dwpe, dout, S, T, H, R0), 0);
    st__xpos_bwd(rdwpe, dout, S, T, H, R0);
    same(dwpe, rdwpe, T * H);
    ck_assert_int_eq(st__xkc_xent_max(NULL, mx, lg, N, VL), 0);
    st__xxent_max(rmx, rlg, N, VL);
    same(mx, rmx, N);
    ck_assert_int_eq(st__xkc_xent_exp(NULL, lg, st, mx, tok, N, T, VL, V0), 0);
    st__xxent_exp(rlg, rst, rmx, tok, N, T, VL, V0);
    same(lg, rlg, N * VL), same(st, rst, 2 * N);
    ck_assert_int_eq(st__xkc_xent_norm(NULL, lg, st, N, VL), 0);
    st__xxent_norm(rlg, rst, N, VL);
    same(lg, rlg, N * VL);
    ck_assert_int_eq(st__xkc_xent_bwd(NULL, lg, tok, 0.25f, N, T, VL, V0), 0);
    st__xxent_bwd(rlg, tok, 0.25f, N, T, VL, V0);
    same(lg, rlg, N * VL);
    /* a row whose target this rank holds sums to (1 - 1) * scale = 0 over its vocabulary share */
    double sum = 0;
    ck_assert(tok[1] >= V0 && tok[1] < V0 + VL); /* row 0's target */
    for (int j = 0; j < VL; j++) sum += lg[j];
    ck_assert_double_le(fabs(sum), 1e-6);
    free(rdwte), free(rx), free(rdwpe), free(rlg);
}
END_TEST

/* a host pointer (or a buffer too short for what the kernel touches) is refused, nothing written */
START_TEST(host_pointer_refused) {
    enum { n = 64 };
    float *a = dev(n, 1), *o = dev(n, 2), host[n], before[n];
    memcpy(before, o, sizeof before);
    ck_assert_int_eq(st__xkc_act_fwd(NULL, o, host, n, 0), 1);
    ck_assert_int_eq(st__xkc_act_fwd(NULL, o, a, n + 1, 0), 1);
    ck_assert_mem_eq(o, before, sizeof before);
    ck_assert_int_eq(st__xkc_act_fwd(NULL, o, a, 0, 0), 0); /* nothing to do: no launch */
    ck_assert_int_eq(nlaunches, 2);
    /* every kernel of the table has a host version under its own name */
    int nt = 0;
    const st__xkc_host *t = st__xkc_host_table(&nt);
    ck_assert_int_eq(nt, 33); /* 23, and the MoE routing's 10 (exec/moe_kernels.h) */
    for (int i = 0; i < nt; i++) {
        ck_assert_ptr_nonnull(t[i].kernel);
        ck_assert_ptr_nonnull(t[i].run);
        ck_assert(strncmp(t[i].name, "st__xkk_", 8) == 0);
    }
}
END_TEST

Suite *suite_exec_cuda(void) {
    Suite *s = suite_create("exec_cuda");
    TCase *tc = tcase_create("kernels");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, norms_as_cpu);
    tcase_add_test(tc, elementwise_as_cpu);
    tcase_add_test(tc, rope_as_cpu);
    tcase_add_test(tc, attention_as_cpu);
    tcase_add_test(tc, adam_and_bias_as_cpu);
    tcase_add_test(tc, tokens_as_cpu);
    tcase_add_test(tc, host_pointer_refused);
    suite_add_tcase(s, tc);
    return s;
}
