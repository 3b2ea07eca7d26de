/* model_io.c: model descriptions from files: strata's own model JSON (DESIGN.md, "Model: strata
 * JSON", with issue 15's keys for MoE shapes, latent attention, windows, Mamba-2 blocks, per-block
 * kinds and MTP; core.h's st_model says what each means) and HuggingFace config.json files, plus
 * the canonical JSON of a model (its content hash goes into saved plans).
 *
 * Invariants:
 * - The loaders fill a private st_model that starts "unset" (all zero; dropout, bias and
 *   tied_embeddings -1 = derive) and hand it to st_model_finalize, which derives defaults and
 *   checks cross-field constraints; *out is written only on success.
 * - strata JSON is strict: unknown keys, wrong types and out-of-range values are errors naming the
 *   key. The same reader serves model objects inside other files (st__model_from_json: a
 *   validation bundle's "models"), naming the key under the object's path ("models.KEY.layers").
 *   A HuggingFace config ignores keys it does not need, but the keys it reads are checked the same
 *   way (a JSON null counts as absent, as transformers treats it); it may hold Python's Infinity,
 *   -Infinity and NaN (read as null), strata JSON may not.
 * - The canonical JSON writes issue 15's keys only where they differ from their defaults, so the
 *   models that existed before them keep their hashes.
 *
 * HuggingFace configs (transformers' configuration_*.py and modeling_*.py, the published files):
 * - GPT-2, OPT and BLOOM keep their own key sets (n_embd ...; ffn_dim; n_embed, ALiBi).
 * - Every other decoder is read by meaning (hf_decoder): the standard keys wherever a family puts
 *   them (text_config first: a *ForConditionalGeneration's language model), then a family's own
 *   (hf_known: gated MLP, default tying, LayerNorm, biases, qk-norm, window alternation, sinks),
 *   the MoE keys (hf_moe), latent attention, sparse attention's indexer, Gemma 4's global heads, Mamba-2
 *   patterns, Gated DeltaNet blocks (hf_gdn), NAS block_configs and MTP modules (hf_structure), the
 *   window layout (hf_window) and the training length (hf_seq). An unknown
 *   model_type is read the same way with a note; structure strata cannot price is refused naming
 *   its keys (hf_unpriced). What an import assumed goes into st_model.note.
 */
#include "jsonutil.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* FAM_DECODER: every config read by meaning (hf_decoder); the others keep their key sets */
typedef enum { FAM_DECODER, FAM_GPT2, FAM_OPT, FAM_BLOOM } hf_family;

static const struct {
    const char *model_type;
    const char *architecture;
    hf_family fam;
} hf_families[] = {
    {"llama", "LlamaForCausalLM", FAM_DECODER},      {"mistral", "MistralForCausalLM", FAM_DECODER},
    {"mixtral", "MixtralForCausalLM", FAM_DECODER}, {"qwen2", "Qwen2ForCausalLM", FAM_DECODER},
    {"gpt2", "GPT2LMHeadModel", FAM_GPT2},          {"opt", "OPTForCausalLM", FAM_OPT},
    {"bloom", "BloomForCausalLM", FAM_BLOOM},
};
#define N_FAMILIES (sizeof hf_families / sizeof hf_families[0])

/* Keys whose presence marks a HuggingFace config rather than a strata model JSON. */
static const char *const hf_marker_keys[] = {"model_type", "architectures", "hidden_size", "n_embd", "n_embed",
                                             "num_hidden_layers", "n_layer", NULL};

static const char *const strata_keys[] = {
    "name",   "layers",         "hidden",  "heads",   "kv_heads", "head_dim",           "ffn",
    "vocab",  "seq_len",        "experts", "experts_topk", "moe_every", "vocab_pad_multiple", "activation",
    "norm",   "position",       "tied_embeddings", "dropout", "bias",
    /* issue 15's structure (core.h, st_model) */
    "moe_ffn", "shared_experts", "shared_ffn", "first_dense", "capacity_factor", "moe_imbalance", "q_lora_rank",
    "kv_lora_rank", "qk_nope_dim", "qk_rope_dim", "v_head_dim", "window", "global_every", "qk_norm", "attn_sinks",
    "qkv_bias", "parallel_block", "ssm_heads", "ssm_head_dim", "ssm_state", "ssm_groups", "ssm_conv", "mtp_layers",
    "layer_pattern",
    "layer_ffn", "index_heads", "index_head_dim", "index_topk", "gdn_k_heads", "gdn_v_heads", "gdn_k_dim", "gdn_v_dim",
    "gdn_conv", "attn_out_gate", "global_head_dim", "global_kv_heads", "global_k_eq_v", "router_groups",
    "router_group_topk", "rope_theta", NULL};

/* The integer keys of issue 15's structure, their ranges checked again by st_model_finalize. */
#define STRUCT_INTS(XX)                                                                            \
    XX(moe_ffn) XX(shared_experts) XX(shared_ffn) XX(first_dense) XX(q_lora_rank) XX(kv_lora_rank)             \
    XX(qk_nope_dim) XX(qk_rope_dim) XX(v_head_dim) XX(window) XX(global_every) XX(ssm_heads) XX(ssm_head_dim)  \
    XX(ssm_state) XX(ssm_groups) XX(ssm_conv) XX(mtp_layers) XX(index_heads) XX(index_head_dim) XX(index_topk)     \
    XX(gdn_k_heads) XX(gdn_v_heads) XX(gdn_k_dim) XX(gdn_v_dim) XX(gdn_conv) XX(global_head_dim) XX(global_kv_heads) \
    XX(router_groups) XX(router_group_topk)

static void model_unset(st_model *m) {
    memset(m, 0, sizeof *m);
    m->dropout = m->bias = m->tied_embeddings = -1;
}

/* Copies a UTF-8 string, cutting it (when too long) at a character boundary. */
static void copy_utf8(char *out, size_t n, const char *s) {
    size_t len = strlen(s);
    if (len >= n) {
        len = n - 1;
        while (len > 0 && ((unsigned char)s[len] & 0xc0) == 0x80) len--; /* s[len] continues a char */
    }
    memcpy(out, s, len);
    out[len] = '\0';
}

/* A name that must fit st_model.name. */
static int set_name(st_model *m, const char *s, const char *file, const char *key, st_error *err) {
    if (!s[0]) return st_error_set(err, ST_EINVAL, file, key, "must not be empty");
    if (strlen(s) >= sizeof m->name)
        return st_error_set(err, ST_EINVAL, file, key, "longer than %zu characters", sizeof m->name - 1);
    snprintf(m->name, sizeof m->name, "%s", s);
    return 0;
}

/* Reads an enum-valued string key with parse(); 1 set, 0 absent, <0 error. These macros read
 * `file`, `prefix` (the object's key path, NULL at the top of a file) and `err` from the caller. */
#define GET_ENUM(obj, key, type, parse, choices, outp)                                             \
    do {                                                                                           \
        const char *s_ = NULL;                                                                     \
        type v_;                                                                                   \
        rc = st__json_get_str(obj, key, &s_, file, prefix, err);                                   \
        if (rc < 0) goto out;                                                                      \
        if (rc == 1) {                                                                             \
            if (parse(s_, &v_) != 0) {                                                             \
                rc = st_error_set(err, ST_EINVAL, file, st__json_key_path(kp_, sizeof kp_, prefix, key), \
                                  "unknown value '%s' (expected %s)", s_, choices);                \
                goto out;                                                                          \
            }                                                                                      \
            *(outp) = v_;                                                                          \
        }                                                                                          \
    } while (0)

