/* plan_io.c: the plan JSON (DESIGN.md, "Plan: inline spec and JSON"): loading, saving and the
 * canonical JSON of a plan's keys.
 *
 * A saved plan holds its format name and version, the canonical inline spec (for people), the GPU
 * count, every key of st_plan, and the name and content hash of the model and cluster it was made
 * for. Loading checks format, version and the GPU count, rejects unknown keys, and accepts the
 * model/cluster/spec entries without using them (the command line names the model and cluster).
 * A file without "attention" (written before strata had the key, when it priced attention unfused)
 * gets the caller's value, st_plan_defaults' flash: the key's default, as for an inline spec that
 * does not name it; such a file meant for the 2021-22 unfused pricing needs "attention": "unfused".
 * "overlap_param_gather", "fp8_param_gather", "tp_overlap" and "pp_partition" are written only when on
 * (a file without them means off, their default), so that the files of plans that leave them off read
 * as before the keys existed;
 * "cp_comm" likewise only when not p2p, its default (a file without it gets p2p).
 *
 * Invariants: load starts from the caller's plan (st_plan_defaults first) and writes it back only
 * when the whole file was accepted; save then load gives back the same plan fields (given bits
 * aside: load marks the keys it read, as a user-written file would); seeds beyond int64 are
 * written as decimal strings so that every uint64 survives.
 */
#include "jsonutil.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char *const plan_keys[] = {
    "format", "version", "spec", "gpus", "model", "cluster", "tp", "pp", "dp", "cp", "ep", "vp", "mbs", "gbs", "seq",
    "sp", "recompute", "zero", "offload", "offload_optimizer", "offload_params", "offload_activations", "dtype",
    "schedule", "attention", "overlap_grad_reduce", "grad_bytes", "stage_layers", "stage_tp", "dp_batches", "dp_batches_note",
    "seed", "overlap_param_gather", "fp8_param_gather", "tp_overlap", "pp_partition", "cp_comm", "kernels", NULL};

/* A flag: true/false or the integers 0/1. 1 present, 0 absent, <0 error. */
static int get_flag(const json_t *o, const char *key, int *out, const char *file, st_error *err) {
    json_t *v = json_object_get(o, key);
    if (!v) return 0;
    if (json_is_boolean(v)) {
        *out = json_is_true(v);
        return 1;
    }
    if (json_is_integer(v) && (json_integer_value(v) == 0 || json_integer_value(v) == 1)) {
        *out = (int)json_integer_value(v);
        return 1;
    }
    return st_error_set(err, ST_EINVAL, file, key, "expected true, false, 0 or 1");
}

static int get_i(const json_t *o, const char *key, int64_t lo, int64_t hi, int *out, const char *file,
                 st_error *err) {
    int64_t x;
    int rc = st__json_get_int(o, key, lo, hi, &x, file, NULL, err);
    if (rc == 1) *out = (int)x;
    return rc;
}

#define GET_ENUM(key, type, parse, choices, outp)                                                  \
    do {                                                                                           \
        const char *s_ = NULL;                                                                     \
        type v_;                                                                                   \
        rc = st__json_get_str(root, key, &s_, path, NULL, err);                                    \
        if (rc < 0) goto out;                                                                      \
        if (rc == 1) {                                                                             \
            if (parse(s_, &v_) != 0) {                                                             \
                rc = st_error_set(err, ST_EINVAL, path, key, "unknown value '%s' (expected %s)", s_, choices); \
                goto out;                                                                          \
            }                                                                                      \
            *(outp) = v_;                                                                          \
        }                                                                                          \
    } while (0)

#define CHECK(call)                                                                                \
    do {                                                                                           \
        rc = (call);                                                                               \
        if (rc < 0) goto out;                                                                      \
    } while (0)

/* tp*pp*dp*cp (with stage_tp: the sum of the stages' tp for tp*pp), saturating just above ST_MAX_GPUS so the
 * product cannot overflow. */
static int64_t plan_gpus(const st_plan *p) {
    int64_t tps = 0; /* entries are at most ST_MAX_GPUS (load_list), at most ST_MAX_STAGES of them */
    for (int i = 0; i < p->nstage_tp; i++) tps += p->stage_tp[i];
    int tpp = p->nstage_tp ? (int)(tps > ST_MAX_GPUS ? (int64_t)ST_MAX_GPUS + 1 : tps) : p->tp;
    const int d[4] = {tpp, p->nstage_tp ? 1 : p->pp, p->dp, p->cp};
    int64_t n = 1;
    for (int i = 0; i < 4; i++) {
        n *= d[i] > 0 ? d[i] : 1;
        if (n > ST_MAX_GPUS) return (int64_t)ST_MAX_GPUS + 1;
    }
    return n;
}

