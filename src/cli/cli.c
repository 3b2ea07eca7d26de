/* cli.c: what the subcommands share. Option parsing: "--name value", "--name=value" and flags;
 * anything else is a usage error naming the option. The shared options mean the same, and are
 * refused with the same words, in every command that takes them. The inputs (model or graph,
 * cluster, plan, profile) are checked and then resolved in one order, so that of several bad
 * inputs every command names the same one first: options before files, then model, graph,
 * cluster, profile, plan. */
#include "src/cli/cli.h"

#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* the shared options and the most a command adds of its own */
#define MAX_OPTS 32

/* o = --help, the shared options `take` names, then own's, ended by a NULL name */
static void gather_opts(st_cli_args *a, unsigned take, const st_cli_opt *own, st_cli_opt *o) {
    const struct {
        unsigned bit;
        st_cli_opt opt;
    } shared[] = {{ST_CLI_OPT_MODEL, {"model", &a->model, NULL}},
                  {ST_CLI_OPT_GRAPH, {"graph", &a->graph, NULL}},
                  {ST_CLI_OPT_CLUSTER, {"cluster", &a->cluster, NULL}},
                  {ST_CLI_OPT_GPUS, {"gpus", &a->gpus, NULL}},
                  {ST_CLI_OPT_PLAN, {"plan", &a->plan, NULL}},
                  {ST_CLI_OPT_PROFILE, {"profile", &a->profile, NULL}},
                  {ST_CLI_OPT_OUT, {"out", &a->out, NULL}},
                  {ST_CLI_OPT_GBS, {"gbs", &a->gbs, NULL}},
                  {ST_CLI_OPT_SEQ, {"seq", &a->seq, NULL}},
                  {ST_CLI_OPT_DTYPE, {"dtype", &a->dtype, NULL}},
                  {ST_CLI_OPT_GPU, {"gpu", &a->gpu, NULL}},
                  {ST_CLI_OPT_JSON, {"json", NULL, &a->json}}};
    int n = 0;
    o[n++] = (st_cli_opt){"help", NULL, &a->help};
    for (size_t i = 0; i < sizeof shared / sizeof shared[0]; i++)
        if (take & shared[i].bit) o[n++] = shared[i].opt;
    for (const st_cli_opt *q = own; q && q->name; q++) {
        assert(n < MAX_OPTS - 1);
        o[n++] = *q;
    }
    o[n] = (st_cli_opt){NULL, NULL, NULL};
}

int st_cli_parse(int argc, char **argv, unsigned take, const st_cli_opt *own, st_cli_args *a,
                 const char **positional, const char *help_text, st_error *err) {
    st_cli_opt opts[MAX_OPTS];
    memset(a, 0, sizeof *a);
    gather_opts(a, take, own, opts);
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strncmp(arg, "--", 2) != 0 || !arg[2]) {
            if (positional && !*positional && arg[0] != '-') {
                *positional = arg;
                continue;
            }
            return st_error_set(err, ST_EUSAGE, NULL, NULL, "unexpected argument '%s' (see --help)", arg);
        }
        const char *name = arg + 2, *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        const st_cli_opt *o = NULL;
        for (const st_cli_opt *q = opts; q->name; q++)
            if (strlen(q->name) == len && strncmp(q->name, name, len) == 0) o = q;
        if (!o) return st_error_set(err, ST_EUSAGE, NULL, NULL, "unknown option '--%.*s' (see --help)", (int)len, name);
        if (o->flag) {
            if (eq) return st_error_set(err, ST_EUSAGE, NULL, NULL, "option '--%s' takes no value", o->name);
            *o->flag = 1;
            continue;
        }
        if (eq) {
            *o->value = eq + 1;
        } else {
            if (i + 1 >= argc) return st_error_set(err, ST_EUSAGE, NULL, NULL, "option '--%s' needs a value", o->name);
            *o->value = argv[++i];
        }
        if (!**o->value) return st_error_set(err, ST_EUSAGE, NULL, NULL, "option '--%s' has an empty value", o->name);
    }
    if (a->out) {
        int rc = st_cli_out_check("out", a->out, a, NULL, NULL, err);
        if (rc) return rc;
    }
    if (a->help) fputs(help_text, stdout);
    return 0;
}

int st_cli_int(const char *opt, const char *s, int64_t lo, int64_t hi, int64_t *out, st_error *err) {
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (end == s || *end || errno)
        return st_error_set(err, ST_EUSAGE, NULL, NULL, "option '--%s': expected an integer, got '%s'", opt, s);
    if (v < lo || v > hi)
        return st_error_set(err, ST_EUSAGE, NULL, NULL, "option '--%s': %lld is out of range %lld..%lld", opt, v,
                            (long long)lo, (long long)hi);
    *out = v;
    return 0;
}

