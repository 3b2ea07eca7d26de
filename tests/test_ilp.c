#include "suites.h"
Suite *suite_ilp(void) {
    Suite *s = suite_create("ilp");
    return s;
}
