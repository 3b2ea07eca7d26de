/* kernels.cu: the memory-bound kernels `strata profile` times (profiler/kernels.h), written the way
 * the fused kernels of Megatron-LM / Apex / Transformer Engine are, so that their bandwidth is what
 * training sees: 16-byte vector loads and stores (8 bf16, 4 fp32) where the sizes allow, fp32
 * arithmetic, one block per row for the row-wise ones (the row is read again from L2 for the
 * second pass), grid-stride loops for the element-wise ones.
 *
 * Sizes are the caller's: the profiler chooses rows x cols so that the bytes moved match an
 * operator of src/core/opgraph.c (profiler/prof.c, st__prof_mem_bytes). The values are random
 * (st__prof_fill), so no kernel sees zeros or infinities. */
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <stdint.h>

#include "kernels.h"

typedef __nv_bfloat16 bf16;

#define THREADS 256
#define MAX_BLOCKS (1 << 20)

static unsigned blocks_for(int64_t work) {
    int64_t b = (work + THREADS - 1) / THREADS;
    if (b < 1) b = 1;
    if (b > MAX_BLOCKS) b = MAX_BLOCKS;
    return (unsigned)b;
}

/* ---------------------------------------------------------------- vectors of 8 bf16 */

__device__ __forceinline__ void load8(const bf16 *p, float *f) {
    uint4 u = *reinterpret_cast<const uint4 *>(p);
    const __nv_bfloat162 *h = reinterpret_cast<const __nv_bfloat162 *>(&u);
#pragma unroll
    for (int i = 0; i < 4; i++) {
        float2 t = __bfloat1622float2(h[i]);
        f[2 * i] = t.x;
        f[2 * i + 1] = t.y;
    }
}

__device__ __forceinline__ void store8(bf16 *p, const float *f) {
    uint4 u;
    __nv_bfloat162 *h = reinterpret_cast<__nv_bfloat162 *>(&u);
#pragma unroll
    for (int i = 0; i < 4; i++)
        h[i] = __floats2bfloat162_rn(f[2 * i], f[2 * i + 1]);
    *reinterpret_cast<uint4 *>(p) = u;
}

/* ---------------------------------------------------------------- block reductions */

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1)
        v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1)
        v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

/* every thread gets the block's sum (or max); sh holds 32 floats */
__device__ float block_sum(float v, float *sh) {
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    v = warp_sum(v);
    __syncthreads(); /* sh may still be read from the previous reduction */
    if (lane == 0) sh[warp] = v;
    __syncthreads();
    v = lane < (int)(blockDim.x >> 5) ? sh[lane] : 0.f;
    return warp_sum(v);
}

__device__ float block_max(float v, float *sh) {
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    v = warp_max(v);
    __syncthreads();
    if (lane == 0) sh[warp] = v;
    __syncthreads();
    v = lane < (int)(blockDim.x >> 5) ? sh[lane] : -INFINITY;
    return warp_max(v);
}

/* ---------------------------------------------------------------- norms */

/* rms = 0: layer norm (mean and variance); rms = 1: RMS norm (no mean, no beta) */
template <int rms> __global__ void k_norm(bf16 *y, const bf16 *x, const float *gamma, const float *beta, int64_t cols) {
    __shared__ float sh[32];
    const bf16 *xr = x + (int64_t)blockIdx.x * cols;
    bf16 *yr = y + (int64_t)blockIdx.x * cols;
    int vec = (cols & 7) == 0;
    float s = 0.f, ss = 0.f, f[8];
    if (vec) {
        for (int64_t i = threadIdx.x * 8; i < cols; i += (int64_t)blockDim.x * 8) {
            load8(xr + i, f);
#pragma unroll
            for (int j = 0; j < 8; j++)
                s += f[j], ss += f[j] * f[j];
        }
    } else {
        for (int64_t i = threadIdx.x; i < cols; i += blockDim.x) {
            float v = __bfloat162float(xr[i]);
            s += v, ss += v * v;
        }
    }
    s = block_sum(s, sh);
    ss = block_sum(ss, sh);
    float mean = rms ? 0.f : s / (float)cols;
    float rstd = rsqrtf(fmaxf(ss / (float)cols - mean * mean, 0.f) + 1e-5f);
    if (vec) {
        for (int64_t i = threadIdx.x * 8; i < cols; i += (int64_t)blockDim.x * 8) {
            load8(xr + i, f);
#pragma unroll
            for (int j = 0; j < 8; j++)
                f[j] = (f[j] - mean) * rstd * gamma[i + j] + (rms ? 0.f : beta[i + j]);
            store8(yr + i, f);
        }
    } else {
        for (int64_t i = threadIdx.x; i < cols; i += blockDim.x) {
            float v = (__bfloat162float(xr[i]) - mean) * rstd * gamma[i] + (rms ? 0.f : beta[i]);
            yr[i] = __float2bfloat16(v);
        }
    }
}

