/* daemon/feed.c: the events feed.
 *
 * A subscriber gets the events of each record once the record is durable
 * (the batch path hands them over in feed_dispatch), with the record's LSN
 * as seq. A `since` is caught up first, in chunks of half the output cap
 * as the subscriber reads: from the ring of the latest FEED_RING records'
 * events when it holds them, else from the WAL. Live events are not sent
 * to a subscriber while it catches up (the catch-up reaches them), so it
 * sees every event once, in LSN order. Departments see only their own
 * cases' events.
 *
 * Reading the WAL never happens on the loop. A catch-up chunk is a
 * wal_read on the thread pool that starts at a known place: where the
 * subscriber's last chunk stopped, or the LSN -> offset index, a sample
 * every FEED_INDEX_EVERY records, built at start by reading the log off
 * the loop and extended as records become durable. Start-up verified the
 * whole log (CRCs, LSNs, chain) and a durable record is never rewritten,
 * so a read checks each record's CRC and LSN order and skips the chain.
 * The worker packs the subscriber's event frames into a buffer of its own;
 * back on the loop they are appended to the connection's output, unless
 * the connection went (or subscribed again) meanwhile.
 *
 * Bounds: one read per subscriber at a time, FEED_READS_MAX at once (the
 * WAL's own sync needs a pool thread), FEED_READ_BYTES per chunk; a
 * connection may start FEED_WAL_STARTS catch-ups from the WAL per
 * FEED_WAL_WINDOW_MS, a subscribe past that answers `limit`. The index
 * holds one sample per FEED_INDEX_EVERY durable records.
 *
 * Never: read the WAL on the loop, send a subscriber an event twice or out
 * of order, or read past the durable LSN. */
#include "daemon/feed.h"
#include "daemon/hall/events.h"
#include "daemon/hall/store.h"
#include "daemon/log.h"
#include "wal/reader.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One WAL read on the thread pool: a chunk of a subscriber's catch-up, or
 * a step of indexing. Fields are set on the loop before it is queued and
 * read back after it ended. */
struct feed_read {
    uv_work_t work;
    feed *f;
    bool index;    /* a step of indexing (else a catch-up chunk) */
    feed_sub *sub; /* the loop's only: NULL once its subscriber went */
    uint32_t gen;
    feed_filter flt;
    wal_read_options o;
    wal_read_result res;
    int rc;
    size_t budget;
    proto_buf out; /* the subscriber's event frames */
    msgpack_zone z;
    bool oom;
    wal_pos *samples; /* index: places of records with lsn % FEED_INDEX_EVERY == 0 */
    size_t n_samples, cap;
};

static void index_kick(feed *f);
static void read_start(feed *f, feed_sub *sub);

/* ---- packing events (loop and workers) ---- */

static bool event_visible(const feed_filter *flt, const msgpack_object *deps)
{
    if (!flt->dept || deps->via.array.size == 0)
        return true;
    size_t n = strlen(flt->dept_id);
    for (uint32_t i = 0; i < deps->via.array.size; i++) {
        const msgpack_object *d = &deps->via.array.ptr[i];
        if (d->type == MSGPACK_OBJECT_STR && d->via.str.size == n &&
            memcmp(d->via.str.ptr, flt->dept_id, n) == 0)
            return true;
    }
    return false;
}

/* Appends one event frame to ob if the filter lets ev ([topic, deps,
 * data]) through. Its data gets `at_ms`, the time of the record that
 * caused it (from the WAL record's header, so events of logs written
 * before 1.2 have it too; the `ev` a record holds is left as it was, and
 * a replay compares it). */
