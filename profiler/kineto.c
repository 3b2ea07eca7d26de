/* kineto.c: `strata calibrate`: a PyTorch profiler (Kineto) trace to a calibration profile
 * (cost/profile.c), without a GPU.
 *
 * The trace (torch.profiler.profile(...).export_chrome_trace, PyTorch 2.x) is Chrome trace JSON:
 * {"deviceProperties": [{"id", "name", ...}], "traceEvents": [...], ...}, plain or gzip (read by traces/reader.c; the
 * file starts with 1f 8b). Complete events ("ph": "X", ts and dur in microseconds) of these "cat"s
 * matter:
 *   cpu_op, user_annotation  operators on a host thread (pid, tid), nested in time; args
 *                            "External id", and with record_shapes "Input Dims" (one shape per
 *                            input) and "Input type" ("c10::BFloat16", "c10::Half", "float", ...);
 *                            record_param_comms (and nccl:* in newer versions) carry "Collective
 *                            name", "In msg nelems", "Out msg nelems", "Group size", "dtype" and
 *                            sometimes "Process Group Ranks";
 *   cuda_runtime, cuda_driver  launches (cudaLaunchKernel, cuLaunchKernel, ...): "correlation" and
 *                            the "External id" of the operator active when they ran;
 *   kernel                   GPU kernels: "correlation", "External id", "device", "stream";
 *   gpu_memcpy               copies ("Memcpy" in PyTorch 1.8/1.9), named "Memcpy HtoD (Pinned ->
 *                            Device)", "Memcpy DtoH (Device -> Pinned)", ... (Kineto's memcpy
 *                            names: kind, then source and destination memory); args "bytes".
 * PyTorch 1.8/1.9 wrote "Operator", "Runtime" and "Kernel" for the categories and "external id"
 * (lowercase) on launches and kernels, "Input dims" on operators; both spellings are read. ROCm
 * traces have the same layout with HIP launches (hipLaunchKernel) and RCCL's kernels, which keep
 * NCCL's names.
 * Linking (HolisticTraceAnalysis's rule, trace_link): kernel -> launch with the same correlation ->
 * the operator with the launch's External id that spans the launch on its thread; else the
 * innermost operator spanning the launch on its thread (PyTorch 2.x mostly writes the correlation
 * id as the launch's External id, which names no operator); without a launch, the kernel's own
 * External id.
 * The GPU (resolve_gpu): --gpu, else the deviceProperties entry of the device the kernels ran on:
 * a preset by its exact name, else by family, SM count and memory ("NVIDIA A100-PG509-200", 108
 * SMs, 39.4 GiB: a100-sxm-40g), else the device's own name labels the profile (it then applies as
 * measured to a cluster whose gpu.name is that name, never scaled). An AMD trace never gets an
 * NVIDIA preset. The date is the trace's (set_date).
 * Several ranks of one job (a folder of traces, or FILE,FILE): one world size, each rank once, one
 * GPU. Compute, memory and copy samples pool; the k-th collective call of each key (collective,
 * scope, group size, bytes) on every rank is one call (match_calls), whose transfer time is the
 * fastest rank's kernel time (the last to arrive waits for nobody) and whose other ranks' extra
 * time is waiting, counted in the summary and kept out of the tables.
 *
 * A kernel is charged to the innermost operator on the way out from there that strata has a class
 * for (at most MAX_WALK levels up: index_select -> embedding), and an operator call becomes one
 * sample: its FLOPs or bytes over the summed time of its kernels (a split-K GEMM's two kernels
 * are one GEMM, as the cost model prices it).
 *   Fused attention (aten::_scaled_dot_product_flash_attention, _efficient_attention and their
 *   backward): FLOPs as cost/ counts them, 4 b heads s_q s_k d forward (q [b, heads, s_q, d], k
 *   [b, kv_heads, s_k, d]), halved when "Concrete Inputs" says is_causal, 2.5x for backward.
 *   GEMM FLOPs from "Input Dims": mm [m,k]x[k,n] = 2mkn (addmm: inputs 1 and 2); bmm
 *   [b,m,k]x[b,k,n] = 2bmkn (baddbmm: inputs 1 and 2); linear input [..., k], weight [n, k] =
 *   2 prod(input[:-1]) k n; matmul by its broadcasting rules. dtype from the first matrix's type;
 *   "float" is recorded as fp32, or as tf32 when a kernel of the call is a TF32 tensor-core GEMM
 *   (tf32_kernel: the operator cannot tell whether TF32 was allowed, its kernels' names can).
 *   Memory-bound bytes, an approximation: every tensor input read once plus one output the size of
 *   the largest input (the broadcast shape; for backward ops the gradient of the largest input),
 *   each at its own element size. Gathers touch less than their inputs: embedding forward counts
 *   the rows it reads and writes (indices x 2 x hidden), nll_loss forward one element per target.
 *   This matches how cost/ sizes these ops (src/core/opgraph.c: stream()) within small terms.
 *   Collectives (NCCL kernels "ncclKernel_*", "ncclDevKernel_*", collective from the kernel name;
 *   all-to-all from the operator, NCCL runs it as SendRecv): message bytes S as comm.c uses them
 *   (all-reduce the buffer, all-gather the gathered output, reduce-scatter the input, all-to-all
 *   what a rank sends), algBw = S / t, busBw = algBw x 2(n-1)/n for all-reduce, x (n-1)/n for
 *   all-gather, reduce-scatter and all-to-all, x 1 for broadcast and send/recv (nccl-tests,
 *   doc/PERFORMANCE.md). Scope intra when the group's ranks are on one node ("Process Group
 *   Ranks" / gpus_per_node when recorded, else group size <= gpus_per_node); send/recv is 2 ranks.
 *   From one rank, a kernel's time includes waiting for the slowest peer, as it does in training;
 *   with every rank's trace the wait is taken out (match_calls). Group sizes the tables were not
 *   measured over are priced from the nearest one's bus bandwidth (cost/profile.c): the summary
 *   says so.
 *   Copies: each pinned host-to-device or device-to-host copy is a sample of its own, bytes over
 *   its duration (offload copies pinned memory; pageable and device-to-device copies are not
 *   what the copy tables price, and are not used).
 * Fitting: samples grouped by (class, dtype), class, (collective, scope, ranks) or copy direction; sizes binned by
 * powers of two; per bin the median size and the median rate (any number of samples), points in
 * increasing size. Medians make one outlier (a kernel slowed by an overlapping one) harmless.
 *
 * Invariants: any input gives a profile or one error, never a crash; the trace is never trusted
 * for sizes (shapes are checked, products bounded); same trace and options, same bytes out.
 */
#include "profiler/profiler.h"
#include "src/io/jsonutil.h"
#include "traces/traces.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_WALK 4                        /* operator levels a kernel may be charged up */
#define MAX_COMM_WALK 8                   /* levels up from a NCCL launch to record_param_comms */
#define MAX_DIMS 16
#define MAX_NUMEL 1e15 /* larger tensors are not real: the shape is refused */
#define MAX_KERNEL_US 3.6e9 /* an hour: no kernel of a training step lasts that long; longer is a broken trace */

enum { K_COMPUTE, K_MEMORY, K_COLL, K_COPY }; /* the profile's table kinds 0..3 */

/* ------------------------------------------------------------------ reading */

/* ------------------------------------------------------------------ small readers */

/* integer-valued number (or a string of digits: some exporters quote ids); 1 when found */
static int get_i64(const json_t *o, const char *key, int64_t *out) {
    const json_t *v = json_object_get(o, key);
    if (json_is_integer(v)) {
        *out = (int64_t)json_integer_value(v);
        return 1;
    }
    if (json_is_real(v)) {
        double d = json_real_value(v);
        if (isfinite(d) && d == floor(d) && fabs(d) < 9e15) {
            *out = (int64_t)d;
            return 1;
        }
        return 0;
    }
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        char *end;
        errno = 0;
        long long x = strtoll(s, &end, 10);
        if (end != s && !*end && !errno) {
            *out = x;
            return 1;
        }
    }
    return 0;
}

static int get_num(const json_t *o, const char *key, double *out) {
    const json_t *v = json_object_get(o, key);
    if (!json_is_number(v)) return 0;
    double d = json_number_value(v);
    if (!isfinite(d)) return 0;
    *out = d;
    return 1;
}

