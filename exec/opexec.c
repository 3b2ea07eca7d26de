/* opexec.c: the per-operator runtime of operator-level (ILP) plans (exec.h, st_exec_run_ilp; issue 18): the
 * plans `strata plan --search ilp` makes whose shardings are no Megatron template (search/as_hybrid.c refuses
 * them: GSPMD-style 2-D splits such as QKV "h,e", the projection "h,n", fc1 "f,f", residuals "h,s"). Every
 * device of a stage's mesh interprets the stage's program (src/lower/lower_as.c: one SPMD program per stage)
 * on its own shards, step by step as st_autoshard_work lists them:
 *   - a tensor's layout on the mesh is what its producing operator's labels say (st_as_choice: per mesh axis
 *     the dimension it splits, or replicated, or partial sums); a device holds the block of the full tensor
 *     that its coordinates pick (a dimension split by both axes: axis 0 the outer index), row-major;
 *   - a compute instruction runs its operators on the device's blocks with the backend's kernels (exec/model.c's
 *     table, st__xbackend): a GEMM on the local blocks x[m', k'] W[k', n'] (its output partial over the axes that
 *     split k), norms on whole rows (the planner never splits their hidden dimension), element-wise operators
 *     locally, the rotary embedding on whole heads of its block at the rows' positions (a split of the fused
 *     width that cuts a head, whose halves it pairs: gathered along the axes that split it, rotated, sliced
 *     back), the fused attention on its batch and kv-head groups, the embedding's lookup on its vocabulary
 *     rows (partial where the vocabulary is split), the vocabulary-parallel cross-entropy with its row maxima
 *     and sums all-reduced over the axes that split the vocabulary (inside the loss's compute: its collectives
 *     in the program then measure 0);
 *   - a collective instruction reshards one edge (the consumer's input from the producer's layout, or in
 *     backward the input's gradient, partial over the axes that split what the input lacks, back to the
 *     producer's layout) along the one mesh axis it names: the axis's part of the source layout becomes the
 *     target's (partial sums to replicated: MPI all-reduce over the axis; anything else, all-gather,
 *     reduce-scatter, all-to-all: one exchange of the blocks' intersections over the stage's devices, each
 *     element from one holder, partial sums added); slices (replicated to split) are local, done where the
 *     edge starts or where its consumer computes; an edge's gradient is added into its producer's once whole;
 *   - the weights are held as each operator's blocks of them (its labels), biases, norm biases and learned
 *     positions (which the graph folds into their operators) alike; gradients are summed per mesh axis over
 *     the axes search/autoshard.c's grad_sync names (those that split what a weight lacks), at the program's
 *     gradient instructions: all-reduce, or with the stage's ZeRO-1 reduce-scatter (innermost axis first),
 *     Adam on the device's shard, and the all-gathers (outermost first); the tied output layer's and
 *     embedding's gradients (two blocks of one table, each split as its operator splits it) are exchanged and
 *     added before Adam, and are not sharded by ZeRO (Adam keeps both copies alike);
 *   - mesh axes that split nothing need nothing special: every device of such an axis holds the same blocks;
 *   - several stages: world ranks are the stages' devices one stage after another (the lowering's GPUs); each
 *     device runs its stage's program (1F1B); the last layer's output, its partial sums resolved where the work
 *     lists it, goes to the next stage's mesh in the arrival layout the planner prices (each axis splitting the
 *     first dimension it divides; search/autoshard.c's arrival), each device pair its share (MPI_Isend, the
 *     holder at coordinate 0 of the sender's replicated axes), at the program's send and receive; the first
 *     layer's input gradient goes back so; what the first layer's operators need beyond the arrival layout is
 *     resharded at their compute (the work lists no step for it); the tied table's end-stage copies exchange
 *     their gradients before Adam;
 *   - full recompute runs each layer's forward steps again (resharding included) before its backward;
 *   - MoE blocks (dropless, exec/model.c's routing: each token's top k experts by router logit, weights a softmax
 *     over those k): the dispatch routes the device's tokens (its rows of the residual stream) into an
 *     [experts, capacity, hidden] block, each expert's tokens in order and zeros after them, whose capacity is
 *     the micro-batch's busiest expert's count on any device (agreed over the stage, as Megatron-Core's
 *     dispatcher exchanges the counts: moe_cap), so the planner's [E, C, h] tensors take that C (tdims) and any
 *     split of theirs is an exchange of dense blocks; the experts are batched GEMMs on the device's experts; the
 *     combine sums each of its tokens' chosen rows times their weights, following the dispatch's routing
 *     (check_plan: its tokens are the dispatch's on every device). The router's logits reach the combine as
 *     the dispatch holds them and their gradient goes back through the dispatch's input (search/autoshard.c's
 *     edge_source, Megatron-Core's token dispatcher carrying the probabilities). The experts multiply the
 *     busiest expert's rows for each (the padding of a dense dropless layout), the planner prices the balanced
 *     share (--compare shows the difference).
 * The weights start as the single-rank model's (exec/model.c's seeded tensors: each rank seeds its blocks from the
 * model's tensor table, st__xmodel_init_value; with --check rank 0 also builds and trains that model, once, and
 * every rank sends it its reduced gradient blocks after the step: compare_grads, exec/check.c), so --check
 * compares each device's reduced gradient block, element by element,
 * with the reference's tensor it is a block of (the shards together are the full tensors), largest
 * differences per tensor name as exec/cpu.c reports them. The graph's vocabulary is padded as Megatron pads it
 * (search/graph.c): the padded logits are masked out of the loss, the padded rows stay 0.
 *
 * Timing as exec/cpu.c: each instruction by the host's clock after a barrier per iteration; compute by phase,
 * the resharding collectives as "coll tp", the gradient reduction and gathers as "coll dp", the stage-to-stage
 * transfers as "send" and "recv", Adam as "optimizer" (between the reduction and the gathers, where the
 * lowering leaves room for it); each stage's first device's times stand for the stage (the lowering's
 * representative rank), and the iteration is the slowest device's. A resharding that is an all-gather,
 * reduce-scatter or all-to-all runs as one MPI_Alltoallv of the blocks' intersections (the bytes the named
 * collective moves, not its algorithm); an all-reduce as MPI_Allreduce.
 *
 * What is refused (one line naming stage, operator, label and axis; exit 2 on every rank, before any
 * collective): the unfused attention and other operators than the dense and MoE blocks', a combine whose tokens
 * are not its dispatch's, an MoE capacity factor (which tokens an expert drops depends on all of the
 * micro-batch's), dense layers among MoE ones, ALiBi, the cuda backend. Memory: each rank holds its
 * blocks of the weights (with --check rank 0 also the whole single-rank model) and each edge keeps its converted input to
 * the iteration's end: not an arena sized from the lowering. */
#include "exec/exec.h"
#include "exec/exec_private.h"
#include "exec/check.h"
#include "exec/moe_kernels.h"
#include "traces/traces.h"

#include <limits.h>
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>


#define MAXD ST_G_MAXDIM
#define ENTERING (-2)
#define REMOTE_TWIN (-2) /* ox_param.twin: the tied copy is on another stage */

/* ---------------------------------------------------------------- layouts and blocks */

typedef struct ox_mesh {
    int naxes, size[2], n; /* n devices */
} ox_mesh;

static void coords_of(const ox_mesh *M, int r, int c[2]) {
    c[1] = M->naxes > 1 ? r % M->size[1] : 0;
    c[0] = M->naxes > 1 ? r / M->size[1] : r;
}

/* the block of a tensor of dims dim[nd] that layout l gives the device at coordinates c: lo and len per
 * dimension (a dimension split by both axes: axis 0's the outer index); its elements; 0 when a dimension does
 * not divide */
static int64_t block_of(const ox_mesh *M, const int64_t *dim, int nd, st_layout l, const int c[2], int64_t *lo,
                        int64_t *len) {
    int64_t n = 1;
    for (int d = 0; d < nd; d++) {
        int64_t div = 1, idx = 0;
        for (int a = 0; a < M->naxes; a++)
            if (l.ax[a] == d) div *= M->size[a], idx = idx * M->size[a] + c[a];
        if (dim[d] % div) return 0;
        len[d] = dim[d] / div, lo[d] = idx * len[d];
        n *= len[d];
    }
    return n;
}

static int valid_layout(const ox_mesh *M, const int64_t *dim, int nd, st_layout l) {
    int64_t lo[MAXD], len[MAXD];
    int c[2] = {0, 0};
    return nd == 0 || block_of(M, dim, nd, l, c, lo, len) > 0;
}

static int same_layout(const ox_mesh *M, st_layout a, st_layout b) {
    for (int x = 0; x < M->naxes; x++)
        if (a.ax[x] != b.ax[x] || ((a.partial ^ b.partial) & (1u << x))) return 0;
    return 1;
}

/* whether the device at cs sends to the one at cr when turning `from` into `to` (the elements both blocks
 * hold): along an axis where `from` is replicated, or partial and staying so, only the one at the receiver's
 * coordinate (each element from one holder); split or partial turning whole: every one (partial sums added) */
static int sends(const ox_mesh *M, st_layout from, st_layout to, const int cs[2], const int cr[2]) {
    for (int a = 0; a < M->naxes; a++) {
        int pf = (from.partial >> a) & 1, pt = (to.partial >> a) & 1;
        if (from.ax[a] < 0 && (!pf || pt) && cs[a] != cr[a]) return 0;
    }
    return 1;
}

/* the intersection of two blocks: 0 when empty */
static int64_t intersect(int nd, const int64_t *alo, const int64_t *alen, const int64_t *blo, const int64_t *blen,
                         int64_t *lo, int64_t *len) {
    int64_t n = 1;
    for (int d = 0; d < nd; d++) {
        int64_t s = alo[d] > blo[d] ? alo[d] : blo[d];
        int64_t e = alo[d] + alen[d] < blo[d] + blen[d] ? alo[d] + alen[d] : blo[d] + blen[d];
        if (e <= s) return 0;
        lo[d] = s, len[d] = e - s, n *= len[d];
    }
    return n;
}

/* Copies the box [lo, lo + len) between a buffer holding the block at blo/blen (row-major) and a packed one
 * (row-major over the box): pack 1 block -> packed, 0 packed -> block added (+=). */
static void box_copy(int nd, const int64_t *blo, const int64_t *blen, const int64_t *lo, const int64_t *len,
                     float *block, float *packed, int pack) {
    int64_t idx[MAXD] = {0}, total = 1;
    for (int d = 0; d < nd; d++) total *= len[d];
    if (nd == 0) total = 1;
    int64_t inner = nd ? len[nd - 1] : 1;
    for (int64_t k = 0; k < total; k += inner) {
        int64_t off = 0;
        for (int d = 0; d < nd; d++) off = off * blen[d] + (lo[d] - blo[d] + (d == nd - 1 ? 0 : idx[d]));
        float *b = block + off, *p = packed + k;
        if (pack) memcpy(p, b, (size_t)inner * sizeof *p);
        else
            for (int64_t i = 0; i < inner; i++) b[i] += p[i];
        for (int d = nd - 2; d >= 0; d--) { /* the next row of the box */
            if (++idx[d] < len[d]) break;
            idx[d] = 0;
        }
    }
}

/* W [K x N] -> Wt [N x K] */
static void transpose(float *dst, const float *src, int64_t K, int64_t N) {
    for (int64_t k = 0; k < K; k++)
        for (int64_t n = 0; n < N; n++) dst[n * K + k] = src[k * N + n];
}

/* What device s sends device r turning layout `from` into `to` (a tensor of dims dim[nd] on mesh M): the box
 * [lo, lo + len) of global indices, its elements (0: nothing) */
static int64_t pair_box(const ox_mesh *M, const int64_t *dim, int nd, st_layout from, st_layout to, int s, int r,
                        int64_t *lo, int64_t *len) {
    int cs[2], cr[2];
    coords_of(M, s, cs), coords_of(M, r, cr);
    if (!sends(M, from, to, cs, cr)) return 0;
    int64_t alo[MAXD], alen[MAXD], blo[MAXD], blen[MAXD];
    block_of(M, dim, nd, from, cs, alo, alen);
    block_of(M, dim, nd, to, cr, blo, blen);
    return nd ? intersect(nd, alo, alen, blo, blen, lo, len) : 1;
}

int st__xreshard_mem(const int *size, int naxes, const int64_t *dim, int nd, st_layout from, st_layout to,
                     float *const *src, float **dst) {
    ox_mesh M = {naxes, {size[0], naxes > 1 ? size[1] : 1}, 0};
    M.n = M.size[0] * M.size[1];
    int64_t lo[MAXD], len[MAXD], flo[MAXD], flen[MAXD], tlo[MAXD], tlen[MAXD];
    for (int r = 0; r < M.n; r++) dst[r] = NULL;
    if (nd > MAXD || !valid_layout(&M, dim, nd, from) || !valid_layout(&M, dim, nd, to)) return ST_EINVAL;
    for (int r = 0; r < M.n; r++) {
        int cr[2];
        coords_of(&M, r, cr);
        int64_t n = nd ? block_of(&M, dim, nd, to, cr, tlo, tlen) : 1;
        if (!(dst[r] = calloc((size_t)n, sizeof(float)))) return ST_ENOMEM;
        for (int s = 0; s < M.n; s++) {
            int64_t k = pair_box(&M, dim, nd, from, to, s, r, lo, len);
            if (!k) continue;
            float *buf = malloc((size_t)k * sizeof *buf);
            if (!buf) return ST_ENOMEM;
            int cs[2];
            coords_of(&M, s, cs);
            block_of(&M, dim, nd, from, cs, flo, flen);
            box_copy(nd, flo, flen, lo, len, src[s], buf, 1);
            box_copy(nd, tlo, tlen, lo, len, dst[r], buf, 0);
            free(buf);
        }
    }
    return 0;
}

/* ---------------------------------------------------------------- the rank's state */

enum { P_WEIGHT, P_HIDDEN };

/* One parameter as this device holds it: a weight input of an operator (its block under the operator's labels),
 * or a tensor the graph folds into its operator (biases, LayerNorm's bias, learned positions). */
typedef struct ox_param {
    int op, in;          /* graph op; its input (P_WEIGHT) or -1 */
    int slot;            /* the stage-local layer (block ops), else 0 */
    int layer;           /* the model's block, -1 outside */
    char labels[MAXD + 1];
    int nd;
    int64_t dim[MAXD], lo[MAXD], len[MAXD], n;
    st_layout l;
    const char *ref;     /* the reference tensor's name (exec/model.c's) */
    int fold;            /* how its elements map onto the reference tensor (FOLD_*) */
    unsigned reduce;     /* mesh axes its gradient is summed over */
    unsigned one;        /* mesh axes on which only coordinate 0 adds it (and its gradient): its op's partial axes */
    int twin;            /* the tied copy (another param), REMOTE_TWIN (on another stage), or -1 */
    int zero;            /* ZeRO-1: Adam on a shard [slo, slo + sn) */
    int64_t slo, sn, stk_lo[2], stk_n[2]; /* the shard, and before each reduce-scatter (by axis) */
    unsigned done, rs;   /* axes reduced this step; of those, reduce-scattered (ZeRO-1) and not gathered yet */
    float *w, *g, *m, *v;
} ox_param;

enum { FOLD_PLAIN, FOLD_T, FOLD_QKV, FOLD_QKVB, FOLD_PROJ, FOLD_FC1, FOLD_FC1B, FOLD_VEC, FOLD_EFC1, FOLD_EFC2 };

typedef struct ox_val {
    float *v;
    st_layout l;
    int64_t n;
    int owned;
} ox_val;

/* an edge (consumer op, layer slot, input): forward its input converted from the producer's layout, backward its
 * gradient on the way back */
typedef struct ox_edge {
    ox_val f, b;
    int fstarted;  /* f holds the edge (from its producer's value, maybe converted part of the way) */
    int restarted; /* a recompute started f again this iteration */
    int bleft;     /* backward: the collective steps still to come (-1: none pending) */
} ox_edge;

/* what one operator of one layer keeps for its backward */
typedef struct ox_saved {
    float *a, *b, *c, *d; /* norm: mean, rstd; attention: q, k, v, probs; loss: the softmax */
} ox_saved;

typedef struct ox_mb {
    ox_val *val;   /* [tensor][slot] */
    ox_val *grad;  /* [tensor][slot] (the producer's layout, whole) */
    ox_edge *edge; /* [op][slot][input] */
    ox_saved *sv;  /* [op][slot] */
    int32_t *tokens; /* [mbs][S + 1] */
    int64_t *cap;    /* [slot]: MoE, the dispatched tensors' capacity in this micro-batch (0: not routed yet) */
} ox_mb;

/* one item of the program as this runtime walks it (lower_as.c's order) */
enum { IT_COMPUTE, IT_COLL, IT_EMPTY, IT_SYNC, IT_SEND, IT_RECV };
typedef struct ox_item {
    int type, part, bwd, phase, layer, i0, i1, mb, axis, gather, freed;
} ox_item;

