/* daemon/hall/appointment.c: appointments (预约): booking a slot, using the
 * code at the kiosk, and the no-show of a code whose window passed unused.
 *
 * A code is "P", the slot's local day and a sequence within that day
 * ("P20261125-0003"): readable at a kiosk and derived from the state (the
 * next number after the day's last code). The slot lies within the hall's
 * opening hours on a working day and not in the past.
 *
 * ticket.take with a code uses it once: within rules.appointment_window_ms
 * of its slot (either side) the ticket gets the appointment class; further
 * away it gets a ticket with no appointment preference (contract 1.1), and
 * the code is used all the same (one code, one ticket). A code booked for
 * another line is `conflict`. A code still unused when its window has
 * passed is marked no_show by a time-driven record (appointment.timer),
 * handed out by hall_due like a lease expiry, so the replay rebuilds it; a
 * no_show code may still be used later, for a ticket with no preference.
 *
 * Stored appointment (MessagePack array, fields only ever appended):
 *   [line, slot_ms, state, booked_ms, ticket id, used_ms, no_show_ms,
 *    in_slot]
 * Indexes:
 *   appointments  code -> the appointment
 *   appt_due      until_ms(8 BE) code -> ""   booked codes, by the end of
 *                                              their window (+1 ms) */
#include "daemon/hall/ticket.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

enum { APPT_BOOKED = 0, APPT_USED = 1, APPT_NO_SHOW = 2 };
static const char *const appt_states[] = {"booked", "used", "no_show"};

#define APPT_CODE_LEN 14 /* P YYYYMMDD - NNNN */
#define APPT_MAX_PER_DAY 9999
#define APPT_HORIZON_MS (366LL * HALL_DAY_MS)

typedef struct hall_appt {
    char code[APPT_CODE_LEN + 1];
    char line[HALL_ID_MAX + 1];
    int64_t slot_ms;
    int state;
    int64_t booked_ms;
    char ticket[HALL_TICKET_ID_MAX + 1];
    int64_t used_ms;
    int64_t no_show_ms;
    bool in_slot;
} hall_appt;

static int appt_load(hall *h, MDB_txn *txn, const char *code, size_t n, hall_appt *a, int *mdb_rc)
{
    memset(a, 0, sizeof *a);
    if (n != APPT_CODE_LEN)
        return MDB_NOTFOUND;
    MDB_val k = {n, (void *)code}, v;
    msgpack_object o;
    int rc = mdb_get(txn, h->st->appointments, &k, &v);
    if (rc) {
        if (rc != MDB_NOTFOUND)
            *mdb_rc = rc;
        return rc;
    }
    if (hall_unpack(h, &v, &o) != 0 || o.type != MSGPACK_OBJECT_ARRAY) {
        *mdb_rc = MDB_CORRUPTED;
        return MDB_CORRUPTED;
    }
    memcpy(a->code, code, n);
    hall_field_str(&o, 0, a->line, sizeof a->line);
    a->slot_ms = hall_field_i64(&o, 1);
    a->state = (int)hall_field_i64(&o, 2);
    a->booked_ms = hall_field_i64(&o, 3);
    hall_field_str(&o, 4, a->ticket, sizeof a->ticket);
    a->used_ms = hall_field_i64(&o, 5);
    a->no_show_ms = hall_field_i64(&o, 6);
    a->in_slot = hall_field_i64(&o, 7) != 0;
    if (a->state < APPT_BOOKED || a->state > APPT_NO_SHOW) {
        *mdb_rc = MDB_CORRUPTED;
        return MDB_CORRUPTED;
    }
    return 0;
}

static int appt_store(hall *h, MDB_txn *txn, const hall_appt *a)
{
    msgpack_packer pk;
    proto_buf_reset(&h->scratch);
    proto_packer_init(&pk, &h->scratch);
    msgpack_pack_array(&pk, 8);
    proto_pack_str(&pk, a->line);
    msgpack_pack_int64(&pk, a->slot_ms);
    msgpack_pack_int(&pk, a->state);
    msgpack_pack_int64(&pk, a->booked_ms);
    proto_pack_str(&pk, a->ticket);
    msgpack_pack_int64(&pk, a->used_ms);
    msgpack_pack_int64(&pk, a->no_show_ms);
    msgpack_pack_int(&pk, a->in_slot);
    if (h->scratch.oom)
        return ENOMEM;
    MDB_val k = {strlen(a->code), (void *)a->code}, v = {h->scratch.len, h->scratch.p};
    return mdb_put(txn, h->st->appointments, &k, &v, 0);
}

/* The no-show is due the first ms after the window. */
static int64_t appt_until(const hall *h, const hall_appt *a)
{
    return a->slot_ms + h->cfg->rules.appointment_window_ms + 1;
}

static int appt_due_index(hall *h, MDB_txn *txn, const hall_appt *a, bool put)
{
    uint8_t key[8 + APPT_CODE_LEN];
    hall_be64_put(key, (uint64_t)appt_until(h, a));
    memcpy(key + 8, a->code, APPT_CODE_LEN);
    MDB_val k = {sizeof key, key}, v = {0, (void *)""};
    int rc =
        put ? mdb_put(txn, h->st->appt_due, &k, &v, 0) : mdb_del(txn, h->st->appt_due, &k, NULL);
    return rc == MDB_NOTFOUND && !put ? 0 : rc;
}

