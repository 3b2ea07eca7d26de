/* test_offload.c: granular offload (plan keys offload_optimizer, offload_params, offload_activations;
 * cost/offload.c). Closed forms: fraction 0 is offload=none and fraction 1 is offload=optimizer, number
 * for number; in between the GPU's share and the host's chain run side by side and memory splits by the
 * fraction; the weights' and activations' shares by their chunk copies and what they save; host memory
 * is checked; the simulator runs what the estimate prices; bad fractions and combinations name the key. */
#include "cost/cost_private.h"
#include "src/strata.h"
#include "suites.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REL(a, b, r) ck_assert_double_eq_tol((a), (b), fabs((double)(b)) * (r) + 1e-15)

/* gpt-1.7b on 8 A100s, data parallel with the distributed optimizer, plus `extra` */
static void estimate(const st_cluster *c, const char *extra, st_plan *p, st_estimate *e, st_stage_memory *sm) {
    st_model m;
    st_error err;
    char spec[256];
    ck_assert_int_eq(st_model_preset("gpt-1.7b", &m), 0);
    snprintf(spec, sizeof spec, "tp=1,pp=1,dp=8,mbs=4,gbs=64,zero=1%s%s", extra[0] ? "," : "", extra);
    st_plan_defaults(p);
    ck_assert_int_eq(st_plan_parse_spec(spec, p, &err), 0);
    ck_assert_msg(st_plan_finalize(p, &m, c, 0, NULL, &err) == 0, "%s: %s", spec, err.text);
    st_cost_ctx *ctx = st_cost_ctx_new(&m, c, NULL);
    ck_assert_int_eq(st_cost_estimate(ctx, p, e), 0);
    st_cost_stage_memory(ctx, p, 0, sm);
    st_cost_ctx_free(ctx);
}

static st_cluster a100(void) {
    st_cluster c;
    ck_assert_int_eq(st_cluster_resolve("dgx-a100-40g", 8, &c, NULL), 0);
    return c;
}

START_TEST(test_fraction_0_and_1_are_the_old_modes) {
    st_cluster c = a100();
    st_plan p0, pn, p1, po;
    st_estimate e0, en, e1, eo;
    st_stage_memory m0, mn, m1, mo;
    char s1[512], so[512];
    estimate(&c, "offload_optimizer=0", &p0, &e0, &m0);
    estimate(&c, "offload=none", &pn, &en, &mn);
    ck_assert(e0.iteration_time_s == en.iteration_time_s && m0.total_bytes == mn.total_bytes);
    ck_assert(e0.breakdown.offload_s == 0 && e0.host_memory_bytes == 0);
    estimate(&c, "offload_optimizer=1", &p1, &e1, &m1);
    estimate(&c, "offload=optimizer", &po, &eo, &mo);
    st_plan_format_spec(&p1, s1, sizeof s1);
    st_plan_format_spec(&po, so, sizeof so);
    ck_assert_str_eq(s1, so); /* offload_optimizer=1 is offload=optimizer */
    ck_assert(e1.iteration_time_s == eo.iteration_time_s && m1.total_bytes == mo.total_bytes);
    ck_assert(e1.host_memory_bytes == eo.host_memory_bytes && e1.host_memory_bytes > 0);
}
END_TEST

/* f = 0.5: half the states on each side; the host's half goes down, steps on the CPU and comes back
 * (half of the whole offload's copies and CPU step) while the GPU steps its half (half its whole
 * step): the step is the longer of the two, the rest of the iteration as without offload. */
