/* test_plot.c: the Check suite of `strata plot` (src/report/plot_io.c, src/report/plot.c).
 *
 * Inputs are fixed files in tests/data/plot/: plan.json and estimate.json were written once by
 * `strata plan --model llama2-7b --cluster dgx-a100-80g --gpus 16 --gbs 64 --json` and `strata
 * estimate --model gpt3-175b --cluster dgx-a100-80g --gpus 64 --plan tp=8,pp=8,gbs=64 --json`;
 * compare.json is hand-made in the `strata compare --json` shape; trace.json and trace_array.json
 * are hand-written Chrome traces; accuracy.csv exercises RFC 4180 quoting. The expected numbers
 * below are copied from those files. invalid/ holds one file per kind of bad input, with the key
 * the reader must name.
 *
 * The .dat check is an oracle test: the .dat is parsed back (whitespace columns, "..." strings)
 * and its numbers must equal the input's exactly. gnuplot itself is not needed here: the error
 * paths run a missing program and stand-in scripts that fail like gnuplot does.
 */
#include "src/report/report.h"
#include "suites.h"

#include <dirent.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef SRCDIR
#define SRCDIR "."
#endif
#define DATA(p) SRCDIR "/tests/data/plot/" p

/* ------------------------------------------------------------ helpers */

static st_plot_data *load_ok(st_plot_kind kind, const char *path) {
    st_plot_data *d = NULL;
    st_error err;
    st_error_clear(&err);
    int rc = st_plot_load(kind, path, &d, &err);
    char msg[1024];
    st_error_format(&err, msg, sizeof msg);
    ck_assert_msg(rc == 0, "loading %s as %s: %s", path, st_plot_kind_name(kind), msg);
    ck_assert_ptr_nonnull(d);
    return d;
}

/* Loads a file that must be refused; returns the code, with the key and line in err. */
static int load_bad(st_plot_kind kind, const char *path, st_error *err) {
    st_plot_data *d = NULL;
    st_error_clear(err);
    int rc = st_plot_load(kind, path, &d, err);
    ck_assert_ptr_null(d);
    ck_assert_int_ne(rc, 0);
    ck_assert_str_eq(err->file, path);
    return rc;
}

/* The .dat text of d (new; free). */
static char *dat_text(const st_plot_data *d, int top) {
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    st_plot_opts o;
    st_error err;
    st_plot_opts_init(&o);
    o.out = "x.png";
    o.top = top;
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(st_plot_write_data(f, d, &o, &err), 0);
    fclose(f);
    return text;
}

/* The data rows of a .dat: rows[i][j] is column j+1 of the i-th non-comment, non-blank line;
 * block[i] the gnuplot index (blocks are separated by two blank lines). */
#define MAXROWS 256
#define MAXCOLS 20
typedef struct dat_rows {
    char cell[MAXROWS][MAXCOLS][256];
    int ncols[MAXROWS], block[MAXROWS];
    int n;
} dat_rows;

static dat_rows *parse_dat(const char *text) {
    dat_rows *r = calloc(1, sizeof *r);
    int block = 0, blanks = 0;
    ck_assert_ptr_nonnull(r);
    for (const char *p = text; *p;) {
        size_t len = strcspn(p, "\n");
        if (len == 0) {
            blanks++;
        } else if (p[0] != '#') {
            if (blanks >= 2 && r->n > 0) block++;
            blanks = 0;
            ck_assert_int_lt(r->n, MAXROWS);
            int c = 0;
            const char *q = p, *end = p + len;
            while (q < end) {
                while (q < end && *q == ' ') q++;
                if (q >= end) break;
                ck_assert_int_lt(c, MAXCOLS);
                char *out = r->cell[r->n][c];
                size_t k = 0;
                if (*q == '"') {
                    q++;
                    while (q < end && *q != '"') out[k++] = *q++;
                    ck_assert_msg(q < end, "unterminated string in the .dat: %.*s", (int)len, p);
                    q++;
                } else {
                    while (q < end && *q != ' ') out[k++] = *q++;
                }
                out[k] = '\0';
                c++;
            }
            r->ncols[r->n] = c;
            r->block[r->n] = block;
            r->n++;
        }
        p += len;
        if (*p == '\n') p++;
    }
    return r;
}

/* Column `col` (1-based) of data row `row` as a number; "NaN" is NAN. */
static double num(const dat_rows *r, int row, int col) {
    ck_assert_int_lt(row, r->n);
    ck_assert_int_le(col, r->ncols[row]);
    const char *s = r->cell[row][col - 1];
    if (!strcmp(s, "NaN")) return NAN;
    char *end;
    double v = strtod(s, &end);
    ck_assert_msg(*end == '\0' && end != s, "not a number in the .dat: '%s'", s);
    return v;
}

/* Exact equality, NAN equal to NAN: the .dat must hold the input's numbers, not approximations. */
static void ck_same(double got, double want, const char *what) {
    ck_assert_msg((isnan(got) && isnan(want)) || got == want, "%s: .dat says %.17g, the input %.17g", what, got, want);
}

static void make_tmpdir(char *buf, size_t n) {
    const char *base = getenv("TMPDIR");
    snprintf(buf, n, "%s/strata-plot-XXXXXX", base && base[0] ? base : "/tmp");
    ck_assert_ptr_nonnull(mkdtemp(buf));
}

