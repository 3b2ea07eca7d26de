/* cudart.c: a fake libcudart for profiler/mock/run.sh: GPUs that do no work on a simulated clock.
 * Device memory is pages the host cannot touch outside the fakes' calls (MOCK_MEM_GB of it, default
 * 1; mock_dev_access below), kernels and copies advance the
 * clock (a copy at 25 GB/s, a GEMM as mock_work says), events read the clock of the current
 * device, and every launch or copy is reported to the fake CUPTI (cupti.c) when that is loaded.
 * The live cudaMalloc blocks are recorded (mock_on_device), so that a copy whose direction does not
 * match its pointers, or a fake cuBLAS call on host memory, aborts: a program that passes the fakes
 * passes device pointers where a GPU needs them. A launched kernel that has a host version (exec/cuda.c
 * hands over exec/kernels_cuda.cu's table, mock_cuda_host_kernels) runs it, after checking that its
 * pointers lie in live blocks (else abort): strata run's kernels compute under the fakes; the others
 * (the profiler's) only take time.
 * cudaMemGetInfo says MOCK_MEM_GB less the live blocks are free.
 * Ordering between streams (exec/cuda.c runs each program stream on a CUDA stream of its own): every
 * stream keeps a vector clock (one entry per stream of the process, the NULL stream's too), ticked by
 * each operation it is given; cudaEventRecord copies the stream's clock into the event,
 * cudaStreamWaitEvent joins the event's into the stream's, and the host keeps a clock of what it saw
 * finish (cudaStreamSynchronize, a cudaStreamQuery that says done, cudaEventSynchronize,
 * cudaDeviceSynchronize, cudaFree, a synchronous cudaMemcpy), joined into a stream's whenever the host
 * gives it work. Every device byte range an operation touches (mock_access: a copy's and a memset's
 * bytes, a kernel's spans as its host version names them, written or read, the fake cuBLAS's and
 * NCCL's operands) is checked against the last write of those bytes and the reads since by other
 * streams: a write and any other access of one byte from two streams with no happens-before between
 * them (the clocks) abort with a line naming both, as the GPU could run them in either order or at
 * once. Reads of one byte by two streams need no order. The fakes run every operation at once on the
 * host, so the numbers cannot show such a race; this check does.
 * The bytes copied host to device and device to host (cudaMemcpy, cudaMemcpy2DAsync, cudaMemcpyAsync) are
 * counted and, where MOCK_COPY_LOG names a file, appended to it at the process's exit as one line "h2d d2h"
 * (tests/cli_run_cuda.sh: what an MoE step still moves through the host).
 * Environment: MOCK_NDEV (GPUs, default 2), MOCK_NAME (cudaDeviceProp.name), MOCK_MEM_GB, MOCK_COPY_LOG. */
#include <cuda_runtime_api.h>
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static double clk_ms, dev_ms[64]; /* the shared clock; collectives run on per-device clocks */
static int cur;
static size_t limit = (size_t)1 << 30;

__attribute__((constructor)) static void init(void) {
    const char *e = getenv("MOCK_MEM_GB");
    if (e) limit = (size_t)(atof(e) * 1073741824.0);
}

static unsigned long long h2d_bytes, d2h_bytes; /* the copies' bytes across (MOCK_COPY_LOG) */

__attribute__((destructor)) static void copy_log(void) {
    const char *p = getenv("MOCK_COPY_LOG");
    FILE *f = p && *p ? fopen(p, "a") : NULL;
    if (!f) return;
    fprintf(f, "%llu %llu\n", h2d_bytes, d2h_bytes);
    fclose(f);
}

static double now(void) { return dev_ms[cur] > clk_ms ? dev_ms[cur] : clk_ms; }

static void activity(int kind, int dev, double start, double end) {
    static void (*f)(int, int, double, double);
    if (!f) f = (void (*)(int, int, double, double))dlsym(RTLD_DEFAULT, "mock_cupti_activity");
    if (f) f(kind, dev, start, end);
}

