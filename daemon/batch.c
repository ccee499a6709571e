/* daemon/batch.c: the mutation queue and its batches: applying them,
 * writing them to the WAL, answering them once durable.
 *
 * At the end of a loop turn the queue becomes a batch (docs/DESIGN.md,
 * "The durable request path"):
 *
 *   a txn nested in the state txn -> for each request: hall_exec (check,
 *   assign server values, apply) and append its record to the WAL batch ->
 *   commit the nested txn into the state txn -> seal -> write + fdatasync
 *   on the libuv thread pool -> answer.
 *
 * While a batch is written the loop reads on, and the next requests are
 * applied into the pending batch (a group per loop turn), sealed the moment
 * the one before is durable, or held a little longer for the clients that
 * one answered (gcommit.c): applying overlaps syncing, one fdatasync per
 * batch (the WAL's, off the loop). Its answers wait for its own sync. Time-driven records
 * (the day's close...) join the next batch when they fall due (run_due),
 * and a config read on SIGHUP as a record of the system actor
 * (run_reload).
 *
 * A failed write or sync answers the batch in flight and the pending one
 * `unavailable` (the outcome unknown until a restart), drops the state txn
 * and replays the durable WAL into the last checkpoint (state_restore),
 * and stops all mutations until a restart recovers from the log. A
 * request that fails after it changed the txn (its record too large, out
 * of memory) fails alone: the batch runs again without it (batch_drop).
 * On MDB_MAP_FULL the batch is rolled back (txn and WAL batch), and at a
 * quiet point a checkpoint is taken, the map grown with no txn open, and
 * the batch run again at the same time.
 *
 * Never: answer a request before its batch is durable, or keep an effect
 * in the state txn without its record in the WAL batch. */
#include "daemon/server_internal.h"
#include "daemon/hall/events.h"
#include "daemon/log.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { LOG_TOOBIG = -4, LOG_NOMEM = -5, BATCH_REDO = -3, BATCH_STOPPED = -6 };
#define UNKNOWN_OUTCOME                                                                            \
    "the WAL write or sync failed: whether the request took effect is unknown until the server "   \
    "restarts (see the daemon log); a retry with the same idem then is safe"

/* ---- the queue ---- */

static void on_kick(uv_check_t *k)
{
    batch_maybe_start(k->data);
}

static void on_kick_idle(uv_idle_t *i)
{
    (void)i; /* only there so that poll does not block; the check does the work */
}

/* Asks for a batch at the end of this loop turn (after the reads of the
 * turn, so they share one fsync). The idle handle makes the next poll
 * return at once, so a kick made outside the poll phase (in a check, after
 * a batch) is not left waiting for unrelated I/O. */
void batch_kick(server *s)
{
    uv_check_start(&s->kick, on_kick);
    uv_idle_start(&s->kick_idle, on_kick_idle);
}

void batch_enqueue(server *s, req *r)
{
    r->state = REQ_QUEUED;
    r->in_batch = true;
    r->bnext = NULL;
    if (s->q_tail)
        s->q_tail->bnext = r;
    else
        s->q_head = r;
    s->q_tail = r;
    s->q_len++;
    batch_kick(s);
}

/* ---- batches ---- */

static void batch_fail_all(req *head, proto_err code, const char *msg)
{
    for (req *r = head; r; r = r->bnext)
        req_error(r, code, msg);
}

/* Hands the answered batch back to its connections. */
static void batch_release(server *s, req *head)
{
    req *next;
    for (req *r = head; r; r = next) {
        next = r->bnext;
        r->bnext = NULL;
        r->in_batch = false;
        conn *c = r->c;
        if (c->closed) {
            /* The connection went away: unlink and drop the slot. */
            req **pp = &c->head;
            while (*pp && *pp != r)
                pp = &(*pp)->next;
            if (*pp)
                *pp = r->next;
            c->tail = NULL;
            for (req *x = c->head; x; x = x->next)
                c->tail = x;
            c->inflight--;
            req_free(s, r);
            if (c->inflight == 0 && c->handle_gone)
                conn_free(c);
        }
    }
    /* Answered heads, and reads that waited for the batch. */
    for (conn *c = s->conns; c; c = c->next)
        if (c->head &&
            (c->head->state == REQ_NEW || (c->head->state == REQ_DONE && !c->head->in_batch)))
            conn_pump(c);
}

