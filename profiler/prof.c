/* prof.c: the pure half of `strata profile` (profiler/profiler.h): what to time, and what to make of
 * the times. Built with or without CUDA; the Check suite tests it without a GPU.
 *
 * Shapes come from the operator graph itself (st_ops_layer, st_ops_tail), so the grid covers what
 * the estimator will ask for: every GEMM of every preset under tp = 1, 2, 4, 8 and micro-batch 1
 * and 4 (attention unfused, so that its batched GEMMs are timed; a fused attention kernel is not
 * among strata's kernels, and a plan with attention=flash has no shape of that class here: its
 * rate stays cost/compute.c's table unless a Kineto import measured it). The profile looks GEMMs
 * up by FLOPs alone, so shapes are binned by FLOPs in powers of two and a few per bin are timed;
 * bins are the unit of coverage (tests/test_calibrate.c checks that every bin a preset shape falls
 * into is timed).
 *
 * Fitting follows profiler/kineto.c (the same tables from a PyTorch trace): power-of-two bins of
 * x, per bin the median x and the median rate. Plan shapes (--model/--plan) are kept as points at
 * their exact x, so the estimate of that plan reads its own measurements; several at one x (fc1
 * and fc2 do the same FLOPs) give total work over total time, which is what the estimator sums.
 *
 * Invariants: same input, same grid and same bytes out; fills are never zero, inf or NaN. */
#include "profiler/profiler.h"
#include "src/io/jsonutil.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ------------------------------------------------------------------ kernels */

const char *st__prof_kernel_name(st__prof_kernel k) {
    static const char *const names[] = {"layernorm", "rmsnorm", "softmax", "gelu", "swiglu", "add", "adam"};
    return (unsigned)k < ST_PROF_KERNELS ? names[k] : "?";
}

st_opclass st__prof_kernel_class(st__prof_kernel k) {
    switch (k) {
    case ST_PROF_LAYERNORM:
    case ST_PROF_RMSNORM: return ST_OPC_NORM;
    case ST_PROF_SOFTMAX: return ST_OPC_SOFTMAX;
    default: return ST_OPC_ELEMWISE;
    }
}

double st__prof_mem_bytes(const st__prof_mem *k) {
    double n = (double)k->rows * (double)k->cols;
    switch (k->kernel) {
    case ST_PROF_LAYERNORM:
    case ST_PROF_RMSNORM:
    case ST_PROF_SOFTMAX:
    case ST_PROF_GELU: return 2 * n * 2;
    case ST_PROF_SWIGLU:
    case ST_PROF_ADD: return 3 * n * 2;
    case ST_PROF_ADAM: return 30 * n;
    default: return 0;
    }
}

/* ------------------------------------------------------------------ growing arrays */

#define PUSH(arr, n, cap, item)                                                                                        \
    do {                                                                                                               \
        if ((n) == (cap)) {                                                                                            \
            int c_ = (cap) ? 2 * (cap) : 64;                                                                           \
            void *g_ = realloc((arr), (size_t)c_ * sizeof *(arr));                                                     \
            if (!g_) return ST_ENOMEM;                                                                                 \
            (arr) = g_;                                                                                                \
            (cap) = c_;                                                                                                \
        }                                                                                                              \
        (arr)[(n)++] = (item);                                                                                         \
    } while (0)

typedef struct gvec {
    st__prof_gemm *v;
    int n, cap;
} gvec;

static int push_gemm(gvec *g, const st_op *o, int plan) {
    if (o->cls != ST_OPC_GEMM && o->cls != ST_OPC_BGEMM) return 0;
    st__prof_gemm x = {.cls = o->cls, .plan = plan};
    /* shapes are counts; an MoE expert's token share can come out fractional on odd splits */
    x.m = fmax(1, round(o->m)), x.n = fmax(1, round(o->n)), x.k = fmax(1, round(o->k));
    x.batch = fmax(1, round(o->batch));
    x.flops = 2 * x.m * x.n * x.k * x.batch;
    PUSH(g->v, g->n, g->cap, x);
    return 0;
}