static const char *get_str(const json_t *o, const char *key) {
    const json_t *v = json_object_get(o, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

/* 64-bit FNV-1a over pid and tid as text: the host thread (or GPU stream) an event ran on */
static uint64_t fnv(uint64_t h, const char *s) {
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 0x100000001b3ULL;
    return h;
}
static uint64_t thread_of(const json_t *ev) {
    uint64_t h = 0xcbf29ce484222325ULL;
    const char *keys[] = {"pid", "tid"};
    for (int i = 0; i < 2; i++) {
        const json_t *v = json_object_get(ev, keys[i]);
        char buf[32];
        if (json_is_integer(v))
            snprintf(buf, sizeof buf, "%lld", (long long)json_integer_value(v));
        else if (json_is_string(v))
            h = fnv(h, json_string_value(v)), buf[0] = '\0';
        else
            snprintf(buf, sizeof buf, "?");
        h = fnv(fnv(h, buf), "/");
    }
    return h;
}

/* bytes per element of a Kineto "Input type" / record_param_comms "dtype" string; 0 = not a tensor
 * element type we know */
static double elem_size(const char *t) {
    static const struct {
        const char *name;
        double bytes;
    } m[] = {{"c10::BFloat16", 2}, {"BFloat16", 2}, {"c10::Half", 2}, {"Half", 2}, {"float", 4}, {"Float", 4},
             {"double", 8}, {"Double", 8}, {"long int", 8}, {"long", 8}, {"int64_t", 8}, {"Long", 8},
             {"int", 4}, {"Int", 4}, {"short int", 2}, {"Short", 2}, {"signed char", 1}, {"Char", 1},
             {"unsigned char", 1}, {"Byte", 1}, {"bool", 1}, {"Bool", 1}, {"c10::complex<float>", 8},
             {"ComplexFloat", 8}};
    if (!t) return 0;
    if (strncmp(t, "c10::Float8", 11) == 0 || strncmp(t, "Float8", 6) == 0) return 1;
    for (size_t i = 0; i < sizeof m / sizeof m[0]; i++)
        if (strcmp(t, m[i].name) == 0) return m[i].bytes;
    return 0;
}

static int gemm_dtype(const char *t, st_dtype *out) {
    if (!t) return -1;
    if (!strcmp(t, "c10::BFloat16"))
        *out = ST_DT_BF16;
    else if (!strcmp(t, "c10::Half"))
        *out = ST_DT_FP16;
    else if (!strcmp(t, "float"))
        *out = ST_DT_FP32;
    else if (!strncmp(t, "c10::Float8", 11))
        *out = ST_DT_FP8;
    else
        return -1;
    return 0;
}

/* A shape from "Input Dims"[i]: a list of at most MAX_DIMS integers >= 0 with a product below
 * MAX_NUMEL. Returns the rank, or -1. */
static int shape(const json_t *dims, size_t i, double *d, double *numel) {
    const json_t *s = json_array_get(dims, i);
    if (!json_is_array(s) || json_array_size(s) > MAX_DIMS) return -1;
    int n = (int)json_array_size(s);
    double p = 1;
    for (int j = 0; j < n; j++) {
        const json_t *v = json_array_get(s, (size_t)j);
        if (!json_is_integer(v) || json_integer_value(v) < 0) return -1;
        d[j] = (double)json_integer_value(v);
        p *= d[j];
        if (p > MAX_NUMEL) return -1;
    }
    if (numel) *numel = p;
    return n;
}

/* "Input Dims" (PyTorch 1.10 and later) or "Input dims" (1.8/1.9) */
static const json_t *input_dims(const json_t *args) {
    const json_t *d = json_object_get(args, "Input Dims");
    return d ? d : json_object_get(args, "Input dims");
}

/* "External id", or "external id" as PyTorch 1.8/1.9 wrote it on launches and kernels */
static int get_ext(const json_t *args, int64_t *out) {
    return get_i64(args, "External id", out) || get_i64(args, "external id", out);
}

static const char *input_type(const json_t *args, size_t i) {
    const json_t *t = json_array_get(json_object_get(args, "Input type"), i);
    return json_is_string(t) ? json_string_value(t) : NULL;
}

/* ------------------------------------------------------------------ operators */

typedef struct cpuop {
    double ts, end;
    uint64_t thread;
    int64_t ext;
    int has_ext;
    int parent, depth;
    int idx; /* position in the trace: equal keys keep it */
    const char *name;
    const json_t *args; /* borrowed from the trace; may be NULL */
    /* filled while charging kernels */
    int state;  /* as an operator with a class: 0 not looked at, 1 measurable, 2 no usable shapes, 3 no class */
    int cstate; /* as a communication operator: 0 not looked at, 1 usable sizes, 2 not */
    int kind, cls, dtype, coll, intra, ranks;
    double x;    /* FLOPs, bytes, or message bytes */
    double gpu_s; /* time of the kernels charged to it */
} cpuop;

typedef struct launch {
    int64_t corr, ext;
    int has_ext;
    uint64_t thread;
    double ts;
} launch;

/* the operator's name after its namespace, without leading/trailing underscores */
static void base_name(const char *name, char *out, size_t n) {
    const char *b = name, *p;
    while ((p = strstr(b, "::"))) b = p + 2;
    while (*b == '_') b++;
    snprintf(out, n, "%s", b);
    size_t len = strlen(out);
    while (len > 0 && out[len - 1] == '_') out[--len] = '\0';
}

/* PyTorch's fused attention operators (aten, native_functions.yaml), layout [b, heads, s, d]: where
 * query and key are among the inputs and which input is is_causal. F.scaled_dot_product_attention
 * records one of these inside it (flash for 16-bit on CUDA, memory-efficient otherwise); their
 * kernels are charged to them. */
static const struct {
    const char *name;
    int q, k, causal, backward;
} attn_ops[] = {
    {"scaled_dot_product_flash_attention", 0, 1, 4, 0},
    {"scaled_dot_product_flash_attention_backward", 1, 2, 11, 1},
    {"scaled_dot_product_efficient_attention", 0, 1, 6, 0},
    {"scaled_dot_product_efficient_attention_backward", 1, 2, 11, 1},
};

static int attn_op(const char *base) {
    for (size_t i = 0; i < sizeof attn_ops / sizeof attn_ops[0]; i++)
        if (!strcmp(base, attn_ops[i].name)) return (int)i;
    return -1;
}

/* strata's class of an operator name; -1 when none */
static int op_class(const char *base) {
    static const char *const gemm[] = {"mm", "addmm", "matmul", "linear", "scaled_mm"};
    static const char *const elem_exact[] = {"add", "mul", "copy"};
    static const char *const elem_prefix[] = {"gelu", "silu", "native_dropout", "dropout", "fused_dropout"};
    for (size_t i = 0; i < sizeof gemm / sizeof gemm[0]; i++)
        if (!strcmp(base, gemm[i])) return ST_OPC_GEMM;
    if (!strcmp(base, "bmm") || !strcmp(base, "baddbmm")) return ST_OPC_BGEMM;
    if (attn_op(base) >= 0) return ST_OPC_ATTENTION;
    if (strstr(base, "layer_norm") || strstr(base, "rms_norm")) return ST_OPC_NORM;
    /* log-softmax belongs to the cross-entropy (strata's loss class covers the whole of it) */
    if (strstr(base, "log_softmax") || strstr(base, "cross_entropy") || strstr(base, "nll_loss")) return ST_OPC_LOSS;
    if (strstr(base, "softmax")) return ST_OPC_SOFTMAX;
    if (strstr(base, "embedding")) return ST_OPC_EMBED;
    for (size_t i = 0; i < sizeof elem_exact / sizeof elem_exact[0]; i++)
        if (!strcmp(base, elem_exact[i])) return ST_OPC_ELEMWISE;
    for (size_t i = 0; i < sizeof elem_prefix / sizeof elem_prefix[0]; i++)
        if (!strncmp(base, elem_prefix[i], strlen(elem_prefix[i]))) return ST_OPC_ELEMWISE;
    return -1;
}

/* FLOPs, dtype and class of a GEMM call from its input shapes; 0 or -1 */
static int gemm_shape(const char *base, const json_t *args, double *flops, st_dtype *dt, int *cls) {
    const json_t *dims = input_dims(args);
    double a[MAX_DIMS], b[MAX_DIMS];
    size_t ia = 0, ib = 1;
    if (!strcmp(base, "addmm") || !strcmp(base, "baddbmm")) ia = 1, ib = 2;
    if (!json_is_array(dims)) return -1;
    int na = shape(dims, ia, a, NULL), nb = shape(dims, ib, b, NULL);
    if (na < 1 || nb < 1 || gemm_dtype(input_type(args, ia), dt)) return -1;
    double f = 0;
    *cls = ST_OPC_GEMM;
    if (!strcmp(base, "mm") || !strcmp(base, "addmm") || !strcmp(base, "scaled_mm")) {
        if (na != 2 || nb != 2 || a[1] != b[0]) return -1;
        f = 2 * a[0] * a[1] * b[1];
    } else if (!strcmp(base, "bmm") || !strcmp(base, "baddbmm")) {
        if (na != 3 || nb != 3 || a[0] != b[0] || a[2] != b[1]) return -1;
        f = 2 * a[0] * a[1] * a[2] * b[2];
        *cls = ST_OPC_BGEMM;
    } else if (!strcmp(base, "linear")) {
        /* weight [n, k] */
        if (nb != 2 || a[na - 1] != b[1]) return -1;
        double rows = 1;
        for (int i = 0; i < na - 1; i++) rows *= a[i];
        f = 2 * rows * b[1] * b[0];
    } else { /* matmul (torch.matmul's rules) */
        double k = a[na - 1];
        if (nb == 1) { /* matrix (or batch) x vector */
            if (b[0] != k) return -1;
            double rows = 1;
            for (int i = 0; i < na - 1; i++) rows *= a[i];
            f = 2 * rows * k;
        } else if (nb == 2) { /* [..., m, k] x [k, n]: one GEMM over all rows */
            if (b[0] != k) return -1;
            double rows = 1;
            for (int i = 0; i < na - 1; i++) rows *= a[i];
            f = 2 * rows * k * b[1];
        } else { /* batched, leading dimensions broadcast */
            if (b[nb - 2] != k) return -1;
            double m = na >= 2 ? a[na - 2] : 1, n = b[nb - 1], batch = 1;
            int la = na >= 2 ? na - 2 : 0, lb = nb - 2, l = la > lb ? la : lb;
            for (int i = 0; i < l; i++) {
                double da = i < la ? a[la - 1 - i] : 1, db = i < lb ? b[lb - 1 - i] : 1;
                if (da != db && da != 1 && db != 1) return -1;
                batch *= da > db ? da : db;
            }
            f = 2 * batch * m * k * n;
            *cls = ST_OPC_BGEMM;
        }
    }
    if (!(f > 0) || !isfinite(f)) return -1;
    *flops = f;
    return 0;
}

/* FLOPs and dtype of a fused attention call, counted as cost/ counts them (src/core/opgraph.c,
 * flash()): 4 b heads s_q s_k d forward, half of it with a causal mask, backward 2.5x. The mask is
 * the is_causal argument, which the trace records in "Concrete Inputs" ("True"/"False"); without it
 * the call's work is unknown. 0 or -1. */
static int attention_shape(const char *base, const json_t *args, double *flops, st_dtype *dt) {
    int i = attn_op(base);
    const json_t *dims = input_dims(args);
    const json_t *c = json_array_get(json_object_get(args, "Concrete Inputs"), (size_t)attn_ops[i].causal);
    double q[MAX_DIMS], k[MAX_DIMS];
    if (!json_is_array(dims) || !json_is_string(c)) return -1;
    int causal = !strcmp(json_string_value(c), "True");
    if (!causal && strcmp(json_string_value(c), "False")) return -1;
    if (shape(dims, (size_t)attn_ops[i].q, q, NULL) != 4 || shape(dims, (size_t)attn_ops[i].k, k, NULL) != 4 ||
        q[0] != k[0] || q[3] != k[3] || gemm_dtype(input_type(args, (size_t)attn_ops[i].q), dt))
        return -1;
    double f = 4 * q[0] * q[1] * q[2] * k[2] * q[3] * (causal ? 0.5 : 1) * (attn_ops[i].backward ? 2.5 : 1);
    if (!(f > 0) || !isfinite(f)) return -1;
    *flops = f;
    return 0;
}

/* HBM bytes of a memory-bound call (see the header for the approximation); 0 when unknown */
static double stream_bytes(const char *base, const json_t *args) {
    const json_t *dims = input_dims(args);
    double d[MAX_DIMS], numel, sum = 0, largest = 0;
    if (!json_is_array(dims)) return 0;
    int backward = strstr(base, "backward") != NULL, embedding = !strcmp(base, "embedding");
    if (!backward && (embedding || !strncmp(base, "nll_loss", 8))) {
        /* gathers: embedding(weight [V, h], indices) reads and writes indices x h; nll_loss(input
         * [T, V], target [T]) reads one element per target and writes one */
        double w[MAX_DIMS], ni;
        int nw = shape(dims, 0, w, NULL), nidx = shape(dims, 1, d, &ni);
        double ew = elem_size(input_type(args, 0)), ei = elem_size(input_type(args, 1));
        if (nw < 1 || nidx < 0 || !(ew > 0) || !(ei > 0)) return 0;
        if (embedding) return nw == 2 ? ni * (ei + 2 * w[1] * ew) : 0;
        return ni * (ei + 2 * ew);
    }
    for (size_t i = 0; i < json_array_size(dims); i++) {
        double e = elem_size(input_type(args, i));
        int n = shape(dims, i, d, &numel);
        if (!(e > 0) || n < 1) continue; /* not a tensor, or a 0-d one (a few bytes) */
        sum += numel * e;
        if (numel * e > largest) largest = numel * e;
    }
    return sum + largest;
}

/* collective of a NCCL kernel name; ST_COLL_NONE when it says none (or is not NCCL) */
static st_coll coll_of_kernel(const char *name) {
    const char *p = NULL;
    if (!strncmp(name, "ncclKernel_", 11))
        p = name + 11;
    else if (!strncmp(name, "ncclDevKernel_", 14))
        p = name + 14;
    if (!p) return ST_COLL_NONE;
    static const struct {
        const char *name;
        st_coll c;
    } m[] = {{"AllReduce", ST_COLL_ALLREDUCE},         {"AllGather", ST_COLL_ALLGATHER},
             {"ReduceScatter", ST_COLL_REDUCESCATTER}, {"Broadcast", ST_COLL_BROADCAST},
             {"SendRecv", ST_COLL_SENDRECV},           {"AllToAll", ST_COLL_ALLTOALL}};
    for (size_t i = 0; i < sizeof m / sizeof m[0]; i++) {
        size_t n = strlen(m[i].name);
        if (!strncmp(p, m[i].name, n) && (p[n] == '_' || p[n] == '(' || p[n] == '\0')) return m[i].c;
    }
    return ST_COLL_NONE;
}

static int is_nccl_kernel(const char *name) {
    return !strncmp(name, "ncclKernel_", 11) || !strncmp(name, "ncclDevKernel_", 14);
}

/* collective of a record_param_comms "Collective name" ("allreduce", "_allgather_base",
 * "reduce_scatter_tensor", "all_to_allv", "send", ...): -1 for names strata cannot size
 * (coalesced groups, barrier), ST_COLL_NONE when absent */
static int coll_of_name(const char *s) {
    char b[64];
    size_t n = 0;
    if (!s) return ST_COLL_NONE;
    for (; *s && n + 1 < sizeof b; s++)
        if (*s != '_') b[n++] = (char)(*s >= 'A' && *s <= 'Z' ? *s - 'A' + 'a' : *s);
    b[n] = '\0';
    if (strstr(b, "coalesced")) return -1;
    if (strstr(b, "allreduce")) return ST_COLL_ALLREDUCE;
    if (strstr(b, "allgather")) return ST_COLL_ALLGATHER;
    if (strstr(b, "reducescatter")) return ST_COLL_REDUCESCATTER;
    if (strstr(b, "alltoall")) return ST_COLL_ALLTOALL;
    if (strstr(b, "broadcast")) return ST_COLL_BROADCAST;
    if (strstr(b, "send") || strstr(b, "recv")) return ST_COLL_SENDRECV;
    return -1;
}

/* whether the ranks of "Process Group Ranks" ("[0, 8, 16]" or a list) sit on one node: 1 yes, 0
 * no, -1 not recorded */
static int ranks_one_node(const json_t *args, int gpus_per_node) {
    const json_t *v = json_object_get(args, "Process Group Ranks");
    long long first = -1;
    int n = 0, one = 1;
    if (json_is_array(v)) {
        for (size_t i = 0; i < json_array_size(v); i++) {
            const json_t *r = json_array_get(v, i);
            if (!json_is_integer(r) || json_integer_value(r) < 0) return -1;
            long long node = json_integer_value(r) / gpus_per_node;
            if (n++ == 0) first = node;
            one &= node == first;
        }
        return n ? one : -1;
    }
    const char *s = json_is_string(v) ? json_string_value(v) : NULL;
    if (!s) return -1;
    while (*s == ' ' || *s == '[') s++;
    while (*s && *s != ']') {
        char *end;
        errno = 0;
        long long r = strtoll(s, &end, 10);
        if (end == s || errno || r < 0) return -1;
        long long node = r / gpus_per_node;
        if (n++ == 0) first = node;
        one &= node == first;
        s = end;
        while (*s == ' ' || *s == ',') s++;
    }
    return n ? one : -1;
}

/* sizes of a communication operator; 0 when usable */
static int comm_shape(const json_t *args, st_coll kernel_coll, int gpus_per_node, cpuop *o) {
    int64_t in = -1, out = -1, group = 0;
    int named = coll_of_name(get_str(args, "Collective name"));
    if (named < 0) return -1;
    get_i64(args, "In msg nelems", &in);
    get_i64(args, "Out msg nelems", &out);
    if (!get_i64(args, "Group size", &group) || group < 1 || group > ST_MAX_GPUS) return -1;
    double e = elem_size(get_str(args, "dtype"));
    if (!(e > 0)) e = elem_size(input_type(args, 0));
    if (!(e > 0) || (in < 0 && out < 0) || in > (int64_t)MAX_NUMEL || out > (int64_t)MAX_NUMEL) return -1;
    /* NCCL runs all-to-all as grouped send/recv: the operator knows better than the kernel */
    st_coll c = kernel_coll;
    if (c == ST_COLL_NONE || (named == ST_COLL_ALLTOALL && c == ST_COLL_SENDRECV)) c = (st_coll)named;
    if (c == ST_COLL_NONE) return -1;
    double n = (double)group, i = in > 0 ? (double)in : 0, u = out > 0 ? (double)out : 0, S;
    switch (c) {
    case ST_COLL_ALLGATHER: S = fmax(u, i * n); break;      /* the gathered output */
    case ST_COLL_REDUCESCATTER: S = fmax(i, u * n); break;  /* the input */
    default: S = fmax(i, u); break;
    }
    S *= e;
    int ranks = c == ST_COLL_SENDRECV ? 2 : (int)group;
    if (!(S > 0) || ranks < 2) return -1;
    int one = ranks_one_node(args, gpus_per_node);
    o->kind = K_COLL;
    o->coll = c;
    o->intra = one >= 0 ? one : group <= gpus_per_node;
    o->ranks = ranks;
    o->x = S;
    return 0;
}

/* Classifies operator i once (state, kind, class, size). */
static void look_at(cpuop *o) {
    if (o->state) return;
    char base[128];
    base_name(o->name, base, sizeof base);
    int cls = op_class(base);
    if (cls < 0) {
        o->state = 3;
        return;
    }
    o->cls = cls;
    o->state = 2;
    if (cls == ST_OPC_GEMM || cls == ST_OPC_BGEMM || cls == ST_OPC_ATTENTION) {
        st_dtype dt;
        double flops;
        if (cls == ST_OPC_ATTENTION ? attention_shape(base, o->args, &flops, &dt)
                                    : gemm_shape(base, o->args, &flops, &dt, &o->cls))
            return;
        o->kind = K_COMPUTE;
        o->dtype = (int)dt;
        o->x = flops;
    } else {
        double bytes = stream_bytes(base, o->args);
        if (!(bytes > 0)) return;
        o->kind = K_MEMORY;
        o->x = bytes;
    }
    o->state = 1;
}

/* ------------------------------------------------------------------ the import */

typedef struct sample {
    int kind, cls, dtype, coll, intra, ranks, dir;
    double x, y;
} sample;

typedef struct table {
    int kind, cls, dtype, coll, intra, ranks, dir;
    int n, samples;
    double *x, *y; /* SI: FLOPs -> FLOP/s, bytes -> bytes/s */
} table;

struct st_calib {
    st_calib_summary sum;
    char source[300], date[16], cuda[16], driver[16];
    int n;
    table *t;
};

void st_calib_opts_init(st_calib_opts *o) {
    memset(o, 0, sizeof *o);
    o->gpus_per_node = 8;
}

void st_calib_free(st_calib *c) {
    if (!c) return;
    for (int i = 0; i < c->n; i++) {
        free(c->t[i].x);
        free(c->t[i].y);
    }
    free(c->t);
    free(c);
}

const st_calib_summary *st_calib_get_summary(const st_calib *c) { return &c->sum; }

static int cmp_op(const void *pa, const void *pb) {
    const cpuop *a = pa, *b = pb;
    if (a->thread != b->thread) return a->thread < b->thread ? -1 : 1;
    if (a->ts != b->ts) return a->ts < b->ts ? -1 : 1;
    if (a->end != b->end) return a->end > b->end ? -1 : 1; /* the enclosing one first */
    return a->idx - b->idx;
}

/* operators by External id, innermost first */
typedef struct extref {
    int64_t ext;
    int depth, op;
} extref;
static int cmp_ext(const void *pa, const void *pb) {
    const extref *a = pa, *b = pb;
    if (a->ext != b->ext) return a->ext < b->ext ? -1 : 1;
    if (a->depth != b->depth) return a->depth > b->depth ? -1 : 1;
    return a->op - b->op;
}

static int cmp_launch(const void *pa, const void *pb) {
    const launch *a = pa, *b = pb;
    if (a->corr != b->corr) return a->corr < b->corr ? -1 : 1;
    return a->ts < b->ts ? -1 : a->ts > b->ts;
}

static int cmp_sample(const void *pa, const void *pb) {
    const sample *a = pa, *b = pb;
    const int ka[] = {a->kind, a->cls, a->dtype, a->coll, -a->intra, a->ranks, a->dir};
    const int kb[] = {b->kind, b->cls, b->dtype, b->coll, -b->intra, b->ranks, b->dir};
    for (int i = 0; i < 7; i++)
        if (ka[i] != kb[i]) return ka[i] < kb[i] ? -1 : 1;
    if (a->x != b->x) return a->x < b->x ? -1 : 1;
    return a->y < b->y ? -1 : a->y > b->y;
}

static int cmp_double(const void *pa, const void *pb) {
    double a = *(const double *)pa, b = *(const double *)pb;
    return a < b ? -1 : a > b;
}

static int same_group(const sample *a, const sample *b) {
    return a->kind == b->kind && a->cls == b->cls && a->dtype == b->dtype && a->coll == b->coll &&
           a->intra == b->intra && a->ranks == b->ranks && a->dir == b->dir;
}

/* the power-of-two bin of a size: [2^(e-1), 2^e) */
static int bin_of(double x) {
    int e;
    frexp(x, &e);
    return e;
}

static double median_sorted(const double *v, int n) { return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]); }

