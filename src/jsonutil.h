/* jsonutil.h: private helpers over Jansson for strata's own file formats. Only the I/O files
 * (the src/..._io.c files, src/output.c, cost/profile.c, profiler/kineto.c) include this header, and so Jansson.
 *
 * Getters return 1 when the key is present and valid, 0 when absent (out untouched), or a
 * negative ST_E* code with err naming file and key path ("prefix.key"). Range checks reject zero,
 * negative and absurd sizes with the bounds in the message. */
#ifndef STRATA_JSONUTIL_H
#define STRATA_JSONUTIL_H

#include "strata.h"
#include <jansson.h>

/* Parses a file; syntax errors carry line and column. new reference in *out. */
int st__json_load_file(const char *path, json_t **out, st_error *err);
/* A JSON syntax error in `path` as ST_EINVAL with line and column; `where` qualifies the text
 * (may be ""). */
int st__json_syntax_error(st_error *err, const char *path, const json_error_t *jerr, const char *where);
/* Rejects any key of obj not in `allowed` (NULL-terminated). */
int st__json_check_keys(const json_t *obj, const char *const *allowed, const char *file, const char *prefix,
                        st_error *err);
int st__json_get_int(const json_t *obj, const char *key, int64_t min, int64_t max, int64_t *out,
                     const char *file, const char *prefix, st_error *err);
int st__json_get_num(const json_t *obj, const char *key, double min, double max, double *out,
                     const char *file, const char *prefix, st_error *err);
int st__json_get_bool(const json_t *obj, const char *key, int *out, const char *file, const char *prefix,
                      st_error *err);
/* *out borrowed from obj. */
int st__json_get_str(const json_t *obj, const char *key, const char **out, const char *file,
                     const char *prefix, st_error *err);
/* Writes root to path through a temporary file in the same directory and rename(2); "-" = stdout.
 * Nothing is left behind on failure. */
int st__json_write_file(const json_t *root, const char *path, st_error *err);
/* 64-bit FNV-1a of a JSON value's canonical (sorted, compact) dump, as 16 hex digits. */
void st__json_hash(const json_t *v, char out[17]);
/* {name, hash} of a description (a model's or cluster's canonical JSON, stolen), as plan files
 * record what they were made for; NULL on allocation failure. */
json_t *st__json_identity(const char *name, json_t *desc);
/* A plan file's "format" and "version" (both optional): 0, or ST_EINVAL naming the key. */
int st__plan_check_format(const json_t *root, const char *path, st_error *err);
/* Reads such a {name, hash} (informational: never an error; missing parts come back empty). */
void st__json_origin(const json_t *v, char *name, size_t n, char hash[17]);

/* After a failed load of `arg` that names no existing file: rewrite err to say that it is neither a
 * preset (listed by `lister`) nor a file. Returns err->code. */
int st__preset_or_file_error(const char *arg, const char *key, const char *lister, st_error *err);

/* Prints root (indented, a newline after) in one write and releases it (steals the reference;
 * NULL means an allocation failed upstream). */
int st__json_print(FILE *f, json_t *root, st_error *err);
/* The breakdown_s object of every --json output (src/output.c); new reference. */
json_t *st__breakdown_json(const st_breakdown *b);
/* `strata sim --json`'s breakdown_s (the slowest-ending rank's streams; NULL with no rank) and its
 * "ranks" array (src/output.c); new references. */
struct st_sim_result;
json_t *st__sim_breakdown_json(const struct st_sim_result *r);
json_t *st__sim_ranks_json(const struct st_sim_result *r);

/* One table of a calibration profile as `strata calibrate` and `strata profile` write it
 * (cost/profile.c's format, written and described there). */
typedef struct st__ptable {
    int kind; /* 0 compute (FLOPs -> FLOP/s), 1 memory-bound (bytes -> bytes/s), 2 collective (bytes -> bus bytes/s),
               * 3 host<->device copy (bytes -> bytes/s) */
    st_opclass cls;
    st_dtype dtype;
    st_coll coll;
    int intra, ranks;
    st_copy_dir dir; /* copies */
    int n, samples, exact; /* points; measurements behind them; points at a plan's own shapes */
    const double *x, *y;   /* SI */
} st__ptable;
typedef struct st__phead {
    const char *gpu, *source, *date, *driver, *cuda; /* driver, cuda: NULL or "" = unknown */
} st__phead;
/* The bounds st_profile_load applies (no rate beyond the hardware, no point implying a kernel of
 * over an hour, no table twice), on tables about to be written: 0, or ST_EINVAL saying which
 * measured table is not physical. st__profile_write checks first, so no command writes a profile
 * that --profile would refuse. */
int st__profile_check(const st__phead *h, const st__ptable *t, int n, st_error *err);
/* Writes the profile atomically ("-" = stdout). */
int st__profile_write(const st__phead *h, const st__ptable *t, int n, const char *path, st_error *err);
/* One line per table under the headings compute / memory / collectives / copies; an empty heading says
 * `none` ("none measured"); `per` names what samples count ("call", "measurement"). */
void st__profile_describe(const st__ptable *t, int n, const char *per, const char *none, FILE *f);

/* A profile without tables that notes the collective lookups cost/ makes of it (each answered 0,
 * so the pricing is the default one): the (collective, scope, ranks, bytes) the estimator asks a
 * profile's collective tables for, exactly. New; st_profile_free. NULL when out of memory. */
typedef struct st__coll_lookup {
    st_coll coll;
    int intra, ranks;
    double bytes;
} st__coll_lookup;
st_profile *st__profile_recorder_new(void);
/* The distinct lookups so far, sorted by collective, scope (intra first), ranks, bytes; borrowed,
 * valid until the next lookup. *lost: some were not kept (out of memory). */
const st__coll_lookup *st__profile_recorded(const st_profile *p, int *n, int *lost);

/* Canonical JSON of descriptions (new references). */
json_t *st__model_to_json(const st_model *m);
json_t *st__cluster_to_json(const st_cluster *c);
json_t *st__plan_to_json(const st_plan *p);

#endif
