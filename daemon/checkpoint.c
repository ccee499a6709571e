/* daemon/checkpoint.c: the state txn and its checkpoints, the quiet
 * point, and the restore from the WAL after a failure.
 *
 * The WAL is what makes a batch durable; LMDB is the WAL applied. So the
 * state txn (s->st_txn) stays open across batches and is committed
 * (written and synced by LMDB) only at a checkpoint: every --checkpoint-ms
 * (1 s), after CHECKPOINT_RECORDS records, after a batch that changed the
 * config, before the map grows and at stop; always at a quiet point, when
 * nothing in it is waiting for the WAL. Every LMDB commit is an ordinary
 * synced one, so the file is always a whole checkpoint; a crash loses only
 * what the WAL replays at the next start (recovery starts from the applied
 * LSN, which every batch sets). Reads use the state txn (state_read), and
 * wait for a quiet point while it holds effects not yet durable
 * (state_nondurable).
 *
 * The state txn is lost when a WAL batch whose effects it held fails, or
 * a checkpoint's commit fails: state_restore drops it, reopens the hall
 * from the LMDB file and replays the WAL's durable records into it, as a
 * restart would. When that catch-up fails, nothing is served from the
 * state (reads `unavailable` too) until it succeeds, tried again every
 * second (conn_sweep). On MDB_MAP_FULL the map grows at a quiet point,
 * after a checkpoint, with no txn open.
 *
 * Never: commit the state txn while an effect in it is not durable, grow
 * the map with a write txn open, or replay past the WAL's durable LSN. */
#include "daemon/server_internal.h"
#include "daemon/log.h"
#include "daemon/recovery.h"
#include "daemon/safe_lsn.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#define CHECKPOINT_RECORDS 50000
#define CHECKPOINT_SLOW_MS 250 /* a checkpoint this slow is logged */

/* The txn reads see: the state txn (begun when none is open), or, read-only,
 * the renewed read txn. NULL (and *rc) when LMDB cannot begin one. */
MDB_txn *state_read(server *s, int *rc)
{
    *rc = 0;
    if (s->opt->read_only) {
        *rc = mdb_txn_renew(s->rtxn);
        return *rc ? NULL : s->rtxn;
    }
    if (!s->st_txn && (*rc = mdb_txn_begin(s->st->env, NULL, 0, &s->st_txn)) != 0)
        return NULL;
    return s->st_txn;
}

void state_read_end(server *s, MDB_txn *txn)
{
    if (txn && txn == s->rtxn)
        mdb_txn_reset(s->rtxn);
}

/* Whether the state txn holds effects not yet durable: a batch in flight,
 * or one applied while it flies (pending). */
bool state_nondurable(const server *s)
{
    return s->flushing || s->p_open;
}

/* Doubles LMDB's map (no write txn open). The reused read txn is given
 * back first: a grow that fails reopens the environment (hall_store_grow). */
static int store_grow(server *s)
{
    if (s->rtxn)
        mdb_txn_abort(s->rtxn);
    s->rtxn = NULL;
    int rc = hall_store_grow(s->st);
    if (mdb_txn_begin(s->st->env, NULL, MDB_RDONLY, &s->rtxn) == 0)
        mdb_txn_reset(s->rtxn);
    else
        s->rtxn = NULL;
    return rc;
}

/* The state txn is lost (a failed checkpoint, a failed WAL batch whose
 * effects it held): `why` says how. Reopens the hall from the LMDB file
 * (the config and clock of the last checkpoint), grows the map on
 * MDB_MAP_FULL, and replays the WAL's durable records into LMDB, as a
 * restart would. When that fails, no changes until a restart. */
int state_restore(server *s, int mdb_rc, const char *why)
{
    char err[512] = "";
    if (s->st_txn)
        mdb_txn_abort(s->st_txn);
    s->st_txn = NULL;
    s->ckpt_records = 0;
    s->cfg_dirty = false;
    uv_timer_stop(&s->ckpt_timer);
    char wal_dir[4096];
    snprintf(wal_dir, sizeof wal_dir, "%s/wal", s->opt->data_dir);
    char hall_id[sizeof hall_config_current(s->h)->hall_id];
    snprintf(hall_id, sizeof hall_id, "%s", hall_config_current(s->h)->hall_id);
    /* Never past what is durable: a failed batch's bytes may be in the file. */
    recovery_bounds b = {.upto_lsn = wal_writer_durable_lsn(s->w), .skip_verified = true};
    hall *nh = NULL;
    bool map = false;
    if (mdb_rc == MDB_MAP_FULL && store_grow(s) != 0) {
        snprintf(err, sizeof err, "cannot grow the map past %zu MiB", s->st->map_size >> 20);
        map = true;
    } else if (hall_open(&nh, s->st, err, sizeof err) == 0) {
        hall_close(s->h);
        s->h = *s->hp = nh;
        if (recovery_replay(s->h, s->st, wal_dir, hall_id, NULL, b.upto_lsn ? &b : NULL, err,
                            sizeof err) == 0)
            err[0] = 0;
        else if (strstr(err, "grow the map"))
            map = true;
    }
    if (err[0]) {
        /* The state may now lack acknowledged changes (those after the last
         * checkpoint): neither reads nor changes are served from it. The
         * catch-up is tried again once a second (conn_sweep): a map that can
         * grow again, a log readable again, and the state is served again
         * (changes too, unless the WAL itself failed). */
        if (!s->state_stale) {
            hq_log(HQ_LOG_ERROR,
                   "%s, and the catch-up from the WAL failed: %s; refusing changes and reads "
                   "until it succeeds (tried again every second; the WAL is intact)",
                   why, err);
            s->stale_stopped_changes = !s->wal_failed;
        }
        s->wal_failed = true;
        s->state_stale = true;
        s->stale_rc = mdb_rc;
        s->failed_why = map ? "the state store (LMDB map) is full and cannot grow (see the "
                              "daemon log); nothing is served until it can"
                            : "the state could not catch up from the WAL after a failure (see "
                              "the daemon log); nothing is served until it can";
        return -1;
    }
    hq_log(HQ_LOG_INFO, "%s; %sthe state caught up from the WAL to LSN %" PRIu64, why,
           mdb_rc == MDB_MAP_FULL ? "map grown, " : "", b.upto_lsn);
    if (s->state_stale) {
        s->state_stale = false;
        if (s->stale_stopped_changes && wal_writer_failed(s->w) == 0) {
            s->wal_failed = false;
            hq_log(HQ_LOG_INFO, "taking changes again");
        }
    }
    return 0;
}

