#include "suites.h"
#include "strata.h"
Suite *suite_search(void) { Suite *s = suite_create("search"); return s; }
