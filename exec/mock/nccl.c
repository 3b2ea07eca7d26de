/* nccl.c: a fake NCCL for tests/cli_run_cuda.sh (strata run --backend cuda without a GPU), built with
 * mpicc beside profiler/mock's fakes, whose libcudart it needs (device memory is host memory there).
 * Communicators from ncclCommInitRank are MPI communicators of their members: the id holds the first
 * rank's world rank and a sequence number; each member sends its world rank and place to it, which
 * sends back the list, and all make the communicator with MPI_Comm_create_group. The collectives
 * compute for real over MPI (all-reduce, all-gather, reduce-scatter, reduce, broadcast, after their
 * stream's transfers; a collective inside a group runs at once: every member calls them in the same
 * order), so the executor's numbers can be checked; sends and receives stay in flight on their
 * stream (below). Each buffer must lie in fake device memory (cudart.c's mock_on_device), else it
 * aborts; each is an access of its stream (read: the send buffer; written: the receive buffer) that
 * the fake cudart checks against the other streams' (mock_access). MOCK_NCCL_FAIL set: ncclCommInitRank fails (the executor's error path). What it cannot
 * check: NCCL's real behaviour (the order of work inside a stream beyond what is said below, its
 * ordering constraints between communicators, its performance). */
#include <dlfcn.h>
#include <mpi.h>
#include <nccl.h>
#include <stdint.h>
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

/* what an operation on stream st reads (write 0) or writes of the device, for the fake cudart's
 * check of the ordering between streams (cudart.c's mock_access: it aborts on a race) */
static void stream_access(cudaStream_t st, const void *p, size_t bytes, int write, const char *what) {
    static void (*f)(cudaStream_t, const void *, size_t, int, const char *);
    if (!f) f = (void (*)(cudaStream_t, const void *, size_t, int, const char *))dlsym(RTLD_DEFAULT, "mock_access");
    if (f) f(st, p, bytes, write, what);
}

int mock_nccl_drain(cudaStream_t s, int wait);

/* device memory open to the host around this fake's own work (cudart.c's mock_dev_access) */
static void dev_access(int on) {
    static void (*f)(int);
    if (!f) f = (void (*)(int))dlsym(RTLD_DEFAULT, "mock_dev_access");
    if (f) f(on);
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
    mock_nccl_drain(st, 1); /* after the stream's transfers */
    on_device(s, count * esize(t)), on_device(r, count * esize(t));
    stream_access(st, s, count * esize(t), 0, "ncclAllReduce"), stream_access(st, r, count * esize(t), 1, "ncclAllReduce");
    dev_access(1);
    MPI_Allreduce(s == r ? MPI_IN_PLACE : s, r, (int)count, mpi_type(t), op == ncclMax ? MPI_MAX : MPI_SUM, c->c);
    dev_access(0);
    return ncclSuccess;
}
ncclResult_t ncclAllGather(const void *s, void *r, size_t count, ncclDataType_t t, ncclComm_t c, cudaStream_t st) {
    mock_nccl_drain(st, 1); /* after the stream's transfers */
    on_device(s, count * esize(t)), on_device(r, count * c->n * esize(t));
    int inplace = (const char *)s == (const char *)r + (size_t)c->rank * count * esize(t);
    stream_access(st, s, count * esize(t), 0, "ncclAllGather"), stream_access(st, r, count * c->n * esize(t), 1, "ncclAllGather");
    dev_access(1);
    MPI_Allgather(inplace ? MPI_IN_PLACE : s, (int)count, mpi_type(t), r, (int)count, mpi_type(t), c->c);
    dev_access(0);
    return ncclSuccess;
}
ncclResult_t ncclReduceScatter(const void *s, void *r, size_t count, ncclDataType_t t, ncclRedOp_t op, ncclComm_t c,
                               cudaStream_t st) {
    mock_nccl_drain(st, 1); /* after the stream's transfers */
    on_device(s, count * c->n * esize(t)), on_device(r, count * esize(t));
    stream_access(st, s, count * c->n * esize(t), 0, "ncclReduceScatter");
    stream_access(st, r, count * esize(t), 1, "ncclReduceScatter");
    dev_access(1);
    MPI_Reduce_scatter_block(s, r, (int)count, mpi_type(t), op == ncclMax ? MPI_MAX : MPI_SUM, c->c);
    dev_access(0);
    return ncclSuccess;
}

