#include "suites.h"
Suite *suite_stagedp(void) {
    Suite *s = suite_create("stagedp");
    return s;
}
