/* cmd_profile.c: `strata profile`: microbenchmarks on the local GPU(s) to a calibration profile
 * (issue 6). The shapes and the fitting are profiler/prof.c, the measuring profiler/cuda.c (or
 * profiler/nocuda.c, which says that this strata was built without CUDA). Input is checked before
 * any GPU work, and the output folder is tried before minutes of measuring are spent; the profile
 * is written atomically, so a failed run leaves no file. */
#include "src/cli/cli.h"
#include "profiler/profiler.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char help_text[] =
    "usage: strata profile --out PROFILE.json [--quick] [--model M --plan P [--cluster C]]\n"
    "                      [--gpu NAME] [--device N] [--timer cupti|events]\n"
    "\n"
    "Times cuBLAS/cuBLASLt GEMMs (bf16, fp16, tf32, fp32, and fp8 where the GPU has it) over the shapes of\n"
    "the model presets under tp = 1..8, batched GEMMs of attention, memory-bound kernels (layer norm,\n"
    "RMS norm, softmax, GeLU, SwiGLU, residual add, Adam), pinned host<->device copies and, with more\n"
    "than one GPU visible, NCCL collectives; writes a calibration profile for --profile.\n"
    "\n"
    "  --out FILE        the calibration profile to write (\"-\" for stdout)\n"
    "  --quick           a small grid (bf16 GEMMs, a few sizes): seconds instead of minutes\n"
    "  --model M         with --plan: also time this plan's per-rank operator shapes, kept as exact\n"
    "  --plan P          points of the tables (inline spec or plan JSON)\n"
    "  --cluster C       the cluster the plan is for (default: as many H100s as it needs; only\n"
    "                    the plan's shapes matter here)\n"
    "  --gpu NAME        the GPU preset to file the profile under (default: from the device name)\n"
    "  --device N        the CUDA device for the single-GPU benchmarks (default 0)\n"
    "  --timer T         cupti (default: CUPTI activity records, CUDA events where CUPTI cannot be\n"
    "                    used) or events\n"
    "\n"
    "Exit status: 0 success, 2 bad input, no CUDA GPU, or a build without CUDA (nothing is written).\n";

/* `path` can be replaced (st__out_target) and a file created next to it (the atomic write puts its
 * temporary there): asked before anything is measured. */
static int check_writable(const char *arg, st_error *err) {
    if (!strcmp(arg, "-")) return 0;
    char *target = st__out_target(arg, err);
    if (!target) return err->code;
    int rc = 0;
    const char *path = target;
    char tmp[4096];
    const char *slash = strrchr(path, '/');
    int dirlen = slash ? (int)(slash - path) : 0;
    if (snprintf(tmp, sizeof tmp, "%.*s%s.strata-profile-XXXXXX", dirlen, path, slash ? "/" : "") >= (int)sizeof tmp) {
        rc = st_error_set(err, ST_EIO, arg, NULL, "the path is too long");
        goto out;
    }
    if (slash && dirlen == 0) snprintf(tmp, sizeof tmp, "/.strata-profile-XXXXXX");
    int fd = mkstemp(tmp);
    if (fd < 0) {
        rc = st_error_set(err, ST_EIO, arg, NULL, "cannot write there: %s", strerror(errno));
        goto out;
    }
    close(fd);
    unlink(tmp);
out:
    free(target);
    return rc;
}

/* The plan's per-rank shapes. Without --cluster, the plan is finalized on as many H100 nodes as it
 * needs (dp = ep unless given): the cluster changes no shape (st_shard holds tp, cp, ep, sp, mbs,
 * seq and dtype). */
