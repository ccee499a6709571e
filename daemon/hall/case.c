/* daemon/hall/case.c: applications and cases: intake at a window, review
 * by departments, supplements, issuance and ratings.
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
#include "daemon/hall/events.h"
#include "daemon/hall/ticket.h"
#include "daemon/hall/stats.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

enum { CASE_REVIEW, CASE_SUPPLEMENT, CASE_APPROVED, CASE_DENIED, CASE_DELIVERED };
static const char *const case_states[] = {"review", "supplement", "approved", "denied",
                                          "delivered"};
enum { DEP_PENDING, DEP_CLAIMED, DEP_SUPPLEMENT, DEP_APPROVED, DEP_DENIED };
static const char *const dep_states[] = {"pending", "claimed", "supplement", "approved", "denied"};
enum { TIMER_LEASE = 1, TIMER_DUE_SOON = 2, TIMER_OVERDUE = 3 };
/* What a record did to a case (its history, and its `case` event from rules
 * 3). Stored as numbers: only ever appended. */
enum {
    CH_NONE,
    CH_ACCEPTED,
    CH_CLAIMED,
    CH_DECIDED,
    CH_SUPPLEMENT,
    CH_RESUMED,
    CH_LEASE_EXPIRED,
    CH_DELIVERED
};
static const char *const change_names[] = {"",           "accepted", "claimed",       "decided",
                                           "supplement", "resumed",  "lease_expired", "delivered"};
#define CH__COUNT ((int)(sizeof change_names / sizeof change_names[0]))
#define CASE_HISTORY_MAX 32 /* the oldest steps beyond are dropped (the first kept) */
#define CASE_REASON_MAX 200
#define CASE_NAME_MAX 128

#define CASE_NO_MAX 24
#define DEPT_KEY 16

typedef struct case_dep {
    char id[HALL_ID_MAX + 1];
    int state;
    int64_t lease_until;
    char reason[CASE_REASON_MAX + 1]; /* of a denial */
} case_dep;

typedef struct case_step {
    int64_t at_ms;
    int change;
    int state;                  /* the case's, after it */
    char dept[HALL_ID_MAX + 1]; /* the department it was about, or "" */
    int dept_state;             /* that department's, after it */
    int role;                   /* who made it: the record's actor */
    char actor[HALL_ID_MAX + 1];
} case_step;

typedef struct hall_case {
    char no[CASE_NO_MAX + 1];
    char service[HALL_ID_MAX + 1];
    int state;
    int64_t accepted_ms, deadline_ms;
    char kind[8];
    char applicant[40];
    case_dep deps[HALL_MAX_LIST];
    int n_deps;
    bool due_soon, overdue;
    char ticket[HALL_TICKET_ID_MAX + 1];
    int64_t supplement_start;
    char missing[HALL_MAX_LIST][HALL_ID_MAX + 1];
    int n_missing;
    bool instant;
    int64_t delivered_ms;
    char method[8];
    char tracking[64];
    char applicant_hash[33];      /* keyed hash of the id (daemon/pii.h); "" if not given */
    char name[CASE_NAME_MAX + 1]; /* the applicant's name as logged, or "" */
    char materials[HALL_MAX_LIST][HALL_ID_MAX + 1]; /* presented at intake */
    int n_materials;
    char window[HALL_ID_MAX + 1]; /* of the intake */
    case_step steps[CASE_HISTORY_MAX];
    int n_steps;
    int change; /* not stored: what the record storing this version did, for events */
} hall_case;

/* Cuts s (n bytes) to at most cap - 1 bytes without splitting a UTF-8
 * character. */
static void copy_utf8(char *out, size_t cap, const char *s, size_t n)
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
static void case_note(hall_case *c, const hall_request *r, int change, const char *dept)
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

