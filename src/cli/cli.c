/* cli.c: option parsing shared by the subcommands: "--name value", "--name=value" and flags;
 * anything else is a usage error naming the option. */
#include "src/cli/cli.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int st_cli_parse(int argc, char **argv, const st_cli_opt *opts, const char **positional, st_error *err) {
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "--", 2) != 0 || !a[2]) {
            if (positional && !*positional && a[0] != '-') {
                *positional = a;
                continue;
            }
            return st_error_set(err, ST_EUSAGE, NULL, NULL, "unexpected argument '%s' (see --help)", a);
        }
        const char *name = a + 2, *eq = strchr(name, '=');
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

void st_cli_report(const char *cmd, const st_error *err) {
    char buf[1024];
    st_error_format(err, buf, sizeof buf);
    fprintf(stderr, "strata %s: %s\n", cmd, buf);
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
