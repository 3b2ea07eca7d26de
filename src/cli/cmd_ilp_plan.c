/* cmd_ilp_plan.c: `strata estimate` and `strata sim` of an operator-level plan, the file
 * `strata plan --search ilp --out` writes (per-operator shardings, pipeline stages on their own
 * meshes). The estimate prices the plan's shardings exactly as the planner does
 * (st_autoshard_evaluate); the simulator runs it lowered by src/lower/lower_as.c. */
#include "src/cli/cli.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define GIB 1073741824.0

typedef struct loaded {
    st_model m;
    st_graph custom;
    int have_model, have_custom;
    st_cluster c;
    st_profile *prof;
    st_autoshard_opts o;
    st_autoshard_result r;
    st_as_origin orig;
    const char *name;
    double mem_limit;
    int fits;
} loaded;

static void loaded_free(loaded *L) {
    st_autoshard_result_free(&L->r);
    if (L->have_custom) st_graph_free(&L->custom);
    st_profile_free(L->prof);
}

/* the inputs, the plan file, and its price; notes on stderr under `cmd`'s name */
static int load_all(const st_ilp_cmd *a, const char *cmd, loaded *L, st_error *err) {
    int rc;
    memset(L, 0, sizeof *L);
    if ((!a->model_arg && !a->graph_arg) || !a->cluster_arg || !a->plan_arg)
        return st_error_set(err, ST_EUSAGE, NULL, NULL, "--model (or --graph), --cluster and --plan are required (see --help)");
    if (a->model_arg && a->graph_arg) return st_error_set(err, ST_EUSAGE, NULL, NULL, "give --model or --graph, not both");
    int64_t gpus = 0;
    if (a->gpus_arg && (rc = st_cli_int("gpus", a->gpus_arg, 1, ST_MAX_GPUS, &gpus, err))) return rc;
    if (a->model_arg) {
        if ((rc = st_model_resolve(a->model_arg, &L->m, err))) return rc;
        L->have_model = 1;
        L->name = L->m.name;
    } else {
        if ((rc = st_cli_graph_load(a->graph_arg, &L->custom, err))) return rc;
        L->have_custom = 1;
        L->name = L->custom.name;
    }
    if ((rc = st_cluster_resolve(a->cluster_arg, gpus, &L->c, err))) return rc;
    if (a->profile_arg && (rc = st_profile_open(a->profile_arg, &L->prof, err))) return rc;
    char pnote[512] = "";
    if (L->prof && (rc = st_profile_retarget(L->prof, &L->c.gpu, pnote, sizeof pnote, err)) < 0) return rc;
    if ((rc = st_autoshard_load(a->plan_arg, L->have_model ? &L->m : NULL, L->have_custom ? &L->custom : NULL, &L->c,
                                &L->o, &L->r, &L->orig, err)))
        return rc;
    if ((rc = st_autoshard_evaluate(L->have_model ? &L->m : NULL, &L->c, L->prof, &L->o, &L->r, err))) {
        if (!err->file[0]) snprintf(err->file, sizeof err->file, "%s", a->plan_arg);
        return rc;
    }
    if (L->orig.model[0] && L->have_model && strcmp(L->orig.model, L->m.name) != 0)
        fprintf(stderr, "strata %s: note: the plan was made for model %s, not %s\n", cmd, L->orig.model, L->m.name);
    if (L->orig.cluster[0] && strcmp(L->orig.cluster, L->c.name) != 0)
        fprintf(stderr, "strata %s: note: the plan was made for cluster %s, not %s\n", cmd, L->orig.cluster, L->c.name);
    if (pnote[0]) fprintf(stderr, "strata %s: note: %s\n", cmd, pnote);
    L->mem_limit = st_autoshard_memory_limit(&L->c);
    L->fits = L->r.memory_peak_bytes <= L->mem_limit;
    return 0;
}

static void print_head(FILE *out, const loaded *L, const char *plan_path) {
    const st_autoshard_result *r = &L->r;
    int64_t gpus = 0;
    for (int i = 0; i < r->nstages; i++) gpus += (int64_t)r->stage[i].mesh.nodes * r->stage[i].mesh.gpus;
    if (L->have_model)
        fprintf(out, "model      %s (%.1fB parameters, %lld layers, hidden %lld)\n", L->m.name,
                st_model_params(&L->m) / 1e9, (long long)L->m.layers, (long long)L->m.hidden);
    else
        fprintf(out, "graph      %s (%d operators)\n", L->custom.name, L->custom.nops);
    fprintf(out, "cluster    %s: %lld x %lld %s (%lld GPUs, plan uses %lld)\n", L->c.name, (long long)L->c.nodes,
            (long long)L->c.gpus_per_node, L->c.gpu.name, (long long)st_cluster_gpus(&L->c), (long long)gpus);
    char spec[256];
    st_autoshard_spec(r, spec, sizeof spec);
    fprintf(out, "plan       %s: operator-level, %d stage%s; amounts to: %s\n", plan_path, r->nstages,
            r->nstages == 1 ? "" : "s", spec);
    if (L->have_model)
        fprintf(out, "           micro-batch %lld sequences x %lld micro-batches, 1F1B\n\n", (long long)r->mbs,
                (long long)r->microbatches);
    else
        fprintf(out, "           %lld micro-batches of the graph's batch, 1F1B\n\n", (long long)r->microbatches);
}

