/* graph.c: tensor-level operator graphs for the auto-sharding ILP (types: src/core/core.h; the only
 * file of strata that includes igraph.h).
 *
 * st_graph_from_model turns a model description into tensors and labelled operators, taking each
 * operator's FLOPs, bytes and saved activations from src/core/opgraph.c (tp = 1), so that the ILP and
 * the enumerator price the same work. st_graph_check derives what a custom graph leaves out
 * (labels from the operator type and shapes, FLOPs and bytes by the rules below), checks the
 * shapes across every edge, and uses igraph for the rest: acyclicity and a topological order. */
#include "search/search.h"

#include <igraph.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

int st_graph_units(const st_graph *g) {
    if (g->block_in >= 0) return (int)g->repeat;
    return g->nsegs > 0 ? g->nsegs : 1;
}

int st_graph_unit_tensor(const st_graph *g, int u) {
    if (g->block_in >= 0) return g->block_out;
    if (u < 1 || u >= g->nsegs) return -1;
    return g->ops[g->seg_cut[u - 1]].out;
}

int st_graph_op_mult(const st_graph *g, int op, int first, int last) {
    if (g->block_in < 0) return g->nsegs > 0 ? g->seg[op] >= first && g->seg[op] < last : 1;
    if (g->ops[op].block) return last - first;
    /* head ops precede the block in topological order (a cheap test: the op's position) */
    int pos = 0, bpos = -1;
    for (int i = 0; i < g->nops; i++) {
        if (g->topo[i] == op) pos = i;
        if (bpos < 0 && g->ops[g->topo[i]].block) bpos = i;
    }
    return pos < bpos ? first == 0 : last == (int)g->repeat;
}

static double tbytes(const st_gtensor *t) { return st_gtensor_numel(t) * st_dtype_bytes(t->dtype); }

double st_graph_params(const st_graph *g) {
    double p = 0;
    for (int i = 0; i < g->ntensors; i++) {
        const st_gtensor *t = &g->t[i];
        if (!t->weight || t->shared) continue;
        /* a weight belongs to the block when a block op reads it */
        int in_block = 0;
        for (int o = 0; o < g->nops && !in_block; o++)
            for (int k = 0; k < g->ops[o].nin; k++)
                if (g->ops[o].in[k] == i && g->ops[o].block) in_block = 1;
        p += st_gtensor_numel(t) * (in_block ? (double)g->repeat : 1);
    }
    return p;
}

/* ------------------------------------------------------------ building */

typedef struct builder {
    st_graph *g;
    int cap_ops, cap_t;
    st_dtype dt;
    int block; /* ops added now belong to the block */
} builder;

static int add_tensor(builder *b, const char *name, int ndim, const int64_t *dim, int weight) {
    st_graph *g = b->g;
    if (g->ntensors == b->cap_t) {
        int cap = b->cap_t ? 2 * b->cap_t : 32;
        st_gtensor *t = realloc(g->t, (size_t)cap * sizeof *t);
        if (!t) return -1;
        g->t = t;
        b->cap_t = cap;
    }
    st_gtensor *t = &g->t[g->ntensors];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++) t->dim[i] = dim[i];
    t->dtype = b->dt;
    t->weight = weight;
    t->producer = -1;
    return g->ntensors++;
}

#define T(name, w, ...) add_tensor(&B, name, (int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)), \
                                   (int64_t[]){__VA_ARGS__}, w)

/* spec "bsh,hf->bsf": labels of each input and of the output */
static int add_op(builder *b, const char *name, st_gop_type type, st_opclass cls, const int *ins, int nin, int out,
                  const char *spec, const char *nosplit) {
    st_graph *g = b->g;
    if (g->nops == b->cap_ops) {
        int cap = b->cap_ops ? 2 * b->cap_ops : 32;
        st_gop *o = realloc(g->ops, (size_t)cap * sizeof *o);
        if (!o) return -1;
        g->ops = o;
        b->cap_ops = cap;
    }
    st_gop *o = &g->ops[g->nops];
    memset(o, 0, sizeof *o);
    snprintf(o->name, sizeof o->name, "%s", name);
    o->type = type;
    o->cls = cls;
    o->nin = nin;
    for (int i = 0; i < nin; i++) o->in[i] = ins[i];
    o->out = out;
    o->block = b->block;
    o->kernels_fwd = o->kernels_bwd = 1;
    snprintf(o->nosplit, sizeof o->nosplit, "%s", nosplit ? nosplit : "");
    const char *p = spec;
    for (int i = 0; i < nin; i++) {
        size_t n = strcspn(p, ",-");
        memcpy(o->lab[i], p, n);
        o->lab[i][n] = 0;
        p += n + (*(p + n) == ',' ? 1 : 0);
    }
    p = strstr(spec, "->");
    snprintf(o->lab_out, sizeof o->lab_out, "%s", p ? p + 2 : "");
    return g->nops++;
}

/* the opgraph.c operator of this name (tp = 1), or NULL */
static const st_op *find_op(const st_op *ops, int n, const char *name) {
    for (int i = 0; i < n; i++)
        if (strcmp(ops[i].name, name) == 0) return &ops[i];
    return NULL;
}

static void take_costs(st_gop *o, const st_op *src, int save_ref) {
    if (!src) return;
    o->fwd_flops = src->fwd_flops;
    o->bwd_flops = src->bwd_flops;
    o->fwd_bytes = src->fwd_bytes;
    o->bwd_bytes = src->bwd_bytes;
    o->kernels_fwd = src->kernels_fwd;
    o->kernels_bwd = src->kernels_bwd;
    o->saved_bytes = src->saved_bytes;
    o->save_ref = save_ref;
    o->saved_given = 1; /* opgraph.c's 0 means it keeps nothing (rope, the layout copy) */
    if (src->cls == ST_OPC_GEMM || src->cls == ST_OPC_BGEMM || src->cls == ST_OPC_ATTENTION) {
        o->gemm[0] = src->m, o->gemm[1] = src->n, o->gemm[2] = src->k, o->gemm[3] = src->batch;
    }
    o->causal = src->causal;
    o->quant = src->quant;
}