static int cmp_gemm(const void *pa, const void *pb) {
    const st__prof_gemm *a = pa, *b = pb;
    const double ka[] = {a->cls, a->flops, a->m, a->n, a->k, a->batch};
    const double kb[] = {b->cls, b->flops, b->m, b->n, b->k, b->batch};
    for (int i = 0; i < 6; i++)
        if (ka[i] != kb[i]) return ka[i] < kb[i] ? -1 : 1;
    return 0;
}

static int same_gemm(const st__prof_gemm *a, const st__prof_gemm *b) { return cmp_gemm(a, b) == 0; }

/* sorts and drops repeated shapes */
static void unique_gemms(gvec *g) {
    if (g->n == 0) return;
    qsort(g->v, (size_t)g->n, sizeof *g->v, cmp_gemm);
    int w = 1;
    for (int i = 1; i < g->n; i++)
        if (!same_gemm(&g->v[i], &g->v[w - 1])) g->v[w++] = g->v[i];
    g->n = w;
}

/* the GEMMs one rank runs per micro-batch: one block of each kind (st_model_kinds), the logits */
static int model_gemms(const st_model *m, const st_shard *s, gvec *g, int plan) {
    st_op ops[ST_MAX_OPS];
    int64_t idx[ST_MAX_KINDS];
    int nk = st_model_kinds(m, idx);
    for (int b = 0; b < nk; b++) {
        int n = st_ops_layer(m, s, idx[b], ops, ST_MAX_OPS);
        if (n < 0) return n;
        for (int i = 0; i < n; i++)
            if (push_gemm(g, &ops[i], plan)) return ST_ENOMEM;
    }
    int n = st_ops_tail(m, s, ops, ST_MAX_OPS);
    if (n < 0) return n;
    for (int i = 0; i < n; i++)
        if (push_gemm(g, &ops[i], plan)) return ST_ENOMEM;
    return 0;
}

static int bin_of(double x) {
    int e;
    frexp(x, &e);
    return e; /* x in [2^(e-1), 2^e) */
}

double st__prof_gemm_bytes(const st__prof_gemm *g, double elem_bytes) {
    double xk = g->m * g->k, wk = g->n * g->k, y = g->m * g->n;
    double big = fmax(xk, fmax(wk, y));
    return (xk + wk + y + big) * g->batch * elem_bytes;
}

