/* lower.c: a finalized plan becomes one program per pipeline stage (program.h).
 *
 * The tp, cp and dp ranks of a stage run identical programs on identical inputs, so each stage is
 * lowered once, as a representative rank (program.h, "Symmetry"); st_lower_full lowers every
 * rank. The collectives Megatron runs inline (tp/cp/ep) follow each compute instruction on the
 * compute stream. Durations come from st_cost_chunk and st_cost_estimate: the simulator and the
 * estimator price the same operators.
 *
 * Schedules, per stage d of pp with m micro-batches (Megatron-LM schedules.py, Narayanan et al.
 * SC'21 Sec. 2.2; Qi et al. 2023 for ZB-H1):
 * - gpipe: every forward, then every backward;
 * - 1f1b: min(pp - d - 1, m) warm-up forwards, then one forward and one backward alternately,
 *   then the remaining backwards;
 * - interleaved (vp > 1): m*vp virtual micro-batches; the k-th forward runs chunk (k / pp) % vp
 *   of micro-batch (k / (pp vp)) pp + k % pp, the k-th backward chunk vp - 1 - (k / pp) % vp;
 *   (pp - d - 1) * 2 + (vp - 1) * pp warm-up forwards, then 1F1B;
 * - zb (ZB-H1): 1F1B with the backward split into input and weight gradients; in the cool-down the
 *   weight-gradient halves wait until every input gradient has been sent, filling the bubble.
 * Each forward receives its input from the previous chunk's stage and sends its output on; each
 * backward receives the output gradient and sends the input gradient back. Receives block the
 * compute stream (Megatron-LM's synchronous p2p); sends go out on the P2P stream, so a stage
 * computes on while its output travels.
 *
 * Data parallelism (zero 0-2) on the dp stream, with the cost model's full collective times: the
 * gradient reduction after the whole backward, or, with overlap_grad_reduce, in buckets that the
 * last micro-batch's backward of each chunk hands over as it goes (the backward runs in pieces
 * for that); then the optimizer step, then (zero 1-2) the weight all-gather, of which only the
 * last bucket shows with overlap (the rest hides behind the next iteration's forward). ZeRO-3
 * (DeepSpeed's stage 3, Rajbhandari et al. 2020): every forward, recompute and backward runs layer
 * by layer, each layer after the all-gather of its weights on a stream of its own, prefetched one
 * layer ahead, and each layer's gradients are reduce-scattered on the dp stream after its backward
 * (every micro-batch, as DeepSpeed does); the optimizer waits for the last of them.
 *
 * Network (program.h, "Network"). Links: each GPU's NVLink port, each NIC port, each node's link
 * to the fabric, per direction, at the rates cost/comm.c prices collectives at (st_cost_net).
 * Every transfer gets a route and a latency part:
 * - route: a group's collective crosses, for every rank it stands for (the group's members, or a
 *   representative's replicas), that rank's NVLink port when cost/ prices the group inside a node,
 *   else its NIC port and, when the ranks span nodes, its node's fabric link (so a node's fabric
 *   link is crossed once per rank of the node); a send crosses the sender's port out and the
 *   receiver's port in (and the fabric links between their nodes);
 * - rate alone: the NVLink rate inside a node, the GPU's share of its node's NICs across nodes
 *   (what cost/ gives a GPU while its whole node communicates): so the transfers of all GPUs of
 *   a node at once fill a NIC or fabric link exactly, and only more than that is contention;
 * - latency part: the cost model's time minus the same time on the cluster without latencies;
 *   the rest is the bandwidth part, which contention stretches. Alone a transfer takes exactly
 *   the cost model's time.
 * Lumped transfers keep one route: a chunk's tp/cp/ep collectives run on the tp group's links
 * (they are a separate instruction right after the compute when tp > 1, inline otherwise), the
 * receivers' tp all-gather of a pipeline message (Megatron's scatter-gather) rides with the send,
 * and the tied embedding's all-reduce with the dp reduction. */
#include "program.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct builder {
    st_program *pg;
    int failed;
    int last_dp; /* the last data-parallel bucket issued so far, -1 = none */
    int zp[2];   /* ZeRO-3: the last two layer computes, older first (-1 = none) */
} builder;

static int emit(builder *b, const st_ins *in) {
    st_program *pg = b->pg;
    if (pg->n == (pg->cap < 0 ? -pg->cap : pg->cap)) {
        int cap = pg->n ? pg->n * 2 : 64;
        /* memory in a shared block (cap < 0) is not the program's to grow: move out of it */
        st_ins *grown = pg->cap < 0 ? malloc((size_t)cap * sizeof *grown) : realloc(pg->ins, (size_t)cap * sizeof *grown);
        if (!grown) {
            b->failed = 1;
            return -1;
        }
        if (pg->cap < 0) memcpy(grown, pg->ins, (size_t)pg->n * sizeof *grown);
        pg->ins = grown;
        pg->cap = cap;
    }
    pg->ins[pg->n] = *in;
    return pg->n++;
}

static st_ins blank(st_ins_kind kind, int stream, int chunk, int mb, const char *label) {
    st_ins in;
    memset(&in, 0, sizeof in);
    in.kind = (uint8_t)kind;
    in.stream = (uint8_t)stream;
    in.chunk = chunk;
    in.mb = mb;
    in.dep[0] = in.dep[1] = -1;
    in.label = label;
    in.phase = ST_PHASE_OTHER;
    in.coll = ST_COLL_NONE;
    in.peer = -1; /* and group: they share a field */
    in.route = -1;
    return in;
}

