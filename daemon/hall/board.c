/* daemon/hall/board.c: the reads screens are built from (protocol 1.2):
 * `board`, what a hall display shows, and `catalogue`, the hall's lines,
 * services, materials and windows with their names.
 *
 * board is one read in one LMDB read txn, so its parts agree with one
 * another and with `seq`, the applied LSN of that txn: the state after
 * every record up to seq and none after. A display subscribes with
 * `since: seq` and gets every event after it once. The daemon runs reads
 * only when everything the state txn holds is durable, where the applied
 * LSN is also the feed's last LSN (subscribe's seq); it passes that as
 * r->lsn and the two are checked equal (never a board that events would
 * then repeat or skip).
 *
 * `recent` comes from the tickets (no table of its own): each ticket of
 * the hall's date or of the business day now whose latest call is known
 * (called_ms, window), newest first, ties by ticket sequence, at most
 * HALL_BOARD_RECENT. So a ticket shows once, at its latest window.call; a
 * recall re-announces it (a `call` event a display may show again) but is
 * not a new call; a transferred ticket leaves the list until called again.
 *
 * Reads only; above tickets (ticket.h), beside window.c, whose stored
 * window [state, current ticket id, ...] it decodes read-only. */
#include "daemon/hall/calendar.h"
#include "daemon/hall/ticket.h"

#include <stdio.h>
#include <string.h>

#define HALL_BOARD_RECENT 20

/* window.c's stored states, by number. */
static const char *const win_states[] = {"closed", "open", "paused"};

typedef struct board_call {
    char number[16];
    char window[HALL_ID_MAX + 1];
    int64_t at_ms;
    uint64_t seq;
} board_call;

/* Whether call a is newer than b. */
static bool newer(const board_call *a, const board_call *b)
{
    return a->at_ms != b->at_ms ? a->at_ms > b->at_ms : a->seq > b->seq;
}

/* Adds the calls of the tickets of `day` to the newest n (sorted, newest
 * first, at most HALL_BOARD_RECENT). 0 or an LMDB error. */
static int day_calls(hall *h, MDB_txn *txn, int32_t day, board_call *calls, int *n)
{
    char prefix[10];
    hall_day_compact(day, prefix);
    prefix[8] = '-';
    MDB_cursor *c;
    int rc = mdb_cursor_open(txn, h->st->tickets, &c);
    if (rc)
        return rc;
    MDB_val k = {9, prefix}, v;
    for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); rc == 0;
         rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        if (k.mv_size < 9 || memcmp(k.mv_data, prefix, 9) != 0)
            break;
        hall_ticket t;
        int mdb_rc = 0;
        /* Each ticket's values are copied out: the zone may go. */
        msgpack_zone_clear(&h->zone);
        if ((rc = hall_ticket_load(h, txn, k.mv_data, k.mv_size, &t, &mdb_rc)) != 0)
            break;
        if (!t.called_ms || !t.window[0])
            continue;
        board_call x = {.at_ms = t.called_ms, .seq = t.seq};
        hall_copy(x.number, sizeof x.number, t.number, SIZE_MAX);
        hall_copy(x.window, sizeof x.window, t.window, SIZE_MAX);
        if (*n == HALL_BOARD_RECENT && !newer(&x, &calls[*n - 1]))
            continue;
        int i = *n < HALL_BOARD_RECENT ? (*n)++ : *n - 1;
        for (; i > 0 && newer(&x, &calls[i - 1]); i--)
            calls[i] = calls[i - 1];
        calls[i] = x;
    }
    mdb_cursor_close(c);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

/* A window's state and current ticket id as window.c stores them. */
static int window_read(hall *h, MDB_txn *txn, const char *id, int *state, char *current, size_t cap)
{
    MDB_val k = {strlen(id), (void *)id}, v;
    msgpack_object o;
    *state = 0;
    current[0] = 0;
    int rc = mdb_get(txn, h->st->windows, &k, &v);
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc || hall_unpack(h, &v, &o) != 0)
        return rc ? rc : MDB_CORRUPTED;
    *state = (int)hall_field_i64(&o, 0);
    if (*state < 0 || *state > 2)
        return MDB_CORRUPTED;
    hall_field_str(&o, 1, current, cap);
    return 0;
}

