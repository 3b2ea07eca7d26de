/* cmd_profile.c: `strata profile`: microbenchmarks on the local GPU(s) to a calibration profile
 * (issue 6). The shapes and the fitting are profiler/prof.c, the measuring profiler/cuda.c (or
 * profiler/nocuda.c, which says that this strata was built without CUDA). Input is checked before
 * any GPU work, and the output folder is tried before minutes of measuring are spent; the profile
 * is written atomically, so a failed run leaves no file. */
#include "src/cli/cli.h"
#include "exec/exec.h"
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
    "\n"
    "       mpirun -np N strata profile --cpu --out CLUSTER.json [--profile-out PROFILE.json] [--quick]\n"
    "                      [--model M --plan P]\n"
    "\n"
    "  --cpu             measures this machine for strata run instead: the executor's GEMMs (OpenBLAS, one\n"
    "                    thread per rank), attention, norm, activation and Adam kernels (the plan's shapes\n"
    "                    with --model/--plan, else a sweep) on all N ranks at once, and Open MPI's\n"
    "                    all-reduce, all-gather, reduce-scatter (2..N ranks) and send/recv over sizes;\n"
    "                    --out writes a cluster of N \"cpu\" GPUs (what each number is: its \"calibration\"\n"
    "                    object), --profile-out the calibration profile that goes with it\n"
    "\n"
    "Exit status: 0 success, 2 bad input, no CUDA GPU, or a build without CUDA (nothing is written).\n";

/* `path` can be replaced (st__out_target) and a file created next to it (the atomic write puts its
 * temporary there): asked before anything is measured. */
static int check_writable(const char *arg, st_error *err) {
    if (!strcmp(arg, "-")) return 0;
    char *target = st__out_target(arg, err), *tmp = NULL;
    if (!target) return err->code;
    int fd = st__tmp_create(target, arg, &tmp, err);
    free(target);
    if (fd < 0) return err->code;
    close(fd);
    st__tmp_discard(tmp);
    return 0;
}

/* Model and plan, the plan finalized. Without --cluster, on as many H100 nodes as it needs (dp = ep
 * unless given): the cluster changes no shape (st_shard holds tp, cp, ep, sp, mbs, seq and dtype). */
static int plan_finalized(const char *model_arg, const char *plan_arg, const char *cluster_arg, st_model *m,
                          st_cluster *c, st_plan *p, st_error *err) {
    int rc;
    if ((rc = st_model_resolve(model_arg, m, err))) return rc;
    st_plan_defaults(p);
    if ((rc = st_plan_resolve(plan_arg, p, err))) return rc;
    const char *file = err->file[0] ? err->file : NULL;
    int64_t gpus = 0;
    if (cluster_arg) {
        if ((rc = st_cluster_resolve(cluster_arg, 0, c, err))) return rc;
    } else {
        int64_t dp = (p->given & ST_GIVEN_DP) ? p->dp : p->ep; /* ep must divide dp*cp */
        gpus = (int64_t)p->tp * p->pp * p->cp * dp;
        if (gpus < 1 || gpus > ST_MAX_GPUS)
            return st_error_set(err, ST_EINVAL, file, "dp", "tp*pp*cp*dp = %lld GPUs is out of range 1..%d",
                                (long long)gpus, ST_MAX_GPUS);
        if ((rc = st_cluster_resolve("dgx-h100", (gpus + 7) / 8 * 8, c, err))) return rc;
    }
    return st_plan_finalize(p, m, c, gpus, file, err);
}

