/* test_validate.c: the Check suite of the program format's validator (src/lower/validate.c) and
 * the rank index beside it.
 *
 * One small valid lowering, built by hand: four ranks, two tp groups, two links with a route each;
 * ranks 0 and 1 own their instructions (compute, an all-reduce of their group, a send 0 -> 1), and
 * ranks 2 and 3 share them under their own names (program.h, "Shared instructions"): group 1,
 * peers 3 and 2, route 1. Each rule is then broken once, on a fresh copy, and the validator must
 * refuse it with ST_EINVAL and a message that names what is wrong: the program, group, link or
 * route, or the rank and instruction. The rules a sharer's names must keep are broken through its
 * renames, where the validator first checks names and then reads the instructions to say which.
 */
#include "src/lower/lower.h"
#include "src/sim/sim.h"
#include "suites.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { NR = 4, NI = 3 };

static st_ins *ins_new(int peer, st_ins_kind p2p) {
    st_ins *v = calloc(NI, sizeof *v);
    ck_assert_ptr_nonnull(v);
    for (int i = 0; i < NI; i++) {
        v[i].chunk = 0;
        v[i].mb = 0;
        v[i].dep[0] = i - 1; /* each on the one before */
        v[i].dep[1] = -1;
        v[i].route = -1;
        v[i].dur_s = 1;
    }
    v[0].kind = ST_INS_COMPUTE;
    v[0].label = "fwd";
    v[1].kind = ST_INS_COLL;
    v[1].stream = ST_STREAM_COMPUTE;
    v[1].group = 0;
    v[1].route = 0;
    v[1].latency_s = 0.25;
    v[1].label = "tp all-reduce";
    v[2].kind = (uint8_t)p2p;
    v[2].stream = ST_STREAM_P2P;
    v[2].peer = peer;
    v[2].route = 0;
    v[2].label = p2p == ST_INS_SEND ? "send act" : "recv act";
    return v;
}

static st_rename *renames_new(int peer_from, int peer_to) {
    st_rename *r = malloc(3 * sizeof *r);
    ck_assert_ptr_nonnull(r);
    r[0] = (st_rename){ST_RENAME_GROUP, 0, 1};
    r[1] = (st_rename){ST_RENAME_PEER, peer_from, peer_to};
    r[2] = (st_rename){ST_RENAME_ROUTE, 0, 1};
    return r;
}

static st_lowered *fixture(void) {
    st_lowered *l = calloc(1, sizeof *l);
    ck_assert_ptr_nonnull(l);
    l->nranks = NR;
    l->progs = calloc(NR, sizeof *l->progs);
    l->ngroups = 2;
    l->groups = calloc(2, sizeof *l->groups);
    ck_assert(l->progs && l->groups);
    for (int g = 0; g < 2; g++) {
        l->groups[g].kind = ST_GRP_TP;
        l->groups[g].n = 2;
        l->groups[g].ranks = malloc(2 * sizeof(int));
        ck_assert_ptr_nonnull(l->groups[g].ranks);
        l->groups[g].ranks[0] = 2 * g;
        l->groups[g].ranks[1] = 2 * g + 1;
    }
    for (int p = 0; p < NR; p++) {
        st_program *pg = &l->progs[p];
        pg->rank = p;
        pg->replicas = 1;
        pg->n = NI;
        if (p < 2) {
            pg->ins = ins_new(1 - p, p == 0 ? ST_INS_SEND : ST_INS_RECV);
            pg->cap = NI;
        } else {
            pg->like = &l->progs[p - 2];
            pg->ins = pg->like->ins;
            pg->cap = -NI;
            pg->nrenames = 3;
            pg->renames = renames_new(1 - (p - 2), p == 2 ? 3 : 2);
        }
    }
    l->nlinks = 2;
    l->links = calloc(2, sizeof *l->links);
    l->nroutes = 2;
    l->routes = calloc(2, sizeof *l->routes);
    l->nhops = 2;
    l->hops = calloc(2, sizeof *l->hops);
    ck_assert(l->links && l->routes && l->hops);
    for (int k = 0; k < 2; k++) {
        l->links[k] = (st_link){ST_LINK_NVLINK, 0, k, k, 1e9, "link"};
        l->routes[k] = (st_route){k, 1, 1e9};
        l->hops[k] = (st_hop){k, 1};
    }
    return l;
}

static void fixture_free(st_lowered *l) {
    st_lowered_destroy(l); /* (the owners' cap >= 0: theirs to free; the sharers' < 0) */
    free(l);
}