static void on_due(uv_timer_t *t)
{
    server *s = t->data;
    s->due_pending = true;
    batch_maybe_start(s);
}

/* Arms the timer for the next time-driven record (wall clock only; under
 * the manual clock clock.advance brings them). */
void batch_arm_due(server *s)
{
    if (s->opt->manual_clock || s->opt->read_only || s->stopping)
        return;
    int64_t due = INT64_MAX;
    int rc;
    MDB_txn *txn = state_read(s, &rc);
    if (txn) {
        due = hall_next_due_ms(s->h, txn);
        state_read_end(s, txn);
    }
    if (due == INT64_MAX) {
        uv_timer_stop(&s->due_timer);
        return;
    }
    int64_t wait = due - server_wall_ms();
    uv_timer_start(&s->due_timer, on_due, wait > 0 ? (uint64_t)wait : 0, 0);
}

static void on_flush(uv_work_t *w)
{
    server *s = w->data;
    s->flush_rc = wal_writer_flush(s->w);
}

static void after_flush(uv_work_t *w, int status);

static void start_flush(server *s, req *head, uint64_t records, bool reload)
{
    uint64_t n = 0;
    for (req *r = head; r; r = r->bnext)
        n++;
    gc_flush_started(s, n, records, s->q_len);
    wal_writer_seal(s->w);
    s->b_clock = hall_clock_ms(s->h); /* this batch's: no later one is applied yet */
    s->b_records = records;
    s->b_reload = reload;
    s->b_head = head;
    s->flushing = true;
    metrics_sync_begin(&s->metrics);
    s->work.data = s;
    if (uv_queue_work(&s->loop, &s->work, on_flush, after_flush) != 0) {
        s->flush_rc = -EIO;
        after_flush(&s->work, 0);
    }
}

/* The pending batch: applied, its records in the WAL writer, written once
 * the disk is free (and no hold is in force). */
static void pending_close(server *s)
{
    s->p_open = false;
    s->p_head = s->p_tail = NULL;
    s->p_records = 0;
    s->p_reload = false;
    s->gc.p_reqs = 0;
}

static void pending_add(server *s, req *head, req *last, uint64_t records, bool reload, int n)
{
    if (!s->p_open) {
        s->p_open = true;
        s->p_head = s->p_tail = NULL;
    }
    if (head) {
        if (s->p_tail)
            s->p_tail->bnext = head;
        else
            s->p_head = head;
        s->p_tail = last;
    }
    s->p_records += records;
    s->p_reload |= reload;
    s->gc.p_reqs += (uint32_t)n;
}

static void flush_pending(server *s)
{
    req *head = s->p_head;
    uint64_t records = s->p_records;
    bool reload = s->p_reload;
    pending_close(s);
    start_flush(s, head, records, reload);
}

