/* plot_io.c: the readers behind `strata plot`: the JSON that `strata plan`, `strata estimate` and
 * `strata compare` print with --json, Chrome trace files (the Trace Event Format, as written by
 * chrome://tracing, PyTorch's profiler and `strata sim --trace`), and the accuracy CSV of
 * scripts/validate.sh --csv. The only plot file that includes Jansson.
 *
 * Invariants:
 * - The input is recognised by its keys, not by its name: a file of the wrong kind is refused with
 *   the file, the first missing key ("plans", "plans[3].breakdown_s.bubble") and what the kind
 *   reads, so `strata plot memory --input plan.json` says to pass `strata estimate --json` output.
 * - Numbers are kept as read (see plot.h); null becomes NAN.
 * - Trace Event Format (Google, "Trace Event Format", 2016): "ts" and "dur" in microseconds; "X"
 *   complete events; "B"/"E" pairs nest per (pid, tid) and are paired here with a stack, in
 *   timestamp order with file order breaking ties; "M" events named process_name / thread_name
 *   carry the row names in args.name; every other phase (counters "C", instants, flows) is ignored.
 * - CSV as in RFC 4180: comma separated, fields in double quotes may hold commas, line breaks and
 *   doubled quotes; CRLF or LF; a UTF-8 byte-order mark is skipped; the header names the columns
 *   in any order (case-insensitive), extra columns are ignored.
 */
#include "src/io/jsonutil.h"
#include "src/report/report.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

const char *const st_plot_break_keys[ST_PLOT_NBREAK] = {"compute", "recompute", "tp_comm", "cp_comm",   "ep_comm",
                                                        "pp_comm", "bubble",    "dp_comm", "optimizer", "offload"};
const char *const st_plot_mem_keys[ST_PLOT_NMEM] = {"weights", "gradients", "optimizer", "activations", "other"};

/* What each kind reads, for the messages. */
static const char *const needs[ST_PLOT_COUNT] = {
    [ST_PLOT_STRATEGIES] = "strategies reads the output of strata plan --json",
    [ST_PLOT_BREAKDOWN] = "breakdown reads the output of strata plan --json or strata estimate --json",
    [ST_PLOT_MEMORY] = "memory reads the output of strata estimate --json",
    [ST_PLOT_TIMELINE] = "timeline reads a Chrome trace, as strata sim --trace writes",
    [ST_PLOT_SCALING] = "scaling reads the output of strata compare --json",
    [ST_PLOT_HARDWARE] = "hardware reads the output of strata compare --json",
    [ST_PLOT_ACCURACY] = "accuracy reads a CSV with the columns name, measured, predicted",
};

static char *dup(const char *s) {
    size_t n = strlen(s) + 1;
    char *p = malloc(n);
    if (p) memcpy(p, s, n);
    return p;
}

void st_plot_data_free(st_plot_data *d) {
    if (!d) return;
    free(d->source);
    free(d->subject);
    for (int i = 0; i < d->nplans; i++) free(d->plans[i].spec);
    free(d->plans);
    free(d->stages);
    for (int i = 0; i < d->nrows; i++) {
        free(d->rows[i].pid);
        free(d->rows[i].tid);
        free(d->rows[i].label);
    }
    free(d->rows);
    for (int i = 0; i < d->nevents; i++) free(d->events[i].name);
    free(d->events);
    for (int i = 0; i < d->ncats; i++) free(d->cats[i]);
    free(d->cats);
    for (int i = 0; i < d->nresults; i++) {
        free(d->results[i].cluster);
        free(d->results[i].gpu);
        free(d->results[i].spec);
    }
    free(d->results);
    for (int i = 0; i < d->npoints; i++) {
        free(d->points[i].name);
        free(d->points[i].set);
    }
    free(d->points);
    free(d);
}

static int oom(st_error *err) { return st_error_set(err, ST_ENOMEM, NULL, NULL, "out of memory"); }

/* "prefix.key" or "key" */
static void key_path(char *buf, size_t n, const char *prefix, const char *key) {
    if (prefix && prefix[0])
        snprintf(buf, n, "%s.%s", prefix, key);
    else
        snprintf(buf, n, "%s", key);
}

static int missing(st_error *err, st_plot_kind kind, const char *file, const char *prefix, const char *key) {
    char path[128];
    key_path(path, sizeof path, prefix, key);
    return st_error_set(err, ST_EINVAL, file, path, "missing (%s)", needs[kind]);
}

/* A number at obj.key: 0 with *out set (NAN for null when `nullable`), or an error naming the key
 * (missing, null where a number is needed, or not a number). */
