/* daemon/hall/events.c: the events a record causes, for subscribers.
 *
 * hall_exec collects the events of one mutation while it runs and the
 * daemon writes them into the record's payload ("ev"), so the log itself
 * says what was announced: a subscriber that reconnects with `since` gets
 * them from the WAL exactly as they went out live, and a replay checks that
 * it would announce the same. Each event is packed as
 *   [topic, [department...], data]
 * where the departments list names who may see a case's events (empty:
 * everyone). Events are a pure function of the state and the request, like
 * the result.
 *
 * What causes what:
 *   call      window.call and window.recall with a ticket
 *   line      any change of a line's waiting count (after the op)
 *   window    window.state; the day's close (every window closed)
 *   case      a case created or its state or a department's state changed
 *             (from rules 3 with each department's state, the change and
 *             its time)
 *   deadline  a case turning due_soon or overdue
 *
 * A leaf of daemon/hall/ but for stored values (value.c): it reads lines'
 * waiting counts only through the function hall_exec hands it, and the
 * handlers report to it (hall_emit_*, hall_events_line_stored); it calls
 * none of them. */
#include "daemon/hall/events.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const topic_names[HALL_TOPIC__COUNT] = {"call", "line", "case", "deadline",
                                                           "window"};

const char *hall_topic_name(int t)
{
    return t >= 0 && t < HALL_TOPIC__COUNT ? topic_names[t] : "";
}

int hall_topic_from_name(const char *s, size_t n)
{
    for (int t = 0; t < HALL_TOPIC__COUNT; t++)
        if (strlen(topic_names[t]) == n && memcmp(topic_names[t], s, n) == 0)
            return t;
    return -1;
}

/* Starts one event: [topic, [deps...], then the caller packs data. */
static void begin(hall *h, msgpack_packer *pk, int topic, const char *const *deps, int n_deps)
{
    proto_packer_init(pk, &h->ev);
    msgpack_pack_array(pk, 3);
    proto_pack_str(pk, topic_names[topic]);
    msgpack_pack_array(pk, (size_t)n_deps);
    for (int i = 0; i < n_deps; i++)
        proto_pack_str(pk, deps[i]);
    h->n_ev++;
}

void hall_emit_case(hall *h, const char *case_no, const char *state, const char *const *deps,
                    int n_deps)
{
    msgpack_packer pk;
    begin(h, &pk, HALL_TOPIC_CASE, deps, n_deps);
    msgpack_pack_map(&pk, 2);
    proto_pack_kv_str(&pk, "case_no", case_no);
    proto_pack_kv_str(&pk, "state", state);
}

void hall_emit_case_v3(hall *h, const char *case_no, const char *state, const char *const *deps,
                       const char *const *dep_states, int n_deps, const char *change)
{
    msgpack_packer pk;
    begin(h, &pk, HALL_TOPIC_CASE, deps, n_deps);
    msgpack_pack_map(&pk, 4); /* at_ms: the feed adds the record's time */
    proto_pack_kv_str(&pk, "case_no", case_no);
    proto_pack_kv_str(&pk, "state", state);
    proto_pack_str(&pk, "departments");
    msgpack_pack_array(&pk, (size_t)n_deps);
    for (int i = 0; i < n_deps; i++) {
        msgpack_pack_map(&pk, 2);
        proto_pack_kv_str(&pk, "department", deps[i]);
        proto_pack_kv_str(&pk, "state", dep_states[i]);
    }
    proto_pack_kv_str(&pk, "change", change);
}

void hall_emit_deadline(hall *h, const char *case_no, bool overdue, const char *const *deps,
                        int n_deps)
{
    msgpack_packer pk;
    begin(h, &pk, HALL_TOPIC_DEADLINE, deps, n_deps);
    msgpack_pack_map(&pk, 2);
    proto_pack_kv_str(&pk, "case_no", case_no);
    proto_pack_kv_bool(&pk, overdue ? "overdue" : "due_soon", true);
}

static void emit_window(hall *h, const char *window, const char *state)
{
    msgpack_packer pk;
    begin(h, &pk, HALL_TOPIC_WINDOW, NULL, 0);
    msgpack_pack_map(&pk, 2);
    proto_pack_kv_str(&pk, "window", window);
    proto_pack_kv_str(&pk, "state", state);
}

/* Ops that may change how many tickets wait in a line. */
static bool touches_lines(hall_op op)
{
    switch (op) {
    case HALL_OP_TICKET_TAKE:
    case HALL_OP_TICKET_RETURN:
    case HALL_OP_WINDOW_CALL:
    case HALL_OP_WINDOW_NO_SHOW:
    case HALL_OP_WINDOW_TRANSFER:
    case HALL_OP_WINDOW_DONE:
    case HALL_OP_DAY_CLOSE:
        return true;
    default:
        return false;
    }
}

