/* lower_net.c: the links a lowering's transfers cross and each transfer's route (program.h,
 * "Network").
 *
 * Links: each GPU's port into its scale-up domain ("nvlink"; the domain may span host nodes, as
 * NVL72's does; with MIG slices, "pcie": the parent GPU's link into host memory, one per physical
 * GPU, which its slices' routes all cross; on node groups each group's own), each NIC port, each
 * host node's link to the fabric, per direction, at the rates cost/comm.c prices collectives at
 * (st_cost_net). A link is made when the first route crosses it, so a lowering lists only the links
 * its transfers use.
 * With fabric tiers (cluster inter_node.leaf / spine) each leaf's and pod's uplinks are one link
 * each way ("leaf 2 up": its nodes' NICs / the tier's oversubscription), which a group that cost/
 * prices at that tier crosses once per rank, as a node's fabric link.
 * - route: a group's collective crosses, for every rank it stands for (the group's members, or a
 *   representative's replicas), that rank's NVLink port when cost/ prices the group inside a node,
 *   else its NIC port and, when the ranks span nodes, its node's fabric link (so a node's fabric
 *   link is crossed once per rank of the node); a send crosses the sender's port out and the
 *   receiver's port in (and the fabric links between their nodes);
 * - rate alone: the domain rate for the route's peers inside a domain (st_cost_domain_bytes_per_s:
 *   the port rate on a switch, n - 1 links of an xGMI mesh), the GPU's share of its node's NICs across nodes
 *   (what cost/ gives a GPU while its whole node communicates): so the transfers of all GPUs of
 *   a node at once fill a NIC or fabric link exactly, and only more than that is contention.
 * Node groups (issue 19), lowered to every rank: ranks sit on the nodes and NIC ports
 * st_cluster_rank_place gives them; a GPU's, NIC's and node's links run at its own group's rates; a transfer between groups also crosses
 * each end node's link into the fabric between the groups ("groups 2 up": its GPUs, each at the share
 * cost/ gives a GPU in the view across the groups, the top-level fields); a route's rate alone is the
 * one cost/ prices its GPUs' view at (st_cluster_view of the span of its GPUs). By stage, a representative's
 * routes cross the links of replicas on different groups (its tp group's on NVLink in one group, across
 * NICs in another), so its links keep the view of all GPUs, the slowest of each, like its route rates. */
#include "lower_private.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int st__lnet_init(st__lnet *B, st_lowered *out, const st_cluster *c, int gpus, int width, int full) {
    memset(B, 0, sizeof *B);
    B->out = out;
    B->gpus = gpus;
    B->c = c;
    st_cost_net(c, &B->net);
    B->G = (int)B->net.gpus_per_node;
    B->ports = (int)B->net.nic_ports;
    B->per_port = (int)B->net.gpus_per_port;
    B->nodes = (gpus + B->G - 1) / B->G;
    B->grouped = full && c->ngroups > 0;
    if (B->grouped) {
        int64_t first = 0;
        for (int g = 0; g < c->ngroups; g++) {
            st_cluster v;
            int64_t n = c->groups[g].nodes * c->groups[g].gpus_per_node;
            st_cluster_view(c, first, n, &v);
            st_cost_net(&v, &B->gnet[g]);
            if (B->gnet[g].nic_ports > B->ports) B->ports = (int)B->gnet[g].nic_ports;
            first += n;
        }
        st_rank_place last;
        st_cluster_rank_place(c, gpus - 1, &last);
        B->nodes = (int)last.node + 1;
    }
    B->leaves = B->net.leaf_nodes > 0 ? (int)((B->nodes + B->net.leaf_nodes - 1) / B->net.leaf_nodes) : 0;
    B->pods = B->net.pod_nodes > 0 ? (int)((B->nodes + B->net.pod_nodes - 1) / B->net.pod_nodes) : 0;
    int slots = 2 * gpus + 2 * B->nodes * B->ports + 2 * B->nodes + 2 * B->leaves + 2 * B->pods +
                (B->grouped ? 2 * B->nodes : 0);
    B->id = malloc(sizeof *B->id * (size_t)slots);
    B->prog_of_gpu = malloc(sizeof *B->prog_of_gpu * (size_t)gpus);
    if (!B->id || !B->prog_of_gpu) return ST_ENOMEM;
    for (int i = 0; i < slots; i++) B->id[i] = -1;
    /* every rank: a rank is its GPU; else a stage's representative runs on its first GPU */
    for (int g = 0; g < gpus; g++) B->prog_of_gpu[g] = full ? g : g % width == 0 ? g / width : -1;
    return 0;
}

