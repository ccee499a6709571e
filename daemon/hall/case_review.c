/* daemon/hall/case_review.c: review.claim / review.decide / review.list by departments. */
#include "daemon/hall/case_internal.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* ---- review ---- */

int hall_review_claim(hall *h, MDB_txn *txn, const hall_request *r, msgpack_packer *pk,
                      proto_error *e, int *mdb_rc)
{
    uint8_t prefix[DEPT_KEY] = {0};
    memcpy(prefix, r->actor.id, strnlen(r->actor.id, DEPT_KEY));
    MDB_cursor *cur;
    int rc = mdb_cursor_open(txn, h->st->review, &cur);
    if (rc)
        return hall_mdb_fail(e, mdb_rc, rc, "review.claim");
    MDB_val k = {DEPT_KEY, prefix}, v;
    char no[CASE_NO_MAX + 1] = "";
    rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    if (rc == 0 && k.mv_size > DEPT_KEY + 8 && memcmp(k.mv_data, prefix, DEPT_KEY) == 0)
        hall_copy(no, sizeof no, (char *)k.mv_data + DEPT_KEY + 8, k.mv_size - DEPT_KEY - 8);
    mdb_cursor_close(cur);
    if (rc && rc != MDB_NOTFOUND)
        return hall_mdb_fail(e, mdb_rc, rc, "review.claim");
    if (!no[0]) {
        msgpack_pack_map(pk, 1);
        proto_pack_str(pk, "case");
        msgpack_pack_nil(pk);
        return 0;
    }
    hall_case c;
    if ((rc = hall_case_load(h, txn, no, strlen(no), &c, mdb_rc)))
        return hall_mdb_fail(e, mdb_rc, rc, "review.claim");
    int di = hall_case_dep_index(&c, r->actor.id);
    if (di < 0) /* the review index and the case disagree */
        return proto_fail(e, PROTO_E_INTERNAL, "case %s is in the queue of %s but not theirs", c.no,
                          r->actor.id),
               -1;
    c.deps[di].state = DEP_CLAIMED;
    c.deps[di].lease_until = r->now_ms + h->cfg->rules.claim_lease_ms;
    hall_case_note(&c, r, CH_CLAIMED, r->actor.id);
    if ((rc = hall_case_review_index(h, txn, &c, r->actor.id, false)) ||
        (rc = hall_case_timer_index(h, txn, c.deps[di].lease_until, TIMER_LEASE, c.no, r->actor.id,
                                    true)) ||
        (rc = hall_case_store(h, txn, &c)))
        return hall_mdb_fail(e, mdb_rc, rc, "review.claim");
    msgpack_pack_map(pk, 2);
    proto_pack_str(pk, "case");
    hall_case_pack(h, txn, &c, pk, hall_rules_version(h) >= 3);
    proto_pack_kv_uint(pk, "lease_until_ms", (uint64_t)c.deps[di].lease_until);
    return 0;
}

/* Puts every undecided department of c back in review (after a
 * supplement) or takes them out (entering one). */
int hall_case_undecided_to(hall *h, MDB_txn *txn, hall_case *c, bool back)
{
    int rc = 0;
    for (int i = 0; i < c->n_deps && !rc; i++) {
        case_dep *d = &c->deps[i];
        if (d->state == DEP_APPROVED || d->state == DEP_DENIED)
            continue;
        if (d->state == DEP_CLAIMED)
            rc = hall_case_timer_index(h, txn, d->lease_until, TIMER_LEASE, c->no, d->id, false);
        else if (d->state == DEP_PENDING && !back)
            rc = hall_case_review_index(h, txn, c, d->id, false);
        if (!rc && back) {
            d->state = DEP_PENDING;
            rc = hall_case_review_index(h, txn, c, d->id, true);
        } else if (!rc && d->state == DEP_CLAIMED) {
            d->state = DEP_PENDING; /* out of review while paused */
        }
    }
    return rc;
}

