/* daemon/hall/value.c: stored values: decoding them (in place, fast),
 * reading their positional fields, numbers as text, and the LMDB failure
 * every handler reports the same way. A leaf: it calls no other file of
 * daemon/hall/, so every handler can use it without calling back up. */
#include "daemon/hall/hall_internal.h"

#include <stdio.h>
#include <string.h>

int hall_mdb_fail(proto_error *e, int *mdb_rc, int rc, const char *where)
{
    *mdb_rc = rc;
    proto_fail(e, PROTO_E_INTERNAL, "state store: %s: %s (see the daemon log)", where,
               mdb_strerror(rc));
    return -1;
}

/* Stored values are decoded here, in place, exactly as msgpack_unpack
 * would decode them: integers typed by their sign (a signed encoding of a
 * value >= 0 is POSITIVE_INTEGER), strings and bins pointing into the
 * value, arrays and maps in the zone. Floats, ext, nesting deeper than
 * UNPACK_DEPTH and anything damaged are left to msgpack_unpack, which stays
 * the reference (tests/unit/test_hall_unpack.c holds the two together). */
#define UNPACK_DEPTH 8
/* Besides 0 and -1 (ask msgpack_unpack): the bytes end before the value
 * does, or declare more objects than bytes, so no decoder can make one
 * whole value of them (and msgpack-c would first allocate the count). */
#define SHORT (-2)

typedef struct unpack_in {
    msgpack_zone *z;
    const uint8_t *p, *end;
    /* Where msgpack-c's last fixed-size read began (NULL before any): an
     * empty string or bin points there, as in msgpack-c. */
    const uint8_t *trail;
} unpack_in;

/* Reads n big-endian bytes (a value or a length); -1 when too short. */
static int take_be(unpack_in *u, size_t n, uint64_t *v)
{
    if ((size_t)(u->end - u->p) < n)
        return SHORT;
    u->trail = u->p;
    *v = 0;
    for (size_t i = 0; i < n; i++)
        *v = *v << 8 | u->p[i];
    u->p += n;
    return 0;
}

static void set_int(msgpack_object *o, int64_t v)
{
    if (v >= 0) {
        o->type = MSGPACK_OBJECT_POSITIVE_INTEGER;
        o->via.u64 = (uint64_t)v;
    } else {
        o->type = MSGPACK_OBJECT_NEGATIVE_INTEGER;
        o->via.i64 = v;
    }
}

static int fast_obj(unpack_in *u, int depth, msgpack_object *o);

/* n objects, or n key-value pairs for a map, into zone memory. */
static int fast_items(unpack_in *u, int depth, uint64_t n, bool map, msgpack_object *o)
{
    /* Every object takes a byte at least: a count beyond the bytes left is
     * damage (msgpack_unpack answers it), never an allocation. */
    if (n > (uint64_t)(u->end - u->p) / (map ? 2 : 1))
        return SHORT;
    if (depth == 0)
        return -1;
    size_t each = map ? sizeof(msgpack_object_kv) : sizeof(msgpack_object);
    void *mem = msgpack_zone_malloc(u->z, (size_t)n * each);
    if (!mem)
        return -1;
    if (map) {
        msgpack_object_kv *kv = mem;
        for (uint64_t i = 0; i < n; i++) {
            int rc = fast_obj(u, depth - 1, &kv[i].key);
            if (rc || (rc = fast_obj(u, depth - 1, &kv[i].val)))
                return rc;
        }
        o->type = MSGPACK_OBJECT_MAP;
        o->via.map.size = (uint32_t)n;
        o->via.map.ptr = kv;
    } else {
        msgpack_object *a = mem;
        for (uint64_t i = 0; i < n; i++) {
            int rc = fast_obj(u, depth - 1, &a[i]);
            if (rc)
                return rc;
        }
        o->type = MSGPACK_OBJECT_ARRAY;
        o->via.array.size = (uint32_t)n;
        o->via.array.ptr = a;
    }
    return 0;
}

/* A str or bin body of n bytes. */
static int fast_raw(unpack_in *u, uint64_t n, bool bin, msgpack_object *o)
{
    if (n > (uint64_t)(u->end - u->p))
        return SHORT;
    if (n)
        u->trail = u->p;
    if (bin) {
        o->type = MSGPACK_OBJECT_BIN;
        o->via.bin.size = (uint32_t)n;
        o->via.bin.ptr = (const char *)u->trail;
    } else {
        o->type = MSGPACK_OBJECT_STR;
        o->via.str.size = (uint32_t)n;
        o->via.str.ptr = (const char *)u->trail;
    }
    u->p += n;
    return 0;
}

