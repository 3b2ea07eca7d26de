/* cli.h: what the subcommands share: option parsing (the options several commands take, and each
 * command's own), resolving --model/--graph/--cluster/--gpus/--plan/--profile in one order, notes on
 * stderr, text output written in one piece, and the output writers (src/report/output.c, the only
 * CLI file that includes Jansson). */
#ifndef STRATA_CLI_H
#define STRATA_CLI_H

#include "src/io/io.h"
#include "src/report/report.h"

/* The global batch `plan` and `compare` search with unless --gbs says otherwise: GPT-3 175B's 3.2M
 * tokens of 2048 (Brown et al. 2020, Table 2.1). */
#define ST_CLI_DEFAULT_GBS 1536

typedef struct st_cli_opt {
    const char *name;   /* long name without "--" */
    const char **value; /* set for options that take a value; NULL for flags */
    int *flag;          /* set to 1 for flags */
} st_cli_opt;

/* The options that mean the same in every command that takes them; NULL / 0 when not given. */
typedef struct st_cli_args {
    const char *model, *graph, *cluster, *gpus, *plan, *profile; /* the inputs (st_cli_inputs) */
    const char *out, *gbs, *seq, *dtype, *gpu;
    int json, help;
    int heads_whole; /* strata run of an operator-level plan: the plan's (st_plan), set before it is finalized */
} st_cli_args;

/* Which of the shared options a command takes (a mask; --help is always taken). */
enum {
    ST_CLI_OPT_MODEL = 1 << 0,
    ST_CLI_OPT_GRAPH = 1 << 1,
    ST_CLI_OPT_CLUSTER = 1 << 2,
    ST_CLI_OPT_GPUS = 1 << 3,
    ST_CLI_OPT_PLAN = 1 << 4,
    ST_CLI_OPT_PROFILE = 1 << 5,
    ST_CLI_OPT_OUT = 1 << 6,
    ST_CLI_OPT_GBS = 1 << 7,
    ST_CLI_OPT_SEQ = 1 << 8,
    ST_CLI_OPT_DTYPE = 1 << 9,
    ST_CLI_OPT_GPU = 1 << 10,
    ST_CLI_OPT_JSON = 1 << 11
};

/* Parses argv[1..] (argv[0] is the subcommand): "--name value", "--name=value" and flags, of the
 * shared options in `take` (into *a, zeroed first) and the command's own (`own`, ended by a NULL
 * name; may be NULL). Positional arguments are refused unless `positional` is non-NULL, which then
 * receives the first one. With --help, prints help_text on stdout once the whole line parsed.
 * Returns 0 or ST_EUSAGE naming the option. */
int st_cli_parse(int argc, char **argv, unsigned take, const st_cli_opt *own, st_cli_args *a,
                 const char **positional, const char *help_text, st_error *err);
/* 0, or ST_EUSAGE when the output `out` of option --opt is the same file (device and inode, through
 * links) as one of the inputs: a's model, graph, cluster, plan and profile and the command's own
 * extra (--extra_opt; NULL: none). `--out model.json --model model.json` overwrote the model with
 * the plan. st_cli_parse checks --out against the shared inputs itself. */
int st_cli_out_check(const char *opt, const char *out, const st_cli_args *a, const char *extra_opt, const char *extra,
                     st_error *err);
/* Strict integer/number parsing of an option value, naming the option on error. */
int st_cli_int(const char *opt, const char *s, int64_t lo, int64_t hi, int64_t *out, st_error *err);
/* ST_EUSAGE "--a, --b and --c are required (see --help)" unless every option is given. Arguments:
 * pairs (const char *name as the message writes it, const char *value, NULL when missing), ended
 * by a NULL name. */
int st_cli_require(st_error *err, ...);
/* --gbs (1..2^30 sequences) and --seq (1..ST_MAX_SEQ tokens) into *gbs and *seq, each when given. */
int st_cli_batch(const st_cli_args *a, int64_t *gbs, int64_t *seq, st_error *err);
/* --dtype into *dt when given. */
int st_cli_dtype(const st_cli_args *a, st_dtype *dt, st_error *err);
/* --gpu: a name a profile can be filed under (a preset, or a cluster JSON's gpu.name). */
int st_cli_gpu_name(const st_cli_args *a, st_error *err);
/* After a profile was written for --gpu: the note that a name that is no preset cannot be scaled. */
void st_cli_gpu_note(const char *cmd, const st_cli_args *a);
/* What the text outputs say a plan runs on: "GPUS x GPU", or on node groups "GPUS GPUs: " and each
 * group's nodes, GPUs and name (st_cluster_describe). */
