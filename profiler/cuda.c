/* cuda.c: the measuring half of `strata profile` (profiler/profiler.h), built only with CUDA.
 *
 * What runs (shapes and sizes from profiler/prof.c):
 *   GEMMs       cuBLAS cublasGemmEx / cublasGemmStridedBatchedEx for bf16, fp16 (fp32 accumulate,
 *               as PyTorch), tf32 (CUBLAS_COMPUTE_32F_FAST_TF32) and fp32; cuBLASLt cublasLtMatmul
 *               for fp8 e4m3 (TN, bf16 out, fast accumulation in forward only, as Transformer
 *               Engine) on compute capability 8.9 and later. Each shape as its three training
 *               kernels; the sample is 3 x FLOPs over their summed time. cuBLAS and cuBLASLt are
 *               dlopen'ed when profiling starts: linking them would cost every strata command
 *               ~85 ms of start-up (libcublasLt is ~500 MB of relocations), for one command's sake.
 *   memory      the kernels of profiler/kernels.cu (when configure found nvcc; else skipped with
 *               a note): rate = bytes as cost/ counts them over the time.
 *   copies      cudaMemcpyAsync between pinned host memory and the device, both directions, 64 KiB
 *               to 1 GiB (quick: 1 and 64 MiB): the profile's copy tables, which price offload.
 *   collectives NCCL over 2, 4, 8 ... of the visible GPUs (one process, ncclCommInitAll, group
 *               calls): all-reduce, all-gather, reduce-scatter, all-to-all (send/recv to every
 *               peer), and send/recv between two; busBw as nccl-tests defines it. With --plan,
 *               also the plan's intra-node collectives (st__prof_plan_colls) over their group
 *               sizes, where the visible GPUs are enough, as exact points.
 *
 * Timing: every repetition is bracketed by CUDA events on its stream(s) and, when CUPTI can be
 * used, by an external correlation id (cuptiActivityPushExternalCorrelationId, CUSTOM0). CUPTI's
 * activity records (CONCURRENT_KERNEL, MEMCPY, with EXTERNAL_CORRELATION mapping their
 * correlation ids to ours) give a repetition's time as the sum of its kernels' or copies' GPU
 * durations, per device, the slowest device for collectives: launch gaps and host overhead
 * excluded, a split-K GEMM's two kernels together. After each point the buffers are flushed
 * (cuptiActivityFlushAll forced, after a synchronize) and dropped records are counted
 * (cuptiActivityGetNumDroppedRecords); a point whose records are missing or dropped falls back to
 * its events, and so does everything when CUPTI cannot start (the reason is said: another
 * profiler attached, insufficient privileges, ...) or delivers nothing. Each point: warm-ups (the
 * first runs cuBLAS's heuristics and lazy loading), then repetitions until about a budget of time
 * (5 to 20; quick 3 to 5), and the median. A shape whose warm-up takes longer than a cap is not
 * timed, nor are larger ones of its dtype and class (the table holds flat beyond its last point).
 *
 * Inputs are random (st__prof_fill: never zero, inf or NaN): a host block per dtype, copied to the
 * device and doubled there by device-to-device copies.
 *
 * Record structs follow CUPTI_API_VERSION (below); only the fields every version shares at the
 * same offsets are read (start, end, deviceId, correlationId; checked by _Static_assert). */
#include "config.h"
#include "profiler/profiler.h"

#include <cuda_runtime_api.h>
#include <dlfcn.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#ifdef HAVE_CUPTI
#include <cupti.h>
#endif
#ifdef HAVE_CUBLAS
#include <cublas_v2.h>
#endif
#ifdef HAVE_CUBLASLT
#include <cublasLt.h>
#endif
/* fp8 (e4m3) matmuls: cuBLASLt of CUDA 11.8 and later */
#if defined(HAVE_CUBLAS) && defined(HAVE_CUBLASLT) && CUDART_VERSION >= 11080
#define ST_FP8 1
#endif
#ifdef HAVE_NCCL
#include <nccl.h>
#endif
#ifdef HAVE_CUDA_KERNELS
#include "kernels.h"
#endif

#define MAX_DEV 16
#define MAX_REPS 32
#define STAGE_ELEMS ((size_t)1 << 22)   /* random host block per dtype, repeated on the device */
#define LT_WORKSPACE ((size_t)32 << 20) /* cuBLASLt workspace (Transformer Engine uses 32 MiB on Hopper) */
/* A plan collective larger than this is not timed: two such buffers per GPU would crowd out
 * the 80 GB of an A100/H100, and the table holds flat beyond its largest point anyway. */
#define PLAN_COLL_MAX ((size_t)8 << 30)

/* ------------------------------------------------------------------ CUPTI records */

#ifdef HAVE_CUPTI
#if CUPTI_API_VERSION >= 130000
typedef CUpti_ActivityKernel10 krec;
#elif CUPTI_API_VERSION >= 20
typedef CUpti_ActivityKernel9 krec;
#elif CUPTI_API_VERSION >= 18
typedef CUpti_ActivityKernel8 krec;
#elif CUPTI_API_VERSION >= 17
typedef CUpti_ActivityKernel7 krec;
#elif CUPTI_API_VERSION >= 15
typedef CUpti_ActivityKernel6 krec;
#elif CUPTI_API_VERSION >= 13
typedef CUpti_ActivityKernel5 krec;
#else
typedef CUpti_ActivityKernel4 krec;
#endif
#if CUPTI_API_VERSION >= 26
typedef CUpti_ActivityMemcpy6 mrec;
#elif CUPTI_API_VERSION >= 17
typedef CUpti_ActivityMemcpy5 mrec;
#elif CUPTI_API_VERSION >= 14
typedef CUpti_ActivityMemcpy4 mrec;
#else
typedef CUpti_ActivityMemcpy mrec;
#endif
/* the prefix every kernel record version shares (CUpti_ActivityKernel4 ... 10) */
_Static_assert(offsetof(krec, start) == 16 && offsetof(krec, end) == 24 && offsetof(krec, deviceId) == 40 &&
                   offsetof(krec, correlationId) == 92,
               "CUPTI kernel record layout");
_Static_assert(offsetof(mrec, start) == 16 && offsetof(mrec, end) == 24 && offsetof(mrec, deviceId) == 32 &&
                   offsetof(mrec, correlationId) == 44,
               "CUPTI memcpy record layout");

typedef struct act {
    uint32_t corr, dev;
    uint64_t start, end; /* ns */
} act;

typedef struct extc {
    uint32_t corr;
    uint64_t ext;
} extc;

/* filled by the buffer-completed callback, which CUPTI may call from its own thread */
static struct {
    pthread_mutex_t mu;
    act *a;
    size_t na, capa;
    extc *e;
    size_t ne, cape;
    size_t dropped;
    int oom;
} g_rec = {.mu = PTHREAD_MUTEX_INITIALIZER};

#define BUF_BYTES ((size_t)8 << 20)

static void CUPTIAPI buf_requested(uint8_t **buffer, size_t *size, size_t *max_records) {
    *buffer = aligned_alloc(8, BUF_BYTES);
    *size = *buffer ? BUF_BYTES : 0;
    *max_records = 0; /* as many as fit */
}

static void rec_act(uint32_t corr, uint32_t dev, uint64_t start, uint64_t end) {
    if (g_rec.na == g_rec.capa) {
        size_t c = g_rec.capa ? 2 * g_rec.capa : 4096;
        act *g = realloc(g_rec.a, c * sizeof *g);
        if (!g) {
            g_rec.oom = 1;
            return;
        }
        g_rec.a = g, g_rec.capa = c;
    }
    g_rec.a[g_rec.na++] = (act){corr, dev, start, end};
}

static void rec_ext(uint32_t corr, uint64_t ext) {
    if (g_rec.ne == g_rec.cape) {
        size_t c = g_rec.cape ? 2 * g_rec.cape : 4096;
        extc *g = realloc(g_rec.e, c * sizeof *g);
        if (!g) {
            g_rec.oom = 1;
            return;
        }
        g_rec.e = g, g_rec.cape = c;
    }
    g_rec.e[g_rec.ne++] = (extc){corr, ext};
}

static void CUPTIAPI buf_completed(CUcontext ctx, uint32_t stream, uint8_t *buffer, size_t size, size_t valid) {
    CUpti_Activity *rec = NULL;
    pthread_mutex_lock(&g_rec.mu);
    while (valid > 0 && cuptiActivityGetNextRecord(buffer, valid, &rec) == CUPTI_SUCCESS) {
        switch (rec->kind) {
        case CUPTI_ACTIVITY_KIND_KERNEL:
        case CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL: {
            const krec *k = (const krec *)rec;
            if (k->end > k->start) rec_act(k->correlationId, k->deviceId, k->start, k->end);
            break;
        }
        case CUPTI_ACTIVITY_KIND_MEMCPY: {
            const mrec *m = (const mrec *)rec;
            if (m->end > m->start) rec_act(m->correlationId, m->deviceId, m->start, m->end);
            break;
        }
        case CUPTI_ACTIVITY_KIND_EXTERNAL_CORRELATION: {
            const CUpti_ActivityExternalCorrelation *e = (const CUpti_ActivityExternalCorrelation *)rec;
            if (e->externalKind == CUPTI_EXTERNAL_CORRELATION_KIND_CUSTOM0) rec_ext(e->correlationId, e->externalId);
            break;
        }
        default: break;
        }
    }
    size_t dropped = 0;
    if (cuptiActivityGetNumDroppedRecords(ctx, stream, &dropped) == CUPTI_SUCCESS) g_rec.dropped += dropped;
    pthread_mutex_unlock(&g_rec.mu);
    free(buffer);
}

