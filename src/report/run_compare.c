/* run_compare.c: `strata run --compare` (issue 18, "Numbers that must agree"): the program a run
 * executed, simulated on the cluster (and profile) it was lowered for, beside what the run
 * measured: per kind of instruction, for the iteration, and the memory of each rank.
 *
 * Kinds are the executor's (exec.h, st_exec_kind), with its compute split into the GEMMs and the
 * rest (attention, norms, activations, embedding, loss: what cost/ prices as other classes). The
 * simulated side of a kind is the sum of its instructions' durations alone (st_ins.dur_s; a compute
 * instruction's GEMM part is its operators' GEMM share of the lowering's op table), averaged over
 * ranks as the measured side is. A receive the executor measures from its call, so it includes the
 * wait for the sender (the pipeline bubble): its simulated side adds the rank's bubble_s, the
 * simulator's compute-stream idle time waiting on receives. Every measured row, the iteration's
 * too, is the run's kept iteration (st_exec_result.kept_step: the fastest after the first, which
 * pays MPI's connection set-up and the first touches of memory; so a comparison wants --steps 2 or
 * more, and on a machine shared with other processes many more: the fastest is the least
 * disturbed, what `strata profile --cpu`'s fastest windows measure too); the simulated iteration is
 * st_sim_result.iteration_time_s.
 *
 * Beside it, the ranks' run delay in that iteration (the seconds they were runnable but waited for a
 * core, exec.h ST_EXEC_RUN_DELAY_S): a reader sees how much a shared machine disturbed the row.
 *
 * Memory: measured, the executor's heap high-water mark and the peak RSS (exec.h, st_exec_result
 * .stats); predicted, the simulator's peak (base bytes plus the lowering's alloc/free in the
 * simulated order) and the in-order arena (st_exec_arena_bytes). The lowering prices the plan's
 * dtype (16-bit weights and activations, fp32 master weights and Adam moments) while the executor
 * holds everything in fp32 and keeps attention's probabilities, so the two differ by design; the
 * table shows by how much. A run on GPUs (the cuda backend) adds the device memory: the backend's
 * allocations' high-water mark and the GPU's used memory's as the driver reports it. */
#include "src/report/report.h"

#include "exec/exec.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *const row_names[ST_RUNCMP_ROWS] = {
    "gemm", "other compute", "optimizer", "coll tp", "coll dp", "coll pp", "send", "recv (+wait)", "coll cp", "coll ep",
    "iteration"};

/* the row of an instruction (compute goes to "other compute"; its GEMM share is moved apart) */
static int row_of(const st_lowered *l, const st_ins *in) {
    switch (in->kind) {
    /* (optimizer offload's copies of the gradients down and the weights up go with the step, as the run counts them) */
    case ST_INS_COMPUTE:
        return in->phase == ST_PHASE_OPTIMIZER || (in->stream == ST_STREAM_COPY && in->chunk < 0) ? ST_RUNCMP_OPTIMIZER
                                                                                                 : ST_RUNCMP_OTHER;
    case ST_INS_SEND: return ST_RUNCMP_SEND;
    case ST_INS_RECV: return ST_RUNCMP_RECV;
    default: break;
    }
    switch (l->groups[in->group].kind) {
    case ST_GRP_TP: return ST_RUNCMP_COLL_TP;
    case ST_GRP_PP: return ST_RUNCMP_COLL_PP;
    case ST_GRP_CP: return ST_RUNCMP_COLL_CP;
    case ST_GRP_EP: return ST_RUNCMP_COLL_EP;
    default: return ST_RUNCMP_COLL_DP;
    }
}

/* the GEMM share of a compute instruction's duration: its GEMM operators' time over all of its
 * operators' (the lowering scales them alike to the instruction's duration) */
static double gemm_share(const st_lowered *l, const st_ins *in) {
    double g = 0, all = 0;
    for (int k = 0; k < in->nops; k++) {
        const st_lowered_op *o = &l->ops[in->op + k];
        all += o->dur_s;
        if (o->cls == ST_OPC_GEMM) g += o->dur_s;
    }
    return all > 0 ? g / all : 0;
}

