/* maxmin.c: flows on shared links and their max-min fair rates (program.h, "Network"), for the
 * engine (sim.c), which schedules the completions.
 *
 * A transfer whose route crosses links runs as a flow: its bandwidth part is work at the route's
 * rate alone (`speed` 1 = alone). Links are shared max-min fairly (progressive filling, the
 * SimGrid / Bertsekas-Gallager fluid model, "Data Networks" section 6.5.2): every flow gets the
 * same rate until it reaches its own rate alone or one of its links fills, where a link of
 * capacity c carries sum(count x rate) of the flows crossing it. Whenever a flow starts or ends,
 * the rates are recomputed only where they can change:
 * - a link is "full" when the flows crossing it, each at its rate alone, would exceed it
 *   (demand > capacity); a link that is not full limits nobody;
 * - a flow that starts on links that are not full runs alone (speed 1, no recomputation): the
 *   common case, since the lowering gives each transfer the share of its links the cost model
 *   assumes, which fills a link exactly when all GPUs of a node communicate at once;
 * - otherwise the flows connected to it through full links (and, when a flow ends, those on the
 *   links it left full) are re-shared;
 * - unless the flow that ends leaves every rate as it was, which a bottleneck per flow proves
 *   (end_keeps_rates): the common case where a data-parallel collective keeps a fabric's links
 *   full while pipeline sends come and go on them, each of which re-shared the collective's whole
 *   component (hundreds to thousands of flows) before.
 * The flows whose speed changes are listed, in the order they were reached, for the engine to
 * apply (st__flow_set_speed) and reschedule one by one. tests/test_sim.c checks the rates after
 * every start and end against a reference that recomputes max-min over every flow and link.
 *
 * Layout (sim_private.h): a start or end reads one cache line per link of its route (st__link, its
 * first flows inline); a re-share, thousands of flows and links at 131,072 GPUs, gathers them once
 * and fills over a dense working copy (st__net.w_*), adding in the same order as over the records,
 * so the rates are the same to the bit. */
#include "sim_private.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int st__net_alloc_flows(st__net *N, int32_t cap) {
    size_t nl = (size_t)(N->nln > 0 ? N->nln : 1), nf = (size_t)cap + 1;
    if (!(N->fl = st__alloc_big((size_t)cap * sizeof *N->fl)) || !(N->q_fl = malloc(nf * sizeof *N->q_fl)) ||
        !(N->q_ln = malloc(nl * sizeof *N->q_ln)) || !(N->w_cap = malloc(nl * sizeof *N->w_cap)) ||
        !(N->w_rem = malloc(nl * sizeof *N->w_rem)) || !(N->w_wsum = malloc(nl * sizeof *N->w_wsum)) ||
        !(N->w_rate = malloc(nf * sizeof *N->w_rate)) || !(N->w_share = malloc(nf * sizeof *N->w_share)) ||
        !(N->w_frozen = malloc(nf)) || !(N->w_first = malloc(nf * sizeof *N->w_first)))
        return -1;
    N->capfl = cap;
    for (int32_t f = 0; f < cap; f++) {
        N->fl[f].next_free = f + 1 < cap ? f + 1 : -1;
        N->fl[f].mark = 0;
        N->fl[f].ver = 0;
    }
    N->free_fl = cap > 0 ? 0 : -1;
    return 0;
}

/* a link is full when its flows, each at its rate alone, would exceed it; the margin keeps links
 * that the lowering fills exactly (every GPU of a node at its share) from counting as full */
static inline int link_full(const st__link *L) { return L->demand > L->cap * (1 + 1e-9); }

/* queues the flows on full link L not queued yet in this round (marked with the stamp) */
static void queue_flows_of(st__net *N, const st__link *L) {
    for (int32_t k = 0; k < L->n; k++) {
        st__flow *G = &N->fl[L->fl[2 * k]];
        if (G->mark != N->stamp) {
            G->mark = N->stamp;
            N->q_fl[N->nq_fl++] = L->fl[2 * k];
        }
    }
}

