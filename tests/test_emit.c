/* test_emit.c: st_emit for Megatron-LM arguments, DeepSpeed JSON and torchtitan TOML.
 *
 * Plans, models and clusters are filled by hand (every field), so these tests depend on nothing
 * but emit.c and the enum names. Exact flags for known plans (GPT-3 175B as in Narayanan et al.
 * SC'21: tp 8, pp 8, 3 virtual stages -> 4 layers per virtual stage), arithmetic of the DeepSpeed
 * batch keys checked on the parsed JSON, one case per error naming its key and leaving the
 * stream untouched. Every key and flag emitted for a spread of plans is checked against the
 * targeted releases' lists in tests/data/emit (torchtitan's JobConfig keys, Megatron-LM's flags),
 * and torchtitan's batch keys against the plan's gbs, mbs and dp. */
#include "src/strata.h"

#include <check.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

Suite *suite_emit(void);

/* ------------------------------------------------------------ fixtures */

static void model_gpt3(st_model *m) {
    memset(m, 0, sizeof *m);
    snprintf(m->name, sizeof m->name, "gpt3-175b");
    m->layers = 96;
    m->hidden = 12288;
    m->heads = 96;
    m->kv_heads = 96;
    m->head_dim = 128;
    m->ffn = 49152;
    m->vocab = 51200;
    m->seq_len = 2048;
    m->activation = ST_ACT_GELU;
    m->norm = ST_NORM_LAYERNORM;
    m->position = ST_POS_LEARNED;
    m->tied_embeddings = 1;
    m->dropout = 1;
    m->bias = 1;
    m->experts = 0;
    m->experts_topk = 0;
    m->moe_every = 1;
    m->vocab_pad_multiple = 128;
    snprintf(m->source, sizeof m->source, "test");
}

static void model_llama8b(st_model *m) {
    memset(m, 0, sizeof *m);
    snprintf(m->name, sizeof m->name, "llama3-8b");
    m->layers = 32;
    m->hidden = 4096;
    m->heads = 32;
    m->kv_heads = 8;
    m->head_dim = 128;
    m->ffn = 14336;
    m->vocab = 128256;
    m->seq_len = 8192;
    m->activation = ST_ACT_SWIGLU;
    m->norm = ST_NORM_RMSNORM;
    m->position = ST_POS_ROPE;
    m->tied_embeddings = 0;
    m->dropout = 0;
    m->bias = 0;
    m->experts = 0;
    m->experts_topk = 0;
    m->moe_every = 1;
    m->vocab_pad_multiple = 128;
    snprintf(m->source, sizeof m->source, "test");
}

static void plan_base(st_plan *p) {
    memset(p, 0, sizeof *p);
    p->tp = p->pp = p->dp = p->cp = p->ep = p->vp = 1;
    p->mbs = 1;
    p->gbs = 1;
    p->seq = 2048;
    p->sp = 0;
    p->recompute = ST_REC_NONE;
    p->zero = 0;
    p->offload = ST_OFF_NONE;
    p->dtype = ST_DT_BF16;
    p->schedule = ST_SCHED_1F1B;
    p->overlap_grad_reduce = 0;
    p->grad_bytes = 4;
    p->nstage_layers = 0;
    p->seed = 1;
    p->given = 0;
}

/* GPT-3 175B on 512 GPUs: tp 8, pp 8 with 3 virtual stages, dp 8. */
static void plan_gpt3(st_plan *p) {
    plan_base(p);
    p->tp = 8;
    p->pp = 8;
    p->dp = 8;
    p->vp = 3;
    p->mbs = 1;
    p->gbs = 1536;
    p->seq = 2048;
    p->sp = 1;
    p->recompute = ST_REC_SELECTIVE;
    p->zero = 1;
    p->schedule = ST_SCHED_INTERLEAVED;
    p->overlap_grad_reduce = 1;
    p->overlap_param_gather = 1;
}

/* Llama 3 8B on 16 GPUs: tp 2, pp 2, dp 4 with FSDP. */
static void plan_llama(st_plan *p) {
    plan_base(p);
    p->tp = 2;
    p->pp = 2;
    p->dp = 4;
    p->mbs = 1;
    p->gbs = 32;
    p->seq = 8192;
    p->sp = 1;
    p->recompute = ST_REC_SELECTIVE;
    p->zero = 1;
    p->overlap_grad_reduce = 1;
}

static void cluster_test(st_cluster *c) {
    memset(c, 0, sizeof *c);
    snprintf(c->name, sizeof c->name, "testbed");
    c->nodes = 64;
    c->gpus_per_node = 8;
    snprintf(c->gpu.name, sizeof c->gpu.name, "a100-sxm-80g");
    c->gpu.memory_bytes = 80e9;
    c->gpu.hbm_bytes_per_s = 2.0e12;
    c->gpu.peak_flops[ST_DT_BF16] = 312e12;
    c->gpu.gemm_efficiency = 0.8;
    c->intra_bytes_per_s = 300e9;
    c->intra_latency_s = 2e-6;
    c->nics_per_node = 8;
    c->nic_bytes_per_s = 25e9;
    c->inter_latency_s = 5e-6;
    c->oversubscription = 1;
    c->host_memory_bytes = 2e12;
    c->pcie_bytes_per_s = 25e9;
}

/* Emits into a tmpfile; *out (new, free) holds what was written, *written its length. */
static int run_emit(st_emit_kind k, const st_plan *p, const st_model *m, st_error *err, char **out,
                    long *written) {
    st_cluster c;
    cluster_test(&c);
    FILE *f = tmpfile();
    ck_assert_ptr_nonnull(f);
    st_error_clear(err);
    int rc = st_emit(k, p, m, &c, f, err);
    long n = ftell(f);
    ck_assert_int_ge(n, 0);
    char *s = malloc((size_t)n + 1);
    ck_assert_ptr_nonnull(s);
    rewind(f);
    ck_assert_uint_eq(fread(s, 1, (size_t)n, f), (size_t)n);
    s[n] = '\0';
    fclose(f);
    *out = s;
    if (written) *written = n;
    return rc;
}

static char *emit_ok(st_emit_kind k, const st_plan *p, const st_model *m) {
    st_error err;
    char *s = NULL;
    long n = 0;
    int rc = run_emit(k, p, m, &err, &s, &n);
    ck_assert_msg(rc == 0, "st_emit failed: key '%s': %s", err.key, err.text);
    ck_assert_int_gt(n, 0);
    ck_assert_uint_eq(strlen(s), (size_t)n);
    return s;
}

/* Whether `text` has a line equal to `line`, or to `line` followed by " \" (Megatron). */
static int has_line(const char *text, const char *line) {
    size_t n = strlen(line);
    for (const char *s = text; s && *s;) {
        const char *e = strchr(s, '\n');
        size_t len = e ? (size_t)(e - s) : strlen(s);
        if (len >= 2 && s[len - 1] == '\\' && s[len - 2] == ' ') len -= 2;
        if (len == n && strncmp(s, line, n) == 0) return 1;
        s = e ? e + 1 : NULL;
    }
    return 0;
}

/* Whether any line starts with `prefix`. */
static int has_prefix(const char *text, const char *prefix) {
    size_t n = strlen(prefix);
    for (const char *s = text; s && *s;) {
        if (strncmp(s, prefix, n) == 0) return 1;
        const char *e = strchr(s, '\n');
        s = e ? e + 1 : NULL;
    }
    return 0;
}

#define ASSERT_LINE(text, line) ck_assert_msg(has_line(text, line), "missing line '%s' in:\n%s", line, text)
#define ASSERT_NO_FLAG(text, prefix)                                                               \
    ck_assert_msg(!has_prefix(text, prefix), "unexpected '%s' in:\n%s", prefix, text)

/* Megatron output: "# " comments, then flag lines that all but the last end in " \", each flag
 * once. */
static void check_megatron_shape(const char *text) {
    int flags = 0, last_continued = 1;
    char seen[256][64];
    ck_assert_msg(strncmp(text, "# strata plan: ", 15) == 0, "no plan comment first:\n%s", text);
    ck_assert_msg(text[strlen(text) - 1] == '\n', "output does not end in a newline");
    for (const char *s = text; *s;) {
        const char *e = strchr(s, '\n');
        ck_assert_ptr_nonnull(e);
        size_t len = (size_t)(e - s);
        if (s[0] == '#') {
            ck_assert_msg(flags == 0, "comment after the flags:\n%s", text);
        } else {
            ck_assert_msg(len > 2 && s[0] == '-' && s[1] == '-', "not a flag line: %.*s", (int)len, s);
            ck_assert_msg(last_continued, "flag after the last line: %.*s", (int)len, s);
            last_continued = len > 2 && s[len - 1] == '\\' && s[len - 2] == ' ';
            size_t nl = strcspn(s, " \n");
            ck_assert_int_lt(flags, 256);
            ck_assert_uint_lt(nl, sizeof seen[0]);
            memcpy(seen[flags], s, nl);
            seen[flags][nl] = '\0';
            for (int i = 0; i < flags; i++) ck_assert_msg(strcmp(seen[i], seen[flags]) != 0, "flag %s twice", seen[i]);
            flags++;
        }
        s = e + 1;
    }
    ck_assert_int_gt(flags, 10);
    ck_assert_msg(!last_continued, "last flag line ends in a backslash");
}

/* ------------------------------------------------------------ parse */

START_TEST(test_emit_parse) {
    st_emit_kind k = (st_emit_kind)-1;
    ck_assert_int_eq(st_emit_parse("megatron", &k), 0);
    ck_assert_int_eq(k, ST_EMIT_MEGATRON);
    ck_assert_int_eq(st_emit_parse("deepspeed", &k), 0);
    ck_assert_int_eq(k, ST_EMIT_DEEPSPEED);
    ck_assert_int_eq(st_emit_parse("torchtitan", &k), 0);
    ck_assert_int_eq(k, ST_EMIT_TORCHTITAN);
    ck_assert_int_eq(st_emit_parse("Megatron", &k), ST_EINVAL);
    ck_assert_int_eq(st_emit_parse("megatron-lm", &k), ST_EINVAL);
    ck_assert_int_eq(st_emit_parse("", &k), ST_EINVAL);
    ck_assert_int_eq(st_emit_parse(NULL, &k), ST_EINVAL);
    ck_assert_int_eq(k, ST_EMIT_TORCHTITAN); /* untouched on failure */
}
END_TEST