START_TEST(test_half_closed_form) {
    st_cluster c = a100();
    st_plan p0, ph, p1;
    st_estimate e0, eh, e1;
    st_stage_memory m0, mh, m1;
    estimate(&c, "", &p0, &e0, &m0);
    estimate(&c, "offload_optimizer=0.5", &ph, &eh, &mh);
    estimate(&c, "offload=optimizer", &p1, &e1, &m1);
    REL(mh.optimizer_bytes, m0.optimizer_bytes / 2, 1e-12);
    REL(mh.total_bytes, m0.total_bytes - m0.optimizer_bytes / 2, 1e-12);
    REL(eh.host_memory_bytes, e1.host_memory_bytes / 2, 1e-12);
    REL(eh.offload_grads_s, e1.offload_grads_s / 2, 1e-12);
    REL(eh.offload_weights_s, e1.offload_weights_s / 2, 1e-12);
    double gpu = e0.breakdown.optimizer_s / 2;
    double chain = (e1.offload_grads_s + e1.breakdown.optimizer_s + e1.offload_weights_s) / 2;
    double step = gpu > chain ? gpu : chain;
    REL(eh.iteration_time_s, e0.iteration_time_s - e0.breakdown.optimizer_s + step, 1e-12);
    REL(eh.breakdown.optimizer_s + eh.breakdown.offload_s, step, 1e-12);
    ck_assert(eh.iteration_time_s > e0.iteration_time_s && eh.iteration_time_s < e1.iteration_time_s);
}
END_TEST

/* The host's share counts against host memory: a node with 8 GiB of host memory holds a quarter of
 * the states but not all of them. */
START_TEST(test_host_memory_checked) {
    st_cluster c = a100();
    c.host_memory_bytes = 8.0 * 1073741824.0;
    st_plan p;
    st_estimate e;
    st_stage_memory sm;
    estimate(&c, "offload_optimizer=0.25", &p, &e, &sm);
    ck_assert(e.fits);
    ck_assert(e.host_memory_bytes > 0 && e.host_memory_bytes <= c.host_memory_bytes);
    estimate(&c, "offload_optimizer=1", &p, &e, &sm);
    ck_assert(!e.fits);
    ck_assert(e.host_memory_bytes > c.host_memory_bytes);
}
END_TEST

/* gpt-1.7b under spec on c, estimated and simulated: the iteration times and memory peaks of both */
static void sim_and_estimate(const st_cluster *c, const char *spec, st_estimate *e, double *sim_s, double *sim_peak) {
    st_model m;
    st_error err;
    ck_assert_int_eq(st_model_preset("gpt-1.7b", &m), 0);
    st_plan p;
    st_plan_defaults(&p);
    ck_assert_int_eq(st_plan_parse_spec(spec, &p, &err), 0);
    ck_assert_int_eq(st_plan_finalize(&p, &m, c, 0, NULL, &err), 0);
    st_cost_ctx *ctx = st_cost_ctx_new(&m, c, NULL);
    ck_assert_int_eq(st_cost_estimate(ctx, &p, e), 0);
    st_lowered l;
    ck_assert_msg(st_lower(ctx, &p, &l, &err) == 0, "%s", err.text);
    st_sim_result r;
    ck_assert_msg(st_sim_run(&l, 0, NULL, &r, &err) == 0, "%s", err.text);
    *sim_s = r.iteration_time_s;
    *sim_peak = 0;
    for (int k = 0; k < r.nranks; k++)
        if (r.ranks[k].memory_peak_bytes > *sim_peak) *sim_peak = r.ranks[k].memory_peak_bytes;
    st_sim_result_destroy(&r);
    st_lowered_destroy(&l);
    st_cost_ctx_free(ctx);
}

/* The lowering runs the estimate's copies and step: the simulator agrees within 1% with a pipeline. */
START_TEST(test_sim_agrees) {
    st_cluster c = a100();
    st_estimate e;
    double sim_s, peak;
    sim_and_estimate(&c, "tp=1,pp=2,dp=4,mbs=4,gbs=64,zero=1,offload_optimizer=0.5", &e, &sim_s, &peak);
    REL(sim_s, e.iteration_time_s, 0.01);
}
END_TEST

/* spec refused, naming key: when it is parsed (at_parse) or when its plan is finalized */
static void refused(const st_model *m, const st_cluster *c, const char *spec, int at_parse, const char *key) {
    st_plan p;
    st_error err;
    st_plan_defaults(&p);
    ck_assert_int_eq(st_plan_parse_spec(spec, &p, &err), at_parse ? ST_EINVAL : 0);
    if (!at_parse) ck_assert_int_eq(st_plan_finalize(&p, m, c, 0, NULL, &err), ST_EINVAL);
    ck_assert_msg(!strcmp(err.key, key), "%s: key '%s', expected '%s'", spec, err.key, key);
}