static void after_flush(uv_work_t *w, int status)
{
    server *s = w->data;
    req *head = s->b_head;
    s->b_head = NULL;
    s->flushing = false;
    int rc = wal_writer_complete(s->w, status == 0 ? s->flush_rc : -ECANCELED);
    req *pend = NULL;
    if (rc == 0) {
        metrics_sync_end(&s->metrics, s->b_records);
        s->durable_clock = s->b_clock;
        s->ckpt_records += s->b_records;
        if (s->b_reload) {
            hq_log_config_level(hall_config_current(s->h)->log_level);
            hq_log(HQ_LOG_INFO, "config reload (SIGHUP): the new config is in force");
        }
        gc_flush_done(s, head);
        /* The pending batch goes out now, or is held for the connections
         * just answered that will send again at once (gcommit.c). */
        if (s->p_open) {
            if (!s->p_records) {
                pend = s->p_head; /* errors and repeats only: answered now */
                pending_close(s);
            } else if (!gc_should_hold(s)) {
                flush_pending(s);
            }
        }
        feed_dispatch(&s->feed, &s->b_events, wal_writer_durable_lsn(s->w));
        state_ckpt_arm(s);
    } else {
        if (!s->wal_failed)
            hq_log(HQ_LOG_ERROR, "wal: %s; refusing changes until restart",
                   wal_writer_failed_where(s->w));
        s->wal_failed = true;
        s->failed_why = "the WAL cannot be written (see the daemon log); no changes until restart";
        /* A failed write or sync may still have put the records on disk
         * (and at a roll-over the first part is synced into the old
         * segment): the outcome is known only after a restart. */
        batch_fail_all(head, PROTO_E_UNAVAILABLE, UNKNOWN_OUTCOME);
        if (s->p_open) {
            batch_fail_all(s->p_head, PROTO_E_UNAVAILABLE, UNKNOWN_OUTCOME);
            pend = s->p_head;
            pending_close(s);
        }
        proto_buf_reset(&s->b_events);
        /* The state txn held the failed batch: back to what is durable, so
         * that reads go on. */
        state_restore(s, 0, "wal: a batch failed");
    }
    if (!state_nondurable(s) && !s->wal_failed)
        state_quiet_point(s);
    batch_release(s, head);
    if (pend)
        batch_release(s, pend);
    batch_maybe_start(s);
    server_maybe_finish_stop(s);
}

/* Logs a record for a request already applied by hall_exec: 0, -1 (the WAL
 * failed), -2 (another append error), or one that fails this request only
 * (LOG_TOOBIG: the record is larger than the WAL takes; LOG_NOMEM: out of
 * memory packing or keeping it). */
static int log_record(server *s, const hall_request *hr, uint64_t *records)
{
    uint64_t lsn;
    int wrc = hall_record_pack_ev(s->h, hr, &s->result, &s->payload);
    if (wrc == 0)
        wrc = wal_writer_append(s->w, hr->def->rec_type, (uint64_t)hr->now_ms,
                                (uint8_t)hr->actor.role, hr->actor.id, s->payload.p,
                                (uint32_t)s->payload.len, &lsn);
    if (wrc != 0) {
        if (wrc == WAL_E_TOOBIG)
            return LOG_TOOBIG;
        if (wrc == -1 || wrc == -ENOMEM)
            return LOG_NOMEM;
        hq_log(HQ_LOG_ERROR, "wal: append: %s", wal_strerror(wrc));
        return wrc == WAL_E_FAILED ? -1 : -2;
    }
    if (hr->now_ms > s->last_rec_ms)
        s->last_rec_ms = hr->now_ms;
    (*records)++;
    size_t ev_len;
    uint32_t n_ev;
    const uint8_t *ev = hall_events(s->h, &ev_len, &n_ev);
    if (n_ev) {
        uint8_t hd[FEED_EV_HEADER]; /* feed_dispatch's layout */
        hall_be64_put(hd, lsn);
        hall_be64_put(hd + 8, (uint64_t)hr->now_ms); /* the record's at_ms */
        for (int i = 0; i < 4; i++) {
            hd[16 + i] = (uint8_t)(ev_len >> (24 - 8 * i));
            hd[20 + i] = (uint8_t)(n_ev >> (24 - 8 * i));
        }
        size_t mark = s->b_events.len;
        if (!proto_buf_append(&s->b_events, hd, sizeof hd) ||
            !proto_buf_append(&s->b_events, ev, ev_len)) {
            s->b_events.len = mark; /* no half entry */
            s->b_events.oom = false;
            hq_log(HQ_LOG_WARN, "events: out of memory; LSN %" PRIu64 " not pushed live", lsn);
            feed_forget(&s->feed, lsn); /* and not in the ring: catch-ups read the WAL */
        }
    }
    return 0;
}

