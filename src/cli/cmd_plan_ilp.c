/* cmd_plan_ilp.c: `strata plan --search ilp`: operator-level auto-sharding (search/autoshard.c)
 * of a model preset, model JSON, HuggingFace config or custom graph JSON; prints what each layer's
 * operators were assigned and the collectives that implies. */
#include "src/cli/cli.h"

#include <stdlib.h>
#include <string.h>

static const char help_text[] =
    "usage: strata plan --search ilp (--model M | --graph FILE) --cluster C [--gpus N] [--gbs B] [--seq S]\n"
    "                   [--mbs B] [--microbatches K] [--max-stages S] [--mem-limit GIB] [--time-limit SEC]\n"
    "                   [--zero 0|1|auto] [--dtype D] [--profile F] [--out FILE] [--json]\n"
    "\n"
    "  --graph FILE      a custom operator graph (JSON, see README) instead of a model\n"
    "  --mbs B           sequences per micro-batch (default: try 1, 2, 4, 8)\n"
    "  --microbatches K  micro-batches per iteration of a custom graph (default 1)\n"
    "  --max-stages S    pipeline stages at most (1 = no pipeline; default: the stage DP chooses)\n"
    "  --mem-limit GIB   memory per GPU (default: the GPU's less 2 GiB)\n"
    "  --time-limit SEC  per ILP solve; on expiry the best assignment found is used and its gap reported\n"
    "  --zero 0|1|auto   the distributed optimizer (ZeRO-1: optimizer state sharded over each weight's\n"
    "                    data-parallel group, gradients reduce-scattered, weights all-gathered); auto\n"
    "                    (default) tries each stage with and without it and keeps the faster that fits\n"
    "  --out FILE        write the plan (per-operator shardings, stages, meshes) as JSON\n"
    "  --json            one JSON object: {\"plans\": [...], \"evaluated\": N, \"search_time_s\": t, ...}\n"
    "\n"
    "Exit status: 0 success, 1 nothing fits, 2 bad input.\n";


static int parse_pos(const char *opt, const char *s, double lo, double hi, double *out, st_error *err) {
    char *end;
    double v = strtod(s, &end);
    if (end == s || *end || !(v >= lo && v <= hi))
        return st_error_set(err, ST_EUSAGE, NULL, NULL, "option '--%s': '%s' is not a number in [%g, %g]", opt, s, lo, hi);
    *out = v;
    return 0;
}