/* The plan's per-rank shapes (plan_finalized). */
static int plan_shapes(const char *model_arg, const char *plan_arg, const char *cluster_arg, st__prof_opts *o,
                       st__prof_gemm **g, st__prof_mem **mm, st__prof_coll **pc, int *inter, st_error *err) {
    st_model m;
    st_cluster c;
    st_plan *p = malloc(sizeof *p);
    int rc;
    if (!p) return st_error_set(err, ST_ENOMEM, NULL, NULL, "out of memory");
    if ((rc = plan_finalized(model_arg, plan_arg, cluster_arg, &m, &c, p, err))) goto out;
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

/* --cpu under mpirun: every rank measures; rank 0 writes the cluster (and profile) and prints, and
 * alone names an error (the others fail quietly, as strata run's do) */
static int profile_cpu(const st_cli_args *a, int quick, const char *profile_out, st_error *err) {
    st_model m;
    st_cluster c;
    st_plan *p = NULL;
    st__prof_cpu pc;
    st_cli_text text = {0};
    int rank = 0, size = 1, rc;
    st__prof_cpu_init(&pc);
    if ((rc = st_exec_mpi_init(&rank, &size, err))) goto out;
    if (a->plan) {
        if (!(p = malloc(sizeof *p))) {
            rc = st_error_set(err, ST_ENOMEM, NULL, NULL, "out of memory");
            goto out;
        }
        if ((rc = plan_finalized(a->model, a->plan, a->cluster, &m, &c, p, err))) goto out;
    }
    if ((rc = check_writable(a->out, err)) || (profile_out && (rc = check_writable(profile_out, err)))) goto out;
    if ((rc = st__prof_cpu_run(p ? &m : NULL, p, quick, &pc, err)) || rank != 0) goto out;
    if ((rc = st__prof_cpu_save_cluster(&pc, a->out, err))) goto out;
    if (profile_out && (rc = st__prof_save(&pc.r, profile_out, err))) goto out;
    if (!strcmp(a->out, "-") || (profile_out && !strcmp(profile_out, "-"))) goto out;
    if ((rc = st_cli_text_open(&text, err))) goto out;
    st__prof_cpu_describe(&pc, text.f);
    fprintf(text.f, "wrote %s%s%s\n", a->out, profile_out ? " and " : "", profile_out ? profile_out : "");
    st_cli_text_print(&text);
out:
    st_cli_text_destroy(&text);
    st__prof_cpu_destroy(&pc);
    free(p);
    if (rc < 0 && rank == 0) st_cli_report("profile", err);
    st_exec_mpi_barrier();
    st_exec_mpi_finalize();
    return rc < 0 ? 2 : rc;
}

/* --timer and --device, then --gpu, in that order */
static int prof_opts(const st_cli_args *a, const char *timer_arg, const char *device_arg, st__prof_opts *o,
                     st_error *err) {
    int rc;
    if (timer_arg) {
        if (!strcmp(timer_arg, "events"))
            o->events = 1;
        else if (strcmp(timer_arg, "cupti"))
            return st_error_set(err, ST_EUSAGE, NULL, NULL, "option '--timer': expected cupti or events, got '%s'",
                                timer_arg);
    }
    if (device_arg) {
        int64_t v;
        if ((rc = st_cli_int("device", device_arg, 0, 1023, &v, err))) return rc;
        o->device = (int)v;
    }
    /* a preset, or the gpu.name of a cluster JSON, as strata calibrate --gpu */
    if (a->gpu && (rc = st_cli_gpu_name(a, err))) return rc;
    o->gpu = a->gpu;
    return 0;
}

/* the device, the timer, the plan's shapes (and what one machine could not time), the tables */
static void print_summary(FILE *mem, const st_cli_args *a, const st__prof_opts *o, const st__prof_result *r,
                          const st__prof_coll *pc, int inter) {
    fprintf(mem, "gpu          %s (%s; driver %s, CUDA %s)\n", r->gpu, r->device, r->driver[0] ? r->driver : "unknown",
            r->cuda[0] ? r->cuda : "unknown");
    fprintf(mem, "timer        %s\n", r->timer);
    if (a->plan) {
        fprintf(mem, "plan         %s on %s: %d GEMM shapes, %d memory-bound sizes, %d collective sizes", a->plan,
                a->model, o->nplan_gemms, o->nplan_mems, o->nplan_colls + inter);
        /* what one machine could not measure: groups larger than its GPUs, groups across nodes */
        int big = 0, most = 0;
        for (int i = 0; i < o->nplan_colls; i++)
            if (pc[i].ranks > r->devices) big++, most = pc[i].ranks > most ? pc[i].ranks : most;
        fprintf(mem, " (%d timed", r->plan_colls_timed);
        if (big)
            fprintf(mem, "; %d over up to %d GPUs, more than the %d here, not", big, most, r->devices);
        if (inter) fprintf(mem, "; %d across nodes not: one machine is one node", inter);
        fprintf(mem, ")\n");
    }
    st__prof_describe(r, mem);
    fprintf(mem, "wrote %s\n", a->out);
}

int st_cmd_profile(int argc, char **argv, st_error *err) {
    st_cli_args a;
    const char *device_arg = NULL, *timer_arg = NULL, *profile_out = NULL;
    int quick = 0, cpu = 0, rc;
    const st_cli_opt own[] = {{"device", &device_arg, NULL},       {"timer", &timer_arg, NULL},
                              {"quick", NULL, &quick},             {"cpu", NULL, &cpu},
                              {"profile-out", &profile_out, NULL}, {NULL, NULL, NULL}};
    st__prof_opts o;
    st__prof_result r;
    st__prof_gemm *pg = NULL;
    st__prof_mem *pm = NULL;
    st__prof_coll *pc = NULL;
    int inter = 0;
    st_cli_text text = {0};

    memset(&o, 0, sizeof o);
    st__prof_result_init(&r);
    const unsigned take = ST_CLI_OPT_OUT | ST_CLI_OPT_MODEL | ST_CLI_OPT_PLAN | ST_CLI_OPT_CLUSTER | ST_CLI_OPT_GPU;
    if ((rc = st_cli_parse(argc, argv, take, own, &a, NULL, help_text, err))) goto out;
    if (a.help) {
        printf("\nThis strata: %s.\n", st__prof_build_info());
        goto out;
    }
    if ((rc = st_cli_require(err, "--out", a.out, (const char *)NULL))) goto out;
    if (!a.model != !a.plan) {
        rc = st_error_set(err, ST_EUSAGE, NULL, NULL, "--model and --plan go together (see --help)");
        goto out;
    }
    if (a.cluster && !a.plan) {
        rc = st_error_set(err, ST_EUSAGE, NULL, NULL, "--cluster only says what --plan is for (see --help)");
        goto out;
    }
    if (!cpu && profile_out) {
        rc = st_error_set(err, ST_EUSAGE, NULL, NULL, "--profile-out goes with --cpu (see --help)");
        goto out;
    }
    if (cpu) {
        if (device_arg || timer_arg || a.gpu) {
            rc = st_error_set(err, ST_EUSAGE, NULL, NULL, "--device, --timer and --gpu are for GPUs, not --cpu");
            goto out;
        }
        return profile_cpu(&a, quick, profile_out, err);
    }
    o.quick = quick;
    if ((rc = prof_opts(&a, timer_arg, device_arg, &o, err))) goto out;
    if (a.plan && (rc = plan_shapes(a.model, a.plan, a.cluster, &o, &pg, &pm, &pc, &inter, err))) goto out;
    if ((rc = check_writable(a.out, err))) goto out;
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
    if ((rc = st__prof_save(&r, a.out, err))) goto out;
    for (int i = 0; i < r.nnotes; i++) st_cli_note("profile", "%s", r.notes[i]);
    st_cli_gpu_note("profile", &a);
    if (!strcmp(a.out, "-")) goto out; /* the profile was the output */

    if ((rc = st_cli_text_open(&text, err))) goto out;
    print_summary(text.f, &a, &o, &r, pc, inter);
    st_cli_text_print(&text);
out:
    st_cli_text_destroy(&text);
    free(pg);
    free(pm);
    free(pc);
    st__prof_result_destroy(&r);
    return rc;
}
