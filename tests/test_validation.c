/* test_validation.c: the Check suite of validation bundles (src/io/validation_io.c) and of the
 * report of `strata validate` (src/report/validation.c): Kendall's tau-b with ties against hand
 * counts and SciPy's documented value, the summary per set and per rank group on rows made here,
 * and the test fixture tests/data/validation/fixture_points.json as loaded. The CLI test
 * (tests/cli_validate.sh) checks the command's output and its refusals of bad bundles. */
#include "src/report/report.h"

#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#ifndef SRCDIR
#define SRCDIR "."
#endif

Suite *suite_validation(void);

/* x = 1 2 2 3, y = 1 3 2 2: pairs (1,2) (1,3) (1,4) concordant, (2,4) discordant, (2,3) tied in x,
 * (3,4) tied in y; tau_b = (3 - 1) / sqrt((6 - 1) (6 - 1)) = 0.4 */
START_TEST(tau_b_ties_by_hand) {
    const double x[] = {1, 2, 2, 3}, y[] = {1, 3, 2, 2};
    st_tau t;
    ck_assert_double_eq_tol(st_tau_b(x, y, 4, &t), 0.4, 1e-15);
    ck_assert_int_eq(t.pairs, 6);
    ck_assert_int_eq(t.concordant, 3);
    ck_assert_int_eq(t.discordant, 1);
    ck_assert_int_eq(t.tied_x, 1);
    ck_assert_int_eq(t.tied_y, 1);
    ck_assert_double_eq(t.tau_b, 0.4);
}
END_TEST

/* scipy.stats.kendalltau's documented example (tau-b): x1 = [12, 2, 1, 12, 2], x2 = [1, 4, 7, 1, 0]
 * gives -0.47140452079103173; a pair tied in both (12, 1 twice) counts in both tie counts */
START_TEST(tau_b_scipy_example) {
    const double x[] = {12, 2, 1, 12, 2}, y[] = {1, 4, 7, 1, 0};
    st_tau t;
    ck_assert_double_eq_tol(st_tau_b(x, y, 5, &t), -0.47140452079103173, 1e-15);
    ck_assert_int_eq(t.concordant, 2);
    ck_assert_int_eq(t.discordant, 6);
    ck_assert_int_eq(t.tied_x, 2);
    ck_assert_int_eq(t.tied_y, 1);
}
END_TEST

START_TEST(tau_b_edges) {
    const double up[] = {1, 2, 3, 4}, down[] = {9, 7, 5, 1}, flat[] = {2, 2, 2, 2};
    st_tau t;
    ck_assert_double_eq(st_tau_b(up, up, 4, &t), 1.0);
    ck_assert_double_eq(st_tau_b(up, down, 4, &t), -1.0);
    ck_assert(isnan(st_tau_b(up, flat, 4, &t))); /* no untied pair in y: undefined */
    ck_assert_int_eq(t.tied_y, 6);
    ck_assert(isnan(st_tau_b(up, up, 1, &t)));
    ck_assert_int_eq(t.pairs, 0);
    ck_assert(isnan(st_tau_b(up, up, 0, &t)));
}
END_TEST

/* Rows made here: two sets, every status, two rank groups (one with fewer than 3 compared rows)
 * and a point in none. */
START_TEST(summary_by_hand) {
    st_model models[1];
    st_cluster clusters[1];
    char *keys[] = {"m"};
    st_validation b = {.file = "made-up", .nmodels = 1, .nclusters = 1, .model_keys = keys, .cluster_keys = keys,
                       .models = models, .clusters = clusters};
    st_validation_point pts[6] = {
        {.id = "a", .set = ST_VSET_STRICT, .measured_s = 1.0, .rank_group = "g"},
        {.id = "b", .set = ST_VSET_STRICT, .measured_s = 2.0, .rank_group = "g"},
        {.id = "c", .set = ST_VSET_LOOSE, .measured_s = 4.0, .rank_group = "g"},
        {.id = "d", .set = ST_VSET_LOOSE, .measured_s = 8.0, .rank_group = "h"},
        {.id = "e", .set = ST_VSET_LOOSE, .measured_s = 8.0, .rank_group = "h"},
        {.id = "f", .set = ST_VSET_STRICT, .measured_s = 3.0},
    };
    /* errors: a +10 %, b -25 %, c +50 %, d +0 %; e does not fit, f is rejected */
    const double pred[] = {1.1, 1.5, 6.0, 8.0, 1.0, NAN};
    const st_vrow_status st[] = {ST_VROW_OK, ST_VROW_OK, ST_VROW_OK, ST_VROW_OK, ST_VROW_NOFIT, ST_VROW_REJECTED};
    st_vreport r = {.b = &b, .command = "estimate", .all_sets = 1, .nrows = 6};
    st_error err;

    b.points = pts;
    b.npoints = 6;
    r.rows = calloc(6, sizeof *r.rows);
    ck_assert_ptr_nonnull(r.rows);
    for (int i = 0; i < 6; i++) {
        r.rows[i].pt = &pts[i];
        r.rows[i].status = st[i];
        r.rows[i].predicted_s = pred[i];
    }
    st_error_clear(&err);
    ck_assert_int_eq(st_vreport_summarize(&r, &err), 0);
    const st_vsummary *s = &r.sets[ST_VSET_STRICT], *l = &r.sets[ST_VSET_LOOSE], *a = &r.all;
    ck_assert_int_eq(s->rows, 3);
    ck_assert_int_eq(s->compared, 2);
    ck_assert_int_eq(s->rejected, 1);
    ck_assert_double_eq_tol(s->mae_pct, 17.5, 1e-12);
    ck_assert_double_eq_tol(s->max_abs_pct, 25, 1e-12);
    ck_assert_int_eq(s->max_row, 1);
    ck_assert_int_eq(l->rows, 3);
    ck_assert_int_eq(l->compared, 2);
    ck_assert_int_eq(l->nofit, 1);
    ck_assert_double_eq_tol(l->mae_pct, 25, 1e-12);
    ck_assert_int_eq(l->max_row, 2);
    ck_assert_int_eq(a->rows, 6);
    ck_assert_int_eq(a->compared, 4);
    ck_assert_int_eq(a->rejected + a->nofit + a->errors, 2);
    ck_assert_double_eq_tol(a->mae_pct, 21.25, 1e-12);
    ck_assert_double_eq_tol(a->max_abs_pct, 50, 1e-12);
    /* groups in order of first appearance; g: measured 1 2 4 against 1.1 1.5 6 (all concordant) */
    ck_assert_int_eq(r.ngroups, 2);
    ck_assert_str_eq(r.groups[0].name, "g");
    ck_assert_int_eq(r.groups[0].compared, 3);
    ck_assert_double_eq(r.groups[0].tau.tau_b, 1.0);
    ck_assert_str_eq(r.groups[1].name, "h");
    ck_assert_int_eq(r.groups[1].rows, 2);
    ck_assert_int_eq(r.groups[1].compared, 1);
    ck_assert(isnan(r.groups[1].tau.tau_b));
    ck_assert_int_eq(r.ungrouped, 1);
    st_vreport_destroy(&r);
}
END_TEST

