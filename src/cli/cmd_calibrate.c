/* cmd_calibrate.c: `strata calibrate`: a PyTorch profiler (Kineto) trace to a calibration profile
 * (profiler/kineto.c), or the measured times of a user's runs to a calibrated cluster
 * (profiler/fit.c); written atomically, what was read and fitted goes to stdout. Needs no GPU. */
#include "profiler/profiler.h"
#include "src/cli/cli.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const char help_text[] =
    "usage: strata calibrate --kineto TRACE.json[.gz] --out PROFILE.json [--gpu NAME] [--gpus-per-node N]\n"
    "       strata calibrate --runs RUNS.csv --cluster C --out FITTED.json [--seed N] [--folds K]\n"
    "                        [--fit-fraction F] [--residuals FILE]\n"
    "\n"
    "  --kineto FILE       PyTorch profiler trace (export_chrome_trace; gzip is read as is), recorded\n"
    "                      with ProfilerActivity.CUDA and record_shapes=True; or the rank traces of\n"
    "                      one job: a folder of them, or FILE,FILE,...\n"
    "  --out FILE          the calibration profile to write (for --profile of estimate, plan, compare, sim)\n"
    "  --gpu NAME          the GPU the trace ran on: a preset, or the gpu.name of your cluster JSON\n"
    "                      (default: from the trace's deviceProperties: a preset by name, or by SM\n"
    "                      count and memory, else the device's own name)\n"
    "  --gpus-per-node N   collectives over more ranks count as inter-node (default 8)\n"
    "\n"
    "  --runs FILE         CSV of runs you made: a header with model,gpus,plan,measured_s (model: a\n"
    "                      preset or a file; plan: an inline spec; seconds per iteration), optional\n"
    "                      `group` (rows whose order is judged, Kendall tau-b); other columns ignored\n"
    "  --cluster C         the cluster they ran on, as you know it (a preset or a JSON); --out gets it\n"
    "                      with the fields the runs pin down fitted (GEMM efficiency, HBM bandwidth,\n"
    "                      intra- and inter-node bandwidth and latency, the GPU's idle time and the\n"
    "                      host's time per kernel, small GEMMs' efficiency) and their provenance\n"
    "  --seed N            seed of the folds and of --fit-fraction's draw (default 1)\n"
    "  --folds K           k of the k-fold cross-validated error (default 5)\n"
    "  --fit-fraction F    fit a seeded F of the rows (0 < F <= 1, default 1) and report the rest as\n"
    "                      held out\n"
    "  --residuals FILE    also write each row's measured and predicted time (CSV: line, fit or\n"
    "                      held_out, group, measured_s, predicted_s, error_pct)\n"
    "\n"
    "Exit status: 0 success, 2 bad input (nothing is written).\n";

/* what was read, used and fitted */
static void print_summary(FILE *mem, const st_calib *cal, const char *kineto_arg, const st_cli_args *a) {
    const st_calib_summary *s = st_calib_get_summary(cal);
    fprintf(mem, "trace        %s: %lld events, %lld GPU kernels%s%s\n", kineto_arg, (long long)s->events,
            (long long)s->kernels, s->device[0] ? " on " : "", s->device);
    fprintf(mem, "gpu          %s%s%s%s\n", s->gpu, a->gpu ? " (--gpu)" : "", s->gpu_note[0] ? ": " : "", s->gpu_note);
    fprintf(mem, "used         %lld kernels in %lld calls", (long long)s->used,
            (long long)(s->samples[0] + s->samples[1] + s->samples[2]));
    if (s->samples[3]) fprintf(mem, " and %lld pinned host<->device copies", (long long)s->samples[3]);
    const struct {
        int64_t n;
        const char *why;
    } skipped[] = {{s->unlinked, "not linked to an operator"},
                   {s->unclassified, "of operators strata has no class for"},
                   {s->no_shapes, "without shapes or message sizes"},
                   {s->untimed, "without a duration"}};
    int first = 1;
    for (size_t i = 0; i < sizeof skipped / sizeof skipped[0]; i++) {
        if (!skipped[i].n) continue;
        fprintf(mem, "%s%lld %s", first ? "; not used: " : ", ", (long long)skipped[i].n, skipped[i].why);
        first = 0;
    }
    fputc('\n', mem);
    if (s->files > 1) {
        fprintf(mem, "ranks        %d traces of one job", s->files);
        if (s->world_size > 0) fprintf(mem, " (world size %lld)", (long long)s->world_size);
        fprintf(mem, ": %lld collective calls matched across ranks, %.6g ms of transfer (the fastest rank's) and "
                "%.6g ms of waiting for the slowest rank, left out of the tables\n",
                (long long)s->coll_matched, s->coll_transfer_s * 1e3, s->coll_wait_s * 1e3);
    } else if (s->samples[2]) {
        fprintf(mem, "ranks        one trace: each collective's time includes its wait for the slowest rank (give "
                "every rank's trace, a folder, to separate them)\n");
    }
    /* cost/profile.c prices a group of another size with the nearest group size's table */
    if (s->samples[2]) {
        char sizes[48];
        if (s->coll_ranks_min == s->coll_ranks_max)
            snprintf(sizes, sizeof sizes, "%d", s->coll_ranks_min);
        else
            snprintf(sizes, sizeof sizes, "%d to %d", s->coll_ranks_min, s->coll_ranks_max);
        fprintf(mem, "group sizes  collectives measured over %s ranks: other group sizes are priced with the nearest "
                "one's bus bandwidth (nccl-tests' busBw, the ring's 2(n-1)/n taken out): scaled, not measured\n",
                sizes);
    }
    st_calib_describe(cal, mem);
    fprintf(mem, "wrote %s\n", a->out);
}