int hall_events_before(hall *h, MDB_txn *txn, const hall_request *r, hall_waiting_fn line_waiting)
{
    proto_buf_reset(&h->ev);
    h->n_ev = 0;
    h->ev_lines_valid = false;
    /* The counts left by the previous op of this batch are current unless
     * an op in between may have changed them (one that stored a line or
     * changed the config) or failed after this. */
    bool known = h->in_batch && h->ev_txn == txn;
    h->ev_txn = NULL;
    h->ev_keep = false;
    if (!h->cfg || !touches_lines(r->def->op)) {
        h->ev_keep = known;
        h->ev_cfg = h->cfg;
        return 0;
    }
    if (h->ev_lines_cap < h->cfg->n_lines) {
        size_t n = (size_t)h->cfg->n_lines;
        uint32_t *p = realloc(h->ev_lines, sizeof *p * n);
        if (p)
            h->ev_lines = p;
        uint32_t *q = p ? realloc(h->ev_lines_now, sizeof *q * n) : NULL;
        if (q)
            h->ev_lines_now = q;
        bool *b = q ? realloc(h->ev_stored, sizeof *b * n) : NULL;
        if (!b)
            return ENOMEM;
        h->ev_stored = b;
        h->ev_lines_cap = h->cfg->n_lines;
        known = false;
    }
    memset(h->ev_stored, 0, sizeof *h->ev_stored * (size_t)h->cfg->n_lines);
    for (int i = 0; i < h->cfg->n_lines && !known; i++) {
        int rc = line_waiting(h, txn, h->cfg->lines[i].id, &h->ev_lines[i]);
        if (rc)
            return rc;
    }
    h->ev_lines_valid = true;
    return 0;
}

int hall_events_after(hall *h, MDB_txn *txn, const hall_request *r, const proto_buf *result)
{
    msgpack_packer pk;
    switch (r->def->op) {
    case HALL_OP_WINDOW_CALL:
    case HALL_OP_WINDOW_RECALL: {
        msgpack_object o;
        if (hall_unpack_in(&h->zone, result->p, result->len, &o) == 0) {
            const msgpack_object *t = proto_map_get(&o, "ticket");
            const msgpack_object *num = t ? proto_map_get(t, "number") : NULL;
            const msgpack_object *line = t ? proto_map_get(t, "line") : NULL;
            if (num && line && num->type == MSGPACK_OBJECT_STR &&
                line->type == MSGPACK_OBJECT_STR) {
                begin(h, &pk, HALL_TOPIC_CALL, NULL, 0);
                msgpack_pack_map(&pk, 3);
                proto_pack_str(&pk, "number");
                proto_pack_strn(&pk, num->via.str.ptr, num->via.str.size);
                proto_pack_kv_str(&pk, "window", r->actor.id);
                proto_pack_str(&pk, "line");
                proto_pack_strn(&pk, line->via.str.ptr, line->via.str.size);
            }
        }
        break;
    }
    case HALL_OP_WINDOW_STATE: {
        const char *st;
        uint32_t n;
        proto_error e;
        if (proto_arg_str(r->args, "state", true, &st, &n, &e) == PROTO_OK) {
            char s[16];
            snprintf(s, sizeof s, "%.*s", (int)(n < 15 ? n : 15), st);
            emit_window(h, r->actor.id, s);
        }
        break;
    }
    case HALL_OP_DAY_CLOSE:
        for (int i = 0; i < h->cfg->n_windows; i++)
            emit_window(h, h->cfg->windows[i].id, "closed");
        break;
    default:
        break;
    }
    if (h->ev_lines_valid) {
        /* A line the op did not store still has the count it had before. */
        for (int i = 0; i < h->cfg->n_lines; i++) {
            uint32_t now = h->ev_lines_now[i];
            if (!h->ev_stored[i] || now == h->ev_lines[i])
                continue;
            h->ev_lines[i] = now;
            begin(h, &pk, HALL_TOPIC_LINE, NULL, 0);
            msgpack_pack_map(&pk, 2);
            proto_pack_kv_str(&pk, "line", h->cfg->lines[i].id);
            proto_pack_kv_uint(&pk, "waiting", now);
        }
        if (!h->ev.oom)
            h->ev_txn = txn; /* the next op of the batch starts from these */
    } else if (h->ev_keep && h->cfg == h->ev_cfg) {
        h->ev_txn = txn; /* this op left every line as it was */
    }
    return h->ev.oom ? ENOMEM : 0;
}

void hall_events_line_stored(hall *h, const char *line, uint32_t waiting)
{
    h->ev_keep = false;
    if (!h->ev_lines_valid)
        return;
    for (int i = 0; i < h->cfg->n_lines; i++)
        if (strcmp(h->cfg->lines[i].id, line) == 0) {
            h->ev_lines_now[i] = waiting;
            h->ev_stored[i] = true;
            return;
        }
}

void hall_events_free(hall *h)
{
    proto_buf_free(&h->ev);
    free(h->ev_lines);
    free(h->ev_lines_now);
    free(h->ev_stored);
    h->ev_lines = NULL;
    h->ev_lines_now = NULL;
    h->ev_stored = NULL;
    h->ev_lines_cap = 0;
}

const uint8_t *hall_events(const hall *h, size_t *len, uint32_t *n)
{
    *len = h->ev.len;
    *n = h->n_ev;
    return h->ev.p;
}