static void pack_event(const feed_filter *flt, proto_buf *ob, uint64_t seq, uint64_t at_ms,
                       const msgpack_object *ev)
{
    if (ev->type != MSGPACK_OBJECT_ARRAY || ev->via.array.size != 3)
        return;
    const msgpack_object *t = &ev->via.array.ptr[0], *deps = &ev->via.array.ptr[1];
    if (t->type != MSGPACK_OBJECT_STR || deps->type != MSGPACK_OBJECT_ARRAY)
        return;
    int topic = hall_topic_from_name(t->via.str.ptr, t->via.str.size);
    if (topic < 0 || !(flt->topics & (1u << topic)) || !event_visible(flt, deps))
        return;
    msgpack_packer pk;
    size_t off = proto_frame_begin(ob);
    proto_packer_init(&pk, ob);
    msgpack_pack_map(&pk, 3);
    proto_pack_kv_str(&pk, "event", hall_topic_name(topic));
    proto_pack_kv_uint(&pk, "seq", seq);
    proto_pack_str(&pk, "data");
    const msgpack_object *data = &ev->via.array.ptr[2];
    if (data->type == MSGPACK_OBJECT_MAP && !proto_map_get(data, "at_ms")) {
        msgpack_pack_map(&pk, data->via.map.size + 1);
        for (uint32_t i = 0; i < data->via.map.size; i++) {
            msgpack_pack_object(&pk, data->via.map.ptr[i].key);
            msgpack_pack_object(&pk, data->via.map.ptr[i].val);
        }
        proto_pack_kv_uint(&pk, "at_ms", at_ms);
    } else {
        msgpack_pack_object(&pk, *data);
    }
    proto_frame_end(ob, off);
}

/* Packs the n events at p (len bytes) for flt into ob. */
static void pack_events(const feed_filter *flt, proto_buf *ob, uint64_t seq, uint64_t at_ms,
                        const uint8_t *p, size_t len, uint32_t n, msgpack_zone *z)
{
    size_t off = 0;
    for (uint32_t i = 0; i < n; i++) {
        msgpack_object ev;
        msgpack_unpack_return ur = msgpack_unpack((const char *)p, len, &off, z, &ev);
        if (ur != MSGPACK_UNPACK_SUCCESS && ur != MSGPACK_UNPACK_EXTRA_BYTES)
            break;
        pack_event(flt, ob, seq, at_ms, &ev);
    }
    msgpack_zone_clear(z);
}

/* ---- the ring ---- */

/* Keeps one record's events in the ring, dropping the oldest when full
 * (its buffer is reused: no allocation once the ring is warm). */
static void ring_put(feed *f, uint64_t lsn, uint64_t at_ms, const uint8_t *ev, uint32_t len,
                     uint32_t n)
{
    if (!f->ring)
        return;
    feed_ring_slot *slot;
    if (f->ring_len == FEED_RING) {
        slot = &f->ring[f->ring_head];
        f->ring_evicted = slot->lsn;
        f->ring_head = (f->ring_head + 1) % FEED_RING;
    } else {
        slot = &f->ring[(f->ring_head + f->ring_len) % FEED_RING];
        f->ring_len++;
    }
    proto_buf_reset(&slot->ev);
    slot->lsn = lsn;
    slot->at_ms = at_ms;
    slot->n = n;
    if (!proto_buf_append(&slot->ev, ev, len)) {
        /* Out of memory: forget this one and what came before it. */
        f->ring_evicted = lsn;
        slot->n = 0;
    }
}

/* Catches sub up from the ring, which holds every record it misses, until
 * its output reaches the budget (next_lsn then says where to go on) or it
 * is live. */
static void ring_catch_up(feed *f, feed_sub *sub, size_t budget)
{
    msgpack_zone z;
    proto_buf *ob = f->ops->out(sub);
    if (!ob || !msgpack_zone_init(&z, 1024))
        return;
    /* The ring's LSNs increase: find the first slot at or after next_lsn. */
    uint32_t lo = 0, hi = f->ring_len;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (f->ring[(f->ring_head + mid) % FEED_RING].lsn < sub->next_lsn)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (uint32_t i = lo; i < f->ring_len; i++) {
        const feed_ring_slot *slot = &f->ring[(f->ring_head + i) % FEED_RING];
        if (f->ops->out_len(sub) >= budget) {
            sub->next_lsn = slot->lsn;
            msgpack_zone_destroy(&z);
            return;
        }
        pack_events(&sub->flt, ob, slot->lsn, slot->at_ms, slot->ev.p, slot->ev.len, slot->n, &z);
    }
    msgpack_zone_destroy(&z);
    sub->next_lsn = 0; /* the ring holds every durable record's events: live */
}

/* ---- the index ---- */

/* The best place to start reading at `lsn`: the last sample at or before
 * it, or where indexing goes on when that is closer. lsn 0: none. */