/* the latency part of a time t whose latency-free twin is t0 (st_cost_ctx_without_latency) */
static double latency_of(double t, double t0) {
    double lat = t - t0;
    return lat < 0 ? 0 : lat > t ? t : lat;
}

/* message tags: one per (destination chunk, micro-batch, direction) */
static int tag_of(int chunk, int mb, int64_t m, int backward) { return (int)(((int64_t)chunk * m + mb) * 2 + backward); }

/* ------------------------------------------------------------ network */

typedef struct netb {
    st_lowered *out;
    st_net net;
    int G, ports, gpus, nodes;
    int32_t *id;      /* link id per (kind, index, dir) slot, -1 = not made yet */
    int *prog_of_gpu; /* rank number of the program running on a GPU, -1 */
    st_hop *tmp;      /* hops of the route being built */
    int ntmp, captmp, caplinks, caproutes, caphops;
    int failed;
} netb;

static int node_of(const netb *B, int gpu) { return gpu / B->G; }
static int port_of(const netb *B, int gpu) { return node_of(B, gpu) * B->ports + (gpu % B->G) * B->ports / B->G; }

/* which rank's trace shows a link: its GPU's program, or the first program on its NIC port or node */
static int shown_by(const netb *B, st_link_kind kind, int index) {
    if (kind == ST_LINK_NVLINK) return B->prog_of_gpu[index];
    int node = kind == ST_LINK_NIC ? index / B->ports : index;
    for (int g = node * B->G; g < (node + 1) * B->G && g < B->gpus; g++)
        if (B->prog_of_gpu[g] >= 0 && (kind == ST_LINK_FABRIC || port_of(B, g) == index)) return B->prog_of_gpu[g];
    return -1;
}

static void hop(netb *B, st_link_kind kind, int index, int dir) {
    int slot = kind == ST_LINK_NVLINK ? index * 2 + dir
               : kind == ST_LINK_NIC  ? 2 * B->gpus + index * 2 + dir
                                      : 2 * B->gpus + 2 * B->nodes * B->ports + index * 2 + dir;
    st_lowered *o = B->out;
    if (B->id[slot] < 0) {
        if (o->nlinks == B->caplinks) {
            int cap = B->caplinks ? 2 * B->caplinks : 256;
            st_link *grown = realloc(o->links, (size_t)cap * sizeof *grown);
            if (!grown) {
                B->failed = 1;
                return;
            }
            o->links = grown;
            B->caplinks = cap;
        }
        st_link *lk = &o->links[o->nlinks];
        memset(lk, 0, sizeof *lk);
        lk->kind = kind;
        lk->dir = dir;
        lk->index = index;
        lk->rank = shown_by(B, kind, index);
        if (kind == ST_LINK_NVLINK) {
            lk->bytes_per_s = B->net.nvlink_bytes_per_s;
            snprintf(lk->name, sizeof lk->name, "nvlink %d %s", index, dir ? "in" : "out");
        } else if (kind == ST_LINK_NIC) {
            lk->bytes_per_s = B->net.nic_port_bytes_per_s;
            snprintf(lk->name, sizeof lk->name, "nic %d.%d %s", index / B->ports, index % B->ports, dir ? "in" : "out");
        } else {
            lk->bytes_per_s = B->net.uplink_bytes_per_s;
            snprintf(lk->name, sizeof lk->name, "fabric %d %s", index, dir ? "down" : "up");
        }
        B->id[slot] = o->nlinks++;
    }
    if (B->ntmp == B->captmp) {
        int cap = B->captmp ? 2 * B->captmp : 64;
        st_hop *grown = realloc(B->tmp, (size_t)cap * sizeof *grown);
        if (!grown) {
            B->failed = 1;
            return;
        }
        B->tmp = grown;
        B->captmp = cap;
    }
    B->tmp[B->ntmp++] = (st_hop){B->id[slot], 1};
}

static int hop_cmp(const void *x, const void *y) {
    const st_hop *a = x, *b = y;
    return (a->link > b->link) - (a->link < b->link);
}

/* the hops gathered so far, each link once with its count, become a route; returns its index */
static int route_end(netb *B, int nic) {
    st_lowered *o = B->out;
    if (B->failed) return -1;
    qsort(B->tmp, (size_t)B->ntmp, sizeof *B->tmp, hop_cmp);
    int n = 0;
    for (int i = 0; i < B->ntmp; i++) {
        if (n > 0 && B->tmp[n - 1].link == B->tmp[i].link)
            B->tmp[n - 1].count++;
        else
            B->tmp[n++] = B->tmp[i];
    }
    B->ntmp = 0;
    if (o->nroutes == B->caproutes) {
        int cap = B->caproutes ? 2 * B->caproutes : 64;
        st_route *grown = realloc(o->routes, (size_t)cap * sizeof *grown);
        if (!grown) goto nomem;
        o->routes = grown;
        B->caproutes = cap;
    }
    while (o->nhops + n > B->caphops) {
        int cap = B->caphops ? 2 * B->caphops : 256;
        st_hop *grown = realloc(o->hops, (size_t)cap * sizeof *grown);
        if (!grown) goto nomem;
        o->hops = grown;
        B->caphops = cap;
    }
    memcpy(o->hops + o->nhops, B->tmp, (size_t)n * sizeof *B->tmp);
    o->routes[o->nroutes] = (st_route){o->nhops, n, nic ? B->net.gpu_share_bytes_per_s : B->net.nvlink_bytes_per_s};
    o->nhops += n;
    return o->nroutes++;
nomem:
    B->failed = 1;
    return -1;
}

