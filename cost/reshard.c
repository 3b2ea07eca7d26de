/* reshard.c: resharding a tensor between two layouts on a device mesh (issue 4).
 *
 * Rink et al. 2021 ("Memory-efficient array redistribution through portable collective
 * communication") express any redistribution on a mesh as a sequence of slices, all-to-alls,
 * all-gathers and reductions along the mesh axes. Per axis the step is fixed by the two layouts:
 *   partial -> split d        reduce-scatter      partial -> replicated   all-reduce
 *   split d -> split d' != d  all-to-all          split d -> replicated   all-gather
 *   replicated -> split d     slice (local, free) otherwise               nothing
 * Slices go first (they shrink what later steps move); the other steps (one per axis, so at most
 * two) are priced in every order and the cheapest order wins: a reduce-scatter before an
 * all-gather on the other axis moves less than after it. Collective times are cost/comm.c's for
 * the axis's group. */
#include "cost_private.h"

#include <string.h>

void st_mesh_init(st_mesh *m, const st_cluster *c, int nodes, int gpus, int naxes, const int *size) {
    memset(m, 0, sizeof *m);
    m->naxes = naxes;
    m->nodes = nodes;
    m->gpus = gpus;
    int64_t stride = 1;
    for (int a = naxes - 1; a >= 0; a--) {
        int64_t n = size[a];
        m->size[a] = size[a];
        int64_t per = stride >= gpus ? 1 : gpus / stride;
        if (per > n) per = n;
        if (per < 1) per = 1;
        m->grp[a].n = n;
        m->grp[a].per_node = per;
        m->grp[a].nodes = (n + per - 1) / per;
        /* every group along this axis runs its collective at the same time: all the node's GPUs
         * share its NICs */
        m->grp[a].node_share = c->gpus_per_node;
        /* the fabric tier its groups cross: blocks of the nodes one group spans, in cluster GPUs */
        int64_t span_nodes = (stride * n + gpus - 1) / gpus;
        m->grp[a].tier = m->grp[a].nodes > 1 ? st__group_tier(c, span_nodes * c->gpus_per_node) : ST_TIER_NODE;
        stride *= n;
    }
}

typedef struct step {
    st_coll coll;
    int axis;
} step;

static double run(const st_cluster *c, const st_profile *prof, const st_mesh *m, double bytes, const step *s, int n,
                  st_reshard_step *out) {
    double t = 0;
    for (int i = 0; i < n; i++) {
        double k = m->size[s[i].axis];
        const st_group *g = &m->grp[s[i].axis];
        double ti, sent = bytes;
        switch (s[i].coll) {
        case ST_COLL_REDUCESCATTER:
            ti = st_cost_collective(c, prof, s[i].coll, g, bytes);
            bytes /= k;
            break;
        case ST_COLL_ALLGATHER:
            bytes *= k;
            sent = bytes;
            ti = st_cost_collective(c, prof, s[i].coll, g, bytes);
            break;
        default: ti = st_cost_collective(c, prof, s[i].coll, g, bytes); break;
        }
        if (out) out[i] = (st_reshard_step){s[i].coll, s[i].axis, sent, ti};
        t += ti;
    }
    return t;
}

double st_cost_reshard_steps(const st_cluster *c, const st_profile *prof, const st_mesh *m, double full_bytes,
                             st_layout src, st_layout dst, st_reshard_step *steps, int *nsteps) {
    double bytes = full_bytes;
    step s[2] = {{ST_COLL_NONE, 0}, {ST_COLL_NONE, 0}};
    int n = 0;
    for (int a = 0; a < m->naxes; a++)
        if (src.ax[a] >= 0) bytes /= m->size[a];
    for (int a = 0; a < m->naxes; a++) {
        int sa = src.ax[a], da = dst.ax[a];
        st_coll k = ST_COLL_NONE;
        if (m->size[a] <= 1) continue;
        if (src.partial & (1u << a)) {
            k = da >= 0 ? ST_COLL_REDUCESCATTER : ST_COLL_ALLREDUCE;
        } else if (sa >= 0) {
            if (da >= 0 && da != sa) k = ST_COLL_ALLTOALL;
            else if (da < 0) k = ST_COLL_ALLGATHER;
        } else if (da >= 0) {
            bytes /= m->size[a]; /* slice: local */
        }
        if (k != ST_COLL_NONE) s[n++] = (step){k, a};
    }
    st_reshard_step d[2];
    double best = run(c, prof, m, bytes, s, n, d);
    if (n == 2) {
        step r[2] = {s[1], s[0]};
        st_reshard_step e[2];
        double t = run(c, prof, m, bytes, r, 2, e);
        if (t < best) {
            best = t;
            d[0] = e[0], d[1] = e[1];
        }
    }
    if (nsteps) *nsteps = n;
    for (int i = 0; steps && i < n; i++) steps[i] = d[i];
    return best;
}

double st_cost_reshard(const st_cluster *c, const st_profile *prof, const st_mesh *m, double full_bytes, st_layout src,
                       st_layout dst, st_coll *steps, int *nsteps) {
    st_reshard_step d[2];
    int n = 0;
    double t = st_cost_reshard_steps(c, prof, m, full_bytes, src, dst, d, &n);
    if (nsteps) *nsteps = n;
    for (int i = 0; steps && i < n; i++) steps[i] = d[i].coll;
    return t;
}
