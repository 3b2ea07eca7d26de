/* failalloc.c: allocation-failure injection for tests/strata-failalloc, the strata command linked
 * with -Wl,--wrap=malloc (and calloc, realloc, strdup, strndup, posix_memalign), in the manner of
 * SQLite's and curl's torture tests (issue 20): every error path that an allocation failure takes
 * must end in exit 2 with one line on stderr, no crash, no leak and no file left behind.
 *
 * STRATA_FAIL_ALLOC=N makes the Nth allocation (1-based, counted over strata's own code and
 * Jansson's, which st_io_init routes through strata's) return NULL; every other one succeeds,
 * so each run tests one failure and the recovery from it. N = 0 fails none. STRATA_COUNT_ALLOC=FILE
 * writes the number of allocations the run made into FILE at exit, so that a torture script knows
 * how far to walk (tests/failalloc.sh). Allocations made inside the C library (fopen's buffer,
 * realpath) and inside GLPK or igraph are not counted: --wrap sees only the calls in strata's
 * objects, and those libraries have no hook that would not change their behaviour.
 *
 * The counter is not atomic: strata's allocations happen on one thread (the executor's ranks are
 * processes). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void *__real_malloc(size_t n);
void *__real_calloc(size_t k, size_t n);
void *__real_realloc(void *p, size_t n);
char *__real_strdup(const char *s);
char *__real_strndup(const char *s, size_t n);
int __real_posix_memalign(void **p, size_t align, size_t n);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t k, size_t n);
void *__wrap_realloc(void *p, size_t n);
char *__wrap_strdup(const char *s);
char *__wrap_strndup(const char *s, size_t n);
int __wrap_posix_memalign(void **p, size_t align, size_t n);

static unsigned long st__alloc_count, st__alloc_fail_at;

/* counts one allocation; returns 1 when this one is to fail */
static int st__alloc_fails(void) { return ++st__alloc_count == st__alloc_fail_at; }

void *__wrap_malloc(size_t n) { return st__alloc_fails() ? NULL : __real_malloc(n); }
void *__wrap_calloc(size_t k, size_t n) { return st__alloc_fails() ? NULL : __real_calloc(k, n); }
/* realloc(p, 0) frees rather than allocates: not counted, so a failure never leaks p */
void *__wrap_realloc(void *p, size_t n) { return n && st__alloc_fails() ? NULL : __real_realloc(p, n); }
char *__wrap_strdup(const char *s) { return st__alloc_fails() ? NULL : __real_strdup(s); }
char *__wrap_strndup(const char *s, size_t n) { return st__alloc_fails() ? NULL : __real_strndup(s, n); }
int __wrap_posix_memalign(void **p, size_t align, size_t n) {
    return st__alloc_fails() ? 12 /* ENOMEM */ : __real_posix_memalign(p, align, n);
}

static void st__alloc_count_write(void) {
    const char *path = getenv("STRATA_COUNT_ALLOC");
    FILE *f = path && *path ? fopen(path, "w") : NULL;
    if (!f) return;
    fprintf(f, "%lu\n", st__alloc_count);
    fclose(f);
}

/* runs before main: reads the settings */
__attribute__((constructor)) static void st__alloc_setup(void) {
    const char *at = getenv("STRATA_FAIL_ALLOC");
    st__alloc_fail_at = at ? strtoul(at, NULL, 10) : 0;
    atexit(st__alloc_count_write);
}