/* ---------------------------------------------------------------- softmax */

__global__ void k_softmax(bf16 *y, const bf16 *x, int64_t cols, float scale) {
    __shared__ float sh[32];
    const bf16 *xr = x + (int64_t)blockIdx.x * cols;
    bf16 *yr = y + (int64_t)blockIdx.x * cols;
    int64_t q = (int64_t)blockIdx.x % cols; /* keys after the query are masked */
    int vec = (cols & 7) == 0;
    float mx = -INFINITY, f[8];
    if (vec) {
        for (int64_t i = threadIdx.x * 8; i < cols; i += (int64_t)blockDim.x * 8) {
            load8(xr + i, f);
#pragma unroll
            for (int j = 0; j < 8; j++)
                if (i + j <= q) mx = fmaxf(mx, f[j] * scale);
        }
    } else {
        for (int64_t i = threadIdx.x; i < cols; i += blockDim.x)
            if (i <= q) mx = fmaxf(mx, __bfloat162float(xr[i]) * scale);
    }
    mx = block_max(mx, sh);
    float sum = 0.f;
    if (vec) {
        for (int64_t i = threadIdx.x * 8; i < cols; i += (int64_t)blockDim.x * 8) {
            load8(xr + i, f);
#pragma unroll
            for (int j = 0; j < 8; j++)
                if (i + j <= q) sum += __expf(f[j] * scale - mx);
        }
    } else {
        for (int64_t i = threadIdx.x; i < cols; i += blockDim.x)
            if (i <= q) sum += __expf(__bfloat162float(xr[i]) * scale - mx);
    }
    float inv = 1.f / block_sum(sum, sh);
    if (vec) {
        for (int64_t i = threadIdx.x * 8; i < cols; i += (int64_t)blockDim.x * 8) {
            load8(xr + i, f);
#pragma unroll
            for (int j = 0; j < 8; j++)
                f[j] = i + j <= q ? __expf(f[j] * scale - mx) * inv : 0.f;
            store8(yr + i, f);
        }
    } else {
        for (int64_t i = threadIdx.x; i < cols; i += blockDim.x)
            yr[i] = __float2bfloat16(i <= q ? __expf(__bfloat162float(xr[i]) * scale - mx) * inv : 0.f);
    }
}

/* ---------------------------------------------------------------- element-wise */

__device__ __forceinline__ float gelu(float v) {
    /* the tanh form Megatron-LM's bias_gelu uses (Hendrycks & Gimpel 2016) */
    return 0.5f * v * (1.f + tanhf(0.7978845608f * (v + 0.044715f * v * v * v)));
}

__device__ __forceinline__ float silu(float v) { return v / (1.f + __expf(-v)); }

__global__ void k_gelu(bf16 *y, const bf16 *x, int64_t n) {
    int64_t n8 = n / 8, stride = (int64_t)gridDim.x * blockDim.x;
    float f[8];
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n8; i += stride) {
        load8(x + 8 * i, f);
#pragma unroll
        for (int j = 0; j < 8; j++)
            f[j] = gelu(f[j]);
        store8(y + 8 * i, f);
    }
    for (int64_t i = 8 * n8 + (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride)
        y[i] = __float2bfloat16(gelu(__bfloat162float(x[i])));
}

__global__ void k_swiglu(bf16 *y, const bf16 *x, int64_t n) {
    int64_t stride = (int64_t)gridDim.x * blockDim.x;
    float a[8], b[8];
    if ((n & 7) == 0) {
        for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n / 8; i += stride) {
            load8(x + 8 * i, a);
            load8(x + n + 8 * i, b);
#pragma unroll
            for (int j = 0; j < 8; j++)
                a[j] = silu(a[j]) * b[j];
            store8(y + 8 * i, a);
        }
    } else {
        for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride)
            y[i] = __float2bfloat16(silu(__bfloat162float(x[i])) * __bfloat162float(x[n + i]));
    }
}

__global__ void k_add(bf16 *y, const bf16 *a, const bf16 *b, int64_t n) {
    int64_t n8 = n / 8, stride = (int64_t)gridDim.x * blockDim.x;
    float fa[8], fb[8];
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n8; i += stride) {
        load8(a + 8 * i, fa);
        load8(b + 8 * i, fb);
#pragma unroll
        for (int j = 0; j < 8; j++)
            fa[j] += fb[j];
        store8(y + 8 * i, fa);
    }
    for (int64_t i = 8 * n8 + (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride)
        y[i] = __float2bfloat16(__bfloat162float(a[i]) + __bfloat162float(b[i]));
}

/* ---------------------------------------------------------------- Adam */