/* Reads an integer key with a range; `req` makes absence an error. */
#define GET_INT(obj, key, lo, hi, outp, req)                                                       \
    do {                                                                                           \
        rc = st__json_get_int(obj, key, lo, hi, outp, file, prefix, err);                         \
        if (rc < 0) goto out;                                                                      \
        if (rc == 0 && (req)) {                                                                    \
            rc = st_error_set(err, ST_EINVAL, file, st__json_key_path(kp_, sizeof kp_, prefix, key), \
                              "missing required key");                                             \
            goto out;                                                                              \
        }                                                                                          \
    } while (0)

#define GET_BOOL(obj, key, outp)                                                                   \
    do {                                                                                           \
        rc = st__json_get_bool(obj, key, outp, file, prefix, err);                                 \
        if (rc < 0) goto out;                                                                      \
    } while (0)

/* "layer_ffn": one positive FFN size per block (at most ST_MAX_PATTERN). */
static int read_layer_ffn(const json_t *root, const char *file, const char *prefix, st_model *m, st_error *err) {
    char kp_[128];
    json_t *a = json_object_get(root, "layer_ffn"), *v;
    size_t i;
    if (!a) return 0;
    st__json_key_path(kp_, sizeof kp_, prefix, "layer_ffn");
    if (!json_is_array(a) || json_array_size(a) > ST_MAX_PATTERN)
        return st_error_set(err, ST_EINVAL, file, kp_, "expected an array of at most %d sizes", ST_MAX_PATTERN);
    json_array_foreach(a, i, v) {
        if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > (1 << 24))
            return st_error_set(err, ST_EINVAL, file, kp_, "entry %zu: expected a size 1..%d", i, 1 << 24);
        m->layer_ffn[i] = (int32_t)json_integer_value(v);
    }
    return 0;
}

/* A strata model object at key path `prefix` of `file` (NULL: the whole file); without a "name",
 * the model is called `fallback` (NULL: after the file). */
static int load_strata(const json_t *root, const char *file, const char *prefix, const char *fallback, st_model *m,
                       st_error *err) {
    int rc;
    const char *name = NULL;
    char kp_[128];

    rc = st__json_check_keys(root, strata_keys, file, prefix, err);
    if (rc < 0) goto out;
    rc = st__json_get_str(root, "name", &name, file, prefix, err);
    if (rc < 0) goto out;
    if (rc == 1) {
        rc = set_name(m, name, file, st__json_key_path(kp_, sizeof kp_, prefix, "name"), err);
        if (rc < 0) goto out;
    } else if (fallback) {
        copy_utf8(m->name, sizeof m->name, fallback);
    } else {
        st__json_name_from_path(m->name, sizeof m->name, file, "model");
    }
    GET_INT(root, "layers", 1, ST_MAX_LAYERS, &m->layers, 1);
    GET_INT(root, "hidden", 1, ST_MAX_HIDDEN, &m->hidden, 1);
    GET_INT(root, "heads", 1, ST_MAX_HEADS, &m->heads, 1);
    GET_INT(root, "vocab", 1, ST_MAX_VOCAB, &m->vocab, 1);
    GET_INT(root, "kv_heads", 1, ST_MAX_HEADS, &m->kv_heads, 0);
    GET_INT(root, "head_dim", 1, 65536, &m->head_dim, 0);
    GET_INT(root, "ffn", 1, 1 << 24, &m->ffn, 0);
    GET_INT(root, "seq_len", 1, ST_MAX_SEQ, &m->seq_len, 0);
    GET_INT(root, "experts", 0, ST_MAX_EXPERTS, &m->experts, 0);
    GET_INT(root, "experts_topk", 0, ST_MAX_EXPERTS, &m->experts_topk, 0);
    GET_INT(root, "moe_every", 1, ST_MAX_LAYERS, &m->moe_every, 0);
    GET_INT(root, "vocab_pad_multiple", 1, 65536, &m->vocab_pad_multiple, 0);
    GET_ENUM(root, "activation", st_activation, st_activation_parse, "gelu, relu or swiglu", &m->activation);
    GET_ENUM(root, "norm", st_norm, st_norm_parse, "layernorm or rmsnorm", &m->norm);
    GET_ENUM(root, "position", st_position, st_position_parse, "learned, rope or alibi", &m->position);
    GET_BOOL(root, "tied_embeddings", &m->tied_embeddings);
    GET_BOOL(root, "dropout", &m->dropout);
    GET_BOOL(root, "bias", &m->bias);
#define XX(f) GET_INT(root, #f, 0, 1 << 24, &m->f, 0);
    STRUCT_INTS(XX)
#undef XX
    rc = st__json_get_num(root, "capacity_factor", 0, 64, &m->capacity_factor, file, prefix, err);
    if (rc < 0) goto out;
    rc = st__json_get_num(root, "moe_imbalance", 1, 64, &m->moe_imbalance, file, prefix, err);
    if (rc < 0) goto out;
    rc = st__json_get_num(root, "rope_theta", 1, 1e12, &m->rope_theta, file, prefix, err);
    if (rc < 0) goto out;
    {
        int64_t qn = 0;
        GET_INT(root, "qk_norm", 0, 2, &qn, 0);
        m->qk_norm = (int)qn;
    }
    GET_BOOL(root, "attn_sinks", &m->attn_sinks);
    GET_BOOL(root, "qkv_bias", &m->qkv_bias);
    GET_BOOL(root, "parallel_block", &m->parallel_block);
    GET_BOOL(root, "attn_out_gate", &m->attn_out_gate);
    GET_BOOL(root, "global_k_eq_v", &m->global_k_eq_v);
    {
        const char *pat = NULL;
        rc = st__json_get_str(root, "layer_pattern", &pat, file, prefix, err);
        if (rc < 0) goto out;
        if (rc == 1 && strlen(pat) > ST_MAX_PATTERN) {
            rc = st_error_set(err, ST_EINVAL, file, st__json_key_path(kp_, sizeof kp_, prefix, "layer_pattern"),
                              "longer than %d blocks", ST_MAX_PATTERN);
            goto out;
        }
        if (rc == 1) snprintf(m->layer_pattern, sizeof m->layer_pattern, "%s", pat);
    }
    if ((rc = read_layer_ffn(root, file, prefix, m, err)) < 0) goto out;
    rc = 0;
out:
    return rc;
}

/* ------------------------------------------------------------ HuggingFace */

/* HF getters: a JSON null counts as absent (transformers writes "n_inner": null and the like). */
static int hf_int(const json_t *o, const char *key, int64_t lo, int64_t hi, int64_t *out, const char *file,
                  st_error *err) {
    if (json_is_null(json_object_get(o, key))) return 0;
    return st__json_get_int(o, key, lo, hi, out, file, NULL, err);
}

static int hf_bool(const json_t *o, const char *key, int *out, const char *file, st_error *err) {
    if (json_is_null(json_object_get(o, key))) return 0;
    return st__json_get_bool(o, key, out, file, NULL, err);
}

static int hf_str(const json_t *o, const char *key, const char **out, const char *file, st_error *err) {
    if (json_is_null(json_object_get(o, key))) return 0;
    return st__json_get_str(o, key, out, file, NULL, err);
}

/* The first of `keys` present (NULL-terminated), read as an integer; `req` makes absence an error
 * naming the first key. */
static int hf_int_any(const json_t *o, const char *const *keys, int64_t lo, int64_t hi, int64_t *out, int req,
                      const char *file, st_error *err) {
    for (size_t i = 0; keys[i]; i++) {
        int rc = hf_int(o, keys[i], lo, hi, out, file, err);
        if (rc != 0) return rc;
    }
    if (req) return st_error_set(err, ST_EINVAL, file, keys[0], "missing required key");
    return 0;
}

#define HF_INT(key, lo, hi, outp, req)                                                             \
    do {                                                                                           \
        static const char *const keys_[] = {key, NULL};                                            \
        rc = hf_int_any(root, keys_, lo, hi, outp, req, file, err);                                \
        if (rc < 0) goto out;                                                                      \
    } while (0)
