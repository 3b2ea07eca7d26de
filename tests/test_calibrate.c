/* test_calibrate.c: the Check suite of `strata calibrate` (profiler/kineto.c) and of the profile
 * retargeting across GPUs (cost/profile.c, st_profile_retarget).
 *
 * Oracles are by hand: FLOPs from the shapes (2mkn), rates as FLOPs over the kernel durations
 * written into the traces, bus bandwidth by nccl-tests' definition, medians of three or two
 * samples, peak ratios from the datasheet numbers of src/cluster.c. Every fitted profile goes
 * through st_profile_load, so what is checked is what --profile will read. The hand-written
 * Kineto trace tests/data/kineto/small.json (PyTorch 2.x export_chrome_trace layout) carries the
 * durations the expected numbers below are computed from; tiny traces written here isolate one
 * rule each.
 */
#include "jsonutil.h"
#include "suites.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef SRCDIR
#define SRCDIR "."
#endif
#define KDATA(p) SRCDIR "/tests/data/kineto/" p
#define REL(a, b, r) ck_assert_double_eq_tol((a), (b), fabs(b) * (r))
#define P2(e) ldexp(1.0, (e))
#define BF "\"c10::BFloat16\""

/* ------------------------------------------------------------ helpers */

static char tmpdir[256];

static void setup(void) {
    const char *base = getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/strata-cal-XXXXXX", base && base[0] ? base : "/tmp");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void teardown(void) {
    static const char *const names[] = {"t.json", "t.json.gz", "p.json", "q.json", NULL};
    char path[512];
    for (int i = 0; names[i]; i++) {
        snprintf(path, sizeof path, "%s/%s", tmpdir, names[i]);
        unlink(path);
    }
    rmdir(tmpdir);
}

static const char *tmp(const char *name) {
    static char buf[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", tmpdir, name);
    return buf[k];
}

static void write_file(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(data, 1, n, f), n);
    ck_assert_int_eq(fclose(f), 0);
}

static char *read_file(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(fseek(f, 0, SEEK_END), 0);
    long len = ftell(f);
    ck_assert_int_ge(len, 0);
    rewind(f);
    char *buf = malloc((size_t)len + 1);
    ck_assert_ptr_nonnull(buf);
    ck_assert_uint_eq(fread(buf, 1, (size_t)len, f), (size_t)len);
    buf[len] = '\0';
    fclose(f);
    *n = (size_t)len;
    return buf;
}

/* A tiny Kineto trace, built event by event: every call gets its own 100 us window on the main
 * thread; the launch sits inside the operator, the kernel runs on stream 7. */
typedef struct tb {
    FILE *f;
    char *text;
    size_t len;
    int n, corr;
} tb;

static void tb_begin(tb *b, const char *device) {
    b->f = open_memstream(&b->text, &b->len);
    ck_assert_ptr_nonnull(b->f);
    b->n = 0;
    b->corr = 5000;
    fprintf(b->f, "{\n  \"schemaVersion\": 1,\n");
    if (device) fprintf(b->f, "  \"deviceProperties\": [{\"id\": 0, \"name\": \"%s\", \"numSms\": 108}],\n", device);
    fprintf(b->f, "  \"traceEvents\": [\n  {\"ph\": \"M\", \"name\": \"process_name\", \"pid\": 1, \"tid\": 0, "
                  "\"args\": {\"name\": \"python3\"}}");
}

static void tb_event(tb *b, const char *cat, const char *name, int tid, double ts, double dur, const char *args) {
    fprintf(b->f, ",\n  {\"ph\": \"X\", \"cat\": \"%s\", \"name\": \"%s\", \"pid\": %d, \"tid\": %d, \"ts\": %.3f, "
                  "\"dur\": %.3f, \"args\": {%s}}",
            cat, name, strcmp(cat, "kernel") ? 1 : 0, tid, ts, dur, args);
}

/* an operator (External id ext) at [t, t+50] */
static void tb_op(tb *b, const char *name, int ext, double t, const char *dims, const char *types, const char *extra) {
    char args[2048];
    snprintf(args, sizeof args, "\"External id\": %d, \"Record function id\": 0%s%s%s%s%s%s", ext,
             dims ? ", \"Input Dims\": " : "", dims ? dims : "", types ? ", \"Input type\": " : "", types ? types : "",
             extra ? ", " : "", extra ? extra : "");
    tb_event(b, "cpu_op", name, 1, t, 50, args);
}

/* a launch at t carrying launch_ext (< 0: no launch event), and its kernel carrying kernel_ext */
static void tb_kernel(tb *b, int launch_ext, int kernel_ext, double t, const char *kname, double dur_us) {
    char args[256];
    int corr = b->corr++;
    if (launch_ext >= 0) {
        snprintf(args, sizeof args, "\"External id\": %d, \"cbid\": 211, \"correlation\": %d", launch_ext, corr);
        tb_event(b, "cuda_runtime", "cudaLaunchKernel", 1, t, 4, args);
    }
    snprintf(args, sizeof args,
             "\"External id\": %d, \"queued\": 0, \"device\": 0, \"context\": 1, \"stream\": 7, \"correlation\": %d",
             kernel_ext, corr);
    tb_event(b, "kernel", kname, 7, 100000 + t, dur_us, args);
}

/* the usual call: operator `name` with its own id and one linked kernel */
static void tb_call(tb *b, const char *name, const char *dims, const char *types, const char *extra, const char *kname,
                    double dur_us) {
    int ext = 100 + b->n;
    double t = 100.0 * ++b->n;
    tb_op(b, name, ext, t, dims, types, extra);
    tb_kernel(b, ext, ext, t + 20, kname, dur_us);
}

