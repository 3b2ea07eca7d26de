/* as_hybrid.c: which operator-level plans (search/autoshard.c's per-operator shardings on each
 * stage's mesh) shard every operator exactly as a Megatron-LM decoder does, and with which degrees:
 * the executor (exec/model.c) runs those shardings, so `strata run` runs such a plan op by op as
 * the ILP chose it. Per mesh axis, the QKV projection's label says what the axis is:
 *   'n' (kv-head groups): tensor parallelism (Shoeybi et al. 2019, Sec. 3): qkv, its bias, rope and
 *       attention on the axis's heads, the projection row-parallel ('n': partial sums), fc1 and the
 *       activation column-parallel and fc2 row-parallel ('f'), the output layer and the loss
 *       vocabulary-parallel ('v'); the residual stream (norms, residual adds) either replicated or
 *       split by rows on every such operator alike ('b' or 's': sequence parallelism, Korthikanti
 *       et al. 2022, Sec. 4.2.2, whose all-gather before fc1/qkv and reduce-scatter after proj/fc2
 *       are the ILP's resharding of those layouts); the embedding vocabulary-parallel, or with the
 *       residual stream's layout;
 *   'b' (batch): data parallelism, every operator on its share of the micro-batch's sequences;
 *   'e' (QKV's fused width, each kv group's query, key and value columns; autoshard's "column (output
 *       split)"): tensor parallelism whose attention core is whole on every device (attn_rows 3): QKV,
 *       its bias and the rotary embedding on the device's share of the width ('e'), the output
 *       all-gathered (the ILP's resharding to the replicated attention), the attention replicated (no
 *       label), the projection on the device's heads ('n', its input a slice of the whole output; in
 *       backward its input gradient all-gathered), the rest as under 'n'.
 * An MoE block on a tp axis whose residual stream is split by rows: the router 'h' (row-parallel by the
 * hidden dimension) or whole on the rows (the stream's label), dispatch and combine with the stream's
 * label, the experts 'e' (split over the axis): expert parallelism over the tp group on each device's
 * rows (moe_rows; exec/model.c). Or the experts 'f', each split by its ffn over the axis (expert tensor
 * parallelism, Megatron-Core's --expert-tensor-parallel-size: fc1 column- and fc2 row-parallel, the
 * tokens all-gathered and the partial outputs reduce-scattered as its token dispatchers do with etp),
 * the router 'h' (router_h) or whole on the rows; residual stream split by rows or not.
 * A batch axis ('b' QKV) on which the experts split ('e' or 'f') is such a tp axis with the whole
 * attention on the rows (attn_rows 2): the ILP's plans split the output layer by the vocabulary there
 * ('v', whose gather of the final norm's rows and vocabulary-parallel loss are Megatron's with sp), so
 * it is not Megatron's ep over dp ranks (each rank its own micro-batch), though on such an axis the
 * attention's, norms' and router's gradients are summed over it as dp's are, and the experts' not.
 * With the output layer on the batch too ('b'; with the experts 'e') the axis is
 * data-parallel with the experts over it: Megatron's ep over the dp ranks (ep; the ILP picks the
 * vocabulary-parallel output layer on the tiny presets' fixtures, not this); beside it a tp axis may split
 * each expert by its ffn under a whole router, not hold the experts ('e') nor split the router ('h').
 * A batch axis of a dense stage on which the output layer and the loss split the vocabulary ('v'), the
 * other operators the batch, beside tp axes on which they split the residual stream's rows (its label,
 * with sp): the output layer vocabulary-parallel over the dp group on the final norm's rows gathered
 * there (head_dp; exec/model.c: the gather and the vocabulary-parallel loss in the dp group, not tp); all
 * batch axes and all tp axes so, the embedding whole on the batch axes (null: each device's lookups of the
 * rows the next operators split there) and with the stream's label on the tp axes (the tables whole), no
 * experts over a batch axis. The ILP's pick for tiny-gpt on the 2x2 fixture at micro-batches of 8.
 * On a tp axis whose residual stream is split by rows the ILP may also split part of the attention
 * by the rows (the stream's label, 'b' or 's') rather than 'n', when the micro-batch's rows outweigh
 * the weights (attn_rows; exec/model.c runs both): the projection alone (1: the attention output
 * resharded from the heads to the rows by an all-to-all, the projection data-parallel, no partial
 * sums to reduce-scatter), or the whole attention (2: QKV to the projection data-parallel on whole
 * sequences, 'b', under a Megatron MLP; QKV's label is then 'b', and fc1's 'f' tells the axis from
 * a data-parallel one). An axis on which the stage splits no operator ('rep': every device of it
 * computes what the others do, on the same data; the ILP prices no gradient reduction there, as
 * search/autoshard.c's grad_sync reduces over the axes that split what a weight lacks) runs as that
 * many copies of the stage's ranks, with no collective between them: of the whole job where every
 * stage has as many (st_exec_job_rank), else each stage its own (below).
 * Stages need not agree (Alpa's stages each have their own mesh and sharding): st_autoshard_hybrid
 * says whether one hybrid plan runs them all (the same degrees, splits and copies on every stage),
 * st_autoshard_hybrid_stages gives each stage's own, which the executor runs stage by stage, each as
 * its own hybrid plan, the activations and their gradients moved between stages of different shapes as
 * the cross-mesh exchange (src/lower/lower_stages.c, exec.h's st_exec_stage). Counts of what the
 * ILP chose on the tiny presets: tests/cli_run_ilp.sh and scripts/ilp_census.sh (207 of its 234 plans
 * run, 18 of them MoE plans whose experts split by their ffn or on a batch axis, 2 tiny-gpt's on the 2x2
 * fixture with the output layer over the batch axis (head_dp), 3 with stages of different shapes (tiny-gpt
 * and tiny-moe on dgx-a100-80g: meshes of 1, 1, 2 and 4 devices, the last two copies); refused: 21 whose
 * mesh axes mix, 20 of them on 2-D meshes (3 of those at the projection 'h' on a second tp axis: a 2-D
 * projection GEMM, the rows split on one of the tp axes only), 6 MoE plans on 2-D meshes). Anything else
 * (an axis that replicates some operators and splits others, head-dimension or 2-D splits of an operator,
 * experts split otherwise on one tp axis than on another) is named: stage, operator, label and axis. strata run
 * then runs the refused plans of dense models per operator (exec/opexec.c, src/cli/cmd_ilp_plan.c's
 * st__run_ilp_ops): 15 of those 27, so 222 of the 234 run; the 12 left are MoE plans, refused with this file's
 * line. */
