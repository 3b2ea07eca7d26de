/* graph.h: the tensor-level operator graph the auto-sharding ILP works on (issue 4).
 *
 * An operator reads up to ST_G_MAXIN tensors and writes one. Every tensor dimension an operator
 * touches carries a one-letter label, in einsum style: a matmul is "bsh,hf->bsf". A sharding of
 * the operator picks, for each axis of the device mesh, one label to split (or none); the layouts
 * of its inputs and output follow from the labels (Zheng et al. OSDI'22, Alpa, section 4.1: the
 * "S0/S1/R" specs are these per-axis choices). A label the output lacks (a contraction) leaves the
 * output partial along that axis: a later all-reduce or reduce-scatter resolves it. Labels that an
 * operator cannot split locally (the normalised dimension of a norm or softmax, the spatial
 * dimensions of a convolution) are listed in `nosplit`. `alias` maps a label the operator splits
 * onto the label it becomes in another tensor (MoE dispatch: the token dimensions b and s become
 * the capacity dimension c of the dispatched [experts, capacity, hidden] tensor).
 *
 * Graphs come from the model presets and HuggingFace configs (st_graph_from_model: one
 * transformer block, tied: it stands for all `repeat` layers, plus the embedding head and the
 * logits/loss tail, with the per-operator FLOPs and bytes of src/opgraph.c so that both planners
 * price the same operators) or from a custom graph JSON (src/graph_io.c). search/graph.c checks
 * them with igraph: cycles, dangling tensors, shapes that do not match across an edge. */
#ifndef STRATA_SEARCH_GRAPH_H
#define STRATA_SEARCH_GRAPH_H

#include "strata.h"

#define ST_G_MAXDIM 6
#define ST_G_MAXIN 3
#define ST_G_NAME 48

typedef enum {
    ST_GOP_MATMUL,    /* x[..., k] . w[k, n] (or batched [.., k, n]) -> [..., n] */
    ST_GOP_ELEMWISE,  /* same-shape inputs and output: add, mul, activation, dropout, bias */
    ST_GOP_NORM,      /* layer/RMS norm over the last dimension (+ optional weight [last]) */
    ST_GOP_SOFTMAX,   /* softmax over the last dimension */
    ST_GOP_ATTENTION, /* fused attention: q, k, v [b, s, heads, d] -> [b, s, heads, d] */
    ST_GOP_EMBEDDING, /* ids [...] . table [v, h] -> [..., h] */
    ST_GOP_LOSS,      /* cross-entropy over the last dimension of logits -> scalar */
    ST_GOP_CONV,      /* 2-D convolution: x [n, c, h, w], w [o, c, kh, kw] -> [n, o, h', w'] */
    ST_GOP_RESIZE,    /* pooling / up-sampling: [n, c, h, w] -> [n, c, h', w'] */
    ST_GOP_CONCAT,    /* concatenation along dimension 1 (channels) */
    ST_GOP_DISPATCH,  /* MoE: tokens [..., h] (+ router [..., e]) -> [e, c, h] */
    ST_GOP_COMBINE,   /* MoE: [e, c, h] (+ router [..., e]) -> tokens [..., h] */
    ST_GOP_COUNT
} st_gop_type;

const char *st_gop_type_name(st_gop_type t);
int st_gop_type_parse(const char *s, st_gop_type *out); /* 0 or ST_EINVAL */

typedef struct st_gtensor {
    char name[ST_G_NAME];
    int ndim; /* 0 = scalar */
    int64_t dim[ST_G_MAXDIM];
    st_dtype dtype;
    int weight;     /* a parameter: gradients, optimizer state, synchronised when replicated */
    int input;      /* fed from outside (token ids, images): any layout for free */
    int shared;     /* a weight already counted elsewhere (tied embeddings): no memory here */
    int producer;   /* op index, -1 for weights and inputs */
    int nconsumers;
} st_gtensor;

