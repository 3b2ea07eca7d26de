/* cmd_run.c: `strata run` under mpirun: lower the plan to every rank's program (fused collectives,
 * the form exec/cpu.c interprets) and run it for real, one process per rank (exec.h); an
 * operator-level plan as the hybrid plan whose shardings it chose (st__run_ilp_spec), where it is
 * one, else (stages on meshes of different shapes) each stage as its own hybrid plan, lowered together
 * (st_lower_stages: its programs stitched, the pipeline's transfers as the cross-mesh exchange), else per operator
 * (st__run_ilp_ops, exec/opexec.c); where its attention or experts split the rows, the program's tp collectives
 * are the ILP's price
 * of the all-to-alls and gathers the executor runs for them (st_lower_opts' ntp_stages), so --compare
 * simulates what runs (the executor runs tp collectives inside its compute, whatever the program says).
 * Every rank reads the same inputs and lowers the same plan; rank 0 alone prints (the text, or
 * one JSON object), and alone names an error: the others exit 2 without a word, so a bad input is one line. */
#include "exec/exec.h"
#include "src/cli/cli.h"
#include "src/report/report.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

static const char help_text[] =
    "usage: mpirun -np N strata run --model M --plan P [--cluster C] [--steps S] [--seed N] [--check]\n"
    "                               [--trace FILE] [--reference-kernels] [--compare [--profile F]] [--timeout S]\n"
    "                               [--backend cpu|cuda] [--json]\n"
    "       strata run --model M --plan P [--cluster C] [--gpus N] [--steps S] [--seed N] [--check]\n"
    "                  --emit slurm --out FILE\n"
    "\n"
    "Trains the model under the plan for S iterations (default 3), one MPI process per rank (N = the\n"
    "plan's tp x pp x dp), on CPUs: fp32, OpenBLAS GEMMs, Open MPI for every transfer. Each rank runs\n"
    "its program of the plan's lowering (the simulator's: the schedule, the sends and receives, the\n"
    "dp and ZeRO-1 collectives) with a real decoder built from the model (GPT or Llama blocks, no\n"
    "dropout; MoE blocks with a top-k router and experts), seeded weights and seeded synthetic tokens.\n"
    "Runs tp, sp, pp (1F1B, gpipe, interleaved with vp > 1, zb, zbv, dualpipe), dp (uneven dp_batches\n"
    "too), cp, ep, zero=0..3, recompute none|selective|full|op and optimizer offload; the vocabulary,\n"
    "heads and ffn must divide by tp (with sp the micro-batch's tokens too), the experts by ep.\n"
    "An operator-level plan (strata plan --search ilp --out) runs with its stage cuts, micro-batch and\n"
    "recompute when each stage splits its operators as Megatron-LM does (per mesh axis: heads, ffn and\n"
    "vocabulary, the residual stream replicated or split by rows; or the batch), or with part of the\n"
    "attention on each device's token rows under it (the projection alone after an all-to-all from the\n"
    "heads, or QKV to the projection under a tp MLP), MoE experts over the axis or each split by its ffn;\n"
    "stages on meshes of different shapes each as its own plan (N: every stage's devices), the activations\n"
    "moved between them as each device's rows; other shardings (any operator split on a 1-D or 2-D mesh,\n"
    "MoE blocks too) run per operator, each rank a device interpreting its stage's program on its shards,\n"
    "on the cpu backend (the cuda backend refuses them in one line).\n"
    "  --cluster C          prices the lowering's instructions (default dgx-a100-80g: up to 8 ranks)\n"
    "  --gpus N             the cluster's GPUs, in nodes of its size (as for strata sim)\n"
    "  --steps S            iterations (1..100000)\n"
    "  --seed N             weights and tokens (default 1)\n"
    "  --check              also train the single-rank model on the same tokens and print the largest\n"
    "                       difference of the loss and of each tensor's reduced gradients\n"
    "  --trace FILE         Chrome trace of the fastest iteration after the first (the first with one step),\n"
    "                       in strata sim's processes and threads\n"
    "  --reference-kernels  the plain C GEMMs instead of BLAS\n"
    "  --backend cpu|cuda   cuda: the kernels on each rank's GPU (cuBLAS GEMMs and its own, fp32; the GPU of\n"
    "                       the node-local rank modulo the visible ones), the tensors in GPU memory, the tp,\n"
    "                       ep, cp and dp collectives and the pp sends and receives over NCCL (default cpu)\n"
    "  --compare            also simulate the program that ran, on --cluster (with --profile F), and print\n"
    "                       measured vs simulated per kind of instruction, for the iteration, and the\n"
    "                       memory per rank; for a prediction of this machine, the cluster and profile of\n"
    "                       mpirun -np N strata profile --cpu --out C --profile-out F. Measured: the fastest\n"
    "                       iteration after the first (on a shared machine, the least disturbed: use many\n"
    "                       --steps), with the time its ranks waited for a core beside it\n"
    "  --timeout S          the longest a rank waits in one collective, send or receive, in seconds (default\n"
    "                       300, or the environment's STRATA_RUN_TIMEOUT): past it the rank prints the\n"
    "                       instruction and the ranks it waited for and stops the job (exit 2); keep it\n"
    "                       above the longest compute of a step (--check: a step's start waits up to\n"
    "                       (ranks + 1) x it for rank 0's single-rank reference)\n"
    "  --json               one JSON object from rank 0\n"
    "  --emit slurm         write an sbatch script to FILE (atomically) that runs this command under srun\n"
    "                       on the cluster's nodes, one task per GPU bound to it; runs nothing, needs no MPI\n"
    "\n"
    "Exit status: 0 success, 2 bad input, a plan this executor does not run, N not the plan's ranks, or a\n"
    "rank timed out; a rank that dies ends the job with mpirun's status.\n";

