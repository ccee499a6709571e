/* tests/unit/test_proto.c: the frame decoder on every split point of a
 * stream, its errors, the body check on every kind of bad body, and the
 * envelope and args readers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "proto/proto.h"

#include <stdlib.h>
#include <string.h>

#define MAXF 4096

/* A stream of frames of varied sizes: 1 byte, small, max_frame. */
static size_t build_stream(uint8_t *out, size_t *sizes, int *count)
{
    static const size_t lens[] = {1, 5, 300, MAXF, 2, 1000};
    size_t pos = 0;
    *count = 0;
    for (size_t i = 0; i < sizeof lens / sizeof *lens; i++) {
        size_t n = lens[i];
        out[pos] = (uint8_t)(n >> 24);
        out[pos + 1] = (uint8_t)(n >> 16);
        out[pos + 2] = (uint8_t)(n >> 8);
        out[pos + 3] = (uint8_t)n;
        for (size_t j = 0; j < n; j++)
            out[pos + 4 + j] = (uint8_t)(i * 31 + j);
        sizes[(*count)++] = n;
        pos += 4 + n;
    }
    return pos;
}

/* Feeds the stream in pieces of the given cut points and checks every
 * frame comes out whole and in order. */
static void feed_and_check(const uint8_t *s, size_t len, const size_t *cuts, int ncuts,
                           const size_t *sizes, int count)
{
    proto_framer f;
    proto_framer_init(&f, MAXF);
    int got = 0;
    size_t pos = 0, pos_in_stream = 0;
    for (int c = 0; c <= ncuts; c++) {
        size_t end = c < ncuts ? cuts[c] : len;
        while (pos < end) {
            size_t room;
            uint8_t *p = proto_framer_space(&f, &room);
            assert_non_null(p);
            if (room == 0) {
                /* A whole frame waits: consume before reading more. */
                const uint8_t *body;
                uint32_t n;
                assert_int_equal(proto_framer_next(&f, &body, &n), PROTO_FRAME_READY);
                assert_int_equal(n, sizes[got]);
                assert_memory_equal(body, s + pos_in_stream + 4, n);
                pos_in_stream += 4 + n;
                got++;
                continue;
            }
            size_t k = end - pos < room ? end - pos : room;
            memcpy(p, s + pos, k);
            proto_framer_commit(&f, k);
            pos += k;
            assert_true(f.cap <= 4 + MAXF);
        }
        const uint8_t *body;
        uint32_t n;
        int rc;
        while ((rc = proto_framer_next(&f, &body, &n)) == PROTO_FRAME_READY) {
            assert_true(got < count);
            assert_int_equal(n, sizes[got]);
            assert_memory_equal(body, s + pos_in_stream + 4, n);
            pos_in_stream += 4 + n;
            got++;
        }
        assert_int_equal(rc, PROTO_FRAME_NEED);
    }
    assert_int_equal(got, count);
    assert_int_equal(proto_framer_buffered(&f), 0);
    proto_framer_shrink(&f);
    assert_null(f.buf);
    proto_framer_free(&f);
}

static void test_every_split_point(void **state)
{
    (void)state;
    static uint8_t s[6 * (MAXF + 4)];
    size_t sizes[8];
    int count;
    size_t len = build_stream(s, sizes, &count);
    for (size_t cut = 0; cut <= len; cut++)
        feed_and_check(s, len, &cut, 1, sizes, count);
    /* All at once, and one byte at a time. */
    feed_and_check(s, len, NULL, 0, sizes, count);
    size_t *every = malloc(len * sizeof *every);
    for (size_t i = 0; i < len; i++)
        every[i] = i;
    feed_and_check(s, len, every, (int)len, sizes, count);
    free(every);
}

static void test_frame_errors(void **state)
{
    (void)state;
    proto_framer f;
    const uint8_t *body;
    uint32_t n;
    proto_framer_init(&f, MAXF);
    assert_int_equal(proto_framer_feed(&f, (const uint8_t *)"\0\0\0", 3), 3);
    assert_int_equal(proto_framer_next(&f, &body, &n), PROTO_FRAME_NEED);
    assert_int_equal(proto_framer_feed(&f, (const uint8_t *)"\0", 1), 1);
    assert_int_equal(proto_framer_next(&f, &body, &n), PROTO_FRAME_EZERO);
    proto_framer_free(&f);

    /* max_frame + 1: refused as soon as the 4 length bytes are in, with
     * nothing more buffered. */
    proto_framer_init(&f, MAXF);
    uint8_t big[4] = {0, 0, (MAXF + 1) >> 8, (MAXF + 1) & 0xff};
    proto_framer_feed(&f, big, 4);
    assert_int_equal(proto_framer_next(&f, &body, &n), PROTO_FRAME_EBIG);
    size_t room;
    proto_framer_space(&f, &room);
    assert_int_equal(room, 0);
    assert_true(f.cap <= 4096);
    proto_framer_free(&f);

    /* Exactly max_frame is fine. */
    proto_framer_init(&f, MAXF);
    uint8_t hdr[4] = {0, 0, MAXF >> 8, MAXF & 0xff};
    proto_framer_feed(&f, hdr, 4);
    static uint8_t zeros[MAXF];
    assert_int_equal(proto_framer_feed(&f, zeros, MAXF), MAXF);
    assert_int_equal(proto_framer_next(&f, &body, &n), PROTO_FRAME_READY);
    assert_int_equal(n, MAXF);
    proto_framer_free(&f);
}