static int case_load(hall *h, MDB_txn *txn, const char *no, size_t n, hall_case *c, int *mdb_rc)
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
static int case_store(hall *h, MDB_txn *txn, const hall_case *c)
{
    hall_case old;
    int mdb_rc = 0, rc = case_load(h, txn, c->no, strlen(c->no), &old, &mdb_rc);
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

static int index_op(MDB_txn *txn, MDB_dbi dbi, const uint8_t *key, size_t n, bool put)
{
    MDB_val k = {n, (void *)key}, v = {0, (void *)""};
    int rc = put ? mdb_put(txn, dbi, &k, &v, 0) : mdb_del(txn, dbi, &k, NULL);
    return rc == MDB_NOTFOUND && !put ? 0 : rc;
}

static int review_index(hall *h, MDB_txn *txn, const hall_case *c, const char *dept, bool put)
{
    uint8_t k[DEPT_KEY + 8 + CASE_NO_MAX];
    return index_op(txn, h->st->review, k, review_key(k, dept, c->deadline_ms, c->no), put);
}

static int timer_index(hall *h, MDB_txn *txn, int64_t at, int kind, const char *no,
                       const char *dept, bool put)
{
    uint8_t k[10 + CASE_NO_MAX + HALL_ID_MAX];
    return index_op(txn, h->st->timers, k, timer_key(k, at, kind, no, dept), put);
}

/* The deadline's marks: due_soon at the opening of its day, overdue after
 * it. Put (or removed) together. */
static int deadline_timers(hall *h, MDB_txn *txn, const hall_case *c, bool put)
{
    const hall_calendar *cal = &h->cfg->cal;
    int32_t day = hall_local_day(cal, c->deadline_ms);
    int rc = 0;
    if (!c->due_soon)
        rc = timer_index(h, txn, hall_local_ms(cal, day, cal->open_min), TIMER_DUE_SOON, c->no, "",
                         put);
    if (!rc && !c->overdue)
        rc = timer_index(h, txn, c->deadline_ms + 1, TIMER_OVERDUE, c->no, "", put);
    return rc;
}

static int dep_index(const hall_case *c, const char *dept)
{
    for (int i = 0; i < c->n_deps; i++)
        if (strcmp(c->deps[i].id, dept) == 0)
            return i;
    return -1;
}

static bool is_ready(const hall_case *c)
{
    return c->state == CASE_APPROVED || c->state == CASE_DENIED;
}

static const char *const decision_names[] = {"", "", "supplement", "approve", "deny"};

/* Packs a case as case.get shows it. `full` adds what a reviewer needs
 * (the application, each department's decision, the history): case.get
 * and review.list for the hall's staff, review.claim from rules 3 (its
 * answer is recorded: rules 1 and 2 pack the ten keys only). */
static void case_pack(hall *h, MDB_txn *txn, const hall_case *c, msgpack_packer *pk, bool full)
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
    proto_pack_kv_bool(pk, "ready", is_ready(c));
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
static int load_arg_case(hall *h, MDB_txn *txn, const hall_request *r, hall_case *c, proto_error *e,
                         int *mdb_rc)
{
    const char *no;
    uint32_t n;
    if (proto_arg_str(r->args, "case_no", true, &no, &n, e))
        return -1;
    int rc = case_load(h, txn, no, n, c, mdb_rc);
    if (rc == MDB_NOTFOUND)
        return proto_fail(e, PROTO_E_NOT_FOUND, "args.case_no: no case '%.*s'", (int)n, no), -1;
    if (rc)
        return hall_mdb_fail(e, mdb_rc, rc, "case");
    return 0;
}

/* A department may see only its own cases. */
static int check_dept_access(const hall_request *r, const hall_case *c, proto_error *e)
{
    if (r->actor.role == HALL_ROLE_DEPARTMENT && dep_index(c, r->actor.id) < 0)
        return proto_fail(e, PROTO_E_FORBIDDEN, "case %s is not a case of department %s", c->no,
                          r->actor.id),
               -1;
    return 0;
}

/* Reads a list of material codes into codes[]; bad_request naming field. */
static int read_codes(const msgpack_object *args, const char *field, bool required,
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

static bool has_code(char codes[][HALL_ID_MAX + 1], int n, const char *code)
{
    for (int i = 0; i < n; i++)
        if (strcmp(codes[i], code) == 0)
            return true;
    return false;
}

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
        read_codes(r->args, "materials", true, mats, &n_mats, e) ||
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
        if (!has_code(mats, n_mats, code))
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
        copy_utf8(c.name, sizeof c.name, aname->via.str.ptr, aname->via.str.size);
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
    case_note(&c, r, CH_ACCEPTED, NULL);
    if ((rc = hall_meta_put_u64(h->st, txn, "case_day", (uint64_t)today + 1)) ||
        (rc = hall_meta_put_u64(h->st, txn, "case_seq", seq)) || (rc = case_store(h, txn, &c)))
        return hall_mdb_fail(e, mdb_rc, rc, "intake");
    for (int i = 0; i < c.n_deps; i++) {
        uint8_t k[DEPT_KEY + CASE_NO_MAX];
        memset(k, 0, DEPT_KEY);
        memcpy(k, c.deps[i].id, strnlen(c.deps[i].id, DEPT_KEY));
        memcpy(k + DEPT_KEY, c.no, strlen(c.no));
        if ((rc = index_op(txn, h->st->deptcases, k, DEPT_KEY + strlen(c.no), true)) ||
            (!c.instant && (rc = review_index(h, txn, &c, c.deps[i].id, true))))
            return hall_mdb_fail(e, mdb_rc, rc, "intake");
    }
    if (!c.instant && (rc = deadline_timers(h, txn, &c, true)))
        return hall_mdb_fail(e, mdb_rc, rc, "intake");
    msgpack_pack_map(pk, c.instant ? 1 : 2);
    proto_pack_kv_str(pk, "case_no", c.no);
    if (!c.instant)
        proto_pack_kv_uint(pk, "deadline_ms", (uint64_t)c.deadline_ms);
    return 0;
}

int hall_case_get(hall *h, MDB_txn *txn, const hall_request *r, msgpack_packer *pk, proto_error *e,
                  int *mdb_rc)
{
    hall_case c;
    if (load_arg_case(h, txn, r, &c, e, mdb_rc) || check_dept_access(r, &c, e))
        return -1;
    case_pack(h, txn, &c, pk, r->actor.role != HALL_ROLE_KIOSK);
    return 0;
}

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
    if ((rc = case_load(h, txn, no, strlen(no), &c, mdb_rc)))
        return hall_mdb_fail(e, mdb_rc, rc, "review.claim");
    int di = dep_index(&c, r->actor.id);
    if (di < 0) /* the review index and the case disagree */
        return proto_fail(e, PROTO_E_INTERNAL, "case %s is in the queue of %s but not theirs", c.no,
                          r->actor.id),
               -1;
    c.deps[di].state = DEP_CLAIMED;
    c.deps[di].lease_until = r->now_ms + h->cfg->rules.claim_lease_ms;
    case_note(&c, r, CH_CLAIMED, r->actor.id);
    if ((rc = review_index(h, txn, &c, r->actor.id, false)) ||
        (rc = timer_index(h, txn, c.deps[di].lease_until, TIMER_LEASE, c.no, r->actor.id, true)) ||
        (rc = case_store(h, txn, &c)))
        return hall_mdb_fail(e, mdb_rc, rc, "review.claim");
    msgpack_pack_map(pk, 2);
    proto_pack_str(pk, "case");
    case_pack(h, txn, &c, pk, hall_rules_version(h) >= 3);
    proto_pack_kv_uint(pk, "lease_until_ms", (uint64_t)c.deps[di].lease_until);
    return 0;
}

