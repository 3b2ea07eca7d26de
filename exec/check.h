/* check.h: --check's comparison (exec/check.c), one for both runtimes (exec/cpu.c's templates,
 * exec/opexec.c's operators). The single-rank reference runs once, on world rank 0: every rank keeps
 * its reduced gradients when its optimizer starts (each element it owns, with its offset in the
 * reference's flat layout), and after the step's timed part sends them to rank 0, which compares
 * them by tensor name. A gradient that is not finite is counted by the rank that holds it (which
 * names itself in the step's error), never compared: a difference printed is always a number.
 * Built with the executor (needs mpi.h). */
#ifndef STRATA_EXEC_CHECK_H
#define STRATA_EXEC_CHECK_H

#include "exec/fault.h"

/* d: the largest |difference| of each compared tensor (st_exec_tensor_names' order), then the largest
 * |reference|, 2 x ST_EXEC_TENSORS doubles (-1: not compared, st__xcheck_clear) */
typedef struct st__xcheck {
    const st__xmodel *ref; /* world rank 0: the reference, holding this step's gradients; NULL elsewhere */
    int64_t n, cap;        /* the elements kept this step (not on rank 0, which compares at once) */
    int64_t *off;          /* ... their offsets in the reference's flat layout */
    float *val;            /* ... their values */
    int64_t nonfinite;     /* this step's gradients of this rank that are not finite */
} st__xcheck;

/* d's entries to -1 */
void st__xcheck_clear(double *d);
/* a new step: nothing kept, nothing counted */
void st__xcheck_begin(st__xcheck *c);
/* one gradient element (v) at the reference's offset off: rank 0 compares it into d at once, the
 * others keep it; a value that is not finite is counted (c->nonfinite), not kept. 0 or ST_ENOMEM. */
int st__xcheck_add(st__xcheck *c, int64_t off, float v, double *d);
/* The step's error, before the ranks agree on errors: this rank's gradients that are not finite
 * ("rank R step K: N gradient value(s) not finite (the run diverged): --check cannot compare them"),
 * or on rank 0 the reference's. 0 or ST_EINVAL (err says which). */
int st__xcheck_step_error(const st__xcheck *c, int rank, int64_t step, st_error *err);
/* The watch of the barrier that starts a step: rank 0 runs the reference before it, the work of every rank's
 * step on one (at most `size` times the longest compute of a step, which w's timeout covers), so the others
 * wait for it up to (size + 1) x w's timeout; its label says so. */
st__xwatch st__xcheck_barrier_watch(const st__xwatch *w, int size);
/* After the step (every rank of comm, rank 0 the reference's): the kept elements to rank 0 in
 * pieces, compared there into d; waits through w (whose label the caller set). 0, or ST_ENOMEM
 * (rank 0 could not hold a piece; the pieces are still received). */
int st__xcheck_gather(st__xcheck *c, const st__xwatch *w, MPI_Comm comm, int rank, int size, double *d);
void st__xcheck_free(st__xcheck *c);

#endif
