/* kernels.c: the CPU executor's fp32 kernels (exec_private.h): GEMMs through CBLAS with a plain C
 * reference beside them, and plain C kernels for the rest, after llm.c's train_gpt2.c (LayerNorm,
 * GELU (tanh form, Hendrycks and Gimpel 2016), causal attention with saved probabilities) plus
 * RMSNorm (Zhang and Sennrich 2019), SwiGLU (Shazeer 2020), rotary embedding (Su et al. 2021) and
 * Adam (Kingma and Ba 2015). Sums run in float like the GPU kernels they stand for, except the
 * norms' row statistics (double: a row of thousands). */
#include "config.h"
#include "exec/exec_private.h"
#include "exec/moe_kernels.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int st__xkernels_reference;
double st__xkernels_gemm_s;

static double gemm_clock_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

void st__xkernels_threads(int n) {
#ifdef HAVE_OPENBLAS_SET_NUM_THREADS
    openblas_set_num_threads(n);
#else
    (void)n; /* another CBLAS: its own settings (e.g. OMP_NUM_THREADS) decide */
#endif
}

void st__xmm_fwd_ref(float *out, const float *inp, const float *w, const float *bias, int64_t N, int64_t C,
                     int64_t OC, int accumulate) {
    for (int64_t n = 0; n < N; n++)
        for (int64_t o = 0; o < OC; o++) {
            float s = bias ? bias[o] : 0.0f;
            const float *x = inp + n * C, *wr = w + o * C;
            for (int64_t c = 0; c < C; c++) s += x[c] * wr[c];
            out[n * OC + o] = accumulate ? out[n * OC + o] + s : s;
        }
}

void st__xmm_bwd_ref(float *dinp, float *dw, float *dbias, const float *dout, const float *inp, const float *w,
                     int64_t N, int64_t C, int64_t OC) {
    for (int64_t n = 0; n < N; n++)
        for (int64_t o = 0; o < OC; o++) {
            float g = dout[n * OC + o];
            for (int64_t c = 0; c < C; c++) {
                if (dinp) dinp[n * C + c] += g * w[o * C + c];
                if (dw) dw[o * C + c] += g * inp[n * C + c];
            }
            if (dbias) dbias[o] += g;
        }
}

void st__xmm_fwd(float *out, const float *inp, const float *w, const float *bias, int64_t N, int64_t C, int64_t OC,
                 int accumulate) {
    double t0 = gemm_clock_s();
    if (st__xkernels_reference) {
        st__xmm_fwd_ref(out, inp, w, bias, N, C, OC, accumulate);
        goto out;
    }
    if (bias) { /* off the GEMM clock, as the lowering prices a bias: an operator of its own or in the next one */
        for (int64_t n = 0; n < N; n++)
            for (int64_t o = 0; o < OC; o++) out[n * OC + o] = (accumulate ? out[n * OC + o] : 0) + bias[o];
        accumulate = 1;
        t0 = gemm_clock_s();
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)N, (int)OC, (int)C, 1.0f, inp, (int)C, w, (int)C,
                accumulate ? 1.0f : 0.0f, out, (int)OC);
out:
    st__xkernels_gemm_s += gemm_clock_s() - t0;
}

void st__xmm_bwd(float *dinp, float *dw, float *dbias, const float *dout, const float *inp, const float *w, int64_t N,
                 int64_t C, int64_t OC) {
    double t0 = gemm_clock_s(), t1;
    if (st__xkernels_reference) {
        st__xmm_bwd_ref(dinp, dw, dbias, dout, inp, w, N, C, OC);
        t1 = gemm_clock_s();
        goto out;
    }
    if (dinp)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)N, (int)C, (int)OC, 1.0f, dout, (int)OC, w,
                    (int)C, 1.0f, dinp, (int)C);
    if (dw)
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)OC, (int)C, (int)N, 1.0f, dout, (int)OC, inp,
                    (int)C, 1.0f, dw, (int)C);
    t1 = gemm_clock_s();
    if (dbias) /* off the GEMM clock (st__xmm_fwd's bias) */
        for (int64_t n = 0; n < N; n++)
            for (int64_t o = 0; o < OC; o++) dbias[o] += dout[n * OC + o];
out:
    st__xkernels_gemm_s += t1 - t0;
}

#define NORM_EPS 1e-5

