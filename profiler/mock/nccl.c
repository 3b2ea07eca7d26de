/* nccl.c: a fake NCCL for profiler/mock/run.sh: every rank's part of a collective takes its
 * nccl-tests bus volume at 100 GB/s on its device's clock (all-reduce 2(n-1)/n of the buffer,
 * all-gather and reduce-scatter (n-1)/n of the full size, all-to-all and send/recv what goes to
 * other ranks), so the profile's bus bandwidth is 100 GB/s for each. */
#include <dlfcn.h>
#include <nccl.h>
#include <stdlib.h>

struct ncclComm {
    int rank, n;
};

static void work(int dev, double bytes) {
    static void (*f)(int, double);
    if (!f) f = (void (*)(int, double))dlsym(RTLD_DEFAULT, "mock_work_dev");
    f(dev, bytes / 100e9 * 1e3);
}

ncclResult_t ncclCommInitAll(ncclComm_t *c, int n, const int *devs) {
    for (int i = 0; i < n; i++) {
        c[i] = malloc(sizeof **c);
        c[i]->rank = i, c[i]->n = n;
    }
    return ncclSuccess;
}
ncclResult_t ncclCommInitRank(ncclComm_t *c, int n, ncclUniqueId id, int r) { return ncclInternalError; }
ncclResult_t ncclCommDestroy(ncclComm_t c) { free(c); return ncclSuccess; }
const char *ncclGetErrorString(ncclResult_t r) { return "mock NCCL error"; }
ncclResult_t ncclGroupStart(void) { return ncclSuccess; }
ncclResult_t ncclGroupEnd(void) { return ncclSuccess; }
ncclResult_t ncclAllReduce(const void *s, void *r, size_t count, ncclDataType_t t, ncclRedOp_t op, ncclComm_t c,
                           cudaStream_t st) {
    work(c->rank, count * 2.0 * 2 * (c->n - 1) / c->n);
    return ncclSuccess;
}
ncclResult_t ncclAllGather(const void *s, void *r, size_t count, ncclDataType_t t, ncclComm_t c, cudaStream_t st) {
    work(c->rank, count * 2.0 * (c->n - 1));
    return ncclSuccess;
}
ncclResult_t ncclReduceScatter(const void *s, void *r, size_t count, ncclDataType_t t, ncclRedOp_t op, ncclComm_t c,
                               cudaStream_t st) {
    work(c->rank, count * 2.0 * (c->n - 1));
    return ncclSuccess;
}
ncclResult_t ncclSend(const void *s, size_t count, ncclDataType_t t, int peer, ncclComm_t c, cudaStream_t st) {
    if (peer != c->rank) work(c->rank, count * 2.0);
    return ncclSuccess;
}
ncclResult_t ncclRecv(void *r, size_t count, ncclDataType_t t, int peer, ncclComm_t c, cudaStream_t st) {
    return ncclSuccess;
}
