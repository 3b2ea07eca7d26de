/* cublas.c: a fake cuBLAS and cuBLASLt (one file, built as both libraries) for
 * profiler/mock/run.sh. A GEMM takes 2mnk x batch / rate on the fake GPU's clock: bf16 and fp16
 * 800 TFLOP/s, tf32 400, fp32 50 (1 with MOCK_SLOW32), fp8 1600, strided-batched at half, so a
 * profile that accounts for its FLOPs and times right shows exactly these rates. Leading
 * dimensions and strides that do not fit their matrices abort, and cuBLASLt's heuristic finds
 * nothing for a layout other than fp8's TN with sizes in multiples of 16. cublasSgemm (strata run
 * --backend cuda) also computes its product (column-major, summed in double), so the executor's
 * numbers can be checked against its CPU backend, and aborts on an operand outside the fake
 * device memory (cudart.c's mock_on_device) and tells the fake cudart what it reads and writes on the
 * handle's stream (cublasSetStream; cudart.c's mock_access, which aborts on a race between streams). */
#include <cublasLt.h>
#include <cublas_v2.h>
#include <dlfcn.h>
#include <stdlib.h>

static void work(double flops, double tflops) {
    static void (*f)(double);
    if (!f) f = (void (*)(double))dlsym(RTLD_DEFAULT, "mock_work");
    f(flops / (tflops * 1e12) * 1e3);
}

static double rate(cudaDataType_t t, cublasComputeType_t c) {
    if (t == CUDA_R_16BF || t == CUDA_R_16F) return 800;
    if (c == CUBLAS_COMPUTE_32F_FAST_TF32) return 400;
    return getenv("MOCK_SLOW32") ? 1 : 50;
}

static void check(cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, int lda, int ldb, int ldc) {
    if (lda < (ta == CUBLAS_OP_N ? m : k) || ldb < (tb == CUBLAS_OP_N ? k : n) || ldc < m) abort();
}