#include "search/search.h"

#include <string.h>

/* the operators of the tp pattern and the label each takes on a tp axis; the others carry the
 * residual stream (embedding: either) */
static const struct {
    const char *op;
    char lab;
} tp_ops[] = {{"qkv", 'n'},     {"qkv_bias", 'n'}, {"rope", 'n'},    {"attention", 'n'}, {"scores", 'n'},
              {"softmax", 'n'}, {"attn_dropout", 'n'}, {"context", 'n'}, {"context_transpose", 'n'},
              {"proj", 'n'},    {"fc1", 'f'},      {"act", 'f'},     {"fc2", 'f'},       {"logits", 'v'},
              {"loss", 'v'},    {"router", 'h'},   {"expert_fc1", 'e'}, {"expert_act", 'e'}, {"expert_fc2", 'e'}};
/* (an MoE block's dispatch and combine run on the residual stream's rows: moe_rows) */
static const char *const stream_ops[] = {"embedding", "embed_dropout", "ln1", "attn_residual", "ln2",
                                         "mlp_residual", "final_norm", "dispatch", "moe_combine"};

static int tp_label(const char *name) {
    for (size_t i = 0; i < sizeof tp_ops / sizeof tp_ops[0]; i++)
        if (!strcmp(tp_ops[i].op, name)) return tp_ops[i].lab;
    return -1;
}

