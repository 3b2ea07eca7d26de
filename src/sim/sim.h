/* sim.h: the simulation layer (src/sim/): the discrete-event interpreter of the per-rank programs
 * (program.h) with max-min fair sharing of the links, and the re-ranking of searched plans by
 * simulation. Uses core, cost, lower and traces. */
#ifndef STRATA_SIM_H
#define STRATA_SIM_H

#include "cost/cost.h"
#include "search/search.h"
#include "src/core/core.h"
#include "src/lower/lower.h"
#include "traces/traces.h"


/* what an instruction's time counts as in a breakdown (st_breakdown's parts): compute and
 * recompute by phase, a collective by its group's kind (on the data-parallel and gather streams:
 * data-parallel), a send or receive as pipeline traffic, a copy-stream compute as offload */
typedef enum {
    ST_BD_COMPUTE,
    ST_BD_RECOMPUTE,
    ST_BD_TP,
    ST_BD_CP,
    ST_BD_EP,
    ST_BD_PP,
    ST_BD_DP,
    ST_BD_OPTIMIZER,
    ST_BD_OFFLOAD,
    ST_BD_OTHER,
    ST_BD_COUNT
} st_bd;

typedef struct st_rank_stats {
    double busy_s[ST_STREAMS];  /* time each stream was running something */
    double bd_s[ST_BD_COUNT];   /* the same time by what it counts as (st_bd) */
    double compute_idle_s;      /* compute stream idle between the iteration's start and end */
    double bubble_s;            /* compute stream idle while waiting on pipeline receives */
    double end_s;               /* when its last instruction ended */
    double memory_peak_bytes;
    int memory_peak_ins;        /* the instruction at which memory peaked */
} st_rank_stats;

typedef struct st_sim_result {
    double iteration_time_s;   /* the last end over all ranks */
    uint64_t events;           /* events the engine processed (instruction ends, flow completions) */
    uint64_t flows;            /* transfers that ran as flows on shared links */
    uint64_t reshares;         /* max-min recomputations: a flow started on a full link, or ended on one
                                * and some flow there lost its last bottleneck (src/sim/maxmin.c) */
    /* wall-clock seconds the engine took to set up and to run the events: for benchmarks, not part
     * of the simulation's results (they differ from run to run) */
    double setup_wall_s, run_wall_s;
    int nranks;
    st_rank_stats *ranks;      /* nranks, owned */
    int oom;                   /* 1 when some rank exceeded memory_limit_bytes */
    int oom_rank, oom_ins;
} st_sim_result;

/* Runs the programs. memory_limit_bytes <= 0 disables the out-of-memory check. Returns 0, or
 * ST_EINVAL with err naming the rank and instruction when the programs break the format's rules
 * (st_program_validate's message) or deadlock (a receive without a send, a collective some member
 * never reaches). */
int st_sim_run(const st_lowered *l, double memory_limit_bytes, st_trace *trace, st_sim_result *out, st_error *err);
/* st_sim_run with a progress line on `progress` (NULL: none) once the events have run for a second,
 * refreshed twice a second and erased at the end: `sim --every-rank` on a million GPUs ran for
 * minutes without a word. */
int st_sim_run_progress(const st_lowered *l, double memory_limit_bytes, st_trace *trace, FILE *progress,
                        st_sim_result *out, st_error *err);
void st_sim_result_destroy(st_sim_result *r);
/* The memory of the devices program `pg` runs on: on node groups the least of the GPUs it stands for
 * (its group's, a MIG group's slice), else the cluster's GPU. */
double st_sim_device_memory_bytes(const st_cluster *c, const st_program *pg);
/* The out-of-memory check of a run made without a limit (memory_limit_bytes 0), each program against
 * its own devices' memory (st_sim_device_memory_bytes): node groups of different GPUs, where one
 * limit would hold an H100 stage to a MIG slice's memory. Sets r->oom, oom_rank and oom_ins (the
 * instruction at the rank's peak; -1 when its base bytes alone exceed) for the first program over. */
void st_sim_check_memory(const st_lowered *l, const st_cluster *c, st_sim_result *r);

/* Simulates the first k plans of res (strata sim) and re-ranks those k by simulated time; plans the
 * simulator cannot run go after them (src/sim/validate.c). */
int st_search_validate(const st_model *m, const st_cluster *c, const st_profile *prof, st_search_result *res, int k,
                       st_error *err);

#endif
