/* model.c: model presets, derived defaults and cross-field checks.
 *
 * Every preset cites where its shape comes from. Parameter counts are never typed in: `strata
 * models` computes them from the operator graph (st_model_params in opgraph.c), so a preset that
 * disagrees with its paper's count shows up in the list.
 *
 * Defaults (DESIGN.md "Model: strata JSON"): kv_heads = heads; head_dim = hidden / heads;
 * ffn = 4h for gelu/relu, Llama's rounding of 8/3 h up to a multiple of 256 for swiglu;
 * seq_len 2048; tied embeddings; dropout and linear biases on for GPT-style (gelu/relu +
 * layernorm) models and off for Llama-style ones; vocabulary padded as Megatron-LM pads it, to a
 * multiple of 128 x tp (--make-vocab-size-divisible-by 128).
 *
 * Blocks may differ (issue 15): st_model_layer says what block l is from the MoE rules (first_dense,
 * moe_every), the window rule (global_every) and the per-block pattern and FFN sizes; blocks that
 * are equal form one kind, and the cost layer prices one block of each kind (at most
 * ST_MAX_KINDS) and counts them. A model without these fields has the kinds it always had
 * (dense, or dense and MoE), in the same order, so its numbers do not change. */
#include "src/core/core.h"

#include <string.h>

/* Unset markers used by the loaders: 0 for sizes, -1 for booleans. */
#define GPT(nm, l, h, a, src)                                                                      \
    {.name = nm, .layers = l, .hidden = h, .heads = a, .vocab = 51200, .seq_len = 2048,             \
     .activation = ST_ACT_GELU, .norm = ST_NORM_LAYERNORM, .position = ST_POS_LEARNED,              \
     .tied_embeddings = 1, .dropout = 1, .bias = 1, .source = src}
#define LLAMA(nm, l, h, a, kv, f, v, s, theta, src)                                                \
    {.name = nm, .layers = l, .hidden = h, .heads = a, .kv_heads = kv, .ffn = f, .vocab = v,        \
     .seq_len = s, .activation = ST_ACT_SWIGLU, .norm = ST_NORM_RMSNORM, .position = ST_POS_ROPE,   \
     .tied_embeddings = 0, .dropout = 0, .bias = 0, .rope_theta = theta, .source = src}

#define SC21 "Narayanan et al., SC'21, Table 1 (vocab 51200, seq 2048)"
#define KORT "Korthikanti et al., 2022, Table 3 (vocab 51200, seq 2048)"

