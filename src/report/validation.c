/* validation.c: the report of `strata validate` (src/cli/cmd_validate.c): measured against
 * predicted iteration times of a validation bundle's points, as a text table, a JSON document and
 * the accuracy CSV of `strata plot accuracy`; the summary per set (rows compared, mean absolute
 * error, max |error|, rows that did not fit) and Kendall's tau-b per rank group.
 *
 * Definitions, the same as scripts/validate.sh's for SC'21 and vTrain, so the eras compare:
 * - error_% = (predicted - measured) / measured * 100; MAE and max |error| over the compared rows
 *   (status OK) only: a row that does not fit, that strata rejects or that failed is counted apart.
 * - tau-b with ties (Kendall 1945; Agresti, "Analysis of Ordinal Categorical Data", 2010, sec. 7.1):
 *   (C - D) / sqrt((N0 - Tx) (N0 - Ty)), over the compared rows of a rank group, when it has at
 *   least ST_VGROUP_MIN of them; a pair tied in both counts in Tx and in Ty.
 *
 * Output is deterministic: rows in the bundle's order, groups in order of first appearance, the
 * max |error| row the first of equal ones. JSON has no NaN: numbers that do not exist are null.
 */
#include "src/report/report_json.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int oom(st_error *err) { return st_error_set(err, ST_ENOMEM, NULL, NULL, "out of memory"); }

static int sgn(double v) { return v > 0 ? 1 : v < 0 ? -1 : 0; }

double st_tau_b(const double *x, const double *y, int n, st_tau *out) {
    memset(out, 0, sizeof *out);
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++) {
            int sx = sgn(x[i] - x[j]), sy = sgn(y[i] - y[j]);
            out->pairs++;
            if (sx == 0) out->tied_x++;
            if (sy == 0) out->tied_y++;
            if (sx * sy > 0)
                out->concordant++;
            else if (sx * sy < 0)
                out->discordant++;
        }
    double den = (double)(out->pairs - out->tied_x) * (double)(out->pairs - out->tied_y);
    out->tau_b = n >= 2 && den > 0 ? (double)(out->concordant - out->discordant) / sqrt(den) : NAN;
    return out->tau_b;
}

static double error_pct(const st_vrow *r) { return (r->predicted_s - r->pt->measured_s) / r->pt->measured_s * 100; }

static void count(st_vsummary *s, const st_vrow *rows, int i, double *sum) {
    const st_vrow *r = &rows[i];
    s->rows++;
    switch (r->status) {
    case ST_VROW_OK: {
        double e = fabs(error_pct(r));
        s->compared++;
        *sum += e;
        if (s->max_row < 0 || e > s->max_abs_pct) s->max_abs_pct = e, s->max_row = i;
        break;
    }
    case ST_VROW_NOFIT: s->nofit++; break;
    case ST_VROW_REJECTED: s->rejected++; break;
    case ST_VROW_ERROR: s->errors++; break;
    }
}

