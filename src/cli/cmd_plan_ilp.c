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

/* What only the operator-level planner takes. */
typedef struct ilp_args {
    const char *mbs, *microbatches, *max_stages, *mem_limit, *time_limit, *zero, *search;
} ilp_args;

/* the planner's options after --gpus, in the order they are checked */
static int autoshard_opts(const st_cli_args *a, const ilp_args *own, st_autoshard_opts *o, st_error *err) {
    int64_t v;
    double d;
    int rc;
    if ((rc = st_cli_batch(a, &o->gbs, &o->seq, err))) return rc;
    if (own->mbs && (rc = st_cli_int("mbs", own->mbs, 1, 1 << 20, &o->mbs, err))) return rc;
    if (own->microbatches && (rc = st_cli_int("microbatches", own->microbatches, 1, 1 << 20, &o->microbatches, err)))
        return rc;
    if (own->max_stages) {
        if ((rc = st_cli_int("max-stages", own->max_stages, 1, ST_MAX_STAGES, &v, err))) return rc;
        o->max_stages = (int)v;
    }
    if (own->mem_limit) {
        if ((rc = parse_pos("mem-limit", own->mem_limit, 0.001, 1e6, &d, err))) return rc;
        o->mem_limit_bytes = d * 1073741824.0;
    }
    if (own->time_limit && (rc = parse_pos("time-limit", own->time_limit, 0.001, 86400, &o->time_limit_s, err)))
        return rc;
    if (own->zero) {
        if (strcmp(own->zero, "auto") == 0) o->zero = ST_AS_ZERO_AUTO;
        else if (strcmp(own->zero, "0") == 0 || strcmp(own->zero, "1") == 0) o->zero = own->zero[0] - '0';
        else
            return st_error_set(err, ST_EUSAGE, NULL, NULL, "option '--zero': '%s' is not one of 0, 1, auto",
                                own->zero);
    }
    return st_cli_dtype(a, &o->dtype, err);
}

/* the stages, each operator's split (of the first stage, and of the others where they differ), the
 * collectives per layer and the totals */
static void print_result(FILE *mem, const st_cli_inputs *in, const st_autoshard_opts *o, st_autoshard_result *res,
                         int64_t gpus, int64_t seq, const char *out_arg) {
    const double GiB = 1073741824.0;
    const st_graph *g = res->g;
    const st_cluster *c = &in->cluster;
    char what[400]; /* on node groups, each group's */
    st_cli_cluster_what(c, gpus, what, sizeof what);
    if (in->have_model)
        fprintf(mem, "model %s (%.1fB parameters) on %s (%s), gbs %lld, seq %lld, %s: operator-level search\n",
                in->model.name, st_model_params(&in->model) / 1e9, what, c->name, (long long)o->gbs, (long long)seq,
                st_dtype_name(o->dtype));
    else
        fprintf(mem, "graph %s (%d operators) on %s (%s), %lld micro-batches, %s: operator-level search\n",
                in->graph.name, in->graph.nops, what, c->name, (long long)res->microbatches, st_dtype_name(o->dtype));
    fprintf(mem, "\n%5s %9s %-12s %12s %9s %4s %9s %8s %14s %13s %7s\n", "stage", "layers", "mesh", "ms/microbatch",
            "mem_GiB", "zero", "recompute", "ILP_s", "nodes/vars", "rows x cols", "gap%");
    for (int i = 0; i < res->nstages; i++) {
        const st_as_stage *st = &res->stage[i];
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
    for (int i = 0; i < res->nstages; i++) {
        const st_as_stage *st = &res->stage[i];
        int differs = i == 0;
        for (int op = 0; i > 0 && op < g->nops; op++)
            if (g->ops[op].block && st->choice[op].lab[0] != '-' &&
                (st->choice[op].lab[0] != res->stage[0].choice[op].lab[0] ||
                 st->choice[op].lab[1] != res->stage[0].choice[op].lab[1]))
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
            st_autoshard_block_collectives(res, i, counts);
            fprintf(mem, "  collectives per layer, forward:");
            int any = 0;
            for (int k = 1; k < ST_COLL_COUNT; k++)
                if (counts[k]) fprintf(mem, "%s %d %s", any++ ? "," : "", counts[k], st_coll_name((st_coll)k));
            fprintf(mem, "%s\n", any ? "" : " none");
        }
    }
    char spec[256];
    st_autoshard_spec(res, spec, sizeof spec);
    if (!in->have_model) res->tokens_per_s = 0;
    fprintf(mem, "\niteration %.3f s, %.0f tokens/s, %.1f TFLOP/s per GPU, MFU %.1f%%, peak memory %.1f GiB\n",
            res->iteration_time_s, res->tokens_per_s, res->model_tflops_per_gpu, 100 * res->mfu,
            res->memory_peak_bytes / GiB);
    if (in->have_model)
        fprintf(mem, "micro-batch %lld sequences x %lld micro-batches; amounts to: %s\n", (long long)res->mbs,
                (long long)res->microbatches, spec);
    else
        fprintf(mem, "%lld micro-batches of the graph's batch\n", (long long)res->microbatches);
    fprintf(mem, "searched in %.3f s: %llu (micro-batch, stage, mesh) combinations, %lld ILPs solved\n",
            res->search_time_s, (unsigned long long)res->evaluated, (long long)res->ilp_solves);
    if (out_arg) fprintf(mem, "wrote %s\n", out_arg);
}