static const st_model presets[] = {
    GPT("gpt-1.7b", 24, 2304, 24, SC21),
    GPT("gpt-3.6b", 30, 3072, 32, SC21),
    GPT("gpt-7.5b", 36, 4096, 32, SC21),
    GPT("gpt-18.4b", 40, 6144, 48, SC21),
    GPT("gpt-39.1b", 48, 8192, 64, SC21),
    GPT("gpt-76.1b", 60, 10240, 80, SC21),
    GPT("gpt-145.6b", 80, 12288, 96, SC21),
    GPT("gpt-310.1b", 96, 16384, 128, SC21),
    GPT("gpt-529.6b", 105, 20480, 128, SC21),
    GPT("gpt-1008b", 128, 25600, 160, SC21),
    GPT("gpt-22b", 48, 6144, 64, KORT),
    GPT("gpt-175b", 96, 12288, 96, KORT),
    GPT("gpt-530b", 105, 20480, 128, KORT),
    GPT("gpt-1t", 128, 25600, 160, KORT),
    {.name = "gpt3-175b", .layers = 96, .hidden = 12288, .heads = 96, .vocab = 50257, .seq_len = 2048,
     .activation = ST_ACT_GELU, .norm = ST_NORM_LAYERNORM, .position = ST_POS_LEARNED,
     .tied_embeddings = 1, .dropout = 1, .bias = 1,
     .source = "Brown et al., 2020, Table 2.1 (GPT-2 BPE vocab 50257, context 2048)"},
    LLAMA("llama2-7b", 32, 4096, 32, 32, 11008, 32000, 4096, 10000,
          "Touvron et al., 2023 (Llama 2), Table 1; HF meta-llama/Llama-2-7b-hf config.json"),
    LLAMA("llama2-13b", 40, 5120, 40, 40, 13824, 32000, 4096, 10000,
          "Touvron et al., 2023 (Llama 2); HF meta-llama/Llama-2-13b-hf config.json"),
    LLAMA("llama2-70b", 80, 8192, 64, 8, 28672, 32000, 4096, 10000,
          "Touvron et al., 2023 (Llama 2, GQA 8 groups); HF meta-llama/Llama-2-70b-hf config.json"),
    LLAMA("llama3-8b", 32, 4096, 32, 8, 14336, 128256, 8192, 500000,
          "Llama 3 Herd of Models, 2024, Table 3; HF meta-llama/Meta-Llama-3-8B config.json"),
    LLAMA("llama3-70b", 80, 8192, 64, 8, 28672, 128256, 8192, 500000,
          "Llama 3 Herd of Models, 2024, Table 3; HF meta-llama/Meta-Llama-3-70B config.json"),
    LLAMA("llama3-405b", 126, 16384, 128, 8, 53248, 128256, 8192, 500000,
          "Llama 3 Herd of Models, 2024, Table 3; HF meta-llama/Llama-3.1-405B config.json"),
    {.name = "mixtral-8x7b", .layers = 32, .hidden = 4096, .heads = 32, .kv_heads = 8, .ffn = 14336,
     .vocab = 32000, .seq_len = 32768, .activation = ST_ACT_SWIGLU, .norm = ST_NORM_RMSNORM,
     .position = ST_POS_ROPE, .tied_embeddings = 0, .dropout = 0, .bias = 0, .experts = 8,
     .experts_topk = 2, .moe_every = 1,
     .rope_theta = 1e6,
     .source = "Jiang et al., 2024 (Mixtral of Experts), Table 1; HF mistralai/Mixtral-8x7B-v0.1"},
    {.name = "bloom-176b", .layers = 70, .hidden = 14336, .heads = 112, .vocab = 250880,
     .seq_len = 2048, .activation = ST_ACT_GELU, .norm = ST_NORM_LAYERNORM, .position = ST_POS_ALIBI,
     .tied_embeddings = 1, .dropout = 1, .bias = 1,
     .source = "BigScience, 2022 (BLOOM), Table 3; HF bigscience/bloom config.json"},
    {.name = "opt-175b", .layers = 96, .hidden = 12288, .heads = 96, .vocab = 50272, .seq_len = 2048,
     .activation = ST_ACT_RELU, .norm = ST_NORM_LAYERNORM, .position = ST_POS_LEARNED,
     .tied_embeddings = 1, .dropout = 1, .bias = 1,
     .source = "Zhang et al., 2022 (OPT), Table 1; HF facebook/opt-175b (vocab 50272)"},
    /* issue 15: the models trained today, from their config.json (../shared/ecosystem/hf where the
     * file is there); seq_len is the pre-training context, not max_position_embeddings; rope_theta
     * the config's (Gemma 3: the global blocks' 1e6, its local ones use rope_local_base_freq 1e4) */
    {.name = "deepseek-v3", .layers = 61, .hidden = 7168, .heads = 128, .kv_heads = 128, .ffn = 18432,
     .vocab = 129280, .seq_len = 4096, .activation = ST_ACT_SWIGLU, .norm = ST_NORM_RMSNORM,
     .position = ST_POS_ROPE, .tied_embeddings = 0, .dropout = 0, .bias = 0, .experts = 256, .experts_topk = 8,
     .moe_every = 1, .moe_ffn = 2048, .shared_experts = 1, .shared_ffn = 2048, .first_dense = 3,
     .q_lora_rank = 1536, .kv_lora_rank = 512, .qk_nope_dim = 128, .qk_rope_dim = 64, .v_head_dim = 128,
     .mtp_layers = 1, .router_groups = 8, .router_group_topk = 4,
     .rope_theta = 1e4,
     .source = "HF deepseek-ai/DeepSeek-V3 config.json; DeepSeek-V3 report, Sec. 4.2 (pre-trained at 4K)"},
    {.name = "kimi-k2", .layers = 61, .hidden = 7168, .heads = 64, .kv_heads = 64, .ffn = 18432, .vocab = 163840,
     .seq_len = 4096, .activation = ST_ACT_SWIGLU, .norm = ST_NORM_RMSNORM, .position = ST_POS_ROPE,
     .tied_embeddings = 0, .dropout = 0, .bias = 0, .experts = 384, .experts_topk = 8, .moe_every = 1,
     .moe_ffn = 2048, .shared_experts = 1, .shared_ffn = 2048, .first_dense = 1, .q_lora_rank = 1536,
     .kv_lora_rank = 512, .qk_nope_dim = 128, .qk_rope_dim = 64, .v_head_dim = 128,
     .rope_theta = 5e4,
     .source = "HF moonshotai/Kimi-K2-Instruct config.json (DeepSeek-V3 architecture; 4K pre-training context)"},
    {.name = "qwen3-235b-a22b", .layers = 94, .hidden = 4096, .heads = 64, .kv_heads = 4, .head_dim = 128,
     .ffn = 12288, .vocab = 151936, .seq_len = 4096, .activation = ST_ACT_SWIGLU, .norm = ST_NORM_RMSNORM,
     .position = ST_POS_ROPE, .tied_embeddings = 0, .dropout = 0, .bias = 0, .experts = 128, .experts_topk = 8,
     .moe_every = 1, .moe_ffn = 1536, .qk_norm = 1,
     .rope_theta = 1e6,
     .source = "HF Qwen/Qwen3-235B-A22B config.json; Qwen3 report, Sec. 3.2 (4K context in stages 1-2)"},
    {.name = "qwen3-32b", .layers = 64, .hidden = 5120, .heads = 64, .kv_heads = 8, .head_dim = 128, .ffn = 25600,
     .vocab = 151936, .seq_len = 4096, .activation = ST_ACT_SWIGLU, .norm = ST_NORM_RMSNORM,
     .position = ST_POS_ROPE, .tied_embeddings = 0, .dropout = 0, .bias = 0, .qk_norm = 1,
     .rope_theta = 1e6,
     .source = "HF Qwen/Qwen3-32B config.json; Qwen3 report, Sec. 3.2 (4K context in stages 1-2)"},
    {.name = "gpt-oss-120b", .layers = 36, .hidden = 2880, .heads = 64, .kv_heads = 8, .head_dim = 64, .ffn = 2880,
     .vocab = 201088, .seq_len = 4096, .activation = ST_ACT_SWIGLU, .norm = ST_NORM_RMSNORM,
     .position = ST_POS_ROPE, .tied_embeddings = 0, .dropout = 0, .bias = 1, .experts = 128, .experts_topk = 4,
     .moe_every = 1, .window = 128, .global_every = 2, .attn_sinks = 1,
     .rope_theta = 1.5e5,
     .source = "HF openai/gpt-oss-120b config.json (initial_context_length 4096; sliding 128 / full alternate)"},
    {.name = "llama4-maverick", .layers = 48, .hidden = 5120, .heads = 40, .kv_heads = 8, .head_dim = 128,
     .ffn = 16384, .vocab = 202048, .seq_len = 8192, .activation = ST_ACT_SWIGLU, .norm = ST_NORM_RMSNORM,
     .position = ST_POS_ROPE, .tied_embeddings = 0, .dropout = 0, .bias = 0, .experts = 128, .experts_topk = 1,
     .moe_every = 2, .moe_ffn = 8192, .shared_experts = 1, .shared_ffn = 8192, .window = 8192, .global_every = 4,
     .rope_theta = 5e5,
     .source = "HF meta-llama/Llama-4-Maverick-17B-128E config.json text_config (interleave_moe_layer_step 2, "
               "attention_chunk_size 8192 as a window)"},
    {.name = "gemma3-27b", .layers = 62, .hidden = 5376, .heads = 32, .kv_heads = 16, .head_dim = 128,
     .ffn = 21504, .vocab = 262208, .seq_len = 32768, .activation = ST_ACT_SWIGLU, .norm = ST_NORM_RMSNORM,
     .position = ST_POS_ROPE, .tied_embeddings = 1, .dropout = 0, .bias = 0, .window = 1024, .global_every = 6,
     .qk_norm = 1,
     .rope_theta = 1e6,
     .source = "HF google/gemma-3-27b-pt config.json text_config (GeGLU priced as SwiGLU); Gemma 3 report, "
               "Sec. 2 (pre-trained at 32K)"},
    {.name = "nemotron-h-56b", .layers = 118, .hidden = 8192, .heads = 64, .kv_heads = 8, .head_dim = 128,
     .ffn = 32768, .vocab = 131072, .seq_len = 8192, .activation = ST_ACT_RELU, .norm = ST_NORM_RMSNORM,
     .position = ST_POS_ROPE, .tied_embeddings = 0, .dropout = 0, .bias = 0, .ssm_heads = 256, .ssm_head_dim = 64,
     .ssm_state = 256, .ssm_groups = 8, .ssm_conv = 4,
     .layer_pattern = "M-M-M-M*-M-M-M-M-M*-M-M-M-M-M*-M-M-M-M-M*-M-M-M-M-M*-M-M-M-M-M*-M-M-M-M-M*-M-M-M-M-M*-"
                      "M-M-M-M-M*-M-M-M-M-M*-M-M-M-M-M-",
     .source = "HF nvidia/Nemotron-H-56B-Base-8K config.json (hybrid_override_pattern; relu^2 MLP)"},
    /* small enough for strata run's tests on a few CPU cores; heads, kv heads, ffn and vocabulary
     * divide by 1, 2 and 4 (tp), experts by 1, 2 and 4 (ep); no dropout, which the executor does not
     * run */
    {.name = "tiny-gpt", .layers = 4, .hidden = 128, .heads = 4, .vocab = 512, .seq_len = 64,
     .activation = ST_ACT_GELU, .norm = ST_NORM_LAYERNORM, .position = ST_POS_LEARNED, .tied_embeddings = 1,
     .dropout = 0, .bias = 1, .source = "strata's test model (GPT-2 style blocks) for strata run"},
    LLAMA("tiny-llama", 4, 128, 4, 2, 352, 512, 64, 0, "strata's test model (Llama style, GQA) for strata run"),
    {.name = "tiny-moe", .layers = 4, .hidden = 128, .heads = 4, .kv_heads = 2, .ffn = 256, .vocab = 512,
     .seq_len = 64, .activation = ST_ACT_SWIGLU, .norm = ST_NORM_RMSNORM, .position = ST_POS_ROPE,
     .tied_embeddings = 0, .dropout = 0, .bias = 0, .experts = 4, .experts_topk = 2, .moe_every = 1,
     .source = "strata's test model (Mixtral style: 4 experts, top-2, dropless) for strata run"},
};

