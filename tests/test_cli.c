/* test_cli.c: the Check suite of what the subcommands share (src/cli/cli.c): the parser of the
 * shared and the command's own options, the required-options message, the shared number checks,
 * and the inputs (st_cli_inputs_check, st_cli_inputs_resolve): which bad input is named first
 * when several are bad, what is resolved, and the notes. Inputs are presets and files of
 * tests/data; the golden CLI tests (tests/cli_options.sh) check the same through the commands. */
#include "src/cli/cli.h"
#include "suites.h"

#include <string.h>

#ifndef SRCDIR
#define SRCDIR "."
#endif
#define PROFILE_A100 SRCDIR "/tests/data/profile/a100_test.json"
#define GRAPH_UNET SRCDIR "/tests/data/graph_unet.json"

/* parses the NULL-ended words after the subcommand "cmd"; returns st_cli_parse's code */
static int parse(unsigned take, const st_cli_opt *own, st_cli_args *a, const char **positional, st_error *err,
                 const char *const *words) {
    char *argv[32] = {"cmd"};
    int argc = 1;
    while (words[argc - 1]) {
        argv[argc] = (char *)words[argc - 1];
        argc++;
    }
    st_error_clear(err);
    return st_cli_parse(argc, argv, take, own, a, positional, "", err);
}
#define PARSE(take, own, a, pos, err, ...) parse(take, own, a, pos, err, (const char *const[]){__VA_ARGS__, NULL})

START_TEST(parse_shared_and_own) {
    st_cli_args a;
    st_error err;
    const char *top = NULL;
    int quick = 0;
    const st_cli_opt own[] = {{"top", &top, NULL}, {"quick", NULL, &quick}, {NULL, NULL, NULL}};
    int rc = PARSE(ST_CLI_OPT_MODEL | ST_CLI_OPT_GPUS | ST_CLI_OPT_JSON, own, &a, NULL, &err, "--model", "llama2-7b",
                   "--gpus=16", "--top", "3", "--quick", "--json");
    ck_assert_msg(rc == 0, "%s", err.text);
    ck_assert_str_eq(a.model, "llama2-7b");
    ck_assert_str_eq(a.gpus, "16");
    ck_assert_str_eq(top, "3");
    ck_assert_int_eq(quick, 1);
    ck_assert_int_eq(a.json, 1);
    ck_assert_int_eq(a.help, 0);
    ck_assert_ptr_null(a.cluster);
    /* a shared option the command does not take is unknown to it */
    rc = PARSE(ST_CLI_OPT_MODEL, NULL, &a, NULL, &err, "--model", "m", "--cluster", "c");
    ck_assert_int_eq(rc, ST_EUSAGE);
    ck_assert_str_eq(err.text, "unknown option '--cluster' (see --help)");
    /* *a starts empty on every parse: nothing is left from the line before */
    ck_assert_ptr_null(a.gpus);
    rc = PARSE(0, NULL, &a, NULL, &err, "--help");
    ck_assert_int_eq(rc, 0);
    ck_assert_int_eq(a.help, 1);
}
END_TEST

START_TEST(parse_refusals) {
    st_cli_args a;
    st_error err;
    const char *kind = NULL;
    const unsigned take = ST_CLI_OPT_MODEL | ST_CLI_OPT_JSON;
    ck_assert_int_eq(PARSE(take, NULL, &a, NULL, &err, "--json=1"), ST_EUSAGE);
    ck_assert_str_eq(err.text, "option '--json' takes no value");
    ck_assert_int_eq(PARSE(take, NULL, &a, NULL, &err, "--model"), ST_EUSAGE);
    ck_assert_str_eq(err.text, "option '--model' needs a value");
    ck_assert_int_eq(PARSE(take, NULL, &a, NULL, &err, "--model="), ST_EUSAGE);
    ck_assert_str_eq(err.text, "option '--model' has an empty value");
    ck_assert_int_eq(PARSE(take, NULL, &a, NULL, &err, "extra"), ST_EUSAGE);
    ck_assert_str_eq(err.text, "unexpected argument 'extra' (see --help)");
    /* the first positional is the command's when it takes one; a second is refused */
    ck_assert_int_eq(PARSE(take, NULL, &a, &kind, &err, "memory", "--json"), 0);
    ck_assert_str_eq(kind, "memory");
    kind = NULL;
    ck_assert_int_eq(PARSE(take, NULL, &a, &kind, &err, "memory", "again"), ST_EUSAGE);
    ck_assert_str_eq(err.text, "unexpected argument 'again' (see --help)");
}
END_TEST

