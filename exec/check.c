/* check.c: --check's comparison at world rank 0 (check.h). Tensors are found by the reference's
 * table, whose offsets rise; QKV and SwiGLU's fc1 hold several names' blocks, each compared under
 * its own. */
#include "exec/check.h"
#include "exec/exec.h"

#include <math.h>
#include <stdlib.h>

void st__xcheck_clear(double *d) {
    for (int i = 0; i < 2 * ST_EXEC_TENSORS; i++) d[i] = -1;
}

void st__xcheck_begin(st__xcheck *c) { c->n = 0, c->nonfinite = 0; }

/* rank 0: n elements (offsets off, values v, all finite) against the reference's, into d */
static void compare(const st__xmodel *R, const int64_t *off, const float *v, int64_t n, double *d) {
    for (int64_t k = 0; k < n; k++) {
        int lo = 0, hi = R->ntensors - 1, t = -1;
        while (lo <= hi) {
            int mid = (lo + hi) / 2;
            if (R->tensors[mid].off <= off[k]) t = mid, lo = mid + 1;
            else hi = mid - 1;
        }
        if (t < 0 || off[k] < 0 || off[k] >= R->tensors[t].off + R->tensors[t].nrows * R->tensors[t].ncols ||
            off[k] >= R->nparams)
            continue;
        int ni = st__xtensor_index(R->tensors[t].name);
        if (ni < 0) continue;
        double ref = R->grads[off[k]], diff = fabs((double)v[k] - ref);
        if (!isfinite(ref)) continue; /* (st__xcheck_step_error stopped the step before) */
        if (diff > d[ni]) d[ni] = diff;
        if (fabs(ref) > d[ST_EXEC_TENSORS + ni]) d[ST_EXEC_TENSORS + ni] = fabs(ref);
    }
}

int st__xcheck_add(st__xcheck *c, int64_t off, float v, double *d) {
    if (!isfinite(v)) {
        c->nonfinite++;
        return 0;
    }
    if (c->ref) {
        compare(c->ref, &off, &v, 1, d);
        return 0;
    }
    if (c->n == c->cap) {
        int64_t cap = c->cap ? 2 * c->cap : 4096;
        int64_t *o = realloc(c->off, (size_t)cap * sizeof *o);
        if (o) c->off = o;
        float *w = o ? realloc(c->val, (size_t)cap * sizeof *w) : NULL;
        if (!w) return ST_ENOMEM;
        c->val = w, c->cap = cap;
    }
    c->off[c->n] = off, c->val[c->n++] = v;
    return 0;
}

/* rank 0: how many of the reference's gradients are not finite (its step cannot be compared) */
static int64_t ref_nonfinite(const st__xcheck *c) {
    int64_t n = 0;
    for (int64_t i = 0; c->ref && i < c->ref->nparams; i++) n += !isfinite(c->ref->grads[i]);
    return n;
}

int st__xcheck_step_error(const st__xcheck *c, int rank, int64_t step, st_error *err) {
    if (c->nonfinite)
        return st_error_set(err, ST_EINVAL, NULL, "plan",
                            "rank %d step %d: %lld gradient value(s) not finite (the run diverged): --check cannot "
                            "compare them", rank, (int)step + 1, (long long)c->nonfinite);
    int64_t nr = ref_nonfinite(c);
    if (nr)
        return st_error_set(err, ST_EINVAL, NULL, "plan",
                            "rank %d step %d: %lld of the single-rank reference's gradient values not finite (the "
                            "reference diverged): --check cannot compare them", rank, (int)step + 1, (long long)nr);
    return 0;
}

st__xwatch st__xcheck_barrier_watch(const st__xwatch *w, int size) {
    st__xwatch b = *w;
    b.timeout_s = w->timeout_s * (size + 1);
    b.label = "the barrier that starts it, after rank 0's single-rank reference of --check";
    return b;
}

int st__xcheck_gather(st__xcheck *c, const st__xwatch *w, MPI_Comm comm, int rank, int size, double *d) {
    enum { PIECE = 1 << 20 }; /* a transport size: rank 0 holds one piece at a time */
    MPI_Request q = MPI_REQUEST_NULL;
    if (rank != 0) {
        int64_t n = c->n;
        st__xwait(w, MPI_Isend(&n, 1, MPI_INT64_T, 0, 0, comm, &q), &q, 1, "send", comm, 0);
        for (int64_t s = 0; s < n; s += PIECE) {
            int m = (int)(n - s < PIECE ? n - s : PIECE);
            MPI_Request r[2] = {MPI_REQUEST_NULL, MPI_REQUEST_NULL};
            int mrc = MPI_Isend(c->off + s, m, MPI_INT64_T, 0, 1, comm, &r[0]);
            if (mrc == MPI_SUCCESS) mrc = MPI_Isend(c->val + s, m, MPI_FLOAT, 0, 2, comm, &r[1]);
            st__xwait(w, mrc, r, 2, "send", comm, 0);
        }
        return 0;
    }
    int rc = 0;
    int64_t *off = malloc((size_t)PIECE * sizeof *off);
    float *v = malloc((size_t)PIECE * sizeof *v);
    if (!off || !v) rc = ST_ENOMEM;
    for (int r = 1; r < size; r++) {
        int64_t n = 0;
        st__xwait(w, MPI_Irecv(&n, 1, MPI_INT64_T, r, 0, comm, &q), &q, 1, "receive", comm, r);
        for (int64_t s = 0; s < n; s += PIECE) {
            int m = (int)(n - s < PIECE ? n - s : PIECE);
            if (rc) { /* (truncated into nothing: the error stands, the sender is not left waiting) */
                MPI_Recv(NULL, 0, MPI_INT64_T, r, 1, comm, MPI_STATUS_IGNORE);
                MPI_Recv(NULL, 0, MPI_FLOAT, r, 2, comm, MPI_STATUS_IGNORE);
                continue;
            }
            MPI_Request rr[2] = {MPI_REQUEST_NULL, MPI_REQUEST_NULL};
            int mrc = MPI_Irecv(off, m, MPI_INT64_T, r, 1, comm, &rr[0]);
            if (mrc == MPI_SUCCESS) mrc = MPI_Irecv(v, m, MPI_FLOAT, r, 2, comm, &rr[1]);
            st__xwait(w, mrc, rr, 2, "receive", comm, r);
            compare(c->ref, off, v, m, d);
        }
    }
    free(off), free(v);
    return rc;
}

void st__xcheck_free(st__xcheck *c) {
    free(c->off), free(c->val);
    c->off = NULL, c->val = NULL, c->n = c->cap = 0;
}
