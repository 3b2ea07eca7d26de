/* cmd_ilp_plan.c: `strata estimate` and `strata sim` of an operator-level plan, the file
 * `strata plan --search ilp --out` writes (per-operator shardings, pipeline stages on their own
 * meshes). The estimate prices the plan's shardings exactly as the planner does
 * (st_autoshard_evaluate); the simulator runs it lowered by src/lower/lower_as.c. */
#include "exec/exec.h"
#include "src/cli/cli.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define GIB 1073741824.0

typedef struct loaded {
    st_cli_inputs in;
    st_autoshard_opts o;
    st_autoshard_result r;
    st_as_origin orig;
    const char *name;
    double mem_limit;
    int fits;
} loaded;

static void loaded_free(loaded *L) {
    st_autoshard_result_free(&L->r);
    st_cli_inputs_destroy(&L->in);
}

/* the inputs, the plan file, and its price; notes on stderr under `cmd`'s name */
static int load_all(const st_cli_args *a, const char *cmd, loaded *L, st_error *err) {
    const unsigned want = ST_CLI_MODEL | ST_CLI_GRAPH | ST_CLI_CLUSTER | ST_CLI_ILP_PLAN | ST_CLI_PROFILE;
    st_cli_inputs *in = &L->in;
    int rc;
    memset(L, 0, sizeof *L);
    if ((rc = st_cli_inputs_check(a, want, in, err)) || (rc = st_cli_inputs_resolve(a, want, in, err))) return rc;
    const st_model *m = in->have_model ? &in->model : NULL;
    L->name = m ? m->name : in->graph.name;
    if ((rc = st_autoshard_load(a->plan, m, in->have_graph ? &in->graph : NULL, &in->cluster, &L->o, &L->r, &L->orig,
                                err)))
        return rc;
    if ((rc = st_autoshard_evaluate(m, &in->cluster, in->profile, &L->o, &L->r, err))) {
        if (!err->file[0]) snprintf(err->file, sizeof err->file, "%s", a->plan);
        return rc;
    }
    if (L->orig.model[0] && m && strcmp(L->orig.model, m->name) != 0)
        st_cli_note(cmd, "the plan was made for model %s, not %s", L->orig.model, m->name);
    if (L->orig.cluster[0] && strcmp(L->orig.cluster, in->cluster.name) != 0)
        st_cli_note(cmd, "the plan was made for cluster %s, not %s", L->orig.cluster, in->cluster.name);
    st_cli_inputs_notes(in, cmd);
    L->mem_limit = st_autoshard_memory_limit(&in->cluster);
    L->fits = L->r.memory_peak_bytes <= L->mem_limit;
    return 0;
}

