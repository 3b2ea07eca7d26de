/* nompi.c: the executor in a strata built without MPI or a CBLAS (configure found no mpicc or no
 * cblas.h with a library that has cblas_sgemm): `strata run` parses its options like everywhere
 * else and then says what is missing (curl's way, as profiler/nocuda.c). */
#include "config.h"
#include "exec/exec.h"

#include <stdlib.h>

int st_exec_mpi_init(int *rank, int *size, st_error *err) {
    /* under mpirun (Open MPI, or PMI's launchers) only rank 0 names the error */
    const char *r = getenv("OMPI_COMM_WORLD_RANK");
    if (!r) r = getenv("PMI_RANK");
    *rank = r ? atoi(r) : 0, *size = 1;
    return st_error_set(err, ST_EINVAL, NULL, NULL,
                        "strata was built without the executor: configure found %s; install them (Debian: "
                        "openmpi-bin libopenmpi-dev libopenblas-dev) and run configure again",
                        ST_EXEC_MISSING);
}

void st_exec_mpi_finalize(void) {}

void st_exec_mpi_barrier(void) {}

int st_exec_run(const st_model *m, const st_plan *p, const st_lowered *l, const st_exec_opts *opts,
                st_exec_result *r, st_error *err) {
    return st_exec_mpi_init(&r->rank, &r->nranks, err);
}

int st_exec_run_ilp(const st_model *m, const st_autoshard_result *r, const st_cluster *c, const st_profile *prof,
                    st_dtype dt, const st_lowered *l, const st_exec_opts *opts, st_exec_result *res, st_error *err) {
    (void)m, (void)r, (void)c, (void)prof, (void)dt, (void)l, (void)opts;
    return st_exec_mpi_init(&res->rank, &res->nranks, err);
}

int st_exec_bench_gemm(int64_t m, int64_t n, int64_t k, int reps, double *fwd_s, double *bwd_s, st_error *err) {
    int r, size;
    (void)m, (void)n, (void)k, (void)reps, (void)fwd_s, (void)bwd_s;
    return st_exec_mpi_init(&r, &size, err);
}

int st_exec_bench_attn(int64_t B, int64_t T, int64_t hq, int64_t hkv, int64_t d, int reps, double *fwd_s,
                       double *bwd_s, st_error *err) {
    int r, size;
    (void)B, (void)T, (void)hq, (void)hkv, (void)d, (void)reps, (void)fwd_s, (void)bwd_s;
    return st_exec_mpi_init(&r, &size, err);
}

int st_exec_bench_stream(st_exec_stream kind, int64_t rows, int64_t cols, int reps, double *fwd_s, double *bwd_s,
                         st_error *err) {
    int r, size;
    (void)kind, (void)rows, (void)cols, (void)reps, (void)fwd_s, (void)bwd_s;
    return st_exec_mpi_init(&r, &size, err);
}

int st_exec_bench_coll(st_coll coll, int ranks, double bytes, int reps, double *s, st_error *err) {
    int r, size;
    (void)coll, (void)ranks, (void)bytes, (void)reps, (void)s;
    return st_exec_mpi_init(&r, &size, err);
}

double st_exec_bench_rss_bytes(void) { return 0; }
