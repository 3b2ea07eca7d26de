/* test_stage_tp.c: a different tensor-parallel degree per pipeline stage (issue 19, stage_tp): the plan key
 * and its checks (the plan file's round trip is test_groups.c's, its bad files tests/cli_stage_tp.sh's), the
 * per-stage closed form of the estimate, the exchange between stages of different tp, the simulator by stage
 * and every rank against the estimate, the enumerator on node groups, and the refusals (the emitters; every
 * rank under zbv and dualpipe). */
#include "cost/cost_private.h"
#include "src/strata.h"
#include "groups_fixture.h"
#include "suites.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* `na` DGX A100 80GB nodes, then `nh` DGX H100 nodes, 200 GB/s per node between them */
static void a100_h100(st_cluster *c, int64_t na, int64_t nh) {
    memset(c, 0, sizeof *c);
    snprintf(c->name, sizeof c->name, "a100-h100");
    c->ngroups = 2;
    group_from(&c->groups[0], "dgx-a100-80g", "a100", na);
    group_from(&c->groups[1], "dgx-h100", "h100", nh);
    c->xgroup_bytes_per_s = 200e9, c->xgroup_latency_s = 1e-6, c->xgroup_oversubscription = 1;
    ck_assert_int_eq(st_cluster_finalize(c, NULL, NULL), 0);
}

/* the key a bad spec is refused with by st_plan_finalize */
static const char *refused_key(const st_model *m, const st_cluster *c, const char *spec, int64_t gpus, st_error *err) {
    st_plan p;
    st_plan_defaults(&p);
    ck_assert_int_eq(st_plan_parse_spec(spec, &p, err), 0);
    ck_assert_msg(st_plan_finalize(&p, m, c, gpus, NULL, err) == ST_EINVAL, "%s was not refused", spec);
    ck_assert_ptr_null(strchr(err->text, '\n'));
    return err->key;
}

START_TEST(test_keys) {
    st_model m;
    st_cluster c;
    st_plan p, u;
    st_error err;
    ck_assert_int_eq(st_model_preset("llama2-7b", &m), 0);
    a100_h100(&c, 2, 2);
    /* stage d's ranks: cp x dp x stage_tp[d], one block after another; tp is the largest */
    plan_on(&m, &c, "pp=3,stage_tp=8,4,4,dp=2,gbs=64", &p);
    ck_assert_int_eq(p.tp, 8);
    ck_assert_int_eq(p.nstage_tp, 3);
    ck_assert_int_eq(st_plan_gpus(&p), 32);
    ck_assert_int_eq(st_plan_stage_rank0(&p, 1), 16);
    ck_assert_int_eq(st_plan_stage_rank0(&p, 2), 24);
    ck_assert_int_eq(st_plan_stage_tp(&p, 2), 4);
    st_plan q;
    st_plan_stage_plan(&p, 1, &q);
    ck_assert_int_eq(q.tp, 4);
    ck_assert_int_eq(q.nstage_tp, 0);
    /* the spec round trip; equal entries are plain tp */
    char spec[512];
    st_plan_format_spec(&p, spec, sizeof spec);
    ck_assert_ptr_nonnull(strstr(spec, "tp=8,") == spec ? strstr(spec, ",stage_tp=8,4,4") : NULL);
    st_plan_defaults(&u);
    ck_assert_int_eq(st_plan_parse_spec(spec, &u, &err), 0);
    ck_assert_int_eq(st_plan_finalize(&u, &m, &c, 0, NULL, &err), 0);
    ck_assert_int_eq(u.stage_tp[1], 4);
    plan_on(&m, &c, "pp=2,stage_tp=8,8,dp=2,gbs=64", &u);
    ck_assert_int_eq(u.nstage_tp, 0);
    ck_assert_int_eq(u.tp, 8);
    /* bad input: one line naming stage_tp */
    ck_assert_str_eq(refused_key(&m, &c, "pp=2,stage_tp=8,3,dp=1", 0, &err), "stage_tp"); /* 3 divides no head */
    ck_assert_ptr_nonnull(strstr(err.text, "entry 1 (3)"));
    ck_assert_str_eq(refused_key(&m, &c, "pp=3,stage_tp=8,4,dp=1", 0, &err), "stage_tp"); /* the wrong length */
    ck_assert_ptr_nonnull(strstr(err.text, "pp = 3"));
    ck_assert_str_eq(refused_key(&m, &c, "pp=3,stage_tp=8,8,4,dp=2", 0, &err), "stage_tp"); /* 40 ranks on 32 */
    ck_assert_ptr_nonnull(strstr(err.text, "40"));
    ck_assert_str_eq(refused_key(&m, &c, "pp=2,stage_tp=8,4,dp=2", 32, &err), "stage_tp"); /* 24, 32 asked */
    ck_assert_str_eq(refused_key(&m, &c, "pp=2,stage_tp=8,4", 0, &err), "stage_tp"); /* 12 does not divide 32 */
    ck_assert_str_eq(refused_key(&m, &c, "tp=4,pp=2,stage_tp=8,4,dp=1", 0, &err), "stage_tp"); /* tp not the max */
    ck_assert_str_eq(refused_key(&m, &c, "pp=2,stage_tp=8,4,dp=1,sp=1,tp_overlap=1", 0, &err), "stage_tp");
    ck_assert_int_eq(st_plan_parse_spec("pp=2,stage_tp=8,x", &p, &err), ST_EINVAL);
    ck_assert_str_eq(err.key, "stage_tp");
}
END_TEST