int st_runcmp_build(const st_lowered *l, const st_exec_result *r, st_runcmp *out, st_error *err) {
    st_sim_result sim = {0};
    int rc, n = l->nranks;
    memset(out, 0, sizeof *out);
    out->nranks = n;
    out->mem = calloc((size_t)(n > 0 ? n : 1), sizeof *out->mem);
    if (!out->mem) return st_error_set(err, ST_ENOMEM, NULL, NULL, "out of memory");
    if ((rc = st_sim_run(l, 0, NULL, &sim, err))) return rc;
    for (int p = 0; p < n; p++) {
        const st_program *pg = &l->progs[p];
        int rank = pg->rank;
        for (int i = 0; i < pg->n; i++) {
            st_ins in;
            st_program_ins(pg, i, &in);
            int row = row_of(l, &in);
            double g = row == ST_RUNCMP_OTHER ? in.dur_s * gemm_share(l, &in) : 0;
            out->simulated_s[row] += (in.dur_s - g) / n;
            out->simulated_s[ST_RUNCMP_GEMM] += g / n;
        }
        out->simulated_s[ST_RUNCMP_RECV] += sim.ranks[p].bubble_s / n;
        const double *k = r->kind_s + (size_t)rank * ST_EXEC_KINDS, *st = r->stats + (size_t)rank * ST_EXEC_STATS;
        double gemm = st[ST_EXEC_GEMM_S];
        out->measured_s[ST_RUNCMP_GEMM] += gemm / n;
        /* (the GEMM clock runs in recomputes too) */
        out->measured_s[ST_RUNCMP_OTHER] += (k[ST_EXEC_FWD] + k[ST_EXEC_BWD] + k[ST_EXEC_BWD_INPUT] +
                                             k[ST_EXEC_BWD_WEIGHT] + k[ST_EXEC_RECOMPUTE] - gemm) / n;
        out->measured_s[ST_RUNCMP_OPTIMIZER] += k[ST_EXEC_OPTIMIZER] / n;
        out->measured_s[ST_RUNCMP_COLL_TP] += k[ST_EXEC_COLL_TP] / n;
        out->measured_s[ST_RUNCMP_COLL_DP] += k[ST_EXEC_COLL_DP] / n;
        out->measured_s[ST_RUNCMP_COLL_PP] += k[ST_EXEC_COLL_PP] / n;
        out->measured_s[ST_RUNCMP_SEND] += k[ST_EXEC_SEND] / n;
        out->measured_s[ST_RUNCMP_RECV] += k[ST_EXEC_RECV] / n;
        out->measured_s[ST_RUNCMP_COLL_CP] += k[ST_EXEC_COLL_CP] / n;
        out->measured_s[ST_RUNCMP_COLL_EP] += k[ST_EXEC_COLL_EP] / n;
        out->run_delay_max_s = fmax(out->run_delay_max_s, st[ST_EXEC_RUN_DELAY_S]);
        out->run_delay_mean_s += st[ST_EXEC_RUN_DELAY_S] / n;
        st_runcmp_mem *m = &out->mem[rank];
        m->rank = r->row_rank ? r->row_rank[rank] : rank;
        m->heap_peak_bytes = st[ST_EXEC_HEAP_PEAK_BYTES];
        m->rss_peak_bytes = st[ST_EXEC_RSS_PEAK_BYTES];
        m->sim_peak_bytes = sim.ranks[p].memory_peak_bytes;
        m->arena_bytes = st_exec_arena_bytes(pg);
        m->device_peak_bytes = st[ST_EXEC_DEVICE_PEAK_BYTES];
        m->device_used_peak_bytes = st[ST_EXEC_DEVICE_USED_PEAK_BYTES];
        out->device |= m->device_peak_bytes > 0;
    }
    out->measured_s[ST_RUNCMP_ITERATION] = r->iteration_s[r->kept_step];
    out->kept_step = r->kept_step;
    out->simulated_s[ST_RUNCMP_ITERATION] = sim.iteration_time_s;
    st_sim_result_destroy(&sim);
    return 0;
}

void st_runcmp_destroy(st_runcmp *c) {
    free(c->mem);
    c->mem = NULL;
}

/* simulated / measured - 1, in %; NAN where the measured time is below the clock's use (a call over
 * one rank, 1-rank collectives: microseconds whose ratio means nothing) */
#define MIN_MEASURED_S 1e-5
static double err_pct(const st_runcmp *c, int row) {
    double m = c->measured_s[row];
    return m >= MIN_MEASURED_S ? 100 * (c->simulated_s[row] / m - 1) : NAN;
}