static void rec_clear(void) {
    pthread_mutex_lock(&g_rec.mu);
    g_rec.na = g_rec.ne = 0;
    g_rec.dropped = 0;
    g_rec.oom = 0;
    pthread_mutex_unlock(&g_rec.mu);
}

static int cmp_ext(const void *pa, const void *pb) {
    const extc *a = pa, *b = pb;
    return a->corr < b->corr ? -1 : a->corr > b->corr;
}

static int cmp_act(const void *pa, const void *pb) {
    const act *a = pa, *b = pb;
    if (a->dev != b->dev) return a->dev < b->dev ? -1 : 1;
    return a->start < b->start ? -1 : a->start > b->start;
}

/* why CUPTI cannot be used, from the status that refused it */
static void cupti_why(CUptiResult rc, char *buf, size_t n) {
    /* the rarer codes by value (cupti_result.h), so that older headers without them still build */
    switch ((int)rc) {
    case CUPTI_ERROR_MULTIPLE_SUBSCRIBERS_NOT_SUPPORTED:
        snprintf(buf, n,
                 "another profiler holds CUPTI (CUPTI_ERROR_MULTIPLE_SUBSCRIBERS_NOT_SUPPORTED: Nsight "
                 "Systems, Nsight Compute or a framework profiler is attached)");
        return;
    case CUPTI_ERROR_INSUFFICIENT_PRIVILEGES:
        snprintf(buf, n,
                 "insufficient privileges (CUPTI_ERROR_INSUFFICIENT_PRIVILEGES: the driver allows profiling "
                 "to administrators only; NVreg_RestrictProfilingToAdminUsers=0 lifts it)");
        return;
    case 33: snprintf(buf, n, "the GPU is virtualized (CUPTI_ERROR_VIRTUALIZED_DEVICE_NOT_SUPPORTED)"); return;
    case 41:
        snprintf(buf, n, "confidential computing is on (CUPTI_ERROR_CONFIDENTIAL_COMPUTING_NOT_SUPPORTED)");
        return;
    case 42: snprintf(buf, n, "a CMP device (CUPTI_ERROR_CMP_DEVICE_NOT_SUPPORTED)"); return;
    case 43: snprintf(buf, n, "a MIG slice (CUPTI_ERROR_MIG_DEVICE_NOT_SUPPORTED)"); return;
    case 14: snprintf(buf, n, "libcupti does not match the driver (CUPTI_ERROR_NOT_COMPATIBLE)"); return;
    default: break;
    }
    const char *s = NULL;
    if (cuptiGetResultString(rc, &s) != CUPTI_SUCCESS || !s) s = "unknown error";
    snprintf(buf, n, "CUPTI refused: %s (%d)", s, (int)rc);
}

static const CUpti_ActivityKind cupti_kinds[] = {
    CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL, CUPTI_ACTIVITY_KIND_MEMCPY, CUPTI_ACTIVITY_KIND_EXTERNAL_CORRELATION,
    /* external correlation records come with the API records they annotate */
    CUPTI_ACTIVITY_KIND_RUNTIME, CUPTI_ACTIVITY_KIND_DRIVER};
#endif /* HAVE_CUPTI */

/* ------------------------------------------------------------------ cuBLAS (dlopen'ed) */

#ifdef HAVE_CUBLAS
typedef struct blas {
    void *lib, *liblt;
    cublasHandle_t h;
    __typeof__(cublasCreate_v2) *create;
    __typeof__(cublasDestroy_v2) *destroy;
    __typeof__(cublasSetStream_v2) *set_stream;
    __typeof__(cublasSetMathMode) *set_math;
    __typeof__(cublasGemmEx) *gemm;
    __typeof__(cublasGemmStridedBatchedEx) *gemm_batched;
#ifdef ST_FP8
    cublasLtHandle_t lt;
    __typeof__(cublasLtCreate) *lt_create;
    __typeof__(cublasLtDestroy) *lt_destroy;
    __typeof__(cublasLtMatmulDescCreate) *desc_create;
    __typeof__(cublasLtMatmulDescDestroy) *desc_destroy;
    __typeof__(cublasLtMatmulDescSetAttribute) *desc_set;
    __typeof__(cublasLtMatrixLayoutCreate) *layout_create;
    __typeof__(cublasLtMatrixLayoutDestroy) *layout_destroy;
    __typeof__(cublasLtMatrixLayoutSetAttribute) *layout_set;
    __typeof__(cublasLtMatmulPreferenceCreate) *pref_create;
    __typeof__(cublasLtMatmulPreferenceDestroy) *pref_destroy;
    __typeof__(cublasLtMatmulPreferenceSetAttribute) *pref_set;
    __typeof__(cublasLtMatmulAlgoGetHeuristic) *heuristic;
    __typeof__(cublasLtMatmul) *matmul;
#endif
} blas;
#endif

/* ------------------------------------------------------------------ the bench */

typedef struct target {
    int dev;
    cudaStream_t s;
} target;

typedef struct bench {
    const st__prof_opts *o;
    st__prof_result *r;
    st_error *err;
    int dev, ndev, cc; /* cc: compute capability x 10 */
    cudaStream_t stream;
    target one; /* dev and stream */
    int cupti, cupti_seen;
    int n_cupti, n_events, n_by_order; /* points timed each way; CUPTI points grouped by order */
    char why[256];                     /* why CUDA events timed (some) points */
    uint64_t next_ext;
    int warmup, min_reps, max_reps;
    double budget_s, max_kernel_s;
    cudaEvent_t ev[MAX_DEV][2 * MAX_REPS];
    int ev_made[MAX_DEV];
    void *stage[ST_DT_COUNT][2]; /* random host blocks: [dtype][positive] */
    uint64_t seed;
    int have_blas, have_lt;
    int cupti_enabled; /* activity kinds are on (until cupti_off) */
    int mem_failed;    /* a memory-bound kernel failed to launch (said once) */
    void *one_f;       /* device 1.0f: fp8 scales */
    void *ws;          /* cuBLASLt workspace */
#ifdef HAVE_CUBLAS
    blas bl;
#endif
} bench;

/* a launch function enqueues one repetition: 0, 1 when this case cannot run (a note was made or
 * the caller makes one), or a negative ST_E* code with b->err set */
typedef int (*launch_fn)(bench *b, void *arg);

static int cuda_fail(bench *b, cudaError_t e, const char *what) {
    return st_error_set(b->err, ST_EIO, NULL, NULL, "CUDA error in %s: %s", what, cudaGetErrorString(e));
}

#define CUDA_OK(call, what)                                                                                            \
    do {                                                                                                               \
        cudaError_t e_ = (call);                                                                                       \
        if (e_ != cudaSuccess) {                                                                                       \
            rc = cuda_fail(b, e_, (what));                                                                             \
            goto out;                                                                                                  \
        }                                                                                                              \
    } while (0)

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static void progress(bench *b, const char *fmt, ...) {
    if (!b->o->progress) return;
    va_list ap;
    va_start(ap, fmt);
    fprintf(b->o->progress, "strata profile: ");
    vfprintf(b->o->progress, fmt, ap);
    fputc('\n', b->o->progress);
    va_end(ap);
}

/* device memory; 1 when it does not fit (not an error: the case is skipped) */
static int dalloc(bench *b, void **p, size_t bytes) {
    *p = NULL;
    cudaError_t e = cudaMalloc(p, bytes ? bytes : 1);
    if (e == cudaSuccess) return 0;
    *p = NULL;
    if (e == cudaErrorMemoryAllocation) {
        (void)cudaGetLastError();
        return 1;
    }
    return cuda_fail(b, e, "cudaMalloc");
}

static size_t elem_bytes(st_dtype dt) { return dt == ST_DT_FP8 ? 1 : (size_t)st_dtype_bytes(dt); }

/* n random elements of dt at p (device memory of dev b->dev or the current device) */
static int fill(bench *b, st_dtype dt, int positive, void *p, size_t n) {
    int rc = 0;
    size_t eb = elem_bytes(dt);
    void **st = &b->stage[dt][positive ? 1 : 0];
    if (!*st) {
        if (!(*st = malloc(STAGE_ELEMS * eb))) return st_error_set(b->err, ST_ENOMEM, NULL, NULL, "out of memory");
        st__prof_fill(dt, positive, *st, STAGE_ELEMS, &b->seed);
    }
    size_t first = n < STAGE_ELEMS ? n : STAGE_ELEMS;
    CUDA_OK(cudaMemcpy(p, *st, first * eb, cudaMemcpyHostToDevice), "filling inputs");
    for (size_t done = first; done < n;) {
        size_t c = done < n - done ? done : n - done;
        CUDA_OK(cudaMemcpy((char *)p + done * eb, p, c * eb, cudaMemcpyDeviceToDevice), "filling inputs");
        done += c;
    }
out:
    return rc;
}

static int make_events(bench *b, int dev) {
    int rc = 0;
    if (dev < 0 || dev >= MAX_DEV) return st_error_set(b->err, ST_EINTERNAL, NULL, NULL, "device %d out of range", dev);
    if (b->ev_made[dev]) return 0;
    CUDA_OK(cudaSetDevice(dev), "cudaSetDevice");
    for (int i = 0; i < 2 * MAX_REPS; i++)
        CUDA_OK(cudaEventCreate(&b->ev[dev][i]), "cudaEventCreate");
    b->ev_made[dev] = 1;
out:
    return rc;
}

/* Enqueues `reps` repetitions on the targets, each between events (and under its own external
 * correlation id from ext_base when CUPTI is on and ext_base > 0), waits, and writes each
 * repetition's event time (the slowest target) to ev_s. */