int st_vreport_summarize(st_vreport *r, st_error *err) {
    st_vsummary *all[3] = {&r->sets[ST_VSET_STRICT], &r->sets[ST_VSET_LOOSE], &r->all};
    double sum[3] = {0, 0, 0};
    double *x = NULL, *y = NULL;
    int rc = 0;

    for (int k = 0; k < 3; k++) {
        memset(all[k], 0, sizeof *all[k]);
        all[k]->max_row = -1;
    }
    for (int i = 0; i < r->nrows; i++) {
        count(all[r->rows[i].pt->set], r->rows, i, &sum[r->rows[i].pt->set]);
        count(&r->all, r->rows, i, &sum[2]);
    }
    for (int k = 0; k < 3; k++) {
        all[k]->mae_pct = all[k]->compared ? sum[k] / all[k]->compared : NAN;
        if (!all[k]->compared) all[k]->max_abs_pct = NAN;
    }

    free(r->groups);
    r->groups = NULL;
    r->ngroups = r->ungrouped = 0;
    if (r->nrows && (!(r->groups = calloc((size_t)r->nrows, sizeof *r->groups)) ||
                     !(x = malloc((size_t)r->nrows * sizeof *x)) || !(y = malloc((size_t)r->nrows * sizeof *y)))) {
        rc = oom(err);
        goto out;
    }
    for (int i = 0; i < r->nrows; i++) {
        const char *g = r->rows[i].pt->rank_group;
        int k = 0;
        if (!g) {
            r->ungrouped++;
            continue;
        }
        while (k < r->ngroups && strcmp(r->groups[k].name, g)) k++;
        if (k == r->ngroups) r->groups[r->ngroups++].name = g;
    }
    for (int k = 0; k < r->ngroups; k++) {
        st_vgroup *g = &r->groups[k];
        for (int i = 0; i < r->nrows; i++) {
            const st_vrow *row = &r->rows[i];
            if (!row->pt->rank_group || strcmp(row->pt->rank_group, g->name)) continue;
            g->rows++;
            if (row->status != ST_VROW_OK) continue;
            x[g->compared] = row->pt->measured_s;
            y[g->compared++] = row->predicted_s;
        }
        st_tau_b(x, y, g->compared, &g->tau);
        if (g->compared < ST_VGROUP_MIN) g->tau.tau_b = NAN;
    }
out:
    free(x);
    free(y);
    return rc;
}

void st_vreport_destroy(st_vreport *r) {
    free(r->rows);
    free(r->groups);
    r->rows = NULL;
    r->groups = NULL;
    r->nrows = r->ngroups = 0;
}

/* ------------------------------------------------------------ text */

static const char *model_name(const st_vreport *r, const st_vrow *row) { return r->b->models[row->pt->model].name; }

static void print_row(FILE *f, const st_vreport *r, const st_vrow *row, const int *w) {
    fprintf(f, "%-*s  %-6s  %-*s  %-*s  %6lld  %-*s  %10.3f", w[0], row->pt->id, st_vset_name(row->pt->set), w[1],
            row->pt->rank_group ? row->pt->rank_group : "-", w[2], model_name(r, row), (long long)row->pt->gpus, w[3],
            row->label, row->pt->measured_s);
    switch (row->status) {
    case ST_VROW_OK: fprintf(f, "  %11.3f  %+7.1f\n", row->predicted_s, error_pct(row)); break;
    case ST_VROW_NOFIT: fprintf(f, "  does not fit (%s)\n", row->message); break;
    case ST_VROW_REJECTED: fprintf(f, "  rejected: %s\n", row->message); break;
    case ST_VROW_ERROR: fprintf(f, "  error: %s\n", row->message); break;
    }
}

static void print_summary_row(FILE *f, const st_vreport *r, const char *name, const st_vsummary *s) {
    fprintf(f, "%-7s %6d %9d %9d %7d %7d", name, s->rows, s->compared, s->rejected, s->nofit, s->errors);
    if (s->compared)
        fprintf(f, " %7.1f %13.1f  (%s)\n", s->mae_pct, s->max_abs_pct, r->rows[s->max_row].pt->id);
    else
        fprintf(f, " %7s %13s\n", "-", "-");
}

/* "nan" or the number, as scripts/validate.sh writes its SUMMARY and TAU lines */
static void print_num(FILE *f, const char *fmt, double v) {
    if (isfinite(v))
        fprintf(f, fmt, v);
    else
        fputs("nan", f);
}

static void print_machine_summary(FILE *f, const char *name, const st_vsummary *s) {
    fprintf(f, "SUMMARY %s rows=%d compared=%d rejected=%d nofit=%d errors=%d mae_pct=", name, s->rows, s->compared,
            s->rejected, s->nofit, s->errors);
    print_num(f, "%.3f", s->mae_pct);
    fputs(" max_abs_pct=", f);
    print_num(f, "%.3f", s->max_abs_pct);
    fputc('\n', f);
}