static int req_num(const json_t *obj, const char *key, int nullable, double *out, st_plot_kind kind, const char *file,
                   const char *prefix, st_error *err) {
    const json_t *v = json_object_get(obj, key);
    char path[128];
    if (!v) return missing(err, kind, file, prefix, key);
    if (json_is_null(v)) {
        if (nullable) {
            *out = NAN;
            return 0;
        }
        key_path(path, sizeof path, prefix, key);
        return st_error_set(err, ST_EINVAL, file, path, "expected a number, got null");
    }
    int rc = st__json_get_num(obj, key, -1e300, 1e300, out, file, prefix, err);
    return rc < 0 ? rc : 0;
}

static int req_str(const json_t *obj, const char *key, const char **out, st_plot_kind kind, const char *file,
                   const char *prefix, st_error *err) {
    int rc = st__json_get_str(obj, key, out, file, prefix, err);
    if (rc < 0) return rc;
    if (rc == 0) return missing(err, kind, file, prefix, key);
    return 0;
}

/* An array at root.key (non-empty), or an error naming the key. */
static int req_array(const json_t *root, const char *key, const json_t **out, st_plot_kind kind, const char *file,
                     st_error *err) {
    const json_t *a = json_is_object(root) ? json_object_get(root, key) : NULL;
    if (!a) return missing(err, kind, file, NULL, key);
    if (!json_is_array(a)) return st_error_set(err, ST_EINVAL, file, key, "expected an array (%s)", needs[kind]);
    if (json_array_size(a) == 0) return st_error_set(err, ST_EINVAL, file, key, "empty: nothing to plot");
    if (json_array_size(a) > 1000000)
        return st_error_set(err, ST_EINVAL, file, key, "%zu entries; at most 1000000 are plotted", json_array_size(a));
    *out = a;
    return 0;
}

/* "llama2-7b on 16 x a100-sxm-80g (dgx-a100-80g)[, gbs 64]" from what the document names. */
static char *subject_of(const json_t *root) {
    const char *model = json_string_value(json_object_get(root, "model"));
    const char *gpu = json_string_value(json_object_get(root, "gpu"));
    const char *cluster = json_string_value(json_object_get(root, "cluster"));
    const json_t *gpus = json_object_get(root, "gpus"), *gbs = json_object_get(root, "gbs");
    char buf[512];
    size_t off = 0;
#define ADD(...)                                                                                                       \
    do {                                                                                                               \
        int w_ = snprintf(buf + off, sizeof buf - off, __VA_ARGS__);                                                   \
        if (w_ > 0) off = off + (size_t)w_ < sizeof buf ? off + (size_t)w_ : sizeof buf - 1;                           \
    } while (0)
    buf[0] = '\0';
    if (model) ADD("%s", model);
    if (gpu || cluster) {
        ADD("%son ", off ? " " : "");
        if (json_is_integer(gpus)) ADD("%lld x ", (long long)json_integer_value(gpus));
        if (gpu) ADD("%s", gpu);
        if (cluster) ADD(gpu ? " (%s)" : "%s", cluster);
    }
    if (json_is_integer(gbs)) ADD("%sgbs %lld", off ? ", " : "", (long long)json_integer_value(gbs));
#undef ADD
    return dup(buf);
}

/* ------------------------------------------------------------ plan / estimate */

/* The estimate keys of one plan entry (or of the estimate object itself). */
static int read_plan(const json_t *o, st_plot_plan *p, st_plot_kind kind, const char *file, const char *prefix,
                     st_error *err) {
    int rc;
    const char *spec = NULL;
    if (!json_is_object(o)) return st_error_set(err, ST_EINVAL, file, prefix, "expected an object");
    if ((rc = req_str(o, "spec", &spec, kind, file, prefix, err))) return rc;
    if (!(p->spec = dup(spec))) return oom(err);
    p->iteration_time_s = p->tokens_per_s = p->memory_peak_gib = NAN;
    p->fits = 1;
    for (int k = 0; k < ST_PLOT_NBREAK; k++) p->breakdown_s[k] = NAN;
    if (st__json_get_bool(o, "fits", &p->fits, file, prefix, err) < 0) return err ? err->code : ST_EINVAL;
    if (kind == ST_PLOT_STRATEGIES) {
        if ((rc = req_num(o, "iteration_time_s", 0, &p->iteration_time_s, kind, file, prefix, err))) return rc;
        if ((rc = req_num(o, "tokens_per_s", 0, &p->tokens_per_s, kind, file, prefix, err))) return rc;
        if ((rc = req_num(o, "memory_peak_gib", 0, &p->memory_peak_gib, kind, file, prefix, err))) return rc;
    }
    if (kind == ST_PLOT_BREAKDOWN) {
        char bpre[128];
        key_path(bpre, sizeof bpre, prefix, "breakdown_s");
        const json_t *b = json_object_get(o, "breakdown_s");
        if (!b) return missing(err, kind, file, prefix, "breakdown_s");
        if (!json_is_object(b)) return st_error_set(err, ST_EINVAL, file, bpre, "expected an object");
        for (int k = 0; k < ST_PLOT_NBREAK; k++)
            if ((rc = req_num(b, st_plot_break_keys[k], 0, &p->breakdown_s[k], kind, file, bpre, err))) return rc;
        /* the total the bars add up to, when the document has it */
        double t;
        if (st__json_get_num(o, "iteration_time_s", -1e300, 1e300, &t, file, prefix, NULL) == 1)
            p->iteration_time_s = t;
    }
    return 0;
}