#define HF_INT2(key1, key2, lo, hi, outp, req)                                                     \
    do {                                                                                           \
        static const char *const keys_[] = {key1, key2, NULL};                                     \
        rc = hf_int_any(root, keys_, lo, hi, outp, req, file, err);                                \
        if (rc < 0) goto out;                                                                      \
    } while (0)
#define HF_BOOL(key, outp)                                                                         \
    do {                                                                                           \
        rc = hf_bool(root, key, outp, file, err);                                                  \
        if (rc < 0) goto out;                                                                      \
    } while (0)

/* Which family a config belongs to: model_type, else architectures[0], else its key set. */
static int hf_detect(const json_t *root, const char *file, hf_family *fam, st_error *err) {
    int rc;
    const char *mt = NULL;
    json_t *arch = json_object_get(root, "architectures");

    rc = hf_str(root, "model_type", &mt, file, err);
    if (rc < 0) return rc;
    if (rc == 1) {
        for (size_t i = 0; i < N_FAMILIES; i++)
            if (strcmp(mt, hf_families[i].model_type) == 0) {
                *fam = hf_families[i].fam;
                return 0;
            }
        *fam = FAM_DECODER; /* any other: read by meaning */
        return 0;
    }
    if (arch && !json_is_null(arch)) {
        json_t *a0 = json_is_array(arch) ? json_array_get(arch, 0) : NULL;
        if (!json_is_string(a0))
            return st_error_set(err, ST_EINVAL, file, "architectures", "expected an array of strings");
        for (size_t i = 0; i < N_FAMILIES; i++)
            if (strcmp(json_string_value(a0), hf_families[i].architecture) == 0) {
                *fam = hf_families[i].fam;
                return 0;
            }
        *fam = FAM_DECODER;
        return 0;
    }
    if (json_object_get(root, "n_embd"))
        *fam = FAM_GPT2;
    else if (json_object_get(root, "n_embed") || json_object_get(root, "n_layer"))
        *fam = FAM_BLOOM;
    else if (json_object_get(root, "ffn_dim"))
        *fam = FAM_OPT;
    else
        *fam = FAM_DECODER;
    return 0;
}

/* What strata knows of a model_type beyond the standard keys (transformers' configuration_*.py and
 * modeling_*.py; the published config.json files). */
enum {
    K_GATED = 1,      /* a gated MLP (gate, up, down): SwiGLU, or GeGLU priced as SwiGLU */
    K_TIED = 2,       /* tie_word_embeddings defaults to true */
    K_LN = 4,         /* LayerNorm rather than RMSNorm */
    K_BIAS = 8,       /* biases on every linear layer */
    K_QKVB = 16,      /* biases on q, k and v */
    K_QKN_HEAD = 32,  /* RMSNorm on each head's q and k */
    K_QKN_FULL = 64,  /* RMSNorm over the whole q and k projections */
    K_ALT2 = 128,     /* sliding-window and global blocks alternate (Gemma 2) */
    K_SINKS = 256,    /* learned attention sinks */
    K_LEARNED = 512,  /* learned absolute positions */
    K_CHUNKED = 1024, /* attention_chunk_size: 3 of every 4 blocks local (Llama 4's NoPE blocks global) */
    K_PARALLEL = 2048, /* attention and MLP in parallel on one norm (use_parallel_residual can say no) */
};
static const struct {
    const char *type;
    unsigned k;
} hf_known[] = {
    {"llama", K_GATED}, {"mistral", K_GATED}, {"mixtral", K_GATED}, {"qwen2", K_GATED | K_QKVB},
    {"qwen2_moe", K_GATED | K_QKVB}, {"qwen3", K_GATED | K_QKN_HEAD}, {"qwen3_moe", K_GATED | K_QKN_HEAD},
    {"mimo", K_GATED}, {"deepseek_v2", K_GATED}, {"deepseek_v3", K_GATED}, {"kimi_k2", K_GATED},
    {"minicpm", K_GATED}, {"minimax_m2", K_GATED}, {"gpt_oss", K_GATED | K_BIAS | K_SINKS},
    {"llama4", K_GATED | K_CHUNKED}, {"llama4_text", K_GATED | K_CHUNKED}, {"gemma", K_GATED | K_TIED},
    {"gemma2", K_GATED | K_TIED | K_ALT2}, {"gemma3", K_GATED | K_TIED | K_QKN_HEAD},
    {"gemma3_text", K_GATED | K_TIED | K_QKN_HEAD}, {"phi3", K_GATED}, {"olmo2", K_GATED | K_QKN_FULL},
    {"cohere", K_GATED | K_TIED | K_LN | K_PARALLEL}, {"internlm2", K_GATED}, {"starcoder2", K_TIED | K_LN},
    {"gpt_neox", K_LN | K_BIAS | K_PARALLEL}, {"gptj", K_LN | K_PARALLEL},
    {"gpt_bigcode", K_TIED | K_LN | K_BIAS | K_LEARNED},
    {"nemotron_h", 0}, {"nemotron-nas", K_GATED},
    {"deepseek_v32", K_GATED}, {"glm_moe_dsa", K_GATED}, {"qwen3_next", K_GATED | K_QKN_HEAD},
    {"qwen3_5", K_GATED | K_QKN_HEAD}, {"qwen3_5_text", K_GATED | K_QKN_HEAD},
    {"gemma4", K_GATED | K_TIED | K_QKN_HEAD}, {"gemma4_text", K_GATED | K_TIED | K_QKN_HEAD},
};

/* Keys whose structure strata does not price: a config that turns one on is refused naming it. */
static const struct {
    const char *key, *what;
} hf_unpriced[] = {
    {"num_kv_shared_layers", "key/value caches shared across blocks"},
    {"hidden_size_per_layer_input", "per-block input embeddings"},
    {"mlp_only_layers", "a list of dense blocks among MoE ones"},
    {"indexer_types", "blocks that reuse another block's sparse-attention top-k"},
    {"index_topk_pattern", "blocks that reuse another block's sparse-attention top-k"},
};

/* The config being read: keys come from text_config first (the language model of a
 * *ForConditionalGeneration), then from the top. */
typedef struct hf {
    const json_t *root, *tc;
    const char *file;
    st_error *err;
    st_model *m;
} hf;

/* The key's non-null value and the object path it sits under (NULL at the top), or NULL. */
static const json_t *hf_at(const hf *c, const char *key, const char **prefix) {
    const json_t *v;
    if (c->tc && (v = json_object_get(c->tc, key)) && !json_is_null(v)) {
        *prefix = "text_config";
        return v;
    }
    *prefix = NULL;
    v = json_object_get(c->root, key);
    return v && !json_is_null(v) ? v : NULL;
}

/* The first of `keys` (NULL-terminated) present, as an integer in [lo, hi]: 1, 0 absent, <0 error. */
static int hf_geti(const hf *c, const char *const *keys, int64_t lo, int64_t hi, int64_t *out) {
    for (size_t i = 0; keys[i]; i++) {
        const char *prefix;
        if (!hf_at(c, keys[i], &prefix)) continue;
        return st__json_get_int(prefix ? c->tc : c->root, keys[i], lo, hi, out, c->file, prefix, c->err);
    }
    return 0;
}

/* A boolean key: 1 when JSON true. */
static int hf_true(const hf *c, const char *key) {
    const char *prefix;
    return json_is_true(hf_at(c, key, &prefix));
}