const st_model *st_model_presets(size_t *n) {
    static st_model finalized[sizeof presets / sizeof presets[0]];
    static int done;
    if (!done) {
        for (size_t i = 0; i < sizeof presets / sizeof presets[0]; i++) {
            finalized[i] = presets[i];
            int rc = st_model_finalize(&finalized[i], NULL, NULL);
            (void)rc;
        }
        done = 1;
    }
    *n = sizeof presets / sizeof presets[0];
    return finalized;
}

int st_model_preset(const char *name, st_model *out) {
    size_t n;
    const st_model *p = st_model_presets(&n);
    for (size_t i = 0; i < n; i++)
        if (strcmp(p[i].name, name) == 0) {
            *out = p[i];
            return 0;
        }
    return ST_EINVAL;
}

static int find_kinds(const st_model *m, int64_t *rep, st_layer *kind, int cap);

/* The fields of issue 15's structure (MoE shapes, MLA, windows, Mamba-2, per-block kinds). */
static int finalize_structure(st_model *m, const char *file, st_error *err) {
#define BAD(key, ...) return st_error_set(err, ST_EINVAL, file, key, __VA_ARGS__)
    const int64_t big = 1 << 24;
    if (m->moe_ffn < 0 || m->moe_ffn > big) BAD("moe_ffn", "must be 0..%lld", (long long)big);
    if (m->shared_ffn < 0 || m->shared_ffn > big) BAD("shared_ffn", "must be 0..%lld", (long long)big);
    if (m->shared_experts < 0 || m->shared_experts > ST_MAX_EXPERTS)
        BAD("shared_experts", "must be 0..%d", ST_MAX_EXPERTS);
    if (m->first_dense < 0 || m->first_dense > m->layers)
        BAD("first_dense", "must be 0..layers (%lld)", (long long)m->layers);
    if (m->experts == 0 && (m->moe_ffn || m->shared_experts || m->first_dense))
        BAD(m->moe_ffn ? "moe_ffn" : m->shared_experts ? "shared_experts" : "first_dense", "set but experts is 0");
    if (m->experts > 0 && m->moe_ffn == 0) m->moe_ffn = m->ffn;
    if (m->shared_experts > 0 && m->shared_ffn == 0) m->shared_ffn = m->moe_ffn;
    if (!(m->capacity_factor >= 0) || m->capacity_factor > 64) BAD("capacity_factor", "must be 0 (dropless) .. 64");
    if (m->moe_imbalance == 0) m->moe_imbalance = 1;
    if (!(m->moe_imbalance >= 1) || m->moe_imbalance > 64) BAD("moe_imbalance", "must be 1..64");
    int64_t *mla[] = {&m->q_lora_rank, &m->kv_lora_rank, &m->qk_nope_dim, &m->qk_rope_dim, &m->v_head_dim};
    static const char *const mla_keys[] = {"q_lora_rank", "kv_lora_rank", "qk_nope_dim", "qk_rope_dim", "v_head_dim"};
    for (int i = 0; i < 5; i++)
        if (*mla[i] < 0 || *mla[i] > big) BAD(mla_keys[i], "must be 0..%lld", (long long)big);
    if (m->kv_lora_rank > 0) {
        if (m->qk_nope_dim + m->qk_rope_dim < 1 || m->v_head_dim < 1)
            BAD("kv_lora_rank", "multi-head latent attention needs qk_nope_dim + qk_rope_dim and v_head_dim");
    } else if (m->q_lora_rank || m->qk_nope_dim || m->qk_rope_dim || m->v_head_dim) {
        BAD("kv_lora_rank", "the latent attention keys need kv_lora_rank");
    }
    if (m->window < 0 || m->window > ST_MAX_SEQ) BAD("window", "must be 0..%d", ST_MAX_SEQ);
    if (m->global_every < 0 || m->global_every > m->layers)
        BAD("global_every", "must be 0..layers (%lld)", (long long)m->layers);
    if (m->qk_norm < 0 || m->qk_norm > 2) BAD("qk_norm", "must be 0 (none), 1 (per head) or 2 (full width)");
    if (m->mtp_layers < 0 || m->mtp_layers > 16) BAD("mtp_layers", "must be 0..16");
    size_t np = strlen(m->layer_pattern);
    if (np) {
        if ((int64_t)np != m->layers)
            BAD("layer_pattern", "has %zu letters for %lld layers", np, (long long)m->layers);
        if (strspn(m->layer_pattern, "TM*-EG") != np) BAD("layer_pattern", "letters are T, M, *, -, E and G");
        if (strchr(m->layer_pattern, 'E') && m->experts == 0) BAD("layer_pattern", "'E' blocks but experts is 0");
    }
    int64_t ssm[] = {m->ssm_heads, m->ssm_head_dim, m->ssm_state, m->ssm_groups, m->ssm_conv};
    static const char *const ssm_keys[] = {"ssm_heads", "ssm_head_dim", "ssm_state", "ssm_groups", "ssm_conv"};
    for (int i = 0; i < 5; i++) {
        if (ssm[i] < 0 || ssm[i] > big) BAD(ssm_keys[i], "must be 0..%lld", (long long)big);
        if (np && strchr(m->layer_pattern, 'M') && ssm[i] < 1) BAD(ssm_keys[i], "Mamba-2 blocks ('M') need it");
    }
    int64_t gdn[] = {m->gdn_k_heads, m->gdn_v_heads, m->gdn_k_dim, m->gdn_v_dim, m->gdn_conv};
    static const char *const gdn_keys[] = {"gdn_k_heads", "gdn_v_heads", "gdn_k_dim", "gdn_v_dim", "gdn_conv"};
    for (int i = 0; i < 5; i++) {
        if (gdn[i] < 0 || gdn[i] > big) BAD(gdn_keys[i], "must be 0..%lld", (long long)big);
        if (np && strchr(m->layer_pattern, 'G') && gdn[i] < 1) BAD(gdn_keys[i], "Gated DeltaNet blocks ('G') need it");
    }
    if (m->gdn_k_heads > 0 && m->gdn_v_heads % m->gdn_k_heads)
        BAD("gdn_v_heads", "must be a multiple of gdn_k_heads (%lld)", (long long)m->gdn_k_heads);
    int64_t dsa[] = {m->index_heads, m->index_head_dim, m->index_topk};
    static const char *const dsa_keys[] = {"index_heads", "index_head_dim", "index_topk"};
    for (int i = 0; i < 3; i++) {
        if (dsa[i] < 0 || dsa[i] > big) BAD(dsa_keys[i], "must be 0..%lld", (long long)big);
        if ((m->index_heads || m->index_head_dim || m->index_topk) && dsa[i] < 1)
            BAD(dsa_keys[i], "sparse attention's indexer needs index_heads, index_head_dim and index_topk");
    }
    if (m->router_groups < 0 || m->router_groups > ST_MAX_EXPERTS ||
        (m->router_groups && m->experts % m->router_groups))
        BAD("router_groups", "must divide experts (%lld)", (long long)m->experts);
    if (m->router_group_topk < 0 || m->router_group_topk > m->router_groups ||
        (m->router_groups && !m->router_group_topk))
        BAD("router_group_topk", "must be 1..router_groups (%lld) with router_groups, else 0",
            (long long)m->router_groups);
    if (m->index_topk > 0 && m->kv_lora_rank == 0)
        BAD("index_topk", "sparse attention is priced on latent attention (kv_lora_rank) only, as DeepSeek-V3.2 and "
                          "GLM-5 build it");
    if (m->global_head_dim < 0 || m->global_head_dim > 65536) BAD("global_head_dim", "must be 0..65536");
    if (m->global_kv_heads < 0 || m->global_kv_heads > m->heads ||
        (m->global_kv_heads && m->heads % m->global_kv_heads))
        BAD("global_kv_heads", "must divide heads (%lld)", (long long)m->heads);
    if ((m->global_head_dim || m->global_kv_heads || m->global_k_eq_v) && !(m->window > 0 && m->global_every > 0))
        BAD(m->global_head_dim ? "global_head_dim" : m->global_kv_heads ? "global_kv_heads" : "global_k_eq_v",
            "global blocks need window and global_every");
    if (m->ssm_groups > 0 && m->ssm_heads % m->ssm_groups)
        BAD("ssm_groups", "must divide ssm_heads (%lld)", (long long)m->ssm_heads);
    for (int64_t l = 0; l < ST_MAX_PATTERN; l++)
        if (m->layer_ffn[l] < 0 || (m->layer_ffn[l] > 0 && l >= m->layers))
            BAD("layer_ffn", "entry %lld: sizes are positive, one per layer", (long long)l);
    int64_t rep[ST_MAX_KINDS];
    st_layer kind[ST_MAX_KINDS];
    if (find_kinds(m, rep, kind, ST_MAX_KINDS) > ST_MAX_KINDS)
        BAD("layer_pattern", "more than %d distinct kinds of block", ST_MAX_KINDS);
    return 0;
#undef BAD
}

