/* compare_io.c: the JSON document of `strata compare --json`. Its key names are a contract:
 * `strata plot hardware` reads them, and each per-plan key means what it means in `strata plan
 * --json` (iteration_time_s, tokens_per_s, mfu, model_tflops_per_gpu, memory_peak_gib,
 * breakdown_s with the same keys). A row where nothing fits carries null for every number that
 * needs a plan. Built whole, dumped to a string and written in one call, as in output.c. */
#include "src/report/report_json.h"

#include <math.h>
#include <stdlib.h>

#define GIB 1073741824.0

/* a number, or null where there is none (Jansson refuses NaN and infinities) */
static json_t *num_or_null(int have, double v) { return have && isfinite(v) ? json_real(v) : json_null(); }

static json_t *row_json(int rank, const st_compare_row *r) {
    const st_estimate *e = &r->best.est;
    int fit = r->fits;
    json_t *o = json_object();
    json_object_set_new(o, "rank", json_integer(rank));
    json_object_set_new(o, "cluster", json_string(r->cluster.name));
    json_object_set_new(o, "gpu", json_string(r->cluster.gpu.name));
    json_object_set_new(o, "gpus", json_integer((json_int_t)r->gpus));
    json_object_set_new(o, "fits", json_boolean(fit));
    if (r->profiled) json_object_set_new(o, "profile", json_string(r->profiled == 1 ? "as measured" : "scaled"));
    if (fit) {
        char spec[512];
        st_plan_format_spec(&r->best.plan, spec, sizeof spec);
        json_object_set_new(o, "spec", json_string(spec));
    } else {
        json_object_set_new(o, "spec", json_null());
    }
    json_object_set_new(o, "iteration_time_s", num_or_null(fit, e->iteration_time_s));
    json_object_set_new(o, "tokens_per_s", num_or_null(fit, e->tokens_per_s));
    json_object_set_new(o, "mfu", num_or_null(fit, e->mfu));
    json_object_set_new(o, "model_tflops_per_gpu", num_or_null(fit, e->model_tflops_per_gpu));
    json_object_set_new(o, "memory_peak_gib", num_or_null(fit, e->memory_peak_bytes / GIB));
    json_object_set_new(o, "gpu_memory_gib", json_real(r->cluster.gpu.memory_bytes / GIB));
    json_object_set_new(o, "headroom_gib", num_or_null(fit, r->headroom_bytes / GIB));
    json_object_set_new(o, "time_to_train_s", num_or_null(fit, r->time_to_train_s));
    json_object_set_new(o, "time_to_train_days", num_or_null(fit, r->time_to_train_days));
    json_object_set_new(o, "price_per_gpu_hour", num_or_null(r->has_price, r->price_per_gpu_hour));
    json_object_set_new(o, "cost_to_train", num_or_null(fit && r->has_price, r->cost_to_train));
    json_object_set_new(o, "tokens_per_dollar", num_or_null(fit && r->has_price, r->tokens_per_dollar));
    json_object_set_new(o, "breakdown_s", fit ? st__breakdown_json(&e->breakdown) : json_null());
    if (r->has_energy) { /* only when asked for: the document without it is as before */
        json_t *en = json_object();
        json_object_set_new(en, "tdp_watts", json_real(r->cluster.gpu.tdp_watts));
        json_object_set_new(en, "power_kw", num_or_null(fit, r->power_w / 1e3));
        json_object_set_new(en, "energy_mwh", num_or_null(fit, r->energy_mwh));
        json_object_set_new(en, "energy_cost", num_or_null(fit && r->energy_cost > 0, r->energy_cost));
        json_object_set_new(en, "total_cost", num_or_null(fit && r->total_cost > 0, r->total_cost));
        json_object_set_new(en, "tokens_per_joule", num_or_null(fit, r->tokens_per_joule));
        json_object_set_new(o, "energy", en);
    }
    json_object_set_new(o, "evaluated", json_integer((json_int_t)r->evaluated));
    return o;
}

int st_out_compare_json(FILE *f, const st_model *m, const st_search_opts *so, double tokens, const st_compare_row *rows,
                        int nrows, st_error *err) {
    json_t *root = json_object();
    if (!root) return st_error_set(err, ST_ENOMEM, NULL, NULL, "out of memory");
    double search_time_s = 0;
    json_object_set_new(root, "model", json_string(m->name));
    json_object_set_new(root, "params", json_real(st_model_params(m)));
    json_object_set_new(root, "gbs", json_integer((json_int_t)so->gbs));
    json_object_set_new(root, "seq", json_integer((json_int_t)(so->seq > 0 ? so->seq : m->seq_len)));
    json_object_set_new(root, "tokens", json_real(tokens));
    json_t *arr = json_array();
    for (int i = 0; i < nrows; i++) {
        json_array_append_new(arr, row_json(i + 1, &rows[i]));
        search_time_s += rows[i].search_time_s;
    }
    json_object_set_new(root, "results", arr);
    json_object_set_new(root, "search_time_s", json_real(search_time_s));

    return st__json_print(f, root, err);
}