static proto_err check(const void *p, size_t n, proto_error *e)
{
    memset(e, 0, sizeof *e);
    return proto_body_check(p, n, e);
}

static void expect_bad(const void *p, size_t n, const char *needle)
{
    proto_error e;
    assert_int_equal(check(p, n, &e), PROTO_E_BAD_FRAME);
    if (!strstr(e.msg, needle))
        fail_msg("message '%s' lacks '%s'", e.msg, needle);
}

static void test_body_check(void **state)
{
    (void)state;
    proto_error e;
    /* Good: {} and {"a": [1, -1, 1.5, nil, true, "s", bin, ext]} */
    assert_int_equal(check("\x80", 1, &e), PROTO_OK);
    static const uint8_t good[] = {0x81, 0xa1, 'a',  0x9a, 0x01, 0xff, 0xcb, 0x3f, 0xf8, 0,    0,
                                   0,    0,    0,    0,    0xc0, 0xc3, 0xa1, 's',  0xc4, 0x02, 1,
                                   2,    0xd4, 0x01, 0x07, 0xcd, 0x01, 0x00, 0xd9, 0x01, 'x'};
    assert_int_equal(check(good, sizeof good, &e), PROTO_OK);

    expect_bad("", 0, "empty");
    expect_bad("\x93\x01\x02\x03", 4, "not a map");
    expect_bad("\x05", 1, "not a map");
    expect_bad("\xa3"
               "abc",
               4, "not a map");
    expect_bad("\x80\x00", 2, "trailing");
    expect_bad("\x82\xa2id\x01\xa2op", 8, "truncated");
    expect_bad("\x81\x01\x02", 3, "not a string");
    expect_bad("\x81\xa1"
               "a\xdb\x00\x00\x0f\xa0"
               "abc",
               11, "string length 4000");
    expect_bad("\x81\xa1"
               "a\xdd\x7f\xff\xff\xff",
               8, "array of 2147483647");
    expect_bad("\xdf\xff\xff\xff\xff", 5, "map of 4294967295");
    expect_bad("\x81\xa1"
               "a\xc1",
               4, "invalid byte");
    expect_bad("\x81\xa1"
               "a\xc6\x00\x01\x00\x00",
               8, "runs past");

    /* Nesting: 16 levels pass, 17 do not. */
    uint8_t deep[64];
    for (int levels = 16; levels <= 17; levels++) {
        size_t n = 0;
        for (int i = 0; i < levels; i++) {
            deep[n++] = 0x81;
            deep[n++] = 0xa1;
            deep[n++] = 'k';
        }
        deep[n++] = 0x01;
        assert_int_equal(check(deep, n, &e), levels == 16 ? PROTO_OK : PROTO_E_BAD_FRAME);
    }
}

