/* test_plan.c: the inline spec, defaults, the checks that reject impossible plans naming the
 * key, and the layer split across pipeline chunks. */
#include "src/strata.h"
#include "suites.h"

#include <stdlib.h>
#include <string.h>

typedef struct fixture {
    st_model m;
    st_cluster c;
    st_plan *p;
} fixture;

static void setup(fixture *f, const char *model, int64_t gpus) {
    ck_assert_int_eq(st_model_preset(model, &f->m), 0);
    ck_assert_int_eq(st_cluster_resolve("dgx-a100-80g", gpus, &f->c, NULL), 0);
    f->p = malloc(sizeof *f->p);
    st_plan_defaults(f->p);
}

/* parses spec then finalizes; returns the code and the error key */
static int try_plan(const char *model, int64_t gpus, const char *spec, char *key) {
    fixture f;
    st_error err;
    st_error_clear(&err);
    setup(&f, model, gpus);
    int rc = st_plan_parse_spec(spec, f.p, &err);
    if (!rc) rc = st_plan_finalize(f.p, &f.m, &f.c, 0, NULL, &err);
    strcpy(key, err.key);
    free(f.p);
    return rc;
}

START_TEST(test_defaults_and_derivation) {
    fixture f;
    setup(&f, "gpt3-175b", 1024);
    st_error err;
    ck_assert_int_eq(st_plan_parse_spec("tp=8,pp=8,mbs=2", f.p, &err), 0);
    ck_assert_int_eq(st_plan_finalize(f.p, &f.m, &f.c, 0, NULL, &err), 0);
    ck_assert_int_eq(f.p->dp, 16);
    ck_assert_int_eq(f.p->gbs, 32);
    ck_assert_int_eq(f.p->seq, 2048);
    ck_assert_int_eq(f.p->schedule, ST_SCHED_1F1B);
    ck_assert_int_eq(f.p->attention, ST_ATTN_FLASH);
    ck_assert_int_eq(f.p->grad_bytes, 4);
    ck_assert_int_eq(st_plan_microbatches(f.p), 1);
    char spec[512];
    st_plan_format_spec(f.p, spec, sizeof spec);
    ck_assert_str_eq(spec, "tp=8,pp=8,dp=16,cp=1,ep=1,vp=1,mbs=2,gbs=32,seq=2048,sp=0,recompute=none,zero=0,"
                           "offload=none,dtype=bf16,schedule=1f1b");
    /* the canonical spec parses back to the same plan */
    st_plan *q = malloc(sizeof *q);
    st_plan_defaults(q);
    ck_assert_int_eq(st_plan_parse_spec(spec, q, &err), 0);
    ck_assert_int_eq(st_plan_finalize(q, &f.m, &f.c, 0, NULL, &err), 0);
    ck_assert_int_eq(q->dp, f.p->dp);
    ck_assert_int_eq(q->gbs, f.p->gbs);
    free(q);
    /* attention=unfused is written (the default, flash, is not) and parses back */
    st_plan_defaults(f.p);
    ck_assert_int_eq(st_plan_parse_spec("tp=8,pp=8,attention=unfused", f.p, &err), 0);
    ck_assert_int_eq(f.p->attention, ST_ATTN_UNFUSED);
    ck_assert_int_eq(st_plan_finalize(f.p, &f.m, &f.c, 0, NULL, &err), 0);
    st_plan_format_spec(f.p, spec, sizeof spec);
    ck_assert_ptr_nonnull(strstr(spec, ",schedule=1f1b,attention=unfused"));
    q = malloc(sizeof *q);
    st_plan_defaults(q);
    ck_assert_int_eq(st_plan_parse_spec(spec, q, &err), 0);
    ck_assert_int_eq(q->attention, ST_ATTN_UNFUSED);
    free(q);
    st_shard sh;
    st_plan_shard(f.p, &sh);
    ck_assert_int_eq(sh.attention, ST_ATTN_UNFUSED);
    ck_assert_int_eq(st_plan_parse_spec("attention=flash", f.p, &err), 0);
    ck_assert_int_eq(f.p->attention, ST_ATTN_FLASH);
    /* vp > 1 implies interleaved */
    st_plan_defaults(f.p);
    ck_assert_int_eq(st_plan_parse_spec("tp=8,pp=8,vp=3,gbs=1536", f.p, &err), 0);
    ck_assert_int_eq(st_plan_finalize(f.p, &f.m, &f.c, 0, NULL, &err), 0);
    ck_assert_int_eq(f.p->schedule, ST_SCHED_INTERLEAVED);
    free(f.p);
}
END_TEST

