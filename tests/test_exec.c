/* test_exec.c: the executor layer (exec/exec.h): backends by name, a replicated plan's job ranks, the
 * arena measure pass, and the order check of the transfers. */
#include "src/strata.h"
#include "suites.h"

#include <stdlib.h>
#include <string.h>

START_TEST(backend_names) {
    st_exec_backend b;
    for (int i = 0; i < ST_EXEC_COUNT; i++) {
        ck_assert_int_eq(st_exec_backend_parse(st_exec_backend_name((st_exec_backend)i), &b), 0);
        ck_assert_int_eq(b, i);
    }
    ck_assert_str_eq(st_exec_backend_name(ST_EXEC_CUDA), "cuda");
    ck_assert_int_eq(st_exec_backend_parse("rocm", &b), ST_EINVAL);
    ck_assert_int_eq(st_exec_backend_parse("", &b), ST_EINVAL);
}
END_TEST

/* a replicated plan's copies: world rank w runs rank w / copies; mpirun's count and the backend checked */
START_TEST(job_rank_copies) {
    st_error err;
    int rank = -1;
    ck_assert_int_eq(st_exec_job_rank(2, 1, ST_EXEC_CUDA, 3, 5, &rank, &err), 0); /* one copy: the world's */
    ck_assert_int_eq(rank, 3);
    ck_assert_int_eq(st_exec_job_rank(2, 4, ST_EXEC_CPU, 5, 8, &rank, &err), 0);
    ck_assert_int_eq(rank, 1); /* copy 1 of 4, rank 1 of 2: world ranks 4..7 hold rank 1 */
    ck_assert_int_eq(st_exec_job_rank(2, 4, ST_EXEC_CPU, 7, 8, &rank, &err), 0);
    ck_assert_int_eq(rank, 1);
    ck_assert_int_eq(st_exec_job_rank(2, 4, ST_EXEC_CPU, 0, 4, &rank, &err), ST_EINVAL);
    ck_assert_ptr_nonnull(strstr(err.text, "2 ranks (tp x pp x dp x cp), 4 copies of them"));
    ck_assert_ptr_nonnull(strstr(err.text, "mpirun started 4 (mpirun -np 8)"));
    ck_assert_int_eq(st_exec_job_rank(2, 4, ST_EXEC_CUDA, 0, 8, &rank, &err), ST_EINVAL);
    ck_assert_ptr_nonnull(strstr(err.text, "the cuda backend runs no replicated plan"));
}
END_TEST

/* a hand-made program: the peak of base + allocations so far - frees so far, an allocation counted
 * before its own instruction's free */
START_TEST(arena_hand_made) {
    st_ins ins[4] = {{.alloc_bytes = 50}, {.alloc_bytes = 30, .free_bytes = 80}, {.alloc_bytes = 10},
                     {.free_bytes = 10}};
    st_program pg = {.base_bytes = 100, .n = 4, .ins = ins, .replicas = 1};
    ck_assert_double_eq(st_exec_arena_bytes(&pg), 180); /* 100 + 50 + 30 */
    pg.n = 0;
    ck_assert_double_eq(st_exec_arena_bytes(&pg), 100);
}
END_TEST

/* the lowering of plan spec for model on one dgx-a100-80g node of nranks GPUs (free ctx with
 * st_cost_ctx_free after st_lowered_destroy) */
static st_cost_ctx *lower_preset(const char *model, const char *spec, int nranks, st_lowered *l) {
    st_model m;
    st_cluster c;
    st_plan p;
    st_error err;
    ck_assert_int_eq(st_model_preset(model, &m), 0);
    ck_assert_int_eq(st_cluster_preset("dgx-a100-80g", &c), 0);
    c.nodes = 1;
    st_plan_defaults(&p);
    ck_assert_int_eq(st_plan_parse_spec(spec, &p, &err), 0);
    ck_assert_msg(st_plan_finalize(&p, &m, &c, nranks, NULL, &err) == 0, "%s", err.text);
    st_cost_ctx *ctx = st_cost_ctx_new(&m, &c, NULL);
    ck_assert_msg(st_lower(ctx, &p, l, &err) == 0, "%s", err.text);
    return ctx;
}