static void test_envelope_and_args(void **state)
{
    (void)state;
    msgpack_zone z;
    msgpack_zone_init(&z, 1024);
    proto_request r;
    proto_error e;
    proto_buf b;
    msgpack_packer pk;
    proto_buf_init(&b);
    proto_packer_init(&pk, &b);
    msgpack_pack_map(&pk, 3);
    proto_pack_kv_uint(&pk, "id", 42);
    proto_pack_kv_str(&pk, "op", "ticket.take");
    proto_pack_str(&pk, "args");
    msgpack_pack_map(&pk, 3);
    proto_pack_kv_str(&pk, "line", "A");
    proto_pack_kv_uint(&pk, "n", 5);
    proto_pack_kv_bool(&pk, "priority", true);
    assert_int_equal(proto_request_decode(&z, b.p, b.len, &r, &e), PROTO_OK);
    assert_int_equal(r.id, 42);
    assert_true(proto_op_is(&r, "ticket.take"));
    const char *s;
    uint32_t sl;
    uint64_t u;
    bool bv, present;
    assert_int_equal(proto_arg_str(r.args, "line", true, &s, &sl, &e), PROTO_OK);
    assert_int_equal(sl, 1);
    assert_int_equal(proto_arg_str(r.args, "missing", false, &s, &sl, &e), PROTO_OK);
    assert_null(s);
    assert_int_equal(proto_arg_str(r.args, "missing", true, &s, &sl, &e), PROTO_E_BAD_REQUEST);
    assert_string_equal(e.msg, "args.missing: missing");
    assert_int_equal(proto_arg_str(r.args, "n", true, &s, &sl, &e), PROTO_E_BAD_REQUEST);
    assert_string_equal(e.msg, "args.n: expected string");
    assert_int_equal(proto_arg_uint(r.args, "line", true, &u, &present, &e), PROTO_E_BAD_REQUEST);
    assert_string_equal(e.msg, "args.line: expected unsigned integer");
    assert_int_equal(proto_arg_bool(r.args, "priority", true, &bv, &present, &e), PROTO_OK);
    assert_true(bv && present);
    assert_int_equal(proto_arg_bool(r.args, "n", true, &bv, &present, &e), PROTO_E_BAD_REQUEST);
    const msgpack_object *o;
    assert_int_equal(proto_arg_map(r.args, "line", true, &o, &e), PROTO_E_BAD_REQUEST);
    assert_int_equal(proto_arg_array(r.args, "line", true, &o, &e), PROTO_E_BAD_REQUEST);

    /* Envelope errors name the field. */
    struct {
        const char *body;
        size_t n;
        const char *msg;
    } bad[] = {
#define B(s) s, sizeof(s) - 1
        {B("\x81\xa2op\xa4ping"), "id: missing"},
        {B("\x82\xa2id\xa1x\xa2op\xa4ping"), "id: expected unsigned integer"},
        {B("\x82\xa2id\xff\xa2op\xa4ping"), "id: expected unsigned integer"},
        {B("\x81\xa2id\x01"), "op: missing"},
        {B("\x82\xa2id\x01\xa2op\x07"), "op: expected string"},
        {B("\x83\xa2id\x01\xa2op\xa4ping\xa4"
           "args\x90"),
         "args: expected map"},
#undef B
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        memset(&e, 0, sizeof e);
        assert_int_equal(proto_request_decode(&z, (const uint8_t *)bad[i].body, bad[i].n, &r, &e),
                         PROTO_E_BAD_REQUEST);
        assert_string_equal(e.msg, bad[i].msg);
    }
    proto_buf_free(&b);
    msgpack_zone_destroy(&z);
}

static void test_error_table_and_responses(void **state)
{
    (void)state;
    for (int i = 1; i < PROTO_E__COUNT; i++) {
        const char *n = proto_err_name((proto_err)i);
        assert_int_equal(proto_err_from_name(n, strlen(n)), i);
    }
    assert_int_equal(proto_err_from_name("nope", 4), -1);
    assert_string_equal(proto_err_name(PROTO_E_CHECKLIST), "checklist");
    assert_true(proto_err_closes(PROTO_E_BAD_FRAME));
    assert_true(proto_err_closes(PROTO_E_UNAUTHENTICATED));
    assert_false(proto_err_closes(PROTO_E_LIMIT));

    proto_buf b;
    proto_buf_init(&b);
    proto_write_error(&b, 9, PROTO_E_NOT_FOUND, "args.line: no line 'Z'");
    uint32_t n = (uint32_t)b.p[0] << 24 | (uint32_t)b.p[1] << 16 | (uint32_t)b.p[2] << 8 | b.p[3];
    assert_int_equal(n, b.len - 4);
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    assert_int_equal(msgpack_unpack_next(&u, (const char *)b.p + 4, n, &off),
                     MSGPACK_UNPACK_SUCCESS);
    const msgpack_object *err = proto_map_get(&u.data, "error");
    const msgpack_object *code = proto_map_get(err, "code");
    assert_int_equal(code->via.str.size, 9);
    assert_memory_equal(code->via.str.ptr, "not_found", 9);
    assert_int_equal(proto_map_get(&u.data, "id")->via.u64, 9);
    assert_false(proto_map_get(&u.data, "ok")->via.boolean);
    msgpack_unpacked_destroy(&u);
    proto_buf_free(&b);
}

/* The HTTP face's status for every code (PROTOCOL.md 1.2), `internal`
 * included: no request reaches a 500 end to end on purpose. */
static void test_http_status(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        int status;
    } want[] = {
        {"ok", 200},        {"bad_frame", 400}, {"bad_request", 400}, {"unauthenticated", 401},
        {"forbidden", 403}, {"not_found", 404}, {"unknown_op", 404},  {"conflict", 409},
        {"checklist", 409}, {"limit", 429},     {"unavailable", 503}, {"internal", 500}};
    int seen = 0;
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        int e = strcmp(want[i].name, "ok") == 0
                    ? PROTO_OK
                    : proto_err_from_name(want[i].name, strlen(want[i].name));
        assert_true(e >= 0);
        assert_int_equal(proto_err_http_status((proto_err)e), want[i].status);
        seen++;
    }
    assert_int_equal(seen, PROTO_E__COUNT); /* every code of PROTO_ERR_MAP, and ok */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_http_status),       cmocka_unit_test(test_every_split_point),
        cmocka_unit_test(test_frame_errors),      cmocka_unit_test(test_body_check),
        cmocka_unit_test(test_envelope_and_args), cmocka_unit_test(test_error_table_and_responses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