/* spec finalized (into *p) writes a canonical spec holding `held`, which parses back (into *q) */
static void spec_round_trip(const st_model *m, const st_cluster *c, const char *spec, const char *held, st_plan *p,
                            st_plan *q) {
    st_error err;
    char out[512];
    st_plan_defaults(p);
    ck_assert_int_eq(st_plan_parse_spec(spec, p, &err), 0);
    ck_assert_int_eq(st_plan_finalize(p, m, c, 0, NULL, &err), 0);
    st_plan_format_spec(p, out, sizeof out);
    ck_assert_msg(strstr(out, held) != NULL, "%s not in %s", held, out);
    st_plan_defaults(q);
    ck_assert_int_eq(st_plan_parse_spec(out, q, &err), 0);
}

START_TEST(test_bad_fractions) {
    st_model m;
    st_cluster c = a100();
    ck_assert_int_eq(st_model_preset("gpt-1.7b", &m), 0);
    static const char *const bad_spec[] = {"offload_optimizer=1.5", "offload_optimizer=-0.1", "offload_optimizer=x",
                                           "offload_optimizer=nan", "offload_optimizer=0x1"};
    for (size_t i = 0; i < sizeof bad_spec / sizeof bad_spec[0]; i++)
        refused(&m, &c, bad_spec[i], 1, "offload_optimizer");
    static const char *const bad_plan[] = {"zero=0,offload_optimizer=0.5",
                                           "zero=3,offload=params,offload_optimizer=0.5",
                                           "zero=1,offload=optimizer,offload_optimizer=0.5"};
    for (size_t i = 0; i < sizeof bad_plan / sizeof bad_plan[0]; i++)
        refused(&m, &c, bad_plan[i], 0, "offload_optimizer");
    /* the canonical spec gives it back */
    st_plan p, q;
    spec_round_trip(&m, &c, "zero=1,offload_optimizer=0.3", ",offload_optimizer=0.3", &p, &q);
    ck_assert(q.offload_optimizer == 0.3);
}
END_TEST

/* ---- granular weights and activations (offload_params, offload_activations; cost/offload.c) */

/* offload_params=f on gpt-1.7b, data parallel (zero 1): the GPU keeps 1 - f of its 16-bit weights W plus
 * two cached chunks of a block's host share, 2 W (1 - f) + 2 x 2 f B bytes; two fractions give W and B,
 * a third is predicted, and B is a gpt-1.7b block (12 h^2 + 13 h parameters). Host memory holds f x W x 2
 * for each of the node's 8 GPUs. Every pass's copies hide behind its compute here, so the iteration
 * grows by the host copy's rewrite after the step (f W 2 down) and the first block's share before the
 * first forward (f W 2 / 26 up: 24 blocks, the embedding and the output layer), at PCIe x efficiency. */
