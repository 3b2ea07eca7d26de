/* comm.c: collectives on a hierarchical topology (GPUs in a scale-up domain: the host node's
 * NVLink, or a rack-scale NVLink domain of several host nodes, or an xGMI mesh; domains joined by
 * the host nodes' NICs), latency + size / bandwidth, with the bandwidth the group's placement gets.
 *
 * Placement (Megatron-LM's rank order tp-cp-dp-pp, initialize_model_parallel): a group of kind k
 * has ranks `stride` apart; with D GPUs per scale-up domain, min(n, D / stride) of its ranks share
 * a domain ("node" below and in st_group: the domain, the host node where the cluster has no
 * other). The dp group is the gradient-reduction group dp x cp (Megatron's "data parallel group with
 * context parallel"), stride tp; the ep group is ep consecutive ranks of it, stride tp. A group
 * inside one domain is priced on the domain's fabric even when it spans host nodes (NVL72).
 *
 * Domain fabric: NVSwitch (and a PCIe switch): each GPU has its port rate to the switch whatever
 * the peers. xGMI (AMD Instinct platforms): 7 point-to-point links per GPU, one to each other GPU of
 * the 8; a collective over n of them runs over n - 1 links (RCCL's rings use every direct link),
 * so a GPU gets (n - 1) / (D - 1) of its links' total (AMD Instinct MI300X platform datasheet: 7 x
 * 128 GB/s, 896 GB/s aggregate peer-to-peer per GPU).
 *
 * Bandwidth: inside a domain each GPU has the rate above. Across domains every GPU of a
 * node runs the same kind of collective at the same time (all tp/dp/pp groups work in lockstep),
 * so a GPU gets nics * nic_rate / G of its node's NICs, divided by the fabric's
 * oversubscription; a group with k ranks per node gets k such shares through the NICs it uses.
 *
 * Tiers (issue 16; cluster JSON inter_node.leaf / spine): leaves of leaf_nodes host nodes, pods of
 * pod_nodes. All groups of a kind work in lockstep, so a group's collective pays the oversubscription
 * of the worst tier any of its copies crosses (st_cost_tier_oversubscription): none inside a leaf,
 * the leaf's uplinks across leaves, the worse of leaf and spine across pods. The group's ranks lie
 * in an aligned block of stride x n ranks (Megatron's order), so a block of B host nodes crosses a
 * tier of T nodes when B > T or, the job filling more than one T, when B does not divide T (some
 * copy straddles a boundary).
 *
 * Rails (inter_node.rail_optimized): NIC i of every node on rail i. NCCL's rings and trees keep
 * inter-node hops on one rail; all-to-all traffic to a peer on another rail is first moved over
 * NVLink to the GPU of this node on the peer's rail (PXN, NCCL >= 2.12, on by default: NVIDIA
 * technical blog "Doubling all2all Performance with NVIDIA Collective Communication Library 2.12",
 * 2022), so a rank's cross-node bytes to the r - 1 of the r rails its group uses other than its own
 * cross its NVLink port once more.
 *
 * In-network reduction (issue 16; opt-in, st_cluster.sharp_domain / sharp_inter). NVLink SHARP
 * (NCCL's NVLS): an all-reduce inside an NVSwitch domain moves (1 + 1/n) x S per GPU at
 * ST_NVLS_RATE_OF_RING of the ring's rate instead of the ring's 2(n-1)/n x S; across domains it
 * replaces the in-domain phase of the hierarchical all-reduce (NCCL 2.18.1 release notes: "inter-node
 * algorithms for NVLink SHARP: NVLink SHARP + IB SHARP (NVLS), NVLink SHARP + Tree (NVLSTREE)"),
 * with the cross-node phase either algorithm's. InfiniBand SHARP
 * (NCCL's CollNet): the cross-node phase of the hierarchical all-reduce sends each rank's S/k up
 * the switch tree once and takes the result back once (factor 1 instead of 2(m-1)/m; sjeaugey in
 * nccl issue #320: algbw up to the NICs' rate, NVLink then carrying ~2x the data in the node), two
 * network latencies (up and down; the switch hops add little to the NIC's). Both only for all-reduce (NCCL's NVLS reduce-scatter and all-gather are not
 * modelled); NCCL takes the fastest of these and the ring. A calibration profile's measured rate
 * for a case replaces them as it replaces the ring.
 *
 * Algorithms (NCCL picks the fastest; we take the minimum): ring, hierarchical (reduce-scatter in
 * the node, the collective across nodes on 1/k of the data, all-gather in the node) and double
 * binary tree (log latency, ~2S/B bandwidth term). Ring all-reduce: 2(n-1)/n * S / B + 2(n-1) *
 * latency (Patarasuk & Yuan 2009; NCCL's busBw definition in nccl-tests/doc/PERFORMANCE.md).
 * Message sizes S: all-reduce the buffer, all-gather the gathered output, reduce-scatter the
 * input, all-to-all all data a rank sends, send/recv the message. */
