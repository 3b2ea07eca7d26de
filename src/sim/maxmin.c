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
 * every start and end against a reference that recomputes max-min over every flow and link. */
#include "sim_private.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int st__net_alloc_flows(st__net *N, int32_t cap) {
    if (!(N->fl = st__alloc_big((size_t)cap * sizeof *N->fl)) || !(N->q_fl = malloc((size_t)cap * sizeof *N->q_fl)) ||
        !(N->q_ln = malloc((size_t)(N->nln > 0 ? N->nln : 1) * sizeof *N->q_ln)))
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

/* progressive filling over the queued flows and links: every unfrozen flow has the same rate x;
 * raise x until a flow reaches its rate alone or a link fills, freeze those flows, repeat */
static void fill(st__net *N) {
    int32_t stamp = N->stamp, left = N->nq_fl;
    double level = 0;
    for (int32_t i = 0; i < N->nq_fl; i++)
        N->fl[N->q_fl[i]].frozen = 0;
    while (left > 0) {
        double x = INFINITY;
        for (int32_t i = 0; i < N->nq_ln; i++) {
            const st__link_aux *X = &N->lx[N->q_ln[i]];
            if (X->wsum > 0 && X->rem / X->wsum < x)
                x = X->rem / X->wsum;
        }
        for (int32_t i = 0; i < N->nq_fl; i++) {
            const st__flow *F = &N->fl[N->q_fl[i]];
            if (!F->frozen && F->rate < x)
                x = F->rate;
        }
        if (x < level)
            x = level; /* rounding; the level never goes down */
        level = x;
        double lim = x * (1 + 1e-12);
        for (int32_t i = 0; i < N->nq_fl; i++) {
            st__flow *F = &N->fl[N->q_fl[i]];
            if (F->frozen)
                continue;
            if (F->rate <= lim) {
                F->new_rate = F->rate;
                F->frozen = 2;
                continue;
            }
            for (int32_t h = N->rt[F->route].first, e = h + N->rt[F->route].n; h < e; h++) {
                const st__link_aux *X = &N->lx[N->hop[h].link];
                if (X->mark == stamp && X->wsum > 0 && X->rem / X->wsum <= lim) {
                    F->new_rate = x;
                    F->frozen = 2;
                    break;
                }
            }
        }
        for (int32_t i = 0; i < N->nq_fl; i++) {
            st__flow *F = &N->fl[N->q_fl[i]];
            if (F->frozen != 2)
                continue;
            F->frozen = 1;
            left--;
            for (int32_t h = N->rt[F->route].first, e = h + N->rt[F->route].n; h < e; h++) {
                st__link_aux *X = &N->lx[N->hop[h].link];
                if (X->mark == stamp) {
                    X->rem -= N->hop[h].count * F->new_rate;
                    X->wsum -= N->hop[h].count;
                }
            }
        }
    }
}

/* Whether a flow at rate x has its bottleneck on full link L: L is saturated and no flow on it is
 * faster (the margins: the rounding of sums over a link's flows). Rates are rate x speed, or x
 * new_speed right after a re-share, before the engine applies them (the same products). */
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

static inline int bottleneck_of(const st__link *L, double load, double top, double x) {
    return load >= L->cap * (1 - 1e-12) && top <= x * (1 + 1e-12);
}

/* At the end of a re-share: each of its flows that runs below its rate alone counts the links of its
 * route that are its bottlenecks. Every full link it crosses is the re-share's, and every flow on
 * those links too, so the counts see the final rates. */
static void count_bottlenecks(st__net *N) {
    for (int32_t i = 0; i < N->nq_ln; i++) {
        st__link_aux *X = &N->lx[N->q_ln[i]];
        link_state(N, &N->ln[N->q_ln[i]], 1, &X->rem, &X->wsum); /* (the filling's scratch, free again) */
    }
    for (int32_t i = 0; i < N->nq_fl; i++) {
        st__flow *F = &N->fl[N->q_fl[i]];
        double x = F->rate * F->new_speed;
        F->nbneck = 0;
        if (F->new_speed >= 1)
            continue;
        for (int32_t h = N->rt[F->route].first, e = h + N->rt[F->route].n; h < e; h++) {
            const st__link_aux *X = &N->lx[N->hop[h].link];
            F->nbneck += X->mark == N->stamp && bottleneck_of(&N->ln[N->hop[h].link], X->rem, X->wsum, x);
        }
    }
}

/* Max-min fair rates for the flows queued in q_fl (marked with the current stamp): first the flows
 * and full links connected to them through full links, then progressive filling over those; the
 * flows whose speed changes end up in q_fl[0 .. nchg). */
static void reshare(st__net *N) {
    int32_t stamp = N->stamp;
    N->reshares++;
    N->nq_ln = 0;
    for (int32_t i = 0; i < N->nq_fl; i++) {
        int32_t r = N->fl[N->q_fl[i]].route;
        for (int32_t h = N->rt[r].first, e = h + N->rt[r].n; h < e; h++) {
            int32_t l = N->hop[h].link;
            const st__link *L = &N->ln[l];
            if (N->lx[l].mark == stamp || !link_full(L))
                continue;
            N->lx[l].mark = stamp;
            N->q_ln[N->nq_ln++] = l;
            queue_flows_of(N, L);
        }
    }
    for (int32_t i = 0; i < N->nq_ln; i++) {
        const st__link *L = &N->ln[N->q_ln[i]];
        st__link_aux *X = &N->lx[N->q_ln[i]];
        X->rem = L->cap;
        X->wsum = 0;
        for (int32_t k = 0; k < L->n; k++)
            X->wsum += L->fl[2 * k + 1];
    }
    fill(N);
    for (int32_t i = 0; i < N->nq_fl; i++) {
        st__flow *F = &N->fl[N->q_fl[i]];
        F->new_speed = F->new_rate >= F->rate ? 1.0 : F->new_rate / F->rate;
    }
    count_bottlenecks(N);
    N->nchg = 0;
    for (int32_t i = 0; i < N->nq_fl; i++) { /* (nchg <= i: compacting in place keeps the order) */
        int32_t f = N->q_fl[i];
        if (N->fl[f].new_speed != N->fl[f].speed)
            N->q_fl[N->nchg++] = f;
    }
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
    F->new_rate = F->new_speed = 0;
    F->route = route;
    F->nbneck = 0;
    F->mark = F->frozen = 0;
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
    reshare(N);
    return f;
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
            if (L->fl[2 * k] != f && G->speed < 1 && bottleneck_of(L, load, top, G->rate * G->speed) &&
                --G->nbneck <= 0)
                return 0;
        }
    }
    return 1;
}

void st__flow_end(st__net *N, int32_t f) {
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
    if (N->nq_fl > 0)
        reshare(N);
}
