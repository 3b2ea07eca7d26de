/* autoshard_cli.h: the CLI side of `strata plan --search ilp` (src/cmd_plan_ilp.c, and the JSON in
 * src/autoshard_io.c). */
#ifndef STRATA_AUTOSHARD_CLI_H
#define STRATA_AUTOSHARD_CLI_H

#include "autoshard.h"
#include "cli.h"

int st_out_autoshard_json(FILE *f, const char *model, const st_cluster *c, int64_t gpus, int64_t gbs, int64_t seq,
                          const st_autoshard_result *r, st_error *err);
/* The ILP plan file (atomic write). */
int st_autoshard_save(const st_autoshard_result *r, const char *model, const char *model_hash, const st_cluster *c,
                      int64_t gbs, int64_t seq, st_dtype dt, const char *path, st_error *err);
/* `strata plan --search ilp ...`: argv as st_cmd_plan got it. */
int st__cmd_plan_ilp(int argc, char **argv, st_error *err);

#endif
