/* test_compare.c: search/compare.c against hand-computed oracles: the cost arithmetic of one row
 * (time, cost, tokens per dollar, headroom), the token-count parser (suffixes and what it must
 * refuse), the ranking (a faster cluster above a slower one; rows where nothing fits kept and
 * ranked last; ties in input order), each row's plan equal to what st_search_enumerate ranks first
 * (one cost path), and bad input rejected naming the key. */
#include "src/strata.h"
#include "suites.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define GIB 1073741824.0

/* ------------------------------------------------------------ arithmetic */

/* tokens_per_s 1e6 on 1024 GPUs at 2.0 per GPU-hour, 3.6e12 tokens: 3.6e6 s = 1000 h = 41.67 days;
 * cost 1000 h x 1024 x 2.0 = 2,048,000; tokens per unit 1e6 x 3600 / (1024 x 2) = 1,757,812.5 */
/* energy by hand: 64 GPUs of 1,000 W on 8 nodes of 8, 4,600 W each besides the GPUs, PUE 1.25, 100 h:
 * (64 kW + 36.8 kW) x 1.25 = 126 kW; x 100 h = 12.6 MWh; at 0.1 per kWh 1,260; tokens per joule */
START_TEST(test_energy_by_hand) {
    st_compare_row r;
    st_compare_energy e;
    st_error err;
    memset(&r, 0, sizeof r);
    r.fits = 1;
    r.gpus = 64;
    r.cluster.gpus_per_node = 8;
    r.cluster.gpu.tdp_watts = 1000;
    r.best.est.tokens_per_s = 1e6;
    r.has_price = 1;
    r.price_per_gpu_hour = 2;
    st_compare_row_derive(&r, 3.6e11); /* 100 h */
    st_compare_energy_init(&e);
    ck_assert_double_eq(e.power_fraction, 1);
    e.pue = 1.25, e.price_per_kwh = 0.1;
    ck_assert_int_eq(st_compare_row_energy(&r, 3.6e11, &e, &err), 0);
    ck_assert_double_eq_tol(r.power_w, 126000, 1e-6);
    ck_assert_double_eq_tol(r.energy_mwh, 12.6, 1e-9);
    ck_assert_double_eq_tol(r.energy_cost, 1260, 1e-6);
    ck_assert_double_eq_tol(r.total_cost, 64 * 100 * 2 + 1260, 1e-6);
    ck_assert_double_eq_tol(r.tokens_per_joule, 3.6e11 / (126000 * 3.6e5), 1e-12);
    /* a measured fraction and an explicit node power */
    e.power_fraction = 0.5, e.node_watts = 0, e.pue = 1;
    ck_assert_int_eq(st_compare_row_energy(&r, 3.6e11, &e, &err), 0);
    ck_assert_double_eq_tol(r.power_w, 32000, 1e-6);
    /* a GPU without a TDP is refused naming the key */
    r.cluster.gpu.tdp_watts = 0;
    ck_assert_int_eq(st_compare_row_energy(&r, 3.6e11, &e, &err), ST_EINVAL);
    ck_assert_str_eq(err.key, "gpu.tdp_watts");
}
END_TEST