/* The saved input of the column-parallel linear after a norm (qkv, fc1, the output layer) is the
 * norm's output, kept as the norm leaves it: Megatron-LM with sequence parallelism saves the
 * sequence shard and all-gathers it again in backward (Korthikanti et al. 2022, Sec. 4.2.2), as
 * opgraph.c counts it (x->Tn); without it the norm's output is whole on every tp rank anyway. The
 * bytes move to the norm, whose input and output split alike (it never splits h), so that they
 * divide like the norm's layout rather than like the gathered copy the linear reads. */
static void save_at_norm(st_gop *norm, st_gop *linear) {
    norm->saved_bytes += linear->saved_bytes;
    linear->saved_bytes = 0;
}

#define OP(name, type, cls, out, spec, nosplit, ...)                                                         \
    add_op(&B, name, type, cls, (int[]){__VA_ARGS__}, (int)(sizeof((int[]){__VA_ARGS__}) / sizeof(int)), out, \
           spec, nosplit)

/* An element-wise operator of the preset's op list (present or not), from tensor x to a new one. */
static int chain(builder *bp, const st_op *ops, int n, const char *name, int x, const char *labels) {
    const st_op *src = find_op(ops, n, name);
    if (!src) return x;
    st_gtensor *t = &bp->g->t[x];
    int64_t dim[ST_G_MAXDIM];
    memcpy(dim, t->dim, sizeof dim);
    char tn[ST_G_NAME];
    snprintf(tn, sizeof tn, "%s_out", name);
    int y = add_tensor(bp, tn, t->ndim, dim, 0);
    char spec[32];
    snprintf(spec, sizeof spec, "%s->%s", labels, labels);
    int o = add_op(bp, name, ST_GOP_ELEMWISE, src->cls, (int[]){x}, 1, y, spec, NULL);
    if (y < 0 || o < 0) return -1;
    take_costs(&bp->g->ops[o], src, 0);
    return y;
}

/* Issue 15's structure that the tensor graph below (Megatron's GPT/Llama block: qkv, attention,
 * proj, an MLP or routed experts, the same in every layer) has no operators for, or NULL. */
static const char *unbuilt_structure(const st_model *m) {
    if (m->kv_lora_rank > 0) return "latent attention";
    if (m->layer_pattern[0]) return "blocks of several kinds (layer_pattern)";
    if (m->layer_ffn[0] > 0) return "per-block FFN sizes";
    if (m->shared_experts > 0) return "shared experts";
    if (m->first_dense > 0) return "dense blocks before the MoE ones";
    if (m->window > 0 && m->global_every > 0) return "windowed and global blocks";
    if (m->parallel_block) return "attention and MLP in parallel";
    return NULL;
}

