/* jsonutil.c: the checked getters, the loader and the atomic writer behind every strata JSON
 * format (model, cluster, plan, profile, CLI output). Only the I/O files use Jansson, through here.
 *
 * Invariants:
 * - Every rejection names the file and the dotted key path ("inter_node.nic_gbit_per_s") and, for
 *   syntax errors, the line and column Jansson reports; messages are one line.
 * - Getters never touch *out unless they return 1, so callers may pre-fill defaults.
 * - Integers are int64; a JSON real counts as an integer only when it is integral (2.0), never
 *   1.5, and booleans are never numbers.
 * - st__json_write_file writes "<path>.tmp.XXXXXX" next to the target and renames it over the
 *   target, so a reader sees the old file or the new one, never half of one (rename(2) is atomic
 *   within a file system); on failure the temporary file is unlinked.
 * - After an allocation inside Jansson failed (st_io_init routes them through json_alloc), no JSON
 *   is written: the value being built may lack a part, since Jansson's setters only return -1.
 * - st__json_hash is FNV-1a 64 (Fowler, Noll, Vo; offset basis 0xcbf29ce484222325, prime
 *   0x100000001b3) over the compact dump with sorted keys, so key order does not change it.
 */
#define _XOPEN_SOURCE 700 /* realpath */
#include "jsonutil.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int json_alloc_failed; /* sticky until the process ends: which value lost a part is unknown */

static void *json_alloc(size_t n) {
    void *p = malloc(n);
    if (!p) json_alloc_failed = 1;
    return p;
}

void st_io_init(void) { json_set_alloc_funcs(json_alloc, free); }

const char *st__json_key_path(char *buf, size_t n, const char *prefix, const char *key) {
    if (prefix && prefix[0])
        snprintf(buf, n, "%s.%s", prefix, key);
    else
        snprintf(buf, n, "%s", key);
    return buf;
}

void st__json_name_from_path(char *out, size_t n, const char *path, const char *dflt) {
    const char *base = strrchr(path, '/');
    size_t len;

    base = base ? base + 1 : path;
    len = strlen(base);
    if (len > 5 && strcmp(base + len - 5, ".json") == 0) len -= 5;
    if (len >= n) len = n - 1;
    /* file names need not be UTF-8; names go into JSON, so keep printable ASCII only */
    for (size_t i = 0; i < len; i++) out[i] = (base[i] > 0x20 && base[i] < 0x7f) ? base[i] : '_';
    out[len] = '\0';
    if (!out[0]) snprintf(out, n, "%s", dflt);
}

void st__json_prefix_error(st_error *err, const char *prefix) {
    char path[sizeof err->key];
    if (!err || !prefix || !prefix[0]) return;
    /* a path longer than the key's room is cut, as every key path is */
    int w = err->key[0] ? snprintf(path, sizeof path, "%s.%s", prefix, err->key)
                        : snprintf(path, sizeof path, "%s", prefix);
    if (w > 0) memcpy(err->key, path, sizeof path);
}

static const char *json_type_name(const json_t *v) {
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a number";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    case JSON_NULL: return "null";
    }
    return "a value";
}

int st__json_load_file(const char *path, json_t **out, st_error *err) {
    int rc = 0;
    FILE *f = NULL;
    json_t *root = NULL;
    json_error_t jerr;
    struct stat st;

    *out = NULL;
    if (!path || !path[0]) {
        rc = st_error_set(err, ST_EIO, NULL, NULL, "no file name given");
        goto out;
    }
    f = fopen(path, "rb");
    if (!f) {
        rc = st_error_set(err, ST_EIO, path, NULL, "cannot open: %s", strerror(errno));
        goto out;
    }
    if (fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode)) {
        rc = st_error_set(err, ST_EIO, path, NULL, "cannot read: %s", strerror(EISDIR));
        goto out;
    }
    root = json_loadf(f, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        if (ferror(f)) {
            rc = st_error_set(err, ST_EIO, path, NULL, "cannot read: %s", strerror(errno));
            goto out;
        }
        rc = st__json_syntax_error(err, path, &jerr, "");
        goto out;
    }
    if (json_alloc_failed) { /* Jansson's lexer drops a character it cannot store: "Llama" read as "Llaa" */
        rc = st_error_set(err, ST_ENOMEM, path, NULL, "out of memory");
        goto out;
    }
    *out = root;
    root = NULL;
