/* nccl.c: a fake NCCL for tests/cli_run_cuda.sh (strata run --backend cuda without a GPU), built with
 * mpicc beside profiler/mock's fakes, whose libcudart it needs (device memory is host memory there).
 * Communicators from ncclCommInitRank are MPI communicators of their members: the id holds the first
 * rank's world rank and a sequence number; each member sends its world rank and place to it, which
 * sends back the list, and all make the communicator with MPI_Comm_create_group. The collectives
 * compute for real over MPI (all-reduce, all-gather, reduce-scatter, reduce, broadcast, grouped
 * send/recv; a collective inside a group runs at once: every member calls them in the same order), so the
 * executor's numbers can be checked; each buffer must lie in fake device memory (cudart.c's
 * mock_on_device), else it aborts. MOCK_NCCL_FAIL set: ncclCommInitRank fails (the executor's error
 * path). What it cannot check: NCCL's real behaviour (its streams, its
 * ordering constraints between communicators, its performance). */
#include <dlfcn.h>
#include <mpi.h>
#include <nccl.h>
#include <stdlib.h>
#include <string.h>

struct ncclComm {
    MPI_Comm c;
    int rank, n;
};

static void on_device(const void *p, size_t bytes) {
    static int (*f)(const void *, size_t);
    if (!f) f = (int (*)(const void *, size_t))dlsym(RTLD_DEFAULT, "mock_on_device");
    if (!f || !f(p, bytes)) abort();
}

static MPI_Datatype mpi_type(ncclDataType_t t) { return t == ncclInt32 ? MPI_INT : MPI_FLOAT; }
static size_t esize(ncclDataType_t t) { return t == ncclInt32 ? sizeof(int) : sizeof(float); }

ncclResult_t ncclGetUniqueId(ncclUniqueId *id) {
    static int seq;
    int me[2] = {0, seq++};
    MPI_Comm_rank(MPI_COMM_WORLD, &me[0]);
    memset(id, 0, sizeof *id);
    memcpy(id->internal, me, sizeof me);
    return ncclSuccess;
}

