/* cmd_sim.c: `strata sim`: lower a plan to per-stage programs (or, with --every-rank, to one
 * program per rank) and simulate one iteration (program.h, src/lower/lower.c, src/sim/sim.c). Prints the
 * keys of `strata estimate` as the simulator sees them, the analytical estimate beside them,
 * per-rank busy/idle/bubble times and the number of events; --trace writes a Chrome trace. Exit 1
 * when the plan does not fit or cannot run (out of memory, deadlock), with the rank, instruction
 * and reason. */
#include "src/cli/cli.h"

#include <time.h>

static const char help_text[] =
    "usage: strata sim --model M --cluster C --plan P [--gpus N] [--profile F] [--every-rank] [--trace FILE]\n"
    "                  [--json]\n"
    "       strata sim (--model M | --graph FILE) --cluster C --plan ILP_PLAN [...]\n"
    "\n"
    "Simulates one training iteration of the plan, event by event, on one representative rank per\n"
    "pipeline stage (the tp, cp and dp ranks of a stage run the same program). Transfers share the\n"
    "NVLink ports, NICs and fabric links they cross, max-min fairly.\n"
    "An operator-level plan (strata plan --search ilp --out) runs its stages on their own meshes,\n"
    "each operator's resharding collectives as instructions; --graph names its custom graph.\n"
    "  --every-rank  simulate every rank (the same result, more events; for checking and benchmarks); on\n"
    "                node groups each replica's ranks on their own GPUs and links, with their micro-batches;\n"
    "                with stage_tp each stage's ranks at its own tp (not under zbv or dualpipe)\n"
    "  --timing      print to stderr how long lowering, setting up and running the events took\n"
    "  --trace FILE  write a Chrome trace (open it in Perfetto or chrome://tracing)\n"
    "  --json        one JSON object: the estimate keys, \"analytical\", \"ranks\", \"events\"\n"
    "\n"
    "Exit status: 0 success, 1 out of memory or the schedule cannot run, 2 bad input.\n";

/* The simulator's view of the estimate's keys: its time and peak memory, the rest derived from them */
static st_estimate sim_view(const st_estimate *est, const st_sim_result *res, const st_lowered *low, const st_plan *p,
                            const st_cluster *c) {
    double gpus_used = (double)st_plan_gpus(p);
    double t = res->iteration_time_s, peak = 0;
    for (int r = 0; r < res->nranks; r++)
        if (res->ranks[r].memory_peak_bytes > peak) peak = res->ranks[r].memory_peak_bytes;
    st_estimate simd = *est;
    int fits = 1; /* each rank within its own device's memory (node groups: its group's GPU) */
    for (int r = 0; r < res->nranks && r < low->nranks; r++)
        fits &= res->ranks[r].memory_peak_bytes <= st_sim_device_memory_bytes(c, &low->progs[r]);
    simd.iteration_time_s = t;
    simd.tokens_per_s = (double)p->gbs * (double)p->seq / t;
    simd.model_tflops_per_gpu = est->model_flops / t / gpus_used / 1e12;
    /* node groups: the estimate's peaks, each group's GPUs at their own (c->gpu is the slowest) */
    simd.mfu = c->ngroups ? est->mfu * est->iteration_time_s / t
                          : est->model_flops / t / gpus_used / c->gpu.peak_flops[p->dtype];
    simd.memory_peak_bytes = peak;
    simd.fits = fits;
    return simd;
}

/* ST_ENOFIT naming the rank, and the instruction where one ran out of memory */
static int oom_error(const st_lowered *low, const st_sim_result *res, const st_cluster *c, st_error *err) {
    const st_program *pg = &low->progs[res->oom_rank];
    double gib = st_sim_device_memory_bytes(c, pg) / 1073741824.0;
    if (res->oom_ins < 0 || res->oom_ins >= pg->n)
        return st_error_set(err, ST_ENOFIT, NULL, "plan",
                            "out of memory: rank %d (stage %d) holds %.1f GiB of weights, gradients and optimizer "
                            "states before any activation; the GPU has %.1f GiB",
                            res->oom_rank, pg->stage, pg->base_bytes / 1073741824.0, gib);
    const st_ins *in = &pg->ins[res->oom_ins];
    return st_error_set(err, ST_ENOFIT, NULL, "plan",
                        "out of memory: rank %d (stage %d) at instruction %d (%s, chunk %d, micro-batch %d) "
                        "exceeds %.1f GiB",
                        res->oom_rank, pg->stage, res->oom_ins, in->label, in->chunk, in->mb, gib);
}