/* Fits tables from samples (sorted here). */
static int fit(st_calib *c, sample *s, int n) {
    qsort(s, (size_t)n, sizeof *s, cmp_sample);
    double *ys = malloc(((size_t)n + 1) * sizeof *ys);
    if (!ys) return ST_ENOMEM;
    int rc = 0;
    for (int i = 0; i < n;) {
        int j = i;
        while (j < n && same_group(&s[i], &s[j])) j++;
        table *grown = realloc(c->t, (size_t)(c->n + 1) * sizeof *grown);
        if (!grown) {
            rc = ST_ENOMEM;
            break;
        }
        c->t = grown;
        table *t = &c->t[c->n++];
        memset(t, 0, sizeof *t);
        t->kind = s[i].kind, t->cls = s[i].cls, t->dtype = s[i].dtype, t->coll = s[i].coll;
        t->intra = s[i].intra, t->ranks = s[i].ranks, t->dir = s[i].dir, t->samples = j - i;
        t->x = malloc((size_t)(j - i) * sizeof *t->x);
        t->y = malloc((size_t)(j - i) * sizeof *t->y);
        if (!t->x || !t->y) {
            rc = ST_ENOMEM;
            break;
        }
        /* power-of-two bins: [2^(e-1), 2^e) by frexp's exponent; x is sorted, so bins are runs */
        for (int a = i; a < j;) {
            int b = a;
            while (b < j && bin_of(s[b].x) == bin_of(s[a].x)) b++;
            for (int k = a; k < b; k++) ys[k - a] = s[k].y;
            qsort(ys, (size_t)(b - a), sizeof *ys, cmp_double);
            int m = b - a;
            /* median size, rounded down so the point stays inside its bin (sizes are counts) */
            double x = floor(m % 2 ? s[a + m / 2].x : 0.5 * (s[a + m / 2 - 1].x + s[a + m / 2].x));
            if (x < s[a].x) x = s[a].x;
            t->x[t->n] = x;
            t->y[t->n] = median_sorted(ys, m);
            t->n++;
            a = b;
        }
        c->sum.tables[t->kind]++;
        c->sum.points[t->kind] += t->n;
        i = j;
    }
    free(ys);
    return rc;
}

