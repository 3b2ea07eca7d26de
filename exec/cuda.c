/* cuda.c: the cuda backend of strata run (exec_private.h's st__xbackend; issue 18), its first part:
 * every rank's linear-layer GEMMs on its GPU through cuBLAS in fp32 (cublasSgemm under
 * CUBLAS_DEFAULT_MATH: no TF32, so the numbers compare with the CPU's within fp32 rounding), on one
 * stream per rank, each GEMM timed by CUDA events into st__xkernels_gemm_s (the GEMM share that
 * strata run --compare shows). Each rank takes the GPU of its node-local rank modulo the visible ones
 * (llm.c's multi-GPU setup).
 *
 * What this part does not do yet: the model's tensors stay in host memory, where exec/model.c keeps
 * them, and each GEMM copies its operands into a device staging buffer (grown to the largest GEMM so
 * far) and its result back; the other kernels are the CPU's (exec/kernels.c) and every transfer is
 * the CPU runtime's MPI (exec/cpu.c). So a run's numbers are cuBLAS's GEMMs with the CPU's rest,
 * and its times are not those of a GPU training run. Own kernels (a kernels_cuda.cu), the tensors
 * in a device arena sized from the lowering (st_exec_arena_bytes), a stream per program stream with
 * events between them, and NCCL communicators per program group are the next parts.
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
#include "exec/exec_private.h"

#include <cublas_v2.h>
#include <cuda_runtime_api.h>
#include <dlfcn.h>
#include <mpi.h>
#include <stdio.h>
#include <string.h>

static struct {
    int open, rank, dev; /* the world rank, its GPU */
    cudaStream_t stream;
    cudaEvent_t start, stop;
    void *lib, *liblt;
    cublasHandle_t h;
    __typeof__(cublasCreate_v2) *create;
    __typeof__(cublasDestroy_v2) *destroy;
    __typeof__(cublasSetStream_v2) *set_stream;
    __typeof__(cublasSetMathMode) *set_math;
    __typeof__(cublasSgemm_v2) *sgemm;
    float *buf;     /* the staging buffer on the device */
    size_t cap;     /* its floats */
    char fail[400]; /* the first failure of a kernel, "" while none */
} g;

/* the first failure only: later calls fail because of it */
static int failed(const char *what, const char *why) {
    if (!g.fail[0]) snprintf(g.fail, sizeof g.fail, "rank %d (GPU %d): %s failed: %s", g.rank, g.dev, what, why);
    return -1;
}

static int cuda_ok(cudaError_t e, const char *what) { return e == cudaSuccess ? 0 : failed(what, cudaGetErrorString(e)); }

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

/* room for n floats on the device: the staging buffer, grown (its contents are not kept) */
static float *staging(size_t n) {
    if (n <= g.cap) return g.buf;
    if (g.buf && cuda_ok(cudaFree(g.buf), "cudaFree")) return NULL;
    g.buf = NULL, g.cap = 0;
    if (cuda_ok(cudaMalloc((void **)&g.buf, n * sizeof(float)), "cudaMalloc of the GEMM staging buffer")) return NULL;
    g.cap = n;
    return g.buf;
}

static int to_dev(float *d, const float *h, int64_t n) {
    return cuda_ok(cudaMemcpyAsync(d, h, (size_t)n * sizeof *d, cudaMemcpyHostToDevice, g.stream), "cudaMemcpyAsync");
}

static int to_host(float *h, const float *d, int64_t n) {
    return cuda_ok(cudaMemcpyAsync(h, d, (size_t)n * sizeof *d, cudaMemcpyDeviceToHost, g.stream), "cudaMemcpyAsync");
}

/* c' (m x n, ld m) = beta c' + op(a') op(b') in column-major terms, timed by events */
static int gemm(cublasOperation_t ta, cublasOperation_t tb, int64_t m, int64_t n, int64_t k, const float *a,
                int64_t lda, const float *b, int64_t ldb, float beta, float *c) {
    const float one = 1.0f;
    return cuda_ok(cudaEventRecord(g.start, g.stream), "cudaEventRecord") ||
           blas_ok(g.sgemm(g.h, ta, tb, (int)m, (int)n, (int)k, &one, a, (int)lda, b, (int)ldb, &beta, c, (int)m),
                   "cublasSgemm") ||
           cuda_ok(cudaEventRecord(g.stop, g.stream), "cudaEventRecord");
}

