/* cmd_validate.c: `strata validate`: predicted against measured iteration times for the points
 * of a validation bundle (src/io/validation_io.c), one row per point, then the summary per set
 * and Kendall's tau-b per rank group (src/report/validation.c).
 *
 * Each point runs as `strata estimate` (or `strata sim`) would run it with --model, --cluster and
 * --gpus set to its own: the cluster sized to the point's GPUs, the plan parsed and finalized, the
 * estimate priced (and, for sim, lowered and simulated), so each predicted time is the one those
 * commands print for the same inputs. A plan strata refuses is a row ("rejected: ..."), as is one
 * that does not fit: those are findings about the model or the data, and the report is printed
 * with exit 0. Bad input (the bundle itself) is one line naming the file and the key, exit 2.
 */
#include "src/cli/cli.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define GIB 1073741824.0

static const char help_text[] =
    "usage: strata validate --points FILE [--settings TSV] [--command estimate|sim] [--set strict|loose|all]\n"
    "                       [--csv FILE] [--json]\n"
    "\n"
    "Compares strata's predicted iteration times with measured ones: for each point of a validation\n"
    "bundle (published runs with the model, cluster, GPU count and plan each used, in strata's formats;\n"
    "../shared/validation/modern_public.json is one), predicts the point as `strata estimate` (or\n"
    "`strata sim`) does with its model, cluster and --gpus, and prints measured, predicted and the error;\n"
    "then per set and overall the rows compared, mean absolute error, max |error| and the rows that do\n"
    "not fit, and Kendall's tau-b between measured and predicted within each rank group of 3 or more\n"
    "compared rows. Lines starting with SUMMARY and TAU are for scripts (scripts/validate.sh).\n"
    "\n"
    "  --points FILE  the bundle: {\"models\": {KEY: model}, \"clusters\": {KEY: cluster}, \"points\": [{\"id\",\n"
    "                 \"set\", \"model\", \"cluster\", \"gpus\", \"plan\", \"measured_s\", \"rank_group\", ...}]}\n"
    "  --settings TSV settings the points' plans leave out but their sources state, one line per point:\n"
    "                 ID<TAB>KEYS<TAB>SOURCE, KEYS replacing or adding plan keys (scripts/modern_settings.tsv)\n"
    "  --command C    estimate (the analytical model, default) or sim (the discrete-event simulator)\n"
    "  --set S        strict (every setting published), loose (some assumed) or all (default)\n"
    "  --csv FILE     also write the compared rows as name,measured,predicted,set (strata plot accuracy)\n"
    "  --json         one JSON object: rows, summary per set, rank groups\n"
    "\n"
    "Exit status: 0 the report was printed (rows that do not fit or are rejected included), 2 bad input.\n";

/* The plan for a table: the layout and the batch, and recompute where on. */
static void plan_label(const st_plan *p, char *buf, size_t n) {
    int w = snprintf(buf, n, "tp=%d pp=%d dp=%d", p->tp, p->pp, p->dp);
    const struct {
        const char *key;
        int v;
    } more[] = {{"cp", p->cp}, {"ep", p->ep}, {"vp", p->vp}};
    for (size_t i = 0; i < sizeof more / sizeof more[0]; i++)
        if (more[i].v > 1 && w > 0 && (size_t)w < n)
            w += snprintf(buf + w, n - (size_t)w, " %s=%d", more[i].key, more[i].v);
    if (w > 0 && (size_t)w < n)
        w += snprintf(buf + w, n - (size_t)w, " mbs=%lld gbs=%lld", (long long)p->mbs, (long long)p->gbs);
    if (p->recompute != ST_REC_NONE && w > 0 && (size_t)w < n)
        snprintf(buf + w, n - (size_t)w, " recompute=%s", st_recompute_name(p->recompute));
}

/* A row that did not get a predicted time: its status and strata's reason. */
static void refuse(st_vrow *row, st_vrow_status status, const st_error *why) {
    row->status = status;
    st_error_format(why, row->message, sizeof row->message);
}

