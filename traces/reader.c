/* reader.c: the one Chrome trace reader (traces.h, st_trace_load): `strata calibrate` reads PyTorch
 * profiler (Kineto) traces with it and `strata plot timeline` strata's own and anyone's traces.
 * What each does with the events is its own (profiler/kineto.c, src/report/plot_io.c); reading the
 * file is this: plain or gzip-compressed JSON (a gzip stream is known by its magic bytes 1f 8b,
 * RFC 1952), streamed into Jansson through zlib's inflate, with one-line errors for what can go
 * wrong on the way (cannot open, not a gzip stream, truncated, over MAX_TRACE_BYTES decompressed,
 * bytes after the last gzip member, bad JSON with line and column). A file may hold several
 * members (RFC 1952, 2.2; what `cat a.gz b.gz` makes); anything else after one is an error, which
 * gzread would have ignored. */
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
    int gz;            /* 1: inflating gzip members */
    z_stream zs;       /* gz: the inflater; in_member says whether it is inside one */
    int zinit, in_member;
    unsigned char in[1 << 16];
    size_t total;
    int too_big, io_error, truncated, garbage;
    char zmsg[96]; /* zlib's reason for corrupt data */
} reader;

/* gz: refills the input when empty (0 at the end of the file, -1 on a read error) */
static int refill(reader *r) {
    if (r->zs.avail_in > 0) return 1;
    size_t n = fread(r->in, 1, sizeof r->in, r->f);
    if (n == 0 && ferror(r->f)) return r->io_error = 1, -1;
    r->zs.next_in = r->in;
    r->zs.avail_in = (uInt)n;
    return n > 0;
}

/* gz: up to len decompressed bytes into buf; 0 at the end, (size_t)-1 on an error (r says which) */
static size_t inflate_some(reader *r, void *buf, size_t len) {
    r->zs.next_out = buf;
    r->zs.avail_out = (uInt)len;
    while (r->zs.avail_out == len) {
        int more = refill(r);
        if (more < 0) return (size_t)-1;
        if (!more) {
            if (r->in_member) r->truncated = 1;
            break;
        }
        if (!r->in_member) { /* a member ended (or none began): only another member may follow */
            if (r->zs.next_in[0] != 0x1f) return r->garbage = 1, (size_t)-1;
            if (inflateReset(&r->zs) != Z_OK) return snprintf(r->zmsg, sizeof r->zmsg, "corrupt data"), (size_t)-1;
            r->in_member = 1;
        }
        int z = inflate(&r->zs, Z_NO_FLUSH);
        if (z == Z_STREAM_END) {
            r->in_member = 0;
        } else if (z != Z_OK && !(z == Z_BUF_ERROR && r->zs.avail_in == 0)) {
            snprintf(r->zmsg, sizeof r->zmsg, "%s", r->zs.msg ? r->zs.msg : "corrupt data");
            return (size_t)-1;
        }
    }
    return len - r->zs.avail_out;
}

/* json_load_callback source: bytes read, 0 at the end, (size_t)-1 to stop with an error */
static size_t read_cb(void *buf, size_t len, void *arg) {
    reader *r = arg;
    size_t got;
    if (len > (1u << 20)) len = 1u << 20;
    if (r->gz) {
        if ((got = inflate_some(r, buf, len)) == (size_t)-1) return got;
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
    reader *r = calloc(1, sizeof *r); /* 64 KiB of input buffer: not on the stack */
    json_error_t jerr;
    json_t *root = NULL;
    struct stat st;
    int rc = 0, gz = 0;
    unsigned char magic[2];

    *out = NULL;
    if (!r) return st_error_set(err, ST_ENOMEM, path, NULL, "out of memory");
    if (!(r->f = fopen(path, "rb"))) {
        rc = st_error_set(err, ST_EIO, path, NULL, "cannot open: %s", strerror(errno));
        goto out;
    }
    if (fstat(fileno(r->f), &st) == 0 && S_ISDIR(st.st_mode)) {
        rc = st_error_set(err, ST_EIO, path, NULL, "cannot read: %s", strerror(EISDIR));
        goto out;
    }
    gz = fread(magic, 1, 2, r->f) == 2 && magic[0] == 0x1f && magic[1] == 0x8b;
    if (ferror(r->f)) {
        rc = st_error_set(err, ST_EIO, path, NULL, "cannot read: %s", strerror(errno));
        goto out;
    }
    rewind(r->f);
    if (gz) {
        if (inflateInit2(&r->zs, 16 + MAX_WBITS) != Z_OK) { /* 16: gzip members only */
            rc = st_error_set(err, ST_ENOMEM, path, NULL, "cannot start zlib: out of memory");
            goto out;
        }
        r->gz = r->zinit = r->in_member = 1;
    }
    root = json_load_callback(read_cb, r, 0, &jerr);
    if (r->io_error) {
        rc = st_error_set(err, ST_EIO, path, NULL, "cannot read: %s", strerror(errno ? errno : EIO));
        goto out;
    }
    if (r->zmsg[0]) {
        rc = st_error_set(err, ST_EINVAL, path, NULL, "not a valid gzip stream: %s", r->zmsg);
        goto out;
    }
    if (r->too_big) {
        rc = st_error_set(err, ST_EINVAL, path, NULL, "larger than %zu GiB%s: cut the profiling window",
                          MAX_TRACE_BYTES >> 30, gz ? " decompressed" : "");
        goto out;
    }
    if (r->garbage) {
        rc = st_error_set(err, ST_EINVAL, path, NULL, "garbage after the end of the gzip stream");
        goto out;
    }
    if (r->truncated) {
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
    if (r->zinit) inflateEnd(&r->zs);
    if (r->f) fclose(r->f);
    free(r);
    json_decref(root);
    return rc;
}