static int enqueue(bench *b, launch_fn fn, void *arg, const target *t, int nt, int reps, uint64_t ext_base,
                   double *ev_s) {
    int rc = 0;
    for (int r = 0; r < reps; r++) {
        for (int i = 0; i < nt; i++) {
            CUDA_OK(cudaSetDevice(t[i].dev), "cudaSetDevice");
            CUDA_OK(cudaEventRecord(b->ev[t[i].dev][2 * r], t[i].s), "cudaEventRecord");
        }
#ifdef HAVE_CUPTI
        if (b->cupti && ext_base)
            cuptiActivityPushExternalCorrelationId(CUPTI_EXTERNAL_CORRELATION_KIND_CUSTOM0, ext_base + (uint64_t)r);
#endif
        rc = fn(b, arg);
#ifdef HAVE_CUPTI
        if (b->cupti && ext_base) cuptiActivityPopExternalCorrelationId(CUPTI_EXTERNAL_CORRELATION_KIND_CUSTOM0, NULL);
#endif
        if (rc) goto out;
        for (int i = 0; i < nt; i++) {
            CUDA_OK(cudaSetDevice(t[i].dev), "cudaSetDevice");
            CUDA_OK(cudaEventRecord(b->ev[t[i].dev][2 * r + 1], t[i].s), "cudaEventRecord");
        }
    }
    for (int i = 0; i < nt; i++) {
        CUDA_OK(cudaSetDevice(t[i].dev), "cudaSetDevice");
        CUDA_OK(cudaStreamSynchronize(t[i].s), "the benchmark (cudaStreamSynchronize)");
    }
    for (int r = 0; r < reps; r++) {
        double worst = 0;
        for (int i = 0; i < nt; i++) {
            float ms = 0;
            CUDA_OK(cudaEventElapsedTime(&ms, b->ev[t[i].dev][2 * r], b->ev[t[i].dev][2 * r + 1]),
                    "cudaEventElapsedTime");
            if (ms * 1e-3 > worst) worst = ms * 1e-3;
        }
        ev_s[r] = worst;
    }
out:
    cudaSetDevice(b->dev);
    return rc;
}

#ifdef HAVE_CUPTI
/* the CUPTI time of each repetition ext_base .. ext_base + reps - 1: per device the sum of its
 * activities' durations, the slowest device. 0 when every repetition has records, else 1 with
 * the reason in why. */
static int cupti_times(bench *b, uint64_t ext_base, int reps, double *out, char *why, size_t nwhy) {
    double per[MAX_REPS][MAX_DEV];
    uint32_t devs[MAX_DEV];
    int nd = 0, rc = 0;
    memset(per, 0, sizeof per);
    cuptiActivityFlushAll(CUPTI_ACTIVITY_FLAG_FLUSH_FORCED);
    pthread_mutex_lock(&g_rec.mu);
    size_t dropped = g_rec.dropped, na = g_rec.na;
    int oom = g_rec.oom;
    int by_order = g_rec.ne == 0 && g_rec.na > 0, uneven = 0;
    if (by_order) {
        /* no external correlation records came: each device's activities, in time order, split
         * evenly over the repetitions (the warm-ups' were cleared; every repetition launches the
         * same kernels) */
        qsort(g_rec.a, g_rec.na, sizeof *g_rec.a, cmp_act);
        for (size_t i = 0, j; i < g_rec.na; i = j) {
            for (j = i; j < g_rec.na && g_rec.a[j].dev == g_rec.a[i].dev;)
                j++;
            size_t cnt = j - i;
            if (cnt % (size_t)reps || nd == MAX_DEV) {
                uneven = 1;
                continue;
            }
            for (size_t k = i; k < j; k++)
                per[(k - i) / (cnt / (size_t)reps)][nd] += (double)(g_rec.a[k].end - g_rec.a[k].start) * 1e-9;
            devs[nd++] = g_rec.a[i].dev;
        }
    } else {
        if (g_rec.ne) /* no records at all: qsort's base may then be NULL, which C does not allow */
            qsort(g_rec.e, g_rec.ne, sizeof *g_rec.e, cmp_ext);
        for (size_t i = 0; i < g_rec.na; i++) {
            const act *a = &g_rec.a[i];
            extc key = {a->corr, 0};
            const extc *e = bsearch(&key, g_rec.e, g_rec.ne, sizeof key, cmp_ext);
            if (!e || e->ext < ext_base || e->ext >= ext_base + (uint64_t)reps) continue;
            int slot = 0;
            while (slot < nd && devs[slot] != a->dev)
                slot++;
            if (slot == nd) {
                if (nd == MAX_DEV) continue;
                devs[nd++] = a->dev;
            }
            per[e->ext - ext_base][slot] += (double)(a->end - a->start) * 1e-9;
        }
    }
    g_rec.na = g_rec.ne = 0;
    g_rec.dropped = 0;
    g_rec.oom = 0;
    pthread_mutex_unlock(&g_rec.mu);
    if (na > 0) b->cupti_seen = 1;
    if (dropped || oom) {
        snprintf(why, nwhy, "CUPTI dropped %zu activity records", dropped);
        return 1;
    }
    if (uneven) {
        snprintf(why, nwhy,
                 "CUPTI gave no external correlation records, and the activities did not split evenly "
                 "into repetitions");
        return 1;
    }
    for (int r = 0; r < reps; r++) {
        out[r] = 0;
        for (int d = 0; d < nd; d++)
            if (per[r][d] > out[r]) out[r] = per[r][d];
        if (!(out[r] > 0)) rc = 1;
    }
    if (rc) snprintf(why, nwhy, "CUPTI gave no activity records for some repetitions");
    if (!rc && by_order) b->n_by_order++;
    return rc;
}
#endif

#ifdef HAVE_CUPTI
/* activity off for good: kinds disabled, what is buffered delivered and dropped */
static void cupti_off(bench *b) {
    b->cupti = 0;
    if (!b->cupti_enabled) return;
    for (size_t i = 0; i < sizeof cupti_kinds / sizeof cupti_kinds[0]; i++)
        cuptiActivityDisable(cupti_kinds[i]);
    cuptiActivityFlushAll(CUPTI_ACTIVITY_FLAG_FLUSH_FORCED);
    pthread_mutex_lock(&g_rec.mu);
    free(g_rec.a);
    free(g_rec.e);
    g_rec.a = NULL, g_rec.e = NULL;
    g_rec.na = g_rec.capa = g_rec.ne = g_rec.cape = 0;
    pthread_mutex_unlock(&g_rec.mu);
    b->cupti_enabled = 0;
}
#endif

enum { M_OK, M_SKIP, M_SLOW };

/* Times one case: warm-ups, then repetitions, the median in *sec. M_OK, M_SKIP (the case cannot
 * run), M_SLOW (a warm-up took longer than the cap; only when capped), or a negative code. */
static int measure(bench *b, launch_fn fn, void *arg, const target *t, int nt, int capped, double *sec) {
    double ev_s[MAX_REPS], cu_s[MAX_REPS];
    int rc = 0;
    for (int i = 0; i < nt; i++)
        if ((rc = make_events(b, t[i].dev))) return rc;
    if ((rc = enqueue(b, fn, arg, t, nt, b->warmup, 0, ev_s))) return rc > 0 ? M_SKIP : rc;
    double tw = ev_s[b->warmup - 1];
    if (capped && tw > b->max_kernel_s) return M_SLOW;
    int reps = tw > 0 ? (int)ceil(b->budget_s / tw) : b->max_reps;
    if (reps < b->min_reps) reps = b->min_reps;
    if (reps > b->max_reps) reps = b->max_reps;
#ifdef HAVE_CUPTI
    if (b->cupti) {
        cuptiActivityFlushAll(CUPTI_ACTIVITY_FLAG_FLUSH_FORCED); /* the warm-ups' records go */
        rec_clear();
    }
#endif
    uint64_t base = ++b->next_ext * MAX_REPS; /* ids never 0, never reused */
    if ((rc = enqueue(b, fn, arg, t, nt, reps, base, ev_s))) return rc > 0 ? M_SKIP : rc;
    const double *use = ev_s;
#ifdef HAVE_CUPTI
    if (b->cupti) {
        char why[200];
        if (cupti_times(b, base, reps, cu_s, why, sizeof why) == 0) {
            use = cu_s;
        } else if (!b->cupti_seen) {
            /* nothing has ever come: CUPTI runs but does not trace here; events from now on */
            cupti_off(b);
            snprintf(b->why, sizeof b->why, "CUPTI started but delivered no activity records");
        } else if (!b->why[0]) {
            snprintf(b->why, sizeof b->why, "%s", why);
        }
    }
#else
    (void)cu_s;
#endif
    if (use == ev_s)
        b->n_events++;
    else
        b->n_cupti++;
    double v[MAX_REPS];
    memcpy(v, use, (size_t)reps * sizeof *v);
    *sec = st__prof_median(v, reps);
    return M_OK;
}

/* ------------------------------------------------------------------ GEMMs */

typedef struct gemm_job {
    st_dtype dt;
    int pass, m, n, k, batch; /* as run: fp8 sizes rounded up to 16 */
    void *x, *w, *dy, *out;   /* x [m, k], W [n, k], dy [m, n] per batch entry; out the largest */
#ifdef ST_FP8
    cublasLtMatmulDesc_t desc;
    cublasLtMatrixLayout_t la, lb, lc;
    cublasLtMatmulHeuristicResult_t heur;
#endif
    int status; /* the library's status when a launch failed */
} gemm_job;