int st__cmd_plan_ilp(int argc, char **argv, st_error *err) {
    const char *model_arg = NULL, *cluster_arg = NULL, *gpus_arg = NULL, *gbs_arg = NULL, *seq_arg = NULL,
               *mbs_arg = NULL, *mb_arg = NULL, *stages_arg = NULL, *mem_arg = NULL, *tl_arg = NULL, *dtype_arg = NULL,
               *profile_arg = NULL, *out_arg = NULL, *graph_arg = NULL, *search_arg = NULL, *zero_arg = NULL;
    int json = 0, help = 0, rc;
    st_cli_opt opts[] = {{"model", &model_arg, NULL},     {"cluster", &cluster_arg, NULL}, {"gpus", &gpus_arg, NULL},
                         {"gbs", &gbs_arg, NULL},         {"seq", &seq_arg, NULL},         {"mbs", &mbs_arg, NULL},
                         {"microbatches", &mb_arg, NULL}, {"max-stages", &stages_arg, NULL},
                         {"mem-limit", &mem_arg, NULL},   {"time-limit", &tl_arg, NULL},   {"dtype", &dtype_arg, NULL},
                         {"profile", &profile_arg, NULL}, {"out", &out_arg, NULL},         {"graph", &graph_arg, NULL},
                         {"search", &search_arg, NULL},   {"zero", &zero_arg, NULL},       {"json", NULL, &json},
                         {"help", NULL, &help},
                         {NULL, NULL, NULL}};
    st_model m;
    st_cluster c;
    st_profile *prof = NULL;
    st_graph custom = {0};
    st_autoshard_result res = {0};
    st_autoshard_opts o;
    char *text = NULL;
    size_t text_len = 0;
    FILE *mem = NULL;
    int have_custom = 0;

    if ((rc = st_cli_parse(argc, argv, opts, NULL, err))) goto out;
    if (help) {
        fputs(help_text, stdout);
        goto out;
    }
    if ((!model_arg && !graph_arg) || !cluster_arg) {
        rc = st_error_set(err, ST_EUSAGE, NULL, NULL, "--model (or --graph) and --cluster are required (see --help)");
        goto out;
    }
    if (model_arg && graph_arg) {
        rc = st_error_set(err, ST_EUSAGE, NULL, NULL, "give --model or --graph, not both");
        goto out;
    }
    st_autoshard_opts_init(&o);
    o.gbs = ST_CLI_DEFAULT_GBS;
    int64_t v;
    double d;
    if (gpus_arg) {
        if ((rc = st_cli_int("gpus", gpus_arg, 1, ST_MAX_GPUS, &v, err))) goto out;
        o.gpus = v;
    }
    if (gbs_arg) {
        if ((rc = st_cli_int("gbs", gbs_arg, 1, 1 << 30, &v, err))) goto out;
        o.gbs = v;
    }
    if (seq_arg) {
        if ((rc = st_cli_int("seq", seq_arg, 1, ST_MAX_SEQ, &v, err))) goto out;
        o.seq = v;
    }
    if (mbs_arg) {
        if ((rc = st_cli_int("mbs", mbs_arg, 1, 1 << 20, &v, err))) goto out;
        o.mbs = v;
    }
    if (mb_arg) {
        if ((rc = st_cli_int("microbatches", mb_arg, 1, 1 << 20, &v, err))) goto out;
        o.microbatches = v;
    }
    if (stages_arg) {
        if ((rc = st_cli_int("max-stages", stages_arg, 1, ST_MAX_STAGES, &v, err))) goto out;
        o.max_stages = (int)v;
    }
    if (mem_arg) {
        if ((rc = parse_pos("mem-limit", mem_arg, 0.001, 1e6, &d, err))) goto out;
        o.mem_limit_bytes = d * 1073741824.0;
    }
    if (tl_arg) {
        if ((rc = parse_pos("time-limit", tl_arg, 0.001, 86400, &d, err))) goto out;
        o.time_limit_s = d;
    }
    if (zero_arg) {
        if (strcmp(zero_arg, "auto") == 0) o.zero = ST_AS_ZERO_AUTO;
        else if (strcmp(zero_arg, "0") == 0 || strcmp(zero_arg, "1") == 0) o.zero = zero_arg[0] - '0';
        else {
            rc = st_error_set(err, ST_EUSAGE, NULL, NULL, "option '--zero': '%s' is not one of 0, 1, auto", zero_arg);
            goto out;
        }
    }
    if (dtype_arg && st_dtype_parse(dtype_arg, &o.dtype)) {
        rc = st_error_set(err, ST_EUSAGE, NULL, NULL, "option '--dtype': '%s' is not one of fp32, tf32, fp16, bf16, fp8",
                          dtype_arg);
        goto out;
    }
    if (model_arg && (rc = st_model_resolve(model_arg, &m, err))) goto out;
    if (graph_arg) {
        if ((rc = st_cli_graph_load(graph_arg, &custom, err))) goto out;
        have_custom = 1;
    }
    if ((rc = st_cluster_resolve(cluster_arg, o.gpus, &c, err))) goto out;
    if (profile_arg && (rc = st_profile_open(profile_arg, &prof, err))) goto out;
    char pnote[512] = "";
    if (prof && (rc = st_profile_retarget(prof, &c.gpu, pnote, sizeof pnote, err)) < 0) goto out;
    if (model_arg && o.mbs > 0 && o.gbs % o.mbs) {
        rc = st_error_set(err, ST_EUSAGE, NULL, NULL, "option '--mbs': %lld does not divide gbs %lld", (long long)o.mbs,
                          (long long)o.gbs);
        goto out;
    }
    rc = st_autoshard(model_arg ? &m : NULL, have_custom ? &custom : NULL, &c, prof, &o, &res, err);
    if (rc) goto out;
    if (pnote[0]) fprintf(stderr, "strata plan: note: %s\n", pnote);
    const char *name = model_arg ? m.name : custom.name;
    int64_t gpus = o.gpus > 0 ? o.gpus : st_cluster_gpus(&c);
    int64_t seq = model_arg ? (o.seq > 0 ? o.seq : m.seq_len) : 0;
    if (out_arg && (rc = st_autoshard_save(&res, model_arg ? &m : NULL, graph_arg, &c, o.gbs, seq, o.dtype, out_arg, err))) goto out;
    if (json) {
        rc = st_out_autoshard_json(stdout, name, &c, gpus, model_arg ? o.gbs : res.microbatches, seq, &res, err);
        goto out;
    }
    if (!(mem = open_memstream(&text, &text_len))) {
        rc = st_error_set(err, ST_ENOMEM, NULL, NULL, "out of memory");
        goto out;
    }
    const double GiB = 1073741824.0;
    const st_graph *g = res.g;
    if (model_arg)
        fprintf(mem, "model %s (%.1fB parameters) on %lld x %s (%s), gbs %lld, seq %lld, %s: operator-level search\n",
                m.name, st_model_params(&m) / 1e9, (long long)gpus, c.gpu.name, c.name, (long long)o.gbs, (long long)seq,
                st_dtype_name(o.dtype));
    else
        fprintf(mem, "graph %s (%d operators) on %lld x %s (%s), %lld micro-batches, %s: operator-level search\n",
                custom.name, custom.nops, (long long)gpus, c.gpu.name, c.name, (long long)res.microbatches,
                st_dtype_name(o.dtype));
    fprintf(mem, "\n%5s %9s %-12s %12s %9s %4s %9s %8s %14s %13s %7s\n", "stage", "layers", "mesh", "ms/microbatch",
            "mem_GiB", "zero", "recompute", "ILP_s", "nodes/vars", "rows x cols", "gap%");
    for (int i = 0; i < res.nstages; i++) {
        const st_as_stage *st = &res.stage[i];
        char mesh_s[32], lay[32], rc_s[32];
        if (st->mesh.naxes == 1)
            snprintf(mesh_s, sizeof mesh_s, "%d", st->mesh.size[0]);
        else
            snprintf(mesh_s, sizeof mesh_s, "%dx%d", st->mesh.size[0], st->mesh.size[1]);
        snprintf(lay, sizeof lay, "%d-%d", st->first, st->last - 1);
        snprintf(rc_s, sizeof rc_s, "%dx%d", st->ilp_rows, st->ilp_cols);
        char nv[32];
        snprintf(nv, sizeof nv, "%d/%lld", st->ilp_nodes, (long long)st->ilp_vars);
        fprintf(mem, "%5d %9s %-12s %12.3f %9.1f %4d %9s %8.3f %14s %13s %7.2f%s\n", i,
                st_graph_units(g) > 1 ? lay : "all", mesh_s, st->time_s * 1e3, st->memory_bytes / GiB, st->zero,
                st->recompute ? "full" : "none", st->ilp_time_s, nv, rc_s, 100 * st->ilp_gap,
                st->ilp_optimal ? "" : " (time limit)");
    }
    /* per-layer assignment of the first stage (the others are printed when they differ) */
    for (int i = 0; i < res.nstages; i++) {
        const st_as_stage *st = &res.stage[i];
        int differs = i == 0;
        for (int op = 0; i > 0 && op < g->nops; op++)
            if (g->ops[op].block && st->choice[op].lab[0] != '-' &&
                (st->choice[op].lab[0] != res.stage[0].choice[op].lab[0] ||
                 st->choice[op].lab[1] != res.stage[0].choice[op].lab[1]))
                differs = 1;
        if (!differs) continue;
        fprintf(mem, "\nstage %d: each operator's split (one label per mesh axis, - = not split)\n", i);
        for (int op = 0; op < g->nops; op++) {
            const st_as_choice *ch = &st->choice[op];
            if (ch->lab[0] == '-') continue;
            char split[8];
            snprintf(split, sizeof split, "%c%s%c", ch->lab[0] ? ch->lab[0] : '-', st->mesh.naxes > 1 ? "," : "",
                     st->mesh.naxes > 1 ? (ch->lab[1] ? ch->lab[1] : '-') : 0);
            fprintf(mem, "  %-18s %-10s %-6s %s\n", g->ops[op].name, st_gop_type_name(g->ops[op].type), split,
                    st_autoshard_role(g, op, ch, st->mesh.naxes));
        }
        if (g->block_in >= 0) {
            int counts[ST_COLL_COUNT];
            st_autoshard_block_collectives(&res, i, counts);
            fprintf(mem, "  collectives per layer, forward:");
            int any = 0;
            for (int k = 1; k < ST_COLL_COUNT; k++)
                if (counts[k]) fprintf(mem, "%s %d %s", any++ ? "," : "", counts[k], st_coll_name((st_coll)k));
            fprintf(mem, "%s\n", any ? "" : " none");
        }
    }
    char spec[256];
    st_autoshard_spec(&res, spec, sizeof spec);
    if (!model_arg) res.tokens_per_s = 0;
    fprintf(mem, "\niteration %.3f s, %.0f tokens/s, %.1f TFLOP/s per GPU, MFU %.1f%%, peak memory %.1f GiB\n",
            res.iteration_time_s, res.tokens_per_s, res.model_tflops_per_gpu, 100 * res.mfu, res.memory_peak_bytes / GiB);
    if (model_arg)
        fprintf(mem, "micro-batch %lld sequences x %lld micro-batches; amounts to: %s\n", (long long)res.mbs,
                (long long)res.microbatches, spec);
    else
        fprintf(mem, "%lld micro-batches of the graph's batch\n", (long long)res.microbatches);
    fprintf(mem, "searched in %.3f s: %llu (micro-batch, stage, mesh) combinations, %lld ILPs solved\n",
            res.search_time_s, (unsigned long long)res.evaluated, (long long)res.ilp_solves);
    if (out_arg) fprintf(mem, "wrote %s\n", out_arg);
    fclose(mem);
    mem = NULL;
    fwrite(text, 1, text_len, stdout);
out:
    if (mem) fclose(mem);
    free(text);
    st_autoshard_result_free(&res);
    if (have_custom) st_graph_free(&custom);
    st_profile_free(prof);
    return rc;
}
