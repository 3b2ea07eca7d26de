/* validation_io.c: validation bundles: published, measured training runs in strata's own formats,
 * read for `strata validate` (src/cli/cmd_validate.c). A bundle is one JSON object:
 *
 *   { "about": TEXT,
 *     "models":   { KEY: a strata model JSON object, ... },
 *     "clusters": { KEY: a cluster JSON object, ... },
 *     "points":   [ { "id", "set": "strict" | "loose", "model": KEY, "cluster": KEY, "gpus",
 *                     "plan": an inline plan spec, "measured_s",
 *                     "source", "conversion", "measured_metric", "rank_group", "note" }, ... ] }
 *
 * "strict" points have every setting published; "loose" ones assumed some (the note says which).
 * measured_s is seconds per iteration, converted from the source's metric as "conversion" says.
 * The shared data's README (../shared/validation/README.md) describes each source.
 *
 * Invariants:
 * - Models and clusters are read by the loaders of single files (st__model_from_json,
 *   st__cluster_from_json): the same keys, checks and defaults, errors naming "models.KEY.layers".
 * - Every object rejects unknown keys; a point's model and cluster must name a key of the bundle;
 *   ids are unique. Any error names the file and the key path ("points[3].cluster") and nothing
 *   is returned.
 * - The plan spec is kept as written and parsed when the point runs: a plan strata refuses is a
 *   finding about that point ("rejected: ..."), not bad input.
 * - Order is the file's (Jansson keeps objects in insertion order), so reports are deterministic.
 */
#include "jsonutil.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

/* bounds that refuse absurd files before anything is sized from them */
#define MAX_ENTRIES 100000
#define MAX_ID 128 /* characters of an id, a key or a rank group (they go into tables) */

static const char *const top_keys[] = {"about", "models", "clusters", "points", NULL};
static const char *const point_keys[] = {"id",         "set",        "model",           "cluster",
                                         "gpus",       "plan",       "measured_s",      "source",
                                         "conversion", "rank_group", "measured_metric", "note",
                                         NULL};

const char *st_vset_name(st_vset s) { return s == ST_VSET_STRICT ? "strict" : "loose"; }

int st_vset_parse(const char *s, st_vset *out) {
    if (!strcmp(s, "strict"))
        *out = ST_VSET_STRICT;
    else if (!strcmp(s, "loose"))
        *out = ST_VSET_LOOSE;
    else
        return ST_EINVAL;
    return 0;
}

static int oom(st_error *err) { return st_error_set(err, ST_ENOMEM, NULL, NULL, "out of memory"); }

/* A string at prefix.key: copied into *out (NULL when absent and not required). `table`: it is
 * a table's cell or a word of a SUMMARY/TAU line, so 1..MAX_ID characters, no white space or
 * control characters. */
static int get_text(const json_t *o, const char *key, int req, int table, char **out, const char *file,
                    const char *prefix, st_error *err) {
    const char *s = NULL;
    char path[128];
    int rc = st__json_get_str(o, key, &s, file, prefix, err);

    if (rc < 0) return rc;
    st__json_key_path(path, sizeof path, prefix, key);
    if (rc == 0) return req ? st_error_set(err, ST_EINVAL, file, path, "missing required key") : 0;
    if (table) {
        size_t len = strlen(s);
        if (len == 0 || len > MAX_ID)
            return st_error_set(err, ST_EINVAL, file, path, "must be 1 to %d characters", MAX_ID);
        for (size_t i = 0; i < len; i++)
            if ((unsigned char)s[i] <= 0x20 || s[i] == 0x7f)
                return st_error_set(err, ST_EINVAL, file, path, "white space or a control character at position %zu",
                                    i + 1);
    }
    if (!(*out = strdup(s))) return oom(err);
    return 1;
}

/* The index of `key` among keys[0..n), or -1. */
static int find_key(char *const *keys, int n, const char *key) {
    for (int i = 0; i < n; i++)
        if (!strcmp(keys[i], key)) return i;
    return -1;
}