static int load_plans(const json_t *root, st_plot_data *d, const char *file, st_error *err) {
    const json_t *arr;
    int rc;
    if ((rc = req_array(root, "plans", &arr, d->kind, file, err))) return rc;
    d->plans = calloc(json_array_size(arr), sizeof *d->plans);
    if (!d->plans) return oom(err);
    for (size_t i = 0; i < json_array_size(arr); i++) {
        char prefix[64];
        snprintf(prefix, sizeof prefix, "plans[%zu]", i);
        st_plot_plan *p = &d->plans[i];
        d->nplans = (int)i + 1;
        if ((rc = read_plan(json_array_get(arr, i), p, d->kind, file, prefix, err))) return rc;
        int64_t rank = (int64_t)i + 1;
        if (st__json_get_int(json_array_get(arr, i), "rank", 1, 1 << 30, &rank, file, prefix, err) < 0)
            return err ? err->code : ST_EINVAL;
        p->rank = (int)rank;
    }
    return 0;
}

static int load_breakdown(const json_t *root, st_plot_data *d, const char *file, st_error *err) {
    if (json_object_get(root, "plans") || !json_object_get(root, "breakdown_s")) return load_plans(root, d, file, err);
    d->from_estimate = 1;
    if (!(d->plans = calloc(1, sizeof *d->plans))) return oom(err);
    d->nplans = 1;
    return read_plan(root, &d->plans[0], d->kind, file, NULL, err);
}

static int load_memory(const json_t *root, st_plot_data *d, const char *file, st_error *err) {
    const json_t *arr;
    int rc;
    if ((rc = req_array(root, "memory_gib", &arr, d->kind, file, err))) return rc;
    if ((rc = req_num(root, "gpu_memory_gib", 0, &d->gpu_memory_gib, d->kind, file, NULL, err))) return rc;
    if (!(d->stages = calloc(json_array_size(arr), sizeof *d->stages))) return oom(err);
    for (size_t i = 0; i < json_array_size(arr); i++) {
        const json_t *o = json_array_get(arr, i);
        char prefix[64];
        snprintf(prefix, sizeof prefix, "memory_gib[%zu]", i);
        if (!json_is_object(o)) return st_error_set(err, ST_EINVAL, file, prefix, "expected an object");
        st_plot_stage *s = &d->stages[i];
        d->nstages = (int)i + 1;
        int64_t stage = (int64_t)i;
        rc = st__json_get_int(o, "stage", 0, ST_MAX_STAGES, &stage, file, prefix, err);
        if (rc < 0) return rc;
        if (rc == 0) return missing(err, d->kind, file, prefix, "stage");
        s->stage = (int)stage;
        for (int k = 0; k < ST_PLOT_NMEM; k++)
            if ((rc = req_num(o, st_plot_mem_keys[k], 0, &s->gib[k], d->kind, file, prefix, err))) return rc;
        if ((rc = req_num(o, "total", 0, &s->total_gib, d->kind, file, prefix, err))) return rc;
    }
    /* the spec of the estimate, for the title */
    const char *spec = json_string_value(json_object_get(root, "spec"));
    if (spec) {
        if (!(d->plans = calloc(1, sizeof *d->plans)) || !(d->plans[0].spec = dup(spec))) return oom(err);
        d->nplans = 1;
        d->plans[0].memory_peak_gib = d->plans[0].iteration_time_s = d->plans[0].tokens_per_s = NAN;
        d->plans[0].fits = !json_is_false(json_object_get(root, "fits"));
        for (int k = 0; k < ST_PLOT_NBREAK; k++) d->plans[0].breakdown_s[k] = NAN;
    }
    return 0;
}

/* ------------------------------------------------------------ compare */

/* compare --energy's "energy" object of a result, when there is one (src/report/compare_io.c): energy
 * to train and tokens per joule are null only where nothing fits, the energy cost also where no price
 * per kWh was given */
