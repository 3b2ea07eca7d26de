/* fit.c: `strata calibrate --runs`: the iteration times of runs a user made, fitted into the few
 * numbers of a cluster description that such runs identify, so that estimate, plan, sim and compare
 * predict the user's other plans on that cluster.
 *
 * Input: a CSV file (RFC 4180: a header, fields quoted with "" where they hold commas, quotes or
 * line breaks, CRLF or LF, a UTF-8 byte-order mark ignored) with at least the columns model (a
 * preset or a model file, relative paths from the CSV's folder), gpus, plan (an inline spec) and
 * measured_s (seconds per iteration). An optional column `group` names rows whose order is judged
 * (Kendall's tau-b, as `strata validate` does); any other column is ignored.
 *
 * The parameters, each a field of the cluster JSON and bounded to what hardware can be:
 *   gpu.gemm_efficiency            0.05 .. 1: the achieved fraction of dense peak for large GEMMs
 *                                  (gemm_efficiency_fp8, where set, moves by the same ratio);
 *   gpu.hbm_gb_per_s               0.1 .. 1 x the starting cluster's: achieved HBM bandwidth can
 *                                  only fall short of the datasheet;
 *   intra_node.bandwidth_gb_per_s  1 .. 1800 GB/s (NVLink 5, NVIDIA's datasheet, is the fastest);
 *   intra_node.latency_us          0.5 .. 100 us;
 *   inter_node.nic_gbit_per_s      1 .. 800 Gbit/s (ConnectX-8's 800G is the fastest NIC);
 *   inter_node.latency_us          1 .. 200 us;
 *   framework.launch_overhead_us   1 .. 10 us: the GPU's idle time per kernel launched, added to
 *                                  every kernel (cost/compute.c); a CUDA launch costs a few
 *                                  microseconds (NVIDIA, "Getting Started with CUDA Graphs", 2019:
 *                                  ~2-3 us per launch of a 2 us kernel; ST_KERNEL_OVERHEAD_S's 4 us),
 *                                  so 10 us is the most a launch can be;
 *   framework.host_us_per_kernel   2 .. 100 us: the host's time to issue one kernel from eager
 *                                  PyTorch, which bounds a block below (st_cost_host_stretch); 45 us
 *                                  measured for eager SAM2 (cost_private.h), a bare ATen op's
 *                                  dispatch a few us (He, "Making Deep Learning Go Brrrr", 2022);
 *   gpu.gemm_half_dim              8 .. 1024: small GEMMs' efficiency d / (d + this) per dimension,
 *                                  the smooth stand-in for tile and wave quantisation (NVIDIA's
 *                                  Matrix Multiplication Background guide: 128-256 wide tiles, whole
 *                                  waves of them over the SMs), 64 by default.
 * Pipeline send/receive runs over these same links (cost/comm.c), so it is fitted through them.
 * Why the per-kernel prices: fitted without them on vTrain's single-node rows, the held-out error
 * follows the micro-batch size (Spearman +0.57 between log mbs and log predicted/measured; -15 % at
 * mbs 1, +14 % at mbs 8): a fixed cost per kernel that the throughput numbers cannot stand in for.
 *
 * The fit: least squares on log time (a run 10 % slow weighs the same at 1 s and at 100 s),
 * plus a weak pull toward the given cluster (PRIOR_WEIGHT), minimised by Hooke and Jeeves' pattern
 * search in log-parameter space inside the bounds: each parameter moved up or down by a step, a
 * jump along each success, the step halved when no move helps, from x2 down to 0.2 %. No
 * derivatives, no library; a handful of parameters and hundreds of rows make it cheap. Before
 * fitting, a parameter that moves no row's prediction by 0.5 % when changed by 25 % is not
 * identified by these runs ("not pinned down"): it keeps the starting cluster's value. The
 * cross-validated error: the fit rows split in k folds by a seeded shuffle, each fold predicted by
 * a fit on the others. With --fit-fraction F, a seeded F of the rows is fitted and the rest only
 * predicted (the held-out error and tau), which is how issue 17 judges the fit on vTrain's rows.
 *
 * Invariants: same CSV, cluster and options, same bytes out; any bad row is one error naming the
 * file and the row's line, and nothing is written. */
#include "profiler/profiler.h"
#include "src/io/jsonutil.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MIN_FIT_ROWS 4       /* fewer rows cannot tell anything from noise */
#define PIN_STEP 1.25        /* a parameter changed by 25 % ... */
#define PIN_MIN_CHANGE 0.005 /* ... must move some row's prediction by 0.5 % to be identified */
#define STEP_START 2.0       /* the coordinate search's first step: x2 */
#define STEP_END 1.002       /* and its last: 0.2 % */
#define MAX_EVALS 6000       /* objective evaluations per fit (nine parameters need a few thousand) */
/* A weak pull toward the given cluster, added to the mean squared log error: a parameter a factor
 * 2 away costs 0.48 x PRIOR_WEIGHT, as much as 0.7 % of RMS error. Where the runs cannot tell two
 * parameters apart (fewer kernels per GEMM and a slower HBM can look alike), it keeps the one the
 * runs do not ask to move where the user put it. */
#define PRIOR_WEIGHT 1e-4

void st_fit_opts_init(st_fit_opts *o) {
    memset(o, 0, sizeof *o);
    o->seed = 1;
    o->folds = 5;
    o->fit_fraction = 1;
    o->max_evals = MAX_EVALS;
}