#include "cost_private.h"

#include <math.h>

/* whether blocks of `block` host nodes, filling `all` nodes, cross a tier of `tier` nodes (0: none) */
static int crosses(int64_t tier, int64_t block, int64_t all) {
    if (tier <= 0 || all <= tier) return 0;
    return block > tier || tier % block != 0;
}

/* The fewest GPUs of one block of `span` consecutive ranks (the blocks aligned at multiples of span,
 * as a group's copies lie in Megatron's order) that fall in one domain, the domains of D GPUs filled
 * in order over `all` GPUs, the last one in part: 256 on NVL72 (72, 72, 72, 40) cut a block of 64
 * at 72 into 8 + 56. */
static int64_t smallest_piece(int64_t D, int64_t span, int64_t all) {
    int64_t least = span;
    for (int64_t b = 0; b < all; b += span)
        for (int64_t from = b, cut = (b / D + 1) * D; from < b + span; cut += D) {
            int64_t to = cut < b + span ? cut : b + span;
            if (to - from < least) least = to - from;
            from = to;
        }
    return least;
}

/* n ranks `stride` apart in Megatron's rank order: how many share a scale-up domain, over how many
 * domains; the GPUs of a host node share its NICs. The domains are the ones the job fills
 * (st_cluster_domain_used: all of each, or the part CLUSTER:domain_gpus=N takes). */
static void place(const st_cluster *c, int64_t stride, int64_t n, st_group *g) {
    int64_t D = st_cluster_domain_used(c), span = stride * n, all = st_cluster_gpus(c);
    int64_t k_per = stride >= D ? 1 : D / stride;
    /* with more GPUs than one domain, groups that straddle a domain boundary (a group spans neither
     * a divisor nor a multiple of the domain: tp 16 on 144 GPUs of NVL72, or a partial last domain)
     * split into pieces; all groups work in lockstep, so the most split one sets the pace. A job of
     * whole domains covers whole periods of lcm(D, span), where the smallest piece is gcd(D, span). */
    if (stride < D && D % span != 0 && span % D != 0 && all > D) {
        int64_t a = D, b = span;
        while (b) {
            int64_t t = a % b;
            a = b, b = t;
        }
        k_per = (all % D == 0 ? a : smallest_piece(D, span, all)) / stride;
    }
    if (k_per > n) k_per = n;
    if (k_per < 1) k_per = 1;
    g->n = n;
    g->per_node = k_per;
    g->nodes = (n + k_per - 1) / k_per;
    g->node_share = c->gpus_per_node;
    g->tier = g->nodes > 1 ? st__group_tier(c, span) : ST_TIER_NODE;
}

int st__group_tier(const st_cluster *c, int64_t span) {
    if (c->leaf_nodes <= 0) return ST_TIER_NODE;
    /* host nodes of one aligned block of the group's copies (one more when it starts mid-node) */
    int64_t G = c->gpus_per_node, all = (st_cluster_gpus(c) + G - 1) / G;
    int64_t block = span <= G ? 1 : (span + G - 1) / G + (span % G != 0);
    if (crosses(c->pod_nodes, block, all)) return ST_TIER_POD;
    return crosses(c->leaf_nodes, block, all) ? ST_TIER_LEAF : ST_TIER_NODE;
}

double st_cost_tier_oversubscription(const st_cluster *c, int tier) {
    double o = c->oversubscription;
    if (tier >= ST_TIER_LEAF && c->leaf_nodes > 0 && c->leaf_oversubscription > o) o = c->leaf_oversubscription;
    if (tier >= ST_TIER_POD && c->pod_nodes > 0 && c->pod_oversubscription > o) o = c->pod_oversubscription;
    return o;
}