void st__xnorm_fwd(float *out, float *mean, float *rstd, const float *inp, const float *w, const float *b, int64_t N,
                   int64_t C) {
    for (int64_t n = 0; n < N; n++) {
        const float *x = inp + n * C;
        double mu = 0, var = 0;
        if (b) {
            for (int64_t c = 0; c < C; c++) mu += x[c];
            mu /= (double)C;
        }
        for (int64_t c = 0; c < C; c++) var += (x[c] - mu) * (x[c] - mu);
        double r = 1.0 / sqrt(var / (double)C + NORM_EPS);
        for (int64_t c = 0; c < C; c++)
            out[n * C + c] = (float)((x[c] - mu) * r) * w[c] + (b ? b[c] : 0.0f);
        if (mean) mean[n] = (float)mu;
        rstd[n] = (float)r;
    }
}

void st__xnorm_bwd(float *dinp, float *dw, float *db, const float *dout, const float *inp, const float *w,
                   const float *mean, const float *rstd, int64_t N, int64_t C) {
    for (int64_t n = 0; n < N; n++) {
        const float *x = inp + n * C, *dy = dout + n * C;
        float mu = db ? mean[n] : 0.0f, r = rstd[n];
        double sum_d = 0, sum_dx = 0; /* of dxhat and of dxhat * xhat */
        for (int64_t c = 0; c < C; c++) {
            float xhat = (x[c] - mu) * r, dxhat = dy[c] * w[c];
            sum_d += dxhat;
            sum_dx += dxhat * xhat;
        }
        float md = db ? (float)(sum_d / (double)C) : 0.0f, mdx = (float)(sum_dx / (double)C);
        for (int64_t c = 0; c < C; c++) {
            float xhat = (x[c] - mu) * r, dxhat = dy[c] * w[c];
            dw[c] += dy[c] * xhat;
            if (db) db[c] += dy[c];
            dinp[n * C + c] += r * (dxhat - md - xhat * mdx);
        }
    }
}

#define GELU_SCALE 0.7978845608028654f /* sqrt(2 / pi) */

void st__xact_fwd(float *out, const float *inp, int64_t n, st__xact a) {
    for (int64_t i = 0; i < n; i++) {
        float x = inp[i];
        out[i] = a == ST__XACT_RELU ? (x > 0 ? x : 0)
                                    : 0.5f * x * (1.0f + tanhf(GELU_SCALE * (x + 0.044715f * x * x * x)));
    }
}

void st__xact_bwd(float *dinp, const float *inp, const float *dout, int64_t n, st__xact a) {
    for (int64_t i = 0; i < n; i++) {
        float x = inp[i], g;
        if (a == ST__XACT_RELU) {
            g = x > 0 ? 1.0f : 0.0f;
        } else {
            float u = GELU_SCALE * (x + 0.044715f * x * x * x), th = tanhf(u);
            g = 0.5f * (1.0f + th) + 0.5f * x * (1.0f - th * th) * GELU_SCALE * (1.0f + 3.0f * 0.044715f * x * x);
        }
        dinp[i] = g * dout[i];
    }
}

void st__xswiglu_fwd(float *out, const float *a, const float *b, int64_t n) {
    for (int64_t i = 0; i < n; i++) out[i] = a[i] / (1.0f + expf(-a[i])) * b[i];
}

void st__xswiglu_bwd(float *da, float *db, const float *a, const float *b, const float *dout, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        float s = 1.0f / (1.0f + expf(-a[i])), silu = a[i] * s;
        db[i] = dout[i] * silu;
        da[i] = dout[i] * b[i] * (s + silu * (1.0f - s));
    }
}

void st__xrope(float *x, int64_t N, int64_t T, int64_t heads, int64_t d, int64_t stride, int sign) {
    int64_t half = d / 2;
    for (int64_t n = 0; n < N; n++) {
        double pos = (double)(n % T);
        for (int64_t hd = 0; hd < heads; hd++) {
            float *v = x + n * stride + hd * d;
            for (int64_t i = 0; i < half; i++) {
                double th = pos * pow(10000.0, -2.0 * (double)i / (double)d);
                float c = (float)cos(th), s = (float)sin(th) * (float)sign;
                float x1 = v[i], x2 = v[i + half];
                v[i] = x1 * c - x2 * s;
                v[i + half] = x1 * s + x2 * c;
            }
        }
    }
}

