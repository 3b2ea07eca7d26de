/* output.c: the JSON documents the commands print with --json (the contract of DESIGN.md:
 * iteration_time_s, tokens_per_s, model_tflops_per_gpu, mfu, memory_peak_gib, fits, breakdown_s).
 * Each document is built whole, dumped to a string, and written in one call, so a failure leaves
 * no partial output. */
#include "src/report/report_json.h"

#include <stdlib.h>
#include <string.h>

#define GIB 1073741824.0

json_t *st__breakdown_json(const st_breakdown *b) {
    json_t *o = json_object();
    json_object_set_new(o, "compute", json_real(b->compute_s));
    json_object_set_new(o, "recompute", json_real(b->recompute_s));
    json_object_set_new(o, "tp_comm", json_real(b->tp_comm_s));
    json_object_set_new(o, "cp_comm", json_real(b->cp_comm_s));
    json_object_set_new(o, "ep_comm", json_real(b->ep_comm_s));
    json_object_set_new(o, "pp_comm", json_real(b->pp_comm_s));
    json_object_set_new(o, "bubble", json_real(b->bubble_s));
    json_object_set_new(o, "dp_comm", json_real(b->dp_comm_s));
    json_object_set_new(o, "optimizer", json_real(b->optimizer_s));
    json_object_set_new(o, "offload", json_real(b->offload_s));
    return o;
}

static json_t *stage_json(int d, const st_stage_memory *s) {
    json_t *o = json_object();
    json_object_set_new(o, "stage", json_integer(d));
    json_object_set_new(o, "weights", json_real(s->weights_bytes / GIB));
    json_object_set_new(o, "gradients", json_real(s->grads_bytes / GIB));
    json_object_set_new(o, "optimizer", json_real(s->optimizer_bytes / GIB));
    json_object_set_new(o, "activations", json_real(s->activations_bytes / GIB));
    json_object_set_new(o, "other", json_real(s->other_bytes / GIB));
    json_object_set_new(o, "total", json_real(s->total_bytes / GIB));
    return o;
}

/* the estimate keys shared by `estimate` and each entry of `plan` */
static void add_estimate(json_t *o, const st_plan *p, const st_estimate *e) {
    char spec[512];
    st_plan_format_spec(p, spec, sizeof spec);
    json_object_set_new(o, "spec", json_string(spec));
    json_object_set_new(o, "gpus", json_integer((json_int_t)st_plan_gpus(p)));
    json_object_set_new(o, "iteration_time_s", json_real(e->iteration_time_s));
    json_object_set_new(o, "tokens_per_s", json_real(e->tokens_per_s));
    json_object_set_new(o, "model_tflops_per_gpu", json_real(e->model_tflops_per_gpu));
    json_object_set_new(o, "mfu", json_real(e->mfu));
    json_object_set_new(o, "memory_peak_gib", json_real(e->memory_peak_bytes / GIB));
    json_object_set_new(o, "peak_stage", json_integer(e->peak_stage));
    json_object_set_new(o, "fits", json_boolean(e->fits));
    if (p->offload != ST_OFF_NONE || p->offload_params > 0 || p->offload_activations > 0)
        json_object_set_new(o, "host_memory_per_node_gib", json_real(e->host_memory_bytes / GIB));
    json_object_set_new(o, "breakdown_s", st__breakdown_json(&e->breakdown));
    json_object_set_new(o, "plan", st__plan_to_json(p));
}

/* which calibration profile priced the document, when one did */
static void add_profile(json_t *o, const st_profile *prof) {
    if (!prof) return;
    const char *from = st_profile_scaled_from(prof);
    json_object_set_new(o, "profile", json_pack("{s:s, s:s, s:o}", "file", st_profile_file(prof), "gpu",
                                                from ? from : st_profile_gpu(prof), "scaled_from",
                                                from ? json_string(from) : json_null()));
}

int st_out_estimate_json(FILE *f, const st_model *m, const st_cluster *c, const st_plan *p, const st_estimate *e,
                         const st_stage_memory *stages, int nstages, const st_profile *prof, st_error *err) {
    json_t *o = json_object();
    if (!o) return st_error_set(err, ST_ENOMEM, NULL, NULL, "out of memory");
    json_object_set_new(o, "model", json_string(m->name));
    json_object_set_new(o, "params", json_real(st_model_params(m)));
    json_object_set_new(o, "cluster", json_string(c->name));
    json_object_set_new(o, "gpu", json_string(c->gpu.name));
    json_object_set_new(o, "gpu_memory_gib", json_real(c->gpu.memory_bytes / GIB));
    json_object_set_new(o, "microbatches", json_integer((json_int_t)st_plan_microbatches(p)));
    add_estimate(o, p, e);
    json_object_set_new(o, "model_flops", json_real(e->model_flops));
    json_t *arr = json_array();
    for (int d = 0; d < nstages; d++) json_array_append_new(arr, stage_json(d, &stages[d]));
    json_object_set_new(o, "memory_gib", arr);
    add_profile(o, prof);
    return st__json_print(f, o, err);
}