static void tb_end(tb *b, const char *path) {
    fprintf(b->f, "\n  ],\n  \"traceName\": \"test\"\n}\n");
    ck_assert_int_eq(fclose(b->f), 0);
    write_file(path, b->text, b->len);
    free(b->text);
}

/* imports path, saves the profile and loads it back; *sum copied out. Returns the profile (new). */
static st_profile *import_load(const char *path, const char *gpu, int gpus_per_node, st_calib_summary *sum) {
    st_calib *c = NULL;
    st_calib_opts o;
    st_error err;
    st_error_clear(&err);
    st_calib_opts_init(&o);
    o.gpu = gpu;
    o.date = "2024-01-01";
    if (gpus_per_node) o.gpus_per_node = gpus_per_node;
    int rc = st_calib_import_kineto(path, &o, &c, &err);
    ck_assert_msg(rc == 0, "import of %s failed: %s", path, err.text);
    if (sum) *sum = *st_calib_get_summary(c);
    ck_assert_int_eq(st_calib_save(c, tmp("p.json"), &err), 0);
    st_calib_free(c);
    st_profile *p = NULL;
    rc = st_profile_load(tmp("p.json"), &p, &err);
    ck_assert_msg(rc == 0, "the written profile does not load: %s", err.text);
    return p;
}

/* the fitted points of one table of the written profile: section, then key/value pairs to match */
static int points_of(const char *section, const char *k1, const char *v1, double *x, double *y, int cap) {
    json_error_t jerr;
    json_t *root = json_load_file(tmp("p.json"), 0, &jerr), *t;
    size_t i;
    int n = -1;
    ck_assert_ptr_nonnull(root);
    json_array_foreach(json_object_get(root, section), i, t) {
        if (strcmp(json_string_value(json_object_get(t, k1)), v1)) continue;
        json_t *pts = json_object_get(t, "points");
        n = (int)json_array_size(pts);
        for (int j = 0; j < n && j < cap; j++) {
            x[j] = json_number_value(json_array_get(json_array_get(pts, (size_t)j), 0));
            y[j] = json_number_value(json_array_get(json_array_get(pts, (size_t)j), 1));
        }
    }
    json_decref(root);
    return n;
}

/* ------------------------------------------------------------ the hand-written trace */

/* Numbers from the durations in small.json (see the generator notes in the file's events):
 * gemm bf16: split-K mm [2048,8192]x[8192,1024] (2^35 FLOPs) in 150 + 10 us; addmm under linear
 * [8192,4096]x[4096,4096] (2^38) in 1250 us; three mm of 2^40 FLOPs (two forward, one on the
 * autograd thread) in 4400, 4600 and 5200 us: the median is 4600. bgemm: bmm under matmul and
 * baddbmm, both 2^35, in 200 and 220 us. */
START_TEST(test_fixture_fit) {
    st_calib_summary s;
    st_profile *p = import_load(KDATA("small.json"), NULL, 0, &s);
    ck_assert_str_eq(s.gpu, "a100-sxm-80g");
    ck_assert_str_eq(s.device, "NVIDIA A100-SXM4-80GB");
    ck_assert_int_eq(s.kernels, 21);
    ck_assert_int_eq(s.used, 19);
    ck_assert_int_eq(s.unlinked, 1);     /* the optimizer kernel: External id 0 */
    ck_assert_int_eq(s.unclassified, 1); /* aten::sum under AddmmBackward0 */
    ck_assert_int_eq(s.no_shapes, 0);
    ck_assert_int_eq(s.samples[0], 7);
    ck_assert_int_eq(s.samples[1], 9);
    ck_assert_int_eq(s.samples[2], 1);
    ck_assert_int_eq(s.tables[0], 2);
    ck_assert_int_eq(s.points[0], 4);
    ck_assert_int_eq(s.tables[1], 5);
    ck_assert_int_eq(s.points[1], 7);
    ck_assert_int_eq(s.tables[2], 1);

    const double r = 1e-12;
    REL(st_profile_flops_per_s(p, ST_OPC_GEMM, ST_DT_BF16, P2(35)), P2(35) / 160e-6, r);
    REL(st_profile_flops_per_s(p, ST_OPC_GEMM, ST_DT_BF16, P2(38)), P2(38) / 1250e-6, r);
    REL(st_profile_flops_per_s(p, ST_OPC_GEMM, ST_DT_BF16, P2(40)), P2(40) / 4600e-6, r);
    REL(st_profile_flops_per_s(p, ST_OPC_BGEMM, ST_DT_BF16, P2(35)), 0.5 * (P2(35) / 200e-6 + P2(35) / 220e-6), r);
    ck_assert_double_eq(st_profile_flops_per_s(p, ST_OPC_GEMM, ST_DT_FP16, P2(35)), 0);

    /* memory: layer norm [4,2048,4096] bf16 with weight and bias, forward 80 us; its backward
     * (grad, input, mean, rstd [8192,1] fp32, weight, bias) in 90 + 40 us; one bin, median of two */
    double ln_f = (4 * 2048 * 4096 + 4096 + 4096) * 2.0 + 4 * 2048 * 4096 * 2.0;
    double ln_b = (2 * 4 * 2048 * 4096 + 4096 + 4096) * 2.0 + 2 * 8192 * 4.0 + 4 * 2048 * 4096 * 2.0;
    double ln_x = floor(0.5 * (ln_f + ln_b));
    REL(st_profile_bytes_per_s(p, ST_OPC_NORM, ln_x), 0.5 * (ln_f / 80e-6 + ln_b / 130e-6), r);
    /* softmax [4,32,2048,2048] bf16: read + write in 1500 us */
    REL(st_profile_bytes_per_s(p, ST_OPC_SOFTMAX, P2(31)), P2(31) / 1500e-6, r);
    /* add and mul of two [4,2048,4096] bf16 (mul linked by its own External id: no launch event) */
    REL(st_profile_bytes_per_s(p, ST_OPC_ELEMWISE, 3 * P2(26)), 0.5 * (3 * P2(26) / 130e-6 + 3 * P2(26) / 125e-6), r);
    /* gelu [4,2048,16384] in 330 us */
    REL(st_profile_bytes_per_s(p, ST_OPC_ELEMWISE, P2(29)), P2(29) / 330e-6, r);
    /* embedding: the index_select kernel charged to aten::embedding; 8192 ids x (8 + 2 x 4096 x 2) */
    REL(st_profile_bytes_per_s(p, ST_OPC_EMBED, 8192.0 * 16392), 8192.0 * 16392 / 85e-6, r);
    /* loss: _log_softmax of [8192, 32000] fp32; nll_loss forward touches one element per target */
    REL(st_profile_bytes_per_s(p, ST_OPC_LOSS, 2 * 8192.0 * 32000 * 4), 2 * 8192.0 * 32000 * 4 / 1400e-6, r);
    REL(st_profile_bytes_per_s(p, ST_OPC_LOSS, 8192.0 * 16), 8192.0 * 16 / 25e-6, r);
    /* all-reduce of 4194304 bf16 over 8 ranks in 100 us: algBw 83.886 GB/s, busBw x 2 x 7 / 8 */
    REL(st_profile_bus_bytes_per_s(p, ST_COLL_ALLREDUCE, 1, 8, 8388608), 146.80064e9, r);
    ck_assert_double_eq(st_profile_bus_bytes_per_s(p, ST_COLL_ALLREDUCE, 0, 8, 8388608), 0);
    st_profile_free(p);
}
END_TEST