static void rm_dir(const char *dir) {
    DIR *d = opendir(dir);
    struct dirent *e;
    char path[1024];
    if (!d) return;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        unlink(path);
    }
    closedir(d);
    rmdir(dir);
}

/* The names in dir, sorted, joined by spaces. */
static void list_dir(const char *dir, char *buf, size_t n) {
    struct dirent **list;
    int k = scandir(dir, &list, NULL, alphasort);
    buf[0] = '\0';
    ck_assert_int_ge(k, 0);
    for (int i = 0; i < k; i++) {
        if (list[i]->d_name[0] != '.') {
            size_t off = strlen(buf);
            snprintf(buf + off, n - off, "%s%s", off ? " " : "", list[i]->d_name);
        }
        free(list[i]);
    }
    free(list);
}

static const char *base_name_of(const char *path) {
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

/* ------------------------------------------------------------ names */

START_TEST(kinds_and_terminals) {
    static const char *const names[] = {"strategies", "breakdown", "memory",  "timeline",
                                        "scaling",    "hardware",  "accuracy"};
    for (int k = 0; k < ST_PLOT_COUNT; k++) {
        st_plot_kind got;
        ck_assert_int_eq(st_plot_kind_parse(names[k], &got), 0);
        ck_assert_int_eq(got, k);
        ck_assert_str_eq(st_plot_kind_name(got), names[k]);
    }
    st_plot_kind got;
    ck_assert_int_eq(st_plot_kind_parse("gantt", &got), ST_EINVAL);
    ck_assert_int_eq(st_plot_kind_parse("Strategies", &got), ST_EINVAL);
    ck_assert_str_eq(st_plot_terminal("a.png"), "pngcairo");
    ck_assert_str_eq(st_plot_terminal("dir/a b.SVG"), "svg");
    ck_assert_str_eq(st_plot_terminal("a.pdf"), "pdfcairo");
    ck_assert_ptr_null(st_plot_terminal("a.jpg"));
    ck_assert_ptr_null(st_plot_terminal("png"));
    ck_assert_ptr_null(st_plot_terminal("dir.png/a"));
    ck_assert_ptr_null(st_plot_terminal(".png"));
    ck_assert_int_eq(st_plot_default_top(ST_PLOT_STRATEGIES), 10);
    ck_assert_int_eq(st_plot_default_top(ST_PLOT_TIMELINE), 32);
}
END_TEST

/* ------------------------------------------------------------ readers */

START_TEST(read_plan) {
    st_plot_data *d = load_ok(ST_PLOT_STRATEGIES, DATA("plan.json"));
    ck_assert_int_eq(d->nplans, 10);
    ck_assert_int_eq(d->plans[0].rank, 1);
    ck_assert_int_eq(d->plans[9].rank, 10);
    ck_assert_str_eq(d->plans[0].spec, "tp=1,pp=1,dp=16,cp=1,ep=1,vp=1,mbs=1,gbs=64,seq=4096,sp=0,recompute=none,"
                                       "zero=2,offload=none,dtype=bf16,schedule=1f1b,overlap_grad_reduce=1");
    ck_assert(d->plans[0].iteration_time_s == 3.891015182);
    ck_assert(d->plans[0].tokens_per_s == 67371.62097);
    ck_assert(d->plans[0].memory_peak_gib == 69.44019699);
    ck_assert(d->plans[9].iteration_time_s == 4.013893958);
    ck_assert_int_eq(d->plans[0].fits, 1);
    ck_assert_str_eq(d->subject, "llama2-7b on 16 x a100-sxm-80g (dgx-a100-80g), gbs 64");
    st_plot_data_free(d);
}
END_TEST

START_TEST(read_breakdown) {
    st_plot_data *d = load_ok(ST_PLOT_BREAKDOWN, DATA("plan.json"));
    ck_assert_int_eq(d->nplans, 10);
    ck_assert_int_eq(d->from_estimate, 0);
    ck_assert(d->plans[0].breakdown_s[0] == 3.842488288);    /* compute */
    ck_assert(d->plans[0].breakdown_s[7] == 0.04217696064);  /* dp_comm */
    ck_assert(d->plans[0].breakdown_s[8] == 0.006349932883); /* optimizer */
    ck_assert(d->plans[1].breakdown_s[1] == 0.1587281829);   /* recompute */
    st_plot_data_free(d);

    d = load_ok(ST_PLOT_BREAKDOWN, DATA("estimate.json"));
    ck_assert_int_eq(d->nplans, 1);
    ck_assert_int_eq(d->from_estimate, 1);
    ck_assert_int_eq(d->plans[0].rank, 0);
    ck_assert_int_eq(d->plans[0].fits, 0);
    static const double want[ST_PLOT_NBREAK] = {11.37545961,   0.0,         1.270031631,   0.0,           0.0,
                                                0.06231375557, 1.359117447, 0.01399101333, 0.04237745549, 0.0};
    for (int k = 0; k < ST_PLOT_NBREAK; k++)
        ck_assert_msg(d->plans[0].breakdown_s[k] == want[k], "%s", st_plot_break_keys[k]);
    ck_assert(d->plans[0].iteration_time_s == 14.12329091);
    st_plot_data_free(d);
}
END_TEST

START_TEST(read_memory) {
    st_plot_data *d = load_ok(ST_PLOT_MEMORY, DATA("estimate.json"));
    ck_assert_int_eq(d->nstages, 8);
    ck_assert(d->gpu_memory_gib == 80.0);
    ck_assert_int_eq(d->stages[0].stage, 0);
    ck_assert(d->stages[0].gib[0] == 5.25774765); /* weights */
    ck_assert(d->stages[0].gib[3] == 51.9375);    /* activations */
    ck_assert(d->stages[0].gib[4] == 2.0);        /* other */
    ck_assert(d->stages[0].total_gib == 101.2572289);
    ck_assert_int_eq(d->stages[7].stage, 7);
    ck_assert(d->stages[7].gib[3] == 6.611328125);
    ck_assert_int_eq(d->nplans, 1);
    ck_assert_str_eq(d->plans[0].spec, "tp=8,pp=8,dp=1,cp=1,ep=1,vp=1,mbs=1,gbs=64,seq=2048,sp=0,recompute=none,"
                                       "zero=0,offload=none,dtype=bf16,schedule=1f1b");
    st_plot_data_free(d);
}
END_TEST

START_TEST(read_trace) {
    st_plot_data *d = load_ok(ST_PLOT_TIMELINE, DATA("trace.json"));
    ck_assert_int_eq(d->nrows, 4);
    ck_assert_str_eq(d->rows[0].label, "rank 0 / compute");
    ck_assert_str_eq(d->rows[1].label, "rank 0 / comm");
    ck_assert_str_eq(d->rows[2].label, "rank 1 / compute");
    ck_assert_str_eq(d->rows[3].label, "rank 1 / comm");
    /* 32 "X" events and 2 "B"/"E" pairs; the counter, the instant and the metadata are not events */
    ck_assert_int_eq(d->nevents, 34);
    /* the B/E pair becomes the first event of rank 0's compute row, 0 to 500 us */
    ck_assert_str_eq(d->events[0].name, "dataloader wait");
    ck_assert_int_eq(d->events[0].row, 0);
    ck_assert(d->events[0].ts_us == 0 && d->events[0].dur_us == 500);
    ck_assert_str_eq(d->cats[d->events[0].cat], "dataloader"); /* the name up to ' ' */
    ck_assert_str_eq(d->events[1].name, "fwd_mb0");
    ck_assert_str_eq(d->cats[d->events[1].cat], "fwd"); /* the name up to '_' */
    ck_assert(d->events[1].ts_us == 500 && d->events[1].dur_us == 1000);
    /* events sorted by row, then time; cat wins over the name */
    int p2p = 0, nccl = 0;
    for (int i = 1; i < d->nevents; i++) {
        const st_plot_event *a = &d->events[i - 1], *b = &d->events[i];
        ck_assert(a->row < b->row || (a->row == b->row && a->ts_us <= b->ts_us));
        if (!strcmp(d->cats[b->cat], "p2p")) p2p++;
        if (!strcmp(d->cats[b->cat], "nccl")) nccl++;
    }
    ck_assert_int_eq(p2p, 12);
    ck_assert_int_eq(nccl, 2);
    ck_assert_int_eq(d->ncats, 6); /* dataloader fwd bwd optimizer p2p nccl */
    st_plot_data_free(d);

    /* a bare array, no metadata, string ids, an unmatched "E" */
    d = load_ok(ST_PLOT_TIMELINE, DATA("trace_array.json"));
    ck_assert_int_eq(d->nrows, 3);
    ck_assert_str_eq(d->rows[0].label, "rank 3 / tid 2"); /* numbers sort as numbers: 2 < 10 */
    ck_assert_str_eq(d->rows[1].label, "rank 3 / tid 10");
    ck_assert_str_eq(d->rows[2].label, "rank node1 / tid stream 7"); /* strings after numbers */
    ck_assert_int_eq(d->nevents, 3);
    ck_assert_str_eq(d->cats[d->events[0].cat], "kernel");
    ck_assert_str_eq(d->cats[d->events[1].cat], "x");
    st_plot_data_free(d);
}
END_TEST

START_TEST(read_compare) {
    st_plot_data *d = load_ok(ST_PLOT_SCALING, DATA("compare.json"));
    ck_assert_int_eq(d->nresults, 13);
    ck_assert_str_eq(d->results[0].cluster, "dgx-h200");
    ck_assert_int_eq(d->results[0].gpus, 512);
    ck_assert(d->results[0].tokens_per_s == 543166.3452);
    ck_assert(d->results[0].mfu == 0.516212435);
    ck_assert(d->tokens == 3e11);
    ck_assert_int_eq(d->results[12].fits, 0);
    ck_assert(isnan(d->results[12].tokens_per_s) && isnan(d->results[12].mfu));
    st_plot_data_free(d);

    d = load_ok(ST_PLOT_HARDWARE, DATA("compare.json"));
    ck_assert(d->results[0].time_to_train_days == 6.392557736513868);
    ck_assert(d->results[0].cost_to_train == 297711.1304772104);
    ck_assert(isnan(d->results[12].time_to_train_days) && isnan(d->results[12].cost_to_train));
    ck_assert_str_eq(d->results[12].gpu, "a10");
    ck_assert_ptr_null(d->results[12].spec); /* null in the input */
    st_plot_data_free(d);
}
END_TEST

START_TEST(read_csv) {
    st_plot_data *d = load_ok(ST_PLOT_ACCURACY, DATA("accuracy.csv"));
    /* columns in another order, an extra column, CRLF, a blank line, quoted commas and quotes */
    ck_assert_int_eq(d->npoints, 4);
    ck_assert_str_eq(d->points[0].name, "gpt-1.7b, 32 GPUs");
    ck_assert(d->points[0].measured == 3.53 && d->points[0].predicted == 3.058495716);
    ck_assert_str_eq(d->points[0].set, "sc21");
    ck_assert_str_eq(d->points[1].name, "gpt-39.1b, 512 GPUs");
    ck_assert_str_eq(d->points[2].name, "run \"A\", fast");
    ck_assert_str_eq(d->points[2].set, "demo");
    ck_assert_str_eq(d->points[3].name, "plain name");
    ck_assert(d->points[3].measured == 100 && d->points[3].predicted == 120); /* " 120 " trimmed */
    st_plot_data_free(d);
}
END_TEST

/* ------------------------------------------------------------ bad input names the key */

typedef struct bad_case {
    st_plot_kind kind;
    const char *file;
    const char *key; /* "" = none */
    int line;        /* 0 = not checked */
    int wrong_kind;  /* another command's output: the message says what the kind reads */
} bad_case;

static const bad_case bad_cases[] = {
    {ST_PLOT_STRATEGIES, DATA("estimate.json"), "plans", 0, 1},
    {ST_PLOT_STRATEGIES, DATA("compare.json"), "plans", 0, 1},
    {ST_PLOT_MEMORY, DATA("plan.json"), "memory_gib", 0, 1},
    {ST_PLOT_SCALING, DATA("plan.json"), "results", 0, 1},
    {ST_PLOT_HARDWARE, DATA("estimate.json"), "results", 0, 1},
    {ST_PLOT_TIMELINE, DATA("plan.json"), "traceEvents", 0, 1},
    {ST_PLOT_BREAKDOWN, DATA("compare.json"), "plans", 0, 1},
    {ST_PLOT_BREAKDOWN, DATA("invalid/plan_no_bubble.json"), "plans[1].breakdown_s.bubble", 0, 0},
    {ST_PLOT_HARDWARE, DATA("invalid/compare_no_days.json"), "results[2].time_to_train_days", 0, 0},
    {ST_PLOT_SCALING, DATA("invalid/compare_null_mfu.json"), "results[0].mfu", 0, 0},
    {ST_PLOT_HARDWARE, DATA("invalid/compare_null_energy.json"), "results[0].energy.energy_mwh", 0, 0},
    {ST_PLOT_TIMELINE, DATA("invalid/trace_no_dur.json"), "traceEvents[1].dur", 0, 0},
    {ST_PLOT_TIMELINE, DATA("invalid/trace_no_complete.json"), "", 0, 0},
    {ST_PLOT_ACCURACY, DATA("invalid/csv_no_predicted.csv"), "predicted", 1, 1},
    {ST_PLOT_ACCURACY, DATA("invalid/csv_bad_number.csv"), "measured", 3, 0},
    {ST_PLOT_ACCURACY, DATA("invalid/csv_unterminated.csv"), "", 2, 0},
    {ST_PLOT_ACCURACY, DATA("invalid/csv_no_rows.csv"), "", 0, 0},
    {ST_PLOT_ACCURACY, DATA("no-such-file.csv"), "", 0, 0},
    {ST_PLOT_MEMORY, DATA("no-such-file.json"), "", 0, 0},
};

START_TEST(bad_input) {
    const bad_case *c = &bad_cases[_i];
    st_error err;
    int rc = load_bad(c->kind, c->file, &err);
    char msg[1024];
    st_error_format(&err, msg, sizeof msg);
    ck_assert_msg(rc == ST_EINVAL || rc == ST_EIO, "%s: code %d", c->file, rc);
    ck_assert_msg(!strcmp(err.key, c->key), "%s as %s: key '%s', expected '%s' (%s)", c->file,
                  st_plot_kind_name(c->kind), err.key, c->key, msg);
    if (c->line) ck_assert_msg(err.line == c->line, "%s: line %d, expected %d", c->file, err.line, c->line);
    /* a wrong kind of input says what the kind reads */
    if (c->wrong_kind)
        ck_assert_msg(strstr(msg, "reads") != NULL, "the message does not say what the kind reads: %s", msg);
}
END_TEST

/* ------------------------------------------------------------ the .dat holds the input's numbers */

START_TEST(dat_strategies_numbers) {
    st_plot_data *d = load_ok(ST_PLOT_STRATEGIES, DATA("plan.json"));
    char *text = dat_text(d, 0);
    dat_rows *r = parse_dat(text);
    ck_assert_int_eq(r->n, 10);
    for (int i = 0; i < r->n; i++) {
        ck_same(num(r, i, 2), d->plans[i].rank, "rank");
        ck_same(num(r, i, 3), d->plans[i].iteration_time_s, "iteration_time_s");
        ck_same(num(r, i, 4), d->plans[i].tokens_per_s, "tokens_per_s");
        ck_same(num(r, i, 5), d->plans[i].memory_peak_gib, "memory_peak_gib");
        ck_assert_str_eq(r->cell[i][6], d->plans[i].spec);
    }
    /* the rank -> spec legend is in the header */
    ck_assert_ptr_nonnull(strstr(text, "#   #10 tp=2,pp=1,dp=8"));
    free(r);
    free(text);
    text = dat_text(d, 3); /* --top 3 */
    r = parse_dat(text);
    ck_assert_int_eq(r->n, 3);
    ck_assert_ptr_nonnull(strstr(text, "# plans: 3 shown of 10"));
    free(r);
    free(text);
    st_plot_data_free(d);
}
END_TEST

START_TEST(dat_breakdown_numbers) {
    const char *files[] = {DATA("plan.json"), DATA("estimate.json")};
    for (int f = 0; f < 2; f++) {
        st_plot_data *d = load_ok(ST_PLOT_BREAKDOWN, files[f]);
        char *text = dat_text(d, 0);
        dat_rows *r = parse_dat(text);
        ck_assert_int_eq(r->n, d->nplans);
        for (int i = 0; i < r->n; i++)
            for (int k = 0; k < ST_PLOT_NBREAK; k++)
                ck_same(num(r, i, 3 + k), d->plans[i].breakdown_s[k], st_plot_break_keys[k]);
        free(r);
        free(text);
        st_plot_data_free(d);
    }
}
END_TEST

START_TEST(dat_memory_numbers) {
    st_plot_data *d = load_ok(ST_PLOT_MEMORY, DATA("estimate.json"));
    char *text = dat_text(d, 0);
    dat_rows *r = parse_dat(text);
    ck_assert_int_eq(r->n, 8 + 2); /* the stages, then the capacity line's two ends */
    for (int i = 0; i < 8; i++) {
        ck_assert_int_eq(r->block[i], 0);
        ck_same(num(r, i, 1), d->stages[i].stage, "stage");
        for (int k = 0; k < ST_PLOT_NMEM; k++) ck_same(num(r, i, 2 + k), d->stages[i].gib[k], st_plot_mem_keys[k]);
        ck_same(num(r, i, 7), d->stages[i].total_gib, "total");
    }
    ck_assert_int_eq(r->block[8], 1);
    ck_same(num(r, 8, 2), 80.0, "gpu_memory_gib");
    ck_same(num(r, 9, 1), 7.5, "capacity line end");
    free(r);
    free(text);
    st_plot_data_free(d);
}
END_TEST

START_TEST(dat_timeline_numbers) {
    st_plot_data *d = load_ok(ST_PLOT_TIMELINE, DATA("trace.json"));
    char *text = dat_text(d, 0);
    dat_rows *r = parse_dat(text);
    /* block 0: the rows; then one block per category with every event once */
    int rows = 0, events = 0;
    for (int i = 0; i < r->n; i++) {
        if (r->block[i] == 0) {
            ck_assert_str_eq(r->cell[i][3], d->rows[rows].label);
            rows++;
            continue;
        }
        int row = (int)num(r, i, 1);
        double ts = num(r, i, 2), dur = num(r, i, 3);
        int found = 0;
        for (int e = 0; e < d->nevents; e++)
            found |= d->events[e].row == row && d->events[e].ts_us == ts && d->events[e].dur_us == dur &&
                     !strcmp(d->events[e].name, r->cell[i][5]);
        ck_assert_msg(found, ".dat event %s at %g us on row %d is not in the trace", r->cell[i][5], ts, row);
        ck_same(num(r, i, 4), ts / 1000, "start_ms"); /* the trace starts at 0 */
        ck_same(num(r, i, 5), (ts + dur) / 1000, "end_ms");
        events++;
    }
    ck_assert_int_eq(rows, 4);
    ck_assert_int_eq(events, 34);
    ck_assert_ptr_nonnull(strstr(text, "# rows 4, shown 4; events 34, shown 34; span 17.8 ms"));
    free(r);
    free(text);
    /* --top 2: the first two rows and their events only, said in the header */
    text = dat_text(d, 2);
    ck_assert_ptr_nonnull(strstr(text, "# rows 4, shown 2; events 34, shown"));
    r = parse_dat(text);
    for (int i = 0; i < r->n; i++)
        if (r->block[i] > 0) ck_assert_int_lt((int)num(r, i, 1), 2);
    free(r);
    free(text);
    st_plot_data_free(d);
}
END_TEST

START_TEST(dat_compare_numbers) {
    st_plot_data *d = load_ok(ST_PLOT_SCALING, DATA("compare.json"));
    char *text = dat_text(d, 0);
    dat_rows *r = parse_dat(text);
    ck_assert_int_eq(r->n, 12); /* the row that does not fit is skipped */
    ck_assert_ptr_nonnull(strstr(text, "# skipped (does not fit): a10-pcie-8 at 8 GPUs"));
    /* blocks are the clusters that fit somewhere, in order of first appearance */
    const char *clusters[16];
    int nclusters = 0;
    for (int k = 0; k < d->nresults; k++) {
        int seen = 0;
        for (int j = 0; j < nclusters; j++) seen |= !strcmp(clusters[j], d->results[k].cluster);
        if (!seen && d->results[k].fits) clusters[nclusters++] = d->results[k].cluster;
    }
    ck_assert_int_eq(nclusters, 3);
    for (int i = 0; i < r->n; i++) {
        int found = 0;
        for (int k = 0; k < d->nresults; k++) {
            const st_plot_result *x = &d->results[k];
            if (x->gpus != (int64_t)num(r, i, 1) || strcmp(x->cluster, clusters[r->block[i]])) continue;
            ck_assert_str_eq(r->cell[i][3], x->spec);
            ck_same(num(r, i, 2), x->tokens_per_s, "tokens_per_s");
            ck_same(num(r, i, 3), x->mfu, "mfu");
            found = 1;
        }
        ck_assert(found);
        /* one block per cluster, by GPU count within it */
        if (i > 0 && r->block[i] == r->block[i - 1]) ck_assert(num(r, i, 1) > num(r, i - 1, 1));
    }
    ck_assert_int_eq(r->block[r->n - 1], 2);
    free(r);
    free(text);
    st_plot_data_free(d);

    d = load_ok(ST_PLOT_HARDWARE, DATA("compare.json"));
    text = dat_text(d, 0);
    r = parse_dat(text);
    ck_assert_int_eq(r->n, 13);
    for (int i = 0; i < r->n; i++) {
        int found = 0;
        for (int k = 0; k < d->nresults; k++) {
            const st_plot_result *x = &d->results[k];
            if (strcmp(x->cluster, r->cell[i][1]) || x->gpus != (int64_t)num(r, i, 3)) continue;
            ck_same(num(r, i, 4), x->time_to_train_days, "time_to_train_days");
            ck_same(num(r, i, 5), x->cost_to_train, "cost_to_train");
            found = 1;
        }
        ck_assert(found);
        if (i > 0) ck_assert(num(r, i, 1) > num(r, i - 1, 1)); /* bar positions increase */
    }
    free(r);
    free(text);
    st_plot_data_free(d);
}
END_TEST

/* compare --energy: the hardware .dat carries energy to train, tokens per joule and the energy cost
 * (columns 6-8) as the input has them, NaN where nothing fits; the script draws a second panel of
 * them, with the energy cost on the right axis when priced and without it when not. A compare
 * without --energy keeps the columns and the one panel it had (dat_compare_numbers). */
START_TEST(dat_hardware_energy) {
    st_plot_data *d = load_ok(ST_PLOT_HARDWARE, DATA("compare_energy.json"));
    ck_assert_int_eq(d->has_energy, 1);
    char *text = dat_text(d, 0);
    dat_rows *r = parse_dat(text);
    ck_assert_int_eq(r->n, 6);
    ck_assert_ptr_nonnull(strstr(text, "cost_to_train energy_mwh tokens_per_joule energy_cost fits spec"));
    int nofit = 0;
    for (int i = 0; i < r->n; i++) {
        int found = 0;
        for (int k = 0; k < d->nresults; k++) {
            const st_plot_result *x = &d->results[k];
            if (strcmp(x->cluster, r->cell[i][1]) || x->gpus != (int64_t)num(r, i, 3)) continue;
            ck_same(num(r, i, 6), x->energy_mwh, "energy_mwh");
            ck_same(num(r, i, 7), x->tokens_per_joule, "tokens_per_joule");
            ck_same(num(r, i, 8), x->energy_cost, "energy_cost");
            ck_assert_int_eq((int)num(r, i, 9), x->fits);
            nofit += !x->fits && isnan(num(r, i, 6));
            found = 1;
        }
        ck_assert(found);
    }
    ck_assert_int_eq(nofit, 1); /* a10-pcie-8 on 8 GPUs */
    /* the first row of the file: dgx-b200 on 16 GPUs, 13.94 MWh, 1.99 tokens/J, 1,673 at 0.12 a kWh */
    ck_assert(d->results[0].energy_mwh == 13.94208998 && d->results[0].tokens_per_joule == 1.992368276);
    ck_assert(d->results[0].energy_cost == 1673.050797);
    free(r);
    free(text);

    st_plot_opts o;
    st_error err;
    st_plot_opts_init(&o);
    o.out = "hw.png";
    char *gp = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&gp, &len);
    ck_assert_int_eq(st_plot_write_script(f, d, &o, "hw.dat", "hw.png", &err), 0);
    fclose(f);
    ck_assert_ptr_nonnull(strstr(gp, "set multiplot layout 2,1\n"));
    ck_assert_ptr_nonnull(strstr(gp, "unset multiplot\n"));
    ck_assert_ptr_nonnull(strstr(gp, "size 800,900"));
    ck_assert_ptr_nonnull(strstr(gp, "dat using ($1-0.19):6:(0.36) with boxes"));
    ck_assert_ptr_nonnull(strstr(gp, "energy_scale = 1000\n")); /* thousands: the largest is 23,567 */
    ck_assert_ptr_nonnull(strstr(gp, "($8/energy_scale)"));
    ck_assert_ptr_nonnull(strstr(gp, "tok/J\", $7)"));
    free(gp);
    /* not priced: energy alone, no right axis */
    for (int k = 0; k < d->nresults; k++) d->results[k].energy_cost = NAN;
    f = open_memstream(&gp, &len);
    ck_assert_int_eq(st_plot_write_script(f, d, &o, "hw.dat", "hw.png", &err), 0);
    fclose(f);
    ck_assert_ptr_null(strstr(gp, "energy_scale"));
    ck_assert_ptr_nonnull(strstr(gp, "unset y2tics\nplot dat using 1:6:(0.6) with boxes"));
    free(gp);
    st_plot_data_free(d);

    d = load_ok(ST_PLOT_HARDWARE, DATA("compare.json"));
    ck_assert_int_eq(d->has_energy, 0);
    text = dat_text(d, 0);
    ck_assert_ptr_nonnull(strstr(text, "# x cluster gpus time_to_train_days cost_to_train fits spec"));
    free(text);
    f = open_memstream(&gp, &len);
    ck_assert_int_eq(st_plot_write_script(f, d, &o, "hw.dat", "hw.png", &err), 0);
    fclose(f);
    ck_assert_ptr_null(strstr(gp, "multiplot"));
    ck_assert_ptr_nonnull(strstr(gp, "size 800,500"));
    free(gp);
    st_plot_data_free(d);
}
END_TEST