START_TEST(test_granular_params_closed_form) {
    st_cluster c = a100();
    st_plan p;
    st_estimate e0, e1, e2;
    st_stage_memory m0, m1, m2;
    estimate(&c, "", &p, &e0, &m0);
    estimate(&c, "offload_params=0.25", &p, &e1, &m1);
    estimate(&c, "offload_params=0.5", &p, &e2, &m2);
    double W = m0.weights_bytes / 2, B = (m1.weights_bytes - 2 * W * 0.75) / (4 * 0.25), h = 2304;
    REL(m2.weights_bytes, 2 * W * 0.5 + 4 * 0.5 * B, 1e-12);
    REL(B, 12 * h * h + 13 * h, 1e-9);
    REL(m1.host_bytes, 0.25 * W * 2, 1e-12);
    REL(e1.host_memory_bytes, 0.25 * W * 2 * 8, 1e-12);
    ck_assert(m0.host_bytes == 0 && m1.activations_bytes == m0.activations_bytes);
    double rate = c.pcie_bytes_per_s * ST_PCIE_EFFICIENCY, back = 0.25 * W * 2 / rate;
    REL(e1.offload_weights_s, back, 1e-12);
    REL(e1.breakdown.offload_s, back + back / 26, 1e-9);
    REL(e1.iteration_time_s - e0.iteration_time_s, back + back / 26, 1e-6);
    /* the premise: a forward's copies (f W 2) are shorter than its compute */
    st_model m;
    ck_assert_int_eq(st_model_preset("gpt-1.7b", &m), 0);
    st_cost_ctx *ctx = st_cost_ctx_new(&m, &c, NULL);
    st_chunk_cost cc;
    st_offload_copies og;
    st_cost_chunk(ctx, &p, 0, &cc);
    st_cost_offload_granular_chunk(ctx, &p, 0, &og);
    REL(og.fwd_s, 0.5 * W * 2 / rate, 1e-12); /* p is the f = 0.5 plan */
    REL(og.bwd_s, og.fwd_s, 1e-12);
    REL(og.first_s, og.fwd_s / 26, 1e-12);
    ck_assert(og.fwd_s < cc.fwd_s && og.act_host_bytes == 0);
    st_cost_ctx_free(ctx);
}
END_TEST

/* offload_activations=g: each micro-batch's g share goes down after its forward and comes back for
 * its backward, A g / rate each way (A: its saved activations); here the copies outlast the passes,
 * so each of the m micro-batches adds (A g / rate - forward)+ + (A g / rate - backward)+. The GPU
 * keeps 1 - g of them plus two blocks' share (linear in g), the host g of them per GPU. */
START_TEST(test_granular_activations_closed_form) {
    st_cluster c = a100();
    st_model m;
    st_plan p;
    st_estimate e0, e1, e2;
    st_stage_memory m0, m1, m2;
    ck_assert_int_eq(st_model_preset("gpt-1.7b", &m), 0);
    estimate(&c, "", &p, &e0, &m0);
    estimate(&c, "offload_activations=0.25", &p, &e2, &m2);
    estimate(&c, "offload_activations=1", &p, &e1, &m1);
    st_cost_ctx *ctx = st_cost_ctx_new(&m, &c, NULL);
    st_chunk_cost cc;
    st_cost_chunk(ctx, &p, 0, &cc);
    double A = cc.act_bytes, rate = c.pcie_bytes_per_s * ST_PCIE_EFFICIENCY, x = A / rate;
    double mb = (double)st_plan_microbatches(&p);
    ck_assert(x > cc.fwd_s && x > cc.bwd_s); /* the premise: PCIe-bound both ways */
    REL(e1.iteration_time_s - e0.iteration_time_s, mb * ((x - cc.fwd_s) + (x - cc.bwd_s)), 1e-9);
    REL(m1.microbatch_act_bytes, A, 1e-12);
    REL(m1.host_bytes, A, 1e-12); /* one micro-batch in flight (pp = 1) */
    REL(m2.host_bytes, 0.25 * A, 1e-12);
    double saved1 = m0.activations_bytes - m1.activations_bytes, saved2 = m0.activations_bytes - m2.activations_bytes;
    REL(saved2, 0.25 * saved1, 1e-9);
    ck_assert(saved1 > 0.8 * A && saved1 < A); /* all but two of 24 blocks' */
    ck_assert(m1.weights_bytes == m0.weights_bytes);
    st_cost_ctx_free(ctx);
}
END_TEST

/* The simulator runs what the estimate prices: the copies on the copy stream beside each pass, the
 * pass waiting for them, the activations' host share leaving the GPU: times within 2%, the same
 * memory peak. ZB-H1's play prices each pass's copies with that pass (the backward's with the input
 * half, whose wait the lowering adds): within 0.3% where nothing but the copies is added. */
