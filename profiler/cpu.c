/* cpu.c: `strata profile --cpu`: this machine measured with the executor's own kernels and Open MPI
 * (exec/bench.c, every rank at once), written as a cluster JSON whose "gpu" is the CPU share of one
 * rank and a calibration profile, so that the simulator prices `strata run`'s programs as they run.
 *
 * What each number is (also written into the cluster's "calibration" object):
 * - gpu.peak_tflops (every dtype): the best rate of the executor's fp32 GEMMs (OpenBLAS sgemm, one
 *   thread per rank) over the sweep and the plan's shapes, and gemm_efficiency 1: the peak is the
 *   achievable rate. The executor computes in fp32 whatever the plan's dtype, so the profile's
 *   compute tables repeat the fp32 rates under every dtype but fp8 (the plan's lookups find them).
 * - gpu.hbm_gb_per_s: what the optimizer step reaches, counted as cost/ counts Adam (26 bytes per
 *   parameter at 85% of this bandwidth, cost_private.h), so that the lowering's optimizer step
 *   takes the measured time of the executor's Adam; the triad (a = b + c) rate is reported beside it.
 * - gpu.memory_gib: the host's memory over the ranks; host.memory_gib the host's.
 * - framework.reserved_gib: what a rank holds before any model state, the peak resident set of the
 *   largest rank right after MPI_Init (code, libraries, MPI's buffers): what the lowering adds to
 *   every rank's memory besides weights, gradients, optimizer states and activations.
 * - intra_node: one-way send/recv rate of the largest message and the latency of the smallest
 *   (half a ping-pong, OSU's way); one rank: the triad rate and 1 us (no transfer ever runs).
 * - profile compute tables: gemm (FLOPs per kernel, as cost/ counts them: 2mnk) and attention (the
 *   executor's causal attention loops at the plan's shapes); memory tables: the plan's norms and
 *   elementwise operators timed as the executor's kernels of the same element counts (x = the
 *   operator's bytes as src/core/opgraph.c counts them, so the lookup matches), the other classes
 *   (and every class without --plan) by the residual add's rate; collective tables: all-reduce,
 *   all-gather and reduce-scatter over 2 .. N ranks, send/recv over 2, as bus bandwidth.
 * cost/compute.c adds ST_KERNEL_OVERHEAD_S per kernel and cost/comm.c latency steps x intra latency
 * to what the tables give; each rate here is the measured work over the measured time less those,
 * so the cost model reproduces the measured time at every measured point. */
#include "profiler/profiler.h"
#include "exec/exec.h"
#include "src/io/io.h"
#include "src/io/jsonutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* cost/'s per-kernel and Adam constants, as cost_private.h states them */
#define KERNEL_OVERHEAD_S 4e-6
#define ADAM_BYTES_PER_PARAM 26.0
#define ADAM_KERNELS 8
#define HBM_EFFICIENCY 0.85
/* timing windows of >= 10 ms per kernel and pass, the fastest kept (exec/bench.c): on this shared
 * 2-core machine the fastest of 3 still moved the simulated iteration of one rank by 33% between
 * runs of bench/run_compare.sh (217-287 ms, 2026-12-07), as another process's slices can cover
 * three consecutive windows; 9 (90 ms a pass) outlast them */
#define REPS 9

/* the rate of `work` done in t_s by `kernels` kernels, less cost/'s per-kernel overhead (at least
 * a tenth of the time is kept: a measurement shorter than the overhead says only "fast") */
static double rate(double work, double t_s, int kernels) {
    double t = t_s - kernels * KERNEL_OVERHEAD_S;
    if (t < 0.1 * t_s) t = 0.1 * t_s;
    return work / t;
}

static const st_dtype compute_dtypes[] = {ST_DT_FP32, ST_DT_TF32, ST_DT_FP16, ST_DT_BF16};

/* one compute sample under every dtype the executor stands in for */
static int add_compute(st__prof_result *r, st_opclass cls, int exact, double x, double y) {
    int rc = 0;
    for (size_t d = 0; !rc && d < sizeof compute_dtypes / sizeof compute_dtypes[0]; d++)
        rc = st__prof_add(r, &(st__prof_sample){.kind = ST_PROF_COMPUTE, .cls = cls, .dtype = compute_dtypes[d],
                                                .exact = exact, .x = x, .y = y});
    return rc;
}

static int add_memory(st__prof_result *r, st_opclass cls, int exact, double x, double y) {
    return st__prof_add(r, &(st__prof_sample){.kind = ST_PROF_MEMORY, .cls = cls, .exact = exact, .x = x, .y = y});
}

