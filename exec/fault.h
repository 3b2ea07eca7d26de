/* fault.h: the CPU executor's faults (exec/fault.c), for exec/cpu.c: every wait of a rank in a
 * collective, send or receive is a nonblocking MPI call polled until a deadline, so that a dead or
 * hung peer stops the job with one line naming the rank, the instruction and the peers it waited
 * for (MPI_Abort: mpirun then ends every rank) instead of a hang; a crash (a fatal signal) names the
 * rank and the instruction it was in before the process dies as it would have. Built with the
 * executor (needs mpi.h); the test hook's parser is in exec_private.h. */
#ifndef STRATA_EXEC_FAULT_H
#define STRATA_EXEC_FAULT_H

#include "exec/exec_private.h"

#include <mpi.h>

/* Where a rank is, for the lines above: its step and instruction (ins -1: between instructions,
 * `label` then says where), and how long a wait may last. The run's communicator `world` has
 * MPI_ERRORS_RETURN, so an MPI error comes back to st__xwait, which names it the same way. */
typedef struct st__xwatch {
    double timeout_s; /* > 0 */
    int rank;         /* in world */
    MPI_Comm world;   /* the run's (a duplicate of MPI_COMM_WORLD, same ranks) */
    int64_t step;     /* 0-based; printed 1-based; -1 before and after the steps (label says where) */
    int ins, mb;      /* the instruction and its micro-batch (-1: none) */
    const char *label; /* static: the instruction's label, or where the rank is when ins is -1 */
} st__xwatch;

/* Waits for reqs[0 .. n) (started by an MPI_I* call that returned `started`) polling with
 * MPI_Testall, yielding the core between polls as Open MPI's own waits do when oversubscribed.
 * Returns when all completed. Past w->timeout_s, or on an MPI error, prints one line on stderr
 * naming w's rank, step and instruction, `what` (e.g. "tp all-reduce") and the peers: `peer` (a
 * rank of comm), or with peer -1 every other member of comm (a collective cannot say which one is
 * missing), in world ranks; then MPI_Abort(MPI_COMM_WORLD, 2): it does not return. */
void st__xwait(const st__xwatch *w, int started, MPI_Request *reqs, int n, const char *what, MPI_Comm comm, int peer);

/* The same wait for what MPI does not see (a CUDA stream's NCCL transfers and kernels, exec/cuda.c):
 * ready(arg) polled, 1 done, 0 not yet, < 0 an error, which is returned (the caller names it); past
 * w->timeout_s, the line above (waiting for `peer` of comm, or with -1 every other member) and
 * MPI_Abort. */
int st__xwait_poll(const st__xwatch *w, int (*ready)(void *), void *arg, const char *what, MPI_Comm comm, int peer);

/* STRATA_EXEC_FAULT's fault (st__xfault_parse), injected when w reaches it in the first step:
 * die: the process ends at once with status 1, no MPI_Finalize, no word (a lost node);
 * crash: SIGSEGV (the crash line below); hang: sleeps without entering MPI (a wedged rank; its peers
 * time out), at most 10 x timeout + 60 s, then dies as `die`, so nothing outlives a broken mpirun. */
void st__xfault_at(const st__xfault *f, const st__xwatch *w);
/* 1 where f is a `fail` fault and w at it in the first step: the instruction then fails (out of memory) */
int st__xfault_fails(const st__xfault *f, const st__xwatch *w);

/* A rank whose instruction failed mid-step (out of memory, a kernel's error) while its peers may wait for it in a
 * collective or a receive: prints "strata run: rank R failed in step K instruction I (LABEL, micro-batch M): WHY;
 * stopping every rank" and MPI_Abort(MPI_COMM_WORLD, 2), so that they stop now, not at their timeout. Does not
 * return. */
void st__xfail(const st__xwatch *w, const char *why);

/* A fatal signal (SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT) while w is installed prints "strata run:
 * rank R crashed (signal S) in step K instruction I (LABEL, micro-batch M)" and then goes on as the
 * handler installed before (Open MPI's, or the default action). w is read at the signal, so the
 * line names the instruction running then. Install once per run; st__xcrash_remove restores. */
void st__xcrash_install(const st__xwatch *w);
void st__xcrash_remove(void);

#endif