int st_graph_from_model(const st_model *m, int64_t mbs, int64_t seq, st_dtype dt, st_attention attn, st_graph *g,
                        st_error *err) {
    memset(g, 0, sizeof *g);
    const char *other = unbuilt_structure(m);
    if (other)
        return st_error_set(err, ST_EINVAL, NULL, "model",
                            "the operator-level planner builds one repeated transformer block; %s has %s "
                            "(plan it with the default search)",
                            m->name, other);
    builder B = {.g = g, .dt = dt};
    st_shard s = {.tp = 1, .cp = 1, .ep = 1, .mbs = mbs, .seq = seq, .dtype = dt, .grad_bytes = 4, .attention = attn};
    st_op head[ST_MAX_OPS], blk[ST_MAX_OPS], tail[ST_MAX_OPS];
    int64_t dense_idx, moe_idx;
    st_model_block_kinds(m, &dense_idx, &moe_idx);
    int64_t layer = moe_idx >= 0 ? moe_idx : (dense_idx >= 0 ? dense_idx : 0);
    int nh = st_ops_head(m, &s, head, ST_MAX_OPS), nb = st_ops_layer(m, &s, layer, blk, ST_MAX_OPS),
        nt = st_ops_tail(m, &s, tail, ST_MAX_OPS);
    if (nh < 0 || nb < 0 || nt < 0) return st_error_set(err, ST_EINTERNAL, NULL, NULL, "operator list too long");

    snprintf(g->name, sizeof g->name, "%s", m->name);
    g->repeat = m->layers;
    g->mbs = mbs;
    g->seq = seq;
    /* vocabulary padded as Megatron pads for tp = 8, so any split up to the node divides it */
    int64_t b = mbs, S = seq, h = m->hidden, v = st_model_padded_vocab(m, 8), heads = m->heads,
            kv = m->kv_heads, d = m->head_dim, f = m->ffn;
    int64_t gate = m->activation == ST_ACT_SWIGLU ? 2 : 1;
    int64_t e_qkv = (heads / kv + 2) * d; /* per kv group: its query heads, one key, one value */

    /* ---- head */
    int ids = T("tokens", 0, b, S);
    g->t[ids].input = 1;
    int wte = T("embedding.weight", 1, v, h);
    int emb = T("embedding_out", 0, b, S, h);
    int o = OP("embedding", ST_GOP_EMBEDDING, ST_OPC_EMBED, emb, "bs,vh->bsh", "", ids, wte);
    take_costs(&g->ops[o], find_op(head, nh, "embedding"), ST_G_MAXIN);
    int x = chain(&B, head, nh, "embed_dropout", emb, "bsh");

    /* ---- block */
    B.block = 1;
    g->block_in = x;
    int wln1 = T("ln1.weight", 1, h);
    int a1 = T("ln1_out", 0, b, S, h);
    o = OP("ln1", ST_GOP_NORM, ST_OPC_NORM, a1, "bsh,h->bsh", "h", x, wln1);
    take_costs(&g->ops[o], find_op(blk, nb, "ln1"), 0);
    int norm = o;
    int wqkv = T("qkv.weight", 1, h, kv, e_qkv);
    int q = T("qkv_out", 0, b, S, kv, e_qkv);
    o = OP("qkv", ST_GOP_MATMUL, ST_OPC_GEMM, q, "bsh,hne->bsne", "", a1, wqkv);
    take_costs(&g->ops[o], find_op(blk, nb, "qkv"), 0);
    save_at_norm(&g->ops[norm], &g->ops[o]);
    q = chain(&B, blk, nb, "qkv_bias", q, "bsne");
    q = chain(&B, blk, nb, "rope", q, "bsne");
    int ctx;
    if (st_attention_fused(attn)) {
        /* one fused kernel from the QKV tensor to the context, in the layout the projection reads */
        ctx = T("attention_out", 0, b, S, heads, d);
        o = OP("attention", ST_GOP_ATTENTION, ST_OPC_ATTENTION, ctx, "bsne->bsnd", "esd", q);
        take_costs(&g->ops[o], find_op(blk, nb, "attention"), 0);
    } else {
        int sc = T("scores_out", 0, b, heads, S, S);
        o = OP("scores", ST_GOP_MATMUL, ST_OPC_BGEMM, sc, "bsne->bnst", "est", q);
        take_costs(&g->ops[o], find_op(blk, nb, "scores"), 0);
        int pr = T("softmax_out", 0, b, heads, S, S);
        o = OP("softmax", ST_GOP_SOFTMAX, ST_OPC_SOFTMAX, pr, "bnst->bnst", "t", sc);
        take_costs(&g->ops[o], find_op(blk, nb, "softmax"), ST_G_MAXIN);
        pr = chain(&B, blk, nb, "attn_dropout", pr, "bnst");
        ctx = T("context_out", 0, b, S, heads, d);
        o = OP("context", ST_GOP_MATMUL, ST_OPC_BGEMM, ctx, "bnst,bsne->bsnd", "estd", pr, q);
        take_costs(&g->ops[o], find_op(blk, nb, "context"), 1);
        ctx = chain(&B, blk, nb, "context_transpose", ctx, "bsnd");
    }
    int wproj = T("proj.weight", 1, heads, d, h);
    int po = T("proj_out", 0, b, S, h);
    o = OP("proj", ST_GOP_MATMUL, ST_OPC_GEMM, po, "bsnd,ndh->bsh", "", ctx, wproj);
    take_costs(&g->ops[o], find_op(blk, nb, "proj"), 0);
    int xm = T("attn_residual_out", 0, b, S, h);
    o = OP("attn_residual", ST_GOP_ELEMWISE, ST_OPC_ELEMWISE, xm, "bsh,bsh->bsh", "", x, po);
    take_costs(&g->ops[o], find_op(blk, nb, "attn_residual"), 0);
    int wln2 = T("ln2.weight", 1, h);
    int a2 = T("ln2_out", 0, b, S, h);
    o = OP("ln2", ST_GOP_NORM, ST_OPC_NORM, a2, "bsh,h->bsh", "h", xm, wln2);
    take_costs(&g->ops[o], find_op(blk, nb, "ln2"), 0);
    norm = o;
    int mo;
    if (!find_op(blk, nb, "router")) {
        int w1 = T("fc1.weight", 1, h, gate * f);
        int f1 = T("fc1_out", 0, b, S, gate * f);
        o = OP("fc1", ST_GOP_MATMUL, ST_OPC_GEMM, f1, "bsh,hf->bsf", "", a2, w1);
        take_costs(&g->ops[o], find_op(blk, nb, "fc1"), 0);
        save_at_norm(&g->ops[norm], &g->ops[o]);
        int g1 = T("act_out", 0, b, S, f);
        o = OP("act", ST_GOP_ELEMWISE, ST_OPC_ELEMWISE, g1, "bsf->bsf", "", f1);
        take_costs(&g->ops[o], find_op(blk, nb, "act"), 0);
        int w2 = T("fc2.weight", 1, f, h);
        mo = T("fc2_out", 0, b, S, h);
        o = OP("fc2", ST_GOP_MATMUL, ST_OPC_GEMM, mo, "bsf,fh->bsh", "", g1, w2);
        take_costs(&g->ops[o], find_op(blk, nb, "fc2"), 0);
    } else {
        int64_t E = m->experts, k = m->experts_topk;
        int64_t C = (b * S * k + E - 1) / E; /* tokens per expert, balanced routing */
        int64_t fe = m->moe_ffn > 0 ? m->moe_ffn : f; /* each expert's own ffn (DeepSeek's 2048 beside 18432) */
        int wr = T("router.weight", 1, h, E);
        int r = T("router_out", 0, b, S, E);
        o = OP("router", ST_GOP_MATMUL, ST_OPC_GEMM, r, "bsh,he->bse", "", a2, wr);
        const st_op *ro = find_op(blk, nb, "router");
        take_costs(&g->ops[o], ro, 0);
        int dsp = T("dispatch_out", 0, E, C, h);
        o = OP("dispatch", ST_GOP_DISPATCH, ST_OPC_ELEMWISE, dsp, "bsh,bse->ech", "e", a2, r);
        /* the permutation reads and writes every routed token copy once */
        g->ops[o].fwd_bytes = 2.0 * (double)(E * C * h) * st_dtype_bytes(dt);
        g->ops[o].bwd_bytes = g->ops[o].fwd_bytes;
        strcpy(g->ops[o].alias_from, "bs");
        strcpy(g->ops[o].alias_to, "cc");
        int w1 = T("experts.fc1.weight", 1, E, h, gate * fe);
        int f1 = T("expert_fc1_out", 0, E, C, gate * fe);
        o = OP("expert_fc1", ST_GOP_MATMUL, ST_OPC_GEMM, f1, "ech,ehf->ecf", "", dsp, w1);
        take_costs(&g->ops[o], find_op(blk, nb, "expert_fc1"), 0);
        int g1 = T("expert_act_out", 0, E, C, fe);
        o = OP("expert_act", ST_GOP_ELEMWISE, ST_OPC_ELEMWISE, g1, "ecf->ecf", "", f1);
        take_costs(&g->ops[o], find_op(blk, nb, "expert_act"), 0);
        int w2 = T("experts.fc2.weight", 1, E, fe, h);
        int e2 = T("expert_fc2_out", 0, E, C, h);
        o = OP("expert_fc2", ST_GOP_MATMUL, ST_OPC_GEMM, e2, "ecf,efh->ech", "", g1, w2);
        take_costs(&g->ops[o], find_op(blk, nb, "expert_fc2"), 0);
        mo = T("moe_out", 0, b, S, h);
        o = OP("moe_combine", ST_GOP_COMBINE, ST_OPC_ELEMWISE, mo, "ech,bse->bsh", "e", e2, r);
        take_costs(&g->ops[o], find_op(blk, nb, "moe_combine"), 1);
        /* the dispatch's mirror: the tokens' split is the expert outputs' capacity split, so a combine on the
         * rows takes from the experts only its rows' outputs (Megatron-Core's combine all-to-all,
         * token_dispatcher.py's combine_all_to_all), not every expert output gathered */
        strcpy(g->ops[o].alias_from, "bs");
        strcpy(g->ops[o].alias_to, "cc");
    }
    int xo = T("mlp_residual_out", 0, b, S, h);
    o = OP("mlp_residual", ST_GOP_ELEMWISE, ST_OPC_ELEMWISE, xo, "bsh,bsh->bsh", "", xm, mo);
    take_costs(&g->ops[o], find_op(blk, nb, "mlp_residual"), 0);
    g->block_out = xo;

    /* ---- tail */
    B.block = 0;
    int wfn = T("final_norm.weight", 1, h);
    int fn = T("final_norm_out", 0, b, S, h);
    o = OP("final_norm", ST_GOP_NORM, ST_OPC_NORM, fn, "bsh,h->bsh", "h", xo, wfn);
    take_costs(&g->ops[o], find_op(tail, nt, "final_norm"), 0);
    norm = o;
    int wout = T("output.weight", 1, h, v);
    g->t[wout].shared = m->tied_embeddings;
    int lg = T("logits_out", 0, b, S, v);
    o = OP("logits", ST_GOP_MATMUL, ST_OPC_GEMM, lg, "bsh,hv->bsv", "", fn, wout);
    take_costs(&g->ops[o], find_op(tail, nt, "logits"), 0);
    save_at_norm(&g->ops[norm], &g->ops[o]);
    int loss = add_tensor(&B, "loss", 0, NULL, 0);
    o = OP("loss", ST_GOP_LOSS, ST_OPC_LOSS, loss, "bsv->", "", lg);
    take_costs(&g->ops[o], find_op(tail, nt, "loss"), 0);
    if (g->ntensors <= 0 || !g->t || !g->ops) {
        st_graph_free(g);
        return st_error_set(err, ST_ENOMEM, NULL, NULL, "out of memory building the graph");
    }
    int rc = st_graph_check(g, NULL, err);
    if (rc) st_graph_free(g);
    return rc;
}

