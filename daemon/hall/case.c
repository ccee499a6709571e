/* daemon/hall/case.c: the stored case: load/put/store, indexes, events, timers, pack. */

/* Applications and cases: intake at a window (case_intake.c), review by
 * departments (case_review.c), supplements, issuance and ratings
 * (case_issue.c).
 *
 * A case is accepted (or completed at once, instant) at a window against
 * its current ticket. Each of its departments reviews it: pending cases
 * wait in the department's review index, most urgent deadline first; a
 * claim is leased; approve / deny / supplement decide. Every department
 * must approve (joint review); one denial denies. A supplement stops the
 * clock until the citizen brings the materials to a window, and moves the
 * deadline by the working days it lasted. Approved, denied and instant
 * cases are ready for issuance; delivery closes them.
 *
 * Time-driven changes (a lease running out, a deadline turning due_soon
 * or overdue) are records too: the timers index orders them by time and
 * hall_due hands the earliest to the daemon.
 *
 * Stored case (MessagePack array, fields only ever appended):
 *   [service, state, accepted_ms, deadline_ms, applicant kind, applicant
 *    id (masked), departments [[id, state, lease_until_ms]...], due_soon,
 *    overdue, ticket id, supplement_start_ms, missing [codes], instant,
 *    delivered_ms, method, tracking, applicant id hash,
 *    applicant name (as logged: masked unless pii.names keeps it),
 *    materials presented [codes], intake window,
 *    history [[at_ms, change, state, dept, dept state, role, actor]...]]
 *   (a department is [id, state, lease_until_ms, reason]; fields 17-20 and
 *   a department's reason came with schema 3: a case stored before reads
 *   them empty)
 * Indexes (keys only):
 *   review    dept(16) deadline_ms(8 BE) case_no   pending cases
 *   deptcases dept(16) case_no                     all of a dept's cases
 *   timers    at_ms(8 BE) kind(1) case_no NUL dept lease / due_soon / overdue
 *   ratings   "t" ticket id | "c" case_no -> [score, at_ms, comment] */
#include "daemon/hall/case_internal.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static const char *const change_names[] = {"",           "accepted", "claimed",       "decided",
                                           "supplement", "resumed",  "lease_expired", "delivered"};
#define CH__COUNT ((int)(sizeof change_names / sizeof change_names[0]))

/* Cuts s (n bytes) to at most cap - 1 bytes without splitting a UTF-8
 * character. */
void hall_case_copy_utf8(char *out, size_t cap, const char *s, size_t n)
{
    if (n > cap - 1) {
        n = cap - 1;
        while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
            n--;
    }
    hall_copy(out, cap, s, n);
}

/* Notes a step in the case's history (c->state and the department's
 * state already changed). */
void hall_case_note(hall_case *c, const hall_request *r, int change, const char *dept)
{
    if (c->n_steps == CASE_HISTORY_MAX) {
        memmove(&c->steps[1], &c->steps[2], (CASE_HISTORY_MAX - 2) * sizeof c->steps[0]);
        c->n_steps--;
    }
    case_step *st = &c->steps[c->n_steps++];
    memset(st, 0, sizeof *st);
    st->at_ms = r->now_ms;
    st->change = change;
    st->state = c->state;
    st->role = (int)r->actor.role;
    hall_copy(st->actor, sizeof st->actor, r->actor.id, SIZE_MAX);
    if (dept) {
        hall_copy(st->dept, sizeof st->dept, dept, SIZE_MAX);
        for (int i = 0; i < c->n_deps; i++)
            if (!strcmp(c->deps[i].id, dept))
                st->dept_state = c->deps[i].state;
    }
    c->change = change;
}

/* ---- storage ---- */

