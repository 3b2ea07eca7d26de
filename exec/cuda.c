/* cuda.c: the cuda backend of strata run (exec_private.h's st__xbackend; issue 18): every kernel of a
 * rank's training on its GPU: the linear layers' GEMMs through cuBLAS in fp32 (cublasSgemm under
 * CUBLAS_DEFAULT_MATH: no TF32, so the numbers compare with the CPU's within fp32 rounding), each
 * timed by CUDA events into st__xkernels_gemm_s (the GEMM share that strata run --compare shows), and
 * the rest (norms, activations, rotary embedding, attention, Adam, biases, residual additions, the
 * vocab-parallel embedding, learned positions and cross-entropy) by the backend's own kernels
 * (exec/kernels_cuda.cu); the tensor-parallel collectives
 * (all-reduce, all-gather, reduce-scatter) and the MoE all-to-all (grouped ncclSend/ncclRecv) over
 * NCCL communicators of the rank's tp and ep groups; context parallelism's exchanges (the ring's
 * step as one NCCL group of a send and a receive, the all-gather, reduce-scatter and all-to-all) over
 * its cp group's; the data-parallel ones (the gradients' all-reduce, ZeRO-1's reduce-scatter and
 * all-gather, the experts' over their expert-data-parallel group, the tied embedding's all-reduce
 * over its pipeline group) over communicators of the program's groups; the pipeline's sends and
 * receives as ncclSend/ncclRecv on channels, one per way of each pair of ranks that transfer, each
 * a communicator of two with a stream of its own ("the pipeline's sends and receives" below says
 * why not one group per batch as Megatron-LM does). Communicators are made as llm.c makes its:
 * ncclGetUniqueId on the group's first rank, the id sent over MPI, ncclCommInitRank. Each rank takes
 * the GPU of its node-local rank modulo the visible ones. The device memory the backend allocates
 * is counted (its high-water mark) and the GPU's used memory sampled by cudaMemGetInfo after every
 * allocation and transfer (st__xcuda_memory: strata run --compare's memory table).
 *
 * The model's tensors live on the device: exec/model.c's flat buffers (weights, gradients, the
 * backward's scratch), each micro-batch's activations, the runtime's Adam moments and its pipeline
 * buffers come from the backend's mem_alloc (cudaMalloc, cached: "the model's tensors" below), the
 * weights seeded on the host and uploaded once, and the host reaches them only through mem_copy and
 * mem_zero (cudaMemcpyAsync, cudaMemcpy2DAsync, cudaMemsetAsync on the stream). The kernels take them
 * as they are; a kernel whose outputs all lie there is queued and not waited for. What still crosses
 * to the host, and why: the loss's row sums (2N floats, for the printed loss); the MoE routing's
 * counts (the routing, capacity, dispatch, sort by expert, combine and their backward are kernels on
 * the model's tensors, exec/moe_kernels.h, and the ep all-to-all NCCL's on them, nccl_alltoallv_dev:
 * the host gets each expert's kept count and the received rows' offsets per expert, E + E_l + 1 ints a
 * block, which size the GEMMs and the all-to-all, and the ep group's row counts, exchanged through it);
 * the ILP's operator-level MoE variants (moe_rows, router_h: exec/model.c's host path, on host copies
 * as before); context parallelism's attention (q, k, v copied down, exchanged and computed on the
 * host as before, the output and gradients uploaded); attn_rows 1's all-to-all (MPI's, on host
 * copies); --check's gradients; the tokens (staged per kernel: B x (T + 1) ints). A kernel with a
 * host operand stages it through the device buffer below and waits for its outputs.
 *
 * Streams ("the program's streams" below): each program stream (program.h's ST_STREAM_*) has a CUDA
 * stream, and an instruction's kernels, copies and NCCL calls go to its stream's (the tp, ep and cp
 * collectives and the pipeline's receives on the compute stream, the sends' copies on the p2p
 * stream, the dp, ZeRO and embedding collectives on the dp stream); each dep[] on an instruction of
 * another stream is that one's end event, waited for by cudaStreamWaitEvent; the pipeline's channels
 * keep their streams, ordered by events against the instruction's. Memory used by several streams
 * is ordered by events too: a freed block of the model's tensors records an event on every stream
 * that used it and its next mem_alloc waits for them (the runtime frees a micro-batch's buffers while
 * a send's copy on the p2p stream may still read them); the staging buffer alike, at each use on
 * another stream. The host waits only for a copy to the host (the loss, the MoE counts, cp's
 * attention, --check), a pipeline receive (the wait that can meet a dead peer), a grown staging
 * buffer's cudaFree, and the step's end (step_end: every stream). Timing is by events, read once at
 * the step's end against the step's start event: an instruction's span runs from where its stream
 * reached it (after its deps' events and the stream's earlier work) to its end; a GEMM's (the GEMM
 * clock) and a tp, ep or cp collective's (the runtime's clocks of those) from where the stream
 * reached the call to its end, so a collective's time includes its wait for the other members, as
 * the CPU runtime's MPI clocks do, but starts where this rank's stream arrived: when the last member
 * arrived is not known to events. A step's iteration time stays the host's clock (the barrier to
 * step_end). NCCL calls of different communicators on different streams may run at once here (the
 * dp stream's beside the compute stream's tp ones, as Megatron-LM's overlapped gradient reduction
 * does); every rank queues them in its program's order. STRATA_EXEC_CUDA_SKIP_WAITS (a test hook,
 * as STRATA_EXEC_FAULT) drops the dep[] waits, which the fake CUDA runtime's ordering check
 * (profiler/mock/cudart.c mock_access) must catch. A rank whose staging fails skips its collectives and its
 * error stops the run after the instruction; its group's other members then wait in NCCL, as long as
 * the run's --timeout: every wait for a stream (stream_wait) polls cudaStreamQuery as the CPU runtime
 * polls MPI, then names the rank, the instruction and what it waited in, and stops the job. (A kernel
 * launch or an NCCL call that blocks on the host before its stream is reached is not bounded.)
 *
 * Layout: exec/'s row-major [r x c] matrix is cuBLAS's column-major c x r with leading dimension c,
 * so the row-major y[N x OC] = x[N x C] W^T (W [OC x C]) is the column-major y' (OC x N) =
 * op_T(W') x' with W' C x OC and x' C x N; the backward's dx[N x C] += dy W is dx' (C x N) += W' dy'
 * (dy' OC x N) and dW[OC x C] += dy^T x is dW' (C x OC) += x' op_T(dy').
 *
 * cuBLAS is dlopen'ed when the backend starts, as strata profile does (profiler/cuda.c): linking it
 * would cost every strata command the loading of libcublasLt. Failures inside a kernel (which
 * returns nothing) are kept and reported by the table's error(): the runtime stops every rank on it. */
#include "config.h"
#include "exec/exec.h"
#include "exec/exec_private.h"
#include "exec/fault.h"
#include "exec/kernels_cuda.h"
#include "src/lower/program.h"

#include <cublas_v2.h>
#include <cuda_runtime_api.h>
#include <dlfcn.h>
#include <mpi.h>
#include <nccl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* what touched a piece of device memory (mem_alloc's block, the staging buffer): a bit per stream
 * index (stream_index: the program's streams, then the channels'), and an event per stream, made at
 * its first use, that a later user of the memory on another stream waits for */
#define MAX_STREAMS 64
typedef struct marks {
    uint64_t touched, pending; /* streams that used it; those whose events a reuse waits for */
    cudaEvent_t ev[MAX_STREAMS];
} marks;

/* the timing of a step (step_begin .. step_end): an event pair per instruction, per GEMM, per
 * tp, ep or cp collective and per block rebuild inside a backward (redo_mark; a region), read once at the
 * step's end */
enum { REG_TP, REG_EP, REG_CP, REG_REDO, REG_GEMM };
typedef struct region {
    int ins, kind; /* the instruction it ran in (-1: none), REG_* */
    int in_redo;   /* a collective inside a rebuild (its time the collective's, not the rebuild's) */
    cudaEvent_t a, b;
} region;

static struct {
    int open, rank, dev; /* the world rank, its GPU */
    cudaStream_t st[ST_STREAMS]; /* a CUDA stream per stream of the program (program.h's ST_STREAM_*) */
    cudaStream_t cur;            /* the running instruction's (the compute stream's between instructions) */
    int skip_waits;              /* STRATA_EXEC_CUDA_SKIP_WAITS: the test hook that drops dep[]'s waits */
    cudaEvent_t *pool; /* events, reused every step (owned) */
    int npool, used;
    cudaEvent_t t0;    /* the step's start */
    cudaEvent_t *ins_a, *ins_b; /* per instruction: its start and end (NULL: not reached this step) */
    int *ins_st, nins, capins;  /* its program stream */
    int cur_ins;                /* the running instruction, -1 between */
    region *reg;
    int nreg, capreg;
    cudaEvent_t redo_a;         /* redo_mark: the open rebuild's start (NULL: none open) */
    marks bufm; /* the staging buffer's */
    void *lib, *liblt;
    cublasHandle_t h;
    __typeof__(cublasCreate_v2) *create;
    __typeof__(cublasDestroy_v2) *destroy;
    __typeof__(cublasSetStream_v2) *set_stream;
    __typeof__(cublasSetMathMode) *set_math;
    __typeof__(cublasSgemm_v2) *sgemm;
    ncclComm_t tpc, epc; /* this rank's tp and ep groups' (NULL: none) */
    ncclComm_t *gcs;     /* per group of the lowering: its communicator where this rank is a dp or pp member */
    int *gsize;          /* per group: its members where this rank is one, else 0 */
    int ngcs;
    ncclComm_t edpc; /* the expert-data-parallel group's (NULL: none) */
    int edp_n;       /* its members (1: this rank alone) */
    int tr;              /* this rank's place in its tp group */
    ncclComm_t cpc;      /* the cp group's (one of gcs; NULL: none) */
    int cr, cpn;         /* this rank's place in it, its members */
    struct chan *ch;     /* the pipeline's channels (owned) */
    int nch;
    float **retired;     /* staging buffers outgrown while sends were in flight (freed at the end) */
    int nretired;
    struct {
        float *p;
        size_t n; /* floats */
        int used; /* 0: freed by mem_free, kept for the next mem_alloc that fits */
        marks *m; /* the streams that used it (owned) */
    } *mem;       /* the model's tensors: mem_alloc's blocks (owned) */
    int nmem;
    float *buf;     /* the staging buffer on the device */
    size_t cap;     /* its floats */
    double dev_bytes, dev_peak, used_peak; /* st__xcuda_memory's */
    char fail[400]; /* the first failure of a kernel, "" while none */
    const st__xwatch *w; /* the runtime's watch (st__xcuda_gcomm; NULL: waits unbounded, as in the tests) */
} g;