int st__prof_gemm_grid(int quick, double cap_bytes, double elem_bytes, st__prof_gemm **out, int *nout) {
    static const int tps[] = {1, 2, 4, 8};
    static const int64_t mbss[] = {1, 4};
    gvec all = {0};
    st__prof_gemm *res = NULL;
    int nres = 0, capres = 0, rc = 0;
    size_t np;
    const st_model *presets = st_model_presets(&np);

    *out = NULL;
    *nout = 0;
    for (size_t i = 0; i < np; i++) {
        const st_model *m = &presets[i];
        if (m->hidden < ST_PROF_MIN_HIDDEN) continue;
        for (size_t t = 0; t < sizeof tps / sizeof tps[0]; t++) {
            if (!st_model_tp_divides(m, tps[t])) continue;
            for (size_t b = 0; b < sizeof mbss / sizeof mbss[0]; b++) {
                st_shard s = {.tp = tps[t],
                              .cp = 1,
                              .ep = 1,
                              .sp = 0,
                              .mbs = mbss[b],
                              .seq = m->seq_len,
                              .dtype = ST_DT_BF16,
                              .grad_bytes = 4,
                              /* the batched GEMMs of unfused attention; strata has no fused
                               * attention kernel to time (a Kineto import calibrates that class) */
                              .attention = ST_ATTN_UNFUSED};
                if ((rc = model_gemms(m, &s, &all, 0)) < 0) goto out;
            }
        }
    }
    unique_gemms(&all);
    /* what does not fit leaves before the picking */
    int w = 0;
    for (int i = 0; i < all.n; i++)
        if (st__prof_gemm_bytes(&all.v[i], elem_bytes) <= cap_bytes) all.v[w++] = all.v[i];
    all.n = w;
    int per_bin = quick ? 1 : 3;
    for (int i = 0; i < all.n;) {
        int j = i;
        int e = bin_of(all.v[i].flops);
        while (j < all.n && all.v[j].cls == all.v[i].cls && bin_of(all.v[j].flops) == e)
            j++;
        int c = j - i;
        if (!quick || (e % 3 == 0 && e <= 42)) {
            int pick = c < per_bin ? c : per_bin;
            for (int p = 0; p < pick; p++) {
                /* evenly over the bin (sorted by FLOPs): the middle one when picking one */
                int at = i + (int)(((int64_t)(2 * p + 1) * c) / (2 * pick));
                st__prof_gemm g = all.v[at];
                if (nres == capres) {
                    int nc = capres ? 2 * capres : 64;
                    st__prof_gemm *gr = realloc(res, (size_t)nc * sizeof *gr);
                    if (!gr) {
                        rc = ST_ENOMEM;
                        goto out;
                    }
                    res = gr;
                    capres = nc;
                }
                res[nres++] = g;
            }
        }
        i = j;
    }
    *out = res;
    *nout = nres;
    res = NULL;
    rc = 0;
out:
    free(res);
    free(all.v);
    return rc;
}

/* ------------------------------------------------------------------ memory-bound grid */

typedef struct mvec {
    st__prof_mem *v;
    int n, cap;
} mvec;

static int push_mem(mvec *v, st__prof_kernel k, int64_t rows, int64_t cols, double x, int plan) {
    st__prof_mem e = {.kernel = k, .rows = rows < 1 ? 1 : rows, .cols = cols < 1 ? 1 : cols, .plan = plan};
    e.x = x > 0 ? x : st__prof_mem_bytes(&e);
    PUSH(v->v, v->n, v->cap, e);
    return 0;
}

/* a kernel of kind k sized to move about `bytes` (rows of `cols` for norms and softmax) */
static void size_kernel(st__prof_kernel k, double bytes, int64_t cols, int64_t *rows_out, int64_t *cols_out) {
    double per; /* bytes per element of the row x col tensor */
    switch (k) {
    case ST_PROF_SWIGLU:
    case ST_PROF_ADD: per = 6; break;
    case ST_PROF_ADAM: per = 30; break;
    default: per = 4;
    }
    if (k == ST_PROF_LAYERNORM || k == ST_PROF_RMSNORM || k == ST_PROF_SOFTMAX) {
        *cols_out = cols;
        *rows_out = (int64_t)fmax(1, llround(bytes / (per * (double)cols)));
    } else {
        *cols_out = 1;
        *rows_out = (int64_t)fmax(1, llround(bytes / per));
    }
}

int st__prof_mem_grid(int quick, st__prof_mem **out, int *n) {
    mvec v = {0};
    *out = NULL;
    *n = 0;
    int lo = quick ? 20 : 18, hi = quick ? 28 : 30, step = quick ? 4 : 2;
    for (int k = 0; k < ST_PROF_KERNELS; k++)
        for (int e = lo; e <= hi; e += step) {
            int64_t rows, cols;
            size_kernel((st__prof_kernel)k, ldexp(1, e), k == ST_PROF_SOFTMAX ? 2048 : 4096, &rows, &cols);
            if (push_mem(&v, (st__prof_kernel)k, rows, cols, 0, 0)) {
                free(v.v);
                return ST_ENOMEM;
            }
        }
    *out = v.v;
    *n = v.n;
    return 0;
}

/* ------------------------------------------------------------------ one plan's shapes */

