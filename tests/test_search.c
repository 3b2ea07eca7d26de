/* test_search.c: the enumerator against its oracles: every kept plan is one st_plan_finalize
 * accepts, re-pricing it alone gives the same numbers (one cost path), the ranking is sorted, the
 * best is the minimum of everything that fits, output is deterministic, and "nothing fits" is
 * reported as ST_ENOPLAN. */
#include "src/strata.h"
#include "suites.h"

#include <stdlib.h>
#include <string.h>

static st_error run_err; /* the last run's error */

static int enumerate(const st_model *m, const st_cluster *c, int64_t gbs, int top, st_search_result *r) {
    st_search_opts o;
    st_search_opts_init(&o);
    o.gbs = gbs;
    o.top = top;
    return st_search_enumerate(m, c, NULL, &o, r, &run_err);
}

static void run(const char *model, const char *cl, int64_t gpus, int64_t gbs, int top, st_model *m, st_cluster *c,
                st_search_result *r, int expect) {
    ck_assert_int_eq(st_model_preset(model, m), 0);
    ck_assert_int_eq(st_cluster_resolve(cl, gpus, c, NULL), 0);
    int rc = enumerate(m, c, gbs, top, r);
    ck_assert_msg(rc == expect, "rc %d: %s", rc, run_err.text);
}

START_TEST(test_kept_plans_are_valid_and_repriced) {
    st_model m;
    st_cluster c;
    st_search_result r;
    run("llama2-13b", "dgx-a100-80g", 32, 128, 200, &m, &c, &r, 0);
    ck_assert_int_eq(r.n, 200);
    ck_assert(r.evaluated > r.feasible && r.feasible >= 200);
    st_cost_ctx *ctx = st_cost_ctx_new(&m, &c, NULL);
    st_plan *q = malloc(sizeof *q);
    for (int i = 0; i < r.n; i++) {
        /* rebuild the plan from its spec alone, as a user would */
        char spec[512];
        st_error err;
        st_plan_format_spec(&r.plans[i].plan, spec, sizeof spec);
        st_plan_defaults(q);
        ck_assert_int_eq(st_plan_parse_spec(spec, q, &err), 0);
        ck_assert_msg(st_plan_finalize(q, &m, &c, 32, NULL, &err) == 0, "%s: %s", spec, err.text);
        st_estimate e;
        ck_assert_int_eq(st_cost_estimate(ctx, q, &e), 0);
        ck_assert_double_eq(e.iteration_time_s, r.plans[i].est.iteration_time_s);
        ck_assert_double_eq(e.memory_peak_bytes, r.plans[i].est.memory_peak_bytes);
        ck_assert(e.fits);
        if (i) ck_assert(r.plans[i - 1].est.iteration_time_s <= r.plans[i].est.iteration_time_s);
    }
    free(q);
    st_cost_ctx_free(ctx);
    st_search_result_destroy(&r);
}
END_TEST

/* The zero-bubble schedules can win: gpt3-175b on 64 A100s needs a pipeline, and with 15
 * micro-batches (which no interleaved schedule divides) on 8 stages 1F1B idles 7/15 of the time;
 * zbv's bubble is a sixth of that (its closed form, cost/estimate.c), so the best plan with
 * zero_bubble is a zb or zbv plan and faster than the best without; every kept plan is one
 * st_plan_finalize accepts, priced the same alone. */
START_TEST(test_zero_bubble_schedules_win) {
    st_model m;
    st_cluster c;
    st_search_result r[2];
    st_error err;
    ck_assert_int_eq(st_model_preset("gpt3-175b", &m), 0);
    ck_assert_int_eq(st_cluster_resolve("dgx-a100-80g", 64, &c, NULL), 0);
    for (int k = 0; k < 2; k++) {
        st_search_opts o;
        st_search_opts_init(&o);
        o.gbs = 15;
        o.top = 20;
        o.zero_bubble = k;
        ck_assert_int_eq(st_search_enumerate(&m, &c, NULL, &o, &r[k], &err), 0);
    }
    ck_assert(r[0].plans[0].plan.schedule == ST_SCHED_1F1B || r[0].plans[0].plan.schedule == ST_SCHED_INTERLEAVED);
    st_schedule best = r[1].plans[0].plan.schedule;
    ck_assert(best == ST_SCHED_ZB || best == ST_SCHED_ZBV);
    ck_assert(r[1].plans[0].est.iteration_time_s < r[0].plans[0].est.iteration_time_s);
    st_cost_ctx *ctx = st_cost_ctx_new(&m, &c, NULL);
    int zbv = 0;
    for (int i = 0; i < r[1].n; i++) {
        char spec[512];
        st_plan q;
        st_estimate e;
        st_plan_format_spec(&r[1].plans[i].plan, spec, sizeof spec);
        st_plan_defaults(&q);
        ck_assert_int_eq(st_plan_parse_spec(spec, &q, &err), 0);
        ck_assert_msg(st_plan_finalize(&q, &m, &c, 64, NULL, &err) == 0, "%s: %s", spec, err.text);
        ck_assert_int_eq(st_cost_estimate(ctx, &q, &e), 0);
        ck_assert_double_eq(e.iteration_time_s, r[1].plans[i].est.iteration_time_s);
        zbv += q.schedule == ST_SCHED_ZBV;
        if (q.schedule != ST_SCHED_ZBV || zbv > 1) continue;
        /* the same plan under 1F1B: slower by its larger bubble */
        q.schedule = ST_SCHED_1F1B, q.vp = 1;
        st_estimate e1;
        ck_assert_int_eq(st_cost_estimate(ctx, &q, &e1), 0);
        ck_assert(e.breakdown.bubble_s < e1.breakdown.bubble_s / 2);
        ck_assert(e.iteration_time_s < e1.iteration_time_s);
    }
    ck_assert_int_gt(zbv, 0);
    st_cost_ctx_free(ctx);
    st_search_result_destroy(&r[0]);
    st_search_result_destroy(&r[1]);
}
END_TEST

