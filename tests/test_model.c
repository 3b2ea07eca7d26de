#include "suites.h"
#include "strata.h"
Suite *suite_model(void) { Suite *s = suite_create("model"); return s; }
