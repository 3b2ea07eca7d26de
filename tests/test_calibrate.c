/* test_calibrate.c: the Check suite of `strata calibrate` (profiler/kineto.c) and of the profile
 * retargeting across GPUs (cost/profile.c, st_profile_retarget).
 *
 * Oracles are by hand: FLOPs from the shapes (2mkn), rates as FLOPs over the kernel durations
 * written into the traces, bus bandwidth by nccl-tests' definition, medians of three or two
 * samples, peak ratios from the datasheet numbers of src/core/cluster.c. Every fitted profile goes
 * through st_profile_load, so what is checked is what --profile will read. The hand-written
 * Kineto trace tests/data/kineto/small.json (PyTorch 2.x export_chrome_trace layout) carries the
 * durations the expected numbers below are computed from; tiny traces written here isolate one
 * rule each.
 */
#include "src/strata.h"
#include "src/io/jsonutil.h"
#include "suites.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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
    static const char *const names[] = {"t.json", "t.json.gz", "p.json", "q.json", "r0.json", "r1.json", NULL};
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

/* props: the members of deviceProperties[0] after its id (NULL: no deviceProperties) */
static void tb_begin_props(tb *b, const char *props) {
    b->f = open_memstream(&b->text, &b->len);
    ck_assert_ptr_nonnull(b->f);
    b->n = 0;
    b->corr = 5000;
    fprintf(b->f, "{\n  \"schemaVersion\": 1,\n");
    if (props) fprintf(b->f, "  \"deviceProperties\": [{\"id\": 0, %s}],\n", props);
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

static void tb_begin(tb *b, const char *device) {
    char props[256];
    snprintf(props, sizeof props, "\"name\": \"%s\", \"numSms\": 108", device ? device : "");
    tb_begin_props(b, device ? props : NULL);
}

/* the usual call: operator `name` with its own id and one linked kernel */
static void tb_call(tb *b, const char *name, const char *dims, const char *types, const char *extra, const char *kname,
                    double dur_us) {
    int ext = 100 + b->n;
    double t = 100.0 * ++b->n;
    tb_op(b, name, ext, t, dims, types, extra);
    tb_kernel(b, ext, ext, t + 20, kname, dur_us);
}

/* dist: members of distributedInfo (NULL: none) */
static void tb_end_dist(tb *b, const char *path, const char *dist) {
    fprintf(b->f, "\n  ],\n");
    if (dist) fprintf(b->f, "  \"distributedInfo\": {%s},\n", dist);
    fprintf(b->f, "  \"traceName\": \"test\"\n}\n");
    ck_assert_int_eq(fclose(b->f), 0);
    write_file(path, b->text, b->len);
    free(b->text);
}

static void tb_end(tb *b, const char *path) { tb_end_dist(b, path, NULL); }

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
    /* the optimizer kernel's launch has External id 0, which names no operator: it links by time
     * to the operator around the launch (HolisticTraceAnalysis's rule), which has no class, as
     * aten::sum under AddmmBackward0 has none */
    ck_assert_int_eq(s.unlinked, 0);
    ck_assert_int_eq(s.unclassified, 2);
    ck_assert_int_eq(s.no_shapes, 0);
    ck_assert_int_eq(s.samples[0], 7);
    ck_assert_int_eq(s.samples[1], 9);
    ck_assert_int_eq(s.samples[2], 1);
    ck_assert_int_eq(s.tables[0], 2);
    ck_assert_int_eq(s.points[0], 4);
    ck_assert_int_eq(s.tables[1], 5);
    ck_assert_int_eq(s.points[1], 7);
    ck_assert_int_eq(s.tables[2], 1);
    ck_assert_int_eq(s.samples[3], 3); /* pinned copies; the pageable and device-to-device ones are not */
    ck_assert_int_eq(s.tables[3], 2);
    ck_assert_int_eq(s.points[3], 3);

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
    /* copies: HtoD (Pinned -> Device) 64 KiB in 3.2 us and 64 MiB in 2800 us; DtoH (Device ->
     * Pinned) 1 MiB in 50 us. The pageable HtoD of 1 MiB in 200 us would be a point at 2^20. */
    double lo = P2(16) / 3.2e-6, hi = P2(26) / 2800e-6;
    REL(st_profile_copy_bytes_per_s(p, ST_COPY_H2D, P2(16)), lo, r);
    REL(st_profile_copy_bytes_per_s(p, ST_COPY_H2D, P2(26)), hi, r);
    REL(st_profile_copy_bytes_per_s(p, ST_COPY_H2D, P2(20)), lo + 0.4 * (hi - lo), r);
    REL(st_profile_copy_bytes_per_s(p, ST_COPY_D2H, P2(20)), P2(20) / 50e-6, r);
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

/* Fused attention (SDPA's flash and memory-efficient operators, forward and backward) becomes the
 * attention class, FLOPs counted as cost/ counts the fused operator: 4 b heads s_q s_k d, halved
 * when is_causal ("Concrete Inputs"), x2.5 backward; its kernels (launched from the aten flash
 * operator inside) charged to it. Without the is_causal value the work is unknown: no sample. */
START_TEST(test_attention_import) {
    tb b;
    tb_begin(&b, "NVIDIA H100 80GB HBM3");
    const char *q4 = "[[2, 16, 1024, 64], [2, 16, 1024, 64], [2, 16, 1024, 64], [], [], [], []]";
    const char *t4 = "[" BF ", " BF ", " BF ", \"double\", \"bool\", \"bool\", \"\"]";
    /* forward, causal: the kernel runs inside aten::_flash_attention_forward */
    int ext = 100;
    tb_op(&b, "aten::_scaled_dot_product_flash_attention", ext, 100, q4, t4,
          "\"Concrete Inputs\": [\"\", \"\", \"\", \"0.\", \"True\", \"False\", \"\"]");
    tb_event(&b, "cpu_op", "aten::_flash_attention_forward", 1, 110, 30, "\"External id\": 101");
    tb_kernel(&b, ext + 1, ext + 1, 120, "flash_fwd_kernel", 1000);
    b.n = 1; /* the calls below take the windows after it */
    /* backward, causal: grad_out, query, key, value, ...; is_causal is input 11 */
    tb_call(&b, "aten::_scaled_dot_product_flash_attention_backward",
            "[[2, 16, 1024, 64], [2, 16, 1024, 64], [2, 16, 1024, 64], [2, 16, 1024, 64], [2, 16, 1024, 64], "
            "[2, 16, 1024], [], [], [], [], [], [], [], []]",
            "[" BF ", " BF ", " BF ", " BF ", " BF ", \"float\", \"\", \"\", \"\", \"\", \"double\", \"bool\", "
            "\"\", \"\"]",
            "\"Concrete Inputs\": [\"\", \"\", \"\", \"\", \"\", \"\", \"\", \"\", \"\", \"\", \"0.\", \"True\", "
            "\"\", \"\"]",
            "flash_bwd_kernel", 1000);
    /* memory-efficient, fp32, not causal (is_causal is input 6), 4 kv heads of 8 queries */
    tb_call(&b, "aten::_scaled_dot_product_efficient_attention",
            "[[1, 8, 512, 128], [1, 4, 2048, 128], [1, 4, 2048, 128], [], [], [], [], []]",
            "[\"float\", \"float\", \"float\", \"\", \"bool\", \"double\", \"bool\", \"\"]",
            "\"Concrete Inputs\": [\"\", \"\", \"\", \"\", \"True\", \"0.\", \"False\", \"\"]", "efficient_kernel",
            1000);
    /* no Concrete Inputs: unknown mask, no sample */
    tb_call(&b, "aten::_scaled_dot_product_flash_attention", q4, t4, NULL, "flash_fwd_kernel", 1000);
    tb_end(&b, tmp("t.json"));
    st_calib_summary s;
    st_profile *p = import_load(tmp("t.json"), NULL, 0, &s);
    ck_assert_int_eq(s.used, 3);
    ck_assert_int_eq(s.no_shapes, 1);
    const double r = 1e-12;
    double f = 4.0 * 2 * 16 * 1024 * 1024 * 64 / 2; /* every call 1 ms: TFLOP/s = FLOPs / 1e9 */
    REL(st_profile_flops_per_s(p, ST_OPC_ATTENTION, ST_DT_BF16, f), f / 1e-3, r);
    REL(st_profile_flops_per_s(p, ST_OPC_ATTENTION, ST_DT_BF16, 2.5 * f), 2.5 * f / 1e-3, r);
    f = 4.0 * 1 * 8 * 512 * 2048 * 128;
    REL(st_profile_flops_per_s(p, ST_OPC_ATTENTION, ST_DT_FP32, f), f / 1e-3, r);
    double x[8], y[8];
    ck_assert_int_eq(points_of("compute", "class", "attention", x, y, 8), 2); /* bf16: forward and backward */
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
    ck_assert_ptr_nonnull(strstr(note, "collectives and host copies as measured"));
    /* bf16 peak 989.4 / 312 at every point; the efficiency shape is kept */
    REL(st_profile_flops_per_s(p, ST_OPC_GEMM, ST_DT_BF16, 1e9), 50e12 * 989.4 / 312, 1e-12);
    REL(st_profile_flops_per_s(p, ST_OPC_GEMM, ST_DT_BF16, 1e11), 200e12 * 989.4 / 312, 1e-12);
    REL(st_profile_flops_per_s(p, ST_OPC_GEMM, ST_DT_BF16, 1e13), 250e12 * 989.4 / 312, 1e-12);
    /* HBM 3350 / 2039 */
    REL(st_profile_bytes_per_s(p, ST_OPC_ELEMWISE, 1e9), 1600e9 * 3350 / 2039, 1e-12);
    /* collectives and copies as measured (the host's link, not the GPU) */
    REL(st_profile_bus_bytes_per_s(p, ST_COLL_ALLREDUCE, 1, 8, 1e9), 230e9, 1e-12);
    REL(st_profile_copy_bytes_per_s(p, ST_COPY_H2D, 1e9), 22e9, 1e-12);
    REL(st_profile_copy_bytes_per_s(p, ST_COPY_D2H, 1e9), 20e9, 1e-12);
    /* now it is an H100 profile: a second call leaves it */
    ck_assert_int_eq(st_profile_retarget(p, &h100, note, sizeof note, &err), 0);
    ck_assert_str_eq(note, "");
    REL(st_profile_flops_per_s(p, ST_OPC_GEMM, ST_DT_BF16, 1e11), 200e12 * 989.4 / 312, 1e-12);
    st_profile_free(p);
}
END_TEST

/* bad copy tables: exit 2 (ST_EINVAL) naming the key, as the other tables */
static const struct {
    const char *copies, *key, *needle;
} bad_copies[] = {
    {"{\"points\": [[1, 2]]}", "copies[0].dir", "\"h2d\" or \"d2h\""},
    {"{\"dir\": \"h2d\", \"points\": [[1, 2]]}, {\"dir\": \"up\", \"points\": [[1, 2]]}", "copies[1].dir",
     "\"h2d\" or \"d2h\""},
    {"{\"dir\": 3, \"points\": [[1, 2]]}", "copies[0].dir", ""},
    {"{\"dir\": \"d2h\"}", "copies[0].points", "non-empty array"},
    {"{\"dir\": \"d2h\", \"points\": [[2, 1], [1, 1]]}", "copies[0].points", "must increase"},
    {"{\"dir\": \"d2h\", \"points\": [[1, 0]]}", "copies[0].points", "y > 0"},
    {"{\"dir\": \"d2h\", \"points\": [[1, 2]], \"gb_per_s\": 3}", "copies[0].gb_per_s", "unknown key"},
    {"\"h2d\"", "copies[0]", "object"},
};

START_TEST(test_profile_bad_copies) {
    char text[512];
    st_profile *p = NULL;
    st_error err;
    st_error_clear(&err);
    int n = snprintf(text, sizeof text, "{\"strata_profile\": 1, \"gpu\": \"a100-sxm-80g\", \"copies\": [%s]}",
                     bad_copies[_i].copies);
    write_file(tmp("q.json"), text, (size_t)n);
    ck_assert_int_eq(st_profile_load(tmp("q.json"), &p, &err), ST_EINVAL);
    ck_assert_ptr_null(p);
    ck_assert_str_eq(err.file, tmp("q.json"));
    ck_assert_str_eq(err.key, bad_copies[_i].key);
    ck_assert_msg(strstr(err.text, bad_copies[_i].needle), "'%s' lacks '%s'", err.text, bad_copies[_i].needle);
    ck_assert(!strchr(err.text, '\n'));
    /* not an array at all */
    static const char obj[] = "{\"strata_profile\": 1, \"gpu\": \"x\", \"copies\": {}}";
    write_file(tmp("q.json"), obj, sizeof obj - 1);
    st_error_clear(&err);
    ck_assert_int_eq(st_profile_load(tmp("q.json"), &p, &err), ST_EINVAL);
    ck_assert_str_eq(err.key, "copies");
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
    snprintf(text, sizeof text, fp8_profile, "gaudi3");
    write_file(tmp("q.json"), text, strlen(text));
    ck_assert_int_eq(st_gpu_preset("h100-sxm-80g", &g), 0);
    ck_assert_int_eq(st_profile_load(tmp("q.json"), &p, &err), 0);
    ck_assert_int_eq(st_profile_retarget(p, &g, note, sizeof note, &err), ST_EINVAL);
    ck_assert_str_eq(err.key, "gpu");
    ck_assert_str_eq(err.file, tmp("q.json"));
    ck_assert_ptr_nonnull(strstr(err.text, "gaudi3"));
    snprintf(g.name, sizeof g.name, "gaudi3");
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
    {"a GPU name too long to label the profile", ST_EINVAL, "deviceProperties[0].name", "--gpu", 0},
    {"no GPU named", ST_EINVAL, "deviceProperties", "--gpu", 0},
    {"no shapes", ST_EINVAL, "", "record_shapes=True", 0},
    {"truncated gzip", ST_EINVAL, "", "truncated", 0},
    {"corrupt gzip", ST_EINVAL, "", "gzip", 0},
    {"empty file", ST_EINVAL, "", "invalid JSON", 2},
    {"a kernel of over an hour", ST_EINVAL, "dur", "over an hour", 0},
    {"kernels without a duration", ST_EINVAL, "", "1 without a positive \"dur\"", 0},
    {"a kernel faster than the GPU can be", ST_EINVAL, "", "not physical", 0},
    {"garbage after the gzip member", ST_EINVAL, "", "after the end of the gzip stream", 0},
    {"a folder without traces", ST_EIO, "", "cannot read", 0},
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
    case 6: {
        tb b;
        tb_begin(&b, "NVIDIA Some Future Accelerator With A Very Long Marketing Name");
        tb_call(&b, "aten::mm", MM_A, BF2, NULL, "k", 10);
        tb_end(&b, t);
        return t;
    }
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
    case 12:
    case 13:
    case 14: { /* 14: 4.2 MFLOP in 1 ns, 4,194 TFLOP/s on an A100 */
        tb b;
        tb_begin(&b, "NVIDIA A100-SXM4-80GB");
        tb_call(&b, "aten::mm", MM_A, BF2, NULL, "k", i == 12 ? 1e10 : i == 13 ? -1 : 1e-3);
        tb_end(&b, t);
        return t;
    }
    case 15: { /* a valid member, then bytes gzread ignored */
        s = read_file(KDATA("small.json.gz"), &len);
        char *g = malloc(len + 8);
        memcpy(g, s, len);
        memcpy(g + len, "garbage\n", 8);
        write_file(tmp("t.json.gz"), g, len + 8);
        free(g);
        free(s);
        return tmp("t.json.gz");
    }
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


/* ------------------------------------------------------------ strata profile: the pure half */
/* profiler/prof.c without a GPU: the shape grid against the presets' own operator shapes (every
 * power-of-two FLOP bin a preset GEMM falls into is timed), a plan's shapes against st_ops_layer,
 * fills decoded bit by bit, medians by hand, and fitted profiles through st_profile_load. */


/* the power-of-two bin of x, as prof.c and kineto.c bin: x in [2^(e-1), 2^e) */
static int pbin(double x) {
    int e;
    frexp(x, &e);
    return e;
}

static int grid_has(const st__prof_gemm *g, int n, st_opclass cls, int bin) {
    for (int i = 0; i < n; i++)
        if (g[i].cls == cls && pbin(g[i].flops) == bin) return 1;
    return 0;
}

START_TEST(test_prof_grid_covers_presets) {
    st__prof_gemm *g = NULL, *q = NULL;
    int n = 0, nq = 0, checked = 0;
    ck_assert_int_eq(st__prof_gemm_grid(0, 1e30, 2, &g, &n), 0);
    ck_assert_int_ge(n, 20);
    /* sorted by class then FLOPs; at most 3 per bin; FLOPs = 2 m n k batch */
    for (int i = 0; i < n; i++) {
        ck_assert_double_eq(g[i].flops, 2 * g[i].m * g[i].n * g[i].k * g[i].batch);
        ck_assert(g[i].cls == ST_OPC_GEMM || g[i].cls == ST_OPC_BGEMM);
        ck_assert_int_eq(g[i].plan, 0);
        if (i > 0) ck_assert(g[i].cls > g[i - 1].cls || (g[i].cls == g[i - 1].cls && g[i].flops >= g[i - 1].flops));
        int same = 0;
        for (int j = 0; j < n; j++) same += g[j].cls == g[i].cls && pbin(g[j].flops) == pbin(g[i].flops);
        ck_assert_int_le(same, 3);
    }
    /* every GEMM of every preset the grid is for at tp 1, 2, 4, 8 and micro-batch 1, 4 lands in a timed bin */
    size_t np;
    const st_model *pm = st_model_presets(&np);
    static const int tps[] = {1, 2, 4, 8};
    for (size_t i = 0; i < np; i++)
        for (int t = 0; t < 4; t++) {
            if (pm[i].heads % tps[t] || pm[i].kv_heads % tps[t] || pm[i].hidden < ST_PROF_MIN_HIDDEN) continue;
            for (int64_t mbs = 1; mbs <= 4; mbs *= 4) {
                st_shard sh = {.tp = tps[t], .cp = 1, .ep = 1, .mbs = mbs, .seq = pm[i].seq_len,
                               .dtype = ST_DT_BF16, .grad_bytes = 4};
                st_op ops[ST_MAX_OPS];
                int64_t idx[2];
                st_model_block_kinds(&pm[i], &idx[0], &idx[1]);
                for (int part = 0; part < 3; part++) {
                    int k = part < 2 ? (idx[part] < 0 ? 0 : st_ops_layer(&pm[i], &sh, idx[part], ops, ST_MAX_OPS))
                                     : st_ops_tail(&pm[i], &sh, ops, ST_MAX_OPS);
                    ck_assert_int_ge(k, 0);
                    for (int o = 0; o < k; o++) {
                        if (ops[o].cls != ST_OPC_GEMM && ops[o].cls != ST_OPC_BGEMM) continue;
                        if (!grid_has(g, n, ops[o].cls, pbin(ops[o].fwd_flops)))
                            ck_abort_msg("%s tp=%d mbs=%lld %s: %g FLOPs (bin 2^%d) not in the grid", pm[i].name,
                                         tps[t], (long long)mbs, ops[o].name, ops[o].fwd_flops, pbin(ops[o].fwd_flops));
                        checked++;
                    }
                }
            }
        }
    ck_assert_int_gt(checked, 500);
    /* --quick: a few shapes, none above 2^42 FLOPs, each one the full grid times too */
    ck_assert_int_eq(st__prof_gemm_grid(1, 1e30, 2, &q, &nq), 0);
    ck_assert_int_ge(nq, 3);
    ck_assert_int_le(nq, 16);
    for (int i = 0; i < nq; i++) {
        ck_assert_double_le(q[i].flops, ldexp(1, 42));
        int found = 0;
        for (int j = 0; j < n && !found; j++)
            found = q[i].cls == g[j].cls && q[i].m == g[j].m && q[i].n == g[j].n && q[i].k == g[j].k &&
                    q[i].batch == g[j].batch;
        ck_assert(found);
    }
    free(q);
    /* a memory cap leaves out what does not fit, and keeps the bins a smaller shape covers */
    double cap = 4.0 * 1073741824;
    ck_assert_int_eq(st__prof_gemm_grid(0, cap, 4, &q, &nq), 0);
    ck_assert_int_gt(nq, 10);
    for (int i = 0; i < nq; i++) ck_assert_double_le(st__prof_gemm_bytes(&q[i], 4), cap);
    free(q);
    free(g);
}
END_TEST

START_TEST(test_prof_median) {
    double a[] = {5, 1, 3}, b[] = {4, 1, 3, 2}, c[] = {7}, d[] = {2, 2, 9, 1, 2};
    ck_assert_double_eq(st__prof_median(a, 3), 3);
    ck_assert_double_eq(st__prof_median(b, 4), 2.5);
    ck_assert_double_eq(st__prof_median(c, 1), 7);
    ck_assert_double_eq(st__prof_median(d, 5), 2);
    ck_assert_double_eq(st__prof_median(NULL, 0), 0);
}
END_TEST

/* value of one element of each format, decoded by hand */
static double decode(st_dtype dt, const void *buf, size_t i) {
    if (dt == ST_DT_FP32 || dt == ST_DT_TF32) {
        float f;
        memcpy(&f, (const char *)buf + 4 * i, 4);
        return f;
    }
    if (dt == ST_DT_BF16) {
        uint32_t u = (uint32_t)((const uint16_t *)buf)[i] << 16;
        float f;
        memcpy(&f, &u, 4);
        return f;
    }
    int sign, e, m, bias, mbits, emax;
    if (dt == ST_DT_FP16) {
        uint16_t h = ((const uint16_t *)buf)[i];
        sign = h >> 15, e = (h >> 10) & 31, m = h & 1023, bias = 15, mbits = 10, emax = 31;
    } else {
        uint8_t q = ((const uint8_t *)buf)[i];
        sign = q >> 7, e = (q >> 3) & 15, m = q & 7, bias = 7, mbits = 3, emax = 15;
        if (e == 15 && m == 7) return NAN; /* e4m3's only NaN */
        emax = 16;                         /* e4m3 has no infinities */
    }
    if (e == emax) return m ? NAN : INFINITY;
    double v = e ? ldexp(1 + m / ldexp(1, mbits), e - bias) : ldexp(m / ldexp(1, mbits), 1 - bias);
    return sign ? -v : v;
}

START_TEST(test_prof_fill) {
    static const st_dtype dts[] = {ST_DT_FP32, ST_DT_TF32, ST_DT_FP16, ST_DT_BF16, ST_DT_FP8};
    enum { N = 4096 };
    static uint32_t buf[N], again[N];
    for (size_t d = 0; d < sizeof dts / sizeof dts[0]; d++)
        for (int pos = 0; pos < 2; pos++) {
            uint64_t seed = 42, seed2 = 42;
            st__prof_fill(dts[d], pos, buf, N, &seed);
            int neg = 0, distinct = 0;
            double first = decode(dts[d], buf, 0);
            for (size_t i = 0; i < N; i++) {
                double v = decode(dts[d], buf, i);
                ck_assert_msg(isfinite(v) && v != 0, "%s element %zu is %g", st_dtype_name(dts[d]), i, v);
                ck_assert_double_ge(fabs(v), 1.0 / 16);
                ck_assert_double_lt(fabs(v), 2);
                neg += v < 0;
                distinct += v != first;
            }
            if (pos)
                ck_assert_int_eq(neg, 0);
            else
                ck_assert(neg > N / 4 && neg < 3 * N / 4);
            ck_assert_int_gt(distinct, N / 2);
            st__prof_fill(dts[d], pos, again, N, &seed2); /* same seed, same numbers */
            ck_assert_int_eq(memcmp(buf, again, N * (dts[d] == ST_DT_FP8 ? 1 : (size_t)st_dtype_bytes(dts[d]))), 0);
        }
}
END_TEST

START_TEST(test_prof_plan_shapes) {
    st_model m;
    st_cluster c;
    st_plan p;
    st_error err;
    st__prof_gemm *g = NULL;
    st__prof_mem *mm = NULL;
    int ng = 0, nm = 0;
    st_error_clear(&err);
    ck_assert_int_eq(st_model_preset("llama2-7b", &m), 0);
    ck_assert_int_eq(st_cluster_resolve("dgx-h100", 8, &c, &err), 0);
    st_plan_defaults(&p);
    ck_assert_int_eq(st_plan_parse_spec("tp=8,mbs=2,sp=1,attention=unfused", &p, &err), 0);
    ck_assert_int_eq(st_plan_finalize(&p, &m, &c, 0, NULL, &err), 0);
    ck_assert_int_eq(st__prof_plan_shapes(&m, &p, &g, &ng, &mm, &nm), 0);
    /* the GEMMs one rank runs, by hand: T = 2 x 4096 tokens, h 4096, ffn 11008, 32 heads / 8 */
    const double T = 8192, h = 4096;
    const struct {
        st_opclass cls;
        double m, n, k, batch;
    } want[] = {{ST_OPC_GEMM, T, 3 * h / 8, h, 1},           /* qkv */
                {ST_OPC_GEMM, T, h, h / 8, 1},               /* proj */
                {ST_OPC_GEMM, T, 2 * 11008 / 8, h, 1},       /* fc1: gate and up */
                {ST_OPC_GEMM, T, h, 11008 / 8, 1},           /* fc2 */
                {ST_OPC_GEMM, T, 32768 / 8, h, 1},           /* logits: 32000 padded to 128 x 8 */
                {ST_OPC_BGEMM, 4096, 4096, 128, 2 * 32 / 8}, /* scores */
                {ST_OPC_BGEMM, 4096, 128, 4096, 2 * 32 / 8}};
    ck_assert_int_eq(ng, (int)(sizeof want / sizeof want[0]));
    for (size_t w = 0; w < sizeof want / sizeof want[0]; w++) {
        int found = 0;
        for (int i = 0; i < ng; i++)
            if (g[i].cls == want[w].cls && g[i].m == want[w].m && g[i].n == want[w].n && g[i].k == want[w].k &&
                g[i].batch == want[w].batch) {
                found = 1;
                ck_assert_int_eq(g[i].plan, 1);
                ck_assert_double_eq(g[i].flops, 2 * g[i].m * g[i].n * g[i].k * g[i].batch);
            }
        ck_assert_msg(found, "GEMM %zu missing", w);
    }
    /* memory-bound: one kernel per (class, bytes per kernel) of the plan's operators, sized to move
     * those bytes, each x an operator's bytes per kernel as st_ops_layer counts them */
    st_shard sh;
    st_plan_shard(&p, &sh);
    st_op ops[ST_MAX_OPS];
    int n = st_ops_layer(&m, &sh, 0, ops, ST_MAX_OPS);
    ck_assert_int_gt(n, 0);
    int classes[ST_OPC_COUNT] = {0};
    for (int i = 0; i < nm; i++) {
        ck_assert_int_eq(mm[i].plan, 1);
        st_opclass cls = st__prof_kernel_class(mm[i].kernel);
        classes[cls]++;
        REL(st__prof_mem_bytes(&mm[i]), mm[i].x, 1e-3);
        for (int j = 0; j < i; j++) ck_assert(!(mm[j].x == mm[i].x && st__prof_kernel_class(mm[j].kernel) == cls));
        if (cls == ST_OPC_NORM) {
            ck_assert_int_eq(mm[i].kernel, ST_PROF_RMSNORM); /* Llama */
            ck_assert_int_eq(mm[i].cols, 4096);
        }
        /* SwiGLU forward reads gate and up and writes one (3 x T x ffn/tp x 2 bytes); backward 1.5 x */
        if (mm[i].kernel == ST_PROF_SWIGLU)
            ck_assert(mm[i].x == 3 * T * 11008 / 8 * 2 || mm[i].x == 1.5 * 3 * T * 11008 / 8 * 2);
    }
    ck_assert_int_ge(classes[ST_OPC_NORM], 1);
    ck_assert_int_ge(classes[ST_OPC_SOFTMAX], 1);
    ck_assert_int_ge(classes[ST_OPC_ELEMWISE], 3);
    for (int i = 0; i < n; i++) {
        if (ops[i].cls != ST_OPC_NORM && ops[i].cls != ST_OPC_SOFTMAX && ops[i].cls != ST_OPC_ELEMWISE) continue;
        if (ops[i].kernels_fwd < 1) continue;
        int found = 0;
        for (int j = 0; j < nm; j++)
            found |= mm[j].x == ops[i].fwd_bytes / ops[i].kernels_fwd && st__prof_kernel_class(mm[j].kernel) == ops[i].cls;
        ck_assert_msg(found, "op %s has no kernel at its bytes", ops[i].name);
    }
    free(g);
    free(mm);
}
END_TEST

START_TEST(test_prof_mem_grid) {
    st__prof_mem *k = NULL;
    int n = 0;
    ck_assert_int_eq(st__prof_mem_grid(0, &k, &n), 0);
    ck_assert_int_eq(n, ST_PROF_KERNELS * 7);
    int per[ST_PROF_KERNELS] = {0};
    for (int i = 0; i < n; i++) {
        per[k[i].kernel]++;
        ck_assert_double_eq(k[i].x, st__prof_mem_bytes(&k[i]));
        /* 2^18 .. 2^30 bytes, each within a few percent of its power of two (whole rows) */
        double e = round(log2(k[i].x));
        ck_assert_double_ge(e, 18);
        ck_assert_double_le(e, 30);
        REL(k[i].x, ldexp(1, (int)e), 0.05);
    }
    for (int j = 0; j < ST_PROF_KERNELS; j++) ck_assert_int_eq(per[j], 7);
    /* bytes as src/core/opgraph.c counts them: 2 x elements x 2 for norms, 3 x n x 2 for add, Adam 30 */
    st__prof_mem ln = {ST_PROF_LAYERNORM, 8, 4096, 0, 0}, add = {ST_PROF_ADD, 1000, 1, 0, 0},
                 adam = {ST_PROF_ADAM, 1000, 1, 0, 0};
    ck_assert_double_eq(st__prof_mem_bytes(&ln), 8 * 4096 * 4);
    ck_assert_double_eq(st__prof_mem_bytes(&add), 6000);
    ck_assert_double_eq(st__prof_mem_bytes(&adam), 30000);
    free(k);
    ck_assert_int_eq(st__prof_mem_grid(1, &k, &n), 0);
    ck_assert_int_eq(n, ST_PROF_KERNELS * 3);
    free(k);
}
END_TEST

static void add_sample(st__prof_result *r, int kind, st_opclass cls, st_dtype dt, st_coll coll, int ranks, int exact,
                       double x, double y) {
    st__prof_sample s = {.kind = kind, .cls = cls, .dtype = dt, .coll = coll, .ranks = ranks, .exact = exact,
                         .x = x, .y = y};
    ck_assert_int_eq(st__prof_add(r, &s), 0);
}

static void add_copy(st__prof_result *r, st_copy_dir d, double x, double y) {
    st__prof_sample s = {.kind = ST_PROF_COPY, .dir = d, .x = x, .y = y};
    ck_assert_int_eq(st__prof_add(r, &s), 0);
}

static int has_coll(const st__prof_coll *v, int n, st_coll c, int ranks, double bytes) {
    for (int i = 0; i < n; i++)
        if (v[i].coll == c && v[i].ranks == ranks && v[i].bytes == bytes) return 1;
    return 0;
}

/* A plan's collectives, as the estimator looks them up: llama2-7b, tp=4, pp=2 on one DGX H100
 * (tp and pp inside the node; dp = 1): the tp all-reduce of the activations [4096, 4096] bf16 =
 * 32 MiB over 4, the pipeline send/recv of the whole activation (32 MiB: every tp rank sends it,
 * Megatron-Core) as the 2-rank table has it,
 * and every operator collective that st_ops_* imply. With dp = 2 across two nodes (tp=8), the
 * gradient reduction is inter-node: counted, not listed. With dp = 4 inside the node, zero 0:
 * the gradients all-reduced in Megatron's buckets of 40M parameters, fp32 (80 to 160 MB each). */
START_TEST(test_prof_plan_colls) {
    st_model m;
    st_cluster c;
    st_plan p;
    st_error err;
    st__prof_coll *v = NULL;
    int n = 0, inter = -1;
    st_error_clear(&err);
    ck_assert_int_eq(st_model_preset("llama2-7b", &m), 0);
    ck_assert_int_eq(st_cluster_resolve("dgx-h100", 8, &c, &err), 0);
    st_plan_defaults(&p);
    ck_assert_int_eq(st_plan_parse_spec("tp=4,pp=2,mbs=1,gbs=64,seq=4096", &p, &err), 0);
    ck_assert_int_eq(st_plan_finalize(&p, &m, &c, 0, NULL, &err), 0);
    ck_assert_int_eq(st__prof_plan_colls(&m, &c, &p, &v, &n, &inter), 0);
    ck_assert_int_eq(inter, 0);
    ck_assert(has_coll(v, n, ST_COLL_ALLREDUCE, 4, 4096.0 * 4096 * 2));
    ck_assert(has_coll(v, n, ST_COLL_SENDRECV, 2, 4096.0 * 4096 * 2));
    /* every collective an operator implies, at its group's size */
    st_shard sh;
    st_op ops[ST_MAX_OPS];
    st_plan_shard(&p, &sh);
    for (int part = 0; part < 3; part++) {
        int k = part == 0 ? st_ops_layer(&m, &sh, 0, ops, ST_MAX_OPS)
                          : part == 1 ? st_ops_head(&m, &sh, ops, ST_MAX_OPS) : st_ops_tail(&m, &sh, ops, ST_MAX_OPS);
        for (int i = 0; i < k; i++) {
            st_group g;
            st_cost_group(&c, &p, ops[i].coll_group, &g);
            if (ops[i].fwd_coll != ST_COLL_NONE)
                ck_assert_msg(has_coll(v, n, ops[i].fwd_coll, (int)g.n, ops[i].coll_bytes), "%s", ops[i].name);
            if (ops[i].bwd_coll != ST_COLL_NONE)
                ck_assert_msg(has_coll(v, n, ops[i].bwd_coll, (int)g.n, ops[i].coll_bytes), "%s", ops[i].name);
        }
    }
    for (int i = 0; i < n; i++) {
        ck_assert(v[i].ranks == 2 || v[i].ranks == 4); /* nothing over more than the plan's groups */
        ck_assert(v[i].bytes > 0);
        if (i) ck_assert(v[i - 1].coll < v[i].coll || (v[i - 1].coll == v[i].coll && (v[i - 1].ranks < v[i].ranks ||
                         (v[i - 1].ranks == v[i].ranks && v[i - 1].bytes < v[i].bytes))));
    }
    free(v);

    /* dp across nodes: counted as inter-node, and nothing over 2 ranks listed for it */
    ck_assert_int_eq(st_cluster_resolve("dgx-h100", 16, &c, &err), 0);
    st_plan_defaults(&p);
    ck_assert_int_eq(st_plan_parse_spec("tp=8,dp=2,mbs=1,gbs=64,seq=4096,zero=0", &p, &err), 0);
    ck_assert_int_eq(st_plan_finalize(&p, &m, &c, 0, NULL, &err), 0);
    ck_assert_int_eq(st__prof_plan_colls(&m, &c, &p, &v, &n, &inter), 0);
    ck_assert_int_gt(inter, 0);
    for (int i = 0; i < n; i++) ck_assert_int_eq(v[i].ranks, 8);
    free(v);

    /* dp inside the node: the DDP buckets */
    ck_assert_int_eq(st_cluster_resolve("dgx-h100", 8, &c, &err), 0);
    st_plan_defaults(&p);
    ck_assert_int_eq(st_plan_parse_spec("tp=2,dp=4,mbs=1,gbs=64,seq=4096,zero=0", &p, &err), 0);
    ck_assert_int_eq(st_plan_finalize(&p, &m, &c, 0, NULL, &err), 0);
    ck_assert_int_eq(st__prof_plan_colls(&m, &c, &p, &v, &n, &inter), 0);
    ck_assert_int_eq(inter, 0);
    int buckets = 0;
    for (int i = 0; i < n; i++)
        buckets += v[i].coll == ST_COLL_ALLREDUCE && v[i].ranks == 4 && v[i].bytes > 80e6 && v[i].bytes <= 160e6;
    ck_assert_int_eq(buckets, 1);
    free(v);
}
END_TEST

/* fitting by hand, then the file through st_profile_load: what --profile will read */
START_TEST(test_prof_fit_roundtrip) {
    st__prof_result r;
    st_error err;
    st_profile *p = NULL;
    st_error_clear(&err);
    st__prof_result_init(&r);
    snprintf(r.gpu, sizeof r.gpu, "h100-sxm-80g");
    snprintf(r.device, sizeof r.device, "NVIDIA H100 80GB HBM3");
    snprintf(r.driver, sizeof r.driver, "580.159.04");
    snprintf(r.cuda, sizeof r.cuda, "13.0");
    snprintf(r.date, sizeof r.date, "2026-01-02");
    snprintf(r.timer, sizeof r.timer, "CUPTI activity records");
    st__prof_note(&r, "fp8 GEMMs skipped: a note");
    /* gemm bf16: bin 2^31 three grid samples (median 2^30 + 2^29 size, median rate 300) */
    add_sample(&r, ST_PROF_COMPUTE, ST_OPC_GEMM, ST_DT_BF16, 0, 0, 0, P2(30), 100e12);
    add_sample(&r, ST_PROF_COMPUTE, ST_OPC_GEMM, ST_DT_BF16, 0, 0, 0, P2(30) + P2(29), 500e12);
    add_sample(&r, ST_PROF_COMPUTE, ST_OPC_GEMM, ST_DT_BF16, 0, 0, 0, P2(31) - 2, 300e12);
    /* bin 2^41: grid samples give way to two plan samples at one x (harmonic: 2 / (1/600 + 1/300) = 400)
     * and one at another */
    add_sample(&r, ST_PROF_COMPUTE, ST_OPC_GEMM, ST_DT_BF16, 0, 0, 0, P2(40) + 5, 900e12);
    add_sample(&r, ST_PROF_COMPUTE, ST_OPC_GEMM, ST_DT_BF16, 0, 0, 1, 1.5 * P2(40), 600e12);
    add_sample(&r, ST_PROF_COMPUTE, ST_OPC_GEMM, ST_DT_BF16, 0, 0, 1, 1.5 * P2(40), 300e12);
    add_sample(&r, ST_PROF_COMPUTE, ST_OPC_GEMM, ST_DT_BF16, 0, 0, 1, 1.75 * P2(40) + 0.5, 700e12);
    /* memory: elementwise two sizes; collectives: all-reduce over 8 */
    add_sample(&r, ST_PROF_MEMORY, ST_OPC_ELEMWISE, 0, 0, 0, 0, P2(20), 1000e9);
    add_sample(&r, ST_PROF_MEMORY, ST_OPC_ELEMWISE, 0, 0, 0, 0, P2(30), 3000e9);
    add_sample(&r, ST_PROF_COLL, 0, 0, ST_COLL_ALLREDUCE, 8, 0, P2(26), 350e9);
    /* copies, as strata profile times them: sizes 4x apart, each its own point, per direction */
    add_copy(&r, ST_COPY_D2H, P2(20), 20e9);
    add_copy(&r, ST_COPY_H2D, P2(26), 24e9);
    add_copy(&r, ST_COPY_H2D, P2(20), 22e9);
    add_copy(&r, ST_COPY_D2H, P2(26), 26e9);
    /* not a point: infinite rate (a kernel the clock did not see) */
    add_sample(&r, ST_PROF_MEMORY, ST_OPC_NORM, 0, 0, 0, 0, P2(20), INFINITY);
    ck_assert_int_eq(st__prof_fit(&r), 0);
    ck_assert_int_eq(r.nt, 5);
    ck_assert_int_eq(r.t[3].kind, ST_PROF_COPY);
    ck_assert_int_eq(r.t[3].dir, ST_COPY_H2D);
    ck_assert_int_eq(r.t[3].n, 2);
    ck_assert_int_eq(r.t[4].dir, ST_COPY_D2H);
    const st__prof_table *t = &r.t[0];
    ck_assert_int_eq(t->kind, ST_PROF_COMPUTE);
    ck_assert_int_eq(t->n, 3);
    ck_assert_int_eq(t->exact, 2);
    ck_assert_int_eq(t->samples, 7);
    ck_assert_double_eq(t->x[0], P2(30) + P2(29));
    ck_assert_double_eq(t->y[0], 300e12);
    ck_assert_double_eq(t->x[1], 1.5 * P2(40));
    REL(t->y[1], 400e12, 1e-12);
    ck_assert_double_eq(t->x[2], 1.75 * P2(40) + 0.5);
    ck_assert_double_eq(t->y[2], 700e12);

    const char *path = tmp("p.json");
    ck_assert_int_eq(st__prof_save(&r, path, &err), 0);
    ck_assert_msg(st_profile_load(path, &p, &err) == 0, "%s", err.text);
    ck_assert_str_eq(st_profile_gpu(p), "h100-sxm-80g");
    /* the plan's x give exactly its measured rates; the grid point its median */
    REL(st_profile_flops_per_s(p, ST_OPC_GEMM, ST_DT_BF16, 1.5 * P2(40)), 400e12, 1e-12);
    REL(st_profile_flops_per_s(p, ST_OPC_GEMM, ST_DT_BF16, 1.75 * P2(40) + 0.5), 700e12, 1e-12);
    REL(st_profile_flops_per_s(p, ST_OPC_GEMM, ST_DT_BF16, P2(30) + P2(29)), 300e12, 1e-12);
    REL(st_profile_bytes_per_s(p, ST_OPC_ELEMWISE, P2(30)), 3000e9, 1e-12);
    ck_assert_double_eq(st_profile_bytes_per_s(p, ST_OPC_NORM, P2(20)), 0);
    REL(st_profile_bus_bytes_per_s(p, ST_COLL_ALLREDUCE, 1, 8, P2(26)), 350e9, 1e-12);
    REL(st_profile_copy_bytes_per_s(p, ST_COPY_H2D, P2(20)), 22e9, 1e-12);
    REL(st_profile_copy_bytes_per_s(p, ST_COPY_H2D, P2(23)), 23e9, 1e-12);
    REL(st_profile_copy_bytes_per_s(p, ST_COPY_D2H, P2(26)), 26e9, 1e-12);
    st_profile_free(p);
    /* the summary: one line per direction under "copies" */
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    ck_assert_ptr_nonnull(f);
    st__prof_describe(&r, f);
    fclose(f);
    ck_assert_ptr_nonnull(
        strstr(text, "\ncopies       h2d pinned                    2 points from 2 measurements: 22 to 24 GB/s\n"));
    ck_assert_ptr_nonnull(
        strstr(text, "\n             d2h pinned                    2 points from 2 measurements: 20 to 26 GB/s\n"));
    free(text);
    /* the header: driver, CUDA, date, and a source that says how it was timed, with the notes */
    json_t *root = NULL;
    ck_assert_int_eq(st__json_load_file(path, &root, &err), 0);
    ck_assert_str_eq(json_string_value(json_object_get(root, "driver")), "580.159.04");
    ck_assert_str_eq(json_string_value(json_object_get(root, "cuda")), "13.0");
    ck_assert_str_eq(json_string_value(json_object_get(root, "date")), "2026-01-02");
    const char *src = json_string_value(json_object_get(root, "source"));
    ck_assert_ptr_nonnull(strstr(src, "strata profile on NVIDIA H100 80GB HBM3: CUPTI activity records"));
    ck_assert_ptr_nonnull(strstr(src, "fp8 GEMMs skipped: a note"));
    json_decref(root);
    st__prof_result_destroy(&r);
}
END_TEST

START_TEST(test_prof_gpu_names) {
    static const char *const devs[] = {"NVIDIA A100-SXM4-80GB", "NVIDIA A100-SXM4-40GB", "NVIDIA H100 80GB HBM3",
                                       "NVIDIA H200", "NVIDIA L40S", "NVIDIA A10"};
    for (size_t i = 0; i < sizeof devs / sizeof devs[0]; i++) {
        const char *preset = st__prof_gpu_preset(devs[i]);
        st_gpu g;
        ck_assert_ptr_nonnull(preset);
        ck_assert_int_eq(st_gpu_preset(preset, &g), 0);
    }
    ck_assert_str_eq(st__prof_gpu_preset("NVIDIA H100 80GB HBM3"), "h100-sxm-80g");
    ck_assert_ptr_null(st__prof_gpu_preset("NVIDIA GeForce RTX 4090"));
    ck_assert_ptr_null(st__prof_gpu_preset("NVIDIA H100 PCIe")); /* other memory and clocks than the SXM */
}
END_TEST

/* the no-CUDA stub and the CUDA build answer the same way where there is no GPU: an error, no crash */
START_TEST(test_prof_info) { ck_assert_ptr_nonnull(strstr(st__prof_build_info(), "built with")); }
END_TEST

/* --profile NAME (issue 6: shipped profiles "can be chosen by name"): NAME.json in the folders of
 * $STRATA_PROFILE_PATH, the first folder with the name winning; a path or an unknown name errs. */
static void mkprofile(const char *dir, const char *name, const char *gpu, double tflops) {
    char path[600], text[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int n = snprintf(text, sizeof text,
                     "{\"strata_profile\": 1, \"gpu\": \"%s\", \"source\": \"test %s\", \"date\": \"2026-11-22\","
                     " \"compute\": [{\"class\": \"gemm\", \"dtype\": \"bf16\", \"points\": [[1e9, %g], [1e12, %g]]}]}",
                     gpu, name, tflops, tflops);
    write_file(path, text, (size_t)n);
}

START_TEST(test_profile_by_name) {
    char a[300], b[300];
    snprintf(a, sizeof a, "%s/a", tmpdir);
    snprintf(b, sizeof b, "%s/b", tmpdir);
    ck_assert_int_eq(mkdir(a, 0700), 0);
    ck_assert_int_eq(mkdir(b, 0700), 0);
    mkprofile(a, "x.json", "a100-sxm-80g", 100);
    mkprofile(b, "x.json", "h100-sxm-80g", 300);
    mkprofile(b, "y.json", "h100-sxm-80g", 400);
    mkprofile(b, ".hidden.json", "h100-sxm-80g", 1);
    mkprofile(b, "z.txt", "h100-sxm-80g", 1);
    char broken[320];
    snprintf(broken, sizeof broken, "%s/broken.json", b);
    write_file(broken, "{\"strata_profile\": 1,", 21);
    char env[700];
    snprintf(env, sizeof env, "%s::%s", a, b); /* an empty part is skipped, as in PATH */
    ck_assert_int_eq(setenv("STRATA_PROFILE_PATH", env, 1), 0);

    st_profile *p = NULL;
    st_error err;
    st_error_clear(&err);
    ck_assert_msg(st_profile_open("x", &p, &err) == 0, "%s", err.text);
    ck_assert_str_eq(st_profile_gpu(p), "a100-sxm-80g"); /* a/ comes first */
    ck_assert_double_eq_tol(st_profile_flops_per_s(p, ST_OPC_GEMM, ST_DT_BF16, 1e10), 100e12, 1e3);
    st_profile_free(p);
    ck_assert_msg(st_profile_open("x.json", &p, &err) == 0, "%s", err.text);
    ck_assert_str_eq(st_profile_gpu(p), "a100-sxm-80g");
    st_profile_free(p);
    ck_assert_msg(st_profile_open("y", &p, &err) == 0, "%s", err.text);
    ck_assert_double_eq_tol(st_profile_flops_per_s(p, ST_OPC_GEMM, ST_DT_BF16, 1e10), 400e12, 1e3);
    st_profile_free(p);

    p = NULL;
    ck_assert_int_eq(st_profile_open("nope", &p, &err), ST_EINVAL);
    ck_assert_ptr_null(p);
    ck_assert_str_eq(err.key, "profile");
    ck_assert_ptr_nonnull(strstr(err.text, "'nope'"));
    st_error_clear(&err);
    ck_assert_int_eq(st_profile_open(".hidden", &p, &err) < 0, 1); /* no name starts with '.' */
    ck_assert_ptr_null(p);
    st_error_clear(&err);
    ck_assert_int_eq(st_profile_open("broken", &p, &err), ST_EINVAL); /* found, then refused: says the file */
    ck_assert_ptr_nonnull(strstr(err.file, "broken.json"));
    st_error_clear(&err);
    ck_assert_int_lt(st_profile_open("b/y", &p, &err), 0); /* a path is a path, never a name */
    ck_assert_ptr_null(p);

    st_profile_entry *e;
    size_t n;
    ck_assert_int_eq(st_profile_shipped(&e, &n, &err), 0);
    const char *want[] = {"broken", "x", "y"};
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (strncmp(e[i].path, tmpdir, strlen(tmpdir))) continue; /* the installed and source ones */
        ck_assert_uint_lt(k, 3);
        ck_assert_str_eq(e[i].name, want[k]);
        if (k == 0) ck_assert_uint_gt(strlen(e[i].error), 0);
        if (k == 1) {
            ck_assert_ptr_nonnull(strstr(e[i].path, "/a/x.json")); /* the one --profile x reads */
            ck_assert_str_eq(e[i].gpu, "a100-sxm-80g");
            ck_assert_str_eq(e[i].date, "2026-11-22");
            ck_assert_str_eq(e[i].error, "");
        }
        k++;
    }
    ck_assert_uint_eq(k, 3);
    free(e);
    unsetenv("STRATA_PROFILE_PATH");
    static const char *const files[] = {"a/x.json", "b/x.json", "b/y.json", "b/.hidden.json", "b/z.txt", "b/broken.json"};
    char path[600];
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", tmpdir, files[i]);
        unlink(path);
    }
    rmdir(a);
    rmdir(b);
}
END_TEST

/* bad profiles: one error naming the key, never a profile (the loader every --profile goes
 * through); rates beyond what the hardware can do or implying hour-long kernels are refused */
#define PH "{\"strata_profile\": 1, \"gpu\": \"a100-sxm-80g\", "
#define GEMM(pts) "{\"class\": \"gemm\", \"dtype\": \"bf16\", \"points\": " pts "}"
static const struct {
    const char *text, *key, *needle;
} bad_profiles[] = {
    {"{\"traceEvents\": []}", "", "a PyTorch profiler trace, not a calibration profile"},
    {PH "\"compute\": []}", "", "no tables"},
    {PH "\"compute\": [" GEMM("[[1e9, 100]]") ", " GEMM("[[1e10, 200]]") "]}", "compute[1]", "the same table as compute[0]"},
    {PH "\"compute\": [" GEMM("[[1e9, 100], [1e12, 700]]") "]}", "compute[0].points", "point 1: 700 TFLOP/s is over the bound of 624"},
    {PH "\"compute\": [" GEMM("[[1e9, 1e-300]]") "]}", "compute[0].points", "over an hour"},
    {PH "\"memory\": [{\"class\": \"norm\", \"points\": [[1e6, 1e6]]}]}", "memory[0].points", "over the bound"},
    {PH "\"collectives\": [{\"op\": \"allreduce\", \"scope\": \"intra\", \"ranks\": 8, \"points\": [[1e6, 2e4]]}]}",
     "collectives[0].points", "over the bound"},
    {PH "\"collectives\": [{\"op\": \"allreduce\", \"scope\": \"intra\", \"ranks\": 8, \"points\": [[1e6, 50]]}, "
        "{\"op\": \"allreduce\", \"scope\": \"intra\", \"ranks\": 8, \"points\": [[1e7, 60]]}]}",
     "collectives[1]", "the same table as collectives[0]"},
    {PH "\"compute\": [" GEMM("[[1e10, 100], [1e9, 200]]") "]}", "compute[0].points", "x values must increase"},
    {PH "\"compute\": [" GEMM("[[1e10, 0]]") "]}", "compute[0].points", "y > 0"},
    {PH "\"compute\": [{\"class\": \"gem\", \"dtype\": \"bf16\", \"points\": [[1e9, 1]]}]}", "compute[0].class", "unknown"},
    {PH "\"collectives\": [{\"op\": \"allreduce\", \"scope\": \"intra\", \"ranks\": 1, \"points\": [[1e6, 50]]}]}",
     "collectives[0].ranks", ""},
    {PH "\"compute\": [" GEMM("[[1e9, 100]]") "], \"extra\": 1}", "extra", "unknown"},
    {"{\"strata_profile\": 1, \"compute\": [" GEMM("[[1e9, 100]]") "]}", "gpu", "missing"},
    {"{\"strata_profile\": 2, \"gpu\": \"a100-sxm-80g\"}", "strata_profile", ""},
};

START_TEST(test_profile_bad) {
    const char *text = bad_profiles[_i].text;
    write_file(tmp("q.json"), text, strlen(text));
    st_profile *p = NULL;
    st_error err;
    st_error_clear(&err);
    int rc = st_profile_load(tmp("q.json"), &p, &err);
    ck_assert_msg(rc == ST_EINVAL, "case %d: rc %d (%s)", _i, rc, err.text);
    ck_assert_ptr_null(p);
    ck_assert_str_eq(err.file, tmp("q.json"));
    ck_assert_msg(!strcmp(err.key, bad_profiles[_i].key), "case %d: key '%s', expected '%s' (%s)", _i, err.key,
                  bad_profiles[_i].key, err.text);
    ck_assert_msg(strstr(err.text, bad_profiles[_i].needle), "case %d: '%s' lacks '%s'", _i, err.text,
                  bad_profiles[_i].needle);
}
END_TEST

/* the bounds let real rates through: a GPU that is no preset is bounded by 1e17 FLOP/s only */
START_TEST(test_profile_bounds_pass) {
    static const char ok[] = "{\"strata_profile\": 1, \"gpu\": \"mygpu\", \"compute\": ["
                             "{\"class\": \"gemm\", \"dtype\": \"bf16\", \"points\": [[1e3, 1e-6], [1e15, 9e4]]}]}";
    write_file(tmp("q.json"), ok, sizeof ok - 1);
    st_profile *p = NULL;
    st_error err;
    st_error_clear(&err);
    ck_assert_msg(st_profile_load(tmp("q.json"), &p, &err) == 0, "%s", err.text);
    st_profile_free(p);
}
END_TEST

/* the GPU from deviceProperties: a preset by family, SM count and memory (A100-PG509-200 is an
 * A100 SXM4 40GB board); no preset: the device's own name labels the profile; an AMD trace never
 * gets an NVIDIA preset, not even by --gpu */
START_TEST(test_gpu_from_props) {
    static const struct {
        const char *props;
        int hip;
        const char *gpu, *note;
    } cases[] = {
        {"\"name\": \"NVIDIA A100-PG509-200\", \"numSms\": 108, \"totalGlobalMem\": 42297524224", 0, "a100-sxm-40g",
         "preset by deviceProperties: 108 SMs, 39.4 GiB"},
        {"\"name\": \"NVIDIA A100-PG509-200\", \"numSms\": 98, \"totalGlobalMem\": 42297524224", 0,
         "NVIDIA A100-PG509-200", "no preset: applies as measured"},
        {"\"name\": \"Tesla V100-SXM2-32GB\", \"numSms\": 80, \"totalGlobalMem\": 34089730048", 0,
         "Tesla V100-SXM2-32GB", "no preset: applies as measured"},
        {"\"name\": \"AMD Radeon Graphics\", \"numSms\": 104, \"totalGlobalMem\": 68702699520", 1,
         "AMD Radeon Graphics", "no preset (AMD)"},
        /* a ROCm trace whose device looks like an A100 is still AMD's: HIP launched its kernels */
        {"\"name\": \"NVIDIA A100-SXM4-40GB\", \"numSms\": 108, \"totalGlobalMem\": 42297524224", 1,
         "NVIDIA A100-SXM4-40GB", "no preset (AMD)"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        tb b;
        char args[128];
        tb_begin_props(&b, cases[i].props);
        tb_op(&b, "aten::mm", 1, 100, MM_A, BF2, NULL);
        snprintf(args, sizeof args, "\"External id\": 1, \"correlation\": %d", b.corr);
        tb_event(&b, "cuda_runtime", cases[i].hip ? "hipLaunchKernel" : "cudaLaunchKernel", 1, 120, 4, args);
        snprintf(args, sizeof args, "\"External id\": 1, \"device\": 0, \"stream\": 7, \"correlation\": %d", b.corr);
        tb_event(&b, "kernel", "gemm", 7, 100120, 10, args);
        tb_end(&b, tmp("t.json"));
        st_calib_summary s;
        st_profile_free(import_load(tmp("t.json"), NULL, 0, &s));
        ck_assert_str_eq(s.gpu, cases[i].gpu);
        ck_assert_msg(strstr(s.gpu_note, cases[i].note), "case %zu: note '%s'", i, s.gpu_note);
        if (!cases[i].hip) continue;
        st_calib *c = NULL;
        st_calib_opts o;
        st_error err;
        st_calib_opts_init(&o);
        o.gpu = "a100-sxm-40g";
        ck_assert_int_eq(st_calib_import_kineto(tmp("t.json"), &o, &c, &err), ST_EINVAL);
        ck_assert_ptr_null(c);
        ck_assert_ptr_nonnull(strstr(err.text, "AMD, ROCm"));
    }
}
END_TEST

/* PyTorch 2.x writes the correlation id as the launch's External id: the kernel goes to the
 * innermost operator spanning the launch on the launch's thread (not to an operator on another
 * thread, nor to an enclosing one); PyTorch 1.8/1.9's lowercase "external id" and "Input dims"
 * link and size as the newer keys do */
START_TEST(test_link_time_nesting) {
    tb b;
    tb_begin(&b, "NVIDIA A100-SXM4-80GB");
    tb_event(&b, "cpu_op", "aten::linear", 1, 50, 200, "\"External id\": 3");
    tb_op(&b, "aten::mm", 4, 100, MM_A, BF2, NULL);                  /* [100, 150] on thread 1 */
    tb_event(&b, "cpu_op", "aten::mm", 2, 90, 100,
             "\"External id\": 5, \"Input Dims\": " MM_B ", \"Input type\": " BF2);
    tb_event(&b, "cuda_runtime", "cudaLaunchKernel", 1, 120, 4, "\"External id\": 5000, \"correlation\": 5000");
    tb_event(&b, "kernel", "gemm", 7, 100120, 10, "\"External id\": 5000, \"correlation\": 5000");
    /* 1.8 style: lowercase keys on the launch and the kernel, "Input dims" on the operator */
    tb_event(&b, "Operator", "aten::mm", 1, 300, 50,
             "\"External id\": 6, \"Input dims\": " MM_A ", \"Input type\": " BF2);
    tb_event(&b, "Runtime", "cudaLaunchKernel", 1, 310, 4, "\"external id\": 6, \"correlation\": 5001");
    tb_event(&b, "Kernel", "gemm", 7, 100310, 30, "\"external id\": 6, \"correlation\": 5001");
    tb_end(&b, tmp("t.json"));
    st_calib_summary s;
    st_profile *p = import_load(tmp("t.json"), NULL, 0, &s);
    double x[4], y[4];
    ck_assert_int_eq(s.used, 2);
    ck_assert_int_eq(points_of("compute", "class", "gemm", x, y, 4), 1);
    ck_assert_double_eq(x[0], 4194304); /* MM_A's 2^22 FLOPs twice, in 10 and 30 us: the median rate */
    REL(st_profile_flops_per_s(p, ST_OPC_GEMM, ST_DT_BF16, 4194304), 0.5 * (4194304 / 10e-6 + 4194304 / 30e-6), 1e-12);
    st_profile_free(p);
}
END_TEST

/* fp32 GEMMs whose kernels ran on tensor cores (CUTLASS tensorop_s1688gemm, cuBLAS *tf32*) are TF32 */
START_TEST(test_tf32_kernels) {
    tb b;
    tb_begin(&b, "NVIDIA A100-SXM4-80GB");
    tb_call(&b, "aten::mm", MM_A, "[\"float\", \"float\"]", NULL,
            "void cutlass::Kernel<cutlass_80_tensorop_s1688gemm_64x64_16x6_tn_align4>", 10);
    tb_call(&b, "aten::mm", MM_B, "[\"float\", \"float\"]", NULL, "ampere_sgemm_32x128_tn", 100);
    tb_end(&b, tmp("t.json"));
    st_calib_summary s;
    st_profile_free(import_load(tmp("t.json"), NULL, 0, &s));
    double x[4], y[4];
    ck_assert_int_eq(s.tables[0], 2);
    json_error_t jerr;
    json_t *root = json_load_file(tmp("p.json"), 0, &jerr);
    ck_assert_ptr_nonnull(root);
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(json_object_get(root, "compute"), 0), "dtype")),
                     "fp32");
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(json_object_get(root, "compute"), 1), "dtype")),
                     "tf32");
    json_decref(root);
    ck_assert_int_eq(points_of("compute", "class", "gemm", x, y, 4), 1);
}
END_TEST