int st_model_finalize(st_model *m, const char *file, st_error *err) {
#define BAD(key, ...) return st_error_set(err, ST_EINVAL, file, key, __VA_ARGS__)
    if (m->layers < 1 || m->layers > ST_MAX_LAYERS) BAD("layers", "must be 1..%d", ST_MAX_LAYERS);
    if (m->hidden < 1 || m->hidden > ST_MAX_HIDDEN) BAD("hidden", "must be 1..%d", ST_MAX_HIDDEN);
    if (m->heads < 1 || m->heads > ST_MAX_HEADS) BAD("heads", "must be 1..%d", ST_MAX_HEADS);
    if (m->vocab < 1 || m->vocab > ST_MAX_VOCAB) BAD("vocab", "must be 1..%d", ST_MAX_VOCAB);
    if (m->kv_heads <= 0) m->kv_heads = m->heads;
    if (m->kv_heads > m->heads) BAD("kv_heads", "%lld exceeds heads (%lld)", (long long)m->kv_heads, (long long)m->heads);
    if (m->heads % m->kv_heads)
        BAD("kv_heads", "heads (%lld) must be a multiple of kv_heads (%lld)", (long long)m->heads,
            (long long)m->kv_heads);
    if (m->head_dim <= 0) {
        if (m->hidden % m->heads)
            BAD("heads", "hidden (%lld) is not divisible by heads (%lld); give head_dim",
                (long long)m->hidden, (long long)m->heads);
        m->head_dim = m->hidden / m->heads;
    }
    if (m->ffn <= 0) {
        if (m->activation == ST_ACT_SWIGLU) {
            /* Llama: int(2 * 4h / 3) rounded up to a multiple of 256 (Touvron et al. 2023, code) */
            int64_t f = 2 * 4 * m->hidden / 3;
            m->ffn = (f + 255) / 256 * 256;
        } else {
            m->ffn = 4 * m->hidden;
        }
    }
    if (m->seq_len <= 0) m->seq_len = 2048;
    if (m->seq_len > ST_MAX_SEQ) BAD("seq_len", "must be 1..%d", ST_MAX_SEQ);
    int gpt_style = m->activation != ST_ACT_SWIGLU && m->norm == ST_NORM_LAYERNORM;
    if (m->tied_embeddings < 0) m->tied_embeddings = 1;
    if (m->dropout < 0) m->dropout = gpt_style;
    if (m->bias < 0) m->bias = gpt_style;
    if (m->experts < 0 || m->experts > ST_MAX_EXPERTS) BAD("experts", "must be 0..%d", ST_MAX_EXPERTS);
    if (m->experts > 0) {
        if (m->experts_topk < 1 || m->experts_topk > m->experts)
            BAD("experts_topk", "must be 1..experts (%lld) for an MoE model", (long long)m->experts);
        if (m->moe_every <= 0) m->moe_every = 1;
        if (m->moe_every > m->layers) BAD("moe_every", "exceeds layers (%lld)", (long long)m->layers);
    } else {
        if (m->experts_topk > 0) BAD("experts_topk", "set but experts is 0");
        m->experts_topk = 0;
        if (m->moe_every <= 0) m->moe_every = 1;
    }
    if (m->vocab_pad_multiple <= 0) m->vocab_pad_multiple = 128;
    if (!(m->rope_theta >= 0) || m->rope_theta > 1e12) BAD("rope_theta", "must be 0 (not given) .. 1e12");
    if (m->rope_theta > 0 && m->position != ST_POS_ROPE) BAD("rope_theta", "set but position is not rope");
    if (!m->name[0]) snprintf(m->name, sizeof m->name, "custom");
    st_text_clean(m->name); /* printed as text: no control characters */
    return finalize_structure(m, file, err);
#undef BAD
}