START_TEST(dat_accuracy_numbers) {
    st_plot_data *d = load_ok(ST_PLOT_ACCURACY, DATA("accuracy.csv"));
    char *text = dat_text(d, 0);
    dat_rows *r = parse_dat(text);
    /* two sets of two, then the labelled points (all four: few points) */
    int in_sets = 0, labelled = 0;
    for (int i = 0; i < r->n; i++) {
        if (r->block[i] >= 2) {
            labelled++;
            continue;
        }
        const st_plot_point *p = &d->points[in_sets++];
        ck_same(num(r, i, 1), p->measured, "measured");
        ck_same(num(r, i, 2), p->predicted, "predicted");
        ck_same(num(r, i, 3), 100 * (p->predicted - p->measured) / p->measured, "error_pct");
        ck_assert_int_eq(r->block[i], strcmp(p->set, "sc21") ? 1 : 0);
    }
    ck_assert_int_eq(in_sets, 4);
    ck_assert_int_eq(labelled, 4);
    /* gnuplot's data files have no escape for '"': it becomes ' */
    ck_assert_ptr_nonnull(strstr(text, "\"run 'A', fast\""));
    free(r);
    free(text);
    st_plot_data_free(d);
}
END_TEST

/* ------------------------------------------------------------ the script */

START_TEST(script_quotes_and_noenhanced) {
    st_plot_data *d = load_ok(ST_PLOT_ACCURACY, DATA("accuracy.csv"));
    st_plot_opts o;
    st_error err;
    char *text = NULL;
    size_t len = 0;
    st_plot_opts_init(&o);
    o.out = "acc.svg";
    o.title = "a \"quoted\" back\\slash, tp=8_pp=8 @x";
    FILE *f = open_memstream(&text, &len);
    ck_assert_int_eq(st_plot_write_script(f, d, &o, "acc.dat", "acc.svg", &err), 0);
    fclose(f);
    ck_assert_ptr_nonnull(strstr(text, "set title \"a \\\"quoted\\\" back\\\\slash, tp=8_pp=8 @x\""));
    ck_assert_ptr_nonnull(strstr(text, "set termoption noenhanced"));
    ck_assert_ptr_nonnull(strstr(text, "set terminal svg "));
    ck_assert_ptr_nonnull(strstr(text, "dat = here . \"acc.dat\""));
    ck_assert_ptr_nonnull(strstr(text, "set logscale xy")); /* 0.5 s to 120 s spans more than 10x */
    ck_assert_ptr_nonnull(strstr(text, "filledcurves"));    /* the 10 % band */
    free(text);
    st_plot_data_free(d);
}
END_TEST