/* Nothing compared: no MAE, no max row (NaN and -1, printed as nan / null) */
START_TEST(summary_nothing_compared) {
    st_validation_point pt = {.id = "x", .set = ST_VSET_LOOSE, .measured_s = 1.0};
    st_vreport r = {.command = "sim", .all_sets = 0, .set = ST_VSET_LOOSE, .nrows = 1};
    st_error err;
    r.rows = calloc(1, sizeof *r.rows);
    ck_assert_ptr_nonnull(r.rows);
    r.rows[0].pt = &pt;
    r.rows[0].status = ST_VROW_ERROR;
    ck_assert_int_eq(st_vreport_summarize(&r, &err), 0);
    ck_assert_int_eq(r.all.errors, 1);
    ck_assert(isnan(r.all.mae_pct));
    ck_assert(isnan(r.all.max_abs_pct));
    ck_assert_int_eq(r.all.max_row, -1);
    ck_assert_int_eq(r.ngroups, 0);
    st_vreport_destroy(&r);
}
END_TEST

START_TEST(load_fixture) {
    st_validation *b = NULL;
    st_error err;
    st_error_clear(&err);
    ck_assert_int_eq(st_validation_load(SRCDIR "/tests/data/validation/fixture_points.json", &b, &err), 0);
    ck_assert_ptr_nonnull(b->about);
    ck_assert_ptr_nonnull(strstr(b->about, "NOT DATA"));
    ck_assert_int_eq(b->nmodels, 2);
    ck_assert_str_eq(b->model_keys[0], "l7");
    ck_assert_str_eq(b->model_keys[1], "g175");
    ck_assert_str_eq(b->models[0].name, "fixture-llama2-7b");
    ck_assert_int_eq(b->models[1].layers, 96);
    ck_assert_int_eq(b->nclusters, 1);
    ck_assert_str_eq(b->clusters[0].name, "fixture-dgx-h100");
    ck_assert_int_eq(b->npoints, 6);
    ck_assert_str_eq(b->points[0].id, "fx-gbs64");
    ck_assert_int_eq(b->points[0].set, ST_VSET_STRICT);
    ck_assert_int_eq(b->points[2].set, ST_VSET_LOOSE);
    ck_assert_str_eq(b->points[3].rank_group, "fx-rank");
    ck_assert_ptr_nonnull(b->points[2].note);
    ck_assert_ptr_null(b->points[0].note);
    ck_assert_int_eq(b->points[4].model, 1);
    ck_assert_ptr_null(b->points[4].rank_group);
    ck_assert_int_eq(b->points[5].gpus, 24);
    ck_assert_double_eq(b->points[5].measured_s, 5.0);
    ck_assert_str_eq(b->points[5].plan, "tp=3,pp=1,mbs=1,gbs=24");
    st_validation_free(b);
}
END_TEST

START_TEST(load_refusals) {
    static st_validation before;
    st_validation *b = &before; /* a failed load must clear it */
    st_error err;
    st_error_clear(&err);
    ck_assert_int_eq(st_validation_load(SRCDIR "/tests/data/validation/no-such.json", &b, &err), ST_EIO);
    ck_assert_ptr_null(b);
    st_error_clear(&err);
    ck_assert_int_eq(st_validation_load(SRCDIR "/tests/data/validation/bad/unknown_model.json", &b, &err), ST_EINVAL);
    ck_assert_ptr_null(b);
    ck_assert_str_eq(err.key, "points[0].model");
    ck_assert_ptr_nonnull(strstr(err.text, "'nope'"));
    st_validation_free(NULL);
}
END_TEST

Suite *suite_validation(void) {
    Suite *s = suite_create("validation");
    TCase *tc = tcase_create("tau_b");
    tcase_add_test(tc, tau_b_ties_by_hand);
    tcase_add_test(tc, tau_b_scipy_example);
    tcase_add_test(tc, tau_b_edges);
    suite_add_tcase(s, tc);
    tc = tcase_create("summary");
    tcase_add_test(tc, summary_by_hand);
    tcase_add_test(tc, summary_nothing_compared);
    suite_add_tcase(s, tc);
    tc = tcase_create("bundle");
    tcase_add_test(tc, load_fixture);
    tcase_add_test(tc, load_refusals);
    suite_add_tcase(s, tc);
    return s;
}