START_TEST(test_derive_by_hand) {
    st_compare_row r;
    memset(&r, 0, sizeof r);
    r.fits = 1;
    r.gpus = 1024;
    r.has_price = 1;
    r.price_per_gpu_hour = 2.0;
    r.best.est.tokens_per_s = 1e6;
    r.best.est.memory_peak_bytes = 60 * GIB;
    r.cluster.gpu.memory_bytes = 80 * GIB;
    st_compare_row_derive(&r, 3.6e12);
    ck_assert_double_eq_tol(r.time_to_train_s, 3.6e6, 1e-6);
    ck_assert_double_eq_tol(r.time_to_train_h, 1000.0, 1e-9);
    ck_assert_double_eq_tol(r.time_to_train_days, 1000.0 / 24, 1e-9);
    ck_assert_double_eq_tol(r.cost_to_train, 2048000.0, 1e-6);
    ck_assert_double_eq_tol(r.tokens_per_dollar, 1757812.5, 1e-6);
    ck_assert_double_eq_tol(r.headroom_bytes, 20 * GIB, 1.0);
    /* tokens per unit is the token budget over the cost */
    ck_assert_double_eq_tol(r.tokens_per_dollar, 3.6e12 / r.cost_to_train, 1e-6);

    /* without a price: the times, no cost */
    r.has_price = 0;
    st_compare_row_derive(&r, 3.6e12);
    ck_assert_double_eq_tol(r.time_to_train_h, 1000.0, 1e-9);
    ck_assert_double_eq(r.cost_to_train, 0);
    ck_assert_double_eq(r.tokens_per_dollar, 0);

    /* half the price, twice the GPUs at the same throughput: the same cost, the same time */
    r.has_price = 1;
    r.gpus = 2048;
    r.price_per_gpu_hour = 1.0;
    st_compare_row_derive(&r, 3.6e12);
    ck_assert_double_eq_tol(r.cost_to_train, 2048000.0, 1e-6);

    /* nothing fits: nothing derived, whatever the estimate holds */
    r.fits = 0;
    st_compare_row_derive(&r, 3.6e12);
    ck_assert_double_eq(r.time_to_train_s, 0);
    ck_assert_double_eq(r.cost_to_train, 0);
    ck_assert_double_eq(r.headroom_bytes, 0);
}
END_TEST

/* ------------------------------------------------------------ tokens */

/* st_compare_run of cluster names (presets or files), resolved as strata compare resolves them */
static int compare_names(const st_model *m, const char *const *names, int nclusters, const int64_t *gpus, int ngpus,
                         const double *prices, const st_search_opts *o, double tokens, const st_profile *prof,
                         st_compare_row **rows, int *nrows, st_error *err) {
    int per = ngpus > 0 ? ngpus : 1, rc = 0;
    st_cluster *c = calloc((size_t)(nclusters > 0 ? nclusters * per : 1), sizeof *c);
    ck_assert_ptr_nonnull(c);
    *rows = NULL;
    *nrows = 0;
    for (int i = 0; !rc && i < nclusters && i < ST_COMPARE_MAX_LIST; i++)
        for (int j = 0; !rc && j < per; j++) rc = st_cluster_resolve(names[i], ngpus > 0 ? gpus[j] : 0, &c[i * per + j], err);
    if (!rc) rc = st_compare_run(m, c, nclusters, ngpus, prices, o, tokens, prof, rows, nrows, err);
    free(c);
    return rc;
}

static const struct {
    const char *s;
    double v;
} tokens_ok[] = {{"3e11", 3e11},  {"300000000000", 3e11}, {"300B", 3e11}, {"15T", 1.5e13}, {"15t", 1.5e13},
                 {"2.5M", 2.5e6}, {"40K", 4e4},           {"1", 1},       {"1.5e3K", 1.5e6}, {".5K", 500}};
static const char *const tokens_bad[] = {"",     "12X",  "-5",  "1e400", "B",       "inf", "nan",   "0x10", " 5",
                                         "5 ",   "+5",   "0",   "0.5",   "1e300T",  "1.5.5", "e5", "5BB",  "1e-400",
                                         "300G", "3e11 "};

START_TEST(test_tokens_ok) {
    double v = -1;
    ck_assert_msg(st_compare_parse_tokens(tokens_ok[_i].s, &v) == 0, "'%s' refused", tokens_ok[_i].s);
    ck_assert_msg(fabs(v - tokens_ok[_i].v) <= 1e-12 * tokens_ok[_i].v, "'%s' -> %g, expected %g", tokens_ok[_i].s, v,
                  tokens_ok[_i].v);
}
END_TEST

START_TEST(test_tokens_bad) {
    double v = 42;
    ck_assert_msg(st_compare_parse_tokens(tokens_bad[_i], &v) == ST_EINVAL, "'%s' accepted as %g", tokens_bad[_i], v);
    ck_assert_double_eq(v, 42); /* untouched */
}
END_TEST

