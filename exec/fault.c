/* fault.c: the CPU executor's faults (fault.h): waits bounded by a timeout, the crash line, and the
 * test hook STRATA_EXEC_FAULT (exec.h).
 *
 * Why poll: a blocking MPI call has no timeout, and Open MPI 4 (without ULFM) does not report a
 * dead peer to the survivors' calls: mpirun ends the job when a process exits without
 * MPI_Finalize, but a rank that is alive and stuck (a deadlock, a wedged peer) keeps every other
 * rank blocked for ever. A nonblocking call tested in a loop lets the rank look at the clock; the
 * loop yields the core between tests as Open MPI's blocking calls do when ranks outnumber cores
 * (mpi_yield_when_idle), so oversubscribed runs share the cores as before. Stopping is
 * MPI_Abort: the rank cannot return an error while its request is still posted (freeing the
 * communicators or MPI_Finalize would wait on the dead peer as well), and MPI_Abort is MPI's way
 * to end every rank of the job.
 *
 * The crash line is written from the signal handler with write(2) and integers formatted by hand
 * (snprintf is not async-signal-safe). */
#include "exec/fault.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---------------------------------------------------------------- the line naming where */

/* "step K instruction I (LABEL, micro-batch M)", "step K (LABEL)" between instructions, or LABEL
 * before and after the steps (step -1) */
static void where(char *buf, size_t n, const st__xwatch *w) {
    if (w->step < 0) snprintf(buf, n, "%s", w->label ? w->label : "?");
    else if (w->ins < 0) snprintf(buf, n, "step %lld (%s)", (long long)w->step + 1, w->label ? w->label : "?");
    else if (w->mb >= 0)
        snprintf(buf, n, "step %lld instruction %d (%s, micro-batch %d)", (long long)w->step + 1, w->ins,
                 w->label ? w->label : "?", w->mb);
    else snprintf(buf, n, "step %lld instruction %d (%s)", (long long)w->step + 1, w->ins, w->label ? w->label : "?");
}

/* "rank P" or "ranks P,Q,..." in the world's numbering: peer of comm, or every other member */
static void peers(char *buf, size_t n, const st__xwatch *w, MPI_Comm comm, int peer) {
    MPI_Group g, wg;
    int size = 0, me = -1, k = 0;
    size_t len = 0;
    MPI_Comm_size(comm, &size);
    MPI_Comm_rank(comm, &me);
    MPI_Comm_group(comm, &g);
    MPI_Comm_group(w->world, &wg);
    buf[0] = '\0';
    for (int r = 0; r < size && len + 16 < n; r++) {
        if (peer >= 0 ? r != peer : r == me) continue;
        int wr = -1;
        MPI_Group_translate_ranks(g, 1, &r, wg, &wr);
        len += (size_t)snprintf(buf + len, n - len, "%s%d", k++ ? "," : "", wr);
    }
    MPI_Group_free(&g);
    MPI_Group_free(&wg);
    char tmp[64];
    snprintf(tmp, sizeof tmp, "%s ", k == 1 ? "rank" : "ranks");
    if (len + strlen(tmp) < n) {
        memmove(buf + strlen(tmp), buf, len + 1);
        memcpy(buf, tmp, strlen(tmp));
    }
}

static void stop(const st__xwatch *w, const char *why, const char *what, MPI_Comm comm, int peer) {
    char at[512], who[1024];
    where(at, sizeof at, w);
    peers(who, sizeof who, w, comm, peer);
    fprintf(stderr, "strata run: rank %d %s in %s waiting for %s in the %s; stopping every rank\n", w->rank, why,
            at, who, what);
    fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, 2);
    _exit(2); /* MPI_Abort does not return; should it, the rank still ends */
}

void st__xfail(const st__xwatch *w, const char *why) {
    char at[512];
    where(at, sizeof at, w);
    fprintf(stderr, "strata run: rank %d failed in %s: %s; stopping every rank\n", w->rank, at, why);
    fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, 2);
    _exit(2);
}

void st__xwait(const st__xwatch *w, int started, MPI_Request *reqs, int n, const char *what, MPI_Comm comm, int peer) {
    char why[MPI_MAX_ERROR_STRING + 64];
    int rc = started, done = 0;
    double t0 = MPI_Wtime();
    while (rc == MPI_SUCCESS) {
        rc = MPI_Testall(n, reqs, &done, MPI_STATUSES_IGNORE);
        if (rc != MPI_SUCCESS || done) break;
        if (MPI_Wtime() - t0 > w->timeout_s) {
            snprintf(why, sizeof why, "timed out after %g s", w->timeout_s);
            stop(w, why, what, comm, peer);
        }
        sched_yield();
    }
    if (rc == MPI_SUCCESS) return;
    char text[MPI_MAX_ERROR_STRING];
    int len = 0;
    if (MPI_Error_string(rc, text, &len) != MPI_SUCCESS) snprintf(text, sizeof text, "MPI error %d", rc);
    snprintf(why, sizeof why, "failed (%s)", text);
    stop(w, why, what, comm, peer);
}

int st__xwait_poll(const st__xwatch *w, int (*ready)(void *), void *arg, const char *what, MPI_Comm comm, int peer) {
    double t0 = MPI_Wtime();
    for (;;) {
        int r = ready(arg);
        if (r) return r > 0 ? 0 : r;
        if (MPI_Wtime() - t0 > w->timeout_s) {
            char why[64];
            snprintf(why, sizeof why, "timed out after %g s", w->timeout_s);
            stop(w, why, what, comm, peer);
        }
        sched_yield();
    }
}