/* a collective of the ranks on gpus[0..n): every one pushes its data out and takes it in */
static int route_coll(netb *B, const int *gpus, int n, int nic) {
    int spans = 0;
    for (int i = 1; i < n; i++) spans |= node_of(B, gpus[i]) != node_of(B, gpus[0]);
    for (int i = 0; i < n; i++) {
        int g = gpus[i];
        if (!nic) {
            hop(B, ST_LINK_NVLINK, g, 0);
            hop(B, ST_LINK_NVLINK, g, 1);
            continue;
        }
        hop(B, ST_LINK_NIC, port_of(B, g), 0);
        hop(B, ST_LINK_NIC, port_of(B, g), 1);
        if (spans) {
            hop(B, ST_LINK_FABRIC, node_of(B, g), 0);
            hop(B, ST_LINK_FABRIC, node_of(B, g), 1);
        }
    }
    return route_end(B, nic);
}

/* n sends, from[i] to to[i] */
static int route_p2p(netb *B, const int *from, const int *to, int n, int nic) {
    for (int i = 0; i < n; i++) {
        if (!nic) {
            hop(B, ST_LINK_NVLINK, from[i], 0);
            hop(B, ST_LINK_NVLINK, to[i], 1);
            continue;
        }
        hop(B, ST_LINK_NIC, port_of(B, from[i]), 0);
        hop(B, ST_LINK_NIC, port_of(B, to[i]), 1);
        if (node_of(B, from[i]) != node_of(B, to[i])) {
            hop(B, ST_LINK_FABRIC, node_of(B, from[i]), 0);
            hop(B, ST_LINK_FABRIC, node_of(B, to[i]), 1);
        }
    }
    return route_end(B, nic);
}

/* ------------------------------------------------------------ programs */

typedef struct lower_ctx {
    const st_plan *p;
    int chunks;
    int64_t m;
    const st_chunk_cost *cc;  /* per chunk */
    const st_chunk_cost *cc0; /* per chunk, without latencies */
    int full;                 /* every rank, with explicit tp collectives (st_lower_full) */
    int tp_i, cp_i, dp_i;     /* this rank's coordinates (full) */
    int tp_group;             /* this rank's tp group */
    int dp_group;             /* this rank's data-parallel group */
    /* overlap_grad_reduce with zero 0-2: the reduction fires in buckets during the last
     * micro-batch's backward of each chunk (Megatron-LM's DDP buckets) */
    int dp_overlap;
    double dp_reduce_s, dp_reduce_lat, dp_buckets, stage_params;
    double p2p_bytes, grad_bytes;
    /* routes (-1: none): tp and dp collectives; sends forward (activations) and backward (gradients) */
    int r_tp, r_dp;
    const int *r_fwd, *r_bwd; /* per program */
    const st_cluster *c;
    const struct zchunk *z; /* ZeRO-3 (zero = 3): per chunk; NULL otherwise */
} lower_ctx;

/* ZeRO-3's per-layer traffic of a chunk (st_cost_zero3_chunk), with latency parts */
typedef struct zchunk {
    int layers;
    double gather_s, gather_lat, gather_bytes;
    double scatter_s, scatter_lat, scatter_bytes;
    double embed_s, embed_lat;
} zchunk;

/* Megatron's rank order tp-cp-dp-pp: the rank of this lane's copy of `stage` */
static int rank_at(const lower_ctx *L, int stage) {
    const st_plan *p = L->p;
    if (!L->full) return stage;
    return L->tp_i + p->tp * (L->cp_i + p->cp * (L->dp_i + p->dp * stage));
}

/* A compute instruction and the tp/cp/ep collectives of its operators (comm_s, of which lat_s
 * latency): a collective of the tp group right after it, or inline in its duration when there is
 * no tp group. Returns the last of them. */
static int compute(builder *b, const lower_ctx *L, st_ins *in, double comm_s, double lat_s) {
    if (L->p->tp == 1 || comm_s <= 0) {
        in->dur_s += comm_s;
        return emit(b, in);
    }
    double free_bytes = in->free_bytes;
    in->free_bytes = 0;
    int ci = emit(b, in);
    st_ins c = blank(ST_INS_COLL, ST_STREAM_COMPUTE, in->chunk, in->mb, "tp collectives");
    c.coll = ST_COLL_ALLREDUCE;
    c.group = L->tp_group;
    c.dur_s = comm_s;
    c.latency_s = lat_s;
    c.route = L->r_tp;
    c.free_bytes = free_bytes;
    c.dep[0] = ci;
    return emit(b, &c);
}

static void p2p_fill(const lower_ctx *L, st_ins *in, int j, int route) {
    in->dur_s = L->cc[j].p2p_s;
    in->latency_s = latency_of(L->cc[j].p2p_s, L->cc0[j].p2p_s);
    in->bytes = L->p2p_bytes;
    in->coll = ST_COLL_SENDRECV;
    in->route = route;
}