static void print_stages(FILE *out, const st_autoshard_result *r) {
    fprintf(out, "\n%5s %9s %-8s %12s %10s %10s %10s %10s %9s %4s\n", "stage", "layers", "mesh", "ms/microbatch",
            "compute", "comm", "p2p", "grad_sync", "mem_GiB", "zero");
    for (int i = 0; i < r->nstages; i++) {
        const st_as_stage *st = &r->stage[i];
        char mesh_s[32], lay[32];
        if (st->mesh.naxes == 1) snprintf(mesh_s, sizeof mesh_s, "%d", st->mesh.size[0]);
        else snprintf(mesh_s, sizeof mesh_s, "%dx%d", st->mesh.size[0], st->mesh.size[1]);
        if (st_graph_units(r->g) > 1) snprintf(lay, sizeof lay, "%d-%d", st->first, st->last - 1);
        else snprintf(lay, sizeof lay, "all");
        fprintf(out, "%5d %9s %-8s %12.3f %10.3f %10.3f %10.3f %10.3f %9.1f %4d\n", i, lay, mesh_s, st->time_s * 1e3,
                st->compute_s * 1e3, fmax(0, st->comm_s) * 1e3, st->p2p_s * 1e3, st->sync_s * 1e3,
                st->memory_bytes / GIB, st->zero);
    }
}

int st__estimate_ilp(const st_ilp_cmd *a, st_error *err) {
    loaded L;
    char *text = NULL;
    size_t len = 0;
    FILE *out = NULL;
    int rc = load_all(a, "estimate", &L, err);
    if (rc) goto done;
    if (!L.have_model) L.r.tokens_per_s = 0;
    if (a->json) {
        rc = st_out_autoshard_estimate_json(stdout, L.name, &L.c, &L.r, L.fits, NULL, NULL, err);
        if (!rc) rc = L.fits ? 0 : 1;
        goto done;
    }
    if (!(out = open_memstream(&text, &len))) {
        rc = st_error_set(err, ST_ENOMEM, NULL, NULL, "out of memory");
        goto done;
    }
    const st_autoshard_result *r = &L.r;
    print_head(out, &L, a->plan_arg);
    fprintf(out, "iteration time      %10.3f s", r->iteration_time_s);
    if (L.orig.predicted_s > 0) fprintf(out, " (the planner said %.3f s)", L.orig.predicted_s);
    fprintf(out, "\n");
    if (L.have_model) fprintf(out, "tokens/s            %10.0f\n", r->tokens_per_s);
    fprintf(out, "model TFLOP/s/GPU   %10.1f\n", r->model_tflops_per_gpu);
    fprintf(out, "MFU                 %10.1f %%\n", 100 * r->mfu);
    fprintf(out, "memory peak         %10.1f GiB of %.1f usable: %s\n", r->memory_peak_bytes / GIB, L.mem_limit / GIB,
            L.fits ? "fits" : "DOES NOT FIT");
    print_stages(out, r);
    fprintf(out, "\nper micro-batch and stage, forward + backward (ms); grad_sync is the stage's gradient all-reduce "
                 "(zero 1: reduce-scatter, and the weights' all-gather) spread over the micro-batches; iteration = sum of stage times + (micro-batches - 1) x the slowest\n");
    fclose(out);
    out = NULL;
    fwrite(text, 1, len, stdout);
    rc = L.fits ? 0 : 1;
done:
    if (out) fclose(out);
    free(text);
    loaded_free(&L);
    return rc;
}

