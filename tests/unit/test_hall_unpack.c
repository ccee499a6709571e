/* tests/unit/test_hall_unpack.c: hall_unpack_in, the hall's decoder of
 * stored values, decodes every value exactly as msgpack_unpack does (the
 * same objects, strings pointing at the same bytes) or refuses the same
 * values: integers at every width boundary, strings and bins of every
 * header size, nested arrays and maps, and values it leaves to msgpack-c
 * (floats, ext, deep nesting, damage, trailing bytes). And hall_copy and
 * hall_put_uint, which stand for snprintf where the hall formats ids. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "daemon/hall/hall_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* msgpack_unpack, the reference, allocates what a damaged count declares
 * before it finds the bytes missing: under AddressSanitizer that must
 * fail as malloc does (NULL), not abort the test. */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
    return "allocator_may_return_null=1";
}

static bool same(const msgpack_object *a, const msgpack_object *b)
{
    if (a->type != b->type)
        return false;
    switch (a->type) {
    case MSGPACK_OBJECT_NIL:
        return true;
    case MSGPACK_OBJECT_BOOLEAN:
        return a->via.boolean == b->via.boolean;
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        return a->via.u64 == b->via.u64;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        return a->via.i64 == b->via.i64;
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        return memcmp(&a->via.f64, &b->via.f64, sizeof a->via.f64) == 0; /* NaN too */
    case MSGPACK_OBJECT_EXT:
        return a->via.ext.type == b->via.ext.type && a->via.ext.size == b->via.ext.size &&
               a->via.ext.ptr == b->via.ext.ptr;
    case MSGPACK_OBJECT_STR:
        return a->via.str.size == b->via.str.size && a->via.str.ptr == b->via.str.ptr;
    case MSGPACK_OBJECT_BIN:
        return a->via.bin.size == b->via.bin.size && a->via.bin.ptr == b->via.bin.ptr;
    case MSGPACK_OBJECT_ARRAY:
        if (a->via.array.size != b->via.array.size)
            return false;
        for (uint32_t i = 0; i < a->via.array.size; i++)
            if (!same(&a->via.array.ptr[i], &b->via.array.ptr[i]))
                return false;
        return true;
    case MSGPACK_OBJECT_MAP:
        if (a->via.map.size != b->via.map.size)
            return false;
        for (uint32_t i = 0; i < a->via.map.size; i++)
            if (!same(&a->via.map.ptr[i].key, &b->via.map.ptr[i].key) ||
                !same(&a->via.map.ptr[i].val, &b->via.map.ptr[i].val))
                return false;
        return true;
    default:
        return false;
    }
}

/* Both decoders on p[0..n): the same verdict and, on success, the same
 * object. Returns hall_unpack_in's verdict. */
static int check(const uint8_t *p, size_t n)
{
    msgpack_zone z1, z2;
    msgpack_object a, b;
    assert_true(msgpack_zone_init(&z1, 256));
    assert_true(msgpack_zone_init(&z2, 256));
    size_t off = 0;
    msgpack_unpack_return want = msgpack_unpack((const char *)p, n, &off, &z1, &a);
    int ok_want = want == MSGPACK_UNPACK_SUCCESS && off == n ? 0 : -1;
    int got = hall_unpack_in(&z2, p, n, &b);
    assert_int_equal(got, ok_want);
    if (got == 0 && !same(&a, &b)) {
        fprintf(stderr, "differs on %zu bytes:", n);
        for (size_t i = 0; i < n && i < 40; i++)
            fprintf(stderr, " %02x", p[i]);
        fprintf(stderr, "\n");
        fail();
    }
    msgpack_zone_destroy(&z1);
    msgpack_zone_destroy(&z2);
    return got;
}

static msgpack_sbuffer sb;
static msgpack_packer pk;