/* The same input gives the same bytes. */
START_TEST(script_deterministic) {
    for (int k = 0; k < 2; k++) {
        st_plot_data *d =
            load_ok(k ? ST_PLOT_TIMELINE : ST_PLOT_STRATEGIES, k ? DATA("trace.json") : DATA("plan.json"));
        char *a = dat_text(d, 0), *b = dat_text(d, 0);
        ck_assert_str_eq(a, b);
        free(a);
        free(b);
        st_plot_data_free(d);
    }
}
END_TEST

/* ------------------------------------------------------------ render: the failure paths */

/* Renders d into dir/NAME.png with `gnuplot` as the program; returns the code and the message. */
static int render_with(const st_plot_data *d, const char *dir, const char *gnuplot, char *msg, size_t n) {
    char out[1024];
    st_plot_opts o;
    st_error err;
    char *gp = NULL, *dat = NULL;
    st_plot_opts_init(&o);
    snprintf(out, sizeof out, "%s/my plot.png", dir); /* a space in the path */
    o.out = out;
    o.gnuplot = gnuplot;
    st_error_clear(&err);
    int rc = st_plot_render(d, &o, &gp, &dat, &err);
    st_error_format(&err, msg, n);
    if (gp) ck_assert_str_eq(base_name_of(gp), "my plot.gp");
    free(gp);
    free(dat);
    return rc;
}

