/* reader.c: the one Chrome trace reader (traces.h, st_trace_load): `strata calibrate` reads PyTorch
 * profiler (Kineto) traces with it and `strata plot timeline` strata's own and anyone's traces.
 * What each does with the events is its own (profiler/kineto.c, src/report/plot_io.c); reading the
 * file is this: plain or gzip-compressed JSON (a gzip stream is known by its magic bytes 1f 8b,
 * RFC 1952), streamed into Jansson through zlib, with one-line errors for what can go wrong on the
 * way (cannot open, not a gzip stream, truncated, over MAX_TRACE_BYTES decompressed, bad JSON
 * with line and column). */
#include "traces/traces.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#define MAX_TRACE_BYTES ((size_t)8 << 30) /* decompressed; Jansson's tree needs several times more */

typedef struct reader {
    FILE *f;
    gzFile gz;
    size_t total;
    int too_big, io_error, truncated;
    char zmsg[96]; /* zlib's reason for corrupt data */
} reader;

/* json_load_callback source: bytes read, 0 at the end, (size_t)-1 to stop with an error */
static size_t read_cb(void *buf, size_t len, void *arg) {
    reader *r = arg;
    size_t got;
    if (len > (1u << 20)) len = 1u << 20;
    if (r->gz) {
        int n = gzread(r->gz, buf, (unsigned)len);
        int zerr = Z_OK;
        const char *msg = n <= 0 ? gzerror(r->gz, &zerr) : NULL;
        if (zerr == Z_ERRNO) {
            r->io_error = 1;
            return (size_t)-1;
        }
        if (n < 0 || (zerr != Z_OK && zerr != Z_BUF_ERROR)) {
            /* zlib prefixes its message with the "path" given to gzdopen, "<fd:N>: " */
            const char *colon = msg && msg[0] == '<' ? strstr(msg, ">: ") : NULL;
            if (colon) msg = colon + 3;
            snprintf(r->zmsg, sizeof r->zmsg, "%s", msg && *msg ? msg : "corrupt data");
            return (size_t)-1;
        }
        if (n == 0 && zerr == Z_BUF_ERROR) r->truncated = 1;
        got = (size_t)n;
    } else {
        got = fread(buf, 1, len, r->f);
        if (got == 0 && ferror(r->f)) {
            r->io_error = 1;
            return (size_t)-1;
        }
    }
    r->total += got;
    if (r->total > MAX_TRACE_BYTES) {
        r->too_big = 1;
        return (size_t)-1;
    }
    return got;
}

int st_trace_load(const char *path, json_t **out, st_error *err) {
    reader r = {0};
    json_error_t jerr;
    json_t *root = NULL;
    struct stat st;
    int rc = 0, gz = 0;
    unsigned char magic[2];

    *out = NULL;
    if (!(r.f = fopen(path, "rb"))) {
        rc = st_error_set(err, ST_EIO, path, NULL, "cannot open: %s", strerror(errno));
        goto out;
    }
    if (fstat(fileno(r.f), &st) == 0 && S_ISDIR(st.st_mode)) {
        rc = st_error_set(err, ST_EIO, path, NULL, "cannot read: %s", strerror(EISDIR));
        goto out;
    }
    gz = fread(magic, 1, 2, r.f) == 2 && magic[0] == 0x1f && magic[1] == 0x8b;
    if (ferror(r.f)) {
        rc = st_error_set(err, ST_EIO, path, NULL, "cannot read: %s", strerror(errno));
        goto out;
    }
    rewind(r.f);
    if (gz) {
        int fd = dup(fileno(r.f));
        if (fd < 0 || !(r.gz = gzdopen(fd, "rb"))) {
            if (fd >= 0) close(fd);
            rc = st_error_set(err, ST_EIO, path, NULL, "cannot read the gzip stream: %s", strerror(errno));
            goto out;
        }
    }
    root = json_load_callback(read_cb, &r, 0, &jerr);
    if (r.io_error) {
        rc = st_error_set(err, ST_EIO, path, NULL, "cannot read: %s", strerror(errno ? errno : EIO));
        goto out;
    }
    if (r.zmsg[0]) {
        rc = st_error_set(err, ST_EINVAL, path, NULL, "not a valid gzip stream: %s", r.zmsg);
        goto out;
    }
    if (r.too_big) {
        rc = st_error_set(err, ST_EINVAL, path, NULL, "larger than %zu GiB%s: cut the profiling window",
                          MAX_TRACE_BYTES >> 30, gz ? " decompressed" : "");
        goto out;
    }
    if (r.truncated) {
        rc = st_error_set(err, ST_EINVAL, path, NULL, "the gzip stream is truncated (unexpected end of file)");
        goto out;
    }
    if (!root) {
        /* file first, then the position: st_error_set keeps line/column only for the same file */
        rc = st_error_set(err, ST_EINVAL, path, NULL, "invalid JSON%s: %s", gz ? " (in the decompressed trace)" : "",
                          jerr.text);
        if (err) err->line = jerr.line > 0 ? jerr.line : 0, err->column = jerr.column > 0 ? jerr.column : 0;
        goto out;
    }
    *out = root;
    root = NULL;
out:
    if (r.gz) gzclose(r.gz);
    if (r.f) fclose(r.f);
    json_decref(root);
    return rc;
}