static void print_head(FILE *out, const loaded *L, const char *plan_path) {
    const st_autoshard_result *r = &L->r;
    const st_cli_inputs *in = &L->in;
    const st_cluster *c = &in->cluster;
    int64_t gpus = 0;
    for (int i = 0; i < r->nstages; i++) gpus += (int64_t)r->stage[i].mesh.nodes * r->stage[i].mesh.gpus;
    if (in->have_model)
        fprintf(out, "model      %s (%.1fB parameters, %lld layers, hidden %lld)\n", in->model.name,
                st_model_params(&in->model) / 1e9, (long long)in->model.layers, (long long)in->model.hidden);
    else
        fprintf(out, "graph      %s (%d operators)\n", in->graph.name, in->graph.nops);
    fprintf(out, "cluster    %s: %lld x %lld %s (%lld GPUs, plan uses %lld)\n", c->name, (long long)c->nodes,
            (long long)c->gpus_per_node, c->gpu.name, (long long)st_cluster_gpus(c), (long long)gpus);
    char spec[256];
    st_autoshard_spec(r, spec, sizeof spec);
    fprintf(out, "plan       %s: operator-level, %d stage%s; amounts to: %s\n", plan_path, r->nstages,
            r->nstages == 1 ? "" : "s", spec);
    if (in->have_model)
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

int st__estimate_ilp(const st_cli_args *a, st_error *err) {
    loaded L;
    st_cli_text text = {0};
    int rc = load_all(a, "estimate", &L, err);
    if (rc) goto done;
    if (!L.in.have_model) L.r.tokens_per_s = 0;
    if (a->json) {
        rc = st_out_autoshard_estimate_json(stdout, L.name, &L.in.cluster, &L.r, L.fits, NULL, NULL, err);
        if (!rc) rc = L.fits ? 0 : 1;
        goto done;
    }
    if ((rc = st_cli_text_open(&text, err))) goto done;
    FILE *out = text.f;
    const st_autoshard_result *r = &L.r;
    print_head(out, &L, a->plan);
    fprintf(out, "iteration time      %10.3f s", r->iteration_time_s);
    if (L.orig.predicted_s > 0) fprintf(out, " (the planner said %.3f s)", L.orig.predicted_s);
    fprintf(out, "\n");
    if (L.in.have_model) fprintf(out, "tokens/s            %10.0f\n", r->tokens_per_s);
    fprintf(out, "model TFLOP/s/GPU   %10.1f\n", r->model_tflops_per_gpu);
    fprintf(out, "MFU                 %10.1f %%\n", 100 * r->mfu);
    fprintf(out, "memory peak         %10.1f GiB of %.1f usable: %s\n", r->memory_peak_bytes / GIB, L.mem_limit / GIB,
            L.fits ? "fits" : "DOES NOT FIT");
    print_stages(out, r);
    fprintf(out, "\nper micro-batch and stage, forward + backward (ms); grad_sync is the stage's gradient all-reduce "
                 "(zero 1: reduce-scatter, and the weights' all-gather) spread over the micro-batches; iteration = "
                 "sum of stage times + (micro-batches - 1) x the slowest\n");
    st_cli_text_print(&text);
    rc = L.fits ? 0 : 1;
done:
    st_cli_text_destroy(&text);
    loaded_free(&L);
    return rc;
}

/* one micro-batch's resharding collectives on stage s of k layers (st_autoshard_work's steps: its head, the
 * edge into its first layer, each layer, the edges between them, out of its last, its tail), forward (bwd 0)
 * or backward; with layers_only the layers' and the edges into and between them (a full recompute's) */
static double work_colls_s(const st_as_work *w, int k, int bwd, int layers_only) {
    double t = 0;
    for (int p = 0; p < ST_AS_PARTS; p++) {
        double times = p == ST_AS_LAYER ? k : p == ST_AS_CROSS ? k - 1 : 1;
        if (layers_only && p != ST_AS_LAYER && p != ST_AS_CROSS && p != ST_AS_ENTER) continue;
        for (int i = 0; i < w->n[p][bwd]; i++)
            if (w->step[p][bwd][i].coll != ST_COLL_NONE) t += times * w->step[p][bwd][i].time_s;
    }
    return t;
}

/* the tp collectives of a run whose attention or experts split the rows, as the ILP prices what the executor
 * runs (st_lower_opts' tp_fwd_s ...) */
static int run_tp_colls(const loaded *L, st_lower_opts *lo, st_error *err) {
    const st_autoshard_result *r = &L->r;
    for (int s = 0; s < r->nstages; s++) {
        st_as_work w;
        int rc = st_autoshard_work(r, s, &L->in.cluster, L->in.profile, L->o.dtype, &w, err);
        if (rc) return rc;
        int k = r->stage[s].last - r->stage[s].first;
        lo->tp_fwd_s[s] = work_colls_s(&w, k, 0, 0);
        lo->tp_bwd_s[s] = work_colls_s(&w, k, 1, 0);
        lo->tp_recompute_s[s] = r->stage[s].recompute ? work_colls_s(&w, k, 0, 1) : 0;
        st_as_work_free(&w);
    }
    lo->ntp_stages = r->nstages;
    return 0;
}

/* stage d's splits in words, for the run's plan line ("" when Megatron's) */
static void stage_splits(const st_as_hybrid *h, char *buf, size_t n) {
    snprintf(buf, n, "%s%s%s%s",
             h->attn_rows == 3   ? ",qkv_split=width"
             : h->attn_rows == 2 ? ",on_rows=attention"
             : h->attn_rows == 1 ? ",on_rows=projection"
                                 : "",
             h->moe_rows ? ",experts=tp_rows" : "", h->router_h ? ",router=hidden" : "",
             h->head_dp ? ",output_layer=dp_vocabulary" : "");
}

int st__run_ilp_spec(const st_cli_args *a, char *spec, size_t n, int *attn_rows, int *moe_rows, int *router_h,
                     int *replicas, int *head_dp, st_lower_opts *lo, st__ilp_stage *stages, int *nstages,
                     st_error *err) {
    loaded L;
    st_as_hybrid h, *hs = NULL;
    int rc = load_all(a, "run", &L, err);
    const st_autoshard_result *r = &L.r;
    int rec = 0, S = r->nstages, same = 1;
    *nstages = 0;
    if (rc) goto done;
    /* each operator as the ILP split it, where that is the decoder's Megatron sharding, stage by stage */
    if (!(hs = calloc((size_t)(S > 0 ? S : 1), sizeof *hs))) {
        rc = st_error_set(err, ST_ENOMEM, NULL, NULL, "out of memory");
        goto done;
    }
    if ((rc = st_autoshard_hybrid_stages(r, hs, err))) {
        snprintf(err->file, sizeof err->file, "%s", a->plan);
        goto done;
    }
    /* one hybrid plan for every stage where their degrees and recompute agree; else each stage its own
     * (exec.h's st_exec_stage, lowered by st_lower_stages) */
    st_error other;
    for (int i = 1; i < S; i++) same &= r->stage[i].recompute == r->stage[0].recompute;
    if (!same || st_autoshard_hybrid(r, &h, &other)) {
        int64_t seq = L.o.seq ? L.o.seq : L.in.model.seq_len;
        if (S > ST_MAX_STAGES || !stages) { /* (ST_MAX_STAGES: the plan's own limit) */
            rc = st_error_set(err, ST_EINVAL, a->plan, "stages", "%d stages of different shapes: the executor runs %d",
                              S, stages ? ST_MAX_STAGES : 0);
            goto done;
        }
        st_lower_opts tl;
        st_lower_opts_init(&tl);
        int own = 0; /* a stage whose attention or experts split the rows: the ILP's tp collectives (run_tp_colls) */
        for (int i = 0; i < S; i++) own |= hs[i].attn_rows || hs[i].moe_rows || hs[i].router_h;
        if (own && (rc = run_tp_colls(&L, &tl, err))) goto done;
        for (int i = 0; i < S; i++) {
            st__ilp_stage *x = &stages[i];
            const st_as_hybrid *y = &hs[i];
            int len = snprintf(x->spec, sizeof x->spec,
                               "tp=%d,pp=%d,dp=%d,ep=%d,sp=%d,zero=%d,mbs=%lld,gbs=%lld,seq=%lld,recompute=%s,"
                               "stage_layers=", y->tp, S, y->dp, y->ep, y->sp, y->zero, (long long)(r->mbs / y->dp),
                               (long long)L.o.gbs, (long long)seq, r->stage[i].recompute ? "full" : "none");
            for (int j = 0; j < S && len < (int)sizeof x->spec; j++)
                len += snprintf(x->spec + len, sizeof x->spec - (size_t)len, "%s%d", j ? "," : "",
                                r->stage[j].last - r->stage[j].first);
            if (len >= (int)sizeof x->spec) {
                rc = st_error_set(err, ST_EINVAL, a->plan, "stages", "too many stages for the executor");
                goto done;
            }
            x->h = *y;
            x->own_tp = y->attn_rows || y->moe_rows || y->router_h;
            x->tp_fwd_s = tl.tp_fwd_s[i], x->tp_bwd_s = tl.tp_bwd_s[i], x->tp_recompute_s = tl.tp_recompute_s[i];
            stage_splits(y, x->splits, sizeof x->splits);
        }
        *nstages = S;
        goto done;
    }
    *attn_rows = h.attn_rows, *moe_rows = h.moe_rows, *router_h = h.router_h, *replicas = h.rep, *head_dp = h.head_dp;
    if (lo && (h.attn_rows || h.moe_rows || h.router_h) && (rc = run_tp_colls(&L, lo, err))) goto done;
    /* the ILP's micro-batch is the stage's, split over its batch axes */
    int len = snprintf(spec, n, "tp=%d,pp=%d,dp=%d,ep=%d,sp=%d,zero=%d,mbs=%lld,gbs=%lld,seq=%lld,stage_layers=",
                       h.tp, r->nstages, h.dp, h.ep, h.sp, h.zero, (long long)(r->mbs / h.dp), (long long)L.o.gbs,
                       (long long)(L.o.seq ? L.o.seq : L.in.model.seq_len));
    for (int i = 0; i < r->nstages; i++) {
        const st_as_stage *st = &r->stage[i];
        rec = st->recompute;
        if (len < (int)n) /* past the end nothing more is written (spec + len would point beyond it) */
            len += snprintf(spec + len, n - (size_t)len, "%s%d", i ? "," : "", st->last - st->first);
    }
    if (len < (int)n) len += snprintf(spec + len, n - (size_t)len, ",recompute=%s", rec ? "full" : "none");
    if (len >= (int)n) rc = st_error_set(err, ST_EINVAL, a->plan, "stages", "too many stages for the executor");
done:
    free(hs);
    loaded_free(&L);
    return rc;
}

int st__run_ilp_ops(const st_cli_args *a, const st_exec_opts *o, st_cli_ilp_run *out, st_exec_result *res, int *ran,
                    st_error *err) {
    loaded L;
    st_error e2;
    memset(out, 0, sizeof *out);
    int rc = load_all(a, "run", &L, err);
    if (rc) goto done;
    /* the plans as_hybrid maps onto the executor's templates run there (st__run_ilp_spec) */
    /* (the environment's STRATA_RUN_PER_OP=1 runs those per operator too: tests compare the two runtimes) */
    const char *force = getenv("STRATA_RUN_PER_OP");
    st_as_hybrid *hs = calloc((size_t)(L.r.nstages > 0 ? L.r.nstages : 1), sizeof *hs);
    if (!hs) {
        rc = st_error_set(err, ST_ENOMEM, NULL, NULL, "out of memory");
        goto done;
    }
    int templ = L.r.nstages <= ST_MAX_STAGES && st_autoshard_hybrid_stages(&L.r, hs, &e2) == 0; /* (each stage's own) */
    free(hs);
    if (!(force && !strcmp(force, "1")) && templ) {
        rc = 1;
        goto done;
    }
    if (!L.in.have_model) {
        rc = st_error_set(err, ST_EINVAL, a->plan, NULL, "strata run trains a model: give --model, not a graph");
        goto done;
    }
    if ((rc = st_lower_autoshard(&L.r, &L.in.cluster, L.in.profile, L.o.dtype, &out->low, err))) goto done;
    *ran = 1;
    rc = st_exec_run_ilp(&L.in.model, &L.r, &L.in.cluster, L.in.profile, L.o.dtype, &out->low, o, res, err);
    if (rc && !err->file[0] && res->refused) snprintf(err->file, sizeof err->file, "%s", a->plan);
    out->model = L.in.model;
    out->gbs = L.o.gbs;
    out->seq = L.o.seq ? L.o.seq : L.in.model.seq_len;
    /* the report's plan line: the file, and each stage's mesh (its program runs on every device of it) */
    char mesh[160] = "", zero[64] = "";
    int devices = 0;
    for (int i = 0, k = 0; i < L.r.nstages; i++) { /* (every stage's devices counted, however long the line) */
        const st_mesh *me = &L.r.stage[i].mesh;
        devices += me->nodes * me->gpus;
        /* each stage's own ZeRO-1 (a plan's stages may differ): "1,0" */
        size_t z = strlen(zero);
        if (z + 3 < sizeof zero) snprintf(zero + z, sizeof zero - z, "%s%d", i ? "," : "", L.r.stage[i].zero);
        if (k >= (int)sizeof mesh - 24) continue;
        if (me->naxes > 1)
            k += snprintf(mesh + k, sizeof mesh - (size_t)k, "%s%dx%d", i ? "," : "", me->size[0], me->size[1]);
        else
            k += snprintf(mesh + k, sizeof mesh - (size_t)k, "%s%d", i ? "," : "", me->size[0]);
    }
    snprintf(out->spec, sizeof out->spec,
             "%s: operator-level, run per operator on %d devices (stage meshes %s, mbs=%lld, gbs=%lld, zero=%s; each "
             "stage's first device's times stand for it)", a->plan, devices, mesh,
             (long long)L.r.mbs, (long long)out->gbs, zero);
done:
    loaded_free(&L);
    return rc;
}

/* ST_ENOFIT naming the stage, and the instruction where one ran out of memory */
static int oom_error(const st_lowered *low, const st_sim_result *res, double mem_limit, st_error *err) {
    const st_program *pg = &low->progs[res->oom_rank];
    if (res->oom_ins < 0 || res->oom_ins >= pg->n)
        return st_error_set(err, ST_ENOFIT, NULL, "plan",
                            "out of memory: stage %d holds %.1f GiB of weights, gradients and optimizer states "
                            "before any activation; %.1f GiB of the GPU's are usable",
                            pg->stage, pg->base_bytes / GIB, mem_limit / GIB);
    return st_error_set(err, ST_ENOFIT, NULL, "plan",
                        "out of memory: stage %d at instruction %d (%s, micro-batch %d) exceeds the %.1f GiB usable",
                        pg->stage, res->oom_ins, pg->ins[res->oom_ins].label, pg->ins[res->oom_ins].mb,
                        mem_limit / GIB);
}

/* the simulated and the analytical keys side by side, then each rank's times */
static void print_sim(FILE *out, const loaded *L, const st_lowered *low, const st_sim_result *res,
                      const st_autoshard_result *simd, const char *plan_path, const char *trace_path) {
    const st_autoshard_result *r = &L->r;
    print_head(out, L, plan_path);
    fprintf(out, "simulated  %d ranks (one per stage, each standing for its mesh), %llu events\n\n", res->nranks,
            (unsigned long long)res->events);
    fprintf(out, "%-20s %12s %12s\n", "", "simulated", "analytical");
    fprintf(out, "%-20s %12.3f %12.3f\n", "iteration time (s)", simd->iteration_time_s, r->iteration_time_s);
    if (L->in.have_model) fprintf(out, "%-20s %12.0f %12.0f\n", "tokens/s", simd->tokens_per_s, r->tokens_per_s);
    fprintf(out, "%-20s %12.1f %12.1f\n", "model TFLOP/s/GPU", simd->model_tflops_per_gpu, r->model_tflops_per_gpu);
    fprintf(out, "%-20s %12.1f %12.1f\n", "MFU (%)", 100 * simd->mfu, 100 * r->mfu);
    fprintf(out, "%-20s %12.1f %12.1f\n", "memory peak (GiB)", simd->memory_peak_bytes / GIB,
            r->memory_peak_bytes / GIB);
    fprintf(out, "\n%4s %5s %11s %11s %11s %11s %11s %10s\n", "rank", "stage", "compute_s", "p2p_s", "dp_s", "idle_s",
            "bubble_s", "mem_GiB");
    for (int i = 0; i < res->nranks; i++) {
        const st_rank_stats *s = &res->ranks[i];
        fprintf(out, "%4d %5d %11.3f %11.3f %11.3f %11.3f %11.3f %10.1f\n", i, low->progs[i].stage,
                s->busy_s[ST_STREAM_COMPUTE], s->busy_s[ST_STREAM_P2P], s->busy_s[ST_STREAM_DP], s->compute_idle_s,
                s->bubble_s, s->memory_peak_bytes / GIB);
    }
    if (trace_path) fprintf(out, "\nwrote %s\n", trace_path);
}

int st__sim_ilp(const st_cli_args *a, const char *trace_path, int every_rank, int timing, st_error *err) {
    loaded L;
    st_lowered low = {0};
    st_sim_result res = {0};
    st_trace *trace = NULL;
    st_cli_text text = {0};
    st_autoshard_result simd = {0};
    int rc;
    if (every_rank) {
        memset(&L, 0, sizeof L);
        rc = st_error_set(err, ST_EUSAGE, NULL, NULL,
                          "--every-rank: an operator-level plan is simulated one representative rank per stage (the "
                          "devices of a stage's mesh run one SPMD program)");
        goto done;
    }
    if ((rc = load_all(a, "sim", &L, err))) goto done;
    double lower_t0 = st_clock_s();
    if ((rc = st_lower_autoshard(&L.r, &L.in.cluster, L.in.profile, L.o.dtype, &low, err))) goto done;
    double lower_s = st_clock_s() - lower_t0;
    if (trace_path && !(trace = st_trace_open(trace_path, st_stream_names, ST_STREAMS, err))) {
        rc = err->code ? err->code : ST_EIO;
        goto done;
    }
    if ((rc = st_sim_run(&low, L.mem_limit, trace, &res, err))) {
        rc = ST_ENOPLAN; /* a schedule that cannot run is the plan's failure */
        goto done;
    }
    if (timing)
        fprintf(stderr, "strata sim: timing: lowering %.3f s, setup %.3f s, events %.3f s (%llu events)\n",
                lower_s, res.setup_wall_s,
                res.run_wall_s, (unsigned long long)res.events);
    if (res.oom) {
        rc = oom_error(&low, &res, L.mem_limit, err);
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
    simd.tokens_per_s = L.in.have_model ? L.r.tokens_per_s * L.r.iteration_time_s / t : 0;
    simd.model_tflops_per_gpu = L.r.model_tflops_per_gpu * L.r.iteration_time_s / t;
    simd.mfu = L.r.mfu * L.r.iteration_time_s / t;
    simd.memory_peak_bytes = peak;
    int fits = peak <= L.mem_limit;
    if (a->json) {
        rc = st_out_autoshard_estimate_json(stdout, L.name, &L.in.cluster, &simd, fits, &res, &L.r, err);
        if (!rc) rc = fits ? 0 : 1;
        goto done;
    }
    if ((rc = st_cli_text_open(&text, err))) goto done;
    print_sim(text.f, &L, &low, &res, &simd, a->plan, trace_path);
    st_cli_text_print(&text);
    rc = fits ? 0 : 1;
done:
    st_cli_text_destroy(&text);
    if (trace) st_trace_discard(trace);
    st_sim_result_destroy(&res);
    st_lowered_destroy(&low);
    loaded_free(&L);
    return rc;
}
