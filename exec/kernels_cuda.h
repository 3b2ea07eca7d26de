/* kernels_cuda.h: C entry points to the cuda backend's own kernels (exec/kernels_cuda.cu, built by
 * nvcc): everything exec/model.c's backend table runs besides the GEMMs, with the semantics of the
 * CPU kernels of exec_private.h of the same names. Every pointer is device memory; each launcher
 * enqueues its kernels on `stream` (a cudaStream_t) and returns the launch's cudaError_t (0:
 * cudaSuccess). Free of CUDA's headers, so that a Check suite can run the host versions. */
#ifndef STRATA_EXEC_KERNELS_CUDA_H
#define STRATA_EXEC_KERNELS_CUDA_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* out[N x OC] = (accumulate ? out : 0) + bias, row by row (a GEMM with bias then adds its product) */
int st__xkc_bias_fill(void *stream, float *out, const float *bias, int64_t N, int64_t OC, int accumulate);
/* dbias[OC] += the column sums of dout [N x OC] */
int st__xkc_col_sum(void *stream, float *dbias, const float *dout, int64_t N, int64_t OC);
/* st__xnorm_fwd, st__xnorm_bwd (b, db NULL: RMSNorm) */
int st__xkc_norm_fwd(void *stream, float *out, float *mean, float *rstd, const float *inp, const float *w,
                     const float *b, int64_t N, int64_t C);
int st__xkc_norm_bwd(void *stream, float *dinp, float *dw, float *db, const float *dout, const float *inp,
                     const float *w, const float *mean, const float *rstd, int64_t N, int64_t C);
/* st__xact_fwd, st__xact_bwd; relu: 1 ReLU, 0 GELU (tanh) */
int st__xkc_act_fwd(void *stream, float *out, const float *inp, int64_t n, int relu);
int st__xkc_act_bwd(void *stream, float *dinp, const float *inp, const float *dout, int64_t n, int relu);
int st__xkc_swiglu_fwd(void *stream, float *out, const float *a, const float *b, int64_t n);
int st__xkc_swiglu_bwd(void *stream, float *da, float *db, const float *a, const float *b, const float *dout,
                       int64_t n);
int st__xkc_rope(void *stream, float *x, int64_t N, int64_t T, int64_t heads, int64_t d, int64_t stride, int sign);
int st__xkc_attn_fwd(void *stream, float *out, float *probs, const float *q, const float *k, const float *v,
                     int64_t B, int64_t T, int64_t hq, int64_t hkv, int64_t d);
/* ds: scratch of B x hq x T x T floats (the softmax's input gradients, between the two kernels) */
int st__xkc_attn_bwd(void *stream, float *dq, float *dk, float *dv, float *ds, const float *dout, const float *probs,
                     const float *q, const float *k, const float *v, int64_t B, int64_t T, int64_t hq, int64_t hkv,
                     int64_t d);
/* st__xadd, st__xembed_*, st__xpos_*, st__xxent_* (tokens: device memory too); st__xbias_add and
 * st__xbias_grad are st__xkc_bias_fill with accumulate 1 and st__xkc_col_sum */
int st__xkc_add(void *stream, float *y, const float *x, int64_t n);
int st__xkc_embed_fwd(void *stream, float *out, const int32_t *tokens, const float *wte, int64_t N, int64_t T,
                      int64_t h, int64_t v0, int64_t V_l);
int st__xkc_embed_bwd(void *stream, float *dwte, const int32_t *tokens, const float *dout, int64_t N, int64_t T,
                      int64_t h, int64_t v0, int64_t V_l);
int st__xkc_pos_fwd(void *stream, float *x, const float *wpe, int64_t S, int64_t T, int64_t h, int64_t r0);
int st__xkc_pos_bwd(void *stream, float *dwpe, const float *dout, int64_t S, int64_t T, int64_t h, int64_t r0);
int st__xkc_xent_max(void *stream, float *mx, const float *logits, int64_t N, int64_t V_l);
int st__xkc_xent_exp(void *stream, float *logits, float *st, const float *mx, const int32_t *tokens, int64_t N,
                     int64_t T, int64_t V_l, int64_t v0);
int st__xkc_xent_norm(void *stream, float *logits, const float *st, int64_t N, int64_t V_l);
int st__xkc_xent_bwd(void *stream, float *p, const int32_t *tokens, float scale, int64_t N, int64_t T, int64_t V_l,
                     int64_t v0);
/* an MoE block's routing, dispatch and combine (exec/moe_kernels.h; st__xbackend's moe_* of the same names) */
int st__xkc_moe_route(void *stream, int32_t *top, float *s, const float *logits, int64_t N, int64_t E, int64_t K);
int st__xkc_moe_place(void *stream, int32_t *cnt, int32_t *order, int32_t *where, const int32_t *top, const float *s,
                      int64_t NK, int64_t E, int64_t cap);
int st__xkc_moe_gather(void *stream, float *send, const float *n2, const int32_t *order, const int32_t *top, int64_t N,
                       int64_t nsend, int64_t K, int64_t h, int64_t El);
int st__xkc_moe_sort(void *stream, float *xin, int32_t *perm, int32_t *first, const float *recv, int64_t R, int64_t h,
                     int64_t El);
int st__xkc_moe_permute(void *stream, float *to, const float *from, const int32_t *perm, int64_t R, int64_t h, int dir);
int st__xkc_moe_combine(void *stream, float *out, const float *y, const float *s, const int32_t *where, int64_t N,
                        int64_t nsend, int64_t K, int64_t h, int acc);
int st__xkc_moe_dy(void *stream, float *dy, float *ds, const float *dout, const float *y, const float *s,
                   const int32_t *order, int64_t N, int64_t nsend, int64_t K, int64_t h);
int st__xkc_moe_router_bwd(void *stream, float *dl, const float *s, const float *ds, const int32_t *top, int64_t N,
                           int64_t E, int64_t K);
int st__xkc_adam(void *stream, float *p, const float *g, float *m, float *v, int64_t n, int t, float lr, float b1,
                 float b2, float eps);

/* The host version of each kernel, by the kernel's name (as nvcc registers it with the runtime,
 * __cudaRegisterFunction's deviceName): run(args, grid, block, on_device) does on the host what a
 * launch of grid x block threads with cudaLaunchKernel's `args` does on a GPU, through the same
 * per-thread code; it first asks on_device about every pointer the kernel reads or writes (with
 * the bytes it touches and whether it may write them: write 1) and returns -1, running nothing, when
 * one is not device memory (on_device 0), else 0.
 * The fake cudart of profiler/mock runs launches so (exec/cuda.c hands it this table). */
typedef struct st__xkc_host {
    const char *name;
    const void *kernel; /* what cudaLaunchKernel gets for it (nvcc's host stub) */
    int (*run)(void **args, unsigned grid, unsigned block, int (*on_device)(const void *p, size_t bytes, int write));
} st__xkc_host;
/* the table (static) and its length in *n */
const st__xkc_host *st__xkc_host_table(int *n);

/* How the launchers launch: cudaLaunchKernel (1-D grid and block, no shared memory) unless a test
 * puts its own here (tests/test_exec_cuda.c runs the host versions so, without CUDA) */
extern int (*st__xkc_launch)(const void *kernel, unsigned grid, unsigned block, void **args, void *stream);

#ifdef __cplusplus
}
#endif

#endif