#ifdef HAVE_CUBLAS
static int gemm_launch(bench *b, void *arg) {
    gemm_job *j = arg;
    const float alpha = 1, beta = 0;
    /* the pass in cuBLAS's column-major terms (prof.h): M, N, K, A, lda, B, ldb, ldc and strides */
    long long M, N, K, lda, ldb, ldc, sa, sb, sc;
    const void *A, *B;
    cublasOperation_t ta, tb;
    long long m = j->m, n = j->n, k = j->k;
    switch (j->pass) {
    case ST_PROF_FWD:
        ta = CUBLAS_OP_T, tb = CUBLAS_OP_N, M = n, N = m, K = k, A = j->w, lda = k, B = j->x, ldb = k, ldc = n;
        sa = n * k, sb = m * k, sc = m * n;
        break;
    case ST_PROF_DGRAD:
        ta = CUBLAS_OP_N, tb = CUBLAS_OP_N, M = k, N = m, K = n, A = j->w, lda = k, B = j->dy, ldb = n, ldc = k;
        sa = n * k, sb = m * n, sc = m * k;
        break;
    default:
        ta = CUBLAS_OP_N, tb = CUBLAS_OP_T, M = k, N = n, K = m, A = j->x, lda = k, B = j->dy, ldb = n, ldc = k;
        sa = m * k, sb = m * n, sc = n * k;
        break;
    }
#ifdef ST_FP8
    if (j->dt == ST_DT_FP8) {
        /* TN with A = [K x M], B = [K x N]: the buffers of this pass in prepare_lt's order */
        const void *a8 = j->pass == ST_PROF_WGRAD ? j->x : j->w, *b8 = j->pass == ST_PROF_FWD ? j->x : j->dy;
        cublasStatus_t s = b->bl.matmul(b->bl.lt, j->desc, &alpha, a8, j->la, b8, j->lb, &beta, j->out, j->lc, j->out,
                                        j->lc, &j->heur.algo, b->ws, LT_WORKSPACE, b->stream);
        j->status = (int)s;
        return s == CUBLAS_STATUS_SUCCESS ? 0 : 1;
    }
#endif
    cudaDataType_t t = j->dt == ST_DT_BF16 ? CUDA_R_16BF : j->dt == ST_DT_FP16 ? CUDA_R_16F : CUDA_R_32F;
    cublasComputeType_t ct = j->dt == ST_DT_TF32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
    cublasStatus_t s;
    if (j->batch > 1)
        s = b->bl.gemm_batched(b->bl.h, ta, tb, (int)M, (int)N, (int)K, &alpha, A, t, (int)lda, sa, B, t, (int)ldb, sb,
                               &beta, j->out, t, (int)ldc, sc, j->batch, ct, CUBLAS_GEMM_DEFAULT);
    else
        s = b->bl.gemm(b->bl.h, ta, tb, (int)M, (int)N, (int)K, &alpha, A, t, (int)lda, B, t, (int)ldb, &beta, j->out,
                       t, (int)ldc, ct, CUBLAS_GEMM_DEFAULT);
    j->status = (int)s;
    return s == CUBLAS_STATUS_SUCCESS ? 0 : 1;
}
#endif

#ifdef ST_FP8
static void release_lt(bench *b, gemm_job *j) {
    if (j->desc) b->bl.desc_destroy(j->desc);
    if (j->la) b->bl.layout_destroy(j->la);
    if (j->lb) b->bl.layout_destroy(j->lb);
    if (j->lc) b->bl.layout_destroy(j->lc);
    j->desc = NULL, j->la = j->lb = j->lc = NULL;
}

/* the fp8 matmul of this pass: descriptors and cuBLASLt's first heuristic choice; 1 if none */
static int prepare_lt(bench *b, gemm_job *j) {
    uint64_t M, N, K;
    switch (j->pass) {
    case ST_PROF_FWD: M = j->n, N = j->m, K = j->k; break;
    case ST_PROF_DGRAD: M = j->k, N = j->m, K = j->n; break;
    default: M = j->k, N = j->n, K = j->m; break;
    }
    cublasLtMatmulPreference_t pref = NULL;
    cublasOperation_t tt = CUBLAS_OP_T, tn = CUBLAS_OP_N;
    int8_t fast = j->pass == ST_PROF_FWD; /* Transformer Engine: split accumulator for gradients */
    const void *scale = b->one_f;
    uint64_t wsb = LT_WORKSPACE;
    int found = 0, bad = 0;
    bad |= b->bl.desc_create(&j->desc, CUBLAS_COMPUTE_32F, CUDA_R_32F) != CUBLAS_STATUS_SUCCESS;
    bad |= !bad && b->bl.desc_set(j->desc, CUBLASLT_MATMUL_DESC_TRANSA, &tt, sizeof tt) != CUBLAS_STATUS_SUCCESS;
    bad |= !bad && b->bl.desc_set(j->desc, CUBLASLT_MATMUL_DESC_TRANSB, &tn, sizeof tn) != CUBLAS_STATUS_SUCCESS;
    bad |=
        !bad && b->bl.desc_set(j->desc, CUBLASLT_MATMUL_DESC_FAST_ACCUM, &fast, sizeof fast) != CUBLAS_STATUS_SUCCESS;
    bad |= !bad &&
           b->bl.desc_set(j->desc, CUBLASLT_MATMUL_DESC_A_SCALE_POINTER, &scale, sizeof scale) != CUBLAS_STATUS_SUCCESS;
    bad |= !bad &&
           b->bl.desc_set(j->desc, CUBLASLT_MATMUL_DESC_B_SCALE_POINTER, &scale, sizeof scale) != CUBLAS_STATUS_SUCCESS;
    bad |= !bad && b->bl.layout_create(&j->la, CUDA_R_8F_E4M3, K, M, (int64_t)K) != CUBLAS_STATUS_SUCCESS;
    bad |= !bad && b->bl.layout_create(&j->lb, CUDA_R_8F_E4M3, K, N, (int64_t)K) != CUBLAS_STATUS_SUCCESS;
    bad |= !bad && b->bl.layout_create(&j->lc, CUDA_R_16BF, M, N, (int64_t)M) != CUBLAS_STATUS_SUCCESS;
    if (j->batch > 1) {
        /* an MoE layer's experts: one strided-batched matmul, as cublasGemmStridedBatchedEx */
        int32_t count = j->batch;
        int64_t stride[3] = {(int64_t)(K * M), (int64_t)(K * N), (int64_t)(M * N)};
        cublasLtMatrixLayout_t l[3] = {j->la, j->lb, j->lc};
        for (int i = 0; i < 3 && !bad; i++) {
            bad |= b->bl.layout_set(l[i], CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &count, sizeof count) !=
                   CUBLAS_STATUS_SUCCESS;
            bad |= b->bl.layout_set(l[i], CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &stride[i], sizeof stride[i]) !=
                   CUBLAS_STATUS_SUCCESS;
        }
    }
    bad |= !bad && b->bl.pref_create(&pref) != CUBLAS_STATUS_SUCCESS;
    bad |= !bad &&
           b->bl.pref_set(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &wsb, sizeof wsb) != CUBLAS_STATUS_SUCCESS;
    bad |= !bad && b->bl.heuristic(b->bl.lt, j->desc, j->la, j->lb, j->lc, j->lc, pref, 1, &j->heur, &found) !=
                       CUBLAS_STATUS_SUCCESS;
    if (pref) b->bl.pref_destroy(pref);
    if (bad || found < 1) {
        release_lt(b, j);
        return 1;
    }
    return 0;
}
#endif

typedef struct gemm_state {
    int skipped_mem, failed, slow[ST_OPC_COUNT];
    double slow_at[ST_OPC_COUNT];
    int last_status;
} gemm_state;

/* Times one shape (three kernels) in dtype dt and adds its sample. */
static int gemm_one(bench *b, const st__prof_gemm *g, st_dtype dt, gemm_state *gs) {
    int rc = 0;
#ifdef HAVE_CUBLAS
    gemm_job j;
    memset(&j, 0, sizeof j);
    j.dt = dt;
    double r16 = dt == ST_DT_FP8 ? 16 : 1; /* cuBLASLt fp8: every dimension a multiple of 16 */
    j.m = (int)(ceil(g->m / r16) * r16), j.n = (int)(ceil(g->n / r16) * r16), j.k = (int)(ceil(g->k / r16) * r16);
    j.batch = (int)g->batch;
    size_t in_b = elem_bytes(dt), out_b = dt == ST_DT_FP8 ? 2 : in_b;
    size_t xk = (size_t)j.m * j.k * j.batch, wk = (size_t)j.n * j.k * j.batch, y = (size_t)j.m * j.n * j.batch;
    size_t big = xk > wk ? (xk > y ? xk : y) : (wk > y ? wk : y);
    int a;
    if ((a = dalloc(b, &j.x, xk * in_b)) || (a = dalloc(b, &j.w, wk * in_b)) || (a = dalloc(b, &j.dy, y * in_b)) ||
        (a = dalloc(b, &j.out, big * out_b))) {
        if (a < 0) rc = a;
        gs->skipped_mem++;
        goto out;
    }
    if ((rc = fill(b, dt, 0, j.x, xk)) || (rc = fill(b, dt, 0, j.w, wk)) || (rc = fill(b, dt, 0, j.dy, y))) goto out;
    CUDA_OK(cudaDeviceSynchronize(), "filling inputs");
    double t[ST_PROF_PASSES], total = 0;
    for (int p = 0; p < ST_PROF_PASSES; p++) {
        j.pass = p;
#ifdef ST_FP8
        if (dt == ST_DT_FP8 && prepare_lt(b, &j)) {
            gs->failed++;
            goto out;
        }
#endif
        int m = measure(b, gemm_launch, &j, &b->one, 1, !g->plan, &t[p]);
#ifdef ST_FP8
        if (dt == ST_DT_FP8) release_lt(b, &j);
#endif
        if (m < 0) {
            rc = m;
            goto out;
        }
        if (m == M_SLOW) {
            gs->slow[g->cls] = 1;
            gs->slow_at[g->cls] = g->flops;
            goto out;
        }
        if (m == M_SKIP) {
            gs->failed++;
            gs->last_status = j.status;
            goto out;
        }
        total += t[p];
    }
    /* the operator's FLOPs over the time of the kernels that ran it (fp8 pads to multiples of 16,
     * as Transformer Engine does: the padding costs the operator time, not work) */
    st__prof_sample s = {.kind = ST_PROF_COMPUTE,
                         .cls = g->cls,
                         .dtype = dt,
                         .exact = g->plan,
                         .x = g->flops,
                         .y = total > 0 ? ST_PROF_PASSES * g->flops / total : 0};
    if (st__prof_add(b->r, &s)) rc = st_error_set(b->err, ST_ENOMEM, NULL, NULL, "out of memory");
out:
#ifdef ST_FP8
    if (dt == ST_DT_FP8) release_lt(b, &j);
#endif
    cudaFree(j.x);
    cudaFree(j.w);
    cudaFree(j.dy);
    cudaFree(j.out);
#else
    (void)b, (void)g, (void)dt, (void)gs;
#endif
    return rc;
}

