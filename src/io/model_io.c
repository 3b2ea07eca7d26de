/* model_io.c: model descriptions from files: strata's own model JSON (DESIGN.md, "Model: strata
 * JSON") and HuggingFace config.json files of the Llama, Mistral, Mixtral, Qwen2, GPT-2, OPT and
 * BLOOM families, plus the canonical JSON of a model (its content hash goes into saved plans).
 *
 * Invariants:
 * - The loaders fill a private st_model that starts "unset" (all zero; dropout, bias and
 *   tied_embeddings -1 = derive) and hand it to st_model_finalize, which derives defaults and
 *   checks cross-field constraints; *out is written only on success.
 * - strata JSON is strict: unknown keys, wrong types and out-of-range values are errors naming the
 *   key. The same reader serves model objects inside other files (st__model_from_json: a
 *   validation bundle's "models"), naming the key under the object's path ("models.KEY.layers"). A HuggingFace config ignores keys it does not need, but the keys it reads are checked
 *   the same way (a JSON null counts as absent, as transformers treats it).
 *
 * HuggingFace key sets (transformers' configuration_*.py and the published config.json files):
 * - Llama/Mistral/Mixtral/Qwen2: hidden_size, num_hidden_layers, num_attention_heads,
 *   num_key_value_heads (absent = MHA), intermediate_size, vocab_size, head_dim (newer configs),
 *   hidden_act "silu" (a SwiGLU MLP), RMSNorm, RoPE, tie_word_embeddings (default false),
 *   attention_bias (default false; Qwen2's q/k/v biases are too small to matter and are ignored),
 *   max_position_embeddings, or rope_scaling.original_max_position_embeddings for context-extended
 *   models (Llama 3.1: trained at 8192, extended to 131072); Mixtral adds num_local_experts and
 *   num_experts_per_tok.
 * - GPT-2: n_embd, n_layer, n_head, n_inner (null = 4h), vocab_size, n_positions; GELU, LayerNorm,
 *   learned positions, tied embeddings, biases, dropout.
 * - OPT: hidden_size, num_hidden_layers, num_attention_heads, ffn_dim, vocab_size,
 *   max_position_embeddings, activation_function; LayerNorm, learned positions, tied by default.
 * - BLOOM: hidden_size (or n_embed), n_layer, n_head (or num_attention_heads), vocab_size; MLP 4h,
 *   GELU, LayerNorm, ALiBi, trained at 2048 tokens (seq_length when given), tied embeddings.
 */
#include "jsonutil.h"

#include <string.h>

typedef enum { FAM_LLAMA, FAM_MISTRAL, FAM_MIXTRAL, FAM_QWEN2, FAM_GPT2, FAM_OPT, FAM_BLOOM } hf_family;

static const struct {
    const char *model_type;
    const char *architecture;
    hf_family fam;
} hf_families[] = {
    {"llama", "LlamaForCausalLM", FAM_LLAMA},      {"mistral", "MistralForCausalLM", FAM_MISTRAL},
    {"mixtral", "MixtralForCausalLM", FAM_MIXTRAL}, {"qwen2", "Qwen2ForCausalLM", FAM_QWEN2},
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
    "norm",   "position",       "tied_embeddings", "dropout", "bias", NULL};

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
        return st_error_set(err, ST_EINVAL, file, "model_type",
                            "unsupported model_type '%s' (supported: llama, mistral, mixtral, qwen2, gpt2, opt, "
                            "bloom)",
                            mt);
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
        return st_error_set(err, ST_EINVAL, file, "architectures", "unsupported architecture '%s'",
                            json_string_value(a0));
    }
    if (json_object_get(root, "n_embd"))
        *fam = FAM_GPT2;
    else if (json_object_get(root, "n_embed") || json_object_get(root, "n_layer"))
        *fam = FAM_BLOOM;
    else if (json_object_get(root, "ffn_dim"))
        *fam = FAM_OPT;
    else if (json_object_get(root, "num_local_experts"))
        *fam = FAM_MIXTRAL;
    else
        *fam = FAM_LLAMA;
    return 0;
}

/* Llama, Mistral, Mixtral, Qwen2: the gated-MLP, RMSNorm, RoPE family. */
static int hf_llama(const json_t *root, hf_family fam, const char *file, st_model *m, st_error *err) {
    int rc;
    const char *act = NULL;
    json_t *rs;

    HF_INT("hidden_size", 1, ST_MAX_HIDDEN, &m->hidden, 1);
    HF_INT("num_hidden_layers", 1, ST_MAX_LAYERS, &m->layers, 1);
    HF_INT("num_attention_heads", 1, ST_MAX_HEADS, &m->heads, 1);
    HF_INT("vocab_size", 1, ST_MAX_VOCAB, &m->vocab, 1);
    HF_INT("num_key_value_heads", 1, ST_MAX_HEADS, &m->kv_heads, 0);
    if (m->kv_heads == 0) m->kv_heads = m->heads;
    HF_INT("intermediate_size", 1, 1 << 24, &m->ffn, 0);
    HF_INT("head_dim", 1, 65536, &m->head_dim, 0);
    rc = hf_str(root, "hidden_act", &act, file, err);
    if (rc < 0) goto out;
    if (rc == 1 && strcmp(act, "silu") != 0 && strcmp(act, "swish") != 0) {
        rc = st_error_set(err, ST_EINVAL, file, "hidden_act",
                          "unsupported activation '%s' for a gated MLP (expected silu)", act);
        goto out;
    }
    m->activation = ST_ACT_SWIGLU;
    m->norm = ST_NORM_RMSNORM;
    m->position = ST_POS_ROPE;
    m->tied_embeddings = 0;
    HF_BOOL("tie_word_embeddings", &m->tied_embeddings);
    m->bias = 0;
    HF_BOOL("attention_bias", &m->bias);
    m->dropout = 0;
    HF_INT("max_position_embeddings", 1, ST_MAX_SEQ, &m->seq_len, 0);
    rs = json_object_get(root, "rope_scaling");
    if (rs && !json_is_null(rs)) {
        if (!json_is_object(rs)) {
            rc = st_error_set(err, ST_EINVAL, file, "rope_scaling", "expected an object or null");
            goto out;
        }
        if (!json_is_null(json_object_get(rs, "original_max_position_embeddings"))) {
            rc = st__json_get_int(rs, "original_max_position_embeddings", 1, ST_MAX_SEQ, &m->seq_len, file,
                                  "rope_scaling", err);
            if (rc < 0) goto out;
        }
    }
    if (fam == FAM_MIXTRAL) {
        HF_INT("num_local_experts", 0, ST_MAX_EXPERTS, &m->experts, 1);
        HF_INT("num_experts_per_tok", 0, ST_MAX_EXPERTS, &m->experts_topk, 1);
    }
    rc = 0;
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
    hf_family fam = FAM_LLAMA;
    const char *name = NULL;

    rc = hf_detect(root, file, &fam, err);
    if (rc < 0) goto out;
    switch (fam) {
    case FAM_GPT2: rc = hf_gpt2(root, file, m, err); break;
    case FAM_OPT: rc = hf_opt(root, file, m, err); break;
    case FAM_BLOOM: rc = hf_bloom(root, file, m, err); break;
    default: rc = hf_llama(root, fam, file, m, err); break;
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

int st_model_load(const char *path, st_model *out, st_error *err) {
    int rc;
    json_t *root = NULL;
    st_model m;

    model_unset(&m);
    rc = st__json_load_file(path, &root, err);
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
#undef SET
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}
