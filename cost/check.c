/* check.c: the last guard before a result leaves strata: every number of an estimate (and of the
 * simulator's view of one, which has the same shape) must be finite. Inputs have physical ranges
 * (src/io), but a result made of many of them can still overflow or divide by zero; a NaN time
 * would print as "-nan", vanish from JSON and rank first in a search. Names are the JSON keys. */
#include "cost/cost.h"

#include <math.h>

int st_estimate_check(const st_estimate *e, st_error *err) {
    const st_breakdown *b = &e->breakdown;
    const struct {
        const char *name;
        double v;
    } v[] = {{"iteration_time_s", e->iteration_time_s},
             {"tokens_per_s", e->tokens_per_s},
             {"model_flops", e->model_flops},
             {"model_tflops_per_gpu", e->model_tflops_per_gpu},
             {"mfu", e->mfu},
             {"memory_peak_bytes", e->memory_peak_bytes},
             {"host_memory_bytes", e->host_memory_bytes},
             {"offload_grads_s", e->offload_grads_s},
             {"offload_weights_s", e->offload_weights_s},
             {"breakdown_s.compute", b->compute_s},
             {"breakdown_s.recompute", b->recompute_s},
             {"breakdown_s.tp_comm", b->tp_comm_s},
             {"breakdown_s.cp_comm", b->cp_comm_s},
             {"breakdown_s.ep_comm", b->ep_comm_s},
             {"breakdown_s.pp_comm", b->pp_comm_s},
             {"breakdown_s.dp_comm", b->dp_comm_s},
             {"breakdown_s.bubble", b->bubble_s},
             {"breakdown_s.optimizer", b->optimizer_s},
             {"breakdown_s.offload", b->offload_s}};
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
        if (!isfinite(v[i].v))
            return st_error_set(err, ST_EINVAL, NULL, v[i].name,
                                "the result is not finite (%g): an input is out of its physical range", v[i].v);
    return 0;
}
