/* daemon/recovery.c: verify the WAL (honouring a fence, repairing a torn
 * tail: wal_recover), make it durable (wal_sync_log), replay into LMDB.
 *
 * The replay commits every REPLAY_TXN_RECORDS records together with the
 * applied LSN, so an interrupted replay resumes where it stopped. On
 * MDB_MAP_FULL the open transaction is aborted, the map doubled, and the
 * scan restarted from the last committed LSN. Whatever stops the scan,
 * no write transaction outlives the replay. */
#include "daemon/recovery.h"
#include "daemon/log.h"
#include "daemon/notify.h"

#include <stdio.h>
#include <string.h>

#define REPLAY_TXN_RECORDS 20000
#define REPLAY_STOP_MAPFULL 1
#define REPLAY_STOP_BOUND 2

typedef struct replay_ctx {
    hall *h;
    hall_store *st;
    MDB_txn *txn;
    uint64_t in_txn, applied, last_lsn;
    const recovery_bounds *b;
    uint64_t visited;
    proto_buf scratch;
    char *err;
    size_t errlen;
    int mdb_rc;
} replay_ctx;

static int commit(replay_ctx *c)
{
    int rc = hall_store_set_applied_lsn(c->st, c->txn, c->last_lsn);
    if (rc == 0)
        rc = mdb_txn_commit(c->txn);
    else
        mdb_txn_abort(c->txn);
    c->txn = NULL;
    if (rc) {
        c->mdb_rc = rc;
        hall_batch_abort(c->h);
        return rc;
    }
    hall_batch_commit(c->h);
    c->applied = c->last_lsn;
    c->in_txn = 0;
    if (!c->b) /* the daemon's start-up: systemd shows how far it is */
        hq_notify("STATUS=recovering: replayed the WAL up to LSN %llu",
                  (unsigned long long)c->applied);
    return 0;
}

static int visit(void *ctx, const wal_record *rec, const wal_pos *pos)
{
    replay_ctx *c = ctx;
    (void)pos;
    if (c->b && ((c->b->upto_lsn && rec->lsn > c->b->upto_lsn) ||
                 (c->b->until_ms && (int64_t)rec->at_ms > c->b->until_ms)))
        return REPLAY_STOP_BOUND;
    if (c->b && c->b->progress && (++c->visited & 0xffff) == 0)
        c->b->progress(c->b->ctx, rec->lsn);
    if (!c->txn) {
        int rc = mdb_txn_begin(c->st->env, NULL, 0, &c->txn);
        if (rc) {
            snprintf(c->err, c->errlen, "lmdb: %s", mdb_strerror(rc));
            c->mdb_rc = rc;
            return -1;
        }
        hall_batch_begin(c->h);
    }
    int mdb_rc = 0;
    if (hall_replay(c->h, c->txn, rec->lsn, (int64_t)rec->at_ms, rec->type, rec->actor_role,
                    rec->actor_id, rec->payload, rec->payload_len, &c->scratch, c->err, c->errlen,
                    &mdb_rc) != 0) {
        mdb_txn_abort(c->txn);
        c->txn = NULL;
        hall_batch_abort(c->h);
        if (mdb_rc == MDB_MAP_FULL) {
            c->mdb_rc = mdb_rc;
            return REPLAY_STOP_MAPFULL;
        }
        return -1;
    }
    c->last_lsn = rec->lsn;
    if (++c->in_txn >= REPLAY_TXN_RECORDS && commit(c) != 0)
        return c->mdb_rc == MDB_MAP_FULL ? REPLAY_STOP_MAPFULL : -1;
    return 0;
}

int recovery_run(hall *h, hall_store *st, const char *wal_dir, const char *hall_id,
                 wal_scan_result *end, char *err, size_t errlen)
{
    wal_scan_options opt = {.dir = wal_dir, .hall_id = hall_id};
    int rc = wal_recover(&opt, NULL, end);
    if (rc != 0) {
        snprintf(err, errlen, "the WAL in %s is damaged: %s", wal_dir,
                 end->message[0] ? end->message : wal_strerror(rc));
        return -1;
    }
    if (end->fenced)
        hq_log(HQ_LOG_WARN, "wal: %s", end->fenced_what);
    if (end->torn)
        hq_log(HQ_LOG_WARN,
               "wal: torn tail in %s at offset %llu (LSN %llu): %s; cut it, a copy is in %s",
               end->torn_at.segment, (unsigned long long)end->torn_at.offset,
               (unsigned long long)end->torn_at.lsn, end->torn_what, end->broken_copy);

    /* Nothing is replayed (and then served) that only the page cache
     * holds: a process killed between its pwrite and its fdatasync left
     * such bytes, and the scan read them. So every segment that may hold
     * a record to replay is synced first (as PostgreSQL's
     * SyncDataDirectory does). */
    uint64_t applied = 0;
    MDB_txn *txn;
    if ((rc = mdb_txn_begin(st->env, NULL, MDB_RDONLY, &txn)) == 0) {
        rc = hall_store_applied_lsn(st, txn, &applied);
        mdb_txn_abort(txn);
    }
    if (rc) {
        snprintf(err, errlen, "lmdb: %s", mdb_strerror(rc));
        return -1;
    }
    char msg[300];
    if ((rc = wal_sync_log(wal_dir, NULL, applied, msg, sizeof msg)) != 0) {
        snprintf(err, errlen,
                 "cannot make the WAL in %s durable before replaying it (%s): what it holds "
                 "may not be on the disk",
                 wal_dir, msg);
        return -1;
    }

    return recovery_catch_up(h, st, wal_dir, hall_id, end, err, errlen);
}

