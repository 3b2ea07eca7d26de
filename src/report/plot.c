/* plot.c: the gnuplot driver of `strata plot`: from an st_plot_data (src/report/plot_io.c) it writes
 * IMAGE-stem.dat (the numbers), IMAGE-stem.gp (a standalone script that reads the .dat beside it
 * and draws IMAGE; users restyle it), then runs gnuplot on the script.
 *
 * Invariants:
 * - The .dat holds the input's numbers unchanged (printed with the fewest digits that read back
 *   to the same double); unit conversions for display (us -> ms, MFU -> %, $ -> million $) are
 *   written into the script's `using` expressions, so the .dat can be checked against the JSON.
 * - Same input and options -> the same .gp and .dat bytes (no time stamps, no temporary names).
 * - Text from the input reaches gnuplot only inside double-quoted strings with \ and " escaped,
 *   and the terminal is noenhanced, so "tp=8,pp=8" or "expert_fc1" are drawn as written. In the
 *   .dat, strings are double-quoted with " replaced by ' (gnuplot's data files have no escape).
 * - Nothing partial is left behind: the .gp and .dat go through a temporary file and rename(2);
 *   gnuplot draws into a temporary file that is renamed over IMAGE only when it succeeded.
 * - gnuplot runs by fork/execvp, without a shell, with its output captured; its first error line
 *   becomes the message. Found from $STRATA_GNUPLOT, else configure's ST_GNUPLOT, else PATH.
 */
#include "src/report/report.h"
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *const kind_names[ST_PLOT_COUNT] = {"strategies", "breakdown", "memory",  "timeline",
                                                      "scaling",    "hardware",  "accuracy"};

const char *st_plot_kind_name(st_plot_kind k) { return k >= 0 && k < ST_PLOT_COUNT ? kind_names[k] : "?"; }

int st_plot_kind_parse(const char *s, st_plot_kind *out) {
    for (int k = 0; k < ST_PLOT_COUNT; k++)
        if (!strcmp(s, kind_names[k])) {
            *out = (st_plot_kind)k;
            return 0;
        }
    return ST_EINVAL;
}

void st_plot_opts_init(st_plot_opts *o) { memset(o, 0, sizeof *o); }

int st_plot_default_top(st_plot_kind k) { return k == ST_PLOT_TIMELINE ? 32 : 10; }

/* The extension after the last '.' of the last path component, or NULL. */
static const char *extension(const char *path) {
    const char *slash = strrchr(path, '/'), *dot = strrchr(path, '.');
    if (!dot || (slash && dot < slash) || dot == path || (slash && dot == slash + 1)) return NULL;
    return dot + 1;
}

const char *st_plot_terminal(const char *out) {
    const char *ext = out ? extension(out) : NULL;
    if (!ext) return NULL;
    if (!strcasecmp(ext, "png")) return "pngcairo";
    if (!strcasecmp(ext, "svg")) return "svg";
    if (!strcasecmp(ext, "pdf")) return "pdfcairo";
    return NULL;
}

/* ------------------------------------------------------------ text helpers */

static const char *const palette[] = {"#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f",
                                      "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"};
#define NPALETTE (int)(sizeof palette / sizeof palette[0])

/* The fewest significant digits that read back to v; "NaN" for a missing value. */
static void fmt_num(char *buf, size_t n, double v) {
    if (isnan(v)) {
        snprintf(buf, n, "NaN");
        return;
    }
    for (int p = 1; p <= 17; p++) {
        snprintf(buf, n, "%.*g", p, v);
        if (strtod(buf, NULL) == v) return;
    }
}

static void put_num(FILE *f, double v) {
    char buf[40];
    fmt_num(buf, sizeof buf, v);
    fputs(buf, f);
}

/* A string field of the .dat: gnuplot reads "..." as one column and knows no escapes, so a double
 * quote becomes ' and control characters become spaces. */
static void put_dstr(FILE *f, const char *s) {
    fputc('"', f);
    for (; s && *s; s++) {
        unsigned char c = (unsigned char)*s;
        fputc(c == '"' ? '\'' : c < 0x20 || c == 0x7f ? ' ' : c, f);
    }
    fputc('"', f);
}

/* A string literal of the .gp: double-quoted with \ and " escaped; a newline stays a line break. */
static void put_gstr(FILE *f, const char *s) {
    fputc('"', f);
    for (; s && *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '\\' || c == '"') {
            fputc('\\', f);
            fputc(c, f);
        } else if (c == '\n') {
            fputs("\\n", f);
        } else {
            fputc(c < 0x20 || c == 0x7f ? ' ' : c, f);
        }
    }
    fputc('"', f);
}

/* The rest of a comment line: one line whatever the text holds (a trailing backslash would make
 * gnuplot read the next line as part of the comment, so it is followed by a space). */
static void put_comment_text(FILE *f, const char *s) {
    char last = '\0';
    for (; s && *s; s++) fputc(last = (*s == '\n' || *s == '\r' ? ' ' : *s), f);
    if (last == '\\') fputc(' ', f);
    fputc('\n', f);
}

/* A comment line of the .dat or .gp. */
static void put_comment(FILE *f, const char *s) {
    fputs("# ", f);
    put_comment_text(f, s);
}