out:
    if (f) fclose(f);
    json_decref(root);
    return rc;
}

int st__json_check_keys(const json_t *obj, const char *const *allowed, const char *file, const char *prefix,
                        st_error *err) {
    const char *key;
    json_t *val;
    char path[128];

    if (!json_is_object(obj))
        return st_error_set(err, ST_EINVAL, file, prefix && prefix[0] ? prefix : NULL, "expected an object, got %s",
                            json_type_name(obj));
    json_object_foreach((json_t *)obj, key, val) {
        int known = 0;
        for (size_t i = 0; allowed && allowed[i]; i++)
            if (strcmp(key, allowed[i]) == 0) {
                known = 1;
                break;
            }
        if (!known) {
            st__json_key_path(path, sizeof path, prefix, key);
            return st_error_set(err, ST_EINVAL, file, path, "unknown key");
        }
    }
    return 0;
}

/* The JSON value as an int64 when it is an integer (or an integral real); 0 when not. */
static int as_int64(const json_t *v, int64_t *out) {
    if (json_is_integer(v)) {
        *out = (int64_t)json_integer_value(v);
        return 1;
    }
    if (json_is_real(v)) {
        double d = json_real_value(v);
        /* 2^63 is exactly representable; anything at or beyond it does not fit */
        if (isfinite(d) && d == floor(d) && d >= -9223372036854775808.0 && d < 9223372036854775808.0) {
            *out = (int64_t)d;
            return 1;
        }
    }
    return 0;
}

int st__json_get_int(const json_t *obj, const char *key, int64_t min, int64_t max, int64_t *out,
                     const char *file, const char *prefix, st_error *err) {
    json_t *v = json_object_get(obj, key);
    char path[128];
    int64_t x;

    if (!v) return 0;
    st__json_key_path(path, sizeof path, prefix, key);
    if (!as_int64(v, &x)) {
        if (json_is_real(v))
            return st_error_set(err, ST_EINVAL, file, path, "expected an integer, got %.17g", json_real_value(v));
        return st_error_set(err, ST_EINVAL, file, path, "expected an integer, got %s", json_type_name(v));
    }
    if (x < min || x > max)
        return st_error_set(err, ST_EINVAL, file, path, "%lld is out of range (allowed %lld..%lld)", (long long)x,
                            (long long)min, (long long)max);
    *out = x;
    return 1;
}

int st__json_get_num(const json_t *obj, const char *key, double min, double max, double *out,
                     const char *file, const char *prefix, st_error *err) {
    json_t *v = json_object_get(obj, key);
    char path[128];
    double x;

    if (!v) return 0;
    st__json_key_path(path, sizeof path, prefix, key);
    if (!json_is_number(v))
        return st_error_set(err, ST_EINVAL, file, path, "expected a number, got %s", json_type_name(v));
    x = json_number_value(v);
    if (!isfinite(x) || x < min || x > max)
        return st_error_set(err, ST_EINVAL, file, path, "%g is out of range (allowed %g..%g)", x, min, max);
    *out = x;
    return 1;
}

int st__json_get_bool(const json_t *obj, const char *key, int *out, const char *file, const char *prefix,
                      st_error *err) {
    json_t *v = json_object_get(obj, key);
    char path[128];

    if (!v) return 0;
    if (!json_is_boolean(v)) {
        st__json_key_path(path, sizeof path, prefix, key);
        return st_error_set(err, ST_EINVAL, file, path, "expected true or false, got %s", json_type_name(v));
    }
    *out = json_is_true(v) ? 1 : 0;
    return 1;
}

int st__json_get_str(const json_t *obj, const char *key, const char **out, const char *file,
                     const char *prefix, st_error *err) {
    json_t *v = json_object_get(obj, key);
    char path[128];

    if (!v) return 0;
    if (!json_is_string(v)) {
        st__json_key_path(path, sizeof path, prefix, key);
        return st_error_set(err, ST_EINVAL, file, path, "expected a string, got %s", json_type_name(v));
    }
    *out = json_string_value(v);
    return 1;
}

