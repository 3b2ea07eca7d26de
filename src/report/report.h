/* report.h: the report layer (src/report/): what strata writes for people and other tools: text
 * and JSON output of every command, the plan files and configurations for Megatron-LM, DeepSpeed
 * and torchtitan, operator-level (ILP) plan files, and plots (gnuplot). May use every layer below
 * it (README "Architecture"). */
#ifndef STRATA_REPORT_H
#define STRATA_REPORT_H

#include "cost/cost.h"
#include "search/search.h"
#include "src/core/core.h"
#include "src/io/io.h"
#include "src/sim/sim.h"

/* ------------------------------------------------------------ emit */

typedef enum { ST_EMIT_MEGATRON, ST_EMIT_DEEPSPEED, ST_EMIT_TORCHTITAN } st_emit_kind;
int st_emit_parse(const char *s, st_emit_kind *out);
/* Writes framework configuration for the plan to f. */
int st_emit(st_emit_kind kind, const st_plan *p, const st_model *m, const st_cluster *c, FILE *f,
            st_error *err);
/* `strata run --emit slurm`: writes to path, atomically, an sbatch script that runs the plan's
 * tp x pp x dp x cp ranks on c's nodes (gpus_per_node tasks a node, each bound to its GPU and a
 * core) with srun and the command line args[0 .. nargs) (each single-quoted). p is finalized for c
 * (it fits). 0, ST_EIO, ST_ENOMEM. */
int st_emit_slurm(const st_plan *p, const st_cluster *c, const char *const *args, int nargs, const char *path,
                  st_error *err);


/* Output (src/report/output.c). Each builds the whole document, then writes it in one go. With a
 * calibration profile (prof, may be NULL) the document says which: "profile": {"file", "gpu",
 * "scaled_from" (null when used as measured)}. */
int st_out_estimate_json(FILE *f, const st_model *m, const st_cluster *c, const st_plan *p,
                         const st_estimate *e, const st_stage_memory *stages, int nstages, const st_profile *prof,
                         st_error *err);
int st_out_plan_json(FILE *f, const st_model *m, const st_cluster *c, const st_search_opts *o,
                     const st_search_result *r, const char *emitted, const char *emit_kind, const st_profile *prof,
                     st_error *err);
struct st_sim_result;
/* `strata sim --json`: the estimate keys as simulated (sim), the analytical estimate beside them,
 * per-rank stats and the event count */
int st_out_sim_json(FILE *f, const st_model *m, const st_cluster *c, const st_plan *p, const st_estimate *sim,
                    const st_estimate *analytical, const struct st_sim_result *r, const st_profile *prof,
                    st_error *err);
int st_out_models_json(FILE *f, st_error *err);
int st_out_clusters_json(FILE *f, st_error *err);
/* `strata profiles --json`: {"profiles": [{name, path, gpu, date, source} or {name, path, error}]}. */
int st_out_profiles_json(FILE *f, const st_profile_entry *e, size_t n, st_error *err);
/* src/report/compare_io.c: `strata compare --json`, the rows in the order st_compare_run ranked them. */
int st_out_compare_json(FILE *f, const st_model *m, const st_search_opts *o, double tokens, const st_compare_row *rows,
                        int nrows, st_error *err);

/* Text helpers shared by the commands. */
void st_print_breakdown(FILE *f, const st_breakdown *b, const char *indent);

/* ------------------------------------------------------------ validation (src/report/validation.c) */

/* Kendall's tau-b between x and y over n pairs (Kendall 1945; with ties: tau_b = (C - D) /
 * sqrt((N0 - Tx) (N0 - Ty)), N0 = n(n-1)/2 pairs, Tx and Ty the pairs tied in x and in y, a pair
 * tied in both counted in each), as scripts/validate.sh computes it for vTrain. */
