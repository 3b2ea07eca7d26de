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

/* estimate (text) and sim of model, cluster and plan as given, on 4 GPUs */
static void estimate_and_sim(const char *model, const char *cluster, const char *plan, const char *profile) {
    char *est[16] = {"estimate", "--model", (char *)model, "--cluster", (char *)cluster, "--gpus", "4",
                     "--plan", (char *)plan};
    char *sim[16] = {"sim", "--model", (char *)model, "--cluster", (char *)cluster, "--gpus", "4",
                     "--plan", (char *)plan};
    if (profile) {
        est[9] = sim[9] = "--profile";
        est[10] = sim[10] = (char *)profile;
    }
    int small = check_estimate(model, cluster, "4", plan, profile);
    if (run(st_cmd_estimate, est) == 2 || !small) return;
    run(st_cmd_sim, sim);
}

#define SMALL_PLAN "tp=2,pp=2,gbs=4"

static void fuzz_model(const uint8_t *data, size_t size) {
    write_input(data, size);
    estimate_and_sim(in_path, "dgx-a100-80g", SMALL_PLAN, NULL);
}

static void fuzz_cluster(const uint8_t *data, size_t size) {
    write_input(data, size);
    estimate_and_sim("gpt-1.7b", in_path, SMALL_PLAN, NULL);
}

static void fuzz_plan(const uint8_t *data, size_t size) {
    write_input(data, size);
    estimate_and_sim("gpt-1.7b", "dgx-a100-80g", in_path, NULL);
}

/* the inline spec: the bytes as one argument (a spec with '/' could name a file such as
 * /dev/stdin, which st_plan_resolve would read: not a spec, skipped) */
static void fuzz_spec(const uint8_t *data, size_t size) {
    char spec[1024];
    if (size >= sizeof spec || memchr(data, 0, size) || memchr(data, '/', size)) return;
    memcpy(spec, data, size);
    spec[size] = 0;
    json_in = NULL; /* a spec is not JSON: every non-finite word it prints is strata's */
    estimate_and_sim("gpt-1.7b", "dgx-a100-80g", spec, NULL);
}

static void fuzz_profile(const uint8_t *data, size_t size) {
    write_input(data, size);
    estimate_and_sim("gpt-1.7b", "dgx-a100-80g", SMALL_PLAN, in_path);
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

const st__fuzz_target st__fuzz_targets[] = {
    {"model", fuzz_model},     {"cluster", fuzz_cluster},       {"plan", fuzz_plan},
    {"spec", fuzz_spec},       {"profile", fuzz_profile},       {"kineto", fuzz_kineto},
    {"graph", fuzz_graph},     {"validation", fuzz_validation}, {"settings", fuzz_settings},
    {NULL, NULL}};

const st__fuzz_target *st__fuzz_find(const char *name) {
    for (const st__fuzz_target *t = st__fuzz_targets; t->name; t++)
        if (!strcmp(t->name, name)) {
            target_name = t->name;
            return t;
        }
    return NULL;
}