/* Writes the time-driven records due by `now` (the day's close...), each
 * stamped with its own due time. Returns 0, an LMDB error or -1/-2. */
static int run_due(server *s, int64_t now, uint64_t *records)
{
    hall_request r;
    while (hall_due(s->h, s->b_txn, now, &r)) {
        proto_error e = {0};
        int mdb_rc = 0;
        r.lsn = wal_writer_last_lsn(s->w) + 1;
        /* Overdue (the daemon was down at the time): stamped now-ish, as
         * record times never go back. */
        if (r.now_ms < s->last_rec_ms)
            r.now_ms = s->last_rec_ms;
        int x = hall_exec(s->h, s->b_txn, &r, &s->result, &e, &mdb_rc);
        if (mdb_rc)
            return mdb_rc;
        if (x != HALL_EXEC_RECORD) {
            hq_log(HQ_LOG_ERROR, "%s at %lld failed: %s", r.def->name, (long long)r.now_ms, e.msg);
            return -2;
        }
        int rc = log_record(s, &r, records);
        if (rc)
            return rc == -1 ? -1 : -2;
        if (r.def->op == HALL_OP_DAY_CLOSE)
            hq_log(HQ_LOG_INFO, "day closed at %lld (LSN %llu)", (long long)r.now_ms,
                   (unsigned long long)wal_writer_last_lsn(s->w));
    }
    return 0;
}

/* The config read on SIGHUP, as a record of the system actor. */
static int run_reload(server *s, int64_t now, uint64_t *records)
{
    s->reload_in_batch = false;
    if (!s->reload_text)
        return 0;
    msgpack_packer pk;
    proto_buf_reset(&s->payload);
    proto_packer_init(&pk, &s->payload);
    msgpack_pack_map(&pk, 2);
    proto_pack_str(&pk, "text");
    proto_pack_strn(&pk, s->reload_text, s->reload_len);
    proto_pack_kv_uint(&pk, "rules", HALL_RULES_VERSION);
    if (s->payload.oom)
        return -2;
    msgpack_zone_clear(&s->zone);
    msgpack_object args;
    size_t off = 0;
    if (msgpack_unpack((const char *)s->payload.p, s->payload.len, &off, &s->zone, &args) !=
        MSGPACK_UNPACK_SUCCESS)
        return -2;
    hall_request r = {.def = hall_op_get(HALL_OP_CONFIG),
                      .args = &args,
                      .now_ms = now,
                      .lsn = wal_writer_last_lsn(s->w) + 1};
    r.actor.role = HALL_ROLE_SYSTEM;
    snprintf(r.actor.id, sizeof r.actor.id, "SIGHUP");
    proto_error e = {0};
    int mdb_rc = 0;
    int x = hall_exec(s->h, s->b_txn, &r, &s->result, &e, &mdb_rc);
    if (mdb_rc)
        return mdb_rc;
    if (x == HALL_EXEC_UNDO)
        return -2;
    if (x != HALL_EXEC_RECORD) {
        hq_log(HQ_LOG_ERROR, "config reload (SIGHUP): %s; keeping the config in force", e.msg);
        free(s->reload_text);
        s->reload_text = NULL;
        return 0;
    }
    /* log_record packs s->payload again from r.args, whose strings point
     * into the bytes of s->payload: hand those bytes over to `keep`. */
    proto_buf keep = s->payload;
    proto_buf_init(&s->payload);
    int rc = log_record(s, &r, records);
    proto_buf_free(&keep);
    if (rc)
        return rc == -1 ? -1 : -2;
    s->reload_in_batch = true;
    return 0;
}

static void batch_abort(server *s)
{
    mdb_txn_abort(s->b_txn);
    s->b_txn = NULL;
    hall_batch_abort(s->h);
    wal_writer_rollback_to(s->w, &s->b_mark); /* not the pending batch's earlier groups */
    s->b_events.len = s->b_events_mark;
}

