/* exec_private.h: the CPU executor's insides (exec/kernels.c, exec/model.c, exec/cpu.c), shared by
 * its files and its tests only. Built when configure found MPI and a CBLAS.
 *
 * Layout (llm.c's): a weight W of a linear layer is row-major [out x in] and y = x W^T; activations
 * are row-major [N x C] with N = B*T tokens of a micro-batch. Every fp32 kernel has a plain C
 * reference; the GEMMs also a BLAS one (st__xmm_*), chosen by st__xkernels_reference. */
#ifndef STRATA_EXEC_PRIVATE_H
#define STRATA_EXEC_PRIVATE_H

#include "src/core/core.h"

#include <stdint.h>

/* ---------------------------------------------------------------- kernels (exec/kernels.c) */

/* 1: the matmuls below run the plain C loops instead of BLAS (tests, --reference-kernels) */
extern int st__xkernels_reference;
/* seconds spent in st__xmm_fwd and st__xmm_bwd so far (strata run --compare's GEMM share) */
extern double st__xkernels_gemm_s;
/* bytes this process has allocated and not freed (glibc's mallinfo2: heap in use plus mmapped
 * blocks; 0 where the C library cannot say): the executor's allocations, sampled by exec/cpu.c */
double st__xheap_bytes(void);
/* the BLAS's threads per process (OpenBLAS's openblas_set_num_threads where configure found it) */
void st__xkernels_threads(int n);

/* out[N x OC] (+)= inp[N x C] W[OC x C]^T (+ bias[OC] when non-NULL); accumulate: add to out */
void st__xmm_fwd(float *out, const float *inp, const float *w, const float *bias, int64_t N, int64_t C, int64_t OC,
                 int accumulate);
/* dinp[N x C] += dout[N x OC] W; dw[OC x C] += dout^T inp; dbias[OC] += column sums of dout (when non-NULL) */
void st__xmm_bwd(float *dinp, float *dw, float *dbias, const float *dout, const float *inp, const float *w, int64_t N,
                 int64_t C, int64_t OC);
/* the same two, always the plain C loops (the oracle of the BLAS ones) */
void st__xmm_fwd_ref(float *out, const float *inp, const float *w, const float *bias, int64_t N, int64_t C,
                     int64_t OC, int accumulate);
void st__xmm_bwd_ref(float *dinp, float *dw, float *dbias, const float *dout, const float *inp, const float *w,
                     int64_t N, int64_t C, int64_t OC);

/* LayerNorm (bias non-NULL) or RMSNorm (bias NULL) over rows of C; saves rstd (and mean) per row */
void st__xnorm_fwd(float *out, float *mean, float *rstd, const float *inp, const float *w, const float *b, int64_t N,
                   int64_t C);
/* dinp += d/dinp; dw, db += (db NULL for RMSNorm; mean unused then) */
void st__xnorm_bwd(float *dinp, float *dw, float *db, const float *dout, const float *inp, const float *w,
                   const float *mean, const float *rstd, int64_t N, int64_t C);

typedef enum { ST__XACT_GELU, ST__XACT_RELU } st__xact;
void st__xact_fwd(float *out, const float *inp, int64_t n, st__xact a);
void st__xact_bwd(float *dinp, const float *inp, const float *dout, int64_t n, st__xact a); /* dinp = */
/* SwiGLU: out = silu(a) * b; da, db = */
void st__xswiglu_fwd(float *out, const float *a, const float *b, int64_t n);
void st__xswiglu_bwd(float *da, float *db, const float *a, const float *b, const float *dout, int64_t n);

/* Rotary embedding (Su et al. 2021; the half-split pairing of HF Llama) of `heads` heads of d in
 * rows of `stride` floats, position = row % T, base 10000; sign -1 rotates back (the backward). */
void st__xrope(float *x, int64_t N, int64_t T, int64_t heads, int64_t d, int64_t stride, int sign);

/* Causal attention of B sequences of T tokens: q [N x hq*d], k and v [N x hkv*d] (head j of q reads
 * kv head j / (hq / hkv)); out [N x hq*d]; probs [B x hq x T x T] saved for the backward. */
void st__xattn_fwd(float *out, float *probs, const float *q, const float *k, const float *v, int64_t B, int64_t T,
                   int64_t hq, int64_t hkv, int64_t d);
/* dq, dk, dv += */
void st__xattn_bwd(float *dq, float *dk, float *dv, const float *dout, const float *probs, const float *q,
                   const float *k, const float *v, int64_t B, int64_t T, int64_t hq, int64_t hkv, int64_t d);

/* Adam (Kingma and Ba 2015, Algorithm 1, bias-corrected) on n parameters at step t (1-based) */
void st__xadam(float *p, const float *g, float *m, float *v, int64_t n, int t, float lr, float b1, float b2,
               float eps);