int hall_case_load(hall *h, MDB_txn *txn, const char *no, size_t n, hall_case *c, int *mdb_rc)
{
    memset(c, 0, sizeof *c);
    if (n == 0 || n > CASE_NO_MAX)
        return MDB_NOTFOUND;
    MDB_val k = {n, (void *)no}, v;
    msgpack_object o;
    int rc = mdb_get(txn, h->st->cases, &k, &v);
    if (rc) {
        if (rc != MDB_NOTFOUND)
            *mdb_rc = rc;
        return rc;
    }
    if (hall_unpack(h, &v, &o) != 0) {
        *mdb_rc = MDB_CORRUPTED;
        return MDB_CORRUPTED;
    }
    memcpy(c->no, no, n);
    hall_field_str(&o, 0, c->service, sizeof c->service);
    c->state = (int)hall_field_i64(&o, 1);
    c->accepted_ms = hall_field_i64(&o, 2);
    c->deadline_ms = hall_field_i64(&o, 3);
    hall_field_str(&o, 4, c->kind, sizeof c->kind);
    hall_field_str(&o, 5, c->applicant, sizeof c->applicant);
    const msgpack_object *deps = hall_field(&o, 6);
    for (uint32_t i = 0; deps && deps->type == MSGPACK_OBJECT_ARRAY && i < deps->via.array.size &&
                         i < HALL_MAX_LIST;
         i++) {
        const msgpack_object *d = &deps->via.array.ptr[i];
        hall_field_str(d, 0, c->deps[i].id, sizeof c->deps[i].id);
        c->deps[i].state = (int)hall_field_i64(d, 1);
        c->deps[i].lease_until = hall_field_i64(d, 2);
        hall_field_str(d, 3, c->deps[i].reason, sizeof c->deps[i].reason);
        c->n_deps++;
    }
    c->due_soon = hall_field_i64(&o, 7) != 0;
    c->overdue = hall_field_i64(&o, 8) != 0;
    hall_field_str(&o, 9, c->ticket, sizeof c->ticket);
    c->supplement_start = hall_field_i64(&o, 10);
    const msgpack_object *miss = hall_field(&o, 11);
    for (uint32_t i = 0; miss && miss->type == MSGPACK_OBJECT_ARRAY && i < miss->via.array.size &&
                         i < HALL_MAX_LIST;
         i++)
        hall_field_str(miss, i, c->missing[c->n_missing++], HALL_ID_MAX + 1);
    c->instant = hall_field_i64(&o, 12) != 0;
    c->delivered_ms = hall_field_i64(&o, 13);
    hall_field_str(&o, 14, c->method, sizeof c->method);
    hall_field_str(&o, 15, c->tracking, sizeof c->tracking);
    hall_field_str(&o, 16, c->applicant_hash, sizeof c->applicant_hash);
    hall_field_str(&o, 17, c->name, sizeof c->name);
    const msgpack_object *mats = hall_field(&o, 18);
    for (uint32_t i = 0; mats && mats->type == MSGPACK_OBJECT_ARRAY && i < mats->via.array.size &&
                         i < HALL_MAX_LIST;
         i++)
        hall_field_str(mats, i, c->materials[c->n_materials++], HALL_ID_MAX + 1);
    hall_field_str(&o, 19, c->window, sizeof c->window);
    const msgpack_object *hist = hall_field(&o, 20);
    for (uint32_t i = 0; hist && hist->type == MSGPACK_OBJECT_ARRAY && i < hist->via.array.size &&
                         i < CASE_HISTORY_MAX;
         i++) {
        const msgpack_object *x = &hist->via.array.ptr[i];
        case_step *st = &c->steps[c->n_steps++];
        st->at_ms = hall_field_i64(x, 0);
        st->change = (int)hall_field_i64(x, 1);
        st->state = (int)hall_field_i64(x, 2);
        hall_field_str(x, 3, st->dept, sizeof st->dept);
        st->dept_state = (int)hall_field_i64(x, 4);
        st->role = (int)hall_field_i64(x, 5);
        hall_field_str(x, 6, st->actor, sizeof st->actor);
    }
    return 0;
}