START_TEST(test_granular_sim_agrees) {
    static const struct {
        const char *spec;
        double tol;
    } rows[] = {
        {"tp=1,pp=2,dp=4,mbs=4,gbs=64,zero=1,offload_params=0.3,offload_activations=0.2", 0.02},
        {"tp=1,pp=2,dp=4,mbs=4,gbs=64,zero=1,offload_activations=0.5", 0.02},
        {"tp=2,pp=2,dp=2,mbs=2,gbs=64,zero=0,offload_params=0.5,schedule=zb", 0.02},
        /* ZB-H1 holds weight halves back d input halves on stage d (src/lower): the copies' window
         * brought back for an input half leaves with it, more micro-batches than stages and fewer */
        {"tp=1,pp=4,dp=2,mbs=1,gbs=16,zero=1,offload_activations=0.5,schedule=zb", 0.003},
        {"tp=1,pp=4,dp=2,mbs=1,gbs=4,zero=1,offload_activations=1,schedule=zb", 0.003},
    };
    st_cluster c = a100();
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        st_estimate e;
        double sim_s, peak;
        sim_and_estimate(&c, rows[i].spec, &e, &sim_s, &peak);
        ck_assert_msg(fabs(sim_s / e.iteration_time_s - 1) < rows[i].tol, "%s: sim %g, estimate %g", rows[i].spec,
                      sim_s, e.iteration_time_s);
        ck_assert_msg(fabs(peak / e.memory_peak_bytes - 1) < 1e-9, "%s: sim %g, estimate %g bytes", rows[i].spec,
                      peak, e.memory_peak_bytes);
    }
}
END_TEST

START_TEST(test_granular_bad_input) {
    st_model m;
    st_cluster c = a100();
    st_error err;
    ck_assert_int_eq(st_model_preset("gpt-1.7b", &m), 0);
    static const struct {
        const char *spec, *key;
        int at_parse;
    } bad[] = {{"offload_params=1.5", "offload_params", 1},
               {"offload_params=-1", "offload_params", 1},
               {"offload_activations=2", "offload_activations", 1},
               {"offload_activations=inf", "offload_activations", 1},
               {"zero=3,offload_params=0.5", "offload_params", 0},
               {"zero=1,offload=optimizer,offload_params=0.5", "offload_params", 0},
               {"zero=1,offload_optimizer=0.5,offload_params=0.5", "offload_params", 0},
               {"zero=3,offload_activations=0.5", "offload_activations", 0},
               {"pp=2,vp=2,gbs=64,schedule=zbv,offload_activations=0.5", "offload_activations", 0},
               {"pp=2,vp=2,gbs=64,schedule=zbv,offload_params=0.5", "offload_params", 0}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) refused(&m, &c, bad[i].spec, bad[i].at_parse, bad[i].key);
    /* the spec gives both back; no framework runs them (the emitters refuse, naming the key) */
    st_plan p, q;
    spec_round_trip(&m, &c, "zero=1,offload_params=0.3,offload_activations=0.7",
                    ",offload_params=0.3,offload_activations=0.7", &p, &q);
    ck_assert(q.offload_params == 0.3 && q.offload_activations == 0.7);
    FILE *f = tmpfile();
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(st_emit(ST_EMIT_DEEPSPEED, &p, &m, &c, f, &err), ST_EINVAL);
    ck_assert_str_eq(err.key, "offload_params");
    p.offload_params = 0;
    ck_assert_int_eq(st_emit(ST_EMIT_MEGATRON, &p, &m, &c, f, &err), ST_EINVAL);
    ck_assert_str_eq(err.key, "offload_activations");
    fclose(f);
}
END_TEST

Suite *suite_offload(void) {
    Suite *s = suite_create("offload");
    TCase *tc = tcase_create("optimizer");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_fraction_0_and_1_are_the_old_modes);
    tcase_add_test(tc, test_half_closed_form);
    tcase_add_test(tc, test_host_memory_checked);
    tcase_add_test(tc, test_sim_agrees);
    tcase_add_test(tc, test_bad_fractions);
    suite_add_tcase(s, tc);
    TCase *tg = tcase_create("granular");
    tcase_set_timeout(tg, 60);
    tcase_add_test(tg, test_granular_params_closed_form);
    tcase_add_test(tg, test_granular_activations_closed_form);
    tcase_add_test(tg, test_granular_sim_agrees);
    tcase_add_test(tg, test_granular_bad_input);
    suite_add_tcase(s, tg);
    return s;
}
