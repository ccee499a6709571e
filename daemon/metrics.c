/* daemon/metrics.c: counters and their Prometheus text (metrics.h).
 *
 * Names follow Prometheus's conventions: a `hallq_` prefix, base units
 * (`_seconds`, `_bytes`), `_total` on counters; label values come from
 * our own tables (op names, error codes, roles), never from a client, so
 * their number is bounded. Rendering reads the gauges of the moment: the
 * connections (a walk of s->conns), the feed's subscribers, the WAL's
 * LSNs and files, the free disk. */
#include "daemon/metrics.h"
#include "daemon/http.h"
#include "daemon/server_internal.h"

#include <dirent.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

static const double sync_le[METRICS_SYNC_BUCKETS] = {
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 10};

void metrics_answer(metrics *m, const hall_op_def *def, proto_err code)
{
    unsigned op = def ? (unsigned)def->op : HALL_OP__COUNT;
    if (op <= HALL_OP__COUNT && (unsigned)code < PROTO_E__COUNT)
        m->answers[op][code]++;
}

void metrics_sync_begin(metrics *m)
{
    m->sync_t0 = uv_hrtime();
}

void metrics_sync_end(metrics *m, uint64_t records)
{
    double secs = (double)(uv_hrtime() - m->sync_t0) / 1e9;
    int b = 0;
    while (b < METRICS_SYNC_BUCKETS && secs > sync_le[b])
        b++;
    m->sync_bucket[b]++;
    m->sync_count++;
    m->sync_sum += secs;
    b = 0;
    while (b < METRICS_BATCH_BUCKETS && records > (1ull << b))
        b++;
    m->batch_bucket[b]++;
    m->batch_count++;
    m->batch_sum += records;
}

