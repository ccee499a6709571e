/* daemon/hall/ticket.c: taking and reading tickets.
 *
 * Numbers run per line per business day (A001, A002, ...) and restart when
 * the line's first ticket of a new business day is taken. A ticket id is
 * the business day and the number ("20261124-A001"): unique, readable,
 * and stable across transfers. `ahead` comes from per-line, per-class
 * waiting counts kept with the line, so taking a ticket costs O(1). */
#include "daemon/hall/ticket.h"
#include "daemon/hall/events.h"
#include "daemon/hall/stats.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static const char *const state_names[HALL_T__COUNT] = {"waiting", "called",  "serving",
                                                       "done",    "no_show", "expired"};

const char *hall_ticket_state_name(int s)
{
    return s >= 0 && s < HALL_T__COUNT ? state_names[s] : "?";
}

int hall_ticket_load(hall *h, MDB_txn *txn, const char *id, size_t n, hall_ticket *t, int *mdb_rc)
{
    MDB_val k = {n, (void *)id}, v;
    msgpack_object o;
    memset(t, 0, sizeof *t);
    if (n == 0 || n > HALL_TICKET_ID_MAX)
        return MDB_NOTFOUND;
    int rc = mdb_get(txn, h->st->tickets, &k, &v);
    if (rc) {
        if (rc != MDB_NOTFOUND)
            *mdb_rc = rc;
        return rc;
    }
    if (hall_unpack(h, &v, &o) != 0 || o.type != MSGPACK_OBJECT_ARRAY) {
        *mdb_rc = MDB_CORRUPTED;
        return MDB_CORRUPTED;
    }
    memcpy(t->id, id, n);
    t->id[n] = 0;
    hall_field_str(&o, 0, t->number, sizeof t->number);
    hall_field_str(&o, 1, t->line, sizeof t->line);
    t->day = (int32_t)hall_field_i64(&o, 2);
    t->state = (int)hall_field_i64(&o, 3);
    t->cls = (int)hall_field_i64(&o, 4);
    t->priority = hall_field_i64(&o, 5) != 0;
    t->taken_ms = hall_field_i64(&o, 6);
    t->order_ms = hall_field_i64(&o, 7);
    t->seq = (uint64_t)hall_field_i64(&o, 8);
    hall_field_str(&o, 9, t->window, sizeof t->window);
    t->called_ms = hall_field_i64(&o, 10);
    hall_field_str(&o, 11, t->appointment, sizeof t->appointment);
    hall_field_str(&o, 12, t->case_no, sizeof t->case_no);
    const msgpack_object *qk = hall_field(&o, 13);
    if (qk && qk->type == MSGPACK_OBJECT_BIN && qk->via.bin.size > 0 &&
        qk->via.bin.size <= HALL_QUEUE_KEY_MAX) {
        memcpy(t->qkey, qk->via.bin.ptr, qk->via.bin.size);
        t->qkey_len = qk->via.bin.size;
    }
    t->no_show_ms = hall_field_i64(&o, 14);
    t->done_ms = hall_field_i64(&o, 15);
    t->first_call_ms = hall_field_i64(&o, 16);
    return 0;
}

int hall_ticket_store(hall *h, MDB_txn *txn, const hall_ticket *t)
{
    msgpack_packer pk;
    proto_buf_reset(&h->scratch);
    proto_packer_init(&pk, &h->scratch);
    msgpack_pack_array(&pk, 17);
    proto_pack_str(&pk, t->number);
    proto_pack_str(&pk, t->line);
    msgpack_pack_int32(&pk, t->day);
    msgpack_pack_int(&pk, t->state);
    msgpack_pack_int(&pk, t->cls);
    if (t->priority)
        msgpack_pack_true(&pk);
    else
        msgpack_pack_false(&pk);
    msgpack_pack_int64(&pk, t->taken_ms);
    msgpack_pack_int64(&pk, t->order_ms);
    msgpack_pack_uint64(&pk, t->seq);
    proto_pack_str(&pk, t->window);
    msgpack_pack_int64(&pk, t->called_ms);
    proto_pack_str(&pk, t->appointment);
    proto_pack_str(&pk, t->case_no);
    msgpack_pack_bin(&pk, t->qkey_len);
    msgpack_pack_bin_body(&pk, t->qkey, t->qkey_len);
    msgpack_pack_int64(&pk, t->no_show_ms);
    msgpack_pack_int64(&pk, t->done_ms);
    msgpack_pack_int64(&pk, t->first_call_ms);
    if (h->scratch.oom)
        return ENOMEM;
    MDB_val k = {strlen(t->id), (void *)t->id}, v = {h->scratch.len, h->scratch.p};
    return mdb_put(txn, h->st->tickets, &k, &v, 0);
}

