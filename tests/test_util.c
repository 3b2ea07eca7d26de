/* test_util.c: src/core/util.c's guards: the temporary files of atomic writes (renamed into place,
 * removed when discarded, and removed by the handler when a fatal signal ends the process, which
 * then dies by that signal) and the memory limit a run is sized against (ulimit -v lowers it). */
#define _XOPEN_SOURCE 700 /* mkdtemp */
#include "src/strata.h"
#include "suites.h"

#include <dirent.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

/* the number of entries of dir (without . and ..) */
static int entries(const char *dir) {
    DIR *d = opendir(dir);
    ck_assert_ptr_nonnull(d);
    int n = 0;
    for (struct dirent *e; (e = readdir(d));) n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
    closedir(d);
    return n;
}

static char *tmpdir(void) {
    static char dir[64];
    snprintf(dir, sizeof dir, "/tmp/strata-util.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    return dir;
}

START_TEST(test_tmp_commit_and_discard) {
    char *dir = tmpdir(), target[128], *tmp;
    st_error err;
    snprintf(target, sizeof target, "%s/out.json", dir);
    int fd = st__tmp_create(target, "out.json", &tmp, &err);
    ck_assert_int_ge(fd, 0);
    ck_assert_ptr_nonnull(strstr(tmp, "/out.json.tmp."));
    ck_assert_int_eq(write(fd, "{}\n", 3), 3);
    close(fd);
    ck_assert_int_eq(st__tmp_commit(tmp, target, "out.json", &err), 0);
    ck_assert_int_eq(access(target, R_OK), 0);
    ck_assert_int_eq(entries(dir), 1); /* the target alone */
    fd = st__tmp_create(target, "out.json", &tmp, &err);
    ck_assert_int_ge(fd, 0);
    close(fd);
    ck_assert_int_eq(entries(dir), 2);
    st__tmp_discard(tmp);
    st__tmp_discard(NULL);
    ck_assert_int_eq(entries(dir), 1);
    /* a rename that fails (onto a folder's place in a missing folder) removes the temporary */
    fd = st__tmp_create(target, "out.json", &tmp, &err);
    close(fd);
    snprintf(target, sizeof target, "%s/missing/out.json", dir);
    ck_assert_int_eq(st__tmp_commit(tmp, target, "out.json", &err), ST_EIO);
    ck_assert_int_eq(entries(dir), 1);
    snprintf(target, sizeof target, "%s/out.json", dir);
    unlink(target);
    rmdir(dir);
}
END_TEST

/* a child with a temporary open, ended by each fatal signal: the file is gone and the child died
 * by that signal (not exit 0, not another status) */
START_TEST(test_signal_removes_temporaries) {
    static const int sigs[] = {SIGINT, SIGTERM, SIGHUP};
    char *dir = tmpdir();
    for (int i = 0; i < 3; i++) {
        pid_t pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
            char target[128], *tmp[2];
            signal(sigs[i], SIG_DFL); /* not ignored, whatever the runner set */
            st_signals_install();
            snprintf(target, sizeof target, "%s/trace.json", dir);
            for (int k = 0; k < 2; k++)
                if (st__tmp_create(target, "trace.json", &tmp[k], NULL) < 0) _exit(3);
            raise(sigs[i]);
            _exit(4); /* not reached: the handler re-raises with the default action */
        }
        int status;
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == sigs[i], "signal %d: status %#x", sigs[i], status);
        ck_assert_int_eq(entries(dir), 0);
    }
    rmdir(dir);
}
END_TEST

START_TEST(test_memory_limit_follows_ulimit) {
    double all = st_memory_limit_bytes();
    ck_assert(all > 1e8 && all < 1e15);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        struct rlimit rl;
        if (getrlimit(RLIMIT_AS, &rl) != 0) _exit(0);
        rl.rlim_cur = (rlim_t)1 << 30;
        if (setrlimit(RLIMIT_AS, &rl) != 0) _exit(0); /* no limit to set: nothing to check */
        _exit(st_memory_limit_bytes() == (double)((rlim_t)1 << 30) ? 0 : 1);
    }
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}
END_TEST

/* st__alloc_big: 64-byte aligned at every size (the simulator's records are laid out in cache lines),
 * 2 MiB aligned from 16 MiB on (huge pages), and every byte writable */
START_TEST(test_alloc_big_aligned) {
    static const size_t sizes[] = {0, 1, 40, 64, 1000, (size_t)16 << 20, ((size_t)16 << 20) + 8};
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        unsigned char *p = st__alloc_big(sizes[i]);
        ck_assert_ptr_nonnull(p);
        ck_assert_uint_eq((uintptr_t)p % 64, 0);
        if (sizes[i] >= (size_t)16 << 20)
            ck_assert_uint_eq((uintptr_t)p % ((size_t)2 << 20), 0);
        memset(p, 0xa5, sizes[i]);
        if (sizes[i])
            ck_assert_uint_eq(p[sizes[i] - 1], 0xa5);
        free(p);
    }
}
END_TEST

Suite *suite_util(void) {
    Suite *s = suite_create("util");
    TCase *tc = tcase_create("util");
    tcase_add_test(tc, test_tmp_commit_and_discard);
    tcase_add_test(tc, test_signal_removes_temporaries);
    tcase_add_test(tc, test_memory_limit_follows_ulimit);
    tcase_add_test(tc, test_alloc_big_aligned);
    suite_add_tcase(s, tc);
    return s;
}
