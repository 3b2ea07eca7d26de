/* cmd_compare.c: `strata compare`: the best plan of one model on each of several clusters and GPU
 * counts, ranked by the time to train a token budget, with the cost of doing so when prices are
 * given. The work is in search/compare.c (st_compare_run); this file parses the lists, prints the
 * table (or the JSON of src/report/compare_io.c) and picks the exit status: 0 when at least one row has
 * a plan, 1 when none has (the table is still printed), 2 for bad input. */
#include "src/cli/cli.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char help_text[] =
    "usage: strata compare --model M --clusters C1,C2,... [--gpus N1,N2,...] [--gbs B] [--seq S] [--dtype D]\n"
    "                      [--tokens T] [--price-per-gpu-hour P1,P2,...] [--profile F] [--json]\n"
    "                      [--energy] [--power-fraction F] [--node-watts W] [--pue P] [--price-per-kwh C]\n"
    "\n"
    "For each cluster and each GPU count, the best plan (as `strata plan` would rank it first) and\n"
    "what it means for a training run: ranked by the time to train T tokens, fastest first.\n"
    "\n"
    "  --clusters C,...  presets (see strata clusters) or cluster JSON files\n"
    "  --gpus N,...      GPU counts to try on every cluster (default: each cluster's own size;\n"
    "                    sizes a preset to N / 8 nodes)\n"
    "  --gbs B           global batch in sequences (default 1536, GPT-3 175B's batch)\n"
    "  --seq S           sequence length (default: the model's seq_len)\n"
    "  --dtype D         bf16 (default), fp16, fp8, mxfp8, nvfp4, fp32\n"
    "  --tokens T        tokens to train on: 3e11, 300000000000, 300B, 15T (K M B T = 10^3 10^6 10^9\n"
    "                    10^12); default 300B, the GPT-3 training run (Brown et al. 2020)\n"
    "  --price-per-gpu-hour P,...\n"
    "                    one price per cluster, in --clusters order (currency units per GPU-hour):\n"
    "                    adds the cost to train (hours x GPUs x price) and tokens per currency unit\n"
    "  --energy          adds power, energy and its cost per row (implied by the four options below):\n"
    "                    power = (GPUs x TDP x F + host nodes x W) x P at the wall; MWh to train T\n"
    "                    tokens; tokens per joule; energy cost and total cost (GPU-hours + energy)\n"
    "  --power-fraction F  average GPU power as a fraction of TDP, as measured (default 1: TDP, an\n"
    "                    upper bound; training runs near 0.7-0.9 of it)\n"
    "  --node-watts W    a host node's power besides its GPUs (default 575 W per GPU of the node:\n"
    "                    DGX H100's 10.2 kW maximum less its 8 x 700 W GPUs)\n"
    "  --pue P           data-center power usage effectiveness (default 1.2)\n"
    "  --price-per-kwh C currency units per kWh: adds the energy cost (a cloud GPU-hour price usually\n"
    "                    includes power; give this for owned hardware)\n"
    "  --profile F       calibration profile (file or shipped name, strata profiles): as measured on\n"
    "                    the clusters with the profile's GPU, scaled by peak ratio on the others\n"
    "  --json            one JSON object: {\"model\", \"tokens\", \"results\": [...], ...}\n"
    "\n"
    "Columns: time_s is one iteration, mem_GiB the peak of the busiest stage, headroom_GiB the GPU\n"
    "memory left, days the time to train T tokens. A cluster where nothing fits is listed last.\n"
    "\n"
    "Exit status: 0 success, 1 no plan fits on any cluster, 2 bad input.\n";


/* Splits the comma-separated value of --opt into *items (pointers into *buf, new; free *buf).
 * Empty items and more than ST_COMPARE_MAX_LIST are usage errors naming the option. */
static int split_list(const char *opt, const char *s, char **buf, const char **items, int *n, st_error *err) {
    *n = 0;
    if (!(*buf = strdup(s))) return st_error_set(err, ST_ENOMEM, NULL, NULL, "out of memory");
    for (char *p = *buf;;) {
        char *comma = strchr(p, ',');
        if (comma) *comma = '\0';
        if (!*p) return st_error_set(err, ST_EUSAGE, NULL, NULL, "option '--%s': empty item in '%s'", opt, s);
        if (*n == ST_COMPARE_MAX_LIST)
            return st_error_set(err, ST_EUSAGE, NULL, NULL, "option '--%s': more than %d items", opt,
                                ST_COMPARE_MAX_LIST);
        items[(*n)++] = p;
        if (!comma) return 0;
        p = comma + 1;
    }
}

static int parse_price(const char *s, double *out, st_error *err) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end || errno || !isfinite(v) || !(v > 0))
        return st_error_set(err, ST_EUSAGE, NULL, NULL, "option '--price-per-gpu-hour': expected a price > 0, got '%s'",
                            s);
    *out = v;
    return 0;
}

