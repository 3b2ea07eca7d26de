/* compare.c: `strata compare` without the I/O: the best plan of each cluster at each GPU count,
 * and what it costs to train a model on it.
 *
 * Each row is one st_search_enumerate call with top = 1 (the one cost path; a row's plan is the
 * one `strata plan` would rank first for the same cluster, GPU count, gbs, seq and dtype). The
 * derived numbers are plain arithmetic on that plan's estimate, kept in one pure function so the
 * tests can check them by hand:
 *   time to train  = tokens / tokens_per_s                      (s; / 3600 h; / 86400 days)
 *   cost to train  = time_h x gpus x price_per_gpu_hour         (currency units)
 *   tokens/dollar  = tokens_per_s x 3600 / (gpus x price)       (= tokens / cost)
 *   headroom       = GPU memory - peak memory of the busiest stage
 * Energy (when asked for; st_compare_row_energy):
 *   power          = (gpus x TDP x power_fraction + host nodes x node_watts) x PUE   (W at the wall)
 *   energy         = power x time to train                      (J; / 3.6e9 MWh)
 *   energy cost    = MWh x 1000 x price_per_kwh;  total cost = GPU-hour cost + energy cost
 *   tokens/joule   = tokens / energy
 * A job on part of a host node pays that part of its node power (gpus / gpus_per_node nodes). A cluster
 * of node groups (issue 19) adds up its groups, each at its GPU's TDP and its own node size; its
 * price per GPU-hour is the one the user gives for the cluster (the mean over its GPUs).
 * The default of 300B tokens is what every GPT-3 model trained on (Brown et al. 2020, section 2.2).
 *
 * Rows where nothing fits are kept (fits = 0) and ranked last: "this cluster cannot train the
 * model at this size" is an answer, not an error. Invariants: rows are ranked fits first, then by
 * time to train, ties by input order (deterministic); every cluster argument is resolved before
 * the first search, so a typo in the last cluster fails at once. */
#include "search/search.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

int st_compare_parse_tokens(const char *s, double *out) {
    if (!s) return ST_EINVAL;
    size_t n = strlen(s);
    if (n == 0) return ST_EINVAL;
    double mult = 1;
    switch (toupper((unsigned char)s[n - 1])) {
    case 'K': mult = 1e3; break;
    case 'M': mult = 1e6; break;
    case 'B': mult = 1e9; break;
    case 'T': mult = 1e12; break;
    default: break;
    }
    if (mult != 1) n--;
    char buf[64];
    if (n == 0 || n >= sizeof buf) return ST_EINVAL;
    memcpy(buf, s, n);
    buf[n] = '\0';
    /* a plain decimal only: strtod alone would also take spaces, a sign, hex, inf and nan */
    if (!isdigit((unsigned char)buf[0]) && buf[0] != '.') return ST_EINVAL;
    for (size_t i = 0; i < n; i++)
        if (!isdigit((unsigned char)buf[i]) && !strchr(".eE+-", buf[i])) return ST_EINVAL;
    char *end;
    errno = 0;
    double v = strtod(buf, &end);
    if (end == buf || *end || errno == ERANGE) return ST_EINVAL;
    v *= mult;
    if (!isfinite(v) || !(v >= 1)) return ST_EINVAL;
    *out = v;
    return 0;
}

void st_compare_row_derive(st_compare_row *r, double tokens) {
    r->time_to_train_s = r->time_to_train_h = r->time_to_train_days = 0;
    r->cost_to_train = r->tokens_per_dollar = r->headroom_bytes = 0;
    double tokens_per_s = r->best.est.tokens_per_s;
    if (!r->fits || !(tokens_per_s > 0)) return;
    r->time_to_train_s = tokens / tokens_per_s;
    r->time_to_train_h = r->time_to_train_s / 3600;
    r->time_to_train_days = r->time_to_train_s / 86400;
    r->headroom_bytes = r->cluster.gpu.memory_bytes - r->best.est.memory_peak_bytes;
    if (r->has_price && r->price_per_gpu_hour > 0 && r->gpus > 0) {
        r->cost_to_train = r->time_to_train_h * (double)r->gpus * r->price_per_gpu_hour;
        r->tokens_per_dollar = tokens_per_s * 3600 / ((double)r->gpus * r->price_per_gpu_hour);
    }
}

void st_compare_energy_init(st_compare_energy *e) {
    e->power_fraction = 1;
    e->node_watts = -1;
    e->pue = ST_COMPARE_DEFAULT_PUE;
    e->price_per_kwh = 0;
}