/* Writes all of buf to f; 0 or -1 with errno set. */
static int write_all(FILE *f, const char *buf, size_t n) {
    if (n && fwrite(buf, 1, n, f) != n) return -1;
    if (fputc('\n', f) == EOF) return -1;
    return 0;
}


int st__json_write_file(const json_t *root, const char *path, st_error *err) {
    int rc = 0, fd = -1;
    char *text = NULL, *tmp = NULL, *target = NULL;
    FILE *f = NULL;
    size_t len;

    if (!path || !path[0]) {
        rc = st_error_set(err, ST_EIO, NULL, NULL, "no output file name given");
        goto out;
    }
    text = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY);
    if (!text || json_alloc_failed) {
        rc = st_error_set(err, ST_ENOMEM, path, NULL, "cannot serialise JSON");
        goto out;
    }
    len = strlen(text);
    if (strcmp(path, "-") == 0) {
        if (write_all(stdout, text, len) != 0 || fflush(stdout) != 0)
            rc = st_error_set(err, ST_EIO, "-", NULL, "cannot write to standard output: %s", strerror(errno));
        goto out;
    }
    if (!(target = st__out_target(path, err))) {
        rc = err ? err->code : ST_EIO;
        goto out;
    }
    if ((fd = st__tmp_create(target, path, &tmp, err)) < 0) {
        rc = err ? err->code : ST_EIO;
        goto out;
    }
    f = fdopen(fd, "w");
    if (!f) {
        rc = st_error_set(err, ST_EIO, path, NULL, "cannot write: %s", strerror(errno));
        goto out;
    }
    fd = -1; /* owned by f now */
    if (write_all(f, text, len) != 0) {
        rc = st_error_set(err, ST_EIO, path, NULL, "cannot write: %s", strerror(errno));
        goto out;
    }
    if (fclose(f) != 0) {
        f = NULL;
        rc = st_error_set(err, ST_EIO, path, NULL, "cannot write: %s", strerror(errno));
        goto out;
    }
    f = NULL;
    rc = st__tmp_commit(tmp, target, path, err);
    tmp = NULL; /* renamed, or removed */
out:
    if (f) fclose(f);
    if (fd >= 0) close(fd);
    st__tmp_discard(tmp);
    free(target);
    free(text);
    return rc;
}

void st__json_hash(const json_t *v, char out[17]) {
    uint64_t h = 0xcbf29ce484222325ULL;
    char *text = v ? json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY) : NULL;

    for (const unsigned char *s = (const unsigned char *)(text ? text : ""); *s; s++) {
        h ^= *s;
        h *= 0x100000001b3ULL;
    }
    snprintf(out, 17, "%016llx", (unsigned long long)h);
    free(text);
}

int st__preset_or_file_error(const char *arg, const char *key, const char *lister, st_error *err) {
    struct stat st;
    if (err && err->code == ST_EIO && stat(arg, &st) != 0)
        return st_error_set(err, ST_EINVAL, NULL, key, "'%s' is neither a preset (see %s) nor an existing file", arg,
                            lister);
    return err ? err->code : ST_EINVAL;
}

int st__json_print(FILE *f, json_t *root, st_error *err) {
    if (!root) return st_error_set(err, ST_ENOMEM, NULL, NULL, "out of memory");
    char *s = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10));
    json_decref(root);
    if (!s || json_alloc_failed) {
        free(s);
        return st_error_set(err, ST_ENOMEM, NULL, NULL, "out of memory");
    }
    fputs(s, f);
    fputc('\n', f);
    free(s);
    return 0;
}

int st__json_syntax_error(st_error *err, const char *path, const json_error_t *jerr, const char *where) {
    /* file first, then the position: st_error_set keeps line/column only for the same file */
    int rc = st_error_set(err, ST_EINVAL, path, NULL, "invalid JSON%s: %s", where, jerr->text);
    if (err) {
        err->line = jerr->line > 0 ? jerr->line : 0;
        err->column = jerr->column > 0 ? jerr->column : 0;
    }
    return rc;
}
