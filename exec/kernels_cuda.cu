/* kernels_cuda.cu: the cuda backend's own kernels (kernels_cuda.h; issue 18): the norms, GELU/ReLU
 * and SwiGLU, the rotary embedding, causal attention with its softmax, Adam, biases and their
 * gradients' column sums, residual additions, the vocab-parallel embedding, learned positions and
 * cross-entropy (Megatron-LM's vocab_parallel_cross_entropy in three kernels around the tp
 * all-reduces of the row maxima and of the sums), in fp32, with the arithmetic of the CPU kernels
 * (exec/kernels.c) written once per thread: each kernel is one __host__ __device__ function of
 * (arguments, thread index), which the __global__ entry runs for its thread and the host version
 * (st__xkc_host_table) runs for every thread of the launch in turn. So each thread's work must not
 * depend on another's, and each output element is written by one thread, summed in the CPU's order
 * (no atomics: the numbers are the CPU's and deterministic): a row per thread for the norms,
 * attention's softmax and the cross-entropy's sums; a column per thread for the weight gradients'
 * sums; a table element per thread for the embedding's and positions' gradients, over the rows in
 * order; attention's backward in two kernels, dq and the softmax's gradients by query row, then dk
 * and dv by key row, summed over the kv head's query heads and the later query rows. Simple rather
 * than fast (no shared memory, no tiling): the numbers first, as llm.c's dev/cuda starts from its
 * CPU reference.
 *
 * What the fakes (profiler/mock/cudart.c with this table) check: every launch's arguments lie in
 * live device allocations of the right extent (a host pointer, or a missed copy, aborts), the launch
 * covers its work (grid x block threads; too few leave outputs unwritten and the numbers wrong), the
 * per-thread code's arithmetic (host-compiled: the CPU's, so strata run's --check holds). What they
 * cannot: a real GPU's timing, real concurrency (the host version runs threads one after another, so
 * a race between threads would not show), device memory faults beyond the checked extents, the
 * device math library's rounding (CUDA's expf, tanhf differ from glibc's in the last bits). */
#include <cuda_runtime.h>
#include <math.h>
#include <stdint.h>

#include "kernels_cuda.h"
#include "moe_kernels.h"

#define THREADS 256
#define NORM_EPS 1e-5                      /* exec/kernels.c's */
#define GELU_SCALE 0.7978845608028654f     /* sqrt(2 / pi) */
#define HD static __host__ __device__ inline

typedef struct span {
    const void *p;
    size_t bytes;
    int w; /* the kernel writes it (else reads only) */
} span;
typedef int (*on_device_fn)(const void *p, size_t bytes, int write);

static span fl(const void *p, int64_t n) { return span{p, (size_t)n * sizeof(float), 0}; }
static span fw(void *p, int64_t n) { return span{p, (size_t)n * sizeof(float), 1}; } /* written */

/* the host version of a kernel: its pointers checked, then every thread of grid x block in turn */
template <typename A, int64_t (*COUNT)(const A &), void (*BODY)(const A &, int64_t), int (*SPANS)(const A &, span *)>
static int host_run(void **args, unsigned grid, unsigned block, on_device_fn ok) {
    A a = *(const A *)args[0];
    span s[10];
    int n = SPANS(a, s);
    for (int j = 0; j < n; j++)
        if (s[j].p && !ok(s[j].p, s[j].bytes, s[j].w)) return -1;
    int64_t total = (int64_t)grid * block, c = COUNT(a);
    for (int64_t i = 0; i < total; i++)
        if (i < c) BODY(a, i);
    return 0;
}

/* one kernel: its __global__ entry (extern "C": its registered name is NAME) and its host version */
#define KERNEL(NAME, A, COUNT, BODY, SPANS)                                                                      \
    extern "C" __global__ void NAME(A a) {                                                                       \
        int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;                                               \
        if (i < COUNT(a)) BODY(a, i);                                                                            \
    }                                                                                                            \
    static int NAME##_host(void **args, unsigned grid, unsigned block, on_device_fn ok) {                        \
        return host_run<A, COUNT, BODY, SPANS>(args, grid, block, ok);                                           \
    }

static int launch_cuda(const void *k, unsigned grid, unsigned block, void **args, void *stream) {
    return (int)cudaLaunchKernel(k, dim3(grid), dim3(block), args, 0, (cudaStream_t)stream);
}
extern "C" {
int (*st__xkc_launch)(const void *kernel, unsigned grid, unsigned block, void **args, void *stream) = launch_cuda;
}

/* a launch of `count` threads in blocks of THREADS (nothing to do: no launch) */
template <typename A> static int launch(void (*k)(A), A a, int64_t count, void *stream) {
    if (count <= 0) return 0;
    void *args[] = {&a};
    return st__xkc_launch((const void *)k, (unsigned)((count + THREADS - 1) / THREADS), THREADS, args, stream);
}

/* ---------------------------------------------------------------- a GEMM's bias */

typedef struct bias_a {
    float *out;
    const float *bias;
    int64_t N, OC;
    int acc;
} bias_a;
HD int64_t bias_count(const bias_a &a) { return a.N * a.OC; }
HD void bias_fill_body(const bias_a &a, int64_t i) { a.out[i] = (a.acc ? a.out[i] : 0) + a.bias[i % a.OC]; }
static int bias_spans(const bias_a &a, span *s) { return s[0] = fw(a.out, a.N * a.OC), s[1] = fl(a.bias, a.OC), 2; }
KERNEL(st__xkk_bias_fill, bias_a, bias_count, bias_fill_body, bias_spans)

HD int64_t cols_count(const bias_a &a) { return a.OC; }
/* column o of dout (a.bias) summed into a.out[o], rows in order */
HD void col_sum_body(const bias_a &a, int64_t o) {
    for (int64_t n = 0; n < a.N; n++) a.out[o] += a.bias[n * a.OC + o];
}
static int cols_spans(const bias_a &a, span *s) { return s[0] = fw(a.out, a.OC), s[1] = fl(a.bias, a.N * a.OC), 2; }
KERNEL(st__xkk_col_sum, bias_a, cols_count, col_sum_body, cols_spans)