static const char *base_name(const char *path) {
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

/* ------------------------------------------------------------ spec legends */

/* Plan specs are long ("tp=4,pp=4,dp=64,...,overlap_grad_reduce=1"). Bars are labelled #1, #2, ...
 * and the legend lists what all plans share once, then for each plan only the keys that differ. */
#define MAXKEYS 40
typedef struct spec_kv {
    char key[32], val[48];
} spec_kv;
typedef struct spec_parts {
    spec_kv kv[MAXKEYS];
    int n;
} spec_parts;

static void spec_parse(const char *spec, spec_parts *p) {
    p->n = 0;
    while (spec && *spec && p->n < MAXKEYS) {
        size_t len = strcspn(spec, ",");
        const char *eq = memchr(spec, '=', len);
        spec_kv *kv = &p->kv[p->n++];
        if (eq) {
            snprintf(kv->key, sizeof kv->key, "%.*s", (int)(eq - spec), spec);
            snprintf(kv->val, sizeof kv->val, "%.*s", (int)(len - (size_t)(eq - spec) - 1), eq + 1);
        } else {
            snprintf(kv->key, sizeof kv->key, "%.*s", (int)len, spec);
            kv->val[0] = '\0';
        }
        spec += len;
        if (*spec == ',') spec++;
    }
}

static const char *spec_get(const spec_parts *p, const char *key) {
    for (int i = 0; i < p->n; i++)
        if (!strcmp(p->kv[i].key, key)) return p->kv[i].val;
    return NULL;
}

/* common: "tp=4 pp=4 ..." shared by all n plans; diff[i]: the rest of plan i. Buffers of `cap`. */
static void spec_legend(const st_plot_plan *plans, int n, char *common, char (*diff)[256], size_t cap) {
    spec_parts *parts = calloc((size_t)n, sizeof *parts);
    common[0] = '\0';
    for (int i = 0; i < n; i++) diff[i][0] = '\0';
    if (!parts) return;
    for (int i = 0; i < n; i++) spec_parse(plans[i].spec, &parts[i]);
    /* keys in order of first appearance */
    char keys[MAXKEYS][32];
    int nkeys = 0;
    for (int i = 0; i < n; i++)
        for (int k = 0; k < parts[i].n; k++) {
            int seen = 0;
            for (int j = 0; j < nkeys; j++) seen |= !strcmp(keys[j], parts[i].kv[k].key);
            if (!seen && nkeys < MAXKEYS) snprintf(keys[nkeys++], sizeof keys[0], "%s", parts[i].kv[k].key);
        }
    for (int j = 0; j < nkeys; j++) {
        const char *v0 = spec_get(&parts[0], keys[j]);
        int same = v0 != NULL;
        for (int i = 1; i < n && same; i++) {
            const char *v = spec_get(&parts[i], keys[j]);
            same = v && !strcmp(v, v0);
        }
        if (same && n > 1) {
            size_t off = strlen(common);
            snprintf(common + off, cap - off, "%s%s=%s", off ? " " : "", keys[j], v0);
            continue;
        }
        for (int i = 0; i < n; i++) {
            const char *v = spec_get(&parts[i], keys[j]);
            if (!v) continue;
            size_t off = strlen(diff[i]);
            snprintf(diff[i] + off, 256 - off, "%s%s=%s", off ? " " : "", keys[j], v);
        }
    }
    free(parts);
}

/* Splits text at spaces into lines of at most `width` characters; returns the count (<= max). */
static int wrap(const char *text, int width, char (*lines)[256], int max) {
    int n = 0;
    while (*text && n < max) {
        size_t len = strlen(text);
        if ((int)len <= width) {
            snprintf(lines[n++], 256, "%s", text);
            break;
        }
        int cut = width;
        while (cut > 0 && text[cut] != ' ') cut--;
        if (cut == 0) cut = width;
        snprintf(lines[n++], 256, "%.*s", cut, text);
        text += cut;
        while (*text == ' ') text++;
    }
    return n;
}

/* ------------------------------------------------------------ the script's frame */

typedef struct frame {
    const char *terminal;
    int width_px, height_px;
} frame;

/* The preamble every script shares: where it is, its terminal and output, noenhanced text. */
static void put_preamble(FILE *f, const st_plot_data *d, const frame *fr, const char *dat_name, const char *image_name,
                         const char *gp_name) {
    char line[1024];
    snprintf(line, sizeof line, "%s: strata plot %s of %s", gp_name, st_plot_kind_name(d->kind), d->source);
    put_comment(f, line);
    snprintf(line, sizeof line, "Restyle freely, then run: gnuplot %s (it reads %s beside it and writes %s there;",
             gp_name, dat_name, image_name);
    put_comment(f, line);
    snprintf(line, sizeof line, "gnuplot -e \"st_out='other.%s'\" %s writes elsewhere).",
             extension(image_name) ? extension(image_name) : "png", gp_name);
    put_comment(f, line);
    fputs("set encoding utf8\n", f);
    fputs("# this script's folder, from the path gnuplot was given\n", f);
    fputs("here = \"\"\n", f);
    fputs("if (exists(\"ARG0\")) { do for [i = strlen(ARG0):1:-1] { if (here eq \"\" && ARG0[i:i] eq \"/\") "
          "{ here = ARG0[1:i] } } }\n",
          f);
    fputs("dat = here . ", f);
    put_gstr(f, dat_name);
    fputs("\nif (!exists(\"st_out\")) st_out = here . ", f);
    put_gstr(f, image_name);
    fputc('\n', f);
    /* gnuplot's defaults pair a 640-pixel PNG with a 5-inch PDF (128 pixels an inch) at the same font
     * size: the same ratio keeps the layout */
    if (!strcmp(fr->terminal, "pdfcairo"))
        fprintf(f, "set terminal pdfcairo size %.2fin,%.2fin font \"Sans,10\" noenhanced\n", fr->width_px / 128.0,
                fr->height_px / 128.0);
    else if (!strcmp(fr->terminal, "svg"))
        fprintf(f, "set terminal svg size %d,%d dynamic font \"Sans,10\" background \"white\" noenhanced\n",
                fr->width_px, fr->height_px);
    else
        fprintf(f, "set terminal pngcairo size %d,%d font \"Sans,10\" noenhanced\n", fr->width_px, fr->height_px);
    fputs("set termoption noenhanced\n", f);
    fputs("set output st_out\n", f);
    fputs("set datafile missing \"NaN\"\n", f);
}

static void put_title(FILE *f, const st_plot_opts *o, const char *deflt) {
    fputs("set title ", f);
    put_gstr(f, o->title ? o->title : deflt);
    fputs(" font \",11\"\n", f);
}

/* Legend lines as labels in the bottom margin: line i at column col[i] (of ncols), row row[i]
 * (0 = top); the bottom margin grows to hold them. */
static void put_legend_lines(FILE *f, char (*lines)[256], const int *col, const int *row, int n, int ncols,
                             const frame *fr) {
    double lh = 12.5 / fr->height_px, bottom = 6.0 / fr->height_px;
    int rows = 0;
    for (int i = 0; i < n; i++)
        if (row[i] + 1 > rows) rows = row[i] + 1;
    for (int i = 0; i < n; i++) {
        double x = 0.02 + col[i] * 0.96 / ncols;
        double y = bottom + (rows - 1 - row[i]) * lh;
        fprintf(f, "set label %d ", 100 + i);
        put_gstr(f, lines[i]);
        fprintf(f, " at screen %.4f, screen %.4f left font \",8\"\n", x, y);
    }
    fprintf(f, "set bmargin at screen %.4f\n", bottom + rows * lh + 48.0 / fr->height_px);
}

/* One plan's spec, wrapped, in the bottom margin. */
static void put_spec_lines(FILE *f, const char *spec, const frame *fr) {
    char lines[4][256], text[1024] = "plan: ";
    int col[4] = {0}, row[4] = {0, 1, 2, 3};
    /* specs have no spaces: a space after each comma lets the line break there */
    size_t off = strlen(text);
    for (const char *c = spec; *c && off + 3 < sizeof text; c++) {
        text[off++] = *c;
        if (*c == ',' && c[1]) text[off++] = ' ';
    }
    text[off] = '\0';
    int k = wrap(text, 115, lines, 4);
    put_legend_lines(f, lines, col, row, k, 1, fr);
}

/* The rank -> spec legend under a bar chart of plans. */
static void put_plan_legend(FILE *f, const st_plot_data *d, int n, const frame *fr) {
    if (d->from_estimate || n <= 0) {
        if (n > 0 && d->plans[0].spec) put_spec_lines(f, d->plans[0].spec, fr);
        return;
    }
    char common[2048];
    char(*diff)[256] = calloc((size_t)n, sizeof *diff);
    char(*lines)[256] = calloc((size_t)n + 4, sizeof *lines);
    int *col = calloc((size_t)n + 4, sizeof *col), *row = calloc((size_t)n + 4, sizeof *row);
    if (!diff || !lines || !col || !row) goto out;
    spec_legend(d->plans, n, common, diff, sizeof common);
    int k = 0, widest = 0;
    if (common[0]) {
        char buf[2100];
        snprintf(buf, sizeof buf, "all: %s", common);
        k = wrap(buf, 115, lines, 3);
        for (int i = 0; i < k; i++) row[i] = i;
    }
    for (int i = 0; i < n; i++) {
        int w = (int)strlen(diff[i]);
        if (w > widest) widest = w;
    }
    /* two columns when the per-plan lines are short */
    int ncols = n > 4 && widest <= 64 ? 2 : 1, per_col = (n + ncols - 1) / ncols, head = k;
    for (int i = 0; i < n; i++) {
        snprintf(lines[k], 256, "#%-3d %s", d->plans[i].rank, diff[i][0] ? diff[i] : "(the same)");
        col[k] = i / per_col;
        row[k++] = head + i % per_col;
    }
    put_legend_lines(f, lines, col, row, k, ncols, fr);
out:
    free(diff);
    free(lines);
    free(col);
    free(row);
}

static int shown_plans(const st_plot_data *d, const st_plot_opts *o) {
    int top = o->top > 0 ? o->top : st_plot_default_top(d->kind);
    return d->nplans < top ? d->nplans : top;
}

static int shown_rows(const st_plot_data *d, const st_plot_opts *o) {
    int top = o->top > 0 ? o->top : st_plot_default_top(d->kind);
    return d->nrows < top ? d->nrows : top;
}

/* A round tick step for n integer positions (about 16 ticks). */
static int tick_step(int n) {
    static const int steps[] = {1, 2, 5, 10, 20, 50, 100, 200, 500, 1000};
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++)
        if (n / steps[i] <= 16) return steps[i];
    return 1000;
}

/* The 1, 2 or 5 times a power of ten that cuts `range` into at most `max` steps: tick labels on a
 * continuous axis (at the gallery's 800 px, with a timeline's row labels beside the plot, six
 * labels of up to five digits fit; the default of gnuplot put ten there, over each other). */
static double nice_step(double range, int max) {
    if (!(range > 0) || !isfinite(range)) return 1;
    double p = pow(10, floor(log10(range / max)));
    static const double m[] = {1, 2, 5, 10};
    for (size_t i = 0; i < sizeof m / sizeof m[0]; i++)
        if (range / (m[i] * p) <= max) return m[i] * p;
    return 10 * p;
}

/* "WHAT\nSUBJECT" (or WHAT alone). */
static void two_lines(char *buf, size_t n, const char *what, const char *subject) {
    snprintf(buf, n, "%s%s%s", what, subject && subject[0] ? "\n" : "", subject ? subject : "");
}

/* The key centred between the title (two lines) and the graph. */
static void put_key_above(FILE *f) {
    fputs("set tmargin 6\nset title offset 0,1.4\nset key at graph 0.5, graph 1.02 center bottom horizontal\n", f);
}

/* ------------------------------------------------------------ strategies */

static void dat_strategies(FILE *f, const st_plot_data *d, const st_plot_opts *o) {
    int n = shown_plans(d, o);
    fprintf(f, "# plans: %d shown of %d\n# rank -> spec:\n", n, d->nplans);
    for (int i = 0; i < n; i++) {
        fprintf(f, "#   #%d ", d->plans[i].rank);
        put_comment_text(f, d->plans[i].spec);
    }
    fputs("# x rank iteration_time_s tokens_per_s memory_peak_gib fits spec\n", f);
    for (int i = 0; i < n; i++) {
        const st_plot_plan *p = &d->plans[i];
        fprintf(f, "%d %d ", i, p->rank);
        put_num(f, p->iteration_time_s);
        fputc(' ', f);
        put_num(f, p->tokens_per_s);
        fputc(' ', f);
        put_num(f, p->memory_peak_gib);
        fprintf(f, " %d ", p->fits);
        put_dstr(f, p->spec);
        fputc('\n', f);
    }
}

static void gp_strategies(FILE *f, const st_plot_data *d, const st_plot_opts *o, const frame *fr) {
    int n = shown_plans(d, o);
    char title[1400], what[64];
    double tmax = 0;
    for (int i = 0; i < n; i++)
        if (d->plans[i].iteration_time_s > tmax) tmax = d->plans[i].iteration_time_s;
    snprintf(what, sizeof what, "Top %d plans: iteration time and peak memory", n);
    two_lines(title, sizeof title, what, d->subject);
    put_title(f, o, title);
    put_plan_legend(f, d, n, fr);
    fprintf(f, "set xrange [-0.6:%g]\n", n - 0.4);
    fputs("set style fill solid 0.85 border rgb \"#333333\"\n"
          "set boxwidth 0.6\n"
          "set xlabel \"plan (rank; specs below)\"\n"
          "set ylabel \"iteration time (s)\"\n"
          "set y2label \"peak memory (GiB)\"\n"
          "set y2range [0:*]\n"
          "set ytics nomirror\n"
          "set y2tics\n"
          "set grid ytics lc rgb \"#dddddd\"\n",
          f);
    fprintf(f, "set yrange [0:%.6g]\n", tmax > 0 ? tmax * 1.1 : 1);
    put_key_above(f);
    /* the times at the foot of the bars, clear of the memory line */
    fputs("plot dat using 1:3:xtic(sprintf(\"#%d\", int($2))) with boxes lc rgb \"#4e79a7\" \\\n"
          "       title \"iteration time (s)\", \\\n"
          "     dat using 1:(0):(sprintf(\"%.4g s\", $3)) with labels offset 0,0.8 font \",8\" \\\n"
          "       tc rgb \"white\" notitle, \\\n"
          "     dat using 1:5 axes x1y2 with linespoints pt 7 ps 1.2 lw 2 lc rgb \"#e15759\" \\\n"
          "       title \"peak memory (GiB)\"\n",
          f);
}

