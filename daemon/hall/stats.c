/* daemon/hall/stats.c: the figures the hall is judged by, kept as they
 * happen (never by scanning the history on a stats call).
 *
 * Per day (the ticket's business day for ticket figures, the local day of
 * the event for case figures), in the `stats` database:
 *   "L" day(4) line       [taken, served, no_show, expired, wait_ms_sum, waits]
 *   "H" day(4) line NUL wait_s(4)   count of first calls that waited wait_s
 *   "W" day(4) window     [served, service_ms_sum]
 *   "C" day(4)            [accepted, instant, notified, refused, delivered]
 *   "R" day(4)            [count, good (4 or 5)]
 *   "D" dept              [in_review, due_soon, overdue]  (live, not per day)
 * The histogram gives the exact nearest-rank p90 without keeping every wait.
 * Records rebuild all of it on replay like any other state.
 *
 * The handlers count here as things happen; the `stats` op reads it all
 * back in stats_read.c. This file calls no handler's file, so tickets,
 * windows and cases can count without a circle. */
#include "daemon/hall/stats.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define KEY_MAX HALL_STATS_KEY_MAX

size_t hall_stats_key(uint8_t *k, char kind, int32_t day, const char *id)
{
    size_t n = 0;
    k[n++] = (uint8_t)kind;
    if (kind != 'D') {
        uint32_t d = (uint32_t)day;
        for (int i = 3; i >= 0; i--, d >>= 8)
            k[n + (size_t)i] = (uint8_t)d;
        n += 4;
    }
    size_t il = id ? strnlen(id, HALL_ID_MAX) : 0;
    if (il) /* no id: memcpy may not take NULL even for 0 bytes */
        memcpy(k + n, id, il);
    return n + il;
}

/* Adds deltas to the counters of an array value (missing ones are 0). */
static int bump(hall *h, MDB_txn *txn, const uint8_t *key, size_t kl, int n, const int64_t *delta)
{
    MDB_val k = {kl, (void *)key}, v;
    int64_t vals[8] = {0};
    int rc = mdb_get(txn, h->st->stats, &k, &v);
    if (rc == 0) {
        msgpack_object o;
        if (hall_unpack(h, &v, &o) != 0)
            return MDB_CORRUPTED;
        for (int i = 0; i < n; i++)
            vals[i] = hall_field_i64(&o, (uint32_t)i);
    } else if (rc != MDB_NOTFOUND) {
        return rc;
    }
    msgpack_packer pk;
    proto_buf_reset(&h->scratch);
    proto_packer_init(&pk, &h->scratch);
    msgpack_pack_array(&pk, (size_t)n);
    for (int i = 0; i < n; i++)
        msgpack_pack_int64(&pk, vals[i] + delta[i]);
    if (h->scratch.oom)
        return ENOMEM;
    v.mv_size = h->scratch.len;
    v.mv_data = h->scratch.p;
    return mdb_put(txn, h->st->stats, &k, &v, 0);
}

int hall_stats_line(hall *h, MDB_txn *txn, int32_t day, const char *line, int field, int64_t delta)
{
    uint8_t k[KEY_MAX];
    int64_t d[6] = {0};
    d[field] = delta;
    return bump(h, txn, k, hall_stats_key(k, 'L', day, line), 6, d);
}

int hall_stats_wait(hall *h, MDB_txn *txn, int32_t day, const char *line, int64_t wait_ms)
{
    uint8_t k[KEY_MAX];
    if (wait_ms < 0)
        wait_ms = 0;
    int64_t d[6] = {0, 0, 0, 0, wait_ms, 1};
    int rc = bump(h, txn, k, hall_stats_key(k, 'L', day, line), 6, d);
    if (rc)
        return rc;
    size_t n = hall_stats_key(k, 'H', day, line);
    k[n++] = 0;
    uint64_t s = (uint64_t)(wait_ms / 1000);
    for (int i = 3; i >= 0; i--, s >>= 8)
        k[n + (size_t)i] = (uint8_t)s;
    int64_t one = 1;
    return bump(h, txn, k, n + 4, 1, &one);
}

int hall_stats_window(hall *h, MDB_txn *txn, int32_t day, const char *window, int64_t service_ms)
{
    uint8_t k[KEY_MAX];
    int64_t d[2] = {1, service_ms < 0 ? 0 : service_ms};
    return bump(h, txn, k, hall_stats_key(k, 'W', day, window), 2, d);
}

int hall_stats_case(hall *h, MDB_txn *txn, int64_t now, int field)
{
    uint8_t k[KEY_MAX];
    int64_t d[5] = {0};
    d[field] = 1;
    return bump(h, txn, k, hall_stats_key(k, 'C', hall_local_day(&h->cfg->cal, now), NULL), 5, d);
}

int hall_stats_rating(hall *h, MDB_txn *txn, int64_t now, int score)
{
    uint8_t k[KEY_MAX];
    int64_t d[2] = {1, score >= 4};
    return bump(h, txn, k, hall_stats_key(k, 'R', hall_local_day(&h->cfg->cal, now), NULL), 2, d);
}

int hall_stats_dept(hall *h, MDB_txn *txn, const char *dept, int64_t in_review, int64_t due_soon,
                    int64_t overdue)
{
    uint8_t k[KEY_MAX];
    int64_t d[3] = {in_review, due_soon, overdue};
    if (!in_review && !due_soon && !overdue)
        return 0;
    return bump(h, txn, k, hall_stats_key(k, 'D', 0, dept), 3, d);
}
