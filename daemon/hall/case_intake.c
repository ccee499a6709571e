/* daemon/hall/case_intake.c: window.intake: an application accepted (or refused) at a window. */
#include "daemon/hall/case_internal.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* ---- intake ---- */

/* Masks an identity number for display: first 3 and last 4 characters. */
static void mask_id(const char *id, size_t n, char *out, size_t cap)
{
    if (n <= 7)
        hall_copy(out, cap, id, n > 1 ? 1 : n);
    else
        snprintf(out, cap, "%.3s%.*s%.4s", id, (int)(n - 7 > 16 ? 16 : n - 7), "****************",
                 id + n - 4);
}

int hall_window_intake(hall *h, MDB_txn *txn, const hall_request *r, msgpack_packer *pk,
                       proto_error *e, int *mdb_rc)
{
    static const char *const outcomes[] = {"accept", "notify", "refuse", "instant"};
    const char *svc, *outcome, *reason, *kind, *aid;
    uint32_t sn, on, rn, kn, an;
    const msgpack_object *app;
    char mats[HALL_MAX_LIST][HALL_ID_MAX + 1];
    int n_mats;
    if (proto_arg_str(r->args, "service", true, &svc, &sn, e) ||
        proto_arg_map(r->args, "applicant", true, &app, e) ||
        hall_case_read_codes(r->args, "materials", true, mats, &n_mats, e) ||
        proto_arg_str(r->args, "outcome", true, &outcome, &on, e) ||
        proto_arg_str(r->args, "reason", false, &reason, &rn, e))
        return -1;
    /* The daemon replaces the id by its keyed hash and masked form before
     * the request is logged (daemon/pii.h); a bare id (tests that drive the
     * hall directly) is masked here and has no hash. */
    const char *ahash = NULL, *amasked = NULL;
    uint32_t ahn = 0, amn = 0;
    if (proto_arg_str(app, "id_hash", false, &ahash, &ahn, e) ||
        proto_arg_str(app, "id_masked", false, &amasked, &amn, e))
        return proto_fail(e, PROTO_E_BAD_REQUEST, "args.applicant.%s", e->msg + 5), -1;
    if (proto_arg_str(app, "kind", true, &kind, &kn, e) ||
        (!amasked && proto_arg_str(app, "id", true, &aid, &an, e))) {
        /* Name the nested field. */
        char m[200];
        snprintf(m, sizeof m, "args.applicant.%s", e->msg + 5);
        return proto_fail(e, PROTO_E_BAD_REQUEST, "%s", m), -1;
    }
    if (!((kn == 6 && !memcmp(kind, "person", 6)) || (kn == 3 && !memcmp(kind, "org", 3))))
        return proto_fail(e, PROTO_E_BAD_REQUEST, "args.applicant.kind: expected person or org"),
               -1;
    if (!amasked && (an == 0 || an > 64))
        return proto_fail(e, PROTO_E_BAD_REQUEST, "args.applicant.id: 1 to 64 characters"), -1;
    if (amasked && (amn == 0 || amn > 39 || !ahash || ahn != 32))
        return proto_fail(e, PROTO_E_BAD_REQUEST, "args.applicant: malformed id_hash/id_masked"),
               -1;
    int oc = -1;
    for (int i = 0; i < 4; i++)
        if (strlen(outcomes[i]) == on && !memcmp(outcome, outcomes[i], on))
            oc = i;
    if (oc < 0)
        return proto_fail(e, PROTO_E_BAD_REQUEST,
                          "args.outcome: expected accept, notify, refuse or instant"),
               -1;
    int si = hall_config_service(h->cfg, svc, sn);
    if (si < 0)
        return proto_fail(e, PROTO_E_NOT_FOUND, "args.service: no service '%.*s'", (int)sn, svc),
               -1;
    const hall_service *s = &h->cfg->services[si];
    /* The window and its current ticket. */
    MDB_val wk = {strlen(r->actor.id), (void *)r->actor.id}, wv;
    msgpack_object wo;
    char current[HALL_TICKET_ID_MAX + 1] = "";
    int rc = mdb_get(txn, h->st->windows, &wk, &wv);
    if (rc == 0 && hall_unpack(h, &wv, &wo) == 0)
        hall_field_str(&wo, 1, current, sizeof current);
    else if (rc && rc != MDB_NOTFOUND)
        return hall_mdb_fail(e, mdb_rc, rc, "window");
    if (!current[0])
        return proto_fail(e, PROTO_E_CONFLICT,
                          "window %s has no current ticket to record an intake against",
                          r->actor.id),
               -1;
    /* What is missing, from the checklist. */
    char missing[HALL_MAX_LIST][HALL_ID_MAX + 1];
    int n_missing = 0;
    for (int i = 0; i < s->n_checklist; i++) {
        const char *code = h->cfg->materials[s->checklist[i]].code;
        if (!hall_case_has_code(mats, n_mats, code))
            hall_copy(missing[n_missing++], HALL_ID_MAX + 1, code, SIZE_MAX);
    }
    if ((oc == 0 || oc == 3) && n_missing)
        return proto_fail(e, PROTO_E_CHECKLIST, "%s of %s with materials missing: %s%s%s",
                          outcomes[oc], s->code, missing[0], n_missing > 1 ? ", " : "",
                          n_missing > 1 ? missing[1] : ""),
               -1;
    if (oc == 1 && !n_missing)
        return proto_fail(e, PROTO_E_CHECKLIST,
                          "notify for %s with nothing missing: accept it instead", s->code),
               -1;
    if (oc == 3 && s->kind != HALL_SERVICE_INSTANT)
        return proto_fail(e, PROTO_E_CHECKLIST, "%s is a review service: it cannot be instant",
                          s->code),
               -1;
    if (oc == 2 && (!reason || rn == 0))
        return proto_fail(e, PROTO_E_BAD_REQUEST, "args.reason: a refusal needs a reason"), -1;

    static const int outcome_stat[] = {STAT_ACCEPTED, STAT_NOTIFIED, STAT_REFUSED, STAT_INSTANT};
    if ((rc = hall_stats_case(h, txn, r->now_ms, outcome_stat[oc])))
        return hall_mdb_fail(e, mdb_rc, rc, "intake");
    /* The ticket is being served. */
    hall_ticket t;
    if ((rc = hall_ticket_load(h, txn, current, strlen(current), &t, mdb_rc)))
        return hall_mdb_fail(e, mdb_rc, rc, "ticket");
    t.state = HALL_T_SERVING;
    if ((rc = hall_ticket_store(h, txn, &t)))
        return hall_mdb_fail(e, mdb_rc, rc, "ticket");
    if (oc == 1) {
        msgpack_pack_map(pk, 1);
        proto_pack_str(pk, "missing");
        msgpack_pack_array(pk, (size_t)n_missing);
        for (int i = 0; i < n_missing; i++)
            proto_pack_str(pk, missing[i]);
        return 0;
    }
    if (oc == 2) {
        msgpack_pack_map(pk, 0);
        return 0;
    }
    /* accept / instant: a new case, numbered by day. */
    hall_case c = {0};
    uint64_t cday, seq;
    int32_t today = hall_local_day(&h->cfg->cal, r->now_ms);
    if ((rc = hall_meta_get_u64(h->st, txn, "case_day", &cday)) ||
        (rc = hall_meta_get_u64(h->st, txn, "case_seq", &seq)))
        return hall_mdb_fail(e, mdb_rc, rc, "case number");
    if ((int64_t)cday != today + 1) /* stored +1 so 0 means none */
        seq = 0;
    seq++;
    char compact[9];
    hall_day_compact(today, compact);
    char no[64];
    memcpy(no, compact, 8);
    no[8] = '-';
    hall_copy(c.no, sizeof c.no, no, 9 + hall_put_uint(no + 9, seq, 4)); /* "%s-%04llu" */
    hall_copy(c.service, sizeof c.service, s->code, SIZE_MAX);
    hall_copy(c.kind, sizeof c.kind, kind, kn);
    if (amasked) {
        hall_copy(c.applicant, sizeof c.applicant, amasked, amn);
        hall_copy(c.applicant_hash, sizeof c.applicant_hash, ahash, ahn);
    } else {
        mask_id(aid, an, c.applicant, sizeof c.applicant);
    }
    hall_copy(c.ticket, sizeof c.ticket, current, SIZE_MAX);
    hall_copy(c.window, sizeof c.window, r->actor.id, SIZE_MAX);
    const msgpack_object *aname = proto_map_get(app, "name");
    if (aname && aname->type == MSGPACK_OBJECT_STR)
        hall_case_copy_utf8(c.name, sizeof c.name, aname->via.str.ptr, aname->via.str.size);
    c.n_materials = n_mats;
    memcpy(c.materials, mats, sizeof mats);
    c.accepted_ms = r->now_ms;
    int32_t dday = hall_deadline_day(&h->cfg->cal, r->now_ms, s->days);
    c.deadline_ms = hall_local_ms(&h->cfg->cal, dday, h->cfg->cal.close_min);
    c.n_deps = s->n_departments;
    for (int i = 0; i < s->n_departments; i++)
        hall_copy(c.deps[i].id, sizeof c.deps[i].id, h->cfg->departments[s->departments[i]].id,
                  SIZE_MAX);
    if (oc == 3) {
        c.instant = true;
        c.state = CASE_APPROVED;
        for (int i = 0; i < c.n_deps; i++)
            c.deps[i].state = DEP_APPROVED;
    }
    hall_case_note(&c, r, CH_ACCEPTED, NULL);
    if ((rc = hall_meta_put_u64(h->st, txn, "case_day", (uint64_t)today + 1)) ||
        (rc = hall_meta_put_u64(h->st, txn, "case_seq", seq)) || (rc = hall_case_store(h, txn, &c)))
        return hall_mdb_fail(e, mdb_rc, rc, "intake");
    for (int i = 0; i < c.n_deps; i++) {
        uint8_t k[DEPT_KEY + CASE_NO_MAX];
        memset(k, 0, DEPT_KEY);
        memcpy(k, c.deps[i].id, strnlen(c.deps[i].id, DEPT_KEY));
        memcpy(k + DEPT_KEY, c.no, strlen(c.no));
        if ((rc = hall_case_index_op(txn, h->st->deptcases, k, DEPT_KEY + strlen(c.no), true)) ||
            (!c.instant && (rc = hall_case_review_index(h, txn, &c, c.deps[i].id, true))))
            return hall_mdb_fail(e, mdb_rc, rc, "intake");
    }
    if (!c.instant && (rc = hall_case_deadline_timers(h, txn, &c, true)))
        return hall_mdb_fail(e, mdb_rc, rc, "intake");
    msgpack_pack_map(pk, c.instant ? 1 : 2);
    proto_pack_kv_str(pk, "case_no", c.no);
    if (!c.instant)
        proto_pack_kv_uint(pk, "deadline_ms", (uint64_t)c.deadline_ms);
    return 0;
}
