/* tests/unit/test_msg.c: bodies, envelopes, args, responses and error
 * codes (proto/msg.c, proto/buf.c, proto/errors.c).
 *
 * Every bad body the check refuses has a test naming its message, so a
 * removed check fails here. A body using every MessagePack format must
 * pass the check and unpack in msgpack-c to the same values, every
 * truncation of it must fail, and random mutations of it must never pass
 * the check and then be refused or misread by msgpack-c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "proto/proto.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#define B(lit) (const uint8_t *)(lit), sizeof(lit) - 1

static proto_err check(const uint8_t *p, size_t n, proto_error *e)
{
    memset(e, 0, sizeof *e);
    /* A heap copy of exactly n bytes: under ASan any look past the end
     * is caught. */
    uint8_t *copy = malloc(n ? n : 1);
    assert_non_null(copy);
    if (n)
        memcpy(copy, p, n);
    proto_err rc = proto_body_check(copy, n, e);
    free(copy);
    return rc;
}

static void expect_bad(const uint8_t *p, size_t n, const char *msg)
{
    proto_error e;
    assert_int_equal(check(p, n, &e), PROTO_E_BAD_FRAME);
    assert_int_equal(e.code, PROTO_E_BAD_FRAME);
    assert_string_equal(e.msg, msg);
}

static void expect_ok(const uint8_t *p, size_t n)
{
    proto_error e;
    proto_err rc = check(p, n, &e);
    if (rc != PROTO_OK)
        fail_msg("refused a good body: %s", e.msg);
}

/* ---- a body with every format ---- */

/* {"a": array32 of every value format, "b" (str8): 1, "c" (str16): 2,
 *  "d" (str32): 3}: non-minimal encodings on purpose, so each format byte
 * appears. */
/* clang-format off */
static const uint8_t all_formats[] = {
    0x84,                                         /* fixmap of 4 */
    0xa1, 'a',                                    /* fixstr key */
    0xdd, 0, 0, 0, 43,                            /* array 32 of 43 */
    0x05, 0xe0,                                   /* fixint +5, -32 */
    0xc0, 0xc2, 0xc3,                             /* nil false true */
    0xcc, 0xff,                                   /* uint 8 */
    0xcd, 0x01, 0x00,                             /* uint 16 */
    0xce, 0, 1, 0, 0,                             /* uint 32 */
    0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, /* uint 64 */
    0xd0, 0x80,                                   /* int 8 */
    0xd1, 0xff, 0x00,                             /* int 16 */
    0xd2, 0xff, 0xff, 0xff, 0x00,                 /* int 32 */
    0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0,              /* int 64 */
    0xca, 0x3f, 0xc0, 0, 0,                       /* float 32 1.5 */
    0xcb, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0,           /* float 64 1.5 */
    0xa3, 'a', 'b', 'c',                          /* fixstr */
    0xd9, 3, 'a', 'b', 'c',                       /* str 8 */
    0xda, 0, 3, 'a', 'b', 'c',                    /* str 16 */
    0xdb, 0, 0, 0, 3, 'a', 'b', 'c',              /* str 32 */
    0xa0,                                         /* "" */
    0xc4, 2, 1, 2,                                /* bin 8 */
    0xc5, 0, 2, 1, 2,                             /* bin 16 */
    0xc6, 0, 0, 0, 2, 1, 2,                       /* bin 32 */
    0xc7, 2, 9, 1, 2,                             /* ext 8: len, type, data */
    0xc8, 0, 2, 9, 1, 2,                          /* ext 16 */
    0xc9, 0, 0, 0, 2, 9, 1, 2,                    /* ext 32 */
    0xd4, 9, 1,                                   /* fixext 1 */
    0xd5, 9, 1, 2,                                /* fixext 2 */
    0xd6, 9, 1, 2, 3, 4,                          /* fixext 4 */
    0xd7, 9, 1, 2, 3, 4, 5, 6, 7, 8,              /* fixext 8 */
    0xd8, 9, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, /* fixext 16 */
    0x92, 1, 2,                                   /* fixarray */
    0xdc, 0, 1, 1,                                /* array 16 */
    0xdd, 0, 0, 0, 1, 1,                          /* array 32 */
    0x81, 0xa1, 'k', 1,                           /* fixmap */
    0xde, 0, 1, 0xa1, 'k', 1,                     /* map 16 */
    0xdf, 0, 0, 0, 1, 0xa1, 'k', 1,               /* map 32 */
    0x90, 0x80,                                   /* [] {} */
    0xc4, 0,                                      /* empty bin */
    0xd9, 0,                                      /* empty str 8 */
    0x91, 0x91, 0x81, 0xa1, 'x', 0x90,            /* [[{"x": []}]] */
    0x7f,                                         /* fixint 127 */
    0xd9, 1, 'b', 1,                              /* "b": 1 */
    0xda, 0, 1, 'c', 2,                           /* "c": 2 */
    0xdb, 0, 0, 0, 1, 'd', 3,                     /* "d": 3 */
};
/* clang-format on */