/* the first failure only: later calls fail because of it */
static int failed(const char *what, const char *why) {
    if (!g.fail[0]) snprintf(g.fail, sizeof g.fail, "rank %d (GPU %d): %s failed: %s", g.rank, g.dev, what, why);
    return -1;
}

static int kernel_error(st_error *err) {
    return g.fail[0] ? st_error_set(err, ST_EIO, NULL, NULL, "the cuda backend: %s", g.fail) : 0;
}

static int cuda_ok(cudaError_t e, const char *what) {
    return e == cudaSuccess ? 0 : failed(what, cudaGetErrorString(e));
}

static int nccl_ok(ncclResult_t r, const char *what) {
    return r == ncclSuccess ? 0 : failed(what, ncclGetErrorString(r));
}

static int blas_ok(cublasStatus_t s, const char *what) {
    char why[32];
    snprintf(why, sizeof why, "cuBLAS status %d", (int)s);
    return s == CUBLAS_STATUS_SUCCESS ? 0 : failed(what, why);
}

/* the versioned soname as the loader finds it, then in the CUDA folder configure used */
static void *open_lib(const char *base, int major) {
    char name[512];
    snprintf(name, sizeof name, "%s.so.%d", base, major);
    void *h = dlopen(name, RTLD_NOW | RTLD_LOCAL);
#ifdef ST_CUDA_LIBDIR
    if (!h) snprintf(name, sizeof name, "%s/%s.so.%d", ST_CUDA_LIBDIR, base, major);
    if (!h) h = dlopen(name, RTLD_NOW | RTLD_LOCAL);
#endif
    return h;
}

static int sym(void *lib, const char *name, void *fn, st_error *err) {
    void *s = dlsym(lib, name);
    if (!s) return st_error_set(err, ST_EINVAL, NULL, NULL, "the cuda backend: %s not found in cuBLAS", name);
    memcpy(fn, &s, sizeof s); /* POSIX: dlsym's object pointer converts to a function pointer */
    return 0;
}

/* the GPU's used memory (cudaMemGetInfo: total less free), its high-water mark */
static void sample(void) {
    size_t fr = 0, total = 0;
    if (cudaMemGetInfo(&fr, &total) == cudaSuccess && total >= fr && (double)(total - fr) > g.used_peak)
        g.used_peak = (double)(total - fr);
}

void st__xcuda_memory(double *peak_bytes, double *used_peak_bytes) {
    *peak_bytes = g.dev_peak, *used_peak_bytes = g.used_peak;
}

/* n floats of device memory, counted in the backend's high-water mark */
static int dev_alloc(float **p, size_t n, const char *what) {
    if (cuda_ok(cudaMalloc((void **)p, n * sizeof(float)), what)) return -1;
    g.dev_bytes += (double)(n * sizeof(float));
    if (g.dev_bytes > g.dev_peak) g.dev_peak = g.dev_bytes;
    sample();
    return 0;
}

static int sends_in_flight(void);

/* ---------------------------------------------------------------- streams and events */

/* the index of stream s in the marks: the program's streams 0 .. ST_STREAMS - 1, then the channels'
 * (-1: none of these) */
static int stream_index(cudaStream_t s);
static cudaStream_t stream_at(int k);

/* an event of the pool (made when the pool is short), for this step; NULL on a failure */
static cudaEvent_t event_next(void) {
    if (g.used == g.npool) {
        cudaEvent_t *p = realloc(g.pool, (size_t)(g.npool + 64) * sizeof *p);
        if (!p) return failed("the events", "out of memory"), NULL;
        g.pool = p;
        for (int i = 0; i < 64; i++, g.npool++)
            if (cuda_ok(cudaEventCreate(&g.pool[g.npool]), "cudaEventCreate")) return NULL;
    }
    return g.pool[g.used++];
}

/* an event recorded on s now (NULL on a failure) */
static cudaEvent_t recorded(cudaStream_t s) {
    cudaEvent_t e = g.fail[0] ? NULL : event_next();
    return e && !cuda_ok(cudaEventRecord(e, s), "cudaEventRecord") ? e : NULL;
}

static void use_stream(cudaStream_t s) {
    if (s == g.cur) return;
    g.cur = s;
    if (g.h) g.set_stream(g.h, s);
}

/* memory m used by the running instruction's stream */
static void touch(marks *m, cudaStream_t s) {
    int k = stream_index(s);
    if (m && k >= 0) m->touched |= (uint64_t)1 << k;
}

/* m released (mem_free): every stream that used it records its event, which the reuse waits for */
static void release(marks *m) {
    for (int k = 0; m && k < MAX_STREAMS; k++) {
        if (!(m->touched >> k & 1)) continue;
        if (!m->ev[k] && cuda_ok(cudaEventCreateWithFlags(&m->ev[k], cudaEventDisableTiming), "cudaEventCreate"))
            return;
        if (cuda_ok(cudaEventRecord(m->ev[k], stream_at(k)), "cudaEventRecord")) return;
        m->pending |= (uint64_t)1 << k;
    }
    if (m) m->touched = 0;
}

/* m reused on the running stream: after the work of every stream that used it before */
static void reuse(marks *m) {
    for (int k = 0; m && k < MAX_STREAMS; k++)
        if (m->pending >> k & 1) cuda_ok(cudaStreamWaitEvent(g.cur, m->ev[k], 0), "cudaStreamWaitEvent");
    if (m) m->pending = 0;
    touch(m, g.cur);
}

static void marks_free(marks *m) {
    for (int k = 0; m && k < MAX_STREAMS; k++)
        if (m->ev[k]) cudaEventDestroy(m->ev[k]);
}

/* room for n floats on the device: the staging buffer, grown (its contents are not kept). The old
 * one is freed, unless a pipeline send is in flight: cudaFree may wait for the whole device, and
 * so for a send whose receiver waits for this rank; then it is kept until the end. */
static float *staging(size_t n) {
    if (n <= g.cap) { /* after what other streams queued on it (its events), then this one's */
        if (g.bufm.touched & ~((uint64_t)1 << stream_index(g.cur))) release(&g.bufm), reuse(&g.bufm);
        touch(&g.bufm, g.cur);
        return g.buf;
    }
    if (g.buf && sends_in_flight()) {
        float **r = realloc(g.retired, (size_t)(g.nretired + 1) * sizeof *r);
        if (!r) return failed("the staging buffer", "out of memory"), NULL;
        g.retired = r, g.retired[g.nretired++] = g.buf;
    } else if (g.buf) {
        if (cuda_ok(cudaFree(g.buf), "cudaFree")) return NULL;
        g.dev_bytes -= (double)(g.cap * sizeof(float));
    }
    g.buf = NULL, g.cap = 0;
    if (dev_alloc(&g.buf, n, "cudaMalloc of the staging buffer")) return NULL;
    g.cap = n;
    /* a new buffer (a retired one may still be read by what other streams queued: it is never reused) */
    g.bufm.touched = g.bufm.pending = 0;
    touch(&g.bufm, g.cur);
    return g.buf;
}

/* 1 when [p, p + n) lies in one of mem_alloc's blocks (the model's tensors, on the device); every
 * caller is about to queue work on it on the running stream (g.cur), which the block remembers */
static int mine(const void *p, int64_t n) {
    for (int i = 0; i < g.nmem; i++)
        if (g.mem[i].used && (const float *)p >= g.mem[i].p && (const float *)p + n <= g.mem[i].p + g.mem[i].n) {
            touch(g.mem[i].m, g.cur);
            return 1;
        }
    return 0;
}

/* d[n] (device) = h[n], which is the host's or one of the model's tensors */
static int to_dev(float *d, const float *h, int64_t n) {
    return cuda_ok(cudaMemcpyAsync(d, h, (size_t)n * sizeof *d, mine(h, n) ? cudaMemcpyDeviceToDevice
                                                                             : cudaMemcpyHostToDevice, g.cur),
                   "cudaMemcpyAsync");
}

static int to_host(float *h, const float *d, int64_t n) {
    return cuda_ok(cudaMemcpyAsync(h, d, (size_t)n * sizeof *d, mine(h, n) ? cudaMemcpyDeviceToDevice
                                                                             : cudaMemcpyDeviceToHost, g.cur),
                   "cudaMemcpyAsync");
}

/* a kernel launcher's answer (kernels_cuda.h: a cudaError_t) */
static int launched(int e, const char *what) {
    char name[64];
    snprintf(name, sizeof name, "the %s kernel", what);
    return cuda_ok((cudaError_t)e, name);
}

/* cudaStreamQuery as st__xwait_poll's ready(): 1 done, 0 not yet, -1 an error (kept in g.fail) */
static int stream_ready(void *s) {
    cudaError_t e = cudaStreamQuery((cudaStream_t)s);
    return e == cudaSuccess ? 1 : e == cudaErrorNotReady ? 0 : -(cuda_ok(e, "cudaStreamQuery") != 0);
}

/* Waits for stream s as the CPU runtime waits for MPI (exec.h's opts.timeout_s): an NCCL transfer or
 * collective whose peer died or failed before posting its half never completes, and a
 * cudaStreamSynchronize would wait for it forever; polled, the rank names what it waited in and for
 * whom (peer, a world rank, or -1: every other rank) and stops the job. Nonzero on an error. */
static int stream_wait(cudaStream_t s, const char *what, int peer) {
    if (!g.w) return cuda_ok(cudaStreamSynchronize(s), "cudaStreamSynchronize");
    return st__xwait_poll(g.w, stream_ready, s, what, g.w->world, peer) != 0;
}

/* waits for the running stream (a copy to the host); what it ran may have made NCCL or the runtime
 * allocate: sampled after */
static int sync(void) {
    int rc = stream_wait(g.cur, "GPU stream (its kernels and NCCL collectives)", -1);
    sample();
    return rc;
}

/* a timed region from here (its start event on the running stream; NULL on a failure) */
static cudaEvent_t region_begin(void) { return recorded(g.cur); }

/* ... to here, of kind REG_*, in the running instruction */
static void region_end(int kind, cudaEvent_t a) {
    cudaEvent_t b = a ? recorded(g.cur) : NULL;
    if (!b) return;
    if (g.nreg == g.capreg) {
        region *r = realloc(g.reg, (size_t)(g.capreg + 256) * sizeof *r);
        if (!r) {
            failed("the timing events", "out of memory");
            return;
        }
        g.reg = r, g.capreg += 256;
    }
    g.reg[g.nreg++] = (region){g.cur_ins, kind, kind <= REG_CP && g.redo_a, a, b};
}

