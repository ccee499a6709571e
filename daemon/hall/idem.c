/* daemon/hall/idem.c: how long an idem entry lives.
 *
 * hall_exec (hall.c) remembers a mutation with an `idem` key for
 * HALL_IDEM_TTL_MS (24 h) after its request's time, and answers a repeat
 * within that window from the entry. Past it, the entry goes: every record
 * deletes up to IDEM_SWEEP entries whose time lies 24 h or more before its
 * own, oldest first, found through the time index (store.h: idem_at).
 *
 * Invariants: deletions follow record times only, never a clock, so a
 * replay of the log deletes the same entries at the same records and
 * rebuilds the same state. A record adds at most one entry and removes up
 * to IDEM_SWEEP > 1 expired ones, so a backlog (e.g. after a long pause)
 * drains within a few records. An index entry whose idem entry was since
 * replaced (the key used again after it expired) only removes itself.
 *
 * Expiry is a rule of rules version 2 (hall.h): under rules 1 entries were
 * never deleted, so hall_exec does not call hall_idem_expire for records of
 * an older log. The index is kept under every version. */
#include "daemon/hall/hall_internal.h"

#define IDEM_SWEEP 8

/* at(8 BE) + the idem key. */
static size_t index_key(uint8_t *out, const uint8_t *key, size_t klen, int64_t at)
{
    hall_be64_put(out, (uint64_t)at);
    memcpy(out + 8, key, klen);
    return 8 + klen;
}

int hall_idem_index(hall *h, MDB_txn *txn, const uint8_t *key, size_t klen, int64_t at)
{
    uint8_t ik[8 + HALL_IDEM_KEY_MAX];
    MDB_val k = {index_key(ik, key, klen, at), ik}, v = {0, NULL};
    return mdb_put(txn, h->st->idem_at, &k, &v, 0);
}

int hall_idem_expire(hall *h, MDB_txn *txn, int64_t now)
{
    MDB_cursor *c;
    int rc = mdb_cursor_open(txn, h->st->idem_at, &c);
    if (rc)
        return rc;
    for (int n = 0; n < IDEM_SWEEP; n++) {
        MDB_val k, v;
        if ((rc = mdb_cursor_get(c, &k, &v, MDB_FIRST)) != 0)
            break;
        if (k.mv_size <= 8 || k.mv_size > 8 + HALL_IDEM_KEY_MAX) {
            rc = MDB_CORRUPTED;
            break;
        }
        int64_t at = (int64_t)hall_be64_get(k.mv_data);
        if (at > now - HALL_IDEM_TTL_MS)
            break; /* the oldest still answers repeats */
        /* Copied: a value LMDB returns lives only until the next update. */
        uint8_t key[HALL_IDEM_KEY_MAX];
        MDB_val ek = {k.mv_size - 8, key}, ev;
        memcpy(key, (const uint8_t *)k.mv_data + 8, ek.mv_size);
        if ((rc = mdb_cursor_del(c, 0)) != 0)
            break;
        rc = mdb_get(txn, h->st->idem, &ek, &ev);
        msgpack_object o;
        if (rc == 0 && hall_unpack(h, &ev, &o) == 0 && hall_field_i64(&o, 1) == at)
            rc = mdb_del(txn, h->st->idem, &ek, NULL);
        if (rc == MDB_NOTFOUND)
            rc = 0;
        if (rc)
            break;
    }
    mdb_cursor_close(c);
    return rc == MDB_NOTFOUND ? 0 : rc;
}