int st_compare_row_energy(st_compare_row *r, double tokens, const st_compare_energy *e, st_error *err) {
    r->has_energy = 1;
    r->power_w = r->energy_mwh = r->energy_cost = r->total_cost = r->tokens_per_joule = 0;
    if (!(r->cluster.gpu.tdp_watts > 0))
        return st_error_set(err, ST_EINVAL, r->cluster.source, "gpu.tdp_watts",
                            "GPU '%s' of cluster '%s' has no TDP: give gpu.tdp_watts for energy", r->cluster.gpu.name,
                            r->cluster.name);
    if (!r->fits) return 0;
    double gpus = (double)r->gpus, per = (double)r->cluster.gpus_per_node;
    double node_w = e->node_watts >= 0 ? e->node_watts : ST_COMPARE_NODE_W_PER_GPU * per;
    double gpu_w = gpus * r->cluster.gpu.tdp_watts, host_w = gpus / per * node_w;
    if (r->cluster.ngroups) { /* node groups: each group's GPUs at their own TDP, in nodes of their own size */
        double left = gpus;
        gpu_w = host_w = 0;
        for (int g = 0; g < r->cluster.ngroups && left > 0; g++) {
            const st_node_group *x = &r->cluster.groups[g];
            double n = (double)(x->nodes * x->gpus_per_node), gpn = (double)x->gpus_per_node;
            char key[48];
            if (n > left) n = left;
            if (!(x->gpu.tdp_watts > 0))
                return st_error_set(err, ST_EINVAL, r->cluster.source,
                                    (snprintf(key, sizeof key, "groups[%d].gpu.tdp_watts", g), key),
                                    "GPU '%s' of cluster '%s' has no TDP: give gpu.tdp_watts for energy", x->gpu.name,
                                    r->cluster.name);
            gpu_w += n * x->gpu.tdp_watts;
            host_w += n / gpn * (e->node_watts >= 0 ? e->node_watts : ST_COMPARE_NODE_W_PER_GPU * gpn);
            left -= n;
        }
    }
    r->power_w = (gpu_w * e->power_fraction + host_w) * e->pue;
    double joules = r->power_w * r->time_to_train_s;
    r->energy_mwh = joules / 3.6e9;
    r->energy_cost = r->energy_mwh * 1000 * e->price_per_kwh;
    r->total_cost = r->cost_to_train + r->energy_cost;
    r->tokens_per_joule = joules > 0 ? tokens / joules : 0;
    return 0;
}

static int row_cmp(const void *a, const void *b) {
    const st_compare_row *x = a, *y = b;
    if (x->fits != y->fits) return x->fits ? -1 : 1;
    if (x->fits && x->time_to_train_s != y->time_to_train_s) return x->time_to_train_s < y->time_to_train_s ? -1 : 1;
    return (x->order > y->order) - (x->order < y->order);
}

void st_compare_rows_sort(st_compare_row *rows, int n) {
    if (n > 1) qsort(rows, (size_t)n, sizeof *rows, row_cmp);
}

void st_compare_rows_free(st_compare_row *rows) { free(rows); }

/* The profile each row's GPU gets (issue 6, "Prediction across hardware"): the profile as measured
 * for its own GPU, a copy scaled by st_profile_retarget for another, one copy per GPU type. */
typedef struct profile_cache {
    int n;
    char gpu[ST_COMPARE_MAX_LIST][48];
    st_profile *p[ST_COMPARE_MAX_LIST];
    char note[ST_COMPARE_MAX_LIST][320];
} profile_cache;

static int profile_for(const st_profile *prof, st_compare_row *row, profile_cache *pc, st_error *err) {
    const char *g = row->cluster.gpu.name;
    if (!strcmp(st_profile_gpu(prof), g)) {
        row->profiled = 1;
        return 0;
    }
    int i = 0;
    while (i < pc->n && strcmp(pc->gpu[i], g)) i++;
    if (i == pc->n) { /* at most one GPU type per cluster, so at most ST_COMPARE_MAX_LIST */
        st_profile *c = st_profile_dup(prof);
        if (!c) return st_error_set(err, ST_ENOMEM, NULL, NULL, "out of memory");
        int rc = st_profile_retarget(c, &row->cluster.gpu, pc->note[i], sizeof pc->note[i], err);
        if (rc < 0) {
            st_profile_free(c);
            return rc;
        }
        snprintf(pc->gpu[i], sizeof pc->gpu[i], "%s", g);
        pc->p[i] = c;
        pc->n++;
    }
    row->profiled = 2;
    snprintf(row->profile_note, sizeof row->profile_note, "%s", pc->note[i]);
    return 0;
}