/* text after `lead`, broken at white space into lines of at most `width` characters (a longer word
 * gets a line of its own), continued under the text */
static void print_wrapped(FILE *f, const char *lead, const char *text, int width) {
    int indent = (int)strlen(lead), col = indent;
    fputs(lead, f);
    while (*text) {
        text += strspn(text, " \t\r\n");
        int len = (int)strcspn(text, " \t\r\n");
        if (!len) break;
        if (col > indent && col + 1 + len > width) {
            fprintf(f, "\n%*s", indent, "");
            col = indent;
        }
        if (col > indent) {
            fputc(' ', f);
            col++;
        }
        fwrite(text, 1, (size_t)len, f);
        col += len;
        text += len;
    }
    fputc('\n', f);
}

int st_vreport_print(FILE *f, const st_vreport *r, st_error *err) {
    static const char *const heads[] = {"id", "group", "model", "plan"};
    int w[4], gw = 5;
    for (int k = 0; k < 4; k++) w[k] = (int)strlen(heads[k]);
    for (int i = 0; i < r->nrows; i++) {
        const st_vrow *row = &r->rows[i];
        const char *v[4] = {row->pt->id, row->pt->rank_group ? row->pt->rank_group : "-", model_name(r, row),
                            row->label};
        for (int k = 0; k < 4; k++)
            if ((int)strlen(v[k]) > w[k]) w[k] = (int)strlen(v[k]);
    }
    for (int k = 0; k < r->ngroups; k++)
        if ((int)strlen(r->groups[k].name) > gw) gw = (int)strlen(r->groups[k].name);

    fprintf(f, "strata validate: %d point%s of %s (set %s), predicted by strata %s\n", r->nrows,
            r->nrows == 1 ? "" : "s", r->b->file, r->all_sets ? "all" : st_vset_name(r->set), r->command);
    if (r->b->about) print_wrapped(f, "about:  ", r->b->about, 104);
    fprintf(f, "each:   the point's model and cluster from the file, the cluster sized to the point's GPUs, its plan\n"
               "        as written (it must use those GPUs); error = (predicted - measured) / measured\n"
               "plan:   tp pp dp, then cp ep vp where > 1, mbs gbs, recompute where on (--json has every key)\n");
    if (r->b->settings_file)
        fprintf(f, "settings: %s amended %d point%s' plans with settings their sources state (id, keys and\n"
                   "        source in that file; --json has each row's)\n",
                r->b->settings_file, r->b->amended, r->b->amended == 1 ? "" : "s");
    fputc('\n', f);
    fprintf(f, "%-*s  %-6s  %-*s  %-*s  %6s  %-*s  %10s  %11s  %7s\n", w[0], "id", "set", w[1], "group", w[2], "model",
            "gpus", w[3], "plan", "measured_s", "predicted_s", "error_%");
    for (int i = 0; i < r->nrows; i++) print_row(f, r, &r->rows[i], w);

    fprintf(f, "\n%-7s %6s %9s %9s %7s %7s %7s %13s\n", "set", "rows", "compared", "rejected", "no_fit", "errors",
            "MAE_%", "max_|error|_%");
    for (int s = ST_VSET_STRICT; s <= ST_VSET_LOOSE; s++)
        if (r->all_sets || r->set == (st_vset)s) print_summary_row(f, r, st_vset_name((st_vset)s), &r->sets[s]);
    if (r->all_sets) print_summary_row(f, r, "all", &r->all);

    fprintf(f, "\nKendall tau-b between measured and predicted iteration time, per rank group (%d or more compared "
               "rows):\n",
            ST_VGROUP_MIN);
    if (!r->ngroups) fprintf(f, "  no point names a rank group\n");
    for (int k = 0; k < r->ngroups; k++) {
        const st_vgroup *g = &r->groups[k];
        fprintf(f, "  %-*s  rows %3d, compared %3d: ", gw, g->name, g->rows, g->compared);
        if (isfinite(g->tau.tau_b))
            fprintf(f,
                    "tau-b %+.3f  (pairs %lld: concordant %lld, discordant %lld, tied measured %lld, tied predicted "
                    "%lld)\n",
                    g->tau.tau_b, (long long)g->tau.pairs, (long long)g->tau.concordant, (long long)g->tau.discordant,
                    (long long)g->tau.tied_x, (long long)g->tau.tied_y);
        else if (g->compared < ST_VGROUP_MIN)
            fprintf(f, "tau-b n/a (fewer than %d compared rows)\n", ST_VGROUP_MIN);
        else
            fprintf(f, "tau-b n/a (every pair tied)\n");
    }
    if (r->ungrouped) fprintf(f, "  (%d point%s in no rank group)\n", r->ungrouped, r->ungrouped == 1 ? "" : "s");

    fputc('\n', f);
    for (int s = ST_VSET_STRICT; s <= ST_VSET_LOOSE; s++)
        if (r->all_sets || r->set == (st_vset)s) print_machine_summary(f, st_vset_name((st_vset)s), &r->sets[s]);
    if (r->all_sets) print_machine_summary(f, "all", &r->all);
    for (int k = 0; k < r->ngroups; k++) {
        fprintf(f, "TAU group=%s rows=%d compared=%d tau_b=", r->groups[k].name, r->groups[k].rows,
                r->groups[k].compared);
        print_num(f, "%.4f", r->groups[k].tau.tau_b);
        fputc('\n', f);
    }
    if (ferror(f)) return st_error_set(err, ST_EIO, NULL, NULL, "cannot write the report");
    return 0;
}