/* An array of 1..cap integers in 1..hi at `key` (stage_layers, dp_batches) into list and *n; absent: *n
 * stays. 0 or an error naming key[i]. */
static int load_list(const json_t *root, const char *key, const char *what, int cap, int64_t hi, int *list, int *n,
                     const char *path, st_error *err) {
    const json_t *v = json_object_get(root, key);
    size_t len = json_is_array(v) ? json_array_size(v) : 0, i;
    json_t *e;
    if (!v) return 0;
    if (!json_is_array(v) || len < 1 || len > (size_t)cap)
        return st_error_set(err, ST_EINVAL, path, key, "expected an array of 1 to %d %s", cap, what);
    json_array_foreach(v, i, e) {
        char ekey[40];
        snprintf(ekey, sizeof ekey, "%s[%zu]", key, i);
        if (!json_is_integer(e)) return st_error_set(err, ST_EINVAL, path, ekey, "expected a positive integer");
        json_int_t x = json_integer_value(e);
        if (x < 1 || x > hi)
            return st_error_set(err, ST_EINVAL, path, ekey, "%lld is out of range (allowed 1..%lld)", (long long)x,
                                (long long)hi);
        list[i] = (int)x;
    }
    *n = (int)len;
    return 0;
}

static int load_seed(const json_t *root, const char *path, uint64_t *seed, st_error *err) {
    json_t *v = json_object_get(root, "seed");
    int64_t x;
    int rc;

    if (json_is_string(v)) { /* seeds past int64 are written as decimal strings */
        const char *s = json_string_value(v);
        char *end;
        unsigned long long u;
        errno = 0;
        u = strtoull(s, &end, 10);
        if (!s[0] || *end || errno || s[0] == '-' || s[0] == '+' || s[0] == ' ')
            return st_error_set(err, ST_EINVAL, path, "seed", "expected a non-negative integer, got '%s'", s);
        *seed = (uint64_t)u;
        return 1;
    }
    rc = st__json_get_int(root, "seed", 0, INT64_MAX, &x, path, NULL, err);
    if (rc == 1) *seed = (uint64_t)x;
    return rc;
}

void st__json_origin(const json_t *v, char *name, size_t n, char hash[17]) {
    name[0] = hash[0] = '\0';
    if (!v) return;
    const char *s = json_string_value(json_object_get(v, "name")), *h = json_string_value(json_object_get(v, "hash"));
    if (s) snprintf(name, n, "%s", s);
    if (h) snprintf(hash, 17, "%s", h);
}

int st__plan_check_format(const json_t *root, const char *path, st_error *err) {
    const char *fmt = NULL;
    int64_t x;
    int rc = st__json_get_str(root, "format", &fmt, path, NULL, err);
    if (rc < 0) return rc;
    if (rc == 1 && strcmp(fmt, ST_PLAN_FORMAT) != 0)
        return st_error_set(err, ST_EINVAL, path, "format", "'%s' is not a strata plan (expected \"%s\")", fmt,
                            ST_PLAN_FORMAT);
    rc = st__json_get_int(root, "version", INT64_MIN, INT64_MAX, &x, path, NULL, err);
    if (rc < 0) return rc;
    if (rc == 1 && x != ST_PLAN_FORMAT_VERSION)
        return st_error_set(err, ST_EINVAL, path, "version", "plan format version %lld is not supported (expected %d)",
                            (long long)x, ST_PLAN_FORMAT_VERSION);
    return 0;
}