struct adam_hp {
    float lr, b1, b2, eps, wd, c1, c2; /* c1, c2: bias corrections 1 - b^t */
};

__device__ __forceinline__ float adam1(float &p, float g, float &m, float &v, const adam_hp &h) {
    m = h.b1 * m + (1.f - h.b1) * g;
    v = h.b2 * v + (1.f - h.b2) * g * g;
    p -= h.lr * ((m / h.c1) / (sqrtf(v / h.c2) + h.eps) + h.wd * p);
    return p;
}

__global__ void k_adam(float *p, const float *g, float *m, float *v, bf16 *p16, int64_t n, adam_hp h) {
    int64_t n4 = n / 4, stride = (int64_t)gridDim.x * blockDim.x;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n4; i += stride) {
        float4 P = reinterpret_cast<float4 *>(p)[i], G = reinterpret_cast<const float4 *>(g)[i];
        float4 M = reinterpret_cast<float4 *>(m)[i], V = reinterpret_cast<float4 *>(v)[i];
        adam1(P.x, G.x, M.x, V.x, h);
        adam1(P.y, G.y, M.y, V.y, h);
        adam1(P.z, G.z, M.z, V.z, h);
        adam1(P.w, G.w, M.w, V.w, h);
        reinterpret_cast<float4 *>(p)[i] = P;
        reinterpret_cast<float4 *>(m)[i] = M;
        reinterpret_cast<float4 *>(v)[i] = V;
        __nv_bfloat162 lo = __floats2bfloat162_rn(P.x, P.y), hi = __floats2bfloat162_rn(P.z, P.w);
        reinterpret_cast<__nv_bfloat162 *>(p16)[2 * i] = lo;
        reinterpret_cast<__nv_bfloat162 *>(p16)[2 * i + 1] = hi;
    }
    for (int64_t i = 4 * n4 + (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride)
        p16[i] = __float2bfloat16(adam1(p[i], g[i], m[i], v[i], h));
}

/* ---------------------------------------------------------------- C entry points */

extern "C" int st__k_layernorm(void *y, const void *x, const float *gamma, const float *beta, int64_t rows,
                               int64_t cols, void *stream) {
    k_norm<0><<<(unsigned)rows, THREADS, 0, (cudaStream_t)stream>>>((bf16 *)y, (const bf16 *)x, gamma, beta, cols);
    return (int)cudaGetLastError();
}

extern "C" int st__k_rmsnorm(void *y, const void *x, const float *gamma, int64_t rows, int64_t cols, void *stream) {
    k_norm<1><<<(unsigned)rows, THREADS, 0, (cudaStream_t)stream>>>((bf16 *)y, (const bf16 *)x, gamma, gamma, cols);
    return (int)cudaGetLastError();
}

extern "C" int st__k_softmax(void *y, const void *x, int64_t rows, int64_t cols, float scale, void *stream) {
    k_softmax<<<(unsigned)rows, THREADS, 0, (cudaStream_t)stream>>>((bf16 *)y, (const bf16 *)x, cols, scale);
    return (int)cudaGetLastError();
}

extern "C" int st__k_gelu(void *y, const void *x, int64_t n, void *stream) {
    k_gelu<<<blocks_for(n / 8 + 1), THREADS, 0, (cudaStream_t)stream>>>((bf16 *)y, (const bf16 *)x, n);
    return (int)cudaGetLastError();
}

extern "C" int st__k_swiglu(void *y, const void *x, int64_t n, void *stream) {
    k_swiglu<<<blocks_for(n / 8 + 1), THREADS, 0, (cudaStream_t)stream>>>((bf16 *)y, (const bf16 *)x, n);
    return (int)cudaGetLastError();
}

extern "C" int st__k_add(void *y, const void *a, const void *b, int64_t n, void *stream) {
    k_add<<<blocks_for(n / 8 + 1), THREADS, 0, (cudaStream_t)stream>>>((bf16 *)y, (const bf16 *)a, (const bf16 *)b, n);
    return (int)cudaGetLastError();
}

extern "C" int st__k_adam(float *p, const float *g, float *m, float *v, void *p16, int64_t n, int step, void *stream) {
    /* Megatron-LM's defaults for GPT pre-training: lr 1e-4 order, betas (0.9, 0.95), eps 1e-8, wd 0.1 */
    adam_hp h = {1e-4f, 0.9f, 0.95f, 1e-8f, 0.1f, 0, 0};
    h.c1 = 1.f - powf(h.b1, (float)step);
    h.c2 = 1.f - powf(h.b2, (float)step);
    k_adam<<<blocks_for(n / 4 + 1), THREADS, 0, (cudaStream_t)stream>>>(p, g, m, v, (bf16 *)p16, n, h);
    return (int)cudaGetLastError();
}
