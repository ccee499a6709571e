/* daemon/hall/case_issue.c: supplement, delivery, ratings and the pickup check. */
#include "daemon/hall/case_internal.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* ---- supplement, delivery, ratings ---- */

int hall_case_supplement(hall *h, MDB_txn *txn, const hall_request *r, msgpack_packer *pk,
                         proto_error *e, int *mdb_rc)
{
    char mats[HALL_MAX_LIST][HALL_ID_MAX + 1];
    int n_mats;
    hall_case c;
    if (hall_case_read_codes(r->args, "materials", true, mats, &n_mats, e) ||
        hall_case_load_arg_case(h, txn, r, &c, e, mdb_rc))
        return -1;
    if (c.state != CASE_SUPPLEMENT)
        return proto_fail(e, PROTO_E_CONFLICT, "case %s is %s: no supplement is asked", c.no,
                          case_states[c.state]),
               -1;
    for (int i = 0; i < c.n_missing; i++)
        if (!hall_case_has_code(mats, n_mats, c.missing[i]))
            return proto_fail(e, PROTO_E_CHECKLIST, "case %s still misses %s", c.no, c.missing[i]),
                   -1;
    /* The clock stopped on working day X and runs again on day Y: the
     * deadline moves by the working days in [X, Y). */
    const hall_calendar *cal = &h->cfg->cal;
    int moved = hall_working_days_between(cal, hall_local_day(cal, c.supplement_start),
                                          hall_local_day(cal, r->now_ms));
    int32_t dday = hall_add_working_days(cal, hall_local_day(cal, c.deadline_ms), moved);
    c.deadline_ms = hall_local_ms(cal, dday, cal->close_min);
    c.state = CASE_REVIEW;
    c.supplement_start = 0;
    c.n_missing = 0;
    c.due_soon = c.overdue = false;
    int rc = hall_case_undecided_to(h, txn, &c, true);
    hall_case_note(&c, r, CH_RESUMED, NULL);
    if (!rc)
        rc = hall_case_deadline_timers(h, txn, &c, true);
    if (!rc)
        rc = hall_case_store(h, txn, &c);
    if (rc)
        return hall_mdb_fail(e, mdb_rc, rc, "case.supplement");
    msgpack_pack_map(pk, 1);
    proto_pack_kv_uint(pk, "deadline_ms", (uint64_t)c.deadline_ms);
    return 0;
}

int hall_case_deliver(hall *h, MDB_txn *txn, const hall_request *r, msgpack_packer *pk,
                      proto_error *e, int *mdb_rc)
{
    const char *method, *tracking;
    uint32_t mn, tn;
    hall_case c;
    if (proto_arg_str(r->args, "method", true, &method, &mn, e) ||
        proto_arg_str(r->args, "tracking", false, &tracking, &tn, e))
        return -1;
    bool mail = mn == 4 && !memcmp(method, "mail", 4);
    if (!mail && !(mn == 7 && !memcmp(method, "counter", 7)))
        return proto_fail(e, PROTO_E_BAD_REQUEST, "args.method: expected counter or mail"), -1;
    if (mail && (!tracking || tn == 0 || tn > 60))
        return proto_fail(e, PROTO_E_BAD_REQUEST, "args.tracking: mail needs a tracking number"),
               -1;
    if (hall_case_load_arg_case(h, txn, r, &c, e, mdb_rc))
        return -1;
    if (!hall_case_is_ready(&c))
        return proto_fail(e, PROTO_E_CONFLICT, "case %s is %s: not ready for delivery", c.no,
                          case_states[c.state]),
               -1;
    c.state = CASE_DELIVERED;
    c.delivered_ms = r->now_ms;
    hall_copy(c.method, sizeof c.method, mail ? "mail" : "counter", SIZE_MAX);
    if (mail)
        hall_copy(c.tracking, sizeof c.tracking, tracking, tn);
    hall_case_note(&c, r, CH_DELIVERED, NULL);
    int rc = hall_case_store(h, txn, &c);
    if (!rc)
        rc = hall_stats_case(h, txn, r->now_ms, STAT_DELIVERED);
    if (rc)
        return hall_mdb_fail(e, mdb_rc, rc, "case.deliver");
    msgpack_pack_map(pk, 0);
    return 0;
}