static void start(void)
{
    msgpack_sbuffer_clear(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
}

static int check_sb(void)
{
    return check((const uint8_t *)sb.data, sb.size);
}

static void test_integers(void **state)
{
    (void)state;
    static const int64_t edges[] = {0,
                                    1,
                                    31,
                                    32,
                                    127,
                                    128,
                                    255,
                                    256,
                                    65535,
                                    65536,
                                    4294967295LL,
                                    4294967296LL,
                                    INT64_MAX,
                                    -1,
                                    -32,
                                    -33,
                                    -128,
                                    -129,
                                    -32768,
                                    -32769,
                                    -2147483648LL,
                                    -2147483649LL,
                                    INT64_MIN};
    size_t n = sizeof edges / sizeof edges[0];
    start();
    msgpack_pack_array(&pk, n * 6 + 2);
    for (size_t i = 0; i < n; i++) {
        int64_t v = edges[i];
        msgpack_pack_int64(&pk, v);
        msgpack_pack_int32(&pk, (int32_t)v);
        msgpack_pack_uint32(&pk, (uint32_t)v);
        msgpack_pack_uint64(&pk, (uint64_t)v);
        msgpack_pack_int(&pk, (int)v);
        msgpack_pack_uint64(&pk, (uint64_t)v >> 1);
    }
    msgpack_pack_uint64(&pk, UINT64_MAX);
    msgpack_pack_nil(&pk);
    assert_int_equal(check_sb(), 0);

    /* Signed encodings of non-negative values decode as positive. */
    static const uint8_t wide[] = {0x97, 0xd0, 0x05, 0xd1, 0x00, 0x07, 0xd2, 0x00, 0x00, 0x00,
                                   0x09, 0xd3, 0,    0,    0,    0,    0,    0,    0,    1,
                                   0xcc, 0x01, 0xcd, 0x00, 0x01, 0xce, 0,    0,    0,    1};
    assert_int_equal(check(wide, sizeof wide), 0);
}

static void test_strings_bins(void **state)
{
    (void)state;
    static char text[70000];
    memset(text, 'x', sizeof text);
    static const size_t lens[] = {0, 1, 31, 32, 255, 256, 65535, 65536};
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        start();
        msgpack_pack_array(&pk, 4);
        msgpack_pack_str(&pk, lens[i]);
        msgpack_pack_str_body(&pk, text, lens[i]);
        msgpack_pack_bin(&pk, lens[i]);
        msgpack_pack_bin_body(&pk, text, lens[i]);
        msgpack_pack_true(&pk);
        msgpack_pack_false(&pk);
        assert_int_equal(check_sb(), 0);
    }
    /* An empty string points where msgpack-c's last fixed-size read
     * began (NULL before any), an empty str8 or bin at its length. */
    static const uint8_t empty1[] = {0x94, 0xa0, 0xc4, 0x00, 0xa0, 0xd9, 0x00};
    static const uint8_t empty2[] = {0x94, 0xcd, 0x01, 0x00, 0xa0, 0xa1, 'x', 0xa0};
    assert_int_equal(check(empty1, sizeof empty1), 0);
    assert_int_equal(check(empty2, sizeof empty2), 0);
    /* 16 and 65,536 elements: the array16 and array32 headers. */
    static const size_t counts[] = {0, 15, 16, 65535, 65536};
    for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++) {
        start();
        msgpack_pack_array(&pk, counts[i]);
        for (size_t j = 0; j < counts[i]; j++)
            msgpack_pack_uint32(&pk, (uint32_t)j);
        assert_int_equal(check_sb(), 0);
    }
}

static void test_nested(void **state)
{
    (void)state;
    start();
    msgpack_pack_array(&pk, 3);
    msgpack_pack_array(&pk, 2);
    msgpack_pack_str(&pk, 3);
    msgpack_pack_str_body(&pk, "mkt", 3);
    msgpack_pack_array(&pk, 0);
    msgpack_pack_map(&pk, 2);
    msgpack_pack_str(&pk, 1);
    msgpack_pack_str_body(&pk, "a", 1);
    msgpack_pack_int(&pk, -5);
    msgpack_pack_int(&pk, 7);
    msgpack_pack_map(&pk, 0);
    msgpack_pack_map(&pk, 0);
    assert_int_equal(check_sb(), 0);

    /* Nested deeper than the decoder goes: msgpack-c decides. */
    start();
    for (int i = 0; i < 12; i++)
        msgpack_pack_array(&pk, 1);
    msgpack_pack_int(&pk, 1);
    assert_int_equal(check_sb(), 0);

    /* A map16 of 16 entries. */
    start();
    msgpack_pack_map(&pk, 16);
    for (int i = 0; i < 16; i++) {
        msgpack_pack_int(&pk, i);
        msgpack_pack_nil(&pk);
    }
    assert_int_equal(check_sb(), 0);
}