int hall_line_load(hall *h, MDB_txn *txn, const char *line, hall_line_state *ls, int *mdb_rc)
{
    MDB_val k = {strlen(line), (void *)line}, v;
    msgpack_object o;
    memset(ls, 0, sizeof *ls);
    int rc = mdb_get(txn, h->st->lines, &k, &v);
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc || hall_unpack(h, &v, &o) != 0) {
        *mdb_rc = rc ? rc : MDB_CORRUPTED;
        return -1;
    }
    ls->day = (int32_t)hall_field_i64(&o, 0);
    ls->last_no = (uint32_t)hall_field_i64(&o, 1);
    for (int c = 0; c < HALL_CLASSES; c++)
        ls->waiting[c] = (uint32_t)hall_field_i64(&o, (uint32_t)(2 + c));
    return 0;
}

int hall_line_waiting(hall *h, MDB_txn *txn, const char *line, uint32_t *waiting)
{
    hall_line_state ls;
    int mdb_rc = 0;
    if (hall_line_load(h, txn, line, &ls, &mdb_rc) != 0)
        return mdb_rc ? mdb_rc : MDB_CORRUPTED;
    uint32_t n = 0;
    for (int c = 0; c < HALL_CLASSES; c++)
        n += ls.waiting[c];
    *waiting = n;
    return 0;
}

int hall_line_store(hall *h, MDB_txn *txn, const char *line, const hall_line_state *ls)
{
    msgpack_packer pk;
    proto_buf_reset(&h->scratch);
    proto_packer_init(&pk, &h->scratch);
    msgpack_pack_array(&pk, 2 + HALL_CLASSES);
    msgpack_pack_int32(&pk, ls->day);
    msgpack_pack_uint32(&pk, ls->last_no);
    for (int c = 0; c < HALL_CLASSES; c++)
        msgpack_pack_uint32(&pk, ls->waiting[c]);
    if (h->scratch.oom)
        return ENOMEM;
    MDB_val k = {strlen(line), (void *)line}, v = {h->scratch.len, h->scratch.p};
    int rc = mdb_put(txn, h->st->lines, &k, &v, 0);
    uint32_t waiting = 0;
    for (int c = 0; c < HALL_CLASSES; c++)
        waiting += ls->waiting[c];
    if (rc == 0)
        hall_events_line_stored(h, line, waiting);
    return rc;
}

void hall_queue_key(const hall_ticket *t, uint8_t key[HALL_QUEUE_KEY_LEN])
{
    memset(key, 0, 4);
    memcpy(key, t->line, strnlen(t->line, 4));
    key[4] = (uint8_t)t->cls;
    hall_be64_put(key + 5, (uint64_t)t->order_ms);
    hall_be64_put(key + 13, t->seq);
}

/* hall_queue_put with t's line state already loaded into ls: counts t in
 * it and stores it (one store for the line however the caller changed it). */
static int queue_put_line(hall *h, MDB_txn *txn, hall_ticket *t, hall_line_state *ls)
{
    int rc;
    t->cls = t->qkey[4];
    ls->waiting[t->cls]++;
    t->state = HALL_T_WAITING;
    MDB_val k = {t->qkey_len, t->qkey}, v = {strlen(t->id), t->id};
    if ((rc = mdb_put(txn, h->st->queue, &k, &v, MDB_NOOVERWRITE)) ||
        (rc = hall_line_store(h, txn, t->line, ls)) || (rc = hall_ticket_store(h, txn, t)))
        return rc;
    return 0;
}

int hall_queue_put(hall *h, MDB_txn *txn, hall_ticket *t)
{
    hall_line_state ls;
    int mdb_rc = 0;
    if (hall_line_load(h, txn, t->line, &ls, &mdb_rc))
        return mdb_rc;
    return queue_put_line(h, txn, t, &ls);
}

