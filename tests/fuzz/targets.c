/* targets.c: the fuzz targets (fuzz.h). Each writes the input to a scratch file and runs the
 * commands that read it in process, as main.c would (the same exit status mapping), with stdout
 * captured in another scratch file so that what was printed can be checked: nothing with exit 2,
 * no "nan" or "inf" where a number goes. The estimate is also priced through the library, so an
 * estimate that st_estimate_check refuses of inputs every loader accepted is caught as the
 * loaders' fault (the command would only say exit 2). The commands run small: 4 to 8 GPUs, a few
 * micro-batches and layers (MAX_SIM_INSTRUCTIONS, MAX_SIM_LAYER_PASSES), so that libFuzzer makes hundreds of
 * runs a second under ASan.
 * The scratch files live on /dev/shm where it exists (st__fuzz_init). */
#include "tests/fuzz/fuzz.h"

#include "profiler/profiler.h"
#include "src/cli/cli.h"

#include <ctype.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

static char scratch[256];                          /* the process's scratch folder */
static char in_path[300], out_path[300], prof_path[300];
static char srcdir_[512];
static const char *target_name = "?";

static void fail(const char *why, const char *detail) {
    fprintf(stderr, "fuzz %s: %s%s%s\n", target_name, why, detail ? ": " : "", detail ? detail : "");
    abort();
}

static void scratch_remove(void) {
    unlink(in_path);
    unlink(out_path);
    unlink(prof_path);
    rmdir(scratch);
}

