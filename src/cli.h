/* cli.h: what the subcommands share: option parsing, resolving --model/--cluster/--plan/--profile,
 * and the output writers (src/output.c, the only CLI file that includes Jansson). */
#ifndef STRATA_CLI_H
#define STRATA_CLI_H

#include "strata.h"

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

/* Output (src/output.c). Each builds the whole document, then writes it in one go. With a
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
/* src/compare_io.c: `strata compare --json`, the rows in the order st_compare_run ranked them. */
int st_out_compare_json(FILE *f, const st_model *m, const st_search_opts *o, double tokens, const st_compare_row *rows,
                        int nrows, st_error *err);

/* Text helpers shared by the commands. */
void st_print_breakdown(FILE *f, const st_breakdown *b, const char *indent);

#endif