START_TEST(render_without_gnuplot) {
    char dir[512], names[1024], msg[1024];
    make_tmpdir(dir, sizeof dir);
    st_plot_data *d = load_ok(ST_PLOT_MEMORY, DATA("estimate.json"));
    int rc = render_with(d, dir, "/nonexistent/gnuplot", msg, sizeof msg);
    ck_assert_int_eq(rc, ST_EIO);
    ck_assert_msg(!strncmp(msg, "gnuplot not found: wrote ", 25), "message: %s", msg);
    ck_assert_msg(strstr(msg, "gnuplot-nox") && strstr(msg, "my plot.gp"), "message: %s", msg);
    list_dir(dir, names, sizeof names);
    ck_assert_str_eq(names, "my plot.dat my plot.gp"); /* no image, no temporary file */
    st_plot_data_free(d);
    rm_dir(dir);
}
END_TEST

/* A stand-in for gnuplot that fails the way gnuplot does (a warning, then the error, exit 1). */
START_TEST(render_gnuplot_fails) {
    char dir[512], fake[600], names[1024], msg[1024];
    make_tmpdir(dir, sizeof dir);
    snprintf(fake, sizeof fake, "%s/fake-gnuplot", dir);
    FILE *f = fopen(fake, "w");
    ck_assert_ptr_nonnull(f);
    fputs("#!/bin/sh\n"
          "echo '\"x.gp\" line 2: warning: Skipping data file with no valid points' >&2\n"
          "echo 'plot foo(x)' >&2\n"
          "echo '     ^' >&2\n"
          "echo '\"x.gp\" line 3: undefined function: foo' >&2\n"
          "exit 1\n",
          f);
    fclose(f);
    chmod(fake, 0755);
    st_plot_data *d = load_ok(ST_PLOT_TIMELINE, DATA("trace.json"));
    int rc = render_with(d, dir, fake, msg, sizeof msg);
    ck_assert_int_eq(rc, ST_EIO);
    ck_assert_msg(strstr(msg, "gnuplot failed on ") && strstr(msg, "\"x.gp\" line 3: undefined function: foo"),
                  "message: %s", msg);
    list_dir(dir, names, sizeof names);
    ck_assert_str_eq(names, "fake-gnuplot my plot.dat my plot.gp");

    /* exit 0 without drawing: no image either */
    f = fopen(fake, "w");
    fputs("#!/bin/sh\nexit 0\n", f);
    fclose(f);
    rc = render_with(d, dir, fake, msg, sizeof msg);
    ck_assert_int_eq(rc, ST_EIO);
    ck_assert_msg(strstr(msg, "drew nothing") != NULL, "message: %s", msg);
    list_dir(dir, names, sizeof names);
    ck_assert_str_eq(names, "fake-gnuplot my plot.dat my plot.gp");

    /* one that draws: its image is renamed into place, and it was given the script's path */
    f = fopen(fake, "w");
    fputs("#!/bin/sh\n"
          "[ \"$1\" = -e ] || exit 3\n"
          "case $3 in */'my plot.gp') ;; *) exit 4 ;; esac\n"
          "out=${2#st_out=\\'}; out=${out%\\'}\n"
          "printf 'image' >\"$out\"\n",
          f);
    fclose(f);
    mode_t old = umask(022);
    rc = render_with(d, dir, fake, msg, sizeof msg);
    umask(old);
    ck_assert_msg(rc == 0, "rc %d: %s", rc, msg);
    list_dir(dir, names, sizeof names);
    ck_assert_str_eq(names, "fake-gnuplot my plot.dat my plot.gp my plot.png");
    /* the files get a plain file's mode, not mkstemp's 0600 */
    static const char *const made[] = {"my plot.png", "my plot.gp", "my plot.dat"};
    for (int i = 0; i < 3; i++) {
        char path[1024];
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", dir, made[i]);
        ck_assert_int_eq(stat(path, &st), 0);
        ck_assert_msg((st.st_mode & 0777) == 0644, "%s has mode %o", made[i], (unsigned)(st.st_mode & 0777));
    }
    st_plot_data_free(d);
    rm_dir(dir);
}
END_TEST