/* the gzip copy (gzip -n) reads to the same profile */
START_TEST(test_fixture_gzip) {
    size_t n1, n2;
    st_profile *p = import_load(KDATA("small.json"), NULL, 0, NULL);
    st_profile_free(p);
    char *a = read_file(tmp("p.json"), &n1);
    p = import_load(KDATA("small.json.gz"), NULL, 0, NULL);
    st_profile_free(p);
    char *b = read_file(tmp("p.json"), &n2);
    /* equal but for the source line, which names the file */
    char *sa = strstr(a, "\"date\""), *sb = strstr(b, "\"date\"");
    ck_assert_ptr_nonnull(sa);
    ck_assert_ptr_nonnull(sb);
    ck_assert_str_eq(sa, sb);
    ck_assert_ptr_nonnull(strstr(b, "\"source\": \"kineto import of " KDATA("small.json.gz") "\""));
    free(a);
    free(b);
}
END_TEST

/* same trace and options, same bytes */
START_TEST(test_deterministic) {
    size_t n1, n2;
    st_profile_free(import_load(KDATA("small.json"), NULL, 0, NULL));
    char *a = read_file(tmp("p.json"), &n1);
    st_profile_free(import_load(KDATA("small.json"), NULL, 0, NULL));
    char *b = read_file(tmp("p.json"), &n2);
    ck_assert_uint_eq(n1, n2);
    ck_assert_int_eq(memcmp(a, b, n1), 0);
    ck_assert_ptr_nonnull(strstr(a, "\"date\": \"2024-01-01\""));
    free(a);
    free(b);
}
END_TEST

/* ------------------------------------------------------------ linking */

#define MM_A "[[64, 128], [128, 256]]"  /* 2 x 64 x 128 x 256 = 4194304 FLOPs */
#define MM_B "[[512, 512], [512, 512]]" /* 2 x 512^3 = 268435456 FLOPs */
#define BF2 "[" BF ", " BF "]"

/* the launch with the kernel's correlation decides, not the kernel's own External id */
START_TEST(test_link_correlation) {
    tb b;
    tb_begin(&b, "NVIDIA A100-SXM4-80GB");
    tb_op(&b, "aten::mm", 1, 100, MM_A, BF2, NULL);
    tb_op(&b, "aten::mm", 2, 200, MM_B, BF2, NULL);
    tb_kernel(&b, 1, 2, 120, "gemm", 10); /* launched under op 1; its own id says 2 */
    tb_end(&b, tmp("t.json"));
    st_profile *p = import_load(tmp("t.json"), NULL, 0, NULL);
    double x[4], y[4];
    ck_assert_int_eq(points_of("compute", "class", "gemm", x, y, 4), 1);
    ck_assert_double_eq(x[0], 4194304);
    REL(st_profile_flops_per_s(p, ST_OPC_GEMM, ST_DT_BF16, 4194304), 4194304 / 10e-6, 1e-12);
    st_profile_free(p);
}
END_TEST

