/* report_json.h: the JSON pieces that several of src/report/'s writers share (src/report/output.c),
 * private to src/report/. */
#ifndef STRATA_REPORT_JSON_H
#define STRATA_REPORT_JSON_H

#include "src/io/jsonutil.h"
#include "src/report/report.h"

/* The breakdown_s object of every --json output (src/report/output.c); new reference. */
json_t *st__breakdown_json(const st_breakdown *b);
/* `strata sim --json`'s breakdown_s (the slowest-ending rank's streams; NULL with no rank) and its
 * "ranks" array (src/report/output.c); new references. */
json_t *st__sim_breakdown_json(const st_sim_result *r);
json_t *st__sim_ranks_json(const st_sim_result *r);

#endif