/* c' (m x n, ld m) = beta c' + op(a') op(b') in column-major terms, timed by events (the GEMM clock,
 * read at the step's end) */
static int gemm(cublasOperation_t ta, cublasOperation_t tb, int64_t m, int64_t n, int64_t k, const float *a,
                int64_t lda, const float *b, int64_t ldb, float beta, float *c) {
    const float one = 1.0f;
    cudaEvent_t e = region_begin();
    if (!e || blas_ok(g.sgemm(g.h, ta, tb, (int)m, (int)n, (int)k, &one, a, (int)lda, b, (int)ldb, &beta, c, (int)m),
                      "cublasSgemm"))
        return -1;
    region_end(REG_GEMM, e);
    return 0;
}

/* ---------------------------------------------------------------- the model's tensors
 *
 * exec/model.c's flat buffers, its activations and the runtime's Adam moments live on the device
 * (st__xbackend's mem_alloc), recorded so that the kernels take them as they are (stage) and the
 * copies know their direction; the host reaches them only through mem_copy and mem_zero. A freed
 * block is kept for the next allocation it fits (the smallest such), as PyTorch's caching allocator
 * keeps them, and given back at the end: cudaFree waits for the whole device, so a micro-batch's
 * activations freed while a pipeline send waits for its receiver would wait for it too (and every
 * micro-batch would pay a cudaMalloc). */

static float *mem_alloc(int64_t n) {
    size_t want = (size_t)(n > 0 ? n : 1);
    int best = -1;
    for (int i = 0; i < g.nmem; i++)
        if (!g.mem[i].used && g.mem[i].n >= want && (best < 0 || g.mem[i].n < g.mem[best].n)) best = i;
    if (best < 0) {
        float *p = NULL;
        __typeof__(g.mem) m = realloc(g.mem, (size_t)(g.nmem + 1) * sizeof *m);
        if (!m) return failed("the model's tensors", "out of memory"), NULL;
        g.mem = m;
        marks *mk = calloc(1, sizeof *mk);
        if (!mk) return failed("the model's tensors", "out of memory"), NULL;
        if (dev_alloc(&p, want, "cudaMalloc of the model's tensors")) return free(mk), NULL;
        best = g.nmem++;
        g.mem[best].p = p, g.mem[best].n = want, g.mem[best].m = mk;
    }
    g.mem[best].used = 1;
    reuse(g.mem[best].m); /* after the work of every stream that used it before its mem_free */
    /* zeroed on the stream: after every kernel that used the block before */
    if (cuda_ok(cudaMemsetAsync(g.mem[best].p, 0, want * sizeof(float), g.cur), "cudaMemsetAsync")) {
        g.mem[best].used = 0;
        return NULL;
    }
    return g.mem[best].p;
}

/* the block kept for a later mem_alloc, which waits for the events each stream that used it records
 * here (another stream may still read or write it: a pipeline send's copy, a receive) */
static void mem_free(float *p) {
    for (int i = 0; p && i < g.nmem; i++)
        if (g.mem[i].p == p && g.mem[i].used) {
            g.mem[i].used = 0;
            release(g.mem[i].m);
        }
}

static void mem_copy(float *dst, const float *src, int64_t n) {
    int dd = mine(dst, n), sd = mine(src, n);
    if (g.fail[0] || n <= 0) return;
    if (!dd && !sd) { /* both the host's (a tensor not yet on the device): nothing of the GPU's to wait for */
        memcpy(dst, src, (size_t)n * sizeof *dst);
        return;
    }
    enum cudaMemcpyKind k = dd && sd ? cudaMemcpyDeviceToDevice : dd ? cudaMemcpyHostToDevice : cudaMemcpyDeviceToHost;
    if (!cuda_ok(cudaMemcpyAsync(dst, src, (size_t)n * sizeof *dst, k, g.cur), "cudaMemcpyAsync") && !dd) sync();
}

static void mem_copy2d(float *dst, int64_t dld, const float *src, int64_t sld, int64_t cols, int64_t rows) {
    int64_t dn = (rows - 1) * dld + cols, sn = (rows - 1) * sld + cols; /* the floats each side spans */
    if (g.fail[0] || rows <= 0 || cols <= 0) return;
    int dd = mine(dst, dn), sd = mine(src, sn);
    if (!dd && !sd) {
        for (int64_t r = 0; r < rows; r++) memcpy(dst + r * dld, src + r * sld, (size_t)cols * sizeof *dst);
        return;
    }
    enum cudaMemcpyKind k = dd && sd ? cudaMemcpyDeviceToDevice : dd ? cudaMemcpyHostToDevice : cudaMemcpyDeviceToHost;
    size_t f = sizeof *dst;
    if (!cuda_ok(cudaMemcpy2DAsync(dst, (size_t)dld * f, src, (size_t)sld * f, (size_t)cols * f, (size_t)rows, k,
                                   g.cur),
                 "cudaMemcpy2DAsync") &&
        !dd)
        sync();
}

/* every stream of the program waited for (st__xbackend's sync) */
static int wait_streams(const char *what) {
    int rc = 0;
    for (int k = 0; k < ST_STREAMS; k++)
        if (g.st[k] && stream_wait(g.st[k], what, -1)) rc = -1;
    sample();
    return rc;
}

static void wait_queued(void) {
    if (!g.fail[0]) wait_streams("GPU streams (their kernels and NCCL collectives)");
}

static void mem_zero(float *p, int64_t n) {
    if (g.fail[0] || n <= 0) return;
    if (!mine(p, n)) memset(p, 0, (size_t)n * sizeof *p); /* the host's (a tensor not yet on the device) */
    else cuda_ok(cudaMemsetAsync(p, 0, (size_t)n * sizeof *p, g.cur), "cudaMemsetAsync");
}

/* ---------------------------------------------------------------- the other kernels (kernels_cuda.cu)
 *
 * Each stages its operands through the device (arg: a host array, copied there first when `in`,
 * back after the kernel when `out`; NULL: absent, the kernel gets NULL), runs its kernels and waits
 * for the results, as the GEMMs do. */

typedef struct arg {
    const void *host; /* NULL: the kernel's argument is NULL */
    int64_t n;        /* floats, or int32 tokens (the same size) */
    int in, out;
    float *dev; /* set by stage(): the staged copy, or host itself where it is one of the model's tensors */
} arg;

_Static_assert(sizeof(int32_t) == sizeof(float), "tokens stage as floats");
#define IN(p, n) {p, n, 1, 0, NULL}
#define OUT(p, n) {p, n, 0, 1, NULL}
#define INOUT(p, n) {p, n, 1, 1, NULL}

/* the args' device copies in the staging buffer, their inputs copied (plus `extra` floats of scratch
 * at *scratch when non-NULL). 0 or -1 (failed, or an earlier failure). */
static int stage(arg *a, int n, int64_t extra, float **scratch) {
    size_t total = (size_t)extra;
    for (int i = 0; i < n; i++) total += a[i].host && !mine(a[i].host, a[i].n) ? (size_t)a[i].n : 0;
    float *d = g.fail[0] ? NULL : staging(total + 1);
    if (!d) return -1;
    for (int i = 0; i < n; i++) {
        if (a[i].host && mine(a[i].host, a[i].n)) { /* a tensor of the model's: on the device already */
            a[i].dev = (float *)(uintptr_t)a[i].host, a[i].in = a[i].out = 0;
            continue;
        }
        a[i].dev = a[i].host ? d : NULL;
        if (a[i].host && a[i].in && to_dev(d, a[i].host, a[i].n)) return -1;
        d += a[i].host ? a[i].n : 0;
    }
    if (scratch) *scratch = d;
    return 0;
}

/* the staged outputs back on the host, the stream waited for; none staged (every output a tensor of
 * the model's): nothing to wait for, the kernels stay queued */
static int unstage(const arg *a, int n) {
    int back = 0;
    for (int i = 0; i < n; i++)
        if (a[i].host && a[i].out && (back = 1) && to_host((float *)(uintptr_t)a[i].host, a[i].dev, a[i].n)) return -1;
    return back ? sync() : 0;
}

static void norm_fwd(float *out, float *mean, float *rstd, const float *inp, const float *w, const float *b, int64_t N,
                     int64_t C) {
    arg a[] = {OUT(out, N * C), OUT(mean, N), OUT(rstd, N), IN(inp, N * C), IN(w, C), IN(b, C)};
    if (!stage(a, 6, 0, NULL) &&
        !launched(st__xkc_norm_fwd(g.cur, a[0].dev, a[1].dev, a[2].dev, a[3].dev, a[4].dev, a[5].dev, N, C),
                  "norm forward"))
        unstage(a, 6);
}

static void norm_bwd(float *dinp, float *dw, float *db, const float *dout, const float *inp, const float *w,
                     const float *mean, const float *rstd, int64_t N, int64_t C) {
    arg a[] = {INOUT(dinp, N * C), INOUT(dw, C),    INOUT(db, C),         IN(dout, N * C),
               IN(inp, N * C),  IN(w, C),     IN(db ? mean : NULL, N), IN(rstd, N)};
    if (!stage(a, 8, 0, NULL) && !launched(st__xkc_norm_bwd(g.cur, a[0].dev, a[1].dev, a[2].dev, a[3].dev, a[4].dev,
                                                            a[5].dev, a[6].dev, a[7].dev, N, C),
                                           "norm backward"))
        unstage(a, 8);
}

static void act_fwd(float *out, const float *inp, int64_t n, st__xact act) {
    arg a[] = {OUT(out, n), IN(inp, n)};
    if (!stage(a, 2, 0, NULL) &&
        !launched(st__xkc_act_fwd(g.cur, a[0].dev, a[1].dev, n, act == ST__XACT_RELU), "activation"))
        unstage(a, 2);
}

static void act_bwd(float *dinp, const float *inp, const float *dout, int64_t n, st__xact act) {
    arg a[] = {OUT(dinp, n), IN(inp, n), IN(dout, n)};
    if (!stage(a, 3, 0, NULL) &&
        !launched(st__xkc_act_bwd(g.cur, a[0].dev, a[1].dev, a[2].dev, n, act == ST__XACT_RELU),
                  "activation backward"))
        unstage(a, 3);
}

static void swiglu_fwd(float *out, const float *x1, const float *x3, int64_t n) {
    arg a[] = {OUT(out, n), IN(x1, n), IN(x3, n)};
    if (!stage(a, 3, 0, NULL) && !launched(st__xkc_swiglu_fwd(g.cur, a[0].dev, a[1].dev, a[2].dev, n), "SwiGLU"))
        unstage(a, 3);
}

