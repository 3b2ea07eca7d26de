/* profile.c: calibration profiles, measured throughput tables that replace the default
 * efficiency curves of compute.c and the link efficiencies of comm.c.
 *
 * Format (README "Calibration profiles"):
 *   { "strata_profile": 1, "gpu": "a100-sxm-80g", "source": "...", "date": "...",
 *     "compute":     [ {"class": "gemm", "dtype": "bf16", "points": [[flops, tflop_per_s], ...]} ],
 *     "memory":      [ {"class": "elementwise", "points": [[bytes, gb_per_s], ...]} ],
 *     "collectives": [ {"op": "allreduce", "scope": "intra", "ranks": 8,
 *                       "points": [[bytes, bus_gb_per_s], ...]} ],
 *     "copies":      [ {"dir": "h2d", "points": [[bytes, gb_per_s], ...]}, {"dir": "d2h", ...} ] }
 * x values are per kernel (or per collective call, or per copy) and strictly increasing. Between
 * points the rate is interpolated linearly in log(x); outside, the nearest point holds. "copies"
 * (pinned host memory to one GPU and back, cudaMemcpyAsync) is optional: a profile without it
 * leaves the cluster's host.pcie_gb_per_s in charge of offload copies.
 *
 * Across hardware (issue 6, st_profile_retarget): a profile measured on one GPU type and used for
 * a cluster of another keeps the efficiency shape of its tables, i.e. the achieved fraction of
 * peak at each size: compute rates are multiplied by target/measured dense peak of the table's
 * dtype, memory rates by target/measured HBM bandwidth. Collective and copy tables stay as
 * measured: the profile does not say which links (NVLink, NICs, the host's PCIe) the measuring
 * machine had, so there is no ratio to apply, and a copy's rate is the host link's, not the GPU's.
 * Both GPUs must be presets (st_gpu_preset) unless the names are equal, which means "same GPU,
 * use as is". */
#include "jsonutil.h"

#include <dirent.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct table {
    int kind; /* 0 compute, 1 memory, 2 collective, 3 copy */
    st_opclass cls;
    st_dtype dtype;
    st_coll coll;
    int intra, ranks;
    st_copy_dir dir;
    int n;
    double *x, *y; /* y in SI: FLOP/s or bytes/s */
} table;

/* what a recording profile (st__profile_recorder_new) was asked: distinct collective lookups */
typedef struct recorder {
    st__coll_lookup *v;
    int n, cap, full;
} recorder;

struct st_profile {
    recorder *rec; /* a recorder: no tables, lookups noted (cost/ reads profiles as const) */
    char gpu[48];
    char file[256];        /* where it was loaded from, for messages */
    char scaled_from[48];  /* the measured GPU after st_profile_retarget scaled it; else empty */
    char date[64], source[256]; /* labels, for strata profiles (empty when absent) */
    int n;
    table *t; /* kind -1: dropped by st_profile_retarget (the target lacks the dtype) */
};

void st_profile_free(st_profile *p) {
    if (!p) return;
    for (int i = 0; i < p->n; i++) {
        free(p->t[i].x);
        free(p->t[i].y);
    }
    free(p->t);
    if (p->rec) free(p->rec->v);
    free(p->rec);
    free(p);
}

st_profile *st__profile_recorder_new(void) {
    st_profile *p = calloc(1, sizeof *p);
    if (p && !(p->rec = calloc(1, sizeof *p->rec))) {
        free(p);
        return NULL;
    }
    return p;
}

static void record(recorder *r, st_coll c, int intra, int ranks, double bytes) {
    for (int i = 0; i < r->n; i++)
        if (r->v[i].coll == c && r->v[i].intra == intra && r->v[i].ranks == ranks && r->v[i].bytes == bytes) return;
    if (r->n == r->cap) {
        int cap = r->cap ? 2 * r->cap : 64;
        st__coll_lookup *g = cap <= 65536 ? realloc(r->v, (size_t)cap * sizeof *g) : NULL;
        if (!g) {
            r->full = 1;
            return;
        }
        r->v = g, r->cap = cap;
    }
    r->v[r->n++] = (st__coll_lookup){c, intra, ranks, bytes};
}

