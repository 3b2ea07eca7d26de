/* cupti.c: a fake libcupti for profiler/mock/run.sh: activity records of what the fake cudart
 * reports, delivered through the client's buffer callbacks at cuptiActivityFlushAll, in the
 * record structs of the CUPTI headers it is built with (CUpti_ActivityKernel10, Memcpy6 ...).
 * Environment: MOCK_CUPTI_REFUSE (enabling fails: insufficient privileges), MOCK_NOREC (no
 * records at all), MOCK_NOEXT (no external correlation records), MOCK_DROP (one record in 50
 * reported dropped). */
#include <cupti.h>
#include <stdlib.h>
#include <string.h>

static CUpti_BuffersCallbackRequestFunc requested;
static CUpti_BuffersCallbackCompleteFunc completed;
static int enabled, next_corr, ext_n;
static uint64_t ext_stack[16];
static size_t dropped;

typedef struct pend {
    int kind;
    uint32_t corr, dev;
    uint64_t start, end, ext;
} pend;
static pend *P;
static size_t np, cap;

static void add(pend p) {
    if (np == cap) {
        cap = cap ? 2 * cap : 1024;
        P = realloc(P, cap * sizeof *P);
    }
    P[np++] = p;
}

CUptiResult cuptiActivityRegisterCallbacks(CUpti_BuffersCallbackRequestFunc a, CUpti_BuffersCallbackCompleteFunc b) {
    requested = a, completed = b;
    return CUPTI_SUCCESS;
}
CUptiResult cuptiActivityEnable(CUpti_ActivityKind k) {
    if (getenv("MOCK_CUPTI_REFUSE")) return CUPTI_ERROR_INSUFFICIENT_PRIVILEGES;
    enabled = 1;
    return CUPTI_SUCCESS;
}
CUptiResult cuptiActivityDisable(CUpti_ActivityKind k) { enabled = 0; return CUPTI_SUCCESS; }
CUptiResult cuptiActivityPushExternalCorrelationId(CUpti_ExternalCorrelationKind k, uint64_t id) {
    ext_stack[ext_n++] = id;
    return CUPTI_SUCCESS;
}
CUptiResult cuptiActivityPopExternalCorrelationId(CUpti_ExternalCorrelationKind k, uint64_t *id) {
    if (!ext_n) return CUPTI_ERROR_QUEUE_EMPTY;
    ext_n--;
    return CUPTI_SUCCESS;
}
CUptiResult cuptiGetResultString(CUptiResult r, const char **s) { *s = "CUPTI_ERROR_MOCK"; return CUPTI_SUCCESS; }
CUptiResult cuptiActivityGetNumDroppedRecords(CUcontext c, uint32_t s, size_t *d) {
    *d = dropped;
    dropped = 0;
    return CUPTI_SUCCESS;
}

/* called by the fake cudart for every kernel and copy */
void mock_cupti_activity(int kind, int dev, double start_ms, double end_ms) {
    if (!enabled || getenv("MOCK_NOREC")) return;
    uint32_t corr = (uint32_t)++next_corr;
    add((pend){kind, corr, (uint32_t)dev, (uint64_t)(start_ms * 1e6), (uint64_t)(end_ms * 1e6), 0});
    if (ext_n && !getenv("MOCK_NOEXT"))
        add((pend){CUPTI_ACTIVITY_KIND_EXTERNAL_CORRELATION, corr, 0, 0, 0, ext_stack[ext_n - 1]});
    if (getenv("MOCK_DROP") && corr % 50 == 0) dropped++;
}

static size_t record_size(int kind) {
    return kind == CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL ? sizeof(CUpti_ActivityKernel10)
           : kind == CUPTI_ACTIVITY_KIND_MEMCPY         ? sizeof(CUpti_ActivityMemcpy6)
                                                        : sizeof(CUpti_ActivityExternalCorrelation);
}

CUptiResult cuptiActivityFlushAll(uint32_t flag) {
    size_t i = 0;
    while (i < np) {
        uint8_t *buf;
        size_t size, max, off = 0;
        requested(&buf, &size, &max);
        while (i < np && off + 256 <= size) {
            pend *p = &P[i++];
            size_t n = record_size(p->kind);
            memset(buf + off, 0, n);
            if (p->kind == CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL) {
                CUpti_ActivityKernel10 *k = (void *)(buf + off);
                k->kind = p->kind, k->start = p->start, k->end = p->end, k->deviceId = p->dev;
                k->correlationId = p->corr;
            } else if (p->kind == CUPTI_ACTIVITY_KIND_MEMCPY) {
                CUpti_ActivityMemcpy6 *m = (void *)(buf + off);
                m->kind = p->kind, m->start = p->start, m->end = p->end, m->deviceId = p->dev;
                m->correlationId = p->corr;
            } else {
                CUpti_ActivityExternalCorrelation *e = (void *)(buf + off);
                e->kind = p->kind, e->externalKind = CUPTI_EXTERNAL_CORRELATION_KIND_CUSTOM0;
                e->externalId = p->ext, e->correlationId = p->corr;
            }
            off += n;
        }
        completed(NULL, 0, buf, size, off);
    }
    np = 0;
    return CUPTI_SUCCESS;
}

CUptiResult cuptiActivityGetNextRecord(uint8_t *buf, size_t valid, CUpti_Activity **rec) {
    size_t off = *rec ? (size_t)((uint8_t *)*rec - buf) + record_size((*rec)->kind) : 0;
    if (off >= valid) return CUPTI_ERROR_MAX_LIMIT_REACHED;
    *rec = (CUpti_Activity *)(buf + off);
    return CUPTI_SUCCESS;
}