/* DualPipe where DeepSeek trained with it (DeepSeek-V3 on 2,048 GPUs, gbs 15360, seq 4096; report Sec.
 * 3.2): with the option the best plan is a dualpipe plan (its ep and pp communication hidden) and
 * faster than the best without it, and the same with top 1 (the bounds that skip plans unpriced hold
 * for DualPipe's pairs of stages); every kept dualpipe plan is one st_plan_finalize accepts (an even
 * pp and number of micro-batches, at least 2 pp), priced the same alone. */
START_TEST(test_dualpipe_wins_for_deepseek_v3) {
    st_model m;
    st_cluster c;
    st_search_result r[3];
    st_error err;
    ck_assert_int_eq(st_model_preset("deepseek-v3", &m), 0);
    ck_assert_int_eq(st_cluster_resolve("dgx-h100", 2048, &c, NULL), 0);
    for (int k = 0; k < 3; k++) {
        st_search_opts o;
        st_search_opts_init(&o);
        o.gpus = 2048, o.gbs = 15360, o.seq = 4096;
        o.top = k < 2 ? 5 : 1;
        o.zero_bubble = 1;
        o.dualpipe = k > 0;
        ck_assert_int_eq(st_search_enumerate(&m, &c, NULL, &o, &r[k], &err), 0);
        ck_assert_int_gt(r[k].n, 0);
    }
    ck_assert(r[0].plans[0].plan.schedule != ST_SCHED_DUALPIPE);
    ck_assert(r[1].plans[0].plan.schedule == ST_SCHED_DUALPIPE);
    ck_assert(r[1].plans[0].est.iteration_time_s < r[0].plans[0].est.iteration_time_s);
    ck_assert_double_eq(r[2].plans[0].est.iteration_time_s, r[1].plans[0].est.iteration_time_s);
    st_cost_ctx *ctx = st_cost_ctx_new(&m, &c, NULL);
    for (int i = 0; i < r[1].n; i++) {
        char spec[512];
        st_plan q;
        st_estimate e;
        if (r[1].plans[i].plan.schedule != ST_SCHED_DUALPIPE) continue;
        st_plan_format_spec(&r[1].plans[i].plan, spec, sizeof spec);
        st_plan_defaults(&q);
        ck_assert_int_eq(st_plan_parse_spec(spec, &q, &err), 0);
        ck_assert_msg(st_plan_finalize(&q, &m, &c, 2048, NULL, &err) == 0, "%s: %s", spec, err.text);
        ck_assert_int_eq(st_cost_estimate(ctx, &q, &e), 0);
        ck_assert_double_eq(e.iteration_time_s, r[1].plans[i].est.iteration_time_s);
        ck_assert_double_eq(e.breakdown.ep_comm_s, 0);
    }
    st_cost_ctx_free(ctx);
    for (int k = 0; k < 3; k++) st_search_result_destroy(&r[k]);
}
END_TEST

/* keeping everything, the best equals the best of a smaller top-K run, and both runs agree: the
 * smaller run's bounds (enumerate.c, shape_bounds; the mbs cut) skip only what could not enter its
 * kept set, so it prices fewer configurations and keeps the same plans */
START_TEST(test_top_k_is_prefix_and_deterministic) {
    st_model m;
    st_cluster c;
    st_search_result all, few;
    run("llama2-7b", "dgx-h100", 16, 64, 100000, &m, &c, &all, 0);
    ck_assert_int_eq((uint64_t)all.n, all.feasible);
    run("llama2-7b", "dgx-h100", 16, 64, 7, &m, &c, &few, 0);
    ck_assert_int_eq(few.n, 7);
    ck_assert(few.evaluated < all.evaluated);
    for (int i = 0; i < 7; i++) {
        ck_assert_double_eq(few.plans[i].est.iteration_time_s, all.plans[i].est.iteration_time_s);
        char a[512], b[512];
        st_plan_format_spec(&few.plans[i].plan, a, sizeof a);
        st_plan_format_spec(&all.plans[i].plan, b, sizeof b);
        ck_assert_str_eq(a, b);
    }
    for (int i = 1; i < all.n; i++) ck_assert(all.plans[i - 1].est.iteration_time_s <= all.plans[i].est.iteration_time_s);
    st_search_result_destroy(&all);
    st_search_result_destroy(&few);
}
END_TEST

