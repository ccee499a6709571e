/* proto/msg.c: checking bodies, decoding envelopes, reading args.
 *
 * proto_body_check walks the MessagePack bytes before msgpack-c sees them.
 * msgpack-c allocates count * sizeof(msgpack_object) for a container as
 * soon as it reads the count, so a 10-byte body claiming 2^31 entries must
 * never reach it. The walk allocates nothing and keeps one small stack of
 * PROTO_MAX_DEPTH counters. It checks every declared length and count
 * against the bytes really there (an entry takes at least one byte), bounds
 * nesting, requires string keys in every map and exactly one map with
 * nothing after it. Once it passes, msgpack-c allocates at most a small
 * multiple of the body's size.
 *
 * The walk must never read at or past p + n: every header and length is
 * checked against the remaining bytes before it is read.
 *
 * Reading the envelope and args never copies: the strings returned point
 * into the body (msgpack-c's objects do), so they live as long as both the
 * body and the zone. */
#include "proto/proto.h"

#include <inttypes.h>
#include <string.h>

/* What the walker needs to know about one MessagePack format byte. */
typedef enum { K_SCALAR, K_STR, K_BIN, K_EXT, K_ARRAY, K_MAP, K_BAD } kind;

typedef struct fmt {
    kind k;
    uint8_t lenbytes; /* bytes of the length or count that follow the tag */
    uint8_t extra;    /* fixed header bytes after the length (ext type) */
    uint8_t fixed;    /* payload bytes of a fixed-size value */
} fmt;

/* The formats 0xc0..0xdf; the fix* ranges around them are decoded in
 * fmt_of. An entry left zero would be K_SCALAR of size 0, so every slot
 * is spelled out. */
static const fmt fmt_c0[32] = {
    [0x00] = {K_SCALAR, 0, 0, 0}, /* nil */
    [0x01] = {K_BAD, 0, 0, 0},    /* never used */
    [0x02] = {K_SCALAR, 0, 0, 0}, /* false */
    [0x03] = {K_SCALAR, 0, 0, 0}, /* true */
    [0x04] = {K_BIN, 1, 0, 0},    /* bin 8, 16, 32 */
    [0x05] = {K_BIN, 2, 0, 0},
    [0x06] = {K_BIN, 4, 0, 0},
    [0x07] = {K_EXT, 1, 1, 0}, /* ext 8, 16, 32: length, type, data */
    [0x08] = {K_EXT, 2, 1, 0},
    [0x09] = {K_EXT, 4, 1, 0},
    [0x0a] = {K_SCALAR, 0, 0, 4}, /* float 32, 64 */
    [0x0b] = {K_SCALAR, 0, 0, 8},
    [0x0c] = {K_SCALAR, 0, 0, 1}, /* uint 8, 16, 32, 64 */
    [0x0d] = {K_SCALAR, 0, 0, 2},
    [0x0e] = {K_SCALAR, 0, 0, 4},
    [0x0f] = {K_SCALAR, 0, 0, 8},
    [0x10] = {K_SCALAR, 0, 0, 1}, /* int 8, 16, 32, 64 */
    [0x11] = {K_SCALAR, 0, 0, 2},
    [0x12] = {K_SCALAR, 0, 0, 4},
    [0x13] = {K_SCALAR, 0, 0, 8},
    [0x14] = {K_SCALAR, 0, 1, 1}, /* fixext 1, 2, 4, 8, 16: type, data */
    [0x15] = {K_SCALAR, 0, 1, 2},
    [0x16] = {K_SCALAR, 0, 1, 4},
    [0x17] = {K_SCALAR, 0, 1, 8},
    [0x18] = {K_SCALAR, 0, 1, 16},
    [0x19] = {K_STR, 1, 0, 0}, /* str 8, 16, 32 */
    [0x1a] = {K_STR, 2, 0, 0},
    [0x1b] = {K_STR, 4, 0, 0},
    [0x1c] = {K_ARRAY, 2, 0, 0}, /* array 16, 32 */
    [0x1d] = {K_ARRAY, 4, 0, 0},
    [0x1e] = {K_MAP, 2, 0, 0}, /* map 16, 32 */
    [0x1f] = {K_MAP, 4, 0, 0},
};

static fmt fmt_of(uint8_t b)
{
    if (b <= 0x7f || b >= 0xe0) /* positive, negative fixint */
        return (fmt){K_SCALAR, 0, 0, 0};
    if (b <= 0x8f) /* fixmap: the count is in the tag */
        return (fmt){K_MAP, 0, 0, 0};
    if (b <= 0x9f) /* fixarray */
        return (fmt){K_ARRAY, 0, 0, 0};
    if (b <= 0xbf) /* fixstr */
        return (fmt){K_STR, 0, 0, 0};
    return fmt_c0[b - 0xc0];
}

static uint64_t rd_be(const uint8_t *p, unsigned n)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