static int case_put(hall *h, MDB_txn *txn, const hall_case *c)
{
    msgpack_packer pk;
    proto_buf_reset(&h->scratch);
    proto_packer_init(&pk, &h->scratch);
    msgpack_pack_array(&pk, 21);
    proto_pack_str(&pk, c->service);
    msgpack_pack_int(&pk, c->state);
    msgpack_pack_int64(&pk, c->accepted_ms);
    msgpack_pack_int64(&pk, c->deadline_ms);
    proto_pack_str(&pk, c->kind);
    proto_pack_str(&pk, c->applicant);
    msgpack_pack_array(&pk, (size_t)c->n_deps);
    for (int i = 0; i < c->n_deps; i++) {
        msgpack_pack_array(&pk, 4);
        proto_pack_str(&pk, c->deps[i].id);
        msgpack_pack_int(&pk, c->deps[i].state);
        msgpack_pack_int64(&pk, c->deps[i].lease_until);
        proto_pack_str(&pk, c->deps[i].reason);
    }
    msgpack_pack_int(&pk, c->due_soon);
    msgpack_pack_int(&pk, c->overdue);
    proto_pack_str(&pk, c->ticket);
    msgpack_pack_int64(&pk, c->supplement_start);
    msgpack_pack_array(&pk, (size_t)c->n_missing);
    for (int i = 0; i < c->n_missing; i++)
        proto_pack_str(&pk, c->missing[i]);
    msgpack_pack_int(&pk, c->instant);
    msgpack_pack_int64(&pk, c->delivered_ms);
    proto_pack_str(&pk, c->method);
    proto_pack_str(&pk, c->tracking);
    proto_pack_str(&pk, c->applicant_hash);
    proto_pack_str(&pk, c->name);
    msgpack_pack_array(&pk, (size_t)c->n_materials);
    for (int i = 0; i < c->n_materials; i++)
        proto_pack_str(&pk, c->materials[i]);
    proto_pack_str(&pk, c->window);
    msgpack_pack_array(&pk, (size_t)c->n_steps);
    for (int i = 0; i < c->n_steps; i++) {
        const case_step *st = &c->steps[i];
        msgpack_pack_array(&pk, 7);
        msgpack_pack_int64(&pk, st->at_ms);
        msgpack_pack_int(&pk, st->change);
        msgpack_pack_int(&pk, st->state);
        proto_pack_str(&pk, st->dept);
        msgpack_pack_int(&pk, st->dept_state);
        msgpack_pack_int(&pk, st->role);
        proto_pack_str(&pk, st->actor);
    }
    if (h->scratch.oom)
        return ENOMEM;
    MDB_val k = {strlen(c->no), (void *)c->no}, v = {h->scratch.len, h->scratch.p};
    return mdb_put(txn, h->st->cases, &k, &v, 0);
}

/* What a case adds to a department's live counters. */
static void dept_share(const hall_case *c, int i, int64_t v[3])
{
    bool in = c->state == CASE_REVIEW &&
              (c->deps[i].state == DEP_PENDING || c->deps[i].state == DEP_CLAIMED);
    v[0] = in;
    v[1] = in && c->due_soon && !c->overdue;
    v[2] = in && c->overdue;
}

/* The events of a case stored over `old` (NULL: a new case): its state or
 * a department's changed, it turned due_soon or overdue. Only the case's
 * departments see them. */
static void case_events(hall *h, const hall_case *old, const hall_case *c)
{
    const char *deps[HALL_MAX_LIST];
    bool changed = !old || old->state != c->state;
    for (int i = 0; i < c->n_deps; i++) {
        deps[i] = c->deps[i].id;
        if (old && i < old->n_deps && old->deps[i].state != c->deps[i].state)
            changed = true;
    }
    if (changed && hall_rules_version(h) >= 3) {
        /* Rules 3: the event says what changed and each department's state. */
        const char *dstates[HALL_MAX_LIST];
        for (int i = 0; i < c->n_deps; i++)
            dstates[i] = dep_states[c->deps[i].state];
        hall_emit_case_v3(h, c->no, case_states[c->state], deps, dstates, c->n_deps,
                          change_names[c->change >= 0 && c->change < CH__COUNT ? c->change : 0]);
    } else if (changed) {
        hall_emit_case(h, c->no, case_states[c->state], deps, c->n_deps);
    }
    if (c->due_soon && !(old && old->due_soon))
        hall_emit_deadline(h, c->no, false, deps, c->n_deps);
    if (c->overdue && !(old && old->overdue))
        hall_emit_deadline(h, c->no, true, deps, c->n_deps);
}

/* Stores a case and moves its departments' counters from what the stored
 * version added to what this one adds. */