static int load_energy(const json_t *o, st_plot_result *r, st_plot_data *d, const char *file, const char *prefix,
                       st_error *err) {
    const json_t *en = json_object_get(o, "energy");
    char path[96];
    if (!en) return 0;
    snprintf(path, sizeof path, "%s.energy", prefix);
    if (!json_is_object(en)) return st_error_set(err, ST_EINVAL, file, path, "expected an object");
    d->has_energy = 1;
    int rc;
    if ((rc = req_num(en, "energy_mwh", !r->fits, &r->energy_mwh, d->kind, file, path, err))) return rc;
    if ((rc = req_num(en, "tokens_per_joule", !r->fits, &r->tokens_per_joule, d->kind, file, path, err))) return rc;
    return req_num(en, "energy_cost", 1, &r->energy_cost, d->kind, file, path, err);
}

static int load_results(const json_t *root, st_plot_data *d, const char *file, st_error *err) {
    const json_t *arr;
    int rc;
    if ((rc = req_array(root, "results", &arr, d->kind, file, err))) return rc;
    d->tokens = NAN;
    double t;
    if (st__json_get_num(root, "tokens", 0, 1e300, &t, file, NULL, NULL) == 1) d->tokens = t;
    if (!(d->results = calloc(json_array_size(arr), sizeof *d->results))) return oom(err);
    for (size_t i = 0; i < json_array_size(arr); i++) {
        const json_t *o = json_array_get(arr, i);
        char prefix[64];
        snprintf(prefix, sizeof prefix, "results[%zu]", i);
        if (!json_is_object(o)) return st_error_set(err, ST_EINVAL, file, prefix, "expected an object");
        st_plot_result *r = &d->results[i];
        d->nresults = (int)i + 1;
        r->tokens_per_s = r->mfu = r->time_to_train_days = r->cost_to_train = NAN;
        r->energy_mwh = r->tokens_per_joule = r->energy_cost = NAN;
        const char *s;
        if ((rc = req_str(o, "cluster", &s, d->kind, file, prefix, err))) return rc;
        if (!(r->cluster = dup(s))) return oom(err);
        s = "";
        if (st__json_get_str(o, "gpu", &s, file, prefix, NULL) < 0) s = "";
        if (!(r->gpu = dup(s))) return oom(err);
        if (st__json_get_str(o, "spec", &s, file, prefix, NULL) == 1 && !(r->spec = dup(s))) return oom(err);
        rc = st__json_get_int(o, "gpus", 1, ST_MAX_GPUS, &r->gpus, file, prefix, err);
        if (rc < 0) return rc;
        if (rc == 0) return missing(err, d->kind, file, prefix, "gpus");
        rc = st__json_get_bool(o, "fits", &r->fits, file, prefix, err);
        if (rc < 0) return rc;
        if (rc == 0) return missing(err, d->kind, file, prefix, "fits");
        /* numbers may be null where the cluster cannot train the model */
        if (d->kind == ST_PLOT_SCALING) {
            if ((rc = req_num(o, "tokens_per_s", !r->fits, &r->tokens_per_s, d->kind, file, prefix, err))) return rc;
            if ((rc = req_num(o, "mfu", !r->fits, &r->mfu, d->kind, file, prefix, err))) return rc;
        } else {
            if ((rc = req_num(o, "time_to_train_days", !r->fits, &r->time_to_train_days, d->kind, file, prefix, err)))
                return rc;
            if (json_object_get(o, "cost_to_train") &&
                (rc = req_num(o, "cost_to_train", 1, &r->cost_to_train, d->kind, file, prefix, err)))
                return rc;
            if ((rc = load_energy(o, r, d, file, prefix, err))) return rc;
        }
    }
    return 0;
}

/* ------------------------------------------------------------ Chrome trace */

/* A pid or tid: a number (printed as an integer) or a string. */
typedef struct trace_id {
    int isnum;
    double num;
    const char *str; /* borrowed from the JSON when a string */
} trace_id;

typedef struct trace_ev {
    trace_id pid, tid;
    char ph;    /* 'X', 'B' or 'E' */
    size_t seq; /* position in the file: ties in time keep file order */
    double ts_us, dur_us;
    const char *name, *cat; /* borrowed */
} trace_ev;

typedef struct trace_meta {
    trace_id pid, tid;
    int thread; /* thread_name (else process_name) */
    const char *name;
} trace_meta;

static int id_cmp(const trace_id *a, const trace_id *b) {
    if (a->isnum && b->isnum) return (a->num > b->num) - (a->num < b->num);
    if (a->isnum != b->isnum) return a->isnum ? -1 : 1; /* numbers first */
    return strcmp(a->str, b->str);
}