/* a plan operator's forward and backward, timed f_s and b_s: compute (FLOPs) or memory-bound
 * (bytes) samples at exactly its work per kernel */
static int add_op(st__prof_result *r, const st_op *o, int memory, double f_s, double b_s, st_error *err) {
    int rc = 0;
    for (int pass = 0; pass < 2 && !rc; pass++) {
        double work = memory ? (pass ? o->bwd_bytes : o->fwd_bytes) : (pass ? o->bwd_flops : o->fwd_flops);
        int kernels = pass ? o->kernels_bwd : o->kernels_fwd;
        if (!(work > 0) || kernels < 1) continue; /* a pass it does not run (grad_accum's forward) */
        double x = work / kernels, y = rate(work, pass ? b_s : f_s, kernels);
        rc = memory ? add_memory(r, o->cls, 1, x, y) : add_compute(r, o->cls, 1, x, y);
    }
    return rc ? st_error_set(err, rc, NULL, NULL, "out of memory") : 0;
}

/* a GEMM of the sweep or the plan: forward one kernel, backward two of the forward's FLOPs */
static int gemm(st__prof_cpu *c, double m, double n, double k, int exact, st_error *err) {
    double f, b, flops = 2 * m * n * k;
    int rc = st_exec_bench_gemm((int64_t)m, (int64_t)n, (int64_t)k, REPS, &f, &b, err);
    if (rc) return rc;
    double yf = rate(flops, f, 1), yb = rate(2 * flops, b, 2);
    /* the peak from the plain rates: the overhead's share says nothing about the arithmetic */
    c->gemm_flops_per_s = fmax(c->gemm_flops_per_s, fmax(flops / f, 2 * flops / b));
    if ((rc = add_compute(&c->r, ST_OPC_GEMM, exact, flops, yf)) ||
        (rc = add_compute(&c->r, ST_OPC_GEMM, exact, flops, yb)))
        return st_error_set(err, rc, NULL, NULL, "out of memory");
    c->gemms++;
    return 0;
}

/* which executor kernel stands for a memory-bound operator of the plan, and over how many rows of
 * how many columns: norms over the hidden size, the MLP's activation over its outputs, the rest a
 * residual add over the elements the operator reads and writes (opgraph.c's stream(): (in + out)
 * x the activation's bytes). An operator with no forward is the backward's gradient accumulation
 * (grad_accum, grad_bytes per parameter): the executor accumulates inside its GEMMs (beta = 1), so
 * it stands for what a framework runs there, an add over the parameters. */
static void stand_in(const st_model *m, const st_plan *p, const st_op *o, st_exec_stream *k, double *rows,
                     double *cols) {
    double act = st_dtype_bytes(p->dtype), elems = o->fwd_bytes / (2 * act);
    *k = ST_EXEC_STREAM_ADD, *cols = m->hidden;
    if (o->cls == ST_OPC_NORM) *k = ST_EXEC_STREAM_NORM;
    else if (o->cls == ST_OPC_ELEMWISE && (strstr(o->name, "act") || strstr(o->name, "gelu") ||
                                           strstr(o->name, "swiglu") || strstr(o->name, "relu")))
        *k = m->activation == ST_ACT_SWIGLU ? ST_EXEC_STREAM_SWIGLU : ST_EXEC_STREAM_GELU;
    if (*k == ST_EXEC_STREAM_SWIGLU) elems = o->fwd_bytes / (3 * act); /* 2 in, 1 out */
    if (!(o->fwd_bytes > 0)) elems = o->bwd_bytes / (p->grad_bytes > 0 ? p->grad_bytes : 4);
    *rows = fmax(1, round(elems / *cols));
}

/* the plan's operators on one rank: one block, the embedding, the output layer */
static int plan_ops(const st_model *m, const st_plan *p, st_op *ops, int cap, int *n) {
    st_shard s;
    st_plan_shard(p, &s);
    int a = st_ops_layer(m, &s, 0, ops, cap);
    int b = a < 0 ? a : st_ops_head(m, &s, ops + a, cap - a);
    int t = b < 0 ? b : st_ops_tail(m, &s, ops + a + b, cap - a - b);
    if (t < 0) return t;
    *n = a + b + t;
    return 0;
}