/* The models or clusters object: every entry read with its loader (kind 0 models, 1 clusters). */
static int load_descriptions(const json_t *root, int kind, const char *file, st_validation *b, st_error *err) {
    const char *what = kind ? "clusters" : "models";
    json_t *o = json_object_get(root, what), *v;
    const char *key;
    char prefix[128];
    int rc = 0, n = 0;
    size_t cnt;

    if (!o) return st_error_set(err, ST_EINVAL, file, what, "missing required key");
    if (!json_is_object(o)) return st_error_set(err, ST_EINVAL, file, what, "expected an object of KEY: description");
    cnt = json_object_size(o);
    if (cnt > MAX_ENTRIES) return st_error_set(err, ST_EINVAL, file, what, "more than %d entries", MAX_ENTRIES);
    char **keys = calloc(cnt ? cnt : 1, sizeof *keys);
    if (!keys) return oom(err);
    if (kind) {
        b->cluster_keys = keys;
        if (!(b->clusters = calloc(cnt ? cnt : 1, sizeof *b->clusters))) return oom(err);
    } else {
        b->model_keys = keys;
        if (!(b->models = calloc(cnt ? cnt : 1, sizeof *b->models))) return oom(err);
    }
    json_object_foreach(o, key, v) {
        st__json_key_path(prefix, sizeof prefix, what, key);
        if (!key[0] || strlen(key) > MAX_ID)
            return st_error_set(err, ST_EINVAL, file, prefix, "a key must be 1 to %d characters", MAX_ID);
        rc = kind ? st__cluster_from_json(v, file, prefix, key, &b->clusters[n], err)
                  : st__model_from_json(v, file, prefix, key, &b->models[n], err);
        if (rc < 0) return rc;
        if (!(keys[n] = strdup(key))) return oom(err);
        n++;
        if (kind)
            b->nclusters = n;
        else
            b->nmodels = n;
    }
    return 0;
}

/* A description key of a point: the index into keys, or an error listing up to a few known keys. */
static int point_ref(const json_t *p, const char *key, char *const *keys, int n, int *out, const char *file,
                     const char *prefix, st_error *err) {
    const char *s = NULL;
    char path[128], known[256] = "";
    size_t off = 0;
    int rc = st__json_get_str(p, key, &s, file, prefix, err);

    if (rc < 0) return rc;
    st__json_key_path(path, sizeof path, prefix, key);
    if (rc == 0) return st_error_set(err, ST_EINVAL, file, path, "missing required key");
    if ((*out = find_key(keys, n, s)) >= 0) return 0;
    for (int i = 0; i < n; i++) { /* as many as fit the message */
        if (off + strlen(keys[i]) + 7 > sizeof known) {
            snprintf(known + off, sizeof known - off, ", ...");
            break;
        }
        off += (size_t)snprintf(known + off, sizeof known - off, "%s%s", i ? ", " : "", keys[i]);
    }
    return st_error_set(err, ST_EINVAL, file, path, "unknown %s '%s' (the file's %ss: %s)", key, s, key,
                        n ? known : "none");
}