static void swiglu_bwd(float *da, float *db, const float *x1, const float *x3, const float *dout, int64_t n) {
    arg a[] = {OUT(da, n), OUT(db, n), IN(x1, n), IN(x3, n), IN(dout, n)};
    if (!stage(a, 5, 0, NULL) &&
        !launched(st__xkc_swiglu_bwd(g.cur, a[0].dev, a[1].dev, a[2].dev, a[3].dev, a[4].dev, n),
                  "SwiGLU backward"))
        unstage(a, 5);
}

static void rope(float *x, int64_t N, int64_t T, int64_t heads, int64_t d, int64_t stride, int sign) {
    arg a[] = {INOUT(x, N * stride)};
    if (!stage(a, 1, 0, NULL) && !launched(st__xkc_rope(g.cur, a[0].dev, N, T, heads, d, stride, sign), "rotary"))
        unstage(a, 1);
}

static void attn_fwd(float *out, float *probs, const float *q, const float *k, const float *v, int64_t B, int64_t T,
                     int64_t hq, int64_t hkv, int64_t d) {
    int64_t N = B * T;
    arg a[] = {OUT(out, N * hq * d), OUT(probs, B * hq * T * T), IN(q, N * hq * d),
               IN(k, N * hkv * d),  IN(v, N * hkv * d)};
    if (!stage(a, 5, 0, NULL) &&
        !launched(st__xkc_attn_fwd(g.cur, a[0].dev, a[1].dev, a[2].dev, a[3].dev, a[4].dev, B, T, hq, hkv, d),
                  "attention"))
        unstage(a, 5);
}

static void attn_bwd(float *dq, float *dk, float *dv, const float *dout, const float *probs, const float *q,
                     const float *k, const float *v, int64_t B, int64_t T, int64_t hq, int64_t hkv, int64_t d) {
    int64_t N = B * T;
    float *ds = NULL;
    arg a[] = {INOUT(dq, N * hq * d),   INOUT(dk, N * hkv * d), INOUT(dv, N * hkv * d),
               IN(dout, N * hq * d), IN(probs, B * hq * T * T), IN(q, N * hq * d),
               IN(k, N * hkv * d),   IN(v, N * hkv * d)};
    if (!stage(a, 8, B * hq * T * T, &ds) &&
        !launched(st__xkc_attn_bwd(g.cur, a[0].dev, a[1].dev, a[2].dev, ds, a[3].dev, a[4].dev, a[5].dev, a[6].dev,
                                   a[7].dev, B, T, hq, hkv, d),
                  "attention backward"))
        unstage(a, 8);
}

static void add(float *y, const float *x, int64_t n) {
    arg a[] = {INOUT(y, n), IN(x, n)};
    if (!stage(a, 2, 0, NULL) && !launched(st__xkc_add(g.cur, a[0].dev, a[1].dev, n), "residual addition"))
        unstage(a, 2);
}

static void bias_add(float *out, const float *b, int64_t N, int64_t C) {
    arg a[] = {INOUT(out, N * C), IN(b, C)};
    if (!stage(a, 2, 0, NULL) && !launched(st__xkc_bias_fill(g.cur, a[0].dev, a[1].dev, N, C, 1), "bias"))
        unstage(a, 2);
}

static void bias_grad(float *db, const float *dout, int64_t N, int64_t C) {
    arg a[] = {INOUT(db, C), IN(dout, N * C)};
    if (!stage(a, 2, 0, NULL) && !launched(st__xkc_col_sum(g.cur, a[0].dev, a[1].dev, N, C), "bias gradient"))
        unstage(a, 2);
}

/* the GEMMs, their operands staged as the other kernels' are, each between two events (the GEMM clock,
 * read at the step's end) */
static void mm_fwd(float *out, const float *inp, const float *w, const float *bias, int64_t N, int64_t C, int64_t OC,
                   int accumulate) {
    arg a[] = {{out, N * OC, accumulate, 1, NULL}, IN(inp, N * C), IN(w, OC * C), IN(bias, OC)};
    if (stage(a, 4, 0, NULL)) return;
    /* as the CPU's: the bias first, then the product added to it */
    if (bias && launched(st__xkc_bias_fill(g.cur, a[0].dev, a[3].dev, N, OC, accumulate), "bias")) return;
    if (bias) accumulate = 1;
    if (!gemm(CUBLAS_OP_T, CUBLAS_OP_N, OC, N, C, a[2].dev, C, a[1].dev, C, accumulate ? 1.0f : 0.0f, a[0].dev))
        unstage(a, 4);
}

static void mm_bwd(float *dinp, float *dw, float *dbias, const float *dout, const float *inp, const float *w, int64_t N,
                   int64_t C, int64_t OC) {
    arg a[] = {INOUT(dinp, N * C), INOUT(dw, OC * C), INOUT(dbias, OC), IN(dout, N * OC), IN(inp, N * C),
               IN(dinp ? w : NULL, OC * C)};
    if (stage(a, 6, 0, NULL)) return;
    if (dinp && gemm(CUBLAS_OP_N, CUBLAS_OP_N, C, N, OC, a[5].dev, C, a[3].dev, OC, 1.0f, a[0].dev)) return;
    if (dw && gemm(CUBLAS_OP_N, CUBLAS_OP_T, C, OC, N, a[4].dev, C, a[3].dev, OC, 1.0f, a[1].dev)) return;
    if (dbias && launched(st__xkc_col_sum(g.cur, a[2].dev, a[3].dev, N, OC), "bias gradient")) return;
    unstage(a, 6);
}

/* the tokens of N = B x T rows: B x (T + 1) */
#define TOKENS(t, N, T) IN(t, (N) / (T) * ((T) + 1))
#define DTOK(a) ((const int32_t *)(a).dev)

static void embed_fwd(float *out, const int32_t *tokens, const float *wte, int64_t N, int64_t T, int64_t h, int64_t v0,
                      int64_t V_l) {
    arg a[] = {OUT(out, N * h), TOKENS(tokens, N, T), IN(wte, V_l * h)};
    if (!stage(a, 3, 0, NULL) &&
        !launched(st__xkc_embed_fwd(g.cur, a[0].dev, DTOK(a[1]), a[2].dev, N, T, h, v0, V_l), "embedding"))
        unstage(a, 3);
}

static void embed_bwd(float *dwte, const int32_t *tokens, const float *dout, int64_t N, int64_t T, int64_t h,
                      int64_t v0, int64_t V_l) {
    arg a[] = {INOUT(dwte, V_l * h), TOKENS(tokens, N, T), IN(dout, N * h)};
    if (!stage(a, 3, 0, NULL) &&
        !launched(st__xkc_embed_bwd(g.cur, a[0].dev, DTOK(a[1]), a[2].dev, N, T, h, v0, V_l),
                  "embedding backward"))
        unstage(a, 3);
}

static void pos_fwd(float *x, const float *wpe, int64_t S, int64_t T, int64_t h, int64_t r0) {
    arg a[] = {INOUT(x, S * h), IN(wpe, T * h)};
    if (!stage(a, 2, 0, NULL) && !launched(st__xkc_pos_fwd(g.cur, a[0].dev, a[1].dev, S, T, h, r0), "positions"))
        unstage(a, 2);
}

static void pos_bwd(float *dwpe, const float *dout, int64_t S, int64_t T, int64_t h, int64_t r0) {
    arg a[] = {INOUT(dwpe, T * h), IN(dout, S * h)};
    if (!stage(a, 2, 0, NULL) &&
        !launched(st__xkc_pos_bwd(g.cur, a[0].dev, a[1].dev, S, T, h, r0), "positions backward"))
        unstage(a, 2);
}

static void xent_max(float *mx, const float *logits, int64_t N, int64_t V_l) {
    arg a[] = {OUT(mx, N), IN(logits, N * V_l)};
    if (!stage(a, 2, 0, NULL) && !launched(st__xkc_xent_max(g.cur, a[0].dev, a[1].dev, N, V_l), "logit maximum"))
        unstage(a, 2);
}

static void xent_exp(float *logits, float *st, const float *mx, const int32_t *tokens, int64_t N, int64_t T,
                     int64_t V_l, int64_t v0) {
    arg a[] = {INOUT(logits, N * V_l), OUT(st, 2 * N), IN(mx, N), TOKENS(tokens, N, T)};
    if (!stage(a, 4, 0, NULL) &&
        !launched(st__xkc_xent_exp(g.cur, a[0].dev, a[1].dev, a[2].dev, DTOK(a[3]), N, T, V_l, v0),
                  "cross-entropy"))
        unstage(a, 4);
}

static void xent_norm(float *logits, const float *st, int64_t N, int64_t V_l) {
    arg a[] = {INOUT(logits, N * V_l), IN(st, N)};
    if (!stage(a, 2, 0, NULL) && !launched(st__xkc_xent_norm(g.cur, a[0].dev, a[1].dev, N, V_l), "softmax"))
        unstage(a, 2);
}

static void xent_bwd(float *p, const int32_t *tokens, float scale, int64_t N, int64_t T, int64_t V_l, int64_t v0) {
    arg a[] = {INOUT(p, N * V_l), TOKENS(tokens, N, T)};
    if (!stage(a, 2, 0, NULL) &&
        !launched(st__xkc_xent_bwd(g.cur, a[0].dev, DTOK(a[1]), scale, N, T, V_l, v0), "cross-entropy backward"))
        unstage(a, 2);
}

static void adam(float *p, const float *gr, float *m, float *v, int64_t n, int t, float lr, float b1, float b2,
                 float eps) {
    arg a[] = {INOUT(p, n), IN(gr, n), INOUT(m, n), INOUT(v, n)};
    if (!stage(a, 4, 0, NULL) &&
        !launched(st__xkc_adam(g.cur, a[0].dev, a[1].dev, a[2].dev, a[3].dev, n, t, lr, b1, b2, eps), "Adam"))
        unstage(a, 4);
}

/* an MoE block's routing, dispatch and combine (exec/moe_kernels.h): exec/model.c's device path hands them its
 * tensors, so nothing is staged and nothing waited for (a host operand would be staged as the others') */
#define DI(a) ((int32_t *)(a).dev)

static void moe_route(int32_t *top, float *s, const float *logits, int64_t N, int64_t E, int64_t K) {
    arg a[] = {OUT(top, N * K), OUT(s, N * K), IN(logits, N * E)};
    if (!stage(a, 3, 0, NULL) && !launched(st__xkc_moe_route(g.cur, DI(a[0]), a[1].dev, a[2].dev, N, E, K), "routing"))
        unstage(a, 3);
}