/* The next sequence number of `day`'s codes: one after the day's last
 * code, found by seeking just past the day's prefix and stepping back. */
static int next_seq(hall *h, MDB_txn *txn, const char compact[9], unsigned *seq)
{
    char prefix[11], past[11];
    snprintf(prefix, sizeof prefix, "P%s-", compact);
    snprintf(past, sizeof past, "P%s.", compact); /* '.' sorts right after '-' */
    MDB_cursor *c;
    int rc = mdb_cursor_open(txn, h->st->appointments, &c);
    if (rc)
        return rc;
    MDB_val k = {10, past}, v;
    rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
    if (rc == 0)
        rc = mdb_cursor_get(c, &k, &v, MDB_PREV);
    else if (rc == MDB_NOTFOUND)
        rc = mdb_cursor_get(c, &k, &v, MDB_LAST);
    *seq = 1;
    if (rc == 0 && k.mv_size == APPT_CODE_LEN && memcmp(k.mv_data, prefix, 10) == 0) {
        unsigned n = 0;
        for (int i = 10; i < APPT_CODE_LEN; i++)
            n = n * 10 + (unsigned)(((const char *)k.mv_data)[i] - '0');
        *seq = n + 1;
    }
    mdb_cursor_close(c);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

int hall_appointment_book(hall *h, MDB_txn *txn, const hall_request *r, msgpack_packer *pk,
                          proto_error *e, int *mdb_rc)
{
    const char *line;
    uint32_t ln;
    uint64_t slot;
    bool present;
    if (proto_arg_str(r->args, "line", true, &line, &ln, e) ||
        proto_arg_uint(r->args, "slot_ms", true, &slot, &present, e))
        return -1;
    int li = hall_config_line(h->cfg, line, ln);
    if (li < 0)
        return proto_fail(e, PROTO_E_NOT_FOUND, "args.line: no line '%.*s'", (int)ln, line), -1;
    if (slot < (uint64_t)r->now_ms)
        return proto_fail(e, PROTO_E_BAD_REQUEST, "args.slot_ms: the slot is in the past"), -1;
    if (slot - (uint64_t)r->now_ms > (uint64_t)APPT_HORIZON_MS)
        return proto_fail(e, PROTO_E_BAD_REQUEST, "args.slot_ms: more than 366 days ahead"), -1;
    const hall_calendar *cal = &h->cfg->cal;
    int32_t day = hall_local_day(cal, (int64_t)slot);
    int minute = hall_local_minute(cal, (int64_t)slot);
    if (!hall_is_working_day(cal, day))
        return proto_fail(e, PROTO_E_BAD_REQUEST, "args.slot_ms: the hall is closed that day"), -1;
    if (minute < cal->open_min || minute >= cal->close_min)
        return proto_fail(e, PROTO_E_BAD_REQUEST,
                          "args.slot_ms: outside the opening hours %02d:%02d-%02d:%02d",
                          cal->open_min / 60, cal->open_min % 60, cal->close_min / 60,
                          cal->close_min % 60),
               -1;

    char compact[9];
    unsigned seq;
    hall_day_compact(day, compact);
    int rc = next_seq(h, txn, compact, &seq);
    if (rc)
        return hall_mdb_fail(e, mdb_rc, rc, "appointment.book");
    if (seq > APPT_MAX_PER_DAY)
        return proto_fail(e, PROTO_E_LIMIT, "args.slot_ms: %d appointments that day already",
                          APPT_MAX_PER_DAY),
               -1;
    hall_appt a = {0};
    snprintf(a.code, sizeof a.code, "P%s-%04u", compact, seq);
    snprintf(a.line, sizeof a.line, "%s", h->cfg->lines[li].id);
    a.slot_ms = (int64_t)slot;
    a.state = APPT_BOOKED;
    a.booked_ms = r->now_ms;
    if ((rc = appt_store(h, txn, &a)) || (rc = appt_due_index(h, txn, &a, true)))
        return hall_mdb_fail(e, mdb_rc, rc, "appointment.book");
    msgpack_pack_map(pk, 2);
    proto_pack_kv_str(pk, "code", a.code);
    proto_pack_kv_uint(pk, "slot_ms", (uint64_t)a.slot_ms);
    return 0;
}

/* The appointment named by args.code: 0, or -1 with e set (not_found, or
 * an LMDB failure in *mdb_rc). */
static int load_arg_appt(hall *h, MDB_txn *txn, const hall_request *r, hall_appt *a, proto_error *e,
                         int *mdb_rc)
{
    const char *code;
    uint32_t n;
    if (proto_arg_str(r->args, "code", true, &code, &n, e))
        return -1;
    int rc = appt_load(h, txn, code, n, a, mdb_rc);
    if (rc == MDB_NOTFOUND)
        return proto_fail(e, PROTO_E_NOT_FOUND, "args.code: no appointment '%.*s'", (int)n, code),
               -1;
    if (rc)
        return hall_mdb_fail(e, mdb_rc, rc, r->def->name);
    return 0;
}

int hall_appointment_get(hall *h, MDB_txn *txn, const hall_request *r, msgpack_packer *pk,
                         proto_error *e, int *mdb_rc)
{
    hall_appt a;
    if (load_arg_appt(h, txn, r, &a, e, mdb_rc))
        return -1;
    int64_t w = h->cfg->rules.appointment_window_ms;
    bool used = a.state == APPT_USED;
    msgpack_pack_map(pk, 6 + (used ? 2 : 0));
    proto_pack_kv_str(pk, "code", a.code);
    proto_pack_kv_str(pk, "line", a.line);
    proto_pack_kv_uint(pk, "slot_ms", (uint64_t)a.slot_ms);
    proto_pack_kv_str(pk, "state", appt_states[a.state]);
    proto_pack_kv_uint(pk, "window_from_ms", (uint64_t)(a.slot_ms - w));
    proto_pack_kv_uint(pk, "window_until_ms", (uint64_t)(a.slot_ms + w));
    if (used) {
        proto_pack_kv_str(pk, "ticket_id", a.ticket);
        proto_pack_kv_bool(pk, "in_slot", a.in_slot);
    }
    return 0;
}

int hall_appointment_check(hall *h, MDB_txn *txn, const char *code, size_t n, const char *line,
                           int64_t now, bool *in_slot, proto_error *e, int *mdb_rc)
{
    hall_appt a;
    int rc = appt_load(h, txn, code, n, &a, mdb_rc);
    if (rc == MDB_NOTFOUND)
        return proto_fail(e, PROTO_E_NOT_FOUND, "args.appointment: no appointment '%.*s'", (int)n,
                          code),
               -1;
    if (rc)
        return hall_mdb_fail(e, mdb_rc, rc, "appointment");
    if (a.state == APPT_USED)
        return proto_fail(e, PROTO_E_CONFLICT, "args.appointment: %s was used already (ticket %s)",
                          a.code, a.ticket),
               -1;
    if (strcmp(a.line, line) != 0)
        return proto_fail(e, PROTO_E_CONFLICT, "args.appointment: %s is booked for line %s", a.code,
                          a.line),
               -1;
    int64_t d = now - a.slot_ms;
    *in_slot = a.state == APPT_BOOKED && d >= -h->cfg->rules.appointment_window_ms &&
               d <= h->cfg->rules.appointment_window_ms;
    return 0;
}

int hall_appointment_use(hall *h, MDB_txn *txn, const char *code, size_t n, const char *ticket_id,
                         int64_t now, bool in_slot)
{
    hall_appt a;
    int mdb_rc = 0, rc = appt_load(h, txn, code, n, &a, &mdb_rc);
    if (rc)
        return rc;
    if (a.state == APPT_BOOKED && (rc = appt_due_index(h, txn, &a, false)))
        return rc;
    a.state = APPT_USED;
    snprintf(a.ticket, sizeof a.ticket, "%s", ticket_id);
    a.used_ms = now;
    a.in_slot = in_slot;
    return appt_store(h, txn, &a);
}

int hall_appointment_timer(hall *h, MDB_txn *txn, const hall_request *r, msgpack_packer *pk,
                           proto_error *e, int *mdb_rc)
{
    hall_appt a;
    if (load_arg_appt(h, txn, r, &a, e, mdb_rc))
        return -1;
    if (a.state != APPT_BOOKED)
        return proto_fail(e, PROTO_E_INTERNAL, "appointment %s is %s: no no-show is due", a.code,
                          appt_states[a.state]),
               -1;
    a.state = APPT_NO_SHOW;
    a.no_show_ms = r->now_ms;
    int rc;
    if ((rc = appt_due_index(h, txn, &a, false)) || (rc = appt_store(h, txn, &a)))
        return hall_mdb_fail(e, mdb_rc, rc, "appointment.timer");
    msgpack_pack_map(pk, 1);
    proto_pack_kv_str(pk, "state", appt_states[a.state]);
    return 0;
}

int64_t hall_appointment_next_due(hall *h, MDB_txn *txn, proto_buf *out)
{
    MDB_cursor *c;
    MDB_val k, v;
    int64_t at = INT64_MAX;
    if (mdb_cursor_open(txn, h->st->appt_due, &c) != 0)
        return at;
    if (mdb_cursor_get(c, &k, &v, MDB_FIRST) == 0 && k.mv_size == 8 + APPT_CODE_LEN) {
        at = (int64_t)hall_be64_get(k.mv_data);
        if (out) {
            msgpack_packer pk;
            proto_buf_reset(out);
            proto_packer_init(&pk, out);
            msgpack_pack_map(&pk, 1);
            proto_pack_str(&pk, "code");
            proto_pack_strn(&pk, (const char *)k.mv_data + 8, APPT_CODE_LEN);
        }
    }
    mdb_cursor_close(c);
    return at;
}