/* GPU preset of a CUDA device name (cudaDeviceProp.name as Kineto writes it) */
static const char *preset_of_device(const char *dev) {
    static const struct {
        const char *dev, *preset;
    } m[] = {{"NVIDIA A100-SXM4-80GB", "a100-sxm-80g"}, {"NVIDIA A100-SXM4-40GB", "a100-sxm-40g"},
             {"NVIDIA H100 80GB HBM3", "h100-sxm-80g"}, {"NVIDIA H200", "h200-sxm-141g"},
             {"NVIDIA L40S", "l40s"},                   {"NVIDIA A10", "a10"}};
    for (size_t i = 0; i < sizeof m / sizeof m[0]; i++)
        if (!strcmp(dev, m[i].dev)) return m[i].preset;
    return NULL;
}

/* Whether a GPU name is AMD's (ROCm reports "AMD Radeon Graphics" or "AMD Instinct MI250X" as
 * the device name; strata's presets say "mi300x" and the like). */
/* s in lowercase ASCII into low (n bytes, cut) */
static void lower(const char *s, char *low, size_t n) {
    size_t i = 0;
    for (; s[i] && i + 1 < n; i++) low[i] = (char)(s[i] >= 'A' && s[i] <= 'Z' ? s[i] + 32 : s[i]);
    low[i] = '\0';
}