static int cmp_lookup(const void *pa, const void *pb) {
    const st__coll_lookup *a = pa, *b = pb;
    if (a->coll != b->coll) return a->coll < b->coll ? -1 : 1;
    if (a->intra != b->intra) return b->intra - a->intra; /* intra first */
    if (a->ranks != b->ranks) return a->ranks - b->ranks;
    return a->bytes < b->bytes ? -1 : a->bytes > b->bytes;
}

const st__coll_lookup *st__profile_recorded(const st_profile *p, int *n, int *lost) {
    *n = p->rec ? p->rec->n : 0;
    if (lost) *lost = p->rec && p->rec->full;
    if (!p->rec || !p->rec->n) return NULL;
    qsort(p->rec->v, (size_t)p->rec->n, sizeof *p->rec->v, cmp_lookup);
    return p->rec->v;
}

const char *st_profile_gpu(const st_profile *p) { return p->gpu; }
const char *st_profile_file(const st_profile *p) { return p->file; }

st_profile *st_profile_dup(const st_profile *p) {
    st_profile *c = malloc(sizeof *c);
    if (!c) return NULL;
    *c = *p;
    c->t = calloc((size_t)(p->n > 0 ? p->n : 1), sizeof *c->t);
    int ok = c->t != NULL;
    for (int i = 0; ok && i < p->n; i++) {
        c->t[i] = p->t[i];
        c->t[i].x = malloc((size_t)p->t[i].n * sizeof(double) + 1);
        c->t[i].y = malloc((size_t)p->t[i].n * sizeof(double) + 1);
        if (!c->t[i].x || !c->t[i].y) {
            c->n = i + 1; /* st_profile_free frees what was copied */
            ok = 0;
            break;
        }
        memcpy(c->t[i].x, p->t[i].x, (size_t)p->t[i].n * sizeof(double));
        memcpy(c->t[i].y, p->t[i].y, (size_t)p->t[i].n * sizeof(double));
    }
    if (!ok) {
        if (!c->t) c->n = 0;
        st_profile_free(c);
        return NULL;
    }
    return c;
}

static const char *const copy_dirs[ST_COPY_COUNT] = {"h2d", "d2h"};

const char *st_copy_dir_name(st_copy_dir d) { return (unsigned)d < ST_COPY_COUNT ? copy_dirs[d] : "?"; }

static int load_points(const json_t *arr, double yscale, table *t, const char *file, const char *key, st_error *err) {
    if (!json_is_array(arr) || json_array_size(arr) == 0 || json_array_size(arr) > 100000)
        return st_error_set(err, ST_EINVAL, file, key, "expected a non-empty array of [x, y] pairs");
    size_t n = json_array_size(arr);
    t->x = malloc(n * sizeof(double));
    t->y = malloc(n * sizeof(double));
    if (!t->x || !t->y) return st_error_set(err, ST_ENOMEM, file, key, "out of memory");
    for (size_t i = 0; i < n; i++) {
        json_t *pt = json_array_get(arr, i);
        if (!json_is_array(pt) || json_array_size(pt) != 2 || !json_is_number(json_array_get(pt, 0)) ||
            !json_is_number(json_array_get(pt, 1)))
            return st_error_set(err, ST_EINVAL, file, key, "point %zu is not a pair of numbers", i);
        double x = json_number_value(json_array_get(pt, 0)), y = json_number_value(json_array_get(pt, 1));
        if (!(x > 0) || !(y > 0) || !isfinite(x) || !isfinite(y))
            return st_error_set(err, ST_EINVAL, file, key, "point %zu must have x > 0 and y > 0", i);
        if (i > 0 && !(x > t->x[i - 1]))
            return st_error_set(err, ST_EINVAL, file, key, "x values must increase (point %zu)", i);
        t->x[i] = x;
        t->y[i] = y * yscale;
    }
    t->n = (int)n;
    return 0;
}

