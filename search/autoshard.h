/* autoshard.h: operator-level auto-sharding (issue 4, `strata plan --search ilp`).
 *
 * For each operator of a graph (graph.h) and each logical mesh over a sub-mesh of the cluster,
 * the candidate shardings (one label per mesh axis) are priced with cost/ (compute: cost/compute.c
 * on the operator's local share; communication: the resharding between a producer's layout and a
 * consumer's, forward and the mirrored backward, cost/reshard.c; weight-gradient reduction along
 * the axes that split the batch; memory: weights with their gradients and Adam state, and saved
 * activations times the micro-batches in flight). search/ilp.c picks one sharding per operator;
 * search/stage_dp.c cuts the repeated blocks into pipeline stages over sub-meshes (Alpa). */
#ifndef STRATA_SEARCH_AUTOSHARD_H
#define STRATA_SEARCH_AUTOSHARD_H

#include "graph.h"

typedef struct st_autoshard_opts {
    int64_t gpus;            /* 0: the whole cluster */
    int64_t gbs;             /* sequences per iteration (model graphs) */
    int64_t mbs;             /* 0: try 1, 2, 4, ... (model graphs); custom graphs use their own batch */
    int64_t seq;             /* 0: the model's */
    int64_t microbatches;    /* custom graphs: micro-batches per iteration (default 1) */
    st_dtype dtype;
    double mem_limit_bytes;  /* 0: the GPU's memory less the framework reserve */
    double time_limit_s;     /* per ILP solve (0: 60 s) */
    int max_stages;          /* 0: choose (stage DP); 1: no pipeline */
    int zero;                /* ST_AS_ZERO_AUTO: each stage with and without the distributed optimizer,
                                the faster that fits; 0: plain data parallelism; 1: ZeRO-1 everywhere */
} st_autoshard_opts;

#define ST_AS_ZERO_AUTO (-1)

void st_autoshard_opts_init(st_autoshard_opts *o);
/* Memory a GPU of c has for the plan: its memory less the framework's reserve (the default limit). */
double st_autoshard_memory_limit(const st_cluster *c);

/* one operator's chosen sharding: the label each mesh axis splits (0 = none) */
typedef struct st_as_choice {
    char lab[2];
    st_layout out;
} st_as_choice;

typedef struct st_as_stage {
    int first, last;       /* repeated-block layers [first, last); stage 0 has the head, the last the tail */
    int recompute;         /* full activation recompute of its layers (keep each layer's input only) */
    int zero;              /* 1: distributed optimizer (ZeRO-1) over each weight's gradient-reduction group */
    st_mesh mesh;          /* logical mesh */
    st_as_choice *choice;  /* per graph op; lab = {'-','-'} for ops not on this stage */
    double time_s;         /* one micro-batch, forward + backward, with its communication */
    double compute_s, comm_s, sync_s, p2p_s; /* parts of time_s (sync_s: gradient reduction / B) */
    double memory_bytes;
    int ilp_nodes;         /* ILP nodes (operators after follow-set merging; one block for all layers) */
    int64_t ilp_vars;      /* its variables as formulated: strategies + edge pairs */
    int ilp_rows, ilp_cols, ilp_binaries, ilp_optimal; /* what GLPK got after search/ilp.c's reductions */
    double ilp_gap, ilp_time_s;
} st_as_stage;

typedef struct st_autoshard_result {
    st_graph graph;        /* the graph of the chosen micro-batch size (model graphs; owned) */
    const st_graph *g;     /* the graph the stages refer to: &graph, or the caller's custom graph */
    int nstages;
    st_as_stage *stage;
    int64_t mbs, microbatches;
    double iteration_time_s, tokens_per_s, model_flops, model_tflops_per_gpu, mfu, memory_peak_bytes;
    int64_t ilp_solves;    /* ILPs solved in all */
    int64_t dp_cost_calls;
    double search_time_s;
    uint64_t evaluated;    /* (micro-batch size, stage, sub-mesh, logical mesh) combinations priced */
} st_autoshard_result;

/* Plans graph-level sharding. Give a model (graphs are built per micro-batch size) or a custom
 * graph (m NULL). Returns 0, ST_ENOPLAN (nothing fits: err says which limit and by how much), or
 * ST_EINVAL. */
int st_autoshard(const st_model *m, const st_graph *custom, const st_cluster *c, const st_profile *prof,
                 const st_autoshard_opts *o, st_autoshard_result *r, st_error *err);
void st_autoshard_result_free(st_autoshard_result *r);