/* ------------------------------------------------------------ ranking */

START_TEST(test_sort_order) {
    /* input order 0..5; expected: fitting rows by time (ties by order), then the rest by order */
    st_compare_row r[6];
    memset(r, 0, sizeof r);
    const int fits[6] = {0, 1, 1, 1, 0, 1};
    const double t[6] = {1, 5, 3, 5, 0.5, 4};
    for (int i = 0; i < 6; i++) r[i].order = i, r[i].fits = fits[i], r[i].time_to_train_s = t[i];
    st_compare_rows_sort(r, 6);
    const int want[6] = {2, 5, 1, 3, 0, 4};
    for (int i = 0; i < 6; i++) ck_assert_msg(r[i].order == want[i], "position %d: row %d, want %d", i, r[i].order, want[i]);
}
END_TEST

static void run_ok(const char *model, const char *const *clusters, int nclusters, const int64_t *gpus, int ngpus,
                   const double *prices, int64_t gbs, st_model *m, st_compare_row **rows, int *nrows) {
    st_error err;
    st_error_clear(&err);
    ck_assert_int_eq(st_model_preset(model, m), 0);
    st_search_opts o;
    st_search_opts_init(&o);
    o.gbs = gbs;
    int rc = compare_names(m, clusters, nclusters, gpus, ngpus, prices, &o, 3e11, NULL, rows, nrows, &err);
    ck_assert_msg(rc == 0, "rc %d: %s", rc, err.text);
    ck_assert_ptr_nonnull(*rows);
}

/* the best plan of one cluster, as `strata plan` finds it */
static void best_of(const st_model *m, const char *cluster, int64_t gpus, int64_t gbs, st_ranked *out) {
    st_cluster c;
    st_search_opts o;
    st_search_result res;
    ck_assert_int_eq(st_cluster_resolve(cluster, gpus, &c, NULL), 0);
    st_search_opts_init(&o);
    o.gbs = gbs;
    o.gpus = gpus;
    ck_assert_int_eq(st_search_enumerate(m, &c, NULL, &o, &res, NULL), 0);
    *out = res.plans[0];
    st_search_result_destroy(&res);
}

START_TEST(test_faster_cluster_first) {
    const char *const cl[] = {"dgx-a100-80g", "dgx-h100"}; /* the slower one given first */
    const int64_t gpus[] = {16};
    st_model m;
    st_compare_row *rows;
    int n;
    run_ok("llama2-7b", cl, 2, gpus, 1, NULL, 64, &m, &rows, &n);
    ck_assert_int_eq(n, 2);
    ck_assert_str_eq(rows[0].cluster.name, "dgx-h100");
    ck_assert_str_eq(rows[1].cluster.name, "dgx-a100-80g");
    ck_assert_int_eq(rows[0].cluster_index, 1);
    for (int i = 0; i < 2; i++) {
        ck_assert(rows[i].fits);
        ck_assert_int_eq(rows[i].gpus, 16);
        ck_assert(rows[i].evaluated > 0);
        ck_assert(!rows[i].has_price);
        /* one cost path: the row's plan is the one the enumerator ranks first */
        st_ranked best;
        best_of(&m, rows[i].cluster.name, 16, 64, &best);
        char a[512], b[512];
        st_plan_format_spec(&rows[i].best.plan, a, sizeof a);
        st_plan_format_spec(&best.plan, b, sizeof b);
        ck_assert_str_eq(a, b);
        ck_assert_double_eq(rows[i].best.est.iteration_time_s, best.est.iteration_time_s);
        ck_assert_double_eq_tol(rows[i].time_to_train_s, 3e11 / best.est.tokens_per_s, 1e-6);
    }
    ck_assert(rows[0].time_to_train_s < rows[1].time_to_train_s);
    ck_assert(rows[0].best.est.tokens_per_s > rows[1].best.est.tokens_per_s);
    st_compare_rows_free(rows);
}
END_TEST

