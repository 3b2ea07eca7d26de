/* autoshard_cli.h: the CLI side of `strata plan --search ilp` (src/cmd_plan_ilp.c, and the JSON in
 * src/autoshard_io.c). */
#ifndef STRATA_AUTOSHARD_CLI_H
#define STRATA_AUTOSHARD_CLI_H

#include "autoshard.h"
#include "cli.h"
#include "program.h"

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

/* `strata estimate` and `strata sim` of an operator-level plan (src/cmd_ilp_plan.c). */
typedef struct st_ilp_cmd {
    const char *model_arg, *graph_arg, *cluster_arg, *plan_arg, *gpus_arg, *profile_arg, *trace_arg;
    int json, every_rank, timing;
} st_ilp_cmd;
int st__estimate_ilp(const st_ilp_cmd *a, st_error *err);
/* Lowers an ILP plan (st_autoshard_evaluate's result) to one representative program per stage
 * (src/lower_as.c). */
int st_lower_autoshard(const st_autoshard_result *r, const st_cluster *c, const st_profile *prof, st_dtype dt,
                       st_lowered *out, st_error *err);
int st__sim_ilp(const st_ilp_cmd *a, st_error *err);
/* `strata plan --search ilp ...`: argv as st_cmd_plan got it. */
int st__cmd_plan_ilp(int argc, char **argv, st_error *err);

#endif
