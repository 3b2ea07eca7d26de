/* cmd_estimate.c: `strata estimate`: the predicted iteration time, throughput, MFU and memory of
 * one plan, with a breakdown. Exit 1 (after printing) when the plan does not fit. */
#include "src/cli/cli.h"

#include <stdlib.h>

/* --ops: what each operator of one block (and the head and tail) costs under this plan */
static void print_ops(FILE *out, const st_model *m, const st_cluster *c, const st_profile *prof, const st_plan *p) {
    st_shard s;
    st_plan_shard(p, &s);
    int64_t rep[ST_MAX_KINDS], count[ST_MAX_KINDS]; /* one block of each kind */
    int nk = st_model_kinds(m, rep);
    st_model_count_kinds(m, 0, m->layers, count);
    fprintf(out, "\noperators per micro-batch on one GPU (ms; TFLOP/s achieved; bound; saved MiB; collective)\n");
    /* with tp_overlap: what each collective leaves exposed beside its GEMM; with cp's ring, what the
     * exchange leaves exposed beside the attention's steps (st_cost_ops) */
    int ring = p->cp > 1 && p->cp_comm == ST_CP_P2P;
    st_cost_ctx *ctx = p->tp_overlap || ring ? st_cost_ctx_new(m, c, prof) : NULL;
    for (int k = 0; k < nk + 2; k++) {
        st_op ops[ST_MAX_OPS];
        char title[96];
        int n;
        if (k < nk) {
            st_layer L;
            st_model_layer(m, rep[k], &L);
            static const char *const mixer[] = {"attention", "no mixer", "Mamba-2"};
            static const char *const mlp[] = {"MLP", "MoE", "no MLP"};
            if (m->layer_pattern[0] || m->window > 0 || m->first_dense > 0 || nk > 2)
                snprintf(title, sizeof title, "block: %s%s, %s (%lld of %lld)", mixer[L.mixer],
                         L.window > 0 ? " (windowed)" : "", mlp[L.mlp], (long long)count[k], (long long)m->layers);
            else /* dense, MoE: as the list has always said */
                snprintf(title, sizeof title, "%s", L.mlp == ST_MLP_MOE ? "MoE block" : "block");
            n = st_ops_layer(m, &s, rep[k], ops, ST_MAX_OPS);
        } else if (k == nk) {
            snprintf(title, sizeof title, "embedding (first stage)");
            n = st_ops_head(m, &s, ops, ST_MAX_OPS);
        } else {
            snprintf(title, sizeof title, "output (last stage)");
            n = st_ops_tail(m, &s, ops, ST_MAX_OPS);
        }
        fprintf(out, "  %s\n  %-18s %-11s %8s %8s %8s %-7s %9s  %s\n", title, "op", "class", "fwd", "bwd",
                "TFLOP/s", "bound", "saved", "collective (fwd+bwd ms)");
        st_op_cost exposed[ST_MAX_OPS];
        if (ctx) st_cost_ops(ctx, p, ops, n, exposed);
        for (int i = 0; i < n; i++) {
            const st_op *o = &ops[i];
            double tf = st_cost_op_time(c, prof, o, p->dtype, 0), tb = st_cost_op_time(c, prof, o, p->dtype, 1);
            double tflops = tf + tb > 0 ? (o->fwd_flops + o->bwd_flops) / (tf + tb) / 1e12 : 0;
            int compute = o->cls == ST_OPC_GEMM || o->cls == ST_OPC_BGEMM || o->cls == ST_OPC_ATTENTION;
            char coll[96] = "";
            if (o->fwd_coll != ST_COLL_NONE || o->bwd_coll != ST_COLL_NONE) {
                st_group g;
                st_cost_group(c, p, o->coll_group, &g);
                double t = st_cost_collective(c, prof, o->fwd_coll, &g, st_op_fwd_coll_bytes(o)) +
                           st_cost_collective(c, prof, o->bwd_coll, &g, o->coll_bytes);
                static const char *const grp[] = {"tp", "cp", "ep", "dp", "pp"};
                int w = snprintf(coll, sizeof coll, "%s %s/%s %.3f", grp[o->coll_group], st_coll_name(o->fwd_coll),
                                 st_coll_name(o->bwd_coll), t * 1e3);
                double x = ctx ? exposed[i].fwd_coll_s + exposed[i].bwd_coll_s : t;
                if (x != t && w > 0 && (size_t)w < sizeof coll)
                    snprintf(coll + w, sizeof coll - (size_t)w, ", exposed %.3f (%s)", x * 1e3,
                             o->coll_group == ST_GRP_CP ? "cp ring" : "tp_overlap");
            }
            fprintf(out, "  %-18s %-11s %8.3f %8.3f %8.1f %-7s %9.1f  %s\n", o->name, st_opclass_name(o->cls), tf * 1e3,
                    tb * 1e3, tflops, compute ? "compute" : "memory", o->saved_bytes / 1048576.0, coll);
        }
    }
    st_cost_ctx_free(ctx);
}

