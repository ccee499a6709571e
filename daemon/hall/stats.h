/* daemon/hall/stats.h: counters for the `stats` op, updated by the
 * handlers as things happen (see stats.c for the layout). */
#ifndef HALLQ_HALL_STATS_H
#define HALLQ_HALL_STATS_H

#include "daemon/hall/hall_internal.h"

enum { STAT_TAKEN = 0, STAT_SERVED = 1, STAT_NO_SHOW = 2, STAT_EXPIRED = 3 };
enum {
    STAT_ACCEPTED = 0,
    STAT_INSTANT = 1,
    STAT_NOTIFIED = 2,
    STAT_REFUSED = 3,
    STAT_DELIVERED = 4
};

/* The stats key of a counter: kind, day (but for 'D'), id; into k of
 * HALL_STATS_KEY_MAX bytes. Returns its length. */
#define HALL_STATS_KEY_MAX 64
size_t hall_stats_key(uint8_t *k, char kind, int32_t day, const char *id);

int hall_stats_line(hall *h, MDB_txn *txn, int32_t day, const char *line, int field, int64_t delta);
int hall_stats_wait(hall *h, MDB_txn *txn, int32_t day, const char *line, int64_t wait_ms);
int hall_stats_window(hall *h, MDB_txn *txn, int32_t day, const char *window, int64_t service_ms);
int hall_stats_case(hall *h, MDB_txn *txn, int64_t now, int field);
int hall_stats_rating(hall *h, MDB_txn *txn, int64_t now, int score);
int hall_stats_dept(hall *h, MDB_txn *txn, const char *dept, int64_t in_review, int64_t due_soon,
                    int64_t overdue);
/* The `stats` op (stats_read.c). */
int hall_stats_read(hall *h, MDB_txn *txn, const hall_request *r, msgpack_packer *pk,
                    proto_error *e, int *mdb_rc);

#endif