void st__lnet_destroy(st__lnet *B) {
    free(B->id);
    free(B->prog_of_gpu);
    free(B->tmp);
    B->id = NULL;
    B->prog_of_gpu = NULL;
    B->tmp = NULL;
}

static int node_of(const st__lnet *B, int gpu) {
    if (!B->grouped) return gpu / B->G;
    st_rank_place pl;
    st_cluster_rank_place(B->c, gpu, &pl);
    return (int)pl.node;
}
static int group_of(const st__lnet *B, int gpu) { return B->grouped ? st_cluster_rank_group(B->c, gpu) : 0; }
/* node groups: the group of host node `node` and its first GPU (node = all nodes: *first = the GPUs) */
static int node_group(const st__lnet *B, int node, int *first) {
    const st_cluster *c = B->c;
    int64_t nodes = 0, gpus = 0;
    int g = 0;
    for (; g < c->ngroups - 1 && node >= nodes + c->groups[g].nodes; g++)
        nodes += c->groups[g].nodes, gpus += c->groups[g].nodes * c->groups[g].gpus_per_node;
    *first = (int)(gpus + (node - nodes) * c->groups[g].gpus_per_node);
    return g;
}
/* the first GPU of host node `node` */
static int node_first(const st__lnet *B, int node) {
    int first = node * B->G;
    if (B->grouped) node_group(B, node, &first);
    return first;
}
/* GPUs sharing the domain port of GPU `gpu`: with MIG its parent GPU's slices (on node groups, its group's) */
static int port_width(const st__lnet *B, int gpu) {
    return B->grouped ? (int)B->gnet[group_of(B, gpu)].gpus_per_port : B->per_port;
}
/* a GPU's port into its domain: its own, or with MIG its parent GPU's PCIe link, shared; on node groups
 * named by the port's first GPU (a group's slices of one GPU are consecutive ranks of its node) */
static int dom_port_of(const st__lnet *B, int gpu) {
    if (!B->grouped) return gpu / B->per_port;
    st_rank_place pl;
    st_cluster_rank_place(B->c, gpu, &pl);
    return gpu - (int)(pl.gpu % B->gnet[pl.group].gpus_per_port);
}
/* the first GPU behind domain port `index` */
static int port_first(const st__lnet *B, int index) { return B->grouped ? index : index * B->per_port; }
static int port_of(const st__lnet *B, int gpu) {
    if (!B->grouped) return node_of(B, gpu) * B->ports + (gpu % B->G) * B->ports / B->G;
    st_rank_place pl;
    st_cluster_rank_place(B->c, gpu, &pl);
    const st_net *n = &B->gnet[pl.group];
    return (int)(pl.node * B->ports + pl.gpu * n->nic_ports / n->gpus_per_node);
}
static int leaf_of(const st__lnet *B, int gpu) { return (int)(node_of(B, gpu) / B->net.leaf_nodes); }
static int pod_of(const st__lnet *B, int gpu) { return (int)(node_of(B, gpu) / B->net.pod_nodes); }

