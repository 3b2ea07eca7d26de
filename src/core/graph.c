/* graph.c: the tensor-level operator graph's types (core.h, "tensor-level graph"): operator type
 * names and freeing a graph. Building one from a model, deriving what a custom graph leaves out and
 * checking it (igraph) are search/graph.c's; reading one from JSON is src/io/graph_io.c's. */
#include "src/core/core.h"

#include <stdlib.h>
#include <string.h>

static const char *const type_names[ST_GOP_COUNT] = {"matmul", "elementwise", "norm",   "softmax",
                                                     "attention", "embedding", "loss",   "conv",
                                                     "resize",    "concat",    "dispatch", "combine"};

const char *st_gop_type_name(st_gop_type t) { return t < ST_GOP_COUNT ? type_names[t] : "?"; }

int st_gop_type_parse(const char *s, st_gop_type *out) {
    for (int i = 0; i < ST_GOP_COUNT; i++)
        if (strcmp(s, type_names[i]) == 0) {
            *out = (st_gop_type)i;
            return 0;
        }
    return ST_EINVAL;
}

void st_graph_free(st_graph *g) {
    free(g->ops);
    free(g->t);
    free(g->topo);
    free(g->seg);
    free(g->seg_cut);
    g->ops = NULL;
    g->t = NULL;
    g->topo = NULL;
    g->seg = g->seg_cut = NULL;
    g->nsegs = 0;
    g->nops = g->ntensors = 0;
}

double st_gtensor_numel(const st_gtensor *t) {
    double n = 1;
    for (int i = 0; i < t->ndim; i++) n *= (double)t->dim[i];
    return n;
}