/* One point into row. Returns 0 (the row says what became of it) or ST_ENOMEM. */
static int run_point(const st_validation *b, const st_validation_point *pt, int sim, st_vrow *row, st_error *err) {
    st_model m = b->models[pt->model];
    st_cluster c = b->clusters[pt->cluster];
    st_plan p;
    st_estimate e;
    st_error why;
    st_cost_ctx *ctx = NULL;
    st_lowered low = {0};
    st_sim_result res = {0};
    int rc = 0;

    memset(row, 0, sizeof *row);
    row->pt = pt;
    row->predicted_s = row->peak_gib = NAN;
    row->gpu_gib = c.gpu.memory_bytes / GIB;
    snprintf(row->label, sizeof row->label, "-");
    st_error_clear(&why);
    st_plan_defaults(&p);
    /* the inputs as `strata estimate --gpus N --plan SPEC` resolves them (src/cli/cli.c), except that
     * the plan must use the point's GPUs, all of them: that is what was measured */
    if (st_cluster_size(&c, pt->gpus, NULL, &why) || st_plan_parse_spec(pt->plan, &p, &why) ||
        st_plan_finalize(&p, &m, &c, pt->gpus, NULL, &why)) {
        refuse(row, ST_VROW_REJECTED, &why);
        goto out;
    }
    st_plan_format_spec(&p, row->spec, sizeof row->spec);
    plan_label(&p, row->label, sizeof row->label);
    if (!(ctx = st_cost_ctx_new(&m, &c, NULL))) {
        rc = st_error_set(err, ST_ENOMEM, NULL, NULL, "out of memory");
        goto out;
    }
    if ((rc = st_cost_estimate(ctx, &p, &e))) {
        st_error_set(&why, rc, NULL, "plan", "the plan cannot be priced");
        refuse(row, ST_VROW_REJECTED, &why);
        rc = 0;
        goto out;
    }
    row->predicted_s = e.iteration_time_s;
    row->peak_gib = e.memory_peak_bytes / GIB;
    row->status = e.fits ? ST_VROW_OK : ST_VROW_NOFIT;
    if (sim) {
        if (st_lower(ctx, &p, &low, &why)) {
            refuse(row, ST_VROW_ERROR, &why);
            goto out;
        }
        /* no memory limit: the run goes to its end, so the peak is the whole iteration's; over the
         * GPU's memory it is what `strata sim` reports as out of memory */
        if (st_sim_run(&low, 0, NULL, &res, &why)) {
            refuse(row, ST_VROW_ERROR, &why);
            goto out;
        }
        double peak = 0;
        for (int r = 0; r < res.nranks; r++)
            if (res.ranks[r].memory_peak_bytes > peak) peak = res.ranks[r].memory_peak_bytes;
        row->predicted_s = res.iteration_time_s;
        row->peak_gib = peak / GIB;
        row->status = peak <= c.gpu.memory_bytes ? ST_VROW_OK : ST_VROW_NOFIT;
    }
    if (!isfinite(row->predicted_s) || row->predicted_s <= 0) {
        st_error_set(&why, ST_EINVAL, NULL, NULL, "strata predicted %g s", row->predicted_s);
        refuse(row, ST_VROW_ERROR, &why);
        row->predicted_s = NAN;
    } else if (row->status == ST_VROW_NOFIT) {
        if (row->peak_gib > row->gpu_gib)
            snprintf(row->message, sizeof row->message, "%.1f GiB > %.1f GiB", row->peak_gib, row->gpu_gib);
        else /* only the estimate checks the host: offloaded state over a node's memory */
            snprintf(row->message, sizeof row->message, "host memory %.1f GiB per node > %.1f GiB",
                     e.host_memory_bytes / GIB, c.host_memory_bytes / GIB);
    }
out:
    st_sim_result_destroy(&res);
    st_lowered_destroy(&low);
    st_cost_ctx_free(ctx);
    return rc;
}

int st_cmd_validate(int argc, char **argv, st_error *err) {
    st_cli_args a;
    const char *points = NULL, *command = NULL, *set = NULL, *csv = NULL, *settings = NULL;
    const st_cli_opt own[] = {{"points", &points, NULL}, {"settings", &settings, NULL},
                              {"command", &command, NULL},
                              {"set", &set, NULL},
                              {"csv", &csv, NULL},
                              {NULL, NULL, NULL}};
    st_validation *b = NULL;
    st_vreport r = {0};
    st_cli_text text = {0};
    int rc, sim = 0;

    if ((rc = st_cli_parse(argc, argv, ST_CLI_OPT_JSON, own, &a, NULL, help_text, err)) || a.help) goto out;
    if ((rc = st_cli_require(err, "--points", points, (const char *)NULL))) goto out;
    r.command = "estimate";
    if (command) {
        if (strcmp(command, "estimate") && strcmp(command, "sim")) {
            rc = st_error_set(err, ST_EUSAGE, NULL, NULL, "option '--command': '%s' is not one of estimate, sim",
                              command);
            goto out;
        }
        sim = !strcmp(command, "sim");
        r.command = sim ? "sim" : "estimate";
    }
    r.all_sets = 1;
    if (set && strcmp(set, "all")) {
        if (st_vset_parse(set, &r.set)) {
            rc = st_error_set(err, ST_EUSAGE, NULL, NULL, "option '--set': '%s' is not one of strict, loose, all", set);
            goto out;
        }
        r.all_sets = 0;
    }
    if ((rc = st_validation_load(points, &b, err))) goto out;
    if (settings && (rc = st_validation_amend(b, settings, err))) goto out;
    r.b = b;
    if (!(r.rows = calloc((size_t)b->npoints, sizeof *r.rows))) {
        rc = st_error_set(err, ST_ENOMEM, NULL, NULL, "out of memory");
        goto out;
    }
    for (int i = 0; i < b->npoints; i++) {
        if (!r.all_sets && b->points[i].set != r.set) continue;
        if ((rc = run_point(b, &b->points[i], sim, &r.rows[r.nrows], err))) goto out;
        r.nrows++;
    }
    if ((rc = st_vreport_summarize(&r, err))) goto out;
    if (csv && (rc = st_vreport_write_csv(&r, csv, err))) goto out;
    if (a.json) {
        rc = st_out_validation_json(stdout, &r, err);
        goto out;
    }
    if ((rc = st_cli_text_open(&text, err)) || (rc = st_vreport_print(text.f, &r, err))) goto out;
    st_cli_text_print(&text);
out:
    st_cli_text_destroy(&text);
    st_vreport_destroy(&r);
    st_validation_free(b);
    return rc;
}
