/* lower_as.c: lowers an operator-level (ILP) plan to programs (program.h) for the simulator:
 * one representative rank per pipeline stage, standing for the devices of the stage's mesh (they
 * run one SPMD program). Each micro-batch's forward and backward are the stage's steps from
 * st_autoshard_work: the operators' compute, merged between collectives, and every resharding
 * collective as its own instruction on the compute stream, where frameworks issue them; the
 * activations and their gradients travel between neighbour stages as send/receive (Megatron-LM's
 * blocking receive on the compute stream, the send on the p2p stream), each device pair moving its
 * share, then resharded inside the receiving mesh as its first operators need (the ENTER steps); the weight gradients are
 * all-reduced once per iteration, per mesh axis, on the data-parallel stream after the stage's last
 * backward; with the distributed optimizer (zero 1) reduce-scattered instead, innermost axis first,
 * and the updated weights all-gathered back, outermost axis first, where the optimizer step would
 * end (Megatron-LM's distributed optimizer). 1F1B order, as the stage DP prices the pipeline.
 *
 * Operators (program.h, "Operators"): each stage's operators, as its devices run them, in the table
 * stage by stage: forward (head, each layer, tail), backward (tail, each layer from the last, head),
 * and with recompute each layer's forward again (from the last); an entry's index is its operator
 * in the graph (st_graph.ops), its layer the block's (-1: head, repeat: tail; a custom graph's: its
 * segment), its shape, FLOPs and bytes one device's share as the ILP priced it (st_as_step). A
 * COMPUTE instruction runs the operators of the steps it merges. The resharding collectives already
 * sit between the operators, where frameworks issue them, so every COLL names the operator whose
 * output (in backward, whose output's gradient) it reshards (st_as_step.src): in a forward right
 * after it, in a backward right before it; -1 for what arrives from the previous stage. A
 * recompute's resharding of a saved tensor names the forward that made it.
 *
 * Not modelled here (yet): the links (transfers take their time alone: a stage's collectives run
 * one at a time on its compute stream, and stages use disjoint GPUs), the optimizer step between
 * the reduction and the gather (the ILP does not price it either). */
#include "src/lower/lower.h"

#include <stdlib.h>
#include <string.h>

typedef struct pb {
    st_program *pg;
    int failed;
} pb;

static int push(pb *b, const st_ins *in) {
    st_program *pg = b->pg;
    if (pg->n == pg->cap) {
        int cap = pg->cap ? 2 * pg->cap : 256;
        st_ins *p = realloc(pg->ins, (size_t)cap * sizeof *p);
        if (!p) {
            b->failed = 1;
            return -1;
        }
        pg->ins = p;
        pg->cap = cap;
    }
    pg->ins[pg->n] = *in;
    return pg->n++;
}

static st_ins blank(st_ins_kind kind, int stream, int mb, const char *label) {
    st_ins in;
    memset(&in, 0, sizeof in);
    in.kind = (uint8_t)kind;
    in.stream = (uint8_t)stream;
    in.chunk = 0;
    in.mb = mb;
    in.dep[0] = in.dep[1] = -1;
    in.label = label;
    in.phase = ST_PHASE_OTHER;
    in.coll = ST_COLL_NONE;
    in.peer = -1; /* and group and op: they share a field */
    if (kind == ST_INS_COLL) in.coll_op = -1; /* (a COMPUTE's nops, in the same field: 0 until part() counts) */
    in.route = -1;
    return in;
}

typedef struct stage_ctx {
    const st_as_work *w;
    int rank, nstages, layers, has_head, has_tail;
    /* the operator table: where the stage's forward, backward and recompute entries start, the
     * compute steps of the head, of one layer and of the tail, and per graph op its part and its
     * place among that part's compute steps (st_as_work order) in forward and in backward */
    int32_t fwd0, bwd0, rec0;
    int nhead, nlayer, ntail;
    const int *part_of, *pos[2];
    int group[2];           /* the stage's collective group per mesh axis */
    double p2p_prev, p2p_next; /* one-way send time to / from the neighbour (the sender's) */
    double bytes_prev, bytes_next;
} stage_ctx;

/* The table entry of the j-th compute step of part p in stage-local layer l (LAYER) in phase ph
 * (FWD, BWD or RECOMPUTE): the table lists a backward's and a recompute's layers last first. */