int hall_case_store(hall *h, MDB_txn *txn, const hall_case *c)
{
    hall_case old;
    int mdb_rc = 0, rc = hall_case_load(h, txn, c->no, strlen(c->no), &old, &mdb_rc);
    if (rc && rc != MDB_NOTFOUND)
        return rc;
    case_events(h, rc == 0 ? &old : NULL, c);
    for (int i = 0; i < c->n_deps; i++) {
        int64_t was[3] = {0}, now[3];
        if (rc == 0)
            dept_share(&old, i, was);
        dept_share(c, i, now);
        int src = hall_stats_dept(h, txn, c->deps[i].id, now[0] - was[0], now[1] - was[1],
                                  now[2] - was[2]);
        if (src)
            return src;
    }
    return case_put(h, txn, c);
}

static size_t review_key(uint8_t *k, const char *dept, int64_t deadline, const char *no)
{
    memset(k, 0, DEPT_KEY);
    memcpy(k, dept, strnlen(dept, DEPT_KEY));
    hall_be64_put(k + DEPT_KEY, (uint64_t)deadline);
    size_t n = strlen(no);
    memcpy(k + DEPT_KEY + 8, no, n);
    return DEPT_KEY + 8 + n;
}

static size_t timer_key(uint8_t *k, int64_t at, int kind, const char *no, const char *dept)
{
    hall_be64_put(k, (uint64_t)at);
    k[8] = (uint8_t)kind;
    size_t n = strlen(no), d = strlen(dept);
    memcpy(k + 9, no, n);
    k[9 + n] = 0;
    memcpy(k + 10 + n, dept, d);
    return 10 + n + d;
}

int hall_case_index_op(MDB_txn *txn, MDB_dbi dbi, const uint8_t *key, size_t n, bool put)
{
    MDB_val k = {n, (void *)key}, v = {0, (void *)""};
    int rc = put ? mdb_put(txn, dbi, &k, &v, 0) : mdb_del(txn, dbi, &k, NULL);
    return rc == MDB_NOTFOUND && !put ? 0 : rc;
}

int hall_case_review_index(hall *h, MDB_txn *txn, const hall_case *c, const char *dept, bool put)
{
    uint8_t k[DEPT_KEY + 8 + CASE_NO_MAX];
    return hall_case_index_op(txn, h->st->review, k, review_key(k, dept, c->deadline_ms, c->no),
                              put);
}

int hall_case_timer_index(hall *h, MDB_txn *txn, int64_t at, int kind, const char *no,
                          const char *dept, bool put)
{
    uint8_t k[10 + CASE_NO_MAX + HALL_ID_MAX];
    return hall_case_index_op(txn, h->st->timers, k, timer_key(k, at, kind, no, dept), put);
}

/* The deadline's marks: due_soon at the opening of its day, overdue after
 * it. Put (or removed) together. */
int hall_case_deadline_timers(hall *h, MDB_txn *txn, const hall_case *c, bool put)
{
    const hall_calendar *cal = &h->cfg->cal;
    int32_t day = hall_local_day(cal, c->deadline_ms);
    int rc = 0;
    if (!c->due_soon)
        rc = hall_case_timer_index(h, txn, hall_local_ms(cal, day, cal->open_min), TIMER_DUE_SOON,
                                   c->no, "", put);
    if (!rc && !c->overdue)
        rc = hall_case_timer_index(h, txn, c->deadline_ms + 1, TIMER_OVERDUE, c->no, "", put);
    return rc;
}

int hall_case_dep_index(const hall_case *c, const char *dept)
{
    for (int i = 0; i < c->n_deps; i++)
        if (strcmp(c->deps[i].id, dept) == 0)
            return i;
    return -1;
}

bool hall_case_is_ready(const hall_case *c)
{
    return c->state == CASE_APPROVED || c->state == CASE_DENIED;
}

static const char *const decision_names[] = {"", "", "supplement", "approve", "deny"};

/* Packs a case as case.get shows it. `full` adds what a reviewer needs
 * (the application, each department's decision, the history): case.get
 * and review.list for the hall's staff, review.claim from rules 3 (its
 * answer is recorded: rules 1 and 2 pack the ten keys only). */