/* ------------------------------------------------------------ megatron */

START_TEST(test_megatron_gpt3) {
    st_plan p;
    st_model m;
    plan_gpt3(&p);
    model_gpt3(&m);
    char *s = emit_ok(ST_EMIT_MEGATRON, &p, &m);
    check_megatron_shape(s);
    ck_assert_ptr_nonnull(strstr(s, "main@000c4ac"));
    ASSERT_LINE(s, "--tensor-model-parallel-size 8");
    ASSERT_LINE(s, "--pipeline-model-parallel-size 8");
    ASSERT_LINE(s, "--num-layers-per-virtual-pipeline-stage 4"); /* 96 / (8 * 3) */
    ASSERT_LINE(s, "--context-parallel-size 1");
    ASSERT_LINE(s, "--sequence-parallel");
    ASSERT_LINE(s, "--micro-batch-size 1");
    ASSERT_LINE(s, "--global-batch-size 1536");
    ASSERT_LINE(s, "--seq-length 2048");
    ASSERT_LINE(s, "--max-position-embeddings 2048");
    ASSERT_LINE(s, "--num-layers 96");
    ASSERT_LINE(s, "--hidden-size 12288");
    ASSERT_LINE(s, "--num-attention-heads 96");
    ASSERT_LINE(s, "--ffn-hidden-size 49152");
    ASSERT_LINE(s, "--position-embedding-type learned_absolute");
    ASSERT_LINE(s, "--recompute-activations");
    ASSERT_LINE(s, "--use-distributed-optimizer");
    ASSERT_LINE(s, "--bf16");
    ASSERT_LINE(s, "--accumulate-allreduce-grads-in-fp32");
    ASSERT_LINE(s, "--overlap-grad-reduce");
    ASSERT_LINE(s, "--overlap-param-gather");
    ASSERT_NO_FLAG(s, "--tp-comm-overlap");
    ASSERT_LINE(s, "--make-vocab-size-divisible-by 128");
    ASSERT_LINE(s, "--attention-backend flash"); /* the plan's fused attention */
    /* GPT-3 is MHA, GeLU, LayerNorm, tied, with biases and dropout: none of these */
    ASSERT_NO_FLAG(s, "--group-query-attention");
    ASSERT_NO_FLAG(s, "--num-query-groups");
    ASSERT_NO_FLAG(s, "--kv-channels");
    ASSERT_NO_FLAG(s, "--swiglu");
    ASSERT_NO_FLAG(s, "--normalization");
    ASSERT_NO_FLAG(s, "--untie-embeddings-and-output-weights");
    ASSERT_NO_FLAG(s, "--disable-bias-linear");
    ASSERT_NO_FLAG(s, "--attention-dropout");
    ASSERT_NO_FLAG(s, "--hidden-dropout");
    ASSERT_NO_FLAG(s, "--num-experts");
    ASSERT_NO_FLAG(s, "--expert-model-parallel-size");
    ASSERT_NO_FLAG(s, "--recompute-granularity");
    ASSERT_NO_FLAG(s, "--fp16");
    ASSERT_NO_FLAG(s, "--fp8-format");
    ASSERT_NO_FLAG(s, "--decoder-");
    free(s);
    /* unfused attention, as Megatron-LM ran it in 2021 */
    p.attention = ST_ATTN_UNFUSED;
    s = emit_ok(ST_EMIT_MEGATRON, &p, &m);
    ASSERT_LINE(s, "--attention-backend unfused");
    free(s);
    /* the overlaps are two flags of their own: the gather's only with its key */
    p.overlap_param_gather = 0;
    p.tp_overlap = 1;
    s = emit_ok(ST_EMIT_MEGATRON, &p, &m);
    ASSERT_LINE(s, "--overlap-grad-reduce");
    ASSERT_NO_FLAG(s, "--overlap-param-gather");
    ASSERT_LINE(s, "--tp-comm-overlap");
    free(s);
}
END_TEST

START_TEST(test_megatron_llama_gqa) {
    st_plan p;
    st_model m;
    plan_llama(&p);
    model_llama8b(&m);
    char *s = emit_ok(ST_EMIT_MEGATRON, &p, &m);
    check_megatron_shape(s);
    ASSERT_LINE(s, "--group-query-attention");
    ASSERT_LINE(s, "--num-query-groups 8");
    ASSERT_LINE(s, "--swiglu");
    ASSERT_LINE(s, "--normalization RMSNorm");
    ASSERT_LINE(s, "--position-embedding-type rope");
    ASSERT_LINE(s, "--untie-embeddings-and-output-weights");
    ASSERT_LINE(s, "--disable-bias-linear");
    ASSERT_LINE(s, "--attention-dropout 0");
    ASSERT_LINE(s, "--hidden-dropout 0");
    ASSERT_LINE(s, "--ffn-hidden-size 14336");
    ASSERT_LINE(s, "--seq-length 8192");
    ASSERT_LINE(s, "--max-position-embeddings 8192");
    ASSERT_NO_FLAG(s, "--kv-channels"); /* 32 x 128 = 4096 */
    ASSERT_NO_FLAG(s, "--num-layers-per-virtual-pipeline-stage");
    free(s);

    /* head_dim that is not hidden / heads needs --kv-channels; MQA is GQA with one group */
    m.head_dim = 256;
    m.kv_heads = 1;
    s = emit_ok(ST_EMIT_MEGATRON, &p, &m);
    ASSERT_LINE(s, "--kv-channels 256");
    ASSERT_LINE(s, "--num-query-groups 1");
    free(s);
}
END_TEST

START_TEST(test_megatron_recompute_dtype) {
    st_plan p;
    st_model m;
    plan_llama(&p);
    model_llama8b(&m);
    p.recompute = ST_REC_FULL;
    p.dtype = ST_DT_FP8;
    char *s = emit_ok(ST_EMIT_MEGATRON, &p, &m);
    ASSERT_LINE(s, "--recompute-granularity full");
    ASSERT_LINE(s, "--recompute-method uniform");
    ASSERT_LINE(s, "--recompute-num-layers 1");
    ASSERT_NO_FLAG(s, "--recompute-activations");
    ASSERT_LINE(s, "--bf16");
    ASSERT_LINE(s, "--fp8-format hybrid");
    free(s);

    p.recompute = ST_REC_NONE;
    p.dtype = ST_DT_FP32;
    p.zero = 0;
    p.overlap_grad_reduce = 0;
    s = emit_ok(ST_EMIT_MEGATRON, &p, &m);
    ASSERT_NO_FLAG(s, "--recompute");
    ASSERT_NO_FLAG(s, "--bf16");
    ASSERT_NO_FLAG(s, "--fp16");
    ASSERT_NO_FLAG(s, "--accumulate-allreduce-grads-in-fp32"); /* fp32 gradients are 4 bytes anyway */
    ASSERT_NO_FLAG(s, "--use-distributed-optimizer");
    ASSERT_NO_FLAG(s, "--overlap-grad-reduce");
    ASSERT_NO_FLAG(s, "--overlap-param-gather");
    free(s);

    p.dtype = ST_DT_FP16;
    p.grad_bytes = 2;
    s = emit_ok(ST_EMIT_MEGATRON, &p, &m);
    ASSERT_LINE(s, "--fp16");
    ASSERT_NO_FLAG(s, "--accumulate-allreduce-grads-in-fp32");
    free(s);
    p.grad_bytes = 4;
    s = emit_ok(ST_EMIT_MEGATRON, &p, &m);
    ASSERT_LINE(s, "--accumulate-allreduce-grads-in-fp32");
    free(s);

    /* sequence parallelism means nothing without tensor parallelism */
    p.tp = 1;
    p.sp = 1;
    s = emit_ok(ST_EMIT_MEGATRON, &p, &m);
    ASSERT_LINE(s, "--tensor-model-parallel-size 1");
    ASSERT_NO_FLAG(s, "--sequence-parallel");
    free(s);
}
END_TEST