static int32_t entry(const stage_ctx *S, int ph, int p, int l, int j) {
    int down = S->layers - 1 - l;
    if (ph == ST_PHASE_RECOMPUTE) return S->rec0 + down * S->nlayer + j;
    int all = S->layers * S->nlayer;
    if (ph == ST_PHASE_FWD)
        return S->fwd0 + j + (p == ST_AS_HEAD ? 0 : p == ST_AS_LAYER ? S->nhead + l * S->nlayer : S->nhead + all);
    return S->bwd0 + j + (p == ST_AS_TAIL ? 0 : p == ST_AS_LAYER ? S->ntail + down * S->nlayer : S->ntail + all);
}

/* The entry a collective of part p (layer l: the one LAYER runs, the one CROSS enters) names: the
 * operator whose output it reshards, in the phase ph runs; a recompute's from another layer (or the
 * head) reshards what that layer's forward kept. -1 when it arrives from the previous stage. */
static int32_t coll_entry(const stage_ctx *S, int ph, int p, int l, int src) {
    if (src < 0) return -1;
    int sp = S->part_of[src], sl = p == ST_AS_CROSS ? l - 1 : p == ST_AS_LEAVE ? S->layers - 1 : l;
    int bwd = ph == ST_PHASE_BWD;
    if (ph == ST_PHASE_RECOMPUTE && !(sp == ST_AS_LAYER && p == ST_AS_LAYER)) ph = ST_PHASE_FWD;
    return entry(S, ph, sp, sl, S->pos[bwd][src]);
}

/* Emits one part's steps (forward or backward list) in phase ph (FWD, BWD, or RECOMPUTE: the
 * forward list again), merging consecutive compute; l is the stage-local layer (LAYER: the one it
 * runs; CROSS: the one it enters). Returns the last instruction, or `last` when the part is empty. */
static int part(pb *b, const stage_ctx *S, int p, int ph, int l, int mb, int last, double *alloc) {
    const st_as_work *w = S->w;
    int bwd = ph == ST_PHASE_BWD;
    const st_as_step *v = w->step[p][bwd];
    int n = w->n[p][bwd];
    for (int i = 0, j = 0; i < n;) {
        st_ins in;
        if (v[i].coll == ST_COLL_NONE) {
            double t = 0;
            in = blank(ST_INS_COMPUTE, ST_STREAM_COMPUTE, mb,
                       ph == ST_PHASE_RECOMPUTE ? "recompute" : bwd ? "bwd" : "fwd");
            in.phase = (uint8_t)ph;
            in.op = entry(S, ph, p, l, j);
            while (i < n && v[i].coll == ST_COLL_NONE) t += v[i++].time_s, j++, in.nops++;
            in.dur_s = t;
        } else {
            in = blank(ST_INS_COLL, ST_STREAM_COMPUTE, mb, st_coll_name(v[i].coll));
            in.coll = (uint8_t)v[i].coll;
            in.group = S->group[v[i].axis];
            in.dur_s = v[i].time_s;
            in.bytes = v[i].bytes;
            in.coll_op = coll_entry(S, ph, p, l, v[i].src);
            i++;
        }
        if (*alloc > 0) in.alloc_bytes = *alloc, *alloc = 0;
        last = push(b, &in);
    }
    return last;
}

static void forward(pb *b, const stage_ctx *S, int mb) {
    double alloc = S->w->saved_bytes;
    int last = -1;
    if (S->rank > 0) {
        st_ins r = blank(ST_INS_RECV, ST_STREAM_COMPUTE, mb, "recv act");
        r.peer = S->rank - 1;
        r.tag = mb * 2;
        r.dur_s = S->p2p_prev;
        r.bytes = S->bytes_prev;
        last = push(b, &r);
    }
    const int F = ST_PHASE_FWD;
    if (S->has_head) last = part(b, S, ST_AS_HEAD, F, 0, mb, last, &alloc);
    /* into the first layer: from the head or the previous stage */
    last = part(b, S, ST_AS_ENTER, F, 0, mb, last, &alloc);
    for (int l = 0; l < S->layers; l++) {
        if (l > 0) last = part(b, S, ST_AS_CROSS, F, l, mb, last, &alloc);
        last = part(b, S, ST_AS_LAYER, F, l, mb, last, &alloc);
    }
    last = part(b, S, ST_AS_LEAVE, F, 0, mb, last, &alloc);
    if (S->has_tail) last = part(b, S, ST_AS_TAIL, F, 0, mb, last, &alloc);
    if (alloc > 0) { /* a stage without steps still holds its activations */
        st_ins in = blank(ST_INS_COMPUTE, ST_STREAM_COMPUTE, mb, "fwd");
        in.phase = ST_PHASE_FWD;
        in.alloc_bytes = alloc;
        last = push(b, &in);
    }
    if (S->rank < S->nstages - 1) {
        st_ins s = blank(ST_INS_SEND, ST_STREAM_P2P, mb, "send act");
        s.peer = S->rank + 1;
        s.tag = mb * 2;
        s.dur_s = S->p2p_next;
        s.bytes = S->bytes_next;
        s.dep[0] = last;
        push(b, &s);
    }
}