/* progressive filling over the re-share's working copy: every unfrozen flow has the same rate x;
 * raise x until a flow reaches its rate alone or a link fills, freeze those flows, repeat (in the
 * order of q_fl and of each route's hops, as the sums over a link must be added) */
static void fill(st__net *N) {
    int32_t nf = N->nq_fl, nl = N->nq_ln, left = nf;
    const double *rate = N->w_rate;
    double *rem = N->w_rem, *wsum = N->w_wsum, *share = N->w_share;
    uint8_t *frozen = N->w_frozen;
    const int32_t *first = N->w_first;
    const st__hop *hop = N->w_hop;
    double level = 0;
    memset(frozen, 0, (size_t)nf);
    while (left > 0) {
        double x = INFINITY;
        for (int32_t i = 0; i < nl; i++)
            if (wsum[i] > 0 && rem[i] / wsum[i] < x)
                x = rem[i] / wsum[i];
        for (int32_t j = 0; j < nf; j++)
            if (!frozen[j] && rate[j] < x)
                x = rate[j];
        if (x < level)
            x = level; /* rounding; the level never goes down */
        level = x;
        double lim = x * (1 + 1e-12);
        for (int32_t j = 0; j < nf; j++) {
            if (frozen[j])
                continue;
            if (rate[j] <= lim) {
                share[j] = rate[j];
                frozen[j] = 2;
                continue;
            }
            for (int32_t h = first[j]; h < first[j + 1]; h++) {
                int32_t i = hop[h].link;
                if (wsum[i] > 0 && rem[i] / wsum[i] <= lim) {
                    share[j] = x;
                    frozen[j] = 2;
                    break;
                }
            }
        }
        for (int32_t j = 0; j < nf; j++) {
            if (frozen[j] != 2)
                continue;
            frozen[j] = 1;
            left--;
            for (int32_t h = first[j]; h < first[j + 1]; h++) {
                rem[hop[h].link] -= hop[h].count * share[j];
                wsum[hop[h].link] -= hop[h].count;
            }
        }
    }
}

/* Whether a flow at rate x has its bottleneck on a full link of capacity cap: the link is saturated
 * and no flow on it is faster (the margins: the rounding of sums over a link's flows). Rates are
 * rate x speed, or x new_speed right after a re-share, before the engine applies them (the same
 * products). */
static void link_state(const st__net *N, const st__link *L, int fresh, double *load, double *top) {
    double sum = 0, max = 0;
    for (int32_t k = 0; k < L->n; k++) {
        const st__flow *G = &N->fl[L->fl[2 * k]];
        double y = G->rate * (fresh ? G->new_speed : G->speed);
        sum += L->fl[2 * k + 1] * y;
        if (y > max)
            max = y;
    }
    *load = sum;
    *top = max;
}

static inline int bottleneck_of(double cap, double load, double top, double x) {
    return load >= cap * (1 - 1e-12) && top <= x * (1 + 1e-12);
}

/* At the end of a re-share: each of its flows that runs below its rate alone counts the links of its
 * route that are its bottlenecks. Every full link it crosses is the re-share's, and every flow on
 * those links too, so the counts see the final rates. */
static void count_bottlenecks(st__net *N) {
    double *load = N->w_rem, *top = N->w_wsum; /* (the filling's, free again) */
    for (int32_t i = 0; i < N->nq_ln; i++)
        link_state(N, &N->ln[N->q_ln[i]], 1, &load[i], &top[i]);
    for (int32_t j = 0; j < N->nq_fl; j++) {
        st__flow *F = &N->fl[N->q_fl[j]];
        double x = F->rate * F->new_speed;
        F->nbneck = 0;
        if (F->new_speed >= 1)
            continue;
        for (int32_t h = N->w_first[j]; h < N->w_first[j + 1]; h++) {
            int32_t i = N->w_hop[h].link;
            F->nbneck += bottleneck_of(N->w_cap[i], load[i], top[i], x);
        }
    }
}