/* a handle holds its stream (the NULL stream until cublasSetStream) */
cublasStatus_t cublasCreate_v2(cublasHandle_t *h) {
    *h = calloc(1, sizeof(cudaStream_t));
    return *h ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_ALLOC_FAILED;
}
cublasStatus_t cublasDestroy_v2(cublasHandle_t h) { free(h); return CUBLAS_STATUS_SUCCESS; }
cublasStatus_t cublasSetStream_v2(cublasHandle_t h, cudaStream_t s) {
    *(cudaStream_t *)(void *)h = s;
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSetMathMode(cublasHandle_t h, cublasMath_t m) { return CUBLAS_STATUS_SUCCESS; }
cublasStatus_t cublasGemmEx(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                            const void *al, const void *A, cudaDataType_t at, int lda, const void *B,
                            cudaDataType_t bt, int ldb, const void *be, void *C, cudaDataType_t ct, int ldc,
                            cublasComputeType_t c, cublasGemmAlgo_t algo) {
    check(ta, tb, m, n, k, lda, ldb, ldc);
    work(2.0 * m * n * k, rate(at, c));
    return CUBLAS_STATUS_SUCCESS;
}
/* device memory open to the host while the product is computed (cudart.c's mock_dev_access) */
static void dev_access(int on) {
    static void (*f)(int);
    if (!f) f = (void (*)(int))dlsym(RTLD_DEFAULT, "mock_dev_access");
    f(on);
}
static void on_device(const void *p, size_t floats) {
    static int (*f)(const void *, size_t);
    if (!f) f = (int (*)(const void *, size_t))dlsym(RTLD_DEFAULT, "mock_on_device");
    if (!f(p, floats * sizeof(float))) abort();
}
/* an operand of the GEMM on the handle's stream (cudart.c's mock_access) */
static void stream_access(cublasHandle_t h, const void *p, size_t floats, int write) {
    static void (*f)(cudaStream_t, const void *, size_t, int, const char *);
    if (!f) f = (void (*)(cudaStream_t, const void *, size_t, int, const char *))dlsym(RTLD_DEFAULT, "mock_access");
    if (f) f(*(cudaStream_t *)(void *)h, p, floats * sizeof(float), write, "cublasSgemm");
}

cublasStatus_t cublasSgemm_v2(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                              const float *al, const float *A, int lda, const float *B, int ldb, const float *be,
                              float *C, int ldc) {
    check(ta, tb, m, n, k, lda, ldb, ldc);
    on_device(A, (size_t)lda * (ta == CUBLAS_OP_N ? k : m));
    on_device(B, (size_t)ldb * (tb == CUBLAS_OP_N ? n : k));
    on_device(C, (size_t)ldc * n);
    stream_access(h, A, (size_t)lda * (ta == CUBLAS_OP_N ? k : m), 0);
    stream_access(h, B, (size_t)ldb * (tb == CUBLAS_OP_N ? n : k), 0);
    stream_access(h, C, (size_t)ldc * n, 1);
    dev_access(1);
    for (int j = 0; j < n; j++)
        for (int i = 0; i < m; i++) {
            double s = 0;
            for (int p = 0; p < k; p++)
                s += (double)(ta == CUBLAS_OP_N ? A[i + (size_t)p * lda] : A[p + (size_t)i * lda]) *
                     (tb == CUBLAS_OP_N ? B[p + (size_t)j * ldb] : B[j + (size_t)p * ldb]);
            float *c = &C[i + (size_t)j * ldc];
            *c = (float)(*al * s + (*be != 0 ? (double)*be * *c : 0));
        }
    dev_access(0);
    work(2.0 * m * n * k, rate(CUDA_R_32F, CUBLAS_COMPUTE_32F));
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasGemmStridedBatchedEx(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n,
                                          int k, const void *al, const void *A, cudaDataType_t at, int lda,
                                          long long sa, const void *B, cudaDataType_t bt, int ldb, long long sb,
                                          const void *be, void *C, cudaDataType_t ct, int ldc, long long sc,
                                          int batch, cublasComputeType_t c, cublasGemmAlgo_t algo) {
    check(ta, tb, m, n, k, lda, ldb, ldc);
    if (sa < (long long)lda * (ta == CUBLAS_OP_N ? k : m) || sb < (long long)ldb * (tb == CUBLAS_OP_N ? n : k) ||
        sc < (long long)ldc * n)
        abort();
    work(2.0 * m * n * k * batch, rate(at, c) / 2);
    return CUBLAS_STATUS_SUCCESS;
}

typedef struct layout {
    uint64_t rows, cols;
    int64_t ld;
    int batch;
} layout;
typedef struct desc {
    int ta, tb;
} desc;

cublasStatus_t cublasLtCreate(cublasLtHandle_t *h) { *h = malloc(8); return CUBLAS_STATUS_SUCCESS; }
cublasStatus_t cublasLtDestroy(cublasLtHandle_t h) { free(h); return CUBLAS_STATUS_SUCCESS; }
cublasStatus_t cublasLtMatmulDescCreate(cublasLtMatmulDesc_t *d, cublasComputeType_t c, cudaDataType_t s) {
    *d = calloc(1, sizeof(desc));
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatmulDescDestroy(cublasLtMatmulDesc_t d) { free(d); return CUBLAS_STATUS_SUCCESS; }
cublasStatus_t cublasLtMatmulDescSetAttribute(cublasLtMatmulDesc_t d, cublasLtMatmulDescAttributes_t a,
                                              const void *v, size_t n) {
    if (a == CUBLASLT_MATMUL_DESC_TRANSA) ((desc *)d)->ta = *(const int *)v;
    if (a == CUBLASLT_MATMUL_DESC_TRANSB) ((desc *)d)->tb = *(const int *)v;
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatrixLayoutCreate(cublasLtMatrixLayout_t *l, cudaDataType t, uint64_t r, uint64_t c,
                                          int64_t ld) {
    layout *x = calloc(1, sizeof *x);
    x->rows = r, x->cols = c, x->ld = ld, x->batch = 1;
    *l = (cublasLtMatrixLayout_t)x;
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatrixLayoutDestroy(cublasLtMatrixLayout_t l) { free(l); return CUBLAS_STATUS_SUCCESS; }
cublasStatus_t cublasLtMatrixLayoutSetAttribute(cublasLtMatrixLayout_t l, cublasLtMatrixLayoutAttribute_t a,
                                                const void *v, size_t n) {
    if (a == CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT) ((layout *)l)->batch = *(const int32_t *)v;
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatmulPreferenceCreate(cublasLtMatmulPreference_t *p) { *p = malloc(8); return CUBLAS_STATUS_SUCCESS; }
cublasStatus_t cublasLtMatmulPreferenceDestroy(cublasLtMatmulPreference_t p) { free(p); return CUBLAS_STATUS_SUCCESS; }
cublasStatus_t cublasLtMatmulPreferenceSetAttribute(cublasLtMatmulPreference_t p,
                                                    cublasLtMatmulPreferenceAttributes_t a, const void *v, size_t n) {
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatmulAlgoGetHeuristic(cublasLtHandle_t h, cublasLtMatmulDesc_t d, cublasLtMatrixLayout_t A,
                                              cublasLtMatrixLayout_t B, cublasLtMatrixLayout_t C,
                                              cublasLtMatrixLayout_t D, cublasLtMatmulPreference_t p, int req,
                                              cublasLtMatmulHeuristicResult_t *r, int *found) {
    const desc *x = (const desc *)d;
    const layout *a = (const layout *)A, *b = (const layout *)B, *c = (const layout *)C;
    *found = x->ta == CUBLAS_OP_T && x->tb == CUBLAS_OP_N && a->rows == b->rows && a->cols == c->rows &&
             b->cols == c->cols && a->ld >= (int64_t)a->rows && c->ld >= (int64_t)c->rows && a->rows % 16 == 0 &&
             a->cols % 16 == 0 && b->cols % 16 == 0 && a->batch == b->batch && b->batch == c->batch;
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatmul(cublasLtHandle_t h, cublasLtMatmulDesc_t d, const void *al, const void *A,
                              cublasLtMatrixLayout_t Ad, const void *B, cublasLtMatrixLayout_t Bd, const void *be,
                              const void *C, cublasLtMatrixLayout_t Cd, void *D, cublasLtMatrixLayout_t Dd,
                              const cublasLtMatmulAlgo_t *algo, void *ws, size_t wss, cudaStream_t s) {
    const layout *a = (const layout *)Ad, *c = (const layout *)Cd;
    work(2.0 * (double)a->rows * (double)c->rows * (double)c->cols * a->batch, 1600);
    return CUBLAS_STATUS_SUCCESS;
}