typedef struct ox {
    const st_model *m;
    const st_autoshard_result *r;
    const st_graph *g;
    const st_as_stage *st;
    st_as_work w;
    const st_program *pg;
    const st__xbackend *be;
    ox_mesh M;
    int rank, c[2], nslots, layers, stage; /* rank: in the stage's mesh (row-major coordinates c) */
    int64_t mbs, S, Mb, V, h, d, kv, qper;
    int swiglu, rope, bias, layernorm, tied;
    uint64_t seed;
    int64_t E, topk;         /* MoE: experts, each token's choices (0: dense) */
    int dispatch;            /* MoE: the block's dispatch operator, whose routing its combine follows (-1: none) */
    st_graph gx;             /* r->g with the dispatched tensors' capacity made the micro-batch's tokens (moe_dims) */
    signed char *cdim;       /* MoE: per tensor, its capacity dimension (-1: none), whose size is the micro-batch's */
    MPI_Comm comm;           /* the stage's devices (MPI_ERRORS_RETURN) */
    MPI_Comm all;            /* every stage's (a duplicate of the world) */
    int nstages, base[ST_MAX_STAGES + 1]; /* the world rank of each stage's first device */
    MPI_Request *reqs;       /* the sends of the running iteration, their buffers */
    float **sbufs;
    int nsend, capsend;
    MPI_Comm axc[4];         /* by axis mask: the devices that differ only there */
    st__xwatch wt;
    int nparams;
    ox_param *p;
    ox_mb *mb;
    ox_item *it;
    int nit, capit;
    st__xmodel ref;          /* the single-rank model: its table (the initial weights), and on rank 0 with --check
                                the reference, whole */
    st__xcheck chk;              /* --check: this step's owned reduced gradient elements (compare_grads; sent to rank
                                    0 after the step, st__xcheck_gather) */
    float *rm, *rv;
    double loss_sum, coll_s, opt_s;
    int adam_done;
    float *scratch;
    int64_t nscratch;
} ox;

static float *scratch(ox *X, int64_t n) {
    if (n > X->nscratch) {
        free(X->scratch);
        X->scratch = malloc((size_t)n * sizeof(float));
        X->nscratch = X->scratch ? n : 0;
    }
    return X->scratch;
}

static int slot_count(const ox *X, int op) { return X->g->ops[op].block ? X->nslots : 1; }
static ox_val *val_at(ox *X, int mb, int t, int slot) { return &X->mb[mb].val[t * X->nslots + slot]; }
static ox_val *grad_at(ox *X, int mb, int t, int slot) { return &X->mb[mb].grad[t * X->nslots + slot]; }
static ox_edge *edge_at(ox *X, int mb, int op, int slot, int i) {
    return &X->mb[mb].edge[(op * X->nslots + slot) * ST_G_MAXIN + i];
}
static ox_saved *saved_at(ox *X, int mb, int op, int slot) { return &X->mb[mb].sv[op * X->nslots + slot]; }

static void val_free(ox_val *v) {
    if (v->owned) free(v->v);
    memset(v, 0, sizeof *v);
}

/* tensor t's dimensions in micro-batch mb, layer slot `slot`: the graph's, an MoE dispatched tensor's capacity that
 * of the micro-batch's routing (moe_cap); buf holds them where they differ */
static const int64_t *tdims(const ox *X, int mb, int slot, int t, int64_t *buf) {
    const st_gtensor *T = &X->g->t[t];
    if (!X->cdim || X->cdim[t] < 0) return T->dim;
    memcpy(buf, T->dim, sizeof T->dim);
    buf[X->cdim[t]] = X->mb[mb].cap[slot];
    return buf;
}

/* ---------------------------------------------------------------- labels (search/autoshard.c's rules) */

static int alias_of(const st_gop *o, char l) {
    for (int i = 0; o->alias_from[i]; i++)
        if (o->alias_from[i] == l) return o->alias_to[i];
    return 0;
}

static int dim_of(const st_gop *o, const char *lab, char l) {
    const char *p = l ? strchr(lab, l) : NULL;
    if (p) return (int)(p - lab);
    int a = l ? alias_of(o, l) : 0;
    if (a && (p = strchr(lab, a))) return (int)(p - lab);
    return -1;
}

/* op's input i's layout under the stage's labels */
static st_layout in_layout(const ox *X, int op, int i) {
    st_layout l = {{-1, -1}, 0};
    const st_gop *o = &X->g->ops[op];
    for (int a = 0; a < X->M.naxes; a++) l.ax[a] = (signed char)dim_of(o, o->lab[i], X->st->choice[op].lab[a]);
    return l;
}

static st_layout out_layout(const ox *X, int op) { return X->st->choice[op].out; }

/* How an activation arrives from the previous stage's mesh (search/autoshard.c's arrival, Zhuang et al. 2023):
 * each axis splits the first dimension that still divides by it (replicated along one that divides none). */
static st_layout arrival_layout(const ox_mesh *M, const st_gtensor *T) {
    st_layout l = {{-1, -1}, 0};
    int64_t left[MAXD];
    for (int d = 0; d < T->ndim; d++) left[d] = T->dim[d];
    for (int a = 0; a < M->naxes; a++) {
        if (M->size[a] <= 1) continue;
        for (int d = 0; d < T->ndim; d++)
            if (left[d] % M->size[a] == 0) {
                l.ax[a] = (signed char)d;
                left[d] /= M->size[a];
                break;
            }
    }
    return l;
}

/* the layout an edge's gradient goes back to: its source's output, whole (the entering activation's arrival; the
 * dispatch's input for a combine's logits) */
static int via_dispatch(const ox *X, int op, int i);
static st_layout back_layout(const ox *X, int op, int i, int pr) {
    if (pr == ENTERING) return arrival_layout(&X->M, &X->g->t[X->g->block_in]);
    st_layout l = via_dispatch(X, op, i) ? in_layout(X, pr, 1) : out_layout(X, pr);
    l.partial = 0;
    return l;
}

/* the input gradient's layout: the input's, partial along the axes that split a label the input lacks */
static st_layout grad_layout(const ox *X, int op, int i) {
    st_layout l = in_layout(X, op, i);
    const st_gop *o = &X->g->ops[op];
    for (int a = 0; a < X->M.naxes; a++) {
        char c = X->st->choice[op].lab[a];
        if (c && l.ax[a] < 0 && dim_of(o, o->lab[i], c) < 0) l.partial |= (unsigned char)(1u << a);
    }
    return l;
}

/* whether op's input i is an MoE combine's router logits, which the dispatch carries (search/autoshard.c's
 * edge_source, Megatron-Core's token dispatcher): resharded from the dispatch's input, and backward to its layout,
 * where the combine's gradient takes the place of the dispatch's (0: the routing takes none) before the one way
 * back to the router */
static int via_dispatch(const ox *X, int op, int i) {
    const st_gop *o = &X->g->ops[op];
    return X->dispatch >= 0 && o->type == ST_GOP_COMBINE && i == 1 && X->g->ops[X->dispatch].nin > 1 &&
           X->g->ops[X->dispatch].in[1] == o->in[1];
}

/* the op (and its layer slot) whose output op's input i reads in layer slot `slot` (the dispatch for a combine's
 * logits: via_dispatch); -1: none in the stage, ENTERING: the activation the stage receives from the one before
 * (the first layer's input) */
static int source_of(const ox *X, int op, int i, int slot, int *sslot, int *tensor) {
    const st_graph *g = X->g;
    int t = g->ops[op].in[i];
    *sslot = 0, *tensor = t;
    if (via_dispatch(X, op, i)) {
        *sslot = slot;
        return X->dispatch;
    }
    if (g->ops[op].block && t == g->block_in) {
        if (slot == 0) return X->st->first > 0 ? ENTERING : g->t[t].producer;
        *tensor = g->block_out, *sslot = slot - 1;
        return g->t[g->block_out].producer;
    }
    int pr = g->t[t].producer;
    if (pr >= 0 && g->ops[pr].block) *sslot = g->ops[op].block ? slot : X->nslots - 1;
    return pr;
}

/* ---------------------------------------------------------------- communication */

static double now_s(void) { return MPI_Wtime(); }

/* the communicator of the devices that differ from this one only along the axes of mask */
static MPI_Comm axis_comm(const ox *X, unsigned mask) { return X->axc[mask & 3]; }

/* in-place sum over the devices of mask */
static void allreduce(ox *X, float *buf, int64_t n, unsigned mask, int max, const char *what) {
    if (!mask || n == 0) return;
    MPI_Comm c = axis_comm(X, mask);
    MPI_Request q = MPI_REQUEST_NULL;
    int rc = MPI_Iallreduce(MPI_IN_PLACE, buf, (int)n, MPI_FLOAT, max ? MPI_MAX : MPI_SUM, c, &q);
    st__xwait(&X->wt, rc, &q, 1, what, c, -1);
}

/* Turns val (a block of a tensor of dims dim[nd], layout v->l) into layout `to`: an all-reduce where only partial
 * sums become whole, else one exchange of the blocks' intersections over the stage (MPI_Alltoallv; local when
 * no device needs another's). Every device calls it alike (each decides from the same layouts). 0 or ST_ENOMEM. */
static int reshard(ox *X, ox_val *v, const int64_t *dim, int nd, st_layout to, const char *what) {
    const ox_mesh *M = &X->M;
    if (same_layout(M, v->l, to)) return 0;
    int64_t slo[MAXD], slen[MAXD], dlo[MAXD], dlen[MAXD], lo[MAXD], len[MAXD];
    /* partial sums made whole, nothing else: the all-reduce over those axes */
    unsigned only = 0;
    int pure = 1;
    for (int a = 0; a < M->naxes; a++) {
        int pf = (v->l.partial >> a) & 1, pt = (to.partial >> a) & 1;
        if (v->l.ax[a] != to.ax[a] || (pt && !pf)) pure = 0;
        if (pf && !pt) {
            if (to.ax[a] >= 0) pure = 0;
            only |= 1u << a;
        }
    }
    if (pure && only) {
        if (!v->owned) {
            float *cp = malloc((size_t)(v->n ? v->n : 1) * sizeof *cp);
            if (!cp) return ST_ENOMEM;
            memcpy(cp, v->v, (size_t)v->n * sizeof *cp);
            v->v = cp, v->owned = 1;
        }
        allreduce(X, v->v, v->n, only, 0, what);
        v->l = to;
        return 0;
    }
    int n = M->n, me = X->rank;
    int *sc = calloc((size_t)(4 * n), sizeof *sc), *sd = sc + n, *rcnt = sc + 2 * n, *rd = sc + 3 * n;
    if (!sc) return ST_ENOMEM;
    int64_t nout = block_of(M, dim, nd, to, X->c, dlo, dlen);
    if (nd == 0) nout = 1;
    block_of(M, dim, nd, v->l, X->c, slo, slen);
    int remote = 0;
    int64_t stot = 0, rtot = 0;
    /* every pair's box: the same decision on every device */
    for (int s = 0; s < n; s++) {
        for (int r = 0; r < n; r++) {
            int64_t k = pair_box(M, dim, nd, v->l, to, s, r, lo, len);
            if (!k) continue;
            if (s != r) remote = 1;
            if (s == me) sc[r] = (int)k, stot += k;
            if (r == me) rcnt[s] = (int)k, rtot += k;
            if (stot > INT_MAX || rtot > INT_MAX) { /* (MPI's int displacements: partial holders each send a box) */
                free(sc);
                return ST_EINVAL;
            }
        }
    }
    float *out = calloc((size_t)(nout ? nout : 1), sizeof *out);
    float *sb = malloc((size_t)(stot + 1) * sizeof *sb), *rb = malloc((size_t)(rtot + 1) * sizeof *rb);
    if (!out || !sb || !rb) {
        free(out), free(sb), free(rb), free(sc);
        return ST_ENOMEM;
    }
    for (int k = 0, so = 0, ro = 0; k < n; k++) sd[k] = so, so += sc[k], rd[k] = ro, ro += rcnt[k];
    for (int r = 0; r < n; r++) {
        if (!sc[r]) continue;
        pair_box(M, dim, nd, v->l, to, me, r, lo, len);
        box_copy(nd, slo, slen, lo, len, v->v, sb + sd[r], 1);
    }
    if (remote) {
        MPI_Request q = MPI_REQUEST_NULL;
        int rc = MPI_Ialltoallv(sb, sc, sd, MPI_FLOAT, rb, rcnt, rd, MPI_FLOAT, X->comm, &q);
        st__xwait(&X->wt, rc, &q, 1, what, X->comm, -1);
    } else {
        memcpy(rb, sb, (size_t)stot * sizeof *rb);
    }
    for (int s = 0; s < n; s++) {
        if (!rcnt[s]) continue;
        pair_box(M, dim, nd, v->l, to, s, me, lo, len);
        box_copy(nd, dlo, dlen, lo, len, out, rb + rd[s], 0);
    }
    free(sb), free(rb), free(sc);
    val_free(v);
    v->v = out, v->l = to, v->n = nout, v->owned = 1;
    return 0;
}

/* One step of an edge's conversion from cur towards dst: along axis a (-1: all that is left). Slices go first
 * where the layout they make divides (cost/reshard.c: they shrink what the steps move). */
static int reshard_axis(ox *X, ox_val *v, const int64_t *dim, int nd, st_layout dst, int a, const char *what) {
    st_layout t = v->l;
    if (a >= 0) {
        t.ax[a] = dst.ax[a];
        t.partial = (unsigned char)((t.partial & ~(1u << a)) | (dst.partial & (1u << a)));
        if (!valid_layout(&X->M, dim, nd, t)) t = dst;
    } else {
        t = dst;
    }
    return reshard(X, v, dim, nd, t, what);
}

/* the local slices (replicated to split) of an edge that starts, where the layout they make divides */
static int slices_first(ox *X, ox_val *v, const int64_t *dim, int nd, st_layout dst) {
    st_layout t = v->l;
    int any = 0;
    for (int a = 0; a < X->M.naxes; a++)
        if (t.ax[a] < 0 && !((t.partial >> a) & 1) && dst.ax[a] >= 0) t.ax[a] = dst.ax[a], any = 1;
    if (!any || !valid_layout(&X->M, dim, nd, t)) return 0;
    return reshard(X, v, dim, nd, t, "slice");
}

/* stage s's mesh */
static ox_mesh mesh_of(const ox *X, int s) {
    const st_mesh *m = &X->r->stage[s].mesh;
    ox_mesh M = {m->naxes, {m->size[0], m->naxes > 1 ? m->size[1] : 1}, 0};
    M.n = M.size[0] * M.size[1];
    return M;
}

static int keep_send(ox *X, float *buf, MPI_Request q) {
    if (X->nsend == X->capsend) {
        int cap = X->capsend ? 2 * X->capsend : 64;
        MPI_Request *r = realloc(X->reqs, (size_t)cap * sizeof *r);
        if (r) X->reqs = r;
        float **b = realloc(X->sbufs, (size_t)cap * sizeof *b);
        if (b) X->sbufs = b;
        if (!r || !b) return ST_ENOMEM;
        X->capsend = cap;
    }
    X->reqs[X->nsend] = q, X->sbufs[X->nsend++] = buf;
    return 0;
}

/* A tensor's move between two stages' meshes (the lowering's send and receive, each device pair its share):
 * from stage sf's devices (layout lf of dims dim[nd]) to stage st's (layout lt; with swap its dims are the two of
 * dim swapped: the tied table), each element from the holder at coordinate 0 along lf's replicated axes. This
 * device sends its part (src, its block under lf; the sends complete by the iteration's end) when it is on sf,
 * and receives, adding into out (its block under lt), when on st; both when the two are one stage's. */
static int xmesh(ox *X, int sf, st_layout lf, int stt, st_layout lt, const int64_t *dim, int nd, int swap,
                 const float *src, float *out, int tag, const char *what) {
    ox_mesh F = mesh_of(X, sf), T = mesh_of(X, stt);
    int64_t flo[MAXD], flen[MAXD], tlo[MAXD], tlen[MAXD], lo[MAXD], len[MAXD], rdim[MAXD];
    for (int d = 0; d < nd; d++) rdim[d] = dim[swap ? nd - 1 - d : d];
    int me_f = X->stage == sf ? X->rank : -1, me_t = X->stage == stt ? X->rank : -1, rc = 0;
    for (int k = 0; k < F.n && !rc; k++) {
        int ck[2];
        coords_of(&F, k, ck);
        int holder = 1;
        for (int a = 0; a < F.naxes; a++) holder &= lf.ax[a] >= 0 || ck[a] == 0;
        if (!holder || (k != me_f && me_t < 0)) continue;
        block_of(&F, dim, nd, lf, ck, flo, flen);
        for (int j = 0; j < T.n && !rc; j++) {
            if (k != me_f && j != me_t) continue;
            int cj[2];
            coords_of(&T, j, cj);
            int64_t rlo[MAXD], rlen[MAXD];
            block_of(&T, rdim, nd, lt, cj, rlo, rlen);
            for (int d = 0; d < nd; d++) tlo[d] = rlo[swap ? nd - 1 - d : d], tlen[d] = rlen[swap ? nd - 1 - d : d];
            int64_t n = intersect(nd, flo, flen, tlo, tlen, lo, len);
            if (!n) continue;
            int peer_to = X->base[stt] + j, peer_from = X->base[sf] + k;
            if (k == me_f) { /* pack in the receiver's order */
                float *b = malloc((size_t)n * sizeof *b), *t = swap ? malloc((size_t)n * sizeof *t) : NULL;
                if (!b || (swap && !t)) {
                    free(b), free(t);
                    rc = ST_ENOMEM;
                    break;
                }
                box_copy(nd, flo, flen, lo, len, (float *)src, swap ? t : b, 1);
                if (swap) transpose(b, t, len[0], len[1]), free(t);
                MPI_Request q = MPI_REQUEST_NULL;
                int mrc = MPI_Isend(b, (int)n, MPI_FLOAT, peer_to, tag, X->all, &q);
                if (mrc != MPI_SUCCESS) st__xwait(&X->wt, mrc, &q, 1, what, X->all, peer_to);
                if ((rc = keep_send(X, b, q))) free(b);
            }
            if (j == me_t) { /* (each sender's in turn: the sends are posted, not waited for) */
                float *buf = malloc((size_t)n * sizeof *buf);
                if (!buf) {
                    rc = ST_ENOMEM;
                    break;
                }
                MPI_Request q = MPI_REQUEST_NULL;
                st__xwait(&X->wt, MPI_Irecv(buf, (int)n, MPI_FLOAT, peer_from, tag, X->all, &q), &q, 1, what, X->all,
                          peer_from);
                int64_t blo[MAXD], blen[MAXD];
                for (int d = 0; d < nd; d++) blo[d] = lo[swap ? nd - 1 - d : d], blen[d] = len[swap ? nd - 1 - d : d];
                block_of(&T, rdim, nd, lt, cj, rlo, rlen);
                box_copy(nd, rlo, rlen, blo, blen, out, buf, 0);
                free(buf);
            }
        }
    }
    return rc;
}