/* a JSON string of s (model names come from files) */
static void json_str(FILE *f, const char *s) {
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') fprintf(f, "\\%c", c);
        else if (c < 0x20) fprintf(f, "\\u%04x", c);
        else fputc(c, f);
    }
    fputc('"', f);
}

static void print_json(FILE *f, const st_model *m, const char *spec, const st_plan *p, const st_lowered *l,
                       const st_exec_result *r, const st_exec_opts *o) {
    int check = o->check;
    int S = r->steps;
    double t = r->iteration_s[r->kept_step]; /* the fastest after the first (exec.h) */
    fputs("{\"model\": ", f);
    json_str(f, m->name);
    fprintf(f, ", \"plan\": \"%s\", \"backend\": \"%s\", \"ranks\": %d, \"steps\": %d, \"params\": %.17g,\n", spec,
            st_exec_backend_name(o->backend), r->world > 0 ? r->world : r->nranks, S, r->params);
    if (o->attn_rows == 3) /* an ILP plan's (st_exec_opts) */
        fputs(" \"qkv_split\": \"width\",\n", f);
    else if (o->attn_rows)
        fprintf(f, " \"on_rows\": \"%s\",\n", o->attn_rows == 1 ? "projection" : "attention");
    if (o->moe_rows)
        fputs(" \"experts\": \"tp rows\",\n", f);
    if (o->router_h)
        fputs(" \"router\": \"hidden\",\n", f);
    if (o->head_dp)
        fputs(" \"output_layer\": \"dp vocabulary\",\n", f);
    if (o->replicas > 1) /* the same: the ranks beyond the job's compute what its ranks do */
        fprintf(f, " \"copies\": %d,\n", o->replicas);
    fprintf(f, " \"kept_step\": %d, \"iteration_time_s\": %.17g, \"tokens_per_s\": %.17g,\n \"loss\": [",
            r->kept_step + 1, t, (double)p->gbs * (double)p->seq / t);
    for (int i = 0; i < S; i++) fprintf(f, "%s%.17g", i ? ", " : "", r->loss[i]);
    fputs("],\n \"iteration_s\": [", f);
    for (int i = 0; i < S; i++) fprintf(f, "%s%.17g", i ? ", " : "", r->iteration_s[i]);
    fputs("],\n \"measured_s\": [", f);
    for (int k = 0; k < r->nranks; k++) {
        fprintf(f, "%s\n  {\"rank\": %d, \"stage\": %d", k ? "," : "", r->row_rank ? r->row_rank[k] : k,
                l->progs[k].stage);
        for (int j = 0; j < ST_EXEC_KINDS; j++) fprintf(f, ", \"%s\": %.17g", st_exec_kind_name((st_exec_kind)j),
                                                        r->kind_s[k * ST_EXEC_KINDS + j]);
        fputc('}', f);
    }
    fputs("]", f);
    if (check) {
        double worst = r->loss_diff;
        fprintf(f, ",\n \"check\": {\"loss_max_diff\": %.17g, \"ref_loss\": [", r->loss_diff);
        for (int i = 0; i < S; i++) fprintf(f, "%s%.17g", i ? ", " : "", r->ref_loss[i]);
        fputs("], \"max_diff\": {", f);
        for (int i = 0, n = 0; i < ST_EXEC_TENSORS; i++) {
            if (r->grad_diff[i] < 0) continue;
            fprintf(f, "%s\"%s\": %.17g", n++ ? ", " : "", st_exec_tensor_names[i], r->grad_diff[i]);
            if (r->grad_diff[i] > worst) worst = r->grad_diff[i];
        }
        fputs("}, \"max_abs_ref\": {", f);
        for (int i = 0, n = 0; i < ST_EXEC_TENSORS; i++)
            if (r->grad_diff[i] >= 0)
                fprintf(f, "%s\"%s\": %.17g", n++ ? ", " : "", st_exec_tensor_names[i], r->grad_ref[i]);
        fprintf(f, "}, \"max_diff_overall\": %.17g}", worst);
    }
}