static int load_point(const json_t *p, int idx, const char *file, st_validation *b, st_error *err) {
    st_validation_point *pt = &b->points[idx];
    char prefix[64], path[128];
    char *set = NULL;
    int rc;

    snprintf(prefix, sizeof prefix, "points[%d]", idx);
    pt->rank_group = NULL;
    if ((rc = st__json_check_keys(p, point_keys, file, prefix, err)) < 0) goto out;
    if ((rc = get_text(p, "id", 1, 1, &pt->id, file, prefix, err)) < 0) goto out;
    for (int j = 0; j < idx; j++)
        if (!strcmp(b->points[j].id, pt->id)) {
            rc = st_error_set(err, ST_EINVAL, file, st__json_key_path(path, sizeof path, prefix, "id"),
                              "'%s' is also the id of points[%d]", pt->id, j);
            goto out;
        }
    if ((rc = get_text(p, "set", 1, 1, &set, file, prefix, err)) < 0) goto out;
    if (st_vset_parse(set, &pt->set)) {
        rc = st_error_set(err, ST_EINVAL, file, st__json_key_path(path, sizeof path, prefix, "set"),
                          "unknown value '%s' (expected strict or loose)", set);
        goto out;
    }
    if ((rc = point_ref(p, "model", b->model_keys, b->nmodels, &pt->model, file, prefix, err)) < 0) goto out;
    if ((rc = point_ref(p, "cluster", b->cluster_keys, b->nclusters, &pt->cluster, file, prefix, err)) < 0) goto out;
    if ((rc = st__json_get_int(p, "gpus", 1, ST_MAX_GPUS, &pt->gpus, file, prefix, err)) < 0) goto out;
    if (rc == 0) {
        rc = st_error_set(err, ST_EINVAL, file, st__json_key_path(path, sizeof path, prefix, "gpus"),
                          "missing required key");
        goto out;
    }
    if ((rc = get_text(p, "plan", 1, 0, &pt->plan, file, prefix, err)) < 0) goto out;
    /* a day of seconds per iteration is beyond any run that was measured */
    if ((rc = st__json_get_num(p, "measured_s", 1e-4, 86400, &pt->measured_s, file, prefix, err)) < 0) goto out;
    st__json_key_path(path, sizeof path, prefix, "measured_s");
    if (rc == 0) {
        rc = st_error_set(err, ST_EINVAL, file, path, "missing required key");
        goto out;
    }
    if (pt->measured_s <= 0) {
        rc = st_error_set(err, ST_EINVAL, file, path, "must be greater than 0 seconds");
        goto out;
    }
    if ((rc = get_text(p, "rank_group", 0, 1, &pt->rank_group, file, prefix, err)) < 0 ||
        (rc = get_text(p, "source", 0, 0, &pt->source, file, prefix, err)) < 0 ||
        (rc = get_text(p, "conversion", 0, 0, &pt->conversion, file, prefix, err)) < 0 ||
        (rc = get_text(p, "measured_metric", 0, 0, &pt->measured_metric, file, prefix, err)) < 0 ||
        (rc = get_text(p, "note", 0, 0, &pt->note, file, prefix, err)) < 0)
        goto out;
    rc = 0;
out:
    free(set);
    return rc;
}

int st_validation_load(const char *path, st_validation **out, st_error *err) {
    json_t *root = NULL, *pts;
    st_validation *b = calloc(1, sizeof *b);
    int rc;

    *out = NULL;
    if (!b) return oom(err);
    if ((rc = st__json_load_file(path, &root, err)) < 0) goto out;
    if (!json_is_object(root)) {
        rc = st_error_set(err, ST_EINVAL, path, NULL,
                          "expected a JSON object (a validation bundle: about, models, clusters, points)");
        goto out;
    }
    if ((rc = st__json_check_keys(root, top_keys, path, NULL, err)) < 0) goto out;
    if (!(b->file = strdup(path))) {
        rc = oom(err);
        goto out;
    }
    if ((rc = get_text(root, "about", 0, 0, &b->about, path, NULL, err)) < 0) goto out;
    if ((rc = load_descriptions(root, 0, path, b, err)) < 0 || (rc = load_descriptions(root, 1, path, b, err)) < 0)
        goto out;
    pts = json_object_get(root, "points");
    if (!pts) {
        rc = st_error_set(err, ST_EINVAL, path, "points", "missing required key");
        goto out;
    }
    if (!json_is_array(pts) || json_array_size(pts) == 0 || json_array_size(pts) > MAX_ENTRIES) {
        rc = st_error_set(err, ST_EINVAL, path, "points", "expected an array of 1 to %d points", MAX_ENTRIES);
        goto out;
    }
    if (!(b->points = calloc(json_array_size(pts), sizeof *b->points))) {
        rc = oom(err);
        goto out;
    }
    for (size_t i = 0; i < json_array_size(pts); i++) {
        b->npoints = (int)i + 1; /* freed with the others if it fails half-way */
        if ((rc = load_point(json_array_get(pts, i), (int)i, path, b, err)) < 0) goto out;
    }
    *out = b;
    b = NULL;
    rc = 0;
out:
    st_validation_free(b);
    json_decref(root);
    return rc;
}

/* The error at line `line` of `path`. */
static int at_line(st_error *err, int code, const char *path, int line, const char *key, const char *what) {
    st_error_set(err, code, path, key, "%s", what);
    if (err) err->line = line;
    return code;
}