START_TEST(test_rejects_naming_key) {
    char key[128];
    const struct {
        const char *model;
        int64_t gpus;
        const char *spec, *key;
    } cases[] = {
        {"gpt3-175b", 64, "tp=8,pp=8,dp=2", "dp"},             /* more GPUs than the cluster */
        {"gpt3-175b", 64, "tp=3", "dp"},                       /* does not divide the GPUs */
        {"gpt3-175b", 64, "tp=8,pp=8,mbs=2,gbs=3", "gbs"},     /* gbs % (dp*mbs) */
        {"gpt-1.7b", 64, "tp=16,pp=4", "tp"},                  /* 24 heads % 16 */
        {"llama2-70b", 64, "tp=16,pp=4", "tp"},                /* kv_heads 8 % 16 */
        {"gpt3-175b", 64, "ep=2,dp=64", "ep"},                 /* dense model */
        {"mixtral-8x7b", 64, "tp=8,pp=8,ep=2", "ep"},          /* ep does not divide dp*cp = 1 */
        {"mixtral-8x7b", 64, "ep=3,dp=64", "ep"},              /* ep does not divide experts */
        {"gpt-1.7b", 64, "pp=16,vp=2,tp=4,gbs=64", "vp"},      /* 32 chunks > 24 layers */
        {"gpt-1.7b", 64, "vp=2,tp=8,dp=8", "vp"},              /* vp without pp */
        {"gpt3-175b", 64, "tp=8,pp=8,vp=2,gbs=4", "gbs"},      /* interleaved: micro-batches % pp */
        {"gpt3-175b", 64, "tp=8,pp=8,schedule=interleaved", "schedule"},
        {"gpt3-175b", 64, "tp=8,dp=8,schedule=zbv", "schedule"},        /* zbv: no pipeline */
        {"gpt3-175b", 64, "tp=8,pp=8,vp=3,gbs=64,schedule=zbv", "vp"}, /* zbv is two chunks per rank */
        {"gpt3-175b", 64, "tp=8,pp=8,gbs=14,schedule=zbv", "gbs"},     /* fewer than 2 pp - 1 micro-batches */
        {"gpt3-175b", 64, "tp=8,pp=4,dp=2,gbs=20,dp_batches=6,14,schedule=zbv", "dp_batches"},
        /* dualpipe (deepseek-ai/DualPipe's DualPipe.step): an even pp, an even number of micro-batches,
         * at least 2 pp; one stage of each copy per rank */
        {"gpt3-175b", 64, "tp=8,dp=8,gbs=16,schedule=dualpipe", "pp"},
        {"gpt3-175b", 48, "tp=8,pp=3,dp=2,gbs=24,schedule=dualpipe", "pp"},
        {"gpt3-175b", 64, "tp=8,pp=8,gbs=17,schedule=dualpipe", "gbs"},
        {"gpt3-175b", 64, "tp=8,pp=8,gbs=14,schedule=dualpipe", "gbs"},
        {"gpt3-175b", 64, "tp=8,pp=8,vp=2,gbs=32,schedule=dualpipe", "vp"},
        {"gpt3-175b", 64, "tp=8,pp=4,dp=2,gbs=20,dp_batches=9,11,schedule=dualpipe", "dp_batches"},
        /* not priced together with DualPipe: granular offload, uneven stages */
        {"gpt3-175b", 64, "tp=8,pp=8,gbs=16,zero=1,schedule=dualpipe,offload_activations=0.5", "offload_activations"},
        {"gpt3-175b", 64, "tp=8,pp=8,gbs=16,schedule=dualpipe,stage_layers=10,12,12,12,12,12,12,14", "stage_layers"},
        {"gpt3-175b", 64, "tp=8,pp=8,dtype=fp8", "dtype"},     /* no fp8 on A100 */
        {"gpt3-175b", 64, "tp=8,pp=8,offload=params,zero=1", "offload"},
        {"gpt3-175b", 48, "tp=8,cp=3,dp=2", "cp"},             /* 2048 % 6 */
        {"gpt3-175b", 64, "tp=0", "tp"},
        {"gpt3-175b", 64, "gbs=-1", "gbs"},
        {"gpt3-175b", 64, "tp=8,bogus=1", "bogus"},
        {"gpt3-175b", 64, "recompute=some", "recompute"},
        {"gpt3-175b", 64, "attention=fused", "attention"},   /* flash or unfused */
        {"gpt3-175b", 64, "pp=200", "dp"},                     /* 200 does not divide 64 */
        {"gpt3-175b", 64, "tp=8,pp=97,dp=1", "dp"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int rc = try_plan(cases[i].model, cases[i].gpus, cases[i].spec, key);
        ck_assert_msg(rc == ST_EINVAL, "%s: rc %d", cases[i].spec, rc);
        ck_assert_msg(strcmp(key, cases[i].key) == 0, "%s: key '%s', want '%s'", cases[i].spec, key, cases[i].key);
    }
    ck_assert_int_eq(try_plan("gpt3-175b", 64, "tp=8,pp=8", key), 0);
    ck_assert_int_eq(try_plan("gpt3-175b", 64, "tp=8,pp=8,gbs=15,schedule=zbv", key), 0); /* vp=2 implied */
    ck_assert_int_eq(try_plan("gpt3-175b", 64, "tp=8,pp=8,vp=2,gbs=15,schedule=zbv", key), 0);
    ck_assert_int_eq(try_plan("gpt3-175b", 64, "tp=8,pp=8,gbs=16,schedule=dualpipe", key), 0);
    ck_assert_int_eq(try_plan("gpt3-175b", 64, "tp=8,pp=4,dp=2,gbs=20,dp_batches=8,12,schedule=dualpipe", key), 0);
}
END_TEST

static void chunks(const char *model, const char *spec, int64_t gpus, int *out, int *n) {
    fixture f;
    st_error err;
    setup(&f, model, gpus);
    ck_assert_int_eq(st_plan_parse_spec(spec, f.p, &err), 0);
    ck_assert_msg(st_plan_finalize(f.p, &f.m, &f.c, 0, NULL, &err) == 0, "%s", err.text);
    st_plan_chunk_layers(f.p, &f.m, out);
    *n = f.p->pp * f.p->vp;
    free(f.p);
}

START_TEST(test_chunk_layers) {
    int out[ST_MAX_STAGES], n;
    /* Llama 3 405B: 126 layers on 16 stages, one fewer on the first and last */
    chunks("llama3-405b", "tp=8,pp=16", 128, out, &n);
    ck_assert_int_eq(n, 16);
    ck_assert_int_eq(out[0], 7);
    ck_assert_int_eq(out[15], 7);
    for (int i = 1; i < 15; i++) ck_assert_int_eq(out[i], 8);
    /* even when it divides */
    chunks("gpt3-175b", "tp=8,pp=8,vp=3,gbs=64", 64, out, &n);
    for (int i = 0; i < n; i++) ck_assert_int_eq(out[i], 4);
    /* every split sums to the layers and is as even as the end stages allow */
    for (int pp = 1; pp <= 105; pp++) {
        char spec[64];
        if (2520 % pp) continue;
        snprintf(spec, sizeof spec, "pp=%d,dp=%d", pp, 2520 / pp);
        chunks("gpt-530b", spec, 2520, out, &n);
        int sum = 0, lo = 1 << 30, hi = 0;
        for (int i = 0; i < n; i++) {
            sum += out[i];
            if (out[i] < lo) lo = out[i];
            if (out[i] > hi) hi = out[i];
        }
        ck_assert_int_eq(sum, 105);
        ck_assert_int_le(hi, (105 + pp - 1) / pp); /* the bottleneck stage is as small as it can be */
        ck_assert_int_ge(lo, 1);
    }
}
END_TEST

START_TEST(test_explicit_stage_layers) {
    fixture f;
    st_error err;
    setup(&f, "gpt3-175b", 64);
    ck_assert_int_eq(st_plan_parse_spec("tp=8,pp=8", f.p, &err), 0);
    int want[8] = {10, 12, 13, 13, 12, 12, 12, 12};
    memcpy(f.p->stage_layers, want, sizeof want);
    f.p->nstage_layers = 8;
    ck_assert_int_eq(st_plan_finalize(f.p, &f.m, &f.c, 0, NULL, &err), 0);
    int out[8];
    st_plan_chunk_layers(f.p, &f.m, out);
    ck_assert_mem_eq(out, want, sizeof want);
    f.p->stage_layers[0] = 11; /* sums to 97 */
    ck_assert_int_eq(st_plan_finalize(f.p, &f.m, &f.c, 0, NULL, &err), ST_EINVAL);
    ck_assert_str_eq(err.key, "stage_layers");
    f.p->nstage_layers = 7;
    ck_assert_int_eq(st_plan_finalize(f.p, &f.m, &f.c, 0, NULL, &err), ST_EINVAL);
    ck_assert_str_eq(err.key, "stage_layers");
    free(f.p);
}
END_TEST

/* The overlap keys: off by default, refused where the frameworks refuse them (naming the key),
 * written into the canonical spec only when on, and read back from it. */
START_TEST(test_overlap_keys) {
    char key[64];
    ck_assert_int_eq(try_plan("gpt3-175b", 64, "tp=8,sp=1,tp_overlap=1", key), 0);
    ck_assert_int_eq(try_plan("gpt3-175b", 64, "tp=8,sp=0,tp_overlap=1", key), ST_EINVAL);
    ck_assert_str_eq(key, "tp_overlap");
    ck_assert_int_eq(try_plan("gpt3-175b", 64, "tp=1,sp=1,tp_overlap=1", key), ST_EINVAL);
    ck_assert_str_eq(key, "tp_overlap");
    ck_assert_int_eq(try_plan("gpt3-175b", 64, "tp=8,zero=1,overlap_grad_reduce=1,overlap_param_gather=1", key), 0);
    ck_assert_int_eq(try_plan("gpt3-175b", 64, "tp=8,zero=2,overlap_grad_reduce=1,overlap_param_gather=1", key), 0);
    ck_assert_int_eq(try_plan("gpt3-175b", 64, "tp=8,zero=1,overlap_param_gather=1", key), ST_EINVAL);
    ck_assert_str_eq(key, "overlap_param_gather");
    ck_assert_int_eq(try_plan("gpt3-175b", 64, "tp=8,zero=0,overlap_grad_reduce=1,overlap_param_gather=1", key),
                     ST_EINVAL);
    ck_assert_str_eq(key, "overlap_param_gather");
    ck_assert_int_eq(try_plan("gpt3-175b", 64, "tp=8,zero=3,overlap_grad_reduce=1,overlap_param_gather=1", key),
                     ST_EINVAL);
    ck_assert_str_eq(key, "overlap_param_gather");
    ck_assert_int_eq(try_plan("gpt3-175b", 64, "tp=8,tp_overlap=2", key), ST_EINVAL);
    ck_assert_str_eq(key, "tp_overlap");

    fixture f;
    st_error err;
    char spec[512];
    setup(&f, "gpt3-175b", 64);
    ck_assert_int_eq(f.p->tp_overlap, 0);
    ck_assert_int_eq(f.p->overlap_param_gather, 0);
    ck_assert_int_eq(st_plan_parse_spec("tp=8,sp=1,zero=1,overlap_grad_reduce=1,overlap_param_gather=1,tp_overlap=1",
                                        f.p, &err), 0);
    ck_assert_int_eq(st_plan_finalize(f.p, &f.m, &f.c, 0, NULL, &err), 0);
    st_plan_format_spec(f.p, spec, sizeof spec);
    ck_assert_ptr_nonnull(strstr(spec, ",overlap_grad_reduce=1,overlap_param_gather=1,tp_overlap=1"));
    st_plan_defaults(f.p);
    ck_assert_int_eq(st_plan_parse_spec(spec, f.p, &err), 0);
    ck_assert_int_eq(f.p->tp_overlap, 1);
    ck_assert_int_eq(f.p->overlap_param_gather, 1);
    f.p->tp_overlap = f.p->overlap_param_gather = 0;
    st_plan_format_spec(f.p, spec, sizeof spec);
    ck_assert_ptr_null(strstr(spec, "tp_overlap"));
    ck_assert_ptr_null(strstr(spec, "overlap_param_gather"));
    free(f.p);
}
END_TEST

/* A plan key at its default is not written into the canonical spec; given (in_spec) it is written
 * (`written`) and read back: f's plan is left as parsed from what was written. */
static void key_round_trip(fixture *f, const char *key, const char *in_spec, const char *written) {
    st_error err;
    char spec[512];
    st_plan_format_spec(f->p, spec, sizeof spec);
    ck_assert_ptr_null(strstr(spec, key));
    ck_assert_int_eq(st_plan_parse_spec(in_spec, f->p, &err), 0);
    ck_assert_int_eq(st_plan_finalize(f->p, &f->m, &f->c, 0, NULL, &err), 0);
    st_plan_format_spec(f->p, spec, sizeof spec);
    ck_assert_ptr_nonnull(strstr(spec, written));
    st_plan_defaults(f->p);
    ck_assert_int_eq(st_plan_parse_spec(spec, f->p, &err), 0);
}

/* fp8_param_gather: off by default and not written; on (dtype fp8 or mxfp8, zero 1-2), written into the
 * canonical spec and read back; refused with another dtype, zero 0 or 3 (offload=params needs zero 3),
 * granular offload_params and outside 0..1, naming the key. */
START_TEST(test_fp8_param_gather_key) {
    const struct {
        const char *spec;
        int ok;
    } cases[] = {
        {"tp=8,zero=1,dtype=fp8,fp8_param_gather=1", 1},
        {"tp=8,zero=2,dtype=mxfp8,fp8_param_gather=1", 1},
        {"tp=8,zero=1,dtype=bf16,fp8_param_gather=1", 0},
        {"tp=8,zero=1,dtype=nvfp4,fp8_param_gather=1", 0},
        {"tp=8,zero=0,dtype=fp8,fp8_param_gather=1", 0},
        {"tp=8,zero=3,dtype=fp8,fp8_param_gather=1", 0},
        {"tp=8,zero=1,dtype=fp8,offload_params=0.5,fp8_param_gather=1", 0},
        {"tp=8,zero=1,dtype=fp8,fp8_param_gather=2", 0},
    };
    fixture f;
    st_error err;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ck_assert_int_eq(st_model_preset("llama3-70b", &f.m), 0);
        ck_assert_int_eq(st_cluster_resolve("dgx-b200", 64, &f.c, NULL), 0);
        st_plan p;
        st_plan_defaults(&p);
        st_error_clear(&err);
        int rc = st_plan_parse_spec(cases[i].spec, &p, &err);
        if (!rc) rc = st_plan_finalize(&p, &f.m, &f.c, 0, NULL, &err);
        ck_assert_msg(cases[i].ok ? rc == 0 : rc == ST_EINVAL, "%s: rc %d (%s)", cases[i].spec, rc, err.text);
        if (!cases[i].ok) ck_assert_str_eq(err.key, "fp8_param_gather");
    }
    f.p = malloc(sizeof *f.p);
    st_plan_defaults(f.p);
    ck_assert_int_eq(f.p->fp8_param_gather, 0);
    key_round_trip(&f, "fp8_param_gather", "tp=8,zero=1,dtype=fp8,fp8_param_gather=1", ",fp8_param_gather=1");
    ck_assert_int_eq(f.p->fp8_param_gather, 1);
    free(f.p);
}
END_TEST

