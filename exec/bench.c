/* bench.c: the executor's kernels and Open MPI timed for `strata profile --cpu` (exec.h, "measuring
 * this machine"). What is timed is what `strata run` runs: the GEMMs of exec/kernels.c through the
 * same CBLAS at one thread per rank, its attention, norm, activation and Adam loops, and MPI's
 * collectives and point-to-point messages in communicators of the world's first ranks.
 *
 * Every rank of the job times at once, so ranks that share a core (more ranks than cores) measure
 * the rate they get while the others compute too, which is what a run's ranks see when all of them
 * are busy. A compute timing is the fastest of `reps` windows of calls on each rank (time_op),
 * averaged over the ranks (their shares of the cores differ; the mean is the rate the job gets). A transfer
 * is timed as NCCL's tests and OSU's benchmarks time one: a barrier, then the call; the slowest
 * member's time is the call's, and the fastest over reps is kept. A send/recv is half a ping-pong
 * (OSU's osu_latency and osu_bw report the same one-way time). The fastest, not the median: on a
 * machine shared with other processes the minimum estimates the machine they leave undisturbed
 * (Google Benchmark's repetitions and hyperfine report it for that reason), and `strata run` keeps
 * its fastest iteration (exec/cpu.c run_steps), so both sides measure the same machine state. */
#include "exec/exec.h"
#include "exec/exec_private.h"

#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#if defined(__GLIBC__)
#include <malloc.h> /* mallinfo2 */
#endif

#define MAX_REPS 64

static double fastest(const double *v, int n) {
    double m = v[0];
    for (int i = 1; i < n; i++) m = fmin(m, v[i]);
    return m;
}