/* ------------------------------------------------------------ breakdown */

static const char *const break_titles[ST_PLOT_NBREAK] = {"compute",   "recompute", "TP comm",         "CP comm",
                                                         "EP comm",   "PP comm",   "pipeline bubble", "DP comm",
                                                         "optimizer", "offload"};
static const char *const break_colors[ST_PLOT_NBREAK] = {"#4e79a7", "#a0cbe8", "#f28e2b", "#ffbe7d", "#b07aa1",
                                                         "#59a14f", "#bab0ac", "#e15759", "#76b7b2", "#9c755f"};

static void dat_breakdown(FILE *f, const st_plot_data *d, const st_plot_opts *o) {
    int n = shown_plans(d, o);
    if (d->from_estimate)
        fputs("# one strata estimate (rank 0)\n", f);
    else
        fprintf(f, "# plans: %d shown of %d\n", n, d->nplans);
    fputs("# rank -> spec:\n", f);
    for (int i = 0; i < n; i++) {
        fprintf(f, "#   #%d ", d->plans[i].rank);
        put_comment_text(f, d->plans[i].spec);
    }
    fputs("# x rank", f);
    for (int k = 0; k < ST_PLOT_NBREAK; k++) fprintf(f, " %s", st_plot_break_keys[k]);
    fputs(" iteration_time_s spec   (seconds)\n", f);
    for (int i = 0; i < n; i++) {
        const st_plot_plan *p = &d->plans[i];
        fprintf(f, "%d %d", i, p->rank);
        for (int k = 0; k < ST_PLOT_NBREAK; k++) {
            fputc(' ', f);
            put_num(f, p->breakdown_s[k]);
        }
        fputc(' ', f);
        put_num(f, p->iteration_time_s);
        fputc(' ', f);
        put_dstr(f, p->spec);
        fputc('\n', f);
    }
}

static void gp_breakdown(FILE *f, const st_plot_data *d, const st_plot_opts *o, const frame *fr) {
    int n = shown_plans(d, o);
    char title[1400], what[64];
    if (d->from_estimate)
        snprintf(what, sizeof what, "Iteration time breakdown");
    else
        snprintf(what, sizeof what, "Iteration time breakdown, top %d plans", n);
    two_lines(title, sizeof title, what, d->subject);
    put_title(f, o, title);
    put_plan_legend(f, d, n, fr);
    double half = n == 1 ? 1.0 : 0.6;
    fprintf(f, "set xrange [%g:%g]\n", -half, n - 1 + half);
    fputs("set style fill solid 0.9 border rgb \"#333333\"\n"
          "set boxwidth 0.6\n"
          "set ylabel \"time per iteration (s)\"\n"
          "set grid ytics lc rgb \"#dddddd\"\n"
          "set key outside right top vertical reverse Left\n",
          f);
    fputs(d->from_estimate ? "set xlabel \"\"\n" : "set xlabel \"plan (rank; specs below)\"\n", f);
    /* stack the components that are not zero everywhere; drawn from the top down, so each bar
     * paints over the one above it and the key reads top to bottom like the stack */
    int used[ST_PLOT_NBREAK], nused = 0;
    for (int k = 0; k < ST_PLOT_NBREAK; k++) {
        int any = 0;
        for (int i = 0; i < n; i++) any |= d->plans[i].breakdown_s[k] != 0;
        if (any) used[nused++] = k;
    }
    if (nused == 0) used[nused++] = 0;
    /* room above the tallest bar for its total */
    double top = 0;
    for (int i = 0; i < n; i++) {
        double t = 0;
        for (int u = 0; u < nused; u++) t += d->plans[i].breakdown_s[used[u]];
        if (t > top) top = t;
    }
    fprintf(f, "set yrange [0:%.6g]\n", top > 0 ? top * 1.1 : 1);
    fputs("plot ", f);
    for (int u = nused - 1; u >= 0; u--) {
        fputs("dat using 1:(", f);
        for (int v = 0; v <= u; v++) fprintf(f, "%s$%d", v ? "+" : "", 3 + used[v]);
        fputs(")", f);
        if (u == nused - 1) fputs(d->from_estimate ? ":xtic(\"estimate\")" : ":xtic(sprintf(\"#%d\", int($2)))", f);
        fprintf(f, " with boxes lc rgb \"%s\" title ", break_colors[used[u]]);
        put_gstr(f, break_titles[used[u]]);
        fputs(", \\\n     ", f);
    }
    /* the total above each bar */
    fputs("dat using 1:(", f);
    for (int v = 0; v < nused; v++) fprintf(f, "%s$%d", v ? "+" : "", 3 + used[v]);
    fputs("):(sprintf(\"%.3g s\", ", f);
    for (int v = 0; v < nused; v++) fprintf(f, "%s$%d", v ? "+" : "", 3 + used[v]);
    fputs(")) with labels offset 0,0.7 font \",8\" notitle\n", f);
}

/* ------------------------------------------------------------ memory */

static const char *const mem_titles[ST_PLOT_NMEM] = {"weights", "gradients", "optimizer states", "activations",
                                                     "other"};
static const char *const mem_colors[ST_PLOT_NMEM] = {"#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#bab0ac"};

static void dat_memory(FILE *f, const st_plot_data *d) {
    fputs("# gpu_memory_gib ", f);
    put_num(f, d->gpu_memory_gib);
    fprintf(f, "\n# stages %d\n", d->nstages);
    if (d->nplans > 0) {
        fputs("# spec ", f);
        put_comment_text(f, d->plans[0].spec);
    }
    fputs("# index 0: stage weights gradients optimizer activations other total   (GiB)\n", f);
    for (int i = 0; i < d->nstages; i++) {
        const st_plot_stage *s = &d->stages[i];
        fprintf(f, "%d", s->stage);
        for (int k = 0; k < ST_PLOT_NMEM; k++) {
            fputc(' ', f);
            put_num(f, s->gib[k]);
        }
        fputc(' ', f);
        put_num(f, s->total_gib);
        fputc('\n', f);
    }
    int lo = d->stages[0].stage, hi = d->stages[0].stage;
    for (int i = 0; i < d->nstages; i++) {
        if (d->stages[i].stage < lo) lo = d->stages[i].stage;
        if (d->stages[i].stage > hi) hi = d->stages[i].stage;
    }
    fputs("\n\n# index 1: the GPU's memory: x gpu_memory_gib\n", f);
    fprintf(f, "%g ", lo - 0.5);
    put_num(f, d->gpu_memory_gib);
    fprintf(f, "\n%g ", hi + 0.5);
    put_num(f, d->gpu_memory_gib);
    fputc('\n', f);
}

static void gp_memory(FILE *f, const st_plot_data *d, const st_plot_opts *o, const frame *fr) {
    char title[1400];
    double peak = 0;
    int peak_stage = 0, lo = d->stages[0].stage, hi = d->stages[0].stage;
    for (int i = 0; i < d->nstages; i++) {
        if (d->stages[i].total_gib > peak) {
            peak = d->stages[i].total_gib;
            peak_stage = d->stages[i].stage;
        }
        if (d->stages[i].stage < lo) lo = d->stages[i].stage;
        if (d->stages[i].stage > hi) hi = d->stages[i].stage;
    }
    snprintf(title, sizeof title, "Memory per pipeline stage%s%s\npeak %.1f GiB (stage %d) of %.1f GiB%s",
             d->subject[0] ? ": " : "", d->subject, peak, peak_stage, d->gpu_memory_gib,
             peak > d->gpu_memory_gib ? ": does not fit" : "");
    put_title(f, o, title);
    if (d->nplans > 0 && d->plans[0].spec) put_spec_lines(f, d->plans[0].spec, fr);
    int n = hi - lo + 1;
    fprintf(f, "set xrange [%g:%g]\n", lo - 0.6, hi + 0.6);
    fprintf(f, "set xtics %d\n", tick_step(n));
    fprintf(f, "set style fill solid 0.9 %s\n", n > 48 ? "noborder" : "border rgb \"#333333\"");
    fprintf(f, "set boxwidth %g\n", n > 48 ? 0.9 : 0.7);
    fputs("set xlabel \"pipeline stage\"\n"
          "set ylabel \"memory (GiB)\"\n"
          "set yrange [0:*]\n"
          "set offsets 0, 0, graph 0.05, 0\n"
          "set grid ytics lc rgb \"#dddddd\"\n"
          "set key outside right top vertical reverse Left\n",
          f);
    fputs("plot ", f);
    for (int k = ST_PLOT_NMEM - 1; k >= 0; k--) {
        fputs("dat index 0 using 1:(", f);
        for (int v = 0; v <= k; v++) fprintf(f, "%s$%d", v ? "+" : "", 2 + v);
        fprintf(f, ") with boxes lc rgb \"%s\" title ", mem_colors[k]);
        put_gstr(f, mem_titles[k]);
        fputs(", \\\n     ", f);
    }
    fputs("dat index 1 using 1:2 with lines lw 2 dt 2 lc rgb \"#000000\" title sprintf(\"GPU memory (%g GiB)\", ", f);
    put_num(f, d->gpu_memory_gib);
    fputs(")\n", f);
}

/* ------------------------------------------------------------ timeline */

typedef struct span {
    double t0_us, t1_us;
} span;