/* a kernel of `ms` on the current stream: 4 us of launch gap that CUPTI does not count */
void mock_work(double ms) {
    double t0 = clk_ms;
    clk_ms += ms + 0.004;
    activity(10 /* CONCURRENT_KERNEL */, 0, t0 + 0.004, clk_ms);
}

/* a kernel on device `dev` of a collective: each device on its own clock */
void mock_work_dev(int dev, double ms) {
    double t0 = dev_ms[dev] > clk_ms ? dev_ms[dev] : clk_ms;
    dev_ms[dev] = t0 + ms + 0.004;
    activity(10, dev, t0 + 0.004, dev_ms[dev]);
}

cudaError_t cudaGetDeviceCount(int *n) {
    const char *v = getenv("CUDA_VISIBLE_DEVICES"), *e = getenv("MOCK_NDEV");
    if (v && (!*v || *v == '-')) return cudaErrorNoDevice; /* as the real runtime with every GPU hidden */
    *n = e ? atoi(e) : 2;
    return cudaSuccess;
}
cudaError_t cudaGetDeviceProperties(struct cudaDeviceProp *p, int d) {
    const char *e = getenv("MOCK_NAME");
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "%s", e ? e : "NVIDIA H100 80GB HBM3");
    p->major = 9, p->minor = 0;
    return cudaSuccess;
}
cudaError_t cudaGetDeviceProperties_v2(struct cudaDeviceProp *p, int d) { return cudaGetDeviceProperties(p, d); }
cudaError_t cudaRuntimeGetVersion(int *v) { *v = CUDART_VERSION; return cudaSuccess; }
cudaError_t cudaDriverGetVersion(int *v) { *v = CUDART_VERSION; return cudaSuccess; }
const char *cudaGetErrorString(cudaError_t e) {
    return e == cudaErrorNoDevice ? "no CUDA-capable device is detected" : e ? "mock error" : "no error";
}
const char *cudaGetErrorName(cudaError_t e) { return "mock"; }
cudaError_t cudaGetLastError(void) { return cudaSuccess; }
cudaError_t cudaPeekAtLastError(void) { return cudaSuccess; }
cudaError_t cudaSetDevice(int d) { cur = d; return cudaSuccess; }
cudaError_t cudaGetDevice(int *d) { *d = cur; return cudaSuccess; }
/* Streams: everything here runs at once on the host, except the sends and receives of the fake NCCL
 * of exec/mock (when loaded), which it leaves in flight on their stream: the stream's later work
 * (a copy, a kernel, an event, a synchronize) first waits for them (mock_nccl_drain(stream, 1)),
 * what syncs the whole device (cudaDeviceSynchronize, cudaFree) for every stream's, and
 * cudaStreamQuery says whether they are done; so a program that reads a receive's buffer before
 * its stream says so, or frees memory while its peer waits for its send, fails or hangs here too. */
static int drain(cudaStream_t s, int wait) {
    static int (*f)(cudaStream_t, int);
    static int looked;
    if (!looked) f = (int (*)(cudaStream_t, int))dlsym(RTLD_DEFAULT, "mock_nccl_drain"), looked = 1;
    return f ? f(s, wait) : 1;
}
/* ---------------------------------------------------------------- happens-before between streams */
#define MAXS 64 /* streams of a process the clocks tell apart (the NULL stream is 0); more abort */
typedef unsigned vclock[MAXS];
struct CUstream_st {
    int id;
};
static vclock sclk[MAXS], host; /* each stream's clock, the host's */
static int nstreams = 1;        /* ids given (0: the NULL stream) */
struct CUevent_st {
    double t; /* the fake clock when recorded */
    int recorded;
    vclock vc;
};
static int sid(cudaStream_t s) { return s ? s->id : 0; }
static void join(unsigned *to, const unsigned *from) {
    for (int i = 0; i < MAXS; i++)
        if (from[i] > to[i]) to[i] = from[i];
}
/* the host saw stream s's work so far finish (s NULL with all: every stream's) */
static void host_saw(cudaStream_t s, int all) {
    if (all)
        for (int i = 0; i < nstreams; i++) join(host, sclk[i]);
    else join(host, sclk[sid(s)]);
}
/* an operation on s: after what the host saw, after the stream's earlier work (its tick) */
static unsigned tick(cudaStream_t s) {
    int i = sid(s);
    join(sclk[i], host);
    return ++sclk[i][i];
}