static void test_all_formats(void **state)
{
    (void)state;
    expect_ok(all_formats, sizeof all_formats);

    /* msgpack-c reads the same structure from it. */
    msgpack_zone z;
    msgpack_zone_init(&z, 1024);
    msgpack_object o;
    size_t off = 0;
    assert_int_equal(msgpack_unpack((const char *)all_formats, sizeof all_formats, &off, &z, &o),
                     MSGPACK_UNPACK_SUCCESS);
    assert_int_equal(off, sizeof all_formats);
    assert_int_equal(o.type, MSGPACK_OBJECT_MAP);
    assert_int_equal(o.via.map.size, 4);
    const msgpack_object *a = proto_map_get(&o, "a");
    assert_non_null(a);
    assert_int_equal(a->type, MSGPACK_OBJECT_ARRAY);
    assert_int_equal(a->via.array.size, 43);
    static const msgpack_object_type types[43] = {
        MSGPACK_OBJECT_POSITIVE_INTEGER,
        MSGPACK_OBJECT_NEGATIVE_INTEGER,
        MSGPACK_OBJECT_NIL,
        MSGPACK_OBJECT_BOOLEAN,
        MSGPACK_OBJECT_BOOLEAN,
        MSGPACK_OBJECT_POSITIVE_INTEGER,
        MSGPACK_OBJECT_POSITIVE_INTEGER,
        MSGPACK_OBJECT_POSITIVE_INTEGER,
        MSGPACK_OBJECT_POSITIVE_INTEGER,
        MSGPACK_OBJECT_NEGATIVE_INTEGER,
        MSGPACK_OBJECT_NEGATIVE_INTEGER,
        MSGPACK_OBJECT_NEGATIVE_INTEGER,
        MSGPACK_OBJECT_NEGATIVE_INTEGER,
        MSGPACK_OBJECT_FLOAT32,
        MSGPACK_OBJECT_FLOAT64,
        MSGPACK_OBJECT_STR,
        MSGPACK_OBJECT_STR,
        MSGPACK_OBJECT_STR,
        MSGPACK_OBJECT_STR,
        MSGPACK_OBJECT_STR,
        MSGPACK_OBJECT_BIN,
        MSGPACK_OBJECT_BIN,
        MSGPACK_OBJECT_BIN,
        MSGPACK_OBJECT_EXT,
        MSGPACK_OBJECT_EXT,
        MSGPACK_OBJECT_EXT,
        MSGPACK_OBJECT_EXT,
        MSGPACK_OBJECT_EXT,
        MSGPACK_OBJECT_EXT,
        MSGPACK_OBJECT_EXT,
        MSGPACK_OBJECT_EXT,
        MSGPACK_OBJECT_ARRAY,
        MSGPACK_OBJECT_ARRAY,
        MSGPACK_OBJECT_ARRAY,
        MSGPACK_OBJECT_MAP,
        MSGPACK_OBJECT_MAP,
        MSGPACK_OBJECT_MAP,
        MSGPACK_OBJECT_ARRAY,
        MSGPACK_OBJECT_MAP,
        MSGPACK_OBJECT_BIN,
        MSGPACK_OBJECT_STR,
        MSGPACK_OBJECT_ARRAY,
        MSGPACK_OBJECT_POSITIVE_INTEGER,
    };
    for (int i = 0; i < 43; i++)
        assert_int_equal(a->via.array.ptr[i].type, types[i]);
    assert_int_equal(a->via.array.ptr[8].via.u64, UINT64_MAX);
    assert_int_equal(a->via.array.ptr[42].via.u64, 127);
    assert_int_equal(a->via.array.ptr[30].via.ext.size, 16);
    assert_int_equal(proto_map_get(&o, "d")->via.u64, 3);
    msgpack_zone_destroy(&z);

    /* Cut anywhere, it is refused; with any byte after it, too. */
    for (size_t n = 0; n < sizeof all_formats; n++) {
        proto_error e;
        assert_int_equal(check(all_formats, n, &e), PROTO_E_BAD_FRAME);
    }
    uint8_t longer[sizeof all_formats + 1];
    memcpy(longer, all_formats, sizeof all_formats);
    for (int b = 0; b < 256; b++) {
        longer[sizeof all_formats] = (uint8_t)b;
        expect_bad(longer, sizeof longer, "body: trailing bytes after the map (1)");
    }
}

/* Random mutations (fixed seed): whatever the check passes, msgpack-c
 * must unpack as exactly one map. */
static void test_mutations_agree_with_msgpack(void **state)
{
    (void)state;
    uint32_t seed = 7;
    uint8_t buf[sizeof all_formats + 8];
    int passed = 0;
    for (int round = 0; round < 50000; round++) {
        size_t n = sizeof all_formats;
        memcpy(buf, all_formats, n);
        int edits = 1 + round % 3;
        for (int i = 0; i < edits; i++) {
            seed = seed * 1103515245u + 12345u;
            size_t at = (seed >> 8) % n;
            seed = seed * 1103515245u + 12345u;
            uint8_t v = (uint8_t)(seed >> 16);
            switch (round % 4) {
            case 0:
                buf[at] = v;
                break;
            case 1:
                buf[at] ^= (uint8_t)(1u << (v % 8));
                break;
            case 2:
                n = at + 1;
                break;
            default:
                if (n < sizeof buf) {
                    memmove(buf + at + 1, buf + at, n - at);
                    buf[at] = v;
                    n++;
                }
            }
        }
        proto_error e;
        if (check(buf, n, &e) != PROTO_OK)
            continue;
        passed++;
        msgpack_zone z;
        msgpack_zone_init(&z, 256);
        msgpack_object o;
        size_t off = 0;
        assert_int_equal(msgpack_unpack((const char *)buf, n, &off, &z, &o),
                         MSGPACK_UNPACK_SUCCESS);
        assert_int_equal(off, n);
        assert_int_equal(o.type, MSGPACK_OBJECT_MAP);
        msgpack_zone_destroy(&z);
    }
    assert_true(passed > 1000); /* the mutations do reach msgpack-c */
}

/* ---- bad bodies, one test per check ---- */