void st_cost_group(const st_cluster *c, const st_plan *p, st_group_kind k, st_group *g) {
    int64_t stride, n;
    switch (k) {
    case ST_GRP_TP: stride = 1, n = p->tp; break;
    case ST_GRP_CP: stride = p->tp, n = p->cp; break;
    case ST_GRP_EP: stride = p->tp, n = p->ep; break;
    case ST_GRP_DP: stride = p->tp, n = (int64_t)p->dp * p->cp; break;
    case ST_GRP_PP:
    default: stride = (int64_t)p->tp * p->cp * p->dp, n = p->pp; break;
    }
    place(c, stride, n, g);
}

void st_cost_group_edp(const st_cluster *c, const st_plan *p, st_group *g) {
    int64_t stride = (int64_t)p->tp * p->ep, n = (int64_t)p->dp * p->cp / p->ep;
    if (n < 1) n = 1;
    place(c, stride, n, g);
}

/* bytes/s one GPU gets through its node's NICs while all GPUs of the node communicate */
static double nic_share(const st_cluster *c, const st_group *g) {
    double node_bw = (double)c->nics_per_node * c->nic_bytes_per_s * ST_NIC_EFFICIENCY;
    double share = g->node_share > 0 ? (double)g->node_share : (double)c->gpus_per_node;
    return node_bw / share / st_cost_tier_oversubscription(c, g->tier);
}

/* The domain rate a GPU gets in a collective with `peers` ranks of its domain (itself included).
 * MIG slices have no peer-to-peer (src/core/mig.c): NCCL moves their data through host memory, each
 * slice over its parent GPU's PCIe link at its share of it (intra_bytes_per_s = pcie / per_gpu, as
 * the slices of a GPU all communicate at once); the PCIe rate is an achieved one, so no NVLink
 * efficiency applies. A ring all-reduce of S bytes over n slices of one GPU thus takes
 * 2(n-1)/n x S / (pcie / n) = 2(n-1) x S / pcie: each of the n ranks pushes its 2(n-1)/n x S
 * through the one shared link. */
double st_cost_domain_bytes_per_s(const st_cluster *c, int64_t peers) {
    if (c->mig.per_gpu > 0) return c->intra_bytes_per_s;
    double b = c->intra_bytes_per_s * ST_NVLINK_EFFICIENCY;
    if (c->fabric != ST_FABRIC_XGMI) return b;
    int64_t links = st_cluster_domain(c) - 1, used = peers - 1;
    if (links < 1) links = 1;
    if (used < 1) used = 1; /* a send uses one link */
    if (used > links) used = links;
    return b * (double)used / (double)links;
}

/* The links behind the formulas above, at the rates they are priced at, for the simulator's shared
 * links (src/lower/program.h, "Network"): each GPU's port into its scale-up domain at the domain
 * rate (xGMI: all its links; a route over fewer peers runs at st_cost_domain_bytes_per_s); the node's NICs
 * as min(nics, G) ports (GPU i uses port i * ports / G; a GPU with several NICs has them as one
 * port); the node's link to the fabric with the NICs' bandwidth / oversubscription; the share
 * nic_share gives a GPU when its whole node communicates, per tier; each leaf's (pod's) uplinks with
 * its nodes' NICs' bandwidth / the tier's oversubscription. Concurrent transfers that each run at
 * these rates fill the links exactly when all GPUs of a node communicate at once, as the formulas
 * assume; anything more is contention. */
void st_cost_net(const st_cluster *c, st_net *out) {
    double node_bw = (double)c->nics_per_node * c->nic_bytes_per_s * ST_NIC_EFFICIENCY;
    int64_t G = c->gpus_per_node > 0 ? c->gpus_per_node : 1;
    st_group g = {.n = 2, .per_node = 1, .nodes = 2, .node_share = G};
    out->gpus_per_node = G;
    /* MIG: a GPU's slices share its PCIe link into host memory, the domain's one port */
    out->gpus_per_port = c->mig.per_gpu > 0 ? c->mig.per_gpu : 1;
    out->nic_ports = c->nics_per_node < G ? c->nics_per_node : G;
    if (out->nic_ports < 1) out->nic_ports = 1;
    out->nvlink_bytes_per_s = st_cost_domain_bytes_per_s(c, st_cluster_domain(c)) * (double)out->gpus_per_port;
    out->nic_port_bytes_per_s = node_bw / (double)out->nic_ports;
    out->uplink_bytes_per_s = node_bw / c->oversubscription;
    for (int t = 0; t <= ST_TIER_POD; t++) {
        g.tier = t;
        out->tier_share_bytes_per_s[t] = nic_share(c, &g);
    }
    out->leaf_nodes = c->leaf_nodes;
    out->pod_nodes = c->pod_nodes;
    out->leaf_uplink_bytes_per_s = c->leaf_nodes > 0 ? node_bw * (double)c->leaf_nodes / c->leaf_oversubscription : 0;
    out->pod_uplink_bytes_per_s = c->pod_nodes > 0 ? node_bw * (double)c->pod_nodes / c->pod_oversubscription : 0;
}