/* Why dtype dt cannot be timed here ("" when it can). */
static void gemm_unsupported(const bench *b, st_dtype dt, char *why, size_t n) {
    why[0] = '\0';
    if (!b->have_blas)
        snprintf(why, n, "cuBLAS could not be loaded");
    else if ((dt == ST_DT_BF16 || dt == ST_DT_TF32) && b->cc < 80)
        snprintf(why, n, "compute capability %d.%d (cuBLAS runs %s on 8.0 and later)", b->cc / 10, b->cc % 10,
                 st_dtype_name(dt));
    /* cuBLASLt's block-scaled GEMMs (CUBLASLT_MATMUL_MATRIX_SCALE_VEC32_UE8M0 / VEC16_UE4M3) take
     * swizzled scale tensors this profiler does not build: the plan's GEMMs fall back to the peaks */
    else if (dt == ST_DT_MXFP8 || dt == ST_DT_NVFP4)
        snprintf(why, n, "the profiler times no block-scaled GEMMs");
    else if (dt == ST_DT_FP8 && !b->have_lt)
        snprintf(why, n, "cuBLASLt %s", b->have_blas ? "could not be loaded" : "is missing");
    else if (dt == ST_DT_FP8 && b->cc < 89)
        snprintf(why, n, "compute capability %d.%d (cuBLASLt runs fp8 GEMMs on 8.9 and later)", b->cc / 10, b->cc % 10);
}

static int gemm_list(bench *b, const st__prof_gemm *list, int n, st_dtype dt, const char *what) {
    gemm_state gs;
    memset(&gs, 0, sizeof gs);
    int rc = 0;
    char label[64];
    snprintf(label, sizeof label, "%s %s", what, st_dtype_name(dt));
    progress(b, "%s GEMMs: %d shapes x 3 kernels", label, n);
    for (int i = 0; i < n; i++) {
        /* attention's batched GEMMs stay in bf16 under fp8 training (cost/compute.c) */
        st_dtype use = dt == ST_DT_FP8 && list[i].cls == ST_OPC_BGEMM ? ST_DT_BF16 : dt;
        if (use != dt && !list[i].plan) continue;
        if (gs.slow[list[i].cls] && !list[i].plan) continue;
        if ((rc = gemm_one(b, &list[i], use, &gs)) < 0) return rc;
    }
    if (gs.skipped_mem) st__prof_note(b->r, "%s: %d GEMM shapes did not fit in device memory", label, gs.skipped_mem);
    if (gs.failed)
        st__prof_note(b->r, "%s: %d GEMM shapes failed in cuBLAS (status %d)", label, gs.failed, gs.last_status);
    for (int c = 0; c < ST_OPC_COUNT; c++)
        if (gs.slow[c])
            st__prof_note(b->r, "%s: %s shapes from %.3g FLOPs up not timed (a kernel takes over %.2g s)", label,
                          st_opclass_name((st_opclass)c), gs.slow_at[c], b->max_kernel_s);
    return 0;
}

static int run_gemms(bench *b) {
    static const st_dtype full[] = {ST_DT_BF16, ST_DT_FP16, ST_DT_TF32, ST_DT_FP32, ST_DT_FP8};
    const st__prof_opts *o = b->o;
    int ndt = o->quick ? 1 : (int)(sizeof full / sizeof full[0]);
    size_t free_b = 0, total_b = 0;
    int rc = 0;
    char why[160];
    if (cudaMemGetInfo(&free_b, &total_b) != cudaSuccess) free_b = 0;
    for (int d = 0; d < ndt; d++) {
        st_dtype dt = full[d];
        gemm_unsupported(b, dt, why, sizeof why);
        if (why[0]) {
            st__prof_note(b->r, "%s GEMMs skipped: %s", st_dtype_name(dt), why);
            continue;
        }
        st__prof_gemm *grid = NULL;
        int n = 0;
        /* room for the shape and cuBLAS's own workspaces */
        double cap = 0.8 * (double)free_b - 256.0 * 1048576;
        if ((rc = st__prof_gemm_grid(o->quick, cap, dt == ST_DT_FP8 ? 2 : (double)elem_bytes(dt), &grid, &n)) < 0)
            return st_error_set(b->err, rc, NULL, NULL, "out of memory");
        rc = gemm_list(b, grid, n, dt, "grid");
        free(grid);
        if (rc < 0) return rc;
    }
    if (o->nplan_gemms > 0) {
        gemm_unsupported(b, o->plan_dtype, why, sizeof why);
        if (why[0])
            st__prof_note(b->r, "the plan's %s GEMMs not timed: %s", st_dtype_name(o->plan_dtype), why);
        else if ((rc = gemm_list(b, o->plan_gemms, o->nplan_gemms, o->plan_dtype, "plan")) < 0)
            return rc;
    }
    return 0;
}

/* ------------------------------------------------------------------ memory-bound kernels */

#ifdef HAVE_CUDA_KERNELS
typedef struct mem_job {
    const st__prof_mem *k;
    void *in[4], *out[2];
    int status; /* the launch's cudaError_t */
} mem_job;

static int mem_launch(bench *b, void *arg) {
    mem_job *j = arg;
    const st__prof_mem *k = j->k;
    int64_t n = k->rows * k->cols;
    void *s = b->stream;
    int e;
    switch (k->kernel) {
    case ST_PROF_LAYERNORM: e = st__k_layernorm(j->out[0], j->in[0], j->in[1], j->in[2], k->rows, k->cols, s); break;
    case ST_PROF_RMSNORM: e = st__k_rmsnorm(j->out[0], j->in[0], j->in[1], k->rows, k->cols, s); break;
    case ST_PROF_SOFTMAX: e = st__k_softmax(j->out[0], j->in[0], k->rows, k->cols, 0.08838835f, s); break;
    case ST_PROF_GELU: e = st__k_gelu(j->out[0], j->in[0], n, s); break;
    case ST_PROF_SWIGLU: e = st__k_swiglu(j->out[0], j->in[0], n, s); break;
    case ST_PROF_ADD: e = st__k_add(j->out[0], j->in[0], j->in[1], n, s); break;
    default: e = st__k_adam(j->in[0], j->in[1], j->in[2], j->in[3], j->out[0], n, 10, s); break;
    }
    j->status = e;
    return e ? 1 : 0; /* e.g. no kernel image for this GPU: skipped, said once */
}

static int mem_one(bench *b, const st__prof_mem *k, int *skipped) {
    mem_job j;
    memset(&j, 0, sizeof j);
    j.k = k;
    size_t n = (size_t)k->rows * (size_t)k->cols, cols = (size_t)k->cols;
    /* inputs: (dtype, elements, positive); outputs: (dtype, elements) */
    typedef struct buf {
        st_dtype dt;
        size_t n;
        int pos;
    } buf;
    buf in[4] = {{ST_DT_BF16, n, 0}}, out[2] = {{ST_DT_BF16, n, 0}};
    int nin = 1, nout = 1, rc = 0, a = 0;
    switch (k->kernel) {
    case ST_PROF_LAYERNORM: in[1] = (buf){ST_DT_FP32, cols, 1}, in[2] = (buf){ST_DT_FP32, cols, 0}, nin = 3; break;
    case ST_PROF_RMSNORM: in[1] = (buf){ST_DT_FP32, cols, 1}, nin = 2; break;
    case ST_PROF_SWIGLU: in[0].n = 2 * n; break;
    case ST_PROF_ADD: in[1] = in[0], nin = 2; break;
    case ST_PROF_ADAM:
        for (int i = 0; i < 4; i++)
            in[i] = (buf){ST_DT_FP32, n, i == 3}; /* p, g, m, v >= 0 */
        nin = 4;
        break;
    default: break;
    }
    for (int i = 0; i < nin && !a; i++)
        a = dalloc(b, &j.in[i], in[i].n * elem_bytes(in[i].dt));
    for (int i = 0; i < nout && !a; i++)
        a = dalloc(b, &j.out[i], out[i].n * elem_bytes(out[i].dt));
    if (a) {
        if (a < 0) rc = a;
        (*skipped)++;
        goto out;
    }
    for (int i = 0; i < nin; i++)
        if ((rc = fill(b, in[i].dt, in[i].pos, j.in[i], in[i].n))) goto out;
    if (cudaDeviceSynchronize() != cudaSuccess) {
        rc = st_error_set(b->err, ST_EIO, NULL, NULL, "CUDA error after filling inputs");
        goto out;
    }
    double t = 0;
    int m = measure(b, mem_launch, &j, &b->one, 1, 0, &t);
    if (m < 0) {
        rc = m;
        goto out;
    }
    if (m == M_SKIP && !b->mem_failed) {
        b->mem_failed = 1;
        st__prof_note(b->r, "memory-bound kernel %s failed to launch: %s", st__prof_kernel_name(k->kernel),
                      cudaGetErrorString((cudaError_t)j.status));
    }
    if (m == M_OK && t > 0) {
        st__prof_sample s = {.kind = ST_PROF_MEMORY,
                             .cls = st__prof_kernel_class(k->kernel),
                             .exact = k->plan,
                             .x = k->x,
                             .y = st__prof_mem_bytes(k) / t};
        if (st__prof_add(b->r, &s)) rc = st_error_set(b->err, ST_ENOMEM, NULL, NULL, "out of memory");
    }
out:
    for (int i = 0; i < 4; i++)
        cudaFree(j.in[i]);
    for (int i = 0; i < 2; i++)
        cudaFree(j.out[i]);
    return rc;
}
#endif