static void test_body_empty_and_not_a_map(void **state)
{
    (void)state;
    expect_bad(NULL, 0, "body: empty");
    expect_bad(B("\x92\x01\x02"),
               "body: not a map (a frame's body is one MessagePack map)"); /* array */
    expect_bad(B("\xdc\x00\x00"),
               "body: not a map (a frame's body is one MessagePack map)");            /* array 16 */
    expect_bad(B("\x05"), "body: not a map (a frame's body is one MessagePack map)"); /* fixint */
    expect_bad(B("\xcd\x01\x00"),
               "body: not a map (a frame's body is one MessagePack map)"); /* uint 16 */
    expect_bad(B("\xa3"
                 "abc"),
               "body: not a map (a frame's body is one MessagePack map)"); /* str */
    expect_bad(B("\xc0"), "body: not a map (a frame's body is one MessagePack map)");
    expect_bad(B("\xc1"), "body: invalid byte 0xc1 at byte 0");
    expect_ok(B("\x80"));
    expect_ok(B("\xde\x00\x00"));
    expect_ok(B("\xdf\x00\x00\x00\x00"));
}

static void test_body_trailing(void **state)
{
    (void)state;
    expect_bad(B("\x80\x00"), "body: trailing bytes after the map (1)");
    expect_bad(B("\x80\x80"), "body: trailing bytes after the map (1)");
    expect_bad(B("\x81\xa1"
                 "a\x01\xc0\xc0\xc0"),
               "body: trailing bytes after the map (3)");
}

static void test_body_truncated(void **state)
{
    (void)state;
    /* A map missing its last value. */
    expect_bad(B("\x82\xa2id\x01\xa2op"), "body: truncated at byte 8");
    /* A header cut short. */
    expect_bad(B("\xde\x00"), "body: truncated at byte 0");
    expect_bad(B("\x81\xa1"
                 "a\xcd\x01"),
               "body: truncated at byte 3");
    expect_bad(B("\x81\xa1"
                 "a\xcb\x3f\xf8\x00"),
               "body: truncated at byte 3");
    expect_bad(B("\x81\xa1"
                 "a\xd8\x01\x02"),
               "body: truncated at byte 3"); /* fixext 16 */
    expect_bad(B("\x81\xa1"
                 "a\xc7\x05"),
               "body: truncated at byte 3"); /* ext 8 without its type */
    /* A count the remaining bytes cannot hold. */
    expect_bad(B("\x83\xa1"
                 "a\x01"),
               "body: map of 3 entries runs past the frame");
    expect_bad(B("\x81\xa1"
                 "a\x93\x01\x02"),
               "body: array of 3 elements runs past the frame");
    expect_bad(B("\xdf\xff\xff\xff\xff"), "body: map of 4294967295 entries runs past the frame");
    /* Lengths past the frame. */
    expect_bad(B("\x81\xa1"
                 "a\xa5"
                 "abcd"),
               "body: string length 5 runs past the frame");
    expect_bad(B("\x81\xa1"
                 "a\xc6\x00\x01\x00\x00"),
               "body: bin length 65536 runs past the frame");
    expect_bad(B("\x81\xa1"
                 "a\xc8\x00\x10\x01\x00"),
               "body: ext length 16 runs past the frame");
    /* A key's length, too. */
    expect_bad(B("\x81\xd9\x09k\x01"), "body: string length 9 runs past the frame");
}

/* A str32 claiming 4000 bytes in an 11-byte body. */
static void test_body_str32_past_frame(void **state)
{
    (void)state;
    expect_bad(B("\x81\xa1"
                 "a\xdb\x00\x00\x0f\xa0"
                 "abc"),
               "body: string length 4000 runs past the frame");
    expect_bad(B("\x81\xa1"
                 "a\xdb\xff\xff\xff\xff"
                 "abc"),
               "body: string length 4294967295 runs past the frame");
}

static size_t zone_free_bytes(const msgpack_zone *z)
{
    return z->chunk_list.free;
}

/* An array claiming 2^31 elements in a 10-byte body: refused by its count
 * before msgpack-c could allocate 2^31 objects, and fast. */
static void test_body_huge_count(void **state)
{
    (void)state;
    static const uint8_t body[] = {0x81, 0xa1, 'a', 0xdd, 0x80, 0, 0, 0, 0x01, 0x02};
    assert_int_equal(sizeof body, 10);
    expect_bad(body, sizeof body, "body: array of 2147483648 elements runs past the frame");

    msgpack_zone z;
    msgpack_zone_init(&z, 256);
    size_t before = zone_free_bytes(&z);
    proto_request r;
    proto_error e;
    clock_t t0 = clock();
    for (int i = 0; i < 1000; i++)
        assert_int_equal(proto_request_decode(&z, body, sizeof body, &r, &e), PROTO_E_BAD_FRAME);
    double secs = (double)(clock() - t0) / CLOCKS_PER_SEC;
    assert_true(secs < 1.0);
    assert_string_equal(e.msg, "body: array of 2147483648 elements runs past the frame");
    assert_int_equal(zone_free_bytes(&z), before); /* nothing taken from the zone */
    msgpack_zone_destroy(&z);

    /* map 32 in an array, and map 16: 2 bytes per entry are needed. */
    expect_bad(B("\x81\xa1"
                 "a\x91\xdf\x80\x00\x00\x00\x01"),
               "body: map of 2147483648 entries runs past the frame");
    expect_bad(B("\x81\xa1"
                 "a\xde\x00\x02\xa1k\x01"),
               "body: map of 2 entries runs past the frame");
    expect_bad(B("\x81\xa1"
                 "a\xdc\xff\xff\x01"),
               "body: array of 65535 elements runs past the frame");
}

