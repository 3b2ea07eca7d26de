/* plan.c: plans as the user writes them (inline spec), their defaults, the checks that reject
 * impossible plans naming the key, and the split of layers into pipeline chunks.
 *
 * Defaults (README "Plans"): tp=pp=cp=ep=vp=1, dp = GPUs / (tp*pp*cp), mbs=1, gbs = dp*mbs,
 * seq = the model's seq_len, sp=0, recompute=none, zero=0, offload=none, dtype=bf16,
 * schedule=1f1b (interleaved when vp > 1; zbv, the V-shaped zero-bubble schedule, runs vp=2 and needs
 * pp > 1 and 2 pp - 1 micro-batches; dualpipe, DeepSeek-V3's, needs an even pp and an even number of
 * micro-batches, at least 2 pp, with vp=1), attention=flash (fused, what every current stack runs;
 * the 2021-22 Megatron-LM runs of the validation sets say attention=unfused), overlap_grad_reduce=0,
 * overlap_param_gather=0, fp8_param_gather=0, tp_overlap=0 (Megatron-LM's defaults), grad_bytes=4 (Megatron-LM
 * accumulates gradients in fp32), cp_comm=p2p (Megatron-LM's --cp-comm-type default, Transformer
 * Engine's ring; a plan without cp > 1 may name it: Megatron accepts the flag at cp=1 and it
 * changes nothing there), kernels=fused (Megatron-LM's fused kernels, or torch.compile's),
 * pp_partition=0 (Megatron-Core sends the whole pipeline message from every tp rank; DeepSpeed's
 * pipeline engine partitions it, pp_partition=1).
 *
 * Uneven pipelines: when pp*vp does not divide the layers, the middle chunks get ceil(L / n)
 * layers and the first and last chunks, which also carry the embedding and the output layer,
 * share the rest; Llama 3 405B put 126 layers on 16 stages that way (7 on the first and last, 8
 * between; Llama 3 Herd of Models, 2024, Sec. 3.3.2), and it is the form Megatron-LM's
 * --decoder-first/last-pipeline-num-layers can express. */
#include "src/core/core.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void st_plan_defaults(st_plan *p) {
    memset(p, 0, sizeof *p);
    p->tp = p->pp = p->dp = p->cp = p->ep = p->vp = 1;
    p->mbs = 1;
    p->recompute = ST_REC_NONE;
    p->offload = ST_OFF_NONE;
    p->dtype = ST_DT_BF16;
    p->schedule = ST_SCHED_1F1B;
    p->attention = ST_ATTN_DEFAULT;
    p->grad_bytes = 4;
}

static int parse_int(const char *v, int64_t lo, int64_t hi, int64_t *out, const char *key, st_error *err) {
    char *end;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (end == v || *end || errno)
        return st_error_set(err, ST_EINVAL, NULL, key, "expected an integer, got '%s'", v);
    if (x < lo || x > hi)
        return st_error_set(err, ST_EINVAL, NULL, key, "%lld is out of range %lld..%lld", x, (long long)lo,
                            (long long)hi);
    *out = x;
    return 0;
}

/* A fraction in [0, 1] written as a plain decimal (0.25, 1, .5). */
static int parse_frac(const char *v, double *out, const char *key, st_error *err) {
    char *end;
    errno = 0;
    double x = strtod(v, &end);
    int plain = v[0] != '\0';
    for (const char *q = v; *q; q++) plain &= (*q >= '0' && *q <= '9') || *q == '.'; /* no sign, hex, inf */
    if (!plain || end == v || *end || errno || !(x >= 0 && x <= 1))
        return st_error_set(err, ST_EINVAL, NULL, key, "expected a fraction 0..1, got '%s'", v);
    *out = x;
    return 0;
}

#define SPEC_KEYS                                                                                  \
    "tp, pp, dp, cp, ep, vp, mbs, gbs, seq, sp, recompute, zero, offload, offload_optimizer, offload_params, "    \
    "offload_activations, dtype, schedule, attention, kernels, cp_comm, overlap_grad_reduce, overlap_param_gather, "\
    "fp8_param_gather, tp_overlap, pp_partition, grad_bytes, seed, stage_layers, stage_tp, dp_batches"

/* A list key's entries: "stage_layers=10,14" goes on over the tokens after it that have no '='. */
static int parse_list(const char *k, const char *v, char **tok, int cap, int *list, int *n, st_error *err) {
    *n = 0;
    for (;;) {
        int64_t x;
        if (*n >= cap) return st_error_set(err, ST_EINVAL, NULL, k, "more than %d entries", cap);
        int rc = parse_int(v, 0, 1 << 30, &x, k, err);
        if (rc) return rc;
        list[(*n)++] = (int)x;
        /* the next token goes on the list unless it is a key=value of its own */
        if (!*tok) break;
        char *comma = strchr(*tok, ',');
        if (comma) *comma = '\0';
        if (strchr(*tok, '=')) {
            if (comma) *comma = ',';
            break;
        }
        v = *tok;
        *tok = comma ? comma + 1 : NULL;
    }
    return 0;
}

