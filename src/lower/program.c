/* program.c: what every interpreter of the per-rank program format (program.h) shares: reading an
 * instruction of a program that shares another's (under its renames) and freeing a lowering. */
#include "src/lower/program.h"

#include <stdlib.h>
#include <string.h>

const char *const st_stream_names[ST_STREAMS] = {"compute", "p2p", "dp", "copy", "gather"};

void st_lowered_destroy(st_lowered *l) {
    if (!l) return;
    /* (a lowering that ran out of memory may have its counts set and an array not allocated) */
    for (int i = 0; l->progs && i < l->nranks; i++) {
        if (l->progs[i].cap >= 0 && !l->progs[i].like) free(l->progs[i].ins);
        free(l->progs[i].renames);
    }
    for (int i = 0; l->blocks && i < l->nblocks; i++) free(l->blocks[i]);
    free(l->blocks);
    for (int i = 0; l->groups && i < l->ngroups; i++) free(l->groups[i].ranks);
    free(l->progs);
    free(l->groups);
    free(l->links);
    free(l->routes);
    free(l->hops);
    free(l->ops);
    memset(l, 0, sizeof *l);
}

int32_t st_program_rename(const st_program *pg, st_rename_what what, int32_t v) {
    int lo = 0, hi = pg->like ? pg->nrenames : 0;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        const st_rename *x = &pg->renames[mid];
        if (x->what < (int32_t)what || (x->what == (int32_t)what && x->from < v))
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < (pg->like ? pg->nrenames : 0) && pg->renames[lo].what == (int32_t)what && pg->renames[lo].from == v
               ? pg->renames[lo].to
               : v;
}

void st_program_ins(const st_program *pg, int i, st_ins *out) {
    *out = pg->ins[i];
    if (!pg->like) return;
    if (out->kind == ST_INS_COLL) out->group = st_program_rename(pg, ST_RENAME_GROUP, out->group);
    if (out->kind == ST_INS_SEND || out->kind == ST_INS_RECV) out->peer = st_program_rename(pg, ST_RENAME_PEER, out->peer);
    if (out->kind != ST_INS_COMPUTE && out->route >= 0) out->route = st_program_rename(pg, ST_RENAME_ROUTE, out->route);
}