int st_plan_load(const char *path, st_plan *out, st_error *err) {
    int rc;
    json_t *root = NULL, *v;
    const char *fmt = NULL;
    int64_t x, gpus = 0;
    st_plan *p = NULL;

    CHECK(st__json_load_file(path, &root, err));
    if (!json_is_object(root)) {
        rc = st_error_set(err, ST_EINVAL, path, NULL, "expected a JSON object (a plan)");
        goto out;
    }
    if (json_object_get(root, "stages") || json_object_get(root, "search")) {
        rc = st_error_set(err, ST_EINVAL, path, "stages",
                          "an operator-level plan (strata plan --search ilp): strata estimate and strata sim take it, "
                          "this command takes a hybrid plan (tp, pp, dp, ...)");
        goto out;
    }
    CHECK(st__json_check_keys(root, plan_keys, path, NULL, err));
    p = malloc(sizeof *p); /* st_plan holds ST_MAX_STAGES stage sizes: keep it off the stack */
    if (!p) {
        rc = st_error_set(err, ST_ENOMEM, path, NULL, "out of memory");
        goto out;
    }
    *p = *out;

    CHECK(st__plan_check_format(root, path, err));
    CHECK(st__json_get_str(root, "spec", &fmt, path, NULL, err)); /* informational */
    v = json_object_get(root, "model");
    if (v && !json_is_object(v)) {
        rc = st_error_set(err, ST_EINVAL, path, "model", "expected an object {name, hash}");
        goto out;
    }
    st__json_origin(v, p->for_model, sizeof p->for_model, p->for_model_hash);
    v = json_object_get(root, "cluster");
    if (v && !json_is_object(v)) {
        rc = st_error_set(err, ST_EINVAL, path, "cluster", "expected an object {name, hash}");
        goto out;
    }
    st__json_origin(v, p->for_cluster, sizeof p->for_cluster, p->for_cluster_hash);
    CHECK(st__json_get_int(root, "gpus", 1, ST_MAX_GPUS, &gpus, path, NULL, err));

    CHECK(get_i(root, "tp", 1, ST_MAX_GPUS, &p->tp, path, err));
    if (rc == 1) p->given |= ST_GIVEN_TP;
    CHECK(get_i(root, "pp", 1, ST_MAX_GPUS, &p->pp, path, err));
    CHECK(get_i(root, "dp", 1, ST_MAX_GPUS, &p->dp, path, err));
    if (rc == 1) p->given |= ST_GIVEN_DP;
    CHECK(get_i(root, "cp", 1, ST_MAX_GPUS, &p->cp, path, err));
    CHECK(get_i(root, "ep", 1, ST_MAX_GPUS, &p->ep, path, err));
    CHECK(get_i(root, "vp", 1, ST_MAX_GPUS, &p->vp, path, err));
    CHECK(st__json_get_int(root, "mbs", 1, 1 << 30, &p->mbs, path, NULL, err));
    CHECK(st__json_get_int(root, "gbs", 1, 1 << 30, &p->gbs, path, NULL, err));
    if (rc == 1) p->given |= ST_GIVEN_GBS;
    CHECK(st__json_get_int(root, "seq", 1, ST_MAX_SEQ, &p->seq, path, NULL, err));
    if (rc == 1) p->given |= ST_GIVEN_SEQ;
    CHECK(get_flag(root, "sp", &p->sp, path, err));
    GET_ENUM("recompute", st_recompute, st_recompute_parse, "none, selective, full or op", &p->recompute);
    CHECK(get_i(root, "zero", 0, 3, &p->zero, path, err));
    GET_ENUM("offload", st_offload, st_offload_parse, "none, optimizer or params", &p->offload);
    CHECK(st__json_get_num(root, "offload_optimizer", 0, 1, &p->offload_optimizer, path, NULL, err));
    CHECK(st__json_get_num(root, "offload_params", 0, 1, &p->offload_params, path, NULL, err));
    CHECK(st__json_get_num(root, "offload_activations", 0, 1, &p->offload_activations, path, NULL, err));
    GET_ENUM("dtype", st_dtype, st_dtype_parse, ST_DTYPE_NAMES, &p->dtype);
    GET_ENUM("schedule", st_schedule, st_schedule_parse, "gpipe, 1f1b, interleaved, zb, zbv or dualpipe", &p->schedule);
    if (rc == 1) p->given |= ST_GIVEN_SCHEDULE;
    GET_ENUM("attention", st_attention, st_attention_parse, "flash, unfused, fa2 or cudnn", &p->attention);
    GET_ENUM("cp_comm", st_cp_comm, st_cp_comm_parse, "p2p, all_gather or a2a", &p->cp_comm);
    GET_ENUM("kernels", st_kernels, st_kernels_parse, "fused, eager or compile", &p->kernels);
    CHECK(get_flag(root, "overlap_grad_reduce", &p->overlap_grad_reduce, path, err));
    CHECK(get_flag(root, "overlap_param_gather", &p->overlap_param_gather, path, err));
    CHECK(get_flag(root, "fp8_param_gather", &p->fp8_param_gather, path, err));
    CHECK(get_flag(root, "tp_overlap", &p->tp_overlap, path, err));
    CHECK(get_flag(root, "pp_partition", &p->pp_partition, path, err));
    CHECK(st__json_get_int(root, "grad_bytes", 2, 4, &x, path, NULL, err));
    if (rc == 1) {
        if (x == 3) {
            rc = st_error_set(err, ST_EINVAL, path, "grad_bytes", "must be 2 (16-bit) or 4 (fp32), got 3");
            goto out;
        }
        p->grad_bytes = (int)x;
        p->given |= ST_GIVEN_GRAD;
    }
    CHECK(load_list(root, "stage_layers", "layer counts", ST_MAX_STAGES, ST_MAX_LAYERS, p->stage_layers,
                    &p->nstage_layers, path, err));
    CHECK(load_list(root, "stage_tp", "tensor-parallel degrees", ST_MAX_STAGES, ST_MAX_GPUS, p->stage_tp,
                    &p->nstage_tp, path, err));
    CHECK(load_list(root, "dp_batches", "micro-batch counts", ST_MAX_REPLICAS, 1 << 30, p->dp_batches,
                    &p->ndp_batches, path, err));
    CHECK(load_seed(root, path, &p->seed, err));

    if (gpus > 0 && plan_gpus(p) != gpus) {
        if (p->nstage_tp)
            rc = st_error_set(err, ST_EINVAL, path, "gpus", "the plan uses cp*dp*(sum of stage_tp) = %lld GPUs but "
                              "gpus says %lld", (long long)plan_gpus(p), (long long)gpus);
        else
            rc = st_error_set(err, ST_EINVAL, path, "gpus",
                              "the plan uses tp*pp*dp*cp = %d*%d*%d*%d = %lld GPUs but gpus says %lld", p->tp, p->pp,
                              p->dp, p->cp, (long long)plan_gpus(p), (long long)gpus);
        goto out;
    }
    *out = *p;
    rc = 0;
out:
    free(p);
    json_decref(root);
    return rc;
}

