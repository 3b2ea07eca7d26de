/* model.c: the decoder the CPU executor trains (exec_private.h), one pipeline stage's part of it on
 * one tensor-parallel shard, in fp32: GPT blocks (LayerNorm, learned positions, GELU MLP, biases)
 * and Llama blocks (RMSNorm, rotary embedding, SwiGLU, grouped-query attention), pre-norm with
 * residuals, a token embedding, a final norm, the output layer (tied to the embedding or not) and
 * cross-entropy. Dropout is not run (p = 0): the numbers stay the same on every sharding.
 *
 * Tensor parallelism as Megatron-LM runs it (Shoeybi et al. 2019, Sec. 3 and Fig. 3): q, k, v and
 * fc1 (w1, w3) column-parallel by heads and ffn columns, the projection and fc2 row-parallel with
 * their partial outputs all-reduced in forward (g) and the norms' output gradients all-reduced in
 * backward (f); the embedding and the output layer vocab-parallel, the embedding's partial lookups
 * all-reduced, the cross-entropy from the all-reduced row maximum, sum of exponentials and target
 * logit (Megatron-LM's VocabParallelEmbedding and vocab_parallel_cross_entropy). The vocabulary is
 * the model's own, without Megatron's padding: it must divide by tp.
 *
 * Sequence parallelism (Korthikanti et al. 2022, Sec. 4.2.2; Megatron-LM's --sequence-parallel):
 * the residual stream, the norms and the residual additions run on this rank's N / tp consecutive
 * token rows (dropout would too; it is not run); the norm's output is all-gathered before the
 * column-parallel GEMMs and the row-parallel GEMMs' partial sums reduce-scattered back to the rows,
 * the backward the other way round; the embedding's partial lookups are reduce-scattered, the
 * final norm's output all-gathered before the output layer. The gathered norm outputs are kept for
 * the weight gradients (Megatron-LM gathers them again in backward: the same numbers). The
 * replicated tensors' gradients are then partial sums over the rows, summed over tp before the
 * optimizer (st__xmodel_sp_grads). The rows are the flattened (sequence, token) order, which is
 * Megatron's [s, b, h] sequence split when B = 1.
 *
 * Mixture of experts (Shazeer et al. 2017; Megatron-Core's MoELayer with the all-to-all token
 * dispatcher): in an MoE block the MLP is a router (a replicated [E x h] linear layer), each token's
 * top-k experts by router logit with weights a softmax over those k logits (Megatron's default,
 * Mixtral's), and E expert MLPs of moe_ffn, each sharded over tp like the dense MLP. With a capacity
 * factor an expert takes at most ceil(factor x tokens x k / E) of a micro-batch's (token, expert)
 * pairs, the highest-weighted ones (Megatron's drop policy "probs"), the rest dropped (they add
 * nothing; the residual carries the token); 0 is dropless. With ep > 1 a rank holds E / ep experts
 * and the pairs go to their expert's rank and back by all-to-all in the ep group (dispatch,
 * combine); the experts' gradients are then summed over the ranks that hold the same experts
 * (exec/cpu.c). No auxiliary load-balancing loss (Megatron's coefficient defaults to 0), no shared
 * experts, no biases in expert blocks.
 *
 * Activation recompute (Korthikanti et al. 2022, Sec. 5; Megatron-LM's --recompute-granularity):
 * full keeps each block's input and drops the rest of its activations after its forward, and the recompute
 * runs the block again from it, its tp collectives and ep all-to-alls included (Megatron's full recompute
 * with --recompute-method uniform and --recompute-num-layers 1 checkpoints each block's input: the same
 * numbers); selective drops the attention probabilities and recomputes them (QK^T, softmax, times V) from the
 * kept q, k and v. The output layer and the loss are not recomputed (Megatron does not either). op is
 * torchtitan's op-level selective checkpointing as src/core/opgraph.c prices it (op_sac): each block keeps its
 * input and the outputs its policy saves, every second GEMM's (wq's and wv's of the three in QKV, w1's of
 * SwiGLU's fc1 or GELU's fc1, SwiGLU's w2), the attention's output and, with sp, the two reduce-scatters'
 * (layout's part 3); the rest is dropped after the forward and block_redo makes it again before the block's
 * backward, running the operators the lowering's recompute names (the unsaved GEMMs alone: wk's, w3's or
 * GELU's fc2); the probabilities, which a fused kernel never keeps, are made again right before each block's
 * attention backward. Under recompute=op a fused GEMM's forward runs as one call per part (fused_fwd:
 * torchtitan's separate linears), so that wk's or w3's recompute repeats the forward's own call. An MoE block
 * keeps its routing and, with ep > 1, the all-to-alls' outputs, and runs its router, experts and weighted sum
 * again (moe_drop, moe_redo_dev). Without an operator-level plan's splits (st__xmodel_init refuses them); with
 * cp the probabilities are remade through cp's exchange (attn_core_fwd).
 * Block by block (Megatron-LM's CheckpointFunction per block, tensor_parallel/random.py; torchtitan's
 * checkpoint_wrapper per block): what a recompute makes again lies in a room of one block's activations
 * (layout's parts 1 with full and op, 2 with any), which the chunk's blocks use in turn, as the cost model
 * prices one block's working set (cost/memory.c): the forward writes each block's there and drops it with the
 * next block's; the program's recompute instruction (one per chunk and micro-batch, right before its
 * backward) makes the room and the chunk's last block's activations in it; the backward then makes each other
 * block's (redo_block), right before that block's backward, into the same room. The time of those rebuilds is
 * the recompute's: the backward marks each (st__xmodel's redo_clock) and the runtime moves its seconds from the
 * backward to the recompute instruction in the per-kind clocks and shows them as a recompute span at the
 * backward's start in the trace (exec/cpu.c, account). ZeRO-3's unit-wise recompute (one instruction per block)
 * uses the same room. A split backward (the zero-bubble schedules) copies the inputs of the linear layers that
 * lie in the room beside their output gradients (lin_bwd) for its weight half, which runs after other blocks
 * took the room, and gives the room back at the input half's end (torch's weight closures keep the tensors the
 * recompute made; the lowering prices those inputs under full and op, st__block_wgrad).
 *
 * Zero-bubble schedules (Qi et al. 2023, "Zero Bubble Pipeline Parallelism", Sec. 2) split a backward
 * into B, the input gradients the previous stage waits for, and W, the weight gradients, run later
 * to fill the bubble: st__xmodel_backward_input runs every linear layer's input-gradient GEMM and
 * keeps its output gradient beside its kept input; st__xmodel_backward_weight then runs the
 * weight-gradient GEMMs (one of a linear layer's two backward GEMMs, the half cost/ gives W). What
 * is cheap stays in B (norms', biases', the embedding's gradients) and so does an MoE block's MLP
 * (its all-to-alls run in B; the experts' weight gradients with them). The sums are the fused
 * backward's, term for term.
 *
 * Interleaved pipelines (vp > 1): a rank holds several chunks of blocks; their weights lie in one
 * flat buffer, chunk by chunk, and a forward or backward runs one chunk.
 *
 * Context parallelism (cp > 1; Megatron-LM's --context-parallel-size with Transformer Engine's
 * attention, transformer_engine/pytorch/attention/dot_product_attention/context_parallel.py): the
 * sequence is cut into 2cp chunks and cp rank r holds chunks r and 2cp - 1 - r of every sequence
 * (the load-balanced causal split), so T is this rank's T / cp tokens of each, at their positions
 * (learned and rotary position embeddings, targets; the backend's kernels read the rows' tokens
 * from arrays laid out for them, row_tokens, and their positions in runs, positions). Everything
 * but the attention core is per token and runs on them; the core attends each local query chunk
 * against the whole sequence's keys and values up to its end, causal by position. The keys and
 * values come from every cp rank: with cp_comm=p2p around a ring of sends and receives (cp - 1
 * steps), with all_gather all-gathered; the backward fetches them again the same way (TE saves only
 * the local ones) and returns the gradients of every rank's keys and values to it by the ring or a
 * reduce-scatter. Unlike TE's p2p, which computes on each block as it arrives (an online softmax
 * over the blocks), this collects the blocks and then computes: the same transfers, the same result
 * up to rounding. With a2a (DeepSpeed Ulysses) q, k and v are all-to-all'd from the sequence split
 * to a split of the heads, the attention runs on whole sequences, and its output goes back the same
 * way. The loss is each rank's mean over its tokens, and its gradients are summed over the dp x cp
 * group (exec/cpu.c).
 *
 * Operator-level plans (strata plan --search ilp; search/as_hybrid.c) may split part of the attention
 * by the token rows on a tensor-parallel axis whose residual stream is split by rows (attn_rows; the
 * ILP's label 'b' or 's' where Megatron's is 'n'), the MLP and the output layer staying Megatron's:
 *   1, the projection alone: each rank multiplies its Ns token rows of the attention output, every
 *      head, by the whole weight. The ILP's resharding of the attention output from the head split to
 *      the row split is one all-to-all in the tp group (the row blocks of this rank's heads out, this
 *      rank's rows of every head in); the backward returns the rows' gradients to the heads by the
 *      reverse all-to-all. No reduce-scatter follows the projection: its output is the rows' already.
 *   2, the whole attention (QKV, rotary embedding, the core, the projection; 'b'): data-parallel on
 *      the rank's Ns rows, which are B / tp whole sequences, with whole weights; no all-gather before
 *      QKV, no reduce-scatter after the projection, the norm's gradient whole on the rows (no f).
 * The whole weights' gradients are partial sums over the rows, summed over tp with the other
 * replicated tensors' (st__xmodel_sp_grads), as the ILP's gradient synchronisation of a batch-split
 * weight is.
 * The ILP may also split QKV along its fused output width ('e', autoshard's "column (output split)")
 * and keep the attention core whole on every device (attn_rows 3; its pick for tiny-moe, and for
 * tiny-llama where tp exceeds its 2 kv heads; with sp or not): each rank multiplies the norm's
 * (gathered) output by its 1 / tp of wq's, wk's and wv's rows as one GEMM, the [N x (q + 2 kv) / tp]
 * outputs are all-gathered in the tp group (the ILP's resharding of 'e' to the replicated layout),
 * the rotary embedding and the attention run on every head of every row, and the projection is
 * Megatron's row-parallel one on this rank's heads, a slice of the whole output. Backward: the
 * projection's input gradient (this rank's heads) all-gathered to the whole output's, the attention's
 * backward whole, this rank's columns of dq, dk, dv into its share of the GEMM, whose input gradient
 * is partial over tp as a column-parallel GEMM's is (f or sp's reduce-scatter). The ILP splits each kv
 * group's columns (its queries, key, value) by tp; this splits q's, k's and v's rows each by tp: a
 * permutation of the same rows, the same GEMM sizes and the same all-gather. The ILP also runs the
 * rotary embedding on the split (label 'e'); here it runs after the gather on the whole q and k (a
 * rank's rows need not hold whole rotary pairs), tp times its elementwise work, no transfer.
 * An MoE block on such a tp axis (moe_rows; the ILP's router 'h', dispatch and combine on the stream's
 * rows, the experts 'e') is expert parallelism over the tp group on each rank's rows (Megatron-Core's
 * all-to-all dispatcher with the tp group as the ep group): the norm's output of the rank's Ns rows
 * goes by an all-to-all to its h / tp columns of every row (the ILP's resharding of the rows to the
 * router's 'h'), the router's partial logits of every row are reduce-scattered back to the rows, each
 * rank routes its rows, sends each kept (token, expert) pair to the rank holding the expert (E / tp
 * experts, whole) and takes the outputs back, all-to-alls of the routed rows; the output is the rows'
 * own, whole: no reduce-scatter, and the norm's gradient whole on the rows (no f). Backward: the rows'
 * logit gradients all-gathered, the router's input gradient all-to-all'd back to the rows. The ILP prices
 * the same (search/autoshard.c: the router's logits resharded once, for the dispatch, which carries them to
 * the combine; the combine an all-to-all of each rank's share, Megatron-Core's token dispatcher). The ILP may also run the router whole
 * on the rows (its 'b' where the axis is a batch one, the attention then on the rows too: attn_rows 2;
 * router_h 0): each rank's logits from its rows and the whole weight, whose gradient is partial over
 * the rows (st__xmodel_sp_grads), the rest as above.
 * Experts split by their ffn over the tp group (the ILP's 'f'; moe_rows 0) are Megatron's tp MoE above
 * (Megatron-Core's expert tensor parallelism: its token dispatchers all-gather the tokens over the tp
 * group and reduce-scatter the experts' partial outputs, token_dispatcher.py): every rank routes every
 * row of the gathered norm output alike. With the ILP's router split by the hidden dimension
 * (router_h): each rank multiplies its h / tp columns of every row by its columns of the router and the
 * partial logits are all-reduced; backward, its columns of the router's gradient whole (every row) and
 * its columns of the input's gradient, partial over tp as the experts' part of it is.
 * On a 2-D mesh whose batch axis splits the output layer and the loss by the vocabulary ('v') and whose tp
 * axis splits them by the rows (the stream's label, with sp; the ILP's pick for tiny-gpt on the 2x2 fixture at
 * micro-batches of 8, the batch axis between its nodes; hd: the dp group's degree, hr: this rank's place in
 * it; no cp or ZeRO-3): the final norm runs on the rank's Ns rows, which are all-gathered over the dp group (not
 * tp) with their targets, hd x Ns rows, each dp rank's in turn; the output layer multiplies them by the rank's
 * V / hd rows of the output table, and the loss is vocabulary-parallel over the dp group (the row maximum,
 * sums of exponentials and target logits all-reduced there). Each rank's loss is its own rows' mean, summed
 * over its tp group: its micro-batch's, as without. Backward: the input gradient, partial over the dp group's
 * vocabulary shares, reduce-scattered over it to the rank's rows, then the final norm's backward on them (no
 * tp collective: the rows are the rank's alone). The ILP keeps the embedding whole there (null on the batch
 * axis, the stream's label on the tp axis): the tables (wte, lm_head) are whole on every rank, the
 * embedding a lookup of the rank's rows with no collective, and the output layer's gradient lands in its
 * vocabulary share of the table, 0 elsewhere: the dp reduction sums the dp ranks' shares (disjoint), and
 * st__xmodel_sp_grads the tp ranks' rows, as it does for any whole tensor. The runtime's ZeRO-1 and the tied
 * copy's all-reduce see a table like any replicated weight. (Holding only the share would save the rest of
 * the table and its dp reduction; it would also need a flat layout that differs across the dp group, which the
 * runtime's dp reduction and ZeRO shards do not take.) The dp group's collectives run in exec/cpu.c (MPI;
 * the cuda backend refuses such plans), their time counted with tp's.
 *
 * ZeRO-3 (exec_private.h, "ZeRO-3"): the same forward and backward a unit at a time (the embedding, a
 * block, the output layer and loss), the residual stream and its gradient kept in the activations and
 * the work buffer between units; the model then holds no flat buffers, and the runtime points each
 * unit's tensors at its gathered parameters and its own gradient buffer while it runs.
 *
 * Weights start from a counter-based hash of (seed, tensor name, block, element's place in the full
 * tensor), uniform with standard deviation 0.02 (GPT-2's), norms' weights 1 and biases 0: every
 * sharding holds slices of the same full tensors.
 *
 * Memory: the flat buffers (weights, gradients, the backward's scratch) and the activations come from
 * the backend (st__xbackend's mem_alloc: the host's for the cpu backend, the GPU's for cuda), and this
 * file moves and zeroes them only through its mem_copy, mem_copy2d and mem_zero, never by a host
 * pointer: the weights are seeded on the host and uploaded once, the loss's sum over rows copies the
 * 2N row sums down, an MoE block's counts down (its routing, dispatch and combine run as the backend's kernels,
 * moe_fwd_dev), and what runs on the host (the operator-level MoE variants' routing; context
 * parallelism's exchanges and chunked attention, whose probabilities stay on the host; attn_rows 1's
 * all-to-all over MPI) works on host copies of its inputs and uploads its outputs. */
#include "exec/exec_private.h"

#include <assert.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