START_TEST(require_names_all) {
    st_error err;
    st_error_clear(&err);
    ck_assert_int_eq(st_cli_require(&err, "--out", "x", (const char *)NULL), 0);
    ck_assert_int_eq(st_cli_require(&err, "--out", (const char *)NULL, (const char *)NULL), ST_EUSAGE);
    ck_assert_str_eq(err.text, "--out is required (see --help)");
    ck_assert_int_eq(st_cli_require(&err, "--input", "i", "--out", (const char *)NULL, (const char *)NULL), ST_EUSAGE);
    ck_assert_str_eq(err.text, "--input and --out are required (see --help)");
    ck_assert_int_eq(st_cli_require(&err, "--a", (const char *)NULL, "--b", "b", "--c", "c", (const char *)NULL),
                     ST_EUSAGE);
    ck_assert_str_eq(err.text, "--a, --b and --c are required (see --help)");
}
END_TEST

START_TEST(shared_numbers) {
    st_cli_args a = {0};
    st_error err;
    st_error_clear(&err);
    int64_t gbs = 7, seq = 0;
    st_dtype dt = ST_DT_BF16;
    /* not given: the caller's defaults stay */
    ck_assert_int_eq(st_cli_batch(&a, &gbs, &seq, &err), 0);
    ck_assert_int_eq(st_cli_dtype(&a, &dt, &err), 0);
    ck_assert_int_eq(gbs, 7);
    ck_assert_int_eq(seq, 0);
    ck_assert_int_eq(dt, ST_DT_BF16);
    a.gbs = "64", a.seq = "4096", a.dtype = "fp16";
    ck_assert_int_eq(st_cli_batch(&a, &gbs, &seq, &err), 0);
    ck_assert_int_eq(st_cli_dtype(&a, &dt, &err), 0);
    ck_assert_int_eq(gbs, 64);
    ck_assert_int_eq(seq, 4096);
    ck_assert_int_eq(dt, ST_DT_FP16);
    /* --gbs is checked before --seq */
    a.gbs = "0", a.seq = "x";
    ck_assert_int_eq(st_cli_batch(&a, &gbs, &seq, &err), ST_EUSAGE);
    ck_assert_str_eq(err.text, "option '--gbs': 0 is out of range 1..1073741824");
    a.gbs = "8";
    ck_assert_int_eq(st_cli_batch(&a, &gbs, &seq, &err), ST_EUSAGE);
    ck_assert_str_eq(err.text, "option '--seq': expected an integer, got 'x'");
    a.dtype = "int4";
    ck_assert_int_eq(st_cli_dtype(&a, &dt, &err), ST_EUSAGE);
    ck_assert_str_eq(err.text, "option '--dtype': 'int4' is not one of fp32, tf32, fp16, bf16, fp8, mxfp8, nvfp4");
    ck_assert_int_eq(dt, ST_DT_FP16);
}
END_TEST

START_TEST(gpu_names) {
    st_cli_args a = {0};
    st_error err;
    st_error_clear(&err);
    a.gpu = "mygpu";
    ck_assert_int_eq(st_cli_gpu_name(&a, &err), 0);
    a.gpu = "h100-sxm-80g";
    ck_assert_int_eq(st_cli_gpu_name(&a, &err), 0);
    char longest[48], too_long[49];
    memset(longest, 'g', sizeof longest - 1), longest[sizeof longest - 1] = '\0';
    memset(too_long, 'g', sizeof too_long - 1), too_long[sizeof too_long - 1] = '\0';
    a.gpu = longest;
    ck_assert_int_eq(st_cli_gpu_name(&a, &err), 0);
    const char *bad[] = {too_long, "h100 sxm", "a\"b", "a\\b", "a\tb"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        a.gpu = bad[i];
        ck_assert_int_eq(st_cli_gpu_name(&a, &err), ST_EUSAGE);
        ck_assert_msg(strstr(err.text, "is not a GPU name (1 to 47 printable characters, no spaces)"), "%s", err.text);
    }
}
END_TEST

/* checks a with want on fresh inputs; returns the code */
static int check(const st_cli_args *a, unsigned want, st_cli_inputs *in, st_error *err) {
    memset(in, 0, sizeof *in);
    st_error_clear(err);
    return st_cli_inputs_check(a, want, in, err);
}