/* pp_partition: off by default and not written; on, written into the canonical spec and read back;
 * refused with sp=1 (each rank already holds its own 1/tp) and outside 0..1, naming the key. */
START_TEST(test_pp_partition_key) {
    const char *specs[] = {"tp=8,pp=2,pp_partition=1", "tp=8,pp=2,sp=1,pp_partition=1", "tp=8,pp=2,pp_partition=2"};
    for (int i = 0; i < 3; i++) {
        char key[64];
        ck_assert_int_eq(try_plan("gpt3-175b", 64, specs[i], key), i ? ST_EINVAL : 0);
        if (i) ck_assert_str_eq(key, "pp_partition");
    }
    fixture f;
    setup(&f, "gpt3-175b", 64);
    ck_assert_int_eq(f.p->pp_partition, 0);
    key_round_trip(&f, "pp_partition", "tp=8,pp=2,pp_partition=1", ",pp_partition=1");
    ck_assert_int_eq(f.p->pp_partition, 1);
    free(f.p);
}
END_TEST

/* cp_comm: p2p by default (and not written), the other two written and read back; an unknown value
 * is refused naming the key; a2a needs the heads per tp rank divisible by cp; at cp = 1 any value
 * is accepted (Megatron takes --cp-comm-type without cp too) and prices nothing. */
