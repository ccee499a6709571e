/* daemon/hall/window.c: windows calling tickets, and the day's close.
 *
 * A window is open, paused or closed (closed on a fresh state) and holds at
 * most one current ticket. window.call takes the best waiting ticket among
 * the window's lines: the best class first (appointment, priority, the
 * rest); within it, a window whose order is `earliest` takes the earliest
 * by the ticket's time across its lines (a transferred ticket keeps its
 * time; equal times go by ticket sequence), one whose order is `lines` the
 * earliest of the first of its lines (in the config's order) that has one.
 * Rules 1 knew no order: every window took the earliest. The day's close expires every waiting
 * ticket and closes every window; it runs by itself at rules.day_close on working days (a record
 * written by the daemon's timer, or by clock.advance under the manual
 * clock) and on demand with day.close.
 *
 * Stored window: [state, current ticket id, served, service_ms_total]. */
#include "daemon/hall/ticket.h"
#include "daemon/hall/stats.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

enum { WIN_CLOSED = 0, WIN_OPEN = 1, WIN_PAUSED = 2 };
static const char *const win_state_names[] = {"closed", "open", "paused"};

typedef struct hall_window_state {
    int state;
    char current[HALL_TICKET_ID_MAX + 1];
    uint64_t served;
    uint64_t service_ms;
} hall_window_state;

static int window_load(hall *h, MDB_txn *txn, const char *id, hall_window_state *w, int *mdb_rc)
{
    MDB_val k = {strlen(id), (void *)id}, v;
    msgpack_object o;
    memset(w, 0, sizeof *w);
    int rc = mdb_get(txn, h->st->windows, &k, &v);
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc || hall_unpack(h, &v, &o) != 0) {
        *mdb_rc = rc ? rc : MDB_CORRUPTED;
        return -1;
    }
    w->state = (int)hall_field_i64(&o, 0);
    hall_field_str(&o, 1, w->current, sizeof w->current);
    w->served = (uint64_t)hall_field_i64(&o, 2);
    w->service_ms = (uint64_t)hall_field_i64(&o, 3);
    return 0;
}

static int window_store(hall *h, MDB_txn *txn, const char *id, const hall_window_state *w)
{
    msgpack_packer pk;
    proto_buf_reset(&h->scratch);
    proto_packer_init(&pk, &h->scratch);
    msgpack_pack_array(&pk, 4);
    msgpack_pack_int(&pk, w->state);
    proto_pack_str(&pk, w->current);
    msgpack_pack_uint64(&pk, w->served);
    msgpack_pack_uint64(&pk, w->service_ms);
    if (h->scratch.oom)
        return ENOMEM;
    MDB_val k = {strlen(id), (void *)id}, v = {h->scratch.len, h->scratch.p};
    return mdb_put(txn, h->st->windows, &k, &v, 0);
}

/* The window the actor is bound to, with its state; -1 with e set. */
static int my_window(hall *h, MDB_txn *txn, const hall_request *r, int *wi, hall_window_state *w,
                     proto_error *e, int *mdb_rc)
{
    *wi = hall_config_window(h->cfg, r->actor.id, strlen(r->actor.id));
    if (*wi < 0)
        return proto_fail(e, PROTO_E_NOT_FOUND, "window '%s' is not in the hall's config",
                          r->actor.id),
               -1;
    if (window_load(h, txn, r->actor.id, w, mdb_rc))
        return hall_mdb_fail(e, mdb_rc, *mdb_rc, "window");
    return 0;
}

/* The window's current ticket; conflict when it has none. */
static int current_ticket(hall *h, MDB_txn *txn, const hall_request *r, const hall_window_state *w,
                          hall_ticket *t, proto_error *e, int *mdb_rc)
{
    if (!w->current[0])
        return proto_fail(e, PROTO_E_CONFLICT, "window %s has no current ticket", r->actor.id), -1;
    int rc = hall_ticket_load(h, txn, w->current, strlen(w->current), t, mdb_rc);
    if (rc)
        return hall_mdb_fail(e, mdb_rc, rc, "current ticket");
    return 0;
}