proto_err proto_body_check(const uint8_t *p, size_t n, proto_error *e)
{
    /* left[i]: values still to come in the container at depth i + 1; a
     * map counts keys and values, so a key is due when its count is even. */
    uint64_t left[PROTO_MAX_DEPTH];
    bool is_map[PROTO_MAX_DEPTH];
    int d = 0;
    size_t pos = 0;

    if (n == 0)
        return proto_fail(e, PROTO_E_BAD_FRAME, "body: empty");
    do {
        /* The top value was read when d == 0 after the first pass, so
         * here d > 0 or pos == 0, and a value is due. */
        if (pos >= n)
            return proto_fail(e, PROTO_E_BAD_FRAME, "body: truncated at byte %zu", pos);
        uint8_t b = p[pos];
        fmt f = fmt_of(b);
        if (f.k == K_BAD)
            return proto_fail(e, PROTO_E_BAD_FRAME, "body: invalid byte 0x%02x at byte %zu", b,
                              pos);
        if (pos == 0 && f.k != K_MAP)
            return proto_fail(e, PROTO_E_BAD_FRAME,
                              "body: not a map (a frame's body is one MessagePack map)");
        if (d > 0 && is_map[d - 1] && left[d - 1] % 2 == 0 && f.k != K_STR)
            return proto_fail(e, PROTO_E_BAD_FRAME, "body: map key at byte %zu is not a string",
                              pos);

        size_t hdr = 1 + (size_t)f.lenbytes + f.extra;
        if (hdr > n - pos)
            return proto_fail(e, PROTO_E_BAD_FRAME, "body: truncated at byte %zu", pos);
        uint64_t len; /* payload bytes, or entries of a container */
        if (f.lenbytes)
            len = rd_be(p + pos + 1, f.lenbytes);
        else if (f.k == K_MAP || f.k == K_ARRAY)
            len = b & 0x0f;
        else if (f.k == K_STR)
            len = b & 0x1f;
        else
            len = f.fixed;
        size_t at = pos;
        pos += hdr;
        size_t rest = n - pos;
        if (d > 0)
            left[d - 1]--;

        if (f.k == K_ARRAY || f.k == K_MAP) {
            if (d >= PROTO_MAX_DEPTH)
                return proto_fail(e, PROTO_E_BAD_FRAME, "body: nesting deeper than %d",
                                  PROTO_MAX_DEPTH);
            /* Each entry takes at least one byte: refuse a count the
             * frame cannot hold before anything is allocated for it. */
            uint64_t values = f.k == K_MAP ? len * 2 : len;
            if (values > rest)
                return proto_fail(
                    e, PROTO_E_BAD_FRAME, "body: %s of %" PRIu64 " %s runs past the frame",
                    f.k == K_MAP ? "map" : "array", len, f.k == K_MAP ? "entries" : "elements");
            if (values > 0) {
                left[d] = values;
                is_map[d] = f.k == K_MAP;
                d++;
            }
        } else {
            if (len > rest) {
                if (f.k == K_SCALAR)
                    return proto_fail(e, PROTO_E_BAD_FRAME, "body: truncated at byte %zu", at);
                return proto_fail(e, PROTO_E_BAD_FRAME,
                                  "body: %s length %" PRIu64 " runs past the frame",
                                  f.k == K_STR   ? "string"
                                  : f.k == K_BIN ? "bin"
                                                 : "ext",
                                  len);
            }
            pos += (size_t)len;
        }
        while (d > 0 && left[d - 1] == 0)
            d--;
    } while (d > 0);

    if (pos != n)
        return proto_fail(e, PROTO_E_BAD_FRAME, "body: trailing bytes after the map (%zu)",
                          n - pos);
    return PROTO_OK;
}

static bool str_is(const msgpack_object *o, const char *s, size_t n)
{
    return o->type == MSGPACK_OBJECT_STR && o->via.str.size == n &&
           (n == 0 || memcmp(o->via.str.ptr, s, n) == 0);
}

const msgpack_object *proto_map_get(const msgpack_object *map, const char *key)
{
    if (!map || map->type != MSGPACK_OBJECT_MAP)
        return NULL;
    size_t n = strlen(key);
    for (uint32_t i = 0; i < map->via.map.size; i++)
        if (str_is(&map->via.map.ptr[i].key, key, n))
            return &map->via.map.ptr[i].val;
    return NULL;
}