int st__sim_ilp(const st_ilp_cmd *a, st_error *err) {
    loaded L;
    st_lowered low = {0};
    st_sim_result res = {0};
    st_trace *trace = NULL;
    char *text = NULL;
    size_t len = 0;
    FILE *out = NULL;
    st_autoshard_result simd = {0};
    int rc;
    if (a->every_rank) {
        memset(&L, 0, sizeof L);
        rc = st_error_set(err, ST_EUSAGE, NULL, NULL,
                          "--every-rank: an operator-level plan is simulated one representative rank per stage (the "
                          "devices of a stage's mesh run one SPMD program)");
        goto done;
    }
    if ((rc = load_all(a, "sim", &L, err))) goto done;
    struct timespec ts0, ts1;
    clock_gettime(CLOCK_MONOTONIC, &ts0);
    if ((rc = st_lower_autoshard(&L.r, &L.c, L.prof, L.o.dtype, &low, err))) goto done;
    clock_gettime(CLOCK_MONOTONIC, &ts1);
    if (a->trace_arg && !(trace = st_trace_open(a->trace_arg, st_stream_names, ST_STREAMS, err))) {
        rc = err->code ? err->code : ST_EIO;
        goto done;
    }
    if ((rc = st_sim_run(&low, L.mem_limit, trace, &res, err))) {
        rc = ST_ENOPLAN; /* a schedule that cannot run is the plan's failure */
        goto done;
    }
    if (a->timing)
        fprintf(stderr, "strata sim: timing: lowering %.3f s, setup %.3f s, events %.3f s (%llu events)\n",
                (double)(ts1.tv_sec - ts0.tv_sec) + 1e-9 * (double)(ts1.tv_nsec - ts0.tv_nsec), res.setup_wall_s,
                res.run_wall_s, (unsigned long long)res.events);
    if (res.oom) {
        const st_program *pg = &low.progs[res.oom_rank];
        if (res.oom_ins < 0 || res.oom_ins >= pg->n)
            rc = st_error_set(err, ST_ENOFIT, NULL, "plan",
                              "out of memory: stage %d holds %.1f GiB of weights, gradients and optimizer states "
                              "before any activation; %.1f GiB of the GPU's are usable",
                              pg->stage, pg->base_bytes / GIB, L.mem_limit / GIB);
        else
            rc = st_error_set(err, ST_ENOFIT, NULL, "plan", "out of memory: stage %d at instruction %d (%s, micro-batch %d) exceeds the %.1f GiB usable",
                              pg->stage, res.oom_ins, pg->ins[res.oom_ins].label, pg->ins[res.oom_ins].mb,
                              L.mem_limit / GIB);
        goto done;
    }
    if (trace) {
        rc = st_trace_close(trace, err);
        trace = NULL;
        if (rc) goto done;
    }
    /* the simulator's view of the estimate keys */
    simd = L.r;
    double t = res.iteration_time_s, peak = 0;
    for (int i = 0; i < res.nranks; i++)
        if (res.ranks[i].memory_peak_bytes > peak) peak = res.ranks[i].memory_peak_bytes;
    simd.iteration_time_s = t;
    simd.tokens_per_s = L.have_model ? L.r.tokens_per_s * L.r.iteration_time_s / t : 0;
    simd.model_tflops_per_gpu = L.r.model_tflops_per_gpu * L.r.iteration_time_s / t;
    simd.mfu = L.r.mfu * L.r.iteration_time_s / t;
    simd.memory_peak_bytes = peak;
    int fits = peak <= L.mem_limit;
    if (a->json) {
        rc = st_out_autoshard_estimate_json(stdout, L.name, &L.c, &simd, fits, &res, &L.r, err);
        if (!rc) rc = fits ? 0 : 1;
        goto done;
    }
    if (!(out = open_memstream(&text, &len))) {
        rc = st_error_set(err, ST_ENOMEM, NULL, NULL, "out of memory");
        goto done;
    }
    print_head(out, &L, a->plan_arg);
    fprintf(out, "simulated  %d ranks (one per stage, each standing for its mesh), %llu events\n\n", res.nranks,
            (unsigned long long)res.events);
    fprintf(out, "%-20s %12s %12s\n", "", "simulated", "analytical");
    fprintf(out, "%-20s %12.3f %12.3f\n", "iteration time (s)", t, L.r.iteration_time_s);
    if (L.have_model) fprintf(out, "%-20s %12.0f %12.0f\n", "tokens/s", simd.tokens_per_s, L.r.tokens_per_s);
    fprintf(out, "%-20s %12.1f %12.1f\n", "model TFLOP/s/GPU", simd.model_tflops_per_gpu, L.r.model_tflops_per_gpu);
    fprintf(out, "%-20s %12.1f %12.1f\n", "MFU (%)", 100 * simd.mfu, 100 * L.r.mfu);
    fprintf(out, "%-20s %12.1f %12.1f\n", "memory peak (GiB)", peak / GIB, L.r.memory_peak_bytes / GIB);
    fprintf(out, "\n%4s %5s %11s %11s %11s %11s %11s %10s\n", "rank", "stage", "compute_s", "p2p_s", "dp_s", "idle_s",
            "bubble_s", "mem_GiB");
    for (int i = 0; i < res.nranks; i++) {
        const st_rank_stats *s = &res.ranks[i];
        fprintf(out, "%4d %5d %11.3f %11.3f %11.3f %11.3f %11.3f %10.1f\n", i, low.progs[i].stage,
                s->busy_s[ST_STREAM_COMPUTE], s->busy_s[ST_STREAM_P2P], s->busy_s[ST_STREAM_DP], s->compute_idle_s,
                s->bubble_s, s->memory_peak_bytes / GIB);
    }
    if (a->trace_arg) fprintf(out, "\nwrote %s\n", a->trace_arg);
    fclose(out);
    out = NULL;
    fwrite(text, 1, len, stdout);
    rc = fits ? 0 : 1;
done:
    if (out) fclose(out);
    free(text);
    if (trace) st_trace_discard(trace);
    st_sim_result_destroy(&res);
    st_lowered_destroy(&low);
    loaded_free(&L);
    return rc;
}