int hall_window_state_op(hall *h, MDB_txn *txn, const hall_request *r, msgpack_packer *pk,
                         proto_error *e, int *mdb_rc)
{
    const char *st;
    uint32_t n;
    int wi, want = -1;
    hall_window_state w;
    if (proto_arg_str(r->args, "state", true, &st, &n, e))
        return -1;
    for (int i = 0; i < 3; i++)
        if (strlen(win_state_names[i]) == n && memcmp(st, win_state_names[i], n) == 0)
            want = i;
    if (want < 0)
        return proto_fail(e, PROTO_E_BAD_REQUEST, "args.state: expected open, paused or closed"),
               -1;
    if (my_window(h, txn, r, &wi, &w, e, mdb_rc))
        return -1;
    if (want == WIN_CLOSED && w.current[0])
        return proto_fail(e, PROTO_E_CONFLICT,
                          "window %s still has ticket %s: finish it before closing", r->actor.id,
                          w.current),
               -1;
    w.state = want;
    int rc = window_store(h, txn, r->actor.id, &w);
    if (rc)
        return hall_mdb_fail(e, mdb_rc, rc, "window.state");
    msgpack_pack_map(pk, 0);
    return 0;
}

/* The head of line `line`, class `cls`: 0 with key and id, MDB_NOTFOUND. */
static int queue_head(hall *h, MDB_cursor *c, const char *line, int cls, MDB_val *key, MDB_val *id)
{
    uint8_t prefix[5] = {0};
    memcpy(prefix, line, strnlen(line, 4));
    prefix[4] = (uint8_t)cls;
    MDB_val k = {5, prefix}, v;
    int rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
    (void)h;
    if (rc)
        return rc;
    if (k.mv_size < 5 || memcmp(k.mv_data, prefix, 5) != 0)
        return MDB_NOTFOUND;
    *key = k;
    *id = v;
    return 0;
}

int hall_window_call(hall *h, MDB_txn *txn, const hall_request *r, msgpack_packer *pk,
                     proto_error *e, int *mdb_rc)
{
    int wi;
    hall_window_state w;
    if (my_window(h, txn, r, &wi, &w, e, mdb_rc))
        return -1;
    if (w.state != WIN_OPEN)
        return proto_fail(e, PROTO_E_CONFLICT, "window %s is %s: only open windows call",
                          r->actor.id, win_state_names[w.state]),
               -1;
    if (w.current[0])
        return proto_fail(e, PROTO_E_CONFLICT,
                          "window %s already has ticket %s: end it first (done, no_show, "
                          "transfer)",
                          r->actor.id, w.current),
               -1;
    const hall_window *cw = &h->cfg->windows[wi];
    MDB_cursor *c;
    int rc = mdb_cursor_open(txn, h->st->queue, &c);
    if (rc)
        return hall_mdb_fail(e, mdb_rc, rc, "window.call");
    char best_id[HALL_TICKET_ID_MAX + 1] = "";
    uint8_t best_key[HALL_QUEUE_KEY_MAX];
    size_t best_len = 0;
    /* Rules 2 brought the window's `order`; under rules 1 every window
     * took the earliest of its lines. */
    bool by_lines = h->rules >= 2 && cw->order == HALL_ORDER_LINES;
    for (int cls = 0; cls < HALL_CLASSES && !best_id[0]; cls++) {
        for (int i = 0; i < cw->n_lines && !(by_lines && best_id[0]); i++) {
            MDB_val k, v;
            rc = queue_head(h, c, h->cfg->lines[cw->lines[i]].id, cls, &k, &v);
            if (rc == MDB_NOTFOUND)
                continue;
            if (rc)
                break;
            /* Earlier time wins across lines (bytes 5..20: order_ms, seq). */
            size_t kl = k.mv_size < HALL_QUEUE_KEY_MAX ? k.mv_size : HALL_QUEUE_KEY_MAX;
            if (!best_id[0] || memcmp((uint8_t *)k.mv_data + 5, best_key + 5, 16) < 0) {
                memcpy(best_key, k.mv_data, kl);
                best_len = kl;
                hall_copy(best_id, sizeof best_id, (char *)v.mv_data, v.mv_size);
            }
        }
        if (rc && rc != MDB_NOTFOUND)
            break;
        rc = 0;
    }
    mdb_cursor_close(c);
    if (rc)
        return hall_mdb_fail(e, mdb_rc, rc, "window.call");
    (void)best_len;
    if (!best_id[0]) {
        msgpack_pack_map(pk, 1);
        proto_pack_str(pk, "ticket");
        msgpack_pack_nil(pk);
        return 0;
    }
    hall_ticket t;
    if ((rc = hall_ticket_load(h, txn, best_id, strlen(best_id), &t, mdb_rc)) ||
        (rc = hall_queue_del(h, txn, &t)))
        return hall_mdb_fail(e, mdb_rc, rc, "window.call");
    t.state = HALL_T_CALLED;
    hall_copy(t.window, sizeof t.window, r->actor.id, SIZE_MAX);
    t.called_ms = r->now_ms;
    if (!t.first_call_ms) {
        t.first_call_ms = r->now_ms;
        if ((rc = hall_stats_wait(h, txn, t.day, t.line, r->now_ms - t.taken_ms)))
            return hall_mdb_fail(e, mdb_rc, rc, "window.call");
    }
    hall_copy(w.current, sizeof w.current, t.id, SIZE_MAX);
    if ((rc = hall_ticket_store(h, txn, &t)) || (rc = window_store(h, txn, r->actor.id, &w)))
        return hall_mdb_fail(e, mdb_rc, rc, "window.call");
    msgpack_pack_map(pk, 1);
    proto_pack_str(pk, "ticket");
    return hall_ticket_pack(h, txn, &t, pk, mdb_rc) ? hall_mdb_fail(e, mdb_rc, *mdb_rc, "call") : 0;
}