static wal_pos index_find(const feed *f, uint64_t lsn)
{
    wal_pos best = {.lsn = 0};
    size_t lo = 0, hi = f->idx_len;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (f->idx[mid].lsn <= lsn)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo)
        best = f->idx[lo - 1];
    if (f->idx_next.lsn && f->idx_next.segment[0] && f->idx_next.lsn <= lsn &&
        f->idx_next.lsn > best.lsn)
        best = f->idx_next;
    return best;
}

/* ---- reads on the thread pool ---- */

static int read_visit(void *ctx, const wal_record *rec, const wal_pos *pos)
{
    feed_read *r = ctx;
    if (r->index) {
        if (rec->lsn % FEED_INDEX_EVERY == 0) {
            if (r->n_samples == r->cap) {
                size_t cap = r->cap ? 2 * r->cap : 64;
                wal_pos *p = realloc(r->samples, cap * sizeof *p);
                if (!p) {
                    r->oom = true;
                    return 1;
                }
                r->samples = p;
                r->cap = cap;
            }
            r->samples[r->n_samples++] = *pos;
        }
        return 0;
    }
    msgpack_object o;
    size_t off = 0;
    msgpack_zone_clear(&r->z);
    if (msgpack_unpack((const char *)rec->payload, rec->payload_len, &off, &r->z, &o) ==
            MSGPACK_UNPACK_SUCCESS &&
        o.type == MSGPACK_OBJECT_MAP) {
        const msgpack_object *ev = proto_map_get(&o, "ev");
        if (ev && ev->type == MSGPACK_OBJECT_ARRAY)
            for (uint32_t i = 0; i < ev->via.array.size; i++)
                pack_event(&r->flt, &r->out, rec->lsn, rec->at_ms, &ev->via.array.ptr[i]);
    }
    if (r->out.oom) {
        r->oom = true;
        return 1;
    }
    return r->out.len >= r->budget;
}

static void read_work(uv_work_t *w)
{
    feed_read *r = w->data;
    if (!msgpack_zone_init(&r->z, 4096)) {
        r->oom = true;
        r->rc = -ENOMEM;
        return;
    }
    r->o.visit = read_visit;
    r->o.ctx = r;
    r->rc = wal_read(&r->o, &r->res);
    msgpack_zone_destroy(&r->z);
}

static void read_free(feed_read *r)
{
    proto_buf_free(&r->out);
    free(r->samples);
    free(r);
}

static void read_done(uv_work_t *w, int status);

static bool read_queue(feed *f, feed_read *r)
{
    r->f = f;
    r->work.data = r;
    if (uv_queue_work(f->loop, &r->work, read_work, read_done) != 0)
        return false;
    f->reads++;
    return true;
}

/* Starts the next step of indexing when one is due and a slot is free. */
static void index_kick(feed *f)
{
    if (!f->wal_dir[0] || f->stopping || f->idx_busy || f->idx_failed ||
        f->reads >= FEED_READS_MAX || f->durable < f->idx_next.lsn)
        return;
    /* After the first pass, a step is worth it once it adds a sample. */
    if (f->idx_ready && f->durable - f->idx_next.lsn + 1 < FEED_INDEX_EVERY)
        return;
    feed_read *r = calloc(1, sizeof *r);
    if (!r)
        return;
    proto_buf_init(&r->out);
    r->index = true;
    r->o.dir = f->wal_dir;
    r->o.from_lsn = f->idx_next.lsn;
    r->o.upto_lsn = f->durable;
    r->o.hint = f->idx_next;
    r->o.max_bytes = FEED_INDEX_BYTES;
    if (!read_queue(f, r)) {
        read_free(r);
        return;
    }
    f->idx_busy = true;
}