START_TEST(test_megatron_moe) {
    st_plan p;
    st_model m;
    plan_llama(&p);
    model_llama8b(&m);
    m.experts = 8;
    m.experts_topk = 2;
    p.ep = 4;
    char *s = emit_ok(ST_EMIT_MEGATRON, &p, &m);
    ASSERT_LINE(s, "--num-experts 8");
    ASSERT_LINE(s, "--moe-router-topk 2");
    ASSERT_LINE(s, "--expert-model-parallel-size 4");
    ASSERT_LINE(s, "--moe-layer-freq 1");
    ASSERT_LINE(s, "--moe-token-dispatcher-type alltoall"); /* not the default allgather */
    ASSERT_LINE(s, "--moe-grouped-gemm");
    ASSERT_LINE(s, "--moe-router-load-balancing-type aux_loss");
    ASSERT_LINE(s, "--moe-aux-loss-coeff 1e-2");
    free(s);

    /* every other block MoE, strata's the second of each pair: Megatron's list form, quoted */
    m.moe_every = 2;
    for (int64_t l = 0; l < 4; l++) ck_assert_int_eq(st_model_layer_is_moe(&m, l), l % 2 == 1);
    s = emit_ok(ST_EMIT_MEGATRON, &p, &m);
    ASSERT_LINE(s, "--moe-layer-freq '([0]*1+[1])*16'");
    free(s);

    /* DeepSeek-V3's shape: the experts' own FFN size, three dense blocks first (a per-layer list),
     * a shared expert, group-limited routing, latent attention, MTP; each flag in the checked list */
    m.moe_every = 1, m.moe_ffn = 2048, m.first_dense = 3, m.shared_experts = 1, m.shared_ffn = 2048;
    m.router_groups = 8, m.router_group_topk = 4, m.mtp_layers = 1;
    m.q_lora_rank = 1536, m.kv_lora_rank = 512, m.qk_nope_dim = 128, m.qk_rope_dim = 64, m.v_head_dim = 128;
    s = emit_ok(ST_EMIT_MEGATRON, &p, &m);
    ASSERT_LINE(s, "--moe-ffn-hidden-size 2048");
    ASSERT_LINE(s, "--moe-layer-freq '[0]*3+[1]*29'");
    free(s);
    /* a long per-layer list (120 blocks, two dense, then every other MoE: 120 runs) goes out whole:
     * its runs cover every block and the quote closes */
    st_model big = m;
    big.layers = 120, big.first_dense = 2, big.moe_every = 2;
    s = emit_ok(ST_EMIT_MEGATRON, &p, &big);
    const char *f = strstr(s, "--moe-layer-freq '");
    ck_assert_ptr_nonnull(f);
    f += strlen("--moe-layer-freq '");
    int64_t covered = 0, runs = 0;
    int bit, used;
    long long count;
    while (sscanf(f, "[%d]*%lld%n", &bit, &count, &used) == 2) {
        covered += count, runs++;
        f += used;
        if (*f == '+') f++;
    }
    ck_assert_int_eq(*f, '\'');
    ck_assert_int_eq(covered, 120);
    ck_assert_int_gt(runs, 100);
    ASSERT_LINE(s, "--moe-shared-expert-intermediate-size 2048");
    ASSERT_LINE(s, "--moe-router-num-groups 8");
    ASSERT_LINE(s, "--moe-router-group-topk 4");
    ASSERT_LINE(s, "--multi-latent-attention");
    ASSERT_LINE(s, "--q-lora-rank 1536");
    ASSERT_LINE(s, "--kv-lora-rank 512");
    ASSERT_LINE(s, "--qk-head-dim 128");
    ASSERT_LINE(s, "--qk-pos-emb-head-dim 64");
    ASSERT_LINE(s, "--v-head-dim 128");
    ASSERT_LINE(s, "--mtp-num-layers 1");
    ASSERT_NO_FLAG(s, "--kv-channels");
    free(s);
    m.moe_ffn = 0, m.first_dense = 0, m.shared_experts = 0, m.shared_ffn = 0, m.router_groups = 0;
    m.router_group_topk = 0, m.mtp_layers = 0, m.q_lora_rank = 0, m.kv_lora_rank = 0, m.qk_nope_dim = 0;
    m.qk_rope_dim = 0, m.v_head_dim = 0;
    /* a capacity factor: Megatron-LM's, with the padded buffers strata prices */
    m.capacity_factor = 1.25;
    s = emit_ok(ST_EMIT_MEGATRON, &p, &m);
    ASSERT_LINE(s, "--moe-expert-capacity-factor 1.25");
    ASSERT_LINE(s, "--moe-pad-expert-input-to-capacity");
    free(s);
    m.capacity_factor = 0;
    m.moe_every = 3; /* 32 blocks: ten groups of three and two dense blocks left over */
    s = emit_ok(ST_EMIT_MEGATRON, &p, &m);
    ASSERT_LINE(s, "--moe-layer-freq '([0]*2+[1])*10+[0]*2'");
    free(s);

    /* dense models carry none of the MoE flags */
    model_llama8b(&m);
    p.ep = 1;
    s = emit_ok(ST_EMIT_MEGATRON, &p, &m);
    ASSERT_NO_FLAG(s, "--moe-");
    ASSERT_NO_FLAG(s, "--num-experts");
    ck_assert_ptr_nonnull(strstr(s, "--rotary-base is not emitted"));
    free(s);
    /* with the model's RoPE base: the flag, not the note */
    m.rope_theta = 500000;
    s = emit_ok(ST_EMIT_MEGATRON, &p, &m);
    ASSERT_LINE(s, "--rotary-base 500000");
    ck_assert_ptr_null(strstr(s, "--rotary-base is not emitted"));
    free(s);
}
END_TEST


static void set_stages(st_plan *p, int n, const int *v) {
    p->nstage_layers = n;
    for (int i = 0; i < n; i++) p->stage_layers[i] = v[i];
}

START_TEST(test_megatron_uneven) {
    st_plan p;
    st_model m;
    st_error err;
    char *s;
    plan_llama(&p);
    model_llama8b(&m);
    m.layers = 30;
    p.pp = 4;
    p.dp = 2;
    p.gbs = 16;

    set_stages(&p, 4, (int[]){7, 8, 8, 7});
    s = emit_ok(ST_EMIT_MEGATRON, &p, &m);
    ASSERT_LINE(s, "--decoder-first-pipeline-num-layers 7");
    ASSERT_LINE(s, "--decoder-last-pipeline-num-layers 7");
    free(s);

    m.layers = 30;
    set_stages(&p, 4, (int[]){6, 8, 8, 8});
    s = emit_ok(ST_EMIT_MEGATRON, &p, &m);
    ASSERT_LINE(s, "--decoder-first-pipeline-num-layers 6");
    ASSERT_NO_FLAG(s, "--decoder-last-pipeline-num-layers");
    free(s);

    set_stages(&p, 4, (int[]){8, 8, 8, 6});
    s = emit_ok(ST_EMIT_MEGATRON, &p, &m);
    ASSERT_NO_FLAG(s, "--decoder-first-pipeline-num-layers");
    ASSERT_LINE(s, "--decoder-last-pipeline-num-layers 6");
    free(s);

    m.layers = 32;
    set_stages(&p, 4, (int[]){8, 8, 8, 8}); /* explicit but even: no flag */
    s = emit_ok(ST_EMIT_MEGATRON, &p, &m);
    ASSERT_NO_FLAG(s, "--decoder-");
    free(s);

    /* pp 2: the first stage's count alone says it all */
    p.pp = 2;
    m.layers = 30;
    set_stages(&p, 2, (int[]){10, 20});
    s = emit_ok(ST_EMIT_MEGATRON, &p, &m);
    ASSERT_LINE(s, "--decoder-first-pipeline-num-layers 10");
    ASSERT_NO_FLAG(s, "--decoder-last-pipeline-num-layers");
    free(s);

    /* middle stages that differ: not expressible */
    p.pp = 4;
    set_stages(&p, 4, (int[]){7, 8, 9, 6});
    ck_assert_int_eq(run_emit(ST_EMIT_MEGATRON, &p, &m, &err, &s, NULL), ST_EINVAL);
    ck_assert_str_eq(err.key, "stage_layers");
    ck_assert_str_eq(s, "");
    free(s);

    /* uneven chunks with interleaving (balance.c's per-rank split on node groups): Megatron-LM's custom
     * layout, chunk by chunk in strata's order, in place of the per-virtual-stage count and the
     * first/last flags */
    p.pp = 2;
    p.vp = 2;
    p.schedule = ST_SCHED_INTERLEAVED;
    set_stages(&p, 4, (int[]){5, 10, 5, 10});
    s = emit_ok(ST_EMIT_MEGATRON, &p, &m);
    ASSERT_LINE(s, "--pipeline-model-parallel-layout 'E,t*5|t*10|t*5|t*10,L'");
    ASSERT_NO_FLAG(s, "--num-layers-per-virtual-pipeline-stage");
    ASSERT_NO_FLAG(s, "--decoder-");
    free(s);
    set_stages(&p, 4, (int[]){8, 7, 7, 8});
    s = emit_ok(ST_EMIT_MEGATRON, &p, &m);
    ASSERT_LINE(s, "--pipeline-model-parallel-layout 'E,t*8|t*7|t*7|t*8,L'");
    free(s);
    /* even chunks keep the per-virtual-stage count */
    m.layers = 32;
    set_stages(&p, 4, (int[]){8, 8, 8, 8});
    s = emit_ok(ST_EMIT_MEGATRON, &p, &m);
    ASSERT_LINE(s, "--num-layers-per-virtual-pipeline-stage 8");
    ASSERT_NO_FLAG(s, "--pipeline-model-parallel-layout");
    free(s);
    m.layers = 30;

    /* entries that do not add up to the model */
    p.vp = 1;
    set_stages(&p, 2, (int[]){10, 10});
    ck_assert_int_eq(run_emit(ST_EMIT_MEGATRON, &p, &m, &err, &s, NULL), ST_EINVAL);
    ck_assert_str_eq(err.key, "stage_layers");
    free(s);
}
END_TEST

/* ------------------------------------------------------------ errors */

static void mut_zero2(st_plan *p, st_model *m) { p->zero = 2; }
static void mut_zero3(st_plan *p, st_model *m) { p->zero = 3; }
static void mut_off_opt(st_plan *p, st_model *m) { p->offload = ST_OFF_OPTIMIZER; }
static void mut_off_params(st_plan *p, st_model *m) { p->offload = ST_OFF_PARAMS; }
static void mut_gpipe(st_plan *p, st_model *m) { p->schedule = ST_SCHED_GPIPE; }
/* issue 15's structure that the target's pretrain_gpt.py has no flag for */
static void mut_dsa(st_plan *p, st_model *m) { m->index_topk = 2048, m->index_heads = 32, m->index_head_dim = 128; }
static void mut_gdn(st_plan *p, st_model *m) { memset(m->layer_pattern, 'G', (size_t)m->layers); }
static void mut_global(st_plan *p, st_model *m) { m->window = 1024, m->global_every = 6, m->global_head_dim = 256; }
static void mut_out_gate(st_plan *p, st_model *m) { m->attn_out_gate = 1; }
static void mut_parallel(st_plan *p, st_model *m) { m->parallel_block = 1; }
/* MoE shapes DeepSpeed's MoE layer cannot run */
static void mut_ds_groups(st_plan *p, st_model *m) {
    m->experts = 8, m->experts_topk = 2, m->moe_every = 1, m->router_groups = 4, m->router_group_topk = 2;
}
static void mut_ds_moe_ffn(st_plan *p, st_model *m) { m->experts = 8, m->experts_topk = 2, m->moe_every = 1,
                                                      m->moe_ffn = 2048; }
static void mut_ds_first_dense(st_plan *p, st_model *m) { m->experts = 8, m->experts_topk = 2, m->moe_every = 1,
                                                          m->first_dense = 1; }