int hall_window_recall(hall *h, MDB_txn *txn, const hall_request *r, msgpack_packer *pk,
                       proto_error *e, int *mdb_rc)
{
    int wi;
    hall_window_state w;
    hall_ticket t;
    if (my_window(h, txn, r, &wi, &w, e, mdb_rc) || current_ticket(h, txn, r, &w, &t, e, mdb_rc))
        return -1;
    msgpack_pack_map(pk, 1);
    proto_pack_str(pk, "ticket");
    return hall_ticket_pack(h, txn, &t, pk, mdb_rc) ? hall_mdb_fail(e, mdb_rc, *mdb_rc, "recall")
                                                    : 0;
}

/* Ends the current ticket in `state` (done or no_show). */
static int end_current(hall *h, MDB_txn *txn, const hall_request *r, msgpack_packer *pk,
                       proto_error *e, int *mdb_rc, int state)
{
    int wi;
    hall_window_state w;
    hall_ticket t;
    if (my_window(h, txn, r, &wi, &w, e, mdb_rc) || current_ticket(h, txn, r, &w, &t, e, mdb_rc))
        return -1;
    t.state = state;
    if (state == HALL_T_DONE) {
        t.done_ms = r->now_ms;
        w.served++;
        w.service_ms += (uint64_t)(r->now_ms - t.called_ms);
    } else {
        t.no_show_ms = r->now_ms;
    }
    w.current[0] = 0;
    int rc;
    if ((rc = hall_ticket_store(h, txn, &t)) || (rc = window_store(h, txn, r->actor.id, &w)) ||
        (rc = hall_stats_line(h, txn, t.day, t.line,
                              state == HALL_T_DONE ? STAT_SERVED : STAT_NO_SHOW, 1)) ||
        (state == HALL_T_DONE &&
         (rc = hall_stats_window(h, txn, t.day, r->actor.id, r->now_ms - t.called_ms))))
        return hall_mdb_fail(e, mdb_rc, rc, r->def->name);
    msgpack_pack_map(pk, 0);
    return 0;
}

int hall_window_done(hall *h, MDB_txn *txn, const hall_request *r, msgpack_packer *pk,
                     proto_error *e, int *mdb_rc)
{
    return end_current(h, txn, r, pk, e, mdb_rc, HALL_T_DONE);
}