static int ev_cmp(const void *x, const void *y) {
    const trace_ev *a = x, *b = y;
    int c = id_cmp(&a->pid, &b->pid);
    if (!c) c = id_cmp(&a->tid, &b->tid);
    if (!c) c = (a->ts_us > b->ts_us) - (a->ts_us < b->ts_us);
    if (!c) c = (a->seq > b->seq) - (a->seq < b->seq);
    return c;
}

static int read_id(const json_t *o, const char *key, trace_id *id, const char *file, const char *prefix,
                   st_error *err) {
    const json_t *v = json_object_get(o, key);
    char path[128];
    key_path(path, sizeof path, prefix, key);
    if (!v) return missing(err, ST_PLOT_TIMELINE, file, prefix, key);
    memset(id, 0, sizeof *id);
    if (json_is_integer(v)) {
        id->isnum = 1;
        id->num = (double)json_integer_value(v);
    } else if (json_is_real(v) && json_real_value(v) == floor(json_real_value(v))) {
        id->isnum = 1;
        id->num = json_real_value(v);
    } else if (json_is_string(v)) {
        id->str = json_string_value(v);
    } else {
        return st_error_set(err, ST_EINVAL, file, path, "expected an integer or a string");
    }
    return 0;
}

static char *id_text(const trace_id *id) {
    char buf[64];
    if (!id->isnum) return dup(id->str);
    snprintf(buf, sizeof buf, "%.0f", id->num);
    return dup(buf);
}

/* The category of an event: its "cat", else its name up to the first '_' or ' '. */
static void category_of(const char *name, const char *cat, char *buf, size_t n) {
    if (cat && cat[0]) {
        snprintf(buf, n, "%s", cat);
        return;
    }
    size_t len = strcspn(name, "_ ");
    if (len == 0) len = strlen(name);
    snprintf(buf, n, "%.*s", (int)len, name);
}