void st_cli_cluster_what(const st_cluster *c, int64_t gpus, char *buf, size_t n);
/* A custom graph JSON (--graph), read (st_graph_load) and checked (st_graph_check); on failure g is
 * left empty. */
int st_cli_graph_load(const char *path, st_graph *g, st_error *err);
/* Prints the error line "strata CMD: ..." on stderr. */
void st_cli_report(const char *cmd, const st_error *err);
/* Prints "strata CMD: note: ..." on stderr. */
void st_cli_note(const char *cmd, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* What st_cli_inputs_check and st_cli_inputs_resolve are asked for (a mask). */
enum {
    ST_CLI_MODEL = 1 << 0,    /* --model: required, resolved (a preset, model JSON or HF config) */
    ST_CLI_GRAPH = 1 << 1,    /* with ST_CLI_MODEL: --graph (a custom operator graph) instead of it */
    ST_CLI_CLUSTER = 1 << 2,  /* --cluster: required, resolved and sized to --gpus */
    ST_CLI_PLAN = 1 << 3,     /* --plan: required, resolved and finalized for the model on the cluster */
    ST_CLI_ILP_PLAN = 1 << 4, /* --plan: required, an operator-level plan the command loads itself */
    ST_CLI_PROFILE = 1 << 5,  /* --profile when given: opened, scaled to the cluster's GPU (if any) */
    ST_CLI_ORIGIN = 1 << 6    /* with ST_CLI_PLAN: a note when the plan file was made for other inputs */
};

/* The inputs of a command, resolved; zeroed ({0}) before st_cli_inputs_resolve. */
typedef struct st_cli_inputs {
    int64_t gpus;            /* --gpus (st_cli_inputs_check), 0 when not given */
    st_model model;          /* when have_model */
    st_graph graph;          /* when have_graph: checked (st_cli_graph_load) */
    int have_model, have_graph;
    st_cluster cluster;      /* with ST_CLI_CLUSTER */
    st_plan *plan;           /* with ST_CLI_PLAN: owned */
    st_profile *profile;     /* when --profile was given: owned */
    char origin_note[256];   /* with ST_CLI_ORIGIN: st_plan_origin_note's, or empty */
    char profile_note[512];  /* st_profile_retarget's when it scaled the profile, or empty */
} st_cli_inputs;

/* What needs no file: the options `want` requires are given (in the order model, cluster, plan;
 * "give --model or --graph, not both"; --graph refused where `want` has no ST_CLI_GRAPH), and
 * --gpus is a count (into in->gpus). Commands check their own numbers after this. */
int st_cli_inputs_check(const st_cli_args *a, unsigned want, st_cli_inputs *in, st_error *err);
/* The files, in the order model, graph, cluster, profile (and its scaling), plan; the first bad
 * one is the error. Expects the options checked (st_cli_inputs_check or the command's own). */
int st_cli_inputs_resolve(const st_cli_args *a, unsigned want, st_cli_inputs *in, st_error *err);
/* The notes the inputs gave (origin, then profile), under `cmd`'s name. Called once the input is
 * known to be good, so a failing command prints one line. */
void st_cli_inputs_notes(const st_cli_inputs *in, const char *cmd);
void st_cli_inputs_destroy(st_cli_inputs *in);

/* Text output built in memory and written to stdout in one piece once complete, so that a
 * command failing half-way prints nothing. Zeroed ({0}) before st_cli_text_open. */
typedef struct st_cli_text {
    FILE *f;   /* write here until st_cli_text_close */
    char *buf; /* after st_cli_text_close: len bytes and a NUL */
    size_t len;
} st_cli_text;
int st_cli_text_open(st_cli_text *t, st_error *err);
void st_cli_text_close(st_cli_text *t);
/* st_cli_text_close, then the text to stdout. */
void st_cli_text_print(st_cli_text *t);
void st_cli_text_destroy(st_cli_text *t);

int st_cmd_estimate(int argc, char **argv, st_error *err);
int st_cmd_plan(int argc, char **argv, st_error *err);
int st_cmd_models(int argc, char **argv, st_error *err);
int st_cmd_clusters(int argc, char **argv, st_error *err);
int st_cmd_profiles(int argc, char **argv, st_error *err);
int st_cmd_compare(int argc, char **argv, st_error *err);
int st_cmd_plot(int argc, char **argv, st_error *err);
int st_cmd_sim(int argc, char **argv, st_error *err);
int st_cmd_calibrate(int argc, char **argv, st_error *err);
int st_cmd_profile(int argc, char **argv, st_error *err);
int st_cmd_validate(int argc, char **argv, st_error *err);
int st_cmd_run(int argc, char **argv, st_error *err);

/* `strata estimate` and `strata sim` of an operator-level plan (src/cli/cmd_ilp_plan.c). */
int st__estimate_ilp(const st_cli_args *a, st_error *err);
int st__sim_ilp(const st_cli_args *a, const char *trace_path, int every_rank, int timing, st_error *err);
/* `strata run` of an operator-level plan: the hybrid plan the executor runs for it, as an inline
 * spec into spec[n] (src/cli/cmd_ilp_plan.c): the ILP's stage cuts, micro-batch and recompute, and
 * the tp, dp and sp whose shardings each stage's operators take (st_autoshard_hybrid), and in
 * *attn_rows which attention operators split the rows (st_exec_opts' attn_rows), in *moe_rows and *router_h how
 * the MoE blocks split (st_exec_opts'), in *replicas the copies of its ranks (st_exec_opts' replicas: mesh axes
 * that split nothing), in *head_dp whether the output layer is vocabulary-parallel over the batch axes on the tp
 * axes' rows (st_exec_opts' head_dp); where the attention or the experts split the rows, or the router the
 * hidden dimension, the tp collectives the executor runs for them, as the ILP prices them, into lo (may be
 * NULL; st_lower_opts' ntp_stages). Where the stages differ in those degrees or in recompute, each stage's own
 * instead (st_autoshard_hybrid_stages): *nstages the stages (0: one plan for all, spec), stages[d] stage d's
 * (room for ST_MAX_STAGES). Refuses the others (ST_EINVAL naming the stage, the operator, its split and the mesh
 * axis). */
typedef struct st__ilp_stage {
    char spec[640];  /* its hybrid plan: tp, pp (the pipeline's), dp, ep, sp, zero, mbs (the ILP's over its dp), gbs,
                        seq, recompute, stage_layers */
    st_as_hybrid h;  /* its degrees and splits (h.rep: its copies) */
    int own_tp;      /* its attention or experts split the rows: tp_*_s are the ILP's price of the tp collectives
                        that run (st_lower_opts' tp_fwd_s ...), one micro-batch's */
    double tp_fwd_s, tp_bwd_s, tp_recompute_s;
    char splits[96]; /* its splits beyond Megatron's, for the run's plan line (",on_rows=projection", ...) */
} st__ilp_stage;
int st__run_ilp_spec(const st_cli_args *a, char *spec, size_t n, int *attn_rows, int *moe_rows, int *router_h,
                     int *replicas, int *head_dp, st_lower_opts *lo, st__ilp_stage *stages, int *nstages,
                     st_error *err);
/* `strata run` of an operator-level plan that search/as_hybrid.c does not map onto the executor's templates: lowers
 * it (st_lower_autoshard into out->low, the caller's to destroy) and runs it per operator (st_exec_run_ilp) into
 * res, *ran 1 from there on; out gets the model, the batch, the sequence and a line for the report. Returns 1
 * (nothing done) when st__run_ilp_spec's templates run the plan, else st_exec_run_ilp's code (or the loading's). */
typedef struct st_cli_ilp_run {
    st_model model;
    st_lowered low;
    int64_t gbs, seq;
    char spec[512];
} st_cli_ilp_run;
struct st_exec_opts;
struct st_exec_result;
int st__run_ilp_ops(const st_cli_args *a, const struct st_exec_opts *o, st_cli_ilp_run *out, struct st_exec_result *res,
                    int *ran, st_error *err);
/* `strata plan --search ilp ...`: argv as st_cmd_plan got it. */
int st__cmd_plan_ilp(int argc, char **argv, st_error *err);

#endif