/* ---------------------------------------------------------------- the test hook */

int st__xfault_parse(const char *s, st__xfault *f, st_error *err) {
    static const char *const kinds[] = {"die", "crash", "hang", "nan", "fail"};
    f->kind = ST__XFAULT_NONE, f->rank = f->ins = -1;
    if (!s || !*s) return 0;
    char *e1 = NULL, *e2 = NULL;
    errno = 0;
    long r = strtol(s, &e1, 10);
    long i = *e1 == ':' ? strtol(e1 + 1, &e2, 10) : -1;
    int k = -1;
    for (int j = 0; e2 && *e2 == ':' && j < 5; j++)
        if (!strcmp(e2 + 1, kinds[j])) k = j;
    if (errno || !isdigit((unsigned char)s[0]) || !e2 || !isdigit((unsigned char)e1[1]) || k < 0 || r > INT_MAX ||
        i > INT_MAX)
        return st_error_set(err, ST_EINVAL, NULL, "STRATA_EXEC_FAULT",
                            "expected RANK:INSTRUCTION:die|crash|hang|nan|fail (a test hook), not '%.64s'", s);
    f->kind = (st__xfault_kind)(k + 1), f->rank = (int)r, f->ins = (int)i;
    return 0;
}

void st__xfault_at(const st__xfault *f, const st__xwatch *w) {
    if (f->kind == ST__XFAULT_NONE || f->kind == ST__XFAULT_NAN || f->kind == ST__XFAULT_FAIL || w->step != 0 ||
        w->rank != f->rank || w->ins != f->ins)
        return; /* nan: exec/cpu.c poisons a gradient itself; fail: the instruction fails (st__xfault_fails) */
    if (f->kind == ST__XFAULT_CRASH) raise(SIGSEGV);
    if (f->kind == ST__XFAULT_HANG) {
        double left = 10 * w->timeout_s + 60;
        while (left > 0) { /* sleep(3) returns early on a signal that is caught */
            unsigned s = left > 3600 ? 3600 : (unsigned)left + 1;
            left -= (double)(s - sleep(s));
        }
    }
    _exit(1);
}

int st__xfault_fails(const st__xfault *f, const st__xwatch *w) {
    return f->kind == ST__XFAULT_FAIL && w->step == 0 && w->rank == f->rank && w->ins == f->ins;
}

/* ---------------------------------------------------------------- the crash line */

static const int crash_signals[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT};
#define NSIG_CRASH ((int)(sizeof crash_signals / sizeof crash_signals[0]))
static struct sigaction crash_old[NSIG_CRASH];
static const st__xwatch *volatile crash_watch;

/* appends s to buf at *len (async-signal-safe) */
static void put_s(char *buf, size_t n, size_t *len, const char *s) {
    while (s && *s && *len + 1 < n) buf[(*len)++] = *s++;
}

static void put_i(char *buf, size_t n, size_t *len, long long v) {
    char d[24];
    int k = 0;
    unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
    do d[k++] = (char)('0' + u % 10), u /= 10;
    while (u);
    if (v < 0) d[k++] = '-';
    while (k > 0 && *len + 1 < n) buf[(*len)++] = d[--k];
}

static void on_crash(int sig) {
    const st__xwatch *w = crash_watch;
    int saved = errno;
    if (w) {
        char b[512];
        size_t n = 0;
        put_s(b, sizeof b, &n, "strata run: rank ");
        put_i(b, sizeof b, &n, w->rank);
        put_s(b, sizeof b, &n, " crashed (signal ");
        put_i(b, sizeof b, &n, sig);
        put_s(b, sizeof b, &n, ") in step ");
        put_i(b, sizeof b, &n, w->step + 1);
        if (w->ins >= 0) {
            put_s(b, sizeof b, &n, " instruction ");
            put_i(b, sizeof b, &n, w->ins);
        }
        put_s(b, sizeof b, &n, " (");
        put_s(b, sizeof b, &n, w->label ? w->label : "?");
        if (w->ins >= 0 && w->mb >= 0) {
            put_s(b, sizeof b, &n, ", micro-batch ");
            put_i(b, sizeof b, &n, w->mb);
        }
        put_s(b, sizeof b, &n, ")\n");
        ssize_t wr = write(STDERR_FILENO, b, n);
        (void)wr;
    }
    /* the handler before ours takes the signal when this one returns (it is blocked until then) */
    for (int i = 0; i < NSIG_CRASH; i++)
        if (crash_signals[i] == sig) sigaction(sig, &crash_old[i], NULL);
    raise(sig);
    errno = saved;
}

void st__xcrash_install(const st__xwatch *w) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_crash;
    sigemptyset(&sa.sa_mask);
    crash_watch = w;
    for (int i = 0; i < NSIG_CRASH; i++) sigaction(crash_signals[i], &sa, &crash_old[i]);
}

void st__xcrash_remove(void) {
    if (!crash_watch) return;
    for (int i = 0; i < NSIG_CRASH; i++) sigaction(crash_signals[i], &crash_old[i], NULL);
    crash_watch = NULL;
}