START_TEST(inputs_check_order) {
    st_cli_inputs in;
    st_error err;
    const unsigned hybrid = ST_CLI_MODEL | ST_CLI_CLUSTER | ST_CLI_PLAN | ST_CLI_PROFILE;
    const unsigned oplevel = ST_CLI_MODEL | ST_CLI_GRAPH | ST_CLI_CLUSTER | ST_CLI_ILP_PLAN | ST_CLI_PROFILE;
    st_cli_args a = {.model = "llama2-7b", .gpus = "0"};
    /* a missing option is named before a bad --gpus, and the message lists what the command needs */
    ck_assert_int_eq(check(&a, hybrid, &in, &err), ST_EUSAGE);
    ck_assert_str_eq(err.text, "--model, --cluster and --plan are required (see --help)");
    ck_assert_int_eq(check(&a, ST_CLI_MODEL | ST_CLI_CLUSTER, &in, &err), ST_EUSAGE);
    ck_assert_str_eq(err.text, "--model and --cluster are required (see --help)");
    ck_assert_int_eq(check(&a, oplevel, &in, &err), ST_EUSAGE);
    ck_assert_str_eq(err.text, "--model (or --graph), --cluster and --plan are required (see --help)");
    a.cluster = "dgx-h100", a.plan = "tp=8";
    ck_assert_int_eq(check(&a, hybrid, &in, &err), ST_EUSAGE);
    ck_assert_str_eq(err.text, "option '--gpus': 0 is out of range 1..1048576");
    a.gpus = "16";
    ck_assert_int_eq(check(&a, hybrid, &in, &err), 0);
    ck_assert_int_eq(in.gpus, 16);
    /* without a cluster to size, --gpus is not this check's (compare takes a list) */
    a.gpus = "8,16";
    ck_assert_int_eq(check(&a, ST_CLI_MODEL | ST_CLI_PROFILE, &in, &err), 0);
    ck_assert_int_eq(in.gpus, 0);
    /* --graph: refused where it has no place (first of all), and never beside --model */
    a.graph = GRAPH_UNET, a.cluster = NULL;
    ck_assert_int_eq(check(&a, hybrid, &in, &err), ST_EUSAGE);
    ck_assert_str_eq(err.text, "--graph goes with an operator-level plan (strata plan --search ilp --out)");
    ck_assert_int_eq(check(&a, oplevel, &in, &err), ST_EUSAGE);
    ck_assert_str_eq(err.text, "--model (or --graph), --cluster and --plan are required (see --help)");
    a.cluster = "dgx-h100";
    ck_assert_int_eq(check(&a, oplevel, &in, &err), ST_EUSAGE);
    ck_assert_str_eq(err.text, "give --model or --graph, not both");
    a.model = NULL, a.gpus = "8";
    ck_assert_int_eq(check(&a, oplevel, &in, &err), 0);
    ck_assert_int_eq(in.gpus, 8);
}
END_TEST

/* checks and resolves a with want on fresh inputs; returns the code (in is the caller's to destroy) */
static int resolve(const st_cli_args *a, unsigned want, st_cli_inputs *in, st_error *err) {
    int rc = check(a, want, in, err);
    return rc ? rc : st_cli_inputs_resolve(a, want, in, err);
}