static const char help_text[] =
    "usage: strata estimate --model M --cluster C --plan P [--gpus N] [--profile F] [--ops] [--json]\n"
    "       strata estimate --graph FILE --cluster C --plan ILP_PLAN [...]\n"
    "\n"
    "  --model M     preset name (strata models), strata model JSON or HuggingFace config.json\n"
    "  --graph FILE  a custom operator graph (with an operator-level plan of it)\n"
    "  --cluster C   preset name (strata clusters) or cluster JSON\n"
    "  --gpus N      size a cluster to N GPUs (N / gpus_per_node nodes)\n"
    "  --plan P      inline spec 'tp=8,pp=8,mbs=1,gbs=512,...' or plan JSON (strata plan --out); an\n"
    "                operator-level plan (strata plan --search ilp --out) is priced operator by operator\n"
    "                attention=flash (default: one fused kernel, FlashAttention-3 on Hopper, -2 elsewhere),\n"
    "                fa2 (FlashAttention-2: PyTorch SDPA's kernel), cudnn (cuDNN's: Transformer Engine's\n"
    "                choice on Hopper) or unfused (Megatron-LM 2021-22: scores, softmax, dropout, context)\n"
    "                recompute=none|selective (Megatron: attention core)|full (whole blocks)|op\n"
    "                (torchtitan's op-level selective AC: every other matmul output saved)\n"
    "                kernels=fused (default: Megatron-LM's fused kernels), eager (PyTorch eager, torchtitan\n"
    "                without torch.compile: RMSNorm, RoPE, SwiGLU and the loss as chains of element-wise\n"
    "                kernels, with their fp32 intermediates' memory) or compile (torchtitan's torch.compile:\n"
    "                blocks fused, the final norm and the loss eager)\n"
    "                overlaps, all off by default as in Megatron-LM: overlap_grad_reduce=1,\n"
    "                overlap_param_gather=1 (zero 1-2, with overlap_grad_reduce), tp_overlap=1 (tp > 1\n"
    "                and sp=1: Transformer Engine's userbuffers, --tp-comm-overlap; torchtitan's async TP)\n"
    "                cp_comm=p2p (default: the K/V ring beside the attention steps, Transformer Engine's),\n"
    "                all_gather (Llama 3's: K/V gathered, exposed) or a2a (Ulysses; heads/tp divisible by cp)\n"
    "                pp_partition=1 (sp=0): DeepSpeed's pipeline engine, each tp rank sends 1/tp of a pipeline\n"
    "                message and the tp group all-gathers it (default 0: sent whole, as Megatron-Core does)\n"
    "                fp8_param_gather=1 (dtype fp8 or mxfp8, zero 1-2): Megatron's --fp8-param-gather, the\n"
    "                quantised weights without a 16-bit copy; fp8's weight all-gather moves 1 byte each\n"
    "  --profile F   calibration profile replacing the default efficiency curves: a file, or the name\n"
    "                of a shipped one (strata profiles)\n"
    "  --ops         also list what each operator of a block costs (time, TFLOP/s, bound, collective)\n"
    "  --json        one JSON object on stdout\n"
    "\n"
    "Exit status: 0 fits, 1 does not fit in GPU (or host) memory, 2 bad input.\n";

/* the estimate as text: inputs, the keys, the breakdown, the peak stage's memory (and --ops) */
static void print_estimate(FILE *out, const st_cli_inputs *in, const st_estimate *e, const st_stage_memory *stages,
                           int show_ops) {
    const st_model *m = &in->model;
    const st_cluster *c = &in->cluster;
    const st_plan *p = in->plan;
    char spec[512];
    st_plan_format_spec(p, spec, sizeof spec);
    const double GiB = 1073741824.0;
    int64_t used = st_plan_gpus(p);
    fprintf(out, "model      %s (%.1fB parameters, %lld layers, hidden %lld)\n", m->name, st_model_params(m) / 1e9,
            (long long)m->layers, (long long)m->hidden);
    char gpus[400];
    st_cluster_describe(c, gpus, sizeof gpus);
    fprintf(out, "cluster    %s: %s (%lld GPUs, plan uses %lld)\n", c->name, gpus, (long long)st_cluster_gpus(c),
            (long long)used);
    fprintf(out, "plan       %s\n", spec);
    fprintf(out, "           %lld micro-batches per iteration\n\n", (long long)st_plan_microbatches(p));
    fprintf(out, "iteration time      %10.3f s\n", e->iteration_time_s);
    fprintf(out, "tokens/s            %10.0f\n", e->tokens_per_s);
    fprintf(out, "model TFLOP/s/GPU   %10.1f\n", e->model_tflops_per_gpu);
    fprintf(out, "MFU                 %10.1f %%\n", 100 * e->mfu);
    fprintf(out, "memory peak         %10.1f GiB of %.1f (stage %d): %s\n", e->memory_peak_bytes / GiB,
            c->gpu.memory_bytes / GiB, e->peak_stage, e->fits ? "fits" : "DOES NOT FIT");
    if (p->offload != ST_OFF_NONE || p->offload_optimizer > 0 || p->offload_params > 0 || p->offload_activations > 0)
        fprintf(out, "host memory/node    %10.1f GiB of %.1f%s\n", e->host_memory_bytes / GiB,
                c->host_memory_bytes / GiB, e->host_memory_bytes > c->host_memory_bytes ? ": DOES NOT FIT" : "");
    fprintf(out, "\nbreakdown (the slowest stage, whole iteration)\n");
    st_print_breakdown(out, &e->breakdown, "  ");
    const st_stage_memory *s = &stages[e->peak_stage];
    fprintf(out, "\nmemory of stage %d (GiB)\n", e->peak_stage);
    fprintf(out, "  weights %.2f, gradients %.2f, optimizer %.2f, activations %.2f, other %.2f\n",
            s->weights_bytes / GiB, s->grads_bytes / GiB, s->optimizer_bytes / GiB, s->activations_bytes / GiB,
            s->other_bytes / GiB);
    if (show_ops) print_ops(out, m, c, in->profile, p);
}