void hall_case_pack(hall *h, MDB_txn *txn, const hall_case *c, msgpack_packer *pk, bool full)
{
    int si = full ? hall_config_service(h->cfg, c->service, strlen(c->service)) : -1;
    char window[HALL_ID_MAX + 1];
    hall_copy(window, sizeof window, c->window, SIZE_MAX);
    if (full && !window[0] && c->ticket[0]) {
        /* A case stored before schema 3: its ticket's window served the intake. */
        hall_ticket t;
        int mrc = 0;
        if (hall_ticket_load(h, txn, c->ticket, strlen(c->ticket), &t, &mrc) == 0)
            hall_copy(window, sizeof window, t.window, SIZE_MAX);
    }
    msgpack_pack_map(pk, 10 + (full ? 5 + (si >= 0) : 0));
    proto_pack_kv_str(pk, "case_no", c->no);
    proto_pack_kv_str(pk, "service", c->service);
    proto_pack_kv_str(pk, "state", case_states[c->state]);
    proto_pack_str(pk, "departments");
    msgpack_pack_array(pk, (size_t)c->n_deps);
    for (int i = 0; i < c->n_deps; i++) {
        const case_dep *d = &c->deps[i];
        bool sup = full && d->state == DEP_SUPPLEMENT && c->state == CASE_SUPPLEMENT;
        bool decided = d->state >= DEP_SUPPLEMENT;
        msgpack_pack_map(pk, 2 + (full ? decided + (d->state == DEP_CLAIMED) +
                                             (d->state == DEP_DENIED && d->reason[0]) + sup
                                       : 0));
        proto_pack_kv_str(pk, "department", d->id);
        proto_pack_kv_str(pk, "state", dep_states[d->state]);
        if (!full)
            continue;
        if (decided)
            proto_pack_kv_str(pk, "decision", decision_names[d->state]);
        if (d->state == DEP_CLAIMED)
            proto_pack_kv_uint(pk, "lease_until_ms", (uint64_t)d->lease_until);
        if (d->state == DEP_DENIED && d->reason[0])
            proto_pack_kv_str(pk, "reason", d->reason);
        if (sup) {
            proto_pack_str(pk, "missing");
            msgpack_pack_array(pk, (size_t)c->n_missing);
            for (int j = 0; j < c->n_missing; j++)
                proto_pack_str(pk, c->missing[j]);
        }
    }
    proto_pack_kv_uint(pk, "accepted_ms", (uint64_t)c->accepted_ms);
    proto_pack_kv_uint(pk, "deadline_ms", (uint64_t)c->deadline_ms);
    proto_pack_kv_bool(pk, "due_soon", c->due_soon);
    proto_pack_kv_bool(pk, "overdue", c->overdue);
    proto_pack_kv_bool(pk, "ready", hall_case_is_ready(c));
    proto_pack_kv_bool(pk, "delivered", c->state == CASE_DELIVERED);
    if (!full)
        return;
    if (si >= 0) {
        const hall_service *s = &h->cfg->services[si];
        proto_pack_str(pk, "service_names");
        msgpack_pack_map(pk, 2);
        proto_pack_kv_str(pk, "en", s->name);
        proto_pack_kv_str(pk, "zh", s->name_zh);
    }
    proto_pack_str(pk, "applicant");
    msgpack_pack_map(pk, 2 + (c->name[0] != 0) + (c->applicant_hash[0] != 0));
    proto_pack_kv_str(pk, "kind", c->kind);
    proto_pack_kv_str(pk, "id_masked", c->applicant);
    if (c->name[0])
        proto_pack_kv_str(pk, "name", c->name);
    if (c->applicant_hash[0])
        proto_pack_kv_str(pk, "id_hash", c->applicant_hash);
    proto_pack_str(pk, "materials");
    msgpack_pack_array(pk, (size_t)c->n_materials);
    for (int i = 0; i < c->n_materials; i++) {
        const hall_material *m = NULL;
        for (int j = 0; j < h->cfg->n_materials && !m; j++)
            if (!strcmp(h->cfg->materials[j].code, c->materials[i]))
                m = &h->cfg->materials[j];
        msgpack_pack_map(pk, m ? 3 : 1);
        proto_pack_kv_str(pk, "code", c->materials[i]);
        if (m) {
            proto_pack_kv_str(pk, "name", m->name);
            proto_pack_kv_str(pk, "name_zh", m->name_zh);
        }
    }
    proto_pack_str(pk, "intake");
    msgpack_pack_map(pk, 2);
    proto_pack_kv_str(pk, "window", window);
    proto_pack_kv_str(pk, "ticket_id", c->ticket);
    proto_pack_kv_bool(pk, "instant", c->instant);
    proto_pack_str(pk, "history");
    msgpack_pack_array(pk, (size_t)c->n_steps);
    for (int i = 0; i < c->n_steps; i++) {
        const case_step *st = &c->steps[i];
        bool dep = st->dept[0] != 0;
        msgpack_pack_map(pk, 4 + 2 * dep);
        proto_pack_kv_uint(pk, "at_ms", (uint64_t)st->at_ms);
        proto_pack_kv_str(pk, "change",
                          change_names[st->change >= 0 && st->change < CH__COUNT ? st->change : 0]);
        proto_pack_kv_str(pk, "state",
                          case_states[st->state >= 0 && st->state <= 4 ? st->state : 0]);
        if (dep) {
            proto_pack_kv_str(pk, "department", st->dept);
            proto_pack_kv_str(
                pk, "department_state",
                dep_states[st->dept_state >= 0 && st->dept_state <= 4 ? st->dept_state : 0]);
        }
        proto_pack_str(pk, "actor");
        msgpack_pack_map(pk, 2);
        proto_pack_kv_str(pk, "role", hall_role_name((hall_role)st->role));
        proto_pack_kv_str(pk, "id", st->actor);
    }
}