static void index_done(feed *f, feed_read *r)
{
    f->idx_busy = false;
    if (r->rc != 0 || r->oom) {
        /* Catch-ups still work, from the samples so far or the start of
         * the segment they need. */
        f->idx_failed = true;
        hq_log(HQ_LOG_WARN, "events: indexing the WAL stopped at LSN %" PRIu64 ": %s",
               r->res.next.lsn,
               r->oom              ? "out of memory"
               : r->res.message[0] ? r->res.message
                                   : wal_strerror(r->rc));
        return;
    }
    if (r->n_samples && f->idx_len + r->n_samples > f->idx_cap) {
        size_t cap = f->idx_cap ? f->idx_cap : 256;
        while (cap < f->idx_len + r->n_samples)
            cap *= 2;
        wal_pos *p = realloc(f->idx, cap * sizeof *p);
        if (!p) {
            f->idx_failed = true;
            hq_log(HQ_LOG_WARN, "events: indexing the WAL stopped: out of memory");
            return;
        }
        f->idx = p;
        f->idx_cap = cap;
    }
    for (size_t i = 0; i < r->n_samples; i++)
        if (!f->idx_len || r->samples[i].lsn > f->idx[f->idx_len - 1].lsn)
            f->idx[f->idx_len++] = r->samples[i];
    f->idx_next = r->res.next;
    if (!f->idx_ready && f->idx_next.lsn > f->idx_goal) {
        f->idx_ready = true;
        hq_log(HQ_LOG_INFO,
               "events: the WAL is indexed up to LSN %" PRIu64 " (%zu samples), in %" PRIu64
               " ms off the loop",
               f->idx_next.lsn - 1, f->idx_len, uv_now(f->loop) - f->idx_t0);
    }
}

/* Starts sub's next WAL read (a slot is free). */
static void read_start(feed *f, feed_sub *sub)
{
    feed_read *r = calloc(1, sizeof *r);
    if (!r) {
        /* Tried again at its next pump. */
        return;
    }
    proto_buf_init(&r->out);
    r->sub = sub;
    r->gen = sub->gen;
    r->flt = sub->flt;
    size_t have = f->ops->out_len(sub);
    r->budget = sub->budget > have ? sub->budget - have : 1;
    r->o.dir = f->wal_dir;
    r->o.from_lsn = sub->next_lsn;
    r->o.upto_lsn = f->durable;
    r->o.hint = sub->cursor.lsn == sub->next_lsn ? sub->cursor : index_find(f, sub->next_lsn);
    r->o.max_bytes = FEED_READ_BYTES;
    if (!read_queue(f, r)) {
        read_free(r);
        return;
    }
    sub->rd = r;
}

static void wait_remove(feed *f, feed_sub *sub)
{
    if (!sub->waiting)
        return;
    feed_sub **pp = &f->wait_head, *prev = NULL;
    while (*pp && *pp != sub) {
        prev = *pp;
        pp = &(*pp)->wnext;
    }
    if (*pp)
        *pp = sub->wnext;
    if (f->wait_tail == sub)
        f->wait_tail = prev;
    sub->wnext = NULL;
    sub->waiting = false;
}

/* Hands free slots to the subscribers waiting, in turn, then indexing. */
static void slots_fill(feed *f)
{
    while (f->reads < FEED_READS_MAX && f->wait_head && !f->stopping) {
        feed_sub *sub = f->wait_head;
        wait_remove(f, sub);
        read_start(f, sub);
        if (!sub->rd)
            break; /* out of memory: it goes on at its next pump */
    }
    index_kick(f);
}

