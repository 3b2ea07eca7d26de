/* autoshard_io.c: JSON of `strata plan --search ilp` (--json, --out). The plan file holds what
 * DESIGN.md asks of an ILP plan: per-operator shardings, the pipeline stage boundaries and each
 * stage's device mesh, a format version, and the model and cluster it was made for. */
#include "src/report/report_json.h"

#include <string.h>
#include <sys/stat.h>

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
        json_object_set_new(s, "recompute", json_string(st->recompute ? "full" : "none"));
        json_object_set_new(s, "zero", json_integer(st->zero));
        json_object_set_new(s, "time_per_microbatch_s", json_real(st->time_s));
        json_object_set_new(s, "grad_sync_s", json_real(st->sync_s));
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

static json_t *plan_entry(const st_autoshard_result *r, int fits) {
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
    json_object_set_new(e, "fits", json_boolean(fits));
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
    json_object_set_new(b, "comm", json_real(comm));
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
    json_array_append_new(arr, plan_entry(r, 1));
    json_object_set_new(o, "plans", arr);
    json_object_set_new(o, "evaluated", json_integer((json_int_t)r->evaluated));
    json_object_set_new(o, "ilp_solves", json_integer((json_int_t)r->ilp_solves));
    json_object_set_new(o, "dp_cost_calls", json_integer((json_int_t)r->dp_cost_calls));
    json_object_set_new(o, "search_time_s", json_real(r->search_time_s));
    return st__json_print(f, o, err);
}

int st_out_autoshard_estimate_json(FILE *f, const char *name, const st_cluster *c, const st_autoshard_result *r,
                                   int fits, const st_sim_result *sim, const st_autoshard_result *analytical,
                                   st_error *err) {
    json_t *o = json_object();
    if (!o) return st_error_set(err, ST_ENOMEM, NULL, NULL, "out of memory");
    json_object_set_new(o, "model", json_string(name));
    json_object_set_new(o, "search", json_string("ilp"));
    json_object_set_new(o, "cluster", json_string(c->name));
    json_object_set_new(o, "gpu", json_string(c->gpu.name));
    json_object_set_new(o, "gpu_memory_gib", json_real(c->gpu.memory_bytes / GIB));
    int64_t gpus = 0;
    for (int i = 0; i < r->nstages; i++) gpus += (int64_t)r->stage[i].mesh.nodes * r->stage[i].mesh.gpus;
    json_object_set_new(o, "gpus", json_integer((json_int_t)gpus));
    json_t *pe = plan_entry(r, fits);
    json_object_update(o, pe);
    json_decref(pe);
    json_object_del(o, "rank");
    json_object_set_new(o, "model_flops", json_real(r->model_flops));
    if (sim) {
        json_t *b = st__sim_breakdown_json(sim);
        if (b) json_object_set_new(o, "breakdown_s", b);
        json_t *a = plan_entry(analytical, fits);
        json_object_del(a, "rank");
        json_object_del(a, "stages");
        json_object_set_new(o, "analytical", a);
        json_object_set_new(o, "ranks", st__sim_ranks_json(sim));
        json_object_set_new(o, "events", json_integer((json_int_t)sim->events));
    }
    return st__json_print(f, o, err);
}

