/* util.c: small utilities every layer may use: the target of an atomic file write, large
 * allocations backed by huge pages, and the monotonic clock.
 *
 * Invariants: st__out_target refuses what rename(2) would replace rather than write into (devices,
 * FIFOs, folders) and follows a symbolic link to the file it names, so the link stays a link. */
#define _XOPEN_SOURCE 700 /* realpath */
#define _DEFAULT_SOURCE   /* madvise's MADV_HUGEPAGE (Linux): without it the hint below compiled to nothing */
#include "src/core/core.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

char *st__out_target(const char *path, st_error *err) {
    struct stat st;
    char *target = NULL;
    if (lstat(path, &st) != 0) {
        if (errno != ENOENT) {
            st_error_set(err, ST_EIO, path, NULL, "cannot write: %s", strerror(errno));
            return NULL;
        }
        target = strdup(path); /* a new file */
    } else if (S_ISLNK(st.st_mode)) {
        if (!(target = realpath(path, NULL)) || stat(target, &st) != 0) {
            st_error_set(err, ST_EIO, path, NULL, "a symbolic link to a missing file; name the file itself");
            free(target);
            return NULL;
        }
    } else {
        target = strdup(path);
    }
    if (!target) {
        st_error_set(err, ST_ENOMEM, path, NULL, "out of memory");
        return NULL;
    }
    if (stat(target, &st) == 0 && !S_ISREG(st.st_mode)) {
        st_error_set(err, ST_EIO, path, NULL, "%s, not a regular file: strata replaces the file it writes (- is standard output)",
                     S_ISDIR(st.st_mode) ? "a folder" : S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode) ? "a device"
                     : S_ISFIFO(st.st_mode) ? "a FIFO" : "a special file");
        free(target);
        return NULL;
    }
    return target;
}

void *st__alloc_big(size_t bytes) {
    const size_t huge = (size_t)2 << 20;
    void *p = NULL;
    if (bytes < 8 * huge)
        return malloc(bytes ? bytes : 1);
    if (posix_memalign(&p, huge, bytes))
        return NULL;
#ifdef MADV_HUGEPAGE
    (void)madvise(p, bytes / huge * huge, MADV_HUGEPAGE); /* a hint: failing is fine */
#endif
    return p;
}

double st_clock_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
