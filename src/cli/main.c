/* main.c: the strata command: dispatch to a subcommand, map errors to exit status (0 success,
 * 1 no feasible plan / does not fit, 2 bad input or usage). The only file that exits. */
#include "config.h"
#include "src/cli/cli.h"

#include <string.h>

static const char usage[] =
    "usage: strata COMMAND [OPTIONS]\n"
    "\n"
    "Predicts how fast a model trains on a cluster under a parallelization plan, and finds the best plan.\n"
    "\n"
    "commands:\n"
    "  estimate   iteration time, throughput, MFU and memory of one plan\n"
    "  plan       search the hybrid-parallel space and rank the plans\n"
    "  sim        simulate one iteration of a plan on every rank (discrete-event)\n"
    "  run        train the model under a plan for real, one MPI process per rank (CPU or GPU)\n"
    "  compare    the best plan on each of several clusters: time and cost to train\n"
    "  validate   predicted against measured iteration times of published runs (a points file)\n"
    "  plot       charts (gnuplot) of plan, compare and estimate results\n"
    "  calibrate  a calibration profile (--profile) from a PyTorch profiler trace\n"
    "  profile    a calibration profile (--profile) from microbenchmarks on this machine's GPUs\n"
    "  models     list the model presets\n"
    "  clusters   list the cluster and GPU presets\n"
    "  profiles   list the shipped calibration profiles (--profile NAME)\n"
    "\n"
    "Run 'strata COMMAND --help' for a command's options. Exit status: 0 success, 1 no feasible plan\n"
    "or the plan does not fit, 2 bad input or usage.\n";

int main(int argc, char **argv) {
    st_io_init(); /* before any JSON is built */
    st_search_init();
    st_signals_install(); /* Ctrl-C leaves no temporary file behind */
    if (argc < 2) {
        fputs(usage, stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
        fputs(usage, stdout);
        return 0;
    }
    if (!strcmp(cmd, "--version")) {
        printf("strata %s\n", PACKAGE_VERSION);
        return 0;
    }
    static const struct {
        const char *name;
        int (*fn)(int, char **, st_error *);
    } cmds[] = {{"estimate", st_cmd_estimate},
                {"plan", st_cmd_plan},
                {"sim", st_cmd_sim},
                {"run", st_cmd_run},
                {"compare", st_cmd_compare},
                {"validate", st_cmd_validate},
                {"plot", st_cmd_plot},
                {"calibrate", st_cmd_calibrate},
                {"profile", st_cmd_profile},
                {"models", st_cmd_models},
                {"clusters", st_cmd_clusters},
                {"profiles", st_cmd_profiles}};
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        if (strcmp(cmd, cmds[i].name)) continue;
        st_error err;
        st_error_clear(&err);
        int rc = cmds[i].fn(argc - 1, argv + 1, &err);
        /* a result that never reached its reader is a failure, not a success */
        if (fflush(stdout) != 0 || ferror(stdout)) {
            fprintf(stderr, "strata %s: write error on standard output\n", cmd);
            return 2;
        }
        if (rc == 0) return 0;
        if (rc > 0) return rc; /* the command printed its result and chose the status */
        st_cli_report(cmd, &err);
        return rc == ST_ENOFIT || rc == ST_ENOPLAN ? 1 : 2;
    }
    fprintf(stderr, "strata: unknown command '%s' (see strata --help)\n", cmd);
    return 2;
}