static int backward(pb *b, const stage_ctx *S, int mb) {
    double none = 0;
    int last = -1;
    if (S->rank < S->nstages - 1) {
        st_ins r = blank(ST_INS_RECV, ST_STREAM_COMPUTE, mb, "recv grad");
        r.peer = S->rank + 1;
        r.tag = mb * 2 + 1;
        r.dur_s = S->p2p_next;
        r.bytes = S->bytes_next;
        last = push(b, &r);
    }
    const int B = ST_PHASE_BWD, R = ST_PHASE_RECOMPUTE;
    if (S->has_tail) last = part(b, S, ST_AS_TAIL, B, 0, mb, last, &none);
    last = part(b, S, ST_AS_LEAVE, B, 0, mb, last, &none);
    for (int l = S->layers - 1; l >= 0; l--) {
        if (S->w->recompute) { /* the layer's forward again, from the input it kept */
            double alloc = S->w->recompute_bytes;
            if (l > 0) last = part(b, S, ST_AS_CROSS, R, l, mb, last, &alloc);
            else last = part(b, S, ST_AS_ENTER, R, 0, mb, last, &alloc);
            last = part(b, S, ST_AS_LAYER, R, l, mb, last, &alloc);
        }
        int before = b->pg->n;
        last = part(b, S, ST_AS_LAYER, B, l, mb, last, &none);
        if (S->w->recompute && last >= before) b->pg->ins[last].free_bytes += S->w->recompute_bytes;
        if (l > 0) last = part(b, S, ST_AS_CROSS, B, l, mb, last, &none);
    }
    last = part(b, S, ST_AS_ENTER, B, 0, mb, last, &none);
    if (S->has_head) last = part(b, S, ST_AS_HEAD, B, 0, mb, last, &none);
    /* the micro-batch's activations are released when its backward ends */
    st_ins in = blank(ST_INS_COMPUTE, ST_STREAM_COMPUTE, mb, "bwd");
    in.phase = ST_PHASE_BWD;
    in.free_bytes = S->w->saved_bytes;
    if (last >= 0 && b->pg->ins[last].kind == ST_INS_COMPUTE && b->pg->ins[last].stream == ST_STREAM_COMPUTE &&
        b->pg->ins[last].free_bytes == 0)
        b->pg->ins[last].free_bytes = S->w->saved_bytes;
    else
        last = push(b, &in);
    if (S->rank > 0) {
        st_ins s = blank(ST_INS_SEND, ST_STREAM_P2P, mb, "send grad");
        s.peer = S->rank - 1;
        s.tag = mb * 2 + 1;
        s.dur_s = S->p2p_prev;
        s.bytes = S->bytes_prev;
        s.dep[0] = last;
        push(b, &s);
    }
    return last;
}

/* The table entries of one part's compute steps (forward or backward list) in phase ph, layer
 * `layer` (-2: each operator's segment, for custom graphs), at out->ops[out->nops ..). */
static void table_part(st_lowered *out, const st_graph *g, const char *names, const st_as_work *w, int p, int ph,
                       int32_t layer) {
    int bwd = ph == ST_PHASE_BWD;
    for (int i = 0; i < w->n[p][bwd]; i++) {
        const st_as_step *v = &w->step[p][bwd][i];
        if (v->coll != ST_COLL_NONE) continue;
        st_lowered_op *e = &out->ops[out->nops++];
        e->name = names + (size_t)v->op * ST_G_NAME;
        e->layer = layer == -2 ? g->seg[v->op] : layer;
        e->index = (int16_t)v->op;
        e->cls = (uint8_t)g->ops[v->op].cls;
        e->phase = (uint8_t)ph;
        e->m = v->m, e->n = v->n, e->k = v->k, e->batch = v->batch;
        e->flops = v->flops;
        e->bytes = v->bytes;
        e->dur_s = v->time_s;
    }
}

