/* cmd_plan.c: `strata plan`: search the hybrid-parallel space, print the best plans as an aligned
 * table, write the best plan JSON (--out) and the framework configuration for it (--emit). */
#include "src/cli/cli.h"

#include <string.h>

static const char help_text[] =
    "usage: strata plan --model M --cluster C [--gpus N] [--gbs B] [--seq S] [--top K] [--dtype D]\n"
    "                   [--max-tp T] [--out FILE] [--emit megatron|deepspeed|torchtitan] [--profile F]\n"
    "                   [--attention K] [--kernels K] [--seed N] [--validate K] [--search enumerate|ilp] [--json]\n"
    "\n"
    "  --gpus N      GPUs to use (default: the whole cluster; sizes a preset to N / 8 nodes)\n"
    "  --gbs B       global batch in sequences (default 1536, GPT-3 175B's batch)\n"
    "  --seq S       sequence length (default: the model's seq_len)\n"
    "  --top K       plans to print (default 10)\n"
    "  --dtype D     bf16 (default), fp16, fp8, mxfp8, nvfp4, fp32\n"
    "  --attention K flash (default), fa2, cudnn or unfused: the attention kernel every plan runs\n"
    "                (the stack's choice, not searched: torchtitan's SDPA runs fa2 on Hopper, Transformer\n"
    "                Engine picks cudnn there)\n"
    "  --kernels K   fused (default: Megatron-LM's kernels), compile (torchtitan with torch.compile) or\n"
    "                eager (torchtitan without it): how every plan runs its element-wise work\n"
    "  --max-tp T    largest tensor-parallel degree to try (default: heads)\n"
    "  --out FILE    write the best plan as plan JSON (for strata estimate --plan FILE)\n"
    "  --emit KIND   print the best plan as Megatron-LM arguments, a DeepSpeed config or a torchtitan TOML\n"
    "  --validate K  simulate the top K plans (strata sim) and re-rank them by the simulated time\n"
    "  --search ilp  operator-level auto-sharding (ILP + pipeline-stage DP); see strata plan --search ilp --help\n"
    "  --json        one JSON object: {\"plans\": [...], \"evaluated\": N, \"search_time_s\": t, ...}\n"
    "\n"
    "Exit status: 0 success, 1 no plan fits, 2 bad input.\n";


/* --emit KIND ranks only the plans that KIND can run: the emitter is the judge */
typedef struct emit_filter {
    st_emit_kind kind;
    const st_model *m;
    const st_cluster *c;
    FILE *sink;
    st_error why; /* the last refusal: when every plan is refused, often for one reason (a dtype) */
} emit_filter;

static int emit_accepts(const st_plan *p, void *arg) {
    emit_filter *f = arg;
    return st_emit(f->kind, p, f->m, f->c, f->sink, &f->why) == 0;
}

/* What only the enumerator takes. */
typedef struct plan_args {
    const char *top, *emit, *max_tp, *seed, *validate, *attention, *kernels;
} plan_args;

/* --search: 1 for ilp (the operator-level planner, src/cli/cmd_plan_ilp.c, takes the line as it
 * is), 0 for enumerate or none (--search enumerate is then dropped from argv: the enumerator's
 * options follow), or ST_EUSAGE */
static int search_kind(int *argc, char **argv, st_error *err) {
    for (int i = 1; i < *argc; i++) {
        const char *a = argv[i], *val = NULL;
        if (strcmp(a, "--search") == 0) val = i + 1 < *argc ? argv[i + 1] : "";
        else if (strncmp(a, "--search=", 9) == 0) val = a + 9;
        if (!val) continue;
        if (strcmp(val, "ilp") == 0) return 1;
        if (strcmp(val, "enumerate") != 0)
            return st_error_set(err, ST_EUSAGE, NULL, NULL, "option '--search': '%s' is not one of enumerate, ilp",
                                val);
        int drop = strcmp(a, "--search") == 0 ? 2 : 1;
        for (int j = i; j + drop < *argc; j++) argv[j] = argv[j + drop];
        *argc -= drop;
        return 0;
    }
    return 0;
}