/* without a launch event, the kernel's own External id links it */
START_TEST(test_link_external_id) {
    tb b;
    tb_begin(&b, "NVIDIA A100-SXM4-80GB");
    tb_op(&b, "aten::mm", 1, 100, MM_A, BF2, NULL);
    tb_op(&b, "aten::mm", 2, 200, MM_B, BF2, NULL);
    tb_kernel(&b, -1, 2, 220, "gemm", 100);
    tb_kernel(&b, -1, 77, 300, "gemm", 100); /* no operator has id 77 */
    tb_end(&b, tmp("t.json"));
    st_calib_summary s;
    st_profile *p = import_load(tmp("t.json"), NULL, 0, &s);
    double x[4], y[4];
    ck_assert_int_eq(points_of("compute", "class", "gemm", x, y, 4), 1);
    ck_assert_double_eq(x[0], 268435456);
    ck_assert_int_eq(s.used, 1);
    ck_assert_int_eq(s.unlinked, 1);
    st_profile_free(p);
}
END_TEST

/* operators sharing an External id: the innermost one that spans the launch on its thread */
START_TEST(test_link_innermost) {
    tb b;
    tb_begin(&b, "NVIDIA A100-SXM4-80GB");
    tb_event(&b, "cpu_op", "aten::matmul", 1, 100, 80,
             "\"External id\": 9, \"Input Dims\": [[8, 64, 128], [128, 256]], \"Input type\": " BF2);
    tb_event(&b, "cpu_op", "aten::mm", 1, 110, 50,
             "\"External id\": 9, \"Input Dims\": " MM_B ", \"Input type\": " BF2);
    tb_kernel(&b, 9, 9, 120, "gemm", 100);
    tb_end(&b, tmp("t.json"));
    st_profile *p = import_load(tmp("t.json"), NULL, 0, NULL);
    double x[4], y[4];
    ck_assert_int_eq(points_of("compute", "class", "gemm", x, y, 4), 1);
    ck_assert_double_eq(x[0], 268435456);
    st_profile_free(p);
}
END_TEST

/* ... and among those, the one on the launch's thread that spans the launch, however deep the
 * others are nested */
START_TEST(test_link_launch_thread) {
    tb b;
    tb_begin(&b, "NVIDIA A100-SXM4-80GB");
    tb_event(&b, "cpu_op", "aten::mm", 1, 100, 50, "\"External id\": 9, \"Input Dims\": " MM_A ", \"Input type\": " BF2);
    tb_event(&b, "cpu_op", "aten::linear", 2, 0, 500, "\"External id\": 8");
    tb_event(&b, "cpu_op", "aten::mm", 2, 100, 50, "\"External id\": 9, \"Input Dims\": " MM_B ", \"Input type\": " BF2);
    tb_kernel(&b, 9, 9, 120, "gemm", 100); /* launched on thread 1 */
    tb_end(&b, tmp("t.json"));
    st_profile *p = import_load(tmp("t.json"), NULL, 0, NULL);
    double x[4], y[4];
    ck_assert_int_eq(points_of("compute", "class", "gemm", x, y, 4), 1);
    ck_assert_double_eq(x[0], 4194304);
    st_profile_free(p);
}
END_TEST

/* a kernel of an operator without a class is charged to the nearest classified ancestor
 * (index_select under embedding); one with none anywhere is counted, not used */
START_TEST(test_charge_up) {
    tb b;
    tb_begin(&b, "NVIDIA A100-SXM4-80GB");
    tb_event(&b, "cpu_op", "aten::embedding", 1, 100, 80,
             "\"External id\": 1, \"Input Dims\": [[1000, 64], [4, 8]], \"Input type\": [" BF ", \"long int\"]");
    tb_event(&b, "cpu_op", "aten::index_select", 1, 110, 50, "\"External id\": 2");
    tb_kernel(&b, 2, 2, 120, "indexSelectLargeIndex", 1);
    tb_op(&b, "aten::sum", 3, 300, "[[64, 64]]", "[" BF "]", NULL);
    tb_kernel(&b, 3, 3, 320, "reduce_kernel", 1);
    tb_end(&b, tmp("t.json"));
    st_calib_summary s;
    st_profile *p = import_load(tmp("t.json"), NULL, 0, &s);
    /* 32 ids x (8 bytes + 2 x 64 x 2 bytes) in 1 us */
    REL(st_profile_bytes_per_s(p, ST_OPC_EMBED, 32.0 * 264), 32.0 * 264 / 1e-6, 1e-12);
    ck_assert_int_eq(s.used, 1);
    ck_assert_int_eq(s.unclassified, 1);
    st_profile_free(p);
}
END_TEST

/* ------------------------------------------------------------ FLOPs and dtypes */