void st__xattn_fwd_at(float *out, float *probs, const float *q, const float *k, const float *v, int64_t Tq,
                      int64_t Tk, int64_t q0, int64_t hq, int64_t hkv, int64_t d) {
    float scale = 1.0f / sqrtf((float)d);
    int64_t group = hq / hkv, qs = hq * d, ks = hkv * d;
    for (int64_t h = 0; h < hq; h++) {
        int64_t kh = h / group;
        for (int64_t t = 0; t < Tq; t++) {
            const float *qt = q + t * qs + h * d;
            float *p = probs + (h * Tq + t) * Tk, mx = -INFINITY;
            int64_t last = q0 + t; /* the query's position: the last key it sees */
            for (int64_t t2 = 0; t2 <= last; t2++) {
                const float *kt = k + t2 * ks + kh * d;
                float s = 0;
                for (int64_t i = 0; i < d; i++) s += qt[i] * kt[i];
                p[t2] = s * scale;
                if (p[t2] > mx) mx = p[t2];
            }
            float sum = 0;
            for (int64_t t2 = 0; t2 <= last; t2++) sum += p[t2] = expf(p[t2] - mx);
            for (int64_t t2 = 0; t2 < Tk; t2++) p[t2] = t2 <= last ? p[t2] / sum : 0.0f;
            float *o = out + t * qs + h * d;
            memset(o, 0, (size_t)d * sizeof *o);
            for (int64_t t2 = 0; t2 <= last; t2++) {
                const float *vt = v + t2 * ks + kh * d;
                for (int64_t i = 0; i < d; i++) o[i] += p[t2] * vt[i];
            }
        }
    }
}

void st__xattn_fwd(float *out, float *probs, const float *q, const float *k, const float *v, int64_t B, int64_t T,
                   int64_t hq, int64_t hkv, int64_t d) {
    for (int64_t b = 0; b < B; b++)
        st__xattn_fwd_at(out + b * T * hq * d, probs + b * hq * T * T, q + b * T * hq * d, k + b * T * hkv * d,
                         v + b * T * hkv * d, T, T, 0, hq, hkv, d);
}

void st__xattn_bwd_at(float *dq, float *dk, float *dv, const float *dout, const float *probs, const float *q,
                      const float *k, const float *v, int64_t Tq, int64_t Tk, int64_t q0, int64_t hq, int64_t hkv,
                      int64_t d) {
    float scale = 1.0f / sqrtf((float)d);
    int64_t group = hq / hkv, qs = hq * d, ks = hkv * d;
    for (int64_t h = 0; h < hq; h++) {
        int64_t kh = h / group;
        for (int64_t t = 0; t < Tq; t++) {
            const float *p = probs + (h * Tq + t) * Tk, *dot = dout + t * qs + h * d;
            const float *qt = q + t * qs + h * d;
            float *dqt = dq + t * qs + h * d;
            int64_t last = q0 + t;
            /* dP = dO V^T, then the softmax's backward dS = P (dP - sum P dP) */
            float dp[Tk > 0 ? Tk : 1], dot_sum = 0;
            for (int64_t t2 = 0; t2 <= last; t2++) {
                const float *vt = v + t2 * ks + kh * d;
                float s = 0;
                for (int64_t i = 0; i < d; i++) s += dot[i] * vt[i];
                dp[t2] = s;
                dot_sum += p[t2] * s;
            }
            for (int64_t t2 = 0; t2 <= last; t2++) {
                const float *kt = k + t2 * ks + kh * d;
                float *dkt = dk + t2 * ks + kh * d, *dvt = dv + t2 * ks + kh * d;
                float ds = p[t2] * (dp[t2] - dot_sum) * scale;
                for (int64_t i = 0; i < d; i++) {
                    dvt[i] += p[t2] * dot[i];
                    dqt[i] += ds * kt[i];
                    dkt[i] += ds * qt[i];
                }
            }
        }
    }
}

void st__xattn_bwd(float *dq, float *dk, float *dv, const float *dout, const float *probs, const float *q,
                   const float *k, const float *v, int64_t B, int64_t T, int64_t hq, int64_t hkv, int64_t d) {
    int64_t qs = hq * d, ks = hkv * d;
    for (int64_t b = 0; b < B; b++)
        st__xattn_bwd_at(dq + b * T * qs, dk + b * T * ks, dv + b * T * ks, dout + b * T * qs, probs + b * hq * T * T,
                         q + b * T * qs, k + b * T * ks, v + b * T * ks, T, T, 0, hq, hkv, d);
}