int64_t st_model_padded_vocab(const st_model *m, int tp) {
    int64_t mult = m->vocab_pad_multiple * (tp > 0 ? tp : 1);
    return (m->vocab + mult - 1) / mult * mult;
}

/* The pattern letter of block `layer` ('T' without a pattern). */
static char pattern_at(const st_model *m, int64_t layer) {
    return m->layer_pattern[0] && layer < ST_MAX_PATTERN ? m->layer_pattern[layer] : 'T';
}

int st_model_layer_is_moe(const st_model *m, int64_t layer) {
    char c = pattern_at(m, layer);
    if (c == 'E') return m->experts > 0;
    if ((c != 'T' && c != 'G') || layer < m->first_dense) return 0;
    /* Mixtral and Switch-style models: every moe_every-th block, counting from the last of each
     * group (GShard/Switch put MoE on every other layer starting with the second; Llama 4's
     * interleave_moe_layer_step and Qwen2-MoE's decoder_sparse_step count the same way). */
    return m->experts > 0 && (layer % m->moe_every) == m->moe_every - 1;
}

void st_model_layer(const st_model *m, int64_t layer, st_layer *out) {
    char c = pattern_at(m, layer);
    memset(out, 0, sizeof *out);
    out->mixer = c == 'M' ? ST_MIX_MAMBA : c == 'G' ? ST_MIX_GDN : (c == '-' || c == 'E') ? ST_MIX_NONE : ST_MIX_ATTN;
    if (c == 'M' || c == '*')
        out->mlp = ST_MLP_NONE;
    else
        out->mlp = st_model_layer_is_moe(m, layer) ? ST_MLP_MOE : ST_MLP_DENSE;
    /* windowed unless the block is one of the global ones (the last of each global_every) */
    int global = m->global_every > 0 && layer % m->global_every == m->global_every - 1;
    if (out->mixer == ST_MIX_ATTN && m->window > 0 && !global) out->window = m->window;
    if (out->mixer == ST_MIX_ATTN) {
        int own = global && m->window > 0; /* Gemma 4's global blocks: heads of their own */
        out->head_dim = own && m->global_head_dim > 0 ? m->global_head_dim : m->head_dim;
        out->kv_heads = own && m->global_kv_heads > 0 ? m->global_kv_heads : m->kv_heads;
        out->k_eq_v = own && m->global_k_eq_v;
    }
    if (out->mlp == ST_MLP_DENSE)
        out->ffn = layer < ST_MAX_PATTERN && m->layer_ffn[layer] > 0 ? m->layer_ffn[layer] : m->ffn;
}