/* What happened last to a range of a block: its last write (stream w at tick wc; w -1: none since it
 * was allocated) and the reads since, per stream (the latest tick; 0: none). Kept as sorted segments
 * of each block, split and merged as accesses come. */
typedef struct seg {
    size_t lo, hi; /* bytes from the block's start */
    int w;
    unsigned wc;
    const char *wwhat;
    unsigned rc[MAXS];
    const char *rwhat[MAXS];
} seg;

cudaError_t cudaStreamCreateWithFlags(cudaStream_t *s, unsigned f) {
    if (nstreams == MAXS) {
        fprintf(stderr, "mock cudart: more than %d streams\n", MAXS - 1);
        abort();
    }
    if (!(*s = malloc(sizeof **s))) return cudaErrorMemoryAllocation;
    (*s)->id = nstreams++; /* (ids are not reused: a destroyed stream's clock stays as the others know it) */
    return cudaSuccess;
}
cudaError_t cudaStreamCreate(cudaStream_t *s) { return cudaStreamCreateWithFlags(s, 0); }
cudaError_t cudaStreamDestroy(cudaStream_t s) { drain(s, 1); free(s); return cudaSuccess; }
cudaError_t cudaStreamSynchronize(cudaStream_t s) { drain(s, 1); host_saw(s, 0); return cudaSuccess; }
cudaError_t cudaStreamQuery(cudaStream_t s) {
    if (!drain(s, 0)) return cudaErrorNotReady;
    host_saw(s, 0);
    return cudaSuccess;
}
cudaError_t cudaDeviceSynchronize(void) { drain(NULL, 1); host_saw(NULL, 1); return cudaSuccess; }
/* the live device blocks (the profiler holds a few dozen at once, strata run one) */
static struct {
    char *p;
    size_t n;
    seg *segs; /* its access history (owned) */
    int nsegs;
} blocks[4096];
static int nblocks;

static void race(const char *what, int s, unsigned c, const char *other, int os, unsigned oc, int write, int owrite,
                 const void *p, size_t n) {
    fprintf(stderr,
            "mock cudart: a race on device memory [%p, +%zu): %s (%s on stream %d, its operation %u) and %s (%s on "
            "stream %d, its operation %u) with no ordering between them (an event, a stream's order, a host wait)\n",
            p, n, what, write ? "writes" : "reads", s, c, other ? other : "?", owrite ? "writes" : "reads", os, oc);
    abort();
}

/* block b's segment that starts at off (split there if one spans it); its index */
static int split(int b, size_t off) {
    int i = 0;
    while (i < blocks[b].nsegs && blocks[b].segs[i].hi <= off) i++;
    if (i == blocks[b].nsegs || blocks[b].segs[i].lo == off) return i;
    seg *m = realloc(blocks[b].segs, (size_t)(blocks[b].nsegs + 1) * sizeof *m);
    if (!m) abort();
    blocks[b].segs = m;
    memmove(&m[i + 1], &m[i], (size_t)(blocks[b].nsegs - i) * sizeof *m);
    blocks[b].nsegs++;
    m[i].hi = off, m[i + 1].lo = off;
    return i + 1;
}

/* Operation `what` on stream s touches [p, p + n) of the device (write: it may write it): aborts
 * when an earlier access by another stream is not ordered before it and one of the two writes. Host
 * memory is not followed (its pointers lie in no block). */
