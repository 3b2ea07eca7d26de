/* search.h: the search layer (search/): the hybrid-space enumerator, compare over clusters already
 * resolved, and the operator-level planner (ILP, GLPK in search/ilp.c alone; stage DP; the
 * tensor-level graph, igraph in search/graph.c alone). Uses core and cost. */
#ifndef STRATA_SEARCH_H
#define STRATA_SEARCH_H

#include "cost/cost.h"
#include "src/core/core.h"

/* ------------------------------------------------------------ search */

typedef struct st_search_opts {
    int64_t gpus, gbs, seq;
    int top;          /* plans kept */
    st_dtype dtype;
    st_attention attention; /* every plan's (not searched; ST_ATTN_DEFAULT) */
    st_kernels kernels;     /* every plan's (not searched; fused) */
    int max_tp;       /* 0 = heads */
    int progress;     /* progress line on stderr after 1 s */
    /* also try the zero-bubble schedules zb (ZB-H1) and zbv (ZB-V) for pipelined plans whose 1F1B
     * form comes within reach of the kept plans (search/enumerate.c) */
    int zero_bubble;
    /* also try DualPipe (DeepSeek-V3's, schedule=dualpipe) there (search/enumerate.c) */
    int dualpipe;
    uint64_t seed;
    /* optional filter: plans for which accept() returns 0 are priced (counted) but not kept, e.g.
     * plans a framework cannot run; called only for plans good enough to enter the kept set */
    int (*accept)(const st_plan *p, void *arg);
    void *accept_arg;
} st_search_opts;

typedef struct st_ranked {
    st_plan plan;
    st_estimate est;
    double sim_time_s; /* simulated iteration time (st_search_validate); 0 = not simulated,
                          < 0 = the simulation could not run it */
} st_ranked;

typedef struct st_search_result {
    st_ranked *plans; /* best first, n of them */
    int n;
    uint64_t evaluated; /* fully specified configurations priced */
    uint64_t feasible;  /* of those, the ones that fit */
    uint64_t bounded;   /* configurations ruled out unpriced: their compute alone outlasts the kept plans */
    double search_time_s;
} st_search_result;

void st_search_opts_init(st_search_opts *o);
/* Enumerates the hybrid space. Fills res (free with st_search_result_destroy). Returns
 * ST_ENOPLAN when nothing fits. */
int st_search_enumerate(const st_model *m, const st_cluster *c, const st_profile *prof,
                        const st_search_opts *o, st_search_result *res, st_error *err);
void st_search_result_destroy(st_search_result *res);

/* ------------------------------------------------------------ mixed GPU types (search/balance.c) */

/* Apportions `total` units over n items in proportion to speed[i], each between 1 and cap[i] (cap
 * NULL: no cap): x_i = clamp(lambda speed_i, 1, cap_i) summing to total, rounded down and the rest
 * given by largest remainders (ties to the lower index). 0, or ST_EINVAL when it cannot (total < n,
 * caps below total, a speed not > 0, n beyond ST_MAX_STAGES / ST_MAX_REPLICAS). */
int st_balance_split(const double *speed, const int64_t *cap, int n, int64_t total, int64_t *out);
/* On a cluster of node groups of different speeds (issue 19), sets p's stage_layers in proportion to
 * each stage's per-layer speed under its memory and its dp_batches in proportion to each replica's
 * speed (see balance.c). Returns 1 when p changed, 0 when it is left as it was (a uniform cluster,
 * ZB-V, splits already given, nothing to gain), or ST_ENOMEM. */
int st_search_balance(st_cost_ctx *ctx, st_plan *p);

/* ------------------------------------------------------------ compare */

/* One row of `strata compare`: the best plan of one cluster at one GPU count, and what it means
 * for a training run of `tokens` tokens (search/compare.c). */