static int load_trace(const json_t *root, st_plot_data *d, const char *file, st_error *err) {
    const json_t *arr = root;
    int rc = 0;
    trace_ev *evs = NULL, **stack = NULL;
    trace_meta *metas = NULL;
    size_t nev = 0, nmeta = 0, nstack = 0;
    const char *prefix_name = "traceEvents";

    if (json_is_object(root)) {
        if ((rc = req_array(root, "traceEvents", &arr, d->kind, file, err))) goto out;
    } else if (!json_is_array(root)) {
        rc = missing(err, d->kind, file, NULL, "traceEvents");
        goto out;
    } else {
        prefix_name = "";
        if (json_array_size(root) == 0) {
            rc = st_error_set(err, ST_EINVAL, file, NULL, "an empty trace: nothing to plot");
            goto out;
        }
    }
    size_t n = json_array_size(arr);
    evs = calloc(n, sizeof *evs);
    metas = calloc(n, sizeof *metas);
    stack = calloc(n, sizeof *stack);
    if (!evs || !metas || !stack) {
        rc = oom(err);
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        const json_t *o = json_array_get(arr, i);
        char prefix[64];
        snprintf(prefix, sizeof prefix, "%s[%zu]", prefix_name, i);
        const char *ph, *name = NULL;
        if (!json_is_object(o)) {
            rc = st_error_set(err, ST_EINVAL, file, prefix, "expected an event object");
            goto out;
        }
        if ((rc = req_str(o, "ph", &ph, d->kind, file, prefix, err))) goto out;
        if (!strcmp(ph, "M")) {
            if (st__json_get_str(o, "name", &name, file, prefix, NULL) != 1) continue;
            int thread = !strcmp(name, "thread_name");
            if (!thread && strcmp(name, "process_name")) continue; /* sort indexes and the like */
            const char *label = json_string_value(json_object_get(json_object_get(o, "args"), "name"));
            if (!label) continue;
            trace_meta *m = &metas[nmeta];
            if ((rc = read_id(o, "pid", &m->pid, file, prefix, err))) goto out;
            if (thread && (rc = read_id(o, "tid", &m->tid, file, prefix, err))) goto out;
            m->thread = thread;
            m->name = label;
            nmeta++;
            continue;
        }
        if (strcmp(ph, "X") && strcmp(ph, "B") && strcmp(ph, "E")) continue; /* counters, instants, flows */
        trace_ev *e = &evs[nev];
        e->ph = ph[0];
        e->seq = i;
        if ((rc = read_id(o, "pid", &e->pid, file, prefix, err))) goto out;
        if ((rc = read_id(o, "tid", &e->tid, file, prefix, err))) goto out;
        if ((rc = req_num(o, "ts", 0, &e->ts_us, d->kind, file, prefix, err))) goto out;
        if (e->ph != 'E' && (rc = req_str(o, "name", &e->name, d->kind, file, prefix, err))) goto out;
        if (e->ph == 'X') {
            if ((rc = req_num(o, "dur", 0, &e->dur_us, d->kind, file, prefix, err))) goto out;
            if (e->dur_us < 0) {
                char path[128];
                key_path(path, sizeof path, prefix, "dur");
                rc = st_error_set(err, ST_EINVAL, file, path, "negative duration %g", e->dur_us);
                goto out;
            }
        }
        e->cat = json_string_value(json_object_get(o, "cat"));
        nev++;
    }
    qsort(evs, nev, sizeof *evs, ev_cmp);

    /* pair B/E per row (a stack each; rows are contiguous after the sort), then keep complete events */
    size_t nkeep = 0;
    for (size_t i = 0; i < nev; i++) {
        trace_ev *e = &evs[i];
        if (i > 0 && (id_cmp(&e->pid, &evs[i - 1].pid) || id_cmp(&e->tid, &evs[i - 1].tid))) nstack = 0;
        if (e->ph == 'B') {
            stack[nstack++] = e;
        } else if (e->ph == 'E') {
            if (nstack == 0) continue; /* an end without a begin */
            trace_ev *b = stack[--nstack];
            b->ph = 'X';
            b->dur_us = e->ts_us - b->ts_us;
        }
    }
    for (size_t i = 0; i < nev; i++)
        if (evs[i].ph == 'X') evs[nkeep++] = evs[i];
    nev = nkeep;
    qsort(evs, nev, sizeof *evs, ev_cmp); /* paired begins keep their place: same keys */
    if (nev == 0) {
        rc = st_error_set(err, ST_EINVAL, file, json_is_object(root) ? "traceEvents" : NULL,
                          "no complete events (\"ph\": \"X\", or \"B\"/\"E\" pairs) to plot");
        goto out;
    }

    if (!(d->events = calloc(nev, sizeof *d->events)) || !(d->rows = calloc(nev, sizeof *d->rows)) ||
        !(d->cats = calloc(nev, sizeof *d->cats))) {
        rc = oom(err);
        goto out;
    }
    for (size_t i = 0; i < nev; i++) {
        const trace_ev *e = &evs[i];
        if (i == 0 || id_cmp(&e->pid, &evs[i - 1].pid) || id_cmp(&e->tid, &evs[i - 1].tid)) {
            st_plot_row *r = &d->rows[d->nrows++];
            const char *pname = NULL, *tname = NULL;
            for (size_t k = 0; k < nmeta; k++) {
                if (id_cmp(&metas[k].pid, &e->pid)) continue;
                if (!metas[k].thread)
                    pname = metas[k].name;
                else if (!id_cmp(&metas[k].tid, &e->tid))
                    tname = metas[k].name;
            }
            if (!(r->pid = id_text(&e->pid)) || !(r->tid = id_text(&e->tid))) {
                rc = oom(err);
                goto out;
            }
            size_t len =
                strlen(r->pid) + strlen(r->tid) + (pname ? strlen(pname) : 0) + (tname ? strlen(tname) : 0) + 16;
            if (!(r->label = malloc(len))) {
                rc = oom(err);
                goto out;
            }
            if (pname)
                snprintf(r->label, len, "%s / ", pname);
            else
                snprintf(r->label, len, "rank %s / ", r->pid);
            size_t off = strlen(r->label);
            snprintf(r->label + off, len - off, tname ? "%s" : "tid %s", tname ? tname : r->tid);
        }
        st_plot_event *pe = &d->events[d->nevents++];
        pe->row = d->nrows - 1;
        pe->ts_us = e->ts_us;
        pe->dur_us = e->dur_us;
        if (!(pe->name = dup(e->name))) {
            rc = oom(err);
            goto out;
        }
        char cat[128];
        category_of(e->name, e->cat, cat, sizeof cat);
        int c = 0;
        while (c < d->ncats && strcmp(d->cats[c], cat)) c++;
        if (c == d->ncats && !(d->cats[d->ncats++] = dup(cat))) {
            rc = oom(err);
            goto out;
        }
        pe->cat = c;
    }
out:
    free(evs);
    free(metas);
    free(stack);
    return rc;
}

/* ------------------------------------------------------------ CSV */

typedef struct csv_rec {
    char **f;
    int n, cap;
    int line; /* where the record starts, 1-based */
} csv_rec;

static void csv_clear(csv_rec *r) {
    for (int i = 0; i < r->n; i++) free(r->f[i]);
    r->n = 0;
}

/* Trims spaces and tabs at both ends, in place. */
static char *trim(char *s) {
    while (*s == ' ' || *s == '\t') s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t')) s[--n] = '\0';
    return s;
}

/* Reads the record at text[*pos]: 1 when one was read, 0 at the end, ST_EINVAL for an unterminated
 * quote. *line counts line breaks. Unquoted fields are trimmed; quoted ones are kept as written. */