/* ---------------------------------------------------------------- parameters */

/* the reference's tensor `name` of layer (and expert, or -1) */
static const st__xtensor *ref_tensor(const ox *X, const char *name, int layer, int64_t expert) {
    for (int j = 0; j < X->ref.ntensors; j++)
        if (X->ref.tensors[j].layer == layer && X->ref.tensors[j].expert == expert &&
            !strcmp(X->ref.tensors[j].name, name))
            return &X->ref.tensors[j];
    return NULL;
}

/* the reference's tensor (*t, NULL when none) and its row and column that p's element at global index gi is */
static void ref_elem(const ox *X, const ox_param *p, const int64_t *gi, const st__xtensor **tp, int64_t *rp,
                     int64_t *cp) {
    const char *name = p->ref;
    int64_t row = 0, col = 0, d = X->d, q = X->qper, expert = -1;
    switch (p->fold) {
    case FOLD_PLAIN: row = gi[0], col = p->nd > 1 ? gi[1] : 0; break;
    case FOLD_T: row = gi[1], col = gi[0]; break;
    case FOLD_VEC: row = gi[0], col = 0; break;
    case FOLD_QKV:
    case FOLD_QKVB: { /* [h,] kv group, its fused width: the group's queries, its key, its value */
        int64_t grp = gi[p->fold == FOLD_QKV ? 1 : 0], c = gi[p->fold == FOLD_QKV ? 2 : 1], j = c / d, e = c % d;
        if (j < q) name = p->fold == FOLD_QKV ? "wq" : "bq", row = (grp * q + j) * d + e;
        else name = j == q ? (p->fold == FOLD_QKV ? "wk" : "bk") : (p->fold == FOLD_QKV ? "wv" : "bv"),
        row = grp * d + e;
        col = p->fold == FOLD_QKV ? gi[0] : 0;
        break;
    }
    case FOLD_PROJ: row = gi[2], col = gi[0] * d + gi[1]; break; /* [heads, d, h] of wo [h x heads d] */
    case FOLD_FC1: /* [h, (2) f]: SwiGLU's gate and up columns interleaved, w1's then w3's of each ffn column */
        if (X->swiglu) name = gi[1] % 2 ? "w3" : "w1", row = gi[1] / 2;
        else row = gi[1];
        col = gi[0];
        break;
    case FOLD_FC1B: /* SwiGLU's fc1 bias [2 f], interleaved as its columns: b1 on w1's (the gate's) half alone
                     * (exec/model.c); the up half's entries have none and stay 0 */
        if (gi[0] % 2) {
            *tp = NULL;
            return;
        }
        row = gi[0] / 2;
        break;
    case FOLD_EFC1: /* [E, h, (2) f]: each expert's fc1 as FOLD_FC1 (moe_w1, moe_w3: [f x h] each) */
        expert = gi[0], col = gi[1], row = X->swiglu ? gi[2] / 2 : gi[2];
        name = X->swiglu && gi[2] % 2 ? "moe_w3" : "moe_w1";
        break;
    case FOLD_EFC2: expert = gi[0], row = gi[2], col = gi[1]; break; /* [E, f, h] of moe_w2 [h x f] */
    }
    const st__xtensor *t = ref_tensor(X, name, p->layer, expert);
    *tp = t && row < t->rows && col < t->cols ? t : NULL, *rp = row, *cp = col;
}

/* its offset in the reference's flat buffers; -1 when none */
static int64_t ref_offset(const ox *X, const ox_param *p, const int64_t *gi) {
    const st__xtensor *t;
    int64_t row, col;
    ref_elem(X, p, gi, &t, &row, &col);
    return t ? t->off + row * t->ncols + col : -1;
}

/* p's initial weights: the single-rank model's (its seeded values, st__xmodel_init_value: no rank needs the whole
 * model unless --check trains it) */
static void init_weights(const ox *X, ox_param *p) {
    int64_t gi[MAXD];
    for (int64_t k = 0; k < p->n; k++) {
        int64_t rest = k, row, col;
        for (int d = p->nd - 1; d >= 0; d--) gi[d] = p->lo[d] + rest % p->len[d], rest /= p->len[d];
        const st__xtensor *t;
        ref_elem(X, p, gi, &t, &row, &col);
        p->w[k] = t ? st__xmodel_init_value(t, X->seed, row, col) : 0;
    }
}

static int add_param(ox *X, int op, int in, int slot, const char *labels, const int64_t *dim, int nd, const char *ref,
                     int fold, unsigned one) {
    if (X->nparams % 64 == 0) {
        ox_param *p = realloc(X->p, (size_t)(X->nparams + 64) * sizeof *p);
        if (!p) return ST_ENOMEM;
        X->p = p;
    }
    ox_param *p = &X->p[X->nparams];
    memset(p, 0, sizeof *p);
    const st_gop *o = &X->g->ops[op];
    p->op = op, p->in = in, p->slot = slot, p->ref = ref, p->fold = fold, p->one = one, p->twin = -1;
    p->layer = o->block ? X->st->first + slot : -1;
    snprintf(p->labels, sizeof p->labels, "%s", labels);
    p->nd = nd;
    for (int d = 0; d < nd; d++) p->dim[d] = dim[d];
    p->l.ax[0] = p->l.ax[1] = -1;
    for (int a = 0; a < X->M.naxes; a++) {
        char c = X->st->choice[op].lab[a];
        int d = in >= 0 ? dim_of(o, labels, c) : (c && strchr(labels, c) ? (int)(strchr(labels, c) - labels) : -1);
        p->l.ax[a] = (signed char)d;
        if (c && d < 0) p->reduce |= 1u << a;
    }
    p->n = block_of(&X->M, dim, nd, p->l, X->c, p->lo, p->len);
    if (!p->n) return ST_EINVAL;
    p->w = calloc((size_t)p->n, sizeof(float)), p->g = calloc((size_t)p->n, sizeof(float));
    p->m = calloc((size_t)p->n, sizeof(float)), p->v = calloc((size_t)p->n, sizeof(float));
    if (!p->w || !p->g || !p->m || !p->v) return ST_ENOMEM;
    X->nparams++;
    init_weights(X, p);
    return 0;
}

/* the parameter of op's input in (or folded one: in -1, the k-th of the op's) in slot; NULL when none */
static ox_param *param_of(ox *X, int op, int in, int slot, int k) {
    for (int i = 0; i < X->nparams; i++) {
        ox_param *p = &X->p[i];
        if (p->op != op || p->slot != slot || p->in != in) continue;
        if (k-- == 0) return p;
    }
    return NULL;
}

/* whether this device adds a folded parameter (coordinate 0 on its `one` axes) */
static int adds(const ox *X, const ox_param *p) {
    for (int a = 0; a < X->M.naxes; a++)
        if (((p->one >> a) & 1) && X->c[a]) return 0;
    return 1;
}

static int make_params(ox *X) {
    const st_graph *g = X->g;
    for (int op = 0; op < g->nops; op++) {
        const st_gop *o = &g->ops[op];
        if (X->st->choice[op].lab[0] == '-') continue;
        for (int s = 0; s < slot_count(X, op); s++) {
            int rc = 0;
            for (int i = 0; i < o->nin && !rc; i++) {
                const st_gtensor *T = &g->t[o->in[i]];
                if (!T->weight) continue;
                const char *ref = NULL;
                int fold = FOLD_PLAIN;
                if (!strcmp(T->name, "embedding.weight")) ref = "wte";
                else if (!strcmp(T->name, "output.weight")) ref = X->tied ? "wte" : "lm_head", fold = FOLD_T;
                else if (!strcmp(T->name, "ln1.weight")) ref = "ln1_w", fold = FOLD_VEC;
                else if (!strcmp(T->name, "ln2.weight")) ref = "ln2_w", fold = FOLD_VEC;
                else if (!strcmp(T->name, "final_norm.weight")) ref = "lnf_w", fold = FOLD_VEC;
                else if (!strcmp(T->name, "qkv.weight")) ref = "wq", fold = FOLD_QKV;
                else if (!strcmp(T->name, "proj.weight")) ref = "wo", fold = FOLD_PROJ;
                else if (!strcmp(T->name, "fc1.weight")) ref = "w1", fold = FOLD_FC1;
                else if (!strcmp(T->name, "fc2.weight")) ref = "w2", fold = FOLD_T;
                else if (!strcmp(T->name, "router.weight")) ref = "router", fold = FOLD_T;
                else if (!strcmp(T->name, "experts.fc1.weight")) ref = "moe_w1", fold = FOLD_EFC1;
                else if (!strcmp(T->name, "experts.fc2.weight")) ref = "moe_w2", fold = FOLD_EFC2;
                else return ST_EINVAL;
                rc = add_param(X, op, i, s, o->lab[i], T->dim, T->ndim, ref, fold, 0);
            }
            /* the tensors the graph folds into its operators */
            const st_gtensor *out = &g->t[o->out];
            unsigned part = out_layout(X, op).partial;
            int64_t hd[1] = {X->h};
            if (!rc && o->type == ST_GOP_NORM && X->layernorm)
                rc = add_param(X, op, -1, s, "h", hd, 1,
                               !strcmp(o->name, "ln1") ? "ln1_b" : !strcmp(o->name, "ln2") ? "ln2_b" : "lnf_b",
                               FOLD_VEC, 0);
            if (!rc && o->type == ST_GOP_EMBEDDING && !X->rope) {
                int64_t pd[2] = {X->S, X->h};
                rc = add_param(X, op, -1, s, "sh", pd, 2, "wpe", FOLD_PLAIN, part);
            }
            if (!rc && !strcmp(o->name, "qkv_bias"))
                rc = add_param(X, op, -1, s, "ne", out->dim + 2, 2, "bq", FOLD_QKVB, 0);
            if (!rc && X->bias && o->type == ST_GOP_MATMUL &&
                (!strcmp(o->name, "proj") || !strcmp(o->name, "fc2") || !strcmp(o->name, "fc1"))) {
                int fc1 = !strcmp(o->name, "fc1");
                int64_t bd[1] = {out->dim[2]};
                const char *ref = fc1 ? "b1" : !strcmp(o->name, "proj") ? "bo" : "b2";
                rc = add_param(X, op, -1, s, fc1 ? "f" : "h", bd, 1, ref, fc1 && X->swiglu ? FOLD_FC1B : FOLD_VEC,
                               part);
            }
            if (rc) return rc;
        }
    }
    /* the tied output layer and embedding: two blocks of one table */
    for (int i = 0; i < X->nparams && X->tied; i++)
        for (int j = 0; j < X->nparams; j++)
            if (i != j && X->p[i].in >= 0 && X->p[j].in >= 0 && !strcmp(X->p[i].ref, "wte") &&
                !strcmp(X->p[j].ref, "wte"))
                X->p[i].twin = j;
    /* with several stages the two are on the first and the last stage's meshes */
    for (int i = 0; i < X->nparams && X->tied && X->nstages > 1; i++)
        if (X->p[i].in >= 0 && !strcmp(X->p[i].ref, "wte")) X->p[i].twin = REMOTE_TWIN;
    for (int i = 0; i < X->nparams; i++) X->p[i].zero = X->st->zero && X->p[i].twin == -1 && X->p[i].reduce;
    return 0;
}

/* ---------------------------------------------------------------- the operators */

/* the local tokens of a block [b0, b0 + bl) x [s0, s0 + sl): rows of sl + 1 (the last: the next token, the
 * targets' layout of st__xembed_fwd and st__xxent_exp) */
static int32_t *local_tokens(const ox *X, int mb, int64_t b0, int64_t bl, int64_t s0, int64_t sl) {
    int32_t *t = malloc((size_t)(bl * (sl + 1)) * sizeof *t);
    if (!t) return NULL;
    const int32_t *all = X->mb[mb].tokens;
    for (int64_t b = 0; b < bl; b++)
        for (int64_t s = 0; s <= sl; s++) t[b * (sl + 1) + s] = all[(b0 + b) * (X->S + 1) + s0 + s];
    return t;
}


/* a batched matmul (the experts' "ech,ehf->ecf"): the first label of all three the batch */
static int batched(const st_gop *o) {
    return o->lab[0][0] && o->lab[0][0] == o->lab[1][0] && o->lab[0][0] == o->lab_out[0];
}

/* a matmul's local sizes: in0 = (batch) M labels then K, in1 = (batch) K then N, out = (batch) M then N (checked
 * at setup); B: the batch's local size (1: none) */
static void gemm_sizes(const ox *X, int mb, int slot, int op, int64_t *B, int64_t *M, int64_t *K, int64_t *N) {
    const st_graph *g = X->g;
    const st_gop *o = &g->ops[op];
    int64_t lo[MAXD], len[MAXD], db[MAXD];
    const st_gtensor *a = &g->t[o->in[0]], *w = &g->t[o->in[1]];
    block_of(&X->M, tdims(X, mb, slot, o->in[0], db), a->ndim, in_layout(X, op, 0), X->c, lo, len);
    int bt = batched(o);
    size_t nk = strlen(o->lab[0]) + strlen(o->lab[1]) - strlen(o->lab_out) - (size_t)bt;
    nk /= 2;
    *B = bt ? len[0] : 1, *M = *K = *N = 1;
    for (int d = bt; d < a->ndim; d++) *(d < a->ndim - (int)nk ? M : K) *= len[d];
    block_of(&X->M, w->dim, w->ndim, in_layout(X, op, 1), X->c, lo, len);
    for (int d = (int)nk + bt; d < w->ndim; d++) *N *= len[d];
}

static int checked_gemm(const st_gop *o) {
    int bt = batched(o);
    const char *a = o->lab[0] + bt, *w = o->lab[1] + bt, *out = o->lab_out + bt;
    size_t la = strlen(a), lw = strlen(w), lo = strlen(out);
    if (o->nin != 2 || la + lw < lo || (la + lw - lo) % 2) return 0;
    size_t nk = (la + lw - lo) / 2, nm = la - nk;
    return nk <= la && nk <= lw && nm + (lw - nk) == lo && !strncmp(a + nm, w, nk) && !strncmp(out, a, nm) &&
           !strcmp(out + nm, w + nk);
}

/* the input values of op in slot (its edges, converted) */
static const ox_val *input(ox *X, int mb, int op, int slot, int i) { return &edge_at(X, mb, op, slot, i)->f; }

static float *new_out(ox *X, int mb, int op, int slot, int zero) {
    const st_gtensor *t = &X->g->t[X->g->ops[op].out];
    ox_val *o = val_at(X, mb, X->g->ops[op].out, slot);
    int64_t lo[MAXD], len[MAXD], db[MAXD];
    int64_t n = t->ndim ? block_of(&X->M, tdims(X, mb, slot, X->g->ops[op].out, db), t->ndim, out_layout(X, op), X->c,
                                   lo, len)
                        : 1;
    if (o->v && o->owned && o->n == n) { /* a recompute: the same buffer, which edges may still read */
        if (zero) memset(o->v, 0, (size_t)n * sizeof *o->v);
        return o->v;
    }
    val_free(o);
    o->l = out_layout(X, op);
    o->n = n;
    o->v = zero ? calloc((size_t)o->n, sizeof(float)) : malloc((size_t)o->n * sizeof(float));
    o->owned = 1;
    return o->v;
}

/* the rows' rotary embedding on the whole heads of a [bl, sl, nl, el] block of QKV's output (rows at positions
 * s0 ..), sign -1: backward; the backend's kernel rotates a row at its place in a run from position 0, so each
 * sequence's rows go into a run of s0 + sl rows */
static int rope_block(ox *X, float *x, const int64_t *lo, const int64_t *len, int sign) {
    int64_t bl = len[0], s0 = lo[1], sl = len[1], nl = len[2], e0 = lo[3], el = len[3], d = X->d, w = nl * el;
    int64_t hpg = X->qper + 2, heads = el / d;
    float *run = calloc((size_t)((s0 + sl) * d), sizeof *run);
    if (!run) return ST_ENOMEM;
    for (int64_t b = 0; b < bl; b++)
        for (int64_t n = 0; n < nl; n++)
            for (int64_t j = 0; j < heads; j++) {
                if ((e0 / d + j) % hpg == X->qper + 1) continue; /* the value: not rotated */
                float *col = x + b * sl * w + n * el + j * d;
                for (int64_t s = 0; s < sl; s++) memcpy(run + (s0 + s) * d, col + s * w, (size_t)d * sizeof *run);
                X->be->rope(run, s0 + sl, s0 + sl, 1, d, d, sign);
                for (int64_t s = 0; s < sl; s++) memcpy(col + s * w, run + (s0 + s) * d, (size_t)d * sizeof *run);
            }
    free(run);
    return 0;
}

/* The rotary embedding of op's block x (its output layout; sign -1: backward) where some device's block cuts a
 * head (a split of the fused width finer than a head, or off its bounds: the rotation pairs a head's halves): the
 * block gathered along the axes that split the width, rotated whole, sliced back (every device alike). */
static int rope_op(ox *X, int op, float *x, const int64_t *lo, const int64_t *len, int sign) {
    const st_gtensor *T = &X->g->t[X->g->ops[op].out];
    st_layout l = out_layout(X, op), whole = l;
    int cut = 0;
    for (int dev = 0; dev < X->M.n; dev++) {
        int c[2];
        int64_t dlo[MAXD], dlen[MAXD];
        coords_of(&X->M, dev, c);
        block_of(&X->M, T->dim, T->ndim, l, c, dlo, dlen);
        cut |= dlo[3] % X->d || dlen[3] % X->d;
    }
    if (!cut) return rope_block(X, x, lo, len, sign);
    for (int a = 0; a < X->M.naxes; a++)
        if (whole.ax[a] == 3) whole.ax[a] = -1;
    int64_t wlo[MAXD], wlen[MAXD], n = block_of(&X->M, T->dim, T->ndim, l, X->c, wlo, wlen);
    ox_val v = {x, l, n, 0};
    int rc = reshard(X, &v, T->dim, T->ndim, whole, "rope all-gather");
    block_of(&X->M, T->dim, T->ndim, whole, X->c, wlo, wlen);
    if (!rc) rc = rope_block(X, v.v, wlo, wlen, sign);
    if (!rc) rc = reshard(X, &v, T->dim, T->ndim, l, "rope slice");
    if (!rc) memcpy(x, v.v, (size_t)n * sizeof *x);
    val_free(&v);
    return rc;
}

