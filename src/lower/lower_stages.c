/* lower_stages.c: every rank's program of a pipeline whose stages run on meshes of different shapes
 * (an operator-level plan's stages, Alpa's: Zheng et al. OSDI'22 Sec. 5, where each stage's mesh and
 * sharding are its own), for the executor (exec/cpu.c) and the simulator beside it (strata run --compare).
 *
 * Each stage runs as its own hybrid plan (st_plan: its tp, dp, sp, ep, zero and recompute; the pipeline's
 * pp, stage cuts, schedule and micro-batch count are every stage's), lowered to every rank by st_lower_plan
 * (its fused form, the one exec/ interprets); stage d's programs are taken from stage d's plan's lowering,
 * `copies` times each ('rep': mesh axes on which the stage splits nothing, every device computing what the
 * others do; each copy its own tp, dp and ep groups), renumbered one stage after another. What crosses
 * stages is made here:
 * - the pipeline's transfers, as the cross-mesh exchange (Alpa's cross-mesh resharding, Zheng et al.
 *   OSDI'22 Sec. 5; Zhuang et al. 2023): a stage's residual stream (its activation, the gradient alike) is
 *   laid out by rows of the micro-batch's N = mbs x seq token rows, dp rank q holding the q-th N / dp
 *   (whole sequences: the ILP's batch split) and, with sp, tp rank t the t-th share of those, without sp
 *   all of them; every copy the same. Each receiving device takes its rows from the sending devices that
 *   hold them, the intersection of the two row ranges, one message per pair (st_stage_exchange); where
 *   several hold a block (tp without sp, copies) the receiver's index picks one, so that the senders
 *   share the work. A SEND or RECV of the stage's lowering becomes one per pair, the tag kept (the tags
 *   name chunk, micro-batch and direction, not ranks: unique per pair still), bytes and the bandwidth
 *   part of its time scaled by the rows it moves;
 * - the tied embedding's all-reduce between the end stages: per tp rank t, every device of the first and
 *   the last stage with tp rank t (the tables must be split alike, tp equal: refused otherwise), each
 *   stage's sum contributed by one device of it (exec/cpu.c: its dp rank 0's copy 0; the others add zeros,
 *   having summed over dp before), so that every device ends with the two stages' sum.
 * Stage d's ranks: first(d) + c + copies x (t + tp x q) for copy c, tp rank t, dp rank q (copies innermost,
 * as the ILP's mesh holds the axes that split nothing; tp before dp, Megatron's order within a copy).
 *
 * Not modelled: the links. Every stage's lowering places its stage at its own plan's ranks, so its routes
 * do not name this layout's GPUs; the stitched programs cross no modelled link (route -1): each transfer
 * takes its cost-model time alone, as each stage's plan prices it on the cluster. */
#include "src/lower/lower.h"

#include <stdlib.h>
#include <string.h>

int st_stage_width(const st_stage_shape *s) { return s->tp * s->dp * s->copies; }

void st_stage_rows(const st_stage_shape *s, int64_t N, int i, int64_t *lo, int64_t *n) {
    int t = (i / s->copies) % s->tp, q = i / (s->copies * s->tp);
    int64_t nq = N / s->dp;
    *lo = q * nq, *n = nq;
    if (s->sp) *n = nq / s->tp, *lo += t * *n;
}

void st_stage_exchange(const st_stage_shape *from, const st_stage_shape *to, int64_t N, int src, int dst, int64_t *lo,
                       int64_t *n) {
    int64_t a, na, b, nb;
    st_stage_rows(to, N, dst, &a, &na);
    st_stage_rows(from, N, src, &b, &nb);
    /* the holders of src's block: its copies (and without sp its tp ranks); src's place among them */
    int c = src % from->copies, t = (src / from->copies) % from->tp;
    int holders = from->copies * (from->sp ? 1 : from->tp), place = from->sp ? c : c + from->copies * t;
    int64_t l = a > b ? a : b, h = a + na < b + nb ? a + na : b + nb;
    *lo = l, *n = h > l && dst % holders == place ? h - l : 0;
}

/* a growing instruction array */
typedef struct insbuf {
    st_ins *ins;
    int n, cap;
} insbuf;