/* ZeRO-3: `in` (a forward, recompute or backward of a whole chunk) runs layer by layer, each layer
 * after the all-gather of its weights on the gather stream. A gather starts when the compute two
 * layers back has ended (two layers' weights are held, as the memory model assumes: prefetch one
 * layer ahead); with `scatter`, each layer's gradients are reduce-scattered on the dp stream after
 * its backward. `re` (optional) is a recompute that runs layer by layer in step with it: layer i's
 * recompute, then its backward, on one gather. Each layer's share of the chunk's tp collectives
 * follows it, as Megatron issues them inside each layer (one lump at the end of the chunk would
 * hold the next gather back, which waits for the layer two back to finish, collectives included).
 * Compute beside a gather or scatter is charged for NCCL's SMs, as in the estimate. Returns the
 * last instruction. */
static int z_layers_re(builder *b, const lower_ctx *L, st_ins *in, st_ins *re, double comm_s, double lat_s, int gather,
                       int scatter) {
    const zchunk *z = &L->z[in->chunk];
    int n = z->layers, last = -1;
    double tax = st_cost_overlap_tax(L->c, (gather ? z->gather_s : 0) + (scatter ? z->scatter_s : 0));
    for (int i = 0; i < n; i++) {
        int gi = -1;
        if (gather) {
            st_ins g = blank(ST_INS_COLL, ST_STREAM_GATHER, in->chunk, in->mb, "zero-3 gather");
            g.coll = ST_COLL_ALLGATHER;
            g.group = L->dp_group;
            g.route = L->r_dp;
            g.dur_s = z->gather_s;
            g.latency_s = z->gather_lat;
            g.bytes = z->gather_bytes;
            g.dep[0] = b->zp[0];
            gi = emit(b, &g);
        }
        if (re) {
            st_ins r = *re;
            r.dur_s = re->dur_s / n;
            r.alloc_bytes = i == 0 ? re->alloc_bytes : 0;
            r.dep[0] = i == 0 ? re->dep[0] : -1;
            r.dep[1] = gi;
            gi = emit(b, &r); /* the backward follows it on the stream */
        }
        st_ins piece = *in;
        piece.dur_s = in->dur_s / n + tax;
        piece.alloc_bytes = i == 0 ? in->alloc_bytes : 0;
        piece.free_bytes = i == n - 1 ? in->free_bytes : 0;
        piece.dep[0] = i == 0 ? in->dep[0] : -1;
        piece.dep[1] = gi;
        last = compute(b, L, &piece, comm_s / n, lat_s / n);
        if (scatter) {
            st_ins r = blank(ST_INS_COLL, ST_STREAM_DP, in->chunk, in->mb, "zero-3 reduce-scatter");
            r.coll = ST_COLL_REDUCESCATTER;
            r.group = L->dp_group;
            r.route = L->r_dp;
            r.dur_s = z->scatter_s;
            r.latency_s = z->scatter_lat;
            r.bytes = z->scatter_bytes;
            r.dep[0] = last;
            b->last_dp = emit(b, &r);
        }
        if (gather) {
            b->zp[0] = b->zp[1];
            b->zp[1] = last;
        }
    }
    return last;
}

static int z_layers(builder *b, const lower_ctx *L, st_ins *in, double comm_s, double lat_s, int scatter) {
    return z_layers_re(b, L, in, NULL, comm_s, lat_s, 1, scatter);
}

static void forward(builder *b, const lower_ctx *L, int j, int mb) {
    const st_chunk_cost *c = &L->cc[j];
    int pp = L->p->pp, recv = -1;
    if (j > 0) {
        st_ins r = blank(ST_INS_RECV, ST_STREAM_COMPUTE, j, mb, "recv act"); /* blocking, as Megatron's */
        r.peer = rank_at(L, (j - 1) % pp);
        r.tag = tag_of(j, mb, L->m, 0);
        p2p_fill(L, &r, j, L->r_fwd[r.peer]);
        recv = emit(b, &r);
    }
    st_ins f = blank(ST_INS_COMPUTE, ST_STREAM_COMPUTE, j, mb, "fwd");
    f.phase = ST_PHASE_FWD;
    f.dur_s = c->fwd_s;
    f.alloc_bytes = c->act_bytes;
    f.dep[0] = recv;
    double lat = latency_of(c->comm_fwd_s, L->cc0[j].comm_fwd_s);
    int fi = L->z ? z_layers(b, L, &f, c->comm_fwd_s, lat, 0) : compute(b, L, &f, c->comm_fwd_s, lat);
    if (j < L->chunks - 1) {
        st_ins s = blank(ST_INS_SEND, ST_STREAM_P2P, j, mb, "send act");
        s.peer = rank_at(L, (j + 1) % pp);
        s.tag = tag_of(j + 1, mb, L->m, 0);
        p2p_fill(L, &s, j, L->r_fwd[rank_at(L, j % pp)]);
        s.dep[0] = fi;
        emit(b, &s);
    }
}

/* An instruction that produces weight gradients. In the last micro-batch with overlapped
 * data-parallel reduction, it runs in pieces and each piece hands its share of the chunk's
 * buckets to the dp stream, which reduces them while the rest of the backward computes. */