static const char *hf_string(const hf *c, const char *key) {
    const char *prefix;
    const json_t *v = hf_at(c, key, &prefix);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

/* Whether a key is "on": present and not false, 0, "" or an empty array. */
static int hf_on(const hf *c, const char *key) {
    const char *prefix;
    const json_t *v = hf_at(c, key, &prefix);
    if (!v || json_is_false(v)) return 0;
    if (json_is_integer(v)) return json_integer_value(v) != 0;
    if (json_is_array(v)) return json_array_size(v) > 0;
    if (json_is_string(v)) return json_string_value(v)[0] != 0;
    return 1;
}

#define GETI(lo, hi, outp, ...)                                                                    \
    do {                                                                                           \
        static const char *const keys_[] = {__VA_ARGS__, NULL};                                    \
        if ((rc = hf_geti(c, keys_, lo, hi, outp)) < 0) goto out;                                  \
    } while (0)

#if defined(__GNUC__)
static void note_add(st_model *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#endif
/* Appends one clause to the model's import note ("; " between clauses). */
static void note_add(st_model *m, const char *fmt, ...) {
    size_t len = strlen(m->note);
    if (len + 3 >= sizeof m->note) return;
    if (len) len += (size_t)snprintf(m->note + len, sizeof m->note - len, "; ");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m->note + len, sizeof m->note - len, fmt, ap);
    va_end(ap);
}

/* Refuses the structure strata cannot price, naming every key that turns it on (one line). */
static int hf_refuse_unpriced(const hf *c) {
    char buf[400] = "";
    const char *first = NULL, *prefix;
    size_t len = 0, i;
    for (i = 0; i < sizeof hf_unpriced / sizeof hf_unpriced[0]; i++) {
        if (!hf_on(c, hf_unpriced[i].key)) continue;
        if (!first) first = hf_unpriced[i].key;
        if (len < sizeof buf)
            len += (size_t)snprintf(buf + len, sizeof buf - len, "%s%s (%s)", len ? ", " : "", hf_unpriced[i].key,
                                    hf_unpriced[i].what);
    }
    const json_t *lt = hf_at(c, "layer_types", &prefix), *v;
    json_array_foreach(lt, i, v) {
        const char *t = json_is_string(v) ? json_string_value(v) : "?";
        if (strcmp(t, "full_attention") && strcmp(t, "sliding_attention") && strcmp(t, "linear_attention")) {
            if (!first) first = "layer_types";
            if (len < sizeof buf)
                snprintf(buf + len, sizeof buf - len, "%slayer_types ('%s' blocks)", len ? ", " : "", t);
            break;
        }
    }
    if (!first) return 0;
    return st_error_set(c->err, ST_EINVAL, c->file, first, "strata cannot price %s", buf);
}

/* The training sequence length a config implies (issue 15): the pre-training context it records
 * (rope_scaling's or rope_parameters' original_max_position_embeddings, Phi-3's top-level one,
 * gpt-oss's initial_context_length); else max_position_embeddings up to 8192, the pre-training
 * lengths of today (Llama 3 and Gemma 2 trained at 8K with max_position_embeddings 8192); else 4096.
 * A larger max_position_embeddings is the context the model was extended to for inference (32K to
 * 10M) after pre-training at 4K-8K (Llama 3: 8K, Dubey et al. 2024, Sec. 3.4; DeepSeek-V3: 4K,
 * Sec. 4.3; Qwen3: 4K in its first two stages): planning at it makes nearly every plan "not fit". */
static int hf_seq(const hf *c) {
    int rc = 0;
    int64_t mx = 0, orig = 0;
    const char *from = NULL, *prefix;
    st_model *m = c->m;
    GETI(1, ST_MAX_SEQ, &mx, "max_position_embeddings", "n_positions", "seq_length");
    static const char *const holders[] = {"rope_scaling", "rope_parameters"};
    for (int i = 0; i < 2 && !from; i++) {
        const json_t *rs = hf_at(c, holders[i], &prefix);
        if (!rs) continue;
        if (!json_is_object(rs)) {
            rc = st_error_set(c->err, ST_EINVAL, c->file, holders[i], "expected an object or null");
            goto out;
        }
        if (json_is_null(json_object_get(rs, "original_max_position_embeddings"))) continue;
        rc = st__json_get_int(rs, "original_max_position_embeddings", 1, ST_MAX_SEQ, &orig, c->file, holders[i],
                              c->err);
        if (rc < 0) goto out;
        if (rc == 0) continue; /* rope_parameters without it (Qwen3.5, GLM-5) */
        from = i ? "rope_parameters.original_max_position_embeddings" : "rope_scaling.original_max_position_embeddings";
    }
    static const char *const flat[] = {"original_max_position_embeddings", "initial_context_length"};
    for (int i = 0; i < 2 && !from; i++) {
        const char *const keys[] = {flat[i], NULL};
        if ((rc = hf_geti(c, keys, 1, ST_MAX_SEQ, &orig)) < 0) goto out;
        if (rc == 1) from = flat[i];
    }
    if (from) {
        m->seq_len = orig;
        note_add(m, "seq_len %lld from %s (--seq sets another)", (long long)orig, from);
    } else if (mx > 0 && mx <= 8192) {
        m->seq_len = mx;
    } else {
        m->seq_len = 4096;
        note_add(m, "seq_len 4096, strata's default: the config records no pre-training context%s (--seq sets another)",
                 mx > 0 ? " and max_position_embeddings is the extended one" : "");
    }
    rc = 0;
out:
    return rc;
}

/* Nemotron-NAS (DeciLM) block_configs: per block, attention kept or no_op (GQA with
 * n_heads_in_group query heads a key/value head) and the FFN's size from ffn_mult as DeciLM's
 * _ffn_mult_to_intermediate_size computes it: int(2 ffn_mult h / 3) rounded up to a multiple of 256. */
static int hf_nas(const hf *c, const json_t *bc) {
    st_model *m = c->m;
    size_t i;
    const json_t *b;
    int64_t group = 0;
    char key[64];
    if (!json_is_array(bc) || (int64_t)json_array_size(bc) != m->layers || m->layers > ST_MAX_PATTERN)
        return st_error_set(c->err, ST_EINVAL, c->file, "block_configs", "expected one object per layer (at most %d)",
                            ST_MAX_PATTERN);
    json_array_foreach(bc, i, b) {
        const json_t *at = json_object_get(b, "attention"), *ff = json_object_get(b, "ffn");
        snprintf(key, sizeof key, "block_configs[%zu]", i);
        if (!json_is_object(at) || !json_is_object(ff))
            return st_error_set(c->err, ST_EINVAL, c->file, key, "expected attention and ffn objects");
        if (json_is_true(json_object_get(at, "replace_with_linear")) ||
            json_is_true(json_object_get(ff, "replace_with_linear")))
            return st_error_set(c->err, ST_EINVAL, c->file, key, "strata cannot price replace_with_linear blocks");
        int no_attn = json_is_true(json_object_get(at, "no_op")), no_ffn = json_is_true(json_object_get(ff, "no_op"));
        if (no_attn && no_ffn) return st_error_set(c->err, ST_EINVAL, c->file, key, "a block with neither half");
        m->layer_pattern[i] = no_attn ? '-' : no_ffn ? '*' : 'T';
        if (!no_attn) {
            json_t *g = json_object_get(at, "n_heads_in_group");
            if (!json_is_integer(g) || json_integer_value(g) < 1 || (group && json_integer_value(g) != group))
                return st_error_set(c->err, ST_EINVAL, c->file, key,
                                    "n_heads_in_group: one positive value for every attention block");
            group = json_integer_value(g);
        }
        if (!no_ffn) {
            json_t *fm = json_object_get(ff, "ffn_mult");
            if (!json_is_number(fm) || json_number_value(fm) <= 0 || json_number_value(fm) > 64)
                return st_error_set(c->err, ST_EINVAL, c->file, key, "ffn.ffn_mult: expected a number in (0, 64]");
            int64_t f = (int64_t)(2 * json_number_value(fm) * (double)m->hidden / 3);
            m->layer_ffn[i] = (int32_t)((f + 255) / 256 * 256);
            if (m->ffn == 0) m->ffn = m->layer_ffn[i];
        }
    }
    m->layer_pattern[m->layers] = '\0';
    if (group) m->kv_heads = m->heads / group;
    return 0;
}

/* The sliding-window layout: sliding_window (or MLC's sliding_window_size) unless
 * use_sliding_window is false; which blocks are global from layer_types, sliding_window_pattern,
 * the family (Gemma 2 alternates) or Llama 4's chunked attention. */
static int hf_window(const hf *c, unsigned known) {
    int rc = 0;
    st_model *m = c->m;
    const char *prefix;
    GETI(0, ST_MAX_SEQ, &m->window, "sliding_window", "sliding_window_size");
    if (json_is_false(hf_at(c, "use_sliding_window", &prefix))) m->window = 0;
    if (known & K_CHUNKED) {
        int64_t chunk = 0;
        GETI(0, ST_MAX_SEQ, &chunk, "attention_chunk_size");
        if (chunk > 0) {
            m->window = chunk, m->global_every = 4;
            note_add(m, "chunked local attention (attention_chunk_size %lld) priced as a sliding window of that size",
                     (long long)chunk);
        }
    }
    if (m->window > 0 && (known & K_ALT2)) m->global_every = 2;
    GETI(0, ST_MAX_LAYERS, &m->global_every, "sliding_window_pattern");
    const json_t *lt = hf_at(c, "layer_types", &prefix);
    if (m->window > 0 && json_is_array(lt) && json_array_size(lt) > 0) {
        /* the period n at which "full_attention" falls on the last block of each n */
        size_t n = json_array_size(lt), full = 0, period = 0;
        for (size_t i = 0; i < n; i++) {
            const char *t = json_string_value(json_array_get(lt, i));
            if (t && !strcmp(t, "full_attention")) full++, period = period ? period : i + 1;
        }
        for (size_t i = 0; full && i < n; i++) {
            const char *t = json_string_value(json_array_get(lt, i));
            if (!t || (strcmp(t, "full_attention") == 0) != ((i + 1) % period == 0))
                return st_error_set(c->err, ST_EINVAL, c->file, "layer_types",
                                    "global blocks strata cannot lay out (it takes the last of every n)");
        }
        m->global_every = full == n ? 0 : (int64_t)period;
        if (full == n) m->window = 0;
    }
    rc = 0;
out:
    return rc;
}

/* The MoE keys: experts, top-k, the experts' FFN (intermediate_size where no other key gives it),
 * shared experts, dense-first blocks, MoE every n-th. */
static int hf_moe(const hf *c, const char *type) {
    int rc = 0;
    st_model *m = c->m;
    GETI(0, ST_MAX_EXPERTS, &m->experts, "num_local_experts", "num_experts", "n_routed_experts", "moe_num_experts");
    if (m->experts == 0) {
        if (hf_on(c, "num_experts_per_tok"))
            rc = st_error_set(c->err, ST_EINVAL, c->file, "num_local_experts",
                              "missing: num_experts_per_tok is set but no expert count");
        goto out;
    }
    GETI(1, ST_MAX_EXPERTS, &m->experts_topk, "num_experts_per_tok", "experts_per_token", "top_k_experts",
         "moe_topk");
    if (m->experts_topk == 0) {
        rc = st_error_set(c->err, ST_EINVAL, c->file, "num_experts_per_tok", "missing: the experts a token visits");
        goto out;
    }
    GETI(1, 1 << 24, &m->moe_ffn, "moe_intermediate_size", "expert_intermediate_size");
    GETI(0, ST_MAX_LAYERS, &m->first_dense, "first_k_dense_replace");
    GETI(1, ST_MAX_LAYERS, &m->moe_every, "moe_layer_freq", "decoder_sparse_step", "interleave_moe_layer_step");
    int64_t n_shared = 0, shared_size = 0;
    GETI(0, ST_MAX_EXPERTS, &n_shared, "n_shared_experts");
    GETI(0, 1 << 24, &shared_size, "shared_expert_intermediate_size", "shared_intermediate_size");
    /* group-limited routing (DeepSeek-V2's group_limited_greedy, V3's noaux_tc): one group is no limit */
    int64_t groups = 0, groups_topk = 0;
    GETI(0, ST_MAX_EXPERTS, &groups, "n_group");
    GETI(0, ST_MAX_EXPERTS, &groups_topk, "topk_group");
    if (groups > 1 && groups_topk > 0 && groups_topk < groups)
        m->router_groups = groups, m->router_group_topk = groups_topk;
    if (n_shared > 0) m->shared_experts = n_shared;
    if (shared_size > 0) m->shared_experts = 1, m->shared_ffn = shared_size;
    if (type && !strncmp(type, "llama4", 6)) {
        /* Llama 4: intermediate_size is the experts' (and the one shared expert's) size,
         * intermediate_size_mlp the dense blocks' */
        m->moe_ffn = m->ffn, m->shared_experts = 1, m->shared_ffn = m->ffn;
        GETI(1, 1 << 24, &m->ffn, "intermediate_size_mlp");
    }
    rc = 0;
out:
    return rc;
}

/* The RoPE base: rope_theta (text_config first) or GPT-NeoX's rotary_emb_base, else
 * rope_parameters.rope_theta (transformers 5's layout), else its full_attention entry (Gemma 4 keeps one per block kind; the global blocks' is
 * the model's, as Gemma 3's rope_theta is, its local blocks' base said in the note). */
static int hf_rope_theta(const hf *c) {
    const char *prefix;
    const json_t *v = hf_at(c, "rope_theta", &prefix), *rp = hf_at(c, "rope_parameters", &prefix);
    if (!v) v = hf_at(c, "rotary_emb_base", &prefix); /* GPT-NeoX */
    if (!v && json_is_object(rp)) v = json_object_get(rp, "rope_theta");
    if (!v && json_is_object(rp) && json_is_object(json_object_get(rp, "full_attention"))) {
        v = json_object_get(json_object_get(rp, "full_attention"), "rope_theta");
        if (v) note_add(c->m, "rope_theta of the full-attention blocks (the windowed ones have their own)");
    }
    if (!v || json_is_null(v)) return 0;
    if (!json_is_number(v) || !(json_number_value(v) >= 1) || json_number_value(v) > 1e12)
        return st_error_set(c->err, ST_EINVAL, c->file, "rope_theta", "expected a number 1..1e12");
    c->m->rope_theta = json_number_value(v);
    return 0;
}

/* Gated DeltaNet blocks (Qwen3-Next, Qwen3.5: modeling_qwen3_next.py): the linear_* head shapes and
 * which blocks are linear, from layer_types ("linear_attention") or else full_attention_interval (every
 * n-th block full attention, the last of each n, as Qwen3NextConfig derives layer_types). */
static int hf_gdn(const hf *c) {
    int rc = 0;
    st_model *m = c->m;
    const char *prefix;
    GETI(0, 65536, &m->gdn_v_heads, "linear_num_value_heads");
    if (m->gdn_v_heads == 0) goto out;
    GETI(0, 65536, &m->gdn_k_heads, "linear_num_key_heads");
    GETI(0, 65536, &m->gdn_k_dim, "linear_key_head_dim");
    GETI(0, 65536, &m->gdn_v_dim, "linear_value_head_dim");
    GETI(0, 64, &m->gdn_conv, "linear_conv_kernel_dim");
    int64_t every = 0;
    GETI(1, ST_MAX_LAYERS, &every, "full_attention_interval");
    const json_t *lt = hf_at(c, "layer_types", &prefix), *v;
    if (m->layers > ST_MAX_PATTERN || (lt && (!json_is_array(lt) || (int64_t)json_array_size(lt) != m->layers)) ||
        (!lt && every == 0)) {
        rc = st_error_set(c->err, ST_EINVAL, c->file, "layer_types",
                          "expected one entry per layer (at most %d), or full_attention_interval", ST_MAX_PATTERN);
        goto out;
    }
    for (int64_t l = 0; l < m->layers; l++) {
        v = lt ? json_array_get(lt, (size_t)l) : NULL;
        int linear = lt ? json_is_string(v) && !strcmp(json_string_value(v), "linear_attention") : (l + 1) % every != 0;
        m->layer_pattern[l] = linear ? 'G' : 'T';
    }
    m->layer_pattern[m->layers] = '\0';
    rc = 0;
out:
    return rc;
}

/* Latent attention, Mamba-2 blocks, NAS blocks and MTP modules: the keys of one family each. */
static int hf_structure(const hf *c) {
    int rc = 0;
    st_model *m = c->m;
    const char *prefix;
    GETI(0, 1 << 24, &m->kv_lora_rank, "kv_lora_rank");
    if (m->kv_lora_rank > 0) {
        GETI(0, 1 << 24, &m->q_lora_rank, "q_lora_rank");
        GETI(0, 65536, &m->qk_nope_dim, "qk_nope_head_dim");
        GETI(0, 65536, &m->qk_rope_dim, "qk_rope_head_dim");
        GETI(0, 65536, &m->v_head_dim, "v_head_dim");
    }
    const char *pat = hf_string(c, "hybrid_override_pattern");
    if (pat) {
        if (strlen(pat) > ST_MAX_PATTERN) {
            rc = st_error_set(c->err, ST_EINVAL, c->file, "hybrid_override_pattern", "longer than %d blocks",
                              ST_MAX_PATTERN);
            goto out;
        }
        snprintf(m->layer_pattern, sizeof m->layer_pattern, "%s", pat);
        GETI(0, 65536, &m->ssm_heads, "mamba_num_heads");
        GETI(0, 65536, &m->ssm_head_dim, "mamba_head_dim");
        GETI(0, 65536, &m->ssm_state, "ssm_state_size");
        GETI(0, 65536, &m->ssm_groups, "n_groups");
        GETI(0, 64, &m->ssm_conv, "conv_kernel");
    }
    const json_t *bc = hf_at(c, "block_configs", &prefix);
    if (bc && (rc = hf_nas(c, bc)) < 0) goto out;
    /* DeepSeek Sparse Attention (DeepSeek-V3.2, GLM-5): the lightning indexer's shape */
    GETI(0, 65536, &m->index_heads, "index_n_heads");
    GETI(0, 65536, &m->index_head_dim, "index_head_dim");
    GETI(0, ST_MAX_SEQ, &m->index_topk, "index_topk");
    /* Gemma 4's global blocks: their own head size and kv heads, keys as values */
    GETI(0, 65536, &m->global_head_dim, "global_head_dim");
    GETI(0, ST_MAX_HEADS, &m->global_kv_heads, "num_global_key_value_heads");
    m->global_k_eq_v = hf_true(c, "attention_k_eq_v");
    if (hf_true(c, "enable_moe_block")) {
        /* Gemma 4: every block's dense MLP (intermediate_size) runs beside its MoE on the same input and
         * the two are summed (modeling_gemma4.py, Gemma4TextDecoderLayer): a shared expert's structure */
        m->shared_experts = 1, m->shared_ffn = m->ffn;
        note_add(m, "the dense MLP beside each block's MoE priced as one shared expert (its own norms left out)");
    }
    m->attn_out_gate = hf_true(c, "attn_output_gate");
    if ((rc = hf_gdn(c)) < 0) goto out;
    GETI(0, 16, &m->mtp_layers, "num_nextn_predict_layers", "mtp_num_hidden_layers");
    if (hf_true(c, "use_mtp")) GETI(0, 16, &m->mtp_layers, "num_mtp_modules");
    if (m->mtp_layers > 0)
        note_add(m, "%lld multi-token prediction module%s priced, their parameters counted apart",
                 (long long)m->mtp_layers, m->mtp_layers > 1 ? "s" : "");
    rc = 0;
out:
    return rc;
}

/* The modern decoder key sets, read by meaning: the standard keys wherever a family puts them,
 * then each family's own (MoE shapes, MLA, windows, Mamba-2, NAS blocks, MTP). */
static int hf_decoder(const json_t *root, const char *file, st_model *m, st_error *err) {
    int rc;
    const json_t *tc = json_object_get(root, "text_config");
    hf cv = {.root = root, .tc = json_is_object(tc) ? tc : NULL, .file = file, .err = err, .m = m}, *c = &cv;
    const char *type = hf_string(c, "model_type"), *prefix;
    unsigned known = 0;
    int is_known = 0;
    for (size_t i = 0; type && i < sizeof hf_known / sizeof hf_known[0]; i++)
        if (!strcmp(type, hf_known[i].type)) known = hf_known[i].k, is_known = 1;
    if (c->tc) note_add(m, "the language model only (text_config); the vision tower is left out");
    if (!is_known) note_add(m, "model_type '%s' is new to strata: imported from its standard keys", type ? type : "?");
    if ((rc = hf_refuse_unpriced(c)) < 0) goto out;

    static const char *const req[] = {"hidden_size", "num_hidden_layers", "num_attention_heads", "vocab_size"};
    int64_t *reqv[] = {&m->hidden, &m->layers, &m->heads, &m->vocab};
    GETI(1, ST_MAX_HIDDEN, &m->hidden, "hidden_size", "n_embd", "d_model");
    GETI(1, ST_MAX_LAYERS, &m->layers, "num_hidden_layers", "n_layer", "num_layers");
    GETI(1, ST_MAX_HEADS, &m->heads, "num_attention_heads", "n_head", "num_heads");
    GETI(1, ST_MAX_VOCAB, &m->vocab, "vocab_size", "padded_vocab_size");
    for (int i = 0; i < 4; i++)
        if (*reqv[i] == 0) {
            rc = st_error_set(err, ST_EINVAL, file, req[i], "missing required key");
            goto out;
        }
    GETI(1, ST_MAX_HEADS, &m->kv_heads, "num_key_value_heads", "num_kv_heads", "n_head_kv");
    if (hf_true(c, "multi_query")) m->kv_heads = 1;
    GETI(1, 65536, &m->head_dim, "head_dim", "attention_head_dim", "kv_channels");
    GETI(1, 1 << 24, &m->ffn, "intermediate_size", "n_inner", "ffn_dim", "ffn_hidden_size");

    /* activation: a gated MLP for the families that build one, and for unknown ones with silu */
    static const char *const act_keys[] = {"mlp_hidden_act", "hidden_activation", "hidden_act", "activation_function"};
    const char *act = NULL, *act_key = NULL;
    for (int i = 0; i < 4 && !act; i++) act = hf_string(c, act_keys[i]), act_key = act_keys[i];
    int silu = act && (!strcmp(act, "silu") || !strcmp(act, "swish"));
    if (act && !silu && strncmp(act, "gelu", 4) && strncmp(act, "relu", 4)) {
        rc = st_error_set(err, ST_EINVAL, file, act_key, "unsupported activation '%s'", act);
        goto out;
    }
    if (!is_known && silu) known |= K_GATED;
    if (known & K_GATED) {
        if (act && !silu) note_add(m, "the gated %s MLP priced as SwiGLU (the same shapes)", act);
        m->activation = ST_ACT_SWIGLU;
    } else {
        m->activation = act && !strncmp(act, "relu", 4) ? ST_ACT_RELU : ST_ACT_GELU;
    }
    const char *nt = hf_string(c, "norm_type");
    m->norm = (known & K_LN) || (nt && !strcmp(nt, "layer_norm")) ? ST_NORM_LAYERNORM : ST_NORM_RMSNORM;
    m->position = known & K_LEARNED ? ST_POS_LEARNED : ST_POS_ROPE;
    /* tie_word_embeddings: the top-level key first (a multimodal config ties there), else
     * text_config's, else the family's default (transformers' PretrainedConfig: true) */
    const json_t *tie = json_object_get(root, "tie_word_embeddings");
    if (!tie || json_is_null(tie)) tie = hf_at(c, "tie_word_embeddings", &prefix);
    m->tied_embeddings = tie ? json_is_true(tie) : (known & K_TIED) || !is_known;
    m->bias = (known & K_BIAS) || hf_true(c, "use_bias") || hf_true(c, "bias") ||
              (hf_true(c, "attention_bias") && hf_true(c, "mlp_bias"));
    m->qkv_bias = !m->bias && ((known & K_QKVB) || hf_true(c, "attention_bias"));
    static const char *const drop[] = {"attention_dropout", "attn_pdrop", "resid_pdrop", "hidden_dropout",
                                       "embd_pdrop", "residual_dropout"};
    m->dropout = 0;
    for (int i = 0; i < 6; i++) {
        const json_t *v = hf_at(c, drop[i], &prefix);
        if (json_is_number(v) && json_number_value(v) > 0) m->dropout = 1;
    }
    m->qk_norm = known & K_QKN_FULL ? 2 : known & K_QKN_HEAD ? 1 : 0;
    if (hf_true(c, "use_qk_norm")) {
        const char *qt = hf_string(c, "qk_norm_type");
        m->qk_norm = qt && !strcmp(qt, "per_layer") ? 2 : 1;
    }
    m->attn_sinks = (known & K_SINKS) != 0;
    m->parallel_block = (known & K_PARALLEL) || hf_true(c, "parallel_attn") || hf_true(c, "use_parallel_residual");
    if (json_is_false(hf_at(c, "use_parallel_residual", &prefix))) m->parallel_block = 0;
    if (m->position == ST_POS_ROPE && (rc = hf_rope_theta(c)) < 0) goto out;
    if ((rc = hf_moe(c, type)) < 0) goto out;
    if ((rc = hf_window(c, known)) < 0) goto out;
    if ((rc = hf_structure(c)) < 0) goto out;
    rc = hf_seq(c);
out:
    return rc;
}

static int hf_gpt2(const json_t *root, const char *file, st_model *m, st_error *err) {
    int rc;
    const char *act = NULL;

    HF_INT("n_embd", 1, ST_MAX_HIDDEN, &m->hidden, 1);
    HF_INT("n_layer", 1, ST_MAX_LAYERS, &m->layers, 1);
    HF_INT("n_head", 1, ST_MAX_HEADS, &m->heads, 1);
    HF_INT("vocab_size", 1, ST_MAX_VOCAB, &m->vocab, 1);
    HF_INT("n_inner", 1, 1 << 24, &m->ffn, 0);
    if (m->ffn == 0) m->ffn = 4 * m->hidden;
    HF_INT2("n_positions", "n_ctx", 1, ST_MAX_SEQ, &m->seq_len, 0);
    rc = hf_str(root, "activation_function", &act, file, err);
    if (rc < 0) goto out;
    if (rc == 1 && strncmp(act, "gelu", 4) != 0 && strcmp(act, "relu") != 0) {
        rc = st_error_set(err, ST_EINVAL, file, "activation_function", "unsupported activation '%s'", act);
        goto out;
    }
    m->activation = (act && strcmp(act, "relu") == 0) ? ST_ACT_RELU : ST_ACT_GELU;
    m->norm = ST_NORM_LAYERNORM;
    m->position = ST_POS_LEARNED;
    m->tied_embeddings = 1;
    HF_BOOL("tie_word_embeddings", &m->tied_embeddings);
    m->bias = 1;
    m->dropout = 1;
    rc = 0;
out:
    return rc;
}

static int hf_opt(const json_t *root, const char *file, st_model *m, st_error *err) {
    int rc;
    const char *act = NULL;

    HF_INT("hidden_size", 1, ST_MAX_HIDDEN, &m->hidden, 1);
    HF_INT("num_hidden_layers", 1, ST_MAX_LAYERS, &m->layers, 1);
    HF_INT("num_attention_heads", 1, ST_MAX_HEADS, &m->heads, 1);
    HF_INT("vocab_size", 1, ST_MAX_VOCAB, &m->vocab, 1);
    HF_INT("ffn_dim", 1, 1 << 24, &m->ffn, 0);
    HF_INT("max_position_embeddings", 1, ST_MAX_SEQ, &m->seq_len, 0);
    rc = hf_str(root, "activation_function", &act, file, err);
    if (rc < 0) goto out;
    m->activation = ST_ACT_RELU;
    if (rc == 1) {
        if (strcmp(act, "relu") == 0)
            m->activation = ST_ACT_RELU;
        else if (strncmp(act, "gelu", 4) == 0)
            m->activation = ST_ACT_GELU;
        else {
            rc = st_error_set(err, ST_EINVAL, file, "activation_function", "unsupported activation '%s'", act);
            goto out;
        }
    }
    m->norm = ST_NORM_LAYERNORM;
    m->position = ST_POS_LEARNED;
    m->tied_embeddings = 1;
    HF_BOOL("tie_word_embeddings", &m->tied_embeddings);
    m->bias = 1;
    m->dropout = 1;
    rc = 0;
out:
    return rc;
}

static int hf_bloom(const json_t *root, const char *file, st_model *m, st_error *err) {
    int rc;

    HF_INT2("hidden_size", "n_embed", 1, ST_MAX_HIDDEN, &m->hidden, 1);
    HF_INT2("n_layer", "num_hidden_layers", 1, ST_MAX_LAYERS, &m->layers, 1);
    HF_INT2("n_head", "num_attention_heads", 1, ST_MAX_HEADS, &m->heads, 1);
    HF_INT("vocab_size", 1, ST_MAX_VOCAB, &m->vocab, 1);
    m->ffn = 4 * m->hidden;
    m->seq_len = 2048;
    HF_INT("seq_length", 1, ST_MAX_SEQ, &m->seq_len, 0);
    m->activation = ST_ACT_GELU;
    m->norm = ST_NORM_LAYERNORM;
    m->position = ST_POS_ALIBI;
    m->tied_embeddings = 1;
    HF_BOOL("tie_word_embeddings", &m->tied_embeddings);
    m->bias = 1;
    m->dropout = 1;
    rc = 0;
out:
    return rc;
}

static int load_hf(const json_t *root, const char *file, st_model *m, st_error *err) {
    int rc;
    hf_family fam = FAM_DECODER;
    const char *name = NULL;

    rc = hf_detect(root, file, &fam, err);
    if (rc < 0) goto out;
    switch (fam) {
    case FAM_GPT2: rc = hf_gpt2(root, file, m, err); break;
    case FAM_OPT: rc = hf_opt(root, file, m, err); break;
    case FAM_BLOOM: rc = hf_bloom(root, file, m, err); break;
    default: rc = hf_decoder(root, file, m, err); break;
    }
    if (rc < 0) goto out;
    /* name: "_name_or_path" (its last path component when too long), else model_type, else file */
    rc = hf_str(root, "_name_or_path", &name, file, err);
    if (rc < 0) goto out;
    if (rc == 1 && name[0]) {
        if (strlen(name) >= sizeof m->name && strrchr(name, '/')) name = strrchr(name, '/') + 1;
        copy_utf8(m->name, sizeof m->name, name);
    }
    if (!m->name[0]) {
        name = NULL;
        rc = hf_str(root, "model_type", &name, file, err);
        if (rc < 0) goto out;
        if (name && name[0]) copy_utf8(m->name, sizeof m->name, name);
    }
    if (!m->name[0]) st__json_name_from_path(m->name, sizeof m->name, file, "model");
    rc = 0;
out:
    return rc;
}

static int is_hf(const json_t *root) {
    for (size_t i = 0; hf_marker_keys[i]; i++)
        if (json_object_get(root, hf_marker_keys[i])) return 1;
    return 0;
}

/* Python's json module writes Infinity, -Infinity and NaN (Nemotron-H's time_step_limit); JSON has
 * no such tokens. A config strict JSON rejects is read again with them (outside strings) as null,
 * which the HuggingFace readers take as absent; only a HuggingFace config may use them. */
static json_t *load_python_json(const char *path) {
    FILE *f = fopen(path, "rb");
    char *in = NULL, *outb = NULL;
    json_t *root = NULL;
    long n;
    if (!f || fseek(f, 0, SEEK_END) || (n = ftell(f)) < 0 || n > (64L << 20) || fseek(f, 0, SEEK_SET)) goto out;
    if (!(in = malloc((size_t)n + 1)) || !(outb = malloc(2 * (size_t)n + 1))) goto out;
    if (fread(in, 1, (size_t)n, f) != (size_t)n) goto out;
    in[n] = '\0';
    size_t w = 0;
    int str = 0; /* inside a string: copied as is, escapes and all */
    for (long i = 0; i < n;) {
        static const char *const tok[] = {"-Infinity", "Infinity", "NaN"};
        int hit = -1;
        if (str && in[i] == '\\' && i + 1 < n) {
            outb[w++] = in[i++];
        } else if (in[i] == '"') {
            str = !str;
        } else if (!str) {
            for (int t = 0; t < 3 && hit < 0; t++)
                if (!strncmp(in + i, tok[t], strlen(tok[t]))) hit = t;
        }
        if (hit >= 0) {
            memcpy(outb + w, "null", 4), w += 4, i += (long)strlen(tok[hit]);
            continue;
        }
        outb[w++] = in[i++];
    }
    outb[w] = '\0';
    root = json_loads(outb, JSON_REJECT_DUPLICATES, NULL);
out:
    if (f) fclose(f);
    free(in);
    free(outb);
    return root;
}

int st_model_load(const char *path, st_model *out, st_error *err) {
    int rc;
    json_t *root = NULL;
    st_model m;

    model_unset(&m);
    rc = st__json_load_file(path, &root, err);
    if (rc == ST_EINVAL && (root = load_python_json(path)) && json_is_object(root) && is_hf(root)) {
        st_error_clear(err);
        rc = 0;
    } else if (rc < 0) {
        json_decref(root);
        root = NULL;
    }
    if (rc < 0) goto out;
    if (!json_is_object(root)) {
        rc = st_error_set(err, ST_EINVAL, path, NULL, "expected a JSON object (a model description)");
        goto out;
    }
    rc = is_hf(root) ? load_hf(root, path, &m, err) : load_strata(root, path, NULL, NULL, &m, err);
    if (rc < 0) goto out;
    snprintf(m.source, sizeof m.source, "%s", path);
    rc = st_model_finalize(&m, path, err);
    if (rc < 0) goto out;
    *out = m;
    rc = 0;
out:
    json_decref(root);
    return rc;
}

int st__model_from_json(const json_t *obj, const char *file, const char *prefix, const char *fallback, st_model *out,
                        st_error *err) {
    int rc;
    st_model m;

    model_unset(&m);
    if (!json_is_object(obj)) {
        rc = st_error_set(err, ST_EINVAL, file, prefix, "expected a JSON object (a model description)");
        goto out;
    }
    if (is_hf(obj)) { /* the HuggingFace key sets are read from config.json files only */
        rc = st_error_set(err, ST_EINVAL, file, prefix,
                          "a HuggingFace config; write the model with strata's keys (layers, hidden, heads, ...)");
        goto out;
    }
    rc = load_strata(obj, file, prefix, fallback, &m, err);
    if (rc < 0) goto out;
    snprintf(m.source, sizeof m.source, "%s", file);
    rc = st_model_finalize(&m, file, err);
    if (rc < 0) {
        st__json_prefix_error(err, prefix);
        goto out;
    }
    *out = m;
    rc = 0;
out:
    return rc;
}

int st_model_resolve(const char *arg, st_model *out, st_error *err) {
    if (!arg || !arg[0]) return st_error_set(err, ST_EUSAGE, NULL, "model", "no model given");
    if (st_model_preset(arg, out) == 0) return 0;
    int rc = st_model_load(arg, out, err);
    return rc ? st__preset_or_file_error(arg, "model", "strata models", err) : 0;
}

/* ------------------------------------------------------------ canonical JSON */

json_t *st__model_to_json(const st_model *m) {
    json_t *o = json_object();
    int bad = 0;

    if (!o) return NULL;
#define SET(key, val) bad |= json_object_set_new(o, key, val)
    SET("name", json_string(m->name));
    SET("layers", json_integer(m->layers));
    SET("hidden", json_integer(m->hidden));
    SET("heads", json_integer(m->heads));
    /* zero means "derive" in these; leaving them out keeps the output loadable */
    if (m->kv_heads > 0) SET("kv_heads", json_integer(m->kv_heads));
    if (m->head_dim > 0) SET("head_dim", json_integer(m->head_dim));
    if (m->ffn > 0) SET("ffn", json_integer(m->ffn));
    SET("vocab", json_integer(m->vocab));
    if (m->seq_len > 0) SET("seq_len", json_integer(m->seq_len));
    SET("activation", json_string(st_activation_name(m->activation)));
    SET("norm", json_string(st_norm_name(m->norm)));
    SET("position", json_string(st_position_name(m->position)));
    if (m->tied_embeddings >= 0) SET("tied_embeddings", json_boolean(m->tied_embeddings));
    if (m->dropout >= 0) SET("dropout", json_boolean(m->dropout));
    if (m->bias >= 0) SET("bias", json_boolean(m->bias));
    SET("experts", json_integer(m->experts));
    SET("experts_topk", json_integer(m->experts_topk));
    if (m->moe_every > 0) SET("moe_every", json_integer(m->moe_every));
    if (m->vocab_pad_multiple > 0) SET("vocab_pad_multiple", json_integer(m->vocab_pad_multiple));
    /* issue 15's structure: only what differs from the defaults, so that older models hash as before */
    if (m->moe_ffn > 0 && m->moe_ffn != m->ffn) SET("moe_ffn", json_integer(m->moe_ffn));
    if (m->shared_experts > 0) SET("shared_experts", json_integer(m->shared_experts));
    if (m->shared_experts > 0) SET("shared_ffn", json_integer(m->shared_ffn));
#define XX(f)                                                                                      \
    if (m->f > 0 && strcmp(#f, "moe_ffn") && strcmp(#f, "shared_experts") && strcmp(#f, "shared_ffn"))             \
        SET(#f, json_integer(m->f));
    STRUCT_INTS(XX)
#undef XX
    if (m->capacity_factor > 0) SET("capacity_factor", json_real(m->capacity_factor));
    if (m->moe_imbalance > 1) SET("moe_imbalance", json_real(m->moe_imbalance));
    if (m->rope_theta > 0) SET("rope_theta", json_real(m->rope_theta));
    if (m->qk_norm) SET("qk_norm", json_integer(m->qk_norm));
    if (m->attn_sinks) SET("attn_sinks", json_true());
    if (m->qkv_bias) SET("qkv_bias", json_true());
    if (m->parallel_block) SET("parallel_block", json_true());
    if (m->attn_out_gate) SET("attn_out_gate", json_true());
    if (m->global_k_eq_v) SET("global_k_eq_v", json_true());
    if (m->layer_pattern[0]) SET("layer_pattern", json_string(m->layer_pattern));
    int64_t nf = 0;
    for (int64_t l = 0; l < ST_MAX_PATTERN; l++)
        if (m->layer_ffn[l] > 0) nf = l + 1;
    if (nf > 0) {
        json_t *a = json_array();
        for (int64_t l = 0; a && l < nf; l++) bad |= json_array_append_new(a, json_integer(m->layer_ffn[l]));
        SET("layer_ffn", a ? a : json_null());
    }
#undef SET
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}