void st__xadam(float *p, const float *g, float *m, float *v, int64_t n, int t, float lr, float b1, float b2,
               float eps) {
    float c1 = 1.0f - powf(b1, (float)t), c2 = 1.0f - powf(b2, (float)t);
    for (int64_t i = 0; i < n; i++) {
        m[i] = b1 * m[i] + (1.0f - b1) * g[i];
        v[i] = b2 * v[i] + (1.0f - b2) * g[i] * g[i];
        p[i] -= lr * (m[i] / c1) / (sqrtf(v[i] / c2) + eps);
    }
}

void st__xadd(float *y, const float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] += x[i];
}

void st__xbias_add(float *out, const float *b, int64_t N, int64_t C) {
    for (int64_t n = 0; n < N; n++)
        for (int64_t c = 0; c < C; c++) out[n * C + c] += b[c];
}

void st__xbias_grad(float *db, const float *dout, int64_t N, int64_t C) {
    for (int64_t n = 0; n < N; n++)
        for (int64_t c = 0; c < C; c++) db[c] += dout[n * C + c];
}

/* this rank's row of token row n's token, or -1 where another rank holds it */
static int64_t vocab_row(const int32_t *tokens, int64_t n, int64_t T, int64_t v0, int64_t V_l, int64_t shift) {
    int64_t r = tokens[(n / T) * (T + 1) + n % T + shift] - v0;
    return r >= 0 && r < V_l ? r : -1;
}

void st__xembed_fwd(float *out, const int32_t *tokens, const float *wte, int64_t N, int64_t T, int64_t h, int64_t v0,
                    int64_t V_l) {
    for (int64_t n = 0; n < N; n++) {
        int64_t r = vocab_row(tokens, n, T, v0, V_l, 0);
        if (r >= 0) memcpy(out + n * h, wte + r * h, (size_t)h * sizeof *out);
        else memset(out + n * h, 0, (size_t)h * sizeof *out);
    }
}

void st__xembed_bwd(float *dwte, const int32_t *tokens, const float *dout, int64_t N, int64_t T, int64_t h,
                    int64_t v0, int64_t V_l) {
    for (int64_t n = 0; n < N; n++) {
        int64_t r = vocab_row(tokens, n, T, v0, V_l, 0);
        if (r >= 0)
            for (int64_t c = 0; c < h; c++) dwte[r * h + c] += dout[n * h + c];
    }
}

void st__xpos_fwd(float *x, const float *wpe, int64_t S, int64_t T, int64_t h, int64_t r0) {
    for (int64_t n = 0; n < S; n++)
        for (int64_t c = 0; c < h; c++) x[n * h + c] += wpe[((r0 + n) % T) * h + c];
}

void st__xpos_bwd(float *dwpe, const float *dout, int64_t S, int64_t T, int64_t h, int64_t r0) {
    for (int64_t n = 0; n < S; n++)
        for (int64_t c = 0; c < h; c++) dwpe[((r0 + n) % T) * h + c] += dout[n * h + c];
}

void st__xxent_max(float *mx, const float *logits, int64_t N, int64_t V_l) {
    for (int64_t n = 0; n < N; n++) {
        float m = -INFINITY;
        for (int64_t j = 0; j < V_l; j++) m = logits[n * V_l + j] > m ? logits[n * V_l + j] : m;
        mx[n] = m;
    }
}

void st__xxent_exp(float *logits, float *st, const float *mx, const int32_t *tokens, int64_t N, int64_t T,
                   int64_t V_l, int64_t v0) {
    for (int64_t n = 0; n < N; n++) {
        int64_t tgt = vocab_row(tokens, n, T, v0, V_l, 1);
        st[N + n] = tgt >= 0 ? logits[n * V_l + tgt] - mx[n] : 0.0f;
        float s = 0;
        for (int64_t j = 0; j < V_l; j++) s += logits[n * V_l + j] = expf(logits[n * V_l + j] - mx[n]);
        st[n] = s;
    }
}

void st__xxent_norm(float *logits, const float *st, int64_t N, int64_t V_l) {
    for (int64_t n = 0; n < N; n++)
        for (int64_t j = 0; j < V_l; j++) logits[n * V_l + j] /= st[n];
}

void st__xxent_bwd(float *p, const int32_t *tokens, float scale, int64_t N, int64_t T, int64_t V_l, int64_t v0) {
    for (int64_t n = 0; n < N; n++) {
        int64_t tgt = vocab_row(tokens, n, T, v0, V_l, 1);
        if (tgt >= 0) p[n * V_l + tgt] -= 1.0f;
        for (int64_t j = 0; j < V_l; j++) p[n * V_l + j] *= scale;
    }
}