static int amd_name(const char *name) {
    char low[128];
    lower(name, low, sizeof low);
    return strstr(low, "amd") || strstr(low, "radeon") || strstr(low, "instinct") || !strncmp(low, "mi", 2);
}

/* The preset a device's properties describe when its name does not: same family in the name
 * (the preset's first word, "a100", as a word of the device's name: "NVIDIA A100-PG509-200"),
 * the same SM count and memory within 10 % (the driver reports a little less than the
 * datasheet's). NULL when none or several match. */
static const char *preset_of_props(const char *dev, int64_t sms, double mem_bytes) {
    size_t np;
    const st_gpu *g = st_gpu_presets(&np);
    const char *found = NULL;
    char low[128];
    if (sms <= 0 || !(mem_bytes > 0) || amd_name(dev)) return NULL;
    lower(dev, low, sizeof low);
    for (size_t k = 0; k < np; k++) {
        char fam[16];
        size_t n = strcspn(g[k].name, "-");
        if (n == 0 || n >= sizeof fam || g[k].sms != sms ||
            fabs(g[k].memory_bytes - mem_bytes) > 0.1 * g[k].memory_bytes)
            continue;
        memcpy(fam, g[k].name, n);
        fam[n] = '\0';
        for (const char *q = strstr(low, fam); q; q = strstr(q + 1, fam)) {
            int before = q == low || !((q[-1] >= 'a' && q[-1] <= 'z') || (q[-1] >= '0' && q[-1] <= '9'));
            char after = q[n];
            if (before && !((after >= 'a' && after <= 'z') || (after >= '0' && after <= '9'))) {
                if (found && strcmp(found, g[k].name)) return NULL;
                found = g[k].name;
                break;
            }
        }
    }
    return found;
}

static void preset_list(char *buf, size_t n) {
    size_t np, off = 0;
    const st_gpu *g = st_gpu_presets(&np);
    buf[0] = '\0';
    for (size_t i = 0; i < np; i++) {
        int w = snprintf(buf + off, off < n ? n - off : 0, "%s%s", i ? ", " : "", g[i].name);
        if (w > 0) off += (size_t)w;
    }
}

/* The profile's GPU: the option, else the trace's device (the one its kernels ran on): a preset by
 * its exact name, else by its properties (preset_of_props), else the device's own name, which
 * labels a profile that applies as measured to a cluster whose gpu.name is that name (and cannot
 * be scaled to another GPU: st_profile_retarget needs presets). A GPU of one vendor never gets a
 * preset of the other's: `rocm` says the trace's launches were HIP's. */
static int resolve_gpu(st_calib *c, const json_t *root, const st_calib_opts *o, int64_t device, int rocm,
                       const char *path, st_error *err) {
    const json_t *props = json_object_get(root, "deviceProperties");
    const json_t *dev = NULL;
    size_t at = 0;
    for (size_t i = 0; json_is_array(props) && i < json_array_size(props); i++) {
        int64_t id;
        const json_t *p = json_array_get(props, i);
        if (!dev && json_is_object(p)) dev = p, at = i; /* the first, unless one matches */
        if (json_is_object(p) && get_i64(p, "id", &id) && id == device) {
            dev = p, at = i;
            break;
        }
    }
    const char *name = dev ? get_str(dev, "name") : NULL;
    int64_t sms = 0;
    double mem = 0;
    if (dev) {
        get_i64(dev, "numSms", &sms);
        get_num(dev, "totalGlobalMem", &mem);
    }
    if (name) snprintf(c->sum.device, sizeof c->sum.device, "%s", name);
    int amd = rocm || (name && amd_name(name));
    char list[256], key[64];
    snprintf(key, sizeof key, "deviceProperties[%zu].name", at);
    if (o->gpu) {
        st_gpu g;
        if (st_gpu_preset(o->gpu, &g) == 0 && amd != amd_name(o->gpu))
            return st_error_set(err, ST_EINVAL, path, name ? key : NULL,
                                "--gpu %s is %s GPU, but the trace ran on %s (%s): its rates would be "
                                "taken for the wrong hardware; name the GPU it ran on",
                                o->gpu, amd ? "an NVIDIA" : "an AMD", name ? name : "a GPU",
                                amd ? "AMD, ROCm" : "NVIDIA, CUDA");
        snprintf(c->sum.gpu, sizeof c->sum.gpu, "%s", o->gpu);
        return 0;
    }
    preset_list(list, sizeof list);
    if (!name)
        return st_error_set(err, ST_EINVAL, path, "deviceProperties",
                            "the trace names no GPU: name it with --gpu (a preset: %s; or the gpu.name of your "
                            "cluster JSON)",
                            list);
    const char *preset = amd ? NULL : preset_of_device(name);
    if (!preset && !amd && (preset = preset_of_props(name, sms, mem)))
        snprintf(c->sum.gpu_note, sizeof c->sum.gpu_note, "preset by deviceProperties: %lld SMs, %.1f GiB",
                 (long long)sms, mem / 1073741824.0);
    if (!preset) {
        /* a profile labelled with the device's name: the bounds check treats it as no preset */
        if (strlen(name) >= sizeof c->sum.gpu || !name[0])
            return st_error_set(err, ST_EINVAL, path, key,
                                "strata has no preset for GPU '%.80s' and the name is too long to label the profile "
                                "(at most %zu characters): name it with --gpu",
                                name, sizeof c->sum.gpu - 1);
        snprintf(c->sum.gpu, sizeof c->sum.gpu, "%s", name);
        snprintf(c->sum.gpu_note, sizeof c->sum.gpu_note,
                 "no preset%s: applies as measured to a cluster whose gpu.name is \"%s\" (%lld SMs, %.1f GiB), "
                 "never scaled; --gpu names another",
                 amd ? " (AMD)" : "", name, (long long)sms, mem / 1073741824.0);
        return 0;
    }
    snprintf(c->sum.gpu, sizeof c->sum.gpu, "%s", preset);
    return 0;
}


/* The profile's date is the trace's (what was measured then, not the day it was converted): --date,
 * else Kineto's "baseTimeNanoseconds" (PyTorch 2.1 and later), else the first event's "ts" where
 * it is a wall clock (older Kineto wrote Unix microseconds), else "unknown". A wall clock is after
 * 2001 and before ~2116 (INT64_MAX / 2 ns), not a counter since boot. */
static void set_date(st_calib *c, const st_calib_opts *o, const json_t *root, double first_ts_us) {
    const double y2001_s = 978307200.0, y2116_s = INT64_MAX / 2 / 1e9;
    int64_t base;
    double at_s = -1;
    struct tm tm;
    if (o->date) {
        snprintf(c->date, sizeof c->date, "%s", o->date);
        return;
    }
    if (get_i64(root, "baseTimeNanoseconds", &base) && base > y2001_s * 1e9 && base < INT64_MAX / 2)
        at_s = (double)(base / 1000000000);
    else if (first_ts_us > y2001_s * 1e6 && first_ts_us < y2116_s * 1e6)
        at_s = floor(first_ts_us / 1e6);
    time_t at = (time_t)at_s;
    if (at_s >= 0 && gmtime_r(&at, &tm))
        strftime(c->date, sizeof c->date, "%Y-%m-%d", &tm);
    else
        snprintf(c->date, sizeof c->date, "unknown");
}

/* The events that matter, borrowed from the parsed trace. */
typedef struct trace {
    cpuop *ops; /* sorted by thread, start, enclosing first */
    size_t nops;
    launch *ls; /* sorted by correlation */
    size_t nls;
    const json_t **kernels; /* in trace order */
    size_t nk;
    const json_t **copies; /* memcpy events, in trace order */
    size_t ncopies;
    extref *byext; /* operators by External id, innermost first */
    size_t nbyext;
    double first_ts_us; /* the earliest operator or launch start (HUGE_VAL: none) */
    int rocm; /* launches are HIP's (hipLaunchKernel, ...): the trace ran on AMD GPUs */
} trace;

static void trace_destroy(trace *t) {
    free(t->ops);
    free(t->ls);
    free(t->kernels);
    free(t->copies);
    free(t->byext);
}

/* One pass over traceEvents: operators, launches, kernels. PyTorch 1.8/1.9 wrote the categories
 * "Operator", "Runtime" and "Kernel". */