/* which rank's trace shows a link: its GPU's program, or the first program on its NIC port or node */
static int shown_by(const st__lnet *B, st_link_kind kind, int index) {
    if (kind == ST_LINK_NVLINK) {
        int first = port_first(B, index);
        for (int g = first; g < first + port_width(B, first) && g < B->gpus; g++)
            if (B->prog_of_gpu[g] >= 0) return B->prog_of_gpu[g];
        return -1;
    }
    int node = kind == ST_LINK_NIC ? index / B->ports : index, nodes = 1;
    if (kind == ST_LINK_LEAF || kind == ST_LINK_POD) { /* a tier's: the first program under it */
        nodes = (int)(kind == ST_LINK_LEAF ? B->net.leaf_nodes : B->net.pod_nodes);
        node = index * nodes;
    }
    int end = node + nodes < B->nodes ? node_first(B, node + nodes) : B->gpus;
    for (int g = node_first(B, node); g < end && g < B->gpus; g++)
        if (B->prog_of_gpu[g] >= 0 && (kind != ST_LINK_NIC || port_of(B, g) == index)) return B->prog_of_gpu[g];
    return -1;
}

static void hop(st__lnet *B, st_link_kind kind, int index, int dir) {
    int base = 2 * B->gpus + 2 * B->nodes * B->ports;
    int slot = kind == ST_LINK_NVLINK ? index * 2 + dir
               : kind == ST_LINK_NIC  ? 2 * B->gpus + index * 2 + dir
               : kind == ST_LINK_FABRIC ? base + index * 2 + dir
               : kind == ST_LINK_LEAF   ? base + 2 * B->nodes + index * 2 + dir
               : kind == ST_LINK_POD    ? base + 2 * B->nodes + 2 * B->leaves + index * 2 + dir
                                        : base + 2 * B->nodes + 2 * B->leaves + 2 * B->pods + index * 2 + dir;
    /* node groups: a GPU's, NIC's or node's link at its group's rates */
    const st_net *net = &B->net;
    if (B->grouped && kind <= ST_LINK_FABRIC) {
        int first, node = kind == ST_LINK_NVLINK ? node_of(B, port_first(B, index))
                          : kind == ST_LINK_NIC  ? index / B->ports
                                                 : index;
        net = &B->gnet[node_group(B, node, &first)];
    }
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
            lk->bytes_per_s = net->nvlink_bytes_per_s;
            if (port_width(B, port_first(B, index)) > 1)
                snprintf(lk->name, sizeof lk->name, "pcie %d %s", index, dir ? "in" : "out");
            else
                snprintf(lk->name, sizeof lk->name, "nvlink %d %s", index, dir ? "in" : "out");
        } else if (kind == ST_LINK_NIC) {
            lk->bytes_per_s = net->nic_port_bytes_per_s;
            snprintf(lk->name, sizeof lk->name, "nic %d.%d %s", index / B->ports, index % B->ports, dir ? "in" : "out");
        } else if (kind == ST_LINK_FABRIC) {
            lk->bytes_per_s = net->uplink_bytes_per_s;
            snprintf(lk->name, sizeof lk->name, "fabric %d %s", index, dir ? "down" : "up");
        } else if (kind == ST_LINK_GROUPS) {
            /* each GPU of the node at the share cost/ gives a GPU across the groups (the view of them
             * all: the top-level fields), so that all of them at once fill it exactly */
            int first, g = node_group(B, index, &first);
            lk->bytes_per_s = B->net.tier_share_bytes_per_s[ST_TIER_NODE] * (double)B->c->groups[g].gpus_per_node;
            snprintf(lk->name, sizeof lk->name, "groups %d %s", index, dir ? "down" : "up");
        } else {
            int leaf = kind == ST_LINK_LEAF;
            lk->bytes_per_s = leaf ? B->net.leaf_uplink_bytes_per_s : B->net.pod_uplink_bytes_per_s;
            snprintf(lk->name, sizeof lk->name, "%s %d %s", leaf ? "leaf" : "pod", index, dir ? "down" : "up");
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
static int route_end(st__lnet *B, double rate) {
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
    o->routes[o->nroutes] = (st_route){o->nhops, n, rate};
    o->nhops += n;
    return o->nroutes++;
nomem:
    B->failed = 1;
    return -1;
}

/* the rate of a route alone: the GPU's NIC share at the group's tier, or the domain rate over `peers` ranks;
 * on node groups as cost/ prices the view of GPUs lo..hi */
static double route_rate(const st__lnet *B, int lo, int hi, int nic, int peers, int tier) {
    if (!B->grouped) return nic ? B->net.tier_share_bytes_per_s[tier] : st_cost_domain_bytes_per_s(B->c, peers);
    st_cluster v;
    st_net n;
    st_cluster_view(B->c, lo, hi - lo + 1, &v);
    if (!nic) return st_cost_domain_bytes_per_s(&v, peers);
    st_cost_net(&v, &n);
    return n.tier_share_bytes_per_s[tier];
}

/* node groups: a transfer from GPU a's node to GPU b's across the fabric between the groups */
static void groups_hops(st__lnet *B, int a, int b) {
    hop(B, ST_LINK_GROUPS, node_of(B, a), 0);
    hop(B, ST_LINK_GROUPS, node_of(B, b), 1);
}

/* the uplinks of the tiers between GPUs a and b (a == b: of the tiers up to `tier`), a's out, b's in */
static void tier_hops(st__lnet *B, int a, int b, int tier) {
    if (B->leaves && (a == b ? tier >= ST_TIER_LEAF : leaf_of(B, a) != leaf_of(B, b))) {
        hop(B, ST_LINK_LEAF, leaf_of(B, a), 0);
        hop(B, ST_LINK_LEAF, leaf_of(B, b), 1);
    }
    if (B->pods && (a == b ? tier >= ST_TIER_POD : pod_of(B, a) != pod_of(B, b))) {
        hop(B, ST_LINK_POD, pod_of(B, a), 0);
        hop(B, ST_LINK_POD, pod_of(B, b), 1);
    }
}

int st__lnet_coll(st__lnet *B, const int *gpus, int n, int nic, int peers, int tier) {
    int spans = 0, xg = 0, lo = gpus[0], hi = gpus[0];
    for (int i = 1; i < n; i++) {
        spans |= node_of(B, gpus[i]) != node_of(B, gpus[0]);
        xg |= group_of(B, gpus[i]) != group_of(B, gpus[0]);
        lo = gpus[i] < lo ? gpus[i] : lo;
        hi = gpus[i] > hi ? gpus[i] : hi;
    }
    for (int i = 0; i < n; i++) {
        int g = gpus[i];
        if (!nic) {
            hop(B, ST_LINK_NVLINK, dom_port_of(B, g), 0);
            hop(B, ST_LINK_NVLINK, dom_port_of(B, g), 1);
            continue;
        }
        hop(B, ST_LINK_NIC, port_of(B, g), 0);
        hop(B, ST_LINK_NIC, port_of(B, g), 1);
        if (spans) {
            hop(B, ST_LINK_FABRIC, node_of(B, g), 0);
            hop(B, ST_LINK_FABRIC, node_of(B, g), 1);
        }
        tier_hops(B, g, g, tier);
        if (xg) groups_hops(B, g, g);
    }
    return route_end(B, route_rate(B, lo, hi, nic, peers, tier));
}

int st__lnet_p2p(st__lnet *B, const int *from, const int *to, int n, int nic, int tier) {
    int lo = from[0], hi = from[0];
    for (int i = 0; i < n; i++) {
        lo = from[i] < lo ? from[i] : to[i] < lo ? to[i] : lo;
        hi = from[i] > hi ? from[i] : to[i] > hi ? to[i] : hi;
        if (!nic) {
            hop(B, ST_LINK_NVLINK, dom_port_of(B, from[i]), 0);
            hop(B, ST_LINK_NVLINK, dom_port_of(B, to[i]), 1);
            continue;
        }
        hop(B, ST_LINK_NIC, port_of(B, from[i]), 0);
        hop(B, ST_LINK_NIC, port_of(B, to[i]), 1);
        if (node_of(B, from[i]) != node_of(B, to[i])) {
            hop(B, ST_LINK_FABRIC, node_of(B, from[i]), 0);
            hop(B, ST_LINK_FABRIC, node_of(B, to[i]), 1);
            tier_hops(B, from[i], to[i], tier);
            if (group_of(B, from[i]) != group_of(B, to[i])) groups_hops(B, from[i], to[i]);
        }
    }
    return route_end(B, route_rate(B, lo, hi, nic, 2, tier));
}