static int fast_obj(unpack_in *u, int depth, msgpack_object *o)
{
    uint64_t n;
    if (u->p >= u->end)
        return SHORT;
    uint8_t b = *u->p++;
    if (b <= 0x7f) {
        o->type = MSGPACK_OBJECT_POSITIVE_INTEGER;
        o->via.u64 = b;
        return 0;
    }
    if (b >= 0xe0) {
        set_int(o, (int8_t)b);
        return 0;
    }
    if (b >= 0xa0 && b <= 0xbf)
        return fast_raw(u, b & 0x1f, false, o);
    if (b >= 0x90 && b <= 0x9f)
        return fast_items(u, depth, b & 0x0f, false, o);
    if (b <= 0x8f)
        return fast_items(u, depth, b & 0x0f, true, o);
    switch (b) {
    case 0xc0:
        o->type = MSGPACK_OBJECT_NIL;
        return 0;
    case 0xc2:
    case 0xc3:
        o->type = MSGPACK_OBJECT_BOOLEAN;
        o->via.boolean = b == 0xc3;
        return 0;
    case 0xcc: /* uint 8, 16, 32, 64 */
    case 0xcd:
    case 0xce:
    case 0xcf:
        if (take_be(u, (size_t)1 << (b - 0xcc), &n))
            return SHORT;
        o->type = MSGPACK_OBJECT_POSITIVE_INTEGER;
        o->via.u64 = n;
        return 0;
    case 0xd0: /* int 8, 16, 32, 64 */
    case 0xd1:
    case 0xd2:
    case 0xd3:
        if (take_be(u, (size_t)1 << (b - 0xd0), &n))
            return SHORT;
        set_int(o, b == 0xd0   ? (int8_t)n
                   : b == 0xd1 ? (int16_t)n
                   : b == 0xd2 ? (int32_t)n
                               : (int64_t)n);
        return 0;
    case 0xc4: /* bin 8, 16, 32 */
    case 0xc5:
    case 0xc6:
        return take_be(u, (size_t)1 << (b - 0xc4), &n) ? SHORT : fast_raw(u, n, true, o);
    case 0xd9: /* str 8, 16, 32 */
    case 0xda:
    case 0xdb:
        return take_be(u, (size_t)1 << (b - 0xd9), &n) ? SHORT : fast_raw(u, n, false, o);
    case 0xdc: /* array 16, 32 */
    case 0xdd:
        return take_be(u, b == 0xdc ? 2 : 4, &n) ? SHORT : fast_items(u, depth, n, false, o);
    case 0xde: /* map 16, 32 */
    case 0xdf:
        return take_be(u, b == 0xde ? 2 : 4, &n) ? SHORT : fast_items(u, depth, n, true, o);
    default: /* floats, ext, 0xc1 */
        return -1;
    }
}

int hall_unpack_in(msgpack_zone *z, const void *data, size_t len, msgpack_object *o)
{
    unpack_in u = {z, data, (const uint8_t *)data + len, NULL};
    int rc = fast_obj(&u, UNPACK_DEPTH, o);
    if (rc == 0) /* msgpack-c would decode the same: bytes after it are extra */
        return u.p == u.end ? 0 : -1;
    if (rc == SHORT)
        return -1;
    size_t off = 0;
    msgpack_unpack_return r = msgpack_unpack(data, len, &off, z, o);
    return r == MSGPACK_UNPACK_SUCCESS && off == len ? 0 : -1;
}

int hall_unpack(hall *h, const MDB_val *v, msgpack_object *o)
{
    return hall_unpack_in(&h->zone, v->mv_data, v->mv_size, o);
}

const msgpack_object *hall_field(const msgpack_object *arr, uint32_t i)
{
    if (arr->type != MSGPACK_OBJECT_ARRAY || i >= arr->via.array.size)
        return NULL;
    return &arr->via.array.ptr[i];
}

int64_t hall_field_i64(const msgpack_object *arr, uint32_t i)
{
    const msgpack_object *f = hall_field(arr, i);
    if (!f)
        return 0;
    if (f->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
        return (int64_t)f->via.u64;
    if (f->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
        return f->via.i64;
    if (f->type == MSGPACK_OBJECT_BOOLEAN)
        return f->via.boolean;
    return 0;
}

void hall_field_str(const msgpack_object *arr, uint32_t i, char *out, size_t cap)
{
    const msgpack_object *f = hall_field(arr, i);
    size_t n = 0;
    if (f && f->type == MSGPACK_OBJECT_STR) {
        n = f->via.str.size < cap - 1 ? f->via.str.size : cap - 1;
        if (n) /* an empty string may have a NULL ptr */
            memcpy(out, f->via.str.ptr, n);
    }
    out[n] = 0;
}

size_t hall_put_uint(char *out, uint64_t v, int min_digits)
{
    char d[20];
    int n = 0;
    do {
        d[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n < min_digits && n < (int)sizeof d)
        d[n++] = '0';
    for (int i = 0; i < n; i++)
        out[i] = d[n - 1 - i];
    return (size_t)n;
}