/* ---------------------------------------------------------------- norms */

typedef struct norm_a {
    float *out, *mean, *rstd, *dw, *db; /* forward: out, mean, rstd; backward: out is dinp */
    const float *dout, *inp, *w, *b, *cmean, *crstd;
    int64_t N, C;
} norm_a;
HD int64_t norm_rows(const norm_a &a) { return a.N; }
HD int64_t norm_cols(const norm_a &a) { return a.C; }

HD void norm_fwd_body(const norm_a &a, int64_t n) {
    const float *x = a.inp + n * a.C;
    double mu = 0, var = 0;
    if (a.b) {
        for (int64_t c = 0; c < a.C; c++) mu += x[c];
        mu /= (double)a.C;
    }
    for (int64_t c = 0; c < a.C; c++) var += (x[c] - mu) * (x[c] - mu);
    double r = 1.0 / sqrt(var / (double)a.C + NORM_EPS);
    for (int64_t c = 0; c < a.C; c++) a.out[n * a.C + c] = (float)((x[c] - mu) * r) * a.w[c] + (a.b ? a.b[c] : 0.0f);
    if (a.mean) a.mean[n] = (float)mu;
    a.rstd[n] = (float)r;
}
static int norm_fwd_spans(const norm_a &a, span *s) {
    s[0] = fw(a.out, a.N * a.C), s[1] = fw(a.mean, a.N), s[2] = fw(a.rstd, a.N), s[3] = fl(a.inp, a.N * a.C);
    s[4] = fl(a.w, a.C), s[5] = fl(a.b, a.C);
    return 6;
}
KERNEL(st__xkk_norm_fwd, norm_a, norm_rows, norm_fwd_body, norm_fwd_spans)

/* the input gradient of row n */
HD void norm_bwd_row(const norm_a &a, int64_t n) {
    const float *x = a.inp + n * a.C, *dy = a.dout + n * a.C;
    float mu = a.db ? a.cmean[n] : 0.0f, r = a.crstd[n];
    double sum_d = 0, sum_dx = 0; /* of dxhat and of dxhat * xhat */
    for (int64_t c = 0; c < a.C; c++) {
        float xhat = (x[c] - mu) * r, dxhat = dy[c] * a.w[c];
        sum_d += dxhat;
        sum_dx += dxhat * xhat;
    }
    float md = a.db ? (float)(sum_d / (double)a.C) : 0.0f, mdx = (float)(sum_dx / (double)a.C);
    for (int64_t c = 0; c < a.C; c++) {
        float xhat = (x[c] - mu) * r, dxhat = dy[c] * a.w[c];
        a.out[n * a.C + c] += r * (dxhat - md - xhat * mdx);
    }
}
/* the weight's (and bias's) gradient of column c, rows in order */
HD void norm_bwd_col(const norm_a &a, int64_t c) {
    for (int64_t n = 0; n < a.N; n++) {
        float mu = a.db ? a.cmean[n] : 0.0f, r = a.crstd[n], dy = a.dout[n * a.C + c];
        float xhat = (a.inp[n * a.C + c] - mu) * r;
        a.dw[c] += dy * xhat;
        if (a.db) a.db[c] += dy;
    }
}
static int norm_bwd_spans(const norm_a &a, span *s) {
    s[0] = fw(a.out, a.N * a.C), s[1] = fw(a.dw, a.C), s[2] = fw(a.db, a.C), s[3] = fl(a.dout, a.N * a.C);
    s[4] = fl(a.inp, a.N * a.C), s[5] = fl(a.w, a.C), s[6] = fl(a.db ? a.cmean : NULL, a.N), s[7] = fl(a.crstd, a.N);
    return 8;
}
KERNEL(st__xkk_norm_bwd_rows, norm_a, norm_rows, norm_bwd_row, norm_bwd_spans)
KERNEL(st__xkk_norm_bwd_cols, norm_a, norm_cols, norm_bwd_col, norm_bwd_spans)

/* ---------------------------------------------------------------- element-wise */

typedef struct elt_a {
    float *o1, *o2;
    const float *i1, *i2, *i3;
    int64_t n;
    int relu;
} elt_a;
HD int64_t elt_count(const elt_a &a) { return a.n; }
static int elt_spans(const elt_a &a, span *s) {
    s[0] = fw(a.o1, a.n), s[1] = fw(a.o2, a.n), s[2] = fl(a.i1, a.n), s[3] = fl(a.i2, a.n), s[4] = fl(a.i3, a.n);
    return 5;
}

HD void act_fwd_body(const elt_a &a, int64_t i) {
    float x = a.i1[i];
    a.o1[i] = a.relu ? (x > 0 ? x : 0) : 0.5f * x * (1.0f + tanhf(GELU_SCALE * (x + 0.044715f * x * x * x)));
}
KERNEL(st__xkk_act_fwd, elt_a, elt_count, act_fwd_body, elt_spans)

/* i1: the input, i2: the output's gradient */
HD void act_bwd_body(const elt_a &a, int64_t i) {
    float x = a.i1[i], g;
    if (a.relu) {
        g = x > 0 ? 1.0f : 0.0f;
    } else {
        float u = GELU_SCALE * (x + 0.044715f * x * x * x), th = tanhf(u);
        g = 0.5f * (1.0f + th) + 0.5f * x * (1.0f - th * th) * GELU_SCALE * (1.0f + 3.0f * 0.044715f * x * x);
    }
    a.o1[i] = g * a.i2[i];
}
KERNEL(st__xkk_act_bwd, elt_a, elt_count, act_bwd_body, elt_spans)

HD void swiglu_fwd_body(const elt_a &a, int64_t i) { a.o1[i] = a.i1[i] / (1.0f + expf(-a.i1[i])) * a.i2[i]; }
KERNEL(st__xkk_swiglu_fwd, elt_a, elt_count, swiglu_fwd_body, elt_spans)