static span trace_span(const st_plot_data *d) {
    span s = {d->events[0].ts_us, d->events[0].ts_us + d->events[0].dur_us};
    for (int i = 0; i < d->nevents; i++) {
        const st_plot_event *e = &d->events[i];
        if (e->ts_us < s.t0_us) s.t0_us = e->ts_us;
        if (e->ts_us + e->dur_us > s.t1_us) s.t1_us = e->ts_us + e->dur_us;
    }
    return s;
}

/* The events of the shown rows, and which categories they use (in order of first use). */
static int shown_events(const st_plot_data *d, int nrows, int *cat_used) {
    int n = 0;
    for (int c = 0; c < d->ncats; c++) cat_used[c] = 0;
    for (int i = 0; i < d->nevents; i++)
        if (d->events[i].row < nrows) {
            cat_used[d->events[i].cat] = 1;
            n++;
        }
    return n;
}

static void dat_timeline(FILE *f, const st_plot_data *d, const st_plot_opts *o) {
    int nr = shown_rows(d, o);
    int *used = calloc((size_t)d->ncats, sizeof *used);
    if (!used) return;
    int ne = shown_events(d, nr, used);
    span s = trace_span(d);
    fprintf(f, "# rows %d, shown %d; events %d, shown %d; span ", d->nrows, nr, d->nevents, ne);
    put_num(f, (s.t1_us - s.t0_us) / 1000);
    fputs(" ms from ts ", f);
    put_num(f, s.t0_us);
    fputs(" us\n", f);
    fputs("# index 0: rows: row pid tid label\n", f);
    for (int r = 0; r < nr; r++) {
        fprintf(f, "%d ", r);
        put_dstr(f, d->rows[r].pid);
        fputc(' ', f);
        put_dstr(f, d->rows[r].tid);
        fputc(' ', f);
        put_dstr(f, d->rows[r].label);
        fputc('\n', f);
    }
    int block = 1;
    for (int c = 0; c < d->ncats; c++) {
        if (!used[c]) continue;
        fprintf(f, "\n\n# index %d: category ", block++);
        put_dstr(f, d->cats[c]);
        fputs("\n# row ts_us dur_us start_ms end_ms name   (start/end relative to the first event)\n", f);
        for (int i = 0; i < d->nevents; i++) {
            const st_plot_event *e = &d->events[i];
            if (e->cat != c || e->row >= nr) continue;
            fprintf(f, "%d ", e->row);
            put_num(f, e->ts_us);
            fputc(' ', f);
            put_num(f, e->dur_us);
            fputc(' ', f);
            put_num(f, (e->ts_us - s.t0_us) / 1000);
            fputc(' ', f);
            put_num(f, (e->ts_us + e->dur_us - s.t0_us) / 1000);
            fputc(' ', f);
            put_dstr(f, e->name);
            fputc('\n', f);
        }
    }
    free(used);
}

static void gp_timeline(FILE *f, const st_plot_data *d, const st_plot_opts *o) {
    int nr = shown_rows(d, o);
    int *used = calloc((size_t)d->ncats, sizeof *used);
    if (!used) return;
    int ne = shown_events(d, nr, used);
    span s = trace_span(d);
    char title[1400];
    if (nr < d->nrows)
        snprintf(title, sizeof title,
                 "Timeline of %s\nshowing %d of %d rows (--top N for more): %d of %d events; the trace spans %.3f ms",
                 base_name(d->source), nr, d->nrows, ne, d->nevents, (s.t1_us - s.t0_us) / 1000);
    else
        snprintf(title, sizeof title, "Timeline of %s\n%d rows, %d events, %.3f ms", base_name(d->source), d->nrows, ne,
                 (s.t1_us - s.t0_us) / 1000);
    put_title(f, o, title);
    fprintf(f, "set yrange [%g:%g]\n", nr - 0.5, -0.5);
    fputs("set ytics (", f);
    for (int r = 0; r < nr; r++) {
        fputs(r ? ", " : "", f);
        put_gstr(f, d->rows[r].label);
        fprintf(f, " %d", r);
    }
    fprintf(f, ") font \",%d\"\n", nr > 24 ? 7 : 9);
    /* the .dat holds milliseconds; a trace of a second or more is drawn in seconds, so that its tick
     * labels stay short beside long row labels */
    double span_ms = (s.t1_us - s.t0_us) / 1000, per = span_ms >= 1000 ? 1000 : 1;
    fprintf(f, "set xtics %.17g\n", nice_step(span_ms / per, 5));
    fprintf(f, "set xlabel \"time (%s)\"\n", per > 1 ? "s" : "ms");
    fputs("set xrange [0:*]\n"
          "set grid xtics lc rgb \"#dddddd\"\n"
          "set ytics nomirror\n"
          "set key outside right top vertical\n",
          f);
    /* white edges keep neighbouring boxes apart while they are wide enough to show */
    fputs(ne <= 2000 ? "set style fill solid 1.0 border lc rgb \"white\"\n" : "set style fill solid 1.0 noborder\n", f);
    fputs("plot ", f);
    int block = 1, first = 1;
    for (int c = 0; c < d->ncats; c++) {
        if (!used[c]) continue;
        fprintf(f,
                "%sdat index %d using (($4+$5)/2/%g):1:($4/%g):($5/%g):($1-0.38):($1+0.38) with boxxyerror lc rgb "
                "\"%s\" title ",
                first ? "" : ", \\\n     ", block++, per, per, per, palette[c % NPALETTE]);
        put_gstr(f, d->cats[c]);
        first = 0;
    }
    fputc('\n', f);
    free(used);
}

/* ------------------------------------------------------------ scaling */

/* Clusters in order of first appearance; order[i] = cluster index of result i. */
static int cluster_groups(const st_plot_data *d, int *group, const char **names) {
    int ng = 0;
    for (int i = 0; i < d->nresults; i++) {
        int g = 0;
        while (g < ng && strcmp(names[g], d->results[i].cluster)) g++;
        if (g == ng) names[ng++] = d->results[i].cluster;
        group[i] = g;
    }
    return ng;
}

/* Result indices of group g, by GPU count (then input order). */
static int group_members(const st_plot_data *d, const int *group, int g, int *out) {
    int n = 0;
    for (int i = 0; i < d->nresults; i++)
        if (group[i] == g) {
            int j = n++;
            while (j > 0 && d->results[out[j - 1]].gpus > d->results[i].gpus) {
                out[j] = out[j - 1];
                j--;
            }
            out[j] = i;
        }
    return n;
}

static void dat_scaling(FILE *f, const st_plot_data *d) {
    int *group = calloc((size_t)d->nresults, sizeof *group), *mem = calloc((size_t)d->nresults, sizeof *mem);
    const char **names = calloc((size_t)d->nresults, sizeof *names);
    if (!group || !mem || !names) goto out;
    int ng = cluster_groups(d, group, names);
    for (int i = 0; i < d->nresults; i++)
        if (!d->results[i].fits)
            fprintf(f, "# skipped (does not fit): %s at %lld GPUs\n", d->results[i].cluster,
                    (long long)d->results[i].gpus);
    int block = 0;
    for (int g = 0; g < ng; g++) {
        int n = group_members(d, group, g, mem), nfit = 0;
        for (int j = 0; j < n; j++) nfit += d->results[mem[j]].fits;
        if (!nfit) continue;
        fprintf(f, "%s# index %d: cluster ", block ? "\n\n" : "", block);
        put_dstr(f, names[g]);
        fputs(" ", f);
        put_dstr(f, d->results[mem[0]].gpu);
        fputs("\n# gpus tokens_per_s mfu spec\n", f);
        for (int j = 0; j < n; j++) {
            const st_plot_result *r = &d->results[mem[j]];
            if (!r->fits) continue;
            fprintf(f, "%lld ", (long long)r->gpus);
            put_num(f, r->tokens_per_s);
            fputc(' ', f);
            put_num(f, r->mfu);
            fputc(' ', f);
            put_dstr(f, r->spec ? r->spec : "");
            fputc('\n', f);
        }
        block++;
    }
out:
    free(group);
    free(mem);
    free(names);
}