typedef struct st_compare_row {
    st_cluster cluster;        /* sized to `gpus` GPUs */
    int64_t gpus;
    int cluster_index;         /* position in the cluster list (the order prices follow) */
    int order;                 /* position in the cross product clusters x gpus (ties keep it) */
    int has_price;             /* price_per_gpu_hour was given */
    double price_per_gpu_hour; /* currency units per GPU-hour */
    int profiled;              /* the calibration profile: 0 none, 1 applied as measured (its GPU is this
                                  cluster's), 2 scaled to this cluster's GPU (st_profile_retarget) */
    char profile_note[320];    /* when scaled: st_profile_retarget's note */
    int fits;                  /* a plan fits; best and the derived numbers are valid only then */
    st_ranked best;
    uint64_t evaluated;        /* configurations the search priced */
    double search_time_s;
    /* derived by st_compare_row_derive; 0 where they do not apply (no fit, no price) */
    double time_to_train_s, time_to_train_h, time_to_train_days;
    double cost_to_train;      /* time_h x gpus x price */
    double tokens_per_dollar;  /* tokens_per_s x 3600 / (gpus x price) */
    double headroom_bytes;     /* GPU memory minus the peak of the busiest stage */
    /* derived by st_compare_row_energy when energy is asked for (has_energy); 0 where they do not
     * apply (no fit; no price per kWh for the costs) */
    int has_energy;
    double power_w;            /* the row's GPUs and host nodes, at the wall (PUE included) */
    double energy_mwh;         /* to train `tokens` tokens */
    double energy_cost;        /* energy_mwh x 1000 x price_per_kwh */
    double total_cost;         /* cost_to_train (GPU-hours) + energy_cost */
    double tokens_per_joule;
} st_compare_row;

/* What `strata compare` needs to put energy and its cost on a row (search/compare.c). */
typedef struct st_compare_energy {
    double power_fraction; /* average GPU power as a fraction of TDP (measured; 1 = TDP) */
    double node_watts;     /* a host node's power besides its GPUs; < 0: ST_COMPARE_NODE_W_PER_GPU each */
    double pue;            /* data-center power usage effectiveness */
    double price_per_kwh;  /* currency units per kWh; 0 = no energy cost */
} st_compare_energy;
/* DGX H100 datasheet: 10.2 kW system maximum, 8 x 700 W of it the GPUs: 4.6 kW for the rest of the
 * node (CPUs, memory, NICs, switches, fans), 575 W per GPU. */
#define ST_COMPARE_NODE_W_PER_GPU 575.0
/* PUE of a modern liquid-cooled AI data center: hyperscalers report ~1.1 fleet-wide (Google 2023
 * environmental report: 1.10), the Uptime Institute's 2023 survey average over all sites is 1.58;
 * 1.2 is between them and stated as an assumption where it is used. */
#define ST_COMPARE_DEFAULT_PUE 1.2
void st_compare_energy_init(st_compare_energy *e); /* fraction 1 (TDP), default node watts and PUE */
/* Fills a row's energy numbers from its time to train (st_compare_row_derive first), its GPUs'
 * TDP and host nodes; ST_EINVAL naming key "gpu.tdp_watts" when the GPU has no TDP. Pure. */
int st_compare_row_energy(st_compare_row *r, double tokens, const st_compare_energy *e, st_error *err);

#define ST_COMPARE_MAX_LIST 64 /* clusters, GPU counts, prices */
#define ST_COMPARE_DEFAULT_TOKENS 3e11 /* GPT-3's 300B training tokens (Brown et al. 2020, section 2.2) */

/* "3e11", "300000000000", "300B", "15T", "2.5M", "40K" (decimal suffixes K M B T, either case) to
 * finite count >= 1. Nothing else: no sign, spaces, hex, inf or nan. Returns 0 or ST_EINVAL (*out
 * untouched). */
int st_compare_parse_tokens(const char *s, double *out);
/* Fills a row's derived numbers from best.est, gpus, price and the cluster's GPU memory. Pure. */
void st_compare_row_derive(st_compare_row *r, double tokens);
/* Orders rows best first: rows that fit by time to train, then the ones that do not; ties keep
 * the input order (`order`), so output is deterministic. */