static void print_text(FILE *f, const st_model *m, const char *spec, const st_lowered *l, const st_exec_result *r,
                       const st_exec_opts *o) {
    fprintf(f, "model      %s (%.3fM parameters)\n", m->name, r->params / 1e6);
    fprintf(f, "plan       %s\n", spec);
    if (o->attn_rows == 3)
        fputs("           QKV split along its fused width and all-gathered, the attention whole on each rank (the "
              "ILP's split)\n", f);
    else if (o->attn_rows)
        fprintf(f, "           %s on each rank's token rows, whole weights (the ILP's split)\n",
                o->attn_rows == 1 ? "the attention projection" : "the attention (QKV to the projection)");
    if (o->moe_rows)
        fputs("           the experts split over the tp group, each rank's token rows routed to them (the ILP's "
              "split)\n", f);
    if (o->router_h)
        fputs("           the router split over the tp group by the hidden dimension (the ILP's split)\n", f);
    if (o->head_dp)
        fputs("           the output layer vocabulary-parallel over the dp group on its rows gathered there (the ILP's "
              "split)\n", f);
    if (o->replicas > 1)
        fprintf(f, "           %d copies of these ranks computing the same (the ILP's mesh axes that split nothing)\n",
                o->replicas);
    fprintf(f, "ran        %d ranks, %d steps, seed %" PRIu64 ", %s backend (fp32, %s GEMMs)\n\n",
            r->world > 0 ? r->world : r->nranks,
            r->steps, o->seed, st_exec_backend_name(o->backend),
            o->backend == ST_EXEC_CUDA ? "cuBLAS" : o->reference_kernels ? "plain C" : "BLAS");
    fprintf(f, "%4s %12s %12s%s\n", "step", "loss", "time_s", o->check ? "  reference loss" : "");
    for (int i = 0; i < r->steps; i++) {
        fprintf(f, "%4d %12.6f %12.4f", i + 1, r->loss[i], r->iteration_s[i]);
        if (o->check) fprintf(f, "  %14.6f", r->ref_loss[i]);
        fputc('\n', f);
    }
    fprintf(f, "\nmeasured in step %d, %s (s)\n%4s %5s", r->kept_step + 1,
            r->kept_step ? "the fastest after the first" : "the only one", "rank", "stage"); /* (kept 0: --steps 1) */
    for (int j = 0; j < ST_EXEC_KINDS; j++) fprintf(f, " %10s", st_exec_kind_name((st_exec_kind)j));
    fputc('\n', f);
    for (int k = 0; k < r->nranks; k++) {
        fprintf(f, "%4d %5d", r->row_rank ? r->row_rank[k] : k, l->progs[k].stage);
        for (int j = 0; j < ST_EXEC_KINDS; j++) fprintf(f, " %10.5f", r->kind_s[k * ST_EXEC_KINDS + j]);
        fputc('\n', f);
    }
    if (o->check) {
        fprintf(f, "\ncheck against the single-rank reference (largest |difference| over the steps)\n");
        fprintf(f, "  %-10s %12.3e\n", "loss", r->loss_diff);
        fprintf(f, "  %-10s %12s %12s\n", "gradient", "max |diff|", "max |ref|");
        for (int i = 0; i < ST_EXEC_TENSORS; i++)
            if (r->grad_diff[i] >= 0)
                fprintf(f, "  %-10s %12.3e %12.3e\n", st_exec_tensor_names[i], r->grad_diff[i], r->grad_ref[i]);
    }
    if (o->trace) fprintf(f, "\nwrote %s\n", o->trace);
}

