/* exec_private.h: the CPU executor's insides (exec/kernels.c, exec/model.c, exec/cpu.c), shared by
 * its files and its tests only. Built when configure found MPI and a CBLAS.
 *
 * Layout (llm.c's): a weight W of a linear layer is row-major [out x in] and y = x W^T; activations
 * are row-major [N x C] with N = B*T tokens of a micro-batch. Every fp32 kernel has a plain C
 * reference; the GEMMs also a BLAS one (st__xmm_*), chosen by st__xkernels_reference. */
#ifndef STRATA_EXEC_PRIVATE_H
#define STRATA_EXEC_PRIVATE_H

#include "cost/cost.h" /* st_layout (exec/opexec.c) */
#include "src/core/core.h"

#include <stdint.h>

/* the index of a tensor name in st_exec_tensor_names (exec.c), -1 when none */
int st__xtensor_index(const char *name);

/* ---------------------------------------------------------------- kernels (exec/kernels.c) */

/* 1: the matmuls below run the plain C loops instead of BLAS (tests, --reference-kernels) */
extern int st__xkernels_reference;
/* seconds spent in st__xmm_fwd and st__xmm_bwd so far, their bias passes not counted (strata run --compare's GEMM
 * share; the lowering prices a bias apart from its GEMM) */
extern double st__xkernels_gemm_s;
/* bytes this process has allocated and not freed (glibc's mallinfo2: heap in use plus mmapped
 * blocks; 0 where the C library cannot say): the executor's allocations, sampled by exec/cpu.c */
double st__xheap_bytes(void);
/* seconds this thread has spent runnable but waiting for a core since it started (the second field
 * of /proc/thread-self/schedstat, in ns: Documentation/scheduler/sched-stats.rst); 0 where the
 * kernel does not say (no schedstats, not Linux). A difference over an iteration is the time other
 * processes, or other ranks on the same core, took from this rank: what disturbed its measurement. */
double st__xrun_delay_s(void);
/* the BLAS's threads per process (OpenBLAS's openblas_set_num_threads where configure found it) */
void st__xkernels_threads(int n);

/* out[N x OC] (+)= inp[N x C] W[OC x C]^T (+ bias[OC] when non-NULL); accumulate: add to out */
void st__xmm_fwd(float *out, const float *inp, const float *w, const float *bias, int64_t N, int64_t C, int64_t OC,
                 int accumulate);
/* dinp[N x C] += dout[N x OC] W; dw[OC x C] += dout^T inp; dbias[OC] += column sums of dout (each when
 * non-NULL: a zero-bubble schedule's input half passes dw NULL, its weight half dinp NULL; w is read
 * only for dinp) */
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
/* One sequence's Tq queries at positions q0 .. q0 + Tq - 1 against its keys and values at positions
 * 0 .. Tk - 1 (Tk >= q0 + Tq), causal by position: context parallelism's local query chunks against
 * the gathered sequence (exec/model.c). probs [hq x Tq x Tk]. st__xattn_fwd is this per sequence,
 * with q0 0 and Tq = Tk = T; the _bwd pair alike (dk and dv: all Tk rows, +=). */
void st__xattn_fwd_at(float *out, float *probs, const float *q, const float *k, const float *v, int64_t Tq,
                      int64_t Tk, int64_t q0, int64_t hq, int64_t hkv, int64_t d);
void st__xattn_bwd_at(float *dq, float *dk, float *dv, const float *dout, const float *probs, const float *q,
                      const float *k, const float *v, int64_t Tq, int64_t Tk, int64_t q0, int64_t hq, int64_t hkv,
                      int64_t d);
/* dq, dk, dv += */
void st__xattn_bwd(float *dq, float *dk, float *dv, const float *dout, const float *probs, const float *q,
                   const float *k, const float *v, int64_t B, int64_t T, int64_t hq, int64_t hkv, int64_t d);

/* Adam (Kingma and Ba 2015, Algorithm 1, bias-corrected) on n parameters at step t (1-based) */
void st__xadam(float *p, const float *g, float *m, float *v, int64_t n, int t, float lr, float b1, float b2,
               float eps);

/* y[n] += x[n] (the residual additions) */
void st__xadd(float *y, const float *x, int64_t n);
/* out[N x C] += b row by row; db[C] += the column sums of dout [N x C] */
void st__xbias_add(float *out, const float *b, int64_t N, int64_t C);
void st__xbias_grad(float *db, const float *dout, int64_t N, int64_t C);

/* The vocab-parallel embedding (rows v0 .. v0 + V_l of the vocabulary) of N tokens, row n the
 * token tokens[(n / T) * (T + 1) + n % T] (B sequences of T + 1, the last of each a target only):
 * out[N x h] = the token's row of wte where this rank holds it, else 0 (the partial lookup, summed
 * over tp after); the backward adds dout's row n into dwte's row of token n (rows in order). */
void st__xembed_fwd(float *out, const int32_t *tokens, const float *wte, int64_t N, int64_t T, int64_t h, int64_t v0,
                    int64_t V_l);
void st__xembed_bwd(float *dwte, const int32_t *tokens, const float *dout, int64_t N, int64_t T, int64_t h,
                    int64_t v0, int64_t V_l);
