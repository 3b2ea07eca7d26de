/* autoshard_io.c: JSON of `strata plan --search ilp` (--json, --out). The plan file holds what
 * DESIGN.md asks of an ILP plan: per-operator shardings, the pipeline stage boundaries and each
 * stage's device mesh, a format version, and the model and cluster it was made for. */
#include "autoshard_cli.h"
#include "jsonutil.h"

#include <string.h>

#define GIB 1073741824.0

static json_t *labels_json(const st_as_choice *ch, int naxes) {
    json_t *a = json_array();
    for (int ax = 0; ax < naxes; ax++) {
        char s[2] = {ch->lab[ax], 0};
        json_array_append_new(a, ch->lab[ax] ? json_string(s) : json_null());
    }
    return a;
}

static json_t *stages_json(const st_autoshard_result *r) {
    json_t *arr = json_array();
    const st_graph *g = r->g;
    for (int i = 0; i < r->nstages; i++) {
        const st_as_stage *st = &r->stage[i];
        json_t *s = json_object();
        json_t *lay = json_array();
        json_array_append_new(lay, json_integer(st->first));
        json_array_append_new(lay, json_integer(st->last));
        json_object_set_new(s, "layers", lay);
        json_t *mesh = json_object();
        json_object_set_new(mesh, "nodes", json_integer(st->mesh.nodes));
        json_object_set_new(mesh, "gpus_per_node", json_integer(st->mesh.gpus));
        json_t *shape = json_array();
        for (int a = 0; a < st->mesh.naxes; a++) json_array_append_new(shape, json_integer(st->mesh.size[a]));
        json_object_set_new(mesh, "shape", shape);
        json_object_set_new(s, "mesh", mesh);
        json_object_set_new(s, "time_per_microbatch_s", json_real(st->time_s));
        json_object_set_new(s, "memory_gib", json_real(st->memory_bytes / GIB));
        json_t *ops = json_object();
        for (int o = 0; o < g->nops; o++) {
            if (st->choice[o].lab[0] == '-') continue;
            json_t *op = json_object();
            json_object_set_new(op, "split", labels_json(&st->choice[o], st->mesh.naxes));
            json_object_set_new(op, "role", json_string(st_autoshard_role(g, o, &st->choice[o], st->mesh.naxes)));
            json_object_set_new(ops, g->ops[o].name, op);
        }
        json_object_set_new(s, "ops", ops);
        json_t *ilp = json_object();
        json_object_set_new(ilp, "nodes", json_integer(st->ilp_nodes));
        json_object_set_new(ilp, "variables", json_integer((json_int_t)st->ilp_vars));
        json_object_set_new(ilp, "rows", json_integer(st->ilp_rows));
        json_object_set_new(ilp, "cols", json_integer(st->ilp_cols));
        json_object_set_new(ilp, "binaries", json_integer(st->ilp_binaries));
        json_object_set_new(ilp, "optimal", json_boolean(st->ilp_optimal));
        json_object_set_new(ilp, "gap", json_real(st->ilp_gap));
        json_object_set_new(ilp, "solve_time_s", json_real(st->ilp_time_s));
        json_object_set_new(s, "ilp", ilp);
        int counts[ST_COLL_COUNT];
        st_autoshard_block_collectives(r, i, counts);
        json_t *cc = json_object();
        for (int k = 1; k < ST_COLL_COUNT; k++)
            if (counts[k]) json_object_set_new(cc, st_coll_name((st_coll)k), json_integer(counts[k]));
        json_object_set_new(s, "collectives_per_layer_fwd", cc);
        json_array_append_new(arr, s);
    }
    return arr;
}