int st_plan_parse_spec(const char *spec, st_plan *p, st_error *err) {
    char buf[1024];
    if (!spec || strlen(spec) >= sizeof buf)
        return st_error_set(err, ST_EINVAL, NULL, "plan", "inline plan spec missing or too long");
    snprintf(buf, sizeof buf, "%s", spec);
    if (!buf[0]) return st_error_set(err, ST_EINVAL, NULL, "plan", "empty plan spec");
    char seen[1024] = ","; /* ",key1,key2," to refuse a key given twice */
    char *tok = buf;
    for (;;) {
        char *comma = strchr(tok, ',');
        if (comma) *comma = '\0';
        char *eq = strchr(tok, '=');
        if (!eq || eq == tok || !eq[1])
            return st_error_set(err, ST_EINVAL, NULL, "plan", "expected key=value, got '%s'", tok);
        *eq = '\0';
        const char *k = tok, *v = eq + 1;
        char probe[sizeof buf + 2];
        snprintf(probe, sizeof probe, ",%s,", k);
        if (strstr(seen, probe)) return st_error_set(err, ST_EINVAL, NULL, k, "given twice");
        if (strlen(seen) + strlen(k) + 2 < sizeof seen) strcat(strcat(seen, k), ",");
        tok = comma ? comma + 1 : NULL;
        int64_t x;
        int rc = 0;
#define INTKEY(name, lo, hi, field, flag)                                                          \
    if (strcmp(k, name) == 0) {                                                                    \
        if ((rc = parse_int(v, lo, hi, &x, name, err))) return rc;                                 \
        p->field = x;                                                                              \
        p->given |= flag;                                                                          \
        goto next;                                                                                 \
    }
#define ENUMKEY(name, fn, field, flag, choices)                                                    \
    if (strcmp(k, name) == 0) {                                                                    \
        if (fn(v, &p->field))                                                                      \
            return st_error_set(err, ST_EINVAL, NULL, name, "'%s' is not one of " choices, v);      \
        p->given |= flag;                                                                          \
        goto next;                                                                                 \
    }
        INTKEY("tp", 1, ST_MAX_GPUS, tp, ST_GIVEN_TP)
        INTKEY("pp", 1, ST_MAX_GPUS, pp, 0)
        INTKEY("dp", 1, ST_MAX_GPUS, dp, ST_GIVEN_DP)
        INTKEY("cp", 1, ST_MAX_GPUS, cp, 0)
        INTKEY("ep", 1, ST_MAX_GPUS, ep, 0)
        INTKEY("vp", 1, ST_MAX_LAYERS, vp, 0)
        INTKEY("mbs", 1, 1 << 30, mbs, 0)
        INTKEY("gbs", 1, 1 << 30, gbs, ST_GIVEN_GBS)
        INTKEY("seq", 1, ST_MAX_SEQ, seq, ST_GIVEN_SEQ)
        INTKEY("sp", 0, 1, sp, 0)
        INTKEY("zero", 0, 3, zero, 0)
        INTKEY("overlap_grad_reduce", 0, 1, overlap_grad_reduce, 0)
        INTKEY("overlap_param_gather", 0, 1, overlap_param_gather, 0)
        INTKEY("fp8_param_gather", 0, 1, fp8_param_gather, 0)
        INTKEY("tp_overlap", 0, 1, tp_overlap, 0)
        INTKEY("pp_partition", 0, 1, pp_partition, 0)
        INTKEY("grad_bytes", 2, 4, grad_bytes, ST_GIVEN_GRAD)
        INTKEY("seed", 0, INT64_MAX, seed, 0)
        ENUMKEY("recompute", st_recompute_parse, recompute, 0, "none, selective, full, op")
        ENUMKEY("offload", st_offload_parse, offload, 0, "none, optimizer, params")
        if (strcmp(k, "offload_optimizer") == 0) {
            if ((rc = parse_frac(v, &p->offload_optimizer, k, err))) return rc;
            goto next;
        }
        if (strcmp(k, "offload_params") == 0) {
            if ((rc = parse_frac(v, &p->offload_params, k, err))) return rc;
            goto next;
        }
        if (strcmp(k, "offload_activations") == 0) {
            if ((rc = parse_frac(v, &p->offload_activations, k, err))) return rc;
            goto next;
        }
        ENUMKEY("dtype", st_dtype_parse, dtype, 0, ST_DTYPE_NAMES)
        ENUMKEY("schedule", st_schedule_parse, schedule, ST_GIVEN_SCHEDULE,
                "gpipe, 1f1b, interleaved, zb, zbv, dualpipe")
        ENUMKEY("attention", st_attention_parse, attention, 0, "flash, unfused, fa2, cudnn")
        ENUMKEY("cp_comm", st_cp_comm_parse, cp_comm, 0, "p2p, all_gather, a2a")
        ENUMKEY("kernels", st_kernels_parse, kernels, 0, "fused, eager, compile")
        if (strcmp(k, "stage_layers") == 0) {
            if ((rc = parse_list(k, v, &tok, ST_MAX_STAGES, p->stage_layers, &p->nstage_layers, err))) return rc;
            goto next;
        }
        if (strcmp(k, "stage_tp") == 0) {
            if ((rc = parse_list(k, v, &tok, ST_MAX_STAGES, p->stage_tp, &p->nstage_tp, err))) return rc;
            goto next;
        }
        if (strcmp(k, "dp_batches") == 0) {
            if ((rc = parse_list(k, v, &tok, ST_MAX_REPLICAS, p->dp_batches, &p->ndp_batches, err))) return rc;
            goto next;
        }
#undef INTKEY
#undef ENUMKEY
        return st_error_set(err, ST_EINVAL, NULL, k, "unknown plan key (known: " SPEC_KEYS ")");
    next:
        if (!tok) break;
    }
    if (p->grad_bytes == 3) return st_error_set(err, ST_EINVAL, NULL, "grad_bytes", "must be 2 or 4");
    return 0;
}