static int trace_collect(trace *t, const json_t *events) {
    size_t nev = json_array_size(events);
    if (!(t->ops = malloc((nev + 1) * sizeof *t->ops)) || !(t->ls = malloc((nev + 1) * sizeof *t->ls)) ||
        !(t->kernels = malloc((nev + 1) * sizeof *t->kernels)) || !(t->copies = malloc((nev + 1) * sizeof *t->copies)))
        return ST_ENOMEM;
    t->first_ts_us = HUGE_VAL;
    for (size_t i = 0; i < nev; i++) {
        const json_t *ev = json_array_get(events, i);
        const char *ph = get_str(ev, "ph"), *cat = get_str(ev, "cat"), *name = get_str(ev, "name");
        const json_t *args = json_object_get(ev, "args");
        double ts, dur = 0;
        if (!ph || strcmp(ph, "X") || !cat || !name) continue;
        if (!strcasecmp(cat, "kernel")) {
            t->kernels[t->nk++] = ev;
            continue;
        }
        if (!strcasecmp(cat, "gpu_memcpy") || !strcasecmp(cat, "memcpy")) {
            t->copies[t->ncopies++] = ev;
            continue;
        }
        if (!get_num(ev, "ts", &ts)) continue;
        get_num(ev, "dur", &dur);
        if (ts < t->first_ts_us) t->first_ts_us = ts;
        if (!strcasecmp(cat, "cpu_op") || !strcasecmp(cat, "user_annotation") || !strcasecmp(cat, "operator")) {
            cpuop *o = &t->ops[t->nops];
            memset(o, 0, sizeof *o);
            o->idx = (int)t->nops++;
            o->ts = ts;
            o->end = ts + (dur > 0 ? dur : 0);
            o->thread = thread_of(ev);
            o->args = json_is_object(args) ? args : NULL;
            o->has_ext = o->args && get_ext(args, &o->ext);
            o->name = name;
        } else if (!strcasecmp(cat, "cuda_runtime") || !strcasecmp(cat, "cuda_driver") || !strcasecmp(cat, "runtime")) {
            launch *l = &t->ls[t->nls];
            if (!json_is_object(args) || !get_i64(args, "correlation", &l->corr)) continue;
            l->has_ext = get_ext(args, &l->ext);
            t->rocm |= !strncmp(name, "hip", 3);
            l->thread = thread_of(ev);
            l->ts = ts;
            t->nls++;
        }
    }
    return 0;
}

/* Parents by time nesting (per thread, a stack of the operators still open) and the indexes. */
static int trace_nest(trace *t) {
    int *stack = malloc((t->nops + 1) * sizeof *stack);
    if (!stack || !(t->byext = malloc((t->nops + 1) * sizeof *t->byext))) {
        free(stack);
        return ST_ENOMEM;
    }
    qsort(t->ops, t->nops, sizeof *t->ops, cmp_op);
    int sp = 0;
    for (size_t i = 0; i < t->nops; i++) {
        if (i > 0 && t->ops[i].thread != t->ops[i - 1].thread) sp = 0;
        while (sp > 0 && t->ops[stack[sp - 1]].end <= t->ops[i].ts) sp--;
        t->ops[i].parent = sp > 0 ? stack[sp - 1] : -1;
        t->ops[i].depth = sp;
        stack[sp++] = (int)i;
    }
    free(stack);
    for (size_t i = 0; i < t->nops; i++)
        if (t->ops[i].has_ext) t->byext[t->nbyext++] = (extref){t->ops[i].ext, t->ops[i].depth, (int)i};
    qsort(t->byext, t->nbyext, sizeof *t->byext, cmp_ext);
    qsort(t->ls, t->nls, sizeof *t->ls, cmp_launch);
    return 0;
}

/* The device most kernels ran on (its deviceProperties entry names the GPU). */
static int64_t main_device(const trace *t) {
    int64_t dev[64], cnt[64], best = 0, bestn = 0;
    int nd = 0;
    for (size_t i = 0; i < t->nk; i++) {
        int64_t d;
        int j = 0;
        if (!get_i64(json_object_get(t->kernels[i], "args"), "device", &d)) continue;
        while (j < nd && dev[j] != d) j++;
        if (j == nd && nd < 64) dev[nd] = d, cnt[nd++] = 0;
        if (j < nd && ++cnt[j] > bestn) best = d, bestn = cnt[j];
    }
    return best;
}

/* The innermost operator on `thread` whose span holds time `ts` (the ops of a thread are sorted by
 * start, enclosing first, and nest: the last one to start at or before ts holds it, or one of its
 * parents does); -1 when none. */
static int op_at(const trace *t, uint64_t thread, double ts) {
    size_t lo = 0, hi = t->nops;
    while (lo < hi) { /* the first op after (thread, ts) */
        size_t mid = (lo + hi) / 2;
        const cpuop *o = &t->ops[mid];
        if (o->thread < thread || (o->thread == thread && o->ts <= ts))
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == 0 || t->ops[lo - 1].thread != thread) return -1;
    for (int j = (int)lo - 1; j >= 0; j = t->ops[j].parent)
        if (t->ops[j].end >= ts) return j;
    return -1;
}

/* The innermost operator a kernel belongs to, as HolisticTraceAnalysis links them: correlation ->
 * launch -> the operator with the launch's External id that spans the launch on its thread; else
 * the innermost operator spanning the launch on its thread (most traces of PyTorch 2.x write the
 * correlation id as the launch's External id, which names no operator); else the operator with the
 * launch's (or, without a launch, the kernel's own) External id. -1 when there is none. */
static int trace_link(const trace *t, const json_t *kargs) {
    int64_t corr, ext = 0;
    const launch *l = NULL;
    if (get_i64(kargs, "correlation", &corr)) {
        size_t lo = 0, hi = t->nls;
        while (lo < hi) {
            size_t mid = (lo + hi) / 2;
            if (t->ls[mid].corr < corr)
                lo = mid + 1;
            else
                hi = mid;
        }
        if (lo < t->nls && t->ls[lo].corr == corr) l = &t->ls[lo];
    }
    int has_ext = l ? l->has_ext : get_ext(kargs, &ext);
    if (l) ext = l->ext;
    size_t lo = 0, hi = t->nbyext;
    while (has_ext && lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (t->byext[mid].ext < ext)
            lo = mid + 1;
        else
            hi = mid;
    }
    int op = -1;
    for (size_t i = lo; has_ext && i < t->nbyext && t->byext[i].ext == ext; i++) {
        const cpuop *o = &t->ops[t->byext[i].op];
        if (op < 0) op = t->byext[i].op;
        if (l && o->thread == l->thread && o->ts <= l->ts && l->ts <= o->end) return t->byext[i].op;
    }
    int nested = l ? op_at(t, l->thread, l->ts) : -1;
    return nested >= 0 ? nested : op;
}

/* Whether a GEMM kernel on fp32 data ran on tensor cores as TF32 (torch.backends.cuda.matmul.
 * allow_tf32): CUTLASS names them by the instruction, "tensorop_s1688gemm" (Ampere's TF32 mma is
 * m16n8k8, sm80) or "s16816gemm" style; cuBLAS's own kernels say "tf32". The operator records only
 * "float", so the kernel is what tells. */
static int tf32_kernel(const char *kname) {
    return kname && (strstr(kname, "tf32") || strstr(kname, "tensorop_s1688") || strstr(kname, "tensorop_s16816"));
}

/* Charges one kernel (dur_s) to the operator whose sample it belongs to, counting it in sum. */
static void charge(trace *t, int op, const char *kname, double dur_s, int gpus_per_node, st_calib_summary *sum) {
    int charged = -1, shapeless = 0;
    if (is_nccl_kernel(kname)) {
        st_coll kc = coll_of_kernel(kname);
        for (int j = op, up = 0; j >= 0 && up <= MAX_COMM_WALK; j = t->ops[j].parent, up++) {
            cpuop *o = &t->ops[j];
            if (strcmp(o->name, "record_param_comms") && strncmp(o->name, "nccl:", 5)) continue;
            if (!o->cstate) o->cstate = o->args && !comm_shape(o->args, kc, gpus_per_node, o) ? 1 : 2;
            if (o->cstate == 1) {
                charged = j;
                break;
            }
        }
        shapeless = charged < 0;
    } else {
        for (int j = op, up = 0; j >= 0 && up <= MAX_WALK; j = t->ops[j].parent, up++) {
            cpuop *o = &t->ops[j];
            look_at(o);
            if (o->state == 3) continue;
            if (o->state == 1)
                charged = j;
            else
                shapeless = 1;
            break;
        }
    }
    if (charged >= 0) {
        cpuop *o = &t->ops[charged];
        if (o->kind == K_COMPUTE && o->dtype == ST_DT_FP32 && tf32_kernel(kname)) o->dtype = ST_DT_TF32;
        o->gpu_s += dur_s;
        sum->used++;
    } else if (shapeless) {
        sum->no_shapes++;
    } else {
        sum->unclassified++;
    }
}

/* The direction of a Kineto memcpy event that the copy tables price: "Memcpy HtoD (Pinned ->
 * Device)" or "Memcpy DtoH (Device -> Pinned)"; -1 for any other (pageable, device to device). */
static int copy_dir(const char *name) {
    if (!name) return -1;
    if (!strcmp(name, "Memcpy HtoD (Pinned -> Device)")) return ST_COPY_H2D;
    if (!strcmp(name, "Memcpy DtoH (Device -> Pinned)")) return ST_COPY_D2H;
    return -1;
}

/* One collective call of one rank, before the ranks' calls are matched: the k-th call of a rank
 * with a given (collective, scope, ranks, bytes) is the k-th of every other rank of the job, since
 * every rank of a group issues the group's collectives in the same order (NCCL requires it). */