static int same_layer(const st_layer *a, const st_layer *b) {
    return a->mixer == b->mixer && a->mlp == b->mlp && a->window == b->window && a->ffn == b->ffn &&
           a->head_dim == b->head_dim && a->kv_heads == b->kv_heads && a->k_eq_v == b->k_eq_v;
}

/* The kinds (first blocks and what they are), up to ST_MAX_KINDS + 1 so that callers see too many. */
static int find_kinds(const st_model *m, int64_t *rep, st_layer *kind, int cap) {
    int n = 0;
    for (int64_t l = 0; l < m->layers; l++) {
        st_layer x;
        st_model_layer(m, l, &x);
        int k = 0;
        while (k < n && !same_layer(&kind[k], &x)) k++;
        if (k < n) continue;
        if (n == cap) return n + 1;
        rep[n] = l;
        kind[n++] = x;
    }
    return n;
}

void st_model_layer_kinds(const st_model *m, unsigned char *kind_of) {
    int64_t rep[ST_MAX_KINDS];
    st_layer kind[ST_MAX_KINDS];
    int nk = find_kinds(m, rep, kind, ST_MAX_KINDS);
    for (int64_t l = 0; l < m->layers; l++) {
        st_layer x;
        st_model_layer(m, l, &x);
        int k = 0;
        while (k < nk - 1 && k < ST_MAX_KINDS - 1 && !same_layer(&kind[k], &x)) k++;
        kind_of[l] = (unsigned char)k;
    }
}