/* MoE (dropless, Megatron-Core's MoELayer as exec/model.c runs it): the dispatch's output [E, C, h] holds, in
 * each device's capacity block (its tokens': the capacity splits as the tokens do), each expert's tokens of the
 * device in their order (the rows of its [b, s] block), zeros after them. The capacity is the micro-batch's: the
 * most tokens any device sends one expert (its count, agreed over the stage's devices as Megatron-Core's
 * dispatcher exchanges the tokens per expert), times the devices' capacity blocks, rounded up to what every split
 * divides (moe_cap): no expert drops a token, and the experts' GEMMs see the routed rows and the padding of the
 * busiest expert's (zero rows add nothing: no expert biases). The combine, whose tokens are the dispatch's
 * (check_plan), follows the dispatch's routing (its saved top k and places) with weights from its own logits. */
static int32_t *moe_top(ox *X, int mb, int slot) { return (int32_t *)saved_at(X, mb, X->dispatch, slot)->a; }
/* each (token, choice)'s place among its expert's rows of the device's capacity block */
static int32_t *moe_place(ox *X, int mb, int slot) { return (int32_t *)saved_at(X, mb, X->dispatch, slot)->c; }

/* The routing of the dispatch's N tokens (logits lg [N x E]) into sv (a: top k, b: weights, c: places), and the
 * micro-batch's capacity for layer slot `slot`: set by its first forward (every device of the stage alike; a
 * recompute routes the same). 0, ST_ENOMEM, or the all-reduce's failure (it stops the job). */
static int moe_cap(ox *X, int mb, int slot, ox_saved *sv, const float *lg, int64_t N) {
    int64_t E = X->E, K = X->topk, most = 0;
    free(sv->a), free(sv->b), free(sv->c);
    sv->a = malloc((size_t)(N * K) * sizeof(float)), sv->b = malloc((size_t)(N * K) * sizeof(float));
    sv->c = malloc((size_t)(N * K) * sizeof(float));
    int64_t *cnt = calloc((size_t)E, sizeof *cnt);
    if (!sv->a || !sv->b || !sv->c || !cnt) return free(cnt), ST_ENOMEM;
    int32_t *top = (int32_t *)sv->a, *place = (int32_t *)sv->c;
    for (int64_t n = 0; n < N; n++) {
        st__xmoe_route(top, sv->b, lg, E, K, n);
        for (int64_t j = 0; j < K; j++) place[n * K + j] = (int32_t)cnt[top[n * K + j]]++;
    }
    for (int64_t e = 0; e < E; e++) most = cnt[e] > most ? cnt[e] : most;
    free(cnt);
    int64_t *cap = &X->mb[mb].cap[slot];
    if (*cap > 0) return 0;
    double m = (double)most, all = 0;
    MPI_Request q = MPI_REQUEST_NULL;
    st__xwait(&X->wt, MPI_Iallreduce(&m, &all, 1, MPI_DOUBLE, MPI_MAX, X->comm, &q), &q, 1, "MoE token counts",
              X->comm, -1);
    /* the capacity blocks: the devices' distinct token blocks (the axes that split the dispatch's capacity) */
    int64_t blocks = 1, c = (int64_t)all > 0 ? (int64_t)all : 1;
    st_layout l = out_layout(X, X->dispatch);
    for (int a = 0; a < X->M.naxes; a++)
        if (l.ax[a] == 1) blocks *= X->M.size[a];
    *cap = (blocks * c + X->M.n - 1) / X->M.n * X->M.n; /* (each split of C divides the mesh's devices) */
    return 0;
}

/* the dispatch's and combine's local sizes: N tokens (the logits' rows), hl hidden columns of the ntok elements of
 * the tokens' side, Cl capacity places of the nexp of the experts'; 0 when the blocks do not match (check_plan
 * refuses those plans) */
static int moe_sizes(const ox *X, const ox_val *lg, int64_t ntok, int64_t nexp, int64_t *N, int64_t *hl,
                     int64_t *Cl) {
    *N = lg->n / X->E;
    *hl = *N ? ntok / *N : 0;
    *Cl = *hl ? nexp / (X->E * *hl) : 0;
    return *N > 0 && *hl > 0 && *Cl > 0 && lg->n == *N * X->E && ntok == *N * *hl && nexp == X->E * *Cl * *hl;
}

static int fwd_op(ox *X, int mb, int op, int slot) {
    const st_graph *g = X->g;
    const st_gop *o = &g->ops[op];
    const st__xbackend *be = X->be;
    const st_gtensor *T = &g->t[o->out];
    int64_t lo[MAXD], len[MAXD], db[MAXD];
    block_of(&X->M, tdims(X, mb, slot, o->out, db), T->ndim, out_layout(X, op), X->c, lo, len);
    ox_saved *sv = saved_at(X, mb, op, slot);
    switch (o->type) {
    case ST_GOP_EMBEDDING: {
        ox_param *w = param_of(X, op, 1, slot, 0), *pos = X->rope ? NULL : param_of(X, op, -1, slot, 0);
        int64_t bl = len[0], sl = len[1], hl = len[2];
        float *out = new_out(X, mb, op, slot, 1);
        int32_t *tok = local_tokens(X, mb, lo[0], bl, lo[1], sl);
        if (!out || !tok) return free(tok), ST_ENOMEM;
        be->embed_fwd(out, tok, w->w, bl * sl, sl, hl, w->lo[0], w->len[0]);
        if (pos && adds(X, pos))
            for (int64_t b = 0; b < bl; b++) be->pos_fwd(out + b * sl * hl, pos->w, sl, sl, hl, 0);
        free(tok);
        return 0;
    }
    case ST_GOP_NORM: {
        const ox_val *x = input(X, mb, op, slot, 0);
        ox_param *w = param_of(X, op, 1, slot, 0), *b = X->layernorm ? param_of(X, op, -1, slot, 0) : NULL;
        int64_t N = x->n / X->h;
        float *out = new_out(X, mb, op, slot, 0);
        free(sv->a), free(sv->b);
        sv->a = malloc((size_t)N * sizeof(float)), sv->b = malloc((size_t)N * sizeof(float));
        if (!out || !sv->a || !sv->b) return ST_ENOMEM;
        be->norm_fwd(out, sv->a, sv->b, x->v, w->w, b ? b->w : NULL, N, X->h);
        return 0;
    }
    case ST_GOP_MATMUL: { /* (batched: each expert's GEMM on its rows) */
        int64_t Bt, Mm, K, N;
        gemm_sizes(X, mb, slot, op, &Bt, &Mm, &K, &N);
        ox_param *w = param_of(X, op, 1, slot, 0), *b = X->bias ? param_of(X, op, -1, slot, 0) : NULL;
        float *out = new_out(X, mb, op, slot, 0), *wt = scratch(X, K * N);
        if (!out || !wt) return ST_ENOMEM;
        const float *in = input(X, mb, op, slot, 0)->v;
        for (int64_t e = 0; e < Bt; e++) {
            transpose(wt, w->w + e * K * N, K, N);
            be->mm_fwd(out + e * Mm * N, in + e * Mm * K, wt, b && adds(X, b) ? b->w : NULL, Mm, K, N, 0);
        }
        return 0;
    }
    case ST_GOP_ATTENTION: { /* [bl, S, nl, (q + 2) d] -> [bl, S, nl q, d] */
        const ox_val *x = input(X, mb, op, slot, 0);
        int64_t bl = len[0], Sx = len[1], hl = len[2], nl = hl / X->qper, d = X->d, N = bl * Sx, ew = (X->qper + 2) * d;
        float *out = new_out(X, mb, op, slot, 0);
        free(sv->a), free(sv->b), free(sv->c), free(sv->d);
        sv->a = malloc((size_t)(N * hl * d) * sizeof(float)), sv->b = malloc((size_t)(N * nl * d) * sizeof(float));
        sv->c = malloc((size_t)(N * nl * d) * sizeof(float));
        sv->d = malloc((size_t)(bl * hl * Sx * Sx) * sizeof(float));
        if (!out || !sv->a || !sv->b || !sv->c || !sv->d) return ST_ENOMEM;
        for (int64_t r = 0; r < N; r++)
            for (int64_t n = 0; n < nl; n++) {
                const float *src = x->v + (r * nl + n) * ew;
                memcpy(sv->a + (r * hl + n * X->qper) * d, src, (size_t)(X->qper * d) * sizeof(float));
                memcpy(sv->b + (r * nl + n) * d, src + X->qper * d, (size_t)d * sizeof(float));
                memcpy(sv->c + (r * nl + n) * d, src + (X->qper + 1) * d, (size_t)d * sizeof(float));
            }
        be->attn_fwd(out, sv->d, sv->a, sv->b, sv->c, bl, Sx, hl, nl, d);
        return 0;
    }
    case ST_GOP_ELEMWISE: {
        const ox_val *x = input(X, mb, op, slot, 0);
        if (o->nin == 2) { /* the residual additions */
            float *out = new_out(X, mb, op, slot, 0);
            if (!out) return ST_ENOMEM;
            memcpy(out, x->v, (size_t)x->n * sizeof *out);
            be->add(out, input(X, mb, op, slot, 1)->v, x->n);
            return 0;
        }
        float *out = new_out(X, mb, op, slot, 0);
        if (!out) return ST_ENOMEM;
        int64_t n = val_at(X, mb, o->out, slot)->n;
        if (!strcmp(o->name, "act") || !strcmp(o->name, "expert_act")) {
            if (!X->swiglu) {
                be->act_fwd(out, x->v, n, X->ref.act);
                return 0;
            }
            float *a = scratch(X, 2 * n);
            if (!a) return ST_ENOMEM;
            for (int64_t k = 0; k < n; k++) a[k] = x->v[2 * k], a[n + k] = x->v[2 * k + 1];
            be->swiglu_fwd(out, a, a + n, n);
            return 0;
        }
        memcpy(out, x->v, (size_t)n * sizeof *out);
        if (!strcmp(o->name, "qkv_bias")) {
            ox_param *b = param_of(X, op, -1, slot, 0);
            be->bias_add(out, b->w, n / b->n, b->n);
            return 0;
        }
        if (!strcmp(o->name, "rope")) return rope_op(X, op, out, lo, len, 1);
        return 0; /* dropout: p = 0 */
    }
    case ST_GOP_DISPATCH: { /* [N, hl] tokens, [N, E] logits -> [E, Cl, hl]: each expert's tokens in order */
        const ox_val *x = input(X, mb, op, slot, 0), *lg = input(X, mb, op, slot, 1);
        int64_t E = X->E, K = X->topk, N = lg->n / E, hl, Cl;
        int rc = N > 0 ? moe_cap(X, mb, slot, sv, lg->v, N) : ST_EINVAL;
        if (rc) return rc;
        float *out = new_out(X, mb, op, slot, 1);
        if (!out) return ST_ENOMEM;
        if (!moe_sizes(X, lg, x->n, val_at(X, mb, o->out, slot)->n, &N, &hl, &Cl)) return ST_EINVAL;
        const int32_t *top = (const int32_t *)sv->a, *place = (const int32_t *)sv->c;
        for (int64_t n = 0; n < N * K; n++)
            if (place[n] >= Cl) return ST_EINVAL; /* (a recompute routing otherwise than the forward: never) */
        for (int64_t n = 0; n < N; n++)
            for (int64_t j = 0; j < K; j++)
                memcpy(out + (top[n * K + j] * Cl + place[n * K + j]) * hl, x->v + n * hl, (size_t)hl * sizeof *out);
        return 0;
    }
    case ST_GOP_COMBINE: { /* [E, Cl, hl] expert outputs, [N, E] logits -> [N, hl]: each token's weighted sum */
        const ox_val *y = input(X, mb, op, slot, 0), *lg = input(X, mb, op, slot, 1);
        int64_t E = X->E, K = X->topk, N, hl, Cl;
        const int32_t *top = moe_top(X, mb, slot), *place = moe_place(X, mb, slot);
        float *out = new_out(X, mb, op, slot, 1);
        if (!out) return ST_ENOMEM;
        if (!moe_sizes(X, lg, val_at(X, mb, o->out, slot)->n, y->n, &N, &hl, &Cl) || !top || !place) return ST_EINVAL;
        free(sv->a);
        if (!(sv->a = malloc((size_t)(N * K) * sizeof(float)))) return ST_ENOMEM;
        for (int64_t n = 0; n < N; n++) {
            st__xmoe_weights(sv->a, lg->v, top, E, K, n);
            for (int64_t e = 0; e < E; e++) /* the experts in order, as exec/model.c's combine adds them */
                for (int64_t j = 0; j < K; j++)
                    if (top[n * K + j] == e) {
                        const float *yr = y->v + (e * Cl + place[n * K + j]) * hl;
                        for (int64_t c = 0; c < hl; c++) out[n * hl + c] += sv->a[n * K + j] * yr[c];
                    }
        }
        return 0;
    }
    case ST_GOP_LOSS: { /* the vocabulary-parallel cross-entropy over the axes that split v */
        const ox_val *x = input(X, mb, op, slot, 0);
        const st_gtensor *L = &g->t[o->in[0]];
        int64_t ilo[MAXD], ilen[MAXD];
        block_of(&X->M, L->dim, L->ndim, in_layout(X, op, 0), X->c, ilo, ilen);
        int64_t bl = ilen[0], sl = ilen[1], vl = ilen[2], N = bl * sl;
        unsigned vax = 0, rows = 0;
        for (int a = 0; a < X->M.naxes; a++) {
            char c = X->st->choice[op].lab[a];
            if (c == 'v') vax |= 1u << a;
            if (c == 'b' || c == 's') rows |= 1u << a;
        }
        free(sv->a);
        sv->a = malloc((size_t)(x->n + 3 * N) * sizeof(float));
        int32_t *tok = local_tokens(X, mb, ilo[0], bl, ilo[1], sl);
        if (!sv->a || !tok) return free(tok), ST_ENOMEM;
        float *p = sv->a, *mx = p + x->n, *st = mx + N;
        memcpy(p, x->v, (size_t)x->n * sizeof *p);
        /* the graph's vocabulary is padded as Megatron pads it (search/graph.c): the padding's logits take no
         * part (the embedding's padded rows are never looked up; both stay 0) */
        for (int64_t v = ilo[2] > X->V ? 0 : X->V - ilo[2]; v < vl; v++)
            for (int64_t n = 0; n < N; n++) p[n * vl + v] = -INFINITY;
        be->xent_max(mx, p, N, vl);
        allreduce(X, mx, N, vax, 1, "loss max all-reduce");
        be->xent_exp(p, st, mx, tok, N, sl, vl, ilo[2]);
        allreduce(X, st, 2 * N, vax, 0, "loss sum all-reduce");
        be->xent_norm(p, st, N, vl);
        int mine = 1; /* one device of those holding the same rows adds their loss */
        for (int a = 0; a < X->M.naxes; a++)
            if (!((rows >> a) & 1) && X->c[a]) mine = 0;
        if (mine) {
            double s = 0;
            for (int64_t n = 0; n < N; n++) s += logf(st[n]) - st[N + n];
            X->loss_sum += s / (double)(X->mbs * X->S) / (double)X->Mb;
        }
        free(tok);
        return 0;
    }
    default: return ST_EINVAL;
    }
}

/* Backward of op in slot: its weights' gradients added, each activation input's gradient into its edge (the
 * grad_layout), which then travels back (bwd_edge). */