void mock_access(cudaStream_t s, const void *p, size_t n, int write, const char *what) {
    int b = 0, id = sid(s);
    while (b < nblocks && !((const char *)p >= blocks[b].p && (const char *)p < blocks[b].p + blocks[b].n)) b++;
    if (b == nblocks || n == 0) return;
    size_t lo = (size_t)((const char *)p - blocks[b].p), hi = lo + n > blocks[b].n ? blocks[b].n : lo + n;
    unsigned c = tick(s), *vc = sclk[id];
    int i = split(b, lo), j = split(b, hi);
    for (int k = i; k < j; k++) {
        seg *g = &blocks[b].segs[k];
        if (g->w >= 0 && g->w != id && vc[g->w] < g->wc) race(what, id, c, g->wwhat, g->w, g->wc, write, 1, p, n);
        for (int r = 0; write && r < nstreams; r++)
            if (r != id && g->rc[r] > vc[r]) race(what, id, c, g->rwhat[r], r, g->rc[r], 1, 0, p, n);
        if (write) {
            memset(g->rc, 0, sizeof g->rc);
            g->w = id, g->wc = c, g->wwhat = what;
        } else g->rc[id] = c, g->rwhat[id] = what;
    }
    /* neighbours alike merged: the list stays as long as the distinct histories */
    for (int k = (i > 0 ? i - 1 : 0); k + 1 < blocks[b].nsegs && k <= j;) {
        seg *x = &blocks[b].segs[k], *y = x + 1;
        if (x->w == y->w && x->wc == y->wc && !memcmp(x->rc, y->rc, sizeof x->rc)) {
            x->hi = y->hi;
            memmove(y, y + 1, (size_t)(blocks[b].nsegs - k - 2) * sizeof *y);
            blocks[b].nsegs--, j--;
        } else k++;
    }
}

/* 1 when [p, p + n) lies in one live cudaMalloc block */
int mock_on_device(const void *p, size_t n) {
    for (int i = 0; i < nblocks; i++)
        if ((const char *)p >= blocks[i].p && (const char *)p + n <= blocks[i].p + blocks[i].n) return 1;
    return 0;
}

/* Device memory is pages of its own that the host cannot touch (PROT_NONE) except inside the fakes'
 * own calls (a copy, a kernel's host version, the fake cuBLAS's and NCCL's work), which open it
 * with mock_dev_access(1) and close it after: a program that reads or writes a device pointer on
 * the host dies of SIGSEGV here, as it would fault (or read garbage) on a GPU. */