int st_cmd_estimate(int argc, char **argv, st_error *err) {
    st_cli_args a;
    int show_ops = 0, rc;
    const st_cli_opt own[] = {{"ops", NULL, &show_ops}, {NULL, NULL, NULL}};
    const unsigned take = ST_CLI_OPT_MODEL | ST_CLI_OPT_GRAPH | ST_CLI_OPT_CLUSTER | ST_CLI_OPT_GPUS | ST_CLI_OPT_PLAN |
                          ST_CLI_OPT_PROFILE | ST_CLI_OPT_JSON;
    const unsigned want = ST_CLI_MODEL | ST_CLI_CLUSTER | ST_CLI_PLAN | ST_CLI_PROFILE | ST_CLI_ORIGIN;
    st_cli_inputs in = {0};
    st_cost_ctx *ctx = NULL;
    st_stage_memory *stages = NULL;
    st_plan *pd = NULL; /* stage_tp: the plan of the stage whose memory is shown */
    st_cli_text text = {0};

    if ((rc = st_cli_parse(argc, argv, take, own, &a, NULL, help_text, err)) || a.help) goto out;
    if (st__plan_is_ilp(a.plan)) {
        if (show_ops)
            rc = st_error_set(err, ST_EUSAGE, NULL, NULL, "--ops: the plan file lists each operator's split already");
        else
            rc = st__estimate_ilp(&a, err);
        goto out;
    }
    if ((rc = st_cli_inputs_check(&a, want, &in, err)) || (rc = st_cli_inputs_resolve(&a, want, &in, err))) goto out;
    st_cli_inputs_notes(&in, "estimate");

    const st_plan *p = in.plan;
    st_estimate e;
    if (!(ctx = st_cost_ctx_new(&in.model, &in.cluster, in.profile))) {
        rc = st_error_set(err, ST_ENOMEM, NULL, NULL, "out of memory");
        goto out;
    }
    if ((rc = st_cost_estimate(ctx, p, &e))) {
        st_error_set(err, rc, NULL, "plan", "the plan cannot be priced");
        goto out;
    }
    if ((rc = st_estimate_check(&e, err))) goto out;
    /* layers the plan put on a stage that its GPUs cannot hold: bad input, not a plan that does not fit */
    if (!e.fits && (rc = st_cost_check_stage_layers(ctx, p, err))) goto out;
    if (!(stages = calloc((size_t)p->pp, sizeof *stages))) {
        rc = st_error_set(err, ST_ENOMEM, NULL, NULL, "out of memory");
        goto out;
    }
    for (int d = 0; d < p->pp; d++) { /* each stage on its own GPUs (node groups: its replicas' slowest) */
        int64_t S = (int64_t)st_plan_stage_tp(p, d) * p->cp * p->dp;
        st_cost_ctx *v = st_cost_view(ctx, st_plan_stage_rank0(p, d), S);
        if (!v || (p->nstage_tp && !pd && !(pd = malloc(sizeof *pd)))) {
            rc = st_error_set(err, ST_ENOMEM, NULL, NULL, "out of memory");
            goto out;
        }
        if (pd) st_plan_stage_plan(p, d, pd); /* stage_tp: its memory at its own tp */
        st_cost_stage_memory(v, pd ? pd : p, d, &stages[d]);
    }

    if (a.json) {
        rc = st_out_estimate_json(stdout, &in.model, &in.cluster, p, &e, stages, p->pp, in.profile, err);
        if (rc) goto out;
    } else {
        if ((rc = st_cli_text_open(&text, err))) goto out;
        print_estimate(text.f, &in, &e, stages, show_ops);
        st_cli_text_print(&text);
    }
    rc = e.fits ? 0 : 1;
out:
    st_cli_text_destroy(&text);
    free(stages);
    free(pd);
    st_cost_ctx_free(ctx);
    st_cli_inputs_destroy(&in);
    return rc;
}
