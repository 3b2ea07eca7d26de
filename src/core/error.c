/* error.c: the error codes of ST_ERRNO_MAP and st_error, the one-line message every loader and the
 * CLI print ("FILE:LINE:COL: key 'KEY': TEXT"). */
#include "src/core/core.h"

#include <stdarg.h>
#include <string.h>

const char *st_strerror(int code) {
    switch (code) {
    case ST_OK: return "success";
#define XX(name, val, text)                                                                        \
    case ST_##name: return text;
        ST_ERRNO_MAP(XX)
#undef XX
    }
    return "unknown error";
}

void st_error_clear(st_error *err) {
    if (err) memset(err, 0, sizeof *err);
}

int st_error_set(st_error *err, int code, const char *file, const char *key, const char *fmt, ...) {
    if (!err) return code;
    err->code = code;
    /* keep a position set by a lower layer (the JSON parser) when the same file is named */
    if (file && strcmp(err->file, file) != 0) {
        err->line = err->column = 0;
        snprintf(err->file, sizeof err->file, "%s", file);
    } else if (!file) {
        err->file[0] = '\0';
        err->line = err->column = 0;
    }
    snprintf(err->key, sizeof err->key, "%s", key ? key : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->text, sizeof err->text, fmt, ap);
    va_end(ap);
    return code;
}

void st_error_format(const st_error *err, char *buf, size_t n) {
    size_t off = 0;
#define ADD(...)                                                                                   \
    do {                                                                                           \
        int w_ = snprintf(buf + off, off < n ? n - off : 0, __VA_ARGS__);                          \
        if (w_ > 0) off += (size_t)w_;                                                             \
    } while (0)
    if (n == 0) return;
    buf[0] = '\0';
    if (err->file[0]) {
        ADD("%s", err->file);
        if (err->line > 0) ADD(":%d", err->line);
        if (err->column > 0) ADD(":%d", err->column);
        ADD(": ");
    }
    if (err->key[0]) ADD("key '%s': ", err->key);
    ADD("%s", err->text[0] ? err->text : st_strerror(err->code));
#undef ADD
    /* one line, always, and nothing the terminal would act on (an ESC in a file name) */
    for (char *p = buf; *p; p++)
        if (*p == '\n' || *p == '\r') *p = ' ';
    st_text_clean(buf);
}
