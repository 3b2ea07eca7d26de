/* kernels.h: C entry points to the memory-bound kernels of profiler/kernels.cu, which nvcc builds
 * when configure finds it (HAVE_CUDA_KERNELS). Each enqueues one kernel on `stream` (a
 * cudaStream_t) and returns the launch status (a cudaError_t; 0 = success). Tensors are
 * contiguous in device memory; activations are bf16 (__nv_bfloat16), optimizer state fp32. */
#ifndef STRATA_PROF_KERNELS_H
#define STRATA_PROF_KERNELS_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* y[r, :] = (x[r, :] - mean) / sqrt(var + 1e-5) * gamma + beta, rows x cols */
int st__k_layernorm(void *y, const void *x, const float *gamma, const float *beta, int64_t rows, int64_t cols,
                    void *stream);
/* y[r, :] = x[r, :] / sqrt(mean(x^2) + 1e-5) * gamma */
int st__k_rmsnorm(void *y, const void *x, const float *gamma, int64_t rows, int64_t cols, void *stream);
/* y[r, :] = softmax(scale * x[r, :]) with the causal mask of query r % cols (keys after it out) */
int st__k_softmax(void *y, const void *x, int64_t rows, int64_t cols, float scale, void *stream);
/* y = gelu(x) (tanh form), n elements */
int st__k_gelu(void *y, const void *x, int64_t n, void *stream);
/* y[i] = silu(x[i]) * x[n + i]: gate and up halves of a 2n input */
int st__k_swiglu(void *y, const void *x, int64_t n, void *stream);
/* y = a + b */
int st__k_add(void *y, const void *a, const void *b, int64_t n, void *stream);
/* one AdamW step (Loshchilov & Hutter 2019) on fp32 weights p with moments m, v and gradient g;
 * writes the bf16 copy p16, as Megatron-LM's distributed optimizer does */
int st__k_adam(float *p, const float *g, float *m, float *v, void *p16, int64_t n, int step, void *stream);

#ifdef __cplusplus
}
#endif

#endif