/* --OPT's number in [lo, hi] (lo excluded when open_lo) */
static int parse_num(const char *opt, const char *s, double lo, double hi, int open_lo, double *out, st_error *err) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end || errno || !isfinite(v) || v < lo || (open_lo && v == lo) || v > hi)
        return st_error_set(err, ST_EUSAGE, NULL, NULL, "option '--%s': expected a number %s %g and <= %g, got '%s'",
                            opt, open_lo ? ">" : ">=", lo, hi, s);
    *out = v;
    return 0;
}

/* --energy and its options: *on when any is given */
static int parse_energy(int flag, const char *const args[4], st_compare_energy *e, int *on, st_error *err) {
    static const char *const opts[4] = {"power-fraction", "node-watts", "pue", "price-per-kwh"};
    static const double lo[4] = {0, 0, 1, 0}, hi[4] = {1, 1e6, 10, 1e6};
    static const int open_lo[4] = {1, 0, 0, 1};
    double *dst[4] = {&e->power_fraction, &e->node_watts, &e->pue, &e->price_per_kwh};
    int rc;
    st_compare_energy_init(e);
    *on = flag;
    for (int i = 0; i < 4; i++) {
        if (!args[i]) continue;
        if ((rc = parse_num(opts[i], args[i], lo[i], hi[i], open_lo[i], dst[i], err))) return rc;
        *on = 1;
    }
    return 0;
}

/* 3e11 -> "300B": the header's reading of the token budget */
static void format_tokens(double t, char *buf, size_t n) {
    static const struct {
        double v;
        const char *s;
    } units[] = {{1e12, "T"}, {1e9, "B"}, {1e6, "M"}, {1e3, "K"}};
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
        if (t >= units[i].v) {
            snprintf(buf, n, "%.4g%s", t / units[i].v, units[i].s);
            return;
        }
    snprintf(buf, n, "%.0f", t);
}

/* The comma-separated lists of compare (pointers into the buffers, which they own). */
typedef struct lists {
    const char *clusters[ST_COMPARE_MAX_LIST];
    int64_t gpus[ST_COMPARE_MAX_LIST];
    double prices[ST_COMPARE_MAX_LIST];
    int nclusters, ngpus, nprices;
    char *clusters_buf, *gpus_buf, *prices_buf;
} lists;

static void lists_destroy(lists *l) {
    free(l->clusters_buf);
    free(l->gpus_buf);
    free(l->prices_buf);
}

/* --clusters, --gpus and --price-per-gpu-hour, in that order; one price per cluster */
static int parse_lists(const char *clusters_arg, const char *gpus_arg, const char *prices_arg, lists *l,
                       st_error *err) {
    const char *items[ST_COMPARE_MAX_LIST];
    int rc;
    if ((rc = split_list("clusters", clusters_arg, &l->clusters_buf, l->clusters, &l->nclusters, err))) return rc;
    if (gpus_arg) {
        if ((rc = split_list("gpus", gpus_arg, &l->gpus_buf, items, &l->ngpus, err))) return rc;
        for (int i = 0; i < l->ngpus; i++)
            if ((rc = st_cli_int("gpus", items[i], 1, ST_MAX_GPUS, &l->gpus[i], err))) return rc;
    }
    if (prices_arg) {
        if ((rc = split_list("price-per-gpu-hour", prices_arg, &l->prices_buf, items, &l->nprices, err))) return rc;
        if (l->nprices != l->nclusters)
            return st_error_set(err, ST_EUSAGE, NULL, NULL,
                                "option '--price-per-gpu-hour': %d price%s for %d cluster%s (one per cluster, in "
                                "--clusters order)",
                                l->nprices, l->nprices == 1 ? "" : "s", l->nclusters, l->nclusters == 1 ? "" : "s");
        for (int i = 0; i < l->nprices; i++)
            if ((rc = parse_price(items[i], &l->prices[i], err))) return rc;
    }
    return 0;
}