int st_plan_chunk_stage(const st_plan *p, int j) {
    if (p->schedule == ST_SCHED_ZBV) return j < p->pp ? j : 2 * p->pp - 1 - j;
    return j % p->pp;
}

int st_plan_stage_holds(const st_plan *p, int d, int j) {
    return st_plan_chunk_stage(p, j) == d || (p->schedule == ST_SCHED_DUALPIPE && p->pp - 1 - j == d);
}

int64_t st_plan_microbatches(const st_plan *p) { return p->gbs / ((int64_t)p->dp * p->mbs); }

int64_t st_plan_replica_microbatches(const st_plan *p, int r) {
    return p->ndp_batches > r ? p->dp_batches[r] : st_plan_microbatches(p);
}

const char *st_plan_lockstep(const st_plan *p) {
    int uneven = 0;
    for (int r = 1; r < p->ndp_batches; r++) uneven |= p->dp_batches[r] != p->dp_batches[0];
    if (!uneven) return NULL;
    /* (an ep group inside one replica's cp ranks would not be one, but strata does not tell it apart) */
    return p->zero == 3 ? "zero=3 (the layer gathers)" : p->ep > 1 ? "ep > 1 (the experts' all-to-all)" : NULL;
}

int st_plan_stage_tp(const st_plan *p, int d) { return p->nstage_tp > d ? p->stage_tp[d] : p->tp; }

int64_t st_plan_stage_rank0(const st_plan *p, int d) {
    if (!p->nstage_tp) return (int64_t)p->tp * p->cp * p->dp * d;
    int64_t tps = 0;
    for (int e = 0; e < d; e++) tps += p->stage_tp[e];
    return tps * p->cp * p->dp;
}

int64_t st_plan_gpus(const st_plan *p) { return st_plan_stage_rank0(p, p->pp); }

void st_plan_stage_retarget(const st_plan *p, int d, st_plan *out) {
    if (!p->nstage_tp) return;
    out->tp = p->stage_tp[d];
    out->nstage_tp = 0;
    /* as st_plan_finalize does for tp = 1 */
    out->sp = out->tp > 1 && p->sp;
    out->tp_overlap = out->tp > 1 && p->tp_overlap;
}

void st_plan_stage_plan(const st_plan *p, int d, st_plan *out) {
    if (out != p) *out = *p;
    st_plan_stage_retarget(p, d, out);
}

/* Per-stage tp (st_plan.stage_tp): pp entries, each one dividing the model's heads as tp must, tp the
 * largest (a tp the user gave must be it); a list of equal entries is plain tp. The schedules and keys
 * whose ranks hold more than one stage's shards, or whose messages assume one tp on both sides, are
 * refused. */
static int stage_tp_finalize(st_plan *p, const st_model *m, const char *file, st_error *err) {
#define BAD(...) return st_error_set(err, ST_EINVAL, file, "stage_tp", __VA_ARGS__)
    if (!p->nstage_tp) return 0;
    if (p->nstage_tp != p->pp) BAD("has %d entries, but pp = %d", p->nstage_tp, p->pp);
    int top = 0, same = 1;
    for (int d = 0; d < p->pp; d++) {
        int t = p->stage_tp[d];
        if (t < 1) BAD("entry %d must be at least 1", d);
        if (m->heads % t || m->kv_heads % t || m->hidden % t || !st_model_tp_divides(m, t))
            BAD("entry %d (%d) does not divide the model's heads (%lld), kv_heads (%lld) and hidden (%lld)", d, t,
                (long long)m->heads, (long long)m->kv_heads, (long long)m->hidden);
        if (t > top) top = t;
        same = same && t == p->stage_tp[0];
    }
    if ((p->given & ST_GIVEN_TP) && p->tp != top) BAD("its largest entry is %d, but tp = %d", top, p->tp);
    p->tp = top;
    if (same) {
        p->nstage_tp = 0;
        return 0;
    }
    if (p->schedule == ST_SCHED_DUALPIPE) BAD("schedule=dualpipe puts two stages on a rank: one tp for both");
    if (p->pp_partition) BAD("pp_partition=1 gathers each message over one tp group on both sides");
    if (p->tp_overlap) BAD("tp_overlap=1 with different tp per stage is not priced");
    return 0;
#undef BAD
}