static int plan_mem_op(mvec *v, const st_model *m, const st_plan *p, const st_op *o) {
    if (o->cls != ST_OPC_NORM && o->cls != ST_OPC_SOFTMAX && o->cls != ST_OPC_ELEMWISE) return 0;
    for (int pass = 0; pass < 2; pass++) {
        int kernels = pass ? o->kernels_bwd : o->kernels_fwd;
        double bytes = pass ? o->bwd_bytes : o->fwd_bytes;
        if (kernels <= 0 || !(bytes > 0)) continue;
        double x = bytes / kernels;
        st__prof_kernel k;
        int64_t cols = 1;
        if (o->cls == ST_OPC_NORM) {
            k = m->norm == ST_NORM_RMSNORM ? ST_PROF_RMSNORM : ST_PROF_LAYERNORM;
            cols = m->hidden;
        } else if (o->cls == ST_OPC_SOFTMAX) {
            k = ST_PROF_SOFTMAX;
            cols = p->seq;
        } else if (!strcmp(o->name, "act") || !strcmp(o->name, "expert_act")) {
            k = m->activation == ST_ACT_SWIGLU ? ST_PROF_SWIGLU : ST_PROF_GELU;
        } else {
            k = ST_PROF_ADD;
        }
        /* one point per (class, x): the table cannot hold two rates at one size */
        int dup = 0;
        for (int i = 0; i < v->n && !dup; i++)
            dup = v->v[i].x == x && st__prof_kernel_class(v->v[i].kernel) == o->cls;
        if (dup) continue;
        int64_t rows;
        size_kernel(k, x, cols, &rows, &cols);
        if (push_mem(v, k, rows, cols, x, 1)) return ST_ENOMEM;
    }
    return 0;
}

int st__prof_plan_shapes(const st_model *m, const st_plan *p, st__prof_gemm **g, int *ng, st__prof_mem **mm, int *nm) {
    gvec gv = {0};
    mvec mv = {0};
    st_shard s;
    st_op ops[ST_MAX_OPS];
    int rc = 0;
    int64_t idx[ST_MAX_KINDS];

    *g = NULL, *mm = NULL, *ng = 0, *nm = 0;
    st_plan_shard(p, &s);
    if ((rc = model_gemms(m, &s, &gv, 1)) < 0) goto out;
    unique_gemms(&gv);
    int nk = st_model_kinds(m, idx);
    for (int part = 0; part < nk + 2; part++) {
        int n;
        if (part < nk) {
            n = st_ops_layer(m, &s, idx[part], ops, ST_MAX_OPS);
        } else if (part == nk) {
            n = st_ops_head(m, &s, ops, ST_MAX_OPS);
        } else {
            n = st_ops_tail(m, &s, ops, ST_MAX_OPS);
        }
        if (n < 0) {
            rc = n;
            goto out;
        }
        for (int i = 0; i < n; i++)
            if ((rc = plan_mem_op(&mv, m, p, &ops[i])) < 0) goto out;
    }
    *g = gv.v, *ng = gv.n, *mm = mv.v, *nm = mv.n;
    gv.v = NULL, mv.v = NULL;
out:
    free(gv.v);
    free(mv.v);
    return rc;
}

static int cmp_coll(const void *pa, const void *pb) {
    const st__prof_coll *a = pa, *b = pb;
    if (a->coll != b->coll) return a->coll < b->coll ? -1 : 1;
    if (a->ranks != b->ranks) return a->ranks - b->ranks;
    return a->bytes < b->bytes ? -1 : a->bytes > b->bytes;
}