/* plan with each key of keys set to keys' value: the plan's other keys in their order, then keys */
static char *merge_spec(const char *plan, const char *keys) {
    size_t n = strlen(plan) + strlen(keys) + 2;
    char *out = malloc(n), *buf = strdup(plan);
    if (!out || !buf) {
        free(out);
        free(buf);
        return NULL;
    }
    out[0] = '\0';
    for (char *save = NULL, *kv = strtok_r(buf, ",", &save); kv; kv = strtok_r(NULL, ",", &save)) {
        size_t klen = strcspn(kv, "=");
        int replaced = 0;
        /* does keys set this key? match "key=" at the start of keys or after a comma */
        for (const char *q = keys; *q; q += strcspn(q, ",") + (q[strcspn(q, ",")] ? 1 : 0))
            if (strncmp(q, kv, klen) == 0 && q[klen] == '=') replaced = 1;
        if (replaced) continue;
        if (out[0]) strcat(out, ",");
        strcat(out, kv);
    }
    if (out[0]) strcat(out, ",");
    strcat(out, keys);
    free(buf);
    return out;
}

int st_validation_amend(st_validation *b, const char *path, st_error *err) {
    FILE *f = fopen(path, "r");
    char *line = NULL;
    size_t cap = 0;
    int rc = 0, lineno = 0;
    if (!f) return st_error_set(err, ST_EIO, path, NULL, "cannot open: %s", strerror(errno));
    for (ssize_t len; (len = getline(&line, &cap, f)) >= 0;) {
        lineno++;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = '\0';
        if (!line[0] || line[0] == '#') continue;
        if ((size_t)len != strlen(line)) {
            rc = at_line(err, ST_EINVAL, path, lineno, NULL, "a NUL byte in the line");
            goto out;
        }
        char *id = line, *keys = strchr(id, '\t'), *src = keys ? strchr(keys + 1, '\t') : NULL;
        if (!keys || !src || strchr(src + 1, '\t')) {
            rc = at_line(err, ST_EINVAL, path, lineno, NULL, "expected ID<TAB>KEYS<TAB>SOURCE");
            goto out;
        }
        *keys++ = '\0', *src++ = '\0';
        if (!src[0]) {
            rc = at_line(err, ST_EINVAL, path, lineno, "source", "every setting needs the source that states it");
            goto out;
        }
        st_validation_point *pt = NULL;
        for (int i = 0; i < b->npoints && !pt; i++)
            if (strcmp(b->points[i].id, id) == 0) pt = &b->points[i];
        if (!pt) {
            char what[512];
            snprintf(what, sizeof what, "no point '%.200s' in %.200s", id, b->file);
            rc = at_line(err, ST_EINVAL, path, lineno, "id", what);
            goto out;
        }
        if (pt->settings) {
            rc = at_line(err, ST_EINVAL, path, lineno, "id", "the point is amended twice");
            goto out;
        }
        st_plan scratch;
        st_error why;
        st_error_clear(&why);
        st_plan_defaults(&scratch);
        if (st_plan_parse_spec(keys, &scratch, &why)) {
            char what[512];
            st_error_format(&why, what, sizeof what);
            rc = at_line(err, ST_EINVAL, path, lineno, "keys", what);
            goto out;
        }
        char *merged = merge_spec(pt->plan, keys);
        if (!merged || !(pt->settings = strdup(keys)) || !(pt->settings_source = strdup(src))) {
            free(merged);
            rc = oom(err);
            goto out;
        }
        free(pt->plan);
        pt->plan = merged;
        b->amended++;
    }
    if (ferror(f)) {
        rc = st_error_set(err, ST_EIO, path, NULL, "read error");
        goto out;
    }
    if (!(b->settings_file = strdup(path))) rc = oom(err);
out:
    free(line);
    fclose(f);
    return rc;
}

void st_validation_free(st_validation *b) {
    if (!b) return;
    free(b->settings_file);
    for (int i = 0; i < b->npoints; i++) {
        st_validation_point *p = &b->points[i];
        free(p->settings);
        free(p->settings_source);
        free(p->id);
        free(p->plan);
        free(p->rank_group);
        free(p->source);
        free(p->conversion);
        free(p->measured_metric);
        free(p->note);
    }
    free(b->points);
    if (b->model_keys)
        for (int i = 0; i < b->nmodels; i++) free(b->model_keys[i]);
    if (b->cluster_keys)
        for (int i = 0; i < b->nclusters; i++) free(b->cluster_keys[i]);
    free(b->model_keys);
    free(b->cluster_keys);
    free(b->models);
    free(b->clusters);
    free(b->about);
    free(b->file);
    free(b);
}
