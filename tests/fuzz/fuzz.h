/* fuzz.h: strata's fuzz targets (issue 20, "In the repository from now on"): one function per
 * loader, each taking the bytes of one input file and driving it through the command that reads it
 * (load, finalize, estimate, a small simulation), in process. A target returns normally when strata
 * handled the input as its contract says, and abort()s, after a line on stderr naming the broken
 * rule, when it did not: an exit status other than 0, 1 or 2; stdout written with exit 2; a
 * non-finite number printed (in plot's .dat and .gp files too); an estimate that st_estimate_check
 * refuses of inputs every loader accepted; a profile that calibrate wrote and --profile refuses, a
 * cluster that calibrate --runs wrote and --cluster refuses; an inline spec that strata run made of
 * an operator-level plan and its own parser refuses. tests/fuzz/libfuzzer.c runs one
 * target under libFuzzer (scripts/fuzz.sh), tests/fuzz/replay.c runs every target over its
 * committed corpus (make check). */
#ifndef STRATA_FUZZ_H
#define STRATA_FUZZ_H

#include <stddef.h>
#include <stdint.h>

typedef struct st__fuzz_target {
    const char *name; /* the corpus folder tests/fuzz/corpus/NAME */
    void (*run)(const uint8_t *data, size_t size);
} st__fuzz_target;

/* The targets, ended by a NULL name. */
extern const st__fuzz_target st__fuzz_targets[];
/* The target called name, or NULL. */
const st__fuzz_target *st__fuzz_find(const char *name);
/* Once per process before any target runs: the search's error hooks, a scratch folder ($TMPDIR, else
 * /dev/shm where it can be written, else /tmp; removed at exit). srcdir is the source tree (the
 * settings target reads its bundle there). 0 or -1. */
int st__fuzz_init(const char *srcdir);

#endif