/* ------------------------------------------------------------------ parameters */

static const struct {
    const char *name, *unit;
    double lo, hi;  /* SI; relative to the starting cluster when `rel` */
    int rel;
    double to_unit; /* SI value x to_unit = the JSON's unit */
} pdef[ST_FIT_PARAMS] = {
    {"gpu.gemm_efficiency", "", 0.05, 1.0, 0, 1},
    {"gpu.hbm_gb_per_s", "GB/s", 0.1, 1.0, 1, 1e-9},
    {"intra_node.bandwidth_gb_per_s", "GB/s", 1e9, 1.8e12, 0, 1e-9},
    {"intra_node.latency_us", "us", 0.5e-6, 100e-6, 0, 1e6},
    {"inter_node.nic_gbit_per_s", "Gbit/s", 1.25e8, 1e11, 0, 8e-9},
    {"inter_node.latency_us", "us", 1e-6, 200e-6, 0, 1e6},
    {"framework.launch_overhead_us", "us", 1e-6, 10e-6, 0, 1e6},
    {"framework.host_us_per_kernel", "us", 2e-6, 100e-6, 0, 1e6},
    {"gpu.gemm_half_dim", "", 8, 1024, 0, 1},
};

static double *field(st_cluster *c, int j) {
    switch (j) {
    case 0: return &c->gpu.gemm_efficiency;
    case 1: return &c->gpu.hbm_bytes_per_s;
    case 2: return &c->intra_bytes_per_s;
    case 3: return &c->intra_latency_s;
    case 4: return &c->nic_bytes_per_s;
    case 5: return &c->inter_latency_s;
    case 6: return &c->launch_overhead_s;
    case 7: return &c->host_s_per_kernel;
    default: return &c->gpu.gemm_half_dim;
    }
}

/* parameter j's value on cluster c: its field, or cost/'s default where the field is 0 (unset) */
static double current(const st_cluster *c, int j) {
    switch (j) {
    case 6: return st_cost_launch_s(c);
    case 7: return st_cost_host_s_per_kernel(c);
    case 8: return st_cost_gemm_half_dim(&c->gpu);
    default: {
        st_cluster t = *c; /* field() gives a place to write; read through a copy */
        return *field(&t, j);
    }
    }
}

/* the parameters (SI) into cluster c, started from `base` */
static void apply(st_cluster *c, const st_cluster *base, const double *v) {
    for (int j = 0; j < ST_FIT_PARAMS; j++) *field(c, j) = v[j];
    if (base->gpu.gemm_efficiency_fp8 > 0 && base->gpu.gemm_efficiency > 0)
        c->gpu.gemm_efficiency_fp8 =
            fmin(1.0, base->gpu.gemm_efficiency_fp8 * v[0] / base->gpu.gemm_efficiency);
}

/* ------------------------------------------------------------------ the CSV (RFC 4180) */

typedef struct csv {
    char ***rec; /* rec[i][j]: field j of record i (new strings) */
    int *nf, *line, n, cap;
} csv;

static void csv_free(csv *v) {
    for (int i = 0; i < v->n; i++) {
        for (int j = 0; j < v->nf[i]; j++) free(v->rec[i][j]);
        free(v->rec[i]);
    }
    free(v->rec);
    free(v->nf);
    free(v->line);
}

/* Splits text into records of fields. An unterminated quote, or text between a closing quote and
 * the next separator, is ST_EINVAL at its line. */
static int csv_parse(const char *s, const char *path, csv *v, st_error *err) {
    int line = 1;
    if (!strncmp(s, "\xef\xbb\xbf", 3)) s += 3;
    while (*s) {
        char **f = NULL;
        int nf = 0, start = line, cap = 0;
        for (;;) { /* one field */
            size_t n = 0, fcap = 16;
            char *b = malloc(fcap);
            if (!b) return st_error_set(err, ST_ENOMEM, path, NULL, "out of memory");
            int quoted = *s == '"';
            if (quoted) s++;
            for (;;) {
                char ch = *s;
                if (quoted) {
                    if (!ch) {
                        free(b);
                        for (int j = 0; j < nf; j++) free(f[j]);
                        free(f);
                        st_error_set(err, ST_EINVAL, path, NULL, "a quoted field opened on line %d is never closed",
                                     start);
                        err->line = start;
                        return ST_EINVAL;
                    }
                    if (ch == '"' && s[1] == '"') {
                        s += 2;
                    } else if (ch == '"') {
                        s++;
                        quoted = 0;
                        if (*s && *s != ',' && *s != '\n' && *s != '\r') {
                            free(b);
                            for (int j = 0; j < nf; j++) free(f[j]);
                            free(f);
                            st_error_set(err, ST_EINVAL, path, NULL, "text after a closing quote");
                            err->line = line;
                            return ST_EINVAL;
                        }
                        continue;
                    } else {
                        if (ch == '\n') line++;
                        s++;
                    }
                } else {
                    if (!ch || ch == ',' || ch == '\n' || ch == '\r') break;
                    s++;
                }
                if (n + 2 > fcap) {
                    char *g = realloc(b, fcap *= 2);
                    if (!g) {
                        free(b);
                        return st_error_set(err, ST_ENOMEM, path, NULL, "out of memory");
                    }
                    b = g;
                }
                b[n++] = ch;
            }
            b[n] = '\0';
            if (nf + 1 > cap) {
                char **g = realloc(f, (size_t)(cap = cap ? 2 * cap : 8) * sizeof *g);
                if (!g) {
                    free(b);
                    return st_error_set(err, ST_ENOMEM, path, NULL, "out of memory");
                }
                f = g;
            }
            f[nf++] = b;
            if (*s != ',') break;
            s++;
        }
        if (*s == '\r') s++;
        if (*s == '\n') s++, line++;
        if (nf == 1 && !f[0][0]) { /* an empty line */
            free(f[0]);
            free(f);
            continue;
        }
        if (v->n + 1 > v->cap) {
            int nc = v->cap ? 2 * v->cap : 64;
            char ***r = realloc(v->rec, (size_t)nc * sizeof *r);
            if (r) v->rec = r;
            int *a = r ? realloc(v->nf, (size_t)nc * sizeof *a) : NULL;
            if (a) v->nf = a;
            int *l = a ? realloc(v->line, (size_t)nc * sizeof *l) : NULL;
            if (l) v->line = l;
            if (!l) {
                for (int j = 0; j < nf; j++) free(f[j]);
                free(f);
                return st_error_set(err, ST_ENOMEM, path, NULL, "out of memory");
            }
            v->cap = nc;
        }
        v->rec[v->n] = f;
        v->nf[v->n] = nf;
        v->line[v->n++] = start;
    }
    return 0;
}