static void mut_zb(st_plan *p, st_model *m) { p->schedule = ST_SCHED_ZB; }
/* 9 micro-batches per data-parallel rank in rounds of max(1, 9 / 2) = 4: torch's interleaved schedules refuse */
static void mut_zb_rounds(st_plan *p, st_model *m) {
    p->schedule = ST_SCHED_ZB;
    p->gbs = 36;
}
static void mut_vp_rounds(st_plan *p, st_model *m) {
    p->vp = 2;
    p->gbs = 36;
}
static void mut_alibi(st_plan *p, st_model *m) { m->position = ST_POS_ALIBI; }
static void mut_relu(st_plan *p, st_model *m) { m->activation = ST_ACT_RELU; }
static void mut_gbs(st_plan *p, st_model *m) { p->gbs = 30; } /* dp*mbs = 4 */
static void mut_vp_no_pp(st_plan *p, st_model *m) {
    p->pp = 1;
    p->vp = 2;
}
static void mut_ep_dense(st_plan *p, st_model *m) { p->ep = 2; }
static void mut_zero2_pp(st_plan *p, st_model *m) { p->zero = 2; }
static void mut_vp2(st_plan *p, st_model *m) {
    p->vp = 2;
    p->schedule = ST_SCHED_INTERLEAVED;
}
static void mut_zbv(st_plan *p, st_model *m) {
    p->vp = 2;
    p->schedule = ST_SCHED_ZBV;
}
static void mut_dualpipe(st_plan *p, st_model *m) { p->schedule = ST_SCHED_DUALPIPE; }
static void mut_params_zero2(st_plan *p, st_model *m) {
    p->pp = 1;
    p->dp = 8;
    p->zero = 2;
    p->offload = ST_OFF_PARAMS;
}
static void mut_opt_zero0(st_plan *p, st_model *m) {
    p->zero = 0;
    p->offload = ST_OFF_OPTIMIZER;
}
static void mut_gpt_arch(st_plan *p, st_model *m) { model_gpt3(m); }
static void mut_tied(st_plan *p, st_model *m) { m->tied_embeddings = 1; }
static void mut_moe_ep(st_plan *p, st_model *m) {
    m->experts = 8;
    m->experts_topk = 2;
    p->ep = 4;
}
static void mut_moe(st_plan *p, st_model *m) {
    m->experts = 8;
    m->experts_topk = 2;
}
static void mut_fp16(st_plan *p, st_model *m) { p->dtype = ST_DT_FP16; }
static void mut_nvfp4(st_plan *p, st_model *m) { p->dtype = ST_DT_NVFP4; }
static void mut_moe_pp(st_plan *p, st_model *m) { mut_moe_ep(p, m); } /* the base plan has pp 2 */
static void mut_moe_ep_cp(st_plan *p, st_model *m) {
    mut_moe(p, m);
    p->pp = 1;
    p->cp = 2;
    p->ep = 8; /* divides dp*cp = 8, not dp = 4 */
}
static void mut_unfused(st_plan *p, st_model *m) { p->attention = ST_ATTN_UNFUSED; }
static void mut_ddp_tp(st_plan *p, st_model *m) { p->zero = 0; }
static void mut_pp_partition(st_plan *p, st_model *m) { p->pp_partition = 1; }
static void mut_params_zero0(st_plan *p, st_model *m) {
    p->zero = 0;
    p->tp = 1;
    p->pp = 1;
    p->mbs = 8;
    p->offload = ST_OFF_PARAMS;
}

static const struct {
    st_emit_kind kind;
    void (*mut)(st_plan *, st_model *);
    const char *key;
    const char *text; /* a word the message must contain, or NULL */
} err_cases[] = {
    {ST_EMIT_MEGATRON, mut_zero2, "zero", "--emit deepspeed"},
    {ST_EMIT_MEGATRON, mut_zero3, "zero", "torchtitan"},
    {ST_EMIT_MEGATRON, mut_off_opt, "offload", "--emit deepspeed"},
    {ST_EMIT_MEGATRON, mut_off_params, "offload", "torchtitan"},
    {ST_EMIT_MEGATRON, mut_gpipe, "schedule", "--emit deepspeed"},
    {ST_EMIT_MEGATRON, mut_zb, "schedule", "torchtitan"},
    {ST_EMIT_MEGATRON, mut_zbv, "schedule", "ZBVZeroBubble"}, /* no ZB-V, no DualPipe: torchtitan's */
    {ST_EMIT_MEGATRON, mut_dualpipe, "schedule", "DualPipe"},
    {ST_EMIT_DEEPSPEED, mut_dualpipe, "schedule", "DualPipe"},
    {ST_EMIT_TORCHTITAN, mut_dualpipe, "schedule", "DualPipe"}, /* its release has no DualPipeV either */
    {ST_EMIT_MEGATRON, mut_alibi, "position", "ALiBi"},
    {ST_EMIT_MEGATRON, mut_relu, "activation", NULL},
    {ST_EMIT_MEGATRON, mut_gbs, "gbs", NULL},
    {ST_EMIT_MEGATRON, mut_vp_no_pp, "vp", NULL},
    {ST_EMIT_MEGATRON, mut_ep_dense, "ep", NULL},
    {ST_EMIT_TORCHTITAN, mut_nvfp4, "dtype", "nvfp4"},
    {ST_EMIT_MEGATRON, mut_dsa, "index_topk", "Sparse Attention"},
    {ST_EMIT_MEGATRON, mut_gdn, "layer_pattern", "Gated DeltaNet"},
    {ST_EMIT_MEGATRON, mut_global, "global_head_dim", NULL},
    {ST_EMIT_MEGATRON, mut_out_gate, "attn_out_gate", NULL},
    {ST_EMIT_MEGATRON, mut_parallel, "parallel_block", NULL},
    {ST_EMIT_DEEPSPEED, mut_ds_groups, "router_groups", "MoE layer"},
    {ST_EMIT_DEEPSPEED, mut_ds_moe_ffn, "moe_ffn", NULL},
    {ST_EMIT_DEEPSPEED, mut_ds_first_dense, "first_dense", NULL},
    {ST_EMIT_MEGATRON, mut_pp_partition, "pp_partition", "--emit deepspeed"},
    {ST_EMIT_DEEPSPEED, mut_zero2_pp, "zero", "pipeline"},
    {ST_EMIT_DEEPSPEED, mut_vp2, "vp", NULL},
    {ST_EMIT_DEEPSPEED, mut_zb, "schedule", NULL},
    {ST_EMIT_DEEPSPEED, mut_zbv, "schedule", "ZB-V"}, /* the schedule, not its two chunks (vp) */
    {ST_EMIT_DEEPSPEED, mut_params_zero2, "offload", "stage 3"},
    {ST_EMIT_DEEPSPEED, mut_opt_zero0, "offload", NULL},
    {ST_EMIT_DEEPSPEED, mut_gbs, "gbs", NULL},
    {ST_EMIT_TORCHTITAN, mut_gpt_arch, "model", "llama3"},
    {ST_EMIT_TORCHTITAN, mut_tied, "model", NULL},
    {ST_EMIT_TORCHTITAN, mut_moe, "model", NULL},
    {ST_EMIT_TORCHTITAN, mut_moe_ep, "ep", NULL},
    {ST_EMIT_TORCHTITAN, mut_off_opt, "offload", NULL},
    {ST_EMIT_TORCHTITAN, mut_params_zero0, "offload", NULL},
    {ST_EMIT_TORCHTITAN, mut_fp16, "dtype", NULL},
    {ST_EMIT_TORCHTITAN, mut_unfused, "attention", "scaled_dot_product_attention"},
    {ST_EMIT_TORCHTITAN, mut_ddp_tp, "zero", "FSDP"},
    {ST_EMIT_TORCHTITAN, mut_zero2, "zero", "ZeRO-3"},
    {ST_EMIT_TORCHTITAN, mut_pp_partition, "pp_partition", "--emit deepspeed"},
    {ST_EMIT_TORCHTITAN, mut_zb_rounds, "gbs", "InterleavedZeroBubble"},
    {ST_EMIT_TORCHTITAN, mut_vp_rounds, "gbs", "multiple of its rounds"},
    {ST_EMIT_DEEPSPEED, mut_moe_pp, "pp", "--no-pipeline-parallel"},
    {ST_EMIT_DEEPSPEED, mut_moe_ep_cp, "ep", "divide dp"},
};

START_TEST(test_emit_errors) {
    st_plan p;
    st_model m;
    st_error err;
    char *s = NULL;
    long n = -1;
    plan_llama(&p);
    model_llama8b(&m);
    if (err_cases[_i].kind == ST_EMIT_TORCHTITAN) p.zero = 3; /* torchtitan's base plan is FSDP2 */
    err_cases[_i].mut(&p, &m);
    /* the unmodified plan emits */
    int rc = run_emit(err_cases[_i].kind, &p, &m, &err, &s, &n);
    ck_assert_msg(rc == ST_EINVAL, "case %d: rc %d, expected ST_EINVAL", _i, rc);
    ck_assert_int_eq(err.code, ST_EINVAL);
    ck_assert_msg(strcmp(err.key, err_cases[_i].key) == 0, "case %d: key '%s', expected '%s' (%s)", _i, err.key,
                  err_cases[_i].key, err.text);
    ck_assert_msg(err.text[0] != '\0', "case %d: no message", _i);
    if (err_cases[_i].text)
        ck_assert_msg(strstr(err.text, err_cases[_i].text) != NULL, "case %d: '%s' not in '%s'", _i,
                      err_cases[_i].text, err.text);
    ck_assert_int_eq(n, 0); /* nothing written */
    free(s);
}
END_TEST

START_TEST(test_emit_base_plans_ok) {
    /* the plans the error cases start from are valid for every target */
    st_plan p;
    st_model m;
    plan_llama(&p);
    model_llama8b(&m);
    for (int k = ST_EMIT_MEGATRON; k <= ST_EMIT_TORCHTITAN; k++) {
        p.zero = k == ST_EMIT_TORCHTITAN ? 3 : 1; /* FSDP2 is ZeRO-3; Megatron has no ZeRO-3 */
        free(emit_ok((st_emit_kind)k, &p, &m));
    }
    p.zero = 1;
    plan_gpt3(&p);
    model_gpt3(&m);
    free(emit_ok(ST_EMIT_MEGATRON, &p, &m));
}
END_TEST

START_TEST(test_emit_null_args) {
    st_plan p;
    st_model m;
    st_error err;
    plan_llama(&p);
    model_llama8b(&m);
    FILE *f = tmpfile();
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(st_emit(ST_EMIT_MEGATRON, NULL, &m, NULL, f, &err), ST_EINVAL);
    ck_assert_int_eq(st_emit(ST_EMIT_MEGATRON, &p, NULL, NULL, f, &err), ST_EINVAL);
    ck_assert_int_eq(st_emit(ST_EMIT_MEGATRON, &p, &m, NULL, NULL, &err), ST_EINVAL);
    ck_assert_int_eq(st_emit((st_emit_kind)7, &p, &m, NULL, f, &err), ST_EINVAL);
    ck_assert_int_eq(st_emit(ST_EMIT_MEGATRON, &p, &m, NULL, f, NULL), 0); /* no cluster, no err */
    ck_assert_int_gt(ftell(f), 0);
    fclose(f);
}
END_TEST

