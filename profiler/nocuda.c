/* nocuda.c: `strata profile` in a strata built without CUDA (configure found no CUDA runtime, or
 * --without-cuda): the command exists, parses its options like everywhere else and then says
 * why it cannot measure (curl's way: a stub, no #ifdef at the call site). */
#include "profiler/profiler.h"

int st__prof_run(const st__prof_opts *o, st__prof_result *r, st_error *err) {
    return st_error_set(err, ST_EINVAL, NULL, NULL,
                        "strata was built without CUDA; configure it where the CUDA toolkit is (--with-cuda=DIR) "
                        "to profile a GPU, or make a profile from a PyTorch trace with strata calibrate --kineto");
}

const char *st__prof_build_info(void) { return "built without CUDA: it cannot measure"; }