/* A request that failed after hall_exec changed the txn (its record is
 * too large for the WAL, or memory ran out packing it): it is answered with
 * its own error and dropped, the batch's txn and WAL records are undone,
 * and the batch runs again without it (at the same time; nothing of it was
 * answered yet). Each run drops one request at least. */
static int batch_drop(server *s, req *r, proto_err code, const char *msg)
{
    req_error(r, code, msg);
    r->dropped = true;
    batch_abort(s);
    return BATCH_REDO;
}

/* Runs the requests of one batch in a txn nested in the state txn, and
 * commits it there (the WAL batch is not written yet). Returns the LMDB
 * error that aborted it (MDB_MAP_FULL: grow and run again), -1/-2 for the
 * WAL, BATCH_REDO (a request was dropped: run it again), or 0. */
static int batch_apply(server *s, req *head, int64_t now, uint64_t *records)
{
    proto_request rq;
    proto_error e;
    int rc = 0;
    if (!s->st_txn)
        rc = mdb_txn_begin(s->st->env, NULL, 0, &s->st_txn);
    if (rc || (rc = mdb_txn_begin(s->st->env, s->st_txn, 0, &s->b_txn)) != 0)
        return rc;
    const hall_config *cfg_before = hall_config_current(s->h);
    hall_batch_begin(s->h);
    *records = 0;
    s->b_events_mark = s->b_events.len;
    wal_writer_mark(s->w, &s->b_mark);
    if ((rc = run_due(s, now, records)) != 0 || (rc = run_reload(s, now, records)) != 0) {
        batch_abort(s);
        return rc;
    }
    for (req *r = head; r; r = r->bnext) {
        int mdb_rc = 0;
        if (r->dropped)
            continue;
        memset(&e, 0, sizeof e);
        msgpack_zone_clear(&s->zone);
        if (proto_request_decode(&s->zone, r->body.p, r->body.len, &rq, &e) != PROTO_OK) {
            req_error(r, e.code, e.msg);
            continue;
        }
        /* Its record holds its args at least: one that cannot fit is
         * refused before it runs. */
        if (WAL_RECORD_OVERHEAD + (size_t)r->body.len > s->rec_max) {
            req_error(r, PROTO_E_LIMIT, "the request is too large for a WAL record");
            continue;
        }
        hall_request hr = {.def = r->def,
                           .args = rq.args,
                           .actor = r->c->actor,
                           .now_ms = now,
                           .lsn = wal_writer_last_lsn(s->w) + 1};
        int x = hall_exec(s->h, s->b_txn, &hr, &s->result, &e, &mdb_rc);
        if (mdb_rc) {
            batch_abort(s);
            return mdb_rc;
        }
        if (x == HALL_EXEC_UNDO)
            return batch_drop(s, r, e.code, e.msg);
        if (x < 0) {
            req_error(r, e.code, e.msg);
            continue;
        }
        if (x == HALL_EXEC_RECORD) {
            int lrc = log_record(s, &hr, records);
            if (lrc == LOG_TOOBIG)
                return batch_drop(s, r, PROTO_E_LIMIT,
                                  "the request's record is too large for the WAL "
                                  "(wal.segment_bytes)");
            if (lrc == LOG_NOMEM)
                return batch_drop(s, r, PROTO_E_INTERNAL, "out of memory writing the record");
            if (lrc == 0 && r->def->op == HALL_OP_CLOCK_ADVANCE) {
                /* Later requests of the batch take the new time: record
                 * times never go back. Its answer waits for what the new
                 * time triggers. */
                now = hall_clock_ms(s->h);
                proto_buf keep = s->result;
                proto_buf_init(&s->result);
                lrc = run_due(s, now, records);
                proto_buf_free(&s->result);
                s->result = keep;
            }
            if (lrc) {
                /* A record that cannot be logged undoes the whole batch
                 * rather than keep an effect with no record. */
                batch_abort(s);
                return lrc == -1 ? -1 : -2;
            }
        }
        req_ok(r, &s->result);
    }
    if (*records &&
        (rc = hall_store_set_applied_lsn(s->st, s->b_txn, wal_writer_last_lsn(s->w))) != 0) {
        batch_abort(s);
        return rc;
    }
    /* Checked while the config it replaced is still allocated. */
    if (hall_config_current(s->h) != cfg_before)
        s->cfg_dirty = true;
    rc = mdb_txn_commit(s->b_txn); /* into the state txn: memory only */
    s->b_txn = NULL;
    if (rc) {
        hall_batch_abort(s->h);
        wal_writer_rollback_to(s->w, &s->b_mark);
        s->b_events.len = s->b_events_mark;
        return rc;
    }
    hall_batch_commit(s->h);
    return 0;
}