/* Puts every undecided department of c back in review (after a
 * supplement) or takes them out (entering one). */
static int undecided_to(hall *h, MDB_txn *txn, hall_case *c, bool back)
{
    int rc = 0;
    for (int i = 0; i < c->n_deps && !rc; i++) {
        case_dep *d = &c->deps[i];
        if (d->state == DEP_APPROVED || d->state == DEP_DENIED)
            continue;
        if (d->state == DEP_CLAIMED)
            rc = timer_index(h, txn, d->lease_until, TIMER_LEASE, c->no, d->id, false);
        else if (d->state == DEP_PENDING && !back)
            rc = review_index(h, txn, c, d->id, false);
        if (!rc && back) {
            d->state = DEP_PENDING;
            rc = review_index(h, txn, c, d->id, true);
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
        read_codes(r->args, "missing", false, miss, &n_miss, e))
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
    if (load_arg_case(h, txn, r, &c, e, mdb_rc) || check_dept_access(r, &c, e))
        return -1;
    int di = dep_index(&c, r->actor.id);
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
    int rc = timer_index(h, txn, c.deps[di].lease_until, TIMER_LEASE, c.no, r->actor.id, false);
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
        copy_utf8(c.deps[di].reason, sizeof c.deps[di].reason, reason ? reason : "",
                  reason ? rn : 0);
        c.state = CASE_DENIED;
        rc = undecided_to(h, txn, &c, false);
    } else {
        c.deps[di].state = DEP_SUPPLEMENT;
        c.state = CASE_SUPPLEMENT;
        c.supplement_start = r->now_ms;
        c.n_missing = n_miss;
        memcpy(c.missing, miss, sizeof miss);
        rc = undecided_to(h, txn, &c, false);
    }
    case_note(&c, r, d == 2 ? CH_SUPPLEMENT : CH_DECIDED, r->actor.id);
    /* A decided or paused case has no running deadline marks. */
    if (!rc && c.state != CASE_REVIEW)
        rc = deadline_timers(h, txn, &c, false);
    if (!rc)
        rc = case_store(h, txn, &c);
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
        int lrc = case_load(h, txn, (char *)k.mv_data + DEPT_KEY, k.mv_size - DEPT_KEY, &c, mdb_rc);
        if (lrc) {
            rc = lrc;
            break;
        }
        int di = dep_index(&c, r->actor.id);
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
        if ((rc = case_load(h, txn, found[i], strlen(found[i]), &c, mdb_rc)))
            return hall_mdb_fail(e, mdb_rc, rc, "review.list");
        case_pack(h, txn, &c, pk, true);
    }
    return 0;
}

