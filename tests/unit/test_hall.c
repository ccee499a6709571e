/* tests/unit/test_hall.c: the hall's rules with the clock under test
 * control: config checks, the calendar, ticket numbering, idem, and the
 * replay of recorded results. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "daemon/hall/calendar.h"
#include "daemon/hall/hall.h"

#include <ftw.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef HALLQ_SOURCE_DIR
#define HALLQ_SOURCE_DIR "."
#endif

static char *demo_text(size_t *len)
{
    FILE *f = fopen(HALLQ_SOURCE_DIR "/examples/demo-hall.yaml", "rb");
    assert_non_null(f);
    static char buf[65536];
    *len = fread(buf, 1, sizeof buf - 1, f);
    buf[*len] = 0;
    fclose(f);
    return buf;
}

/* The demo config with `from` replaced by `to` (must occur once). */
static int parse_variant(const char *from, const char *to, char *err, size_t errlen)
{
    size_t len;
    const char *t = demo_text(&len);
    const char *at = strstr(t, from);
    assert_non_null(at);
    char *v = malloc(len + strlen(to) + 1);
    size_t pre = (size_t)(at - t);
    memcpy(v, t, pre);
    strcpy(v + pre, to);
    strcat(v, at + strlen(from));
    hall_config *c = NULL;
    int rc = hall_config_parse(v, strlen(v), "demo.yaml", &c, err, errlen);
    hall_config_free(c);
    free(v);
    return rc;
}

static void test_config_demo(void **state)
{
    (void)state;
    size_t len;
    char *t = demo_text(&len), err[512];
    hall_config *c;
    assert_int_equal(hall_config_parse(t, len, "demo.yaml", &c, err, sizeof err), 0);
    assert_string_equal(c->name, "Demo City Service Centre");
    assert_int_equal(c->n_lines, 5);
    assert_int_equal(c->n_windows, 6);
    assert_int_equal(c->n_services, 6);
    assert_int_equal(c->services[3].n_departments, 3);
    assert_int_equal(c->cal.n_holidays, 8);
    assert_int_equal(c->cal.utc_offset_ms, 8 * 3600000);
    assert_non_null(hall_config_token(c, "window-W03", 10));
    assert_null(hall_config_token(c, "window-W0", 9));
    assert_null(hall_config_token(c, "window-W033", 11));
    assert_int_equal(hall_config_token(c, "dept-mkt", 8)->role, HALL_ROLE_DEPARTMENT);
    /* Calling order (1.2): the domain windows W03 and W04 go by lines. */
    assert_int_equal(c->windows[0].order, HALL_ORDER_EARLIEST);
    assert_int_equal(c->windows[2].order, HALL_ORDER_LINES);
    assert_int_equal(c->windows[3].order, HALL_ORDER_LINES);
    assert_int_equal(c->windows[5].order, HALL_ORDER_EARLIEST);
    hall_config_free(c);
}

static void expect_error(const char *from, const char *to, const char *needle)
{
    char err[512] = "";
    assert_int_equal(parse_variant(from, to, err, sizeof err), -1);
    if (!strstr(err, needle))
        fail_msg("error '%s' does not mention '%s'", err, needle);
    assert_non_null(strstr(err, "demo.yaml:"));
}