/* NVLink SHARP all-reduce of `bytes` over `n` ranks of an NVSwitch domain (cost/cost_private.h,
 * ST_NVLS_RATE_OF_RING, ST_NVLS_LATENCY_S); a cluster without latencies (st_cost_ctx_without_latency)
 * has none here either. */
static double nvls_allreduce_s(const st_cluster *c, double n, double bytes) {
    double b = st_cost_domain_bytes_per_s(c, (int64_t)n) * ST_NVLS_RATE_OF_RING;
    return (1 + 1 / n) * bytes / b + (c->intra_latency_s > 0 ? ST_NVLS_LATENCY_S : 0);
}

/* whether NVLink SHARP prices this all-reduce: the domain reduces and no profile measured the case */
static int nvls_applies(const st_cluster *c, const st_profile *prof, st_coll coll, int64_t n, double bytes) {
    if (coll != ST_COLL_ALLREDUCE || !c->sharp_domain || n < 2) return 0;
    return !prof || !(st_profile_bus_bytes_per_s(prof, coll, 1, (int)n, bytes) > 0);
}

/* Profile bus bandwidth when the table covers this case, else `dflt`. */
static double bus_bw(const st_cluster *c, const st_profile *prof, st_coll coll, int intra, int64_t n,
                     double bytes, double dflt) {
    (void)c;
    if (!prof) return dflt;
    double b = st_profile_bus_bytes_per_s(prof, coll, intra, (int)n, bytes);
    return b > 0 ? b : dflt;
}

/* In a ring each rank moves the bus factor times S over its link: all-reduce 2(n-1)/n of S */
double st_cost_bus_factor(st_coll coll, double n) {
    switch (coll) {
    case ST_COLL_ALLREDUCE: return 2 * (n - 1) / n;
    case ST_COLL_ALLGATHER:
    case ST_COLL_REDUCESCATTER:
    case ST_COLL_ALLTOALL: return (n - 1) / n;
    case ST_COLL_BROADCAST:
    case ST_COLL_SENDRECV: return 1;
    default: return 0;
    }
}

static double latency_steps(st_coll coll, double n) {
    switch (coll) {
    case ST_COLL_ALLREDUCE: return 2 * (n - 1);
    case ST_COLL_ALLGATHER:
    case ST_COLL_REDUCESCATTER:
    case ST_COLL_BROADCAST: return n - 1;
    case ST_COLL_ALLTOALL: return 1 + log2(n); /* peers in parallel; setup grows slowly */
    case ST_COLL_SENDRECV: return 1;
    default: return 0;
    }
}

