/* cli.h: what the subcommands share: option parsing, resolving --model/--cluster/--plan/--profile,
 * and the output writers (src/report/output.c, the only CLI file that includes Jansson). */
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

/* Parses argv[1..] (argv[0] is the subcommand). Positional arguments are refused unless
 * `positional` is non-NULL, which then receives the first one. Returns 0 or ST_EUSAGE. */
int st_cli_parse(int argc, char **argv, const st_cli_opt *opts, const char **positional, st_error *err);
/* Strict integer/number parsing of an option value, naming the option on error. */
int st_cli_int(const char *opt, const char *s, int64_t lo, int64_t hi, int64_t *out, st_error *err);
/* A custom graph JSON (--graph), read (st_graph_load) and checked (st_graph_check); on failure g is
 * left empty. */
int st_cli_graph_load(const char *path, st_graph *g, st_error *err);
/* Prints the error line "strata CMD: ..." on stderr. */
void st_cli_report(const char *cmd, const st_error *err);

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


/* `strata estimate` and `strata sim` of an operator-level plan (src/cli/cmd_ilp_plan.c). */
typedef struct st_ilp_cmd {
    const char *model_arg, *graph_arg, *cluster_arg, *plan_arg, *gpus_arg, *profile_arg, *trace_arg;
    int json, every_rank, timing;
} st_ilp_cmd;
int st__estimate_ilp(const st_ilp_cmd *a, st_error *err);
int st__sim_ilp(const st_ilp_cmd *a, st_error *err);
/* `strata plan --search ilp ...`: argv as st_cmd_plan got it. */
int st__cmd_plan_ilp(int argc, char **argv, st_error *err);

#endif