START_TEST(test_flops_and_dtypes) {
    tb b;
    tb_begin(&b, "NVIDIA H100 80GB HBM3");
    /* every call runs 1 ms, so the rate in TFLOP/s is FLOPs / 1e9 */
    tb_call(&b, "aten::mm", "[[1024, 2048], [2048, 4096]]", "[\"c10::Half\", \"c10::Half\"]", NULL, "k", 1000);
    tb_call(&b, "aten::addmm", "[[4096], [512, 1024], [1024, 4096], [], []]",
            "[" BF ", " BF ", " BF ", \"Scalar\", \"Scalar\"]", NULL, "k", 1000);
    tb_call(&b, "aten::bmm", "[[16, 256, 64], [16, 64, 512]]", BF2, NULL, "k", 1000);
    tb_call(&b, "aten::baddbmm", "[[16, 256, 256], [16, 256, 64], [16, 64, 256], [], []]",
            "[" BF ", " BF ", " BF ", \"Scalar\", \"Scalar\"]", NULL, "k", 1000);
    tb_call(&b, "aten::linear", "[[4, 512, 1024], [2048, 1024], [2048]]", "[\"float\", \"float\", \"float\"]", NULL, "k",
            1000);
    tb_call(&b, "aten::matmul", "[[2, 4, 128, 64], [4, 64, 32]]", BF2, NULL, "k", 1000);
    tb_call(&b, "aten::_scaled_mm", "[[1024, 1024], [1024, 1024], [], []]",
            "[\"c10::Float8_e4m3fn\", \"c10::Float8_e4m3fn\", \"float\", \"float\"]", NULL, "k", 1000);
    tb_call(&b, "aten::mm", "[[64, 64], [64, 64]]", "[\"double\", \"double\"]", NULL, "k", 1000);  /* no dtype */
    tb_call(&b, "aten::mm", "[[64, 64], [32, 64]]", BF2, NULL, "k", 1000);                        /* k differs */
    tb_call(&b, "aten::mm", "[[64, -1], [-1, 64]]", BF2, NULL, "k", 1000);                        /* negative */
    tb_end(&b, tmp("t.json"));
    st_calib_summary s;
    st_profile *p = import_load(tmp("t.json"), NULL, 0, &s);
    ck_assert_str_eq(s.gpu, "h100-sxm-80g");
    ck_assert_int_eq(s.used, 7);
    ck_assert_int_eq(s.no_shapes, 3);
    const double r = 1e-12;
    double f;
    f = 2.0 * 1024 * 2048 * 4096; /* mm */
    REL(st_profile_flops_per_s(p, ST_OPC_GEMM, ST_DT_FP16, f), f / 1e-3, r);
    f = 2.0 * 512 * 1024 * 4096; /* addmm: inputs 1 and 2 */
    REL(st_profile_flops_per_s(p, ST_OPC_GEMM, ST_DT_BF16, f), f / 1e-3, r);
    f = 2.0 * 16 * 256 * 64 * 512; /* bmm */
    REL(st_profile_flops_per_s(p, ST_OPC_BGEMM, ST_DT_BF16, f), f / 1e-3, r);
    f = 2.0 * 4 * 512 * 1024 * 2048; /* linear: 2 x prod(input[:-1]) x k x n, float -> fp32 */
    REL(st_profile_flops_per_s(p, ST_OPC_GEMM, ST_DT_FP32, f), f / 1e-3, r);
    f = 2.0 * 16 * 256 * 64 * 256; /* baddbmm: inputs 1 and 2 */
    REL(st_profile_flops_per_s(p, ST_OPC_BGEMM, ST_DT_BF16, f), f / 1e-3, r);
    double x[8], y[8];
    ck_assert_int_eq(points_of("compute", "class", "bgemm", x, y, 8), 3);
    ck_assert_double_eq(x[0], 2.0 * 8 * 128 * 64 * 32); /* matmul broadcasting [2,4] with [4]: batch 8 */
    f = 2.0 * 1024 * 1024 * 1024; /* _scaled_mm in fp8 */
    REL(st_profile_flops_per_s(p, ST_OPC_GEMM, ST_DT_FP8, f), f / 1e-3, r);
    st_profile_free(p);
}
END_TEST

/* ------------------------------------------------------------ binning */

/* three sizes in [2^31, 2^32) and one at 2^32 exactly: two points, the first at the median size
 * with the median rate */
START_TEST(test_binning_median) {
    tb b;
    tb_begin(&b, "NVIDIA A100-SXM4-80GB");
    tb_call(&b, "aten::mm", "[[1024, 1024], [1024, 1792]]", BF2, NULL, "k", 20); /* 3.5 x 2^30 */
    tb_call(&b, "aten::mm", "[[1024, 1024], [1024, 1024]]", BF2, NULL, "k", 10); /* 2^31 */
    tb_call(&b, "aten::mm", "[[1024, 1024], [1024, 1536]]", BF2, NULL, "k", 30); /* 3 x 2^30 */
    tb_call(&b, "aten::mm", "[[1024, 1024], [1024, 2048]]", BF2, NULL, "k", 40); /* 2^32 */
    tb_end(&b, tmp("t.json"));
    st_profile *p = import_load(tmp("t.json"), NULL, 0, NULL);
    double x[8], y[8];
    ck_assert_int_eq(points_of("compute", "class", "gemm", x, y, 8), 2);
    ck_assert_double_eq(x[0], 3 * P2(30));
    ck_assert_double_eq(x[1], P2(32));
    /* rates 2^31/10us = 214.7, 3x2^30/30us = 107.4, 3.5x2^30/20us = 187.9 TFLOP/s: median 187.9 */
    REL(y[0] * 1e12, 3.5 * P2(30) / 20e-6, 1e-12);
    REL(y[1] * 1e12, P2(32) / 40e-6, 1e-12);
    REL(st_profile_flops_per_s(p, ST_OPC_GEMM, ST_DT_BF16, 3 * P2(30)), 3.5 * P2(30) / 20e-6, 1e-12);
    st_profile_free(p);
}
END_TEST

/* ------------------------------------------------------------ NCCL */

#define COMM(coll, in, out, group, ranks)                                                          \
    "\"Collective name\": \"" coll "\", \"dtype\": \"BFloat16\", \"In msg nelems\": " #in          \
    ", \"Out msg nelems\": " #out ", \"Group size\": " #group ranks

static void tb_comm(tb *b, const char *args, const char *kname, double dur_us) {
    int ext = 100 + b->n;
    double t = 100.0 * ++b->n;
    tb_event(b, "cpu_op", "record_param_comms", 1, t, 60, args);
    char a[64];
    snprintf(a, sizeof a, "\"External id\": %d", ext);
    tb_event(b, "user_annotation", "nccl:all_reduce", 1, t + 10, 30, a);
    tb_kernel(b, ext, ext, t + 20, kname, dur_us);
}