/* Learned positions of the S rows from row r0 of the flattened micro-batch: x[S x h] += wpe[(r0 + n) % T];
 * the backward dwpe[(r0 + n) % T] += dout[n] (rows in order) */
void st__xpos_fwd(float *x, const float *wpe, int64_t S, int64_t T, int64_t h, int64_t r0);
void st__xpos_bwd(float *dwpe, const float *dout, int64_t S, int64_t T, int64_t h, int64_t r0);

/* The vocab-parallel cross-entropy's pieces (Megatron-LM's vocab_parallel_cross_entropy) on logits
 * [N x V_l] (vocabulary rows v0 .. v0 + V_l), targets the tokens after row n's (st__xembed_fwd's
 * layout): mx[N] the row maxima; then st[n] the sums of exp(logit - mx[n]) and st[N + n] the target's
 * logit - mx[n] (0 where another rank holds it), the logits made exp(logit - mx[n]); then (after the
 * sums' all-reduce) the logits divided by st[n]: the softmax. The backward makes the probabilities
 * (p - onehot(target)) * scale. */
void st__xxent_max(float *mx, const float *logits, int64_t N, int64_t V_l);
void st__xxent_exp(float *logits, float *st, const float *mx, const int32_t *tokens, int64_t N, int64_t T,
                   int64_t V_l, int64_t v0);
void st__xxent_norm(float *logits, const float *st, int64_t N, int64_t V_l);
void st__xxent_bwd(float *p, const int32_t *tokens, float scale, int64_t N, int64_t T, int64_t V_l, int64_t v0);

/* ---------------------------------------------------------------- backends
 *
 * The kernels a backend runs for exec/model.c's forward, backward and recompute and for the
 * optimizer's Adam: one table per backend (ggml's backend interface, llm.c's "a CPU reference
 * beside every fast kernel"), with the signatures and semantics of the CPU kernels above. The
 * tensor-parallel and expert-parallel communication goes through st__xcomm (below), the data- and
 * pipeline-parallel transfers through the runtime that interprets the program (exec/cpu.c). */