int st_out_plan_json(FILE *f, const st_model *m, const st_cluster *c, const st_search_opts *so,
                     const st_search_result *r, const char *emitted, const char *emit_kind, const st_profile *prof,
                     st_error *err) {
    json_t *o = json_object();
    if (!o) return st_error_set(err, ST_ENOMEM, NULL, NULL, "out of memory");
    json_object_set_new(o, "model", json_string(m->name));
    json_object_set_new(o, "params", json_real(st_model_params(m)));
    json_object_set_new(o, "cluster", json_string(c->name));
    json_object_set_new(o, "gpu", json_string(c->gpu.name));
    json_object_set_new(o, "gpus", json_integer((json_int_t)(so->gpus > 0 ? so->gpus : st_cluster_gpus(c))));
    json_object_set_new(o, "gbs", json_integer((json_int_t)so->gbs));
    json_object_set_new(o, "seq", json_integer((json_int_t)(r->n ? r->plans[0].plan.seq : so->seq)));
    json_object_set_new(o, "seed", json_integer((json_int_t)so->seed));
    json_t *arr = json_array();
    for (int i = 0; i < r->n; i++) {
        json_t *e = json_object();
        json_object_set_new(e, "rank", json_integer(i + 1));
        add_estimate(e, &r->plans[i].plan, &r->plans[i].est);
        if (r->plans[i].sim_time_s > 0)
            json_object_set_new(e, "simulated_iteration_time_s", json_real(r->plans[i].sim_time_s));
        else if (r->plans[i].sim_time_s < 0)
            json_object_set_new(e, "simulated_iteration_time_s", json_null()); /* could not run */
        json_array_append_new(arr, e);
    }
    json_object_set_new(o, "plans", arr);
    json_object_set_new(o, "evaluated", json_integer((json_int_t)r->evaluated));
    json_object_set_new(o, "feasible", json_integer((json_int_t)r->feasible));
    json_object_set_new(o, "bounded", json_integer((json_int_t)r->bounded));
    json_object_set_new(o, "search_time_s", json_real(r->search_time_s));
    if (emitted) {
        json_object_set_new(o, "emit_kind", json_string(emit_kind));
        json_object_set_new(o, "emit", json_string(emitted));
    }
    add_profile(o, prof);
    return st__json_print(f, o, err);
}

json_t *st__sim_breakdown_json(const st_sim_result *r) {
    /* the slowest-ending rank's busy time with the estimate's keys (st_bd), the pipeline bubble,
     * and its compute stream's idle time; streams overlap, so the parts are busy time, not time
     * added (dp_comm and offload can hide behind the compute) */
    const st_rank_stats *slow = NULL;
    for (int i = 0; i < r->nranks; i++)
        if (!slow || r->ranks[i].end_s > slow->end_s) slow = &r->ranks[i];
    if (!slow) return NULL;
    json_t *b = json_object();
    json_object_set_new(b, "compute", json_real(slow->bd_s[ST_BD_COMPUTE] + slow->bd_s[ST_BD_OTHER]));
    json_object_set_new(b, "recompute", json_real(slow->bd_s[ST_BD_RECOMPUTE]));
    json_object_set_new(b, "tp_comm", json_real(slow->bd_s[ST_BD_TP]));
    json_object_set_new(b, "cp_comm", json_real(slow->bd_s[ST_BD_CP]));
    json_object_set_new(b, "ep_comm", json_real(slow->bd_s[ST_BD_EP]));
    json_object_set_new(b, "pp_comm", json_real(slow->bd_s[ST_BD_PP]));
    json_object_set_new(b, "bubble", json_real(slow->bubble_s));
    json_object_set_new(b, "dp_comm", json_real(slow->bd_s[ST_BD_DP]));
    json_object_set_new(b, "optimizer", json_real(slow->bd_s[ST_BD_OPTIMIZER]));
    json_object_set_new(b, "offload", json_real(slow->bd_s[ST_BD_OFFLOAD]));
    json_object_set_new(b, "idle", json_real(slow->compute_idle_s));
    return b;
}