int st__cmd_plan_ilp(int argc, char **argv, st_error *err) {
    st_cli_args a;
    ilp_args own = {0};
    int rc;
    const st_cli_opt own_opts[] = {{"mbs", &own.mbs, NULL},
                                   {"microbatches", &own.microbatches, NULL},
                                   {"max-stages", &own.max_stages, NULL},
                                   {"mem-limit", &own.mem_limit, NULL},
                                   {"time-limit", &own.time_limit, NULL},
                                   {"zero", &own.zero, NULL},
                                   {"search", &own.search, NULL}, /* ilp: st_cmd_plan came here for it */
                                   {NULL, NULL, NULL}};
    const unsigned take = ST_CLI_OPT_MODEL | ST_CLI_OPT_GRAPH | ST_CLI_OPT_CLUSTER | ST_CLI_OPT_GPUS | ST_CLI_OPT_GBS |
                          ST_CLI_OPT_SEQ | ST_CLI_OPT_DTYPE | ST_CLI_OPT_PROFILE | ST_CLI_OPT_OUT | ST_CLI_OPT_JSON;
    const unsigned want = ST_CLI_MODEL | ST_CLI_GRAPH | ST_CLI_CLUSTER | ST_CLI_PROFILE;
    st_cli_inputs in = {0};
    st_autoshard_result res = {0};
    st_autoshard_opts o;
    st_cli_text text = {0};

    if ((rc = st_cli_parse(argc, argv, take, own_opts, &a, NULL, help_text, err)) || a.help) goto out;
    if ((rc = st_cli_inputs_check(&a, want, &in, err))) goto out;
    st_autoshard_opts_init(&o);
    o.gbs = ST_CLI_DEFAULT_GBS;
    o.gpus = in.gpus;
    if ((rc = autoshard_opts(&a, &own, &o, err))) goto out;
    if ((rc = st_cli_inputs_resolve(&a, want, &in, err))) goto out;
    const st_model *m = in.have_model ? &in.model : NULL;
    if (m && o.mbs > 0 && o.gbs % o.mbs) {
        rc = st_error_set(err, ST_EUSAGE, NULL, NULL, "option '--mbs': %lld does not divide gbs %lld", (long long)o.mbs,
                          (long long)o.gbs);
        goto out;
    }
    if ((rc = st_autoshard(m, in.have_graph ? &in.graph : NULL, &in.cluster, in.profile, &o, &res, err))) goto out;
    st_cli_inputs_notes(&in, "plan");
    const char *name = m ? m->name : in.graph.name;
    int64_t gpus = o.gpus > 0 ? o.gpus : st_cluster_gpus(&in.cluster);
    int64_t seq = m ? (o.seq > 0 ? o.seq : m->seq_len) : 0;
    if (a.out && (rc = st_autoshard_save(&res, m, a.graph, &in.cluster, o.gbs, seq, o.dtype, a.out, err))) goto out;
    if (a.json) {
        rc = st_out_autoshard_json(stdout, name, &in.cluster, gpus, m ? o.gbs : res.microbatches, seq, &res, err);
        goto out;
    }
    if ((rc = st_cli_text_open(&text, err))) goto out;
    print_result(text.f, &in, &o, &res, gpus, seq, a.out);
    st_cli_text_print(&text);
out:
    st_cli_text_destroy(&text);
    st_autoshard_result_free(&res);
    st_cli_inputs_destroy(&in);
    return rc;
}