static int bwd_op(ox *X, int mb, int op, int slot) {
    const st_graph *g = X->g;
    const st_gop *o = &g->ops[op];
    const st__xbackend *be = X->be;
    const st_gtensor *T = &g->t[o->out];
    int64_t lo[MAXD], len[MAXD], db[MAXD];
    const int64_t *Td = tdims(X, mb, slot, o->out, db);
    block_of(&X->M, Td, T->ndim, out_layout(X, op), X->c, lo, len);
    ox_saved *sv = saved_at(X, mb, op, slot);
    const ox_val *dy = grad_at(X, mb, o->out, slot);
    float *din[ST_G_MAXIN] = {0};
    int64_t nin[ST_G_MAXIN] = {0};
    st_layout dl[ST_G_MAXIN];
    for (int i = 0; i < o->nin; i++) {
        const st_gtensor *I = &g->t[o->in[i]];
        dl[i] = grad_layout(X, op, i);
        if (I->weight || I->input) continue;
        int64_t ilo[MAXD], ilen[MAXD], ib[MAXD];
        nin[i] = block_of(&X->M, tdims(X, mb, slot, o->in[i], ib), I->ndim, dl[i], X->c, ilo, ilen);
        if (!(din[i] = calloc((size_t)(nin[i] ? nin[i] : 1), sizeof(float)))) goto nomem;
    }
    if (o->type != ST_GOP_LOSS && !dy->v) {
        /* nothing came back (an output no consumer's loss depends on): its gradient is 0 */
        ox_val *z = grad_at(X, mb, o->out, slot);
        z->l = out_layout(X, op), z->l.partial = 0;
        z->n = T->ndim ? block_of(&X->M, Td, T->ndim, z->l, X->c, lo, len) : 1;
        if (!(z->v = calloc((size_t)z->n, sizeof(float)))) goto nomem;
        z->owned = 1;
        block_of(&X->M, Td, T->ndim, out_layout(X, op), X->c, lo, len);
    }
    switch (o->type) {
    case ST_GOP_EMBEDDING: {
        ox_param *w = param_of(X, op, 1, slot, 0), *pos = X->rope ? NULL : param_of(X, op, -1, slot, 0);
        int64_t bl = len[0], sl = len[1], hl = len[2];
        int32_t *tok = local_tokens(X, mb, lo[0], bl, lo[1], sl);
        if (!tok) goto nomem;
        be->embed_bwd(w->g, tok, dy->v, bl * sl, sl, hl, w->lo[0], w->len[0]);
        if (pos && adds(X, pos))
            for (int64_t b = 0; b < bl; b++) be->pos_bwd(pos->g, dy->v + b * sl * hl, sl, sl, hl, 0);
        free(tok);
        break;
    }
    case ST_GOP_NORM: {
        const ox_val *x = input(X, mb, op, slot, 0);
        ox_param *w = param_of(X, op, 1, slot, 0), *b = X->layernorm ? param_of(X, op, -1, slot, 0) : NULL;
        be->norm_bwd(din[0], w->g, b ? b->g : NULL, dy->v, x->v, w->w, sv->a, sv->b, x->n / X->h, X->h);
        break;
    }
    case ST_GOP_MATMUL: {
        int64_t Bt, Mm, K, N;
        gemm_sizes(X, mb, slot, op, &Bt, &Mm, &K, &N);
        ox_param *w = param_of(X, op, 1, slot, 0), *b = X->bias ? param_of(X, op, -1, slot, 0) : NULL;
        float *wt = scratch(X, 2 * K * N);
        if (!wt) goto nomem;
        float *dwt = wt + K * N;
        const float *in = input(X, mb, op, slot, 0)->v;
        for (int64_t e = 0; e < Bt; e++) {
            transpose(wt, w->w + e * K * N, K, N);
            memset(dwt, 0, (size_t)(K * N) * sizeof *dwt);
            be->mm_bwd(din[0] + e * Mm * K, dwt, b && adds(X, b) ? b->g : NULL, dy->v + e * Mm * N, in + e * Mm * K,
                       wt, Mm, K, N);
            float *gw = w->g + e * K * N;
            for (int64_t k = 0; k < K; k++)
                for (int64_t n = 0; n < N; n++) gw[k * N + n] += dwt[n * K + k];
        }
        break;
    }
    case ST_GOP_ATTENTION: {
        int64_t bl = len[0], Sx = len[1], hl = len[2], nl = hl / X->qper, d = X->d, Nr = bl * Sx,
                ew = (X->qper + 2) * d;
        float *dq = calloc((size_t)(Nr * (hl + 2 * nl) * d), sizeof *dq);
        if (!dq) goto nomem;
        float *dk = dq + Nr * hl * d, *dv = dk + Nr * nl * d;
        be->attn_bwd(dq, dk, dv, dy->v, sv->d, sv->a, sv->b, sv->c, bl, Sx, hl, nl, d);
        for (int64_t r = 0; r < Nr; r++)
            for (int64_t n = 0; n < nl; n++) {
                float *dst = din[0] + (r * nl + n) * ew;
                memcpy(dst, dq + (r * hl + n * X->qper) * d, (size_t)(X->qper * d) * sizeof *dst);
                memcpy(dst + X->qper * d, dk + (r * nl + n) * d, (size_t)d * sizeof *dst);
                memcpy(dst + (X->qper + 1) * d, dv + (r * nl + n) * d, (size_t)d * sizeof *dst);
            }
        free(dq);
        break;
    }
    case ST_GOP_ELEMWISE: {
        int64_t n = dy->n;
        if (o->nin == 2) {
            memcpy(din[0], dy->v, (size_t)n * sizeof(float));
            memcpy(din[1], dy->v, (size_t)n * sizeof(float));
            break;
        }
        const ox_val *x = input(X, mb, op, slot, 0);
        if (!strcmp(o->name, "act") || !strcmp(o->name, "expert_act")) {
            if (!X->swiglu) {
                be->act_bwd(din[0], x->v, dy->v, n, X->ref.act);
                break;
            }
            float *a = scratch(X, 4 * n);
            if (!a) goto nomem;
            for (int64_t k = 0; k < n; k++) a[k] = x->v[2 * k], a[n + k] = x->v[2 * k + 1];
            be->swiglu_bwd(a + 2 * n, a + 3 * n, a, a + n, dy->v, n);
            for (int64_t k = 0; k < n; k++) din[0][2 * k] = a[2 * n + k], din[0][2 * k + 1] = a[3 * n + k];
            break;
        }
        memcpy(din[0], dy->v, (size_t)n * sizeof(float));
        if (!strcmp(o->name, "qkv_bias")) {
            ox_param *b = param_of(X, op, -1, slot, 0);
            be->bias_grad(b->g, dy->v, n / b->n, b->n);
        } else if (!strcmp(o->name, "rope") && rope_op(X, op, din[0], lo, len, -1)) {
            goto nomem;
        }
        break;
    }
    case ST_GOP_DISPATCH: { /* each token's rows' gradients summed; the routing takes none: the logits' gradient
                             * is the combine's, come back to this input's layout (via_dispatch) */
        int64_t K = X->topk, N, hl, Cl;
        const int32_t *top = moe_top(X, mb, slot), *place = moe_place(X, mb, slot);
        if (!moe_sizes(X, input(X, mb, op, slot, 1), nin[0], dy->n, &N, &hl, &Cl) || !top || !place) goto bad;
        for (int64_t n = 0; n < N; n++)
            for (int64_t e = 0; e < X->E; e++) /* (the experts in order) */
                for (int64_t j = 0; j < K; j++)
                    if (top[n * K + j] == e)
                        be->add(din[0] + n * hl, dy->v + (e * Cl + place[n * K + j]) * hl, hl);
        for (int cb = 0; cb < g->nops; cb++) {
            if (!via_dispatch(X, cb, 1)) continue;
            ox_edge *ce = edge_at(X, mb, cb, slot, 1);
            if (!ce->b.v || ce->bleft != -1) goto bad; /* (the combine's backward comes first) */
            if (!ce->b.owned) {
                float *cp = malloc((size_t)(ce->b.n ? ce->b.n : 1) * sizeof *cp);
                if (!cp) goto nomem;
                memcpy(cp, ce->b.v, (size_t)ce->b.n * sizeof *cp);
                ce->b.v = cp;
            }
            free(din[1]);
            din[1] = ce->b.v, nin[1] = ce->b.n, dl[1] = ce->b.l;
            memset(&ce->b, 0, sizeof ce->b);
        }
        break;
    }
    case ST_GOP_COMBINE: { /* the expert outputs' gradients, and the logits' through the weights' softmax */
        const ox_val *y = input(X, mb, op, slot, 0);
        int64_t E = X->E, K = X->topk, N, hl, Cl;
        const int32_t *top = moe_top(X, mb, slot), *place = moe_place(X, mb, slot);
        if (!moe_sizes(X, input(X, mb, op, slot, 1), dy->n, y->n, &N, &hl, &Cl) || !top || !place || !sv->a) goto bad;
        float *ds = scratch(X, N * K);
        if (!ds) goto nomem;
        for (int64_t n = 0; n < N; n++) {
            const float *d = dy->v + n * hl;
            for (int64_t j = 0; j < K; j++) {
                int64_t e = top[n * K + j], at = (e * Cl + place[n * K + j]) * hl;
                const float *yr = y->v + at;
                float *dr = din[0] + at, sw = sv->a[n * K + j];
                double dot = 0;
                for (int64_t c = 0; c < hl; c++) dot += (double)d[c] * yr[c], dr[c] = sw * d[c];
                ds[n * K + j] = (float)dot; /* (partial over the axes that split h: so is din[1]) */
            }
            st__xmoe_router_bwd(din[1], sv->a, ds, top, E, K, n);
        }
        break;
    }
    case ST_GOP_LOSS: {
        const st_gtensor *L = &g->t[o->in[0]];
        int64_t ilo[MAXD], ilen[MAXD];
        block_of(&X->M, L->dim, L->ndim, in_layout(X, op, 0), X->c, ilo, ilen);
        int64_t bl = ilen[0], sl = ilen[1], vl = ilen[2];
        int32_t *tok = local_tokens(X, mb, ilo[0], bl, ilo[1], sl);
        if (!tok) goto nomem;
        memcpy(din[0], sv->a, (size_t)nin[0] * sizeof(float));
        /* d loss / d logits = (p - onehot) / tokens of the micro-batch / micro-batches (exec/cpu.c's scale) */
        be->xent_bwd(din[0], tok, (float)(1.0 / ((double)X->Mb * (double)(X->mbs * X->S))), bl * sl, sl, vl, ilo[2]);
        free(tok);
        break;
    }
    default: goto bad;
    }
    for (int i = 0; i < o->nin; i++) {
        if (!din[i]) continue;
        ox_edge *e = edge_at(X, mb, op, slot, i);
        val_free(&e->b);
        e->b = (ox_val){din[i], dl[i], nin[i], 1};
        din[i] = NULL;
    }
    return 0;
nomem:
    for (int i = 0; i < o->nin; i++) free(din[i]);
    return ST_ENOMEM;
bad:
    for (int i = 0; i < o->nin; i++) free(din[i]);
    return ST_EINVAL;
}

/* ---------------------------------------------------------------- edges */

/* the forward edge of op's input i in slot: started from its producer's output (slices done) */
static int edge_start(ox *X, int mb, int op, int slot, int i) {
    ox_edge *e = edge_at(X, mb, op, slot, i);
    if (e->fstarted) return 0;
    int ss, t, pr = source_of(X, op, i, slot, &ss, &t);
    if (pr == -1) return ST_EINVAL;
    const ox_val *src = via_dispatch(X, op, i) ? &edge_at(X, mb, pr, ss, 1)->f : val_at(X, mb, t, ss);
    if (!src->v) return ST_EINVAL;
    val_free(&e->f);
    e->f = (ox_val){src->v, src->l, src->n, 0};
    e->fstarted = 1;
    int64_t db[MAXD];
    return slices_first(X, &e->f, tdims(X, mb, ss, t, db), X->g->t[t].ndim, in_layout(X, op, i));
}

/* op's inputs made ready for its compute: whatever of an edge is left after its collectives (slices) */
static int inputs_ready(ox *X, int mb, int op, int slot) {
    const st_gop *o = &X->g->ops[op];
    for (int i = 0; i < o->nin; i++) {
        const st_gtensor *T = &X->g->t[o->in[i]];
        if (T->weight || T->input) continue;
        int rc = edge_start(X, mb, op, slot, i);
        ox_edge *e = edge_at(X, mb, op, slot, i);
        int64_t db[MAXD];
        if (!rc) rc = reshard(X, &e->f, tdims(X, mb, slot, o->in[i], db), T->ndim, in_layout(X, op, i), "reshard");
        if (rc) return rc;
    }
    return 0;
}

/* an edge's gradient, whole, into its producer's output gradient */
static int edge_finish_bwd(ox *X, int mb, int op, int slot, int i) {
    ox_edge *e = edge_at(X, mb, op, slot, i);
    int ss, t, pr = source_of(X, op, i, slot, &ss, &t);
    if (pr == -1 || !e->b.v) return pr == -1 ? 0 : ST_EINVAL;
    int64_t db[MAXD];
    int rc = reshard(X, &e->b, tdims(X, mb, ss, t, db), X->g->t[t].ndim, back_layout(X, op, i, pr), "reshard");
    if (rc) return rc;
    if (via_dispatch(X, op, i)) { /* kept for the dispatch's backward (bwd_op) */
        e->bleft = -1;
        return 0;
    }
    ox_val *acc = grad_at(X, mb, t, ss);
    if (!acc->v) {
        if (e->b.owned) {
            *acc = e->b;
        } else {
            if (!(acc->v = malloc((size_t)e->b.n * sizeof(float)))) return ST_ENOMEM;
            memcpy(acc->v, e->b.v, (size_t)e->b.n * sizeof(float));
            acc->l = e->b.l, acc->n = e->b.n, acc->owned = 1;
            val_free(&e->b);
        }
        memset(&e->b, 0, sizeof e->b);
    } else {
        X->be->add(acc->v, e->b.v, acc->n);
        val_free(&e->b);
    }
    e->bleft = -1;
    return 0;
}

/* the collective steps an edge's gradient takes (cost/reshard.c's: the work list has them in that number) */
static int bwd_steps(const ox *X, int op, int slot, int i) {
    int ss, t, pr = source_of(X, op, i, slot, &ss, &t);
    if (pr < 0) return 0; /* (the entering activation's: no step in the work, done at the compute) */
    st_layout dst = back_layout(X, op, i, pr);
    int n = 0;
    st_cost_reshard(NULL, NULL, &X->st->mesh, 0, grad_layout(X, op, i), dst, NULL, &n);
    return n;
}

/* input i of op in slot whose source is op src (-1: none) */
static int edge_input(const ox *X, int op, int slot, int src) {
    const st_gop *o = &X->g->ops[op];
    for (int i = 0; i < o->nin; i++) {
        const st_gtensor *T = &X->g->t[o->in[i]];
        if (T->weight || T->input) continue;
        int ss, t;
        if (source_of(X, op, i, slot, &ss, &t) == src) return i;
    }
    return -1;
}

/* ---------------------------------------------------------------- the program, step by step */

static int push_item(ox *X, ox_item it) {
    if (X->nit == X->capit) {
        int cap = X->capit ? 2 * X->capit : 256;
        ox_item *p = realloc(X->it, (size_t)cap * sizeof *p);
        if (!p) return ST_ENOMEM;
        X->it = p, X->capit = cap;
    }
    X->it[X->nit++] = it;
    return 0;
}

/* lower_as.c's part(): a run of compute steps one item, each collective one */
static int items_part(ox *X, int p, int phase, int l, int mb, int *pushed) {
    int bwd = phase == ST_PHASE_BWD;
    const st_as_step *v = X->w.step[p][bwd];
    int n = X->w.n[p][bwd], rc = 0;
    for (int i = 0; i < n && !rc;) {
        ox_item it = {.part = p, .bwd = bwd, .phase = phase, .layer = l, .mb = mb, .i0 = i};
        if (v[i].coll == ST_COLL_NONE) {
            it.type = IT_COMPUTE;
            while (i < n && v[i].coll == ST_COLL_NONE) i++;
        } else {
            it.type = IT_COLL;
            i++;
        }
        it.i1 = i;
        rc = push_item(X, it);
        *pushed = 1;
    }
    return rc;
}

static int items_forward(ox *X, int mb) {
    int pushed = 0, rc = 0, F = ST_PHASE_FWD, has_head = X->st->first == 0, has_tail = X->st->last == (int)X->g->repeat;
    if (X->stage > 0) rc = push_item(X, (ox_item){.type = IT_RECV, .mb = mb, .phase = F});
    if (!rc && has_head) rc = items_part(X, ST_AS_HEAD, F, 0, mb, &pushed);
    if (!rc) rc = items_part(X, ST_AS_ENTER, F, 0, mb, &pushed);
    for (int l = 0; l < X->layers && !rc; l++) {
        if (l > 0) rc = items_part(X, ST_AS_CROSS, F, l, mb, &pushed);
        if (!rc) rc = items_part(X, ST_AS_LAYER, F, l, mb, &pushed);
    }
    if (!rc) rc = items_part(X, ST_AS_LEAVE, F, 0, mb, &pushed);
    if (!rc && has_tail) rc = items_part(X, ST_AS_TAIL, F, 0, mb, &pushed);
    if (!rc && !pushed && X->w.saved_bytes > 0) rc = push_item(X, (ox_item){.type = IT_EMPTY, .mb = mb});
    if (!rc && X->stage < X->nstages - 1) rc = push_item(X, (ox_item){.type = IT_SEND, .mb = mb, .phase = F});
    return rc;
}

static int items_backward(ox *X, int mb) {
    int pushed = 0, rc = 0, B = ST_PHASE_BWD, R = ST_PHASE_RECOMPUTE;
    int has_head = X->st->first == 0, has_tail = X->st->last == (int)X->g->repeat;
    int first = X->nit; /* (the receive is no instruction of the backward's own: lower_as.c's `last` starts at -1) */
    if (X->stage < X->nstages - 1) rc = push_item(X, (ox_item){.type = IT_RECV, .mb = mb, .bwd = 1, .phase = B});
    if (!rc && has_tail) rc = items_part(X, ST_AS_TAIL, B, 0, mb, &pushed);
    if (!rc) rc = items_part(X, ST_AS_LEAVE, B, 0, mb, &pushed);
    for (int l = X->layers - 1; l >= 0 && !rc; l--) {
        if (X->w.recompute) {
            rc = items_part(X, l > 0 ? ST_AS_CROSS : ST_AS_ENTER, R, l, mb, &pushed);
            if (!rc) rc = items_part(X, ST_AS_LAYER, R, l, mb, &pushed);
        }
        int before = X->nit;
        if (!rc) rc = items_part(X, ST_AS_LAYER, B, l, mb, &pushed);
        if (!rc && X->w.recompute && X->nit > before && X->w.recompute_bytes > 0) X->it[X->nit - 1].freed = 1;
        if (!rc && l > 0) rc = items_part(X, ST_AS_CROSS, B, l, mb, &pushed);
    }
    if (!rc) rc = items_part(X, ST_AS_ENTER, B, 0, mb, &pushed);
    if (!rc && has_head) rc = items_part(X, ST_AS_HEAD, B, 0, mb, &pushed);
    /* the micro-batch's release: on its last compute, or an instruction of its own */
    (void)first;
    if (!rc && !(X->nit > 0 && (pushed || X->stage < X->nstages - 1) && X->it[X->nit - 1].type == IT_COMPUTE &&
                 !X->it[X->nit - 1].freed))
        rc = push_item(X, (ox_item){.type = IT_EMPTY, .mb = mb, .phase = ST_PHASE_BWD});
    if (!rc && X->stage > 0) rc = push_item(X, (ox_item){.type = IT_SEND, .mb = mb, .bwd = 1, .phase = B});
    return rc;
}