int hall_board_read(hall *h, MDB_txn *txn, const hall_request *r, msgpack_packer *pk,
                    proto_error *e, int *mdb_rc)
{
    const hall_config *cfg = h->cfg;
    uint64_t seq;
    int rc = hall_store_applied_lsn(h->st, txn, &seq);
    if (rc)
        return hall_mdb_fail(e, mdb_rc, rc, "board");
    if (r->lsn && r->lsn != seq)
        return proto_fail(e, PROTO_E_UNAVAILABLE,
                          "board: the state is at LSN %llu but events went out up to %llu; "
                          "try again",
                          (unsigned long long)seq, (unsigned long long)r->lsn),
               -1;
    board_call calls[HALL_BOARD_RECENT];
    int n = 0;
    int32_t date = hall_local_day(&cfg->cal, r->now_ms);
    int32_t bday = hall_business_day(&cfg->cal, cfg->rules.day_close_min, r->now_ms);
    if ((rc = day_calls(h, txn, date, calls, &n)) ||
        (bday != date && (rc = day_calls(h, txn, bday, calls, &n))))
        return hall_mdb_fail(e, mdb_rc, rc, "board");

    msgpack_pack_map(pk, 5);
    proto_pack_kv_uint(pk, "seq", seq);
    proto_pack_kv_uint(pk, "now_ms", (uint64_t)r->now_ms);
    proto_pack_str(pk, "windows");
    msgpack_pack_map(pk, (size_t)cfg->n_windows);
    for (int i = 0; i < cfg->n_windows; i++) {
        int st;
        char cur[HALL_TICKET_ID_MAX + 1];
        hall_ticket t;
        msgpack_zone_clear(&h->zone);
        if ((rc = window_read(h, txn, cfg->windows[i].id, &st, cur, sizeof cur)) ||
            (cur[0] && (rc = hall_ticket_load(h, txn, cur, strlen(cur), &t, mdb_rc))))
            return hall_mdb_fail(e, mdb_rc, rc, "board");
        proto_pack_str(pk, cfg->windows[i].id);
        msgpack_pack_map(pk, 2);
        proto_pack_kv_str(pk, "state", win_states[st]);
        proto_pack_str(pk, "current");
        if (!cur[0]) {
            msgpack_pack_nil(pk);
            continue;
        }
        msgpack_pack_map(pk, 3);
        proto_pack_kv_str(pk, "ticket_id", t.id);
        proto_pack_kv_str(pk, "number", t.number);
        proto_pack_kv_str(pk, "line", t.line);
    }
    proto_pack_str(pk, "lines");
    msgpack_pack_map(pk, (size_t)cfg->n_lines);
    for (int i = 0; i < cfg->n_lines; i++) {
        uint32_t waiting;
        if ((rc = hall_line_waiting(h, txn, cfg->lines[i].id, &waiting)))
            return hall_mdb_fail(e, mdb_rc, rc, "board");
        proto_pack_str(pk, cfg->lines[i].id);
        msgpack_pack_map(pk, 1);
        proto_pack_kv_uint(pk, "waiting", waiting);
    }
    proto_pack_str(pk, "recent");
    msgpack_pack_array(pk, (size_t)n);
    for (int i = 0; i < n; i++) {
        msgpack_pack_map(pk, 3);
        proto_pack_kv_str(pk, "number", calls[i].number);
        proto_pack_kv_str(pk, "window", calls[i].window);
        proto_pack_kv_uint(pk, "at_ms", (uint64_t)calls[i].at_ms);
    }
    return 0;
}

/* A name: the string, or nil when the config has none. */
static void pack_name(msgpack_packer *pk, const char *key, const char *name)
{
    proto_pack_str(pk, key);
    if (name[0])
        proto_pack_str(pk, name);
    else
        msgpack_pack_nil(pk);
}

int hall_catalogue_read(hall *h, MDB_txn *txn, const hall_request *r, msgpack_packer *pk,
                        proto_error *e, int *mdb_rc)
{
    const hall_config *c = h->cfg;
    (void)txn, (void)r, (void)e, (void)mdb_rc;
    msgpack_pack_map(pk, 4);
    proto_pack_str(pk, "lines");
    msgpack_pack_array(pk, (size_t)c->n_lines);
    for (int i = 0; i < c->n_lines; i++) {
        msgpack_pack_map(pk, 4);
        proto_pack_kv_str(pk, "line", c->lines[i].id);
        pack_name(pk, "name", c->lines[i].name);
        pack_name(pk, "name_zh", c->lines[i].name_zh);
        proto_pack_kv_bool(pk, "pickup", c->lines[i].pickup);
    }
    proto_pack_str(pk, "services");
    msgpack_pack_array(pk, (size_t)c->n_services);
    for (int i = 0; i < c->n_services; i++) {
        const hall_service *s = &c->services[i];
        msgpack_pack_map(pk, 8);
        proto_pack_kv_str(pk, "service", s->code);
        pack_name(pk, "name", s->name);
        pack_name(pk, "name_zh", s->name_zh);
        proto_pack_kv_str(pk, "line", c->lines[s->line].id);
        proto_pack_kv_str(pk, "kind", s->kind == HALL_SERVICE_INSTANT ? "instant" : "review");
        proto_pack_kv_uint(pk, "days", (uint64_t)s->days);
        proto_pack_str(pk, "departments");
        msgpack_pack_array(pk, (size_t)s->n_departments);
        for (int j = 0; j < s->n_departments; j++)
            proto_pack_str(pk, c->departments[s->departments[j]].id);
        proto_pack_str(pk, "materials");
        msgpack_pack_array(pk, (size_t)s->n_checklist);
        for (int j = 0; j < s->n_checklist; j++) {
            const hall_material *m = &c->materials[s->checklist[j]];
            msgpack_pack_map(pk, 3);
            proto_pack_kv_str(pk, "code", m->code);
            pack_name(pk, "name", m->name);
            pack_name(pk, "name_zh", m->name_zh);
        }
    }
    proto_pack_str(pk, "windows");
    msgpack_pack_array(pk, (size_t)c->n_windows);
    for (int i = 0; i < c->n_windows; i++) {
        const hall_window *w = &c->windows[i];
        msgpack_pack_map(pk, 4);
        proto_pack_kv_str(pk, "window", w->id);
        proto_pack_str(pk, "lines");
        msgpack_pack_array(pk, (size_t)w->n_lines);
        for (int j = 0; j < w->n_lines; j++)
            proto_pack_str(pk, c->lines[w->lines[j]].id);
        proto_pack_kv_str(pk, "order", hall_window_order_name(w->order));
        pack_name(pk, "kind", w->kind);
    }
    proto_pack_str(pk, "departments");
    msgpack_pack_array(pk, (size_t)c->n_departments);
    for (int i = 0; i < c->n_departments; i++) {
        msgpack_pack_map(pk, 3);
        proto_pack_kv_str(pk, "department", c->departments[i].id);
        pack_name(pk, "name", c->departments[i].name);
        pack_name(pk, "name_zh", c->departments[i].name_zh);
    }
    return 0;
}