/* the simulated and the analytical keys side by side, then each rank's times */
static void print_sim(FILE *out, const st_cli_inputs *in, const st_lowered *low, const st_sim_result *res,
                      const st_estimate *simd, const st_estimate *est, int every, const char *trace_path) {
    const st_model *m = &in->model;
    const st_cluster *c = &in->cluster;
    char spec[512];
    st_plan_format_spec(in->plan, spec, sizeof spec);
    const double GiB = 1073741824.0;
    fprintf(out, "model      %s (%.1fB parameters)\n", m->name, st_model_params(m) / 1e9);
    char gpus[400];
    st_cluster_describe(c, gpus, sizeof gpus);
    fprintf(out, "cluster    %s: %s\n", c->name, gpus);
    fprintf(out, "plan       %s\n", spec);
    if (every)
        fprintf(out, "simulated  %d ranks (every rank), %llu events\n", res->nranks, (unsigned long long)res->events);
    else
        fprintf(out, "simulated  %d ranks (one per pipeline stage, each standing for %d), %llu events\n", res->nranks,
                low->progs[0].replicas, (unsigned long long)res->events);
    fprintf(out, "network    %d links, %llu transfers as flows, %llu re-shared on full links\n\n", low->nlinks,
            (unsigned long long)res->flows, (unsigned long long)res->reshares);
    fprintf(out, "%-20s %12s %12s\n", "", "simulated", "analytical");
    fprintf(out, "%-20s %12.3f %12.3f\n", "iteration time (s)", simd->iteration_time_s, est->iteration_time_s);
    fprintf(out, "%-20s %12.0f %12.0f\n", "tokens/s", simd->tokens_per_s, est->tokens_per_s);
    fprintf(out, "%-20s %12.1f %12.1f\n", "model TFLOP/s/GPU", simd->model_tflops_per_gpu, est->model_tflops_per_gpu);
    fprintf(out, "%-20s %12.1f %12.1f\n", "MFU (%)", 100 * simd->mfu, 100 * est->mfu);
    fprintf(out, "%-20s %12.1f %12.1f\n", "memory peak (GiB)", simd->memory_peak_bytes / GiB,
            est->memory_peak_bytes / GiB);
    /* ZeRO-3's gather stream and the offload copy stream get columns when some rank used them */
    int gather = 0, copy = 0;
    for (int r = 0; r < res->nranks; r++) {
        gather |= res->ranks[r].busy_s[ST_STREAM_GATHER] > 0;
        copy |= res->ranks[r].busy_s[ST_STREAM_COPY] > 0;
    }
    fprintf(out, "\n%4s %5s %11s %11s %11s", "rank", "stage", "compute_s", "p2p_s", "dp_s");
    if (gather) fprintf(out, " %11s", "gather_s");
    if (copy) fprintf(out, " %11s", "copy_s");
    fprintf(out, " %11s %11s %10s\n", "idle_s", "bubble_s", "mem_GiB");
    for (int r = 0; r < res->nranks; r++) {
        const st_rank_stats *s = &res->ranks[r];
        fprintf(out, "%4d %5d %11.3f %11.3f %11.3f", r, low->progs[r].stage, s->busy_s[ST_STREAM_COMPUTE],
                s->busy_s[ST_STREAM_P2P], s->busy_s[ST_STREAM_DP]);
        if (gather) fprintf(out, " %11.3f", s->busy_s[ST_STREAM_GATHER]);
        if (copy) fprintf(out, " %11.3f", s->busy_s[ST_STREAM_COPY]);
        fprintf(out, " %11.3f %11.3f %10.1f\n", s->compute_idle_s, s->bubble_s, s->memory_peak_bytes / GiB);
    }
    if (trace_path) fprintf(out, "\nwrote %s\n", trace_path);
}