/* The attention kernel is the options' (flash unless they say otherwise), every plan's, not searched:
 * the same space either way (every plan kept, so no bound skips any), every kept plan carrying it
 * and repricing alone to the same time. */
START_TEST(test_attention_is_the_options) {
    st_model m;
    st_cluster c;
    st_error err;
    ck_assert_int_eq(st_model_preset("llama2-7b", &m), 0);
    ck_assert_int_eq(st_cluster_resolve("dgx-h100", 16, &c, NULL), 0);
    st_search_result r[2];
    for (int k = 0; k < 2; k++) {
        st_search_opts o;
        st_search_opts_init(&o);
        ck_assert_int_eq(o.attention, ST_ATTN_FLASH);
        o.gbs = 64, o.top = 100000;
        o.attention = k ? ST_ATTN_UNFUSED : ST_ATTN_FLASH;
        ck_assert_int_eq(st_search_enumerate(&m, &c, NULL, &o, &r[k], &err), 0);
        st_cost_ctx *ctx = st_cost_ctx_new(&m, &c, NULL);
        for (int i = 0; i < r[k].n; i++) {
            ck_assert_int_eq(r[k].plans[i].plan.attention, o.attention);
            st_estimate e;
            ck_assert_int_eq(st_cost_estimate(ctx, &r[k].plans[i].plan, &e), 0);
            ck_assert_double_eq(e.iteration_time_s, r[k].plans[i].est.iteration_time_s);
        }
        st_cost_ctx_free(ctx);
    }
    ck_assert_int_eq(r[0].evaluated, r[1].evaluated);
    ck_assert(r[0].plans[0].est.iteration_time_s < r[1].plans[0].est.iteration_time_s);
    st_search_result_destroy(&r[0]);
    st_search_result_destroy(&r[1]);
}
END_TEST

START_TEST(test_moe_uses_expert_parallelism) {
    st_model m;
    st_cluster c;
    st_search_result r;
    run("mixtral-8x7b", "dgx-h100", 64, 256, 100000, &m, &c, &r, 0);
    int with_ep = 0;
    for (int i = 0; i < r.n; i++) with_ep += r.plans[i].plan.ep > 1;
    ck_assert_int_gt(with_ep, 0);
    st_search_result_destroy(&r);
}
END_TEST

START_TEST(test_nothing_fits) {
    st_model m;
    st_cluster c;
    st_search_result r;
    run("gpt-1t", "a10-pcie-8", 8, 64, 10, &m, &c, &r, ST_ENOPLAN);
    ck_assert_int_eq(r.n, 0);
    ck_assert(r.evaluated > 0);
    st_search_result_destroy(&r);
}
END_TEST

/* a rate that slipped past the loaders (1e-320 B/s) makes NaN times: the search refuses them with
 * an error naming the number, never ranks them (a NaN compared as the best) */
START_TEST(test_nonfinite_is_an_error) {
    st_model m;
    st_cluster c;
    st_search_result r;
    run("gpt-1.7b", "dgx-a100-80g", 8, 64, 10, &m, &c, &r, 0);
    st_search_result_destroy(&r);
    c.intra_bytes_per_s = 1e-320;
    ck_assert_int_eq(enumerate(&m, &c, 64, 10, &r), ST_EINVAL);
    ck_assert_msg(strstr(run_err.text, "not finite") && strstr(run_err.text, "tp="), "%s", run_err.text);
    ck_assert(run_err.key[0]);
    st_search_result_destroy(&r);
}
END_TEST

/* a million GPUs: nothing divides (dp would have to divide gbs), which is not "nothing fits" */
START_TEST(test_nothing_divides) {
    st_model m;
    st_cluster c;
    st_search_result r;
    run("gpt-1.7b", "dgx-a100-80g", 1000000, 1536, 10, &m, &c, &r, ST_ENOPLAN);
    ck_assert_int_eq(r.evaluated, 0);
    ck_assert_str_eq(run_err.key, "gpus");
    ck_assert_msg(strstr(run_err.text, "no configuration divides"), "%s", run_err.text);
    st_search_result_destroy(&r);
}
END_TEST

Suite *suite_search(void) {
    Suite *s = suite_create("search");
    TCase *tc = tcase_create("search");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_kept_plans_are_valid_and_repriced);
    tcase_add_test(tc, test_zero_bubble_schedules_win);
    tcase_add_test(tc, test_dualpipe_wins_for_deepseek_v3);
    tcase_add_test(tc, test_top_k_is_prefix_and_deterministic);
    tcase_add_test(tc, test_moe_uses_expert_parallelism);
    tcase_add_test(tc, test_attention_is_the_options);
    tcase_add_test(tc, test_nothing_fits);
    tcase_add_test(tc, test_nonfinite_is_an_error);
    tcase_add_test(tc, test_nothing_divides);
    suite_add_tcase(s, tc);
    return s;
}