/* Nests `levels` containers: maps {"k": ...}, or arrays below a top map;
 * the innermost holds 1, or is empty when `empty`. */
static size_t nest(uint8_t *out, int levels, bool arrays, bool empty)
{
    size_t n = 0;
    for (int i = 0; i < levels; i++) {
        bool last = i == levels - 1;
        if (arrays && i > 0) {
            out[n++] = last && empty ? 0x90 : 0x91;
        } else {
            out[n++] = last && empty ? 0x80 : 0x81;
            if (!(last && empty)) {
                out[n++] = 0xa1;
                out[n++] = 'k';
            }
        }
    }
    if (!empty)
        out[n++] = 0x01;
    return n;
}

static void test_body_depth(void **state)
{
    (void)state;
    uint8_t buf[128];
    for (int arrays = 0; arrays <= 1; arrays++) {
        for (int empty = 0; empty <= 1; empty++) {
            size_t n = nest(buf, PROTO_MAX_DEPTH, arrays, empty);
            expect_ok(buf, n);
            n = nest(buf, PROTO_MAX_DEPTH + 1, arrays, empty);
            expect_bad(buf, n, "body: nesting deeper than 16");
        }
    }
    /* Depth comes back down: 16 levels twice in a row are fine. */
    size_t n = 0;
    buf[n++] = 0x82;
    for (int i = 0; i < 2; i++) {
        buf[n++] = 0xa1;
        buf[n++] = (uint8_t)('a' + i);
        for (int d = 0; d < PROTO_MAX_DEPTH - 1; d++)
            buf[n++] = 0x91;
        buf[n++] = 0x01;
    }
    expect_ok(buf, n);
}

static void test_body_keys(void **state)
{
    (void)state;
    expect_bad(B("\x81\x01\x02"), "body: map key at byte 1 is not a string");
    /* The second key, after a good pair. */
    expect_bad(B("\x82\xa1"
                 "a\x01\x02\x03"),
               "body: map key at byte 4 is not a string");
    /* bin is not a string. */
    expect_bad(B("\x81\xc4\x01"
                 "a\x01"),
               "body: map key at byte 1 is not a string");
    /* A map key that is itself a map or nil. */
    expect_bad(B("\x81\x80\x01"), "body: map key at byte 1 is not a string");
    expect_bad(B("\x81\xc0\x01"), "body: map key at byte 1 is not a string");
    /* Keys at any depth: a map in an array in a map. */
    expect_bad(B("\x81\xa1"
                 "a\x92\x01\x81\x05\x06"),
               "body: map key at byte 6 is not a string");
    /* Values of any type are fine, arrays may hold anything. */
    expect_ok(B("\x81\xa1"
                "a\x92\x01\x81\xa0\x06"));
}

/* ---- envelopes ---- */

static proto_err decode(msgpack_zone *z, const uint8_t *p, size_t n, proto_request *r,
                        proto_error *e)
{
    memset(e, 0, sizeof *e);
    msgpack_zone_clear(z);
    return proto_request_decode(z, p, n, r, e);
}

static void test_envelope_good(void **state)
{
    (void)state;
    msgpack_zone z;
    msgpack_zone_init(&z, 1024);
    proto_request r;
    proto_error e;

    assert_int_equal(decode(&z,
                            B("\x83\xa2id\x2a\xa2op\xabticket.take\xa4"
                              "args\x81\xa4line\xa1"
                              "A"),
                            &r, &e),
                     PROTO_OK);
    assert_int_equal(r.id, 42);
    assert_int_equal(r.op_len, 11);
    assert_true(proto_op_is(&r, "ticket.take"));
    assert_false(proto_op_is(&r, "ticket"));
    assert_false(proto_op_is(&r, "ticket.take2"));
    assert_non_null(r.args);
    assert_int_equal(r.args->type, MSGPACK_OBJECT_MAP);
    /* Strings are not copied: op points into the body's bytes, so a
     * request lives only as long as its body (see proto.h). */
    static const uint8_t body[] = "\x82\xa2id\x01\xa2op\xa4ping";
    assert_int_equal(decode(&z, body, sizeof body - 1, &r, &e), PROTO_OK);
    assert_ptr_equal(r.op, (const char *)body + 9);

    /* No args, nil args: absent. Keys in any order, unknown keys ignored. */
    assert_int_equal(decode(&z, B("\x82\xa2op\xa4ping\xa2id\x00"), &r, &e), PROTO_OK);
    assert_int_equal(r.id, 0);
    assert_null(r.args);
    assert_int_equal(decode(&z,
                            B("\x84\xa1x\x90\xa2id\x01\xa2op\xa4ping\xa4"
                              "args\xc0"),
                            &r, &e),
                     PROTO_OK);
    assert_null(r.args);
    assert_true(proto_op_is(&r, "ping"));

    /* Every unsigned width, up to 2^64 - 1. */
    assert_int_equal(decode(&z, B("\x82\xa2id\xcc\xff\xa2op\xa1x"), &r, &e), PROTO_OK);
    assert_int_equal(r.id, 255);
    assert_int_equal(
        decode(&z, B("\x82\xa2id\xcf\xff\xff\xff\xff\xff\xff\xff\xff\xa2op\xa1x"), &r, &e),
        PROTO_OK);
    assert_int_equal(r.id, UINT64_MAX);
    /* A non-negative int64 is an unsigned integer to msgpack-c. */
    assert_int_equal(
        decode(&z, B("\x82\xa2id\xd3\x00\x00\x00\x00\x00\x00\x00\x07\xa2op\xa1x"), &r, &e),
        PROTO_OK);
    assert_int_equal(r.id, 7);

    /* An empty op is read; the daemon answers unknown_op. */
    assert_int_equal(decode(&z, B("\x82\xa2id\x01\xa2op\xa0"), &r, &e), PROTO_OK);
    assert_int_equal(r.op_len, 0);
    assert_non_null(r.op);
    assert_true(proto_op_is(&r, ""));
    assert_false(proto_op_is(&r, "ping"));
    msgpack_zone_destroy(&z);
}