double st_cost_collective(const st_cluster *c, const st_profile *prof, st_coll coll, const st_group *g,
                          double bytes) {
    if (coll == ST_COLL_NONE || bytes <= 0) return 0;
    double n = (double)g->n;
    if (coll != ST_COLL_SENDRECV && g->n <= 1) return 0;

    double lat_i = c->intra_latency_s, lat_x = c->inter_latency_s;
    if (g->nodes <= 1) {
        /* one scale-up domain: ring */
        double bi = st_cost_domain_bytes_per_s(c, g->n);
        double b = bus_bw(c, prof, coll, 1, g->n, bytes, bi);
        double ring = st_cost_bus_factor(coll, n) * bytes / b + latency_steps(coll, n) * lat_i;
        return nvls_applies(c, prof, coll, g->n, bytes) ? fmin(ring, nvls_allreduce_s(c, n, bytes)) : ring;
    }

    double k = (double)g->per_node, m = (double)g->nodes;
    double share = nic_share(c, g), bi = st_cost_domain_bytes_per_s(c, g->per_node);
    if (coll == ST_COLL_SENDRECV) {
        double b = bus_bw(c, prof, coll, 0, 2, bytes, share);
        return bytes / b + lat_x;
    }
    if (coll == ST_COLL_ALLTOALL) {
        /* (k-1)/n of the data stays in the node, (n-k)/n leaves through the NIC share */
        double out_bw = bus_bw(c, prof, coll, 0, g->n, bytes, share);
        double relay = 0; /* rails: the bytes for other rails cross NVLink first (PXN) */
        if (c->rail_optimized) {
            double rails = fmin(k, (double)(c->nics_per_node < 1 ? 1 : c->nics_per_node));
            relay = (n - k) / n * (rails - 1) / rails;
        }
        double t_in = ((k - 1) / n + relay) * bytes / bi, t_out = (n - k) / n * bytes / out_bw;
        return (t_in > t_out ? t_in : t_out) + latency_steps(coll, n) * lat_x;
    }

    /* ring over all n ranks: each node boundary carries the ring; the group's k ranks per node use
     * k NIC shares */
    double ring_bw = bus_bw(c, prof, coll, 0, g->n, bytes, fmin(bi, k * share));
    double ring = st_cost_bus_factor(coll, n) * bytes / ring_bw + latency_steps(coll, n) * lat_x;

    /* hierarchical: in-node phase on S, cross-node phase on S/k per rank */
    double hier;
    {
        double vb = st_cost_bus_factor(coll, m) * (bytes / k) / bus_bw(c, prof, coll, 0, g->nodes, bytes / k, share);
        double lat = latency_steps(coll, m) * lat_x;
        int measured = prof && st_profile_bus_bytes_per_s(prof, coll, 0, (int)g->nodes, bytes / k) > 0;
        if (coll == ST_COLL_ALLREDUCE && c->sharp_inter && !measured) {
            /* CollNet: once up the switch tree and once down */
            double tree_s = (bytes / k) / share, tree_lat = 2 * lat_x;
            if (tree_s + tree_lat < vb + lat) vb = tree_s, lat = tree_lat;
        }
        double in_node = 0;
        if (k > 1) {
            /* all-reduce: reduce-scatter + all-gather in the node; all-gather/reduce-scatter: one */
            double f = coll == ST_COLL_ALLREDUCE ? 2 * (k - 1) / k : (k - 1) / k;
            in_node = f * bytes / bi + (coll == ST_COLL_ALLREDUCE ? 2 : 1) * (k - 1) * lat_i;
            if (nvls_applies(c, prof, coll, g->per_node, bytes)) in_node = fmin(in_node, nvls_allreduce_s(c, k, bytes));
        }
        hier = in_node + vb + lat;
    }

    double best = ring < hier ? ring : hier;
    if (coll == ST_COLL_ALLREDUCE || coll == ST_COLL_BROADCAST) {
        /* double binary tree across nodes (NCCL >= 2.4): bandwidth term ~ 2S/B (1 for broadcast) */
        double f = coll == ST_COLL_ALLREDUCE ? 2 : 1;
        double tree = f * bytes / fmin(bi, k * share) + f * log2(m) * lat_x + 2 * (k - 1) * lat_i;
        if (tree < best) best = tree;
    }
    return best;
}

/* Group-limited routing's all-to-all (DeepSeek-V3 report, Sec. 2.1.2 "Node-Limited Routing" and Sec.
 * 3.2.2): `bytes` per rank are its tokens' `copies` routed copies (top-k). A token crosses the fabric at
 * most once to each node it reaches, `nodes_per_token` of them (st_model_token_nodes), to the GPU of
 * its own in-node index, which forwards it over NVLink to the GPUs holding its experts there; the
 * fabric and NVLink transfers run at once (the report's dispatch and combine kernels). With the
 * tokens routed uniformly each node reached is another node with probability (m - 1) / m, so the
 * fabric carries bytes x nodes_per_token / copies x (m - 1) / m, where the plain all-to-all above
 * carries (m - 1) / m of them (every copy bound elsewhere leaves); NVLink carries the copies bound
 * for another GPU of the node they land on, (k - 1) / k of bytes (k ranks a node). In one node: the
 * plain all-to-all. */
double st_cost_alltoall_routed(const st_cluster *c, const st_profile *prof, const st_group *g, double bytes,
                               double copies, double nodes_per_token) {
    if (g->nodes <= 1 || copies <= 0) return st_cost_collective(c, prof, ST_COLL_ALLTOALL, g, bytes);
    if (bytes <= 0) return 0;
    double n = (double)g->n, k = (double)g->per_node, m = (double)g->nodes;
    double out_bw = bus_bw(c, prof, ST_COLL_ALLTOALL, 0, g->n, bytes, nic_share(c, g));
    double t_out = nodes_per_token / copies * (m - 1) / m * bytes / out_bw;
    double t_in = (k - 1) / k * bytes / st_cost_domain_bytes_per_s(c, g->per_node);
    return (t_in > t_out ? t_in : t_out) + latency_steps(ST_COLL_ALLTOALL, n) * c->inter_latency_s;
}