int st_autoshard_save(const st_autoshard_result *r, const st_model *m, const char *graph_path, const st_cluster *c,
                      int64_t gbs, int64_t seq, st_dtype dt, const char *path, st_error *err) {
    json_t *o = json_object();
    if (!o) return st_error_set(err, ST_ENOMEM, NULL, NULL, "out of memory");
    char spec[256];
    st_autoshard_spec(r, spec, sizeof spec);
    int64_t gpus = 0;
    for (int i = 0; i < r->nstages; i++) gpus += (int64_t)r->stage[i].mesh.nodes * r->stage[i].mesh.gpus;
    int bad = 0;
#define SET(key, val) bad |= json_object_set_new(o, key, val)
    SET("format", json_string(ST_PLAN_FORMAT));
    SET("version", json_integer(ST_PLAN_FORMAT_VERSION));
    SET("search", json_string("ilp"));
    SET("spec", json_string(spec));
    SET("gpus", json_integer((json_int_t)gpus));
    SET("pp", json_integer(r->nstages));
    if (m) {
        SET("mbs", json_integer((json_int_t)r->mbs));
        SET("gbs", json_integer((json_int_t)gbs));
        SET("seq", json_integer((json_int_t)seq));
    } else {
        SET("microbatches", json_integer((json_int_t)r->microbatches));
    }
    SET("dtype", json_string(st_dtype_name(dt)));
    if (m) SET("attention", json_string(st_attention_name(r->attention)));
    SET("schedule", json_string("1f1b"));
    SET("predicted_iteration_time_s", json_real(r->iteration_time_s));
    SET("stages", stages_json(r));
    if (m) SET("model", st__json_identity(m->name, st__model_to_json(m)));
    if (graph_path) {
        json_t *gj = NULL;
        st_error e;
        if (st__json_load_file(graph_path, &gj, &e) == 0) SET("graph", st__json_identity(r->g->name, gj));
    }
    SET("cluster", st__json_identity(c->name, st__cluster_to_json(c)));
#undef SET
    int rc = bad ? st_error_set(err, ST_ENOMEM, path, NULL, "cannot build the plan JSON (out of memory)")
                 : st__json_write_file(o, path, err);
    json_decref(o);
    return rc;
}

/* ------------------------------------------------------------ loading */

int st__plan_is_ilp(const char *arg) {
    struct stat sb;
    if (!arg || stat(arg, &sb) != 0 || !S_ISREG(sb.st_mode)) return 0;
    json_t *root = NULL;
    st_error e;
    if (st__json_load_file(arg, &root, &e)) return 0; /* the plan loader will say what is wrong */
    int yes = json_is_object(root) && (json_object_get(root, "stages") || json_object_get(root, "search"));
    json_decref(root);
    return yes;
}

static const char *const top_keys[] = {"format", "version", "search", "spec", "gpus", "pp", "mbs", "gbs", "seq",
                                       "microbatches", "dtype", "attention", "schedule", "predicted_iteration_time_s",
                                       "stages", "model", "graph", "cluster", NULL};
static const char *const stage_keys[] = {"layers", "mesh", "ops", "recompute", "zero", "time_per_microbatch_s",
                                         "grad_sync_s", "memory_gib", "ilp", "collectives_per_layer_fwd", NULL};
static const char *const mesh_keys[] = {"nodes", "gpus_per_node", "shape", NULL};
static const char *const op_keys[] = {"split", "role", NULL};

#define CHECK(call)                                                                                \
    do {                                                                                           \
        rc = (call);                                                                               \
        if (rc < 0) goto out;                                                                      \
    } while (0)

static int need(int rc, const char *path, const char *key, st_error *err) {
    if (rc == 0) return st_error_set(err, ST_EINVAL, path, key, "missing");
    return rc;
}