static void test_envelope_bad(void **state)
{
    (void)state;
    msgpack_zone z;
    msgpack_zone_init(&z, 1024);
    proto_request r;
    proto_error e;
    struct {
        const uint8_t *p;
        size_t n;
        const char *msg;
        uint64_t id; /* the id errors answer, 0 when it could not be read */
    } bad[] = {
        {B("\x81\xa2op\xa4ping"), "id: missing", 0},
        {B("\x82\xa2id\xa1x\xa2op\xa4ping"), "id: expected unsigned integer", 0},
        {B("\x82\xa2id\xff\xa2op\xa4ping"), "id: expected unsigned integer", 0},
        {B("\x82\xa2id\xd0\x80\xa2op\xa4ping"), "id: expected unsigned integer", 0},
        {B("\x82\xa2id\xcb\x3f\xf8\x00\x00\x00\x00\x00\x00\xa2op\xa4ping"),
         "id: expected unsigned integer", 0},
        {B("\x82\xa2id\xc0\xa2op\xa4ping"), "id: expected unsigned integer", 0},
        {B("\x82\xa2id\xc3\xa2op\xa4ping"), "id: expected unsigned integer", 0},
        {B("\x81\xa2id\x05"), "op: missing", 5},
        {B("\x82\xa2id\x05\xa2op\x07"), "op: expected string", 5},
        {B("\x82\xa2id\x05\xa2op\xc0"), "op: expected string", 5},
        {B("\x82\xa2id\x05\xa2op\xc4\x01x"), "op: expected string", 5},
        {B("\x83\xa2id\x05\xa2op\xa4ping\xa4"
           "args\x90"),
         "args: expected map", 5},
        {B("\x83\xa2id\x05\xa2op\xa4ping\xa4"
           "args\xa1x"),
         "args: expected map", 5},
        {B("\x83\xa2id\x05\xa2op\xa4ping\xa4"
           "args\x00"),
         "args: expected map", 5},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        r.id = 999;
        assert_int_equal(decode(&z, bad[i].p, bad[i].n, &r, &e), PROTO_E_BAD_REQUEST);
        assert_int_equal(e.code, PROTO_E_BAD_REQUEST);
        assert_string_equal(e.msg, bad[i].msg);
        assert_int_equal(r.id, bad[i].id);
    }
    /* A bad body is a bad frame, before any field is read. */
    assert_int_equal(decode(&z, B("\x82\xa2id\x05\xa2op\xa4ping\x00"), &r, &e), PROTO_E_BAD_FRAME);
    assert_string_equal(e.msg, "body: trailing bytes after the map (1)");
    assert_int_equal(r.id, 0);
    assert_int_equal(decode(&z, B("\x91\x01"), &r, &e), PROTO_E_BAD_FRAME);
    assert_string_equal(e.msg, "body: not a map (a frame's body is one MessagePack map)");
    assert_int_equal(decode(&z, NULL, 0, &r, &e), PROTO_E_BAD_FRAME);
    msgpack_zone_destroy(&z);
}

/* ---- args ---- */

typedef struct args_fixture {
    msgpack_zone z;
    proto_buf b;
    msgpack_object o;
} args_fixture;

/* {s: "hi", e: "", u: 7, big: 2^64-1, neg: -1, f: 1.5, b: true,
 *  m: {}, a: [1], n: nil} */
static void args_build(args_fixture *fx)
{
    msgpack_packer pk;
    proto_buf_init(&fx->b);
    proto_packer_init(&pk, &fx->b);
    msgpack_pack_map(&pk, 10);
    proto_pack_kv_str(&pk, "s", "hi");
    proto_pack_kv_str(&pk, "e", "");
    proto_pack_kv_uint(&pk, "u", 7);
    proto_pack_kv_uint(&pk, "big", UINT64_MAX);
    proto_pack_str(&pk, "neg");
    msgpack_pack_int64(&pk, -1);
    proto_pack_str(&pk, "f");
    msgpack_pack_double(&pk, 1.5);
    proto_pack_kv_bool(&pk, "b", true);
    proto_pack_str(&pk, "m");
    msgpack_pack_map(&pk, 0);
    proto_pack_str(&pk, "a");
    msgpack_pack_array(&pk, 1);
    msgpack_pack_uint8(&pk, 1);
    proto_pack_str(&pk, "n");
    msgpack_pack_nil(&pk);
    assert_false(fx->b.oom);
    msgpack_zone_init(&fx->z, 1024);
    size_t off = 0;
    assert_int_equal(msgpack_unpack((const char *)fx->b.p, fx->b.len, &off, &fx->z, &fx->o),
                     MSGPACK_UNPACK_SUCCESS);
}

static void args_free(args_fixture *fx)
{
    msgpack_zone_destroy(&fx->z);
    proto_buf_free(&fx->b);
}

static void expect_req(proto_err rc, const proto_error *e, const char *msg)
{
    assert_int_equal(rc, PROTO_E_BAD_REQUEST);
    assert_int_equal(e->code, PROTO_E_BAD_REQUEST);
    assert_string_equal(e->msg, msg);
}