static void gp_scaling(FILE *f, const st_plot_data *d, const st_plot_opts *o) {
    int *group = calloc((size_t)d->nresults, sizeof *group), *mem = calloc((size_t)d->nresults, sizeof *mem);
    const char **names = calloc((size_t)d->nresults, sizeof *names);
    if (!group || !mem || !names) goto out;
    int ng = cluster_groups(d, group, names);
    char title[1400], subject[600];
    snprintf(subject, sizeof subject, "%s%sthe best plan at each size", d->subject, d->subject[0] ? "; " : "");
    two_lines(title, sizeof title, "Throughput and MFU against GPUs", subject);
    put_title(f, o, title);
    double tmax = 0;
    for (int i = 0; i < d->nresults; i++)
        if (d->results[i].fits && d->results[i].tokens_per_s > tmax) tmax = d->results[i].tokens_per_s;
    double tscale = tmax >= 1e6 ? 1e6 : tmax >= 1e4 ? 1e3 : 1;
    const char *tunit = tscale == 1e6 ? "tokens/s (millions)" : tscale == 1e3 ? "tokens/s (thousands)" : "tokens/s";
    /* ticks at the GPU counts present */
    int64_t *ticks = calloc((size_t)d->nresults, sizeof *ticks);
    int nt = 0;
    for (int i = 0; ticks && i < d->nresults; i++) {
        if (!d->results[i].fits) continue;
        int seen = 0;
        for (int t = 0; t < nt; t++) seen |= ticks[t] == d->results[i].gpus;
        if (!seen) ticks[nt++] = d->results[i].gpus;
    }
    fputs("set logscale x 2\nset xtics (", f);
    for (int t = 0; t < nt; t++) fprintf(f, "%s\"%lld\" %lld", t ? ", " : "", (long long)ticks[t], (long long)ticks[t]);
    fputs(")\n", f);
    free(ticks);
    fputs("set offsets graph 0.05, graph 0.05, 0, 0\n"
          "set xlabel \"GPUs\"\n"
          "set y2label \"MFU (%)\"\n"
          "set yrange [0:*]\n"
          "set y2range [0:100]\n"
          "set ytics nomirror\n"
          "set y2tics 10\n"
          "set grid xtics ytics lc rgb \"#dddddd\"\n"
          "set key inside top left vertical Left reverse box opaque\n",
          f);
    fprintf(f, "set ylabel \"%s\"\ntokens_scale = %g\n", tunit, tscale);
    fputs("plot ", f);
    int block = 0;
    for (int g = 0; g < ng; g++) {
        int n = group_members(d, group, g, mem), nfit = 0;
        for (int j = 0; j < n; j++) nfit += d->results[mem[j]].fits;
        if (!nfit) continue;
        char t[200];
        const char *color = palette[g % NPALETTE];
        snprintf(t, sizeof t, "%s tokens/s", names[g]);
        fprintf(f, "%sdat index %d using 1:($2/tokens_scale) with linespoints pt 7 lw 2 lc rgb \"%s\" title ",
                block ? ", \\\n     " : "", block, color);
        put_gstr(f, t);
        snprintf(t, sizeof t, "%s MFU", names[g]);
        fprintf(
            f,
            ", \\\n     dat index %d using 1:($3*100) axes x1y2 with linespoints pt 6 dt 2 lw 1.5 lc rgb \"%s\" title ",
            block, color);
        put_gstr(f, t);
        block++;
    }
    fputc('\n', f);
out:
    free(group);
    free(mem);
    free(names);
}

/* ------------------------------------------------------------ hardware */

/* Bar positions: clusters side by side, one slot per GPU count, a gap between clusters. */
static void hardware_layout(const st_plot_data *d, int *group, int *mem, const char **names, double *x, int *ng_out) {
    int ng = cluster_groups(d, group, names);
    double pos = 0;
    for (int g = 0; g < ng; g++) {
        int n = group_members(d, group, g, mem);
        for (int j = 0; j < n; j++) x[mem[j]] = pos++;
        pos += 0.6;
    }
    *ng_out = ng;
}

static int has_costs(const st_plot_data *d) {
    for (int i = 0; i < d->nresults; i++)
        if (!isnan(d->results[i].cost_to_train)) return 1;
    return 0;
}

/* million $ for costs in the millions, thousand $ below; energy = 0 for the cost to train, 1 for
 * the energy cost */
static double cost_scale(const st_plot_data *d, int energy, const char **unit) {
    double hi = 0;
    for (int i = 0; i < d->nresults; i++) {
        double v = energy ? d->results[i].energy_cost : d->results[i].cost_to_train;
        if (!isnan(v) && v > hi) hi = v;
    }
    if (hi >= 1e6) {
        *unit = "million $";
        return 1e6;
    }
    if (hi >= 1e3) {
        *unit = "thousand $";
        return 1e3;
    }
    *unit = "$";
    return 1;
}

static void dat_hardware(FILE *f, const st_plot_data *d) {
    int *group = calloc((size_t)d->nresults, sizeof *group), *mem = calloc((size_t)d->nresults, sizeof *mem), ng;
    const char **names = calloc((size_t)d->nresults, sizeof *names);
    double *x = calloc((size_t)d->nresults, sizeof *x);
    if (!group || !mem || !names || !x) goto out;
    hardware_layout(d, group, mem, names, x, &ng);
    fputs("# tokens ", f);
    put_num(f, d->tokens);
    /* the energy columns only when the input has them: a compare without --energy reads as before */
    fprintf(f, "\n# x cluster gpus time_to_train_days cost_to_train%s fits spec   (NaN: null in the input)\n",
            d->has_energy ? " energy_mwh tokens_per_joule energy_cost" : "");
    for (int g = 0; g < ng; g++) {
        int n = group_members(d, group, g, mem);
        for (int j = 0; j < n; j++) {
            const st_plot_result *r = &d->results[mem[j]];
            put_num(f, x[mem[j]]);
            fputc(' ', f);
            put_dstr(f, r->cluster);
            fprintf(f, " %lld ", (long long)r->gpus);
            put_num(f, r->time_to_train_days);
            fputc(' ', f);
            put_num(f, r->cost_to_train);
            const double en[] = {r->energy_mwh, r->tokens_per_joule, r->energy_cost};
            for (int k = 0; d->has_energy && k < 3; k++) {
                fputc(' ', f);
                put_num(f, en[k]);
            }
            fprintf(f, " %d ", r->fits);
            put_dstr(f, r->spec ? r->spec : "");
            fputc('\n', f);
        }
    }
out:
    free(group);
    free(mem);
    free(names);
    free(x);
}

/* "WHAT 300B tokens" */
static void fmt_tokens(char *buf, size_t n, const char *what, double t) {
    if (isnan(t))
        snprintf(buf, n, "%s", what);
    else if (t >= 1e12)
        snprintf(buf, n, "%s %.3gT tokens", what, t / 1e12);
    else if (t >= 1e9)
        snprintf(buf, n, "%s %.3gB tokens", what, t / 1e9);
    else
        snprintf(buf, n, "%s %.3g tokens", what, t);
}

/* compare --energy's panel below the time to train (the same bars, clusters and labels): energy to
 * train in MWh, tokens per joule over each bar, and the energy cost on the right axis when priced.
 * Columns 6-8 of the .dat (dat_hardware). */
static void gp_energy(FILE *f, const st_plot_data *d) {
    int priced = 0;
    for (int i = 0; i < d->nresults; i++) priced |= !isnan(d->results[i].energy_cost);
    fputs("unset title\nset ylabel \"energy to train (MWh)\"\n", f);
    if (!priced) {
        fputs("unset y2label\nunset y2tics\n"
              "plot dat using 1:6:(0.6) with boxes lc rgb \"#59a14f\" title \"energy to train (MWh)\", \\\n"
              "     dat using 1:6:(sprintf(\"%.3g tok/J\", $7)) with labels offset 0,0.6 font \",8\" notitle\n",
              f);
    } else {
        const char *unit = "$";
        fprintf(f, "energy_scale = %g\n", cost_scale(d, 1, &unit));
        char t[64];
        snprintf(t, sizeof t, "energy cost (%s)", unit);
        fputs("set y2label ", f);
        put_gstr(f, t);
        fputs("\nset y2range [0:*]\nset y2tics\n"
              "plot dat using ($1-0.19):6:(0.36) with boxes lc rgb \"#59a14f\" title \"energy to train (MWh)\", \\\n"
              "     dat using ($1+0.19):($8/energy_scale):(0.36) axes x1y2 with boxes lc rgb \"#edc948\" title ",
              f);
        put_gstr(f, t);
        /* the labels last, over both bars */
        fputs(", \\\n     dat using 1:6:(sprintf(\"%.3g tok/J\", $7)) with labels offset 0,0.6 font \",8\" notitle\n", f);
    }
    fputs("unset multiplot\n", f);
}

static void gp_hardware(FILE *f, const st_plot_data *d, const st_plot_opts *o, const frame *fr) {
    int *group = calloc((size_t)d->nresults, sizeof *group), *mem = calloc((size_t)d->nresults, sizeof *mem), ng;
    const char **names = calloc((size_t)d->nresults, sizeof *names);
    double *x = calloc((size_t)d->nresults, sizeof *x);
    if (!group || !mem || !names || !x) goto out;
    hardware_layout(d, group, mem, names, x, &ng);
    int costs = has_costs(d);
    const char *unit = "$";
    double scale = cost_scale(d, 0, &unit);
    char title[1400], what[128], subject[600];
    fmt_tokens(what, sizeof what, costs ? "Time and cost to train" : "Time to train", d->tokens);
    snprintf(subject, sizeof subject, "%s%sthe best plan on each cluster and size", d->subject,
             d->subject[0] ? "; " : "");
    two_lines(title, sizeof title, what, subject);
    /* with compare --energy: two panels, this one and gp_energy's below */
    if (d->has_energy) fputs("set multiplot layout 2,1\n", f);
    put_title(f, o, title);
    double xmax = 0;
    for (int i = 0; i < d->nresults; i++)
        if (x[i] > xmax) xmax = x[i];
    fprintf(f, "set xrange [-0.7:%g]\n", xmax + 0.7);
    fputs("set xtics (", f);
    for (int i = 0; i < d->nresults; i++)
        fprintf(f, "%s\"%lld\" %g", i ? ", " : "", (long long)d->results[i].gpus, x[i]);
    fputs(") scale 0\n", f);
    /* cluster names under their groups, "does not fit" where a bar is missing */
    for (int g = 0; g < ng; g++) {
        int n = group_members(d, group, g, mem);
        double mid = (x[mem[0]] + x[mem[n - 1]]) / 2;
        fprintf(f, "set label %d ", 10 + g);
        put_gstr(f, names[g]);
        fprintf(f, " at first %g, graph 0 center offset 0,-2.4 font \",10\"\n", mid);
        if (g > 0)
            fprintf(f, "set arrow %d from first %g, graph 0 to first %g, graph 1 nohead lc rgb \"#bbbbbb\" dt 3\n",
                    10 + g, x[mem[0]] - 0.8, x[mem[0]] - 0.8);
    }
    for (int i = 0; i < d->nresults; i++)
        if (!d->results[i].fits || isnan(d->results[i].time_to_train_days))
            fprintf(
                f, "set label %d \"does not fit\" at first %g, graph 0.03 rotate left font \",8\" tc rgb \"#888888\"\n",
                100 + i, x[i]);
    fputs("set bmargin 6\nset xlabel \"GPUs, per cluster\" offset 0,-1.6\n", f);
    fputs("set style fill solid 0.85 border rgb \"#333333\"\n"
          "set ylabel \"time to train (days)\"\n"
          "set yrange [0:*]\n"
          "set ytics nomirror\n"
          "set grid ytics lc rgb \"#dddddd\"\n"
          "set offsets 0, 0, graph 0.1, 0\n",
          f);
    put_key_above(f);
    (void)fr;
    if (costs) {
        fprintf(f, "set y2label \"cost to train (%s)\"\nset y2range [0:*]\nset y2tics\n", unit);
        fprintf(f, "cost_scale = %g\n", scale);
        fputs("plot dat using ($1-0.19):4:(0.36) with boxes lc rgb \"#4e79a7\" title \"time to train (days)\", \\\n"
              "     dat using ($1+0.19):($5/cost_scale):(0.36) axes x1y2 with boxes lc rgb \"#f28e2b\" title ",
              f);
        char t[64];
        snprintf(t, sizeof t, "cost to train (%s)", unit);
        put_gstr(f, t);
        fputc('\n', f);
    } else {
        fputs("plot dat using 1:4:(0.6) with boxes lc rgb \"#4e79a7\" title \"time to train (days)\", \\\n"
              "     dat using 1:4:(sprintf(\"%.3g\", $4)) with labels offset 0,0.6 font \",8\" notitle\n",
              f);
    }
    if (d->has_energy) gp_energy(f, d);
out:
    free(group);
    free(mem);
    free(names);
    free(x);
}