/* Commits the state txn: LMDB writes and syncs the batches it holds. Only
 * when all of them are durable. */
int state_checkpoint(server *s)
{
    s->ckpt_due = false;
    s->cfg_dirty = false;
    uv_timer_stop(&s->ckpt_timer);
    if (!s->st_txn)
        return 0;
    safe_lsn_mark safe; /* publishes the commit before this one: docs/DESIGN.md, "Archiving" */
    safe_lsn_before_commit(&safe, s->st, s->st_txn);
    uint64_t t0 = uv_hrtime();
    int rc = mdb_txn_commit(s->st_txn);
    uint64_t ms = (uv_hrtime() - t0) / 1000000;
    if (ms >= CHECKPOINT_SLOW_MS)
        hq_log(HQ_LOG_WARN, "lmdb: a checkpoint of %" PRIu64 " records took %" PRIu64 " ms",
               s->ckpt_records, ms);
    s->st_txn = NULL;
    s->ckpt_records = 0;
    if (rc) {
        char why[200];
        snprintf(why, sizeof why, "lmdb: checkpoint: %s", mdb_strerror(rc));
        return state_restore(s, rc, why);
    }
    safe_lsn_after_commit(&safe, s->opt->data_dir);
    return 0;
}

/* Whether a checkpoint is owed at the next quiet point. */
static bool ckpt_owed(const server *s)
{
    return s->ckpt_due || s->need_room || s->cfg_dirty || s->stopping || !s->opt->checkpoint_ms ||
           s->ckpt_records >= CHECKPOINT_RECORDS;
}

/* Whether to let the batch in flight finish before applying more: what
 * waits for a moment when everything in the state txn is durable. */
bool state_want_quiet(const server *s)
{
    return s->reads_waiting || ckpt_owed(s);
}

/* Everything in the state txn is durable: take a checkpoint when one is
 * owed, make room in the map, re-arm the due timer. Reads that waited run
 * next (the caller pumps them). */
void state_quiet_point(server *s)
{
    bool full = hall_store_nearly_full(s->st);
    uint64_t now = uv_now(&s->loop);
    /* Stuck, a grow is tried once a second at most: a failed one reopens
     * the environment (hall_store_grow). */
    bool may_grow = !s->map_stuck || now - s->grow_tried >= 1000;
    if ((ckpt_owed(s) || full) && state_checkpoint(s) == 0 &&
        (s->need_room == MDB_MAP_FULL || full) && may_grow) {
        s->grow_tried = now;
        /* The map grows with no write txn open. */
        if (store_grow(s) == 0) {
            hq_log(HQ_LOG_INFO, "lmdb: map grown to %zu MiB", s->st->map_size >> 20);
            if (s->map_stuck)
                hq_log(HQ_LOG_INFO, "lmdb: taking changes again");
            s->map_stuck = false;
        } else if (hall_store_nearly_full(s->st)) {
            if (!s->map_stuck)
                hq_log(HQ_LOG_ERROR,
                       "lmdb: the map of %zu MiB is nearly full and cannot grow: refusing "
                       "changes until it can (tried again at each batch)",
                       s->st->map_size >> 20);
            s->map_stuck = true;
        }
    } else if (!full) {
        s->map_stuck = false;
    }
    s->need_room = 0;
    s->reads_waiting = false;
    batch_arm_due(s);
}

static void on_ckpt_timer(uv_timer_t *t)
{
    server *s = t->data;
    if (state_nondurable(s))
        s->ckpt_due = true; /* at the next quiet point */
    else
        state_checkpoint(s);
}

/* A checkpoint checkpoint_ms after the first durable batch since the last
 * one (after_flush). */
void state_ckpt_arm(server *s)
{
    if (s->st_txn && s->opt->checkpoint_ms && !uv_is_active((uv_handle_t *)&s->ckpt_timer))
        uv_timer_start(&s->ckpt_timer, on_ckpt_timer, s->opt->checkpoint_ms, 0);
}