static void test_arg_str(void **state)
{
    (void)state;
    args_fixture fx;
    args_build(&fx);
    const msgpack_object *a = &fx.o;
    proto_error e;
    const char *s;
    uint32_t n;

    assert_int_equal(proto_arg_str(a, "s", true, &s, &n, &e), PROTO_OK);
    assert_int_equal(n, 2);
    assert_memory_equal(s, "hi", 2);
    /* Empty is accepted, and is "" rather than NULL. */
    assert_int_equal(proto_arg_str(a, "e", true, &s, &n, &e), PROTO_OK);
    assert_non_null(s);
    assert_int_equal(n, 0);
    assert_int_equal(proto_arg_str(a, "zz", false, &s, &n, &e), PROTO_OK);
    assert_null(s);
    assert_int_equal(proto_arg_str(a, "n", false, &s, &n, &e), PROTO_OK); /* nil: absent */
    assert_null(s);
    expect_req(proto_arg_str(a, "line", true, &s, &n, &e), &e, "args.line: missing");
    expect_req(proto_arg_str(a, "n", true, &s, &n, &e), &e, "args.n: missing");
    expect_req(proto_arg_str(a, "u", true, &s, &n, &e), &e, "args.u: expected string");
    expect_req(proto_arg_str(a, "b", false, &s, &n, &e), &e, "args.b: expected string");
    assert_null(s);
    /* No args at all. */
    expect_req(proto_arg_str(NULL, "token", true, &s, &n, &e), &e, "args.token: missing");
    assert_int_equal(proto_arg_str(NULL, "client", false, &s, &n, &e), PROTO_OK);
    assert_null(s);
    args_free(&fx);
}

static void test_arg_uint(void **state)
{
    (void)state;
    args_fixture fx;
    args_build(&fx);
    const msgpack_object *a = &fx.o;
    proto_error e;
    uint64_t v = 0;
    bool present = true;

    assert_int_equal(proto_arg_uint(a, "u", true, &v, &present, &e), PROTO_OK);
    assert_true(present);
    assert_int_equal(v, 7);
    assert_int_equal(proto_arg_uint(a, "big", true, &v, &present, &e), PROTO_OK);
    assert_int_equal(v, UINT64_MAX);
    assert_int_equal(proto_arg_uint(a, "zz", false, &v, &present, &e), PROTO_OK);
    assert_false(present);
    assert_int_equal(proto_arg_uint(a, "n", false, &v, &present, &e), PROTO_OK);
    assert_false(present);
    expect_req(proto_arg_uint(a, "ticket_id", true, &v, &present, &e), &e,
               "args.ticket_id: missing");
    expect_req(proto_arg_uint(a, "neg", true, &v, &present, &e), &e,
               "args.neg: expected unsigned integer");
    assert_false(present);
    expect_req(proto_arg_uint(a, "f", false, &v, &present, &e), &e,
               "args.f: expected unsigned integer");
    expect_req(proto_arg_uint(a, "s", true, &v, &present, &e), &e,
               "args.s: expected unsigned integer");
    expect_req(proto_arg_uint(a, "b", true, &v, &present, &e), &e,
               "args.b: expected unsigned integer");
    args_free(&fx);
}

static void test_arg_bool(void **state)
{
    (void)state;
    args_fixture fx;
    args_build(&fx);
    const msgpack_object *a = &fx.o;
    proto_error e;
    bool v = false, present = true;

    assert_int_equal(proto_arg_bool(a, "b", true, &v, &present, &e), PROTO_OK);
    assert_true(v && present);
    assert_int_equal(proto_arg_bool(a, "priority", false, &v, &present, &e), PROTO_OK);
    assert_false(present);
    expect_req(proto_arg_bool(a, "priority", true, &v, &present, &e), &e, "args.priority: missing");
    expect_req(proto_arg_bool(a, "u", false, &v, &present, &e), &e, "args.u: expected bool");
    expect_req(proto_arg_bool(a, "s", true, &v, &present, &e), &e, "args.s: expected bool");
    assert_false(present);
    args_free(&fx);
}

static void test_arg_map_array(void **state)
{
    (void)state;
    args_fixture fx;
    args_build(&fx);
    const msgpack_object *a = &fx.o;
    proto_error e;
    const msgpack_object *o;

    assert_int_equal(proto_arg_map(a, "m", true, &o, &e), PROTO_OK);
    assert_non_null(o);
    assert_int_equal(o->type, MSGPACK_OBJECT_MAP);
    assert_int_equal(proto_arg_map(a, "applicant", false, &o, &e), PROTO_OK);
    assert_null(o);
    expect_req(proto_arg_map(a, "applicant", true, &o, &e), &e, "args.applicant: missing");
    expect_req(proto_arg_map(a, "a", true, &o, &e), &e, "args.a: expected map");
    assert_null(o);
    expect_req(proto_arg_map(a, "s", false, &o, &e), &e, "args.s: expected map");
    assert_null(o);

    assert_int_equal(proto_arg_array(a, "a", true, &o, &e), PROTO_OK);
    assert_non_null(o);
    assert_int_equal(o->via.array.size, 1);
    assert_int_equal(proto_arg_array(a, "n", false, &o, &e), PROTO_OK);
    assert_null(o);
    expect_req(proto_arg_array(a, "materials", true, &o, &e), &e, "args.materials: missing");
    expect_req(proto_arg_array(a, "m", true, &o, &e), &e, "args.m: expected array");
    assert_null(o);
    expect_req(proto_arg_array(a, "u", false, &o, &e), &e, "args.u: expected array");

    /* proto_map_get: only maps, only string keys, exact names. */
    assert_null(proto_map_get(NULL, "s"));
    assert_null(proto_map_get(proto_map_get(a, "a"), "s"));
    assert_null(proto_map_get(a, "S"));
    assert_null(proto_map_get(a, "ss"));
    assert_null(proto_map_get(a, ""));
    assert_non_null(proto_map_get(a, "big"));
    args_free(&fx);
}

