/* exec.c: the executor's backends by name and its measure pass (exec.h). */
#include "exec/exec.h"

#include <string.h>

static const char *const backend_names[ST_EXEC_COUNT] = {"cpu", "cuda"};

const char *st_exec_backend_name(st_exec_backend b) { return (unsigned)b < ST_EXEC_COUNT ? backend_names[b] : "?"; }

int st_exec_backend_parse(const char *s, st_exec_backend *out) {
    for (int i = 0; i < ST_EXEC_COUNT; i++)
        if (!strcmp(s, backend_names[i])) {
            *out = (st_exec_backend)i;
            return 0;
        }
    return ST_EINVAL;
}

double st_exec_arena_bytes(const st_program *pg) {
    double now = pg->base_bytes, peak = now;
    for (int i = 0; i < pg->n; i++) {
        st_ins in;
        st_program_ins(pg, i, &in);
        now += in.alloc_bytes;
        if (now > peak) peak = now;
        now -= in.free_bytes;
    }
    return peak;
}
