#include "suites.h"
#include "strata.h"
Suite *suite_cost(void) { Suite *s = suite_create("cost"); return s; }