static int run_mem(bench *b) {
#ifdef HAVE_CUDA_KERNELS
    st__prof_mem *grid = NULL;
    int n = 0, rc = 0, skipped = 0;
    if (st__prof_mem_grid(b->o->quick, &grid, &n)) return st_error_set(b->err, ST_ENOMEM, NULL, NULL, "out of memory");
    progress(b, "%s kernels: %d sizes", "memory-bound", n + b->o->nplan_mems);
    for (int i = 0; i < n && rc == 0; i++)
        rc = mem_one(b, &grid[i], &skipped);
    for (int i = 0; i < b->o->nplan_mems && rc == 0; i++)
        rc = mem_one(b, &b->o->plan_mems[i], &skipped);
    free(grid);
    if (skipped) st__prof_note(b->r, "%d memory-bound sizes did not fit in device memory", skipped);
    return rc;
#else
    st__prof_note(b->r, "memory-bound kernels not timed: strata was built without nvcc (profiler/kernels.cu)");
    return 0;
#endif
}

/* ------------------------------------------------------------------ host <-> device copies */

typedef struct copy_job {
    void *dst;
    const void *src;
    size_t bytes;
    enum cudaMemcpyKind kind;
} copy_job;

static int copy_launch(bench *b, void *arg) {
    copy_job *j = arg;
    cudaError_t e = cudaMemcpyAsync(j->dst, j->src, j->bytes, j->kind, b->stream);
    return e == cudaSuccess ? 0 : cuda_fail(b, e, "cudaMemcpyAsync");
}

static int run_copies(bench *b) {
    size_t max = b->o->quick ? (size_t)64 << 20 : (size_t)1 << 30;
    void *host = NULL, *dev = NULL;
    int rc = 0;
    while (cudaMallocHost(&host, max) != cudaSuccess) {
        (void)cudaGetLastError();
        host = NULL;
        if ((max /= 2) < ((size_t)16 << 20)) break;
    }
    if (!host || dalloc(b, &dev, max) != 0) {
        st__prof_note(b->r, "host<->device copies not timed: no room for pinned or device buffers");
        goto out;
    }
    progress(b, "%s copies up to %d MiB", "pinned host<->device", (int)(max >> 20));
    st__prof_fill(ST_DT_FP32, 0, host, max / 4, &b->seed);
    for (int dir = 0; dir < 2; dir++) {
        for (size_t bytes = b->o->quick ? (size_t)1 << 20 : (size_t)1 << 16; bytes <= max;
             bytes *= b->o->quick ? 64 : 4) {
            copy_job j = {dir ? host : dev, dir ? dev : host, bytes,
                          dir ? cudaMemcpyDeviceToHost : cudaMemcpyHostToDevice};
            double t = 0;
            int m = measure(b, copy_launch, &j, &b->one, 1, 0, &t);
            if (m < 0) {
                rc = m;
                goto out;
            }
            if (m == M_OK && t > 0) {
                st__prof_sample s = {.kind = ST_PROF_COPY,
                                     .dir = dir ? ST_COPY_D2H : ST_COPY_H2D,
                                     .x = (double)bytes,
                                     .y = (double)bytes / t};
                if (st__prof_add(b->r, &s)) {
                    rc = st_error_set(b->err, ST_ENOMEM, NULL, NULL, "out of memory");
                    goto out;
                }
            }
        }
    }
out:
    if (host) cudaFreeHost(host);
    cudaFree(dev);
    return rc;
}

/* ------------------------------------------------------------------ NCCL */

#ifdef HAVE_NCCL
typedef struct coll_job {
    st_coll c;
    int n;
    ncclComm_t *comms;
    target *t;
    void **send, **recv;
    size_t bytes; /* message bytes as cost/comm.c takes them */
    ncclResult_t status;
} coll_job;

static int coll_launch(bench *b, void *arg) {
    coll_job *j = arg;
    size_t count = j->bytes / 2, per = count / (size_t)j->n; /* fp16 elements */
    ncclResult_t s = ncclGroupStart();
    for (int d = 0; d < j->n && s == ncclSuccess; d++) {
        ncclComm_t cm = j->comms[d];
        cudaStream_t st = j->t[d].s;
        switch (j->c) {
        case ST_COLL_ALLREDUCE: s = ncclAllReduce(j->send[d], j->recv[d], count, ncclFloat16, ncclSum, cm, st); break;
        case ST_COLL_ALLGATHER: s = ncclAllGather(j->send[d], j->recv[d], per, ncclFloat16, cm, st); break;
        case ST_COLL_REDUCESCATTER:
            s = ncclReduceScatter(j->send[d], j->recv[d], per, ncclFloat16, ncclSum, cm, st);
            break;
        case ST_COLL_ALLTOALL:
            for (int p = 0; p < j->n && s == ncclSuccess; p++) {
                s = ncclSend((char *)j->send[d] + 2 * per * (size_t)p, per, ncclFloat16, p, cm, st);
                if (s == ncclSuccess)
                    s = ncclRecv((char *)j->recv[d] + 2 * per * (size_t)p, per, ncclFloat16, p, cm, st);
            }
            break;
        default: /* send/recv: each rank to the next, as nccl-tests' sendrecv */
            s = ncclSend(j->send[d], count, ncclFloat16, (d + 1) % j->n, cm, st);
            if (s == ncclSuccess) s = ncclRecv(j->recv[d], count, ncclFloat16, (d + j->n - 1) % j->n, cm, st);
            break;
        }
    }
    ncclResult_t e = ncclGroupEnd();
    j->status = s != ncclSuccess ? s : e;
    return j->status == ncclSuccess ? 0 : 1;
}

/* one collective of j->bytes (whole fp16 elements per rank) timed; its sample at x (exact: a
 * --plan size). 0, 1 when NCCL failed (said in a note), or a negative error. */
static int coll_one(bench *b, coll_job *j, double x, int exact) {
    double sec = 0;
    int m = measure(b, coll_launch, j, j->t, j->n, 0, &sec);
    if (m < 0) return m;
    if (m == M_SKIP) {
        st__prof_note(b->r, "NCCL %s over %d GPUs failed: %s", st_coll_name(j->c), j->n, ncclGetErrorString(j->status));
        return 1;
    }
    if (m == M_OK && sec > 0) {
        st__prof_sample s = {.kind = ST_PROF_COLL,
                             .coll = j->c,
                             .ranks = j->n,
                             .exact = exact,
                             .x = x,
                             .y = (double)j->bytes / sec * st_cost_bus_factor(j->c, j->n)};
        if (st__prof_add(b->r, &s)) return st_error_set(b->err, ST_ENOMEM, NULL, NULL, "out of memory");
        b->r->plan_colls_timed += exact;
    }
    return 0;
}

