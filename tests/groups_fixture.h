/* groups_fixture.h: what the node-group suites share (defined in tests/test_groups.c): a node group cut from a
 * uniform preset, a finalized plan that must be valid, and one micro-batch of a chunk on a view's GPUs. */
#ifndef STRATA_TEST_GROUPS_FIXTURE_H
#define STRATA_TEST_GROUPS_FIXTURE_H
#include "src/strata.h"

/* One group from a uniform preset cluster, `nodes` of its nodes. */
void group_from(st_node_group *g, const char *preset, const char *name, int64_t nodes);
/* `spec` parsed and finalized on (m, c) into p; the test fails where it is refused. */
void plan_on(const st_model *m, const st_cluster *c, const char *spec, st_plan *p);
/* Forward + backward + recompute and the chunk's own collectives of one micro-batch of `chunk` on v's GPUs. */
double chunk_time(st_cost_ctx *v, const st_plan *p, int chunk);
#endif