typedef struct st__xbackend {
    const char *name; /* "cpu", ... */
    void (*mm_fwd)(float *out, const float *inp, const float *w, const float *bias, int64_t N, int64_t C, int64_t OC,
                   int accumulate);
    void (*mm_bwd)(float *dinp, float *dw, float *dbias, const float *dout, const float *inp, const float *w, int64_t N,
                   int64_t C, int64_t OC);
    void (*norm_fwd)(float *out, float *mean, float *rstd, const float *inp, const float *w, const float *b, int64_t N,
                     int64_t C);
    void (*norm_bwd)(float *dinp, float *dw, float *db, const float *dout, const float *inp, const float *w,
                     const float *mean, const float *rstd, int64_t N, int64_t C);
    void (*act_fwd)(float *out, const float *inp, int64_t n, st__xact a);
    void (*act_bwd)(float *dinp, const float *inp, const float *dout, int64_t n, st__xact a);
    void (*swiglu_fwd)(float *out, const float *a, const float *b, int64_t n);
    void (*swiglu_bwd)(float *da, float *db, const float *a, const float *b, const float *dout, int64_t n);
    void (*rope)(float *x, int64_t N, int64_t T, int64_t heads, int64_t d, int64_t stride, int sign);
    void (*attn_fwd)(float *out, float *probs, const float *q, const float *k, const float *v, int64_t B, int64_t T,
                     int64_t hq, int64_t hkv, int64_t d);
    void (*attn_bwd)(float *dq, float *dk, float *dv, const float *dout, const float *probs, const float *q,
                     const float *k, const float *v, int64_t B, int64_t T, int64_t hq, int64_t hkv, int64_t d);
    void (*adam)(float *p, const float *g, float *m, float *v, int64_t n, int t, float lr, float b1, float b2,
                 float eps);
    void (*add)(float *y, const float *x, int64_t n);
    void (*bias_add)(float *out, const float *b, int64_t N, int64_t C);
    void (*bias_grad)(float *db, const float *dout, int64_t N, int64_t C);
    void (*embed_fwd)(float *out, const int32_t *tokens, const float *wte, int64_t N, int64_t T, int64_t h, int64_t v0,
                      int64_t V_l);
    void (*embed_bwd)(float *dwte, const int32_t *tokens, const float *dout, int64_t N, int64_t T, int64_t h,
                      int64_t v0, int64_t V_l);
    void (*pos_fwd)(float *x, const float *wpe, int64_t S, int64_t T, int64_t h, int64_t r0);
    void (*pos_bwd)(float *dwpe, const float *dout, int64_t S, int64_t T, int64_t h, int64_t r0);
    void (*xent_max)(float *mx, const float *logits, int64_t N, int64_t V_l);
    void (*xent_exp)(float *logits, float *st, const float *mx, const int32_t *tokens, int64_t N, int64_t T,
                     int64_t V_l, int64_t v0);
    void (*xent_norm)(float *logits, const float *st, int64_t N, int64_t V_l);
    void (*xent_bwd)(float *p, const int32_t *tokens, float scale, int64_t N, int64_t T, int64_t V_l, int64_t v0);
    /* An MoE block's routing, dispatch and combine on the backend's memory (exec/model.c, "experts"; each the
     * per-thread code of exec/moe_kernels.h of the same name over its threads; int32_t tensors are mem_alloc's
     * floats): route, token n's top K of logits [N x E] into top, s [N K]; place, count per expert (cnt [E])
     * then each slot's place (order [N K], where [N K]; -1: dropped) under cap; gather, the nsend sent rows of
     * h + 1 floats from n2; sort, the R received rows sorted by expert into xin and perm, first [El + 1];
     * permute, rows of h by perm (dir as st__xmoe_permute); combine, out [N x h] (=, or += with acc) the kept
     * rows of y times s (NULL: 1); dy, the combine's backward of the nsend sent rows; router_bwd, dl [N x E]. */
    void (*moe_route)(int32_t *top, float *s, const float *logits, int64_t N, int64_t E, int64_t K);
    void (*moe_place)(int32_t *cnt, int32_t *order, int32_t *where, const int32_t *top, const float *s, int64_t NK,
                      int64_t E, int64_t cap);
    void (*moe_gather)(float *send, const float *n2, const int32_t *order, const int32_t *top, int64_t N,
                       int64_t nsend, int64_t K, int64_t h, int64_t El);
    void (*moe_sort)(float *xin, int32_t *perm, int32_t *first, const float *recv, int64_t R, int64_t h, int64_t El);
    void (*moe_permute)(float *to, const float *from, const int32_t *perm, int64_t R, int64_t h, int dir);
    void (*moe_combine)(float *out, const float *y, const float *s, const int32_t *where, int64_t N, int64_t nsend,
                        int64_t K, int64_t h, int acc);
    void (*moe_dy)(float *dy, float *ds, const float *dout, const float *y, const float *s, const int32_t *order,
                   int64_t N, int64_t nsend, int64_t K, int64_t h);
    void (*moe_router_bwd)(float *dl, const float *s, const float *ds, const int32_t *top, int64_t N, int64_t E,
                           int64_t K);
    /* the kernels return nothing: 0, or the first failure since the backend started (ST_EIO; err
     * says which call and why). NULL: the kernels cannot fail (the CPU's). */
    int (*error)(st_error *err);
    /* The memory of the model's tensors (exec/model.c's flat buffers: weights, gradients, the backward's
     * scratch; the runtime's Adam moments): n floats, zeroed, where the backend's kernels read them
     * (the cuda backend's: device memory, which the host must not touch). New (mem_free), NULL when out
     * of memory. The host reaches them only through mem_copy and mem_zero (below). */
    float *(*mem_alloc)(int64_t n);
    void (*mem_free)(float *p);
    /* dst[n] = src[n], each side the host's memory or mem_alloc's (the backend tells them apart); a copy
     * to the host has arrived when it returns (it waits for the kernels before it: the host needs the
     * result); the others are queued behind the kernels before them. A failure is the backend's error(). */
    void (*mem_copy)(float *dst, const float *src, int64_t n);
    /* the same for `rows` rows of `cols` floats, row r at dst + r * dld and src + r * sld (a column
     * block of a row-major matrix: the fused GEMMs' parts, a rank's columns, a token's rows) */
    void (*mem_copy2d)(float *dst, int64_t dld, const float *src, int64_t sld, int64_t cols, int64_t rows);
    void (*mem_zero)(float *p, int64_t n); /* p[n] = 0 (mem_alloc's), queued as a kernel */
    /* waits for every kernel and copy queued so far. NULL: nothing is queued (the CPU's). */
    void (*sync)(void);
    /* A backend that queues its work on streams (the cuda backend's; all four NULL for the CPU, whose
     * runtime times each instruction by the host's clock): the runtime (exec/cpu.c run_steps) calls
     * step_begin(n) after the step's barrier (n: the program's instructions; nonzero: a failure, the
     * backend's error()), ins_begin(i, stream, dep) before instruction i's work (its program stream,
     * ST_STREAM_*, and its dep[2]: the backend queues the work on that stream, after the deps' ends),
     * ins_end(i) after it, and step_end(span, coll) once the program ran: it waits for everything
     * queued (the step's end) and fills span[2i], span[2i + 1] with instruction i's start and end in
     * seconds from the step's start, coll[4i + 0, 1, 2] with the seconds of the tp, ep and cp
     * collectives it ran inside (each from where its stream reached it to its end) and coll[4i + 3] with
     * those of the stretches redo_mark marked in it, less the collectives inside them, and adds its GEMMs'
     * seconds to st__xkernels_gemm_s. Nonzero: a failure (error() says which), spans 0. */
    int (*step_begin)(int n);
    void (*ins_begin)(int i, int stream, const int32_t *dep);
    void (*ins_end)(int i);
    int (*step_end)(double *span, double *coll);
    /* such a backend's mark of the start (end 0) and the end (end 1) of a stretch of the running instruction's
     * work that the runtime counts as another's: a block's rebuild inside a backward, the recompute's
     * (st__xmodel's redo_clock). NULL: the host's clock times it (the CPU's). */
    void (*redo_mark)(int end);
} st__xbackend;
/* the CPU's: the kernels above (BLAS or plain C GEMMs as st__xkernels_reference says) */
extern const st__xbackend st__xbackend_cpu;

