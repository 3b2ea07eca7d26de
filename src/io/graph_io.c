/* graph_io.c: the custom operator-graph JSON (issue 4; format in README, "Custom graphs").
 *
 *   { "name": "wide-resnet-block", "dtype": "bf16",
 *     "tensors": [ {"name": "x", "shape": [32, 256, 56, 56], "input": true},
 *                  {"name": "w1", "shape": [256, 256, 3, 3], "weight": true}, ... ],
 *     "ops": [ {"name": "conv1", "type": "conv", "inputs": ["x", "w1"], "output": "y1"}, ... ] }
 *
 * Operator types are graph.h's; labels, FLOPs and bytes follow from type and shapes unless the
 * operator gives "flops" (forward, whole operator). Checking (shapes across edges, cycles,
 * dangling tensors) is st_graph_check's. */
#include "src/core/core.h"
#include "jsonutil.h"

#include <stdlib.h>
#include <string.h>

#define MAX_GRAPH_OPS 100000
#define MAX_DIM 1000000000000LL /* 1e12 elements along one dimension: far beyond any real tensor */

static int find_tensor(const st_graph *g, const char *name) {
    for (int i = 0; i < g->ntensors; i++)
        if (strcmp(g->t[i].name, name) == 0) return i;
    return -1;
}

static int load_tensor(const json_t *jt, int i, st_dtype dt, const char *path, st_graph *g, st_error *err) {
    static const char *const keys[] = {"name", "shape", "dtype", "weight", "input", NULL};
    char prefix[48];
    snprintf(prefix, sizeof prefix, "tensors[%d]", i);
    if (!json_is_object(jt)) return st_error_set(err, ST_EINVAL, path, prefix, "must be an object");
    int rc = st__json_check_keys(jt, keys, path, prefix, err);
    if (rc < 0) return rc;
    st_gtensor *t = &g->t[i];
    memset(t, 0, sizeof *t);
    t->dtype = dt;
    t->producer = -1;
    const char *name = NULL, *dts = NULL;
    if ((rc = st__json_get_str(jt, "name", &name, path, prefix, err)) < 0) return rc;
    if (rc == 0 || !name[0]) return st_error_set(err, ST_EINVAL, path, prefix, "needs a non-empty \"name\"");
    if (strlen(name) >= sizeof t->name)
        return st_error_set(err, ST_EINVAL, path, prefix, "name '%s' is longer than %zu characters", name, sizeof t->name - 1);
    if (find_tensor(g, name) >= 0) return st_error_set(err, ST_EINVAL, path, prefix, "tensor '%s' is declared twice", name);
    strcpy(t->name, name);
    if ((rc = st__json_get_str(jt, "dtype", &dts, path, prefix, err)) < 0) return rc;
    if (rc == 1 && st_dtype_parse(dts, &t->dtype))
        return st_error_set(err, ST_EINVAL, path, prefix, "dtype '%s' is not one of " ST_DTYPE_NAMES, dts);
    if ((rc = st__json_get_bool(jt, "weight", &t->weight, path, prefix, err)) < 0) return rc;
    if ((rc = st__json_get_bool(jt, "input", &t->input, path, prefix, err)) < 0) return rc;
    if (t->weight && t->input) return st_error_set(err, ST_EINVAL, path, prefix, "cannot be both a weight and an input");
    const json_t *sh = json_object_get(jt, "shape");
    char skey[64];
    snprintf(skey, sizeof skey, "%s.shape", prefix);
    if (!sh) return st_error_set(err, ST_EINVAL, path, skey, "missing (an array of sizes; [] for a scalar)");
    if (!json_is_array(sh)) return st_error_set(err, ST_EINVAL, path, skey, "must be an array of sizes");
    if (json_array_size(sh) > ST_G_MAXDIM)
        return st_error_set(err, ST_EINVAL, path, skey, "has %zu dimensions; at most %d", json_array_size(sh), ST_G_MAXDIM);
    t->ndim = (int)json_array_size(sh);
    for (int d = 0; d < t->ndim; d++) {
        const json_t *v = json_array_get(sh, (size_t)d);
        if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > MAX_DIM)
            return st_error_set(err, ST_EINVAL, path, skey, "dimension %d must be an integer in [1, %lld]", d,
                                (long long)MAX_DIM);
        t->dim[d] = json_integer_value(v);
    }
    return 0;
}