/* llama2-70b fits 8 H100s (ZeRO and recompute) but not 8 A10s (24 GB each): the A10 row, given
 * first, is kept, marked, and ranked last */
START_TEST(test_nofit_kept_last) {
    const char *const cl[] = {"a10-pcie-8", "dgx-h100"};
    const int64_t gpus[] = {8};
    const double prices[] = {0.5, 3.0};
    st_model m;
    st_compare_row *rows;
    int n;
    run_ok("llama2-70b", cl, 2, gpus, 1, prices, 64, &m, &rows, &n);
    ck_assert_int_eq(n, 2);
    ck_assert_str_eq(rows[0].cluster.name, "dgx-h100");
    ck_assert(rows[0].fits);
    ck_assert(rows[0].cost_to_train > 0);
    ck_assert_double_eq(rows[0].price_per_gpu_hour, 3.0);
    ck_assert_str_eq(rows[1].cluster.name, "a10-pcie-8");
    ck_assert(!rows[1].fits);
    ck_assert(rows[1].evaluated > 0); /* searched, not skipped */
    ck_assert_int_eq(rows[1].gpus, 8);
    ck_assert_double_eq(rows[1].price_per_gpu_hour, 0.5);
    ck_assert_double_eq(rows[1].time_to_train_s, 0);
    ck_assert_double_eq(rows[1].cost_to_train, 0);
    st_compare_rows_free(rows);
}
END_TEST

/* nothing fits anywhere: still rows (the CLI prints them and exits 1), all marked */
START_TEST(test_none_fits) {
    const char *const cl[] = {"a10-pcie-8"};
    const int64_t gpus[] = {8};
    st_model m;
    st_compare_row *rows;
    int n;
    run_ok("gpt-1t", cl, 1, gpus, 1, NULL, 1536, &m, &rows, &n);
    ck_assert_int_eq(n, 1);
    ck_assert(!rows[0].fits);
    ck_assert(rows[0].evaluated > 0);
    st_compare_rows_free(rows);
}
END_TEST

/* clusters x gpus, each pair once; prices follow the cluster; the cost checks out by hand */
START_TEST(test_cross_product_prices) {
    const char *const cl[] = {"dgx-a100-80g", "dgx-h100"};
    const int64_t gpus[] = {8, 16};
    const double prices[] = {1.5, 3.0};
    st_model m;
    st_compare_row *rows;
    int n;
    run_ok("llama2-7b", cl, 2, gpus, 2, prices, 64, &m, &rows, &n);
    ck_assert_int_eq(n, 4);
    int seen[4] = {0};
    for (int i = 0; i < n; i++) {
        const st_compare_row *r = &rows[i];
        ck_assert(r->fits);
        ck_assert_int_eq(r->gpus, gpus[r->order % 2]);
        ck_assert_int_eq(r->cluster_index, r->order / 2);
        ck_assert_str_eq(r->cluster.name, cl[r->cluster_index]);
        ck_assert_int_eq(st_cluster_gpus(&r->cluster), r->gpus);
        ck_assert_double_eq(r->price_per_gpu_hour, prices[r->cluster_index]);
        seen[r->order]++;
        double t = 3e11 / r->best.est.tokens_per_s;
        ck_assert_double_eq_tol(r->cost_to_train, t / 3600 * (double)r->gpus * r->price_per_gpu_hour,
                                1e-9 * r->cost_to_train);
        ck_assert_double_eq_tol(r->tokens_per_dollar * r->cost_to_train, 3e11, 1e-9 * 3e11);
        ck_assert_double_eq_tol(r->headroom_bytes, r->cluster.gpu.memory_bytes - r->best.est.memory_peak_bytes, 1.0);
        if (i) ck_assert(rows[i - 1].time_to_train_s <= r->time_to_train_s);
    }
    for (int k = 0; k < 4; k++) ck_assert_int_eq(seen[k], 1);
    st_compare_rows_free(rows);
}
END_TEST