int hall_window_no_show(hall *h, MDB_txn *txn, const hall_request *r, msgpack_packer *pk,
                        proto_error *e, int *mdb_rc)
{
    return end_current(h, txn, r, pk, e, mdb_rc, HALL_T_NO_SHOW);
}

int hall_window_transfer(hall *h, MDB_txn *txn, const hall_request *r, msgpack_packer *pk,
                         proto_error *e, int *mdb_rc)
{
    const char *line;
    uint32_t n;
    int wi;
    hall_window_state w;
    hall_ticket t;
    if (proto_arg_str(r->args, "line", true, &line, &n, e))
        return -1;
    int li = hall_config_line(h->cfg, line, n);
    if (li < 0)
        return proto_fail(e, PROTO_E_NOT_FOUND, "args.line: no line '%.*s'", (int)n, line), -1;
    if (my_window(h, txn, r, &wi, &w, e, mdb_rc) || current_ticket(h, txn, r, &w, &t, e, mdb_rc))
        return -1;
    /* Same class, same time, new line: it keeps its place in time. */
    hall_copy(t.line, sizeof t.line, h->cfg->lines[li].id, SIZE_MAX);
    t.window[0] = 0;
    t.called_ms = 0;
    hall_queue_key(&t, t.qkey);
    t.qkey_len = HALL_QUEUE_KEY_LEN;
    w.current[0] = 0;
    int rc;
    if ((rc = hall_queue_put(h, txn, &t)) || (rc = window_store(h, txn, r->actor.id, &w)))
        return hall_mdb_fail(e, mdb_rc, rc, "window.transfer");
    msgpack_pack_map(pk, 0);
    return 0;
}

int hall_ticket_return(hall *h, MDB_txn *txn, const hall_request *r, msgpack_packer *pk,
                       proto_error *e, int *mdb_rc)
{
    const char *id;
    uint32_t n;
    hall_ticket t;
    if (proto_arg_str(r->args, "ticket_id", true, &id, &n, e))
        return -1;
    int rc = hall_ticket_load(h, txn, id, n, &t, mdb_rc);
    if (rc == MDB_NOTFOUND)
        return proto_fail(e, PROTO_E_NOT_FOUND, "args.ticket_id: no ticket '%.*s'", (int)n, id), -1;
    if (rc)
        return hall_mdb_fail(e, mdb_rc, rc, "ticket.return");
    if (t.state != HALL_T_NO_SHOW)
        return proto_fail(e, PROTO_E_CONFLICT, "ticket %s is %s, not no_show", t.id,
                          hall_ticket_state_name(t.state)),
               -1;
    if (r->now_ms - t.no_show_ms > h->cfg->rules.no_show_grace_ms)
        return proto_fail(e, PROTO_E_CONFLICT,
                          "ticket %s: the grace period of %lld s after its no-show has ended", t.id,
                          (long long)(h->cfg->rules.no_show_grace_ms / 1000)),
               -1;
    /* Behind the return_behind-th waiting ticket of the line (the anchor),
     * or behind the last one when fewer wait, and before the ticket after
     * it: a key strictly between the two. It is the anchor's first 21
     * bytes (its class and time: the order across lines) and a 16-byte
     * suffix halfway between the anchor's suffix (0 for a plain key) and
     * the next key's when that one has the same 21 bytes (else the top).
     * Keys stay at 37 bytes however many return behind one another. */
    MDB_cursor *c;
    if ((rc = mdb_cursor_open(txn, h->st->queue, &c)))
        return hall_mdb_fail(e, mdb_rc, rc, "ticket.return");
    uint8_t prefix[4] = {0}, anchor[HALL_QUEUE_KEY_MAX], next[HALL_QUEUE_KEY_MAX];
    size_t anchor_len = 0, next_len = 0;
    memcpy(prefix, t.line, strnlen(t.line, 4));
    MDB_val k = {4, prefix}, v;
    int behind = h->cfg->rules.return_behind, seen = 0;
    for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); rc == 0;
         rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        if (k.mv_size < 4 || k.mv_size > HALL_QUEUE_KEY_MAX || memcmp(k.mv_data, prefix, 4) != 0)
            break;
        if (seen == behind) {
            memcpy(next, k.mv_data, k.mv_size);
            next_len = k.mv_size;
            break;
        }
        seen++;
        memcpy(anchor, k.mv_data, k.mv_size);
        anchor_len = k.mv_size;
    }
    mdb_cursor_close(c);
    if (rc && rc != MDB_NOTFOUND)
        return hall_mdb_fail(e, mdb_rc, rc, "ticket.return");
    const size_t base = HALL_QUEUE_KEY_LEN, full = HALL_QUEUE_KEY_LEN + 16;
    uint64_t lo_h = 0, lo_l = 0, hi_h = UINT64_MAX, hi_l = UINT64_MAX;
    if (anchor_len == full) {
        lo_h = hall_be64_get(anchor + base);
        lo_l = hall_be64_get(anchor + base + 8);
    }
    if (next_len == full && memcmp(next, anchor, base) == 0) {
        hi_h = hall_be64_get(next + base);
        hi_l = hall_be64_get(next + base + 8);
    }
    /* mid = lo + (hi - lo) / 2, in 128 bits; no room when hi - lo < 2. */
    uint64_t d_l = hi_l - lo_l, d_h = hi_h - lo_h - (hi_l < lo_l);
    bool room = d_h > 0 || d_l > 1;
    uint64_t half_l = d_l >> 1 | d_h << 63, half_h = d_h >> 1;
    uint64_t mid_l = lo_l + half_l, mid_h = lo_h + half_h + (mid_l < lo_l);
    if (anchor_len >= base && room) {
        memcpy(t.qkey, anchor, base);
        hall_be64_put(t.qkey + base, mid_h);
        hall_be64_put(t.qkey + base + 8, mid_l);
        t.qkey_len = full;
    } else {
        /* Nobody waits (or, never in practice, no room): a plain key. */
        t.cls = HALL_CLASS_REST;
        t.order_ms = r->now_ms;
        hall_queue_key(&t, t.qkey);
        t.qkey_len = HALL_QUEUE_KEY_LEN;
    }
    t.window[0] = 0;
    uint32_t ahead = 0;
    if ((rc = hall_queue_put(h, txn, &t)))
        return hall_mdb_fail(e, mdb_rc, rc, "ticket.return");
    if (hall_queue_ahead(h, txn, &t, &ahead, mdb_rc))
        return hall_mdb_fail(e, mdb_rc, *mdb_rc, "ticket.return");
    msgpack_pack_map(pk, 1);
    proto_pack_kv_uint(pk, "ahead", ahead);
    return 0;
}