/* ------------------------------------------------------------ checking */

static const char generic[] = "ABCDEF";

static void set_generic(char *lab, int ndim, int from) {
    for (int i = 0; i < ndim; i++) lab[i] = generic[from + i];
    lab[ndim] = 0;
}

#define BAD(...) st_error_set(err, ST_EINVAL, file, key, __VA_ARGS__)

static int same_dims(const st_gtensor *a, const st_gtensor *b) {
    if (a->ndim != b->ndim) return 0;
    for (int i = 0; i < a->ndim; i++)
        if (a->dim[i] != b->dim[i]) return 0;
    return 1;
}

static void fmt_shape(const st_gtensor *t, char *buf, size_t n) {
    size_t k = (size_t)snprintf(buf, n, "[");
    for (int i = 0; i < t->ndim && k < n; i++) k += (size_t)snprintf(buf + k, n - k, "%s%lld", i ? ", " : "", (long long)t->dim[i]);
    if (k < n) snprintf(buf + k, n - k, "]");
}

/* Labels for an operator of a custom graph from its type and shapes; checks the shapes. */
static int derive_labels(st_graph *g, int oi, const char *file, st_error *err) {
    st_gop *o = &g->ops[oi];
    char key[96];
    snprintf(key, sizeof key, "ops[%d] (%s)", oi, o->name);
    const st_gtensor *in0 = &g->t[o->in[0]], *out = &g->t[o->out];
    const st_gtensor *in1 = o->nin > 1 ? &g->t[o->in[1]] : NULL;
    char s0[96], s1[96], so[96];
    fmt_shape(in0, s0, sizeof s0);
    fmt_shape(out, so, sizeof so);
    if (in1) fmt_shape(in1, s1, sizeof s1);
    int r = in0->ndim;
    switch (o->type) {
    case ST_GOP_MATMUL: {
        if (o->nin != 2) return BAD("a matmul takes 2 inputs (activation, weight), not %d", o->nin);
        if (r < 2 || r > 5) return BAD("matmul input '%s' %s must have 2 to 5 dimensions", in0->name, s0);
        int batched = in1->ndim == r && r > 2;
        if (in1->ndim != 2 && !batched)
            return BAD("matmul second input '%s' %s must be [k, n] or batched like '%s' %s", in1->name, s1, in0->name, s0);
        int k1 = batched ? r - 2 : 0;
        if (in0->dim[r - 1] != in1->dim[k1])
            return BAD("matmul shapes do not match: '%s' %s has k = %lld, '%s' %s has %lld", in0->name, s0,
                       (long long)in0->dim[r - 1], in1->name, s1, (long long)in1->dim[k1]);
        for (int i = 0; batched && i < r - 2; i++)
            if (in0->dim[i] != in1->dim[i])
                return BAD("batched matmul: '%s' %s and '%s' %s differ in batch dimension %d", in0->name, s0, in1->name, s1, i);
        if (out->ndim != r || out->dim[r - 1] != in1->dim[in1->ndim - 1])
            return BAD("matmul output '%s' %s does not match its inputs '%s' %s and '%s' %s", out->name, so, in0->name,
                       s0, in1->name, s1);
        for (int i = 0; i < r - 1; i++)
            if (out->dim[i] != in0->dim[i])
                return BAD("matmul output '%s' %s does not match input '%s' %s", out->name, so, in0->name, s0);
        set_generic(o->lab[0], r - 1, 0);
        strcat(o->lab[0], "k");
        if (batched) {
            set_generic(o->lab[1], r - 2, 0);
            strcat(o->lab[1], "kn");
        } else {
            strcpy(o->lab[1], "kn");
        }
        set_generic(o->lab_out, r - 1, 0);
        strcat(o->lab_out, "n");
        break;
    }
    case ST_GOP_ELEMWISE:
    case ST_GOP_NORM:
    case ST_GOP_SOFTMAX:
        if (!same_dims(in0, out))
            return BAD("%s output '%s' %s must have its input's shape, '%s' %s", st_gop_type_name(o->type), out->name, so,
                       in0->name, s0);
        set_generic(o->lab_out, r, 0);
        for (int i = 0; i < o->nin; i++) {
            const st_gtensor *t = &g->t[o->in[i]];
            int nd = t->ndim;
            int ok = nd <= r;
            for (int j = 0; ok && j < nd; j++) ok = t->dim[j] == out->dim[r - nd + j];
            if (!ok) {
                char st[96];
                fmt_shape(t, st, sizeof st);
                return BAD("input '%s' %s does not match (or broadcast to) the output's shape %s", t->name, st, so);
            }
            snprintf(o->lab[i], sizeof o->lab[i], "%s", o->lab_out + (r - nd));
        }
        if (o->type != ST_GOP_ELEMWISE && r > 0) snprintf(o->nosplit, sizeof o->nosplit, "%c", o->lab_out[r - 1]);
        break;
    case ST_GOP_ATTENTION:
        if (o->nin != 3 || r != 4) return BAD("attention takes q, k, v of shape [batch, seq, heads, head_dim]");
        for (int i = 1; i < 3; i++) {
            const st_gtensor *t = &g->t[o->in[i]];
            if (t->ndim != 4 || t->dim[0] != in0->dim[0] || t->dim[3] != in0->dim[3] || t->dim[2] <= 0 ||
                in0->dim[2] % t->dim[2])
                return BAD("attention input '%s' must be [batch, seq, kv_heads, head_dim] with kv_heads dividing q's heads",
                           t->name);
        }
        if (!same_dims(in0, out)) return BAD("attention output '%s' %s must have q's shape %s", out->name, so, s0);
        for (int i = 0; i < 3; i++) strcpy(o->lab[i], "bsnd");
        strcpy(o->lab_out, "bsnd");
        strcpy(o->nosplit, "sd");
        break;
    case ST_GOP_EMBEDDING:
        if (o->nin != 2 || in1->ndim != 2) return BAD("an embedding takes token ids and a [vocab, hidden] table");
        if (out->ndim != r + 1 || out->dim[r] != in1->dim[1])
            return BAD("embedding output '%s' %s must be the ids' shape plus the table's hidden size", out->name, so);
        for (int i = 0; i < r; i++)
            if (out->dim[i] != in0->dim[i]) return BAD("embedding output '%s' %s does not match ids %s", out->name, so, s0);
        set_generic(o->lab[0], r, 0);
        strcpy(o->lab[1], "vh");
        set_generic(o->lab_out, r, 0);
        strcat(o->lab_out, "h");
        break;
    case ST_GOP_LOSS:
        if (r < 1) return BAD("loss input '%s' needs a class dimension", in0->name);
        if (out->ndim != 0) return BAD("loss output '%s' must be a scalar (shape [])", out->name);
        set_generic(o->lab[0], r - 1, 0);
        strcat(o->lab[0], "v");
        for (int i = 1; i < o->nin; i++) set_generic(o->lab[i], g->t[o->in[i]].ndim, 0);
        o->lab_out[0] = 0;
        break;
    case ST_GOP_CONV:
        if (o->nin != 2 || r != 4 || in1->ndim != 4 || out->ndim != 4)
            return BAD("conv takes x [n, c, h, w] and weight [out_c, c, kh, kw] and gives [n, out_c, h', w']");
        if (in1->dim[1] != in0->dim[1])
            return BAD("conv channels do not match: '%s' %s vs weight '%s' %s", in0->name, s0, in1->name, s1);
        if (out->dim[0] != in0->dim[0] || out->dim[1] != in1->dim[0])
            return BAD("conv output '%s' %s must be [%lld, %lld, h', w']", out->name, so, (long long)in0->dim[0],
                       (long long)in1->dim[0]);
        strcpy(o->lab[0], "ncHW");
        strcpy(o->lab[1], "ocPQ");
        strcpy(o->lab_out, "noHW");
        strcpy(o->nosplit, "HWPQ");
        break;
    case ST_GOP_RESIZE:
        if (r != 4 || out->ndim != 4 || out->dim[0] != in0->dim[0] || out->dim[1] != in0->dim[1])
            return BAD("resize takes [n, c, h, w] to [n, c, h', w'] ('%s' %s -> '%s' %s)", in0->name, s0, out->name, so);
        strcpy(o->lab[0], "ncHW");
        strcpy(o->lab_out, "ncHW");
        strcpy(o->nosplit, "HW");
        break;
    case ST_GOP_CONCAT: {
        int64_t sum = 0;
        for (int i = 0; i < o->nin; i++) {
            const st_gtensor *t = &g->t[o->in[i]];
            int ok = t->ndim == out->ndim && t->ndim >= 2;
            for (int j = 0; ok && j < t->ndim; j++) ok = j == 1 || t->dim[j] == out->dim[j];
            if (!ok) return BAD("concat input '%s' must match output '%s' %s except in dimension 1", t->name, out->name, so);
            sum += t->dim[1];
            set_generic(o->lab[i], t->ndim, 0);
        }
        if (sum != out->dim[1])
            return BAD("concat output '%s' %s: dimension 1 must be the inputs' sum, %lld", out->name, so, (long long)sum);
        set_generic(o->lab_out, out->ndim, 0);
        strcpy(o->nosplit, "B");
        break;
    }
    case ST_GOP_DISPATCH:
        if (r < 2 || out->ndim != 3 || out->dim[2] != in0->dim[r - 1])
            return BAD("dispatch takes tokens [..., hidden] (+ router [..., experts]) to [experts, capacity, hidden]");
        if (r - 1 > (int)sizeof o->alias_from - 1) /* each token dimension aliases the capacity */
            return BAD("dispatch tokens '%s' %s: at most %d token dimensions", in0->name, s0, (int)sizeof o->alias_from - 1);
        set_generic(o->lab[0], r - 1, 0);
        strcat(o->lab[0], "h");
        if (in1) {
            if (in1->ndim != r || in1->dim[r - 1] != out->dim[0])
                return BAD("dispatch router input '%s' %s must be [..., %lld experts]", in1->name, s1, (long long)out->dim[0]);
            set_generic(o->lab[1], r - 1, 0);
            strcat(o->lab[1], "e");
        }
        strcpy(o->lab_out, "ech");
        strcpy(o->nosplit, "e");
        for (int i = 0; i < r - 1; i++) o->alias_from[i] = generic[i], o->alias_to[i] = 'c';
        break;
    case ST_GOP_COMBINE:
        if (r != 3 || out->ndim < 2 || out->dim[out->ndim - 1] != in0->dim[2])
            return BAD("combine takes [experts, capacity, hidden] (+ router [..., experts]) to tokens [..., hidden]");
        if (out->ndim - 1 > (int)sizeof o->alias_from - 1)
            return BAD("combine output '%s' %s: at most %d token dimensions", out->name, so, (int)sizeof o->alias_from - 1);
        strcpy(o->lab[0], "ech");
        set_generic(o->lab_out, out->ndim - 1, 0);
        strcat(o->lab_out, "h");
        if (in1) {
            set_generic(o->lab[1], in1->ndim - 1, 0);
            strcat(o->lab[1], "e");
        }
        strcpy(o->nosplit, "e");
        /* the tokens' dimensions split the capacity, as the dispatch's (the combine's all-to-all) */
        for (int i = 0; i < out->ndim - 1; i++) o->alias_from[i] = generic[i], o->alias_to[i] = 'c';
        break;
    default: return BAD("unknown operator type");
    }
    return 0;
}