static int grads(builder *b, const lower_ctx *L, st_ins *in, const st_chunk_cost *c, double comm_s, double lat_s) {
    if (!L->dp_overlap || in->mb != L->m - 1 || L->stage_params <= 0) return compute(b, L, in, comm_s, lat_s);
    double share = c->params / L->stage_params;
    int k = (int)(L->dp_buckets * share + 0.5);
    if (k < 1) k = 1;
    if (k > 8) k = 8; /* enough pieces to show the overlap */
    double whole = in->dur_s, free_bytes = in->free_bytes, bucket_s = L->dp_reduce_s * share / k;
    int last = -1;
    for (int i = 0; i < k; i++) {
        st_ins piece = *in;
        /* from the second piece on, a bucket reduces beside it and holds NCCL's SMs */
        piece.dur_s = whole / k + (i > 0 ? st_cost_overlap_tax(L->c, bucket_s) : 0);
        piece.free_bytes = i == k - 1 ? free_bytes : 0;
        if (i > 0) piece.dep[0] = piece.dep[1] = -1; /* the stream orders the pieces */
        last = i == k - 1 ? compute(b, L, &piece, comm_s, lat_s) : emit(b, &piece);
        st_ins r = blank(ST_INS_COLL, ST_STREAM_DP, in->chunk, in->mb, "dp reduce bucket");
        r.coll = L->p->zero == 0 ? ST_COLL_ALLREDUCE : ST_COLL_REDUCESCATTER;
        r.group = L->dp_group;
        r.dur_s = bucket_s;
        r.latency_s = L->dp_reduce_lat * share / k;
        r.bytes = L->stage_params * L->grad_bytes * share / k;
        r.route = L->r_dp;
        r.dep[0] = last;
        b->last_dp = emit(b, &r);
    }
    return last;
}

/* split: 0 whole backward, 1 input gradient only, 2 weight gradient only */
static int backward(builder *b, const lower_ctx *L, int j, int mb, int split) {
    const st_chunk_cost *c = &L->cc[j], *c0 = &L->cc0[j];
    int pp = L->p->pp, dep = -1;
    if (split == 2) {
        st_ins w = blank(ST_INS_COMPUTE, ST_STREAM_COMPUTE, j, mb, "bwd weight");
        w.phase = ST_PHASE_BWD_WEIGHT;
        w.dur_s = c->bwd_s / 2;
        w.free_bytes = c->act_bytes;
        /* ZeRO-3: weight gradients need no weights, and are scattered layer by layer */
        return L->z ? z_layers_re(b, L, &w, NULL, 0, 0, 0, 1) : grads(b, L, &w, c, 0, 0);
    }
    if (j < L->chunks - 1) {
        st_ins r = blank(ST_INS_RECV, ST_STREAM_COMPUTE, j, mb, "recv grad");
        r.peer = rank_at(L, (j + 1) % pp);
        r.tag = tag_of(j, mb, L->m, 1);
        p2p_fill(L, &r, j, L->r_bwd[r.peer]);
        dep = emit(b, &r);
    }
    int rec = L->p->recompute != ST_REC_NONE && c->recompute_s > 0;
    st_ins rc = blank(ST_INS_COMPUTE, ST_STREAM_COMPUTE, j, mb, "recompute");
    rc.phase = ST_PHASE_RECOMPUTE;
    rc.dur_s = c->recompute_s;
    rc.alloc_bytes = c->working_bytes; /* freed when the backward ends */
    rc.dep[0] = dep;
    double rc_lat = latency_of(c->comm_recompute_s, c0->comm_recompute_s);
    if (rec && !L->z) dep = compute(b, L, &rc, c->comm_recompute_s, rc_lat);
    st_ins g = blank(ST_INS_COMPUTE, ST_STREAM_COMPUTE, j, mb, split ? "bwd input" : "bwd");
    g.phase = split ? ST_PHASE_BWD_INPUT : ST_PHASE_BWD;
    g.dur_s = split ? c->bwd_s / 2 : c->bwd_s;
    g.free_bytes = (split ? 0 : c->act_bytes) + (rec ? c->working_bytes : 0);
    g.dep[0] = dep;
    double lat = latency_of(c->comm_bwd_s, c0->comm_bwd_s);
    int gi;
    if (L->z) /* layer by layer, the recompute in step; the chunk's tp collectives spread over the layers */
        gi = z_layers_re(b, L, &g, rec ? &rc : NULL, c->comm_bwd_s + (rec ? c->comm_recompute_s : 0),
                         lat + (rec ? rc_lat : 0), 1, !split);
    else
        gi = split ? compute(b, L, &g, c->comm_bwd_s, lat) : grads(b, L, &g, c, c->comm_bwd_s, lat);
    if (j > 0) {
        st_ins s = blank(ST_INS_SEND, ST_STREAM_P2P, j, mb, "send grad");
        s.peer = rank_at(L, (j - 1) % pp);
        s.tag = tag_of(j - 1, mb, L->m, 1);
        p2p_fill(L, &s, j, L->r_bwd[rank_at(L, j % pp)]);
        s.dep[0] = gi;
        emit(b, &s);
    }
    return gi;
}

/* the k-th forward / backward of stage d under the interleaved schedule */
static void virtual_mb(const st_plan *p, int d, int64_t k, int backward, int *chunk, int *mb) {
    int64_t pp = p->pp, vp = p->vp;
    int64_t local = (k / pp) % vp;
    if (backward) local = vp - 1 - local;
    *chunk = (int)(local * pp + d);
    *mb = (int)((k / (pp * vp)) * pp + k % pp);
}