/* ---- supplement, delivery, ratings ---- */

int hall_case_supplement(hall *h, MDB_txn *txn, const hall_request *r, msgpack_packer *pk,
                         proto_error *e, int *mdb_rc)
{
    char mats[HALL_MAX_LIST][HALL_ID_MAX + 1];
    int n_mats;
    hall_case c;
    if (read_codes(r->args, "materials", true, mats, &n_mats, e) ||
        load_arg_case(h, txn, r, &c, e, mdb_rc))
        return -1;
    if (c.state != CASE_SUPPLEMENT)
        return proto_fail(e, PROTO_E_CONFLICT, "case %s is %s: no supplement is asked", c.no,
                          case_states[c.state]),
               -1;
    for (int i = 0; i < c.n_missing; i++)
        if (!has_code(mats, n_mats, c.missing[i]))
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
    int rc = undecided_to(h, txn, &c, true);
    case_note(&c, r, CH_RESUMED, NULL);
    if (!rc)
        rc = deadline_timers(h, txn, &c, true);
    if (!rc)
        rc = case_store(h, txn, &c);
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
    if (load_arg_case(h, txn, r, &c, e, mdb_rc))
        return -1;
    if (!is_ready(&c))
        return proto_fail(e, PROTO_E_CONFLICT, "case %s is %s: not ready for delivery", c.no,
                          case_states[c.state]),
               -1;
    c.state = CASE_DELIVERED;
    c.delivered_ms = r->now_ms;
    hall_copy(c.method, sizeof c.method, mail ? "mail" : "counter", SIZE_MAX);
    if (mail)
        hall_copy(c.tracking, sizeof c.tracking, tracking, tn);
    case_note(&c, r, CH_DELIVERED, NULL);
    int rc = case_store(h, txn, &c);
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
        if (load_arg_case(h, txn, r, &c, e, mdb_rc))
            return -1;
        if (!is_ready(&c) && c.state != CASE_DELIVERED)
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
    int rc = case_load(h, txn, no, n, &c, mdb_rc);
    if (rc == MDB_NOTFOUND)
        return proto_fail(e, PROTO_E_NOT_FOUND, "args.case_no: no case '%.*s'", (int)n, no), -1;
    if (rc)
        return hall_mdb_fail(e, mdb_rc, rc, "case");
    if (c.state == CASE_DELIVERED)
        return proto_fail(e, PROTO_E_CONFLICT, "case %s was delivered: nothing left to pick up",
                          c.no),
               -1;
    if (!is_ready(&c))
        return proto_fail(e, PROTO_E_CONFLICT, "case %s is %s: nothing to pick up yet", c.no,
                          case_states[c.state]),
               -1;
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
        load_arg_case(h, txn, r, &c, e, mdb_rc))
        return -1;
    int rc = 0, k = kn == 5 ? TIMER_LEASE : kn == 8 ? TIMER_DUE_SOON : TIMER_OVERDUE;
    if (k == TIMER_LEASE) {
        char d[HALL_ID_MAX + 1];
        hall_copy(d, sizeof d, dept ? dept : "", dn);
        int di = dep_index(&c, d);
        if (di < 0 || c.deps[di].state != DEP_CLAIMED)
            return proto_fail(e, PROTO_E_INTERNAL, "lease of %s/%s is not running", c.no, d), -1;
        rc = timer_index(h, txn, c.deps[di].lease_until, TIMER_LEASE, c.no, d, false);
        c.deps[di].state = DEP_PENDING;
        c.deps[di].lease_until = 0;
        case_note(&c, r, CH_LEASE_EXPIRED, d);
        if (!rc)
            rc = review_index(h, txn, &c, d, true);
    } else {
        const hall_calendar *cal = &h->cfg->cal;
        int32_t day = hall_local_day(cal, c.deadline_ms);
        int64_t at =
            k == TIMER_DUE_SOON ? hall_local_ms(cal, day, cal->open_min) : c.deadline_ms + 1;
        rc = timer_index(h, txn, at, k, c.no, "", false);
        if (k == TIMER_DUE_SOON)
            c.due_soon = true;
        else
            c.overdue = true;
    }
    if (!rc)
        rc = case_store(h, txn, &c);
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