START_TEST(test_nccl_busbw) {
    tb b;
    tb_begin(&b, "NVIDIA A100-SXM4-80GB");
    /* all-reduce of 4194304 bf16 (8 MiB) over 8 ranks in 100 us */
    tb_comm(&b, COMM("allreduce", 4194304, 4194304, 8, ""),
            "ncclDevKernel_AllReduce_Sum_bf16_RING_LL(ncclDevComm*, unsigned long, ncclWork*)", 100);
    /* all-gather of 1M elements per rank over 16 ranks (two nodes): S = the 16M gathered */
    tb_comm(&b, COMM("_allgather_base", 1048576, 16777216, 16, ""), "ncclKernel_AllGather_RING_LL_Sum_int8_t(ncclWork*)",
            1000);
    /* reduce-scatter over 4 ranks one node apart: inter by their ranks, though 4 <= 8 */
    tb_comm(&b, COMM("reduce_scatter_tensor", 4194304, 1048576, 4, ", \"Process Group Ranks\": \"[0, 8, 16, 24]\""),
            "ncclDevKernel_ReduceScatter_Sum_bf16_RING_LL(ncclDevComm*, unsigned long, ncclWork*)", 200);
    /* all-to-all runs as SendRecv kernels: the operator names it */
    tb_comm(&b, COMM("all_to_allv", 2097152, 2097152, 8, ""), "ncclDevKernel_SendRecv(ncclDevComm*, unsigned long, ncclWork*)",
            50);
    /* coalesced groups cannot be sized per kernel: not used */
    tb_comm(&b, COMM("allreduce_coalesced", 4096, 4096, 8, ""), "ncclDevKernel_AllReduce_Sum_bf16_RING_LL(x)", 10);
    tb_end(&b, tmp("t.json"));
    st_calib_summary s;
    st_profile *p = import_load(tmp("t.json"), NULL, 8, &s);
    const double r = 1e-12;
    /* hand-computed: 8388608 B / 100 us = 83.88608 GB/s algBw; x 2 x 7/8 = 146.80064 GB/s */
    REL(st_profile_bus_bytes_per_s(p, ST_COLL_ALLREDUCE, 1, 8, 8388608), 146.80064e9, r);
    /* 33554432 B / 1 ms x 15/16 */
    REL(st_profile_bus_bytes_per_s(p, ST_COLL_ALLGATHER, 0, 16, 33554432), 33554432 / 1e-3 * 15 / 16, r);
    ck_assert_double_eq(st_profile_bus_bytes_per_s(p, ST_COLL_ALLGATHER, 1, 16, 33554432), 0);
    /* 8388608 B input / 200 us x 3/4 */
    REL(st_profile_bus_bytes_per_s(p, ST_COLL_REDUCESCATTER, 0, 4, 8388608), 8388608 / 200e-6 * 3 / 4, r);
    REL(st_profile_bus_bytes_per_s(p, ST_COLL_ALLTOALL, 1, 8, 4194304), 4194304 / 50e-6 * 7 / 8, r);
    ck_assert_double_eq(st_profile_bus_bytes_per_s(p, ST_COLL_SENDRECV, 1, 2, 4194304), 0);
    ck_assert_int_eq(s.samples[2], 4);
    ck_assert_int_eq(s.no_shapes, 1);
    st_profile_free(p);
}
END_TEST

/* ------------------------------------------------------------ across hardware */

START_TEST(test_retarget_scales) {
    st_profile *p = NULL;
    st_error err;
    st_gpu h100;
    char note[512];
    st_error_clear(&err);
    ck_assert_int_eq(st_gpu_preset("h100-sxm-80g", &h100), 0);
    ck_assert_int_eq(st_profile_load(SRCDIR "/tests/data/profile/a100_test.json", &p, &err), 0);
    ck_assert_int_eq(st_profile_retarget(p, &h100, note, sizeof note, &err), 1);
    ck_assert_str_eq(st_profile_gpu(p), "h100-sxm-80g");
    ck_assert_str_eq(st_profile_scaled_from(p), "a100-sxm-80g");
    ck_assert_ptr_nonnull(strstr(note, "profile measured on a100-sxm-80g, scaled to h100-sxm-80g by peak ratio"));
    ck_assert_ptr_nonnull(strstr(note, "collectives as measured"));
    /* bf16 peak 989.4 / 312 at every point; the efficiency shape is kept */
    REL(st_profile_flops_per_s(p, ST_OPC_GEMM, ST_DT_BF16, 1e9), 50e12 * 989.4 / 312, 1e-12);
    REL(st_profile_flops_per_s(p, ST_OPC_GEMM, ST_DT_BF16, 1e11), 200e12 * 989.4 / 312, 1e-12);
    REL(st_profile_flops_per_s(p, ST_OPC_GEMM, ST_DT_BF16, 1e13), 250e12 * 989.4 / 312, 1e-12);
    /* HBM 3350 / 2039 */
    REL(st_profile_bytes_per_s(p, ST_OPC_ELEMWISE, 1e9), 1600e9 * 3350 / 2039, 1e-12);
    /* collectives as measured */
    REL(st_profile_bus_bytes_per_s(p, ST_COLL_ALLREDUCE, 1, 8, 1e9), 230e9, 1e-12);
    /* now it is an H100 profile: a second call leaves it */
    ck_assert_int_eq(st_profile_retarget(p, &h100, note, sizeof note, &err), 0);
    ck_assert_str_eq(note, "");
    REL(st_profile_flops_per_s(p, ST_OPC_GEMM, ST_DT_BF16, 1e11), 200e12 * 989.4 / 312, 1e-12);
    st_profile_free(p);
}
END_TEST