static const st_profile *row_profile(const st_profile *prof, const st_compare_row *row, const profile_cache *pc) {
    if (row->profiled == 1) return prof;
    for (int i = 0; row->profiled == 2 && i < pc->n; i++)
        if (!strcmp(pc->gpu[i], row->cluster.gpu.name)) return pc->p[i];
    return NULL;
}

int st_compare_check_price(double price, st_error *err) {
    if (isfinite(price) && price > 0) return 0;
    return st_error_set(err, ST_EINVAL, NULL, "price_per_gpu_hour", "must be a finite number > 0 (got %g)", price);
}

int st_compare_run(const st_model *m, const st_cluster *clusters, int nclusters, int ngpus, const double *prices,
                   const st_search_opts *o, double tokens, const st_profile *prof, st_compare_row **rows, int *nrows,
                   st_error *err) {
    st_compare_row *r = NULL;
    int rc = 0, n = 0;
    profile_cache cache; /* ~24 KiB */
    cache.n = 0;
    *rows = NULL;
    *nrows = 0;

    if (nclusters < 1 || nclusters > ST_COMPARE_MAX_LIST) {
        rc = st_error_set(err, ST_EUSAGE, NULL, "clusters", "1 to %d clusters, got %d", ST_COMPARE_MAX_LIST, nclusters);
        goto out;
    }
    if (ngpus < 0 || ngpus > ST_COMPARE_MAX_LIST) {
        rc = st_error_set(err, ST_EUSAGE, NULL, "gpus", "0 to %d GPU counts, got %d", ST_COMPARE_MAX_LIST, ngpus);
        goto out;
    }
    if (!isfinite(tokens) || !(tokens >= 1)) {
        rc = st_error_set(err, ST_EINVAL, NULL, "tokens", "must be a finite count >= 1 (got %g)", tokens);
        goto out;
    }
    int per_cluster = ngpus > 0 ? ngpus : 1;
    n = nclusters * per_cluster;
    if (!(r = calloc((size_t)n, sizeof *r))) {
        rc = st_error_set(err, ST_ENOMEM, NULL, NULL, "out of memory");
        goto out;
    }

    /* check everything first: bad input fails before the first search */
    for (int i = 0; i < nclusters; i++) {
        if (prices && (rc = st_compare_check_price(prices[i], err))) goto out;
        for (int j = 0; j < per_cluster; j++) {
            st_compare_row *row = &r[i * per_cluster + j];
            row->cluster = clusters[i * per_cluster + j];
            row->gpus = st_cluster_gpus(&row->cluster);
            row->cluster_index = i;
            row->order = i * per_cluster + j;
            row->has_price = prices != NULL;
            row->price_per_gpu_hour = prices ? prices[i] : 0;
            if (prof && (rc = profile_for(prof, row, &cache, err))) goto out;
        }
    }

    for (int k = 0; k < n; k++) {
        st_compare_row *row = &r[k];
        st_search_opts so = *o;
        so.top = 1;
        so.gpus = row->gpus;
        st_search_result res;
        st_error serr;
        st_error_clear(&serr);
        int src = st_search_enumerate(m, &row->cluster, row_profile(prof, row, &cache), &so, &res, &serr);
        row->evaluated = res.evaluated;
        row->search_time_s = res.search_time_s;
        if (src == 0) {
            row->fits = 1;
            row->best = res.plans[0];
        }
        st_search_result_destroy(&res);
        if (src && src != ST_ENOPLAN) {
            /* not "nothing fits" but a question this cluster cannot answer (e.g. fp8 on an A100) */
            if (err) {
                *err = serr;
                size_t len = strlen(err->text);
                snprintf(err->text + len, sizeof err->text - len, " (cluster '%s', %lld GPUs)", row->cluster.name,
                         (long long)row->gpus);
            }
            rc = src;
            goto out;
        }
        st_compare_row_derive(row, tokens);
    }
    st_compare_rows_sort(r, n);
out:
    for (int i = 0; i < cache.n; i++) st_profile_free(cache.p[i]);
    if (rc) {
        free(r);
    } else {
        *rows = r;
        *nrows = n;
    }
    return rc;
}