typedef struct st_tau {
    double tau_b; /* NAN when n < 2 or every pair is tied in x or in y */
    int64_t pairs, concordant, discordant, tied_x, tied_y;
} st_tau;
/* Fills *out and returns out->tau_b. O(n^2): the groups are small. */
double st_tau_b(const double *x, const double *y, int n, st_tau *out);

/* What became of one point of a validation bundle (st_validation, src/io/io.h). */
typedef enum { ST_VROW_OK, ST_VROW_NOFIT, ST_VROW_REJECTED, ST_VROW_ERROR } st_vrow_status;

typedef struct st_vrow {
    const st_validation_point *pt; /* borrowed from the bundle */
    st_vrow_status status;
    char spec[512];     /* the finalized plan's canonical spec; "" when strata refused the plan */
    char label[96];     /* the plan for tables: layout, batch, recompute; "-" when refused */
    double predicted_s; /* OK, NOFIT: the predicted iteration time; else NAN */
    double peak_gib;    /* OK, NOFIT: the predicted memory peak; else NAN */
    double gpu_gib;     /* the GPU's memory */
    char message[640];  /* NOFIT: what exceeds what ("95.7 GiB > 89.4 GiB"); REJECTED, ERROR: strata's
                           reason; one line; "" for OK */
} st_vrow;

/* The rows of one set (or of all), compared = status OK; error = (predicted - measured) / measured. */
typedef struct st_vsummary {
    int rows, compared, rejected, nofit, errors;
    double mae_pct, max_abs_pct; /* NAN when no row was compared */
    int max_row;                 /* the row (index into st_vreport.rows) of max |error|; -1 when none */
} st_vsummary;

/* The rows of one rank group: tau-b over the compared ones when there are at least 3. */
typedef struct st_vgroup {
    const char *name; /* borrowed from the bundle */
    int rows, compared;
    st_tau tau; /* tau.tau_b NAN with fewer than 3 compared rows */
} st_vgroup;

#define ST_VGROUP_MIN 3 /* compared rows a rank group needs for its tau-b */

/* A validation run: the caller fills b, command, all_sets/set, rows and nrows (rows in the
 * bundle's order, the points of the chosen sets only), then st_vreport_summarize fills the rest. */
typedef struct st_vreport {
    const st_validation *b;
    const char *command; /* "estimate" or "sim" */
    int all_sets;        /* 1: every set; else only `set` */
    st_vset set;
    st_vrow *rows;       /* owned: free() */
    int nrows;
    st_vsummary sets[2]; /* by st_vset */
    st_vsummary all;
    st_vgroup *groups;   /* owned; in order of first appearance */
    int ngroups;
    int ungrouped;       /* rows without a rank group */
} st_vreport;

/* The summaries and rank groups of r's rows; 0 or ST_ENOMEM. */
int st_vreport_summarize(st_vreport *r, st_error *err);
void st_vreport_destroy(st_vreport *r); /* frees rows and groups */
/* The text report: a header, one line per row, the summary per set, tau-b per rank group, and
 * the lines "SUMMARY SET k=v ..." and "TAU group=G k=v ..." for scripts (scripts/validate.sh). */
int st_vreport_print(FILE *f, const st_vreport *r, st_error *err);
/* `strata validate --json`: {file, about, command, set, rows, summary, rank_groups}. */
int st_out_validation_json(FILE *f, const st_vreport *r, st_error *err);
/* The compared rows as the CSV `strata plot accuracy` reads (name,measured,predicted,set: the id,
 * seconds, seconds, the point's set), written atomically. */
int st_vreport_write_csv(const st_vreport *r, const char *path, st_error *err);
/* Writes len bytes of text to path through "<path>.tmp.XXXXXX" and rename(2) (src/report/plot.c). */
int st__write_atomic(const char *path, const char *text, size_t len, st_error *err);

/* ------------------------------------------------------------ ILP plans (src/report/autoshard_io.c) */

int st_out_autoshard_json(FILE *f, const char *model, const st_cluster *c, int64_t gpus, int64_t gbs, int64_t seq,
                          const st_autoshard_result *r, st_error *err);