int st__prof_plan_colls(const st_model *m, const st_cluster *c, const st_plan *p, st__prof_coll **out, int *nout,
                        int *inter) {
    st_profile *rec = st__profile_recorder_new();
    st_cost_ctx *ctx = rec ? st_cost_ctx_new(m, c, rec) : NULL;
    st__prof_coll *v = NULL;
    st_estimate est;
    int rc = 0, n = 0, lost = 0, k = 0;
    *out = NULL, *nout = 0, *inter = 0;
    if (!ctx) {
        rc = ST_ENOMEM;
        goto out;
    }
    if ((rc = st_cost_estimate(ctx, p, &est)) < 0) goto out;
    const st__coll_lookup *l = st__profile_recorded(rec, &k, &lost);
    if (lost || !(v = malloc((size_t)(k > 0 ? k : 1) * sizeof *v))) {
        rc = ST_ENOMEM;
        goto out;
    }
    for (int i = 0; i < k; i++) {
        if (!l[i].intra) {
            (*inter)++;
            continue;
        }
        /* the send/recv table is measured between two, and a lookup takes the nearest ranks */
        st__prof_coll x = {l[i].coll, l[i].coll == ST_COLL_SENDRECV ? 2 : l[i].ranks, l[i].bytes};
        int dup = 0;
        for (int j = 0; j < n && !dup; j++) dup = v[j].coll == x.coll && v[j].ranks == x.ranks && v[j].bytes == x.bytes;
        if (!dup) v[n++] = x;
    }
    qsort(v, (size_t)n, sizeof *v, cmp_coll);
    *out = v, *nout = n;
    v = NULL;
out:
    free(v);
    st_cost_ctx_free(ctx);
    st_profile_free(rec);
    return rc;
}

/* ------------------------------------------------------------------ numbers */

static uint64_t xorshift(uint64_t *s) {
    uint64_t x = *s ? *s : 0x9e3779b97f4a7c15ull;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545f4914f6cdd1dull; /* xorshift64* (Vigna 2016) */
}

void st__prof_fill(st_dtype dt, int positive, void *buf, size_t n, uint64_t *seed) {
    /* sign | exponent for 2^-4 .. 2^0 | random mantissa: each format's own bit layout */
    for (size_t i = 0; i < n; i++) {
        uint64_t r = xorshift(seed);
        uint32_t sign = positive ? 0 : (uint32_t)(r >> 63);
        uint32_t e = (uint32_t)((r >> 32) % 5);
        switch (dt) {
        case ST_DT_FP32:
        case ST_DT_TF32: ((uint32_t *)buf)[i] = sign << 31 | (123 + e) << 23 | (uint32_t)(r & 0x7fffff); break;
        case ST_DT_BF16: ((uint16_t *)buf)[i] = (uint16_t)(sign << 15 | (123 + e) << 7 | (uint32_t)(r & 0x7f)); break;
        case ST_DT_FP16: ((uint16_t *)buf)[i] = (uint16_t)(sign << 15 | (11 + e) << 10 | (uint32_t)(r & 0x3ff)); break;
        case ST_DT_FP8: /* e4m3: bias 7; exponent 3..7 never reaches the NaN pattern (15, 7) */
            ((uint8_t *)buf)[i] = (uint8_t)(sign << 7 | (3 + e) << 3 | (uint32_t)(r & 0x7));
            break;
        default: break;
        }
    }
}

static int cmp_double(const void *pa, const void *pb) {
    double a = *(const double *)pa, b = *(const double *)pb;
    return a < b ? -1 : a > b;
}

double st__prof_median(double *v, int n) {
    if (n <= 0) return 0;
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* ------------------------------------------------------------------ results */

void st__prof_result_init(st__prof_result *r) { memset(r, 0, sizeof *r); }

void st__prof_result_destroy(st__prof_result *r) {
    for (int i = 0; i < r->nt; i++) {
        free(r->t[i].x);
        free(r->t[i].y);
    }
    free(r->t);
    free(r->s);
    memset(r, 0, sizeof *r);
}

int st__prof_add(st__prof_result *r, const st__prof_sample *s) {
    PUSH(r->s, r->ns, r->cap, *s);
    return 0;
}

void st__prof_note(st__prof_result *r, const char *fmt, ...) {
    if (r->nnotes >= ST_PROF_NOTES) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->notes[r->nnotes++], sizeof r->notes[0], fmt, ap);
    va_end(ap);
}

