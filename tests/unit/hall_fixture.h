/* tests/unit/hall_fixture.h: the hall's state machine over a temp LMDB,
 * driven like the daemon drives it, with the clock in the test's hand.
 *
 * fx_do(f, op, actor, now, args) runs one request at `now` after writing
 * the time-driven records due by then (day close, leases, deadline marks,
 * appointment no-shows), as the daemon's batch does. Args are written in a
 * small JSON-like notation: {line: 'A', priority: true, materials: [M01]}
 * (bare words and quoted strings are strings; integers, true, false, nil).
 * Every record is kept; fx_free replays them into a fresh store and checks
 * that the replay gives the same results and the same state digest.
 *
 * Header-only: each test program includes it once. */
#ifndef HALLQ_TEST_HALL_FIXTURE_H
#define HALLQ_TEST_HALL_FIXTURE_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "daemon/hall/calendar.h"
#include "daemon/hall/hall.h"

#include <ctype.h>
#include <ftw.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef HALLQ_SOURCE_DIR
#define HALLQ_SOURCE_DIR "."
#endif

/* Every helper may go unused in one test program. */
#define FX static __attribute__((unused))

#define MIN_MS 60000LL
#define HOUR_MS 3600000LL

typedef struct fx_actor {
    hall_role role;
    const char *id;
} fx_actor;

#define KIOSK ((fx_actor){HALL_ROLE_KIOSK, "K1"})
#define ADMIN ((fx_actor){HALL_ROLE_ADMIN, "admin"})
#define WIN(w) ((fx_actor){HALL_ROLE_WINDOW, (w)})
#define DEPT(d) ((fx_actor){HALL_ROLE_DEPARTMENT, (d)})

typedef struct fx_rec {
    size_t off, len;
    uint16_t type;
    int64_t at;
    uint8_t role;
    char actor[HALL_ID_MAX + 1];
} fx_rec;

typedef struct fixture {
    char dir[64];
    hall_store st;
    hall *h;
    uint64_t lsn;
    proto_buf result, payload, log;
    fx_rec *recs;
    int n, cap;
    proto_error e;       /* of the last fx_do / fx_read */
    int64_t due_through; /* time-driven records written up to here */
    int n_due;           /* how many were written, in all */
    msgpack_zone zone;   /* the last result, decoded */
    msgpack_object res;
} fixture;

/* ---- args notation ---- */

FX const char *fx_skip(const char *s)
{
    while (*s == ' ' || *s == ',' || *s == '\n')
        s++;
    return s;
}

FX const char *fx_pack_value(msgpack_packer *pk, const char *s);

FX const char *fx_pack_word(msgpack_packer *pk, const char *s)
{
    s = fx_skip(s);
    if (*s == '\'' || *s == '"') {
        char q = *s++;
        const char *end = strchr(s, q);
        assert_non_null(end);
        proto_pack_strn(pk, s, (size_t)(end - s));
        return end + 1;
    }
    const char *b = s;
    while (*s && !strchr(" ,:]}\n", *s))
        s++;
    size_t n = (size_t)(s - b);
    assert_true(n > 0);
    bool num = (isdigit((unsigned char)b[0]) || (b[0] == '-' && n > 1));
    for (size_t i = 1; num && i < n; i++)
        num = isdigit((unsigned char)b[i]);
    if (num)
        msgpack_pack_int64(pk, strtoll(b, NULL, 10));
    else if (n == 4 && !memcmp(b, "true", 4))
        msgpack_pack_true(pk);
    else if (n == 5 && !memcmp(b, "false", 5))
        msgpack_pack_false(pk);
    else if (n == 3 && !memcmp(b, "nil", 3))
        msgpack_pack_nil(pk);
    else
        proto_pack_strn(pk, b, n);
    return s;
}

/* Counts the items of the container opening at s (s after the bracket). */
FX size_t fx_count(const char *s, char close)
{
    size_t n = 0;
    int depth = 0;
    bool item = false;
    char q = 0;
    for (; *s; s++) {
        if (q) {
            q = *s == q ? 0 : q;
            continue;
        }
        if (*s == '\'' || *s == '"') {
            q = *s;
            item = true;
        } else if (*s == '{' || *s == '[') {
            depth++;
            item = true;
        } else if (*s == '}' || *s == ']') {
            if (depth == 0) {
                assert_int_equal(*s, close);
                return n + item;
            }
            depth--;
        } else if (*s == ',' && depth == 0) {
            n += item;
            item = false;
        } else if (*s != ' ' && *s != '\n') {
            item = true;
        }
    }
    fail_msg("unclosed %c", close);
    return 0;
}