static void test_config_errors(void **state)
{
    (void)state;
    expect_error("{id: B, name: legal persons", "{id: A, name: legal persons", "duplicate id 'A'");
    expect_error("{id: W04, lines: [C, D]", "{id: W04, lines: [C, Z]", "unknown line 'Z'");
    expect_error("departments: [hrss], kind: instant", "departments: [], kind: instant",
                 "at least one department");
    expect_error("- 2027-01-01", "- 2027-02-30", "not a date");
    expect_error("- 2026-10-10 ", "- 2026-1010 ", "not a date");
    expect_error("claim_lease_s: 300", "claim_lease: 300", "unknown key 'claim_lease'");
    expect_error("{token: kiosk-demo, role: kiosk", "{token: kiosk-demo, role: cashier",
                 "unknown role");
    expect_error("utc_offset: \"+08:00\"", "utc_offset: \"8h\"", "utc_offset");
    expect_error("open: \"09:00\"", "open: \"9am\"", "HH:MM");
    /* Signs and spaces where the digits go (sscanf's %2d takes them). */
    expect_error("utc_offset: \"+08:00\"", "utc_offset: \"+-1:00\"", "utc_offset");
    expect_error("utc_offset: \"+08:00\"", "utc_offset: \"+08:-1\"", "utc_offset");
    expect_error("open: \"09:00\"", "open: \" 9:00\"", "HH:MM");
    expect_error("open: \"09:00\"", "open: \"+9:00\"", "HH:MM");
    expect_error("kiosk_burst: 40", "kiosk_burst: 0", "kiosk_burst");
    expect_error("frame_timeout_s: 10", "frame_timeout_s: ten", "frame_timeout_s");
    expect_error("order: lines}", "order: first}",
                 "windows[W03].order: expected earliest or lines");
    /* The line number points at the offending line. */
    char err[512];
    parse_variant("{id: W04, lines: [C, D]", "{id: W04, lines: [C, Z]", err, sizeof err);
    size_t len;
    const char *t = demo_text(&len);
    int line = 1;
    for (const char *p = t; p < strstr(t, "{id: W04"); p++)
        line += *p == '\n';
    char want[64];
    snprintf(want, sizeof want, "demo.yaml:%d:", line);
    assert_non_null(strstr(err, want));
}

static hall_config *demo(void)
{
    size_t len;
    char *t = demo_text(&len), err[512];
    hall_config *c;
    assert_int_equal(hall_config_parse(t, len, "demo.yaml", &c, err, sizeof err), 0);
    return c;
}

static int32_t day(int y, int m, int d)
{
    return hall_day_from_civil(y, m, d);
}

static void test_calendar(void **state)
{
    (void)state;
    hall_config *c = demo();
    const hall_calendar *cal = &c->cal;
    char s[11];
    hall_day_format(day(2026, 11, 24), s);
    assert_string_equal(s, "2026-11-24");
    assert_int_equal(hall_weekday(day(2026, 11, 24)), 2); /* a Tuesday */
    assert_true(hall_is_working_day(cal, day(2026, 11, 24)));
    assert_false(hall_is_working_day(cal, day(2026, 11, 28))); /* Saturday */
    assert_false(hall_is_working_day(cal, day(2026, 10, 1)));  /* holiday */
    assert_false(hall_is_working_day(cal, day(2026, 10, 7)));  /* holiday */
    assert_true(hall_is_working_day(cal, day(2026, 10, 10)));  /* extra working Saturday */
    assert_false(hall_is_working_day(cal, day(2027, 1, 1)));
    assert_int_equal(hall_next_working_day(cal, day(2026, 9, 30)), day(2026, 10, 8));
    assert_int_equal(hall_next_working_day(cal, day(2026, 10, 9)), day(2026, 10, 10));
    assert_int_equal(hall_next_working_day(cal, day(2026, 11, 27)), day(2026, 11, 30));
    /* 2026-11-24 16:59 local is still that business day; 17:00 is the next. */
    int64_t t1659 = hall_local_ms(cal, day(2026, 11, 24), 16 * 60 + 59);
    assert_int_equal(hall_local_day(cal, t1659), day(2026, 11, 24));
    assert_int_equal(hall_business_day(cal, 17 * 60, t1659), day(2026, 11, 24));
    assert_int_equal(hall_business_day(cal, 17 * 60, t1659 + 60000), day(2026, 11, 25));
    /* Friday evening belongs to Monday. */
    int64_t fri = hall_local_ms(cal, day(2026, 11, 27), 18 * 60);
    assert_int_equal(hall_business_day(cal, 17 * 60, fri), day(2026, 11, 30));
    /* Local midnight in Shanghai is 16:00 UTC the day before. */
    assert_int_equal(hall_local_ms(cal, day(2026, 11, 24), 0) % HALL_DAY_MS, 16 * 3600000);
    hall_config_free(c);
}

