/* replay.c: runs every fuzz target (fuzz.h) over each file of its committed corpus,
 * tests/fuzz/corpus/TARGET/, in make check: what libFuzzer found once, and the seeds, stay
 * handled on any machine, without clang. A broken rule aborts with the target's line on stderr;
 * the file being run is printed there first. Usage: replay [CORPUS_DIR [TARGET...]]: by default
 * the source tree's corpus, every target. */
#include "tests/fuzz/fuzz.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int by_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* every file of dir through t, in name order; returns the count, or -1 when dir cannot be read */
static int replay(const st__fuzz_target *t, const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return -1;
    char **names = NULL;
    size_t n = 0, cap = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.') continue;
        if (n == cap && !(names = realloc(names, (cap = cap ? 2 * cap : 64) * sizeof *names))) abort();
        if (!(names[n++] = strdup(e->d_name))) abort();
    }
    closedir(d);
    qsort(names, n, sizeof *names, by_name);
    for (size_t i = 0; i < n; i++) {
        char path[2048];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        FILE *f = fopen(path, "rb");
        if (!f) abort();
        static unsigned char buf[1 << 20];
        size_t size = fread(buf, 1, sizeof buf, f);
        fclose(f);
        fprintf(stderr, "replay %s\n", path);
        t->run(buf, size);
        free(names[i]);
    }
    free(names);
    return (int)n;
}

int main(int argc, char **argv) {
    if (st__fuzz_init(SRCDIR)) {
        perror("replay: scratch folder");
        return 2;
    }
    int status = 0;
    for (const st__fuzz_target *t = st__fuzz_targets; t->name; t++) {
        int wanted = argc <= 2;
        for (int i = 2; i < argc; i++) wanted |= !strcmp(argv[i], t->name);
        if (!wanted) continue;
        st__fuzz_find(t->name);
        char dir[1024];
        snprintf(dir, sizeof dir, "%s/%s", argc > 1 ? argv[1] : SRCDIR "/tests/fuzz/corpus", t->name);
        int n = replay(t, dir);
        if (n <= 0) {
            fprintf(stderr, "replay: no corpus for target %s in %s\n", t->name, dir);
            status = 1;
        } else {
            printf("%-10s %4d inputs replayed\n", t->name, n);
        }
    }
    return status;
}