START_TEST(test_retarget_same_gpu) {
    st_profile *p = NULL;
    st_error err;
    st_gpu a100;
    char note[512] = "x";
    st_error_clear(&err);
    ck_assert_int_eq(st_gpu_preset("a100-sxm-80g", &a100), 0);
    ck_assert_int_eq(st_profile_load(SRCDIR "/tests/data/profile/a100_test.json", &p, &err), 0);
    ck_assert_int_eq(st_profile_retarget(p, &a100, note, sizeof note, &err), 0);
    ck_assert_str_eq(note, "");
    ck_assert_ptr_null(st_profile_scaled_from(p));
    REL(st_profile_flops_per_s(p, ST_OPC_GEMM, ST_DT_BF16, 1e11), 200e12, 1e-12);
    REL(st_profile_bytes_per_s(p, ST_OPC_ELEMWISE, 1e9), 1600e9, 1e-12);
    st_profile_free(p);
}
END_TEST

static const char fp8_profile[] =
    "{\"strata_profile\": 1, \"gpu\": \"%s\", \"compute\": ["
    "{\"class\": \"gemm\", \"dtype\": \"fp8\", \"points\": [[1e12, 1200]]},"
    "{\"class\": \"gemm\", \"dtype\": \"bf16\", \"points\": [[1e12, 700]]}]}";

/* an H100 fp8 table means nothing on an A100 (no fp8): dropped, and the note says so */
START_TEST(test_retarget_drops_missing_dtype) {
    char text[512], note[512];
    st_profile *p = NULL;
    st_error err;
    st_gpu a100;
    st_error_clear(&err);
    snprintf(text, sizeof text, fp8_profile, "h100-sxm-80g");
    write_file(tmp("q.json"), text, strlen(text));
    ck_assert_int_eq(st_gpu_preset("a100-sxm-80g", &a100), 0);
    ck_assert_int_eq(st_profile_load(tmp("q.json"), &p, &err), 0);
    ck_assert_int_eq(st_profile_retarget(p, &a100, note, sizeof note, &err), 1);
    ck_assert_double_eq(st_profile_flops_per_s(p, ST_OPC_GEMM, ST_DT_FP8, 1e12), 0);
    REL(st_profile_flops_per_s(p, ST_OPC_GEMM, ST_DT_BF16, 1e12), 700e12 * 312 / 989.4, 1e-12);
    ck_assert_ptr_nonnull(strstr(note, "1 compute table dropped"));
    st_profile_free(p);
}
END_TEST

/* a GPU that is not a preset cannot be scaled (key "gpu"), but is used as is by its own name */
START_TEST(test_retarget_unknown_gpu) {
    char text[512], note[512];
    st_profile *p = NULL;
    st_error err;
    st_gpu g;
    st_error_clear(&err);
    snprintf(text, sizeof text, fp8_profile, "mi300x");
    write_file(tmp("q.json"), text, strlen(text));
    ck_assert_int_eq(st_gpu_preset("h100-sxm-80g", &g), 0);
    ck_assert_int_eq(st_profile_load(tmp("q.json"), &p, &err), 0);
    ck_assert_int_eq(st_profile_retarget(p, &g, note, sizeof note, &err), ST_EINVAL);
    ck_assert_str_eq(err.key, "gpu");
    ck_assert_str_eq(err.file, tmp("q.json"));
    ck_assert_ptr_nonnull(strstr(err.text, "mi300x"));
    snprintf(g.name, sizeof g.name, "mi300x");
    ck_assert_int_eq(st_profile_retarget(p, &g, note, sizeof note, &err), 0);
    REL(st_profile_flops_per_s(p, ST_OPC_GEMM, ST_DT_FP8, 1e12), 1200e12, 1e-12);
    st_profile_free(p);
}
END_TEST

/* ------------------------------------------------------------ bad input */

typedef struct bad_case {
    const char *what;
    int code;
    const char *key;    /* exact, "" = none */
    const char *needle; /* in the text */
    int position;       /* 1: line and column reported, 2: the line */
} bad_case;

static const bad_case bad_cases[] = {
    {"missing file", ST_EIO, "", "cannot open", 0},
    {"truncated JSON", ST_EINVAL, "", "invalid JSON", 1},
    {"malformed JSON", ST_EINVAL, "", "invalid JSON", 1},
    {"not a trace (object)", ST_EINVAL, "traceEvents", "not a Kineto trace", 0},
    {"not a trace (array form)", ST_EINVAL, "traceEvents", "not a Kineto trace", 0},
    {"no kernels", ST_EINVAL, "", "no GPU kernels", 0},
    {"unknown GPU", ST_EINVAL, "deviceProperties[0].name", "--gpu", 0},
    {"no GPU named", ST_EINVAL, "deviceProperties", "--gpu", 0},
    {"no shapes", ST_EINVAL, "", "record_shapes=True", 0},
    {"truncated gzip", ST_EINVAL, "", "truncated", 0},
    {"corrupt gzip", ST_EINVAL, "", "gzip", 0},
    {"empty file", ST_EINVAL, "", "invalid JSON", 2},
    {"a directory", ST_EIO, "", "cannot read", 0},
};