static int coll_group(bench *b, int n) {
    ncclComm_t comms[MAX_DEV] = {0};
    target t[MAX_DEV];
    void *send[MAX_DEV] = {0}, *recv[MAX_DEV] = {0};
    int devs[MAX_DEV], rc = 0, made = 0;
    size_t max = b->o->quick ? (size_t)64 << 20 : (size_t)1 << 30, grid_max = max;
    /* the plan's sizes over n GPUs may be larger than the grid's: room for the largest, if any */
    for (int i = 0; i < b->o->nplan_colls; i++)
        if (b->o->plan_colls[i].ranks == n && b->o->plan_colls[i].bytes > (double)max &&
            b->o->plan_colls[i].bytes <= (double)PLAN_COLL_MAX)
            max = (size_t)b->o->plan_colls[i].bytes + 2 * (size_t)n;
    memset(t, 0, sizeof t);
    for (int d = 0; d < n; d++)
        devs[d] = d;
    for (int d = 0; d < n; d++) {
        CUDA_OK(cudaSetDevice(d), "cudaSetDevice");
        CUDA_OK(cudaStreamCreateWithFlags(&t[d].s, cudaStreamNonBlocking), "cudaStreamCreate");
        t[d].dev = d;
    }
    for (int d = 0; d < n; d++) {
        CUDA_OK(cudaSetDevice(d), "cudaSetDevice");
        int a;
        if ((a = dalloc(b, &send[d], max)) || (a = dalloc(b, &recv[d], max))) {
            if (a < 0) {
                rc = a;
                goto out;
            }
            if (max > grid_max) { /* the plan's largest does not fit: start again with the grid's */
                st__prof_note(b->r, "plan collectives over %d GPUs above %zu MiB not timed: no room for two buffers",
                              n, grid_max >> 20);
                for (int e = 0; e <= d; e++) {
                    cudaSetDevice(e);
                    cudaFree(send[e]), cudaFree(recv[e]);
                    send[e] = recv[e] = NULL;
                }
                max = grid_max;
                d = -1;
                continue;
            }
            st__prof_note(b->r, "NCCL over %d GPUs not timed: no room for two %zu MiB buffers", n, max >> 20);
            goto out;
        }
    }
    for (int d = 0; d < n; d++) {
        CUDA_OK(cudaSetDevice(d), "cudaSetDevice");
        if ((rc = fill(b, ST_DT_FP16, 0, send[d], max / 2))) goto out;
        CUDA_OK(cudaDeviceSynchronize(), "filling inputs");
    }
    ncclResult_t ns = ncclCommInitAll(comms, n, devs);
    if (ns != ncclSuccess) {
        st__prof_note(b->r, "NCCL over %d GPUs not timed: ncclCommInitAll: %s", n, ncclGetErrorString(ns));
        goto out;
    }
    made = 1;
    static const st_coll ops[] = {ST_COLL_ALLREDUCE, ST_COLL_ALLGATHER, ST_COLL_REDUCESCATTER, ST_COLL_ALLTOALL,
                                  ST_COLL_SENDRECV};
    for (size_t o = 0; o < sizeof ops / sizeof ops[0]; o++) {
        if (ops[o] == ST_COLL_SENDRECV && n != 2) continue; /* the table's send/recv is between two */
        for (size_t bytes = b->o->quick ? (size_t)1 << 20 : (size_t)1 << 16; bytes <= grid_max;
             bytes *= b->o->quick ? 64 : 4) {
            coll_job j = {ops[o], n, comms, t, send, recv, 0, ncclSuccess};
            j.bytes = bytes / (2 * (size_t)n) * 2 * (size_t)n; /* whole elements per rank */
            if ((rc = coll_one(b, &j, (double)j.bytes, 0)) < 0) goto out;
            if (rc) break;
        }
        rc = 0;
    }
    /* the plan's own collectives over n GPUs, at the exact sizes the estimator asks with (the
     * call moves whole fp16 elements per rank: at most 2n - 1 bytes less) */
    for (int i = 0; i < b->o->nplan_colls; i++) {
        const st__prof_coll *pc = &b->o->plan_colls[i];
        if (pc->ranks != n || pc->bytes > (double)max) continue;
        coll_job j = {pc->coll, n, comms, t, send, recv, 0, ncclSuccess};
        j.bytes = (size_t)pc->bytes / (2 * (size_t)n) * 2 * (size_t)n;
        if (j.bytes == 0) j.bytes = 2 * (size_t)n;
        if ((rc = coll_one(b, &j, pc->bytes, 1)) < 0) goto out;
        rc = 0;
    }
out:
    if (made)
        for (int d = 0; d < n; d++)
            ncclCommDestroy(comms[d]);
    for (int d = 0; d < n; d++) {
        cudaSetDevice(d);
        cudaFree(send[d]);
        cudaFree(recv[d]);
        if (t[d].s) cudaStreamDestroy(t[d].s);
    }
    cudaSetDevice(b->dev);
    return rc;
}
#endif

static int run_colls(bench *b) {
    if (b->ndev < 2) return 0;
#ifdef HAVE_NCCL
    int n = b->ndev > MAX_DEV ? MAX_DEV : b->ndev, rc = 0;
    int sizes[MAX_DEV], ns = 0;
    for (int k = 2; k <= n; k *= 2)
        if (!b->o->quick || k == 2) sizes[ns++] = k;
    if (sizes[ns - 1] != n) sizes[ns++] = n;
    /* and every group size of the plan that the GPUs here allow */
    for (int i = 0; i < b->o->nplan_colls; i++) {
        int k = b->o->plan_colls[i].ranks, have = 0;
        for (int s = 0; s < ns; s++) have |= sizes[s] == k;
        if (!have && k <= n) sizes[ns++] = k;
    }
    b->r->devices = n;
    for (int i = 0; i < ns && rc == 0; i++) {
        progress(b, "%s collectives over %d GPUs", "NCCL", sizes[i]);
        rc = coll_group(b, sizes[i]);
    }
    return rc;
#else
    st__prof_note(b->r, "%d GPUs visible but strata was built without NCCL: no collectives timed", b->ndev);
    return 0;
#endif
}

/* ------------------------------------------------------------------ set-up */

#ifdef HAVE_CUBLAS
/* The versioned soname first, as the loader finds it (LD_LIBRARY_PATH, strata's run path, the
 * cache), then in the CUDA folder configure used, then unversioned. */
static void *open_lib(const char *base, int major, char *why, size_t n) {
    char names[4][512];
    int k = 0;
    snprintf(names[k++], sizeof names[0], "%s.so.%d", base, major);
#ifdef ST_CUDA_LIBDIR
    snprintf(names[k++], sizeof names[0], "%s/%s.so.%d", ST_CUDA_LIBDIR, base, major);
    snprintf(names[k++], sizeof names[0], "%s/%s.so", ST_CUDA_LIBDIR, base);
#endif
    snprintf(names[k++], sizeof names[0], "%s.so", base);
    for (int i = 0; i < k; i++) {
        void *h = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
        if (h) return h;
        if (i == 0) {
            const char *e = dlerror();
            snprintf(why, n, "%.200s", e ? e : names[i]);
        }
    }
    return NULL;
}

/* dlsym into a function pointer (POSIX: dlsym's object pointer converts to a function pointer) */
#define SYM(lib, field, name)                                                                                          \
    do {                                                                                                               \
        void *s_ = dlsym((lib), (name));                                                                               \
        if (!s_) {                                                                                                     \
            missing = (name);                                                                                          \
            goto fail;                                                                                                 \
        }                                                                                                              \
        memcpy(&b->bl.field, &s_, sizeof s_);                                                                          \
    } while (0)

static int blas_open(bench *b) {
    char why[256] = "";
    const char *missing = NULL;
#ifdef CUBLAS_VER_MAJOR
    int major = CUBLAS_VER_MAJOR;
#else
    int major = CUDART_VERSION / 1000;
#endif
    /* cuBLASLt first: libcublas needs it, and finds it loaded by its soname */
    if (!(b->bl.liblt = open_lib("libcublasLt", major, why, sizeof why))) goto fail;
    if (!(b->bl.lib = open_lib("libcublas", major, why, sizeof why))) goto fail;
    SYM(b->bl.lib, create, "cublasCreate_v2");
    SYM(b->bl.lib, destroy, "cublasDestroy_v2");
    SYM(b->bl.lib, set_stream, "cublasSetStream_v2");
    SYM(b->bl.lib, set_math, "cublasSetMathMode");
    SYM(b->bl.lib, gemm, "cublasGemmEx");
    SYM(b->bl.lib, gemm_batched, "cublasGemmStridedBatchedEx");
    if (b->bl.create(&b->bl.h) != CUBLAS_STATUS_SUCCESS) {
        snprintf(why, sizeof why, "cublasCreate failed");
        goto fail;
    }
    b->bl.set_stream(b->bl.h, b->stream);
    b->bl.set_math(b->bl.h, CUBLAS_DEFAULT_MATH); /* fp32 stays fp32; tf32 only by its compute type */
    b->have_blas = 1;
#ifdef ST_FP8
    SYM(b->bl.liblt, lt_create, "cublasLtCreate");
    SYM(b->bl.liblt, lt_destroy, "cublasLtDestroy");
    SYM(b->bl.liblt, desc_create, "cublasLtMatmulDescCreate");
    SYM(b->bl.liblt, desc_destroy, "cublasLtMatmulDescDestroy");
    SYM(b->bl.liblt, desc_set, "cublasLtMatmulDescSetAttribute");
    SYM(b->bl.liblt, layout_create, "cublasLtMatrixLayoutCreate");
    SYM(b->bl.liblt, layout_destroy, "cublasLtMatrixLayoutDestroy");
    SYM(b->bl.liblt, layout_set, "cublasLtMatrixLayoutSetAttribute");
    SYM(b->bl.liblt, pref_create, "cublasLtMatmulPreferenceCreate");
    SYM(b->bl.liblt, pref_destroy, "cublasLtMatmulPreferenceDestroy");
    SYM(b->bl.liblt, pref_set, "cublasLtMatmulPreferenceSetAttribute");
    SYM(b->bl.liblt, heuristic, "cublasLtMatmulAlgoGetHeuristic");
    SYM(b->bl.liblt, matmul, "cublasLtMatmul");
    if (b->bl.lt_create(&b->bl.lt) != CUBLAS_STATUS_SUCCESS) {
        snprintf(why, sizeof why, "cublasLtCreate failed");
        goto fail;
    }
    b->have_lt = 1;
#endif
    return 0;
fail:
    if (missing) snprintf(why, sizeof why, "%s not found", missing);
    st__prof_note(b->r, "cuBLAS%s not usable: %s", b->have_blas ? "Lt" : "", why);
    return 1;
}

static void blas_close(bench *b) {
#ifdef ST_FP8
    if (b->have_lt) b->bl.lt_destroy(b->bl.lt);
#endif
    if (b->have_blas) b->bl.destroy(b->bl.h);
    /* the libraries stay loaded: their own destructors run at exit */
}
#endif