/* without GPU counts each cluster runs at its own size (the presets: one 8-GPU node) */
START_TEST(test_default_size) {
    const char *const cl[] = {"dgx-h100"};
    st_model m;
    st_compare_row *rows;
    int n;
    run_ok("llama2-7b", cl, 1, NULL, 0, NULL, 64, &m, &rows, &n);
    ck_assert_int_eq(n, 1);
    ck_assert_int_eq(rows[0].gpus, 8);
    st_compare_rows_free(rows);
}
END_TEST

/* ------------------------------------------------------------ bad input */

static const struct {
    const char *cluster;
    int64_t gpus;
    double price, tokens;
    st_dtype dtype;
    const char *key, *needle;
} bad_cases[] = {
    {"no-such-cluster", 8, 1, 3e11, ST_DT_BF16, "cluster", "no-such-cluster"},
    {"dgx-h100", 12, 1, 3e11, ST_DT_BF16, "gpus", "12"},
    {"dgx-h100", 8, 0, 3e11, ST_DT_BF16, "price_per_gpu_hour", ""},
    {"dgx-h100", 8, -2, 3e11, ST_DT_BF16, "price_per_gpu_hour", ""},
    {"dgx-h100", 8, 1, 0, ST_DT_BF16, "tokens", ""},
    {"dgx-a100-80g", 8, 1, 3e11, ST_DT_FP8, "dtype", "dgx-a100-80g"},
};

START_TEST(test_run_errors) {
    /* the bad one last: an H100 (fp8 capable) comes first and is fine */
    const char *const cl[] = {"dgx-h100", bad_cases[_i].cluster};
    const int64_t gpus[] = {bad_cases[_i].gpus};
    const double prices[] = {1, bad_cases[_i].price};
    st_model m;
    st_search_opts o;
    st_error err;
    static st_compare_row dummy;
    st_compare_row *rows = &dummy; /* must come back NULL */
    int n = -1;
    st_error_clear(&err);
    ck_assert_int_eq(st_model_preset("llama2-7b", &m), 0);
    st_search_opts_init(&o);
    o.gbs = 64;
    o.dtype = bad_cases[_i].dtype;
    int rc = compare_names(&m, cl, 2, gpus, 1, prices, &o, bad_cases[_i].tokens, NULL, &rows, &n, &err);
    ck_assert_msg(rc < 0, "case %d accepted", _i);
    ck_assert_ptr_null(rows);
    ck_assert_int_eq(n, 0);
    ck_assert_str_eq(err.key, bad_cases[_i].key);
    ck_assert_msg(strstr(err.text, bad_cases[_i].needle), "'%s' lacks '%s'", err.text, bad_cases[_i].needle);
}
END_TEST

/* a profile is used as measured on its own GPU's rows and scaled by peak ratio on the others
 * (issue 6, "Prediction across hardware"), exactly as strata plan would scale it; a profile for a
 * GPU that is no preset cannot be scaled */