/* the label of an attention operator on a tp axis whose QKV splits its fused width ('e'; attn_rows 3): QKV, its
 * bias and the rotary embedding 'e', the attention core whole (0: replicated), the projection by heads; -1 for the
 * other operators (tp_label's) */
static int wide_label(const char *name) {
    static const char *const split[] = {"qkv", "qkv_bias", "rope"};
    static const char *const whole[] = {"attention",    "scores",  "softmax",
                                        "attn_dropout", "context", "context_transpose"};
    for (size_t i = 0; i < sizeof split / sizeof split[0]; i++)
        if (!strcmp(split[i], name)) return 'e';
    for (size_t i = 0; i < sizeof whole / sizeof whole[0]; i++)
        if (!strcmp(whole[i], name)) return 0;
    return -1;
}

static int is_stream(const char *name) {
    for (size_t i = 0; i < sizeof stream_ops / sizeof stream_ops[0]; i++)
        if (!strcmp(stream_ops[i], name)) return 1;
    return 0;
}

/* the operator named nm, or -1 */
static int op_index(const st_graph *g, const char *nm) {
    int k = -1;
    for (int o = 0; o < g->nops; o++)
        if (!strcmp(g->ops[o].name, nm)) k = o;
    return k;
}

int st_autoshard_refuse(st_error *err, int stage, const st_graph *g, int op, char lab, int axis, int size,
                        const char *why) {
    char l[8];
    if (lab) snprintf(l, sizeof l, "'%c'", lab);
    else snprintf(l, sizeof l, "none");
    return st_error_set(err, ST_EINVAL, NULL, "stages",
                        "stage %d, operator %s: split %s on mesh axis %d (%d devices): %s", stage, g->ops[op].name, l,
                        axis, size, why);
}

/* whether the stage splits none of its operators on mesh axis a */
static int replicated_axis(const st_graph *g, const st_as_stage *st, int a) {
    for (int o = 0; o < g->nops; o++)
        if (st->choice[o].lab[0] != '-' && st->choice[o].lab[a]) return 0;
    return 1;
}

