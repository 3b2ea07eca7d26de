/* nocuda.c: the cuda backend in a strata whose configure did not build it (exec_private.h,
 * st__xcuda_open): `strata run --backend cuda` says what configure did not find, in one line (curl's
 * way, as exec/nompi.c and profiler/nocuda.c). */
#include "config.h"
#include "exec/exec_private.h"

int st__xcuda_open(const st__xbackend **be, st_error *err) {
    (void)be;
    return st_error_set(err, ST_EINVAL, NULL, NULL,
                        "strata was built without the cuda backend: configure found %s; install the CUDA toolkit "
                        "(cuBLAS) and run configure again (--with-cuda=DIR)",
                        ST_EXEC_CUDA_MISSING);
}

void st__xcuda_close(void) {}
