/* profile_io.c: calibration profiles as files (format: cost/profile.c's header and README
 * "Calibration profiles"): reading one (st_profile_load), finding one by name among the shipped
 * profiles (st_profile_open, st_profile_shipped) and writing one (st__profile_write). The tables
 * are parsed here, point by point, into cost.h's st__ptable; st__profile_new (cost/) then checks
 * that they are physical and builds the profile cost/ prices with. */
#include "jsonutil.h"

#include <dirent.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char *const copy_dirs[ST_COPY_COUNT] = {"h2d", "d2h"};

/* the tables read so far, with the points they own */
typedef struct tables {
    st__ptable *t;
    int n;
} tables;

static void tables_free(tables *ts) {
    for (int i = 0; i < ts->n; i++) {
        free((double *)ts->t[i].x);
        free((double *)ts->t[i].y);
    }
    free(ts->t);
}

static int load_points(const json_t *arr, double yscale, st__ptable *t, const char *file, const char *key, st_error *err) {
    if (!json_is_array(arr) || json_array_size(arr) == 0 || json_array_size(arr) > 100000)
        return st_error_set(err, ST_EINVAL, file, key, "expected a non-empty array of [x, y] pairs");
    size_t n = json_array_size(arr);
    double *x = malloc(n * sizeof(double)), *y = malloc(n * sizeof(double));
    t->x = x, t->y = y;
    if (!x || !y) return st_error_set(err, ST_ENOMEM, file, key, "out of memory");
    for (size_t i = 0; i < n; i++) {
        json_t *pt = json_array_get(arr, i);
        if (!json_is_array(pt) || json_array_size(pt) != 2 || !json_is_number(json_array_get(pt, 0)) ||
            !json_is_number(json_array_get(pt, 1)))
            return st_error_set(err, ST_EINVAL, file, key, "point %zu is not a pair of numbers", i);
        double px = json_number_value(json_array_get(pt, 0)), py = json_number_value(json_array_get(pt, 1));
        if (!(px > 0) || !(py > 0) || !isfinite(px) || !isfinite(py))
            return st_error_set(err, ST_EINVAL, file, key, "point %zu must have x > 0 and y > 0", i);
        if (i > 0 && !(px > x[i - 1]))
            return st_error_set(err, ST_EINVAL, file, key, "x values must increase (point %zu)", i);
        x[i] = px;
        y[i] = py * yscale;
    }
    t->n = (int)n;
    return 0;
}

