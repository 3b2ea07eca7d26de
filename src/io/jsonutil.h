/* jsonutil.h: helpers over Jansson for strata's own file formats: the I/O layer's, and the public
 * JSON header of src/io/ for the files above it that truly read or write JSON (src/report/'s JSON
 * writers, profiler/kineto.c and profiler/prof.c); tests/layers.sh lets no other file include it
 * or jansson.h.
 *
 * Getters return 1 when the key is present and valid, 0 when absent (out untouched), or a
 * negative ST_E* code with err naming file and key path ("prefix.key"). Range checks reject zero,
 * negative and absurd sizes with the bounds in the message. */
#ifndef STRATA_JSONUTIL_H
#define STRATA_JSONUTIL_H

#include "src/io/io.h"
#include <jansson.h>

/* Parses a file; syntax errors carry line and column. new reference in *out. */
int st__json_load_file(const char *path, json_t **out, st_error *err);
/* A JSON syntax error in `path` as ST_EINVAL with line and column; `where` qualifies the text
 * (may be ""). */
int st__json_syntax_error(st_error *err, const char *path, const json_error_t *jerr, const char *where);
/* "prefix.key" into buf, or "key" when prefix is NULL or empty; returns buf. Key paths longer than
 * n - 1 are cut (st_error.key holds 127 characters). */
const char *st__json_key_path(char *buf, size_t n, const char *prefix, const char *key);
/* A description's name after its file, when the file gives none: the basename without ".json",
 * printable ASCII only (file names need not be UTF-8), cut to n - 1 bytes; `dflt` when empty. */
void st__json_name_from_path(char *out, size_t n, const char *path, const char *dflt);
/* After a check that named keys relative to an object (st_model_finalize, st_cluster_finalize):
 * puts the object's key path `prefix` in front of err's key (or makes it the key, when err named
 * none). Nothing when prefix is NULL or empty. */
void st__json_prefix_error(st_error *err, const char *prefix);
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
/* Writes a calibration profile (cost.h's st__ptable tables under a st__phead) as the JSON that
 * st_profile_load reads, atomically ("-" = stdout); checks them first with st__profile_check, so no
 * command writes a profile that --profile would refuse (src/io/profile_io.c). */
int st__profile_write(const st__phead *h, const st__ptable *t, int n, const char *path, st_error *err);

/* A strata model JSON object (DESIGN.md, "Model: strata JSON"; not a HuggingFace config) found at
 * key path `prefix` of `file`, as st_model_load reads a whole file: the same keys, checks and
 * defaults, errors naming "prefix.key". Without a "name" the model is called `fallback` (NULL:
 * after the file). *out is written only on success. */
int st__model_from_json(const json_t *obj, const char *file, const char *prefix, const char *fallback, st_model *out,
                        st_error *err);
/* A cluster JSON object at key path `prefix` of `file`, as st_cluster_load reads a whole file
 * (same keys, checks and errors, named "prefix.key"); without a "name" the cluster is called
 * `fallback` (NULL: after the file). *out is written only on success. */
int st__cluster_from_json(const json_t *obj, const char *file, const char *prefix, const char *fallback,
                          st_cluster *out, st_error *err);

/* Canonical JSON of descriptions (new references). */
json_t *st__model_to_json(const st_model *m);
json_t *st__cluster_to_json(const st_cluster *c);
json_t *st__plan_to_json(const st_plan *p);

#endif