/* ------------------------------------------------------------ accuracy */

#define ACC_LABELS_ALL 12 /* name every point up to this many; else number the worst ACC_LABELS_WORST */
#define ACC_LABELS_WORST 6

static double rel_err(const st_plot_point *p) { return (p->predicted - p->measured) / p->measured; }

/* Sets in order of first appearance. */
static int point_sets(const st_plot_data *d, const char **names, int *set) {
    int ns = 0;
    for (int i = 0; i < d->npoints; i++) {
        int s = 0;
        while (s < ns && strcmp(names[s], d->points[i].set)) s++;
        if (s == ns) names[ns++] = d->points[i].set;
        set[i] = s;
    }
    return ns;
}

/* The axis range (both axes: the chart is square) and whether it is logarithmic. */
typedef struct acc_axes {
    double lo, hi;
    int logs;
} acc_axes;

static acc_axes accuracy_axes(const st_plot_data *d) {
    acc_axes a = {d->points[0].measured, d->points[0].measured, 0};
    for (int i = 0; i < d->npoints; i++) {
        const st_plot_point *p = &d->points[i];
        a.lo = fmin(a.lo, fmin(p->measured, p->predicted));
        a.hi = fmax(a.hi, fmax(p->measured, p->predicted));
    }
    a.logs = a.hi > 10 * a.lo;
    if (a.logs) {
        a.lo /= 1.3;
        a.hi *= 1.3;
    } else {
        double pad = (a.hi - a.lo) * 0.08 + a.hi * 0.02;
        a.lo = a.lo - pad > 0 ? a.lo - pad : 0;
        a.hi += pad;
    }
    return a;
}

/* label[i]: 0 = none, k > 0 = the k-th labelled point. With few points every point carries its
 * name; with many, the ACC_LABELS_WORST largest |errors| carry their number (ties: file order). */
static void labelled_points(const st_plot_data *d, int *label) {
    int all = d->npoints <= ACC_LABELS_ALL;
    for (int i = 0; i < d->npoints; i++) label[i] = all ? i + 1 : 0;
    if (all) return;
    for (int k = 1; k <= ACC_LABELS_WORST && k <= d->npoints; k++) {
        int best = -1;
        for (int i = 0; i < d->npoints; i++)
            if (!label[i] && (best < 0 || fabs(rel_err(&d->points[i])) > fabs(rel_err(&d->points[best])))) best = i;
        label[best] = k;
    }
}

/* Which side of its point a label goes: right of points in the left half of the chart, else left,
 * so that names stay inside the frame. */
static int label_on_left(const st_plot_point *p, const acc_axes *a) {
    double mid = a->logs ? sqrt(a->lo * a->hi) : (a->lo + a->hi) / 2;
    return p->measured > mid;
}

static void put_point(FILE *f, const st_plot_point *p, const char *tag) {
    put_num(f, p->measured);
    fputc(' ', f);
    put_num(f, p->predicted);
    fputc(' ', f);
    put_num(f, 100 * rel_err(p));
    fputc(' ', f);
    put_dstr(f, p->name);
    if (tag) {
        fputc(' ', f);
        put_dstr(f, tag);
    }
    fputc('\n', f);
}

/* The .dat blocks after the sets: labels right of their points (block ns), then left (ns + 1);
 * only non-empty blocks are written. Returns which were written (bit 0: right, bit 1: left). */
static int label_blocks(FILE *f, const st_plot_data *d, const int *label, int ns, const acc_axes *a, int write) {
    int present = 0, block = ns;
    for (int side = 0; side < 2; side++) {
        int any = 0;
        for (int k = 1; k <= d->npoints; k++)
            for (int i = 0; i < d->npoints; i++) {
                if (label[i] != k || label_on_left(&d->points[i], a) != side) continue;
                if (!any && write)
                    fprintf(f,
                            "\n\n# index %d: labelled points, label %s of the point\n"
                            "# measured predicted error_pct name label\n",
                            block, side ? "left" : "right");
                any = 1;
                if (write) {
                    char tag[16];
                    snprintf(tag, sizeof tag, "%d", k);
                    put_point(f, &d->points[i], d->npoints <= ACC_LABELS_ALL ? d->points[i].name : tag);
                }
            }
        if (any) {
            present |= 1 << side;
            block++;
        }
    }
    return present;
}

static void dat_accuracy(FILE *f, const st_plot_data *d) {
    const char **names = calloc((size_t)d->npoints, sizeof *names);
    int *set = calloc((size_t)d->npoints, sizeof *set), *label = calloc((size_t)d->npoints, sizeof *label);
    if (!names || !set || !label) goto out;
    int ns = point_sets(d, names, set);
    acc_axes a = accuracy_axes(d);
    labelled_points(d, label);
    fprintf(f, "# points %d, sets %d\n", d->npoints, ns);
    for (int s = 0; s < ns; s++) {
        fprintf(f, "%s# index %d: set ", s ? "\n\n" : "", s);
        put_dstr(f, names[s]);
        fputs("\n# measured predicted error_pct name   (seconds; error = (predicted - measured) / measured)\n", f);
        for (int i = 0; i < d->npoints; i++)
            if (set[i] == s) put_point(f, &d->points[i], NULL);
    }
    label_blocks(f, d, label, ns, &a, 1);
out:
    free(names);
    free(set);
    free(label);
}

/* Tick marks at 1, 2, 5 x 10^k inside [lo, hi]. */
static void put_log_tics(FILE *f, const char *axis, double lo, double hi) {
    int first = 1;
    fprintf(f, "set %stics (", axis);
    for (int e = (int)floor(log10(lo)); e <= (int)ceil(log10(hi)); e++)
        for (int m = 0; m < 3; m++) {
            double v = (m == 0 ? 1 : m == 1 ? 2 : 5) * pow(10, e);
            if (v < lo || v > hi) continue;
            fprintf(f, "%s\"%g\" %g", first ? "" : ", ", v, v);
            first = 0;
        }
    fputs(")\n", f);
}