static int load_tables(const json_t *arr, int kind, tables *p, const char *file, st_error *err) {
    static const char *const names[] = {"compute", "memory", "collectives", "copies"};
    static const char *const keys_compute[] = {"class", "dtype", "points", NULL};
    static const char *const keys_memory[] = {"class", "points", NULL};
    static const char *const keys_coll[] = {"op", "scope", "ranks", "points", NULL};
    static const char *const keys_copy[] = {"dir", "points", NULL};
    static const char *const *const allowed_of[] = {keys_compute, keys_memory, keys_coll, keys_copy};
    const char *top = names[kind];
    if (!arr) return 0;
    if (!json_is_array(arr)) return st_error_set(err, ST_EINVAL, file, top, "expected an array");
    size_t n = json_array_size(arr);
    st__ptable *grown = realloc(p->t, (size_t)(p->n + (int)n) * sizeof(st__ptable) + 1);
    if (!grown) return st_error_set(err, ST_ENOMEM, file, top, "out of memory");
    p->t = grown;
    for (size_t i = 0; i < n; i++) {
        char prefix[64];
        snprintf(prefix, sizeof prefix, "%s[%zu]", top, i);
        const json_t *o = json_array_get(arr, i);
        st__ptable *t = &p->t[p->n];
        memset(t, 0, sizeof *t);
        p->n++;
        t->kind = kind;
        if (!json_is_object(o)) return st_error_set(err, ST_EINVAL, file, prefix, "expected an object");
        int rc = st__json_check_keys(o, allowed_of[kind], file, prefix, err);
        if (rc < 0) return rc;
        const char *s = NULL;
        char key[96];
        if (kind < 2) {
            if ((rc = st__json_get_str(o, "class", &s, file, prefix, err)) < 0) return rc;
            snprintf(key, sizeof key, "%s.class", prefix);
            if (rc == 0 || st_opclass_parse(s, &t->cls))
                return st_error_set(err, ST_EINVAL, file, key, "missing or unknown operator class");
        }
        if (kind == 0) {
            if ((rc = st__json_get_str(o, "dtype", &s, file, prefix, err)) < 0) return rc;
            snprintf(key, sizeof key, "%s.dtype", prefix);
            if (rc == 0 || st_dtype_parse(s, &t->dtype))
                return st_error_set(err, ST_EINVAL, file, key, "missing or unknown dtype");
        }
        if (kind == 2) {
            if ((rc = st__json_get_str(o, "op", &s, file, prefix, err)) < 0) return rc;
            snprintf(key, sizeof key, "%s.op", prefix);
            if (rc == 0 || st_coll_parse(s, &t->coll) || t->coll == ST_COLL_NONE)
                return st_error_set(err, ST_EINVAL, file, key, "missing or unknown collective");
            if ((rc = st__json_get_str(o, "scope", &s, file, prefix, err)) < 0) return rc;
            snprintf(key, sizeof key, "%s.scope", prefix);
            if (rc == 0 || (strcmp(s, "intra") && strcmp(s, "inter")))
                return st_error_set(err, ST_EINVAL, file, key, "must be \"intra\" or \"inter\"");
            t->intra = strcmp(s, "intra") == 0;
            int64_t r = 0;
            if ((rc = st__json_get_int(o, "ranks", 2, ST_MAX_GPUS, &r, file, prefix, err)) < 0) return rc;
            snprintf(key, sizeof key, "%s.ranks", prefix);
            if (rc == 0) return st_error_set(err, ST_EINVAL, file, key, "missing");
            t->ranks = (int)r;
        }
        if (kind == 3) {
            if ((rc = st__json_get_str(o, "dir", &s, file, prefix, err)) < 0) return rc;
            snprintf(key, sizeof key, "%s.dir", prefix);
            int d = 0;
            while (rc == 1 && d < ST_COPY_COUNT && strcmp(s, copy_dirs[d])) d++;
            if (rc == 0 || d == ST_COPY_COUNT)
                return st_error_set(err, ST_EINVAL, file, key, "must be \"h2d\" or \"d2h\"");
            t->dir = (st_copy_dir)d;
        }
        snprintf(key, sizeof key, "%s.points", prefix);
        double scale = kind == 0 ? 1e12 : 1e9;
        if ((rc = load_points(json_object_get(o, "points"), scale, t, file, key, err)) < 0) return rc;
    }
    return 0;
}

int st_profile_load(const char *path, st_profile **out, st_error *err) {
    static const char *const keys[] = {"strata_profile", "gpu", "source", "date", "driver", "cuda",
                                       "compute", "memory", "collectives", "copies", "scaled_from", NULL};
    json_t *root = NULL;
    tables ts = {NULL, 0};
    int rc = st__json_load_file(path, &root, err);
    if (rc < 0) goto out;
    if (!json_is_object(root)) {
        rc = st_error_set(err, ST_EINVAL, path, NULL, "a calibration profile is a JSON object");
        goto out;
    }
    if (json_object_get(root, "traceEvents")) {
        rc = st_error_set(err, ST_EINVAL, path, NULL,
                          "a PyTorch profiler trace, not a calibration profile: make one with strata calibrate "
                          "--kineto TRACE --out PROFILE.json");
        goto out;
    }
    if ((rc = st__json_check_keys(root, keys, path, NULL, err)) < 0) goto out;
    int64_t version = 0;
    if ((rc = st__json_get_int(root, "strata_profile", 1, 1, &version, path, NULL, err)) < 0) goto out;
    if (rc == 0) {
        rc = st_error_set(err, ST_EINVAL, path, "strata_profile", "missing: not a strata calibration profile");
        goto out;
    }
    const char *gpu = NULL;
    if ((rc = st__json_get_str(root, "gpu", &gpu, path, NULL, err)) < 0) goto out;
    if (rc == 0) {
        rc = st_error_set(err, ST_EINVAL, path, "gpu", "missing");
        goto out;
    }
    size_t gpu_max = sizeof(((st_gpu *)0)->name); /* the profile's GPU is a GPU's name */
    if (strlen(gpu) >= gpu_max) {
        rc = st_error_set(err, ST_EINVAL, path, "gpu", "longer than %zu characters", gpu_max - 1);
        goto out;
    }
    /* the labels strata profiles shows: none when absent or not a string */
    st__phead h = {.gpu = gpu,
                   .date = json_string_value(json_object_get(root, "date")),
                   .source = json_string_value(json_object_get(root, "source"))};
    if ((rc = load_tables(json_object_get(root, "compute"), 0, &ts, path, err)) < 0) goto out;
    if ((rc = load_tables(json_object_get(root, "memory"), 1, &ts, path, err)) < 0) goto out;
    if ((rc = load_tables(json_object_get(root, "collectives"), 2, &ts, path, err)) < 0) goto out;
    if ((rc = load_tables(json_object_get(root, "copies"), 3, &ts, path, err)) < 0) goto out;
    rc = st__profile_new(&h, path, ts.t, ts.n, out, err);
out:
    tables_free(&ts);
    json_decref(root);
    return rc;
}