static void read_done(uv_work_t *w, int status)
{
    feed_read *r = w->data;
    feed *f = r->f;
    feed_sub *sub = r->sub;
    f->reads--;
    if (status != 0 && r->rc == 0)
        r->rc = status; /* cancelled */
    if (r->index) {
        index_done(f, r);
        read_free(r);
        slots_fill(f);
        return;
    }
    if (!sub) { /* the connection went */
        read_free(r);
        slots_fill(f);
        return;
    }
    sub->rd = NULL;
    if (r->gen == sub->gen) {
        proto_buf *ob = f->ops->out(sub);
        if (sub->announce && r->res.records) {
            sub->announce = false;
            hq_log(HQ_LOG_INFO,
                   "events: %s catches up from LSN %" PRIu64 ": reading the WAL from %s offset "
                   "%" PRIu64 " (LSN %" PRIu64 "), off the loop",
                   sub->who, sub->next_lsn, r->res.start.segment, r->res.start.offset,
                   r->res.start.lsn);
        }
        if (r->res.first > sub->next_lsn)
            hq_log(HQ_LOG_WARN,
                   "events: %s asked for LSN %" PRIu64 " on, but the WAL starts at LSN %" PRIu64
                   " (archived): the events before it are not sent",
                   sub->who, sub->next_lsn, r->res.first);
        if (!ob) {
            /* Closing: it takes nothing more. */
        } else if (r->oom || !proto_buf_append(ob, r->out.p, r->out.len)) {
            ob->oom = false;
            hq_log(HQ_LOG_WARN, "events: out of memory catching up %s; trying again", sub->who);
        } else {
            sub->next_lsn = r->res.next.lsn;
            sub->cursor = r->res.next;
            if (r->rc != 0) {
                hq_log(HQ_LOG_WARN,
                       "events: catching up %s from the WAL stopped at LSN %" PRIu64
                       ": %s; live events from now",
                       sub->who, r->res.next.lsn,
                       r->res.message[0] ? r->res.message : wal_strerror(r->rc));
                sub->next_lsn = 0;
            }
        }
    }
    /* Else it subscribed again meanwhile: these events were for the old
     * subscription, and the new one starts its own read at its pump. */
    read_free(r);
    slots_fill(f);
    f->ops->wake(sub); /* may close the connection: sub is not used after */
}

/* ---- the feed ---- */

int feed_init(feed *f, uv_loop_t *loop, const feed_ops *ops, const char *wal_dir, uint64_t durable)
{
    memset(f, 0, sizeof *f);
    f->loop = loop;
    f->ops = ops;
    f->durable = durable;
    f->ring_evicted = durable; /* what came before this start is in the WAL only */
    f->ring = calloc(FEED_RING, sizeof *f->ring);
    if (!f->ring)
        return -ENOMEM;
    if (wal_dir) {
        snprintf(f->wal_dir, sizeof f->wal_dir, "%s", wal_dir);
        f->idx_next.lsn = 1;
        f->idx_goal = durable;
        f->idx_t0 = uv_now(loop);
        index_kick(f);
    }
    return 0;
}

void feed_stop(feed *f)
{
    f->stopping = true;
}

void feed_free(feed *f)
{
    if (f->ring)
        for (uint32_t i = 0; i < FEED_RING; i++)
            proto_buf_free(&f->ring[i].ev);
    free(f->ring);
    free(f->idx);
    f->ring = NULL;
    f->idx = NULL;
}

uint64_t feed_seq(const feed *f)
{
    return f->durable;
}

void feed_forget(feed *f, uint64_t lsn)
{
    f->ring_evicted = lsn;
}

int feed_subscribe(feed *f, feed_sub *sub, const hall_actor *who, uint32_t topics, bool has_since,
                   uint64_t since, char *err, size_t errlen)
{
    bool catch_up = has_since && since < f->durable && f->wal_dir[0];
    bool from_wal = catch_up && !(f->ring && since + 1 > f->ring_evicted);
    if (from_wal) {
        /* At most FEED_WAL_STARTS within the window: starts[] holds the
         * latest ones, the oldest to be replaced first. */
        uint64_t now = uv_now(f->loop);
        int oldest = 0, recent = 0;
        for (int i = 0; i < FEED_WAL_STARTS; i++) {
            if (sub->starts[i] && now - sub->starts[i] < FEED_WAL_WINDOW_MS)
                recent++;
            if (sub->starts[i] < sub->starts[oldest])
                oldest = i;
        }
        if (recent >= FEED_WAL_STARTS) {
            snprintf(err, errlen,
                     "args.since: this connection started %d catch-ups from the WAL within "
                     "%d s (at most %d); wait, or subscribe with a later since",
                     recent, FEED_WAL_WINDOW_MS / 1000, FEED_WAL_STARTS);
            return PROTO_E_LIMIT;
        }
        sub->starts[oldest] = now ? now : 1;
    }
    if (!sub->flt.topics) {
        sub->prev = NULL;
        sub->next = f->subs;
        if (f->subs)
            f->subs->prev = sub;
        f->subs = sub;
        f->n_subs++;
    }
    wait_remove(f, sub); /* its pump queues it again */
    sub->flt.topics = topics;
    sub->flt.dept = who->role == HALL_ROLE_DEPARTMENT;
    snprintf(sub->flt.dept_id, sizeof sub->flt.dept_id, "%s", who->id);
    snprintf(sub->who, sizeof sub->who, "%s:%s", hall_role_name(who->role), who->id);
    sub->gen++; /* a read in flight is for the old subscription */
    sub->next_lsn = catch_up ? since + 1 : 0;
    sub->cursor.lsn = 0;
    sub->announce = from_wal;
    return 0;
}