/* ------------------------------------------------------------ JSON and CSV */

/* a number, or null where there is none (Jansson refuses NaN and infinities) */
static json_t *num_or_null(double v) { return isfinite(v) ? json_real(v) : json_null(); }
static json_t *str_or_null(const char *s) { return s ? json_string(s) : json_null(); }

static json_t *row_json(const st_vreport *r, const st_vrow *row) {
    static const char *const status[] = {"ok", "nofit", "rejected", "error"};
    const st_validation_point *pt = row->pt;
    int priced = row->status == ST_VROW_OK || row->status == ST_VROW_NOFIT;
    json_t *o = json_object();
    json_object_set_new(o, "id", json_string(pt->id));
    json_object_set_new(o, "set", json_string(st_vset_name(pt->set)));
    json_object_set_new(o, "rank_group", str_or_null(pt->rank_group));
    json_object_set_new(o, "model", json_string(r->b->model_keys[pt->model]));
    json_object_set_new(o, "model_name", json_string(r->b->models[pt->model].name));
    json_object_set_new(o, "cluster", json_string(r->b->cluster_keys[pt->cluster]));
    json_object_set_new(o, "cluster_name", json_string(r->b->clusters[pt->cluster].name));
    json_object_set_new(o, "gpus", json_integer((json_int_t)pt->gpus));
    json_object_set_new(o, "plan", json_string(pt->plan));
    json_object_set_new(o, "settings", str_or_null(pt->settings));
    json_object_set_new(o, "settings_source", str_or_null(pt->settings_source));
    json_object_set_new(o, "spec", row->spec[0] ? json_string(row->spec) : json_null());
    json_object_set_new(o, "measured_s", json_real(pt->measured_s));
    json_object_set_new(o, "status", json_string(status[row->status]));
    json_object_set_new(o, "predicted_s", num_or_null(priced ? row->predicted_s : NAN));
    json_object_set_new(o, "error_pct", num_or_null(row->status == ST_VROW_OK ? error_pct(row) : NAN));
    json_object_set_new(o, "memory_peak_gib", num_or_null(priced ? row->peak_gib : NAN));
    json_object_set_new(o, "gpu_memory_gib", json_real(row->gpu_gib));
    json_object_set_new(o, "fits", priced ? json_boolean(row->status == ST_VROW_OK) : json_null());
    json_object_set_new(o, "message", row->message[0] ? json_string(row->message) : json_null());
    json_object_set_new(o, "source", str_or_null(pt->source));
    json_object_set_new(o, "conversion", str_or_null(pt->conversion));
    json_object_set_new(o, "measured_metric", str_or_null(pt->measured_metric));
    json_object_set_new(o, "note", str_or_null(pt->note));
    return o;
}