/* Shipped profiles (issue 6: profiles measured on real GPUs "are committed under traces/ and can
 * be chosen by name"). A --profile argument with no '/' that is no existing file is a name: NAME.json
 * in the first of these folders that has one: each folder of $STRATA_PROFILE_PATH (':'-separated,
 * as PATH), the installed $(pkgdatadir)/profiles (`make install` copies the traces/ profiles there), and
 * the source tree's traces/ (a strata run from its build folder). */
#ifndef ST_PROFILEDIR
#define ST_PROFILEDIR ""
#endif
#ifndef ST_SRC_PROFILEDIR
#define ST_SRC_PROFILEDIR ""
#endif
enum { MAX_DIRS = 32 };

/* The search folders, in order; `buf` holds the copies of $STRATA_PROFILE_PATH's parts. */
static int profile_dirs(const char **dirs, char *buf, size_t bufn) {
    int n = 0;
    const char *env = getenv("STRATA_PROFILE_PATH");
    if (env && strlen(env) < bufn) {
        strcpy(buf, env);
        for (char *s = buf, *colon; s && n < MAX_DIRS - 2; s = colon ? colon + 1 : NULL) {
            if ((colon = strchr(s, ':'))) *colon = 0;
            if (*s) dirs[n++] = s;
        }
    }
    if (*ST_PROFILEDIR) dirs[n++] = ST_PROFILEDIR;
    if (*ST_SRC_PROFILEDIR && strcmp(ST_SRC_PROFILEDIR, ST_PROFILEDIR)) dirs[n++] = ST_SRC_PROFILEDIR;
    return n;
}

/* A name is letters, digits, '.', '_' and '-', not starting with '.' (no way out of the folder). */
static int profile_name_ok(const char *s) {
    if (!*s || *s == '.' || strlen(s) > 200) return 0;
    for (; *s; s++)
        if (!(('a' <= *s && *s <= 'z') || ('A' <= *s && *s <= 'Z') || ('0' <= *s && *s <= '9') || *s == '.' ||
              *s == '_' || *s == '-'))
            return 0;
    return 1;
}

int st_profile_open(const char *arg, st_profile **out, st_error *err) {
    struct stat st;
    if (strchr(arg, '/') || stat(arg, &st) == 0 || !profile_name_ok(arg)) return st_profile_load(arg, out, err);
    char buf[4096], path[4400];
    const char *dirs[MAX_DIRS];
    int nd = profile_dirs(dirs, buf, sizeof buf);
    size_t len = strlen(arg);
    int has_ext = len > 5 && !strcmp(arg + len - 5, ".json");
    for (int i = 0; i < nd; i++) {
        snprintf(path, sizeof path, "%s/%s%s", dirs[i], arg, has_ext ? "" : ".json");
        if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) return st_profile_load(path, out, err);
    }
    return st_error_set(err, ST_EINVAL, NULL, "profile",
                        "'%s' is neither an existing file nor a shipped profile (see strata profiles)", arg);
}