int hall_review_decide(hall *h, MDB_txn *txn, const hall_request *r, msgpack_packer *pk,
                       proto_error *e, int *mdb_rc)
{
    const char *dec, *reason;
    uint32_t dn, rn;
    char miss[HALL_MAX_LIST][HALL_ID_MAX + 1];
    int n_miss;
    hall_case c;
    if (proto_arg_str(r->args, "decision", true, &dec, &dn, e) ||
        proto_arg_str(r->args, "reason", false, &reason, &rn, e) ||
        hall_case_read_codes(r->args, "missing", false, miss, &n_miss, e))
        return -1;
    int d = -1;
    static const char *const decisions[] = {"approve", "deny", "supplement"};
    for (int i = 0; i < 3; i++)
        if (strlen(decisions[i]) == dn && !memcmp(dec, decisions[i], dn))
            d = i;
    if (d < 0)
        return proto_fail(e, PROTO_E_BAD_REQUEST,
                          "args.decision: expected approve, deny or supplement"),
               -1;
    if (d == 1 && (!reason || rn == 0))
        return proto_fail(e, PROTO_E_BAD_REQUEST, "args.reason: a denial needs a reason"), -1;
    if (d == 2 && n_miss == 0)
        return proto_fail(e, PROTO_E_BAD_REQUEST, "args.missing: a supplement lists materials"), -1;
    if (hall_case_load_arg_case(h, txn, r, &c, e, mdb_rc) || hall_case_check_dept_access(r, &c, e))
        return -1;
    int di = hall_case_dep_index(&c, r->actor.id);
    if (di < 0) /* not a department of the case (only a forged record gets here) */
        return proto_fail(e, PROTO_E_FORBIDDEN, "case %s is not reviewed by %s", c.no, r->actor.id),
               -1;
    /* Say why (an error makes no record: its message is no rule). */
    if (c.state != CASE_REVIEW)
        return proto_fail(e, PROTO_E_CONFLICT, "case %s is %s: nothing to decide", c.no,
                          case_states[c.state]),
               -1;
    if (c.deps[di].state == DEP_APPROVED)
        return proto_fail(e, PROTO_E_CONFLICT, "case %s: department %s approved it already", c.no,
                          r->actor.id),
               -1;
    if (c.deps[di].state != DEP_CLAIMED || c.deps[di].lease_until < r->now_ms)
        return proto_fail(e, PROTO_E_CONFLICT,
                          "case %s is not claimed by department %s (claim it first)", c.no,
                          r->actor.id),
               -1;
    int si = hall_config_service(h->cfg, c.service, strlen(c.service));
    if (d == 2) {
        for (int i = 0; i < n_miss; i++) {
            bool on = false;
            for (int j = 0; si >= 0 && j < h->cfg->services[si].n_checklist; j++)
                on |= !strcmp(h->cfg->materials[h->cfg->services[si].checklist[j]].code, miss[i]);
            if (!on)
                return proto_fail(e, PROTO_E_CHECKLIST,
                                  "args.missing: %s is not on the checklist of %s", miss[i],
                                  c.service),
                       -1;
        }
    }
    int rc = hall_case_timer_index(h, txn, c.deps[di].lease_until, TIMER_LEASE, c.no, r->actor.id,
                                   false);
    if (rc)
        return hall_mdb_fail(e, mdb_rc, rc, "review.decide");
    c.deps[di].lease_until = 0;
    if (d == 0) {
        c.deps[di].state = DEP_APPROVED;
        bool all = true;
        for (int i = 0; i < c.n_deps; i++)
            all &= c.deps[i].state == DEP_APPROVED;
        if (all)
            c.state = CASE_APPROVED;
    } else if (d == 1) {
        c.deps[di].state = DEP_DENIED;
        hall_case_copy_utf8(c.deps[di].reason, sizeof c.deps[di].reason, reason ? reason : "",
                            reason ? rn : 0);
        c.state = CASE_DENIED;
        rc = hall_case_undecided_to(h, txn, &c, false);
    } else {
        c.deps[di].state = DEP_SUPPLEMENT;
        c.state = CASE_SUPPLEMENT;
        c.supplement_start = r->now_ms;
        c.n_missing = n_miss;
        memcpy(c.missing, miss, sizeof miss);
        rc = hall_case_undecided_to(h, txn, &c, false);
    }
    hall_case_note(&c, r, d == 2 ? CH_SUPPLEMENT : CH_DECIDED, r->actor.id);
    /* A decided or paused case has no running deadline marks. */
    if (!rc && c.state != CASE_REVIEW)
        rc = hall_case_deadline_timers(h, txn, &c, false);
    if (!rc)
        rc = hall_case_store(h, txn, &c);
    if (rc)
        return hall_mdb_fail(e, mdb_rc, rc, "review.decide");
    msgpack_pack_map(pk, 1);
    proto_pack_kv_str(pk, "state", case_states[c.state]);
    return 0;
}