static json_t *summary_json(const st_vreport *r, const st_vsummary *s) {
    return json_pack("{s:i, s:i, s:i, s:i, s:i, s:o, s:o, s:o}", "rows", s->rows, "compared", s->compared, "rejected",
                     s->rejected, "nofit", s->nofit, "errors", s->errors, "mae_pct", num_or_null(s->mae_pct),
                     "max_abs_pct", num_or_null(s->max_abs_pct), "max_abs_id",
                     s->max_row >= 0 ? json_string(r->rows[s->max_row].pt->id) : json_null());
}

int st_out_validation_json(FILE *f, const st_vreport *r, st_error *err) {
    json_t *o = json_object(), *rows = json_array(), *sum = json_object(), *groups = json_array();
    if (!o || !rows || !sum || !groups) {
        json_decref(o);
        json_decref(rows);
        json_decref(sum);
        json_decref(groups);
        return oom(err);
    }
    json_object_set_new(o, "file", json_string(r->b->file));
    json_object_set_new(o, "settings_file", str_or_null(r->b->settings_file));
    json_object_set_new(o, "about", str_or_null(r->b->about));
    json_object_set_new(o, "command", json_string(r->command));
    json_object_set_new(o, "set", json_string(r->all_sets ? "all" : st_vset_name(r->set)));
    for (int i = 0; i < r->nrows; i++) json_array_append_new(rows, row_json(r, &r->rows[i]));
    json_object_set_new(o, "rows", rows);
    for (int s = ST_VSET_STRICT; s <= ST_VSET_LOOSE; s++)
        if (r->all_sets || r->set == (st_vset)s)
            json_object_set_new(sum, st_vset_name((st_vset)s), summary_json(r, &r->sets[s]));
    if (r->all_sets) json_object_set_new(sum, "all", summary_json(r, &r->all));
    json_object_set_new(o, "summary", sum);
    for (int k = 0; k < r->ngroups; k++) {
        const st_vgroup *g = &r->groups[k];
        json_array_append_new(
            groups, json_pack("{s:s, s:i, s:i, s:o, s:I, s:I, s:I, s:I, s:I}", "name", g->name, "rows", g->rows,
                              "compared", g->compared, "tau_b", num_or_null(g->tau.tau_b), "pairs",
                              (json_int_t)g->tau.pairs, "concordant", (json_int_t)g->tau.concordant, "discordant",
                              (json_int_t)g->tau.discordant, "tied_measured", (json_int_t)g->tau.tied_x,
                              "tied_predicted", (json_int_t)g->tau.tied_y));
    }
    json_object_set_new(o, "rank_groups", groups);
    json_object_set_new(o, "ungrouped", json_integer(r->ungrouped));
    return st__json_print(f, o, err);
}

int st_vreport_write_csv(const st_vreport *r, const char *path, st_error *err) {
    char *text = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&text, &len);
    int rc;
    if (!mem) return oom(err);
    fputs("name,measured,predicted,set\n", mem);
    for (int i = 0; i < r->nrows; i++) {
        const st_vrow *row = &r->rows[i];
        if (row->status != ST_VROW_OK) continue;
        fputc('"', mem); /* RFC 4180: the name quoted, its quotes doubled */
        for (const char *c = row->pt->id; *c; c++) {
            if (*c == '"') fputc('"', mem);
            fputc(*c, mem);
        }
        fprintf(mem, "\",%.10g,%.10g,%s\n", row->pt->measured_s, row->predicted_s, st_vset_name(row->pt->set));
    }
    if (fclose(mem) != 0) {
        free(text);
        return oom(err);
    }
    rc = st__write_atomic(path, text, len, err);
    free(text);
    return rc;
}