/* an MoE block's routing, dispatch and combine (exec/moe_kernels.h): each thread's code in turn */
static void moe_route(int32_t *top, float *s, const float *logits, int64_t N, int64_t E, int64_t K) {
    for (int64_t n = 0; n < N; n++) st__xmoe_route(top, s, logits, E, K, n);
}

static void moe_place(int32_t *cnt, int32_t *order, int32_t *where, const int32_t *top, const float *s, int64_t NK,
                      int64_t E, int64_t cap) {
    for (int64_t e = 0; e < E; e++) st__xmoe_count(cnt, top, NK, cap, e);
    for (int64_t i = 0; i < NK; i++) st__xmoe_place(order, where, cnt, top, s, NK, cap, i);
}

static void moe_gather(float *send, const float *n2, const int32_t *order, const int32_t *top, int64_t N,
                       int64_t nsend, int64_t K, int64_t h, int64_t El) {
    (void)N;
    for (int64_t j = 0; j < nsend * (h + 1); j++) st__xmoe_gather(send, n2, order, top, K, h, El, j);
}

static void moe_sort(float *xin, int32_t *perm, int32_t *first, const float *recv, int64_t R, int64_t h, int64_t El) {
    for (int64_t i = 0; i < R; i++) st__xmoe_sort(xin, perm, recv, R, h, i);
    for (int64_t c = 0; c <= El; c++) st__xmoe_first(first, recv, R, h, c);
}

static void moe_permute(float *to, const float *from, const int32_t *perm, int64_t R, int64_t h, int dir) {
    for (int64_t j = 0; j < R * h; j++) st__xmoe_permute(to, from, perm, h, dir, j);
}

static void moe_combine(float *out, const float *y, const float *s, const int32_t *where, int64_t N,
                        int64_t nsend, int64_t K, int64_t h, int acc) {
    (void)nsend;
    for (int64_t j = 0; j < N * h; j++) st__xmoe_combine(out, y, s, where, K, h, acc, j);
}

static void moe_dy(float *dy, float *ds, const float *dout, const float *y, const float *s, const int32_t *order,
                   int64_t N, int64_t nsend, int64_t K, int64_t h) {
    (void)N;
    for (int64_t i = 0; i < nsend; i++) st__xmoe_dy(dy, ds, dout, y, s, order, K, h, i);
}

static void moe_router_bwd(float *dl, const float *s, const float *ds, const int32_t *top, int64_t N, int64_t E,
                           int64_t K) {
    for (int64_t n = 0; n < N; n++) st__xmoe_router_bwd(dl, s, ds, top, E, K, n);
}

/* the CPU's tensor memory: the host's (one byte at least: calloc of 0 may return NULL) */
static float *mem_alloc(int64_t n) { return calloc((size_t)(n > 0 ? n : 1), sizeof(float)); }

static void mem_copy(float *dst, const float *src, int64_t n) { memcpy(dst, src, (size_t)n * sizeof *dst); }

static void mem_copy2d(float *dst, int64_t dld, const float *src, int64_t sld, int64_t cols, int64_t rows) {
    for (int64_t r = 0; r < rows; r++) memcpy(dst + r * dld, src + r * sld, (size_t)cols * sizeof *dst);
}

static void mem_zero(float *p, int64_t n) { memset(p, 0, (size_t)n * sizeof *p); }

static void mem_free(float *p) { free(p); }

const st__xbackend st__xbackend_cpu = {
    "cpu",         st__xmm_fwd,     st__xmm_bwd,     st__xnorm_fwd,  st__xnorm_bwd,  st__xact_fwd,  st__xact_bwd,
    st__xswiglu_fwd, st__xswiglu_bwd, st__xrope,     st__xattn_fwd,  st__xattn_bwd,  st__xadam,     st__xadd,
    st__xbias_add, st__xbias_grad,  st__xembed_fwd,  st__xembed_bwd, st__xpos_fwd,   st__xpos_bwd,  st__xxent_max,
    st__xxent_exp, st__xxent_norm,  st__xxent_bwd,   moe_route,      moe_place,      moe_gather,    moe_sort,
    moe_permute,   moe_combine,     moe_dy,          moe_router_bwd, NULL,           mem_alloc,     mem_free,
    mem_copy,      mem_copy2d,      mem_zero,        NULL,           NULL,           NULL,          NULL,
    NULL,          NULL}; /* host clocks */