START_TEST(test_closed_form) {
    /* a two-stage pipeline, the A100 stage at tp 8 and the faster H100 stage at tp 4 (12 GPUs of one
     * DGX A100 and one DGX H100): each stage costs what the uniform plan of its own tp costs on its own
     * GPUs, plus its messages (sp = 0: every rank of both tp groups holds the whole activation, so the
     * exchange is the uniform message between the two stages' nodes), and the pipeline takes
     * m max_d t_d + sum_d t_d - max_d t_d (Narayanan et al. SC'21) */
    st_model m;
    st_cluster c;
    st_plan p, p8, p4;
    st_estimate e;
    ck_assert_int_eq(st_model_preset("llama2-7b", &m), 0);
    a100_h100(&c, 1, 1);
    plan_on(&m, &c, "pp=2,stage_tp=8,4,dp=1,gbs=64", &p);
    plan_on(&m, &c, "tp=8,pp=2,dp=1,gbs=64", &p8);
    plan_on(&m, &c, "tp=4,pp=2,dp=1,gbs=64", &p4);
    st_cost_ctx *ctx = st_cost_ctx_new(&m, &c, NULL);
    ck_assert_ptr_nonnull(ctx);
    ck_assert_int_eq(st_cost_estimate(ctx, &p, &e), 0);
    st_cost_ctx *va = st_cost_view(ctx, 0, 8), *vh = st_cost_view(ctx, 8, 4), *both = st_cost_view(ctx, 0, 12);
    ck_assert_str_eq(st_cost_cluster(vh)->gpu.name, "h100-sxm-80g");
    double x = st__p2p_time(both, &p8);
    ck_assert_double_eq_tol(st_cost_stage_p2p(ctx, &p, 0, 1), x, 1e-12);
    ck_assert_double_eq_tol(st_cost_stage_p2p_bytes(ctx, &p, 1), st_cost_p2p_bytes(ctx, &p8), 1e-6);
    double t[2] = {chunk_time(va, &p8, 0) + 2 * x, chunk_time(vh, &p4, 1) + 2 * x};
    double mx = t[0] > t[1] ? t[0] : t[1], pred = 64 * mx + t[0] + t[1] - mx;
    double pipe = e.iteration_time_s - e.breakdown.dp_comm_s - e.breakdown.optimizer_s - e.breakdown.offload_s;
    ck_assert_msg(fabs(pipe - pred) <= 1e-9 * pred, "pipeline %.9f s, closed form %.9f s", pipe, pred);
    ck_assert_int_eq(st_plan_gpus(&p), 12);
    /* the H100 stage at tp 4 is still the faster one here */
    ck_assert(t[1] < t[0]);
    st_cost_ctx_free(ctx);
}
END_TEST