/* o1 = da, o2 = db from a (i1), b (i2), dout (i3) */
HD void swiglu_bwd_body(const elt_a &a, int64_t i) {
    float s = 1.0f / (1.0f + expf(-a.i1[i])), silu = a.i1[i] * s;
    a.o2[i] = a.i3[i] * silu;
    a.o1[i] = a.i3[i] * a.i2[i] * (s + silu * (1.0f - s));
}
KERNEL(st__xkk_swiglu_bwd, elt_a, elt_count, swiglu_bwd_body, elt_spans)

/* y (o1) += x (i1) */
HD void add_body(const elt_a &a, int64_t i) { a.o1[i] += a.i1[i]; }
KERNEL(st__xkk_add, elt_a, elt_count, add_body, elt_spans)

/* ---------------------------------------------------------------- embedding, positions, cross-entropy */

typedef struct tok_a {
    float *o1, *o2;
    const float *i1;
    const int32_t *tok; /* B sequences of T + 1 */
    int64_t N, T, h, v0, V_l, S, r0;
    float scale;
} tok_a;
/* this rank's vocabulary row of row n's token (shift 0) or target (shift 1), -1 where another's */
HD int64_t vocab_row(const tok_a &a, int64_t n, int shift) {
    int64_t r = a.tok[(n / a.T) * (a.T + 1) + n % a.T + shift] - a.v0;
    return r >= 0 && r < a.V_l ? r : -1;
}
/* the tokens of N = B x T rows */
static span toks(const tok_a &a) { return span{a.tok, (size_t)(a.N / a.T * (a.T + 1)) * sizeof(int32_t), 0}; }
HD int64_t tok_rows(const tok_a &a) { return a.N; }
HD int64_t tok_elts(const tok_a &a) { return a.N * a.h; }
HD int64_t tok_vocab(const tok_a &a) { return a.V_l * a.h; }
HD int64_t tok_logits(const tok_a &a) { return a.N * a.V_l; }
HD int64_t pos_elts(const tok_a &a) { return a.S * a.h; }
HD int64_t pos_table(const tok_a &a) { return a.T * a.h; }

/* o1 [N x h] the partial lookup of wte (i1) */
HD void embed_fwd_body(const tok_a &a, int64_t i) {
    int64_t n = i / a.h, c = i % a.h, r = vocab_row(a, n, 0);
    a.o1[i] = r >= 0 ? a.i1[r * a.h + c] : 0.0f;
}
static int embed_fwd_spans(const tok_a &a, span *s) {
    return s[0] = fw(a.o1, a.N * a.h), s[1] = fl(a.i1, a.V_l * a.h), s[2] = toks(a), 3;
}
KERNEL(st__xkk_embed_fwd, tok_a, tok_elts, embed_fwd_body, embed_fwd_spans)
/* element (r, c) of dwte (o1) from dout (i1), rows in order */
HD void embed_bwd_body(const tok_a &a, int64_t i) {
    int64_t r = i / a.h, c = i % a.h;
    for (int64_t n = 0; n < a.N; n++)
        if (vocab_row(a, n, 0) == r) a.o1[r * a.h + c] += a.i1[n * a.h + c];
}
static int embed_bwd_spans(const tok_a &a, span *s) {
    return s[0] = fw(a.o1, a.V_l * a.h), s[1] = fl(a.i1, a.N * a.h), s[2] = toks(a), 3;
}
KERNEL(st__xkk_embed_bwd, tok_a, tok_vocab, embed_bwd_body, embed_bwd_spans)

/* x (o1) [S x h] += wpe (i1) rows (r0 + n) % T */
HD void pos_fwd_body(const tok_a &a, int64_t i) {
    int64_t n = i / a.h, c = i % a.h;
    a.o1[i] += a.i1[((a.r0 + n) % a.T) * a.h + c];
}
static int pos_fwd_spans(const tok_a &a, span *s) { return s[0] = fw(a.o1, a.S * a.h), s[1] = fl(a.i1, a.T * a.h), 2; }
KERNEL(st__xkk_pos_fwd, tok_a, pos_elts, pos_fwd_body, pos_fwd_spans)
/* element (p, c) of dwpe (o1) from dout (i1) [S x h], rows in order */
HD void pos_bwd_body(const tok_a &a, int64_t i) {
    int64_t p = i / a.h, c = i % a.h;
    for (int64_t n = 0; n < a.S; n++)
        if ((a.r0 + n) % a.T == p) a.o1[i] += a.i1[n * a.h + c];
}
static int pos_bwd_spans(const tok_a &a, span *s) { return s[0] = fw(a.o1, a.T * a.h), s[1] = fl(a.i1, a.S * a.h), 2; }
KERNEL(st__xkk_pos_bwd, tok_a, pos_table, pos_bwd_body, pos_bwd_spans)

/* mx (o1) [N]: row n's largest logit (i1) */
HD void xent_max_body(const tok_a &a, int64_t n) {
    float m = -INFINITY;
    for (int64_t j = 0; j < a.V_l; j++) m = a.i1[n * a.V_l + j] > m ? a.i1[n * a.V_l + j] : m;
    a.o1[n] = m;
}
static int xent_max_spans(const tok_a &a, span *s) { return s[0] = fw(a.o1, a.N), s[1] = fl(a.i1, a.N * a.V_l), 2; }
KERNEL(st__xkk_xent_max, tok_a, tok_rows, xent_max_body, xent_max_spans)
/* logits (o1) made exp(logit - mx (i1)), st (o2) [2N]: their sums, the targets' logit - mx */
HD void xent_exp_body(const tok_a &a, int64_t n) {
    int64_t tgt = vocab_row(a, n, 1);
    float *lg = a.o1 + n * a.V_l, s = 0;
    a.o2[a.N + n] = tgt >= 0 ? lg[tgt] - a.i1[n] : 0.0f;
    for (int64_t j = 0; j < a.V_l; j++) s += lg[j] = expf(lg[j] - a.i1[n]);
    a.o2[n] = s;
}
static int xent_exp_spans(const tok_a &a, span *s) {
    s[0] = fw(a.o1, a.N * a.V_l), s[1] = fw(a.o2, 2 * a.N), s[2] = fl(a.i1, a.N), s[3] = toks(a);
    return 4;
}
KERNEL(st__xkk_xent_exp, tok_a, tok_rows, xent_exp_body, xent_exp_spans)
/* logits (o1) divided by their row's sum (i1) */
HD void xent_norm_body(const tok_a &a, int64_t i) { a.o1[i] /= a.i1[i / a.V_l]; }
static int xent_norm_spans(const tok_a &a, span *s) { return s[0] = fw(a.o1, a.N * a.V_l), s[1] = fl(a.i1, a.N), 2; }
KERNEL(st__xkk_xent_norm, tok_a, tok_logits, xent_norm_body, xent_norm_spans)
/* probabilities (o1) made (p - onehot(target)) * scale */
HD void xent_bwd_body(const tok_a &a, int64_t i) {
    int64_t n = i / a.V_l, j = i % a.V_l;
    float p = a.o1[i];
    if (vocab_row(a, n, 1) == j) p -= 1.0f;
    a.o1[i] = p * a.scale;
}
static int xent_bwd_spans(const tok_a &a, span *s) { return s[0] = fw(a.o1, a.N * a.V_l), s[1] = toks(a), 2; }
KERNEL(st__xkk_xent_bwd, tok_a, tok_logits, xent_bwd_body, xent_bwd_spans)