/* room for `need` hops in the working copy; -1 when out of memory */
static int w_reserve(st__net *N, int64_t need) {
    if (need <= N->w_caphop)
        return 0;
    int64_t cap = N->w_caphop > 0 ? 2 * N->w_caphop : 4096;
    while (cap < need)
        cap *= 2;
    if (cap > INT32_MAX)
        return -1;
    st__hop *grown = realloc(N->w_hop, (size_t)cap * sizeof *grown);
    if (!grown)
        return -1;
    N->w_hop = grown;
    N->w_caphop = cap;
    return 0;
}

/* Max-min fair rates for the flows queued in q_fl (marked with the current stamp): first the flows
 * and full links connected to them through full links (and each flow's hops on those links, for the
 * working copy), then progressive filling over those; the flows whose speed changes end up in
 * q_fl[0 .. nchg). -1 when out of memory. */
static int reshare(st__net *N) {
    int32_t stamp = N->stamp, nh = 0;
    N->reshares++;
    N->nq_ln = 0;
    for (int32_t j = 0; j < N->nq_fl; j++) { /* (q_fl grows as full links are found) */
        const st__flow *F = &N->fl[N->q_fl[j]];
        const st__route *R = &N->rt[F->route];
        if (w_reserve(N, (int64_t)nh + R->n))
            return -1;
        N->w_first[j] = nh;
        N->w_rate[j] = F->rate;
        for (int32_t h = R->first; h < R->first + R->n; h++) {
            st__link *L = &N->ln[N->hop[h].link];
            if (L->mark != stamp) {
                if (!link_full(L))
                    continue;
                L->mark = stamp;
                L->at = N->nq_ln;
                N->q_ln[N->nq_ln++] = N->hop[h].link;
                queue_flows_of(N, L);
            }
            N->w_hop[nh++] = (st__hop){L->at, N->hop[h].count};
        }
    }
    N->w_first[N->nq_fl] = nh;
    for (int32_t i = 0; i < N->nq_ln; i++) {
        const st__link *L = &N->ln[N->q_ln[i]];
        N->w_cap[i] = N->w_rem[i] = L->cap;
        N->w_wsum[i] = 0;
        for (int32_t k = 0; k < L->n; k++)
            N->w_wsum[i] += L->fl[2 * k + 1];
    }
    fill(N);
    for (int32_t j = 0; j < N->nq_fl; j++) {
        st__flow *F = &N->fl[N->q_fl[j]];
        F->new_speed = N->w_share[j] >= F->rate ? 1.0 : N->w_share[j] / F->rate;
    }
    count_bottlenecks(N);
    N->nchg = 0;
    for (int32_t j = 0; j < N->nq_fl; j++) { /* (nchg <= j: compacting in place keeps the order) */
        int32_t f = N->q_fl[j];
        if (N->fl[f].new_speed != N->fl[f].speed)
            N->q_fl[N->nchg++] = f;
    }
    return 0;
}

static int link_add(st__link *L, int32_t f, int32_t count) {
    if (L->n == L->capn) { /* out of the inline room, or of its own allocation */
        int32_t cap = 2 * L->capn;
        int32_t *grown = L->fl == L->inl ? malloc((size_t)cap * 2 * sizeof *grown)
                                         : realloc(L->fl, (size_t)cap * 2 * sizeof *grown);
        if (!grown)
            return -1;
        if (L->fl == L->inl)
            memcpy(grown, L->inl, sizeof L->inl);
        L->fl = grown;
        L->capn = cap;
    }
    L->fl[2 * L->n] = f;
    L->fl[2 * L->n + 1] = count;
    L->n++;
    return 0;
}