/* --emit slurm --out FILE: the sbatch script that runs the same command (exec/ is not needed) */
/* The executor's ranks run one tp (their groups, weights and messages are one shard's): a plan with a
 * different tp per stage is refused, to run and in a job script alike. */
static int one_tp(const st_plan *p, st_error *err) {
    if (!p->nstage_tp) return 0;
    return st_error_set(err, ST_EINVAL, NULL, "stage_tp", "strata run executes one tp for all pipeline stages; a "
                        "different tp per stage is estimated and simulated by stage, not run");
}

static int emit_slurm(st_cli_args *a, const char *kind, const char *steps, const char *seed, const char *timeout,
                      const char *backend, int check, st_error *err) {
    const unsigned want = ST_CLI_MODEL | ST_CLI_CLUSTER | ST_CLI_PLAN;
    st_cli_inputs in = {0};
    char spec[512];
    int rc, n = 0;
    if (strcmp(kind, "slurm")) return st_error_set(err, ST_EUSAGE, NULL, NULL, "--emit: must be slurm, not '%s'", kind);
    if (!a->out) return st_error_set(err, ST_EUSAGE, NULL, NULL, "--emit slurm needs --out FILE");
    int64_t v;
    if (timeout && (rc = st_cli_int("timeout", timeout, 1, 604800, &v, err))) return rc;
    st_exec_backend be;
    if (backend && st_exec_backend_parse(backend, &be))
        return st_error_set(err, ST_EUSAGE, NULL, NULL, "--backend: must be cpu or cuda, not '%s'", backend);
    if (!a->cluster) a->cluster = "dgx-a100-80g";
    if ((rc = st_cli_inputs_check(a, want, &in, err)) || (rc = st_cli_inputs_resolve(a, want, &in, err)) ||
        (rc = one_tp(in.plan, err)))
        goto out;
    st_plan_format_spec(in.plan, spec, sizeof spec);
    const char *args[20] = {"strata", "run", "--model", a->model, "--cluster", a->cluster, "--plan", spec};
    n = 8;
    if (a->gpus) args[n++] = "--gpus", args[n++] = a->gpus;
    if (steps) args[n++] = "--steps", args[n++] = steps;
    if (seed) args[n++] = "--seed", args[n++] = seed;
    if (timeout) args[n++] = "--timeout", args[n++] = timeout;
    if (backend) args[n++] = "--backend", args[n++] = backend;
    if (check) args[n++] = "--check";
    if (a->json) args[n++] = "--json";
    if (!(rc = st_emit_slurm(in.plan, &in.cluster, args, n, a->out, err))) printf("wrote %s\n", a->out);
out:
    st_cli_inputs_destroy(&in);
    return rc;
}