int hall_queue_del(hall *h, MDB_txn *txn, hall_ticket *t)
{
    hall_line_state ls;
    int mdb_rc = 0, rc;
    if (t->qkey_len == 0)
        return 0;
    if (hall_line_load(h, txn, t->line, &ls, &mdb_rc))
        return mdb_rc;
    int cls = t->qkey[4];
    if (ls.waiting[cls])
        ls.waiting[cls]--;
    MDB_val k = {t->qkey_len, t->qkey};
    if ((rc = mdb_del(txn, h->st->queue, &k, NULL)) || (rc = hall_line_store(h, txn, t->line, &ls)))
        return rc;
    t->qkey_len = 0;
    return 0;
}

int hall_queue_ahead(hall *h, MDB_txn *txn, const hall_ticket *t, uint32_t *ahead, int *mdb_rc)
{
    MDB_cursor *c;
    int rc = mdb_cursor_open(txn, h->st->queue, &c);
    if (rc) {
        *mdb_rc = rc;
        return -1;
    }
    uint8_t first[4] = {0};
    memcpy(first, t->line, strnlen(t->line, 4));
    MDB_val k = {4, first}, v, mine = {t->qkey_len, (void *)t->qkey};
    *ahead = 0;
    for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); rc == 0;
         rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        if (k.mv_size < 4 || memcmp(k.mv_data, first, 4) != 0 ||
            mdb_cmp(txn, h->st->queue, &k, &mine) >= 0)
            break;
        (*ahead)++;
    }
    mdb_cursor_close(c);
    if (rc && rc != MDB_NOTFOUND) {
        *mdb_rc = rc;
        return -1;
    }
    return 0;
}

int hall_ticket_pack(hall *h, MDB_txn *txn, const hall_ticket *t, msgpack_packer *pk, int *mdb_rc)
{
    uint32_t ahead = 0;
    bool waiting = t->state == HALL_T_WAITING;
    if (waiting && hall_queue_ahead(h, txn, t, &ahead, mdb_rc))
        return -1;
    msgpack_pack_map(pk, 4 + (waiting ? 1 : 0) + (t->window[0] ? 1 : 0));
    proto_pack_kv_str(pk, "ticket_id", t->id);
    proto_pack_kv_str(pk, "number", t->number);
    proto_pack_kv_str(pk, "line", t->line);
    proto_pack_kv_str(pk, "state", hall_ticket_state_name(t->state));
    if (waiting)
        proto_pack_kv_uint(pk, "ahead", ahead);
    if (t->window[0])
        proto_pack_kv_str(pk, "window", t->window);
    return 0;
}

static int64_t est_wait_s(const hall *h, uint32_t ahead)
{
    /* The windows that serve the line are not counted yet: one window is
     * assumed, which errs on the long side. */
    return (int64_t)ahead * h->cfg->rules.default_service_ms / 1000;
}