static uint64_t splitmix64(uint64_t x) {
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

static uint64_t name_hash(const char *s) {
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

void st__xtokens(int32_t *out, int64_t T, int64_t V, uint64_t seed, int64_t step, int64_t sample) {
    /* an arithmetic sequence from a seeded start and stride: random enough to start at ln V, and a
     * pattern attention can learn, so the loss per step shows training */
    uint64_t h = splitmix64(seed ^ splitmix64((uint64_t)step * 1000003u + (uint64_t)sample));
    int64_t start = (int64_t)(h % (uint64_t)V), stride = 1 + (int64_t)((h >> 32) % 7);
    for (int64_t i = 0; i <= T; i++) out[i] = (int32_t)((start + i * stride) % V);
}

/* ---------------------------------------------------------------- the tensors */

static int add(st__xmodel *x, int cap, const char *name, int layer, int64_t rows, int64_t cols, int64_t row0,
               int64_t nrows, int64_t col0, int64_t ncols, int init) {
    if (x->ntensors >= cap) return -1;
    st__xtensor *t = &x->tensors[x->ntensors++];
    *t = (st__xtensor){name, layer, rows, cols, row0, nrows, col0, ncols, init, x->nparams, -1};
    x->nparams += nrows * ncols;
    return x->ntensors - 1;
}
/* full vector of n, replicated */
#define VEC(name, layer, n, init) add(x, cap, name, layer, n, 1, 0, n, 0, 1, init)
/* rows r0 .. r0 + nr of a rows x cols matrix (column-parallel, vocab-parallel) */
#define ROWS(name, layer, rows, cols, r0, nr) add(x, cap, name, layer, rows, cols, r0, nr, 0, cols, 0)
/* columns c0 .. c0 + nc (row-parallel) */
#define COLS(name, layer, rows, cols, c0, nc) add(x, cap, name, layer, rows, cols, 0, rows, c0, nc, 0)
/* a bias sliced like its column-parallel weight */
#define BIAS(name, layer, rows, r0, nr) add(x, cap, name, layer, rows, 1, r0, nr, 0, 1, 2)

/* the table (indices into x->tensors per block field: idx[layer][field]); -1 when absent */
enum { F_LN1W, F_LN1B, F_WQ, F_WK, F_WV, F_BQ, F_BK, F_BV, F_WO, F_BO, F_LN2W, F_LN2B, F_W1, F_B1, F_W3, F_W2, F_B2,
       F_ROUTER, F_EW1, F_EW3, F_EW2, F_COUNT };
enum { H_WTE, H_WPE, H_LNFW, H_LNFB, H_LM, H_COUNT };

/* the model's block number of this rank's k-th block */
static int layer_of(const st__xmodel *x, int k) {
    int c = 0;
    while (c < x->nchunks - 1 && k >= x->cl1[c] - x->cl0[c]) k -= x->cl1[c] - x->cl0[c], c++;
    return x->cl0[c] + k;
}

/* this rank's index of chunk c's first block */
static int chunk_first(const st__xmodel *x, int c) {
    int k = 0;
    for (int i = 0; i < c; i++) k += x->cl1[i] - x->cl0[i];
    return k;
}

/* expert e's weight: an expert's own full tensor, sliced by tp like the dense MLP's */
static int add_expert(st__xmodel *x, int cap, const char *name, int layer, int64_t e, int64_t rows, int64_t cols,
                      int64_t row0, int64_t nrows, int64_t col0, int64_t ncols) {
    int i = add(x, cap, name, layer, rows, cols, row0, nrows, col0, ncols, 0);
    if (i >= 0) x->tensors[i].expert = (int)e;
    return i;
}

/* The table; with experts their weights last, each kind of a block's local experts back to back. A
 * block's wq, wk and wv lie back to back (add() places each tensor after the last), and so do bq, bk
 * and bv, and w1 and w3: the fused GEMMs (fused_bwd) read them as one [q + 2 kv x h] weight and one
 * [2 ffn x h], this rank's heads' (ffn columns') rows of each, as Megatron-LM's linear_qkv and gated
 * linear_fc1 hold them per tp rank (megatron/core/transformer/mlp.py: ffn_hidden_size *= 2, each
 * rank's [gate, up] halves, torch.chunk). Megatron orders linear_qkv's rows by query group (each kv
 * head's queries, its key, its value; attention.py, get_query_key_value_tensors), this q, then k,
 * then v: a permutation of the same rows, the same GEMM. */
static int build_table(st__xmodel *x, const st_model *m, int cap, int (*idx)[F_COUNT], int *hidx) {
    int64_t h = x->h, qd = x->a * x->d, kd = x->kv * x->d, ql = x->a_l * x->d, kl = x->kv_l * x->d;
    for (int i = 0; i < H_COUNT; i++) hidx[i] = -1;
    if (x->first) {
        hidx[H_WTE] = ROWS("wte", -1, x->V, h, x->v0, x->V_l);
        if (!x->rope) hidx[H_WPE] = ROWS("wpe", -1, x->Tg, h, 0, x->Tg);
    }
    for (int k = 0; k < x->nl; k++) {
        int l = layer_of(x, k), *f = idx[k];
        for (int i = 0; i < F_COUNT; i++) f[i] = -1;
        f[F_LN1W] = VEC("ln1_w", l, h, 1);
        if (!x->rmsnorm) f[F_LN1B] = VEC("ln1_b", l, h, 2);
        /* this rank's rows of wq (q0 .. q0 + qn) and of wk and wv (k0 .. k0 + kn): its heads'; with attn_rows 2
         * (QKV data-parallel on the rows, above) all; with 3 its share of QKV's fused width */
        int64_t q0 = x->tr * ql, qn = ql, k0 = x->tr * kl, kn = kl;
        if (x->attn_rows == 2) q0 = 0, qn = qd, k0 = 0, kn = kd;
        if (x->attn_rows == 3) q0 = x->tr * x->wq_l, qn = x->wq_l, k0 = x->tr * x->wk_l, kn = x->wk_l;
        f[F_WQ] = ROWS("wq", l, qd, h, q0, qn);
        f[F_WK] = ROWS("wk", l, kd, h, k0, kn);
        f[F_WV] = ROWS("wv", l, kd, h, k0, kn);
        if (x->bias) {
            f[F_BQ] = BIAS("bq", l, qd, q0, qn);
            f[F_BK] = BIAS("bk", l, kd, k0, kn);
            f[F_BV] = BIAS("bv", l, kd, k0, kn);
        }
        if (x->attn_rows == 3) f[F_WO] = COLS("wo", l, h, qd, x->tr * x->wq_l, x->wq_l); /* this rank's heads */
        else if (x->attn_rows) f[F_WO] = add(x, cap, "wo", l, h, qd, 0, h, 0, qd, 0);
        else f[F_WO] = COLS("wo", l, h, qd, x->tr * ql, ql);
        if (x->bias) f[F_BO] = VEC("bo", l, h, 2);
        f[F_LN2W] = VEC("ln2_w", l, h, 1);
        if (!x->rmsnorm) f[F_LN2B] = VEC("ln2_b", l, h, 2);
        if (st_model_layer_is_moe(m, l)) {
            f[F_ROUTER] = x->router_h ? COLS("router", l, x->E, h, x->tr * (h / x->tp), h / x->tp) /* 'h' */
                                      : add(x, cap, "router", l, x->E, h, 0, x->E, 0, h, 0);
            continue;
        }
        f[F_W1] = ROWS("w1", l, x->f, h, x->tr * x->f_l, x->f_l);
        if (x->swiglu) f[F_W3] = ROWS("w3", l, x->f, h, x->tr * x->f_l, x->f_l);
        if (x->bias) f[F_B1] = BIAS("b1", l, x->f, x->tr * x->f_l, x->f_l);
        f[F_W2] = COLS("w2", l, h, x->f, x->tr * x->f_l, x->f_l);
        if (x->bias) f[F_B2] = VEC("b2", l, h, 2);
    }
    if (x->last) {
        hidx[H_LNFW] = VEC("lnf_w", -1, h, 1);
        if (!x->rmsnorm) hidx[H_LNFB] = VEC("lnf_b", -1, h, 2);
        /* tied: the first stage's embedding, or on a later last stage its copy (Megatron-LM keeps
         * one there and all-reduces the two gradients: the program's embedding all-reduce) */
        if (!x->tied) hidx[H_LM] = ROWS("lm_head", -1, x->V, h, x->v0, x->V_l);
        else if (!x->first) hidx[H_LM] = ROWS("wte", -1, x->V, h, x->v0, x->V_l);
    }
    int64_t fe = x->fe, fl = x->fe_l, r0 = x->moe_rows ? 0 : x->tr * fl; /* moe_rows: whole experts */
    for (int k = 0; k < x->nl; k++) {
        int l = layer_of(x, k), *f = idx[k];
        if (f[F_ROUTER] < 0) continue;
        for (int64_t e = x->e0; e < x->e0 + x->E_l; e++) {
            int i = add_expert(x, cap, "moe_w1", l, e, fe, h, r0, fl, 0, h);
            if (e == x->e0) f[F_EW1] = i;
        }
        for (int64_t e = x->e0; x->swiglu && e < x->e0 + x->E_l; e++) {
            int i = add_expert(x, cap, "moe_w3", l, e, fe, h, r0, fl, 0, h);
            if (e == x->e0) f[F_EW3] = i;
        }
        for (int64_t e = x->e0; e < x->e0 + x->E_l; e++) {
            int i = add_expert(x, cap, "moe_w2", l, e, h, fe, 0, h, r0, fl);
            if (e == x->e0) f[F_EW2] = i;
        }
    }
    return x->ntensors < cap ? 0 : -1;
}

/* the st__xlayer field of each F_* (its members are float pointers in that order) */
static float **field(st__xlayer *lay, int f) {
    static const size_t off[F_COUNT] = {
        offsetof(st__xlayer, ln1_w), offsetof(st__xlayer, ln1_b), offsetof(st__xlayer, wq),
        offsetof(st__xlayer, wk),    offsetof(st__xlayer, wv),    offsetof(st__xlayer, bq),
        offsetof(st__xlayer, bk),    offsetof(st__xlayer, bv),    offsetof(st__xlayer, wo),
        offsetof(st__xlayer, bo),    offsetof(st__xlayer, ln2_w), offsetof(st__xlayer, ln2_b),
        offsetof(st__xlayer, w1),    offsetof(st__xlayer, b1),    offsetof(st__xlayer, w3),
        offsetof(st__xlayer, w2),    offsetof(st__xlayer, b2),    offsetof(st__xlayer, router),
        offsetof(st__xlayer, ew1),   offsetof(st__xlayer, ew3),   offsetof(st__xlayer, ew2)};
    return (float **)((char *)lay + off[f]);
}

/* (the output layer of a tied model that also holds the embedding follows the embedding's pointer) */
void st__xmodel_point(st__xmodel *x, int grads, float *buf, int64_t lo, int64_t hi) {
    st__xlayer *lay = grads ? x->lg : x->lp;
    float **head[H_COUNT] = {grads ? &x->gwte : &x->wte, grads ? &x->gwpe : &x->wpe,
                             grads ? &x->glnf_w : &x->lnf_w, grads ? &x->glnf_b : &x->lnf_b,
                             grads ? &x->glm : &x->lm};
    const int *hidx = x->idx + (int64_t)x->nl * F_COUNT;
    for (int64_t k = 0; k < (int64_t)x->nl * F_COUNT + H_COUNT; k++) {
        int i = x->idx[k];
        if (i < 0 || x->tensors[i].off < lo || x->tensors[i].off >= hi) continue;
        float *p = buf ? buf + (x->tensors[i].off - lo) : NULL;
        if (k < (int64_t)x->nl * F_COUNT) *field(&lay[k / F_COUNT], (int)(k % F_COUNT)) = p;
        else *head[k - (int64_t)x->nl * F_COUNT] = p;
        if (k == (int64_t)x->nl * F_COUNT + H_WTE && x->last && hidx[H_LM] < 0) *head[H_LM] = p;
    }
}

static uint64_t init_key(const st__xtensor *t, uint64_t seed) {
    uint64_t key = splitmix64(seed ^ name_hash(t->name) ^ splitmix64((uint64_t)(t->layer + 2)));
    return t->expert >= 0 ? splitmix64(key ^ (uint64_t)t->expert) : key;
}

/* element (r, c) of the full tensor (its global index g) */
static float init_at(const st__xtensor *t, uint64_t key, int64_t r, int64_t c) {
    const float a = 0.02f * 1.7320508f; /* uniform on [-a, a): standard deviation 0.02 */
    uint64_t g = (uint64_t)((t->row0 + r) * t->cols + t->col0 + c);
    float u = (float)((double)(splitmix64(key + g) >> 11) * 0x1.0p-53); /* [0, 1) */
    return t->init == 1 ? 1.0f : t->init == 2 ? 0.0f : a * (2.0f * u - 1.0f);
}

void st__xmodel_init_values(const st__xmodel *x, uint64_t seed, float *dst, int64_t lo, int64_t hi) {
    for (int i = 0; i < x->ntensors; i++) {
        const st__xtensor *t = &x->tensors[i];
        uint64_t key = init_key(t, seed);
        for (int64_t r = 0; r < t->nrows; r++)
            for (int64_t c = 0; c < t->ncols; c++) {
                int64_t e = t->off + r * t->ncols + c;
                if (e >= lo && e < hi) dst[e - lo] = init_at(t, key, r, c);
            }
    }
}

float st__xmodel_init_value(const st__xtensor *t, uint64_t seed, int64_t r, int64_t c) {
    return init_at(t, init_key(t, seed), r, c);
}

/* the widest fused GEMM's output (fused_fwd): q, k and v side by side, or SwiGLU's two halves */
static int64_t fused_floats(const st__xmodel *x) {
    int64_t N = x->B * x->T, qkv = N * (x->a_l + 2 * x->kv_l) * x->d, fc1 = x->swiglu ? 2 * N * x->f_l : 0;
    return qkv > fc1 ? qkv : fc1;
}

static int64_t work_floats(const st__xmodel *x) {
    int64_t N = x->B * x->T, ql = x->a_l * x->d, kl = x->kv_l * x->d;
    /* block_bwd's gradients, the fused GEMMs' output; sp: also a gathered gradient and a reduce-scattered one */
    /* hd > 1: the output layer's input gradient on its hN rows, before their reduce-scatter (and the loss's 3 hN) */
    int64_t head = x->hd > 1 ? x->hN * x->h + 3 * x->hN : 0;
    return (x->sp ? 6 : 4) * N * x->h + 2 * N * ql + 2 * N * kl + 3 * N * x->f_l + fused_floats(x) + head;
}

int st__xmodel_init(st__xmodel *x, const st_model *m, const st__xpart *pt, uint64_t seed, st_error *err) {
    int rc = 0, tp = pt->tp;
    float *init = NULL; /* the initial weights on the host, before their upload */
    memset(x, 0, sizeof *x);
    x->L = m->layers, x->h = m->hidden, x->a = m->heads, x->kv = m->kv_heads, x->d = m->head_dim;
    x->f = m->ffn, x->V = m->vocab, x->B = pt->B, x->Tg = pt->T;
    x->cp = pt->cp > 1 ? pt->cp : 1, x->cr = pt->cr, x->cp_comm = pt->cp_comm, x->T = pt->T / x->cp;
    x->swiglu = m->activation == ST_ACT_SWIGLU, x->rmsnorm = m->norm == ST_NORM_RMSNORM;
    x->rope = m->position == ST_POS_ROPE, x->bias = m->bias, x->tied = m->tied_embeddings;
    x->act = m->activation == ST_ACT_RELU ? ST__XACT_RELU : ST__XACT_GELU;
    x->tp = tp, x->tr = pt->tr, x->sp = pt->sp, x->first = pt->first, x->last = pt->last;
    x->attn_rows = tp > 1 ? pt->attn_rows : 0;
    x->hd = pt->hd > 1 ? pt->hd : 1, x->hr = pt->hr;
    x->recompute = pt->recompute, x->be = pt->be ? pt->be : &st__xbackend_cpu;
    x->Ns = pt->sp ? pt->B * x->T / tp : pt->B * x->T;
    x->E = m->experts, x->topk = m->experts_topk, x->fe = m->experts > 0 ? m->moe_ffn : 0;
    x->capacity_factor = m->capacity_factor, x->ep = pt->ep > 1 ? pt->ep : 1, x->er = pt->er;
    if (m->experts > 0 && (m->shared_experts > 0 || m->bias))
        return st_error_set(err, ST_EINVAL, NULL, "model",
                            "the cpu executor's experts have no shared experts and no biases (the model has %lld "
                            "shared experts, bias %d)", (long long)m->shared_experts, m->bias);
    if (x->E % x->ep || x->fe % tp)
        return st_error_set(err, ST_EINVAL, NULL, "plan",
                            "ep=%d must divide the experts (%lld), tp=%d their ffn (%lld)", x->ep, (long long)x->E, tp,
                            (long long)x->fe);
    x->moe_rows = tp > 1 && m->experts > 0 ? pt->moe_rows : 0;
    x->router_h = tp > 1 && m->experts > 0 ? pt->router_h : 0;
    if (x->moe_rows && (!pt->sp || x->ep > 1 || x->cp > 1 || x->E % tp))
        return st_error_set(err, ST_EINVAL, NULL, "plan",
                            "experts over the tp group need the rows split (sp=1), no ep or cp, and tp=%d to divide "
                            "the experts (%lld)", tp, (long long)x->E);
    if (x->router_h && (x->h % tp || x->ep > 1 || x->cp > 1))
        return st_error_set(err, ST_EINVAL, NULL, "plan",
                            "the router split by the hidden dimension needs no ep or cp, and tp=%d to divide the "
                            "hidden size (%lld)", tp, (long long)x->h);
    if (x->moe_rows) x->ep = tp, x->er = x->tr; /* the tp group is the experts' group */
    x->E_l = x->E / x->ep, x->e0 = x->er * x->E_l, x->fe_l = x->moe_rows ? x->fe : x->fe / tp;
    if (m->position == ST_POS_ALIBI)
        return st_error_set(err, ST_EINVAL, NULL, "model", "the cpu executor runs learned or rotary positions, not alibi");
    /* recompute=op keeps the outputs of its policy's GEMMs (block_redo): Megatron's sharding, dense and MoE blocks
     * (cp too: the backward's attn_core_fwd remakes the probabilities through cp's exchanges); the operator-level
     * splits (the ILP's rows, the router's or the experts' over tp, the output layer's own group) would each need
     * their own kept tensors */
    if (pt->recompute == 3 && (x->attn_rows || x->moe_rows || x->router_h || x->hd > 1))
        return st_error_set(err, ST_EINVAL, NULL, "recompute",
                            "the cpu executor runs recompute=op without an operator-level split (the plan has one): "
                            "use recompute=full or selective");
    if (x->attn_rows == 3 && ((x->a * x->d) % tp || (x->kv * x->d) % tp))
        return st_error_set(err, ST_EINVAL, NULL, "plan",
                            "QKV split along its fused width needs tp=%d to divide the queries' and keys' widths (%lld "
                            "and %lld kv heads x %lld)", tp, (long long)x->a, (long long)x->kv, (long long)x->d);
    if ((x->attn_rows < 2 && (x->a % tp || x->kv % tp)) || x->f % tp || x->V % tp)
        return st_error_set(err, ST_EINVAL, NULL, "plan",
                            "tp=%d must divide the heads (%lld), kv heads (%lld), ffn (%lld) and vocabulary (%lld)", tp,
                            (long long)x->a, (long long)x->kv, (long long)x->f, (long long)x->V);
    if (x->cp > 1 && pt->T % (2 * x->cp))
        return st_error_set(err, ST_EINVAL, NULL, "plan", "cp=%d needs the sequence (%lld) divisible by 2 x cp", x->cp,
                            (long long)pt->T);
    if (x->cp > 1 && pt->cp_comm == ST_CP_A2A && (x->a % ((int64_t)tp * x->cp) || x->kv % ((int64_t)tp * x->cp)))
        return st_error_set(err, ST_EINVAL, NULL, "plan",
                            "cp_comm=a2a needs tp x cp (%d) to divide the heads (%lld) and kv heads (%lld)", tp * x->cp,
                            (long long)x->a, (long long)x->kv);
    if (pt->sp && (pt->B * x->T) % tp)
        return st_error_set(err, ST_EINVAL, NULL, "plan",
                            "sp=1 needs the micro-batch's tokens (%lld) divisible by tp=%d", (long long)(pt->B * x->T),
                            tp);
    if (x->rope && x->d % 2)
        return st_error_set(err, ST_EINVAL, NULL, "model", "rotary embedding needs an even head dimension");
    if ((x->attn_rows == 1 || x->attn_rows == 2) && (!pt->sp || x->cp > 1))
        return st_error_set(err, ST_EINVAL, NULL, "plan",
                            "the attention on token rows needs the residual stream split by rows (sp=1) and no cp");
    if (x->attn_rows == 3 && x->cp > 1)
        return st_error_set(err, ST_EINVAL, NULL, "plan", "QKV split along its fused width runs without cp");
    if (x->attn_rows == 2 && pt->B % tp)
        return st_error_set(err, ST_EINVAL, NULL, "plan",
                            "the attention on token rows needs whole sequences on each rank: tp=%d must divide the "
                            "micro-batch's %lld", tp, (long long)pt->B);
    x->a_l = x->a / tp, x->kv_l = x->kv / tp, x->f_l = x->f / tp, x->V_l = x->V / tp, x->v0 = x->tr * x->V_l;
    x->hN = pt->B * x->T, x->hV_l = x->V_l, x->hv0 = x->v0;
    if (x->hd > 1) { /* the output layer over the hd group (operator-level plans): the tables whole */
        if ((tp > 1 && !pt->sp) || x->cp > 1 || x->V % x->hd || pt->sharded)
            return st_error_set(err, ST_EINVAL, NULL, "plan",
                                "the output layer vocabulary-parallel over the dp group needs the residual stream "
                                "split by rows over tp (sp=1), no cp, no ZeRO-3, and dp=%d to divide the vocabulary "
                                "(%lld)",
                                x->hd, (long long)x->V);
        x->V_l = x->V, x->v0 = 0;
        x->hN = x->hd * x->Ns, x->hV_l = x->V / x->hd, x->hv0 = x->hr * x->hV_l;
    }
    if (x->attn_rows == 3) /* the attention whole on every rank; QKV's and the projection's shares apart */
        x->wq_l = x->a * x->d / tp, x->wk_l = x->kv * x->d / tp, x->a_l = x->a, x->kv_l = x->kv;
    /* attn_rows 2: the activations sized for every head of the rows' B / tp sequences, as tp's heads of all rows
     * where tp divides the heads; else for every head of every row (tp times what the rows use) */
    if (x->attn_rows == 2 && (x->a % tp || x->kv % tp)) x->a_l = x->a, x->kv_l = x->kv;
    x->nchunks = pt->nchunks;
    x->cl0 = malloc((size_t)pt->nchunks * sizeof *x->cl0);
    x->cl1 = malloc((size_t)pt->nchunks * sizeof *x->cl1);
    if (!x->cl0 || !x->cl1) {
        rc = st_error_set(err, ST_ENOMEM, NULL, NULL, "out of memory");
        goto out;
    }
    for (int c = 0; c < pt->nchunks; c++) {
        x->cl0[c] = pt->l0[c], x->cl1[c] = pt->l1[c] > pt->l0[c] ? pt->l1[c] : pt->l0[c];
        x->nl += x->cl1[c] - x->cl0[c];
    }
    int nl = x->nl, cap = nl * (F_COUNT + 3 * (int)x->E_l) + H_COUNT + 1;
    x->tensors = calloc((size_t)cap, sizeof *x->tensors);
    x->idx = calloc((size_t)nl * F_COUNT + H_COUNT, sizeof *x->idx);
    x->lp = calloc((size_t)(nl > 0 ? nl : 1), sizeof *x->lp);
    x->lg = calloc((size_t)(nl > 0 ? nl : 1), sizeof *x->lg);
    if (!x->tensors || !x->idx || !x->lp || !x->lg ||
        build_table(x, m, cap, (int(*)[F_COUNT])x->idx, x->idx + (int64_t)nl * F_COUNT)) {
        rc = st_error_set(err, ST_ENOMEM, NULL, NULL, "out of memory");
        goto out;
    }
    if (pt->table) goto out; /* (the table's users seed what they hold: st__xmodel_init_value) */
    /* the flat buffers in the backend's memory (the cuda backend's: the GPU's); the weights seeded on
     * the host and uploaded once */
    x->work = x->be->mem_alloc(work_floats(x));
    if (!pt->sharded) { /* ZeRO-3's runtime holds shards and points each unit at it as it runs */
        x->params = x->be->mem_alloc(x->nparams);
        x->grads = x->be->mem_alloc(x->nparams);
        init = malloc((size_t)(x->nparams ? x->nparams : 1) * sizeof *init);
    }
    if (!x->work || (!pt->sharded && (!x->params || !x->grads || !init))) {
        rc = x->be->error ? x->be->error(err) : 0; /* the backend's reason (a device allocation's), else this */
        if (!rc)
            rc = st_error_set(err, ST_ENOMEM, NULL, NULL, "out of memory for %lld parameters", (long long)x->nparams);
        goto out;
    }
    if (!pt->sharded) {
        st__xmodel_point(x, 0, x->params, 0, x->nparams);
        st__xmodel_point(x, 1, x->grads, 0, x->nparams);
        st__xmodel_init_values(x, seed, init, 0, x->nparams);
        x->be->mem_copy(x->params, init, x->nparams);
    }
out:
    free(init);
    if (rc) st__xmodel_destroy(x);
    return rc;
}

void st__xmodel_destroy(st__xmodel *x) {
    free(x->cl0);
    free(x->cl1);
    free(x->tensors);
    free(x->idx);
    free(x->lp);
    free(x->lg);
    if (x->be) {
        x->be->mem_free(x->params);
        x->be->mem_free(x->grads);
        x->be->mem_free(x->work);
    }
    memset(x, 0, sizeof *x);
}

/* ---------------------------------------------------------------- activations */

typedef struct xlayer_acts {
    /* x, x2, mean and rstd: the residual stream's rows (Ns); n1, n2 (gathered with sp) and the rest: all N */
    float *x, *n1, *mean1, *rstd1, *q, *k, *v, *probs, *ao, *x2, *n2, *mean2, *rstd2, *h1, *h3, *g;
    float *qh, *kh, *vh; /* cp_comm=a2a: q, k and v of the whole sequence, this rank's heads of them */
    float *aor; /* attn_rows 1: the attention output of this rank's Ns rows, every head [Ns x a * d] (with 2: q, k,
                   v, probs and ao are the rows' and every head's, the same sizes as tp's heads of all rows); 3:
                   this rank's heads of it [N x wq_l], the projection's input (q, k, v, probs, ao: all rows and
                   heads) */
    /* recompute=op: what torchtitan's policy saves beyond the tensors above that it keeps (q without the rotary
     * embedding, v, ao and h1 lie in part 3 then): qw, wq's output before the rotary embedding (with it; else
     * q); pr, the projection's reduce-scatter output [Ns x h] (sp); y2, w2's output [N x h] (SwiGLU: with sp
     * the partial sums, without them the all-reduced sums, which the executor's all-reduce leaves in place);
     * yr, fc2's reduce-scatter output [Ns x h] (sp). NULL otherwise. */
    float *qw, *pr, *y2, *yr;
    struct xmoe *moe; /* an MoE block's (owned) */
} xlayer_acts;

/* A linear layer's weight gradient that a split backward left for later: dw += dout^T inp. */
typedef struct xwgrad {
    float *dw;
    const float *dout, *inp; /* dout: a copy in st__xacts.wmem, or the activations' own logits */
    int64_t N, C, OC;
    int layer; /* unit-wise (ZeRO-3): the unit whose input half left it (st__xacts.wlayer then) */
} xwgrad;

struct st__xacts {
    /* layout's parts 0 to 3 (1 and 2 NULL while a recompute dropped them), in the backend's memory;
     * part 2 on the host with cp (pmem_host), whose attention runs there (attn_core_fwd) */
    float *mem, *bmem, *pmem, *kmem;
    const st__xbackend *be; /* the model's: what holds them */
    int pmem_host;
    /* full and op recompute: part 1's floats, the room of one block's activations that the chunk's blocks
     * share (in_room); 0 otherwise */
    int64_t room_n;
    /* after st__xmodel_backward_input: the weight gradients it left (nwg of wg), their output
     * gradients' copies in wmem (wused floats of it taken), and those of their inputs that lay in the room */
    xwgrad *wg;
    int nwg;
    float *wmem;
    int64_t wused;
    int dropped;              /* a recompute dropped activations that st__xmodel_recompute makes again */
    /* the block whose dropped activations the room holds (-1: none); lazy: st__xmodel_recompute ran, and
     * the backward makes each block's again right before that block's backward (redo_block) */
    int built, lazy;
    /* unit-wise (ZeRO-3): the unit an input half runs; weight halves run */
    int wlayer, wnext;
    int fnext, bnext, flip;   /* units run forward, backward; which work buffer holds the gradient */
    int chunk, head, tail, nl; /* its chunk; whether that holds the embedding, the loss; its blocks */
    int32_t *tokens, *targets; /* the rows' (row_tokens), where the chunk holds the embedding or the loss */
    int32_t *htgt;             /* hd > 1, where it holds the loss: htgt[1 + m] the target of the output layer's row m */
    xlayer_acts *lay; /* per block; lay[i + 1].x is block i's output, in `out` after the last */
    float *out, *nf, *meanf, *rstdf, *logits; /* logits hold the probabilities after the forward */
};

/* n floats at *off into base (NULL: only counted) */
static float *carve(float *base, int64_t *off, int64_t n) {
    float *r = base ? base + *off : NULL;
    *off += n;
    return r;
}

/* Counts (base NULL: the floats of each part into n) or carves the activations of a micro-batch's
 * chunk of nl blocks (tail: it holds the loss) from four parts: 0, what every recompute keeps (the
 * chunk's output, the loss's); 1, the blocks' (with full and op recompute one block's, a room that every
 * block uses in turn: the forward drops each block's after its forward, the backward makes each block's
 * again right before that block's backward, redo_block); 2, the attention probabilities (with any
 * recompute one block's room alike); 3, what full and op recompute keep of each block: full, its input
 * (Megatron-LM's per-block checkpoint, which the cost model prices, cost/memory.c st__block_act); op, its
 * input, wq's, wv's and w1's outputs (SwiGLU's w2's too), the attention's output and the reduce-scatters'
 * (sp), the block's op_saved_bytes (src/core/opgraph.c, op_sac); empty otherwise. */
/* whether this rank's block k (of all its chunks') is an MoE block (its router in the table) */
static int block_moe(const st__xmodel *x, int k) { return x->idx[(int64_t)k * F_COUNT + F_ROUTER] >= 0; }

static void layout(const st__xmodel *x, int nl, int tail, st__xacts *a, float *const *base, int64_t *n) {
    int64_t N = x->B * x->T, S = x->Ns, h = x->h, ql = x->a_l * x->d, kl = x->kv_l * x->d, o[4] = {0, 0, 0, 0};
    int64_t top1 = 0, top2 = 0; /* the rooms' floats: one block's */
    float *b0 = base ? base[0] : NULL, *b1 = base ? base[1] : NULL, *b2 = base ? base[2] : NULL;
    float *b3 = base ? base[3] : NULL;
    int op = x->recompute == 3, room1 = x->recompute >= 2, room2 = x->recompute >= 1;
    float *bk = op ? b3 : b1, *bx = room1 ? b3 : b1; /* what recompute=op keeps; each block's input */
    int64_t *ok = op ? &o[3] : &o[1], *ox = room1 ? &o[3] : &o[1];
    for (int l = 0; l < nl; l++) {
        xlayer_acts t = {0};
        int moe = block_moe(x, chunk_first(x, a->chunk) + l); /* its MLP's activations are its xmoe's */
        if (room1) o[1] = 0; /* every block's at the same places */
        if (room2) o[2] = 0;
        t.x = carve(bx, ox, S * h), t.n1 = carve(b1, &o[1], N * h);
        t.mean1 = carve(b1, &o[1], S), t.rstd1 = carve(b1, &o[1], S);
        t.q = x->rope ? carve(b1, &o[1], N * ql) : carve(bk, ok, N * ql); /* rotated in place: kept as qw */
        t.k = carve(b1, &o[1], N * kl), t.v = carve(bk, ok, N * kl);
        t.probs = carve(b2, &o[2], x->B * x->a_l * x->T * x->Tg), t.ao = carve(bk, ok, N * ql);
        if (op) {
            t.qw = x->rope ? carve(bk, ok, N * ql) : NULL;
            t.pr = x->sp ? carve(bk, ok, S * h) : NULL;
            t.y2 = x->swiglu && !moe ? carve(bk, ok, N * h) : NULL;
            t.yr = x->sp ? carve(bk, ok, S * h) : NULL;
        }
        if (x->cp > 1 && x->cp_comm == ST_CP_A2A) /* kept with the probabilities, which are made from them */
            t.qh = carve(b2, &o[2], N * ql), t.kh = carve(b2, &o[2], N * kl), t.vh = carve(b2, &o[2], N * kl);
        if (x->attn_rows == 1) t.aor = carve(b1, &o[1], S * x->a * x->d);
        if (x->attn_rows == 3) t.aor = carve(b1, &o[1], N * x->wq_l);
        t.x2 = carve(b1, &o[1], S * h), t.n2 = carve(b1, &o[1], N * h);
        t.mean2 = carve(b1, &o[1], S), t.rstd2 = carve(b1, &o[1], S);
        if (!moe) {
            t.h1 = carve(bk, ok, N * x->f_l), t.h3 = x->swiglu ? carve(b1, &o[1], N * x->f_l) : NULL;
            t.g = carve(b1, &o[1], N * x->f_l);
        }
        if (base) t.moe = a->lay[l].moe, a->lay[l] = t;
        if (o[1] > top1) top1 = o[1];
        if (o[2] > top2) top2 = o[2];
    }
    if (room1) o[1] = top1;
    if (room2) o[2] = top2;
    float *out = carve(b0, &o[0], S * h), *nf = NULL, *meanf = NULL, *rstdf = NULL, *logits = NULL;
    if (tail) {
        nf = carve(b0, &o[0], (x->hN > N ? x->hN : N) * h), meanf = carve(b0, &o[0], S), rstdf = carve(b0, &o[0], S);
        logits = carve(b0, &o[0], x->hN * x->hV_l);
    }
    if (base) a->out = out, a->nf = nf, a->meanf = meanf, a->rstdf = rstdf, a->logits = logits;
    if (base) a->room_n = room1 ? o[1] : 0;
    if (n) n[0] = o[0], n[1] = o[1], n[2] = o[2], n[3] = o[3];
}

static void moe_free(struct xmoe *e);

/* n floats of a's activations where its backend keeps them (host 1: the host's), zeroed; NULL when out of memory */
static float *acts_alloc(const st__xacts *a, int64_t n, int host) {
    return host ? calloc((size_t)(n + 1), sizeof(float)) : a->be->mem_alloc(n + 1);
}

static void acts_release(const st__xacts *a, float **p, int host) {
    if (host) free(*p);
    else a->be->mem_free(*p);
    *p = NULL;
}

void st__xacts_free(st__xacts *a) {
    if (!a) return;
    for (int l = 0; a->lay && l < a->nl; l++) moe_free(a->lay[l].moe);
    acts_release(a, &a->mem, 0);
    acts_release(a, &a->bmem, 0);
    acts_release(a, &a->pmem, a->pmem_host);
    acts_release(a, &a->kmem, 0);
    free(a->tokens);
    free(a->lay);
    free(a->wg);
    acts_release(a, &a->wmem, 0);
    free(a);
}

/* ---------------------------------------------------------------- forward */

static void allreduce(st__xmodel *x, float *buf, int64_t n, int max) {
    if (x->tp > 1 && x->comm.allreduce) x->comm.allreduce(x->comm.ctx, buf, n, max);
}

/* where this rank's rows lie in a gathered [N x h] buffer (0 without sp) */
static float *own_rows(const st__xmodel *x, float *full) { return full + (x->sp ? x->tr * x->Ns * x->h : 0); }

/* sp: the rows of [N x h] `full` (this rank's at own_rows) from every tp rank (f in forward) */
static void gather_rows(st__xmodel *x, float *full) {
    if (x->sp && x->tp > 1 && x->comm.allgather) x->comm.allgather(x->comm.ctx, full, x->Ns * x->h);
}

/* The partial sums `part` [N x h] of a row-parallel GEMM summed over tp into out [Ns x h]: all-reduced
 * (g; out is part), or with sp reduce-scattered to this rank's rows. */
static void sum_rows(st__xmodel *x, float *out, float *part) {
    int64_t n = x->Ns * x->h;
    if (!x->sp) allreduce(x, part, n, 0);
    else if (x->tp > 1 && x->comm.reduce_scatter) x->comm.reduce_scatter(x->comm.ctx, out, part, n);
    else x->be->mem_copy(out, part, n);
}

/* sp: the column sums of dout [Ns x h] into db (each rank's rows' part; st__xmodel_sp_grads sums them) */
static void bias_grad(const st__xmodel *x, float *db, const float *dout, int64_t S, int64_t h) {
    if (db) x->be->bias_grad(db, dout, S, h);
}

static void add_bias(const st__xmodel *x, float *out, const float *b, int64_t N, int64_t C) {
    if (b) x->be->bias_add(out, b, N, C);
}

/* block_bwd's scratch for the fused GEMMs' output (fused_floats), after its gradients (work_floats) */
static float *fused_buf(const st__xmodel *x) {
    int64_t N = x->B * x->T;
    return x->work + N * (4 * x->h + 2 * (x->a_l + x->kv_l) * x->d + 3 * x->f_l);
}

/* `fused` [N x (w[0] + .. + w[n - 1])] and its n column blocks part[i] [N x w[i]]: split into the
 * parts (dir 0) or joined from them (dir 1) */
static void split_cols(const st__xmodel *x, float *fused, float *const *part, const int64_t *w, int n, int64_t N,
                       int dir) {
    int64_t W = 0;
    for (int i = 0; i < n; i++) W += w[i];
    for (int64_t i = 0, c = 0; i < n; c += w[i++]) /* a block of columns at a time (on a GPU, one copy each) */
        if (dir) x->be->mem_copy2d(fused + c, W, part[i], w[i], w[i], N);
        else x->be->mem_copy2d(part[i], w[i], fused + c, W, w[i], N);
}

/* n linear layers on the same input, as the lowering names them (Megatron-LM's fused linear_qkv, [N x h]
 * by [h x (q + 2 kv)], and its gated linear_fc1, [h x 2 ffn]): their weights [w[i] x C] lie back to back
 * from w0 (build_table), their biases from b0 (NULL: none); out[i] [N x w[i]] = inp [N x C] times weight
 * i, plus bias i. As Megatron-LM runs them (linear_qkv, linear_fc1): one wide GEMM into fused_buf, split into
 * the parts. Under recompute=op, as torchtitan's Llama runs them (wq, wk, wv, w1, w3 separate linears, whose
 * every second aten.mm its policy saves): one GEMM per part, each into its output, so that a part's GEMM
 * alone, which the recompute runs again (block_redo: wk's, w3's), is the very call the forward made. A column
 * block of one wide GEMM need not equal that block computed alone bit for bit: BLAS picks its kernel by shape
 * (OpenBLAS 0.3.21 on an AVX-512 machine: 889 of the 1,024 elements of tiny-llama's wk output at tp=2,
 * [32 tokens x 32] by 128, differed from the same columns of the wide [32 x 128] GEMM), and the recompute must
 * give the forward's numbers. (So recompute=op's losses equal the reference's within rounding, not the
 * no-recompute run's bit for bit.) */
static void fused_fwd(st__xmodel *x, float *const *out, const int64_t *w, int n, const float *inp, const float *w0,
                      const float *b0, int64_t N, int64_t C) {
    if (x->recompute == 3) {
        for (int64_t i = 0, r = 0; i < n; r += w[i++])
            x->be->mm_fwd(out[i], inp, w0 + r * C, b0 ? b0 + r : NULL, N, C, w[i], 0);
        return;
    }
    int64_t W = 0;
    for (int i = 0; i < n; i++) W += w[i];
    float *f = fused_buf(x);
    x->be->mm_fwd(f, inp, w0, b0, N, C, W, 0);
    split_cols(x, f, out, w, n, N, 0);
}

/* q, k, v [R x qw], [R x kw] twice, from the norm's output n1 [R x h] (fused_fwd) */
static void qkv_fwd(st__xmodel *x, const st__xlayer *w, xlayer_acts *t, const float *n1, int64_t R, int64_t qw,
                    int64_t kw) {
    float *out[3] = {t->q, t->k, t->v};
    const int64_t width[3] = {qw, kw, kw};
    assert(w->wk == w->wq + qw * x->h && w->wv == w->wk + kw * x->h);
    assert(!w->bq || (w->bk == w->bq + qw && w->bv == w->bk + kw));
    fused_fwd(x, out, width, 3, n1, w->wq, w->bq, R, x->h);
}

/* attn_rows 3: rank r's block blk [N x (w[0] + .. + w[n - 1])] and its columns r * w[i] .. (r + 1) * w[i] of the
 * whole tensors whole[i] [N x tp * w[i]]: into them (dir 0) or from them (dir 1) */
static void rank_cols(const st__xmodel *x, float *blk, float *const *whole, const int64_t *w, int n, int r, int dir) {
    int64_t N = x->B * x->T, W = 0;
    for (int i = 0; i < n; i++) W += w[i];
    for (int64_t i = 0, c = 0; i < n; c += w[i++]) { /* a block of columns at a time */
        float *b = blk + c, *f = whole[i] + r * w[i];
        int64_t fl = x->tp * w[i];
        if (dir) x->be->mem_copy2d(b, W, f, fl, w[i], N);
        else x->be->mem_copy2d(f, fl, b, W, w[i], N);
    }
}

/* attn_rows 3: q, k, v whole ([N x a * d], [N x kv * d] twice) from this rank's share of QKV's fused width: its
 * rows of wq, wk and wv (back to back, build_table) as one GEMM on the gathered norm output n1, its [N x (wq_l + 2
 * wk_l)] output all-gathered over tp (the ILP's resharding of QKV's 'e' split to the replicated attention), each
 * rank's block then its columns of q, k and v */
static void wide_qkv_fwd(st__xmodel *x, const st__xlayer *w, xlayer_acts *t) {
    int64_t N = x->B * x->T, wd[3] = {x->wq_l, x->wk_l, x->wk_l}, W = wd[0] + 2 * wd[1], n = N * W;
    float *f = fused_buf(x), *out[3] = {t->q, t->k, t->v}; /* tp x n floats: fused_floats of the whole q, k, v */
    assert(w->wk == w->wq + wd[0] * x->h && w->wv == w->wk + wd[1] * x->h);
    assert(!w->bq || (w->bk == w->bq + wd[0] && w->bv == w->bk + wd[1]));
    x->be->mm_fwd(f + x->tr * n, t->n1, w->wq, w->bq, N, x->h, W, 0);
    if (x->comm.allgather) x->comm.allgather(x->comm.ctx, f, n);
    for (int r = 0; r < x->tp; r++) rank_cols(x, f + r * n, out, wd, 3, r, 0);
}

/* ---------------------------------------------------------------- experts */

/* What an MoE block keeps from its forward for its backward. A (token, expert) pair is a slot
 * n * topk + j: token n's j-th choice. */
typedef struct xmoe {
    int64_t nsend, R;         /* kept slots (sent, by expert), rows this rank's experts took */
    int *slot;                /* nsend: the slot of each sent row */
    int *scount, *rcount;     /* ep each: rows to and from each rank of the ep group */
    int *perm, *first;        /* R: the received row of each expert-sorted row; E_l + 1: each expert's first */
    int *top;                 /* N * topk: each slot's expert */
    float *s;                 /* N * topk: its weight, the softmax over the token's top-k logits */
    float *xin, *h1, *h3, *g; /* R rows, expert-sorted: input, fc1 (and SwiGLU's other half), activation */
    float *y;                 /* nsend x h: each kept slot's expert output (partial over tp), in send order */
    float *n2h;               /* moe_rows: the router's input, every row's h / tp columns of this rank */
    /* the device path (moe_fwd_dev: be non-NULL): top, s, the send order and each slot's place in it, perm (int32
     * in the backend's floats), xin .. g and y, all tensors of the backend's; scount, rcount, first on the host */
    const st__xbackend *be;
    float *dtop, *dorder, *dwhere, *dperm;
} xmoe;

static void moe_free(xmoe *e) {
    if (!e) return;
    if (e->be) {
        float *d[] = {e->dtop, e->dorder, e->dwhere, e->dperm, e->s, e->xin, e->h1, e->h3, e->g, e->y};
        for (size_t i = 0; i < sizeof d / sizeof *d; i++) e->be->mem_free(d[i]);
        free(e->scount), free(e->rcount), free(e->first);
        free(e);
        return;
    }
    free(e->slot), free(e->scount), free(e->rcount), free(e->perm), free(e->first), free(e->top), free(e->s);
    free(e->xin), free(e->h1), free(e->h3), free(e->g), free(e->y), free(e->n2h);
    free(e);
}

/* rows to the ep group's ranks and back (dispatch and combine); without ep a copy. New, or NULL. */
static float *exchange(st__xmodel *x, const float *send, const int *scount, int *rcount, int64_t width) {
    if (x->moe_rows) return x->tp_a2av.fn(x->tp_a2av.ctx, send, scount, rcount, width);
    if (x->ep > 1 && x->comm.alltoallv) return x->comm.alltoallv(x->comm.ctx, send, scount, rcount, width);
    float *r = malloc((size_t)(scount[0] * width + 1) * sizeof *r);
    rcount[0] = scount[0];
    if (r) memcpy(r, send, (size_t)(scount[0] * width) * sizeof *r);
    return r;
}

/* rows of `from` [.. x width] moved: to[i] = from[perm[i]] (dir 0) or to[perm[i]] = from[i] (dir 1) */
static void permute(float *to, const float *from, const int *perm, int64_t n, int64_t width, int dir) {
    size_t b = (size_t)width * sizeof *to;
    for (int64_t i = 0; i < n; i++)
        memcpy(dir ? to + perm[i] * width : to + i * width, dir ? from + i * width : from + perm[i] * width, b);
}

typedef struct pick {
    int64_t e;
    float s;
    int slot;
} pick;

/* by expert, then the higher weight first (the drop policy "probs"), then the earlier slot */
static int pick_cmp(const void *pa, const void *pb) {
    const pick *a = pa, *b = pb;
    if (a->e != b->e) return a->e < b->e ? -1 : 1;
    if (a->s != b->s) return a->s > b->s ? -1 : 1;
    return (a->slot > b->slot) - (a->slot < b->slot);
}

/* moe_rows: the router's logits of this rank's rows, logits [Ns x E], from their norm output n2 [Ns x h] as the
 * ILP splits the router ('h', row-parallel): the rows resharded to this rank's h / tp columns of every row by an
 * all-to-all in the tp group (kept in e->n2h for the backward), the partial logits of every row reduce-scattered
 * to the rows. 0 or ST_ENOMEM. */
static int router_rows_fwd(st__xmodel *x, const st__xlayer *w, const float *n2, float *logits, xmoe *e) {
    int64_t S = x->Ns, N = x->B * x->T, hl = x->h / x->tp, E = x->E;
    float *snd = malloc((size_t)(S * x->h) * sizeof *snd), *part = malloc((size_t)(N * E) * sizeof *part);
    int rc = snd && part && (e->n2h = malloc((size_t)(N * hl) * sizeof *e->n2h)) ? 0 : ST_ENOMEM;
    if (rc) goto out;
    for (int r = 0; r < x->tp; r++) /* block r: these rows' columns r * hl .. (r + 1) * hl */
        for (int64_t i = 0; i < S; i++)
            memcpy(snd + (r * S + i) * hl, n2 + i * x->h + r * hl, (size_t)hl * sizeof *snd);
    x->tp_a2a.fn(x->tp_a2a.ctx, snd, e->n2h, S * hl); /* block j: rank j's rows, this rank's columns */
    x->be->mm_fwd(part, e->n2h, w->router, NULL, N, hl, E, 0);
    if (x->comm.reduce_scatter) x->comm.reduce_scatter(x->comm.ctx, logits, part, S * E);
out:
    free(snd);
    free(part);
    return rc;
}

/* router_h without moe_rows (expert tensor parallelism): the logits of every row, logits [N x E], from their norm
 * output n2 [N x h] (every row's, as the experts take them) as the ILP splits the router ('h', row-parallel): this
 * rank's h / tp columns of every row (kept in e->n2h for the backward) times its columns of the router, the partial
 * logits all-reduced over tp, so every rank routes every row alike. 0 or ST_ENOMEM. */
static int router_cols_fwd(st__xmodel *x, const st__xlayer *w, const float *n2, float *logits, xmoe *e) {
    int64_t N = x->B * x->T, hl = x->h / x->tp;
    if (!(e->n2h = malloc((size_t)(N * hl) * sizeof *e->n2h))) return ST_ENOMEM;
    for (int64_t i = 0; i < N; i++) memcpy(e->n2h + i * hl, n2 + i * x->h + x->tr * hl, (size_t)hl * sizeof *e->n2h);
    x->be->mm_fwd(logits, e->n2h, w->router, NULL, N, hl, x->E, 0);
    allreduce(x, logits, N * x->E, 0);
    return 0;
}

/* The router and the kept slots of N tokens (n2 [N x h]; moe_rows: this rank's Ns rows): top, s, slot (by expert)
 * and scount. 0 or ST_ENOMEM. */
static int moe_route(st__xmodel *x, const st__xlayer *w, const float *n2, int64_t N, xmoe *e) {
    int64_t K = x->topk, E = x->E;
    float *logits = malloc((size_t)(N * E) * sizeof *logits);
    pick *pk = malloc((size_t)(N * K) * sizeof *pk);
    int rc = logits && pk ? 0 : ST_ENOMEM;
    if (rc) goto out;
    if (x->moe_rows && x->router_h) {
        if ((rc = router_rows_fwd(x, w, n2, logits, e))) goto out;
    } else if (x->router_h) {
        if ((rc = router_cols_fwd(x, w, n2, logits, e))) goto out;
    } else x->be->mm_fwd(logits, n2, w->router, NULL, N, x->h, E, 0); /* whole, on the rows the block routes */
    for (int64_t n = 0; n < N; n++) {
        const float *lg = logits + n * E;
        int *top = e->top + n * K;
        float mx = -INFINITY, sum = 0;
        for (int64_t j = 0; j < K; j++) { /* the j-th largest logit, the lower expert on a tie */
            int64_t best = -1;
            for (int64_t c = 0; c < E; c++) {
                int taken = 0;
                for (int64_t i = 0; i < j; i++) taken |= top[i] == c;
                if (!taken && (best < 0 || lg[c] > lg[best])) best = c;
            }
            top[j] = (int)best;
            if (lg[best] > mx) mx = lg[best];
        }
        for (int64_t j = 0; j < K; j++) sum += e->s[n * K + j] = expf(lg[top[j]] - mx);
        for (int64_t j = 0; j < K; j++) {
            e->s[n * K + j] /= sum;
            pk[n * K + j] = (pick){top[j], e->s[n * K + j], (int)(n * K + j)};
        }
    }
    qsort(pk, (size_t)(N * K), sizeof *pk, pick_cmp);
    /* capacity: GShard's and Megatron's ceil(factor x tokens x k / experts) per expert */
    int64_t cap = x->capacity_factor > 0 ? (int64_t)ceil(x->capacity_factor * (double)(N * K) / (double)E) : N * K;
    e->nsend = 0;
    for (int64_t i = 0, run = 0; i < N * K; i++) {
        run = i > 0 && pk[i].e == pk[i - 1].e ? run + 1 : 0;
        if (run >= cap) continue;
        e->slot[e->nsend++] = pk[i].slot;
        e->scount[pk[i].e / x->E_l]++;
    }
out:
    free(logits);
    free(pk);
    return rc;
}

/* ---- the device path: Megatron's sharding (no moe_rows, no router_h), every tensor the backend's
 *
 * The routing, the dispatch's gather, the received rows' sort by expert, the combine and their backward run as
 * the backend's kernels (st__xbackend's moe_*: exec/moe_kernels.h, the host routing's arithmetic and order) on
 * its memory, and the all-to-alls on it (st__xcomm's alltoallv_dev): what crosses to the host is the counts the
 * host needs to size the GEMMs and the all-to-all, E per expert kept counts and El + 1 sorted rows' offsets per
 * forward (and the ep group's row counts, exchanged). The operator-level variants (moe_rows, router_h) stay on
 * the host path below them. */

/* rows to the ep group's ranks and back on the backend's memory; without ep a copy. New (mem_free), or NULL. */
static float *exchange_dev(st__xmodel *x, const float *send, const int *scount, int *rcount, int64_t width) {
    if (x->ep > 1 && x->comm.alltoallv_dev) return x->comm.alltoallv_dev(x->comm.ctx, send, scount, rcount, width);
    float *r = x->be->mem_alloc(scount[0] * width);
    rcount[0] = scount[0];
    if (r) x->be->mem_copy(r, send, scount[0] * width);
    return r;
}

#define I32(p) ((int32_t *)(void *)(p))

/* this rank's experts on their sorted rows e->xin: fc1 (SwiGLU's two halves) into e->h1 (and e->h3), the activation
 * into e->g, fc2 into yo [R x h] */
static void experts_fwd_dev(st__xmodel *x, const st__xlayer *w, xmoe *e, float *yo) {
    const st__xbackend *be = x->be;
    int64_t h = x->h, fl = x->fe_l;
    for (int64_t c = 0; c < x->E_l; c++) {
        int64_t a = e->first[c], n = e->first[c + 1] - a;
        float *hh1 = e->h1 + a * fl, *hh3 = e->h3 + a * fl, *gg = e->g + a * fl;
        be->mm_fwd(hh1, e->xin + a * h, w->ew1 + c * fl * h, NULL, n, h, fl, 0);
        if (x->swiglu) {
            be->mm_fwd(hh3, e->xin + a * h, w->ew3 + c * fl * h, NULL, n, h, fl, 0);
            be->swiglu_fwd(gg, hh1, hh3, n * fl);
        } else {
            be->act_fwd(gg, hh1, n * fl, x->act);
        }
        be->mm_fwd(yo + a * h, gg, w->ew2 + c * h * fl, NULL, n, fl, h, 0);
    }
}

static int moe_fwd_dev(st__xmodel *x, const st__xlayer *w, xlayer_acts *t, float *part) {
    const st__xbackend *be = x->be;
    int64_t N = x->B * x->T, K = x->topk, h = x->h, fl = x->fe_l, El = x->E_l, E = x->E, NK = N * K;
    xmoe *e = t->moe = calloc(1, sizeof *e);
    if (!e) return ST_ENOMEM;
    e->be = be;
    int32_t *cnt = malloc((size_t)(E + El + 1) * sizeof *cnt); /* the counts on the host: E, then El + 1 */
    float *logits = be->mem_alloc(N * E), *dcnt = be->mem_alloc(E + El + 1), *send = NULL, *recv = NULL, *yo = NULL;
    float *back = NULL;
    int *got = malloc((size_t)x->ep * sizeof *got), rc = ST_ENOMEM;
    e->scount = calloc((size_t)x->ep, sizeof *e->scount);
    e->rcount = calloc((size_t)x->ep, sizeof *e->rcount);
    e->first = calloc((size_t)El + 1, sizeof *e->first);
    e->dtop = be->mem_alloc(NK), e->s = be->mem_alloc(NK), e->dorder = be->mem_alloc(NK);
    e->dwhere = be->mem_alloc(NK);
    if (!cnt || !logits || !dcnt || !got || !e->scount || !e->rcount || !e->first || !e->dtop || !e->s ||
        !e->dorder || !e->dwhere)
        goto out;
    be->mm_fwd(logits, t->n2, w->router, NULL, N, h, E, 0);
    be->moe_route(I32(e->dtop), e->s, logits, N, E, K);
    /* capacity: GShard's and Megatron's ceil(factor x tokens x k / experts) per expert */
    int64_t cap = x->capacity_factor > 0 ? (int64_t)ceil(x->capacity_factor * (double)NK / (double)E) : NK;
    be->moe_place(I32(dcnt), I32(e->dorder), I32(e->dwhere), I32(e->dtop), e->s, NK, E, cap);
    be->mem_copy((float *)(void *)cnt, dcnt, E); /* the kept counts (E ints) to the host */
    e->nsend = 0;
    for (int64_t c = 0; c < E; c++) e->nsend += cnt[c], e->scount[c / El] += cnt[c];
    /* dispatch: each kept slot's row and its expert's place on the receiving rank */
    if (!(send = be->mem_alloc(e->nsend * (h + 1)))) goto out;
    be->moe_gather(send, t->n2, I32(e->dorder), I32(e->dtop), N, e->nsend, K, h, El);
    if (!(recv = exchange_dev(x, send, e->scount, e->rcount, h + 1))) goto out;
    e->R = 0;
    for (int r = 0; r < x->ep; r++) e->R += e->rcount[r];
    int64_t R = e->R;
    e->dperm = be->mem_alloc(R), e->xin = be->mem_alloc(R * h), e->h1 = be->mem_alloc(R * fl);
    e->h3 = be->mem_alloc(R * fl), e->g = be->mem_alloc(R * fl), yo = be->mem_alloc(R * h), back = be->mem_alloc(R * h);
    if (!e->dperm || !e->xin || !e->h1 || !e->h3 || !e->g || !yo || !back) goto out;
    /* the received rows sorted by expert; the experts' offsets (El + 1 ints) to the host for the GEMMs' sizes */
    be->moe_sort(e->xin, I32(e->dperm), I32(dcnt + E), recv, R, h, El);
    be->mem_copy((float *)(void *)(cnt + E), dcnt + E, El + 1);
    memcpy(e->first, cnt + E, (size_t)(El + 1) * sizeof *e->first);
    experts_fwd_dev(x, w, e, yo);
    /* combine: the outputs back to their tokens' ranks in the order they were sent, weighted and summed */
    be->moe_permute(back, yo, I32(e->dperm), R, h, 1);
    if (!(e->y = exchange_dev(x, back, e->rcount, got, h))) goto out;
    be->moe_combine(part, e->y, e->s, I32(e->dwhere), N, e->nsend, K, h, 0);
    rc = 0;
out:
    free(cnt), free(got);
    be->mem_free(logits), be->mem_free(dcnt), be->mem_free(send), be->mem_free(recv), be->mem_free(yo);
    be->mem_free(back);
    return rc;
}

/* recompute=op (file comment): what the forward keeps of an MoE block on the device path is its routing (top, s,
 * the send order and places, perm, the counts: N k and R ints or floats) and, with ep > 1, the all-to-alls' outputs,
 * the received rows xin and the returned rows y (torchtitan's policy saves the functional all-to-all's output,
 * pytorch/torchtitan#1672; the cost model's moe_sac, src/core/opgraph.c); the experts' fc1 outputs and activations,
 * and without ep the rows (a gather and a sort, no all-to-all) are dropped here after the forward and made again by
 * moe_redo_dev before the block's backward, which drops them again when it ends (bwd_unit: the MoE MLP's backward
 * runs whole in a split backward's input half too), so one block's are held at a time, as the room's. */
static void moe_drop(st__xmodel *x, xmoe *e) {
    if (!e || !e->be) return;
    float **d[] = {&e->h1, &e->h3, &e->g, &e->xin, &e->y};
    for (size_t i = 0; i < sizeof d / sizeof *d; i++)
        if (i < 3 || x->ep == 1) e->be->mem_free(*d[i]), *d[i] = NULL;
}

/* block_redo's MoE MLP on the device path: the operators the lowering's recompute names (router, expert_fc1,
 * expert_act, expert_fc2, moe_combine: torchtitan forces the router's gate to recompute and its grouped_mm experts
 * are on no save list), each as moe_fwd_dev runs it, from the block's remade norm output t->n2 and what moe_drop
 * kept: the router's GEMM and routing again (the same logits and so the same top, weights, order and places,
 * rewritten: the kernels count, they do not race, exec/moe_kernels.h), without ep the dispatch's gather and sort
 * (with ep its all-to-all's output kept, not run again), the experts' GEMMs and activation, without ep the combine's
 * rows (with ep its all-to-all's output kept: fc2's output unused, as a replay runs every operator its policy did
 * not save), and the weighted sum into part [N x h] (partial over tp). 0 or ST_ENOMEM. */
static int moe_redo_dev(st__xmodel *x, const st__xlayer *w, xlayer_acts *t, float *part) {
    const st__xbackend *be = x->be;
    xmoe *e = t->moe;
    int64_t N = x->B * x->T, K = x->topk, h = x->h, fl = x->fe_l, El = x->E_l, E = x->E, NK = N * K, R = e->R;
    int64_t cap = x->capacity_factor > 0 ? (int64_t)ceil(x->capacity_factor * (double)NK / (double)E) : NK;
    float *logits = be->mem_alloc(N * E), *dcnt = be->mem_alloc(E + El + 1), *send = NULL, *yo = be->mem_alloc(R * h);
    int32_t *cnt = NULL; /* the recomputed kept counts (E), on the host */
    int rc = ST_ENOMEM;
    moe_drop(x, e); /* (dropped already: after the forward, or after the block's last backward) */
    if (!logits || !dcnt || !yo) goto out;
    be->mm_fwd(logits, t->n2, w->router, NULL, N, h, E, 0);
    be->moe_route(I32(e->dtop), e->s, logits, N, E, K);
    be->moe_place(I32(dcnt), I32(e->dorder), I32(e->dwhere), I32(e->dtop), e->s, NK, E, cap);
    /* the kept rows follow the forward's routing: a routing that differs (the kernels are deterministic; a
     * backend that is not) stops the step rather than pair rows with other tokens' */
    if (!(cnt = malloc((size_t)E * sizeof *cnt))) goto out;
    be->mem_copy((float *)(void *)cnt, dcnt, E);
    for (int64_t c = 0, r = 0, sent = 0, all = 0; c < E; c++) {
        sent += cnt[c], all += cnt[c];
        if ((c + 1) % El) continue;
        if (sent != e->scount[r++]) rc = ST_EINVAL;
        sent = 0;
        if (c == E - 1 && all != e->nsend) rc = ST_EINVAL;
    }
    if (rc == ST_EINVAL) goto out;
    if (x->ep == 1) { /* the dispatch: the kept slots' rows, sorted by expert (R = nsend: no exchange) */
        if (!(send = be->mem_alloc(e->nsend * (h + 1))) || !(e->xin = be->mem_alloc(R * h))) goto out;
        be->moe_gather(send, t->n2, I32(e->dorder), I32(e->dtop), N, e->nsend, K, h, El);
        be->moe_sort(e->xin, I32(e->dperm), I32(dcnt + E), send, R, h, El);
    }
    e->h1 = be->mem_alloc(R * fl), e->h3 = be->mem_alloc(R * fl), e->g = be->mem_alloc(R * fl);
    if (!e->h1 || !e->h3 || !e->g) goto out;
    experts_fwd_dev(x, w, e, yo);
    if (x->ep == 1) { /* the combine's rows: the outputs in the send order */
        if (!(e->y = be->mem_alloc(R * h))) goto out;
        be->moe_permute(e->y, yo, I32(e->dperm), R, h, 1);
    }
    be->moe_combine(part, e->y, e->s, I32(e->dwhere), N, e->nsend, K, h, 0);
    rc = 0;
out:
    free(cnt);
    be->mem_free(logits), be->mem_free(dcnt), be->mem_free(send), be->mem_free(yo);
    return rc;
}

static int moe_bwd_dev(st__xmodel *x, const st__xlayer *w, st__xlayer *gw, const xlayer_acts *t, const float *dout,
                       float *dn) {
    const st__xbackend *be = x->be;
    const xmoe *e = t->moe;
    int64_t N = x->B * x->T, S = x->Ns, K = x->topk, E = x->E, h = x->h, fl = x->fe_l, R = e->R;
    float *ds = be->mem_alloc(N * K), *dy = be->mem_alloc(e->nsend * h), *rdy = NULL, *dys = be->mem_alloc(R * h);
    float *dx = be->mem_alloc(R * h), *dg = be->mem_alloc(R * fl), *dh1 = be->mem_alloc(R * fl);
    float *dh3 = be->mem_alloc(R * fl), *dxr = be->mem_alloc(R * h), *back = NULL, *dl = be->mem_alloc(N * E);
    float *junk = NULL;
    int *got = malloc((size_t)x->ep * sizeof *got), rc = ST_ENOMEM;
    if (!ds || !dy || !dys || !dx || !dg || !dh1 || !dh3 || !dxr || !dl || !got) goto out;
    /* the weights' gradients (<dout, y>, summed over tp) and the experts' output gradients */
    be->moe_dy(dy, ds, dout, e->y, e->s, I32(e->dorder), N, e->nsend, K, h);
    allreduce(x, ds, N * K, 0);
    if (!(rdy = exchange_dev(x, dy, e->scount, got, h))) goto out;
    be->moe_permute(dys, rdy, I32(e->dperm), R, h, 0);
    for (int64_t c = 0; c < x->E_l; c++) {
        int64_t a = e->first[c], n = e->first[c + 1] - a;
        float *gg = dg + a * fl, *g1 = dh1 + a * fl, *g3 = dh3 + a * fl;
        be->mm_bwd(gg, gw->ew2 + c * h * fl, NULL, dys + a * h, e->g + a * fl, w->ew2 + c * h * fl, n, fl, h);
        if (x->swiglu) be->swiglu_bwd(g1, g3, e->h1 + a * fl, e->h3 + a * fl, gg, n * fl);
        else be->act_bwd(g1, e->h1 + a * fl, gg, n * fl, x->act);
        be->mm_bwd(dx + a * h, gw->ew1 + c * fl * h, NULL, g1, e->xin + a * h, w->ew1 + c * fl * h, n, h, fl);
        if (x->swiglu)
            be->mm_bwd(dx + a * h, gw->ew3 + c * fl * h, NULL, g3, e->xin + a * h, w->ew3 + c * fl * h, n, h, fl);
    }
    /* the input gradients back to their tokens' ranks, added to their tokens' rows in the send order */
    be->moe_permute(dxr, dx, I32(e->dperm), R, h, 1);
    if (!(back = exchange_dev(x, dxr, e->rcount, got, h))) goto out;
    be->moe_combine(dn, back, NULL, I32(e->dwhere), N, e->nsend, K, h, 1);
    /* the router: through the softmax over each token's top k; each row's router gradient once over tp: with sp
     * each rank its rows (st__xmodel_sp_grads sums the weight's), without it the weight's on every rank and the
     * input's on tp rank 0 */
    be->moe_router_bwd(dl, e->s, ds, I32(e->dtop), N, E, K);
    int64_t r0 = x->sp ? x->tr * S : 0, rows = x->sp ? S : N;
    if (!x->sp && x->tr != 0 && !(junk = be->mem_alloc(N * h))) goto out;
    be->mm_bwd(junk ? junk : dn + r0 * h, gw->router, NULL, dl + r0 * E, t->n2 + r0 * h, w->router, rows, h, E);
    rc = 0;
out:
    free(got);
    float *d[] = {ds, dy, rdy, dys, dx, dg, dh1, dh3, dxr, back, dl, junk};
    for (size_t i = 0; i < sizeof d / sizeof *d; i++) be->mem_free(d[i]);
    return rc;
}

/* ---- the host path: the operator-level variants (moe_rows, router_h) */

/* The MoE block's MLP on n2 [N x h]: part [N x h] (=), the sum of each token's kept experts'
 * outputs times their weights (partial over tp); moe_rows: on this rank's Ns rows, part [Ns x h] whole (the
 * experts whole on their rank of the tp group). 0 or ST_ENOMEM. */
static int moe_fwd(st__xmodel *x, const st__xlayer *w, xlayer_acts *t, float *part) {
    if (!x->moe_rows && !x->router_h) return moe_fwd_dev(x, w, t, part);
    int64_t N = x->moe_rows ? x->Ns : x->B * x->T, K = x->topk, h = x->h, fl = x->fe_l, El = x->E_l;
    /* the routing and the dispatch on the host: the norm's output copied there (N x h floats) */
    float *n2 = malloc((size_t)(N * h + 1) * sizeof *n2);
    float *send = NULL, *recv = NULL, *yo = NULL, *back = NULL, *hp = NULL;
    int rc = ST_ENOMEM;
    xmoe *e = t->moe = n2 ? calloc(1, sizeof *e) : NULL;
    if (!e) {
        free(n2);
        return rc;
    }
    x->be->mem_copy(n2, x->moe_rows ? own_rows(x, t->n2) : t->n2, N * h);
    e->top = malloc((size_t)(N * K) * sizeof *e->top);
    e->s = malloc((size_t)(N * K) * sizeof *e->s);
    e->slot = malloc((size_t)(N * K) * sizeof *e->slot);
    e->scount = calloc((size_t)x->ep, sizeof *e->scount);
    e->rcount = calloc((size_t)x->ep, sizeof *e->rcount);
    e->first = calloc((size_t)El + 1, sizeof *e->first);
    if (!e->top || !e->s || !e->slot || !e->scount || !e->rcount || !e->first || moe_route(x, w, n2, N, e)) goto out;
    /* dispatch: each kept slot's row and its expert's place on the receiving rank */
    if (!(send = malloc((size_t)(e->nsend * (h + 1) + 1) * sizeof *send))) goto out;
    for (int64_t i = 0; i < e->nsend; i++) {
        memcpy(send + i * (h + 1), n2 + (e->slot[i] / K) * h, (size_t)h * sizeof *send);
        send[i * (h + 1) + h] = (float)(e->top[e->slot[i]] % El);
    }
    if (!(recv = exchange(x, send, e->scount, e->rcount, h + 1))) goto out;
    e->R = 0;
    for (int r = 0; r < x->ep; r++) e->R += e->rcount[r];
    /* the received rows sorted by expert (a counting sort, stable) */
    int64_t R = e->R;
    e->perm = malloc((size_t)(R + 1) * sizeof *e->perm);
    e->xin = malloc((size_t)(R * h + 1) * sizeof *e->xin);
    e->h1 = malloc((size_t)(R * fl + 1) * sizeof *e->h1);
    e->h3 = malloc((size_t)(R * fl + 1) * sizeof *e->h3);
    e->g = malloc((size_t)(R * fl + 1) * sizeof *e->g);
    yo = malloc((size_t)(R * h + 1) * sizeof *yo);
    back = malloc((size_t)(R * h + 1) * sizeof *back);
    if (!e->perm || !e->xin || !e->h1 || !e->h3 || !e->g || !yo || !back) goto out;
    for (int64_t i = 0; i < R; i++) e->first[(int)recv[i * (h + 1) + h] + 1]++;
    for (int64_t c = 0; c < El; c++) e->first[c + 1] += e->first[c];
    int *fill = e->first; /* advanced below, then moved back */
    for (int64_t i = 0; i < R; i++) {
        int c = (int)recv[i * (h + 1) + h], at = fill[c]++;
        e->perm[at] = (int)i;
        memcpy(e->xin + at * h, recv + i * (h + 1), (size_t)h * sizeof *e->xin);
    }
    for (int64_t c = El; c > 0; c--) fill[c] = fill[c - 1];
    fill[0] = 0;
    for (int64_t c = 0; c < El; c++) {
        int64_t a = e->first[c], n = e->first[c + 1] - a;
        float *hh1 = e->h1 + a * fl, *hh3 = e->h3 + a * fl, *gg = e->g + a * fl;
        x->be->mm_fwd(hh1, e->xin + a * h, w->ew1 + c * fl * h, NULL, n, h, fl, 0);
        if (x->swiglu) {
            x->be->mm_fwd(hh3, e->xin + a * h, w->ew3 + c * fl * h, NULL, n, h, fl, 0);
            x->be->swiglu_fwd(gg, hh1, hh3, n * fl);
        } else {
            x->be->act_fwd(gg, hh1, n * fl, x->act);
        }
        x->be->mm_fwd(yo + a * h, gg, w->ew2 + c * h * fl, NULL, n, fl, h, 0);
    }
    /* combine: the outputs back to their tokens' ranks, in the order they were sent */
    permute(back, yo, e->perm, R, h, 1);
    int *got = malloc((size_t)x->ep * sizeof *got);
    e->y = got ? exchange(x, back, e->rcount, got, h) : NULL;
    free(got);
    /* the weighted sum on the host (the routing's weights are there), then part uploaded */
    if (!e->y || !(hp = calloc((size_t)(N * h + 1), sizeof *hp))) goto out;
    for (int64_t i = 0; i < e->nsend; i++) {
        int sl = e->slot[i];
        float s = e->s[sl], *o = hp + (sl / K) * h;
        for (int64_t c = 0; c < h; c++) o[c] += s * e->y[i * h + c];
    }
    x->be->mem_copy(part, hp, N * h);
    rc = 0;
out:
    free(n2);
    free(hp);
    free(send);
    free(recv);
    free(yo);
    free(back);
    return rc;
}

/* moe_rows: router_rows_fwd's backward: the logits' gradient of this rank's rows dl [Ns x E] all-gathered to
 * every row's, the router's (its h / tp columns) and its input's, which an all-to-all returns to the rows' ranks:
 * dn [Ns x h] += . 0 or ST_ENOMEM. */
static int router_rows_bwd(st__xmodel *x, const st__xlayer *w, st__xlayer *gw, const xmoe *e, const float *dl,
                           float *dn) {
    int64_t S = x->Ns, N = x->B * x->T, hl = x->h / x->tp, E = x->E;
    float *full = malloc((size_t)(N * E) * sizeof *full), *dh = calloc((size_t)(N * hl), sizeof *dh);
    float *rcv = malloc((size_t)(N * hl) * sizeof *rcv);
    int rc = full && dh && rcv ? 0 : ST_ENOMEM;
    if (rc) goto out;
    memcpy(full + x->tr * S * E, dl, (size_t)(S * E) * sizeof *full);
    if (x->comm.allgather) x->comm.allgather(x->comm.ctx, full, S * E);
    x->be->mm_bwd(dh, gw->router, NULL, full, e->n2h, w->router, N, hl, E);
    x->tp_a2a.fn(x->tp_a2a.ctx, dh, rcv, S * hl); /* block r: these rows' columns r * hl .. from rank r */
    for (int r = 0; r < x->tp; r++)
        for (int64_t i = 0; i < S; i++)
            for (int64_t c = 0; c < hl; c++) dn[i * x->h + r * hl + c] += rcv[(r * S + i) * hl + c];
out:
    free(full);
    free(dh);
    free(rcv);
    return rc;
}

/* The MoE block's backward: dout [N x h] (every row), the experts' and the router's gradients, and
 * dn [N x h] (+=, partial over tp like the dense MLP's) the gradient of its input n2; moe_rows: dout and dn
 * [Ns x h], this rank's rows, dn whole. */
static int moe_bwd(st__xmodel *x, const st__xlayer *w, st__xlayer *gw, const xlayer_acts *t, const float *dout,
                   float *dn) {
    if (!x->moe_rows && !x->router_h) return moe_bwd_dev(x, w, gw, t, dout, dn);
    const xmoe *e = t->moe;
    float *dn0 = dn; /* (dn becomes its host copy below) */
    int64_t N = x->moe_rows ? x->Ns : x->B * x->T, S = x->Ns, K = x->topk, E = x->E, h = x->h, fl = x->fe_l, R = e->R;
    float *ds = calloc((size_t)(N * K), sizeof *ds), *dy = malloc((size_t)(e->nsend * h + 1) * sizeof *dy);
    float *rdy = NULL, *dys = malloc((size_t)(R * h + 1) * sizeof *dys), *dx = calloc((size_t)(R * h + 1), sizeof *dx);
    float *dg = malloc((size_t)(R * fl + 1) * sizeof *dg), *dh1 = malloc((size_t)(R * fl + 1) * sizeof *dh1);
    float *dh3 = malloc((size_t)(R * fl + 1) * sizeof *dh3), *dxr = malloc((size_t)(R * h + 1) * sizeof *dxr);
    float *back = NULL, *dl = calloc((size_t)(N * E), sizeof *dl), *junk = NULL;
    /* dout and dn on the host, where the routing's weights and slots are (copied down, dn up at the end) */
    float *hd = malloc((size_t)(N * h + 1) * sizeof *hd), *hdn = malloc((size_t)(N * h + 1) * sizeof *hdn);
    int *got = malloc((size_t)x->ep * sizeof *got), rc = ST_ENOMEM;
    if (!ds || !dy || !dys || !dx || !dg || !dh1 || !dh3 || !dxr || !dl || !got || !hd || !hdn) goto out;
    x->be->mem_copy(hd, dout, N * h);
    x->be->mem_copy(hdn, dn, N * h);
    dout = hd, dn = hdn;
    /* the weights' gradients (<dout, y>, summed over tp) and the experts' output gradients */
    for (int64_t i = 0; i < e->nsend; i++) {
        int sl = e->slot[i];
        const float *d = dout + (sl / K) * h;
        double dot = 0;
        for (int64_t c = 0; c < h; c++) dot += (double)d[c] * e->y[i * h + c], dy[i * h + c] = e->s[sl] * d[c];
        ds[sl] = (float)dot;
    }
    if (!x->moe_rows) allreduce(x, ds, N * K, 0); /* moe_rows: the experts whole, y too */
    if (!(rdy = exchange(x, dy, e->scount, got, h))) goto out;
    permute(dys, rdy, e->perm, R, h, 0);
    for (int64_t c = 0; c < x->E_l; c++) {
        int64_t a = e->first[c], n = e->first[c + 1] - a;
        float *gg = dg + a * fl, *g1 = dh1 + a * fl, *g3 = dh3 + a * fl;
        memset(gg, 0, (size_t)(n * fl) * sizeof *gg);
        x->be->mm_bwd(gg, gw->ew2 + c * h * fl, NULL, dys + a * h, e->g + a * fl, w->ew2 + c * h * fl, n, fl, h);
        if (x->swiglu) x->be->swiglu_bwd(g1, g3, e->h1 + a * fl, e->h3 + a * fl, gg, n * fl);
        else x->be->act_bwd(g1, e->h1 + a * fl, gg, n * fl, x->act);
        x->be->mm_bwd(dx + a * h, gw->ew1 + c * fl * h, NULL, g1, e->xin + a * h, w->ew1 + c * fl * h, n, h, fl);
        if (x->swiglu)
            x->be->mm_bwd(dx + a * h, gw->ew3 + c * fl * h, NULL, g3, e->xin + a * h, w->ew3 + c * fl * h, n, h, fl);
    }
    /* the input gradients back to their tokens' ranks */
    permute(dxr, dx, e->perm, R, h, 1);
    if (!(back = exchange(x, dxr, e->rcount, got, h))) goto out;
    for (int64_t i = 0; i < e->nsend; i++) {
        float *d = dn + (e->slot[i] / K) * h;
        for (int64_t c = 0; c < h; c++) d[c] += back[i * h + c];
    }
    /* the router: through the softmax over each token's top k */
    for (int64_t n = 0; n < N; n++) {
        double sum = 0;
        for (int64_t j = 0; j < K; j++) sum += (double)e->s[n * K + j] * ds[n * K + j];
        for (int64_t j = 0; j < K; j++)
            dl[n * E + e->top[n * K + j]] = (float)(e->s[n * K + j] * (ds[n * K + j] - sum));
    }
    if (x->moe_rows && x->router_h) {
        rc = router_rows_bwd(x, w, gw, e, dl, dn);
        goto out;
    }
    if (x->moe_rows) { /* the router whole on this rank's rows: its gradient partial over them (st__xmodel_sp_grads) */
        x->be->mm_bwd(dn, gw->router, NULL, dl, own_rows(x, t->n2), w->router, N, h, E);
        rc = 0;
        goto out;
    }
    if (x->router_h) { /* every row's logit gradient (alike on every rank): this rank's columns of the router and of
                          the input's gradient, which is partial over tp as the experts' part of it is */
        int64_t hl = h / x->tp;
        float *dh = calloc((size_t)(N * hl + 1), sizeof *dh);
        if (!dh) goto out;
        x->be->mm_bwd(dh, gw->router, NULL, dl, e->n2h, w->router, N, hl, E);
        for (int64_t i = 0; i < N; i++)
            for (int64_t c = 0; c < hl; c++) dn[i * h + x->tr * hl + c] += dh[i * hl + c];
        free(dh);
        rc = 0;
        goto out;
    }
    /* each row's router gradient once over tp: with sp each rank its rows (st__xmodel_sp_grads sums
     * the weight's), without it the weight's on every rank and the input's on tp rank 0 */
    int64_t r0 = x->sp ? x->tr * S : 0, rows = x->sp ? S : N;
    if (!x->sp && x->tr != 0 && !(junk = calloc((size_t)(N * h), sizeof *junk))) goto out;
    x->be->mm_bwd(junk ? junk : dn + r0 * h, gw->router, NULL, dl + r0 * E, t->n2 + r0 * h, w->router, rows, h, E);
    rc = 0;
out:
    if (!rc) x->be->mem_copy(dn0, hdn, N * h);
    free(ds), free(dy), free(rdy), free(dys), free(dx), free(dg), free(dh1), free(dh3), free(dxr), free(back);
    free(dl), free(junk), free(got), free(hd), free(hdn);
    return rc;
}

/* ---------------------------------------------------------------- context parallelism */

/* the position in the sequence of cp rank r's local token t (0 .. T - 1): the rank holds chunks r and
 * 2cp - 1 - r of the sequence's 2cp (Megatron-LM's load-balanced causal split) */
static int64_t gpos(const st__xmodel *x, int r, int64_t t) {
    int64_t c = x->T / 2;
    return x->cp == 1 ? t : t < c ? r * c + t : (2 * x->cp - 1 - r) * c + t - c;
}

/* the token of this rank's row n (next 0: its input; 1: its target) in tokens [B x (Tg + 1)] */
static int32_t token_at(const st__xmodel *x, const int32_t *tokens, int64_t n, int next) {
    return tokens[(n / x->T) * (x->Tg + 1) + gpos(x, x->cr, n % x->T) + next];
}

/* The rows' tokens where the backend's kernels read them (exec_private.h, st__xembed_fwd: row n's
 * input at (n / T)(T + 1) + n % T of tok, its target one further on in tgt), from the micro-batch's
 * sequences tokens [B x (Tg + 1)]. Without cp tok and tgt are those sequences as they are; with cp a
 * rank's rows are two chunks of each sequence, and the target of a chunk's last row is not the next
 * row's input, hence the two arrays [B x (T + 1)] (the places the kernels do not read: as without cp). */
static void row_tokens(const st__xmodel *x, const int32_t *tokens, int32_t *tok, int32_t *tgt) {
    int64_t T = x->T;
    for (int64_t b = 0; b < x->B; b++) {
        int32_t *i = tok + b * (T + 1), *o = tgt + b * (T + 1);
        for (int64_t t = 0; t < T; t++)
            i[t] = token_at(x, tokens, b * T + t, 0), o[t + 1] = token_at(x, tokens, b * T + t, 1);
        i[T] = o[T], o[0] = i[0];
    }
}

/* Learned positions of this rank's Ns rows (from row r0 of the micro-batch with sp): rows [Ns x h] +=
 * each row's position's row of wpe [Tg x h], or with bwd the backward, wpe += rows. The backend's
 * kernels read a run of consecutive positions: a sequence's rest, with cp the rest of one of its two
 * chunks (gpos), each run one call. */
static void positions(st__xmodel *x, float *rows, float *wpe, int bwd) {
    int64_t S = x->Ns, T = x->T, h = x->h, r0 = x->sp ? x->tr * S : 0;
    for (int64_t n = 0, len; n < S; n += len) {
        int64_t t = (r0 + n) % T, end = x->cp > 1 && t < T / 2 ? T / 2 : T, p = gpos(x, x->cr, t);
        len = end - t < S - n ? end - t : S - n;
        if (bwd) x->be->pos_bwd(wpe + p * h, rows + n * h, len, len, h, 0);
        else x->be->pos_fwd(rows + n * h, wpe + p * h, len, len, h, 0);
    }
}

/* Rotary embedding of the rows y [N x stride] at their positions in the sequence: the kernel's
 * (position = row % T) as it is without cp; with cp each sequence's rows are rotated at their
 * positions in a buffer of the whole sequence and copied back. 0 or ST_ENOMEM. */
static int rope_at(st__xmodel *x, float *y, int64_t heads, int64_t stride, int sign) {
    int64_t T = x->T, Tg = x->Tg;
    if (x->cp == 1) {
        x->be->rope(y, x->B * T, T, heads, x->d, stride, sign);
        return 0;
    }
    float *full = calloc((size_t)(Tg * stride), sizeof *full);
    if (!full) return ST_ENOMEM;
    int64_t c = T / 2, n = c * stride; /* the rank's two chunks of the sequence, each in one piece */
    for (int64_t b = 0; b < x->B; b++) {
        for (int j = 0; j < 2; j++)
            x->be->mem_copy(full + gpos(x, x->cr, j * c) * stride, y + (b * T + j * c) * stride, n);
        x->be->rope(full, Tg, Tg, heads, x->d, stride, sign);
        for (int j = 0; j < 2; j++)
            x->be->mem_copy(y + (b * T + j * c) * stride, full + gpos(x, x->cr, j * c) * stride, n);
    }
    free(full);
    return 0;
}

/* The sequence's keys or values full [B x Tg x w], each row at its position, from every cp rank's
 * rows [B x T x w] (this rank's: mine): all-gathered, or with p2p passed around the ring in cp - 1
 * steps (at step s a rank sends the block of rank cr - s and receives that of cr - s - 1). 0, ST_ENOMEM. */
static int kv_gather(st__xmodel *x, const float *mine, float *full, int64_t w) {
    int64_t n = x->B * x->T * w, cp = x->cp;
    float *blk = malloc((size_t)(cp * n) * sizeof *blk);
    if (!blk) return ST_ENOMEM;
    memcpy(blk + x->cr * n, mine, (size_t)n * sizeof *blk);
    if (x->cp_comm == ST_CP_P2P)
        for (int64_t s = 0; s < cp - 1; s++)
            x->cpcomm.ring(x->cpcomm.ctx, blk + ((x->cr - s + cp) % cp) * n, blk + ((x->cr - s - 1 + cp) % cp) * n, n);
    else
        x->cpcomm.allgather(x->cpcomm.ctx, blk, n);
    size_t row = (size_t)w * sizeof *blk;
    for (int r = 0; r < cp; r++)
        for (int64_t b = 0; b < x->B; b++)
            for (int64_t t = 0; t < x->T; t++)
                memcpy(full + (b * x->Tg + gpos(x, r, t)) * w, blk + r * n + (b * x->T + t) * w, row);
    free(blk);
    return 0;
}

/* The gradient of the sequence's keys or values dfull [B x Tg x w] (this rank's queries' part) summed
 * over the cp ranks, each rank's rows added into its dmine [B x T x w]: reduce-scattered, or with
 * p2p around the ring (at step s a rank sends its sum for rank cr - s - 1 on and adds its own part
 * to the sum for cr - s - 2 that comes; after cp - 1 steps it holds its own). 0 or ST_ENOMEM. */
static int kv_scatter(st__xmodel *x, const float *dfull, float *dmine, int64_t w) {
    int64_t n = x->B * x->T * w, cp = x->cp;
    float *blk = malloc((size_t)((cp + 1) * n) * sizeof *blk), *in = blk + cp * n;
    if (!blk) return ST_ENOMEM;
    size_t row = (size_t)w * sizeof *blk;
    for (int r = 0; r < cp; r++)
        for (int64_t b = 0; b < x->B; b++)
            for (int64_t t = 0; t < x->T; t++)
                memcpy(blk + r * n + (b * x->T + t) * w, dfull + (b * x->Tg + gpos(x, r, t)) * w, row);
    const float *sum = in;
    if (x->cp_comm == ST_CP_P2P) {
        for (int64_t s = 0; s < cp - 1; s++) {
            float *to = blk + ((x->cr - s - 2 + 2 * cp) % cp) * n;
            x->cpcomm.ring(x->cpcomm.ctx, blk + ((x->cr - s - 1 + cp) % cp) * n, in, n);
            for (int64_t i = 0; i < n; i++) to[i] += in[i];
        }
        sum = blk + x->cr * n;
    } else {
        x->cpcomm.reduce_scatter(x->cpcomm.ctx, in, blk, n);
    }
    for (int64_t i = 0; i < n; i++) dmine[i] += sum[i];
    free(blk);
    return 0;
}

/* cp_comm=a2a (DeepSpeed Ulysses, Jacobs et al. 2023; TE's AttnFuncWithCPAndQKVOA2A): this rank's
 * tokens of every head, local [B x T x w] (w = heads x d), to the whole sequence's tokens of its
 * 1/cp of the heads, full [B x Tg x w / cp] in position order (dir 0), or back (dir 1), by one
 * all-to-all in the cp group. 0 or ST_ENOMEM. */
static int a2a_heads(st__xmodel *x, float *local, float *full, int64_t w, int dir) {
    int64_t cp = x->cp, ws = w / cp, n = x->B * x->T * ws;
    float *send = calloc((size_t)(2 * cp * n), sizeof *send), *recv = send + cp * n; /* (calloc: gcc's warning) */
    if (!send) return ST_ENOMEM;
    size_t row = (size_t)ws * sizeof *send;
    for (int r = 0; r < cp; r++) /* block r: to (from) cp rank r */
        for (int64_t b = 0; b < x->B; b++)
            for (int64_t t = 0; t < x->T; t++) {
                int64_t i = r * n + (b * x->T + t) * ws;
                if (dir == 0) memcpy(send + i, local + (b * x->T + t) * w + r * ws, row);
                else memcpy(send + i, full + (b * x->Tg + gpos(x, r, t)) * ws, row);
            }
    x->cpcomm.alltoall(x->cpcomm.ctx, send, recv, n);
    for (int r = 0; r < cp; r++)
        for (int64_t b = 0; b < x->B; b++)
            for (int64_t t = 0; t < x->T; t++) {
                int64_t i = r * n + (b * x->T + t) * ws;
                if (dir == 0) memcpy(full + (b * x->Tg + gpos(x, r, t)) * ws, recv + i, row);
                else memcpy(local + (b * x->T + t) * w + r * ws, recv + i, row);
            }
    free(send);
    return 0;
}

/* The a2a attention: q, k and v to the head split, the backend's kernel over whole sequences on this
 * rank's heads (head j of them reads kv head j / (a / kv), as without the split), the output back to
 * the sequence split; probs [B x a_l / cp x Tg x Tg]. 0 or ST_ENOMEM. */
static int a2a_fwd(st__xmodel *x, xlayer_acts *t) {
    int64_t ql = x->a_l * x->d, kl = x->kv_l * x->d, cp = x->cp, N = x->B * x->T;
    float *of = malloc((size_t)(N * ql) * sizeof *of);
    int rc = of ? a2a_heads(x, t->q, t->qh, ql, 0) : ST_ENOMEM;
    if (!rc) rc = a2a_heads(x, t->k, t->kh, kl, 0);
    if (!rc) rc = a2a_heads(x, t->v, t->vh, kl, 0);
    if (!rc) x->be->attn_fwd(of, t->probs, t->qh, t->kh, t->vh, x->B, x->Tg, x->a_l / cp, x->kv_l / cp, x->d);
    if (!rc) rc = a2a_heads(x, t->ao, of, ql, 1);
    free(of);
    return rc;
}

/* its backward: the output gradient to the head split, the kernel's backward, the gradients of q, k
 * and v back to the sequence split (dq, dk, dv: zero before, their values after) */
static int a2a_bwd(st__xmodel *x, const xlayer_acts *t, const float *dao, float *dq, float *dk, float *dv) {
    int64_t ql = x->a_l * x->d, kl = x->kv_l * x->d, cp = x->cp, N = x->B * x->T;
    float *dof = malloc((size_t)(2 * N * ql + 2 * N * kl) * sizeof *dof), *dqh = dof + N * ql, *dkh = dqh + N * ql;
    float *dvh = dkh + N * kl;
    int rc = dof ? a2a_heads(x, (float *)dao, dof, ql, 0) : ST_ENOMEM;
    if (!rc) {
        x->be->mem_zero(dqh, N * ql + 2 * N * kl);
        x->be->attn_bwd(dqh, dkh, dvh, dof, t->probs, t->qh, t->kh, t->vh, x->B, x->Tg, x->a_l / cp, x->kv_l / cp,
                        x->d);
        rc = a2a_heads(x, dq, dqh, ql, 1);
    }
    if (!rc) rc = a2a_heads(x, dk, dkh, kl, 1);
    if (!rc) rc = a2a_heads(x, dv, dvh, kl, 1);
    free(dof);
    return rc;
}

/* The attention core with cp, on host buffers (t's q, k, v and ao the host copies attn_core_fwd
 * makes; its probabilities, and a2a's q, k and v of the head split, are kept on the host): with
 * cp_comm=a2a, a2a_fwd; otherwise this rank's query chunks (each c = T / 2 rows of a sequence)
 * against the gathered sequence's keys and values up to each chunk's end, causal by position (the
 * CPU kernel on every backend: st__xattn_fwd_at); probs per (sequence, chunk) [a_l x c x Tg]. 0 or
 * ST_ENOMEM. */
static int cp_attn_fwd(st__xmodel *x, xlayer_acts *t) {
    int64_t B = x->B, T = x->T, Tg = x->Tg, c = T / 2, ql = x->a_l * x->d, kl = x->kv_l * x->d;
    if (x->cp_comm == ST_CP_A2A) return a2a_fwd(x, t);
    float *kf = malloc((size_t)(2 * B * Tg * kl) * sizeof *kf), *vf = kf + B * Tg * kl;
    int rc = kf ? kv_gather(x, t->k, kf, kl) : ST_ENOMEM;
    if (!rc) rc = kv_gather(x, t->v, vf, kl);
    for (int64_t b = 0; !rc && b < B; b++)
        for (int j = 0; j < 2; j++) {
            int64_t r0 = b * T + j * c, p0 = gpos(x, x->cr, j * c);
            st__xattn_fwd_at(t->ao + r0 * ql, t->probs + (b * 2 + j) * x->a_l * c * Tg, t->q + r0 * ql,
                             kf + b * Tg * kl, vf + b * Tg * kl, c, p0 + c, p0, x->a_l, x->kv_l, x->d);
        }
    free(kf);
    return rc;
}

/* attn_core_fwd's backward with cp, on host buffers: dq, dk, dv += (the keys and values gathered again,
 * as Transformer Engine's all_gather and p2p backwards do, and the gradients of the sequence's keys and
 * values returned to their ranks, kv_scatter). 0 or ST_ENOMEM. */
static int cp_attn_bwd(st__xmodel *x, const xlayer_acts *t, const float *dao, float *dq, float *dk, float *dv) {
    int64_t B = x->B, T = x->T, Tg = x->Tg, c = T / 2, ql = x->a_l * x->d, kl = x->kv_l * x->d;
    if (x->cp_comm == ST_CP_A2A) return a2a_bwd(x, t, dao, dq, dk, dv);
    float *kf = malloc((size_t)(4 * B * Tg * kl) * sizeof *kf), *vf = kf + B * Tg * kl, *dkf = vf + B * Tg * kl;
    float *dvf = dkf + B * Tg * kl;
    int rc = kf ? kv_gather(x, t->k, kf, kl) : ST_ENOMEM;
    if (!rc) rc = kv_gather(x, t->v, vf, kl);
    if (!rc) x->be->mem_zero(dkf, 2 * B * Tg * kl);
    for (int64_t b = 0; !rc && b < B; b++)
        for (int j = 0; j < 2; j++) {
            int64_t r0 = b * T + j * c, p0 = gpos(x, x->cr, j * c), o = b * Tg * kl;
            st__xattn_bwd_at(dq + r0 * ql, dkf + o, dvf + o, dao + r0 * ql, t->probs + (b * 2 + j) * x->a_l * c * Tg,
                             t->q + r0 * ql, kf + o, vf + o, c, p0 + c, p0, x->a_l, x->kv_l, x->d);
        }
    if (!rc) rc = kv_scatter(x, dkf, dk, kl);
    if (!rc) rc = kv_scatter(x, dvf, dv, kl);
    free(kf);
    return rc;
}

/* cp: t's q, k and v copied to the host into h [N x (ql + 2 kl)], ao's room after them; *ht is t with
 * those pointing there (the rest, kept by cp's forward, lies on the host already: acts_host) */
static void cp_host_view(const st__xmodel *x, const xlayer_acts *t, float *h, xlayer_acts *ht) {
    int64_t N = x->B * x->T, ql = x->a_l * x->d, kl = x->kv_l * x->d;
    *ht = *t;
    ht->q = h, ht->k = h + N * ql, ht->v = ht->k + N * kl, ht->ao = ht->v + N * kl;
    x->be->mem_copy(ht->q, t->q, N * ql);
    x->be->mem_copy(ht->k, t->k, N * kl);
    x->be->mem_copy(ht->v, t->v, N * kl);
}

/* The attention core of a block (after the rotary embedding): without cp the backend's kernel; with
 * cp its exchanges and chunks on the host (cp_attn_fwd), where its inputs are copied and whence its
 * output returns. 0 or ST_ENOMEM. */
static int attn_core_fwd(st__xmodel *x, xlayer_acts *t) {
    int64_t N = x->B * x->T, ql = x->a_l * x->d, kl = x->kv_l * x->d;
    if (x->cp == 1) {
        x->be->attn_fwd(t->ao, t->probs, t->q, t->k, t->v, x->B, x->T, x->a_l, x->kv_l, x->d);
        return 0;
    }
    xlayer_acts ht;
    float *h = malloc((size_t)(N * (2 * ql + 2 * kl) + 1) * sizeof *h);
    if (!h) return ST_ENOMEM;
    cp_host_view(x, t, h, &ht);
    int rc = cp_attn_fwd(x, &ht);
    if (!rc) x->be->mem_copy(t->ao, ht.ao, N * ql);
    free(h);
    return rc;
}

/* attn_core_fwd's backward: dq, dk, dv +=. 0 or ST_ENOMEM. */
static int attn_core_bwd(st__xmodel *x, const xlayer_acts *t, const float *dao, float *dq, float *dk, float *dv) {
    int64_t N = x->B * x->T, ql = x->a_l * x->d, kl = x->kv_l * x->d;
    if (x->cp == 1) {
        x->be->attn_bwd(dq, dk, dv, dao, t->probs, t->q, t->k, t->v, x->B, x->T, x->a_l, x->kv_l, x->d);
        return 0;
    }
    /* cp: on the host as its forward, the gradients (the backward's scratch) copied down and back */
    xlayer_acts ht;
    float *h = malloc((size_t)(N * (4 * ql + 4 * kl) + 1) * sizeof *h);
    if (!h) return ST_ENOMEM;
    float *hd = h + N * (2 * ql + 2 * kl), *hq = hd + N * ql, *hk = hq + N * ql, *hv = hk + N * kl;
    cp_host_view(x, t, h, &ht);
    x->be->mem_copy(hd, dao, N * ql);
    x->be->mem_copy(hq, dq, N * ql);
    x->be->mem_copy(hk, dk, N * kl);
    x->be->mem_copy(hv, dv, N * kl);
    int rc = cp_attn_bwd(x, &ht, hd, hq, hk, hv);
    if (!rc) {
        x->be->mem_copy(dq, hq, N * ql);
        x->be->mem_copy(dk, hk, N * kl);
        x->be->mem_copy(dv, hv, N * kl);
    }
    free(h);
    return rc;
}

/* attn_rows 2: x as the attention sees it, this rank's B / tp sequences with every head; else x */
static st__xmodel attn_view(const st__xmodel *x) {
    st__xmodel v = *x;
    if (x->attn_rows == 2) v.B = x->B / x->tp, v.a_l = x->a, v.kv_l = x->kv;
    return v;
}

/* attn_rows 2: the attention sublayer, data-parallel on this rank's rows: t->x2 = x + proj(attention(
 * QKV(norm(x)))) [Ns x h], the norm's output at n1's own rows. 0 or ST_ENOMEM. */
static int rows_attn_fwd(st__xmodel *x, const st__xlayer *w, xlayer_acts *t) {
    int64_t S = x->Ns, h = x->h, qd = x->a * x->d, kd = x->kv * x->d;
    st__xmodel v = attn_view(x);
    float *n1 = own_rows(x, t->n1);
    x->be->norm_fwd(n1, t->mean1, t->rstd1, t->x, w->ln1_w, w->ln1_b, S, h);
    qkv_fwd(x, w, t, n1, S, qd, kd);
    if (x->rope && (rope_at(&v, t->q, x->a, qd, 1) || rope_at(&v, t->k, x->kv, kd, 1))) return ST_ENOMEM;
    if (attn_core_fwd(&v, t)) return ST_ENOMEM;
    x->be->mm_fwd(t->x2, t->ao, w->wo, w->bo, S, qd, h, 0);
    x->be->add(t->x2, t->x, S * h);
    return 0;
}

/* attn_rows 1: the attention output between the head split, heads [N x a_l * d] (all rows, this rank's
 * heads), and the row split, rows [Ns x a * d] (this rank's rows, every head), by one all-to-all in
 * the tp group: to the rows (dir 0) or back (dir 1). 0 or ST_ENOMEM. */
static int heads_rows(st__xmodel *x, float *heads, float *rows, int dir) {
    int64_t S = x->Ns, ql = x->a_l * x->d, qd = x->a * x->d, n = S * ql;
    /* the all-to-all is MPI's, on the host: heads copied there (hh) and rows through buf */
    float *buf = malloc((size_t)(2 * x->tp * n) * sizeof *buf);
    if (!buf) return ST_ENOMEM;
    float *hh = buf + x->tp * n;
    /* heads' row block r is contiguous: it goes out (dir 0) or comes in (dir 1) as is; block r of
     * rows is its columns r * ql .. (r + 1) * ql */
    if (dir == 1)
        for (int r = 0; r < x->tp; r++) x->be->mem_copy2d(buf + r * n, ql, rows + r * ql, qd, ql, S);
    else x->be->mem_copy(hh, heads, x->tp * n);
    x->tp_a2a.fn(x->tp_a2a.ctx, dir ? buf : hh, dir ? hh : buf, n);
    if (dir == 0)
        for (int r = 0; r < x->tp; r++) x->be->mem_copy2d(rows + r * ql, qd, buf + r * n, ql, ql, S);
    else x->be->mem_copy(heads, hh, x->tp * n);
    free(buf);
    return 0;
}

/* the attention sublayer as Megatron-LM shards it: t->x2 = x + proj(attention(QKV(norm(x)))) [Ns x h],
 * this rank's heads; with attn_rows 1 the projection on the rows; scratch as block_fwd's. 0 or ST_ENOMEM. */
static int heads_attn_fwd(st__xmodel *x, const st__xlayer *w, xlayer_acts *t, float *scratch) {
    int64_t N = x->B * x->T, S = x->Ns, h = x->h, ql = x->a_l * x->d, kl = x->kv_l * x->d;
    float *part = x->sp ? scratch : NULL; /* a row-parallel GEMM's partial sums, with sp */
    x->be->norm_fwd(own_rows(x, t->n1), t->mean1, t->rstd1, t->x, w->ln1_w, w->ln1_b, S, h);
    gather_rows(x, t->n1);
    if (x->attn_rows == 3) wide_qkv_fwd(x, w, t);
    else qkv_fwd(x, w, t, t->n1, N, ql, kl);
    if (t->qw) x->be->mem_copy(t->qw, t->q, N * ql); /* recompute=op: wq's output, before the rotary embedding */
    if (x->rope && (rope_at(x, t->q, x->a_l, ql, 1) || rope_at(x, t->k, x->kv_l, kl, 1))) return ST_ENOMEM;
    if (attn_core_fwd(x, t)) return ST_ENOMEM;
    if (x->attn_rows == 1) { /* data-parallel projection on this rank's rows */
        if (heads_rows(x, t->ao, t->aor, 0)) return ST_ENOMEM;
        x->be->mm_fwd(t->x2, t->aor, w->wo, w->bo, S, x->a * x->d, h, 0);
    } else { /* row-parallel projection: partial sums, all-reduced (g) or reduce-scattered, then the bias once */
        const float *pin = t->ao;
        int64_t pw = ql;
        if (x->attn_rows == 3) { /* this rank's heads of the whole output: a slice (the ILP's reshard, no transfer) */
            rank_cols(x, t->aor, &t->ao, &x->wq_l, 1, x->tr, 1);
            pin = t->aor, pw = x->wq_l;
        }
        x->be->mm_fwd(part ? part : t->x2, pin, w->wo, NULL, N, pw, h, 0);
        sum_rows(x, t->x2, part ? part : t->x2);
        if (t->pr) x->be->mem_copy(t->pr, t->x2, S * h); /* recompute=op: the reduce-scatter's output */
        add_bias(x, t->x2, w->bo, S, h);
    }
    x->be->add(t->x2, t->x, S * h);
    return 0;
}

/* a block's forward from t->x into out [Ns x h]; scratch [N x h], the row-parallel GEMMs' partial sums with sp (the
 * work buffer's start in the forward; in a rebuild inside the backward the block backward's, clear of the residual
 * gradient: redo_block). 0 or ST_ENOMEM. */
static int block_fwd(st__xmodel *x, const st__xlayer *w, xlayer_acts *t, float *out, float *scratch) {
    int64_t N = x->B * x->T, S = x->Ns, h = x->h;
    float *part = x->sp ? scratch : NULL; /* a row-parallel GEMM's partial sums, with sp */
    int rc = x->attn_rows == 2 ? rows_attn_fwd(x, w, t) : heads_attn_fwd(x, w, t, scratch);
    if (rc) return rc;
    x->be->norm_fwd(own_rows(x, t->n2), t->mean2, t->rstd2, t->x2, w->ln2_w, w->ln2_b, S, h);
    if (w->router && x->moe_rows) { /* on this rank's rows, whole: no gather, no reduce-scatter */
        if ((rc = moe_fwd(x, w, t, out))) return rc;
        x->be->add(out, t->x2, S * h);
        return 0;
    }
    gather_rows(x, t->n2);
    if (w->router) {
        rc = moe_fwd(x, w, t, part ? part : out);
        if (rc) return rc;
    } else {
        if (x->swiglu) { /* w1 and w3 (fused_fwd); b1, when there is one, on w1's half */
            float *out[2] = {t->h1, t->h3};
            const int64_t width[2] = {x->f_l, x->f_l};
            assert(w->w3 == w->w1 + x->f_l * h);
            fused_fwd(x, out, width, 2, t->n2, w->w1, NULL, N, h);
            add_bias(x, t->h1, w->b1, N, x->f_l);
            x->be->swiglu_fwd(t->g, t->h1, t->h3, N * x->f_l);
        } else {
            x->be->mm_fwd(t->h1, t->n2, w->w1, w->b1, N, h, x->f_l, 0);
            x->be->act_fwd(t->g, t->h1, N * x->f_l, x->act);
        }
        x->be->mm_fwd(part ? part : out, t->g, w->w2, NULL, N, x->f_l, h, 0);
        if (t->y2 && part) x->be->mem_copy(t->y2, part, N * h); /* recompute=op: w2's output (partial sums) */
    }
    sum_rows(x, out, part ? part : out);
    if (t->y2 && !part) x->be->mem_copy(t->y2, out, N * h); /* (all-reduced in place) */
    if (t->yr) x->be->mem_copy(t->yr, out, S * h);           /* recompute=op: the reduce-scatter's output */
    add_bias(x, out, w->b2, S, h);
    x->be->add(out, t->x2, S * h);
    return 0;
}

/* recompute=op (file comment): block t's activations that the forward dropped, again from its input and the
 * outputs it kept, running the operators the lowering's recompute names (exec/cpu.c, recompute_mismatch checks
 * them), each as block_fwd runs it: ln1 and its all-gather (sp), wk's GEMM alone (wq's and wv's outputs kept; wk's
 * rows of the fused QKV weight are a [kv x h] matrix of their own, with bk), the rotary embedding of q (from wq's
 * kept output) and k, the projection's GEMM and, without sp, its all-reduce (with sp its reduce-scatter's output
 * is kept, and the GEMM's output goes unused: torch's checkpoint replays every operator its policy did not save,
 * up to the last one the backward reads), the residual, ln2 and its all-gather, SwiGLU's w3 GEMM alone (w1's
 * output kept; GELU's fc1 output kept), the activation, GELU's fc2 GEMM (the second of its pair) and its
 * all-reduce (an MoE block's router, experts and weighted sum instead: moe_redo_dev, the weighted sum's all-reduce
 * again without sp), and the residual into the block's output, which the next block kept as its input (so made into
 * scratch: equal to it bit for bit). Not the attention (its output kept): the probabilities, which a fused
 * kernel keeps only as the log-sum-exp, block_bwd makes again right before the attention's backward, where
 * FlashAttention's backward makes them (Dao 2023, Sec. 3.1.2). The scratch is block_bwd's (dn and dx2 in the
 * work buffer, clear of the residual gradient that the backward keeps between blocks). 0 or ST_ENOMEM. */
static int block_redo(st__xmodel *x, const st__xlayer *w, xlayer_acts *t) {
    int64_t N = x->B * x->T, S = x->Ns, h = x->h, ql = x->a_l * x->d, kl = x->kv_l * x->d, fl = x->f_l;
    float *part = x->work + 2 * N * h, *res = part + N * h;
    x->be->norm_fwd(own_rows(x, t->n1), t->mean1, t->rstd1, t->x, w->ln1_w, w->ln1_b, S, h);
    gather_rows(x, t->n1);
    x->be->mm_fwd(t->k, t->n1, w->wk, w->bk, N, h, kl, 0);
    if (x->rope) {
        x->be->mem_copy(t->q, t->qw, N * ql);
        if (rope_at(x, t->q, x->a_l, ql, 1) || rope_at(x, t->k, x->kv_l, kl, 1)) return ST_ENOMEM;
    }
    x->be->mm_fwd(x->sp ? part : t->x2, t->ao, w->wo, NULL, N, ql, h, 0);
    if (x->sp) x->be->mem_copy(t->x2, t->pr, S * h);
    else sum_rows(x, t->x2, t->x2);
    add_bias(x, t->x2, w->bo, S, h);
    x->be->add(t->x2, t->x, S * h);
    x->be->norm_fwd(own_rows(x, t->n2), t->mean2, t->rstd2, t->x2, w->ln2_w, w->ln2_b, S, h);
    gather_rows(x, t->n2);
    const float *y = x->sp ? t->yr : t->y2;
    if (w->router) { /* (moe_redo_dev) the weighted sum's all-reduce again without sp, its reduce-scatter's output kept */
        int rc = moe_redo_dev(x, w, t, part);
        if (rc) return rc;
        if (!x->sp) sum_rows(x, part, part), y = part;
    } else if (x->swiglu) {
        assert(w->w3 == w->w1 + fl * h);
        x->be->mm_fwd(t->h3, t->n2, w->w3, NULL, N, h, fl, 0);
        x->be->swiglu_fwd(t->g, t->h1, t->h3, N * fl);
    } else {
        x->be->act_fwd(t->g, t->h1, N * fl, x->act);
        x->be->mm_fwd(part, t->g, w->w2, NULL, N, fl, h, 0);
        if (!x->sp) sum_rows(x, part, part), y = part;
    }
    x->be->mem_copy(res, y, S * h);
    add_bias(x, res, w->b2, S, h);
    x->be->add(res, t->x2, S * h);
    return 0;
}

/* the output layer's all-reduce: over tp, or hd > 1 over its own group */
static void head_allreduce(st__xmodel *x, float *buf, int64_t n, int max) {
    if (x->hd > 1) x->hcomm.allreduce(x->hcomm.ctx, buf, n, max);
    else allreduce(x, buf, n, max);
}

/* vocab-parallel cross-entropy of the logits [N x V_l] (hd > 1: [hN x hV_l], the targets htgt's): the mean loss of
 * this rank's micro-batch; the logits become the softmax probabilities (the backward's) */
static double cross_entropy(st__xmodel *x, float *logits, const int32_t *targets) {
    /* hd > 1: the rows as one run of hN tokens, row m's target at targets[m + 1] (row_tokens' layout) */
    int64_t N = x->hN, T = x->hd > 1 ? N : x->T, V_l = x->hV_l;
    float *mx = x->work, *st = mx + N; /* st: N sums of exponentials, then N target logits - max */
    x->be->xent_max(mx, logits, N, V_l);
    head_allreduce(x, mx, N, 1);
    x->be->xent_exp(logits, st, mx, targets, N, T, V_l, x->hv0);
    head_allreduce(x, st, 2 * N, 0);
    x->be->xent_norm(logits, st, N, V_l);
    /* the sum over rows on the host: the 2N sums copied down from the backend's memory (2N floats
     * against the N x V_l logits the kernels keep there; the loss is printed per step anyway, and a
     * reduction kernel would sum in another order than the CPU's); out of memory: not finite, which
     * stops the run */
    float *hs = malloc((size_t)(2 * N + 1) * sizeof *hs);
    if (!hs) return NAN;
    x->be->mem_copy(hs, st, 2 * N);
    double loss = 0;
    if (x->hd == 1) {
        for (int64_t n = 0; n < N; n++) loss += logf(hs[n]) - hs[N + n];
        free(hs);
        return loss / (double)N;
    }
    /* hd > 1: this rank's own rows (its hd rank's block) are its tp rank's share of its micro-batch's: their mean
     * summed over the tp group is the micro-batch's mean loss, as without */
    int64_t Nm = x->B * x->T, lo = x->hr * x->Ns;
    for (int64_t n = lo; n < lo + x->Ns; n++) loss += logf(hs[n]) - hs[N + n];
    free(hs);
    float part = (float)(loss / (double)Nm);
    allreduce(x, &part, 1, 0);
    return part;
}

/* a's units (exec_private.h, "ZeRO-3"): the embedding where it holds it, its blocks, the output layer */
static int unit_count(const st__xacts *a) { return a->head + a->nl + a->tail; }

/* the layer of a's unit u: -1 the embedding, L the output layer, else the block's */
static int unit_layer(const st__xmodel *x, const st__xacts *a, int u) {
    if (a->head && u == 0) return -1;
    u -= a->head;
    return u < a->nl ? x->cl0[a->chunk] + u : (int)x->L;
}

st__xacts *st__xmodel_forward_begin(st__xmodel *x, int chunk, const int32_t *tokens, const float *in) {
    int64_t S = x->Ns, h = x->h, nl = x->cl1[chunk] - x->cl0[chunk];
    st__xacts *a = calloc(1, sizeof *a);
    if (!a) return NULL;
    a->chunk = chunk, a->head = x->first && chunk == 0, a->tail = x->last && chunk == x->nchunks - 1;
    a->nl = (int)nl;
    int64_t n[4];
    layout(x, (int)nl, a->tail, a, NULL, n);
    a->lay = calloc((size_t)(nl > 0 ? nl : 1), sizeof *a->lay);
    a->be = x->be, a->pmem_host = x->cp > 1, a->built = -1;
    a->mem = acts_alloc(a, n[0], 0);
    a->bmem = acts_alloc(a, n[1], 0);
    a->pmem = acts_alloc(a, n[2], a->pmem_host);
    a->kmem = acts_alloc(a, n[3], 0);
    a->tokens = malloc((size_t)(2 * x->B * (x->T + 1) + (x->hd > 1 ? x->hN + 1 : 0)) * sizeof *a->tokens);
    if (!a->lay || !a->mem || !a->bmem || !a->pmem || !a->kmem || !a->tokens) {
        st__xacts_free(a);
        return NULL;
    }
    float *base[4] = {a->mem, a->bmem, a->pmem, a->kmem};
    layout(x, (int)nl, a->tail, a, base, NULL);
    a->targets = a->tokens + x->B * (x->T + 1), a->htgt = a->targets + x->B * (x->T + 1);
    if (a->head || a->tail) row_tokens(x, tokens, a->tokens, a->targets);
    if (!a->head) x->be->mem_copy(nl > 0 ? a->lay[0].x : a->out, in, S * h);
    return a;
}

/* the forward's end: the chunk's output, and the rooms of what the recompute makes again not kept (full and op:
 * each block's input and op's saved outputs lie in part 3) */
static void fwd_finish(st__xmodel *x, st__xacts *a, const float **out) {
    if (!a->tail) *out = a->out;
    if (x->recompute && a->nl > 0) {
        if (x->recompute >= 2) acts_release(a, &a->bmem, 0);
        acts_release(a, &a->pmem, a->pmem_host);
        a->dropped = 1, a->built = -1;
    }
}

/* the forward of a's next unit */
static int fwd_unit(st__xmodel *x, st__xacts *a, double *loss) {
    int64_t N = x->B * x->T, S = x->Ns, h = x->h, T = x->T, k0 = chunk_first(x, a->chunk);
    int64_t nl = a->nl, u = a->fnext++ - a->head;
    if (u < 0) { /* the embedding */
        float *x0 = nl > 0 ? a->lay[0].x : a->out;
        /* the vocab-parallel lookup's partial rows, summed over tp (to this rank's rows with sp); hd > 1: the whole
         * table's rows, this rank's kept (no collective) */
        float *part = x->sp ? x->work : x0;
        x->be->embed_fwd(part, a->tokens, x->wte, N, T, h, x->v0, x->V_l);
        if (x->hd == 1) sum_rows(x, x0, part);
        else if (x->sp) x->be->mem_copy(x0, own_rows(x, part), S * h);
        if (x->wpe) positions(x, x0, x->wpe, 0);
        return 0;
    }
    if (u < nl) {
        int rc = block_fwd(x, &x->lp[k0 + u], &a->lay[u], u + 1 < nl ? a->lay[u + 1].x : a->out, x->work);
        if (x->recompute == 2) moe_free(a->lay[u].moe), a->lay[u].moe = NULL; /* full: made again with the block */
        if (x->recompute == 3) moe_drop(x, a->lay[u].moe); /* op: its routing kept (moe_redo_dev) */
        return rc;
    }
    if (x->hd > 1) { /* the final norm's rows and their targets gathered over the hd group, its vocabulary share */
        int64_t r0 = x->sp ? x->tr * S : 0;
        x->be->norm_fwd(a->nf + x->hr * S * h, a->meanf, a->rstdf, a->out, x->lnf_w, x->lnf_b, S, h);
        x->hcomm.allgather(x->hcomm.ctx, a->nf, S * h);
        for (int64_t r = 0, n = r0; r < S; r++, n++)
            a->htgt[1 + x->hr * S + r] = a->targets[(n / T) * (T + 1) + n % T + 1];
        x->hcomm_tokens(x->hcomm.ctx, a->htgt + 1, S);
        x->be->mm_fwd(a->logits, a->nf, x->lm + x->hv0 * h, NULL, x->hN, h, x->hV_l, 0);
        *loss = cross_entropy(x, a->logits, a->htgt);
        return 0;
    }
    x->be->norm_fwd(own_rows(x, a->nf), a->meanf, a->rstdf, a->out, x->lnf_w, x->lnf_b, S, h);
    gather_rows(x, a->nf);
    x->be->mm_fwd(a->logits, a->nf, x->lm, NULL, N, h, x->V_l, 0);
    *loss = cross_entropy(x, a->logits, a->targets);
    return 0;
}

st__xacts *st__xmodel_forward(st__xmodel *x, int chunk, const int32_t *tokens, const float *in, const float **out,
                              double *loss) {
    st__xacts *a = st__xmodel_forward_begin(x, chunk, tokens, in);
    while (a && a->fnext < unit_count(a))
        if (fwd_unit(x, a, loss)) {
            st__xacts_free(a);
            return NULL;
        }
    if (a) fwd_finish(x, a, out);
    return a;
}

int st__xmodel_forward_unit(st__xmodel *x, st__xacts *a, int layer, const float **out, double *loss, int *last) {
    *last = 0;
    if (a->fnext >= unit_count(a) || unit_layer(x, a, a->fnext) != layer) return ST_EINVAL;
    int rc = fwd_unit(x, a, loss);
    if (rc || a->fnext < unit_count(a)) return rc;
    fwd_finish(x, a, out), *last = 1;
    return 0;
}

/* the rooms of one block's activations that the recompute makes again (layout's parts 1 with full and op, 2 with
 * any), where they are not allocated already. 0 or ST_ENOMEM. */
static int room_alloc(const st__xmodel *x, st__xacts *a) {
    int64_t n[4];
    if (a->pmem && (x->recompute < 2 || a->bmem)) return 0;
    layout(x, a->nl, a->tail, a, NULL, n);
    if (x->recompute >= 2 && !a->bmem && !(a->bmem = acts_alloc(a, n[1], 0))) return ST_ENOMEM;
    if (!a->pmem && !(a->pmem = acts_alloc(a, n[2], a->pmem_host))) return ST_ENOMEM;
    float *base[4] = {a->mem, a->bmem, a->pmem, a->kmem};
    layout(x, a->nl, a->tail, a, base, NULL);
    return 0;
}

/* Block b's activations that the forward dropped, again, into the rooms (layout: every block's in turn, as
 * Megatron-LM's per-block checkpoint and torchtitan's per-block checkpoint_wrapper remake one block's right before
 * its backward, and as the cost model prices one block's working set, cost/memory.c): full, the block's forward
 * from its kept input (an MoE block's routing too), its output into scratch (the next block's input and the
 * chunk's output are kept; the same numbers); selective, the attention core from the kept q, k and v; op,
 * block_redo. The scratch is block_bwd's (the work buffer's dn and dx2), clear of the residual gradient the
 * backward keeps between blocks; the block after b has run its backward, so its MoE buffers go. 0 or ST_ENOMEM. */
static int redo_block(st__xmodel *x, st__xacts *a, int b) {
    int64_t N = x->B * x->T, h = x->h;
    const st__xlayer *w = &x->lp[chunk_first(x, a->chunk) + b];
    xlayer_acts *t = &a->lay[b];
    int rc = 0;
    a->built = -1;
    if (x->recompute == 3) {
        rc = block_redo(x, w, t);
    } else if (x->recompute == 2) {
        if (b + 1 < a->nl) moe_free(a->lay[b + 1].moe), a->lay[b + 1].moe = NULL;
        moe_free(t->moe), t->moe = NULL;
        rc = block_fwd(x, w, t, x->work + 3 * N * h, x->work + 2 * N * h);
    } else {
        st__xmodel v = attn_view(x);
        rc = attn_core_fwd(&v, t);
    }
    if (!rc) a->built = b;
    return rc;
}

/* redo_block inside the backward, timed as the recompute's (st__xmodel's redo_clock) */
static int redo_timed(st__xmodel *x, st__xacts *a, int b) {
    if (x->redo_clock.fn) x->redo_clock.fn(x->redo_clock.ctx, 0);
    int rc = redo_block(x, a, b);
    if (x->redo_clock.fn) x->redo_clock.fn(x->redo_clock.ctx, 1);
    return rc;
}

/* The chunk's recompute: the rooms, and in them the last block's activations, whose backward comes first; the
 * backward makes each block's before it (lazy: bwd_unit, redo_timed). */
int st__xmodel_recompute(st__xmodel *x, st__xacts *a) {
    if (!a->dropped) return ST_EINVAL;
    int rc = room_alloc(x, a);
    if (rc) return rc;
    a->dropped = 0, a->lazy = 1;
    return a->nl > 0 ? redo_block(x, a, a->nl - 1) : 0;
}

/* ---------------------------------------------------------------- backward */

/* The backward of a norm whose output went through the column-parallel GEMMs: dn [N x h], their
 * input gradient (partial over tp), summed over tp (f: all-reduced; sp: reduce-scattered to this
 * rank's rows into dns) and taken through the norm into din [Ns x h] (+=). */
static void norm_bwd(st__xmodel *x, float *din, float *dw, float *db, float *dn, float *dns, const float *inp,
                     const float *w, const float *mean, const float *rstd) {
    float *d = x->sp ? dns : dn;
    sum_rows(x, d, dn);
    x->be->norm_bwd(din, dw, db, d, inp, w, mean, rstd, x->Ns, x->h);
}

/* the [N x h] gradient a row-parallel GEMM's backward reads: dout itself, or with sp dout [Ns x h]
 * gathered from every tp rank into full */
static const float *gathered(st__xmodel *x, const float *dout, float *full) {
    if (!x->sp) return dout;
    x->be->mem_copy(own_rows(x, full), dout, x->Ns * x->h);
    gather_rows(x, full);
    return full;
}

/* whether p lies in a's room of one block's activations (layout's part 1 with full and op recompute), which the
 * next block's rebuild overwrites */
static int in_room(const st__xacts *a, const float *p) {
    uintptr_t q = (uintptr_t)p, lo = (uintptr_t)a->bmem;
    return a->room_n > 0 && a->bmem && q >= lo && q < lo + (uintptr_t)a->room_n * sizeof *p;
}

/* the floats an input half keeps for the weight half per block (wmem): the output gradients of QKV, the
 * projection, fc1 (SwiGLU's two halves) and fc2, and with full and op recompute those GEMMs' inputs that lie in
 * the room (the norms' outputs, the attention's output under full, the activation's output; op keeps the
 * attention's output in layout's part 3, out of the room): torch's weight closures hold the tensors the recompute
 * made, which the lowering prices under full and op recompute (cost/memory.c, st__block_wgrad: op all but the
 * projection's) */
static int64_t wkeep_floats(const st__xmodel *x) {
    int64_t N = x->B * x->T, ql = x->a_l * x->d, kl = x->kv_l * x->d;
    int64_t room = x->recompute == 2 ? N * (2 * x->h + ql + x->f_l) : x->recompute == 3 ? N * (2 * x->h + x->f_l) : 0;
    return N * (ql + 2 * kl + 2 * x->h + 2 * x->f_l) + room;
}

/* A linear layer's backward: whole (a NULL), or split (a zero-bubble schedule's input half, a the
 * micro-batch's activations): the input and bias gradients now, the weight gradient left in a for
 * st__xmodel_backward_weight with what it reads, inp (the activations' own, copied where it lies in the
 * room: in_room) and dout (copied unless `kept`: it lies in the activations and nothing writes it again). */
static void lin_bwd(st__xmodel *x, st__xacts *a, float *dinp, float *dw, float *dbias, const float *dout, int kept,
                    const float *inp, const float *w, int64_t N, int64_t C, int64_t OC) {
    if (!a) {
        x->be->mm_bwd(dinp, dw, dbias, dout, inp, w, N, C, OC);
        return;
    }
    x->be->mm_bwd(dinp, NULL, dbias, dout, inp, w, N, C, OC);
    if (!kept) {
        float *copy = a->wmem + a->wused;
        x->be->mem_copy(copy, dout, N * OC);
        a->wused += N * OC;
        dout = copy;
    }
    if (in_room(a, inp)) {
        float *copy = a->wmem + a->wused;
        x->be->mem_copy(copy, inp, N * C);
        a->wused += N * C;
        inp = copy;
    }
    a->wg[a->nwg++] = (xwgrad){dw, dout, inp, N, C, OC, a->wlayer};
}

/* fused_fwd's backward: dinp [N x C] += the parts' gradients dout[i] [N x w[i]] times their weights,
 * the weights' gradients (back to back from dw0, +=) and the biases' (from db0; NULL: none), as one
 * GEMM's of the gradients joined in fused_buf */
static void fused_bwd(st__xmodel *x, st__xacts *a, float *dinp, float *dw0, float *db0, float *const *dout,
                      const int64_t *w, int n, const float *inp, const float *w0, int64_t N, int64_t C) {
    int64_t W = 0;
    for (int i = 0; i < n; i++) W += w[i];
    float *f = fused_buf(x);
    split_cols(x, f, dout, w, n, N, 1);
    lin_bwd(x, a, dinp, dw0, db0, f, 0, inp, w0, N, C, W);
}

/* a: NULL, the whole backward; else its input half (lin_bwd) */
static int block_bwd(st__xmodel *x, st__xacts *a, const st__xlayer *w, st__xlayer *gw, const xlayer_acts *t,
                     const float *dout, float *din) {
    int64_t N = x->B * x->T, S = x->Ns, h = x->h, ql = x->a_l * x->d, kl = x->kv_l * x->d, F = N * x->f_l;
    float *dn = x->work + 2 * N * h, *dx2 = dn + N * h, *dao = dx2 + N * h, *dq = dao + N * ql, *dk = dq + N * ql;
    float *dv = dk + N * kl, *dg = dv + N * kl, *dh1 = dg + F, *dh3 = dh1 + F;
    float *full = fused_buf(x) + fused_floats(x), *dns = full + N * h; /* sp only */
    /* MLP; with sp the biases after the row-parallel GEMMs get their rows' part */
    if (w->router) {
        x->be->mem_zero(dn, N * h);
        int rc = moe_bwd(x, w, gw, t, x->moe_rows ? dout : gathered(x, dout, full), dn);
        if (rc) return rc;
    } else {
        x->be->mem_zero(dg, F);
        lin_bwd(x, a, dg, gw->w2, x->sp ? NULL : gw->b2, gathered(x, dout, full), 0, t->g, w->w2, N, x->f_l, h);
        if (x->sp) bias_grad(x, gw->b2, dout, S, h);
        if (x->swiglu) x->be->swiglu_bwd(dh1, dh3, t->h1, t->h3, dg, F);
        else x->be->act_bwd(dh1, t->h1, dg, F, x->act);
        x->be->mem_zero(dn, N * h);
        if (x->swiglu) {
            float *d[2] = {dh1, dh3};
            const int64_t width[2] = {x->f_l, x->f_l};
            fused_bwd(x, a, dn, gw->w1, NULL, d, width, 2, t->n2, w->w1, N, h);
            bias_grad(x, gw->b1, dh1, N, x->f_l);
        } else {
            lin_bwd(x, a, dn, gw->w1, gw->b1, dh1, 0, t->n2, w->w1, N, h, x->f_l);
        }
    }
    x->be->mem_copy(dx2, dout, S * h);
    if (w->router && x->moe_rows) /* the rows' norm output went to no other rank whole: its gradient is whole */
        x->be->norm_bwd(dx2, gw->ln2_w, gw->ln2_b, dn, t->x2, w->ln2_w, t->mean2, t->rstd2, S, h);
    else norm_bwd(x, dx2, gw->ln2_w, gw->ln2_b, dn, dns, t->x2, w->ln2_w, t->mean2, t->rstd2);
    /* attention; with attn_rows 2 on this rank's R = Ns rows, every head (q, k, v widths qw, kw) */
    st__xmodel av = attn_view(x);
    int64_t R = av.B * x->T, qw = av.a_l * x->d, kw = av.kv_l * x->d;
    const float *n1 = x->attn_rows == 2 ? own_rows(x, t->n1) : t->n1;
    x->be->mem_zero(dao, N * ql);
    if (x->attn_rows == 1) { /* the rows' gradients, then back to the heads; wo's and bo's partial over the rows */
        float *daor = calloc((size_t)(N * ql), sizeof *daor);
        if (!daor) return ST_ENOMEM;
        lin_bwd(x, a, daor, gw->wo, gw->bo, dx2, 0, t->aor, w->wo, S, x->a * x->d, h);
        int rc = heads_rows(x, dao, daor, 1);
        free(daor);
        if (rc) return rc;
    } else if (x->attn_rows == 2) {
        lin_bwd(x, a, dao, gw->wo, gw->bo, dx2, 0, t->ao, w->wo, S, qw, h);
    } else if (x->attn_rows == 3) { /* this rank's heads' gradient, all-gathered: the whole attention output's */
        int64_t n = N * x->wq_l;
        float *buf = calloc((size_t)(x->tp * n), sizeof *buf);
        if (!buf) return ST_ENOMEM;
        lin_bwd(x, a, buf + x->tr * n, gw->wo, x->sp ? NULL : gw->bo, gathered(x, dx2, full), 0, t->aor, w->wo, N,
                x->wq_l, h);
        if (x->sp) bias_grad(x, gw->bo, dx2, S, h);
        if (x->comm.allgather) x->comm.allgather(x->comm.ctx, buf, n);
        for (int r = 0; r < x->tp; r++) rank_cols(x, buf + r * n, &dao, &x->wq_l, 1, r, 0);
        free(buf);
    } else {
        lin_bwd(x, a, dao, gw->wo, x->sp ? NULL : gw->bo, gathered(x, dx2, full), 0, t->ao, w->wo, N, ql, h);
        if (x->sp) bias_grad(x, gw->bo, dx2, S, h);
    }
    if (x->recompute == 3) { /* op: this block's probabilities again (block_redo), the output into dq's room */
        xlayer_acts r = *t;
        r.ao = dq;
        if (attn_core_fwd(&av, &r)) return ST_ENOMEM;
    }
    x->be->mem_zero(dq, N * (ql + 2 * kl));
    if (attn_core_bwd(&av, t, dao, dq, dk, dv)) return ST_ENOMEM;
    if (x->rope && (rope_at(&av, dq, av.a_l, qw, -1) || rope_at(&av, dk, av.kv_l, kw, -1))) return ST_ENOMEM;
    x->be->mem_zero(dn, N * h);
    float *dqkv[3] = {dq, dk, dv};
    const int64_t width[3] = {qw, kw, kw};
    if (x->attn_rows == 3) { /* this rank's columns of the whole gradients (a slice), its share of QKV's width */
        const int64_t wd[3] = {x->wq_l, x->wk_l, x->wk_l};
        float *f = fused_buf(x);
        rank_cols(x, f, dqkv, wd, 3, x->tr, 1);
        lin_bwd(x, a, dn, gw->wq, gw->bq, f, 0, n1, w->wq, N, h, wd[0] + 2 * wd[1]);
    } else fused_bwd(x, a, dn, gw->wq, gw->bq, dqkv, width, 3, n1, w->wq, R, h);
    x->be->mem_copy(din, dx2, S * h);
    if (x->attn_rows == 2) /* the rows' norm output went to no other rank: its gradient is whole */
        x->be->norm_bwd(din, gw->ln1_w, gw->ln1_b, dn, t->x, w->ln1_w, t->mean1, t->rstd1, S, h);
    else norm_bwd(x, din, gw->ln1_w, gw->ln1_b, dn, dns, t->x, w->ln1_w, t->mean1, t->rstd1);
    return 0;
}

/* the residual stream's gradient in the backward, in turn: x->work's first (a->flip 0) or second N x h */
static float *bwd_grad(const st__xmodel *x, const st__xacts *a, int other) {
    return x->work + ((a->flip ^ other) ? x->B * x->T * x->h : 0);
}

/* the backward of a's next unit (the last unit first); the first one starts from dout or the loss.
 * sa: NULL, the whole backward; else a, its input half (lin_bwd) */
static int bwd_unit(st__xmodel *x, st__xacts *a, st__xacts *sa, const float *dout, double loss_scale) {
    int64_t N = x->B * x->T, S = x->Ns, h = x->h, T = x->T, k0 = chunk_first(x, a->chunk);
    int64_t u = unit_count(a) - 1 - a->bnext - a->head;
    float *d0 = bwd_grad(x, a, 0), *d1 = bwd_grad(x, a, 1);
    /* block_bwd's scratch: the norms' input gradient, the gathered rows (sp) */
    float *dn = x->work + 2 * N * h, *full = x->work + work_floats(x) - 2 * N * h, *dns = full + N * h;
    if (a->bnext++ == 0 && !a->tail) x->be->mem_copy(d0, dout, S * h);
    if (u >= a->nl && x->hd > 1) {
        /* as below on the hN rows of the hd group, the input gradient (partial over its vocabulary shares)
         * reduce-scattered over it to this rank's rows; the tables' other rows' gradients 0 here (each hd rank's
         * share, and the tp ranks' rows, summed by the dp reduction and st__xmodel_sp_grads) */
        int64_t R = x->hN;
        x->be->xent_bwd(a->logits, a->htgt, (float)(loss_scale / (double)N), R, R, x->hV_l, x->hv0);
        x->be->mem_zero(dn, R * h);
        lin_bwd(x, sa, dn, x->glm + x->hv0 * h, NULL, a->logits, 1, a->nf, x->lm + x->hv0 * h, R, h, x->hV_l);
        x->be->mem_zero(d0, S * h);
        x->hcomm.reduce_scatter(x->hcomm.ctx, dns, dn, S * h);
        x->be->norm_bwd(d0, x->glnf_w, x->glnf_b, dns, a->out, x->lnf_w, a->meanf, a->rstdf, S, h);
        return 0;
    }
    if (u >= a->nl) {
        /* d loss / d logits = (p - onehot) / N per micro-batch, times loss_scale */
        x->be->xent_bwd(a->logits, a->targets, (float)(loss_scale / (double)N), N, T, x->V_l, x->v0);
        x->be->mem_zero(dn, N * h);
        lin_bwd(x, sa, dn, x->glm, NULL, a->logits, 1, a->nf, x->lm, N, h, x->V_l);
        x->be->mem_zero(d0, S * h);
        /* f of the output layer */
        norm_bwd(x, d0, x->glnf_w, x->glnf_b, dn, dns, a->out, x->lnf_w, a->meanf, a->rstdf);
        return 0;
    }
    if (u >= 0) {
        int rc = a->lazy && a->built != u ? redo_timed(x, a, (int)u) : 0; /* its activations, right before it */
        if (rc) return rc;
        rc = block_bwd(x, sa, &x->lp[k0 + u], &x->lg[k0 + u], &a->lay[u], d0, d1);
        /* op: what moe_redo_dev made the MoE MLP's backward used, whole in an input half too */
        if (x->recompute == 3) moe_drop(x, a->lay[u].moe);
        a->flip ^= 1;
        return rc;
    }
    const float *dall = x->hd > 1 ? d0 : gathered(x, d0, full); /* the vocab-parallel lookup's reads every row */
    if (x->hd > 1 && x->sp) { /* the whole table's: this rank's rows, the others' 0 (st__xmodel_sp_grads sums them) */
        x->be->mem_zero(full, N * h);
        x->be->mem_copy(own_rows(x, full), d0, S * h);
        dall = full;
    }
    x->be->embed_bwd(x->gwte, a->tokens, dall, N, T, h, x->v0, x->V_l);
    if (x->gwpe) positions(x, d0, x->gwpe, 1);
    return 0;
}

/* an input half's end: the rooms go (what the weight half reads of them, wmem holds: lin_bwd) */
static void rooms_release(const st__xmodel *x, st__xacts *a) {
    if (x->recompute >= 2) acts_release(a, &a->bmem, 0);
    if (x->recompute) acts_release(a, &a->pmem, a->pmem_host);
    a->built = -1, a->lazy = 0;
}

/* split: 0 the whole backward, 1 its input half (the weight gradients left in a, room made for them) */
static int backward(st__xmodel *x, st__xacts *a, const float *dout, double loss_scale, const float **din, int split) {
    if (a->dropped) return ST_EINVAL; /* the recompute has not run */
    int n = unit_count(a);
    if (n == 0) x->be->mem_copy(bwd_grad(x, a, 0), dout, x->Ns * x->h); /* a chunk of nothing */
    while (a->bnext < n) {
        int rc = bwd_unit(x, a, split ? a : NULL, dout, loss_scale);
        if (rc) return rc;
    }
    if (split) rooms_release(x, a);
    if (!a->head) *din = bwd_grad(x, a, 0);
    return 0;
}

int st__xmodel_backward(st__xmodel *x, st__xacts *a, const float *dout, double loss_scale, const float **din) {
    return backward(x, a, dout, loss_scale, din, 0);
}

int st__xmodel_backward_input(st__xmodel *x, st__xacts *a, const float *dout, double loss_scale, const float **din) {
    if (a->wg || a->dropped) return ST_EINVAL;
    /* a block leaves at most qkv, the projection, fc1 (SwiGLU's: both halves) and fc2, whose output
     * gradients (and inputs in the room) take wkeep_floats; the output layer reads its own logits */
    a->wg = malloc((size_t)(7 * a->nl + 1) * sizeof *a->wg);
    a->wmem = acts_alloc(a, wkeep_floats(x) * a->nl, 0);
    if (!a->wg || !a->wmem) return ST_ENOMEM;
    a->nwg = 0, a->wused = 0;
    return backward(x, a, dout, loss_scale, din, 1);
}

int st__xmodel_backward_weight(st__xmodel *x, st__xacts *a) {
    if (!a->wg) return ST_EINVAL;
    for (int i = 0; i < a->nwg; i++) {
        const xwgrad *g = &a->wg[i];
        x->be->mm_bwd(NULL, g->dw, NULL, g->dout, g->inp, NULL, g->N, g->C, g->OC);
    }
    free(a->wg);
    acts_release(a, &a->wmem, 0);
    a->wg = NULL, a->nwg = 0, a->wused = 0;
    return 0;
}

int st__xmodel_recompute_unit(st__xmodel *x, st__xacts *a, int layer) {
    int n = unit_count(a), u = n - 1 - a->bnext, b = u - a->head;
    if (!a->dropped || a->fnext < n || a->bnext >= n || unit_layer(x, a, u) != layer || b < 0 || b >= a->nl)
        return ST_EINVAL;
    int rc = room_alloc(x, a); /* the first: the rooms of one block, which the chunk's blocks use in turn */
    return rc ? rc : redo_block(x, a, b);
}

/* the backward of a's next unit, whole or (split) its input half; with recompute a block's waits for
 * st__xmodel_recompute_unit's of it (the embedding and the output layer are not recomputed) */
static int bwd_piece(st__xmodel *x, st__xacts *a, int layer, const float *dout, double loss_scale, const float **din,
                     int *last, int split) {
    int n = unit_count(a), u = n - 1 - a->bnext, block = u - a->head >= 0 && u - a->head < a->nl;
    *last = 0;
    if ((a->dropped && block && a->built != u - a->head) || a->fnext < n || a->bnext >= n ||
        unit_layer(x, a, u) != layer)
        return ST_EINVAL;
    if (split && !a->wg) { /* the first: room for every weight gradient it leaves, as st__xmodel_backward_input's */
        a->wg = malloc((size_t)(7 * a->nl + 1) * sizeof *a->wg);
        a->wmem = acts_alloc(a, wkeep_floats(x) * a->nl, 0);
        if (!a->wg || !a->wmem) return ST_ENOMEM;
        a->nwg = 0, a->wused = 0, a->wnext = 0;
    }
    if (split != (a->wg != NULL)) return ST_EINVAL; /* one kind of backward per micro-batch */
    a->wlayer = layer;
    int rc = bwd_unit(x, a, split ? a : NULL, dout, loss_scale);
    if (!rc && block) a->built = -1; /* its backward ran: the next recompute piece's */
    if (rc || a->bnext < n) return rc;
    if (split && a->dropped) rooms_release(x, a);
    if (!a->head) *din = bwd_grad(x, a, 0);
    *last = 1;
    return 0;
}

int st__xmodel_backward_unit(st__xmodel *x, st__xacts *a, int layer, const float *dout, double loss_scale,
                             const float **din, int *last) {
    return bwd_piece(x, a, layer, dout, loss_scale, din, last, 0);
}

int st__xmodel_backward_input_unit(st__xmodel *x, st__xacts *a, int layer, const float *dout, double loss_scale,
                                   const float **din, int *last) {
    return bwd_piece(x, a, layer, dout, loss_scale, din, last, 1);
}

int st__xmodel_backward_weight_unit(st__xmodel *x, st__xacts *a, int layer, int *last) {
    int n = unit_count(a);
    *last = 0;
    if (!a->wg || a->wnext >= a->bnext || unit_layer(x, a, n - 1 - a->wnext) != layer) return ST_EINVAL;
    for (int i = 0; i < a->nwg; i++) {
        const xwgrad *g = &a->wg[i];
        if (g->layer == layer) x->be->mm_bwd(NULL, g->dw, NULL, g->dout, g->inp, NULL, g->N, g->C, g->OC);
    }
    if (++a->wnext == n) *last = 1;
    return 0;
}

void st__xmodel_sp_grads(st__xmodel *x, float *g, int64_t lo, int64_t hi) {
    if (!x->sp || x->tp <= 1) return;
    for (int i = 0; i < x->ntensors; i++) {
        const st__xtensor *t = &x->tensors[i];
        int64_t a = t->off, b = t->off + t->nrows * t->ncols;
        if (t->nrows != t->rows || t->ncols != t->cols) continue; /* a shard: its gradient is whole */
        if (t->expert >= 0) continue; /* moe_rows: this rank's own experts (else tp shards them) */
        if (a < lo) a = lo;
        if (b > hi) b = hi;
        if (b > a) allreduce(x, g + (a - lo), b - a, 0);
    }
}