ncclResult_t ncclCommInitRank(ncclComm_t *c, int n, ncclUniqueId id, int r) {
    int root[2], me[2], *world = malloc((size_t)n * sizeof *world);
    MPI_Group wg, grp;
    memcpy(root, id.internal, sizeof root);
    int tag = 31000 + root[1] % 1000;
    if (getenv("MOCK_NCCL_FAIL")) return ncclInvalidUsage;
    if (!world || !(*c = malloc(sizeof **c))) return ncclSystemError;
    MPI_Comm_rank(MPI_COMM_WORLD, &me[1]);
    me[0] = r;
    if (r == 0) {
        world[0] = me[1];
        for (int i = 1; i < n; i++) {
            int m[2];
            MPI_Recv(m, 2, MPI_INT, MPI_ANY_SOURCE, tag, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
            world[m[0]] = m[1];
        }
        for (int i = 1; i < n; i++) MPI_Send(world, n, MPI_INT, world[i], tag, MPI_COMM_WORLD);
    } else {
        MPI_Send(me, 2, MPI_INT, root[0], tag, MPI_COMM_WORLD);
        MPI_Recv(world, n, MPI_INT, root[0], tag, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    }
    MPI_Comm_group(MPI_COMM_WORLD, &wg);
    MPI_Group_incl(wg, n, world, &grp);
    MPI_Comm_create_group(MPI_COMM_WORLD, grp, tag, &(*c)->c);
    MPI_Group_free(&grp);
    MPI_Group_free(&wg);
    free(world);
    (*c)->rank = r, (*c)->n = n;
    return ncclSuccess;
}

ncclResult_t ncclCommDestroy(ncclComm_t c) {
    MPI_Comm_free(&c->c);
    free(c);
    return ncclSuccess;
}
ncclResult_t ncclCommCount(const ncclComm_t c, int *n) {
    *n = c->n;
    return ncclSuccess;
}
ncclResult_t ncclCommUserRank(const ncclComm_t c, int *r) {
    *r = c->rank;
    return ncclSuccess;
}
const char *ncclGetErrorString(ncclResult_t r) { return "mock NCCL error"; }

ncclResult_t ncclAllReduce(const void *s, void *r, size_t count, ncclDataType_t t, ncclRedOp_t op, ncclComm_t c,
                           cudaStream_t st) {
    on_device(s, count * esize(t)), on_device(r, count * esize(t));
    MPI_Allreduce(s == r ? MPI_IN_PLACE : s, r, (int)count, mpi_type(t), op == ncclMax ? MPI_MAX : MPI_SUM, c->c);
    return ncclSuccess;
}
ncclResult_t ncclAllGather(const void *s, void *r, size_t count, ncclDataType_t t, ncclComm_t c, cudaStream_t st) {
    on_device(s, count * esize(t)), on_device(r, count * c->n * esize(t));
    int inplace = (const char *)s == (const char *)r + (size_t)c->rank * count * esize(t);
    MPI_Allgather(inplace ? MPI_IN_PLACE : s, (int)count, mpi_type(t), r, (int)count, mpi_type(t), c->c);
    return ncclSuccess;
}
ncclResult_t ncclReduceScatter(const void *s, void *r, size_t count, ncclDataType_t t, ncclRedOp_t op, ncclComm_t c,
                               cudaStream_t st) {
    on_device(s, count * c->n * esize(t)), on_device(r, count * esize(t));
    MPI_Reduce_scatter_block(s, r, (int)count, mpi_type(t), op == ncclMax ? MPI_MAX : MPI_SUM, c->c);
    return ncclSuccess;
}

/* the root's recvbuff only (as NCCL) */
ncclResult_t ncclReduce(const void *s, void *r, size_t count, ncclDataType_t t, ncclRedOp_t op, int root, ncclComm_t c,
                        cudaStream_t st) {
    on_device(s, count * esize(t));
    if (c->rank == root) on_device(r, count * esize(t));
    MPI_Reduce(c->rank == root && s == r ? MPI_IN_PLACE : s, r, (int)count, mpi_type(t),
               op == ncclMax ? MPI_MAX : MPI_SUM, root, c->c);
    return ncclSuccess;
}
ncclResult_t ncclBroadcast(const void *s, void *r, size_t count, ncclDataType_t t, int root, ncclComm_t c,
                           cudaStream_t st) {
    if (c->rank == root) on_device(s, count * esize(t));
    on_device(r, count * esize(t));
    if (c->rank == root && s != r) memmove(r, s, count * esize(t));
    MPI_Bcast(r, (int)count, mpi_type(t), root, c->c);
    return ncclSuccess;
}

/* sends and receives wait for ncclGroupEnd, which posts them all and waits (NCCL's group semantics
 * for the executor's all-to-all: no order between the calls of one group) */
static MPI_Request reqs[1024];
static int nreqs, depth;

static ncclResult_t flush(void) {
    if (depth > 0) return ncclSuccess;
    MPI_Waitall(nreqs, reqs, MPI_STATUSES_IGNORE);
    nreqs = 0;
    return ncclSuccess;
}
ncclResult_t ncclGroupStart(void) {
    depth++;
    return ncclSuccess;
}
ncclResult_t ncclGroupEnd(void) {
    depth--;
    return flush();
}
ncclResult_t ncclSend(const void *s, size_t count, ncclDataType_t t, int peer, ncclComm_t c, cudaStream_t st) {
    on_device(s, count * esize(t));
    if (nreqs == (int)(sizeof reqs / sizeof reqs[0])) return ncclInternalError;
    MPI_Isend(s, (int)count, mpi_type(t), peer, 0, c->c, &reqs[nreqs++]);
    return flush();
}
ncclResult_t ncclRecv(void *r, size_t count, ncclDataType_t t, int peer, ncclComm_t c, cudaStream_t st) {
    on_device(r, count * esize(t));
    if (nreqs == (int)(sizeof reqs / sizeof reqs[0])) return ncclInternalError;
    MPI_Irecv(r, (int)count, mpi_type(t), peer, 0, c->c, &reqs[nreqs++]);
    return flush();
}