int st_plan_finalize(st_plan *p, const st_model *m, const st_cluster *c, int64_t gpus, const char *file,
                     st_error *err) {
#define BAD(key, ...) return st_error_set(err, ST_EINVAL, file, key, __VA_ARGS__)
    int64_t have = st_cluster_gpus(c);
    int64_t want = gpus > 0 ? gpus : have;
    if (!(p->given & ST_GIVEN_SEQ)) p->seq = m->seq_len;
    int rc = stage_tp_finalize(p, m, file, err);
    if (rc) return rc;
    /* ranks per data-parallel replica: tp*pp*cp, or cp x the stages' tp */
    int64_t shard = p->nstage_tp ? st_plan_gpus(p) / p->dp : (int64_t)p->tp * p->pp * p->cp;
    if (shard > ST_MAX_GPUS) {
        const char *key = p->pp >= p->tp && p->pp >= p->cp ? "pp" : p->cp > p->tp ? "cp" : "tp";
        BAD(key, "tp*pp*cp = %lld exceeds %d GPUs", (long long)shard, ST_MAX_GPUS);
    }
    /* with stage_tp the ranks are cp x dp x the sum of the stages' tp: a count that does not match names it */
    const char *gkey = p->nstage_tp ? "stage_tp" : "dp", *gform = p->nstage_tp ? "cp*(sum of stage_tp)" : "tp*pp*cp";
    const char *uform = p->nstage_tp ? "cp*dp*(sum of stage_tp)" : "tp*pp*dp*cp";
    if (!(p->given & ST_GIVEN_DP)) {
        if (want % shard)
            BAD(gkey, "%s = %lld does not divide the %lld GPUs; give dp", gform, (long long)shard, (long long)want);
        p->dp = (int)(want / shard);
    }
    int64_t used = shard * p->dp;
    if (used > have)
        BAD(gkey, "the plan uses %s = %lld GPUs but the cluster %s has %lld (use --gpus)", uform, (long long)used,
            c->name, (long long)have);
    if (gpus > 0 && used != gpus)
        BAD(gkey, "%s = %lld GPUs, but %lld were asked for", uform, (long long)used, (long long)gpus);
    if (p->ndp_batches) {
        /* uneven data parallelism: the replicas' micro-batches make the global batch */
        int64_t sum = 0;
        if (p->ndp_batches != p->dp)
            BAD("dp_batches", "has %d entries, but dp = %d", p->ndp_batches, p->dp);
        for (int r = 0; r < p->ndp_batches; r++) {
            if (p->dp_batches[r] < 1) BAD("dp_batches", "entry %d must be at least 1 micro-batch", r);
            sum += p->dp_batches[r];
        }
        if (!(p->given & ST_GIVEN_GBS)) p->gbs = sum * p->mbs;
        if (sum * p->mbs != p->gbs)
            BAD("dp_batches", "sums to %lld micro-batches of %lld, but gbs is %lld", (long long)sum,
                (long long)p->mbs, (long long)p->gbs);
        for (int r = 0; r < p->ndp_batches && p->vp > 1 && p->schedule != ST_SCHED_ZBV; r++)
            if (p->dp_batches[r] % p->pp)
                BAD("dp_batches", "entry %d (%d) must be divisible by pp (%d) for the interleaved schedule", r,
                    p->dp_batches[r], p->pp);
    }
    if (!(p->given & ST_GIVEN_GBS) && !p->ndp_batches) p->gbs = (int64_t)p->dp * p->mbs;
    if (!p->ndp_batches && p->gbs % ((int64_t)p->dp * p->mbs))
        BAD("gbs", "%lld is not divisible by dp*mbs = %lld", (long long)p->gbs, (long long)p->dp * p->mbs);
    int64_t mb = st_plan_microbatches(p);

    if (!p->heads_whole && m->heads % p->tp)
        BAD("tp", "heads (%lld) not divisible by tp (%d)", (long long)m->heads, p->tp);
    if (!p->heads_whole && m->kv_heads % p->tp)
        BAD("tp", "kv_heads (%lld) not divisible by tp (%d)", (long long)m->kv_heads, p->tp);
    if (!p->heads_whole && !st_model_tp_divides(m, p->tp)) /* (the ILP builds none of those other blocks) */
        BAD("tp", "the global blocks' kv heads, Mamba-2 heads and groups or Gated DeltaNet heads are not divisible by "
                  "tp (%d)", p->tp);
    /* Megatron-LM's validate_args: "Tensor parallel communication/GEMM overlap can happen only when
     * sequence parallelism is enabled" (and Transformer Engine's userbuffers need a tp group) */
    if (p->tp_overlap && (p->tp < 2 || !p->sp))
        BAD("tp_overlap", "tp_overlap=1 needs tp > 1 and sp=1 (the plan has tp=%d, sp=%d)", p->tp, p->sp);
    /* userbuffers (and torchtitan's symmetric memory) map the tp group's buffers into each other's
     * GPUs: one node's NVLink domain only (TransformerEngine issue 1071: "comm+GEMM overlap is
     * currently only possible with single-node tensor-parallelism") */
    if (p->tp_overlap && p->tp > c->gpus_per_node)
        BAD("tp_overlap", "tp_overlap=1 needs the tp group inside one node (tp=%d, %lld GPUs per node)", p->tp,
            (long long)c->gpus_per_node);
    if (p->tp == 1) p->sp = 0; /* Megatron-LM turns sequence parallelism off without tp */
    /* with sp each tp rank already holds its own 1/tp of the sequence: nothing left to partition
     * (DeepSpeed's pipeline engine partitions the whole activation each rank holds) */
    if (p->pp_partition && p->sp) BAD("pp_partition", "pp_partition=1 partitions a whole activation; not with sp=1");
    if (p->cp > 1 && p->seq % (2 * p->cp))
        BAD("cp", "seq (%lld) must be divisible by 2*cp = %d (load-balanced causal context parallelism)",
            (long long)p->seq, 2 * p->cp);
    /* Transformer Engine's a2a splits the tp rank's heads over the cp group (context_parallel.py,
     * flash_attn_a2a_communicate asserts heads % cp_size == 0) */
    if (p->cp > 1 && p->cp_comm == ST_CP_A2A && (m->heads / p->tp % p->cp || m->kv_heads / p->tp % p->cp))
        BAD("cp_comm", "cp_comm=a2a needs the heads (%lld) and kv_heads (%lld) per tp rank divisible by cp (%d)",
            (long long)(m->heads / p->tp), (long long)(m->kv_heads / p->tp), p->cp);
    if (p->seq > ST_MAX_SEQ) BAD("seq", "must be 1..%d", ST_MAX_SEQ);

    if (m->experts == 0 && p->ep > 1) BAD("ep", "ep = %d but the model has no experts", p->ep);
    if (p->ep > 1) {
        if (((int64_t)p->dp * p->cp) % p->ep) BAD("ep", "ep (%d) must divide dp*cp (%d)", p->ep, p->dp * p->cp);
        if (m->experts % p->ep) BAD("ep", "ep (%d) must divide experts (%lld)", p->ep, (long long)m->experts);
    }

    if (p->pp > m->layers) BAD("pp", "pp (%d) exceeds layers (%lld)", p->pp, (long long)m->layers);
    if (p->pp > ST_MAX_STAGES) BAD("pp", "pp (%d) exceeds %d pipeline stages", p->pp, ST_MAX_STAGES);
    if (p->schedule == ST_SCHED_ZBV) {
        /* two chunks per rank in a V (torch's ScheduleZBVZeroBubble: "exactly 2 stages per rank");
         * vp=1, the default, becomes 2 */
        if (p->pp < 2) BAD("schedule", "zbv needs pp > 1 (two chunks per pipeline rank in a V)");
        if (p->vp == 1) p->vp = 2;
        if (p->vp != 2) BAD("vp", "schedule=zbv runs exactly vp=2 chunks per rank, not %d", p->vp);
        /* the V fills only with 2 pp - 1 micro-batches (torch pads to that many); the closed form
         * (cost/estimate.c) holds from there */
        for (int r = 0; r < (p->ndp_batches ? p->ndp_batches : 1); r++)
            if (st_plan_replica_microbatches(p, r) < 2LL * p->pp - 1)
                BAD(p->ndp_batches ? "dp_batches" : "gbs",
                    "schedule=zbv needs at least 2*pp-1 = %d micro-batches per replica, the plan has %lld",
                    2 * p->pp - 1, (long long)st_plan_replica_microbatches(p, r));
    }
    if (p->schedule == ST_SCHED_DUALPIPE) {
        /* DualPipe's own checks (deepseek-ai/DualPipe, dualpipe.py, DualPipe.step): num_ranks % 2 == 0;
         * num_chunks % 2 == 0 and num_chunks >= num_ranks * 2, its micro-batches split in halves that
         * enter at either end. Its ranks hold one stage of each copy, no virtual stages. */
        if (p->pp < 2 || p->pp % 2)
            BAD("pp", "schedule=dualpipe needs an even pp > 1 (rank d holds stage d and pp-1-d), not %d", p->pp);
        if (p->vp != 1) BAD("vp", "schedule=dualpipe holds one stage of each model copy per rank: vp must be 1");
        for (int r = 0; r < (p->ndp_batches ? p->ndp_batches : 1); r++) {
            int64_t n = st_plan_replica_microbatches(p, r);
            if (n % 2 || n < 2LL * p->pp)
                BAD(p->ndp_batches ? "dp_batches" : "gbs",
                    "schedule=dualpipe needs an even number of micro-batches per replica, at least 2*pp = %d; "
                    "the plan has %lld",
                    2 * p->pp, (long long)n);
        }
        /* a rank's two stages sit on the GPUs of both ends of the pipeline: the per-stage pricing of
         * node groups (one stage, one group) does not describe it */
        if (c && c->ngroups > 0)
            BAD("schedule", "schedule=dualpipe on a cluster of node groups is not priced (each rank holds stages of "
                "both pipeline ends); use 1f1b, interleaved, zb or zbv");
        if (p->offload_params > 0 || p->offload_activations > 0)
            BAD(p->offload_params > 0 ? "offload_params" : "offload_activations",
                "granular offload with schedule=dualpipe is not priced; use 1f1b, interleaved or zb");
        if (p->nstage_layers > 0) BAD("stage_layers", "schedule=dualpipe splits the layers evenly over its stages");
    }
    if (p->vp > 1 && p->pp == 1) BAD("vp", "vp > 1 needs pp > 1");
    if ((int64_t)p->pp * p->vp > m->layers)
        BAD("vp", "pp*vp = %lld pipeline chunks exceed layers (%lld)", (long long)p->pp * p->vp,
            (long long)m->layers);
    if ((int64_t)p->pp * p->vp > ST_MAX_STAGES) BAD("vp", "pp*vp exceeds %d chunks", ST_MAX_STAGES);
    if (p->vp > 1 && p->schedule != ST_SCHED_ZBV) {
        if ((p->given & ST_GIVEN_SCHEDULE) && p->schedule != ST_SCHED_INTERLEAVED)
            BAD("schedule", "vp > 1 runs the interleaved schedule, not %s", st_schedule_name(p->schedule));
        p->schedule = ST_SCHED_INTERLEAVED;
        if (!p->ndp_batches && mb % p->pp)
            BAD("gbs", "the interleaved schedule needs micro-batches (%lld) divisible by pp (%d)", (long long)mb,
                p->pp);
    } else if (p->schedule == ST_SCHED_INTERLEAVED) {
        BAD("schedule", "interleaved needs vp > 1");
    }
    if (p->pp > 1 && mb < 1) BAD("gbs", "no micro-batch per pipeline");

    if (p->zero < 0 || p->zero > 3) BAD("zero", "must be 0..3");
    if (p->offload == ST_OFF_PARAMS && p->zero != 3) BAD("offload", "offload=params needs zero=3");
    if (p->offload == ST_OFF_OPTIMIZER && p->zero < 1) BAD("offload", "offload=optimizer needs zero >= 1");
    if (!(p->offload_optimizer >= 0 && p->offload_optimizer <= 1)) BAD("offload_optimizer", "must be 0..1");
    if (p->offload_optimizer > 0) {
        if (p->offload != ST_OFF_NONE)
            BAD("offload_optimizer", "offload=%s already moves all optimizer states; give one of the two",
                st_offload_name(p->offload));
        if (p->zero < 1) BAD("offload_optimizer", "offload_optimizer needs zero >= 1, as offload=optimizer does");
        /* all of them: ZeRO-Offload's whole-state offload, priced as before */
        if (p->offload_optimizer == 1) p->offload = ST_OFF_OPTIMIZER, p->offload_optimizer = 0;
    }
    if (!(p->offload_params >= 0 && p->offload_params <= 1)) BAD("offload_params", "must be 0..1");
    if (!(p->offload_activations >= 0 && p->offload_activations <= 1)) BAD("offload_activations", "must be 0..1");
    if (p->offload_params > 0) {
        /* ZeRO-3 gathers every layer's weights anyway: its host form is offload=params (ZeRO-Infinity) */
        if (p->zero > 2 || p->offload != ST_OFF_NONE)
            BAD("offload_params", "offload_params needs zero 0-2 and offload=none (with zero=3 use offload=params; "
                "the plan has zero=%d, offload=%s)", p->zero, st_offload_name(p->offload));
        /* where the host's share of the weights is stepped (GPU or CPU Adam) is not priced apart */
        if (p->offload_optimizer > 0)
            BAD("offload_params", "offload_params with offload_optimizer is not priced; give one of the two");
    }
    /* ZeRO-3's programs stream layer by layer already (offload=params); the chunks' copies are zero 0-2's */
    if (p->offload_activations > 0 && (p->zero > 2 || p->offload == ST_OFF_PARAMS))
        BAD("offload_activations", "offload_activations needs zero 0-2 and no offload=params (the plan has zero=%d, "
            "offload=%s)", p->zero, st_offload_name(p->offload));
    /* ZB-V's two chunks per rank and its held-back sends were not built with the chunks' copy stream:
     * not priced together */
    if (p->schedule == ST_SCHED_ZBV && (p->offload_params > 0 || p->offload_activations > 0))
        BAD(p->offload_params > 0 ? "offload_params" : "offload_activations",
            "granular offload with schedule=zbv is not priced; use 1f1b, interleaved or zb");
    /* Megatron-LM's validate_args: --overlap-param-gather needs the distributed optimizer and
     * --overlap-grad-reduce; strata's zero 2 has the same all-gather after the step */
    if (p->overlap_param_gather && (p->zero < 1 || p->zero > 2 || !p->overlap_grad_reduce))
        BAD("overlap_param_gather", "overlap_param_gather=1 needs zero 1 or 2 and overlap_grad_reduce=1 (the plan "
            "has zero=%d, overlap_grad_reduce=%d)", p->zero, p->overlap_grad_reduce);
    /* Megatron-LM's --fp8-param-gather: Transformer Engine's fp8 (tensor-scaled) or MXFP8 weights made
     * by fp8_model_init, all-gathered by the distributed optimizer (Megatron-FSDP's gather of them, and
     * --fp4-param-gather for nvfp4, are not priced); the weights must be on the GPU (offload=params is
     * zero 3's, refused above) */
    if (p->fp8_param_gather && p->dtype != ST_DT_FP8 && p->dtype != ST_DT_MXFP8)
        BAD("fp8_param_gather", "fp8_param_gather=1 needs dtype fp8 or mxfp8 (the plan has dtype=%s)",
            st_dtype_name(p->dtype));
    if (p->fp8_param_gather && (p->zero < 1 || p->zero > 2 || p->offload_params > 0))
        BAD("fp8_param_gather", "fp8_param_gather=1 needs zero 1 or 2 (the distributed optimizer) with the weights "
            "on the GPU (the plan has zero=%d, offload_params=%g)", p->zero, p->offload_params);
    if (!(c->gpu.peak_flops[p->dtype] > 0))
        BAD("dtype", "%s has no %s tensor throughput", c->gpu.name, st_dtype_name(p->dtype));
    if (!(p->given & ST_GIVEN_GRAD)) p->grad_bytes = 4;
    if (p->grad_bytes != 2 && p->grad_bytes != 4) BAD("grad_bytes", "must be 2 or 4");

    /* Replicas that run different micro-batch counts meet once per micro-batch where a collective spans
     * them: ZeRO-3 gathers every layer's weights over the data-parallel group, and the experts' all-to-all
     * runs over ep ranks of several replicas. Every rank of a collective must call it as often (NCCL
     * matches calls in order), so the replica with fewer micro-batches leaves the others waiting on
     * collectives it never issues. PyTorch's Join, the frameworks' one mechanism for uneven inputs,
     * shadows only DDP's gradient all-reduce and "does not support custom distributed collective
     * operations in the forward pass" (pytorch/pytorch PR #42577, DistributedDataParallel.join); FSDP
     * hangs when one rank skips a module's forward (huggingface/transformers#37186). No framework runs
     * such a plan, so it is refused here, for the estimate, the simulator and the search alike
     * (search/balance.c does not make it). */
    const char *why = st_plan_lockstep(p);
    if (why)
        BAD("dp_batches", "uneven dp_batches with %s: its collectives run once per micro-batch across replicas that "
            "would run different counts, which no framework runs (they hang); give even micro-batches", why);
    if (p->nstage_layers) {
        int64_t chunks = (int64_t)p->pp * p->vp, sum = 0;
        if (p->nstage_layers != chunks)
            BAD("stage_layers", "has %d entries, but pp*vp = %lld", p->nstage_layers, (long long)chunks);
        for (int i = 0; i < p->nstage_layers; i++) {
            if (p->stage_layers[i] < 0) BAD("stage_layers", "entry %d is negative", i);
            sum += p->stage_layers[i];
        }
        if (sum != m->layers)
            BAD("stage_layers", "sums to %lld layers, the model has %lld", (long long)sum, (long long)m->layers);
    }
    return 0;
#undef BAD
}