/* A batch that could not be applied (rc from batch_apply): nothing of it
 * was written, and every request not dropped on its own is answered
 * `unavailable`, saying what failed. A full LMDB map or txn fails only this
 * batch (the next one tries to make room again); a failed WAL or another
 * LMDB error stops changes until a restart. */
static void batch_failed(server *s, req *head, int rc)
{
    const char *msg;
    if (rc == MDB_MAP_FULL || rc == MDB_TXN_FULL) {
        if (!s->map_stuck) /* (else logged once when it stuck) */
            hq_log(
                HQ_LOG_ERROR,
                "lmdb: %s: a batch could not be applied (the map is %zu MiB and could not grow); "
                "it was not written, and the next batch tries again",
                mdb_strerror(rc), s->st->map_size >> 20);
        msg = rc == MDB_MAP_FULL ? "the state store (LMDB map) is full and could not grow; the "
                                   "request was not applied (see the daemon log)"
                                 : "the state store's transaction is full; the request was "
                                   "not applied (see the daemon log)";
    } else if (rc == BATCH_STOPPED) {
        msg = s->failed_why;
    } else if (rc == -2) {
        hq_log(HQ_LOG_ERROR, "a batch could not be applied (out of memory or a WAL append "
                             "refused); it was not written");
        msg = "the change could not be applied (see the daemon log); the request was not applied";
    } else if (rc == -1) {
        s->wal_failed = true;
        s->failed_why = "the WAL cannot be written (see the daemon log); no changes until restart";
        msg = "the WAL cannot be written (see the daemon log); the request was not applied";
    } else {
        hq_log(HQ_LOG_ERROR, "lmdb: a batch failed: %s; refusing changes until restart",
               mdb_strerror(rc));
        s->wal_failed = true;
        s->failed_why = "the state store failed (see the daemon log); no changes until restart";
        msg = "the state store failed (see the daemon log); the request was not applied";
    }
    for (req *r = head; r; r = r->bnext)
        if (!r->dropped)
            req_error(r, PROTO_E_UNAVAILABLE, msg);
}

/* Takes the queue (and what time has brought due) as a batch: applied at
 * once, written now when the disk is idle, else pending until the batch in
 * flight is durable. Applying waits instead when state_want_quiet(). */