/* a fresh fixture, broken by `mutate`, must be refused with `expect` in the message */
static void refused(void (*mutate)(st_lowered *), const char *expect) {
    st_lowered *l = fixture();
    int nranks = l->nranks, ngroups = l->ngroups;
    st_error err;
    st_error_clear(&err);
    mutate(l);
    int rc = st_program_validate(l, &err);
    ck_assert_msg(rc == ST_EINVAL, "expected a refusal with \"%s\", got %d (%s)", expect, rc, err.text);
    ck_assert_msg(strstr(err.text, expect) != NULL, "expected \"%s\" in \"%s\"", expect, err.text);
    l->nranks = nranks; /* (what the destroy walks) */
    l->ngroups = ngroups;
    fixture_free(l);
}

START_TEST(valid_fixture_passes_and_runs) {
    st_lowered *l = fixture();
    st_error err;
    st_error_clear(&err);
    ck_assert_msg(st_program_validate(l, &err) == 0, "%s", err.text);
    /* and it means what it says: the simulator runs it (compute 1, all-reduce 1, send 1) */
    st_sim_result r;
    ck_assert_msg(st_sim_run(l, 0, NULL, &r, &err) == 0, "%s", err.text);
    ck_assert_double_eq_tol(r.iteration_time_s, 3, 1e-12);
    st_sim_result_destroy(&r);
    fixture_free(l);
}
END_TEST

/* ---- the tables */
static void no_ranks(st_lowered *l) { l->nranks = 0; }
static void no_group_table(st_lowered *l) { l->ngroups = -1; }
static void negative_rank(st_lowered *l) { l->progs[1].rank = -5; }
static void duplicate_rank(st_lowered *l) { l->progs[3].rank = 0; }
static void bad_list(st_lowered *l) { l->progs[1].n = -1; }
static void like_a_sharer(st_lowered *l) { l->progs[3].like = &l->progs[2]; }
static void like_other_ins(st_lowered *l) { l->progs[3].n = 2; }
static void bad_renames(st_lowered *l) { l->progs[2].nrenames = -1; }
static void unsorted_renames(st_lowered *l) {
    st_rename t = l->progs[2].renames[0];
    l->progs[2].renames[0] = l->progs[2].renames[1];
    l->progs[2].renames[1] = t;
}
static void nan_base(st_lowered *l) { l->progs[0].base_bytes = NAN; }

START_TEST(tables) {
    refused(no_ranks, "no ranks");
    refused(no_group_table, "invalid group table");
    refused(negative_rank, "program 1 has a negative rank -5");
    refused(duplicate_rank, "two programs claim rank 0");
    refused(bad_list, "rank 1: invalid instruction list");
    refused(like_a_sharer, "rank 3: shares the instructions of a program it cannot");
    refused(like_other_ins, "rank 3: shares the instructions of a program it cannot");
    refused(bad_renames, "rank 2: invalid renames");
    refused(unsorted_renames, "rank 2: renames not sorted by (what, from)");
    refused(nan_base, "rank 0: base_bytes must be finite and >= 0");
    st_error err;
    ck_assert_int_eq(st_program_validate(NULL, &err), ST_EINVAL);
}
END_TEST

/* ---- groups */
static void empty_group(st_lowered *l) { l->groups[0].n = 0; }
static void member_without_program(st_lowered *l) { l->groups[1].ranks[1] = 9; }
static void member_twice(st_lowered *l) { l->groups[0].ranks[1] = 0; }

START_TEST(groups) {
    refused(empty_group, "group 0 has no members");
    refused(member_without_program, "group 1 lists rank 9, which has no program");
    refused(member_twice, "group 0 lists rank 0 twice");
}
END_TEST

/* ---- the network */
static void no_hops(st_lowered *l) { l->hops = NULL; }
static void zero_capacity(st_lowered *l) { l->links[1].bytes_per_s = 0; }
static void hops_outside(st_lowered *l) { l->routes[1].first = 2; }
static void infinite_rate(st_lowered *l) { l->routes[0].bytes_per_s = INFINITY; }
static void hop_link(st_lowered *l) { l->hops[0].link = 7; }
static void hop_count(st_lowered *l) { l->hops[1].count = 0; }

START_TEST(network) {
    st_hop *keep;
    st_lowered *l = fixture();
    keep = l->hops; /* (no_hops loses it) */
    no_hops(l);
    st_error err;
    ck_assert_int_eq(st_program_validate(l, &err), ST_EINVAL);
    ck_assert_msg(strstr(err.text, "invalid network description") != NULL, "%s", err.text);
    l->hops = keep;
    fixture_free(l);
    refused(zero_capacity, "link 1: bytes_per_s must be finite and > 0");
    refused(hops_outside, "route 1: hops out of range");
    refused(infinite_rate, "route 0: bytes_per_s must be finite and > 0");
    refused(hop_link, "route 0: link 7 out of range");
    refused(hop_count, "route 1: a hop's count must be >= 1");
}
END_TEST