void st_compare_rows_sort(st_compare_row *rows, int n);
/* 0, or ST_EINVAL naming key "price_per_gpu_hour" when a price is not a finite number > 0. */
int st_compare_check_price(double price, st_error *err);
/* For each cluster and each GPU count (cross product, clusters outer: clusters[i * max(ngpus, 1) + j]
 * is cluster i resolved and sized to the j-th count; ngpus 0 = each cluster at its own size), searches
 * with st_search_enumerate (o->top and o->gpus are ignored: top 1, all the row's GPUs) and derives
 * the row. prices: NULL, or one per cluster. prof (may be NULL) applies to the rows whose GPU is the
 * profile's; ST_EUSAGE if none is. Every price and profile is checked before any search, so bad
 * input fails fast. A row where nothing fits is kept with fits = 0. Returns 0 with *rows (new; free
 * with st_compare_rows_free) sorted by st_compare_rows_sort and *nrows set (none fits when
 * (*rows)[0].fits is 0), or a negative code with *rows NULL. */
int st_compare_run(const st_model *m, const st_cluster *clusters, int nclusters, int ngpus, const double *prices,
                   const st_search_opts *o, double tokens, const st_profile *prof, st_compare_row **rows, int *nrows,
                   st_error *err);
void st_compare_rows_free(st_compare_row *rows);
/* Installs the error hooks of the libraries search/ uses, once, at start-up (STYLE.md rule 5):
 * igraph's error handler returns error codes instead of aborting the process, and its warnings are
 * not printed; GLPK prints nothing (its error hook is installed again before each solve, since
 * igraph's replaces it: search/ilp.c). main() and the test runner call it first. */
void st_search_init(void);
/* its parts (search/graph.c, search/ilp.c) */
void st__graph_init(void);
void st__ilp_init(void);

/* ------------------------------------------------- tensor-level graph (search/graph.c) */

/* The graph of a model preset / model JSON for one micro-batch of `mbs` sequences of `seq`
 * tokens: head, one block of each kind in the model (dense; MoE models use their MoE block), tail.
 * Per-operator FLOPs and bytes are src/core/opgraph.c's at tp = 1; attention is one fused operator
 * (attn = ST_ATTN_FLASH) or scores, softmax, dropout and context (ST_ATTN_UNFUSED). A model with
 * structure the block does not build (latent attention, several kinds of block, shared experts,
 * dense-first or window/global layers) is refused with ST_EINVAL naming it. */
int st_graph_from_model(const st_model *m, int64_t mbs, int64_t seq, st_dtype dt, st_attention attn, st_graph *g,
                        st_error *err);

/* Derives labels, FLOPs and bytes from the operator types where the file did not give them,
 * checks shapes across edges, and (with igraph) that the graph is acyclic and has no dangling
 * tensors; fills topo. `file` names the source in errors. */
int st_graph_check(st_graph *g, const char *file, st_error *err);

/* The size of label l in op o (the first of its tensors that has it; 1 if none). */
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

/* ------------------------------------------------- operator-level auto-sharding */

/* Operator-level auto-sharding (issue 4, `strata plan --search ilp`).
 *
 * For each operator of a graph (graph.h) and each logical mesh over a sub-mesh of the cluster,
 * the candidate shardings (one label per mesh axis) are priced with cost/ (compute: cost/compute.c
 * on the operator's local share; communication: the resharding between a producer's layout and a
 * consumer's, forward and the mirrored backward, cost/reshard.c; weight-gradient reduction along
 * the axes that split the batch; memory: weights with their gradients and Adam state, and saved
 * activations times the micro-batches in flight). search/ilp.c picks one sharding per operator;
 * search/stage_dp.c cuts the repeated blocks into pipeline stages over sub-meshes (Alpa). */

