/* daemon/metrics.h: the counters behind GET /metrics (Prometheus's text
 * exposition format, docs/PROTOCOL.md "The HTTP face"). They are kept
 * where things happen (conn.c: answers; batch.c: batches and syncs;
 * http.c: the HTTP listener) and written out by metrics_render, which also
 * reads the gauges (connections, subscribers, the WAL, the disk) then.
 * Loop thread only; the server holds one (s->metrics). */
#ifndef HALLQ_METRICS_H
#define HALLQ_METRICS_H

#include "daemon/hall/hall.h"
#include "proto/proto.h"

#include <stdint.h>

#define METRICS_BATCH_BUCKETS 14 /* records per batch: 1, 2, 4 ... 8192 */
#define METRICS_SYNC_BUCKETS 14  /* seconds: 0.0001 ... 10 */

typedef struct metrics {
    /* Answers sent, by op (HALL_OP__COUNT: no op known) and code. */
    uint64_t answers[HALL_OP__COUNT + 1][PROTO_E__COUNT];
    /* Histograms: per-bucket counts (not cumulative), sum and count. */
    uint64_t batch_bucket[METRICS_BATCH_BUCKETS + 1];
    uint64_t batch_count, batch_sum;
    uint64_t sync_bucket[METRICS_SYNC_BUCKETS + 1];
    uint64_t sync_count;
    double sync_sum;
    uint64_t sync_t0; /* uv_hrtime() when the batch in flight began its write */
    /* The HTTP listener: requests, errors it answered itself (no op ran),
     * connections refused over max_connections. */
    uint64_t http_requests;
    uint64_t http_errors[PROTO_E__COUNT];
    uint64_t http_refused;
} metrics;

struct server;

/* An answer went out (conn_pump): its op (NULL: none known) and code. */
void metrics_answer(metrics *m, const hall_op_def *def, proto_err code);
/* A batch of `records` begins its write and sync; ... it is durable. */
void metrics_sync_begin(metrics *m);
void metrics_sync_end(metrics *m, uint64_t records);
/* Appends the exposition text for s to out (out->oom on failure). */
void metrics_render(struct server *s, proto_buf *out);

#endif
