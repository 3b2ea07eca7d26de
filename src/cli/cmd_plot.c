/* cmd_plot.c: `strata plot KIND --input FILE --out IMAGE`: read what another command wrote (plan,
 * estimate or compare --json, a Chrome trace, the accuracy CSV), draw it with gnuplot, and leave the
 * script and the numbers beside the image (src/report/plot.c, src/report/plot_io.c). */
#include "src/cli/cli.h"
#include "src/report/report.h"

#include <stdlib.h>
#include <string.h>

static const char help_text[] =
    "usage: strata plot KIND --input FILE --out IMAGE.png|.svg|.pdf [--top N] [--title T]\n"
    "\n"
    "kinds and their input:\n"
    "  strategies  strata plan --json: iteration time of the top N plans (bars), peak memory (y2)\n"
    "  breakdown   strata plan --json or strata estimate --json: stacked time components per plan\n"
    "  memory      strata estimate --json: stacked memory per pipeline stage, the GPU's capacity line\n"
    "  timeline    a Chrome trace (strata sim --trace): Gantt chart, one row per rank and stream\n"
    "  scaling     strata compare --json: tokens/s and MFU against GPUs, one line per cluster\n"
    "  hardware    strata compare --json: days (and cost) to train per cluster and GPU count; with\n"
    "              compare --energy a second panel: MWh to train, tokens per joule (and energy cost)\n"
    "  accuracy    a CSV with columns name, measured, predicted (scripts/validate.sh --csv)\n"
    "\n"
    "  --input FILE  the input (its keys must match the kind)\n"
    "  --out IMAGE   the image; its extension picks the format. IMAGE-stem.gp (a gnuplot script to\n"
    "                restyle and rerun) and IMAGE-stem.dat (the numbers) are written beside it\n"
    "  --top N       plans to draw (strategies, breakdown; default 10) or rows (timeline; default 32)\n"
    "  --title T     the chart's title (default: from the input)\n"
    "\n"
    "gnuplot is taken from $STRATA_GNUPLOT, else the one configure found, else PATH. Without it, the\n"
    ".gp and .dat are still written and the exit status is 2.\n"
    "Exit status: 0 success, 2 bad input or usage, or gnuplot missing or failing.\n";

int st_cmd_plot(int argc, char **argv, st_error *err) {
    st_cli_args a;
    const char *kind_arg = NULL, *input_arg = NULL, *top_arg = NULL, *title_arg = NULL;
    int rc;
    const st_cli_opt own[] = {{"input", &input_arg, NULL}, {"top", &top_arg, NULL}, {"title", &title_arg, NULL},
                              {NULL, NULL, NULL}};
    st_plot_kind kind;
    st_plot_opts po;
    st_plot_data *d = NULL;
    char *gp = NULL, *dat = NULL;

    if ((rc = st_cli_parse(argc, argv, ST_CLI_OPT_OUT, own, &a, &kind_arg, help_text, err)) || a.help) goto out;
    if (!kind_arg) {
        rc = st_error_set(err, ST_EUSAGE, NULL, NULL,
                          "which plot? strategies, breakdown, memory, timeline, scaling, hardware or accuracy "
                          "(see --help)");
        goto out;
    }
    if (st_plot_kind_parse(kind_arg, &kind)) {
        rc = st_error_set(err, ST_EUSAGE, NULL, NULL,
                          "unknown plot '%s': expected strategies, breakdown, memory, timeline, scaling, hardware "
                          "or accuracy",
                          kind_arg);
        goto out;
    }
    if ((rc = st_cli_require(err, "--input", input_arg, "--out", a.out, (const char *)NULL))) goto out;
    if ((rc = st_cli_out_check("out", a.out, &a, "input", input_arg, err))) goto out;
    st_plot_opts_init(&po);
    po.out = a.out;
    po.title = title_arg;
    if (!st_plot_terminal(a.out)) {
        rc = st_error_set(err, ST_EUSAGE, NULL, NULL, "option '--out': '%s' must end in .png, .svg or .pdf", a.out);
        goto out;
    }
    if (top_arg) {
        int64_t v;
        if ((rc = st_cli_int("top", top_arg, 1, 100000, &v, err))) goto out;
        po.top = (int)v;
    }
    if ((rc = st_plot_load(kind, input_arg, &d, err))) goto out;
    if ((rc = st_plot_render(d, &po, &gp, &dat, err))) goto out;
    printf("wrote %s (script %s, data %s)\n", a.out, gp, dat);
out:
    free(gp);
    free(dat);
    st_plot_data_free(d);
    return rc;
}