/* ---------------------------------------------------------------- rotary embedding */

typedef struct rope_a {
    float *x;
    int64_t N, T, heads, d, stride;
    int sign;
} rope_a;
HD int64_t rope_count(const rope_a &a) { return a.N * a.heads * (a.d / 2); }
/* pair i of head hd of row n */
HD void rope_body(const rope_a &a, int64_t j) {
    int64_t half = a.d / 2, i = j % half, hd = (j / half) % a.heads, n = j / (half * a.heads);
    double pos = (double)(n % a.T), th = pos * pow(10000.0, -2.0 * (double)i / (double)a.d);
    float c = (float)cos(th), s = (float)sin(th) * (float)a.sign, *v = a.x + n * a.stride + hd * a.d;
    float x1 = v[i], x2 = v[i + half];
    v[i] = x1 * c - x2 * s;
    v[i + half] = x1 * s + x2 * c;
}
static int rope_spans(const rope_a &a, span *s) {
    return s[0] = fw(a.x, a.N > 0 ? (a.N - 1) * a.stride + a.heads * a.d : 0), 1;
}
KERNEL(st__xkk_rope, rope_a, rope_count, rope_body, rope_spans)

/* ---------------------------------------------------------------- causal attention */

typedef struct attn_a {
    float *out, *probs, *dq, *dk, *dv, *ds;
    const float *dout, *cprobs, *q, *k, *v;
    int64_t B, T, hq, hkv, d;
} attn_a;
HD int64_t attn_rows(const attn_a &a) { return a.B * a.hq * a.T; }
HD int64_t attn_kv_rows(const attn_a &a) { return a.B * a.hkv * a.T; }

/* query row t of head h of sequence b: its probabilities over t2 <= t (0 above), its output */
HD void attn_fwd_body(const attn_a &a, int64_t j) {
    int64_t T = a.T, d = a.d, t = j % T, h = (j / T) % a.hq, b = j / (T * a.hq);
    int64_t kh = h / (a.hq / a.hkv), qs = a.hq * d, ks = a.hkv * d;
    float scale = 1.0f / sqrtf((float)d), mx = -INFINITY, sum = 0;
    const float *qt = a.q + (b * T + t) * qs + h * d;
    float *p = a.probs + ((b * a.hq + h) * T + t) * T, *o = a.out + (b * T + t) * qs + h * d;
    for (int64_t t2 = 0; t2 <= t; t2++) {
        const float *kt = a.k + (b * T + t2) * ks + kh * d;
        float s = 0;
        for (int64_t i = 0; i < d; i++) s += qt[i] * kt[i];
        p[t2] = s * scale;
        if (p[t2] > mx) mx = p[t2];
    }
    for (int64_t t2 = 0; t2 <= t; t2++) sum += p[t2] = expf(p[t2] - mx);
    for (int64_t t2 = 0; t2 < T; t2++) p[t2] = t2 <= t ? p[t2] / sum : 0.0f;
    for (int64_t i = 0; i < d; i++) o[i] = 0;
    for (int64_t t2 = 0; t2 <= t; t2++) {
        const float *vt = a.v + (b * T + t2) * ks + kh * d;
        for (int64_t i = 0; i < d; i++) o[i] += p[t2] * vt[i];
    }
}
static int attn_fwd_spans(const attn_a &a, span *s) {
    int64_t N = a.B * a.T;
    s[0] = fw(a.out, N * a.hq * a.d), s[1] = fw(a.probs, a.B * a.hq * a.T * a.T), s[2] = fl(a.q, N * a.hq * a.d);
    s[3] = fl(a.k, N * a.hkv * a.d), s[4] = fl(a.v, N * a.hkv * a.d);
    return 5;
}
KERNEL(st__xkk_attn_fwd, attn_a, attn_rows, attn_fwd_body, attn_fwd_spans)