/* ---------------------------------------------------------------- the decoder (exec/model.c) */

/* The tensor-parallel collectives a sharded model calls (Shoeybi et al. 2019: g after the
 * row-parallel GEMMs in forward, f before the column-parallel ones in backward; the vocab-parallel
 * embedding and cross-entropy's reductions). With sequence parallelism (Korthikanti et al. 2022,
 * Sec. 4.2.2) g becomes a reduce-scatter and f an all-gather in forward, the other way round in
 * backward. NULL fn: one rank (tp = 1). */
typedef struct st__xcomm {
    void (*allreduce)(void *ctx, float *buf, int64_t n, int max); /* sum, or max when max != 0 */
    /* in place: buf holds tp blocks of n, this rank's at tr * n on entry, every rank's on return */
    void (*allgather)(void *ctx, float *buf, int64_t n);
    /* out[n] = block tr of the sum over the tp ranks of in[tp * n] */
    void (*reduce_scatter)(void *ctx, float *out, const float *in, int64_t n);
    /* ep > 1, expert parallelism's all-to-all over the ep group: scounts[i] rows of `width` floats to
     * its rank i (send holds them in that order); fills rcounts and returns what came, in the senders'
     * order (new: free it; NULL when out of memory) */
    float *(*alltoallv)(void *ctx, const float *send, const int *scounts, int *rcounts, int64_t width);
    /* the same on the backend's memory (the MoE dispatch and combine of exec/model.c's device path): send one of
     * its tensors, the result a new one of its mem_alloc (mem_free it); only the counts cross to the host */
    float *(*alltoallv_dev)(void *ctx, const float *send, const int *scounts, int *rcounts, int64_t width);
    void *ctx;
} st__xcomm;

/* cp > 1, context parallelism's exchanges in the cp group (exec/model.c, "context parallelism"):
 * all-gather and reduce-scatter as st__xcomm's over the cp ranks; the ring's step, send[n] to the next
 * cp rank and recv[n] from the previous one; the all-to-all, send's block i of n to cp rank i, recv's
 * block i from it. */
typedef struct st__xcpcomm {
    void (*allgather)(void *ctx, float *buf, int64_t n);
    void (*reduce_scatter)(void *ctx, float *out, const float *in, int64_t n);
    void (*ring)(void *ctx, const float *send, float *recv, int64_t n);
    void (*alltoall)(void *ctx, const float *send, float *recv, int64_t n);
    void *ctx;
} st__xcpcomm;

/* The part of the model one rank runs (st__xmodel_init's input). */
typedef struct st__xpart {
    int64_t B, T;       /* the micro-batch: B sequences of T tokens */
    int cp, cr;         /* context parallelism: degree (0 or 1: none), this rank's place in its cp group */
    st_cp_comm cp_comm; /* how (exec/model.c, "context parallelism") */
    int tp, tr, sp;     /* tp degree, this rank's place in its group, sequence parallelism (0/1) */
    int attn_rows;      /* with sp, on this rank's token rows with whole weights: 1 the attention projection, 2 QKV
                           to the projection; 3 (sp or not) QKV split along its fused width, the attention whole
                           on every rank, the projection by heads (exec/model.c, "operator-level plans");
                           0 Megatron's */
    int ep, er;         /* MoE: ep degree, this rank's place in its ep group (it holds that share of the experts) */
    int moe_rows;       /* MoE blocks of an operator-level plan, with sp: the experts whole over the tp group (its
                           rank r holds r's share), each rank's rows routed there (exec/model.c, "operator-level
                           plans") */
    int router_h;       /* MoE blocks of an operator-level plan: the router split over the tp group by the hidden
                           dimension (row-parallel); 0: whole (on the rows the block routes) */
    int hd, hr;         /* an operator-level plan's output layer vocabulary-parallel over a group other than tp (the
                           dp group): its degree (0 or 1: Megatron's, over tp) and this rank's place in it; the
                           embedding and output tables then whole on every rank (exec/model.c, "operator-level
                           plans") */
    int nchunks;        /* pipeline chunks this rank runs: vp with the interleaved schedule, else 1 */
    const int *l0, *l1; /* nchunks each: chunk c runs blocks [l0[c], l1[c]) (ascending, disjoint) */
    int first, last;    /* chunk 0 holds the embedding; chunk nchunks - 1 the final norm, output layer, loss */
    int recompute;      /* 0 none, 1 selective, 2 full, 3 op (st__xmodel_recompute) */
    const st__xbackend *be; /* the kernels (borrowed; NULL: st__xbackend_cpu) */
    int sharded; /* ZeRO-3: no flat buffers (params, grads NULL, the tensors' pointers too): the runtime
                    holds shards and points each unit's tensors at it while it runs (st__xmodel_point) */
    int table;   /* the tensor table only (no buffers at all, work neither): what exec/opexec.c's ranks need
                    of the single-rank model to seed their blocks (st__xmodel_init_value) without --check */
} st__xpart;