static int lower_stage(builder *b, const lower_ctx *L, int d) {
    const st_plan *p = L->p;
    int64_t m = L->m;
    int last = -1;
    if (p->schedule == ST_SCHED_GPIPE) {
        for (int64_t i = 0; i < m; i++) forward(b, L, d, (int)i);
        for (int64_t i = 0; i < m; i++) last = backward(b, L, d, (int)i, 0);
        return last;
    }
    if (p->vp > 1) {
        int64_t total = m * p->vp;
        int64_t warm = (int64_t)(p->pp - d - 1) * 2 + (int64_t)(p->vp - 1) * p->pp;
        if (warm > total) warm = total;
        int c, mb;
        for (int64_t k = 0; k < warm; k++) {
            virtual_mb(p, d, k, 0, &c, &mb);
            forward(b, L, c, mb);
        }
        for (int64_t i = 0; i < total - warm; i++) {
            virtual_mb(p, d, warm + i, 0, &c, &mb);
            forward(b, L, c, mb);
            virtual_mb(p, d, i, 1, &c, &mb);
            last = backward(b, L, c, mb, 0);
        }
        for (int64_t k = total - warm; k < total; k++) {
            virtual_mb(p, d, k, 1, &c, &mb);
            last = backward(b, L, c, mb, 0);
        }
        return last;
    }
    int zb = p->schedule == ST_SCHED_ZB;
    int64_t warm = p->pp - d - 1 < m ? p->pp - d - 1 : m;
    for (int64_t i = 0; i < warm; i++) forward(b, L, d, (int)i);
    for (int64_t i = 0; i < m - warm; i++) {
        forward(b, L, d, (int)(warm + i));
        last = backward(b, L, d, (int)i, zb);
        if (zb) last = backward(b, L, d, (int)i, 2);
    }
    for (int64_t i = m - warm; i < m; i++) last = backward(b, L, d, (int)i, zb);
    if (zb)
        for (int64_t i = m - warm; i < m; i++) last = backward(b, L, d, (int)i, 2);
    return last;
}

void st_lowered_destroy(st_lowered *l) {
    if (!l) return;
    for (int i = 0; i < l->nranks; i++)
        if (l->progs[i].cap >= 0) free(l->progs[i].ins);
    for (int i = 0; i < l->nblocks; i++) free(l->blocks[i]);
    free(l->blocks);
    for (int i = 0; i < l->ngroups; i++) free(l->groups[i].ranks);
    free(l->progs);
    free(l->groups);
    free(l->links);
    free(l->routes);
    free(l->hops);
    memset(l, 0, sizeof *l);
}