static int plan_shapes(const char *model_arg, const char *plan_arg, const char *cluster_arg, st__prof_opts *o,
                       st__prof_gemm **g, st__prof_mem **mm, st__prof_coll **pc, int *inter, st_error *err) {
    st_model m;
    st_cluster c;
    st_plan *p = malloc(sizeof *p);
    int rc;
    if (!p) return st_error_set(err, ST_ENOMEM, NULL, NULL, "out of memory");
    if ((rc = st_model_resolve(model_arg, &m, err))) goto out;
    st_plan_defaults(p);
    if ((rc = st_plan_resolve(plan_arg, p, err))) goto out;
    const char *file = err->file[0] ? err->file : NULL;
    int64_t gpus = 0;
    if (cluster_arg) {
        if ((rc = st_cluster_resolve(cluster_arg, 0, &c, err))) goto out;
    } else {
        int64_t dp = (p->given & ST_GIVEN_DP) ? p->dp : p->ep; /* ep must divide dp*cp */
        gpus = (int64_t)p->tp * p->pp * p->cp * dp;
        if (gpus < 1 || gpus > ST_MAX_GPUS) {
            rc = st_error_set(err, ST_EINVAL, file, "dp", "tp*pp*cp*dp = %lld GPUs is out of range 1..%d",
                              (long long)gpus, ST_MAX_GPUS);
            goto out;
        }
        if ((rc = st_cluster_resolve("dgx-h100", (gpus + 7) / 8 * 8, &c, err))) goto out;
    }
    if ((rc = st_plan_finalize(p, &m, &c, gpus, file, err))) goto out;
    if ((rc = st__prof_plan_shapes(&m, p, g, &o->nplan_gemms, mm, &o->nplan_mems)) < 0) {
        rc = st_error_set(err, rc, NULL, "plan", "the plan's operators cannot be listed");
        goto out;
    }
    /* the collectives, as the estimator prices them on this cluster (which decides what is inside
     * a node) */
    if ((rc = st__prof_plan_colls(&m, &c, p, pc, &o->nplan_colls, inter)) < 0) {
        rc = st_error_set(err, rc, NULL, "plan", "the plan's collectives cannot be listed");
        goto out;
    }
    o->plan_gemms = *g;
    o->plan_mems = *mm;
    o->plan_colls = *pc;
    o->plan_dtype = p->dtype;
out:
    free(p);
    return rc;
}