/* One tensor of the model as this rank holds it: the block [row0, row0 + nrows) x [col0, col0 +
 * ncols) of a full rows x cols tensor (a vector: cols = 1), at `off` floats into the flat buffers. */
typedef struct st__xtensor {
    const char *name; /* static: "wq", "ln1_w", ... */
    int layer;        /* block, or -1 (embedding, final norm, output layer) */
    int64_t rows, cols, row0, nrows, col0, ncols;
    int init;   /* 0: seeded random, 1: ones, 2: zeros */
    int64_t off;
    int expert; /* an expert's weight: the expert (its own full tensor), else -1 */
} st__xtensor;

/* The weights of one block, pointers into a flat buffer (parameters or gradients alike). */
typedef struct st__xlayer {
    float *ln1_w, *ln1_b, *wq, *wk, *wv, *bq, *bk, *bv, *wo, *bo;
    float *ln2_w, *ln2_b, *w1, *b1, *w3, *w2, *b2;
    /* an MoE block (router non-NULL; w1 .. b2 NULL): the router [E x h], replicated, and this rank's
     * experts' MLPs, expert i's at ew1 + i * fe_l * h (fe_l x h), ew3 alike, ew2 + i * h * fe_l (h x fe_l) */
    float *router, *ew1, *ew3, *ew2;
} st__xlayer;

/* The part of the model one rank runs: the blocks of its pipeline chunks, the embedding on the
 * first stage and the final norm, output layer and loss on the last, its tp shard of each. With
 * sequence parallelism the residual stream (a block's input and output, the norms, what the
 * pipeline sends) is this rank's Ns = N / tp consecutive token rows of the micro-batch's N. */
typedef struct st__xmodel {
    /* full shapes (T: this rank's tokens of each sequence, Tg / cp; Tg: the sequence) */
    int64_t L, h, a, kv, d, f, V, B, T, Tg;
    int cp, cr;          /* st__xpart's (cp 1 without) */
    st_cp_comm cp_comm;
    int swiglu, rmsnorm, rope, bias, tied;
    st__xact act;
    /* this rank's part */
    int tp, tr, sp; /* tp degree, this rank's place in its group, sequence parallelism */
    int attn_rows;  /* st__xpart's */
    int moe_rows;   /* st__xpart's (ep and er are then tp's) */
    int router_h;   /* st__xpart's */
    int hd, hr;     /* st__xpart's (hd 1 without) */
    int recompute;  /* st__xpart's */
    int64_t Ns;     /* token rows of the residual stream on this rank: N, or N / tp with sp */
    int64_t a_l, kv_l, f_l, V_l, v0; /* local heads, ffn, vocabulary and its first row (attn_rows 3: all heads;
                                        hd > 1: the whole tables, V and 0) */
    int64_t hN, hV_l, hv0; /* the output layer's rows (N; hd > 1: hd x Ns, each hd rank's Ns in turn), vocabulary
                              and its first row (V_l and v0; hd > 1: the hd group's share) */
    int64_t wq_l, wk_l; /* attn_rows 3: this rank's rows of wq (its heads' width, the projection's input) and of wk
                           and wv: its share of QKV's fused width */
    /* MoE (Shazeer et al. 2017; Fedus et al. 2022 for the capacity): experts, top-k, an expert's ffn
     * and its tp shard, the capacity factor (0: dropless), ep degree and place, the local experts */
    int64_t E, topk, fe, fe_l;
    double capacity_factor;
    int ep, er;
    int64_t E_l, e0;
    int nchunks;                     /* pipeline chunks */
    int *cl0, *cl1;                  /* owned, nchunks each: chunk c's blocks [cl0[c], cl1[c]) */
    int nl, first, last;             /* blocks held (all chunks'), first and last stage */
    int ntensors;
    st__xtensor *tensors; /* owned */
    int *idx;             /* owned: each block's tensor per field, then the embedding's and output layer's
                             (model.c's table; -1: absent) */
    int64_t nparams;      /* floats in the flat buffers */
    float *params, *grads; /* owned, nparams each */
    st__xlayer *lp, *lg;   /* nl each, chunk by chunk, into params and grads */
    float *wte, *wpe, *lnf_w, *lnf_b, *lm; /* parameters (NULL where not held); lm = wte when tied */
    float *gwte, *gwpe, *glnf_w, *glnf_b, *glm;
    float *work; /* the backward's scratch for one micro-batch (owned) */
    st__xcomm comm;
    /* attn_rows 1: the all-to-all over the tp group, send's block i of n to tp rank i, recv's block i from
     * it (the cpu runtime's MPI, on host buffers whatever the backend: comm's ctx may be NCCL's) */
    struct {
        void (*fn)(void *ctx, const float *send, float *recv, int64_t n);
        void *ctx;
    } tp_a2a;
    /* moe_rows: the all-to-all of rows of `width` floats over the tp group, as st__xcomm's alltoallv (ep's) */
    struct {
        float *(*fn)(void *ctx, const float *send, const int *scounts, int *rcounts, int64_t width);
        void *ctx;
    } tp_a2av;
    st__xcpcomm cpcomm; /* cp > 1 */
    /* hd > 1: the output layer's collectives in its group (all-reduce, all-gather, reduce-scatter as comm's), and the
     * in-place all-gather of its rows' targets (n tokens per rank) */
    st__xcomm hcomm;
    void (*hcomm_tokens)(void *ctx, int32_t *buf, int64_t n);
    /* The blocks' rebuilds that a backward runs itself (recompute block by block, exec/model.c "activation
     * recompute"): fn(ctx, 0) right before each, fn(ctx, 1) right after it, so that the runtime times them as
     * the recompute's (exec/cpu.c, redo_clock). NULL fn: untimed. */
    struct {
        void (*fn)(void *ctx, int end);
        void *ctx;
    } redo_clock;
    const st__xbackend *be; /* st__xpart's (borrowed) */
} st__xmodel;