/* waits for the stream and adds the last GEMM's time (from its events) to the GEMM clock */
static int finish(void) {
    float ms = 0;
    if (cuda_ok(cudaStreamSynchronize(g.stream), "cudaStreamSynchronize") ||
        cuda_ok(cudaEventElapsedTime(&ms, g.start, g.stop), "cudaEventElapsedTime"))
        return -1;
    st__xkernels_gemm_s += 1e-3 * ms;
    return 0;
}

static void mm_fwd(float *out, const float *inp, const float *w, const float *bias, int64_t N, int64_t C, int64_t OC,
                   int accumulate) {
    float *dx = g.fail[0] ? NULL : staging((size_t)(N * C + OC * C + N * OC));
    if (!dx) return;
    float *dw = dx + N * C, *dy = dw + OC * C;
    if (bias) { /* as the CPU's: the bias first, then the product added to it */
        for (int64_t n = 0; n < N; n++)
            for (int64_t o = 0; o < OC; o++) out[n * OC + o] = (accumulate ? out[n * OC + o] : 0) + bias[o];
        accumulate = 1;
    }
    if (to_dev(dx, inp, N * C) || to_dev(dw, w, OC * C) || (accumulate && to_dev(dy, out, N * OC)) ||
        gemm(CUBLAS_OP_T, CUBLAS_OP_N, OC, N, C, dw, C, dx, C, accumulate ? 1.0f : 0.0f, dy) ||
        to_host(out, dy, N * OC))
        return;
    finish();
}

static void mm_bwd(float *dinp, float *dw, float *dbias, const float *dout, const float *inp, const float *w, int64_t N,
                   int64_t C, int64_t OC) {
    float *dy = g.fail[0] ? NULL : staging((size_t)(N * OC + 2 * N * C + 2 * OC * C));
    if (!dy) return;
    float *dx = dy + N * OC, *ddx = dx + N * C, *dW = ddx + N * C, *ddw = dW + OC * C;
    if (to_dev(dy, dout, N * OC) || to_dev(dx, inp, N * C) || to_dev(ddw, dw, OC * C)) return;
    if (dinp && (to_dev(dW, w, OC * C) || to_dev(ddx, dinp, N * C) ||
                 gemm(CUBLAS_OP_N, CUBLAS_OP_N, C, N, OC, dW, C, dy, OC, 1.0f, ddx) || finish() ||
                 to_host(dinp, ddx, N * C)))
        return;
    if (gemm(CUBLAS_OP_N, CUBLAS_OP_T, C, OC, N, dx, C, dy, OC, 1.0f, ddw) || to_host(dw, ddw, OC * C) || finish())
        return;
    if (dbias)
        for (int64_t n = 0; n < N; n++)
            for (int64_t o = 0; o < OC; o++) dbias[o] += dout[n * OC + o];
}

static int kernel_error(st_error *err) {
    return g.fail[0] ? st_error_set(err, ST_EIO, NULL, NULL, "the cuda backend: %s", g.fail) : 0;
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
    if ((e = cudaSetDevice(g.dev)) != cudaSuccess || (e = cudaStreamCreateWithFlags(&g.stream, cudaStreamNonBlocking)) ||
        (e = cudaEventCreate(&g.start)) || (e = cudaEventCreate(&g.stop)))
        return st_error_set(err, ST_EINVAL, NULL, NULL, "--backend cuda: GPU %d did not start: %s", g.dev,
                            cudaGetErrorString(e));
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
    g.set_stream(g.h, g.stream);
    g.set_math(g.h, CUBLAS_DEFAULT_MATH); /* fp32 stays fp32 */
    table = st__xbackend_cpu;
    table.name = "cuda", table.mm_fwd = mm_fwd, table.mm_bwd = mm_bwd, table.error = kernel_error;
    *be = &table;
    return 0;
}

void st__xcuda_close(void) {
    if (!g.open) return;
    if (g.h) g.destroy(g.h);
    if (g.buf) cudaFree(g.buf);
    if (g.start) cudaEventDestroy(g.start);
    if (g.stop) cudaEventDestroy(g.stop);
    if (g.stream) cudaStreamDestroy(g.stream);
    if (g.lib) dlclose(g.lib);
    if (g.liblt) dlclose(g.liblt);
    memset(&g, 0, sizeof g);
}