/* the root's recvbuff only (as NCCL) */
ncclResult_t ncclReduce(const void *s, void *r, size_t count, ncclDataType_t t, ncclRedOp_t op, int root, ncclComm_t c,
                        cudaStream_t st) {
    mock_nccl_drain(st, 1); /* after the stream's transfers */
    on_device(s, count * esize(t));
    if (c->rank == root) on_device(r, count * esize(t));
    stream_access(st, s, count * esize(t), 0, "ncclReduce");
    if (c->rank == root) stream_access(st, r, count * esize(t), 1, "ncclReduce");
    dev_access(1);
    MPI_Reduce(c->rank == root && s == r ? MPI_IN_PLACE : s, r, (int)count, mpi_type(t),
               op == ncclMax ? MPI_MAX : MPI_SUM, root, c->c);
    dev_access(0);
    return ncclSuccess;
}
ncclResult_t ncclBroadcast(const void *s, void *r, size_t count, ncclDataType_t t, int root, ncclComm_t c,
                           cudaStream_t st) {
    mock_nccl_drain(st, 1); /* after the stream's transfers */
    if (c->rank == root) on_device(s, count * esize(t));
    on_device(r, count * esize(t));
    if (c->rank == root && s != r) stream_access(st, s, count * esize(t), 0, "ncclBroadcast");
    stream_access(st, r, count * esize(t), 1, "ncclBroadcast");
    dev_access(1);
    if (c->rank == root && s != r) memmove(r, s, count * esize(t));
    MPI_Bcast(r, (int)count, mpi_type(t), root, c->c);
    dev_access(0);
    return ncclSuccess;
}

/* NCCL's group and stream semantics, as strict as the real thing where it matters: the sends and
 * receives of a group are posted at ncclGroupEnd (a call outside a group is a group of its own) and
 * left in flight on their stream: the fake cudart waits for them before the stream's next work and
 * in cudaStreamSynchronize (mock_nccl_drain), as a GPU would. A send is done only once its receive
 * took it (MPI_Issend: NCCL's send may wait for its receive), so two ranks that each wait for their
 * send before they receive from the other hang here as they can on GPUs. (A transfer starts when it
 * is posted, not after its stream's earlier work: exec/cuda.c waits for that work before.) */
static struct {
    int send;
    void *buf;
    int count, peer;
    ncclDataType_t t;
    ncclComm_t c;
    cudaStream_t s;
} ops[1024];
static int nops, depth;
/* in flight: MPI moves a host copy (the bounce), since the device pages are closed to the host
 * between calls, and MPI may read or write them in any later call; a receive's lands on the device
 * when it is waited for */
static struct {
    cudaStream_t s;
    MPI_Request q;
    void *bounce, *dev; /* dev: a receive's buffer, NULL for a send */
    size_t bytes;
} flight[4096];
static int nflight;

/* flight i done: a receive's data onto the device, the bounce freed, the slot reused */
static void landed(int i) {
    if (flight[i].dev) {
        dev_access(1);
        memcpy(flight[i].dev, flight[i].bounce, flight[i].bytes);
        dev_access(0);
    }
    free(flight[i].bounce);
    flight[i] = flight[--nflight];
}

/* stream s's transfers in flight (NULL: every stream's) waited for (wait) or tested: 1 when none is
 * left (exec/mock's cudart calls it) */
int mock_nccl_drain(cudaStream_t s, int wait) {
    int left = 0;
    for (int i = 0; i < nflight;) {
        int done = 1;
        if (s && flight[i].s != s) done = 0;
        else if (wait) MPI_Wait(&flight[i].q, MPI_STATUS_IGNORE);
        else MPI_Test(&flight[i].q, &done, MPI_STATUS_IGNORE);
        if (done) landed(i);
        else left += !s || flight[i].s == s, i++;
    }
    return !left;
}

static ncclResult_t flush(void) {
    if (depth > 0) return ncclSuccess;
    if (nflight + nops > (int)(sizeof flight / sizeof flight[0])) return ncclInternalError;
    for (int i = 0; i < nops; i++, nflight++) {
        size_t bytes = (size_t)ops[i].count * esize(ops[i].t);
        void *b = malloc(bytes ? bytes : 1);
        if (!b) abort();
        flight[nflight].s = ops[i].s, flight[nflight].bounce = b, flight[nflight].bytes = bytes;
        flight[nflight].dev = ops[i].send ? NULL : ops[i].buf;
        if (ops[i].send) {
            dev_access(1);
            memcpy(b, ops[i].buf, bytes);
            dev_access(0);
            MPI_Issend(b, ops[i].count, mpi_type(ops[i].t), ops[i].peer, 0, ops[i].c->c, &flight[nflight].q);
        } else {
            MPI_Irecv(b, ops[i].count, mpi_type(ops[i].t), ops[i].peer, 0, ops[i].c->c, &flight[nflight].q);
        }
    }
    nops = 0;
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
static ncclResult_t p2p(int send, const void *buf, size_t count, ncclDataType_t t, int peer, ncclComm_t c,
                        cudaStream_t s) {
    on_device(buf, count * esize(t));
    if (nops == (int)(sizeof ops / sizeof ops[0]) || peer < 0 || peer >= c->n) return ncclInvalidArgument;
    stream_access(s, buf, count * esize(t), !send, send ? "ncclSend" : "ncclRecv");
    ops[nops++] = (__typeof__(ops[0])){send, (void *)(uintptr_t)buf, (int)count, peer, t, c, s};
    return flush();
}
ncclResult_t ncclSend(const void *s, size_t count, ncclDataType_t t, int peer, ncclComm_t c, cudaStream_t st) {
    return p2p(1, s, count, t, peer, c, st);
}
ncclResult_t ncclRecv(void *r, size_t count, ncclDataType_t t, int peer, ncclComm_t c, cudaStream_t st) {
    return p2p(0, r, count, t, peer, c, st);
}
