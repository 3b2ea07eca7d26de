/* profile.c: calibration profiles, measured throughput tables (reading and writing the file is
 * src/io/profile_io.c's; its bounds and lookups are here) that replace the default
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
#include "cost_private.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

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

const char *st_profile_date(const st_profile *p) { return p->date; }
const char *st_profile_source(const st_profile *p) { return p->source; }

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

int st__profile_new(const st__phead *h, const char *file, const st__ptable *t, int n, st_profile **out,
                    st_error *err) {
    st_profile *p = calloc(1, sizeof *p);
    if (!p || !(p->t = calloc((size_t)(n > 0 ? n : 1), sizeof *p->t))) {
        free(p);
        return st_error_set(err, ST_ENOMEM, file, NULL, "out of memory");
    }
    snprintf(p->gpu, sizeof p->gpu, "%s", h->gpu ? h->gpu : "");
    snprintf(p->file, sizeof p->file, "%s", file ? file : "");
    snprintf(p->date, sizeof p->date, "%s", h->date ? h->date : "");
    snprintf(p->source, sizeof p->source, "%s", h->source ? h->source : "");
    for (int i = 0; i < n; i++) {
        table *d = &p->t[p->n++];
        *d = (table){.kind = t[i].kind, .cls = t[i].cls, .dtype = t[i].dtype, .coll = t[i].coll, .intra = t[i].intra,
                     .ranks = t[i].ranks, .dir = t[i].dir, .n = t[i].n};
        d->x = malloc((size_t)t[i].n * sizeof(double) + 1);
        d->y = malloc((size_t)t[i].n * sizeof(double) + 1);
        if (!d->x || !d->y) {
            st_profile_free(p);
            return st_error_set(err, ST_ENOMEM, file, NULL, "out of memory");
        }
        memcpy(d->x, t[i].x, (size_t)t[i].n * sizeof(double));
        memcpy(d->y, t[i].y, (size_t)t[i].n * sizeof(double));
    }
    int rc = check_tables(p, file, NULL, err);
    if (rc < 0) {
        st_profile_free(p);
        return rc;
    }
    *out = p;
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

/* ------------------------------------------------------------ checking and describing (calibrate, profile) */

static const double unit_of[4] = {1e12, 1e9, 1e9, 1e9}; /* TFLOP/s, GB/s, bus GB/s, GB/s in the file */
static const char *const sections[4] = {"compute", "memory", "collectives", "copies"};

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