static size_t pages(size_t n) {
    size_t pg = (size_t)sysconf(_SC_PAGESIZE);
    return (n ? n + pg - 1 : pg) / pg * pg;
}
void mock_dev_access(int on) {
    static int depth;
    if (on ? depth++ : --depth) return; /* nested: the outermost call opens and closes */
    for (int i = 0; i < nblocks; i++) mprotect(blocks[i].p, pages(blocks[i].n), on ? PROT_READ | PROT_WRITE : PROT_NONE);
}
cudaError_t cudaMalloc(void **p, size_t n) {
    void *m = n > limit || nblocks == (int)(sizeof blocks / sizeof blocks[0])
                  ? MAP_FAILED
                  : mmap(NULL, pages(n), PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    *p = m == MAP_FAILED ? NULL : m;
    seg *g = *p ? calloc(1, sizeof *g) : NULL;
    if (*p && !g) munmap(m, pages(n)), *p = NULL;
    if (g) g->lo = 0, g->hi = n, g->w = -1;
    if (*p) blocks[nblocks].p = *p, blocks[nblocks].n = n, blocks[nblocks].segs = g, blocks[nblocks++].nsegs = 1;
    return *p ? cudaSuccess : cudaErrorMemoryAllocation;
}
cudaError_t cudaFree(void *p) {
    drain(NULL, 1);
    host_saw(NULL, 1); /* cudaFree synchronizes the device */
    for (int i = 0; i < nblocks; i++)
        if (blocks[i].p == p) {
            munmap(p, pages(blocks[i].n));
            free(blocks[i].segs);
            blocks[i] = blocks[--nblocks];
            break;
        }
    return cudaSuccess;
}
cudaError_t cudaMallocHost(void **p, size_t n) { *p = malloc(n); return *p ? cudaSuccess : cudaErrorMemoryAllocation; }
cudaError_t cudaFreeHost(void *p) { free(p); return cudaSuccess; }
cudaError_t cudaMemcpy(void *d, const void *s, size_t n, enum cudaMemcpyKind k) {
    mock_access(NULL, s, n, 0, "cudaMemcpy"), mock_access(NULL, d, n, 1, "cudaMemcpy");
    host_saw(NULL, 0); /* synchronous */
    if (mock_on_device(d, n) != mock_on_device(s, n)) *(mock_on_device(d, n) ? &h2d_bytes : &d2h_bytes) += n;
    mock_dev_access(1);
    memmove(d, s, n);
    mock_dev_access(0);
    return cudaSuccess;
}
/* rows of w bytes at pitches dp and sp, after the stream's earlier work; aborts where the pointers do
 * not match the direction (the spans the rows cover on each side) */
cudaError_t cudaMemcpy2DAsync(void *d, size_t dp, const void *s, size_t sp, size_t w, size_t h,
                              enum cudaMemcpyKind k, cudaStream_t st) {
    size_t dn = h ? (h - 1) * dp + w : 0, sn = h ? (h - 1) * sp + w : 0;
    drain(st, 1);
    if ((k == cudaMemcpyHostToDevice && (!mock_on_device(d, dn) || mock_on_device(s, sn))) ||
        (k == cudaMemcpyDeviceToHost && (mock_on_device(d, dn) || !mock_on_device(s, sn))) ||
        (k == cudaMemcpyDeviceToDevice && (!mock_on_device(d, dn) || !mock_on_device(s, sn))))
        abort();
    if (k == cudaMemcpyHostToDevice) h2d_bytes += w * h;
    if (k == cudaMemcpyDeviceToHost) d2h_bytes += w * h;
    mock_access(st, s, sn, 0, "a copy (cudaMemcpyAsync)"), mock_access(st, d, dn, 1, "a copy (cudaMemcpyAsync)");
    mock_dev_access(1);
    for (size_t r = 0; r < h; r++) memmove((char *)d + r * dp, (const char *)s + r * sp, w);
    mock_dev_access(0);
    double t0 = clk_ms;
    clk_ms += 0.005 + (double)(w * h) / 25e6;
    activity(1 /* MEMCPY */, 0, t0 + 0.002, clk_ms);
    return cudaSuccess;
}
cudaError_t cudaMemcpyAsync(void *d, const void *s, size_t n, enum cudaMemcpyKind k, cudaStream_t st) {
    return cudaMemcpy2DAsync(d, n, s, n, n, 1, k, st); /* one row */
}
/* as a kernel: on a live block only (else abort), after the stream's work before it */
cudaError_t cudaMemsetAsync(void *p, int v, size_t n, cudaStream_t st) {
    drain(st, 1);
    if (!mock_on_device(p, n)) abort();
    mock_access(st, p, n, 1, "cudaMemsetAsync");
    mock_dev_access(1);
    memset(p, v, n);
    mock_dev_access(0);
    double t0 = clk_ms;
    clk_ms += 0.005 + n / 1e9; /* 1 TB/s: an HBM's order of magnitude (the fakes' rates are made up) */
    activity(10 /* CONCURRENT_KERNEL */, 0, t0 + 0.004, clk_ms);
    return cudaSuccess;
}
/* free: the memory less the live blocks (as a driver says it, without a context of its own) */
cudaError_t cudaMemGetInfo(size_t *f, size_t *t) {
    size_t used = 0;
    for (int i = 0; i < nblocks; i++) used += blocks[i].n;
    *t = limit, *f = used < limit ? limit - used : 0;
    return cudaSuccess;
}
cudaError_t cudaEventCreate(cudaEvent_t *e) { *e = calloc(1, sizeof **e); return *e ? cudaSuccess : cudaErrorMemoryAllocation; }
cudaError_t cudaEventCreateWithFlags(cudaEvent_t *e, unsigned f) { return cudaEventCreate(e); }
cudaError_t cudaEventDestroy(cudaEvent_t e) { free(e); return cudaSuccess; }
/* the stream's work so far (its clock) in the event */
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t s) {
    drain(s, 1);
    tick(s);
    e->t = now(), e->recorded = 1;
    memcpy(e->vc, sclk[sid(s)], sizeof e->vc);
    return cudaSuccess;
}
/* s's later work after the event's (an event never recorded: nothing to wait for, as CUDA) */
cudaError_t cudaStreamWaitEvent(cudaStream_t s, cudaEvent_t e, unsigned f) {
    if (e->recorded) join(sclk[sid(s)], e->vc);
    return cudaSuccess;
}
cudaError_t cudaEventSynchronize(cudaEvent_t e) {
    join(host, e->vc);
    return cudaSuccess;
}
cudaError_t cudaEventQuery(cudaEvent_t e) { return cudaEventSynchronize(e); }
cudaError_t cudaEventElapsedTime(float *ms, cudaEvent_t a, cudaEvent_t b) {
    if (!a->recorded || !b->recorded) return cudaErrorInvalidResourceHandle;
    *ms = (float)(b->t - a->t);
    return cudaSuccess;
}
/* the kernels nvcc registered (host stub -> name) and the host versions by name */
static struct {
    const void *stub;
    const char *name;
} kernels[256];
static int nkernels;
typedef struct { /* exec/kernels_cuda.h's st__xkc_host */
    const char *name;
    const void *kernel;
    int (*run)(void **args, unsigned grid, unsigned block, int (*on_device)(const void *p, size_t bytes, int write));
} host_kernel;
static const host_kernel *hosts;
static int nhosts;