/* dP = dO V^T, the softmax's backward dS = P (dP - sum P dP) into ds, and dq += dS K (query row j) */
HD void attn_bwd_q_body(const attn_a &a, int64_t j) {
    int64_t T = a.T, d = a.d, t = j % T, h = (j / T) % a.hq, b = j / (T * a.hq);
    int64_t kh = h / (a.hq / a.hkv), qs = a.hq * d, ks = a.hkv * d;
    float scale = 1.0f / sqrtf((float)d), dot_sum = 0;
    const float *p = a.cprobs + ((b * a.hq + h) * T + t) * T, *dot = a.dout + (b * T + t) * qs + h * d;
    float *dqt = a.dq + (b * T + t) * qs + h * d, *ds = a.ds + ((b * a.hq + h) * T + t) * T;
    for (int pass = 0; pass < 2; pass++)
        for (int64_t t2 = 0; t2 <= t; t2++) {
            const float *vt = a.v + (b * T + t2) * ks + kh * d, *kt = a.k + (b * T + t2) * ks + kh * d;
            float s = 0;
            for (int64_t i = 0; i < d; i++) s += dot[i] * vt[i];
            if (pass == 0) {
                dot_sum += p[t2] * s;
                continue;
            }
            ds[t2] = p[t2] * (s - dot_sum) * scale;
            for (int64_t i = 0; i < d; i++) dqt[i] += ds[t2] * kt[i];
        }
}
/* key row t2 of kv head kh: dv += P^T dO, dk += dS^T Q over the group's query heads and rows t >= t2 */
HD void attn_bwd_kv_body(const attn_a &a, int64_t j) {
    int64_t T = a.T, d = a.d, t2 = j % T, kh = (j / T) % a.hkv, b = j / (T * a.hkv);
    int64_t group = a.hq / a.hkv, qs = a.hq * d, ks = a.hkv * d;
    float *dkt = a.dk + (b * T + t2) * ks + kh * d, *dvt = a.dv + (b * T + t2) * ks + kh * d;
    for (int64_t h = kh * group; h < (kh + 1) * group; h++)
        for (int64_t t = t2; t < T; t++) {
            int64_t r = ((b * a.hq + h) * T + t) * T + t2;
            const float *dot = a.dout + (b * T + t) * qs + h * d, *qt = a.q + (b * T + t) * qs + h * d;
            for (int64_t i = 0; i < d; i++) {
                dvt[i] += a.cprobs[r] * dot[i];
                dkt[i] += a.ds[r] * qt[i];
            }
        }
}
static int attn_bwd_spans(const attn_a &a, span *s) {
    int64_t N = a.B * a.T, P = a.B * a.hq * a.T * a.T;
    s[0] = fw(a.dq, N * a.hq * a.d), s[1] = fw(a.dk, N * a.hkv * a.d), s[2] = fw(a.dv, N * a.hkv * a.d);
    s[3] = fw(a.ds, P), s[4] = fl(a.dout, N * a.hq * a.d), s[5] = fl(a.cprobs, P), s[6] = fl(a.q, N * a.hq * a.d);
    s[7] = fl(a.k, N * a.hkv * a.d), s[8] = fl(a.v, N * a.hkv * a.d);
    return 9;
}
KERNEL(st__xkk_attn_bwd_q, attn_a, attn_rows, attn_bwd_q_body, attn_bwd_spans)
KERNEL(st__xkk_attn_bwd_kv, attn_a, attn_kv_rows, attn_bwd_kv_body, attn_bwd_spans)

/* ---------------------------------------------------------------- Adam */

typedef struct adam_a {
    float *p, *m, *v;
    const float *g;
    int64_t n;
    float lr, b1, b2, eps, c1, c2; /* c1, c2: the bias corrections 1 - b^t */
} adam_a;
HD int64_t adam_count(const adam_a &a) { return a.n; }
HD void adam_body(const adam_a &a, int64_t i) {
    a.m[i] = a.b1 * a.m[i] + (1.0f - a.b1) * a.g[i];
    a.v[i] = a.b2 * a.v[i] + (1.0f - a.b2) * a.g[i] * a.g[i];
    a.p[i] -= a.lr * (a.m[i] / a.c1) / (sqrtf(a.v[i] / a.c2) + a.eps);
}
static int adam_spans(const adam_a &a, span *s) {
    return s[0] = fw(a.p, a.n), s[1] = fw(a.m, a.n), s[2] = fw(a.v, a.n), s[3] = fl(a.g, a.n), 4;
}
KERNEL(st__xkk_adam, adam_a, adam_count, adam_body, adam_spans)

/* ---------------------------------------------------------------- MoE routing, dispatch, combine
 *
 * exec/moe_kernels.h's per-thread code (shared with the cpu backend's loops): a thread per token (route,
 * router_bwd), per expert (count, first), per slot (place), per sent or received row (dy, sort), per element
 * (gather, permute, combine). The counts and places are found by counts over every slot rather than a
 * parallel scan: the host routing's order and drops exactly, simply. */

typedef struct moe_a {
    float *f1, *f2;           /* outputs (floats) */
    int32_t *o1, *o2;         /* outputs (int32) */
    const float *c1, *c2, *c3; /* inputs (floats) */
    const int32_t *t1, *t2;    /* inputs (int32) */
    int64_t N, E, K, h, El, R, nsend, cap;
    int dir, acc;
} moe_a;
static span iw(void *p, int64_t n) { return span{p, (size_t)n * sizeof(int32_t), 1}; }
static span il(const void *p, int64_t n) { return span{p, (size_t)n * sizeof(int32_t), 0}; }

HD int64_t moe_tokens(const moe_a &a) { return a.N; }
HD int64_t moe_experts(const moe_a &a) { return a.E; }
HD int64_t moe_slots(const moe_a &a) { return a.N * a.K; }
HD int64_t moe_sent_elts(const moe_a &a) { return a.nsend * (a.h + 1); }
HD int64_t moe_rows(const moe_a &a) { return a.R; }
HD int64_t moe_firsts(const moe_a &a) { return a.El + 1; }
HD int64_t moe_row_elts(const moe_a &a) { return a.R * a.h; }
HD int64_t moe_token_elts(const moe_a &a) { return a.N * a.h; }
HD int64_t moe_sent(const moe_a &a) { return a.nsend; }