/* On real lowerings: every rank needs at least its base bytes, and an arena sized in program order
 * holds what the simulator's busiest moment holds when nothing runs beside the compute stream
 * (gpipe, no data parallelism, no offload: allocations and frees all happen on that stream, in
 * program order, so the two peaks are the same number). */
START_TEST(arena_real_lowering) {
    st_lowered l;
    st_error err;
    st_cost_ctx *ctx = lower_preset("gpt-1.7b", "tp=2,pp=2,dp=1,gbs=8,schedule=gpipe", 4, &l);
    st_sim_result r;
    ck_assert_msg(st_sim_run(&l, 0, NULL, &r, &err) == 0, "%s", err.text);
    for (int i = 0; i < l.nranks; i++) {
        double arena = st_exec_arena_bytes(&l.progs[i]);
        ck_assert(arena >= l.progs[i].base_bytes);
        ck_assert_msg(arena == r.ranks[i].memory_peak_bytes, "rank %d: arena %.17g, simulated peak %.17g", i, arena,
                      r.ranks[i].memory_peak_bytes);
    }
    st_sim_result_destroy(&r);
    st_lowered_destroy(&l);
    st_cost_ctx_free(ctx);
}
END_TEST

/* Hand-made pairs of programs: rank 0 sends tags 1 then 2 to rank 1 (with a receive of its own from
 * rank 1 between), rank 1 receives them in that order (1), the other way round (0), or misses one
 * (0); and a real 1F1B lowering of 4 stages, whose transfers are in order. */
START_TEST(p2p_in_order) {
    st_ins a[3] = {{.kind = ST_INS_SEND, .peer = 1, .tag = 1}, {.kind = ST_INS_RECV, .peer = 1, .tag = 9},
                   {.kind = ST_INS_SEND, .peer = 1, .tag = 2}};
    st_ins b[4] = {{.kind = ST_INS_COMPUTE}, {.kind = ST_INS_RECV, .peer = 0, .tag = 1},
                   {.kind = ST_INS_SEND, .peer = 0, .tag = 9}, {.kind = ST_INS_RECV, .peer = 0, .tag = 2}};
    st_program pg[2] = {{.rank = 0, .replicas = 1, .n = 3, .ins = a}, {.rank = 1, .replicas = 1, .n = 4, .ins = b}};
    st_lowered l = {.nranks = 2, .progs = pg};
    ck_assert_int_eq(st_exec_p2p_in_order(&l), 1);
    b[1].tag = 2, b[3].tag = 1; /* rank 1 takes tag 2 first */
    ck_assert_int_eq(st_exec_p2p_in_order(&l), 0);
    b[1].tag = 1, b[3].kind = ST_INS_COMPUTE; /* tag 2 never received */
    ck_assert_int_eq(st_exec_p2p_in_order(&l), 0);
    b[3].kind = ST_INS_RECV, a[1].tag = 8; /* rank 0 takes another tag than rank 1 sends */
    ck_assert_int_eq(st_exec_p2p_in_order(&l), 0);

    st_lowered r;
    st_cost_ctx *ctx = lower_preset("tiny-gpt", "tp=1,pp=4,dp=1,gbs=8,seq=32", 4, &r);
    ck_assert_int_eq(st_exec_p2p_in_order(&r), 1);
    st_lowered_destroy(&r);
    st_cost_ctx_free(ctx);
}
END_TEST

Suite *suite_exec(void) {
    Suite *s = suite_create("exec");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, backend_names);
    tcase_add_test(tc, job_rank_copies);
    tcase_add_test(tc, arena_hand_made);
    tcase_add_test(tc, arena_real_lowering);
    tcase_add_test(tc, p2p_in_order);
    suite_add_tcase(s, tc);
    return s;
}