/* `strata estimate --json` of an ILP plan (sim NULL), or `strata sim --json` (sim given, r its
 * simulated figures, analytical the estimate's): the estimate keys and the stages. */
int st_out_autoshard_estimate_json(FILE *f, const char *name, const st_cluster *c, const st_autoshard_result *r,
                                   int fits, const st_sim_result *sim, const st_autoshard_result *analytical,
                                   st_error *err);
/* The ILP plan file (atomic write): the plan JSON of DESIGN.md (format, version, the equivalent
 * spec, gbs/mbs/seq or a custom graph's micro-batches, dtype, schedule) with "search": "ilp" and
 * per stage its layers, mesh and each operator's split; the model (or graph file) and cluster it
 * was made for, with content hashes. m NULL: a custom graph read from graph_path. */
int st_autoshard_save(const st_autoshard_result *r, const st_model *m, const char *graph_path, const st_cluster *c,
                      int64_t gbs, int64_t seq, st_dtype dt, const char *path, st_error *err);

/* 1 when arg names a readable JSON file that is an operator-level plan (it has "stages" or
 * "search"); 0 otherwise (the hybrid plan loader then reports what is wrong with it). */
int st__plan_is_ilp(const char *arg);

/* What an ILP plan file says it was made for (informational). */
typedef struct st_as_origin {
    char model[64], model_hash[17], cluster[64], cluster_hash[17], graph[64], graph_hash[17];
    double predicted_s; /* the planner's iteration time, 0 if absent */
} st_as_origin;
/* Loads an ILP plan for model m (or the custom graph, m NULL; it must outlive r) on cluster c: fills
 * r as st_autoshard_evaluate expects (the model's graph of the plan's micro-batch size in
 * r->graph), o with gbs, mbs, seq, dtype. Every operator of each stage must have a split; errors
 * name the file and key (exit 2). */
int st_autoshard_load(const char *path, const st_model *m, const st_graph *custom, const st_cluster *c,
                      st_autoshard_opts *o, st_autoshard_result *r, st_as_origin *orig, st_error *err);

/* ------------------------------------------------------------ plots (src/report/plot*.c) */

/* the private interface of `strata plot`: what the readers (src/report/plot_io.c) make of the
 * inputs, and the gnuplot driver (src/report/plot.c) that turns them into IMAGE, IMAGE-stem.gp and
 * IMAGE-stem.dat.
 *
 * Invariants:
 * - An st_plot_data holds exactly the numbers of its input, in the input's units (seconds, GiB,
 *   tokens/s, MFU as a fraction, microseconds for traces); conversions for display happen in the
 *   generated gnuplot script, so the .dat can be checked against the text commands' output.
 * - Missing values (JSON null, a result that does not fit) are NAN, never 0.
 * - Every string is owned by the st_plot_data and freed by st_plot_data_free.
 */

typedef enum {
    ST_PLOT_STRATEGIES,
    ST_PLOT_BREAKDOWN,
    ST_PLOT_MEMORY,
    ST_PLOT_TIMELINE,
    ST_PLOT_SCALING,
    ST_PLOT_HARDWARE,
    ST_PLOT_ACCURACY,
    ST_PLOT_COUNT
} st_plot_kind;

const char *st_plot_kind_name(st_plot_kind k);
int st_plot_kind_parse(const char *s, st_plot_kind *out); /* 0 or ST_EINVAL */

/* The components of breakdown_s, in the order of the JSON output (src/report/output.c). */
#define ST_PLOT_NBREAK 10
extern const char *const st_plot_break_keys[ST_PLOT_NBREAK];
/* The components of a memory_gib[] entry, bottom of the stack first ("total" is separate). */
#define ST_PLOT_NMEM 5
extern const char *const st_plot_mem_keys[ST_PLOT_NMEM];