/* o1 top, f1 s from c1 logits */
HD void moe_route_body(const moe_a &a, int64_t n) { st__xmoe_route(a.o1, a.f1, a.c1, a.E, a.K, n); }
static int moe_route_spans(const moe_a &a, span *s) {
    return s[0] = iw(a.o1, a.N * a.K), s[1] = fw(a.f1, a.N * a.K), s[2] = fl(a.c1, a.N * a.E), 3;
}
KERNEL(st__xkk_moe_route, moe_a, moe_tokens, moe_route_body, moe_route_spans)
/* o1 cnt from t1 top */
HD void moe_count_body(const moe_a &a, int64_t e) { st__xmoe_count(a.o1, a.t1, a.N * a.K, a.cap, e); }
static int moe_count_spans(const moe_a &a, span *s) { return s[0] = iw(a.o1, a.E), s[1] = il(a.t1, a.N * a.K), 2; }
KERNEL(st__xkk_moe_count, moe_a, moe_experts, moe_count_body, moe_count_spans)
/* o1 order, o2 where from t2 cnt, t1 top, c1 s */
HD void moe_place_body(const moe_a &a, int64_t i) {
    st__xmoe_place(a.o1, a.o2, a.t2, a.t1, a.c1, a.N * a.K, a.cap, i);
}
static int moe_place_spans(const moe_a &a, span *s) {
    int64_t nk = a.N * a.K;
    s[0] = iw(a.o1, nk), s[1] = iw(a.o2, nk), s[2] = il(a.t2, a.E), s[3] = il(a.t1, nk), s[4] = fl(a.c1, nk);
    return 5;
}
KERNEL(st__xkk_moe_place, moe_a, moe_slots, moe_place_body, moe_place_spans)
/* f1 send from c1 n2, t1 order, t2 top */
HD void moe_gather_body(const moe_a &a, int64_t j) { st__xmoe_gather(a.f1, a.c1, a.t1, a.t2, a.K, a.h, a.El, j); }
static int moe_gather_spans(const moe_a &a, span *s) {
    s[0] = fw(a.f1, a.nsend * (a.h + 1)), s[1] = fl(a.c1, a.N * a.h), s[2] = il(a.t1, a.nsend);
    s[3] = il(a.t2, a.N * a.K);
    return 4;
}
KERNEL(st__xkk_moe_gather, moe_a, moe_sent_elts, moe_gather_body, moe_gather_spans)
/* f1 xin, o1 perm from c1 recv; o2 first */
HD void moe_sort_body(const moe_a &a, int64_t i) { st__xmoe_sort(a.f1, a.o1, a.c1, a.R, a.h, i); }
HD void moe_first_body(const moe_a &a, int64_t c) { st__xmoe_first(a.o2, a.c1, a.R, a.h, c); }
static int moe_sort_spans(const moe_a &a, span *s) {
    s[0] = fw(a.f1, a.R * a.h), s[1] = iw(a.o1, a.R), s[2] = iw(a.o2, a.El + 1), s[3] = fl(a.c1, a.R * (a.h + 1));
    return 4;
}
KERNEL(st__xkk_moe_sort, moe_a, moe_rows, moe_sort_body, moe_sort_spans)
KERNEL(st__xkk_moe_first, moe_a, moe_firsts, moe_first_body, moe_sort_spans)
/* f1 to from c1 from, t1 perm */
HD void moe_permute_body(const moe_a &a, int64_t j) { st__xmoe_permute(a.f1, a.c1, a.t1, a.h, a.dir, j); }
static int moe_permute_spans(const moe_a &a, span *s) {
    return s[0] = fw(a.f1, a.R * a.h), s[1] = fl(a.c1, a.R * a.h), s[2] = il(a.t1, a.R), 3;
}
KERNEL(st__xkk_moe_permute, moe_a, moe_row_elts, moe_permute_body, moe_permute_spans)
/* f1 out from c1 y, c2 s (NULL: 1), t1 where */
HD void moe_combine_body(const moe_a &a, int64_t j) { st__xmoe_combine(a.f1, a.c1, a.c2, a.t1, a.K, a.h, a.acc, j); }
static int moe_combine_spans(const moe_a &a, span *s) {
    s[0] = fw(a.f1, a.N * a.h), s[1] = fl(a.c1, a.nsend * a.h), s[2] = fl(a.c2, a.N * a.K), s[3] = il(a.t1, a.N * a.K);
    return 4;
}
KERNEL(st__xkk_moe_combine, moe_a, moe_token_elts, moe_combine_body, moe_combine_spans)
/* f1 dy, f2 ds from c1 dout, c2 y, c3 s, t1 order */
HD void moe_dy_body(const moe_a &a, int64_t i) { st__xmoe_dy(a.f1, a.f2, a.c1, a.c2, a.c3, a.t1, a.K, a.h, i); }
static int moe_dy_spans(const moe_a &a, span *s) {
    s[0] = fw(a.f1, a.nsend * a.h), s[1] = fw(a.f2, a.N * a.K), s[2] = fl(a.c1, a.N * a.h);
    s[3] = fl(a.c2, a.nsend * a.h), s[4] = fl(a.c3, a.N * a.K), s[5] = il(a.t1, a.nsend);
    return 6;
}
KERNEL(st__xkk_moe_dy, moe_a, moe_sent, moe_dy_body, moe_dy_spans)
/* f1 dl from c1 s, c2 ds, t1 top */
HD void moe_router_bwd_body(const moe_a &a, int64_t n) { st__xmoe_router_bwd(a.f1, a.c1, a.c2, a.t1, a.E, a.K, n); }
static int moe_router_bwd_spans(const moe_a &a, span *s) {
    int64_t nk = a.N * a.K;
    return s[0] = fw(a.f1, a.N * a.E), s[1] = fl(a.c1, nk), s[2] = fl(a.c2, nk), s[3] = il(a.t1, nk), 4;
}
KERNEL(st__xkk_moe_router_bwd, moe_a, moe_tokens, moe_router_bwd_body, moe_router_bwd_spans)

/* ---------------------------------------------------------------- the launchers */

extern "C" int st__xkc_moe_route(void *stream, int32_t *top, float *s, const float *logits, int64_t N, int64_t E,
                                 int64_t K) {
    moe_a a = {s, NULL, top, NULL, logits, NULL, NULL, NULL, NULL, N, E, K, 0, 0, 0, 0, 0, 0, 0};
    return launch(st__xkk_moe_route, a, N, stream);
}

extern "C" int st__xkc_moe_place(void *stream, int32_t *cnt, int32_t *order, int32_t *where, const int32_t *top,
                                 const float *s, int64_t NK, int64_t E, int64_t cap) {
    moe_a a = {NULL, NULL, cnt, NULL, NULL, NULL, NULL, top, NULL, NK, E, 1, 0, 0, 0, 0, cap, 0, 0};
    int e = launch(st__xkk_moe_count, a, E, stream);
    moe_a b = {NULL, NULL, order, where, s, NULL, NULL, top, cnt, NK, E, 1, 0, 0, 0, 0, cap, 0, 0};
    return e ? e : launch(st__xkk_moe_place, b, NK, stream);
}