int st_cmd_sim(int argc, char **argv, st_error *err) {
    st_cli_args a;
    const char *trace_arg = NULL;
    int every = 0, timing = 0, rc;
    const st_cli_opt own[] = {{"trace", &trace_arg, NULL},
                              {"every-rank", NULL, &every},
                              {"timing", NULL, &timing},
                              {NULL, NULL, NULL}};
    const unsigned take = ST_CLI_OPT_MODEL | ST_CLI_OPT_GRAPH | ST_CLI_OPT_CLUSTER | ST_CLI_OPT_GPUS | ST_CLI_OPT_PLAN |
                          ST_CLI_OPT_PROFILE | ST_CLI_OPT_JSON;
    /* a plan file made for another model or cluster is said, as estimate and the ILP's sim say it */
    const unsigned want = ST_CLI_MODEL | ST_CLI_CLUSTER | ST_CLI_PLAN | ST_CLI_PROFILE | ST_CLI_ORIGIN;
    st_cli_inputs in = {0};
    st_cost_ctx *ctx = NULL;
    st_lowered low = {0};
    st_sim_result res = {0};
    st_trace *trace = NULL;
    st_cli_text text = {0};

    if ((rc = st_cli_parse(argc, argv, take, own, &a, NULL, help_text, err)) || a.help) goto done;
    if (trace_arg && (rc = st_cli_out_check("trace", trace_arg, &a, NULL, NULL, err))) goto done;
    if (st__plan_is_ilp(a.plan)) {
        rc = st__sim_ilp(&a, trace_arg, every, timing, err);
        goto done;
    }
    if ((rc = st_cli_inputs_check(&a, want, &in, err)) || (rc = st_cli_inputs_resolve(&a, want, &in, err))) goto done;
    const st_plan *p = in.plan;
    const st_cluster *c = &in.cluster;
    if (!(ctx = st_cost_ctx_new(&in.model, c, in.profile))) {
        rc = st_error_set(err, ST_ENOMEM, NULL, NULL, "out of memory");
        goto done;
    }
    st_cli_inputs_notes(&in, "sim");

    st_estimate est;
    if ((rc = st_cost_estimate(ctx, p, &est))) {
        st_error_set(err, rc, NULL, "plan", "the plan cannot be priced");
        goto done;
    }
    if ((rc = st_estimate_check(&est, err))) goto done;
    double lower_t0 = st_clock_s();
    if ((rc = (every ? st_lower_full : st_lower)(ctx, p, &low, err))) goto done;
    double lower_s = st_clock_s() - lower_t0;
    if (trace_arg && !(trace = st_trace_open(trace_arg, st_stream_names, ST_STREAMS, err))) {
        rc = err->code ? err->code : ST_EIO;
        goto done;
    }
    /* a progress line on stderr after a second, as plan prints one (not with --json) */
    FILE *progress = a.json ? NULL : stderr;
    /* node groups: each rank checked against its own GPU's memory after the run */
    if ((rc = st_sim_run_progress(&low, c->ngroups ? 0 : c->gpu.memory_bytes, trace, progress, &res, err))) {
        /* a schedule that cannot run is the plan's failure, not bad input; running out of memory
         * or failing to write the trace is neither (exit 2, not 1) */
        if (rc != ST_ENOMEM && rc != ST_EIO) rc = ST_ENOPLAN;
        goto done;
    }
    if (timing) { /* stderr: stdout stays the same bytes for the same input */
        fprintf(stderr,
                "strata sim: timing: lowering %.3f s, setup %.3f s, events %.3f s (%llu events, %.1fM events/s; "
                "%.1fM events/s with setup)\n",
                lower_s, res.setup_wall_s, res.run_wall_s, (unsigned long long)res.events,
                res.run_wall_s > 0 ? (double)res.events / res.run_wall_s / 1e6 : 0,
                res.setup_wall_s + res.run_wall_s > 0 ? (double)res.events / (res.setup_wall_s + res.run_wall_s) / 1e6
                                                      : 0);
    }
    if (c->ngroups) st_sim_check_memory(&low, c, &res);
    if (res.oom) {
        rc = oom_error(&low, &res, c, err);
        goto done; /* the trace is discarded below: no partial output */
    }
    st_estimate simd = sim_view(&est, &res, &low, p, c);
    if ((rc = st_estimate_check(&simd, err))) goto done;
    /* the result is made in memory first and the trace renamed into place after it: a failure
     * in either leaves neither the trace nor a line on stdout */
    if ((rc = st_cli_text_open(&text, err))) goto done;
    if (a.json) {
        if ((rc = st_out_sim_json(text.f, &in.model, c, p, &simd, &est, &res, in.profile, err))) goto done;
    } else {
        print_sim(text.f, &in, &low, &res, &simd, &est, every, trace_arg);
    }
    if (trace) {
        rc = st_trace_close(trace, err);
        trace = NULL;
        if (rc) goto done;
    }
    st_cli_text_print(&text);
    rc = a.json || simd.fits ? 0 : 1;
done:
    st_cli_text_destroy(&text);
    if (trace) st_trace_discard(trace); /* the run failed: no partial trace */
    st_sim_result_destroy(&res);
    st_lowered_destroy(&low);
    st_cost_ctx_free(ctx);
    st_cli_inputs_destroy(&in);
    return rc;
}