/* One entry of `strata plan --json` "plans" (or the one plan of `strata estimate --json`). */
typedef struct st_plot_plan {
    int rank;                /* 1-based; 0 for an estimate */
    char *spec;              /* inline spec as printed */
    double iteration_time_s; /* NAN when absent (breakdown only needs breakdown_s) */
    double tokens_per_s;
    double memory_peak_gib;
    int fits;
    double breakdown_s[ST_PLOT_NBREAK]; /* st_plot_break_keys order; NAN when absent */
} st_plot_plan;

/* One pipeline stage of `strata estimate --json` "memory_gib". */
typedef struct st_plot_stage {
    int stage;                /* 0-based */
    double gib[ST_PLOT_NMEM]; /* st_plot_mem_keys order */
    double total_gib;
} st_plot_stage;

/* One entry of `strata compare --json` "results". */
typedef struct st_plot_result {
    char *cluster, *gpu, *spec; /* spec NULL when absent or null */
    int64_t gpus;
    int fits;
    double tokens_per_s, mfu;  /* mfu a fraction; NAN when null */
    double time_to_train_days; /* NAN when null */
    double cost_to_train;      /* NAN when null (no price given, or does not fit) */
    /* compare --energy's "energy" object (hardware): NAN when absent or null */
    double energy_mwh, tokens_per_joule, energy_cost;
} st_plot_result;

/* A row of a trace: one (pid, tid) pair. Rows are sorted by pid then tid, numerically when both
 * are numbers, else as text. */
typedef struct st_plot_row {
    char *pid, *tid; /* as written in the trace (numbers printed as integers) */
    char *label;     /* "rank P / thread-name", or the process_name metadata / thread-name */
} st_plot_row;

/* A complete event ("X", or a "B"/"E" pair), in microseconds as in the trace. */
typedef struct st_plot_event {
    int row; /* index into rows */
    int cat; /* index into cats */
    double ts_us, dur_us;
    char *name;
} st_plot_event;

/* A row of an accuracy CSV. */
typedef struct st_plot_point {
    char *name;
    char *set; /* "" when the CSV has no "set" column */
    double measured, predicted;
} st_plot_point;

typedef struct st_plot_data {
    st_plot_kind kind;
    char *source;  /* the input path */
    char *subject; /* what the input is about ("llama2-7b on 16 x a100-sxm-80g (dgx-a100-80g)"); may be "" */
    /* strategies, breakdown */
    st_plot_plan *plans;
    int nplans;
    int from_estimate; /* breakdown of one `strata estimate` */
    /* memory */
    st_plot_stage *stages;
    int nstages;
    double gpu_memory_gib;
    /* timeline: rows sorted, events sorted by (row, ts_us), categories in order of first use */
    st_plot_row *rows;
    int nrows;
    st_plot_event *events;
    int nevents;
    char **cats;
    int ncats;
    /* scaling, hardware: in input order */
    st_plot_result *results;
    int nresults;
    double tokens; /* tokens to train (compare); NAN when absent */
    int has_energy; /* hardware: some result carries compare --energy's "energy" object */
    /* accuracy: in file order */
    st_plot_point *points;
    int npoints;
} st_plot_data;

/* Reads `path` as the input of `kind` (src/report/plot_io.c): JSON for all kinds but accuracy, which reads
 * a CSV. A JSON of the wrong shape is refused naming the file and the missing key. Returns 0 and a
 * new st_plot_data in *out (free with st_plot_data_free), or a negative ST_E* code. */
int st_plot_load(st_plot_kind kind, const char *path, st_plot_data **out, st_error *err);
void st_plot_data_free(st_plot_data *d);

/* What to draw and where (src/report/plot.c). */
typedef struct st_plot_opts {
    const char *out;     /* IMAGE.png, .svg or .pdf */
    int top;             /* plans (strategies, breakdown) or rows (timeline) to draw; 0 = default */
    const char *title;   /* NULL = a title from the input */
    const char *gnuplot; /* NULL = $STRATA_GNUPLOT, else configure's ST_GNUPLOT, else gnuplot on PATH */
} st_plot_opts;

