/* suites.h: one Check suite per module, all run by tests/check_strata.c. */
#ifndef STRATA_TEST_SUITES_H
#define STRATA_TEST_SUITES_H
#include <check.h>

Suite *suite_model(void);
Suite *suite_cluster(void);
Suite *suite_mig(void);
Suite *suite_offload(void);
Suite *suite_groups(void);
Suite *suite_stage_tp(void);
Suite *suite_plan(void);
Suite *suite_cost(void);
Suite *suite_search(void);
Suite *suite_io(void);
Suite *suite_emit(void);
Suite *suite_compare(void);
Suite *suite_plot(void);
Suite *suite_lower(void);
Suite *suite_validate(void);
Suite *suite_sim(void);
Suite *suite_calibrate(void);
Suite *suite_fit(void);
Suite *suite_ilp(void);
Suite *suite_stagedp(void);
Suite *suite_autoshard(void);
Suite *suite_exec(void);
Suite *suite_exec_cpu(void); /* with HAVE_EXEC_CPU */
Suite *suite_exec_cuda(void); /* with HAVE_EXEC_CUDA */
Suite *suite_cli(void);
Suite *suite_validation(void);
Suite *suite_util(void);
Suite *suite_structure(void);

#endif