int st__fuzz_init(const char *srcdir) {
    st_search_init();
    snprintf(srcdir_, sizeof srcdir_, "%s", srcdir);
    /* every execution rewrites the scratch files: on ext4 truncating a written file and closing it
     * starts its writeback (auto_da_alloc), which made a run wait on the disk for most of its time;
     * a memory file system (/dev/shm) has no disk behind it */
    const char *tmp = getenv("TMPDIR");
    if (!tmp || !*tmp) tmp = access("/dev/shm", W_OK | X_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(scratch, sizeof scratch, "%s/strata-fuzz.XXXXXX", tmp);
    if (!mkdtemp(scratch)) return -1;
    snprintf(in_path, sizeof in_path, "%s/input.json", scratch);
    snprintf(out_path, sizeof out_path, "%s/stdout", scratch);
    snprintf(prof_path, sizeof prof_path, "%s/profile.json", scratch);
    atexit(scratch_remove);
    return 0;
}

/* A word of the output that printf made of a non-finite double ("nan", "-nan", "inf", "-inf"). */
static int nonfinite_word(const char *w, size_t n) {
    if (n && (*w == '-' || *w == '+')) w++, n--;
    return (n == 3 && (!strncasecmp(w, "nan", 3) || !strncasecmp(w, "inf", 3))) ||
           (n == 8 && !strncasecmp(w, "infinity", 8));
}

/* The input of the execution in hand, when it is JSON (its first byte past blanks is '{' or '['),
 * else NULL: see echoed(). */
static const uint8_t *json_in;
static size_t json_in_size;

static void set_input(const uint8_t *data, size_t size) {
    size_t i = 0;
    while (i < size && strchr(" \t\r\n", data[i]) && data[i]) i++;
    json_in = i < size && (data[i] == '{' || data[i] == '[') ? data : NULL;
    json_in_size = size;
}

static void write_input(const uint8_t *data, size_t size) {
    set_input(data, size);
    FILE *f = fopen(in_path, "wb");
    if (!f || fwrite(data, 1, size, f) != size || fclose(f) != 0) fail("cannot write the scratch input", in_path);
}

/* Whether the word w (n bytes) is a word of the JSON input: JSON has no literal for a non-finite
 * number (Jansson refuses NaN, Infinity and overflowing reals), so such a word there is text that
 * strata may echo (validate prints the file's "about", the points' ids and groups, the rejections
 * name the value they refused), not a number it computed. */
static int echoed(const char *w, size_t n) {
    if (!json_in) return 0;
    for (size_t i = 0; i + n <= json_in_size; i++)
        if (!strncasecmp((const char *)json_in + i, w, n) && (i == 0 || !isalnum(json_in[i - 1])) &&
            (i + n == json_in_size || !isalnum(json_in[i + n])))
            return 1;
    return 0;
}

/* The printed output: no non-finite number in it. The lines that echo the inputs' names (model,
 * cluster, plan, graph) are skipped: a model may be called "nan"; so is a word that a JSON input
 * holds as text (echoed). validate's lines for scripts (SUMMARY, TAU) write "KEY=nan" for a value
 * there is none of (tau-b of fewer than 3 rows, the mean error of none), as scripts/validate.sh
 * does: that word is allowed there. */
static void check_output(const char *text) {
    for (const char *line = text; *line;) {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        static const char *const echo[] = {"model ", "cluster ", "plan ", "graph "};
        int skip = 0, machine = !strncmp(line, "SUMMARY ", 8) || !strncmp(line, "TAU ", 4);
        for (size_t i = 0; i < sizeof echo / sizeof echo[0]; i++) skip |= !strncmp(line, echo[i], strlen(echo[i]));
        for (size_t i = 0; !skip && i < len;) {
            while (i < len && strchr(" \t,;:()[]=/%", line[i])) i++;
            size_t j = i;
            while (j < len && !strchr(" \t,;:()[]=/%", line[j])) j++;
            int none = machine && i > 0 && line[i - 1] == '=' && j - i == 3 && !strncmp(line + i, "nan", 3);
            if (j > i && !none && nonfinite_word(line + i, j - i) && !echoed(line + i, j - i))
                fail("a non-finite number printed", line);
            i = j;
        }
        line += len + (end != NULL);
    }
}

/* Runs `strata ARGV` (argv[0] the subcommand) in process; returns main.c's exit status after
 * checking it and the output. */
static int run(int (*cmd)(int, char **, st_error *), char **argv) {
    int argc = 0;
    while (argv[argc]) argc++;
    fflush(stdout);
    int saved = dup(STDOUT_FILENO), fd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (saved < 0 || fd < 0 || dup2(fd, STDOUT_FILENO) < 0) fail("cannot capture stdout", out_path);
    close(fd);
    st_error err;
    st_error_clear(&err);
    int rc = cmd(argc, argv, &err);
    int flushed = fflush(stdout) == 0 && !ferror(stdout);
    clearerr(stdout);
    if (dup2(saved, STDOUT_FILENO) < 0) fail("cannot restore stdout", NULL);
    close(saved);
    int status = rc == 0 ? 0 : rc > 0 ? rc : rc == ST_ENOFIT || rc == ST_ENOPLAN ? 1 : 2;
    if (!flushed) fail("write error on the captured stdout", NULL);
    if (rc == ST_EINTERNAL) fail("an internal error", err.text);
    if (status > 2) fail("an exit status other than 0, 1 or 2", argv[0]);

    FILE *f = fopen(out_path, "rb");
    if (!f) fail("cannot read the captured stdout", out_path);
    static char text[1 << 20];
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = 0;
    if (status == 2 && n > 0) fail("stdout written with exit 2", text);
    check_output(text);
    return status;
}

/* The size of program beyond which a plan is not simulated, in instructions: a forward and a
 * backward per micro-batch and chunk on each simulated rank (one per stage), collectives and
 * recompute aside. What the lowering and the simulator do differently (schedules' warm-up, steady
 * state and cool-down, ZB-V's 2 pp - 1 and DualPipe's 2 pp micro-batches, interleaving's groups of
 * pp) shows at a few micro-batches per stage on 4 GPUs; past that a run only repeats the steady
 * state, at ASan's pace: 1,000 chunks took twice the time of a small plan (10.8 ms against 5 ms). */
#define MAX_SIM_INSTRUCTIONS 512
/* The same bound on layers: a forward and a backward per micro-batch and layer, summed over the
 * stages. A model of 71,028 layers (a valid input: the lowering takes 0.6 s without sanitizers)
 * took over 90 s of wall clock under ASan at nice 19 beside other work, which libFuzzer's -timeout
 * called a hang; past a few hundred layers a run only repeats the blocks. */
#define MAX_SIM_LAYER_PASSES 4096

/* The estimate through the library: when every input loads and the plan can be priced, the
 * estimate is finite (st_estimate_check), else some loader let a value through that it should
 * have refused. Returns whether the plan is small enough to simulate (MAX_SIM_INSTRUCTIONS). */
static int check_estimate(const char *model, const char *cluster, const char *gpus, const char *plan,
                          const char *profile) {
    int small = 0;
    st_cli_args a = {.model = model, .cluster = cluster, .gpus = gpus, .plan = plan, .profile = profile};
    const unsigned want = ST_CLI_MODEL | ST_CLI_CLUSTER | ST_CLI_PLAN | ST_CLI_PROFILE;
    st_cli_inputs in = {0};
    st_cost_ctx *ctx = NULL;
    st_error err;
    st_error_clear(&err);
    if (st_cli_inputs_check(&a, want, &in, &err) || st_cli_inputs_resolve(&a, want, &in, &err)) goto out;
    if (!(ctx = st_cost_ctx_new(&in.model, &in.cluster, in.profile))) fail("out of memory", NULL);
    st_estimate e;
    if (st_cost_estimate(ctx, in.plan, &e)) goto out;
    if (st_estimate_check(&e, &err)) fail("the loaders accepted inputs whose estimate is not finite", err.text);
    /* a small simulation: a plan of millions of micro-batches is a valid input whose lowering takes
     * seconds (sim shows progress and can be interrupted), not a defect; the fuzzer skips it */
    small = 2.0 * (double)st_plan_microbatches(in.plan) * in.plan->vp * in.plan->pp <= MAX_SIM_INSTRUCTIONS &&
            2.0 * (double)st_plan_microbatches(in.plan) * in.model.layers <= MAX_SIM_LAYER_PASSES;
out:
    st_cost_ctx_free(ctx);
    st_cli_inputs_destroy(&in);
    return small;
}

/* estimate (text) and sim of model, cluster and plan as given, on `gpus` GPUs (NULL: the cluster as
 * described, which a cluster of node groups must be) */
static void estimate_and_sim(const char *model, const char *cluster, const char *gpus, const char *plan,
                             const char *profile) {
    char *est[16] = {"estimate", "--model", (char *)model, "--cluster", (char *)cluster, "--plan", (char *)plan};
    char *sim[16] = {"sim", "--model", (char *)model, "--cluster", (char *)cluster, "--plan", (char *)plan};
    int n = 7;
    if (gpus) {
        est[n] = sim[n] = "--gpus";
        est[n + 1] = sim[n + 1] = (char *)gpus;
        n += 2;
    }
    if (profile) {
        est[n] = sim[n] = "--profile";
        est[n + 1] = sim[n + 1] = (char *)profile;
    }
    int small = check_estimate(model, cluster, gpus, plan, profile);
    if (run(st_cmd_estimate, est) == 2 || !small) return;
    run(st_cmd_sim, sim);
}

#define SMALL_PLAN "tp=2,pp=2,gbs=4"
/* a cluster of node groups is used whole (its gbs then defaults to dp x mbs) */
#define GROUPS_PLAN "tp=2,pp=2"

/* Whether the --cluster argument is a cluster of node groups (mixed GPU types, MIG layouts), which
 * runs whole: no --gpus, GROUPS_PLAN. */
static int node_groups(const char *cluster) {
    st_cluster c;
    st_error err;
    st_error_clear(&err);
    return st_cluster_resolve(cluster, 0, &c, &err) == 0 && c.ngroups > 0;
}

static void fuzz_model(const uint8_t *data, size_t size) {
    write_input(data, size);
    estimate_and_sim(in_path, "dgx-a100-80g", "4", SMALL_PLAN, NULL);
}

static void fuzz_cluster(const uint8_t *data, size_t size) {
    write_input(data, size);
    int groups = node_groups(in_path);
    estimate_and_sim("gpt-1.7b", in_path, groups ? NULL : "4", groups ? GROUPS_PLAN : SMALL_PLAN, NULL);
}

static void fuzz_plan(const uint8_t *data, size_t size) {
    write_input(data, size);
    estimate_and_sim("gpt-1.7b", "dgx-a100-80g", "4", in_path, NULL);
}

/* the inline spec: the bytes as one argument (a spec with '/' could name a file such as
 * /dev/stdin, which st_plan_resolve would read: not a spec, skipped) */
static void fuzz_spec(const uint8_t *data, size_t size) {
    char spec[1024];
    if (size >= sizeof spec || memchr(data, 0, size) || memchr(data, '/', size)) return;
    memcpy(spec, data, size);
    spec[size] = 0;
    json_in = NULL; /* a spec is not JSON: every non-finite word it prints is strata's */
    estimate_and_sim("gpt-1.7b", "dgx-a100-80g", "4", spec, NULL);
}

static void fuzz_profile(const uint8_t *data, size_t size) {
    write_input(data, size);
    estimate_and_sim("gpt-1.7b", "dgx-a100-80g", "4", SMALL_PLAN, in_path);
}

/* a Kineto trace (plain or gzip): calibrate, then the profile it wrote must be taken by --profile */
static void fuzz_kineto(const uint8_t *data, size_t size) {
    write_input(data, size);
    unlink(prof_path);
    char *cal[] = {"calibrate", "--kineto", in_path, "--out", prof_path, "--gpu", "a100-sxm-80g", NULL};
    if (run(st_cmd_calibrate, cal) != 0) return;
    char *est[] = {"estimate", "--model", "gpt-1.7b", "--cluster", "dgx-a100-80g", "--gpus", "4",
                   "--plan", SMALL_PLAN, "--profile", prof_path, NULL};
    if (run(st_cmd_estimate, est) == 2) fail("calibrate wrote a profile that --profile refuses", NULL);
    check_estimate("gpt-1.7b", "dgx-a100-80g", "4", SMALL_PLAN, prof_path);
}

/* a custom graph: the operator-level plan of it on 2 GPUs */
static void fuzz_graph(const uint8_t *data, size_t size) {
    write_input(data, size);
    char *plan[] = {"plan", "--search", "ilp", "--graph", in_path, "--cluster", "dgx-a100-80g", "--gpus", "2",
                    "--microbatches", "2", NULL};
    run(st_cmd_plan, plan);
}

static void fuzz_validation(const uint8_t *data, size_t size) {
    write_input(data, size);
    char *val[] = {"validate", "--points", in_path, NULL};
    run(st_cmd_validate, val);
}

/* the --settings TSV, over the test bundle */
static void fuzz_settings(const uint8_t *data, size_t size) {
    write_input(data, size);
    char points[600];
    snprintf(points, sizeof points, "%s/tests/data/validation/fixture_points.json", srcdir_);
    char *val[] = {"validate", "--points", points, "--settings", in_path, NULL};
    run(st_cmd_validate, val);
}

/* The --cluster argument of a run: CLUSTER[:mig=SPEC][:sharp=1][:domain_gpus=N] (st_cluster_resolve),
 * the input's first line, optionally followed by a tab and the plan (default SMALL_PLAN; on node
 * groups, which are used whole, GROUPS_PLAN). Where lines follow, they are a cluster JSON and CLUSTER
 * is that file (the first line then holds only the suffixes: MIG layouts and SHARP on node groups,
 * MIG slices of a described GPU); else CLUSTER must be a preset (a name of no preset would be a
 * file of the working folder, which differs between the fuzzer and the replay). A uniform cluster
 * runs on 4 GPUs, one of node groups whole. */
static void fuzz_clusterarg(const uint8_t *data, size_t size) {
    char arg[700], plan[256] = "";
    const uint8_t *nl = memchr(data, '\n', size), *tab;
    size_t n = nl ? (size_t)(nl - data) : size;
    if (n >= 256 || memchr(data, 0, n) || memchr(data, '/', n)) return;
    if ((tab = memchr(data, '\t', n))) {
        snprintf(plan, sizeof plan, "%.*s", (int)(n - (size_t)(tab - data) - 1), (const char *)tab + 1);
        n = (size_t)(tab - data);
    }
    if (nl) {
        write_input(nl + 1, size - (size_t)(nl - data) - 1);
        snprintf(arg, sizeof arg, "%s%.*s", in_path, (int)n, (const char *)data);
    } else {
        snprintf(arg, sizeof arg, "%.*s", (int)n, (const char *)data);
        json_in = NULL; /* an argument, not JSON: every non-finite word printed is strata's */
        st_cluster c;
        char base[256];
        snprintf(base, sizeof base, "%.*s", (int)strcspn(arg, ":"), arg);
        if (st_cluster_preset(base, &c) != 0) return;
    }
    int groups = node_groups(arg);
    estimate_and_sim("gpt-1.7b", arg, groups ? NULL : "4", plan[0] ? plan : groups ? GROUPS_PLAN : SMALL_PLAN, NULL);
}

/* objective evaluations per fit of the runs target (st_fit_opts' max_evals): the fit's search
 * stops there, so an execution takes milliseconds, not the second of a full fit under ASan; the
 * CSV, the rows' pricing, the pinning, the folds and the written cluster are all as calibrate's */
#define FUZZ_FIT_EVALS 24

/* `calibrate --runs`: the CSV fitted on one DGX A100 node with 2 folds, its summary printed as the
 * command prints it; the calibrated cluster it wrote must then be taken by --cluster. A model cell
 * naming a path is skipped: a file loader of its own (the model target), and /dev/stdin would block. */
static void fuzz_runs(const uint8_t *data, size_t size) {
    if (memchr(data, '/', size)) return;
    write_input(data, size);
    json_in = NULL; /* a CSV: the summary names no text of it but the models, on lines of their own */
    unlink(prof_path);
    st_fit_opts fo;
    st_fit_opts_init(&fo);
    fo.folds = 2;
    fo.max_evals = FUZZ_FIT_EVALS;
    st_fit *fit = NULL;
    st_error err;
    st_error_clear(&err);
    int rc = st_fit_runs(in_path, "dgx-a100-80g", &fo, &fit, &err);
    if (rc == ST_EINTERNAL || (rc && rc != ST_EINVAL && rc != ST_EIO && rc != ST_ENOMEM))
        fail("calibrate --runs: an error other than bad input", err.text);
    if (!rc && (rc = st_fit_save(fit, prof_path, &err))) fail("calibrate --runs cannot write the cluster", err.text);
    if (fit) {
        FILE *f = fopen(out_path, "wb");
        if (!f) fail("cannot write the scratch output", out_path);
        st_fit_describe(fit, f);
        fclose(f);
        static char text[1 << 16];
        f = fopen(out_path, "rb");
        size_t n = f ? fread(text, 1, sizeof text - 1, f) : 0;
        if (f) fclose(f);
        text[n] = 0;
        check_output(text);
    }
    st_fit_free(fit);
    if (rc) return;
    char *est[] = {"estimate", "--model", "gpt-1.7b", "--cluster", prof_path, "--gpus", "8", "--plan", SMALL_PLAN,
                   NULL};
    if (run(st_cmd_estimate, est) == 2) fail("calibrate --runs wrote a cluster that --cluster refuses", NULL);
    check_estimate("gpt-1.7b", prof_path, "8", SMALL_PLAN, NULL);
}

/* An operator-level plan file (`plan --search ilp --out`) of gpt-1.7b on dgx-a100-80g: its estimate,
 * its simulation when its micro-batches and stages are few (MAX_SIM_INSTRUCTIONS), and the hybrid
 * spec `strata run` would execute it as (st__run_ilp_spec), which strata's own spec parser must
 * take. */
static void fuzz_ilpplan(const uint8_t *data, size_t size) {
    write_input(data, size);
    char *est[] = {"estimate", "--model", "gpt-1.7b", "--cluster", "dgx-a100-80g", "--plan", in_path, NULL};
    char *sim[] = {"sim", "--model", "gpt-1.7b", "--cluster", "dgx-a100-80g", "--plan", in_path, NULL};
    if (!st__plan_is_ilp(in_path) || run(st_cmd_estimate, est) == 2) return;
    st_cli_args a = {.model = "gpt-1.7b", .cluster = "dgx-a100-80g", .plan = in_path};
    st_cli_inputs in = {0};
    st_autoshard_opts o;
    st_autoshard_result r = {0};
    st_as_origin orig;
    st_error err;
    st_error_clear(&err);
    int small = 0;
    if (!st_cli_inputs_check(&a, ST_CLI_MODEL | ST_CLI_CLUSTER, &in, &err) &&
        !st_cli_inputs_resolve(&a, ST_CLI_MODEL | ST_CLI_CLUSTER, &in, &err) &&
        !st_autoshard_load(in_path, &in.model, NULL, &in.cluster, &o, &r, &orig, &err))
        small = 2.0 * (double)r.microbatches * r.nstages <= MAX_SIM_INSTRUCTIONS;
    st_autoshard_result_free(&r);
    st_cli_inputs_destroy(&in);
    if (small) run(st_cmd_sim, sim);
    char spec[4096];
    int attn_rows = 0, moe_rows = 0, router_h = 0, replicas = 0, head_dp = 0;
    st_lower_opts lo; /* (the tp collectives of rows plans, priced from the plan: exercised too) */
    st_lower_opts_init(&lo);
    st_error_clear(&err);
    /* (stages of different shapes: each stage's spec, which the parser must take too) */
    st__ilp_stage *stages = calloc(ST_MAX_STAGES, sizeof *stages);
    int nstages = 0;
    if (!stages || st__run_ilp_spec(&a, spec, sizeof spec, &attn_rows, &moe_rows, &router_h, &replicas, &head_dp, &lo,
                                    stages, &nstages, &err)) {
        free(stages);
        return;
    }
    if (lo.ntp_stages && (attn_rows || moe_rows || router_h) == 0) fail("tp collectives of a plan that splits no rows", spec);
    st_plan p;
    for (int d = 0; d < (nstages ? nstages : 1); d++) {
        const char *sp = nstages ? stages[d].spec : spec;
        st_plan_defaults(&p);
        st_error_clear(&err);
        if (st_plan_parse_spec(sp, &p, &err)) fail("strata run made a spec of the plan that its parser refuses", sp);
    }
    free(stages);
}

/* Blanks what a plot file holds of the input's text, so that a non-finite word left is a number
 * strata computed: double-quoted strings (gnuplot's .gp escapes \" inside them; the .dat has no
 * escapes, quotes inside its strings became ') and comments (# to the end of the line, outside a
 * string). In the .dat, NaN is the missing value (plot.h: null becomes NAN, written "NaN"), also
 * blanked there. */
static void plot_blank(char *s, int gp) {
    int quoted = 0;
    for (char *p = s; *p; p++) {
        if (quoted) {
            if (gp && *p == '\\' && p[1]) *p++ = ' ';
            else if (*p == '"') quoted = 0;
            if (*p != '\n') *p = ' ';
        } else if (*p == '"') {
            quoted = 1;
            *p = ' ';
        } else if (*p == '#') {
            while (*p && *p != '\n') *p++ = ' ';
            if (!*p) break;
        } else if (!gp && !strncmp(p, "NaN", 3) && (p == s || !isalnum((unsigned char)p[-1])) &&
                   !isalnum((unsigned char)p[3])) {
            memset(p, ' ', 3);
            p += 2;
        }
    }
}

/* The plot file at path (written by st_plot_write_data or _script): no non-finite number in it. */
static void check_plot_file(const char *path, int gp) {
    static char text[1 << 22];
    FILE *f = fopen(path, "rb");
    if (!f) fail("cannot read the plot file back", path);
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = 0;
    plot_blank(text, gp);
    check_output(text);
}

/* `strata plot`: the input read as each kind's (st_plot_load), then the .dat and .gp the command
 * writes before it runs gnuplot (st_plot_write_data, st_plot_write_script: st_plot_render less its
 * gnuplot process, which would be a fork per execution and test gnuplot, not strata) */
static void fuzz_plot(const uint8_t *data, size_t size) {
    write_input(data, size);
    json_in = NULL; /* the files' text is blanked instead (plot_blank) */
    for (int k = 0; k < ST_PLOT_COUNT; k++) {
        st_plot_data *d = NULL;
        st_error err;
        st_error_clear(&err);
        int rc = st_plot_load((st_plot_kind)k, in_path, &d, &err);
        if (rc && rc != ST_EINVAL && rc != ST_EIO && rc != ST_ENOMEM)
            fail("plot: an error other than bad input", err.text);
        if (rc) continue;
        st_plot_opts o;
        st_plot_opts_init(&o);
        o.out = "plot.png";
        FILE *f = fopen(out_path, "wb");
        if (!f) fail("cannot write the scratch output", out_path);
        rc = st_plot_write_data(f, d, &o, &err);
        fclose(f);
        if (rc == ST_EINVAL) { /* nothing to draw (no event, no plan, nothing fits): plot's exit 2 */
            st_plot_data_free(d);
            continue;
        }
        if (rc) fail("plot: the .dat of a loaded input not written", err.text);
        check_plot_file(out_path, 0);
        if (!(f = fopen(out_path, "wb"))) fail("cannot write the scratch output", out_path);
        if (st_plot_write_script(f, d, &o, "plot.dat", "plot.png", &err))
            fail("plot: the .gp of a loaded input not written", err.text);
        fclose(f);
        check_plot_file(out_path, 1);
        st_plot_data_free(d);
    }
}

const st__fuzz_target st__fuzz_targets[] = {
    {"model", fuzz_model},     {"cluster", fuzz_cluster},       {"plan", fuzz_plan},
    {"spec", fuzz_spec},       {"profile", fuzz_profile},       {"kineto", fuzz_kineto},
    {"graph", fuzz_graph},     {"validation", fuzz_validation}, {"settings", fuzz_settings},
    {"clusterarg", fuzz_clusterarg}, {"runs", fuzz_runs},       {"ilpplan", fuzz_ilpplan},
    {"plot", fuzz_plot},       {NULL, NULL}};

const st__fuzz_target *st__fuzz_find(const char *name) {
    for (const st__fuzz_target *t = st__fuzz_targets; t->name; t++)
        if (!strcmp(t->name, name)) {
            target_name = t->name;
            return t;
        }
    return NULL;
}