/* ------------------------------------------------------------ deepspeed */

static json_t *emit_json(const st_plan *p, const st_model *m) {
    char *s = emit_ok(ST_EMIT_DEEPSPEED, p, m);
    json_error_t jerr;
    json_t *root = json_loads(s, JSON_REJECT_DUPLICATES, &jerr);
    ck_assert_msg(root != NULL, "invalid JSON at %d:%d: %s\n%s", jerr.line, jerr.column, jerr.text, s);
    ck_assert(json_is_object(root));
    free(s);
    return root;
}

/* whether the "strata" object's notes hold one that starts with `prefix` */
static int has_note(const json_t *root, const char *prefix) {
    const json_t *notes = json_object_get(json_object_get(root, "strata"), "notes");
    for (size_t i = 0; i < json_array_size(notes); i++) {
        const char *t = json_string_value(json_array_get(notes, i));
        if (t && strncmp(t, prefix, strlen(prefix)) == 0) return 1;
    }
    return 0;
}

static json_int_t jint(const json_t *o, const char *key) {
    json_t *v = json_object_get(o, key);
    ck_assert_msg(json_is_integer(v), "'%s' is not an integer", key);
    return json_integer_value(v);
}

static int jtrue(const json_t *o, const char *key) {
    json_t *v = json_object_get(o, key);
    ck_assert_msg(json_is_boolean(v), "'%s' is not a boolean", key);
    return json_is_true(v);
}

START_TEST(test_deepspeed_arith) {
    st_plan p;
    st_model m;
    plan_llama(&p);
    model_llama8b(&m);
    p.pp = 1;
    p.tp = 4;
    p.dp = 6;
    p.mbs = 2;
    p.gbs = 120; /* 120 / (6 * 2) = 10 */
    json_t *root = emit_json(&p, &m);
    ck_assert_int_eq(jint(root, "train_batch_size"), 120);
    ck_assert_int_eq(jint(root, "train_micro_batch_size_per_gpu"), 2);
    ck_assert_int_eq(jint(root, "gradient_accumulation_steps"), 10);
    ck_assert_int_eq(jint(root, "train_micro_batch_size_per_gpu") * jint(root, "gradient_accumulation_steps") * p.dp,
                     jint(root, "train_batch_size"));
    json_t *clip = json_object_get(root, "gradient_clipping");
    ck_assert(json_is_real(clip));
    ck_assert(json_real_value(clip) == 1.0);
    ck_assert(json_is_integer(json_object_get(root, "steps_per_print")));

    json_t *z = json_object_get(root, "zero_optimization");
    ck_assert(json_is_object(z));
    ck_assert_int_eq(jint(z, "stage"), 1);
    ck_assert(jtrue(z, "overlap_comm"));
    ck_assert(jtrue(z, "contiguous_gradients"));
    ck_assert_ptr_null(json_object_get(z, "offload_optimizer"));
    ck_assert_ptr_null(json_object_get(z, "offload_param"));

    json_t *bf = json_object_get(root, "bf16");
    ck_assert(json_is_object(bf));
    ck_assert(jtrue(bf, "enabled"));
    ck_assert_ptr_null(json_object_get(root, "fp16"));

    json_t *ac = json_object_get(root, "activation_checkpointing");
    ck_assert(json_is_object(ac));
    ck_assert(!jtrue(ac, "partition_activations")); /* selective */
    ck_assert(!jtrue(ac, "contiguous_memory_optimization"));

    json_t *st = json_object_get(root, "strata");
    ck_assert(json_is_object(st));
    ck_assert_int_eq(jint(st, "tp"), 4);
    ck_assert_int_eq(jint(st, "pp"), 1);
    ck_assert_int_eq(jint(st, "dp"), 6);
    ck_assert_int_eq(jint(st, "cp"), 1);
    ck_assert_int_eq(jint(st, "ep"), 1);
    ck_assert_int_eq(jint(st, "vp"), 1);
    ck_assert_int_eq(jint(st, "gpus"), 24);
    ck_assert(json_is_string(json_object_get(st, "spec")));
    ck_assert_str_eq(json_string_value(json_object_get(st, "model")), "llama3-8b");
    ck_assert(strstr(json_string_value(json_object_get(st, "target")), "DeepSpeed 0.14") != NULL);
    ck_assert(json_is_array(json_object_get(st, "notes")));
    /* attention is a launch flag of Megatron-DeepSpeed, said in the notes */
    ck_assert_str_eq(json_string_value(json_object_get(st, "attention")), "flash");
    char *notes = json_dumps(json_object_get(st, "notes"), 0);
    ck_assert_ptr_nonnull(strstr(notes, "--use-flash-attn-v2"));
    free(notes);
    json_decref(root);
}
END_TEST

START_TEST(test_deepspeed_variants) {
    st_plan p;
    st_model m;
    json_t *root, *z, *o;
    plan_llama(&p);
    model_llama8b(&m);
    p.pp = 1;
    p.dp = 8;
    p.gbs = 64;

    /* ZeRO-3 with parameter offload: both offload blocks */
    p.zero = 3;
    p.offload = ST_OFF_PARAMS;
    p.overlap_grad_reduce = 0;
    root = emit_json(&p, &m);
    z = json_object_get(root, "zero_optimization");
    ck_assert_int_eq(jint(z, "stage"), 3);
    ck_assert(!jtrue(z, "overlap_comm"));
    o = json_object_get(z, "offload_param");
    ck_assert(json_is_object(o));
    ck_assert_str_eq(json_string_value(json_object_get(o, "device")), "cpu");
    ck_assert(jtrue(o, "pin_memory"));
    o = json_object_get(z, "offload_optimizer");
    ck_assert(json_is_object(o));
    ck_assert_str_eq(json_string_value(json_object_get(o, "device")), "cpu");
    ck_assert(jtrue(o, "pin_memory"));
    json_decref(root);

    /* with pp > 1 and tp > 1 the pipeline section says whether messages are split over tp, as priced
     * (pp_partition); without tp there is nothing to split */
    st_plan q = p;
    q.zero = 1, q.offload = ST_OFF_NONE, q.pp = 2, q.tp = 2, q.dp = 2, q.sp = 0;
    for (int part = 0; part < 2; part++) {
        q.pp_partition = part;
        root = emit_json(&q, &m);
        o = json_object_get(root, "pipeline");
        ck_assert(json_is_object(o));
        ck_assert_int_eq(jtrue(o, "pipe_partitioned"), part);
        ck_assert_int_eq(jtrue(o, "grad_partitioned"), part);
        json_decref(root);
    }
    q.tp = 1, q.dp = 4, q.pp_partition = 0;
    root = emit_json(&q, &m);
    ck_assert_ptr_null(json_object_get(root, "pipeline"));
    json_decref(root);

    /* ZeRO-2 with optimizer offload only */
    p.zero = 2;
    p.offload = ST_OFF_OPTIMIZER;
    root = emit_json(&p, &m);
    z = json_object_get(root, "zero_optimization");
    ck_assert_int_eq(jint(z, "stage"), 2);
    ck_assert(json_is_object(json_object_get(z, "offload_optimizer")));
    ck_assert_ptr_null(json_object_get(z, "offload_param"));
    json_decref(root);

    /* fp16 with dynamic loss scaling, full recompute partitioned over tp without sp, zero 0 */
    p.zero = 0;
    p.offload = ST_OFF_NONE;
    p.dtype = ST_DT_FP16;
    p.recompute = ST_REC_FULL;
    p.sp = 0;
    root = emit_json(&p, &m);
    o = json_object_get(root, "fp16");
    ck_assert(jtrue(o, "enabled"));
    ck_assert_int_eq(jint(o, "loss_scale"), 0);
    ck_assert_ptr_null(json_object_get(root, "bf16"));
    ck_assert(jtrue(json_object_get(root, "activation_checkpointing"), "partition_activations"));
    ck_assert_int_eq(jint(json_object_get(root, "zero_optimization"), "stage"), 0);
    json_decref(root);

    /* fp32, no recompute: neither precision block nor checkpointing */
    p.dtype = ST_DT_FP32;
    p.recompute = ST_REC_NONE;
    root = emit_json(&p, &m);
    ck_assert_ptr_null(json_object_get(root, "fp16"));
    ck_assert_ptr_null(json_object_get(root, "bf16"));
    ck_assert_ptr_null(json_object_get(root, "activation_checkpointing"));
    json_decref(root);

    /* pipeline with ZeRO-1 and uneven stages recorded for the launcher */
    p.dtype = ST_DT_BF16;
    p.pp = 2;
    p.dp = 4;
    p.zero = 1;
    set_stages(&p, 2, (int[]){15, 17});
    root = emit_json(&p, &m);
    o = json_object_get(json_object_get(root, "strata"), "stage_layers");
    ck_assert(json_is_array(o));
    ck_assert_uint_eq(json_array_size(o), 2);
    ck_assert_int_eq(json_integer_value(json_array_get(o, 1)), 17);
    ck_assert_int_eq(jint(root, "gradient_accumulation_steps"), 16); /* 64 / (4 * 1) */
    json_decref(root);

    /* the overlaps DeepSpeed has no key for are said in the notes */
    root = emit_json(&p, &m);
    ck_assert(!has_note(root, "tp_overlap: ") && !has_note(root, "overlap_param_gather: "));
    json_decref(root);
    p.tp_overlap = 1;
    p.overlap_grad_reduce = 1;
    p.overlap_param_gather = 1;
    root = emit_json(&p, &m);
    ck_assert(has_note(root, "tp_overlap: ") && has_note(root, "overlap_param_gather: "));
    json_decref(root);
}
END_TEST

