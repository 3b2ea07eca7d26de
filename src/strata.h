/* strata.h: the umbrella header for programs outside libstrata (and the tests): every layer's
 * public header, in the order of the layer graph (README "Architecture"). strata's own sources
 * never include it: each includes the layer headers it needs (tests/layers.sh checks that). */
#ifndef STRATA_H
#define STRATA_H

#include "src/core/core.h"
#include "cost/cost.h"
#include "traces/traces.h"
#include "src/io/io.h"
#include "search/search.h"
#include "src/lower/lower.h"
#include "src/sim/sim.h"
#include "exec/exec.h"
#include "profiler/profiler.h"
#include "src/report/report.h"

#endif