int st_cmd_profile(int argc, char **argv, st_error *err) {
    const char *out_arg = NULL, *model_arg = NULL, *plan_arg = NULL, *cluster_arg = NULL, *gpu_arg = NULL;
    const char *device_arg = NULL, *timer_arg = NULL;
    int help = 0, quick = 0, rc;
    st_cli_opt opts[] = {{"out", &out_arg, NULL},     {"model", &model_arg, NULL},
                         {"plan", &plan_arg, NULL},   {"cluster", &cluster_arg, NULL},
                         {"gpu", &gpu_arg, NULL},     {"device", &device_arg, NULL},
                         {"timer", &timer_arg, NULL}, {"quick", NULL, &quick},
                         {"help", NULL, &help},       {NULL, NULL, NULL}};
    st__prof_opts o;
    st__prof_result r;
    st__prof_gemm *pg = NULL;
    st__prof_mem *pm = NULL;
    st__prof_coll *pc = NULL;
    int inter = 0;
    char *text = NULL;
    size_t text_len = 0;
    FILE *mem = NULL;

    memset(&o, 0, sizeof o);
    st__prof_result_init(&r);
    if ((rc = st_cli_parse(argc, argv, opts, NULL, err))) goto out;
    if (help) {
        fputs(help_text, stdout);
        printf("\nThis strata: %s.\n", st__prof_build_info());
        goto out;
    }
    if (!out_arg) {
        rc = st_error_set(err, ST_EUSAGE, NULL, NULL, "--out is required (see --help)");
        goto out;
    }
    if (!model_arg != !plan_arg) {
        rc = st_error_set(err, ST_EUSAGE, NULL, NULL, "--model and --plan go together (see --help)");
        goto out;
    }
    if (cluster_arg && !plan_arg) {
        rc = st_error_set(err, ST_EUSAGE, NULL, NULL, "--cluster only says what --plan is for (see --help)");
        goto out;
    }
    o.quick = quick;
    if (timer_arg) {
        if (!strcmp(timer_arg, "events")) {
            o.events = 1;
        } else if (strcmp(timer_arg, "cupti")) {
            rc = st_error_set(err, ST_EUSAGE, NULL, NULL, "option '--timer': expected cupti or events, got '%s'",
                              timer_arg);
            goto out;
        }
    }
    if (device_arg) {
        int64_t v;
        if ((rc = st_cli_int("device", device_arg, 0, 1023, &v, err))) goto out;
        o.device = (int)v;
    }
    if (gpu_arg) {
        /* a preset, or the gpu.name of a cluster JSON, as strata calibrate --gpu */
        size_t len = strlen(gpu_arg);
        int ok = len < sizeof r.gpu;
        for (const char *s = gpu_arg; ok && *s; s++)
            ok = *s > ' ' && *s < 127 && *s != '"' && *s != '\\';
        if (!ok) {
            rc = st_error_set(err, ST_EUSAGE, NULL, NULL,
                              "option '--gpu': '%s' is not a GPU name (1 to %zu printable characters, no spaces)",
                              gpu_arg, sizeof r.gpu - 1);
            goto out;
        }
        o.gpu = gpu_arg;
    }
    if (plan_arg && (rc = plan_shapes(model_arg, plan_arg, cluster_arg, &o, &pg, &pm, &pc, &inter, err))) goto out;
    if ((rc = check_writable(out_arg, err))) goto out;
    if (isatty(STDERR_FILENO)) o.progress = stderr;

    if ((rc = st__prof_run(&o, &r, err))) goto out;
    st__prof_date(r.date, sizeof r.date);
    if ((rc = st__prof_fit(&r))) {
        rc = st_error_set(err, rc, NULL, NULL, "out of memory");
        goto out;
    }
    if (r.nt == 0) {
        rc = st_error_set(err, ST_EIO, NULL, NULL, "nothing could be measured%s%s", r.nnotes ? ": " : "",
                          r.nnotes ? r.notes[0] : "");
        goto out;
    }
    if ((rc = st__prof_save(&r, out_arg, err))) goto out;
    for (int i = 0; i < r.nnotes; i++)
        fprintf(stderr, "strata profile: note: %s\n", r.notes[i]);
    st_gpu preset;
    if (gpu_arg && st_gpu_preset(gpu_arg, &preset))
        fprintf(stderr,
                "strata profile: note: '%s' is not a GPU preset: the profile applies to clusters whose gpu.name is "
                "'%s' and cannot be scaled to other GPUs\n",
                gpu_arg, gpu_arg);
    if (!strcmp(out_arg, "-")) goto out; /* the profile was the output */

    if (!(mem = open_memstream(&text, &text_len))) {
        rc = st_error_set(err, ST_ENOMEM, NULL, NULL, "out of memory");
        goto out;
    }
    fprintf(mem, "gpu          %s (%s; driver %s, CUDA %s)\n", r.gpu, r.device, r.driver[0] ? r.driver : "unknown",
            r.cuda[0] ? r.cuda : "unknown");
    fprintf(mem, "timer        %s\n", r.timer);
    if (plan_arg) {
        fprintf(mem, "plan         %s on %s: %d GEMM shapes, %d memory-bound sizes, %d collective sizes", plan_arg,
                model_arg, o.nplan_gemms, o.nplan_mems, o.nplan_colls + inter);
        /* what one machine could not measure: groups larger than its GPUs, groups across nodes */
        int big = 0, most = 0;
        for (int i = 0; i < o.nplan_colls; i++)
            if (pc[i].ranks > r.devices) big++, most = pc[i].ranks > most ? pc[i].ranks : most;
        fprintf(mem, " (%d timed", r.plan_colls_timed);
        if (big)
            fprintf(mem, "; %d over up to %d GPUs, more than the %d here, not", big, most, r.devices);
        if (inter) fprintf(mem, "; %d across nodes not: one machine is one node", inter);
        fprintf(mem, ")\n");
    }
    st__prof_describe(&r, mem);
    fprintf(mem, "wrote %s\n", out_arg);
    fclose(mem);
    mem = NULL;
    fwrite(text, 1, text_len, stdout);
out:
    if (mem) fclose(mem);
    free(text);
    free(pg);
    free(pm);
    free(pc);
    st__prof_result_destroy(&r);
    return rc;
}