static void put(proto_buf *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(proto_buf *out, const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n > 0)
        proto_buf_append(out, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
}

static void head(proto_buf *out, const char *name, const char *type, const char *help)
{
    put(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* The bytes of the WAL's files (its segments). */
static uint64_t wal_bytes(const char *data_dir)
{
    char dir[4096], path[4400];
    snprintf(dir, sizeof dir, "%s/wal", data_dir);
    DIR *d = opendir(dir);
    uint64_t sum = 0;
    if (!d)
        return 0;
    struct dirent *e;
    struct stat st;
    while ((e = readdir(d)) != NULL) {
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (e->d_name[0] != '.' && stat(path, &st) == 0 && S_ISREG(st.st_mode))
            sum += (uint64_t)st.st_size;
    }
    closedir(d);
    return sum;
}

void metrics_render(server *s, proto_buf *out)
{
    const metrics *m = &s->metrics;
    static const char *const lname[3] = {"tcp", "unix", "http"};
    uint64_t conns[3][HALL_ROLE__COUNT + 1] = {{0}};
    for (conn *c = s->conns; c; c = c->next) {
        int l = c->l == &s->tcp ? 0 : c->l == &s->unix_ ? 1 : 2;
        int r = c->authed ? (int)c->actor.role : HALL_ROLE__COUNT;
        conns[l][r]++;
    }
    head(out, "hallq_connections", "gauge",
         "Connections open, by listener and role (http: requests in flight and event streams)");
    for (int l = 0; l < 3; l++)
        for (int r = 1; r <= HALL_ROLE__COUNT; r++)
            put(out, "hallq_connections{listener=\"%s\",role=\"%s\"} %" PRIu64 "\n", lname[l],
                r == HALL_ROLE__COUNT ? "none" : hall_role_name((hall_role)r), conns[l][r]);
    head(out, "hallq_http_connections", "gauge", "HTTP connections open");
    put(out, "hallq_http_connections %u\n", http_open_connections(s));
    head(out, "hallq_http_connections_refused_total", "counter",
         "HTTP connections closed at once: over limits.max_connections");
    put(out, "hallq_http_connections_refused_total %" PRIu64 "\n", m->http_refused);
    head(out, "hallq_http_requests_total", "counter", "HTTP requests received");
    put(out, "hallq_http_requests_total %" PRIu64 "\n", m->http_requests);
    head(out, "hallq_http_errors_total", "counter",
         "HTTP requests refused before any op ran, by code");
    for (int c = 1; c < PROTO_E__COUNT; c++)
        if (m->http_errors[c])
            put(out, "hallq_http_errors_total{code=\"%s\"} %" PRIu64 "\n",
                proto_err_name((proto_err)c), m->http_errors[c]);

    head(out, "hallq_requests_total", "counter",
         "Requests answered (every listener), by op and code (ok or the error)");
    for (unsigned op = 0; op <= HALL_OP__COUNT; op++)
        for (int c = 0; c < PROTO_E__COUNT; c++)
            if (m->answers[op][c]) {
                const hall_op_def *d = op < HALL_OP__COUNT ? hall_op_get((hall_op)op) : NULL;
                put(out, "hallq_requests_total{op=\"%s\",code=\"%s\"} %" PRIu64 "\n",
                    d ? d->name : "-", proto_err_name((proto_err)c), m->answers[op][c]);
            }

    head(out, "hallq_batch_records", "histogram", "WAL records per durable batch");
    uint64_t cum = 0;
    for (int b = 0; b < METRICS_BATCH_BUCKETS; b++) {
        cum += m->batch_bucket[b];
        put(out, "hallq_batch_records_bucket{le=\"%llu\"} %" PRIu64 "\n", 1ull << b, cum);
    }
    put(out, "hallq_batch_records_bucket{le=\"+Inf\"} %" PRIu64 "\n", m->batch_count);
    put(out, "hallq_batch_records_sum %" PRIu64 "\n", m->batch_sum);
    put(out, "hallq_batch_records_count %" PRIu64 "\n", m->batch_count);

    head(out, "hallq_wal_sync_seconds", "histogram",
         "Time to write and fdatasync a batch (thread pool, until its answers may go)");
    cum = 0;
    for (int b = 0; b < METRICS_SYNC_BUCKETS; b++) {
        cum += m->sync_bucket[b];
        put(out, "hallq_wal_sync_seconds_bucket{le=\"%g\"} %" PRIu64 "\n", sync_le[b], cum);
    }
    put(out, "hallq_wal_sync_seconds_bucket{le=\"+Inf\"} %" PRIu64 "\n", m->sync_count);
    put(out, "hallq_wal_sync_seconds_sum %.6f\n", m->sync_sum);
    put(out, "hallq_wal_sync_seconds_count %" PRIu64 "\n", m->sync_count);

    uint64_t last = s->w ? wal_writer_last_lsn(s->w) : s->ro_lsn;
    uint64_t durable = s->w ? wal_writer_durable_lsn(s->w) : s->ro_lsn;
    head(out, "hallq_wal_last_lsn", "gauge", "LSN of the last WAL record appended");
    put(out, "hallq_wal_last_lsn %" PRIu64 "\n", last);
    head(out, "hallq_wal_durable_lsn", "gauge", "LSN of the last WAL record synced");
    put(out, "hallq_wal_durable_lsn %" PRIu64 "\n", durable);
    head(out, "hallq_wal_bytes", "gauge", "Bytes of the WAL's segment files");
    put(out, "hallq_wal_bytes %" PRIu64 "\n", wal_bytes(s->opt->data_dir));
    head(out, "hallq_checkpoint_lag_records", "gauge",
         "Durable WAL records not yet checkpointed into LMDB");
    put(out, "hallq_checkpoint_lag_records %" PRIu64 "\n", s->ckpt_records);
    char wal_dir[4096];
    uint64_t free_b = 0;
    snprintf(wal_dir, sizeof wal_dir, "%s/wal", s->opt->data_dir);
    if (wal_disk_free(wal_dir, &free_b) == 0) {
        head(out, "hallq_disk_free_bytes", "gauge", "Free bytes on the WAL's file system");
        put(out, "hallq_disk_free_bytes %" PRIu64 "\n", free_b);
    }
    head(out, "hallq_subscribers", "gauge", "Event subscribers (TCP, Unix and HTTP streams)");
    put(out, "hallq_subscribers %u\n", s->feed.n_subs);
    head(out, "hallq_changes_refused", "gauge",
         "1 while changes are refused until a restart (the WAL or the state failed)");
    put(out, "hallq_changes_refused %d\n", s->wal_failed ? 1 : 0);
}
