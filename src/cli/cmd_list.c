/* cmd_list.c: `strata models` and `strata clusters`: the presets, with parameter counts computed
 * from the operator graph (never typed in) and the spec numbers each cluster preset carries;
 * `strata profiles`: the shipped calibration profiles --profile can name. */
#include "src/cli/cli.h"

#include <stdlib.h>

#include <string.h>

static const char models_help[] =
    "usage: strata models [--json]\n"
    "\n"
    "Lists the model presets; parameters are counted from the operator graph.\n";

static const char clusters_help[] =
    "usage: strata clusters [--json]\n"
    "\n"
    "Lists the cluster presets (one node each; size them with --gpus N)\n"
    "and the GPU presets a cluster JSON can name.\n";

static const char profiles_help[] =
    "usage: strata profiles [--json]\n"
    "\n"
    "Lists the shipped calibration profiles, which --profile takes by name:\n"
    "NAME.json in each folder of $STRATA_PROFILE_PATH (':'-separated), then in the installed\n"
    "profiles folder, then in the source tree's traces/. The first folder with a name wins.\n";

int st_cmd_models(int argc, char **argv, st_error *err) {
    st_cli_args a;
    int rc = st_cli_parse(argc, argv, ST_CLI_OPT_JSON, NULL, &a, NULL, models_help, err);
    if (rc || a.help) return rc;
    if (a.json) return st_out_models_json(stdout, err);
    size_t n;
    const st_model *ms = st_model_presets(&n);
    printf("%-14s %6s %6s %5s %4s %6s %7s %6s %7s %9s  %s\n", "name", "layers", "hidden", "heads", "kv", "ffn",
           "vocab", "seq", "experts", "params", "source");
    for (size_t i = 0; i < n; i++) {
        const st_model *m = &ms[i];
        char experts[32] = "-";
        if (m->experts) snprintf(experts, sizeof experts, "%lldx%lld", (long long)m->experts, (long long)m->experts_topk);
        printf("%-14s %6lld %6lld %5lld %4lld %6lld %7lld %6lld %7s %8.1fB  %s\n", m->name, (long long)m->layers,
               (long long)m->hidden, (long long)m->heads, (long long)m->kv_heads, (long long)m->ffn,
               (long long)m->vocab, (long long)m->seq_len, experts, st_model_params(m) / 1e9, m->source);
        char structure[400];
        st_model_describe(m, structure, sizeof structure);
        if (structure[0]) printf("%-14s %s\n", "", structure);
    }
    return 0;
}

int st_cmd_clusters(int argc, char **argv, st_error *err) {
    st_cli_args a;
    int rc = st_cli_parse(argc, argv, ST_CLI_OPT_JSON, NULL, &a, NULL, clusters_help, err);
    if (rc || a.help) return rc;
    if (a.json) return st_out_clusters_json(stdout, err);
    size_t n;
    const st_cluster *cs = st_cluster_presets(&n);
    printf("%-13s %-14s %4s %-14s %12s %14s %10s  %s\n", "cluster", "gpu", "gpus", "scale-up", "intra GB/s",
           "NICs x Gb/s", "host GiB", "source");
    for (size_t i = 0; i < n; i++) {
        const st_cluster *c = &cs[i];
        char nics[32], dom[32];
        snprintf(nics, sizeof nics, "%lld x %.0f", (long long)c->nics_per_node, c->nic_bytes_per_s * 8 / 1e9);
        snprintf(dom, sizeof dom, "%lld %s", (long long)st_cluster_domain(c), st_fabric_name(c->fabric));
        printf("%-13s %-14s %4lld %-14s %12.0f %14s %10.0f  %s\n", c->name, c->gpu.name, (long long)c->gpus_per_node,
               dom, c->intra_bytes_per_s / 1e9, nics, c->host_memory_bytes / 1073741824.0, c->source);
    }
    size_t ng;
    const st_gpu *gs = st_gpu_presets(&ng);
    /* mxfp8 is a yes/no: where a GPU has it, it runs at the fp8 peak (src/core/cluster.c) */
    printf("\n%-14s %8s %9s %10s %10s %5s %11s %10s %9s %5s %6s  %s\n", "gpu", "mem GiB", "HBM GB/s", "bf16 TF/s",
           "fp8 TF/s", "mxfp8", "nvfp4 TF/s", "fp32 TF/s", "GEMM eff", "SMs", "TDP W", "source");
    for (size_t i = 0; i < ng; i++) {
        const st_gpu *g = &gs[i];
        printf("%-14s %8.1f %9.0f %10.1f %10.1f %5s %11.1f %10.1f %9.3f %5d %6.0f  %s\n", g->name,
               g->memory_bytes / 1073741824.0, g->hbm_bytes_per_s / 1e9, g->peak_flops[ST_DT_BF16] / 1e12,
               g->peak_flops[ST_DT_FP8] / 1e12, g->peak_flops[ST_DT_MXFP8] > 0 ? "yes" : "no",
               g->peak_flops[ST_DT_NVFP4] / 1e12, g->peak_flops[ST_DT_FP32] / 1e12, g->gemm_efficiency, g->sms,
               g->tdp_watts, g->source);
    }
    return 0;
}

int st_cmd_profiles(int argc, char **argv, st_error *err) {
    st_cli_args a;
    int rc = st_cli_parse(argc, argv, ST_CLI_OPT_JSON, NULL, &a, NULL, profiles_help, err);
    if (rc || a.help) return rc;
    st_profile_entry *e;
    size_t n;
    if ((rc = st_profile_shipped(&e, &n, err))) return rc;
    if (a.json) {
        rc = st_out_profiles_json(stdout, e, n, err);
        free(e);
        return rc;
    }
    if (n == 0)
        puts("no shipped profiles (profiles measured on a GPU go under traces/; STRATA_PROFILE_PATH adds folders)");
    else
        printf("%-24s %-14s %-20s %s\n", "name", "gpu", "date", "source / path");
    for (size_t i = 0; i < n; i++) {
        if (e[i].error[0])
            printf("%-24s %-14s %-20s %s: does not load: %s\n", e[i].name, "-", "-", e[i].path, e[i].error);
        else
            printf("%-24s %-14s %-20s %s (%s)\n", e[i].name, e[i].gpu, e[i].date, e[i].source, e[i].path);
    }
    free(e);
    return 0;
}