/* Builds the rank's part `pt` of model m; weights seeded from `seed` by each element's place in its
 * full tensor, so every sharding of the same model starts from the same numbers. 0, ST_EINVAL (err
 * says why the model cannot be split so), ST_ENOMEM. Free with st__xmodel_destroy. */
int st__xmodel_init(st__xmodel *x, const st_model *m, const st__xpart *pt, uint64_t seed, st_error *err);
void st__xmodel_destroy(st__xmodel *x);
/* Sequence parallelism: sums each replicated tensor's gradient (norms, biases after the
 * row-parallel GEMMs, positions: each rank's is its token rows' part) over the tp group, as
 * Megatron-LM's finalize_model_grads does for the parameters marked sequence_parallel. Only the
 * elements [lo, hi) of the flat layout (a ZeRO shard's), held in g (element lo at g[0]), the
 * same on every tp rank. */
void st__xmodel_sp_grads(st__xmodel *x, float *g, int64_t lo, int64_t hi);
/* The initial values (st__xmodel_init's) of the flat layout's elements [lo, hi), into dst[0 .. hi - lo). */
void st__xmodel_init_values(const st__xmodel *x, uint64_t seed, float *dst, int64_t lo, int64_t hi);
/* the initial value of tensor t's element at row r, column c of its own rows and columns (the same as
 * st__xmodel_init_values writes there) */
float st__xmodel_init_value(const st__xtensor *t, uint64_t seed, int64_t r, int64_t c);
/* ZeRO-3: the parameters' (grads 0) or gradients' (1) pointers of the tensors that lie in the flat
 * layout's elements [lo, hi) point into buf (element lo at buf[0], borrowed; NULL: at nothing, after
 * the unit ran). The tensors of a unit (below) lie in one range, the output layer of a tied model
 * that also holds the embedding excepted: it reads the embedding's. */
void st__xmodel_point(st__xmodel *x, int grads, float *buf, int64_t lo, int64_t hi);

/* What a micro-batch keeps from its forward for its backward (owned; st__xacts_free). */
typedef struct st__xacts st__xacts;
/* Forward of chunk `chunk` on micro-batch tokens [B x (T + 1)] (inputs and the next-token targets;
 * read where the chunk holds the embedding or the loss) or on `in` [Ns x h] (the others): returns
 * new activations, the chunk's output in *out ([Ns x h], borrowed from the activations; not where it
 * holds the loss) and the micro-batch's mean loss in *loss (where it does). NULL when out of memory. */
st__xacts *st__xmodel_forward(st__xmodel *x, int chunk, const int32_t *tokens, const float *in, const float **out,
                              double *loss);
/* Backward of that chunk and micro-batch: dout [Ns x h] from the next chunk (NULL where the chunk
 * holds the loss, which starts from the loss scaled by loss_scale), gradients added into x->grads;
 * *din [Ns x h] the gradient of the chunk's input (borrowed; not where it holds the embedding).
 * 0, or ST_ENOMEM (an MoE block's buffers). */
int st__xmodel_backward(st__xmodel *x, st__xacts *acts, const float *dout, double loss_scale, const float **din);
/* The same backward in two halves, as the zero-bubble schedules run it (Qi et al. 2023, Sec. 2: B and
 * W): the input half computes everything but the linear layers' weight gradients (the input
 * gradients, *din and its dout as st__xmodel_backward says, and the norms', biases', embedding's and
 * an MoE block's whole gradients), keeping in acts the output gradients the weight half reads beside
 * the GEMMs' inputs (the activations stay until then); the weight half adds those weight gradients
 * into x->grads. The two together add what st__xmodel_backward adds (the same GEMMs). Input half:
 * 0, ST_EINVAL (a recompute has not run, or it ran already), ST_ENOMEM; weight half: 0, or
 * ST_EINVAL when no input half left it work. Free acts after the weight half. */
int st__xmodel_backward_input(st__xmodel *x, st__xacts *acts, const float *dout, double loss_scale, const float **din);
int st__xmodel_backward_weight(st__xmodel *x, st__xacts *acts);
/* With recompute, the forward kept only what the recompute starts from (full: each block's input; selective: all
 * but the attention probabilities; op: each block's input and saved GEMM outputs) and one block's room for the
 * rest; this makes the room and in it the chunk's last block's dropped activations again (full: its forward;
 * selective: the probabilities; op: exec/model.c block_redo), and the backward then makes each other block's
 * right before that block's backward, in the same room (timed by redo_clock). Before the backward, which refuses
 * (ST_EINVAL) until it ran. 0, ST_EINVAL (nothing was dropped), ST_ENOMEM. */