/* the items in lower_as.c's order (1F1B: the stages after this one's micro-batches forward first, then one
 * backward after each forward, then the rest's backward), checked against the program instruction by
 * instruction */
static int make_items(ox *X, st_error *err) {
    int rc = 0;
    int64_t m = X->Mb, warm = X->nstages - X->stage - 1 < m ? X->nstages - X->stage - 1 : m;
    for (int64_t k = 0; k < warm && !rc; k++) rc = items_forward(X, (int)k);
    for (int64_t k = 0; k < m - warm && !rc; k++) {
        rc = items_forward(X, (int)(warm + k));
        if (!rc) rc = items_backward(X, (int)k);
    }
    for (int64_t k = m - warm; k < m && !rc; k++) rc = items_backward(X, (int)k);
    int na = X->st->mesh.naxes;
    for (int k = 0; k < 2 * na && !rc; k++) {
        int gather = k >= na, a = gather ? k - na : X->w.zero ? na - 1 - k : k;
        double t = gather ? X->w.gather_s[a] : X->w.sync_s[a];
        if (t > 0) rc = push_item(X, (ox_item){.type = IT_SYNC, .axis = a, .gather = gather, .mb = -1});
    }
    if (rc) return st_error_set(err, ST_ENOMEM, NULL, NULL, "out of memory");
    int ok = X->nit == X->pg->n;
    for (int i = 0; ok && i < X->nit; i++) {
        st_ins in;
        st_program_ins(X->pg, i, &in);
        const ox_item *it = &X->it[i];
        int coll = it->type == IT_COLL || it->type == IT_SYNC, p2p = it->type == IT_SEND || it->type == IT_RECV;
        ok = (in.kind == ST_INS_COLL) == coll && (in.kind == ST_INS_COMPUTE) == (!coll && !p2p) &&
             (in.kind == ST_INS_SEND) == (it->type == IT_SEND) && (in.kind == ST_INS_RECV) == (it->type == IT_RECV);
        if (ok && it->type == IT_COMPUTE) ok = in.nops == it->i1 - it->i0;
        if (ok && it->type == IT_COLL) ok = in.coll == X->w.step[it->part][it->bwd][it->i0].coll;
    }
    if (!ok)
        return st_error_set(err, ST_EINVAL, NULL, "plan",
                            "stage %d: the lowering's program does not follow the stage's steps (st_autoshard_work): "
                            "the per-operator runtime cannot run it", X->stage);
    return 0;
}

/* the layer slot an item's step runs in */
static int step_slot(const ox *X, const ox_item *it, int op) {
    if (!X->g->ops[op].block) return 0;
    return it->part == ST_AS_LEAVE ? X->layers - 1 : it->layer;
}

static int run_compute(ox *X, const ox_item *it) {
    int rc = 0;
    for (int i = it->i0; i < it->i1 && !rc; i++) {
        int op = X->w.step[it->part][it->bwd][i].op, slot = step_slot(X, it, op);
        if (!it->bwd) {
            rc = inputs_ready(X, it->mb, op, slot);
            if (!rc) rc = fwd_op(X, it->mb, op, slot);
            continue;
        }
        rc = bwd_op(X, it->mb, op, slot);
        /* the gradients whose way back takes no collective go back now; the others after their steps */
        const st_gop *o = &X->g->ops[op];
        for (int k = 0; k < o->nin && !rc; k++) {
            ox_edge *e = edge_at(X, it->mb, op, slot, k);
            if (!e->b.v) continue;
            e->bleft = bwd_steps(X, op, slot, k);
            if (e->bleft == 0) rc = edge_finish_bwd(X, it->mb, op, slot, k);
        }
    }
    return rc;
}

static int run_coll(ox *X, const ox_item *it) {
    const st_as_step *s = &X->w.step[it->part][it->bwd][it->i0];
    int op = s->op, slot = step_slot(X, it, op);
    if (s->src == op && X->g->ops[op].type == ST_GOP_LOSS) return 0; /* its statistics: inside its compute */
    if (s->src == op) { /* partial sums resolved before the output leaves the stage */
        int ot = X->g->ops[op].out;
        int64_t db[MAXD];
        st_layout whole = out_layout(X, op);
        whole.partial = 0;
        return reshard_axis(X, val_at(X, it->mb, ot, slot), tdims(X, it->mb, slot, ot, db), X->g->t[ot].ndim, whole,
                            s->axis, "sink");
    }
    int i = edge_input(X, op, slot, s->src);
    if (i < 0) return ST_EINVAL;
    int tt = X->g->ops[op].in[i];
    if (tt == X->g->block_in && slot > 0) tt = X->g->block_out;
    int64_t db[MAXD];
    const int64_t *Td = tdims(X, it->mb, slot, tt, db);
    int nd = X->g->t[tt].ndim;
    ox_edge *e = edge_at(X, it->mb, op, slot, i);
    if (!it->bwd) {
        int rc = edge_start(X, it->mb, op, slot, i);
        return rc ? rc : reshard_axis(X, &e->f, Td, nd, in_layout(X, op, i), s->axis, st_coll_name(s->coll));
    }
    if (e->bleft <= 0 || !e->b.v) return ST_EINVAL;
    int ss, t, pr = source_of(X, op, i, slot, &ss, &t);
    int rc = reshard_axis(X, &e->b, Td, nd, back_layout(X, op, i, pr), --e->bleft ? s->axis : -1,
                          st_coll_name(s->coll));
    if (!rc && e->bleft == 0) rc = edge_finish_bwd(X, it->mb, op, slot, i);
    return rc;
}

/* ---------------------------------------------------------------- gradients and Adam */

/* the reduced gradients (each device's owned shard of them, before Adam), with their reference offsets, to --check
 * (exec/check.c: rank 0 compares its own at once into d, the others keep theirs for st__xcheck_gather after the
 * step). 0 or ST_ENOMEM. */
static int compare_grads(ox *X, double *d) {
    st__xcheck_begin(&X->chk);
    for (int i = 0; i < X->nparams; i++) {
        const ox_param *p = &X->p[i];
        int64_t gi[MAXD] = {0};
        for (int64_t k = p->slo; k < p->slo + p->sn; k++) {
            int64_t rest = k;
            for (int dd = p->nd - 1; dd >= 0; dd--) gi[dd] = p->lo[dd] + rest % p->len[dd], rest /= p->len[dd];
            int64_t off = ref_offset(X, p, gi);
            if (off >= 0 && st__xcheck_add(&X->chk, off, p->g[k], d)) return ST_ENOMEM;
        }
    }
    return 0;
}

/* the shard of [lo, lo + n) that place r of k holds */
static void shard(int64_t lo, int64_t n, int k, int r, int64_t *slo, int64_t *sn) {
    int64_t base = n / k, extra = n % k;
    *sn = base + (r < extra);
    *slo = lo + r * base + (r < extra ? r : extra);
}

/* the gradient step of axis a: all-reduce, or (ZeRO-1, unless whole) reduce-scatter; gather: the weights'
 * all-gather of what the reduce-scatter sharded */
static int run_sync(ox *X, int a, int gather, int whole) {
    MPI_Comm c = axis_comm(X, 1u << a);
    int k = X->M.size[a], r = X->c[a];
    int *counts = malloc((size_t)(2 * k) * sizeof *counts), *displs = counts + k;
    if (!counts) return ST_ENOMEM;
    for (int i = 0; i < X->nparams; i++) {
        ox_param *p = &X->p[i];
        if (!((p->reduce >> a) & 1)) continue;
        MPI_Request q = MPI_REQUEST_NULL;
        if (gather) {
            if (!((p->rs >> a) & 1)) continue;
            p->rs &= ~(1u << a);
            int64_t lo = p->stk_lo[a], n = p->stk_n[a];
            for (int j = 0; j < k; j++) {
                int64_t sl, sn;
                shard(lo, n, k, j, &sl, &sn);
                counts[j] = (int)sn, displs[j] = (int)(sl - lo);
            }
            int rc = MPI_Iallgatherv(MPI_IN_PLACE, 0, MPI_FLOAT, p->w + lo, counts, displs, MPI_FLOAT, c, &q);
            st__xwait(&X->wt, rc, &q, 1, "param all-gather", c, -1);
            p->slo = lo, p->sn = n;
            continue;
        }
        if ((p->done >> a) & 1) continue;
        if (!p->zero || whole) {
            int rc = MPI_Iallreduce(MPI_IN_PLACE, p->g, (int)p->n, MPI_FLOAT, MPI_SUM, c, &q);
            st__xwait(&X->wt, rc, &q, 1, "grad all-reduce", c, -1);
            p->done |= 1u << a;
            continue;
        }
        int64_t lo = p->slo, n = p->sn, sl, sn;
        for (int j = 0; j < k; j++) {
            shard(lo, n, k, j, &sl, &sn);
            counts[j] = (int)sn, displs[j] = (int)(sl - lo);
        }
        shard(lo, n, k, r, &sl, &sn);
        float *tmp = malloc((size_t)(sn + 1) * sizeof *tmp);
        if (!tmp) return free(counts), ST_ENOMEM;
        int rc = MPI_Ireduce_scatter(p->g + lo, tmp, counts, MPI_FLOAT, MPI_SUM, c, &q);
        st__xwait(&X->wt, rc, &q, 1, "grad reduce-scatter", c, -1);
        memcpy(p->g + sl, tmp, (size_t)sn * sizeof *tmp);
        free(tmp);
        p->stk_lo[a] = lo, p->stk_n[a] = n, p->slo = sl, p->sn = sn;
        p->done |= 1u << a, p->rs |= 1u << a;
    }
    free(counts);
    return 0;
}

/* the gradients any gradient instruction left unreduced, the tied copies' exchange, --check's comparison, Adam */
static int run_adam(ox *X, int64_t step, double *cmp) {
    int rc = 0;
    for (int a = 0; a < X->M.naxes && !rc; a++) {
        int left = 0;
        for (int i = 0; i < X->nparams; i++) left |= ((X->p[i].reduce >> a) & 1) && !((X->p[i].done >> a) & 1);
        if (left) rc = run_sync(X, a, 0, 1); /* no gather follows in the program: whole */
    }
    /* the tied table's two copies: each one's gradient gets the other's (its block of the transposed table) */
    for (int i = 0; i < X->nparams && !rc; i++) { /* the copy on the other end stage */
        ox_param *p = &X->p[i];
        if (p->twin != REMOTE_TWIN) continue;
        int other = X->stage == 0 ? X->nstages - 1 : 0, oop = -1;
        for (int op = 0; op < X->g->nops && oop < 0; op++)
            if (op != p->op && X->r->stage[other].choice[op].lab[0] != '-' &&
                (X->g->ops[op].type == ST_GOP_EMBEDDING || !strcmp(X->g->ops[op].name, "logits")))
                oop = op;
        if (oop < 0) return ST_EINVAL;
        ox Y = *X;
        Y.st = &X->r->stage[other], Y.M = mesh_of(X, other);
        st_layout ol = in_layout(&Y, oop, 1);
        const st_gtensor *OT = &X->g->t[X->g->ops[oop].in[1]];
        float *got = calloc((size_t)p->n, sizeof *got);
        if (!got) return ST_ENOMEM;
        int tag = (int)(2 * X->Mb); /* (above every micro-batch's two: run_p2p) */
        rc = xmesh(X, X->stage, p->l, other, ol, p->dim, 2, 1, p->g, NULL, tag, "tied send");
        if (!rc) rc = xmesh(X, other, ol, X->stage, p->l, OT->dim, 2, 1, NULL, got, tag, "tied receive");
        if (!rc) X->be->add(p->g, got, p->n);
        free(got);
    }
    for (int i = 0; i < X->nparams && !rc; i++) {
        ox_param *p = &X->p[i];
        if (p->twin < 0 || p->twin < i) continue;
        ox_param *q = &X->p[p->twin];
        /* copies: each sum must read the other's gradient before it changes */
        ox_val a = {malloc((size_t)p->n * sizeof(float)), p->l, p->n, 1};
        ox_val b = {malloc((size_t)q->n * sizeof(float)), q->l, q->n, 1};
        if (!a.v || !b.v) {
            val_free(&a), val_free(&b);
            return ST_ENOMEM;
        }
        memcpy(a.v, p->g, (size_t)p->n * sizeof(float)), memcpy(b.v, q->g, (size_t)q->n * sizeof(float));
        st_layout pt = {{-1, -1}, 0}, qt = pt; /* each layout with the two dimensions swapped */
        for (int x = 0; x < X->M.naxes; x++) {
            pt.ax[x] = p->l.ax[x] < 0 ? -1 : (signed char)(1 - p->l.ax[x]);
            qt.ax[x] = q->l.ax[x] < 0 ? -1 : (signed char)(1 - q->l.ax[x]);
        }
        /* p's gradient into q's layout (q's dims are p's swapped) and back */
        rc = reshard(X, &a, p->dim, 2, qt, "tied all-to-all");
        if (!rc) rc = reshard(X, &b, q->dim, 2, pt, "tied all-to-all");
        if (!rc) {
            /* a: p's gradient as [p dim0 x p dim1] blocks of q's swapped layout: q's block transposed */
            for (int64_t r = 0; r < q->len[0]; r++)
                for (int64_t cc = 0; cc < q->len[1]; cc++) q->g[r * q->len[1] + cc] += a.v[cc * q->len[0] + r];
            for (int64_t r = 0; r < p->len[0]; r++)
                for (int64_t cc = 0; cc < p->len[1]; cc++) p->g[r * p->len[1] + cc] += b.v[cc * p->len[0] + r];
        }
        val_free(&a), val_free(&b);
    }
    if (rc) return rc;
    /* the entries no reference tensor has (SwiGLU's up half of the fc1 bias) take no step: they stay 0 */
    for (int i = 0; i < X->nparams; i++) {
        ox_param *p = &X->p[i];
        if (p->fold != FOLD_FC1B) continue;
        for (int64_t k = p->slo; k < p->slo + p->sn; k++)
            if ((p->lo[0] + k) % 2) p->g[k] = 0;
    }
    if (cmp && (rc = compare_grads(X, cmp))) return rc;
    double t0 = now_s();
    for (int i = 0; i < X->nparams; i++) {
        ox_param *p = &X->p[i];
        X->be->adam(p->w + p->slo, p->g + p->slo, p->m + p->slo, p->v + p->slo, p->sn, (int)step + 1, ADAM_LR, ADAM_B1,
                    ADAM_B2, ADAM_EPS);
    }
    X->opt_s += now_s() - t0;
    X->adam_done = 1;
    return 0;
}

/* ---------------------------------------------------------------- setup */

/* MoE: X->g becomes a copy of the plan's graph whose dispatched tensors ([E, C, ..]: the outputs whose labels
 * have the capacity 'c', X->cdim) hold the micro-batch's tokens as their capacity (check_plan's blocks: the
 * capacity splits as the tokens; the runtime's is each micro-batch's, moe_cap and tdims), and X->dispatch the
 * block's dispatch. 0 or ST_ENOMEM. */
static int moe_dims(ox *X) {
    const st_graph *g = X->r->g;
    X->dispatch = -1;
    if (X->m->experts <= 0) return 0;
    for (int op = 0; op < g->nops; op++)
        if (g->ops[op].type == ST_GOP_DISPATCH && g->ops[op].block) X->dispatch = op;
    if (X->dispatch < 0) return 0;
    const st_gop *d = &g->ops[X->dispatch];
    const st_gtensor *tok = &g->t[d->in[0]];
    int64_t T = 1, C = g->t[d->out].dim[1];
    for (int k = 0; k + 1 < tok->ndim; k++) T *= tok->dim[k];
    X->gx = *g;
    if (!(X->gx.t = malloc((size_t)g->ntensors * sizeof *g->t)) || !(X->cdim = malloc((size_t)g->ntensors)))
        return ST_ENOMEM;
    memcpy(X->gx.t, g->t, (size_t)g->ntensors * sizeof *g->t);
    memset(X->cdim, -1, (size_t)g->ntensors);
    for (int op = 0; op < g->nops; op++) {
        const char *c = strchr(g->ops[op].lab_out, 'c');
        st_gtensor *t = &X->gx.t[g->ops[op].out];
        if (c && g->ops[op].block && c - g->ops[op].lab_out < t->ndim && t->dim[c - g->ops[op].lab_out] == C)
            t->dim[c - g->ops[op].lab_out] = T, X->cdim[g->ops[op].out] = (signed char)(c - g->ops[op].lab_out);
    }
    X->g = &X->gx;
    return 0;
}

/* MoE on stage view Y: the combine's tokens are the dispatch's on every device (its routing the combine
 * follows), each holding its tokens' rows of every expert; 0, or the operator that differs */