/* one stage's degrees; the residual stream's label per tp axis must agree across its operators */
static int stage_hybrid(const st_autoshard_result *r, int s, st_as_hybrid *h, st_error *err) {
    const st_graph *g = r->g;
    const st_as_stage *st = &r->stage[s];
    int qkv = op_index(g, "qkv");
    int tp_axes = 0, sp_axes = 0, moe_axes = 0, moe_axis = -1; /* the last tp axis the MoE blocks split on */
    /* the output layer's split: batch axes (not ep's) and those of them on which it is vocabulary-parallel, tp
     * axes on which it is on the rows (head_dp); the embedding's vocabulary-parallel tp axes */
    int batch_axes = 0, head_v = 0, head_rows = 0, emb_v = 0;
    /* whether an axis on which QKV splits the batch splits the output layer's vocabulary: only then may a tp axis split
     * the output layer by the rows (a batch axis that is a tp one, beside experts or a tp MLP, is refused below) */
    int head_any = 0, lg0 = op_index(g, "logits");
    for (int a = 0; a < st->mesh.naxes && qkv >= 0 && lg0 >= 0; a++)
        if (st->mesh.size[a] > 1 && st->choice[qkv].lab[0] != '-' && st->choice[lg0].lab[0] != '-' &&
            st->choice[qkv].lab[a] == 'b' && st->choice[lg0].lab[a] == 'v')
            head_any = 1;
    h->tp = h->dp = h->rep = h->ep = 1, h->sp = 0, h->attn_rows = 0, h->moe_rows = 0, h->router_h = 0, h->head_dp = 0;
    for (int a = 0; a < st->mesh.naxes; a++) {
        int size = st->mesh.size[a];
        if (size == 1) continue;
        if (replicated_axis(g, st, a)) {
            h->rep *= size;
            continue;
        }
        if (qkv < 0 || st->choice[qkv].lab[0] == '-')
            return st_error_set(err, ST_EINVAL, NULL, "stages",
                                "stage %d: no attention block on a mesh of %d devices: the executor shards the "
                                "decoder's blocks", s, size);
        char kind = st->choice[qkv].lab[a];
        if (kind != 'n' && kind != 'b' && kind != 'e')
            return st_autoshard_refuse(err, s, g, qkv, kind, a, size,
                          kind ? "the executor splits QKV by heads (tp), by its fused width (tp) or by sequences (dp)"
                               : "every device would compute the same: the executor splits QKV by heads (tp), by its "
                                 "fused width (tp) or by sequences (dp)");
        /* the experts' split on this axis: 'e' (over it), 'f' (each expert by its ffn), or none */
        int efc1 = op_index(g, "expert_fc1");
        char experts = efc1 >= 0 && st->choice[efc1].lab[0] != '-' ? st->choice[efc1].lab[a] : 0;
        /* QKV on the batch under a tensor-parallel MLP, or beside experts split over the axis or by their ffn: a tp
         * axis whose attention runs on the rows */
        int fc1 = op_index(g, "fc1"), lg = op_index(g, "logits");
        /* but experts over a batch axis whose output layer is on the batch too: Megatron's ep over dp ranks */
        int ep_axis =
            kind == 'b' && experts == 'e' && lg >= 0 && st->choice[lg].lab[0] != '-' && st->choice[lg].lab[a] == 'b';
        int batch_tp = kind == 'b' && !ep_axis &&
                       ((fc1 >= 0 && st->choice[fc1].lab[a] == 'f') || experts == 'e' || experts == 'f');
        if (batch_tp) kind = 'n';
        int stream = -1;         /* the residual stream's label on this axis, from its first operator */
        int router_lab = 'h';    /* the router's label: 'h', or (checked below) the stream's */
        int rows = 0, heads = 0, first_row = -1; /* attention operators split by the rows, by the heads */
        int head = -1; /* the output layer on the rows of this tp axis: its label */
        for (int o = 0; o < g->nops; o++) {
            char l = st->choice[o].lab[a];
            const char *nm = g->ops[o].name;
            if (st->choice[o].lab[0] == '-') continue; /* not on this stage */
            int out_layer = !strcmp(nm, "logits") || !strcmp(nm, "loss");
            if (kind == 'b') {
                if (ep_axis && !strncmp(nm, "expert_", 7) && l == 'e') continue; /* the experts over the axis */
                /* the output layer vocabulary-parallel over the batch axis (head_dp; checked below) */
                if (!ep_axis && out_layer && l == 'v') {
                    head_v += !strcmp(nm, "logits");
                    continue;
                }
                /* the embedding whole on the axis: each device's lookups of the rows it splits there are those
                 * the batch-split operators after it keep */
                if (!strcmp(nm, "embedding") && !l) continue;
                if (l != 'b')
                    return st_autoshard_refuse(err, s, g, o, l, a, size, "QKV splits the batch there, this does not");
                continue;
            }
            if (batch_tp && !strcmp(nm, "embedding") && !l) continue; /* whole there, as on a batch axis */
            if (head_any && out_layer && (l == 'b' || l == 's')) { /* on the rows (head_dp): checked below */
                if (head >= 0 && l != head)
                    return st_autoshard_refuse(err, s, g, o, l, a, size, "the loss follows the output layer's split");
                head = l;
                continue;
            }
            int want = kind == 'e' && wide_label(nm) >= 0 ? wide_label(nm) : tp_label(nm);
            if (want == 'e' && !strncmp(nm, "expert_", 7) && experts == 'f') want = 'f'; /* expert tp */
            if (!strcmp(nm, "router") && l != 'h') { /* on the rows (or whole): checked against the stream below */
                router_lab = l;
                continue;
            }
            /* the projection by head dimension ('d', where tp exceeds the heads): the same row-parallel GEMM on
             * another 1 / tp of its input's columns (exec/model.c takes them contiguous either way) */
            if (kind == 'e' && !strcmp(nm, "proj") && l == 'd') l = 'n';
            if (kind == 'n' && want == 'n' && (l == 'b' || l == 's')) { /* checked against the stream below */
                rows++;
                if (first_row < 0) first_row = o;
                continue;
            }
            if (want >= 0) {
                if (l != want) {
                    char why[192];
                    if (!want) snprintf(why, sizeof why, "with QKV split along its fused width the attention is whole");
                    else if (kind == 'e' && wide_label(nm) == 'e')
                        snprintf(why, sizeof why, "it follows QKV's split along its fused width");
                    else if (!strncmp(nm, "expert_", 7))
                        snprintf(why, sizeof why, "the executor splits the experts over a tensor-parallel axis ('e') "
                                 "or each by its ffn ('f'), all three alike");
                    else if (batch_tp)
                        snprintf(why, sizeof why,
                                 "QKV splits the batch there and %s: the executor runs the axis as tensor-parallel "
                                 "with the attention on the rows, which splits it '%c'",
                                 experts ? "the experts split" : "fc1 its ffn", want);
                    else
                        snprintf(why, sizeof why,
                                 "Megatron's tensor parallelism, which QKV follows there, splits it '%c'", want);
                    return st_autoshard_refuse(err, s, g, o, l, a, size, why);
                }
                heads += want == 'n';
                continue;
            }
            if (!is_stream(nm))
                return st_autoshard_refuse(err, s, g, o, l, a, size, "the executor does not run this operator sharded");
            if (!strcmp(nm, "embedding") && l == 'v') { /* vocabulary-parallel, Megatron's */
                emb_v++;
                continue;
            }
            if (l && l != 'b' && l != 's')
                return st_autoshard_refuse(err, s, g, o, l, a, size,
                                           "the residual stream is replicated or split by token rows");
            if (stream < 0) stream = l;
            else if (l != stream)
                return st_autoshard_refuse(err, s, g, o, l, a, size,
                                           "the residual stream's other operators are split otherwise");
        }
        if (kind == 'b') {
            h->dp *= size;
            if (ep_axis) h->ep *= size;
            batch_axes += !ep_axis;
            continue;
        }
        if (head >= 0 && head != stream)
            return st_autoshard_refuse(err, s, g, op_index(g, "logits"), (char)head, a, size,
                          "the executor runs the output layer on the rows only as the residual stream is split there");
        head_rows += head >= 0;
        int router = op_index(g, "router"), moe = 0, rh = 0;
        if (router >= 0 && st->choice[router].lab[0] != '-') {
            if (experts == 'e' && stream <= 0) /* experts over this axis, tokens by the rows */
                return st_autoshard_refuse(err, s, g, op_index(g, "dispatch"), 0, a, size,
                              "the executor routes the tokens by the residual stream's rows, which the stage does "
                              "not split there");
            if (router_lab != 'h' && router_lab != (stream > 0 ? stream : 0))
                return st_autoshard_refuse(err, s, g, router, (char)router_lab, a, size,
                              "the executor splits the router by the hidden dimension ('h') or runs it whole on the "
                              "residual stream's rows");
            moe = experts == 'e', rh = router_lab == 'h';
            if (moe_axes++ && (moe != h->moe_rows || rh != h->router_h))
                return st_error_set(err, ST_EINVAL, NULL, "stages",
                                    "stage %d: the experts or the router split otherwise on one of its tensor-parallel "
                                    "mesh axes than on another: the executor splits them alike over all of them", s);
            h->moe_rows = moe, h->router_h = rh, moe_axis = a;
        }
        int mode = 0, proj = op_index(g, "proj");
        for (int o = 0; rows && o < g->nops; o++) {
            char l = st->choice[o].lab[a];
            if (tp_label(g->ops[o].name) == 'n' && st->choice[o].lab[0] != '-' && (l == 'b' || l == 's') && l != stream)
                return st_autoshard_refuse(err, s, g, o, l, a, size,
                              "the executor splits the attention by rows only as the residual stream is split there");
        }
        if (kind == 'e') mode = 3;
        else if (rows && !heads) mode = 2;
        else if (rows == 1 && first_row == proj) mode = 1;
        else if (rows)
            return st_autoshard_refuse(err, s, g, first_row, st->choice[first_row].lab[a], a, size,
                          "the executor splits by the rows the projection alone or the whole attention");
        if (tp_axes && mode != h->attn_rows)
            return st_error_set(err, ST_EINVAL, NULL, "stages",
                                "stage %d: the attention splits the rows on some of its tensor-parallel mesh axes, "
                                "not all: the executor splits it alike over all of them", s);
        h->attn_rows = mode;
        h->tp *= size, tp_axes++;
        if (stream > 0) sp_axes++;
    }
    /* experts over a batch axis too (ep over the dp ranks): the executor's ep group is then some of the dp ranks, so
     * neither the tp group as the experts' group (moe_rows) nor the router's columns over it (router_h) beside it
     * (exec/model.c, st__xmodel_init, refuses both with ep) */
    if (h->ep > 1 && (h->moe_rows || h->router_h)) {
        int o = op_index(g, h->moe_rows ? "expert_fc1" : "router");
        return st_autoshard_refuse(err, s, g, o, st->choice[o].lab[moe_axis], moe_axis, st->mesh.size[moe_axis],
                      h->moe_rows ? "the experts are over a batch axis too (ep over the data-parallel ranks), beside "
                                    "which the executor splits each by its ffn ('f') on a tensor-parallel axis"
                                  : "the experts are over a batch axis (ep over the data-parallel ranks), beside which "
                                    "the executor runs the router whole on a tensor-parallel axis");
    }
    if (sp_axes && sp_axes < tp_axes) /* Megatron's sp splits the rows over the whole tp group */
        return st_error_set(err, ST_EINVAL, NULL, "stages",
                            "stage %d: the residual stream is split by rows on %d of its %d tensor-parallel mesh "
                            "axes: the executor splits it over all of them or none", s, sp_axes, tp_axes);
    h->sp = sp_axes > 0;
    /* the output layer vocabulary-parallel over the batch axes, on the rows on the tp axes: all of them so, the
     * experts not over a batch axis (the dp group is then the output layer's), the embedding whole (the table
     * the output layer's vocabulary slices of the dp ranks come from, tied or not) */
    if (head_v || head_rows) {
        int lg = op_index(g, "logits");
        if (!head_v || head_v != batch_axes || head_rows != tp_axes || h->ep > 1 || emb_v)
            return st_error_set(err, ST_EINVAL, NULL, "stages",
                                "stage %d, operator %s: vocabulary-parallel on %d of its %d batch axes%s and on the "
                                "rows on %d of its %d tensor-parallel axes, the embedding vocabulary-parallel on %d: "
                                "the executor runs the output layer over the batch axes' vocabulary on the tp axes' "
                                "rows on all of them, the experts not on a batch axis, the embedding whole",
                                s, g->ops[lg].name, head_v, batch_axes, h->ep > 1 ? " (experts over the others)" : "",
                                head_rows, tp_axes, emb_v);
        int ls = op_index(g, "loss");
        for (int a = 0; ls >= 0 && st->choice[ls].lab[0] != '-' && a < st->mesh.naxes; a++)
            if (st->mesh.size[a] > 1 && st->choice[ls].lab[a] != st->choice[lg].lab[a])
                return st_autoshard_refuse(err, s, g, ls, st->choice[ls].lab[a], a, st->mesh.size[a],
                              "the loss follows the output layer's split");
        h->head_dp = 1;
    }
    return 0;
}