static int measure_plan(st__prof_cpu *c, const st_model *m, const st_plan *p, st_error *err) {
    st_op ops[3 * ST_MAX_OPS];
    int n = 0, rc;
    if ((rc = plan_ops(m, p, ops, 3 * ST_MAX_OPS, &n)) < 0)
        return st_error_set(err, rc, NULL, "plan", "the plan's operators cannot be listed");
    for (int i = 0; i < n && !rc; i++) {
        const st_op *o = &ops[i];
        double f = 0, b = 0;
        if (o->cls == ST_OPC_GEMM) {
            rc = gemm(c, o->m * (o->batch > 1 ? o->batch : 1), o->n, o->k, 1, err);
        } else if (o->cls == ST_OPC_ATTENTION) {
            int64_t B = p->mbs, hq = (int64_t)(o->batch / (double)p->mbs), kv = m->kv_heads / p->tp;
            if ((rc = st_exec_bench_attn(B, (int64_t)o->m, hq, kv > 0 ? kv : hq, (int64_t)o->k, REPS, &f, &b, err)))
                break;
            rc = add_op(&c->r, o, 0, f, b, err);
            c->attns++;
        } else if (o->fwd_bytes > 0 || o->bwd_bytes > 0) {
            st_exec_stream k;
            double rows, cols;
            stand_in(m, p, o, &k, &rows, &cols);
            if ((rc = st_exec_bench_stream(k, (int64_t)rows, (int64_t)cols, REPS, &f, &b, err))) break;
            rc = add_op(&c->r, o, 1, f, b, err);
            c->mems++;
            c->mem_classes |= 1u << o->cls;
        }
    }
    return rc;
}

/* the residual add's rate over a sweep of sizes (bytes as opgraph counts an add in fp32: 12 per
 * element), for the memory-bound classes the plan did not time, and the triad rate */
static int measure_stream(st__prof_cpu *c, int quick, st_error *err) {
    static const st_opclass classes[] = {ST_OPC_NORM, ST_OPC_ELEMWISE, ST_OPC_SOFTMAX, ST_OPC_EMBED, ST_OPC_LOSS};
    int rc = 0;
    for (int e = 12; e <= 22 && !rc; e += quick ? 5 : 2) {
        double f, b, elems = ldexp(1, e), bytes = 12 * elems;
        if ((rc = st_exec_bench_stream(ST_EXEC_STREAM_ADD, 1, (int64_t)elems, REPS, &f, &b, err))) break;
        double y = rate(bytes, fmin(f, b), 1);
        if (bytes / fmin(f, b) > c->triad_bytes_per_s) c->triad_bytes_per_s = bytes / fmin(f, b);
        for (size_t k = 0; k < sizeof classes / sizeof classes[0] && !rc; k++)
            if (!(c->mem_classes & (1u << classes[k])) && (rc = add_memory(&c->r, classes[k], 0, bytes, y)))
                rc = st_error_set(err, rc, NULL, NULL, "out of memory");
    }
    return rc;
}

/* Adam over the largest rank's parameters (or 2^20), priced back into the bandwidth cost/ uses */
static int measure_adam(st__prof_cpu *c, double params, st_error *err) {
    double f, b;
    int64_t n = params >= 1024 ? (int64_t)params : 1 << 20;
    int rc = st_exec_bench_stream(ST_EXEC_STREAM_ADAM, 1, n, REPS, &f, &b, err);
    if (rc) return rc;
    c->adam_params_per_s = (double)n / fmin(f, b);
    c->cluster.gpu.hbm_bytes_per_s = rate(ADAM_BYTES_PER_PARAM * (double)n, fmin(f, b), ADAM_KERNELS) / HBM_EFFICIENCY;
    return 0;
}

/* latency steps per collective as cost/comm.c counts them in one scale-up domain */
static double steps(st_coll coll, double n) {
    return coll == ST_COLL_ALLREDUCE ? 2 * (n - 1) : coll == ST_COLL_SENDRECV ? 1 : n - 1;
}

static int add_coll(st__prof_cpu *c, st_coll coll, int ranks, double bytes, int exact, st_error *err) {
    double t;
    int rc = st_exec_bench_coll(coll, ranks, bytes, bytes > (1 << 22) ? 5 : 9, &t, err);
    if (rc) return rc;
    double lat = steps(coll, ranks) * c->cluster.intra_latency_s, moved = st_cost_bus_factor(coll, ranks) * bytes;
    double y = moved / fmax(t - lat, 0.1 * t);
    if ((rc = st__prof_add(&c->r, &(st__prof_sample){.kind = ST_PROF_COLL, .coll = coll, .ranks = ranks,
                                                     .exact = exact, .x = bytes, .y = y})))
        return st_error_set(err, rc, NULL, NULL, "out of memory");
    c->colls++;
    return 0;
}

