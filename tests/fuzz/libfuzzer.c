/* libfuzzer.c: one fuzz target (fuzz.h) under libFuzzer, the target named at compile time
 * (-DST_FUZZ_TARGET='"model"'); built and run by scripts/fuzz.sh with clang's -fsanitize=fuzzer. */
#include "tests/fuzz/fuzz.h"

#include <stdio.h>
#include <stdlib.h>

static const st__fuzz_target *target;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    if (st__fuzz_init(SRCDIR) || !(target = st__fuzz_find(ST_FUZZ_TARGET))) {
        fprintf(stderr, "fuzz: cannot set up target %s\n", ST_FUZZ_TARGET);
        exit(2);
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
    target->run(data, size);
    return 0;
}