json_t *st__sim_ranks_json(const st_sim_result *r) {
    json_t *ranks = json_array();
    for (int i = 0; i < r->nranks; i++) {
        const st_rank_stats *s = &r->ranks[i];
        json_t *e = json_object();
        json_object_set_new(e, "rank", json_integer(i));
        json_object_set_new(e, "busy_s", json_real(s->busy_s[ST_STREAM_COMPUTE]));
        json_object_set_new(e, "idle_s", json_real(s->compute_idle_s));
        json_object_set_new(e, "bubble_s", json_real(s->bubble_s));
        json_object_set_new(e, "p2p_s", json_real(s->busy_s[ST_STREAM_P2P]));
        json_object_set_new(e, "dp_s", json_real(s->busy_s[ST_STREAM_DP]));
        json_object_set_new(e, "gather_s", json_real(s->busy_s[ST_STREAM_GATHER])); /* ZeRO-3's all-gathers */
        json_object_set_new(e, "copy_s", json_real(s->busy_s[ST_STREAM_COPY]));     /* host <-> device */
        json_object_set_new(e, "end_s", json_real(s->end_s));
        json_object_set_new(e, "memory_peak_gib", json_real(s->memory_peak_bytes / GIB));
        json_array_append_new(ranks, e);
    }
    return ranks;
}

int st_out_sim_json(FILE *f, const st_model *m, const st_cluster *c, const st_plan *p, const st_estimate *sim,
                    const st_estimate *analytical, const st_sim_result *r, const st_profile *prof, st_error *err) {
    json_t *o = json_object();
    if (!o) return st_error_set(err, ST_ENOMEM, NULL, NULL, "out of memory");
    json_object_set_new(o, "model", json_string(m->name));
    json_object_set_new(o, "cluster", json_string(c->name));
    json_object_set_new(o, "gpu", json_string(c->gpu.name));
    json_object_set_new(o, "gpu_memory_gib", json_real(c->gpu.memory_bytes / GIB));
    add_estimate(o, p, sim);
    json_t *b = st__sim_breakdown_json(r);
    if (b) json_object_set_new(o, "breakdown_s", b);
    json_t *a = json_object();
    add_estimate(a, p, analytical);
    json_object_del(a, "plan");
    json_object_set_new(o, "analytical", a);
    json_object_set_new(o, "ranks", st__sim_ranks_json(r));
    json_object_set_new(o, "events", json_integer((json_int_t)r->events));
    add_profile(o, prof);
    return st__json_print(f, o, err);
}

int st_out_models_json(FILE *f, st_error *err) {
    size_t n;
    const st_model *ms = st_model_presets(&n);
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        json_t *o = st__model_to_json(&ms[i]);
        json_object_set_new(o, "params", json_real(st_model_params(&ms[i])));
        if (ms[i].experts > 0) json_object_set_new(o, "active_params", json_real(st_model_active_params(&ms[i])));
        if (ms[i].mtp_layers > 0) json_object_set_new(o, "mtp_params", json_real(st_model_mtp_params(&ms[i])));
        json_object_set_new(o, "source", json_string(ms[i].source));
        json_array_append_new(arr, o);
    }
    json_t *root = json_object();
    json_object_set_new(root, "models", arr);
    return st__json_print(f, root, err);
}

int st_out_clusters_json(FILE *f, st_error *err) {
    size_t n;
    const st_cluster *cs = st_cluster_presets(&n);
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        json_t *o = st__cluster_to_json(&cs[i]);
        json_object_set_new(o, "source", json_string(cs[i].source));
        /* not in the canonical description (no time depends on it; src/io/cluster_io.c) */
        json_object_set_new(json_object_get(o, "gpu"), "tdp_watts", json_real(cs[i].gpu.tdp_watts));
        json_array_append_new(arr, o);
    }
    json_t *root = json_object();
    json_object_set_new(root, "clusters", arr);
    return st__json_print(f, root, err);
}

int st_out_profiles_json(FILE *f, const st_profile_entry *e, size_t n, st_error *err) {
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < n; i++) {
        json_t *o = e[i].error[0] ? json_pack("{s:s, s:s, s:s}", "name", e[i].name, "path", e[i].path, "error",
                                              e[i].error)
                                  : json_pack("{s:s, s:s, s:s, s:s, s:s}", "name", e[i].name, "path", e[i].path,
                                              "gpu", e[i].gpu, "date", e[i].date, "source", e[i].source);
        if (!o || json_array_append_new(arr, o)) {
            json_decref(arr);
            arr = NULL;
        }
    }
    return st__json_print(f, arr ? json_pack("{s:o}", "profiles", arr) : NULL, err);
}