static int measure_colls(st__prof_cpu *c, const st_model *m, const st_plan *p, int quick, st_error *err) {
    static const st_coll colls[] = {ST_COLL_ALLREDUCE, ST_COLL_ALLGATHER, ST_COLL_REDUCESCATTER};
    int size = c->ranks, rc;
    double small = 0, big = 0, top = ldexp(1, quick ? 22 : 24);
    /* the link first: latency from the smallest message, bandwidth from the largest */
    if ((rc = st_exec_bench_coll(ST_COLL_SENDRECV, 2, 1024, 15, &small, err)) ||
        (rc = st_exec_bench_coll(ST_COLL_SENDRECV, 2, top, 5, &big, err)))
        return rc;
    c->cluster.intra_latency_s = small;
    c->cluster.intra_bytes_per_s = top / fmax(big - small, 0.1 * big);
    for (double bytes = 1024; bytes <= top && !rc; bytes *= quick ? 64 : 8)
        rc = add_coll(c, ST_COLL_SENDRECV, 2, bytes, 0, err);
    for (int ranks = 2; ranks <= size && !rc; ranks = ranks * 2 > size && ranks < size ? size : ranks * 2)
        for (size_t k = 0; k < sizeof colls / sizeof colls[0] && !rc; k++)
            for (double bytes = 4096; bytes <= top && !rc; bytes *= quick ? 64 : 8)
                rc = add_coll(c, colls[k], ranks, bytes, 0, err);
    if (rc || !p) return rc;
    /* the plan's own collectives, at the sizes the estimator asks for */
    st__prof_coll *pc = NULL;
    int npc = 0, inter = 0;
    if ((rc = st__prof_plan_colls(m, &c->cluster, p, &pc, &npc, &inter)) < 0)
        return st_error_set(err, rc, NULL, "plan", "the plan's collectives cannot be listed");
    for (int i = 0; i < npc && !rc; i++)
        if (pc[i].ranks >= 2 && pc[i].ranks <= size && pc[i].bytes >= 4)
            rc = add_coll(c, pc[i].coll, pc[i].ranks, 4 * floor(pc[i].bytes / 4), 1, err);
    free(pc);
    return rc;
}

void st__prof_cpu_init(st__prof_cpu *c) {
    memset(c, 0, sizeof *c);
    st__prof_result_init(&c->r);
}

void st__prof_cpu_destroy(st__prof_cpu *c) { st__prof_result_destroy(&c->r); }

int st__prof_cpu_run(const st_model *m, const st_plan *p, int quick, st__prof_cpu *c, st_error *err) {
    int rank = 0, rc;
    if ((rc = st_exec_mpi_init(&rank, &c->ranks, err))) return rc;
    c->rank = rank, c->quick = c->r.quick = quick;
    st_cluster *cl = &c->cluster;
    char host[64] = "localhost";
    gethostname(host, sizeof host - 1);
    snprintf(cl->name, sizeof cl->name, "cpu-%.40s-%d", host, c->ranks);
    snprintf(cl->gpu.name, sizeof cl->gpu.name, "cpu");
    cl->nodes = 1, cl->gpus_per_node = c->ranks, cl->nics_per_node = 1, cl->oversubscription = 1;
    double mem = (double)sysconf(_SC_PHYS_PAGES) * (double)sysconf(_SC_PAGESIZE);
    cl->host_memory_bytes = mem > 0 ? mem : 1073741824.0;
    cl->gpu.memory_bytes = cl->host_memory_bytes / c->ranks;
    cl->gpu.gemm_efficiency = 1;
    cl->reserved_bytes = st_exec_bench_rss_bytes(); /* before any benchmark's buffers */
    /* the sweep: square GEMMs, and the plan's own shapes */
    for (int e = 6; e <= (quick ? 9 : 10) && !rc; e += quick ? 3 : 1)
        rc = gemm(c, ldexp(1, e), ldexp(1, e), ldexp(1, e), 0, err);
    if (!rc && p) rc = measure_plan(c, m, p, err);
    if (!rc) rc = measure_stream(c, quick, err);
    double params = p ? st_model_params(m) / ((double)p->tp * p->pp) : 0;
    if (!rc) rc = measure_adam(c, params, err);
    if (rc) return rc;
    for (int d = 0; d < ST_DT_COUNT; d++)
        cl->gpu.peak_flops[d] = st_dtype_quantised((st_dtype)d) ? 0 : c->gemm_flops_per_s;
    cl->pcie_bytes_per_s = c->triad_bytes_per_s;
    if (c->ranks >= 2) {
        if ((rc = measure_colls(c, m, p, quick, err))) return rc;
    } else { /* nothing crosses a link: physical placeholders */
        cl->intra_bytes_per_s = c->triad_bytes_per_s;
        cl->intra_latency_s = 1e-6;
    }
    cl->nic_bytes_per_s = cl->intra_bytes_per_s, cl->inter_latency_s = cl->intra_latency_s;
    snprintf(cl->source, sizeof cl->source, "strata profile --cpu%s on %s, %d rank%s", quick ? " --quick" : "", host,
             c->ranks, c->ranks == 1 ? "" : "s");
    snprintf(c->r.gpu, sizeof c->r.gpu, "cpu");
    snprintf(c->r.device, sizeof c->r.device, "%s (%d rank%s, %ld cores online)", host, c->ranks,
             c->ranks == 1 ? "" : "s", sysconf(_SC_NPROCESSORS_ONLN));
    snprintf(c->r.timer, sizeof c->r.timer,
             "MPI_Wtime, every rank at once: compute the fastest of 9 windows of >= 10 ms of calls, averaged "
             "over ranks; transfers the fastest of the slowest member's time; rates net of strata's per-kernel "
             "and latency terms");
    st__prof_date(c->r.date, sizeof c->r.date);
    if (st__prof_fit(&c->r)) return st_error_set(err, ST_ENOMEM, NULL, NULL, "out of memory");
    st_cluster check = *cl;
    return st_cluster_finalize(&check, NULL, err);
}