void st_plot_opts_init(st_plot_opts *o);
/* The terminal for an image path by its extension ("pngcairo", "svg", "pdfcairo"), or NULL. */
const char *st_plot_terminal(const char *out);
/* The default --top of a kind. */
int st_plot_default_top(st_plot_kind k);

/* The .dat text of d under o: comment lines (#) and whitespace-separated columns, strings in double
 * quotes. Numbers are printed so that they read back to the same double. */
int st_plot_write_data(FILE *f, const st_plot_data *d, const st_plot_opts *o, st_error *err);
/* The .gp text: a standalone script that reads `dat_name` beside itself and writes `image_name`
 * there (or st_out when set with gnuplot -e "st_out='...'"). */
int st_plot_write_script(FILE *f, const st_plot_data *d, const st_plot_opts *o, const char *dat_name,
                         const char *image_name, st_error *err);
/* Writes IMAGE-stem.gp and IMAGE-stem.dat atomically, runs gnuplot into a temporary file and
 * renames it to o->out. Without gnuplot: the .gp and .dat are written and ST_EIO is returned with
 * one line saying so. *gp_path and *dat_path (may be NULL) receive new strings (free). */
int st_plot_render(const st_plot_data *d, const st_plot_opts *o, char **gp_path, char **dat_path, st_error *err);


/* ------------------------------------------------------------ strata run --compare (run_compare.c) */

/* the rows: the executor's kinds with compute split into GEMMs and the rest, and the iteration */
enum {
    ST_RUNCMP_GEMM,
    ST_RUNCMP_OTHER,
    ST_RUNCMP_OPTIMIZER,
    ST_RUNCMP_COLL_TP,
    ST_RUNCMP_COLL_DP,
    ST_RUNCMP_COLL_PP,
    ST_RUNCMP_SEND,
    ST_RUNCMP_RECV,
    ST_RUNCMP_COLL_CP, /* the cp and ep exchanges the executor runs inside the compute */
    ST_RUNCMP_COLL_EP,
    ST_RUNCMP_ITERATION,
    ST_RUNCMP_ROWS
};
typedef struct st_runcmp_mem {
    int rank; /* the world rank (st_exec_result.row_rank) */
    double heap_peak_bytes, rss_peak_bytes; /* measured */
    double sim_peak_bytes, arena_bytes;     /* predicted: the simulator's peak, the in-order arena */
    /* measured on the GPU (device runs): the backend's allocations' high-water mark, and the used
     * memory's as the driver reports it (0: it does not) */
    double device_peak_bytes, device_used_peak_bytes;
} st_runcmp_mem;
typedef struct st_runcmp {
    double measured_s[ST_RUNCMP_ROWS], simulated_s[ST_RUNCMP_ROWS]; /* seconds per rank, mean over ranks */
    int nranks, kept_step; /* the run's iteration the measured side is (0-based; st_exec_result.kept_step) */
    int device; /* 1: a rank allocated device memory (the cuda backend): the device columns are shown */
    /* seconds the ranks were runnable but waited for a core in that iteration (the kernel's run
     * delay), the most of one rank and the mean: how much other processes disturbed the measurement */
    double run_delay_max_s, run_delay_mean_s;
    st_runcmp_mem *mem;    /* nranks, by rank (owned) */
} st_runcmp;
struct st_exec_result;
/* Simulates l (the program the run executed, with the durations its cluster and profile gave) and
 * fills c beside r (rank 0's result of st_exec_run on l). 0, ST_ENOMEM, or the simulator's error.
 * Free with st_runcmp_destroy (also after a failure). */
int st_runcmp_build(const st_lowered *l, const struct st_exec_result *r, st_runcmp *c, st_error *err);
void st_runcmp_destroy(st_runcmp *c);
/* the table (text), or the "compare" member to append inside strata run's JSON object */
void st_runcmp_text(FILE *f, const st_runcmp *c);
void st_runcmp_json(FILE *f, const st_runcmp *c);

#endif