/* ---- instructions, on rank 1 (an owner) */
static void kind(st_lowered *l) { l->progs[1].ins[0].kind = 9; }
static void stream(st_lowered *l) { l->progs[1].ins[0].stream = ST_STREAMS; }
static void duration(st_lowered *l) { l->progs[1].ins[0].dur_s = -1; }
static void alloc_bytes(st_lowered *l) { l->progs[1].ins[0].alloc_bytes = NAN; }
static void free_bytes(st_lowered *l) { l->progs[1].ins[2].free_bytes = -1; }
static void latency(st_lowered *l) { l->progs[1].ins[1].latency_s = 2; }
static void route(st_lowered *l) { l->progs[1].ins[2].route = 5; }
static void route_below(st_lowered *l) { l->progs[1].ins[1].route = -2; }
static void dep_self(st_lowered *l) { l->progs[1].ins[1].dep[0] = 1; }
static void dep_past_end(st_lowered *l) { l->progs[1].ins[2].dep[1] = 3; }
static void dep_negative(st_lowered *l) { l->progs[1].ins[0].dep[0] = -2; }
static void group(st_lowered *l) { l->progs[1].ins[1].group = 5; }
static void not_member(st_lowered *l) { l->progs[1].ins[1].group = 1; }
static void peer(st_lowered *l) { l->progs[1].ins[2].peer = 8; }
static void to_itself(st_lowered *l) { l->progs[1].ins[2].peer = 1; }

START_TEST(instructions) {
    refused(kind, "rank 1 instruction 0: unknown kind 9");
    refused(stream, "rank 1 instruction 0: stream 5 out of range");
    refused(duration, "rank 1 instruction 0: duration must be finite and >= 0");
    refused(alloc_bytes, "rank 1 instruction 0: alloc/free bytes must be finite and >= 0");
    refused(free_bytes, "rank 1 instruction 2: alloc/free bytes must be finite and >= 0");
    refused(latency, "rank 1 instruction 1: latency must be finite, >= 0 and <= the duration");
    refused(route, "rank 1 instruction 2: route 5 out of range");
    refused(route_below, "rank 1 instruction 1: route -2 out of range");
    refused(dep_self, "rank 1 instruction 1: dep 1 out of range (the program has 3 instructions)");
    refused(dep_past_end, "rank 1 instruction 2: dep 3 out of range");
    refused(dep_negative, "rank 1 instruction 0: dep -2 out of range");
    refused(group, "rank 1 instruction 1: group 5 out of range");
    refused(not_member, "rank 1 instruction 1: rank 1 is not a member of group 1");
    refused(peer, "rank 1 instruction 2: peer rank 8 has no program");
    refused(to_itself, "rank 1 instruction 2: a receive to itself");
}
END_TEST


/* ---- the operator table COMPUTE instructions name (program.h, "Operators") */
static void with_ops(st_lowered *l) {
    l->nops = 2;
    l->ops = calloc(2, sizeof *l->ops);
    ck_assert_ptr_nonnull(l->ops);
    for (int i = 0; i < 2; i++)
        l->ops[i] = (st_lowered_op){.name = i ? "fc2" : "fc1", .layer = 0, .index = (int16_t)i, .cls = ST_OPC_GEMM,
                                    .phase = ST_PHASE_FWD, .m = 8, .n = 8, .k = 8, .batch = 1, .flops = 1024,
                                    .bytes = 384, .dur_s = 0.5};
    for (int p = 0; p < 2; p++) { /* the owners: compute runs both, the collective follows fc2 */
        l->progs[p].ins[0].op = 0;
        l->progs[p].ins[0].nops = 2;
        l->progs[p].ins[1].coll_op = 1;
    }
}
static void ops_range(st_lowered *l) {
    with_ops(l);
    l->progs[1].ins[0].op = 1; /* [1, 3) of 2 */
}
static void ops_negative(st_lowered *l) {
    with_ops(l);
    l->progs[1].ins[0].nops = -1;
}
static void coll_op_range(st_lowered *l) {
    with_ops(l);
    l->progs[1].ins[1].coll_op = 2;
}
static void op_phase(st_lowered *l) {
    with_ops(l);
    l->ops[1].phase = ST_PHASE_OPTIMIZER;
}
static void op_class(st_lowered *l) {
    with_ops(l);
    l->ops[0].cls = ST_OPC_COUNT;
}
static void op_nan(st_lowered *l) {
    with_ops(l);
    l->ops[1].flops = NAN;
}
static void op_table_missing(st_lowered *l) {
    with_ops(l);
    free(l->ops);
    l->ops = NULL;
}