/* ---- the state machine over a temp LMDB ---- */

typedef struct fixture {
    char dir[64];
    hall_store st;
    hall *h;
    uint64_t lsn;
    proto_buf result, payload;
    /* Every record made, to replay elsewhere. */
    proto_buf log;
    size_t offsets[4096];
    uint16_t types[4096];
    int64_t times[4096];
    uint8_t roles[4096];
    char actors[4096][17];
    int n;
} fixture;

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(p);
}

static void fx_open(fixture *f)
{
    char err[256];
    strcpy(f->dir, "/tmp/hallq-test-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    assert_int_equal(hall_store_open(&f->st, f->dir, false, 0, err, sizeof err), 0);
    assert_int_equal(hall_open(&f->h, &f->st, err, sizeof err), 0);
    proto_buf_init(&f->result);
    proto_buf_init(&f->payload);
}

static void fx_close(fixture *f)
{
    hall_close(f->h);
    hall_store_close(&f->st);
    nftw(f->dir, rm_cb, 8, FTW_DEPTH | FTW_PHYS);
    proto_buf_free(&f->result);
    proto_buf_free(&f->payload);
}

/* Runs one mutation from packed args; returns the hall_exec outcome and
 * leaves the result (or error) behind. Records are kept for replay. */
static int fx_exec(fixture *f, const char *op, hall_role role, const char *actor, int64_t now,
                   const proto_buf *args, proto_error *e)
{
    msgpack_zone z;
    msgpack_zone_init(&z, 1024);
    msgpack_object o;
    size_t off = 0;
    const msgpack_object *ap = NULL;
    if (args) {
        assert_int_equal(msgpack_unpack((const char *)args->p, args->len, &off, &z, &o),
                         MSGPACK_UNPACK_SUCCESS);
        ap = &o;
    }
    hall_request r = {
        .def = hall_op_find(op, strlen(op)), .args = ap, .now_ms = now, .lsn = f->lsn + 1};
    assert_non_null(r.def);
    r.actor.role = role;
    strcpy(r.actor.id, actor);
    MDB_txn *txn;
    assert_int_equal(mdb_txn_begin(f->st.env, NULL, 0, &txn), 0);
    hall_batch_begin(f->h);
    int mdb_rc = 0;
    memset(e, 0, sizeof *e);
    int rc = hall_exec(f->h, txn, &r, &f->result, e, &mdb_rc);
    assert_int_equal(mdb_rc, 0);
    if (rc == HALL_EXEC_RECORD) {
        f->lsn++;
        assert_int_equal(hall_record_pack_ev(f->h, &r, &f->result, &f->payload), 0);
        assert_true(f->n < 4096);
        f->offsets[f->n] = f->log.len;
        f->types[f->n] = r.def->rec_type;
        f->times[f->n] = now;
        f->roles[f->n] = (uint8_t)role;
        strcpy(f->actors[f->n], actor);
        f->n++;
        uint8_t len4[4] = {(uint8_t)(f->payload.len >> 24), (uint8_t)(f->payload.len >> 16),
                           (uint8_t)(f->payload.len >> 8), (uint8_t)f->payload.len};
        proto_buf_append(&f->log, len4, 4);
        proto_buf_append(&f->log, f->payload.p, f->payload.len);
        assert_int_equal(hall_store_set_applied_lsn(&f->st, txn, f->lsn), 0);
        assert_int_equal(mdb_txn_commit(txn), 0);
        hall_batch_commit(f->h);
    } else {
        mdb_txn_abort(txn);
        hall_batch_abort(f->h);
    }
    msgpack_zone_destroy(&z);
    return rc;
}

static void fx_config(fixture *f, int64_t now)
{
    size_t len;
    char *t = demo_text(&len);
    proto_buf args;
    proto_buf_init(&args);
    msgpack_packer pk;
    proto_packer_init(&pk, &args);
    msgpack_pack_map(&pk, 1);
    proto_pack_str(&pk, "text");
    proto_pack_strn(&pk, t, len);
    proto_error e;
    assert_int_equal(fx_exec(f, "config", HALL_ROLE_SYSTEM, "hallqd", now, &args, &e),
                     HALL_EXEC_RECORD);
    proto_buf_free(&args);
}

/* Packs {line: L, [priority: true], [idem: I]}. */
static void take_args(proto_buf *b, const char *line, bool priority, const char *idem)
{
    msgpack_packer pk;
    proto_buf_reset(b);
    proto_packer_init(&pk, b);
    msgpack_pack_map(&pk, 1 + (priority ? 1 : 0) + (idem ? 1 : 0));
    proto_pack_kv_str(&pk, "line", line);
    if (priority)
        proto_pack_kv_bool(&pk, "priority", true);
    if (idem)
        proto_pack_kv_str(&pk, "idem", idem);
}

/* Reads key `k` of the last result as a string / uint. */
static const char *res_str(fixture *f, const char *k, char *out, size_t cap)
{
    msgpack_zone z;
    msgpack_zone_init(&z, 1024);
    msgpack_object o;
    size_t off = 0;
    assert_int_equal(msgpack_unpack((const char *)f->result.p, f->result.len, &off, &z, &o),
                     MSGPACK_UNPACK_SUCCESS);
    const msgpack_object *v = proto_map_get(&o, k);
    assert_non_null(v);
    if (v->type == MSGPACK_OBJECT_STR)
        snprintf(out, cap, "%.*s", (int)v->via.str.size, v->via.str.ptr);
    else
        snprintf(out, cap, "%llu", (unsigned long long)v->via.u64);
    msgpack_zone_destroy(&z);
    return out;
}

static int64_t at(fixture *f, int y, int m, int d, int hh, int mm)
{
    return hall_local_ms(&hall_config_current(f->h)->cal, day(y, m, d), hh * 60 + mm);
}

static void test_ticket_numbering(void **state)
{
    (void)state;
    fixture *f = calloc(1, sizeof *f);
    fx_open(f);
    fx_config(f, 0);
    proto_buf a;
    proto_buf_init(&a);
    proto_error e;
    char s[64];
    int64_t t0 = at(f, 2026, 11, 24, 10, 0);

    take_args(&a, "A", false, NULL);
    assert_int_equal(fx_exec(f, "ticket.take", HALL_ROLE_KIOSK, "K1", t0, &a, &e), 0);
    assert_string_equal(res_str(f, "number", s, sizeof s), "A001");
    assert_string_equal(res_str(f, "ticket_id", s, sizeof s), "20261124-A001");
    assert_string_equal(res_str(f, "ahead", s, sizeof s), "0");
    assert_int_equal(fx_exec(f, "ticket.take", HALL_ROLE_KIOSK, "K1", t0 + 1000, &a, &e), 0);
    assert_string_equal(res_str(f, "number", s, sizeof s), "A002");
    assert_string_equal(res_str(f, "ahead", s, sizeof s), "1");
    assert_string_equal(res_str(f, "est_wait_s", s, sizeof s), "300");
    take_args(&a, "B", false, NULL);
    assert_int_equal(fx_exec(f, "ticket.take", HALL_ROLE_KIOSK, "K1", t0 + 2000, &a, &e), 0);
    assert_string_equal(res_str(f, "number", s, sizeof s), "B001");
    /* A priority ticket goes ahead of the two waiting A tickets. */
    take_args(&a, "A", true, NULL);
    assert_int_equal(fx_exec(f, "ticket.take", HALL_ROLE_KIOSK, "K1", t0 + 3000, &a, &e), 0);
    assert_string_equal(res_str(f, "number", s, sizeof s), "A003");
    assert_string_equal(res_str(f, "ahead", s, sizeof s), "0");

    /* Unknown line: not_found naming the field; nothing changes. */
    take_args(&a, "Z", false, NULL);
    assert_int_equal(fx_exec(f, "ticket.take", HALL_ROLE_KIOSK, "K1", t0, &a, &e), -1);
    assert_int_equal(e.code, PROTO_E_NOT_FOUND);
    assert_non_null(strstr(e.msg, "args.line"));
    /* Missing line: bad_request naming it. */
    assert_int_equal(fx_exec(f, "ticket.take", HALL_ROLE_KIOSK, "K1", t0, NULL, &e), -1);
    assert_int_equal(e.code, PROTO_E_BAD_REQUEST);
    assert_non_null(strstr(e.msg, "args.line"));

    /* After the day's close, numbering restarts on the next business day
     * (Wednesday); on Friday evening the next business day is Monday. */
    take_args(&a, "A", false, NULL);
    assert_int_equal(
        fx_exec(f, "ticket.take", HALL_ROLE_KIOSK, "K1", at(f, 2026, 11, 24, 17, 0), &a, &e), 0);
    assert_string_equal(res_str(f, "ticket_id", s, sizeof s), "20261125-A001");
    assert_int_equal(
        fx_exec(f, "ticket.take", HALL_ROLE_KIOSK, "K1", at(f, 2026, 11, 27, 18, 0), &a, &e), 0);
    assert_string_equal(res_str(f, "ticket_id", s, sizeof s), "20261130-A001");
    proto_buf_free(&a);
    proto_buf_free(&f->log);
    fx_close(f);
    free(f);
}

static void test_idem(void **state)
{
    (void)state;
    fixture *f = calloc(1, sizeof *f);
    fx_open(f);
    fx_config(f, 0);
    proto_buf a;
    proto_buf_init(&a);
    proto_error e;
    char s[64], first[64];
    int64_t t0 = at(f, 2026, 11, 24, 10, 0);
    take_args(&a, "A", false, "kiosk-retry-1");
    assert_int_equal(fx_exec(f, "ticket.take", HALL_ROLE_KIOSK, "K1", t0, &a, &e), 0);
    res_str(f, "ticket_id", first, sizeof first);
    /* The same request again: the first answer, no record, no new ticket. */
    assert_int_equal(fx_exec(f, "ticket.take", HALL_ROLE_KIOSK, "K1", t0 + 5000, &a, &e),
                     HALL_EXEC_REPLAY);
    assert_string_equal(res_str(f, "ticket_id", s, sizeof s), first);
    /* Another identity with the same idem is another request. */
    assert_int_equal(fx_exec(f, "ticket.take", HALL_ROLE_ADMIN, "admin", t0 + 6000, &a, &e),
                     HALL_EXEC_RECORD);
    assert_string_equal(res_str(f, "number", s, sizeof s), "A002");
    /* Same idem, other args: conflict. */
    take_args(&a, "B", false, "kiosk-retry-1");
    assert_int_equal(fx_exec(f, "ticket.take", HALL_ROLE_KIOSK, "K1", t0 + 7000, &a, &e), -1);
    assert_int_equal(e.code, PROTO_E_CONFLICT);
    /* After 24 h the key is free again. */
    assert_int_equal(
        fx_exec(f, "ticket.take", HALL_ROLE_KIOSK, "K1", t0 + 24LL * 3600000 + 1, &a, &e),
        HALL_EXEC_RECORD);
    /* Bad idem values. */
    char big[80];
    memset(big, 'x', 65);
    big[65] = 0;
    take_args(&a, "A", false, big);
    assert_int_equal(fx_exec(f, "ticket.take", HALL_ROLE_KIOSK, "K1", t0, &a, &e), -1);
    assert_int_equal(e.code, PROTO_E_BAD_REQUEST);
    assert_non_null(strstr(e.msg, "args.idem"));
    take_args(&a, "A", false, "");
    assert_int_equal(fx_exec(f, "ticket.take", HALL_ROLE_KIOSK, "K1", t0, &a, &e), -1);
    assert_int_equal(e.code, PROTO_E_BAD_REQUEST);
    proto_buf_free(&a);
    proto_buf_free(&f->log);
    fx_close(f);
    free(f);
}

/* Replaying the records into a fresh store gives the same digest, and a
 * tampered result is caught as a divergence. */
static void test_replay(void **state)
{
    (void)state;
    fixture *f = calloc(1, sizeof *f), *g = calloc(1, sizeof *g);
    fx_open(f);
    fx_config(f, 0);
    proto_buf a;
    proto_buf_init(&a);
    proto_error e;
    int64_t t0 = at(f, 2026, 11, 24, 9, 0);
    const char *lines[] = {"A", "B", "C", "D", "F"};
    for (int i = 0; i < 300; i++) {
        char idem[32];
        snprintf(idem, sizeof idem, "k%d", i % 250);
        take_args(&a, lines[i % 5], i % 7 == 0, i % 3 ? idem : NULL);
        fx_exec(f, "ticket.take", HALL_ROLE_KIOSK, "K1", t0 + i * 37000LL, &a, &e);
    }
    fx_open(g);
    MDB_txn *txn;
    proto_buf scratch;
    proto_buf_init(&scratch);
    char err[256];
    for (int i = 0; i < f->n; i++) {
        const uint8_t *p = f->log.p + f->offsets[i];
        size_t len = ((size_t)p[0] << 24) | ((size_t)p[1] << 16) | ((size_t)p[2] << 8) | p[3];
        assert_int_equal(mdb_txn_begin(g->st.env, NULL, 0, &txn), 0);
        hall_batch_begin(g->h);
        int mdb_rc;
        int rc = hall_replay(g->h, txn, (uint64_t)i + 1, f->times[i], f->types[i], f->roles[i],
                             f->actors[i], p + 4, len, &scratch, err, sizeof err, &mdb_rc);
        if (rc != 0)
            fail_msg("replay of record %d: %s", i + 1, err);
        assert_int_equal(hall_store_set_applied_lsn(&g->st, txn, (uint64_t)i + 1), 0);
        assert_int_equal(mdb_txn_commit(txn), 0);
        hall_batch_commit(g->h);
    }
    uint8_t d1[32], d2[32];
    assert_int_equal(mdb_txn_begin(f->st.env, NULL, MDB_RDONLY, &txn), 0);
    assert_int_equal(hall_store_digest(&f->st, txn, d1), 0);
    mdb_txn_abort(txn);
    assert_int_equal(mdb_txn_begin(g->st.env, NULL, MDB_RDONLY, &txn), 0);
    assert_int_equal(hall_store_digest(&g->st, txn, d2), 0);
    mdb_txn_abort(txn);
    assert_memory_equal(d1, d2, 32);

    /* A record whose recorded result was changed no longer replays. */
    take_args(&a, "A", false, NULL);
    fx_exec(f, "ticket.take", HALL_ROLE_KIOSK, "K1", t0 + 400 * 37000LL, &a, &e);
    uint8_t *p = f->log.p + f->offsets[f->n - 1];
    size_t len = ((size_t)p[0] << 24) | ((size_t)p[1] << 16) | ((size_t)p[2] << 8) | p[3];
    uint8_t *num = memmem(p + 4, len, "A0", 2);
    assert_non_null(num);
    num[3] ^= 1; /* A0xx -> another number */
    assert_int_equal(mdb_txn_begin(g->st.env, NULL, 0, &txn), 0);
    hall_batch_begin(g->h);
    int mdb_rc;
    assert_int_equal(hall_replay(g->h, txn, (uint64_t)f->n, f->times[f->n - 1], f->types[f->n - 1],
                                 HALL_ROLE_KIOSK, "K1", p + 4, len, &scratch, err, sizeof err,
                                 &mdb_rc),
                     -1);
    assert_non_null(strstr(err, "diverged"));
    mdb_txn_abort(txn);
    hall_batch_abort(g->h);
    num[3] ^= 1; /* back as it was: it replays again */
    assert_int_equal(mdb_txn_begin(g->st.env, NULL, 0, &txn), 0);
    hall_batch_begin(g->h);
    assert_int_equal(hall_replay(g->h, txn, (uint64_t)f->n, f->times[f->n - 1], f->types[f->n - 1],
                                 HALL_ROLE_KIOSK, "K1", p + 4, len, &scratch, err, sizeof err,
                                 &mdb_rc),
                     0);
    mdb_txn_abort(txn);
    hall_batch_abort(g->h);
    /* ... and one whose recorded events were changed does not. */
    uint8_t *w = memmem(p + 4, len, "\xa7waiting", 8);
    assert_non_null(w);
    assert_true(w[8] < 0x7f); /* a positive fixint */
    w[8]++;
    assert_int_equal(mdb_txn_begin(g->st.env, NULL, 0, &txn), 0);
    hall_batch_begin(g->h);
    assert_int_equal(hall_replay(g->h, txn, (uint64_t)f->n, f->times[f->n - 1], f->types[f->n - 1],
                                 HALL_ROLE_KIOSK, "K1", p + 4, len, &scratch, err, sizeof err,
                                 &mdb_rc),
                     -1);
    assert_non_null(strstr(err, "events differ"));
    mdb_txn_abort(txn);
    hall_batch_abort(g->h);
    /* An unknown record type (a newer version's) is refused clearly. */
    assert_int_equal(hall_replay(g->h, NULL, 9999, 0, 4000, 0, "x", p + 4, len, &scratch, err,
                                 sizeof err, &mdb_rc),
                     -1);
    assert_non_null(strstr(err, "unknown"));

    proto_buf_free(&scratch);
    proto_buf_free(&a);
    proto_buf_free(&f->log);
    proto_buf_free(&g->log);
    fx_close(f);
    fx_close(g);
    free(f);
    free(g);
}

/* The stored form: no raw token in its text, every token and only those
 * authenticate with the same role and id, the same salt gives the same
 * text and identity, another salt another; the parser takes the hashed
 * form and refuses a mixed or malformed one. */
static void test_config_stored_tokens(void **state)
{
    (void)state;
    size_t len;
    char *t = demo_text(&len), err[512];
    hall_config *c, *s, *s2, *s3, *again;
    uint8_t salt[HALL_TOKEN_SALT_LEN], other[HALL_TOKEN_SALT_LEN];
    memset(salt, 7, sizeof salt);
    memset(other, 8, sizeof other);
    assert_int_equal(hall_config_parse(t, len, "demo.yaml", &c, err, sizeof err), 0);
    assert_false(c->tokens_hashed);
    assert_true(hall_config_is_demo(c));
    assert_int_equal(hall_config_stored(c, salt, &s, err, sizeof err), 0);
    assert_true(s->tokens_hashed);
    assert_true(hall_config_is_demo(s));
    assert_memory_equal(s->token_salt, salt, sizeof salt);
    assert_int_equal(s->n_tokens, c->n_tokens);
    assert_int_equal(s->n_windows, c->n_windows);
    assert_string_equal(s->name, c->name);
    assert_string_equal(s->lines[0].name_zh, c->lines[0].name_zh);
    assert_null(strstr(s->text, "token:"));
    for (int i = 0; i < c->n_tokens; i++) {
        const char *tok = c->tokens[i].token;
        size_t n = strlen(tok);
        assert_null(strstr(s->text, tok));
        const hall_token *a = hall_config_token(s, tok, n);
        assert_non_null(a);
        assert_int_equal(a->role, c->tokens[i].role);
        assert_string_equal(a->id, c->tokens[i].id);
        assert_null(hall_config_token(s, tok, n - 1));
        char longer[160];
        snprintf(longer, sizeof longer, "%sx", tok);
        assert_null(hall_config_token(s, longer, n + 1));
    }
    assert_null(hall_config_token(s, "", 0));
    assert_null(hall_config_token(s, "not-a-token", 11));
    /* Identity: the same salt, the same text; another salt, another. */
    assert_int_equal(hall_config_stored(c, salt, &s2, err, sizeof err), 0);
    assert_int_equal(s2->text_len, s->text_len);
    assert_memory_equal(s2->sha, s->sha, sizeof s->sha);
    assert_int_equal(hall_config_stored(c, other, &s3, err, sizeof err), 0);
    assert_memory_not_equal(s3->sha, s->sha, sizeof s->sha);
    assert_null(hall_config_token(s3, "nope-nope", 9));
    assert_non_null(hall_config_token(s3, "admin-demo", 10));
    /* A stored config is its own stored form; a raw one has no identity. */
    assert_int_equal(hall_config_stored(s, other, &again, err, sizeof err), 0);
    assert_memory_equal(again->sha, s->sha, sizeof s->sha);
    uint8_t zero[32] = {0};
    assert_memory_equal(c->sha, zero, sizeof zero);
    /* The salt for a new record: the one in force, else from the hall id. */
    uint8_t got[HALL_TOKEN_SALT_LEN], got2[HALL_TOKEN_SALT_LEN];
    uint8_t key[32], key2[32];
    memset(key, 1, sizeof key);
    memset(key2, 2, sizeof key2);
    hall_config_salt(s, c, key, sizeof key, got);
    assert_memory_equal(got, salt, sizeof salt);
    hall_config_salt(NULL, c, NULL, 0, got);
    hall_config_salt(c, c, NULL, 0, got2);
    assert_memory_equal(got, got2, sizeof got);
    hall_config_salt(NULL, c, key, sizeof key, got2);
    assert_memory_not_equal(got, got2, sizeof got);
    hall_config_salt(NULL, c, key2, sizeof key2, got);
    assert_memory_not_equal(got, got2, sizeof got);
    /* The parser's checks of the hashed form. */
    char *mixed = malloc(s->text_len + 64);
    const char *first = strstr(s->text, "token_hash: ");
    assert_non_null(first);
    size_t pre = (size_t)(first - s->text);
    const char *q = strchr(first + 13, '"'); /* the hash's closing quote */
    assert_non_null(q);
    memcpy(mixed, s->text, pre);
    sprintf(mixed + pre, "token: plain-token-1%s", q + 1);
    hall_config *m = NULL;
    assert_int_equal(hall_config_parse(mixed, strlen(mixed), "m.yaml", &m, err, sizeof err), -1);
    assert_non_null(strstr(err, "every entry gives token, or every one token_hash"));
    memcpy(mixed, s->text, pre);
    sprintf(mixed + pre, "token_hash: \"b2:00:11\"%s", q + 1);
    assert_int_equal(hall_config_parse(mixed, strlen(mixed), "m.yaml", &m, err, sizeof err), -1);
    assert_non_null(strstr(err, "expected \"b2:SALT:HASH\""));
    free(mixed);
    hall_config_free(again);
    hall_config_free(s3);
    hall_config_free(s2);
    hall_config_free(s);
    hall_config_free(c);
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config_demo),
        cmocka_unit_test(test_config_errors),
        cmocka_unit_test(test_config_stored_tokens),
        cmocka_unit_test(test_calendar),
        cmocka_unit_test(test_ticket_numbering),
        cmocka_unit_test(test_idem),
        cmocka_unit_test(test_replay),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