int hall_review_list(hall *h, MDB_txn *txn, const hall_request *r, msgpack_packer *pk,
                     proto_error *e, int *mdb_rc)
{
    const char *st;
    uint32_t sn;
    uint64_t limit = 100;
    bool present;
    if (proto_arg_str(r->args, "state", false, &st, &sn, e) ||
        proto_arg_uint(r->args, "limit", false, &limit, &present, e))
        return -1;
    int want = -1;
    if (st) {
        for (int i = 0; i < 3; i++)
            if (strlen(dep_states[i]) == sn && !memcmp(st, dep_states[i], sn))
                want = i;
        if (want < 0)
            return proto_fail(e, PROTO_E_BAD_REQUEST,
                              "args.state: expected pending, claimed or supplement"),
                   -1;
    }
    if (limit == 0 || limit > 1000)
        return proto_fail(e, PROTO_E_BAD_REQUEST, "args.limit: 1 to 1000"), -1;
    uint8_t prefix[DEPT_KEY] = {0};
    memcpy(prefix, r->actor.id, strnlen(r->actor.id, DEPT_KEY));
    MDB_cursor *cur;
    int rc = mdb_cursor_open(txn, h->st->deptcases, &cur);
    if (rc)
        return hall_mdb_fail(e, mdb_rc, rc, "review.list");
    /* Two passes would be needed to know the count first: collect. */
    static char found[1000][CASE_NO_MAX + 1];
    uint64_t n = 0;
    MDB_val k = {DEPT_KEY, prefix}, v;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0 && n < limit;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (k.mv_size <= DEPT_KEY || memcmp(k.mv_data, prefix, DEPT_KEY) != 0)
            break;
        hall_case c;
        int lrc =
            hall_case_load(h, txn, (char *)k.mv_data + DEPT_KEY, k.mv_size - DEPT_KEY, &c, mdb_rc);
        if (lrc) {
            rc = lrc;
            break;
        }
        int di = hall_case_dep_index(&c, r->actor.id);
        if (di < 0)
            continue; /* the index and the case disagree: not this department's */
        int ds = c.deps[di].state;
        bool open = ds == DEP_PENDING || ds == DEP_CLAIMED || ds == DEP_SUPPLEMENT;
        if (want >= 0 ? ds == want : open)
            hall_copy(found[n++], CASE_NO_MAX + 1, c.no, SIZE_MAX);
    }
    mdb_cursor_close(cur);
    if (rc && rc != MDB_NOTFOUND)
        return hall_mdb_fail(e, mdb_rc, rc, "review.list");
    msgpack_pack_map(pk, 1);
    proto_pack_str(pk, "cases");
    msgpack_pack_array(pk, (size_t)n);
    for (uint64_t i = 0; i < n; i++) {
        hall_case c;
        if ((rc = hall_case_load(h, txn, found[i], strlen(found[i]), &c, mdb_rc)))
            return hall_mdb_fail(e, mdb_rc, rc, "review.list");
        hall_case_pack(h, txn, &c, pk, true);
    }
    return 0;
}