/* ---- output ---- */

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Parses the frame at b->p + *pos (checking its length and body), and
 * moves *pos past it. */
static const msgpack_object *parse_frame(const proto_buf *b, size_t *pos, msgpack_zone *z)
{
    static msgpack_object o;
    assert_true(b->len - *pos >= 4);
    uint32_t n = be32(b->p + *pos);
    assert_true(n >= 1 && n <= b->len - *pos - 4);
    proto_error e;
    assert_int_equal(proto_body_check(b->p + *pos + 4, n, &e), PROTO_OK);
    size_t off = 0;
    assert_int_equal(msgpack_unpack((const char *)b->p + *pos + 4, n, &off, z, &o),
                     MSGPACK_UNPACK_SUCCESS);
    *pos += 4 + n;
    return &o;
}

static bool obj_str_is(const msgpack_object *o, const char *s)
{
    return o && o->type == MSGPACK_OBJECT_STR && o->via.str.size == strlen(s) &&
           memcmp(o->via.str.ptr, s, o->via.str.size) == 0;
}

static void test_error_response_round_trip(void **state)
{
    (void)state;
    proto_buf b;
    msgpack_zone z;
    msgpack_zone_init(&z, 1024);
    proto_buf_init(&b);
    for (int code = 1; code < PROTO_E__COUNT; code++)
        proto_write_error(&b, (uint64_t)code * 1000, (proto_err)code, "args.line: no line 'Z'");
    proto_write_error(&b, 0, PROTO_E_BAD_FRAME, NULL);
    assert_false(b.oom);

    size_t pos = 0;
    for (int code = 1; code <= PROTO_E__COUNT; code++) {
        const msgpack_object *m = parse_frame(&b, &pos, &z);
        bool last = code == PROTO_E__COUNT;
        assert_int_equal(m->via.map.size, 3);
        assert_int_equal(proto_map_get(m, "id")->type, MSGPACK_OBJECT_POSITIVE_INTEGER);
        assert_int_equal(proto_map_get(m, "id")->via.u64, last ? 0 : (uint64_t)code * 1000);
        assert_int_equal(proto_map_get(m, "ok")->type, MSGPACK_OBJECT_BOOLEAN);
        assert_false(proto_map_get(m, "ok")->via.boolean);
        assert_null(proto_map_get(m, "result"));
        const msgpack_object *err = proto_map_get(m, "error");
        assert_non_null(err);
        assert_int_equal(err->via.map.size, 2);
        const msgpack_object *c = proto_map_get(err, "code");
        assert_true(obj_str_is(c, proto_err_name(last ? PROTO_E_BAD_FRAME : (proto_err)code)));
        assert_int_equal(proto_err_from_name(c->via.str.ptr, c->via.str.size),
                         last ? PROTO_E_BAD_FRAME : code);
        assert_true(
            obj_str_is(proto_map_get(err, "message"), last ? "" : "args.line: no line 'Z'"));
    }
    assert_int_equal(pos, b.len);
    proto_buf_free(&b);
    msgpack_zone_destroy(&z);
}

static void test_ok_and_request_round_trip(void **state)
{
    (void)state;
    proto_buf b, args;
    msgpack_packer pk;
    msgpack_zone z;
    msgpack_zone_init(&z, 1024);
    proto_buf_init(&b);
    proto_buf_init(&args);

    /* An ok response with a result longer than 65535 bytes, so every byte
     * of the length matters. */
    size_t off = proto_begin_ok(&b, &pk, 77);
    msgpack_pack_map(&pk, 2);
    proto_pack_kv_uint(&pk, "now_ms", 1700000000000ull);
    char *big = malloc(70000);
    memset(big, 'x', 70000);
    proto_pack_str(&pk, "pad");
    proto_pack_strn(&pk, big, 70000);
    free(big);
    proto_frame_end(&b, off);

    /* Requests with args, without, and with an empty args buffer. */
    proto_packer_init(&pk, &args);
    msgpack_pack_map(&pk, 1);
    proto_pack_kv_str(&pk, "line", "A");
    proto_write_request(&b, 5, "ticket.take", args.p, args.len);
    proto_write_request(&b, 6, "ping", NULL, 0);
    proto_write_request(&b, 7, "ping", args.p, 0);
    assert_false(b.oom);

    size_t pos = 0;
    const msgpack_object *m = parse_frame(&b, &pos, &z);
    assert_int_equal(proto_map_get(m, "id")->via.u64, 77);
    assert_true(proto_map_get(m, "ok")->via.boolean);
    const msgpack_object *res = proto_map_get(m, "result");
    assert_int_equal(proto_map_get(res, "now_ms")->via.u64, 1700000000000ull);
    assert_int_equal(proto_map_get(res, "pad")->via.str.size, 70000);

    proto_request r;
    proto_error e;
    uint64_t ids[] = {5, 6, 7};
    for (int i = 0; i < 3; i++) {
        uint32_t n = be32(b.p + pos);
        assert_int_equal(proto_request_decode(&z, b.p + pos + 4, n, &r, &e), PROTO_OK);
        assert_int_equal(r.id, ids[i]);
        assert_true(proto_op_is(&r, i == 0 ? "ticket.take" : "ping"));
        if (i == 0) {
            const char *s;
            uint32_t sl;
            assert_int_equal(proto_arg_str(r.args, "line", true, &s, &sl, &e), PROTO_OK);
            assert_memory_equal(s, "A", 1);
        } else {
            assert_null(r.args);
        }
        pos += 4 + n;
    }
    assert_int_equal(pos, b.len);

    /* The same frames through the framer, all in one read. */
    proto_framer f;
    proto_framer_init(&f, 1u << 20);
    assert_int_equal(proto_framer_feed(&f, b.p, b.len), b.len);
    const uint8_t *body;
    uint32_t n;
    for (int i = 0; i < 4; i++)
        assert_int_equal(proto_framer_next(&f, &body, &n), PROTO_FRAME_READY);
    assert_int_equal(proto_framer_next(&f, &body, &n), PROTO_FRAME_NEED);
    proto_framer_free(&f);

    proto_buf_free(&args);
    proto_buf_free(&b);
    msgpack_zone_destroy(&z);
}

