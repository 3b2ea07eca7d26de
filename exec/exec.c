/* exec.c: what the executor says with or without its runtime built (exec.h): the backends, the
 * measured kinds and compared tensors by name, the result's destructor, the measure pass,
 * whether a lowering's transfers suit a transport that matches them by order (NCCL), and which
 * copy of a replicated plan's job a world rank runs. */
#include "exec/exec.h"
#include "exec/exec_private.h"

#include <stdlib.h>
#include <string.h>

static const char *const backend_names[ST_EXEC_COUNT] = {"cpu", "cuda"};

const char *st_exec_backend_name(st_exec_backend b) { return (unsigned)b < ST_EXEC_COUNT ? backend_names[b] : "?"; }

int st_exec_backend_parse(const char *s, st_exec_backend *out) {
    for (int i = 0; i < ST_EXEC_COUNT; i++)
        if (!strcmp(s, backend_names[i])) {
            *out = (st_exec_backend)i;
            return 0;
        }
    return ST_EINVAL;
}

int st_exec_job_rank(int nranks, int replicas, st_exec_backend backend, int world_rank, int world_size, int *rank,
                     st_error *err) {
    if (replicas <= 1) {
        *rank = world_rank;
        return 0; /* check_plan compares the world's size with the plan's ranks */
    }
    /* the cuda backend's communicators number the world's ranks (exec/cuda.c's comm_init) */
    if (backend != ST_EXEC_CPU)
        return st_error_set(err, ST_EINVAL, NULL, "plan", "the %s backend runs no replicated plan yet: --backend cpu",
                            st_exec_backend_name(backend));
    if (world_size != nranks * replicas)
        return st_error_set(err, ST_EINVAL, NULL, "plan",
                            "the plan runs on %d ranks (tp x pp x dp x cp), %d copies of them (the ILP's replicated "
                            "mesh axes); mpirun started %d (mpirun -np %d)", nranks, replicas, world_size,
                            nranks * replicas);
    *rank = world_rank / replicas;
    return 0;
}

double st_exec_arena_bytes(const st_program *pg) {
    double now = pg->base_bytes, peak = now;
    for (int i = 0; i < pg->n; i++) {
        st_ins in;
        st_program_ins(pg, i, &in);
        now += in.alloc_bytes;
        if (now > peak) peak = now;
        now -= in.free_bytes;
    }
    return peak;
}

const char *const st_exec_tensor_names[ST_EXEC_TENSORS] = {
    "wte", "wpe", "ln1_w", "ln1_b", "wq", "wk", "wv", "bq", "bk", "bv", "wo",
    "bo",  "ln2_w", "ln2_b", "w1", "b1", "w3", "w2", "b2", "lnf_w", "lnf_b", "lm_head",
    "router", "moe_w1", "moe_w3", "moe_w2"};

int st__xtensor_index(const char *name) {
    for (int i = 0; i < ST_EXEC_TENSORS; i++)
        if (!strcmp(st_exec_tensor_names[i], name)) return i;
    return -1;
}

static const char *const kind_names[ST_EXEC_KINDS] = {
    "fwd", "bwd", "optimizer", "coll tp", "coll dp", "coll pp", "send", "recv", "coll ep", "recompute", "bwd input",
    "bwd weight", "coll cp"};
const char *st_exec_kind_name(st_exec_kind k) { return (unsigned)k < ST_EXEC_KINDS ? kind_names[k] : "?"; }

void st_exec_result_destroy(st_exec_result *r) {
    free(r->loss);
    free(r->iteration_s);
    free(r->kind_s);
    free(r->row_rank);
    free(r->ref_loss);
    free(r->stats);
    r->loss = r->iteration_s = r->kind_s = r->ref_loss = r->stats = NULL;
    r->row_rank = NULL;
}

int st_exec_p2p_in_order(const st_lowered *l) {
    int n = l->nranks, ok = 1, *next = calloc((size_t)n + 1, sizeof *next); /* per receiver: where to look on */
    if (!next) return -1;
    for (int a = 0; ok && a < n; a++) {
        const st_program *pa = &l->progs[a];
        st_ins s, r;
        for (int i = 0; ok && i < pa->n; i++) { /* a's k-th send to b is b's k-th receive from a */
            st_program_ins(pa, i, &s);
            if (s.kind != ST_INS_SEND || s.peer < 0 || s.peer >= n) continue;
            const st_program *pb = &l->progs[s.peer];
            int *j = &next[s.peer];
            while (*j < pb->n && (st_program_ins(pb, *j, &r), r.kind != ST_INS_RECV || r.peer != a)) ++*j;
            ok = *j < pb->n && r.tag == s.tag;
            ++*j;
        }
        for (int i = 0; i < pa->n; i++) /* the cursors back to the start for the next sender */
            if (st_program_ins(pa, i, &s), s.kind == ST_INS_SEND && s.peer >= 0 && s.peer < n) next[s.peer] = 0;
    }
    free(next);
    return ok;
}