static int cmp_sample(const void *pa, const void *pb) {
    const st__prof_sample *a = pa, *b = pb;
    const int ka[] = {a->kind, a->cls, a->dtype, a->coll, a->ranks, a->dir};
    const int kb[] = {b->kind, b->cls, b->dtype, b->coll, b->ranks, b->dir};
    for (int i = 0; i < 6; i++)
        if (ka[i] != kb[i]) return ka[i] < kb[i] ? -1 : 1;
    if (a->x != b->x) return a->x < b->x ? -1 : 1;
    if (a->exact != b->exact) return a->exact - b->exact;
    return a->y < b->y ? -1 : a->y > b->y;
}

static int same_table(const st__prof_sample *a, const st__prof_sample *b) {
    return a->kind == b->kind && a->cls == b->cls && a->dtype == b->dtype && a->coll == b->coll &&
           a->ranks == b->ranks && a->dir == b->dir;
}

/* one table from the samples s[0..n-1] of one key, sorted by x */
static int fit_one(st__prof_table *t, const st__prof_sample *s, int n, double *ys) {
    memset(t, 0, sizeof *t);
    t->kind = s[0].kind, t->cls = s[0].cls, t->dtype = s[0].dtype, t->coll = s[0].coll, t->ranks = s[0].ranks;
    t->dir = s[0].dir;
    t->samples = n;
    t->x = malloc((size_t)n * sizeof *t->x);
    t->y = malloc((size_t)n * sizeof *t->y);
    if (!t->x || !t->y) return ST_ENOMEM;
    int i = 0;
    while (i < n) {
        int e = bin_of(s[i].x), j = i, has_exact = 0;
        while (j < n && bin_of(s[j].x) == e)
            has_exact |= s[j++].exact;
        if (has_exact) {
            /* the plan's points, each x once: total work over total time */
            for (int a = i; a < j;) {
                if (!s[a].exact) {
                    a++;
                    continue;
                }
                int b = a, cnt = 0;
                double inv = 0;
                while (b < j && s[b].x == s[a].x) {
                    if (s[b].exact) inv += 1 / s[b].y, cnt++;
                    b++;
                }
                t->x[t->n] = s[a].x;
                t->y[t->n] = cnt / inv;
                t->n++, t->exact++;
                a = b;
            }
        } else {
            int m = j - i;
            for (int k = 0; k < m; k++)
                ys[k] = s[i + k].y;
            /* median size, rounded down so the point stays inside its bin (sizes are counts) */
            double x = floor(m % 2 ? s[i + m / 2].x : 0.5 * (s[i + m / 2 - 1].x + s[i + m / 2].x));
            t->x[t->n] = fmax(x, s[i].x);
            t->y[t->n] = st__prof_median(ys, m);
            t->n++;
        }
        i = j;
    }
    return 0;
}

int st__prof_fit(st__prof_result *r) {
    for (int i = 0; i < r->nt; i++) {
        free(r->t[i].x);
        free(r->t[i].y);
    }
    free(r->t);
    r->t = NULL;
    r->nt = 0;
    /* drop what cannot be a table point (a kernel too fast for the clock reads as infinite) */
    int w = 0;
    for (int i = 0; i < r->ns; i++)
        if (r->s[i].x > 0 && r->s[i].y > 0 && isfinite(r->s[i].x) && isfinite(r->s[i].y)) r->s[w++] = r->s[i];
    r->ns = w;
    if (r->ns == 0) return 0;
    qsort(r->s, (size_t)r->ns, sizeof *r->s, cmp_sample);
    int ntab = 1;
    for (int i = 1; i < r->ns; i++)
        ntab += !same_table(&r->s[i], &r->s[i - 1]);
    double *ys = malloc((size_t)r->ns * sizeof *ys);
    r->t = calloc((size_t)ntab, sizeof *r->t);
    if (!ys || !r->t) {
        free(ys);
        return ST_ENOMEM;
    }
    int rc = 0;
    for (int i = 0; i < r->ns && rc == 0;) {
        int j = i;
        while (j < r->ns && same_table(&r->s[i], &r->s[j]))
            j++;
        rc = fit_one(&r->t[r->nt++], &r->s[i], j - i, ys);
        i = j;
    }
    free(ys);
    return rc;
}