double st_gop_label_size(const st_graph *g, const st_gop *o, char l) {
    for (int i = 0; i <= o->nin; i++) {
        const char *lab = i < o->nin ? o->lab[i] : o->lab_out;
        const st_gtensor *t = &g->t[i < o->nin ? o->in[i] : o->out];
        const char *p = strchr(lab, l);
        if (p && *p) return (double)t->dim[p - lab];
    }
    return 1;
}

/* FLOPs and bytes by rule where a custom graph did not give them */
static void derive_costs(st_graph *g, st_gop *o) {
    const st_gtensor *out = &g->t[o->out], *in0 = &g->t[o->in[0]];
    double bytes = tbytes(out), wbytes = 0;
    for (int i = 0; i < o->nin; i++) {
        bytes += tbytes(&g->t[o->in[i]]);
        if (g->t[o->in[i]].weight) wbytes += tbytes(&g->t[o->in[i]]);
    }
    if (o->fwd_flops <= 0) {
        switch (o->type) {
        case ST_GOP_MATMUL:
        case ST_GOP_CONV: {
            /* 2 x the product of every label's size (an einsum's multiply-adds) */
            char seen[32] = "";
            double f = 2;
            for (int i = 0; i <= o->nin; i++) {
                const char *lab = i < o->nin ? o->lab[i] : o->lab_out;
                for (const char *p = lab; *p; p++)
                    if (!strchr(seen, *p) && strlen(seen) < sizeof seen - 1) {
                        size_t n = strlen(seen);
                        seen[n] = *p;
                        seen[n + 1] = 0;
                        f *= st_gop_label_size(g, o, *p);
                    }
            }
            o->fwd_flops = f;
            break;
        }
        case ST_GOP_ATTENTION:
            /* QK^T and PV: 2 x 2 x b x s x s_kv x heads x d (Dao et al. 2022, FlashAttention); a
             * custom graph's attention has no causal mask (it says nothing of one) */
            o->fwd_flops = 4 * st_gtensor_numel(in0) * (double)g->t[o->in[1]].dim[1];
            break;
        case ST_GOP_LOSS: o->fwd_flops = 5 * st_gtensor_numel(in0); break;
        default: o->fwd_flops = 4 * fmax(st_gtensor_numel(out), st_gtensor_numel(in0)); break;
        }
    }
    if (o->bwd_flops <= 0) o->bwd_flops = (o->type == ST_GOP_ATTENTION ? 2.5 : 2) * o->fwd_flops;
    if (o->type == ST_GOP_ATTENTION && !(o->gemm[0] > 0)) {
        /* the kernel's shape, for cost/compute.c's rate tables: query and key lengths, head dim */
        o->gemm[0] = (double)in0->dim[1], o->gemm[1] = (double)g->t[o->in[1]].dim[1];
        o->gemm[2] = (double)in0->dim[3], o->gemm[3] = (double)in0->dim[0] * (double)in0->dim[2];
    }
    if (o->fwd_bytes <= 0) o->fwd_bytes = bytes;
    if (o->bwd_bytes <= 0)
        o->bwd_bytes = (o->type == ST_GOP_MATMUL || o->type == ST_GOP_CONV) ? 2 * bytes + wbytes : 1.5 * bytes;
    if (o->type == ST_GOP_MATMUL || o->type == ST_GOP_CONV) o->kernels_bwd = 2;
    if (o->saved_bytes <= 0 && !o->saved_given) {
        /* what autograd keeps: a matmul's or norm's activation input, a softmax's output; a
         * two-input element-wise op (add) keeps nothing */
        if (o->type == ST_GOP_SOFTMAX) {
            o->saved_bytes = tbytes(out);
            o->save_ref = ST_G_MAXIN;
        } else if (!(o->type == ST_GOP_ELEMWISE && o->nin > 1) && !in0->weight && !in0->input) {
            o->saved_bytes = tbytes(in0);
            o->save_ref = 0;
        }
        if (o->type == ST_GOP_ATTENTION) o->saved_bytes = 4 * tbytes(in0); /* q, k, v, output */
    }
}