/* the header (and the profile's reach), the ranked table, each row's plan, the totals */
static void print_compare(FILE *mem, const st_model *m, const st_search_opts *so, double tokens, const st_profile *prof,
                          const char *profile_arg, const st_compare_row *rows, int nrows, int priced,
                          const st_compare_energy *en) {
    const double GiB = 1073741824.0;
    char tok[32];
    format_tokens(tokens, tok, sizeof tok);
    fprintf(mem, "model %s (%.1fB parameters), gbs %lld, seq %lld, %s, training on %s tokens\n", m->name,
            st_model_params(m) / 1e9, (long long)so->gbs, (long long)(so->seq > 0 ? so->seq : m->seq_len),
            st_dtype_name(so->dtype), tok);
    if (prof) {
        int measured = 0;
        for (int i = 0; i < nrows; i++) measured |= rows[i].profiled == 1;
        fprintf(mem, "profile %s", profile_arg);
        if (measured) fprintf(mem, ": as measured on the %s rows", st_profile_gpu(prof));
        for (int i = 0; i < nrows; i++) { /* one line per GPU type it was scaled to */
            int seen = rows[i].profiled != 2;
            for (int j = 0; j < i && !seen; j++)
                seen = rows[j].profiled == 2 && !strcmp(rows[j].cluster.gpu.name, rows[i].cluster.gpu.name);
            if (!seen) fprintf(mem, "\n  %s", rows[i].profile_note);
        }
        fputc('\n', mem);
    }
    if (en) {
        char node[64];
        if (en->node_watts >= 0)
            snprintf(node, sizeof node, "%.0f W", en->node_watts);
        else
            snprintf(node, sizeof node, "%.0f W per GPU", ST_COMPARE_NODE_W_PER_GPU);
        fprintf(mem, "energy: GPUs at %.2f of TDP, host nodes %s besides their GPUs, PUE %.2f", en->power_fraction,
                node, en->pue);
        if (en->price_per_kwh > 0) fprintf(mem, ", %g per kWh", en->price_per_kwh);
        fputc('\n', mem);
    }
    fputc('\n', mem);
    int wc = 7, wg = 3, wr = 4;
    for (int i = 0; i < nrows; i++) {
        int a = (int)strlen(rows[i].cluster.name), b = (int)strlen(rows[i].cluster.gpu.name);
        if (a > wc) wc = a;
        if (b > wg) wg = b;
    }
    if (nrows >= 1000) wr = 5;
    fprintf(mem, "%*s %-*s %-*s %6s %9s %10s %6s %8s %12s %9s", wr, "rank", wc, "cluster", wg, "gpu", "gpus", "time_s",
            "tokens/s", "MFU%", "mem_GiB", "headroom_GiB", "days");
    if (priced) fprintf(mem, " %13s %12s", "cost", "tokens/$");
    if (en) fprintf(mem, " %8s %9s %9s", "kW", "MWh", "tokens/J");
    if (en && en->price_per_kwh > 0) fprintf(mem, " %12s %13s", "energy_cost", "total_cost");
    fputc('\n', mem);
    uint64_t evaluated = 0;
    double search_time_s = 0;
    for (int i = 0; i < nrows; i++) {
        const st_compare_row *r = &rows[i];
        const st_estimate *e = &r->best.est;
        evaluated += r->evaluated;
        search_time_s += r->search_time_s;
        fprintf(mem, "%*d %-*s %-*s %6lld ", wr, i + 1, wc, r->cluster.name, wg, r->cluster.gpu.name,
                (long long)r->gpus);
        if (r->fits)
            fprintf(mem, "%9.3f %10.0f %6.1f %8.1f %12.1f %9.2f", e->iteration_time_s, e->tokens_per_s, 100 * e->mfu,
                    e->memory_peak_bytes / GiB, r->headroom_bytes / GiB, r->time_to_train_days);
        else
            fprintf(mem, "%9s %10s %6s %8s %12s %9s", "-", "-", "-", "-", "-", "-");
        if (priced && r->fits) fprintf(mem, " %13.0f %12.0f", r->cost_to_train, r->tokens_per_dollar);
        if (priced && !r->fits) fprintf(mem, " %13s %12s", "-", "-");
        if (en && r->fits) fprintf(mem, " %8.1f %9.1f %9.2f", r->power_w / 1e3, r->energy_mwh, r->tokens_per_joule);
        if (en && !r->fits) fprintf(mem, " %8s %9s %9s", "-", "-", "-");
        if (en && en->price_per_kwh > 0 && r->fits) fprintf(mem, " %12.0f %13.0f", r->energy_cost, r->total_cost);
        if (en && en->price_per_kwh > 0 && !r->fits) fprintf(mem, " %12s %13s", "-", "-");
        fputc('\n', mem);
    }
    fputc('\n', mem);
    for (int i = 0; i < nrows; i++) {
        const st_compare_row *r = &rows[i];
        fprintf(mem, "%d. %s x %lld: ", i + 1, r->cluster.name, (long long)r->gpus);
        if (r->fits) {
            char spec[512];
            st_plan_format_spec(&r->best.plan, spec, sizeof spec);
            fprintf(mem, "%s\n", spec);
        } else {
            fprintf(mem, "no plan fits (%llu configurations evaluated, none fits in %.1f GiB)\n",
                    (unsigned long long)r->evaluated, r->cluster.gpu.memory_bytes / GiB);
        }
    }
    fprintf(mem, "\nevaluated %llu configurations on %d cluster size%s in %.3f s\n", (unsigned long long)evaluated,
            nrows, nrows == 1 ? "" : "s", search_time_s);
    if (!rows[0].fits) fprintf(mem, "no plan fits on any of the clusters\n");
}