static int csv_next(const char *text, size_t len, size_t *pos, int *line, csv_rec *r, const char *file, st_error *err) {
    size_t i = *pos;
    csv_clear(r);
    if (i >= len) return 0;
    r->line = *line;
    char *buf = malloc(len - i + 1);
    if (!buf) return oom(err);
    for (;;) {
        size_t b = 0;
        int quoted = 0;
        while (i < len && (text[i] == ' ' || text[i] == '\t')) i++;
        if (i < len && text[i] == '"') {
            quoted = 1;
            i++;
            for (;;) {
                if (i >= len) {
                    free(buf);
                    st_error_set(err, ST_EINVAL, file, NULL, "unterminated quoted field");
                    if (err) err->line = r->line;
                    return ST_EINVAL;
                }
                if (text[i] == '"') {
                    if (i + 1 < len && text[i + 1] == '"') {
                        buf[b++] = '"';
                        i += 2;
                        continue;
                    }
                    i++;
                    break;
                }
                if (text[i] == '\n') (*line)++;
                buf[b++] = text[i++];
            }
            /* anything between the closing quote and the separator is kept, as spreadsheets do */
            while (i < len && text[i] != ',' && text[i] != '\n' && text[i] != '\r') buf[b++] = text[i++];
        } else {
            while (i < len && text[i] != ',' && text[i] != '\n' && text[i] != '\r') buf[b++] = text[i++];
        }
        buf[b] = '\0';
        if (r->n == r->cap) {
            int cap = r->cap ? 2 * r->cap : 16;
            char **f = realloc(r->f, (size_t)cap * sizeof *f);
            if (!f) {
                free(buf);
                return oom(err);
            }
            r->f = f;
            r->cap = cap;
        }
        if (!(r->f[r->n++] = dup(quoted ? buf : trim(buf)))) {
            free(buf);
            return oom(err);
        }
        if (i < len && text[i] == ',') {
            i++;
            continue;
        }
        /* end of record: \n, \r\n, a lone \r, or the end of the text */
        if (i < len && text[i] == '\r') i++;
        if (i < len && text[i] == '\n') i++;
        (*line)++;
        break;
    }
    free(buf);
    *pos = i;
    return 1;
}

static int blank_record(const csv_rec *r) { return r->n == 1 && r->f[0][0] == '\0'; }

static int csv_number(const char *s, double *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || errno || !isfinite(v)) return -1;
    while (*end == ' ' || *end == '\t') end++;
    if (*end) return -1;
    *out = v;
    return 0;
}

static int read_file(const char *path, char **text, size_t *len, st_error *err) {
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    if (!f) return st_error_set(err, ST_EIO, path, NULL, "cannot open: %s", strerror(errno));
    for (;;) {
        if (cap - n < 65536) {
            if (cap > ((size_t)1 << 30)) {
                rc = st_error_set(err, ST_EINVAL, path, NULL, "larger than 1 GiB");
                goto out;
            }
            cap = cap ? 2 * cap : 65536;
            char *nb = realloc(buf, cap + 1);
            if (!nb) {
                rc = oom(err);
                goto out;
            }
            buf = nb;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0) break;
    }
    if (ferror(f)) {
        rc = st_error_set(err, ST_EIO, path, NULL, "cannot read: %s", strerror(errno ? errno : EIO));
        goto out;
    }
    buf[n] = '\0';
    *text = buf;
    *len = n;
    buf = NULL;
out:
    free(buf);
    fclose(f);
    return rc;
}

#define ST_PLOT_SECONDS_MIN 1e-12
#define ST_PLOT_SECONDS_MAX 1e12

