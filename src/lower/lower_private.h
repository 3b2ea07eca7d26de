/* lower_private.h: what the files of the hybrid-plan lowering share: src/lower/lower.c writes the
 * programs, lower_net.c the links and routes their transfers cross (program.h, "Network"),
 * lower_ops.c the table of operators their compute instructions run (program.h, "Operators"). */
#ifndef STRATA_LOWER_PRIVATE_H
#define STRATA_LOWER_PRIVATE_H

#include "src/lower/lower.h"

/* the latency part of a time t whose latency-free twin is t0 (st_cost_ctx_without_latency) */
static inline double st__latency_of(double t, double t0) {
    double lat = t - t0;
    return lat < 0 ? 0 : lat > t ? t : lat;
}

/* ------------------------------------------------------------ network (lower_net.c) */

/* The links of a lowering, made as routes first cross them, and its routes. */
typedef struct st__lnet {
    st_lowered *out;  /* where links, routes and hops go */
    st_net net;
    const st_cluster *c; /* borrowed: the domain rate of a route (st_cost_domain_bytes_per_s) */
    int G, ports, gpus, nodes;
    int leaves, pods; /* the fabric's tiers the job's nodes fill (0: the cluster has no such tier) */
    int per_port;     /* GPUs sharing one domain port (st_net.gpus_per_port) */
    /* node groups (c->ngroups > 0), every rank: each group's links at its own rates (its st_cluster_view's st_net),
     * nodes and NIC ports where the ranks really sit (st_cluster_rank_place); ports is the most any
     * group's node has */
    int grouped;
    st_net gnet[ST_MAX_GROUPS];
    int32_t *id;      /* link id per (kind, index, dir) slot, -1 = not made yet */
    int *prog_of_gpu; /* rank number of the program running on a GPU, -1 */
    st_hop *tmp;      /* hops of the route being built */
    int ntmp, captmp, caplinks, caproutes, caphops;
    int failed;       /* out of memory: every route after it is -1 */
} st__lnet;

/* Starts the network of `out` on cluster c for `gpus` GPUs, `width` ranks per pipeline stage,
 * lowered to every rank (full) or to the first rank of each stage. 0 or ST_ENOMEM; either way
 * st__lnet_destroy frees what it took (not what it put in out). */
int st__lnet_init(st__lnet *B, st_lowered *out, const st_cluster *c, int gpus, int width, int full);
void st__lnet_destroy(st__lnet *B);
/* The route of a collective of the ranks on gpus[0..n) (each pushes its data out and takes it in),
 * across the NICs (nic) or inside the scale-up domain, where each of its groups has `peers` ranks
 * (the rate on an xGMI mesh depends on it) and cost/ prices it at fabric tier `tier` (st_group.tier:
 * across the NICs, each rank also crosses its leaf's uplink from ST_TIER_LEAF and its pod's from
 * ST_TIER_POD); its index, or -1 once B->failed. */
int st__lnet_coll(st__lnet *B, const int *gpus, int n, int nic, int peers, int tier);
/* The route of n sends at once, from[i] to to[i] (the tiers' uplinks between their nodes), at the
 * rate cost/ prices the pipeline group at, tier `tier`. */
int st__lnet_p2p(st__lnet *B, const int *from, const int *to, int n, int nic, int tier);

/* ------------------------------------------------------------ operators (lower_ops.c) */

/* A range of the operator table: ops[op .. op + n). */
typedef struct st__span {
    int32_t op, n;
} st__span;

/* The phases the table has ranges for (st_phase's first five). */
#define ST__PHASES ST_PHASE_OPTIMIZER

/* What the lowering keeps about an entry of the table besides st_lowered_op: the collective its
 * sharding implies at the operator in the entry's phase (st_op.fwd_coll / bwd_coll). */
typedef struct st__opcoll {
    uint8_t coll;      /* st_coll; ST_COLL_NONE: none */
    uint8_t group;     /* st_group_kind */
    uint8_t before;    /* 1: right before the operator (a backward's), 0: right after it */
    double bytes;      /* message per rank (st_op.coll_bytes) */
    double s, latency_s; /* its time alone (st_cost_op) and the part of it that is latency */
} st__opcoll;

/* Fills out->ops with the operators of every pipeline chunk in each phase of `phases` (a bit per
 * st_phase: the ones the programs run), chunk by chunk: span[chunk * ST__PHASES + phase] is where
 * each lies (n = 0 for a phase not asked for), *colls (new; free()) the collective of each entry.
 * ctx0 prices the same without latencies. 0, ST_ENOMEM, or ST_EINTERNAL when a block has more
 * operators than ST_MAX_OPS. */
int st__lower_ops(st_cost_ctx *ctx, st_cost_ctx *ctx0, const st_plan *p, unsigned phases, st_lowered *out,
                  st__span *span, st__opcoll **colls);
/* The entries of s from `from` on that belong to the same layer as ops[from] (a range runs layer
 * by layer); n = 0 when from is past s. */
st__span st__span_part(const st_lowered_op *ops, st__span s, int32_t from);
/* The entries of s that belong to `layer` (n = 0: none). */
st__span st__span_layer(const st_lowered_op *ops, st__span s, int32_t layer);

#endif