/* one stage of the file into st (first, last, mesh, choice) */
static int load_stage(const json_t *js, size_t i, const char *path, const st_graph *g, const st_cluster *c,
                      st_as_stage *st, st_error *err) {
    char pre[32], key[128];
    int rc;
    snprintf(pre, sizeof pre, "stages[%zu]", i);
    if (!json_is_object(js)) return st_error_set(err, ST_EINVAL, path, pre, "expected an object {layers, mesh, ops}");
    CHECK(st__json_check_keys(js, stage_keys, path, pre, err));
    int L = st_graph_units(g);
    json_t *lay = json_object_get(js, "layers");
    snprintf(key, sizeof key, "%s.layers", pre);
    if (!lay) {
        if (L > 1) return st_error_set(err, ST_EINVAL, path, key, "missing");
        st->first = 0, st->last = L;
    } else {
        if (!json_is_array(lay) || json_array_size(lay) != 2 || !json_is_integer(json_array_get(lay, 0)) ||
            !json_is_integer(json_array_get(lay, 1)))
            return st_error_set(err, ST_EINVAL, path, key, "expected [first, end): two integers");
        json_int_t a = json_integer_value(json_array_get(lay, 0)), b = json_integer_value(json_array_get(lay, 1));
        if (a < 0 || b > L || a >= b)
            return st_error_set(err, ST_EINVAL, path, key, "[%lld, %lld) is not a non-empty range of the %d layers",
                                (long long)a, (long long)b, L);
        st->first = (int)a, st->last = (int)b;
    }
    const char *re = NULL;
    CHECK(st__json_get_str(js, "recompute", &re, path, pre, err));
    if (re && strcmp(re, "none") != 0 && strcmp(re, "full") != 0) {
        snprintf(key, sizeof key, "%s.recompute", pre);
        rc = st_error_set(err, ST_EINVAL, path, key, "unknown value '%s' (expected none or full)", re);
        goto out;
    }
    if (re && strcmp(re, "full") == 0) {
        if (g->block_in < 0) {
            snprintf(key, sizeof key, "%s.recompute", pre);
            rc = st_error_set(err, ST_EINVAL, path, key, "a custom graph has no layers to recompute");
            goto out;
        }
        st->recompute = 1;
    }
    /* the distributed optimizer; files written before it was planned have no key: plain data parallelism */
    int64_t zero = 0;
    CHECK(st__json_get_int(js, "zero", 0, 1, &zero, path, pre, err));
    st->zero = (int)zero;
    /* mesh */
    json_t *mj = json_object_get(js, "mesh");
    snprintf(key, sizeof key, "%s.mesh", pre);
    if (!json_is_object(mj)) return st_error_set(err, ST_EINVAL, path, key, mj ? "expected an object {nodes, gpus_per_node, shape}" : "missing");
    CHECK(st__json_check_keys(mj, mesh_keys, path, key, err));
    int64_t nodes, per;
    char k2[160];
    snprintf(k2, sizeof k2, "%s.nodes", key);
    CHECK(need(st__json_get_int(mj, "nodes", 1, c->nodes, &nodes, path, key, err), path, k2, err));
    snprintf(k2, sizeof k2, "%s.gpus_per_node", key);
    CHECK(need(st__json_get_int(mj, "gpus_per_node", 1, c->gpus_per_node, &per, path, key, err), path, k2, err));
    if (c->gpus_per_node % per || (nodes > 1 && per != c->gpus_per_node)) {
        rc = st_error_set(err, ST_EINVAL, path, key,
                          "%lld node(s) x %lld GPUs is not a sub-mesh of nodes of %lld GPUs (a divisor of a node, or "
                          "whole nodes)",
                          (long long)nodes, (long long)per, (long long)c->gpus_per_node);
        goto out;
    }
    json_t *sh = json_object_get(mj, "shape");
    snprintf(key, sizeof key, "%s.mesh.shape", pre);
    size_t na = json_is_array(sh) ? json_array_size(sh) : 0;
    if (na < 1 || na > 2) {
        rc = st_error_set(err, ST_EINVAL, path, key, "expected 1 or 2 axis sizes, e.g. [8] or [2, 8]");
        goto out;
    }
    int size[2] = {1, 1};
    for (size_t a = 0; a < na; a++) {
        json_t *e = json_array_get(sh, a);
        if (!json_is_integer(e) || json_integer_value(e) < 1 || json_integer_value(e) > nodes * per) {
            rc = st_error_set(err, ST_EINVAL, path, key, "axis %zu: expected a positive integer", a);
            goto out;
        }
        size[a] = (int)json_integer_value(e);
    }
    if ((int64_t)size[0] * size[1] != nodes * per) {
        rc = st_error_set(err, ST_EINVAL, path, key, "the axes hold %lld GPUs, the sub-mesh %lld x %lld = %lld",
                          (long long)size[0] * size[1], (long long)nodes, (long long)per, (long long)(nodes * per));
        goto out;
    }
    st_mesh_init(&st->mesh, c, (int)nodes, (int)per, (int)na, size);
    /* ops */
    json_t *oj = json_object_get(js, "ops");
    snprintf(key, sizeof key, "%s.ops", pre);
    if (!json_is_object(oj)) {
        rc = st_error_set(err, ST_EINVAL, path, key, oj ? "expected an object {operator: {split: [...]}}" : "missing");
        goto out;
    }
    st->choice = calloc((size_t)g->nops, sizeof *st->choice);
    if (!st->choice) {
        rc = st_error_set(err, ST_ENOMEM, path, NULL, "out of memory");
        goto out;
    }
    char *in_scope = calloc((size_t)g->nops, 1);
    if (!in_scope) {
        rc = st_error_set(err, ST_ENOMEM, path, NULL, "out of memory");
        goto out;
    }
    for (int o = 0; o < g->nops; o++) {
        in_scope[o] = st_graph_op_mult(g, o, st->first, st->last) > 0;
        st->choice[o].lab[0] = st->choice[o].lab[1] = '-';
    }
    const char *name;
    json_t *ov;
    rc = 0;
    json_object_foreach(oj, name, ov) {
        int o = -1;
        for (int k = 0; k < g->nops && o < 0; k++)
            if (strcmp(g->ops[k].name, name) == 0) o = k;
        snprintf(key, sizeof key, "%s.ops.%.24s", pre, name);
        if (o < 0) {
            rc = st_error_set(err, ST_EINVAL, path, key, "the graph %s has no operator '%s'", g->name, name);
            break;
        }
        if (!in_scope[o]) {
            rc = st_error_set(err, ST_EINVAL, path, key, "operator '%s' does not run on this stage (layers [%d, %d))",
                              name, st->first, st->last);
            break;
        }
        if (!json_is_object(ov)) {
            rc = st_error_set(err, ST_EINVAL, path, key, "expected an object {split: [...]}");
            break;
        }
        if ((rc = st__json_check_keys(ov, op_keys, path, key, err)) < 0) break;
        json_t *sp = json_object_get(ov, "split");
        snprintf(key, sizeof key, "%s.ops.%.24s.split", pre, name);
        if (!json_is_array(sp) || json_array_size(sp) != na) {
            rc = st_error_set(err, ST_EINVAL, path, key, "expected %zu entr%s (one label or null per mesh axis)", na,
                              na == 1 ? "y" : "ies");
            break;
        }
        st->choice[o].lab[0] = st->choice[o].lab[1] = 0;
        for (size_t a = 0; a < na; a++) {
            json_t *e = json_array_get(sp, a);
            if (json_is_null(e)) continue;
            const char *l = json_string_value(e);
            if (!l || strlen(l) != 1) {
                rc = st_error_set(err, ST_EINVAL, path, key, "axis %zu: expected a one-letter label or null", a);
                break;
            }
            st->choice[o].lab[a] = l[0];
        }
        if (rc) break;
    }
    for (int o = 0; !rc && o < g->nops; o++)
        if (in_scope[o] && st->choice[o].lab[0] == '-') {
            snprintf(key, sizeof key, "%s.ops", pre);
            rc = st_error_set(err, ST_EINVAL, path, key, "operator '%s' runs on this stage but has no split", g->ops[o].name);
        }
    free(in_scope);
out:
    return rc < 0 ? rc : 0;
}