static int put(insbuf *b, const st_ins *in) {
    if (b->n == b->cap) {
        int cap = b->cap ? 2 * b->cap : 64;
        st_ins *p = realloc(b->ins, (size_t)cap * sizeof *p);
        if (!p) return -1;
        b->ins = p, b->cap = cap;
    }
    b->ins[b->n] = *in;
    return b->n++;
}

/* whether every member of g lies in [r0, r0 + w) (1), none (0), or some (-1) */
static int group_in(const st_group_def *g, int r0, int w) {
    int in = 0;
    for (int i = 0; i < g->n; i++) in += g->ranks[i] >= r0 && g->ranks[i] < r0 + w;
    return in == g->n ? 1 : in == 0 ? 0 : -1;
}

static int new_group(st_lowered *out, int cap, st_group_kind kind, int n) {
    if (out->ngroups == cap) return -1;
    st_group_def *g = &out->groups[out->ngroups];
    g->kind = kind, g->n = n;
    if (!(g->ranks = malloc((size_t)(n ? n : 1) * sizeof *g->ranks))) return -1;
    return out->ngroups++;
}

/* The instruction that one of pg's (index k, already emitted or dropped) stands for in the new program:
 * map[k], whose dropped entries (-2) stand for their own first dependency's */
static int32_t mapped(const int32_t *map, const st_program *pg, int32_t k) {
    while (k >= 0 && map[k] == -2) {
        st_ins in;
        st_program_ins(pg, k, &in);
        k = in.dep[0];
    }
    return k >= 0 ? map[k] : -1;
}

