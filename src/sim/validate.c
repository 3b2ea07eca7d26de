/* validate.c: `strata plan --validate K`: the analytical ranking's top K, simulated event by event
 * (src/lower/lower.c, src/sim/sim.c) and re-ranked by the simulated time. The two interpreters price the
 * same operators, so a change of order says the pipeline's critical path differs from the
 * closed form (uneven stages, send/recv on the critical path, schedule warm-up). */
#include "src/sim/sim.h"

#include <stdlib.h>

static int by_sim(const void *a, const void *b) {
    const st_ranked *x = a, *y = b;
    int xf = x->sim_time_s <= 0, yf = y->sim_time_s <= 0; /* failed runs last */
    if (xf != yf) return xf - yf;
    if (x->sim_time_s != y->sim_time_s) return x->sim_time_s < y->sim_time_s ? -1 : 1;
    /* ties: the analytical order */
    return x->est.iteration_time_s < y->est.iteration_time_s ? -1 : x->est.iteration_time_s > y->est.iteration_time_s;
}

int st_search_validate(const st_model *m, const st_cluster *c, const st_profile *prof, st_search_result *res, int k,
                       st_error *err) {
    if (k > res->n) k = res->n;
    if (k <= 0) return 0;
    st_cost_ctx *ctx = st_cost_ctx_new(m, c, prof);
    if (!ctx) return st_error_set(err, ST_ENOMEM, NULL, NULL, "out of memory");
    int rc = 0;
    for (int i = 0; i < k; i++) {
        st_lowered low;
        st_sim_result r;
        st_error ignore;
        st_ranked *e = &res->plans[i];
        e->sim_time_s = -1;
        if (st_lower(ctx, &e->plan, &low, &ignore)) continue;
        if (st_sim_run(&low, c->ngroups ? 0 : c->gpu.memory_bytes, NULL, &r, &ignore) == 0) {
            if (c->ngroups) st_sim_check_memory(&low, c, &r); /* each rank against its own GPU */
            if (!r.oom) e->sim_time_s = r.iteration_time_s;
            st_sim_result_destroy(&r);
        }
        st_lowered_destroy(&low);
    }
    qsort(res->plans, (size_t)k, sizeof *res->plans, by_sim);
    st_cost_ctx_free(ctx);
    return rc;
}