/* ---- the day's close ---- */

/* The first close instant after `after` (rules.day_close on a working day). */
int64_t hall_next_close_ms(const hall_config *cfg, int64_t after)
{
    int32_t d = hall_local_day(&cfg->cal, after);
    for (int i = 0; i < 3700; i++, d++) {
        if (!hall_is_working_day(&cfg->cal, d))
            continue;
        int64_t t = hall_local_ms(&cfg->cal, d, cfg->rules.day_close_min);
        if (t > after)
            return t;
    }
    return INT64_MAX;
}

int hall_day_close(hall *h, MDB_txn *txn, const hall_request *r, msgpack_packer *pk, proto_error *e,
                   int *mdb_rc)
{
    MDB_cursor *c;
    int rc = mdb_cursor_open(txn, h->st->queue, &c);
    if (rc)
        return hall_mdb_fail(e, mdb_rc, rc, "day.close");
    uint64_t expired = 0;
    MDB_val k, v;
    /* Every waiting ticket expires; the queue and the counts empty. */
    while ((rc = mdb_cursor_get(c, &k, &v, MDB_FIRST)) == 0) {
        hall_ticket t;
        char id[HALL_TICKET_ID_MAX + 1];
        hall_copy(id, sizeof id, (char *)v.mv_data, v.mv_size);
        if ((rc = hall_ticket_load(h, txn, id, strlen(id), &t, mdb_rc)) ||
            (rc = mdb_cursor_del(c, 0)))
            break;
        t.state = HALL_T_EXPIRED;
        t.qkey_len = 0;
        if ((rc = hall_ticket_store(h, txn, &t)) ||
            (rc = hall_stats_line(h, txn, t.day, t.line, STAT_EXPIRED, 1)))
            break;
        expired++;
    }
    mdb_cursor_close(c);
    if (rc && rc != MDB_NOTFOUND)
        return hall_mdb_fail(e, mdb_rc, rc, "day.close");
    for (int i = 0; i < h->cfg->n_lines; i++) {
        hall_line_state ls;
        if (hall_line_load(h, txn, h->cfg->lines[i].id, &ls, mdb_rc))
            return hall_mdb_fail(e, mdb_rc, *mdb_rc, "day.close");
        memset(ls.waiting, 0, sizeof ls.waiting);
        if ((rc = hall_line_store(h, txn, h->cfg->lines[i].id, &ls)))
            return hall_mdb_fail(e, mdb_rc, rc, "day.close");
    }
    for (int i = 0; i < h->cfg->n_windows; i++) {
        hall_window_state w;
        if (window_load(h, txn, h->cfg->windows[i].id, &w, mdb_rc))
            return hall_mdb_fail(e, mdb_rc, *mdb_rc, "day.close");
        w.state = WIN_CLOSED;
        if ((rc = window_store(h, txn, h->cfg->windows[i].id, &w)))
            return hall_mdb_fail(e, mdb_rc, rc, "day.close");
    }
    if ((rc = hall_meta_put_u64(h->st, txn, "closed_through_ms", (uint64_t)r->now_ms)))
        return hall_mdb_fail(e, mdb_rc, rc, "day.close");
    msgpack_pack_map(pk, 1);
    proto_pack_kv_uint(pk, "expired", expired);
    return 0;
}