static void test_buf(void **state)
{
    (void)state;
    proto_buf b;
    proto_buf_init(&b);
    assert_true(proto_buf_append(&b, "abc", 3));
    assert_true(proto_buf_append(&b, NULL, 0));
    assert_int_equal(b.len, 3);
    /* Frame lengths are big-endian and cover only what follows. */
    size_t off = proto_frame_begin(&b);
    assert_int_equal(off, 3);
    static uint8_t body[0x010203];
    assert_true(proto_buf_append(&b, body, sizeof body));
    proto_frame_end(&b, off);
    assert_memory_equal(b.p + 3, "\x00\x01\x02\x03", 4);
    /* An impossible reservation marks the buffer and drops later writes. */
    assert_false(proto_buf_reserve(&b, SIZE_MAX));
    assert_true(b.oom);
    assert_false(proto_buf_append(&b, "x", 1));
    assert_int_equal(proto_buf_write(&b, "x", 1), -1);
    assert_int_equal(b.len, 3 + 4 + sizeof body);
    proto_buf_reset(&b);
    assert_false(b.oom);
    assert_int_equal(b.len, 0);
    assert_int_equal(proto_buf_write(&b, "x", 1), 0);
    assert_int_equal(b.len, 1);
    proto_buf_free(&b);
    assert_null(b.p);
    assert_int_equal(b.cap, 0);
}

/* ---- error codes ---- */

static void test_error_table(void **state)
{
    (void)state;
    /* The wire names, exactly as PROTOCOL.md fixes them. */
    static const char *const wire[] = {
        "bad_frame", "unauthenticated", "bad_request", "unknown_op",  "forbidden", "not_found",
        "conflict",  "checklist",       "limit",       "unavailable", "internal",
    };
    assert_int_equal(sizeof wire / sizeof *wire, PROTO_E__COUNT - 1);
    for (int i = 1; i < PROTO_E__COUNT; i++) {
        assert_string_equal(proto_err_name((proto_err)i), wire[i - 1]);
        assert_int_equal(proto_err_from_name(wire[i - 1], strlen(wire[i - 1])), i);
        /* Only bad_frame and unauthenticated close the connection. */
        assert_int_equal(proto_err_closes((proto_err)i),
                         i == PROTO_E_BAD_FRAME || i == PROTO_E_UNAUTHENTICATED);
    }
    assert_string_equal(proto_err_name(PROTO_OK), "ok");
    assert_string_equal(proto_err_name(PROTO_E__COUNT), "internal");
    assert_false(proto_err_closes(PROTO_OK));
    assert_int_equal(proto_err_from_name("ok", 2), -1);
    assert_int_equal(proto_err_from_name("nope", 4), -1);
    assert_int_equal(proto_err_from_name("bad", 3), -1);                       /* a prefix */
    assert_int_equal(proto_err_from_name("bad_frames", 10), -1);               /* longer */
    assert_int_equal(proto_err_from_name("limit_and_more", 5), PROTO_E_LIMIT); /* n counts */
    assert_int_equal(proto_err_from_name("", 0), -1);
}

static void test_fail(void **state)
{
    (void)state;
    proto_error e;
    assert_int_equal(proto_fail(&e, PROTO_E_NOT_FOUND, "args.line: no line '%s' (%d)", "Z", 3),
                     PROTO_E_NOT_FOUND);
    assert_int_equal(e.code, PROTO_E_NOT_FOUND);
    assert_string_equal(e.msg, "args.line: no line 'Z' (3)");
    /* A long message is cut to the buffer, still terminated. */
    char longs[400];
    memset(longs, 'y', sizeof longs - 1);
    longs[sizeof longs - 1] = 0;
    proto_fail(&e, PROTO_E_INTERNAL, "%s", longs);
    assert_int_equal(strlen(e.msg), sizeof e.msg - 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_all_formats),
        cmocka_unit_test(test_mutations_agree_with_msgpack),
        cmocka_unit_test(test_body_empty_and_not_a_map),
        cmocka_unit_test(test_body_trailing),
        cmocka_unit_test(test_body_truncated),
        cmocka_unit_test(test_body_str32_past_frame),
        cmocka_unit_test(test_body_huge_count),
        cmocka_unit_test(test_body_depth),
        cmocka_unit_test(test_body_keys),
        cmocka_unit_test(test_envelope_good),
        cmocka_unit_test(test_envelope_bad),
        cmocka_unit_test(test_arg_str),
        cmocka_unit_test(test_arg_uint),
        cmocka_unit_test(test_arg_bool),
        cmocka_unit_test(test_arg_map_array),
        cmocka_unit_test(test_error_response_round_trip),
        cmocka_unit_test(test_ok_and_request_round_trip),
        cmocka_unit_test(test_buf),
        cmocka_unit_test(test_error_table),
        cmocka_unit_test(test_fail),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
