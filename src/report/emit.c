/* emit.c: a finalized strata plan as what users hand to their training framework.
 *
 * Targets (each emitted text names its target again in a header comment or, for JSON, in the
 * "strata" object):
 *   megatron   Megatron-LM main at commit 000c4ac (2025): the command-line arguments of pretrain_gpt.py
 *              (megatron/training/arguments.py of that commit), one flag per line with
 *              trailing backslashes, after "# ..." comment lines.
 *   deepspeed  DeepSpeed 0.14.x: a ds_config JSON (train_batch_size, zero_optimization, bf16/fp16,
 *              activation_checkpointing, ...). tp/pp/cp/ep/vp/sp are not ds_config keys (they are
 *              launch flags of Megatron-DeepSpeed); they go into a top-level "strata" object.
 *              DeepSpeedConfig._initialize_params reads only the keys it knows with get_*
 *              look-ups and never walks the top level, so an unknown top-level key is ignored.
 *              Sub-objects are different: zero_optimization is a pydantic DeepSpeedConfigModel
 *              with extra="forbid", so only documented keys go in there.
 *   torchtitan torchtitan v0.1.0: a job config TOML in the train_configs/ layout of that release
 *              ([job], [model], [training] with local_batch_size and global_batch_size,
 *              [parallelism] with data_parallel_{replicate,shard}_degree, tensor/pipeline/context
 *              degrees, pipeline_parallel_schedule, _split_points and _microbatch_size,
 *              [activation_checkpoint], [float8]). Keys are those of the JobConfig dataclasses in
 *              torchtitan/config/job_config.py (tests/data/emit/torchtitan_v0.1.0_keys.txt names the
 *              commit); v0.2.x no longer accepts pipeline_parallel_split_points, and no release
 *              has training.batch_size.
 *
 * And `strata run --emit slurm`'s sbatch script (st_emit_slurm, at the end of this file).
 *
 * Rule: only keys and flags that exist in the named release are emitted. What cannot be
 * expressed there is an ST_EINVAL naming the plan (or model) key; what strata is unsure of is left
 * out and said in a comment of the emitted text. Output is built in memory and written only on
 * success, so an error leaves f untouched; the same input gives the same bytes.
 *
 * Facts the mappings rest on (from the releases named above):
 *  - Megatron-LM: the distributed optimizer is ZeRO-1; there is no ZeRO-2/3, no CPU offload, and
 *    its pipeline schedules are 1F1B and interleaved 1F1B (no GPipe, no zero-bubble, no ZB-V or
 *    DualPipe: ZB-H1 runs in Sea AI Lab's fork, sail-sg/zero-bubble-pipeline-parallelism, whose flags
 *    upstream lacks). --bf16 turns
 *    on fp32 gradient accumulation by itself (validate_args). Uneven pipelines are expressed only
 *    as a different first and/or last stage (--decoder-{first,last}-pipeline-num-layers, the rest
 *    split evenly) and not together with interleaving. Activations: gelu (default) and --swiglu;
 *    there is no plain-ReLU flag and no ALiBi.
 *  - Megatron-LM MoE defaults that differ from what strata prices: --moe-token-dispatcher-type
 *    allgather (strata: all-to-all), --moe-layer-freq 1 (every block MoE), --moe-aux-loss-coeff 0
 *    (no load balancing); --rotary-base defaults to 10000 (the model's rope_theta is emitted).
 *    tests/data/emit/megatron_main_000c4ac_flags.txt lists the flags this file may write (and says
 *    how it was taken from arguments.py). Issue 15's structure maps to them: latent attention
 *    (--multi-latent-attention, --q-lora-rank, --kv-lora-rank, --qk-head-dim = qk_nope, --qk-pos-emb-
 *    head-dim = qk_rope, --v-head-dim), shared experts (--moe-shared-expert-intermediate-size, the
 *    total), group-limited routing (--moe-router-num-groups, --moe-router-group-topk), a capacity
 *    factor (--moe-expert-capacity-factor with --moe-pad-expert-input-to-capacity, the padded buffers
 *    strata prices), dense-first blocks (--moe-layer-freq's list), windows (--window-size W,0 as
 *    Megatron-LM's gpt-oss example writes it, --window-attn-skip-freq N: one full-attention block
 *    after N - 1 windowed ones, strata's global_every), per-head qk-norm (--qk-layernorm), q/k/v
 *    biases (--add-qkv-bias), sinks (--softmax-type learnable), MTP (--mtp-num-layers). What has no
 *    flag in pretrain_gpt.py is refused naming its key (megatron_structure): sparse attention's
 *    indexer, Mamba-2 / Gated DeltaNet / attention-only / MLP-only blocks (Mamba runs from
 *    pretrain_mamba.py), per-block FFN sizes (a heterogeneous config file), Gemma 4's global heads,
 *    gated attention outputs, parallel attention + MLP, full-width qk-norm.
 *  - Uneven plans (issue 19): no target gives data-parallel replicas different micro-batch counts
 *    (dp_batches: refused); DeepSpeed's PipelineModule partitions by partition_method "uniform",
 *    "parameters" or "type:REGEX" (deepspeed/runtime/pipe/module.py, _partition_layers), so explicit
 *    per-stage layer counts need an override of _partition_layers (said in a note); torchtitan takes
 *    them as pipeline_parallel_split_points. A different tp per stage (stage_tp: HexiScale's, Metis's
 *    and AMP's plans) none of them runs: Megatron-LM builds every group from one
 *    tensor_model_parallel_size (megatron/core/parallel_state.py, initialize_model_parallel, one int
 *    for all ranks; --tensor-model-parallel-size), DeepSpeed's pipeline grid is one rectangular
 *    topology (deepspeed/runtime/pipe/topology.py, PipeModelDataParallelTopology(num_pp, num_mp,
 *    num_dp): one "model" axis size), torchtitan one device mesh with one tp dimension
 *    (torchtitan/distributed/parallel_dims.py, ParallelDims.tp, init_device_mesh over pp x dp x cp x tp):
 *    refused naming stage_tp and the framework.
 *  - DeepSpeed: offload_param is valid only with ZeRO stage 3, offload_optimizer with stages 1-3;
 *    the pipeline engine asserts ZeRO stage < 2 and runs one non-interleaved 1F1B-style schedule.
 *    MoE is a model layer (deepspeed.moe.layer.MoE: capacity-factor gating, expert-parallel groups
 *    carved out of data parallelism); Megatron-DeepSpeed runs it without pipeline parallelism. Its
 *    experts are the model's MLP, its gate has no group limit and its one residual MLP (PR-MoE) stands
 *    for one shared expert of the experts' size: other MoE shapes are refused naming the key
 *    (deepspeed_moe).
 *  - Attention: Megatron-LM's --attention-backend (flash, fused, unfused, local, auto; Transformer
 *    Engine's backends), Megatron-DeepSpeed's --use-flash-attn-v2, torchtitan's llama3 always
 *    F.scaled_dot_product_attention (no unfused path).
 *  - torchtitan: FSDP2 (fully_shard) shards parameters, gradients and optimizer states: zero=3;
 *    zero 1/2 are refused (strata would have priced them at another cost); zero 0 becomes DDP,
 *    which that release refuses together with any other parallelism. TP always includes sequence
 *    parallelism. Batch: gradient accumulation steps = global_batch_size / (local_batch_size x
 *    data-parallel degree), and with pipeline parallelism a local batch is split into
 *    local_batch_size / pipeline_parallel_microbatch_size micro-batches of one schedule.
 *    training.enable_cpu_offload offloads parameters, gradients and optimizer states together.
 *  - Overlaps: Megatron-LM's --tp-comm-overlap (Transformer Engine's userbuffers; validate_args
 *    asserts sequence parallelism) and --overlap-param-gather (asserts the distributed optimizer and
 *    --overlap-grad-reduce); torchtitan's parallelism.enable_async_tensor_parallel, which raises
 *    "Async TP requires --training.compile" without training.compile; DeepSpeed has neither.
 */
#include "src/report/report.h"

#include <assert.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define MEGATRON_TARGET "Megatron-LM main@000c4ac"
#define DEEPSPEED_TARGET "DeepSpeed 0.14.x"
#define TORCHTITAN_TARGET "torchtitan v0.1.0"

#define SPEC_BYTES 65536

/* ------------------------------------------------------------ growable text buffer */

typedef struct sbuf {
    char *s;
    size_t len, cap;
    int oom;
} sbuf;

static void sb_reserve(sbuf *b, size_t extra) {
    if (b->oom) return;
    if (b->len + extra + 1 <= b->cap) return;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + extra + 1) cap *= 2;
    char *s = realloc(b->s, cap);
    if (!s) {
        b->oom = 1;
        return;
    }
    b->s = s;
    b->cap = cap;
}