int st_autoshard_hybrid_stages(const st_autoshard_result *r, st_as_hybrid *h, st_error *err) {
    int rc = 0;
    if (r->nstages < 1) return st_error_set(err, ST_EINVAL, NULL, "stages", "no stage");
    for (int s = 0; s < r->nstages && !rc; s++) {
        memset(&h[s], 0, sizeof h[s]);
        if (!(rc = stage_hybrid(r, s, &h[s], err))) h[s].zero = h[s].dp > 1 && r->stage[s].zero;
    }
    return rc;
}

int st_autoshard_hybrid(const st_autoshard_result *r, st_as_hybrid *h, st_error *err) {
    int rc = 0;
    memset(h, 0, sizeof *h);
    for (int s = 0; s < r->nstages; s++) {
        st_as_hybrid x;
        memset(&x, 0, sizeof x);
        if ((rc = stage_hybrid(r, s, &x, err))) return rc;
        x.zero = x.dp > 1 && r->stage[s].zero;
        if (s > 0 && (x.tp != h->tp || x.dp != h->dp || x.sp != h->sp || x.zero != h->zero))
            return st_error_set(err, ST_EINVAL, NULL, "stages",
                                "stage %d shards as tp=%d, dp=%d, sp=%d, zero=%d and stage %d as tp=%d, dp=%d, sp=%d, "
                                "zero=%d: stages of different shapes",
                                s, x.tp, x.dp, x.sp, x.zero, s - 1, h->tp, h->dp, h->sp, h->zero);
        if (s > 0 && x.moe_rows != h->moe_rows)
            return st_error_set(err, ST_EINVAL, NULL, "stages",
                                "stage %d %s its experts over a tensor-parallel axis and stage %d %s: stages of "
                                "different shapes", s, x.moe_rows ? "splits" : "does not split", s - 1,
                                h->moe_rows ? "does" : "does not");
        if (s > 0 && x.ep != h->ep)
            return st_error_set(err, ST_EINVAL, NULL, "stages",
                                "stage %d splits its experts over %d devices of its batch axes and stage %d over %d: "
                                "stages of different shapes", s, x.ep, s - 1, h->ep);
        if (s > 0 && x.router_h != h->router_h)
            return st_error_set(err, ST_EINVAL, NULL, "stages",
                                "stage %d %s its router by the hidden dimension and stage %d %s: stages of different "
                                "shapes", s, x.router_h ? "splits" : "does not split", s - 1,
                                h->router_h ? "does" : "does not");
        if (s > 0 && x.rep != h->rep)
            return st_error_set(err, ST_EINVAL, NULL, "stages",
                                "stage %d computes on %d devices alike and stage %d on %d: stages of different shapes",
                                s, x.rep, s - 1, h->rep);
        if (s > 0 && x.attn_rows != h->attn_rows && (x.attn_rows == 3 || h->attn_rows == 3))
            return st_error_set(err, ST_EINVAL, NULL, "stages",
                                "stage %d %s QKV along its fused width and stage %d %s: stages of different shapes", s,
                                x.attn_rows == 3 ? "splits" : "does not split", s - 1,
                                h->attn_rows == 3 ? "does" : "does not");
        if (s > 0 && x.attn_rows != h->attn_rows)
            return st_error_set(err, ST_EINVAL, NULL, "stages",
                                "stage %d splits the projection by %s and stage %d by %s: stages of different shapes",
                                s, x.attn_rows ? "rows" : "heads", s - 1, h->attn_rows ? "rows" : "heads");
        *h = x; /* (head_dp: the last stage's, which holds the output layer) */
    }
    if (r->nstages < 1) rc = st_error_set(err, ST_EINVAL, NULL, "stages", "no stage");
    return rc;
}