static void moe_place(int32_t *cnt, int32_t *order, int32_t *where, const int32_t *top, const float *s, int64_t NK,
                      int64_t E, int64_t cap) {
    arg a[] = {OUT(cnt, E), INOUT(order, NK), OUT(where, NK), IN(top, NK), IN(s, NK)};
    if (!stage(a, 5, 0, NULL) &&
        !launched(st__xkc_moe_place(g.cur, DI(a[0]), DI(a[1]), DI(a[2]), DI(a[3]), a[4].dev, NK, E, cap),
                  "capacity"))
        unstage(a, 5);
}

static void moe_gather(float *send, const float *n2, const int32_t *order, const int32_t *top, int64_t N,
                       int64_t nsend, int64_t K, int64_t h, int64_t El) {
    arg a[] = {OUT(send, nsend * (h + 1)), IN(n2, N * h), IN(order, nsend), IN(top, N * K)};
    if (!stage(a, 4, 0, NULL) &&
        !launched(st__xkc_moe_gather(g.cur, a[0].dev, a[1].dev, DI(a[2]), DI(a[3]), N, nsend, K, h, El), "dispatch"))
        unstage(a, 4);
}

static void moe_sort(float *xin, int32_t *perm, int32_t *first, const float *recv, int64_t R, int64_t h, int64_t El) {
    arg a[] = {OUT(xin, R * h), OUT(perm, R), OUT(first, El + 1), IN(recv, R * (h + 1))};
    if (!stage(a, 4, 0, NULL) &&
        !launched(st__xkc_moe_sort(g.cur, a[0].dev, DI(a[1]), DI(a[2]), a[3].dev, R, h, El), "experts' sort"))
        unstage(a, 4);
}

static void moe_permute(float *to, const float *from, const int32_t *perm, int64_t R, int64_t h, int dir) {
    arg a[] = {INOUT(to, R * h), IN(from, R * h), IN(perm, R)};
    if (!stage(a, 3, 0, NULL) &&
        !launched(st__xkc_moe_permute(g.cur, a[0].dev, a[1].dev, DI(a[2]), R, h, dir), "experts' permutation"))
        unstage(a, 3);
}

static void moe_combine(float *out, const float *y, const float *s, const int32_t *where, int64_t N, int64_t nsend,
                        int64_t K, int64_t h, int acc) {
    arg a[] = {INOUT(out, N * h), IN(y, nsend * h), IN(s, N * K), IN(where, N * K)};
    if (!stage(a, 4, 0, NULL) &&
        !launched(st__xkc_moe_combine(g.cur, a[0].dev, a[1].dev, a[2].dev, DI(a[3]), N, nsend, K, h, acc), "combine"))
        unstage(a, 4);
}

static void moe_dy(float *dy, float *ds, const float *dout, const float *y, const float *s, const int32_t *order,
                   int64_t N, int64_t nsend, int64_t K, int64_t h) {
    arg a[] = {OUT(dy, nsend * h), INOUT(ds, N * K), IN(dout, N * h), IN(y, nsend * h), IN(s, N * K), IN(order, nsend)};
    if (!stage(a, 6, 0, NULL) && !launched(st__xkc_moe_dy(g.cur, a[0].dev, a[1].dev, a[2].dev, a[3].dev, a[4].dev,
                                                          DI(a[5]), N, nsend, K, h),
                                           "combine backward"))
        unstage(a, 6);
}

static void moe_router_bwd(float *dl, const float *s, const float *ds, const int32_t *top, int64_t N, int64_t E,
                           int64_t K) {
    arg a[] = {INOUT(dl, N * E), IN(s, N * K), IN(ds, N * K), IN(top, N * K)};
    if (!stage(a, 4, 0, NULL) &&
        !launched(st__xkc_moe_router_bwd(g.cur, a[0].dev, a[1].dev, a[2].dev, DI(a[3]), N, E, K), "routing backward"))
        unstage(a, 4);
}

/* ---------------------------------------------------------------- NCCL: tp and ep communication
 *
 * Each call runs on the model's tensors where they lie on the device (a host buffer, staged through
 * the device and waited for), on the instruction's stream, between two events: its time goes to the
 * runtime's clock of its kind at the step's end (step_end). A rank whose staging failed skips the
 * call: its error stops the run after the instruction. */

/* the collective's result back on the host where it was the host's (waited for: the host reads it),
 * its time from its region's start event t0 to here on its clock (kind REG_TP, REG_EP or REG_CP) */
static void comm_done(float *host, const float *dev, int64_t n, cudaEvent_t t0, int kind) {
    if (host != dev && to_host(host, dev, n)) return;
    region_end(kind, t0);
    if (host != dev) sync();
}

static void nccl_allreduce(void *ctx, float *buf, int64_t n, int max) {
    cudaEvent_t t0 = region_begin();
    float *d = g.fail[0] ? NULL : mine(buf, n) ? buf : staging((size_t)n);
    if (d && (d == buf || !to_dev(d, buf, n)) &&
        !nccl_ok(ncclAllReduce(d, d, (size_t)n, ncclFloat, max ? ncclMax : ncclSum, g.tpc, g.cur), "ncclAllReduce"))
        comm_done(buf, d, n, t0, REG_TP);
}

/* in place over c, where this rank is member me: its block at me * n (NCCL's in-place all-gather is
 * the same layout) */
static void allgather_on(ncclComm_t c, int me, float *buf, int64_t n, int clock) {
    cudaEvent_t t0 = region_begin();
    int np = 0;
    ncclCommCount(c, &np);
    float *d = g.fail[0] ? NULL : mine(buf, np * n) ? buf : staging((size_t)(np * n));
    if (d && (d == buf || !to_dev(d + me * n, buf + me * n, n)) &&
        !nccl_ok(ncclAllGather(d + me * n, d, (size_t)n, ncclFloat, c, g.cur), "ncclAllGather"))
        comm_done(buf, d, np * n, t0, clock);
}

static void reduce_scatter_on(ncclComm_t c, float *out, const float *in, int64_t n, int clock) {
    cudaEvent_t t0 = region_begin();
    int np = 0;
    ncclCommCount(c, &np);
    int direct = mine(in, np * n) && mine(out, n); /* the model's tensors: no staging */
    float *d = g.fail[0] ? NULL : direct ? (float *)(uintptr_t)in : staging((size_t)((np + 1) * n));
    float *o = direct ? out : d + np * n;
    if (d && (direct || !to_dev(d, in, np * n)) &&
        !nccl_ok(ncclReduceScatter(d, o, (size_t)n, ncclFloat, ncclSum, c, g.cur), "ncclReduceScatter"))
        comm_done(out, o, n, t0, clock);
}

static void nccl_allgather(void *ctx, float *buf, int64_t n) { allgather_on(g.tpc, g.tr, buf, n, REG_TP); }

static void nccl_reduce_scatter(void *ctx, float *out, const float *in, int64_t n) {
    reduce_scatter_on(g.tpc, out, in, n, REG_TP);
}

/* grouped sends and receives with every member of c (NCCL's all-to-all): send[i], recv[i] of counts
 * sc[i], rc[i] in elements of `type` (zero counts skipped: both sides know them) */
static int exchange(ncclComm_t c, const void *send, const int64_t *sd, const int *sc, void *recv, const int64_t *rd,
                    const int *rc, int n, ncclDataType_t type, size_t esize) {
    int bad = nccl_ok(ncclGroupStart(), "ncclGroupStart");
    for (int i = 0; !bad && i < n; i++) {
        if (sc[i]) bad = nccl_ok(ncclSend((const char *)send + sd[i] * esize, (size_t)sc[i], type, i, c, g.cur),
                                 "ncclSend");
        if (!bad && rc[i])
            bad = nccl_ok(ncclRecv((char *)recv + rd[i] * esize, (size_t)rc[i], type, i, c, g.cur), "ncclRecv");
    }
    return nccl_ok(ncclGroupEnd(), "ncclGroupEnd") || bad;
}

/* The ep all-to-all's counts: each member's row count to every other, as one int each way over NCCL (through
 * the staging buffer: scounts and rcounts are the host's); then off[0..n) and off[n..2n) the sent and received
 * floats' places, ones + n and ones + 2n their counts (ones[0..n) the counts' own, 1 each), *so and *ro their
 * totals. Non-zero: a failure (the backend's error says which). */
static int alltoall_counts(int n, const int *scounts, int *rcounts, int64_t width, int64_t *off, int *ones,
                           int64_t *so, int64_t *ro) {
    int *sf = ones + n, *rf = sf + n;
    float *d;
    for (int i = 0; i < n; i++) ones[i] = 1, off[i] = i;
    if (g.fail[0] || !(d = staging((size_t)(2 * n))) || to_dev(d, (const float *)scounts, n) ||
        exchange(g.epc, d, off, ones, d + n, off, ones, n, ncclInt32, sizeof(float)) ||
        to_host((float *)rcounts, d + n, n) || sync())
        return -1;
    for (int i = 0; i < n; i++) {
        sf[i] = (int)(scounts[i] * width), off[i] = *so, *so += sf[i];
        rf[i] = (int)(rcounts[i] * width), off[n + i] = *ro, *ro += rf[i];
    }
    return 0;
}

static float *nccl_alltoallv(void *ctx, const float *send, const int *scounts, int *rcounts, int64_t width) {
    cudaEvent_t t0 = region_begin();
    int n = 0;
    ncclCommCount(g.epc, &n);
    int64_t *off = calloc((size_t)(2 * n + 1), sizeof *off), so = 0, ro = 0; /* the rows' places */
    int *ones = malloc((size_t)(3 * n + 1) * sizeof *ones), *sf, *rf;
    float *recv = NULL, *d = NULL;
    if (!off || !ones || alltoall_counts(n, scounts, rcounts, width, off, ones, &so, &ro)) goto out;
    sf = ones + n, rf = sf + n;
    recv = malloc((size_t)(ro + 1) * sizeof *recv);
    /* the rows; a rank that could not allocate takes part all the same (the others would wait) */
    if (!(d = staging((size_t)(so + ro + 1))) || to_dev(d, send, so) ||
        exchange(g.epc, d, off, sf, d + so, off + n, rf, n, ncclFloat, sizeof(float)))
        goto out;
    if (recv) comm_done(recv, d + so, ro, t0, REG_EP);
    else sync();
out:
    if (g.fail[0]) free(recv), recv = NULL;
    free(off);
    free(ones);
    return recv;
}

/* nccl_alltoallv on the model's tensors (st__xcomm's alltoallv_dev): the counts (an int each way per member)
 * through the host, the rows from send to a new tensor of mem_alloc's without staging or waiting */