int st_model_kinds(const st_model *m, int64_t rep[ST_MAX_KINDS]) {
    st_layer kind[ST_MAX_KINDS];
    int n = find_kinds(m, rep, kind, ST_MAX_KINDS);
    return n > ST_MAX_KINDS ? ST_MAX_KINDS : n;
}

void st_model_count_kinds(const st_model *m, int64_t first, int64_t n, int64_t count[ST_MAX_KINDS]) {
    memset(count, 0, sizeof(int64_t) * ST_MAX_KINDS);
    /* the search counts blocks per stage for every plan it prices: the models whose kinds follow
     * from moe_every alone (every model before per-block kinds) are counted without a walk */
    int simple = !m->layer_pattern[0] && !m->layer_ffn[0] && m->first_dense == 0 &&
                 !(m->window > 0 && m->global_every > 0);
    if (simple && (m->experts == 0 || m->moe_every == 1)) {
        count[0] = n;
        return;
    }
    if (simple) { /* MoE blocks are those with l % e == e - 1; there are x / e of them below x */
        int64_t e = m->moe_every, moe = (first + n) / e - first / e;
        count[0] = n - moe, count[1] = moe; /* block 0 is dense: the dense kind comes first */
        return;
    }
    int64_t rep[ST_MAX_KINDS];
    st_layer kind[ST_MAX_KINDS];
    int nk = find_kinds(m, rep, kind, ST_MAX_KINDS);
    for (int64_t l = first; l < first + n && l < m->layers; l++) {
        st_layer x;
        st_model_layer(m, l, &x);
        for (int k = 0; k < nk && k < ST_MAX_KINDS; k++)
            if (same_layer(&kind[k], &x)) {
                count[k]++;
                break;
            }
    }
}

int64_t st_model_token_nodes(const st_model *m, int64_t nodes) {
    int64_t d = m->experts_topk < nodes ? m->experts_topk : nodes;
    if (m->router_groups > 0) {
        int64_t span = (nodes + m->router_groups - 1) / m->router_groups; /* nodes one group lies on */
        if (m->router_group_topk * span < d) d = m->router_group_topk * span;
    }
    return d;
}

