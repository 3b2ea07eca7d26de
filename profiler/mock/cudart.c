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
 * Environment: MOCK_NDEV (GPUs, default 2), MOCK_NAME (cudaDeviceProp.name), MOCK_MEM_GB. */
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
cudaError_t cudaStreamCreateWithFlags(cudaStream_t *s, unsigned f) { *s = malloc(8); return cudaSuccess; }
cudaError_t cudaStreamDestroy(cudaStream_t s) { drain(s, 1); free(s); return cudaSuccess; }
cudaError_t cudaStreamSynchronize(cudaStream_t s) { drain(s, 1); return cudaSuccess; }
cudaError_t cudaStreamQuery(cudaStream_t s) { return drain(s, 0) ? cudaSuccess : cudaErrorNotReady; }
cudaError_t cudaDeviceSynchronize(void) { drain(NULL, 1); return cudaSuccess; }
/* the live device blocks (the profiler holds a few dozen at once, strata run one) */
static struct {
    char *p;
    size_t n;
} blocks[4096];
static int nblocks;

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
    if (*p) blocks[nblocks].p = *p, blocks[nblocks++].n = n;
    return *p ? cudaSuccess : cudaErrorMemoryAllocation;
}
cudaError_t cudaFree(void *p) {
    drain(NULL, 1);
    for (int i = 0; i < nblocks; i++)
        if (blocks[i].p == p) {
            munmap(p, pages(blocks[i].n));
            blocks[i] = blocks[--nblocks];
            break;
        }
    return cudaSuccess;
}
cudaError_t cudaMallocHost(void **p, size_t n) { *p = malloc(n); return *p ? cudaSuccess : cudaErrorMemoryAllocation; }
cudaError_t cudaFreeHost(void *p) { free(p); return cudaSuccess; }
cudaError_t cudaMemcpy(void *d, const void *s, size_t n, enum cudaMemcpyKind k) {
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
cudaError_t cudaEventCreate(cudaEvent_t *e) { *e = calloc(1, sizeof(double)); return cudaSuccess; }
cudaError_t cudaEventDestroy(cudaEvent_t e) { free(e); return cudaSuccess; }
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t s) { drain(s, 1); *(double *)e = now(); return cudaSuccess; }
cudaError_t cudaEventElapsedTime(float *ms, cudaEvent_t a, cudaEvent_t b) {
    *ms = (float)(*(double *)b - *(double *)a);
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
    int (*run)(void **args, unsigned grid, unsigned block, int (*on_device)(const void *p, size_t bytes));
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

/* profiler/kernels.cu: 10 us + 1 ns per block; a kernel with a host version runs it first */
cudaError_t cudaLaunchKernel(const void *f, dim3 g, dim3 b, void **a, size_t sh, cudaStream_t s) {
    const host_kernel *h = host_of(f);
    drain(s, 1);
    mock_dev_access(1);
    if (h && (g.y != 1 || g.z != 1 || b.y != 1 || b.z != 1 || h->run(a, g.x, b.x, mock_on_device))) abort();
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