START_TEST(test_exchange) {
    /* with sp each tp rank holds 1/tp of the sequence: between tp 8 and tp 4 the busier end moves 1/4 of
     * the activation (Zhuang et al. 2023's cross-mesh resharding), twice the uniform tp 8 message and as
     * much as the uniform tp 4 one */
    st_model m;
    st_cluster c;
    st_plan p, p8, p4;
    ck_assert_int_eq(st_model_preset("llama2-7b", &m), 0);
    a100_h100(&c, 1, 1);
    plan_on(&m, &c, "pp=2,stage_tp=8,4,dp=1,gbs=64,sp=1", &p);
    plan_on(&m, &c, "tp=8,pp=2,dp=1,gbs=64,sp=1", &p8);
    plan_on(&m, &c, "tp=4,pp=2,dp=1,gbs=64,sp=1", &p4);
    st_cost_ctx *ctx = st_cost_ctx_new(&m, &c, NULL);
    double b = st_cost_stage_p2p_bytes(ctx, &p, 0);
    ck_assert_double_eq_tol(b, 2 * st_cost_p2p_bytes(ctx, &p8), 1e-6);
    ck_assert_double_eq_tol(b, st_cost_p2p_bytes(ctx, &p4), 1e-6);
    ck_assert(st_cost_stage_p2p(ctx, &p, 0, 0) > st__p2p_time(st_cost_view(ctx, 0, 12), &p8));
    st_cost_ctx_free(ctx);
}
END_TEST

START_TEST(test_uniform_unchanged) {
    /* stage_tp of equal entries is tp: the same estimate to the last bit */
    st_model m;
    st_cluster c;
    st_plan p, q;
    st_estimate a, b;
    ck_assert_int_eq(st_model_preset("llama2-7b", &m), 0);
    a100_h100(&c, 2, 2);
    plan_on(&m, &c, "tp=8,pp=2,dp=2,gbs=64", &p);
    plan_on(&m, &c, "pp=2,stage_tp=8,8,dp=2,gbs=64", &q);
    st_cost_ctx *ctx = st_cost_ctx_new(&m, &c, NULL);
    ck_assert_int_eq(st_cost_estimate(ctx, &p, &a), 0);
    ck_assert_int_eq(st_cost_estimate(ctx, &q, &b), 0);
    ck_assert(a.iteration_time_s == b.iteration_time_s);
    st_cost_ctx_free(ctx);
}
END_TEST

static double sim_s(st_cost_ctx *ctx, const st_plan *p) {
    st_error err;
    st_lowered l;
    st_sim_result r;
    ck_assert_msg(st_lower(ctx, p, &l, &err) == 0, "%s", err.text);
    ck_assert_msg(st_sim_run(&l, 0, NULL, &r, &err) == 0, "%s", err.text);
    /* each stage's program stands for its own ranks: stage_tp[d] x dp of them from its first GPU */
    for (int d = 0; d < p->pp; d++) {
        ck_assert_int_eq(l.progs[d].gpu, (int)st_plan_stage_rank0(p, d));
        ck_assert_int_eq(l.progs[d].replicas, st_plan_stage_tp(p, d) * p->cp * p->dp);
    }
    double t = r.iteration_time_s;
    st_sim_result_destroy(&r);
    st_lowered_destroy(&l);
    return t;
}

START_TEST(test_sim) {
    /* the simulator by stage within 10% of the estimate (issue 19's check) on stage_tp plans of the
     * 2 + 2 node A100 + H100 cluster */
    static const char *const specs[] = {"pp=3,stage_tp=8,4,4,dp=2,gbs=64",
                                        "pp=3,stage_tp=8,4,4,dp=2,gbs=64,sp=1,stage_layers=8,12,12",
                                        "pp=3,stage_tp=4,4,8,dp=2,gbs=64,zero=1,overlap_grad_reduce=1",
                                        "pp=4,stage_tp=8,8,2,2,dp=1,gbs=32,recompute=selective"};
    st_model m;
    st_cluster c;
    ck_assert_int_eq(st_model_preset("llama2-7b", &m), 0);
    a100_h100(&c, 2, 2);
    st_cost_ctx *ctx = st_cost_ctx_new(&m, &c, NULL);
    for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++) {
        st_plan p;
        st_estimate e;
        plan_on(&m, &c, specs[i], &p);
        ck_assert_int_eq(st_cost_estimate(ctx, &p, &e), 0);
        double s = sim_s(ctx, &p);
        ck_assert_msg(fabs(s / e.iteration_time_s - 1) < 0.1, "%s: sim %.6f s, estimate %.6f s", specs[i], s,
                      e.iteration_time_s);
    }
    st_cost_ctx_free(ctx);
}
END_TEST