/* Prices a given plan (an ILP plan file) as st_autoshard prices its own. The caller fills r->g (the
 * graph of r->mbs; r->graph may own it), r->mbs, r->microbatches, r->nstages and per stage first,
 * last, mesh and choice[] (labels per graph op, '-' for ops not on it). o gives gbs, seq and dtype.
 * Memory is not limited: r->memory_peak_bytes says whether it fits. Returns 0 or ST_EINVAL with
 * err naming the stage and operator. */
int st_autoshard_evaluate(const st_model *m, const st_cluster *c, const st_profile *prof, const st_autoshard_opts *o,
                          st_autoshard_result *r, st_error *err);

/* A stage's work for one micro-batch, step by step, as the simulator's lowering runs it: the
 * operators' compute and the collectives between them (the resharding of every edge, forward and
 * the backward mirror; the loss's statistics; partial sums resolved before leaving the stage), in
 * parts: the head (stage 0), one layer of the block (run once per layer), the edges from one
 * layer into the next (between layers), the edges into the first and out of the last layer, the
 * tail (last stage). Forward runs HEAD, ENTER, LAYER (CROSS LAYER)..., LEAVE, TAIL; backward the
 * same parts in reverse order, each part's steps as listed (with recompute, each layer's backward
 * is preceded by its forward again, with the edge into it: CROSS, or ENTER for the first). The per-iteration gradient reduction
 * is per mesh axis. Summed, the steps give st_as_stage's time_s less its p2p and sync parts. */
enum { ST_AS_HEAD, ST_AS_ENTER, ST_AS_LAYER, ST_AS_CROSS, ST_AS_LEAVE, ST_AS_TAIL, ST_AS_PARTS };
typedef struct st_as_step {
    st_coll coll;   /* ST_COLL_NONE: compute */
    int axis;       /* a collective's mesh axis */
    double time_s;  /* alone */
    double bytes;   /* a collective's bytes per rank (st_cost_collective's) */
    int op;         /* the graph op it belongs to */
} st_as_step;
typedef struct st_as_work {
    int n[ST_AS_PARTS][2], cap[ST_AS_PARTS][2]; /* [part][0 forward, 1 backward] */
    st_as_step *step[ST_AS_PARTS][2];
    int zero;                        /* the stage's ZeRO stage (0 or 1) */
    double sync_s[2], sync_bytes[2]; /* gradient reduction per mesh axis, once per iteration: all-reduce
                                        (zero 0) or reduce-scatter (zero 1, innermost axis first) */
    double gather_s[2], gather_bytes[2]; /* zero 1: the updated 16-bit weights' all-gather per mesh axis,
                                            after the optimizer step (outermost axis first) */
    double state_bytes;              /* weights, gradients, optimizer state */
    double saved_bytes;              /* activations one micro-batch leaves for backward */
    int recompute;                   /* the stage recomputes each layer's forward (the LAYER forward
                                        steps, with the CROSS or ENTER ones into it) before its backward */
    double recompute_bytes;          /* then one layer's activations, alive from its recompute to the
                                        end of its backward */
    double p2p_s;                    /* the stage's exchange time per micro-batch (st_as_stage's p2p_s) */
    double p2p_in_s, p2p_in_bytes;   /* with the stage before, one way (time; bytes per device pair) */
    double p2p_out_s, p2p_out_bytes; /* with the stage after */
} st_as_work;
int st_autoshard_work(const st_autoshard_result *r, int stage, const st_cluster *c, const st_profile *prof,
                      st_dtype dt, st_as_work *w, st_error *err);
void st_as_work_free(st_as_work *w);

/* ---- lower-level pieces (tests, benchmarks) */

/* The objective of a fixed assignment of a single-stage plan of graph g on mesh (labels per op,
 * {0,0} = replicated), priced exactly as the ILP prices it; memory into *mem_bytes. Returns
 * INFINITY when a label is not a valid sharding of its operator. */
double st_autoshard_price(const st_graph *g, const st_cluster *c, const st_profile *prof, const st_mesh *mesh,
                          st_dtype dt, int64_t microbatches, const char (*labels)[2], double *mem_bytes);

/* The collectives one layer of the block implies in forward (for the summary): counts per kind. */
void st_autoshard_block_collectives(const st_autoshard_result *r, int stage, int counts[ST_COLL_COUNT]);

/* What a sharding does to an operator, in words: "replicated", "column (output split)", "row
 * (partial sums)", "data (batch split)", "heads", "experts", ... (static string). */
const char *st_autoshard_role(const st_graph *g, int op, const st_as_choice *ch, int naxes);
/* The hand-written plan the result amounts to ("tp=8,pp=1,dp=1,mbs=1,sp=0"), when every stage
 * shards like Megatron-LM over equal meshes; else a description of why not. */
void st_autoshard_spec(const st_autoshard_result *r, char *buf, size_t n);

#endif