/* MOCK_NO_HOST_KERNELS: launches only take time (tests/cli_run_cuda.sh: then the numbers are wrong) */
void mock_cuda_host_kernels(const host_kernel *t, int n) {
    if (!getenv("MOCK_NO_HOST_KERNELS")) hosts = t, nhosts = n;
}

static const host_kernel *host_of(const void *f) {
    for (int i = 0; i < nkernels; i++)
        if (kernels[i].stub == f)
            for (int j = 0; j < nhosts; j++)
                if (!strcmp(hosts[j].name, kernels[i].name)) return &hosts[j];
    return NULL;
}

/* the running kernel's spans: on the device, each an access of its stream */
static cudaStream_t launch_stream;
static const char *launch_name;
static int launch_span(const void *p, size_t bytes, int write) {
    if (!mock_on_device(p, bytes)) return 0;
    mock_access(launch_stream, p, bytes, write, launch_name);
    return 1;
}

/* profiler/kernels.cu: 10 us + 1 ns per block; a kernel with a host version runs it first */
cudaError_t cudaLaunchKernel(const void *f, dim3 g, dim3 b, void **a, size_t sh, cudaStream_t s) {
    const host_kernel *h = host_of(f);
    drain(s, 1);
    launch_stream = s, launch_name = h ? h->name : "a kernel";
    mock_dev_access(1);
    if (h && (g.y != 1 || g.z != 1 || b.y != 1 || b.z != 1 || h->run(a, g.x, b.x, launch_span))) abort();
    mock_dev_access(0);
    double t0 = clk_ms;
    clk_ms += 0.01 + 1e-6 * g.x;
    activity(10, 0, t0 + 0.004, clk_ms);
    return cudaSuccess;
}
/* what nvcc's host stubs call */
void **__cudaRegisterFatBinary(void *f) { static void *h; return &h; }
void __cudaRegisterFatBinaryEnd(void **h) {}
void __cudaUnregisterFatBinary(void **h) {}
void __cudaRegisterFunction(void **h, const char *a, char *b, const char *c, int d, void *e, void *f, void *g, void *i,
                            int *j) {
    if (nkernels < (int)(sizeof kernels / sizeof kernels[0])) kernels[nkernels].stub = a, kernels[nkernels++].name = c;
}
static dim3 grid, blk;
unsigned __cudaPushCallConfiguration(dim3 g, dim3 b, size_t sh, void *st) { grid = g, blk = b; return 0; }
cudaError_t __cudaPopCallConfiguration(dim3 *g, dim3 *b, size_t *sh, void *st) {
    *g = grid, *b = blk, *sh = 0;
    return cudaSuccess;
}
cudaError_t __cudaLaunchKernel(const void *f, dim3 g, dim3 b, void **a, size_t sh, cudaStream_t s) {
    return cudaLaunchKernel(f, g, b, a, sh, s);
}
cudaError_t __cudaGetKernel(void **k, const void *f) { *k = (void *)f; return cudaSuccess; }