/* the sends of rank r's program to `peer` (-1: any) */
static int sends_to(const st_lowered *l, int r, int peer) {
    int n = 0;
    for (int i = 0; i < l->progs[r].n; i++)
        n += l->progs[r].ins[i].kind == ST_INS_SEND && (peer < 0 || l->progs[r].ins[i].peer == peer);
    return n;
}

START_TEST(test_every_rank) {
    /* every rank its own program at its stage's tp: within 10% of the simulation by stage and of the
     * estimate on test_sim's plans and a tied embedding's, its programs consistent (st_program_validate)
     * and the run finished (a collective that never met would stop it); zbv and dualpipe refused */
    static const struct {
        const char *model, *spec;
    } runs[] = {{"llama2-7b", "pp=3,stage_tp=8,4,4,dp=2,gbs=64"},
                {"llama2-7b", "pp=3,stage_tp=8,4,4,dp=2,gbs=64,sp=1,stage_layers=8,12,12"},
                {"llama2-7b", "pp=3,stage_tp=4,4,8,dp=2,gbs=64,zero=1,overlap_grad_reduce=1"},
                {"llama2-7b", "pp=4,stage_tp=8,8,2,2,dp=1,gbs=32,recompute=selective"},
                {"gpt-7.5b", "pp=3,stage_tp=8,4,4,dp=2,gbs=64"}};
    st_cluster c;
    a100_h100(&c, 2, 2);
    for (size_t i = 0; i < sizeof runs / sizeof runs[0]; i++) {
        st_model m;
        st_plan p;
        st_estimate e;
        st_lowered l;
        st_sim_result r;
        st_error err;
        ck_assert_int_eq(st_model_preset(runs[i].model, &m), 0);
        st_cost_ctx *ctx = st_cost_ctx_new(&m, &c, NULL);
        plan_on(&m, &c, runs[i].spec, &p);
        ck_assert_int_eq(st_cost_estimate(ctx, &p, &e), 0);
        double by_stage = sim_s(ctx, &p);
        ck_assert_msg(st_lower_full(ctx, &p, &l, &err) == 0, "%s", err.text);
        ck_assert_int_eq(l.nranks, st_plan_gpus(&p));
        ck_assert_msg(st_program_validate(&l, &err) == 0, "%s: %s", runs[i].spec, err.text);
        ck_assert_msg(st_sim_run(&l, 0, NULL, &r, &err) == 0, "%s: %s", runs[i].spec, err.text);
        double s = r.iteration_time_s;
        ck_assert_msg(fabs(s / by_stage - 1) < 0.1 && fabs(s / e.iteration_time_s - 1) < 0.1,
                      "%s: every rank %.6f s, by stage %.6f s, estimate %.6f s", runs[i].spec, s, by_stage,
                      e.iteration_time_s);
        if (i == 0 || i == 4) {
            /* stage 0 (tp 8, ranks 0-15) and stage 1 (tp 4, ranks 16-23) pair (2t, dp q) with (t, q); stage 0's
             * odd tp ranks exchange nothing; stages 1 and 2 (both tp 4) lane for lane */
            ck_assert_int_gt(sends_to(&l, 0, 16), 0);
            ck_assert_int_gt(sends_to(&l, 10, 21), 0);
            ck_assert_int_gt(sends_to(&l, 17, 2), 0);
            ck_assert_int_eq(sends_to(&l, 1, -1), 0);
            ck_assert_int_gt(sends_to(&l, 17, 25), 0);
        }
        int emb = 0;
        for (int g = 0; g < l.ngroups; g++) {
            if (l.groups[g].kind != ST_GRP_PP) continue;
            /* the tied embedding's pairs: stage 0's rank 2t + 8q with stage 2's 24 + t + 4q */
            int a = l.groups[g].ranks[0], b = l.groups[g].ranks[1];
            ck_assert_int_eq(a % 2, 0);
            ck_assert_int_eq(b, 24 + (a % 8) / 2 + 4 * (a / 8));
            emb++;
        }
        ck_assert_int_eq(emb, i == 4 ? 8 : 0);
        st_sim_result_destroy(&r);
        st_lowered_destroy(&l);
        st_cost_ctx_free(ctx);
    }
    st_model m;
    st_plan p;
    st_lowered l;
    st_error err;
    ck_assert_int_eq(st_model_preset("llama2-7b", &m), 0);
    st_cost_ctx *ctx = st_cost_ctx_new(&m, &c, NULL);
    plan_on(&m, &c, "pp=2,stage_tp=8,4,dp=2,gbs=64,schedule=zbv", &p);
    ck_assert_int_eq(st_lower_full(ctx, &p, &l, &err), ST_EINVAL);
    ck_assert_str_eq(err.key, "stage_tp");
    st_cost_ctx_free(ctx);
}
END_TEST