/* the mean over the world's ranks (every rank gets it) */
static double world_mean(double x) {
    int size = 1;
    double sum = 0;
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    MPI_Allreduce(&x, &sum, 1, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
    return sum / size;
}

/* every rank agrees whether all of them could allocate (a rank that could not must not leave the
 * others waiting in a collective) */
static int all_ok(int ok, st_error *err) {
    int all = 0;
    MPI_Allreduce(&ok, &all, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    return all ? 0 : st_error_set(err, ST_ENOMEM, NULL, NULL, "out of memory for a benchmark's buffers");
}

static int clamp_reps(int reps) { return reps < 1 ? 1 : reps > MAX_REPS ? MAX_REPS : reps; }

static void fill(float *x, int64_t n, float v) {
    for (int64_t i = 0; i < n; i++) x[i] = v * (float)(1 + i % 7) / 8;
}

/* The time of one call of f, all ranks starting together after one untimed warm-up: `reps`
 * windows of at least WINDOW_S each (calls back to back, the window's mean), the fastest window.
 * A window spans several of the kernel scheduler's time slices, so a rank that shares its core
 * with other ranks (or other processes) measures the share it gets, not the speed of a call that
 * happened to run alone. */
#define WINDOW_S 0.01
typedef void (*bench_fn)(void *arg, int pass);
static double time_op(bench_fn f, void *arg, int pass, int reps) {
    double t[MAX_REPS];
    reps = clamp_reps(reps);
    MPI_Barrier(MPI_COMM_WORLD);
    f(arg, pass);
    for (int r = 0; r < reps; r++) {
        double t0 = MPI_Wtime(), dt = 0;
        long calls = 0;
        do {
            f(arg, pass);
            calls++;
            dt = MPI_Wtime() - t0;
        } while (dt < WINDOW_S && calls < 100000);
        t[r] = dt / (double)calls;
    }
    return world_mean(fastest(t, reps));
}

/* ---------------------------------------------------------------- GEMMs */

typedef struct gemm_arg {
    int64_t m, n, k;
    float *x, *w, *y, *dx, *dw;
} gemm_arg;

static void gemm_run(void *p, int pass) {
    gemm_arg *g = p;
    if (!pass) st__xmm_fwd(g->y, g->x, g->w, NULL, g->m, g->k, g->n, 0);
    else st__xmm_bwd(g->dx, g->dw, NULL, g->y, g->x, g->w, g->m, g->k, g->n);
}

int st_exec_bench_gemm(int64_t m, int64_t n, int64_t k, int reps, double *fwd_s, double *bwd_s, st_error *err) {
    gemm_arg g = {m, n, k, NULL, NULL, NULL, NULL, NULL};
    g.x = malloc((size_t)(m * k) * sizeof(float));
    g.w = malloc((size_t)(n * k) * sizeof(float));
    g.y = malloc((size_t)(m * n) * sizeof(float));
    g.dx = calloc((size_t)(m * k), sizeof(float));
    g.dw = calloc((size_t)(n * k), sizeof(float));
    int rc = all_ok(g.x && g.w && g.y && g.dx && g.dw, err);
    if (!rc) {
        st__xkernels_threads(1);
        fill(g.x, m * k, 1), fill(g.w, n * k, 0.5f), fill(g.y, m * n, 0.25f);
        *fwd_s = time_op(gemm_run, &g, 0, reps);
        *bwd_s = time_op(gemm_run, &g, 1, reps);
    }
    free(g.x), free(g.w), free(g.y), free(g.dx), free(g.dw);
    return rc;
}

/* ---------------------------------------------------------------- attention */

typedef struct attn_arg {
    int64_t B, T, hq, hkv, d;
    float *q, *k, *v, *o, *p, *dq, *dk, *dv;
} attn_arg;

static void attn_run(void *p, int pass) {
    attn_arg *a = p;
    if (!pass) st__xattn_fwd(a->o, a->p, a->q, a->k, a->v, a->B, a->T, a->hq, a->hkv, a->d);
    else st__xattn_bwd(a->dq, a->dk, a->dv, a->o, a->p, a->q, a->k, a->v, a->B, a->T, a->hq, a->hkv, a->d);
}

int st_exec_bench_attn(int64_t B, int64_t T, int64_t hq, int64_t hkv, int64_t d, int reps, double *fwd_s,
                       double *bwd_s, st_error *err) {
    attn_arg a = {B, T, hq, hkv, d, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL};
    size_t nq = (size_t)(B * T * hq * d), nk = (size_t)(B * T * hkv * d), np = (size_t)(B * hq * T * T);
    a.q = malloc(nq * sizeof(float)), a.o = malloc(nq * sizeof(float)), a.dq = calloc(nq, sizeof(float));
    a.k = malloc(nk * sizeof(float)), a.v = malloc(nk * sizeof(float));
    a.dk = calloc(nk, sizeof(float)), a.dv = calloc(nk, sizeof(float));
    a.p = malloc(np * sizeof(float));
    int rc = all_ok(a.q && a.o && a.dq && a.k && a.v && a.dk && a.dv && a.p && hkv > 0 && hq % hkv == 0, err);
    if (!rc) {
        fill(a.q, (int64_t)nq, 0.1f), fill(a.k, (int64_t)nk, 0.2f), fill(a.v, (int64_t)nk, 0.3f);
        *fwd_s = time_op(attn_run, &a, 0, reps);
        *bwd_s = time_op(attn_run, &a, 1, reps);
    }
    free(a.q), free(a.o), free(a.dq), free(a.k), free(a.v), free(a.dk), free(a.dv), free(a.p);
    return rc;
}

/* ---------------------------------------------------------------- memory-bound kernels */

typedef struct stream_arg {
    st_exec_stream kind;
    int64_t rows, cols, n;
    float *a, *b, *c, *d, *e, *dw, *db, *mean, *rstd;
} stream_arg;

static void stream_run(void *p, int pass) {
    stream_arg *s = p;
    int64_t n = s->n;
    switch (s->kind) {
    case ST_EXEC_STREAM_NORM:
        if (!pass) st__xnorm_fwd(s->c, s->mean, s->rstd, s->a, s->d, s->e, s->rows, s->cols);
        else st__xnorm_bwd(s->b, s->dw, s->db, s->c, s->a, s->d, s->mean, s->rstd, s->rows, s->cols);
        break;
    case ST_EXEC_STREAM_GELU:
        if (!pass) st__xact_fwd(s->c, s->a, n, ST__XACT_GELU);
        else st__xact_bwd(s->b, s->a, s->c, n, ST__XACT_GELU);
        break;
    case ST_EXEC_STREAM_SWIGLU:
        if (!pass) st__xswiglu_fwd(s->c, s->a, s->b, n);
        else st__xswiglu_bwd(s->d, s->e, s->a, s->b, s->c, n);
        break;
    case ST_EXEC_STREAM_ADD: /* a residual add: c = a + b (its backward passes the gradient on: the same) */
        for (int64_t i = 0; i < n; i++) s->c[i] = s->a[i] + s->b[i];
        break;
    case ST_EXEC_STREAM_ADAM: /* a, b, c, d: parameters, gradients, moments */
        st__xadam(s->a, s->b, s->c, s->d, n, 1 + pass, 1e-3f, 0.9f, 0.95f, 1e-8f);
        break;
    }
}

int st_exec_bench_stream(st_exec_stream kind, int64_t rows, int64_t cols, int reps, double *fwd_s, double *bwd_s,
                         st_error *err) {
    stream_arg s = {kind, rows, cols, rows * cols, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL};
    size_t n = (size_t)(rows * cols), nr = (size_t)(rows > 0 ? rows : 1);
    /* norms: d, e hold the weight and bias, dw and db their gradients (cols each); the rest n each */
    size_t nw = kind == ST_EXEC_STREAM_NORM ? (size_t)cols : n;
    s.a = malloc(n * sizeof(float)), s.b = calloc(n, sizeof(float)), s.c = calloc(n, sizeof(float));
    s.d = calloc(nw, sizeof(float)), s.e = calloc(nw, sizeof(float));
    s.dw = calloc(nw, sizeof(float)), s.db = calloc(nw, sizeof(float));
    s.mean = malloc(nr * sizeof(float)), s.rstd = malloc(nr * sizeof(float));
    int rc = all_ok(s.a && s.b && s.c && s.d && s.e && s.dw && s.db && s.mean && s.rstd &&
                        (unsigned)kind <= ST_EXEC_STREAM_ADAM, err);
    if (!rc) {
        fill(s.a, (int64_t)n, 1), fill(s.b, (int64_t)n, 0.5f), fill(s.c, (int64_t)n, 0.25f);
        fill(s.d, (int64_t)nw, 1);
        *fwd_s = time_op(stream_run, &s, 0, reps);
        *bwd_s = time_op(stream_run, &s, 1, reps);
    }
    free(s.a), free(s.b), free(s.c), free(s.d), free(s.e), free(s.dw), free(s.db), free(s.mean), free(s.rstd);
    return rc;
}

/* ---------------------------------------------------------------- transfers */

int st_exec_bench_coll(st_coll coll, int ranks, double bytes, int reps, double *s, st_error *err) {
    int rank = 0, size = 1, rc = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    if (ranks < 2 || ranks > size || !(bytes >= 4) || bytes / 4 > 0x7fffffff ||
        (coll != ST_COLL_ALLREDUCE && coll != ST_COLL_ALLGATHER && coll != ST_COLL_REDUCESCATTER &&
         coll != ST_COLL_SENDRECV))
        return st_error_set(err, ST_EINVAL, NULL, NULL, "cannot time %s over %d of %d ranks at %g bytes",
                            st_coll_name(coll), ranks, size, bytes);
    /* bytes as cost/comm.c takes them: the full buffer per rank (all-gather: its output) */
    int n = (int)(bytes / 4), share = n / ranks > 0 ? n / ranks : 1;
    MPI_Comm c = MPI_COMM_NULL;
    MPI_Comm_split(MPI_COMM_WORLD, rank < ranks ? 0 : MPI_UNDEFINED, rank, &c);
    float *buf = malloc((size_t)n * sizeof *buf), *out = malloc((size_t)(n + share * ranks) * sizeof *out);
    int *counts = malloc((size_t)ranks * sizeof *counts);
    if ((rc = all_ok(buf && out && counts, err))) goto out;
    fill(buf, n, 1);
    for (int i = 0; i < ranks; i++) counts[i] = share;
    double t[MAX_REPS];
    reps = clamp_reps(reps);
    for (int r = -1; r < reps; r++) { /* r = -1: warm-up (connections, buffers) */
        double dt = 0, worst = 0;
        MPI_Barrier(MPI_COMM_WORLD);
        if (c != MPI_COMM_NULL) {
            double t0 = MPI_Wtime();
            if (coll == ST_COLL_ALLREDUCE) MPI_Allreduce(buf, out, n, MPI_FLOAT, MPI_SUM, c);
            else if (coll == ST_COLL_ALLGATHER) MPI_Allgather(buf, share, MPI_FLOAT, out, share, MPI_FLOAT, c);
            else if (coll == ST_COLL_REDUCESCATTER) MPI_Reduce_scatter(buf, out, counts, MPI_FLOAT, MPI_SUM, c);
            else if (rank == 0) {
                MPI_Send(buf, n, MPI_FLOAT, 1, 7, c);
                MPI_Recv(out, n, MPI_FLOAT, 1, 7, c, MPI_STATUS_IGNORE);
            } else if (rank == 1) {
                MPI_Recv(out, n, MPI_FLOAT, 0, 7, c, MPI_STATUS_IGNORE);
                MPI_Send(out, n, MPI_FLOAT, 0, 7, c);
            }
            dt = MPI_Wtime() - t0;
            if (coll == ST_COLL_SENDRECV) dt /= 2;
        }
        MPI_Allreduce(&dt, &worst, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
        if (r >= 0) t[r] = worst;
    }
    *s = fastest(t, reps);
out:
    if (c != MPI_COMM_NULL) MPI_Comm_free(&c);
    free(buf), free(out), free(counts);
    return rc;
}

#ifdef __SANITIZE_ADDRESS__
/* ASan's allocator replaces glibc's, whose mallinfo2 then sees nothing: ask ASan (its runtime
 * provides this; GCC ships no header for it) */
size_t __sanitizer_get_current_allocated_bytes(void);
#endif

double st__xheap_bytes(void) {
#ifdef __SANITIZE_ADDRESS__
    return (double)__sanitizer_get_current_allocated_bytes();
#elif defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33))
    struct mallinfo2 mi = mallinfo2();
    return (double)mi.uordblks + (double)mi.hblkhd;
#else
    return 0;
#endif
}

double st__xrun_delay_s(void) {
    FILE *f = fopen("/proc/thread-self/schedstat", "r");
    unsigned long long on_cpu_ns = 0, waited_ns = 0;
    int n = f ? fscanf(f, "%llu %llu", &on_cpu_ns, &waited_ns) : 0;
    if (f) fclose(f);
    return n == 2 ? (double)waited_ns * 1e-9 : 0;
}

double st_exec_bench_rss_bytes(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double mine = (double)ru.ru_maxrss * 1024, most = mine; /* Linux: KiB */
    MPI_Allreduce(&mine, &most, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    return most;
}