/* ------------------------------------------------------------------ the runs */

typedef struct run {
    int line;
    st_model model;
    st_plan plan;
    st_cluster cluster; /* the starting cluster, sized for the run's GPUs */
    double measured_s;
    char group[64];
    int same;      /* the first row of the same model cell and GPU count: one cost context prices them all */
    int rec;       /* its record in the CSV */
    long long gpus;
} run;

struct st_fit {
    char file[256], cluster_arg[256], date[16];
    st_cluster base;
    st_fit_opts opts;
    run *r;
    int n;
    int *fit_rows, nfit; /* the rows fitted (all, or the seeded fraction) */
    double start[ST_FIT_PARAMS], value[ST_FIT_PARAMS], lo[ST_FIT_PARAMS], hi[ST_FIT_PARAMS];
    int pinned[ST_FIT_PARAMS], at_bound[ST_FIT_PARAMS];
    int not_costed; /* fit rows the fitted cluster could not price (never: checked at load) */
    st_fit_result res;
};

/* an error of the CSV's line `line` (err->line) */
static int row_error(st_error *err, int code, const char *path, int line, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 5, 6)))
#endif
    ;
static int row_error(st_error *err, int code, const char *path, int line, const char *fmt, ...) {
    char text[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    st_error_set(err, code, path, NULL, "%s", text); /* st_cli_report writes "file:line: " */
    err->line = line;
    return code;
}

/* a model argument: a preset, else a file (a relative path from the CSV's folder first) */
static int resolve_model(const char *arg, const char *csv_path, st_model *m, st_error *err) {
    const char *slash = strrchr(csv_path, '/');
    if (arg[0] != '/' && slash && access(arg, F_OK) != 0) {
        char p[1024];
        int w = snprintf(p, sizeof p, "%.*s/%s", (int)(slash - csv_path), csv_path, arg);
        if (w > 0 && (size_t)w < sizeof p && access(p, F_OK) == 0) return st_model_resolve(p, m, err);
    }
    return st_model_resolve(arg, m, err);
}

static int load_rows(st_fit *f, const csv *v, const char *path, st_error *err) {
    static const char *const need[] = {"model", "gpus", "plan", "measured_s"};
    int col[4] = {-1, -1, -1, -1}, group = -1;
    if (v->n < 1)
        return st_error_set(err, ST_EINVAL, path, NULL, "empty: expected a header with model,gpus,plan,measured_s");
    for (int j = 0; j < v->nf[0]; j++) {
        const char *h = v->rec[0][j];
        for (int k = 0; k < 4; k++)
            if (!strcmp(h, need[k])) col[k] = j;
        if (!strcmp(h, "group")) group = j;
    }
    for (int k = 0; k < 4; k++)
        if (col[k] < 0)
            return row_error(err, ST_EINVAL, path, v->line[0],
                             "the header has no column '%s' (needs model,gpus,plan,measured_s)", need[k]);
    if (!(f->r = calloc((size_t)v->n, sizeof *f->r))) return st_error_set(err, ST_ENOMEM, path, NULL, "out of memory");
    for (int i = 1; i < v->n; i++) {
        run *r = &f->r[f->n];
        int line = v->line[i];
        const char *cell[4];
        for (int k = 0; k < 4; k++) {
            if (col[k] >= v->nf[i])
                return row_error(err, ST_EINVAL, path, line, "no '%s' field (the row is short)", need[k]);
            cell[k] = v->rec[i][col[k]];
        }
        st_error e;
        st_error_clear(&e);
        r->line = line;
        if (resolve_model(cell[0], path, &r->model, &e))
            return row_error(err, ST_EINVAL, path, line, "model '%s': %s", cell[0], e.text);
        char *end;
        errno = 0;
        long long g = strtoll(cell[1], &end, 10);
        if (end == cell[1] || *end || errno || g < 1 || g > ST_MAX_GPUS)
            return row_error(err, ST_EINVAL, path, line, "gpus '%s' is not a GPU count (1 to %d)", cell[1],
                             ST_MAX_GPUS);
        errno = 0;
        double t = strtod(cell[3], &end);
        if (end == cell[3] || *end || errno || !isfinite(t) || !(t > 0))
            return row_error(err, ST_EINVAL, path, line, "measured_s '%s' is not a positive time in seconds", cell[3]);
        r->measured_s = t;
        r->cluster = f->base;
        /* a run on part of one node: that node, with the run's GPUs (same GPU and links) */
        if (g < f->base.gpus_per_node && f->base.gpus_per_node % g == 0) r->cluster.gpus_per_node = g;
        if (st_cluster_size(&r->cluster, g, NULL, &e))
            return row_error(err, ST_EINVAL, path, line, "gpus %s: %s", cell[1], e.text);
        st_plan_defaults(&r->plan);
        if (st_plan_parse_spec(cell[2], &r->plan, &e) ||
            st_plan_finalize(&r->plan, &r->model, &r->cluster, g, NULL, &e))
            return row_error(err, ST_EINVAL, path, line, "plan '%s': %s", cell[2], e.text);
        st_cost_ctx *ctx = st_cost_ctx_new(&r->model, &r->cluster, NULL);
        st_estimate est;
        int rc = ctx ? st_cost_estimate(ctx, &r->plan, &est) : ST_ENOMEM;
        st_cost_ctx_free(ctx);
        if (rc == ST_ENOMEM) return st_error_set(err, ST_ENOMEM, path, NULL, "out of memory");
        if (rc || !(est.iteration_time_s > 0))
            return row_error(err, ST_EINVAL, path, line, "plan '%s' cannot be priced on this cluster", cell[2]);
        if (group >= 0 && group < v->nf[i]) snprintf(r->group, sizeof r->group, "%s", v->rec[i][group]);
        r->rec = i;
        r->gpus = g;
        r->same = f->n;
        for (int k = 0; k < f->n; k++)
            if (f->r[k].same == k && f->r[k].gpus == g && !strcmp(v->rec[f->r[k].rec][col[0]], cell[0])) {
                r->same = k;
                break;
            }
        f->n++;
    }
    return 0;
}

/* ------------------------------------------------------------------ predicting and fitting */

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* log(predicted / measured) of rows[0..n-1] under parameters v into d (may be NULL); returns the
 * mean of their squares, or HUGE_VAL when a row cannot be priced. Rows of one model and GPU count
 * share a cost context (its per-shard cache is what makes pricing many plans of one model cheap,
 * and a context is megabytes to clear): they are priced in that order. */
static double residuals(const st_fit *f, const double *v, const int *rows, int n, double *d) {
    double sum = 0;
    int64_t *ord = malloc(((size_t)n + 1) * sizeof *ord);
    st_cost_ctx *ctx = NULL;
    st_cluster c;
    if (!ord) return HUGE_VAL;
    for (int i = 0; i < n; i++) ord[i] = (int64_t)f->r[rows[i]].same << 32 | i;
    qsort(ord, (size_t)n, sizeof *ord, cmp_i64);
    for (int k = 0; k < n; k++) {
        int i = (int)(ord[k] & 0xffffffff);
        const run *r = &f->r[rows[i]];
        if (!k || r->same != f->r[rows[(int)(ord[k - 1] & 0xffffffff)]].same) {
            st_cost_ctx_free(ctx);
            c = r->cluster;
            apply(&c, &f->base, v);
            ctx = st_cost_ctx_new(&r->model, &c, NULL);
        }
        st_estimate est;
        int rc = ctx ? st_cost_estimate(ctx, &r->plan, &est) : ST_ENOMEM;
        if (rc || !(est.iteration_time_s > 0)) {
            sum = HUGE_VAL;
            break;
        }
        double e = log(est.iteration_time_s / r->measured_s);
        if (d) d[i] = e;
        sum += e * e;
    }
    st_cost_ctx_free(ctx);
    free(ord);
    return n && sum < HUGE_VAL ? sum / n : sum;
}

/* Which parameters the rows identify (see the header), at v. */
static void pin(const st_fit *f, const double *v, const int *rows, int n, int *pinned) {
    double *d0 = malloc(((size_t)n + 1) * sizeof *d0), *d1 = malloc(((size_t)n + 1) * sizeof *d1);
    for (int j = 0; j < ST_FIT_PARAMS; j++) pinned[j] = 0;
    if (!d0 || !d1 || residuals(f, v, rows, n, d0) == HUGE_VAL) goto out;
    for (int j = 0; j < ST_FIT_PARAMS; j++) {
        double w[ST_FIT_PARAMS];
        memcpy(w, v, sizeof w);
        /* up by 25 %, or down where that leaves the bounds */
        w[j] = v[j] * PIN_STEP <= f->hi[j] ? v[j] * PIN_STEP : v[j] / PIN_STEP;
        if (residuals(f, w, rows, n, d1) == HUGE_VAL) continue;
        for (int i = 0; i < n && !pinned[j]; i++) pinned[j] = fabs(d1[i] - d0[i]) >= PIN_MIN_CHANGE;
    }
out:
    free(d0);
    free(d1);
}

/* the search's objective: the mean squared log error, and the pull toward the start */
static double objective(const st_fit *f, const double *v, const int *rows, int n) {
    double e = residuals(f, v, rows, n, NULL);
    for (int j = 0; j < ST_FIT_PARAMS && e < HUGE_VAL; j++) {
        double d = log(v[j] / f->start[j]);
        e += PRIOR_WEIGHT * d * d;
    }
    return e;
}

/* One exploratory sweep of Hooke and Jeeves' pattern search: each pinned parameter of x moved up,
 * else down, by the factor exp(step), kept where that lowers *fx (x and *fx updated in place). */
static void explore(const st_fit *f, double *x, double *fx, double step, const int *pinned, const int *rows, int n,
                    int *evals) {
    for (int j = 0; j < ST_FIT_PARAMS; j++) {
        if (!pinned[j]) continue;
        for (int dir = 1; dir >= -1; dir -= 2) {
            double w[ST_FIT_PARAMS];
            memcpy(w, x, sizeof w);
            w[j] = fmin(f->hi[j], fmax(f->lo[j], x[j] * exp(dir * step)));
            if (w[j] == x[j]) continue;
            double e = objective(f, w, rows, n);
            ++*evals;
            if (e < *fx) {
                *fx = e;
                memcpy(x, w, sizeof w);
                break;
            }
        }
    }
}

/* Hooke-Jeeves pattern search (Hooke and Jeeves, J. ACM 8(2), 1961) in log space over the pinned
 * parameters, from v (changed in place): exploratory sweeps, and after each success a jump along
 * the direction it moved, which follows the diagonal valleys a plain coordinate search stalls in
 * (GEMM efficiency against HBM bandwidth); the step halves when a sweep finds nothing. */
static double search(const st_fit *f, double *v, const int *pinned, const int *rows, int n) {
    double fb = objective(f, v, rows, n);
    int evals = 1;
    for (double step = log(STEP_START); step > log(STEP_END) && evals < f->opts.max_evals && fb < HUGE_VAL;) {
        double x[ST_FIT_PARAMS], fx = fb;
        memcpy(x, v, sizeof x);
        explore(f, x, &fx, step, pinned, rows, n, &evals);
        if (!(fx < fb)) {
            step /= 2;
            continue;
        }
        while (fx < fb && evals < f->opts.max_evals) { /* x is better than v: jump on along v -> x */
            double y[ST_FIT_PARAMS];
            for (int j = 0; j < ST_FIT_PARAMS; j++) y[j] = fmin(f->hi[j], fmax(f->lo[j], x[j] * x[j] / v[j]));
            memcpy(v, x, sizeof x);
            fb = fx;
            double fy = objective(f, y, rows, n);
            evals++;
            explore(f, y, &fy, step, pinned, rows, n, &evals);
            if (fy < fb) {
                memcpy(x, y, sizeof x);
                fx = fy;
            }
        }
    }
    return fb;
}

static uint64_t xorshift(uint64_t *s) {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* a seeded Fisher-Yates shuffle of v[0..n-1] */
static void shuffle(int *v, int n, uint64_t seed) {
    uint64_t s = seed * 0x9e3779b97f4a7c15ULL + 0x2545f4914f6cdd1dULL;
    for (int i = n - 1; i > 0; i--) {
        int j = (int)(xorshift(&s) % (uint64_t)(i + 1)), t = v[i];
        v[i] = v[j];
        v[j] = t;
    }
}

/* Kendall's tau-b between x and y (n >= 2); NAN when one side is all ties */
static double tau_b(const double *x, const double *y, int n) {
    double conc = 0, disc = 0, tx = 0, ty = 0, pairs = 0.5 * n * (n - 1);
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++) {
            double sx = (x[i] > x[j]) - (x[i] < x[j]), sy = (y[i] > y[j]) - (y[i] < y[j]);
            tx += sx == 0;
            ty += sy == 0;
            conc += sx * sy > 0;
            disc += sx * sy < 0;
        }
    double den = (pairs - tx) * (pairs - ty);
    return den > 0 ? (conc - disc) / sqrt(den) : NAN;
}

/* errors of rows[0..n-1] at v: MAE in %, and tau-b within each group of 3 or more rows */
static void judge(const st_fit *f, const double *v, const int *rows, int n, st_fit_errors *out) {
    double *d = malloc(((size_t)n + 1) * sizeof *d);
    int *idx = malloc(((size_t)n + 1) * sizeof *idx);
    memset(out, 0, sizeof *out);
    out->rows = n;
    out->tau_min = NAN;
    if (!d || !idx || residuals(f, v, rows, n, d) == HUGE_VAL) {
        out->mae_pct = NAN;
        goto out;
    }
    for (int i = 0; i < n; i++) out->mae_pct += fabs(exp(d[i]) - 1) * 100 / n;
    /* groups: rows sorted by group name (insertion sort: stable, and n is at most thousands) */
    for (int i = 0; i < n; i++) idx[i] = i;
    for (int i = 1; i < n; i++)
        for (int k = i; k > 0 && strcmp(f->r[rows[idx[k - 1]]].group, f->r[rows[idx[k]]].group) > 0; k--) {
            int t = idx[k];
            idx[k] = idx[k - 1];
            idx[k - 1] = t;
        }
    double tsum = 0;
    for (int a = 0; a < n;) {
        int b = a;
        while (b < n && !strcmp(f->r[rows[idx[a]]].group, f->r[rows[idx[b]]].group)) b++;
        if (f->r[rows[idx[a]]].group[0] && b - a >= 3) {
            double *x = malloc((size_t)(b - a) * sizeof *x), *y = malloc((size_t)(b - a) * sizeof *y);
            if (x && y) {
                for (int k = a; k < b; k++) {
                    const run *r = &f->r[rows[idx[k]]];
                    x[k - a] = r->measured_s;
                    y[k - a] = r->measured_s * exp(d[idx[k]]);
                }
                double t = tau_b(x, y, b - a);
                if (!isnan(t)) {
                    if (out->groups < 8) {
                        snprintf(out->name[out->groups], sizeof out->name[0], "%s", f->r[rows[idx[a]]].group);
                        out->tau[out->groups] = t;
                    }
                    out->groups++;
                    tsum += t;
                    if (isnan(out->tau_min) || t < out->tau_min) out->tau_min = t;
                    out->tau_ge_08 += t >= 0.8;
                    out->tau_ge_07 += t >= 0.7;
                }
            }
            free(x);
            free(y);
        }
        a = b;
    }
    out->tau_mean = out->groups ? tsum / out->groups : NAN;
out:
    free(d);
    free(idx);
}

/* One fit over rows, from the starting values: the parameters pinned there, then the search. */
static void fit_rows(const st_fit *f, const int *rows, int n, double *v, int *pinned) {
    memcpy(v, f->start, sizeof f->start);
    pin(f, v, rows, n, pinned);
    search(f, v, pinned, rows, n);
}

int st_fit_runs(const char *path, const char *cluster_arg, const st_fit_opts *o, st_fit **out, st_error *err) {
    st_fit *f = NULL;
    csv v = {0};
    char *text = NULL;
    int rc = 0, *all = NULL, *hold = NULL;
    st_fit_opts dflt;

    *out = NULL;
    if (!o) {
        st_fit_opts_init(&dflt);
        o = &dflt;
    }
    if (o->folds < 2 || !(o->fit_fraction > 0 && o->fit_fraction <= 1) || o->max_evals < 1) {
        rc = st_error_set(err, ST_EUSAGE, NULL, NULL,
                          "folds must be >= 2, the fit fraction in (0, 1] and the evaluations per fit >= 1");
        goto out;
    }
    if (!(f = calloc(1, sizeof *f))) {
        rc = st_error_set(err, ST_ENOMEM, path, NULL, "out of memory");
        goto out;
    }
    f->opts = *o;
    snprintf(f->file, sizeof f->file, "%s", path);
    snprintf(f->cluster_arg, sizeof f->cluster_arg, "%s", cluster_arg);
    if ((rc = st_cluster_resolve(cluster_arg, 0, &f->base, err))) goto out;
    FILE *in = fopen(path, "rb");
    if (!in) {
        rc = st_error_set(err, ST_EIO, path, NULL, "cannot open: %s", strerror(errno));
        goto out;
    }
    size_t len = 0, cap = 0;
    for (;;) {
        if (len + 4096 + 1 > cap) {
            char *g = realloc(text, cap = 2 * cap + 8192);
            if (!g) break;
            text = g;
        }
        size_t k = fread(text + len, 1, cap - len - 1, in);
        len += k;
        if (k == 0) break;
    }
    int bad = ferror(in) || !text;
    fclose(in);
    if (bad) {
        rc = st_error_set(err, ST_EIO, path, NULL, "cannot read");
        goto out;
    }
    text[len] = '\0';
    if (memchr(text, '\0', len)) {
        rc = st_error_set(err, ST_EINVAL, path, NULL, "not a CSV file (it holds NUL bytes)");
        goto out;
    }
    if ((rc = csv_parse(text, path, &v, err)) || (rc = load_rows(f, &v, path, err))) goto out;

    /* the rows fitted: all, or a seeded fraction (the rest are held out) */
    if (!(all = malloc(((size_t)f->n + 1) * sizeof *all)) ||
        !(f->fit_rows = malloc(((size_t)f->n + 1) * sizeof(int)))) {
        rc = st_error_set(err, ST_ENOMEM, path, NULL, "out of memory");
        goto out;
    }
    for (int i = 0; i < f->n; i++) all[i] = i;
    if (o->fit_fraction < 1) shuffle(all, f->n, o->seed);
    f->nfit = o->fit_fraction < 1 ? (int)lround(o->fit_fraction * f->n) : f->n;
    memcpy(f->fit_rows, all, (size_t)f->nfit * sizeof(int));
    if (f->nfit < MIN_FIT_ROWS || f->nfit < 2 * o->folds) {
        rc = st_error_set(err, ST_EINVAL, path, NULL,
                          "%d rows to fit: too few to identify anything (at least %d, and 2 per fold of %d)", f->nfit,
                          MIN_FIT_ROWS, o->folds);
        goto out;
    }

    /* bounds and the start (the given cluster, moved inside the bounds) */
    for (int j = 0; j < ST_FIT_PARAMS; j++) {
        double b = current(&f->base, j);
        f->lo[j] = pdef[j].rel ? pdef[j].lo * b : pdef[j].lo;
        f->hi[j] = pdef[j].rel ? pdef[j].hi * b : pdef[j].hi;
        f->start[j] = fmin(f->hi[j], fmax(f->lo[j], b));
    }
    fit_rows(f, f->fit_rows, f->nfit, f->value, f->pinned);
    int any = 0;
    for (int j = 0; j < ST_FIT_PARAMS; j++) {
        any |= f->pinned[j];
        f->at_bound[j] = f->pinned[j] && (f->value[j] <= f->lo[j] * 1.0001 || f->value[j] >= f->hi[j] / 1.0001);
    }
    if (!any) {
        rc = st_error_set(err, ST_EINVAL, path, NULL,
                          "the %d rows identify none of the parameters (changing any by 25 %% moves no prediction by "
                          "0.5 %%): nothing to fit",
                          f->nfit);
        goto out;
    }
    judge(f, f->start, f->fit_rows, f->nfit, &f->res.start);
    judge(f, f->value, f->fit_rows, f->nfit, &f->res.fitted);

    /* k-fold cross-validation over the fit rows (seeded) */
    int *order = malloc(((size_t)f->nfit + 1) * sizeof *order), *train = malloc(((size_t)f->nfit + 1) * sizeof *train);
    double *pred = malloc(((size_t)f->nfit + 1) * sizeof *pred);
    if (!order || !train || !pred) {
        free(order), free(train), free(pred);
        rc = st_error_set(err, ST_ENOMEM, path, NULL, "out of memory");
        goto out;
    }
    memcpy(order, f->fit_rows, (size_t)f->nfit * sizeof *order);
    shuffle(order, f->nfit, o->seed + 1);
    double cv = 0;
    for (int k = 0; k < o->folds; k++) {
        int nt = 0, lo = k * f->nfit / o->folds, hi = (k + 1) * f->nfit / o->folds;
        double w[ST_FIT_PARAMS];
        int p[ST_FIT_PARAMS];
        for (int i = 0; i < f->nfit; i++)
            if (i < lo || i >= hi) train[nt++] = order[i];
        fit_rows(f, train, nt, w, p);
        if (residuals(f, w, order + lo, hi - lo, pred) == HUGE_VAL) {
            cv = NAN;
            break;
        }
        for (int i = 0; i < hi - lo; i++) cv += fabs(exp(pred[i]) - 1) * 100 / f->nfit;
    }
    free(order), free(train), free(pred);
    f->res.cv_mae_pct = cv;

    /* the held-out rows */
    if (f->nfit < f->n) {
        if (!(hold = malloc((size_t)(f->n - f->nfit) * sizeof *hold))) {
            rc = st_error_set(err, ST_ENOMEM, path, NULL, "out of memory");
            goto out;
        }
        memcpy(hold, all + f->nfit, (size_t)(f->n - f->nfit) * sizeof *hold);
        judge(f, f->start, hold, f->n - f->nfit, &f->res.held_start);
        judge(f, f->value, hold, f->n - f->nfit, &f->res.held);
    }
    f->res.rows = f->n;
    f->res.fit_rows = f->nfit;
    st__prof_date(f->date, sizeof f->date);
    *out = f;
    f = NULL;
out:
    free(text);
    free(all);
    free(hold);
    csv_free(&v);
    st_fit_free(f);
    return rc;
}

void st_fit_free(st_fit *f) {
    if (!f) return;
    free(f->r);
    free(f->fit_rows);
    free(f);
}

const st_fit_result *st_fit_get_result(const st_fit *f) { return &f->res; }

int st_fit_param(const st_fit *f, int j, st_fit_value *out) {
    if (j < 0 || j >= ST_FIT_PARAMS) return ST_EINVAL;
    out->name = pdef[j].name;
    out->unit = pdef[j].unit;
    out->start = f->start[j] * pdef[j].to_unit;
    out->value = (f->pinned[j] ? f->value[j] : f->start[j]) * pdef[j].to_unit;
    out->lo = f->lo[j] * pdef[j].to_unit;
    out->hi = f->hi[j] * pdef[j].to_unit;
    out->pinned = f->pinned[j];
    out->at_bound = f->at_bound[j];
    return 0;
}

static void describe_errors(FILE *out, const char *what, const st_fit_errors *e) {
    fprintf(out, "%-13s%d rows: MAE %.1f %%", what, e->rows, e->mae_pct);
    if (e->groups)
        fprintf(out, "; Kendall tau-b in %d groups: mean %.3f, min %.3f, >= 0.8 in %d, >= 0.7 in %d", e->groups,
                e->tau_mean, e->tau_min, e->tau_ge_08, e->tau_ge_07);
    for (int g = 0; e->groups <= 8 && g < e->groups; g++)
        fprintf(out, "%s%s %.3f", g ? ", " : " (", e->name[g], e->tau[g]);
    if (e->groups && e->groups <= 8) fputc(')', out);
    fputc('\n', out);
}

void st_fit_describe(const st_fit *f, FILE *out) {
    const st_fit_result *r = &f->res;
    fprintf(out, "runs         %s: %d rows, %d fitted%s\n", f->file, r->rows, r->fit_rows,
            r->fit_rows < r->rows ? " (a seeded fraction; the others held out)" : "");
    fprintf(out, "cluster      %s (%s), parameters bounded to what hardware can be:\n", f->base.name, f->cluster_arg);
    for (int j = 0; j < ST_FIT_PARAMS; j++) {
        st_fit_value p;
        st_fit_param(f, j, &p);
        fprintf(out, "  %-30s %10.4g %-6s from %.4g", p.name, p.value, p.unit, p.start);
        if (!p.pinned)
            fprintf(out, "  not pinned down by these runs: kept\n");
        else
            fprintf(out, "  (bounds %.4g .. %.4g)%s\n", p.lo, p.hi, p.at_bound ? " at its bound" : "");
    }
    describe_errors(out, "start", &r->start);
    describe_errors(out, "fitted", &r->fitted);
    fprintf(out, "cross-valid. %d-fold (seed %llu): MAE %.1f %% on the rows each fold did not see\n", f->opts.folds,
            (unsigned long long)f->opts.seed, r->cv_mae_pct);
    if (r->fit_rows < r->rows) {
        describe_errors(out, "held out", &r->held);
        describe_errors(out, "(unfitted)", &r->held_start);
    }
}

int st_fit_write_residuals(const st_fit *f, const char *path, st_error *err) {
    int rc = 0, *rows = malloc(((size_t)f->n + 1) * sizeof *rows);
    double *d = malloc(((size_t)f->n + 1) * sizeof *d);
    char *fitted = calloc((size_t)f->n + 1, 1);
    FILE *out = NULL;
    if (!rows || !d || !fitted) {
        rc = st_error_set(err, ST_ENOMEM, path, NULL, "out of memory");
        goto out;
    }
    double v[ST_FIT_PARAMS];
    for (int j = 0; j < ST_FIT_PARAMS; j++) v[j] = f->pinned[j] ? f->value[j] : f->start[j];
    for (int i = 0; i < f->n; i++) rows[i] = i;
    for (int i = 0; i < f->nfit; i++) fitted[f->fit_rows[i]] = 1;
    if (residuals(f, v, rows, f->n, d) == HUGE_VAL) { /* never: every row was priced at load */
        rc = st_error_set(err, ST_EINVAL, path, NULL, "a row cannot be priced on the fitted cluster");
        goto out;
    }
    if (!(out = fopen(path, "w"))) {
        rc = st_error_set(err, ST_EIO, path, NULL, "cannot write: %s", strerror(errno));
        goto out;
    }
    fprintf(out, "line,set,group,measured_s,predicted_s,error_pct\n");
    for (int i = 0; i < f->n; i++) {
        const run *r = &f->r[i];
        fprintf(out, "%d,%s,\"", r->line, fitted[i] ? "fit" : "held_out");
        for (const char *c = r->group; *c; c++) fprintf(out, *c == '"' ? "\"\"" : "%c", *c);
        fprintf(out, "\",%.10g,%.10g,%.4f\n", r->measured_s, r->measured_s * exp(d[i]), (exp(d[i]) - 1) * 100);
    }
    if (fclose(out)) rc = st_error_set(err, ST_EIO, path, NULL, "cannot write: %s", strerror(errno));
    out = NULL;
out:
    if (out) fclose(out);
    free(rows);
    free(d);
    free(fitted);
    return rc;
}

int st_fit_save(const st_fit *f, const char *path, st_error *err) {
    st_cluster c = f->base;
    double v[ST_FIT_PARAMS];
    for (int j = 0; j < ST_FIT_PARAMS; j++) v[j] = f->pinned[j] ? f->value[j] : *field(&c, j);
    apply(&c, &f->base, v);
    json_t *root = st__cluster_to_json(&c), *cal = json_object(), *params = json_object(), *unp = json_array();
    int bad = !root || !cal || !params || !unp;
    char src[300];
    snprintf(src, sizeof src, "strata calibrate --runs %s", f->file);
    for (int j = 0; !bad && j < ST_FIT_PARAMS; j++) {
        st_fit_value p;
        st_fit_param(f, j, &p);
        if (p.pinned)
            bad |= json_object_set_new(params, p.name, json_real(p.value));
        else
            bad |= json_array_append_new(unp, json_string(p.name));
    }
    if (!bad) {
        const st_fit_result *r = &f->res;
        bad |= json_object_set_new(cal, "source", json_string(src));
        bad |= json_object_set_new(cal, "from_cluster", json_string(f->cluster_arg));
        bad |= json_object_set_new(cal, "date", json_string(f->date));
        bad |= json_object_set_new(cal, "rows", json_integer(r->rows));
        bad |= json_object_set_new(cal, "rows_fitted", json_integer(r->fit_rows));
        bad |= json_object_set_new(cal, "seed", json_integer((json_int_t)f->opts.seed));
        bad |= json_object_set_new(cal, "fitted", params);
        bad |= json_object_set_new(cal, "not_pinned", unp);
        params = unp = NULL;
        bad |= json_object_set_new(cal, "mae_pct", json_real(r->fitted.mae_pct));
        bad |= json_object_set_new(cal, "mae_pct_before", json_real(r->start.mae_pct));
        if (isfinite(r->cv_mae_pct)) bad |= json_object_set_new(cal, "cv_mae_pct", json_real(r->cv_mae_pct));
        bad |= json_object_set_new(cal, "cv_folds", json_integer(f->opts.folds));
        if (r->fit_rows < r->rows && isfinite(r->held.mae_pct))
            bad |= json_object_set_new(cal, "held_out_mae_pct", json_real(r->held.mae_pct));
        bad |= json_object_set_new(root, "calibration", cal);
        cal = NULL;
    }
    json_decref(params);
    json_decref(unp);
    json_decref(cal);
    if (bad) {
        json_decref(root);
        return st_error_set(err, ST_ENOMEM, path, NULL, "out of memory");
    }
    int rc = st__json_write_file(root, path, err);
    json_decref(root);
    return rc;
}
