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

/* not reached (st__xcuda_open refused first); says the same */
int st__xcuda_comm(st__xcomm *c, const int *tp, int tp_n, const int *ep, int ep_n, st_error *err) {
    (void)c, (void)tp, (void)tp_n, (void)ep, (void)ep_n;
    return st__xcuda_open(NULL, err);
}

int st__xcuda_gcomm(st__xgcomm *c, const struct st_lowered *l, int gd, int er, const struct st__xwatch *w,
                    st_error *err) {
    (void)c, (void)l, (void)gd, (void)er, (void)w;
    return st__xcuda_open(NULL, err);
}

/* not reached either: st__xcuda_gcomm refused before */
void st__xcuda_cpcomm(st__xcpcomm *c, int gi) { (void)c, (void)gi; }

/* no device, no device memory (not reached: the run was refused) */
void st__xcuda_memory(double *peak_bytes, double *used_peak_bytes) { *peak_bytes = *used_peak_bytes = 0; }

void st__xcuda_close(void) {}
