/* cmd_plan.c: `strata plan`: search the hybrid-parallel space, print the best plans as an aligned
 * table, write the best plan JSON (--out) and the framework configuration for it (--emit). */
#include "src/cli/cli.h"

#include <stdlib.h>
#include <string.h>

static const char help_text[] =
    "usage: strata plan --model M --cluster C [--gpus N] [--gbs B] [--seq S] [--top K] [--dtype D]\n"
    "                   [--max-tp T] [--out FILE] [--emit megatron|deepspeed|torchtitan] [--profile F]\n"
    "                   [--seed N] [--validate K] [--search enumerate|ilp] [--json]\n"
    "\n"
    "  --gpus N      GPUs to use (default: the whole cluster; sizes a preset to N / 8 nodes)\n"
    "  --gbs B       global batch in sequences (default 1536, GPT-3 175B's batch)\n"
    "  --seq S       sequence length (default: the model's seq_len)\n"
    "  --top K       plans to print (default 10)\n"
    "  --dtype D     bf16 (default), fp16, fp8, fp32\n"
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
} emit_filter;

static int emit_accepts(const st_plan *p, void *arg) {
    emit_filter *f = arg;
    return st_emit(f->kind, p, f->m, f->c, f->sink, NULL) == 0;
}

int st_cmd_plan(int argc, char **argv, st_error *err) {
    const char *model_arg = NULL, *cluster_arg = NULL, *gpus_arg = NULL, *gbs_arg = NULL, *seq_arg = NULL,
               *top_arg = NULL, *out_arg = NULL, *emit_arg = NULL, *profile_arg = NULL, *dtype_arg = NULL,
               *maxtp_arg = NULL, *seed_arg = NULL, *validate_arg = NULL;
    int json = 0, help = 0, rc;
    st_cli_opt opts[] = {{"model", &model_arg, NULL}, {"cluster", &cluster_arg, NULL}, {"gpus", &gpus_arg, NULL},
                         {"gbs", &gbs_arg, NULL},     {"seq", &seq_arg, NULL},         {"top", &top_arg, NULL},
                         {"out", &out_arg, NULL},     {"emit", &emit_arg, NULL},       {"profile", &profile_arg, NULL},
                         {"dtype", &dtype_arg, NULL}, {"max-tp", &maxtp_arg, NULL},    {"seed", &seed_arg, NULL},
                         {"validate", &validate_arg, NULL},
                         {"json", NULL, &json},       {"help", NULL, &help},           {NULL, NULL, NULL}};
    st_model m;
    st_cluster c;
    st_profile *prof = NULL;
    st_search_result res = {0};
    st_search_opts so;
    st_emit_kind ek = ST_EMIT_MEGATRON;
    char *emitted = NULL, *text = NULL;
    size_t emitted_len = 0, text_len = 0;
    FILE *mem = NULL;

    /* --search ilp: the operator-level planner (src/cli/cmd_plan_ilp.c) */
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *val = NULL;
        if (strcmp(a, "--search") == 0) val = i + 1 < argc ? argv[i + 1] : "";
        else if (strncmp(a, "--search=", 9) == 0) val = a + 9;
        if (!val) continue;
        if (strcmp(val, "ilp") == 0) return st__cmd_plan_ilp(argc, argv, err);
        if (strcmp(val, "enumerate") != 0)
            return st_error_set(err, ST_EUSAGE, NULL, NULL, "option '--search': '%s' is not one of enumerate, ilp", val);
        /* drop it: the enumerator's options follow */
        int drop = strcmp(a, "--search") == 0 ? 2 : 1;
        for (int j = i; j + drop < argc; j++) argv[j] = argv[j + drop];
        argc -= drop;
        break;
    }
    if ((rc = st_cli_parse(argc, argv, opts, NULL, err))) goto out;
    if (help) {
        fputs(help_text, stdout);
        goto out;
    }
    if (!model_arg || !cluster_arg) {
        rc = st_error_set(err, ST_EUSAGE, NULL, NULL, "--model and --cluster are required (see --help)");
        goto out;
    }
    st_search_opts_init(&so);
    so.gbs = ST_CLI_DEFAULT_GBS;
    int64_t v;
    if (gpus_arg) {
        if ((rc = st_cli_int("gpus", gpus_arg, 1, ST_MAX_GPUS, &v, err))) goto out;
        so.gpus = v;
    }
    if (gbs_arg) {
        if ((rc = st_cli_int("gbs", gbs_arg, 1, 1 << 30, &v, err))) goto out;
        so.gbs = v;
    }
    if (seq_arg) {
        if ((rc = st_cli_int("seq", seq_arg, 1, ST_MAX_SEQ, &v, err))) goto out;
        so.seq = v;
    }
    if (top_arg) {
        if ((rc = st_cli_int("top", top_arg, 1, 10000, &v, err))) goto out;
        so.top = (int)v;
    }
    if (maxtp_arg) {
        if ((rc = st_cli_int("max-tp", maxtp_arg, 1, ST_MAX_HEADS, &v, err))) goto out;
        so.max_tp = (int)v;
    }
    if (seed_arg) {
        if ((rc = st_cli_int("seed", seed_arg, 0, INT64_MAX, &v, err))) goto out;
        so.seed = (uint64_t)v;
    }
    int64_t validate = 0;
    if (validate_arg && (rc = st_cli_int("validate", validate_arg, 1, 10000, &validate, err))) goto out;
    if (dtype_arg && st_dtype_parse(dtype_arg, &so.dtype)) {
        rc = st_error_set(err, ST_EUSAGE, NULL, NULL, "option '--dtype': '%s' is not one of fp32, tf32, fp16, bf16, fp8",
                          dtype_arg);
        goto out;
    }
    if (emit_arg && st_emit_parse(emit_arg, &ek)) {
        rc = st_error_set(err, ST_EUSAGE, NULL, NULL, "option '--emit': '%s' is not one of megatron, deepspeed, torchtitan",
                          emit_arg);
        goto out;
    }
    if ((rc = st_model_resolve(model_arg, &m, err))) goto out;
    if ((rc = st_cluster_resolve(cluster_arg, so.gpus, &c, err))) goto out;
    if (profile_arg && (rc = st_profile_open(profile_arg, &prof, err))) goto out;
    /* a profile measured on another GPU type is scaled to this cluster's (said once the input is good) */
    char pnote[512] = "";
    if (prof && (rc = st_profile_retarget(prof, &c.gpu, pnote, sizeof pnote, err)) < 0) goto out;
    rc = 0;
    so.progress = !json;
    emit_filter filter = {.kind = ek, .m = &m, .c = &c};
    if (emit_arg) {
        if (!(filter.sink = fopen("/dev/null", "w"))) {
            rc = st_error_set(err, ST_EIO, "/dev/null", NULL, "cannot open");
            goto out;
        }
        so.accept = emit_accepts;
        so.accept_arg = &filter;
    }

    rc = st_search_enumerate(&m, &c, prof, &so, &res, err);
    if (filter.sink) fclose(filter.sink);
    if (rc && rc == ST_ENOPLAN && emit_arg && res.feasible > 0)
        st_error_set(err, ST_ENOPLAN, NULL, "emit", "%llu plans fit, but none that %s can run",
                     (unsigned long long)res.feasible, emit_arg);
    if (rc) goto out;
    if (validate && (rc = st_search_validate(&m, &c, prof, &res, (int)validate, err))) goto out;
    if (pnote[0]) fprintf(stderr, "strata plan: note: %s\n", pnote);
    const st_ranked *best = &res.plans[0];

    if (emit_arg) {
        if (!(mem = open_memstream(&emitted, &emitted_len))) {
            rc = st_error_set(err, ST_ENOMEM, NULL, NULL, "out of memory");
            goto out;
        }
        rc = st_emit(ek, &best->plan, &m, &c, mem, err);
        fclose(mem);
        mem = NULL;
        if (rc) goto out;
    }
    if (out_arg && (rc = st_plan_save(&best->plan, &m, &c, out_arg, err))) goto out;

    if (json) {
        rc = st_out_plan_json(stdout, &m, &c, &so, &res, emitted, emit_arg, prof, err);
        goto out;
    }
    if (!(mem = open_memstream(&text, &text_len))) {
        rc = st_error_set(err, ST_ENOMEM, NULL, NULL, "out of memory");
        goto out;
    }
    const double GiB = 1073741824.0;
    int64_t gpus = so.gpus > 0 ? so.gpus : st_cluster_gpus(&c);
    fprintf(mem, "model %s (%.1fB parameters) on %lld x %s (%s), gbs %lld, seq %lld, %s\n", m.name,
            st_model_params(&m) / 1e9, (long long)gpus, c.gpu.name, c.name, (long long)so.gbs,
            (long long)best->plan.seq, st_dtype_name(so.dtype));
    if (emit_arg) fprintf(mem, "ranking only the plans that %s can run (--emit)\n", emit_arg);
    fputc('\n', mem);
    if (validate) fprintf(mem, "the top %lld re-ranked by simulated time (sim_s; - = not simulated, ! = could not run)\n\n", (long long)validate);
    fprintf(mem, "%4s %4s %4s %5s %3s %3s %3s %4s %2s %-9s %4s %-9s %3s %9s %10s %8s %6s %8s%s\n", "rank", "tp", "pp",
            "dp", "cp", "ep", "vp", "mbs", "sp", "recompute", "zero", "offload", "ovl", "time_s", "tokens/s", "TFLOP/s",
            "MFU%", "mem_GiB", validate ? "     sim_s" : "");
    for (int i = 0; i < res.n; i++) {
        const st_plan *p = &res.plans[i].plan;
        const st_estimate *e = &res.plans[i].est;
        char sim[32] = "";
        if (validate) {
            double t = res.plans[i].sim_time_s;
            if (t > 0)
                snprintf(sim, sizeof sim, " %9.3f", t);
            else
                snprintf(sim, sizeof sim, " %9s", t < 0 ? "!" : "-");
        }
        fprintf(mem, "%4d %4d %4d %5d %3d %3d %3d %4lld %2d %-9s %4d %-9s %3d %9.3f %10.0f %8.1f %6.1f %8.1f%s\n",
                i + 1, p->tp, p->pp, p->dp, p->cp, p->ep, p->vp, (long long)p->mbs, p->sp,
                st_recompute_name(p->recompute), p->zero, st_offload_name(p->offload), p->overlap_grad_reduce,
                e->iteration_time_s, e->tokens_per_s, e->model_tflops_per_gpu, 100 * e->mfu,
                e->memory_peak_bytes / GiB, sim);
    }
    fprintf(mem, "\nevaluated %llu configurations (%llu fit) in %.3f s, %.0f per second\n",
            (unsigned long long)res.evaluated, (unsigned long long)res.feasible, res.search_time_s,
            res.search_time_s > 0 ? (double)res.evaluated / res.search_time_s : 0.0);
    char spec[512];
    st_plan_format_spec(&best->plan, spec, sizeof spec);
    fprintf(mem, "best: %s\n", spec);
    if (out_arg) fprintf(mem, "wrote %s\n", out_arg);
    if (emitted) fprintf(mem, "\n%s", emitted);
    fclose(mem);
    mem = NULL;
    fwrite(text, 1, text_len, stdout);
out:
    if (mem) fclose(mem);
    free(text);
    free(emitted);
    st_search_result_destroy(&res);
    st_profile_free(prof);
    return rc;
}