typedef struct call {
    int file, coll, intra, ranks;
    int64_t seq; /* its place among its file's calls of the same key */
    double x, ts, gpu_s;
} call;

/* What the files of one job give: samples of compute, memory and copies, and collective calls. */
typedef struct pool {
    sample *s;
    int n, cap;
    call *c;
    int nc, capc;
} pool;

static int grow(void **v, int *cap, int need, size_t size) {
    if (need <= *cap) return 0;
    int nc = *cap ? *cap : 64;
    while (nc < need) nc *= 2;
    void *g = realloc(*v, (size_t)nc * size);
    if (!g) return ST_ENOMEM;
    *v = g;
    *cap = nc;
    return 0;
}

/* One sample per operator call that kernels were charged to and one per pinned copy into p->s,
 * and one call per communication operator into p->c (file `file`). */
static int take_samples(const trace *t, int file, pool *p, st_calib_summary *sum) {
    if (grow((void **)&p->s, &p->cap, p->n + (int)(t->nops + t->ncopies) + 1, sizeof *p->s) ||
        grow((void **)&p->c, &p->capc, p->nc + (int)t->nops + 1, sizeof *p->c))
        return ST_ENOMEM;
    for (size_t i = 0; i < t->nops; i++) {
        const cpuop *o = &t->ops[i];
        if ((o->state != 1 && o->cstate != 1) || !(o->gpu_s > 0)) continue;
        if (o->kind == K_COLL) {
            p->c[p->nc++] = (call){.file = file, .coll = o->coll, .intra = o->intra, .ranks = o->ranks, .x = o->x,
                                   .ts = o->ts, .gpu_s = o->gpu_s};
            continue;
        }
        sample *q = &p->s[p->n++];
        memset(q, 0, sizeof *q);
        q->kind = o->kind;
        q->x = o->x;
        q->cls = o->cls;
        q->dtype = o->kind == K_COMPUTE ? o->dtype : 0;
        q->y = o->x / o->gpu_s;
        sum->samples[o->kind]++;
    }
    for (size_t i = 0; i < t->ncopies; i++) {
        double bytes, dur;
        int d = copy_dir(get_str(t->copies[i], "name"));
        if (d < 0 || !get_num(t->copies[i], "dur", &dur) || !(dur > 0) ||
            !get_num(json_object_get(t->copies[i], "args"), "bytes", &bytes) || !(bytes >= 1) || bytes > MAX_NUMEL)
            continue;
        sample *q = &p->s[p->n++];
        memset(q, 0, sizeof *q);
        q->kind = K_COPY;
        q->dir = d;
        q->x = bytes;
        q->y = bytes / (dur * 1e-6);
        sum->samples[K_COPY]++;
    }
    return 0;
}

static int cmp_call_key(const call *a, const call *b) {
    const int ka[] = {a->coll, -a->intra, a->ranks}, kb[] = {b->coll, -b->intra, b->ranks};
    for (int i = 0; i < 3; i++)
        if (ka[i] != kb[i]) return ka[i] < kb[i] ? -1 : 1;
    return a->x < b->x ? -1 : a->x > b->x;
}
static int cmp_call_file(const void *pa, const void *pb) { /* key, file, start: to number them */
    const call *a = pa, *b = pb;
    int k = cmp_call_key(a, b);
    if (k) return k;
    if (a->file != b->file) return a->file - b->file;
    return a->ts < b->ts ? -1 : a->ts > b->ts;
}
static int cmp_call_seq(const void *pa, const void *pb) { /* key, seq, file: the ranks of one call together */
    const call *a = pa, *b = pb;
    int k = cmp_call_key(a, b);
    if (k) return k;
    if (a->seq != b->seq) return a->seq < b->seq ? -1 : 1;
    return a->file - b->file;
}

/* The collective samples: the ranks' copies of one call matched (see call), its transfer time the
 * fastest rank's kernel time (the last rank to arrive waits for nobody: HolisticTraceAnalysis
 * reads a collective's duration the same way), what the slower ranks spent beyond it counted as
 * waiting. A call seen on one rank only keeps its own time, wait included. */
static int match_calls(pool *p, st_calib_summary *sum) {
    qsort(p->c, (size_t)p->nc, sizeof *p->c, cmp_call_file);
    for (int i = 0; i < p->nc; i++)
        p->c[i].seq = i > 0 && !cmp_call_key(&p->c[i], &p->c[i - 1]) && p->c[i].file == p->c[i - 1].file
                          ? p->c[i - 1].seq + 1
                          : 0;
    qsort(p->c, (size_t)p->nc, sizeof *p->c, cmp_call_seq);
    if (grow((void **)&p->s, &p->cap, p->n + p->nc + 1, sizeof *p->s)) return ST_ENOMEM;
    for (int i = 0; i < p->nc;) {
        int j = i + 1;
        double lo = p->c[i].gpu_s;
        while (j < p->nc && !cmp_call_key(&p->c[i], &p->c[j]) && p->c[j].seq == p->c[i].seq) {
            if (p->c[j].gpu_s < lo) lo = p->c[j].gpu_s;
            j++;
        }
        if (j - i > 1) {
            sum->coll_matched++;
            sum->coll_transfer_s += lo;
            for (int k = i; k < j; k++) sum->coll_wait_s += p->c[k].gpu_s - lo;
        }
        const call *c = &p->c[i];
        sample *q = &p->s[p->n++];
        memset(q, 0, sizeof *q);
        q->kind = K_COLL;
        q->coll = c->coll, q->intra = c->intra, q->ranks = c->ranks;
        q->x = c->x;
        q->y = c->x / lo * st_cost_bus_factor((st_coll)c->coll, c->ranks);
        if (!sum->coll_ranks_min || c->ranks < sum->coll_ranks_min) sum->coll_ranks_min = c->ranks;
        if (c->ranks > sum->coll_ranks_max) sum->coll_ranks_max = c->ranks;
        sum->samples[K_COLL]++;
        i = j;
    }
    return 0;
}

static st__ptable *ptables(const st_calib *c);

/* Reads one rank's trace into c's summary and the pool; the first file also sets the GPU, the date
 * and the versions, later ones must have run on the same GPU. *rank and *world from its
 * distributedInfo (-1 when absent). */
static int import_file(const char *path, int file, const st_calib_opts *opts, st_calib *c, pool *p, int64_t *rank,
                       int64_t *world, st_error *err) {
    json_t *root = NULL;
    trace t = {0};
    int rc = 0;
    char first_gpu[sizeof c->sum.gpu];

    *rank = *world = -1;
    if ((rc = st_trace_load(path, &root, err))) goto out;
    const json_t *events = json_is_object(root) ? json_object_get(root, "traceEvents") : NULL;
    if (!json_is_array(events)) {
        rc = st_error_set(err, ST_EINVAL, path, "traceEvents",
                          "not a Kineto trace: no \"traceEvents\" array (write one with torch.profiler's "
                          "export_chrome_trace)");
        goto out;
    }
    if (trace_collect(&t, events)) {
        rc = st_error_set(err, ST_ENOMEM, path, NULL, "out of memory");
        goto out;
    }
    const json_t *dist = json_object_get(root, "distributedInfo");
    get_i64(dist, "rank", rank);
    get_i64(dist, "world_size", world);
    c->sum.events += (int64_t)json_array_size(events);
    c->sum.kernels += (int64_t)t.nk;
    if (t.nk == 0) {
        rc = st_error_set(err, ST_EINVAL, path, NULL,
                          "no GPU kernels in the trace (no event with \"cat\": \"kernel\"): profile with "
                          "ProfilerActivity.CUDA");
        goto out;
    }
    snprintf(first_gpu, sizeof first_gpu, "%s", c->sum.gpu);
    if ((rc = resolve_gpu(c, root, opts, main_device(&t), t.rocm, path, err))) goto out;
    if (file > 0 && strcmp(first_gpu, c->sum.gpu)) {
        rc = st_error_set(err, ST_EINVAL, path, NULL, "ran on %s, the job's first trace on %s: not one job's ranks",
                          c->sum.gpu, first_gpu);
        goto out;
    }
    if (trace_nest(&t)) {
        rc = st_error_set(err, ST_ENOMEM, path, NULL, "out of memory");
        goto out;
    }
    for (size_t k = 0; k < t.nk; k++) {
        const json_t *args = json_object_get(t.kernels[k], "args");
        double dur;
        if (!get_num(t.kernels[k], "dur", &dur) || !(dur > 0)) {
            c->sum.untimed++;
            continue;
        }
        if (!(dur <= MAX_KERNEL_US)) {
            const char *kn = get_str(t.kernels[k], "name");
            rc = st_error_set(err, ST_EINVAL, path, "dur",
                              "kernel '%.60s' lasts %g us, over an hour: not a trace to calibrate from", kn ? kn : "?",
                              dur);
            goto out;
        }
        int op = trace_link(&t, args);
        if (op < 0)
            c->sum.unlinked++;
        else
            charge(&t, op, get_str(t.kernels[k], "name"), dur * 1e-6, opts->gpus_per_node, &c->sum);
    }
    if (take_samples(&t, file, p, &c->sum)) {
        rc = st_error_set(err, ST_ENOMEM, path, NULL, "out of memory");
        goto out;
    }
    if (file == 0) {
        set_date(c, opts, root, t.first_ts_us);
        int64_t v;
        if (get_i64(root, "cuda_runtime_version", &v) && v > 0 && v < 1000000)
            snprintf(c->cuda, sizeof c->cuda, "%lld.%lld", (long long)(v / 1000), (long long)(v % 1000 / 10));
        /* the CUDA driver API version (cuDriverGetVersion), as strata profile records it without NVML */
        if (get_i64(root, "cuda_driver_version", &v) && v > 0 && v < 1000000)
            snprintf(c->driver, sizeof c->driver, "%lld.%lld", (long long)(v / 1000), (long long)(v % 1000 / 10));
    }
out:
    trace_destroy(&t);
    json_decref(root);
    return rc;
}

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && !strcmp(s + n - m, suffix);
}
static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* The trace files `path` names: itself, or a folder's *.json and *.json.gz files (sorted by name),
 * or a comma-separated list when no file has that name. *files new (free each, then the array). */