/* An operator-level plan whose stages differ in shape (st__run_ilp_spec's stages): each stage's hybrid plan, its
 * st_exec_stage and lowering options, and the line that names them. */
typedef struct staged {
    int n;
    st_plan *plans;       /* n, owned */
    const st_plan **list; /* n: plans[d]'s address (st_lower_stages') */
    int *copies;          /* n */
    st_exec_stage *x;     /* n */
    st_lower_opts *lo;    /* n */
} staged;

static void staged_destroy(staged *g) {
    free(g->plans), free(g->list), free(g->copies), free(g->x), free(g->lo);
    memset(g, 0, sizeof *g);
}

/* Each stage's spec finalized for the model on the cluster (which must hold pp x the stage's ranks: its lowering
 * places it there; the cluster is grown in nodes of its size where it does not), and the stitched lowering of
 * them all (st_lower_stages) into low; the plan line into spec[n]. */
static int staged_lower(const st_cli_args *a, st_cli_inputs *in, const st__ilp_stage *st, int S, staged *g,
                        st_cost_ctx **ctx, st_lowered *low, char *spec, size_t n, st_error *err) {
    int rc = 0;
    int64_t need = 0, have = st_cluster_gpus(&in->cluster);
    g->n = S;
    g->plans = calloc((size_t)S, sizeof *g->plans);
    g->list = calloc((size_t)S, sizeof *g->list);
    g->copies = calloc((size_t)S, sizeof *g->copies);
    g->x = calloc((size_t)S, sizeof *g->x);
    g->lo = calloc((size_t)S, sizeof *g->lo);
    if (!g->plans || !g->list || !g->copies || !g->x || !g->lo)
        return st_error_set(err, ST_ENOMEM, NULL, NULL, "out of memory");
    for (int d = 0; d < S; d++)
        if ((int64_t)S * st[d].h.tp * st[d].h.dp > need) need = (int64_t)S * st[d].h.tp * st[d].h.dp;
    if (need > have) {
        int64_t per = in->cluster.gpus_per_node > 0 ? in->cluster.gpus_per_node : 1;
        if ((rc = st_cluster_resolve(a->cluster, (need + per - 1) / per * per, &in->cluster, err))) return rc;
    }
    const st_plan *p0 = NULL;
    int len = 0;
    for (int d = 0; d < S; d++) {
        st_plan *p = &g->plans[d];
        st_plan_defaults(p);
        if (!(rc = st_plan_resolve(st[d].spec, p, err))) {
            p->heads_whole = st[d].h.attn_rows == 2 || st[d].h.attn_rows == 3; /* no operator splits the heads */
            rc = st_plan_finalize(p, &in->model, &in->cluster, 0, NULL, err);
        }
        if (rc) { /* a stage the model cannot take so: named */
            char why[sizeof err->text];
            snprintf(why, sizeof why, "%s", err->text);
            snprintf(err->text, sizeof err->text, "stage %d runs as %.160s: %.300s", d, st[d].spec, why);
            snprintf(err->file, sizeof err->file, "%s", a->plan);
            return rc;
        }
        g->list[d] = p, g->copies[d] = st[d].h.rep > 1 ? st[d].h.rep : 1;
        g->x[d] = (st_exec_stage){.plan = p, .copies = g->copies[d], .attn_rows = st[d].h.attn_rows,
                                  .moe_rows = st[d].h.moe_rows, .router_h = st[d].h.router_h,
                                  .head_dp = st[d].h.head_dp};
        st_lower_opts_init(&g->lo[d]);
        g->lo[d].per_op = 0;
        if (st[d].own_tp) { /* the ILP's price of the tp collectives its rows splits run (st_lower_opts) */
            g->lo[d].ntp_stages = S;
            g->lo[d].tp_fwd_s[d] = st[d].tp_fwd_s, g->lo[d].tp_bwd_s[d] = st[d].tp_bwd_s;
            g->lo[d].tp_recompute_s[d] = st[d].tp_recompute_s;
        }
        if (!p0) {
            p0 = p;
            len = snprintf(spec, n, "pp=%d,mbs=%lld,gbs=%lld,seq=%lld, stages of different shapes:", p->pp,
                           (long long)(p->mbs * p->dp), (long long)p->gbs, (long long)p->seq);
        }
        char ep[16] = "", cp[24] = "";
        if (p->ep > 1) snprintf(ep, sizeof ep, ",ep=%d", p->ep);
        if (g->copies[d] > 1) snprintf(cp, sizeof cp, " x%d copies", g->copies[d]);
        if (len >= 0 && (size_t)len < n) /* (past the end nothing more is written) */
            len += snprintf(spec + len, n - (size_t)len, " [%d layers: tp=%d,dp=%d,sp=%d%s%s%s%s%s]",
                            p->stage_layers[d], p->tp, p->dp, p->sp, ep, p->zero ? ",zero=1" : "",
                            p->recompute != ST_REC_NONE ? ",recompute=full" : "", st[d].splits, cp);
    }
    if (!(*ctx = st_cost_ctx_new(&in->model, &in->cluster, in->profile)))
        return st_error_set(err, ST_ENOMEM, NULL, NULL, "out of memory");
    rc = st_lower_stages(*ctx, g->list, g->copies, g->lo, S, low, err);
    if (rc && !err->file[0]) snprintf(err->file, sizeof err->file, "%s", a->plan);
    return rc;
}