static float *nccl_alltoallv_dev(void *ctx, const float *send, const int *scounts, int *rcounts, int64_t width) {
    cudaEvent_t t0 = region_begin();
    int n = 0;
    ncclCommCount(g.epc, &n);
    int64_t *off = calloc((size_t)(2 * n + 1), sizeof *off), so = 0, ro = 0; /* the rows' places */
    int *ones = malloc((size_t)(3 * n + 1) * sizeof *ones), *sf, *rf;
    float *recv = NULL, *d = NULL;
    if (!off || !ones || alltoall_counts(n, scounts, rcounts, width, off, ones, &so, &ro)) goto out;
    sf = ones + n, rf = sf + n;
    /* a rank that could not allocate takes part all the same (the others would wait): into the staging buffer */
    recv = mem_alloc(ro);
    d = recv ? recv : staging((size_t)(ro + 1));
    if (!mine(send, so)) failed("the ep all-to-all", "its rows are not the model's tensors");
    if (!d || g.fail[0] ||
        exchange(g.epc, send, off, sf, d, off + n, rf, n, ncclFloat, sizeof(float)))
        goto out;
    region_end(REG_EP, t0);
out:
    if (g.fail[0] || !recv) mem_free(recv), recv = NULL;
    free(off);
    free(ones);
    return recv;
}

/* the communicator of a group of n world ranks: its first rank's id, sent to the others with a
 * flag saying whether it has one (a member that waited for nothing would hang) */
