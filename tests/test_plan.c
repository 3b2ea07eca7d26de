#include "suites.h"
#include "strata.h"
Suite *suite_plan(void) { Suite *s = suite_create("plan"); return s; }