/* For splitting a time into its latency terms and the rest (the simulator stretches only the
 * rest): the same model and profile on a copy of ctx's cluster without latencies. The latency
 * part of any time the cost model gives is then T(ctx) - T(result): at least 0, since dropping
 * the latencies can only shorten every algorithm. */
st_cost_ctx *st_cost_ctx_without_latency(const st_cost_ctx *ctx, st_cluster *c0) {
    *c0 = *ctx->c;
    c0->intra_latency_s = 0;
    c0->inter_latency_s = 0;
    for (int g = 0; g < c0->ngroups; g++) c0->groups[g].intra_latency_s = c0->groups[g].inter_latency_s = 0;
    c0->xgroup_latency_s = 0;
    return st_cost_ctx_new(ctx->m, c0, ctx->prof);
}

/* The pipeline message st__p2p_time prices, as Megatron-Core r0.10+ / main as of 2026 sends it
 * (megatron/core/pipeline_parallel/schedules.py, get_tensor_shapes; p2p_communication.py): every
 * tp rank sends one micro-batch's activation (seq / cp, mbs, hidden), its own 1/tp of the sequence
 * with sequence parallelism, in pipeline_dtype (the 16-bit or fp32 activations), and the receiver
 * uses it as it comes. (The older --scatter-gather-tensors-in-pipeline, 1/tp of it sent and
 * all-gathered over tp after the receive, Narayanan et al. SC'21 Sec. 4.1, left Megatron-LM in
 * 2023, commits 39b83c795 and 3c92fa93b.) With pp_partition (DeepSpeed's pipeline engine,
 * deepspeed/runtime/pipe/engine.py: is_pipe_partitioned and is_grad_partitioned, on whenever tp > 1,
 * "pipe_partitioned" and "grad_partitioned" true by default), each tp rank sends 1/tp of the
 * activation and of its gradient (a PartitionedTensor over the slice-parallel group) and the
 * receivers gather the rest over tp (PartitionedTensor.full, priced in st__p2p_time). */
double st_cost_p2p_bytes(const st_cost_ctx *ctx, const st_plan *p) {
    double act = (p->dtype == ST_DT_FP32 || p->dtype == ST_DT_TF32) ? 4 : 2;
    double sp = (p->sp || p->pp_partition) && p->tp > 1 ? p->tp : 1;
    return (double)p->mbs * (double)p->seq / p->cp / sp * (double)ctx->m->hidden * act;
}

/* ZeRO-3's traffic in pipeline chunk `chunk`, priced as st_cost_estimate prices it (zero = 3):
 * parameters gathered layer by layer (the chunk's blocks, plus the embedding on the first chunk and
 * the output layer on the last, each counted as a layer, with the chunk's parameters spread evenly
 * over them), before the forward and again before the backward, and each layer's gradients
 * reduce-scattered after its backward, over the dp x cp group (expert parameters over their
 * expert-data-parallel group: st_cost_zero3_chunk_experts). *layers: how many; *gather_s,
 * *scatter_s: one layer's collectives;
 * *embed_s: the tied embedding's gradient all-reduce between the end stages, on the first and the
 * last chunk (0 elsewhere). */
void st_cost_zero3_chunk(st_cost_ctx *ctx, const st_plan *p, int chunk, double *layers, double *gather_s,
                         double *scatter_s, double *embed_s) {
    const st_cluster *c = ctx->c;
    int chunk_layers[ST_MAX_STAGES], chunks = p->pp * p->vp;
    st_chunk_cost cc;
    st_group g;
    st_plan_chunk_layers(p, ctx->m, chunk_layers);
    st_cost_chunk(ctx, p, chunk, &cc);
    st_cost_group(c, p, ST_GRP_DP, &g);
    double n = (double)chunk_layers[chunk] + (chunk == 0) + (chunk == chunks - 1);
    if (n < 1) n = 1;
    double wbytes = st_cost_weight_bytes(p->dtype);
    *layers = n;
    double dense = cc.params - (p->ep > 1 ? cc.expert_params : 0); /* ep = 1: the experts' group is this one */
    *gather_s = st_cost_collective(c, ctx->prof, ST_COLL_ALLGATHER, &g, dense / n * wbytes);
    *scatter_s = st_cost_collective(c, ctx->prof, ST_COLL_REDUCESCATTER, &g, dense / n * p->grad_bytes);
    *embed_s = chunk == 0 || chunk == chunks - 1 ? st_cost_embedding_allreduce(ctx, p, NULL) : 0;
}