/* writes bad case i's file (or names a fixture) and returns its path */
static const char *bad_input(int i) {
    size_t len;
    char *s;
    const char *t = tmp("t.json");
    switch (i) {
    case 0: return tmp("missing.json");
    case 1:
        s = read_file(KDATA("small.json"), &len);
        write_file(t, s, len / 2);
        free(s);
        return t;
    case 2: {
        static const char m[] = "{\"traceEvents\": [\n  {\"ph\": \"X\",, \"cat\": \"kernel\"}\n]}\n";
        write_file(t, m, sizeof m - 1);
        return t;
    }
    case 3: write_file(t, "{\"foo\": 1}", 10); return t;
    case 4: write_file(t, "[{\"ph\": \"X\", \"name\": \"a\"}]", 26); return t;
    case 5: return KDATA("no_kernels.json");
    case 6: return KDATA("unknown_gpu.json");
    case 7: {
        tb b;
        tb_begin(&b, NULL);
        tb_call(&b, "aten::mm", MM_A, BF2, NULL, "k", 10);
        tb_end(&b, t);
        return t;
    }
    case 8: return KDATA("no_shapes.json");
    case 9:
        s = read_file(KDATA("small.json.gz"), &len);
        write_file(tmp("t.json.gz"), s, len / 2);
        free(s);
        return tmp("t.json.gz");
    case 10: {
        static const unsigned char z[] = {0x1f, 0x8b, 0x08, 0, 0, 0, 0, 0, 0, 3, 'g', 'a', 'r', 'b', 'a', 'g', 'e'};
        write_file(tmp("t.json.gz"), z, sizeof z);
        return tmp("t.json.gz");
    }
    case 11: write_file(t, "", 0); return t;
    default: return tmpdir;
    }
}

START_TEST(test_bad_input) {
    const bad_case *bc = &bad_cases[_i];
    const char *path = bad_input(_i);
    st_calib *c = (st_calib *)1;
    st_error err;
    st_error_clear(&err);
    int rc = st_calib_import_kineto(path, NULL, &c, &err);
    ck_assert_msg(rc == bc->code, "%s: code %d, expected %d (%s)", bc->what, rc, bc->code, err.text);
    ck_assert_ptr_null(c);
    ck_assert_str_eq(err.file, path);
    ck_assert_str_eq(err.key, bc->key);
    ck_assert_msg(strstr(err.text, bc->needle), "%s: '%s' lacks '%s'", bc->what, err.text, bc->needle);
    ck_assert_msg(!strchr(err.text, '\n'), "%s: more than one line", bc->what);
    if (bc->position) ck_assert_int_gt(err.line, 0);
    if (bc->position == 1) ck_assert_int_gt(err.column, 0);
}
END_TEST

/* never a crash: truncations and byte mutations of the real trace either import or fail with a
 * code (Check runs each test in its own process, so a crash fails it) */
START_TEST(test_mutations) {
    size_t len;
    char *s = read_file(KDATA("small.json"), &len);
    char *m = malloc(len);
    uint64_t seed = 0x9e3779b97f4a7c15ULL;
    static const char alphabet[] = "{}[],:\"0123456789-.eE aXnull";
    int ok = 0, failed = 0;
    ck_assert_ptr_nonnull(m);
    for (int round = 0; round < 120; round++) {
        size_t n = len;
        memcpy(m, s, len);
        if (round < 40) {
            n = len * (size_t)round / 40; /* truncations */
        } else {
            for (int k = 0; k < 1 + round % 5; k++) {
                seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
                m[(seed >> 33) % len] = alphabet[(seed >> 17) % (sizeof alphabet - 1)];
            }
        }
        write_file(tmp("t.json"), m, n);
        st_calib *c = NULL;
        st_error err;
        st_error_clear(&err);
        int rc = st_calib_import_kineto(tmp("t.json"), NULL, &c, &err);
        if (rc == 0) {
            ck_assert_int_eq(st_calib_save(c, tmp("p.json"), &err), 0);
            st_profile *p = NULL;
            ck_assert_msg(st_profile_load(tmp("p.json"), &p, &err) == 0, "round %d: %s", round, err.text);
            st_profile_free(p);
            st_calib_free(c);
            ok++;
        } else {
            ck_assert_int_lt(rc, 0);
            ck_assert_ptr_null(c);
            ck_assert_str_ne(err.text, "");
            failed++;
        }
    }
    ck_assert_int_gt(ok, 0); /* some mutations hit only a name or a digit */
    ck_assert_int_ge(failed, 40); /* every truncation */
    free(m);
    free(s);
}
END_TEST

Suite *suite_calibrate(void) {
    Suite *s = suite_create("calibrate");
    TCase *tc = tcase_create("kineto");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_fixture_fit);
    tcase_add_test(tc, test_fixture_gzip);
    tcase_add_test(tc, test_deterministic);
    tcase_add_test(tc, test_link_correlation);
    tcase_add_test(tc, test_link_external_id);
    tcase_add_test(tc, test_link_innermost);
    tcase_add_test(tc, test_link_launch_thread);
    tcase_add_test(tc, test_charge_up);
    tcase_add_test(tc, test_flops_and_dtypes);
    tcase_add_test(tc, test_binning_median);
    tcase_add_test(tc, test_nccl_busbw);
    tcase_add_loop_test(tc, test_bad_input, 0, (int)(sizeof bad_cases / sizeof bad_cases[0]));
    tcase_add_test(tc, test_mutations);
    suite_add_tcase(s, tc);

    tc = tcase_create("retarget");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_retarget_scales);
    tcase_add_test(tc, test_retarget_same_gpu);
    tcase_add_test(tc, test_retarget_drops_missing_dtype);
    tcase_add_test(tc, test_retarget_unknown_gpu);
    suite_add_tcase(s, tc);
    return s;
}