static int list_traces(const char *path, char ***files, int *n, st_error *err) {
    struct stat st;
    char **v = NULL;
    int cap = 0, rc = 0;
    *files = NULL;
    *n = 0;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
        DIR *d = opendir(path);
        struct dirent *e;
        if (!d) return st_error_set(err, ST_EIO, path, NULL, "cannot read the folder: %s", strerror(errno));
        while (!rc && (e = readdir(d))) {
            if (e->d_name[0] == '.' || !(ends_with(e->d_name, ".json") || ends_with(e->d_name, ".json.gz"))) continue;
            char *f = malloc(strlen(path) + strlen(e->d_name) + 2);
            if (!f || grow((void **)&v, &cap, *n + 1, sizeof *v)) {
                free(f);
                rc = st_error_set(err, ST_ENOMEM, path, NULL, "out of memory");
                break;
            }
            sprintf(f, "%s/%s", path, e->d_name);
            v[(*n)++] = f;
        }
        closedir(d);
        if (!rc && *n == 0)
            rc = st_error_set(err, ST_EIO, path, NULL,
                              "cannot read a trace from the folder: no *.json or *.json.gz in it");
        if (!rc) qsort(v, (size_t)*n, sizeof *v, cmp_str);
    } else {
        int list = access(path, F_OK) != 0 && strchr(path, ',');
        for (const char *s = path; !rc && *s;) {
            size_t len = list ? strcspn(s, ",") : strlen(s);
            char *f = len ? malloc(len + 1) : NULL;
            if (len && (!f || grow((void **)&v, &cap, *n + 1, sizeof *v))) {
                free(f);
                rc = st_error_set(err, ST_ENOMEM, path, NULL, "out of memory");
                break;
            }
            if (f) {
                memcpy(f, s, len);
                f[len] = '\0';
                v[(*n)++] = f;
            }
            s += len;
            if (*s == ',') s++;
        }
        if (!rc && *n == 0) rc = st_error_set(err, ST_EIO, path, NULL, "cannot open: no file named");
    }
    if (rc) {
        for (int i = 0; i < *n; i++) free(v[i]);
        free(v);
        *n = 0;
        return rc;
    }
    *files = v;
    return 0;
}

int st_calib_import_kineto(const char *path, const st_calib_opts *opts, st_calib **out, st_error *err) {
    st_calib *c = NULL;
    pool p = {0};
    char **files = NULL;
    int rc = 0, nfiles = 0;
    int64_t *ranks = NULL, world0 = -1;
    st_calib_opts dflt;

    *out = NULL;
    if (!opts) {
        st_calib_opts_init(&dflt);
        opts = &dflt;
    }
    if (opts->gpus_per_node < 1 || (opts->gpu && (!opts->gpu[0] || strlen(opts->gpu) >= sizeof c->sum.gpu))) {
        rc = st_error_set(err, ST_EUSAGE, NULL, NULL, "gpus_per_node must be >= 1 and gpu 1 to 47 characters");
        goto out;
    }
    if ((rc = list_traces(path, &files, &nfiles, err))) goto out;
    if (!(c = calloc(1, sizeof *c)) || !(ranks = malloc((size_t)nfiles * sizeof *ranks))) {
        rc = st_error_set(err, ST_ENOMEM, path, NULL, "out of memory");
        goto out;
    }
    for (int f = 0; f < nfiles; f++) {
        int64_t world;
        if ((rc = import_file(files[f], f, opts, c, &p, &ranks[f], &world, err))) goto out;
        /* the files of one job: one world, each rank once */
        for (int g = 0; g < f; g++)
            if (ranks[f] >= 0 && ranks[g] == ranks[f]) {
                rc = st_error_set(err, ST_EINVAL, files[f], "distributedInfo.rank",
                                  "rank %lld again (%s has it): not the ranks of one job", (long long)ranks[f],
                                  files[g]);
                goto out;
            }
        if (f > 0 && world != world0) {
            rc = st_error_set(err, ST_EINVAL, files[f], "distributedInfo.world_size",
                              "world size %lld, %s's is %lld: not the ranks of one job", (long long)world, files[0],
                              (long long)world0);
            goto out;
        }
        world0 = world;
    }
    c->sum.files = nfiles;
    c->sum.world_size = world0;
    if (match_calls(&p, &c->sum)) {
        rc = st_error_set(err, ST_ENOMEM, path, NULL, "out of memory");
        goto out;
    }
    if (c->sum.samples[K_COMPUTE] + c->sum.samples[K_MEMORY] + c->sum.samples[K_COLL] == 0) {
        /* copies alone are no calibration: the trace was recorded without what the tables need */
        rc = st_error_set(err, ST_EINVAL, path, NULL,
                          "none of the %lld GPU kernels could be measured (%lld without a positive \"dur\", %lld not "
                          "linked to an operator, %lld of operators strata has no class for, %lld without shapes: "
                          "record with record_shapes=True)",
                          (long long)c->sum.kernels, (long long)c->sum.untimed, (long long)c->sum.unlinked,
                          (long long)c->sum.unclassified, (long long)c->sum.no_shapes);
        goto out;
    }
    if (fit(c, p.s, p.n)) {
        rc = st_error_set(err, ST_ENOMEM, path, NULL, "out of memory");
        goto out;
    }
    st__ptable *pt = ptables(c); /* what the trace measured must be possible, as --profile will check */
    rc = pt ? st__profile_check(&(st__phead){.gpu = c->sum.gpu}, pt, c->n, err)
            : st_error_set(err, ST_ENOMEM, path, NULL, "out of memory");
    free(pt);
    if (rc < 0) {
        if (err && !err->file[0]) snprintf(err->file, sizeof err->file, "%s", path);
        goto out;
    }
    if (nfiles > 1)
        snprintf(c->source, sizeof c->source, "kineto import of %d rank traces: %s", nfiles, path);
    else
        snprintf(c->source, sizeof c->source, "kineto import of %s", path);
    *out = c;
    c = NULL;
out:
    for (int f = 0; f < nfiles; f++) free(files[f]);
    free(files);
    free(ranks);
    free(p.s);
    free(p.c);
    st_calib_free(c);
    return rc;
}

/* ------------------------------------------------------------------ output */

/* the fitted tables in the writer's form (borrowed points); NULL when out of memory */
static st__ptable *ptables(const st_calib *c) {
    st__ptable *pt = calloc((size_t)(c->n > 0 ? c->n : 1), sizeof *pt);
    for (int i = 0; pt && i < c->n; i++) {
        const table *t = &c->t[i];
        pt[i] = (st__ptable){.kind = t->kind, .cls = (st_opclass)t->cls, .dtype = (st_dtype)t->dtype,
                             .coll = (st_coll)t->coll, .intra = t->intra, .ranks = t->ranks,
                             .dir = (st_copy_dir)t->dir, .n = t->n,
                             .samples = t->samples, .x = t->x, .y = t->y};
    }
    return pt;
}

int st_calib_save(const st_calib *c, const char *path, st_error *err) {
    st__ptable *pt = ptables(c);
    if (!pt) return st_error_set(err, ST_ENOMEM, path, NULL, "out of memory");
    st__phead h = {.gpu = c->sum.gpu, .source = c->source, .date = c->date, .cuda = c->cuda, .driver = c->driver};
    int rc = st__profile_write(&h, pt, c->n, path, err);
    free(pt);
    return rc;
}

void st_calib_describe(const st_calib *c, FILE *f) {
    st__ptable *pt = ptables(c);
    if (pt) st__profile_describe(pt, c->n, "call", "none in the trace", f);
    free(pt);
}
