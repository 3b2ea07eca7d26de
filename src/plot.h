/* plot.h: the private interface of `strata plot`: what the readers (src/plot_io.c) make of the
 * inputs, and the gnuplot driver (src/plot.c) that turns them into IMAGE, IMAGE-stem.gp and
 * IMAGE-stem.dat.
 *
 * Invariants:
 * - An st_plot_data holds exactly the numbers of its input, in the input's units (seconds, GiB,
 *   tokens/s, MFU as a fraction, microseconds for traces); conversions for display happen in the
 *   generated gnuplot script, so the .dat can be checked against the text commands' output.
 * - Missing values (JSON null, a result that does not fit) are NAN, never 0.
 * - Every string is owned by the st_plot_data and freed by st_plot_data_free.
 */
#ifndef STRATA_PLOT_H
#define STRATA_PLOT_H

#include "strata.h"

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

/* The components of breakdown_s, in the order of the JSON output (src/output.c). */
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
    /* accuracy: in file order */
    st_plot_point *points;
    int npoints;
} st_plot_data;

/* Reads `path` as the input of `kind` (src/plot_io.c): JSON for all kinds but accuracy, which reads
 * a CSV. A JSON of the wrong shape is refused naming the file and the missing key. Returns 0 and a
 * new st_plot_data in *out (free with st_plot_data_free), or a negative ST_E* code. */
int st_plot_load(st_plot_kind kind, const char *path, st_plot_data **out, st_error *err);
void st_plot_data_free(st_plot_data *d);

/* What to draw and where (src/plot.c). */
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

#endif