static int moe_mismatch(const ox *Y) {
    const st_graph *g = Y->g;
    int dp = Y->dispatch, cb = -1;
    for (int op = 0; op < g->nops; op++)
        if (g->ops[op].type == ST_GOP_COMBINE && g->ops[op].block) cb = op;
    if (dp < 0 || cb < 0 || Y->st->choice[dp].lab[0] == '-') return 0;
    for (int dev = 0; dev < Y->M.n; dev++) {
        int c[2];
        coords_of(&Y->M, dev, c);
        int64_t lo[5][MAXD], len[5][MAXD];
        const st_gtensor *ti = &g->t[g->ops[dp].in[0]], *te = &g->t[g->ops[dp].out], *to = &g->t[g->ops[cb].out];
        if (ti->ndim != 3 || te->ndim != 3 || to->ndim != 3) return dp;
        block_of(&Y->M, ti->dim, 3, in_layout(Y, dp, 0), c, lo[0], len[0]);
        block_of(&Y->M, te->dim, 3, out_layout(Y, dp), c, lo[1], len[1]);
        block_of(&Y->M, te->dim, 3, in_layout(Y, cb, 0), c, lo[2], len[2]);
        block_of(&Y->M, to->dim, 3, out_layout(Y, cb), c, lo[3], len[3]);
        if (len[1][0] != Y->E || len[1][1] != len[0][0] * len[0][1]) return dp;
        if (len[2][0] != Y->E || lo[2][1] != lo[1][1] || len[2][1] != len[1][1] || lo[3][0] != lo[0][0] ||
            len[3][0] != len[0][0] || lo[3][1] != lo[0][1] || len[3][1] != len[0][1])
            return cb;
        for (int k = 0; k < 2; k++) { /* the logits: the same rows, every expert */
            int op = k ? cb : dp;
            const st_gtensor *tl = &g->t[g->ops[op].in[1]];
            block_of(&Y->M, tl->dim, 3, in_layout(Y, op, 1), c, lo[4], len[4]);
            if (len[4][2] != Y->E || lo[4][0] != lo[0][0] || len[4][0] != len[0][0] || lo[4][1] != lo[0][1] ||
                len[4][1] != len[0][1])
                return op;
        }
    }
    return 0;
}

/* what this runtime does not run, named (every rank alike) */
static int check_plan(const ox *X, const st_exec_opts *o, st_error *err) {
    const st_autoshard_result *r = X->r;
    const st_graph *g = X->g;
    const st_model *m = X->m;
    if (o->backend != ST_EXEC_CPU)
        return st_error_set(err, ST_EINVAL, NULL, "stages",
                            "operator-level plans that are no Megatron template run per operator on --backend cpu "
                            "only");
    if (m->position == ST_POS_ALIBI)
        return st_error_set(err, ST_EINVAL, NULL, "model",
                            "the per-operator runtime runs GPT and Llama blocks with learned or rotary positions (%s: "
                            "ALiBi)", m->name);
    if (m->experts > 0) {
        int every = 1;
        for (int64_t k = 0; k < m->layers; k++) every &= st_model_layer_is_moe(m, k);
        if (m->capacity_factor > 0 || !every || X->dispatch < 0)
            return st_error_set(err, ST_EINVAL, NULL, "model",
                                "the per-operator runtime runs dropless MoE blocks on every layer (%s: %s)", m->name,
                                m->capacity_factor > 0 ? "a capacity factor drops tokens" : "dense layers among them");
    }
    /* MPI's int counts and tags: every tensor's elements (so any block and any exchange of it), and the tags of
     * the micro-batches' transfers (2 each), the tied exchange's and the trace's after them */
    for (int t = 0; t < g->ntensors; t++)
        if (st_gtensor_numel(&g->t[t]) > (double)INT_MAX)
            return st_error_set(err, ST_EINVAL, NULL, "model",
                                "the per-operator runtime's MPI counts are ints: tensor %s has %.0f elements (at most "
                                "%d)", g->t[t].name, st_gtensor_numel(&g->t[t]), INT_MAX);
    int *ub = NULL, has = 0;
    MPI_Comm_get_attr(MPI_COMM_WORLD, MPI_TAG_UB, &ub, &has);
    if (has && ub && (double)r->microbatches * 2 + 1 > (double)*ub)
        return st_error_set(err, ST_EINVAL, NULL, "gbs",
                            "the per-operator runtime tags each micro-batch's transfers: %lld micro-batches need tags "
                            "up to %lld, this MPI's MPI_TAG_UB is %d", (long long)r->microbatches,
                            (long long)r->microbatches * 2 + 1, *ub);
    if (r->nstages > ST_MAX_STAGES || g->block_in < 0)
        return st_error_set(err, ST_EINVAL, NULL, "stages", "the per-operator runtime runs a model's repeated blocks "
                            "in at most %d stages", ST_MAX_STAGES);
    for (int s = 0; s < r->nstages; s++) {
        ox Y = *X; /* the stage's view */
        Y.st = &r->stage[s], Y.M = mesh_of(X, s);
        for (int op = 0; op < g->nops; op++) {
            const st_gop *o = &g->ops[op];
            const char *nm = o->name;
            if (Y.st->choice[op].lab[0] == '-') continue;
            int ok = (o->type == ST_GOP_EMBEDDING && o->nin == 2) || (o->type == ST_GOP_NORM && o->nin == 2) ||
                     (o->type == ST_GOP_MATMUL && checked_gemm(o) && g->t[o->in[1]].weight &&
                      (!strcmp(nm, "qkv") || !strcmp(nm, "proj") || !strcmp(nm, "fc1") || !strcmp(nm, "fc2") ||
                       !strcmp(nm, "logits") || !strcmp(nm, "router") || !strcmp(nm, "expert_fc1") ||
                       !strcmp(nm, "expert_fc2"))) ||
                     (o->type == ST_GOP_ATTENTION && o->causal) || o->type == ST_GOP_LOSS ||
                     ((o->type == ST_GOP_DISPATCH || o->type == ST_GOP_COMBINE) && o->nin == 2) ||
                     (o->type == ST_GOP_ELEMWISE && (o->nin == 2 || !strcmp(nm, "act") || !strcmp(nm, "rope") ||
                                                     !strcmp(nm, "expert_act") || !strcmp(nm, "qkv_bias") ||
                                                     strstr(nm, "dropout")));
            if (!ok) {
                int a = 0;
                while (a < Y.M.naxes - 1 && !Y.st->choice[op].lab[a]) a++;
                return st_autoshard_refuse(err, s, g, op, Y.st->choice[op].lab[a], a, Y.M.size[a],
                              "the per-operator runtime runs dense and MoE blocks' operators (embedding, norms, QKV, "
                              "rotary embedding, fused attention, projection, MLP, router, dispatch, experts, combine, "
                              "output layer, loss)");
            }
        }
        int bad = moe_mismatch(&Y);
        if (bad) {
            int a = 0;
            while (a < Y.M.naxes - 1 && !Y.st->choice[bad].lab[a]) a++;
            return st_autoshard_refuse(err, s, g, bad, Y.st->choice[bad].lab[a], a, Y.M.size[a],
                                       "the per-operator runtime's combine takes the tokens the dispatch routed, its "
                                       "rows split alike, and every expert's rows of them");
        }
    }
    return 0;
}

static void mb_free(ox *X, ox_mb *b) {
    const st_graph *g = X->g;
    if (!b->val) return;
    for (int k = 0; k < g->ntensors * X->nslots; k++) val_free(&b->val[k]), val_free(&b->grad[k]);
    for (int k = 0; k < g->nops * X->nslots * ST_G_MAXIN; k++) val_free(&b->edge[k].f), val_free(&b->edge[k].b);
    for (int k = 0; k < g->nops * X->nslots; k++)
        free(b->sv[k].a), free(b->sv[k].b), free(b->sv[k].c), free(b->sv[k].d);
    free(b->val), free(b->grad), free(b->edge), free(b->sv), free(b->tokens), free(b->cap);
    memset(b, 0, sizeof *b);
}

static int mb_init(ox *X, ox_mb *b) {
    const st_graph *g = X->g;
    b->val = calloc((size_t)(g->ntensors * X->nslots), sizeof *b->val);
    b->grad = calloc((size_t)(g->ntensors * X->nslots), sizeof *b->grad);
    b->edge = calloc((size_t)(g->nops * X->nslots * ST_G_MAXIN), sizeof *b->edge);
    b->sv = calloc((size_t)(g->nops * X->nslots), sizeof *b->sv);
    b->tokens = malloc((size_t)(X->mbs * (X->S + 1)) * sizeof *b->tokens);
    b->cap = calloc((size_t)X->nslots, sizeof *b->cap);
    return b->val && b->grad && b->edge && b->sv && b->tokens && b->cap ? 0 : ST_ENOMEM;
}

static void ox_destroy(ox *X) {
    for (int i = 0; X->mb && i < X->Mb; i++) mb_free(X, &X->mb[i]);
    free(X->mb);
    free(X->gx.t), free(X->cdim);
    for (int i = 0; i < X->nparams; i++) free(X->p[i].w), free(X->p[i].g), free(X->p[i].m), free(X->p[i].v);
    free(X->p);
    free(X->it);
    free(X->scratch);
    free(X->rm), free(X->rv);
    st__xmodel_destroy(&X->ref);
    st__xcheck_free(&X->chk);
    st_as_work_free(&X->w);
    for (int k = 1; k < 4; k++)
        if (X->axc[k] != MPI_COMM_NULL && X->axc[k] != X->comm) MPI_Comm_free(&X->axc[k]);
    if (X->comm != MPI_COMM_NULL) MPI_Comm_free(&X->comm);
    if (X->all != MPI_COMM_NULL) MPI_Comm_free(&X->all);
    for (int i = 0; i < X->nsend; i++) free(X->sbufs[i]);
    free(X->reqs), free(X->sbufs);
}

/* the reference's iteration (exec/cpu.c's ref_grads): every micro-batch, its gradients kept for the comparison;
 * its mean loss into *loss */
static int ref_grads(ox *X, int64_t step, uint64_t seed, double *loss) {
    int64_t T = X->S;
    int32_t *tokens = malloc((size_t)(X->mbs * (T + 1)) * sizeof *tokens);
    if (!tokens) return ST_ENOMEM;
    memset(X->ref.grads, 0, (size_t)X->ref.nparams * sizeof(float));
    *loss = 0;
    for (int64_t j = 0; j < X->Mb; j++) {
        for (int64_t b = 0; b < X->mbs; b++) st__xtokens(tokens + b * (T + 1), T, X->ref.V, seed, step, j * X->mbs + b);
        double l = 0;
        const float *o;
        st__xacts *a = st__xmodel_forward(&X->ref, 0, tokens, NULL, &o, &l);
        if (!a) return free(tokens), ST_ENOMEM;
        st__xmodel_backward(&X->ref, a, NULL, 1.0 / (double)X->Mb, &o);
        st__xacts_free(a);
        *loss += l / (double)X->Mb;
    }
    free(tokens);
    return 0;
}

/* rank 0: the kept iteration's spans of each stage's first device, in the simulator's processes and threads */
static int write_trace(const ox *X, const st_lowered *l, const double *const *spans, const char *path, st_error *err) {
    st_trace *t = st_trace_open(path, st_stream_names, ST_STREAMS, err);
    if (!t) return err->code ? err->code : ST_EIO;
    for (int s = 0; s < X->nstages; s++) {
        const st_program *pg = &l->progs[s];
        st_trace_rank(t, pg->rank, pg->stage, pg->replicas);
        for (int i = 0; i < pg->n; i++) {
            st_ins in;
            st_program_ins(pg, i, &in);
            const char *cat = st__xtrace_cat(&in);
            st_trace_span(t, pg->rank, in.stream, spans[s][2 * i], spans[s][2 * i + 1], cat, in.label ? in.label : cat,
                          in.chunk, in.mb);
        }
    }
    return st_trace_close(t, err);
}

/* the micro-batch's values of the last iteration dropped (the arrays kept) */
static void mb_reset(ox *X, ox_mb *b) {
    const st_graph *g = X->g;
    for (int k = 0; k < g->ntensors * X->nslots; k++) val_free(&b->val[k]), val_free(&b->grad[k]);
    for (int k = 0; k < g->nops * X->nslots * ST_G_MAXIN; k++) {
        val_free(&b->edge[k].f), val_free(&b->edge[k].b);
        memset(&b->edge[k], 0, sizeof b->edge[k]);
    }
    memset(b->cap, 0, (size_t)X->nslots * sizeof *b->cap);
}

static int make_comms(ox *X) {
    if (MPI_Comm_dup(MPI_COMM_WORLD, &X->all) != MPI_SUCCESS) return ST_EINVAL;
    MPI_Comm_set_errhandler(X->all, MPI_ERRORS_RETURN);
    if (MPI_Comm_split(X->all, X->stage, X->rank, &X->comm) != MPI_SUCCESS) return ST_EINVAL;
    X->axc[3] = X->comm;
    if (X->M.naxes < 2) {
        X->axc[1] = X->comm;
        return 0;
    }
    /* axis 0's groups: the devices of one axis-1 coordinate; axis 1's: of one axis-0 coordinate */
    if (MPI_Comm_split(X->comm, X->c[1], X->c[0], &X->axc[1]) != MPI_SUCCESS) return ST_EINVAL;
    if (MPI_Comm_split(X->comm, X->c[0], X->c[1], &X->axc[2]) != MPI_SUCCESS) return ST_EINVAL;
    return 0;
}

static int item_kind(const ox_item *it) {
    switch (it->type) {
    case IT_COLL: return ST_EXEC_COLL_TP;
    case IT_SYNC: return ST_EXEC_COLL_DP;
    case IT_SEND: return ST_EXEC_SEND;
    case IT_RECV: return ST_EXEC_RECV;
    default: return it->phase == ST_PHASE_BWD ? ST_EXEC_BWD : it->phase == ST_PHASE_RECOMPUTE ? ST_EXEC_RECOMPUTE
                                                                                              : ST_EXEC_FWD;
    }
}

/* a recompute's edges start again from the values the forward makes again */
static void restart_edges(ox *X, const ox_item *it) {
    if (it->phase != ST_PHASE_RECOMPUTE) return;
    for (int i = it->i0; i < it->i1; i++) {
        int op = X->w.step[it->part][0][i].op, slot = step_slot(X, it, op);
        for (int k = 0; k < X->g->ops[op].nin; k++) {
            ox_edge *e = edge_at(X, it->mb, op, slot, k);
            if (e->fstarted && !e->restarted) val_free(&e->f), e->fstarted = 0, e->restarted = 1;
        }
    }
}

/* the pipeline's transfers: the last layer's output to the next stage's arrival layout, its gradient back */
static int run_p2p(ox *X, const ox_item *it) {
    const st_graph *g = X->g;
    const st_gtensor *T = &g->t[g->block_out];
    int pr = g->t[g->block_out].producer, last = X->layers - 1, tag = it->mb * 2 + it->bwd, rc;
    if (it->type == IT_SEND && !it->bwd) { /* the activation, whole (the LEAVE steps resolved its partial sums) */
        const ox_val *v = val_at(X, it->mb, g->block_out, last);
        ox_mesh N = mesh_of(X, X->stage + 1);
        return xmesh(X, X->stage, v->l, X->stage + 1, arrival_layout(&N, T), T->dim, T->ndim, 0, v->v, NULL, tag,
                     "send act");
    }
    if (it->type == IT_RECV && !it->bwd) {
        ox_val *v = val_at(X, it->mb, g->block_in, 0);
        int64_t lo[MAXD], len[MAXD];
        st_layout from = X->r->stage[X->stage - 1].choice[pr].out;
        from.partial = 0;
        val_free(v);
        v->l = arrival_layout(&X->M, T);
        v->n = block_of(&X->M, T->dim, T->ndim, v->l, X->c, lo, len);
        if (!(v->v = calloc((size_t)v->n, sizeof(float)))) return ST_ENOMEM;
        v->owned = 1;
        return xmesh(X, X->stage - 1, from, X->stage, v->l, T->dim, T->ndim, 0, NULL, v->v, tag, "recv act");
    }
    if (it->type == IT_SEND) { /* the first layer's input gradient, in the arrival layout, back */
        ox_val *gv = grad_at(X, it->mb, g->block_in, 0);
        st_layout to = X->r->stage[X->stage - 1].choice[pr].out;
        to.partial = 0;
        if (!gv->v) return ST_EINVAL;
        return xmesh(X, X->stage, gv->l, X->stage - 1, to, T->dim, T->ndim, 0, gv->v, NULL, tag, "send grad");
    }
    ox_val *gv = grad_at(X, it->mb, g->block_out, last);
    ox_mesh N = mesh_of(X, X->stage + 1);
    int64_t lo[MAXD], len[MAXD];
    val_free(gv);
    gv->l = out_layout(X, pr), gv->l.partial = 0;
    gv->n = block_of(&X->M, T->dim, T->ndim, gv->l, X->c, lo, len);
    if (!(gv->v = calloc((size_t)gv->n, sizeof(float)))) return ST_ENOMEM;
    gv->owned = 1;
    rc = xmesh(X, X->stage + 1, arrival_layout(&N, T), X->stage, gv->l, T->dim, T->ndim, 0, NULL, gv->v, tag,
               "recv grad");
    return rc;
}

static int run_item(ox *X, const ox_item *it) {
    switch (it->type) {
    case IT_COMPUTE: restart_edges(X, it); return run_compute(X, it);
    case IT_COLL: restart_edges(X, it); return run_coll(X, it);
    case IT_SYNC: return run_sync(X, it->axis, it->gather, 0);
    case IT_SEND:
    case IT_RECV: return run_p2p(X, it);
    default: return 0;
    }
}