int st_autoshard_load(const char *path, const st_model *m, const st_graph *custom, const st_cluster *c,
                      st_autoshard_opts *o, st_autoshard_result *r, st_as_origin *orig, st_error *err) {
    json_t *root = NULL;
    int rc;
    const char *s;
    memset(r, 0, sizeof *r);
    memset(orig, 0, sizeof *orig);
    st_autoshard_opts_init(o);
    CHECK(st__json_load_file(path, &root, err));
    if (!json_is_object(root)) {
        rc = st_error_set(err, ST_EINVAL, path, NULL, "expected a JSON object (a plan)");
        goto out;
    }
    CHECK(st__json_check_keys(root, top_keys, path, NULL, err));
    CHECK(st__plan_check_format(root, path, err));
    CHECK(st__json_get_str(root, "search", &s, path, NULL, err));
    if (rc == 1 && strcmp(s, "ilp") != 0) {
        rc = st_error_set(err, ST_EINVAL, path, "search", "'%s': only operator-level plans (\"ilp\") have stages", s);
        goto out;
    }
    CHECK(st__json_get_str(root, "spec", &s, path, NULL, err));
    int64_t gpus_key = 0, pp_key = 0;
    CHECK(st__json_get_int(root, "gpus", 1, ST_MAX_GPUS, &gpus_key, path, NULL, err));
    CHECK(st__json_get_int(root, "pp", 1, ST_MAX_STAGES, &pp_key, path, NULL, err));
    CHECK(st__json_get_num(root, "predicted_iteration_time_s", 0, 1e12, &orig->predicted_s, path, NULL, err));
    st__json_origin(json_object_get(root, "model"), orig->model, sizeof orig->model, orig->model_hash);
    st__json_origin(json_object_get(root, "cluster"), orig->cluster, sizeof orig->cluster, orig->cluster_hash);
    st__json_origin(json_object_get(root, "graph"), orig->graph, sizeof orig->graph, orig->graph_hash);
    CHECK(st__json_get_str(root, "dtype", &s, path, NULL, err));
    if (rc == 1 && st_dtype_parse(s, &o->dtype)) {
        rc = st_error_set(err, ST_EINVAL, path, "dtype", "unknown value '%s' (expected " ST_DTYPE_NAMES ")", s);
        goto out;
    }
    /* a model's plan file from before the key was priced with unfused attention, and its shardings
     * name the unfused operators (scores, softmax, context): without the key, unfused */
    o->attention = ST_ATTN_UNFUSED;
    CHECK(st__json_get_str(root, "attention", &s, path, NULL, err));
    if (rc == 1 && st_attention_parse(s, &o->attention)) {
        rc = st_error_set(err, ST_EINVAL, path, "attention", "unknown value '%s' (expected flash, unfused, fa2 or cudnn)", s);
        goto out;
    }
    if (rc == 1 && !m) {
        rc = st_error_set(err, ST_EINVAL, path, "attention", "a custom graph's plan has no attention key (its "
                          "graph says how attention runs)");
        goto out;
    }
    CHECK(st__json_get_str(root, "schedule", &s, path, NULL, err));
    if (rc == 1 && strcmp(s, "1f1b") != 0) {
        rc = st_error_set(err, ST_EINVAL, path, "schedule", "'%s': operator-level plans run 1F1B", s);
        goto out;
    }
    if (m && orig->graph[0] && !orig->model[0]) {
        rc = st_error_set(err, ST_EINVAL, path, "graph", "the plan was made for the custom graph %s: give --graph, not --model",
                          orig->graph);
        goto out;
    }
    if (!m && orig->model[0]) {
        rc = st_error_set(err, ST_EINVAL, path, "model", "the plan was made for model %s: give --model, not --graph",
                          orig->model);
        goto out;
    }
    if (m) {
        if (json_object_get(root, "microbatches")) {
            rc = st_error_set(err, ST_EINVAL, path, "microbatches", "a model's plan gives gbs and mbs instead");
            goto out;
        }
        CHECK(need(st__json_get_int(root, "gbs", 1, 1 << 30, &o->gbs, path, NULL, err), path, "gbs", err));
        CHECK(need(st__json_get_int(root, "mbs", 1, 1 << 20, &o->mbs, path, NULL, err), path, "mbs", err));
        o->seq = m->seq_len;
        CHECK(st__json_get_int(root, "seq", 1, ST_MAX_SEQ, &o->seq, path, NULL, err));
        if (o->gbs % o->mbs) {
            rc = st_error_set(err, ST_EINVAL, path, "mbs", "%lld does not divide gbs %lld", (long long)o->mbs,
                              (long long)o->gbs);
            goto out;
        }
        if ((rc = st_graph_from_model(m, o->mbs, o->seq, o->dtype, o->attention, &r->graph, err))) goto out;
        r->g = &r->graph;
        r->attention = o->attention;
        r->mbs = o->mbs;
        r->microbatches = o->gbs / o->mbs;
    } else {
        for (const char *const *k = (const char *const[]){"gbs", "mbs", "seq", NULL}; *k; k++)
            if (json_object_get(root, *k)) {
                rc = st_error_set(err, ST_EINVAL, path, *k, "a custom graph's plan gives microbatches instead");
                goto out;
            }
        r->microbatches = 1;
        CHECK(st__json_get_int(root, "microbatches", 1, 1 << 20, &r->microbatches, path, NULL, err));
        o->microbatches = r->microbatches;
        r->g = custom;
    }
    json_t *sv = json_object_get(root, "stages");
    size_t ns = json_is_array(sv) ? json_array_size(sv) : 0;
    if (ns < 1 || ns > ST_MAX_STAGES) {
        rc = st_error_set(err, ST_EINVAL, path, "stages", sv ? "expected an array of 1 to %d stages" : "missing",
                          ST_MAX_STAGES);
        goto out;
    }
    /* the layer ranges first: a plan for another model is told as such, not as a stray operator */
    if (st_graph_units(r->g) > 1) {
        json_int_t L = st_graph_units(r->g), at = 0;
        for (size_t i = 0; i < ns; i++) {
            json_t *lay = json_object_get(json_array_get(sv, i), "layers");
            json_t *a = json_array_get(lay, 0), *b = json_array_get(lay, 1);
            if (!json_is_integer(a) || !json_is_integer(b)) continue; /* load_stage says what is wrong */
            char key[48];
            snprintf(key, sizeof key, "stages[%zu].layers", i);
            if (json_integer_value(a) != at || json_integer_value(b) <= at || (i == ns - 1 && json_integer_value(b) != L)) {
                char made[200] = "";
                if (orig->model[0] && m && strcmp(orig->model, m->name) != 0)
                    snprintf(made, sizeof made, " (the plan was made for model %s, not %s)", orig->model, m->name);
                rc = st_error_set(err, ST_EINVAL, path, key,
                                  "[%lld, %lld): the stages must cut the %lld %s into consecutive, non-empty "
                                  "ranges [0, a), [a, b), ..., [z, %lld)%s",
                                  (long long)json_integer_value(a), (long long)json_integer_value(b), (long long)L,
                                  r->g->block_in >= 0 ? "layers" : "segments", (long long)L, made);
                goto out;
            }
            at = json_integer_value(b);
        }
    }
    if (!(r->stage = calloc(ns, sizeof *r->stage))) {
        rc = st_error_set(err, ST_ENOMEM, path, NULL, "out of memory");
        goto out;
    }
    r->nstages = (int)ns;
    int64_t used = 0;
    for (size_t i = 0; i < ns; i++) {
        if ((rc = load_stage(json_array_get(sv, i), i, path, r->g, c, &r->stage[i], err))) goto out;
        used += (int64_t)r->stage[i].mesh.nodes * r->stage[i].mesh.gpus;
    }
    if (pp_key && pp_key != (int64_t)ns) {
        rc = st_error_set(err, ST_EINVAL, path, "pp", "%lld, but the plan has %zu stages", (long long)pp_key, ns);
        goto out;
    }
    if (gpus_key && gpus_key != used) {
        rc = st_error_set(err, ST_EINVAL, path, "gpus", "%lld, but the stages' meshes hold %lld GPUs",
                          (long long)gpus_key, (long long)used);
        goto out;
    }
    rc = 0;
out:
    json_decref(root);
    if (rc) st_autoshard_result_free(r);
    return rc < 0 ? rc : 0;
}