/* Loads args.case_no; not_found / bad_request with e set. */
int hall_case_load_arg_case(hall *h, MDB_txn *txn, const hall_request *r, hall_case *c,
                            proto_error *e, int *mdb_rc)
{
    const char *no;
    uint32_t n;
    if (proto_arg_str(r->args, "case_no", true, &no, &n, e))
        return -1;
    int rc = hall_case_load(h, txn, no, n, c, mdb_rc);
    if (rc == MDB_NOTFOUND)
        return proto_fail(e, PROTO_E_NOT_FOUND, "args.case_no: no case '%.*s'", (int)n, no), -1;
    if (rc)
        return hall_mdb_fail(e, mdb_rc, rc, "case");
    return 0;
}

/* A department may see only its own cases. */
int hall_case_check_dept_access(const hall_request *r, const hall_case *c, proto_error *e)
{
    if (r->actor.role == HALL_ROLE_DEPARTMENT && hall_case_dep_index(c, r->actor.id) < 0)
        return proto_fail(e, PROTO_E_FORBIDDEN, "case %s is not a case of department %s", c->no,
                          r->actor.id),
               -1;
    return 0;
}

/* Reads a list of material codes into codes[]; bad_request naming field. */
int hall_case_read_codes(const msgpack_object *args, const char *field, bool required,
                         char codes[][HALL_ID_MAX + 1], int *n, proto_error *e)
{
    const msgpack_object *arr;
    *n = 0;
    if (proto_arg_array(args, field, required, &arr, e))
        return -1;
    if (!arr)
        return 0;
    if (arr->via.array.size > HALL_MAX_LIST)
        return proto_fail(e, PROTO_E_BAD_REQUEST, "args.%s: more than %d codes", field,
                          HALL_MAX_LIST),
               -1;
    for (uint32_t i = 0; i < arr->via.array.size; i++) {
        const msgpack_object *o = &arr->via.array.ptr[i];
        if (o->type != MSGPACK_OBJECT_STR || o->via.str.size == 0 || o->via.str.size > HALL_ID_MAX)
            return proto_fail(e, PROTO_E_BAD_REQUEST, "args.%s: expected material codes", field),
                   -1;
        hall_copy(codes[(*n)++], HALL_ID_MAX + 1, o->via.str.ptr, o->via.str.size);
    }
    return 0;
}

bool hall_case_has_code(char codes[][HALL_ID_MAX + 1], int n, const char *code)
{
    for (int i = 0; i < n; i++)
        if (strcmp(codes[i], code) == 0)
            return true;
    return false;
}