FX const char *fx_pack_value(msgpack_packer *pk, const char *s)
{
    s = fx_skip(s);
    if (*s == '{') {
        s++;
        msgpack_pack_map(pk, fx_count(s, '}'));
        for (s = fx_skip(s); *s != '}'; s = fx_skip(s)) {
            s = fx_pack_word(pk, s);
            s = fx_skip(s);
            assert_int_equal(*s, ':');
            s = fx_pack_value(pk, s + 1);
        }
        return s + 1;
    }
    if (*s == '[') {
        s++;
        msgpack_pack_array(pk, fx_count(s, ']'));
        for (s = fx_skip(s); *s != ']'; s = fx_skip(s))
            s = fx_pack_value(pk, s);
        return s + 1;
    }
    return fx_pack_word(pk, s);
}

/* ---- the store ---- */

FX int fx_rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(p);
}

FX char *fx_demo_text(size_t *len)
{
    FILE *fp = fopen(HALLQ_SOURCE_DIR "/examples/demo-hall.yaml", "rb");
    assert_non_null(fp);
    static char buf[65536];
    *len = fread(buf, 1, sizeof buf - 1, fp);
    buf[*len] = 0;
    fclose(fp);
    return buf;
}

FX void fx_open_store(fixture *f)
{
    char err[256];
    strcpy(f->dir, "/tmp/hallq-test-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    assert_int_equal(hall_store_open(&f->st, f->dir, false, 0, err, sizeof err), 0);
    assert_int_equal(hall_open(&f->h, &f->st, err, sizeof err), 0);
    proto_buf_init(&f->result);
    proto_buf_init(&f->payload);
    proto_buf_init(&f->log);
    msgpack_zone_init(&f->zone, 4096);
}

FX void fx_close_store(fixture *f)
{
    hall_close(f->h);
    hall_store_close(&f->st);
    nftw(f->dir, fx_rm_cb, 8, FTW_DEPTH | FTW_PHYS);
    proto_buf_free(&f->result);
    proto_buf_free(&f->payload);
    proto_buf_free(&f->log);
    msgpack_zone_destroy(&f->zone);
    free(f->recs);
}

FX void fx_keep(fixture *f, const hall_request *r)
{
    assert_int_equal(hall_record_pack(r, &f->result, &f->payload), 0);
    if (f->n == f->cap) {
        f->cap = f->cap ? f->cap * 2 : 256;
        f->recs = realloc(f->recs, sizeof *f->recs * (size_t)f->cap);
        assert_non_null(f->recs);
    }
    fx_rec *x = &f->recs[f->n++];
    x->off = f->log.len;
    x->len = f->payload.len;
    x->type = r->def->rec_type;
    x->at = r->now_ms;
    x->role = (uint8_t)r->actor.role;
    snprintf(x->actor, sizeof x->actor, "%s", r->actor.id);
    proto_buf_append(&f->log, f->payload.p, f->payload.len);
}

/* Decodes the last result into f->res. */
FX void fx_decode(fixture *f)
{
    size_t off = 0;
    msgpack_zone_clear(&f->zone);
    assert_int_equal(
        msgpack_unpack((const char *)f->result.p, f->result.len, &off, &f->zone, &f->res),
        MSGPACK_UNPACK_SUCCESS);
}

/* Writes the time-driven records due by `now`, each at its own time. */
FX void fx_run_due(fixture *f, int64_t now)
{
    for (;;) {
        MDB_txn *txn;
        hall_request r;
        assert_int_equal(mdb_txn_begin(f->st.env, NULL, 0, &txn), 0);
        hall_batch_begin(f->h);
        if (!hall_due(f->h, txn, now, &r)) {
            mdb_txn_abort(txn);
            hall_batch_abort(f->h);
            break;
        }
        r.lsn = f->lsn + 1;
        int mdb_rc = 0;
        proto_error e = {0};
        int rc = hall_exec(f->h, txn, &r, &f->result, &e, &mdb_rc);
        if (rc != HALL_EXEC_RECORD)
            fail_msg("time-driven %s at %lld failed: %s", r.def->name, (long long)r.now_ms, e.msg);
        f->lsn++;
        f->n_due++;
        fx_keep(f, &r);
        assert_int_equal(hall_store_set_applied_lsn(&f->st, txn, f->lsn), 0);
        assert_int_equal(mdb_txn_commit(txn), 0);
        hall_batch_commit(f->h);
    }
    if (now > f->due_through)
        f->due_through = now;
}

FX const msgpack_object *fx_args(msgpack_zone *z, proto_buf *b, const char *json, msgpack_object *o)
{
    if (!json)
        return NULL;
    msgpack_packer pk;
    proto_buf_init(b);
    proto_packer_init(&pk, b);
    const char *end = fx_pack_value(&pk, json);
    assert_int_equal(*fx_skip(end), 0);
    size_t off = 0;
    assert_int_equal(msgpack_unpack((const char *)b->p, b->len, &off, z, o),
                     MSGPACK_UNPACK_SUCCESS);
    return o;
}

/* Runs op (a mutation or a read) as `who` at `now`: returns 0 (or
 * HALL_EXEC_REPLAY for an idem repeat) or -1 with f->e set. */
FX int fx_do(fixture *f, const char *op, fx_actor who, int64_t now, const char *json)
{
    fx_run_due(f, now);
    msgpack_zone z;
    msgpack_zone_init(&z, 1024);
    msgpack_object o;
    proto_buf b = {0};
    hall_request r = {.def = hall_op_find(op, strlen(op)), .now_ms = now, .lsn = f->lsn + 1};
    if (!r.def)
        fail_msg("no op %s", op);
    r.args = fx_args(&z, &b, json, &o);
    r.actor.role = who.role;
    snprintf(r.actor.id, sizeof r.actor.id, "%s", who.id);
    MDB_txn *txn;
    int rc, mdb_rc = 0;
    memset(&f->e, 0, sizeof f->e);
    if (r.def->kind == HALL_READ) {
        assert_int_equal(mdb_txn_begin(f->st.env, NULL, MDB_RDONLY, &txn), 0);
        rc = hall_read(f->h, txn, &r, &f->result, &f->e);
        mdb_txn_abort(txn);
    } else {
        assert_int_equal(mdb_txn_begin(f->st.env, NULL, 0, &txn), 0);
        hall_batch_begin(f->h);
        rc = hall_exec(f->h, txn, &r, &f->result, &f->e, &mdb_rc);
        assert_int_equal(mdb_rc, 0);
        if (rc == HALL_EXEC_RECORD) {
            f->lsn++;
            fx_keep(f, &r);
            assert_int_equal(hall_store_set_applied_lsn(&f->st, txn, f->lsn), 0);
            assert_int_equal(mdb_txn_commit(txn), 0);
            hall_batch_commit(f->h);
        } else {
            mdb_txn_abort(txn);
            hall_batch_abort(f->h);
        }
    }
    if (rc >= 0)
        fx_decode(f);
    proto_buf_free(&b);
    msgpack_zone_destroy(&z);
    return rc;
}

FX const char *fx_js(const char *json)
{
    return json ? json : "";
}

/* A request that must succeed / fail with `code` (and mention `needle`). */
#define fx_ok(f, op, who, now, json)                                                               \
    do {                                                                                           \
        if (fx_do(f, op, who, now, json) < 0)                                                      \
            fail_msg("%s %s: %s: %s", op, fx_js(json), proto_err_name((f)->e.code), (f)->e.msg);   \
    } while (0)
#define fx_err(f, op, who, now, json, want, needle)                                                \
    do {                                                                                           \
        if (fx_do(f, op, who, now, json) >= 0)                                                     \
            fail_msg("%s %s should fail with %s", op, fx_js(json), proto_err_name(want));          \
        if ((f)->e.code != (want) || !strstr((f)->e.msg, needle))                                  \
            fail_msg("%s %s: got %s '%s', want %s mentioning '%s'", op, fx_js(json),               \
                     proto_err_name((f)->e.code), (f)->e.msg, proto_err_name(want), needle);       \
    } while (0)

/* ---- reading the last result by path: "ticket.number", "cases.0.state" ---- */

FX const msgpack_object *fx_get(fixture *f, const char *path)
{
    const msgpack_object *o = &f->res;
    char part[64];
    while (*path) {
        size_t n = strcspn(path, ".");
        snprintf(part, sizeof part, "%.*s", (int)n, path);
        if (o->type == MSGPACK_OBJECT_MAP) {
            o = proto_map_get(o, part);
        } else if (o->type == MSGPACK_OBJECT_ARRAY) {
            unsigned i = (unsigned)atoi(part);
            o = i < o->via.array.size ? &o->via.array.ptr[i] : NULL;
        } else {
            o = NULL;
        }
        if (!o)
            return NULL;
        path += n + (path[n] == '.');
    }
    return o;
}

FX const msgpack_object *fx_must(fixture *f, const char *path)
{
    const msgpack_object *o = fx_get(f, path);
    if (!o)
        fail_msg("no %s in the result", path);
    return o;
}

FX const char *fx_str(fixture *f, const char *path)
{
    static char bufs[4][128];
    static int next;
    const msgpack_object *o = fx_must(f, path);
    if (o->type != MSGPACK_OBJECT_STR)
        fail_msg("%s is not a string", path);
    char *b = bufs[next++ % 4];
    snprintf(b, 128, "%.*s", (int)o->via.str.size, o->via.str.ptr);
    return b;
}

FX int64_t fx_int(fixture *f, const char *path)
{
    const msgpack_object *o = fx_must(f, path);
    if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
        return (int64_t)o->via.u64;
    if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
        return o->via.i64;
    if (o->type == MSGPACK_OBJECT_BOOLEAN)
        return o->via.boolean;
    fail_msg("%s is not an integer", path);
    return 0;
}

FX double fx_dbl(fixture *f, const char *path)
{
    const msgpack_object *o = fx_must(f, path);
    if (o->type != MSGPACK_OBJECT_FLOAT64 && o->type != MSGPACK_OBJECT_FLOAT32)
        fail_msg("%s is not a float", path);
    return o->via.f64;
}

FX bool fx_nil(fixture *f, const char *path)
{
    const msgpack_object *o = fx_get(f, path);
    return o && o->type == MSGPACK_OBJECT_NIL;
}

FX uint32_t fx_len(fixture *f, const char *path)
{
    const msgpack_object *o = fx_must(f, path);
    if (o->type == MSGPACK_OBJECT_ARRAY)
        return o->via.array.size;
    if (o->type == MSGPACK_OBJECT_MAP)
        return o->via.map.size;
    fail_msg("%s is not a container", path);
    return 0;
}

/* ---- set-up and the replay check ---- */

/* A config record of the demo config at `now`, as the daemon writes one at
 * start, naming rules version `rules` (0: none, which is rules 1); the
 * time-driven records due by then go first. 0, or -1 with f->e set. */
FX int fx_config(fixture *f, int64_t now, int rules)
{
    if (f->lsn)
        fx_run_due(f, now);
    size_t len;
    char *t = fx_demo_text(&len);
    proto_buf args;
    proto_buf_init(&args);
    msgpack_packer pk;
    proto_packer_init(&pk, &args);
    msgpack_pack_map(&pk, rules ? 2 : 1);
    proto_pack_str(&pk, "text");
    proto_pack_strn(&pk, t, len);
    if (rules)
        proto_pack_kv_uint(&pk, "rules", (uint64_t)rules);
    msgpack_zone z;
    msgpack_zone_init(&z, 1024);
    msgpack_object o;
    size_t off = 0;
    assert_int_equal(msgpack_unpack((const char *)args.p, args.len, &off, &z, &o),
                     MSGPACK_UNPACK_SUCCESS);
    hall_request r = {
        .def = hall_op_find("config", 6), .args = &o, .now_ms = now, .lsn = f->lsn + 1};
    r.actor.role = HALL_ROLE_SYSTEM;
    strcpy(r.actor.id, "hallqd");
    MDB_txn *txn;
    int mdb_rc = 0;
    memset(&f->e, 0, sizeof f->e);
    assert_int_equal(mdb_txn_begin(f->st.env, NULL, 0, &txn), 0);
    hall_batch_begin(f->h);
    int rc = hall_exec(f->h, txn, &r, &f->result, &f->e, &mdb_rc);
    assert_int_equal(mdb_rc, 0);
    if (rc == HALL_EXEC_RECORD) {
        f->lsn++;
        fx_keep(f, &r);
        assert_int_equal(hall_store_set_applied_lsn(&f->st, txn, f->lsn), 0);
        assert_int_equal(mdb_txn_commit(txn), 0);
        hall_batch_commit(f->h);
    } else {
        mdb_txn_abort(txn);
        hall_batch_abort(f->h);
    }
    msgpack_zone_destroy(&z);
    proto_buf_free(&args);
    return rc == HALL_EXEC_RECORD ? 0 : -1;
}

/* A fresh hall running the demo config from `start`, its config record
 * naming rules version `rules` (0: none, which is rules 1). */
FX fixture *fx_new_rules(int64_t start, int rules)
{
    fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    fx_open_store(f);
    assert_int_equal(fx_config(f, start, rules), 0);
    f->due_through = start;
    return f;
}

/* A fresh hall under this build's rules (HALL_RULES_VERSION). */
FX fixture *fx_new(int64_t start)
{
    return fx_new_rules(start, HALL_RULES_VERSION);
}

FX void fx_digest(fixture *f, uint8_t d[32])
{
    MDB_txn *txn;
    assert_int_equal(mdb_txn_begin(f->st.env, NULL, MDB_RDONLY, &txn), 0);
    assert_int_equal(hall_store_digest(&f->st, txn, d), 0);
    mdb_txn_abort(txn);
}

/* Replays every record into a fresh store: same results, same digest. */
FX void fx_replay_check(fixture *f)
{
    fixture *g = calloc(1, sizeof *g);
    fx_open_store(g);
    proto_buf scratch;
    proto_buf_init(&scratch);
    char err[256];
    for (int i = 0; i < f->n; i++) {
        const fx_rec *x = &f->recs[i];
        MDB_txn *txn;
        int mdb_rc = 0;
        assert_int_equal(mdb_txn_begin(g->st.env, NULL, 0, &txn), 0);
        hall_batch_begin(g->h);
        if (hall_replay(g->h, txn, (uint64_t)i + 1, x->at, x->type, x->role, x->actor,
                        f->log.p + x->off, x->len, &scratch, err, sizeof err, &mdb_rc) != 0)
            fail_msg("replay of record %d: %s", i + 1, err);
        assert_int_equal(hall_store_set_applied_lsn(&g->st, txn, (uint64_t)i + 1), 0);
        assert_int_equal(mdb_txn_commit(txn), 0);
        hall_batch_commit(g->h);
    }
    uint8_t d1[32], d2[32];
    fx_digest(f, d1);
    fx_digest(g, d2);
    assert_memory_equal(d1, d2, 32);
    proto_buf_free(&scratch);
    fx_close_store(g);
    free(g);
}

FX void fx_free(fixture *f)
{
    fx_replay_check(f);
    fx_close_store(f);
    free(f);
}

/* ---- time ---- */

/* UTC ms of a local date and time in the demo hall (UTC+8). */
FX int64_t fx_at(int y, int m, int d, int hh, int mm)
{
    return (int64_t)hall_day_from_civil(y, m, d) * HALL_DAY_MS + (hh * 60 + mm) * MIN_MS -
           8 * HOUR_MS;
}

/* ---- common steps ---- */

/* Takes a ticket on `line` (json extra: ", priority: true"); returns its id
 * in a static buffer. */
FX const char *fx_take(fixture *f, int64_t now, const char *line, const char *extra)
{
    char json[256];
    snprintf(json, sizeof json, "{line: %s%s}", line, extra ? extra : "");
    fx_ok(f, "ticket.take", KIOSK, now, json);
    static char ids[8][40];
    static int next;
    char *b = ids[next++ % 8];
    snprintf(b, 40, "%s", fx_str(f, "ticket_id"));
    return b;
}

/* window.call at `w`: the number called, or "" when none waits. */
FX const char *fx_call(fixture *f, int64_t now, const char *w)
{
    fx_ok(f, "window.call", WIN(w), now, NULL);
    if (fx_nil(f, "ticket"))
        return "";
    return fx_str(f, "ticket.number");
}

FX void fx_open_window(fixture *f, int64_t now, const char *w)
{
    fx_ok(f, "window.state", WIN(w), now, "{state: open}");
}

#endif