int st__prof_cpu_save_cluster(const st__prof_cpu *c, const char *path, st_error *err) {
    json_t *root = st__cluster_to_json(&c->cluster), *cal = json_object();
    int rc = 0;
    if (!root || !cal) {
        rc = st_error_set(err, ST_ENOMEM, path, NULL, "out of memory");
        goto out;
    }
    char date[16];
    st__prof_date(date, sizeof date);
    int bad = json_object_set_new(cal, "source", json_string(c->cluster.source));
    bad |= json_object_set_new(cal, "date", json_string(date));
    bad |= json_object_set_new(cal, "ranks", json_integer(c->ranks));
    bad |= json_object_set_new(cal, "gemm_gflop_per_s", json_real(c->gemm_flops_per_s / 1e9));
    bad |= json_object_set_new(cal, "triad_gb_per_s", json_real(c->triad_bytes_per_s / 1e9));
    bad |= json_object_set_new(cal, "adam_mparams_per_s", json_real(c->adam_params_per_s / 1e6));
    bad |= json_object_set_new(
        cal, "what",
        json_string("gpu = one rank's share of this CPU. peak_tflops: the best OpenBLAS sgemm rate at one thread "
                    "per rank with every rank computing (all dtypes: the executor computes fp32), "
                    "gemm_efficiency 1; hbm_gb_per_s: the executor's Adam rate as strata prices Adam (26 bytes "
                    "per parameter at 85% of it); memory_gib: host memory over ranks; framework.reserved_gib: a rank's "
                    "resident set after MPI_Init; intra_node: MPI "
                    "send/recv, one way, bandwidth of the largest message and latency of 1 KiB; inter_node "
                    "repeats it (one node); host.pcie_gb_per_s: the residual add's best rate"));
    bad |= json_object_set_new(root, "calibration", cal);
    cal = NULL;
    if (bad) rc = st_error_set(err, ST_ENOMEM, path, NULL, "out of memory");
    else rc = st__json_write_file(root, path, err);
out:
    json_decref(cal);
    json_decref(root);
    return rc;
}

void st__prof_cpu_describe(const st__prof_cpu *c, FILE *f) {
    const st_cluster *cl = &c->cluster;
    fprintf(f, "machine      %s\n", c->r.device);
    fprintf(f, "gemm         %.2f GFLOP/s per rank at best (%d shapes; OpenBLAS sgemm, 1 thread per rank)\n",
            c->gemm_flops_per_s / 1e9, c->gemms);
    fprintf(f, "memory       %.2f GB/s per rank (residual add a = b + c), Adam %.1f M parameters/s\n",
            c->triad_bytes_per_s / 1e9, c->adam_params_per_s / 1e6);
    fprintf(f, "reserved     %.1f MiB per rank before any model state (peak RSS after MPI_Init)\n",
            cl->reserved_bytes / 1048576.0);
    if (c->ranks >= 2)
        fprintf(f, "mpi          send/recv %.2f GB/s one way, %.2f us latency; %d transfers timed\n",
                cl->intra_bytes_per_s / 1e9, cl->intra_latency_s * 1e6, c->colls);
    else
        fprintf(f, "mpi          one rank: no transfers timed (run under mpirun -np N)\n");
    st__prof_describe(&c->r, f);
}