static int64_t next_close_due(hall *h, MDB_txn *txn)
{
    uint64_t through = 0;
    if (!h->cfg || hall_meta_get_u64(h->st, txn, "closed_through_ms", &through) != 0 || !through)
        return INT64_MAX;
    return hall_next_close_ms(h->cfg, (int64_t)through);
}

int64_t hall_next_due_ms(hall *h, MDB_txn *txn)
{
    int64_t close = next_close_due(h, txn);
    int64_t timer = h->cfg ? hall_case_next_timer(h, txn, &h->due_buf) : INT64_MAX;
    int64_t appt = h->cfg ? hall_appointment_next_due(h, txn, NULL) : INT64_MAX;
    int64_t due = close < timer ? close : timer;
    return appt < due ? appt : due;
}

bool hall_due(hall *h, MDB_txn *txn, int64_t now, hall_request *r)
{
    int64_t close = next_close_due(h, txn);
    int64_t timer = h->cfg ? hall_case_next_timer(h, txn, &h->due_buf) : INT64_MAX;
    int64_t appt = h->cfg ? hall_appointment_next_due(h, txn, NULL) : INT64_MAX;
    int64_t due = close < timer ? close : timer;
    if (appt < due)
        due = appt;
    if (due > now)
        return false;
    memset(r, 0, sizeof *r);
    r->now_ms = due;
    r->actor.role = HALL_ROLE_SYSTEM;
    snprintf(r->actor.id, sizeof r->actor.id, "hallqd");
    if (close == due) {
        r->def = hall_op_get(HALL_OP_DAY_CLOSE);
        return true;
    }
    /* Ties go: the close, a case timer, an appointment's no-show. */
    const hall_op_def *def = hall_op_get(HALL_OP_CASE_TIMER);
    if (timer != due) {
        /* An appointment's window passed unused: its args {code}. */
        hall_appointment_next_due(h, txn, &h->due_buf);
        def = hall_op_get(HALL_OP_APPOINTMENT_TIMER);
    }
    /* A lease running out or a deadline mark: its args were packed by
     * hall_case_next_timer (or the no-show's just above). */
    size_t off = 0;
    msgpack_zone_clear(&h->due_zone);
    if (msgpack_unpack((const char *)h->due_buf.p, h->due_buf.len, &off, &h->due_zone,
                       &h->due_obj) != MSGPACK_UNPACK_SUCCESS)
        return false;
    r->def = def;
    r->args = &h->due_obj;
    return true;
}