START_TEST(operators) {
    st_lowered *l = fixture();
    with_ops(l);
    st_error err;
    st_error_clear(&err);
    ck_assert_msg(st_program_validate(l, &err) == 0, "%s", err.text);
    fixture_free(l);
    refused(ops_range, "rank 1 instruction 0: operators [1, 3) out of range (the lowering names 2)");
    refused(ops_negative, "rank 1 instruction 0: operators [0, -1) out of range");
    refused(coll_op_range, "rank 1 instruction 1: collective of operator 2 out of range (the lowering names 2)");
    refused(op_phase, "operator 1 (fc2): needs a name, a known class, a forward/backward/recompute phase");
    refused(op_class, "operator 0 (fc1): needs");
    refused(op_nan, "operator 1 (fc2): needs");
    refused(op_table_missing, "invalid operator table (2 operators)");
}
END_TEST

/* ---- a sharer's names (rank 2 shares rank 0's instructions, rank 3 rank 1's) */
static void sharer_group(st_lowered *l) { l->progs[2].renames[0].to = 0; }
static void sharer_group_range(st_lowered *l) { l->progs[2].renames[0].to = 7; }
static void sharer_peer(st_lowered *l) { l->progs[2].renames[1].to = 9; }
static void sharer_to_itself(st_lowered *l) { l->progs[3].renames[1].to = 3; }
static void sharer_route(st_lowered *l) { l->progs[2].renames[2].to = 4; }
/* a sharer that comes before the program it shares is read instruction by instruction */
static void sharer_first(st_lowered *l) {
    st_program t = l->progs[0];
    l->progs[0] = l->progs[2];
    l->progs[2] = t;
    l->progs[0].like = &l->progs[2];
    l->progs[0].renames[0].to = 0; /* rank 2 in group 0 */
}

START_TEST(sharers) {
    refused(sharer_group, "rank 2 instruction 1: rank 2 is not a member of group 0");
    refused(sharer_group_range, "rank 2 instruction 1: group 7 out of range");
    refused(sharer_peer, "rank 2 instruction 2: peer rank 9 has no program");
    refused(sharer_to_itself, "rank 3 instruction 2: a receive to itself");
    refused(sharer_route, "rank 2 instruction 1: route 4 out of range");
    refused(sharer_first, "rank 2 instruction 1: rank 2 is not a member of group 0");
}
END_TEST

/* ---- without links, routes are not looked at */
START_TEST(no_network_no_routes) {
    st_lowered *l = fixture();
    st_error err;
    l->nlinks = 0;
    l->progs[1].ins[2].route = 99;
    ck_assert_msg(st_program_validate(l, &err) == 0, "%s", err.text);
    fixture_free(l);
}
END_TEST

/* ---- rank numbers -> programs */
START_TEST(rank_index) {
    st_program progs[3] = {{.rank = 5}, {.rank = 2}, {.rank = 9}};
    st_lowered l = {.nranks = 3, .progs = progs};
    st_rank_index x;
    st_error err;
    ck_assert_int_eq(st_rank_index_init(&x, &l, &err), 0);
    ck_assert_int_eq(x.identity, 0);
    ck_assert_int_eq(st_rank_index_find(&x, 5), 0);
    ck_assert_int_eq(st_rank_index_find(&x, 2), 1);
    ck_assert_int_eq(st_rank_index_find(&x, 9), 2);
    ck_assert_int_eq(st_rank_index_find(&x, 3), -1);
    ck_assert_int_eq(st_rank_index_find(&x, 10), -1);
    ck_assert_int_eq(st_rank_index_find(&x, -1), -1);
    st_rank_index_destroy(&x);
    for (int p = 0; p < 3; p++)
        progs[p].rank = p;
    ck_assert_int_eq(st_rank_index_init(&x, &l, &err), 0);
    ck_assert_int_eq(x.identity, 1);
    ck_assert_int_eq(st_rank_index_find(&x, 2), 2);
    ck_assert_int_eq(st_rank_index_find(&x, 3), -1);
    st_rank_index_destroy(&x);
    progs[2].rank = 0;
    ck_assert_int_eq(st_rank_index_init(&x, &l, &err), ST_EINVAL);
    ck_assert_msg(strstr(err.text, "two programs claim rank 0") != NULL, "%s", err.text);
    st_rank_index_destroy(&x);
}
END_TEST

Suite *suite_validate(void) {
    Suite *s = suite_create("validate");
    TCase *tc = tcase_create("validate");
    tcase_add_test(tc, valid_fixture_passes_and_runs);
    tcase_add_test(tc, tables);
    tcase_add_test(tc, groups);
    tcase_add_test(tc, network);
    tcase_add_test(tc, instructions);
    tcase_add_test(tc, operators);
    tcase_add_test(tc, sharers);
    tcase_add_test(tc, no_network_no_routes);
    tcase_add_test(tc, rank_index);
    suite_add_tcase(s, tc);
    return s;
}