static void gp_accuracy(FILE *f, const st_plot_data *d, const st_plot_opts *o, const frame *fr) {
    const char **names = calloc((size_t)d->npoints, sizeof *names);
    int *set = calloc((size_t)d->npoints, sizeof *set), *label = calloc((size_t)d->npoints, sizeof *label);
    if (!names || !set || !label) goto out;
    int ns = point_sets(d, names, set);
    acc_axes a = accuracy_axes(d);
    labelled_points(d, label);
    double mae = 0;
    int within = 0;
    for (int i = 0; i < d->npoints; i++) {
        mae += fabs(rel_err(&d->points[i]));
        within += fabs(rel_err(&d->points[i])) <= 0.1;
    }
    mae = 100 * mae / d->npoints;
    char title[1400];
    snprintf(title, sizeof title,
             "Predicted against measured iteration time\n%d runs: mean |error| %.1f %%, %d within 10 %%", d->npoints,
             mae, within);
    put_title(f, o, title);
    if (a.logs) {
        fputs("set logscale xy\n", f);
        put_log_tics(f, "x", a.lo, a.hi);
        put_log_tics(f, "y", a.lo, a.hi);
    }
    fprintf(f, "set xrange [%.6g:%.6g]\nset yrange [%.6g:%.6g]\n", a.lo, a.hi, a.lo, a.hi);
    /* a square chart on the left; with many points, the numbered ones are listed on the right */
    double top = 1 - 70.0 / fr->height_px, bottom = 60.0 / fr->height_px, left = 75.0 / fr->width_px;
    double right = left + (top - bottom) * fr->height_px / fr->width_px;
    fprintf(f, "set tmargin at screen %.4f\nset bmargin at screen %.4f\n", top, bottom);
    fprintf(f, "set lmargin at screen %.4f\nset rmargin at screen %.4f\n", left, right);
    if (d->npoints > ACC_LABELS_ALL) {
        double lh = 14.0 / fr->height_px, y = top - lh;
        fprintf(f,
                "set label 100 \"largest errors (predicted - measured) / measured:\" at screen %.4f, screen %.4f "
                "left font \",9\"\n",
                right + 0.03, y);
        for (int k = 1; k <= ACC_LABELS_WORST; k++)
            for (int i = 0; i < d->npoints; i++)
                if (label[i] == k) {
                    const st_plot_point *p = &d->points[i];
                    char line[300];
                    /* two lines each: the error, then the name (long ones end in "...") */
                    snprintf(line, sizeof line, "%d   %+.1f %%%s%s%s", k, 100 * rel_err(p), p->set[0] ? "   (" : "",
                             p->set, p->set[0] ? ")" : "");
                    y -= 1.5 * lh;
                    fprintf(f, "set label %d ", 100 + 2 * k);
                    put_gstr(f, line);
                    fprintf(f, " at screen %.4f, screen %.4f left font \",8\"\n", right + 0.03, y);
                    if (strlen(p->name) > 54)
                        snprintf(line, sizeof line, "%.51s...", p->name);
                    else
                        snprintf(line, sizeof line, "%s", p->name);
                    y -= lh;
                    fprintf(f, "set label %d ", 101 + 2 * k);
                    put_gstr(f, line);
                    fprintf(f, " at screen %.4f, screen %.4f left font \",8\"\n", right + 0.05, y);
                }
    }
    fputs("set samples 200\n"
          "set xlabel \"measured iteration time (s)\"\n"
          "set ylabel \"predicted iteration time (s)\"\n"
          "set grid xtics ytics lc rgb \"#dddddd\"\n"
          "set key top left Left reverse box opaque\n"
          "set style fill transparent solid 0.25 noborder\n",
          f);
    fputs("plot '+' using 1:($1*0.9):($1*1.1) with filledcurves lc rgb \"#59a14f\" title \"within ±10 %\", \\\n"
          "     x with lines lw 1.5 dt 2 lc rgb \"#333333\" title \"y = x\"",
          f);
    for (int s = 0; s < ns; s++) {
        int n = 0;
        for (int i = 0; i < d->npoints; i++) n += set[i] == s;
        char t[200];
        snprintf(t, sizeof t, "%s (%d)", names[s][0] ? names[s] : "runs", n);
        fprintf(f, ", \\\n     dat index %d using 1:2 with points pt 7 ps 0.9 lc rgb \"%s\" title ", s,
                palette[s % NPALETTE]);
        put_gstr(f, t);
    }
    int present = label_blocks(f, d, label, ns, &a, 0), block = ns;
    const char *font = d->npoints > ACC_LABELS_ALL ? ",9" : ",7";
    if (present & 1)
        fprintf(f,
                ", \\\n     dat index %d using 1:2:(stringcolumn(5)) with labels left offset 0.6,0.4 font \"%s\" "
                "tc rgb \"#333333\" notitle",
                block++, font);
    if (present & 2)
        fprintf(f,
                ", \\\n     dat index %d using 1:2:(stringcolumn(5)) with labels right offset -0.6,0.4 font \"%s\" "
                "tc rgb \"#333333\" notitle",
                block++, font);
    fputc('\n', f);
out:
    free(names);
    free(set);
    free(label);
}

/* ------------------------------------------------------------ .dat and .gp */

static frame frame_of(const st_plot_data *d, const st_plot_opts *o) {
    frame fr = {st_plot_terminal(o->out), 800, 500};
    if (!fr.terminal) fr.terminal = "pngcairo";
    if (d->kind == ST_PLOT_HARDWARE && d->has_energy) fr.height_px = 900; /* two panels (gp_energy) */
    if (d->kind == ST_PLOT_TIMELINE) {
        int nr = shown_rows(d, o), h = 150 + 22 * nr;
        fr.height_px = h < 360 ? 360 : h > 1400 ? 1400 : h;
    }
    return fr;
}

static int check_drawable(const st_plot_data *d, st_error *err) {
    switch (d->kind) {
    case ST_PLOT_STRATEGIES:
    case ST_PLOT_BREAKDOWN:
        if (d->nplans == 0) return st_error_set(err, ST_EINVAL, d->source, "plans", "empty: nothing to plot");
        break;
    case ST_PLOT_MEMORY:
        if (d->nstages == 0) return st_error_set(err, ST_EINVAL, d->source, "memory_gib", "empty: nothing to plot");
        break;
    case ST_PLOT_TIMELINE:
        if (d->nevents == 0) return st_error_set(err, ST_EINVAL, d->source, NULL, "no events to plot");
        break;
    case ST_PLOT_SCALING:
    case ST_PLOT_HARDWARE: {
        int fit = 0;
        for (int i = 0; i < d->nresults; i++) fit |= d->results[i].fits;
        if (!fit) return st_error_set(err, ST_EINVAL, d->source, "results", "no result fits: nothing to plot");
        break;
    }
    case ST_PLOT_ACCURACY:
        if (d->npoints == 0) return st_error_set(err, ST_EINVAL, d->source, NULL, "no rows to plot");
        break;
    default: return st_error_set(err, ST_EINTERNAL, NULL, NULL, "unknown plot kind");
    }
    return 0;
}

int st_plot_write_data(FILE *f, const st_plot_data *d, const st_plot_opts *o, st_error *err) {
    int rc = check_drawable(d, err);
    if (rc) return rc;
    fprintf(f, "# strata plot %s: the numbers of ", st_plot_kind_name(d->kind));
    put_comment_text(f, d->source);
    if (d->subject[0]) put_comment(f, d->subject);
    switch (d->kind) {
    case ST_PLOT_STRATEGIES: dat_strategies(f, d, o); break;
    case ST_PLOT_BREAKDOWN: dat_breakdown(f, d, o); break;
    case ST_PLOT_MEMORY: dat_memory(f, d); break;
    case ST_PLOT_TIMELINE: dat_timeline(f, d, o); break;
    case ST_PLOT_SCALING: dat_scaling(f, d); break;
    case ST_PLOT_HARDWARE: dat_hardware(f, d); break;
    case ST_PLOT_ACCURACY: dat_accuracy(f, d); break;
    default: break;
    }
    if (ferror(f)) return st_error_set(err, ST_EIO, NULL, NULL, "cannot write the data: %s", strerror(errno));
    return 0;
}

int st_plot_write_script(FILE *f, const st_plot_data *d, const st_plot_opts *o, const char *dat_name,
                         const char *image_name, st_error *err) {
    int rc = check_drawable(d, err);
    if (rc) return rc;
    frame fr = frame_of(d, o);
    char gp_name[512];
    snprintf(gp_name, sizeof gp_name, "%s", dat_name);
    char *dot = strrchr(gp_name, '.');
    if (dot && !strcmp(dot, ".dat")) strcpy(dot, ".gp");
    put_preamble(f, d, &fr, dat_name, image_name, gp_name);
    switch (d->kind) {
    case ST_PLOT_STRATEGIES: gp_strategies(f, d, o, &fr); break;
    case ST_PLOT_BREAKDOWN: gp_breakdown(f, d, o, &fr); break;
    case ST_PLOT_MEMORY: gp_memory(f, d, o, &fr); break;
    case ST_PLOT_TIMELINE: gp_timeline(f, d, o); break;
    case ST_PLOT_SCALING: gp_scaling(f, d, o); break;
    case ST_PLOT_HARDWARE: gp_hardware(f, d, o, &fr); break;
    case ST_PLOT_ACCURACY: gp_accuracy(f, d, o, &fr); break;
    default: break;
    }
    fputs("unset output\n", f);
    if (ferror(f)) return st_error_set(err, ST_EIO, NULL, NULL, "cannot write the script: %s", strerror(errno));
    return 0;
}

/* ------------------------------------------------------------ files */

int st__write_atomic(const char *path, const char *text, size_t len, st_error *err) {
    char *target = st__out_target(path, err), *tmp = NULL;
    if (!target) return err ? err->code : ST_EIO;
    int rc = 0, fd;
    FILE *f = NULL;
    if ((fd = st__tmp_create(target, path, &tmp, err)) < 0) {
        rc = err ? err->code : ST_EIO;
        goto out;
    }
    if (!(f = fdopen(fd, "w"))) {
        close(fd);
        rc = st_error_set(err, ST_EIO, path, NULL, "cannot write: %s", strerror(errno));
        goto out;
    }
    if ((len && fwrite(text, 1, len, f) != len) || fflush(f) != 0) {
        rc = st_error_set(err, ST_EIO, path, NULL, "cannot write: %s", strerror(errno));
        fclose(f);
        goto out;
    }
    if (fclose(f) != 0) {
        rc = st_error_set(err, ST_EIO, path, NULL, "cannot write: %s", strerror(errno));
        goto out;
    }
    rc = st__tmp_commit(tmp, target, path, err);
    tmp = NULL; /* renamed, or removed */
out:
    st__tmp_discard(tmp);
    free(target);
    return rc;
}

/* Runs a writer into memory, then onto path atomically. */
static int write_file(const char *path,
                      int (*fn)(FILE *, const st_plot_data *, const st_plot_opts *, const char *, const char *,
                                st_error *),
                      const st_plot_data *d, const st_plot_opts *o, const char *a, const char *b, st_error *err) {
    char *text = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&text, &len);
    int rc;
    if (!mem) return st_error_set(err, ST_ENOMEM, NULL, NULL, "out of memory");
    rc = fn(mem, d, o, a, b, err);
    if (fclose(mem) != 0 && !rc) rc = st_error_set(err, ST_ENOMEM, NULL, NULL, "out of memory");
    if (!rc) rc = st__write_atomic(path, text, len, err);
    free(text);
    return rc;
}

static int data_writer(FILE *f, const st_plot_data *d, const st_plot_opts *o, const char *a, const char *b,
                       st_error *err) {
    (void)a;
    (void)b;
    return st_plot_write_data(f, d, o, err);
}

/* ------------------------------------------------------------ gnuplot */

/* gnuplot's first error: the first "...line N: ..." that is not a warning, else the last line that
 * says something (not the echoed command or its caret). */
