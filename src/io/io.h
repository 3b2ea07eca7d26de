/* io.h: the I/O layer (src/io/): strata's file formats read and written as JSON (Jansson): models
 * (strata JSON and HuggingFace config.json), clusters, plans, calibration profiles, operator
 * graphs. Every loader names the file, the position or the key of what it refuses. Uses core and
 * cost; the only layer (with the trace reader in traces/ and the report writers) that includes
 * jansson.h. */
#ifndef STRATA_IO_H
#define STRATA_IO_H

#include "cost/cost.h"
#include "src/core/core.h"

/* Once at start-up, before any JSON is built (main() calls it): routes Jansson's allocations
 * through one function that notes a failure. Jansson's setters report a failed allocation only in a
 * return value, so a value built while memory ran out may silently lack a key; after such a failure
 * every JSON output (stdout or file) fails with ST_ENOMEM instead of printing that value. */
void st_io_init(void);
/* Loads a strata model JSON or a HuggingFace config.json (src/io/model_io.c). */
int st_model_load(const char *path, st_model *out, st_error *err);
/* A preset name, else a path. */
int st_model_resolve(const char *arg, st_model *out, st_error *err);
int st_cluster_load(const char *path, st_cluster *out, st_error *err);
/* A preset name or a path, with the suffixes :mig=SPEC (PROFILE[xN], none, or a layout of several
 * profiles PROFILE[xN]+PROFILE[xN]...), :sharp=1|0 and :domain_gpus=N (the job takes N
 * GPUs of each scale-up domain: st_cluster.domain_gpus_used), in that order; gpus > 0 resizes to gpus /
 * gpus_per_node nodes (st_cluster_size). */
int st_cluster_resolve(const char *arg, int64_t gpus, st_cluster *out, st_error *err);
/* Resizes c to gpus GPUs: gpus must be 1..ST_MAX_GPUS, at most one scale-up domain (the host node
 * where the cluster has none) or a multiple of the host node (the domains filled in order, the last
 * in part), a multiple of c->domain_gpus_used where set, and a single domain when the cluster has no
 * NICs; else ST_EINVAL with key "gpus" in `file` (may be NULL) and c untouched. Fewer GPUs than a
 * node are its first ones (c->gpus_used), as a launcher places a job's ranks. */
int st_cluster_size(st_cluster *c, int64_t gpus, const char *file, st_error *err);
/* Loads a plan JSON (src/io/plan_io.c). Unknown keys are errors. */
int st_plan_load(const char *path, st_plan *p, st_error *err);
/* A path to a plan JSON if such a file exists, else an inline spec. */
int st_plan_resolve(const char *arg, st_plan *p, st_error *err);
/* Writes the plan JSON atomically (temp file + rename). */
int st_plan_save(const st_plan *p, const st_model *m, const st_cluster *c, const char *path, st_error *err);
int st_profile_load(const char *path, st_profile **out, st_error *err); /* new; st_profile_free */
/* What --profile takes: a file, or the name of a shipped profile (NAME.json in $STRATA_PROFILE_PATH's
 * folders, the installed $(pkgdatadir)/profiles, or the source tree's traces/). */
int st_profile_open(const char *arg, st_profile **out, st_error *err);
/* The shipped profiles, sorted by name (free() the array); a file that does not load has `error` set. */
typedef struct st_profile_entry {
    char name[64], path[512], gpu[48], date[64], source[256], error[512];
} st_profile_entry;
int st_profile_shipped(st_profile_entry **out, size_t *n, st_error *err);
/* Validation bundles (src/io/validation_io.c): published, measured training runs with the model,
 * cluster and plan each used, for `strata validate`. The format is in validation_io.c's header. */
typedef enum { ST_VSET_STRICT, ST_VSET_LOOSE } st_vset; /* every setting published | some assumed */
const char *st_vset_name(st_vset s);
int st_vset_parse(const char *s, st_vset *out); /* 0 or ST_EINVAL */

typedef struct st_validation_point {
    char *id;
    st_vset set;
    int model, cluster;  /* indices into the bundle's models and clusters */
    int64_t gpus;        /* the cluster is sized to these; the plan must use them all */
    char *plan;          /* inline plan spec as written; parsed when the point runs */
    double measured_s;   /* seconds per iteration */
    char *rank_group;    /* points whose order is compared (Kendall tau-b); NULL: none */
    char *source, *conversion, *measured_metric, *note; /* provenance; NULL when absent */
    char *settings;        /* keys st_validation_amend added to plan (NULL: none) ... */
    char *settings_source; /* ... and the source that states them */
} st_validation_point;

typedef struct st_validation {
    char *file;
    char *about; /* NULL when absent */
    int nmodels, nclusters, npoints;
    char **model_keys, **cluster_keys; /* in file order */
    st_model *models;                  /* finalized, as st_model_load gives them */
    st_cluster *clusters;              /* finalized, at the size the file describes */
    st_validation_point *points;       /* in file order */
    char *settings_file;               /* st_validation_amend's file; NULL when none */
    int amended;                       /* points it amended */
} st_validation;

/* Reads a bundle; every error names the file and the key path ("points[3].model"). Returns new in
 * *out (free with st_validation_free), or a negative ST_E* code and *out NULL. */
int st_validation_load(const char *path, st_validation **out, st_error *err);
void st_validation_free(st_validation *b);
/* Settings a bundle's plans leave out but their sources state, from a tab-separated file: one line
 * per point, `ID<TAB>KEYS<TAB>SOURCE` (KEYS an inline plan spec fragment such as
 * "recompute=op,kernels=eager", SOURCE where the setting is stated; '#' lines and empty lines are
 * skipped). Each KEYS replaces or adds those keys in the point's plan. An unknown id, a point named
 * twice, a bad key or a missing source is an error naming the file and line; 0 or a negative code. */
int st_validation_amend(st_validation *b, const char *path, st_error *err);

/* Loads a custom graph JSON (src/io/graph_io.c; format in README): its tensors and operators as
 * written, not yet checked: st_graph_check (search/) derives what the file leaves out and refuses
 * cycles, dangling tensors and shapes that do not match. */
int st_graph_load(const char *path, st_graph *g, st_error *err);

#endif