static int load_csv(const char *path, st_plot_data *d, st_error *err) {
    char *text = NULL;
    size_t len = 0, pos = 0;
    int rc, line = 1, cap = 0;
    csv_rec r = {0};
    enum { C_NAME, C_MEASURED, C_PREDICTED, C_SET, C_N };
    static const char *const cols[C_N] = {"name", "measured", "predicted", "set"};
    int at[C_N] = {-1, -1, -1, -1};

    if ((rc = read_file(path, &text, &len, err))) goto out;
    if (len >= 3 && !memcmp(text, "\xEF\xBB\xBF", 3)) pos = 3;
    do {
        if ((rc = csv_next(text, len, &pos, &line, &r, path, err)) < 0) goto out;
    } while (rc == 1 && blank_record(&r));
    if (rc == 0) {
        rc = st_error_set(err, ST_EINVAL, path, NULL, "empty file (%s)", needs[ST_PLOT_ACCURACY]);
        goto out;
    }
    for (int i = 0; i < r.n; i++)
        for (int c = 0; c < C_N; c++)
            if (at[c] < 0 && !strcasecmp(r.f[i], cols[c])) at[c] = i;
    for (int c = 0; c < C_SET; c++)
        if (at[c] < 0) {
            rc = st_error_set(err, ST_EINVAL, path, cols[c], "no such column in the header (%s)",
                              needs[ST_PLOT_ACCURACY]);
            if (err) err->line = r.line;
            goto out;
        }
    int need = 0;
    for (int c = 0; c < C_N; c++)
        if (at[c] + 1 > need) need = at[c] + 1;
    for (;;) {
        if ((rc = csv_next(text, len, &pos, &line, &r, path, err)) < 0) goto out;
        if (rc == 0) break;
        if (blank_record(&r)) continue;
        if (r.n < need) {
            rc = st_error_set(err, ST_EINVAL, path, NULL, "%d fields, the header needs %d", r.n, need);
            if (err) err->line = r.line;
            goto out;
        }
        if (d->npoints == cap) {
            cap = cap ? 2 * cap : 64;
            st_plot_point *p = realloc(d->points, (size_t)cap * sizeof *p);
            if (!p) {
                rc = oom(err);
                goto out;
            }
            d->points = p;
        }
        st_plot_point *p = &d->points[d->npoints];
        memset(p, 0, sizeof *p);
        d->npoints++;
        for (int c = C_MEASURED; c <= C_PREDICTED; c++) {
            double v;
            const char *s = r.f[at[c]];
            /* iteration times in seconds, bounded so that every error, ratio and padded axis the chart prints is
             * finite (a measured 1e-302 against a predicted 35716 made an error of inf %: the plot fuzz target) */
            if (csv_number(s, &v) || !(v >= ST_PLOT_SECONDS_MIN && v <= ST_PLOT_SECONDS_MAX)) {
                rc = st_error_set(err, ST_EINVAL, path, cols[c],
                                  "expected a positive number of seconds from %g to %g, got '%s'", ST_PLOT_SECONDS_MIN,
                                  ST_PLOT_SECONDS_MAX, s);
                if (err) err->line = r.line;
                goto out;
            }
            if (c == C_MEASURED)
                p->measured = v;
            else
                p->predicted = v;
        }
        if (!(p->name = dup(r.f[at[C_NAME]])) || !(p->set = dup(at[C_SET] >= 0 ? r.f[at[C_SET]] : ""))) {
            rc = oom(err);
            goto out;
        }
    }
    rc = 0;
    if (d->npoints == 0) rc = st_error_set(err, ST_EINVAL, path, NULL, "no rows after the header: nothing to plot");
out:
    csv_clear(&r);
    free(r.f);
    free(text);
    return rc;
}

/* ------------------------------------------------------------ entry */

int st_plot_load(st_plot_kind kind, const char *path, st_plot_data **out, st_error *err) {
    int rc = 0;
    json_t *root = NULL;
    st_plot_data *d = calloc(1, sizeof *d);

    *out = NULL;
    if (!d) return oom(err);
    d->kind = kind;
    d->gpu_memory_gib = d->tokens = NAN;
    if (!(d->source = dup(path ? path : ""))) {
        rc = oom(err);
        goto out;
    }
    if (kind == ST_PLOT_ACCURACY) {
        if (!(d->subject = dup(""))) rc = oom(err);
        if (!rc) rc = load_csv(path, d, err);
        goto out;
    }
    if ((rc = kind == ST_PLOT_TIMELINE ? st_trace_load(path, &root, err) : st__json_load_file(path, &root, err)))
        goto out;
    if (!(d->subject = json_is_object(root) ? subject_of(root) : dup(""))) {
        rc = oom(err);
        goto out;
    }
    if (kind != ST_PLOT_TIMELINE && !json_is_object(root)) {
        rc = st_error_set(err, ST_EINVAL, path, NULL, "expected a JSON object (%s)", needs[kind]);
        goto out;
    }
    switch (kind) {
    case ST_PLOT_STRATEGIES: rc = load_plans(root, d, path, err); break;
    case ST_PLOT_BREAKDOWN: rc = load_breakdown(root, d, path, err); break;
    case ST_PLOT_MEMORY: rc = load_memory(root, d, path, err); break;
    case ST_PLOT_TIMELINE: rc = load_trace(root, d, path, err); break;
    case ST_PLOT_SCALING:
    case ST_PLOT_HARDWARE: rc = load_results(root, d, path, err); break;
    default: rc = st_error_set(err, ST_EINTERNAL, NULL, NULL, "unknown plot kind %d", (int)kind); break;
    }
out:
    json_decref(root);
    if (rc) {
        st_plot_data_free(d);
        return rc;
    }
    *out = d;
    return 0;
}