static void timer_start(bench *b) {
    if (b->o->events) {
        snprintf(b->why, sizeof b->why, "--timer events");
        return;
    }
#ifdef HAVE_CUPTI
    CUptiResult rc = cuptiActivityRegisterCallbacks(buf_requested, buf_completed);
    size_t i = 0;
    for (; rc == CUPTI_SUCCESS && i < sizeof cupti_kinds / sizeof cupti_kinds[0]; i++)
        rc = cuptiActivityEnable(cupti_kinds[i]);
    if (rc != CUPTI_SUCCESS) {
        while (i-- > 0)
            cuptiActivityDisable(cupti_kinds[i]);
        cupti_why(rc, b->why, sizeof b->why);
        return;
    }
    b->cupti = b->cupti_enabled = 1;
#else
    snprintf(b->why, sizeof b->why, "strata was built without CUPTI");
#endif
}

static void timer_stop(bench *b) {
#ifdef HAVE_CUPTI
    cupti_off(b);
#else
    (void)b;
#endif
}

/* "580.95.05" from /proc/driver/nvidia/version (Linux), else "" */
static void driver_version(char *buf, size_t n) {
    buf[0] = '\0';
    FILE *f = fopen("/proc/driver/nvidia/version", "r");
    if (!f) return;
    char line[512];
    if (fgets(line, sizeof line, f)) {
        char *save = NULL;
        for (char *tok = strtok_r(line, " \t\n", &save); tok; tok = strtok_r(NULL, " \t\n", &save)) {
            int dots = 0, ok = tok[0] >= '0' && tok[0] <= '9';
            for (const char *c = tok; ok && *c; c++) {
                dots += *c == '.';
                ok = (*c >= '0' && *c <= '9') || *c == '.';
            }
            if (ok && dots >= 1) {
                snprintf(buf, n, "%s", tok);
                break;
            }
        }
    }
    fclose(f);
}

const char *st__prof_build_info(void) {
    static char buf[320];
#ifdef HAVE_CUPTI
    const char *timer = "CUPTI activity records, CUDA events where CUPTI cannot be used";
#else
    const char *timer = "CUDA events (built without CUPTI)";
#endif
#if defined(ST_FP8)
    const char *gemm = "cuBLAS and cuBLASLt (fp8)";
#elif defined(HAVE_CUBLAS)
    const char *gemm = "cuBLAS (no cuBLASLt: no fp8)";
#else
    const char *gemm = "none (built without cuBLAS)";
#endif
#ifdef HAVE_CUDA_KERNELS
    const char *kernels = "yes";
#else
    const char *kernels = "no (built without nvcc)";
#endif
#ifdef HAVE_NCCL
    const char *coll = "NCCL";
#else
    const char *coll = "none (built without NCCL)";
#endif
    snprintf(buf, sizeof buf,
             "built with CUDA %d.%d (timing: %s; GEMMs: %s; memory-bound kernels: %s; collectives: %s)",
             CUDART_VERSION / 1000, CUDART_VERSION % 1000 / 10, timer, gemm, kernels, coll);
    return buf;
}

int st__prof_run(const st__prof_opts *o, st__prof_result *r, st_error *err) {
    bench bb, *b = &bb;
    int rc = 0;
    memset(b, 0, sizeof *b);
    b->o = o, b->r = r, b->err = err;
    b->seed = 0x5eed5eed12345678ull;
    r->quick = o->quick;

    cudaError_t ce = cudaGetDeviceCount(&b->ndev);
    if (ce == cudaErrorInsufficientDriver) { /* also what the runtime says when there is no driver at all */
        int drv = 0;
        if (cudaDriverGetVersion(&drv) != cudaSuccess || drv == 0)
            return st_error_set(err, ST_EINVAL, NULL, NULL, "no CUDA GPU: no NVIDIA driver is installed (libcuda.so not found)");
        return st_error_set(err, ST_EINVAL, NULL, NULL,
                            "no CUDA GPU: the NVIDIA driver supports CUDA %d.%d, older than this strata's CUDA runtime %d.%d",
                            drv / 1000, drv % 1000 / 10, CUDART_VERSION / 1000, CUDART_VERSION % 1000 / 10);
    }
    if (ce != cudaSuccess) return st_error_set(err, ST_EINVAL, NULL, NULL, "no CUDA GPU: %s", cudaGetErrorString(ce));
    if (b->ndev < 1) return st_error_set(err, ST_EINVAL, NULL, NULL, "no CUDA GPU: no device is visible");
    if (o->device >= b->ndev)
        return st_error_set(err, ST_EUSAGE, NULL, NULL, "option '--device': %d, but %d GPU%s visible (0..%d)",
                            o->device, b->ndev, b->ndev == 1 ? " is" : "s are", b->ndev - 1);
    b->dev = o->device;
    struct cudaDeviceProp prop;
    ce = cudaGetDeviceProperties(&prop, b->dev);
    if (ce != cudaSuccess) return st_error_set(err, ST_EINVAL, NULL, NULL, "no CUDA GPU: %s", cudaGetErrorString(ce));
    snprintf(r->device, sizeof r->device, "%s", prop.name);
    b->cc = prop.major * 10 + prop.minor;
    const char *gpu = o->gpu ? o->gpu : st__prof_gpu_preset(prop.name);
    if (!gpu) {
        char list[256] = "";
        size_t np, off = 0;
        const st_gpu *g = st_gpu_presets(&np);
        for (size_t i = 0; i < np; i++) {
            int w = snprintf(list + off, off < sizeof list ? sizeof list - off : 0, "%s%s", i ? ", " : "", g[i].name);
            if (w > 0) off += (size_t)w;
        }
        return st_error_set(err, ST_EINVAL, NULL, NULL,
                            "strata has no preset for GPU '%s': name it with --gpu (a preset: %s; or the gpu.name of "
                            "your cluster JSON)",
                            prop.name, list);
    }
    snprintf(r->gpu, sizeof r->gpu, "%s", gpu);
    int v = 0;
    if (cudaRuntimeGetVersion(&v) == cudaSuccess) snprintf(r->cuda, sizeof r->cuda, "%d.%d", v / 1000, v % 1000 / 10);
    driver_version(r->driver, sizeof r->driver);
    if (!r->driver[0] && cudaDriverGetVersion(&v) == cudaSuccess && v > 0)
        snprintf(r->driver, sizeof r->driver, "CUDA %d.%d", v / 1000, v % 1000 / 10);

    b->warmup = o->quick ? 1 : 2;
    b->min_reps = o->quick ? 3 : 5;
    b->max_reps = o->quick ? 5 : 20;
    b->budget_s = o->quick ? 0.01 : 0.1;
    b->max_kernel_s = o->quick ? 0.05 : 0.1; /* fp32 stops near 5e12 FLOPs, bf16 near 8e13 */

    timer_start(b); /* before the context exists, so that CUPTI sees all of it */
    CUDA_OK(cudaSetDevice(b->dev), "cudaSetDevice");
    CUDA_OK(cudaStreamCreateWithFlags(&b->stream, cudaStreamNonBlocking), "cudaStreamCreate");
    b->one = (target){b->dev, b->stream};
    float one = 1.0f;
    CUDA_OK(cudaMalloc(&b->one_f, sizeof one), "cudaMalloc");
    CUDA_OK(cudaMemcpy(b->one_f, &one, sizeof one, cudaMemcpyHostToDevice), "cudaMemcpy");
#ifdef HAVE_CUBLAS
    blas_open(b);
    if (b->have_lt && dalloc(b, &b->ws, LT_WORKSPACE) != 0) {
        b->have_lt = 0;
        st__prof_note(r, "no room for the cuBLASLt workspace: fp8 not timed");
    }
#else
    st__prof_note(r, "GEMMs not timed: strata was built without cuBLAS");
#endif

    if ((rc = run_copies(b)) < 0) goto out;
    if ((rc = run_mem(b)) < 0) goto out;
    if ((rc = run_gemms(b)) < 0) goto out;
    if ((rc = run_colls(b)) < 0) goto out;
    rc = 0;

    const char *how =
        o->quick ? "median of 3-5 repetitions after 1 warm-up" : "median of 5-20 repetitions after 2 warm-ups";
    char order[96] = "";
    if (b->n_by_order)
        snprintf(order, sizeof order, "; %d points grouped by order, without external correlation records",
                 b->n_by_order);
    if (b->n_events == 0)
        snprintf(r->timer, sizeof r->timer, "CUPTI activity records (kernel and memcpy GPU time%s), %s", order, how);
    else if (b->n_cupti == 0)
        snprintf(r->timer, sizeof r->timer, "CUDA events (%.300s), %s", b->why[0] ? b->why : "CUPTI not used", how);
    else
        snprintf(r->timer, sizeof r->timer, "CUPTI activity records; CUDA events for %d of %d points (%.300s), %s",
                 b->n_events, b->n_events + b->n_cupti, b->why, how);
out:
    timer_stop(b);
#ifdef HAVE_CUBLAS
    blas_close(b);
#endif
    cudaFree(b->ws);
    cudaFree(b->one_f);
    for (int d = 0; d < MAX_DEV; d++)
        if (b->ev_made[d]) {
            cudaSetDevice(d);
            for (int i = 0; i < 2 * MAX_REPS; i++)
                cudaEventDestroy(b->ev[d][i]);
        }
    cudaSetDevice(b->dev);
    if (b->stream) cudaStreamDestroy(b->stream);
    for (int d = 0; d < ST_DT_COUNT; d++)
        free(b->stage[d][0]), free(b->stage[d][1]);
    return rc;
}