/* the n options names[] (values[i] NULL when missing) */
static int require(int n, const char *const *names, const char *const *values, st_error *err) {
    int missing = 0;
    for (int i = 0; i < n; i++) missing |= !values[i];
    if (!missing) return 0;
    char list[256] = "";
    size_t off = 0;
    for (int i = 0; i < n && off < sizeof list; i++)
        off += (size_t)snprintf(list + off, sizeof list - off, "%s%s", i == 0 ? "" : i == n - 1 ? " and " : ", ",
                                names[i]);
    return st_error_set(err, ST_EUSAGE, NULL, NULL, "%s %s required (see --help)", list, n == 1 ? "is" : "are");
}

int st_cli_require(st_error *err, ...) {
    const char *names[8], *values[8];
    int n = 0;
    va_list ap;
    va_start(ap, err);
    for (const char *name; (name = va_arg(ap, const char *));) {
        assert(n < 8);
        names[n] = name;
        values[n++] = va_arg(ap, const char *);
    }
    va_end(ap);
    return require(n, names, values, err);
}

int st_cli_batch(const st_cli_args *a, int64_t *gbs, int64_t *seq, st_error *err) {
    int rc;
    if (a->gbs && (rc = st_cli_int("gbs", a->gbs, 1, 1 << 30, gbs, err))) return rc;
    if (a->seq && (rc = st_cli_int("seq", a->seq, 1, ST_MAX_SEQ, seq, err))) return rc;
    return 0;
}

int st_cli_dtype(const st_cli_args *a, st_dtype *dt, st_error *err) {
    if (a->dtype && st_dtype_parse(a->dtype, dt))
        return st_error_set(err, ST_EUSAGE, NULL, NULL,
                            "option '--dtype': '%s' is not one of " ST_DTYPE_NAMES, a->dtype);
    return 0;
}

int st_cli_gpu_name(const st_cli_args *a, st_error *err) {
    /* it becomes st_gpu.name of the clusters the profile applies to, and a JSON string */
    const size_t cap = sizeof ((st_gpu *)NULL)->name;
    int ok = strlen(a->gpu) < cap;
    for (const char *s = a->gpu; ok && *s; s++) ok = *s > ' ' && *s < 127 && *s != '"' && *s != '\\';
    if (!ok)
        return st_error_set(err, ST_EUSAGE, NULL, NULL,
                            "option '--gpu': '%s' is not a GPU name (1 to %zu printable characters, no spaces)",
                            a->gpu, cap - 1);
    return 0;
}

void st_cli_cluster_what(const st_cluster *c, int64_t gpus, char *buf, size_t n) {
    if (c->ngroups) { /* node groups of different GPUs: each group's */
        char groups[360];
        st_cluster_describe(c, groups, sizeof groups);
        snprintf(buf, n, "%lld GPUs: %s", (long long)gpus, groups);
    } else {
        snprintf(buf, n, "%lld x %s", (long long)gpus, c->gpu.name);
    }
}

void st_cli_gpu_note(const char *cmd, const st_cli_args *a) {
    st_gpu g;
    if (a->gpu && st_gpu_preset(a->gpu, &g))
        st_cli_note(cmd,
                    "'%s' is not a GPU preset: the profile applies to clusters whose gpu.name is '%s' and cannot be "
                    "scaled to other GPUs",
                    a->gpu, a->gpu);
}

int st_cli_out_check(const char *opt, const char *out, const st_cli_args *a, const char *extra_opt, const char *extra,
                     st_error *err) {
    struct stat so, si;
    if (!strcmp(out, "-") || stat(out, &so) != 0) return 0; /* standard output, or a new file */
    const char *names[] = {"model", "graph", "cluster", "plan", "profile", extra_opt};
    const char *paths[] = {a->model, a->graph, a->cluster, a->plan, a->profile, extra};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (paths[i] && names[i] && stat(paths[i], &si) == 0 && si.st_dev == so.st_dev && si.st_ino == so.st_ino)
            return st_error_set(err, ST_EUSAGE, NULL, NULL,
                                "option '--%s': '%s' is the --%s file ('%s'): writing would destroy it; name another file",
                                opt, out, names[i], paths[i]);
    return 0;
}

void st_cli_report(const char *cmd, const st_error *err) {
    char buf[1024];
    st_error_format(err, buf, sizeof buf);
    fprintf(stderr, "strata %s: %s\n", cmd, buf);
}

void st_cli_note(const char *cmd, const char *fmt, ...) {
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    fprintf(stderr, "strata %s: note: %s\n", cmd, st_text_clean(buf)); /* names and paths echoed in it */
}