/* An operator on a cycle: strip operators without remaining predecessors, then those without
 * remaining successors (Kahn's algorithm both ways); what is left lies on cycles. */
static int on_cycle(const st_graph *g) {
    char *gone = calloc((size_t)g->nops, 1);
    if (!gone) return 0;
    for (int changed = 1; changed;) {
        changed = 0;
        for (int o = 0; o < g->nops; o++) {
            if (gone[o]) continue;
            int pred = 0, succ = 0;
            for (int i = 0; i < g->ops[o].nin; i++) {
                int p = g->t[g->ops[o].in[i]].producer;
                pred += p >= 0 && !gone[p];
            }
            for (int c = 0; c < g->nops; c++)
                for (int i = 0; !gone[c] && i < g->ops[c].nin; i++) succ += g->t[g->ops[c].in[i]].producer == o;
            if (!pred || !succ) gone[o] = 1, changed = 1;
        }
    }
    int r = 0;
    while (r < g->nops - 1 && gone[r]) r++;
    free(gone);
    return r;
}

/* Cuts a graph without a repeated block into segments for the pipeline-stage DP (coarsening): the
 * operators every path from the graph's inputs to its outputs goes through (they dominate a
 * virtual sink fed by every output, in the dominator tree igraph builds from a virtual root that
 * feeds every operator reading only inputs and weights). No edge skips such an operator, so its
 * output is the only activation between the segment it ends and the next. g->topo must be set. */