Suite *suite_plot(void) {
    Suite *s = suite_create("plot");
    TCase *tc = tcase_create("read");
    tcase_add_test(tc, kinds_and_terminals);
    tcase_add_test(tc, read_plan);
    tcase_add_test(tc, read_breakdown);
    tcase_add_test(tc, read_memory);
    tcase_add_test(tc, read_trace);
    tcase_add_test(tc, read_compare);
    tcase_add_test(tc, read_csv);
    tcase_add_loop_test(tc, bad_input, 0, (int)(sizeof bad_cases / sizeof bad_cases[0]));
    suite_add_tcase(s, tc);
    tc = tcase_create("dat");
    tcase_add_test(tc, dat_strategies_numbers);
    tcase_add_test(tc, dat_breakdown_numbers);
    tcase_add_test(tc, dat_memory_numbers);
    tcase_add_test(tc, dat_timeline_numbers);
    tcase_add_test(tc, dat_compare_numbers);
    tcase_add_test(tc, dat_hardware_energy);
    tcase_add_test(tc, dat_accuracy_numbers);
    tcase_add_test(tc, script_quotes_and_noenhanced);
    tcase_add_test(tc, script_deterministic);
    suite_add_tcase(s, tc);
    tc = tcase_create("render");
    tcase_add_test(tc, render_without_gnuplot);
    tcase_add_test(tc, render_gnuplot_fails);
    suite_add_tcase(s, tc);
    return s;
}