/* ---------------------------------------------------------------- the decoder (exec/model.c) */

/* The tensor-parallel collectives a sharded model calls (Shoeybi et al. 2019: g after the
 * row-parallel GEMMs in forward, f before the column-parallel ones in backward; the vocab-parallel
 * embedding and cross-entropy's reductions). NULL fn: one rank (tp = 1). */
typedef struct st__xcomm {
    void (*allreduce)(void *ctx, float *buf, int64_t n, int max); /* sum, or max when max != 0 */
    void *ctx;
} st__xcomm;

/* One tensor of the model as this rank holds it: the block [row0, row0 + nrows) x [col0, col0 +
 * ncols) of a full rows x cols tensor (a vector: cols = 1), at `off` floats into the flat buffers. */
typedef struct st__xtensor {
    const char *name; /* static: "wq", "ln1_w", ... */
    int layer;        /* block, or -1 (embedding, final norm, output layer) */
    int64_t rows, cols, row0, nrows, col0, ncols;
    int init;   /* 0: seeded random, 1: ones, 2: zeros */
    int64_t off;
} st__xtensor;

/* The weights of one block, pointers into a flat buffer (parameters or gradients alike). */
typedef struct st__xlayer {
    float *ln1_w, *ln1_b, *wq, *wk, *wv, *bq, *bk, *bv, *wo, *bo;
    float *ln2_w, *ln2_b, *w1, *b1, *w3, *w2, *b2;
} st__xlayer;

/* The part of the model one rank runs: its pipeline stage's blocks [l0, l1), the embedding on the
 * first stage and the final norm, output layer and loss on the last, its tp shard of each. */
typedef struct st__xmodel {
    /* full shapes */
    int64_t L, h, a, kv, d, f, V, B, T;
    int swiglu, rmsnorm, rope, bias, tied;
    st__xact act;
    /* this rank's part */
    int tp, tr; /* tp degree and this rank's place in its group */
    int64_t a_l, kv_l, f_l, V_l, v0; /* local heads, ffn, vocabulary and its first row */
    int l0, l1, first, last;
    int ntensors;
    st__xtensor *tensors; /* owned */
    int64_t nparams;      /* floats in the flat buffers */
    float *params, *grads; /* owned, nparams each */
    st__xlayer *lp, *lg;   /* l1 - l0 each, into params and grads */
    float *wte, *wpe, *lnf_w, *lnf_b, *lm; /* parameters (NULL where not held); lm = wte when tied */
    float *gwte, *gwpe, *glnf_w, *glnf_b, *glm;
    float *work; /* the backward's scratch for one micro-batch (owned) */
    st__xcomm comm;
} st__xmodel;

/* Builds the rank's part of model m: micro-batch B x T, tp shard tr of tp, blocks [l0, l1), first
 * and last stage flags; weights seeded from `seed` by each element's place in its full tensor, so
 * every sharding of the same model starts from the same numbers. 0, ST_EINVAL (err says why the
 * model cannot be split so), ST_ENOMEM. Free with st__xmodel_destroy. */
int st__xmodel_init(st__xmodel *x, const st_model *m, int64_t B, int64_t T, int tp, int tr, int l0, int l1, int first,
                    int last, uint64_t seed, st_error *err);
void st__xmodel_destroy(st__xmodel *x);

/* What a micro-batch keeps from its forward for its backward (owned; st__xacts_free). */
typedef struct st__xacts st__xacts;
/* Forward of the stage on micro-batch tokens [B x (T + 1)] (inputs and the next-token targets; read
 * on the first and last stage) or on `in` [N x h] (later stages): returns new activations, the
 * stage's output in *out ([N x h], borrowed from the activations; not on the last stage) and the
 * micro-batch's mean loss in *loss (last stage). NULL when out of memory. */
st__xacts *st__xmodel_forward(st__xmodel *x, const int32_t *tokens, const float *in, const float **out,
                              double *loss);
/* Backward of that micro-batch: dout [N x h] from the next stage (NULL on the last, which starts
 * from the loss scaled by loss_scale), gradients added into x->grads; *din [N x h] the gradient of
 * the stage's input (borrowed from acts; not on the first stage). */
void st__xmodel_backward(st__xmodel *x, st__xacts *acts, const float *dout, double loss_scale, const float **din);
void st__xacts_free(st__xacts *a);

/* Seeded tokens of sample `sample` at step `step`: T + 1 values below V (a counter-based hash, the
 * same on every rank). */
void st__xtokens(int32_t *out, int64_t T, int64_t V, uint64_t seed, int64_t step, int64_t sample);

#endif
