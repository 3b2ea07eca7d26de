/* util.c: small utilities every layer may use: the atomic file write's target and temporary file,
 * the removal of those temporaries on a fatal signal, names made safe to print, large allocations
 * backed by huge pages, the memory a run may take, and the monotonic clock.
 *
 * Invariants: st__out_target refuses what rename(2) would replace rather than write into (devices,
 * FIFOs, folders) and follows a symbolic link to the file it names, so the link stays a link. Every
 * temporary file strata writes is registered from before mkstemp(3) names it until it is renamed or
 * unlinked, so that SIGINT, SIGTERM or SIGHUP (Ctrl-C during `sim --trace`) leaves no debris: the
 * handler only does what is async-signal-safe (kill and waitpid a registered child, which may be
 * writing the file; unlink; restore the default action and re-raise, so the exit is by the signal). */
#define _XOPEN_SOURCE 700 /* realpath */
#define _DEFAULT_SOURCE   /* madvise's MADV_HUGEPAGE (Linux): without it the hint below compiled to nothing */
#include "src/core/core.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
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

/* the registered temporaries and child: plain stores of whole pointers, read by the handler */
#define TMP_SLOTS 16
static char *volatile tmp_slots[TMP_SLOTS];
static volatile pid_t child_pid;

static void on_fatal_signal(int sig) {
    int saved = errno;
    pid_t pid = child_pid;
    if (pid > 0) { /* gnuplot may still create the image file: end it first */
        kill(pid, SIGTERM);
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
        }
    }
    for (int i = 0; i < TMP_SLOTS; i++) {
        char *p = tmp_slots[i];
        if (p) unlink(p);
    }
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    sigaction(sig, &dfl, NULL);
    raise(sig); /* blocked until the handler returns, then the default action ends the process */
    errno = saved;
}

void st_signals_install(void) {
    static const int sigs[] = {SIGINT, SIGTERM, SIGHUP};
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
        struct sigaction sa, old;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_fatal_signal;
        sigfillset(&sa.sa_mask); /* one handler at a time: a second signal waits, then kills */
        /* a signal ignored by whoever started strata (nohup, a background job's SIGINT) stays ignored */
        if (sigaction(sigs[i], NULL, &old) == 0 && old.sa_handler == SIG_IGN) continue;
        sigaction(sigs[i], &sa, NULL);
    }
}

void st__child_register(int pid) { child_pid = (pid_t)pid; }

static void tmp_forget(const char *tmp) {
    for (int i = 0; i < TMP_SLOTS; i++)
        if (tmp_slots[i] == tmp) tmp_slots[i] = NULL;
}

int st__tmp_create(const char *target, const char *shown, char **tmp, st_error *err) {
    size_t n = strlen(target) + sizeof ".tmp.XXXXXX";
    char *t = malloc(n);
    int slot = 0, fd;
    *tmp = NULL;
    if (!t) return st_error_set(err, ST_ENOMEM, shown, NULL, "out of memory"), -1;
    snprintf(t, n, "%s.tmp.XXXXXX", target);
    while (slot < TMP_SLOTS && tmp_slots[slot]) slot++;
    if (slot == TMP_SLOTS) {
        free(t);
        return st_error_set(err, ST_EINTERNAL, shown, NULL, "more than %d temporary files at once", TMP_SLOTS), -1;
    }
    tmp_slots[slot] = t; /* before mkstemp names the file: no window where it exists unregistered */
    if ((fd = mkstemp(t)) < 0) {
        st_error_set(err, ST_EIO, shown, NULL, "cannot create a temporary file beside it: %s", strerror(errno));
        tmp_slots[slot] = NULL;
        free(t);
        return -1;
    }
    /* mkstemp creates 0600; give the result the mode a plain fopen would have */
    mode_t mask = umask(0);
    umask(mask);
    (void)fchmod(fd, 0666 & ~mask);
    *tmp = t;
    return fd;
}

int st__tmp_commit(char *tmp, const char *target, const char *shown, st_error *err) {
    if (rename(tmp, target) != 0) {
        int rc = st_error_set(err, ST_EIO, shown, NULL, "cannot replace the file: %s", strerror(errno));
        st__tmp_discard(tmp);
        return rc;
    }
    tmp_forget(tmp); /* a signal in between unlinks a name that no longer exists */
    free(tmp);
    return 0;
}

void st__tmp_discard(char *tmp) {
    if (!tmp) return;
    unlink(tmp);
    tmp_forget(tmp);
    free(tmp);
}

void *st__alloc_big(size_t bytes) {
    const size_t huge = (size_t)2 << 20;
    void *p = NULL;
    if (posix_memalign(&p, bytes < 8 * huge ? 64 : huge, bytes ? bytes : 1))
        return NULL;
#ifdef MADV_HUGEPAGE
    if (bytes >= 8 * huge)
        (void)madvise(p, bytes / huge * huge, MADV_HUGEPAGE); /* a hint: failing is fine */
#endif
    return p;
}

char *st_text_clean(char *s) {
    for (unsigned char *p = (unsigned char *)s; *p; p++)
        if (*p < 0x20 || *p == 0x7f) *p = '?';
    return s;
}

double st_memory_limit_bytes(void) {
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    double lim = pages > 0 && page > 0 ? (double)pages * (double)page : 1e300;
    static const int which[] = {RLIMIT_AS, RLIMIT_DATA};
    for (int i = 0; i < 2; i++) {
        struct rlimit rl;
        if (getrlimit(which[i], &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && (double)rl.rlim_cur < lim)
            lim = (double)rl.rlim_cur;
    }
    return lim;
}

double st_clock_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