static int segments(st_graph *g, const char *file, st_error *err) {
    int n = g->nops, root = n, sink = n + 1, ne = 0, rc = 0;
    for (int oi = 0; oi < n; oi++) {
        int from_op = 0;
        for (int i = 0; i < g->ops[oi].nin; i++) from_op += g->t[g->ops[oi].in[i]].producer >= 0;
        ne += from_op ? from_op : 1;
        ne += g->t[g->ops[oi].out].nconsumers == 0;
    }
    igraph_vector_int_t edges, dom;
    igraph_t ig;
    if (igraph_vector_int_init(&edges, 2 * ne)) return st_error_set(err, ST_ENOMEM, file, NULL, "out of memory");
    int k = 0;
    for (int oi = 0; oi < n; oi++) {
        int from_op = 0;
        for (int i = 0; i < g->ops[oi].nin; i++) {
            int p = g->t[g->ops[oi].in[i]].producer;
            if (p < 0) continue;
            VECTOR(edges)[k++] = p, VECTOR(edges)[k++] = oi;
            from_op = 1;
        }
        if (!from_op) VECTOR(edges)[k++] = root, VECTOR(edges)[k++] = oi;
        if (g->t[g->ops[oi].out].nconsumers == 0) VECTOR(edges)[k++] = oi, VECTOR(edges)[k++] = sink;
    }
    if (igraph_create(&ig, &edges, n + 2, IGRAPH_DIRECTED)) {
        igraph_vector_int_destroy(&edges);
        return st_error_set(err, ST_ENOMEM, file, NULL, "out of memory");
    }
    igraph_vector_int_destroy(&edges);
    char *cut = calloc((size_t)n, 1);
    free(g->seg), free(g->seg_cut);
    g->seg = malloc((size_t)n * sizeof *g->seg);
    g->seg_cut = malloc((size_t)n * sizeof *g->seg_cut);
    if (!cut || !g->seg || !g->seg_cut || igraph_vector_int_init(&dom, n + 2)) {
        free(cut);
        igraph_destroy(&ig);
        return st_error_set(err, ST_ENOMEM, file, NULL, "out of memory");
    }
    if (igraph_dominator_tree(&ig, root, &dom, NULL, NULL, IGRAPH_OUT) == IGRAPH_SUCCESS) {
        /* the sink's dominators, up to the root; an operator whose output nothing reads ends the
         * last segment rather than cutting one */
        for (igraph_integer_t d = VECTOR(dom)[sink], hops = 0; d >= 0 && d < n && hops <= n; d = VECTOR(dom)[d], hops++)
            if (g->t[g->ops[d].out].nconsumers > 0) cut[d] = 1;
    }
    int s = 0;
    for (int i = 0; i < n; i++) {
        int o = g->topo[i];
        g->seg[o] = s;
        if (cut[o]) g->seg_cut[s++] = o;
    }
    g->seg_cut[s] = -1; /* the last segment ends with the graph's outputs */
    g->nsegs = s + 1;
    free(cut);
    igraph_vector_int_destroy(&dom);
    igraph_destroy(&ig);
    return rc;
}