int st__xmodel_recompute(st__xmodel *x, st__xacts *acts);
void st__xacts_free(st__xacts *a);

/* ZeRO-3 (exec/cpu.c) runs a chunk's forward and backward a unit at a time, each after the gather of
 * its parameters: the units are the embedding (layer -1), each block (its layer) and the output
 * layer with the loss (layer L), as the lowering's ZeRO-3 pieces name them (src/lower/lower.c,
 * z_layers_re). st__xmodel_forward is begin and every unit; st__xmodel_backward every unit, or every
 * unit's input half and then every unit's weight half (below). */
/* The forward's start (st__xmodel_forward's arguments): new activations; NULL when out of memory. */
st__xacts *st__xmodel_forward_begin(st__xmodel *x, int chunk, const int32_t *tokens, const float *in);
/* The forward of the chunk's next unit, which must be `layer` (ST_EINVAL otherwise; ST_ENOMEM). After
 * the last, *last is 1 and *out or *loss are set as st__xmodel_forward sets them. */
int st__xmodel_forward_unit(st__xmodel *x, st__xacts *a, int layer, const float **out, double *loss, int *last);
/* The backward of the next unit (the forward's in reverse), which must be `layer`: dout and
 * loss_scale as st__xmodel_backward takes them (read by the first unit); after the last, *last is 1
 * and *din set as there. 0, ST_EINVAL (not that unit, or the forward not finished), ST_ENOMEM. */
int st__xmodel_backward_unit(st__xmodel *x, st__xacts *a, int layer, const float *dout, double loss_scale,
                             const float **din, int *last);
/* With recompute (the forward_unit's kept only what it starts from: full, each block's input;
 * selective, q, k and v; op, each block's input and saved outputs): makes the next backward unit's
 * activations again, which must be `layer`, a block (the embedding and the output layer are not
 * recomputed), before its backward unit, on the same gathered parameters, into the one block's room that
 * the chunk's blocks use in turn. 0, ST_EINVAL (not that unit, not a block, or nothing was dropped),
 * ST_ENOMEM. */
int st__xmodel_recompute_unit(st__xmodel *x, st__xacts *a, int layer);
/* The split backward unit by unit (the zero-bubble schedules' halves, st__xmodel_backward_input and
 * _weight): the input half of the next unit, as st__xmodel_backward_unit; then, any time after it,
 * the weight half of each unit in the same order, which adds its weight gradients into the gradient
 * buffers the input half's pointers named (kept by the caller until then). *last: 1 after the chunk's
 * last unit (free acts after the last weight half). 0, ST_EINVAL (out of order, or one micro-batch
 * both split and whole), ST_ENOMEM. */
int st__xmodel_backward_input_unit(st__xmodel *x, st__xacts *a, int layer, const float *dout, double loss_scale,
                                   const float **din, int *last);
int st__xmodel_backward_weight_unit(st__xmodel *x, st__xacts *a, int layer, int *last);

/* Seeded tokens of sample `sample` at step `step`: T + 1 values below V (a counter-based hash, the
 * same on every rank). */
void st__xtokens(int32_t *out, int64_t T, int64_t V, uint64_t seed, int64_t step, int64_t sample);

/* ---------------------------------------------------------------- operator-level plans (exec/opexec.c) */

/* The per-operator runtime's resharding in memory (its exchange's arithmetic, for tests): the devices of a mesh of
 * naxes axes of size[] (row-major, axis naxes - 1 innermost) hold src[dev], their blocks of a tensor of dims
 * dim[nd] under layout `from` (per axis the dimension it splits, a dimension split by both axes with axis 0's the
 * outer index; partial sums along its partial axes); dst[dev] (new, free each; NULL where none was made) gets the
 * device's block under `to`, partial sums added. 0, ST_EINVAL (a layout that does not divide), ST_ENOMEM. */
int st__xreshard_mem(const int *size, int naxes, const int64_t *dim, int nd, st_layout from, st_layout to,
                     float *const *src, float **dst);

/* ---------------------------------------------------------------- the cuda backend (exec/cuda.c) */

/* The cuda backend (exec/cuda.c; exec/nocuda.c where configure did not build it): starts this
 * process's part on its GPU (the node-local rank modulo the visible GPUs) and fills *be with its
 * table. Collective over MPI_COMM_WORLD (the node-local rank). 0, or ST_EINVAL with err saying why
 * (not built, no GPU, cuBLAS not loadable): one rank's answer, which the caller makes every rank's.
 * st__xcuda_close gives everything back (also after a failed start). */