START_TEST(test_cp_comm_key) {
    char key[64];
    ck_assert_int_eq(try_plan("llama3-70b", 64, "tp=8,cp=4,cp_comm=all_gather", key), 0);
    ck_assert_int_eq(try_plan("llama3-70b", 64, "tp=8,cp_comm=a2a", key), 0);
    ck_assert_int_eq(try_plan("llama3-70b", 64, "tp=8,cp=4,cp_comm=ring", key), ST_EINVAL);
    ck_assert_str_eq(key, "cp_comm");
    /* llama3-70b: 8 kv heads, 1 per rank at tp=8 */
    ck_assert_int_eq(try_plan("llama3-70b", 64, "tp=8,cp=2,cp_comm=a2a", key), ST_EINVAL);
    ck_assert_str_eq(key, "cp_comm");
    ck_assert_int_eq(try_plan("llama3-70b", 64, "tp=2,cp=4,cp_comm=a2a", key), 0);

    fixture f;
    setup(&f, "llama3-70b", 64);
    ck_assert_int_eq(f.p->cp_comm, ST_CP_P2P);
    key_round_trip(&f, "cp_comm", "tp=8,cp=4,cp_comm=all_gather", ",cp_comm=all_gather");
    ck_assert_int_eq(f.p->cp_comm, ST_CP_ALLGATHER);
    st_shard sh;
    st_plan_shard(f.p, &sh);
    ck_assert_int_eq(sh.cp_comm, ST_CP_ALLGATHER);
    free(f.p);
}
END_TEST

Suite *suite_plan(void) {
    Suite *s = suite_create("plan");
    TCase *tc = tcase_create("plan");
    tcase_add_test(tc, test_defaults_and_derivation);
    tcase_add_test(tc, test_rejects_naming_key);
    tcase_add_test(tc, test_chunk_layers);
    tcase_add_test(tc, test_explicit_stage_layers);
    tcase_add_test(tc, test_overlap_keys);
    tcase_add_test(tc, test_pp_partition_key);
    tcase_add_test(tc, test_fp8_param_gather_key);
    tcase_add_test(tc, test_cp_comm_key);
    suite_add_tcase(s, tc);
    return s;
}