/* Stage X's operators into the table (the file's comment, "Operators"), where X says they start;
 * part_of and pos[2] (per graph op) learn where each op's compute steps lie. out->ops has room. */
static void table_stage(st_lowered *out, const st_autoshard_result *r, const char *names, stage_ctx *X,
                        int *part_of, int *pos[2]) {
    const st_as_work *w = X->w;
    const st_graph *g = r->g;
    int count[ST_AS_PARTS] = {0};
    for (int p = 0; p < ST_AS_PARTS; p++)
        for (int bwd = 0; bwd < 2; bwd++) {
            int j = 0;
            for (int i = 0; i < w->n[p][bwd]; i++) {
                const st_as_step *v = &w->step[p][bwd][i];
                if (v->coll != ST_COLL_NONE) continue;
                part_of[v->op] = p;
                pos[bwd][v->op] = j++;
            }
            count[p] = j;
        }
    X->nhead = count[ST_AS_HEAD], X->nlayer = count[ST_AS_LAYER], X->ntail = count[ST_AS_TAIL];
    const st_as_stage *st = &r->stage[X->rank];
    int32_t head = g->block_in < 0 ? -2 : -1, tail = (int32_t)g->repeat;
    X->fwd0 = out->nops;
    table_part(out, g, names, w, ST_AS_HEAD, ST_PHASE_FWD, head);
    for (int l = 0; l < X->layers; l++) table_part(out, g, names, w, ST_AS_LAYER, ST_PHASE_FWD, st->first + l);
    table_part(out, g, names, w, ST_AS_TAIL, ST_PHASE_FWD, tail);
    X->bwd0 = out->nops;
    table_part(out, g, names, w, ST_AS_TAIL, ST_PHASE_BWD, tail);
    for (int l = X->layers - 1; l >= 0; l--) table_part(out, g, names, w, ST_AS_LAYER, ST_PHASE_BWD, st->first + l);
    table_part(out, g, names, w, ST_AS_HEAD, ST_PHASE_BWD, head);
    X->rec0 = out->nops;
    if (w->recompute)
        for (int l = X->layers - 1; l >= 0; l--)
            table_part(out, g, names, w, ST_AS_LAYER, ST_PHASE_RECOMPUTE, st->first + l);
}