void st_runcmp_text(FILE *f, const st_runcmp *c) {
    fprintf(f, "\nmeasured vs simulated (the same program; ms per rank, mean over ranks, step %d: %s)\n",
            c->kept_step + 1, c->kept_step ? "the fastest after the first" : "the only one"); /* (kept 0: --steps 1) */
    fprintf(f, "  %-14s %11s %11s %8s\n", "kind", "measured", "simulated", "error");
    for (int i = 0; i < ST_RUNCMP_ROWS; i++) {
        if (i == ST_RUNCMP_ITERATION)
            fprintf(f, "  %-14s %11.3f %11.3f", "iteration", 1e3 * c->measured_s[i], 1e3 * c->simulated_s[i]);
        else if (c->measured_s[i] == 0 && c->simulated_s[i] == 0)
            continue;
        else
            fprintf(f, "  %-14s %11.3f %11.3f", row_names[i], 1e3 * c->measured_s[i], 1e3 * c->simulated_s[i]);
        double e = err_pct(c, i);
        if (isnan(e)) fprintf(f, " %8s\n", "-");
        else fprintf(f, " %+7.1f%%\n", e);
    }
    fprintf(f, "  (recv includes the wait for the sender; in that iteration the ranks waited %.3f ms for a core,\n"
               "   %.3f ms at most: what other processes, or ranks sharing a core, took from the measurement)\n",
            1e3 * c->run_delay_mean_s, 1e3 * c->run_delay_max_s);
    fprintf(f, "\nmemory per rank (MiB): measured heap high-water and peak RSS; predicted by the simulator and\n"
               "the in-order arena (the lowering prices the plan's dtype; the executor holds fp32)\n");
    if (c->device)
        fprintf(f, "(device: the backend's GPU allocations' high-water mark; used: the GPU's, as the driver says)\n");
    fprintf(f, "  %4s %10s %10s %10s %10s", "rank", "heap", "rss", "simulated", "arena");
    fprintf(f, c->device ? " %10s %10s\n" : "\n", "device", "used");
    for (int r = 0; r < c->nranks; r++) {
        const st_runcmp_mem *m = &c->mem[r];
        fprintf(f, "  %4d %10.2f %10.2f %10.2f %10.2f", m->rank, m->heap_peak_bytes / 1048576.0,
                m->rss_peak_bytes / 1048576.0, m->sim_peak_bytes / 1048576.0, m->arena_bytes / 1048576.0);
        if (!c->device) fputc('\n', f);
        else if (m->device_used_peak_bytes > 0)
            fprintf(f, " %10.2f %10.2f\n", m->device_peak_bytes / 1048576.0, m->device_used_peak_bytes / 1048576.0);
        else fprintf(f, " %10.2f %10s\n", m->device_peak_bytes / 1048576.0, "-");
    }
}

/* the JSON keys of the rows: the names with "_" for " " and without "(+wait)" */
static void key_of(int row, char *buf, size_t n) {
    snprintf(buf, n, "%s", row_names[row]);
    char *p = strstr(buf, " (");
    if (p) *p = 0;
    for (p = buf; *p; p++)
        if (*p == ' ') *p = '_';
}

void st_runcmp_json(FILE *f, const st_runcmp *c) {
    char key[32];
    fputs(",\n \"compare\": {\"measured_s\": {", f);
    for (int i = 0; i < ST_RUNCMP_ROWS; i++) {
        key_of(i, key, sizeof key);
        fprintf(f, "%s\"%s\": %.17g", i ? ", " : "", key, c->measured_s[i]);
    }
    fputs("},\n  \"simulated_s\": {", f);
    for (int i = 0; i < ST_RUNCMP_ROWS; i++) {
        key_of(i, key, sizeof key);
        fprintf(f, "%s\"%s\": %.17g", i ? ", " : "", key, c->simulated_s[i]);
    }
    fprintf(f, "},\n  \"run_delay_s\": {\"mean\": %.17g, \"max\": %.17g}", c->run_delay_mean_s, c->run_delay_max_s);
    double e = err_pct(c, ST_RUNCMP_ITERATION);
    if (isnan(e)) fputs(",\n  \"iteration_error\": null,\n  \"memory\": [", f);
    else fprintf(f, ",\n  \"iteration_error\": %.17g,\n  \"memory\": [", e / 100);
    for (int r = 0; r < c->nranks; r++) {
        const st_runcmp_mem *m = &c->mem[r];
        fprintf(f,
                "%s\n   {\"rank\": %d, \"heap_peak_bytes\": %.17g, \"rss_peak_bytes\": %.17g, "
                "\"simulated_peak_bytes\": %.17g, \"arena_bytes\": %.17g",
                r ? "," : "", m->rank, m->heap_peak_bytes, m->rss_peak_bytes, m->sim_peak_bytes, m->arena_bytes);
        if (c->device) fprintf(f, ", \"device_peak_bytes\": %.17g, \"device_used_peak_bytes\": ", m->device_peak_bytes);
        if (c->device && m->device_used_peak_bytes > 0) fprintf(f, "%.17g", m->device_used_peak_bytes);
        else if (c->device) fputs("null", f);
        fputc('}', f);
    }
    fputs("]}", f);
}