int st__xcuda_open(const st__xbackend **be, st_error *err);
/* The cuda backend's tensor- and expert-parallel communication: NCCL communicators for this rank's tp
 * group (tp ranks, world ranks in group order; tp_n 1: none) and ep group (alike), each made with an
 * id from ncclGetUniqueId on the group's first rank, sent to the others over MPI, and
 * ncclCommInitRank; *c then runs st__xcomm's collectives over them, each timed by events (the
 * backend's step_end: the runtime's "coll tp" and "coll ep"). Collective over each group's members,
 * in the lowering's group order. 0, or ST_EIO (err says which call failed). */
int st__xcuda_comm(st__xcomm *c, const int *tp, int tp_n, const int *ep, int ep_n, st_error *err);
/* The data-parallel collectives the runtime (exec/cpu.c) runs between instructions, on the backend's memory:
 * over the lowering's group gi, or (gi -1) this rank's expert-data-parallel group. Sums in place;
 * the ZeRO shards' reduce-scatter (out: this rank's counts[its place] floats of the sum of in) and
 * all-gather (in place) with each member's count and place (displs) in the flat buffer. The
 * pipeline's transfers as MPI_Isend and MPI_Recv behave: send posts n floats of buf to world rank
 * peer and returns (buf may be freed), recv returns with them, sends_wait once every send posted
 * was received (the iteration's end). Their failures are the backend's error() after the
 * instruction. NULL table entries: MPI's. */
typedef struct st__xgcomm {
    void (*allreduce)(int gi, float *buf, int64_t n);
    void (*reduce_scatterv)(int gi, const float *in, float *out, const int *counts, const int *displs);
    void (*allgatherv)(int gi, float *buf, const int *counts, const int *displs);
    void (*send)(const float *buf, int64_t n, int peer);
    void (*recv)(float *buf, int64_t n, int peer);
    void (*sends_wait)(void);
} st__xgcomm;
/* Adam's settings, one for both runtimes (exec/cpu.c, exec/opexec.c) so that they and --check's reference train
 * alike: GPT-3's betas (Brown et al. 2020, Sec. C), a learning rate for models this small */
#define ADAM_LR 1e-3f
#define ADAM_B1 0.9f
#define ADAM_B2 0.95f
#define ADAM_EPS 1e-8f

struct st_lowered;
struct st_ins;
/* The trace's category of an instruction (exec/cpu.c): coll, send, recv, fwd, bwd, bwd-input, bwd-weight,
 * recompute or optimizer, as the simulator's trace names them. */
const char *st__xtrace_cat(const struct st_ins *in);
/* The cuda backend's: NCCL communicators for every data-parallel, pipeline (embedding) and
 * context-parallel group of lowering l that this world rank is in, in group order; with er >= 0
 * (ep > 1) one for the ranks of its dp group gd whose place in their ep group is er too; then a
 * communicator of two, with a CUDA stream, for each way of each pair of ranks that the programs'
 * sends connect (the pipeline's transfers); made as st__xcuda_comm makes its. Collective over each
 * group's members. 0, ST_ENOMEM, ST_EINVAL (a lowering whose transfers between two ranks are
 * received in another order than sent: NCCL matches by order, not by tag; the same answer on every
 * rank), or ST_EIO (err says which call failed). Its waits for the GPU's streams are bounded by w's
 * timeout (st__xwait_poll; w NULL: unbounded). */
struct st__xwatch; /* exec/fault.h */
int st__xcuda_gcomm(st__xgcomm *c, const struct st_lowered *l, int gd, int er, const struct st__xwatch *w,
                    st_error *err);
/* cp > 1: *c's exchanges over NCCL on the communicator st__xcuda_gcomm made for group gi (this
 * rank's cp group), each timed by events (step_end: the runtime's "coll cp"). After st__xcuda_gcomm. */
void st__xcuda_cpcomm(st__xcpcomm *c, int gi);
/* The device memory this rank's backend allocated: the high-water mark of its own allocations
 * (bytes), and of the GPU's used memory as cudaMemGetInfo reports it (total less free: the CUDA
 * context, NCCL's buffers and other processes included; sampled after every allocation and every
 * transfer), 0 where the driver does not say. */
void st__xcuda_memory(double *peak_bytes, double *used_peak_bytes);
void st__xcuda_close(void);

/* ---------------------------------------------------------------- faults (exec/fault.c, fault.h) */

/* The test hook of exec.h's STRATA_EXEC_FAULT=RANK:INSTRUCTION:KIND: on rank RANK, at instruction
 * INSTRUCTION of its program (0-based, as the timeout's line counts them) in the first step,
 * KIND happens (fault.h, st__xfault_at). */
typedef enum {
    ST__XFAULT_NONE,
    ST__XFAULT_DIE,
    ST__XFAULT_CRASH,
    ST__XFAULT_HANG,
    ST__XFAULT_NAN,
    ST__XFAULT_FAIL /* the instruction fails as if out of memory (st__xfault_fails) */
} st__xfault_kind;
typedef struct st__xfault {
    st__xfault_kind kind;
    int rank, ins;
} st__xfault;
/* Parses s (NULL or empty: no fault) into f (the caller checks the rank and instruction against its
 * job). 0, or ST_EINVAL with err naming STRATA_EXEC_FAULT. */
int st__xfault_parse(const char *s, st__xfault *f, st_error *err);

#endif