int recovery_catch_up(hall *h, hall_store *st, const char *wal_dir, const char *hall_id,
                      const wal_scan_result *end, char *err, size_t errlen)
{
    return recovery_replay(h, st, wal_dir, hall_id, end, NULL, err, errlen);
}

int recovery_replay(hall *h, hall_store *st, const char *wal_dir, const char *hall_id,
                    const wal_scan_result *end, const recovery_bounds *b, char *err, size_t errlen)
{
    int rc;
    replay_ctx c = {.h = h, .st = st, .err = err, .errlen = errlen, .b = b};
    proto_buf_init(&c.scratch);
    MDB_txn *txn;
    if ((rc = mdb_txn_begin(st->env, NULL, MDB_RDONLY, &txn)) == 0) {
        rc = hall_store_applied_lsn(st, txn, &c.applied);
        mdb_txn_abort(txn);
    }
    if (rc) {
        snprintf(err, errlen, "lmdb: %s", mdb_strerror(rc));
        proto_buf_free(&c.scratch);
        return -1;
    }
    if (end && c.applied > end->last_lsn) {
        snprintf(err, errlen,
                 "the state has applied LSN %llu but the WAL ends at LSN %llu: the WAL is "
                 "missing records (restore it, or start from an empty state)",
                 (unsigned long long)c.applied, (unsigned long long)end->last_lsn);
        proto_buf_free(&c.scratch);
        return -1;
    }
    if (end && end->records && end->first_lsn > c.applied + 1) {
        snprintf(err, errlen,
                 "the WAL starts at LSN %llu but the state has applied only up to LSN %llu: "
                 "segments are missing (restore them from the archive)",
                 (unsigned long long)end->first_lsn, (unsigned long long)c.applied);
        proto_buf_free(&c.scratch);
        return -1;
    }
    uint64_t from = c.applied;
    for (;;) {
        wal_scan_options ro = {.dir = wal_dir,
                               .hall_id = hall_id,
                               .from_lsn = c.applied,
                               .skip_verified = !b || b->skip_verified,
                               .visit = visit,
                               .ctx = &c};
        wal_scan_result res;
        c.mdb_rc = 0;
        c.in_txn = 0;
        err[0] = 0;
        rc = wal_scan(&ro, &res);
        if (rc == REPLAY_STOP_BOUND)
            rc = 0;
        if (rc == 0 && c.txn)
            rc = commit(&c) ? (c.mdb_rc == MDB_MAP_FULL ? REPLAY_STOP_MAPFULL : -1) : 0;
        if (rc == REPLAY_STOP_MAPFULL) {
            if (hall_store_grow(st) != 0) {
                snprintf(err, errlen, "lmdb: cannot grow the map");
                break;
            }
            hq_log(HQ_LOG_INFO, "lmdb: map grown to %zu MiB during replay", st->map_size >> 20);
            continue;
        }
        if (rc != 0 && !err[0])
            snprintf(err, errlen, "replay: %s", res.message[0] ? res.message : wal_strerror(rc));
        if (c.txn) {
            /* The scan stopped (damage after records were visited, a
             * visitor's error): the open write txn must not outlive it,
             * or the next write txn on this thread would wait forever. */
            mdb_txn_abort(c.txn);
            c.txn = NULL;
            hall_batch_abort(h);
        }
        break;
    }
    proto_buf_free(&c.scratch);
    if (rc != 0)
        return -1;
    if (b && b->applied)
        *b->applied = c.applied;
    if (c.applied > from && !(b && b->quiet))
        hq_log(HQ_LOG_INFO, "replayed WAL records %llu..%llu", (unsigned long long)from + 1,
               (unsigned long long)c.applied);
    return 0;
}