static int comm_init(ncclComm_t *nc, const int *ranks, int n, int tag, int *pos, st_error *err) {
    struct {
        int ok;
        ncclUniqueId id;
    } m;
    memset(&m, 0, sizeof m);
    *pos = 0;
    for (int i = 0; i < n; i++)
        if (ranks[i] == g.rank) *pos = i;
    if (*pos == 0) {
        m.ok = !nccl_ok(ncclGetUniqueId(&m.id), "ncclGetUniqueId");
        for (int i = 1; i < n; i++) MPI_Send(&m, sizeof m, MPI_BYTE, ranks[i], tag, MPI_COMM_WORLD);
    } else {
        MPI_Recv(&m, sizeof m, MPI_BYTE, ranks[0], tag, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        if (!m.ok) failed("ncclGetUniqueId", "on the group's first rank");
    }
    if (m.ok && nccl_ok(ncclCommInitRank(nc, n, m.id, *pos), "ncclCommInitRank")) *nc = NULL;
    return kernel_error(err);
}

int st__xcuda_comm(st__xcomm *c, const int *tp, int tp_n, const int *ep, int ep_n, st_error *err) {
    int pos = 0;
    /* tags of their own: no message of the program is in flight yet, but these must not match one */
    if (tp_n > 1 && comm_init(&g.tpc, tp, tp_n, 32001, &g.tr, err)) return ST_EIO;
    if (ep_n > 1 && comm_init(&g.epc, ep, ep_n, 32002, &pos, err)) return ST_EIO;
    *c = (st__xcomm){g.tpc ? nccl_allreduce : NULL, g.tpc ? nccl_allgather : NULL, g.tpc ? nccl_reduce_scatter : NULL,
                     g.epc ? nccl_alltoallv : NULL, g.epc ? nccl_alltoallv_dev : NULL, NULL};
    return 0;
}

/* ---------------------------------------------------------------- NCCL: context parallelism's exchanges
 *
 * exec_private.h's st__xcpcomm over the cp group's communicator (made with the dp ones below), each
 * call staged and waited for as the tp ones, its time on the runtime's cp clock: the ring's step as
 * one NCCL group of a send to the next member and a receive from the previous (every member sends
 * and receives at once, so none waits on another's send), the all-to-all as `exchange`. */

static void cp_allgather(void *ctx, float *buf, int64_t n) { allgather_on(g.cpc, g.cr, buf, n, REG_CP); }

static void cp_reduce_scatter(void *ctx, float *out, const float *in, int64_t n) {
    reduce_scatter_on(g.cpc, out, in, n, REG_CP);
}

static void cp_ring(void *ctx, const float *send, float *recv, int64_t n) {
    cudaEvent_t t0 = region_begin();
    float *d = g.fail[0] ? NULL : staging((size_t)(2 * n));
    if (!d || to_dev(d, send, n)) return;
    int bad = nccl_ok(ncclGroupStart(), "ncclGroupStart");
    if (!bad)
        bad = nccl_ok(ncclSend(d, (size_t)n, ncclFloat, (g.cr + 1) % g.cpn, g.cpc, g.cur), "ncclSend (cp ring)");
    if (!bad)
        bad = nccl_ok(ncclRecv(d + n, (size_t)n, ncclFloat, (g.cr + g.cpn - 1) % g.cpn, g.cpc, g.cur),
                      "ncclRecv (cp ring)");
    if (!nccl_ok(ncclGroupEnd(), "ncclGroupEnd") && !bad) comm_done(recv, d + n, n, t0, REG_CP);
}

static void cp_alltoall(void *ctx, const float *send, float *recv, int64_t n) {
    cudaEvent_t t0 = region_begin();
    int np = g.cpn, *cnt = malloc((size_t)np * sizeof *cnt);
    int64_t *off = malloc((size_t)np * sizeof *off);
    float *d = NULL;
    if (!cnt || !off) failed("the cp all-to-all", "out of memory");
    for (int i = 0; cnt && off && i < np; i++) cnt[i] = (int)n, off[i] = i * n;
    if (!g.fail[0] && (d = staging((size_t)(2 * np * n))) && !to_dev(d, send, np * n) &&
        !exchange(g.cpc, d, off, cnt, d + np * n, off, cnt, np, ncclFloat, sizeof(float)))
        comm_done(recv, d + np * n, np * n, t0, REG_CP);
    free(cnt);
    free(off);
}

void st__xcuda_cpcomm(st__xcpcomm *c, int gi) {
    g.cpc = gi >= 0 && gi < g.ngcs ? g.gcs[gi] : NULL;
    if (!g.cpc) return; /* a group of one: nothing to exchange */
    ncclCommCount(g.cpc, &g.cpn);
    ncclCommUserRank(g.cpc, &g.cr);
    *c = (st__xcpcomm){cp_allgather, cp_reduce_scatter, cp_ring, cp_alltoall, NULL};
}

/* ---------------------------------------------------------------- NCCL: dp and the embedding's pp group
 *
 * ZeRO's shards need not be equal (exec/cpu.c's regions split as they fall), and NCCL's
 * reduce-scatter and all-gather take equal counts (Megatron-LM pads its buffer to a multiple of dp
 * instead): here they are one ncclReduce (ncclBroadcast) per member's shard, rooted at it, in one
 * NCCL group. Each call runs on the gradients and weights where they lie on the device, on the dp
 * stream, queued (a host buffer: staged, waited for). */

/* group gi's communicator and *n members, this rank at *me; NULL with *n 1 where it is alone (the
 * collectives do nothing then), NULL with *n 0 on a failure */
static ncclComm_t group_comm(int gi, int *n, int *me) {
    ncclComm_t c = gi < 0 ? g.edpc : gi < g.ngcs ? g.gcs[gi] : NULL;
    *n = gi < 0 ? g.edp_n : gi < g.ngcs ? g.gsize[gi] : 0, *me = 0;
    if (g.fail[0] || (!c && *n == 1)) return NULL;
    if (!c) {
        *n = 0;
        failed("a data-parallel collective", "no NCCL communicator for its group");
        return NULL;
    }
    ncclCommCount(c, n);
    ncclCommUserRank(c, me);
    return c;
}

static void dp_allreduce(int gi, float *buf, int64_t n) {
    int np = 0, me = 0;
    ncclComm_t c = group_comm(gi, &np, &me);
    float *d = !c ? NULL : mine(buf, n) ? buf : staging((size_t)n + 1);
    if (d && (d == buf || !to_dev(d, buf, n)) &&
        !nccl_ok(ncclAllReduce(d, d, (size_t)n, ncclFloat, ncclSum, c, g.cur), "ncclAllReduce (dp)") && d != buf &&
        !to_host(buf, d, n))
        sync(); /* a host buffer: the host reads it next */
}

static void dp_reduce_scatterv(int gi, const float *in, float *out, const int *counts, const int *displs) {
    int np = 0, me = 0;
    ncclComm_t c = group_comm(gi, &np, &me);
    if (!c && np == 1) mem_copy(out, in, counts[0]);
    if (!c) return;
    int64_t total = displs[np - 1] + counts[np - 1];
    int direct = mine(in, total) && mine(out, counts[me]); /* the model's tensors: no staging */
    float *d = direct ? (float *)(uintptr_t)in : staging((size_t)(total + counts[me]) + 1);
    float *o = direct ? out : d ? d + total : NULL;
    if (!d || (!direct && to_dev(d, in, total))) return;
    int bad = nccl_ok(ncclGroupStart(), "ncclGroupStart");
    for (int i = 0; !bad && i < np; i++)
        if (counts[i])
            bad = nccl_ok(ncclReduce(d + displs[i], o, (size_t)counts[i], ncclFloat, ncclSum, i, c, g.cur),
                          "ncclReduce (dp reduce-scatter)");
    if (!nccl_ok(ncclGroupEnd(), "ncclGroupEnd") && !bad && !direct && !to_host(out, o, counts[me])) sync();
}

static void dp_allgatherv(int gi, float *buf, const int *counts, const int *displs) {
    int np = 0, me = 0;
    ncclComm_t c = group_comm(gi, &np, &me);
    if (!c) return;
    int64_t total = displs[np - 1] + counts[np - 1];
    float *d = mine(buf, total) ? buf : staging((size_t)total + 1);
    if (!d || (d != buf && to_dev(d + displs[me], buf + displs[me], counts[me]))) return;
    int bad = nccl_ok(ncclGroupStart(), "ncclGroupStart");
    for (int i = 0; !bad && i < np; i++)
        if (counts[i])
            bad = nccl_ok(ncclBroadcast(d + displs[i], d + displs[i], (size_t)counts[i], ncclFloat, i, c, g.cur),
                          "ncclBroadcast (dp all-gather)");
    if (!nccl_ok(ncclGroupEnd(), "ncclGroupEnd") && !bad && d != buf && !to_host(buf, d, total)) sync();
}

/* world rank r's place in its ep group (-1: none) */
static int ep_place(const st_group_def *groups, int ngroups, int r) {
    for (int i = 0; i < ngroups; i++)
        for (int j = 0; groups[i].kind == ST_GRP_EP && j < groups[i].n; j++)
            if (groups[i].ranks[j] == r) return j;
    return -1;
}

/* ---------------------------------------------------------------- NCCL: the pipeline's sends and receives
 *
 * As the runtime's MPI does them (exec/cpu.c: a send posted and left, a receive waited for, every
 * send waited for at the iteration's end), so that a schedule that runs over MPI runs here: an
 * NCCL send waits until its receive is posted, so sends posted on the compute stream (or grouped
 * with the receives after them, as Megatron-LM's batch_isend_irecv does) would hold up the
 * compute after them, and the interleaved and split-backward orders of the lowering, where a
 * rank sends twice before it receives what its peer sent, would wait on each other. Each way of
 * each pair of ranks that transfer has a channel: a communicator of the two and a stream of its own
 * (NCCL orders the operations of one communicator; two on one stream would wait on each other).
 * A send copies its buffer into a device buffer of its channel (on the send's stream) and posts
 * ncclSend on the channel's stream after an event recorded behind the copy; the buffer stays busy
 * until the channel's stream is idle. A receive posts ncclRecv into the runtime's buffer on its
 * channel's stream, after an event behind the buffer's zeroing on the receive's stream, and the host
 * waits for it (bounded by --timeout). NCCL has no tags: it matches a send to its peer's receive by their order on the
 * pair, so a lowering whose receives between two ranks come in another order than the sends is
 * refused (st_exec_p2p_in_order). */

typedef struct chan {
    int peer, send; /* the other rank (world); 1: this rank sends on it, 0: receives */
    ncclComm_t c;   /* of the two: the sender at place 0 */
    cudaStream_t s;
    float **bufs; /* send channels: device buffers of caps[i] floats, busy[i] while a send may read it */
    size_t *caps;
    int *busy, nbuf;
} chan;

/* the channels of this rank, in one order on every rank: by sender, then receiver (each pair's
 * communicator is made by both of its ranks at the same place of that order) */
static int channels(const st_lowered *l, st_error *err) {
    int n = l->nranks, rc = 0;
    char *to = malloc((size_t)n + 1);
    if (!to) return st_error_set(err, ST_ENOMEM, NULL, NULL, "out of memory");
    for (int a = 0; !rc && a < n; a++) {
        memset(to, 0, (size_t)n);
        for (int i = 0; i < l->progs[a].n; i++) {
            st_ins in;
            st_program_ins(&l->progs[a], i, &in);
            if (in.kind == ST_INS_SEND && in.peer >= 0 && in.peer < n && in.peer != a) to[in.peer] = 1;
        }
        for (int b = 0; !rc && b < n; b++) {
            if (!to[b] || (a != g.rank && b != g.rank)) continue;
            chan *c = realloc(g.ch, (size_t)(g.nch + 1) * sizeof *c);
            if (!c) {
                rc = st_error_set(err, ST_ENOMEM, NULL, NULL, "out of memory");
                break;
            }
            g.ch = c, c = &g.ch[g.nch++];
            *c = (chan){.peer = a == g.rank ? b : a, .send = a == g.rank};
            int pair[2] = {a, b}, pos = 0;
            if (ST_STREAMS + g.nch > MAX_STREAMS)
                rc = st_error_set(err, ST_EINVAL, NULL, "plan", "the cuda backend: more than %d pipeline channels",
                                  MAX_STREAMS - ST_STREAMS);
            else if (cuda_ok(cudaStreamCreateWithFlags(&c->s, cudaStreamNonBlocking), "cudaStreamCreateWithFlags"))
                rc = kernel_error(err);
            else if (comm_init(&c->c, pair, 2, 32005, &pos, err))
                rc = ST_EIO;
        }
    }
    free(to);
    return rc;
}

static chan *chan_of(int peer, int send) {
    for (int i = 0; i < g.nch; i++)
        if (g.ch[i].peer == peer && g.ch[i].send == send) return &g.ch[i];
    failed(send ? "a pipeline send" : "a pipeline receive", "no channel to its peer");
    return NULL;
}

/* 1 while a send may still read one of the channels' buffers */
static int sends_in_flight(void) {
    for (int i = 0; i < g.nch; i++)
        for (int j = 0; j < g.ch[i].nbuf; j++)
            if (g.ch[i].busy[j]) return 1;
    return 0;
}

/* a free device buffer of c for n floats (new when none is), marked busy; NULL on a failure */
static float *send_buffer(chan *c, int64_t n) {
    int i = 0;
    if (cudaStreamQuery(c->s) == cudaSuccess) /* every send of the channel done */
        for (int j = 0; j < c->nbuf; j++) c->busy[j] = 0;
    while (i < c->nbuf && (c->busy[i] || c->caps[i] < (size_t)n)) i++;
    if (i == c->nbuf) {
        float **b = realloc(c->bufs, (size_t)(i + 1) * sizeof *b);
        size_t *cap = b ? realloc(c->caps, (size_t)(i + 1) * sizeof *cap) : NULL;
        int *busy = cap ? realloc(c->busy, (size_t)(i + 1) * sizeof *busy) : NULL;
        if (b) c->bufs = b;
        if (cap) c->caps = cap;
        if (busy) c->busy = busy;
        if (!busy) {
            failed("a pipeline send", "out of memory");
            return NULL;
        }
        if (dev_alloc(&c->bufs[i], (size_t)n, "cudaMalloc of a pipeline send buffer")) return NULL;
        c->caps[i] = (size_t)n, c->busy[i] = 0, c->nbuf++;
    }
    c->busy[i] = 1;
    return c->bufs[i];
}

static void pp_send(const float *buf, int64_t n, int peer) {
    chan *c = g.fail[0] ? NULL : chan_of(peer, 1);
    float *d = c ? send_buffer(c, n) : NULL;
    cudaEvent_t e = NULL;
    /* the copy on the send's stream, then the channel's stream after it (an event: no host wait) */
    if (d && !to_dev(d, buf, n) && (e = recorded(g.cur)) &&
        !cuda_ok(cudaStreamWaitEvent(c->s, e, 0), "cudaStreamWaitEvent"))
        nccl_ok(ncclSend(d, (size_t)n, ncclFloat, 1, c->c, c->s), "ncclSend (pipeline)");
}

/* buf: the runtime's, in the backend's memory (exec/cpu.c's p2p_new) */
static void pp_recv(float *buf, int64_t n, int peer) {
    chan *c = g.fail[0] ? NULL : chan_of(peer, 0);
    cudaEvent_t e = NULL;
    /* straight into buf on the channel's stream, after the receive's stream is done with it (its
     * zeroing: an event), waited for by the host (the wait that can meet a dead peer, bounded by
     * --timeout; the receive's stream's next work is queued after it) */
    if (c && mine(buf, n) && (e = recorded(g.cur)) &&
        !cuda_ok(cudaStreamWaitEvent(c->s, e, 0), "cudaStreamWaitEvent")) {
        for (int i = 0; i < g.nmem; i++)
            if (g.mem[i].used && buf >= g.mem[i].p && buf < g.mem[i].p + g.mem[i].n) touch(g.mem[i].m, c->s);
        if (!nccl_ok(ncclRecv(buf, (size_t)n, ncclFloat, 0, c->c, c->s), "ncclRecv (pipeline)") &&
            !stream_wait(c->s, "pipeline receive over NCCL", peer))
            sample();
    } else if (c && !g.fail[0] && !mine(buf, n)) {
        failed("a pipeline receive", "its buffer is not the backend's memory");
    }
}

static void pp_sends_wait(void) {
    for (int i = 0; i < g.nch; i++) {
        chan *c = &g.ch[i];
        if (!c->send || stream_wait(c->s, "pipeline send over NCCL", c->peer)) continue;
        for (int j = 0; j < c->nbuf; j++) c->busy[j] = 0;
    }
    sample();
}

int st__xcuda_gcomm(st__xgcomm *c, const st_lowered *l, int gd, int er, const st__xwatch *w, st_error *err) {
    g.w = w;
    const st_group_def *groups = l->groups;
    int ngroups = l->ngroups, pos = 0, *members = NULL, n = 0;
    int ordered = st_exec_p2p_in_order(l);
    if (ordered < 0) return st_error_set(err, ST_ENOMEM, NULL, NULL, "out of memory");
    if (!ordered)
        return st_error_set(err, ST_EINVAL, NULL, "plan",
                            "the cuda backend does not run a pipeline whose receives between two ranks come in "
                            "another order than the sends (NCCL matches them by order)");
    g.gcs = calloc((size_t)ngroups + 1, sizeof *g.gcs);
    g.gsize = calloc((size_t)ngroups + 1, sizeof *g.gsize);
    if (!g.gcs || !g.gsize || (gd >= 0 && !(members = malloc((size_t)groups[gd].n * sizeof *members)))) {
        free(members);
        return st_error_set(err, ST_ENOMEM, NULL, NULL, "out of memory");
    }
    g.ngcs = ngroups;
    /* every member takes its groups in the lowering's order: no two wait on each other */
    for (int i = 0; i < ngroups; i++) {
        const st_group_def *gr = &groups[i];
        int in = 0;
        for (int j = 0; j < gr->n; j++) in |= gr->ranks[j] == g.rank;
        g.gsize[i] = in ? gr->n : 0;
        if (in && gr->n > 1 && (gr->kind == ST_GRP_DP || gr->kind == ST_GRP_PP || gr->kind == ST_GRP_CP) &&
            comm_init(&g.gcs[i], gr->ranks, gr->n, 32003, &pos, err)) {
            free(members);
            return ST_EIO;
        }
    }
    /* the expert-data-parallel group: the dp group's ranks at the same place er of their ep groups */
    for (int j = 0; er >= 0 && gd >= 0 && j < groups[gd].n; j++)
        if (ep_place(groups, ngroups, groups[gd].ranks[j]) == er) members[n++] = groups[gd].ranks[j];
    g.edp_n = n;
    int rc = n > 1 && comm_init(&g.edpc, members, n, 32004, &pos, err) ? ST_EIO : 0;
    free(members);
    if (!rc) rc = channels(l, err); /* last: every rank has made its groups' before */
    *c = (st__xgcomm){dp_allreduce, dp_reduce_scatterv, dp_allgatherv, pp_send, pp_recv, pp_sends_wait};
    return rc;
}

/* ---------------------------------------------------------------- the program's streams
 *
 * st__xbackend's step_begin, ins_begin, ins_end and step_end (exec/cpu.c's run_steps calls them around
 * each instruction): the instruction's work goes to the CUDA stream of its program stream; a dep[] on
 * an earlier instruction of another stream becomes a cudaStreamWaitEvent on that one's end event; the
 * start and end events of every instruction, and the regions (GEMMs, tp/ep/cp collectives) recorded
 * inside them, are read once, at the step's end, after the host waited for every stream. */

static int stream_index(cudaStream_t s) {
    for (int k = 0; k < ST_STREAMS; k++)
        if (g.st[k] == s) return k;
    for (int i = 0; i < g.nch; i++)
        if (g.ch[i].s == s) return ST_STREAMS + i < MAX_STREAMS ? ST_STREAMS + i : -1;
    return -1;
}

static cudaStream_t stream_at(int k) { return k < ST_STREAMS ? g.st[k] : g.ch[k - ST_STREAMS].s; }

static int step_begin(int n) {
    g.used = g.nreg = 0, g.cur_ins = -1;
    if (n > g.capins) {
        cudaEvent_t *a = realloc(g.ins_a, (size_t)n * sizeof *a);
        if (a) g.ins_a = a;
        cudaEvent_t *b = a ? realloc(g.ins_b, (size_t)n * sizeof *b) : NULL;
        if (b) g.ins_b = b;
        int *st = b ? realloc(g.ins_st, (size_t)n * sizeof *st) : NULL;
        if (!st) return failed("the timing events", "out of memory");
        g.ins_st = st, g.capins = n;
    }
    g.nins = n;
    memset(g.ins_a, 0, (size_t)n * sizeof *g.ins_a);
    memset(g.ins_b, 0, (size_t)n * sizeof *g.ins_b);
    use_stream(g.st[ST_STREAM_COMPUTE]);
    /* every stream after the step's start (what the host queued before it on the compute stream) */
    if (!(g.t0 = recorded(g.cur))) return -1;
    for (int k = 0; k < ST_STREAMS; k++)
        if (k != ST_STREAM_COMPUTE && cuda_ok(cudaStreamWaitEvent(g.st[k], g.t0, 0), "cudaStreamWaitEvent")) return -1;
    return 0;
}

static void ins_begin(int i, int stream, const int32_t *dep) {
    if (i < 0 || i >= g.nins || g.fail[0]) return;
    int k = stream >= 0 && stream < ST_STREAMS ? stream : ST_STREAM_COMPUTE;
    use_stream(g.st[k]);
    g.ins_st[i] = k, g.cur_ins = i;
    /* a dep on a later instruction cannot be waited for (its event is not recorded yet): the runtime
     * runs the program in order, and the lowering orders its deps so */
    for (int j = 0; j < 2 && !g.skip_waits; j++) {
        int d = dep[j];
        if (d >= 0 && d < i && g.ins_b[d] && g.ins_st[d] != k)
            cuda_ok(cudaStreamWaitEvent(g.cur, g.ins_b[d], 0), "cudaStreamWaitEvent");
    }
    g.ins_a[i] = recorded(g.cur);
}

static void ins_end(int i) {
    if (i >= 0 && i < g.nins && !g.fail[0]) g.ins_b[i] = recorded(g.cur);
    g.cur_ins = -1;
    use_stream(g.st[ST_STREAM_COMPUTE]);
}

static double elapsed_s(cudaEvent_t a, cudaEvent_t b) {
    float ms = 0;
    return a && b && !cuda_ok(cudaEventElapsedTime(&ms, a, b), "cudaEventElapsedTime") ? 1e-3 * ms : 0;
}

/* st__xbackend's redo_mark: a block's rebuild inside the running backward, from here (end 0) to here (end 1): a
 * region of its own, the collectives recorded inside it marked (step_end counts them as theirs, not the rebuild's) */
static void redo_mark(int end) {
    if (!end) {
        g.redo_a = region_begin();
        return;
    }
    cudaEvent_t a = g.redo_a;
    g.redo_a = NULL;
    region_end(REG_REDO, a);
}

static int step_end(double *span, double *coll) {
    int rc = wait_streams("GPU streams at the step's end (their kernels and NCCL collectives)");
    memset(span, 0, (size_t)(2 * g.nins) * sizeof *span);
    memset(coll, 0, (size_t)(4 * g.nins) * sizeof *coll);
    if (rc || g.fail[0]) return -1;
    for (int i = 0; i < g.nins; i++)
        if (g.ins_a[i] && g.ins_b[i]) span[2 * i] = elapsed_s(g.t0, g.ins_a[i]), span[2 * i + 1] = elapsed_s(g.t0, g.ins_b[i]);
    for (int r = 0; r < g.nreg; r++) {
        const region *e = &g.reg[r];
        double t = elapsed_s(e->a, e->b);
        if (e->kind == REG_GEMM) st__xkernels_gemm_s += t;
        else if (e->ins >= 0 && e->ins < g.nins) coll[4 * e->ins + e->kind] += t;
        if (e->in_redo && e->ins >= 0 && e->ins < g.nins) coll[4 * e->ins + REG_REDO] -= t;
    }
    return g.fail[0] ? -1 : 0;
}

static st__xbackend table;

int st__xcuda_open(const st__xbackend **be, st_error *err) {
    int n = 0, local = 0;
    MPI_Comm node;
    memset(&g, 0, sizeof g);
    g.open = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &g.rank);
    /* the node-local rank: MPI's shared-memory split of the world (collective, so before any return) */
    if (MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node) == MPI_SUCCESS) {
        MPI_Comm_rank(node, &local);
        MPI_Comm_free(&node);
    }
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess || n < 1)
        return st_error_set(err, ST_EINVAL, NULL, NULL, "--backend cuda: no CUDA GPU: %s",
                            e != cudaSuccess ? cudaGetErrorString(e) : "none visible");
    g.dev = local % n;
    e = cudaSetDevice(g.dev);
    for (int k = 0; !e && k < ST_STREAMS; k++) e = cudaStreamCreateWithFlags(&g.st[k], cudaStreamNonBlocking);
    if (e)
        return st_error_set(err, ST_EINVAL, NULL, NULL, "--backend cuda: GPU %d did not start: %s", g.dev,
                            cudaGetErrorString(e));
    g.cur = g.st[ST_STREAM_COMPUTE];
    const char *hook = getenv("STRATA_EXEC_CUDA_SKIP_WAITS"); /* the test hook (tests/cli_run_cuda.sh) */
    g.skip_waits = hook && *hook && strcmp(hook, "0");
