/* moe_kernels.h: an MoE block's routing, dispatch and combine as per-thread code (exec/model.c, "experts";
 * issue 18), written once for both backends: exec/kernels_cuda.cu runs each function as a kernel's thread
 * (and its host version, for the fakes), exec/kernels.c as a loop over the thread index. Each thread writes
 * its own outputs only and sums in the order exec/model.c's host routing summed (no atomics): the cuda
 * backend's numbers are the cpu backend's, and its token drops the same. Integer tensors (experts, slots,
 * places) are int32 in the backends' float memory (the same size). A (token, expert) pair is a slot n * K + j:
 * token n's j-th choice; the send order is by expert, then the higher weight first (the drop policy "probs"),
 * then the earlier slot, as pick_cmp ordered it; an expert keeps the first `cap` of its slots. Simple rather
 * than fast (each place is found by a count over all slots: O((N K)^2) per block), as the other kernels. */
#ifndef STRATA_EXEC_MOE_KERNELS_H
#define STRATA_EXEC_MOE_KERNELS_H

#include <math.h>
#include <stdint.h>

#ifdef __CUDACC__
#define ST_MOE_HD static __host__ __device__ inline
#else
#define ST_MOE_HD static inline
#endif

/* token n's weights s[n K ..]: the softmax over its logits (logits [N x E]) at its top K experts top[n K ..] */
ST_MOE_HD void st__xmoe_weights(float *s, const float *logits, const int32_t *top, int64_t E, int64_t K, int64_t n) {
    const float *lg = logits + n * E;
    const int32_t *tp = top + n * K;
    float mx = -INFINITY, sum = 0;
    for (int64_t j = 0; j < K; j++)
        if (lg[tp[j]] > mx) mx = lg[tp[j]];
    for (int64_t j = 0; j < K; j++) sum += s[n * K + j] = expf(lg[tp[j]] - mx);
    for (int64_t j = 0; j < K; j++) s[n * K + j] /= sum;
}

/* token n's top K experts by logit (logits [N x E]), the lower expert on a tie, into top[n K ..], and their
 * weights s, the softmax over those K logits (st__xmoe_weights) */
ST_MOE_HD void st__xmoe_route(int32_t *top, float *s, const float *logits, int64_t E, int64_t K, int64_t n) {
    const float *lg = logits + n * E;
    int32_t *tp = top + n * K;
    for (int64_t j = 0; j < K; j++) { /* the j-th largest logit */
        int64_t best = -1;
        for (int64_t c = 0; c < E; c++) {
            int taken = 0;
            for (int64_t i = 0; i < j; i++) taken |= tp[i] == c;
            if (!taken && (best < 0 || lg[c] > lg[best])) best = c;
        }
        tp[j] = (int32_t)best;
    }
    st__xmoe_weights(s, logits, top, E, K, n);
}

/* expert e's kept slots: cnt[e] = min(cap, the slots of the NK that chose it) */
ST_MOE_HD void st__xmoe_count(int32_t *cnt, const int32_t *top, int64_t NK, int64_t cap, int64_t e) {
    int64_t c = 0;
    for (int64_t i = 0; i < NK; i++) c += top[i] == e;
    cnt[e] = (int32_t)(c < cap ? c : cap);
}

/* slot i's place in the send order: order[place] = i and where[i] = place, or where[i] = -1 when its
 * expert is full (its rank among its expert's slots is cap or more) */
ST_MOE_HD void st__xmoe_place(int32_t *order, int32_t *where, const int32_t *cnt, const int32_t *top, const float *s,
                              int64_t NK, int64_t cap, int64_t i) {
    int64_t e = top[i], rank = 0, at = 0;
    for (int64_t j = 0; j < NK; j++) rank += top[j] == e && (s[j] > s[i] || (s[j] == s[i] && j < i));
    if (rank >= cap) {
        where[i] = -1;
        return;
    }
    for (int64_t c = 0; c < e; c++) at += cnt[c];
    order[at + rank] = (int32_t)i, where[i] = (int32_t)(at + rank);
}

/* the dispatch's rows: element j of send [nsend x (h + 1)], row i the norm output n2's row of its slot's token,
 * then its expert's place on the receiving rank (of El there) */