static void first_error(const char *out, char *buf, size_t n) {
    const char *p = out, *last = NULL;
    size_t lastlen = 0;
    buf[0] = '\0';
    while (p && *p) {
        size_t len = strcspn(p, "\n");
        const char *ln = strstr(p, " line ");
        int is_loc = ln && ln < p + len && strchr(ln, ':') && strchr(ln, ':') < p + len;
        int warn = 0;
        for (const char *q = p; q + 8 <= p + len; q++)
            if (!strncmp(q, "warning:", 8)) warn = 1;
        if (is_loc && !warn) {
            snprintf(buf, n, "%.*s", (int)len, p);
            return;
        }
        size_t sp = strspn(p, " \t^");
        if (sp < len && !warn) {
            last = p;
            lastlen = len;
        }
        p += len;
        if (*p == '\n') p++;
    }
    if (last) snprintf(buf, n, "%.*s", (int)lastlen, last);
}

/* fork + execvp of `prog` with argv; its stdout and stderr into *output (new; free). Returns 0 and
 * the wait status, or the errno of a failed exec (ENOENT: not installed) in *exec_errno. */
static int spawn(const char *prog, char *const argv[], int *status, int *exec_errno, char **output, st_error *err) {
    int outp[2] = {-1, -1}, errp[2] = {-1, -1}, rc = 0;
    char *buf = NULL;
    size_t len = 0, cap = 0;
    pid_t pid;

    *exec_errno = 0;
    *output = NULL;
    if (pipe(outp) != 0 || pipe(errp) != 0) {
        rc = st_error_set(err, ST_EIO, NULL, NULL, "cannot create a pipe: %s", strerror(errno));
        goto out;
    }
    (void)fcntl(errp[1], F_SETFD, FD_CLOEXEC);
    (void)fcntl(errp[0], F_SETFD, FD_CLOEXEC);
    (void)fcntl(outp[0], F_SETFD, FD_CLOEXEC);
    fflush(NULL);
    pid = fork();
    if (pid > 0) st__child_register(pid); /* a fatal signal ends it before removing what it writes */
    if (pid < 0) {
        rc = st_error_set(err, ST_EIO, NULL, NULL, "cannot start %s: %s", prog, strerror(errno));
        goto out;
    }
    if (pid == 0) {
        int devnull = open("/dev/null", O_RDONLY);
        if (devnull >= 0) dup2(devnull, 0);
        dup2(outp[1], 1);
        dup2(outp[1], 2);
        if (outp[1] > 2) close(outp[1]);
        execvp(prog, argv);
        int e = errno;
        if (write(errp[1], &e, sizeof e) < 0) _exit(126);
        _exit(127);
    }
    close(outp[1]);
    outp[1] = -1;
    close(errp[1]);
    errp[1] = -1;
    /* the exec's verdict first: EOF (closed on exec) or an errno */
    int e = 0;
    ssize_t got;
    while ((got = read(errp[0], &e, sizeof e)) < 0 && errno == EINTR) {
    }
    if (got == (ssize_t)sizeof e) *exec_errno = e;
    for (;;) {
        char chunk[4096];
        ssize_t r = read(outp[0], chunk, sizeof chunk);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        if (len + (size_t)r > ((size_t)1 << 20)) continue; /* keep the first MiB, drain the rest */
        if (len + (size_t)r + 1 > cap) {
            size_t ncap = cap ? 2 * cap : 8192;
            while (ncap < len + (size_t)r + 1) ncap *= 2;
            char *nb = realloc(buf, ncap);
            if (!nb) continue;
            buf = nb;
            cap = ncap;
        }
        memcpy(buf + len, chunk, (size_t)r);
        len += (size_t)r;
    }
    if (buf) buf[len] = '\0';
    while (waitpid(pid, status, 0) < 0) {
        if (errno != EINTR) {
            rc = st_error_set(err, ST_EIO, NULL, NULL, "cannot wait for %s: %s", prog, strerror(errno));
            goto out;
        }
    }
    st__child_register(0);
    *output = buf;
    buf = NULL;
out:
    for (int i = 0; i < 2; i++) {
        if (outp[i] >= 0) close(outp[i]);
        if (errp[i] >= 0) close(errp[i]);
    }
    free(buf);
    return rc;
}

/* gnuplot's single-quoted string: ' doubled. */
static char *gp_single_quoted(const char *s) {
    size_t n = 3;
    for (const char *p = s; *p; p++) n += *p == '\'' ? 2 : 1;
    char *q = malloc(n), *w = q;
    if (!q) return NULL;
    *w++ = '\'';
    for (const char *p = s; *p; p++) {
        if (*p == '\'') *w++ = '\'';
        *w++ = *p;
    }
    *w++ = '\'';
    *w = '\0';
    return q;
}

static int run_gnuplot(const st_plot_opts *o, const char *gp, const char *dat, st_error *err) {
    const char *cands[3];
    int nc = 0, rc = 0;
    char *tmp = NULL, *assign = NULL, *quoted = NULL, *output = NULL, *target = NULL;
    const char *env = getenv("STRATA_GNUPLOT");
    if (o->gnuplot)
        cands[nc++] = o->gnuplot;
    else if (env && env[0])
        cands[nc++] = env;
    else {
#ifdef ST_GNUPLOT
        cands[nc++] = ST_GNUPLOT;
#endif
        cands[nc++] = "gnuplot";
    }

    if (!(target = st__out_target(o->out, err))) {
        rc = err ? err->code : ST_EIO;
        goto out;
    }
    int fd = st__tmp_create(target, o->out, &tmp, err);
    if (fd < 0) {
        rc = err ? err->code : ST_EIO;
        goto out;
    }
    close(fd);
    if (!(quoted = gp_single_quoted(tmp)) || !(assign = malloc(strlen(quoted) + 16))) {
        rc = st_error_set(err, ST_ENOMEM, NULL, NULL, "out of memory");
        goto out;
    }
    sprintf(assign, "st_out=%s", quoted);

    int status = 0, exec_errno = 0, tried = 0;
    for (int c = 0; c < nc; c++) {
        char *argv[] = {(char *)cands[c], "-e", assign, (char *)gp, NULL};
        free(output);
        output = NULL;
        if ((rc = spawn(cands[c], argv, &status, &exec_errno, &output, err))) goto out;
        tried = 1;
        if (!exec_errno) break;
    }
    if (!tried || exec_errno) {
        if (exec_errno == ENOENT || exec_errno == EACCES || exec_errno == ENOTDIR || !tried)
            rc = st_error_set(err, ST_EIO, NULL, NULL,
                              "gnuplot not found: wrote %s and %s; install gnuplot (Debian: gnuplot-nox) and run "
                              "gnuplot %s",
                              gp, dat, gp);
        else
            rc = st_error_set(err, ST_EIO, NULL, NULL, "cannot run %s: %s; wrote %s and %s", cands[nc - 1],
                              strerror(exec_errno), gp, dat);
        goto out;
    }
    if (WIFSIGNALED(status)) {
        rc = st_error_set(err, ST_EIO, NULL, NULL, "gnuplot was killed by signal %d drawing %s", WTERMSIG(status), gp);
        goto out;
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        char line[400];
        first_error(output ? output : "", line, sizeof line);
        if (line[0])
            rc = st_error_set(err, ST_EIO, NULL, NULL, "gnuplot failed on %s: %s", gp, line);
        else
            rc = st_error_set(err, ST_EIO, NULL, NULL, "gnuplot failed on %s (exit status %d)", gp,
                              WIFEXITED(status) ? WEXITSTATUS(status) : -1);
        goto out;
    }
    struct stat st;
    if (stat(tmp, &st) != 0 || st.st_size == 0) {
        rc = st_error_set(err, ST_EIO, NULL, NULL, "gnuplot drew nothing from %s", gp);
        goto out;
    }
    rc = st__tmp_commit(tmp, target, o->out, err);
    tmp = NULL; /* renamed, or removed */
out:
    st__tmp_discard(tmp);
    free(target);
    free(quoted);
    free(assign);
    free(output);
    return rc;
}

/* ------------------------------------------------------------ render */

static int script_writer(FILE *f, const st_plot_data *d, const st_plot_opts *o, const char *dat_name,
                         const char *image_name, st_error *err) {
    return st_plot_write_script(f, d, o, dat_name, image_name, err);
}

int st_plot_render(const st_plot_data *d, const st_plot_opts *o, char **gp_path, char **dat_path, st_error *err) {
    int rc = 0;
    char *gp = NULL, *dat = NULL;
    if (gp_path) *gp_path = NULL;
    if (dat_path) *dat_path = NULL;
    if (!o->out || !st_plot_terminal(o->out))
        return st_error_set(err, ST_EUSAGE, NULL, NULL, "option '--out': the image must end in .png, .svg or .pdf");
    const char *ext = extension(o->out);
    size_t stem = (size_t)(ext - 1 - o->out), n = stem + 8;
    if (!(gp = malloc(n)) || !(dat = malloc(n))) {
        rc = st_error_set(err, ST_ENOMEM, NULL, NULL, "out of memory");
        goto out;
    }
    snprintf(gp, n, "%.*s.gp", (int)stem, o->out);
    snprintf(dat, n, "%.*s.dat", (int)stem, o->out);
    if ((rc = write_file(dat, data_writer, d, o, NULL, NULL, err))) goto out;
    if ((rc = write_file(gp, script_writer, d, o, base_name(dat), base_name(o->out), err))) goto out;
    rc = run_gnuplot(o, gp, dat, err);
out:
    if (gp_path)
        *gp_path = gp;
    else
        free(gp);
    if (dat_path)
        *dat_path = dat;
    else
        free(dat);
    return rc;
}