int hall_rate(hall *h, MDB_txn *txn, const hall_request *r, msgpack_packer *pk, proto_error *e,
              int *mdb_rc)
{
    const char *tid, *no, *comment;
    uint32_t tn, nn, cn;
    uint64_t score;
    bool present;
    if (proto_arg_str(r->args, "ticket_id", false, &tid, &tn, e) ||
        proto_arg_str(r->args, "case_no", false, &no, &nn, e) ||
        proto_arg_uint(r->args, "score", true, &score, &present, e) ||
        proto_arg_str(r->args, "comment", false, &comment, &cn, e))
        return -1;
    if (score < 1 || score > 5)
        return proto_fail(e, PROTO_E_BAD_REQUEST, "args.score: 1 to 5"), -1;
    if (!tid == !no)
        return proto_fail(e, PROTO_E_BAD_REQUEST, "args.ticket_id or args.case_no: give one"), -1;
    if (comment && cn > 500)
        return proto_fail(e, PROTO_E_BAD_REQUEST, "args.comment: at most 500 bytes"), -1;
    uint8_t key[1 + CASE_NO_MAX + HALL_TICKET_ID_MAX];
    size_t kl;
    int rc;
    if (tid) {
        hall_ticket t;
        rc = hall_ticket_load(h, txn, tid, tn, &t, mdb_rc);
        if (rc == MDB_NOTFOUND)
            return proto_fail(e, PROTO_E_NOT_FOUND, "args.ticket_id: no ticket '%.*s'", (int)tn,
                              tid),
                   -1;
        if (rc)
            return hall_mdb_fail(e, mdb_rc, rc, "rate");
        /* A rating is of a service given: the ticket was called to a
         * window (and is being served, or was). */
        if (t.state != HALL_T_CALLED && t.state != HALL_T_SERVING && t.state != HALL_T_DONE)
            return proto_fail(e, PROTO_E_CONFLICT,
                              "ticket %.*s is %s: a ticket is rated once a window served it",
                              (int)tn, tid, hall_ticket_state_name(t.state)),
                   -1;
        key[0] = 't';
        memcpy(key + 1, tid, tn);
        kl = 1 + tn;
    } else {
        hall_case c;
        if (hall_case_load_arg_case(h, txn, r, &c, e, mdb_rc))
            return -1;
        if (!hall_case_is_ready(&c) && c.state != CASE_DELIVERED)
            return proto_fail(e, PROTO_E_CONFLICT,
                              "case %s is in %s: a case is rated once it is decided", c.no,
                              case_states[c.state]),
                   -1;
        key[0] = 'c';
        memcpy(key + 1, no, nn);
        kl = 1 + nn;
    }
    MDB_val k = {kl, key}, v;
    rc = mdb_get(txn, h->st->ratings, &k, &v);
    if (rc == 0)
        return proto_fail(e, PROTO_E_CONFLICT, "already rated: a rating is given once"), -1;
    if (rc != MDB_NOTFOUND)
        return hall_mdb_fail(e, mdb_rc, rc, "rate");
    msgpack_packer rpk;
    proto_buf_reset(&h->scratch);
    proto_packer_init(&rpk, &h->scratch);
    msgpack_pack_array(&rpk, 3);
    msgpack_pack_uint64(&rpk, score);
    msgpack_pack_int64(&rpk, r->now_ms);
    proto_pack_strn(&rpk, comment ? comment : "", comment ? cn : 0);
    v.mv_size = h->scratch.len;
    v.mv_data = h->scratch.p;
    if ((rc = mdb_put(txn, h->st->ratings, &k, &v, 0)) ||
        (rc = hall_stats_rating(h, txn, r->now_ms, (int)score)))
        return hall_mdb_fail(e, mdb_rc, rc, "rate");
    msgpack_pack_map(pk, 0);
    return 0;
}

/* A ticket at the issuance line names a ready case. */
int hall_case_check_pickup(hall *h, MDB_txn *txn, const char *no, size_t n, proto_error *e,
                           int *mdb_rc)
{
    hall_case c;
    int rc = hall_case_load(h, txn, no, n, &c, mdb_rc);
    if (rc == MDB_NOTFOUND)
        return proto_fail(e, PROTO_E_NOT_FOUND, "args.case_no: no case '%.*s'", (int)n, no), -1;
    if (rc)
        return hall_mdb_fail(e, mdb_rc, rc, "case");
    if (c.state == CASE_DELIVERED)
        return proto_fail(e, PROTO_E_CONFLICT, "case %s was delivered: nothing left to pick up",
                          c.no),
               -1;
    if (!hall_case_is_ready(&c))
        return proto_fail(e, PROTO_E_CONFLICT, "case %s is %s: nothing to pick up yet", c.no,
                          case_states[c.state]),
               -1;
    return 0;
}