static void sb_printf(sbuf *b, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

static void sb_printf(sbuf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->oom = 1;
        return;
    }
    sb_reserve(b, (size_t)n);
    if (b->oom) return;
    va_start(ap, fmt);
    vsnprintf(b->s + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

static void sb_putc(sbuf *b, char c) {
    sb_reserve(b, 1);
    if (b->oom) return;
    b->s[b->len++] = c;
    b->s[b->len] = '\0';
}

static void sb_puts(sbuf *b, const char *s) { sb_printf(b, "%s", s); }

/* Length of the valid UTF-8 sequence at s, 0 when s does not start one. */
static size_t utf8_len(const unsigned char *s) {
    unsigned c = s[0], cp, min;
    size_t n;
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) n = 2, min = 0x80, cp = c & 0x1F;
    else if ((c & 0xF0) == 0xE0) n = 3, min = 0x800, cp = c & 0x0F;
    else if (c >= 0xF0 && c <= 0xF4) n = 4, min = 0x10000, cp = c & 0x07;
    else return 0;
    for (size_t i = 1; i < n; i++) { /* a NUL fails the test before anything past it is read */
        if ((s[i] & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    return n;
}

/* A double-quoted string valid in both JSON and TOML (basic string): \" \\ \b \t \n \f \r and
 * \u00XX for other control characters and DEL; invalid UTF-8 becomes U+FFFD. */
static void sb_quoted(sbuf *b, const char *str) {
    const unsigned char *s = (const unsigned char *)(str ? str : "");
    sb_putc(b, '"');
    while (*s) {
        unsigned c = *s;
        size_t n = utf8_len(s);
        if (n == 0) {
            sb_puts(b, "\\ufffd");
            s++;
            continue;
        }
        if (n > 1) {
            for (size_t i = 0; i < n; i++) sb_putc(b, (char)s[i]);
            s += n;
            continue;
        }
        switch (c) {
        case '"': sb_puts(b, "\\\""); break;
        case '\\': sb_puts(b, "\\\\"); break;
        case '\b': sb_puts(b, "\\b"); break;
        case '\t': sb_puts(b, "\\t"); break;
        case '\n': sb_puts(b, "\\n"); break;
        case '\f': sb_puts(b, "\\f"); break;
        case '\r': sb_puts(b, "\\r"); break;
        default:
            if (c < 0x20 || c == 0x7F) sb_printf(b, "\\u%04x", c);
            else sb_putc(b, (char)c);
        }
        s++;
    }
    sb_putc(b, '"');
}

/* Text inside a "# ..." comment line: one line, valid UTF-8, no control characters. */
static void sb_comment_text(sbuf *b, const char *str) {
    const unsigned char *s = (const unsigned char *)(str ? str : "");
    while (*s) {
        size_t n = utf8_len(s);
        if (n == 0) {
            sb_putc(b, '?');
            s++;
        } else if (n == 1) {
            sb_putc(b, (*s < 0x20 || *s == 0x7F) ? ' ' : (char)*s);
            s++;
        } else {
            for (size_t i = 0; i < n; i++) sb_putc(b, (char)s[i]);
            s += n;
        }
    }
}

/* ------------------------------------------------------------ shared checks */

int st_emit_parse(const char *s, st_emit_kind *out) {
    static const char *const names[] = {"megatron", "deepspeed", "torchtitan"};
    for (size_t i = 0; s && i < sizeof names / sizeof names[0]; i++)
        if (strcmp(s, names[i]) == 0) {
            if (out) *out = (st_emit_kind)i;
            return 0;
        }
    return ST_EINVAL;
}

static const char *model_name(const st_model *m) { return m->name[0] ? m->name : "(unnamed model)"; }

/* 16-bit training: fp8, mxfp8 and nvfp4 keep bf16 weights and activations (st_dtype_quantised) */
static int is16(st_dtype d) { return d == ST_DT_BF16 || d == ST_DT_FP16 || st_dtype_quantised(d); }

/* The arithmetic every target relies on; a finalized plan passes, a hand-made one may not. */
static int check_plan(const st_plan *p, const st_model *m, st_error *err) {
    const struct {
        const char *key;
        int v;
    } deg[] = {{"tp", p->tp}, {"pp", p->pp}, {"dp", p->dp}, {"cp", p->cp}, {"ep", p->ep}, {"vp", p->vp}};
    for (size_t i = 0; i < sizeof deg / sizeof deg[0]; i++)
        if (deg[i].v < 1 || deg[i].v > ST_MAX_GPUS)
            return st_error_set(err, ST_EINVAL, NULL, deg[i].key, "must be between 1 and %d, got %d",
                                ST_MAX_GPUS, deg[i].v);
    if (p->mbs < 1) return st_error_set(err, ST_EINVAL, NULL, "mbs", "must be at least 1");
    if (p->gbs < 1) return st_error_set(err, ST_EINVAL, NULL, "gbs", "must be at least 1");
    if (p->seq < 1 || p->seq > ST_MAX_SEQ)
        return st_error_set(err, ST_EINVAL, NULL, "seq", "must be between 1 and %d", ST_MAX_SEQ);
    /* Megatron-LM, DeepSpeed and torchtitan give every data-parallel rank the same micro-batch
     * count (gbs / (dp mbs)) and average gradients with equal weights: none runs a Whale-style split */
    if (p->ndp_batches)
        return st_error_set(err, ST_EINVAL, NULL, "dp_batches",
                            "uneven micro-batches per data-parallel replica: Megatron-LM, DeepSpeed and torchtitan "
                            "give every replica gbs/dp and weigh gradients equally; use an even plan");
    if (p->gbs % ((int64_t)p->dp * p->mbs) != 0)
        return st_error_set(err, ST_EINVAL, NULL, "gbs",
                            "global batch %" PRId64 " is not a multiple of dp*mbs = %d*%" PRId64, p->gbs,
                            p->dp, p->mbs);
    if (p->zero < 0 || p->zero > 3) return st_error_set(err, ST_EINVAL, NULL, "zero", "must be 0..3");
    if ((unsigned)p->recompute > ST_REC_OP)
        return st_error_set(err, ST_EINVAL, NULL, "recompute", "unknown recompute mode");
    if ((unsigned)p->offload > ST_OFF_PARAMS)
        return st_error_set(err, ST_EINVAL, NULL, "offload", "unknown offload mode");
    /* Elixir's (ColossalAI Gemini's) chunk placement: none of the three frameworks keeps part of the
     * weights, or of the saved activations, in host memory this way */
    if (p->offload_params > 0)
        return st_error_set(err, ST_EINVAL, NULL, "offload_params",
                            "a fraction of the weights in host memory: Megatron-LM, DeepSpeed and torchtitan "
                            "offload all or none (DeepSpeed's offload_param with ZeRO-3: offload=params)");
    if (p->offload_activations > 0)
        return st_error_set(err, ST_EINVAL, NULL, "offload_activations",
                            "a fraction of the saved activations in host memory is not one of the emitted "
                            "frameworks' options");
    if ((unsigned)p->dtype >= ST_DT_COUNT) return st_error_set(err, ST_EINVAL, NULL, "dtype", "unknown dtype");
    if ((unsigned)p->schedule > ST_SCHED_DUALPIPE)
        return st_error_set(err, ST_EINVAL, NULL, "schedule", "unknown schedule");
    if ((unsigned)p->attention >= ST_ATTN_COUNT)
        return st_error_set(err, ST_EINVAL, NULL, "attention", "unknown attention kind");
    if ((unsigned)p->kernels > ST_KERN_COMPILE)
        return st_error_set(err, ST_EINVAL, NULL, "kernels", "unknown kernels kind");
    if (m->layers < 1 || m->layers > ST_MAX_LAYERS)
        return st_error_set(err, ST_EINVAL, NULL, "layers", "model must have 1..%d layers", ST_MAX_LAYERS);
    if ((int64_t)p->pp * p->vp > ST_MAX_STAGES)
        return st_error_set(err, ST_EINVAL, NULL, "vp", "pp*vp = %" PRId64 " exceeds %d pipeline chunks",
                            (int64_t)p->pp * p->vp, ST_MAX_STAGES);
    if (p->vp > 1 && p->pp == 1)
        return st_error_set(err, ST_EINVAL, NULL, "vp", "virtual pipeline stages need pp > 1");
    if (p->nstage_layers != 0) {
        if (p->nstage_layers != p->pp * p->vp)
            return st_error_set(err, ST_EINVAL, NULL, "stage_layers",
                                "has %d entries, expected pp*vp = %d", p->nstage_layers, p->pp * p->vp);
        int64_t sum = 0;
        for (int i = 0; i < p->nstage_layers; i++) {
            if (p->stage_layers[i] < 0)
                return st_error_set(err, ST_EINVAL, NULL, "stage_layers", "entry %d is negative", i);
            sum += p->stage_layers[i];
        }
        if (sum != m->layers)
            return st_error_set(err, ST_EINVAL, NULL, "stage_layers",
                                "entries sum to %" PRId64 ", the model has %" PRId64 " layers", sum, m->layers);
    }
    return 0;
}

/* Transformer layers of each of the pp*vp chunks in chunk order (chunk j on stage j % pp): the
 * plan's explicit split, else an even one, else the split the estimator used. *out is new; free. */
static int chunk_layers(const st_plan *p, const st_model *m, int **out, st_error *err) {
    int n = p->pp * p->vp;
    int *c = calloc((size_t)n, sizeof *c);
    if (!c) return st_error_set(err, ST_ENOMEM, NULL, NULL, "out of memory");
    if (p->nstage_layers == n) memcpy(c, p->stage_layers, (size_t)n * sizeof *c);
    else if (m->layers % n == 0)
        for (int i = 0; i < n; i++) c[i] = (int)(m->layers / n);
    else st_plan_chunk_layers(p, m, c);
    int64_t sum = 0;
    for (int i = 0; i < n; i++) sum += c[i];
    if (sum != m->layers) {
        free(c);
        return st_error_set(err, ST_EINTERNAL, NULL, "stage_layers",
                            "pipeline chunks hold %" PRId64 " layers, the model has %" PRId64, sum, m->layers);
    }
    *out = c;
    return 0;
}

static int64_t plan_gpus(const st_plan *p) { return st_plan_gpus(p); }

/* "# cluster: NAME, N nodes x G GPUs" when the plan's GPU count fills whole nodes. */
static void comment_cluster(sbuf *b, const st_plan *p, const st_cluster *c) {
    if (!c || c->gpus_per_node < 1) return;
    int64_t gpus = plan_gpus(p);
    sb_puts(b, "# cluster: ");
    sb_comment_text(b, c->name[0] ? c->name : "(unnamed cluster)");
    if (gpus % c->gpus_per_node == 0)
        sb_printf(b, ", %" PRId64 " nodes x %" PRId64 " GPUs\n", gpus / c->gpus_per_node, c->gpus_per_node);
    else sb_printf(b, ", %" PRId64 " GPUs per node\n", c->gpus_per_node);
}

static void comment_model(sbuf *b, const st_model *m) {
    sb_puts(b, "# model: ");
    sb_comment_text(b, model_name(m));
    sb_printf(b, ": %" PRId64 " layers, hidden %" PRId64 ", %" PRId64 " heads (%" PRId64
                 " kv), ffn %" PRId64 ", vocab %" PRId64,
              m->layers, m->hidden, m->heads, m->kv_heads, m->ffn, m->vocab);
    if (m->experts > 0) sb_printf(b, ", %" PRId64 " experts top-%" PRId64, m->experts, m->experts_topk);
    sb_puts(b, "\n");
}

/* ------------------------------------------------------------ megatron */

typedef struct flagw {
    sbuf *b;
    int n;
} flagw;

static void flag(flagw *w, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* One flag per line; every line but the last ends in " \" (written when the next flag comes). */
static void flag(flagw *w, const char *fmt, ...) {
    char line[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (w->n++ > 0) sb_puts(w->b, " \\\n");
    sb_puts(w->b, line);
}

/* --moe-layer-freq: an integer N makes block i MoE when i % N == 0 (the first of each group);
 * strata's MoE blocks are the last of each group (st_model_layer_is_moe), which needs Megatron-LM's
 * list form, a Python expression of one 0/1 entry per block, quoted for the shell. */
static void moe_layer_freq(flagw *w, const st_model *m) {
    int64_t n = m->moe_every > 0 ? m->moe_every : 1;
    if (m->first_dense > 0) {
        /* dense-first blocks: the per-layer list as runs, "[0]*3+[1]*58" (moe_freq_type) */
        /* written straight into the output: one run per change, as long as the model needs (a
         * fixed line would cut a 120-block alternating list mid-entry) */
        if (w->n++ > 0) sb_puts(w->b, " \\\n");
        sb_puts(w->b, "--moe-layer-freq '");
        for (int64_t l = 0; l < m->layers;) {
            int moe = st_model_layer_is_moe(m, l);
            int64_t r = l;
            while (r < m->layers && st_model_layer_is_moe(m, r) == moe) r++;
            sb_printf(w->b, "%s[%d]*%" PRId64, l ? "+" : "", moe, r - l);
            l = r;
        }
        sb_puts(w->b, "'");
        return;
    }
    if (n == 1) {
        flag(w, "--moe-layer-freq 1");
        return;
    }
    if (m->layers % n == 0)
        flag(w, "--moe-layer-freq '([0]*%" PRId64 "+[1])*%" PRId64 "'", n - 1, m->layers / n);
    else
        flag(w, "--moe-layer-freq '([0]*%" PRId64 "+[1])*%" PRId64 "+[0]*%" PRId64 "'", n - 1, m->layers / n,
             m->layers % n);
}

static const char *const suggest = "use --emit deepspeed or --emit torchtitan";

/* The model structure (issue 15) that the target's pretrain_gpt.py has no flag for (file comment):
 * a plan priced with it cannot be handed over as priced, so it is refused naming the model key. */
static int megatron_structure(const st_model *m, st_error *err) {
    int mixers = 0, ffns = 0;
    for (const char *c = m->layer_pattern; *c; c++) mixers |= *c != 'T'; /* every Megatron block has both halves */
    for (int64_t l = 0; l < ST_MAX_PATTERN; l++) ffns |= m->layer_ffn[l] > 0;
    const struct {
        int on;
        const char *key, *what;
    } no[] = {
        {m->index_topk > 0, "index_topk", "DeepSeek Sparse Attention's indexer"},
        {mixers, "layer_pattern", "Mamba-2, Gated DeltaNet, attention-only or MLP-only blocks"},
        {ffns, "layer_ffn", "per-block FFN sizes"},
        {m->global_head_dim || m->global_kv_heads || m->global_k_eq_v, "global_head_dim",
         "global blocks with heads of their own"},
        {m->attn_out_gate, "attn_out_gate", "a gated attention output"},
        {m->parallel_block, "parallel_block", "parallel attention and MLP"},
        {m->qk_norm == 2, "qk_norm", "full-width query/key norms (--qk-layernorm is per head)"},
    };
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++)
        if (no[i].on)
            return st_error_set(err, ST_EINVAL, NULL, no[i].key, "%s's pretrain_gpt.py has no flag for %s (%s)",
                                MEGATRON_TARGET, no[i].what, no[i].key);
    return 0;
}

static int emit_megatron(sbuf *b, const st_plan *p, const st_model *m, const st_cluster *c,
                         const char *spec, st_error *err) {
    int rc = 0;
    int *chunks = NULL;
    int first = 0, last = 0; /* uneven first/last stage layer counts, 0 = not set */
    int layout = 0;          /* uneven interleaved chunks: --pipeline-model-parallel-layout */

    if ((rc = megatron_structure(m, err)) != 0) return rc; /* the model's, before any plan's reason */
    if (p->kernels != ST_KERN_FUSED)
        return st_error_set(err, ST_EINVAL, NULL, "kernels",
                            "%s runs fused kernels (Transformer Engine's); kernels=%s is torchtitan's (%s); %s",
                            MEGATRON_TARGET, st_kernels_name(p->kernels),
                            p->kernels == ST_KERN_EAGER ? "without torch.compile" : "torch.compile per block",
                            suggest);
    if (p->pp_partition)
        return st_error_set(err, ST_EINVAL, NULL, "pp_partition",
                            "%s sends pipeline messages whole (--scatter-gather-tensors-in-pipeline left Megatron-LM "
                            "in 2023); pp_partition=1 is DeepSpeed's pipeline engine: use --emit deepspeed",
                            MEGATRON_TARGET);
    if (p->zero >= 2)
        return st_error_set(err, ST_EINVAL, NULL, "zero",
                            "%s has no ZeRO stage %d (its distributed optimizer is ZeRO-1); %s",
                            MEGATRON_TARGET, p->zero, suggest);
    if (p->offload != ST_OFF_NONE)
        return st_error_set(err, ST_EINVAL, NULL, "offload", "%s does not offload %s to CPU memory; %s",
                            MEGATRON_TARGET, p->offload == ST_OFF_PARAMS ? "parameters" : "optimizer states",
                            suggest);
    if (p->schedule == ST_SCHED_ZBV || p->schedule == ST_SCHED_DUALPIPE)
        return st_error_set(err, ST_EINVAL, NULL, "schedule",
                            "%s has no V-shaped zero-bubble schedule (ZB-V) and no DualPipe; %s",
                            MEGATRON_TARGET,
                            p->schedule == ST_SCHED_ZBV ? "use --emit torchtitan (ZBVZeroBubble) or schedule=1f1b or "
                                                          "interleaved"
                                                        : "use schedule=1f1b or interleaved");
    if (p->pp > 1 && (p->schedule == ST_SCHED_GPIPE || p->schedule == ST_SCHED_ZB))
        return st_error_set(err, ST_EINVAL, NULL, "schedule",
                            "%s runs 1F1B and interleaved 1F1B only, not %s; %s", MEGATRON_TARGET,
                            p->schedule == ST_SCHED_GPIPE ? "GPipe" : "zero-bubble", suggest);
    if (m->position == ST_POS_ALIBI)
        return st_error_set(err, ST_EINVAL, NULL, "position",
                            "%s has no ALiBi position embedding (learned_absolute or rope only)",
                            MEGATRON_TARGET);
    if (m->activation == ST_ACT_RELU)
        return st_error_set(err, ST_EINVAL, NULL, "activation",
                            "%s's GPT model has no plain ReLU MLP flag (gelu by default, --swiglu)",
                            MEGATRON_TARGET);
    if (m->experts <= 0 && p->ep > 1)
        return st_error_set(err, ST_EINVAL, NULL, "ep", "expert parallelism needs an MoE model");

    if ((rc = chunk_layers(p, m, &chunks, err)) != 0) goto out;
    {
        int n = p->pp * p->vp, even = 1;
        for (int i = 0; i < n; i++) {
            if (chunks[i] < 1) {
                rc = st_error_set(err, ST_EINVAL, NULL, "stage_layers",
                                  "pipeline chunk %d has no transformer layer, which %s cannot express", i,
                                  MEGATRON_TARGET);
                goto out;
            }
            if (chunks[i] != chunks[0]) even = 0;
        }
        if (!even && p->vp > 1) {
            layout = 1; /* --pipeline-model-parallel-layout, below */
        } else if (!even && p->pp == 2) {
            first = chunks[0]; /* the last stage takes the rest */
        } else if (!even) {
            int mid = chunks[1];
            for (int i = 2; i < p->pp - 1; i++)
                if (chunks[i] != mid) {
                    char list[128];
                    size_t off = 0;
                    for (int j = 0; j < p->pp && off < sizeof list; j++) {
                        int w_ = snprintf(list + off, sizeof list - off, "%s%d", j ? "," : "", chunks[j]);
                        if (w_ < 0) break;
                        off += (size_t)w_;
                    }
                    rc = st_error_set(err, ST_EINVAL, NULL, "stage_layers",
                                      "split %s is not expressible in %s: only the first and last stage may "
                                      "differ from the evenly split middle stages; give stage_layers with "
                                      "equal middle stages",
                                      list, MEGATRON_TARGET);
                    goto out;
                }
            if (chunks[0] != mid) first = chunks[0];
            if (chunks[p->pp - 1] != mid) last = chunks[p->pp - 1];
        }
    }

    /* header */
    sb_puts(b, "# strata plan: ");
    sb_comment_text(b, spec);
    sb_puts(b, "\n");
    comment_model(b, m);
    sb_puts(b, "# target: " MEGATRON_TARGET ", pretrain_gpt.py arguments (megatron/training/arguments.py)\n");
    sb_printf(b,
              "# world size %" PRId64 " GPUs = tp %d x pp %d x cp %d x dp %d; Megatron-LM derives the "
              "data-parallel size %d from the world size\n",
              plan_gpus(p), p->tp, p->pp, p->cp, p->dp, p->dp);
    comment_cluster(b, p, c);
    sb_printf(b, "# not emitted: data, tokenizer (strata assumed a vocabulary of %" PRId64
                 "), optimizer, learning-rate, iteration and checkpoint flags\n",
              m->vocab);
    if (p->sp && p->tp == 1) sb_puts(b, "# note: sp=1 without tensor parallelism does nothing; left out\n");
    if (p->recompute == ST_REC_OP)
        sb_puts(b, "# note: recompute=op is torchtitan's op-level selective checkpointing; Megatron-LM has no "
                   "such flag, so none is emitted\n");
    if (p->dtype == ST_DT_BF16 || st_dtype_quantised(p->dtype)) {
        if (p->grad_bytes == 2)
            sb_puts(b, "# note: --bf16 makes Megatron-LM accumulate and all-reduce gradients in fp32 "
                       "(4 bytes); the plan assumed 2-byte gradients\n");
    }
    if (p->fp8_param_gather && p->dtype == ST_DT_MXFP8)
        sb_puts(b, "# note: fp8_param_gather with mxfp8 was priced as Megatron Bridge's recipe runs it: "
                   "DistributedDataParallelConfig reuse_grad_buf_for_mxfp8_param_ag=True (the 16-bit weights "
                   "gathered through the gradient buffer, then quantised); set it there\n");
    if (p->dtype == ST_DT_TF32)
        sb_puts(b, "# note: tf32 is a PyTorch matmul setting, not a Megatron-LM flag; parameters stay fp32\n");
    if (m->position == ST_POS_ROPE && m->rope_theta <= 0)
        sb_puts(b, "# note: --rotary-base is not emitted: the model gives no RoPE base (rope_theta); "
                   "Megatron-LM's default is 10000, set the model's own (Llama 3: 500000)\n");
    if (m->experts > 0)
        sb_puts(b, "# note: MoE as strata priced it: all-to-all token dispatch, grouped expert GEMMs (Transformer "
                   "Engine or the grouped_gemm package), balanced expert loads (the aux-loss coefficient is "
                   "Megatron-LM's examples' 1e-2, a training choice)\n");

    flagw w = {b, 0};
    /* parallelism */
    flag(&w, "--tensor-model-parallel-size %d", p->tp);
    flag(&w, "--pipeline-model-parallel-size %d", p->pp);
    if (layout) {
        /* Megatron-LM's custom layout (arguments.py; megatron/core/transformer/pipeline_parallel_layer_layout.py,
         * PipelineParallelLayerLayout): the pp*vp virtual stages in chunk order (chunk j on rank j % pp, as
         * strata places them), split by '|', "t*N" N transformer layers, E the embedding, L the loss; it sets
         * the virtual pipeline size itself and excludes --num-layers-per-virtual-pipeline-stage. Quoted: '|'
         * and '*' are shell syntax. */
        if (w.n++ > 0) sb_puts(b, " \\\n");
        sb_puts(b, "--pipeline-model-parallel-layout 'E");
        for (int i = 0; i < p->pp * p->vp; i++) sb_printf(b, "%st*%d", i ? "|" : ",", chunks[i]);
        sb_puts(b, ",L'");
    } else if (p->vp > 1) {
        flag(&w, "--num-layers-per-virtual-pipeline-stage %d", chunks[0]);
    }
    if (first) flag(&w, "--decoder-first-pipeline-num-layers %d", first);
    if (last) flag(&w, "--decoder-last-pipeline-num-layers %d", last);
    flag(&w, "--context-parallel-size %d", p->cp);
    /* Megatron-LM's --cp-comm-type takes strata's cp_comm spellings (p2p is its default) */
    if (p->cp > 1 && p->cp_comm != ST_CP_P2P) flag(&w, "--cp-comm-type %s", st_cp_comm_name(p->cp_comm));
    if (m->experts > 0) flag(&w, "--expert-model-parallel-size %d", p->ep);
    if (p->sp && p->tp > 1) flag(&w, "--sequence-parallel");
    /* batch and sequence */
    flag(&w, "--micro-batch-size %" PRId64, p->mbs);
    flag(&w, "--global-batch-size %" PRId64, p->gbs);
    flag(&w, "--seq-length %" PRId64, p->seq);
    flag(&w, "--max-position-embeddings %" PRId64, p->seq > m->seq_len ? p->seq : m->seq_len);
    /* model shape */
    flag(&w, "--num-layers %" PRId64, m->layers);
    flag(&w, "--hidden-size %" PRId64, m->hidden);
    flag(&w, "--num-attention-heads %" PRId64, m->heads);
    if (m->kv_heads > 0 && m->kv_heads < m->heads) {
        flag(&w, "--group-query-attention");
        flag(&w, "--num-query-groups %" PRId64, m->kv_heads);
    }
    if (m->head_dim > 0 && m->head_dim * m->heads != m->hidden && m->kv_lora_rank == 0)
        flag(&w, "--kv-channels %" PRId64, m->head_dim);
    if (m->kv_lora_rank > 0) { /* MLA's own head shapes (arguments.py's mla group) */
        flag(&w, "--multi-latent-attention");
        if (m->q_lora_rank > 0) flag(&w, "--q-lora-rank %" PRId64, m->q_lora_rank);
        flag(&w, "--kv-lora-rank %" PRId64, m->kv_lora_rank);
        flag(&w, "--qk-head-dim %" PRId64, m->qk_nope_dim);
        flag(&w, "--qk-pos-emb-head-dim %" PRId64, m->qk_rope_dim);
        flag(&w, "--v-head-dim %" PRId64, m->v_head_dim);
    }
    if (m->qk_norm == 1) flag(&w, "--qk-layernorm");
    if (m->qkv_bias) flag(&w, "--add-qkv-bias");
    if (m->attn_sinks) flag(&w, "--softmax-type learnable");
    if (m->window > 0) {
        flag(&w, "--window-size %" PRId64 ",0", m->window);
        if (m->global_every > 0) flag(&w, "--window-attn-skip-freq %" PRId64, m->global_every);
    }
    if (m->mtp_layers > 0) flag(&w, "--mtp-num-layers %" PRId64, m->mtp_layers);
    flag(&w, "--ffn-hidden-size %" PRId64, m->ffn);
    if (m->activation == ST_ACT_SWIGLU) flag(&w, "--swiglu");
    if (m->norm == ST_NORM_RMSNORM) flag(&w, "--normalization RMSNorm");
    flag(&w, "--position-embedding-type %s", m->position == ST_POS_ROPE ? "rope" : "learned_absolute");
    /* the model's RoPE base (argparse type int in arguments.py) */
    if (m->position == ST_POS_ROPE && m->rope_theta > 0) flag(&w, "--rotary-base %.0f", m->rope_theta);
    if (!m->tied_embeddings) flag(&w, "--untie-embeddings-and-output-weights");
    if (!m->bias) flag(&w, "--disable-bias-linear");
    if (!m->dropout) {
        flag(&w, "--attention-dropout 0");
        flag(&w, "--hidden-dropout 0");
    }
    if (m->experts > 0) {
        flag(&w, "--num-experts %" PRId64, m->experts);
        flag(&w, "--moe-router-topk %" PRId64, m->experts_topk > 0 ? m->experts_topk : 1);
        if (m->moe_ffn > 0 && m->moe_ffn != m->ffn) flag(&w, "--moe-ffn-hidden-size %" PRId64, m->moe_ffn);
        if (m->shared_experts > 0)
            flag(&w, "--moe-shared-expert-intermediate-size %" PRId64, m->shared_experts * m->shared_ffn);
        if (m->router_groups > 0) {
            flag(&w, "--moe-router-num-groups %" PRId64, m->router_groups);
            flag(&w, "--moe-router-group-topk %" PRId64, m->router_group_topk);
        }
        if (m->capacity_factor > 0) {
            flag(&w, "--moe-expert-capacity-factor %g", m->capacity_factor);
            flag(&w, "--moe-pad-expert-input-to-capacity");
        }
        moe_layer_freq(&w, m);
        /* the default dispatcher (allgather) gathers every token on every ep rank; strata priced
         * the all-to-all exchange */
        flag(&w, "--moe-token-dispatcher-type alltoall");
        flag(&w, "--moe-grouped-gemm");
        flag(&w, "--moe-router-load-balancing-type aux_loss");
        flag(&w, "--moe-aux-loss-coeff 1e-2");
    }
    /* Transformer Engine's attention: FlashAttention's kernels (flash, fa2), cuDNN's fused
     * attention (cudnn) or the unfused core attention (the default, auto, lets TE pick among them,
     * and on Hopper it picks cuDNN's) */
    flag(&w, "--attention-backend %s",
         p->attention == ST_ATTN_UNFUSED ? "unfused" : p->attention == ST_ATTN_CUDNN ? "fused" : "flash");
    /* memory */
    if (p->recompute == ST_REC_SELECTIVE) flag(&w, "--recompute-activations");
    if (p->recompute == ST_REC_FULL) {
        flag(&w, "--recompute-granularity full");
        flag(&w, "--recompute-method uniform");
        flag(&w, "--recompute-num-layers 1");
    }
    if (p->zero == 1) flag(&w, "--use-distributed-optimizer");
    /* precision */
    if (p->dtype == ST_DT_BF16 || st_dtype_quantised(p->dtype)) flag(&w, "--bf16");
    if (p->dtype == ST_DT_FP16) flag(&w, "--fp16");
    if (p->dtype == ST_DT_FP8) flag(&w, "--fp8-format hybrid");
    /* the target's block-scaled recipes: --fp8-recipe mxfp8 (E4M3 for every tensor, one E8M0 scale per 32)
     * and --fp4-format e2m1 --fp4-recipe nvfp4; strata prices every block's linear layers in the format, so
     * --first-last-layers-bf16 (the NVFP4 paper's bf16 ends) is left off, as priced */
    if (p->dtype == ST_DT_MXFP8) {
        flag(&w, "--fp8-format e4m3");
        flag(&w, "--fp8-recipe mxfp8");
    }
    if (p->dtype == ST_DT_NVFP4) {
        flag(&w, "--fp4-format e2m1");
        flag(&w, "--fp4-recipe nvfp4");
    }
    if (p->grad_bytes == 4 && is16(p->dtype)) flag(&w, "--accumulate-allreduce-grads-in-fp32");
    if (p->overlap_grad_reduce) flag(&w, "--overlap-grad-reduce");
    /* (plan.c refuses it without zero 1-2 and overlap_grad_reduce, as validate_args does) */
    if (p->overlap_param_gather) flag(&w, "--overlap-param-gather");
    /* fp8/mxfp8 weights only, gathered by the distributed optimizer (plan.c: zero 1-2) */
    if (p->fp8_param_gather) flag(&w, "--fp8-param-gather");
    /* Transformer Engine's userbuffers with their default configurations (sp is on: plan.c) */
    if (p->tp_overlap) flag(&w, "--tp-comm-overlap");
    if (m->vocab_pad_multiple >= 1) flag(&w, "--make-vocab-size-divisible-by %" PRId64, m->vocab_pad_multiple);
    sb_puts(b, "\n");

out:
    free(chunks);
    return rc;
}

/* ------------------------------------------------------------ deepspeed */

static const char *jbool(int v) { return v ? "true" : "false"; }

/* The MoE shapes DeepSpeed's MoE layer cannot run as strata priced them (deepspeed/moe/layer.py MoE and
 * sharded_moe.py TopKGate, which Megatron-DeepSpeed wraps around its ParallelMLP): its experts are
 * the model's MLP (one --ffn-hidden-size for dense and expert blocks), MoE blocks come every
 * --expert-interval blocks from the first (no dense-first run), the gate picks top-k over all
 * experts (no group-limited routing), and its one residual MLP (use_residual, PR-MoE) is mixed in by
 * a learned coefficient beside experts of the same shape: one shared expert of the experts' size. */
static int deepspeed_moe(const st_model *m, st_error *err) {
    if (m->experts <= 0) return 0;
    int64_t fe = m->moe_ffn > 0 ? m->moe_ffn : m->ffn, fs = m->shared_ffn > 0 ? m->shared_ffn : fe; /* 0: derive */
    const struct {
        int on;
        const char *key, *what;
    } no[] = {
        {fe != m->ffn, "moe_ffn", "experts of another FFN size than the dense blocks'"},
        {m->first_dense > 0, "first_dense", "dense blocks before the first MoE block"},
        {m->layer_pattern[0] != 0, "layer_pattern", "a per-block pattern"},
        {m->router_groups > 0, "router_groups", "group-limited routing"},
        {m->shared_experts > 1 || (m->shared_experts == 1 && fs != fe), "shared_experts",
         "shared experts other than one of the experts' size (its PR-MoE residual MLP)"},
    };
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++)
        if (no[i].on)
            return st_error_set(err, ST_EINVAL, NULL, no[i].key, "%s's MoE layer cannot run %s (%s)",
                                DEEPSPEED_TARGET, no[i].what, no[i].key);
    return 0;
}

static int emit_deepspeed(sbuf *b, const st_plan *p, const st_model *m, const st_cluster *c,
                          const char *spec, st_error *err) {
    int rc = deepspeed_moe(m, err);
    if (rc) return rc;
    if (p->kernels != ST_KERN_FUSED)
        return st_error_set(err, ST_EINVAL, NULL, "kernels",
                            "%s runs Megatron-DeepSpeed's fused kernels; kernels=%s is torchtitan's",
                            DEEPSPEED_TARGET, st_kernels_name(p->kernels));
    /* DeepSpeed's ZeRO 1-2 optimizer holds 16-bit model weights and gathers them; strata priced none */
    if (p->fp8_param_gather)
        return st_error_set(err, ST_EINVAL, NULL, "fp8_param_gather",
                            "%s keeps 16-bit weights beside its ZeRO optimizer and gathers them in 16 bits; it has "
                            "no fp8-only weights; use --emit megatron (--fp8-param-gather)", DEEPSPEED_TARGET);
    if (p->offload != ST_OFF_NONE && p->zero == 0)
        return st_error_set(err, ST_EINVAL, NULL, "offload",
                            "%s offloads only under ZeRO (offload_optimizer needs zero >= 1)", DEEPSPEED_TARGET);
    if (p->offload == ST_OFF_PARAMS && p->zero < 3)
        return st_error_set(err, ST_EINVAL, NULL, "offload",
                            "%s offloads parameters (offload_param) only with ZeRO stage 3, plan has zero=%d",
                            DEEPSPEED_TARGET, p->zero);
    if (m->experts > 0 && p->dp % p->ep != 0)
        return st_error_set(err, ST_EINVAL, NULL, "ep",
                            "%s forms expert-parallel groups inside data parallelism, so ep must divide dp; the "
                            "plan's ep=%d spans context-parallel ranks (dp=%d); use --emit megatron",
                            DEEPSPEED_TARGET, p->ep, p->dp);
    if (p->pp > 1) {
        if (m->experts > 0)
            return st_error_set(err, ST_EINVAL, NULL, "pp",
                                "%s's MoE layers run without pipeline parallelism in Megatron-DeepSpeed (its MoE "
                                "examples set PP_SIZE=1 and --no-pipeline-parallel), the plan has pp=%d; use "
                                "--emit megatron",
                                DEEPSPEED_TARGET, p->pp);
        if (p->zero >= 2)
            return st_error_set(err, ST_EINVAL, NULL, "zero",
                                "%s's pipeline engine supports ZeRO stage 0 or 1 only (pp=%d); use "
                                "--emit torchtitan or pp=1",
                                DEEPSPEED_TARGET, p->pp);
        if (p->schedule == ST_SCHED_GPIPE || p->schedule == ST_SCHED_ZB || p->schedule == ST_SCHED_ZBV ||
            p->schedule == ST_SCHED_DUALPIPE)
            return st_error_set(err, ST_EINVAL, NULL, "schedule",
                                "%s's pipeline engine runs its own 1F1B schedule only, not %s; use --emit "
                                "torchtitan",
                                DEEPSPEED_TARGET,
                                p->schedule == ST_SCHED_GPIPE ? "GPipe"
                                : p->schedule == ST_SCHED_ZB  ? "zero-bubble"
                                : p->schedule == ST_SCHED_ZBV ? "the V-shaped zero-bubble schedule (ZB-V)"
                                                              : "DualPipe");
        if (p->vp > 1)
            return st_error_set(err, ST_EINVAL, NULL, "vp",
                                "%s's pipeline engine does not interleave virtual stages; use --emit "
                                "megatron or --emit torchtitan",
                                DEEPSPEED_TARGET);
    }
    int64_t gas = p->gbs / ((int64_t)p->dp * p->mbs);
    int partition = p->recompute == ST_REC_FULL && p->tp > 1 && !p->sp;

    sb_puts(b, "{\n");
    sb_printf(b, "  \"train_batch_size\": %" PRId64 ",\n", p->gbs);
    sb_printf(b, "  \"train_micro_batch_size_per_gpu\": %" PRId64 ",\n", p->mbs);
    sb_printf(b, "  \"gradient_accumulation_steps\": %" PRId64 ",\n", gas);
    sb_puts(b, "  \"steps_per_print\": 10,\n");
    sb_puts(b, "  \"gradient_clipping\": 1.0,\n");
    sb_puts(b, "  \"zero_optimization\": {\n");
    sb_printf(b, "    \"stage\": %d", p->zero);
    if (p->zero >= 1) {
        sb_printf(b, ",\n    \"overlap_comm\": %s", jbool(p->overlap_grad_reduce));
        sb_puts(b, ",\n    \"contiguous_gradients\": true");
    }
    if (p->offload != ST_OFF_NONE)
        sb_puts(b, ",\n    \"offload_optimizer\": {\n      \"device\": \"cpu\",\n      \"pin_memory\": true\n    }");
    if (p->offload == ST_OFF_PARAMS)
        sb_puts(b, ",\n    \"offload_param\": {\n      \"device\": \"cpu\",\n      \"pin_memory\": true\n    }");
    sb_puts(b, "\n  },\n");
    if (p->dtype == ST_DT_BF16 || st_dtype_quantised(p->dtype))
        sb_puts(b, "  \"bf16\": {\n    \"enabled\": true\n  },\n");
    if (p->dtype == ST_DT_FP16)
        sb_puts(b, "  \"fp16\": {\n    \"enabled\": true,\n    \"loss_scale\": 0,\n"
                   "    \"initial_scale_power\": 16,\n    \"loss_scale_window\": 1000,\n"
                   "    \"hysteresis\": 2,\n    \"min_loss_scale\": 1\n  },\n");
    if (p->recompute != ST_REC_NONE) {
        sb_puts(b, "  \"activation_checkpointing\": {\n");
        sb_printf(b, "    \"partition_activations\": %s,\n", jbool(partition));
        sb_puts(b, "    \"cpu_checkpointing\": false,\n    \"contiguous_memory_optimization\": false,\n"
                   "    \"synchronize_checkpoint_boundary\": false,\n    \"profile\": false\n  },\n");
    }
    /* the pipeline engine splits each pipeline message over the tp group unless told not to
     * (runtime/config.py's pipeline defaults pipe_partitioned and grad_partitioned true; pipe/engine.py
     * is_pipe_partitioned = is_model_parallel and pipe_partitioned): say which the plan priced */
    if (p->pp > 1 && p->tp > 1)
        sb_printf(b, "  \"pipeline\": {\n    \"pipe_partitioned\": %s,\n    \"grad_partitioned\": %s\n  },\n",
                  jbool(p->pp_partition), jbool(p->pp_partition));
    sb_puts(b, "  \"wall_clock_breakdown\": false,\n");

    /* everything DeepSpeed itself does not read */
    sb_puts(b, "  \"strata\": {\n");
    sb_puts(b, "    \"target\": \"" DEEPSPEED_TARGET " ds_config; the parallel degrees below are launch "
               "flags of Megatron-DeepSpeed; DeepSpeed ignores this key\",\n");
    sb_puts(b, "    \"spec\": ");
    sb_quoted(b, spec);
    sb_puts(b, ",\n    \"model\": ");
    sb_quoted(b, m->name);
    sb_puts(b, ",\n");
    if (c) {
        sb_puts(b, "    \"cluster\": ");
        sb_quoted(b, c->name);
        sb_puts(b, ",\n");
    }
    sb_printf(b, "    \"gpus\": %" PRId64 ",\n", plan_gpus(p));
    sb_printf(b, "    \"tp\": %d,\n    \"pp\": %d,\n    \"dp\": %d,\n    \"cp\": %d,\n    \"ep\": %d,\n"
                 "    \"vp\": %d,\n",
              p->tp, p->pp, p->dp, p->cp, p->ep, p->vp);
    sb_printf(b, "    \"sp\": %s,\n", jbool(p->sp && p->tp > 1));
    sb_printf(b, "    \"seq\": %" PRId64 ",\n", p->seq);
    sb_puts(b, "    \"recompute\": ");
    sb_quoted(b, st_recompute_name(p->recompute));
    sb_puts(b, ",\n    \"dtype\": ");
    sb_quoted(b, st_dtype_name(p->dtype));
    sb_puts(b, ",\n    \"attention\": ");
    sb_quoted(b, st_attention_name(p->attention));
    sb_puts(b, ",\n");
    if (m->experts > 0)
        sb_printf(b,
                  "    \"moe\": {\n      \"num_experts\": %" PRId64 ",\n      \"ep_size\": %d,\n      \"k\": %" PRId64
                  ",\n      \"moe_every\": %" PRId64 "\n    },\n",
                  m->experts, p->ep, m->experts_topk > 0 ? m->experts_topk : 1, m->moe_every > 0 ? m->moe_every : 1);
    if (p->nstage_layers > 0) {
        sb_puts(b, "    \"stage_layers\": [");
        for (int i = 0; i < p->nstage_layers; i++) sb_printf(b, "%s%d", i ? ", " : "", p->stage_layers[i]);
        sb_puts(b, "],\n");
    }
    sb_puts(b, "    \"notes\": [\n      \"train_batch_size = train_micro_batch_size_per_gpu x "
               "gradient_accumulation_steps x dp\"");
    if (p->recompute == ST_REC_OP)
        sb_puts(b, ",\n      \"recompute=op is torchtitan's op-level selective checkpointing; activation_checkpointing "
                   "configures full-layer checkpoints instead\"");
    if (p->recompute == ST_REC_SELECTIVE)
        sb_puts(b, ",\n      \"recompute=selective is Megatron's granularity (attention core only); set "
                   "it with the Megatron-DeepSpeed flags, activation_checkpointing configures full-layer "
                   "checkpoints\"");
    if (p->attention == ST_ATTN_FLASH || p->attention == ST_ATTN_FA2)
        sb_puts(b, ",\n      \"attention=flash: launch Megatron-DeepSpeed with --use-flash-attn-v2; ds_config "
                   "has no attention key\"");
    else if (p->attention == ST_ATTN_CUDNN)
        sb_puts(b, ",\n      \"attention=cudnn: Megatron-DeepSpeed has no cuDNN fused attention; "
                   "--use-flash-attn-v2 runs FlashAttention-2 (price it with attention=fa2)\"");
    else
        sb_puts(b, ",\n      \"attention=unfused: Megatron-DeepSpeed's own core attention, no --use-flash-attn-* "
                   "flag\"");
    if (p->cp > 1)
        sb_puts(b, p->cp_comm == ST_CP_A2A
                       ? ",\n      \"cp > 1, cp_comm=a2a: strata priced all-to-all context parallelism, as "
                         "Megatron-DeepSpeed's sequence parallelism (DeepSpeed-Ulysses) runs it\""
                       : ",\n      \"cp > 1: strata priced ring or all-gather context parallelism; "
                         "Megatron-DeepSpeed's sequence parallelism (DeepSpeed-Ulysses) is cp_comm=a2a\"");
    if (st_dtype_quantised(p->dtype))
        sb_printf(b, ",\n      \"dtype %s: ds_config has no FP8 or FP4 switch in this release; bf16 is emitted, "
                     "enable %s (Transformer Engine) in the model code\"",
                  st_dtype_name(p->dtype),
                  p->dtype == ST_DT_FP8     ? "FP8"
                  : p->dtype == ST_DT_MXFP8 ? "the MXFP8BlockScaling recipe"
                                            : "the NVFP4BlockScaling recipe");
    if (p->dtype == ST_DT_TF32)
        sb_puts(b, ",\n      \"dtype tf32: a PyTorch matmul setting, not a ds_config key; fp32 is emitted\"");
    if (p->zero == 0 && p->overlap_grad_reduce)
        sb_puts(b, ",\n      \"overlap_grad_reduce: overlap_comm is a ZeRO option; not set under zero=0\"");
    if (p->overlap_param_gather)
        sb_puts(b, ",\n      \"overlap_param_gather: DeepSpeed all-gathers the updated weights inside its "
                   "optimizer step, with no key to overlap it with the next forward; strata priced it hidden\"");
    if (p->tp_overlap)
        sb_puts(b, ",\n      \"tp_overlap: ds_config has no tensor-parallel overlap; launch Megatron-DeepSpeed "
                   "with Transformer Engine's userbuffers if your release has them, else the tp collectives show\"");
    if (p->nstage_layers > 0)
        sb_puts(b, ",\n      \"stage_layers: ds_config has no key for it, and PipelineModule's partition_method "
                   "(uniform, parameters, type:REGEX) cannot give layer counts per stage: override "
                   "PipelineModule._partition_layers to set these parts\"");
    if (m->experts > 0) {
        sb_printf(b,
                  ",\n      \"MoE: DeepSpeed's MoE is a model layer (deepspeed.moe.layer.MoE), not a ds_config key: "
                  "launch Megatron-DeepSpeed with --num-experts %" PRId64 " --moe-expert-parallel-size %d --topk %"
                  PRId64 "%s\"",
                  m->experts, p->ep, m->experts_topk > 0 ? m->experts_topk : 1,
                  m->moe_every > 1 ? ", and an MoE layer every moe_every blocks (strata: the last of each group)" : "");
        if (m->capacity_factor > 0)
            sb_printf(b, ",\n      \"MoE: strata priced a capacity factor of %g: --moe-train-capacity-factor %g\"",
                      m->capacity_factor, m->capacity_factor);
        else
            sb_puts(b, ",\n      \"MoE: DeepSpeed gates with a capacity factor (1.0 in training by default) and drops "
                       "tokens past it, where strata priced every routed token; raise --moe-train-capacity-factor if "
                       "loads are uneven\"");
        if (m->shared_experts == 1)
            sb_puts(b, ",\n      \"MoE: the shared expert is DeepSpeed's residual MLP (MoE(use_residual=True), "
                       "PR-MoE), mixed in by a learned coefficient\"");
    }
    sb_puts(b, "\n    ]\n  }\n}\n");
    return 0;
}

/* ------------------------------------------------------------ torchtitan */

/* torchtitan's llama3 flavors (torchtitan/models/llama/__init__.py): FFN size from dim,
 * ffn_dim_multiplier and multiple_of. */
static const struct {
    const char *flavor;
    int64_t layers, hidden, heads, kv_heads, ffn;
} titan_flavors[] = {
    {"8B", 32, 4096, 32, 8, 14336},
    {"70B", 80, 8192, 64, 8, 28672},
    {"405B", 126, 16384, 128, 8, 53248},
};

static const char *titan_schedule(const st_plan *p) {
    switch (p->schedule) {
    case ST_SCHED_GPIPE: return "GPipe";
    /* torch's ScheduleInterleavedZeroBubble ("the ZB1P schedule in the paper"), one stage per rank as the
     * split points give: _get_1f1b_rank_ops with num_1f1b_microbatches = rank, the ZB-H1 order src/lower
     * runs and the estimate prices */
    case ST_SCHED_ZB: return "InterleavedZeroBubble";
    /* torch's ScheduleZBVZeroBubble; torchtitan v0.1.0 places its two stages per rank in a V
     * (torchtitan/distributed/pipeline.py: style "v" for ScheduleZBVZeroBubble, as zbv's chunks);
     * DualPipeV came to torch and torchtitan after that release */
    case ST_SCHED_ZBV: return "ZBVZeroBubble";
    case ST_SCHED_INTERLEAVED: return "Interleaved1F1B";
    case ST_SCHED_1F1B:
    default: return p->vp > 1 ? "Interleaved1F1B" : "1F1B";
    }
}

static int emit_torchtitan(sbuf *b, const st_plan *p, const st_model *m, const st_cluster *c,
                           const char *spec, st_error *err) {
    int rc = 0;
    int *chunks = NULL;
    const char *why = NULL;
    /* Sequences one data-parallel rank takes per optimizer step, and how torchtitan gets there:
     * without a pipeline, gbs/(dp*mbs) accumulation steps of local_batch_size = mbs; with one,
     * a single step whose local batch the schedule splits into micro-batches of mbs. */
    int64_t local = p->gbs / p->dp;
    int64_t local_batch = p->pp > 1 ? local : p->mbs;

    /* torch.distributed.pipelining's DualPipeV (a one-copy variant) came after the targeted release,
     * and DeepSeek-V3's two-copy DualPipe is in no torchtitan release */
    if (p->schedule == ST_SCHED_DUALPIPE)
        return st_error_set(err, ST_EINVAL, NULL, "schedule",
                            "%s has no DualPipe (nor DualPipeV); use schedule=zbv (ZBVZeroBubble) or 1f1b",
                            TORCHTITAN_TARGET);
    if (p->ep > 1)
        return st_error_set(err, ST_EINVAL, NULL, "ep", "%s's llama3 model has no expert parallelism",
                            TORCHTITAN_TARGET);
    /* its converters are torchao's float8 and mx (MXFP8 only: the [mx] recipe_name's one value) */
    if (p->dtype == ST_DT_NVFP4)
        return st_error_set(err, ST_EINVAL, NULL, "dtype", "%s has no nvfp4 training (its mx converter runs mxfp8)",
                            TORCHTITAN_TARGET);
    if (p->pp_partition)
        return st_error_set(err, ST_EINVAL, NULL, "pp_partition",
                            "%s's pipeline sends whole activations; pp_partition=1 is DeepSpeed's pipeline engine: use "
                            "--emit deepspeed",
                            TORCHTITAN_TARGET);
    /* torch.distributed.pipelining's Interleaved1F1B and InterleavedZeroBubble schedules run the
     * micro-batches in rounds of pp and raise ValueError in their constructors unless the count is a
     * multiple of the rounds, max(1, m // pp) (schedules.py: "requires the number of microbatches to be
     * a multiple of the number of rounds") */
    int64_t mb = p->pp > 1 ? local / p->mbs : 0, rounds = mb / p->pp > 1 ? mb / p->pp : 1;
    const char *sched = p->pp > 1 ? titan_schedule(p) : "";
    if ((!strcmp(sched, "Interleaved1F1B") || !strcmp(sched, "InterleavedZeroBubble")) && mb % rounds)
        return st_error_set(err, ST_EINVAL, NULL, "gbs",
                            "%s's %s schedule (torch.distributed.pipelining) needs the %lld micro-batches per "
                            "data-parallel rank to be a multiple of its rounds, max(1, micro-batches / pp) = %lld; "
                            "pick gbs so that they are",
                            TORCHTITAN_TARGET, sched, (long long)mb, (long long)rounds);
    if (p->tp_overlap && p->kernels == ST_KERN_EAGER)
        return st_error_set(err, ST_EINVAL, NULL, "tp_overlap",
                            "%s's async TP needs torch.compile, which kernels=eager turns off", TORCHTITAN_TARGET);
    if (m->experts > 0) why = "is a mixture of experts (llama3 is dense)";
    else if (m->activation != ST_ACT_SWIGLU) why = "does not use SwiGLU";
    else if (m->norm != ST_NORM_RMSNORM) why = "does not use RMSNorm";
    else if (m->position != ST_POS_ROPE) why = "does not use rotary position embeddings";
    else if (m->bias) why = "has biases in its linear layers";
    else if (m->tied_embeddings) why = "ties input and output embeddings";
    if (why)
        return st_error_set(err, ST_EINVAL, NULL, "model",
                            "%s has no such architecture: model %s %s; its llama3 model is the one strata "
                            "can target",
                            TORCHTITAN_TARGET, model_name(m), why);
    if (p->dtype == ST_DT_FP16)
        return st_error_set(err, ST_EINVAL, NULL, "dtype",
                            "%s trains in bfloat16 or float32 (training.mixed_precision_param), not fp16",
                            TORCHTITAN_TARGET);
    if (p->attention == ST_ATTN_UNFUSED)
        return st_error_set(err, ST_EINVAL, NULL, "attention",
                            "%s's llama3 runs attention as F.scaled_dot_product_attention (fused), it has no "
                            "unfused attention; use attention=flash",
                            TORCHTITAN_TARGET);
    if (p->offload == ST_OFF_OPTIMIZER)
        return st_error_set(err, ST_EINVAL, NULL, "offload",
                            "%s offloads parameters, gradients and optimizer states together "
                            "(training.enable_cpu_offload), not the optimizer alone; use offload=params or "
                            "--emit deepspeed",
                            TORCHTITAN_TARGET);
    if (p->offload == ST_OFF_PARAMS && p->zero == 0)
        return st_error_set(err, ST_EINVAL, NULL, "offload",
                            "%s offloads through FSDP2, which needs zero >= 1", TORCHTITAN_TARGET);
    /* float8's FSDP2 fp8 all-gather (enable_fsdp_float8_all_gather) is ZeRO-3's; fp8_param_gather is
     * priced for the distributed optimizer (zero 1-2) only */
    if (p->fp8_param_gather)
        return st_error_set(err, ST_EINVAL, NULL, "fp8_param_gather",
                            "%s has no distributed optimizer with fp8-only weights (its fp8 all-gather is FSDP2's, "
                            "zero=3, which strata does not price with fp8_param_gather); use --emit megatron",
                            TORCHTITAN_TARGET);
    /* strata prices zero 1 and 2 as what they are; FSDP2 would run them as ZeRO-3 at another cost */
    if (p->zero == 1 || p->zero == 2)
        return st_error_set(err, ST_EINVAL, NULL, "zero",
                            "%s shards with FSDP2, which is ZeRO-3 (zero=3); zero=%d has no equivalent there",
                            TORCHTITAN_TARGET, p->zero);
    if (p->zero == 0 && p->dp > 1 && (p->tp > 1 || p->pp > 1 || p->cp > 1))
        return st_error_set(err, ST_EINVAL, NULL, "zero",
                            "%s runs plain data parallelism (DDP, zero=0) only without other parallelism; "
                            "use zero >= 1 (FSDP2)",
                            TORCHTITAN_TARGET);
    if (p->pp > 1) {
        if ((rc = chunk_layers(p, m, &chunks, err)) != 0) goto out;
        for (int i = 0; i < p->pp * p->vp; i++)
            if (chunks[i] < 1) {
                rc = st_error_set(err, ST_EINVAL, NULL, "stage_layers",
                                  "pipeline chunk %d has no transformer layer; split points cannot express it",
                                  i);
                goto out;
            }
    }

    const char *flavor = NULL;
    for (size_t i = 0; i < sizeof titan_flavors / sizeof titan_flavors[0]; i++)
        if (m->layers == titan_flavors[i].layers && m->hidden == titan_flavors[i].hidden &&
            m->heads == titan_flavors[i].heads && m->kv_heads == titan_flavors[i].kv_heads &&
            m->ffn == titan_flavors[i].ffn)
            flavor = titan_flavors[i].flavor;

    /* header */
    sb_puts(b, "# strata plan: ");
    sb_comment_text(b, spec);
    sb_puts(b, "\n");
    comment_model(b, m);
    sb_puts(b, "# target: " TORCHTITAN_TARGET " job config TOML (train_configs/ layout: [parallelism] section, "
               "training.local_batch_size and global_batch_size, parallelism.pipeline_parallel_microbatch_size)\n");
    sb_printf(b,
              "# batch: global %" PRId64 " = local %" PRId64 " x data-parallel %d x %" PRId64
              " gradient-accumulation steps; %" PRId64 " micro-batches of %" PRId64 " per rank and step\n",
              p->gbs, local_batch, p->dp, local / local_batch, local / p->mbs, p->mbs);
    sb_printf(b,
              "# GPUs %" PRId64 " = data-parallel replicate %d x shard %d x cp %d x tp %d x pp %d\n",
              plan_gpus(p), p->zero >= 1 ? 1 : p->dp, p->zero >= 1 ? p->dp : 1, p->cp, p->tp, p->pp);
    comment_cluster(b, p, c);
    sb_printf(b, "# not emitted: tokenizer and dataset (strata assumed a vocabulary of %" PRId64
                 "), optimizer, lr_scheduler, steps, checkpoint and metrics sections\n",
              m->vocab);
    /* training.mixed_precision_param's docstring: applied by fully_shard when the shard degree or cp
     * is > 1, by torch.autocast under DDP or on one device, so not at all with tp or pp alone */
    if (is16(p->dtype) && !(p->zero >= 1 && p->dp > 1) && p->cp == 1 && (p->tp > 1 || p->pp > 1))
        sb_puts(b, "# note: torchtitan applies mixed_precision_param through FSDP2 (shard degree or cp > 1) or "
                   "autocast (DDP or one GPU); with tp or pp alone this release trains in float32\n");
    if (p->tp > 1 && !p->sp)
        sb_puts(b, "# note: torchtitan's tensor parallelism always shards activations along the sequence "
                   "(sp=1); the plan has sp=0\n");
    if (p->tp_overlap)
        sb_puts(b, "# note: tp_overlap is async TP (parallelism.enable_async_tensor_parallel), which "
                   "needs torch.compile (training.compile)\n");
    if (p->kernels == ST_KERN_FUSED)
        sb_puts(b, "# note: torch.compile compiles each block; the final norm and the loss run eager outside "
                   "them, which kernels=compile prices (kernels=fused prices them fused)\n");
    if (p->dtype == ST_DT_FP8)
        sb_puts(b, "# note: dtype fp8 is torchao's float8 training (model.converters = [\"float8\"], tensorwise "
                   "scaling): it needs torchao installed and a GPU with FP8 tensor cores; the rest runs in bfloat16\n");
    if (p->dtype == ST_DT_MXFP8)
        sb_puts(b, "# note: dtype mxfp8 is torchao's MX training (model.converters = [\"mx\"]): it needs torchao and a "
                   "Blackwell GPU; strata priced Transformer Engine's MXFP8 recipe, the same GEMMs in the same format\n");
    if (p->dtype == ST_DT_TF32)
        sb_puts(b, "# note: tf32 is a PyTorch matmul setting; float32 is emitted\n");
    if (p->recompute == ST_REC_SELECTIVE)
        sb_puts(b, "# note: selective_ac_option = \"op\" saves matmul outputs and recomputes the rest; "
                   "close to, not the same as, Megatron's selective recompute\n");
    if (p->schedule == ST_SCHED_ZB && p->pp > 1)
        sb_puts(b, "# note: InterleavedZeroBubble is a schedule of torch.distributed.pipelining (PyTorch "
                   ">= 2.6)\n");
    if (p->schedule == ST_SCHED_ZBV)
        sb_puts(b, "# note: ZBVZeroBubble (torch.distributed.pipelining, PyTorch >= 2.6) runs two stages per "
                   "rank in a V: rank r holds stages r and 2*pp-1-r of the split points below\n");
    if (m->dropout) sb_puts(b, "# note: the model has dropout; torchtitan's llama3 has none\n");
    if (p->attention == ST_ATTN_FLASH)
        sb_puts(b, "# note: attention runs as F.scaled_dot_product_attention, whose flash backend is "
                   "FlashAttention-2 (strata priced FlashAttention-3 on Hopper GPUs; attention=fa2 prices "
                   "SDPA's kernel)\n");
    else if (p->attention == ST_ATTN_CUDNN)
        sb_puts(b, "# note: attention=cudnn: SDPA runs cuDNN's kernel only when asked for "
                   "(torch.nn.attention.sdpa_kernel(SDPBackend.CUDNN_ATTENTION)) or by default from torch 2.11 "
                   "on Hopper\n");

    sb_puts(b, "\n[job]\ndescription = ");
    {
        char desc[512];
        snprintf(desc, sizeof desc, "strata plan for %s", model_name(m));
        sb_quoted(b, desc);
    }
    sb_puts(b, "\n\n[model]\nname = \"llama3\"\n");
    if (flavor) {
        sb_puts(b, "flavor = ");
        sb_quoted(b, flavor);
        sb_puts(b, "\n");
    } else {
        sb_printf(b,
                  "# no built-in llama3 flavor has these shapes: add one under this name with dim=%" PRId64
                  ", n_layers=%" PRId64 ", n_heads=%" PRId64 ", n_kv_heads=%" PRId64 " and an FFN size of %" PRId64
                  "\n",
                  m->hidden, m->layers, m->heads, m->kv_heads, m->ffn);
        sb_puts(b, "flavor = ");
        sb_quoted(b, m->name[0] ? m->name : "strata");
        sb_puts(b, "\n");
    }
    if (p->dtype == ST_DT_FP8) sb_puts(b, "converters = [\"float8\"]\n");
    if (p->dtype == ST_DT_MXFP8) sb_puts(b, "converters = [\"mx\"]\n");

    sb_puts(b, "\n[training]\n");
    sb_printf(b, "local_batch_size = %" PRId64 "\n", local_batch);
    sb_printf(b, "global_batch_size = %" PRId64 "\n", p->gbs);
    sb_printf(b, "seq_len = %" PRId64 "\n", p->seq);
    sb_printf(b, "mixed_precision_param = \"%s\"\n", is16(p->dtype) ? "bfloat16" : "float32");
    if (p->offload == ST_OFF_PARAMS) sb_puts(b, "enable_cpu_offload = true\n");
    /* kernels=compile is torchtitan's torch.compile (and fused the nearest to it), eager is without */
    sb_printf(b, "compile = %s\n", p->kernels == ST_KERN_EAGER ? "false" : "true");

    sb_puts(b, "\n[parallelism]\n");
    sb_printf(b, "data_parallel_replicate_degree = %d\n", p->zero >= 1 ? 1 : p->dp);
    sb_printf(b, "data_parallel_shard_degree = %d\n", p->zero >= 1 ? p->dp : 1);
    sb_printf(b, "tensor_parallel_degree = %d\n", p->tp);
    if (p->tp_overlap) sb_puts(b, "enable_async_tensor_parallel = true\n");
    sb_printf(b, "pipeline_parallel_degree = %d\n", p->pp);
    if (p->pp > 1) {
        sb_printf(b, "pipeline_parallel_schedule = \"%s\"\n", titan_schedule(p));
        sb_printf(b, "pipeline_parallel_microbatch_size = %" PRId64 "\n", p->mbs);
        sb_puts(b, "pipeline_parallel_split_points = [");
        int64_t at = 0;
        for (int i = 0; i + 1 < p->pp * p->vp; i++) {
            at += chunks[i];
            sb_printf(b, "%s\"layers.%" PRId64 "\"", i ? ", " : "", at);
        }
        sb_puts(b, "]\n");
    }
    sb_printf(b, "context_parallel_degree = %d\n", p->cp);
    /* torchtitan's kv exchange (parallelism.context_parallel_rotate_method): "alltoall" passes the
     * shards around step by step (strata's p2p ring), "allgather" gathers them all (all_gather);
     * torchtitan has no Ulysses-style head split */
    if (p->cp > 1 && p->cp_comm != ST_CP_A2A)
        sb_printf(b, "context_parallel_rotate_method = \"%s\"\n", p->cp_comm == ST_CP_P2P ? "alltoall" : "allgather");
    if (p->cp > 1 && p->cp_comm == ST_CP_A2A)
        sb_puts(b, "# cp_comm=a2a: torchtitan has no all-to-all (Ulysses) context parallelism\n");

    sb_puts(b, "\n[activation_checkpoint]\n");
    /* recompute=op is torchtitan's selective mode with the op-level policy */
    sb_printf(b, "mode = \"%s\"\n", st_recompute_name(p->recompute == ST_REC_OP ? ST_REC_SELECTIVE : p->recompute));
    if (p->recompute == ST_REC_SELECTIVE || p->recompute == ST_REC_OP) sb_puts(b, "selective_ac_option = \"op\"\n");

    if (p->dtype == ST_DT_MXFP8) sb_puts(b, "\n[mx]\nrecipe_name = \"mxfp8\"\n");
    if (p->dtype == ST_DT_FP8) {
        /* tensorwise scaling, with the float8 all-gather FSDP2 offers for it when parameters are
         * sharded (the recipe torchtitan recommends those two options for) */
        sb_puts(b, "\n[float8]\nrecipe_name = \"tensorwise\"\n");
        if (p->zero >= 1 && p->dp > 1)
            sb_puts(b, "enable_fsdp_float8_all_gather = true\nprecompute_float8_dynamic_scale_for_fsdp = true\n");
    }

out:
    free(chunks);
    return rc;
}

/* ------------------------------------------------------------ entry */

int st_emit(st_emit_kind kind, const st_plan *p, const st_model *m, const st_cluster *c, FILE *f,
            st_error *err) {
    sbuf b = {0};
    char *spec = NULL;
    int rc;

    if (!p || !m || !f) return st_error_set(err, ST_EINVAL, NULL, NULL, "st_emit: no plan, model or stream");
    if ((rc = check_plan(p, m, err)) != 0) return rc;
    if (p->nstage_tp) { /* one tp per model in every target (the file's comment says where it is fixed) */
        static const char *const one_tp[] = {"Megatron-LM runs one --tensor-model-parallel-size",
                                             "DeepSpeed's pipeline topology has one model-parallel size",
                                             "torchtitan's device mesh has one tp dimension"};
        return st_error_set(err, ST_EINVAL, NULL, "stage_tp", "a different tp per pipeline stage: %s for all stages",
                            (unsigned)kind < 3 ? one_tp[kind] : "no target runs it");
    }
    if (!(spec = malloc(SPEC_BYTES))) return st_error_set(err, ST_ENOMEM, NULL, NULL, "out of memory");
    st_plan_format_spec(p, spec, SPEC_BYTES);
    spec[SPEC_BYTES - 1] = '\0';

    switch (kind) {
    case ST_EMIT_MEGATRON: rc = emit_megatron(&b, p, m, c, spec, err); break;
    case ST_EMIT_DEEPSPEED: rc = emit_deepspeed(&b, p, m, c, spec, err); break;
    case ST_EMIT_TORCHTITAN: rc = emit_torchtitan(&b, p, m, c, spec, err); break;
    default: rc = st_error_set(err, ST_EINVAL, NULL, NULL, "unknown emit kind %d", (int)kind);
    }
    if (rc != 0) goto out;
    if (b.oom || !b.s) {
        rc = st_error_set(err, ST_ENOMEM, NULL, NULL, "out of memory");
        goto out;
    }
    if (fwrite(b.s, 1, b.len, f) != b.len || fflush(f) != 0)
        rc = st_error_set(err, ST_EIO, NULL, NULL, "cannot write the %s configuration",
                          kind == ST_EMIT_MEGATRON ? "Megatron-LM" : kind == ST_EMIT_DEEPSPEED ? "DeepSpeed" : "torchtitan");
out:
    free(b.s);
    free(spec);
    return rc;
}

/* ------------------------------------------------------------ strata run's sbatch script
 *
 * Slurm's sbatch and srun (slurm.schedmd.com, sbatch(1) and srun(1)): --nodes, --ntasks-per-node and
 * --gpus-per-node reserve the nodes; srun starts one task per rank (through PMI/PMIx, which Open
 * MPI's MPI_Init reads) in rank order, block by node, so rank r lands on node r / G as local task
 * r % G (Megatron-LM's rank order puts tp, then cp, dp and pp on consecutive ranks: tp stays inside
 * a node); --gpu-bind=map_gpu binds local task i to GPU i and --cpu-bind=cores each task to a core. */

/* s single-quoted for a POSIX shell */
static void shell_quote(FILE *f, const char *s) {
    fputc('\'', f);
    for (; *s; s++)
        if (*s == '\'') fputs("'\\''", f);
        else fputc(*s, f);
    fputc('\'', f);
}

int st_emit_slurm(const st_plan *p, const st_cluster *c, const char *const *args, int nargs, const char *path,
                  st_error *err) {
    int64_t ranks = (int64_t)p->tp * p->pp * p->dp * p->cp;
    int64_t per = c->gpus_per_node < ranks ? c->gpus_per_node : ranks;
    int64_t nodes = per > 0 ? (ranks + per - 1) / per : 0;
    char *text = NULL;
    size_t len = 0;
    int rc = 0;
    assert(per >= 1 && nodes <= c->nodes); /* a finalized plan fits its cluster */
    FILE *f = open_memstream(&text, &len);
    if (!f) return st_error_set(err, ST_ENOMEM, NULL, NULL, "out of memory");
    fprintf(f, "#!/bin/bash\n# strata run under Slurm: %lld ranks on %lld nodes of %s, %lld a node; rank r on node\n"
               "# r / %lld, GPU r %% %lld (written by strata run --emit slurm)\n",
            (long long)ranks, (long long)nodes, c->name, (long long)per, (long long)per, (long long)per);
    fprintf(f, "#SBATCH --job-name=strata-run\n#SBATCH --nodes=%lld\n#SBATCH --ntasks-per-node=%lld\n"
               "#SBATCH --gpus-per-node=%lld\n#SBATCH --cpus-per-task=1\nset -eu\n",
            (long long)nodes, (long long)per, (long long)per);
    fprintf(f, "# the same with Open MPI on a hostfile: mpirun -np %lld --map-by ppr:%lld:node --bind-to core ...\n",
            (long long)ranks, (long long)per);
    fprintf(f, "srun --ntasks=%lld --distribution=block --cpu-bind=cores --gpu-bind=map_gpu:", (long long)ranks);
    for (int64_t g = 0; g < per; g++) fprintf(f, "%s%lld", g ? "," : "", (long long)g);
    for (int i = 0; i < nargs; i++) {
        fputc(' ', f);
        shell_quote(f, args[i]);
    }
    fputc('\n', f);
    if (fclose(f) != 0) {
        free(text);
        return st_error_set(err, ST_ENOMEM, NULL, NULL, "out of memory");
    }
    rc = st__write_atomic(path, text, len, err);
    free(text);
    return rc;
}