extern "C" int st__xkc_moe_gather(void *stream, float *send, const float *n2, const int32_t *order,
                                  const int32_t *top, int64_t N, int64_t nsend, int64_t K, int64_t h, int64_t El) {
    moe_a a = {send, NULL, NULL, NULL, n2, NULL, NULL, order, top, N, 0, K, h, El, 0, nsend, 0, 0, 0};
    return launch(st__xkk_moe_gather, a, nsend * (h + 1), stream);
}

extern "C" int st__xkc_moe_sort(void *stream, float *xin, int32_t *perm, int32_t *first, const float *recv, int64_t R,
                                int64_t h, int64_t El) {
    moe_a a = {xin, NULL, perm, first, recv, NULL, NULL, NULL, NULL, 0, 0, 0, h, El, R, 0, 0, 0, 0};
    int e = launch(st__xkk_moe_sort, a, R, stream);
    return e ? e : launch(st__xkk_moe_first, a, El + 1, stream);
}

extern "C" int st__xkc_moe_permute(void *stream, float *to, const float *from, const int32_t *perm, int64_t R,
                                   int64_t h, int dir) {
    moe_a a = {to, NULL, NULL, NULL, from, NULL, NULL, perm, NULL, 0, 0, 0, h, 0, R, 0, 0, dir, 0};
    return launch(st__xkk_moe_permute, a, R * h, stream);
}

extern "C" int st__xkc_moe_combine(void *stream, float *out, const float *y, const float *s, const int32_t *where,
                                   int64_t N, int64_t nsend, int64_t K, int64_t h, int acc) {
    moe_a a = {out, NULL, NULL, NULL, y, s, NULL, where, NULL, N, 0, K, h, 0, 0, nsend, 0, 0, acc};
    return launch(st__xkk_moe_combine, a, N * h, stream);
}

extern "C" int st__xkc_moe_dy(void *stream, float *dy, float *ds, const float *dout, const float *y, const float *s,
                              const int32_t *order, int64_t N, int64_t nsend, int64_t K, int64_t h) {
    moe_a a = {dy, ds, NULL, NULL, dout, y, s, order, NULL, N, 0, K, h, 0, 0, nsend, 0, 0, 0};
    return launch(st__xkk_moe_dy, a, nsend, stream);
}

extern "C" int st__xkc_moe_router_bwd(void *stream, float *dl, const float *s, const float *ds, const int32_t *top,
                                      int64_t N, int64_t E, int64_t K) {
    moe_a a = {dl, NULL, NULL, NULL, s, ds, NULL, top, NULL, N, E, K, 0, 0, 0, 0, 0, 0, 0};
    return launch(st__xkk_moe_router_bwd, a, N, stream);
}

extern "C" int st__xkc_bias_fill(void *stream, float *out, const float *bias, int64_t N, int64_t OC, int accumulate) {
    bias_a a = {out, bias, N, OC, accumulate};
    return launch(st__xkk_bias_fill, a, N * OC, stream);
}

extern "C" int st__xkc_col_sum(void *stream, float *dbias, const float *dout, int64_t N, int64_t OC) {
    bias_a a = {dbias, dout, N, OC, 1};
    return launch(st__xkk_col_sum, a, OC, stream);
}

extern "C" int st__xkc_norm_fwd(void *stream, float *out, float *mean, float *rstd, const float *inp, const float *w,
                                const float *b, int64_t N, int64_t C) {
    norm_a a = {out, mean, rstd, NULL, NULL, NULL, inp, w, b, NULL, NULL, N, C};
    return launch(st__xkk_norm_fwd, a, N, stream);
}

extern "C" int st__xkc_norm_bwd(void *stream, float *dinp, float *dw, float *db, const float *dout, const float *inp,
                                const float *w, const float *mean, const float *rstd, int64_t N, int64_t C) {
    norm_a a = {dinp, NULL, NULL, dw, db, dout, inp, w, NULL, mean, rstd, N, C};
    int e = launch(st__xkk_norm_bwd_rows, a, N, stream);
    return e ? e : launch(st__xkk_norm_bwd_cols, a, N > 0 ? C : 0, stream);
}

extern "C" int st__xkc_act_fwd(void *stream, float *out, const float *inp, int64_t n, int relu) {
    elt_a a = {out, NULL, inp, NULL, NULL, n, relu};
    return launch(st__xkk_act_fwd, a, n, stream);
}

extern "C" int st__xkc_act_bwd(void *stream, float *dinp, const float *inp, const float *dout, int64_t n, int relu) {
    elt_a a = {dinp, NULL, inp, dout, NULL, n, relu};
    return launch(st__xkk_act_bwd, a, n, stream);
}

extern "C" int st__xkc_swiglu_fwd(void *stream, float *out, const float *a_, const float *b, int64_t n) {
    elt_a a = {out, NULL, a_, b, NULL, n, 0};
    return launch(st__xkk_swiglu_fwd, a, n, stream);
}

extern "C" int st__xkc_swiglu_bwd(void *stream, float *da, float *db, const float *a_, const float *b,
                                  const float *dout, int64_t n) {
    elt_a a = {da, db, a_, b, dout, n, 0};
    return launch(st__xkk_swiglu_bwd, a, n, stream);
}

extern "C" int st__xkc_rope(void *stream, float *x, int64_t N, int64_t T, int64_t heads, int64_t d, int64_t stride,
                            int sign) {
    rope_a a = {x, N, T, heads, d, stride, sign};
    return launch(st__xkk_rope, a, rope_count(a), stream);
}

extern "C" int st__xkc_attn_fwd(void *stream, float *out, float *probs, const float *q, const float *k, const float *v,
                                int64_t B, int64_t T, int64_t hq, int64_t hkv, int64_t d) {
    attn_a a = {out, probs, NULL, NULL, NULL, NULL, NULL, NULL, q, k, v, B, T, hq, hkv, d};
    return launch(st__xkk_attn_fwd, a, attn_rows(a), stream);
}