void st__prof_date(char *buf, size_t n) {
    /* reproducible builds' convention, as strata calibrate: a profile can be regenerated byte for byte */
    time_t now = time(NULL);
    const char *sde = getenv("SOURCE_DATE_EPOCH");
    if (sde && *sde) {
        char *end;
        errno = 0;
        long long v = strtoll(sde, &end, 10);
        if (!*end && !errno && v >= 0) now = (time_t)v;
    }
    struct tm tm;
    if (!gmtime_r(&now, &tm) || !strftime(buf, n, "%Y-%m-%d", &tm)) snprintf(buf, n, "unknown");
}

const char *st__prof_gpu_preset(const char *device) {
    /* cudaDeviceProp.name of the GPUs src/core/cluster.c has presets for (the names Kineto also
     * writes into deviceProperties, see profiler/kineto.c) */
    static const struct {
        const char *dev, *preset;
    } m[] = {{"NVIDIA A100-SXM4-80GB", "a100-sxm-80g"},
             {"NVIDIA A100-SXM4-40GB", "a100-sxm-40g"},
             {"NVIDIA H100 80GB HBM3", "h100-sxm-80g"},
             {"NVIDIA H200", "h200-sxm-141g"},
             {"NVIDIA L40S", "l40s"},
             {"NVIDIA A10", "a10"}};
    for (size_t i = 0; i < sizeof m / sizeof m[0]; i++)
        if (!strcmp(device, m[i].dev)) return m[i].preset;
    return NULL;
}

/* ------------------------------------------------------------------ output */

/* the fitted tables in the writer's form (borrowed points); NULL when out of memory */
static st__ptable *ptables(const st__prof_result *r) {
    st__ptable *pt = calloc((size_t)(r->nt > 0 ? r->nt : 1), sizeof *pt);
    for (int i = 0; pt && i < r->nt; i++) {
        const st__prof_table *t = &r->t[i];
        /* one process measures one node: its collectives are intra-node */
        pt[i] = (st__ptable){.kind = t->kind, .cls = t->cls, .dtype = t->dtype, .coll = t->coll, .intra = 1,
                             .ranks = t->ranks, .dir = t->dir, .n = t->n, .samples = t->samples, .exact = t->exact,
                             .x = t->x, .y = t->y};
    }
    return pt;
}

int st__prof_save(const st__prof_result *r, const char *path, st_error *err) {
    char source[4096];
    size_t off = 0;
#define ADD(...)                                                                                                       \
    do {                                                                                                               \
        int w_ = snprintf(source + off, off < sizeof source ? sizeof source - off : 0, __VA_ARGS__);                   \
        if (w_ > 0) off += (size_t)w_;                                                                                 \
    } while (0)
    ADD("strata profile%s on %s: %s", r->quick ? " --quick" : "", r->device[0] ? r->device : r->gpu, r->timer);
    for (int i = 0; i < r->nnotes; i++)
        ADD("; %s", r->notes[i]);
#undef ADD
    st__ptable *pt = ptables(r);
    if (!pt) return st_error_set(err, ST_ENOMEM, path, NULL, "out of memory");
    st__phead h = {.gpu = r->gpu, .source = source, .date = r->date, .driver = r->driver, .cuda = r->cuda};
    int rc = st__profile_write(&h, pt, r->nt, path, err);
    free(pt);
    return rc;
}

void st__prof_describe(const st__prof_result *r, FILE *f) {
    st__ptable *pt = ptables(r);
    if (pt) st__profile_describe(pt, r->nt, "measurement", "none measured", f);
    free(pt);
}