int st_lower_stages(st_cost_ctx *ctx, const st_plan *const *plans, const int *copies, const st_lower_opts *opts,
                    int nstages, st_lowered *out, st_error *err) {
    int S = nstages, rc = 0, total = 0, tied = 0, gcap = 0;
    st_lowered *L = calloc((size_t)(S > 0 ? S : 1), sizeof *L);
    st_stage_shape *sh = calloc((size_t)(S > 0 ? S : 1), sizeof *sh);
    int *opoff = calloc((size_t)(S > 0 ? S : 1), sizeof *opoff);
    int **gmap = calloc((size_t)(S > 0 ? S : 1), sizeof *gmap);
    int32_t *map = NULL;
    insbuf b = {0};
    memset(out, 0, sizeof *out);
    if (!L || !sh || !opoff || !gmap) goto nomem;
    if (S < 2 || S > ST_MAX_STAGES) {
        rc = st_error_set(err, ST_EINVAL, NULL, "stages", "%d stages: the stitched lowering takes 2 to %d", S,
                          ST_MAX_STAGES);
        goto out;
    }
    int64_t N = 0, m = 0;
    for (int d = 0; d < S && !rc; d++) {
        const st_plan *p = plans[d];
        if (p->pp != S || p->vp != 1 || p->cp != 1 || p->nstage_tp || p->ndp_batches ||
            (p->schedule != ST_SCHED_1F1B && p->schedule != ST_SCHED_GPIPE) || copies[d] < 1) {
            rc = st_error_set(err, ST_EINVAL, NULL, "stages",
                              "stage %d's plan: a pipeline of %d stages, vp 1, cp 1, one tp, even micro-batches, "
                              "1f1b or gpipe, and at least one copy, for stages of different shapes", d, S);
            break;
        }
        sh[d] = (st_stage_shape){.tp = p->tp, .dp = p->dp, .sp = p->sp, .copies = copies[d], .first = total};
        total += st_stage_width(&sh[d]);
        int64_t n = p->mbs * p->dp * p->seq;
        if (d > 0 && (n != N || p->gbs != plans[0]->gbs || p->schedule != plans[0]->schedule)) {
            rc = st_error_set(err, ST_EINVAL, NULL, "stages",
                              "stage %d's plan: a micro-batch of %lld token rows, gbs %lld; stage 0's %lld, %lld: the "
                              "stages run one pipeline", d, (long long)n, (long long)p->gbs, (long long)N,
                              (long long)plans[0]->gbs);
            break;
        }
        N = n;
        st_lower_opts o = opts[d];
        o.every_rank = 1;
        if ((rc = st_lower_plan(ctx, p, &o, &L[d], err))) break;
        if (d > 0 && L[d].microbatches != m) {
            rc = st_error_set(err, ST_EINVAL, NULL, "stages", "stage %d runs %lld micro-batches, stage 0 %lld", d,
                              (long long)L[d].microbatches, (long long)m);
            break;
        }
        m = L[d].microbatches;
        opoff[d] = out->nops;
        out->nops += L[d].nops;
        gcap += L[d].ngroups * copies[d];
    }
    if (rc) goto out;
    /* the tied embedding's all-reduce: does an end stage's program have one? */
    for (int e = 0; e < 2 && !tied; e++) {
        int d = e ? S - 1 : 0;
        const st_program *pg = &L[d].progs[st_plan_stage_rank0(plans[d], d)];
        for (int i = 0; i < pg->n && !tied; i++) {
            st_ins in;
            st_program_ins(pg, i, &in);
            tied = in.kind == ST_INS_COLL && L[d].groups[in.group].kind == ST_GRP_PP;
        }
    }
    if (tied && sh[0].tp != sh[S - 1].tp) {
        rc = st_error_set(err, ST_EINVAL, NULL, "stages",
                          "the tied embedding's end stages run tp=%d (stage 0) and tp=%d (stage %d): the executor "
                          "sums its gradient between end stages of one tp degree, rank by rank", sh[0].tp,
                          sh[S - 1].tp, S - 1);
        goto out;
    }
    gcap += tied ? sh[0].tp : 0;
    out->nranks = total;
    out->microbatches = m;
    out->progs = calloc((size_t)total, sizeof *out->progs);
    out->groups = calloc((size_t)(gcap ? gcap : 1), sizeof *out->groups);
    out->ops = out->nops ? malloc((size_t)out->nops * sizeof *out->ops) : NULL;
    if (!out->progs || !out->groups || (out->nops && !out->ops)) goto nomem;
    for (int d = 0; d < S; d++) {
        if (L[d].nops) memcpy(out->ops + opoff[d], L[d].ops, (size_t)L[d].nops * sizeof *out->ops);
        /* stage d's groups, one per copy (gmap[d][g * copies + c]; -1: not the stage's) */
        int r0 = (int)st_plan_stage_rank0(plans[d], d), w = sh[d].tp * sh[d].dp, cs = sh[d].copies;
        if (!(gmap[d] = malloc((size_t)(L[d].ngroups * cs + 1) * sizeof *gmap[d]))) goto nomem;
        for (int g = 0; g < L[d].ngroups; g++) {
            const st_group_def *gd = &L[d].groups[g];
            int in = gd->kind == ST_GRP_PP ? 0 : group_in(gd, r0, w);
            if (in < 0) {
                static const char *const kinds[ST_GRP_COUNT] = {"tp", "cp", "ep", "dp", "pp"};
                rc = st_error_set(err, ST_EINVAL, NULL, "stages", "stage %d's plan has a %s group across stages", d,
                                  kinds[gd->kind]);
                goto out;
            }
            for (int c = 0; c < cs; c++) {
                int k = in ? new_group(out, gcap, gd->kind, gd->n) : -1;
                if (in && k < 0) goto nomem;
                for (int i = 0; in && i < gd->n; i++)
                    out->groups[k].ranks[i] = sh[d].first + c + cs * (gd->ranks[i] - r0);
                gmap[d][g * cs + c] = k;
            }
        }
    }
    int tied0 = out->ngroups; /* the tied groups: tp rank t's at tied0 + t */
    for (int t = 0; tied && t < sh[0].tp; t++) {
        int n = 0, ends[2] = {0, S - 1};
        for (int e = 0; e < 2; e++) n += sh[ends[e]].copies * sh[ends[e]].dp;
        int k = new_group(out, gcap, ST_GRP_PP, n);
        if (k < 0) goto nomem;
        n = 0;
        for (int e = 0; e < 2; e++) {
            const st_stage_shape *z = &sh[ends[e]];
            for (int i = 0; i < st_stage_width(z); i++)
                if ((i / z->copies) % z->tp == t) out->groups[k].ranks[n++] = z->first + i;
        }
    }
    /* the programs */
    for (int d = 0; d < S; d++) {
        int r0 = (int)st_plan_stage_rank0(plans[d], d), cs = sh[d].copies;
        for (int i = 0; i < sh[d].tp * sh[d].dp; i++)
            for (int c = 0; c < cs; c++) {
                const st_program *pg = &L[d].progs[r0 + i];
                int me = c + cs * i, rank = sh[d].first + me;
                int64_t lo, myrows;
                st_stage_rows(&sh[d], N, me, &lo, &myrows);
                free(map);
                if (!(map = malloc((size_t)(pg->n + 1) * sizeof *map))) goto nomem;
                b.n = 0;
                for (int k = 0; k < pg->n; k++) {
                    st_ins in;
                    st_program_ins(pg, k, &in);
                    in.route = -1;
                    for (int e = 0; e < 2; e++) in.dep[e] = mapped(map, pg, in.dep[e]);
                    if (in.kind == ST_INS_COMPUTE) {
                        if (in.nops > 0) in.op += opoff[d];
                    } else if (in.kind == ST_INS_COLL) {
                        if (L[d].groups[in.group].kind == ST_GRP_PP)
                            in.group = tied0 + (me / cs) % sh[d].tp;
                        else
                            in.group = gmap[d][in.group * cs + c];
                        if (in.group < 0) {
                            rc = st_error_set(err, ST_EINVAL, NULL, "stages",
                                              "stage %d's program has a collective outside its stage", d);
                            goto out;
                        }
                    }
                    if (in.kind != ST_INS_SEND && in.kind != ST_INS_RECV) {
                        if ((map[k] = put(&b, &in)) < 0) goto nomem;
                        continue;
                    }
                    /* the pipeline's transfer as the cross-mesh exchange: forward to the next stage, backward
                     * to the one before (1f1b and gpipe: chunk = stage; the tag's low bit the direction) */
                    int bwd = in.tag & 1, send = in.kind == ST_INS_SEND;
                    int e = send ? (bwd ? d - 1 : d + 1) : (bwd ? d + 1 : d - 1);
                    if (e < 0 || e >= S) {
                        rc = st_error_set(err, ST_EINVAL, NULL, "stages", "stage %d's program sends past the pipeline",
                                          d);
                        goto out;
                    }
                    double per_row = myrows > 0 ? in.bytes / (double)myrows : 0, lat = in.latency_s;
                    double bw_s = in.dur_s - lat > 0 ? (in.dur_s - lat) / (double)(myrows > 0 ? myrows : 1) : 0;
                    map[k] = -2;
                    for (int j = 0; j < st_stage_width(&sh[e]); j++) {
                        int64_t rl, rn;
                        if (send) st_stage_exchange(&sh[d], &sh[e], N, me, j, &rl, &rn);
                        else st_stage_exchange(&sh[e], &sh[d], N, j, me, &rl, &rn);
                        if (rn <= 0) continue;
                        st_ins x = in;
                        x.peer = sh[e].first + j;
                        x.bytes = per_row * (double)rn;
                        x.dur_s = lat + bw_s * (double)rn;
                        if ((map[k] = put(&b, &x)) < 0) goto nomem;
                        /* the rest after the first: the stream orders the receives; memory moves once */
                        in.dep[0] = send ? in.dep[0] : -1, in.dep[1] = send ? in.dep[1] : -1;
                        in.alloc_bytes = in.free_bytes = 0;
                    }
                }
                st_program *np = &out->progs[rank];
                np->rank = rank, np->stage = d, np->replicas = 1, np->gpu = rank, np->base_bytes = pg->base_bytes;
                np->n = b.n;
                np->cap = b.n;
                if (!(np->ins = malloc((size_t)(b.n ? b.n : 1) * sizeof *np->ins))) goto nomem;
                if (b.n) memcpy(np->ins, b.ins, (size_t)b.n * sizeof *np->ins);
            }
    }
    goto out;
nomem:
    rc = st_error_set(err, ST_ENOMEM, NULL, NULL, "out of memory");
out:
    for (int d = 0; L && d < S; d++) st_lowered_destroy(&L[d]);
    for (int d = 0; gmap && d < S; d++) free(gmap[d]);
    free(L), free(sh), free(opoff), free(gmap), free(map), free(b.ins);
    if (rc) st_lowered_destroy(out);
    return rc;
}