START_TEST(test_deepspeed_escaping) {
    st_plan p;
    st_model m;
    plan_llama(&p);
    model_llama8b(&m);
    /* quote, backslash, newline, tab, DEL, valid UTF-8 and a stray byte */
    snprintf(m.name, sizeof m.name, "a\"b\\c\nd\te\x7f" "f\xc3\xa9g\xff");
    json_t *root = emit_json(&p, &m);
    const char *name = json_string_value(json_object_get(json_object_get(root, "strata"), "model"));
    ck_assert_ptr_nonnull(name);
    ck_assert_str_eq(name, "a\"b\\c\nd\te\x7f" "f\xc3\xa9g\xef\xbf\xbd"); /* 0xff -> U+FFFD */
    json_decref(root);

    /* the same name stays on one comment line in the Megatron and torchtitan outputs */
    char *s = emit_ok(ST_EMIT_MEGATRON, &p, &m);
    check_megatron_shape(s);
    free(s);
    p.zero = 3;
    s = emit_ok(ST_EMIT_TORCHTITAN, &p, &m);
    ck_assert_ptr_nonnull(strstr(s, "description = \"strata plan for a\\\"b\\\\c\\nd\\te\\u007f"));
    free(s);
}
END_TEST

/* cp_comm in both emitters: Megatron's --cp-comm-type only off its default (p2p), torchtitan's
 * rotate method "alltoall" for the ring and "allgather" for all_gather, none for a2a */
START_TEST(test_emit_cp_comm) {
    st_plan p;
    st_model m;
    plan_llama(&p);
    model_llama8b(&m);
    p.cp = 2;
    char *s = emit_ok(ST_EMIT_MEGATRON, &p, &m);
    ASSERT_NO_FLAG(s, "--cp-comm-type");
    free(s);
    p.cp_comm = ST_CP_ALLGATHER;
    s = emit_ok(ST_EMIT_MEGATRON, &p, &m);
    ASSERT_LINE(s, "--cp-comm-type all_gather");
    free(s);
    p.zero = 3; /* torchtitan's FSDP2 */
    s = emit_ok(ST_EMIT_TORCHTITAN, &p, &m);
    ASSERT_LINE(s, "context_parallel_rotate_method = \"allgather\"");
    free(s);
    p.cp_comm = ST_CP_A2A;
    s = emit_ok(ST_EMIT_TORCHTITAN, &p, &m);
    ASSERT_NO_FLAG(s, "context_parallel_rotate_method");
    free(s);
    p.zero = 0;
    s = emit_ok(ST_EMIT_MEGATRON, &p, &m);
    ASSERT_LINE(s, "--cp-comm-type a2a");
    free(s);
    p.cp = 1; /* nothing to say without cp */
    s = emit_ok(ST_EMIT_MEGATRON, &p, &m);
    ASSERT_NO_FLAG(s, "--cp-comm-type");
    free(s);
}
END_TEST

/* ------------------------------------------------------------ torchtitan */

START_TEST(test_torchtitan_degrees) {
    st_plan p;
    st_model m;
    plan_llama(&p);
    model_llama8b(&m);
    p.cp = 2;
    p.zero = 3; /* FSDP2 */
    char *s = emit_ok(ST_EMIT_TORCHTITAN, &p, &m);
    ck_assert_ptr_nonnull(strstr(s, "torchtitan v0.1.0"));
    ck_assert_msg(strncmp(s, "# strata plan: ", 15) == 0, "%s", s);
    ASSERT_LINE(s, "[job]");
    ASSERT_LINE(s, "[model]");
    ASSERT_LINE(s, "name = \"llama3\"");
    ASSERT_LINE(s, "flavor = \"8B\"");
    ASSERT_LINE(s, "[training]");
    ASSERT_LINE(s, "local_batch_size = 8"); /* 32 / dp 4, one step of 8 micro-batches */
    ASSERT_LINE(s, "global_batch_size = 32");
    ASSERT_NO_FLAG(s, "batch_size");
    ASSERT_LINE(s, "seq_len = 8192");
    ASSERT_LINE(s, "mixed_precision_param = \"bfloat16\"");
    ASSERT_LINE(s, "[parallelism]");
    ASSERT_LINE(s, "data_parallel_replicate_degree = 1");
    ASSERT_LINE(s, "data_parallel_shard_degree = 4");
    ASSERT_LINE(s, "tensor_parallel_degree = 2");
    ASSERT_LINE(s, "pipeline_parallel_degree = 2");
    ASSERT_LINE(s, "pipeline_parallel_schedule = \"1F1B\"");
    ASSERT_LINE(s, "pipeline_parallel_microbatch_size = 1");
    ASSERT_LINE(s, "pipeline_parallel_split_points = [\"layers.16\"]");
    ASSERT_LINE(s, "context_parallel_degree = 2");
    ASSERT_LINE(s, "context_parallel_rotate_method = \"alltoall\""); /* cp_comm=p2p: the ring */
    ASSERT_LINE(s, "[activation_checkpoint]");
    ASSERT_LINE(s, "mode = \"selective\"");
    ASSERT_LINE(s, "selective_ac_option = \"op\"");
    ASSERT_NO_FLAG(s, "enable_cpu_offload");
    ASSERT_NO_FLAG(s, "enable_async_tensor_parallel");
    ASSERT_LINE(s, "compile = true"); /* kernels=fused: the blocks as torch.compile fuses them */
    free(s);
    p.kernels = ST_KERN_EAGER;
    s = emit_ok(ST_EMIT_TORCHTITAN, &p, &m);
    ASSERT_LINE(s, "compile = false");
    free(s);
    p.kernels = ST_KERN_FUSED;

    /* tp_overlap is async TP, which needs torch.compile */
    p.tp_overlap = 1;
    s = emit_ok(ST_EMIT_TORCHTITAN, &p, &m);
    ASSERT_LINE(s, "enable_async_tensor_parallel = true");
    ASSERT_LINE(s, "compile = true");
    free(s);
    p.tp_overlap = 0;

    /* interleaved: pp*vp stages, split evenly */
    p.cp = 1;
    p.vp = 2;
    p.schedule = ST_SCHED_INTERLEAVED;
    p.recompute = ST_REC_FULL;
    s = emit_ok(ST_EMIT_TORCHTITAN, &p, &m);
    ASSERT_LINE(s, "pipeline_parallel_schedule = \"Interleaved1F1B\"");
    ASSERT_LINE(s, "pipeline_parallel_split_points = [\"layers.8\", \"layers.16\", \"layers.24\"]");
    ASSERT_LINE(s, "mode = \"full\"");
    ASSERT_NO_FLAG(s, "selective_ac_option");
    free(s);

    /* recompute=op is torchtitan's selective mode with the op-level policy; Megatron has no flag */
    p.recompute = ST_REC_OP;
    s = emit_ok(ST_EMIT_TORCHTITAN, &p, &m);
    ASSERT_LINE(s, "mode = \"selective\"");
    ASSERT_LINE(s, "selective_ac_option = \"op\"");
    free(s);
    st_plan q = p;
    q.zero = 1;
    s = emit_ok(ST_EMIT_MEGATRON, &q, &m);
    ASSERT_NO_FLAG(s, "--recompute");
    ck_assert_ptr_nonnull(strstr(s, "recompute=op is torchtitan's"));
    free(s);
    p.recompute = ST_REC_FULL;

    /* explicit uneven split */
    p.vp = 1;
    p.pp = 4;
    p.dp = 2;
    p.gbs = 16;
    p.schedule = ST_SCHED_GPIPE;
    set_stages(&p, 4, (int[]){7, 9, 9, 7});
    s = emit_ok(ST_EMIT_TORCHTITAN, &p, &m);
    ASSERT_LINE(s, "pipeline_parallel_schedule = \"GPipe\"");
    ASSERT_LINE(s, "pipeline_parallel_split_points = [\"layers.7\", \"layers.16\", \"layers.25\"]");
    ASSERT_LINE(s, "local_batch_size = 8");
    ASSERT_LINE(s, "global_batch_size = 16");
    free(s);

    p.nstage_layers = 0;
    p.schedule = ST_SCHED_ZB;
    p.zero = 3;
    p.offload = ST_OFF_PARAMS;
    p.recompute = ST_REC_NONE;
    s = emit_ok(ST_EMIT_TORCHTITAN, &p, &m);
    ASSERT_LINE(s, "pipeline_parallel_schedule = \"InterleavedZeroBubble\"");
    ASSERT_LINE(s, "enable_cpu_offload = true");
    ASSERT_LINE(s, "data_parallel_shard_degree = 2");
    ASSERT_LINE(s, "mode = \"none\"");
    free(s);

    /* ZB-V: torch's ZBVZeroBubble on 2 pp stages in model order, which torchtitan places in a V */
    p.schedule = ST_SCHED_ZBV;
    p.vp = 2;
    s = emit_ok(ST_EMIT_TORCHTITAN, &p, &m);
    ASSERT_LINE(s, "pipeline_parallel_schedule = \"ZBVZeroBubble\"");
    ASSERT_LINE(s, "pipeline_parallel_split_points = [\"layers.4\", \"layers.8\", \"layers.12\", \"layers.16\", "
                   "\"layers.20\", \"layers.24\", \"layers.28\"]");
    ck_assert_ptr_nonnull(strstr(s, "stages r and 2*pp-1-r"));
    free(s);
}
END_TEST

START_TEST(test_torchtitan_ddp_flavor) {
    st_plan p;
    st_model m;
    plan_llama(&p);
    model_llama8b(&m);
    /* zero 0, data parallelism alone: DDP replicas; no pipeline keys */
    p.tp = 1;
    p.pp = 1;
    p.dp = 8;
    p.mbs = 2;
    p.gbs = 16;
    p.zero = 0;
    p.dtype = ST_DT_FP32;
    char *s = emit_ok(ST_EMIT_TORCHTITAN, &p, &m);
    ASSERT_LINE(s, "data_parallel_replicate_degree = 8");
    ASSERT_LINE(s, "data_parallel_shard_degree = 1");
    ASSERT_LINE(s, "local_batch_size = 2");
    ASSERT_LINE(s, "global_batch_size = 16"); /* one step: 16 / (2 x 8) */
    ASSERT_LINE(s, "mixed_precision_param = \"float32\"");
    ASSERT_LINE(s, "pipeline_parallel_degree = 1");
    ASSERT_NO_FLAG(s, "pipeline_parallel_schedule");
    ASSERT_NO_FLAG(s, "pipeline_parallel_split_points");
    free(s);

    /* shapes no built-in flavor has: the model's name as the flavor to add, with a comment */
    m.layers = 16;
    snprintf(m.name, sizeof m.name, "my-llama");
    s = emit_ok(ST_EMIT_TORCHTITAN, &p, &m);
    ASSERT_LINE(s, "flavor = \"my-llama\"");
    ck_assert(has_prefix(s, "# no built-in llama3 flavor"));
    free(s);

    m.layers = 80;
    m.hidden = 8192;
    m.heads = 64;
    m.ffn = 28672;
    s = emit_ok(ST_EMIT_TORCHTITAN, &p, &m);
    ASSERT_LINE(s, "flavor = \"70B\"");
    free(s);
}
END_TEST