typedef struct st_autoshard_opts {
    int64_t gpus;            /* 0: the whole cluster */
    int64_t gbs;             /* sequences per iteration (model graphs) */
    int64_t mbs;             /* 0: try 1, 2, 4, ... (model graphs); custom graphs use their own batch */
    int64_t seq;             /* 0: the model's */
    int64_t microbatches;    /* custom graphs: micro-batches per iteration (default 1) */
    st_dtype dtype;
    st_attention attention;  /* how model graphs run attention (ST_ATTN_DEFAULT) */
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
    st_attention attention; /* how the model graph runs attention (st_autoshard_opts.attention) */
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
    double bytes;   /* a collective's bytes per rank (st_cost_collective's); compute: this phase's HBM
                       bytes on one device */
    int op;         /* the graph op it belongs to (an edge's resharding: the consumer's) */
    int src;        /* a collective's: the graph op whose output it reshards (in backward, that output's
                       gradient; an MoE combine's router input: the dispatch, which holds the router's output
                       for it), -1 when the tensor arrives from the previous stage */
    double m, n, k, batch; /* compute: the GEMM (fused attention) shape on one device, after the
                              sharding (st_op's); 0 for other classes */
    double flops;   /* compute: this phase's FLOPs on one device */
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
/* The hybrid degrees an operator-level plan runs with in the executor (search/as_hybrid.c): when
 * every stage shards each operator as Megatron-LM's decoder does (per mesh axis: tensor parallelism
 * over the heads, with or without the residual stream split by rows, or data parallelism), all
 * stages alike (mesh axes that split no operator: rep copies). tp and dp are products over the mesh
 * axes; sp 1 when the residual stream is split; zero 1 when the stages use ZeRO-1 over a batch
 * split. st_autoshard_hybrid: one hybrid plan for every stage (head_dp the last stage's); 0, or ST_EINVAL
 * with err naming the first stage and operator (its label and mesh axis) the executor does not run so, or
 * the first stage whose degrees differ from the one before it ("stages of different shapes").
 * st_autoshard_hybrid_stages: each stage's own degrees into h[r->nstages], whatever the other stages' (the
 * executor runs such a plan stage by stage: exec.h's st_exec_stage); 0, or ST_EINVAL naming the first
 * stage and operator the executor does not run. */
typedef struct st_as_hybrid {
    int tp, dp, sp, zero;
    int ep;        /* of dp: the experts over batch axes whose output layer is on the batch too (Megatron's ep) */
    int attn_rows; /* on the tp axes (with sp) by the token rows rather than the heads: 1 the attention projection
                      (an all-to-all before it), 2 the whole attention (QKV to the projection); whole weights;
                      3 QKV split along its fused width ('e'), its output all-gathered, the attention replicated,
                      the projection by heads (with or without sp) */
    int moe_rows;  /* MoE blocks on the tp axes (with sp): the tokens dispatched by the residual stream's rows, the
                      experts split over the axes ('e'); 0: each expert split by its ffn ('f', expert tensor
                      parallelism, the tokens gathered as Megatron's tp MoE does) */
    int router_h;  /* MoE blocks on the tp axes: the router row-parallel by the hidden dimension ('h'); 0: whole, on
                      the rows the residual stream's label says (each device's with sp, else every row) */
    int rep;       /* copies: the product of the mesh axes on which no operator is split (every device of such an
                      axis computes what the others do) */
    int head_dp;   /* the output layer and the loss vocabulary-parallel over the batch axes ('v' there) and on the
                      residual stream's rows on the tp axes (with sp): the final norm's rows gathered over the dp
                      group, not the tp group; the embedding then whole on the rows (the stream's label) */
} st_as_hybrid;
int st_autoshard_hybrid(const st_autoshard_result *r, st_as_hybrid *h, st_error *err);
int st_autoshard_hybrid_stages(const st_autoshard_result *r, st_as_hybrid *h, st_error *err);
/* The executor's refusal of operator op's split lab (0: none) on mesh axis `axis` of stage `stage` (size
 * devices), why saying why: ST_EINVAL with err's key 'stages' and one line naming them all. */
int st_autoshard_refuse(st_error *err, int stage, const st_graph *g, int op, char lab, int axis, int size,
                        const char *why);
/* The hand-written plan the result amounts to ("tp=8,pp=1,dp=1,mbs=1,sp=0"), when every stage
 * shards like Megatron-LM over equal meshes; else a description of why not. */
void st_autoshard_spec(const st_autoshard_result *r, char *buf, size_t n);

#endif