extern "C" int st__xkc_attn_bwd(void *stream, float *dq, float *dk, float *dv, float *ds, const float *dout,
                                const float *probs, const float *q, const float *k, const float *v, int64_t B,
                                int64_t T, int64_t hq, int64_t hkv, int64_t d) {
    attn_a a = {NULL, NULL, dq, dk, dv, ds, dout, probs, q, k, v, B, T, hq, hkv, d};
    int e = launch(st__xkk_attn_bwd_q, a, attn_rows(a), stream);
    return e ? e : launch(st__xkk_attn_bwd_kv, a, attn_kv_rows(a), stream);
}

extern "C" int st__xkc_adam(void *stream, float *p, const float *g, float *m, float *v, int64_t n, int t, float lr,
                            float b1, float b2, float eps) {
    adam_a a = {p, m, v, g, n, lr, b1, b2, eps, 1.0f - powf(b1, (float)t), 1.0f - powf(b2, (float)t)};
    return launch(st__xkk_adam, a, n, stream);
}

extern "C" int st__xkc_add(void *stream, float *y, const float *x, int64_t n) {
    elt_a a = {y, NULL, x, NULL, NULL, n, 0};
    return launch(st__xkk_add, a, n, stream);
}

extern "C" int st__xkc_embed_fwd(void *stream, float *out, const int32_t *tokens, const float *wte, int64_t N,
                                 int64_t T, int64_t h, int64_t v0, int64_t V_l) {
    tok_a a = {out, NULL, wte, tokens, N, T, h, v0, V_l, 0, 0, 0.0f};
    return launch(st__xkk_embed_fwd, a, N * h, stream);
}

extern "C" int st__xkc_embed_bwd(void *stream, float *dwte, const int32_t *tokens, const float *dout, int64_t N,
                                 int64_t T, int64_t h, int64_t v0, int64_t V_l) {
    tok_a a = {dwte, NULL, dout, tokens, N, T, h, v0, V_l, 0, 0, 0.0f};
    return launch(st__xkk_embed_bwd, a, N > 0 ? V_l * h : 0, stream);
}

extern "C" int st__xkc_pos_fwd(void *stream, float *x, const float *wpe, int64_t S, int64_t T, int64_t h, int64_t r0) {
    tok_a a = {x, NULL, wpe, NULL, 0, T, h, 0, 0, S, r0, 0.0f};
    return launch(st__xkk_pos_fwd, a, S * h, stream);
}

extern "C" int st__xkc_pos_bwd(void *stream, float *dwpe, const float *dout, int64_t S, int64_t T, int64_t h,
                               int64_t r0) {
    tok_a a = {dwpe, NULL, dout, NULL, 0, T, h, 0, 0, S, r0, 0.0f};
    return launch(st__xkk_pos_bwd, a, S > 0 ? T * h : 0, stream);
}

extern "C" int st__xkc_xent_max(void *stream, float *mx, const float *logits, int64_t N, int64_t V_l) {
    tok_a a = {mx, NULL, logits, NULL, N, 1, 0, 0, V_l, 0, 0, 0.0f};
    return launch(st__xkk_xent_max, a, N, stream);
}

extern "C" int st__xkc_xent_exp(void *stream, float *logits, float *st, const float *mx, const int32_t *tokens,
                                int64_t N, int64_t T, int64_t V_l, int64_t v0) {
    tok_a a = {logits, st, mx, tokens, N, T, 0, v0, V_l, 0, 0, 0.0f};
    return launch(st__xkk_xent_exp, a, N, stream);
}

extern "C" int st__xkc_xent_norm(void *stream, float *logits, const float *st, int64_t N, int64_t V_l) {
    tok_a a = {logits, NULL, st, NULL, N, 1, 0, 0, V_l, 0, 0, 0.0f};
    return launch(st__xkk_xent_norm, a, N * V_l, stream);
}

extern "C" int st__xkc_xent_bwd(void *stream, float *p, const int32_t *tokens, float scale, int64_t N, int64_t T,
                                int64_t V_l, int64_t v0) {
    tok_a a = {p, NULL, NULL, tokens, N, T, 0, v0, V_l, 0, 0, scale};
    return launch(st__xkk_xent_bwd, a, N * V_l, stream);
}

/* ---------------------------------------------------------------- the host versions */

#define HOST(NAME) {#NAME, (const void *)NAME, NAME##_host}
static const st__xkc_host host_table[] = {
    HOST(st__xkk_bias_fill),     HOST(st__xkk_col_sum),    HOST(st__xkk_norm_fwd),    HOST(st__xkk_norm_bwd_rows),
    HOST(st__xkk_norm_bwd_cols), HOST(st__xkk_act_fwd),    HOST(st__xkk_act_bwd),     HOST(st__xkk_swiglu_fwd),
    HOST(st__xkk_swiglu_bwd),    HOST(st__xkk_rope),       HOST(st__xkk_attn_fwd),    HOST(st__xkk_attn_bwd_q),
    HOST(st__xkk_attn_bwd_kv),   HOST(st__xkk_adam),       HOST(st__xkk_add),         HOST(st__xkk_embed_fwd),
    HOST(st__xkk_embed_bwd),     HOST(st__xkk_pos_fwd),    HOST(st__xkk_pos_bwd),     HOST(st__xkk_xent_max),
    HOST(st__xkk_xent_exp),      HOST(st__xkk_xent_norm),  HOST(st__xkk_xent_bwd),  HOST(st__xkk_moe_route),
    HOST(st__xkk_moe_count),     HOST(st__xkk_moe_place),  HOST(st__xkk_moe_gather), HOST(st__xkk_moe_sort),
    HOST(st__xkk_moe_first),     HOST(st__xkk_moe_permute), HOST(st__xkk_moe_combine), HOST(st__xkk_moe_dy),
    HOST(st__xkk_moe_router_bwd),
};

extern "C" const st__xkc_host *st__xkc_host_table(int *n) {
    *n = (int)(sizeof host_table / sizeof host_table[0]);
    return host_table;
}