int st_model_tp_divides(const st_model *m, int tp) {
    if (tp < 1) return 0;
    int64_t n[] = {m->heads,      m->kv_heads,    m->global_kv_heads, m->ssm_heads,
                   m->ssm_groups, m->gdn_k_heads, m->gdn_v_heads};
    for (size_t i = 0; i < sizeof n / sizeof n[0]; i++)
        if (n[i] % tp) return 0;
    return 1;
}

void st_model_block_kinds(const st_model *m, int64_t *dense_idx, int64_t *moe_idx) {
    int64_t rep[ST_MAX_KINDS];
    int n = st_model_kinds(m, rep);
    *dense_idx = *moe_idx = -1;
    for (int k = 0; k < n; k++) {
        int64_t *idx = st_model_layer_is_moe(m, rep[k]) ? moe_idx : dense_idx;
        if (*idx < 0) *idx = rep[k];
    }
}

void st_model_describe(const st_model *m, char *buf, size_t n) {
    size_t len = 0;
    buf[0] = '\0';
#define ADD(...)                                                                                   \
    do {                                                                                           \
        if (len < n) len += (size_t)snprintf(buf + len, n - len, __VA_ARGS__);                     \
    } while (0)
    if (m->kv_lora_rank > 0)
        ADD("MLA (q_lora %lld, kv_lora %lld, qk %lld+%lld, v %lld); ", (long long)m->q_lora_rank,
            (long long)m->kv_lora_rank, (long long)m->qk_nope_dim, (long long)m->qk_rope_dim, (long long)m->v_head_dim);
    if (m->experts > 0) {
        ADD("%lld experts top-%lld (ffn %lld)", (long long)m->experts, (long long)m->experts_topk,
            (long long)m->moe_ffn);
        if (m->shared_experts > 0)
            ADD(" + %lld shared (ffn %lld)", (long long)m->shared_experts, (long long)m->shared_ffn);
        if (m->first_dense > 0) ADD(", first %lld dense", (long long)m->first_dense);
        if (m->moe_every > 1) ADD(", every %lld", (long long)m->moe_every);
        if (m->capacity_factor > 0) ADD(", capacity %.2f", m->capacity_factor);
        if (m->moe_imbalance > 1) ADD(", imbalance %.2f", m->moe_imbalance);
        if (m->router_groups > 0)
            ADD(", top-%lld of %lld groups", (long long)m->router_group_topk, (long long)m->router_groups);
        ADD(", %.1fB active; ", st_model_active_params(m) / 1e9);
    }
    if (m->window > 0) {
        ADD("window %lld", (long long)m->window);
        if (m->global_every > 0) ADD(", global every %lld", (long long)m->global_every);
        ADD("; ");
    }
    if (m->qk_norm) ADD("qk-norm (%s); ", m->qk_norm == 1 ? "per head" : "full width");
    if (m->attn_sinks) ADD("attention sinks; ");
    if (m->qkv_bias) ADD("q/k/v biases; ");
    if (m->parallel_block) ADD("parallel attention + MLP; ");
    if (m->layer_pattern[0]) {
        int64_t count[ST_MAX_KINDS], rep[ST_MAX_KINDS];
        int nk = st_model_kinds(m, rep);
        st_model_count_kinds(m, 0, m->layers, count);
        ADD("%d block kinds (", nk);
        for (int k = 0; k < nk; k++) ADD("%s%lld '%c'", k ? ", " : "", (long long)count[k], m->layer_pattern[rep[k]]);
        ADD("); ");
    }
    if (m->index_topk > 0)
        ADD("sparse attention (indexer %lld heads x %lld, top-%lld keys); ", (long long)m->index_heads,
            (long long)m->index_head_dim, (long long)m->index_topk);
    if (m->global_head_dim > 0 || m->global_kv_heads > 0)
        ADD("global blocks: head %lld, %lld kv heads%s; ",
            (long long)(m->global_head_dim ? m->global_head_dim : m->head_dim),
            (long long)(m->global_kv_heads ? m->global_kv_heads : m->kv_heads),
            m->global_k_eq_v ? ", keys as values" : "");
    if (m->attn_out_gate) ADD("gated attention output; ");
    if (m->gdn_v_heads > 0)
        ADD("Gated DeltaNet (%lld qk heads x %lld, %lld v heads x %lld, conv %lld); ", (long long)m->gdn_k_heads,
            (long long)m->gdn_k_dim, (long long)m->gdn_v_heads, (long long)m->gdn_v_dim, (long long)m->gdn_conv);
    if (m->ssm_heads > 0)
        ADD("Mamba-2 (%lld heads x %lld, state %lld, %lld groups); ", (long long)m->ssm_heads, (long long)m->ssm_head_dim,
            (long long)m->ssm_state, (long long)m->ssm_groups);
    if (m->mtp_layers > 0)
        ADD("MTP %lld (%.2fB apart); ", (long long)m->mtp_layers, st_model_mtp_params(m) / 1e9);
#undef ADD
    len = strlen(buf);
    if (len >= 2 && buf[len - 2] == ';') buf[len - 2] = '\0';
}