/* igraph's default error handler prints and aborts the process (igraph_error.h); strata checks
 * every igraph call's status instead, so its errors come back as codes, silently, and its warnings
 * are not printed over strata's output. */
void st__graph_init(void) {
    igraph_set_error_handler(igraph_error_handler_ignore);
    igraph_set_warning_handler(igraph_warning_handler_ignore);
}

int st_graph_check(st_graph *g, const char *file, st_error *err) {
    char key[96] = "";
    if (g->nops < 1) return st_error_set(err, ST_EINVAL, file, "ops", "the graph has no operators");
    for (int i = 0; i < g->ntensors; i++) g->t[i].producer = -1, g->t[i].nconsumers = 0;
    for (int oi = 0; oi < g->nops; oi++) {
        st_gop *o = &g->ops[oi];
        snprintf(key, sizeof key, "ops[%d] (%s)", oi, o->name);
        st_gtensor *out = &g->t[o->out];
        if (out->weight || out->input) return BAD("writes '%s', which is a weight or an input", out->name);
        if (out->producer >= 0)
            return BAD("writes '%s', which operator '%s' already writes", out->name, g->ops[out->producer].name);
        out->producer = oi;
        for (int i = 0; i < o->nin; i++) {
            if (o->in[i] == o->out) return BAD("reads its own output '%s'", out->name);
            g->t[o->in[i]].nconsumers++;
        }
    }
    for (int i = 0; i < g->ntensors; i++) {
        const st_gtensor *t = &g->t[i];
        snprintf(key, sizeof key, "tensors[%d] (%s)", i, t->name);
        if (t->producer < 0 && !t->weight && !t->input) {
            if (t->nconsumers > 0)
                return BAD("dangling tensor: read by an operator, but no operator writes it and it is neither an "
                           "input nor a weight");
            return BAD("dangling tensor: nothing writes or reads it");
        }
        if ((t->weight || t->input) && t->nconsumers == 0) return BAD("dangling tensor: no operator reads it");
    }
    for (int oi = 0; oi < g->nops; oi++) {
        st_gop *o = &g->ops[oi];
        snprintf(key, sizeof key, "ops[%d] (%s)", oi, o->name);
        int rc;
        if (!o->lab_out[0] && !o->lab[0][0] && (rc = derive_labels(g, oi, file, err))) return rc;
        /* labels must name every dimension of their tensor */
        for (int i = 0; i <= o->nin; i++) {
            const char *lab = i < o->nin ? o->lab[i] : o->lab_out;
            const st_gtensor *t = &g->t[i < o->nin ? o->in[i] : o->out];
            if ((int)strlen(lab) != t->ndim) return st_error_set(err, ST_EINTERNAL, file, key, "labels '%s' for '%s'", lab, t->name);
        }
        derive_costs(g, o);
    }

    /* acyclic, and a topological order (igraph) */
    igraph_vector_int_t edges, order;
    igraph_t ig;
    int ne = 0;
    for (int oi = 0; oi < g->nops; oi++)
        for (int i = 0; i < g->ops[oi].nin; i++) ne += g->t[g->ops[oi].in[i]].producer >= 0;
    if (igraph_vector_int_init(&edges, 2 * ne)) return st_error_set(err, ST_ENOMEM, file, NULL, "out of memory");
    int k = 0;
    for (int oi = 0; oi < g->nops; oi++)
        for (int i = 0; i < g->ops[oi].nin; i++) {
            int p = g->t[g->ops[oi].in[i]].producer;
            if (p < 0) continue;
            VECTOR(edges)[k++] = p;
            VECTOR(edges)[k++] = oi;
        }
    int rc = 0;
    if (igraph_create(&ig, &edges, g->nops, IGRAPH_DIRECTED)) {
        igraph_vector_int_destroy(&edges);
        return st_error_set(err, ST_ENOMEM, file, NULL, "out of memory");
    }
    igraph_vector_int_destroy(&edges);
    igraph_bool_t dag = 0;
    if (igraph_is_dag(&ig, &dag) != IGRAPH_SUCCESS) {
        igraph_destroy(&ig);
        return st_error_set(err, ST_ENOMEM, file, NULL, "out of memory checking the graph for cycles");
    }
    if (!dag) {
        igraph_destroy(&ig);
        return st_error_set(err, ST_EINVAL, file, "ops", "the graph has a cycle through operator '%s'",
                            g->ops[on_cycle(g)].name);
    }
    if (igraph_vector_int_init(&order, g->nops) != IGRAPH_SUCCESS) {
        igraph_destroy(&ig);
        return st_error_set(err, ST_ENOMEM, file, NULL, "out of memory");
    }
    free(g->topo);
    g->topo = malloc((size_t)g->nops * sizeof *g->topo);
    if (!g->topo || igraph_topological_sorting(&ig, &order, IGRAPH_OUT) != IGRAPH_SUCCESS ||
        igraph_vector_int_size(&order) != g->nops)
        rc = st_error_set(err, ST_ENOMEM, file, NULL, "out of memory ordering the graph");
    for (int i = 0; !rc && i < g->nops; i++) g->topo[i] = (int)VECTOR(order)[i];
    igraph_vector_int_destroy(&order);
    igraph_destroy(&ig);
    if (g->repeat < 1) g->repeat = 1;
    if (!rc && g->block_in < 0) rc = segments(g, file, err);
    return rc;
}