/* ------------------------------------------------------------ release key lists */

/* The names in tests/data/emit/FILE (one a line, '#' comment lines skipped); free with keys_free. */
typedef struct keys {
    char **k;
    size_t n;
} keys;

static void keys_load(keys *l, const char *file) {
    char path[1024], line[512];
    snprintf(path, sizeof path, "%s/tests/data/emit/%s", SRCDIR, file);
    FILE *f = fopen(path, "r");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    l->k = NULL;
    l->n = 0;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = '\0';
        if (line[0] == '\0' || line[0] == '#') continue;
        l->k = realloc(l->k, (l->n + 1) * sizeof *l->k);
        ck_assert_ptr_nonnull(l->k);
        l->k[l->n++] = strdup(line);
    }
    fclose(f);
    ck_assert_uint_gt(l->n, 20);
}

static void keys_free(keys *l) {
    for (size_t i = 0; i < l->n; i++) free(l->k[i]);
    free(l->k);
}

static int keys_has(const keys *l, const char *key) {
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->k[i], key) == 0) return 1;
    return 0;
}

/* Every "--flag" line of a Megatron output names a flag of the list; returns how many it checked. */
static int check_megatron_flags(const char *text, const keys *l) {
    int n = 0;
    for (const char *s = text; *s;) {
        const char *e = strchr(s, '\n');
        ck_assert_ptr_nonnull(e);
        if (s[0] == '-') {
            char name[128];
            size_t len = strcspn(s, " \n");
            ck_assert_uint_lt(len, sizeof name);
            memcpy(name, s, len);
            name[len] = '\0';
            ck_assert_msg(keys_has(l, name), "%s is not a flag of the targeted release:\n%s", name, text);
            n++;
        }
        s = e + 1;
    }
    return n;
}

/* Every key of a torchtitan TOML is a section.key of the list, and the batch keys run the plan's
 * batch: global_batch_size = gbs, gradient accumulation and pipeline micro-batches as planned. */
static void check_torchtitan_keys(const char *text, const keys *l, const st_plan *p) {
    char section[64] = "";
    int64_t local = -1, global = -1, rep = 1, shard = 1, mbsz = 1;
    for (const char *s = text; *s;) {
        const char *e = strchr(s, '\n');
        ck_assert_ptr_nonnull(e);
        size_t len = (size_t)(e - s);
        if (len == 0 || s[0] == '#') {
        } else if (s[0] == '[') {
            ck_assert_msg(s[len - 1] == ']' && len - 2 < sizeof section, "bad section line %.*s", (int)len, s);
            memcpy(section, s + 1, len - 2);
            section[len - 2] = '\0';
        } else {
            const char *eq = strstr(s, " = ");
            ck_assert_msg(eq && eq < e, "not a key line: %.*s", (int)len, s);
            char key[160];
            snprintf(key, sizeof key, "%s.%.*s", section, (int)(eq - s), s);
            ck_assert_msg(keys_has(l, key), "%s is not a key of the targeted release:\n%s", key, text);
            long long v = atoll(eq + 3);
            if (strcmp(key, "training.local_batch_size") == 0) local = v;
            if (strcmp(key, "training.global_batch_size") == 0) global = v;
            if (strcmp(key, "parallelism.data_parallel_replicate_degree") == 0) rep = v;
            if (strcmp(key, "parallelism.data_parallel_shard_degree") == 0) shard = v;
            if (strcmp(key, "parallelism.pipeline_parallel_microbatch_size") == 0) mbsz = v;
        }
        s = e + 1;
    }
    int64_t micro = p->gbs / ((int64_t)p->dp * p->mbs); /* micro-batches per rank and step */
    ck_assert_int_eq(global, p->gbs);
    ck_assert_int_eq(rep * shard, p->dp);
    ck_assert_int_gt(local, 0);
    ck_assert_int_eq(global % (local * rep * shard), 0);
    int64_t accum = global / (local * rep * shard);
    if (p->pp > 1) {
        ck_assert_int_eq(mbsz, p->mbs);
        ck_assert_int_eq(local % mbsz, 0);
        ck_assert_int_eq(accum * (local / mbsz), micro);
    } else {
        ck_assert_int_eq(local, p->mbs);
        ck_assert_int_eq(accum, micro);
    }
}

/* Plans across what each emitter writes: every parallelism, schedule, recompute mode, dtype,
 * overlap and batch split. Each starts from plan_llama and model_llama8b. */
static void rel_fsdp(st_plan *p, st_model *m) {
    p->tp = p->pp = 1;
    p->dp = 8;
    p->gbs = 64; /* 8 accumulation steps */
}
static void rel_tp(st_plan *p, st_model *m) {
    p->pp = 1;
    p->tp = 4;
    p->dp = 2;
    p->mbs = 2;
    p->gbs = 16;
    p->tp_overlap = 1;
}
static void rel_pp(st_plan *p, st_model *m) { p->gbs = 64; }
static void rel_interleaved(st_plan *p, st_model *m) {
    p->vp = 2;
    p->schedule = ST_SCHED_INTERLEAVED;
    p->recompute = ST_REC_FULL;
}
static void rel_uneven(st_plan *p, st_model *m) {
    p->pp = 4;
    p->dp = 2;
    p->gbs = 32;
    p->mbs = 2;
    set_stages(p, 4, (int[]){7, 9, 9, 7});
}
static void rel_cp(st_plan *p, st_model *m) {
    p->cp = 2;
    p->cp_comm = ST_CP_ALLGATHER;
}
static void rel_fp8(st_plan *p, st_model *m) {
    p->dtype = ST_DT_FP8;
    p->pp = 1;
    p->mbs = 2;
}
static void rel_mxfp8(st_plan *p, st_model *m) {
    rel_fp8(p, m);
    p->dtype = ST_DT_MXFP8;
}
static void rel_fp8pg(st_plan *p, st_model *m) {
    rel_fp8(p, m);
    p->zero = 1;
    p->fp8_param_gather = 1;
}
static void rel_op(st_plan *p, st_model *m) { p->recompute = ST_REC_OP; }
static void rel_none(st_plan *p, st_model *m) { p->recompute = ST_REC_NONE; }
static void rel_fp32_single(st_plan *p, st_model *m) {
    p->tp = p->pp = p->dp = 1;
    p->gbs = 4;
    p->dtype = ST_DT_FP32;
}
static void rel_moe(st_plan *p, st_model *m) {
    m->experts = 8;
    m->experts_topk = 2;
    m->moe_every = 2;
    p->ep = 4;
}
/* issue 15's structure: DeepSeek-V3's (latent attention, shared expert, dense-first blocks, groups,
 * MTP, capacity) and the windowed blocks of gpt-oss and Gemma 3 (global every n, sinks, qk-norm,
 * q/k/v biases) */
static void rel_deepseek(st_plan *p, st_model *m) {
    rel_moe(p, m);
    m->moe_every = 1, m->moe_ffn = 2048, m->first_dense = 3, m->shared_experts = 1, m->shared_ffn = 2048;
    m->router_groups = 4, m->router_group_topk = 2, m->mtp_layers = 1, m->capacity_factor = 1.5;
    m->q_lora_rank = 1536, m->kv_lora_rank = 512, m->qk_nope_dim = 128, m->qk_rope_dim = 64, m->v_head_dim = 128;
}
static void rel_windows(st_plan *p, st_model *m) {
    m->window = 1024, m->global_every = 6, m->attn_sinks = 1, m->qk_norm = 1, m->qkv_bias = 1, m->rope_theta = 1e6;
}
static void rel_gpt3(st_plan *p, st_model *m) {
    plan_gpt3(p);
    model_gpt3(m);
}

static const struct {
    void (*mut)(st_plan *, st_model *);
    int titan; /* also a torchtitan plan (dense llama3) */
} rel_plans[] = {
    {rel_fsdp, 1}, {rel_tp, 1},   {rel_pp, 1},   {rel_interleaved, 1}, {rel_uneven, 1},   {rel_cp, 1},
    {rel_fp8, 1},  {rel_op, 1},   {rel_none, 1}, {rel_fp32_single, 1}, {rel_moe, 0},      {rel_gpt3, 0},
    {rel_deepseek, 0}, {rel_windows, 0}, {rel_fp8pg, 0},
};

START_TEST(test_emit_release_keys) {
    st_plan p;
    st_model m;
    keys titan, mega;
    keys_load(&titan, "torchtitan_v0.1.0_keys.txt");
    keys_load(&mega, "megatron_main_000c4ac_flags.txt");
    plan_llama(&p);
    model_llama8b(&m);
    rel_plans[_i].mut(&p, &m);
    st_plan q = p;
    if (q.zero > 1) q.zero = 1; /* Megatron's distributed optimizer */
    char *s = emit_ok(ST_EMIT_MEGATRON, &q, &m);
    ck_assert_int_gt(check_megatron_flags(s, &mega), 10);
    free(s);
    if (rel_plans[_i].titan) {
        q = p;
        q.zero = q.dp > 1 ? 3 : 0; /* FSDP2, or one GPU */
        q.sp = q.tp > 1;
        s = emit_ok(ST_EMIT_TORCHTITAN, &q, &m);
        check_torchtitan_keys(s, &titan, &q);
        free(s);
    }
    keys_free(&titan);
    keys_free(&mega);
}
END_TEST

/* fp8_param_gather: Megatron's --fp8-param-gather (in the target's argument list), with mxfp8 a note on
 * the gradient-buffer gather it was priced as; DeepSpeed and torchtitan refuse it, naming the key */