int st_exec_run_ilp(const st_model *m, const st_autoshard_result *r, const st_cluster *c, const st_profile *prof,
                    st_dtype dt, const st_lowered *l, const st_exec_opts *o, st_exec_result *res, st_error *err) {
    ox X;
    memset(&X, 0, sizeof X);
    X.comm = X.all = MPI_COMM_NULL;
    for (int k = 0; k < 4; k++) X.axc[k] = MPI_COMM_NULL;
    memset(res, 0, sizeof *res);
    int wrank = 0, size = 0, rc = 0, bad = 0, anybad = 0;
    double *spans = NULL, kind_best[ST_EXEC_KINDS] = {0}, best_s = INFINITY, gemm_best = 0, delay_best = 0;
    double heap_peak = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &wrank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    X.m = m, X.r = r, X.g = r->g, X.nstages = r->nstages, X.E = m->experts, X.topk = m->experts_topk;
    /* the stages' devices one after another in the world (their GPUs', as the lowering places them) */
    X.base[0] = 0;
    for (int s = 0; s < r->nstages && s < ST_MAX_STAGES; s++) {
        X.base[s + 1] = X.base[s] + mesh_of(&X, s).n;
        if (wrank >= X.base[s] && wrank < X.base[s + 1]) X.stage = s;
    }
    X.st = &r->stage[X.stage], X.rank = wrank - X.base[X.stage], X.pg = &l->progs[X.stage];
    X.M = mesh_of(&X, X.stage);
    X.layers = X.st->last - X.st->first, X.nslots = X.layers > 0 ? X.layers : 1;
    X.mbs = r->mbs, X.S = r->g->seq, X.Mb = r->microbatches, X.V = m->vocab, X.h = m->hidden, X.d = m->head_dim;
    X.kv = m->kv_heads, X.qper = m->heads / m->kv_heads;
    X.swiglu = m->activation == ST_ACT_SWIGLU, X.rope = m->position == ST_POS_ROPE, X.bias = m->bias;
    X.layernorm = m->norm != ST_NORM_RMSNORM, X.tied = m->tied_embeddings;
    X.be = &st__xbackend_cpu;
    coords_of(&X.M, X.rank, X.c);
    res->rank = wrank, res->nranks = l->nranks, res->steps = o->steps;
    X.wt = (st__xwatch){.timeout_s = o->timeout_s > 0 ? o->timeout_s : ST_EXEC_TIMEOUT_S, .rank = wrank,
                        .world = MPI_COMM_WORLD, .step = -1, .ins = -1, .mb = -1, .label = "the setup"};
    st__xfault fault; /* STRATA_EXEC_FAULT (exec.h's test hook): its rank a world rank, its instruction its stage's */
    /* refusals every rank meets alike */
    if ((rc = moe_dims(&X)) || (rc = check_plan(&X, o, err))) {
        if (rc == ST_ENOMEM) st_error_set(err, rc, NULL, NULL, "out of memory");
        res->refused = 1;
        free(X.gx.t), free(X.cdim);
        return rc;
    }
    if (!rc && (rc = st__xfault_parse(getenv("STRATA_EXEC_FAULT"), &fault, err)) == 0 && fault.kind != ST__XFAULT_NONE) {
        int fs = 0;
        while (fs < X.nstages - 1 && fault.rank >= X.base[fs + 1]) fs++;
        if (fault.rank >= X.base[X.nstages] || fault.ins >= l->progs[fs].n)
            rc = st_error_set(err, ST_EINVAL, NULL, "STRATA_EXEC_FAULT", "rank %d instruction %d is not in the job",
                              fault.rank, fault.ins);
    }
    if (rc) {
        res->refused = 1;
        free(X.gx.t), free(X.cdim);
        return rc;
    }
    if (size != X.base[X.nstages]) {
        res->refused = 1;
        free(X.gx.t), free(X.cdim);
        return st_error_set(err, ST_EINVAL, NULL, "plan",
                            "the plan's stages run on meshes of %d devices in all; mpirun started %d (mpirun -np %d)",
                            X.base[X.nstages], size, X.base[X.nstages]);
    }
    st__xkernels_reference = o->reference_kernels;
    st__xkernels_threads(1); /* one core per rank (the ranks are the parallelism) */
    int whole[2] = {0, (int)m->layers};
    /* the single-rank model: its tensor table (each rank seeds its blocks from it), whole only for --check */
    st__xpart one = {.B = X.mbs, .T = X.S, .tp = 1, .nchunks = 1, .l0 = whole, .l1 = whole + 1, .first = 1, .last = 1,
                     .table = !o->check || wrank != 0};
    X.seed = o->seed;
    rc = st__xmodel_init(&X.ref, m, &one, o->seed, err);
    if (!rc) rc = st_autoshard_work(r, X.stage, c, prof, dt, &X.w, err);
    if (!rc) rc = make_items(&X, err);
    if (!rc && (rc = make_params(&X)))
        st_error_set(err, rc, NULL, "plan", rc == ST_ENOMEM ? "out of memory" : "a weight's split does not divide it");
    if (!rc) {
        X.mb = calloc((size_t)X.Mb, sizeof *X.mb);
        if (o->check && wrank == 0) { /* the reference's Adam */
            X.rm = calloc((size_t)X.ref.nparams + 1, sizeof *X.rm);
            X.rv = calloc((size_t)X.ref.nparams + 1, sizeof *X.rv);
        }
        spans = calloc((size_t)(4 * X.pg->n + 2), sizeof *spans);
        if (!X.mb || (o->check && wrank == 0 && (!X.rm || !X.rv)) || !spans) rc = ST_ENOMEM;
        for (int64_t j = 0; !rc && j < X.Mb; j++) rc = mb_init(&X, &X.mb[j]);
        if (rc) st_error_set(err, rc, NULL, NULL, "out of memory");
    }
    res->world = size;
    if (wrank == 0) {
        res->row_rank = malloc((size_t)X.nstages * sizeof *res->row_rank);
        for (int s = 0; res->row_rank && s < X.nstages; s++) res->row_rank[s] = X.base[s];
        res->loss = calloc((size_t)o->steps, sizeof *res->loss);
        res->iteration_s = calloc((size_t)o->steps, sizeof *res->iteration_s);
        res->kind_s = calloc((size_t)l->nranks * ST_EXEC_KINDS, sizeof *res->kind_s);
        res->ref_loss = calloc((size_t)o->steps, sizeof *res->ref_loss);
        res->stats = calloc((size_t)l->nranks * ST_EXEC_STATS, sizeof *res->stats);
        if (!rc && (!res->loss || !res->iteration_s || !res->kind_s || !res->ref_loss || !res->stats || !res->row_rank))
            rc = st_error_set(err, ST_ENOMEM, NULL, NULL, "out of memory");
    }
    bad = rc != 0;
    MPI_Allreduce(&bad, &anybad, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    if (anybad) {
        if (!rc) rc = st_error_set(err, ST_EINVAL, NULL, NULL, "another rank's setup failed");
        res->refused = 1;
        goto out;
    }
    if ((rc = make_comms(&X))) {
        st_error_set(err, rc, NULL, NULL, "MPI could not make the mesh's communicators");
        res->refused = 1;
        goto out;
    }
    for (int i = 0; i < ST_EXEC_TENSORS; i++) res->grad_diff[i] = res->grad_ref[i] = -1;
    double cmp[2 * ST_EXEC_TENSORS + 1];
    st__xcheck_clear(cmp);
    X.chk.ref = o->check && wrank == 0 ? &X.ref : NULL;
    X.wt.world = X.all;
    st__xcrash_install(&X.wt);
    double *work = spans + 2 * X.pg->n + 1;
    for (int64_t step = 0; step < o->steps && !rc; step++) {
        double kind_s[ST_EXEC_KINDS] = {0}, ref_loss = 0;
        for (int i = 0; i < X.nparams; i++) {
            ox_param *p = &X.p[i];
            memset(p->g, 0, (size_t)p->n * sizeof *p->g);
            p->slo = 0, p->sn = p->n, p->done = p->rs = 0;
        }
        for (int64_t j = 0; j < X.Mb; j++) {
            mb_reset(&X, &X.mb[j]);
            for (int64_t b = 0; b < X.mbs; b++)
                st__xtokens(X.mb[j].tokens + b * (X.S + 1), X.S, X.V, o->seed, step, j * X.mbs + b);
        }
        X.loss_sum = 0, X.adam_done = 0, X.opt_s = 0;
        X.wt.step = step, X.wt.ins = -1, X.wt.label = "its start: the single-rank reference of --check";
        if (o->check && wrank == 0 && (rc = ref_grads(&X, step, o->seed, &ref_loss))) {
            if (size > 1) st__xfail(&X.wt, "out of memory"); /* (the others wait for it in the barrier) */
            break;
        }
        X.wt.label = "the barrier that starts it";
        MPI_Request q = MPI_REQUEST_NULL;
        st__xwatch bw = o->check ? st__xcheck_barrier_watch(&X.wt, size) : X.wt; /* (rank 0 ran the reference) */
        st__xwait(&bw, MPI_Ibarrier(X.all, &q), &q, 1, "barrier", X.all, -1);
        double t0 = now_s(), gemm0 = st__xkernels_gemm_s, delay0 = st__xrun_delay_s();
        for (int i = 0; i < X.nit && !rc; i++) {
            const ox_item *it = &X.it[i];
            st_ins in;
            st_program_ins(X.pg, i, &in);
            X.wt.ins = i, X.wt.mb = in.mb, X.wt.label = in.label ? in.label : "?";
            double s = now_s(), opt0 = X.opt_s;
            st__xfault_at(&fault, &X.wt);
            if (fault.kind == ST__XFAULT_NAN && step == 0 && wrank == fault.rank && i == fault.ins)
                for (int k = 0; k < X.nparams; k++) X.p[k].g[0] = NAN; /* (a diverged run; some row unused) */
            if (st__xfault_fails(&fault, &X.wt)) rc = ST_ENOMEM;
            if (!rc && it->type == IT_SYNC && it->gather && !X.adam_done)
                rc = run_adam(&X, step, o->check ? cmp : NULL); /* the optimizer between reduction and gather */
            if (!rc) rc = run_item(&X, it);
            double e = now_s(), opt = X.opt_s - opt0;
            kind_s[item_kind(it)] += e - s - opt;
            kind_s[ST_EXEC_OPTIMIZER] += opt;
            work[2 * i] = s - t0 + opt, work[2 * i + 1] = e - t0;
            heap_peak = fmax(heap_peak, st__xheap_bytes());
            if (rc)
                st_error_set(err, rc, NULL, "plan", "rank %d instruction %d (%s, micro-batch %d) cannot run", wrank, i,
                             in.label ? in.label : "?", in.mb);
            /* its peers may wait for it in a collective or a receive: they stop now, not at their timeout */
            if (rc && size > 1) st__xfail(&X.wt, rc == ST_ENOMEM ? "out of memory" : err->text);
        }
        if (!rc && !X.adam_done) {
            double opt0 = X.opt_s, s = now_s();
            X.wt.ins = -1, X.wt.label = "its end: the gradients' reduction and Adam";
            rc = run_adam(&X, step, o->check ? cmp : NULL);
            if (rc && size > 1) st__xfail(&X.wt, rc == ST_ENOMEM ? "out of memory" : "the gradients' reduction failed");
            kind_s[ST_EXEC_OPTIMIZER] += X.opt_s - opt0;
            kind_s[ST_EXEC_COLL_DP] += now_s() - s - (X.opt_s - opt0);
        }
        for (int i = 0; i < X.nsend; i++) { /* the pipeline's sends of the iteration, received by now */
            X.wt.ins = -1, X.wt.label = "its end: its sends received";
            st__xwait(&X.wt, MPI_SUCCESS, &X.reqs[i], 1, "send", X.all, -1);
            free(X.sbufs[i]);
        }
        X.nsend = 0;
        double t = now_s() - t0, tmax = 0, loss = 0, gemm_s = st__xkernels_gemm_s - gemm0;
        double delay_s = st__xrun_delay_s() - delay0;
        if (!rc && !isfinite(X.loss_sum))
            rc = st_error_set(err, ST_EINVAL, NULL, "plan",
                              "rank %d step %d: the loss is not finite (the run diverged)", wrank, (int)step + 1);
        if (!rc && o->check) rc = st__xcheck_step_error(&X.chk, wrank, step, err);
        int mine = rc ? wrank : INT_MAX, first = INT_MAX;
        X.wt.ins = -1, X.wt.label = "its end: the ranks agree on errors, time and loss";
        st__xwait(&X.wt, MPI_Iallreduce(&mine, &first, 1, MPI_INT, MPI_MIN, X.all, &q), &q, 1, "all-reduce", X.all, -1);
        if (first != INT_MAX) {
            res->failed_by = first + 1;
            if (!rc) rc = st_error_set(err, ST_EINVAL, NULL, "plan", "world rank %d failed (its line says why)", first);
            break;
        }
        X.wt.ins = -1, X.wt.label = "its end: the gradients to rank 0 for --check";
        if (o->check && (rc = st__xcheck_gather(&X.chk, &X.wt, X.all, wrank, size, cmp))) {
            if (size > 1) st__xfail(&X.wt, "out of memory"); /* (the others would wait for it in the next step) */
            st_error_set(err, rc, NULL, NULL, "out of memory");
            break;
        }
        MPI_Request r2[2] = {MPI_REQUEST_NULL, MPI_REQUEST_NULL};
        int rc2 = MPI_Iallreduce(&t, &tmax, 1, MPI_DOUBLE, MPI_MAX, X.all, &r2[0]);
        if (rc2 == MPI_SUCCESS) rc2 = MPI_Ireduce(&X.loss_sum, &loss, 1, MPI_DOUBLE, MPI_SUM, 0, X.all, &r2[1]);
        st__xwait(&X.wt, rc2, r2, 2, "reduce to rank 0", X.all, wrank == 0 ? -1 : 0);
        if (step == 0 || (step == 1 && o->steps > 1) || tmax < best_s) { /* exec/cpu.c's kept iteration */
            best_s = tmax, gemm_best = gemm_s, delay_best = delay_s, res->kept_step = (int)step;
            memcpy(kind_best, kind_s, sizeof kind_s);
            memcpy(spans, work, (size_t)(2 * X.pg->n) * sizeof *spans);
        }
        if (wrank == 0) {
            res->loss[step] = loss;
            res->iteration_s[step] = tmax;
            if (o->check) {
                res->ref_loss[step] = ref_loss;
                if (fabs(loss - ref_loss) > res->loss_diff) res->loss_diff = fabs(loss - ref_loss);
            }
        }
        if (o->check && wrank == 0)
            st__xadam(X.ref.params, X.ref.grads, X.rm, X.rv, X.ref.nparams, (int)step + 1, ADAM_LR, ADAM_B1, ADAM_B2,
                      ADAM_EPS);
    }
    st__xcrash_remove();
    if (rc) goto out;
    X.wt.step = -1, X.wt.label = "gathering the results at rank 0";
    MPI_Request q = MPI_REQUEST_NULL;
    if (o->check) { /* the largest over the devices, at rank 0 */
        double dmax[2 * ST_EXEC_TENSORS];
        st__xwait(&X.wt, MPI_Ireduce(cmp, dmax, 2 * ST_EXEC_TENSORS, MPI_DOUBLE, MPI_MAX, 0, X.all, &q), &q, 1,
                  "reduce to rank 0", X.all, -1);
        if (wrank == 0) {
            memcpy(res->grad_diff, dmax, sizeof res->grad_diff);
            memcpy(res->grad_ref, dmax + ST_EXEC_TENSORS, sizeof res->grad_ref);
        }
    }
    res->params = (double)X.ref.nparams;
    {
        /* each stage's first device stands for it (the lowering's representative rank): its clocks, stats and
         * spans to rank 0 */
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        double mine[ST_EXEC_KINDS + ST_EXEC_STATS] = {0}, *all = NULL;
        memcpy(mine, kind_best, sizeof kind_best);
        mine[ST_EXEC_KINDS + ST_EXEC_GEMM_S] = gemm_best, mine[ST_EXEC_KINDS + ST_EXEC_HEAP_PEAK_BYTES] = heap_peak;
        mine[ST_EXEC_KINDS + ST_EXEC_RSS_PEAK_BYTES] = (double)ru.ru_maxrss * 1024;
        mine[ST_EXEC_KINDS + ST_EXEC_RUN_DELAY_S] = delay_best;
        int W = ST_EXEC_KINDS + ST_EXEC_STATS;
        if (wrank == 0 && !(all = malloc((size_t)(size * W) * sizeof *all))) rc = ST_ENOMEM;
        int grc = MPI_Igather(mine, W, MPI_DOUBLE, all, W, MPI_DOUBLE, 0, X.all, &q);
        st__xwait(&X.wt, grc, &q, 1, "gather", X.all, -1);
        for (int s = 0; all && s < X.nstages; s++) {
            memcpy(res->kind_s + s * ST_EXEC_KINDS, all + X.base[s] * W, ST_EXEC_KINDS * sizeof *all);
            memcpy(res->stats + s * ST_EXEC_STATS, all + X.base[s] * W + ST_EXEC_KINDS, ST_EXEC_STATS * sizeof *all);
        }
        free(all);
        if (o->trace) {
            double **sp = wrank == 0 ? calloc((size_t)X.nstages, sizeof *sp) : NULL;
            int ttag = (int)(2 * X.Mb + 1); /* (after the tied exchange's: check_plan) */
            for (int s = 1; s < X.nstages; s++) { /* the other stages' first devices' spans */
                int n = 2 * l->progs[s].n;
                if (wrank == X.base[s]) {
                    st__xwait(&X.wt, MPI_Isend(spans, n, MPI_DOUBLE, 0, ttag, X.all, &q), &q, 1, "send", X.all, 0);
                } else if (wrank == 0 && sp && (sp[s] = malloc((size_t)(n + 1) * sizeof **sp))) {
                    st__xwait(&X.wt, MPI_Irecv(sp[s], n, MPI_DOUBLE, X.base[s], ttag, X.all, &q), &q, 1, "receive",
                              X.all, X.base[s]);
                } else if (wrank == 0) {
                    double dummy[1];
                    MPI_Recv(dummy, 0, MPI_DOUBLE, X.base[s], ttag, X.all, MPI_STATUS_IGNORE);
                    rc = ST_ENOMEM;
                }
            }
            if (wrank == 0 && sp) {
                sp[0] = spans;
                if (!rc) rc = write_trace(&X, l, (const double *const *)sp, o->trace, err);
                for (int s = 1; s < X.nstages; s++) free(sp[s]);
                free(sp);
            }
            st__xwait(&X.wt, MPI_Ibcast(&rc, 1, MPI_INT, 0, X.all, &q), &q, 1, "broadcast", X.all, -1);
            if (rc && wrank != 0) st_error_set(err, rc, o->trace, NULL, "rank 0 could not write the trace");
        }
    }
out:
    ox_destroy(&X);
    free(spans);
    return rc;
}