static void test_left_to_msgpack(void **state)
{
    (void)state;
    start();
    msgpack_pack_array(&pk, 3);
    msgpack_pack_double(&pk, 1.5);
    msgpack_pack_float(&pk, 2.5f);
    msgpack_pack_int(&pk, 1);
    assert_int_equal(check_sb(), 0);

    start();
    msgpack_pack_array(&pk, 1);
    msgpack_pack_ext(&pk, 2, 1);
    msgpack_pack_ext_body(&pk, "ab", 2);
    assert_int_equal(check_sb(), 0);
}

static void test_damage(void **state)
{
    (void)state;
    start();
    msgpack_pack_array(&pk, 4);
    msgpack_pack_str(&pk, 5);
    msgpack_pack_str_body(&pk, "hello", 5);
    msgpack_pack_uint64(&pk, 1ull << 40);
    msgpack_pack_bin(&pk, 300);
    static const char body[300];
    msgpack_pack_bin_body(&pk, body, 300);
    msgpack_pack_int64(&pk, -70000);
    /* Every truncation, and the value with a byte too many. */
    for (size_t n = 0; n < sb.size; n++)
        assert_int_equal(check((const uint8_t *)sb.data, n), -1);
    msgpack_sbuffer_write(&sb, "\x01", 1);
    assert_int_equal(check_sb(), -1);

    /* 0xc1 is never used; huge declared counts with no bytes behind. */
    static const uint8_t c1[] = {0x91, 0xc1};
    static const uint8_t big_arr[] = {0xdd, 0xff, 0xff, 0xff, 0xff, 0x01};
    static const uint8_t big_map[] = {0xdf, 0x7f, 0xff, 0xff, 0xff, 0x01, 0x02};
    static const uint8_t big_str[] = {0xdb, 0xff, 0xff, 0xff, 0xf0, 'a'};
    assert_int_equal(check(c1, sizeof c1), -1);
    assert_int_equal(check(big_arr, sizeof big_arr), -1);
    assert_int_equal(check(big_map, sizeof big_map), -1);
    assert_int_equal(check(big_str, sizeof big_str), -1);

    /* Random bytes: whatever msgpack-c says. */
    uint8_t buf[64];
    uint32_t x = 12345;
    for (int round = 0; round < 20000; round++) {
        size_t n = 1 + round % (sizeof buf - 1);
        for (size_t i = 0; i < n; i++) {
            x = x * 1103515245u + 12345u;
            buf[i] = (uint8_t)(x >> 16);
            /* No array32 or map32: msgpack-c would try to allocate its
             * count (up to 96 GiB; the cases above have one each). */
            if (buf[i] == 0xdd || buf[i] == 0xdf)
                buf[i] ^= 0x01;
        }
        if (round % 3 == 0)
            buf[0] = (uint8_t)(0x90 | (buf[0] & 0x0f));
        check(buf, n);
    }
}

/* The hall's formatting by hand says what snprintf says. */
static void test_copy_and_digits(void **state)
{
    (void)state;
    static const char *const src[] = {"", "A", "W01", "exactly-eight", "with\0nul"};
    for (size_t i = 0; i < sizeof src / sizeof src[0]; i++)
        for (size_t cap = 1; cap < 16; cap++)
            for (size_t n = 0; n < 16; n++) {
                char a[16], b[16];
                snprintf(a, cap, "%.*s", (int)n, src[i]);
                hall_copy(b, cap, src[i], n);
                assert_string_equal(a, b);
                snprintf(a, cap, "%s", src[i]);
                hall_copy(b, cap, src[i], SIZE_MAX);
                assert_string_equal(a, b);
            }
    static const uint64_t vals[] = {0, 7, 42, 999, 1000, 9999, 10000, 4294967295u, UINT64_MAX};
    for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++)
        for (int w = 0; w <= 5; w++) {
            char a[32], b[32];
            snprintf(a, sizeof a, "%0*llu", w, (unsigned long long)vals[i]);
            b[hall_put_uint(b, vals[i], w)] = 0;
            assert_string_equal(a, b);
        }
}

int main(void)
{
    msgpack_sbuffer_init(&sb);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_integers), cmocka_unit_test(test_strings_bins),
        cmocka_unit_test(test_nested),   cmocka_unit_test(test_left_to_msgpack),
        cmocka_unit_test(test_damage),   cmocka_unit_test(test_copy_and_digits),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    msgpack_sbuffer_destroy(&sb);
    return rc;
}