int32_t st__flow_start(st__net *N, int32_t route, double work_s, double t) {
    int32_t f = N->free_fl;
    st__flow *F = &N->fl[f];
    N->free_fl = F->next_free;
    /* its fields, one by one (ver goes on: events of its previous life stay stale; the engine sets
     * its own) */
    F->rem_s = work_s;
    F->speed = 0;
    F->t_last = F->finish = t;
    F->rate = N->rt[route].rate;
    F->new_speed = 0;
    F->route = route;
    F->nbneck = 0;
    F->mark = 0;
    int full = 0;
    for (int32_t h = N->rt[route].first, e = h + N->rt[route].n; h < e; h++) {
        st__link *L = &N->ln[N->hop[h].link];
        if (link_add(L, f, N->hop[h].count))
            return -1;
        L->demand += N->hop[h].count * F->rate;
        full |= link_full(L);
    }
    if (!full) { /* alone on every link it crosses */
        F->new_speed = 1.0;
        N->q_fl[0] = f;
        N->nchg = 1;
        return f;
    }
    N->stamp++;
    F->mark = N->stamp;
    N->q_fl[0] = f;
    N->nq_fl = 1;
    return reshare(N) ? -1 : f;
}

/* Whether the end of flow f (still on its links) leaves every other rate as it is. A feasible
 * allocation is the max-min fair one (unique) exactly when every flow runs at its rate alone or
 * crosses a saturated link on which no flow is faster, a bottleneck (Bertsekas-Gallager, section
 * 6.5.2; the argument holds with a flow crossing a link several times). Without f, the full links
 * of f's route stop being bottlenecks, and nothing else changes: each flow on them that runs below
 * its rate alone loses those of its bottlenecks, and while every such flow keeps one, the rates
 * without f are still max-min fair. The counts (nbneck) are made by a re-share and taken down here;
 * a link's state changes only where a flow starts on it (a full one: re-shared, counted afresh) or
 * ends on it (here), so a count taken down is one that was counted. When a count reaches 0, the
 * caller re-shares as before, which counts afresh every flow whose count was taken down.
 * The common case on a fabric: a pipeline send ends on a node link that a data-parallel
 * collective keeps full; the collective stays limited by the other nodes' links, the other sends
 * by their NIC ports. */
static int end_keeps_rates(st__net *N, int32_t f) {
    const st__flow *F = &N->fl[f];
    for (int32_t h = N->rt[F->route].first, e = h + N->rt[F->route].n; h < e; h++) {
        const st__link *L = &N->ln[N->hop[h].link];
        double load, top;
        if (!link_full(L))
            continue;
        link_state(N, L, 0, &load, &top);
        for (int32_t k = 0; k < L->n; k++) {
            st__flow *G = &N->fl[L->fl[2 * k]];
            if (L->fl[2 * k] != f && G->speed < 1 && bottleneck_of(L->cap, load, top, G->rate * G->speed) &&
                --G->nbneck <= 0)
                return 0;
        }
    }
    return 1;
}

int st__flow_end(st__net *N, int32_t f) {
    st__flow *F = &N->fl[f];
    int keep = end_keeps_rates(N, f);
    N->stamp++;
    N->nq_fl = 0;
    F->mark = N->stamp; /* not a seed itself */
    int full = 0;
    for (int32_t h = N->rt[F->route].first, e = h + N->rt[F->route].n; h < e; h++) {
        st__link *L = &N->ln[N->hop[h].link];
        int was_full = link_full(L);
        double demand = 0;
        for (int32_t k = 0; k < L->n; k++) {
            if (L->fl[2 * k] == f) { /* remove, keeping the others in order */
                if (k < L->n - 1)
                    memmove(&L->fl[2 * k], &L->fl[2 * k + 2], (size_t)(L->n - k - 1) * 2 * sizeof *L->fl);
                L->n--;
                break;
            }
        }
        for (int32_t k = 0; k < L->n; k++) /* summed afresh: no drift from adding and subtracting */
            demand += L->fl[2 * k + 1] * N->fl[L->fl[2 * k]].rate;
        L->demand = demand;
        if (was_full && !keep)
            queue_flows_of(N, L);
        full |= was_full;
    }
    N->kept += keep && full;
    F->speed = 0;
    F->next_free = N->free_fl; /* back on the free list */
    N->free_fl = f;
    N->nchg = 0;
    return N->nq_fl > 0 ? reshare(N) : 0;
}