int hall_case_get(hall *h, MDB_txn *txn, const hall_request *r, msgpack_packer *pk, proto_error *e,
                  int *mdb_rc)
{
    hall_case c;
    if (hall_case_load_arg_case(h, txn, r, &c, e, mdb_rc) || hall_case_check_dept_access(r, &c, e))
        return -1;
    hall_case_pack(h, txn, &c, pk, r->actor.role != HALL_ROLE_KIOSK);
    return 0;
}

/* ---- time-driven: leases and deadline marks ---- */

int hall_case_timer(hall *h, MDB_txn *txn, const hall_request *r, msgpack_packer *pk,
                    proto_error *e, int *mdb_rc)
{
    const char *kind, *dept;
    uint32_t kn, dn;
    hall_case c;
    if (proto_arg_str(r->args, "kind", true, &kind, &kn, e) ||
        proto_arg_str(r->args, "department", false, &dept, &dn, e) ||
        hall_case_load_arg_case(h, txn, r, &c, e, mdb_rc))
        return -1;
    int rc = 0, k = kn == 5 ? TIMER_LEASE : kn == 8 ? TIMER_DUE_SOON : TIMER_OVERDUE;
    if (k == TIMER_LEASE) {
        char d[HALL_ID_MAX + 1];
        hall_copy(d, sizeof d, dept ? dept : "", dn);
        int di = hall_case_dep_index(&c, d);
        if (di < 0 || c.deps[di].state != DEP_CLAIMED)
            return proto_fail(e, PROTO_E_INTERNAL, "lease of %s/%s is not running", c.no, d), -1;
        rc = hall_case_timer_index(h, txn, c.deps[di].lease_until, TIMER_LEASE, c.no, d, false);
        c.deps[di].state = DEP_PENDING;
        c.deps[di].lease_until = 0;
        hall_case_note(&c, r, CH_LEASE_EXPIRED, d);
        if (!rc)
            rc = hall_case_review_index(h, txn, &c, d, true);
    } else {
        const hall_calendar *cal = &h->cfg->cal;
        int32_t day = hall_local_day(cal, c.deadline_ms);
        int64_t at =
            k == TIMER_DUE_SOON ? hall_local_ms(cal, day, cal->open_min) : c.deadline_ms + 1;
        rc = hall_case_timer_index(h, txn, at, k, c.no, "", false);
        if (k == TIMER_DUE_SOON)
            c.due_soon = true;
        else
            c.overdue = true;
    }
    if (!rc)
        rc = hall_case_store(h, txn, &c);
    if (rc)
        return hall_mdb_fail(e, mdb_rc, rc, "case.timer");
    msgpack_pack_map(pk, 0);
    return 0;
}

/* The earliest case timer: its time and packed args {case_no, kind,
 * department?} in out. INT64_MAX when none. */
int64_t hall_case_next_timer(hall *h, MDB_txn *txn, proto_buf *out)
{
    MDB_cursor *cur;
    MDB_val k, v;
    int64_t at = INT64_MAX;
    if (mdb_cursor_open(txn, h->st->timers, &cur) != 0)
        return at;
    if (mdb_cursor_get(cur, &k, &v, MDB_FIRST) == 0 && k.mv_size > 10) {
        const uint8_t *p = k.mv_data;
        at = (int64_t)hall_be64_get(p);
        const char *no = (const char *)p + 9;
        size_t nl = strnlen(no, k.mv_size - 9);
        const char *dept = no + nl + 1;
        size_t dl = k.mv_size - 10 - nl;
        static const char *const kinds[] = {"", "lease", "due_soon", "overdue"};
        msgpack_packer pk;
        proto_buf_reset(out);
        proto_packer_init(&pk, out);
        msgpack_pack_map(&pk, dl ? 3 : 2);
        proto_pack_str(&pk, "case_no");
        proto_pack_strn(&pk, no, nl);
        proto_pack_kv_str(&pk, "kind", kinds[p[8] <= 3 ? p[8] : 0]);
        if (dl) {
            proto_pack_str(&pk, "department");
            proto_pack_strn(&pk, dept, dl);
        }
    }
    mdb_cursor_close(cur);
    return at;
}
