/* cmd_calibrate.c: `strata calibrate`: a PyTorch profiler (Kineto) trace to a calibration profile
 * (profiler/kineto.c), written atomically; what was read and fitted goes to stdout. Needs no GPU. */
#include "profiler/profiler.h"
#include "src/cli/cli.h"

#include <stdlib.h>
#include <string.h>

static const char help_text[] =
    "usage: strata calibrate --kineto TRACE.json[.gz] --out PROFILE.json [--gpu NAME] [--gpus-per-node N]\n"
    "\n"
    "  --kineto FILE       PyTorch profiler trace (export_chrome_trace; gzip is read as is), recorded\n"
    "                      with ProfilerActivity.CUDA and record_shapes=True\n"
    "  --out FILE          the calibration profile to write (for --profile of estimate, plan, compare, sim)\n"
    "  --gpu NAME          the GPU preset the trace ran on (default: from the trace's deviceProperties)\n"
    "  --gpus-per-node N   collectives over more ranks count as inter-node (default 8)\n"
    "\n"
    "Exit status: 0 success, 2 bad input (nothing is written).\n";

int st_cmd_calibrate(int argc, char **argv, st_error *err) {
    const char *kineto_arg = NULL, *out_arg = NULL, *gpu_arg = NULL, *gpn_arg = NULL;
    int help = 0, rc;
    st_cli_opt opts[] = {{"kineto", &kineto_arg, NULL},     {"out", &out_arg, NULL},
                         {"gpu", &gpu_arg, NULL},           {"gpus-per-node", &gpn_arg, NULL},
                         {"help", NULL, &help},             {NULL, NULL, NULL}};
    st_calib *cal = NULL;
    st_calib_opts co;
    char *text = NULL;
    size_t text_len = 0;
    FILE *mem = NULL;

    if ((rc = st_cli_parse(argc, argv, opts, NULL, err))) goto out;
    if (help) {
        fputs(help_text, stdout);
        goto out;
    }
    if (!kineto_arg || !out_arg) {
        rc = st_error_set(err, ST_EUSAGE, NULL, NULL, "--kineto and --out are required (see --help)");
        goto out;
    }
    st_calib_opts_init(&co);
    int64_t v;
    if (gpn_arg) {
        if ((rc = st_cli_int("gpus-per-node", gpn_arg, 1, 1024, &v, err))) goto out;
        co.gpus_per_node = (int)v;
    }
    st_gpu g;
    int custom_gpu = 0;
    if (gpu_arg) {
        /* a preset, or the gpu.name of a cluster JSON (then the profile cannot be scaled to others) */
        size_t len = strlen(gpu_arg);
        int ok = len < sizeof g.name;
        for (const char *s = gpu_arg; ok && *s; s++) ok = *s > ' ' && *s < 127 && *s != '"' && *s != '\\';
        if (!ok) {
            rc = st_error_set(err, ST_EUSAGE, NULL, NULL,
                              "option '--gpu': '%s' is not a GPU name (1 to %zu printable characters, no spaces)",
                              gpu_arg, sizeof g.name - 1);
            goto out;
        }
        custom_gpu = st_gpu_preset(gpu_arg, &g) != 0;
        co.gpu = gpu_arg;
    }
    if ((rc = st_calib_import_kineto(kineto_arg, &co, &cal, err))) goto out;
    if ((rc = st_calib_save(cal, out_arg, err))) goto out;
    if (custom_gpu)
        fprintf(stderr,
                "strata calibrate: note: '%s' is not a GPU preset: the profile applies to clusters whose gpu.name is "
                "'%s' and cannot be scaled to other GPUs\n",
                gpu_arg, gpu_arg);
    if (!strcmp(out_arg, "-")) goto out; /* the profile was the output */

    if (!(mem = open_memstream(&text, &text_len))) {
        rc = st_error_set(err, ST_ENOMEM, NULL, NULL, "out of memory");
        goto out;
    }
    const st_calib_summary *s = st_calib_get_summary(cal);
    fprintf(mem, "trace        %s: %lld events, %lld GPU kernels%s%s\n", kineto_arg, (long long)s->events,
            (long long)s->kernels, s->device[0] ? " on " : "", s->device);
    fprintf(mem, "gpu          %s%s\n", s->gpu, gpu_arg ? " (--gpu)" : "");
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
    st_calib_describe(cal, mem);
    fprintf(mem, "wrote %s\n", out_arg);
    fclose(mem);
    mem = NULL;
    fwrite(text, 1, text_len, stdout);
out:
    if (mem) fclose(mem);
    free(text);
    st_calib_free(cal);
    return rc;
}