START_TEST(test_profile_scaled) {
    const char *const cl[] = {"dgx-h100"};
    st_model m;
    st_search_opts o;
    st_error err;
    st_profile *prof = NULL, *scaled = NULL;
    st_compare_row *rows = NULL;
    int n;
    st_error_clear(&err);
    ck_assert_int_eq(st_model_preset("llama2-7b", &m), 0);
    ck_assert_int_eq(st_profile_load(SRCDIR "/tests/data/profile/a100_test.json", &prof, &err), 0);
    st_search_opts_init(&o);
    o.gbs = 64;
    ck_assert_msg(compare_names(&m, cl, 1, NULL, 0, NULL, &o, 3e11, prof, &rows, &n, &err) == 0, "%s", err.text);
    ck_assert_int_eq(n, 1);
    ck_assert_int_eq(rows[0].profiled, 2);
    ck_assert_ptr_nonnull(strstr(rows[0].profile_note, "scaled to h100-sxm-80g"));
    /* the same as the search with a profile scaled by hand */
    char note[320];
    ck_assert_ptr_nonnull(scaled = st_profile_dup(prof));
    ck_assert_int_eq(st_profile_retarget(scaled, &rows[0].cluster.gpu, note, sizeof note, &err), 1);
    ck_assert_str_eq(note, rows[0].profile_note);
    st_search_opts so = o;
    so.top = 1;
    so.gpus = rows[0].gpus;
    st_search_result res;
    ck_assert_int_eq(st_search_enumerate(&m, &rows[0].cluster, scaled, &so, &res, &err), 0);
    ck_assert_double_eq(res.plans[0].est.iteration_time_s, rows[0].best.est.iteration_time_s);
    st_search_result_destroy(&res);
    st_profile_free(scaled);
    /* ... and differs from the default curves */
    st_compare_row *plain = NULL;
    ck_assert_int_eq(compare_names(&m, cl, 1, NULL, 0, NULL, &o, 3e11, NULL, &plain, &n, &err), 0);
    ck_assert_int_eq(plain[0].profiled, 0);
    ck_assert(plain[0].best.est.iteration_time_s != rows[0].best.est.iteration_time_s);
    st_compare_rows_free(plain);
    st_compare_rows_free(rows);

    /* with an A100 cluster beside it: as measured there, scaled on the H100s */
    const char *const both[] = {"dgx-h100", "dgx-a100-80g", "dgx-h100"};
    int64_t g[] = {8, 16};
    ck_assert_int_eq(compare_names(&m, both, 3, g, 2, NULL, &o, 3e11, prof, &rows, &n, &err), 0);
    ck_assert_int_eq(n, 6);
    for (int i = 0; i < n; i++)
        ck_assert_int_eq(rows[i].profiled, strcmp(rows[i].cluster.name, "dgx-a100-80g") == 0 ? 1 : 2);
    st_compare_rows_free(rows);
    st_profile_free(prof);

    /* a GPU without a preset: no peak to scale by */
    static const char mine[] = "{\"strata_profile\": 1, \"gpu\": \"mygpu\", \"compute\": [{\"class\": \"gemm\", "
                               "\"dtype\": \"bf16\", \"points\": [[1e9, 100]]}]}";
    char path[] = "/tmp/strata-cmp-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, mine, sizeof mine - 1), (ssize_t)(sizeof mine - 1));
    close(fd);
    ck_assert_int_eq(st_profile_load(path, &prof, &err), 0);
    unlink(path);
    rows = (st_compare_row *)1;
    ck_assert_int_eq(compare_names(&m, cl, 1, NULL, 0, NULL, &o, 3e11, prof, &rows, &n, &err), ST_EINVAL);
    ck_assert_str_eq(err.key, "gpu");
    ck_assert_ptr_null(rows);
    st_profile_free(prof);
}
END_TEST

Suite *suite_compare(void) {
    Suite *s = suite_create("compare");
    TCase *tc = tcase_create("arithmetic");
    tcase_add_test(tc, test_derive_by_hand);
    tcase_add_test(tc, test_energy_by_hand);
    tcase_add_loop_test(tc, test_tokens_ok, 0, (int)(sizeof tokens_ok / sizeof tokens_ok[0]));
    tcase_add_loop_test(tc, test_tokens_bad, 0, (int)(sizeof tokens_bad / sizeof tokens_bad[0]));
    tcase_add_test(tc, test_sort_order);
    suite_add_tcase(s, tc);

    tc = tcase_create("run");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_faster_cluster_first);
    tcase_add_test(tc, test_nofit_kept_last);
    tcase_add_test(tc, test_none_fits);
    tcase_add_test(tc, test_cross_product_prices);
    tcase_add_test(tc, test_default_size);
    tcase_add_loop_test(tc, test_run_errors, 0, (int)(sizeof bad_cases / sizeof bad_cases[0]));
    tcase_add_test(tc, test_profile_scaled);
    suite_add_tcase(s, tc);
    return s;
}