/* the profile's date is the trace's: baseTimeNanoseconds, else a wall-clock "ts" (older Kineto
 * wrote Unix microseconds), else "unknown" (never the day of the conversion) */
START_TEST(test_trace_date) {
    static const struct {
        double t0;
        const char *date;
    } cases[] = {{1623142623460016.0, "2021-06-08"}, {100, "unknown"}};
    for (size_t i = 0; i < 2; i++) {
        tb b;
        char args[128];
        tb_begin(&b, "NVIDIA A100-SXM4-80GB");
        snprintf(args, sizeof args, "\"External id\": 1, \"Input Dims\": " MM_A ", \"Input type\": " BF2);
        tb_event(&b, "cpu_op", "aten::mm", 1, cases[i].t0, 50, args);
        snprintf(args, sizeof args, "\"External id\": 1, \"correlation\": 7");
        tb_event(&b, "cuda_runtime", "cudaLaunchKernel", 1, cases[i].t0 + 10, 4, args);
        tb_event(&b, "kernel", "gemm", 7, cases[i].t0 + 20, 10, args);
        tb_end(&b, tmp("t.json"));
        st_calib *c = NULL;
        st_error err;
        ck_assert_int_eq(st_calib_import_kineto(tmp("t.json"), NULL, &c, &err), 0);
        ck_assert_int_eq(st_calib_save(c, tmp("p.json"), &err), 0);
        st_calib_free(c);
        size_t n;
        char *text = read_file(tmp("p.json"), &n), want[64];
        snprintf(want, sizeof want, "\"date\": \"%s\"", cases[i].date);
        ck_assert_msg(strstr(text, want), "case %zu: no %s", i, want);
        free(text);
    }
}
END_TEST