proto_err proto_request_decode(msgpack_zone *z, const uint8_t *body, size_t n, proto_request *req,
                               proto_error *e)
{
    memset(req, 0, sizeof *req);
    proto_err rc = proto_body_check(body, n, e);
    if (rc != PROTO_OK)
        return rc;
    msgpack_object o;
    size_t off = 0;
    msgpack_unpack_return ur = msgpack_unpack((const char *)body, n, &off, z, &o);
    if (ur == MSGPACK_UNPACK_NOMEM_ERROR)
        return proto_fail(e, PROTO_E_INTERNAL, "body: out of memory unpacking %zu bytes", n);
    /* The check passed, so msgpack-c must agree; if not, the check is
     * wrong, and the bytes are still refused. */
    if (ur != MSGPACK_UNPACK_SUCCESS || off != n || o.type != MSGPACK_OBJECT_MAP)
        return proto_fail(e, PROTO_E_BAD_FRAME, "body: not one MessagePack map");

    const msgpack_object *id = proto_map_get(&o, "id");
    const msgpack_object *op = proto_map_get(&o, "op");
    const msgpack_object *args = proto_map_get(&o, "args");
    if (!id)
        return proto_fail(e, PROTO_E_BAD_REQUEST, "id: missing");
    if (id->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
        return proto_fail(e, PROTO_E_BAD_REQUEST, "id: expected unsigned integer");
    req->id = id->via.u64; /* from here on, errors answer this id */
    if (!op)
        return proto_fail(e, PROTO_E_BAD_REQUEST, "op: missing");
    if (op->type != MSGPACK_OBJECT_STR)
        return proto_fail(e, PROTO_E_BAD_REQUEST, "op: expected string");
    req->op = op->via.str.size ? op->via.str.ptr : "";
    req->op_len = op->via.str.size;
    if (args && args->type != MSGPACK_OBJECT_NIL) {
        if (args->type != MSGPACK_OBJECT_MAP)
            return proto_fail(e, PROTO_E_BAD_REQUEST, "args: expected map");
        req->args = args;
    }
    return PROTO_OK;
}

bool proto_op_is(const proto_request *r, const char *s)
{
    size_t n = strlen(s);
    return r->op && r->op_len == n && memcmp(r->op, s, n) == 0;
}

/* Finds a field; a nil value counts as absent. */
static proto_err arg_find(const msgpack_object *args, const char *key, bool required,
                          const msgpack_object **out, proto_error *e)
{
    const msgpack_object *v = proto_map_get(args, key);
    if (v && v->type == MSGPACK_OBJECT_NIL)
        v = NULL;
    *out = v;
    if (!v && required)
        return proto_fail(e, PROTO_E_BAD_REQUEST, "args.%s: missing", key);
    return PROTO_OK;
}

static proto_err arg_mistyped(proto_error *e, const char *key, const char *want)
{
    return proto_fail(e, PROTO_E_BAD_REQUEST, "args.%s: expected %s", key, want);
}

proto_err proto_arg_str(const msgpack_object *args, const char *key, bool required, const char **s,
                        uint32_t *len, proto_error *e)
{
    const msgpack_object *v;
    *s = NULL;
    *len = 0;
    if (arg_find(args, key, required, &v, e) != PROTO_OK)
        return e->code;
    if (!v)
        return PROTO_OK;
    if (v->type != MSGPACK_OBJECT_STR)
        return arg_mistyped(e, key, "string");
    /* Present but empty is "" (never NULL): the daemon judges emptiness. */
    *s = v->via.str.size ? v->via.str.ptr : "";
    *len = v->via.str.size;
    return PROTO_OK;
}

proto_err proto_arg_uint(const msgpack_object *args, const char *key, bool required, uint64_t *v,
                         bool *present, proto_error *e)
{
    const msgpack_object *o;
    *present = false;
    if (arg_find(args, key, required, &o, e) != PROTO_OK)
        return e->code;
    if (!o)
        return PROTO_OK;
    /* msgpack-c reads every non-negative integer as POSITIVE_INTEGER,
     * whatever width or signedness the sender packed it with. */
    if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
        return arg_mistyped(e, key, "unsigned integer");
    *v = o->via.u64;
    *present = true;
    return PROTO_OK;
}

proto_err proto_arg_bool(const msgpack_object *args, const char *key, bool required, bool *v,
                         bool *present, proto_error *e)
{
    const msgpack_object *o;
    *present = false;
    if (arg_find(args, key, required, &o, e) != PROTO_OK)
        return e->code;
    if (!o)
        return PROTO_OK;
    if (o->type != MSGPACK_OBJECT_BOOLEAN)
        return arg_mistyped(e, key, "bool");
    *v = o->via.boolean;
    *present = true;
    return PROTO_OK;
}

static proto_err arg_container(const msgpack_object *args, const char *key, bool required,
                               msgpack_object_type type, const char *want, const msgpack_object **o,
                               proto_error *e)
{
    const msgpack_object *v;
    *o = NULL;
    if (arg_find(args, key, required, &v, e) != PROTO_OK)
        return e->code;
    if (!v)
        return PROTO_OK;
    if (v->type != type)
        return arg_mistyped(e, key, want);
    *o = v;
    return PROTO_OK;
}

proto_err proto_arg_map(const msgpack_object *args, const char *key, bool required,
                        const msgpack_object **o, proto_error *e)
{
    return arg_container(args, key, required, MSGPACK_OBJECT_MAP, "map", o, e);
}

proto_err proto_arg_array(const msgpack_object *args, const char *key, bool required,
                          const msgpack_object **o, proto_error *e)
{
    return arg_container(args, key, required, MSGPACK_OBJECT_ARRAY, "array", o, e);
}