void st_cost_zero3_chunk_experts(st_cost_ctx *ctx, const st_plan *p, int chunk, double *gather_s, double *scatter_s) {
    int chunk_layers[ST_MAX_STAGES], chunks = p->pp * p->vp;
    st_chunk_cost cc;
    st_group g;
    st_plan_chunk_layers(p, ctx->m, chunk_layers);
    st_cost_chunk(ctx, p, chunk, &cc);
    st_cost_group_edp(ctx->c, p, &g);
    double n = (double)chunk_layers[chunk] + (chunk == 0) + (chunk == chunks - 1);
    if (n < 1) n = 1;
    double wbytes = st_cost_weight_bytes(p->dtype);
    *gather_s = *scatter_s = 0;
    if (p->ep <= 1) return; /* gathered with the dense ones */
    *gather_s = st_cost_collective(ctx->c, ctx->prof, ST_COLL_ALLGATHER, &g, cc.expert_params / n * wbytes);
    *scatter_s = st_cost_collective(ctx->c, ctx->prof, ST_COLL_REDUCESCATTER, &g, cc.expert_params / n * p->grad_bytes);
}

/* Host <-> device copies: `pieces` equal copies of `bytes` in all, each at the profile's measured
 * rate for its size when the profile has a copy table for the direction, else at the cluster's
 * PCIe rate (the same for every size, so the pieces do not matter and the time is exactly
 * bytes / rate, as before copy tables existed). */
double st__copy_s(const st_cluster *c, const st_profile *prof, st_copy_dir d, double bytes, double pieces) {
    double rate = prof && bytes > 0 ? st_profile_copy_bytes_per_s(prof, d, bytes / (pieces > 1 ? pieces : 1)) : 0;
    if (!(rate > 0)) rate = c->pcie_bytes_per_s * ST_PCIE_EFFICIENCY;
    return bytes / rate;
}

/* offload=params (ZeRO-Infinity's parameter offload): the GPU's ZeRO-3 shard of its weights lives
 * in host memory and crosses PCIe (host to device) before each all-gather, in `pieces` copies (one
 * per layer); at the rate the optimizer's copies use. The shard is the one memory.c and the
 * optimizer count: dense weights over the dp x cp group, expert weights over the
 * expert-data-parallel group. */
double st__offload_h2d_s(const st_cluster *c, const st_profile *prof, const st_plan *p, double dense, double expert,
                         double pieces, double *bytes) {
    st_group gd, ge;
    st_cost_group(c, p, ST_GRP_DP, &gd);
    st_cost_group_edp(c, p, &ge);
    double wbytes = st_cost_weight_bytes(p->dtype);
    double b = (dense / (double)gd.n + expert / (double)ge.n) * wbytes;
    if (bytes) *bytes = b;
    return st__copy_s(c, prof, ST_COPY_H2D, b, pieces);
}

double st_cost_offload_chunk(st_cost_ctx *ctx, const st_plan *p, int chunk, double *bytes) {
    int chunk_layers[ST_MAX_STAGES], chunks = p->pp * p->vp;
    st_chunk_cost cc;
    if (bytes) *bytes = 0;
    if (p->offload != ST_OFF_PARAMS) return 0;
    st_plan_chunk_layers(p, ctx->m, chunk_layers);
    st_cost_chunk(ctx, p, chunk, &cc);
    double n = (double)chunk_layers[chunk] + (chunk == 0) + (chunk == chunks - 1); /* st_cost_zero3_chunk's */
    if (n < 1) n = 1;
    double dense = cc.params - cc.expert_params, expert = cc.expert_params;
    if (chunk == chunks - 1) dense += st__tied_copy_params(ctx->m, p); /* held, and streamed, like the rest */
    double t = st__offload_h2d_s(ctx->c, ctx->prof, p, dense, expert, n, bytes) / n;
    if (bytes) *bytes /= n;
    return t;
}