void st_plan_chunk_layers(const st_plan *p, const st_model *m, int *out) {
    int n = p->pp * p->vp;
    if (p->nstage_layers == n) {
        memcpy(out, p->stage_layers, sizeof(int) * (size_t)n);
        return;
    }
    int64_t L = m->layers, base = L / n, rem = L % n;
    for (int i = 0; i < n; i++) out[i] = (int)base;
    if (rem == 0) return;
    /* Megatron-LM's uneven form (--decoder-first/last-pipeline-num-layers): the middle chunks get
     * ceil(L / n) each, the first and last share the rest (the first, whose embedding is cheaper
     * than the output layer, takes the odd one). */
    int64_t mid = base + 1, restl = L - (int64_t)(n - 2) * mid;
    if (n >= 3 && restl >= 2 && restl <= 2 * mid) {
        for (int i = 1; i < n - 1; i++) out[i] = (int)mid;
        out[0] = (int)((restl + 1) / 2);
        out[n - 1] = (int)(restl / 2);
        return;
    }
    /* otherwise (few layers per chunk): the extra layers to the middle chunks, then the ends */
    for (int i = 1; i < n - 1 && rem > 0; i++, rem--) out[i]++;
    if (rem > 0 && n > 1) out[n - 1]++, rem--;
    if (rem > 0) out[0]++, rem--;
}