int st_cli_inputs_check(const st_cli_args *a, unsigned want, st_cli_inputs *in, st_error *err) {
    const char *names[3], *values[3];
    int n = 0;
    if (a->graph && !(want & ST_CLI_GRAPH))
        return st_error_set(err, ST_EUSAGE, NULL, NULL,
                            "--graph goes with an operator-level plan (strata plan --search ilp --out)");
    if (want & ST_CLI_MODEL) {
        names[n] = want & ST_CLI_GRAPH ? "--model (or --graph)" : "--model";
        values[n++] = a->model ? a->model : a->graph;
    }
    if (want & ST_CLI_CLUSTER) names[n] = "--cluster", values[n++] = a->cluster;
    if (want & (ST_CLI_PLAN | ST_CLI_ILP_PLAN)) names[n] = "--plan", values[n++] = a->plan;
    int rc = require(n, names, values, err);
    if (rc) return rc;
    if (a->model && a->graph) return st_error_set(err, ST_EUSAGE, NULL, NULL, "give --model or --graph, not both");
    in->gpus = 0;
    if ((want & ST_CLI_CLUSTER) && a->gpus && (rc = st_cli_int("gpus", a->gpus, 1, ST_MAX_GPUS, &in->gpus, err)))
        return rc;
    return 0;
}

int st_cli_inputs_resolve(const st_cli_args *a, unsigned want, st_cli_inputs *in, st_error *err) {
    int rc;
    if ((want & ST_CLI_MODEL) && a->model) {
        if ((rc = st_model_resolve(a->model, &in->model, err))) return rc;
        in->have_model = 1;
    }
    if ((want & ST_CLI_GRAPH) && a->graph) {
        if ((rc = st_cli_graph_load(a->graph, &in->graph, err))) return rc;
        in->have_graph = 1;
    }
    if ((want & ST_CLI_CLUSTER) && (rc = st_cluster_resolve(a->cluster, in->gpus, &in->cluster, err))) return rc;
    if ((want & ST_CLI_PROFILE) && a->profile) {
        if ((rc = st_profile_open(a->profile, &in->profile, err))) return rc;
        /* a profile measured on another GPU type is scaled to this cluster's (said once the input is good) */
        if ((want & ST_CLI_CLUSTER) && (rc = st_profile_retarget(in->profile, &in->cluster.gpu, in->profile_note,
                                                                 sizeof in->profile_note, err)) < 0)
            return rc;
    }
    if (want & ST_CLI_PLAN) {
        if (!(in->plan = malloc(sizeof *in->plan))) return st_error_set(err, ST_ENOMEM, NULL, NULL, "out of memory");
        st_plan_defaults(in->plan);
        if ((rc = st_plan_resolve(a->plan, in->plan, err))) return rc;
        in->plan->heads_whole = a->heads_whole;
        /* a plan file's errors name the file (st_plan_resolve left it in err) */
        if ((rc = st_plan_finalize(in->plan, &in->model, &in->cluster, 0, err->file[0] ? err->file : NULL, err)))
            return rc;
        if (want & ST_CLI_ORIGIN)
            st_plan_origin_note(in->plan, &in->model, &in->cluster, in->origin_note, sizeof in->origin_note);
    }
    return 0;
}

void st_cli_inputs_notes(const st_cli_inputs *in, const char *cmd) {
    if (in->have_model && in->model.note[0]) st_cli_note(cmd, "%s: %s", in->model.name, in->model.note);
    if (in->origin_note[0]) st_cli_note(cmd, "%s", in->origin_note);
    if (in->profile_note[0]) st_cli_note(cmd, "%s", in->profile_note);
}

void st_cli_inputs_destroy(st_cli_inputs *in) {
    if (in->have_graph) st_graph_free(&in->graph);
    in->have_graph = 0;
    st_profile_free(in->profile);
    in->profile = NULL;
    free(in->plan);
    in->plan = NULL;
}

int st_cli_text_open(st_cli_text *t, st_error *err) {
    if (!(t->f = open_memstream(&t->buf, &t->len))) return st_error_set(err, ST_ENOMEM, NULL, NULL, "out of memory");
    return 0;
}

void st_cli_text_close(st_cli_text *t) {
    if (t->f) fclose(t->f);
    t->f = NULL;
}

void st_cli_text_print(st_cli_text *t) {
    st_cli_text_close(t);
    fwrite(t->buf, 1, t->len, stdout);
}

void st_cli_text_destroy(st_cli_text *t) {
    st_cli_text_close(t);
    free(t->buf);
    t->buf = NULL;
    t->len = 0;
}

void st_print_breakdown(FILE *f, const st_breakdown *b, const char *indent) {
    const struct {
        const char *name;
        double v;
    } rows[] = {{"compute", b->compute_s},     {"recompute", b->recompute_s}, {"tp communication", b->tp_comm_s},
                {"cp communication", b->cp_comm_s}, {"ep communication", b->ep_comm_s},
                {"pp communication", b->pp_comm_s}, {"pipeline bubble", b->bubble_s},
                {"dp communication", b->dp_comm_s}, {"optimizer", b->optimizer_s}, {"offload", b->offload_s}};
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        fprintf(f, "%s%-18s %10.3f s\n", indent, rows[i].name, rows[i].v);
}

int st_cli_graph_load(const char *path, st_graph *g, st_error *err) {
    int rc = st_graph_load(path, g, err);
    if (!rc && (rc = st_graph_check(g, path, err))) st_graph_free(g);
    return rc;
}