int st_cmd_compare(int argc, char **argv, st_error *err) {
    st_cli_args a;
    const char *clusters_arg = NULL, *gpus_arg = NULL, *tokens_arg = NULL, *prices_arg = NULL;
    const char *energy_args[4] = {NULL, NULL, NULL, NULL};
    int rc, energy = 0, energy_flag = 0;
    st_compare_energy en;
    /* --gpus is a list here: each cluster at each count */
    const st_cli_opt own[] = {{"clusters", &clusters_arg, NULL},
                              {"gpus", &gpus_arg, NULL},
                              {"tokens", &tokens_arg, NULL},
                              {"price-per-gpu-hour", &prices_arg, NULL},
                              {"energy", NULL, &energy_flag},
                              {"power-fraction", &energy_args[0], NULL},
                              {"node-watts", &energy_args[1], NULL},
                              {"pue", &energy_args[2], NULL},
                              {"price-per-kwh", &energy_args[3], NULL},
                              {NULL, NULL, NULL}};
    const unsigned take = ST_CLI_OPT_MODEL | ST_CLI_OPT_GBS | ST_CLI_OPT_SEQ | ST_CLI_OPT_DTYPE | ST_CLI_OPT_PROFILE |
                          ST_CLI_OPT_JSON;
    const unsigned want = ST_CLI_MODEL | ST_CLI_PROFILE; /* the clusters are resolved below, each at each count */
    lists l = {0};
    st_cli_inputs in = {0};
    st_cli_text text = {0};
    st_compare_row *rows = NULL;
    int nrows = 0;
    st_cluster *resolved = NULL;
    st_search_opts so;
    double tokens = ST_COMPARE_DEFAULT_TOKENS;

    if ((rc = st_cli_parse(argc, argv, take, own, &a, NULL, help_text, err)) || a.help) goto out;
    if ((rc = st_cli_require(err, "--model", a.model, "--clusters", clusters_arg, (const char *)NULL))) goto out;
    st_search_opts_init(&so);
    so.gbs = ST_CLI_DEFAULT_GBS;
    if ((rc = parse_lists(clusters_arg, gpus_arg, prices_arg, &l, err))) goto out;
    if ((rc = parse_energy(energy_flag, energy_args, &en, &energy, err))) goto out;
    if ((rc = st_cli_batch(&a, &so.gbs, &so.seq, err)) || (rc = st_cli_dtype(&a, &so.dtype, err))) goto out;
    if (tokens_arg && st_compare_parse_tokens(tokens_arg, &tokens)) {
        rc = st_error_set(err, ST_EUSAGE, NULL, NULL,
                          "option '--tokens': expected a count >= 1 such as 3e11, 300000000000, 300B or 15T, got '%s'",
                          tokens_arg);
        goto out;
    }
    if ((rc = st_cli_inputs_resolve(&a, want, &in, err))) goto out;

    /* every cluster at every GPU count, resolved before any search: bad input fails fast */
    int per_cluster = l.ngpus > 0 ? l.ngpus : 1;
    if (!(resolved = calloc((size_t)(l.nclusters * per_cluster), sizeof *resolved))) {
        rc = st_error_set(err, ST_ENOMEM, NULL, NULL, "out of memory");
        goto out;
    }
    for (int i = 0; i < l.nclusters; i++)
        for (int j = 0; j < per_cluster; j++)
            if ((rc = st_cluster_resolve(l.clusters[i], l.ngpus > 0 ? l.gpus[j] : 0, &resolved[i * per_cluster + j],
                                         err)))
                goto out;
    if ((rc = st_compare_run(&in.model, resolved, l.nclusters, l.ngpus, prices_arg ? l.prices : NULL, &so, tokens,
                             in.profile, &rows, &nrows, err)))
        goto out;
    for (int i = 0; energy && i < nrows; i++)
        if ((rc = st_compare_row_energy(&rows[i], tokens, &en, err))) goto out;
    int any_fits = rows[0].fits; /* ranked: the rows that fit come first */

    if (a.json) {
        if ((rc = st_out_compare_json(stdout, &in.model, &so, tokens, rows, nrows, err))) goto out;
        rc = any_fits ? 0 : 1;
        goto out;
    }
    if ((rc = st_cli_text_open(&text, err))) goto out;
    print_compare(text.f, &in.model, &so, tokens, in.profile, a.profile, rows, nrows, prices_arg != NULL,
                  energy ? &en : NULL);
    st_cli_text_print(&text);
    rc = any_fits ? 0 : 1;
out:
    st_cli_text_destroy(&text);
    lists_destroy(&l);
    free(resolved);
    st_compare_rows_free(rows);
    st_cli_inputs_destroy(&in);
    return rc;
}