/* --runs: fit, write, then say what was fitted */
static int runs(const st_cli_args *a, const char *runs_arg, const char *seed_arg, const char *folds_arg,
                const char *frac_arg, const char *resid_arg, st_error *err) {
    st_fit_opts fo;
    st_fit *fit = NULL;
    st_cli_text text = {0};
    int64_t v;
    int rc;
    st_fit_opts_init(&fo);
    if ((rc = st_cli_require(err, "--runs", runs_arg, "--cluster", a->cluster, "--out", a->out, (const char *)NULL)))
        goto out;
    if (a->gpu) {
        rc = st_error_set(err, ST_EUSAGE, NULL, NULL, "--runs takes the GPU from --cluster: no --gpu");
        goto out;
    }
    if (seed_arg) {
        if ((rc = st_cli_int("seed", seed_arg, 0, INT64_MAX, &v, err))) goto out;
        fo.seed = (uint64_t)v;
    }
    if (folds_arg) {
        if ((rc = st_cli_int("folds", folds_arg, 2, 100, &v, err))) goto out;
        fo.folds = (int)v;
    }
    if (frac_arg) {
        char *end;
        errno = 0;
        fo.fit_fraction = strtod(frac_arg, &end);
        if (end == frac_arg || *end || errno || !(fo.fit_fraction > 0 && fo.fit_fraction <= 1)) {
            rc = st_error_set(err, ST_EUSAGE, NULL, NULL, "--fit-fraction must be a number in (0, 1] (got '%s')",
                              frac_arg);
            goto out;
        }
    }
    if ((rc = st_fit_runs(runs_arg, a->cluster, &fo, &fit, err)) || (rc = st_fit_save(fit, a->out, err)) ||
        (resid_arg && (rc = st_fit_write_residuals(fit, resid_arg, err))))
        goto out;
    if (!strcmp(a->out, "-")) goto out; /* the cluster was the output */
    if ((rc = st_cli_text_open(&text, err))) goto out;
    st_fit_describe(fit, text.f);
    fprintf(text.f, "wrote %s\n", a->out);
    st_cli_text_print(&text);
out:
    st_cli_text_destroy(&text);
    st_fit_free(fit);
    return rc;
}

int st_cmd_calibrate(int argc, char **argv, st_error *err) {
    st_cli_args a;
    const char *kineto_arg = NULL, *gpn_arg = NULL, *runs_arg = NULL, *seed_arg = NULL, *folds_arg = NULL,
               *frac_arg = NULL, *resid_arg = NULL;
    int rc;
    const st_cli_opt own[] = {{"kineto", &kineto_arg, NULL}, {"gpus-per-node", &gpn_arg, NULL},
                              {"runs", &runs_arg, NULL},     {"seed", &seed_arg, NULL},
                              {"folds", &folds_arg, NULL},   {"fit-fraction", &frac_arg, NULL},
                              {"residuals", &resid_arg, NULL},
                              {NULL, NULL, NULL}};
    st_calib *cal = NULL;
    st_calib_opts co;
    st_cli_text text = {0};

    if ((rc = st_cli_parse(argc, argv, ST_CLI_OPT_OUT | ST_CLI_OPT_GPU | ST_CLI_OPT_CLUSTER, own, &a, NULL, help_text,
                           err)) ||
        a.help)
        goto out;
    if (runs_arg && kineto_arg) {
        rc = st_error_set(err, ST_EUSAGE, NULL, NULL, "--kineto and --runs are two calibrations: give one");
        goto out;
    }
    if (runs_arg || seed_arg || folds_arg || frac_arg || resid_arg) {
        rc = runs(&a, runs_arg, seed_arg, folds_arg, frac_arg, resid_arg, err);
        goto out;
    }
    if (a.cluster) {
        rc = st_error_set(err, ST_EUSAGE, NULL, NULL, "--cluster goes with --runs (a trace names its own GPU)");
        goto out;
    }
    if ((rc = st_cli_require(err, "--kineto", kineto_arg, "--out", a.out, (const char *)NULL))) goto out;
    if ((rc = st_cli_out_check("out", a.out, &a, "kineto", kineto_arg, err))) goto out;
    st_calib_opts_init(&co);
    int64_t v;
    if (gpn_arg) {
        if ((rc = st_cli_int("gpus-per-node", gpn_arg, 1, 1024, &v, err))) goto out;
        co.gpus_per_node = (int)v;
    }
    /* a preset, or the gpu.name of a cluster JSON (then the profile cannot be scaled to others) */
    if (a.gpu && (rc = st_cli_gpu_name(&a, err))) goto out;
    co.gpu = a.gpu;
    if ((rc = st_calib_import_kineto(kineto_arg, &co, &cal, err))) goto out;
    if ((rc = st_calib_save(cal, a.out, err))) goto out;
    st_cli_gpu_note("calibrate", &a);
    if (!strcmp(a.out, "-")) goto out; /* the profile was the output */

    if ((rc = st_cli_text_open(&text, err))) goto out;
    print_summary(text.f, cal, kineto_arg, &a);
    st_cli_text_print(&text);
out:
    st_cli_text_destroy(&text);
    st_calib_free(cal);
    return rc;
}