static int load_op(const json_t *jo, int i, const char *path, st_graph *g, st_error *err) {
    static const char *const keys[] = {"name", "type", "inputs", "output", "flops", NULL};
    char prefix[48];
    snprintf(prefix, sizeof prefix, "ops[%d]", i);
    if (!json_is_object(jo)) return st_error_set(err, ST_EINVAL, path, prefix, "must be an object");
    int rc = st__json_check_keys(jo, keys, path, prefix, err);
    if (rc < 0) return rc;
    st_gop *o = &g->ops[i];
    memset(o, 0, sizeof *o);
    o->kernels_fwd = o->kernels_bwd = 1;
    const char *name = NULL, *type = NULL, *out = NULL;
    if ((rc = st__json_get_str(jo, "name", &name, path, prefix, err)) < 0) return rc;
    if (rc == 0 || !name[0]) return st_error_set(err, ST_EINVAL, path, prefix, "needs a non-empty \"name\"");
    if (strlen(name) >= sizeof o->name)
        return st_error_set(err, ST_EINVAL, path, prefix, "name '%s' is longer than %zu characters", name, sizeof o->name - 1);
    strcpy(o->name, name);
    if ((rc = st__json_get_str(jo, "type", &type, path, prefix, err)) < 0) return rc;
    if (rc == 0 || st_gop_type_parse(type, &o->type)) {
        char list[256] = "";
        for (int k = 0; k < ST_GOP_COUNT; k++) {
            strcat(list, k ? ", " : "");
            strcat(list, st_gop_type_name((st_gop_type)k));
        }
        return st_error_set(err, ST_EINVAL, path, prefix, "\"type\" %s%s%s must be one of %s", rc ? "'" : "",
                            rc ? type : "missing", rc ? "'" : "", list);
    }
    static const st_opclass cls[ST_GOP_COUNT] = {ST_OPC_GEMM,      ST_OPC_ELEMWISE, ST_OPC_NORM,     ST_OPC_SOFTMAX,
                                                 ST_OPC_ATTENTION, ST_OPC_EMBED,    ST_OPC_LOSS,     ST_OPC_GEMM,
                                                 ST_OPC_ELEMWISE,  ST_OPC_ELEMWISE, ST_OPC_ELEMWISE, ST_OPC_ELEMWISE};
    o->cls = cls[o->type];
    /* a graph file does not say which matmuls are linear layers: under dtype fp8 all with weights
     * (class gemm) run in fp8, as strata priced every graph before it told them apart */
    o->quant = o->cls == ST_OPC_GEMM;
    const json_t *ins = json_object_get(jo, "inputs");
    char ikey[64];
    snprintf(ikey, sizeof ikey, "%s.inputs", prefix);
    if (!json_is_array(ins) || json_array_size(ins) < 1 || json_array_size(ins) > ST_G_MAXIN)
        return st_error_set(err, ST_EINVAL, path, ikey, "must be an array of 1 to %d tensor names", ST_G_MAXIN);
    o->nin = (int)json_array_size(ins);
    for (int k = 0; k < o->nin; k++) {
        const json_t *v = json_array_get(ins, (size_t)k);
        if (!json_is_string(v)) return st_error_set(err, ST_EINVAL, path, ikey, "entry %d must be a tensor name", k);
        int t = find_tensor(g, json_string_value(v));
        if (t < 0) return st_error_set(err, ST_EINVAL, path, ikey, "unknown tensor '%s'", json_string_value(v));
        o->in[k] = t;
    }
    if ((rc = st__json_get_str(jo, "output", &out, path, prefix, err)) < 0) return rc;
    if (rc == 0) return st_error_set(err, ST_EINVAL, path, prefix, "needs an \"output\" tensor name");
    if ((o->out = find_tensor(g, out)) < 0) return st_error_set(err, ST_EINVAL, path, prefix, "unknown output tensor '%s'", out);
    if ((rc = st__json_get_num(jo, "flops", 0, 1e21, &o->fwd_flops, path, prefix, err)) < 0) return rc;
    return 0;
}

int st_graph_load(const char *path, st_graph *g, st_error *err) {
    static const char *const top[] = {"name", "dtype", "tensors", "ops", NULL};
    json_t *root = NULL;
    memset(g, 0, sizeof *g);
    int rc = st__json_load_file(path, &root, err);
    if (rc) return rc;
    if (!json_is_object(root)) {
        rc = st_error_set(err, ST_EINVAL, path, NULL, "a graph file must hold a JSON object");
        goto out;
    }
    if ((rc = st__json_check_keys(root, top, path, NULL, err)) < 0) goto out;
    const char *name = NULL, *dts = NULL;
    st_dtype dt = ST_DT_BF16;
    if ((rc = st__json_get_str(root, "name", &name, path, NULL, err)) < 0) goto out;
    snprintf(g->name, sizeof g->name, "%s", rc == 1 ? name : "custom");
    st_text_clean(g->name); /* printed as text */
    if ((rc = st__json_get_str(root, "dtype", &dts, path, NULL, err)) < 0) goto out;
    if (rc == 1 && st_dtype_parse(dts, &dt)) {
        rc = st_error_set(err, ST_EINVAL, path, "dtype", "'%s' is not one of " ST_DTYPE_NAMES, dts);
        goto out;
    }
    const json_t *ts = json_object_get(root, "tensors"), *os = json_object_get(root, "ops");
    if (!json_is_array(ts) || json_array_size(ts) < 1) {
        rc = st_error_set(err, ST_EINVAL, path, "tensors", "must be a non-empty array of tensors");
        goto out;
    }
    if (!json_is_array(os) || json_array_size(os) < 1 || json_array_size(os) > MAX_GRAPH_OPS) {
        rc = st_error_set(err, ST_EINVAL, path, "ops", "must be an array of 1 to %d operators", MAX_GRAPH_OPS);
        goto out;
    }
    if (json_array_size(ts) > 4 * MAX_GRAPH_OPS) {
        rc = st_error_set(err, ST_EINVAL, path, "tensors", "more than %d tensors", 4 * MAX_GRAPH_OPS);
        goto out;
    }
    g->t = calloc(json_array_size(ts), sizeof *g->t);
    g->ops = calloc(json_array_size(os), sizeof *g->ops);
    if (!g->t || !g->ops) {
        rc = st_error_set(err, ST_ENOMEM, path, NULL, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < json_array_size(ts); i++) {
        if ((rc = load_tensor(json_array_get(ts, i), (int)i, dt, path, g, err))) goto out;
        g->ntensors++;
    }
    for (size_t i = 0; i < json_array_size(os); i++) {
        if ((rc = load_op(json_array_get(os, i), (int)i, path, g, err))) goto out;
        g->nops++;
    }
    g->repeat = 1;
    g->block_in = g->block_out = -1;
out:
    json_decref(root);
    if (rc) st_graph_free(g);
    return rc;
}
