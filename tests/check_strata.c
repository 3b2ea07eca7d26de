/* check_strata.c: the one Check runner. CK_RUN_SUITE=name runs one suite (Check's own variable). */
#include "config.h"
#include "search/search.h"
#include "suites.h"

#include <stdlib.h>

int main(void) {
    st_search_init(); /* as strata's main() does: the libraries' error hooks first */
    SRunner *sr = srunner_create(suite_model());
    srunner_add_suite(sr, suite_cluster());
    srunner_add_suite(sr, suite_mig());
    srunner_add_suite(sr, suite_offload());
    srunner_add_suite(sr, suite_groups());
    srunner_add_suite(sr, suite_stage_tp());
    srunner_add_suite(sr, suite_plan());
    srunner_add_suite(sr, suite_cost());
    srunner_add_suite(sr, suite_search());
    srunner_add_suite(sr, suite_io());
    srunner_add_suite(sr, suite_structure());
    srunner_add_suite(sr, suite_emit());
    srunner_add_suite(sr, suite_compare());
    srunner_add_suite(sr, suite_plot());
    srunner_add_suite(sr, suite_lower());
    srunner_add_suite(sr, suite_validate());
    srunner_add_suite(sr, suite_sim());
    srunner_add_suite(sr, suite_calibrate());
    srunner_add_suite(sr, suite_fit());
    srunner_add_suite(sr, suite_ilp());
    srunner_add_suite(sr, suite_stagedp());
    srunner_add_suite(sr, suite_autoshard());
    srunner_add_suite(sr, suite_exec());
#ifdef HAVE_EXEC_CPU
    srunner_add_suite(sr, suite_exec_cpu()); /* built with the executor only (tests/test_exec_cpu.c) */
#endif
#ifdef HAVE_EXEC_CUDA
    srunner_add_suite(sr, suite_exec_cuda()); /* with the cuda backend only (tests/test_exec_cuda.c) */
#endif
    srunner_add_suite(sr, suite_cli());
    srunner_add_suite(sr, suite_validation());
    srunner_add_suite(sr, suite_util());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