ST_MOE_HD void st__xmoe_gather(float *send, const float *n2, const int32_t *order, const int32_t *top, int64_t K,
                               int64_t h, int64_t El, int64_t j) {
    int64_t i = j / (h + 1), c = j % (h + 1), sl = order[i];
    send[j] = c < h ? n2[(sl / K) * h + c] : (float)(top[sl] % El);
}

/* received row i of recv [R x (h + 1)] to its place among the rows sorted by expert (stable: after the
 * earlier rows of its expert): xin [R x h] there, perm[place] = i */
ST_MOE_HD void st__xmoe_sort(float *xin, int32_t *perm, const float *recv, int64_t R, int64_t h, int64_t i) {
    float tag = recv[i * (h + 1) + h];
    int64_t at = 0;
    for (int64_t j = 0; j < R; j++) {
        float t = recv[j * (h + 1) + h];
        at += t < tag || (t == tag && j < i);
    }
    perm[at] = (int32_t)i;
    for (int64_t c = 0; c < h; c++) xin[at * h + c] = recv[i * (h + 1) + c];
}

/* first[c]: the sorted rows before expert c's (c = 0 .. El) */
ST_MOE_HD void st__xmoe_first(int32_t *first, const float *recv, int64_t R, int64_t h, int64_t c) {
    int32_t n = 0;
    for (int64_t j = 0; j < R; j++) n += recv[j * (h + 1) + h] < (float)c;
    first[c] = n;
}

/* element j of rows of h moved by perm: to[i] = from[perm[i]] (dir 0) or to[perm[i]] = from[i] (dir 1) */
ST_MOE_HD void st__xmoe_permute(float *to, const float *from, const int32_t *perm, int64_t h, int dir, int64_t j) {
    int64_t i = j / h, c = j % h;
    if (dir) to[perm[i] * h + c] = from[j];
    else to[j] = from[perm[i] * h + c];
}

/* element j of out [N x h]: (acc ? out : 0) + its token's kept slots' rows of y [nsend x h] (send order), each
 * times its weight s (s NULL: 1), in the send order as the host summed them */
ST_MOE_HD void st__xmoe_combine(float *out, const float *y, const float *s, const int32_t *where, int64_t K,
                                int64_t h, int acc, int64_t j) {
    int64_t n = j / h, c = j % h, last = -1;
    float a = acc ? out[j] : 0.0f;
    for (;;) { /* the token's next place after `last` */
        int64_t next = -1, sl = -1;
        for (int64_t k = 0; k < K; k++) {
            int64_t p = where[n * K + k];
            if (p > last && (next < 0 || p < next)) next = p, sl = n * K + k;
        }
        if (next < 0) break;
        if (s) a += s[sl] * y[next * h + c];
        else a += y[next * h + c];
        last = next;
    }
    out[j] = a;
}

/* the combine's backward for sent row i (slot order[i], token n): its weight's gradient ds[slot] = <dout[n],
 * y[i]> (partial over tp) and its expert output's, dy[i] = s[slot] dout[n] */
ST_MOE_HD void st__xmoe_dy(float *dy, float *ds, const float *dout, const float *y, const float *s,
                           const int32_t *order, int64_t K, int64_t h, int64_t i) {
    int64_t sl = order[i];
    const float *d = dout + (sl / K) * h;
    double dot = 0;
    for (int64_t c = 0; c < h; c++) dot += (double)d[c] * y[i * h + c], dy[i * h + c] = s[sl] * d[c];
    ds[sl] = (float)dot;
}

/* token n's logits' gradient dl [N x E] (zero but at its top K) through the softmax over its top K */
ST_MOE_HD void st__xmoe_router_bwd(float *dl, const float *s, const float *ds, const int32_t *top, int64_t E,
                                   int64_t K, int64_t n) {
    double sum = 0;
    for (int64_t j = 0; j < K; j++) sum += (double)s[n * K + j] * ds[n * K + j];
    for (int64_t j = 0; j < K; j++) dl[n * E + top[n * K + j]] = (float)(s[n * K + j] * (ds[n * K + j] - sum));
}

#endif