static int lower(st_cost_ctx *ctx, const st_plan *p, int full, st_lowered *out, st_error *err) {
    memset(out, 0, sizeof *out);
    int pp = p->pp, chunks = pp * p->vp, rc = 0;
    int width = p->tp * p->cp * p->dp;     /* ranks per stage */
    int lanes = full ? width : 1;          /* programs per stage */
    int nranks = pp * lanes;
    int gpus = width * pp;
    /* groups: one dp group per (stage, tp rank) and, with tp > 1, one tp group per (stage, cp, dp);
     * a representative's groups list it alone */
    int ndp = full ? pp * p->tp : pp, ntp = p->tp > 1 ? (full ? pp * p->cp * p->dp : pp) : 0;
    st_chunk_cost *cc = calloc((size_t)chunks, sizeof *cc), *cc0 = calloc((size_t)chunks, sizeof *cc0);
    int *r_fwd = malloc(sizeof(int) * (size_t)nranks), *r_bwd = malloc(sizeof(int) * (size_t)nranks);
    int *r_tpg = malloc(sizeof(int) * (size_t)(ntp + 1)), *r_dpg = malloc(sizeof(int) * (size_t)ndp);
    int *scratch = malloc(sizeof(int) * 2 * (size_t)width);
    zchunk *z = p->zero == 3 ? calloc((size_t)chunks, sizeof *z) : NULL;
    st_cluster c0;
    st_cost_ctx *ctx0 = st_cost_ctx_without_latency(ctx, &c0);
    const st_cluster *c = st_cost_cluster(ctx);
    netb B = {.out = out, .gpus = gpus};
    st_estimate est;
    out->nranks = nranks;
    out->ngroups = ndp + ntp;
    out->microbatches = st_plan_microbatches(p);
    out->progs = calloc((size_t)nranks, sizeof *out->progs);
    out->groups = calloc((size_t)out->ngroups, sizeof *out->groups);
    out->blocks = calloc((size_t)pp, sizeof *out->blocks);
    if (!cc || !cc0 || !r_fwd || !r_bwd || !r_tpg || !r_dpg || !scratch || !ctx0 || !out->progs || !out->groups || !out->blocks ||
        (p->zero == 3 && !z))
        goto nomem;
    for (int j = 0; j < chunks; j++) {
        st_cost_chunk(ctx, p, j, &cc[j]);
        st_cost_chunk(ctx0, p, j, &cc0[j]);
        if (z) {
            double n, g0, s0, e0;
            st_cost_zero3_chunk(ctx, p, j, &n, &z[j].gather_s, &z[j].scatter_s, &z[j].embed_s);
            st_cost_zero3_chunk(ctx0, p, j, &n, &g0, &s0, &e0);
            z[j].layers = (int)n;
            z[j].gather_lat = latency_of(z[j].gather_s, g0);
            z[j].scatter_lat = latency_of(z[j].scatter_s, s0);
            z[j].embed_lat = latency_of(z[j].embed_s, e0);
            z[j].gather_bytes = cc[j].params / n * st_dtype_bytes(p->dtype == ST_DT_FP8 ? ST_DT_BF16 : p->dtype);
            z[j].scatter_bytes = cc[j].params / n * p->grad_bytes;
        }
    }
    if ((rc = st_cost_estimate(ctx, p, &est))) {
        st_error_set(err, rc, NULL, "plan", "the plan cannot be priced");
        goto out;
    }
    lower_ctx L = {.p = p, .chunks = chunks, .m = out->microbatches, .cc = cc, .cc0 = cc0, .full = full, .c = c,
                   .r_fwd = r_fwd, .r_bwd = r_bwd, .p2p_bytes = st_cost_p2p_bytes(ctx, p), .grad_bytes = p->grad_bytes,
                   .z = z};
    /* group members, in rank order */
    for (int d = 0; d < pp; d++)
        for (int t = 0; t < (full ? p->tp : 1); t++) {
            st_group_def *g = &out->groups[d * (full ? p->tp : 1) + t];
            g->kind = ST_GRP_DP;
            g->n = full ? p->cp * p->dp : 1;
            if (!(g->ranks = malloc(sizeof(int) * (size_t)g->n))) goto nomem;
            for (int k = 0; k < g->n; k++) g->ranks[k] = full ? t + p->tp * (k + p->cp * p->dp * d) : d;
        }
    for (int k = 0; k < ntp; k++) { /* full: k = lane (cp, dp) + cp*dp*stage; else k = stage */
        st_group_def *g = &out->groups[ndp + k];
        g->kind = ST_GRP_TP;
        g->n = full ? p->tp : 1;
        if (!(g->ranks = malloc(sizeof(int) * (size_t)g->n))) goto nomem;
        for (int t = 0; t < g->n; t++) g->ranks[t] = full ? t + p->tp * k : k;
    }

    /* the network: links made as routes cross them */
    st_cost_net(c, &B.net);
    B.G = (int)B.net.gpus_per_node;
    B.ports = (int)B.net.nic_ports;
    B.nodes = (gpus + B.G - 1) / B.G;
    B.id = malloc(sizeof *B.id * (size_t)(2 * gpus + 2 * B.nodes * B.ports + 2 * B.nodes));
    B.prog_of_gpu = malloc(sizeof *B.prog_of_gpu * (size_t)gpus);
    if (!B.id || !B.prog_of_gpu) goto nomem;
    for (int i = 0; i < 2 * gpus + 2 * B.nodes * B.ports + 2 * B.nodes; i++) B.id[i] = -1;
    for (int g = 0; g < gpus; g++) B.prog_of_gpu[g] = full ? g : g % width == 0 ? g / width : -1;
    {
        st_group gt, gd, gp;
        st_cost_group(c, p, ST_GRP_TP, &gt);
        st_cost_group(c, p, ST_GRP_DP, &gd);
        st_cost_group(c, p, ST_GRP_PP, &gp);
        int *a = scratch, *z = scratch + width;
        /* a program's replicas (or itself): ranks gpu .. gpu + replicas - 1 */
        for (int r = 0; r < nranks; r++) {
            int d = r / lanes, n = full ? 1 : width;
            r_fwd[r] = r_bwd[r] = -1;
            if (pp == 1) continue;
            for (int dir = 0; dir < 2; dir++) {
                int e = dir == 0 ? (d + 1) % pp : (d + pp - 1) % pp; /* forward to the next stage, back to the previous */
                for (int i = 0; i < n; i++) {
                    a[i] = (full ? r : d * width) + i;
                    z[i] = a[i] + (e - d) * width; /* the same lane of stage e */
                }
                int id = route_p2p(&B, a, z, n, gp.nodes > 1);
                if (dir == 0)
                    r_fwd[r] = id;
                else
                    r_bwd[r] = id;
            }
        }
        for (int k = 0; k < ndp; k++) {
            int n = full ? p->cp * p->dp : width;
            for (int i = 0; i < n; i++) a[i] = full ? out->groups[k].ranks[i] : k * width + i;
            r_dpg[k] = route_coll(&B, a, n, gd.nodes > 1);
        }
        for (int k = 0; k < ntp; k++) {
            int n = full ? p->tp : width;
            for (int i = 0; i < n; i++) a[i] = full ? out->groups[ndp + k].ranks[i] : k * width + i;
            r_tpg[k] = route_coll(&B, a, n, gt.nodes > 1);
        }
        if (B.failed) goto nomem;
    }

    for (int r = 0; r < nranks; r++) {
        int d = r / lanes, lane = r % lanes;
        L.tp_i = full ? lane % p->tp : 0;
        L.cp_i = full ? (lane / p->tp) % p->cp : 0;
        L.dp_i = full ? lane / (p->tp * p->cp) : 0;
        L.tp_group = ntp ? ndp + (full ? lane / p->tp + p->cp * p->dp * d : d) : -1;
        L.r_tp = ntp ? r_tpg[L.tp_group - ndp] : -1;
        st_program *pg = &out->progs[r];
        st_stage_memory sm;
        pg->rank = r;
        pg->stage = d;
        pg->replicas = full ? 1 : width;
        pg->gpu = full ? r : d * width;
        st_cost_stage_memory(ctx, p, d, &sm);
        pg->base_bytes = sm.weights_bytes + sm.grads_bytes + sm.optimizer_bytes + sm.other_bytes;

        /* the lanes of a stage have as many instructions as its first: they share one block */
        if (lane == 1 && out->progs[r - 1].n > 0) {
            int n0 = out->progs[r - 1].n;
            st_ins *block = st__alloc_big(sizeof *block * (size_t)n0 * (size_t)(lanes - 1));
            if (!block) goto nomem;
            out->blocks[out->nblocks++] = block;
            for (int k = 1; k < lanes; k++) {
                out->progs[r - 1 + k].ins = block + (size_t)(k - 1) * (size_t)n0;
                out->progs[r - 1 + k].cap = -n0;
            }
        }
        builder b = {.pg = pg, .last_dp = -1, .zp = {-1, -1}};
        double gather_s = 0, gather_lat = 0;
        L.dp_group = d * (full ? p->tp : 1) + L.tp_i;
        L.r_dp = r_dpg[L.dp_group];
        L.dp_overlap = 0;
        L.stage_params = 0;
        for (int j = d; j < chunks; j += pp) L.stage_params += cc[j].params;
        if (p->zero <= 2) {
            double red0, gat0, nb0;
            st_cost_dp_stage(ctx, p, d, &L.dp_reduce_s, &gather_s, &L.dp_buckets);
            st_cost_dp_stage(ctx0, p, d, &red0, &gat0, &nb0);
            L.dp_reduce_lat = latency_of(L.dp_reduce_s, red0);
            gather_lat = latency_of(gather_s, gat0);
            L.dp_overlap = p->overlap_grad_reduce;
        }
        int last = lower_stage(&b, &L, d);
        int before_opt = last;
        st_ins dpi = blank(ST_INS_COLL, ST_STREAM_DP, -1, -1, "dp reduce");
        dpi.coll = p->zero == 0 ? ST_COLL_ALLREDUCE : ST_COLL_REDUCESCATTER;
        dpi.group = L.dp_group;
        dpi.dep[0] = last;
        if (p->zero == 3) {
            /* the layers' reduce-scatters went out during the backward; the end stages all-reduce
             * the tied embedding's gradient after them */
            double emb = 0, emb_lat = 0;
            for (int j = d; j < chunks; j += pp) emb += z[j].embed_s, emb_lat += z[j].embed_lat;
            before_opt = b.last_dp;
            if (emb > 0) {
                dpi.coll = ST_COLL_ALLREDUCE;
                dpi.label = "embedding all-reduce";
                dpi.dur_s = emb;
                dpi.latency_s = emb_lat;
                dpi.route = L.r_dp;
                before_opt = emit(&b, &dpi);
            }
        } else if (!L.dp_overlap) {
            dpi.dur_s = L.dp_reduce_s; /* after the whole backward (Megatron-LM's default) */
            dpi.latency_s = L.dp_reduce_lat;
            dpi.bytes = L.stage_params * L.grad_bytes;
            dpi.route = L.r_dp;
            before_opt = emit(&b, &dpi);
        } else if (b.last_dp >= 0) {
            before_opt = b.last_dp; /* the buckets went out during the backward */
        }
        st_ins opt = blank(ST_INS_COMPUTE, ST_STREAM_COMPUTE, -1, -1, "optimizer");
        opt.phase = ST_PHASE_OPTIMIZER;
        opt.dur_s = est.breakdown.optimizer_s + est.breakdown.offload_s;
        opt.dep[0] = before_opt;
        int oi = emit(&b, &opt);
        if (p->zero >= 1 && p->zero <= 2 && gather_s > 0) {
            /* the updated weights all-gathered; with --overlap-param-gather all but the last
             * bucket hide behind the next iteration's forward */
            st_ins g = blank(ST_INS_COLL, ST_STREAM_DP, -1, -1, "dp gather");
            g.coll = ST_COLL_ALLGATHER;
            g.group = L.dp_group;
            g.route = L.r_dp;
            g.bytes = L.stage_params * st_dtype_bytes(p->dtype == ST_DT_FP8 ? ST_DT_BF16 : p->dtype);
            if (L.dp_overlap) {
                /* (what hides still took NCCL's SMs from that forward: a fixed part) */
                double tax = st_cost_overlap_tax(L.c, gather_s - gather_s / L.dp_buckets);
                g.dur_s = gather_s / L.dp_buckets + tax;
                g.latency_s = gather_lat / L.dp_buckets + tax;
                g.bytes /= L.dp_buckets;
            } else {
                g.dur_s = gather_s;
                g.latency_s = gather_lat;
            }
            g.dep[0] = oi;
            emit(&b, &g);
        }
        if (b.failed) goto nomem;
        if (pg->cap > pg->n && pg->n > 0) { /* give back what doubling left over */
            st_ins *fit = realloc(pg->ins, sizeof *pg->ins * (size_t)pg->n);
            if (fit) pg->ins = fit, pg->cap = pg->n;
        }
    }
    goto out;
nomem:
    rc = st_error_set(err, ST_ENOMEM, NULL, NULL, "out of memory");
    st_lowered_destroy(out);
out:
    free(cc);
    free(cc0);
    free(r_fwd);
    free(r_bwd);
    free(r_tpg);
    free(r_dpg);
    free(scratch);
    free(z);
    free(B.id);
    free(B.prog_of_gpu);
    free(B.tmp);
    st_cost_ctx_free(ctx0);
    return rc;
}

int st_lower(st_cost_ctx *ctx, const st_plan *p, st_lowered *out, st_error *err) { return lower(ctx, p, 0, out, err); }

int st_lower_full(st_cost_ctx *ctx, const st_plan *p, st_lowered *out, st_error *err) {
    return lower(ctx, p, 1, out, err);
}