/* the search's options after --gpus, in the order they are checked */
static int search_opts(const st_cli_args *a, const plan_args *o, st_search_opts *so, int64_t *validate,
                       st_emit_kind *ek, st_error *err) {
    int64_t v;
    int rc;
    if ((rc = st_cli_batch(a, &so->gbs, &so->seq, err))) return rc;
    if (o->top) {
        if ((rc = st_cli_int("top", o->top, 1, 10000, &v, err))) return rc;
        so->top = (int)v;
    }
    if (o->max_tp) {
        if ((rc = st_cli_int("max-tp", o->max_tp, 1, ST_MAX_HEADS, &v, err))) return rc;
        so->max_tp = (int)v;
    }
    if (o->seed) {
        if ((rc = st_cli_int("seed", o->seed, 0, INT64_MAX, &v, err))) return rc;
        so->seed = (uint64_t)v;
    }
    if (o->validate && (rc = st_cli_int("validate", o->validate, 1, 10000, validate, err))) return rc;
    if ((rc = st_cli_dtype(a, &so->dtype, err))) return rc;
    if (o->attention && st_attention_parse(o->attention, &so->attention))
        return st_error_set(err, ST_EUSAGE, NULL, NULL,
                            "option '--attention': '%s' is not one of flash, unfused, fa2, cudnn", o->attention);
    if (o->kernels && st_kernels_parse(o->kernels, &so->kernels))
        return st_error_set(err, ST_EUSAGE, NULL, NULL, "option '--kernels': '%s' is not one of fused, eager, compile",
                            o->kernels);
    if (o->emit && st_emit_parse(o->emit, ek))
        return st_error_set(err, ST_EUSAGE, NULL, NULL,
                            "option '--emit': '%s' is not one of megatron, deepspeed, torchtitan", o->emit);
    return 0;
}

/* the ranked plans as an aligned table, the search's counts, the best plan (and what --out and
 * --emit made of it) */
static void print_plans(FILE *mem, const st_cli_inputs *in, const st_search_opts *so, const st_search_result *res,
                        const char *emit_arg, const char *emitted, const char *out_arg, int64_t validate) {
    const double GiB = 1073741824.0;
    const st_model *m = &in->model;
    const st_cluster *c = &in->cluster;
    const st_ranked *best = &res->plans[0];
    int64_t gpus = so->gpus > 0 ? so->gpus : st_cluster_gpus(c);
    char what[400];
    st_cli_cluster_what(c, gpus, what, sizeof what);
    fprintf(mem, "model %s (%.1fB parameters) on %s (%s), gbs %lld, seq %lld, %s\n", m->name,
            st_model_params(m) / 1e9, what, c->name, (long long)so->gbs, (long long)best->plan.seq,
            st_dtype_name(so->dtype));
    if (emit_arg) fprintf(mem, "ranking only the plans that %s can run (--emit)\n", emit_arg);
    fputc('\n', mem);
    if (validate)
        fprintf(mem, "the top %lld re-ranked by simulated time (sim_s; - = not simulated, ! = could not run)\n\n",
                (long long)validate);
    fprintf(mem, "%4s %4s %4s %5s %3s %3s %3s %4s %2s %-9s %4s %-9s %3s %-11s %9s %10s %8s %6s %8s%s\n", "rank", "tp",
            "pp", "dp", "cp", "ep", "vp", "mbs", "sp", "recompute", "zero", "offload", "ovl", "schedule", "time_s",
            "tokens/s", "TFLOP/s", "MFU%", "mem_GiB", validate ? "     sim_s" : "");
    for (int i = 0; i < res->n; i++) {
        const st_plan *p = &res->plans[i].plan;
        const st_estimate *e = &res->plans[i].est;
        char sim[32] = "";
        if (validate) {
            double t = res->plans[i].sim_time_s;
            if (t > 0)
                snprintf(sim, sizeof sim, " %9.3f", t);
            else
                snprintf(sim, sizeof sim, " %9s", t < 0 ? "!" : "-");
        }
        fprintf(mem, "%4d %4d %4d %5d %3d %3d %3d %4lld %2d %-9s %4d %-9s %3d %-11s %9.3f %10.0f %8.1f %6.1f %8.1f%s\n",
                i + 1, p->tp, p->pp, p->dp, p->cp, p->ep, p->vp, (long long)p->mbs, p->sp,
                st_recompute_name(p->recompute), p->zero, st_offload_name(p->offload),
                p->overlap_grad_reduce || p->tp_overlap, st_schedule_name(p->schedule),
                e->iteration_time_s, e->tokens_per_s, e->model_tflops_per_gpu, 100 * e->mfu,
                e->memory_peak_bytes / GiB, sim);
    }
    fprintf(mem, "\nevaluated %llu configurations (%llu fit) and ruled out %llu by bounds in %.3f s, %.0f per second\n",
            (unsigned long long)res->evaluated, (unsigned long long)res->feasible, (unsigned long long)res->bounded,
            res->search_time_s,
            res->search_time_s > 0 ? (double)(res->evaluated + res->bounded) / res->search_time_s : 0.0);
    char spec[512];
    st_plan_format_spec(&best->plan, spec, sizeof spec);
    fprintf(mem, "best: %s\n", spec);
    if (out_arg) fprintf(mem, "wrote %s\n", out_arg);
    if (emitted) fprintf(mem, "\n%s", emitted);
}