void batch_maybe_start(server *s)
{
    uv_check_stop(&s->kick);
    uv_idle_stop(&s->kick_idle);
    if (s->wal_failed && !state_nondurable(s) && s->q_head) {
        /* Queued before the failure (while the failing batch was being
         * written): they will never be written; answer them. */
        req *head = s->q_head;
        s->q_head = s->q_tail = NULL;
        batch_fail_all(head, PROTO_E_UNAVAILABLE,
                       "the WAL cannot be written (see the daemon log); the request was not "
                       "applied");
        batch_release(s, head);
        server_maybe_finish_stop(s);
        return;
    }
    /* A held batch goes out once its awaited connections have sent (their
     * requests are applied into it below first) or the hold is over. */
    if (s->gc.holding && !s->q_head && !s->due_pending) {
        if (gc_hold_over(s))
            flush_pending(s);
        return;
    }
    if (s->wal_failed || (s->p_open && s->gc.p_reqs >= BATCH_MAX_REQS) ||
        (!s->q_head && !s->due_pending))
        return;
    if ((s->flushing || s->p_open) && state_want_quiet(s)) {
        if (!s->flushing && gc_hold_over(s))
            flush_pending(s); /* the quiet point comes when it is durable */
        return;               /* after_flush comes back here at the quiet point */
    }
    if (s->map_stuck && !s->flushing) {
        state_quiet_point(s); /* the map may grow now */
        if (s->map_stuck) {
            req *head = s->q_head;
            s->q_head = s->q_tail = NULL;
            s->due_pending = false;
            batch_failed(s, head, MDB_MAP_FULL);
            batch_release(s, head);
            return;
        }
    }
    s->due_pending = false;
    /* Take up to BATCH_MAX_REQS requests off the queue (with the pending
     * batch they join). */
    int room = BATCH_MAX_REQS - (int)s->gc.p_reqs;
    req *head = s->q_head, *last = head;
    int n = head ? 1 : 0;
    while (last && last->bnext && n < room) {
        last = last->bnext;
        n++;
    }
    s->q_head = last ? last->bnext : NULL;
    if (!s->q_head)
        s->q_tail = NULL;
    if (last)
        last->bnext = NULL;
    s->q_len -= (uint32_t)n;

    int64_t now = server_now(s);
    uint64_t records = 0;
    int rc;
    for (int tries = 0;;) {
        rc = batch_apply(s, head, now, &records);
        if (rc == BATCH_REDO)
            continue; /* a request dropped: again without it */
        if ((rc != MDB_MAP_FULL && rc != MDB_TXN_FULL) || tries++ == 8)
            break;
        s->need_room = rc;
        if (s->flushing || s->p_open) {
            /* Room is made at a checkpoint, which waits for the batch in
             * flight and the pending one (a held one goes now): back to
             * the queue's head until then. */
            if (!s->flushing) {
                gc_end_hold(s);
                flush_pending(s);
            }
            hq_log(HQ_LOG_INFO, "lmdb: %s; the batch waits for a checkpoint", mdb_strerror(rc));
            if (last) {
                last->bnext = s->q_head;
                s->q_head = head;
                if (!s->q_tail)
                    s->q_tail = last;
                s->q_len += (uint32_t)n;
            } else {
                s->due_pending = true;
            }
            return;
        }
        size_t map_before = s->st->map_size;
        state_quiet_point(s); /* checkpoint, and the map grows on MDB_MAP_FULL */
        if (s->wal_failed) {
            rc = BATCH_STOPPED; /* the checkpoint failed: failed_why says how */
            break;
        }
        if (rc == MDB_MAP_FULL && s->st->map_size == map_before && tries > 1)
            break; /* the map cannot grow now: try again with the next batch */
    }
    if (rc != 0) {
        batch_failed(s, head, rc);
        batch_release(s, head);
        return;
    }
    bool reload = s->reload_in_batch;
    if (reload) {
        /* The record holds it now. */
        free(s->reload_text);
        s->reload_text = NULL;
        s->reload_in_batch = false;
    }
    if (s->flushing) {
        /* Written when the batch in flight is durable, with whatever else
         * joins it meanwhile. */
        pending_add(s, head, last, records, reload, n);
        return;
    }
    if (s->p_open) {
        /* Held (gcommit.c): these join it; it goes out when the hold is
         * over. */
        pending_add(s, head, last, records, reload, n);
        if (gc_hold_over(s))
            flush_pending(s);
        return;
    }
    if (records == 0) {
        /* Only errors and idem repeats, on durable state. */
        batch_release(s, head);
        if (s->q_head)
            batch_kick(s);
        return;
    }
    if (gc_should_hold(s)) {
        pending_add(s, head, last, records, reload, n);
        return;
    }
    start_flush(s, head, records, reload);
}