void feed_unsubscribe(feed *f, feed_sub *sub)
{
    if (!sub->flt.topics)
        return;
    if (sub->prev)
        sub->prev->next = sub->next;
    else
        f->subs = sub->next;
    if (sub->next)
        sub->next->prev = sub->prev;
    sub->prev = sub->next = NULL;
    f->n_subs--;
    wait_remove(f, sub);
    if (sub->rd)
        sub->rd->sub = NULL; /* dropped when it ends */
    sub->rd = NULL;
    sub->flt.topics = 0;
    sub->next_lsn = 0;
}

bool feed_pump(feed *f, feed_sub *sub, size_t budget)
{
    if (!sub->flt.topics || !sub->next_lsn || sub->rd || sub->waiting || f->stopping)
        return false;
    size_t had = f->ops->out_len(sub);
    if (had >= budget || !f->ops->out(sub))
        return false;
    if (sub->next_lsn > f->durable) {
        sub->next_lsn = 0; /* caught up: live from here */
        return false;
    }
    if (f->ring && sub->next_lsn > f->ring_evicted) {
        ring_catch_up(f, sub, budget);
        return f->ops->out_len(sub) > had;
    }
    if (!f->wal_dir[0]) {
        sub->next_lsn = 0;
        return false;
    }
    sub->budget = budget;
    if (f->reads < FEED_READS_MAX && !f->wait_head) {
        read_start(f, sub);
        if (sub->rd)
            return false;
    }
    sub->waiting = true;
    sub->wnext = NULL;
    if (f->wait_tail)
        f->wait_tail->wnext = sub;
    else
        f->wait_head = sub;
    f->wait_tail = sub;
    return false;
}

void feed_dispatch(feed *f, proto_buf *events, uint64_t upto)
{
    const uint8_t *p = events->p, *end = p + events->len;
    msgpack_zone z;
    bool zone = false;
    if (upto > f->durable)
        f->durable = upto;
    while (end - p >= FEED_EV_HEADER) {
        uint64_t lsn = hall_be64_get(p), at_ms = hall_be64_get(p + 8);
        uint32_t len = 0, n = 0;
        for (int i = 0; i < 4; i++) {
            len = len << 8 | p[16 + i];
            n = n << 8 | p[20 + i];
        }
        if (lsn > upto)
            break; /* the pending batch's: not durable yet */
        p += FEED_EV_HEADER;
        if ((size_t)(end - p) < len)
            break;
        ring_put(f, lsn, at_ms, p, len, n);
        if (!f->n_subs || (!zone && !(zone = msgpack_zone_init(&z, 1024)))) {
            p += len;
            continue;
        }
        size_t off = 0;
        for (uint32_t i = 0; i < n; i++) {
            msgpack_object ev;
            msgpack_unpack_return ur = msgpack_unpack((const char *)p, len, &off, &z, &ev);
            if (ur != MSGPACK_UNPACK_SUCCESS && ur != MSGPACK_UNPACK_EXTRA_BYTES)
                break;
            for (feed_sub *sub = f->subs; sub; sub = sub->next) {
                proto_buf *ob;
                if (!sub->next_lsn && (ob = f->ops->out(sub)) != NULL)
                    pack_event(&sub->flt, ob, lsn, at_ms, &ev);
            }
        }
        msgpack_zone_clear(&z);
        p += len;
    }
    if (zone)
        msgpack_zone_destroy(&z);
    size_t rest = (size_t)(end - p);
    if (rest)
        memmove(events->p, p, rest);
    events->len = rest;
    feed_sub *next;
    for (feed_sub *sub = f->subs; sub; sub = next) {
        next = sub->next; /* wake may close sub's connection (output cap) */
        if (f->ops->out_len(sub))
            f->ops->wake(sub);
    }
    slots_fill(f); /* a read that could not start (out of memory) tries again */
}