typedef struct st_gop {
    char name[ST_G_NAME];
    st_gop_type type;
    st_opclass cls; /* the cost class cost/compute.c prices it with */
    int nin;
    int in[ST_G_MAXIN];
    int out;
    char lab[ST_G_MAXIN][ST_G_MAXDIM + 1]; /* labels of each input's dimensions */
    char lab_out[ST_G_MAXDIM + 1];
    char nosplit[16];
    char alias_from[4], alias_to[4]; /* split alias_from[i] appears as alias_to[i] elsewhere */
    /* whole operator, unsharded, one micro-batch */
    double fwd_flops, bwd_flops, fwd_bytes, bwd_bytes;
    int kernels_fwd, kernels_bwd;
    double gemm[4];     /* m, n, k, batch of a GEMM-class op, unsharded (0: from the labels) */
    double saved_bytes; /* activation bytes kept for backward, unsharded */
    int save_ref;       /* the tensor whose sharding divides saved_bytes: an input index, or
                           ST_G_MAXIN for the output */
    int block;              /* 1: part of the repeated transformer block */
} st_gop;

typedef struct st_graph {
    char name[64];
    int nops, ntensors;
    st_gop *ops;
    st_gtensor *t;
    int64_t repeat;   /* the block's layers (1 = no repeated block) */
    int block_in;     /* tensor the first block reads (the previous block's output), or -1 */
    int block_out;    /* tensor the last block writes, or -1 */
    int64_t mbs, seq; /* micro-batch shape the graph was built for (presets) */
    int *topo;        /* ops in topological order (st_graph_check fills it) */
    /* Graphs without a repeated block (custom graphs): segments between the operators that every
     * path from inputs to outputs crosses (igraph's dominator tree), the units the pipeline-stage
     * DP cuts into stages; 0 / NULL for model graphs. seg_cut[s]: the op whose output is the only
     * activation leaving segment s (-1 for the last). */
    int nsegs;
    int *seg, *seg_cut; /* per op; per segment */
} st_graph;

void st_graph_free(st_graph *g); /* frees the arrays; g itself is the caller's */

/* The graph of a model preset / model JSON for one micro-batch of `mbs` sequences of `seq`
 * tokens: head, one block of each kind in the model (dense; MoE models use their MoE block), tail.
 * Per-operator FLOPs and bytes are src/opgraph.c's at tp = 1. */
int st_graph_from_model(const st_model *m, int64_t mbs, int64_t seq, st_dtype dt, st_graph *g, st_error *err);

/* Loads a custom graph JSON (src/graph_io.c; format in README). */
int st_graph_load(const char *path, st_graph *g, st_error *err);

/* Derives labels, FLOPs and bytes from the operator types where the file did not give them,
 * checks shapes across edges, and (with igraph) that the graph is acyclic and has no dangling
 * tensors; fills topo. `file` names the source in errors. */
int st_graph_check(st_graph *g, const char *file, st_error *err);

/* Elements of a tensor; the size of label l in op o (the first of its tensors that has it; 1 if none). */
double st_gtensor_numel(const st_gtensor *t);
double st_gop_label_size(const st_graph *g, const st_gop *o, char l);

/* The units the pipeline-stage DP cuts a graph into: the repeated block's layers, or a custom
 * graph's segments (at least 1). */
int st_graph_units(const st_graph *g);
/* The activation tensor that crosses from unit u - 1 into unit u (0 < u < units): the block's
 * output, or the output of the operator that ends segment u - 1. */
int st_graph_unit_tensor(const st_graph *g, int u);
/* How many times operator op runs in a stage holding units [first, last): the block's ops once per
 * layer, the head's on the first stage, the tail's on the last, a custom graph's in their segment's
 * stage (0: not on this stage). */
int st_graph_op_mult(const st_graph *g, int op, int first, int last);

/* Parameters of the whole model the graph stands for (the block counted `repeat` times). */
double st_graph_params(const st_graph *g);

#endif