START_TEST(test_fp8_param_gather_emit) {
    st_plan p;
    st_model m;
    st_error err;
    char *s;
    keys mega;
    keys_load(&mega, "megatron_main_000c4ac_flags.txt");
    plan_llama(&p);
    model_llama8b(&m);
    rel_fp8(&p, &m);
    p.zero = 1;
    s = emit_ok(ST_EMIT_MEGATRON, &p, &m);
    ASSERT_NO_FLAG(s, "--fp8-param-gather");
    free(s);
    p.fp8_param_gather = 1;
    s = emit_ok(ST_EMIT_MEGATRON, &p, &m);
    ASSERT_LINE(s, "--fp8-param-gather");
    ck_assert_ptr_null(strstr(s, "reuse_grad_buf_for_mxfp8_param_ag"));
    ck_assert_int_gt(check_megatron_flags(s, &mega), 10);
    free(s);
    p.dtype = ST_DT_MXFP8;
    s = emit_ok(ST_EMIT_MEGATRON, &p, &m);
    ASSERT_LINE(s, "--fp8-param-gather");
    ck_assert_ptr_nonnull(strstr(s, "reuse_grad_buf_for_mxfp8_param_ag=True"));
    free(s);
    const st_emit_kind refuse[] = {ST_EMIT_DEEPSPEED, ST_EMIT_TORCHTITAN};
    for (int k = 0; k < 2; k++) {
        long n = -1;
        ck_assert_int_eq(run_emit(refuse[k], &p, &m, &err, &s, &n), ST_EINVAL);
        ck_assert_str_eq(err.key, "fp8_param_gather");
        ck_assert_int_eq(n, 0); /* nothing written */
        free(s);
    }
    keys_free(&mega);
}
END_TEST

/* float8 is torchao's converter with its own section; the all-gather options only under FSDP */
START_TEST(test_torchtitan_float8) {
    st_plan p;
    st_model m;
    plan_llama(&p);
    model_llama8b(&m);
    rel_fp8(&p, &m);
    p.zero = 3;
    char *s = emit_ok(ST_EMIT_TORCHTITAN, &p, &m);
    ASSERT_LINE(s, "converters = [\"float8\"]");
    ASSERT_LINE(s, "[float8]");
    ASSERT_LINE(s, "recipe_name = \"tensorwise\"");
    ASSERT_LINE(s, "enable_fsdp_float8_all_gather = true");
    ASSERT_LINE(s, "precompute_float8_dynamic_scale_for_fsdp = true");
    ASSERT_LINE(s, "mixed_precision_param = \"bfloat16\"");
    free(s);
    p.tp = 8; /* tensor parallelism alone: no FSDP to gather in float8 */
    p.dp = 1;
    p.gbs = 4;
    s = emit_ok(ST_EMIT_TORCHTITAN, &p, &m);
    ASSERT_LINE(s, "[float8]");
    ASSERT_NO_FLAG(s, "enable_fsdp_float8_all_gather");
    ck_assert_ptr_nonnull(strstr(s, "with tp or pp alone this release trains in float32"));
    free(s);
    p.dtype = ST_DT_BF16;
    s = emit_ok(ST_EMIT_TORCHTITAN, &p, &m);
    ASSERT_NO_FLAG(s, "converters");
    ASSERT_NO_FLAG(s, "[float8]");
    free(s);
}
END_TEST

/* mxfp8 is torchtitan's mx converter (torchao's MXFP8 linear) with its [mx] section; DeepSpeed has no
 * switch for either block-scaled format: bf16 with a note naming the recipe */
START_TEST(test_blockscaled_emit) {
    st_plan p;
    st_model m;
    keys titan;
    keys_load(&titan, "torchtitan_v0.1.0_keys.txt");
    plan_llama(&p);
    model_llama8b(&m);
    rel_mxfp8(&p, &m);
    p.zero = 3;
    char *s = emit_ok(ST_EMIT_TORCHTITAN, &p, &m);
    ASSERT_LINE(s, "converters = [\"mx\"]");
    ASSERT_LINE(s, "[mx]");
    ASSERT_LINE(s, "recipe_name = \"mxfp8\"");
    ASSERT_LINE(s, "mixed_precision_param = \"bfloat16\"");
    ASSERT_NO_FLAG(s, "[float8]");
    check_torchtitan_keys(s, &titan, &p);
    free(s);
    keys_free(&titan);
    p.zero = 1;
    const st_dtype dts[] = {ST_DT_MXFP8, ST_DT_NVFP4};
    const char *recipe[] = {"MXFP8BlockScaling", "NVFP4BlockScaling"};
    /* Megatron-LM's target has both recipes: every flag in its list, bf16 underneath, no fp8 hybrid */
    const char *mega_flag[][2] = {{"--fp8-format e4m3", "--fp8-recipe mxfp8"}, {"--fp4-format e2m1", "--fp4-recipe nvfp4"}};
    keys mega;
    keys_load(&mega, "megatron_main_000c4ac_flags.txt");
    for (int d = 0; d < 2; d++) {
        p.dtype = dts[d];
        s = emit_ok(ST_EMIT_DEEPSPEED, &p, &m);
        ck_assert_ptr_nonnull(strstr(s, "\"bf16\": {\n    \"enabled\": true"));
        ck_assert_ptr_nonnull(strstr(s, recipe[d]));
        free(s);
        s = emit_ok(ST_EMIT_MEGATRON, &p, &m);
        ASSERT_LINE(s, mega_flag[d][0]);
        ASSERT_LINE(s, mega_flag[d][1]);
        ASSERT_LINE(s, "--bf16");
        ASSERT_NO_FLAG(s, "--fp8-format hybrid");
        ck_assert_int_gt(check_megatron_flags(s, &mega), 10);
        free(s);
    }
    keys_free(&mega);
}
END_TEST

/* DeepSpeed's MoE is a launch-time layer: the values go to the "strata" object and the notes */
START_TEST(test_deepspeed_moe) {
    st_plan p;
    st_model m;
    plan_llama(&p);
    model_llama8b(&m);
    rel_fsdp(&p, &m);
    rel_moe(&p, &m);
    m.moe_every = 1;
    json_t *root = emit_json(&p, &m);
    json_t *moe = json_object_get(json_object_get(root, "strata"), "moe");
    ck_assert(json_is_object(moe));
    ck_assert_int_eq(jint(moe, "num_experts"), 8);
    ck_assert_int_eq(jint(moe, "ep_size"), 4);
    ck_assert_int_eq(jint(moe, "k"), 2);
    ck_assert_int_eq(jint(moe, "moe_every"), 1);
    ck_assert(has_note(root, "MoE: DeepSpeed's MoE is a model layer"));
    ck_assert(has_note(root, "MoE: DeepSpeed gates with a capacity factor"));
    ck_assert_ptr_null(json_object_get(root, "moe")); /* not a ds_config key */
    json_decref(root);
    /* one shared expert of the experts' size: PR-MoE's residual MLP; a priced capacity factor */
    m.shared_experts = 1, m.shared_ffn = m.ffn, m.capacity_factor = 1.25;
    root = emit_json(&p, &m);
    ck_assert(has_note(root, "MoE: the shared expert is DeepSpeed's residual MLP"));
    ck_assert(has_note(root, "MoE: strata priced a capacity factor of 1.25: --moe-train-capacity-factor 1.25"));
    json_decref(root);
    model_llama8b(&m);
    p.ep = 1;
    root = emit_json(&p, &m);
    ck_assert_ptr_null(json_object_get(json_object_get(root, "strata"), "moe"));
    ck_assert(!has_note(root, "MoE: "));
    json_decref(root);
}
END_TEST

/* ------------------------------------------------------------ determinism */

START_TEST(test_emit_deterministic) {
    st_plan p;
    st_model m;
    plan_llama(&p);
    model_llama8b(&m);
    for (int k = ST_EMIT_MEGATRON; k <= ST_EMIT_TORCHTITAN; k++) {
        /* interleaving where the target has it */
        p.vp = k == ST_EMIT_DEEPSPEED ? 1 : 2;
        p.schedule = k == ST_EMIT_DEEPSPEED ? ST_SCHED_1F1B : ST_SCHED_INTERLEAVED;
        p.zero = k == ST_EMIT_TORCHTITAN ? 3 : 1;
        char *a = emit_ok((st_emit_kind)k, &p, &m);
        char *b = emit_ok((st_emit_kind)k, &p, &m);
        ck_assert_str_eq(a, b);
        free(a);
        free(b);
    }
}
END_TEST

Suite *suite_emit(void) {
    Suite *s = suite_create("emit");
    TCase *tc = tcase_create("megatron");
    tcase_add_test(tc, test_emit_parse);
    tcase_add_test(tc, test_megatron_gpt3);
    tcase_add_test(tc, test_megatron_llama_gqa);
    tcase_add_test(tc, test_megatron_recompute_dtype);
    tcase_add_test(tc, test_megatron_moe);
    tcase_add_test(tc, test_megatron_uneven);
    suite_add_tcase(s, tc);

    tc = tcase_create("errors");
    tcase_add_loop_test(tc, test_emit_errors, 0, (int)(sizeof err_cases / sizeof err_cases[0]));
    tcase_add_test(tc, test_emit_base_plans_ok);
    tcase_add_test(tc, test_emit_null_args);
    suite_add_tcase(s, tc);

    tc = tcase_create("deepspeed");
    tcase_add_test(tc, test_deepspeed_arith);
    tcase_add_test(tc, test_deepspeed_variants);
    tcase_add_test(tc, test_deepspeed_escaping);
    tcase_add_test(tc, test_deepspeed_moe);
    suite_add_tcase(s, tc);

    tc = tcase_create("torchtitan");
    tcase_add_test(tc, test_torchtitan_degrees);
    tcase_add_test(tc, test_emit_cp_comm);
    tcase_add_test(tc, test_torchtitan_ddp_flavor);
    tcase_add_test(tc, test_emit_deterministic);
    tcase_add_test(tc, test_torchtitan_float8);
    tcase_add_test(tc, test_blockscaled_emit);
    tcase_add_test(tc, test_fp8_param_gather_emit);
    tcase_add_loop_test(tc, test_emit_release_keys, 0, (int)(sizeof rel_plans / sizeof rel_plans[0]));
    suite_add_tcase(s, tc);
    return s;
}