void st_plan_format_spec(const st_plan *p, char *buf, size_t n) {
    int w = snprintf(buf, n,
             "tp=%d,pp=%d,dp=%d,cp=%d,ep=%d,vp=%d,mbs=%lld,gbs=%lld,seq=%lld,sp=%d,recompute=%s,zero=%d,"
             "offload=%s,dtype=%s,schedule=%s",
             p->tp, p->pp, p->dp, p->cp, p->ep, p->vp, (long long)p->mbs, (long long)p->gbs, (long long)p->seq,
             p->sp, st_recompute_name(p->recompute), p->zero, st_offload_name(p->offload),
             st_dtype_name(p->dtype), st_schedule_name(p->schedule));
    /* keys left at their defaults are not written */
    if (w > 0 && (size_t)w < n && p->offload_optimizer > 0)
        w += snprintf(buf + w, n - (size_t)w, ",offload_optimizer=%g", p->offload_optimizer);
    if (w > 0 && (size_t)w < n && p->offload_params > 0)
        w += snprintf(buf + w, n - (size_t)w, ",offload_params=%g", p->offload_params);
    if (w > 0 && (size_t)w < n && p->offload_activations > 0)
        w += snprintf(buf + w, n - (size_t)w, ",offload_activations=%g", p->offload_activations);
    if (w > 0 && (size_t)w < n && p->attention != ST_ATTN_DEFAULT)
        w += snprintf(buf + w, n - (size_t)w, ",attention=%s", st_attention_name(p->attention));
    if (w > 0 && (size_t)w < n && p->kernels != ST_KERN_FUSED)
        w += snprintf(buf + w, n - (size_t)w, ",kernels=%s", st_kernels_name(p->kernels));
    if (w > 0 && (size_t)w < n && p->cp_comm != ST_CP_P2P)
        w += snprintf(buf + w, n - (size_t)w, ",cp_comm=%s", st_cp_comm_name(p->cp_comm));
    if (w > 0 && (size_t)w < n && p->overlap_grad_reduce) w += snprintf(buf + w, n - (size_t)w, ",overlap_grad_reduce=1");
    if (w > 0 && (size_t)w < n && p->overlap_param_gather)
        w += snprintf(buf + w, n - (size_t)w, ",overlap_param_gather=1");
    if (w > 0 && (size_t)w < n && p->fp8_param_gather) w += snprintf(buf + w, n - (size_t)w, ",fp8_param_gather=1");
    if (w > 0 && (size_t)w < n && p->tp_overlap) w += snprintf(buf + w, n - (size_t)w, ",tp_overlap=1");
    if (w > 0 && (size_t)w < n && p->pp_partition) w += snprintf(buf + w, n - (size_t)w, ",pp_partition=1");
    if (w > 0 && (size_t)w < n && p->grad_bytes != 4) w += snprintf(buf + w, n - (size_t)w, ",grad_bytes=%d", p->grad_bytes);
    for (int i = 0; i < p->nstage_layers && w > 0 && (size_t)w < n; i++)
        w += snprintf(buf + w, n - (size_t)w, "%s%d", i ? "," : ",stage_layers=", p->stage_layers[i]);
    for (int i = 0; i < p->nstage_tp && w > 0 && (size_t)w < n; i++)
        w += snprintf(buf + w, n - (size_t)w, "%s%d", i ? "," : ",stage_tp=", p->stage_tp[i]);
    for (int i = 0; i < p->ndp_batches && w > 0 && (size_t)w < n; i++)
        w += snprintf(buf + w, n - (size_t)w, "%s%d", i ? "," : ",dp_batches=", p->dp_batches[i]);
}

void st_plan_shard(const st_plan *p, st_shard *out) {
    memset(out, 0, sizeof *out);
    out->tp = p->tp, out->cp = p->cp, out->ep = p->ep, out->sp = p->sp;
    out->mbs = p->mbs, out->seq = p->seq, out->dtype = p->dtype, out->grad_bytes = p->grad_bytes;
    out->attention = p->attention;
    out->cp_comm = p->cp_comm;
    out->kernels = p->kernels;
}