int hall_ticket_take(hall *h, MDB_txn *txn, const hall_request *r, msgpack_packer *pk,
                     proto_error *e, int *mdb_rc)
{
    const char *line, *appt, *case_no;
    uint32_t line_len, appt_len, case_len;
    bool priority = false, has_prio;
    if (proto_arg_str(r->args, "line", true, &line, &line_len, e) ||
        proto_arg_bool(r->args, "priority", false, &priority, &has_prio, e) ||
        proto_arg_str(r->args, "appointment", false, &appt, &appt_len, e) ||
        proto_arg_str(r->args, "case_no", false, &case_no, &case_len, e))
        return -1;
    int li = hall_config_line(h->cfg, line, line_len);
    if (li < 0)
        return proto_fail(e, PROTO_E_NOT_FOUND, "args.line: no line '%.*s'", (int)line_len, line),
               -1;
    const char *lid = h->cfg->lines[li].id;
    bool in_slot = false;
    if (appt &&
        h->take->appointment_check(h, txn, appt, appt_len, lid, r->now_ms, &in_slot, e, mdb_rc))
        return -1;
    /* A pickup line's tickets are for a ready case, and only theirs are. */
    if (h->cfg->lines[li].pickup && !case_no)
        return proto_fail(e, PROTO_E_BAD_REQUEST,
                          "args.case_no: line %s is the result pickup line; its tickets name the "
                          "case to collect",
                          h->cfg->lines[li].id),
               -1;
    if (case_no && !h->cfg->lines[li].pickup && hall_config_has_pickup(h->cfg))
        return proto_fail(e, PROTO_E_BAD_REQUEST,
                          "args.case_no: a case is collected on the pickup line, not on line %s",
                          h->cfg->lines[li].id),
               -1;
    if (case_no && h->take->case_pickup(h, txn, case_no, case_len, e, mdb_rc))
        return -1;

    hall_line_state ls;
    if (hall_line_load(h, txn, lid, &ls, mdb_rc))
        return hall_mdb_fail(e, mdb_rc, *mdb_rc, "line");
    int32_t day = hall_business_day(&h->cfg->cal, h->cfg->rules.day_close_min, r->now_ms);
    if (ls.day != day) {
        ls.day = day;
        ls.last_no = 0;
    }
    uint64_t seq;
    int rc = hall_meta_get_u64(h->st, txn, "ticket_seq", &seq);
    if (rc)
        return hall_mdb_fail(e, mdb_rc, rc, "ticket_seq");

    hall_ticket t = {0};
    char compact[9];
    t.cls = in_slot ? HALL_CLASS_APPOINTMENT : priority ? HALL_CLASS_PRIORITY : HALL_CLASS_REST;
    uint32_t ahead = 0;
    for (int c = 0; c <= t.cls; c++)
        ahead += ls.waiting[c];
    ls.last_no++;
    /* "%s%03u" and "%s-%s", cut where snprintf would cut them. */
    char buf[HALL_ID_MAX + 32];
    size_t n = strlen(lid);
    memcpy(buf, lid, n);
    hall_copy(t.number, sizeof t.number, buf, n + hall_put_uint(buf + n, ls.last_no, 3));
    hall_day_compact(day, compact);
    memcpy(buf, compact, 8);
    buf[8] = '-';
    n = strlen(t.number);
    memcpy(buf + 9, t.number, n);
    hall_copy(t.id, sizeof t.id, buf, 9 + n);
    hall_copy(t.line, sizeof t.line, lid, SIZE_MAX);
    t.day = day;
    t.state = HALL_T_WAITING;
    t.priority = priority;
    t.taken_ms = t.order_ms = r->now_ms;
    if (case_no)
        hall_copy(t.case_no, sizeof t.case_no, case_no, case_len);
    if (appt)
        hall_copy(t.appointment, sizeof t.appointment, appt, appt_len);
    t.seq = seq + 1;

    hall_queue_key(&t, t.qkey);
    t.qkey_len = HALL_QUEUE_KEY_LEN;
    /* The line's new number and its waiting count, in one store. */
    if ((rc = queue_put_line(h, txn, &t, &ls)) ||
        (rc = hall_stats_line(h, txn, t.day, t.line, STAT_TAKEN, 1)) ||
        (rc = hall_meta_put_u64(h->st, txn, "ticket_seq", t.seq)) ||
        (appt && (rc = h->take->appointment_use(h, txn, appt, appt_len, t.id, r->now_ms, in_slot))))
        return hall_mdb_fail(e, mdb_rc, rc, "ticket.take");

    msgpack_pack_map(pk, 6);
    proto_pack_kv_str(pk, "ticket_id", t.id);
    proto_pack_kv_str(pk, "number", t.number);
    proto_pack_kv_str(pk, "line", t.line);
    proto_pack_kv_uint(pk, "ahead", ahead);
    proto_pack_kv_uint(pk, "est_wait_s", (uint64_t)est_wait_s(h, ahead));
    proto_pack_kv_uint(pk, "taken_ms", (uint64_t)t.taken_ms);
    return 0;
}

int hall_ticket_get(hall *h, MDB_txn *txn, const hall_request *r, msgpack_packer *pk,
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
        return hall_mdb_fail(e, mdb_rc, rc, "ticket.get");
    if (hall_ticket_pack(h, txn, &t, pk, mdb_rc))
        return hall_mdb_fail(e, mdb_rc, *mdb_rc, "ticket.get");
    return 0;
}