START_TEST(test_emit_refuses) {
    /* Megatron-LM, DeepSpeed and torchtitan run one tp per model: one error naming the key and the flag */
    static const char *const why[] = {"--tensor-model-parallel-size", "model-parallel size", "tp dimension"};
    st_model m;
    st_cluster c;
    st_plan p;
    ck_assert_int_eq(st_model_preset("llama2-7b", &m), 0);
    a100_h100(&c, 2, 2);
    plan_on(&m, &c, "pp=3,stage_tp=8,4,4,dp=2,gbs=64", &p);
    st_emit_kind kinds[] = {ST_EMIT_MEGATRON, ST_EMIT_DEEPSPEED, ST_EMIT_TORCHTITAN};
    for (int k = 0; k < 3; k++) {
        st_error err;
        st_error_clear(&err);
        FILE *f = tmpfile();
        ck_assert_ptr_nonnull(f);
        ck_assert_int_eq(st_emit(kinds[k], &p, &m, &c, f, &err), ST_EINVAL);
        ck_assert_str_eq(err.key, "stage_tp");
        ck_assert_ptr_nonnull(strstr(err.text, why[k]));
        ck_assert_int_eq(ftell(f), 0);
        fclose(f);
    }
}
END_TEST

static int no_stage_tp(const st_plan *p, void *arg) {
    (void)arg;
    return !p->nstage_tp;
}

START_TEST(test_enumerate) {
    /* on node groups the enumerator prices a tp per group (both groups' tp inside a node, stages of one tp
     * per group); every plan it keeps is one plan.c accepts, and a filter that refuses them (the
     * emitters do) leaves only plans of one tp */
    st_model m;
    st_cluster c;
    st_search_opts o;
    st_search_result r;
    st_error err;
    ck_assert_int_eq(st_model_preset("tiny-llama", &m), 0);
    a100_h100(&c, 1, 1);
    st_search_opts_init(&o);
    o.gbs = 16;
    o.top = 10000;
    ck_assert_int_eq(st_search_enumerate(&m, &c, NULL, &o, &r, &err), 0);
    int seen = 0;
    for (int i = 0; i < r.n; i++) {
        st_plan p = r.plans[i].plan;
        if (!p.nstage_tp) continue;
        seen++;
        ck_assert_int_eq(st_plan_gpus(&p), 16);
        ck_assert_int_eq((int64_t)st_plan_stage_tp(&p, 0) * p.cp * p.dp, st_plan_stage_rank0(&p, 1));
        ck_assert(st_plan_stage_tp(&p, 0) != st_plan_stage_tp(&p, p.pp - 1));
        char spec[1024];
        st_plan_format_spec(&p, spec, sizeof spec);
        st_plan q;
        st_plan_defaults(&q);
        ck_assert_int_eq(st_plan_parse_spec(spec, &q, &err), 0);
        ck_assert_msg(st_plan_finalize(&q, &m, &c, 0, NULL, &err) == 0, "%s: %s", spec, err.text);
    }
    ck_assert_int_gt(seen, 0);
    st_search_result_destroy(&r);
    o.accept = no_stage_tp;
    ck_assert_int_eq(st_search_enumerate(&m, &c, NULL, &o, &r, &err), 0);
    ck_assert_int_gt(r.n, 0);
    for (int i = 0; i < r.n; i++) ck_assert_int_eq(r.plans[i].plan.nstage_tp, 0);
    st_search_result_destroy(&r);
}
END_TEST

Suite *suite_stage_tp(void) {
    Suite *s = suite_create("stage_tp");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_keys);
    tcase_add_test(tc, test_closed_form);
    tcase_add_test(tc, test_exchange);
    tcase_add_test(tc, test_uniform_unchanged);
    tcase_add_test(tc, test_sim);
    tcase_add_test(tc, test_every_rank);
    tcase_add_test(tc, test_emit_refuses);
    tcase_add_test(tc, test_enumerate);
    suite_add_tcase(s, tc);
    return s;
}