/* one rank's trace of a 2-rank job: two all-reduces of 8 MiB over both ranks, in us[0] and us[1] */
static void rank_trace(const char *path, const char *dist, double us0, double us1) {
    tb b;
    tb_begin(&b, "NVIDIA A100-SXM4-80GB");
    tb_comm(&b, COMM("allreduce", 4194304, 4194304, 2, ""), "ncclDevKernel_AllReduce_Sum_bf16_RING_LL(x)", us0);
    tb_comm(&b, COMM("allreduce", 4194304, 4194304, 2, ""), "ncclDevKernel_AllReduce_Sum_bf16_RING_LL(x)", us1);
    tb_end_dist(&b, path, dist);
}

/* the rank traces of one job (a folder, or FILE,FILE): the k-th call of each rank is one call,
 * timed by its fastest rank (the last to arrive); the others' extra time is waiting, counted apart.
 * Files of two jobs (one rank twice, two world sizes) are refused. */
START_TEST(test_ranks_matched) {
    rank_trace(tmp("r0.json"), "\"rank\": 0, \"world_size\": 2", 100, 300);
    rank_trace(tmp("r1.json"), "\"rank\": 1, \"world_size\": 2", 40, 500);
    st_calib_summary s;
    st_profile *p = import_load(tmpdir, NULL, 0, &s);
    ck_assert_int_eq(s.files, 2);
    ck_assert_int_eq(s.world_size, 2);
    ck_assert_int_eq(s.samples[2], 2); /* two calls, not four */
    ck_assert_int_eq(s.coll_matched, 2);
    ck_assert_int_eq(s.coll_ranks_min, 2);
    ck_assert_int_eq(s.coll_ranks_max, 2);
    REL(s.coll_transfer_s, 340e-6, 1e-9);        /* 40 + 300 */
    REL(s.coll_wait_s, 260e-6, 1e-9);            /* (100 - 40) + (500 - 300) */
    /* 8 MiB at 40 and 300 us, bus factor 2(n-1)/n = 1 for two ranks: the median of the two rates */
    REL(st_profile_bus_bytes_per_s(p, ST_COLL_ALLREDUCE, 1, 2, 8388608), 0.5 * (8388608 / 40e-6 + 8388608 / 300e-6),
        1e-12);
    st_profile_free(p);

    char list[1100];
    st_calib *c = NULL;
    st_error err;
    snprintf(list, sizeof list, "%s,%s", tmp("r0.json"), tmp("r1.json"));
    ck_assert_int_eq(st_calib_import_kineto(list, NULL, &c, &err), 0);
    ck_assert_int_eq(st_calib_get_summary(c)->coll_matched, 2);
    st_calib_free(c);
    rank_trace(tmp("r1.json"), "\"rank\": 0, \"world_size\": 2", 40, 500);
    ck_assert_int_eq(st_calib_import_kineto(list, NULL, &c, &err), ST_EINVAL);
    ck_assert_str_eq(err.key, "distributedInfo.rank");
    rank_trace(tmp("r1.json"), "\"rank\": 1, \"world_size\": 4", 40, 500);
    ck_assert_int_eq(st_calib_import_kineto(list, NULL, &c, &err), ST_EINVAL);
    ck_assert_str_eq(err.key, "distributedInfo.world_size");
    ck_assert_ptr_null(c);
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
    tcase_add_test(tc, test_link_time_nesting);
    tcase_add_test(tc, test_gpu_from_props);
    tcase_add_test(tc, test_tf32_kernels);
    tcase_add_test(tc, test_trace_date);
    tcase_add_test(tc, test_ranks_matched);
    tcase_add_test(tc, test_charge_up);
    tcase_add_test(tc, test_flops_and_dtypes);
    tcase_add_test(tc, test_attention_import);
    tcase_add_test(tc, test_binning_median);
    tcase_add_test(tc, test_nccl_busbw);
    tcase_add_loop_test(tc, test_bad_input, 0, (int)(sizeof bad_cases / sizeof bad_cases[0]));
    tcase_add_test(tc, test_mutations);
    suite_add_tcase(s, tc);

    tc = tcase_create("retarget");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_retarget_scales);
    tcase_add_test(tc, test_retarget_same_gpu);
    tcase_add_loop_test(tc, test_profile_bad_copies, 0, (int)(sizeof bad_copies / sizeof bad_copies[0]));
    tcase_add_test(tc, test_retarget_drops_missing_dtype);
    tcase_add_test(tc, test_retarget_unknown_gpu);
    tcase_add_test(tc, test_profile_by_name);
    tcase_add_loop_test(tc, test_profile_bad, 0, (int)(sizeof bad_profiles / sizeof bad_profiles[0]));
    tcase_add_test(tc, test_profile_bounds_pass);
    suite_add_tcase(s, tc);

    tc = tcase_create("profile");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_prof_grid_covers_presets);
    tcase_add_test(tc, test_prof_median);
    tcase_add_test(tc, test_prof_fill);
    tcase_add_test(tc, test_prof_plan_shapes);
    tcase_add_test(tc, test_prof_plan_colls);
    tcase_add_test(tc, test_prof_mem_grid);
    tcase_add_test(tc, test_prof_fit_roundtrip);
    tcase_add_test(tc, test_prof_gpu_names);
    tcase_add_test(tc, test_prof_info);
    suite_add_tcase(s, tc);
    return s;
}