int st_cmd_plan(int argc, char **argv, st_error *err) {
    st_cli_args a;
    plan_args o = {0};
    int rc;
    const st_cli_opt own[] = {{"top", &o.top, NULL},       {"emit", &o.emit, NULL},
                              {"max-tp", &o.max_tp, NULL}, {"seed", &o.seed, NULL},
                              {"validate", &o.validate, NULL}, {"attention", &o.attention, NULL},
                              {"kernels", &o.kernels, NULL},
                              {NULL, NULL, NULL}};
    const unsigned take = ST_CLI_OPT_MODEL | ST_CLI_OPT_CLUSTER | ST_CLI_OPT_GPUS | ST_CLI_OPT_GBS | ST_CLI_OPT_SEQ |
                          ST_CLI_OPT_OUT | ST_CLI_OPT_PROFILE | ST_CLI_OPT_DTYPE | ST_CLI_OPT_JSON;
    const unsigned want = ST_CLI_MODEL | ST_CLI_CLUSTER | ST_CLI_PROFILE;
    st_cli_inputs in = {0};
    st_search_result res = {0};
    st_search_opts so;
    st_emit_kind ek = ST_EMIT_MEGATRON;
    st_cli_text emitted = {0}, text = {0};
    int64_t validate = 0;

    if ((rc = search_kind(&argc, argv, err)) < 0) return rc;
    if (rc) return st__cmd_plan_ilp(argc, argv, err);
    if ((rc = st_cli_parse(argc, argv, take, own, &a, NULL, help_text, err)) || a.help) goto out;
    if ((rc = st_cli_inputs_check(&a, want, &in, err))) goto out;
    st_search_opts_init(&so);
    so.gbs = ST_CLI_DEFAULT_GBS;
    so.gpus = in.gpus;
    if ((rc = search_opts(&a, &o, &so, &validate, &ek, err))) goto out;
    if ((rc = st_cli_inputs_resolve(&a, want, &in, err))) goto out;
    const st_model *m = &in.model;
    const st_cluster *c = &in.cluster;
    so.progress = !a.json;
    /* the zero-bubble schedules where the plan's framework can run them: torchtitan (torch's
     * InterleavedZeroBubble, ZBVZeroBubble) or none named; Megatron-LM and DeepSpeed cannot */
    so.zero_bubble = !o.emit || ek == ST_EMIT_TORCHTITAN;
    /* DualPipe where no framework is named (none of the emitted releases runs it, src/report/emit.c) */
    so.dualpipe = !o.emit;
    emit_filter filter = {.kind = ek, .m = m, .c = c};
    if (o.emit) {
        if (!(filter.sink = fopen("/dev/null", "w"))) {
            rc = st_error_set(err, ST_EIO, "/dev/null", NULL, "cannot open");
            goto out;
        }
        so.accept = emit_accepts;
        so.accept_arg = &filter;
    }

    rc = st_search_enumerate(m, c, in.profile, &so, &res, err);
    if (filter.sink) fclose(filter.sink);
    if (rc && rc == ST_ENOPLAN && o.emit && res.feasible > 0)
        st_error_set(err, ST_ENOPLAN, NULL, "emit",
                     "%llu plans fit, but none that %s can run (the last: key '%s': %s)",
                     (unsigned long long)res.feasible, o.emit, filter.why.key, filter.why.text);
    if (rc) goto out;
    if (validate && (rc = st_search_validate(m, c, in.profile, &res, (int)validate, err))) goto out;
    st_cli_inputs_notes(&in, "plan");
    const st_ranked *best = &res.plans[0];

    if (o.emit) {
        if ((rc = st_cli_text_open(&emitted, err))) goto out;
        rc = st_emit(ek, &best->plan, m, c, emitted.f, err);
        st_cli_text_close(&emitted);
        if (rc) goto out;
    }
    if (a.out && (rc = st_plan_save(&best->plan, m, c, a.out, err))) goto out;

    if (a.json) {
        rc = st_out_plan_json(stdout, m, c, &so, &res, emitted.buf, o.emit, in.profile, err);
        goto out;
    }
    if ((rc = st_cli_text_open(&text, err))) goto out;
    print_plans(text.f, &in, &so, &res, o.emit, emitted.buf, a.out, validate);
    st_cli_text_print(&text);
out:
    st_cli_text_destroy(&text);
    st_cli_text_destroy(&emitted);
    st_search_result_destroy(&res);
    st_cli_inputs_destroy(&in);
    return rc;
}