int st_lower_autoshard(const st_autoshard_result *r, const st_cluster *c, const st_profile *prof, st_dtype dt,
                       st_lowered *out, st_error *err) {
    memset(out, 0, sizeof *out);
    int S = r->nstages, rc = 0, *part_of = NULL;
    st_as_work *w = calloc((size_t)S, sizeof *w);
    out->progs = calloc((size_t)S, sizeof *out->progs);
    out->groups = calloc((size_t)S * 4, sizeof *out->groups);
    if (!w || !out->progs || !out->groups) {
        rc = st_error_set(err, ST_ENOMEM, NULL, NULL, "out of memory");
        goto done;
    }
    out->nranks = S;
    out->microbatches = r->microbatches;
    for (int i = 0; i < S && !rc; i++) rc = st_autoshard_work(r, i, c, prof, dt, &w[i], err);
    if (rc) goto done;
    /* the operator table: its size, the graph's names (owned by the lowering, in a block) */
    const st_graph *g = r->g;
    size_t nops = 0;
    for (int i = 0; i < S; i++) {
        const st_as_work *wi = &w[i];
        int layers = g->block_in < 0 ? 0 : r->stage[i].last - r->stage[i].first;
        for (int p = 0; p < ST_AS_PARTS; p++)
            for (int bwd = 0; bwd < 2; bwd++) {
                size_t times = p == ST_AS_LAYER ? (size_t)layers * (bwd && wi->recompute ? 2 : 1) : 1;
                for (int k = 0; k < wi->n[p][bwd]; k++) nops += (wi->step[p][bwd][k].coll == ST_COLL_NONE) * times;
            }
    }
    if (g->nops > INT16_MAX) {
        rc = st_error_set(err, ST_EINVAL, NULL, NULL, "graph '%s': %d operators, more than the lowering can name (%d)",
                          g->name, g->nops, INT16_MAX);
        goto done;
    }
    char *names = malloc((size_t)g->nops * ST_G_NAME);
    part_of = malloc((size_t)g->nops * 3 * sizeof *part_of);
    out->blocks = malloc(sizeof *out->blocks);
    out->ops = calloc(nops ? nops : 1, sizeof *out->ops);
    if (names && out->blocks) out->blocks[out->nblocks++] = names;
    else free(names);
    if (!names || !part_of || !out->blocks || !out->ops) {
        rc = st_error_set(err, ST_ENOMEM, NULL, NULL, "out of memory");
        goto done;
    }
    for (int o = 0; o < g->nops; o++) memcpy(names + (size_t)o * ST_G_NAME, g->ops[o].name, ST_G_NAME);
    int *pos[2] = {part_of + g->nops, part_of + 2 * (size_t)g->nops};
    int gpu = 0;
    for (int i = 0; i < S && !rc; i++) {
        const st_as_stage *st = &r->stage[i];
        st_program *pg = &out->progs[i];
        pg->rank = i;
        pg->stage = i;
        pg->replicas = st->mesh.nodes * st->mesh.gpus;
        pg->gpu = gpu;
        gpu += pg->replicas;
        pg->base_bytes = w[i].state_bytes;
        stage_ctx X = {.w = &w[i], .rank = i, .nstages = S, .layers = st->last - st->first,
                       .has_head = st->first == 0, .has_tail = st->last == (int)r->g->repeat};
        if (r->g->block_in < 0) /* a custom graph: a stage's operators are all in the head part */
            X.layers = 0, X.has_head = 1, X.has_tail = 0;
        for (int a = 0; a < 2; a++) { /* reshard group and gradient group per axis */
            for (int k = 0; k < 2; k++) {
                st_group_def *gd = &out->groups[out->ngroups];
                gd->kind = k ? ST_GRP_DP : ST_GRP_TP;
                gd->n = 1;
                if (!(gd->ranks = malloc(sizeof *gd->ranks))) {
                    rc = st_error_set(err, ST_ENOMEM, NULL, NULL, "out of memory");
                    goto done;
                }
                gd->ranks[0] = i;
                out->ngroups++;
            }
            X.group[a] = out->ngroups - 2;
        }
        table_stage(out, r, names, &X, part_of, pos);
        X.part_of = part_of, X.pos[0] = pos[0], X.pos[1] = pos[1];
        X.p2p_prev = w[i].p2p_in_s, X.bytes_prev = w[i].p2p_in_bytes;
        X.p2p_next = w[i].p2p_out_s, X.bytes_next = w[i].p2p_out_bytes;
        pb b = {pg, 0};
        int64_t m = r->microbatches, warm = S - i - 1 < m ? S - i - 1 : m;
        int last = -1;
        for (int64_t k = 0; k < warm; k++) forward(&b, &X, (int)k);
        for (int64_t k = 0; k < m - warm; k++) {
            forward(&b, &X, (int)(warm + k));
            last = backward(&b, &X, (int)k);
        }
        for (int64_t k = m - warm; k < m; k++) last = backward(&b, &X, (int)k);
        /* the gradients' reduction, then (zero 1) the weights' gather, on the data-parallel stream in
         * this order: zero 1 reduce-scatters from the innermost axis and gathers from the outermost
         * (st_as_work) */
        int na = st->mesh.naxes;
        for (int k = 0; k < 2 * na; k++) {
            int gather = k >= na, a = gather ? k - na : w[i].zero ? na - 1 - k : k;
            double t = gather ? w[i].gather_s[a] : w[i].sync_s[a];
            if (t <= 0) continue;
            st_coll coll = gather ? ST_COLL_ALLGATHER : w[i].zero ? ST_COLL_REDUCESCATTER : ST_COLL_ALLREDUCE;
            st_ins in = blank(ST_INS_COLL, ST_STREAM_DP, -1,
                              gather ? "param all-gather" : w[i].zero ? "grad reduce-scatter" : "grad all-reduce");
            in.coll = (uint8_t)coll;
            in.group = X.group[a] + 1;
            in.dur_s = t;
            in.bytes = gather ? w[i].gather_bytes[a] : w[i].sync_bytes[a];
            in.dep[0] = last;
            push(&b, &in);
        }
        if (b.failed) rc = st_error_set(err, ST_ENOMEM, NULL, NULL, "out of memory lowering stage %d", i);
    }
done:
    free(part_of);
    for (int i = 0; w && i < S; i++) st_as_work_free(&w[i]);
    free(w);
    if (rc) st_lowered_destroy(out);
    return rc;
}