#ifdef CUBLAS_VER_MAJOR
    int major = CUBLAS_VER_MAJOR;
#else
    int major = CUDART_VERSION / 1000;
#endif
    /* cuBLASLt first: libcublas needs it and finds it loaded by its soname */
    if (!(g.liblt = open_lib("libcublasLt", major)) || !(g.lib = open_lib("libcublas", major))) {
        const char *why = dlerror();
        return st_error_set(err, ST_EINVAL, NULL, NULL, "--backend cuda: cuBLAS %d did not load: %s", major,
                            why ? why : "not found");
    }
    if (sym(g.lib, "cublasCreate_v2", &g.create, err) || sym(g.lib, "cublasDestroy_v2", &g.destroy, err) ||
        sym(g.lib, "cublasSetStream_v2", &g.set_stream, err) || sym(g.lib, "cublasSetMathMode", &g.set_math, err) ||
        sym(g.lib, "cublasSgemm_v2", &g.sgemm, err))
        return ST_EINVAL;
    if (g.create(&g.h) != CUBLAS_STATUS_SUCCESS) {
        g.h = NULL;
        return st_error_set(err, ST_EINVAL, NULL, NULL, "--backend cuda: cublasCreate failed on GPU %d", g.dev);
    }
    g.set_stream(g.h, g.cur);
    g.set_math(g.h, CUBLAS_DEFAULT_MATH); /* fp32 stays fp32 */
    /* the fake cudart of profiler/mock runs launches through the kernels' host versions; a real
     * libcudart has no such symbol (the program's global scope: dlopen of NULL) */
    void *self = dlopen(NULL, RTLD_NOW), *mock = self ? dlsym(self, "mock_cuda_host_kernels") : NULL;
    if (mock) {
        void (*fake)(const st__xkc_host *, int);
        int nk = 0;
        const st__xkc_host *t = st__xkc_host_table(&nk);
        memcpy(&fake, &mock, sizeof mock);
        fake(t, nk);
    }
    if (self) dlclose(self);
    table = (st__xbackend){"cuda",     mm_fwd,    mm_bwd,    norm_fwd,  norm_bwd,  act_fwd,   act_bwd,  swiglu_fwd,
                           swiglu_bwd, rope,      attn_fwd,  attn_bwd,  adam,      add,       bias_add, bias_grad,
                           embed_fwd,  embed_bwd, pos_fwd,   pos_bwd,   xent_max,  xent_exp,  xent_norm, xent_bwd,
                           moe_route,  moe_place, moe_gather, moe_sort, moe_permute, moe_combine, moe_dy,
                           moe_router_bwd,
                           kernel_error, mem_alloc, mem_free, mem_copy, mem_copy2d, mem_zero, wait_queued,
                           step_begin, ins_begin, ins_end, step_end,  redo_mark};
    *be = &table;
    return 0;
}

void st__xcuda_close(void) {
    if (!g.open) return;
    if (g.tpc) ncclCommDestroy(g.tpc);
    if (g.epc) ncclCommDestroy(g.epc);
    for (int i = 0; i < g.ngcs; i++)
        if (g.gcs[i]) ncclCommDestroy(g.gcs[i]);
    free(g.gcs);
    free(g.gsize);
    if (g.edpc) ncclCommDestroy(g.edpc);
    for (int i = 0; i < g.nch; i++) {
        chan *c = &g.ch[i];
        if (c->c) ncclCommDestroy(c->c);
        if (c->s) cudaStreamDestroy(c->s);
        for (int j = 0; j < c->nbuf; j++) cudaFree(c->bufs[j]);
        free(c->bufs);
        free(c->caps);
        free(c->busy);
    }
    free(g.ch);
    for (int i = 0; i < g.nretired; i++) cudaFree(g.retired[i]);
    free(g.retired);
    if (g.h) g.destroy(g.h);
    for (int i = 0; i < g.nmem; i++) { /* the cached blocks */
        cudaFree(g.mem[i].p);
        marks_free(g.mem[i].m);
        free(g.mem[i].m);
    }
    free(g.mem);
    if (g.buf) cudaFree(g.buf);
    marks_free(&g.bufm);
    for (int i = 0; i < g.npool; i++) cudaEventDestroy(g.pool[i]);
    free(g.pool);
    free(g.ins_a);
    free(g.ins_b);
    free(g.ins_st);
    free(g.reg);
    for (int k = 0; k < ST_STREAMS; k++)
        if (g.st[k]) cudaStreamDestroy(g.st[k]);
    if (g.lib) dlclose(g.lib);
    if (g.liblt) dlclose(g.liblt);
    memset(&g, 0, sizeof g);
}