/* --compare: the run's program simulated beside what the run measured (src/report/run_compare.c) */
static int compare(FILE *f, const st_lowered *l, const st_exec_result *r, int json, st_error *err) {
    st_runcmp c;
    int rc = st_runcmp_build(l, r, &c, err);
    if (!rc && json) st_runcmp_json(f, &c);
    else if (!rc) st_runcmp_text(f, &c);
    st_runcmp_destroy(&c);
    return rc;
}

int st_cmd_run(int argc, char **argv, st_error *err) {
    st_cli_args a;
    const char *steps_arg = NULL, *seed_arg = NULL, *emit = NULL, *backend = NULL, *timeout_arg = NULL;
    int check = 0, refk = 0, cmp = 0, rc, rank = 0, size = 1, mpi = 0, ran = 0, refused = 0, failed_by = 0;
    st_exec_opts o = {.steps = 3, .seed = 1, .timeout_s = ST_EXEC_TIMEOUT_S};
    const st_cli_opt own[] = {{"steps", &steps_arg, NULL}, {"seed", &seed_arg, NULL},
                              {"trace", &o.trace, NULL},   {"check", NULL, &check},
                              {"reference-kernels", NULL, &refk}, {"compare", NULL, &cmp},
                              {"emit", &emit, NULL},       {"backend", &backend, NULL},
                              {"timeout", &timeout_arg, NULL},
                              {NULL, NULL, NULL}};
    const unsigned take = ST_CLI_OPT_MODEL | ST_CLI_OPT_CLUSTER | ST_CLI_OPT_PLAN | ST_CLI_OPT_JSON | ST_CLI_OPT_OUT |
                          ST_CLI_OPT_GPUS | ST_CLI_OPT_PROFILE;
    const unsigned want = ST_CLI_MODEL | ST_CLI_CLUSTER | ST_CLI_PLAN | ST_CLI_PROFILE;
    st_cli_inputs in = {0};
    st_cost_ctx *ctx = NULL;
    st_lowered low = {0};
    st_lower_opts lo;
    st_lower_opts_init(&lo);
    st_exec_result res = {0};
    st_cli_text text = {0};
    char spec[4096], ilp_spec[4096];
    int64_t v;
    st__ilp_stage *istg = NULL; /* an operator-level plan's stages, where they differ in shape (nst of them) */
    int nst = 0;
    staged sg = {0};
    const st_plan *plan = NULL; /* the run's: in.plan, or stage 0's where the stages differ */

    if ((rc = st_cli_parse(argc, argv, take, own, &a, NULL, help_text, err)) || a.help) goto done;
    if ((rc = st_cli_require(err, "--model", a.model, "--plan", a.plan, NULL))) goto done;
    if (emit || a.out) {
        rc = emit ? emit_slurm(&a, emit, steps_arg, seed_arg, timeout_arg, backend, check, err)
                  : st_error_set(err, ST_EUSAGE, NULL, NULL, "--out goes with --emit slurm");
        goto done;
    }
    if ((rc = st_exec_mpi_init(&rank, &size, err))) goto done;
    mpi = 1;
    if (steps_arg && (rc = st_cli_int("steps", steps_arg, 1, 100000, &v, err))) goto done;
    if (steps_arg) o.steps = (int)v;
    if (seed_arg && (rc = st_cli_int("seed", seed_arg, 0, INT64_MAX, &v, err))) goto done;
    if (seed_arg) o.seed = (uint64_t)v;
    /* the environment's for tests and CI jobs, which cannot reach every command line */
    const char *topt = timeout_arg ? "timeout" : "timeout (from STRATA_RUN_TIMEOUT)";
    if (!timeout_arg) timeout_arg = getenv("STRATA_RUN_TIMEOUT");
    if (timeout_arg && (rc = st_cli_int(topt, timeout_arg, 1, 604800, &v, err))) goto done;
    if (timeout_arg) o.timeout_s = (double)v;
    o.check = check, o.reference_kernels = refk;
    if (backend && st_exec_backend_parse(backend, &o.backend)) {
        rc = st_error_set(err, ST_EUSAGE, NULL, NULL, "--backend: must be cpu or cuda, not '%s'", backend);
        goto done;
    }
    if (refk && o.backend != ST_EXEC_CPU) {
        rc = st_error_set(err, ST_EUSAGE, NULL, NULL, "--reference-kernels goes with --backend cpu");
        goto done;
    }
    if (!a.cluster) a.cluster = "dgx-a100-80g";
    /* an operator-level plan runs as the hybrid plan it is (st__run_ilp_spec), or per operator (st__run_ilp_ops) */
    if (st__plan_is_ilp(a.plan)) {
        st_cli_ilp_run ir;
        if ((rc = st__run_ilp_ops(&a, &o, &ir, &res, &ran, err)) != 1) {
            if (!rc && rank == 0) {
                st_plan ip;
                st_plan_defaults(&ip);
                ip.gbs = ir.gbs, ip.seq = ir.seq;
                if (!(rc = st_cli_text_open(&text, err))) {
                    if (a.json) print_json(text.f, &ir.model, ir.spec, &ip, &ir.low, &res, &o);
                    else print_text(text.f, &ir.model, ir.spec, &ir.low, &res, &o);
                    if (cmp && (rc = compare(text.f, &ir.low, &res, a.json, err))) goto ilp_done;
                    if (a.json) fputs("}\n", text.f);
                    st_cli_text_print(&text);
                }
            }
        ilp_done:
            st_lowered_destroy(&ir.low);
            goto done;
        }
        if (!(istg = calloc(ST_MAX_STAGES, sizeof *istg))) {
            rc = st_error_set(err, ST_ENOMEM, NULL, NULL, "out of memory");
            goto done;
        }
        if ((rc = st__run_ilp_spec(&a, ilp_spec, sizeof ilp_spec, &o.attn_rows, &o.moe_rows, &o.router_h,
                                     &o.replicas, &o.head_dp, &lo, istg, &nst, err)))
            goto done;
        if (o.head_dp && o.backend == ST_EXEC_CUDA) { /* exec/cuda.c has no dp-group collectives in the model */
            rc = st_error_set(err, ST_EINVAL, a.plan, "stages",
                              "the output layer vocabulary-parallel over the batch axes runs on --backend cpu only");
            goto done;
        }
        /* stages of different shapes: the cuda backend's NCCL transfers pair ranks whole (the exchange's row
         * blocks and the copies' communicators are the cpu runtime's) */
        if (nst && o.backend == ST_EXEC_CUDA) {
            rc = st_error_set(err, ST_EINVAL, a.plan, "stages",
                              "stages on meshes of different shapes run on --backend cpu only");
            goto done;
        }
        if (!nst) a.plan = ilp_spec;
        a.heads_whole = o.attn_rows == 2 || o.attn_rows == 3; /* no operator splits the heads */
    }
    if (nst) { /* each stage its own plan (st_exec_opts' stages), lowered together (st_lower_stages) */
        const unsigned inputs = ST_CLI_MODEL | ST_CLI_CLUSTER | ST_CLI_PROFILE;
        if ((rc = st_cli_inputs_check(&a, inputs, &in, err)) || (rc = st_cli_inputs_resolve(&a, inputs, &in, err)) ||
            (rc = staged_lower(&a, &in, istg, nst, &sg, &ctx, &low, spec, sizeof spec, err)))
            goto done;
        o.stages = sg.x, o.nstages = nst;
        plan = &sg.plans[0];
    } else {
        if ((rc = st_cli_inputs_check(&a, want, &in, err)) || (rc = st_cli_inputs_resolve(&a, want, &in, err)))
            goto done;
        if (!(ctx = st_cost_ctx_new(&in.model, &in.cluster, in.profile))) {
            rc = st_error_set(err, ST_ENOMEM, NULL, NULL, "out of memory");
            goto done;
        }
        if ((rc = one_tp(in.plan, err))) goto done;
        lo.every_rank = 1;
        lo.per_op = 0;
        if ((rc = st_lower_plan(ctx, in.plan, &lo, &low, err))) goto done;
        plan = in.plan;
        st_plan_format_spec(in.plan, spec, sizeof spec);
    }
    ran = 1;
    rc = st_exec_run(&in.model, plan, &low, &o, &res, err);
    if (rc && nst && res.refused && !err->file[0]) snprintf(err->file, sizeof err->file, "%s", a.plan); /* the file's */
    if (rc || rank != 0) goto done;
    if ((rc = st_cli_text_open(&text, err))) goto done;
    if (a.json) print_json(text.f, &in.model, spec, plan, &low, &res, &o);
    else print_text(text.f, &in.model, spec, &low, &res, &o);
    if (cmp && (rc = compare(text.f, &low, &res, a.json, err))) goto done;
    if (a.json) fputs("}\n", text.f);
    st_cli_text_print(&text);
done:
    refused = res.refused;
    failed_by = res.failed_by;
    st_cli_text_destroy(&text);
    st_exec_result_destroy(&res);
    st_lowered_destroy(&low);
    st_cost_ctx_free(ctx);
    st_cli_inputs_destroy(&in);
    staged_destroy(&sg);
    free(istg);
    /* an error in the inputs or the plan, or one the executor's setup made every rank learn: every
     * rank is here alike, so rank 0 says why and the others wait for that before their exit lets
     * mpirun stop the job (a rank exiting first could have rank 0 killed before it printed) */
    if (rc < 0 && mpi && (!ran || refused)) {
        if (rank == 0) st_cli_report("run", err);
        st_exec_mpi_barrier();
        rc = 2;
    }
    /* a step that failed on some rank, which every rank learnt at the step's end: the first such
     * rank says why, before any rank's exit can have mpirun stop it */
    if (rc < 0 && mpi && ran && !refused && failed_by) { /* a world rank (with copies, of any copy) */
        if (rank == failed_by - 1) st_cli_report("run", err);
        st_exec_mpi_barrier();
        rc = 2;
    }
    if (mpi) st_exec_mpi_finalize();
    /* rank 0 names the error; the others fail as quietly (a positive status: main prints nothing) */
    return rc && rank != 0 ? 2 : rc;
}
