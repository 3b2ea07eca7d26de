#include "suites.h"
#include "strata.h"
Suite *suite_cluster(void) { Suite *s = suite_create("cluster"); return s; }