int st_profile_shipped(st_profile_entry **out, size_t *nout, st_error *err) {
    char buf[4096];
    const char *dirs[MAX_DIRS];
    int nd = profile_dirs(dirs, buf, sizeof buf);
    st_profile_entry *e = NULL;
    size_t n = 0, cap = 0;
    for (int i = 0; i < nd; i++) {
        DIR *d = opendir(dirs[i]);
        if (!d) continue;
        for (struct dirent *de; (de = readdir(d));) {
            size_t len = strlen(de->d_name);
            if (len <= 5 || strcmp(de->d_name + len - 5, ".json") || !profile_name_ok(de->d_name) ||
                len - 5 >= sizeof e->name)
                continue;
            int dup = 0;
            for (size_t k = 0; k < n; k++) dup |= strlen(e[k].name) == len - 5 && !strncmp(e[k].name, de->d_name, len - 5);
            if (dup) continue; /* an earlier folder's profile of that name wins, as st_profile_open finds it */
            if (n == cap) {
                st_profile_entry *g = realloc(e, (cap = cap ? 2 * cap : 8) * sizeof *e);
                if (!g) {
                    closedir(d);
                    free(e);
                    return st_error_set(err, ST_ENOMEM, NULL, NULL, "out of memory");
                }
                e = g;
            }
            st_profile_entry *x = &e[n++];
            memset(x, 0, sizeof *x);
            snprintf(x->name, sizeof x->name, "%.*s", (int)(len - 5), de->d_name);
            snprintf(x->path, sizeof x->path, "%s/%s", dirs[i], de->d_name);
            st_profile *p = NULL;
            st_error e2;
            st_error_clear(&e2);
            if (st_profile_load(x->path, &p, &e2)) {
                snprintf(x->error, sizeof x->error, "%s", e2.text);
                continue;
            }
            snprintf(x->gpu, sizeof x->gpu, "%s", st_profile_gpu(p));
            snprintf(x->date, sizeof x->date, "%s", st_profile_date(p));
            snprintf(x->source, sizeof x->source, "%s", st_profile_source(p));
            st_profile_free(p);
        }
        closedir(d);
    }
    for (size_t i = 1; i < n; i++) /* by name: readdir's order is the file system's */
        for (size_t j = i; j > 0 && strcmp(e[j - 1].name, e[j].name) > 0; j--) {
            st_profile_entry t = e[j];
            e[j] = e[j - 1];
            e[j - 1] = t;
        }
    *out = e;
    *nout = n;
    return 0;
}

/* ------------------------------------------------------------ writing (calibrate, profile) */

static const double unit_of[4] = {1e12, 1e9, 1e9, 1e9}; /* TFLOP/s, GB/s, bus GB/s, GB/s in the file */
static const char *const sections[4] = {"compute", "memory", "collectives", "copies"};

static json_t *number(double v) { return v == floor(v) && fabs(v) < 9e15 ? json_integer((json_int_t)v) : json_real(v); }

int st__profile_write(const st__phead *h, const st__ptable *t, int n, const char *path, st_error *err) {
    int checked = st__profile_check(h, t, n, err);
    if (checked < 0) return checked;
    json_t *root = json_object(), *sec[4] = {json_array(), json_array(), json_array(), json_array()};
    int rc = 0, bad = !root || !sec[0] || !sec[1] || !sec[2] || !sec[3];
    for (int i = 0; !bad && i < n; i++) {
        json_t *o = json_object(), *pts = json_array();
        bad |= !o || !pts;
        if (bad) {
            json_decref(o);
            json_decref(pts);
            break;
        }
        if (t[i].kind == 2) {
            bad |= json_object_set_new(o, "op", json_string(st_coll_name(t[i].coll)));
            bad |= json_object_set_new(o, "scope", json_string(t[i].intra ? "intra" : "inter"));
            bad |= json_object_set_new(o, "ranks", json_integer(t[i].ranks));
        } else if (t[i].kind == 3) {
            bad |= json_object_set_new(o, "dir", json_string(st_copy_dir_name(t[i].dir)));
        } else {
            bad |= json_object_set_new(o, "class", json_string(st_opclass_name(t[i].cls)));
            if (t[i].kind == 0) bad |= json_object_set_new(o, "dtype", json_string(st_dtype_name(t[i].dtype)));
        }
        for (int j = 0; j < t[i].n; j++)
            bad |= json_array_append_new(pts, json_pack("[o, f]", number(t[i].x[j]), t[i].y[j] / unit_of[t[i].kind]));
        bad |= json_object_set_new(o, "points", pts);
        bad |= json_array_append_new(sec[t[i].kind], o);
    }
    if (!bad) {
        bad |= json_object_set_new(root, "strata_profile", json_integer(1));
        bad |= json_object_set_new(root, "gpu", json_string(h->gpu));
        bad |= json_object_set_new(root, "source", json_string(h->source));
        bad |= json_object_set_new(root, "date", json_string(h->date));
        if (h->driver && h->driver[0]) bad |= json_object_set_new(root, "driver", json_string(h->driver));
        if (h->cuda && h->cuda[0]) bad |= json_object_set_new(root, "cuda", json_string(h->cuda));
        for (int k = 0; k < 4; k++) {
            bad |= json_object_set_new(root, sections[k], sec[k]);
            sec[k] = NULL;
        }
    }
    if (bad)
        rc = st_error_set(err, ST_ENOMEM, path, NULL, "out of memory");
    else
        rc = st__json_write_file(root, path, err);
    for (int i = 0; i < 4; i++) json_decref(sec[i]);
    json_decref(root);
    return rc;
}