START_TEST(inputs_resolve) {
    st_cli_inputs in;
    st_error err;
    const unsigned want = ST_CLI_MODEL | ST_CLI_CLUSTER | ST_CLI_PLAN | ST_CLI_PROFILE | ST_CLI_ORIGIN;
    st_cli_args a = {.model = "llama2-7b", .cluster = "dgx-a100-80g", .gpus = "16", .plan = "tp=8"};
    ck_assert_msg(resolve(&a, want, &in, &err) == 0, "%s", err.text);
    ck_assert_int_eq(in.have_model, 1);
    ck_assert_int_eq(in.have_graph, 0);
    ck_assert_str_eq(in.model.name, "llama2-7b");
    ck_assert_int_eq(st_cluster_gpus(&in.cluster), 16);
    ck_assert_ptr_nonnull(in.plan);
    ck_assert_int_eq(in.plan->dp, 2); /* finalized: the 16 GPUs over tp = 8 */
    ck_assert_ptr_null(in.profile);
    ck_assert_str_eq(in.origin_note, "");
    ck_assert_str_eq(in.profile_note, "");
    st_cli_inputs_destroy(&in);
    ck_assert_ptr_null(in.plan);

    /* a profile of another GPU is scaled to the cluster's, and the note says so */
    a.cluster = "dgx-h100", a.profile = PROFILE_A100;
    ck_assert_msg(resolve(&a, want, &in, &err) == 0, "%s", err.text);
    ck_assert_ptr_nonnull(in.profile);
    const char *scaled = "profile measured on a100-sxm-80g, scaled to h100-sxm-80g by peak ratio";
    ck_assert_msg(strncmp(in.profile_note, scaled, strlen(scaled)) == 0, "%s", in.profile_note);
    st_cli_inputs_destroy(&in);
    /* without a cluster (compare) the profile is opened as it is */
    ck_assert_msg(resolve(&a, ST_CLI_MODEL | ST_CLI_PROFILE, &in, &err) == 0, "%s", err.text);
    ck_assert_ptr_nonnull(in.profile);
    ck_assert_str_eq(in.profile_note, "");
    ck_assert_ptr_null(in.plan);
    st_cli_inputs_destroy(&in);

    /* a custom graph instead of the model */
    st_cli_args g = {.graph = GRAPH_UNET, .cluster = "dgx-a100-80g", .plan = "unused.json"};
    const unsigned oplevel = ST_CLI_MODEL | ST_CLI_GRAPH | ST_CLI_CLUSTER | ST_CLI_ILP_PLAN | ST_CLI_PROFILE;
    ck_assert_msg(resolve(&g, oplevel, &in, &err) == 0, "%s", err.text);
    ck_assert_int_eq(in.have_model, 0);
    ck_assert_int_eq(in.have_graph, 1);
    ck_assert_int_gt(in.graph.nops, 0);
    ck_assert_ptr_null(in.plan); /* an operator-level plan is the command's to load */
    st_cli_inputs_destroy(&in);
    ck_assert_int_eq(in.have_graph, 0);
}
END_TEST

/* Of several bad inputs the first in the order model, cluster, profile, plan is named; the
 * inputs are left safe to destroy. */
START_TEST(inputs_resolve_order) {
    st_cli_inputs in;
    st_error err;
    const unsigned want = ST_CLI_MODEL | ST_CLI_CLUSTER | ST_CLI_PLAN | ST_CLI_PROFILE;
    struct {
        st_cli_args a;
        const char *key; /* the key the error names */
    } cases[] = {
        {{.model = "nosuch", .cluster = "nosuch", .profile = "nosuch", .plan = "tp=8,foo=1"}, "model"},
        {{.model = "llama2-7b", .cluster = "nosuch", .profile = "nosuch", .plan = "tp=8,foo=1"}, "cluster"},
        {{.model = "llama2-7b", .cluster = "dgx-h100", .profile = "nosuch", .plan = "tp=8,foo=1"}, "profile"},
        {{.model = "llama2-7b", .cluster = "dgx-h100", .profile = PROFILE_A100, .plan = "tp=8,foo=1"}, "foo"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int rc = resolve(&cases[i].a, want, &in, &err);
        ck_assert_msg(rc != 0 && !strcmp(err.key, cases[i].key), "case %zu: rc %d, key '%s' (expected '%s'): %s", i,
                      rc, err.key, cases[i].key, err.text);
        st_cli_inputs_destroy(&in);
        ck_assert_ptr_null(in.profile);
        ck_assert_ptr_null(in.plan);
    }
}
END_TEST

START_TEST(text_in_memory) {
    st_cli_text t = {0};
    st_error err;
    st_error_clear(&err);
    st_cli_text_destroy(&t); /* a text never opened */
    ck_assert_int_eq(st_cli_text_open(&t, &err), 0);
    fprintf(t.f, "a %d\n", 1);
    st_cli_text_close(&t);
    ck_assert_ptr_null(t.f);
    ck_assert_int_eq(t.len, 4);
    ck_assert_str_eq(t.buf, "a 1\n");
    st_cli_text_close(&t); /* twice is harmless */
    st_cli_text_destroy(&t);
    ck_assert_ptr_null(t.buf);
    ck_assert_int_eq(t.len, 0);
}
END_TEST

Suite *suite_cli(void) {
    Suite *s = suite_create("cli");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, parse_shared_and_own);
    tcase_add_test(tc, parse_refusals);
    tcase_add_test(tc, require_names_all);
    tcase_add_test(tc, shared_numbers);
    tcase_add_test(tc, gpu_names);
    tcase_add_test(tc, inputs_check_order);
    tcase_add_test(tc, inputs_resolve);
    tcase_add_test(tc, inputs_resolve_order);
    tcase_add_test(tc, text_in_memory);
    suite_add_tcase(s, tc);
    return s;
}
