/* traces.h: Chrome/Perfetto traces (traces/): the writer `strata sim --trace` streams through and
 * the one reader that `strata plot timeline` and `strata calibrate` read traces with. Uses core
 * (and Jansson and zlib, to read). */
#ifndef STRATA_TRACES_H
#define STRATA_TRACES_H

#include "src/core/core.h"

struct json_t; /* Jansson's value: only the files that read traces look inside */

typedef struct st_trace st_trace; /* trace sink (traces/chrome.c); NULL = no trace */

/* The streams a trace can name (thread ids 0 .. n - 1; a bit each in a byte beside the process's). */
#define ST_TRACE_MAX_STREAMS 7
/* new; the file is written atomically by st_trace_close. Thread ids below nstreams are streams,
 * named stream_names[tid] (borrowed: must outlive the trace); the others are links (st_trace_thread). */
st_trace *st_trace_open(const char *path, const char *const *stream_names, int nstreams, st_error *err);
/* complete event on (rank, stream) from start to end, with its category and label */
void st_trace_span(st_trace *t, int rank, int stream, double start_s, double end_s, const char *cat,
                   const char *name, int chunk, int mb);
/* flow arrow from (rank_from at t_from) to (rank_to at t_to), e.g. a send to its receive */
void st_trace_flow(st_trace *t, int rank_from, int stream_from, double t_from, int rank_to, int stream_to,
                   double t_to);
/* names thread `tid` (>= ST_STREAMS: a link) of a rank's process */
void st_trace_thread(st_trace *t, int rank, int tid, const char *name);
/* a link busy from start to end with `flows` flows using `utilization` of its capacity; `name` is
 * the flow's label when there is one, else "N flows" */
void st_trace_link(st_trace *t, int rank, int tid, double start_s, double end_s, const char *name, int flows,
                   double utilization);
/* memory counter of a rank */
void st_trace_memory(st_trace *t, int rank, double time_s, double bytes);
/* writes and frees; returns 0 or an error (and leaves no partial file) */
int st_trace_close(st_trace *t, st_error *err);
/* frees without writing anything (the run failed) */
void st_trace_discard(st_trace *t);
/* names a rank's row: "rank N (stage S)", or "(stage S, R replicas)" when it stands for several */
void st_trace_rank(st_trace *t, int rank, int stage, int replicas);


/* ------------------------------------------------------------ reading (traces/reader.c) */

/* Reads a Chrome trace file, plain or gzip-compressed, as JSON: *out a new reference to its root
 * (an object with "traceEvents", or a bare array of events: the caller checks which). 0, ST_EIO
 * (cannot open or read) or ST_EINVAL (not a valid gzip stream, truncated, over 8 GiB decompressed,
 * malformed JSON with line and column), err naming the file. */
int st_trace_load(const char *path, struct json_t **out, st_error *err);

#endif