static int load_tables(const json_t *arr, int kind, st_profile *p, const char *file, st_error *err) {
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
    table *grown = realloc(p->t, (size_t)(p->n + (int)n) * sizeof(table) + 1);
    if (!grown) return st_error_set(err, ST_ENOMEM, file, top, "out of memory");
    p->t = grown;
    for (size_t i = 0; i < n; i++) {
        char prefix[64];
        snprintf(prefix, sizeof prefix, "%s[%zu]", top, i);
        const json_t *o = json_array_get(arr, i);
        table *t = &p->t[p->n];
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

/* Bounds on a profile's rates, so a broken measurement or a hand-edited typo fails with its key
 * rather than predicting an iteration of 1e300 seconds:
 * - no point may imply a kernel or collective of over an hour (x / rate > 3600 s);
 * - compute: at most twice the GPU's dense peak for the dtype when the GPU is a preset (twice
 *   dense is the structured-sparsity peak of NVIDIA's datasheets, which no dense kernel reaches),
 *   else 1e17 FLOP/s;
 * - memory-bound kernels: 1e14 B/s, over ten times the fastest HBM (B200, 8 TB/s, NVIDIA
 *   datasheet), leaving room for small kernels that run from L2;
 * - collectives: 1e13 B/s of bus bandwidth, over five times NVLink 5 (1.8 TB/s, NVIDIA);
 * - host<->device copies: 1e13 B/s as well, over ten times NVLink-C2C (900 GB/s, NVIDIA GH200),
 *   the fastest host link there is. */
#define MAX_POINT_S 3600.0
#define MAX_FLOPS_NO_PRESET 1e17
#define MAX_MEM_BYTES_PER_S 1e14
#define MAX_BUS_BYTES_PER_S 1e13

static int same_table(const table *a, const table *b) {
    if (a->kind != b->kind) return 0;
    switch (a->kind) {
    case 0: return a->cls == b->cls && a->dtype == b->dtype;
    case 1: return a->cls == b->cls;
    case 2: return a->coll == b->coll && a->intra == b->intra && a->ranks == b->ranks;
    case 3: return a->dir == b->dir;
    default: return 0;
    }
}

static int check_tables(const st_profile *p, const char *file, int *bad, st_error *err) {
    static const char *const names[] = {"compute", "memory", "collectives", "copies"};
    int index[4] = {0, 0, 0, 0};
    st_gpu g;
    int preset = st_gpu_preset(p->gpu, &g) == 0;
    if (p->n == 0)
        return st_error_set(err, ST_EINVAL, file, NULL,
                            "no tables: a profile needs \"compute\", \"memory\", \"collectives\" or \"copies\"");
    for (int i = 0; i < p->n; i++) {
        const table *t = &p->t[i];
        if (t->kind < 0 || t->kind > 3) continue;
        if (bad) *bad = i;
        char key[96];
        snprintf(key, sizeof key, "%s[%d]", names[t->kind], index[t->kind]);
        for (int j = 0, k = 0; j < i; j++) {
            if (p->t[j].kind != t->kind) continue;
            if (same_table(&p->t[j], t))
                return st_error_set(err, ST_EINVAL, file, key, "the same table as %s[%d]", names[t->kind], k);
            k++;
        }
        index[t->kind]++;
        double max = t->kind == 1 ? MAX_MEM_BYTES_PER_S : t->kind >= 2 ? MAX_BUS_BYTES_PER_S : MAX_FLOPS_NO_PRESET;
        if (t->kind == 0 && preset && g.peak_flops[t->dtype] > 0) max = 2 * g.peak_flops[t->dtype];
        double unit = t->kind == 0 ? 1e12 : 1e9;
        const char *uname = t->kind == 0 ? "TFLOP/s" : "GB/s";
        strncat(key, ".points", sizeof key - strlen(key) - 1);
        for (int k = 0; k < t->n; k++) {
            if (t->y[k] > max)
                return st_error_set(err, ST_EINVAL, file, key, "point %d: %g %s is over the bound of %g%s%s", k,
                                    t->y[k] / unit, uname, max / unit, t->kind == 0 && preset ? " for " : "",
                                    t->kind == 0 && preset ? p->gpu : "");
            if (t->x[k] / t->y[k] > MAX_POINT_S)
                return st_error_set(err, ST_EINVAL, file, key, "point %d: %g %s implies %.3g s for one %s, over an hour",
                                    k, t->y[k] / unit, uname, t->x[k] / t->y[k],
                                    t->kind == 2 ? "collective" : t->kind == 3 ? "copy" : "kernel");
        }
    }
    return 0;
}

int st_profile_load(const char *path, st_profile **out, st_error *err) {
    static const char *const keys[] = {"strata_profile", "gpu", "source", "date", "driver", "cuda",
                                       "compute", "memory", "collectives", "copies", "scaled_from", NULL};
    json_t *root = NULL;
    st_profile *p = NULL;
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
    p = calloc(1, sizeof *p);
    if (!p) {
        rc = st_error_set(err, ST_ENOMEM, path, NULL, "out of memory");
        goto out;
    }
    const char *gpu = NULL;
    if ((rc = st__json_get_str(root, "gpu", &gpu, path, NULL, err)) < 0) goto out;
    if (rc == 0) {
        rc = st_error_set(err, ST_EINVAL, path, "gpu", "missing");
        goto out;
    }
    if (strlen(gpu) >= sizeof p->gpu) {
        rc = st_error_set(err, ST_EINVAL, path, "gpu", "longer than %zu characters", sizeof p->gpu - 1);
        goto out;
    }
    snprintf(p->gpu, sizeof p->gpu, "%s", gpu);
    snprintf(p->file, sizeof p->file, "%s", path);
    const char *label = NULL; /* the labels strata profiles shows: none when absent or not a string */
    if ((label = json_string_value(json_object_get(root, "date")))) snprintf(p->date, sizeof p->date, "%s", label);
    if ((label = json_string_value(json_object_get(root, "source")))) snprintf(p->source, sizeof p->source, "%s", label);
    if ((rc = load_tables(json_object_get(root, "compute"), 0, p, path, err)) < 0) goto out;
    if ((rc = load_tables(json_object_get(root, "memory"), 1, p, path, err)) < 0) goto out;
    if ((rc = load_tables(json_object_get(root, "collectives"), 2, p, path, err)) < 0) goto out;
    if ((rc = load_tables(json_object_get(root, "copies"), 3, p, path, err)) < 0) goto out;
    if ((rc = check_tables(p, path, NULL, err)) < 0) goto out;
    *out = p;
    p = NULL;
    rc = 0;
out:
    st_profile_free(p);
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
            snprintf(x->gpu, sizeof x->gpu, "%s", p->gpu);
            snprintf(x->date, sizeof x->date, "%s", p->date);
            snprintf(x->source, sizeof x->source, "%s", p->source);
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

static double interp(const table *t, double x) {
    if (x <= t->x[0]) return t->y[0];
    if (x >= t->x[t->n - 1]) return t->y[t->n - 1];
    int lo = 0, hi = t->n - 1;
    while (hi - lo > 1) {
        int mid = (lo + hi) / 2;
        if (t->x[mid] <= x)
            lo = mid;
        else
            hi = mid;
    }
    double f = (log(x) - log(t->x[lo])) / (log(t->x[hi]) - log(t->x[lo]));
    return t->y[lo] + f * (t->y[hi] - t->y[lo]);
}

double st_profile_flops_per_s(const st_profile *p, st_opclass cls, st_dtype dt, double flops) {
    for (int i = 0; i < p->n; i++)
        if (p->t[i].kind == 0 && p->t[i].cls == cls && p->t[i].dtype == dt) return interp(&p->t[i], flops);
    return 0;
}

double st_profile_bytes_per_s(const st_profile *p, st_opclass cls, double bytes) {
    for (int i = 0; i < p->n; i++)
        if (p->t[i].kind == 1 && p->t[i].cls == cls) return interp(&p->t[i], bytes);
    return 0;
}

double st_profile_bus_bytes_per_s(const st_profile *p, st_coll c, int intra, int ranks, double bytes) {
    const table *best = NULL;
    if (p->rec) record(p->rec, c, intra, ranks, bytes);
    for (int i = 0; i < p->n; i++) {
        const table *t = &p->t[i];
        if (t->kind != 2 || t->coll != c || t->intra != intra) continue;
        if (!best || abs(t->ranks - ranks) < abs(best->ranks - ranks)) best = t;
    }
    return best ? interp(best, bytes) : 0;
}

double st_profile_copy_bytes_per_s(const st_profile *p, st_copy_dir d, double bytes) {
    for (int i = 0; i < p->n; i++)
        if (p->t[i].kind == 3 && p->t[i].dir == d) return interp(&p->t[i], bytes);
    return 0;
}

int st_profile_retarget(st_profile *p, const st_gpu *target, char *note, size_t n, st_error *err) {
    if (note && n) note[0] = '\0';
    if (strcmp(p->gpu, target->name) == 0) return 0;
    st_gpu measured;
    if (st_gpu_preset(p->gpu, &measured))
        return st_error_set(err, ST_EINVAL, p->file[0] ? p->file : NULL, "gpu",
                            "'%s' is not a GPU preset (strata clusters), so a profile measured on it cannot be "
                            "scaled to the cluster's %s",
                            p->gpu, target->name);
    /* presets and finalized clusters have hbm_bytes_per_s > 0 */
    double hbm = target->hbm_bytes_per_s / measured.hbm_bytes_per_s;
    double ratio[ST_DT_COUNT] = {0};
    int used[ST_DT_COUNT] = {0}, dropped = 0;
    for (int d = 0; d < ST_DT_COUNT; d++)
        if (measured.peak_flops[d] > 0 && target->peak_flops[d] > 0)
            ratio[d] = target->peak_flops[d] / measured.peak_flops[d];
    for (int i = 0; i < p->n; i++) {
        table *t = &p->t[i];
        double f = 1;
        if (t->kind == 0) {
            if (!(ratio[t->dtype] > 0)) {
                t->kind = -1; /* the target cannot run this dtype (or the measured GPU could not) */
                dropped++;
                continue;
            }
            f = ratio[t->dtype];
            used[t->dtype] = 1;
        } else if (t->kind == 1) {
            f = hbm;
        }
        for (int j = 0; j < t->n; j++) t->y[j] *= f;
    }
    if (note && n) {
        size_t off = 0;
#define ADD(...)                                                                                   \
    do {                                                                                           \
        int w_ = snprintf(note + off, off < n ? n - off : 0, __VA_ARGS__);                         \
        if (w_ > 0) off += (size_t)w_;                                                             \
    } while (0)
        ADD("profile measured on %s, scaled to %s by peak ratio (", p->gpu, target->name);
        for (int d = 0; d < ST_DT_COUNT; d++)
            if (used[d]) ADD("%s compute x%.3g, ", st_dtype_name((st_dtype)d), ratio[d]);
        ADD("memory x%.3g by HBM bandwidth; collectives and host copies as measured", hbm);
        if (dropped) ADD("; %d compute table%s dropped: dtype not on both GPUs", dropped, dropped > 1 ? "s" : "");
        ADD(")");
#undef ADD
    }
    snprintf(p->scaled_from, sizeof p->scaled_from, "%s", p->gpu);
    snprintf(p->gpu, sizeof p->gpu, "%s", target->name);
    return 1;
}

const char *st_profile_scaled_from(const st_profile *p) { return p->scaled_from[0] ? p->scaled_from : NULL; }

/* ------------------------------------------------------------ writing (calibrate, profile) */

static const double unit_of[4] = {1e12, 1e9, 1e9, 1e9}; /* TFLOP/s, GB/s, bus GB/s, GB/s in the file */
static const char *const sections[4] = {"compute", "memory", "collectives", "copies"};

static json_t *number(double v) { return v == floor(v) && fabs(v) < 9e15 ? json_integer((json_int_t)v) : json_real(v); }

int st__profile_check(const st__phead *h, const st__ptable *t, int n, st_error *err) {
    st_profile p;
    memset(&p, 0, sizeof p);
    snprintf(p.gpu, sizeof p.gpu, "%s", h->gpu ? h->gpu : "");
    if (!(p.t = calloc((size_t)(n > 0 ? n : 1), sizeof *p.t))) return st_error_set(err, ST_ENOMEM, NULL, NULL, "out of memory");
    p.n = n;
    for (int i = 0; i < n; i++) /* borrowed points: p.t alone is freed */
        p.t[i] = (table){.kind = t[i].kind, .cls = t[i].cls, .dtype = t[i].dtype, .coll = t[i].coll,
                         .intra = t[i].intra, .ranks = t[i].ranks, .dir = t[i].dir, .n = t[i].n,
                         .x = (double *)t[i].x, .y = (double *)t[i].y};
    st_error e;
    st_error_clear(&e);
    int i = 0, rc = check_tables(&p, NULL, &i, &e);
    free(p.t);
    if (rc >= 0) return 0;
    char what[96] = "";
    if (n > 0) {
        const st__ptable *b = &t[i];
        if (b->kind == 0) snprintf(what, sizeof what, "%s %s ", st_opclass_name(b->cls), st_dtype_name(b->dtype));
        else if (b->kind == 1) snprintf(what, sizeof what, "%s ", st_opclass_name(b->cls));
        else if (b->kind == 2) snprintf(what, sizeof what, "%s %s %d-rank ", st_coll_name(b->coll), b->intra ? "intra" : "inter", b->ranks);
        else snprintf(what, sizeof what, "%s copy ", st_copy_dir_name(b->dir));
    }
    return st_error_set(err, ST_EINVAL, NULL, NULL, "the measured %stable is not physical (%s): nothing written", what, e.text);
}

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

void st__profile_describe(const st__ptable *t, int n, const char *per, const char *none, FILE *f) {
    static const char *const units[] = {"TFLOP/s", "GB/s", "bus GB/s", "GB/s"};
    for (int kind = 0; kind < 4; kind++) {
        int first = 1;
        for (int i = 0; i < n; i++) {
            if (t[i].kind != kind) continue;
            char what[64], range[64], plan[32] = "";
            if (kind == 2)
                snprintf(what, sizeof what, "%s %s %d ranks", st_coll_name(t[i].coll), t[i].intra ? "intra" : "inter",
                         t[i].ranks);
            else if (kind == 3)
                snprintf(what, sizeof what, "%s pinned", st_copy_dir_name(t[i].dir));
            else if (kind == 0)
                snprintf(what, sizeof what, "%s %s", st_opclass_name(t[i].cls), st_dtype_name(t[i].dtype));
            else
                snprintf(what, sizeof what, "%s", st_opclass_name(t[i].cls));
            double lo = t[i].y[0], hi = t[i].y[0];
            for (int j = 1; j < t[i].n; j++) lo = fmin(lo, t[i].y[j]), hi = fmax(hi, t[i].y[j]);
            if (lo == hi)
                snprintf(range, sizeof range, "%.4g %s", lo / unit_of[kind], units[kind]);
            else
                snprintf(range, sizeof range, "%.4g to %.4g %s", lo / unit_of[kind], hi / unit_of[kind], units[kind]);
            if (t[i].exact) snprintf(plan, sizeof plan, " (%d at plan shapes)", t[i].exact);
            fprintf(f, "%-12s %-28s %2d point%s from %d %s%s: %s%s\n", first ? sections[kind] : "", what, t[i].n,
                    t[i].n == 1 ? "" : "s", t[i].samples, per, t[i].samples == 1 ? "" : "s", range, plan);
            first = 0;
        }
        if (first) fprintf(f, "%-12s %s\n", sections[kind], none);
    }
}