static json_t *plan_entry(const st_autoshard_result *r) {
    json_t *e = json_object();
    char spec[256];
    st_autoshard_spec(r, spec, sizeof spec);
    json_object_set_new(e, "rank", json_integer(1));
    json_object_set_new(e, "spec", json_string(spec));
    json_object_set_new(e, "iteration_time_s", json_real(r->iteration_time_s));
    json_object_set_new(e, "tokens_per_s", json_real(r->tokens_per_s));
    json_object_set_new(e, "model_tflops_per_gpu", json_real(r->model_tflops_per_gpu));
    json_object_set_new(e, "mfu", json_real(r->mfu));
    json_object_set_new(e, "memory_peak_gib", json_real(r->memory_peak_bytes / GIB));
    json_object_set_new(e, "fits", json_true());
    json_object_set_new(e, "mbs", json_integer((json_int_t)r->mbs));
    json_object_set_new(e, "microbatches", json_integer((json_int_t)r->microbatches));
    double comp = 0, comm = 0, sync = 0, p2p = 0, sum = 0, mx = 0;
    /* the slowest stage runs every micro-batch; the rest of the others' time is the bubble */
    for (int i = 0; i < r->nstages; i++) {
        if (r->stage[i].time_s > mx) mx = r->stage[i].time_s;
        sum += r->stage[i].time_s;
    }
    for (int i = 0; i < r->nstages; i++)
        if (r->stage[i].time_s == mx) {
            double k = (double)r->microbatches;
            comp = r->stage[i].compute_s * k, comm = r->stage[i].comm_s * k, sync = r->stage[i].sync_s * k;
            p2p = r->stage[i].p2p_s * k;
            break;
        }
    json_t *b = json_object();
    json_object_set_new(b, "compute", json_real(comp));
    json_object_set_new(b, "comm", json_real(comm - p2p));
    json_object_set_new(b, "pp_comm", json_real(p2p));
    json_object_set_new(b, "dp_comm", json_real(sync));
    json_object_set_new(b, "bubble", json_real(sum - mx));
    json_object_set_new(e, "breakdown_s", b);
    json_object_set_new(e, "stages", stages_json(r));
    return e;
}

int st_out_autoshard_json(FILE *f, const char *model, const st_cluster *c, int64_t gpus, int64_t gbs, int64_t seq,
                          const st_autoshard_result *r, st_error *err) {
    json_t *o = json_object();
    if (!o) return st_error_set(err, ST_ENOMEM, NULL, NULL, "out of memory");
    json_object_set_new(o, "model", json_string(model));
    json_object_set_new(o, "search", json_string("ilp"));
    json_object_set_new(o, "cluster", json_string(c->name));
    json_object_set_new(o, "gpu", json_string(c->gpu.name));
    json_object_set_new(o, "gpus", json_integer((json_int_t)gpus));
    json_object_set_new(o, "gbs", json_integer((json_int_t)gbs));
    json_object_set_new(o, "seq", json_integer((json_int_t)seq));
    json_t *arr = json_array();
    json_array_append_new(arr, plan_entry(r));
    json_object_set_new(o, "plans", arr);
    json_object_set_new(o, "evaluated", json_integer((json_int_t)r->evaluated));
    json_object_set_new(o, "ilp_solves", json_integer((json_int_t)r->ilp_solves));
    json_object_set_new(o, "dp_cost_calls", json_integer((json_int_t)r->dp_cost_calls));
    json_object_set_new(o, "search_time_s", json_real(r->search_time_s));
    return st__json_print(f, o, err);
}

int st_autoshard_save(const st_autoshard_result *r, const char *model, const char *model_hash, const st_cluster *c,
                      int64_t gbs, int64_t seq, st_dtype dt, const char *path, st_error *err) {
    json_t *o = json_object();
    if (!o) return st_error_set(err, ST_ENOMEM, NULL, NULL, "out of memory");
    json_object_set_new(o, "format_version", json_integer(ST_PLAN_FORMAT_VERSION));
    json_object_set_new(o, "search", json_string("ilp"));
    char spec[256];
    st_autoshard_spec(r, spec, sizeof spec);
    json_object_set_new(o, "equivalent_spec", json_string(spec));
    json_object_set_new(o, "gbs", json_integer((json_int_t)gbs));
    json_object_set_new(o, "mbs", json_integer((json_int_t)r->mbs));
    json_object_set_new(o, "seq", json_integer((json_int_t)seq));
    json_object_set_new(o, "dtype", json_string(st_dtype_name(dt)));
    json_object_set_new(o, "schedule", json_string("1f1b"));
    json_object_set_new(o, "predicted_iteration_time_s", json_real(r->iteration_time_s));
    json_object_set_new(o, "stages", stages_json(r));
    json_t *made = json_object();
    json_object_set_new(made, "model", json_string(model));
    if (model_hash) json_object_set_new(made, "model_hash", json_string(model_hash));
    json_object_set_new(made, "cluster", json_string(c->name));
    char ch[17];
    json_t *cj = st__cluster_to_json(c);
    st__json_hash(cj, ch);
    json_decref(cj);
    json_object_set_new(made, "cluster_hash", json_string(ch));
    json_object_set_new(o, "made_for", made);
    int rc = st__json_write_file(o, path, err);
    json_decref(o);
    return rc;
}