int st_plan_resolve(const char *arg, st_plan *p, st_error *err) {
    struct stat st;
    size_t len;

    if (!arg || !arg[0]) return st_error_set(err, ST_EUSAGE, NULL, "plan", "no plan given");
    if (stat(arg, &st) == 0 && S_ISREG(st.st_mode)) return st_plan_load(arg, p, err);
    /* "plan.json" that does not exist is a missing file, not a malformed spec */
    len = strlen(arg);
    if (!strchr(arg, '=') && len > 5 && strcmp(arg + len - 5, ".json") == 0)
        return st_error_set(err, ST_EIO, arg, NULL, "cannot open: %s", strerror(ENOENT));
    return st_plan_parse_spec(arg, p, err);
}

/* ------------------------------------------------------------ canonical JSON and save */

json_t *st__plan_to_json(const st_plan *p) {
    json_t *o = json_object(), *st = NULL;
    int bad = !o;

    if (bad) goto out;
#define SET(key, val) bad |= json_object_set_new(o, key, val)
    SET("tp", json_integer(p->tp));
    SET("pp", json_integer(p->pp));
    SET("dp", json_integer(p->dp));
    SET("cp", json_integer(p->cp));
    SET("ep", json_integer(p->ep));
    SET("vp", json_integer(p->vp));
    SET("mbs", json_integer(p->mbs));
    /* 0 = "derive from the cluster/model" before st_plan_finalize; leaving it out keeps the
     * output loadable */
    if (p->gbs > 0) SET("gbs", json_integer(p->gbs));
    if (p->seq > 0) SET("seq", json_integer(p->seq));
    SET("sp", json_integer(p->sp ? 1 : 0));
    SET("recompute", json_string(st_recompute_name(p->recompute)));
    SET("zero", json_integer(p->zero));
    SET("offload", json_string(st_offload_name(p->offload)));
    /* only when partial: files of plans without it stay as they were */
    if (p->offload_optimizer > 0) SET("offload_optimizer", json_real(p->offload_optimizer));
    if (p->offload_params > 0) SET("offload_params", json_real(p->offload_params));
    if (p->offload_activations > 0) SET("offload_activations", json_real(p->offload_activations));
    SET("dtype", json_string(st_dtype_name(p->dtype)));
    SET("schedule", json_string(st_schedule_name(p->schedule)));
    SET("attention", json_string(st_attention_name(p->attention)));
    SET("overlap_grad_reduce", json_boolean(p->overlap_grad_reduce));
    /* written only when on, so that files of plans without them stay as they were */
    if (p->overlap_param_gather) SET("overlap_param_gather", json_true());
    if (p->fp8_param_gather) SET("fp8_param_gather", json_true());
    if (p->tp_overlap) SET("tp_overlap", json_true());
    if (p->pp_partition) SET("pp_partition", json_true());
    if (p->cp_comm != ST_CP_P2P) SET("cp_comm", json_string(st_cp_comm_name(p->cp_comm)));
    if (p->kernels != ST_KERN_FUSED) SET("kernels", json_string(st_kernels_name(p->kernels)));
    SET("grad_bytes", json_integer(p->grad_bytes));
    if (p->nstage_layers > 0 && p->nstage_layers <= ST_MAX_STAGES) {
        st = json_array();
        bad |= !st;
        for (int i = 0; st && i < p->nstage_layers; i++)
            bad |= json_array_append_new(st, json_integer(p->stage_layers[i]));
        SET("stage_layers", st);
    }
    if (p->nstage_tp > 0 && p->nstage_tp <= ST_MAX_STAGES) {
        st = json_array();
        bad |= !st;
        for (int i = 0; st && i < p->nstage_tp; i++) bad |= json_array_append_new(st, json_integer(p->stage_tp[i]));
        SET("stage_tp", st);
    }
    if (p->ndp_batches > 0 && p->ndp_batches <= ST_MAX_REPLICAS) {
        st = json_array();
        bad |= !st;
        for (int i = 0; st && i < p->ndp_batches; i++) bad |= json_array_append_new(st, json_integer(p->dp_batches[i]));
        SET("dp_batches", st);
        /* what whoever runs it must do besides the split (informational; the loader skips it) */
        SET("dp_batches_note", json_string("replica r runs dp_batches[r] micro-batches; average the gradients "
                                           "with weights dp_batches[r] / (gbs / mbs), not 1 / dp"));
    }
    if (p->seed <= (uint64_t)INT64_MAX) {
        SET("seed", json_integer((json_int_t)p->seed));
    } else {
        char buf[24];
        snprintf(buf, sizeof buf, "%llu", (unsigned long long)p->seed);
        SET("seed", json_string(buf));
    }
#undef SET
out:
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

json_t *st__json_identity(const char *name, json_t *desc) {
    char hash[17];
    json_t *o;

    if (!desc) return NULL;
    st__json_hash(desc, hash);
    json_decref(desc);
    o = json_pack("{s:s, s:s}", "name", name, "hash", hash);
    return o;
}

int st_plan_save(const st_plan *p, const st_model *m, const st_cluster *c, const char *path, st_error *err) {
    int rc = 0, bad = 0;
    json_t *root = json_object(), *keys = st__plan_to_json(p);
    char spec[512];

    if (!root || !keys) {
        rc = st_error_set(err, ST_ENOMEM, path, NULL, "out of memory");
        goto out;
    }
    st_plan_format_spec(p, spec, sizeof spec);
    bad |= json_object_set_new(root, "format", json_string(ST_PLAN_FORMAT));
    bad |= json_object_set_new(root, "version", json_integer(ST_PLAN_FORMAT_VERSION));
    bad |= json_object_set_new(root, "spec", json_string(spec));
    bad |= json_object_set_new(root, "gpus", json_integer(plan_gpus(p)));
    bad |= json_object_update(root, keys);
    if (m) bad |= json_object_set_new(root, "model", st__json_identity(m->name, st__model_to_json(m)));
    if (c) bad |= json_object_set_new(root, "cluster", st__json_identity(c->name, st__cluster_to_json(c)));
    if (bad) {
        rc = st_error_set(err, ST_ENOMEM, path, NULL, "cannot build the plan JSON (out of memory)");
        goto out;
    }
    rc = st__json_write_file(root, path, err);
out:
    json_decref(keys);
    json_decref(root);
    return rc;
}

int st_plan_origin_note(const st_plan *p, const st_model *m, const st_cluster *c, char *buf, size_t n) {
    char mh[17] = "", ch[17] = "";
    json_t *d = st__model_to_json(m);
    if (d) st__json_hash(d, mh), json_decref(d);
    d = st__cluster_to_json(c);
    if (d) st__json_hash(d, ch), json_decref(d);
    int model_differs = p->for_model_hash[0] && strcmp(p->for_model_hash, mh) != 0;
    int cluster_differs = p->for_cluster_hash[0] && strcmp(p->for_cluster_hash, ch) != 0;
    if (!model_differs && !cluster_differs) return 0;
    snprintf(buf, n, "the plan was made for %s%s%s%s%s, not this %s",
             model_differs ? "model " : "", model_differs ? p->for_model : "",
             model_differs && cluster_differs ? " and " : "", cluster_differs ? "cluster " : "",
             cluster_differs ? p->for_cluster : "",
             model_differs && cluster_differs ? "model and cluster" : model_differs ? "model" : "cluster");
    return 1;
}
